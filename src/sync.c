/* SPDX-License-Identifier: MIT */
/*
 * sync.c - waiting and locking across processes: an eventcount on a futex
 * word with a spin-then-sleep policy, the liveness of lock owners, and the
 * robust read/write lock.  docs/design.md explains the protocols and why
 * no wake-up can be lost.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "sync.h"

/* This process is registered for, and may issue, global membarriers.
 * Cleared for good if a barrier ever fails: from then on this process's
 * notifies pay a fence and its sleepers poll every 1 ms. */
static _Atomic int mb_ok;

static int mb_usable(void)
{
	return atomic_load_explicit(&mb_ok, memory_order_relaxed);
}

/* ---------------------------------------------------------------------
 * The eventcount
 * --------------------------------------------------------------------- */

/*
 * Announces a sleeper and returns the key to sleep on.  The seq_cst
 * read-modify-write and the seq_cst fence after it order the announcement
 * before every load of the caller's re-check, whatever their own order,
 * and pair with the notifier's seq_cst publication and seq_cst load of
 * the word in shmk__ec_notify(): at least one side sees the other (the
 * notifier sees the bit, or the re-check sees the change).
 */
static uint32_t ec_prepare(struct shmk__ec *ec, unsigned flags, uint32_t bit)
{
	uint32_t key =
		atomic_fetch_or_explicit(&ec->word, bit, memory_order_seq_cst) |
		bit;

	atomic_thread_fence(memory_order_seq_cst);
	/* For notifiers that publish without a fence: a barrier on every
	 * CPU running a registered process, so that each either has made
	 * its publication visible or will see our bit. */
	if ((flags & SHMK__WAIT_ASYNC) && mb_usable() &&
	    !SHMK__SKIP_BARRIER("sleep_mb") &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) < 0)
		atomic_store_explicit(&mb_ok, 0, memory_order_relaxed);
	return key;
}

static void poll_notify(struct shmk__region *r, struct shmk__ec *ec);

/*
 * A sleeper or an armed socket was seen in v: wake the sockets, then
 * clear both bits and bump the sequence, then wake the sleepers.  The
 * armed bit is cleared only by a compare-and-swap from the word seen
 * before the scan of the sockets: a socket armed during the scan changed
 * the word (poll_arm() bumps the sequence), so the scan runs again, and
 * after a few rounds the bit is left set for the next notifier.  Either
 * way no armed socket is left behind a cleared bit, and a notifier killed
 * during the scan leaves the bit set.
 */
static int ec_wake(struct shmk__region *r, struct shmk__ec *ec, uint32_t v)
{
	const uint32_t both = SHMK__EC_SLEEPER | SHMK__EC_ARMED;
	uint32_t clear = both;
	int rounds = 0;

	if (likely(!(v & both)))
		return 0; /* nobody waits: no system call */
	for (;;) {
		if ((v & SHMK__EC_ARMED) && r) {
			if (rounds++ < 4)
				poll_notify(r, ec);
			else
				clear = SHMK__EC_SLEEPER;
		}
		/* Bump the sequence and clear the bits in one step: a
		 * sleeper that has not reached futex_wait yet fails it. */
		if (atomic_compare_exchange_weak_explicit(
			    &ec->word, &v, (v & ~clear) + SHMK__EC_SEQ,
			    memory_order_seq_cst, memory_order_relaxed))
			break;
		if (!(v & both))
			return 1;
	}
	if (!(v & SHMK__EC_SLEEPER))
		return 1;
	/* Dying here leaves the sleepers to their SHMK__LOST_WAKE_NS. */
	SHMK__CRASH("ec_wake");
	shmk__futex_wake(&ec->word, INT_MAX);
	return 1;
}

int shmk__ec_notify(struct shmk__region *r, struct shmk__ec *ec)
{
	return ec_wake(r, ec,
		       atomic_load_explicit(&ec->word, memory_order_seq_cst));
}

