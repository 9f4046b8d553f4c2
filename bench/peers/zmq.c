/* SPDX-License-Identifier: MIT */
/*
 * zmq.c - a `shmk bench` peer: ZeroMQ PUSH/PULL over ipc://.
 *
 * RX binds a PULL socket on a UNIX socket path made from the channel's
 * name; TX connects a PUSH socket to it.  Both high-water marks are the
 * channel's depth, and a PUSH socket at its mark blocks (it never drops),
 * so a full channel waits.
 *
 * Closing TX while RX has not read everything lost messages here even
 * with a linger (the last few hundred of a run of small ones), so TX
 * keeps its socket open until RX has disconnected, which it does once it
 * received every message; a socket monitor reports that.  The wait is
 * put off until the last channel of the process closes, because a round
 * trip has a TX and an RX channel in each process, and two processes each
 * waiting in their TX's close for the other's RX to close would wait for
 * each other.
 *
 * No zero-copy functions: the harness would then use them, and ZeroMQ's
 * message API (a zmq_msg_t per message, allocated by the library) measured
 * slower here than zmq_send()/zmq_recv() into the caller's buffers, three
 * times slower at 1 MiB.  The bytes cross a socket either way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "../shmk_bench/transport.h"

#define PEER_WAIT_MS 10000 /* how long TX waits for RX to go */
#define MAX_DEFERRED 16

/* Made by setup(), inherited by both children. */
struct zpriv {
	char path[108]; /* the UNIX socket path (sun_path) */
	char url[120];	/* "ipc://" path */
};

struct zlocal {
	void *sock;
	void *mon; /* TX: the socket monitor's events */
	int conns; /* TX: connections, from the monitor */
	int seen;  /* TX: was ever connected */
};

/*
 * One context per process, shared by its channels: a round trip opens two
 * channels in one process, and every context has its own I/O thread.
 */
static void *ctx;
static unsigned ctx_users;
static struct zlocal *deferred[MAX_DEFERRED]; /* TX sockets to close */
static unsigned ndeferred;

static const char *runtime_dir(void)
{
	const char *d = getenv("XDG_RUNTIME_DIR");

	return d && *d && access(d, W_OK) == 0 ? d : "/tmp";
}

static int zmq_setup(struct bt_chan *c)
{
	struct zpriv *p = calloc(1, sizeof(*p));
	int n;

	if (!p)
		return -ENOMEM;
	n = snprintf(p->path, sizeof(p->path), "%s/shmk-bench.%s.zmq",
		     runtime_dir(), c->name);
	if (n < 0 || (size_t)n >= sizeof(p->path)) {
		free(p);
		snprintf(c->why, sizeof(c->why), "socket path too long");
		return -ENAMETOOLONG;
	}
	snprintf(p->url, sizeof(p->url), "ipc://%s", p->path);
	unlink(p->path);
	c->priv = p;
	return 0;
}

static int fail(struct bt_chan *c, const char *what)
{
	int e = zmq_errno();

	snprintf(c->why, sizeof(c->why), "%s: %s", what, zmq_strerror(e));
	return e > 0 ? -e : -EIO;
}

static void ctx_put(void)
{
	if (ctx && --ctx_users == 0) {
		zmq_ctx_term(ctx);
		ctx = NULL;
	}
}

