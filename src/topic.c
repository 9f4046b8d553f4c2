/* SPDX-License-Identifier: MIT */
/*
 * topic.c - shmk_topic: publish/subscribe.  Every subscriber receives
 * every message, in one total order, from any number of publishers.
 *
 * Messages are numbered j = 0, 1, 2, ... in the order publishers claim
 * them (a compare-and-swap of head).  Message j has a descriptor,
 * desc[j % N], and a contiguous run of 64-byte granules in the data log
 * (capacity C bytes, Cg granules).  Granule positions only grow; the log
 * offset is the position modulo Cg.  A message that would cross the end of
 * the log starts at the next lap instead (the granules skipped are simply
 * unused), so every message is contiguous in memory without a mirrored
 * mapping (docs/design.md says why).  A descriptor's seq word says where
 * it is in message j's life:
 *
 *	seq == 4j		linked: link, the first granule message j
 *				may use, is written (by j - 1's claimer)
 *	seq == 4j + 2		committed: start and len are written
 *	seq == 4j + 3		skipped: abandoned, or its publisher died
 *
 * A claimer of j writes the link of j + 1 right after its claim, before
 * it writes a byte of data, so that the next claimer waits only a few
 * instructions for it.  Subscribers read from their own cursor (the next
 * message they take), which they publish in their participant slot.
 * tail is the oldest message still held: a publisher that needs room
 * advances it over finished messages.  Lossless, it never passes a live
 * subscriber's cursor; lossy, it passes anything finished and a
 * subscriber left behind learns it from tail.
 *
 * Every loan runs in one of its participant's operation slots: before it
 * claims j it writes an intent (j and the granules it takes), so that
 * whoever finds j claimed but unfinished can tell a live owner (wait)
 * from a dead one (write j + 1's link if it is missing, then mark j
 * skipped).  As the intent comes before the claim, a dead publisher's
 * intent may name a message that another claimed (it died before its
 * claim, or after losing it), and a live one's a message a dead one
 * claimed: j is finished for a dead owner only when no live intent names
 * it, with a dead intent's size.  So when a dead participant's slot is
 * taken again, its intents for unfinished messages stay, orphaned, until
 * those are finished.  docs/format.md has every byte, docs/design.md the
 * argument.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinds.h"
#include "sync.h"
#include "topic.h"

#define GRAN	     64u
#define GRAN_SHIFT   6
#define NOPS	     8 /* loans open at once per handle */
#define INTENT_BIT   (UINT64_C(1) << 63)
#define ORPHAN_BIT   (UINT64_C(1) << 62)       /* intent: its owner is gone */
#define SUB_BIT	     (UINT64_C(1) << 63)       /* cursor word: subscribed */
#define IDX_MAX	     ((UINT64_C(1) << 61) - 1) /* message numbers stay below */
#define MIN_CAP	     (UINT64_C(1) << 12)
#define MAX_CAP	     (UINT64_C(1) << 34)
#define MIN_SLOTS    64u
#define CAP_PER_SLOT 256u
#define ST_LINKED    0u
#define ST_COMMIT    2u
#define ST_SKIP	     3u
#define SEQ(j, st)   ((uint64_t)(j)*4 + (st))
#define POL_LOSSY    1u /* geom[2] */
_Static_assert(!(MIN_SLOTS & (MIN_SLOTS - 1)) &&
		       !(CAP_PER_SLOT & (CAP_PER_SLOT - 1)),
	       "descriptor counts are powers of two");

/* Descriptor of message j, in desc[j % N]: one cache line each. */
struct topic_desc {
	_Atomic uint64_t seq;	/* see above */
	_Atomic uint64_t link;	/* granule position j may start at */
	_Atomic uint64_t start; /* granule position of j's data */
	_Atomic uint64_t len;	/* j's length in bytes */
	uint8_t pad[SHMK__CACHELINE - 32];
};

/* A loan slot: its intent, and what the loans that held it counted. */
struct topic_op {
	_Atomic uint64_t intent; /* j | INTENT_BIT [| ORPHAN_BIT], or 0 */
	_Atomic uint64_t gran;	 /* granules the loan takes; before intent */
	_Atomic uint64_t ctr[6];
};

/* A participant's subscription: its cursor and counters. */
struct topic_sub {
	_Atomic uint64_t cursor; /* SUB_BIT | next message, or 0 */
	_Atomic uint64_t ctr[7];
};

struct topic_part {
	struct topic_op op[NOPS];
	struct topic_sub sub;
};
_Static_assert(sizeof(struct topic_op) == SHMK__CACHELINE, "topic op");
_Static_assert(sizeof(struct topic_sub) == SHMK__CACHELINE, "topic sub");
_Static_assert(sizeof(struct topic_desc) == SHMK__CACHELINE, "topic desc");

/* Counters: loan slots count P_*, subscriptions S_*; the header's
 * counter[] holds what closed or dead participants folded in (same
 * indices), then the shared ones.  shmk_stat adds the computed ones. */
enum {
	P_PUBLISHED,
	P_BYTES,
	P_FULL_WAITS,
	P_WAKEUPS,
	NP_CTR,
	S_DELIVERED = NP_CTR,
	S_BYTES,
	S_LOST,
	S_EMPTY_WAITS,
	S_WAKEUPS,
	G_ABANDONED,
	G_RECOVERED,
	X_HELD, /* computed from here on */
	X_SUBSCRIBERS,
	X_SLOWEST_LAG,
	X_SLOWEST_PID,
	NCTR
};
#define NS_CTR (G_ABANDONED - S_DELIVERED)

/* Control words, in the header's ctl area, each hot one on its line. */
struct topic_ctl {
	_Atomic uint64_t head; /* next message to claim */
	uint8_t pad0[SHMK__CACHELINE - 8];
	_Atomic uint64_t tail;	/* oldest message held */
	_Atomic uint64_t floor; /* lossless: joiners start at or past it */
	uint8_t pad1[SHMK__CACHELINE - 16];
	struct shmk__ec data; /* subscribers sleep here */
	uint8_t pad2[SHMK__CACHELINE - 4];
	struct shmk__ec space; /* publishers sleep here */
	uint8_t pad3[SHMK__CACHELINE - 4];
};
_Static_assert(sizeof(struct topic_ctl) <= SHMK__CTL_SIZE, "topic ctl");

/* What every function of the protocol needs: the mapped object. */
struct topic_view {
	struct shmk__region *r;
	struct topic_ctl *ctl;
	struct topic_part *parts;
	struct topic_desc *desc;
	char *log;
	uint64_t n, cg, maxg, max_msg;
	int lossy;
};

struct shmk_topic {
	struct shmk__region r;
	struct topic_view v;
	struct topic_part *me;
	_Atomic int poisoned;
	/* Loans: slot in use, and our own record of what each holds (j and
	 * the loan's size), which a message handed back is checked against. */
	_Atomic uint8_t busy[NOPS];
	_Atomic uint64_t mine[NOPS];
	_Atomic uint64_t mine_size[NOPS];
	/* Lossless: tail may advance up to bound without a new look at the
	 * subscribers (see scan()); dead[k]: slot k's cursor word when we
	 * found its holder dead, with the slot's generation. */
	_Atomic uint64_t bound;
	_Atomic uint64_t dead_cur[SHMK__MAX_PARTS];
	_Atomic uint32_t dead_gen[SHMK__MAX_PARTS];
	/* The subscription: used by one thread at a time. */
	_Atomic int sub_busy;
	int subscribed, holding;
	uint64_t cur;	   /* next message to take */
	uint64_t held_pos; /* the message held in place */
};

/* ---------------------------------------------------------------------
 * Geometry: geom[0] = capacity, geom[1] = max_msg, geom[2] = policy.
 * --------------------------------------------------------------------- */

struct topic_geom {
	uint64_t n, desc_off, log_off, total;
};

static int topic_geometry(const uint64_t geom[SHMK__GEOM_N],
			  struct topic_geom *g)
{
	uint64_t cap = geom[0], max = geom[1];

