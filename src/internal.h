/* SPDX-License-Identifier: MIT */
/*
 * Internal interfaces shared by the modules of libshmk.  Layers, from the
 * bottom: sys.c (system calls), region.c (names, backing, header,
 * participants), then the objects, then stat.c (introspection of every
 * kind).  Nothing reaches up.
 *
 * docs/format.md is the authority for every shared byte declared here.
 */
#ifndef SHMK_INTERNAL_H
#define SHMK_INTERNAL_H

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmk.h"

/* Marks the definition of a public function (the build hides the rest). */
#define SHMK__EXPORT __attribute__((visibility("default")))
#define likely(x)    __builtin_expect(!!(x), 1)
#define unlikely(x)  __builtin_expect(!!(x), 0)

/* ---------------------------------------------------------------------
 * sys.c: thin, EINTR-safe wrappers; all return -errno on failure.
 * --------------------------------------------------------------------- */

/* CLOCK_MONOTONIC and CLOCK_REALTIME in ns. */
uint64_t shmk__mono_ns(void);
uint64_t shmk__real_ns(void);

/*
 * A deadline is an absolute CLOCK_MONOTONIC time in ns, computed once from a
 * timeout in ms: SHMK__FOREVER for -1, 0 for "try once", now + ms otherwise.
 * shmk__timeout_ok() is 0 for a valid timeout (>= -1), else -EINVAL.
 */
#define SHMK__FOREVER UINT64_MAX
int shmk__timeout_ok(int timeout_ms);
uint64_t shmk__deadline(int timeout_ms);
/* The error of a wait that reached its deadline: -EAGAIN or -ETIMEDOUT. */
int shmk__expired(uint64_t deadline);
/* Sleep ns nanoseconds, or less if the deadline comes first. */
void shmk__nap(uint64_t ns, uint64_t deadline);

/*
 * Crash points, compiled into the test library only (SHMK_CRASH_POINTS):
 * with SHMK_CRASH=NAME or NAME:N in the environment, the process kills
 * itself with SIGKILL at the Nth (default first) pass through the point
 * NAME; with NAME:N:stop it stops itself there (SIGSTOP) instead, alive,
 * until a SIGCONT.  The crash tests put them where a peer's death hurts
 * most.
 */
#ifdef SHMK_CRASH_POINTS
void shmk__crash_point(const char *name);
#define SHMK__CRASH(name) shmk__crash_point(name)
#else
#define SHMK__CRASH(name) ((void)0)
#endif

/*
 * Shared (not process-private) futex operations on a 32-bit word.  wait
 * sleeps while *w == expect, at most until the CLOCK_MONOTONIC deadline;
 * returns 0 when woken (or spuriously), -EAGAIN if *w != expect,
 * -ETIMEDOUT at the deadline, -EINTR on a signal.  wake returns the number
 * of waiters woken.
 */
int shmk__futex_wait(_Atomic uint32_t *w, uint32_t expect, uint64_t deadline);
int shmk__futex_wake(_Atomic uint32_t *w, int n);

/* A hint to the CPU that we are spinning. */
static inline void shmk__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/* Open-file-description locks on one byte of fd: the liveness tokens. */
int shmk__ofd_trylock(int fd, uint64_t byte); /* 0, -EAGAIN if held */
int shmk__ofd_held(int fd, uint64_t byte);    /* 1 held by another, 0 free */

/* Reads len bytes of fd at off: 0, -EBADMSG if the file ends first, or
 * -errno; retries EINTR. */
int shmk__pread_all(int fd, void *buf, size_t len, uint64_t off);

/* A random 64-bit value (getrandom, falling back to the clock). */
uint64_t shmk__random64(void);

/* ---------------------------------------------------------------------
 * The shared header (docs/format.md).  Host byte order; the endian word
 * reveals a mismatch.  Every field has a fixed width and offset.
 * --------------------------------------------------------------------- */