/* Starts TX's socket monitor: connections and disconnections. */
static int watch(struct bt_chan *c, struct zlocal *l)
{
	char url[96];

	snprintf(url, sizeof(url), "inproc://shmk-bench-mon.%s", c->name);
	if (zmq_socket_monitor(l->sock, url,
			       ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) <
	    0)
		return fail(c, "zmq_socket_monitor");
	l->mon = zmq_socket(ctx, ZMQ_PAIR);
	if (!l->mon)
		return fail(c, "zmq_socket");
	if (zmq_connect(l->mon, url) < 0)
		return fail(c, "zmq_connect (monitor)");
	return 0;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Waits until TX's peer has gone, or the deadline passed. */
static void wait_peer_gone(struct zlocal *l, const struct timespec *t0)
{
	zmq_pollitem_t it = {.socket = l->mon, .events = ZMQ_POLLIN};
	unsigned char ev[6];
	char addr[128];
	uint16_t e;
	long left;

	while (!l->seen || l->conns > 0) {
		left = PEER_WAIT_MS - ms_since(t0);
		if (left <= 0 || zmq_poll(&it, 1, left) <= 0)
			return;
		/* An event: 6 bytes (event, value), then the address. */
		if (zmq_recv(l->mon, ev, sizeof(ev), 0) < 0)
			return;
		zmq_recv(l->mon, addr, sizeof(addr), 0);
		memcpy(&e, ev, sizeof(e));
		if (e == ZMQ_EVENT_CONNECTED) {
			l->conns++;
			l->seen = 1;
		} else if (e == ZMQ_EVENT_DISCONNECTED) {
			l->conns--;
		}
	}
}

static void free_local(struct zlocal *l)
{
	if (l->mon) {
		zmq_socket_monitor(l->sock, NULL, 0);
		zmq_close(l->mon);
	}
	zmq_close(l->sock);
	free(l);
	ctx_put();
}

static int zmq_open_(struct bt_chan *c, enum bt_role role)
{
	struct zpriv *p = c->priv;
	struct zlocal *l;
	int hwm = (int)c->depth, linger = 10000, ivl = 10, rc;

	if (!ctx) {
		ctx = zmq_ctx_new();
		if (!ctx)
			return fail(c, "zmq_ctx_new");
	}
	ctx_users++;
	l = calloc(1, sizeof(*l));
	if (!l) {
		ctx_put();
		return -ENOMEM;
	}
	l->sock = zmq_socket(ctx, role == BT_TX ? ZMQ_PUSH : ZMQ_PULL);
	if (!l->sock) {
		rc = fail(c, "zmq_socket");
		goto err;
	}
	if (zmq_setsockopt(l->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
	    zmq_setsockopt(l->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0 ||
	    zmq_setsockopt(l->sock, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
	    zmq_setsockopt(l->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) < 0) {
		rc = fail(c, "zmq_setsockopt");
		goto err;
	}
	/* A PUSH socket without a peer yet holds its messages (up to the
	 * mark) and reconnects until RX has bound. */
	if (role == BT_TX) {
		rc = watch(c, l);
		if (rc < 0)
			goto err;
		rc = zmq_connect(l->sock, p->url);
	} else {
		rc = zmq_bind(l->sock, p->url);
	}
	if (rc < 0) {
		rc = fail(c, role == BT_TX ? "zmq_connect" : "zmq_bind");
		goto err;
	}
	c->local = l;
	return 0;
err:
	if (l->mon)
		zmq_close(l->mon);
	if (l->sock)
		zmq_close(l->sock);
	free(l);
	ctx_put();
	return rc;
}

static int zmq_send_(struct bt_chan *c, const void *msg, size_t len)
{
	struct zlocal *l = c->local;
	int n;

	do
		n = zmq_send(l->sock, msg, len, 0);
	while (n < 0 && zmq_errno() == EINTR);
	if (n < 0)
		return fail(c, "zmq_send");
	return (size_t)n == len ? 0 : -EIO;
}

static long zmq_recv_(struct bt_chan *c, void *buf, size_t cap)
{
	struct zlocal *l = c->local;
	int n;

	do
		n = zmq_recv(l->sock, buf, cap, 0);
	while (n < 0 && zmq_errno() == EINTR);
	if (n < 0)
		return fail(c, "zmq_recv");
	if ((size_t)n > cap) /* the message was truncated */
		return -EMSGSIZE;
	return n;
}

static void zmq_close_(struct bt_chan *c, enum bt_role role)
{
	struct zlocal *l = c->local;
	struct timespec t0;
	unsigned i;

	if (!l)
		return;
	c->local = NULL;
	if (role == BT_TX && ndeferred < MAX_DEFERRED) {
		deferred[ndeferred++] = l;
	} else {
		free_local(l);
	}
	if (ctx_users != ndeferred)
		return;
	/* The process's last channel: now wait for the TX peers. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < ndeferred; i++) {
		wait_peer_gone(deferred[i], &t0);
		free_local(deferred[i]);
	}
	ndeferred = 0;
}

static void zmq_teardown(struct bt_chan *c)
{
	struct zpriv *p = c->priv;

	if (!p)
		return;
	unlink(p->path);
	free(p);
	c->priv = NULL;
}

static const struct bt_transport zmq_transport = {
	.abi = BT_ABI,
	.name = "zmq",
	.label = "ZeroMQ PUSH/PULL ipc://",
	.setup = zmq_setup,
	.open = zmq_open_,
	.send = zmq_send_,
	.recv = zmq_recv_,
	.close = zmq_close_,
	.teardown = zmq_teardown,
};

BT_PLUGIN(zmq_transport)
