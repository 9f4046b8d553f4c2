/* SPDX-License-Identifier: MIT */
/*
 * ring.c - shmk_ring: a bounded FIFO of fixed-size nodes between any
 * number of writer and reader threads and processes; each message goes to
 * exactly one reader, in the order writers reserved their nodes.
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
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinds.h"
#include "ring.h"
#include "sync.h"

#define SKIP_BIT      (UINT64_C(1) << 63)
#define POS_MAX	      ((UINT64_C(1) << 62) - 1) /* positions stay below */
#define ROLE_W	      (UINT64_C(1) << 62)
#define ROLE_R	      (UINT64_C(2) << 62)
#define ROLE_MASK     (UINT64_C(3) << 62)
#define NOPS	      16 /* operation slots: operations at once per handle */
#define MAX_NODE_SIZE (UINT64_C(1) << 40)
/* geom[2]: the ring's mode, from the create flags. */
#define MODE_SW 1u /* SHMK_F_SINGLE_WRITER */
#define MODE_SR 2u /* SHMK_F_SINGLE_READER */

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

/* Counters of an operation slot (ring_op.ctr); the same indices in the
 * header's counter[] hold what closed or dead participants folded in,
 * followed by the global counters. */
enum {
	C_WRITTEN,
	C_BYTES_W,
	C_READ,
	C_BYTES_R,
	C_FULL_WAITS,
	C_EMPTY_WAITS,
	C_WAKEUPS,
	NOP_CTR,
	G_ABORTED = NOP_CTR,
	G_RECOVERED,
	G_LOST,
	G_HWM,
	NCTR
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
	struct shmk__region r;
	struct ring_ctl *ctl;
	struct ring_desc *desc;
	struct ring_part *parts; /* all participants' blocks */
	struct ring_part *me;	 /* ours */
	char *data;
	uint64_t n, node_size, stride;
	unsigned mode;		    /* MODE_*, from the private geometry */
	_Atomic uint64_t seen_tail; /* a tail seen before (high_water()) */
	/* A barrier was forced after the shutdown was seen: once is enough
	 * (a claim whose look at the state came later sees the shutdown). */
	_Atomic int shut_fenced;
	_Atomic int poisoned; /* corrupt shared state seen: all calls fail */
	/* The single writer's and reader's role ([0] and [1]) if this handle
	 * holds it: the operation slot kept for the role, or -1; and whether
	 * an operation of the role is open (one at a time). */
	_Atomic int role_k[2];
	_Atomic int role_busy[2];
	/* Our operation slots in use, a byte each (process-private). */
	_Atomic uint8_t busy[NOPS];
	/* What each slot in use holds (position | role): our own record of
	 * the intent we published, which is what a message handed back to
	 * us is checked against (the shared copy may have been overwritten).
	 * Written and read by the slot's holder only. */
	_Atomic uint64_t mine[NOPS];
};

/* ---------------------------------------------------------------------
 * Geometry: geom[0] = nodes, geom[1] = node size.
 * --------------------------------------------------------------------- */

struct ring_geom {
	uint64_t parts_off, desc_off, data_off, stride, total;
};

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a; /* callers keep v far below overflow */
}

static int ring_geometry(const uint64_t geom[SHMK__GEOM_N], struct ring_geom *g)
{
	uint64_t n = geom[0], size = geom[1], align, bytes;

	if ((geom[2] & ~(uint64_t)(MODE_SW | MODE_SR)) ||
	    shmk__geom_unused(geom, 3) < 0)
		return -EINVAL;
	if (n < 2 || n > SHMK__MAX_TOTAL / SHMK__CACHELINE || size < 1 ||
	    size > MAX_NODE_SIZE)
		return -EINVAL;
	/* Node data is cache-line aligned, page aligned from a page up. */
	align = size >= 4096 ? 4096 : SHMK__CACHELINE;
	g->stride = round_up(size, align);
	g->parts_off = SHMK__HDR_SIZE;
	g->desc_off = g->parts_off + SHMK__MAX_PARTS * sizeof(struct ring_part);
	if (shmk__mul(n, sizeof(struct ring_desc), &bytes) < 0 ||
	    shmk__add(g->desc_off, bytes, &g->data_off) < 0)
		return -EINVAL;
	g->data_off = round_up(g->data_off, align);
	if (shmk__mul(n, g->stride, &bytes) < 0 ||
	    shmk__add(g->data_off, bytes, &g->total) < 0 ||
	    g->total > SHMK__MAX_TOTAL)
		return -EINVAL;
	return 0;
}

static int ring_layout(const uint64_t geom[SHMK__GEOM_N], uint64_t *total)
{
	struct ring_geom g;
	int rc = ring_geometry(geom, &g);

	if (!rc)
		*total = g.total;
	return rc;
}

static struct ring_part *part_of(struct shmk__region *r, int k)
{
	return (struct ring_part *)((char *)r->hdr + SHMK__HDR_SIZE) + k;
}

/* Adds a participant's counters to the global ones and zeroes them. */
static void fold(struct shmk__region *r, struct ring_part *p)
{
	int i, k;

	for (k = 0; k < NOPS; k++)
		for (i = 0; i < NOP_CTR; i++) {
			uint64_t v = atomic_exchange_explicit(
				&p->op[k].ctr[i], 0, memory_order_relaxed);

			if (v)
				shmk__count(r, i, v);
		}
}

/*
 * A slot changes hands: what its last holder counted is kept, its intents
 * go.  Clearing them is safe: an unfinished position whose owner has no
 * live intent is recovered, which is right, as that owner is gone.
 */
