/* SPDX-License-Identifier: MIT */
/*
 * ring/ring_impl.h - shmk_ring: a bounded FIFO of fixed-size nodes between
 * any number of writer and reader threads and processes; each message goes
 * to exactly one reader, in the order writers reserved their nodes.  The
 * private header of src/ring/: the shared layout, the handle, the small
 * helpers every file uses, and what the files call of each other.
 *
 * Positions are 64-bit and only grow: head (next to reserve) and tail
 * (next to take).  Node i serves positions i, i + N, i + 2N, ...; its
 * sequence word says where it is in that life:
 *
 *	seq == x		free for the writer of position x
 *	seq == x + 1		x committed (readable); SKIP bit: no message
 *	seq == x + N		released: free for the writer of x + N
 *
 * A writer at head p claims p when node p % N says "free for p"; a reader
 * at tail p takes p when it says "committed for p".  Every operation runs
 * in one of its participant's operation slots: before it claims a
 * position it writes an intent (position and role) there, so that whoever
 * later finds the position claimed but unfinished can tell a live owner
 * (wait) from a dead one (turn an unfinished write into a skip record,
 * release an unfinished read and count the message lost).  The slot also
 * holds the operation's counters: one owner at a time, so they need no
 * locked instruction.  The only locked instructions of an operation come
 * first (taking the slot, claiming the position), before any store to a
 * line another CPU reads: a locked instruction waits for the stores ahead
 * of it, and those would be waiting for the other CPU's cache.
 * docs/design.md has the argument; docs/format.md every byte.
 *
 * The files:
 *   (here)   what every operation runs, inline: the argument checks,
 *            taking and giving back an operation slot, entering a role,
 *            the wait, the check of a message handed back.
 *   ops.c    the slow paths: taking and dropping the single writer's and
 *            reader's roles, recovery of a dead participant's position.
 *   write.c  reserve, commit, abort, write.  Calls ops.c.
 *   read.c   acquire, release, read, drain.  Calls ops.c.
 *   ring.c   geometry, the kind, create, open, close, the handle's
 *            properties, statistics.  Calls ops.c.
 * ../ring.h (src/ring.h) is what the rpc layer uses.
 */
#ifndef SHMK_RING_RING_IMPL_H
#define SHMK_RING_RING_IMPL_H

#include "../kinds.h"
#include "../ring.h"
#include "../sync.h"

#define SKIP_BIT      (UINT64_C(1) << 63)
#define POS_MAX	      ((UINT64_C(1) << 62) - 1) /* positions stay below */
#define NOPS	      16 /* operation slots: operations at once per handle */
#define MAX_NODE_SIZE (UINT64_C(1) << 40)
/* geom[2]: the ring's mode, from the create flags. */
#define MODE_SW 1u /* SHMK_F_SINGLE_WRITER */
#define MODE_SR 2u /* SHMK_F_SINGLE_READER */

/*
 * The role of an operation.  The ring records it with these values
 * everywhere: in bits 62-63 of an intent (position | ROLE_BITS(role), the
 * shared layout of docs/format.md), in shmk_msg.role_ (0 there: no
 * message out), and as the index of the handle's role_k[] and
 * role_busy[].
 */
enum ring_role { RING_WRITER = 1, RING_READER = 2 };
#define ROLE_BITS(role) ((uint64_t)(role) << 62)

/* Node descriptor: one cache line each, so neighbours never share one. */
struct ring_desc {
	_Atomic uint64_t seq; /* see above */
	_Atomic uint64_t len; /* message bytes, written before seq */
	uint8_t pad[SHMK__CACHELINE - 16];
};

/*
 * An operation slot: the intent of the operation that holds it, and what
 * the operations that held it counted.  Written only by the thread that
 * holds the slot (taken with a compare-and-swap of the handle's busy
 * byte, given back with a release store): one cache line each.
 */
struct ring_op {
	_Atomic uint64_t intent; /* position | role, or 0 */
	_Atomic uint64_t ctr[7];
};

/* Per-participant block, indexed like the participant table. */
struct ring_part {
	struct ring_op op[NOPS];
};
_Static_assert(sizeof(struct ring_op) == SHMK__CACHELINE, "ring op");

/* The ring's counters.  RING_C_*: an operation slot's (ring_op.ctr),
 * kept in the slot for good; the same indices in the header's counter[]
 * are added too (objects of earlier builds folded slots into them).
 * RING_G_*: the global ones, in the header's counter[] only, after those.
 * The rpc layer's C_* are its own. */
