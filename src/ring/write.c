/* SPDX-License-Identifier: MIT */
/*
 * ring/write.c - the writer's side: claims of head (try_reserve,
 * res_cond), the high-water mark (depth_at, high_water), publication
 * (publish), and shmk_ring_reserve, _commit, _abort and _write.
 *
 * Layer: above ops.c.  Calls ops.c; nothing of read.c or ring.c.
 */
#define _GNU_SOURCE
#include <string.h>

#include "ring_impl.h"

/* ---------------------------------------------------------------------
 * Writers
 * --------------------------------------------------------------------- */

struct res_wait {
	struct shmk_ring *r;
	int k; /* our operation slot */
	uint64_t pos;
	int waited;
};

/* Messages waiting once position p is reserved, if tail is t. */
static uint64_t depth_at(struct shmk_ring *r, uint64_t p, uint64_t t)
{
	uint64_t d = p + 1 > t ? p + 1 - t : 0;

	return d < r->n ? d : r->n;
}

/*
 * The high-water mark, at every reservation, without a look at tail (a
 * line readers write) for each: tail only grows, so p + 1 less a tail
 * seen before is at least the depth; tail is looked at only when that
 * bound passes the mark, which after a while is rare.
 */
static void high_water(struct shmk_ring *r, uint64_t p)
{
	_Atomic uint64_t *w = &r->reg.hdr->counter[RING_G_HWM];
	uint64_t hwm = atomic_load_explicit(w, memory_order_relaxed), t, d;

	t = atomic_load_explicit(&r->seen_tail, memory_order_relaxed);
	if (depth_at(r, p, t) <= hwm)
		return;
	t = atomic_load_explicit(&r->ctl->tail, memory_order_relaxed);
	if (t > p + 1)
		return; /* not a tail (tail never passes head) */
	atomic_store_explicit(&r->seen_tail, t, memory_order_relaxed);
	d = depth_at(r, p, t);
	while (d > hwm &&
	       !atomic_compare_exchange_weak_explicit(
		       w, &hwm, d, memory_order_relaxed, memory_order_relaxed))
		;
}

/* One attempt to claim the position at head: 1 claimed, 0 blocked at
 * node *blocked, < 0 an error. */
static int try_reserve(struct res_wait *a, uint64_t *blocked)
{
	struct shmk_ring *r = a->r;
	_Atomic uint64_t *iw = &r->me->op[a->k].intent;
	uint64_t p = atomic_load_explicit(&r->ctl->head, memory_order_acquire);

	for (;;) {
		struct ring_desc *d;
		int64_t diff;
		uint64_t s;

		if (p > POS_MAX)
			return poison(r);
		d = &r->desc[p % r->n];
		/* Acquire: pairs with the release of the node by its last
		 * reader (or recoverer); what they did is done. */
		s = atomic_load_explicit(&d->seq, memory_order_acquire);
		diff = (int64_t)((s & ~SKIP_BIT) - p); /* a skip is a state */
		if (diff < 0) {
			*blocked = p; /* the depth was counted at p - 1 */
			return 0;
		}
		if (diff > 0) {
			/* Another writer took p and has moved head on: we saw
			 * its commit, which came after its claim.  head still
			 * at p is therefore corrupt shared state. */
			uint64_t h = atomic_load_explicit(&r->ctl->head,
							  memory_order_acquire);

			if (h == p)
				return poison(r);
			p = h;
			continue;
		}
		/* The intent before the claim: the claim's release makes it
		 * visible to whoever sees head past p. */
		atomic_store_explicit(iw, p | ROLE_BITS(RING_WRITER),
				      memory_order_relaxed);
		if (r->mode & MODE_SW) {
			/* The only writer: a plain store claims p (for the
			 * shutdown race, see shmk_ring_reserve()). */
			atomic_store_explicit(&r->ctl->head, p + 1,
					      memory_order_release);
		} else if (!atomic_compare_exchange_weak_explicit(
				   &r->ctl->head, &p, p + 1,
				   memory_order_seq_cst,
				   memory_order_acquire)) {
			/* seq_cst: ordered before our look at the state in
			 * reserve, as a draining reader's look at the state
			 * is before its look at head: one of us sees the
			 * other.  Lost the race: the intent must not stay,
			 * or it would pass for the winner's if the winner
			 * dies. */
			atomic_store_explicit(iw, 0, memory_order_relaxed);
			continue;
		}
		a->pos = p;
		high_water(r, p);
		return 1;
	}
}

static int res_cond(void *arg, int slow)
{
	struct res_wait *a = arg;
	struct shmk_ring *r = a->r;
	uint64_t blocked;
	int rc, round;

	if (atomic_load_explicit(&r->poisoned, memory_order_relaxed) ||
	    shmk__region_poisoned(&r->reg))
		return -EBADMSG;
	if (atomic_load_explicit(&r->reg.hdr->state, memory_order_acquire) ==
	    SHMK_STATE_SHUTDOWN)
		return -EPIPE;
	/* A few rounds: recovering a node may reveal the next one stuck
	 * behind it.  The rounds are bounded so that a peer that keeps
	 * undoing our work cannot hold us in this loop; then we wait. */
	for (round = 0;; round++) {
		rc = try_reserve(a, &blocked);
		if (rc || !slow)
			return rc;
		if (!a->waited) {
			a->waited = 1;
			count(r, a->k, RING_C_FULL_WAITS, 1);
		}
		rc = shmk__ring_recover(r, blocked);
		if (rc != RECOVERED)
			return rc;
		if (round == RECOVER_ROUNDS)
			return SHMK__COND_WAIT;
	}
}

