/* SPDX-License-Identifier: MIT */
/*
 * bench_wake - how a process asleep in epoll can be woken by another
 * process that does not hold its descriptor: the candidates for shmk's
 * pollable descriptors (docs/design.md, "Descriptors for event loops"),
 * each measured as a 1-byte ping-pong between two processes on separate
 * CPUs, both asleep in epoll_wait between messages:
 *
 *   pipe        a pipe each way, created before fork (the reference: both
 *               sides hold both ends)
 *   dgram       a UNIX datagram socket per waiter, bound to an abstract
 *               name; the waker sends with sendto() from its own socket
 *   dgram-conn  the same, the waker's socket connected once to the name
 *   eventfd     an eventfd per waiter, which the waker takes with
 *               pidfd_getfd() (needs ptrace rights over the waiter)
 *   futex       no epoll: a futex word each way (shmk's blocking calls)
 *   shmk ring fd  what shmk offers: a ring each way (spinning off), each
 *               side asleep in epoll on shmk_ring_pollfd(), reading with
 *               timeout 0 until -EAGAIN
 *
 * Prints the round trip's p50 / p99 and each mechanism's ratio to the pipe
 * measured in the same run.   Usage: bench_wake [rounds]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
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

static int g_key; /* the parent's pid: names this run's objects */

enum mech { PIPE, DGRAM, DGRAM_CONN, EVENTFD, FUTEX, SHMK, NMECH };
static const char *names[NMECH] = {"pipe",    "dgram", "dgram-conn",
				   "eventfd", "futex", "shmk ring fd"};

struct shared {
	_Atomic uint32_t fw[2]; /* futex words, one per side */
	_Atomic int pid[2];	/* for pidfd_getfd */
	_Atomic int efd[2];	/* each side's eventfd number */
	_Atomic int ready;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu % (int)sysconf(_SC_NPROCESSORS_ONLN), &s);
	sched_setaffinity(0, sizeof(s), &s);
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void addr_of(struct sockaddr_un *a, socklen_t *len, int side)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   (size_t)snprintf(
				   a->sun_path + 1, sizeof(a->sun_path) - 1,
				   "shmk-bench-wake.%d.%d", g_key, side));
}

struct side {
	enum mech m;
	int me;
	int in, out; /* descriptors we wait on / wake with */
	int ep;
	struct shared *sh;
	struct sockaddr_un peer;
	socklen_t peer_len;
	struct shmk_ring *rin, *rout; /* SHMK */
};

static void ring_name(char *b, size_t n, int side)
{
	snprintf(b, n, "bench-wake.%d.%d", g_key, side);
}

static void wake(struct side *s)
{
	char b = 'w';
	uint64_t one = 1;

	switch (s->m) {
	case PIPE:
		if (write(s->out, &b, 1) != 1)
			die("write");
		break;
	case DGRAM:
		if (sendto(s->out, &b, 1, 0, (struct sockaddr *)&s->peer,
			   s->peer_len) != 1)
			die("sendto");
		break;
	case DGRAM_CONN:
		if (send(s->out, &b, 1, 0) != 1)
			die("send");
		break;
	case EVENTFD:
		if (write(s->out, &one, 8) != 8)
			die("eventfd write");
		break;
	case FUTEX:
		atomic_store(&s->sh->fw[!s->me], 1);
		syscall(SYS_futex, &s->sh->fw[!s->me], FUTEX_WAKE, 1, NULL,
			NULL, 0);
		break;
	case SHMK:
		if (shmk_ring_write(s->rout, &b, 1, -1) < 0)
			die("shmk_ring_write");
		break;
	default:
		break;
	}
}

static void wait_for(struct side *s)
{
	struct epoll_event ev;
	char buf[16];

	if (s->m == FUTEX) {
		while (!atomic_exchange(&s->sh->fw[s->me], 0))
			syscall(SYS_futex, &s->sh->fw[s->me], FUTEX_WAIT, 0,
				NULL, NULL, 0);
		return;
	}
	if (s->m == SHMK) {
		/* Timeout 0 until a message; each -EAGAIN arms the fd. */
		while (shmk_ring_read(s->rin, buf, sizeof(buf), 0) < 0)
			if (epoll_wait(s->ep, &ev, 1, -1) < 0 && errno != EINTR)
				die("epoll_wait");
		return;
	}
	while (epoll_wait(s->ep, &ev, 1, -1) != 1)
		if (errno != EINTR)
			die("epoll_wait");
	if (read(s->in, buf, sizeof(buf)) <= 0)
		die("read");
}

