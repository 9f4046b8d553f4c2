/* SPDX-License-Identifier: MIT */
/*
 * rpc/endpoint.c - shmk_rpc endpoints: the rpc kind, the handler table every
 * channel gets, serve (the object, its takeover from a dead server, the
 * listening socket), connect (retries around connect_once), close and
 * stats.
 *
 * Layer: the top of rpc.  Calls every other file of src/rpc/ but
 * testhooks.c.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../internal.h"
#include "rpc.h"

static int rpc_layout(const uint64_t geom[SHMK__GEOM_N], uint64_t *total)
{
	int i;

	for (i = 3; i < SHMK__GEOM_N; i++)
		if (geom[i])
			return -EINVAL;
	if (!geom_ok(geom))
		return -EINVAL;
	*total = SHMK__HDR_SIZE;
	return 0;
}

const struct shmk__kind shmk__rpc_kind = {
	.kind = SHMK_KIND_RPC,
	.name = "rpc",
	.layout = rpc_layout,
	/* Clients read the header (for the socket's nonce) and never
	 * attach: the object may be readable by those who cannot write it. */
	.creator_only = 1,
	.geom_names = {"nodes", "node_size", "max_msg", NULL},
	.counter_names = {"calls", "served", "replies", "bytes_out", "bytes_in",
			  "timeouts", "cancels_sent", "cancels_seen", "errors",
			  "malformed", "discarded", "clients", "connects",
			  "refused", NULL},
};

/* What every channel of an endpoint calls above itself. */
static const struct chan_ops rpc_chan_ops = {
	.on_request = shmk__rpc_on_request,
	.on_reply = shmk__rpc_on_reply,
	.on_cancel = shmk__rpc_on_cancel,
	.run_request = shmk__rpc_run_or_queue,
	.send_owed = shmk__rpc_send_owed,
	.fail_calls = shmk__rpc_calls_fail,
	.hand_over = shmk__rpc_hand_over,
};

int shmk__rpc_ep_new(const char *name, const struct shmk_rpc_opts *o,
		     struct shmk_rpc **out, struct shmk_rpc **epp)
{
	struct shmk_rpc *ep;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!name || strchr(name, '/'))
		return -EINVAL; /* plain names, as before: kept for clients */
	if (strlen(name) > SHMK_RPC_NAME_MAX)
		return -ENAMETOOLONG;
	if (o && (o->workers < -1 || o->workers > 1024 ||
		  (o->n_allow_uid && !o->allow_uid) ||
		  (o->n_allow_gid && !o->allow_gid) || o->max_clients < 0 ||
		  o->max_per_pid < 0))
		return -EINVAL;
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return -ENOMEM;
	memcpy(ep->name, name, strlen(name) + 1); /* length checked above */
	if (o) {
		ep->fn = o->handler;
		ep->arg = o->arg;
	}
	ep->r.fd = -1;
	ep->lsock = -1;
	ep->stopfd = -1;
	ep->epfd = -1;
	atomic_init(&ep->pollfd, -1);
	ep->owner = getpid();
	ep->chan_ops = &rpc_chan_ops;
	ep->look_ns = PEER_LOOK_NS;
	ep->ctr = ep->own;
	pthread_mutex_init(&ep->mu, NULL);
	atomic_store(&ep->next_id, 1);
	*epp = ep;
	return 0;
}

/* A server's (or lab's) geometry and counters: its object's. */
void shmk__rpc_ep_geometry(struct shmk_rpc *ep)
{
	ep->nodes = ep->r.geom[0];
	ep->node_size = ep->r.geom[1];
	ep->max_msg = ep->r.geom[2];
	ep->spin_ns = ep->r.spin_ns;
	ep->ctr = ep->r.hdr->counter;
}

