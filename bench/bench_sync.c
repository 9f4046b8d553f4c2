/* SPDX-License-Identifier: MIT */
/*
 * bench_sync - what shmk's synchronisation costs on this machine, beside
 * references measured in the same run:
 *
 *   1. an uncontended lock + unlock (buffer write lock, read lock, an
 *      8-byte locked read) against a process-shared pthread rwlock and a
 *      robust process-shared pthread mutex: min and median of REPS runs,
 *      taken in turn after a warm-up;
 *   2. an event ping-pong between two processes on two CPUs (round trip,
 *      p50/p99/p99.9) with the default spin budget and with no spinning,
 *      against a pipe and a bare futex ping-pong;
 *   3. the round trip when the peer answers after some work, for several
 *      spin budgets (why the default is what it is);
 *   4. T_live: from SIGKILL of a write-lock holder to the next lock.
 *
 * Usage: bench_sync [--quick]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmk.h>

#include "bench.h"

static int quick;

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_sync: %s: %s\n", what, shmk_strerror(rc));
	exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct pct {
	double p50, p99, p999;
};

static struct pct percentiles(uint64_t *v, size_t n)
{
	struct pct p;

	qsort(v, n, sizeof(*v), cmp_u64);
	p.p50 = (double)v[n / 2] / 1000.0;
	p.p99 = (double)v[n * 99 / 100] / 1000.0;
	p.p999 = (double)v[n * 999 / 1000] / 1000.0;
	return p;
}

/* ------------------------------------------------------------------ */
/* 1. Uncontended lock + unlock                                        */
/* ------------------------------------------------------------------ */

/* The figures of this section, each measured REPS times. */
enum { U_WRITE, U_READ, U_COPY, U_RWLOCK, U_MUTEX, U_N };
#define REPS 7

struct uncontended {
	struct shmk_buffer *b;
	pthread_rwlock_t *rw;
	pthread_mutex_t *mu;
};

