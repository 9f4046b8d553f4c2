/* SPDX-License-Identifier: MIT */
/*
 * nng.c - a `shmk bench` peer: NNG push0/pull0 over ipc://.
 *
 * RX listens with a pull0 socket on a UNIX socket path made from the
 * channel's name; TX dials it with a push0 socket (retrying until RX
 * listens).  Both socket buffers hold the channel's depth; a push socket
 * whose buffer is full blocks, it never drops.
 *
 * Closing an NNG socket discards what it has not written yet (there is no
 * linger), so TX keeps its socket open until RX has gone: RX closes after
 * it received every message.  That wait is put off until the last channel
 * of the process closes, because a round trip has a TX and an RX channel
 * in each process, and two processes each waiting in their TX's close for
 * the other's RX to close would wait for each other.
 *
 * No zero-copy functions: the harness would then use them, and NNG's
 * message API (an nng_msg per message) measured slower here than
 * nng_send() from the caller's buffer, three times slower at 1 MiB.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "../shmk_bench/transport.h"

#define PEER_WAIT_MS 10000 /* how long TX waits for RX to go */
#define MAX_DEFERRED 16

/* Made by setup(), inherited by both children. */
struct npriv {
	char path[108]; /* the UNIX socket path (sun_path) */
	char url[120];	/* "ipc://" path */
};

struct nlocal {
	nng_socket sock;
	/* TX: the peer's connection, counted by nng's pipe callbacks. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int pipes; /* connected now */
	int seen;  /* was ever connected */
};

/* The open channels of this process, and the TX sockets whose close waits
 * for the last of them. */
static unsigned users;
static struct nlocal *deferred[MAX_DEFERRED];
static unsigned ndeferred;

static int nerr(struct bt_chan *c, const char *what, int rv)
{
	snprintf(c->why, sizeof(c->why), "%s: %s", what, nng_strerror(rv));
	switch (rv) {
	case NNG_ENOMEM:
		return -ENOMEM;
	case NNG_EINVAL:
		return -EINVAL;
	case NNG_ETIMEDOUT:
		return -ETIMEDOUT;
	case NNG_ECLOSED:
		return -EBADF;
	case NNG_EMSGSIZE:
		return -EMSGSIZE;
	case NNG_ECONNREFUSED:
		return -ECONNREFUSED;
	case NNG_EADDRINUSE:
		return -EADDRINUSE;
	default:
		return -EIO;
	}
}

static const char *runtime_dir(void)
{
	const char *d = getenv("XDG_RUNTIME_DIR");

	return d && *d && access(d, W_OK) == 0 ? d : "/tmp";
}

static int nng_setup(struct bt_chan *c)
{
	struct npriv *p = calloc(1, sizeof(*p));
	int n;

	if (!p)
		return -ENOMEM;
	n = snprintf(p->path, sizeof(p->path), "%s/shmk-bench.%s.nng",
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

/* Runs in an NNG thread whenever TX's connection comes or goes. */
static void on_pipe(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct nlocal *l = arg;

	(void)pipe;
	pthread_mutex_lock(&l->lock);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		l->pipes++;
		l->seen = 1;
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		l->pipes--;
	}
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

static int nng_open_(struct bt_chan *c, enum bt_role role)
{
	struct npriv *p = c->priv;
	struct nlocal *l = calloc(1, sizeof(*l));
	int buf = c->depth > 8192 ? 8192 : (int)c->depth, rv;
	const char *what;

	if (!l)
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	what = role == BT_TX ? "nng_push0_open" : "nng_pull0_open";
	rv = role == BT_TX ? nng_push0_open(&l->sock)
			   : nng_pull0_open(&l->sock);
	if (rv)
		goto err;
	what = "nng_socket_set";
	if (role == BT_TX) {
		rv = nng_socket_set_int(l->sock, NNG_OPT_SENDBUF, buf);
		if (!rv)
			rv = nng_socket_set_ms(l->sock, NNG_OPT_RECONNMINT, 10);
		if (!rv)
			rv = nng_socket_set_ms(l->sock, NNG_OPT_RECONNMAXT,
					       100);
		if (!rv)
			rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_ADD_POST,
					     on_pipe, l);
		if (!rv)
			rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_REM_POST,
					     on_pipe, l);
		if (rv)
			goto err;
		/* Non-blocking: RX may not listen yet; the dialer retries. */
		what = "nng_dial";
		rv = nng_dial(l->sock, p->url, NULL, NNG_FLAG_NONBLOCK);
	} else {
		rv = nng_socket_set_int(l->sock, NNG_OPT_RECVBUF, buf);
		if (!rv)
			rv = nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ,
						 c->msg_size);
		if (rv)
			goto err;
		what = "nng_listen";
		rv = nng_listen(l->sock, p->url, NULL, 0);
	}
	if (rv)
		goto err;
	users++;
	c->local = l;
	return 0;
err:
	rv = nerr(c, what, rv);
	nng_close(l->sock); /* NNG_ECLOSED on a socket never opened */
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	free(l);
	return rv;
}

static int nng_send_(struct bt_chan *c, const void *msg, size_t len)
{
	struct nlocal *l = c->local;
	int rv = nng_send(l->sock, (void *)msg, len, 0);

	return rv ? nerr(c, "nng_send", rv) : 0;
}

static long nng_recv_(struct bt_chan *c, void *buf, size_t cap)
{
	struct nlocal *l = c->local;
	nng_msg *m;
	size_t len;
	int rv = nng_recvmsg(l->sock, &m, 0);

	if (rv)
		return nerr(c, "nng_recvmsg", rv);
	len = nng_msg_len(m);
	if (len > cap) {
		nng_msg_free(m);
		return -EMSGSIZE;
	}
	memcpy(buf, nng_msg_body(m), len);
	nng_msg_free(m);
	return (long)len;
}

static void free_local(struct nlocal *l)
{
	nng_close(l->sock);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* Waits until every deferred TX's peer has gone (or the deadline), then
 * closes them. */
static void close_deferred(void)
{
	struct timespec dl;
	unsigned i;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += PEER_WAIT_MS / 1000;
	for (i = 0; i < ndeferred; i++) {
		struct nlocal *l = deferred[i];

		pthread_mutex_lock(&l->lock);
		/* Messages sent before RX connected wait in TX's buffer. */
		while ((!l->seen || l->pipes > 0) &&
		       pthread_cond_timedwait(&l->cond, &l->lock, &dl) == 0)
			;
		pthread_mutex_unlock(&l->lock);
		free_local(l);
	}
	ndeferred = 0;
}

static void nng_close_(struct bt_chan *c, enum bt_role role)
{
	struct nlocal *l = c->local;

	if (!l)
		return;
	c->local = NULL;
	if (role == BT_TX && ndeferred < MAX_DEFERRED)
		deferred[ndeferred++] = l;
	else
		free_local(l);
	if (--users == 0)
		close_deferred();
}

static void nng_teardown(struct bt_chan *c)
{
	struct npriv *p = c->priv;

	if (!p)
		return;
	unlink(p->path);
	free(p);
	c->priv = NULL;
}

static const struct bt_transport nng_transport = {
	.abi = BT_ABI,
	.name = "nng",
	.label = "NNG push/pull ipc://",
	.setup = nng_setup,
	.open = nng_open_,
	.send = nng_send_,
	.recv = nng_recv_,
	.close = nng_close_,
	.teardown = nng_teardown,
};

BT_PLUGIN(nng_transport)
