/* SPDX-License-Identifier: MIT */
/*
 * rpc.c - shmk_rpc: request/response between processes.
 *
 * A server creates the rpc object NAME (a header: its geometry, its
 * counters, and the random nonce that names its socket) and listens on
 * the abstract UNIX SOCK_SEQPACKET address derived from that nonce, bound
 * before the object's name appears.  Only the server attaches to the
 * object; a client reads its header without mapping it, connects to the
 * socket, checks that the server's kernel-given uid owns the object, and
 * says hello (its pid).  The server knows the client only by what the
 * kernel says of the socket (SO_PEERCRED, a pidfd), decides whether it
 * may connect, makes its channel, two anonymous sealed rings (client to
 * server, server to client), and answers with their descriptors.  No
 * channel ring ever has a name.  The socket stays open for the channel's
 * life: its hang-up, or the peer's pidfd becoming readable, is the
 * peer's death; a dead peer ends the channel, and every call pending on
 * it fails with -EPIPE.  Nothing the peer writes in shared memory decides
 * who it is or whether it lives.
 *
 * Each message is one or more frames, a frame per ring node: a 48-byte
 * header (below) and a fragment of the message.  One reader thread per
 * channel takes frames, reassembles messages, completes calls and queues
 * requests; handlers run on worker threads only.  Everything read from a
 * frame or a socket message is validated before use; a bad frame is
 * counted and dropped.  docs/format.md describes the frame and the
 * handshake, docs/design.md the protocol.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

#define RPC_MAGIC   0x50524b53u /* "SKRP" */
#define RPC_VERSION 1
#define HDR	    48u

enum ftype { F_REQ = 1, F_REP, F_ERR, F_CANCEL, F_HELLO, F_BYE, F_MAX };

struct frame {
	uint32_t magic;
	uint16_t version;
	uint8_t type;
	uint8_t flags;	    /* 0 */
	int32_t status;	    /* F_ERR: the handler's negative code */
	uint32_t frag_len;  /* bytes of message in this frame */
	uint64_t msg_id;    /* the sender's id of this message */
	uint64_t corr_id;   /* F_REP, F_ERR, F_CANCEL: the request's id;
			      F_HELLO: informational, never trusted */
	uint64_t total_len; /* bytes of the whole message */
	uint64_t frag_off;  /* where this fragment goes */
};
_Static_assert(sizeof(struct frame) == HDR, "rpc frame");

/*
 * The handshake on the socket (docs/format.md, 5.6.2): the client's hello,
 * then the server's answer, which carries the two ring descriptors
 * (SCM_RIGHTS, client-to-server ring first) when it accepts.
 */
#define HS_MAGIC   0x48524b53u /* "SKRH" */
#define HS_VERSION 1
enum { HS_HELLO = 1, HS_ACCEPT = 2, HS_REFUSE = 3 };

struct hs_hello {
	uint32_t magic;
	uint16_t version;
	uint16_t type; /* HS_HELLO */
	uint32_t pid;  /* the client's getpid(): must match SO_PEERCRED */
	uint32_t zero;
};
_Static_assert(sizeof(struct hs_hello) == SHMK__RPC_HELLO_SIZE, "hello");

struct hs_answer {
	uint32_t magic;
	uint16_t version;
	uint16_t type;	/* HS_ACCEPT or HS_REFUSE */
	int32_t status; /* HS_REFUSE: why (negative errno); else 0 */
	uint32_t zero;
	uint64_t chan;	    /* HS_ACCEPT: the client's number (rq->peer) */
	uint64_t nodes;	    /* HS_ACCEPT: the rings' geometry, as the */
	uint64_t node_size; /* object's header says */
	uint64_t max_msg;
};
_Static_assert(sizeof(struct hs_answer) == SHMK__RPC_ANSWER_SIZE, "answer");

/* Geometry of the rpc object: geom[0] nodes, [1] node size, [2] largest
 * message, of every channel. */
#define MIN_NODE_SIZE (HDR + 16)
#define MAX_MSG_LIMIT (UINT64_C(1) << 32)
#define MAX_ACTIVE    1024 /* requests of one peer unanswered at once */

/*
 * Bounds of the acceptor: handshakes under way at once (in all, and per
 * client process: SO_PEERCRED is known at accept, before any byte), how
 * long one may take, and the defaults of the channel limits.
 */
#define MAX_PENDING	    256
#define PENDING_PER_PID	    8
#define PENDING_PER_UID	    64 /* of each uid but the server's own */
#define HANDSHAKE_NS	    (UINT64_C(1000) * 1000000)
#define DEFAULT_MAX_CHANS   1024
#define DEFAULT_MAX_PER_PID 64
#define LISTEN_BACKLOG	    128
/* How long serve looks again at a name whose server seems alive (one
 * killed a moment ago), and how often. */
#define TAKEOVER_NS	(200 * 1000000ull)
#define TAKEOVER_NAP_NS (5 * 1000000ull)

enum {
	C_CALLS,
	C_SERVED,
	C_REPLIES,
	C_BYTES_OUT,
	C_BYTES_IN,
	C_TIMEOUTS,
	C_CANCELS_SENT,
	C_CANCELS_SEEN,
	C_ERRORS,
	C_MALFORMED,
	C_DISCARDED,
	C_CLIENTS,
	C_CONNECTS,
	C_REFUSED,
};

static int geom_ok(const uint64_t g[3])
{
	if (g[0] < 2 || g[0] > (1u << 20) || g[1] < MIN_NODE_SIZE ||
	    g[1] > (UINT64_C(1) << 30) || g[2] > MAX_MSG_LIMIT)
		return 0;
	/* Each channel ring must be a ring shmk can make (nodes rounded up
	 * to pages, half the limit left for the rest); otherwise every
	 * connect would be refused.  At most 2^20 * 2^30: no overflow. */
	return g[0] * ((g[1] + 4095) & ~UINT64_C(4095)) <= SHMK__MAX_TOTAL / 2;
}

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

/* ---------------------------------------------------------------------
 * Process-side state
 * --------------------------------------------------------------------- */

struct chan;

/* A call this process made, until its caller collects it. */
struct call {
	struct call *next;
	struct chan *ch;
	uint64_t id;
	void *buf; /* the caller's reply buffer */
	size_t cap;
	uint64_t total, got; /* reply bytes announced, arrived */
	int started;	     /* a first fragment arrived */
	int err;	     /* ... of an error (F_ERR), not a reply */
	int waiting;	     /* a thread is in shmk_rpc_wait for it (mu) */
	_Atomic int filling; /* the reader is copying into buf */
	_Atomic int nudged;  /* the reading is free: try to take it */
	_Atomic uint32_t done;
	struct shmk__ec ec; /* the caller sleeps here */
	uint64_t deadline;
	int status;
	char error[SHMK_RPC_ERRMAX];
};

/* A request (its copy, out of the ring) being reassembled, or queued for
 * or run by a worker. */
struct inreq {
	struct inreq *next;  /* the channel's active list */
	struct inreq *qnext; /* the work queue */
	struct chan *ch;     /* a reference, while queued or run */
	uint64_t id;
	uint64_t total, got;
	char *buf;
	int queued; /* whole: a worker's (under ep->mu) */
	_Atomic int cancelled;
};

struct chan {
	struct shmk_rpc *ep;
	struct chan *next; /* the server's list */
	uint64_t num;	   /* peer number */
	struct shmk_ring *in, *out;
	/* The peer as the kernel knows it: the channel's socket (its
	 * hang-up is the peer's death), the peer's pidfd (readable once
	 * the process exited, also when a child of fork() keeps the socket
	 * open), and the peer's pid (SO_PEERCRED, for the per-process
	 * bound).  -1 / 0 for a lab channel. */
	int sock, pidfd;
	pid_t pid;
	_Atomic int hello; /* the peer said hello in its ring */
	_Atomic int dead;
	_Atomic int refs;
	/* Active requests' count and buffers: changed under ep->mu, read
	 * without it by chan_busy() (a frame more or less does not matter). */
	_Atomic uint64_t active_bytes;
	_Atomic int stuck; /* a reply did not fit within REPLY_MS */
	/* Replies that did not go (cut short or never begun): their callers
	 * are owed an error frame, sent as soon as the ring has room (under
	 * ep->mu; nowed is also read without it, as a hint). */
	uint64_t *owed;
	_Atomic int nowed;
	/* Server: when its reader began running a request in place (ns),
	 * 0 while it reads.  The acceptor reads the channel for it meanwhile
	 * (watch_inline). */
	_Atomic uint64_t inline_since;
	_Atomic int unwatched; /* server: not in the acceptor's epoll set */
	/* Client: who reads ring in.  Callers waiting for a reply read it
	 * themselves when they can (one hand-off fewer); the reader thread
	 * stands aside while any wants to. */
	pthread_mutex_t rd;
	_Atomic int want;
	struct shmk__ec want_ec; /* the reader thread waits here for want 0 */
	/* Requests reassembling or in a worker's hands (under ep->mu). */
	struct inreq *active;
	_Atomic int nactive;
};

/* A connection accepted by the server whose hello has not come yet. */
struct pending {
	int fd;
	pid_t pid; /* SO_PEERCRED, read at accept */
	uid_t uid;
	gid_t gid;
	uint64_t deadline; /* dropped then */
};

