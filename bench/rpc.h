/* SPDX-License-Identifier: MIT */
/*
 * rpc.h - shmk_rpc calls beside a UNIX seqpacket echo of the same sizes,
 * and the floor of a call's copies: what bench_rpc measures, and the rpc
 * section of `shmk bench` (bench/shmk_bench/measure_rpc.c).  rpc.c is
 * compiled into both.
 *
 *   rpc_shmk   a server process (CPU 1; one worker; channels of 16 nodes
 *              of 64 KiB, of 4 KiB with idle clients or if asked) whose
 *              handler replies with its request, and 1 or 2 client
 *              processes (CPU 0) with depth calls in flight each; idle
 *              client processes, if asked, stay connected through the run
 *   rpc_sock   the reference: a SOCK_SEQPACKET socketpair, this process
 *              (CPU 0) sending each request as one message, a child
 *              (CPU 1) sending it back as one message; both ends' buffers
 *              4 x size + 64 KiB (forced past net.core.wmem_max and
 *              rmem_max where we may: root), and with several calls in
 *              flight at most what a send buffer holds
 *   rpc_floor  a round trip between CPU 0 (this process) and CPU 1 (a
 *              child) through shared memory that makes a call's four
 *              copies and spins on a flag: no transport that copies can
 *              beat it
 *
 * A run makes calls for a count, or for a time (after an untimed
 * warm-up).  Every reply is checked against its request: a lost, short or
 * corrupt one fails the run.  The processes a function makes die with the
 * process that made them.
 */
#ifndef SHMK_BENCH_RPC_H
#define SHMK_BENCH_RPC_H

#include <stddef.h>
#include <stdint.h>

#define RPC_DEPTH	16	  /* calls in flight at most, per client */
#define RPC_MAX_CLIENTS 2	  /* client processes at most */
#define RPC_MAX_HOGS	4	  /* CPU-bound processes at most */
#define RPC_SAMPLES	(1 << 20) /* round trips kept, by a time */
#define RPC_WHY_LEN	200	  /* room for why a run failed */

struct rpc_run {
	/* Set by the caller. */
	const char *name; /* rpc_shmk: the server's name */
	size_t size;	  /* bytes of a request and of its reply */
	int depth;	  /* calls in flight per client, 1 to RPC_DEPTH */
	int clients;	  /* rpc_shmk: client processes, 1 to RPC_MAX_CLIENTS */
	int spin_us;	  /* rpc_shmk: 0 the default, -1 spinning off */
	int idle;	  /* rpc_shmk: idle clients connected through the run */
	int small_nodes;  /* rpc_shmk: nodes of 4 KiB without idle clients too
			     (the same geometry as with them) */
	long calls;	  /* secs 0: calls per client; else at most (0: any) */
	double warm_secs; /* calls for this long first, untimed (may be 0) */
	double secs;	  /* > 0: timed calls for this long, per client */
	long corrupt;	  /* >= 0: request number corrupt (from 0, the
			     warm-up's counted) goes out corrupt; a run by
			     a time lasts until it did */
	/* Set by rpc_shmk(), rpc_sock() and rpc_floor(). */
	double calls_s;	       /* timed calls a second, all clients */
	double p50_us, p99_us; /* depth 1: the round trip's */
	double mean_us;	       /* rpc_floor: the mean round trip */
	long timed;	       /* calls timed, all clients */
	int sndbuf;	       /* rpc_sock: the smaller send buffer given */
	int sock_depth;	       /* rpc_sock: calls it kept in flight */
	char why[RPC_WHY_LEN]; /* why a run failed */
};

/*
 * Each returns 0, or a negative errno value with r->why filled: -EBADMSG
 * for a reply that did not match its request; rpc_sock -EMSGSIZE if a
 * request or reply of r->size bytes does not fit in one message.
 * rpc_sock and rpc_floor pin the calling process to CPU 0.
 */
int rpc_shmk(struct rpc_run *r);
int rpc_sock(struct rpc_run *r);
int rpc_floor(struct rpc_run *r);

/* n CPU-bound processes (at most RPC_MAX_HOGS), one per CPU in turn,
 * until rpc_hogs_stop().  0, or -errno (none left running). */
int rpc_hogs_start(int n);
void rpc_hogs_stop(void);

#endif /* SHMK_BENCH_RPC_H */