/* Runs n pairs of figure f; returns ns per pair. */
static double run_pairs(const struct uncontended *u, int f, long n)
{
	uint64_t t0 = now_ns(), x = 0;
	long i;

	switch (f) {
	case U_WRITE:
		for (i = 0; i < n; i++) {
			shmk_buffer_lock(u->b, SHMK_LOCK_WRITE, -1);
			shmk_buffer_unlock(u->b);
		}
		break;
	case U_READ:
		for (i = 0; i < n; i++) {
			shmk_buffer_lock(u->b, SHMK_LOCK_READ, -1);
			shmk_buffer_unlock(u->b);
		}
		break;
	case U_COPY:
		for (i = 0; i < n; i++)
			shmk_buffer_read(u->b, 0, &x, sizeof(x), -1);
		break;
	case U_RWLOCK:
		for (i = 0; i < n; i++) {
			pthread_rwlock_wrlock(u->rw);
			pthread_rwlock_unlock(u->rw);
		}
		break;
	default:
		for (i = 0; i < n; i++) {
			pthread_mutex_lock(u->mu);
			pthread_mutex_unlock(u->mu);
		}
	}
	return (double)(now_ns() - t0) / (double)n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void bench_uncontended(void)
{
	static const char *const names[U_N] = {
		"shmk write lock",
		"shmk read lock",
		"shmk_buffer_read of 8 bytes (read lock)",
		"pthread rwlock, process-shared, wrlock",
		"pthread mutex, process-shared, robust",
	};
	const long n = quick ? 30000 : 300000;
	double ns[U_N][REPS], min[U_N], med[U_N];
	pthread_rwlockattr_t ra;
	pthread_mutexattr_t ma;
	struct uncontended u;
	int f, k, rc;

	rc = shmk_buffer_create(NULL, 64, NULL, &u.b);
	if (rc < 0)
		die("create", rc);
	u.rw = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (u.rw == MAP_FAILED)
		die("mmap", -errno);
	u.mu = (pthread_mutex_t *)((char *)u.rw + 1024);
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setpshared(&ra, PTHREAD_PROCESS_SHARED);
	pthread_rwlock_init(u.rw, &ra);
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(u.mu, &ma);

	/* Warm-up (caches, page tables, the CPU's clock), then the repeats
	 * taken in turn, so that a burst of load elsewhere hits every
	 * figure alike. */
	for (f = 0; f < U_N; f++)
		run_pairs(&u, f, n / 4);
	for (k = 0; k < REPS; k++)
		for (f = 0; f < U_N; f++)
			ns[f][k] = run_pairs(&u, f, n);
	for (f = 0; f < U_N; f++) {
		qsort(ns[f], REPS, sizeof(double), cmp_double);
		min[f] = ns[f][0];
		med[f] = ns[f][REPS / 2];
	}

	printf("1. Uncontended lock + unlock, ns per pair (%d runs of %ld "
	       "pairs after a warm-up;\n   ratios of medians)\n"
	       "   %-44s %7s %7s\n",
	       REPS, n, "", "min", "median");
	for (f = 0; f < U_N; f++) {
		printf("   %-44s %7.1f %7.1f", names[f], min[f], med[f]);
		if (f >= U_RWLOCK)
			printf("   (shmk write / this = %.2f)",
			       med[U_WRITE] / med[f]);
		printf("\n");
	}
	shmk_buffer_close(u.b);
	munmap(u.rw, 4096);
}

/* ------------------------------------------------------------------ */
/* 2, 3. Ping-pong across processes                                    */
/* ------------------------------------------------------------------ */

struct shared {
	_Atomic uint32_t ping, pong; /* bare futex words */
	_Atomic int ready;
};

static struct shared *sh;

static void busy_us(int us)
{
	uint64_t end = now_ns() + (uint64_t)us * 1000;

	while (now_ns() < end)
		;
}

/* A round trip: parent sets "ping", child waits, works for work_us,
 * sets "pong". */
enum transport { T_EVENT, T_PIPE, T_FUTEX };

static struct pct pingpong(enum transport t, int spin_us, int work_us,
			   long rounds)
{
	struct shmk_opts o = {.spin_us = spin_us};
	struct shmk_event *ping = NULL, *pong = NULL;
	uint64_t *rtt = malloc(sizeof(*rtt) * (size_t)rounds);
	int p2c[2], c2p[2], st;
	struct pct res;
	pid_t pid;
	long i;
	char c = 'x';

	if (t == T_EVENT) {
		int rc = shmk_event_create(NULL, 0, 0, &o, &ping);

		if (!rc)
			rc = shmk_event_create(NULL, 0, 0, &o, &pong);
		if (rc < 0)
			die("event", rc);
	}
	if (pipe(p2c) < 0 || pipe(c2p) < 0)
		die("pipe", -errno);
	{
		int pfd = t == T_EVENT ? shmk_event_fd(ping) : -1;
		int qfd = t == T_EVENT ? shmk_event_fd(pong) : -1;

		pid = fork();
		if (pid == 0) {
			struct shmk_event *a = NULL, *b = NULL;

			pin(1);
			if (t == T_EVENT &&
			    (shmk_event_open_fd(pfd, &o, &a) < 0 ||
			     shmk_event_open_fd(qfd, &o, &b) < 0))
				_exit(1);
			atomic_store(&sh->ready, 1);
			for (i = 0; i < rounds; i++) {
				if (t == T_EVENT) {
					if (shmk_event_wait(a, -1) < 0)
						_exit(1);
				} else if (t == T_PIPE) {
					if (read(p2c[0], &c, 1) != 1)
						_exit(1);
				} else {
					fwait(&sh->ping, (uint32_t)i);
				}
				if (work_us)
					busy_us(work_us);
				if (t == T_EVENT)
					shmk_event_set(b);
				else if (t == T_PIPE)
					(void)!write(c2p[1], &c, 1);
				else
					fwake(&sh->pong);
			}
			_exit(0);
		}
	}
	pin(0);
	while (!atomic_load(&sh->ready))
		;
	for (i = 0; i < rounds; i++) {
		uint64_t t0 = now_ns();

		if (t == T_EVENT) {
			shmk_event_set(ping);
			shmk_event_wait(pong, -1);
		} else if (t == T_PIPE) {
			(void)!write(p2c[1], &c, 1);
			(void)!read(c2p[0], &c, 1);
		} else {
			fwake(&sh->ping);
			fwait(&sh->pong, (uint32_t)i);
		}
		rtt[i] = now_ns() - t0;
	}
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		die("ping-pong peer", -EPROTO);
	res = percentiles(rtt, (size_t)rounds);
	free(rtt);
	close(p2c[0]);
	close(p2c[1]);
	close(c2p[0]);
	close(c2p[1]);
	shmk_event_close(ping);
	shmk_event_close(pong);
	atomic_store(&sh->ready, 0);
	atomic_store(&sh->ping, 0);
	atomic_store(&sh->pong, 0);
	return res;
}

static void row(const char *name, struct pct p, double ref)
{
	printf("   %-38s %8.2f %8.2f %8.2f", name, p.p50, p.p99, p.p999);
	if (ref > 0)
		printf("   %5.2f", p.p50 / ref);
	printf("\n");
}

static void bench_pingpong(void)
{
	long n = quick ? 5000 : 50000, ns = quick ? 1000 : 5000;
	struct pct ev, evs, pi, fu;

	pi = pingpong(T_PIPE, 0, 0, ns);
	fu = pingpong(T_FUTEX, 0, 0, ns);
	ev = pingpong(T_EVENT, 0, 0, n);
	evs = pingpong(T_EVENT, -1, 0, ns);
	printf("\n2. Event ping-pong between two processes on CPUs 0 and 1:\n"
	       "   round trip in us (one way is half)        p50      p99"
	       "    p99.9   p50 / futex\n");
	row("shmk_event, default spin (50 us)", ev, fu.p50);
	row("shmk_event, no spinning", evs, fu.p50);
	row("bare futex wait/wake (reference)", fu, fu.p50);
	row("pipe, 1 byte each way (reference)", pi, fu.p50);
}

static void bench_spin_sweep(void)
{
	static const int spins[] = {-1, 10, 50, 200};
	static const int works[] = {0, 20, 80};
	long n = quick ? 500 : 3000;
	size_t s, w;

	printf("\n3. Round trip p50 in us when the peer works before it "
	       "answers,\n   by spin budget (busy CPU time is the price of "
	       "spinning)\n   %-12s",
	       "peer works");
	for (s = 0; s < sizeof(spins) / sizeof(spins[0]); s++) {
		char h[32];

		if (spins[s] < 0)
			snprintf(h, sizeof(h), "no spin");
		else
			snprintf(h, sizeof(h), "spin %d", spins[s]);
		printf(" %10s", h);
	}
	printf("\n");
	for (w = 0; w < sizeof(works) / sizeof(works[0]); w++) {
		printf("   %9d us", works[w]);
		for (s = 0; s < sizeof(spins) / sizeof(spins[0]); s++)
			printf(" %10.2f",
			       pingpong(T_EVENT, spins[s], works[w], n).p50);
		printf("\n");
	}
}

/* ------------------------------------------------------------------ */
/* 4. T_live                                                           */
/* ------------------------------------------------------------------ */

static void bench_tlive(void)
{
	const int rounds = quick ? 5 : 20;
	uint64_t before[20], asleep[20];
	struct shmk_buffer *b;
	char name[64];
	int i, rc;

	snprintf(name, sizeof(name), "bench-sync.%d", (int)getpid());
	rc = shmk_buffer_create(name, 64, NULL, &b);
	if (rc < 0)
		die("create", rc);
	for (i = 0; i < rounds; i++) {
		int sleeping = i & 1, fds[2];
		uint64_t t0;
		pid_t pid;
		char c;

		if (pipe(fds) < 0)
			die("pipe", -errno);
		pid = fork();
		if (pid == 0) {
			struct shmk_buffer *h;

			if (shmk_buffer_open(name, NULL, &h) < 0)
				_exit(1);
			rc = shmk_buffer_lock(h, SHMK_LOCK_WRITE, -1);
			(void)!write(fds[1], "l", 1);
			pause();
			_exit(0);
		}
		(void)!read(fds[0], &c, 1);
		if (sleeping) {
			/* Be asleep in the lock when the holder dies: kill
			 * it from another process after 38 ms. */
			pid_t killer = fork();

			if (killer == 0) {
				usleep(38000);
				kill(pid, SIGKILL);
				_exit(0);
			}
			t0 = now_ns();
			rc = shmk_buffer_lock(b, SHMK_LOCK_WRITE, 5000);
			asleep[i / 2] = now_ns() - t0 - 38000000;
			waitpid(killer, NULL, 0);
		} else {
			kill(pid, SIGKILL);
			t0 = now_ns();
			rc = shmk_buffer_lock(b, SHMK_LOCK_WRITE, 5000);
			before[i / 2] = now_ns() - t0;
		}
		if (rc != -EOWNERDEAD)
			die("lock after the holder died", rc);
		shmk_buffer_unlock(b);
		waitpid(pid, NULL, 0);
		close(fds[0]);
		close(fds[1]);
	}
	qsort(before, (size_t)rounds / 2, sizeof(uint64_t), cmp_u64);
	qsort(asleep, (size_t)rounds / 2, sizeof(uint64_t), cmp_u64);
	printf("\n4. T_live: from SIGKILL of a write-lock holder to the next "
	       "lock (-EOWNERDEAD), ms\n");
	printf("   %-44s median %6.2f  max %6.2f\n",
	       "killed before the locker came", before[rounds / 4] / 1e6,
	       before[rounds / 2 - 1] / 1e6);
	printf("   %-44s median %6.2f  max %6.2f\n",
	       "killed while the locker slept (about)",
	       asleep[rounds / 4] / 1e6, asleep[rounds / 2 - 1] / 1e6);
	shmk_buffer_close(b);
	shmk_unlink(name);
}

int main(int argc, char **argv)
{
	quick = argc > 1 && !strcmp(argv[1], "--quick");
	sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap", -errno);
	printf("bench_sync: shmk %s, %ld CPUs%s\n\n", SHMK_VERSION_STRING,
	       sysconf(_SC_NPROCESSORS_ONLN), quick ? ", quick run" : "");
	bench_uncontended();
	bench_pingpong();
	bench_spin_sweep();
	bench_tlive();
	return 0;
}