struct shmk_rpc {
	struct shmk__region r; /* server (and lab): the rpc object */
	int server;
	char name[SHMK_RPC_NAME_MAX + 1];
	shmk_rpc_handler fn;
	void *arg;
	uint64_t nodes, node_size, max_msg;
	int64_t spin_ns;
	pthread_mutex_t mu;
	_Atomic int stop;
	struct chan *chans; /* server: live channels; client: its one */
	uint64_t next_chan;
	unsigned nchans; /* server: channels in the list (under mu) */
	struct call *calls;
	_Atomic int npending; /* calls in the table (a hint for readers) */
	_Atomic uint64_t next_id;
	/* Counters: a server's (and a lab's) are the object's; a client's
	 * its own, in own[] (a client never writes the server's memory). */
	_Atomic uint64_t *ctr;
	_Atomic uint64_t own[SHMK__NCOUNTERS];
	/* The work queue. */
	struct inreq *qhead, *qtail;
	_Atomic uint32_t queued;
	_Atomic uint32_t uncollected; /* calls ended, callers not back yet */
	struct shmk__ec qec;
	int nworkers;
	_Atomic int slots; /* handler slots free (take_slot) */
	/* Requests run in place by their channel's reader (server): how
	 * many run now, and when the last one began (ns; both hints for the
	 * watch, below); whether the acceptor sleeps without watching. */
	_Atomic int ninline;
	_Atomic uint64_t inline_ns;
	_Atomic int watch_asleep;
	_Atomic int nowed; /* error frames owed, on all channels */
	pthread_t *workers;
	/* Server: the acceptor, its listening socket, the eventfd that
	 * stops it, its handshakes under way and who may connect. */
	pthread_t acceptor;
	int acceptor_started;
	pid_t owner; /* the process that made the endpoint (fork: see close) */
	int lsock, stopfd;
	/* Server: every channel's socket and pidfd (EPOLLONESHOT, keyed by
	 * channel number), polled by the acceptor: a death is seen at once,
	 * and the readers need not wake to look. */
	int epfd;
	struct pending *pend;
	int npend;
	unsigned conn_mode; /* the requested mode: group/other may connect */
	uid_t self_uid;
	gid_t self_gid;
	uid_t *allow_uid;
	size_t n_allow_uid;
	gid_t *allow_gid;
	size_t n_allow_gid;
	unsigned max_chans, max_per_pid;
	_Atomic int readers; /* channel readers still running */
	struct shmk__ec stop_ec;
	/* Event loops (shmk_rpc_pollfd): the eventfd, -1 until asked for;
	 * armed while a call that found nothing to do waits for it to be
	 * written (poll_arm, poll_kick).  dispatch: workers < 0, the
	 * handlers run in shmk_rpc_dispatch.  wakes: shmk_rpc_wake's. */
	_Atomic int pollfd;
	_Atomic int armed;
	int dispatch;
	_Atomic uint32_t wakes, wakes_seen;
};

static void chan_put(struct chan *ch);

static void count(struct shmk_rpc *ep, int i, uint64_t n)
{
	atomic_fetch_add_explicit(&ep->ctr[i], n, memory_order_relaxed);
}

/*
 * The endpoint's descriptor for event loops (shmk_rpc_pollfd): an eventfd
 * of this process, as every notifier is one of its threads.  A call that
 * found nothing to do arms it (poll_arm) and then looks again; whoever
 * makes progress possible afterwards (a call ended, a request queued)
 * publishes that with a seq_cst operation and then calls poll_kick: the
 * seq_cst store of armed and the seq_cst load in poll_kick order the two
 * sides as in the eventcount (one sees the other).  A kick writes only
 * when armed: no system call when no loop waits.
 */
static void poll_kick(struct shmk_rpc *ep)
{
	uint64_t one = 1;

	if (!atomic_load_explicit(&ep->armed, memory_order_seq_cst) ||
	    !atomic_exchange_explicit(&ep->armed, 0, memory_order_acquire))
		return;
	/* acquire: pairs with poll_arm's store, after the descriptor was
	 * made.  EAGAIN means the counter is full: readable anyway. */
	if (write(atomic_load_explicit(&ep->pollfd, memory_order_relaxed), &one,
		  sizeof(one)) < 0)
		(void)0;
}

/* Empties the descriptor and arms it; the caller then looks again (with
 * a seq_cst load) at what it waits for.  No descriptor: nothing to do. */
static void poll_arm(struct shmk_rpc *ep)
{
	int fd = atomic_load_explicit(&ep->pollfd, memory_order_acquire);
	uint64_t v;

	if (fd < 0)
		return;
	if (read(fd, &v, sizeof(v)) < 0)
		(void)0; /* EAGAIN: it was empty */
	atomic_store_explicit(&ep->armed, 1, memory_order_seq_cst);
}

/* ---------------------------------------------------------------------
 * Sending
 * --------------------------------------------------------------------- */

static int remaining_ms(uint64_t deadline)
{
	uint64_t now;

	if (deadline == SHMK__FOREVER)
		return -1;
	now = shmk__mono_ns();
	if (now >= deadline)
		return 0;
	return (int)((deadline - now + 999999) / 1000000 > INT32_MAX
			     ? INT32_MAX
			     : (deadline - now + 999999) / 1000000);
}

/* One frame into the node m (reserved): header and fragment. */
static void fill(struct shmk_msg *m, int type, int32_t status, uint64_t id,
		 uint64_t corr, const char *data, uint64_t total, uint64_t off,
		 uint32_t flen)
{
	struct frame f = {.magic = RPC_MAGIC,
			  .version = RPC_VERSION,
			  .type = (uint8_t)type,
			  .status = status,
			  .frag_len = flen,
			  .msg_id = id,
			  .corr_id = corr,
			  .total_len = total,
			  .frag_off = off};

	memcpy(m->data, &f, HDR);
	if (flen)
		memcpy((char *)m->data + HDR, data + off, flen);
	m->len = HDR + flen;
}

/*
 * Sends a message of len bytes as frames, by deadline.  Each fragment is
 * copied straight from data into its node.  A full ring blocks within the
 * deadline; a dead channel fails at once (-EPIPE).  A message cut short by
 * the deadline is followed by a cancel, so that the peer drops the part.
 * With stall_ms >= 0 the deadline holds for the first fragment only and
 * each later one gets stall_ms from the moment the one before it went: a
 * peer that takes fragments is reading, however long the whole takes.
 */
static int peer_dead(struct chan *ch);
static int help_read(struct chan *ch);

static int send_msg(struct chan *ch, int type, int32_t status, uint64_t id,
		    uint64_t corr, const void *data, uint64_t len,
		    uint64_t deadline, int stall_ms)
{
	uint64_t frag = ch->ep->node_size - HDR, off = 0;
	int rc = 0;

	do {
		struct shmk_msg m;
		uint32_t flen = (uint32_t)(len - off < frag ? len - off : frag);

		if (off > 0 && stall_ms >= 0)
			deadline = shmk__deadline(stall_ms);
		for (int tries = 0;; tries++) {
			/* A client whose ring to the server is full first
			 * takes what waits for it on the other ring, if
			 * nobody else is reading it: the server may be stuck
			 * sending us replies that no one else will take while
			 * our callers are busy sending. */
			int ms = !ch->ep->server && tries == 0 ? 0
				 : !ch->ep->server	       ? 1
							       : 10;

			if (deadline != SHMK__FOREVER &&
			    remaining_ms(deadline) < ms)
				ms = remaining_ms(deadline);
			if (atomic_load_explicit(&ch->dead,
						 memory_order_acquire))
				rc = -EPIPE;
			else
				rc = shmk_ring_reserve(ch->out, &m, ms);
			if (!ch->ep->server &&
			    (rc == -EAGAIN || rc == -ETIMEDOUT) &&
			    shmk__mono_ns() < deadline && help_read(ch) > 0)
				continue;
			if (rc == -EBUSY) /* 16 senders on this ring at once */
				shmk__nap(50000, deadline);
			else if (rc != -ETIMEDOUT && rc != -EAGAIN)
				break;
			if (shmk__mono_ns() >= deadline) {
				rc = -ETIMEDOUT;
				break;
			}
			/* A full ring: is its reader still there? */
			if (rc != -EBUSY && peer_dead(ch)) {
				rc = -EPIPE;
				break;
			}
		}
		if (rc < 0)
			break;
		fill(&m, type, status, id, corr, data, len, off, flen);
		rc = shmk_ring_commit(ch->out, &m);
		if (rc < 0)
			break;
		off += flen;
		if (off < len)
			SHMK__CRASH("rpc_mid_message");
	} while (off < len);
	/* A request cut short: the peer drops what it has of it (a dead
	 * peer has nothing to drop). */
	if (rc < 0 && rc != -EPIPE && off > 0 && type == F_REQ) {
		struct shmk_msg m;

		if (shmk_ring_reserve(ch->out, &m, 100) == 0) {
			fill(&m, F_CANCEL, 0, id, id, NULL, 0, 0, 0);
			shmk_ring_commit(ch->out, &m);
		}
	}
	if (!rc)
		count(ch->ep, C_BYTES_OUT, len);
	return rc;
}

/* ---------------------------------------------------------------------
 * Calls
 * --------------------------------------------------------------------- */

static struct call *call_find(struct shmk_rpc *ep, uint64_t id,
			      struct call ***link)
{
	struct call **p;

	for (p = &ep->calls; *p; p = &(*p)->next)
		if ((*p)->id == id) {
			if (link)
				*link = p;
			return *p;
		}
	return NULL;
}

/* Completes c with status (under ep->mu); its caller wakes. */
static void call_done(struct call *c, int status)
{
	if (atomic_load_explicit(&c->done, memory_order_relaxed))
		return;
	/* seq_cst: counted before poll_kick's look at armed, which pairs
	 * with the look at uncollected after poll_arm (read_for). */
	atomic_fetch_add_explicit(&c->ch->ep->uncollected, 1,
				  memory_order_seq_cst);
	c->status = status;
	atomic_store_explicit(&c->done, 1, memory_order_seq_cst);
	shmk__ec_notify(NULL, &c->ec);
	poll_kick(c->ch->ep);
}

/* Fails every call pending on ch (every call, if ch is NULL). */
static void calls_fail(struct shmk_rpc *ep, struct chan *ch, int status)
{
	struct call *c;

	pthread_mutex_lock(&ep->mu);
	for (c = ep->calls; c; c = c->next)
		if (!ch || c->ch == ch)
			call_done(c, status);
	pthread_mutex_unlock(&ep->mu);
}

/* Done, or nudged: a caller that read the channel has left (read_for). */
static int nudge_cond(void *arg, int slow)
{
	struct call *c = arg;

	(void)slow;
	return atomic_load_explicit(&c->done, memory_order_acquire) ||
			       atomic_load_explicit(&c->nudged,
						    memory_order_acquire)
		       ? SHMK__COND_DONE
		       : SHMK__COND_IDLE;
}

/* Takes c off the table (under ep->mu): no reader finds it after this. */
static void call_unlink(struct shmk_rpc *ep, struct call *c)
{
	struct call **link;

	if (call_find(ep, c->id, &link) != c)
		return;
	*link = c->next;
	atomic_fetch_sub_explicit(&ep->npending, 1, memory_order_relaxed);
	if (atomic_load_explicit(&c->done, memory_order_relaxed))
		atomic_fetch_sub_explicit(&ep->uncollected, 1,
					  memory_order_relaxed);
}

