/* SPDX-License-Identifier: MIT */
/*
 * xfer.c - what send, recv, pub and sub share: their options, the open
 * of the ring or topic, waiting and the errors of waiting.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmk.h"

#include "cli.h"
#include "object.h"
#include "signals.h"
#include "xfer.h"

/* send's input and recv's output buffer: one command runs per process. */
char xfer_iobuf[IO_BUF];

/* The options of each command, by their codes in xfer_options(). */
static const char *xfer_allowed(const char *cmd)
{
	if (!strcmp(cmd, "send"))
		return "cfCnsmtNT";
	if (!strcmp(cmd, "recv"))
		return "cfCnsmtT";
	if (!strcmp(cmd, "pub"))
		return "cfKXLmtNS";
	return "cfHlt"; /* sub */
}

/* sub --history: a count, or "all" (-1). */
static int parse_history(const char *cmd, const char *s, void *val)
{
	int *out = val;
	char *end;
	long v;

	if (!strcmp(s, "all")) {
		*out = -1;
		return 0;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > INT32_MAX)
		return bad_value(cmd, "history", s,
				 "a number of messages, or all");
	*out = (int)v;
	return 0;
}

/* Parses the options of send, recv, pub or sub.  Returns an exit status
 * to return at once, or -1 to go on. */
int xfer_options(struct xfer *x, int argc, char **argv)
{
	/* Each row's code in xfer_allowed(). */
	static const char codes[] = "cfCnsmtNKXLSHlT";
	const char *cmd = x->cmd, *allowed = xfer_allowed(cmd);
	int rc, pub = !strcmp(cmd, "pub");
	unsigned given = 0, i;
	/*
	 * One table for the four commands, so that abbreviations and
	 * messages are the same in each: an option of another of them is
	 * refused here as unknown.
	 */
	struct opt opts[] = {
		{"chunk", .type = OPT_SIZE, .val = &x->chunk, .min = 1,
		 .max = INT64_C(1) << 40, .flag = &x->mode, .to = MODE_CHUNKS},
		{"frames", .type = OPT_FLAG, .flag = &x->mode,
		 .to = MODE_FRAMES},
		{"create", .type = OPT_FLAG, .flag = &x->create, .to = 1},
		{"nodes", .type = OPT_SIZE, .val = &x->nodes, .min = 2,
		 .max = UINT32_MAX, .bit = X_GEOM},
		{"node-size", .type = OPT_SIZE, .val = &x->node_size, .min = 1,
		 .max = INT64_C(1) << 40, .bit = X_GEOM},
		{"mode", .type = OPT_MODE, .val = &x->mode_bits, .bit = X_GEOM},
		{"timeout", .type = OPT_INT, .val = &x->timeout_ms, .min = -1,
		 .max = INT32_MAX},
		{"no-shutdown", .type = OPT_FLAG, .flag = &x->shutdown,
		 .to = 0},
		{"capacity", .type = OPT_CAPACITY, .val = &x->capacity,
		 .bit = G_CAPACITY},
		{"max-msg", .type = OPT_SIZE, .val = &x->max_msg, .min = 1,
		 .max = INT64_C(1) << 33, .bit = G_MAX_MSG},
		{"lossy", .type = OPT_FLAG, .bit = G_LOSSY, .flag = &x->lossy,
		 .to = 1},
		{"subscribers", .type = OPT_INT, .val = &x->subscribers,
		 .min = 0, .max = 128},
		{"history", .type = OPT_FUNC, .val = &x->history,
		 .bit = X_HISTORY, .parse = parse_history},
		{"latest", .type = OPT_FLAG, .flag = &x->latest, .to = 1},
		{"topic", .type = OPT_FLAG,
		 .refuse = "a topic has commands of its own: 'shmk pub NAME' "
			   "publishes to it, 'shmk sub NAME' subscribes to it"},
		{.name = NULL},
	};

	for (i = 0; opts[i].name; i++)
		if (!strchr(allowed, codes[i]))
			opts[i].refuse = "";
	x->topic = pub || !strcmp(cmd, "sub");
	x->mode = MODE_LINES;
	x->nodes = 64;
	x->node_size = 65536;
	x->capacity = TOPIC_CAP;
	x->mode_bits = 0600;
	x->timeout_ms = -1;
	x->shutdown = pub || !strcmp(cmd, "send");
	rc = parse_opts(cmd, argc, argv, opts, &given);
	if (rc >= 0)
		return rc;
	x->given = given & (G_CAPACITY | G_MAX_MSG | G_LOSSY);
	if (argc - optind != 1) {
		usage_error(cmd, argc != optind ? "takes one NAME"
				 : x->topic ? "which topic? (a NAME is needed)"
					    : "which ring? (a NAME is needed)");
		return EXIT_USAGE;
	}
	if ((given & X_GEOM) && !x->create && !x->topic) {
		usage_error(cmd, "--nodes, --node-size and --mode need "
				 "--create");
		return EXIT_USAGE;
	}
	if (x->latest && (given & X_HISTORY)) {
		usage_error(cmd, "--latest reads the newest message without "
				 "subscribing: it takes no --history");
		return EXIT_USAGE;
	}
	if (pub && topic_max_msg(cmd, x->capacity, !!(x->given & G_MAX_MSG),
				 &x->max_msg) < 0)
		return EXIT_USAGE;
	x->name = argv[optind];
	return -1;
}

