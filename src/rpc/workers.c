/* SPDX-License-Identifier: MIT */
/*
 * rpc/workers.c - the server side of requests: request frames reassembled
 * (on_request) and cancelled (on_cancel), handler slots, the work queue
 * and its worker threads, the handler's run and its reply (run_work,
 * send_reply), errors owed for replies that did not go (owe, send_owed),
 * and a request run in place by its reader (run_or_queue).
 *
 * Layer: above the channel, beside calls.c.  Calls chan.c; nothing of
 * calls.c, accept.c, connect.c or endpoint.c.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../internal.h"
#include "rpc.h"

SHMK__EXPORT int shmk_rpc_cancelled(const struct shmk_rpc_req *req)
{
	const struct inreq *in = req ? req->priv_ : NULL;

	return in ? atomic_load_explicit(&in->cancelled, memory_order_relaxed)
		  : 0;
}

void shmk__rpc_inreq_drop(struct chan *ch, struct inreq *in)
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
void shmk__rpc_send_owed(struct chan *ch)
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
		shmk__rpc_frame_write(
			&m,
			&(struct frame_out){.type = F_ERR,
					    .status = -ECONNABORTED,
					    .corr = corr,
					    .data = cut_text,
					    .len = sizeof(cut_text) - 1},
			0, sizeof(cut_text) - 1);
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

static void send_reply(struct chan *ch, const struct frame_out *o)
{
	int stuck = atomic_load_explicit(&ch->stuck, memory_order_relaxed), rc;

	/* Errors owed to earlier calls go first, if they fit. */
	shmk__rpc_send_owed(ch);
	rc = shmk__rpc_send_frame(ch, o, shmk__deadline(stuck ? 0 : REPLY_MS),
				  REPLY_MS);
	atomic_store_explicit(&ch->stuck, rc == -ETIMEDOUT || rc == -EAGAIN,
			      memory_order_relaxed);
	if (rc < 0 && rc != -EPIPE)
		count(ch->ep, C_DISCARDED, 1);
	if (rc == -ETIMEDOUT || rc == -EAGAIN)
		owe(ch, o->corr);
}

void shmk__rpc_run_work(struct shmk_rpc *ep, struct inreq *in)
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
		if (rc == 0) {
			send_reply(ch,
				   &(struct frame_out){.type = F_REP,
						       .corr = in->id,
						       .data = req.reply,
						       .len = req.reply_len});
		} else { /* the text, at most SHMK_RPC_ERRMAX - 1 bytes */
			size_t n = strnlen(req.error, sizeof(req.error) - 1);

			send_reply(ch, &(struct frame_out){.type = F_ERR,
							   .status = rc,
							   .corr = in->id,
							   .data = req.error,
							   .len = n});
		}
	}
	if (req.reply_free && req.reply)
		req.reply_free((void *)(uintptr_t)req.reply);
	shmk__rpc_inreq_drop(ch, in);
	shmk__rpc_chan_put(ch);
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
struct inreq *shmk__rpc_dequeue(struct shmk_rpc *ep)
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
		in = shmk__rpc_dequeue(ep);
		if (in)
			shmk__rpc_run_work(ep, in);
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
	shmk__rpc_poll_kick(ep);
}

/* Hands the whole request in to the workers, with a reference to ch. */
static void enqueue(struct shmk_rpc *ep, struct chan *ch, struct inreq *in)
{
	claim(ep, ch, in);
	enqueue_claimed(ep, in);
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
void shmk__rpc_on_request(struct chan *ch, const struct frame *f, const char *p,
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
			shmk__rpc_send_frame(
				ch,
				&(struct frame_out){.type = F_ERR,
						    .status = -ENOMEM,
						    .corr = f->msg_id,
						    .data = oom,
						    .len = sizeof(oom) - 1},
				0, -1);
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

void shmk__rpc_on_cancel(struct chan *ch, const struct frame *f)
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
		shmk__rpc_inreq_drop(ch, in);
		return;
	}
	pthread_mutex_unlock(&ep->mu);
}

/*
 * A whole request that a server's channel reader took: run in place when
 * a handler slot is free and no request waits for a worker, so that the
 * reply goes from the thread that read the request (no hand-off), else
 * queued for the workers.  While it runs the channel has no reader: the
 * acceptor reads it for it once the handler has run WATCH_NS
 * (watch_inline), and a handler that waits for a call of its own reads
 * it itself (read_for).
 */
void shmk__rpc_run_or_queue(struct shmk_rpc *ep, struct chan *ch,
			    struct inreq *in)
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
	shmk__rpc_run_work(ep, in); /* drops the claim's reference, not ours */
	atomic_store_explicit(&ch->inline_since, 0, memory_order_relaxed);
	atomic_fetch_sub_explicit(&ep->ninline, 1, memory_order_relaxed);
	give_slot(ep);
}

int shmk__rpc_start_workers(struct shmk_rpc *ep, const struct shmk_rpc_opts *o)
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

SHMK__EXPORT int shmk_rpc_dispatch(struct shmk_rpc *ep, int max)
{
	struct inreq *in;
	int n = 0;

	if (!ep || !ep->dispatch || max <= 0)
		return -EINVAL;
	if (getpid() != ep->owner)
		return -ECHILD;
	for (;;) {
		while (n < max && (in = shmk__rpc_dequeue(ep)) != NULL) {
			shmk__rpc_run_work(ep, in);
			n++;
		}
		if (n)
			return n;
		/* Nothing queued: arm, then look again (seq_cst: pairs with
		 * enqueue's count and its kick). */
		shmk__rpc_poll_arm(ep);
		if (!atomic_load_explicit(&ep->queued, memory_order_seq_cst))
			return -EAGAIN;
	}
}
