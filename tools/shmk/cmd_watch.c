/* SPDX-License-Identifier: MIT */
/*
 * watch: live rates of objects, from the difference of two snapshots.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shmk.h"

#include "cli.h"
#include "object.h"
#include "signals.h"

/* Which counters make a kind's columns (NULL: not applicable). */
struct watch_map {
	int kind;
	const char *msgs, *bytes, *wait1, *wait2;
};

static const struct watch_map watch_maps[] = {
	{SHMK_KIND_RING, "read", "bytes_read", "full_waits", "empty_waits"},
	{SHMK_KIND_BUFFER, "writes", NULL, NULL, NULL},
	{SHMK_KIND_ARRAY, "writes", NULL, NULL, NULL},
	{SHMK_KIND_EVENT, "sets", NULL, "wakes", NULL},
	{SHMK_KIND_TOPIC, "published", "bytes_published", "full_waits",
	 "empty_waits"},
};

struct watched {
	const char *name;
	struct shmk_stat st[2]; /* the last two snapshots */
	int rc[2];
};

/* Counter `name` per second between a and b; -1: not applicable. */
static double rate_of(const struct shmk_stat *a, const struct shmk_stat *b,
		      const char *name, double secs)
{
	int ia, ib;

	if (!name)
		return -1;
	ia = counter_index(a, name);
	ib = counter_index(b, name);
	if (ia < 0 || ib < 0)
		return -1;
	/* A counter can step back: the object was made again, or a
	 * participant's counters were being folded as stat read them. */
	if (b->counter[ib] <= a->counter[ia])
		return 0;
	return (double)(b->counter[ib] - a->counter[ia]) / secs;
}

static const char *fmt_rate(double v, int decimals, char *buf, size_t cap)
{
	if (v < 0)
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, "%.*f", decimals, v);
	return buf;
}

/*
 * One object's figures for the tick that ended with snapshot cur
 * (prev: the one before, or -1 on a terminal's first frame).  tty: a
 * table row; else a "key=value" line.
 */
static void watch_line(const struct watched *w, int cur, int prev, double secs,
		       int tty)
{
	const struct shmk_stat *b = &w->st[cur],
			       *a = &w->st[prev < 0 ? cur : prev];
	const struct watch_map *m = NULL;
	double msgs = -1, mb = -1, waits = -1, x;
	char r1[32], r2[32], r3[32], lag[32], kind[32], cn[32];
	size_t i;
	int k, valid;

	if (w->rc[cur] < 0) {
		if (tty)
			printf("%-24s (%s)\033[K\n", w->name,
			       shmk_strerror(w->rc[cur]));
		else
			printf("%s error=\"%s\"\n", w->name,
			       shmk_strerror(w->rc[cur]));
		return;
	}
	valid = prev >= 0 && w->rc[prev] == 0 && a->kind == b->kind;
	for (i = 0; i < sizeof(watch_maps) / sizeof(watch_maps[0]); i++)
		if (watch_maps[i].kind == b->kind)
			m = &watch_maps[i];
	if (valid && m) {
		msgs = rate_of(a, b, m->msgs, secs);
		mb = rate_of(a, b, m->bytes, secs);
		if (mb >= 0)
			mb /= 1e6;
		waits = rate_of(a, b, m->wait1, secs);
		x = rate_of(a, b, m->wait2, secs);
		if (x >= 0)
			waits = waits < 0 ? x : waits + x;
	}
	k = lag_index(b);
	if (k >= 0)
		snprintf(lag, sizeof(lag), "%llu",
			 (unsigned long long)b->counter[k]);
	else
		snprintf(lag, sizeof(lag), "-");
	if (tty)
		printf("%-24s %-7s %-8s %5d %10s %8s %8s %8s", w->name,
		       kind_str(b->kind, kind, sizeof(kind)),
		       shmk_state_name(b->state), b->nalive,
		       fmt_rate(msgs, 0, r1, sizeof(r1)),
		       fmt_rate(mb, 2, r2, sizeof(r2)),
		       fmt_rate(waits, 0, r3, sizeof(r3)), lag);
	else
		printf("%s kind=%s state=%s alive=%d msg/s=%s MB/s=%s "
		       "waits/s=%s lag=%s",
		       w->name, kind_str(b->kind, kind, sizeof(kind)),
		       shmk_state_name(b->state), b->nalive,
		       fmt_rate(msgs, 0, r1, sizeof(r1)),
		       fmt_rate(mb, 2, r2, sizeof(r2)),
		       fmt_rate(waits, 0, r3, sizeof(r3)), lag);
	/* A kind this tool has no columns for: every counter's rate. */
	if (!m && valid)
		for (k = 0; k < b->ncounters; k++) {
			const char *n =
				counter_name(b->kind, k, cn, sizeof(cn));

			printf(" %s/s=%s", n,
			       fmt_rate(rate_of(a, b, n, secs), 0, r1,
					sizeof(r1)));
		}
	printf(tty ? "\033[K\n" : "\n");
}

static void watch_frame(const struct watched *w, int n, int cur, int prev,
			double secs, int interval_ms, int tty)
{
	char when[32];
	time_t t = time(NULL);
	struct tm tm;
	int i;

	if (!localtime_r(&t, &tm) ||
	    !strftime(when, sizeof(when), "%H:%M:%S", &tm))
		snprintf(when, sizeof(when), "-");
	if (tty) {
		printf("\033[H"); /* home: redraw in place */
		printf("shmk watch: every %d ms, %s (Ctrl-C quits)\033[K\n",
		       interval_ms, when);
		printf("%-24s %-7s %-8s %5s %10s %8s %8s %8s\033[K\n", "NAME",
		       "KIND", "STATE", "ALIVE", "MSG/S", "MB/S", "WAITS/S",
		       "LAG");
	}
	for (i = 0; i < n; i++) {
		if (!tty)
			printf("%s ", when);
		watch_line(&w[i], cur, prev, secs, tty);
	}
	if (tty)
		printf("\033[J"); /* clear what an earlier frame left below */
	fflush(stdout);
}

