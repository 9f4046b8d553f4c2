/* SPDX-License-Identifier: MIT */
/*
 * ring/read.c - the reader's side: takes of tail (try_acquire,
 * acq_cond), the node given back (release_node), shmk_ring_acquire,
 * _release and _read, the rpc layer's shmk__ring_acquire_spin and _long,
 * and the drain (drain_cond, shmk_ring_drain).
 *
 * Layer: above ops.c.  Calls ops.c; nothing of write.c or ring.c.
 */
#define _GNU_SOURCE
#include <string.h>

#include "ring_impl.h"

/* ---------------------------------------------------------------------
 * Readers
 * --------------------------------------------------------------------- */

struct acq_wait {
	struct shmk_ring *r;
	int k;	    /* our operation slot */
	size_t cap; /* the largest message the caller takes */
	uint64_t pos, len;
	int waited;
};

/* Releases position p's node for the writer of p + N; k counts. */
static void release_node(struct shmk_ring *r, uint64_t p, int k)
{
	/* Release: our reads of the data are done before a writer of the
	 * next lap acquires the node. */
	atomic_store_explicit(&r->desc[p % r->n].seq, p + r->n,
			      memory_order_release);
	if (shmk__ec_notify_async(&r->reg, &r->ctl->space))
		count(r, k, RING_C_WAKEUPS, 1);
}

/* One attempt to take the position at tail: 1 taken, 0 blocked at node
 * *blocked, < 0 an error. */
static int try_acquire(struct acq_wait *a, uint64_t *blocked)
{
	struct shmk_ring *r = a->r;
	_Atomic uint64_t *iw = &r->me->op[a->k].intent;
	uint64_t p = atomic_load_explicit(&r->ctl->tail, memory_order_acquire);

	for (;;) {
		struct ring_desc *d;
		uint64_t s, len = 0;
		int64_t diff;

		if (p > POS_MAX)
			return poison(r);
		d = &r->desc[p % r->n];
		/* Acquire: pairs with the writer's release of seq; its len
		 * and data are visible. */
		s = atomic_load_explicit(&d->seq, memory_order_acquire);
		diff = (int64_t)((s & ~SKIP_BIT) - (p + 1));
		if (diff < 0) {
			*blocked = p;
			return 0;
		}
		if (diff > 0) {
			/* Another reader took p and has moved tail on (as
			 * for writers): tail still at p is corrupt. */
			uint64_t t = atomic_load_explicit(&r->ctl->tail,
							  memory_order_acquire);

			if (t == p)
				return poison(r);
			p = t;
			continue;
		}
		if (!(s & SKIP_BIT)) {
			/* len is read once and checked against the node
			 * size before it is used. */
			len = atomic_load_explicit(&d->len,
						   memory_order_relaxed);
			if (len > r->node_size)
				return poison(r);
			if (len > a->cap)
				return -EMSGSIZE; /* it stays in the ring */
		}
		atomic_store_explicit(iw, p | ROLE_BITS(RING_READER),
				      memory_order_relaxed);
		if (r->mode & MODE_SR) {
			/* The only reader: a plain store takes p. */
			atomic_store_explicit(&r->ctl->tail, p + 1,
					      memory_order_release);
		} else if (!atomic_compare_exchange_weak_explicit(
				   &r->ctl->tail, &p, p + 1,
				   memory_order_acq_rel,
				   memory_order_acquire)) {
			atomic_store_explicit(iw, 0, memory_order_relaxed);
			continue;
		}
		if (s & SKIP_BIT) {
			/* A writer gave the position up (or died): pass. */
			release_node(r, p, a->k);
			p++;
			continue;
		}
		a->pos = p;
		a->len = len;
		return 1;
	}
}

static int acq_cond(void *arg, int slow)
{
	struct acq_wait *a = arg;
	struct shmk_ring *r = a->r;
	uint64_t blocked;
	int rc, round = 0;

	if (atomic_load_explicit(&r->poisoned, memory_order_relaxed) ||
	    shmk__region_poisoned(&r->reg))
		return -EBADMSG;
again:
	rc = try_acquire(a, &blocked);
	if (rc)
		return rc;
	/* Drained after a shutdown: nothing is reserved past the tail.
	 * seq_cst: the state before head, against a writer's claim before
	 * its look at the state (reserve): either it sees the shutdown and
	 * gives its node up, or we see its claim and wait for it. */
	if (atomic_load_explicit(&r->reg.hdr->state, memory_order_seq_cst) ==
		    SHMK_STATE_SHUTDOWN &&
	    atomic_load_explicit(&r->ctl->head, memory_order_seq_cst) <=
		    atomic_load_explicit(&r->ctl->tail, memory_order_acquire)) {
		/* A single writer claims with a plain store and looks at the
		 * state without a fence: make every CPU fence, then look at
		 * head again.  Either the writer's claim is visible now, or
		 * its look at the state comes after the fence and sees the
		 * shutdown (and it gives the node up). */
		if ((r->mode & MODE_SW) &&
		    !atomic_load_explicit(&r->shut_fenced,
					  memory_order_acquire)) {
			shmk__fence_all();
			atomic_store_explicit(&r->shut_fenced, 1,
					      memory_order_release);
			goto again;
		}
		return -EPIPE;
	}
	if (!slow)
		return SHMK__COND_WAIT;
	if (!a->waited) {
		a->waited = 1;
		count(r, a->k, RING_C_EMPTY_WAITS, 1);
	}
	rc = shmk__ring_recover(r, blocked);
	if (rc == RECOVERED && round++ < RECOVER_ROUNDS)
		goto again;
	return rc == RECOVERED ? SHMK__COND_WAIT : rc;
}