/* Waits until the reader has stopped copying into c (after the unlink,
 * it cannot start again). */
static void call_settle(struct call *c)
{
	while (atomic_load_explicit(&c->filling, memory_order_acquire))
		sched_yield();
}

static struct chan *chan_get(struct shmk_rpc *ep, uint64_t peer)
{
	struct chan *ch;

	pthread_mutex_lock(&ep->mu);
	for (ch = ep->chans; ch; ch = ch->next)
		if (!ep->server || ch->num == peer)
			break;
	if (ch)
		atomic_fetch_add(&ch->refs, 1);
	pthread_mutex_unlock(&ep->mu);
	return ch;
}

SHMK__EXPORT int shmk_rpc_submit(struct shmk_rpc *ep, uint64_t peer,
				 const void *req, size_t len, void *reply,
				 size_t cap, int timeout_ms, uint64_t *id)
{
	struct chan *ch;
	struct call *c;
	int rc;

	if (!ep || !id || (len && !req) || (cap && !reply))
		return -EINVAL;
	*id = 0;
	rc = shmk__timeout_ok(timeout_ms);
	if (rc < 0)
		return rc;
	if (len > ep->max_msg)
		return -EMSGSIZE;
	ch = chan_get(ep, peer);
	if (!ch)
		return ep->server ? -ENOENT : -EPIPE;
	c = calloc(1, sizeof(*c));
	if (!c) {
		chan_put(ch);
		return -ENOMEM;
	}
	c->ch = ch;
	c->buf = reply;
	c->cap = cap;
	c->deadline = shmk__deadline(timeout_ms);
	c->id = atomic_fetch_add(&ep->next_id, 1);
	pthread_mutex_lock(&ep->mu);
	c->next = ep->calls;
	ep->calls = c;
	atomic_fetch_add_explicit(&ep->npending, 1, memory_order_relaxed);
	pthread_mutex_unlock(&ep->mu);
	count(ep, C_CALLS, 1);
	rc = send_msg(ch, F_REQ, 0, c->id, 0, req, len, c->deadline, -1);
	if (rc < 0) {
		pthread_mutex_lock(&ep->mu);
		call_unlink(ep, c);
		pthread_mutex_unlock(&ep->mu);
		call_settle(c);
		if (rc == -ETIMEDOUT || rc == -EAGAIN)
			count(ep, C_TIMEOUTS, 1);
		chan_put(ch);
		free(c);
		return rc;
	}
	*id = c->id;
	return 0;
}

/* Sends a cancel for call id on ch, best effort (a full ring gets
 * 100 ms). */
static void send_cancel(struct shmk_rpc *ep, struct chan *ch, uint64_t id)
{
	if (send_msg(ch, F_CANCEL, 0, id, id, NULL, 0, shmk__deadline(100),
		     -1) == 0)
		count(ep, C_CANCELS_SENT, 1);
}

static void call_free(struct call *c)
{
	chan_put(c->ch);
	free(c);
}

static int on_frame(struct chan *ch, struct shmk_msg *m, struct inreq **ready);

/* Flow control: a peer with MAX_ACTIVE requests, or 4 x max_msg bytes of
 * them, unanswered is not read from until the workers catch up.  Every
 * thread that reads a channel obeys it. */
static int chan_busy(struct chan *ch)
{
	return atomic_load_explicit(&ch->nactive, memory_order_relaxed) >=
		       MAX_ACTIVE ||
	       atomic_load_explicit(&ch->active_bytes, memory_order_relaxed) >=
		       4 * ch->ep->max_msg;
}

/*
 * Takes the frames waiting on a client's ring from its server, without
 * waiting, if nobody else is reading it: at most a ring's worth.
 * Returns how many it took.
 */
static int help_read(struct chan *ch)
{
	struct shmk_msg m;
	int n = 0, rc;

	if (pthread_mutex_trylock(&ch->rd) != 0)
		return 0;
	while ((uint64_t)n < ch->ep->nodes &&
	       !atomic_load_explicit(&ch->dead, memory_order_acquire) &&
	       !chan_busy(ch) &&
	       shmk__ring_acquire_spin(ch->in, &m, 0, 0) == 0) {
		rc = on_frame(ch, &m, NULL);
		shmk_ring_release(ch->in, &m);
		n++;
		if (rc) {
			atomic_store_explicit(&ch->dead, 1,
					      memory_order_release);
			calls_fail(ch->ep, ch, -EPIPE);
		}
	}
	pthread_mutex_unlock(&ch->rd);
	return n;
}

/*
 * A client's caller waits for call c by reading the channel itself when
 * nobody else does: the reply then needs no hand-off from the reader
 * thread (which stands aside while callers want to read, and watches the
 * server's liveness meanwhile).  When another thread has the reading,
 * the caller sleeps on its call, 1 ms at a time.  Returns 0 once c is
 * done, else the wait's error at the deadline.
 */
#define PEER_LOOK_NS (UINT64_C(10) * 1000000) /* T_live, docs/design.md */

/*
 * A caller leaves the reading of its channel while others wait to read
 * it: one of them is nudged to take it, so that the channel is read at
 * once, not at the next look of a waiter (every PEER_LOOK_NS).
 * seq_cst store, as call_done's: published before the notify.
 */
static void nudge_one(struct shmk_rpc *ep, struct call *self)
{
	struct call *x;

	pthread_mutex_lock(&ep->mu);
	for (x = ep->calls; x; x = x->next)
		if (x != self && x->ch == self->ch && x->waiting &&
		    !atomic_load_explicit(&x->done, memory_order_relaxed)) {
			atomic_store_explicit(&x->nudged, 1,
					      memory_order_seq_cst);
			shmk__ec_notify(NULL, &x->ec);
			break;
		}
	pthread_mutex_unlock(&ep->mu);
}

static int read_for(struct shmk_rpc *ep, struct call *c, uint64_t deadline,
		    uint32_t wakes0)
{
	struct chan *ch = c->ch;
	uint64_t look;
	int rc = 0, idle = 0;

	if (shmk__mono_ns() >= deadline) {
		/* A poll: take what is there, without making the reader
		 * thread stand aside. */
		help_read(ch);
		if (atomic_load_explicit(&c->done, memory_order_acquire))
			return 0;
		/* Nothing: the descriptor is armed for any call's end.  A
		 * call that ended before, and is not collected, makes it
		 * readable now (the loop may not have asked for it yet). */
		poll_arm(ep);
		if (atomic_load_explicit(&ep->uncollected,
					 memory_order_seq_cst))
			poll_kick(ep);
		return atomic_load_explicit(&c->done, memory_order_acquire)
			       ? 0
			       : shmk__expired(deadline);
	}
	atomic_fetch_add_explicit(&ch->want, 1, memory_order_acq_rel);
	look = shmk__mono_ns() + PEER_LOOK_NS;
	while (!atomic_load_explicit(&c->done, memory_order_acquire)) {
		uint64_t now = shmk__mono_ns(), until = now + PEER_LOOK_NS;
		struct shmk_msg m;
		uint32_t w;

		if (now >= deadline) {
			rc = shmk__expired(deadline);
			break;
		}
		/* shmk_rpc_wake: seen here, within PEER_LOOK_NS (each sleep
		 * below ends by then).  One made since this wait began, or
		 * one nobody answered yet, ends it (and is answered). */
		w = atomic_load_explicit(&ep->wakes, memory_order_acquire);
		if (w != wakes0 ||
		    w != atomic_load_explicit(&ep->wakes_seen,
					      memory_order_relaxed)) {
			atomic_store_explicit(&ep->wakes_seen, w,
					      memory_order_relaxed);
			rc = -ECANCELED;
			break;
		}
		if (until > deadline)
			until = deadline;
		/* A caller that has waited PEER_LOOK_NS looks at the peer
		 * itself, every PEER_LOOK_NS: whoever reads may be asleep for
		 * a second (quiet_ms). */
		if (now >= look) {
			look = now + PEER_LOOK_NS;
			if (peer_dead(ch)) {
				atomic_store_explicit(&ch->dead, 1,
						      memory_order_release);
				calls_fail(ep, ch, -EPIPE);
				continue;
			}
		}
		if (atomic_load_explicit(&ch->dead, memory_order_acquire) ||
		    chan_busy(ch) || pthread_mutex_trylock(&ch->rd) != 0) {
			/* Whoever reads completes our call, or nudges us
			 * when it leaves (SHMK__WAIT_LONG: our own threads). */
			shmk__wait(NULL, 0, &c->ec, nudge_cond, c, until, 0, 0,
				   SHMK__WAIT_LONG);
			atomic_store_explicit(&c->nudged, 0,
					      memory_order_relaxed);
			continue;
		}
		/* Spin while frames come; a quiet ring gets slept on.  Not
		 * on a server: its reader is one of our threads and may need
		 * this CPU (measured: spinning there halved the calls/s). */
		rc = shmk__ring_acquire_spin(
			ch->in, &m, (int)((until - now) / 1000000),
			idle || ep->server ? 0 : ep->spin_ns);
		idle = rc == -ETIMEDOUT;
		if (rc == 0) {
			rc = on_frame(ch, &m, NULL);
			shmk_ring_release(ch->in, &m);
		}
		pthread_mutex_unlock(&ch->rd);
		if (rc != 0 && rc != -ETIMEDOUT && rc != -EAGAIN) {
			/* Shut down and drained, corrupt, or a goodbye: the
			 * channel is over (its reader thread sees it too). */
			atomic_store_explicit(&ch->dead, 1,
					      memory_order_release);
			calls_fail(ep, ch, -EPIPE);
		}
		rc = 0;
	}
	/* seq_cst: the count before the notify's look at the waiter bit. */
	if (atomic_fetch_sub_explicit(&ch->want, 1, memory_order_seq_cst) > 1)
		nudge_one(ep, c);
	else
		shmk__ec_notify(NULL,
				&ch->want_ec); /* the reader thread's turn */
	return atomic_load_explicit(&c->done, memory_order_acquire) ? 0 : rc;
}

SHMK__EXPORT int shmk_rpc_wait(struct shmk_rpc *ep, uint64_t id,
			       struct shmk_rpc_result *res, int timeout_ms)
{
	uint64_t deadline;
	uint32_t wakes0;
	struct call *c;
	int rc;

