/* SPDX-License-Identifier: MIT */
/*
 * rpc/connect.c - a client's one attempt at connecting to a server
 * (connect_once): the object's header, the socket, the hello and the
 * answer, the rings, the in-ring hellos.
 *
 * Layer: beside accept.c.  Calls chan.c and handshake.c; nothing of
 * calls.c, workers.c, accept.c or endpoint.c.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../internal.h"
#include "rpc.h"

/* Waits until s is readable, at most until the deadline: 0, or an expiry. */
static int wait_readable(int s, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		int ms = remaining_ms(deadline), n;

		n = poll(&p, 1, ms > 1000 || ms < 0 ? 1000 : ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
		if (shmk__mono_ns() >= deadline)
			return -ETIMEDOUT;
	}
}

/* Is fd sealed as the server's rings are (no shrinking, no growing, no
 * more seals)?  A descriptor that is not could be shrunk under us. */
static int sealed(int fd)
{
	const int want = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	int seals = fcntl(fd, F_GET_SEALS);

	return seals >= 0 && (seals & want) == want;
}

/* What one attempt has made so far: the unwind (connect_once) undoes it. */
struct attempt {
	struct shmk__hdr h; /* our private copy of the object's header */
	struct stat st;	    /* ... and what fstat said of its file */
	struct ucred cr;    /* the listener, as the kernel says */
	struct shmk__rpc_answer ans;
	int s, pidfd; /* -1 once the channel has them */
	int fds[2], nfds;
	struct chan *ch;
};

/*
 * Stage 1: the object's header (nothing is mapped; kind is the rpc kind,
 * endpoint.c's), checked as an open would check it.
 */
static int connect_read_object(struct attempt *a, const char *name,
			       const struct shmk__kind *kind,
			       const struct shmk_opts *ro)
{
	int fd, rc;

	rc = shmk__region_peek(name, &fd, &a->st, &a->h);
	if (rc < 0)
		return rc;
	close(fd); /* the copy is all we need */
	rc = shmk__hdr_check(&a->h, (uint64_t)a->st.st_size, kind);
	if (rc < 0)
		return rc;
	/* Our own user's object, not writable by others, unless the caller
	 * allows a shared one. */
	if (!(ro->flags & SHMK_F_ALLOW_SHARED) &&
	    (a->st.st_uid != geteuid() ||
	     (a->st.st_mode & (S_IWGRP | S_IWOTH))))
		return -EACCES;
	/* h is our private copy (pread): relaxed, no peer writes it. */
	if (atomic_load_explicit(&a->h.state, memory_order_relaxed) !=
	    SHMK_STATE_READY)
		return -ECONNREFUSED; /* closed: a new server may come */
	if (!geom_ok(a->h.geom))
		return -EBADMSG;
	return 0;
}

/*
 * Stage 2: a socket connected to the object's address, whose listener
 * the kernel says is the object's owner, and the listener's pidfd.
 */
static int connect_open_socket(struct attempt *a)
{
	struct sockaddr_un addr;
	socklen_t al, cl = sizeof(a->cr);
	int rc;

	a->s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
		      0);
	if (a->s < 0)
		return -errno;
	al = shmk__rpc_sock_addr(&addr, a->h.nonce);
	do
		rc = connect(a->s, (struct sockaddr *)&addr, al) < 0 ? -errno
								     : 0;
	while (rc == -EINTR);
	/* Nobody listens: a dead server's object. */
	if (rc == -ECONNREFUSED || rc == -ENOENT)
		return -ECONNREFUSED;
	if (rc == -EWOULDBLOCK || rc == -EINPROGRESS)
		return -EAGAIN; /* the backlog is full */
	if (rc < 0)
		return rc;
	/* The kernel says who listens: the object's owner, or a squatter
	 * we must not talk to. */
	if (getsockopt(a->s, SOL_SOCKET, SO_PEERCRED, &a->cr, &cl) < 0)
		return -errno;
	if (cl != sizeof(a->cr))
		return -EPROTO;
	if (a->cr.uid != a->st.st_uid)
		return -EACCES;
	a->pidfd = shmk__rpc_peer_pidfd(a->s, a->cr.pid);
	if (a->pidfd < 0) /* -ESRCH: the server is gone */
		return a->pidfd == -ESRCH ? -ECONNREFUSED : a->pidfd;
	return 0;
}

/*
 * Stage 3: our hello, and the server's answer (with the rings'
 * descriptors in a->fds when it accepts), by answer_by.
 */
