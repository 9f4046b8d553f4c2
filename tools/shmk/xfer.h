/* SPDX-License-Identifier: MIT */
/*
 * xfer.h - what send, recv (a ring) and pub, sub (a topic) share: the
 * state of one transfer, its options, the open, the waits and the
 * errors.  xfer.c has them; cmd_send.c and cmd_recv.c the commands.
 */
#ifndef SHMK_TOOL_XFER_H
#define SHMK_TOOL_XFER_H

#include <stddef.h>
#include <stdint.h>

#include "shmk.h"

#define IO_BUF (1u << 20) /* send's and recv's stdio buffers */

enum { MODE_LINES, MODE_CHUNKS, MODE_FRAMES };

/* pub's geometry options given, a bit each, in geometry order. */
enum { G_CAPACITY = 1u << 0, G_MAX_MSG = 1u << 1, G_LOSSY = 1u << 2 };
/* And the others xfer_options() looks at once they are all parsed. */
enum { X_GEOM = 1u << 3, X_HISTORY = 1u << 4 };

struct xfer {
	const char *cmd, *name;
	int topic; /* pub, sub: the object is a topic */
	int mode;
	uint64_t chunk; /* MODE_CHUNKS: bytes per message */
	int create, shutdown;
	uint64_t nodes, node_size;  /* --create's geometry */
	uint64_t capacity, max_msg; /* pub: the geometry of a new topic */
	int lossy;		    /* pub: a new topic's; sub: the topic's */
	unsigned given;		    /* pub: the G_* options given */
	int subscribers;	    /* pub: wait for that many */
	int history, latest;	    /* sub */
	unsigned mode_bits;
	int timeout_ms; /* -1: wait forever */
	struct shmk_ring *r;
	struct shmk_topic *t;
	size_t node;   /* the longest message: a ring's node size, a
			  topic's max_msg */
	uint64_t nmsg; /* messages sent or received */
	/* send: the message being filled, reserved in the ring (pub: in
	 * buf); recv, sub: the message taken */
	struct shmk_msg m;
	int open;
	size_t fill;
	unsigned char hdr[4]; /* MODE_FRAMES: the length prefix */
	int nhdr;
	size_t flen;
	char *buf; /* pub: the message being built; sub: a lossy topic's
		      message copied out, or the latest */
	/* sub: losses said so far; laps not said yet, and the messages
	 * written out before the first and the last of them */
	uint64_t lost_told, laps, lap_first, lap_last;
	uint64_t tell_ms; /* no word about laps before then */
};

/* The options send and recv share; what is waited for each message. */
#define XFER_HELP(what)                                                        \
	"  --create          create the ring if it does not exist (either "    \
	"side may;\n"                                                          \
	"                    both sides must then give the same geometry)\n"   \
	"  --nodes N         with --create: nodes in the ring (default 64)\n"  \
	"  --node-size SIZE  with --create: bytes per node (default 64K)\n"    \
	"  --mode OCTAL      with --create: permission bits (default 0600)\n"  \
	"  --timeout MS      how long to wait for the ring to appear and, "    \
	"for each\n"                                                           \
	"                    message, for " what "; -1 (the default)\n"        \
	"                    waits forever, 0 does not wait"

/* send's input and recv's output buffer: one command runs per process. */
extern char xfer_iobuf[IO_BUF];

/* Parses the options of send, recv, pub or sub (x->cmd).  Returns an
 * exit status to return at once, or -1 to go on. */
int xfer_options(struct xfer *x, int argc, char **argv);
/* Opens (or creates) the ring or topic.  Returns 0, or -1 once the error
 * has been reported. */
int xfer_open(struct xfer *x);
/* Closes the ring or topic and frees the buffer. */
void xfer_close(struct xfer *x);

/* One try of what a command waits for (a free node, a message, room in
 * a topic), waiting at most t ms. */
typedef int (*xfer_op)(struct xfer *x, int t);
int op_reserve(struct xfer *x, int t);
int op_acquire(struct xfer *x, int t);
int op_publish(struct xfer *x, int t);
int op_take(struct xfer *x, int t);
/* Runs op until it is done, the timeout passed or a stopping signal
 * came; returns as op, -ETIMEDOUT or -EINTR. */
int xfer_wait(struct xfer *x, xfer_op op);
/* Reports the error rc of an operation on the ring or topic; returns
 * -1. */
int xfer_error(struct xfer *x, int rc);

/* sub: tells how many messages the laps lost (final: now, else at most
 * once a second); a lossy topic lapped us. */
void sub_tell(struct xfer *x, int final);
void sub_lapped(struct xfer *x);

/* "line", "chunk" or "frame"; what bounds a message. */
const char *unit_name(const struct xfer *x);
const char *bound_name(const struct xfer *x);

#endif