	if (!ep || !res)
		return -EINVAL;
	rc = shmk__timeout_ok(timeout_ms);
	if (rc < 0)
		return rc;
	/* A wake from now on ends this wait; seq_cst as in shmk__wakes(). */
	wakes0 = atomic_load_explicit(&ep->wakes, memory_order_seq_cst);
	pthread_mutex_lock(&ep->mu);
	c = call_find(ep, id, NULL);
	if (c && c->waiting) {
		pthread_mutex_unlock(&ep->mu);
		return -EBUSY; /* another thread waits for it */
	}
	if (c)
		c->waiting = 1;
	pthread_mutex_unlock(&ep->mu);
	if (!c)
		return -ENOENT;
	deadline = shmk__deadline(timeout_ms);
	if (c->deadline < deadline)
		deadline = c->deadline;
	rc = read_for(ep, c, deadline, wakes0);
	pthread_mutex_lock(&ep->mu);
	if (rc < 0 && !atomic_load_explicit(&c->done, memory_order_acquire) &&
	    shmk__mono_ns() < c->deadline) {
		c->waiting = 0; /* this wait is over, the call is not */
		pthread_mutex_unlock(&ep->mu);
		return rc;
	}
	call_unlink(ep, c);
	pthread_mutex_unlock(&ep->mu);
	call_settle(c);
	memset(res, 0, sizeof(*res));
	if (!atomic_load_explicit(&c->done, memory_order_acquire)) {
		/* The call's own deadline: it ends here. */
		count(ep, C_TIMEOUTS, 1);
		send_cancel(ep, c->ch, c->id);
		res->status = -ETIMEDOUT;
	} else {
		res->status = c->status;
		res->len = (size_t)c->total;
		memcpy(res->error, c->error, sizeof(res->error));
	}
	call_free(c);
	return 0;
}

SHMK__EXPORT int shmk_rpc_cancel(struct shmk_rpc *ep, uint64_t id)
{
	struct chan *ch;
	struct call *c;
	int was_done;

	if (!ep)
		return -EINVAL;
	pthread_mutex_lock(&ep->mu);
	c = call_find(ep, id, NULL);
	if (!c) {
		pthread_mutex_unlock(&ep->mu);
		return -ENOENT;
	}
	was_done = atomic_load_explicit(&c->done, memory_order_relaxed);
	ch = c->ch;
	if (c->waiting) {
		/* Another thread waits for it: it ends there, -ECANCELED,
		 * and that thread frees it. */
		atomic_fetch_add(&ch->refs, 1);
		call_done(c, -ECANCELED);
		pthread_mutex_unlock(&ep->mu);
		if (!was_done)
			send_cancel(ep, ch, id);
		chan_put(ch);
		return 0;
	}
	call_unlink(ep, c);
	pthread_mutex_unlock(&ep->mu);
	call_settle(c);
	if (!was_done)
		send_cancel(ep, ch, id);
	call_free(c);
	return 0;
}

SHMK__EXPORT int shmk_rpc_call(struct shmk_rpc *ep, const void *req, size_t len,
			       void *reply, size_t cap,
			       struct shmk_rpc_result *res, int timeout_ms)
{
	uint64_t id;
	int rc;

	if (!ep || !res || ep->server)
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	rc = shmk_rpc_submit(ep, 0, req, len, reply, cap, timeout_ms, &id);
	if (rc < 0) {
		res->status = rc;
		return rc;
	}
	rc = shmk_rpc_wait(ep, id, res, -1);
	if (rc == -ECANCELED) {
		/* Woken (shmk_rpc_wake): the call ends here. */
		shmk_rpc_cancel(ep, id);
		res->status = rc;
	}
	if (rc < 0)
		return rc;
	return res->status;
}

/* ---------------------------------------------------------------------
 * Workers: run the handler, send the reply
 * --------------------------------------------------------------------- */

SHMK__EXPORT int shmk_rpc_cancelled(const struct shmk_rpc_req *req)
{
	const struct inreq *in = req ? req->priv_ : NULL;

	return in ? atomic_load_explicit(&in->cancelled, memory_order_relaxed)
		  : 0;
}

static void inreq_drop(struct chan *ch, struct inreq *in)
{
	struct shmk_rpc *ep = ch->ep;
	struct inreq **p;

	pthread_mutex_lock(&ep->mu);
	for (p = &ch->active; *p; p = &(*p)->next)
		if (*p == in) {
			*p = in->next;
			atomic_fetch_sub_explicit(&ch->nactive, 1,
						  memory_order_relaxed);
			atomic_fetch_sub_explicit(&ch->active_bytes, in->total,
						  memory_order_relaxed);
			break;
		}
	pthread_mutex_unlock(&ep->mu);
	free(in->buf);
	free(in);
}

/*
 * Sends a reply.  A peer that does not take its replies (stopped, or just
 * slow) must not hold up the workers every client shares: each fragment
 * of a reply gets REPLY_MS to fit (a long reply to a peer that keeps
 * reading goes whole, however long it takes), and while a channel is
 * stuck a reply's first fragment gets one try; a reply that does not go
 * is dropped (counted as discarded) and its caller times out.
 */
#define REPLY_MS 1000

/* What the caller of a reply that did not go is told (one frame: the
 * smallest node holds 16 bytes of message). */
static const char cut_text[] = "reply cut short";
_Static_assert(sizeof(cut_text) - 1 <= MIN_NODE_SIZE - HDR, "cut text");

/*
 * Sends the error frames owed to callers whose replies did not go, while
 * they fit without waiting: a reader calls it too, and never waits on a
 * ring it writes.  The caller of a reply cut short hears of it as soon
 * as its client reads again, not at its deadline.
 */
static void send_owed(struct chan *ch)
{
	struct shmk_rpc *ep = ch->ep;

	while (atomic_load_explicit(&ch->nowed, memory_order_relaxed) &&
	       !atomic_load_explicit(&ch->dead, memory_order_acquire)) {
		struct shmk_msg m;
		uint64_t corr;
		int n;

		if (shmk_ring_reserve(ch->out, &m, 0) < 0)
			return;
		pthread_mutex_lock(&ep->mu);
		n = atomic_load_explicit(&ch->nowed, memory_order_relaxed);
		corr = n ? ch->owed[n - 1] : 0;
		if (n) {
			atomic_store_explicit(&ch->nowed, n - 1,
					      memory_order_relaxed);
			atomic_fetch_sub_explicit(&ep->nowed, 1,
						  memory_order_relaxed);
		}
		pthread_mutex_unlock(&ep->mu);
		if (!n) {
			shmk_ring_abort(ch->out, &m);
			return;
		}
		fill(&m, F_ERR, -ECONNABORTED, 0, corr, cut_text,
		     sizeof(cut_text) - 1, 0, sizeof(cut_text) - 1);
		if (shmk_ring_commit(ch->out, &m) < 0)
			return;
	}
}

/*
 * Wakes a server's acceptor if it sleeps without watching (poll with no
 * timeout): something now needs it to look every few milliseconds (a
 * handler run in place, an error owed).  seq_cst, as the acceptor's store
 * of watch_asleep and its loads after it: one of the two sees the other.
 */
static void wake_watch(struct shmk_rpc *ep)
{
	uint64_t one = 1;

	if (!ep->server || ep->stopfd < 0 ||
	    !atomic_load_explicit(&ep->watch_asleep, memory_order_seq_cst) ||
	    !atomic_exchange_explicit(&ep->watch_asleep, 0,
				      memory_order_seq_cst))
		return;
	if (write(ep->stopfd, &one, sizeof(one)) < 0)
		(void)0; /* cannot fail: a counter far from full */
}

/* Notes that call corr's reply did not go (at most MAX_ACTIVE owed per
 * channel: past that its caller times out). */
static void owe(struct chan *ch, uint64_t corr)
{
	struct shmk_rpc *ep = ch->ep;
	int n;

	pthread_mutex_lock(&ep->mu);
	if (!ch->owed)
		ch->owed = malloc(MAX_ACTIVE * sizeof(*ch->owed));
	n = atomic_load_explicit(&ch->nowed, memory_order_relaxed);
	if (ch->owed && n < MAX_ACTIVE) {
		ch->owed[n] = corr;
		atomic_store_explicit(&ch->nowed, n + 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&ep->nowed, 1, memory_order_seq_cst);
	}
	pthread_mutex_unlock(&ep->mu);
	wake_watch(ep); /* it sends what the reader, asleep, would not */
}

static void send_reply(struct chan *ch, int type, int32_t status, uint64_t corr,
		       const void *data, uint64_t len)
{
	int stuck = atomic_load_explicit(&ch->stuck, memory_order_relaxed), rc;

	/* Errors owed to earlier calls go first, if they fit. */
	send_owed(ch);
	rc = send_msg(ch, type, status, 0, corr, data, len,
		      shmk__deadline(stuck ? 0 : REPLY_MS), REPLY_MS);
	atomic_store_explicit(&ch->stuck, rc == -ETIMEDOUT || rc == -EAGAIN,
			      memory_order_relaxed);
	if (rc < 0 && rc != -EPIPE)
		count(ch->ep, C_DISCARDED, 1);
	if (rc == -ETIMEDOUT || rc == -EAGAIN)
		owe(ch, corr);
}

static void run_work(struct shmk_rpc *ep, struct inreq *in)
{
	struct chan *ch = in->ch;
	struct shmk_rpc_req req = {.data = in->buf,
				   .len = (size_t)in->total,
				   .id = in->id,
				   .peer = ep->server ? ch->num : 0,
				   .priv_ = in};
	int rc;

	if (ep->fn)
		rc = ep->fn(ep->arg, &req);
	else
		rc = -ENOSYS;
	if (rc > 0)
		rc = 0;
	if (rc == 0 && req.reply_len && !req.reply) {
		snprintf(req.error, sizeof(req.error),
			 "the handler gave a length and no reply");
		rc = -EINVAL;
	} else if (rc == 0 && req.reply_len > ep->max_msg) {
		snprintf(req.error, sizeof(req.error),
			 "a reply of %zu bytes is over the limit",
			 req.reply_len);
		rc = -EMSGSIZE;
	} else if (rc < -4095) {
		rc = -EPROTO; /* not an errno value */
	}
	count(ep, C_SERVED, 1);
	SHMK__CRASH("rpc_pre_reply"); /* handled, reply not sent */
	/* After the handler: the reply may point into the request. */
	if (!atomic_load_explicit(&in->cancelled, memory_order_relaxed)) {
		if (rc == 0)
			send_reply(ch, F_REP, 0, in->id, req.reply,
				   req.reply_len);
		else /* the text, at most SHMK_RPC_ERRMAX - 1 bytes */
			send_reply(ch, F_ERR, rc, in->id, req.error,
				   strnlen(req.error, sizeof(req.error) - 1));
	}
	if (req.reply_free && req.reply)
		req.reply_free((void *)(uintptr_t)req.reply);
	inreq_drop(ch, in);
	chan_put(ch);
}