/* An -EPROTO at open: say what is there instead. */
static void xfer_mismatch(const struct xfer *x)
{
	static struct shmk_stat st;
	int rc = shmk_stat(x->name, &st);
	int want = x->topic ? SHMK_KIND_TOPIC : SHMK_KIND_RING;
	char kind[32], ak[48];

	if (!rc && st.kind != want) {
		errf(x->cmd, x->name, "is %s, not a %s",
		     a_kind(kind_str(st.kind, kind, sizeof(kind)), ak,
			    sizeof(ak)),
		     x->topic ? "topic" : "ring");
	} else if (!rc && x->create && st.ngeom >= 2) {
		errf(x->cmd, x->name,
		     "exists as a ring of %llu nodes of %llu bytes, not the "
		     "%llu nodes of %llu bytes asked for",
		     (unsigned long long)st.geom[0],
		     (unsigned long long)st.geom[1],
		     (unsigned long long)x->nodes,
		     (unsigned long long)x->node_size);
	} else {
		err_rc(x->cmd, x->name, -EPROTO); /* another format version */
	}
}

/* Reports the error of an open or create that returned rc, if any. */
static void open_error(const struct xfer *x, int rc)
{
	if (rc == -EPROTO)
		xfer_mismatch(x);
	else if (rc < 0)
		err_rc(x->cmd, x->name, rc);
}

/*
 * pub: opens the topic, or creates it if there is none (pub is then its
 * creator, and its exit shuts the topic down, --no-shutdown or not).  An
 * existing topic must have the geometry options given.  Returns 0, or -1
 * once the error has been reported.
 */
static int pub_open(struct xfer *x)
{
	struct shmk_opts o = {0};
	uint64_t have[3], want[3];
	char hs[128], ws[128];
	int rc = -ENOENT, tries, i, made = 0, same = 1;

	o.mode = x->mode_bits;
	o.flags = x->lossy ? SHMK_F_LOSSY : 0;
	/* Made by another between our open and our create: open it. */
	for (tries = 0; tries < 100; tries++) {
		rc = shmk_topic_open(x->name, NULL, &x->t);
		if (rc != -ENOENT)
			break;
		rc = shmk_topic_create(x->name, (size_t)x->capacity,
				       (size_t)x->max_msg, &o, &x->t);
		made = !rc;
		if (rc != -EEXIST)
			break;
	}
	open_error(x, rc);
	if (rc < 0)
		return -1;
	have[0] = shmk_topic_capacity(x->t);
	have[1] = shmk_topic_max_msg(x->t);
	have[2] = (uint64_t)shmk_topic_lossy(x->t);
	want[0] = x->capacity;
	want[1] = x->max_msg;
	want[2] = (uint64_t)x->lossy;
	for (i = 0; i < 3; i++) {
		if (!(x->given & (1u << i)))
			want[i] = have[i];
		same = same && want[i] == have[i];
	}
	if (!made && !same) {
		errf(x->cmd, x->name,
		     "exists as a topic of %s, not the %s asked for",
		     geom_of(SHMK_KIND_TOPIC, have, 3,
			     have[2] ? SHMK_F_LOSSY : 0, hs, sizeof(hs)),
		     geom_of(SHMK_KIND_TOPIC, want, 3,
			     want[2] ? SHMK_F_LOSSY : 0, ws, sizeof(ws)));
		shmk_topic_close(x->t);
		x->t = NULL;
		return -1;
	}
	return 0;
}