static void ring_reclaim(struct shmk__region *r, int slot)
{
	struct ring_part *p = part_of(r, slot);
	int i;

	fold(r, p);
	for (i = 0; i < NOPS; i++)
		atomic_store_explicit(&p->op[i].intent, 0,
				      memory_order_release);
}

static int ring_stat_counters(int fd, const struct shmk__hdr *h, uint64_t *out);
static void role_drop(struct shmk_ring *q);

const struct shmk__kind shmk__ring_kind = {
	.kind = SHMK_KIND_RING,
	.name = "ring",
	.layout = ring_layout,
	.reclaim = ring_reclaim,
	.shutdown = shmk__notify_all,
	.ec_off = {offsetof(struct ring_ctl, data),
		   offsetof(struct ring_ctl, space)},
	.n_ec = 2,
	.stat_counters = ring_stat_counters,
	.geom_names = {"nodes", "node_size", "single", NULL},
	.counter_names = {"written", "bytes_written", "read", "bytes_read",
			  "full_waits", "empty_waits", "wakeups", "aborted",
			  "recovered", "lost", "high_water", "lag", NULL},
	/* The order above is the enum's, then the lag. */
};

/* Nodes start free for their first position: seq[i] = i. */
static void ring_init(struct shmk__region *r)
{
	struct ring_geom g;
	struct ring_desc *d;
	uint64_t i;

	if (ring_geometry(r->geom, &g) < 0)
		return; /* validated by the caller: cannot be */
	d = (struct ring_desc *)((char *)r->hdr + g.desc_off);
	for (i = 0; i < r->geom[0]; i++)
		atomic_store_explicit(&d[i].seq, i, memory_order_relaxed);
}

/* ---------------------------------------------------------------------
 * Create, open, close
 * --------------------------------------------------------------------- */

static int ring_attached(struct shmk_ring *q, struct shmk_ring **out, int rc)
{
	struct ring_geom g;

	if (rc < 0) {
		free(q);
		return rc;
	}
	if (ring_geometry(q->r.geom, &g) < 0) {
		shmk__region_close(&q->r); /* validated at open: cannot be */
		free(q);
		return -EBADMSG;
	}
	q->ctl = shmk__region_ctl(&q->r);
	q->parts = part_of(&q->r, 0);
	q->me = part_of(&q->r, q->r.slot);
	q->desc = (struct ring_desc *)((char *)q->r.hdr + g.desc_off);
	q->data = (char *)q->r.hdr + g.data_off;
	q->n = q->r.geom[0];
	q->node_size = q->r.geom[1];
	q->stride = g.stride;
	q->mode = (unsigned)q->r.geom[2];
	atomic_init(&q->role_k[0], -1);
	atomic_init(&q->role_k[1], -1);
	shmk__async_init();
	*out = q;
	return 0;
}

SHMK__EXPORT int shmk_ring_create(const char *name, size_t nodes,
				  size_t node_size, const struct shmk_opts *o,
				  struct shmk_ring **out)
{
	const unsigned single = SHMK_F_SINGLE_WRITER | SHMK_F_SINGLE_READER;
	uint64_t geom[SHMK__GEOM_N] = {nodes, node_size};
	struct shmk_opts oo;
	struct shmk_ring *q;
	int rc = SHMK__HANDLE_NEW(out, &q);

	if (rc < 0)
		return rc;
	/* The mode is geometry: an opener learns it from the header, and
	 * SHMK_F_OPEN_OR_CREATE finds a ring of another mode a mismatch. */
	if (o && (o->flags & single)) {
		oo = *o;
		oo.flags &= ~single;
		geom[2] = ((o->flags & SHMK_F_SINGLE_WRITER) ? MODE_SW : 0) |
			  ((o->flags & SHMK_F_SINGLE_READER) ? MODE_SR : 0);
		o = &oo;
	}
	rc = shmk__region_create(&q->r, name, &shmk__ring_kind, geom, o,
				 ring_init);
	return ring_attached(q, out, rc);
}

SHMK__EXPORT int shmk_ring_open(const char *name, const struct shmk_opts *o,
				struct shmk_ring **out)
{
	struct shmk_ring *q;
	int rc = SHMK__HANDLE_NEW(out, &q);

	if (rc < 0)
		return rc;
	rc = shmk__region_open(&q->r, name, &shmk__ring_kind, o);
	return ring_attached(q, out, rc);
}

SHMK__EXPORT int shmk_ring_open_fd(int fd, const struct shmk_opts *o,
				   struct shmk_ring **out)
{
	struct shmk_ring *q;
	int rc = SHMK__HANDLE_NEW(out, &q);

	if (rc < 0)
		return rc;
	rc = shmk__region_open_fd(&q->r, fd, &shmk__ring_kind, o);
	return ring_attached(q, out, rc);
}

SHMK__EXPORT int shmk_ring_fd(struct shmk_ring *q)
{
	return q ? shmk__region_share_fd(&q->r) : -EINVAL;
}

SHMK__EXPORT int shmk_ring_close(struct shmk_ring *q)
{
	if (!q)
		return 0;
	/* What we counted outlives us.  Reservations and acquisitions
	 * still open become a dead participant's: recovered by others. */
	if (!q->r.forked) {
		fold(&q->r, q->me);
		role_drop(q);
	}
	shmk__region_close(&q->r);
	free(q);
	return 0;
}