	if ((geom[2] & ~(uint64_t)POL_LOSSY) || shmk__geom_unused(geom, 3) < 0)
		return -EINVAL;
	if (cap < MIN_CAP || cap > MAX_CAP || (cap & (cap - 1)) || max < 1 ||
	    max > cap / 2)
		return -EINVAL;
	/* A power of two, as cap is (desc() masks with it). */
	g->n = cap / CAP_PER_SLOT < MIN_SLOTS ? MIN_SLOTS : cap / CAP_PER_SLOT;
	g->desc_off = SHMK__HDR_SIZE +
		      SHMK__MAX_PARTS * (uint64_t)sizeof(struct topic_part);
	g->log_off = g->desc_off + g->n * sizeof(struct topic_desc);
	g->log_off = (g->log_off + 4095) / 4096 * 4096;
	g->total = g->log_off + cap; /* far below SHMK__MAX_TOTAL */
	return 0;
}

static int topic_layout(const uint64_t geom[SHMK__GEOM_N], uint64_t *total)
{
	struct topic_geom g;
	int rc = topic_geometry(geom, &g);

	if (!rc)
		*total = g.total;
	return rc;
}

static void view_of(struct shmk__region *r, struct topic_view *v)
{
	/* Zeroed: the analyser cannot see that open validated the geometry
	 * (topic_geometry() cannot fail here). */
	struct topic_geom g = {0};

	(void)topic_geometry(r->geom, &g); /* validated at open */
	v->r = r;
	v->ctl = shmk__region_ctl(r);
	v->parts = (struct topic_part *)((char *)r->hdr + SHMK__HDR_SIZE);
	v->desc = (struct topic_desc *)((char *)r->hdr + g.desc_off);
	v->log = (char *)r->hdr + g.log_off;
	v->n = g.n;
	v->cg = r->geom[0] >> GRAN_SHIFT;
	v->max_msg = r->geom[1];
	v->maxg = (r->geom[1] + GRAN - 1) >> GRAN_SHIFT;
	v->lossy = (r->geom[2] & POL_LOSSY) != 0;
}

/*
 * Copies a message a publisher may be overwriting (lossy receive, latest):
 * the read side of a sequence lock, whose result is used only if tail,
 * read afterwards, says it was not overwritten.  The race is the design;
 * ThreadSanitizer is told so by a copy it does not watch.
 */
#if defined(__SANITIZE_THREAD__)
#define SHMK__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHMK__TSAN 1
#endif
#endif
#ifdef SHMK__TSAN
__attribute__((no_sanitize("thread"))) static void
racy_copy(void *dst, const void *src, size_t n)
{
	const volatile unsigned char *s = src;
	unsigned char *d = dst;
	size_t i;

	for (i = 0; i < n; i++)
		d[i] = s[i];
}
#else
#define racy_copy memcpy
#endif

static uint64_t grans(uint64_t bytes)
{
	return (bytes + GRAN - 1) >> GRAN_SHIFT;
}

/* The log offset, in granules, of granule position pos.  The log's
 * granules and the descriptors are powers of two (topic_geometry()): a
 * mask, not a division, on every message's path. */
static uint64_t gran_off(const struct topic_view *v, uint64_t pos)
{
	return pos & (v->cg - 1);
}

/* Where a message of g granules linked at position l starts: at l, or at
 * the next lap if it would cross the end of the log. */
static uint64_t place(const struct topic_view *v, uint64_t l, uint64_t g)
{
	uint64_t off = gran_off(v, l);

	return off + g > v->cg ? l - off + v->cg : l;
}

static struct topic_desc *desc(const struct topic_view *v, uint64_t j)
{
	return &v->desc[j & (v->n - 1)];
}

static uint64_t load(_Atomic uint64_t *w, memory_order mo)
{
	return atomic_load_explicit(w, mo);
}

/* Is message j committed or skipped (or its descriptor a later one's)? */
static int finished(const struct topic_view *v, uint64_t j)
{
	uint64_t s = load(&desc(v, j)->seq, memory_order_acquire);

	return s == SEQ(j, ST_COMMIT) || s == SEQ(j, ST_SKIP) || s >> 2 > j;
}

/*
 * tail and head at one moment: tail read before and after head, equal
 * (tail only grows, so it held while head was read).  Then tail <= head
 * <= tail + N, or the shared state is corrupt.  Returns 0, -EBADMSG, or
 * -EAGAIN if tail kept moving.
 */
static int snapshot(const struct topic_view *v, uint64_t *T, uint64_t *h)
{
	int k;

	for (k = 0; k < 1000; k++) {
		uint64_t t0 = load(&v->ctl->tail, memory_order_seq_cst);
		uint64_t hh = load(&v->ctl->head, memory_order_seq_cst);

		if (load(&v->ctl->tail, memory_order_seq_cst) != t0)
			continue;
		if (t0 > hh || hh - t0 > v->n || hh > IDX_MAX)
			return -EBADMSG;
		*T = t0;
		*h = hh;
		return 0;
	}
	return -EAGAIN;
}

/* ---------------------------------------------------------------------
 * Dead publishers
 * --------------------------------------------------------------------- */

/*
 * Finishes message j for a publisher that claimed it with g granules and
 * is gone: j + 1's link first (so that tail never reaches a message
 * without one), then j skipped.  Idempotent: two recoverers write the
 * same link, and one compare-and-swap marks j.  Returns 1 if j is
 * finished now, -EBADMSG if the shared state is impossible.
 */
static int finish_dead(const struct topic_view *v, uint64_t j, uint64_t g)
{
	struct topic_desc *d = desc(v, j), *nd = desc(v, j + 1);
	uint64_t s = load(&d->seq, memory_order_acquire), ns, l;

	/* Finished, or the descriptor has moved on to a later message
	 * (j was finished long ago: our view is stale). */
	if (s == SEQ(j, ST_COMMIT) || s == SEQ(j, ST_SKIP) || s >> 2 > j)
		return 1;
	if (s != SEQ(j, ST_LINKED) || g > v->maxg)
		return -EBADMSG;
	l = load(&d->link, memory_order_relaxed);
	ns = load(&nd->seq, memory_order_acquire);
	if (ns < SEQ(j + 1, ST_LINKED)) {
		uint64_t lo = load(&nd->link, memory_order_relaxed);

		/* A CAS from the link we saw under the old state: if we stall
		 * here while others finish j and lap the log, the word is a
		 * later message's and must not be overwritten.  (Positions
		 * never decrease, so a later link equal to lo equals ours.) */
		if (load(&d->seq, memory_order_acquire) != s)
			return 1;
		atomic_compare_exchange_strong_explicit(
			&nd->link, &lo, place(v, l, g) + g,
			memory_order_relaxed, memory_order_relaxed);
		/* Release: the link before the state that says it is there.
		 * A CAS, as the next claimer may have moved the word on. */
		atomic_compare_exchange_strong_explicit(
			&nd->seq, &ns, SEQ(j + 1, ST_LINKED),
			memory_order_release, memory_order_relaxed);
	}
	if (atomic_compare_exchange_strong_explicit(
		    &d->seq, &s, SEQ(j, ST_SKIP), memory_order_release,
		    memory_order_relaxed))
		shmk__count(v->r, G_RECOVERED, 1);
	shmk__ec_notify(v->r, &v->ctl->data);
	shmk__ec_notify(v->r, &v->ctl->space);
	return 1;
}

/*
 * Message j < head is unfinished: is its publisher alive?  Every loan
 * slot of every participant is looked at (a hostile nslots must not hide
 * a live owner).  Returns SHMK__COND_WAIT (a live owner, or one we cannot
 * tell), 1 if j is finished now (look again), -EBADMSG.  The slow path
 * only.
 */
