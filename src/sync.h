/* SPDX-License-Identifier: MIT */
/*
 * sync.h - the synchronisation layer (sync.c): waiting (an eventcount on a
 * futex word, spin then sleep), wake-up sockets, the liveness of lock
 * owners, and the robust read/write lock.  docs/design.md explains the
 * protocols and why no wake-up is lost.
 */
#ifndef SHMK_SYNC_H
#define SHMK_SYNC_H

#include "region.h"

/* An eventcount: bit 0 = someone is (about to be) asleep on the word,
 * bit 1 = some participant's wake-up socket is armed on it, bits 2 and 3
 * = FENCED and FENCED_SURE (below), bits 4..31 = a sequence bumped by
 * each notify that found bit 0 or 1, and by each arming. */
struct shmk__ec {
	_Atomic uint32_t word;
};
#define SHMK__EC_SLEEPER 1u
#define SHMK__EC_ARMED	 2u
/* Sticky, set by the first arming of a wake-up socket on the eventcount:
 * FENCED, the fence-free notifiers (shmk__ec_notify_async()) fence before
 * their look at the word; FENCED_SURE, set after the barrier that made
 * FENCED visible to every CPU: later armings need no barrier of their own
 * (poll_arm()). */
#define SHMK__EC_FENCED	     4u
#define SHMK__EC_FENCED_SURE 8u
#define SHMK__EC_SEQ	     16u

/*
 * The longest a sleeper waits between two looks at the liveness of an
 * owner it waits for (the bound on noticing a dead owner, T_live in
 * docs/design.md).
 */
#define SHMK__LIVENESS_SLICE_NS 10000000

/*
 * The longest any sleeper sleeps without looking at its condition, even
 * one that is always notified: the bound on the delay a notifier killed
 * in the middle of its wake-up can cause (docs/design.md).
 */
#define SHMK__LOST_WAKE_NS 10000000

/*
 * The condition a waiter waits for.  Returns SHMK__COND_DONE when it holds
 * (the wait returns 0), < 0 to end the wait with that error, or one of
 * the two ways of going on waiting: SHMK__COND_WAIT (sleep in slices: we
 * wait for an owner that may die without a word) or SHMK__COND_IDLE (for
 * an asynchronous wait with slices: whatever happens, someone notifies;
 * sleep SHMK__LOST_WAKE_NS at a time).  slow is 1 once the waiter has stopped
 * spinning: expensive checks (the liveness of an owner) belong there.
 */
enum { SHMK__COND_WAIT = 0, SHMK__COND_DONE = 1, SHMK__COND_IDLE = 2 };
typedef int (*shmk__cond_fn)(void *arg, int slow);

/*
 * Waits until cond holds, at most until the deadline: spins for spin_ns,
 * then sleeps on ec, waking to re-check after 1 ms, 2 ms, ... at most
 * slice_ns apart (0: no slices; every sleep still ends after
 * SHMK__LOST_WAKE_NS).  Returns 0, cond's error, or shmk__expired(deadline).
 * Whoever makes cond true must call shmk__ec_notify() afterwards.
 *
 * r (NULL for a process-private ec) is the handle waiting: if
 * shmk__region_wake(r) is called after the caller read wakes0 (with
 * shmk__wakes(), before its first look at the condition), the wait
 * returns -ECANCELED.  A wait that would return -EAGAIN (deadline 0) on a
 * handle with a wake-up socket arms the socket on ec first, so that the
 * next notify of ec makes it readable.
 */
#define SHMK__WAIT_ASYNC 1u /* notifiers use shmk__ec_notify_async() */
/* An idle condition (SHMK__COND_IDLE) is slept on until the deadline, not
 * SHMK__LOST_WAKE_NS at a time: the caller's notifiers are threads of its
 * own process, or it sees their death another way and bounds its wait. */
#define SHMK__WAIT_LONG 2u
int shmk__wait(struct shmk__region *r, uint32_t wakes0, struct shmk__ec *ec,
	       shmk__cond_fn cond, void *arg, uint64_t deadline,
	       int64_t spin_ns, uint64_t slice_ns, unsigned flags);

/* What shmk__wait() compares against: the wakes answered so far (a wake
 * not answered yet ends the next wait).  seq_cst: before the look at the
 * condition that precedes the wait. */
static inline uint32_t shmk__wakes(struct shmk__region *r)
{
	return atomic_load_explicit(&r->wakes_seen, memory_order_seq_cst);
}

/*
 * Wakes every sleeper of ec, with no system call when there is none, and
 * the wake-up sockets armed on it (r: the region ec is in; NULL for a
 * process-private ec).  The change that made a condition true must have
 * been published with a seq_cst operation (store or read-modify-write)
 * just before.
 */
int shmk__ec_notify(struct shmk__region *r, struct shmk__ec *ec);

/*
 * The handle's wake-up socket, made on first use: readable when a call of
 * the handle that returned -EAGAIN may now make progress.  Returns the
 * descriptor (the handle owns it) or a negative errno.
 */
