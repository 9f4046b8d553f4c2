/* SPDX-License-Identifier: MIT */
/*
 * wake.c - the ping-pong of wake.h: two processes on separate CPUs, both
 * asleep between messages, woken through one mechanism.  Each side
 * answers the other's failure within 200 ms (its waits time out to look),
 * so a run that goes wrong ends with a reason instead of hanging.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmk.h>

#include "bench.h"
#include "shmk_bench/verify.h"
#include "wake.h"

const char *const wake_names[WAKE_NMECH] = {"pipe",    "dgram", "dgram-conn",
					    "eventfd", "futex", "shmk ring fd"};

/* What both sides see (an anonymous shared mapping made before fork). */
struct shared {
	_Atomic uint32_t fw[2]; /* futex words, one per side */
	_Atomic int pid[2];	/* for pidfd_getfd */
	_Atomic int efd[2];	/* each side's eventfd number */
	_Atomic int ready;	/* barrier count */
	_Atomic int done;	/* set by side 0 before its last message */
	_Atomic int claimed;	/* the first side to fail takes why ... */
	_Atomic int failed;	/* ... and sets this once why is written */
	char why[160];
};

struct side {
	enum wake_mech m;
	int me;	  /* 0 sends first and times; 1 answers */
	int data; /* messages carry size bytes */
	int verify;
	size_t size;
	long corrupt;
	int in, out; /* descriptors we wait on / wake with */
	int ep;
	struct shared *sh;
	struct sockaddr_un peer;
	socklen_t peer_len;
	struct shmk_ring *rin, *rout; /* WAKE_SHMK */
	unsigned char *msg[BM_VARIANTS], *buf;
	uint64_t psum[BM_VARIANTS];
	int key;
	unsigned no;
};

/* Records why this side failed (unless the other side did first).  -1. */
__attribute__((format(printf, 2, 3))) static int fail(struct side *s,
						      const char *fmt, ...)
{
	va_list ap;

	if (atomic_exchange(&s->sh->claimed, 1))
		return -1;
	va_start(ap, fmt);
	vsnprintf(s->sh->why, sizeof(s->sh->why), fmt, ap);
	va_end(ap);
	atomic_store(&s->sh->failed, 1);
	return -1;
}

static int peer_failed(struct side *s)
{
	return atomic_load(&s->sh->failed);
}

static void name_of(char *b, size_t n, const struct side *s, int side)
{
	snprintf(b, n, "bench-wake.%d.%u.%d", s->key, s->no, side);
}

static void addr_of(struct sockaddr_un *a, socklen_t *len, const struct side *s,
		    int side)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	name_of(a->sun_path + 1, sizeof(a->sun_path) - 1, s, side);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   strlen(a->sun_path + 1));
}

/* Sends message seq to the other side. */
static int wake(struct side *s, uint64_t seq)
{
	unsigned v = (unsigned)(seq % BM_VARIANTS);
	unsigned char *p = s->msg[v];
	int corrupt =
		s->verify && s->corrupt >= 0 && (uint64_t)s->corrupt == seq;
	uint64_t one = 1;
	int rc = 0;

	if (s->verify)
		bm_stamp(p, s->size, (uint32_t)s->me, seq, s->psum[v], 0);
	if (corrupt)
		p[s->size - 1] ^= 0x10;
	switch (s->m) {
	case WAKE_PIPE:
		if (write_full(s->out, p, s->size) < 0)
			rc = fail(s, "write: %s", strerror(errno));
		break;
	case WAKE_DGRAM:
		if (sendto(s->out, p, s->size, 0, (struct sockaddr *)&s->peer,
			   s->peer_len) != (ssize_t)s->size)
			rc = fail(s, "sendto: %s", strerror(errno));
		break;
	case WAKE_DGRAM_CONN:
		if (send(s->out, p, s->size, 0) != (ssize_t)s->size)
			rc = fail(s, "send: %s", strerror(errno));
		break;
	case WAKE_EVENTFD:
		if (write(s->out, &one, 8) != 8)
			rc = fail(s, "eventfd write: %s", strerror(errno));
		break;
	case WAKE_FUTEX:
		atomic_store(&s->sh->fw[!s->me], 1);
		syscall(SYS_futex, &s->sh->fw[!s->me], FUTEX_WAKE, 1, NULL,
			NULL, 0);
		break;
	case WAKE_SHMK:
		rc = shmk_ring_write(s->rout, p, s->size, -1);
		if (rc < 0)
			rc = fail(s, "shmk_ring_write: %s", shmk_strerror(rc));
		break;
	default:
		break;
	}
	if (corrupt)
		p[s->size - 1] ^= 0x10;
	return rc;
}