enum {
	RING_C_WRITTEN,
	RING_C_BYTES_W,
	RING_C_READ,
	RING_C_BYTES_R,
	RING_C_FULL_WAITS,
	RING_C_EMPTY_WAITS,
	RING_C_WAKEUPS,
	RING_OP_CTRS, /* counters of an operation slot */
	RING_G_ABORTED = RING_OP_CTRS,
	RING_G_RECOVERED,
	RING_G_LOST,
	RING_G_HWM,
	RING_CTRS /* all of the ring's counters */
};

/* Control words, in the header's ctl area, each on its own line. */
struct ring_ctl {
	_Atomic uint64_t head; /* writers: next position to reserve */
	/* A single-writer ring's writer: its owner id, or 0.  On the line
	 * of head, which only writers touch. */
	_Atomic uint64_t writer;
	uint8_t pad0[SHMK__CACHELINE - 16];
	_Atomic uint64_t tail;	 /* readers: next position to take */
	_Atomic uint64_t reader; /* a single-reader ring's reader */
	uint8_t pad1[SHMK__CACHELINE - 16];
	struct shmk__ec data; /* readers sleep here */
	uint8_t pad2[SHMK__CACHELINE - 4];
	struct shmk__ec space; /* writers sleep here */
	uint8_t pad3[SHMK__CACHELINE - 4];
};
_Static_assert(sizeof(struct ring_ctl) <= SHMK__CTL_SIZE, "ring ctl");

struct shmk_ring {
	struct shmk__region reg;
	struct ring_ctl *ctl;
	struct ring_desc *desc;
	struct ring_part *parts; /* all participants' blocks */
	struct ring_part *me;	 /* ours */
	char *data;
	uint64_t n, node_size, stride;
	unsigned mode;		    /* MODE_*, from the private geometry */
	_Atomic uint64_t seen_tail; /* a tail seen before (high_water()) */
	/* A barrier was forced after the shutdown was seen.  It is forced
	 * once: a claim whose look at the state came later sees the
	 * shutdown. */
	_Atomic int shut_fenced;
	_Atomic int poisoned; /* corrupt shared state seen: all calls fail */
	/* The single writer's and reader's role (indexed by enum ring_role;
	 * [0] unused) if this handle holds it: the operation slot kept for
	 * the role, or -1; and whether an operation of the role is open (one
	 * at a time). */
	_Atomic int role_k[RING_READER + 1];
	_Atomic int role_busy[RING_READER + 1];
	/* Our operation slots in use, a byte each (process-private). */
	_Atomic uint8_t busy[NOPS];
	/* What each slot in use holds (position | role): our own record of
	 * the intent we published, which is what a message handed back to
	 * us is checked against (the shared copy may have been overwritten).
	 * Written and read by the slot's holder only. */
	_Atomic uint64_t mine[NOPS];
};

