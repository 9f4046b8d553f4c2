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
 * The measurements are rpc.c's (rpc.h), which `shmk bench --only rpc`
 * runs too; this program makes a count of calls for each row.
 *
 * Usage: bench_rpc [--quick]
 *        bench_rpc --one SIZE DEPTH CLIENTS [nospin|hogs|idle=N|rpconly]
 *                              (one row; rpconly: without the socket,
 *                              for profiling)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rpc.h"
#include "shmk.h"

#define DEPTH RPC_DEPTH

static int quick;
static char g_name[64];
static int g_spin_us;  /* 0: the default; -1: spinning off */
static int g_hogs;     /* CPU-bound processes during a row */
static int g_idle;     /* idle client processes connected during a row */
static int g_small;    /* nodes of 4 KiB, as with idle clients */
static int g_rpc_only; /* --one ... rpconly: no socket reference */

/* How many calls for a size: about 0.5 s (quick 0.15 s) of work. */
static long calls_for(size_t size)
{
	double bytes = quick ? 3e8 : 1e9;
	long n = (long)(bytes / (double)(size + 2048));

	if (n > (quick ? 60000 : 200000))
		n = quick ? 60000 : 200000;
	return n < 200 ? 200 : n;
}

/* A run of n calls, depth at a time, from clients client processes. */
static struct rpc_run run_of(size_t size, long n, int depth, int clients)
{
	struct rpc_run r = {.name = g_name,
			    .size = size,
			    .depth = depth,
			    .clients = clients,
			    .spin_us = g_spin_us,
			    .idle = g_idle,
			    .small_nodes = g_small,
			    .calls = n,
			    .corrupt = -1};

	return r;
}

static void fail(const struct rpc_run *r)
{
	fprintf(stderr, "bench_rpc: %s\n", r->why);
	exit(1);
}

/* shmk_rpc: n calls from each of nclients client processes. */
static struct rpc_run run_rpc(size_t size, long n, int depth, int nclients)
{
	struct rpc_run r = run_of(size, n, depth, nclients);

	if (rpc_shmk(&r) < 0)
		fail(&r);
	return r;
}

/* The seqpacket reference; a size that does not fit one message is
 * r.why's, with the result -EMSGSIZE in *rc. */
static struct rpc_run run_sock(size_t size, long n, int depth, int *rc)
{
	struct rpc_run r = run_of(size, n, depth, 1);

	*rc = rpc_sock(&r);
	if (*rc < 0 && *rc != -EMSGSIZE)
		fail(&r);
	return r;
}

static double copy_floor_us(size_t size, long n)
{
	struct rpc_run r = run_of(size, n, 1, 1);

	if (rpc_floor(&r) < 0)
		fail(&r);
	return r.mean_us;
}

/* One row: shmk's result; the socket's in *sock if asked. */
static struct rpc_run row(const char *label, size_t size, long n, int depth,
			  int clients, struct rpc_run *sock)
{
	struct rpc_run a, b = {0};
	int sock_rc = 0;
	char sz[24];

	if (g_hogs && rpc_hogs_start(g_hogs) < 0) {
		fprintf(stderr, "bench_rpc: fork of a hog failed\n");
		exit(1);
	}
	a = run_rpc(size, n, depth, clients);
	if (!g_rpc_only)
		b = run_sock(size, n, depth, &sock_rc);
	rpc_hogs_stop();

	if (size >= 1024)
		snprintf(sz, sizeof(sz), "%zu KiB", size >> 10);
	else
		snprintf(sz, sizeof(sz), "%zu B", size);
	if (sock_rc) {
		printf("  %-8s %-20s %12.0f %12s %7s", sz, label, a.calls_s,
		       "EMSGSIZE", "-");
		if (depth == 1)
			printf("   %8.1f %8.1f   %8s %8s", a.p50_us, a.p99_us,
			       "-", "-");
		printf("   (unix: %s)\n", b.why);
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
	struct rpc_run one[NSIZES], one_sock[NSIZES], flight_sock[NSIZES];
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
			struct rpc_run a, b;

			g_small = 1;
			a = run_rpc(1024, n / 4, 1, 1);
			g_idle = quick ? 200 : 1000;
			b = run_rpc(1024, n / 4, 1, 1);
			printf("  1 KiB    1 at a time, %d idle     %12.0f "
			       "%12.0f "
			       "%7.2f   %8.1f %8.1f   (calls/s and p50 "
			       "without and with the idle clients)\n",
			       g_idle, a.calls_s, b.calls_s,
			       b.calls_s / a.calls_s, a.p50_us, b.p50_us);
			g_idle = 0;
			g_small = 0;
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
		if (!one_sock[i].calls_s)
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
		printf(" %d%s", flight_sock[i].sock_depth,
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
