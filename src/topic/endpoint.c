/* SPDX-License-Identifier: MIT */
/*
 * topic/endpoint.c - the topic's kind (its descriptor, and reclaim, which
 * clears a participant slot that changes hands), create, open and close,
 * the handle's properties, and the statistics (shmk_topic_stats, and
 * shmk_stat's from the file).
 *
 * Layer: the top of topic.  Calls view.c and subscribe.c (close ends the
 * subscription); nothing of publish.c.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "topic.h"

/* ---------------------------------------------------------------------
 * The kind
 * --------------------------------------------------------------------- */

/*
 * A slot changes hands: its last holder (gone, or closed with nothing open)
 * leaves its counters where they are (the next holder counts on from them:
 * moving them into the header's, an exchange then an add, would lose them to
 * a process killed in between), and its subscription ends.  An intent of its
 * for a claimed, unfinished message is not acted on here, nor thrown away:
 * the message may be a live publisher's (the holder died before its claim,
 * or after losing it), or the holder's own claim that a live publisher's
 * intent names too (that one lost the claim, and will need the message
 * finished); only recover() tells, when no live intent names it.  The intent
 * stays, orphaned, with its granule count, until the message is finished;
 * op_get() passes over it meanwhile.  The others are cleared.
 */
static void topic_reclaim(struct shmk__region *r, int slot)
{
	struct topic_view v;
	struct topic_part *p;
	uint64_t head;
	int i;

	shmk__topic_view_of(r, &v);
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
	atomic_store_explicit(&p->sub.cursor, 0, memory_order_seq_cst);
}

static int topic_stat_counters(int fd, const struct shmk__hdr *h,
			       uint64_t *out);

const struct shmk__kind shmk__topic_kind = {
	.kind = SHMK_KIND_TOPIC,
	.name = "topic",
	.layout = shmk__topic_layout,
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
	int i;

	if (rc < 0) {
		free(t);
		return rc;
	}
	shmk__topic_view_of(&t->r, &t->v);
	t->me = &t->v.parts[t->r.slot];
	for (i = 0; i < NS_CTR; i++)
		t->sub_base[i] = atomic_load_explicit(&t->me->sub.ctr[i],
						      memory_order_relaxed);
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
			shmk__topic_unsubscribe(t);
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