/* Counts in operation slot k: ours alone while we hold it. */
static inline void count(struct shmk_ring *r, int k, int c, uint64_t v)
{
	_Atomic uint64_t *w = &r->me->op[k].ctr[c];

	atomic_store_explicit(w,
			      atomic_load_explicit(w, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

static inline int poison(struct shmk_ring *r)
{
	atomic_store_explicit(&r->poisoned, 1, memory_order_relaxed);
	return -EBADMSG;
}

#define RECOVERED      3
#define RECOVER_ROUNDS 64

/* The checks reserve and acquire begin with. */
static inline int ring_args(struct shmk_ring *r, struct shmk_msg *m,
			    int timeout_ms)
{
	int rc;

	if (!r || !m)
		return -EINVAL;
	rc = shmk__region_check(&r->reg);
	if (!rc)
		rc = shmk__timeout_ok(timeout_ms);
	if (!rc && atomic_load_explicit(&r->poisoned, memory_order_relaxed))
		rc = -EBADMSG;
	return rc;
}

/* Runs cond once (the fast path, no deadline to compute), then waits. */
static inline int ring_wait(struct shmk_ring *r, struct shmk__ec *ec,
			    shmk__cond_fn cond, void *a, int timeout_ms,
			    int64_t spin_ns, unsigned flags)
{
	uint32_t wakes0 = shmk__wakes(&r->reg);
	int rc = cond(a, 0);

	if (rc)
		return rc > 0 ? 0 : rc;
	return shmk__wait(&r->reg, wakes0, ec, cond, a,
			  shmk__deadline(timeout_ms), spin_ns,
			  SHMK__LIVENESS_SLICE_NS, SHMK__WAIT_ASYNC | flags);
}

/* ops.c */
extern __thread unsigned shmk__ring_op_hint;
int shmk__ring_role_take(struct shmk_ring *r, enum ring_role role);
void shmk__ring_role_drop(struct shmk_ring *r);
int shmk__ring_recover(struct shmk_ring *r, uint64_t p);

/* ---------------------------------------------------------------------
 * Every operation's first and last steps, inline: they run on every
 * message (ops.c has the rest of the slots and roles, and says why)
 * --------------------------------------------------------------------- */

/* Takes a free operation slot of ours: its index, or -EBUSY. */
static inline int ring_op_get(struct shmk_ring *r)
{
	unsigned i, k;

	for (i = 0; i < NOPS; i++) {
		uint8_t free_ = 0;

		k = (shmk__ring_op_hint + i) % NOPS;
		/* Acquire: pairs with op_put()'s release; the slot's last
		 * holder is done with its counters. */
		if (atomic_compare_exchange_strong_explicit(
			    &r->busy[k], &free_, 1, memory_order_acquire,
			    memory_order_relaxed)) {
			shmk__ring_op_hint = k;
			return (int)k;
		}
	}
	return -EBUSY;
}

/*
 * Gives slot k back, its intent cleared.  Release: whoever sees the
 * cleared intent (acquire, in ops.c's intent_live()) sees what we
 * published before (the node's new sequence), so it cannot take our
 * finished position for an abandoned one.  Plain stores: no locked
 * instruction at the end of an operation.
 */
static inline void ring_op_put(struct shmk_ring *r, int k)
{
	atomic_store_explicit(&r->me->op[k].intent, 0, memory_order_release);
	atomic_store_explicit(&r->mine[k], 0, memory_order_relaxed);
	atomic_store_explicit(&r->busy[k], 0, memory_order_release);
}

static inline _Atomic uint64_t *ring_role_word(struct shmk_ring *r,
					       enum ring_role role)
{
	return role == RING_READER ? &r->ctl->reader : &r->ctl->writer;
}

/* Opens an operation of role: its operation slot, or < 0. */
static inline int ring_role_enter(struct shmk_ring *r, enum ring_role role)
{
	int k = atomic_load_explicit(&r->role_k[role], memory_order_acquire);

	/* The word is on a line this side alone writes: a cheap look. */
	if (k < 0 || atomic_load_explicit(ring_role_word(r, role),
					  memory_order_relaxed) !=
			     shmk__owner_id(&r->reg)) {
		k = shmk__ring_role_take(r, role);
		if (k < 0)
			return k;
	}
	/* Acquire: pairs with ring_op_done()'s release (another thread of ours
	 * may have run the last operation). */
	if (atomic_load_explicit(&r->role_busy[role], memory_order_acquire))
		return -EBUSY;
	atomic_store_explicit(&r->role_busy[role], 1, memory_order_relaxed);
	return k;
}

/* Operation slot k's operation is over: its intent cleared, the slot
 * given back, or kept if it is a role's. */
static inline void ring_op_done(struct shmk_ring *r, int k)
{
	int role;

	for (role = RING_WRITER; role <= RING_READER; role++)
		if (atomic_load_explicit(&r->role_k[role],
					 memory_order_relaxed) == k) {
			atomic_store_explicit(&r->me->op[k].intent, 0,
					      memory_order_release);
			atomic_store_explicit(&r->mine[k], 0,
					      memory_order_relaxed);
			atomic_store_explicit(&r->role_busy[role], 0,
					      memory_order_release);
			return;
		}
	ring_op_put(r, k);
}

/*
 * The message m as this handle handed it out for role.
 * Checked against our own record, never the shared intent: a peer that
 * overwrote that must not make our commit or release fail (the node would
 * stay ours, and the operation slot lost to this handle for good).
 */
static inline int ring_msg_ok(struct shmk_ring *r, const struct shmk_msg *m,
			      enum ring_role role)
{
	if (!r || !m || m->role_ != (int)role || m->slot_ < 0 ||
	    m->slot_ >= NOPS ||
	    !atomic_load_explicit(&r->busy[m->slot_], memory_order_relaxed) ||
	    atomic_load_explicit(&r->mine[m->slot_], memory_order_relaxed) !=
		    (m->pos_ | ROLE_BITS(role)))
		return -EINVAL;
	return shmk__region_check(&r->reg);
}

#endif /* SHMK_RING_RING_IMPL_H */