struct shmk__region *shmk__ring_region(struct shmk_ring *q)
{
	return &q->r;
}

SHMK__EXPORT size_t shmk_ring_nodes(const struct shmk_ring *q)
{
	return q ? (size_t)q->n : 0;
}

SHMK__EXPORT size_t shmk_ring_node_size(const struct shmk_ring *q)
{
	return q ? (size_t)q->node_size : 0;
}

SHMK__EXPORT int shmk_ring_pollfd(struct shmk_ring *q)
{
	return shmk__pollfd_call(q ? &q->r : NULL);
}

SHMK__EXPORT int shmk_ring_wake(struct shmk_ring *q)
{
	return shmk__wake_call(q ? &q->r : NULL);
}

SHMK__EXPORT int shmk_ring_shutdown(struct shmk_ring *q)
{
	int rc;

	if (!q)
		return -EINVAL;
	rc = shmk__region_check(&q->r);
	if (rc < 0)
		return rc;
	shmk__region_shutdown(&q->r);
	return 0;
}

/* ---------------------------------------------------------------------
 * Operation slots and intents
 * --------------------------------------------------------------------- */

static __thread unsigned op_hint; /* where this thread looks first */

/* Takes a free operation slot of ours: its index, or -EBUSY. */
static int op_get(struct shmk_ring *q)
{
	unsigned i, k;

	for (i = 0; i < NOPS; i++) {
		uint8_t free_ = 0;

		k = (op_hint + i) % NOPS;
		/* Acquire: pairs with op_put()'s release; the slot's last
		 * holder is done with its counters. */
		if (atomic_compare_exchange_strong_explicit(
			    &q->busy[k], &free_, 1, memory_order_acquire,
			    memory_order_relaxed)) {
			op_hint = k;
			return (int)k;
		}
	}
	return -EBUSY;
}

/*
 * Gives slot k back, its intent cleared.  Release: whoever sees the
 * cleared intent (acquire, in intent_live()) sees what we published before
 * (the node's new sequence), so it cannot take our finished position for
 * an abandoned one.  Plain stores: no locked instruction at the end of an
 * operation.
 */
static void op_put(struct shmk_ring *q, int k)
{
	atomic_store_explicit(&q->me->op[k].intent, 0, memory_order_release);
	atomic_store_explicit(&q->mine[k], 0, memory_order_relaxed);
	atomic_store_explicit(&q->busy[k], 0, memory_order_release);
}

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

static _Atomic uint64_t *role_word(struct shmk_ring *q, int role)
{
	return role ? &q->ctl->reader : &q->ctl->writer;
}

/* Takes role (0 writer, 1 reader) for this handle: the slot kept for it,
 * -EBUSY if a live participant holds it, -EBADMSG for a corrupt word. */
