/* SPDX-License-Identifier: MIT */
/*
 * verify.h - the verified messages every transport of `shmk bench`
 * carries.  Each message starts with a 32-byte header (magic, length,
 * writer, flags, sequence number, checksum) followed by a payload pattern
 * that depends on the writer and changes from one message to the next.  The receiver checks the header and sums
 * every payload byte again, so a transport that loses, repeats, reorders,
 * truncates or corrupts a message is caught, and every transport pays the
 * same price: the sender writes every byte, the receiver reads every byte.
 *
 * The checksum is a four-lane Fletcher-style sum over 64-bit words (each
 * lane keeps a running sum and a sum of sums, so a changed or moved word
 * changes it), mixed with the sequence number.  The payload's part is
 * computed once per sender; the receiver computes it for every message.
 */
#ifndef SHMK_BENCH_VERIFY_H
#define SHMK_BENCH_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BM_MAGIC 0x6b6d6873u /* "shmk" */
#define BM_HDR	 32u	     /* the smallest message */
#define BM_END	 1u	     /* flags: the last message of a run */

struct bm_hdr {
	uint32_t magic;
	uint32_t len; /* the whole message, header included */
	uint32_t writer;
	uint32_t flags;
	uint64_t seq;
	uint64_t sum;
};

_Static_assert(sizeof(struct bm_hdr) == BM_HDR, "bm_hdr is 32 bytes");

static inline uint64_t bm_mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ull;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dull;
	return x ^ (x >> 33);
}

/* The payload's checksum (bytes after the header). */
static inline uint64_t bm_payload_sum(const unsigned char *p, size_t n)
{
	uint64_t a0 = 1, a1 = 2, a2 = 3, a3 = 4, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
	uint64_t w[4], tail = 0;
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		memcpy(w, p + i, 32);
		a0 += w[0];
		a1 += w[1];
		a2 += w[2];
		a3 += w[3];
		b0 += a0;
		b1 += a1;
		b2 += a2;
		b3 += a3;
	}
	for (; i < n; i++)
		tail = tail * 131 + p[i] + 1;
	/* Chained, so that each of the nine values matters on its own. */
	return bm_mix(
		bm_mix(bm_mix(bm_mix(bm_mix(bm_mix(bm_mix(bm_mix(bm_mix(n ^
									a0) ^
								 a1) ^
							  a2) ^
						   a3) ^
					    b0) ^
				     b1) ^
			      b2) ^
		       b3) ^
		tail);
}

/* The header's part of the checksum (magic and length are checked as
 * they are). */
static inline uint64_t bm_hdr_sum(uint32_t writer, uint32_t flags, uint64_t seq)
{
	return bm_mix(bm_mix(seq + 0x9e3779b97f4a7c15ull) ^
		      (((uint64_t)writer << 32) | flags));
}

/* Fills a message buffer of len bytes with the payload pattern seed and
 * returns the payload's sum (for bm_stamp).  Senders take turns with
 * BM_VARIANTS patterns, so that a stale payload (a node or buffer not
 * written again) does not pass for a fresh one. */
#define BM_VARIANTS 3

static inline uint64_t bm_fill(void *msg, size_t len, uint32_t seed)
{
	unsigned char *p = (unsigned char *)msg + BM_HDR;
	size_t n = len - BM_HDR, i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 131u + seed * 7u + 1u) ^ (i >> 8));
	return bm_payload_sum(p, n);
}

/* Writes the header of message seq (the payload is already there). */
static inline void bm_stamp(void *msg, size_t len, uint32_t writer,
			    uint64_t seq, uint64_t psum, uint32_t flags)
{
	struct bm_hdr h = {BM_MAGIC, (uint32_t)len,
			   writer,   flags,
			   seq,	     psum ^ bm_hdr_sum(writer, flags, seq)};

	memcpy(msg, &h, sizeof(h));
}

/*
 * Checks a received message of len bytes: 0 and its header in *h, or a
 * negative code: -1 bad header (magic or length), -2 bad checksum.  The
 * caller checks the sequence (the receiver knows what it expects).
 */
static inline int bm_check(const void *msg, size_t len, struct bm_hdr *h)
{
	if (len < BM_HDR)
		return -1;
	memcpy(h, msg, sizeof(*h));
	if (h->magic != BM_MAGIC || h->len != len)
		return -1;
	if ((bm_payload_sum((const unsigned char *)msg + BM_HDR, len - BM_HDR) ^
	     bm_hdr_sum(h->writer, h->flags, h->seq)) != h->sum)
		return -2;
	return 0;
}

#endif /* SHMK_BENCH_VERIFY_H */
