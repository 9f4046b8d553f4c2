/* SPDX-License-Identifier: MIT */
/*
 * bench_ring - shmk_ring between two processes pinned to CPUs 0 and 1,
 * beside references measured in the same run:
 *
 *   1. throughput by message size (64 B .. 1 MiB, 20 nodes): shmk copy
 *      mode (write + read), shmk with a zero-copy reader (acquire, read
 *      every byte in place, release); the cross-core copy (the same hand
 *      off through 20 slots with bare flags: what the memory system
 *      allows), a pipe (default and 1 MiB buffer) and a UNIX stream
 *      socket; every transport moves every byte once and the reader
 *      reads every byte;
 *   2. 64-byte messages per second, 1 writer + 1 reader and 2 + 2;
 *   3. 64-byte round trip (p50, p99) through two rings, with the default
 *      spin budget and with pure sleeping, beside a pipe.
 *
 * Usage: bench_ring [--quick]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/futex.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmk.h>

#include "bench.h"

static int quick;
static char g_name[64];

static void die(const char *what, long rc)
{
	fprintf(stderr, "bench_ring: %s: %s\n", what, shmk_strerror((int)rc));
	exit(1);
}

/* Reads every byte (8 at a time) so a zero-copy reader pays for it. */
static uint64_t touch(const void *p, size_t n)
{
	const uint64_t *w = p;
	uint64_t s = 0;
	size_t i;

	for (i = 0; i < n / 8; i++)
		s += w[i];
	for (i = n & ~(size_t)7; i < n; i++)
		s += ((const unsigned char *)p)[i];
	return s;
}

static long count_for(size_t size)
{
	/* About 2 GB (quick: 0.4 GB) per measurement, at least 20 000
	 * messages. */
	double bytes = quick ? 4e8 : 2e9;
	long n = (long)(bytes / (double)size);

	return n < 20000 ? 20000 : n;
}

/* ------------------------------------------------------------------ */
/* Transports: each measured as writer (CPU 0) -> reader (CPU 1)        */
/* ------------------------------------------------------------------ */

enum tr { T_RING, T_RING_ZC, T_IDEAL, T_PIPE, T_PIPE_BIG, T_UNIX };

struct slots { /* the ideal hand-off: a flag per slot, nothing else */
	_Atomic uint64_t seq[20][8];
};

static struct slots *g_slots;
static char *g_slot_data;

/* The reader's side; returns the sum of what it read. */
static uint64_t reader(enum tr t, size_t size, long n, int fd)
{
	char *buf = malloc(size);
	struct shmk_ring *r = NULL;
	uint64_t sum = 0;
	long i;

	if (t == T_RING || t == T_RING_ZC)
		if (shmk_ring_open(g_name, NULL, &r) < 0)
			_exit(1);
	for (i = 0; i < n; i++) {
		if (t == T_RING) {
			if (shmk_ring_read(r, buf, size, -1) != (ssize_t)size)
				_exit(1);
			sum += touch(buf, 64 < size ? 64 : size);
		} else if (t == T_RING_ZC) {
			struct shmk_msg m;

			if (shmk_ring_acquire(r, &m, -1) < 0)
				_exit(1);
			sum += touch(m.data, m.len);
			shmk_ring_release(r, &m);
		} else if (t == T_IDEAL) {
			int k = (int)(i % 20);

			while (atomic_load_explicit(&g_slots->seq[k][0],
						    memory_order_acquire) !=
			       (uint64_t)i + 1)
				;
			memcpy(buf, g_slot_data + (size_t)k * size, size);
			atomic_store_explicit(&g_slots->seq[k][0],
					      (uint64_t)i + 20,
					      memory_order_release);
			sum += touch(buf, 64 < size ? 64 : size);
		} else {
			if (read_full(fd, buf, size) < 0)
				_exit(1);
			sum += touch(buf, 64 < size ? 64 : size);
		}
	}
	shmk_ring_close(r);
	free(buf);
	return sum;
}

