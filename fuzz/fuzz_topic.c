/* SPDX-License-Identifier: MIT */
/*
 * fuzz_topic - a real topic whose shared bytes a hostile participant
 * builds and keeps overwriting while three honest handles use it.
 *
 * Each input makes a small named topic (byte 0 picks its geometry and its
 * policy) through a creator's handle; two more handles come and go,
 * opened by name or from a descriptor.  Then a program runs: each step is
 * one opcode byte and its operands.  Steps with the top bit set write the
 * topic's shared bytes with values picked the way a hostile peer would
 * (fuzz_word): head, tail, floor; a descriptor's seq, link, start or len,
 * or a whole descriptor; a loan slot's intent and size, a subscription's
 * cursor, in live and dead participants' blocks; counters; the header
 * (state, nslots, a participant's generation, flags, wake-up token and
 * armed word, geometry, sizes, magic, kind); the eventcounts; a whole
 * history that looks right (head, tail, floor and a run of linked
 * descriptors) from any position; any bytes, of the log or anywhere.  The
 * other steps are calls on a handle, always with timeout 0: publish,
 * loan, commit, abandon, subscribe (new only, the last K, all held, a bad
 * history), unsubscribe, receive, acquire, release, latest, stats,
 * pollfd, wake, drain, shmk_stat on the file, opening and closing the
 * second and third handles (a participant that leaves with loans and a
 * message in its hands), calls on messages no longer ours, shutdown.
 *
 * Whatever the bytes say: every call returns a value or an error it
 * documents, and the errors that depend only on the caller's own state
 * (not subscribed, already subscribed, holding, too long) come exactly
 * when they should; a subscribe that fails leaves no cursor behind; every
 * message handed out or copied lies in the log of the handle's own
 * mapping and is at most its max_msg bytes (buffers are allocated to the
 * byte, so that AddressSanitizer sees one written past).
 * Until the hostile peer's first write nothing may be called corrupt and
 * every message must come back intact.  The offsets are those of the
 * structures at the top of src/topic/topic.h (checked against the handle's
 * mapping at the start of each input).
 */
#include "fuzz.h"

#include <fcntl.h>
#include <unistd.h>

#define CTL_HEAD     0x400
#define CTL_TAIL     0x440
#define CTL_FLOOR    0x448
#define CTL_DATA_EC  0x480
#define CTL_SPACE_EC 0x4c0
#define PARTS	     0x3000
#define PART_BLOCK   576 /* 8 loan slots of 64 bytes, then the subscription */
#define OP_SIZE	     64
#define NOPS	     8
#define SUB_OFF	     512
#define DESC	     0x15000
#define DESC_SIZE    64
#define INTENT_BIT   (UINT64_C(1) << 63)
#define SUB_BIT	     (UINT64_C(1) << 63)
#define GRAN	     64

#define NH    3 /* handles */
#define LOANS 4 /* loans a handle keeps open at most (the topic allows 8) */

struct hand {
	struct shmk_topic *t;
	struct shmk_msg loan[LOANS];
	size_t loan_size[LOANS];
	int loaned[LOANS];
	struct shmk_msg held;
	int holding, subscribed;
};

struct lab {
	struct hand h[NH];
	char *base; /* the creator's mapping */
	size_t size;
	uint64_t cap, max_msg, n, log_off;
	int fd;	   /* the creator's descriptor to share (shmk_topic_fd) */
	int clean; /* nothing written by the hostile peer yet */
};

static char name[64], path[128];

static void cleanup(void)
{
	unlink(path);
}

static void poke32(struct lab *l, size_t off, uint32_t v)
{
	atomic_store_explicit((_Atomic uint32_t *)(l->base + off), v,
			      memory_order_relaxed);
}

/* Payload byte i of every message an honest handle writes. */
static uint8_t pat(size_t i)
{
	return (uint8_t)(i * 31 + 7);
}

static void fill(uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = pat(i);
}

