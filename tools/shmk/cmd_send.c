/* SPDX-License-Identifier: MIT */
/*
 * send, pub: standard input into a ring, or to a topic's subscribers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmk.h"

#include "cli.h"
#include "object.h"
#include "signals.h"
#include "xfer.h"

/*
 * Starts the next message: a node reserved in the ring or, for a topic,
 * buf.  A topic's message is published whole: a loan held while input
 * trickles in would hold back every message loaned after it, other
 * publishers' too.
 */
static int send_begin(struct xfer *x)
{
	int rc;

	if (x->topic) {
		x->m.data = x->buf;
		x->m.len = x->node;
	} else {
		rc = xfer_wait(x, op_reserve);
		if (rc < 0)
			return xfer_error(x, rc);
	}
	x->open = 1;
	x->fill = 0;
	return 0;
}

static int send_commit(struct xfer *x)
{
	int rc;

	if (x->topic) {
		rc = xfer_wait(x, op_publish);
	} else {
		x->m.len = x->fill;
		rc = shmk_ring_commit(x->r, &x->m);
	}
	if (rc < 0)
		return xfer_error(x, rc);
	x->open = 0;
	x->nmsg++;
	return 0;
}

static int too_long(struct xfer *x, const char *len)
{
	errf(x->cmd, x->name,
	     "%s %llu%s is longer than %s (%zu bytes): not sent, and "
	     "nothing is ever truncated",
	     unit_name(x), (unsigned long long)x->nmsg + 1, len, bound_name(x),
	     x->node);
	return -1;
}

/* Feeds n bytes of standard input to the message(s) being built. */
static int send_bytes(struct xfer *x, const char *p, size_t n)
{
	const char *end = p + n, *nl;
	size_t take;
	char len[48];

	while (p < end) {
		if (x->mode == MODE_FRAMES && x->nhdr < 4) {
			take = (size_t)(end - p) < (size_t)(4 - x->nhdr)
				       ? (size_t)(end - p)
				       : (size_t)(4 - x->nhdr);
			memcpy(x->hdr + x->nhdr, p, take);
			x->nhdr += (int)take;
			p += take;
			if (x->nhdr < 4)
				break;
			x->flen = (size_t)x->hdr[0] | (size_t)x->hdr[1] << 8 |
				  (size_t)x->hdr[2] << 16 |
				  (size_t)x->hdr[3] << 24;
			if (x->flen > x->node) {
				snprintf(len, sizeof(len), " (%zu bytes)",
					 x->flen);
				return too_long(x, len);
			}
			if (send_begin(x) < 0)
				return -1;
		} else if (!x->open && send_begin(x) < 0) {
			return -1;
		}
		switch (x->mode) {
		case MODE_LINES:
			nl = memchr(p, '\n', (size_t)(end - p));
			take = (size_t)((nl ? nl : end) - p);
			if (take > x->node - x->fill)
				return too_long(x, "");
			memcpy((char *)x->m.data + x->fill, p, take);
			x->fill += take;
			p += take;
			if (nl) {
				p++;
				if (send_commit(x) < 0)
					return -1;
			}
			break;
		case MODE_CHUNKS:
		case MODE_FRAMES: {
			size_t want = x->mode == MODE_CHUNKS ? (size_t)x->chunk
							     : x->flen;

			take = want - x->fill;
			if (take > (size_t)(end - p))
				take = (size_t)(end - p);
			memcpy((char *)x->m.data + x->fill, p, take);
			x->fill += take;
			p += take;
			if (x->fill == want) {
				if (send_commit(x) < 0)
					return -1;
				x->nhdr = 0;
			}
			break;
		}
		}
	}
	return 0;
}

/* End of input: the last line or chunk goes as it is; a frame must be
 * whole. */
static int send_eof(struct xfer *x)
{
	if (x->mode == MODE_FRAMES && x->nhdr < 4 && x->nhdr) {
		errf(x->cmd, x->name,
		     "frame %llu is truncated: input ended after %d of its 4 "
		     "length bytes",
		     (unsigned long long)x->nmsg + 1, x->nhdr);
		return -1;
	}
	if (x->mode == MODE_FRAMES && x->open) {
		errf(x->cmd, x->name,
		     "frame %llu is truncated: input ended after %zu of its "
		     "%zu bytes",
		     (unsigned long long)x->nmsg + 1, x->fill, x->flen);
		return -1;
	}
	return x->open ? send_commit(x) : 0;
}

