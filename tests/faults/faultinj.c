/* SPDX-License-Identifier: MIT */
/*
 * faultinj.c - a fault-injection shim for the tests, loaded with
 * LD_PRELOAD.  It stands in front of the C library's wrappers of the
 * calls libshmk makes and, inside a window the test marks, fails the Nth
 * call that can fail with the chosen kind of error:
 *
 *	SHMK_FI_N=7 SHMK_FI_ERRNO=ENOSPC	(read by shmk_fi_begin())
 *
 * (ENOMEM, ENOSPC, EMFILE or EINTR).  Only calls made between
 * shmk_fi_begin() and shmk_fi_end() count (from any thread), so a test's
 * own setup is never failed, and only calls made by the object that holds
 * libshmk (not those the C library or a sanitizer makes on its own
 * account).  Each intercepted function fails only with the kinds that
 * make sense for it, in its own way (the FAIL() of each interceptor): a
 * lock that cannot be allocated is ENOLCK, a thread that cannot be made
 * is EAGAIN, a file too large for its file system is EFBIG.  Calls that
 * cannot fail with the kind asked for pass through and are not counted,
 * so N runs over the places where that error can really happen.  With
 * SHMK_FI_TRACE set, the stack of the call failed is printed.
 *
 * The control functions (found with dlsym by the test, so that the test
 * runs unchanged without the shim):
 *	void shmk_fi_begin(void);	arm from the environment, zero counts
 *	long shmk_fi_end(void);		disarm; the eligible calls seen
 *	const char *shmk_fi_fired(int *err);  the call failed, or NULL
 *
 * The memory allocator's entry points are among the intercepted; while
 * the shim looks up the real functions (which may itself allocate) it
 * serves allocations from a small static arena.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <link.h>
#include <execinfo.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT void shmk_fi_begin(void);
EXPORT long shmk_fi_end(void);
EXPORT const char *shmk_fi_fired(int *err);

/* The kinds of failure a test asks for. */
enum { K_NONE, K_NOMEM, K_NOSPC, K_MFILE, K_INTR };

static _Atomic int armed;   /* 1 inside the window */
static _Atomic int kind;    /* K_* */
static _Atomic long target; /* fail the target-th eligible call */
static _Atomic long seen;   /* eligible calls in the window */
static const char *_Atomic fired_fn;
static _Atomic int fired_err;
static int tracing; /* SHMK_FI_TRACE: print the stack of the failed call */

/* ---------------------------------------------------------------------
 * The real functions
 * --------------------------------------------------------------------- */

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_memfd_create)(const char *, unsigned);
static int (*real_ftruncate)(int, off_t);
static int (*real_posix_fallocate)(int, off_t, off_t);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_fstat)(int, struct stat *);
static int (*real_fstatat)(int, const char *, struct stat *, int);
static int (*real_fcntl)(int, int, ...);
static int (*real_fchmod)(int, mode_t);
static int (*real_link)(const char *, const char *);
static int (*real_linkat)(int, const char *, int, const char *, int);
static int (*real_unlink)(const char *);
static int (*real_fsync)(int);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static ssize_t (*real_recvmsg)(int, struct msghdr *, int);
static int (*real_pthread_create)(pthread_t *, const pthread_attr_t *,
				  void *(*)(void *), void *);
static ssize_t (*real_getrandom)(void *, size_t, unsigned);
static int (*real_clock_nanosleep)(clockid_t, int, const struct timespec *,
				   struct timespec *);
static long (*real_syscall)(long, ...);

/* Allocations made while the real allocator is being looked up. */
static _Alignas(16) char arena[65536];
static _Atomic size_t arena_used;
static __thread int resolving __attribute__((tls_model("initial-exec")));

static int in_arena(const void *p)
{
	return (const char *)p >= arena &&
	       (const char *)p < arena + sizeof(arena);
}

static void *arena_alloc(size_t n)
{
	size_t at = atomic_fetch_add(&arena_used, (n + 15) & ~(size_t)15);

	if (at + n > sizeof(arena))
		return NULL;
	return arena + at; /* zeroed: static storage, never reused */
}

#define LOOKUP(f) (real_##f = (__typeof__(real_##f))dlsym(RTLD_NEXT, #f))