static void setup_side(struct side *s, int pipes[2][2])
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct sockaddr_un me;
	socklen_t len;

	switch (s->m) {
	case PIPE:
		s->in = pipes[s->me][0];
		s->out = pipes[!s->me][1];
		break;
	case DGRAM:
	case DGRAM_CONN:
		s->in = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		addr_of(&me, &len, s->me);
		if (s->in < 0 || bind(s->in, (struct sockaddr *)&me, len) < 0)
			die("bind");
		addr_of(&s->peer, &s->peer_len, !s->me);
		s->out = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		break;
	case EVENTFD:
		s->in = eventfd(0, EFD_CLOEXEC);
		atomic_store(&s->sh->efd[s->me], s->in);
		atomic_store(&s->sh->pid[s->me], (int)getpid());
		break;
	case SHMK: {
		struct shmk_opts o = {.spin_us = -1, .wait_ms = 5000};
		char n[64];

		ring_name(n, sizeof(n), s->me);
		if (shmk_ring_open(n, &o, &s->rin) < 0)
			die("shmk_ring_open");
		ring_name(n, sizeof(n), !s->me);
		if (shmk_ring_open(n, &o, &s->rout) < 0)
			die("shmk_ring_open");
		s->in = shmk_ring_pollfd(s->rin);
		if (s->in < 0)
			die("shmk_ring_pollfd");
		break;
	}
	default:
		break;
	}
	if (s->m != FUTEX) {
		s->ep = epoll_create1(EPOLL_CLOEXEC);
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->in, &ev) < 0)
			die("epoll_ctl");
	}
	atomic_fetch_add(&s->sh->ready, 1);
	while (atomic_load(&s->sh->ready) < 2)
		sched_yield();
	if (s->m == DGRAM_CONN &&
	    connect(s->out, (struct sockaddr *)&s->peer, s->peer_len) < 0)
		die("connect");
	if (s->m == EVENTFD) {
		int pfd = (int)syscall(SYS_pidfd_open,
				       atomic_load(&s->sh->pid[!s->me]), 0);

		s->out = pfd < 0 ? -1
				 : (int)syscall(
					   SYS_pidfd_getfd, pfd,
					   atomic_load(&s->sh->efd[!s->me]), 0);
		if (s->out < 0)
			die("pidfd_getfd");
	}
	atomic_fetch_add(&s->sh->ready, 1);
	while (atomic_load(&s->sh->ready) < 4)
		sched_yield();
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Runs one mechanism; returns p50 (and *p99) in ns. */
static double run(enum mech m, int rounds, double *p99)
{
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t *t = malloc(sizeof(*t) * (size_t)rounds);
	int pipes[2][2], i, st;
	struct side s = {.m = m, .sh = sh};
	pid_t pid;
	double p50;

	struct shmk_ring *made[2] = {NULL, NULL};

	if (sh == MAP_FAILED || !t || pipe2(pipes[0], O_CLOEXEC) < 0 ||
	    pipe2(pipes[1], O_CLOEXEC) < 0)
		die("setup");
	if (m == SHMK)
		for (i = 0; i < 2; i++) {
			struct shmk_opts o = {.spin_us = -1};
			char n[64];

			ring_name(n, sizeof(n), i);
			shmk_unlink(n);
			if (shmk_ring_create(n, 64, 64, &o, &made[i]) < 0)
				die("shmk_ring_create");
		}
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) /* never outlive the parent (a failed run) */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	s.me = pid == 0;
	pin(s.me);
	setup_side(&s, pipes);
	if (pid == 0) {
		for (i = 0; i < rounds + 100; i++) {
			wait_for(&s);
			wake(&s);
		}
		_exit(0);
	}
	for (i = 0; i < rounds + 100; i++) {
		uint64_t t0 = now_ns();

		wake(&s);
		wait_for(&s);
		if (i >= 100)
			t[i - 100] = now_ns() - t0;
	}
	waitpid(pid, &st, 0);
	if (m == SHMK) {
		shmk_ring_close(s.rin); /* closes s.in */
		shmk_ring_close(s.rout);
		for (i = 0; i < 2; i++) {
			char n[64];

			ring_name(n, sizeof(n), i);
			shmk_ring_close(made[i]);
			shmk_unlink(n);
		}
	} else if (m != PIPE && m != FUTEX) {
		close(s.in);
		close(s.out);
	}
	if (m != FUTEX)
		close(s.ep);
	qsort(t, (size_t)rounds, sizeof(*t), cmp);
	p50 = (double)t[rounds / 2];
	*p99 = (double)t[rounds * 99 / 100];
	free(t);
	munmap(sh, sizeof(*sh));
	close(pipes[0][0]);
	close(pipes[0][1]);
	close(pipes[1][0]);
	close(pipes[1][1]);
	return p50;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 20000, m;
	double p50[NMECH], p99[NMECH];

	if (rounds < 100)
		rounds = 100;
	g_key = (int)getpid();
	printf("bench_wake: 1-byte ping-pong between two processes on two "
	       "CPUs, both asleep between messages; %d round trips each\n\n",
	       rounds);
	printf("   %-12s %10s %10s %10s\n", "mechanism", "p50 us", "p99 us",
	       "p50/pipe");
	for (m = 0; m < NMECH; m++) {
		p50[m] = run((enum mech)m, rounds, &p99[m]);
		printf("   %-12s %10.2f %10.2f %9.2fx\n", names[m],
		       p50[m] / 1e3, p99[m] / 1e3, p50[m] / p50[PIPE]);
	}
	return 0;
}