/* ---------------------------------------------------------------------
 * The asymmetric eventcount (the ring's): the notifier's hot path has no
 * fence; a sleeper forces one on every other CPU instead
 * (membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)), once, just before it
 * re-checks and sleeps.  docs/design.md gives the argument.
 * --------------------------------------------------------------------- */

static pthread_once_t mb_once = PTHREAD_ONCE_INIT;

/*
 * A child of fork() has a new mm, which may not be registered: a sleeper's
 * barrier would not reach the CPU of a notifier in the child.  So the
 * child registers again (or, failing that, sleeps in 1 ms slices as if
 * there were no barrier).
 */
static void mb_child(void)
{
	if (mb_usable() &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0,
		    0) < 0)
		atomic_store_explicit(&mb_ok, 0, memory_order_relaxed);
}

static void mb_init(void)
{
	long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

	if (q < 0 || !(q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) ||
	    !(q & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED))
		return;
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0,
		    0) < 0)
		return;
	if (pthread_atfork(NULL, NULL, mb_child) != 0)
		return;
	atomic_store_explicit(&mb_ok, 1, memory_order_relaxed);
}

int shmk__async_init(void)
{
	pthread_once(&mb_once, mb_init);
	return mb_usable();
}

int shmk__async_reached(void)
{
	return mb_usable();
}

void shmk__fence_all(void)
{
	/* Without a barrier of our own, wait instead: a store waiting in a
	 * store buffer is visible within nanoseconds, far below 1 ms. */
	if (!mb_usable() ||
	    syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) < 0)
		shmk__nap(1000000, SHMK__FOREVER);
}

int shmk__ec_notify_async(struct shmk__region *r, struct shmk__ec *ec)
{
	/* Keep the compiler from moving the load above the caller's
	 * publication; the processor may, and a sleeper's membarrier
	 * covers that.  Unregistered processes cannot be reached by it
	 * and pay the fence. */
	uint32_t v;

	atomic_signal_fence(memory_order_seq_cst);
	v = atomic_load_explicit(&ec->word, memory_order_relaxed);
	/* An eventcount with a wake-up socket armed on it once is fenced
	 * for good (FENCED is sticky, so this load may come early and still
	 * be right): an arming then needs no barrier on every CPU. */
	if (unlikely(!mb_usable() || ((v & SHMK__EC_FENCED) &&
				      !SHMK__SKIP_BARRIER("notify_fence")))) {
		atomic_thread_fence(memory_order_seq_cst);
		v = atomic_load_explicit(&ec->word, memory_order_relaxed);
	}
	return ec_wake(r, ec, v);
}

/* ---------------------------------------------------------------------
 * Wake-up sockets: a descriptor an event loop can wait on
 * --------------------------------------------------------------------- */

/*
 * A participant's wake-up socket is a UNIX datagram socket bound to the
 * abstract name "shmk.w.<object nonce>.<token>", the token random and
 * published in its slot (part.wake).  A notifier that finds the armed bit
 * in an eventcount sends a byte to every participant armed on it from a
 * socket of its own.  Anyone on the machine may send to an abstract name:
 * at worst a spurious wake-up (the handle's next call finds nothing and
 * arms again); a queue that is full is readable all the same.
 */
static socklen_t wake_name(struct sockaddr_un *a, uint64_t nonce,
			   uint64_t token)
{
	int n;

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1,
		     "shmk.w.%016llx.%016llx", (unsigned long long)nonce,
		     (unsigned long long)token);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   (size_t)n);
}

static int ec_line(const struct shmk__region *r, const struct shmk__ec *ec)
{
	ptrdiff_t off = (const char *)ec - (const char *)r->hdr->ctl;

	if (off < 0 || off >= (ptrdiff_t)SHMK__CTL_SIZE)
		return -1;
	return (int)(off / SHMK__CACHELINE);
}

/* The handle's sending socket, made when it first sends, closed with
 * the handle (async-signal-safe: a compare-and-swap decides which of two
 * racing makers keeps its own). */