/*
 * pub --subscribers N: waits until the topic has N live subscribers, up
 * to --timeout; each subscription wakes the wait, and the signal handler's
 * shmk_topic_wake() ends it.  Returns 0, or -1 once the error has been
 * reported.
 */
static int pub_wait_subscribers(struct xfer *x)
{
	struct shmk_topic_stats s;
	int rc;

	/* --subscribers is at most 128 (xfer.c). */
	rc = shmk_topic_wait_subscribers(x->t, (unsigned)x->subscribers,
					 x->timeout_ms);
	if (rc == -ETIMEDOUT || rc == -EAGAIN) {
		if (shmk_topic_stats(x->t, &s) < 0)
			s.subscribers = 0;
		errf(x->cmd, x->name,
		     "%llu of the %d subscriber(s) waited for came within %d "
		     "ms",
		     (unsigned long long)s.subscribers, x->subscribers,
		     x->timeout_ms);
		return -1;
	}
	if (rc == -ECANCELED)
		rc = -EINTR;
	return rc < 0 ? xfer_error(x, rc) : 0;
}

/* send, pub: standard input into a ring, or to a topic's subscribers. */
static int xfer_send(const char *cmd, int argc, char **argv)
{
	struct xfer x = {.cmd = cmd};
	int rc, status = EXIT_FAIL;
	ssize_t n;

	rc = xfer_options(&x, argc, argv);
	if (rc >= 0)
		return rc;
	if (xfer_open(&x) < 0)
		return EXIT_FAIL;
	if (x.mode == MODE_CHUNKS && x.chunk > x.node) {
		errf(cmd, x.name, "--chunk %llu is larger than %s (%zu bytes)",
		     (unsigned long long)x.chunk, bound_name(&x), x.node);
		goto out;
	}
	wake_on_signal(x.r, x.t);
	catch_signals(0);
	if (x.subscribers && pub_wait_subscribers(&x) < 0)
		goto out;
	for (;;) {
		if (g_signal) {
			xfer_error(&x, -EINTR);
			goto out;
		}
		n = read(STDIN_FILENO, xfer_iobuf, sizeof(xfer_iobuf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_rc(cmd, "standard input", -errno);
			goto out;
		}
		if (n == 0)
			break;
		if (send_bytes(&x, xfer_iobuf, (size_t)n) < 0)
			goto out;
	}
	if (send_eof(&x) == 0)
		status = EXIT_OK;
out:
	if (x.open && !x.topic)
		shmk_ring_abort(x.r, &x.m);
	/* However send ends, readers are told: they drain and stop. */
	if (x.shutdown && x.topic)
		shmk_topic_shutdown(x.t);
	else if (x.shutdown)
		shmk_ring_shutdown(x.r);
	wake_on_signal(NULL, NULL);
	xfer_close(&x);
	return status;
}

static int run_send(int argc, char **argv)
{
	return xfer_send("send", argc, argv);
}

static int run_pub(int argc, char **argv)
{
	return xfer_send("pub", argc, argv);
}

const struct cmd cmd_send = {
	.name = "send",
	.args = "[OPTIONS] NAME",
	.summary = "standard input into a ring",
	.help = "Reads standard input and writes it into the ring NAME as\n"
		"messages: one per line by default (the newline is not sent; "
		"a\n"
		"last line without one is sent too).  A message longer than a "
		"node\n"
		"is an error that names the line, chunk or frame: nothing is "
		"ever\n"
		"truncated, and what came before it has been sent.\n"
		"\n"
		"At the end of input send shuts the ring down "
		"(shmk_ring_shutdown)\n"
		"so that readers take what is left and stop; it does so "
		"however it\n"
		"ends (an error, SIGINT, SIGTERM) unless --no-shutdown.  A "
		"shut-\n"
		"down ring stays shut down: later writers fail, later readers "
		"drain\n"
		"it and stop.  Remove it with 'shmk rm NAME' (or let the "
		"program\n"
		"that created it remove it) before using the name again.\n"
		"\n"
		"  --chunk SIZE      messages of SIZE bytes (K, M, G "
		"suffixes), the\n"
		"                    last one shorter if the input ends so\n"
		"  --frames          length-prefixed frames: a 4-byte "
		"little-endian\n"
		"                    length, then that many bytes\n"
		"  --no-shutdown     leave the ring open at the end (for a "
		"ring "
		"other\n"
		"                    writers still use; the creator's close "
		"shuts it\n"
		"                    down anyway, so with --create it has no "
		"effect\n"
		"                    when send made the ring: make a ring "
		"that\n"
		"                    outlives its sends with 'shmk create "
		"ring')\n" XFER_HELP("a free node"),
	.run = run_send,
};

const struct cmd cmd_pub = {
	.name = "pub",
	.args = "[OPTIONS] NAME",
	.summary = "standard input to a topic's subscribers",
	.help = "Reads standard input and publishes it to the topic NAME as\n"
		"messages, framed as 'shmk send' frames them: one per line by\n"
		"default (the newline is not sent), --chunk or --frames.  "
		"Every\n"
		"subscriber ('shmk sub') gets every message, in one order.  A "
		"message\n"
		"longer than the topic's max_msg is an error that names it: "
		"nothing\n"
		"is ever truncated, and what came before it has been "
		"published.\n"
		"\n"
		"If NAME does not exist, pub creates it (--capacity, "
		"--max-msg,\n"
		"--lossy, --mode) and is its creator.  If it exists, it must "
		"have\n"
		"the geometry options given.  A subscriber gets only what is\n"
		"published after it subscribed (unless it asks for history):\n"
		"--subscribers N waits for N of them before the first message. "
		" A\n"
		"lossless topic (the default) makes pub wait for its slowest\n"
		"subscriber; a lossy one overwrites what they have not taken.\n"
		"\n"
		"At the end of input pub shuts the topic down "
		"(shmk_topic_shutdown)\n"
		"so that subscribers take what is left and stop; it does so "
		"however\n"
		"it ends (an error, SIGINT, SIGTERM) unless --no-shutdown.  A "
		"shut-\n"
		"down topic stays shut down: remove it with 'shmk rm NAME' "
		"before\n"
		"using the name again.\n"
		"\n"
		"  --chunk SIZE       messages of SIZE bytes, the last one "
		"shorter "
		"if\n"
		"                     the input ends so\n"
		"  --frames           length-prefixed frames: a 4-byte "
		"little-endian\n"
		"                     length, then that many bytes\n"
		"  --subscribers N    wait for N live subscribers before the "
		"first\n"
		"                     message (default 0: do not wait)\n"
		"  --no-shutdown      leave the topic open at the end (no "
		"effect "
		"when\n"
		"                     pub created it: its creator's exit shuts "
		"it\n"
		"                     down; make one that outlives its "
		"publishers\n"
		"                     with 'shmk create topic')\n"
		"  --capacity SIZE    bytes of the log, a power of two from 4K "
		"to "
		"16G\n"
		"                     (default 4M)\n"
		"  --max-msg SIZE     the longest message, at most capacity / "
		"2\n"
		"                     (default 64K, or that if less)\n"
		"  --lossy            overwrite the oldest messages rather "
		"than wait\n"
		"                     for slow subscribers\n"
		"  --mode OCTAL       permission bits of a topic pub creates "
		"(default\n"
		"                     0600)\n"
		"  --timeout MS       how long to wait for the subscribers "
		"and, for\n"
		"                     each message, for room; -1 (the default) "
		"waits\n"
		"                     forever, 0 does not wait\n"
		"\n"
		"One producer into three consumers:\n"
		"  shmk sub feed > a & shmk sub feed > b & shmk sub feed > c "
		"&\n"
		"  seq 100000 | shmk pub --subscribers 3 feed\n"
		"  wait; shmk rm feed",
	.run = run_pub,
};
