/* SPDX-License-Identifier: MIT */
/*
 * rpc/chan.c - the rpc channel: frames built and sent (frame_write,
 * send_frame), frames read (help_read, the reader thread) and checked
 * and dispatched (on_frame), the peer's death as the kernel tells it
 * (peer_dead), and the channel's life (chan_new, chan_put, chan_end, the
 * in-ring hellos).
 *
 * Layer: the bottom of rpc.  It calls the ring, sync and sys layers, and
 * what is above it (calls.c, workers.c) only through the handler table the
 * endpoint set in the channel (ch->ops, struct chan_ops in rpc.h): never a
 * function of calls.c, workers.c, accept.c, connect.c or endpoint.c.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../internal.h"
#include "rpc.h"

/* One frame into the node m (reserved): header and the fragment of o's
 * message at off, flen bytes. */
void shmk__rpc_frame_write(struct shmk_msg *m, const struct frame_out *o,
			   uint64_t off, uint32_t flen)
{
	struct frame f = {.magic = RPC_MAGIC,
			  .version = RPC_VERSION,
			  .type = (uint8_t)o->type,
			  .status = o->status,
			  .frag_len = flen,
			  .msg_id = o->id,
			  .corr_id = o->corr,
			  .total_len = o->len,
			  .frag_off = off};

	memcpy(m->data, &f, HDR);
	if (flen)
		memcpy((char *)m->data + HDR, (const char *)o->data + off,
		       flen);
	m->len = HDR + flen;
}

/*
 * Sends the message o (o->len bytes) as frames, by deadline.  Each
 * fragment is copied straight from o->data into its node.  A full ring
 * blocks within the deadline; a dead channel fails at once (-EPIPE).  A
 * message cut short by the deadline is followed by a cancel, so that the
 * peer drops the part.
 * With stall_ms >= 0 the deadline holds for the first fragment only and
 * each later one gets stall_ms from the moment the one before it went: a
 * peer that takes fragments is reading, however long the whole takes.
 */
int shmk__rpc_send_frame(struct chan *ch, const struct frame_out *o,
			 uint64_t deadline, int stall_ms)
{
	uint64_t frag = ch->ep->node_size - HDR, off = 0, len = o->len;
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
			    shmk__mono_ns() < deadline &&
			    shmk__rpc_help_read(ch) > 0)
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
			if (rc != -EBUSY && shmk__rpc_peer_dead(ch)) {
				rc = -EPIPE;
				break;
			}
		}
		if (rc < 0)
			break;
		shmk__rpc_frame_write(&m, o, off, flen);
		rc = shmk_ring_commit(ch->out, &m);
		if (rc < 0)
			break;
		off += flen;
		if (off < len)
			SHMK__CRASH("rpc_mid_message");
	} while (off < len);
	/* A request cut short: the peer drops what it has of it (a dead
	 * peer has nothing to drop). */
	if (rc < 0 && rc != -EPIPE && off > 0 && o->type == F_REQ) {
		struct shmk_msg m;

		if (shmk_ring_reserve(ch->out, &m, 100) == 0) {
			shmk__rpc_frame_write(
				&m,
				&(struct frame_out){.type = F_CANCEL,
						    .id = o->id,
						    .corr = o->id},
				0, 0);
			shmk_ring_commit(ch->out, &m);
		}
	}
	if (!rc)
		count(ch->ep, C_BYTES_OUT, len);
	return rc;
}

/* Flow control: a peer with MAX_ACTIVE requests, or 4 x max_msg bytes of
 * them, unanswered is not read from until the workers catch up.  Every
 * thread that reads a channel obeys it. */
int shmk__rpc_chan_busy(struct chan *ch)
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
int shmk__rpc_help_read(struct chan *ch)
{
	struct shmk_msg m;
	int n = 0, rc;

	if (pthread_mutex_trylock(&ch->rd) != 0)
		return 0;
	while ((uint64_t)n < ch->ep->nodes &&
	       !atomic_load_explicit(&ch->dead, memory_order_acquire) &&
	       !shmk__rpc_chan_busy(ch) &&
	       shmk__ring_acquire_spin(ch->in, &m, 0, 0) == 0) {
		rc = shmk__rpc_on_frame(ch, &m, NULL);
		shmk_ring_release(ch->in, &m);
		n++;
		if (rc) {
			atomic_store_explicit(&ch->dead, 1,
					      memory_order_release);
			ch->ops->fail_calls(ch->ep, ch, -EPIPE);
		}
	}
	pthread_mutex_unlock(&ch->rd);
	return n;
}