static int recover(const struct topic_view *v, uint64_t j)
{
	uint64_t want = j | INTENT_BIT, g = UINT64_MAX;
	struct topic_desc *d = desc(v, j);
	uint64_t s;
	int k, i;

	for (k = 0; k < SHMK__MAX_PARTS; k++)
		for (i = 0; i < NOPS; i++) {
			struct topic_op *op = &v->parts[k].op[i];
			/* Acquire: the granule count came before the intent. */
			uint64_t in = load(&op->intent, memory_order_acquire);

			if ((in & ~ORPHAN_BIT) != want)
				continue;
			/* An orphan's owner is gone, whoever holds the slot
			 * now (topic_reclaim()). */
			if (!(in & ORPHAN_BIT) &&
			    shmk__part_alive(v->r, k) != 0)
				return SHMK__COND_WAIT;
			g = load(&op->gran, memory_order_relaxed);
		}
	if (g != UINT64_MAX)
		return finish_dead(v, j, g);
	/* No intent names j: its owner finished (look again).  (A slot
	 * taken over keeps its intents for unfinished messages.) */
	s = load(&d->seq, memory_order_acquire);
	if (s == SEQ(j, ST_COMMIT) || s == SEQ(j, ST_SKIP) || s >> 2 > j)
		return 1; /* finished (the descriptor may have moved on) */
	if (s != SEQ(j, ST_LINKED))
		return -EBADMSG; /* j < head was linked */
	/* A claim whose intent is gone with j + 1 already linked can be
	 * passed over without its size; without the link nobody can. */
	if (load(&desc(v, j + 1)->seq, memory_order_acquire) >=
	    SEQ(j + 1, ST_LINKED)) {
		if (atomic_compare_exchange_strong_explicit(
			    &d->seq, &s, SEQ(j, ST_SKIP), memory_order_release,
			    memory_order_relaxed))
			shmk__count(v->r, G_RECOVERED, 1);
		return 1;
	}
	return SHMK__COND_WAIT; /* an intent may be on its way; not ours */
}

/* ---------------------------------------------------------------------
 * The kind
 * --------------------------------------------------------------------- */

/* Adds a participant's counters to the header's and zeroes them. */
static void fold(struct shmk__region *r, struct topic_part *p)
{
	int i, k;

	for (k = 0; k < NOPS; k++)
		for (i = 0; i < NP_CTR; i++) {
			uint64_t x = atomic_exchange_explicit(
				&p->op[k].ctr[i], 0, memory_order_relaxed);

			if (x)
				shmk__count(r, i, x);
		}
	for (i = 0; i < NS_CTR; i++) {
		uint64_t x = atomic_exchange_explicit(&p->sub.ctr[i], 0,
						      memory_order_relaxed);

		if (x)
			shmk__count(r, S_DELIVERED + i, x);
	}
}

/*
 * A slot changes hands: its last holder (gone, or closed with nothing
 * open) leaves its counters, and its subscription ends.  An intent of
 * its for a claimed, unfinished message is not acted on here, nor
 * thrown away: the message may be a live publisher's (the holder died
 * before its claim, or after losing it), or the holder's own claim that
 * a live publisher's intent names too (that one lost the claim, and will
 * need the message finished); only recover() tells, when no live intent
 * names it.  The intent stays, orphaned, with its granule count, until
 * the message is finished; op_get() passes over it meanwhile.  The
 * others are cleared.
 */
static void topic_reclaim(struct shmk__region *r, int slot)
{
	struct topic_view v;
	struct topic_part *p;
	uint64_t head;
	int i;

	view_of(r, &v);
	p = &v.parts[slot];
	/* Below head a message was claimed, by the holder or another; a
	 * dead holder claims nothing more. */
	head = load(&v.ctl->head, memory_order_acquire);
	for (i = 0; i < NOPS; i++) {
		uint64_t in = load(&p->op[i].intent, memory_order_acquire);
		uint64_t j = in & ~(INTENT_BIT | ORPHAN_BIT);

		/* Release: the granule count, stored before, goes with it. */
		atomic_store_explicit(&p->op[i].intent,
				      (in & INTENT_BIT) && j < head &&
						      !finished(&v, j)
					      ? in | ORPHAN_BIT
					      : 0,
				      memory_order_release);
	}
	fold(r, p);
	atomic_store_explicit(&p->sub.cursor, 0, memory_order_seq_cst);
}

static int topic_stat_counters(int fd, const struct shmk__hdr *h,
			       uint64_t *out);

const struct shmk__kind shmk__topic_kind = {
	.kind = SHMK_KIND_TOPIC,
	.name = "topic",
	.layout = topic_layout,
	.reclaim = topic_reclaim,
	.shutdown = shmk__notify_all,
	.ec_off = {offsetof(struct topic_ctl, data),
		   offsetof(struct topic_ctl, space)},
	.n_ec = 2,
	.stat_counters = topic_stat_counters,
	.geom_names = {"capacity", "max_msg", "lossy", NULL},
	.counter_names = {"published", "bytes_published", "full_waits",
			  "pub_wakeups", "delivered", "bytes_delivered", "lost",
			  "empty_waits", "sub_wakeups", "abandoned",
			  "recovered", "held", "subscribers", "slowest_lag",
			  "slowest_pid", NULL},
	/* The order above is the enum's. */
};

/* ---------------------------------------------------------------------
 * Create, open, close
 * --------------------------------------------------------------------- */

static int topic_attached(struct shmk_topic *t, struct shmk_topic **out, int rc)
{
	if (rc < 0) {
		free(t);
		return rc;
	}
	view_of(&t->r, &t->v);
	t->me = &t->v.parts[t->r.slot];
	shmk__async_init();
	*out = t;
	return 0;
}

SHMK__EXPORT int shmk_topic_create(const char *name, size_t capacity,
				   size_t max_msg, const struct shmk_opts *o,
				   struct shmk_topic **out)
{
	uint64_t geom[SHMK__GEOM_N] = {capacity, max_msg};
	struct shmk_opts oo;
	struct shmk_topic *t;
	int rc = SHMK__HANDLE_NEW(out, &t);

	if (rc < 0)
		return rc;
	/* The policy is geometry: openers learn it, and OPEN_OR_CREATE
	 * finds a topic of the other policy a mismatch. */
	if (o && (o->flags & SHMK_F_LOSSY)) {
		oo = *o;
		oo.flags &= ~(unsigned)SHMK_F_LOSSY;
		geom[2] = POL_LOSSY;
		o = &oo;
	}
	rc = shmk__region_create(&t->r, name, &shmk__topic_kind, geom, o, NULL);
	return topic_attached(t, out, rc);
}

SHMK__EXPORT int shmk_topic_open(const char *name, const struct shmk_opts *o,
				 struct shmk_topic **out)
{
	struct shmk_topic *t;
	int rc = SHMK__HANDLE_NEW(out, &t);

	if (rc < 0)
		return rc;
	rc = shmk__region_open(&t->r, name, &shmk__topic_kind, o);
	return topic_attached(t, out, rc);
}

SHMK__EXPORT int shmk_topic_open_fd(int fd, const struct shmk_opts *o,
				    struct shmk_topic **out)
{
	struct shmk_topic *t;
	int rc = SHMK__HANDLE_NEW(out, &t);

	if (rc < 0)
		return rc;
	rc = shmk__region_open_fd(&t->r, fd, &shmk__topic_kind, o);
	return topic_attached(t, out, rc);
}

struct shmk__region *shmk__topic_region(struct shmk_topic *t)
{
	return &t->r;
}

SHMK__EXPORT int shmk_topic_fd(struct shmk_topic *t)
{
	return t ? shmk__region_share_fd(&t->r) : -EINVAL;
}

static void unsubscribe(struct shmk_topic *t);

SHMK__EXPORT int shmk_topic_close(struct shmk_topic *t)
{
	int i;

	if (!t)
		return 0;
	if (!t->r.forked && !shmk__region_poisoned(&t->r)) {
		/* Open loans are given up, the subscription ended; what we
		 * counted outlives us. */
		for (i = 0; i < NOPS; i++) {
			uint64_t j = atomic_load_explicit(&t->mine[i],
							  memory_order_relaxed);

			if (atomic_load_explicit(&t->busy[i],
						 memory_order_relaxed) &&
			    j) {
				atomic_store_explicit(&desc(&t->v, j - 1)->seq,
						      SEQ(j - 1, ST_SKIP),
						      memory_order_release);
				shmk__count(&t->r, G_ABANDONED, 1);
				atomic_store_explicit(&t->me->op[i].intent, 0,
						      memory_order_release);
			}
		}
		if (t->subscribed)
			unsubscribe(t);
		fold(&t->r, t->me);
		shmk__ec_notify(&t->r, &t->v.ctl->data);
	}
	shmk__region_close(&t->r);
	free(t);
	return 0;
}

