/* SPDX-License-Identifier: MIT */
/*
 * signals.c - send, recv, pub, sub and watch end cleanly on SIGINT,
 * SIGTERM and SIGHUP.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>

#include "shmk.h"

#include "signals.h"

volatile sig_atomic_t g_signal; /* the stopping signal, or 0 */
volatile sig_atomic_t g_tstp;	/* watch: SIGTSTP arrived */
/* send, recv, pub, sub: the handle a stopping signal wakes (its blocked
 * call returns -ECANCELED; a wake that comes before the call ends the
 * call's wait as soon as it begins).  Set once open, cleared before the
 * handle closes. */
static struct shmk_ring *volatile g_wake_ring;
static struct shmk_topic *volatile g_wake_topic;

static void on_signal(int sig)
{
	struct shmk_ring *r = g_wake_ring;
	struct shmk_topic *t = g_wake_topic;

	if (sig == SIGTSTP) {
		g_tstp = 1;
		return;
	}
	g_signal = sig;
	if (r)
		shmk_ring_wake(r);
	if (t)
		shmk_topic_wake(t);
}

/* The handle the signals wake (NULL, NULL: none). */
void wake_on_signal(struct shmk_ring *r, struct shmk_topic *t)
{
	g_wake_ring = r;
	g_wake_topic = t;
}

/* Without SA_RESTART, so that a blocking read(2) returns EINTR. */
void catch_signals(int tstp)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGTSTP};
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigs[i] != SIGTSTP || tstp)
			sigaction(sigs[i], &sa, NULL);
}