static int acquire(struct shmk_ring *r, struct shmk_msg *m, size_t cap,
		   int timeout_ms, int64_t spin_ns, unsigned flags)
{
	struct acq_wait a = {.r = r, .cap = cap};
	int rc = ring_args(r, m, timeout_ms);

	if (rc < 0)
		return rc;
	a.k = (r->mode & MODE_SR) ? ring_role_enter(r, RING_READER)
				  : ring_op_get(r);
	if (a.k < 0)
		return a.k;
	rc = ring_wait(r, &r->ctl->data, acq_cond, &a, timeout_ms, spin_ns,
		       flags);
	if (rc < 0) {
		ring_op_done(r, a.k);
		return rc;
	}
	atomic_store_explicit(&r->mine[a.k], a.pos | ROLE_BITS(RING_READER),
			      memory_order_relaxed);
	m->data = r->data + (a.pos % r->n) * r->stride;
	m->len = (size_t)a.len;
	m->pos_ = a.pos;
	m->slot_ = a.k;
	m->role_ = RING_READER;
	SHMK__CRASH("ring_acquired");
	return 0;
}

SHMK__EXPORT int shmk_ring_acquire(struct shmk_ring *r, struct shmk_msg *m,
				   int timeout_ms)
{
	return acquire(r, m, SIZE_MAX, timeout_ms, r ? r->reg.spin_ns : 0, 0);
}

int shmk__ring_acquire_spin(struct shmk_ring *r, struct shmk_msg *m,
			    int timeout_ms, int64_t spin_ns)
{
	return acquire(r, m, SIZE_MAX, timeout_ms, spin_ns, 0);
}

int shmk__ring_acquire_long(struct shmk_ring *r, struct shmk_msg *m,
			    int timeout_ms, int64_t spin_ns)
{
	return acquire(r, m, SIZE_MAX, timeout_ms, spin_ns, SHMK__WAIT_LONG);
}

SHMK__EXPORT int shmk_ring_release(struct shmk_ring *r, struct shmk_msg *m)
{
	int rc = ring_msg_ok(r, m, RING_READER), k;

	if (rc < 0)
		return rc;
	k = m->slot_;
	m->role_ = 0;
	SHMK__CRASH("ring_mid_release"); /* node not given back */
	release_node(r, m->pos_, k);
	SHMK__CRASH("ring_released"); /* given back; intent still set */
	/* Counted once given back: a reader that dies before is counted
	 * lost by its recoverer, never read as well (see commit). */
	count(r, k, RING_C_READ, 1);
	count(r, k, RING_C_BYTES_R, m->len);
	ring_op_done(r, k);
	return 0;
}

SHMK__EXPORT ssize_t shmk_ring_read(struct shmk_ring *r, void *dst, size_t cap,
				    int timeout_ms)
{
	struct shmk_msg m;
	size_t len;
	int rc;

	if (!r || (cap && !dst))
		return -EINVAL;
	rc = acquire(r, &m, cap, timeout_ms, r->reg.spin_ns, 0);
	if (rc < 0)
		return rc;
	len = m.len;
	if (len)
		memcpy(dst, m.data, len);
	rc = shmk_ring_release(r, &m);
	return rc < 0 ? rc : (ssize_t)len;
}

/* ---------------------------------------------------------------------
 * Draining
 * --------------------------------------------------------------------- */

struct drain_wait {
	struct shmk_ring *r;
	uint64_t h0; /* head when the drain began */
	uint64_t p;  /* positions below p are released */
};

/*
 * Every position below h0 taken and its node released: position p's node
 * holds p + N (or a later position's state) once released.  Readers
 * notify the space eventcount when they release.  A node held by a dead
 * reader is given back (slow path, shmk__ring_recover()).
 */
static int drain_cond(void *arg, int slow)
{
	struct drain_wait *a = arg;
	struct shmk_ring *r = a->r;
	int rc, round = 0;

	if (atomic_load_explicit(&r->poisoned, memory_order_relaxed) ||
	    shmk__region_poisoned(&r->reg))
		return -EBADMSG;
	while (a->p < a->h0) {
		uint64_t s = atomic_load_explicit(&r->desc[a->p % r->n].seq,
						  memory_order_acquire);

		if ((s & ~SKIP_BIT) >= a->p + r->n) {
			a->p++;
			continue;
		}
		if (!slow)
			return SHMK__COND_WAIT;
		/* Not taken yet (a reader will, and notify), or held by a
		 * reader that may have died. */
		if (atomic_load_explicit(&r->ctl->tail, memory_order_acquire) <=
		    a->p)
			return SHMK__COND_WAIT;
		rc = shmk__ring_recover(r, a->p);
		if (rc == RECOVERED && round++ < RECOVER_ROUNDS)
			continue;
		return rc == RECOVERED ? SHMK__COND_WAIT : rc;
	}
	return SHMK__COND_DONE;
}

SHMK__EXPORT int shmk_ring_drain(struct shmk_ring *r, int timeout_ms)
{
	struct drain_wait a = {.r = r};
	uint64_t h;
	int rc;

	if (!r)
		return -EINVAL;
	rc = shmk__region_check(&r->reg);
	if (!rc)
		rc = shmk__timeout_ok(timeout_ms);
	if (rc < 0)
		return rc;
	h = atomic_load_explicit(&r->ctl->head, memory_order_acquire);
	if (h > POS_MAX)
		return poison(r);
	a.h0 = h;
	a.p = h > r->n ? h - r->n : 0;
	return ring_wait(r, &r->ctl->space, drain_cond, &a, timeout_ms,
			 r->reg.spin_ns, 0);
}
