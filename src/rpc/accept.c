/* SPDX-License-Identifier: MIT */
/*
 * rpc/accept.c - a server's acceptor thread: who may connect, the
 * handshakes under way, making and answering a client's channel
 * (accept_chan), and its watch over the channels (deaths through epoll,
 * readers running a handler in place, errors owed).
 *
 * Layer: above calls.c and workers.c.  Calls chan.c, workers.c and
 * handshake.c; nothing of connect.c or endpoint.c.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../internal.h"
#include "rpc.h"

/*
 * May a peer of this uid and gid (SO_PEERCRED: the kernel's word) connect?
 * The server's own uid and root always; then the lists of the options if
 * there are any, else the requested mode's group bits (the peer's gid is
 * the server's egid) and other bits (anyone).
 */
static int peer_allowed(const struct shmk_rpc *ep, uid_t uid, gid_t gid)
{
	size_t i;

	if (uid == 0 || uid == ep->self_uid)
		return 1;
	if (ep->n_allow_uid || ep->n_allow_gid) {
		for (i = 0; i < ep->n_allow_uid; i++)
			if (ep->allow_uid[i] == uid)
				return 1;
		for (i = 0; i < ep->n_allow_gid; i++)
			if (ep->allow_gid[i] == gid)
				return 1;
		return 0;
	}
	if (ep->conn_mode & 0007)
		return 1;
	return (ep->conn_mode & 0070) && gid == ep->self_gid;
}

/* Tells the client on fd why not (without waiting: the answer goes into
 * an empty socket buffer), and counts it. */
static void say_no(struct shmk_rpc *ep, int fd, int why)
{
	struct hs_answer a = {.magic = HS_MAGIC,
			      .version = HS_VERSION,
			      .type = HS_REFUSE,
			      .status = why};

	count(ep, C_REFUSED, 1);
	(void)shmk__rpc_send_hs(fd, &a, sizeof(a), NULL, 0);
}

static void refuse(struct shmk_rpc *ep, int fd, int why)
{
	say_no(ep, fd, why);
	close(fd);
}

/* Over a limit?  -EUSERS if the server has max_chans channels, or this
 * pid max_per_pid; else 0.  Only the acceptor adds channels, so the
 * answer holds until it adds this one. */
static int over_limit(struct shmk_rpc *ep, pid_t pid)
{
	unsigned mine = 0, all;
	struct chan *ch;

	pthread_mutex_lock(&ep->mu);
	all = ep->nchans;
	for (ch = ep->chans; ch; ch = ch->next)
		mine += ch->pid == pid;
	pthread_mutex_unlock(&ep->mu);
	return all >= ep->max_chans || mine >= ep->max_per_pid ? -EUSERS : 0;
}

/*
 * Puts (op EPOLL_CTL_ADD) or puts back (EPOLL_CTL_MOD) ch's socket and
 * pidfd in the acceptor's epoll set, each for one report (EPOLLONESHOT:
 * a death is reported once, not for as long as the reader takes to end
 * the channel).  A channel that cannot be watched so (the kernel's
 * max_user_watches) has its reader look every 10 ms instead.
 */
static void watch_chan(struct shmk_rpc *ep, struct chan *ch, int op)
{
	struct epoll_event es = {.events = EPOLLRDHUP | EPOLLONESHOT,
				 .data.u64 = ch->num};
	struct epoll_event ep_ = {.events = EPOLLIN | EPOLLONESHOT,
				  .data.u64 = ch->num};

	if (epoll_ctl(ep->epfd, op, ch->sock, &es) < 0 ||
	    epoll_ctl(ep->epfd, op, ch->pidfd, &ep_) < 0)
		atomic_store_explicit(&ch->unwatched, 1, memory_order_relaxed);
}

/*
 * Stage 1 of a channel: its two rings, and our hello in the ring to the
 * client; fds are the rings' descriptors, for the answer.
 */
