/* SPDX-License-Identifier: MIT */
/*
 * transport.h - the contract between `shmk bench` (bench/shmk_bench/)
 * and a transport: shmk itself, a pipe, a socket, or a peer library
 * built as a plugin in bench/peers/.
 *
 * A measurement runs one channel from a sending process (TX) to a
 * receiving process (RX); a round trip runs two channels, one each way.
 * The harness:
 *
 *   1. fills in a struct bt_chan (a unique name, the message size, the
 *      depth) and calls setup() in the parent;
 *   2. forks the two processes; each calls open() with its role, then
 *      both wait at a barrier (so a subscriber is there before the first
 *      message);
 *   3. TX sends messages of exactly msg_size bytes (send(), or loan() +
 *      publish() where the transport offers zero copy); RX receives them
 *      (recv(), or take() + release()) and verifies every one;
 *   4. each process calls close(); the parent calls teardown() after both
 *      ended (also after a failure or a kill: remove every name made).
 *
 * The topic section fans a channel out: one TX process and c->receivers
 * RX processes (1, 2 or 4), each of which must receive every message, in
 * order (publish/subscribe).  Only transports whose fanout is 1 are given
 * more than one receiver; each RX process finds its number, 0 to
 * receivers - 1, in c->rx_index when it calls open().
 *
 * Every message of a run has the same size, so a byte-stream transport
 * (a pipe, a stream socket) reads exactly msg_size bytes per message and
 * needs no framing.  Functions return 0 (recv: the length) or -errno;
 * on a failure they may write a reason into c->why.  A transport that
 * cannot carry a size returns -EMSGSIZE from setup() with c->why saying
 * why (the table then shows "n/a").
 *
 * A plugin is a shared object exporting
 *
 *	const struct bt_transport *shmk_bench_transport(void);
 *
 * loaded from the directory in $SHMK_BENCH_PEERS, else "peers/" beside
 * the shmk-bench program, else $libdir/shmk/bench-peers.
 */
#ifndef SHMK_BENCH_TRANSPORT_H
#define SHMK_BENCH_TRANSPORT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BT_ABI 2 /* 2: receivers, rx_index and fanout */

enum bt_role { BT_TX = 0, BT_RX = 1 };

struct bt_chan {
	/* Set by the harness before setup(). */
	char name[64];	 /* unique, [a-z0-9._], usable in paths and URLs */
	size_t msg_size; /* every message of the run has this size */
	unsigned depth;	 /* messages the channel should buffer (20) */
	/* The transport's own. */
	void *priv;	   /* set by setup(); both children inherit it */
	void *local;	   /* set by open(), in a child */
	long arg;	   /* free for the transport */
	char why[160];	   /* a reason for the table, on failure */
	const char *label; /* optional: a label for this run, e.g. for
			      a mode chosen by setup() */
	/* Set by the harness: RX processes (1 but for a fan-out), and in
	 * each RX process before open(), its number. */
	unsigned receivers, rx_index;
};

struct bt_transport {
	unsigned abi;	   /* BT_ABI */
	const char *name;  /* for --transports, e.g. "zmq" */
	const char *label; /* for tables, e.g. "ZeroMQ ipc://" */
	/* Parent, before fork.  May be NULL. */
	int (*setup)(struct bt_chan *c);
	/* In the child. */
	int (*open)(struct bt_chan *c, enum bt_role role);
	int (*send)(struct bt_chan *c, const void *msg, size_t len);
	long (*recv)(struct bt_chan *c, void *buf, size_t cap);
	/* Zero copy, optional (all four or none).  loan returns a buffer of
	 * len bytes to fill, or NULL (errno set); take returns the next
	 * message in place and its length, or NULL (errno set). */
	void *(*loan)(struct bt_chan *c, size_t len);
	int (*publish)(struct bt_chan *c, size_t len);
	const void *(*take)(struct bt_chan *c, size_t *len);
	int (*release)(struct bt_chan *c);
	/* In the child.  May be NULL. */
	void (*close)(struct bt_chan *c, enum bt_role role);
	/* Parent, after both children ended.  May be NULL. */
	void (*teardown)(struct bt_chan *c);
	/* 1: every one of several RX processes receives every message (the
	 * topic section); 0: one receiver only. */
	int fanout;
};

typedef const struct bt_transport *(*bt_entry_fn)(void);

/* A plugin's entry point, the only symbol it exports: a plugin ends with
 * BT_PLUGIN(its_transport). */
__attribute__((visibility("default"))) const struct bt_transport *
shmk_bench_transport(void);

#define BT_PLUGIN(t)                                                           \
	const struct bt_transport *shmk_bench_transport(void)                  \
	{                                                                      \
		return &(t);                                                   \
	}

#ifdef __cplusplus
}
#endif

#endif /* SHMK_BENCH_TRANSPORT_H */
