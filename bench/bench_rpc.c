/* SPDX-License-Identifier: MIT */
/*
 * bench_rpc - shmk_rpc calls beside a UNIX-socket request/response of the
 * same sizes, in the same run:
 *
 *   for requests of 64 B, 1 KiB, 64 KiB and 512 KiB with equal-size
 *   replies: calls per second with one call at a time (and the round
 *   trip's p50 / p99), with 16 calls in flight, and with 2 client
 *   processes of 16 calls in flight each.  The server runs in its own
 *   process (CPU 1), clients on CPU 0.  Every reply is checked against
 *   its request.
 *
 * The socket reference is a SOCK_SEQPACKET socketpair, an echo of the
 * same sizes: the client sends the request as one message, the server
 * receives it and sends it back as one message; with several calls in
 * flight the client sends them all, then receives the replies.  Both
 * ends' buffers are 4 x size + 64 KiB (forced past net.core.wmem_max if
 * we may); a size that still does not fit in one message says EMSGSIZE on
 * its row, and with several in flight the socket keeps at most what its
 * send buffer holds.
 *
 * Then 1 KiB again with spinning off (spin_us -1, on both ends), with two
 * CPU-bound hog processes (one per CPU) running through the rpc row and
 * its socket reference alike, and one call at a time from one client while
 * 1000 other client processes are connected and idle (beside the same row
 * without them: the ratio is what the idle clients cost).
 *
 * Last, the floor of every size: a round trip between CPU 0 and CPU 1
 * through shared memory that makes a call's four copies (the request into
 * shared memory and out of it, the reply the same) and spins on a flag
 * instead of waiting.  No transport that copies can beat it; the socket's
 * time over it is the most any such transport can gain on the socket.
 *
 * Usage: bench_rpc [--quick]
 *        bench_rpc --one SIZE DEPTH CLIENTS [nospin|hogs|idle=N|rpconly]
 *                              (one row; rpconly: without the socket,
 *                              for profiling)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "bench.h"
#include "shmk.h"

#define DEPTH 16

static int quick;
static char g_name[64];
static int g_spin_us;  /* 0: the default; -1: spinning off */
static int g_hogs;     /* CPU-bound processes during a row */
static int g_idle;     /* idle client processes connected during a row */
static int g_rpc_only; /* --one ... rpconly: no socket reference */

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_rpc: %s: %s\n", what, shmk_strerror(rc));
	exit(1);
}

/* The reply is the request itself: the server copies it straight from
 * the request's node (or reassembly buffer) into reply nodes. */