#define SHMK__MAGIC	0x6b6d6873u /* the bytes "shmk" on a little-endian host */
#define SHMK__ENDIAN	0x01020304u
#define SHMK__VERSION	1
#define SHMK__HDR_SIZE	12288u
#define SHMK__GEOM_N	8
#define SHMK__NCOUNTERS 32
#define SHMK__MAX_PARTS 128
#define SHMK__CTL_SIZE	3072u
#define SHMK__CACHELINE 64
/* Largest region: keeps every offset representable in off_t and size_t
 * and far from overflow in any sum of two of them. */
#define SHMK__MAX_TOTAL (UINT64_C(1) << 46)

/*
 * Participant slot k.  Written only by the process whose open file
 * description holds the slot's liveness token (an OFD write lock on file
 * byte SHMK__LOCK_BYTE(k)); read by anyone.  The fields are informational
 * (pid and uid are never used to decide anything): liveness is the lock.
 */
struct shmk__part {
	_Atomic uint32_t gen;	/* bumped by each new holder; 0 = never used */
	_Atomic uint32_t pid;	/* holder's pid, in its own namespace */
	_Atomic uint32_t uid;	/* holder's effective uid */
	_Atomic uint32_t flags; /* SHMK__PART_* */
	_Atomic uint64_t attach_ns; /* CLOCK_REALTIME at attach, ns */
	/* The holder's wake-up socket (shmk__poll_fd()): the random token
	 * in its name, 0 for none.  Written by the holder, read by
	 * notifiers. */
	_Atomic uint64_t wake;
	/* Words of the object kind about this participant (its lock holds,
	 * its intents), written by the holder; zero until the kind uses
	 * them.  A slot is a whole cache line so that participants writing
	 * their own words never share one. */
	_Atomic uint64_t obj[3];
	/* The eventcounts (bit i: the one on line i of ctl) whose next
	 * notify must wake the holder's socket: set by the holder, cleared
	 * by the notifier that sends. */
	_Atomic uint64_t armed;
};
#define SHMK__HF_KEEP	    1u /* header flag: no shutdown at the creator's close */
#define SHMK__PART_CREATOR  1u /* the slot's holder created the object */
#define SHMK__PART_ATTACHED 2u /* set at attach, cleared by a clean close */

struct shmk__hdr {
	/* 0x000: identity.  Written by the creator before the object is
	 * published under its name; never changed afterwards. */
	uint32_t magic;		     /* SHMK__MAGIC */
	uint32_t endian;	     /* SHMK__ENDIAN */
	uint16_t version;	     /* SHMK__VERSION */
	uint16_t kind;		     /* enum shmk_kind */
	uint32_t hdr_size;	     /* bytes before the object's data */
	uint64_t total_size;	     /* bytes of the whole region */
	uint64_t geom[SHMK__GEOM_N]; /* kind-specific geometry */
	uint32_t creator_uid;	     /* creator's effective uid */
	uint32_t creator_pid;	     /* creator's pid (informational) */
	uint64_t created_ns;	     /* CLOCK_REALTIME at creation, ns */
	uint64_t nonce;		     /* random, unique to this incarnation */
	uint32_t flags;		     /* SHMK__HF_* */
	uint8_t pad0[0x100 - 0x74];
	/* 0x100: lifecycle.  state: enum shmk_state, written by the creator
	 * (release).  state_seq: bumped after each change of state once the
	 * object is published (that is, at shutdown). */
	_Atomic uint32_t state;
	_Atomic uint32_t state_seq;
	/* One more than the highest participant slot ever claimed: those
	 * who scan the table stop there.  Raised by attach (seq_cst). */
	_Atomic uint32_t nslots;
	uint8_t pad1[0x140 - 0x10c];
	/* 0x140: counters, kind-specific, updated with relaxed atomics. */
	_Atomic uint64_t counter[SHMK__NCOUNTERS];
	uint8_t pad2[0x400 - 0x240];
	/* 0x400: the object's control words (locks, cursors, events), laid
	 * out by the object, each hot word on its own cache line. */
	uint8_t ctl[SHMK__CTL_SIZE];
	/* 0x1000: the participant table (0x1000..0x3000). */
	struct shmk__part part[SHMK__MAX_PARTS];
};