int xfer_open(struct xfer *x)
{
	struct shmk_opts o = {0};
	int rc;

	if (!strcmp(x->cmd, "pub")) {
		rc = pub_open(x);
	} else {
		o.wait_ms = x->timeout_ms;
		if (x->topic) {
			rc = shmk_topic_open(x->name, &o, &x->t);
		} else if (x->create) {
			o.mode = x->mode_bits;
			o.flags = SHMK_F_OPEN_OR_CREATE;
			rc = shmk_ring_create(x->name, (size_t)x->nodes,
					      (size_t)x->node_size, &o, &x->r);
		} else {
			rc = shmk_ring_open(x->name, &o, &x->r);
		}
		open_error(x, rc);
	}
	if (rc < 0)
		return -1;
	if (!x->topic) {
		x->node = shmk_ring_node_size(x->r);
		return 0;
	}
	x->node = shmk_topic_max_msg(x->t);
	if (strcmp(x->cmd, "pub") != 0)
		x->lossy = shmk_topic_lossy(x->t);
	/* pub builds messages here; sub copies out a lossy topic's, and
	 * the latest. */
	if (!strcmp(x->cmd, "pub") || x->lossy || x->latest) {
		x->buf = malloc(x->node);
		if (!x->buf) {
			err_rc(x->cmd, "memory for a message", -ENOMEM);
			shmk_topic_close(x->t);
			x->t = NULL;
			return -1;
		}
	}
	return 0;
}

void xfer_close(struct xfer *x)
{
	if (x->topic)
		shmk_topic_close(x->t);
	else
		shmk_ring_close(x->r);
	free(x->buf);
}

int op_reserve(struct xfer *x, int t)
{
	return shmk_ring_reserve(x->r, &x->m, t);
}

int op_acquire(struct xfer *x, int t)
{
	return shmk_ring_acquire(x->r, &x->m, t);
}

int op_publish(struct xfer *x, int t)
{
	return shmk_topic_publish(x->t, x->buf, x->fill, t);
}

/* A lossless topic's message is read in place, held until it is written
 * out; a lossy topic's is copied out first, as a publisher may overwrite
 * it in place meanwhile (the receive checks the copy). */
int op_take(struct xfer *x, int t)
{
	ssize_t n;

	if (!x->lossy)
		return shmk_topic_acquire(x->t, &x->m, t);
	n = shmk_topic_receive(x->t, x->buf, x->node, t);
	if (n < 0)
		return (int)n;
	x->m.data = x->buf;
	x->m.len = (size_t)n;
	return 0;
}

/*
 * sub: says on standard error how many messages the laps not said yet
 * lost, and where in the output; at most once a second (a subscriber
 * lapped over and over would flood it) unless final.
 */
