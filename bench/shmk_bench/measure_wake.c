/* SPDX-License-Identifier: MIT */
/*
 * measure_wake.c - the wake section: what waking a process that sleeps
 * costs.  The 64-byte round trip with both processes asleep in epoll_wait
 * is the ping-pong of ../wake.c (which bench_wake runs too), run by a
 * child of the measurement; the throughput rows are measure_pair()'s.
 * Rows that ask for it run beside CPU-bound hog processes, one per CPU,
 * started before the first of them and killed after the last.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../bench.h"
#include "../wake.h"
#include "shmk.h"
#include "shmk_bench.h"

/* Names for the round trip's rows (not transports of the other
 * sections: wake.c carries their messages). */
const struct bt_transport bt_wake_shmk = {
	.abi = BT_ABI,
	.name = "shmk-epoll",
	.label = "shmk ring fd in epoll (no spin)",
};

const struct bt_transport bt_wake_pipe = {
	.abi = BT_ABI,
	.name = "pipe-epoll",
	.label = "pipe in epoll",
};

/* ------------------------------------------------------------------ */
/* Hogs                                                               */
/* ------------------------------------------------------------------ */

static pid_t hog[MAX_KIDS];
static int nhog;

/* n busy loops, one per CPU in turn.  0, or -errno (none left running). */
static int hogs_start(int n)
{
	fflush(NULL);
	while (nhog < n && nhog < MAX_KIDS) {
		pid_t p = fork();

		if (p < 0) {
			int e = errno;

			hogs_stop();
			return -e;
		}
		if (p == 0) {
			volatile uint64_t x = 0;

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			pin(nhog % g_ncpu);
			for (;;)
				x++;
		}
		hog[nhog++] = p;
	}
	return 0;
}

void hogs_stop(void)
{
	for (; nhog > 0; nhog--) {
		kill(hog[nhog - 1], SIGKILL);
		waitpid(hog[nhog - 1], NULL, 0);
	}
}

/* ------------------------------------------------------------------ */
/* The round trip through epoll                                       */
/* ------------------------------------------------------------------ */

static void wake_kid(int k, void *arg)
{
	struct wake_run *w = arg;

	if (wake_pingpong(w) < 0)
		kid_fail(k, strstr(w->why, "arrived") ? -EBADMSG : -EIO, "%s",
			 w->why);
	ctl->nsamples = w->n;
}

static void wake_rtt(struct rec *r, int i)
{
	struct wake_run w = {
		.m = r->t == &bt_wake_shmk ? WAKE_SHMK : WAKE_PIPE,
		.size = r->size,
		.t = ctl->samples,
		.cap = MAX_SAMPLES,
		.stop = &ctl->stop,
		.ready = kid_ready_wait,
		.corrupt = opt.corrupt,
	};
	double secs = opt.secs * 1.5, sum = 0;
	uint32_t n;

	if (run_kids(1, 0, wake_kid, NULL, &w, secs, NULL, r->why,
		     sizeof(r->why)) < 0) {
		r->st = ST_FAIL;
		return;
	}
	n = ctl->nsamples;
	if (n < 10) {
		r->st = ST_FAIL;
		snprintf(r->why, sizeof(r->why), "only %u round trips", n);
		return;
	}
	for (uint32_t k = 0; k < n; k++)
		sum += ctl->samples[k];
	qsort(ctl->samples, n, sizeof(uint32_t), cmp_u32);
	r->p50[i] = quantile_us(ctl->samples, n, 0.50);
	r->p99[i] = quantile_us(ctl->samples, n, 0.99);
	r->p999[i] = quantile_us(ctl->samples, n, 0.999);
	r->mps[i] = (double)n / (sum / 1e9); /* while timed */
	r->nrep = i + 1;
}

/* ------------------------------------------------------------------ */
/* System calls of the write path with nobody waiting                 */
/* ------------------------------------------------------------------ */

/*
 * Writes *writes messages of 64 bytes (a thousand at a time, each batch
 * read back with timeout 0 by the same handle) through an anonymous
 * no-spin ring nobody waits on; *wakeups is the ring's count of wake-ups
 * made, the only system call its notify makes.  0, or -errno.
 */
int wake_quiet_writes(uint64_t *writes, uint64_t *wakeups)
{
	struct shmk_opts nospin = {.spin_us = -1};
	struct shmk_ring_stats st;
	struct shmk_ring *r = NULL;
	char msg[64] = {0};
	uint64_t n = 0;
	int rc = shmk_ring_create(NULL, 1024, sizeof(msg), &nospin, &r);

	for (int i = 0; !rc && i < 100; i++) {
		for (int k = 0; !rc && k < 1000; k++, n++)
			rc = shmk_ring_write(r, msg, sizeof(msg), 0);
		for (int k = 0; !rc && k < 1000; k++) {
			ssize_t got = shmk_ring_read(r, msg, sizeof(msg), 0);

			rc = got == (ssize_t)sizeof(msg) ? 0
			     : got < 0			 ? (int)got
							 : -EIO;
		}
	}
	if (!rc)
		rc = shmk_ring_stats(r, &st);
	if (r)
		shmk_ring_close(r);
	*writes = n;
	*wakeups = rc ? 0 : st.wakeups;
	return rc;
}

/* ------------------------------------------------------------------ */
/* A measurement of the section                                       */
/* ------------------------------------------------------------------ */

void measure_wake(struct rec *r, int i)
{
	const struct rec *next = r + 1;
	int rc;

	if (!r->hogs)
		hogs_stop();
	else if (!nhog && (rc = hogs_start(r->hogs)) < 0) {
		r->st = ST_FAIL;
		snprintf(r->why, sizeof(r->why), "fork of a hog: %s",
			 strerror(-rc));
		return;
	}
	if (!strcmp(r->section, "wake"))
		measure_pair(r, i);
	else
		wake_rtt(r, i);
	/* The hogs stay up for the next row of hogs that will be measured
	 * (run_all() skips rows that failed). */
	while (next < recs + nrecs && next->st != ST_OK)
		next++;
	if (next == recs + nrecs || !next->hogs)
		hogs_stop();
}