/* Runs transport t with messages of size bytes; returns GB/s. */
static double run(enum tr t, size_t size, long n)
{
	char *src = malloc(size);
	struct shmk_ring *r = NULL;
	int fds[2] = {-1, -1}, st;
	double t0, s;
	pid_t pid;
	long i;

	memset(src, 0x5a, size);
	if (t == T_RING || t == T_RING_ZC) {
		int rc = shmk_ring_create(g_name, 20, size, NULL, &r);

		if (rc < 0)
			die("ring", rc);
	} else if (t == T_IDEAL) {
		for (i = 0; i < 20; i++)
			atomic_store(&g_slots->seq[i][0], (uint64_t)i);
		g_slot_data = mmap(NULL, 20 * size, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	} else if (t == T_UNIX) {
		socketpair(AF_UNIX, SOCK_STREAM, 0, fds);
	} else {
		if (pipe(fds) < 0)
			die("pipe", -errno);
		if (t == T_PIPE_BIG)
			fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
	}
	pid = fork();
	if (pid == 0) {
		pin(1);
		reader(t, size, n, fds[0]);
		_exit(0);
	}
	pin(0);
	t0 = (now_ns() / 1e9);
	for (i = 0; i < n; i++) {
		if (t == T_RING || t == T_RING_ZC) {
			if (shmk_ring_write(r, src, size, -1) < 0)
				die("write", -EIO);
		} else if (t == T_IDEAL) {
			int k = (int)(i % 20);

			while (atomic_load_explicit(&g_slots->seq[k][0],
						    memory_order_acquire) !=
			       (uint64_t)i)
				;
			memcpy(g_slot_data + (size_t)k * size, src, size);
			atomic_store_explicit(&g_slots->seq[k][0],
					      (uint64_t)i + 1,
					      memory_order_release);
		} else if (write_full(fds[1], src, size) < 0) {
			die("write", -errno);
		}
	}
	waitpid(pid, &st, 0);
	s = (now_ns() / 1e9) - t0;
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		die("reader", -EPROTO);
	if (r) {
		shmk_ring_close(r);
		shmk_unlink(g_name);
	}
	if (t == T_IDEAL)
		munmap(g_slot_data, 20 * size);
	if (fds[0] >= 0) {
		close(fds[0]);
		close(fds[1]);
	}
	free(src);
	return (double)n * (double)size / s / 1e9;
}

static void bench_throughput(void)
{
	static const size_t sizes[] = {64, 1024, 65536, 262144, 1048576};
	static const char *const label[] = {"64 B", "1 KiB", "64 KiB",
					    "256 KiB", "1 MiB"};
	size_t i;

	printf("1. Throughput, GB/s, 1 writer (CPU 0) -> 1 reader (CPU 1), "
	       "20 nodes\n");
	printf("   %-8s %9s %9s %9s %9s %9s %9s  %9s %9s %9s\n", "size", "shmk",
	       "zerocopy", "x-core", "pipe", "pipe 1M", "unix", "shmk/xc",
	       "shmk/pipe", "shmk/unix");
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		long n = count_for(sizes[i]);
		double ring = run(T_RING, sizes[i], n);
		double zc = run(T_RING_ZC, sizes[i], n);
		double ideal = run(T_IDEAL, sizes[i], n);
		long np = n / (sizes[i] >= 65536 ? 4 : 10);
		double pipe = run(T_PIPE, sizes[i], np);
		double pipe_big = run(T_PIPE_BIG, sizes[i], np);
		double unix_ = run(T_UNIX, sizes[i], np);

		printf("   %-8s %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f  %9.2f "
		       "%9.1f %9.1f\n",
		       label[i], ring, zc, ideal, pipe, pipe_big, unix_,
		       ring / ideal, ring / pipe, ring / unix_);
		fflush(stdout);
	}
}

/* ------------------------------------------------------------------ */
/* 2. Small messages per second, 1:1 and 2:2                            */
/* ------------------------------------------------------------------ */