SHMK__EXPORT size_t shmk_topic_capacity(const struct shmk_topic *t)
{
	return t ? (size_t)t->r.geom[0] : 0;
}

SHMK__EXPORT size_t shmk_topic_max_msg(const struct shmk_topic *t)
{
	return t ? (size_t)t->r.geom[1] : 0;
}

SHMK__EXPORT int shmk_topic_lossy(const struct shmk_topic *t)
{
	return t ? t->v.lossy : 0;
}

SHMK__EXPORT int shmk_topic_pollfd(struct shmk_topic *t)
{
	return shmk__pollfd_call(t ? &t->r : NULL);
}

SHMK__EXPORT int shmk_topic_wake(struct shmk_topic *t)
{
	return shmk__wake_call(t ? &t->r : NULL);
}

SHMK__EXPORT int shmk_topic_shutdown(struct shmk_topic *t)
{
	int rc;

	if (!t)
		return -EINVAL;
	rc = shmk__region_check(&t->r);
	if (rc < 0)
		return rc;
	shmk__region_shutdown(&t->r);
	return 0;
}

static int poison(struct shmk_topic *t)
{
	atomic_store_explicit(&t->poisoned, 1, memory_order_relaxed);
	return -EBADMSG;
}

static int topic_check(struct shmk_topic *t)
{
	if (atomic_load_explicit(&t->poisoned, memory_order_relaxed))
		return -EBADMSG;
	return shmk__region_check(&t->r);
}

static int shut_down(const struct shmk_topic *t)
{
	return atomic_load_explicit(&t->r.hdr->state, memory_order_seq_cst) ==
	       SHMK_STATE_SHUTDOWN;
}

/* Counts in a slot we own alone (a loan slot, or the subscription). */
static void bump(_Atomic uint64_t *w, uint64_t x)
{
	atomic_store_explicit(w, load(w, memory_order_relaxed) + x,
			      memory_order_relaxed);
}

/* ---------------------------------------------------------------------
 * Room: advancing tail
 * --------------------------------------------------------------------- */

/* Slot k's subscriber, cursor word cw, was found dead before by this
 * handle (sub_dead()) and its slot has not changed hands since.  The
 * cursor was read with acquire, then the generation: a new holder's
 * generation came before its cursor. */
static int known_dead(struct shmk_topic *t, int k, uint64_t cw)
{
	return cw == load(&t->dead_cur[k], memory_order_relaxed) &&
	       atomic_load_explicit(&t->r.hdr->part[k].gen,
				    memory_order_acquire) ==
		       atomic_load_explicit(&t->dead_gen[k],
					    memory_order_relaxed);
}

/*
 * Lossless: the lowest cursor of the live subscribers, as a bound tail
 * may advance to without another look.  First the floor is raised to
 * want (seq_cst), then the cursors are read (seq_cst): a subscriber that
 * joins (cursor, then floor, both seq_cst: subscribe()) either is seen
 * here or sees the floor and starts at or past it.  The bound never
 * exceeds the floor we raised, so a later joiner, which starts at or
 * past that floor, is never passed; cursors only grow, so the bound
 * stays good until tail reaches it.  Subscribers we found dead are
 * passed over; our own subscription counts like any other (a lossless
 * handle that publishes while its own subscription lags waits for
 * itself, and its loan times out).  *slow_k: the slowest subscriber's
 * slot, or -1.
 *
 * Only the slots below nslots are read, as the read/write lock's writer
 * drains its readers (sync.c): a joiner's attach raised nslots (seq_cst)
 * before its cursor, so a joiner we do not reach read the floor after we
 * raised it.  This runs every few messages (slack_n in advance()), and
 * the whole table is 128 cache lines.  A forged nslots can make us pass
 * over a live subscriber, which may then read a message being written
 * over, as it would if the forger wrote into the log: a peer that may
 * write the object can spoil its messages anyway.  Nothing is read out
 * of bounds.
 */
static uint64_t scan(struct shmk_topic *t, uint64_t want, int *slow_k)
{
	struct topic_ctl *c = t->v.ctl;
	uint64_t f = load(&c->floor, memory_order_seq_cst), m = UINT64_MAX;
	uint32_t ns;
	int k;

	while (f < want && !atomic_compare_exchange_weak_explicit(
				   &c->floor, &f, want, memory_order_seq_cst,
				   memory_order_seq_cst))
		;
	if (f < want)
		f = want;
	*slow_k = -1;
	/* seq_cst: after the floor, before the cursors. */
	ns = atomic_load_explicit(&t->r.hdr->nslots, memory_order_seq_cst);
	if (ns > SHMK__MAX_PARTS)
		ns = SHMK__MAX_PARTS; /* corrupt: look at them all */
	for (k = 0; k < (int)ns; k++) {
		uint64_t cw =
			load(&t->v.parts[k].sub.cursor, memory_order_seq_cst);

		if (!(cw & SUB_BIT))
			continue;
		if (known_dead(t, k, cw))
			continue;
		if ((cw & ~SUB_BIT) < m) {
			m = cw & ~SUB_BIT;
			*slow_k = k;
		}
	}
	m = m < f ? m : f;
	atomic_store_explicit(&t->bound, m, memory_order_relaxed);
	return m;
}

/*
 * Is the subscriber in slot k, whose cursor word is cw, gone?  If so it
 * is remembered as dead (by this handle) and 1 returned.
 */
static int sub_dead(struct shmk_topic *t, int k, uint64_t cw)
{
	uint32_t gen = atomic_load_explicit(&t->r.hdr->part[k].gen,
					    memory_order_acquire);

	if (k == t->r.slot || shmk__part_alive(&t->r, k) != 0)
		return 0;
	atomic_store_explicit(&t->dead_cur[k], cw, memory_order_relaxed);
	atomic_store_explicit(&t->dead_gen[k], gen, memory_order_relaxed);
	return 1;
}

/* Does a loan of message j placed at granule s with g granules fit, with
 * tail at T whose link is lt? */
static int fits(const struct topic_view *v, uint64_t j, uint64_t s, uint64_t g,
		uint64_t T, uint64_t lt)
{
	return j + 1 < T + v->n && s + g <= lt + v->cg;
}

/* The link of message T (tail), read once and checked: -1 if the
 * descriptor is not T's (tail moved on, or corrupt). */
static int tail_link(const struct topic_view *v, uint64_t T, uint64_t *lt)
{
	struct topic_desc *d = desc(v, T);
	uint64_t s = load(&d->seq, memory_order_acquire);

	if (s >> 2 != T || (s & 3) == 1)
		return -1;
	*lt = load(&d->link, memory_order_relaxed);
	/* The link was read under a state of T's: still T's? */
	return load(&d->seq, memory_order_acquire) >> 2 == T ? 0 : -1;
}

struct loan_wait {
	struct shmk_topic *t;
	int k;	    /* our loan slot */
	uint64_t g; /* granules */
	uint64_t j, start;
	int waited;
};

/*
 * Advances tail so that a loan of j at s with g granules fits (and a
 * little more, so that the next loans need no walk): over finished
 * messages only, and lossless never past a live subscriber.  Returns 1
 * if tail moved (try the claim again), 0 if blocked (*who: the message
 * or -(slot + 1) of the subscriber in the way), < 0 an error.
 */
