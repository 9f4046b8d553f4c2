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

/*
 * One attempt at connecting to the server of name: reads the object's
 * header (nothing is mapped; kind is the rpc kind, endpoint.c's),
 * connects to its address, checks that the server's uid owns the object,
 * says hello and takes the answer.  On
 * success the client's channel is in ep.  -ECONNREFUSED for a dead or
 * closed server (retried by the caller while it may wait), -EAGAIN for a
 * full backlog (likewise).
 */
int shmk__rpc_connect_once(struct shmk_rpc *ep, const char *name,
			   const struct shmk__kind *kind,
			   const struct shmk_opts *ro, uint64_t answer_by)
{
	struct hs_hello hello = {.magic = HS_MAGIC,
				 .version = HS_VERSION,
				 .type = HS_HELLO,
				 .pid = (uint32_t)getpid()};
	struct shmk_opts ro2 = {.spin_us = ro->spin_us,
				.flags = SHMK_F_ALLOW_SHARED};
	struct shmk__rpc_answer ans = {0};
	struct sockaddr_un addr;
	struct shmk__hdr h;
	struct ucred cr;
	struct stat st;
	struct shmk_msg m;
	struct chan *ch = NULL;
	char buf[2 * SHMK__RPC_ANSWER_SIZE];
	socklen_t al, cl = sizeof(cr);
	int fd, s = -1, pidfd = -1, fds[2], nfds = 0, rc;
	ssize_t n;

	rc = shmk__region_peek(name, &fd, &st, &h);
	if (rc < 0)
		return rc;
	close(fd); /* the copy is all we need */
	rc = shmk__hdr_check(&h, (uint64_t)st.st_size, kind);
	if (rc < 0)
		return rc;
	/* Our own user's object, not writable by others, unless the caller
	 * allows a shared one. */
	if (!(ro->flags & SHMK_F_ALLOW_SHARED) &&
	    (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))))
		return -EACCES;
	/* h is our private copy (pread): relaxed, no peer writes it. */
	if (atomic_load_explicit(&h.state, memory_order_relaxed) !=
	    SHMK_STATE_READY)
		return -ECONNREFUSED; /* closed: a new server may come */
	if (!geom_ok(h.geom))
		return -EBADMSG;
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return -errno;
	al = shmk__rpc_sock_addr(&addr, h.nonce);
	do
		rc = connect(s, (struct sockaddr *)&addr, al) < 0 ? -errno : 0;
	while (rc == -EINTR);
	if (rc == -ECONNREFUSED || rc == -ENOENT)
		rc = -ECONNREFUSED; /* nobody listens: a dead server's object */
	else if (rc == -EWOULDBLOCK || rc == -EINPROGRESS)
		rc = -EAGAIN; /* the backlog is full */
	/* The kernel says who listens: the object's owner, or a squatter
	 * we must not talk to. */
	if (!rc && getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0)
		rc = -errno;
	if (!rc && cl != sizeof(cr))
		rc = -EPROTO;
	if (!rc && cr.uid != st.st_uid)
		rc = -EACCES;
	if (!rc) {
		pidfd = shmk__rpc_peer_pidfd(s, cr.pid);
		if (pidfd < 0) /* -ESRCH: the server is gone */
			rc = pidfd == -ESRCH ? -ECONNREFUSED : pidfd;
	}
	if (!rc)
		rc = shmk__rpc_send_hs(s, &hello, sizeof(hello), NULL, 0);
	if (!rc)
		SHMK__CRASH("rpc_connect_sent"); /* hello sent, no answer */
	if (!rc)
		rc = wait_readable(s, answer_by);
	if (!rc) {
		n = shmk__rpc_recv_msg(s, buf, sizeof(buf), fds, 2, &nfds);
		rc = n < 0 ? (int)n
			   : shmk__rpc_answer_parse(buf, (size_t)n, nfds, &ans);
		/* A refusal or a bad answer: any descriptors go. */
		if (rc < 0)
			while (nfds > 0)
				close(fds[--nfds]);
	}
	if (rc == -EPIPE)
		rc = -ECONNREFUSED; /* closed on us: dying, or we were dropped */
	/* The geometry must be the object's own. */
	if (!rc && (ans.nodes != h.geom[0] || ans.node_size != h.geom[1] ||
		    ans.max_msg != h.geom[2]))
		rc = -EPROTO;
	if (!rc)
		SHMK__CRASH("rpc_connect_answered"); /* fds here, not opened */
	if (!rc && (!sealed(fds[0]) || !sealed(fds[1])))
		rc = -EPROTO;
	if (!rc && !(ch = shmk__rpc_chan_new(ep)))
		rc = -ENOMEM;
	if (!rc)
		rc = shmk_ring_open_fd(fds[0], &ro2, &ch->out);
	if (!rc)
		rc = shmk_ring_open_fd(fds[1], &ro2, &ch->in);
	while (nfds > 0)
		close(fds[--nfds]); /* the rings have descriptors of their own */
	if (!rc && (shmk_ring_node_size(ch->out) != ans.node_size ||
		    shmk_ring_node_size(ch->in) != ans.node_size ||
		    shmk_ring_nodes(ch->out) != ans.nodes ||
		    shmk_ring_nodes(ch->in) != ans.nodes))
		rc = -EPROTO;
	if (!rc) {
		ch->sock = s;
		ch->pidfd = pidfd;
		ch->pid = cr.pid;
		ch->num = ans.chan;
		s = pidfd = -1;
		/* The server's hello comes first on its ring. */
		rc = shmk_ring_acquire(ch->in, &m,
				       remaining_ms(answer_by) > 1000
					       ? remaining_ms(answer_by)
					       : 1000);
		if (!rc) {
			shmk__rpc_on_frame(ch, &m, NULL);
			shmk_ring_release(ch->in, &m);
			if (!ch->hello)
				rc = -EPROTO;
		}
	}
	if (!rc) {
		SHMK__CRASH("rpc_connect_opened"); /* rings open, no hello */
		rc = shmk__rpc_say_hello(ch);
	}
	if (s >= 0)
		close(s);
	if (pidfd >= 0)
		close(pidfd);
	if (rc < 0) {
		if (ch)
			shmk__rpc_chan_put(ch);
		return rc == -EAGAIN && ch ? -ETIMEDOUT : rc;
	}
	ep->nodes = ans.nodes;
	ep->node_size = ans.node_size;
	ep->max_msg = ans.max_msg;
	ep->chans = ch;
	return 0;
}