_Static_assert(sizeof(struct shmk__part) == SHMK__CACHELINE, "part layout");
_Static_assert(offsetof(struct shmk__hdr, version) == 0x08, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, kind) == 0x0a, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, hdr_size) == 0x0c, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, total_size) == 0x10, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, geom) == 0x18, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, creator_uid) == 0x58, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, created_ns) == 0x60, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, nonce) == 0x68, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, state) == 0x100, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, state_seq) == 0x104, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, nslots) == 0x108, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, counter) == 0x140, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, ctl) == 0x400, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, part) == 0x1000, "hdr layout");
_Static_assert(sizeof(struct shmk__hdr) == SHMK__HDR_SIZE, "hdr size");

/* Liveness token of participant slot k: an OFD lock on this file byte
 * (a lock range says nothing about the bytes' contents). */
#define SHMK__LOCK_BYTE(k) (UINT64_C(0x1000) + (uint64_t)(k))

/* ---------------------------------------------------------------------
 * Kinds: what the region layer needs to know of each object.  Each object
 * file defines one.
 * --------------------------------------------------------------------- */
struct shmk__region;

struct shmk__kind {
	uint16_t kind; /* enum shmk_kind */
	const char *name;
	/*
	 * Total region size for this geometry, overflow-checked and at most
	 * SHMK__MAX_TOTAL; -EINVAL if the geometry is impossible.  Called on
	 * the creator's arguments and on an opener's private header copy.
	 */
	int (*layout)(const uint64_t geom[SHMK__GEOM_N], uint64_t *total);
	/*
	 * Called by attach on a slot it has just claimed, before the slot's
	 * new generation is published: clears what the slot's previous
	 * holder (closed or dead) left in its per-participant words.  NULL:
	 * nothing to clear.
	 */
	void (*reclaim)(struct shmk__region *r, int slot);
	/* Called when the creator shuts the object down, after the state is
	 * set: wakes the kind's sleepers so they see it (shmk__notify_all
	 * for every kind with eventcounts).  NULL: none. */
	void (*shutdown)(struct shmk__region *r);
	/* Where the kind's eventcounts are: byte offsets in ctl, each on a
	 * cache line of its own.  shmk__notify_all() notifies them all. */
	uint16_t ec_off[4];
	int n_ec;
	/* Fills the counters shmk_stat() reports from the object's file
	 * (pread; nothing is mapped) and its header copy h.  NULL: the
	 * header's counters are the kind's. */
	int (*stat_counters)(int fd, const struct shmk__hdr *h, uint64_t *out);
	/* 1 if only the creator ever attaches (others at most read the
	 * header, never taking a participant slot): its mode may then let
	 * others read without writing (see shmk__mode_readonly). */
	int creator_only;
	/* Names of the geometry fields and counters, NULL-terminated. */
	const char *geom_names[SHMK__GEOM_N + 1];
	const char *counter_names[SHMK__NCOUNTERS + 1];
};

/* ---------------------------------------------------------------------
 * guard.c: the SIGBUS guard of regions a peer can shrink (named files).
 * --------------------------------------------------------------------- */

/*
 * One mapping as the SIGBUS handler sees it.  Slots live in chunks that
 * are never freed; they are filled and emptied by the region layer under
 * its registry lock, and read by the handler without any lock.
 */
struct shmk__guard_slot {
	_Atomic uint32_t live;	   /* 1 while mapped; release/acquire */
	_Atomic uint32_t poisoned; /* 1 once the handler cut the mapping */
	_Atomic uintptr_t start;   /* the mapping's first byte */
	_Atomic uintptr_t len;	   /* its length in bytes (our own size) */
	_Atomic int fd;		   /* a description of the file, or -1 */
	int owned;		   /* taken by a region (registry lock) */
};

/*
 * Installs the process-wide handler (once, chaining to the previous
 * action) and enters r's mapping (r->hdr, r->size, already mapped) with
 * fd, which must stay open until shmk__guard_remove().  Returns 0, or
 * -ENOMEM.  Called with region.c's registry lock held, as are the two
 * below; remove comes before the munmap.
 */