/*
 * Sleeps until deadline (CLOCK_MONOTONIC ms) with the stopping signals
 * unblocked only inside ppoll, so that one arriving just before the
 * sleep still ends it.  Returns 0 at the deadline, -EINTR on a signal.
 */
static int watch_sleep(uint64_t deadline, const sigset_t *unblocked)
{
	for (;;) {
		uint64_t now = now_ms();
		struct timespec ts;

		if (g_signal || g_tstp)
			return -EINTR;
		if (now >= deadline)
			return 0;
		ts.tv_sec = (time_t)((deadline - now) / 1000);
		ts.tv_nsec = (long)((deadline - now) % 1000) * 1000000;
		if (ppoll(NULL, 0, &ts, unblocked) < 0 && errno == EINTR &&
		    (g_signal || g_tstp))
			return -EINTR;
	}
}

static int run_watch(int argc, char **argv)
{
	int i, n, rc, cur = 0, tty, interval = 1000, count = 0, ticks = 0;
	const char *term = getenv("TERM");
	sigset_t stop, unblocked;
	uint64_t t0, t1, next;
	struct watched *w;
	const struct opt opts[] = {
		{"interval", .short_name = 'i', .type = OPT_INT,
		 .val = &interval, .min = 1, .max = 3600000},
		{"count", .short_name = 'c', .type = OPT_INT, .val = &count,
		 .min = 1, .max = INT32_MAX},
		{.name = NULL},
	};

	rc = parse_opts("watch", argc, argv, opts, NULL);
	if (rc >= 0)
		return rc;
	n = argc - optind;
	if (n == 0)
		return no_name("watch");
	w = calloc((size_t)n, sizeof(*w));
	if (!w) {
		err_rc("watch", "memory", -ENOMEM);
		return EXIT_FAIL;
	}
	for (i = 0; i < n; i++) {
		w[i].name = argv[optind + i];
		w[i].rc[0] = shmk_stat(w[i].name, &w[i].st[0]);
		if (w[i].rc[0] < 0) {
			err_rc("watch", w[i].name, w[i].rc[0]);
			free(w);
			return EXIT_FAIL;
		}
	}
	tty = isatty(STDOUT_FILENO) && term && strcmp(term, "dumb") != 0;

	/* The stopping signals are delivered only while we sleep. */
	catch_signals(tty);
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	if (tty)
		sigaddset(&stop, SIGTSTP);
	sigprocmask(SIG_BLOCK, &stop, &unblocked);
	sigdelset(&unblocked, SIGINT);
	sigdelset(&unblocked, SIGTERM);
	sigdelset(&unblocked, SIGHUP);
	sigdelset(&unblocked, SIGTSTP);

	if (tty) { /* hide the cursor, clear, a first frame without rates */
		printf("\033[?25l\033[2J");
		watch_frame(w, n, cur, -1, 0, interval, tty);
	}
	t0 = now_ms();
	next = t0 + (uint64_t)interval;
	while (!count || ticks < count) {
		if (watch_sleep(next, &unblocked) < 0) {
			if (g_signal)
				break;
			/* Ctrl-Z: give the terminal back as it was, stop,
			 * and take it again when continued. */
			g_tstp = 0;
			printf("\033[?25h");
			fflush(stdout);
			raise(SIGSTOP);
			printf("\033[?25l\033[2J");
			watch_frame(w, n, cur, -1, 0, interval, tty);
			continue;
		}
		t1 = now_ms();
		for (i = 0; i < n; i++)
			w[i].rc[!cur] = shmk_stat(w[i].name, &w[i].st[!cur]);
		watch_frame(w, n, !cur, cur,
			    (double)(t1 > t0 ? t1 - t0 : 1) / 1000.0, interval,
			    tty);
		cur = !cur;
		t0 = t1;
		ticks++;
		/* A fixed cadence; after a stall, start again from now. */
		next += (uint64_t)interval;
		if (next <= t1)
			next = t1 + (uint64_t)interval;
	}
	if (tty) /* the cursor back, below the last frame */
		printf("\033[?25h");
	fflush(stdout);
	free(w);
	return EXIT_OK;
}

const struct cmd cmd_watch = {
	.name = "watch",
	.args = "[--interval MS] [--count N] NAME...",
	.summary = "live rates",
	.help = "Shows, once a second, what each object did since the last "
		"look,\n"
		"from the difference of two snapshots (shmk_stat; nothing is\n"
		"attached): MSG/S messages read per second for a ring, "
		"published\n"
		"for a topic, writes for a buffer or array, sets for an event; "
		"MB/S\n"
		"bytes read (a topic: published) per second (10^6); WAITS/S "
		"writers\n"
		"that found a ring full plus readers that found it empty (a "
		"topic:\n"
		"publishers that found no room plus subscribers that found "
		"nothing),\n"
		"or an event's waits that returned; LAG a ring's messages "
		"waiting, a\n"
		"topic's slowest subscriber's; ALIVE the participants alive.  "
		"A kind\n"
		"without these columns gets every counter's rate.  On a "
		"terminal\n"
		"the table is redrawn in place; otherwise one line per object "
		"per\n"
		"tick.  Ctrl-C (or SIGTERM) ends it and leaves the terminal as "
		"it\n"
		"was.\n"
		"\n"
		"  --interval MS  time between looks (default 1000)\n"
		"  --count N      stop after N ticks (default: run until "
		"stopped)",
	.run = run_watch,
};