static void on_hello(struct chan *ch, const struct frame *f);

/*
 * Handles one frame (m, len bytes, read from shared memory: each field is
 * read once from a private copy and checked before use).  Returns 1 if the
 * peer said goodbye.
 */
int shmk__rpc_on_frame(struct chan *ch, struct shmk_msg *m,
		       struct inreq **ready)
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
		ch->ops->on_request(ch, &f, p, ready);
		break;
	case F_REP:
	case F_ERR:
		ch->ops->on_reply(ch, &f, p);
		break;
	case F_CANCEL:
		ch->ops->on_cancel(ch, &f);
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
int shmk__rpc_peer_dead(struct chan *ch)
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

/*
 * The reader thread lets go of the reading.  On a client, a caller that
 * came to read while we held it sleeps until nudged (read_for): it is,
 * whether we leave after a frame or after a wait that ended without one,
 * or a reply would wait for the caller's next look.  The fence orders
 * the unlock before the look at want, as the caller's seq_cst count
 * orders its want before its trylock.
 */
static void leave_reading(struct shmk_rpc *ep, struct chan *ch)
{
	pthread_mutex_unlock(&ch->rd);
	if (ep->server)
		return;
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&ch->want, memory_order_relaxed))
		ch->ops->hand_over(ep, ch);
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
		busy = shmk__rpc_chan_busy(ch);
		if (busy) {
			if (shmk__rpc_peer_dead(ch))
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
			if (shmk__rpc_peer_dead(ch))
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
			leave_reading(ep, ch);
		if (rc == -ETIMEDOUT) {
			ch->ops->send_owed(ch);
			/* Quiet: is the peer still there?  A client that never
			 * says hello in its ring keeps its channel, and its
			 * place in the limits, for as long as it lives: were it
			 * dropped, the rings it holds (or whose descriptors wait
			 * unread in its socket) would stay alive uncounted. */
			if (shmk__rpc_peer_dead(ch))
				break;
			continue;
		}
		if (rc < 0)
			break; /* shut down and drained, or corrupt */
		ready = NULL;
		rc = shmk__rpc_on_frame(ch, &m, ep->server ? &ready : NULL);
		shmk_ring_release(ch->in, &m);
		leave_reading(ep, ch);
		if (ready)
			ch->ops->run_request(ep, ch, ready);
		if (rc)
			break;
	}
	shmk__rpc_chan_end(ch);
	/* The reader's own reference: chan_end may drop the list's, never
	 * this one, so ch is still alive here (the analyzer cannot see
	 * the count). */
	// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
	shmk__rpc_chan_put(ch);
	/* Last: ep_stop() waits for this and may then free ep. */
	atomic_fetch_sub_explicit(&ep->readers, 1, memory_order_release);
	return NULL;
}

/* The reader is done with ch: calls on it fail, the server forgets it. */
void shmk__rpc_chan_end(struct chan *ch)
{
	struct shmk_rpc *ep = ch->ep;
	struct chan **p;
	struct inreq *in;

	atomic_store_explicit(&ch->dead, 1, memory_order_release);
	ch->ops->fail_calls(ep, ch, -EPIPE);
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
				shmk__rpc_chan_put(
					ch); /* the list's reference */
				break;
			}
	pthread_mutex_unlock(&ep->mu);
}

struct chan *shmk__rpc_chan_new(struct shmk_rpc *ep)
{
	struct chan *ch = calloc(1, sizeof(*ch));

	if (!ch)
		return NULL;
	pthread_mutex_init(&ch->rd, NULL);
	ch->ep = ep;
	ch->ops = ep->chan_ops;
	ch->sock = -1;
	ch->pidfd = -1;
	atomic_store(&ch->refs, 1);
	return ch;
}

void shmk__rpc_chan_put(struct chan *ch)
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

int shmk__rpc_say_hello(struct chan *ch)
{
	struct shmk_msg m;
	int rc = shmk_ring_reserve(ch->out, &m, 1000);

	if (rc < 0)
		return rc;
	shmk__rpc_frame_write(&m, &(struct frame_out){.type = F_HELLO}, 0, 0);
	return shmk_ring_commit(ch->out, &m);
}

/* Readers are detached; ep->readers counts those still running. */
int shmk__rpc_start_reader(struct chan *ch)
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