static int accept_make_rings(struct shmk_rpc *ep, struct chan *ch, int fds[2])
{
	struct shmk_opts o = {
		.spin_us = ep->spin_ns > 0 ? (int)(ep->spin_ns / 1000) : -1};
	int rc;

	/* Anonymous rings (mode 0666: a client of another user reopens the
	 * descriptor it receives), sealed against shrinking and growing:
	 * nobody can open them by name, nor make a reader fault. */
	rc = shmk_ring_create(NULL, ep->nodes, ep->node_size, &o, &ch->in);
	if (rc < 0)
		return rc;
	rc = shmk_ring_create(NULL, ep->nodes, ep->node_size, &o, &ch->out);
	if (rc < 0)
		return rc;
	rc = shmk__rpc_say_hello(ch);
	if (rc < 0)
		return rc;
	fds[0] = shmk_ring_fd(ch->in);
	if (fds[0] < 0)
		return fds[0];
	fds[1] = shmk_ring_fd(ch->out);
	if (fds[1] < 0)
		return fds[1];
	return 0;
}

/*
 * Stage 2: the channel takes the client's socket and pidfd, gets its
 * number (in the answer a too), joins the server's list and is watched.
 */
static void accept_publish(struct shmk_rpc *ep, struct chan *ch,
			   const struct pending *p, int pidfd,
			   struct hs_answer *a)
{
	ch->sock = p->fd;
	ch->pidfd = pidfd;
	ch->pid = p->pid;
	pthread_mutex_lock(&ep->mu);
	a->chan = ch->num = ++ep->next_chan;
	ch->next = ep->chans;
	ep->chans = ch;
	ep->nchans++;
	pthread_mutex_unlock(&ep->mu);
	count(ep, C_CLIENTS, 1);
	watch_chan(ep, ch, EPOLL_CTL_ADD);
}

/*
 * Stage 3: the channel's reader, then the answer a with the rings'
 * descriptors fds.  A channel whose reader cannot start is ended, and
 * the client told why.
 */
static void accept_answer(struct shmk_rpc *ep, struct chan *ch,
			  const struct hs_answer *a, const int fds[2])
{
	int rc;

	/* The reader first: a client told yes must find its channel served.
	 * Our own reference keeps ch while we answer (the reader may end it
	 * at any time from here). */
	atomic_fetch_add(&ch->refs, 1);
	rc = shmk__rpc_start_reader(ch);
	if (rc < 0) {
		say_no(ep, ch->sock, rc);
		shmk__rpc_chan_end(ch);
		shmk__rpc_chan_put(
			ch); /* the last reference: closes the socket */
		return;
	}
	rc = shmk__rpc_send_hs(ch->sock, a, sizeof(*a), fds, 2);
	/* The client has its own descriptors now (or never will): ours
	 * need not stay open. */
	shmk__region_unshare(shmk__ring_region(ch->in));
	shmk__region_unshare(shmk__ring_region(ch->out));
	if (rc < 0)
		atomic_store_explicit(&ch->dead, 1, memory_order_release);
	else
		count(ep, C_CONNECTS, 1);
	shmk__rpc_chan_put(ch);
}

/*
 * Makes the channel of the client on p (its hello read and checked), and
 * answers.  The socket and pidfd are the channel's from here, or closed.
 * Nothing here waits for the client: the answer goes into an empty socket
 * buffer.
 */
static void accept_chan(struct shmk_rpc *ep, struct pending *p, int pidfd)
{
	struct hs_answer a = {.magic = HS_MAGIC,
			      .version = HS_VERSION,
			      .type = HS_ACCEPT,
			      .nodes = ep->nodes,
			      .node_size = ep->node_size,
			      .max_msg = ep->max_msg};
	struct chan *ch = shmk__rpc_chan_new(ep);
	int rc, fds[2];

	if (!ch) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = accept_make_rings(ep, ch, fds);
	if (rc < 0)
		goto fail;
	SHMK__CRASH("rpc_accept_created"); /* rings made, no answer */
	accept_publish(ep, ch, p, pidfd, &a);
	accept_answer(ep, ch, &a, fds);
	return;
fail:
	if (ch)
		shmk__rpc_chan_put(ch);
	close(pidfd);
	refuse(ep, p->fd, rc);
}