SHMK__EXPORT int shmk_ring_reserve(struct shmk_ring *r, struct shmk_msg *m,
				   int timeout_ms)
{
	struct res_wait a = {.r = r};
	int rc = ring_args(r, m, timeout_ms);

	if (rc < 0)
		return rc;
	a.k = (r->mode & MODE_SW) ? ring_role_enter(r, RING_WRITER)
				  : ring_op_get(r);
	if (a.k < 0)
		return a.k;
	rc = ring_wait(r, &r->ctl->space, res_cond, &a, timeout_ms,
		       r->reg.spin_ns, 0);
	if (rc < 0) {
		ring_op_done(r, a.k);
		return rc;
	}
	atomic_store_explicit(&r->mine[a.k], a.pos | ROLE_BITS(RING_WRITER),
			      memory_order_relaxed);
	m->data = r->data + (a.pos % r->n) * r->stride;
	m->len = (size_t)r->node_size;
	m->pos_ = a.pos;
	m->slot_ = a.k;
	m->role_ = RING_WRITER;
	SHMK__CRASH("ring_reserved"); /* the intent names us as the owner */
	/* Shut down while we claimed: readers may already have been told
	 * the ring is drained, so the node is given up (seq_cst: after our
	 * claim; see acq_cond()).  A single writer's claim was a plain store,
	 * which this load may pass: a reader forces the fence it lacks with a
	 * barrier on every CPU before it calls the ring drained (acq_cond());
	 * a process that cannot be reached by one pays the fence here. */
	if ((r->mode & MODE_SW) && !shmk__async_reached())
		atomic_thread_fence(memory_order_seq_cst);
	atomic_signal_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&r->reg.hdr->state, memory_order_seq_cst) ==
	    SHMK_STATE_SHUTDOWN) {
		shmk_ring_abort(r, m);
		return -EPIPE;
	}
	return 0;
}

/* Publishes m's position as committed (or as a skip record). */
static void publish(struct shmk_ring *r, struct shmk_msg *m, uint64_t bits)
{
	struct ring_desc *d = &r->desc[m->pos_ % r->n];
	int k = m->slot_;

	/* Release: the data and len are visible to whoever acquires seq. */
	atomic_store_explicit(&d->seq, (m->pos_ + 1) | bits,
			      memory_order_release);
	SHMK__CRASH("ring_committed"); /* published; intent still set */
	m->role_ = 0;
	if (shmk__ec_notify_async(&r->reg, &r->ctl->data))
		count(r, k, RING_C_WAKEUPS, 1);
	ring_op_done(r, k);
}

SHMK__EXPORT int shmk_ring_commit(struct shmk_ring *r, struct shmk_msg *m)
{
	int rc = ring_msg_ok(r, m, RING_WRITER);

	if (rc < 0)
		return rc;
	if (m->len > r->node_size)
		return -EMSGSIZE; /* still reserved: shorten it, or abort */
	atomic_store_explicit(&r->desc[m->pos_ % r->n].len, m->len,
			      memory_order_relaxed);
	/* Counted before it is published, and read only once its node is
	 * given back: a death between the act and its count errs on the
	 * side of read + lost <= written, which `shmk check` holds to. */
	count(r, m->slot_, RING_C_WRITTEN, 1);
	count(r, m->slot_, RING_C_BYTES_W, m->len);
	SHMK__CRASH("ring_pre_commit");
	publish(r, m, 0);
	return 0;
}

SHMK__EXPORT int shmk_ring_abort(struct shmk_ring *r, struct shmk_msg *m)
{
	int rc = ring_msg_ok(r, m, RING_WRITER);

	if (rc < 0)
		return rc;
	/* Aborts are rare: the header's shared counter, not the slot's. */
	shmk__count(&r->reg, RING_G_ABORTED, 1);
	publish(r, m, SKIP_BIT);
	return 0;
}

SHMK__EXPORT int shmk_ring_write(struct shmk_ring *r, const void *src,
				 size_t len, int timeout_ms)
{
	struct shmk_msg m;
	int rc;

	if (!r || (len && !src))
		return -EINVAL;
	if (len > r->node_size)
		return -EMSGSIZE;
	rc = shmk_ring_reserve(r, &m, timeout_ms);
	if (rc < 0)
		return rc;
	if (len) {
#ifdef SHMK_CRASH_POINTS
		/* Half the message in the node when the writer dies. */
		memcpy(m.data, src, len / 2);
		SHMK__CRASH("ring_mid_copy");
#endif
		memcpy(m.data, src, len);
	}
	m.len = len;
	return shmk_ring_commit(r, &m);
}