static int queue_cond(void *arg, int slow)
{
	struct shmk_rpc *ep = arg;

	(void)slow;
	if (atomic_load_explicit(&ep->stop, memory_order_acquire))
		return -ECANCELED;
	return atomic_load_explicit(&ep->queued, memory_order_acquire) &&
			       atomic_load_explicit(&ep->slots,
						    memory_order_acquire) > 0
		       ? SHMK__COND_DONE
		       : SHMK__COND_IDLE;
}

/* Takes the first request off the work queue, or NULL. */
static struct inreq *dequeue(struct shmk_rpc *ep)
{
	struct inreq *in;

	pthread_mutex_lock(&ep->mu);
	in = ep->qhead;
	if (in) {
		ep->qhead = in->qnext;
		if (!ep->qhead)
			ep->qtail = NULL;
		atomic_fetch_sub(&ep->queued, 1);
	}
	pthread_mutex_unlock(&ep->mu);
	return in;
}

/*
 * Handler slots: at most `workers` handlers run at once, on workers or on
 * the readers that run them in place.  Taking one is a CAS on the count
 * of free slots (acquire: pairs with give_slot's release, so a slot's
 * previous holder is done with what it touched).
 */
static int take_slot(struct shmk_rpc *ep)
{
	int n = atomic_load_explicit(&ep->slots, memory_order_relaxed);

	while (n > 0)
		if (atomic_compare_exchange_weak_explicit(&ep->slots, &n, n - 1,
							  memory_order_acquire,
							  memory_order_relaxed))
			return 1;
	return 0;
}

/* Gives a slot back; a worker that waits for one (work is queued) wakes.
 * seq_cst: the slot is published before the waiter bit is looked at. */
static void give_slot(struct shmk_rpc *ep)
{
	atomic_fetch_add_explicit(&ep->slots, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&ep->queued, memory_order_seq_cst))
		shmk__ec_notify(NULL, &ep->qec);
}

static void *worker_main(void *arg)
{
	struct shmk_rpc *ep = arg;

	for (;;) {
		struct inreq *in;

		/* No spinning, as in shmk_rpc_wait(); every notifier is a
		 * thread of ours, so no 10 ms slices (SHMK__WAIT_LONG). */
		if (shmk__wait(NULL, 0, &ep->qec, queue_cond, ep, SHMK__FOREVER,
			       0, 0, SHMK__WAIT_LONG) < 0)
			break;
		if (!take_slot(ep))
			continue; /* a reader took it first */
		in = dequeue(ep);
		if (in)
			run_work(ep, in);
		give_slot(ep);
	}
	return NULL;
}

/* Makes a whole request a worker's (or its reader's, to run in place):
 * it holds a reference to ch, and a cancel no longer frees it. */
static void claim(struct shmk_rpc *ep, struct chan *ch, struct inreq *in)
{
	atomic_fetch_add(&ch->refs, 1);
	pthread_mutex_lock(&ep->mu);
	in->ch = ch;
	in->queued = 1;
	pthread_mutex_unlock(&ep->mu);
}

/* Hands a claimed request to the workers. */
static void enqueue_claimed(struct shmk_rpc *ep, struct inreq *in)
{
	pthread_mutex_lock(&ep->mu);
	in->qnext = NULL;
	if (ep->qtail)
		ep->qtail->qnext = in;
	else
		ep->qhead = in;
	ep->qtail = in;
	atomic_fetch_add_explicit(&ep->queued, 1, memory_order_seq_cst);
	pthread_mutex_unlock(&ep->mu);
	shmk__ec_notify(NULL, &ep->qec);
	poll_kick(ep);
}

/* Hands the whole request in to the workers, with a reference to ch. */
static void enqueue(struct shmk_rpc *ep, struct chan *ch, struct inreq *in)
{
	atomic_fetch_add(&ch->refs, 1);
	pthread_mutex_lock(&ep->mu);
	in->ch = ch;
	in->queued = 1;
	in->qnext = NULL;
	if (ep->qtail)
		ep->qtail->qnext = in;
	else
		ep->qhead = in;
	ep->qtail = in;
	atomic_fetch_add_explicit(&ep->queued, 1, memory_order_seq_cst);
	pthread_mutex_unlock(&ep->mu);
	shmk__ec_notify(NULL, &ep->qec);
	poll_kick(ep);
}

/* ---------------------------------------------------------------------
 * The reader of a channel
 * --------------------------------------------------------------------- */

static int malformed(struct chan *ch)
{
	count(ch->ep, C_MALFORMED, 1);
	return 0;
}

static struct inreq *inreq_find(struct chan *ch, uint64_t id)
{
	struct inreq *in;

	for (in = ch->active; in; in = in->next)
		if (in->id == id)
			return in;
	return NULL;
}

/*
 * A request frame f (fragment at p).  Every request is copied out of the
 * ring: a node held while a handler runs would stop the ring's writers
 * once they come round to it (N frames later), and a handler that calls
 * its caller back would wait on its own ring.
 */
static void on_request(struct chan *ch, const struct frame *f, const char *p,
		       struct inreq **ready)
{
	struct shmk_rpc *ep = ch->ep;
	struct inreq *in;

	pthread_mutex_lock(&ep->mu);
	in = inreq_find(ch, f->msg_id);
	if (f->frag_off == 0) {
		if (in) {
			pthread_mutex_unlock(&ep->mu);
			malformed(ch); /* an id still in use */
			return;
		}
		in = calloc(1, sizeof(*in));
		if (in)
			in->buf = malloc(f->total_len ? f->total_len : 1);
		if (!in || !in->buf) {
			static const char oom[] = "no memory for the request";

			pthread_mutex_unlock(&ep->mu);
			if (in)
				free(in);
			/* The caller hears of it now, not at its deadline
			 * (one try: a reader never waits for room; its
			 * further fragments are dropped as malformed). */
			send_msg(ch, F_ERR, -ENOMEM, 0, f->msg_id, oom,
				 sizeof(oom) - 1, 0, -1);
			return;
		}
		in->id = f->msg_id;
		in->total = f->total_len;
		in->next = ch->active;
		ch->active = in;
		atomic_fetch_add_explicit(&ch->nactive, 1,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&ch->active_bytes, in->total,
					  memory_order_relaxed);
	} else if (!in || in->queued || in->got != f->frag_off ||
		   in->total != f->total_len) {
		pthread_mutex_unlock(&ep->mu);
		malformed(ch); /* out of order, or no beginning */
		return;
	}
	pthread_mutex_unlock(&ep->mu);
	/* The reader alone fills an unfinished request. */
	if (f->frag_len)
		memcpy(in->buf + f->frag_off, p, f->frag_len);
	in->got += f->frag_len;
	if (in->got < in->total)
		return;
	count(ep, C_BYTES_IN, in->total);
	SHMK__CRASH("rpc_request_read"); /* whole, not yet queued */
	if (ready) {
		claim(ep, ch, in);
		*ready = in; /* the reader runs it, or queues it */
	} else {
		enqueue(ep, ch, in);
	}
}

/* A reply or error frame for one of our calls. */
static void on_reply(struct chan *ch, const struct frame *f, const char *p)
{
	struct shmk_rpc *ep = ch->ep;
	struct call *c;
	int last;

	pthread_mutex_lock(&ep->mu);
	c = call_find(ep, f->corr_id, NULL);
	if (!c || c->ch != ch ||
	    atomic_load_explicit(&c->done, memory_order_relaxed)) {
		pthread_mutex_unlock(&ep->mu);
		/* Late (its caller gave up) or unknown: dropped by id. */
		count(ep, C_DISCARDED, 1);
		return;
	}
	/* An error's first fragment may end a reply under way: its sender
	 * gave up on it (our reader stopped taking it) and says so. */
	if (f->type == F_ERR && f->frag_off == 0 && c->started && !c->err) {
		c->started = 0;
		c->got = 0;
	}
	if ((!c->started && f->frag_off != 0) ||
	    (c->started && (f->total_len != c->total || f->frag_off != c->got ||
			    (f->type == F_ERR) != c->err)) ||
	    (f->type == F_ERR && f->total_len >= SHMK_RPC_ERRMAX)) {
		pthread_mutex_unlock(&ep->mu);
		malformed(ch);
		return;
	}
	c->started = 1;
	c->err = f->type == F_ERR;
	c->total = f->total_len;
	last = f->frag_off + f->frag_len == f->total_len;
	atomic_store_explicit(&c->filling, 1, memory_order_relaxed);
	pthread_mutex_unlock(&ep->mu);
	/* The caller cannot leave before filling is 0 again: copy unlocked. */
	if (f->type == F_ERR)
		memcpy(c->error + f->frag_off, p, f->frag_len);
	else if (f->total_len <= c->cap && f->frag_len)
		memcpy((char *)c->buf + f->frag_off, p, f->frag_len);
	pthread_mutex_lock(&ep->mu);
	c->got += f->frag_len;
	if (last) {
		count(ep, C_REPLIES, 1);
		count(ep, C_BYTES_IN, f->total_len);
		if (f->type == F_ERR) {
			count(ep, C_ERRORS, 1);
			/* 0 is not an error; a peer saying so is wrong. */
			call_done(c, f->status < 0 && f->status > -4096
					     ? f->status
					     : -EPROTO);
		} else {
			call_done(c, f->total_len > c->cap ? -EMSGSIZE : 0);
		}
	}
	/* Last: from here the caller may free c. */
	atomic_store_explicit(&c->filling, 0, memory_order_release);
	pthread_mutex_unlock(&ep->mu);
}