/* Until the descriptor is readable: 0, or -1 (a failure, either side's). */
static int sleep_in_epoll(struct side *s)
{
	struct epoll_event ev;

	for (;;) {
		int n = epoll_wait(s->ep, &ev, 1, 200);

		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return fail(s, "epoll_wait: %s", strerror(errno));
		if (peer_failed(s))
			return -1;
	}
}

/* Checks message seq of n bytes from the other side. */
static int check(struct side *s, ssize_t n, uint64_t seq)
{
	struct bm_hdr h;
	int rc;

	if (!s->data)
		return 0;
	if (n != (ssize_t)s->size)
		return fail(s, "message %llu: %zd bytes, %zu expected",
			    (unsigned long long)seq, n, s->size);
	if (!s->verify)
		return 0;
	rc = bm_check(s->buf, s->size, &h);
	if (rc == -1)
		return fail(s, "message %llu arrived with a bad header",
			    (unsigned long long)seq);
	if (rc == -2)
		return fail(s,
			    "message %llu arrived corrupt (checksum mismatch)",
			    (unsigned long long)h.seq);
	if (h.seq != seq || h.writer != (uint32_t)!s->me)
		return fail(s, "message %llu arrived where %llu was due",
			    (unsigned long long)h.seq, (unsigned long long)seq);
	return 0;
}

/* Sleeps until message seq arrives, and checks it. */
static int wait_for(struct side *s, uint64_t seq)
{
	ssize_t n = 0;
	uint64_t v;

	switch (s->m) {
	case WAKE_FUTEX:
		while (!atomic_exchange(&s->sh->fw[s->me], 0)) {
			struct timespec ts = {0, 200000000};

			if (peer_failed(s))
				return -1;
			syscall(SYS_futex, &s->sh->fw[s->me], FUTEX_WAIT, 0,
				&ts, NULL, 0);
		}
		return 0;
	case WAKE_SHMK:
		/* Timeout 0 until a message; each -EAGAIN arms the fd. */
		while ((n = shmk_ring_read(s->rin, s->buf, WAKE_MAX_SIZE, 0)) <
		       0) {
			if (n != -EAGAIN)
				return fail(s, "shmk_ring_read: %s",
					    shmk_strerror((int)n));
			if (sleep_in_epoll(s) < 0)
				return -1;
		}
		break;
	case WAKE_PIPE:
		if (sleep_in_epoll(s) < 0)
			return -1;
		if (read_full(s->in, s->buf, s->size) < 0)
			return fail(s, "read: %s", strerror(errno));
		n = (ssize_t)s->size;
		break;
	case WAKE_DGRAM:
	case WAKE_DGRAM_CONN:
		if (sleep_in_epoll(s) < 0)
			return -1;
		n = recv(s->in, s->buf, WAKE_MAX_SIZE, 0);
		if (n < 0)
			return fail(s, "recv: %s", strerror(errno));
		break;
	case WAKE_EVENTFD:
		if (sleep_in_epoll(s) < 0)
			return -1;
		if (read(s->in, &v, 8) != 8)
			return fail(s, "eventfd read: %s", strerror(errno));
		break;
	default:
		break;
	}
	return check(s, n, seq);
}

/* Until both sides reach count n of the barrier: 0, or -1. */
static int barrier(struct side *s, int n)
{
	atomic_fetch_add(&s->sh->ready, 1);
	while (atomic_load(&s->sh->ready) < n)
		if (peer_failed(s))
			return -1;
		else
			sched_yield();
	return 0;
}

