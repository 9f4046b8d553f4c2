/* SPDX-License-Identifier: MIT */
/*
 * bench_wake - how a process asleep in epoll can be woken by another
 * process that does not hold its descriptor: the candidates for shmk's
 * pollable descriptors (docs/design.md, "Descriptors for event loops"),
 * each measured as a 1-byte ping-pong between two processes on separate
 * CPUs, both asleep in epoll_wait between messages (the futex aside: it
 * needs no epoll).  wake.h lists the mechanisms; wake.c runs them, and
 * `shmk bench --only wake` runs its pipe and shmk rows with 64-byte
 * messages.
 *
 * Prints the round trip's p50 / p99 and each mechanism's ratio to the pipe
 * measured in the same run.   Usage: bench_wake [rounds]
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "wake.h"

static int cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 20000, m, failed = 0;
	double p50[WAKE_NMECH], p99[WAKE_NMECH];
	uint32_t *t;

	if (rounds < 100)
		rounds = 100;
	t = malloc(sizeof(*t) * (size_t)rounds);
	if (!t)
		return 2;
	printf("bench_wake: 1-byte ping-pong between two processes on two "
	       "CPUs, both asleep between messages; %d round trips each\n\n",
	       rounds);
	printf("   %-12s %10s %10s %10s\n", "mechanism", "p50 us", "p99 us",
	       "p50/pipe");
	for (m = 0; m < WAKE_NMECH; m++) {
		struct wake_run w = {.m = (enum wake_mech)m,
				     .size = 1,
				     .t = t,
				     .cap = (uint32_t)rounds,
				     .corrupt = -1};

		if (wake_pingpong(&w) < 0) {
			printf("   %-12s failed: %s\n", wake_names[m], w.why);
			p50[m] = 0;
			failed = 1;
			continue;
		}
		qsort(t, w.n, sizeof(*t), cmp);
		p50[m] = (double)t[w.n / 2];
		p99[m] = (double)t[(size_t)w.n * 99 / 100];
		printf("   %-12s %10.2f %10.2f", wake_names[m], p50[m] / 1e3,
		       p99[m] / 1e3);
		if (p50[WAKE_PIPE] > 0)
			printf(" %9.2fx", p50[m] / p50[WAKE_PIPE]);
		printf("\n");
		fflush(stdout);
	}
	free(t);
	return failed ? 1 : 0;
}