static void on_cancel(struct chan *ch, const struct frame *f)
{
	struct shmk_rpc *ep = ch->ep;
	struct inreq *in;

	count(ep, C_CANCELS_SEEN, 1);
	pthread_mutex_lock(&ep->mu);
	in = inreq_find(ch, f->corr_id);
	if (in)
		atomic_store_explicit(&in->cancelled, 1, memory_order_relaxed);
	if (in && !in->queued) {
		/* Still reassembling: no worker has it, it goes now. */
		pthread_mutex_unlock(&ep->mu);
		inreq_drop(ch, in);
		return;
	}
	pthread_mutex_unlock(&ep->mu);
}

static void on_hello(struct chan *ch, const struct frame *f);

/*
 * Handles one frame (m, len bytes, read from shared memory: each field is
 * read once from a private copy and checked before use).  Returns 1 if the
 * peer said goodbye.
 */
static int on_frame(struct chan *ch, struct shmk_msg *m, struct inreq **ready)
{
	struct frame f;
	const char *p = (const char *)m->data + HDR;

	if (m->len < HDR)
		return malformed(ch);
	memcpy(&f, m->data, HDR);
	if (f.magic != RPC_MAGIC || f.version != RPC_VERSION || f.flags ||
	    f.type == 0 || f.type >= F_MAX || f.frag_len != m->len - HDR ||
	    f.total_len > ch->ep->max_msg || f.frag_off > f.total_len ||
	    f.frag_len > f.total_len - f.frag_off)
		return malformed(ch);
	if (!ch->hello && f.type != F_HELLO)
		return malformed(ch);
	switch (f.type) {
	case F_REQ:
		on_request(ch, &f, p, ready);
		break;
	case F_REP:
	case F_ERR:
		on_reply(ch, &f, p);
		break;
	case F_CANCEL:
		on_cancel(ch, &f);
		break;
	case F_HELLO:
		on_hello(ch, &f);
		break;
	case F_BYE:
		return 1;
	}
	return 0;
}
/*
 * Reads and drops whatever the peer sent on the channel's socket after the
 * handshake (the protocol has nothing more to say there), a few messages
 * at a time.  With no room for control data, descriptors the peer passed
 * are never installed here: the kernel drops them (MSG_CTRUNC), so that
 * they cost us nothing and no close() of ours can block on a file the
 * peer chose (one on a FUSE mount it serves, say).
 */
static void sock_drain(int s)
{
	int i;

	for (i = 0; i < 8; i++) {
		char junk[64];

		if (recv(s, junk, sizeof(junk), MSG_DONTWAIT) <= 0)
			return;
	}
}

/*
 * Is the peer gone?  The kernel says: its end of the channel's socket hung
 * up, or its process exited (its pidfd is readable; this covers a dead
 * peer whose socket a child of fork() still holds).  One poll, no wait.
 * A lab channel has neither and is never dead this way.
 */
static int peer_dead(struct chan *ch)
{
	struct pollfd p[2];
	int n = 0;

	if (ch->sock >= 0)
		p[n++] = (struct pollfd){.fd = ch->sock, .events = POLLRDHUP};
	if (ch->pidfd >= 0)
		p[n++] = (struct pollfd){.fd = ch->pidfd, .events = POLLIN};
	if (!n || poll(p, (nfds_t)n, 0) <= 0)
		return 0;
	if (ch->sock >= 0 &&
	    (p[0].revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)))
		return 1;
	if (ch->pidfd >= 0 && p[n - 1].revents)
		return 1;
	if (ch->sock >= 0 && (p[0].revents & POLLIN))
		sock_drain(ch->sock);
	return 0;
}

static void chan_end(struct chan *ch);

/*
 * A whole request that a server's channel reader took: run in place when
 * a handler slot is free and no request waits for a worker, so that the
 * reply goes from the thread that read the request (no hand-off), else
 * queued for the workers.  While it runs the channel has no reader: the
 * acceptor reads it for it once the handler has run WATCH_NS
 * (watch_inline), and a handler that waits for a call of its own reads
 * it itself (read_for).
 */
static void run_or_queue(struct shmk_rpc *ep, struct chan *ch, struct inreq *in)
{
	uint64_t now;

	if (atomic_load_explicit(&ep->queued, memory_order_relaxed) ||
	    !take_slot(ep)) {
		enqueue_claimed(ep, in);
		return;
	}
	now = shmk__mono_ns();
	atomic_store_explicit(&ch->inline_since, now, memory_order_relaxed);
	atomic_store_explicit(&ep->inline_ns, now, memory_order_relaxed);
	/* seq_cst, as is the acceptor's store of watch_asleep and its load
	 * of ninline after it: one of the two sees the other. */
	atomic_fetch_add_explicit(&ep->ninline, 1, memory_order_seq_cst);
	wake_watch(ep);
	run_work(ep, in); /* drops the claim's reference, not ours */
	atomic_store_explicit(&ch->inline_since, 0, memory_order_relaxed);
	atomic_fetch_sub_explicit(&ep->ninline, 1, memory_order_relaxed);
	give_slot(ep);
}

/*
 * How long a reader waits on a quiet ring before it looks at its peer:
 * 10 ms while a call of ours is pending or an error is owed (T_live), else
 * a second.  A server's acceptor sees a client's death at once (epoll)
 * and shuts its rings down, which wakes the reader; a client's waiting
 * callers look themselves (read_for).  So an idle channel costs a wake-up
 * a second, not a hundred.
 */
static int quiet_ms(struct shmk_rpc *ep, struct chan *ch)
{
	if (atomic_load_explicit(&ep->npending, memory_order_relaxed) ||
	    atomic_load_explicit(&ch->nowed, memory_order_relaxed) ||
	    atomic_load_explicit(&ch->unwatched, memory_order_relaxed))
		return 10;
	return ch->sock >= 0 ? 1000 : 10;
}

/* No caller wants to read the channel (or it is over). */
static int want_cond(void *arg, int slow)
{
	struct chan *ch = arg;

	(void)slow;
	return !atomic_load_explicit(&ch->want, memory_order_acquire) ||
			       atomic_load_explicit(&ch->dead,
						    memory_order_acquire)
		       ? SHMK__COND_DONE
		       : SHMK__COND_IDLE;
}

static void *reader_main(void *arg)
{
	struct chan *ch = arg;
	struct shmk_rpc *ep = ch->ep;

	while (!atomic_load_explicit(&ep->stop, memory_order_acquire) &&
	       !atomic_load_explicit(&ch->dead, memory_order_acquire)) {
		struct shmk_msg m;
		struct inreq *ready;
		int64_t spin;
		int rc, busy, quiet;

		/* Flow control: a peer with MAX_ACTIVE requests, or
		 * 4 x max_msg bytes of them, unanswered waits (its ring fills)
		 * until the workers catch up. */
		busy = chan_busy(ch);
		if (busy) {
			if (peer_dead(ch))
				break;
			shmk__nap(200000, SHMK__FOREVER);
			continue;
		}
		if (!ep->server &&
		    (atomic_load_explicit(&ch->want, memory_order_acquire) ||
		     pthread_mutex_trylock(&ch->rd) != 0)) {
			/* Callers read (and look at the server, read_for):
			 * we wait for the last to leave, looking at the
			 * server once a second. */
			if (peer_dead(ch))
				break;
			shmk__wait(NULL, 0, &ch->want_ec, want_cond, ch,
				   shmk__deadline(1000), 0, 0, SHMK__WAIT_LONG);
			continue;
		}
		/* Spin for the next frame only while this process has no
		 * other work: a queued request or a finished call waiting for
		 * its caller needs the CPU more than we do. */
		spin = atomic_load_explicit(&ep->queued,
					    memory_order_relaxed) ||
				       atomic_load_explicit(
					       &ep->uncollected,
					       memory_order_relaxed)
			       ? 0
			       : ep->spin_ns;
		if (ep->server)
			pthread_mutex_lock(&ch->rd); /* ours alone */
		quiet = quiet_ms(ep, ch);
		/* A long wait is not cut into 10 ms slices: a writer that
		 * dies is the peer (its death is seen through the socket and
		 * pidfd, and shuts the rings down on a server) or a thread of
		 * ours. */
		rc = quiet > 10
			     ? shmk__ring_acquire_long(ch->in, &m, quiet, spin)
			     : shmk__ring_acquire_spin(ch->in, &m, quiet, spin);

		if (rc < 0)
			pthread_mutex_unlock(&ch->rd);
		if (rc == -ETIMEDOUT) {
			send_owed(ch);
			/* Quiet: is the peer still there?  A client that never
			 * says hello in its ring keeps its channel, and its
			 * place in the limits, for as long as it lives: were it
			 * dropped, the rings it holds (or whose descriptors wait
			 * unread in its socket) would stay alive uncounted. */
			if (peer_dead(ch))
				break;
			continue;
		}
		if (rc < 0)
			break; /* shut down and drained, or corrupt */
		ready = NULL;
		rc = on_frame(ch, &m, ep->server ? &ready : NULL);
		shmk_ring_release(ch->in, &m);
		pthread_mutex_unlock(&ch->rd);
		if (ready)
			run_or_queue(ep, ch, ready);
		if (rc)
			break;
	}
	chan_end(ch);
	chan_put(ch);
	/* Last: ep_stop() waits for this and may then free ep. */
	atomic_fetch_sub_explicit(&ep->readers, 1, memory_order_release);
	return NULL;
}

/* ---------------------------------------------------------------------
 * Channels
 * --------------------------------------------------------------------- */

/* The reader is done with ch: calls on it fail, the server forgets it. */
static void chan_end(struct chan *ch)
{
	struct shmk_rpc *ep = ch->ep;
	struct chan **p;
	struct inreq *in;

	atomic_store_explicit(&ch->dead, 1, memory_order_release);
	calls_fail(ep, ch, -EPIPE);
	pthread_mutex_lock(&ep->mu);
	/* What no worker has: requests still reassembling. */
	for (in = ch->active; in; in = in->next)
		atomic_store_explicit(&in->cancelled, 1, memory_order_relaxed);
	/* Last: the list's reference may be the last one (a channel whose
	 * reader never started), and ch is then freed. */
	if (ep->server)
		for (p = &ep->chans; *p; p = &(*p)->next)
			if (*p == ch) {
				*p = ch->next;
				ep->nchans--;
				count(ep, C_CLIENTS, (uint64_t)-1);
				chan_put(ch); /* the list's reference */
				break;
			}
	pthread_mutex_unlock(&ep->mu);
}

