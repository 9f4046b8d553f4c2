/* SPDX-License-Identifier: MIT */
/*
 * sys.c - the system layer: clocks and deadlines, futexes, OFD locks, fd
 * passing, error names.  Every function returns -errno on failure and
 * retries EINTR where retrying is the right answer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "sys.h"

static uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t shmk__mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t shmk__real_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

int shmk__timeout_ok(int timeout_ms)
{
	return timeout_ms < -1 ? -EINVAL : 0;
}

uint64_t shmk__deadline(int timeout_ms)
{
	if (timeout_ms < 0)
		return SHMK__FOREVER;
	if (timeout_ms == 0)
		return 0;
	return shmk__mono_ns() + (uint64_t)timeout_ms * 1000000u;
}

int shmk__expired(uint64_t deadline)
{
	return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
}

void shmk__nap(uint64_t ns, uint64_t deadline)
{
	struct timespec ts;
	uint64_t now = shmk__mono_ns(), until = now + ns;

	if (deadline != SHMK__FOREVER && deadline < until)
		until = deadline;
	if (until <= now)
		return;
	ts.tv_sec = (time_t)(until / 1000000000u);
	ts.tv_nsec = (long)(until % 1000000000u);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

int shmk__futex_wait(_Atomic uint32_t *w, uint32_t expect, uint64_t deadline)
{
	struct timespec ts, *tsp = NULL;

	if (deadline != SHMK__FOREVER) {
		ts.tv_sec = (time_t)(deadline / 1000000000u);
		ts.tv_nsec = (long)(deadline % 1000000000u);
		tsp = &ts;
	}
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, so a
	 * wait restarted after a signal never stretches the deadline.  Not
	 * FUTEX_PRIVATE_FLAG: the word is shared between processes. */
	if (syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_BITSET, expect, tsp,
		    NULL, FUTEX_BITSET_MATCH_ANY) == 0)
		return 0;
	return -errno;
}

int shmk__futex_wake(_Atomic uint32_t *w, int n)
{
	long rc =
		syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, n, NULL, NULL, 0);

	return rc < 0 ? -errno : (int)rc;
}

static int ofd_lock(int fd, int cmd, short type, uint64_t byte,
		    struct flock *out)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)byte;
	fl.l_len = 1;
	while (fcntl(fd, cmd, &fl) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (out)
		*out = fl;
	return 0;
}

int shmk__ofd_trylock(int fd, uint64_t byte)
{
	int rc = ofd_lock(fd, F_OFD_SETLK, F_WRLCK, byte, NULL);

	return rc == -EACCES ? -EAGAIN : rc;
}