static int advance(struct loan_wait *a, uint64_t j, uint64_t s, uint64_t T,
		   uint64_t lt, int slow)
{
	struct shmk_topic *t = a->t;
	struct topic_view *v = &t->v;
	uint64_t T2 = T, l2 = lt, bound = UINT64_MAX;
	/* Lossless, a little more than we need, so that the next loans find
	 * room without a walk and a look at every cursor; lossy, only what
	 * we need: every message held as long as there is room for it. */
	uint64_t slack_g = v->lossy ? a->g : a->g + v->cg / 16;
	uint64_t slack_n = v->lossy ? 0 : v->n / 16;
	int k, rounds = 0;

	if (!v->lossy)
		bound = atomic_load_explicit(&t->bound, memory_order_relaxed);
	while (T2 < j) {
		struct topic_desc *d = desc(v, T2);
		uint64_t sx = load(&d->seq, memory_order_acquire);
		int enough = fits(v, j, s, a->g, T2, l2);

		/* Moved on: others advanced tail past T2 meanwhile. */
		if (sx >> 2 > T2)
			return 1;

		/* Enough, with some to spare: stop. */
		if (enough && j + 1 + slack_n < T2 + v->n &&
		    s + slack_g <= l2 + v->cg)
			break;
		if (sx != SEQ(T2, ST_COMMIT) && sx != SEQ(T2, ST_SKIP)) {
			if (enough)
				break;
			if (!slow)
				return SHMK__COND_WAIT;
			/* A publisher still writing the oldest message. */
			k = recover(v, T2);
			if (k != 1)
				return k;
			continue;
		}
		if (T2 + 1 > bound) {
			int slow_k;

			/* The floor never passes head (a joiner starts at
			 * most there). */
			bound = scan(
				t, T2 + 1 + slack_n < j ? T2 + 1 + slack_n : j,
				&slow_k);
			if (T2 + 1 > bound) {
				uint64_t cw;

				if (enough)
					break;
				if (slow_k < 0)
					break; /* only ourselves (cannot be) */
				if (!slow)
					return SHMK__COND_WAIT;
				cw = load(&v->parts[slow_k].sub.cursor,
					  memory_order_acquire);
				if ((cw & SUB_BIT) && sub_dead(t, slow_k, cw) &&
				    rounds++ < SHMK__MAX_PARTS)
					continue;	/* and scan again */
				return SHMK__COND_WAIT; /* a slow subscriber */
			}
		}
		T2++;
		{
			struct topic_desc *nd = desc(v, T2);
			uint64_t ns = load(&nd->seq, memory_order_acquire);

			/* A finished message linked its successor (a later
			 * message's state: tail moved on, look again). */
			if (ns >> 2 > T2)
				return 1;
			if (ns >> 2 < T2 || (ns & 3) == 1)
				return poison(t);
			l2 = load(&nd->link, memory_order_relaxed);
		}
	}
	if (T2 == T)
		return fits(v, j, s, a->g, T, lt) ? 1 : SHMK__COND_WAIT;
	/* seq_cst: lossy, before the data we or others then write over the
	 * messages passed (subscribers check tail after they read). */
	atomic_compare_exchange_strong_explicit(&v->ctl->tail, &T, T2,
						memory_order_seq_cst,
						memory_order_relaxed);
	return 1;
}

/* One attempt to claim a message: 1 claimed, SHMK__COND_WAIT blocked,
 * < 0 an error. */
static int try_claim(struct loan_wait *a, int slow)
{
	struct shmk_topic *t = a->t;
	struct topic_view *v = &t->v;
	struct topic_op *op = &t->me->op[a->k];
	uint64_t j = load(&v->ctl->head, memory_order_acquire);
	int round = 0;

	for (;;) {
		struct topic_desc *d;
		uint64_t s, l, st, T, lt;
		int rc;

		if (j > IDX_MAX)
			return poison(t);
		d = desc(v, j);
		s = load(&d->seq, memory_order_acquire);
		if (s != SEQ(j, ST_LINKED)) {
			uint64_t h = load(&v->ctl->head, memory_order_acquire);

			if (h != j) {
				j = h; /* claimed by another: go on */
				continue;
			}
			if (s >> 2 > j)
				return poison(t);
			/* j - 1's claimer has not linked j yet. */
			if (!slow || j == 0)
				return SHMK__COND_WAIT;
			rc = recover(v, j - 1);
			if (rc != 1 || ++round > 64)
				return rc == 1 ? SHMK__COND_WAIT : rc;
			continue;
		}
		/* Acquire above: the link is j - 1's claimer's. */
		l = load(&d->link, memory_order_relaxed);
		st = place(v, l, a->g);
		T = load(&v->ctl->tail, memory_order_acquire);
		if (T > j) {
			/* j was claimed and passed since we read head. */
			uint64_t h = load(&v->ctl->head, memory_order_acquire);

			if (h < T)
				return poison(t);
			j = h;
			continue;
		}
		if (T == j)
			lt = l;
		else if (tail_link(v, T, &lt) < 0) {
			if (++round > 64)
				return SHMK__COND_WAIT;
			continue; /* tail moved on */
		}
		if (!fits(v, j, st, a->g, T, lt)) {
			if (!a->waited && slow) {
				a->waited = 1;
				bump(&op->ctr[P_FULL_WAITS], 1);
			}
			rc = advance(a, j, st, T, lt, slow);
			if (rc != 1)
				return rc;
			if (++round > 64)
				return SHMK__COND_WAIT;
			continue;
		}
		/* The intent before the claim (the claim's release publishes
		 * it to whoever sees head past j), the size before the
		 * intent. */
		atomic_store_explicit(&op->gran, a->g, memory_order_relaxed);
		atomic_store_explicit(&op->intent, j | INTENT_BIT,
				      memory_order_release);
		SHMK__CRASH("topic_intent"); /* the claim never happens */
		if (!atomic_compare_exchange_weak_explicit(
			    &v->ctl->head, &j, j + 1, memory_order_seq_cst,
			    memory_order_acquire)) {
			/* Lost the race: the intent must not stay, or it would
			 * pass for the winner's if the winner dies. */
			atomic_store_explicit(&op->intent, 0,
					      memory_order_relaxed);
			continue;
		}
		SHMK__CRASH("topic_claimed"); /* j + 1 not linked yet */
		{
			struct topic_desc *nd = desc(v, j + 1);

			/* j + 1's descriptor is free: j + 1 < tail + N. */
			atomic_store_explicit(&nd->link, st + a->g,
					      memory_order_relaxed);
			atomic_store_explicit(&nd->seq, SEQ(j + 1, ST_LINKED),
					      memory_order_release);
		}
		/* Our data stores come after the claim and after the tail we
		 * saw: a lossy subscriber that reads them, then tail, sees
		 * that tail (the write side of a sequence lock). */
		atomic_thread_fence(memory_order_release);
		a->j = j;
		a->start = st;
		return 1;
	}
}

static int loan_cond(void *arg, int slow)
{
	struct loan_wait *a = arg;
	int rc;

	rc = topic_check(a->t);
	if (rc < 0)
		return rc;
	if (shut_down(a->t))
		return -EPIPE;
	rc = try_claim(a, slow);
	return rc == 1 ? SHMK__COND_DONE : rc;
}

static int topic_wait(struct shmk_topic *t, struct shmk__ec *ec,
		      shmk__cond_fn cond, void *a, int timeout_ms)
{
	uint32_t wakes0 = shmk__wakes(&t->r);
	int rc = cond(a, 0);

	if (rc == SHMK__COND_DONE || rc < 0)
		return rc < 0 ? rc : 0;
	return shmk__wait(&t->r, wakes0, ec, cond, a,
			  shmk__deadline(timeout_ms), t->r.spin_ns,
			  SHMK__LIVENESS_SLICE_NS, SHMK__WAIT_ASYNC);
}

static int op_get(struct shmk_topic *t)
{
	int k;

	for (k = 0; k < NOPS; k++) {
		_Atomic uint64_t *iw = &t->me->op[k].intent;
		uint8_t free_ = 0;
		uint64_t in, j;

		/* Acquire: pairs with op_put(); the last holder is done. */
		if (!atomic_compare_exchange_strong_explicit(
			    &t->busy[k], &free_, 1, memory_order_acquire,
			    memory_order_relaxed))
			continue;
		/* An orphaned intent our slot's last holder left: recover()
		 * needs it until its message is finished, which it does now
		 * unless a live publisher still names the message. */
		in = load(iw, memory_order_acquire);
		if (!(in & ORPHAN_BIT))
			return k;
		j = in & ~(INTENT_BIT | ORPHAN_BIT);
		if (finished(&t->v, j) || recover(&t->v, j) == 1) {
			atomic_store_explicit(iw, 0, memory_order_relaxed);
			return k;
		}
		atomic_store_explicit(&t->busy[k], 0, memory_order_release);
	}
	return -EBUSY;
}