static void ep_stop(struct shmk_rpc *ep)
{
	struct chan *ch;
	int i;

	atomic_store_explicit(&ep->stop, 1, memory_order_seq_cst);
	shmk__ec_notify(NULL, &ep->qec);
	if (ep->acceptor_started) {
		uint64_t one = 1;

		/* The acceptor polls the eventfd: it wakes at once. */
		if (write(ep->stopfd, &one, sizeof(one)) < 0)
			(void)0; /* cannot fail: a counter far from full */
		pthread_join(ep->acceptor, NULL);
		ep->acceptor_started = 0;
	}
	/* From here nobody reaches the address. */
	if (ep->lsock >= 0)
		close(ep->lsock);
	ep->lsock = -1;
	/* Readers may sleep for a second: the rings they read are shut
	 * down (which wakes them), a reader standing aside is notified. */
	pthread_mutex_lock(&ep->mu);
	for (ch = ep->chans; ch; ch = ch->next) {
		atomic_store_explicit(&ch->dead, 1, memory_order_seq_cst);
		if (ch->in && ch->sock >= 0)
			shmk_ring_shutdown(ch->in);
		shmk__ec_notify(NULL, &ch->want_ec);
	}
	pthread_mutex_unlock(&ep->mu);
	for (i = 0; i < ep->nworkers; i++)
		pthread_join(ep->workers[i], NULL);
	free(ep->workers);
	ep->workers = NULL;
	ep->nworkers = 0;
	while (atomic_load_explicit(&ep->readers, memory_order_acquire))
		shmk__nap(1000000, SHMK__FOREVER);
	/* Calls nobody collected go with the endpoint (no thread may be
	 * using it any more: see shmk_rpc_close). */
	while (ep->calls) {
		struct call *c = ep->calls;

		ep->calls = c->next;
		shmk__rpc_call_free(c);
	}
	for (;;) {
		pthread_mutex_lock(&ep->mu);
		ch = ep->chans;
		if (ch) {
			ep->chans = ch->next;
			ep->nchans -= ep->server ? 1 : 0;
		}
		pthread_mutex_unlock(&ep->mu);
		if (!ch)
			break;
		shmk__rpc_chan_put(ch);
	}
	/* Work never started. */
	while (ep->qhead) {
		struct inreq *in = ep->qhead;

		ch = in->ch;
		ep->qhead = in->qnext;
		shmk__rpc_inreq_drop(ch, in);
		shmk__rpc_chan_put(ch);
	}
}

void shmk__rpc_ep_free(struct shmk_rpc *ep)
{
	if (ep->r.hdr)
		shmk__region_close(&ep->r);
	if (ep->lsock >= 0)
		close(ep->lsock);
	if (ep->stopfd >= 0)
		close(ep->stopfd);
	if (ep->epfd >= 0)
		close(ep->epfd);
	if (atomic_load(&ep->pollfd) >= 0)
		close(atomic_load(&ep->pollfd));
	free(ep->pend);
	free(ep->allow_uid);
	free(ep->allow_gid);
	pthread_mutex_destroy(&ep->mu);
	free(ep);
}

/*
 * Binding happens inside the object's creation, after its nonce is drawn
 * and before its name appears (the kind's init hook runs there), so that
 * nobody can bind the address first.  The hook has no argument of its own:
 * the socket comes through the creating thread's variables.
 */
static _Thread_local int tl_bind_fd = -1;
static _Thread_local int tl_bind_rc;

static void rpc_init(struct shmk__region *r)
{
	struct sockaddr_un a;
	socklen_t al = shmk__rpc_sock_addr(&a, r->hdr->nonce);

	tl_bind_rc = 0;
	if (bind(tl_bind_fd, (struct sockaddr *)&a, al) < 0 ||
	    listen(tl_bind_fd, LISTEN_BACKLOG) < 0)
		tl_bind_rc = -errno;
}

/* A copy of a list of n ids of size bytes each, or NULL with *rc the
 * reason (-EINVAL: more than 65536; -ENOMEM). */
static void *copy_ids(const void *ids, size_t n, size_t size, int *rc)
{
	void *copy;

	if (n > 65536) {
		*rc = -EINVAL;
		return NULL;
	}
	copy = malloc(n * size);
	if (!copy) {
		*rc = -ENOMEM;
		return NULL;
	}
	return memcpy(copy, ids, n * size);
}

