/* SPDX-License-Identifier: MIT */
/*
 * ring/ops.c - the slow paths of the ring's operation slots and roles:
 * taking a single writer's or reader's role (shmk__ring_role_take) and
 * giving it back (shmk__ring_role_drop), and recovering a position a
 * dead participant claimed (shmk__ring_recover, with intent_live).  What
 * every operation runs (ring_op_get, ring_op_put, ring_role_enter,
 * ring_op_done, ring_msg_ok, ring_args, ring_wait) is inline, in
 * ring_impl.h.
 *
 * Layer: the bottom of src/ring/; calls nothing of the other files.
 */
#define _GNU_SOURCE
#include "ring_impl.h"

/* ---------------------------------------------------------------------
 * Operation slots and intents (taking and giving back a slot: inline, in
 * ring_impl.h)
 * --------------------------------------------------------------------- */

__thread unsigned shmk__ring_op_hint; /* where this thread looks first */

/* ---------------------------------------------------------------------
 * Single-writer and single-reader rings
 *
 * The role is held by one handle at a time, named by its owner id in the
 * ring's writer (reader) word; another handle, here or in another
 * process, gets -EBUSY while the holder lives, and takes the role over
 * once the kernel says the holder is gone (a closed handle gives it back).
 * The holder keeps an operation slot for the role, so that an operation
 * of the role takes no locked instruction (which waits for the stores
 * ahead of it, the node just handed over among them): about 1.1x the
 * messages at 64 B, docs/design.md.
 * The handle's operations of the role run one at a time, from one thread
 * at a time: role_busy catches a second one opened before the first ends,
 * not two threads racing (the caller's to prevent, as documented).
 * --------------------------------------------------------------------- */

/* Takes role for this handle: the slot kept for it, -EBUSY if a live
 * participant holds it, -EBADMSG for a corrupt word.  The slow path of
 * ring_role_enter(). */
int shmk__ring_role_take(struct shmk_ring *r, enum ring_role role)
{
	_Atomic uint64_t *w = ring_role_word(r, role);
	uint64_t me = shmk__owner_id(&r->reg), v;
	int k = atomic_load_explicit(&r->role_k[role], memory_order_acquire);
	int dead, other = -1;

	for (;;) {
		v = atomic_load_explicit(w, memory_order_acquire);
		if (v == me)
			break;
		if (v) {
			dead = shmk__owner_dead(&r->reg, v);
			if (dead < 0)
				return -EBADMSG;
			if (!dead)
				return -EBUSY;
		}
		if (atomic_compare_exchange_strong_explicit(
			    w, &v, me, memory_order_acq_rel,
			    memory_order_relaxed))
			break;
	}
	if (k >= 0)
		return k;
	k = ring_op_get(r);
	if (k < 0)
		return k;
	/* Two threads taking it at once (which the caller should not let
	 * happen): one slot is kept, the other given back. */
	if (!atomic_compare_exchange_strong_explicit(&r->role_k[role], &other,
						     k, memory_order_acq_rel,
						     memory_order_acquire)) {
		ring_op_put(r, k);
		k = other;
	}
	return k;
}

/* Gives the role back at close, if we hold it. */
void shmk__ring_role_drop(struct shmk_ring *r)
{
	uint64_t me = shmk__owner_id(&r->reg);
	int role;

	for (role = RING_WRITER; role <= RING_READER; role++) {
		uint64_t v = me;

		atomic_compare_exchange_strong_explicit(
			ring_role_word(r, role), &v, 0, memory_order_release,
			memory_order_relaxed);
	}
}

/*
 * Does a live participant hold the intent want?  (Our own slot is alive.)
 * Every participant is looked at, not only those below nslots: a hostile
 * nslots must not hide a live owner.  The slow path only.
 */
static int intent_live(struct shmk_ring *r, uint64_t want)
{
	uint32_t k;
	int i;

	for (k = 0; k < SHMK__MAX_PARTS; k++)
		for (i = 0; i < NOPS; i++)
			if (atomic_load_explicit(&r->parts[k].op[i].intent,
						 memory_order_acquire) ==
				    want &&
			    shmk__part_alive(&r->reg, (int)k) != 0)
				return 1; /* alive, or cannot tell */
	return 0;
}

/*
 * Node i blocks us: if the position it is stuck at was claimed by a
 * participant that is gone, finish that participant's work.  Returns
 * SHMK__COND_IDLE if nobody has claimed it (the ring is just empty or
 * full: its next change will be notified), SHMK__COND_WAIT if a live owner
 * (or one we cannot tell) is at work on it, RECOVERED if we finished a dead
 * owner's work (look again at once), -EBADMSG for an impossible state.
 */
int shmk__ring_recover(struct shmk_ring *r, uint64_t p)
{
	uint64_t i = p % r->n;
	struct ring_desc *d = &r->desc[i];
	uint64_t s = atomic_load_explicit(&d->seq, memory_order_acquire);
	uint64_t c = s & ~SKIP_BIT, x;

	/* A node blocking position p is at most a lap behind it. */
	if (c > POS_MAX + r->n || c + r->n < p)
		return poison(r);
	if (c % r->n == i && !(s & SKIP_BIT)) {
		/* Claimed by a writer that has not committed? */
		x = c;
		if (atomic_load_explicit(&r->ctl->head, memory_order_acquire) <=
		    x)
			return SHMK__COND_IDLE;
		if (intent_live(r, x | ROLE_BITS(RING_WRITER)))
			return SHMK__COND_WAIT;
		if (atomic_compare_exchange_strong_explicit(
			    &d->seq, &s, (x + 1) | SKIP_BIT,
			    memory_order_release, memory_order_relaxed)) {
			shmk__count(&r->reg, RING_G_RECOVERED, 1);
			shmk__ec_notify(&r->reg, &r->ctl->data);
		}
		return RECOVERED;
	}
	if (c % r->n == (i + 1) % r->n && c > 0) {
		/* Taken by a reader that has not released it?  If not yet
		 * taken, the ring is full; a reader may take the node and die
		 * before anyone is notified, so the writer keeps polling. */
		x = c - 1;
		if (atomic_load_explicit(&r->ctl->tail, memory_order_acquire) <=
		    x)
			return SHMK__COND_WAIT;
		if (intent_live(r, x | ROLE_BITS(RING_READER)))
			return SHMK__COND_WAIT;
		if (atomic_compare_exchange_strong_explicit(
			    &d->seq, &s, x + r->n, memory_order_release,
			    memory_order_relaxed)) {
			if (!(s & SKIP_BIT))
				shmk__count(&r->reg, RING_G_LOST, 1);
			shmk__ec_notify(&r->reg, &r->ctl->space);
		}
		return RECOVERED;
	}
	return poison(r);
}