static int echo(void *arg, struct shmk_rpc_req *rq)
{
	(void)arg;
	rq->reply = rq->data;
	rq->reply_len = rq->len;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void fill(unsigned char *p, size_t n, uint64_t seq)
{
	size_t i;

	memcpy(p, &seq, n < 8 ? n : 8);
	for (i = 8; i < n; i += 512)
		p[i] = (unsigned char)(seq + i);
}

static void verify(const unsigned char *p, size_t n, uint64_t seq)
{
	uint64_t got = 0;
	size_t i;

	memcpy(&got, p, n < 8 ? n : 8);
	if (n >= 8 && got != seq)
		goto bad;
	for (i = 8; i < n; i += 512)
		if (p[i] != (unsigned char)(seq + i))
			goto bad;
	return;
bad:
	fprintf(stderr, "bench_rpc: reply %llu corrupt\n",
		(unsigned long long)seq);
	exit(1);
}

/* How many calls for a size: about 0.5 s (quick 0.15 s) of work. */
static long calls_for(size_t size)
{
	double bytes = quick ? 3e8 : 1e9;
	long n = (long)(bytes / (double)(size + 2048));

	if (n > (quick ? 60000 : 200000))
		n = quick ? 60000 : 200000;
	return n < 200 ? 200 : n;
}

/* ------------------------------------------------------------------ */
/* shmk_rpc                                                             */
/* ------------------------------------------------------------------ */

/* One client: n calls, depth at a time.  Writes the results to pipe fd:
 * elapsed ns, then (depth 1) the sorted round trips' p50 and p99. */
static void rpc_client(size_t size, long n, int depth, int fd)
{
	struct shmk_rpc_opts o = {.wait_ms = 5000, .spin_us = g_spin_us};
	unsigned char *req = malloc(size * DEPTH), *rep = malloc(size * DEPTH);
	uint64_t *rtt = malloc(sizeof(*rtt) * (size_t)n), ids[DEPTH], t0;
	struct shmk_rpc_result res;
	struct shmk_rpc *c;
	long sent = 0, done = 0;
	uint64_t out[3] = {0};
	int rc;

	pin(0);
	if (!req || !rep || !rtt)
		die("malloc", -ENOMEM);
	rc = shmk_rpc_connect(g_name, &o, &c);
	if (rc < 0)
		die("connect", rc);
	t0 = now_ns();
	while (done < n) {
		while (sent < n && sent - done < depth) {
			int k = (int)(sent % DEPTH);

			fill(req + (size_t)k * size, size, (uint64_t)sent);
			rtt[sent] = now_ns();
			rc = shmk_rpc_submit(c, 0, req + (size_t)k * size, size,
					     rep + (size_t)k * size, size,
					     10000, &ids[k]);
			if (rc < 0)
				die("submit", rc);
			sent++;
		}
		{
			int k = (int)(done % DEPTH);

			rc = shmk_rpc_wait(c, ids[k], &res, -1);
			if (rc < 0 || res.status < 0)
				die("call", rc < 0 ? rc : res.status);
			rtt[done] = now_ns() - rtt[done];
			verify(rep + (size_t)k * size, size, (uint64_t)done);
			done++;
		}
	}
	out[0] = now_ns() - t0;
	if (depth == 1) {
		qsort(rtt, (size_t)n, sizeof(*rtt), cmp_u64);
		out[1] = rtt[n / 2];
		out[2] = rtt[n * 99 / 100];
	}
	if (write(fd, out, sizeof(out)) != (ssize_t)sizeof(out))
		exit(1);
	shmk_rpc_close(c);
	free(req);
	free(rep);
	free(rtt);
}

struct result {
	double calls_s; /* all clients together */
	double p50_us, p99_us;
	/* The socket's: its send buffer, the calls it kept in flight, and
	 * whether a message of the size did not fit (EMSGSIZE). */
	int sndbuf, depth, emsgsize;
};

/* Runs nclients client processes against a server process. */
static struct result run_rpc(size_t size, long n, int depth, int nclients)
{
	struct shmk_rpc_opts so = {.handler = echo,
				   .workers = 1,
				   .node_size = g_idle ? 4096 : 64 << 10,
				   .nodes = 16,
				   .spin_us = g_spin_us,
				   .max_clients = g_idle + 16,
				   .max_per_pid = 4};
	struct result r = {0};
	pid_t srv, cl[2], *idle = NULL;
	int p[2], i, st;
	uint64_t out[3], worst = 0;

	if (pipe(p) < 0)
		exit(1);
	srv = fork();
	if (srv == 0) {
		struct shmk_rpc *s;
		int rc;

		pin(1);
		rc = shmk_rpc_serve(g_name, &so, &s);
		if (rc < 0)
			die("serve", rc);
		if (write(p[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	if (read(p[0], out, 1) != 1)
		exit(1);
	if (g_idle) {
		/* Idle clients: connected, then asleep until killed. */
		idle = calloc((size_t)g_idle, sizeof(*idle));
		if (!idle)
			exit(1);
		for (i = 0; i < g_idle; i++) {
			idle[i] = fork();
			if (idle[i] == 0) {
				struct shmk_rpc_opts o = {.wait_ms = 60000};
				struct shmk_rpc *c;
				int rc = shmk_rpc_connect(g_name, &o, &c);

				if (rc < 0)
					die("idle connect", rc);
				if (write(p[1], "i", 1) != 1)
					_exit(1);
				for (;;)
					pause();
			}
		}
		for (i = 0; i < g_idle; i++)
			if (read(p[0], out, 1) != 1)
				exit(1);
	}
	for (i = 0; i < nclients; i++) {
		cl[i] = fork();
		if (cl[i] == 0) {
			rpc_client(size, n, depth, p[1]);
			_exit(0);
		}
	}
	for (i = 0; i < nclients; i++) {
		if (read(p[0], out, sizeof(out)) != (ssize_t)sizeof(out))
			exit(1);
		if (out[0] > worst)
			worst = out[0];
		r.p50_us = (double)out[1] / 1e3;
		r.p99_us = (double)out[2] / 1e3;
	}
	for (i = 0; i < nclients; i++) {
		waitpid(cl[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			exit(1);
	}
	for (i = 0; i < g_idle; i++)
		kill(idle[i], SIGKILL);
	for (i = 0; i < g_idle; i++)
		waitpid(idle[i], &st, 0);
	free(idle);
	kill(srv, SIGKILL);
	waitpid(srv, &st, 0);
	shmk_unlink(g_name);
	close(p[0]);
	close(p[1]);
	r.calls_s = (double)n * nclients / ((double)worst / 1e9);
	return r;
}

/* ------------------------------------------------------------------ */
/* The UNIX-socket reference                                            */
/* ------------------------------------------------------------------ */

/* What a message costs a socket's send buffer at most (the data, rounded
 * up to pages, and the buffer's head): sock_depth()'s measure. */
#define SOCK_MSG_COST(size) ((((size) + 4095) & ~(size_t)4095) + 4096)

/*
 * Sets both ends' buffers to 4 x size + 64 KiB (past net.core.wmem_max
 * and rmem_max, where the plain options are capped, with the FORCE
 * options if we may: root).  Returns the smaller send buffer the kernel
 * gave (it doubles what is asked).
 */
static int sock_bufs(int sv[2], size_t size)
{
	size_t w = 4 * size + (64u << 10);
	int want = w > INT_MAX / 2 ? INT_MAX / 2 : (int)w, least = INT_MAX;
	int i;

	for (i = 0; i < 2; i++) {
		int got = 0;
		socklen_t len = sizeof(got);

		setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
		setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
		if (getsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &got, &len) < 0 ||
		    got / 2 < want) {
			setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &want,
				   sizeof(want));
		}
		len = sizeof(got);
		if (getsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &got, &len) < 0 ||
		    got / 2 < want)
			setsockopt(sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &want,
				   sizeof(want));
		len = sizeof(got);
		if (getsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &got, &len) < 0)
			got = 0;
		if (got < least)
			least = got;
	}
	return least;
}

/* With several calls in flight a socket's sends could fill both
 * directions' buffers (client blocked sending, server blocked sending
 * the reply): the reference keeps its depth to what a send buffer of
 * sndbuf bytes holds. */
static int sock_depth(size_t size, int want, int sndbuf)
{
	int d = (int)((size_t)sndbuf / SOCK_MSG_COST(size));

	if (d < 1)
		d = 1;
	return d < want ? d : want;
}

/* The server: a message in, the same message out, until the client
 * closes.  Exits 3 if a reply does not fit in one message. */
static void sock_server(int fd, size_t size)
{
	unsigned char *buf = malloc(size);
	ssize_t n;

	pin(1);
	if (!buf)
		_exit(4);
	for (;;) {
		while ((n = recv(fd, buf, size, MSG_TRUNC)) < 0 &&
		       errno == EINTR)
			;
		if (n == 0)
			break;
		if (n != (ssize_t)size)
			_exit(4);
		while ((n = send(fd, buf, size, MSG_NOSIGNAL)) < 0 &&
		       errno == EINTR)
			;
		if (n != (ssize_t)size)
			_exit(n < 0 && errno == EMSGSIZE ? 3 : 4);
	}
	free(buf);
}

/* The reference: a SOCK_SEQPACKET socketpair, a message per request and
 * per reply.  A size that does not fit in one message sets r.emsgsize. */
static struct result run_sock(size_t size, long n, int depth)
{
	unsigned char *req = malloc(size * DEPTH), *rep = malloc(size);
	uint64_t *rtt = malloc(sizeof(*rtt) * (size_t)n), t0;
	struct result r = {0};
	long sent = 0, done = 0;
	int sv[2], st;
	ssize_t got;
	pid_t pid;

	if (!req || !rep || !rtt ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
		exit(1);
	r.sndbuf = sock_bufs(sv, size);
	depth = r.depth = sock_depth(size, depth, r.sndbuf);
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		sock_server(sv[1], size);
		_exit(0);
	}
	close(sv[1]);
	pin(0);
	t0 = now_ns();
	while (done < n) {
		while (sent < n && sent - done < depth) {
			unsigned char *q = req + (size_t)(sent % DEPTH) * size;

			fill(q, size, (uint64_t)sent);
			rtt[sent] = now_ns();
			if (send(sv[0], q, size, MSG_NOSIGNAL) !=
			    (ssize_t)size) {
				if (errno == EPIPE) /* the server ended */
					goto out;
				if (errno != EMSGSIZE)
					exit(1);
				r.emsgsize = 1;
				goto out;
			}
			sent++;
		}
		got = recv(sv[0], rep, size, MSG_TRUNC);
		if (got == 0) /* the server ended: its reply did not fit? */
			goto out;
		if (got != (ssize_t)size)
			exit(1);
		rtt[done] = now_ns() - rtt[done];
		verify(rep, size, (uint64_t)done);
		done++;
	}
	r.calls_s = (double)n / ((double)(now_ns() - t0) / 1e9);
	if (depth == 1) {
		qsort(rtt, (size_t)n, sizeof(*rtt), cmp_u64);
		r.p50_us = (double)rtt[n / 2] / 1e3;
		r.p99_us = (double)rtt[n * 99 / 100] / 1e3;
	}
out:
	close(sv[0]);
	waitpid(pid, &st, 0);
	if (done < n && !r.emsgsize) {
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 3)
			exit(1);
		r.emsgsize = 1;
	}
	free(req);
	free(rep);
	free(rtt);
	return r;
}

/* CPU-bound processes, one per CPU in turn, until stop_hogs(). */
static pid_t g_hog[4];

static void start_hogs(void)
{
	int i;

	for (i = 0; i < g_hogs && i < 4; i++) {
		g_hog[i] = fork();
		if (g_hog[i] == 0) {
			volatile uint64_t x = 0;

			pin(i % 2);
			for (;;)
				x++;
		}
	}
}

static void stop_hogs(void)
{
	int i, st;

	for (i = 0; i < g_hogs && i < 4; i++) {
		kill(g_hog[i], SIGKILL);
		waitpid(g_hog[i], &st, 0);
	}
}

/* The floor: the mean round trip, in microseconds, of size bytes through
 * shared memory between CPU 0 and CPU 1 with a call's four copies. */
static double copy_floor_us(size_t size, long n)
{
	char *sh = mmap(NULL, 2 * size + 64, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char *own = malloc(size), *back = malloc(size);
	_Atomic uint64_t *flag;
	uint64_t t0, t1;
	pid_t child;
	long k;
	int st;

	if (sh == MAP_FAILED || !own || !back)
		exit(1);
	flag = (_Atomic uint64_t *)(void *)(sh + 2 * size);
	atomic_store(flag, 0);
	memset(own, 1, size);
	memset(back, 0, size);
	child = fork();
	if (child == 0) {
		/* The server: the request out of shared memory, the reply
		 * into it. */
		pin(1);
		for (k = 0; k < n; k++) {
			while (atomic_load_explicit(flag,
						    memory_order_acquire) !=
			       (uint64_t)(2 * k + 1))
				;
			memcpy(back, sh, size);
			memcpy(sh + size, back, size);
			atomic_store_explicit(flag, (uint64_t)(2 * k + 2),
					      memory_order_release);
		}
		_exit(0);
	}
	pin(0);
	t0 = now_ns();
	for (k = 0; k < n; k++) {
		memcpy(sh, own, size);
		atomic_store_explicit(flag, (uint64_t)(2 * k + 1),
				      memory_order_release);
		while (atomic_load_explicit(flag, memory_order_acquire) !=
		       (uint64_t)(2 * k + 2))
			;
		memcpy(back, sh + size, size);
	}
	t1 = now_ns();
	waitpid(child, &st, 0);
	munmap(sh, 2 * size + 64);
	free(own);
	free(back);
	return (double)(t1 - t0) / 1e3 / (double)n;
}

/* One row: shmk's result; the socket's in *sock if asked. */
static struct result row(const char *label, size_t size, long n, int depth,
			 int clients, struct result *sock)
{
	struct result a, b = {0};
	char sz[24];

	start_hogs();
	a = run_rpc(size, n, depth, clients);
	if (!g_rpc_only)
		b = run_sock(size, n, depth);
	stop_hogs();

	if (size >= 1024)
		snprintf(sz, sizeof(sz), "%zu KiB", size >> 10);
	else
		snprintf(sz, sizeof(sz), "%zu B", size);
	if (b.emsgsize) {
		printf("  %-8s %-20s %12.0f %12s %7s", sz, label, a.calls_s,
		       "EMSGSIZE", "-");
		if (depth == 1)
			printf("   %8.1f %8.1f   %8s %8s", a.p50_us, a.p99_us,
			       "-", "-");
		printf("   (unix: a %zu-byte message does not fit its send "
		       "buffer of %d bytes)\n",
		       size, b.sndbuf);
	} else {
		printf("  %-8s %-20s %12.0f %12.0f %7.2f", sz, label, a.calls_s,
		       b.calls_s, a.calls_s / b.calls_s);
		if (depth == 1)
			printf("   %8.1f %8.1f   %8.1f %8.1f", a.p50_us,
			       a.p99_us, b.p50_us, b.p99_us);
		printf("\n");
	}
	fflush(stdout);
	if (sock)
		*sock = b;
	return a;
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {64, 1024, 64 << 10, 512 << 10};
	enum { NSIZES = sizeof(sizes) / sizeof(sizes[0]) };
	struct result one[NSIZES], one_sock[NSIZES], flight_sock[NSIZES];
	size_t i;

	quick = argc > 1 && !strcmp(argv[1], "--quick");
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "--one")) {
		size_t size = (size_t)atol(argv[2]);
		int depth = atoi(argv[3]), clients = atoi(argv[4]);

		if (argc == 6 && !strcmp(argv[5], "nospin"))
			g_spin_us = -1;
		else if (argc == 6 && !strcmp(argv[5], "hogs"))
			g_hogs = 2;
		else if (argc == 6 && !strncmp(argv[5], "idle=", 5))
			g_idle = atoi(argv[5] + 5);
		else if (argc == 6 && !strcmp(argv[5], "rpconly"))
			g_rpc_only = 1;
		else if (argc == 6)
			depth = -1;

		snprintf(g_name, sizeof(g_name), "bench_rpc.%d", (int)getpid());
		if (size < 1 || depth < 1 || depth > DEPTH || clients < 1 ||
		    clients > 2) {
			fprintf(stderr, "bench_rpc: bad --one arguments\n");
			return 2;
		}
		row("", size, calls_for(size), depth, clients, NULL);
		return 0;
	}
	snprintf(g_name, sizeof(g_name), "bench_rpc.%d", (int)getpid());
	printf("bench_rpc: shmk %s, %ld CPUs%s; server on CPU 1, clients "
	       "on CPU 0\n\n",
	       SHMK_VERSION_STRING, sysconf(_SC_NPROCESSORS_ONLN),
	       quick ? ", quick run" : "");
	printf("  request  mode                  shmk calls/s  unix calls/s"
	       "   ratio   shmk p50      p99   unix p50      p99 (us)\n");
	for (i = 0; i < NSIZES; i++) {
		long n = calls_for(sizes[i]);

		one[i] = row("1 call at a time", sizes[i], n / 4, 1, 1,
			     &one_sock[i]);
		row("16 in flight", sizes[i], n, DEPTH, 1, &flight_sock[i]);
		row("2 clients x 16", sizes[i], n / 2, DEPTH, 2, NULL);
	}
	{
		long n = calls_for(1024);

		g_spin_us = -1;
		row("1 at a time, no spin", 1024, n / 8, 1, 1, NULL);
		row("16 in flight, no spin", 1024, n / 2, DEPTH, 1, NULL);
		g_spin_us = 0;
		g_hogs = 2;
		row("1 at a time, 2 hogs", 1024, n / 8, 1, 1, NULL);
		row("16 in flight, 2 hogs", 1024, n / 2, DEPTH, 1, NULL);
		g_hogs = 0;
		/* What 1000 idle clients cost one busy one (same geometry,
		 * 16 nodes of 4 KiB, with and without them). */
		g_idle = 0;
		{
			struct result a, b;

			a = run_rpc(1024, n / 4, 1, 1);
			g_idle = quick ? 200 : 1000;
			b = run_rpc(1024, n / 4, 1, 1);
			printf("  1 KiB    1 at a time, %d idle     %12.0f "
			       "%12.0f "
			       "%7.2f   %8.1f %8.1f   (calls/s and p50/p99 "
			       "without and with the idle clients)\n",
			       g_idle, a.calls_s, b.calls_s,
			       b.calls_s / a.calls_s, a.p50_us, b.p50_us);
			g_idle = 0;
		}
	}
	printf("\n  request  floor us   shmk us   unix us   shmk/floor   "
	       "unix/floor   (one call at a time: the mean; the floor: "
	       "4 copies through shared memory, CPU 0 to 1 and back, "
	       "spinning)\n");
	for (i = 0; i < NSIZES; i++) {
		double f = copy_floor_us(sizes[i], calls_for(sizes[i]) / 4);
		double a = 1e6 / one[i].calls_s, b = 1e6 / one_sock[i].calls_s;
		char sz[24];

		if (sizes[i] >= 1024)
			snprintf(sz, sizeof(sz), "%zu KiB", sizes[i] >> 10);
		else
			snprintf(sz, sizeof(sz), "%zu B", sizes[i]);
		if (one_sock[i].emsgsize)
			printf("  %-8s %8.2f  %8.2f  %8s   %10.2f   %10s\n", sz,
			       f, a, "-", a / f, "-");
		else
			printf("  %-8s %8.2f  %8.2f  %8.2f   %10.2f   %10.2f\n",
			       sz, f, a, b, a / f, b / f);
	}
	printf("\n(a reply equals its request in size; every reply checked. "
	       "The socket reference is a SOCK_SEQPACKET socketpair, a "
	       "message per request and per reply, with buffers of 4 x size "
	       "+ 64 KiB; with several in flight it keeps what its send "
	       "buffer holds:");
	for (i = 0; i < NSIZES; i++)
		printf(" %d%s", flight_sock[i].depth,
		       i + 1 < NSIZES ? "," : "");
	printf(" at");
	for (i = 0; i < NSIZES; i++) {
		if (sizes[i] >= 1024)
			printf(" %zu KiB", sizes[i] >> 10);
		else
			printf(" %zu B", sizes[i]);
		printf("%s", i + 1 < NSIZES ? "," : ".");
	}
	printf("  2 clients: their calls together; the socket column is one "
	       "client.)\n");
	return 0;
}