/* Copies the options' lists of who may connect. */
static int copy_allow(struct shmk_rpc *ep, const struct shmk_rpc_opts *o)
{
	int rc = 0;

	if (o && o->n_allow_uid) {
		ep->allow_uid = copy_ids(o->allow_uid, o->n_allow_uid,
					 sizeof(uid_t), &rc);
		if (!ep->allow_uid)
			return rc;
		ep->n_allow_uid = o->n_allow_uid;
	}
	if (o && o->n_allow_gid) {
		ep->allow_gid = copy_ids(o->allow_gid, o->n_allow_gid,
					 sizeof(gid_t), &rc);
		if (!ep->allow_gid)
			return rc;
		ep->n_allow_gid = o->n_allow_gid;
	}
	return 0;
}

/*
 * Is the creator of the rpc object on fd alive?  1 yes, 0 no, < 0 if fd
 * holds no valid rpc object or a participant's liveness cannot be asked.
 * Read as shmk_stat() reads it (a private copy of the header, the kernel's
 * word on each participant's lock byte), from the region layer: stat.c
 * sits above every kind, rpc included.
 */
static int creator_alive(int fd)
{
	struct shmk__hdr *h = calloc(1, sizeof(*h));
	struct stat fs;
	int rc, i, alive = 0;

	if (!h)
		return -ENOMEM;
	rc = shmk__region_peek_fd(fd, &fs, h);
	if (rc < 0)
		goto out;
	rc = h->kind == SHMK_KIND_RPC
		     ? shmk__hdr_check(h, (uint64_t)fs.st_size, &shmk__rpc_kind)
		     : -EPROTO;
	if (rc < 0)
		goto out;
	if (atomic_load_explicit(&h->state, memory_order_relaxed) >
	    SHMK_STATE_SHUTDOWN) {
		rc = -EBADMSG;
		goto out;
	}
	for (i = 0; i < SHMK__MAX_PARTS; i++) {
		const struct shmk__part *p = &h->part[i];
		int held;

		if (!atomic_load_explicit(&p->gen, memory_order_relaxed))
			continue;
		held = shmk__ofd_held(fd, SHMK__LOCK_BYTE(i));
		if (held < 0) {
			rc = held;
			goto out;
		}
		if (held &&
		    (atomic_load_explicit(&p->flags, memory_order_relaxed) &
		     SHMK__PART_CREATOR))
			alive = 1;
	}
out:
	free(h);
	return rc < 0 ? rc : alive;
}

/*
 * Removes the object at name if it is a dead server's.  It is looked at,
 * and removed, under an exclusive flock() of that very file, taken by
 * every server that takes a name over, after checking that the name still
 * holds that file: of servers racing to take over one dead server's name,
 * one removes it and the others find the winner's new object (alive) or
 * nothing, never a stale verdict on a file that is gone.  (flock locks
 * are not the OFD locks that say who lives: neither sees the other.  A
 * process that may read the file can hold the flock and so delay a
 * takeover, never cause a wrong one.)  Returns 0 if the name is free now,
 * -EADDRINUSE if it holds a live server's object, -EAGAIN if another
 * server is taking it over (look again), -EEXIST if it holds something
 * else or cannot be judged.
 */
static int take_over(const char *name)
{
	char path[SHMK__PATH_MAX];
	struct stat own, now;
	int fd, rc;

	rc = shmk__name_path(name, path, sizeof(path));
	if (rc < 0)
		return -EEXIST;
	fd = open(path,
		  O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? 0 : -EEXIST;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return errno == EWOULDBLOCK ? -EAGAIN : -EEXIST;
	}
	rc = creator_alive(fd);
	if (rc > 0)
		rc = -EADDRINUSE;
	else if (rc < 0)
		rc = -EEXIST; /* not an rpc object, or cannot be judged */
	/* A dead creator stays dead: what is left to check is that the name
	 * still holds this file (no other taker removed it before we had
	 * the lock). */
	if (!rc && fstat(fd, &own) < 0)
		rc = -EEXIST;
	if (!rc && fstatat(AT_FDCWD, path, &now, AT_SYMLINK_NOFOLLOW) < 0)
		rc = errno == ENOENT ? -EAGAIN : -EEXIST;
	if (!rc && (now.st_ino != own.st_ino || now.st_dev != own.st_dev))
		rc = -EAGAIN;
	SHMK__CRASH("rpc_takeover_locked"); /* judged dead, not removed */
	if (!rc && unlink(path) < 0 && errno != ENOENT)
		rc = -EEXIST;
	close(fd); /* and with it the flock */
	return rc;
}