static void op_put(struct shmk_topic *t, int k)
{
	/* Release: whoever sees the intent cleared sees the message's
	 * final state, stored before. */
	atomic_store_explicit(&t->me->op[k].intent, 0, memory_order_release);
	atomic_store_explicit(&t->mine[k], 0, memory_order_relaxed);
	atomic_store_explicit(&t->busy[k], 0, memory_order_release);
}

SHMK__EXPORT int shmk_topic_loan(struct shmk_topic *t, size_t size,
				 struct shmk_msg *m, int timeout_ms)
{
	struct loan_wait a = {.t = t};
	int rc;

	if (!t || !m)
		return -EINVAL;
	rc = topic_check(t);
	if (!rc)
		rc = shmk__timeout_ok(timeout_ms);
	if (rc < 0)
		return rc;
	if (size > t->v.max_msg)
		return -EMSGSIZE;
	a.g = grans(size);
	a.k = op_get(t);
	if (a.k < 0)
		return a.k;
	rc = topic_wait(t, &t->v.ctl->space, loan_cond, &a, timeout_ms);
	if (rc < 0) {
		op_put(t, a.k);
		return rc;
	}
	atomic_store_explicit(&t->mine[a.k], a.j + 1, memory_order_relaxed);
	atomic_store_explicit(&t->mine_size[a.k], size, memory_order_relaxed);
	m->data = t->v.log + gran_off(&t->v, a.start) * GRAN;
	m->len = size;
	m->pos_ = a.j;
	m->intent_ = a.k;
	m->role_ = 1;
	atomic_store_explicit(&desc(&t->v, a.j)->start, a.start,
			      memory_order_relaxed);
	SHMK__CRASH("topic_loaned");
	/* Shut down while we claimed: subscribers may have been told the
	 * topic is drained (seq_cst, after the claim; see sub_cond()). */
	if (shut_down(t)) {
		shmk_topic_abandon(t, m);
		return -EPIPE;
	}
	return 0;
}

/* The loan m as this handle made it, checked against our own record. */
static int loan_ok(struct shmk_topic *t, const struct shmk_msg *m)
{
	if (!t || !m || m->role_ != 1 || m->intent_ < 0 || m->intent_ >= NOPS ||
	    !atomic_load_explicit(&t->busy[m->intent_], memory_order_relaxed) ||
	    atomic_load_explicit(&t->mine[m->intent_], memory_order_relaxed) !=
		    m->pos_ + 1)
		return -EINVAL;
	return shmk__region_check(&t->r);
}

static void finish(struct shmk_topic *t, struct shmk_msg *m, unsigned st)
{
	int k = m->intent_;

	/* Release: start, len and the data are visible to whoever
	 * acquires the state. */
	atomic_store_explicit(&desc(&t->v, m->pos_)->seq, SEQ(m->pos_, st),
			      memory_order_release);
	SHMK__CRASH("topic_committed"); /* published; intent still set */
	m->role_ = 0;
	if (shmk__ec_notify_async(&t->r, &t->v.ctl->data))
		bump(&t->me->op[k].ctr[P_WAKEUPS], 1);
	/* A publisher may wait for this message to finish (the oldest). */
	shmk__ec_notify_async(&t->r, &t->v.ctl->space);
	op_put(t, k);
}

SHMK__EXPORT int shmk_topic_commit(struct shmk_topic *t, struct shmk_msg *m)
{
	int rc = loan_ok(t, m);
	struct topic_op *op;

	if (rc < 0)
		return rc;
	if (m->len > atomic_load_explicit(&t->mine_size[m->intent_],
					  memory_order_relaxed))
		return -EMSGSIZE; /* still loaned */
	op = &t->me->op[m->intent_];
	atomic_store_explicit(&desc(&t->v, m->pos_)->len, m->len,
			      memory_order_relaxed);
	bump(&op->ctr[P_PUBLISHED], 1);
	bump(&op->ctr[P_BYTES], m->len);
	finish(t, m, ST_COMMIT);
	return 0;
}

SHMK__EXPORT int shmk_topic_abandon(struct shmk_topic *t, struct shmk_msg *m)
{
	int rc = loan_ok(t, m);

	if (rc < 0)
		return rc;
	shmk__count(&t->r, G_ABANDONED, 1);
	finish(t, m, ST_SKIP);
	return 0;
}

SHMK__EXPORT int shmk_topic_publish(struct shmk_topic *t, const void *src,
				    size_t len, int timeout_ms)
{
	struct shmk_msg m;
	int rc;

	if (!t || (len && !src))
		return -EINVAL;
	rc = shmk_topic_loan(t, len, &m, timeout_ms);
	if (rc < 0)
		return rc;
	if (len) {
#ifdef SHMK_CRASH_POINTS
		memcpy(m.data, src, len / 2);
		SHMK__CRASH("topic_mid_copy");
#endif
		memcpy(m.data, src, len);
	}
	return shmk_topic_commit(t, &m);
}

/* ---------------------------------------------------------------------
 * Subscribers
 * --------------------------------------------------------------------- */

static int sub_enter(struct shmk_topic *t)
{
	int busy = 0, rc;

	if (!t)
		return -EINVAL;
	rc = topic_check(t);
	if (rc < 0)
		return rc;
	if (!atomic_compare_exchange_strong_explicit(&t->sub_busy, &busy, 1,
						     memory_order_acquire,
						     memory_order_relaxed))
		return -EBUSY;
	return 0;
}

static void sub_leave(struct shmk_topic *t)
{
	atomic_store_explicit(&t->sub_busy, 0, memory_order_release);
}

/* Publishes our cursor: release, our reads of what it passed are done
 * before a publisher that acquires it reuses their space. */
static void set_cursor(struct shmk_topic *t, uint64_t i)
{
	t->cur = i;
	atomic_store_explicit(&t->me->sub.cursor, SUB_BIT | i,
			      memory_order_release);
	/* Publishers (lossless) and drainers wait for cursors. */
	if (shmk__ec_notify_async(&t->r, &t->v.ctl->space))
		bump(&t->me->sub.ctr[S_WAKEUPS - S_DELIVERED], 1);
}

SHMK__EXPORT int shmk_topic_subscribe(struct shmk_topic *t, int history)
{
	struct topic_ctl *c;
	uint64_t h, T, f, i;
	int rc = sub_enter(t), round;

	if (rc < 0)
		return rc;
	c = t->v.ctl;
	if (history < -1)
		rc = -EINVAL;
	else if (t->subscribed)
		rc = -EALREADY;
	if (rc < 0)
		goto out;
	for (round = 0;; round++) {
		rc = snapshot(&t->v, &T, &h);
		if (rc < 0)
			goto fail;
		f = t->v.lossy ? T : load(&c->floor, memory_order_seq_cst);
		/* The floor is at least tail and at most head (which may have
		 * moved on since we read it: look again, a few times). */
		if (f < T || round > 1000) {
			rc = poison(t);
			goto fail;
		}
		if (f > h)
			f = h;
		i = history < 0 || (uint64_t)history > h - f
			    ? f
			    : h - (uint64_t)history;
		/* seq_cst, then the floor again (seq_cst): see scan(). */
		atomic_store_explicit(&t->me->sub.cursor, SUB_BIT | i,
				      memory_order_seq_cst);
		f = t->v.lossy ? load(&c->tail, memory_order_seq_cst)
			       : load(&c->floor, memory_order_seq_cst);
		if (f <= i)
			break;
	}
	t->cur = i;
	t->subscribed = 1;
	t->holding = 0;
out:
	sub_leave(t);
	return rc;
fail:
	/* A cursor stored by an earlier round must not stay: lossless
	 * publishers would wait for a subscription that does not exist. */
	unsubscribe(t);
	goto out;
}