static int notifier_sock(struct shmk__region *r)
{
	int fd = atomic_load_explicit(&r->send_fd, memory_order_acquire);
	int mine, none = -1;

	if (fd >= 0)
		return fd;
	mine = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (mine < 0)
		return -1;
	if (atomic_compare_exchange_strong_explicit(&r->send_fd, &none, mine,
						    memory_order_acq_rel,
						    memory_order_acquire))
		return mine;
	close(mine);
	return none;
}

static void poll_notify(struct shmk__region *r, struct shmk__ec *ec)
{
	uint32_t n =
		atomic_load_explicit(&r->hdr->nslots, memory_order_seq_cst);
	int line = ec_line(r, ec), fd = notifier_sock(r), k;
	uint64_t bit, nonce = r->hdr->nonce;

	if (line < 0 || fd < 0)
		return;
	bit = UINT64_C(1) << line;
	if (n > SHMK__MAX_PARTS)
		n = SHMK__MAX_PARTS;
	for (k = 0; k < (int)n; k++) {
		struct shmk__part *p = &r->hdr->part[k];
		struct sockaddr_un a;
		uint64_t tok;
		char byte = 'w';

		/* seq_cst: after our look at the word (see poll_arm()). */
		if (!(atomic_load_explicit(&p->armed, memory_order_seq_cst) &
		      bit) ||
		    !(atomic_fetch_and_explicit(&p->armed, ~bit,
						memory_order_seq_cst) &
		      bit))
			continue;
		tok = atomic_load_explicit(&p->wake, memory_order_acquire);
		if (tok)
			(void)sendto(fd, &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL,
				     (struct sockaddr *)&a,
				     wake_name(&a, nonce, tok));
	}
}

int shmk__poll_fd(struct shmk__region *r)
{
	int fd, tries;

	if (r->poll_fd >= 0)
		return r->poll_fd;
	if (r->slot < 0 || r->forked)
		return -EINVAL;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	for (tries = 0; tries < 16; tries++) {
		struct sockaddr_un a;
		uint64_t tok = shmk__random64() | 1;

		if (bind(fd, (struct sockaddr *)&a,
			 wake_name(&a, r->hdr->nonce, tok)) == 0) {
			r->poll_token = tok;
			/* Release: the socket is bound before anyone sends. */
			atomic_store_explicit(&r->hdr->part[r->slot].wake, tok,
					      memory_order_release);
			r->poll_fd = fd;
			return fd;
		}
		if (errno != EADDRINUSE)
			break;
	}
	tries = -errno;
	close(fd);
	return tries;
}

/*
 * Arms the handle's socket on ec: what is queued is drained, our bit set
 * in the slot's armed word, then the armed bit in the eventcount with a
 * new sequence (seq_cst both, then a fence, and for a fence-free notifier
 * a barrier on every CPU: as ec_prepare()).  A notifier whose look at the
 * word comes after our compare-and-swap scans the slots and sees ours; one
 * whose look came before published its change before that look, so the
 * caller's re-check after this sees the change; one scanning meanwhile
 * fails its compare-and-swap and scans again.
 */
