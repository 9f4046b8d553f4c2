/* SPDX-License-Identifier: MIT */
/*
 * rpc.c - shmk_rpc: request/response between processes.
 *
 * A server creates the rpc object NAME: a header whose control area holds
 * the connect slots and whose counters every endpoint adds to.  A client
 * attaches to it, claims a connect slot with a random token and waits;
 * the server creates the client's channel, two rings NAME.<token>.q
 * (client to server) and NAME.<token>.p (server to client), and marks the
 * slot accepted.  The client opens both and says hello on q; the server
 * then removes the rings' names, so nothing of the channel stays visible
 * once either side is gone.  Each side learns the other's owner id in the
 * rings from its hello and looks at its liveness whenever its channel is
 * quiet: a dead peer ends the channel, and every call pending on it fails
 * with -EPIPE.
 *
 * Each message is one or more frames, a frame per ring node: a 48-byte
 * header (below) and a fragment of the message.  One reader thread per
 * channel takes frames, reassembles messages, completes calls and queues
 * requests; handlers run on worker threads only.  Everything read from a
 * frame is validated before use; a bad frame is counted and dropped.
 * docs/format.md describes the frame, docs/design.md the protocol.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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
			      F_HELLO: the sender's owner id in this ring */
	uint64_t total_len; /* bytes of the whole message */
	uint64_t frag_off;  /* where this fragment goes */
};
_Static_assert(sizeof(struct frame) == HDR, "rpc frame");

/* Geometry of the rpc object: geom[0] nodes, [1] node size, [2] largest
 * message, of every channel. */
#define MIN_NODE_SIZE (HDR + 16)
#define MAX_MSG_LIMIT (UINT64_C(1) << 32)
#define NSLOTS	      48   /* connects under way at once */
#define MAX_ACTIVE    1024 /* requests of one peer unanswered at once */

/*
 * A connect slot is claimed by a compare-and-swap of its client word from
 * 0 to the client's owner id; the phase then says how far it got.  The
 * server frees a slot (phase, then client word) once the client said
 * hello, died, or let CONNECT_GRACE_NS pass.
 */
enum { S_FREE, S_ASKED, S_ACCEPTED, S_REFUSED, S_ACCEPTING };
#define CONNECT_GRACE_NS (UINT64_C(10) * 1000000000)
/* How long serve looks again at a name whose server seems alive (one
 * killed a moment ago), and how often. */
#define TAKEOVER_NS	(200 * 1000000ull)
#define TAKEOVER_NAP_NS (5 * 1000000ull)

struct rpc_slot {
	_Atomic uint32_t phase;
	_Atomic int32_t status;	   /* S_REFUSED: why */
	_Atomic uint64_t token;	   /* names the channel's rings */
	_Atomic uint64_t client;   /* the claim: the client's owner id here */
	_Atomic uint64_t chan;	   /* the channel's number */
	_Atomic uint64_t asked_ns; /* when the server accepted */
	uint8_t pad[8];
};

struct rpc_ctl {
	_Atomic uint64_t server; /* the server's owner id */
	uint8_t pad0[SHMK__CACHELINE - 8];
	struct shmk__ec accept; /* the server sleeps here */
	uint8_t pad1[SHMK__CACHELINE - 4];
	struct shmk__ec answer; /* connecting clients sleep here */
	uint8_t pad2[SHMK__CACHELINE - 4];
	struct rpc_slot slot[NSLOTS];
};
_Static_assert(sizeof(struct rpc_ctl) <= SHMK__CTL_SIZE, "rpc ctl");

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
};

static int rpc_layout(const uint64_t geom[SHMK__GEOM_N], uint64_t *total)
{
	int i;

	for (i = 3; i < SHMK__GEOM_N; i++)
		if (geom[i])
			return -EINVAL;
	if (geom[0] < 2 || geom[0] > (1u << 20) || geom[1] < MIN_NODE_SIZE ||
	    geom[1] > (UINT64_C(1) << 30) || geom[2] > MAX_MSG_LIMIT)
		return -EINVAL;
	/* Each channel ring must be a ring shmk can make (nodes rounded up
	 * to pages, half the limit left for the rest); otherwise every
	 * connect would be refused.  At most 2^20 * 2^30: no overflow. */
	if (geom[0] * ((geom[1] + 4095) & ~UINT64_C(4095)) >
	    SHMK__MAX_TOTAL / 2)
		return -EINVAL;
	*total = SHMK__HDR_SIZE;
	return 0;
}

static struct rpc_ctl *ctl_of(struct shmk__region *r)
{
	return (struct rpc_ctl *)r->hdr->ctl;
}

static void rpc_shutdown(struct shmk__region *r)
{
	shmk__ec_notify(&ctl_of(r)->answer);
	shmk__ec_notify(&ctl_of(r)->accept);
}