/*
 * The hello waiting on p's socket: 0 if it is one and its pid is the
 * sender's, -EAGAIN if nothing waits after all, else why not and, in
 * *quiet, whether that is worth no answer (a malformed hello).
 */
static int hello_read(struct pending *p, int *quiet)
{
	char buf[2 * SHMK__RPC_HELLO_SIZE];
	uint32_t pid;
	ssize_t n;
	int fds[1], nfds;

	/* No descriptor belongs in a hello: any that came is closed. */
	n = shmk__rpc_recv_msg(p->fd, buf, sizeof(buf), fds, 0, &nfds);
	if (n == -EAGAIN)
		return -EAGAIN; /* spurious: still pending */
	if (n < 0 || shmk__rpc_hello_parse(buf, (size_t)n, &pid) < 0) {
		*quiet = 1; /* malformed: not worth an answer */
		return -EPROTO;
	}
	/* A pid that is not the sender's, as the kernel sees it: a lie, or
	 * a client in another pid namespace. */
	if ((pid_t)pid != p->pid)
		return -EACCES;
	return 0;
}

/* May the client on p have a channel?  0, or why not. */
static int hello_judge(struct shmk_rpc *ep, const struct pending *p)
{
	if (!peer_allowed(ep, p->uid, p->gid))
		return -EACCES;
	return over_limit(ep, p->pid);
}

/* The client on p has said something: its hello, or a lie. */
static void handshake(struct shmk_rpc *ep, struct pending *p)
{
	int rc, quiet = 0, pidfd;

	rc = hello_read(p, &quiet);
	if (rc == -EAGAIN)
		return;
	if (rc < 0)
		goto fail;
	SHMK__CRASH("rpc_accept_hello"); /* hello read, nothing made */
	rc = hello_judge(ep, p);
	if (rc < 0)
		goto fail;
	pidfd = shmk__rpc_peer_pidfd(p->fd, p->pid);
	if (pidfd < 0) { /* gone already */
		rc = pidfd;
		quiet = 1;
		goto fail;
	}
	accept_chan(ep, p, pidfd);
	p->fd = -1;
	return;
fail:
	if (quiet) {
		count(ep, C_REFUSED, 1);
		close(p->fd);
	} else {
		refuse(ep, p->fd, rc);
	}
	p->fd = -1;
}

/* Takes the connections waiting on the listening socket into the table,
 * as long as there is room. */
static void take_connections(struct shmk_rpc *ep)
{
	while (ep->npend < MAX_PENDING) {
		struct ucred cr;
		socklen_t l = sizeof(cr);
		int fd = accept4(ep->lsock, NULL, NULL,
				 SOCK_CLOEXEC | SOCK_NONBLOCK),
		    i, mine = 0, uid_mine = 0;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			/* Out of descriptors: the next poll retries, a
			 * moment later (the socket stays readable). */
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOMEM || errno == ENOBUFS)
				shmk__nap(10000000, SHMK__FOREVER);
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0 ||
		    l != sizeof(cr) || cr.pid <= 0) {
			close(fd);
			continue;
		}
		/* Who may not connect holds nothing, not even a place. */
		if (!peer_allowed(ep, cr.uid, cr.gid)) {
			refuse(ep, fd, -EACCES);
			continue;
		}
		for (i = 0; i < ep->npend; i++) {
			mine += ep->pend[i].pid == cr.pid;
			uid_mine += ep->pend[i].uid == cr.uid;
		}
		/* One process, or one other user's processes, may not hold
		 * up the table: told to try again (connect does, within its
		 * wait). */
		if (mine >= PENDING_PER_PID ||
		    (cr.uid != ep->self_uid && uid_mine >= PENDING_PER_UID)) {
			refuse(ep, fd, -EAGAIN);
			continue;
		}
		ep->pend[ep->npend++] = (struct pending){
			.fd = fd,
			.pid = cr.pid,
			.uid = cr.uid,
			.gid = cr.gid,
			.deadline = shmk__mono_ns() + HANDSHAKE_NS};
	}
}

