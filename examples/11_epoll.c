/* SPDX-License-Identifier: MIT */
/*
 * 11_epoll - one epoll loop serves a ring, an event, an RPC endpoint and
 * a timer.
 *
 * A server that cannot park a thread in each shmk call waits on their
 * descriptors instead.  shmk_ring_pollfd() and shmk_event_pollfd() give a
 * descriptor that becomes readable when a call of that handle that
 * returned -EAGAIN (timeout 0) may now go on.  So the loop is: call with
 * timeout 0 until -EAGAIN (that drains what is there and arms the
 * descriptor), wait in epoll, repeat.  Nothing can be missed between the
 * last call and epoll_wait: whatever arrives after the call's last look
 * makes the descriptor readable.  The RPC endpoint is made with workers
 * -1: its handler runs on the loop's thread, in shmk_rpc_dispatch(), whose
 * -EAGAIN arms shmk_rpc_pollfd().
 *
 * Here a client process writes JOBS messages into the ring "example.jobs"
 * at irregular intervals, asks the server "example.calc" for the sum of
 * the jobs so far every 1000 jobs (a call, answered from the loop), then
 * sets the event "example.stop".  The server counts the jobs, prints a
 * line every 100 ms from a timerfd in the same loop, and stops at the
 * event (after taking what is left in the ring).
 *
 *	./11_epoll [JOBS]        # default 20000
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmk.h>

#define RING  "example.jobs"
#define EVENT "example.stop"
#define CALC  "example.calc"

/* The server's state: the jobs taken so far, their sum, the next one. */
static struct shmk_ring *g_ring;
static long g_got, g_sum, g_next;

/* Takes what the ring holds: timeout 0 until -EAGAIN, which arms its
 * descriptor.  Returns -1 if a job came out of order. */
static int drain(void)
{
	long v;

	while (shmk_ring_read(g_ring, &v, sizeof(v), 0) == sizeof(v)) {
		if (v != g_next++) {
			fprintf(stderr, "job %ld out of order\n", v);
			return -1;
		}
		g_got++;
		g_sum += v;
	}
	return 0;
}

static int client(long jobs)
{
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_rpc_opts ro = {.wait_ms = 5000};
	struct shmk_ring *r;
	struct shmk_event *e;
	struct shmk_rpc *calc;
	struct timespec pause = {0, 20000}; /* 20 us */
	long i, sum = 0;

	if (shmk_ring_open(RING, &o, &r) < 0 ||
	    shmk_event_open(EVENT, &o, &e) < 0 ||
	    shmk_rpc_connect(CALC, &ro, &calc) < 0)
		return 1;
	for (i = 0; i < jobs; i++) {
		if (shmk_ring_write(r, &i, sizeof(i), 5000) < 0)
			return 1;
		sum += i;
		if (i % 64 == 0) /* now and then a pause: the server sleeps */
			nanosleep(&pause, NULL);
		if (i % 1000 == 999) {
			/* The server's handler takes every job written
			 * before the call first: its sum is ours. */
			struct shmk_rpc_result res;
			long theirs = -1;

			if (shmk_rpc_call(calc, "sum", 3, &theirs,
					  sizeof(theirs), &res, 5000) < 0 ||
			    theirs != sum) {
				fprintf(stderr, "client: sum %ld, not %ld\n",
					theirs, sum);
				return 1;
			}
		}
	}
	shmk_event_set(e);
	shmk_rpc_close(calc);
	shmk_event_close(e);
	shmk_ring_close(r);
	return 0;
}

/* The handler, run by shmk_rpc_dispatch() on the loop's thread: it may
 * use the loop's state without a lock. */
static int calc_handler(void *arg, struct shmk_rpc_req *rq)
{
	(void)arg;
	/* Jobs written before the call are in the ring by now. */
	if (drain() < 0) {
		snprintf(rq->error, sizeof(rq->error), "jobs out of order");
		return -EPROTO;
	}
	rq->reply = &g_sum;
	rq->reply_len = sizeof(g_sum);
	return 0;
}

/* Adds fd to the epoll set, with the object's name as its tag. */
static int watch(int ep, int fd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

enum { TAG_RING, TAG_EVENT, TAG_RPC, TAG_TIMER };

int main(int argc, char **argv)
{
	long jobs = argc > 1 ? atol(argv[1]) : 20000;
	struct itimerspec tick = {{0, 100000000}, {0, 100000000}};
	struct shmk_opts nospin = {.spin_us = -1}; /* nobody spins here */
	struct shmk_rpc_opts so = {.handler = calc_handler,
				   .workers = -1, /* shmk_rpc_dispatch */
				   .spin_us = -1,
				   .nodes = 4,
				   .node_size = 256};
	struct shmk_ring *r;
	struct shmk_event *e;
	struct shmk_rpc *calc;
	int ep, tfd, stop = 0, wakes = 0, calls = 0, status;
	pid_t pid;

	shmk_unlink(RING);
	shmk_unlink(EVENT);
	/* The client first, while this process has no threads (the rpc
	 * server starts some; a child of fork() gets only the caller's). */
	pid = fork();
	if (pid == 0)
		_exit(client(jobs));
	if (shmk_ring_create(RING, 256, sizeof(long), &nospin, &r) < 0 ||
	    shmk_event_create(EVENT, 0, 0, &nospin, &e) < 0 ||
	    shmk_rpc_serve(CALC, &so, &calc) < 0) {
		fprintf(stderr, "11_epoll: cannot create %s, %s, %s\n", RING,
			EVENT, CALC);
		return 1;
	}
	g_ring = r;
	ep = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (ep < 0 || tfd < 0 || timerfd_settime(tfd, 0, &tick, NULL) < 0 ||
	    watch(ep, shmk_ring_pollfd(r), TAG_RING) < 0 ||
	    watch(ep, shmk_event_pollfd(e), TAG_EVENT) < 0 ||
	    watch(ep, shmk_rpc_pollfd(calc), TAG_RPC) < 0 ||
	    watch(ep, tfd, TAG_TIMER) < 0) {
		perror("11_epoll: epoll");
		return 1;
	}

	while (!stop) {
		struct epoll_event ev[4];
		int n, i;

		if (drain() < 0)
			return 1;
		/* Calls: their handlers run here; -EAGAIN arms. */
		while ((n = shmk_rpc_dispatch(calc, 16)) > 0)
			calls += n;
		/* The event: set means stop (it is an auto-reset event, so
		 * the wait takes the set; -EAGAIN arms its descriptor). */
		if (shmk_event_wait(e, 0) == 0) {
			if (drain() < 0)
				return 1;
			stop = 1;
			break;
		}
		n = epoll_wait(ep, ev, 4, -1);
		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			return 1;
		}
		wakes++;
		for (i = 0; i < n; i++)
			if (ev[i].data.u64 == TAG_TIMER) {
				uint64_t ticks;

				if (read(tfd, &ticks, sizeof(ticks)) > 0)
					printf("server: %ld jobs so far\n",
					       g_got);
			}
	}
	waitpid(pid, &status, 0);
	printf("server: %ld of %ld jobs, in order, and %d calls, in %d "
	       "wake-ups of one epoll loop\n",
	       g_got, jobs, calls, wakes);
	close(tfd);
	close(ep);
	shmk_rpc_close(calc);
	shmk_event_close(e);
	shmk_ring_close(r);
	shmk_unlink(RING);
	shmk_unlink(EVENT);
	return g_got == jobs && calls == jobs / 1000 && WIFEXITED(status) &&
			       !WEXITSTATUS(status)
		       ? 0
		       : 1;
}