static void resolve(void)
{
	static _Atomic int done;

	if (atomic_load_explicit(&done, memory_order_acquire))
		return;
	resolving = 1;
	LOOKUP(malloc);
	LOOKUP(calloc);
	LOOKUP(realloc);
	LOOKUP(free);
	LOOKUP(open);
	LOOKUP(openat);
	LOOKUP(memfd_create);
	LOOKUP(ftruncate);
	LOOKUP(posix_fallocate);
	LOOKUP(mmap);
	LOOKUP(fstat);
	LOOKUP(fstatat);
	LOOKUP(fcntl);
	LOOKUP(fchmod);
	LOOKUP(link);
	LOOKUP(linkat);
	LOOKUP(unlink);
	LOOKUP(fsync);
	LOOKUP(pread);
	LOOKUP(sendmsg);
	LOOKUP(recvmsg);
	LOOKUP(pthread_create);
	LOOKUP(getrandom);
	LOOKUP(clock_nanosleep);
	LOOKUP(syscall);
	resolving = 0;
	atomic_store_explicit(&done, 1, memory_order_release);
}

/* ---------------------------------------------------------------------
 * The decision
 * --------------------------------------------------------------------- */

/*
 * Only calls made by the object that holds libshmk count (the program,
 * which links the static library, or libshmk.so): not those the C
 * library or a sanitizer's runtime make on their own account.
 */
static const char *scope_lo, *scope_hi;

/* The object whose loaded segments hold the address arg (NULL: the
 * first object, the program). */
static int scope_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	const char *lo = NULL, *hi = NULL;
	int i;

	(void)size;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const char *a = (const char *)info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type != PT_LOAD)
			continue;
		if (!lo || a < lo)
			lo = a;
		if (a + ph->p_memsz > hi)
			hi = a + ph->p_memsz;
	}
	if (!lo || (arg && ((const char *)arg < lo || (const char *)arg >= hi)))
		return 0;
	scope_lo = lo;
	scope_hi = hi;
	return 1;
}

static void find_scope(void)
{
	/* libshmk.so exports it; a program linked with the static
	 * library does not (and then holds it itself). */
	void *sym = dlsym(RTLD_DEFAULT, "shmk_strerror");

	scope_lo = scope_hi = NULL;
	dl_iterate_phdr(scope_cb, sym);
}

/*
 * A call of fn that would fail with err under the kind asked for (0: it
 * cannot fail that way, and is not counted), made from caller.  Returns err if this is the call to
 * fail, else 0.
 */
static int inject(const char *fn, int err, const void *caller)
{
	long n;

	if (!err || !atomic_load_explicit(&armed, memory_order_acquire) ||
	    (const char *)caller < scope_lo || (const char *)caller >= scope_hi)
		return 0;
	n = atomic_fetch_add(&seen, 1) + 1;
	if (n != atomic_load_explicit(&target, memory_order_relaxed))
		return 0;
	fired_fn = fn;
	atomic_store(&fired_err, err);
	if (tracing) {
		void *bt[16];

		backtrace_symbols_fd(bt, backtrace(bt, 16), 2);
	}
	return err;
}

static int cur_kind(void)
{
	return atomic_load_explicit(&kind, memory_order_relaxed);
}

/* The error fn fails with under the current kind, from its row of the
 * table: nomem, nospc, mfile, intr (0: not that way). */
static int pick(int nomem, int nospc, int mfile, int intr)
{
	switch (cur_kind()) {
	case K_NOMEM:
		return nomem;
	case K_NOSPC:
		return nospc;
	case K_MFILE:
		return mfile;
	case K_INTR:
		return intr;
	default:
		return 0;
	}
}

/* In an interceptor: its caller is the code that made the call. */
#define FAIL(fn, nomem, nospc, mfile, intr)                                    \
	inject(fn, pick(nomem, nospc, mfile, intr), __builtin_return_address(0))

/* ---------------------------------------------------------------------
 * Control
 * --------------------------------------------------------------------- */

static int kind_of(const char *s)
{
	if (!s)
		return K_NONE;
	if (!strcmp(s, "ENOMEM"))
		return K_NOMEM;
	if (!strcmp(s, "ENOSPC"))
		return K_NOSPC;
	if (!strcmp(s, "EMFILE"))
		return K_MFILE;
	if (!strcmp(s, "EINTR"))
		return K_INTR;
	return K_NONE;
}

EXPORT void shmk_fi_begin(void)
{
	const char *n = getenv("SHMK_FI_N");

	resolve();
	atomic_store(&armed, 0);
	find_scope();
	atomic_store(&seen, 0);
	fired_fn = NULL;
	atomic_store(&fired_err, 0);
	atomic_store(&kind, kind_of(getenv("SHMK_FI_ERRNO")));
	atomic_store(&target, n ? strtol(n, NULL, 10) : 0);
	tracing = getenv("SHMK_FI_TRACE") != NULL;
	if (tracing) {
		void *bt[1];

		backtrace(bt, 1); /* loads what backtrace needs, now */
	}
	atomic_store_explicit(&armed, 1, memory_order_release);
}