static int connect_send_hello(struct attempt *a, uint64_t answer_by)
{
	struct hs_hello hello = {.magic = HS_MAGIC,
				 .version = HS_VERSION,
				 .type = HS_HELLO,
				 .pid = (uint32_t)getpid()};
	char buf[2 * SHMK__RPC_ANSWER_SIZE];
	ssize_t n;
	int rc;

	rc = shmk__rpc_send_hs(a->s, &hello, sizeof(hello), NULL, 0);
	if (rc < 0)
		return rc;
	SHMK__CRASH("rpc_connect_sent"); /* hello sent, no answer */
	rc = wait_readable(a->s, answer_by);
	if (rc < 0)
		return rc;
	n = shmk__rpc_recv_msg(a->s, buf, sizeof(buf), a->fds, 2, &a->nfds);
	rc = n < 0 ? (int)n
		   : shmk__rpc_answer_parse(buf, (size_t)n, a->nfds, &a->ans);
	/* A refusal or a bad answer: any descriptors go. */
	if (rc < 0)
		while (a->nfds > 0)
			close(a->fds[--a->nfds]);
	return rc;
}

/*
 * Stage 4: the channel, on the rings of the answer (the object's own
 * geometry, sealed).
 */
static int connect_map_rings(struct shmk_rpc *ep, struct attempt *a,
			     const struct shmk_opts *ro)
{
	struct shmk_opts ro2 = {.spin_us = ro->spin_us,
				.flags = SHMK_F_ALLOW_SHARED};
	int rc;

	/* The geometry must be the object's own. */
	if (a->ans.nodes != a->h.geom[0] || a->ans.node_size != a->h.geom[1] ||
	    a->ans.max_msg != a->h.geom[2])
		return -EPROTO;
	SHMK__CRASH("rpc_connect_answered"); /* fds here, not opened */
	if (!sealed(a->fds[0]) || !sealed(a->fds[1]))
		return -EPROTO;
	a->ch = shmk__rpc_chan_new(ep);
	if (!a->ch)
		return -ENOMEM;
	rc = shmk_ring_open_fd(a->fds[0], &ro2, &a->ch->out);
	if (!rc)
		rc = shmk_ring_open_fd(a->fds[1], &ro2, &a->ch->in);
	/* The rings have descriptors of their own. */
	while (a->nfds > 0)
		close(a->fds[--a->nfds]);
	if (rc < 0)
		return rc;
	if (shmk_ring_node_size(a->ch->out) != a->ans.node_size ||
	    shmk_ring_node_size(a->ch->in) != a->ans.node_size ||
	    shmk_ring_nodes(a->ch->out) != a->ans.nodes ||
	    shmk_ring_nodes(a->ch->in) != a->ans.nodes)
		return -EPROTO;
	return 0;
}

/*
 * Stage 5: the channel takes the socket and pidfd; the server's hello
 * comes first on its ring, then ours goes.
 */
static int connect_greet(struct attempt *a, uint64_t answer_by)
{
	struct chan *ch = a->ch;
	struct shmk_msg m;
	int rc;

	ch->sock = a->s;
	ch->pidfd = a->pidfd;
	ch->pid = a->cr.pid;
	ch->num = a->ans.chan;
	a->s = a->pidfd = -1;
	/* The server's hello comes first on its ring. */
	rc = shmk_ring_acquire(ch->in, &m,
			       remaining_ms(answer_by) > 1000
				       ? remaining_ms(answer_by)
				       : 1000);
	if (rc < 0)
		return rc;
	shmk__rpc_on_frame(ch, &m, NULL);
	shmk_ring_release(ch->in, &m);
	if (!ch->hello)
		return -EPROTO;
	SHMK__CRASH("rpc_connect_opened"); /* rings open, no hello */
	return shmk__rpc_say_hello(ch);
}

/*
 * One attempt at connecting to the server of name: reads the object's
 * header, connects to its address, checks that the server's uid owns the
 * object, says hello and takes the answer, opens the rings.  On success
 * the client's channel is in ep.  -ECONNREFUSED for a dead or closed
 * server (retried by the caller while it may wait), -EAGAIN for a full
 * backlog (likewise).
 */
int shmk__rpc_connect_once(struct shmk_rpc *ep, const char *name,
			   const struct shmk__kind *kind,
			   const struct shmk_opts *ro, uint64_t answer_by)
{
	struct attempt at = {.s = -1, .pidfd = -1}, *a = &at;
	int rc;

	rc = connect_read_object(a, name, kind, ro);
	if (rc < 0)
		goto fail;
	rc = connect_open_socket(a);
	if (!rc)
		rc = connect_send_hello(a, answer_by);
	/* Closed on us: dying, or we were dropped. */
	if (rc == -EPIPE)
		rc = -ECONNREFUSED;
	if (rc < 0)
		goto fail;
	rc = connect_map_rings(ep, a, ro);
	if (rc < 0)
		goto fail;
	rc = connect_greet(a, answer_by);
	if (rc < 0)
		goto fail;
	ep->nodes = a->ans.nodes;
	ep->node_size = a->ans.node_size;
	ep->max_msg = a->ans.max_msg;
	ep->chans = a->ch;
	return 0;
fail:
	while (a->nfds > 0)
		close(a->fds[--a->nfds]);
	if (a->s >= 0)
		close(a->s);
	if (a->pidfd >= 0)
		close(a->pidfd);
	if (a->ch)
		shmk__rpc_chan_put(a->ch);
	if (rc == -EAGAIN && a->ch)
		rc = -ETIMEDOUT;
	return rc;
}