static struct chan *chan_new(struct shmk_rpc *ep)
{
	struct chan *ch = calloc(1, sizeof(*ch));

	if (!ch)
		return NULL;
	pthread_mutex_init(&ch->rd, NULL);
	ch->ep = ep;
	ch->sock = -1;
	ch->pidfd = -1;
	atomic_store(&ch->refs, 1);
	return ch;
}

static void chan_put(struct chan *ch)
{
	struct inreq *in, *next;

	if (atomic_fetch_sub(&ch->refs, 1) != 1)
		return;
	for (in = ch->active; in; in = next) {
		next = in->next;
		free(in->buf);
		free(in);
	}
	free(ch->owed);
	atomic_fetch_sub_explicit(&ch->ep->nowed, ch->nowed,
				  memory_order_relaxed);
	shmk_ring_close(ch->in);
	shmk_ring_close(ch->out);
	/* Out of the acceptor's set first: a copy of a descriptor (in a
	 * child of fork()) would keep it there after our close. */
	if (ch->ep->epfd >= 0 && ch->sock >= 0)
		epoll_ctl(ch->ep->epfd, EPOLL_CTL_DEL, ch->sock, NULL);
	if (ch->ep->epfd >= 0 && ch->pidfd >= 0)
		epoll_ctl(ch->ep->epfd, EPOLL_CTL_DEL, ch->pidfd, NULL);
	/* The peer sees our end hang up: its calls fail at once. */
	if (ch->sock >= 0)
		close(ch->sock);
	if (ch->pidfd >= 0)
		close(ch->pidfd);
	pthread_mutex_destroy(&ch->rd);
	free(ch);
}

/* The in-ring hello marks the start of the peer's frames; what it says
 * (its corr_id) is not used for anything. */
static void on_hello(struct chan *ch, const struct frame *f)
{
	if (ch->hello || f->total_len) {
		malformed(ch);
		return;
	}
	atomic_store_explicit(&ch->hello, 1, memory_order_release);
}

static int say_hello(struct chan *ch)
{
	struct shmk_msg m;
	int rc = shmk_ring_reserve(ch->out, &m, 1000);

	if (rc < 0)
		return rc;
	fill(&m, F_HELLO, 0, 0, 0, NULL, 0, 0, 0);
	return shmk_ring_commit(ch->out, &m);
}

/* Readers are detached; ep->readers counts those still running. */
static int start_reader(struct chan *ch)
{
	pthread_attr_t at;
	pthread_t t;
	int rc;

	atomic_fetch_add(&ch->refs, 1);
	atomic_fetch_add(&ch->ep->readers, 1);
	rc = pthread_attr_init(&at);
	if (!rc) {
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		rc = pthread_create(&t, &at, reader_main, ch);
		pthread_attr_destroy(&at);
	}
	if (rc) {
		atomic_fetch_sub(&ch->ep->readers, 1);
		atomic_fetch_sub(&ch->refs, 1);
		return -rc;
	}
	return 0;
}

/* ---------------------------------------------------------------------
 * The handshake: socket messages, parsed defensively
 * --------------------------------------------------------------------- */

/* The server's abstract address: derived from its object's nonce, which
 * nobody can know before the object is published (and the server binds
 * before that), so the address cannot be squatted. */
static socklen_t sock_addr(struct sockaddr_un *a, uint64_t nonce)
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
static ssize_t recv_msg(int s, void *buf, size_t cap, int *fds, int maxfds,
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
static int send_hs(int s, const void *buf, size_t len, const int *fds, int nfds)
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
static int peer_pidfd(int s, pid_t pid)
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

/* ---------------------------------------------------------------------
 * The server's acceptor
 * --------------------------------------------------------------------- */

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
	(void)send_hs(fd, &a, sizeof(a), NULL, 0);
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
 * Makes the channel of the client on p (its hello read and checked), and
 * answers.  The socket and pidfd are the channel's from here, or closed.
 * Nothing here waits for the client: the answer goes into an empty socket
 * buffer.
 */
static void accept_chan(struct shmk_rpc *ep, struct pending *p, int pidfd)
{
	struct shmk_opts o = {
		.spin_us = ep->spin_ns > 0 ? (int)(ep->spin_ns / 1000) : -1};
	struct hs_answer a = {.magic = HS_MAGIC,
			      .version = HS_VERSION,
			      .type = HS_ACCEPT,
			      .nodes = ep->nodes,
			      .node_size = ep->node_size,
			      .max_msg = ep->max_msg};
	struct chan *ch = chan_new(ep);
	int rc = ch ? 0 : -ENOMEM, fds[2];

	/* Anonymous rings (mode 0666: a client of another user reopens the
	 * descriptor it receives), sealed against shrinking and growing:
	 * nobody can open them by name, nor make a reader fault. */
	if (!rc)
		rc = shmk_ring_create(NULL, ep->nodes, ep->node_size, &o,
				      &ch->in);
	if (!rc)
		rc = shmk_ring_create(NULL, ep->nodes, ep->node_size, &o,
				      &ch->out);
	if (!rc)
		rc = say_hello(ch);
	if (!rc && (fds[0] = shmk_ring_fd(ch->in)) < 0)
		rc = fds[0];
	if (!rc && (fds[1] = shmk_ring_fd(ch->out)) < 0)
		rc = fds[1];
	if (rc < 0) {
		if (ch)
			chan_put(ch);
		close(pidfd);
		refuse(ep, p->fd, rc);
		return;
	}
	SHMK__CRASH("rpc_accept_created"); /* rings made, no answer */
	ch->sock = p->fd;
	ch->pidfd = pidfd;
	ch->pid = p->pid;
	pthread_mutex_lock(&ep->mu);
	a.chan = ch->num = ++ep->next_chan;
	ch->next = ep->chans;
	ep->chans = ch;
	ep->nchans++;
	pthread_mutex_unlock(&ep->mu);
	count(ep, C_CLIENTS, 1);
	watch_chan(ep, ch, EPOLL_CTL_ADD);
	/* The reader first: a client told yes must find its channel served.
	 * Our own reference keeps ch while we answer (the reader may end it
	 * at any time from here). */
	atomic_fetch_add(&ch->refs, 1);
	rc = start_reader(ch);
	if (rc < 0) {
		say_no(ep, ch->sock, rc);
		chan_end(ch);
		chan_put(ch); /* the last reference: closes the socket */
		return;
	}
	rc = send_hs(ch->sock, &a, sizeof(a), fds, 2);
	/* The client has its own descriptors now (or never will): ours
	 * need not stay open. */
	shmk__region_unshare(shmk__ring_region(ch->in));
	shmk__region_unshare(shmk__ring_region(ch->out));
	if (rc < 0)
		atomic_store_explicit(&ch->dead, 1, memory_order_release);
	else
		count(ep, C_CONNECTS, 1);
	chan_put(ch);
}

/* The client on p has said something: its hello, or a lie. */
static void handshake(struct shmk_rpc *ep, struct pending *p)
{
	char buf[2 * SHMK__RPC_HELLO_SIZE];
	uint32_t pid;
	ssize_t n;
	int fds[1], nfds, pidfd;

	/* No descriptor belongs in a hello: any that came is closed. */
	n = recv_msg(p->fd, buf, sizeof(buf), fds, 0, &nfds);
	if (n == -EAGAIN)
		return; /* spurious: still pending */
	if (n < 0 || shmk__rpc_hello_parse(buf, (size_t)n, &pid) < 0) {
		count(ep, C_REFUSED, 1); /* malformed: not worth an answer */
		close(p->fd);
		goto done;
	}
	if ((pid_t)pid != p->pid) {
		/* A pid that is not the sender's, as the kernel sees it: a
		 * lie, or a client in another pid namespace. */
		refuse(ep, p->fd, -EACCES);
		goto done;
	}
	SHMK__CRASH("rpc_accept_hello"); /* hello read, nothing made */
	if (!peer_allowed(ep, p->uid, p->gid)) {
		refuse(ep, p->fd, -EACCES);
		goto done;
	}
	n = over_limit(ep, p->pid);
	if (n < 0) {
		refuse(ep, p->fd, (int)n);
		goto done;
	}
	pidfd = peer_pidfd(p->fd, p->pid);
	if (pidfd < 0) { /* gone already */
		count(ep, C_REFUSED, 1);
		close(p->fd);
		goto done;
	}
	accept_chan(ep, p, pidfd);
done:
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
		help_read(late[i]);
		chan_put(late[i]);
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
		if (peer_dead(ch)) {
			atomic_store_explicit(&ch->dead, 1,
					      memory_order_release);
			shmk_ring_shutdown(ch->in);
			shmk_ring_shutdown(ch->out);
		} else {
			watch_chan(ep, ch, EPOLL_CTL_MOD); /* not yet */
		}
		chan_put(ch);
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
		send_owed(owing[i]);
		chan_put(owing[i]);
	}
}

/*
 * The acceptor: one poll over the stop eventfd, the listening socket, the
 * channels' liveness (epoll) and every handshake under way.  It never waits on a client: a connection
 * that says nothing within HANDSHAKE_NS is dropped, and each message is
 * read without waiting.
 */
static void *acceptor_main(void *arg)
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

/* ---------------------------------------------------------------------
 * Endpoints
 * --------------------------------------------------------------------- */

static int ep_new(const char *name, const struct shmk_rpc_opts *o,
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
	ep->ctr = ep->own;
	pthread_mutex_init(&ep->mu, NULL);
	atomic_store(&ep->next_id, 1);
	*epp = ep;
	return 0;
}

static int start_workers(struct shmk_rpc *ep, const struct shmk_rpc_opts *o)
{
	int i, n = o && o->workers ? o->workers : 2, rc;

	if (n < 0) {
		ep->dispatch = 1; /* shmk_rpc_dispatch runs the handlers */
		return 0;
	}
	/* nworkers counts the threads started: ep_stop joins that many. */
	ep->workers = calloc((size_t)n, sizeof(pthread_t));
	if (!ep->workers)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		rc = pthread_create(&ep->workers[i], NULL, worker_main, ep);
		if (rc)
			return -rc;
		ep->nworkers = i + 1;
		atomic_fetch_add(&ep->slots, 1);
	}
	return 0;
}

/* A server's (or lab's) geometry and counters: its object's. */
static void ep_geometry(struct shmk_rpc *ep)
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
		call_free(c);
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
		chan_put(ch);
	}
	/* Work never started. */
	while (ep->qhead) {
		struct inreq *in = ep->qhead;

		ch = in->ch;
		ep->qhead = in->qnext;
		inreq_drop(ch, in);
		chan_put(ch);
	}
}