/*
 * Stage 1 of a server: the object name (geometry geom, options ro) with
 * its listening socket bound, taken over from a dead server if need be.
 * -EADDRINUSE if a live server has the name.
 */
static int serve_create_object(struct shmk_rpc *ep, const char *name,
			       const uint64_t geom[SHMK__GEOM_N],
			       const struct shmk_opts *ro)
{
	uint64_t give_up = shmk__mono_ns() + TAKEOVER_NS;
	int rc, src;

	for (;;) {
		int s = socket(AF_UNIX,
			       SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
			       0);

		if (s < 0) {
			rc = -errno;
			break;
		}
		tl_bind_fd = s;
		tl_bind_rc = -EINVAL; /* the hook did not run */
		rc = shmk__region_create(&ep->r, name, &shmk__rpc_kind, geom,
					 ro, rpc_init);
		tl_bind_fd = -1;
		if (!rc && tl_bind_rc < 0) {
			/* Published, yet no address: it goes again. */
			rc = tl_bind_rc;
			shmk__region_unlink(&ep->r, name);
			shmk__region_close(&ep->r);
		}
		if (!rc) {
			ep->lsock = s;
			break;
		}
		close(s);
		if (rc != -EEXIST)
			break;
		/* A server that died leaves its object: take the name over,
		 * never from a live one.  One killed a moment ago can still
		 * look alive, and the name can come and go under a peer's
		 * takeover: look again, for TAKEOVER_NS at most. */
		if (shmk__mono_ns() > give_up)
			break;
		src = take_over(name);
		if (src == -EADDRINUSE)
			shmk__nap(TAKEOVER_NAP_NS, give_up);
		else if (src == -EAGAIN)
			shmk__nap(TAKEOVER_NAP_NS / 5, give_up);
		else if (src < 0)
			break;
	}
	return rc == -EEXIST ? -EADDRINUSE : rc;
}

/*
 * Stage 2: the server's geometry, who may connect and its limits (the
 * object's mode and o), the handshake table, the stop eventfd and the
 * epoll set of the channels.
 */
static int serve_setup(struct shmk_rpc *ep, const struct shmk_rpc_opts *o,
		       unsigned mode)
{
	shmk__rpc_ep_geometry(ep);
	ep->server = 1;
	ep->conn_mode = mode;
	ep->self_uid = geteuid();
	ep->self_gid = getegid();
	ep->max_chans = o && o->max_clients ? (unsigned)o->max_clients
					    : DEFAULT_MAX_CHANS;
	ep->max_per_pid = o && o->max_per_pid ? (unsigned)o->max_per_pid
					      : DEFAULT_MAX_PER_PID;
	ep->pend = calloc(MAX_PENDING, sizeof(*ep->pend));
	ep->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!ep->pend)
		return -ENOMEM;
	if (ep->stopfd < 0)
		return -errno;
	ep->epfd = epoll_create1(EPOLL_CLOEXEC);
	return ep->epfd < 0 ? -errno : 0;
}

/* Stage 3: the workers, then the acceptor. */
static int serve_start(struct shmk_rpc *ep, const struct shmk_rpc_opts *o)
{
	int rc = shmk__rpc_start_workers(ep, o);

	if (rc < 0)
		return rc;
	rc = -pthread_create(&ep->acceptor, NULL, shmk__rpc_acceptor_main, ep);
	ep->acceptor_started = rc == 0;
	return rc;
}

SHMK__EXPORT int shmk_rpc_serve(const char *name, const struct shmk_rpc_opts *o,
				struct shmk_rpc **out)
{
	uint64_t geom[SHMK__GEOM_N] = {o && o->nodes ? o->nodes : 64,
				       o && o->node_size ? o->node_size : 4096,
				       o && o->max_msg ? o->max_msg
						       : UINT64_C(64) << 20};
	unsigned mode = o && o->mode ? o->mode : 0600;
	/* Clients only read the object: nobody but us may write it. */
	struct shmk_opts ro = {.mode = mode & ~(unsigned)(S_IWGRP | S_IWOTH),
			       .spin_us = o ? o->spin_us : 0};
	struct shmk_rpc *ep;
	int rc = shmk__rpc_ep_new(name, o, out, &ep), created = 0;

