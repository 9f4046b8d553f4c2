/* SPDX-License-Identifier: MIT */
/*
 * rpc/handshake.c - the connect handshake's socket messages (docs/format.md
 * 5.6.2): the server's address, sending and receiving one message with
 * its descriptors, parsing the hello and the answer, the peer's pidfd.
 *
 * Layer: beside the channel, at the bottom of rpc: it calls nothing of
 * rpc, only the C library and the sys layer.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "../internal.h"
#include "rpc.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

/* The server's abstract address: derived from its object's nonce, which
 * nobody can know before the object is published (and the server binds
 * before that), so the address cannot be squatted. */
socklen_t shmk__rpc_sock_addr(struct sockaddr_un *a, uint64_t nonce)
{
	int n;

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1,
		     "shmk-rpc.%016" PRIx64, nonce);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   (size_t)n);
}

/*
 * Receives one message into buf (cap bytes) without waiting, and the
 * descriptors that came with it, at most maxfds of them into fds (*nfds
 * says how many; close-on-exec).  Descriptors past maxfds, and any
 * control message that is not SCM_RIGHTS, make the message bad: what
 * came is closed (with maxfds 0, never even installed).  Returns the message's length, -EAGAIN if none waits,
 * -EPIPE at the peer's hang-up (or an empty message: the protocol has
 * none), -EPROTO for a truncated message or truncated control data.
 */
ssize_t shmk__rpc_recv_msg(int s, void *buf, size_t cap, int *fds, int maxfds,
			   int *nfds)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 8)];
	} u;
	struct iovec iov = {buf, cap};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.b,
			    .msg_controllen = sizeof(u.b)};
	struct cmsghdr *c;
	ssize_t n;
	int bad = 0;

	*nfds = 0;
	/* Wanting none, take none: the kernel drops them (MSG_CTRUNC makes
	 * the message bad), and no close() of a peer's file can block us. */
	if (maxfds == 0) {
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
	}
	do
		n = recvmsg(s, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK  ? -EAGAIN
		       : errno == ECONNRESET ? -EPIPE
					     : -errno;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t k, nf;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0)) {
			bad = 1;
			continue;
		}
		nf = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (k = 0; k < nf; k++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(fd));
			if (*nfds < maxfds) {
				fds[(*nfds)++] = fd;
			} else {
				close(fd);
				bad = 1;
			}
		}
	}
	if (bad || (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC))) {
		while (*nfds > 0)
			close(fds[--*nfds]);
		return -EPROTO;
	}
	if (n == 0) {
		while (*nfds > 0)
			close(fds[--*nfds]);
		return -EPIPE;
	}
	return n;
}

/* Sends len bytes and nfds descriptors as one message, never waiting and
 * never raising SIGPIPE. */
int shmk__rpc_send_hs(int s, const void *buf, size_t len, const int *fds,
		      int nfds)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 2)];
	} u;
	struct iovec iov = {(void *)(uintptr_t)buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	do
		n = sendmsg(s, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ECONNRESET ? -EPIPE : -errno;
	return (size_t)n == len ? 0 : -EPIPE;
}

int shmk__rpc_hello_parse(const void *buf, size_t len, uint32_t *pid)
{
	struct hs_hello h;

	if (len != sizeof(h))
		return -EPROTO;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != HS_MAGIC || h.version != HS_VERSION ||
	    h.type != HS_HELLO || h.zero || !h.pid || h.pid > INT32_MAX)
		return -EPROTO;
	*pid = h.pid;
	return 0;
}

/*
 * A refusal's code as the client takes it: the errors the server can
 * refuse with (who may connect, the limits, making the rings), anything
 * else being a code the protocol does not carry, -EPROTO.  So a server
 * cannot make a connect fail with, say, -EINVAL, which would blame the
 * caller's arguments.
 */
static int refusal(int32_t why)
{
	switch (why) { /* not -why: a forged INT32_MIN has no negation */
	case -EACCES:
	case -EUSERS:
	case -ENOMEM:
	case -ENOSPC:
	case -EDQUOT:
	case -EMFILE:
	case -ENFILE:
	case -EAGAIN:
	case -ENOTSUP:
	case -ENOLCK:
	case -EIO:
		return why;
	default:
		return -EPROTO;
	}
}

int shmk__rpc_answer_parse(const void *buf, size_t len, int nfds,
			   struct shmk__rpc_answer *a)
{
	struct hs_answer h;
	uint64_t g[3];

	if (len != sizeof(h))
		return -EPROTO;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != HS_MAGIC || h.version != HS_VERSION || h.zero)
		return -EPROTO;
	if (h.type == HS_REFUSE) {
		if (nfds || h.chan || h.nodes || h.node_size || h.max_msg ||
		    h.status >= 0)
			return -EPROTO;
		return refusal(h.status);
	}
	g[0] = h.nodes;
	g[1] = h.node_size;
	g[2] = h.max_msg;
	if (h.type != HS_ACCEPT || h.status || nfds != 2 || !h.chan ||
	    !geom_ok(g))
		return -EPROTO;
	a->chan = h.chan;
	a->nodes = h.nodes;
	a->node_size = h.node_size;
	a->max_msg = h.max_msg;
	return 0;
}

/*
 * The peer process of a connected socket as a pidfd (close-on-exec):
 * SO_PEERPIDFD, or on kernels before 6.5 pidfd_open() of SO_PEERCRED's
 * pid, trusted only if, once the pidfd is open, the socket's peer is
 * still there with the same credentials (a dead peer's pid may have been
 * reused; a live peer's cannot be).  -ESRCH if the peer is gone.
 */
int shmk__rpc_peer_pidfd(int s, pid_t pid)
{
	struct ucred cr;
	socklen_t l = sizeof(int);
	struct pollfd p = {.fd = s, .events = POLLRDHUP};
	int fd = -1;

	if (getsockopt(s, SOL_SOCKET, SO_PEERPIDFD, &fd, &l) == 0)
		return l == sizeof(int) && fd >= 0 ? fd : -ESRCH;
	/* Only a kernel without the option falls back to the pid: any
	 * other failure (ESRCH, or EINVAL for a peer already reaped) means
	 * the peer is gone, and its pid may be another process's now. */
	if (errno != ENOPROTOOPT)
		return -ESRCH;
	if (pid <= 0)
		return -ESRCH; /* in a pid namespace we cannot see into */
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return errno == ESRCH ? -ESRCH : -errno;
	l = sizeof(cr);
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0 ||
	    cr.pid != pid || poll(&p, 1, 0) < 0 ||
	    (p.revents & (POLLHUP | POLLRDHUP | POLLERR))) {
		close(fd);
		return -ESRCH;
	}
	return fd;
}
