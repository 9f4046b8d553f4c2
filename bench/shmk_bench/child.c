/* SPDX-License-Identifier: MIT */
/*
 * child.c - the processes of a measurement: forked from the parent,
 * released together, stopped after the measured time, reaped with a
 * deadline; they report through a control block in shared memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../bench.h"
#include "shmk_bench.h"

struct ctl *ctl;

/* Maps the control block, shared with every child.  0, or -1. */
int ctl_map(void)
{
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED) {
		perror("shmk bench: mmap");
		return -1;
	}
	return 0;
}

_Noreturn void kid_fail(int k, int err, const char *fmt, ...)
{
	va_list ap;

	ctl->kid[k].err = err ? err : -EPROTO;
	va_start(ap, fmt);
	vsnprintf(ctl->kid[k].why, sizeof(ctl->kid[k].why), fmt, ap);
	va_end(ap);
	_exit(2);
}

void kid_ready_wait(void)
{
	atomic_fetch_add(&ctl->ready, 1);
	while (!atomic_load_explicit(&ctl->go, memory_order_acquire))
		bench_relax();
}

/*
 * Runs nw "writer" children then nr "reader" children (kid_fn each),
 * releases them together, stops them after secs, calls after_writers
 * once every writer ended, then waits for the readers.  0, or -1 with
 * why filled.
 */
/* Forks the n children, writers (wfn) first.  Returns how many started;
 * fewer than n with why filled. */
static int spawn(pid_t *pid, int nw, int n, kid_fn wfn, kid_fn rfn, void *arg,
		 char *why, size_t whylen)
{
	for (int i = 0; i < n; i++) {
		pid[i] = fork();
		if (pid[i] < 0) {
			snprintf(why, whylen, "fork: %s", strerror(errno));
			return i;
		}
		if (pid[i] == 0) {
			if (i < nw)
				wfn(i, arg);
			else
				rfn(i, arg);
			_exit(0);
		}
	}
	return n;
}

/* Until every child opened: 0, or 1 if one ended first or 15 s passed. */
static int wait_ready(pid_t *pid, int n, char *why, size_t whylen)
{
	uint64_t deadline = now_ns() + 15000000000ull;
	int bad = 0;

	while (!bad && (int)atomic_load(&ctl->ready) < n) {
		int st;

		for (int i = 0; i < n; i++)
			if (pid[i] > 0 && waitpid(pid[i], &st, WNOHANG) > 0) {
				pid[i] = -pid[i];
				bad = 1;
			}
		if (now_ns() > deadline) {
			snprintf(why, whylen, "a process did not start");
			bad = 1;
		}
		usleep(1000);
	}
	return bad;
}

/* Kills and reaps the children still running. */
static void kill_all(pid_t *pid, int n)
{
	for (int i = 0; i < n; i++)
		if (pid[i] > 0) {
			kill(pid[i], SIGKILL);
			waitpid(pid[i], NULL, 0);
			pid[i] = -pid[i];
		}
}

/*
 * Reaps the children: writers first, then the hook, then readers.  A
 * process that failed takes the others down with it.  Returns bad, or 1
 * if a child failed, or -1 with why filled if they overran KILL_AFTER.
 */
static int reap(pid_t *pid, int n, int nw, int bad,
		void (*after_writers)(void *), void *arg, char *why,
		size_t whylen)
{
	uint64_t deadline = now_ns() + (uint64_t)KILL_AFTER * 1000000000ull;
	int ended = 0;

	while (ended < n) {
		int st, reaped = 0, w;

		for (int i = 0; i < n; i++) {
			if (pid[i] <= 0 || waitpid(pid[i], &st, WNOHANG) <= 0)
				continue;
			pid[i] = -pid[i];
			ended++;
			reaped = 1;
			if (WIFEXITED(st) && !WEXITSTATUS(st))
				continue;
			if (!bad && !ctl->kid[i].why[0])
				snprintf(ctl->kid[i].why,
					 sizeof(ctl->kid[i].why),
					 "process %d ended with status 0x%x", i,
					 st);
			bad = 1;
		}
		for (w = 0; w < nw && pid[w] <= 0; w++)
			;
		if (w == nw && after_writers) {
			after_writers(arg);
			after_writers = NULL;
		}
		if (ended == n)
			break;
		if (bad || now_ns() > deadline) {
			kill_all(pid, n);
			if (!bad) {
				snprintf(why, whylen,
					 "timed out (%d s past the end: a "
					 "message lost, or a peer wedged)",
					 KILL_AFTER);
				return -1;
			}
			break;
		}
		if (!reaped)
			usleep(500);
	}
	return bad;
}

/* Why a run failed, from its children's reasons. */
static void kids_why(char *why, size_t whylen)
{
	int i;

	/* A verification failure first: the peer's "broken pipe" is only
	 * its consequence. */
	for (i = 0; i < MAX_KIDS; i++)
		if (ctl->kid[i].err == -EBADMSG && ctl->kid[i].why[0]) {
			snprintf(why, whylen, "%s", ctl->kid[i].why);
			break;
		}
	for (i = 0; !why[0] && i < MAX_KIDS; i++)
		if (ctl->kid[i].why[0]) {
			snprintf(why, whylen, "%s", ctl->kid[i].why);
			break;
		}
	if (!why[0])
		snprintf(why, whylen, "a process failed");
}

int run_kids(int nw, int nr, kid_fn wfn, kid_fn rfn, void *arg, double secs,
	     void (*after_writers)(void *), char *why, size_t whylen)
{
	pid_t pid[MAX_KIDS];
	int n = nw + nr, started, bad;

	why[0] = 0;
	memset(ctl, 0, offsetof(struct ctl, samples));
	ctl->warm_ns = (uint64_t)(secs * 0.2e9);
	fflush(NULL);
	started = spawn(pid, nw, n, wfn, rfn, arg, why, whylen);
	bad = started < n;
	n = started;
	if (!bad)
		bad = wait_ready(pid, n, why, whylen);
	if (!bad) {
		ctl->t_go = now_ns();
		atomic_store_explicit(&ctl->go, 1, memory_order_release);
		usleep((useconds_t)(secs * 1e6));
		atomic_store(&ctl->stop, 1);
	}
	bad = reap(pid, n, nw, bad, after_writers, arg, why, whylen);
	if (bad < 0)
		return -1;
	if (bad) {
		kids_why(why, whylen);
		return -1;
	}
	return 0;
}
