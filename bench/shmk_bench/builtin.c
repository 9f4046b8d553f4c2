/* SPDX-License-Identifier: MIT */
/*
 * builtin.c - the transports `shmk bench` always has: shmk_ring in copy
 * and in zero-copy mode, the cross-core copy bound, a pipe, UNIX stream
 * and datagram sockets, a POSIX message queue and TCP over loopback.
 * Each is set up the way a careful user would (a pipe with the largest
 * buffer allowed, TCP with TCP_NODELAY, sockets with buffers for the
 * channel's depth where the system allows).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <shmk.h>

#include "../bench.h"
#include "builtin.h"

/* ------------------------------------------------------------------ */
/* shmk_ring: copy mode and zero copy                                   */
/* ------------------------------------------------------------------ */

struct ring_local {
	struct shmk_ring *r;
	struct shmk_msg m;
};

/* c->arg: RING_NO_SPIN for handles that never spin (they sleep at once),
 * RING_SINGLE for a single-writer single-reader ring. */
#define RING_NO_SPIN 1
#define RING_SINGLE  2

static int ring_setup(struct bt_chan *c)
{
	struct shmk_opts o = {0};
	struct shmk_ring *r;
	int rc;

	unsigned depth = c->depth;

	if (c->arg & RING_SINGLE)
		o.flags = SHMK_F_SINGLE_WRITER | SHMK_F_SINGLE_READER;
	/* A reader that sleeps at once wakes tens of microseconds after the
	 * writer's first message; a ring of c->depth nodes (2 KiB at 64
	 * bytes) is full long before, and the writer sleeps too.  Without
	 * spinning the ring gets the pipe's buffer: 1 MiB of nodes (at most
	 * 16384, at least c->depth). */
	if ((c->arg & RING_NO_SPIN) && c->msg_size &&
	    (1u << 20) / c->msg_size > depth)
		depth = (1u << 20) / c->msg_size > 16384
				? 16384
				: (unsigned)((1u << 20) / c->msg_size);
	rc = shmk_ring_create(c->name, depth, c->msg_size, &o, &r);

	if (rc < 0) {
		snprintf(c->why, sizeof(c->why), "shmk_ring_create: %s",
			 shmk_strerror(rc));
		return rc;
	}
	c->priv = r;
	return 0;
}

static int ring_open(struct bt_chan *c, enum bt_role role)
{
	struct ring_local *l = calloc(1, sizeof(*l));
	struct shmk_opts o = {.spin_us = (c->arg & RING_NO_SPIN) ? -1 : 0};
	int rc;

	(void)role;
	if (!l)
		return -ENOMEM;
	rc = shmk_ring_open(c->name, &o, &l->r);
	if (rc < 0) {
		free(l);
		snprintf(c->why, sizeof(c->why), "shmk_ring_open: %s",
			 shmk_strerror(rc));
		return rc;
	}
	c->local = l;
	return 0;
}

static int ring_send(struct bt_chan *c, const void *msg, size_t len)
{
	struct ring_local *l = c->local;

	return shmk_ring_write(l->r, msg, len, -1);
}

static long ring_recv(struct bt_chan *c, void *buf, size_t cap)
{
	struct ring_local *l = c->local;

	return (long)shmk_ring_read(l->r, buf, cap, -1);
}

static void *ring_loan(struct bt_chan *c, size_t len)
{
	struct ring_local *l = c->local;
	int rc = shmk_ring_reserve(l->r, &l->m, -1);

	if (rc < 0 || l->m.len < len) {
		errno = rc < 0 ? -rc : EMSGSIZE;
		return NULL;
	}
	return l->m.data;
}

static int ring_publish(struct bt_chan *c, size_t len)
{
	struct ring_local *l = c->local;

	l->m.len = len;
	return shmk_ring_commit(l->r, &l->m);
}

static const void *ring_take(struct bt_chan *c, size_t *len)
{
	struct ring_local *l = c->local;
	int rc = shmk_ring_acquire(l->r, &l->m, -1);

	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	*len = l->m.len;
	return l->m.data;
}

static int ring_release(struct bt_chan *c)
{
	struct ring_local *l = c->local;

	return shmk_ring_release(l->r, &l->m);
}

static void ring_close(struct bt_chan *c, enum bt_role role)
{
	struct ring_local *l = c->local;

	(void)role;
	if (l) {
		shmk_ring_close(l->r);
		free(l);
		c->local = NULL;
	}
}

static void ring_teardown(struct bt_chan *c)
{
	if (c->priv)
		shmk_ring_close(c->priv);
	c->priv = NULL;
	shmk_unlink(c->name);
}

const struct bt_transport bt_shmk = {
	.abi = BT_ABI,
	.name = "shmk",
	.label = "shmk ring (copy)",
	.setup = ring_setup,
	.open = ring_open,
	.send = ring_send,
	.recv = ring_recv,
	.close = ring_close,
	.teardown = ring_teardown,
};