struct shmk__region;
int shmk__guard_add(struct shmk__region *r, int fd);
void shmk__guard_remove(struct shmk__region *r);
/* In a fork child: r's descriptor is closed, the handler forgets it. */
void shmk__guard_forked(struct shmk__region *r);

/* ---------------------------------------------------------------------
 * region.c: one named (or anonymous) mapping with a validated header, and
 * this handle's participant slot in it.
 * --------------------------------------------------------------------- */
struct shmk__region {
	int fd; /* our own description; holds our liveness token */
	struct shmk__hdr *hdr;	     /* the mapping starts with the header */
	uint64_t size;		     /* mapped bytes = validated total size */
	uint64_t geom[SHMK__GEOM_N]; /* private copy, validated at open */
	int slot;		     /* our participant slot */
	uint32_t slot_gen;	     /* its generation while we hold it */
	int64_t spin_ns;	     /* spin budget of blocking calls */
	uint32_t hflags;	     /* create: the header's flags */
	const struct shmk__kind *kind;
	uint64_t serial; /* unique among this process's handles, never 0 */
	int creator;	 /* 1 if this handle created the object */
	int forked;	 /* 1 in a child that inherited the handle */
	int share_fd;	 /* for shmk_*_fd(): -1 until asked */
	struct shmk__region *next, *prev; /* the registry (fork handling) */
	/* The SIGBUS guard's record of the mapping; NULL when unguarded
	 * (sealed memfds cannot shrink). */
	struct shmk__guard_slot *guard;
	/* Waiting: the wake-up socket (-1 until shmk__poll_fd() makes it)
	 * and the token in its name; the socket notifies send from (-1
	 * until one first needs it); wakes counts shmk__region_wake(),
	 * wakes_seen the wakes some wait has answered with -ECANCELED. */
	int poll_fd;
	uint64_t poll_token;
	_Atomic int send_fd;
	_Atomic uint32_t wakes, wakes_seen;
};

/* Argument checks shared by every create and open call. */
int shmk__opts_check(const struct shmk_opts *o, int creating);

/*
 * The spin budget of a handle's blocking calls, in ns, from what opts asks
 * for (spin_us: 0 the default, < 0 none).  Read here, at open, and kept
 * in the handle (r->spin_ns): the sync layer only spends it.
 */
#define SHMK__SPIN_DEFAULT_NS 50000
int64_t shmk__spin_ns(const struct shmk_opts *o);

/*
 * 1 if mode lets its group or others read the file without writing it.
 * A process that may read an object's file can take read locks on any of
 * its bytes, and a read lock on a participant slot's byte keeps every
 * later process from claiming that slot; so shmk neither creates nor
 * attaches to an object whose mode allows that (docs/design.md, "Trust").
 */
static inline int shmk__mode_readonly(unsigned mode)
{
	return ((mode & 040) && !(mode & 020)) || ((mode & 04) && !(mode & 02));
}

/*
 * Creates the object (name NULL: anonymous) with the kind's geometry: the
 * backing is made, sized and reserved, init() fills the kind's control
 * words, the state is set ready, and only then the name appears, so no
 * process ever sees a half-made object.  With SHMK_F_OPEN_OR_CREATE an
 * existing object of the same kind and geometry is opened instead.
 */
int shmk__region_create(struct shmk__region *r, const char *name,
			const struct shmk__kind *k,
			const uint64_t geom[SHMK__GEOM_N],
			const struct shmk_opts *o,
			void (*init)(struct shmk__region *r));
int shmk__region_open(struct shmk__region *r, const char *name,
		      const struct shmk__kind *k, const struct shmk_opts *o);
int shmk__region_open_fd(struct shmk__region *r, int fd,
			 const struct shmk__kind *k, const struct shmk_opts *o);
/* Marks the region shut down if r is the creator, then unmaps it. */
void shmk__region_close(struct shmk__region *r);
/* A descriptor to hand to another process (see shmk_buffer_fd). */
int shmk__region_share_fd(struct shmk__region *r);
/* Closes the descriptor share_fd handed out, once the receivers have
 * theirs (the next share_fd makes a new one). */
