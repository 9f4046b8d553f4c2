/* SPDX-License-Identifier: MIT */
/*
 * recv, sub: a ring's or a topic's messages to standard output.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmk.h"

#include "cli.h"
#include "object.h"
#include "signals.h"
#include "xfer.h"

/* Writes message m to standard output in x's mode. */
static int recv_put(struct xfer *x, const struct shmk_msg *m)
{
	unsigned char pre[4];

	if (x->mode == MODE_FRAMES) {
		if (m->len > UINT32_MAX) {
			errf(x->cmd, x->name,
			     "message %llu is %zu bytes, too long for a "
			     "frame's 4-byte length: not written",
			     (unsigned long long)x->nmsg + 1, m->len);
			return -1;
		}
		pre[0] = (unsigned char)m->len;
		pre[1] = (unsigned char)(m->len >> 8);
		pre[2] = (unsigned char)(m->len >> 16);
		pre[3] = (unsigned char)(m->len >> 24);
		if (fwrite(pre, 1, 4, stdout) != 4)
			goto fail;
	}
	if (m->len && fwrite(m->data, 1, m->len, stdout) != m->len)
		goto fail;
	if (x->mode == MODE_LINES && putchar('\n') == EOF)
		goto fail;
	return 0;
fail:
	err_rc(x->cmd, "standard output", -errno);
	return -1;
}

/* Hands the message taken back: a ring's node, a lossless topic's place
 * (a lossy topic's was copied out). */
static void recv_release(struct xfer *x)
{
	if (!x->topic)
		shmk_ring_release(x->r, &x->m);
	else if (!x->lossy)
		shmk_topic_release(x->t, &x->m);
}

/* sub --latest: the newest message held, without subscribing. */
static int sub_latest(struct xfer *x)
{
	ssize_t n = shmk_topic_latest(x->t, x->buf, x->node);

	if (n == -EAGAIN) {
		errf(x->cmd, x->name, "holds no message");
		return EXIT_FAIL;
	}
	if (n < 0) {
		err_rc(x->cmd, x->name, (int)n);
		return EXIT_FAIL;
	}
	x->m.data = x->buf;
	x->m.len = (size_t)n;
	if (recv_put(x, &x->m) < 0)
		return EXIT_FAIL;
	if (fflush(stdout) == EOF) {
		err_rc(x->cmd, "standard output", -errno);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* recv, sub: a ring's or a topic's messages to standard output. */
static int xfer_recv(const char *cmd, int argc, char **argv)
{
	struct xfer x = {.cmd = cmd};
	int rc, status = EXIT_FAIL;
	xfer_op take;

	rc = xfer_options(&x, argc, argv);
	if (rc >= 0)
		return rc;
	if (xfer_open(&x) < 0)
		return EXIT_FAIL;
	/* A full buffer, flushed whenever the ring runs empty: batches
	 * under load, prompt when idle. */
	setvbuf(stdout, xfer_iobuf, _IOFBF, sizeof(xfer_iobuf));
	signal(SIGPIPE, SIG_IGN); /* a closed pipe is an error to report */
	if (x.latest) {
		status = sub_latest(&x);
		goto out;
	}
	if (x.topic) {
		rc = shmk_topic_subscribe(x.t, x.history);
		if (rc == -EPIPE) {
			status = EXIT_OK; /* shut down: nothing to take */
			goto out;
		}
		if (rc < 0) {
			err_rc(cmd, x.name, rc);
			goto out;
		}
	}
	take = x.topic ? op_take : op_acquire;
	wake_on_signal(x.r, x.t);
	catch_signals(0);
	for (;;) {
		rc = take(&x, 0);
		if (rc == -EAGAIN) {
			if (fflush(stdout) == EOF) {
				err_rc(cmd, "standard output", -errno);
				goto out;
			}
			rc = xfer_wait(&x, take);
		}
		if (rc == -EOVERFLOW && x.topic) {
			sub_lapped(&x);
			continue;
		}
		if (rc == -EPIPE) /* shut down and drained: the end */
			break;
		if (rc < 0) {
			xfer_error(&x, rc);
			goto out;
		}
		rc = recv_put(&x, &x.m);
		recv_release(&x);
		if (rc < 0)
			goto out;
		x.nmsg++;
		if (x.laps)
			sub_tell(&x, 0);
		if (g_signal) {
			xfer_error(&x, -EINTR);
			goto out;
		}
	}
	if (fflush(stdout) == EOF)
		err_rc(cmd, "standard output", -errno);
	else
		status = EXIT_OK;
out:
	wake_on_signal(NULL, NULL);
	if (x.topic)
		sub_tell(&x, 1);
	xfer_close(&x);
	return status;
}

static int run_recv(int argc, char **argv)
{
	return xfer_recv("recv", argc, argv);
}

static int run_sub(int argc, char **argv)
{
	return xfer_recv("sub", argc, argv);
}

const struct cmd cmd_recv = {
	.name = "recv",
	.args = "[OPTIONS] NAME",
	.summary = "a ring to standard output",
	.help = "Takes messages from the ring NAME and writes them to "
		"standard\n"
		"output, each as send reads it in the same mode: a line (the\n"
		"message and a newline), raw bytes (--chunk), or a frame "
		"(--frames:\n"
		"4-byte little-endian length, then the bytes).  When the ring "
		"is\n"
		"shut down and drained recv exits 0.  A ring stays shut down "
		"once it\n"
		"is: remove it ('shmk rm NAME') before using the name again.  "
		"Each\n"
		"message is taken from the ring as it is written out: with "
		"several\n"
		"readers, each gets some of the messages.\n"
		"\n"
		"  --chunk SIZE      write messages as raw bytes (SIZE, as "
		"send's,\n"
		"                    is checked but not needed to write them)\n"
		"  --frames          write length-prefixed frames\n" XFER_HELP(
			"a message"),
	.run = run_recv,
};

const struct cmd cmd_sub = {
	.name = "sub",
	.args = "[OPTIONS] NAME",
	.summary = "a topic to standard output",
	.help = "Subscribes to the topic NAME and writes each message "
		"published to\n"
		"it from then on to standard output, as 'shmk recv' writes a "
		"ring's:\n"
		"a line (the message and a newline), raw bytes (--chunk) or a "
		"frame\n"
		"(--frames).  Every subscriber gets every message, in the one "
		"order\n"
		"they all see.  If NAME does not exist yet, sub waits for it.  "
		"When\n"
		"the topic is shut down and drained, sub exits 0.\n"
		"\n"
		"A lossless topic waits for its slowest subscriber ('shmk "
		"info' "
		"names\n"
		"it).  A lossy topic overwrites what a subscriber has not "
		"taken yet:\n"
		"sub then says on standard error how many messages it lost and "
		"before\n"
		"which message of its output, and goes on from the oldest "
		"still held\n"
		"(one such line a second at most, the rest at the end).  The "
		"exit\n"
		"status stays 0: losing the oldest is a lossy topic's policy.\n"
		"\n"
		"  --history K|all  first the last K messages the topic still "
		"holds\n"
		"                   (all: every one), then the new ones "
		"(default 0)\n"
		"  --latest         write the newest message held and exit, "
		"without\n"
		"                   subscribing (exit 1 if it holds none)\n"
		"  --chunk SIZE     write messages as raw bytes\n"
		"  --frames         write length-prefixed frames\n"
		"  --timeout MS     how long to wait for the topic to appear "
		"and for\n"
		"                   each message; -1 (the default) waits "
		"forever, 0\n"
		"                   does not wait",
	.run = run_sub,
};