ssize_t shmk__pread(int fd, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got,
				  (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break; /* the end of the file */
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int shmk__pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t n = shmk__pread(fd, buf, len, off);

	if (n < 0)
		return (int)n;
	return (size_t)n < len ? -EBADMSG : 0;
}

/*
 * Asks with a read lock: only a write lock conflicts with it, and taking a
 * write lock needs a descriptor open for writing.  So a process that may
 * only read the file, and can take read locks on any byte of it, never
 * makes a token look held (test_hostile).
 */
int shmk__ofd_held(int fd, uint64_t byte)
{
	struct flock fl = {.l_type = F_UNLCK};
	int rc = ofd_lock(fd, F_OFD_GETLK, F_RDLCK, byte, &fl);

	if (rc < 0)
		return rc;
	return fl.l_type == F_WRLCK;
}

#ifdef SHMK_CRASH_POINTS
void shmk__crash_point(const char *name)
{
	static _Atomic unsigned long hits;
	const char *want = getenv("SHMK_CRASH");
	size_t n = strlen(name);
	unsigned long nth = 1;
	char *end = NULL;

	if (!want || strncmp(want, name, n) != 0 ||
	    (want[n] != '\0' && want[n] != ':'))
		return;
	if (want[n] == ':')
		nth = strtoul(want + n + 1, &end, 10);
	if (atomic_fetch_add(&hits, 1) + 1 == nth)
		kill(getpid(),
		     end && !strcmp(end, ":stop") ? SIGSTOP : SIGKILL);
}

int shmk__skip_barrier(const char *name)
{
	/* Two first callers at once both read the same environment. */
	static const char *_Atomic want;
	static _Atomic int looked;
	const char *w;

	if (!atomic_load_explicit(&looked, memory_order_acquire)) {
		atomic_store_explicit(&want, getenv("SHMK_SKIP_BARRIER"),
				      memory_order_relaxed);
		atomic_store_explicit(&looked, 1, memory_order_release);
	}
	w = atomic_load_explicit(&want, memory_order_relaxed);
	return w && !strcmp(w, name);
}
#endif

uint64_t shmk__random64(void)
{
	uint64_t v;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
		return v;
	return shmk__mono_ns() ^ (shmk__real_ns() << 17) ^
	       ((uint64_t)getpid() << 40);
}

SHMK__EXPORT int shmk_send_fd(int sock, int fd)
{
	char byte = 'F';
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = {0};
	struct cmsghdr *c;

	if (sock < 0 || fd < 0)
		return -EBADF;
	memset(&u, 0, sizeof(u));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = u.buf;
	mh.msg_controllen = sizeof(u.buf);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	for (;;) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);

		if (n == 1)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EIO;
	}
}

SHMK__EXPORT int shmk_recv_fd(int sock)
{
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} u;
	struct msghdr mh = {0};
	struct cmsghdr *c;
	int fd = -1, extra = 0;
	ssize_t n;

	if (sock < 0)
		return -EBADF;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = u.buf;
	mh.msg_controllen = sizeof(u.buf);
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPIPE;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t i, nfd;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfd; i++) {
			int got;

			memcpy(&got, CMSG_DATA(c) + i * sizeof(int),
			       sizeof(int));
			if (fd < 0) {
				fd = got;
			} else {
				close(got); /* never leak a surplus fd */
				extra = 1;
			}
		}
	}
	if (fd < 0 || extra || (mh.msg_flags & MSG_CTRUNC)) {
		if (fd >= 0)
			close(fd);
		return -EBADMSG;
	}
	return fd;
}

SHMK__EXPORT const char *shmk_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return "success";
	case EEXIST:
		return "an object of that name already exists";
	case ENOENT:
		return "no such object";
	case EINVAL:
		return "invalid argument";
	case ERANGE:
		return "offset or index out of range";
	case ETIMEDOUT:
		return "timed out";
	case EAGAIN:
		return "would block (or not ready yet)";
	case EMSGSIZE:
		return "message does not fit";
	case EPIPE:
		return "the object was shut down";
	case EPROTO:
		return "not a shmk object of the expected kind, version or "
		       "geometry";
	case EBADMSG:
		return "corrupt shared data";
	case EOWNERDEAD:
		return "lock taken over from a dead holder";
	case ENOSPC:
		return "no space left for the object";
	case EACCES:
		return "permission denied or object not trusted";
	case ECHILD:
		return "handle inherited through fork(); open the object again";
	case EBADF:
		return "bad file descriptor";
	case ENOMEM:
		return "out of memory";
	case EMFILE:
		return "too many open files";
	case ENAMETOOLONG:
		return "name too long";
	case ENOTSUP:
		return "not supported";
	case ENOSYS:
		return "no handler for the call";
	case ECANCELED:
		return "cancelled";
	case EUSERS:
		return "too many participants attached to the object";
	case EOVERFLOW:
		return "messages were overwritten before they were read";
	case ENOTCONN:
		return "not subscribed";
	case EALREADY:
		return "already subscribed";
	default: {
		/* glibc's table: static strings, thread-safe. */
		const char *d = strerrordesc_np(err);

		return d ? d : "unknown error";
	}
	}
}