void shmk__region_unshare(struct shmk__region *r);
/*
 * Removes name if it still names r's own file, whatever the file's bytes
 * say (shmk_unlink() refuses a file whose magic was overwritten).
 * Returns 0, -ENOENT if the name is gone or now names another file, or
 * another negative errno.
 */
int shmk__region_unlink(const struct shmk__region *r, const char *name);
/* Sets state = SHUTDOWN (release) and bumps state_seq. */
void shmk__region_shutdown(struct shmk__region *r);

/*
 * 1 once the SIGBUS guard found the object's file shrunk under the mapping
 * (its tail now reads private zeros).  Relaxed: the flag guards nothing;
 * the guard's handler sets it.
 */
static inline int shmk__region_poisoned(const struct shmk__region *r)
{
	return unlikely(r->guard != NULL) &&
	       unlikely(atomic_load_explicit(&r->guard->poisoned,
					     memory_order_relaxed) != 0);
}

/*
 * -ECHILD if the handle was inherited through fork(), -EBADMSG if the
 * object's file was shrunk under us (close the handle), else 0.  Called
 * at the entry of every call on an object, and by the conditions of its
 * waits, so that a blocked call ends too.
 */
static inline int shmk__region_check(const struct shmk__region *r)
{
	if (unlikely(r->forked))
		return -ECHILD;
	return shmk__region_poisoned(r) ? -EBADMSG : 0;
}

static inline void *shmk__region_data(const struct shmk__region *r)
{
	return (char *)r->hdr + SHMK__HDR_SIZE;
}

static inline void shmk__count(struct shmk__region *r, int i, uint64_t n)
{
	atomic_fetch_add_explicit(&r->hdr->counter[i], n, memory_order_relaxed);
}

/* Is participant slot k held by a live process? 1 yes, 0 no, or -errno. */
int shmk__part_alive(const struct shmk__region *r, int k);

/* Name handling shared by region.c and stat.c. */
#define SHMK__NAME_MAX	 200
#define SHMK__PATH_MAX	 4096
#define SHMK__SHM_DIR	 "/dev/shm"
#define SHMK__SHM_PREFIX "shmk."
/*
 * Validates name and writes the path of its backing: SHMK__SHM_DIR
 * "/shmk.<name>" for a plain name, the name itself for a file path.
 * Returns 0 for a plain name, 1 for a file path, -EINVAL if the name is
 * bad, -ENAMETOOLONG if the path does not fit.
 */
int shmk__name_path(const char *name, char *path, size_t cap);

/*
 * Opens an existing object's backing read-only (never following a
 * symlink, never blocking on a FIFO), checks that it is a regular file
 * that starts with the magic, and reads the header into *h without mapping
 * anything; the owner and mode are not checked, as nothing is mapped.  The
 * caller validates the header with shmk__hdr_check().  Does not wait.  On
 * success *fdp is the descriptor and *st what fstat said of it.
 */
struct stat;
int shmk__region_peek(const char *name, int *fdp, struct stat *st,
		      struct shmk__hdr *h);
/* The same for a descriptor already open (read access is enough). */
int shmk__region_peek_fd(int fd, struct stat *st, struct shmk__hdr *h);
/* shmk_stat() of the object behind fd (the file itself, whatever its name
 * now holds). */
struct shmk_stat;
int shmk__stat_fd(int fd, struct shmk_stat *st);
/* Validates a private header copy against the file size and the kind:
 * -EPROTO for another format or kind, -EBADMSG for inconsistent sizes. */
int shmk__hdr_check(const struct shmk__hdr *h, uint64_t file_size,
		    const struct shmk__kind *k);

/* Overflow-checked arithmetic: 0 on success, -1 on overflow. */
static inline int shmk__mul(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_mul_overflow(a, b, r) ? -1 : 0;
}
static inline int shmk__add(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_add_overflow(a, b, r) ? -1 : 0;
}