static double msgs_per_s(int writers, int readers, long per_writer)
{
	long per_reader = per_writer * writers / readers;
	struct shmk_ring *r;
	pid_t pid[8];
	int i, st, np = 0;
	double t0, s;

	if (shmk_ring_create(g_name, 256, 64, NULL, &r) < 0)
		die("ring", -EIO);
	t0 = (now_ns() / 1e9);
	for (i = 0; i < writers + readers; i++) {
		pid[np] = fork();
		if (pid[np] == 0) {
			struct shmk_ring *q;
			char buf[64] = {0};
			long k;

			pin(i % 2 == 0 ? 0 : 1);
			if (shmk_ring_open(g_name, NULL, &q) < 0)
				_exit(1);
			if (i < writers) {
				for (k = 0; k < per_writer; k++)
					if (shmk_ring_write(q, buf, 64, -1))
						_exit(1);
			} else {
				for (k = 0; k < per_reader; k++)
					if (shmk_ring_read(q, buf, 64, -1) !=
					    64)
						_exit(1);
			}
			shmk_ring_close(q);
			_exit(0);
		}
		np++;
	}
	for (i = 0; i < np; i++) {
		waitpid(pid[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			die("worker", -EPROTO);
	}
	s = (now_ns() / 1e9) - t0;
	shmk_ring_close(r);
	shmk_unlink(g_name);
	return (double)per_writer * writers / s / 1e6;
}

/* ------------------------------------------------------------------ */
/* 3. Round trip                                                        */
/* ------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* A bare futex ping-pong: the floor for sleeping processes. */
static _Atomic uint32_t *g_futex;

/* use_pipe: 0 shmk rings, 1 pipes, 2 bare futexes. */
static void rtt(int spin_us, long n, int use_pipe, double *p50, double *p99)
{
	struct shmk_opts o = {.spin_us = spin_us};
	double *v = malloc(sizeof(*v) * (size_t)n);
	struct shmk_ring *req = NULL, *rep = NULL;
	char name2[80], buf[64] = {0};
	int a[2], b[2], st;
	pid_t pid;
	long i;

	snprintf(name2, sizeof(name2), "%s.reply", g_name);
	atomic_store(&g_futex[0], 0);
	atomic_store(&g_futex[16], 0);
	if (use_pipe) {
		if (pipe(a) < 0 || pipe(b) < 0)
			die("pipe", -errno);
	} else if (shmk_ring_create(g_name, 20, 64, &o, &req) < 0 ||
		   shmk_ring_create(name2, 20, 64, &o, &rep) < 0) {
		die("ring", -EIO);
	}
	pid = fork();
	if (pid == 0) {
		struct shmk_ring *q1 = NULL, *q2 = NULL;

		pin(1);
		if (!use_pipe && (shmk_ring_open(g_name, &o, &q1) < 0 ||
				  shmk_ring_open(name2, &o, &q2) < 0))
			_exit(1);
		for (i = 0; i < n; i++) {
			if (use_pipe == 2) {
				fwait(&g_futex[0], (uint32_t)i);
				fwake(&g_futex[16]);
			} else if (use_pipe) {
				if (read_full(a[0], buf, 64) ||
				    write_full(b[1], buf, 64))
					_exit(1);
			} else if (shmk_ring_read(q1, buf, 64, -1) != 64 ||
				   shmk_ring_write(q2, buf, 64, -1)) {
				_exit(1);
			}
		}
		_exit(0);
	}
	pin(0);
	for (i = 0; i < n; i++) {
		double t0 = (now_ns() / 1e9);

		if (use_pipe == 2) {
			fwake(&g_futex[0]);
			fwait(&g_futex[16], (uint32_t)i);
		} else if (use_pipe) {
			if (write_full(a[1], buf, 64) ||
			    read_full(b[0], buf, 64))
				die("pipe", -EIO);
		} else if (shmk_ring_write(req, buf, 64, -1) ||
			   shmk_ring_read(rep, buf, 64, -1) != 64) {
			die("ring", -EIO);
		}
		v[i] = ((now_ns() / 1e9) - t0) * 1e6;
	}
	waitpid(pid, &st, 0);
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	*p50 = v[n / 2];
	*p99 = v[n * 99 / 100];
	free(v);
	if (use_pipe) {
		close(a[0]);
		close(a[1]);
		close(b[0]);
		close(b[1]);
	} else {
		shmk_ring_close(req);
		shmk_ring_close(rep);
		shmk_unlink(g_name);
		shmk_unlink(name2);
	}
}

int main(int argc, char **argv)
{
	long n = 0;
	double a, b, c, d, e, f, g, h;

	quick = argc > 1 && !strcmp(argv[1], "--quick");
	snprintf(g_name, sizeof(g_name), "bench-ring.%d", (int)getpid());
	g_slots = mmap(NULL, sizeof(*g_slots), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	g_futex = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	printf("bench_ring: shmk %s, %ld CPUs%s\n\n", SHMK_VERSION_STRING,
	       sysconf(_SC_NPROCESSORS_ONLN), quick ? ", quick run" : "");
	bench_throughput();

	n = quick ? 2000000 : 10000000;
	a = msgs_per_s(1, 1, n);
	b = msgs_per_s(2, 2, n / 2);
	printf("\n2. 64-byte messages, M msgs/s (256 nodes): 1 writer + 1 "
	       "reader %.2f; 2 + 2 %.2f%s\n",
	       a, b,
	       sysconf(_SC_NPROCESSORS_ONLN) < 4 ? " (4 processes, 2 CPUs)"
						 : "");

	n = quick ? 20000 : 100000;
	rtt(0, n, 0, &a, &b);
	rtt(-1, n / 20, 0, &c, &d);
	rtt(0, n / 20, 1, &e, &f);
	rtt(0, n / 20, 2, &g, &h);
	printf("\n3. 64-byte round trip, us        p50      p99   p50 / "
	       "futex\n");
	printf("   shmk, default spin       %8.2f %8.2f   %5.3f\n", a, b,
	       a / g);
	printf("   shmk, sleeping only      %8.2f %8.2f   %5.2f\n", c, d,
	       c / g);
	printf("   pipe                     %8.2f %8.2f   %5.2f\n", e, f,
	       e / g);
	printf("   bare futex wait/wake     %8.2f %8.2f   %5.2f\n", g, h, 1.0);
	return 0;
}