	if (rc < 0)
		return rc;
	if ((mode & ~0777u) || (mode & 0600u) != 0600u) {
		rc = -EINVAL;
		goto fail;
	}
	rc = copy_allow(ep, o);
	if (rc < 0)
		goto fail;
	rc = serve_create_object(ep, name, geom, &ro);
	if (rc < 0)
		goto fail;
	created = 1;
	rc = serve_setup(ep, o, mode);
	if (rc < 0)
		goto fail;
	rc = serve_start(ep, o);
	if (rc < 0)
		goto fail;
	*out = ep;
	return 0;
fail:
	if (created) {
		ep_stop(ep);
		shmk__region_unlink(&ep->r, name);
	}
	shmk__rpc_ep_free(ep);
	return rc;
}

/*
 * Stage 1 of a client: its channel, by connect_once attempts until the
 * wait of ro runs out.  -ETIMEDOUT if the server stayed busy.
 */
static int connect_retry(struct shmk_rpc *ep, const char *name,
			 const struct shmk_opts *ro)
{
	uint64_t deadline;
	int rc, nap_ms = 1, busy_ms = 1;
	uint64_t jitter = shmk__mono_ns() ^ ((uint64_t)getpid() << 32);

	deadline = shmk__deadline(ro->wait_ms);
	for (;;) {
		/* The answer gets a second at least, as it always had. */
		uint64_t answer_by =
			remaining_ms(deadline) >= 0 &&
					remaining_ms(deadline) < 1000
				? shmk__deadline(1000)
				: deadline;

		rc = shmk__rpc_connect_once(ep, name, &shmk__rpc_kind, ro,
					    answer_by);
		/* No server yet, a dead one's object, a full backlog: wait
		 * for a server (a new one takes the name over) while we
		 * may.  A full backlog is waited for a second at least. */
		if (rc != -ENOENT && rc != -ECONNREFUSED && rc != -EAGAIN)
			break;
		if (shmk__mono_ns() >= (rc == -EAGAIN ? answer_by : deadline))
			break;
		/* A busy server (its backlog or handshake table full) is
		 * given room: the naps grow to 128 ms, each a random 1/2 to
		 * 1 of its length, so that a thousand clients connecting at
		 * once do not retry in step (at most 10 ms, they kept both
		 * CPUs busy and the acceptor starved). */
		if (rc == -EAGAIN) {
			jitter = jitter * 6364136223846793005ull +
				 1442695040888963407ull;
			busy_ms = busy_ms * 2 > 128 ? 128 : busy_ms * 2;
			shmk__nap((uint64_t)busy_ms * 500000 +
					  (jitter >> 33) %
						  ((uint64_t)busy_ms * 500000 +
						   1),
				  answer_by);
			continue;
		}
		shmk__nap((uint64_t)nap_ms * 1000000, deadline);
		nap_ms = nap_ms * 2 > 10 ? 10 : nap_ms * 2;
	}
	return rc == -EAGAIN ? -ETIMEDOUT : rc;
}

/* Stage 2: the workers, then the channel's reader. */
static int connect_start(struct shmk_rpc *ep, const struct shmk_rpc_opts *o)
{
	int rc = shmk__rpc_start_workers(ep, o);

	return rc < 0 ? rc : shmk__rpc_start_reader(ep->chans);
}

SHMK__EXPORT int shmk_rpc_connect(const char *name,
				  const struct shmk_rpc_opts *o,
				  struct shmk_rpc **out)
{
	struct shmk_opts ro = {.wait_ms = o ? o->wait_ms : 0,
			       .spin_us = o ? o->spin_us : 0,
			       .flags = o ? o->flags & SHMK_F_ALLOW_SHARED : 0};
	struct shmk_rpc *ep;
	int rc = shmk__rpc_ep_new(name, o, out, &ep), connected = 0;

	if (rc < 0)
		return rc;
	rc = shmk__opts_check(&ro, 0);
	if (rc < 0)
		goto fail;
	ep->spin_ns = shmk__spin_ns(&ro);
	rc = connect_retry(ep, name, &ro);
	if (rc < 0)
		goto fail;
	connected = 1;
	rc = connect_start(ep, o);
	if (rc < 0)
		goto fail;
	*out = ep;
	return 0;
fail:
	if (connected)
		ep_stop(ep);
	shmk__rpc_ep_free(ep);
	return rc;
}