static void poll_arm(struct shmk__region *r, struct shmk__ec *ec,
		     unsigned flags)
{
	int line = ec_line(r, ec), i;
	char buf[16];
	uint32_t v;

	if (line < 0)
		return;
	/* What is queued was for what we are about to look at again. */
	for (i = 0; i < 64; i++)
		if (recv(r->poll_fd, buf, sizeof(buf), MSG_DONTWAIT) < 0)
			break;
	atomic_fetch_or_explicit(&r->hdr->part[r->slot].armed,
				 UINT64_C(1) << line, memory_order_seq_cst);
	/* The bit and a new sequence: a notifier scanning now sees the word
	 * change and scans again (ec_wake()).  FENCED too: from now on the
	 * fence-free notifiers fence (shmk__ec_notify_async()). */
	v = atomic_load_explicit(&ec->word, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(
		&ec->word, &v,
		(v | SHMK__EC_ARMED | SHMK__EC_FENCED) + SHMK__EC_SEQ,
		memory_order_seq_cst, memory_order_relaxed))
		;
	atomic_thread_fence(memory_order_seq_cst);
	/* A notifier that has not seen FENCED yet needs our barrier, as a
	 * sleeper's.  Once a barrier has followed FENCED (FENCED_SURE, set
	 * after it), every notifier's look at the word comes after a fence
	 * of its own, and the arming's seq_cst compare-and-swap and fence
	 * pair with it: no barrier then. */
	if (!(flags & SHMK__WAIT_ASYNC) || (v & SHMK__EC_FENCED_SURE) ||
	    !mb_usable())
		return;
	if (!SHMK__SKIP_BARRIER("arm_mb") &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) <
		    0) {
		atomic_store_explicit(&mb_ok, 0, memory_order_relaxed);
		return;
	}
	atomic_fetch_or_explicit(&ec->word, SHMK__EC_FENCED_SURE,
				 memory_order_seq_cst);
}

void shmk__notify_all(struct shmk__region *r)
{
	int i;

	if (!r->kind || !r->hdr)
		return;
	for (i = 0; i < r->kind->n_ec && i < 4; i++)
		(void)shmk__ec_notify(
			r,
			(struct shmk__ec *)(r->hdr->ctl + r->kind->ec_off[i]));
}

void shmk__region_wake(struct shmk__region *r)
{
	/* seq_cst, before the notifies' seq_cst looks at the words: a
	 * waiter that prepared after them sees the new count. */
	atomic_fetch_add_explicit(&r->wakes, 1, memory_order_seq_cst);
	shmk__notify_all(r);
}

int shmk__pollfd_call(struct shmk__region *r)
{
	int rc;

	if (!r)
		return -EINVAL;
	rc = shmk__region_check(r);
	return rc < 0 ? rc : shmk__poll_fd(r);
}

int shmk__wake_call(struct shmk__region *r)
{
	if (!r)
		return -EINVAL;
	if (r->forked)
		return -ECHILD;
	shmk__region_wake(r);
	return 0;
}

/* ---------------------------------------------------------------------
 * Waiting
 * --------------------------------------------------------------------- */