static int ring_setup_sleep(struct bt_chan *c)
{
	c->arg = RING_NO_SPIN;
	return ring_setup(c);
}

static int ring_setup_single(struct bt_chan *c)
{
	c->arg = RING_SINGLE;
	return ring_setup(c);
}

/* Copy mode on a ring created for one writer and one reader. */
const struct bt_transport bt_shmk_single = {
	.abi = BT_ABI,
	.name = "shmk-single",
	.label = "shmk ring (copy, single w+r)",
	.setup = ring_setup_single,
	.open = ring_open,
	.send = ring_send,
	.recv = ring_recv,
	.close = ring_close,
	.teardown = ring_teardown,
};

/* Copy mode with no spinning: every wait sleeps in the kernel at once,
 * as the other transports do (what a caller pays for a wake-up), with as
 * many bytes of nodes as the pipe's buffer (ring_setup()). */
const struct bt_transport bt_shmk_sleep = {
	.abi = BT_ABI,
	.name = "shmk-sleep",
	.label = "shmk ring (copy, no spin, 1 MiB)",
	.setup = ring_setup_sleep,
	.open = ring_open,
	.send = ring_send,
	.recv = ring_recv,
	.close = ring_close,
	.teardown = ring_teardown,
};

const struct bt_transport bt_shmk_zc = {
	.abi = BT_ABI,
	.name = "shmk-zc",
	.label = "shmk ring (zero copy)",
	.setup = ring_setup,
	.open = ring_open,
	.send = ring_send,
	.recv = ring_recv,
	.loan = ring_loan,
	.publish = ring_publish,
	.take = ring_take,
	.release = ring_release,
	.close = ring_close,
	.teardown = ring_teardown,
};

/* ------------------------------------------------------------------ */
/* The cross-core copy bound: depth slots with a sequence word each and  */
/* nothing else (one writer, one reader, spinning).  What the memory     */
/* system allows a copy-in, copy-out transport.                          */
/* ------------------------------------------------------------------ */

struct bound {
	size_t slot;	/* bytes per slot, cache-line multiple */
	unsigned depth; /* slots */
	uint64_t pos;	/* this process's next message */
	unsigned char *data;
	_Atomic uint64_t *seq; /* one per slot, 64 bytes apart */
};