const struct shmk__kind shmk__rpc_kind = {
	.kind = SHMK_KIND_RPC,
	.name = "rpc",
	.layout = rpc_layout,
	.shutdown = rpc_shutdown,
	.geom_names = {"nodes", "node_size", "max_msg", NULL},
	.counter_names = {"calls", "served", "replies", "bytes_out", "bytes_in",
			  "timeouts", "cancels_sent", "cancels_seen", "errors",
			  "malformed", "discarded", "clients", "connects",
			  NULL},
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
	int waiting;	     /* a thread is in shmk_rpc_wait for it (mu) */
	_Atomic int filling; /* the reader is copying into buf */
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
	uint64_t peer; /* the peer's owner id in ring in */
	uint64_t token;
	_Atomic int hello; /* the peer said hello (peer is set) */
	_Atomic int dead;
	_Atomic int refs;
	/* Active requests' count and buffers: changed under ep->mu, read
	 * without it by chan_busy() (a frame more or less does not matter). */
	_Atomic uint64_t active_bytes;
	_Atomic int stuck; /* a reply did not fit within REPLY_MS */
	uint64_t born_ns;  /* when the channel was made */
	/* Client: who reads ring in.  Callers waiting for a reply read it
	 * themselves when they can (one hand-off fewer); the reader thread
	 * stands aside while any wants to. */
	pthread_mutex_t rd;
	_Atomic int want;
	/* Requests reassembling or in a worker's hands (under ep->mu). */
	struct inreq *active;
	_Atomic int nactive;
};

struct shmk_rpc {
	struct shmk__region r;
	struct rpc_ctl *ctl;
	int server;
	unsigned mode; /* of the channels' rings */
	char name[SHMK_RPC_NAME_MAX + 1];
	shmk_rpc_handler fn;
	void *arg;
	uint64_t nodes, node_size, max_msg;
	int64_t spin_ns;
	pthread_mutex_t mu;
	_Atomic int stop;
	struct chan *chans; /* server: live channels; client: its one */
	uint64_t next_chan;
	struct call *calls;
	_Atomic uint64_t next_id;
	/* The work queue. */
	struct inreq *qhead, *qtail;
	_Atomic uint32_t queued;
	_Atomic uint32_t uncollected; /* calls ended, callers not back yet */
	struct shmk__ec qec;
	int nworkers;
	pthread_t *workers;
	pthread_t acceptor;
	int acceptor_started;
	_Atomic int readers; /* channel readers still running */
	/* Server: what it accepted in each connect slot. */
	struct {
		uint64_t chan, accepted_ns;
	} pend[NSLOTS];
	struct shmk__ec stop_ec;
};

static void chan_put(struct chan *ch);

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
		shmk__count(&ch->ep->r, C_BYTES_OUT, len);
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
	atomic_fetch_add_explicit(&c->ch->ep->uncollected, 1,
				  memory_order_relaxed);
	c->status = status;
	atomic_store_explicit(&c->done, 1, memory_order_seq_cst);
	shmk__ec_notify(&c->ec);
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