static int intact(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != pat(i))
			return 0;
	return 1;
}

/* The log of the handle's own mapping, and its largest message. */
static void log_of(struct shmk_topic *t, const char **lo, const char **hi)
{
	struct shmk__region *r = shmk__topic_region(t);

	*hi = (const char *)r->hdr + r->size;
	*lo = *hi - r->geom[0];
}

/* A message handed out lies in the log, whole. */
static void msg_inside(struct shmk_topic *t, const struct shmk_msg *m)
{
	const char *lo, *hi, *d = m->data;

	log_of(t, &lo, &hi);
	FUZZ_CHECK(d >= lo && d < hi);
	FUZZ_CHECK((size_t)(d - lo) % GRAN == 0);
	FUZZ_CHECK(m->len <= shmk_topic_max_msg(t));
	FUZZ_CHECK(m->len <= (size_t)(hi - d));
}

/* A copied message: its length, and (before any damage) its bytes. */
static void got(struct lab *l, struct shmk_topic *t, const uint8_t *p,
		ssize_t n, size_t cap)
{
	if (n < 0)
		return;
	FUZZ_CHECK((size_t)n <= cap && (size_t)n <= shmk_topic_max_msg(t));
	FUZZ_CHECK(!l->clean || intact(p, (size_t)n));
}

/* A buffer of exactly cap bytes (AddressSanitizer sees a byte past it). */
static uint8_t *exact(size_t cap)
{
	return malloc(cap ? cap : 1);
}

/* What a call on the topic may give whatever the bytes say; before any
 * damage never -EBADMSG. */
#define CLEAN(l, rc) FUZZ_CHECK(!(l)->clean || (rc) != -EBADMSG)

static void close_hand(struct lab *l, int h)
{
	struct hand *hd = &l->h[h];

	FUZZ_CHECK(shmk_topic_close(hd->t) == 0);
	memset(hd, 0, sizeof(*hd));
}

static void open_hand(struct lab *l, int h, int by_fd)
{
	struct shmk_opts o = {.spin_us = -1};
	struct hand *hd = &l->h[h];
	int rc;

	rc = by_fd ? shmk_topic_open_fd(l->fd, &o, &hd->t)
		   : shmk_topic_open(name, &o, &hd->t);
	FUZZ_RC(rc, -EPROTO, -EBADMSG, -EAGAIN, -EUSERS);
	FUZZ_CHECK(!l->clean || rc == 0);
	if (rc < 0) {
		FUZZ_CHECK(hd->t == NULL);
		return;
	}
	/* The geometry is the header's as validated at open: the file's
	 * size, whatever the words now say. */
	FUZZ_CHECK(shmk__topic_region(hd->t)->size == l->size);
	if (l->clean)
		FUZZ_CHECK(shmk_topic_capacity(hd->t) == l->cap &&
			   shmk_topic_max_msg(hd->t) == l->max_msg &&
			   shmk_topic_lossy(hd->t) ==
				   shmk_topic_lossy(l->h[0].t));
}

static int history(uint8_t v)
{
	switch (v % 4) {
	case 0:
		return 0;
	case 1:
		return -1;
	case 2:
		return -2 - (v >> 7); /* refused */
	default:
		return v >> 2;
	}
}

static int free_loan(struct hand *hd)
{
	int i;

	for (i = 0; i < LOANS; i++)
		if (!hd->loaned[i])
			return i;
	return -1;
}

/*
 * publish and loan may also say -EBUSY: a handle that took over a slot
 * whose loan slots name messages a dead holder left unfinished (forged
 * intents, once reclaimed, are such orphans) keeps those loan slots out
 * of use until the messages are finished.
 */