/* A wake not answered when the wait began, or since: answer it. */
static int woken(struct shmk__region *r, uint32_t wakes0)
{
	uint32_t w, seen;

	if (!r)
		return 0;
	w = atomic_load_explicit(&r->wakes, memory_order_relaxed);
	if (w == wakes0)
		return 0;
	/* The count answered only grows (two answering threads). */
	seen = atomic_load_explicit(&r->wakes_seen, memory_order_relaxed);
	while ((int32_t)(w - seen) > 0 &&
	       !atomic_compare_exchange_weak_explicit(&r->wakes_seen, &seen, w,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
	return 1;
}

int shmk__wait(struct shmk__region *r, uint32_t wakes0, struct shmk__ec *ec,
	       shmk__cond_fn cond, void *arg, uint64_t deadline,
	       int64_t spin_ns, uint64_t slice_ns, unsigned flags)
{
	uint64_t now, until, slice;
	unsigned n = 0;
	int rc;

	/* Without the barrier a fence-free notifier could be missed: such a
	 * sleeper never sleeps longer than 1 ms at a time. */
	if ((flags & SHMK__WAIT_ASYNC) && !mb_usable() &&
	    (!slice_ns || slice_ns > 1000000))
		slice_ns = 1000000;
	slice = slice_ns < 1000000 ? slice_ns : 1000000;
	rc = cond(arg, 0);
	if (rc == SHMK__COND_DONE || rc < 0)
		return rc < 0 ? rc : 0;
	if (deadline == 0)
		goto last_look;
	if (woken(r, wakes0))
		return -ECANCELED;
	if (spin_ns > 0) {
		until = shmk__mono_ns() + (uint64_t)spin_ns;
		for (;;) {
			shmk__cpu_relax();
			rc = cond(arg, 0);
			if (rc == SHMK__COND_DONE || rc < 0)
				return rc < 0 ? rc : 0;
			if (++n % 16)
				continue;
			if (woken(r, wakes0))
				return -ECANCELED;
			now = shmk__mono_ns();
			if (now >= deadline)
				goto last_look;
			if (now >= until)
				break;
		}
	}
	for (;;) {
		uint32_t key = ec_prepare(ec, flags, SHMK__EC_SLEEPER);

		/* After the announcement: pairs with shmk__region_wake(). */
		if (woken(r, wakes0))
			return -ECANCELED;
		rc = cond(arg, 1);
		if (rc == SHMK__COND_DONE || rc < 0)
			return rc < 0 ? rc : 0;
		now = shmk__mono_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		/* Slices grow from 1 ms to slice_ns: a peer that died just
		 * before we looked (its exit still under way) is noticed
		 * soon, a long wait costs few wake-ups.  A condition that
		 * will be notified whatever happens is still looked at every
		 * SHMK__LOST_WAKE_NS: a notifier killed between clearing the
		 * waiter bit and its FUTEX_WAKE leaves sleepers whom no later
		 * notifier wakes, as they all find the bit clear. */
		until = (flags & SHMK__WAIT_LONG) && rc == SHMK__COND_IDLE
				? deadline
				: now + SHMK__LOST_WAKE_NS;
		if (slice && (rc != SHMK__COND_IDLE ||
			      ((flags & SHMK__WAIT_ASYNC) && !mb_usable()))) {
			until = now + slice;
			if (slice < slice_ns)
				slice = slice * 2 < slice_ns ? slice * 2
							     : slice_ns;
		}
		if (until > deadline)
			until = deadline;
		/* Whatever ends the sleep (a notify, a signal, the slice, a
		 * spurious wake-up, a key already stale), the loop re-checks
		 * the condition and the deadline, which never moves. */
		shmk__futex_wait(&ec->word, key, until);
	}

last_look:
	/* Before giving up, one slow look: a caller that only ever tries
	 * (timeout 0) must still see a dead owner and recover from it. */
	rc = cond(arg, 1);
	if (rc == SHMK__COND_DONE || rc < 0)
		return rc < 0 ? rc : 0;
	if (deadline == 0 && r && r->poll_fd >= 0) {
		/* -EAGAIN for an event loop: arm its socket, look again. */
		poll_arm(r, ec, flags);
		rc = cond(arg, 1);
		if (rc == SHMK__COND_DONE || rc < 0)
			return rc < 0 ? rc : 0;
	}
	return shmk__expired(deadline);
}

/* ---------------------------------------------------------------------
 * Owners
 * --------------------------------------------------------------------- */

int shmk__owner_dead(const struct shmk__region *r, uint64_t id)
{
	uint64_t slot1 = id >> 32;
	uint32_t gen = (uint32_t)id;
	int alive;

	if (slot1 == 0 || slot1 > SHMK__MAX_PARTS)
		return -EBADMSG;
	alive = shmk__part_alive(r, (int)slot1 - 1);
	if (alive < 0)
		return 0; /* cannot tell: never call an owner dead on doubt */
	if (!alive)
		return 1;
	/* The slot is held; by the owner only if its generation is the
	 * owner's.  Acquire: pairs with attach's release store of gen. */
	return atomic_load_explicit(&r->hdr->part[slot1 - 1].gen,
				    memory_order_acquire) != gen;
}

/* ---------------------------------------------------------------------
 * The read/write lock
 *
 * The writer word: 0 when free, else the owner id (bits 0..39) of the
 * writer that claimed it, with RW_HELD once that writer has drained the
 * readers (from then on it may be writing).  RW_DIRTY, with or without an
 * owner, says that a writer died while it held the lock and no writer has
 * unlocked it cleanly since.  Readers count themselves in their own
 * participant slot's read word.
 * --------------------------------------------------------------------- */

#define RW_OWNER UINT64_C(0x000000ffffffffff)
#define RW_HELD	 (UINT64_C(1) << 62)
#define RW_DIRTY (UINT64_C(1) << 63)

static _Atomic uint64_t *rd_word(struct shmk__region *r, int k)
{
	return &r->hdr->part[k].obj[SHMK__PART_RD];
}

/* Validates a writer word read from shared memory. */
static int rw_valid(uint64_t w)
{
	if (w & ~(RW_OWNER | RW_HELD | RW_DIRTY))
		return 0;
	if (!(w & RW_OWNER) && (w & RW_HELD))
		return 0;
	return 1;
}

/*
 * The owner of w is dead: takes its claim away.  A dead writer that held
 * the lock may have left the data half-written, so the word keeps
 * RW_DIRTY; one that only claimed it had not begun.
 */
static void rw_recover(struct shmk__region *r, struct shmk__rwlock *l,
		       uint64_t w)
{
	uint64_t clean = (w & (RW_HELD | RW_DIRTY)) ? RW_DIRTY : 0;

	/* seq_cst: a published change for shmk__ec_notify(). */
	if (atomic_compare_exchange_strong_explicit(&l->writer, &w, clean,
						    memory_order_seq_cst,
						    memory_order_relaxed)) {
		shmk__count(r, SHMK__CTR_OWNER_DEAD, 1);
		shmk__ec_notify(r, &l->ec);
	}
}

struct rw_wait {
	struct shmk__region *r;
	struct shmk__rwlock *l;
	int how;
	int draining; /* writer: claimed, waiting for readers */
	int k;	      /* writer: next slot to look at */
	uint64_t me;
	uint64_t dirty;
};

/* A writer word with an owner: 0 to wait on, or an error. */
static int rw_owned(struct rw_wait *a, uint64_t w, int slow)
{
	int dead;

	if (!slow)
		return 0;
	dead = shmk__owner_dead(a->r, w & RW_OWNER);
	if (dead < 0)
		return dead;
	if (dead)
		rw_recover(a->r, a->l, w);
	return 0;
}

static int rd_cond(void *arg, int slow)
{
	struct rw_wait *a = arg;
	_Atomic uint64_t *rd = rd_word(a->r, a->r->slot);
	uint64_t w;
	int rc = shmk__region_check(a->r);

	if (rc < 0)
		return rc; /* the file was shrunk under us */
	/* Look before announcing, so that waiting readers do not make the
	 * read word flicker under a draining writer. */
	w = atomic_load_explicit(&a->l->writer, memory_order_acquire);
	if (!rw_valid(w))
		return -EBADMSG;
	if (w & RW_OWNER)
		return rw_owned(a, w, slow);
	/*
	 * Announce, then look again.  seq_cst both: pairs with the writer's
	 * seq_cst claim and its seq_cst loads of read words; either the
	 * writer sees our count, or we see its claim.
	 */
	atomic_fetch_add_explicit(rd, 1, memory_order_seq_cst);
	w = atomic_load_explicit(&a->l->writer, memory_order_seq_cst);
	if (!(w & RW_OWNER)) {
		a->dirty = w & RW_DIRTY;
		return 1;
	}
	atomic_fetch_sub_explicit(rd, 1, memory_order_seq_cst);
	shmk__ec_notify(a->r,
			&a->l->ec); /* a draining writer may wait for us */
	return 0;
}

static int wr_cond(void *arg, int slow)
{
	struct rw_wait *a = arg;
	uint64_t w, n;
	int alive, rc = shmk__region_check(a->r);

	if (rc < 0)
		return rc; /* the file was shrunk under us */
	if (!a->draining) {
		w = atomic_load_explicit(&a->l->writer, memory_order_acquire);
		if (!rw_valid(w))
			return -EBADMSG;
		if (w & RW_OWNER)
			return rw_owned(a, w, slow);
		/* seq_cst: ordered before our loads of the read words. */
		if (!atomic_compare_exchange_strong_explicit(
			    &a->l->writer, &w, a->me | (w & RW_DIRTY),
			    memory_order_seq_cst, memory_order_relaxed))
			return 0;
		a->dirty = w & RW_DIRTY;
		a->draining = 1;
		a->k = 0;
		SHMK__CRASH("lock_claimed"); /* readers not drained yet */
	}
	/* Wait for every reader that got in before our claim.  Readers
	 * that come later see the claim and back off. */
	n = atomic_load_explicit(&a->r->hdr->nslots, memory_order_seq_cst);
	if (n > SHMK__MAX_PARTS)
		n = SHMK__MAX_PARTS; /* corrupt: scan them all */
	while ((uint64_t)a->k < n) {
		_Atomic uint64_t *rd = rd_word(a->r, a->k);
		uint64_t v = atomic_load_explicit(rd, memory_order_seq_cst);

		if (!v) {
			a->k++;
			continue;
		}
		if (!slow || a->k == a->r->slot)
			return 0;
		alive = shmk__part_alive(a->r, a->k);
		if (alive != 0)
			return 0; /* a live reader (or cannot tell) */
		/* A dead reader: its holds die with it.  Its slot may be
		 * claimed again meanwhile; a new holder's reads back off from
		 * our claim, so clearing its word is harmless.  Then look at
		 * the same slot again, at once: nobody will wake us for it. */
		if (atomic_compare_exchange_strong_explicit(
			    rd, &v, 0, memory_order_seq_cst,
			    memory_order_relaxed))
			shmk__count(a->r, SHMK__CTR_READERS_RECLAIMED, 1);
	}
	/* Every reader is out: from here on we may be writing. */
	atomic_store_explicit(&a->l->writer, a->me | RW_HELD | a->dirty,
			      memory_order_seq_cst);
	return 1;
}

int shmk__rw_lock(struct shmk__region *r, struct shmk__rwlock *l, int how,
		  uint64_t deadline)
{
	struct rw_wait a = {
		.r = r, .l = l, .how = how, .me = shmk__owner_id(r)};
	int rc;

	rc = shmk__wait(r, shmk__wakes(r), &l->ec,
			how == SHMK_LOCK_WRITE ? wr_cond : rd_cond, &a,
			deadline, r->spin_ns, SHMK__LIVENESS_SLICE_NS, 0);
	if (rc < 0 && a.draining) {
		/* Gave up while draining: drop the claim (it is ours). */
		atomic_store_explicit(&l->writer, a.dirty,
				      memory_order_seq_cst);
		shmk__ec_notify(r, &l->ec);
	}
	if (rc < 0)
		return rc;
	SHMK__CRASH(how == SHMK_LOCK_WRITE ? "lock_write_held"
					   : "lock_read_held");
	return a.dirty ? -EOWNERDEAD : 0;
}

void shmk__rw_unlock(struct shmk__region *r, struct shmk__rwlock *l, int how,
		     int mark)
{
	uint64_t w;

	if (how == SHMK_LOCK_READ) {
		/* seq_cst: pairs with a draining writer's loads. */
		atomic_fetch_sub_explicit(rd_word(r, r->slot), 1,
					  memory_order_seq_cst);
	} else {
		w = atomic_load_explicit(&l->writer, memory_order_relaxed);
		/* seq_cst: publishes the writes made under the lock to the
		 * next locker (a release would do) and is the publication
		 * shmk__ec_notify() needs. */
		atomic_store_explicit(&l->writer,
				      mark == SHMK__RW_CLEAN   ? 0
				      : mark == SHMK__RW_TAINT ? RW_DIRTY
							       : (w & RW_DIRTY),
				      memory_order_seq_cst);
	}
	shmk__ec_notify(r, &l->ec);
}

void shmk__rw_reclaim(struct shmk__region *r, int slot)
{
	/* Our slot now: what its previous holder held died with it. */
	atomic_store_explicit(rd_word(r, slot), 0, memory_order_seq_cst);
}

/* ---------------------------------------------------------------------
 * The lock as the API offers it: what this thread holds
 *
 * Entries are keyed by the handle's serial, unique for the life of the
 * process (an address could be reused by a later handle).  A child of
 * fork() starts with an empty record: the handles it inherited are not
 * its own.
 * --------------------------------------------------------------------- */

#define HELD_MAX 16

static __thread struct {
	uint64_t serial;
	int how;
} held[HELD_MAX];
static __thread int nheld;
static pthread_once_t held_once = PTHREAD_ONCE_INIT;

static void held_forget(void)
{
	nheld = 0; /* in the child: only the forking thread exists */
}

static void held_init(void)
{
	pthread_atfork(NULL, NULL, held_forget);
}

static int held_find(const struct shmk__region *r)
{
	int i;

	for (i = 0; i < nheld; i++)
		if (held[i].serial == r->serial)
			return i;
	return -1;
}

static int lock_args(struct shmk__region *r, int how, int timeout_ms)
{
	int rc = shmk__region_check(r);

	if (rc < 0)
		return rc;
	if (how != SHMK_LOCK_READ && how != SHMK_LOCK_WRITE)
		return -EINVAL;
	return shmk__timeout_ok(timeout_ms);
}

int shmk__lock(struct shmk__region *r, struct shmk__rwlock *l, int how,
	       int timeout_ms)
{
	int rc = lock_args(r, how, timeout_ms);

	if (rc < 0)
		return rc;
	pthread_once(&held_once, held_init);
	if (held_find(r) >= 0)
		return -EDEADLK;
	if (nheld == HELD_MAX)
		return -ENOLCK;
	rc = shmk__rw_lock(r, l, how, shmk__deadline(timeout_ms));
	if (rc == 0 || rc == -EOWNERDEAD) {
		held[nheld].serial = r->serial;
		held[nheld].how = how;
		nheld++;
	}
	return rc;
}

/* Drops this thread's record of r's lock and releases it with mark. */
static int release(struct shmk__region *r, struct shmk__rwlock *l, int *how,
		   int mark)
{
	int i = held_find(r);

	if (i < 0)
		return -EPERM;
	*how = held[i].how;
	held[i] = held[--nheld];
	shmk__rw_unlock(r, l, *how, mark);
	return 0;
}

int shmk__unlock(struct shmk__region *r, struct shmk__rwlock *l, int *how)
{
	int rc = shmk__region_check(r);

	/* Shrunk under us: the lock is still given up (what of the header
	 * is left is shared), the data declared torn; the call says why. */
	if (rc == -EBADMSG) {
		release(r, l, how, SHMK__RW_TAINT);
		return rc;
	}
	if (rc < 0)
		return rc;
	/* An explicit writer's unlock declares the data consistent. */
	return release(r, l, how, SHMK__RW_CLEAN);
}

int shmk__lock_enter(struct shmk__region *r, struct shmk__rwlock *l, int how,
		     int timeout_ms, int *taken)
{
	int rc = lock_args(r, how, timeout_ms), i;

	*taken = 0;
	if (rc < 0)
		return rc;
	i = held_find(r);
	if (i >= 0)
		return held[i].how == SHMK_LOCK_READ && how == SHMK_LOCK_WRITE
			       ? -EDEADLK
			       : 0;
	rc = shmk__rw_lock(r, l, how, shmk__deadline(timeout_ms));
	*taken = rc == 0 || rc == -EOWNERDEAD;
	return rc;
}

int shmk__lock_drop(struct shmk__region *r, struct shmk__rwlock *l)
{
	int how = 0;

	/* Closing while writing abandons the write half-way, as a death
	 * would: the next lockers are told. */
	if (!r->forked && held_find(r) >= 0)
		release(r, l, &how, SHMK__RW_TAINT);
	return how;
}
