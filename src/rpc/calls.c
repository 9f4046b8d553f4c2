/* SPDX-License-Identifier: MIT */
/*
 * rpc/calls.c - calls made by this process (a client's, or a server's
 * own to its clients): the table of calls, submit, wait, cancel and
 * call, the caller that reads its own reply (read_for), and the reply
 * frames that complete calls (on_reply, the channel's handler).
 *
 * Layer: above the channel.  Calls chan.c; nothing of workers.c,
 * accept.c, connect.c or endpoint.c.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "rpc.h"

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
	/* seq_cst: counted before the kick's look at armed, which pairs
	 * with the look at uncollected after the arming (read_for). */
	atomic_fetch_add_explicit(&c->ch->ep->uncollected, 1,
				  memory_order_seq_cst);
	c->status = status;
	atomic_store_explicit(&c->done, 1, memory_order_seq_cst);
	shmk__ec_notify(NULL, &c->ec);
	shmk__rpc_poll_kick(c->ch->ep);
}

/* Fails every call pending on ch (every call, if ch is NULL). */
void shmk__rpc_calls_fail(struct shmk_rpc *ep, struct chan *ch, int status)
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
		shmk__rpc_chan_put(ch);
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
	rc = shmk__rpc_send_frame(
		ch,
		&(struct frame_out){
			.type = F_REQ, .id = c->id, .data = req, .len = len},
		c->deadline, -1);
	if (rc < 0) {
		pthread_mutex_lock(&ep->mu);
		call_unlink(ep, c);
		pthread_mutex_unlock(&ep->mu);
		call_settle(c);
		if (rc == -ETIMEDOUT || rc == -EAGAIN)
			count(ep, C_TIMEOUTS, 1);
		shmk__rpc_chan_put(ch);
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
	if (shmk__rpc_send_frame(
		    ch,
		    &(struct frame_out){.type = F_CANCEL, .id = id, .corr = id},
		    shmk__deadline(100), -1) == 0)
		count(ep, C_CANCELS_SENT, 1);
}

void shmk__rpc_call_free(struct call *c)
{
	shmk__rpc_chan_put(c->ch);
	free(c);
}

/*
 * A caller (self) or the reader thread (self NULL) leaves the reading of
 * ch while others wait to read it: one of them is nudged to take it, so
 * that the channel is read at once, not at the next look of a waiter
 * (every PEER_LOOK_NS).  seq_cst store, as call_done's: published before
 * the notify.
 */
static void nudge_one(struct shmk_rpc *ep, struct chan *ch, struct call *self)
{
	struct call *x;

	pthread_mutex_lock(&ep->mu);
	for (x = ep->calls; x; x = x->next)
		if (x != self && x->ch == ch && x->waiting &&
		    !atomic_load_explicit(&x->done, memory_order_relaxed)) {
			atomic_store_explicit(&x->nudged, 1,
					      memory_order_seq_cst);
			shmk__ec_notify(NULL, &x->ec);
			break;
		}
	pthread_mutex_unlock(&ep->mu);
}

void shmk__rpc_hand_over(struct shmk_rpc *ep, struct chan *ch)
{
	nudge_one(ep, ch, NULL);
}

/*
 * A client's caller waits for call c by reading the channel itself when
 * nobody else does: the reply then needs no hand-off from the reader
 * thread (which stands aside while callers want to read, and watches the
 * server's liveness meanwhile).  When another thread has the reading,
 * the caller sleeps on its call until that thread completes it or hands
 * the reading over (nudge_one), looking at the server every look_ns
 * (PEER_LOOK_NS).  Returns 0 once c is done, else the wait's error at
 * the deadline.
 */
static int read_for(struct shmk_rpc *ep, struct call *c, uint64_t deadline,
		    uint32_t wakes0)
{
	struct chan *ch = c->ch;
	uint64_t look;
	int rc = 0, idle = 0;

	if (shmk__mono_ns() >= deadline) {
		/* A poll: take what is there, without making the reader
		 * thread stand aside. */
		shmk__rpc_help_read(ch);
		if (atomic_load_explicit(&c->done, memory_order_acquire))
			return 0;
		/* Nothing: the descriptor is armed for any call's end.  A
		 * call that ended before, and is not collected, makes it
		 * readable now (the loop may not have asked for it yet). */
		shmk__rpc_poll_arm(ep);
		if (atomic_load_explicit(&ep->uncollected,
					 memory_order_seq_cst))
			shmk__rpc_poll_kick(ep);
		return atomic_load_explicit(&c->done, memory_order_acquire)
			       ? 0
			       : shmk__expired(deadline);
	}
	/* seq_cst: the count before the trylock below, against the reader
	 * thread's unlock before its look at the count (reader_main): either
	 * we get the lock, or it sees us and hands the reading over. */
	atomic_fetch_add_explicit(&ch->want, 1, memory_order_seq_cst);
	look = shmk__mono_ns() + ep->look_ns;
	while (!atomic_load_explicit(&c->done, memory_order_acquire)) {
		uint64_t now = shmk__mono_ns(), until = now + ep->look_ns;
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
			look = now + ep->look_ns;
			if (shmk__rpc_peer_dead(ch)) {
				atomic_store_explicit(&ch->dead, 1,
						      memory_order_release);
				shmk__rpc_calls_fail(ep, ch, -EPIPE);
				continue;
			}
		}
		if (atomic_load_explicit(&ch->dead, memory_order_acquire) ||
		    shmk__rpc_chan_busy(ch) ||
		    pthread_mutex_trylock(&ch->rd) != 0) {
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
			rc = shmk__rpc_on_frame(ch, &m, NULL);
			shmk_ring_release(ch->in, &m);
		}
		pthread_mutex_unlock(&ch->rd);
		if (rc != 0 && rc != -ETIMEDOUT && rc != -EAGAIN) {
			/* Shut down and drained, corrupt, or a goodbye: the
			 * channel is over (its reader thread sees it too). */
			atomic_store_explicit(&ch->dead, 1,
					      memory_order_release);
			shmk__rpc_calls_fail(ep, ch, -EPIPE);
		}
		rc = 0;
	}
	/* seq_cst: the count before the notify's look at the waiter bit. */
	if (atomic_fetch_sub_explicit(&ch->want, 1, memory_order_seq_cst) > 1)
		nudge_one(ep, ch, c);
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
	shmk__rpc_call_free(c);
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
		shmk__rpc_chan_put(ch);
		return 0;
	}
	call_unlink(ep, c);
	pthread_mutex_unlock(&ep->mu);
	call_settle(c);
	if (!was_done)
		send_cancel(ep, ch, id);
	shmk__rpc_call_free(c);
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

/* A reply or error frame for one of our calls. */
void shmk__rpc_on_reply(struct chan *ch, const struct frame *f, const char *p)
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