static int role_take(struct shmk_ring *q, int role)
{
	_Atomic uint64_t *w = role_word(q, role);
	uint64_t me = shmk__owner_id(&q->r), v;
	int k = atomic_load_explicit(&q->role_k[role], memory_order_acquire);
	int dead, other = -1;

	for (;;) {
		v = atomic_load_explicit(w, memory_order_acquire);
		if (v == me)
			break;
		if (v) {
			dead = shmk__owner_dead(&q->r, v);
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
	k = op_get(q);
	if (k < 0)
		return k;
	/* Two threads taking it at once (which the caller should not let
	 * happen): one slot is kept, the other given back. */
	if (!atomic_compare_exchange_strong_explicit(&q->role_k[role], &other,
						     k, memory_order_acq_rel,
						     memory_order_acquire)) {
		op_put(q, k);
		k = other;
	}
	return k;
}

/* Opens an operation of role: its operation slot, or < 0. */
static int role_enter(struct shmk_ring *q, int role)
{
	int k = atomic_load_explicit(&q->role_k[role], memory_order_acquire);

	/* The word is on a line this side alone writes: a cheap look. */
	if (k < 0 ||
	    atomic_load_explicit(role_word(q, role), memory_order_relaxed) !=
		    shmk__owner_id(&q->r)) {
		k = role_take(q, role);
		if (k < 0)
			return k;
	}
	/* Acquire: pairs with op_done()'s release (another thread of ours
	 * may have run the last operation). */
	if (atomic_load_explicit(&q->role_busy[role], memory_order_acquire))
		return -EBUSY;
	atomic_store_explicit(&q->role_busy[role], 1, memory_order_relaxed);
	return k;
}

/* Gives the role back at close, if we hold it. */
static void role_drop(struct shmk_ring *q)
{
	uint64_t me = shmk__owner_id(&q->r);
	int role;

	for (role = 0; role < 2; role++) {
		uint64_t v = me;

		atomic_compare_exchange_strong_explicit(role_word(q, role), &v,
							0, memory_order_release,
							memory_order_relaxed);
	}
}

/* Operation slot k's operation is over: its intent cleared, the slot
 * given back, or kept if it is a role's. */
static void op_done(struct shmk_ring *q, int k)
{
	int role;

	for (role = 0; role < 2; role++)
		if (atomic_load_explicit(&q->role_k[role],
					 memory_order_relaxed) == k) {
			atomic_store_explicit(&q->me->op[k].intent, 0,
					      memory_order_release);
			atomic_store_explicit(&q->mine[k], 0,
					      memory_order_relaxed);
			atomic_store_explicit(&q->role_busy[role], 0,
					      memory_order_release);
			return;
		}
	op_put(q, k);
}

/*
 * Does a live participant hold the intent want?  (Our own slot is alive.)
 * Every participant is looked at, not only those below nslots: a hostile
 * nslots must not hide a live owner.  The slow path only.
 */
static int intent_live(struct shmk_ring *q, uint64_t want)
{
	uint32_t k;
	int i;

	for (k = 0; k < SHMK__MAX_PARTS; k++)
		for (i = 0; i < NOPS; i++)
			if (atomic_load_explicit(&q->parts[k].op[i].intent,
						 memory_order_acquire) ==
				    want &&
			    shmk__part_alive(&q->r, (int)k) != 0)
				return 1; /* alive, or cannot tell */
	return 0;
}

/* Counts in operation slot k: ours alone while we hold it. */
static void count(struct shmk_ring *q, int k, int c, uint64_t v)
{
	_Atomic uint64_t *w = &q->me->op[k].ctr[c];

	atomic_store_explicit(w,
			      atomic_load_explicit(w, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

static int poison(struct shmk_ring *q)
{
	atomic_store_explicit(&q->poisoned, 1, memory_order_relaxed);
	return -EBADMSG;
}

/*
 * Node i blocks us: if the position it is stuck at was claimed by a
 * participant that is gone, finish that participant's work.  Returns
 * SHMK__COND_IDLE if nobody has claimed it (the ring is just empty or
 * full: its next change will be notified), SHMK__COND_WAIT if a live owner
 * (or one we cannot tell) is at work on it, RECOVERED if we finished a dead
 * owner's work (look again at once), -EBADMSG for an impossible state.
 */
#define RECOVERED 3
static int recover(struct shmk_ring *q, uint64_t p)
{
	uint64_t i = p % q->n;
	struct ring_desc *d = &q->desc[i];
	uint64_t s = atomic_load_explicit(&d->seq, memory_order_acquire);
	uint64_t c = s & ~SKIP_BIT, x;

	/* A node blocking position p is at most a lap behind it. */
	if (c > POS_MAX + q->n || c + q->n < p)
		return poison(q);
	if (c % q->n == i && !(s & SKIP_BIT)) {
		/* Claimed by a writer that has not committed? */
		x = c;
		if (atomic_load_explicit(&q->ctl->head, memory_order_acquire) <=
		    x)
			return SHMK__COND_IDLE;
		if (intent_live(q, x | ROLE_W))
			return SHMK__COND_WAIT;
		if (atomic_compare_exchange_strong_explicit(
			    &d->seq, &s, (x + 1) | SKIP_BIT,
			    memory_order_release, memory_order_relaxed)) {
			shmk__count(&q->r, G_RECOVERED, 1);
			shmk__ec_notify(&q->r, &q->ctl->data);
		}
		return RECOVERED;
	}
	if (c % q->n == (i + 1) % q->n && c > 0) {
		/* Taken by a reader that has not released it?  If not yet
		 * taken, the ring is full; a reader may take the node and die
		 * before anyone is notified, so the writer keeps polling. */
		x = c - 1;
		if (atomic_load_explicit(&q->ctl->tail, memory_order_acquire) <=
		    x)
			return SHMK__COND_WAIT;
		if (intent_live(q, x | ROLE_R))
			return SHMK__COND_WAIT;
		if (atomic_compare_exchange_strong_explicit(
			    &d->seq, &s, x + q->n, memory_order_release,
			    memory_order_relaxed)) {
			if (!(s & SKIP_BIT))
				shmk__count(&q->r, G_LOST, 1);
			shmk__ec_notify(&q->r, &q->ctl->space);
		}
		return RECOVERED;
	}
	return poison(q);
}

/* ---------------------------------------------------------------------
 * Writers
 * --------------------------------------------------------------------- */

struct res_wait {
	struct shmk_ring *q;
	int k; /* our operation slot */
	uint64_t pos;
	int waited;
};

/* Messages waiting once position p is reserved, if tail is t. */
static uint64_t fill_at(struct shmk_ring *q, uint64_t p, uint64_t t)
{
	uint64_t fill = p + 1 > t ? p + 1 - t : 0;

	return fill < q->n ? fill : q->n;
}

/*
 * The high-water mark, at every reservation, without a look at tail (a
 * line readers write) for each: tail only grows, so p + 1 less a tail
 * seen before is at least the fill; tail is looked at only when that
 * bound passes the mark, which after a while is rare.
 */
static void high_water(struct shmk_ring *q, uint64_t p)
{
	_Atomic uint64_t *w = &q->r.hdr->counter[G_HWM];
	uint64_t hwm = atomic_load_explicit(w, memory_order_relaxed), t, fill;

	t = atomic_load_explicit(&q->seen_tail, memory_order_relaxed);
	if (fill_at(q, p, t) <= hwm)
		return;
	t = atomic_load_explicit(&q->ctl->tail, memory_order_relaxed);
	if (t > p + 1)
		return; /* not a tail (tail never passes head) */
	atomic_store_explicit(&q->seen_tail, t, memory_order_relaxed);
	fill = fill_at(q, p, t);
	while (fill > hwm && !atomic_compare_exchange_weak_explicit(
				     w, &hwm, fill, memory_order_relaxed,
				     memory_order_relaxed))
		;
}

/* One attempt to claim the position at head: 1 claimed, 0 blocked at
 * node *blocked, < 0 an error. */
static int try_reserve(struct res_wait *a, uint64_t *blocked)
{
	struct shmk_ring *q = a->q;
	_Atomic uint64_t *iw = &q->me->op[a->k].intent;
	uint64_t p = atomic_load_explicit(&q->ctl->head, memory_order_acquire);

	for (;;) {
		struct ring_desc *d;
		int64_t diff;
		uint64_t s;

		if (p > POS_MAX)
			return poison(q);
		d = &q->desc[p % q->n];
		/* Acquire: pairs with the release of the node by its last
		 * reader (or recoverer); what they did is done. */
		s = atomic_load_explicit(&d->seq, memory_order_acquire);
		diff = (int64_t)((s & ~SKIP_BIT) - p); /* a skip is a state */
		if (diff < 0) {
			*blocked = p; /* the fill was counted at p - 1 */
			return 0;
		}
		if (diff > 0) {
			/* Another writer took p and has moved head on: we saw
			 * its commit, which came after its claim.  A head that
			 * has not moved is a lie. */
			uint64_t h = atomic_load_explicit(&q->ctl->head,
							  memory_order_acquire);

			if (h == p)
				return poison(q);
			p = h;
			continue;
		}
		/* The intent before the claim: the claim's release makes it
		 * visible to whoever sees head past p. */
		atomic_store_explicit(iw, p | ROLE_W, memory_order_relaxed);
		if (q->mode & MODE_SW) {
			/* The only writer: a plain store claims p (for the
			 * shutdown race, see shmk_ring_reserve()). */
			atomic_store_explicit(&q->ctl->head, p + 1,
					      memory_order_release);
		} else if (!atomic_compare_exchange_weak_explicit(
				   &q->ctl->head, &p, p + 1,
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
		high_water(q, p);
		return 1;
	}
}

#define RECOVER_ROUNDS 64

static int res_cond(void *arg, int slow)
{
	struct res_wait *a = arg;
	struct shmk_ring *q = a->q;
	uint64_t blocked;
	int rc, round;

	if (atomic_load_explicit(&q->poisoned, memory_order_relaxed) ||
	    shmk__region_poisoned(&q->r))
		return -EBADMSG;
	if (atomic_load_explicit(&q->r.hdr->state, memory_order_acquire) ==
	    SHMK_STATE_SHUTDOWN)
		return -EPIPE;
	/* A few rounds: recovering a node may reveal the next one stuck
	 * behind it; a peer that keeps undoing our work gets no more. */
	for (round = 0;; round++) {
		rc = try_reserve(a, &blocked);
		if (rc || !slow)
			return rc;
		if (!a->waited) {
			a->waited = 1;
			count(q, a->k, C_FULL_WAITS, 1);
		}
		rc = recover(q, blocked);
		if (rc != RECOVERED)
			return rc;
		if (round == RECOVER_ROUNDS)
			return SHMK__COND_WAIT;
	}
}

static int ring_args(struct shmk_ring *q, struct shmk_msg *m, int timeout_ms)
{
	int rc;

	if (!q || !m)
		return -EINVAL;
	rc = shmk__region_check(&q->r);
	if (!rc)
		rc = shmk__timeout_ok(timeout_ms);
	if (!rc && atomic_load_explicit(&q->poisoned, memory_order_relaxed))
		rc = -EBADMSG;
	return rc;
}

/* Runs cond once (the fast path, no deadline to compute), then waits. */
static int ring_wait(struct shmk_ring *q, struct shmk__ec *ec,
		     shmk__cond_fn cond, void *a, int timeout_ms,
		     int64_t spin_ns, unsigned flags)
{
	uint32_t wakes0 = shmk__wakes(&q->r);
	int rc = cond(a, 0);

	if (rc)
		return rc > 0 ? 0 : rc;
	return shmk__wait(&q->r, wakes0, ec, cond, a,
			  shmk__deadline(timeout_ms), spin_ns,
			  SHMK__LIVENESS_SLICE_NS, SHMK__WAIT_ASYNC | flags);
}

SHMK__EXPORT int shmk_ring_reserve(struct shmk_ring *q, struct shmk_msg *m,
				   int timeout_ms)
{
	struct res_wait a = {.q = q};
	int rc = ring_args(q, m, timeout_ms);

	if (rc < 0)
		return rc;
	a.k = (q->mode & MODE_SW) ? role_enter(q, 0) : op_get(q);
	if (a.k < 0)
		return a.k;
	rc = ring_wait(q, &q->ctl->space, res_cond, &a, timeout_ms,
		       q->r.spin_ns, 0);
	if (rc < 0) {
		op_done(q, a.k);
		return rc;
	}
	atomic_store_explicit(&q->mine[a.k], a.pos | ROLE_W,
			      memory_order_relaxed);
	m->data = q->data + (a.pos % q->n) * q->stride;
	m->len = (size_t)q->node_size;
	m->pos_ = a.pos;
	m->intent_ = a.k;
	m->role_ = 1;
	SHMK__CRASH("ring_reserved"); /* the intent names us as the owner */
	/* Shut down while we claimed: readers may already have been told
	 * the ring is drained, so the node is given up (seq_cst: after our
	 * claim; see acq_cond()).  A single writer's claim was a plain store,
	 * which this load may pass: a reader forces the fence it lacks with a
	 * barrier on every CPU before it calls the ring drained (acq_cond());
	 * a process that cannot be reached by one pays the fence here. */
	if ((q->mode & MODE_SW) && !shmk__async_reached())
		atomic_thread_fence(memory_order_seq_cst);
	atomic_signal_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&q->r.hdr->state, memory_order_seq_cst) ==
	    SHMK_STATE_SHUTDOWN) {
		shmk_ring_abort(q, m);
		return -EPIPE;
	}
	return 0;
}

/*
 * The message m as this handle handed it out for role (1 write, 2 read).
 * Checked against our own record, never the shared intent: a peer that
 * overwrote that must not make our commit or release fail (the node would
 * stay ours, and the operation slot lost to this handle for good).
 */
static int msg_ok(struct shmk_ring *q, const struct shmk_msg *m, int role)
{
	if (!q || !m || m->role_ != role || m->intent_ < 0 ||
	    m->intent_ >= NOPS ||
	    !atomic_load_explicit(&q->busy[m->intent_], memory_order_relaxed) ||
	    atomic_load_explicit(&q->mine[m->intent_], memory_order_relaxed) !=
		    (m->pos_ | (role == 1 ? ROLE_W : ROLE_R)))
		return -EINVAL;
	return shmk__region_check(&q->r);
}

/* Publishes m's position as committed (or as a skip record). */
static void publish(struct shmk_ring *q, struct shmk_msg *m, uint64_t bits)
{
	struct ring_desc *d = &q->desc[m->pos_ % q->n];
	int k = m->intent_;

	/* Release: the data and len are visible to whoever acquires seq. */
	atomic_store_explicit(&d->seq, (m->pos_ + 1) | bits,
			      memory_order_release);
	SHMK__CRASH("ring_committed"); /* published; intent still set */
	m->role_ = 0;
	if (shmk__ec_notify_async(&q->r, &q->ctl->data))
		count(q, k, C_WAKEUPS, 1);
	op_done(q, k);
}

SHMK__EXPORT int shmk_ring_commit(struct shmk_ring *q, struct shmk_msg *m)
{
	int rc = msg_ok(q, m, 1);

	if (rc < 0)
		return rc;
	if (m->len > q->node_size)
		return -EMSGSIZE; /* still reserved: shorten it, or abort */
	atomic_store_explicit(&q->desc[m->pos_ % q->n].len, m->len,
			      memory_order_relaxed);
	/* Counted before it is published, and read only once its node is
	 * given back: a death between the act and its count errs on the
	 * side of read + lost <= written, which `shmk check` holds to. */
	count(q, m->intent_, C_WRITTEN, 1);
	count(q, m->intent_, C_BYTES_W, m->len);
	SHMK__CRASH("ring_pre_commit");
	publish(q, m, 0);
	return 0;
}

SHMK__EXPORT int shmk_ring_abort(struct shmk_ring *q, struct shmk_msg *m)
{
	int rc = msg_ok(q, m, 1);

	if (rc < 0)
		return rc;
	shmk__count(&q->r, G_ABORTED, 1); /* rare: a shared counter will do */
	publish(q, m, SKIP_BIT);
	return 0;
}

SHMK__EXPORT int shmk_ring_write(struct shmk_ring *q, const void *src,
				 size_t len, int timeout_ms)
{
	struct shmk_msg m;
	int rc;

	if (!q || (len && !src))
		return -EINVAL;
	if (len > q->node_size)
		return -EMSGSIZE;
	rc = shmk_ring_reserve(q, &m, timeout_ms);
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
	return shmk_ring_commit(q, &m);
}

/* ---------------------------------------------------------------------
 * Readers
 * --------------------------------------------------------------------- */

struct acq_wait {
	struct shmk_ring *q;
	int k;	    /* our operation slot */
	size_t cap; /* the largest message the caller takes */
	uint64_t pos, len;
	int waited;
};

/* Releases position p's node for the writer of p + N; k counts. */
static void release_node(struct shmk_ring *q, uint64_t p, int k)
{
	/* Release: our reads of the data are done before a writer of the
	 * next lap acquires the node. */
	atomic_store_explicit(&q->desc[p % q->n].seq, p + q->n,
			      memory_order_release);
	if (shmk__ec_notify_async(&q->r, &q->ctl->space))
		count(q, k, C_WAKEUPS, 1);
}

/* One attempt to take the position at tail: 1 taken, 0 blocked at node
 * *blocked, < 0 an error. */
static int try_acquire(struct acq_wait *a, uint64_t *blocked)
{
	struct shmk_ring *q = a->q;
	_Atomic uint64_t *iw = &q->me->op[a->k].intent;
	uint64_t p = atomic_load_explicit(&q->ctl->tail, memory_order_acquire);

	for (;;) {
		struct ring_desc *d;
		uint64_t s, len = 0;
		int64_t diff;

		if (p > POS_MAX)
			return poison(q);
		d = &q->desc[p % q->n];
		/* Acquire: pairs with the writer's release of seq; its len
		 * and data are visible. */
		s = atomic_load_explicit(&d->seq, memory_order_acquire);
		diff = (int64_t)((s & ~SKIP_BIT) - (p + 1));
		if (diff < 0) {
			*blocked = p;
			return 0;
		}
		if (diff > 0) {
			/* Another reader took p; as for writers, a tail that
			 * has not moved is a lie. */
			uint64_t t = atomic_load_explicit(&q->ctl->tail,
							  memory_order_acquire);

			if (t == p)
				return poison(q);
			p = t;
			continue;
		}
		if (!(s & SKIP_BIT)) {
			/* Read once, checked, used: never more than a node. */
			len = atomic_load_explicit(&d->len,
						   memory_order_relaxed);
			if (len > q->node_size)
				return poison(q);
			if (len > a->cap)
				return -EMSGSIZE; /* it stays in the ring */
		}
		atomic_store_explicit(iw, p | ROLE_R, memory_order_relaxed);
		if (q->mode & MODE_SR) {
			/* The only reader: a plain store takes p. */
			atomic_store_explicit(&q->ctl->tail, p + 1,
					      memory_order_release);
		} else if (!atomic_compare_exchange_weak_explicit(
				   &q->ctl->tail, &p, p + 1,
				   memory_order_acq_rel,
				   memory_order_acquire)) {
			atomic_store_explicit(iw, 0, memory_order_relaxed);
			continue;
		}
		if (s & SKIP_BIT) {
			/* A writer gave the position up (or died): pass. */
			release_node(q, p, a->k);
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
	struct shmk_ring *q = a->q;
	uint64_t blocked;
	int rc, round = 0;

	if (atomic_load_explicit(&q->poisoned, memory_order_relaxed) ||
	    shmk__region_poisoned(&q->r))
		return -EBADMSG;
again:
	rc = try_acquire(a, &blocked);
	if (rc)
		return rc;
	/* Drained after a shutdown: nothing is reserved past the tail.
	 * seq_cst: the state before head, against a writer's claim before
	 * its look at the state (reserve): either it sees the shutdown and
	 * gives its node up, or we see its claim and wait for it. */
	if (atomic_load_explicit(&q->r.hdr->state, memory_order_seq_cst) ==
		    SHMK_STATE_SHUTDOWN &&
	    atomic_load_explicit(&q->ctl->head, memory_order_seq_cst) <=
		    atomic_load_explicit(&q->ctl->tail, memory_order_acquire)) {
		/* A single writer claims with a plain store and looks at the
		 * state without a fence: make every CPU fence, then look at
		 * head again.  Either the writer's claim is visible now, or
		 * its look at the state comes after the fence and sees the
		 * shutdown (and it gives the node up). */
		if ((q->mode & MODE_SW) &&
		    !atomic_load_explicit(&q->shut_fenced,
					  memory_order_acquire)) {
			shmk__fence_all();
			atomic_store_explicit(&q->shut_fenced, 1,
					      memory_order_release);
			goto again;
		}
		return -EPIPE;
	}
	if (!slow)
		return SHMK__COND_WAIT;
	if (!a->waited) {
		a->waited = 1;
		count(q, a->k, C_EMPTY_WAITS, 1);
	}
	rc = recover(q, blocked);
	if (rc == RECOVERED && round++ < RECOVER_ROUNDS)
		goto again;
	return rc == RECOVERED ? SHMK__COND_WAIT : rc;
}

static int acquire(struct shmk_ring *q, struct shmk_msg *m, size_t cap,
		   int timeout_ms, int64_t spin_ns, unsigned flags)
{
	struct acq_wait a = {.q = q, .cap = cap};
	int rc = ring_args(q, m, timeout_ms);

	if (rc < 0)
		return rc;
	a.k = (q->mode & MODE_SR) ? role_enter(q, 1) : op_get(q);
	if (a.k < 0)
		return a.k;
	rc = ring_wait(q, &q->ctl->data, acq_cond, &a, timeout_ms, spin_ns,
		       flags);
	if (rc < 0) {
		op_done(q, a.k);
		return rc;
	}
	atomic_store_explicit(&q->mine[a.k], a.pos | ROLE_R,
			      memory_order_relaxed);
	m->data = q->data + (a.pos % q->n) * q->stride;
	m->len = (size_t)a.len;
	m->pos_ = a.pos;
	m->intent_ = a.k;
	m->role_ = 2;
	SHMK__CRASH("ring_acquired");
	return 0;
}

SHMK__EXPORT int shmk_ring_acquire(struct shmk_ring *q, struct shmk_msg *m,
				   int timeout_ms)
{
	return acquire(q, m, SIZE_MAX, timeout_ms, q ? q->r.spin_ns : 0, 0);
}

int shmk__ring_acquire_spin(struct shmk_ring *q, struct shmk_msg *m,
			    int timeout_ms, int64_t spin_ns)
{
	return acquire(q, m, SIZE_MAX, timeout_ms, spin_ns, 0);
}

int shmk__ring_acquire_long(struct shmk_ring *q, struct shmk_msg *m,
			    int timeout_ms, int64_t spin_ns)
{
	return acquire(q, m, SIZE_MAX, timeout_ms, spin_ns, SHMK__WAIT_LONG);
}

SHMK__EXPORT int shmk_ring_release(struct shmk_ring *q, struct shmk_msg *m)
{
	int rc = msg_ok(q, m, 2), k;

	if (rc < 0)
		return rc;
	k = m->intent_;
	m->role_ = 0;
	SHMK__CRASH("ring_mid_release"); /* node not given back */
	release_node(q, m->pos_, k);
	SHMK__CRASH("ring_released"); /* given back; intent still set */
	/* Counted once given back: a reader that dies before is counted
	 * lost by its recoverer, never read as well (see commit). */
	count(q, k, C_READ, 1);
	count(q, k, C_BYTES_R, m->len);
	op_done(q, k);
	return 0;
}

SHMK__EXPORT ssize_t shmk_ring_read(struct shmk_ring *q, void *dst, size_t cap,
				    int timeout_ms)
{
	struct shmk_msg m;
	size_t len;
	int rc;

	if (!q || (cap && !dst))
		return -EINVAL;
	rc = acquire(q, &m, cap, timeout_ms, q->r.spin_ns, 0);
	if (rc < 0)
		return rc;
	len = m.len;
	if (len)
		memcpy(dst, m.data, len);
	rc = shmk_ring_release(q, &m);
	return rc < 0 ? rc : (ssize_t)len;
}

/* ---------------------------------------------------------------------
 * Draining
 * --------------------------------------------------------------------- */

struct drain_wait {
	struct shmk_ring *q;
	uint64_t h0; /* head when the drain began */
	uint64_t p;  /* positions below p are released */
};

/*
 * Every position below h0 taken and its node released: position p's node
 * holds p + N (or a later position's state) once released.  Readers
 * notify the space eventcount when they release.  A node held by a dead
 * reader is given back (slow path, recover()).
 */
static int drain_cond(void *arg, int slow)
{
	struct drain_wait *a = arg;
	struct shmk_ring *q = a->q;
	int rc, round = 0;

	if (atomic_load_explicit(&q->poisoned, memory_order_relaxed) ||
	    shmk__region_poisoned(&q->r))
		return -EBADMSG;
	while (a->p < a->h0) {
		uint64_t s = atomic_load_explicit(&q->desc[a->p % q->n].seq,
						  memory_order_acquire);

		if ((s & ~SKIP_BIT) >= a->p + q->n) {
			a->p++;
			continue;
		}
		if (!slow)
			return SHMK__COND_WAIT;
		/* Not taken yet (a reader will, and notify), or held by a
		 * reader that may have died. */
		if (atomic_load_explicit(&q->ctl->tail, memory_order_acquire) <=
		    a->p)
			return SHMK__COND_WAIT;
		rc = recover(q, a->p);
		if (rc == RECOVERED && round++ < RECOVER_ROUNDS)
			continue;
		return rc == RECOVERED ? SHMK__COND_WAIT : rc;
	}
	return SHMK__COND_DONE;
}

SHMK__EXPORT int shmk_ring_drain(struct shmk_ring *q, int timeout_ms)
{
	struct drain_wait a = {.q = q};
	uint64_t h;
	int rc;

	if (!q)
		return -EINVAL;
	rc = shmk__region_check(&q->r);
	if (!rc)
		rc = shmk__timeout_ok(timeout_ms);
	if (rc < 0)
		return rc;
	h = atomic_load_explicit(&q->ctl->head, memory_order_acquire);
	if (h > POS_MAX)
		return poison(q);
	a.h0 = h;
	a.p = h > q->n ? h - q->n : 0;
	return ring_wait(q, &q->ctl->space, drain_cond, &a, timeout_ms,
			 q->r.spin_ns, 0);
}

/* ---------------------------------------------------------------------
 * Statistics
 * --------------------------------------------------------------------- */

/* Sums the global counters and every operation slot's (each read once);
 * out[NCTR] is the lag. */
static void sum(uint64_t out[NCTR + 1], const _Atomic uint64_t *global,
		const struct ring_part *parts, uint64_t head, uint64_t tail)
{
	int i, k, o;

	for (i = 0; i < NCTR; i++)
		out[i] = atomic_load_explicit(&global[i], memory_order_relaxed);
	for (k = 0; k < SHMK__MAX_PARTS; k++)
		for (o = 0; o < NOPS; o++)
			for (i = 0; i < NOP_CTR; i++)
				out[i] += atomic_load_explicit(
					&parts[k].op[o].ctr[i],
					memory_order_relaxed);
	out[NCTR] = head > tail ? head - tail : 0;
}

SHMK__EXPORT int shmk_ring_stats(struct shmk_ring *q,
				 struct shmk_ring_stats *st)
{
	uint64_t v[NCTR + 1], head, tail;
	int rc;

	if (!q || !st)
		return -EINVAL;
	rc = shmk__region_check(&q->r);
	if (rc < 0)
		return rc;
	tail = atomic_load_explicit(&q->ctl->tail, memory_order_acquire);
	head = atomic_load_explicit(&q->ctl->head, memory_order_acquire);
	sum(v, q->r.hdr->counter, q->parts, head, tail);
	memset(st, 0, sizeof(*st));
	st->nodes = q->n;
	st->node_size = q->node_size;
	st->written = v[C_WRITTEN];
	st->bytes_written = v[C_BYTES_W];
	st->read = v[C_READ];
	st->bytes_read = v[C_BYTES_R];
	st->full_waits = v[C_FULL_WAITS];
	st->empty_waits = v[C_EMPTY_WAITS];
	st->wakeups = v[C_WAKEUPS];
	st->aborted = v[G_ABORTED];
	st->recovered = v[G_RECOVERED];
	st->lost = v[G_LOST];
	st->high_water = v[G_HWM];
	st->lag = v[NCTR];
	return 0;
}

/* For shmk_stat(): the same sums, from the file (nothing mapped). */
static int ring_stat_counters(int fd, const struct shmk__hdr *h, uint64_t *out)
{
	const struct ring_ctl *c = (const struct ring_ctl *)h->ctl;
	struct ring_part *parts;
	size_t len = SHMK__MAX_PARTS * sizeof(*parts);
	int rc;

	parts = malloc(len);
	if (!parts)
		return -ENOMEM;
	rc = shmk__pread_all(fd, parts, len, SHMK__HDR_SIZE);
	if (rc < 0) {
		free(parts);
		return rc;
	}
	sum(out, h->counter, parts,
	    atomic_load_explicit(&c->head, memory_order_relaxed),
	    atomic_load_explicit(&c->tail, memory_order_relaxed));
	free(parts);
	return 0;
}
