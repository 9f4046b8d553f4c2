/* SPDX-License-Identifier: MIT */
/*
 * 11_epoll - one epoll loop serves a ring, an event and a timer.
 *
 * A server that cannot park a thread in each shmk call waits on their
 * descriptors instead.  shmk_ring_pollfd() and shmk_event_pollfd() give a
 * descriptor that becomes readable when a call of that handle that
 * returned -EAGAIN (timeout 0) may now go on.  So the loop is: call with
 * timeout 0 until -EAGAIN (that drains what is there and arms the
 * descriptor), wait in epoll, repeat.  Nothing can be missed between the
 * last call and epoll_wait: whatever arrives after the call's last look
 * makes the descriptor readable.
 *
 * Here a client process writes JOBS messages into the ring "example.jobs"
 * at irregular intervals, then sets the event "example.stop".  The server
 * counts the jobs, prints a line every 100 ms from a timerfd in the same
 * loop, and stops at the event (after taking what is left in the ring).
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

static int client(long jobs)
{
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_ring *r;
	struct shmk_event *e;
	struct timespec pause = {0, 20000}; /* 20 us */
	long i;

	if (shmk_ring_open(RING, &o, &r) < 0 ||
	    shmk_event_open(EVENT, &o, &e) < 0)
		return 1;
	for (i = 0; i < jobs; i++) {
		if (shmk_ring_write(r, &i, sizeof(i), 5000) < 0)
			return 1;
		if (i % 64 == 0) /* now and then a pause: the server sleeps */
			nanosleep(&pause, NULL);
	}
	shmk_event_set(e);
	shmk_event_close(e);
	shmk_ring_close(r);
	return 0;
}

/* Adds fd to the epoll set, with the object's name as its tag. */
static int watch(int ep, int fd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

enum { TAG_RING, TAG_EVENT, TAG_TIMER };

int main(int argc, char **argv)
{
	long jobs = argc > 1 ? atol(argv[1]) : 20000, got = 0, next = 0;
	struct itimerspec tick = {{0, 100000000}, {0, 100000000}};
	struct shmk_opts nospin = {.spin_us = -1}; /* nobody spins here */
	struct shmk_ring *r;
	struct shmk_event *e;
	int ep, tfd, stop = 0, wakes = 0, status;
	pid_t pid;

	shmk_unlink(RING);
	shmk_unlink(EVENT);
	if (shmk_ring_create(RING, 256, sizeof(long), &nospin, &r) < 0 ||
	    shmk_event_create(EVENT, 0, 0, &nospin, &e) < 0) {
		fprintf(stderr, "11_epoll: cannot create %s, %s\n", RING,
			EVENT);
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (ep < 0 || tfd < 0 || timerfd_settime(tfd, 0, &tick, NULL) < 0 ||
	    watch(ep, shmk_ring_pollfd(r), TAG_RING) < 0 ||
	    watch(ep, shmk_event_pollfd(e), TAG_EVENT) < 0 ||
	    watch(ep, tfd, TAG_TIMER) < 0) {
		perror("11_epoll: epoll");
		return 1;
	}
	pid = fork();
	if (pid == 0)
		_exit(client(jobs));

	while (!stop) {
		struct epoll_event ev[3];
		long v;
		int n, i;

		/* Drain the ring: timeout 0 until -EAGAIN, which arms it. */
		while (shmk_ring_read(r, &v, sizeof(v), 0) == sizeof(v)) {
			if (v != next++) {
				fprintf(stderr, "job %ld out of order\n", v);
				return 1;
			}
			got++;
		}
		/* The event: set means stop (it is an auto-reset event, so
		 * the wait takes the set; -EAGAIN arms its descriptor). */
		if (shmk_event_wait(e, 0) == 0) {
			while (shmk_ring_read(r, &v, sizeof(v), 0) == sizeof(v))
				got++;
			stop = 1;
			break;
		}
		n = epoll_wait(ep, ev, 3, -1);
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
					       got);
			}
	}
	waitpid(pid, &status, 0);
	printf("server: %ld of %ld jobs, in order, in %d wake-ups of one "
	       "epoll loop\n",
	       got, jobs, wakes);
	close(tfd);
	close(ep);
	shmk_event_close(e);
	shmk_ring_close(r);
	shmk_unlink(RING);
	shmk_unlink(EVENT);
	return got == jobs && WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : 1;
}