static void step_call(struct lab *l, struct fuzz_in *in, uint8_t op)
{
	int h = (int)(((unsigned)op >> 4) & 7) % NH, rc, i, lossy;
	struct hand *hd = &l->h[h];
	struct shmk_topic *t = hd->t;
	struct shmk_msg m;
	size_t max, len, cap;
	uint8_t *buf;
	ssize_t n;

	if (!t) {
		if (op % 16 == 12)
			open_hand(l, h, fuzz_u8(in) & 1);
		return;
	}
	max = shmk_topic_max_msg(t);
	lossy = shmk_topic_lossy(t);
	switch (op % 16) {
	case 0: /* publish */
		len = fuzz_u16(in) % (max + 2);
		buf = exact(len);
		if (!buf)
			break;
		fill(buf, len);
		rc = shmk_topic_publish(t, buf, len, 0);
		free(buf);
		if (len > max)
			FUZZ_RC(rc, -EMSGSIZE, -EBADMSG);
		else
			FUZZ_RC(rc, -EAGAIN, -EPIPE, -EBADMSG, -EBUSY);
		FUZZ_CHECK(rc <= 0);
		CLEAN(l, rc);
		break;
	case 1: /* loan and keep */
		i = free_loan(hd);
		if (i < 0)
			break;
		len = fuzz_u16(in) % (max + 2);
		rc = shmk_topic_loan(t, len, &hd->loan[i], 0);
		if (len > max)
			FUZZ_RC(rc, -EMSGSIZE, -EBADMSG);
		else
			FUZZ_RC(rc, -EAGAIN, -EPIPE, -EBADMSG, -EBUSY);
		FUZZ_CHECK(rc <= 0);
		CLEAN(l, rc);
		if (rc == 0) {
			FUZZ_CHECK(hd->loan[i].len == len);
			msg_inside(t, &hd->loan[i]);
			fill(hd->loan[i].data, len);
			hd->loan_size[i] = len;
			hd->loaned[i] = 1;
		}
		break;
	case 2: /* commit a loan, maybe longer than it is */
		i = fuzz_u8(in) % LOANS;
		if (!hd->loaned[i])
			break;
		len = fuzz_u16(in) % (hd->loan_size[i] + 2);
		hd->loan[i].len = len;
		rc = shmk_topic_commit(t, &hd->loan[i]);
		if (len > hd->loan_size[i]) {
			FUZZ_CHECK(rc == -EMSGSIZE); /* still ours */
			break;
		}
		FUZZ_CHECK(rc == 0);
		hd->loaned[i] = 0;
		break;
	case 3: /* abandon a loan */
		i = fuzz_u8(in) % LOANS;
		if (!hd->loaned[i])
			break;
		FUZZ_CHECK(shmk_topic_abandon(t, &hd->loan[i]) == 0);
		hd->loaned[i] = 0;
		break;
	case 4: { /* subscribe */
		int hist = history(fuzz_u8(in));
		size_t cur = PARTS +
			     (size_t)shmk__topic_region(t)->slot * PART_BLOCK +
			     SUB_OFF;
		uint64_t before = fuzz_peek(l->base, cur);

		rc = shmk_topic_subscribe(t, hist);
		/* One that fails leaves no subscription behind for lossless
		 * publishers to wait for. */
		if (rc < 0 && !hd->subscribed && !(before & SUB_BIT))
			FUZZ_CHECK(!(fuzz_peek(l->base, cur) & SUB_BIT));
		if (hist < -1)
			FUZZ_CHECK(rc == -EINVAL || rc == -EBADMSG);
		else if (hd->subscribed)
			FUZZ_CHECK(rc == -EALREADY || rc == -EBADMSG);
		else
			FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
		CLEAN(l, rc);
		if (rc == 0)
			hd->subscribed = 1;
		break;
	}
	case 5: /* unsubscribe (a message held is given up with it) */
		rc = shmk_topic_unsubscribe(t);
		FUZZ_CHECK(rc == (hd->subscribed ? 0 : -ENOTCONN) ||
			   rc == -EBADMSG);
		CLEAN(l, rc);
		if (rc == 0)
			hd->subscribed = hd->holding = 0;
		break;
	case 6: /* receive */
		cap = fuzz_u8(in) & 1 ? max : fuzz_u16(in) % (max + 2);
		buf = exact(cap);
		if (!buf)
			break;
		n = shmk_topic_receive(t, buf, cap, 0);
		if (!hd->subscribed)
			FUZZ_CHECK(n == -ENOTCONN || n == -EBADMSG);
		else if (hd->holding)
			FUZZ_CHECK(n == -EBUSY || n == -EBADMSG);
		else if (lossy)
			FUZZ_RC(n, -EAGAIN, -EPIPE, -EBADMSG, -EMSGSIZE,
				-EOVERFLOW);
		else
			FUZZ_RC(n, -EAGAIN, -EPIPE, -EBADMSG, -EMSGSIZE);
		CLEAN(l, n);
		got(l, t, buf, n, cap);
		free(buf);
		break;
	case 7: /* acquire and keep */
		rc = shmk_topic_acquire(t, &m, 0);
		if (!hd->subscribed)
			FUZZ_CHECK(rc == -ENOTCONN || rc == -EBADMSG);
		else if (hd->holding)
			FUZZ_CHECK(rc == -EBUSY || rc == -EBADMSG);
		else if (lossy)
			FUZZ_RC(rc, -EAGAIN, -EPIPE, -EBADMSG, -EOVERFLOW);
		else
			FUZZ_RC(rc, -EAGAIN, -EPIPE, -EBADMSG);
		FUZZ_CHECK(rc <= 0);
		CLEAN(l, rc);
		if (rc == 0) {
			msg_inside(t, &m);
			buf = exact(m.len);
			if (buf) {
				memcpy(buf, m.data, m.len);
				got(l, t, buf, (ssize_t)m.len, m.len);
				free(buf);
			}
			hd->held = m;
			hd->holding = 1;
		}
		break;
	case 8: /* release */
		if (!hd->holding)
			break;
		rc = shmk_topic_release(t, &hd->held);
		if (lossy)
			FUZZ_CHECK(rc == 0 || rc == -EOVERFLOW ||
				   rc == -EBADMSG);
		else
			FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
		CLEAN(l, rc);
		if (rc != -EBADMSG)
			hd->holding = 0;
		break;
	case 9: /* latest */
		cap = fuzz_u8(in) & 1 ? max : fuzz_u16(in) % (max + 2);
		buf = exact(cap);
		if (!buf)
			break;
		n = shmk_topic_latest(t, buf, cap);
		FUZZ_RC(n, -EAGAIN, -EMSGSIZE, -EBADMSG);
		CLEAN(l, n);
		got(l, t, buf, n, cap);
		free(buf);
		break;
	case 10: { /* stats */
		struct shmk_topic_stats st;
		int subs = 0, k;

		FUZZ_CHECK(shmk_topic_stats(t, &st) == 0);
		FUZZ_CHECK(st.capacity == shmk_topic_capacity(t));
		FUZZ_CHECK(st.max_msg == max && st.lossy == lossy);
		FUZZ_CHECK(st.my_lost == shmk_topic_lost(t));
		for (k = 0; k < NH; k++)
			subs += l->h[k].t && l->h[k].subscribed;
		if (l->clean) {
			/* One descriptor is always the next message's. */
			FUZZ_CHECK(st.slots == l->n - 1 && st.held <= st.slots);
			FUZZ_CHECK(st.subscribers == (uint64_t)subs);
		}
		break;
	}
	case 11: { /* shmk_stat on the file */
		struct shmk_stat st;

		rc = shmk_stat(name, &st);
		FUZZ_RC(rc, -EPROTO, -EBADMSG);
		FUZZ_CHECK(!l->clean || rc == 0);
		if (rc == 0) {
			FUZZ_CHECK(st.kind == SHMK_KIND_TOPIC);
			FUZZ_CHECK(st.total_size == l->size);
		}
		break;
	}
	case 12: /* (open, when closed) the wake-up socket, waking, draining */
		switch (fuzz_u8(in) % 3) {
		case 0:
			rc = shmk_topic_pollfd(t);
			FUZZ_RC(rc, -EMFILE, -ENFILE, -ENOMEM, -ENOBUFS);
			break;
		case 1: /* ends calls in progress: none here */
			FUZZ_CHECK(shmk_topic_wake(t) == 0);
			break;
		default:
			rc = shmk_topic_drain(t, 0);
			FUZZ_RC(rc, -EAGAIN, -EBADMSG);
			FUZZ_CHECK(rc <= 0);
			CLEAN(l, rc);
		}
		break;
	case 13: /* the handle leaves, with what it holds */
		if (h)
			close_hand(l, h);
		break;
	case 14: /* messages no longer (or never) ours */
		i = fuzz_u8(in) % LOANS;
		if (!hd->loaned[i]) {
			FUZZ_CHECK(shmk_topic_commit(t, &hd->loan[i]) ==
				   -EINVAL);
			FUZZ_CHECK(shmk_topic_abandon(t, &hd->loan[i]) ==
				   -EINVAL);
		}
		if (!hd->holding) {
			rc = shmk_topic_release(t, &hd->held);
			FUZZ_CHECK(rc == -EINVAL || rc == -EBADMSG);
		}
		memset(&m, 0, sizeof(m));
		FUZZ_CHECK(shmk_topic_commit(t, &m) == -EINVAL);
		break;
	default: /* shutdown */
		if (fuzz_u8(in) == 0x5d)
			FUZZ_CHECK(shmk_topic_shutdown(t) == 0);
		break;
	}
}

