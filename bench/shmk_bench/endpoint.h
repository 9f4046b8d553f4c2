/* SPDX-License-Identifier: MIT */
/*
 * endpoint.h - sending and receiving one verified message through a
 * transport, for the children of a measurement (measure*.c).  Inline:
 * they run for every message, in the loops they serve.
 */
#ifndef SHMK_BENCH_ENDPOINT_H
#define SHMK_BENCH_ENDPOINT_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmk_bench.h"
#include "transport.h"
#include "verify.h"

struct ep {
	const struct bt_transport *t;
	struct bt_chan *c;
	int zc;
	/* The sender's messages (it takes turns), the receiver's copy. */
	unsigned char *buf, *bufs[BM_VARIANTS];
	uint64_t psum[BM_VARIANTS];
	uint32_t writer;
};

static inline int ep_init(struct ep *e, const struct bt_transport *t,
			  struct bt_chan *c, uint32_t writer)
{
	e->t = t;
	e->c = c;
	e->zc = t->loan != NULL;
	e->writer = writer;
	for (int v = 0; v < BM_VARIANTS; v++) {
		e->bufs[v] =
			aligned_alloc(64, (c->msg_size + 63) & ~(size_t)63);
		if (!e->bufs[v])
			return -ENOMEM;
		e->psum[v] = bm_fill(e->bufs[v], c->msg_size,
				     writer * BM_VARIANTS + (uint32_t)v);
	}
	e->buf = e->bufs[0];
	return 0;
}

static inline int ep_send(struct ep *e, uint64_t seq, uint32_t flags)
{
	size_t len = e->c->msg_size;
	int corrupt = opt.corrupt >= 0 && (uint64_t)opt.corrupt == seq &&
		      !(flags & BM_END);
	unsigned v = (unsigned)(seq % BM_VARIANTS);
	unsigned char *src = e->bufs[v];
	int rc;

	if (e->zc) {
		unsigned char *p = e->t->loan(e->c, len);

		if (!p)
			return -errno;
		memcpy(p + BM_HDR, src + BM_HDR, len - BM_HDR);
		bm_stamp(p, len, e->writer, seq, e->psum[v], flags);
		if (corrupt)
			p[len - 1] ^= 0x10;
		return e->t->publish(e->c, len);
	}
	bm_stamp(src, len, e->writer, seq, e->psum[v], flags);
	if (corrupt)
		src[len - 1] ^= 0x10;
	rc = e->t->send(e->c, src, len);
	if (corrupt)
		src[len - 1] ^= 0x10;
	return rc;
}

/*
 * Receives and verifies one message: its header in *h, 0; or -EIO (the
 * transport failed) or -EBADMSG (the message is wrong), with why filled.
 * The caller checks the sequence number.
 */
static inline int ep_recv(struct ep *e, struct bm_hdr *h, char *why, size_t wl)
{
	const void *p;
	size_t len;
	long n;
	int rc;

	if (e->zc) {
		p = e->t->take(e->c, &len);
		if (!p) {
			snprintf(why, wl, "take: %s", strerror(errno));
			return -EIO;
		}
	} else {
		n = e->t->recv(e->c, e->buf, e->c->msg_size);
		if (n < 0) {
			snprintf(why, wl, "recv: %s", strerror((int)-n));
			return -EIO;
		}
		p = e->buf;
		len = (size_t)n;
	}
	rc = bm_check(p, len, h);
	if (e->zc)
		e->t->release(e->c);
	if (rc == -1) {
		snprintf(why, wl,
			 "a message of %zu bytes arrived with a bad header "
			 "(%zu expected)",
			 len, e->c->msg_size);
		return -EBADMSG;
	}
	if (rc == -2) {
		snprintf(why, wl,
			 "message %llu arrived corrupt (checksum mismatch)",
			 (unsigned long long)h->seq);
		return -EBADMSG;
	}
	if (len != e->c->msg_size) {
		snprintf(why, wl, "message %llu: %zu bytes, %zu expected",
			 (unsigned long long)h->seq, len, e->c->msg_size);
		return -EBADMSG;
	}
	return 0;
}

#endif /* SHMK_BENCH_ENDPOINT_H */