/*
 * Close in a child of fork() that inherited the endpoint: the threads are
 * the parent's (none runs here) and a lock may have been held at the fork,
 * so nothing is joined, locked or told; the child's copies of the
 * descriptors and the memory go.  Writing the parent's stop eventfd, which
 * the child shares, would make the parent's acceptor spin.
 */
static void ep_free_forked(struct shmk_rpc *ep)
{
	struct chan *ch, *next;
	int i;

	for (ch = ep->chans; ch; ch = next) {
		next = ch->next;
		shmk_ring_close(ch->in); /* a child's copy: only freed */
		shmk_ring_close(ch->out);
		if (ch->sock >= 0)
			close(ch->sock);
		if (ch->pidfd >= 0)
			close(ch->pidfd);
		free(ch); /* what else it holds is the parent's business */
	}
	for (i = 0; i < ep->npend; i++)
		if (ep->pend[i].fd >= 0)
			close(ep->pend[i].fd);
	ep->npend = 0;
	free(ep->workers);
	shmk__rpc_ep_free(ep);
}

SHMK__EXPORT int shmk_rpc_close(struct shmk_rpc *ep)
{
	int rc = 0;

	if (!ep)
		return 0;
	if (getpid() != ep->owner) {
		ep_free_forked(ep);
		return 0;
	}
	if (!ep->server && ep->chans && !atomic_load(&ep->chans->dead)) {
		/* Goodbye, so that the server need not find out. */
		struct shmk_msg m;

		if (shmk_ring_reserve(ep->chans->out, &m, 0) == 0) {
			shmk__rpc_frame_write(
				&m, &(struct frame_out){.type = F_BYE}, 0, 0);
			shmk_ring_commit(ep->chans->out, &m);
		}
	}
	ep_stop(ep);
	if (ep->server)
		rc = shmk__region_unlink(&ep->r, ep->name);
	shmk__rpc_ep_free(ep);
	return rc == -ENOENT ? 0 : rc; /* removed by someone else: fine */
}

SHMK__EXPORT int shmk_rpc_stats(struct shmk_rpc *ep, struct shmk_rpc_stats *st)
{
	const _Atomic uint64_t *c;

	if (!ep || !st)
		return -EINVAL;
	c = ep->ctr;
#define GET(i) atomic_load_explicit(&c[i], memory_order_relaxed)
	st->calls = GET(C_CALLS);
	st->served = GET(C_SERVED);
	st->replies = GET(C_REPLIES);
	st->bytes_out = GET(C_BYTES_OUT);
	st->bytes_in = GET(C_BYTES_IN);
	st->timeouts = GET(C_TIMEOUTS);
	st->cancels_sent = GET(C_CANCELS_SENT);
	st->cancels_seen = GET(C_CANCELS_SEEN);
	st->errors = GET(C_ERRORS);
	st->malformed = GET(C_MALFORMED);
	st->discarded = GET(C_DISCARDED);
	st->clients = GET(C_CLIENTS);
	st->connects = GET(C_CONNECTS);
#undef GET
	return 0;
}

SHMK__EXPORT int shmk_rpc_pollfd(struct shmk_rpc *ep)
{
	int fd;

	if (!ep)
		return -EINVAL;
	if (getpid() != ep->owner)
		return -ECHILD;
	pthread_mutex_lock(&ep->mu);
	fd = atomic_load_explicit(&ep->pollfd, memory_order_relaxed);
	if (fd < 0) {
		fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (fd < 0)
			fd = -errno;
		else /* release: before any arming that finds it */
			atomic_store_explicit(&ep->pollfd, fd,
					      memory_order_release);
	}
	pthread_mutex_unlock(&ep->mu);
	return fd;
}

SHMK__EXPORT int shmk_rpc_wake(struct shmk_rpc *ep)
{
	if (!ep)
		return -EINVAL;
	/* seq_cst, as the load that begins a wait (shmk_rpc_wait). */
	atomic_fetch_add_explicit(&ep->wakes, 1, memory_order_seq_cst);
	return 0;
}