static void ep_free(struct shmk_rpc *ep)
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
	socklen_t al = sock_addr(&a, r->hdr->nonce);

	tl_bind_rc = 0;
	if (bind(tl_bind_fd, (struct sockaddr *)&a, al) < 0 ||
	    listen(tl_bind_fd, LISTEN_BACKLOG) < 0)
		tl_bind_rc = -errno;
}

/* Copies the options' lists of who may connect. */
static int copy_allow(struct shmk_rpc *ep, const struct shmk_rpc_opts *o)
{
	if (!o)
		return 0;
	if (o->n_allow_uid) {
		if (o->n_allow_uid > 65536)
			return -EINVAL;
		ep->allow_uid = malloc(o->n_allow_uid * sizeof(uid_t));
		if (!ep->allow_uid)
			return -ENOMEM;
		memcpy(ep->allow_uid, o->allow_uid,
		       o->n_allow_uid * sizeof(uid_t));
		ep->n_allow_uid = o->n_allow_uid;
	}
	if (o->n_allow_gid) {
		if (o->n_allow_gid > 65536)
			return -EINVAL;
		ep->allow_gid = malloc(o->n_allow_gid * sizeof(gid_t));
		if (!ep->allow_gid)
			return -ENOMEM;
		memcpy(ep->allow_gid, o->allow_gid,
		       o->n_allow_gid * sizeof(gid_t));
		ep->n_allow_gid = o->n_allow_gid;
	}
	return 0;
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
	struct shmk_stat st;
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
	rc = shmk__stat_fd(fd, &st);
	if (rc == 0 && st.kind != SHMK_KIND_RPC)
		rc = -EEXIST;
	else if (rc == 0 && st.creator_alive)
		rc = -EADDRINUSE;
	else if (rc < 0)
		rc = -EEXIST;
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
	int rc = ep_new(name, o, out, &ep), src;
	uint64_t give_up = shmk__mono_ns() + TAKEOVER_NS;

	if (rc < 0)
		return rc;
	if ((mode & ~0777u) || (mode & 0600u) != 0600u)
		rc = -EINVAL;
	if (!rc)
		rc = copy_allow(ep, o);
	if (rc < 0) {
		ep_free(ep);
		return rc;
	}
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
					 &ro, rpc_init);
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
	if (rc < 0) {
		ep_free(ep);
		return rc == -EEXIST ? -EADDRINUSE : rc;
	}
	ep_geometry(ep);
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
	rc = !ep->pend ? -ENOMEM : ep->stopfd < 0 ? -errno : 0;
	if (!rc) {
		ep->epfd = epoll_create1(EPOLL_CLOEXEC);
		rc = ep->epfd < 0 ? -errno : 0;
	}
	if (!rc)
		rc = start_workers(ep, o);
	if (!rc) {
		rc = -pthread_create(&ep->acceptor, NULL, acceptor_main, ep);
		ep->acceptor_started = rc == 0;
	}
	if (rc < 0) {
		ep_stop(ep);
		shmk__region_unlink(&ep->r, name);
		ep_free(ep);
		return rc;
	}
	*out = ep;
	return 0;
}

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
 * header (nothing is mapped), connects to its address, checks that the
 * server's uid owns the object, says hello and takes the answer.  On
 * success the client's channel is in ep.  -ECONNREFUSED for a dead or
 * closed server (retried by the caller while it may wait), -EAGAIN for a
 * full backlog (likewise).
 */
static int connect_once(struct shmk_rpc *ep, const char *name,
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
	rc = shmk__hdr_check(&h, (uint64_t)st.st_size, &shmk__rpc_kind);
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
	al = sock_addr(&addr, h.nonce);
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
		pidfd = peer_pidfd(s, cr.pid);
		if (pidfd < 0) /* -ESRCH: the server is gone */
			rc = pidfd == -ESRCH ? -ECONNREFUSED : pidfd;
	}
	if (!rc)
		rc = send_hs(s, &hello, sizeof(hello), NULL, 0);
	if (!rc)
		SHMK__CRASH("rpc_connect_sent"); /* hello sent, no answer */
	if (!rc)
		rc = wait_readable(s, answer_by);
	if (!rc) {
		n = recv_msg(s, buf, sizeof(buf), fds, 2, &nfds);
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
	if (!rc && !(ch = chan_new(ep)))
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
			on_frame(ch, &m, NULL);
			shmk_ring_release(ch->in, &m);
			if (!ch->hello)
				rc = -EPROTO;
		}
	}
	if (!rc) {
		SHMK__CRASH("rpc_connect_opened"); /* rings open, no hello */
		rc = say_hello(ch);
	}
	if (s >= 0)
		close(s);
	if (pidfd >= 0)
		close(pidfd);
	if (rc < 0) {
		if (ch)
			chan_put(ch);
		return rc == -EAGAIN && ch ? -ETIMEDOUT : rc;
	}
	ep->nodes = ans.nodes;
	ep->node_size = ans.node_size;
	ep->max_msg = ans.max_msg;
	ep->chans = ch;
	return 0;
}

SHMK__EXPORT int shmk_rpc_connect(const char *name,
				  const struct shmk_rpc_opts *o,
				  struct shmk_rpc **out)
{
	struct shmk_opts ro = {.wait_ms = o ? o->wait_ms : 0,
			       .spin_us = o ? o->spin_us : 0,
			       .flags = o ? o->flags & SHMK_F_ALLOW_SHARED : 0};
	uint64_t deadline;
	struct shmk_rpc *ep;
	int rc = ep_new(name, o, out, &ep), nap_ms = 1, busy_ms = 1;
	uint64_t jitter = shmk__mono_ns() ^ ((uint64_t)getpid() << 32);

	if (rc < 0)
		return rc;
	rc = shmk__opts_check(&ro, 0);
	if (rc < 0) {
		ep_free(ep);
		return rc;
	}
	ep->spin_ns = shmk__spin_ns(&ro);
	deadline = shmk__deadline(ro.wait_ms);
	for (;;) {
		/* The answer gets a second at least, as it always had. */
		uint64_t answer_by =
			remaining_ms(deadline) >= 0 &&
					remaining_ms(deadline) < 1000
				? shmk__deadline(1000)
				: deadline;

		rc = connect_once(ep, name, &ro, answer_by);
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
	if (rc < 0) {
		ep_free(ep);
		return rc == -EAGAIN ? -ETIMEDOUT : rc;
	}
	rc = start_workers(ep, o);
	if (!rc)
		rc = start_reader(ep->chans);
	if (rc < 0) {
		ep_stop(ep);
		ep_free(ep);
		return rc;
	}
	*out = ep;
	return 0;
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
	ep_free(ep);
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
			fill(&m, F_BYE, 0, 0, 0, NULL, 0, 0, 0);
			shmk_ring_commit(ep->chans->out, &m);
		}
	}
	ep_stop(ep);
	if (ep->server)
		rc = shmk__region_unlink(&ep->r, ep->name);
	ep_free(ep);
	return rc == -ENOENT ? 0 : rc; /* removed by someone else: fine */
}

struct shmk_ring *shmk__rpc_out_ring(struct shmk_rpc *ep)
{
	return ep && ep->chans ? ep->chans->out : NULL;
}

int shmk__rpc_lab(const char *name, int server, struct shmk_ring *in,
		  struct shmk_ring *out, const struct shmk_rpc_opts *o,
		  struct shmk_rpc **epp)
{
	uint64_t geom[SHMK__GEOM_N] = {shmk_ring_nodes(in),
				       shmk_ring_node_size(in),
				       o && o->max_msg ? o->max_msg : 4096};
	struct shmk_rpc *ep = NULL;
	struct chan *ch = NULL;
	int rc = -EINVAL;

	if (in && out && shmk_ring_node_size(out) == geom[1])
		rc = ep_new(name, o, epp, &ep);
	if (!rc) {
		rc = shmk__region_create(&ep->r, NULL, &shmk__rpc_kind, geom,
					 NULL, NULL);
		if (rc < 0)
			ep_free(ep);
	}
	if (!rc && !(ch = chan_new(ep))) {
		ep_free(ep);
		rc = -ENOMEM;
	}
	if (rc < 0 || !ch) {
		shmk_ring_close(in);
		shmk_ring_close(out);
		return rc < 0 ? rc : -ENOMEM;
	}
	ch->in = in;
	ch->out = out;
	ch->num = 1;
	atomic_store(&ch->refs, 1); /* the list's */
	ep_geometry(ep);
	ep->server = server;
	ep->chans = ch;
	ep->nchans = server ? 1 : 0;
	ep->next_chan = 1;
	*epp = ep;
	return 0;
}

int shmk__rpc_poll(struct shmk_rpc *ep)
{
	struct inreq *in;
	int n;

	if (!ep || !ep->chans)
		return 0;
	n = help_read(ep->chans);
	while ((in = dequeue(ep)) != NULL)
		run_work(ep, in);
	return n;
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
		else /* release: before any poll_arm that finds it */
			atomic_store_explicit(&ep->pollfd, fd,
					      memory_order_release);
	}
	pthread_mutex_unlock(&ep->mu);
	return fd;
}

SHMK__EXPORT int shmk_rpc_dispatch(struct shmk_rpc *ep, int max)
{
	struct inreq *in;
	int n = 0;

	if (!ep || !ep->dispatch || max <= 0)
		return -EINVAL;
	if (getpid() != ep->owner)
		return -ECHILD;
	for (;;) {
		while (n < max && (in = dequeue(ep)) != NULL) {
			run_work(ep, in);
			n++;
		}
		if (n)
			return n;
		/* Nothing queued: arm, then look again (seq_cst: pairs with
		 * enqueue's count and its poll_kick). */
		poll_arm(ep);
		if (!atomic_load_explicit(&ep->queued, memory_order_seq_cst))
			return -EAGAIN;
	}
}

SHMK__EXPORT int shmk_rpc_wake(struct shmk_rpc *ep)
{
	if (!ep)
		return -EINVAL;
	/* seq_cst, as the load that begins a wait (shmk_rpc_wait). */
	atomic_fetch_add_explicit(&ep->wakes, 1, memory_order_seq_cst);
	return 0;
}