static int setup_side(struct side *s, int pipes[2][2])
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct sockaddr_un me;
	socklen_t len;
	int rc;

	s->buf = malloc(WAKE_MAX_SIZE);
	for (int v = 0; v < BM_VARIANTS; v++) {
		s->msg[v] = calloc(1, WAKE_MAX_SIZE);
		if (!s->msg[v])
			return fail(s, "out of memory");
		if (s->verify)
			s->psum[v] =
				bm_fill(s->msg[v], s->size,
					(uint32_t)(s->me * BM_VARIANTS + v));
	}
	if (!s->buf)
		return fail(s, "out of memory");
	switch (s->m) {
	case WAKE_PIPE:
		s->in = pipes[s->me][0];
		s->out = pipes[!s->me][1];
		break;
	case WAKE_DGRAM:
	case WAKE_DGRAM_CONN:
		s->in = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		addr_of(&me, &len, s, s->me);
		if (s->in < 0 || bind(s->in, (struct sockaddr *)&me, len) < 0)
			return fail(s, "bind: %s", strerror(errno));
		addr_of(&s->peer, &s->peer_len, s, !s->me);
		s->out = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (s->out < 0)
			return fail(s, "socket: %s", strerror(errno));
		break;
	case WAKE_EVENTFD:
		s->in = eventfd(0, EFD_CLOEXEC);
		if (s->in < 0)
			return fail(s, "eventfd: %s", strerror(errno));
		atomic_store(&s->sh->efd[s->me], s->in);
		atomic_store(&s->sh->pid[s->me], (int)getpid());
		break;
	case WAKE_SHMK: {
		struct shmk_opts o = {.spin_us = -1, .wait_ms = 5000};
		char n[64];

		name_of(n, sizeof(n), s, s->me);
		if ((rc = shmk_ring_open(n, &o, &s->rin)) < 0)
			return fail(s, "shmk_ring_open: %s", shmk_strerror(rc));
		name_of(n, sizeof(n), s, !s->me);
		if ((rc = shmk_ring_open(n, &o, &s->rout)) < 0)
			return fail(s, "shmk_ring_open: %s", shmk_strerror(rc));
		s->in = shmk_ring_pollfd(s->rin);
		if (s->in < 0)
			return fail(s, "shmk_ring_pollfd: %s",
				    shmk_strerror(s->in));
		break;
	}
	default:
		break;
	}
	if (s->m != WAKE_FUTEX) {
		s->ep = epoll_create1(EPOLL_CLOEXEC);
		if (s->ep < 0 ||
		    epoll_ctl(s->ep, EPOLL_CTL_ADD, s->in, &ev) < 0)
			return fail(s, "epoll_ctl: %s", strerror(errno));
	}
	if (barrier(s, 2) < 0)
		return -1;
	if (s->m == WAKE_DGRAM_CONN &&
	    connect(s->out, (struct sockaddr *)&s->peer, s->peer_len) < 0)
		return fail(s, "connect: %s", strerror(errno));
	if (s->m == WAKE_EVENTFD) {
		int pfd = (int)syscall(SYS_pidfd_open,
				       atomic_load(&s->sh->pid[!s->me]), 0);

		s->out = pfd < 0 ? -1
				 : (int)syscall(
					   SYS_pidfd_getfd, pfd,
					   atomic_load(&s->sh->efd[!s->me]), 0);
		if (pfd >= 0)
			close(pfd);
		if (s->out < 0)
			return fail(s, "pidfd_getfd: %s", strerror(errno));
	}
	return barrier(s, 4);
}

/* Closes what setup_side() opened (but the pipes, which the run owns). */
static void close_side(struct side *s)
{
	if (s->m == WAKE_SHMK) {
		shmk_ring_close(s->rin); /* closes s->in */
		shmk_ring_close(s->rout);
	} else if (s->m != WAKE_PIPE && s->m != WAKE_FUTEX) {
		if (s->in > 0)
			close(s->in);
		if (s->out > 0)
			close(s->out);
	}
	if (s->ep > 0)
		close(s->ep);
	free(s->buf);
	for (int v = 0; v < BM_VARIANTS; v++)
		free(s->msg[v]);
}