/* ---------------------------------------------------------------------
 * sync.c: waiting (an eventcount on a futex word, spin then sleep), the
 * liveness of lock owners, and the robust read/write lock.  docs/design.md
 * explains the protocols and why no wake-up is lost.
 * --------------------------------------------------------------------- */

/* An eventcount: bit 0 = someone is (about to be) asleep on the word,
 * bit 1 = some participant's wake-up socket is armed on it, bits 2..31 =
 * a sequence bumped by each notify that found either. */
struct shmk__ec {
	_Atomic uint32_t word;
};
#define SHMK__EC_SLEEPER 1u
#define SHMK__EC_ARMED	 2u
#define SHMK__EC_SEQ	 4u

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

/* The kinds defined by the object files. */
extern const struct shmk__kind shmk__buffer_kind;
extern const struct shmk__kind shmk__array_kind;
extern const struct shmk__kind shmk__event_kind;
extern const struct shmk__kind shmk__ring_kind;
extern const struct shmk__kind shmk__rpc_kind;
extern const struct shmk__kind shmk__topic_kind;

/* ring.c: the region under a ring (for rpc.c's liveness checks). */
struct shmk_ring;
struct shmk__region *shmk__ring_region(struct shmk_ring *q);
/* shmk_ring_acquire with a spin budget of its own (ns, 0: none). */
struct shmk_msg;
/* The same, waiting with SHMK__WAIT_LONG (an empty ring is slept on until
 * the deadline): for a reader that learns of its writers' deaths another
 * way (rpc: the peer's socket and pidfd). */
int shmk__ring_acquire_long(struct shmk_ring *q, struct shmk_msg *m,
			    int timeout_ms, int64_t spin_ns);
int shmk__ring_acquire_spin(struct shmk_ring *q, struct shmk_msg *m,
			    int timeout_ms, int64_t spin_ns);
/* topic.c: the region under a topic (for the fuzz target's checks). */
struct shmk_topic;
struct shmk__region *shmk__topic_region(struct shmk_topic *t);
/* rpc.c: a client's ring to its server (for the tests' hostile peer). */
struct shmk_rpc;
struct shmk_ring *shmk__rpc_out_ring(struct shmk_rpc *ep);
/*
 * rpc.c, for the fuzz target (fuzz/fuzz_rpc.c): an endpoint (a server if
 * server) whose one channel, peer number 1, runs over the rings in (frames
 * from the peer) and out (same node size), made without a connect and
 * without threads or sockets: frames are taken from in only by
 * shmk__rpc_poll(), which does what the reader does with each frame
 * waiting there (at most a ring's worth; returns how many) and then runs
 * the requests that completed (o->handler) as a worker would, and by calls
 * that read for themselves.  The endpoint owns in and out from the call
 * on, also when it fails; shmk_rpc_close() ends it.
 */
int shmk__rpc_lab(const char *name, int server, struct shmk_ring *in,
		  struct shmk_ring *out, const struct shmk_rpc_opts *o,
		  struct shmk_rpc **epp);
int shmk__rpc_poll(struct shmk_rpc *ep);

/*
 * rpc.c: the connect handshake's socket messages (docs/format.md 5.6.2),
 * parsed from a private copy of what one recvmsg() returned (len bytes,
 * nfds descriptors with it).  The hello: 0 and the client's claimed pid,
 * or -EPROTO.  The answer: 0 and *a for an acceptance, the refusal's code
 * for a refusal (a code the protocol does not carry becomes -EPROTO), or
 * -EPROTO for anything malformed.
 */
#define SHMK__RPC_HELLO_SIZE  16u
#define SHMK__RPC_ANSWER_SIZE 48u
struct shmk__rpc_answer {
	uint64_t chan, nodes, node_size, max_msg;
};
int shmk__rpc_hello_parse(const void *buf, size_t len, uint32_t *pid);
int shmk__rpc_answer_parse(const void *buf, size_t len, int nfds,
			   struct shmk__rpc_answer *a);

#endif /* SHMK_INTERNAL_H */