EXPORT long shmk_fi_end(void)
{
	atomic_store_explicit(&armed, 0, memory_order_release);
	return atomic_load(&seen);
}

EXPORT const char *shmk_fi_fired(int *err)
{
	if (err)
		*err = atomic_load(&fired_err);
	return fired_fn;
}

/* ---------------------------------------------------------------------
 * The interceptors
 * --------------------------------------------------------------------- */

EXPORT void *malloc(size_t n)
{
	if (resolving)
		return arena_alloc(n);
	resolve();
	if (FAIL("malloc", ENOMEM, 0, 0, 0)) {
		errno = ENOMEM;
		return NULL;
	}
	return real_malloc(n);
}

EXPORT void *calloc(size_t a, size_t b)
{
	if (resolving)
		return arena_alloc(a * b);
	resolve();
	if (FAIL("calloc", ENOMEM, 0, 0, 0)) {
		errno = ENOMEM;
		return NULL;
	}
	return real_calloc(a, b);
}

EXPORT void *realloc(void *p, size_t n)
{
	if (resolving || in_arena(p)) {
		void *q = resolving ? arena_alloc(n) : malloc(n);

		if (q && p) {
			size_t left =
				(size_t)(arena + sizeof(arena) - (char *)p);

			memcpy(q, p, n < left ? n : left);
		}
		return q;
	}
	resolve();
	if (FAIL("realloc", ENOMEM, 0, 0, 0)) {
		errno = ENOMEM;
		return NULL;
	}
	return real_realloc(p, n);
}

EXPORT void free(void *p)
{
	if (!p || in_arena(p))
		return;
	resolve();
	real_free(p);
}