void sub_tell(struct xfer *x, int final)
{
	uint64_t lost = shmk_topic_lost(x->t), now = now_ms(), n;
	char all[64] = "";

	if (!x->laps || (!final && now < x->tell_ms))
		return;
	n = lost - x->lost_told;
	if (x->lost_told)
		snprintf(all, sizeof(all), " (%llu lost in all)",
			 (unsigned long long)lost);
	if (x->laps == 1)
		errf(x->cmd, x->name,
		     "lapped: lost %llu message(s) before message %llu of the "
		     "output%s",
		     (unsigned long long)n,
		     (unsigned long long)x->lap_first + 1, all);
	else
		errf(x->cmd, x->name,
		     "lapped %llu times, before messages %llu to %llu of the "
		     "output: lost %llu message(s)%s",
		     (unsigned long long)x->laps,
		     (unsigned long long)x->lap_first + 1,
		     (unsigned long long)x->lap_last + 1, (unsigned long long)n,
		     all);
	x->lost_told = lost;
	x->laps = 0;
	x->tell_ms = now + 1000;
}

/* sub: a lossy topic lapped us (the receive said -EOVERFLOW, and the
 * next one gives the oldest message still held). */
void sub_lapped(struct xfer *x)
{
	if (!x->laps++)
		x->lap_first = x->nmsg;
	x->lap_last = x->nmsg;
	sub_tell(x, 0);
}

/*
 * Runs a blocking operation until it is done, x->timeout_ms (-1: never)
 * has passed, or a stopping signal came: the signal handler wakes the
 * handle (shmk_*_wake), and the operation returns -ECANCELED.  sub waits
 * at most a second at a time while it has laps to tell.  Returns as the
 * operation, -ETIMEDOUT, or -EINTR on a signal.
 */
int xfer_wait(struct xfer *x, xfer_op op)
{
	uint64_t end =
		x->timeout_ms < 0 ? 0 : now_ms() + (uint64_t)x->timeout_ms;
	int rc, t;

	for (;;) {
		if (g_signal)
			return -EINTR;
		t = x->timeout_ms;
		if (x->timeout_ms >= 0) {
			uint64_t now = now_ms();

			t = now >= end ? 0 : (int)(end - now);
		}
		if (x->laps && (t < 0 || t > 1000))
			t = 1000; /* sub: laps not said yet, a second on */
		rc = op(x, t);
		if (rc == -ECANCELED)
			continue; /* a signal: seen above */
		if (rc != -ETIMEDOUT && rc != -EAGAIN)
			return rc;
		if (x->laps)
			sub_tell(x, 0);
		if (x->timeout_ms >= 0 && now_ms() >= end)
			return -ETIMEDOUT;
	}
}

/* Reports the error rc of an operation on the ring or topic; returns
 * -1. */
int xfer_error(struct xfer *x, int rc)
{
	const char *what = x->topic ? "topic" : "ring";
	int out = !strcmp(x->cmd, "send") || !strcmp(x->cmd, "pub");
	struct shmk_topic_stats s;

	if (rc == -EPIPE)
		errf(x->cmd, x->name,
		     "the %s is shut down, nothing more can be %s (it "
		     "stays shut down: remove it with 'shmk rm %s')",
		     what, x->topic ? "published" : "sent", x->name);
	else if (rc == -ETIMEDOUT && x->topic && out &&
		 !shmk_topic_stats(x->t, &s) && !s.lossy && s.subscribers)
		/* Lossless: who holds the topic up. */
		errf(x->cmd, x->name,
		     "no room within %d ms: the slowest subscriber, pid "
		     "%llu, is %llu message(s) behind",
		     x->timeout_ms, (unsigned long long)s.slowest_pid,
		     (unsigned long long)s.slowest_lag);
	else if (rc == -ETIMEDOUT)
		errf(x->cmd, x->name, "%s within %d ms",
		     !out	? "no message"
		     : x->topic ? "no room"
				: "no free node",
		     x->timeout_ms);
	else if (rc == -EINTR)
		errf(x->cmd, x->name, "interrupted (%s)", strsignal(g_signal));
	else
		err_rc(x->cmd, x->name, rc);
	return -1;
}

const char *unit_name(const struct xfer *x)
{
	return x->mode == MODE_LINES	? "line"
	       : x->mode == MODE_CHUNKS ? "chunk"
					: "frame";
}

/* What bounds a message: "a node", "the topic's max_msg". */
const char *bound_name(const struct xfer *x)
{
	return x->topic ? "the topic's max_msg" : "a node";
}