/* A message number near head or tail. */
static uint64_t near(struct lab *l, struct fuzz_in *in)
{
	uint8_t b = fuzz_u8(in);
	uint64_t base = fuzz_peek(l->base, b & 1 ? CTL_TAIL : CTL_HEAD);

	return base + (uint64_t)(int64_t)((int8_t)b >> 1);
}

static size_t desc_off(struct lab *l, uint64_t j)
{
	return DESC + (size_t)(j % l->n) * DESC_SIZE;
}

/* Participant slots 0-2 are (mostly) the handles', 3-5 nobody's. */
static size_t part_off(uint8_t who)
{
	return PARTS + (size_t)(who % 6) * PART_BLOCK;
}

static void step_poke(struct lab *l, struct fuzz_in *in, uint8_t op)
{
	uint64_t j, maxg = (l->max_msg + GRAN - 1) / GRAN;
	size_t off, k, len;
	uint8_t who;

	l->clean = 0;
	switch (op % 16) {
	case 0:
		fuzz_poke(l->base, CTL_HEAD,
			  fuzz_word(in, fuzz_peek(l->base, CTL_HEAD)));
		break;
	case 1:
		fuzz_poke(l->base, CTL_TAIL,
			  fuzz_word(in, fuzz_peek(l->base, CTL_TAIL)));
		break;
	case 2:
		fuzz_poke(l->base, CTL_FLOOR,
			  fuzz_word(in, fuzz_peek(l->base, CTL_FLOOR)));
		break;
	case 3: /* a descriptor's seq: message j in one of its states */
		j = near(l, in);
		fuzz_poke(l->base, desc_off(l, j),
			  fuzz_word(in, j * 4 + fuzz_u8(in) % 4));
		break;
	case 4: /* link, start, len */
	case 5:
	case 6:
		off = desc_off(l, near(l, in)) + 8 * (op % 16 - 3);
		fuzz_poke(l->base, off,
			  fuzz_word(in, op % 16 == 6
						? l->max_msg
						: fuzz_peek(l->base, off)));
		break;
	case 7: { /* a whole descriptor */
		uint64_t link, start, mlen;

		j = near(l, in);
		off = desc_off(l, j);
		link = fuzz_word(
			in, fuzz_peek(l->base, desc_off(l, j - 1) + 8) + maxg);
		start = fuzz_word(in, link);
		mlen = fuzz_word(in, fuzz_u16(in) % (l->max_msg + 1));
		fuzz_poke(l->base, off + 8, link);
		fuzz_poke(l->base, off + 16, start);
		fuzz_poke(l->base, off + 24, mlen);
		fuzz_poke(l->base, off, j * 4 + fuzz_u8(in) % 4);
		break;
	}
	case 8: { /* an intent and its size: one loan slot, or all 8 */
		uint8_t o = fuzz_u8(in);
		uint64_t in_v, g;

		who = fuzz_u8(in);
		in_v = fuzz_word(in, near(l, in) | INTENT_BIT);
		g = fuzz_word(in, maxg);
		for (k = o % 9 == 8 ? 0 : o % 9;
		     k < (o % 9 == 8 ? NOPS : o % 9 + 1u); k++) {
			off = part_off(who) + k * OP_SIZE;
			fuzz_poke(l->base, off + 8, g);
			fuzz_poke(l->base, off, in_v);
		}
		break;
	}
	case 9: /* a subscription's cursor */
		who = fuzz_u8(in);
		j = near(l, in);
		fuzz_poke(l->base, part_off(who) + SUB_OFF,
			  fuzz_u8(in) & 1 ? fuzz_word(in, j | SUB_BIT) : 0);
		break;
	case 10: /* a counter: a loan slot's, a subscription's, the header's */
		who = fuzz_u8(in);
		k = fuzz_u8(in);
		off = k & 0x80 ? 0x140 + (k % 32) * 8
			       : part_off(who) + (k % 9) * OP_SIZE + 8 +
					 (k / 9 % 7) * 8;
		fuzz_poke(l->base, off, fuzz_word(in, fuzz_peek(l->base, off)));
		break;
	case 11: { /* the header: state, nslots, a participant's words */
		uint8_t what = fuzz_u8(in);
		size_t part =
			offsetof(struct shmk__hdr, part) +
			(size_t)(what / 8 % 6) * sizeof(struct shmk__part);

		switch (what % 8) {
		case 0:
			poke32(l, offsetof(struct shmk__hdr, state),
			       fuzz_u32(in));
			break;
		case 1:
			poke32(l, offsetof(struct shmk__hdr, nslots),
			       fuzz_u32(in));
			break;
		case 2: /* gen, pid, uid, flags */
		case 3:
		case 4:
		case 5:
			poke32(l, part + 4 * (size_t)(what % 8 - 2),
			       fuzz_u32(in));
			break;
		default: /* the wake-up socket's token, what it is armed on */
			off = part +
			      (what % 8 == 6
				       ? offsetof(struct shmk__part, wake)
				       : offsetof(struct shmk__part, armed));
			fuzz_poke(l->base, off,
				  fuzz_word(in, fuzz_peek(l->base, off)));
		}
		break;
	}
	case 12: { /* identity and geometry: what the next open validates */
		static const uint16_t offs[] = {0x00, 0x08, 0x10, 0x18,
						0x20, 0x28, 0x30, 0x0c};
		uint8_t what = fuzz_u8(in);

		off = offs[what % 8];
		fuzz_poke(l->base, off, fuzz_word(in, fuzz_peek(l->base, off)));
		break;
	}
	case 13: /* the eventcounts */
		poke32(l, fuzz_u8(in) & 1 ? CTL_DATA_EC : CTL_SPACE_EC,
		       fuzz_u32(in));
		break;
	case 14: { /* a whole history that looks right, anywhere */
		uint64_t t0 = fuzz_word(in, fuzz_peek(l->base, CTL_TAIL));
		uint64_t pos =
			fuzz_word(in, fuzz_peek(l->base, desc_off(l, t0) + 8));
		uint64_t cg = l->cap / GRAN, cnt = fuzz_u8(in) % (l->n + 2);
		uint8_t states = fuzz_u8(in);

		for (j = t0; j < t0 + cnt; j++) {
			uint64_t mlen = fuzz_u16(in) % (l->max_msg + 1);
			uint64_t g = (mlen + GRAN - 1) / GRAN, start = pos;

			off = desc_off(l, j);
			if (start % cg + g > cg)
				start += cg - start % cg;
			fuzz_poke(l->base, off + 8, pos);
			fuzz_poke(l->base, off + 16, start);
			fuzz_poke(l->base, off + 24, mlen);
			/* Mostly committed, some skipped or linked. */
			fuzz_poke(l->base, off,
				  j * 4 + (states & 1	? 2
					   : states & 2 ? 3
							: 0));
			states = (uint8_t)(states >> 1 | states << 7);
			pos = start + g;
		}
		off = desc_off(l, t0 + cnt);
		fuzz_poke(l->base, off + 8, pos);
		fuzz_poke(l->base, off, (t0 + cnt) * 4);
		fuzz_poke(l->base, CTL_TAIL, t0);
		fuzz_poke(l->base, CTL_FLOOR, t0 + fuzz_u8(in) % (cnt + 1));
		fuzz_poke(l->base, CTL_HEAD, t0 + cnt);
		break;
	}
	default: { /* any bytes: of the log (mostly), or anywhere */
		size_t at;

		who = fuzz_u8(in);
		at = who & 1 ? l->log_off + fuzz_u32(in) % l->cap
			     : fuzz_u32(in) % l->size;
		len = fuzz_u8(in) % 65;
		for (k = 0; k < len && at + k < l->size; k++)
			l->base[at + k] = (char)fuzz_u8(in);
		break;
	}
	}
}