static void unsubscribe(struct shmk_topic *t)
{
	atomic_store_explicit(&t->me->sub.cursor, 0, memory_order_release);
	t->subscribed = 0;
	t->holding = 0;
	shmk__ec_notify(&t->r, &t->v.ctl->space);
}

SHMK__EXPORT int shmk_topic_unsubscribe(struct shmk_topic *t)
{
	int rc = sub_enter(t);

	if (rc < 0)
		return rc;
	if (!t->subscribed)
		rc = -ENOTCONN;
	else
		unsubscribe(t);
	sub_leave(t);
	return rc;
}

struct sub_wait {
	struct shmk_topic *t;
	uint64_t pos, start, len;
	int waited;
};

/* Lapped (lossy): tail passed the cursor.  The messages passed are lost;
 * the cursor moves to the oldest one held. */
static int lapped(struct shmk_topic *t, uint64_t T)
{
	uint64_t n = T - t->cur;

	bump(&t->me->sub.ctr[S_LOST - S_DELIVERED], n);
	set_cursor(t, T);
	return -EOVERFLOW;
}

static int sub_cond(void *arg, int slow)
{
	struct sub_wait *a = arg;
	struct shmk_topic *t = a->t;
	struct topic_view *v = &t->v;
	int rc, round = 0;

	rc = topic_check(t);
	if (rc < 0)
		return rc;
	for (;;) {
		uint64_t i = t->cur, h, s, st, len, g, T;
		struct topic_desc *d = desc(v, i);

		if (v->lossy) {
			T = load(&v->ctl->tail, memory_order_acquire);
			if (T > i)
				return lapped(t, T);
		}
		/* A first look at the descriptor (acquire: pairs with the
		 * publisher's release of seq).  A message that is there, or
		 * passed over, needs no look at head, which every claim
		 * writes; nor does one only linked while we spin, as we would
		 * spin on whether it is claimed or not.  So a subscriber that
		 * keeps up leaves head to the publishers, and reads it, then
		 * the state again, only when it has to tell. */
		s = load(&d->seq, memory_order_acquire);
		if (s == SEQ(i, ST_LINKED) && !slow)
			return SHMK__COND_WAIT;
		if (s == SEQ(i, ST_COMMIT) || s == SEQ(i, ST_SKIP))
			goto look;
		h = load(&v->ctl->head, memory_order_acquire);
		if (i >= h) {
			if (i > h)
				return poison(t);
			/* Drained after a shutdown: seq_cst, the state before
			 * head, against a claim before the claimer's look at
			 * the state (shmk_topic_loan()). */
			if (shut_down(t) &&
			    load(&v->ctl->head, memory_order_seq_cst) <= i)
				return -EPIPE;
			if (slow && !a->waited) {
				a->waited = 1;
				bump(&t->me->sub
					      .ctr[S_EMPTY_WAITS - S_DELIVERED],
				     1);
			}
			return SHMK__COND_IDLE; /* every claim is notified */
		}
		/* Acquire: pairs with the publisher's release of seq. */
		s = load(&d->seq, memory_order_acquire);
	look:
		if (s == SEQ(i, ST_SKIP)) {
			set_cursor(t, i + 1);
			continue;
		}
		if (s != SEQ(i, ST_COMMIT)) {
			if (v->lossy && s >> 2 > i) {
				/* Overwritten: tail says so (a lying tail
				 * gets a few looks, then an expiry). */
				if (++round > 64)
					return SHMK__COND_WAIT;
				continue;
			}
			if (s >> 2 > i)
				return poison(t);
			if (!slow)
				return SHMK__COND_WAIT;
			rc = recover(v, i);
			if (rc != 1)
				return rc;
			if (++round > 64)
				return SHMK__COND_WAIT;
			continue;
		}
		/* Read once, checked, used: within the log, contiguous. */
		st = load(&d->start, memory_order_relaxed);
		len = load(&d->len, memory_order_relaxed);
		g = grans(len);
		if (len > v->max_msg || gran_off(v, st) + g > v->cg) {
			if (v->lossy &&
			    load(&v->ctl->tail, memory_order_acquire) > i &&
			    ++round <= 64)
				continue; /* overwritten while we looked */
			return poison(t);
		}
		a->pos = i;
		a->start = st;
		a->len = len;
		return SHMK__COND_DONE;
	}
}

/* Lossy: was message i overwritten while we read it?  The read side of a
 * sequence lock: our reads of it, then tail. */
static int overwritten(struct shmk_topic *t, uint64_t i)
{
	uint64_t T;

	if (!t->v.lossy)
		return 0;
	atomic_thread_fence(memory_order_acquire);
	T = load(&t->v.ctl->tail, memory_order_acquire);
	return T > i ? lapped(t, T) : 0;
}

static int take(struct shmk_topic *t, struct sub_wait *a, int timeout_ms)
{
	int rc = shmk__timeout_ok(timeout_ms);

	if (!rc && !t->subscribed)
		rc = -ENOTCONN;
	if (!rc && t->holding)
		rc = -EBUSY;
	if (rc < 0)
		return rc;
	a->t = t;
	return topic_wait(t, &t->v.ctl->data, sub_cond, a, timeout_ms);
}

static void delivered(struct shmk_topic *t, uint64_t i, uint64_t len)
{
	bump(&t->me->sub.ctr[0], 1);
	bump(&t->me->sub.ctr[S_BYTES - S_DELIVERED], len);
	set_cursor(t, i + 1);
}

SHMK__EXPORT int shmk_topic_acquire(struct shmk_topic *t, struct shmk_msg *m,
				    int timeout_ms)
{
	struct sub_wait a = {0};
	int rc = m ? sub_enter(t) : -EINVAL;

	if (rc < 0)
		return rc;
	rc = take(t, &a, timeout_ms);
	if (!rc) {
		m->data = t->v.log + gran_off(&t->v, a.start) * GRAN;
		m->len = (size_t)a.len;
		m->pos_ = a.pos;
		m->intent_ = -1;
		m->role_ = 2;
		t->holding = 1;
		t->held_pos = a.pos;
		SHMK__CRASH("topic_acquired");
	}
	sub_leave(t);
	return rc;
}

SHMK__EXPORT int shmk_topic_release(struct shmk_topic *t, struct shmk_msg *m)
{
	int rc = m ? sub_enter(t) : -EINVAL;

	if (rc < 0)
		return rc;
	if (!t->holding || m->role_ != 2 || m->pos_ != t->held_pos) {
		sub_leave(t);
		return -EINVAL;
	}
	t->holding = 0;
	m->role_ = 0;
	rc = overwritten(t, m->pos_);
	if (!rc)
		delivered(t, m->pos_, m->len);
	sub_leave(t);
	return rc;
}

SHMK__EXPORT ssize_t shmk_topic_receive(struct shmk_topic *t, void *dst,
					size_t cap, int timeout_ms)
{
	struct sub_wait a = {0};
	int rc = !t || (cap && !dst) ? -EINVAL : sub_enter(t);

	if (rc < 0)
		return rc;
	rc = take(t, &a, timeout_ms);
	if (!rc && a.len > cap)
		rc = -EMSGSIZE; /* it stays next */
	if (!rc) {
		if (a.len)
			racy_copy(dst,
				  t->v.log + gran_off(&t->v, a.start) * GRAN,
				  (size_t)a.len);
		rc = overwritten(t, a.pos);
		if (!rc)
			delivered(t, a.pos, a.len);
	}
	sub_leave(t);
	return rc < 0 ? rc : (ssize_t)a.len;
}

/* ---------------------------------------------------------------------
 * Draining
 * --------------------------------------------------------------------- */

struct drain_wait {
	struct shmk_topic *t;
	uint64_t h0;
};

