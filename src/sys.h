/* SPDX-License-Identifier: MIT */
/*
 * sys.h - the system layer (sys.c): clocks and deadlines, futexes, OFD
 * locks, reads, randomness, crash points, and the helpers every layer
 * above uses.  Thin, EINTR-safe wrappers; all return -errno on failure.
 * Nothing here knows of regions or shared layouts.
 */
#ifndef SHMK_SYS_H
#define SHMK_SYS_H

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
 * Barriers the test library (SHMK_CRASH_POINTS) can leave out, so that a
 * test that must catch a missing barrier can show that it does: with
 * SHMK_SKIP_BARRIER=NAME in the environment (read once, at the first
 * use), SHMK__SKIP_BARRIER(NAME) is 1.  Always 0 in the installed
 * library.  tests/internal/test_wakeup_litmus.c names the barriers.
 */
#ifdef SHMK_CRASH_POINTS
int shmk__skip_barrier(const char *name);
#define SHMK__SKIP_BARRIER(name) shmk__skip_barrier(name)
#else
#define SHMK__SKIP_BARRIER(name) 0
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

/*
 * Reads len bytes of fd at off, or fewer if the file ends first, retrying
 * EINTR and short reads: the number of bytes read, or -errno.  Every read
 * of a file in the library goes through it.
 */
ssize_t shmk__pread(int fd, void *buf, size_t len, uint64_t off);
/* The same when the file must hold all len bytes: 0, -EBADMSG if it ends
 * first, or -errno. */
int shmk__pread_all(int fd, void *buf, size_t len, uint64_t off);

/* A random 64-bit value (getrandom, falling back to the clock). */
uint64_t shmk__random64(void);

/* Overflow-checked arithmetic: 0 on success, -1 on overflow. */
static inline int shmk__mul(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_mul_overflow(a, b, r) ? -1 : 0;
}
static inline int shmk__add(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_add_overflow(a, b, r) ? -1 : 0;
}

#endif /* SHMK_SYS_H */