/*
 * How long a channel's frames wait while its reader runs a handler in
 * place before the acceptor reads them (cancels, more requests, replies
 * to the server's calls), and how long the acceptor keeps watching after
 * the last such run began.
 */
#define WATCH_NS      (UINT64_C(1000000))
#define WATCH_IDLE_NS (UINT64_C(100) * 1000000)

/* Reads, without waiting, the channels whose readers have been running a
 * handler for WATCH_NS or more; requests read so go to the workers. */
static void watch_inline(struct shmk_rpc *ep, uint64_t now)
{
	struct chan *late[16], *ch;
	int n = 0, i;

	pthread_mutex_lock(&ep->mu);
	for (ch = ep->chans; ch && n < 16; ch = ch->next) {
		uint64_t t = atomic_load_explicit(&ch->inline_since,
						  memory_order_relaxed);

		if (t && now > t && now - t >= WATCH_NS) {
			atomic_fetch_add(&ch->refs, 1);
			late[n++] = ch;
		}
	}
	pthread_mutex_unlock(&ep->mu);
	for (i = 0; i < n; i++) {
		shmk__rpc_help_read(late[i]);
		shmk__rpc_chan_put(late[i]);
	}
}

/* Takes a reference to the channel numbered num, or NULL. */
static struct chan *chan_by_num(struct shmk_rpc *ep, uint64_t num)
{
	struct chan *ch;

	pthread_mutex_lock(&ep->mu);
	for (ch = ep->chans; ch; ch = ch->next)
		if (ch->num == num)
			break;
	if (ch)
		atomic_fetch_add(&ch->refs, 1);
	pthread_mutex_unlock(&ep->mu);
	return ch;
}

/*
 * Channels whose socket hung up or whose peer's pidfd became readable:
 * the peer is gone (peer_dead says so for certain).  Its rings are shut
 * down, which wakes its reader (it ends the channel: calls fail, the
 * client is forgotten) and any worker waiting for room.
 */
static void watch_deaths(struct shmk_rpc *ep)
{
	struct epoll_event ev[64];
	int n, i;

	n = epoll_wait(ep->epfd, ev, 64, 0);
	for (i = 0; i < n; i++) {
		struct chan *ch = chan_by_num(ep, ev[i].data.u64);

		if (!ch)
			continue;
		if (shmk__rpc_peer_dead(ch)) {
			atomic_store_explicit(&ch->dead, 1,
					      memory_order_release);
			shmk_ring_shutdown(ch->in);
			shmk_ring_shutdown(ch->out);
		} else {
			watch_chan(ep, ch, EPOLL_CTL_MOD); /* not yet */
		}
		shmk__rpc_chan_put(ch);
	}
}

/* Sends, without waiting, the error frames owed on every channel (their
 * readers may sleep for a second). */
static void flush_owed(struct shmk_rpc *ep)
{
	struct chan *owing[16], *ch;
	int n = 0, i;

	pthread_mutex_lock(&ep->mu);
	for (ch = ep->chans; ch && n < 16; ch = ch->next)
		if (atomic_load_explicit(&ch->nowed, memory_order_relaxed)) {
			atomic_fetch_add(&ch->refs, 1);
			owing[n++] = ch;
		}
	pthread_mutex_unlock(&ep->mu);
	for (i = 0; i < n; i++) {
		shmk__rpc_send_owed(owing[i]);
		shmk__rpc_chan_put(owing[i]);
	}
}