static int wants_mode(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

static int fail_open(int flags, const void *caller)
{
	/* No room for a new file only when one is being made. */
	int err = inject(
		"open",
		pick(ENOMEM, wants_mode(flags) ? ENOSPC : 0, EMFILE, EINTR),
		caller);

	if (err)
		errno = err;
	return err;
}

EXPORT int open(const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (wants_mode(flags)) {
		va_list ap;

		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	resolve();
	if (fail_open(flags, __builtin_return_address(0)))
		return -1;
	return real_open(path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...)
	__attribute__((alias("open")));

EXPORT int openat(int dfd, const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (wants_mode(flags)) {
		va_list ap;

		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	resolve();
	if (fail_open(flags, __builtin_return_address(0)))
		return -1;
	return real_openat(dfd, path, flags, mode);
}

EXPORT int openat64(int dfd, const char *path, int flags, ...)
	__attribute__((alias("openat")));

EXPORT int memfd_create(const char *name, unsigned flags)
{
	int err;

	resolve();
	err = FAIL("memfd_create", ENOMEM, 0, EMFILE, 0);
	if (err) {
		errno = err;
		return -1;
	}
	return real_memfd_create(name, flags);
}

EXPORT int ftruncate(int fd, off_t len)
{
	int err;

	resolve();
	/* Too large for the file system is how ftruncate runs out. */
	err = FAIL("ftruncate", 0, EFBIG, 0, EINTR);
	if (err) {
		errno = err;
		return -1;
	}
	return real_ftruncate(fd, len);
}

EXPORT int ftruncate64(int fd, off_t len) __attribute__((alias("ftruncate")));

EXPORT int posix_fallocate(int fd, off_t off, off_t len)
{
	int err;

	resolve();
	err = FAIL("posix_fallocate", 0, ENOSPC, 0, EINTR);
	if (err)
		return err; /* the error is the return value */
	return real_posix_fallocate(fd, off, len);
}

EXPORT int posix_fallocate64(int fd, off_t off, off_t len)
	__attribute__((alias("posix_fallocate")));

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off)
{
	resolve();
	if (FAIL("mmap", ENOMEM, 0, 0, 0)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return real_mmap(addr, len, prot, flags, fd, off);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
		    off_t off) __attribute__((alias("mmap")));

EXPORT int fstat(int fd, struct stat *st)
{
	resolve();
	if (FAIL("fstat", ENOMEM, 0, 0, 0)) {
		errno = ENOMEM;
		return -1;
	}
	return real_fstat(fd, st);
}

EXPORT int fstatat(int dfd, const char *path, struct stat *st, int flags)
{
	resolve();
	if (FAIL("fstatat", ENOMEM, 0, 0, 0)) {
		errno = ENOMEM;
		return -1;
	}
	return real_fstatat(dfd, path, st, flags);
}

EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;
	int err = 0;

	va_start(ap, cmd);
	arg = va_arg(ap, void *); /* an int or a pointer: both fit */
	va_end(ap);
	resolve();
	switch (cmd) {
	case F_OFD_SETLK:
	case F_OFD_SETLKW:
	case F_OFD_GETLK:
	case F_SETLK:
	case F_SETLKW:
	case F_GETLK:
		/* No memory for a lock record: ENOLCK.  A probe
		 * (GETLK) is named apart from a lock taken. */
		err = FAIL(cmd == F_OFD_GETLK || cmd == F_GETLK
				   ? "fcntl(getlk)"
				   : "fcntl(setlk)",
			   ENOLCK, 0, 0,
			   cmd == F_OFD_SETLKW || cmd == F_SETLKW ? EINTR : 0);
		break;
	case F_ADD_SEALS:
		err = FAIL("fcntl(F_ADD_SEALS)", ENOMEM, 0, 0, 0);
		break;
	default:
		break;
	}
	if (err) {
		errno = err;
		return -1;
	}
	return real_fcntl(fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

EXPORT int fchmod(int fd, mode_t mode)
{
	resolve();
	if (FAIL("fchmod", ENOMEM, 0, 0, 0)) {
		errno = ENOMEM;
		return -1;
	}
	return real_fchmod(fd, mode);
}

EXPORT int link(const char *from, const char *to)
{
	int err;

	resolve();
	err = FAIL("link", ENOMEM, ENOSPC, 0, 0);
	if (err) {
		errno = err;
		return -1;
	}
	return real_link(from, to);
}

EXPORT int linkat(int fd1, const char *from, int fd2, const char *to, int flags)
{
	int err;

	resolve();
	err = FAIL("linkat", ENOMEM, ENOSPC, 0, 0);
	if (err) {
		errno = err;
		return -1;
	}
	return real_linkat(fd1, from, fd2, to, flags);
}

EXPORT int unlink(const char *path)
{
	resolve();
	if (FAIL("unlink", ENOMEM, 0, 0, 0)) {
		errno = ENOMEM;
		return -1;
	}
	return real_unlink(path);
}

EXPORT int fsync(int fd)
{
	int err;

	resolve();
	err = FAIL("fsync", 0, ENOSPC, 0, EINTR);
	if (err) {
		errno = err;
		return -1;
	}
	return real_fsync(fd);
}

EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	resolve();
	if (FAIL("pread", 0, 0, 0, EINTR)) {
		errno = EINTR;
		return -1;
	}
	return real_pread(fd, buf, n, off);
}

EXPORT ssize_t pread64(int fd, void *buf, size_t n, off_t off)
	__attribute__((alias("pread")));

EXPORT ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
	int err;

	resolve();
	err = FAIL("sendmsg", ENOMEM, 0, 0, EINTR);
	if (err) {
		errno = err;
		return -1;
	}
	return real_sendmsg(fd, m, flags);
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
	int err;

	resolve();
	err = FAIL("recvmsg", ENOMEM, 0, 0, EINTR);
	if (err) {
		errno = err;
		return -1;
	}
	return real_recvmsg(fd, m, flags);
}

EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *at,
			  void *(*fn)(void *), void *arg)
{
	int err;

	resolve();
	/* No memory for a thread's stack: EAGAIN. */
	err = FAIL("pthread_create", EAGAIN, 0, 0, 0);
	if (err)
		return err;
	return real_pthread_create(t, at, fn, arg);
}

EXPORT ssize_t getrandom(void *buf, size_t n, unsigned flags)
{
	resolve();
	if (FAIL("getrandom", 0, 0, 0, EINTR)) {
		errno = EINTR;
		return -1;
	}
	return real_getrandom(buf, n, flags);
}

EXPORT int clock_nanosleep(clockid_t c, int flags, const struct timespec *t,
			   struct timespec *rem)
{
	resolve();
	if (FAIL("clock_nanosleep", 0, 0, 0, EINTR))
		return EINTR; /* the error is the return value */
	return real_clock_nanosleep(c, flags, t, rem);
}

/* syscall(): only a futex wait can be interrupted (by a signal). */
EXPORT long syscall(long nr, ...)
{
	long a[6];
	va_list ap;
	int i;

	va_start(ap, nr);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	resolve();
	if (nr == SYS_futex &&
	    ((a[1] & FUTEX_CMD_MASK) == FUTEX_WAIT ||
	     (a[1] & FUTEX_CMD_MASK) == FUTEX_WAIT_BITSET) &&
	    FAIL("futex(wait)", 0, 0, 0, EINTR)) {
		errno = EINTR;
		return -1;
	}
	return real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