static int done_cond(void *arg, int slow)
{
	struct call *c = arg;

	(void)slow;
	return atomic_load_explicit(&c->done, memory_order_acquire)
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
	pthread_mutex_unlock(&ep->mu);
	shmk__count(&ep->r, C_CALLS, 1);
	rc = send_msg(ch, F_REQ, 0, c->id, 0, req, len, c->deadline, -1);
	if (rc < 0) {
		pthread_mutex_lock(&ep->mu);
		call_unlink(ep, c);
		pthread_mutex_unlock(&ep->mu);
		call_settle(c);
		if (rc == -ETIMEDOUT || rc == -EAGAIN)
			shmk__count(&ep->r, C_TIMEOUTS, 1);
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
		shmk__count(&ep->r, C_CANCELS_SENT, 1);
}

static void call_free(struct call *c)
{
	chan_put(c->ch);
	free(c);
}

static int on_frame(struct chan *ch, struct shmk_msg *m);

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
		rc = on_frame(ch, &m);
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
static int read_for(struct shmk_rpc *ep, struct call *c, uint64_t deadline)
{
	struct chan *ch = c->ch;
	int rc = 0, idle = 0;

	if (shmk__mono_ns() >= deadline) {
		/* A poll: take what is there, without making the reader
		 * thread stand aside. */
		help_read(ch);
		return atomic_load_explicit(&c->done, memory_order_acquire)
			       ? 0
			       : shmk__expired(deadline);
	}
	atomic_fetch_add_explicit(&ch->want, 1, memory_order_acq_rel);
	while (!atomic_load_explicit(&c->done, memory_order_acquire)) {
		uint64_t now = shmk__mono_ns(), until = now + 1000000;
		struct shmk_msg m;

		if (now >= deadline) {
			rc = shmk__expired(deadline);
			break;
		}
		if (until > deadline)
			until = deadline;
		if (atomic_load_explicit(&ch->dead, memory_order_acquire) ||
		    chan_busy(ch) || pthread_mutex_trylock(&ch->rd) != 0) {
			shmk__wait(&c->ec, done_cond, c, until, 0, 0, 0);
			continue;
		}
		/* Spin while frames come; a quiet ring gets slept on. */
		rc = shmk__ring_acquire_spin(ch->in, &m, 1,
					     idle ? 0 : ep->spin_ns);
		idle = rc == -ETIMEDOUT;
		if (rc == 0) {
			rc = on_frame(ch, &m);
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
	atomic_fetch_sub_explicit(&ch->want, 1, memory_order_acq_rel);
	return atomic_load_explicit(&c->done, memory_order_acquire) ? 0 : rc;
}

SHMK__EXPORT int shmk_rpc_wait(struct shmk_rpc *ep, uint64_t id,
			       struct shmk_rpc_result *res, int timeout_ms)
{
	uint64_t deadline;
	struct call *c;
	int rc;

	if (!ep || !res)
		return -EINVAL;
	rc = shmk__timeout_ok(timeout_ms);
	if (rc < 0)
		return rc;
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
	/* A server's calls are ended by its reader threads.  No spinning:
	 * that thread is one of ours and may need this CPU (measured:
	 * spinning here halves the calls/s). */
	if (ep->server)
		rc = shmk__wait(&c->ec, done_cond, c, deadline, 0, 0, 0);
	else
		rc = read_for(ep, c, deadline);
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
		shmk__count(&ep->r, C_TIMEOUTS, 1);
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
static void send_reply(struct chan *ch, int type, int32_t status, uint64_t corr,
		       const void *data, uint64_t len)
{
	int stuck = atomic_load_explicit(&ch->stuck, memory_order_relaxed);
	int rc = send_msg(ch, type, status, 0, corr, data, len,
			  shmk__deadline(stuck ? 0 : REPLY_MS), REPLY_MS);

	atomic_store_explicit(&ch->stuck, rc == -ETIMEDOUT || rc == -EAGAIN,
			      memory_order_relaxed);
	if (rc < 0 && rc != -EPIPE)
		shmk__count(&ch->ep->r, C_DISCARDED, 1);
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
	shmk__count(&ep->r, C_SERVED, 1);
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
	return atomic_load_explicit(&ep->queued, memory_order_acquire)
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

static void *worker_main(void *arg)
{
	struct shmk_rpc *ep = arg;

	for (;;) {
		struct inreq *in;

		/* No spinning, as in shmk_rpc_wait(). */
		if (shmk__wait(&ep->qec, queue_cond, ep, SHMK__FOREVER, 0, 0,
			       0) < 0)
			break;
		in = dequeue(ep);
		if (in)
			run_work(ep, in);
	}
	return NULL;
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
	shmk__ec_notify(&ep->qec);
}

/* ---------------------------------------------------------------------
 * The reader of a channel
 * --------------------------------------------------------------------- */

static int malformed(struct chan *ch)
{
	shmk__count(&ch->ep->r, C_MALFORMED, 1);
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
static void on_request(struct chan *ch, const struct frame *f, const char *p)
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
	shmk__count(&ep->r, C_BYTES_IN, in->total);
	SHMK__CRASH("rpc_request_read"); /* whole, not yet queued */
	enqueue(ep, ch, in);
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
		shmk__count(&ep->r, C_DISCARDED, 1);
		return;
	}
	if ((!c->started && f->frag_off != 0) ||
	    (c->started &&
	     (f->total_len != c->total || f->frag_off != c->got)) ||
	    (f->type == F_ERR && f->total_len >= SHMK_RPC_ERRMAX)) {
		pthread_mutex_unlock(&ep->mu);
		malformed(ch);
		return;
	}
	c->started = 1;
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
		shmk__count(&ep->r, C_REPLIES, 1);
		shmk__count(&ep->r, C_BYTES_IN, f->total_len);
		if (f->type == F_ERR) {
			shmk__count(&ep->r, C_ERRORS, 1);
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

	shmk__count(&ep->r, C_CANCELS_SEEN, 1);
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
static int on_frame(struct chan *ch, struct shmk_msg *m)
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
		on_request(ch, &f, p);
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

/* Is the peer gone?  Its owner id came with its hello. */
static int peer_dead(struct chan *ch)
{
	struct shmk__region *r = shmk__ring_region(ch->in);

	if (!atomic_load_explicit(&ch->hello, memory_order_acquire))
		return 0; /* the reader ends it if no hello comes */
	return shmk__owner_dead(r, ch->peer) != 0;
}

static void chan_end(struct chan *ch);

static void *reader_main(void *arg)
{
	struct chan *ch = arg;
	struct shmk_rpc *ep = ch->ep;

	while (!atomic_load_explicit(&ep->stop, memory_order_acquire) &&
	       !atomic_load_explicit(&ch->dead, memory_order_acquire)) {
		struct shmk_msg m;
		int64_t spin;
		int rc, busy;

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
			/* Callers read: we only watch the server. */
			if (peer_dead(ch))
				break;
			shmk__nap(2000000, SHMK__FOREVER);
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
		rc = shmk__ring_acquire_spin(ch->in, &m, 10, spin);

		if (rc < 0)
			pthread_mutex_unlock(&ch->rd);
		if (rc == -ETIMEDOUT) {
			/* Quiet: is the peer still there?  A server's channel
			 * whose client never said hello goes after the grace
			 * period (its names with it). */
			if (peer_dead(ch))
				break;
			if (ep->server &&
			    !atomic_load_explicit(&ch->hello,
						  memory_order_acquire) &&
			    shmk__mono_ns() - ch->born_ns > CONNECT_GRACE_NS)
				break;
			continue;
		}
		if (rc < 0)
			break; /* shut down and drained, or corrupt */
		rc = on_frame(ch, &m);
		shmk_ring_release(ch->in, &m);
		pthread_mutex_unlock(&ch->rd);
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

static void ring_name(char *buf, size_t cap, const char *name, uint64_t token,
		      char dir)
{
	snprintf(buf, cap, "%s.%016" PRIx64 ".%c", name, token, dir);
}

/* Removes the names of the channel rings of token (gone already: fine),
 * those of q and p if they are open: theirs, whatever their bytes say. */
static void unlink_ring(const char *name, uint64_t token, char dir,
			struct shmk_ring *r)
{
	char buf[SHMK_RPC_NAME_MAX + 32];

	ring_name(buf, sizeof(buf), name, token, dir);
	if (r)
		shmk__region_unlink(shmk__ring_region(r), buf);
	else
		shmk_unlink(buf);
}

static void unlink_rings(const char *name, uint64_t token, struct shmk_ring *q,
			 struct shmk_ring *p)
{
	unlink_ring(name, token, 'q', q);
	unlink_ring(name, token, 'p', p);
}

/* The reader is done with ch: calls on it fail, the server forgets it. */
static void chan_end(struct chan *ch)
{
	struct shmk_rpc *ep = ch->ep;
	struct chan **p;
	struct inreq *in;

	atomic_store_explicit(&ch->dead, 1, memory_order_release);
	calls_fail(ep, ch, -EPIPE);
	/* A client that never came leaves its rings' names to us. */
	if (ep->server &&
	    !atomic_load_explicit(&ch->hello, memory_order_acquire))
		unlink_rings(ep->name, ch->token, ch->in, ch->out);
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
				shmk__count(&ep->r, C_CLIENTS, (uint64_t)-1);
				chan_put(ch); /* the list's reference */
				break;
			}
	pthread_mutex_unlock(&ep->mu);
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
	shmk_ring_close(ch->in);
	shmk_ring_close(ch->out);
	pthread_mutex_destroy(&ch->rd);
	free(ch);
}

static void on_hello(struct chan *ch, const struct frame *f)
{
	struct shmk_rpc *ep = ch->ep;

	if (ch->hello || f->total_len || !f->corr_id ||
	    shmk__owner_dead(shmk__ring_region(ch->in), f->corr_id) < 0) {
		malformed(ch);
		return;
	}
	ch->peer = f->corr_id;
	atomic_store_explicit(&ch->hello, 1, memory_order_release);
	/* The client has both rings open and has removed their names;
	 * should it not have, they go now. */
	if (ep->server)
		unlink_rings(ep->name, ch->token, ch->in, ch->out);
}

static int say_hello(struct chan *ch)
{
	struct shmk_msg m;
	int rc = shmk_ring_reserve(ch->out, &m, 1000);

	if (rc < 0)
		return rc;
	fill(&m, F_HELLO, 0, 0, shmk__owner_id(shmk__ring_region(ch->out)),
	     NULL, 0, 0, 0);
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
 * The server's acceptor
 * --------------------------------------------------------------------- */

static int accept_cond(void *arg, int slow)
{
	struct shmk_rpc *ep = arg;
	int i;

	(void)slow;
	if (atomic_load_explicit(&ep->stop, memory_order_acquire))
		return -ECANCELED;
	for (i = 0; i < NSLOTS; i++)
		if (atomic_load_explicit(&ep->ctl->slot[i].phase,
					 memory_order_acquire) == S_ASKED)
			return SHMK__COND_DONE;
	/* Accepted slots are watched until the client's hello. */
	return SHMK__COND_WAIT;
}

static void slot_free(struct rpc_slot *s)
{
	atomic_store_explicit(&s->phase, S_FREE, memory_order_release);
	atomic_store_explicit(&s->client, 0, memory_order_release);
}

static void refuse(struct shmk_rpc *ep, struct rpc_slot *s, int rc)
{
	atomic_store_explicit(&s->status, rc, memory_order_relaxed);
	atomic_store_explicit(&s->phase, S_REFUSED, memory_order_seq_cst);
	shmk__ec_notify(&ep->ctl->answer);
}

/*
 * A refused slot's status as its client takes it: the errors accept_one()
 * can meet (making the rings and the reader, saying hello), anything else
 * being a status the slot should not hold, -EPROTO.  So a scribbled-on
 * slot cannot make a connect fail with, say, -EINVAL, which would blame
 * the caller's arguments.
 */
static int refusal(int32_t why)
{
	switch (why) { /* not -why: a forged INT32_MIN has no negation */
	case -ENOMEM:
	case -ENOSPC:
	case -EDQUOT:
	case -EMFILE:
	case -ENFILE:
	case -EEXIST:
	case -EACCES:
	case -EROFS:
	case -EIO:
	case -EFBIG:
	case -ENOTSUP:
	case -ENOLCK:
	case -EAGAIN:
	case -ETIMEDOUT:
	case -EPIPE:
	case -EBADMSG:
		return why;
	default:
		return -EPROTO;
	}
}

/* Creates the channel a client asked for in slot i. */
static void accept_one(struct shmk_rpc *ep, int i)
{
	struct rpc_slot *s = &ep->ctl->slot[i];
	uint32_t asked = S_ASKED;
	uint64_t token;
	struct shmk_opts o = {.mode = ep->mode,
			      .spin_us = (int)(ep->spin_ns / 1000)};
	char q[SHMK_RPC_NAME_MAX + 32], p[SHMK_RPC_NAME_MAX + 32];
	struct chan *ch;
	int rc;

	/* Ours from here: a client that gives up now finds the slot no
	 * longer asked and leaves it to us. */
	if (!atomic_compare_exchange_strong_explicit(
		    &s->phase, &asked, S_ACCEPTING, memory_order_acq_rel,
		    memory_order_relaxed))
		return;
	SHMK__CRASH("rpc_accept_taken"); /* slot ours, no rings yet */
	token = atomic_load_explicit(&s->token, memory_order_relaxed);
	ep->pend[i].accepted_ns = shmk__mono_ns();
	ep->pend[i].chan = 0;
	ch = calloc(1, sizeof(*ch));
	if (ch)
		pthread_mutex_init(&ch->rd, NULL);
	if (!ch) {
		refuse(ep, s, -ENOMEM);
		return;
	}
	ch->born_ns = ep->pend[i].accepted_ns;
	if (ep->spin_ns <= 0)
		o.spin_us = -1;
	ch->ep = ep;
	ch->token = token;
	atomic_store(&ch->refs, 1); /* the list's */
	ring_name(q, sizeof(q), ep->name, token, 'q');
	ring_name(p, sizeof(p), ep->name, token, 'p');
	rc = shmk_ring_create(q, ep->nodes, ep->node_size, &o, &ch->in);
	if (!rc) {
		rc = shmk_ring_create(p, ep->nodes, ep->node_size, &o,
				      &ch->out);
		if (rc < 0)
			shmk_unlink(q);
	}
	if (!rc)
		rc = say_hello(ch);
	if (!rc)
		SHMK__CRASH("rpc_accept_created"); /* rings named, no answer */
	if (!rc) {
		uint64_t num;

		pthread_mutex_lock(&ep->mu);
		num = ch->num = ++ep->next_chan;
		ch->next = ep->chans;
		ep->chans = ch;
		pthread_mutex_unlock(&ep->mu);
		shmk__count(&ep->r, C_CLIENTS, 1);
		shmk__count(&ep->r, C_CONNECTS, 1);
		/* From here the reader may end the channel at any time. */
		rc = start_reader(ch);
		if (rc < 0) {
			chan_end(ch); /* removes the names, no hello came */
			refuse(ep, s, rc);
			return;
		}
		ep->pend[i].chan = num;
		atomic_store_explicit(&s->chan, num, memory_order_relaxed);
		atomic_store_explicit(&s->asked_ns, ep->pend[i].accepted_ns,
				      memory_order_relaxed);
		atomic_store_explicit(&s->phase, S_ACCEPTED,
				      memory_order_seq_cst);
		shmk__ec_notify(&ep->ctl->answer);
		return;
	}
	if (ch->in) {
		shmk_ring_close(ch->in);
		shmk_unlink(q);
	}
	if (ch->out) {
		shmk_ring_close(ch->out);
		shmk_unlink(p);
	}
	free(ch);
	refuse(ep, s, rc);
}

/*
 * Frees slot i once its client said hello, died, or let the grace period
 * pass.  What the slot says is only read, never trusted: the channel's
 * number and time are the server's own (ep->pend), and a channel whose
 * client never says hello is ended by its own reader.
 */
static void watch_slot(struct shmk_rpc *ep, int i, uint32_t ph)
{
	struct rpc_slot *s = &ep->ctl->slot[i];
	uint64_t client =
		atomic_load_explicit(&s->client, memory_order_relaxed);
	int dead = shmk__owner_dead(&ep->r, client) != 0;
	struct chan *ch;

	if (ph != S_ACCEPTED && ph != S_ACCEPTING) {
		/* Being filled in, or a refusal not read yet. */
		if (dead)
			slot_free(s);
		return;
	}
	ch = ep->pend[i].chan ? chan_get(ep, ep->pend[i].chan) : NULL;
	/* A client that died before its hello will never say it: its
	 * channel (and its rings' names) go now, not after the grace
	 * period; the reader sees dead within its 10 ms poll.  Unless
	 * frames wait in its ring (it said hello, and maybe more, before
	 * it died, and the reader is behind): those are read first. */
	if (dead && ch &&
	    !atomic_load_explicit(&ch->hello, memory_order_acquire)) {
		struct shmk_ring_stats st;

		if (shmk_ring_stats(ch->in, &st) < 0 || st.lag == 0)
			atomic_store_explicit(&ch->dead, 1,
					      memory_order_release);
	}
	if (dead ||
	    (ch && atomic_load_explicit(&ch->hello, memory_order_acquire)) ||
	    shmk__mono_ns() - ep->pend[i].accepted_ns > CONNECT_GRACE_NS)
		slot_free(s);
	if (ch)
		chan_put(ch);
}

static void *acceptor_main(void *arg)
{
	struct shmk_rpc *ep = arg;

	for (;;) {
		int i, rc = shmk__wait(&ep->ctl->accept, accept_cond, ep,
				       shmk__mono_ns() + 10000000, 0,
				       SHMK__LIVENESS_SLICE_NS, 0);

		if (rc == -ECANCELED)
			break;
		for (i = 0; i < NSLOTS; i++) {
			struct rpc_slot *s = &ep->ctl->slot[i];
			uint32_t ph = atomic_load_explicit(
				&s->phase, memory_order_acquire);

			if (ph == S_ASKED)
				accept_one(ep, i);
			else if (ph != S_FREE ||
				 atomic_load_explicit(&s->client,
						      memory_order_relaxed))
				watch_slot(ep, i, ph);
		}
	}
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
		return -EINVAL; /* plain names: the rings live beside it */
	if (strlen(name) > SHMK_RPC_NAME_MAX)
		return -ENAMETOOLONG;
	if (o && (o->workers < 0 || o->workers > 1024))
		return -EINVAL;
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return -ENOMEM;
	memcpy(ep->name, name, strlen(name) + 1); /* length checked above */
	if (o) {
		ep->fn = o->handler;
		ep->arg = o->arg;
	}
	pthread_mutex_init(&ep->mu, NULL);
	atomic_store(&ep->next_id, 1);
	*epp = ep;
	return 0;
}

static int start_workers(struct shmk_rpc *ep, const struct shmk_rpc_opts *o)
{
	int i, n = o && o->workers ? o->workers : 2, rc;

	/* nworkers counts the threads started: ep_stop joins that many. */
	ep->workers = calloc((size_t)n, sizeof(pthread_t));
	if (!ep->workers)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		rc = pthread_create(&ep->workers[i], NULL, worker_main, ep);
		if (rc)
			return -rc;
		ep->nworkers = i + 1;
	}
	return 0;
}

static void ep_geometry(struct shmk_rpc *ep)
{
	ep->nodes = ep->r.geom[0];
	ep->node_size = ep->r.geom[1];
	ep->max_msg = ep->r.geom[2];
	ep->spin_ns = ep->r.spin_ns;
	ep->ctl = ctl_of(&ep->r);
}

static void ep_stop(struct shmk_rpc *ep)
{
	struct chan *ch;
	int i;

	atomic_store_explicit(&ep->stop, 1, memory_order_seq_cst);
	shmk__ec_notify(&ep->qec);
	if (ep->acceptor_started) {
		shmk__ec_notify(&ep->ctl->accept);
		pthread_join(ep->acceptor, NULL);
	}
	/* Readers see stop within their 10 ms polls. */
	pthread_mutex_lock(&ep->mu);
	for (ch = ep->chans; ch; ch = ch->next)
		atomic_store_explicit(&ch->dead, 1, memory_order_release);
	pthread_mutex_unlock(&ep->mu);
	for (i = 0; i < ep->nworkers; i++)
		pthread_join(ep->workers[i], NULL);
	free(ep->workers);
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
		if (ch)
			ep->chans = ch->next;
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
	shmk__region_close(&ep->r);
	pthread_mutex_destroy(&ep->mu);
	free(ep);
}

SHMK__EXPORT int shmk_rpc_serve(const char *name, const struct shmk_rpc_opts *o,
				struct shmk_rpc **out)
{
	uint64_t geom[SHMK__GEOM_N] = {o && o->nodes ? o->nodes : 64,
				       o && o->node_size ? o->node_size : 4096,
				       o && o->max_msg ? o->max_msg
						       : UINT64_C(64) << 20};
	struct shmk_opts ro = {.mode = o ? o->mode : 0,
			       .spin_us = o ? o->spin_us : 0};
	struct shmk_rpc *ep;
	struct shmk_stat st;
	int rc = ep_new(name, o, out, &ep), src;
	uint64_t give_up = shmk__mono_ns() + TAKEOVER_NS;

	if (rc < 0)
		return rc;
	for (;;) {
		rc = shmk__region_create(&ep->r, name, &shmk__rpc_kind, geom,
					 &ro, NULL);
		if (rc != -EEXIST)
			break;
		/* A server that died leaves its object: take the name over,
		 * never from a live one.  One killed a moment ago can still
		 * look alive, and the name can come and go under a peer's
		 * takeover: look again, for TAKEOVER_NS at most. */
		src = shmk_stat(name, &st);
		if (shmk__mono_ns() > give_up || (src < 0 && src != -ENOENT) ||
		    (src == 0 && st.kind != SHMK_KIND_RPC))
			break;
		if (src == 0 && st.creator_alive)
			shmk__nap(TAKEOVER_NAP_NS, give_up);
		else if (src == 0)
			shmk_unlink(name);
	}
	if (rc < 0) {
		pthread_mutex_destroy(&ep->mu);
		free(ep);
		return rc == -EEXIST ? -EADDRINUSE : rc;
	}
	ep_geometry(ep);
	ep->server = 1;
	ep->mode = ro.mode;
	atomic_store_explicit(&ep->ctl->server, shmk__owner_id(&ep->r),
			      memory_order_release);
	rc = start_workers(ep, o);
	if (!rc) {
		rc = -pthread_create(&ep->acceptor, NULL, acceptor_main, ep);
		ep->acceptor_started = rc == 0;
	}
	if (rc < 0) {
		ep_stop(ep);
		shmk_unlink(name);
		ep_free(ep);
		return rc;
	}
	*out = ep;
	return 0;
}

struct answer_wait {
	struct shmk_rpc *ep;
	struct rpc_slot *s;
};

static int answer_cond(void *arg, int slow)
{
	struct answer_wait *a = arg;
	uint32_t ph = atomic_load_explicit(&a->s->phase, memory_order_acquire);
	uint64_t srv;

	if (shmk__region_poisoned(&a->ep->r))
		return -EBADMSG; /* the file was shrunk under us */
	if (ph == S_ACCEPTED || ph == S_REFUSED)
		return SHMK__COND_DONE;
	if (atomic_load_explicit(&a->ep->r.hdr->state, memory_order_acquire) ==
	    SHMK_STATE_SHUTDOWN)
		return -ECONNREFUSED;
	if (!slow)
		return SHMK__COND_WAIT;
	/* 0: the server has not said who it is yet. */
	srv = atomic_load_explicit(&a->ep->ctl->server, memory_order_acquire);
	if (srv && shmk__owner_dead(&a->ep->r, srv) != 0)
		return -ECONNREFUSED;
	return SHMK__COND_WAIT;
}

/* Claims a connect slot and waits for the server's answer. */
static int ask(struct shmk_rpc *ep, uint64_t token, uint64_t deadline,
	       struct rpc_slot **out)
{
	struct answer_wait a = {.ep = ep};
	int i, rc;

	for (;;) {
		for (i = 0; i < NSLOTS; i++) {
			uint64_t free_ = 0;

			if (atomic_compare_exchange_strong(
				    &ep->ctl->slot[i].client, &free_,
				    shmk__owner_id(&ep->r)))
				break;
		}
		if (i < NSLOTS)
			break;
		if (shmk__mono_ns() >= deadline)
			return -ETIMEDOUT;
		shmk__nap(1000000, deadline);
	}
	a.s = &ep->ctl->slot[i];
	SHMK__CRASH("rpc_connect_claimed"); /* slot claimed, not asked */
	atomic_store_explicit(&a.s->token, token, memory_order_relaxed);
	atomic_store_explicit(&a.s->phase, S_ASKED, memory_order_seq_cst);
	shmk__ec_notify(&ep->ctl->accept);
	rc = shmk__wait(&ep->ctl->answer, answer_cond, &a, deadline, 0,
			SHMK__LIVENESS_SLICE_NS, 0);
	if (rc < 0) {
		/* Gave up: the server frees the slot once it sees us gone;
		 * a slot it has not taken yet we take back. */
		uint32_t asked = S_ASKED;

		if (atomic_compare_exchange_strong(&a.s->phase, &asked, S_FREE))
			atomic_store(&a.s->client, 0);
		return rc;
	}
	*out = a.s;
	return 0;
}

SHMK__EXPORT int shmk_rpc_connect(const char *name,
				  const struct shmk_rpc_opts *o,
				  struct shmk_rpc **out)
{
	struct shmk_opts ro = {.wait_ms = o ? o->wait_ms : 0,
			       .spin_us = o ? o->spin_us : 0,
			       .flags = o ? o->flags & SHMK_F_ALLOW_SHARED : 0};
	char q[SHMK_RPC_NAME_MAX + 32], p[SHMK_RPC_NAME_MAX + 32];
	uint64_t deadline, token = shmk__random64();
	struct shmk_ring *pring = NULL;
	struct shmk_msg m;
	struct rpc_slot *s;
	struct shmk_rpc *ep;
	struct chan *ch;
	int rc = ep_new(name, o, out, &ep);

	if (rc < 0)
		return rc;
	deadline = shmk__deadline(ro.wait_ms);
	for (;;) {
		rc = shmk__region_open(&ep->r, name, &shmk__rpc_kind, &ro);
		if (rc < 0) {
			pthread_mutex_destroy(&ep->mu);
			free(ep);
			return rc;
		}
		ep_geometry(ep);
		rc = ask(ep, token,
			 deadline == 0 ? shmk__deadline(1000) : deadline, &s);
		/* The server died or closed, perhaps after making our
		 * channel's rings: nobody else would remove their names. */
		if (rc == -ECONNREFUSED)
			unlink_rings(name, token, NULL, NULL);
		/* A dead server's object: a new server will take the name
		 * over; wait for it as for a server not up yet. */
		if (rc != -ECONNREFUSED ||
		    (deadline != SHMK__FOREVER && remaining_ms(deadline) <= 5))
			break;
		shmk__region_close(&ep->r);
		shmk__nap(5000000, deadline);
		ro.wait_ms = remaining_ms(deadline);
		/* New names: the old ones may still be taken. */
		token = shmk__random64();
	}
	ch = calloc(1, sizeof(*ch));
	if (ch)
		pthread_mutex_init(&ch->rd, NULL);
	if (!ch) {
		ep_free(ep);
		return -ENOMEM;
	}
	ch->ep = ep;
	atomic_store(&ch->refs, 1);
	if (rc == 0) {
		uint32_t ph =
			atomic_load_explicit(&s->phase, memory_order_acquire);

		if (ph == S_ACCEPTED) {
			ch->num = atomic_load(&s->chan);
		} else {
			rc = refusal(atomic_load(&s->status));
			if (ph == S_REFUSED)
				slot_free(s);
		}
	}
	if (rc == 0) {
		struct shmk_opts ro2 = {.spin_us = ro.spin_us,
					.flags = ro.flags};

		SHMK__CRASH("rpc_connect_answered"); /* rings not opened */

		ring_name(q, sizeof(q), name, token, 'q');
		ring_name(p, sizeof(p), name, token, 'p');
		rc = shmk_ring_open(q, &ro2, &ch->out);
		if (!rc)
			rc = shmk_ring_open(p, &ro2, &pring);
		/* Both open: the names can go, whatever happens to the
		 * server now (it removes them too, on our hello). */
		unlink_rings(name, token, ch->out, pring);
		if (!rc && (shmk_ring_node_size(ch->out) != ep->node_size ||
			    shmk_ring_node_size(pring) != ep->node_size))
			rc = -EBADMSG;
	}
	if (rc == 0) {
		ch->in = pring;
		/* The server's hello comes first on p. */
		rc = shmk_ring_acquire(ch->in, &m,
				       remaining_ms(deadline) > 1000
					       ? remaining_ms(deadline)
					       : 1000);
		if (!rc) {
			on_frame(ch, &m);
			shmk_ring_release(ch->in, &m);
			if (!ch->hello)
				rc = -EPROTO;
		}
	}
	if (rc == 0) {
		SHMK__CRASH("rpc_connect_opened"); /* names gone, no hello */
		rc = say_hello(ch);
	}
	if (rc < 0) {
		if (ch->out)
			shmk_ring_close(ch->out);
		if (pring)
			shmk_ring_close(pring);
		free(ch);
		ep_free(ep);
		return rc == -ETIMEDOUT || rc == -EAGAIN ? -ETIMEDOUT : rc;
	}
	ep->chans = ch;
	rc = start_workers(ep, o);
	if (!rc)
		rc = start_reader(ch);
	if (rc < 0) {
		ep_stop(ep);
		ep_free(ep);
		return rc;
	}
	*out = ep;
	return 0;
}

SHMK__EXPORT int shmk_rpc_close(struct shmk_rpc *ep)
{
	int rc = 0;

	if (!ep)
		return 0;
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
		if (rc < 0) {
			pthread_mutex_destroy(&ep->mu);
			free(ep);
		}
	}
	if (!rc && !(ch = calloc(1, sizeof(*ch)))) {
		ep_free(ep);
		rc = -ENOMEM;
	}
	if (rc < 0 || !ch) {
		shmk_ring_close(in);
		shmk_ring_close(out);
		return rc < 0 ? rc : -ENOMEM;
	}
	pthread_mutex_init(&ch->rd, NULL);
	ch->ep = ep;
	ch->in = in;
	ch->out = out;
	ch->num = 1;
	ch->born_ns = shmk__mono_ns();
	atomic_store(&ch->refs, 1); /* the list's */
	ep_geometry(ep);
	ep->server = server;
	ep->chans = ch;
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
	c = ep->r.hdr->counter;
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