int shmk__poll_fd(struct shmk__region *r);

/*
 * Ends every wait of the handle in progress with -ECANCELED (the object
 * is not shut down); with none in progress, the next one.
 * Async-signal-safe.
 */
void shmk__region_wake(struct shmk__region *r);

/* The public calls' bodies: r NULL is -EINVAL, an inherited handle
 * -ECHILD. */
int shmk__pollfd_call(struct shmk__region *r);
int shmk__wake_call(struct shmk__region *r);

/* Notifies every eventcount of the kind (shutdown, shmk__region_wake). */
void shmk__notify_all(struct shmk__region *r);

/*
 * The notify of a hot path: no fence, the caller's publication may be a
 * plain release store; sleepers must wait with SHMK__WAIT_ASYNC, and
 * every process that notifies must have called shmk__async_init() (at
 * open).  Both notifies return 1 if they woke someone (a system call).
 */
int shmk__ec_notify_async(struct shmk__region *r, struct shmk__ec *ec);
int shmk__async_init(void);
/* Can this process be reached by another's barrier (shmk__fence_all())?
 * If not, its fence-free stores that a peer's barrier must cover need a
 * fence of their own. */
int shmk__async_reached(void);
/* A full fence on every CPU running a process that shmk__async_reached()
 * (membarrier); without one, a 1 ms pause.  The slow path only. */
void shmk__fence_all(void);

/* A lock owner's identity: (slot + 1) << 32 | slot generation. */
static inline uint64_t shmk__owner_id(const struct shmk__region *r)
{
	return ((uint64_t)(r->slot + 1) << 32) | r->slot_gen;
}

/*
 * Is the owner id (read from shared memory) dead?  1 dead, 0 alive,
 * -EBADMSG if id is not a valid owner.  Never calls a live owner dead: a
 * live owner holds its slot's token and its generation is unchanged.
 */
int shmk__owner_dead(const struct shmk__region *r, uint64_t id);

/*
 * The robust read/write lock: many readers or one writer, writers
 * preferred.  A reader announces itself in its participant slot's read
 * word (SHMK__PART_RD), so readers share no cache line; the writer word
 * names its owner.  Lives in the object's control area.
 */
struct shmk__rwlock {
	_Atomic uint64_t writer; /* owner id | SHMK__RW_*; see sync.c */
	uint8_t pad0[SHMK__CACHELINE - 8];
	struct shmk__ec ec; /* sleepers: readers, writers, draining writer */
	uint8_t pad1[SHMK__CACHELINE - 4];
};
#define SHMK__PART_RD 0 /* part[k].obj[SHMK__PART_RD]: read holds of k */

/* The counters of every object with a lock (the kind names them). */
#define SHMK__CTR_WRITES	    0 /* writes: the version of the data */
#define SHMK__CTR_OWNER_DEAD	    1 /* writers found dead, lock taken */
#define SHMK__CTR_READERS_RECLAIMED 2 /* dead readers' holds cleared */

/* how: SHMK_LOCK_READ or SHMK_LOCK_WRITE.  Returns 0, -EOWNERDEAD (held,
 * but a writer died holding it: the data may be torn), an expiry, or
 * -EBADMSG.  A writer's unlock says what becomes of the torn mark: */
enum {
	SHMK__RW_KEEP,	/* as it was (an internal copy's unlock) */
	SHMK__RW_CLEAN, /* cleared: the holder vouches for the data */
	SHMK__RW_TAINT, /* set: the holder gave up half-way (close) */
};
int shmk__rw_lock(struct shmk__region *r, struct shmk__rwlock *l, int how,
		  uint64_t deadline);
void shmk__rw_unlock(struct shmk__region *r, struct shmk__rwlock *l, int how,
		     int mark);
/* The kind reclaim hook of objects with a lock: zero the read word. */
void shmk__rw_reclaim(struct shmk__region *r, int slot);

/*
 * The lock as the public API offers it (shmk_buffer_lock, ...), with the
 * calling thread's record of the handles it holds locks through.
 * shmk__lock_enter takes the lock for one call's copy unless this thread
 * already holds it in a mode that covers how; *taken says whether it did.
 * It returns -EOWNERDEAD (with the lock taken) if the data may be torn.
 */
int shmk__lock(struct shmk__region *r, struct shmk__rwlock *l, int how,
	       int timeout_ms);
int shmk__unlock(struct shmk__region *r, struct shmk__rwlock *l, int *how);
int shmk__lock_enter(struct shmk__region *r, struct shmk__rwlock *l, int how,
		     int timeout_ms, int *taken);
/* At close: releases what the calling thread still holds through r (a
 * write lock is marked torn); returns the mode it held, or 0. */
int shmk__lock_drop(struct shmk__region *r, struct shmk__rwlock *l);

#endif /* SHMK_SYNC_H */