/* Side 1: answers every message until side 0 says it is done. */
static _Noreturn void answer(struct side *s, int pipes[2][2])
{
	uint64_t seq;

	pin(1);
	if (setup_side(s, pipes) < 0)
		_exit(1);
	for (seq = 0;; seq++) {
		if (wait_for(s, seq) < 0)
			_exit(1);
		if (atomic_load(&s->sh->done))
			break;
		if (wake(s, seq) < 0)
			_exit(1);
	}
	close_side(s);
	_exit(0);
}

/* Side 0: times round trips into w->t. */
static int ask(struct side *s, struct wake_run *w, int pipes[2][2])
{
	uint64_t seq, t_stop = 0;

	pin(0);
	if (setup_side(s, pipes) < 0)
		return -1;
	if (w->ready)
		w->ready();
	for (seq = 0;; seq++) {
		uint64_t t0, t1;

		if (!w->stop && w->n == w->cap)
			break;
		if (w->stop && (atomic_load(w->stop) || w->n == w->cap)) {
			if (!t_stop)
				t_stop = now_ns();
			if (w->n >= 200 || w->n == w->cap ||
			    now_ns() > t_stop + 5000000000ull)
				break;
		}
		t0 = now_ns();
		if (wake(s, seq) < 0 || wait_for(s, seq) < 0)
			return -1;
		t1 = now_ns();
		if (seq >= WAKE_WARM)
			w->t[w->n++] =
				(uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX
								: t1 - t0);
	}
	atomic_store(&s->sh->done, 1);
	return wake(s, seq);
}

int wake_pingpong(struct wake_run *w)
{
	static unsigned run_no;
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct shmk_ring *made[2] = {NULL, NULL};
	struct side s = {.m = w->m, .size = w->size, .corrupt = w->corrupt};
	int pipes[2][2] = {{-1, -1}, {-1, -1}}, i, st, rc = -1;
	pid_t pid = -1;

	w->n = 0;
	w->why[0] = 0;
	if (sh == MAP_FAILED) {
		snprintf(w->why, sizeof(w->why), "mmap: %s", strerror(errno));
		return -1;
	}
	s.sh = sh;
	s.key = (int)getpid();
	s.no = run_no++;
	s.data = w->m != WAKE_EVENTFD && w->m != WAKE_FUTEX;
	s.verify = s.data && w->size >= BM_HDR;
	if (w->size < 1 || w->size > WAKE_MAX_SIZE) {
		fail(&s, "messages of 1 to %d bytes", WAKE_MAX_SIZE);
		goto out;
	}
	if (pipe2(pipes[0], O_CLOEXEC) < 0 || pipe2(pipes[1], O_CLOEXEC) < 0) {
		fail(&s, "pipe: %s", strerror(errno));
		goto out;
	}
	if (w->m == WAKE_SHMK)
		for (i = 0; i < 2; i++) {
			struct shmk_opts o = {.spin_us = -1};
			size_t node = w->size > 64 ? w->size : 64;
			char n[64];

			name_of(n, sizeof(n), &s, i);
			shmk_unlink(n);
			rc = shmk_ring_create(n, 64, node, &o, &made[i]);
			if (rc < 0) {
				fail(&s, "shmk_ring_create: %s",
				     shmk_strerror(rc));
				goto out;
			}
		}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fail(&s, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		/* Never outlive side 0 (a failed or killed run). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		s.me = 1;
		answer(&s, pipes);
	}
	rc = ask(&s, w, pipes);
	if (rc < 0) /* the other side may wait for what will not come */
		kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	if (!rc && !(WIFEXITED(st) && !WEXITSTATUS(st)))
		rc = fail(&s, "the answering process ended with status 0x%x",
			  st);
	close_side(&s);
out:
	if (atomic_load(&sh->failed)) {
		snprintf(w->why, sizeof(w->why), "%s", sh->why);
		rc = -1;
	}
	for (i = 0; i < 2; i++) {
		char n[64];

		if (w->m != WAKE_SHMK)
			break;
		name_of(n, sizeof(n), &s, i);
		shmk_ring_close(made[i]);
		shmk_unlink(n);
	}
	for (i = 0; i < 4; i++)
		if (pipes[i / 2][i % 2] >= 0)
			close(pipes[i / 2][i % 2]);
	munmap(sh, sizeof(*sh));
	return rc;
}