/*
 * The acceptor: one poll over the stop eventfd, the listening socket, the
 * channels' liveness (epoll) and every handshake under way.  It never waits on a client: a connection
 * that says nothing within HANDSHAKE_NS is dropped, and each message is
 * read without waiting.
 */
void *shmk__rpc_acceptor_main(void *arg)
{
	struct shmk_rpc *ep = arg;
	struct pollfd pf[3 + MAX_PENDING];
	int i;

	for (;;) {
		uint64_t now = shmk__mono_ns(), first = SHMK__FOREVER;
		int n = 3, ms, j, watching;

		pf[0] = (struct pollfd){.fd = ep->stopfd, .events = POLLIN};
		pf[1] = (struct pollfd){
			.fd = ep->npend < MAX_PENDING ? ep->lsock : -1,
			.events = POLLIN};
		pf[2] = (struct pollfd){.fd = ep->epfd, .events = POLLIN};
		for (i = 0; i < ep->npend; i++) {
			pf[n++] = (struct pollfd){.fd = ep->pend[i].fd,
						  .events = POLLIN};
			if (ep->pend[i].deadline < first)
				first = ep->pend[i].deadline;
		}
		ms = first == SHMK__FOREVER ? -1
		     : first <= now	    ? 0
				    : (int)((first - now + 999999) / 1000000);
		/* Watch the readers that run handlers in place, every
		 * millisecond while they do; else sleep, and be woken by the
		 * next that begins (run_or_queue). */
		watching = atomic_load_explicit(&ep->ninline,
						memory_order_relaxed) ||
			   now - atomic_load_explicit(&ep->inline_ns,
						      memory_order_relaxed) <
				   WATCH_IDLE_NS;
		if (!watching) {
			atomic_store_explicit(&ep->watch_asleep, 1,
					      memory_order_seq_cst);
			if (atomic_load_explicit(&ep->ninline,
						 memory_order_seq_cst)) {
				watching = 1;
				atomic_store_explicit(&ep->watch_asleep, 0,
						      memory_order_relaxed);
			}
		}
		if (watching && (ms < 0 || ms > 1))
			ms = 1;
		if (atomic_load_explicit(&ep->nowed, memory_order_seq_cst) &&
		    (ms < 0 || ms > 10))
			ms = 10;
		if (poll(pf, (nfds_t)n, ms) < 0 && errno != EINTR)
			shmk__nap(1000000, SHMK__FOREVER);
		atomic_store_explicit(&ep->watch_asleep, 0,
				      memory_order_relaxed);
		if (pf[0].revents) {
			uint64_t v;

			/* A wake to watch (close sets stop first: looked at
			 * after this read, it is seen). */
			if (read(ep->stopfd, &v, sizeof(v)) < 0)
				(void)0; /* already read: nothing to do */
		}
		if (atomic_load_explicit(&ep->stop, memory_order_acquire))
			break;
		now = shmk__mono_ns();
		if (atomic_load_explicit(&ep->ninline, memory_order_relaxed))
			watch_inline(ep, now);
		if (pf[2].revents)
			watch_deaths(ep);
		if (atomic_load_explicit(&ep->nowed, memory_order_relaxed))
			flush_owed(ep);
		for (i = 0; i < ep->npend; i++) {
			struct pending *p = &ep->pend[i];

			if (pf[3 + i].revents)
				handshake(ep, p);
			if (p->fd >= 0 && now >= p->deadline) {
				count(ep, C_REFUSED, 1); /* too slow */
				close(p->fd);
				p->fd = -1;
			}
		}
		for (i = j = 0; i < ep->npend; i++)
			if (ep->pend[i].fd >= 0)
				ep->pend[j++] = ep->pend[i];
		ep->npend = j;
		if (pf[1].revents)
			take_connections(ep);
	}
	for (i = 0; i < ep->npend; i++)
		close(ep->pend[i].fd);
	ep->npend = 0;
	return NULL;
}