static int bound_setup(struct bt_chan *c)
{
	struct bound *b = calloc(1, sizeof(*b));
	size_t seqs, total;
	unsigned i;

	if (!b)
		return -ENOMEM;
	b->depth = c->depth;
	b->slot = (c->msg_size + 63) & ~(size_t)63;
	seqs = (size_t)b->depth * 64;
	total = seqs + (size_t)b->depth * b->slot;
	b->seq = mmap(NULL, total, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (b->seq == MAP_FAILED) {
		free(b);
		return -ENOMEM;
	}
	b->data = (unsigned char *)b->seq + seqs;
	for (i = 0; i < b->depth; i++) /* slot i is free for message i */
		atomic_store(&b->seq[i * 8], (uint64_t)i * 2);
	c->priv = b;
	return 0;
}

static int bound_open(struct bt_chan *c, enum bt_role role)
{
	(void)c;
	(void)role;
	return 0;
}

/* Slot k of message p: 2p when free for it, 2p + 1 when it holds it. */
static int bound_send(struct bt_chan *c, const void *msg, size_t len)
{
	struct bound *b = c->priv;
	uint64_t p = b->pos++;
	size_t k = p % b->depth;

	while (atomic_load_explicit(&b->seq[k * 8], memory_order_acquire) !=
	       2 * p)
		bench_relax();
	memcpy(b->data + k * b->slot, msg, len);
	atomic_store_explicit(&b->seq[k * 8], 2 * p + 1, memory_order_release);
	return 0;
}

static long bound_recv(struct bt_chan *c, void *buf, size_t cap)
{
	struct bound *b = c->priv;
	uint64_t p = b->pos++;
	size_t k = p % b->depth;

	if (cap < c->msg_size)
		return -EMSGSIZE;
	while (atomic_load_explicit(&b->seq[k * 8], memory_order_acquire) !=
	       2 * p + 1)
		bench_relax();
	memcpy(buf, b->data + k * b->slot, c->msg_size);
	atomic_store_explicit(&b->seq[k * 8], 2 * (p + b->depth),
			      memory_order_release);
	return (long)c->msg_size;
}

static void bound_teardown(struct bt_chan *c)
{
	struct bound *b = c->priv;

	if (!b)
		return;
	munmap(b->seq, (size_t)b->depth * (64 + b->slot));
	free(b);
	c->priv = NULL;
}

const struct bt_transport bt_bound = {
	.abi = BT_ABI,
	.name = "bound",
	.label = "cross-core copy (bound)",
	.setup = bound_setup,
	.open = bound_open,
	.send = bound_send,
	.recv = bound_recv,
	.teardown = bound_teardown,
};

/* ------------------------------------------------------------------ */
/* File-descriptor transports: pipe, UNIX stream and datagram, TCP      */
/* ------------------------------------------------------------------ */

struct fds {
	int fd[2]; /* [BT_TX], [BT_RX] (the same socket for TCP: listen) */
	int port;
};

static struct fds *fds_new(struct bt_chan *c)
{
	struct fds *f = calloc(1, sizeof(*f));

	if (f) {
		f->fd[0] = f->fd[1] = -1;
		c->priv = f;
	}
	return f;
}

static int fd_open(struct bt_chan *c, enum bt_role role)
{
	struct fds *f = c->priv;

	/* Keep this process's end; the other end belongs to the peer. */
	if (f->fd[!role] >= 0) {
		close(f->fd[!role]);
		f->fd[!role] = -1;
	}
	return 0;
}

static int fd_send(struct bt_chan *c, const void *msg, size_t len)
{
	struct fds *f = c->priv;

	return write_full(f->fd[BT_TX], msg, len) < 0 ? -EPIPE : 0;
}

/* A byte stream: exactly msg_size bytes make a message. */
static long fd_recv(struct bt_chan *c, void *buf, size_t cap)
{
	struct fds *f = c->priv;

	if (cap < c->msg_size)
		return -EMSGSIZE;
	return read_full(f->fd[BT_RX], buf, c->msg_size) < 0
		       ? -EPIPE
		       : (long)c->msg_size;
}

static void fd_teardown(struct bt_chan *c)
{
	struct fds *f = c->priv;

	if (!f)
		return;
	for (int i = 0; i < 2; i++)
		if (f->fd[i] >= 0)
			close(f->fd[i]);
	free(f);
	c->priv = NULL;
}

static int pipe_setup(struct bt_chan *c)
{
	struct fds *f = fds_new(c);
	int p[2], max = 1 << 20;
	FILE *in;

	if (!f)
		return -ENOMEM;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	f->fd[BT_RX] = p[0];
	f->fd[BT_TX] = p[1];
	/* The largest buffer an unprivileged user may ask for. */
	in = fopen("/proc/sys/fs/pipe-max-size", "r");
	if (in) {
		if (fscanf(in, "%d", &max) != 1)
			max = 1 << 20;
		fclose(in);
	}
	fcntl(p[1], F_SETPIPE_SZ, max);
	return 0;
}

const struct bt_transport bt_pipe = {
	.abi = BT_ABI,
	.name = "pipe",
	.label = "pipe (1 MiB buffer)",
	.setup = pipe_setup,
	.open = fd_open,
	.send = fd_send,
	.recv = fd_recv,
	.teardown = fd_teardown,
};

static int unix_setup(struct bt_chan *c)
{
	struct fds *f = fds_new(c);
	int sv[2];

	if (!f)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	f->fd[BT_TX] = sv[0];
	f->fd[BT_RX] = sv[1];
	return 0;
}

const struct bt_transport bt_unix = {
	.abi = BT_ABI,
	.name = "unix",
	.label = "UNIX stream socket",
	.setup = unix_setup,
	.open = fd_open,
	.send = fd_send,
	.recv = fd_recv,
	.teardown = fd_teardown,
};

/* Datagrams up to the socket buffer: a root process may force a larger
 * buffer, anyone else gets what net.core.wmem_max allows. */
static int dgram_setup(struct bt_chan *c)
{
	struct fds *f = fds_new(c);
	int sv[2], want, got = 0;
	socklen_t sl = sizeof(got);

	if (!f)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	f->fd[BT_TX] = sv[0];
	f->fd[BT_RX] = sv[1];
	want = c->msg_size > (1u << 26) ? 1 << 27 : (int)c->msg_size * 4;
	if (want < 1 << 18)
		want = 1 << 18;
	if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof(want)) <
	    0)
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
	if (setsockopt(sv[1], SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)) <
	    0)
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
	getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &got, &sl);
	/* The kernel counts its own overhead against the buffer. */
	if ((size_t)got < c->msg_size + 4096) {
		snprintf(c->why, sizeof(c->why),
			 "datagrams above %d bytes need a larger "
			 "net.core.wmem_max",
			 got / 2);
		return -EMSGSIZE;
	}
	return 0;
}

static int dgram_send(struct bt_chan *c, const void *msg, size_t len)
{
	struct fds *f = c->priv;

	for (;;) {
		ssize_t n = send(f->fd[BT_TX], msg, len, 0);

		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EMSGSIZE;
	}
}