/* Every live subscription but ours has its cursor at h0 or past it. */
static int drain_cond(void *arg, int slow)
{
	struct drain_wait *a = arg;
	struct shmk_topic *t = a->t;
	int k, rc = topic_check(t);

	if (rc < 0)
		return rc;
	for (k = 0; k < SHMK__MAX_PARTS; k++) {
		uint64_t cw =
			load(&t->v.parts[k].sub.cursor, memory_order_acquire);

		if (!(cw & SUB_BIT) || (cw & ~SUB_BIT) >= a->h0 ||
		    k == t->r.slot)
			continue;
		if (known_dead(t, k, cw))
			continue;
		if (slow && sub_dead(t, k, cw))
			continue;
		return SHMK__COND_WAIT;
	}
	return SHMK__COND_DONE;
}

SHMK__EXPORT int shmk_topic_drain(struct shmk_topic *t, int timeout_ms)
{
	struct drain_wait a = {.t = t};
	int rc;

	if (!t)
		return -EINVAL;
	rc = topic_check(t);
	if (!rc)
		rc = shmk__timeout_ok(timeout_ms);
	if (rc < 0)
		return rc;
	a.h0 = load(&t->v.ctl->head, memory_order_acquire);
	if (a.h0 > IDX_MAX)
		return poison(t);
	return topic_wait(t, &t->v.ctl->space, drain_cond, &a, timeout_ms);
}

/* Our subscription's counters: written by its thread, read by any
 * (relaxed); folded into the header's only at close. */
static uint64_t my_ctr(const struct shmk_topic *t, int i)
{
	return atomic_load_explicit(&t->me->sub.ctr[i - S_DELIVERED],
				    memory_order_relaxed);
}

SHMK__EXPORT uint64_t shmk_topic_lost(const struct shmk_topic *t)
{
	return t && !t->r.forked ? my_ctr(t, S_LOST) : 0;
}

/*
 * The newest committed message, found from head back (publishers pay
 * nothing for it), copied, and checked against tail afterwards: a message
 * passed by tail while we copied may be torn, so we try the newest again.
 */
SHMK__EXPORT ssize_t shmk_topic_latest(struct shmk_topic *t, void *dst,
				       size_t cap)
{
	struct topic_view *v;
	int tries;

	if (!t || (cap && !dst))
		return -EINVAL;
	if (topic_check(t) < 0)
		return topic_check(t);
	v = &t->v;
	for (tries = 0; tries < 1000; tries++) {
		uint64_t h, T, i;
		int rc = snapshot(v, &T, &h);

		if (rc < 0)
			return rc == -EBADMSG ? poison(t) : rc;
		for (i = h; i > T; i--) {
			struct topic_desc *d = desc(v, i - 1);
			uint64_t s = load(&d->seq, memory_order_acquire);
			uint64_t st, len;

			if (s != SEQ(i - 1, ST_COMMIT))
				continue;
			st = load(&d->start, memory_order_relaxed);
			len = load(&d->len, memory_order_relaxed);
			if (len > v->max_msg ||
			    gran_off(v, st) + grans(len) > v->cg)
				break; /* overwritten, or corrupt: again */
			if (len > cap)
				return -EMSGSIZE;
			if (len)
				racy_copy(dst, v->log + gran_off(v, st) * GRAN,
					  (size_t)len);
			atomic_thread_fence(memory_order_acquire);
			if (load(&v->ctl->tail, memory_order_acquire) < i &&
			    load(&d->seq, memory_order_relaxed) == s)
				return (ssize_t)len;
			break;
		}
		if (i == T)
			return -EAGAIN;
	}
	return -EAGAIN;
}

/* ---------------------------------------------------------------------
 * Statistics
 * --------------------------------------------------------------------- */

/*
 * Sums the counters (each read once) and computes the others: alive(k)
 * says whether slot k's holder lives.  out[] has NCTR entries.
 */
static void sum(uint64_t *out, const _Atomic uint64_t *global,
		const struct topic_part *parts, const struct topic_ctl *c,
		const struct shmk__part *pt, int (*alive)(void *, int),
		void *arg)
{
	uint64_t head =
		load((_Atomic uint64_t *)&c->head, memory_order_acquire);
	uint64_t tail =
		load((_Atomic uint64_t *)&c->tail, memory_order_acquire);
	uint64_t minc = UINT64_MAX;
	int i, k, o;

	for (i = 0; i < X_HELD; i++)
		out[i] = load((_Atomic uint64_t *)&global[i],
			      memory_order_relaxed);
	for (i = X_HELD; i < NCTR; i++)
		out[i] = 0;
	for (k = 0; k < SHMK__MAX_PARTS; k++) {
		const struct topic_part *p = &parts[k];
		uint64_t cw;

		for (o = 0; o < NOPS; o++)
			for (i = 0; i < NP_CTR; i++)
				out[i] += load(
					(_Atomic uint64_t *)&p->op[o].ctr[i],
					memory_order_relaxed);
		for (i = 0; i < NS_CTR; i++)
			out[S_DELIVERED + i] +=
				load((_Atomic uint64_t *)&p->sub.ctr[i],
				     memory_order_relaxed);
		cw = load((_Atomic uint64_t *)&p->sub.cursor,
			  memory_order_acquire);
		if (!(cw & SUB_BIT) || alive(arg, k) == 0)
			continue;
		out[X_SUBSCRIBERS]++;
		if ((cw & ~SUB_BIT) < minc) {
			minc = cw & ~SUB_BIT;
			out[X_SLOWEST_PID] = atomic_load_explicit(
				(_Atomic uint32_t *)&pt[k].pid,
				memory_order_relaxed);
		}
	}
	out[X_HELD] = head > tail ? head - tail : 0;
	out[X_SLOWEST_LAG] = minc < head ? head - minc : 0;
}

static int alive_region(void *arg, int k)
{
	return shmk__part_alive(arg, k);
}

SHMK__EXPORT int shmk_topic_stats(struct shmk_topic *t,
				  struct shmk_topic_stats *st)
{
	uint64_t x[NCTR];
	int rc;

	if (!t || !st)
		return -EINVAL;
	rc = shmk__region_check(&t->r);
	if (rc < 0)
		return rc;
	sum(x, t->r.hdr->counter, t->v.parts, t->v.ctl, t->r.hdr->part,
	    alive_region, &t->r);
	memset(st, 0, sizeof(*st));
	st->capacity = t->r.geom[0];
	st->max_msg = t->r.geom[1];
	/* One descriptor is always the next message's (its link is
	 * written at the claim before it: fits()), so n hold n - 1. */
	st->slots = t->v.n - 1;
	st->lossy = t->v.lossy;
	st->published = x[P_PUBLISHED];
	st->bytes_published = x[P_BYTES];
	st->abandoned = x[G_ABANDONED];
	st->recovered = x[G_RECOVERED];
	st->full_waits = x[P_FULL_WAITS];
	st->delivered = x[S_DELIVERED];
	st->lost = x[S_LOST];
	st->held = x[X_HELD];
	st->subscribers = x[X_SUBSCRIBERS];
	st->slowest_lag = x[X_SLOWEST_LAG];
	st->slowest_pid = x[X_SLOWEST_PID];
	st->my_delivered = my_ctr(t, S_DELIVERED);
	st->my_lost = my_ctr(t, S_LOST);
	{
		uint64_t cw = load(&t->me->sub.cursor, memory_order_acquire);
		uint64_t h = load(&t->v.ctl->head, memory_order_acquire);

		if ((cw & SUB_BIT) && h > (cw & ~SUB_BIT))
			st->my_lag = h - (cw & ~SUB_BIT);
	}
	return 0;
}

static int alive_fd(void *arg, int k)
{
	return shmk__ofd_held(*(int *)arg, SHMK__LOCK_BYTE(k));
}

/* For shmk_stat(): the same, from the file (nothing mapped). */
static int topic_stat_counters(int fd, const struct shmk__hdr *h, uint64_t *out)
{
	size_t len = SHMK__MAX_PARTS * sizeof(struct topic_part);
	struct topic_part *parts = malloc(len);
	int rc;

	if (!parts)
		return -ENOMEM;
	rc = shmk__pread_all(fd, parts, len, SHMK__HDR_SIZE);
	if (!rc)
		sum(out, h->counter, parts, (const struct topic_ctl *)h->ctl,
		    h->part, alive_fd, &fd);
	free(parts);
	return rc;
}
