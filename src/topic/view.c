/* SPDX-License-Identifier: MIT */
/*
 * topic/view.c - the topic's geometry and layout, the view of a mapped
 * topic (topic_view), tail and head at one moment (snapshot), and the
 * dead: a publisher that died inside its loan (finish_dead, recover), a
 * subscriber whose process is gone (sub_dead).
 *
 * Layer: the bottom of topic.  Calls nothing of publish.c, subscribe.c or
 * endpoint.c.
 */
#define _GNU_SOURCE
#include "topic.h"

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

int shmk__topic_layout(const uint64_t geom[SHMK__GEOM_N], uint64_t *total)
{
	struct topic_geom g;
	int rc = topic_geometry(geom, &g);

	if (!rc)
		*total = g.total;
	return rc;
}

void shmk__topic_view_of(struct shmk__region *r, struct topic_view *v)
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
 * tail and head at one moment: tail read before and after head, equal
 * (tail only grows, so it held while head was read).  Then tail <= head
 * <= tail + N, or the shared state is corrupt.  Returns 0, -EBADMSG, or
 * -EAGAIN if tail kept moving.
 */
int shmk__topic_snapshot(const struct topic_view *v, uint64_t *T, uint64_t *h)
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
int shmk__topic_recover(const struct topic_view *v, uint64_t j)
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
 * Dead subscribers
 * --------------------------------------------------------------------- */

/*
 * Is the subscriber in slot k, whose cursor word is cw, gone?  If so it
 * is remembered as dead (by this handle) and 1 returned.
 */
int shmk__topic_sub_dead(struct shmk_topic *t, int k, uint64_t cw)
{
	uint32_t gen = atomic_load_explicit(&t->r.hdr->part[k].gen,
					    memory_order_acquire);

	if (k == t->r.slot || shmk__part_alive(&t->r, k) != 0)
		return 0;
	atomic_store_explicit(&t->dead_cur[k], cw, memory_order_relaxed);
	atomic_store_explicit(&t->dead_gen[k], gen, memory_order_relaxed);
	return 1;
}