static long dgram_recv(struct bt_chan *c, void *buf, size_t cap)
{
	struct fds *f = c->priv;

	for (;;) {
		ssize_t n = recv(f->fd[BT_RX], buf, cap, MSG_TRUNC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		return (size_t)n > cap ? -EMSGSIZE : (long)n;
	}
}

const struct bt_transport bt_dgram = {
	.abi = BT_ABI,
	.name = "dgram",
	.label = "UNIX datagram socket",
	.setup = dgram_setup,
	.open = fd_open,
	.send = dgram_send,
	.recv = dgram_recv,
	.teardown = fd_teardown,
};

/* TCP over loopback: the parent listens; RX accepts, TX connects. */
static int tcp_setup(struct bt_chan *c)
{
	struct fds *f = fds_new(c);
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	int s;

	if (!f)
		return -ENOMEM;
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	f->fd[BT_RX] = s;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 4) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &al) < 0)
		return -errno;
	f->port = ntohs(a.sin_port);
	return 0;
}

static int tcp_open(struct bt_chan *c, enum bt_role role)
{
	struct fds *f = c->priv;
	int one = 1, s;

	if (role == BT_RX) {
		s = accept4(f->fd[BT_RX], NULL, NULL, SOCK_CLOEXEC);
		if (s < 0)
			return -errno;
		close(f->fd[BT_RX]);
	} else {
		struct sockaddr_in a = {.sin_family = AF_INET};

		close(f->fd[BT_RX]);
		s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0)
			return -errno;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.sin_port = htons((uint16_t)f->port);
		if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
			return -errno;
	}
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	f->fd[BT_RX] = -1;
	f->fd[role] = s;
	return 0;
}

const struct bt_transport bt_tcp = {
	.abi = BT_ABI,
	.name = "tcp",
	.label = "TCP loopback",
	.setup = tcp_setup,
	.open = tcp_open,
	.send = fd_send,
	.recv = fd_recv,
	.teardown = fd_teardown,
};

/* ------------------------------------------------------------------ */
/* POSIX message queue                                                  */
/* ------------------------------------------------------------------ */

struct mq {
	char name[72];
	mqd_t q;
};

static int mq_setup(struct bt_chan *c)
{
	struct mq *m = calloc(1, sizeof(*m));
	struct mq_attr at = {0};
	struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
	long maxmsg = 10;
	FILE *in;

	if (!m)
		return -ENOMEM;
	m->q = (mqd_t)-1;
	c->priv = m;
	snprintf(m->name, sizeof(m->name), "/%s", c->name);
	/* The queue's memory counts against RLIMIT_MSGQUEUE: raise it as
	 * far as allowed (a privileged user may lift it). */
	if (setrlimit(RLIMIT_MSGQUEUE, &rl) < 0) {
		getrlimit(RLIMIT_MSGQUEUE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_MSGQUEUE, &rl);
	}
	in = fopen("/proc/sys/fs/mqueue/msg_max", "r");
	if (in) {
		if (fscanf(in, "%ld", &maxmsg) != 1)
			maxmsg = 10;
		fclose(in);
	}
	at.mq_maxmsg = maxmsg < (long)c->depth ? maxmsg : (long)c->depth;
	at.mq_msgsize = (long)c->msg_size;
	m->q = mq_open(m->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600,
		       &at);
	if (m->q == (mqd_t)-1) {
		int e = errno;

		if (e == EINVAL || e == EMFILE || e == ENOMEM) {
			snprintf(c->why, sizeof(c->why),
				 "mq_open of %zu-byte messages: %s (see "
				 "fs.mqueue.msgsize_max)",
				 c->msg_size, strerror(e));
			return -EMSGSIZE;
		}
		return -e;
	}
	return 0;
}

static int mq_bopen(struct bt_chan *c, enum bt_role role)
{
	(void)c;
	(void)role;
	return 0;
}

static int mq_bsend(struct bt_chan *c, const void *msg, size_t len)
{
	struct mq *m = c->priv;

	while (mq_send(m->q, msg, len, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static long mq_brecv(struct bt_chan *c, void *buf, size_t cap)
{
	struct mq *m = c->priv;

	for (;;) {
		ssize_t n = mq_receive(m->q, buf, cap, NULL);

		if (n >= 0)
			return (long)n;
		if (errno != EINTR)
			return errno == EMSGSIZE ? -EMSGSIZE : -errno;
	}
}

static void mq_teardown(struct bt_chan *c)
{
	struct mq *m = c->priv;

	if (!m)
		return;
	if (m->q != (mqd_t)-1)
		mq_close(m->q);
	mq_unlink(m->name);
	free(m);
	c->priv = NULL;
}

const struct bt_transport bt_mq = {
	.abi = BT_ABI,
	.name = "mq",
	.label = "POSIX message queue",
	.setup = mq_setup,
	.open = mq_bopen,
	.send = mq_bsend,
	.recv = mq_brecv,
	.teardown = mq_teardown,
};
