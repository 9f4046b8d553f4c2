/* SPDX-License-Identifier: MIT */
/*
 * wake.h - a ping-pong between two processes on separate CPUs, both
 * asleep between messages, each woken through one mechanism: what
 * bench_wake compares, and the epoll rows of `shmk bench`
 * (bench/shmk_bench/measure_wake.c).  wake.c is compiled into both.
 *
 *   pipe        a pipe each way, created before fork (the reference: both
 *               sides hold both ends), read after epoll_wait
 *   dgram       a UNIX datagram socket per waiter, bound to an abstract
 *               name; the waker sends with sendto() from its own socket
 *   dgram-conn  the same, the waker's socket connected once to the name
 *   eventfd     an eventfd per waiter, which the waker takes with
 *               pidfd_getfd() (needs ptrace rights over the waiter)
 *   futex       no epoll: a futex word each way (shmk's blocking calls)
 *   shmk ring fd  a ring each way (spinning off), each side asleep in
 *               epoll on shmk_ring_pollfd(), reading with timeout 0 until
 *               a message (each -EAGAIN arms the descriptor)
 *
 * Messages of size bytes go through the pipe, the sockets and the rings;
 * eventfd and futex carry no data.  A message of BM_HDR bytes or more
 * carries the header and checksum of shmk bench (shmk_bench/verify.h)
 * and is checked on arrival: a lost, repeated or corrupt one fails the
 * run.
 */
#ifndef SHMK_BENCH_WAKE_H
#define SHMK_BENCH_WAKE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum wake_mech {
	WAKE_PIPE,
	WAKE_DGRAM,
	WAKE_DGRAM_CONN,
	WAKE_EVENTFD,
	WAKE_FUTEX,
	WAKE_SHMK,
	WAKE_NMECH
};

extern const char *const wake_names[WAKE_NMECH];

#define WAKE_WARM     100  /* round trips before the timed ones */
#define WAKE_MAX_SIZE 4096 /* bytes a message at most */

struct wake_run {
	/* Set by the caller. */
	enum wake_mech m;
	size_t size;  /* bytes a message, 1 to WAKE_MAX_SIZE */
	uint32_t *t;  /* the timed round trips, ns, in order */
	uint32_t cap; /* room in t */
	/* NULL: cap round trips.  Else until *stop is set (at most cap),
	 * and past it until 200 are in, for at most 5 s more. */
	const _Atomic uint32_t *stop;
	void (*ready)(void); /* may be NULL: called once both sides are
				set up, before the first round trip */
	long corrupt;	     /* >= 0: corrupt message corrupt's payload */
	/* Set by wake_pingpong(). */
	uint32_t n; /* round trips in t */
	char why[160];
};

/*
 * Runs w->m's ping-pong: this process (pinned to CPU 0) sends first and
 * times each round trip; a child it forks (CPU 1) answers.  Returns 0,
 * or -1 with w->why filled (either side failed; the child is reaped).
 */
int wake_pingpong(struct wake_run *w);

#endif /* SHMK_BENCH_WAKE_H */
