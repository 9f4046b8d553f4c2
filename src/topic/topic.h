/* SPDX-License-Identifier: MIT */
/*
 * topic/topic.h - shmk_topic: publish/subscribe.  Every subscriber receives
 * every message, in one total order, from any number of publishers.  The
 * private header of src/topic/: the shared layout (descriptors, loan
 * slots, subscriptions, control words), the handle, the small helpers
 * every file uses, and what the files call of each other.
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
 *
 * The files of src/topic/, bottom to top; each calls only those below it
 * (and the library's lower layers: kinds.h, sync.h and what they include):
 *   view.c       geometry, the view of a mapped topic, tail and head at
 *                one moment, dead publishers (finish_dead, recover) and
 *                dead subscribers.  Calls nothing of topic.
 *   publish.c    room (advancing tail), claims, loans, commit, abandon,
 *                publish: the publisher's side.  Calls view.c.
 *   subscribe.c  subscribe and unsubscribe, taking (acquire, release,
 *                receive), draining, lost, latest: the subscriber's side.
 *                Calls view.c.
 *   endpoint.c   the kind (reclaim), create, open, close, the handle's
 *                properties, statistics.  Calls view.c and subscribe.c.
 * ../topic.h (src/topic.h) is the little the fuzz target uses.
 */
#ifndef SHMK_TOPIC_TOPIC_H
#define SHMK_TOPIC_TOPIC_H

#include "../kinds.h"
#include "../sync.h"
#include "../topic.h"

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

/* Counters: loan slots count P_*, subscriptions S_*, kept in the slot
 * for good; the header's counter[] holds at the same indices what earlier
 * builds folded in (added too), then the shared ones.  shmk_stat adds the
 * computed ones. */
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
	/* Our slot's subscription counters when we took the slot (its last
	 * holders' counts stay in it): my_ctr() counts from there. */
	uint64_t sub_base[NS_CTR];
};

/* ---------------------------------------------------------------------
 * Helpers every file uses
 * --------------------------------------------------------------------- */

static inline uint64_t grans(uint64_t bytes)
{
	return (bytes + GRAN - 1) >> GRAN_SHIFT;
}

/* The log offset, in granules, of granule position pos.  The log's
 * granules and the descriptors are powers of two (topic_geometry()): a
 * mask, not a division, on every message's path. */
static inline uint64_t gran_off(const struct topic_view *v, uint64_t pos)
{
	return pos & (v->cg - 1);
}

/* Where a message of g granules linked at position l starts: at l, or at
 * the next lap if it would cross the end of the log. */
static inline uint64_t place(const struct topic_view *v, uint64_t l, uint64_t g)
{
	uint64_t off = gran_off(v, l);

	return off + g > v->cg ? l - off + v->cg : l;
}

static inline struct topic_desc *desc(const struct topic_view *v, uint64_t j)
{
	return &v->desc[j & (v->n - 1)];
}

static inline uint64_t load(_Atomic uint64_t *w, memory_order mo)
{
	return atomic_load_explicit(w, mo);
}

/* Is message j committed or skipped (or its descriptor a later one's)? */
static inline int finished(const struct topic_view *v, uint64_t j)
{
	uint64_t s = load(&desc(v, j)->seq, memory_order_acquire);

	return s == SEQ(j, ST_COMMIT) || s == SEQ(j, ST_SKIP) || s >> 2 > j;
}

static inline int poison(struct shmk_topic *t)
{
	atomic_store_explicit(&t->poisoned, 1, memory_order_relaxed);
	return -EBADMSG;
}

static inline int topic_check(struct shmk_topic *t)
{
	if (atomic_load_explicit(&t->poisoned, memory_order_relaxed))
		return -EBADMSG;
	return shmk__region_check(&t->r);
}

/* What a call that may wait checks first (t not NULL): 0 or -errno. */
static inline int topic_call_ok(struct shmk_topic *t, int timeout_ms)
{
	int rc = topic_check(t);

	return rc < 0 ? rc : shmk__timeout_ok(timeout_ms);
}

static inline int shut_down(const struct shmk_topic *t)
{
	return atomic_load_explicit(&t->r.hdr->state, memory_order_seq_cst) ==
	       SHMK_STATE_SHUTDOWN;
}

/* Counts in a slot we own alone (a loan slot, or the subscription). */
static inline void bump(_Atomic uint64_t *w, uint64_t x)
{
	atomic_store_explicit(w, load(w, memory_order_relaxed) + x,
			      memory_order_relaxed);
}

/* Slot k's subscriber, cursor word cw, was found dead before by this
 * handle (sub_dead()) and its slot has not changed hands since.  The
 * cursor was read with acquire, then the generation: a new holder's
 * generation came before its cursor. */
static inline int known_dead(struct shmk_topic *t, int k, uint64_t cw)
{
	return cw == load(&t->dead_cur[k], memory_order_relaxed) &&
	       atomic_load_explicit(&t->r.hdr->part[k].gen,
				    memory_order_acquire) ==
		       atomic_load_explicit(&t->dead_gen[k],
					    memory_order_relaxed);
}

static inline int topic_wait(struct shmk_topic *t, struct shmk__ec *ec,
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

/* Our subscription's counters since we took the slot: written by its
 * thread, read by any (relaxed); they stay in the slot when we go. */
static inline uint64_t my_ctr(const struct shmk_topic *t, int i)
{
	return atomic_load_explicit(&t->me->sub.ctr[i - S_DELIVERED],
				    memory_order_relaxed) -
	       t->sub_base[i - S_DELIVERED];
}

/* ---------------------------------------------------------------------
 * What each file offers the others
 * --------------------------------------------------------------------- */

/* view.c: geometry, the view, dead publishers and subscribers */
int shmk__topic_layout(const uint64_t geom[SHMK__GEOM_N], uint64_t *total);
void shmk__topic_view_of(struct shmk__region *r, struct topic_view *v);
int shmk__topic_snapshot(const struct topic_view *v, uint64_t *T, uint64_t *h);
int shmk__topic_recover(const struct topic_view *v, uint64_t j);
int shmk__topic_sub_dead(struct shmk_topic *t, int k, uint64_t cw);

/* subscribe.c: the subscriber's side (for close) */
void shmk__topic_unsubscribe(struct shmk_topic *t);

#endif /* SHMK_TOPIC_TOPIC_H */