static const struct {
	size_t cap, max_msg;
} geoms[] = {{4096, 1},	    {4096, 100},   {4096, 2048 - 64}, {8192, 64},
	     {16384, 8128}, {65536, 1000}, {4096, 65},	      {8192, 200}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int inited;
	struct fuzz_in in = {data, size};
	struct shmk_opts o = {.spin_us = -1};
	struct shmk__region *r;
	struct lab l;
	uint8_t g = fuzz_u8(&in);
	int steps, h;

	if (!inited) {
		snprintf(name, sizeof(name), "fz%d.topic", (int)getpid());
		FUZZ_CHECK(shmk_path(name, path, sizeof(path)) == 0);
		atexit(cleanup);
		inited = 1;
	}
	memset(&l, 0, sizeof(l));
	l.cap = geoms[g % 8].cap;
	l.max_msg = geoms[g % 8].max_msg;
	if (g & 8)
		o.flags |= SHMK_F_LOSSY;
	unlink(path);
	if (shmk_topic_create(name, l.cap, l.max_msg, &o, &l.h[0].t) < 0)
		return 0;
	l.fd = shmk_topic_fd(l.h[0].t);
	r = shmk__topic_region(l.h[0].t);
	l.base = (char *)r->hdr;
	l.size = r->size;
	l.n = l.cap / 256 < 64 ? 64 : l.cap / 256;
	l.log_off = (DESC + l.n * DESC_SIZE + 4095) / 4096 * 4096;
	l.clean = 1;
	/* The layout this target writes is the topic's. */
	FUZZ_CHECK(l.log_off + l.cap == l.size);
	FUZZ_CHECK(l.fd >= 0);
	/* The second handle is there from the start (by name or by fd). */
	open_hand(&l, 1, g & 16);
	for (steps = 0; in.left && steps < 256; steps++) {
		uint8_t op = fuzz_u8(&in);

		if (op & 0x80)
			step_poke(&l, &in, op);
		else
			step_call(&l, &in, op);
	}
	/* Leave with loans and messages in hand: close must cope. */
	for (h = NH - 1; h >= 0; h--)
		if (l.h[h].t)
			close_hand(&l, h);
	unlink(path);
	return 0;
}
