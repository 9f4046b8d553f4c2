/* SPDX-License-Identifier: MIT */
/*
 * topic/subscribe.c - the subscriber's side: subscribe and unsubscribe,
 * the cursor, taking the next message (sub_cond) in place (acquire,
 * release) or as a copy (receive), draining (every other subscriber past
 * head), lost, and the newest message (latest).
 *
 * Layer: above view.c, beside publish.c.  Calls view.c; nothing of
 * publish.c or endpoint.c.
 */
#define _GNU_SOURCE
#include <string.h>

#include "topic.h"

/*
 * Copies a message a publisher may be overwriting (lossy receive, latest):
 * the read side of a sequence lock, whose result is used only if tail,
 * read afterwards, says it was not overwritten.  The race is the design;
 * ThreadSanitizer is told so by a copy it does not watch.
 */
#if defined(__SANITIZE_THREAD__)
#define SHMK__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHMK__TSAN 1
#endif
#endif
#ifdef SHMK__TSAN
__attribute__((no_sanitize("thread"))) static void
racy_copy(void *dst, const void *src, size_t n)
{
	const volatile unsigned char *s = src;
	unsigned char *d = dst;
	size_t i;

	for (i = 0; i < n; i++)
		d[i] = s[i];
}
#else
#define racy_copy memcpy
#endif

/* ---------------------------------------------------------------------
 * Subscribers
 * --------------------------------------------------------------------- */

static int sub_enter(struct shmk_topic *t)
{
	int busy = 0, rc;

	if (!t)
		return -EINVAL;
	rc = topic_check(t);
	if (rc < 0)
		return rc;
	if (!atomic_compare_exchange_strong_explicit(&t->sub_busy, &busy, 1,
						     memory_order_acquire,
						     memory_order_relaxed))
		return -EBUSY;
	return 0;
}

static void sub_leave(struct shmk_topic *t)
{
	atomic_store_explicit(&t->sub_busy, 0, memory_order_release);
}

/* Publishes our cursor: release, our reads of what it passed are done
 * before a publisher that acquires it reuses their space. */
static void set_cursor(struct shmk_topic *t, uint64_t i)
{
	t->cur = i;
	atomic_store_explicit(&t->me->sub.cursor, SUB_BIT | i,
			      memory_order_release);
	/* Publishers (lossless) and drainers wait for cursors. */
	if (shmk__ec_notify_async(&t->r, &t->v.ctl->space))
		bump(&t->me->sub.ctr[S_WAKEUPS - S_DELIVERED], 1);
}

SHMK__EXPORT int shmk_topic_subscribe(struct shmk_topic *t, int history)
{
	struct topic_ctl *c;
	uint64_t h, T, f, i;
	int rc = sub_enter(t), round;

	if (rc < 0)
		return rc;
	c = t->v.ctl;
	if (history < -1)
		rc = -EINVAL;
	else if (t->subscribed)
		rc = -EALREADY;
	if (rc < 0)
		goto out;
	for (round = 0;; round++) {
		rc = shmk__topic_snapshot(&t->v, &T, &h);
		if (rc < 0)
			goto fail;
		f = t->v.lossy ? T : load(&c->floor, memory_order_seq_cst);
		/* The floor is at least tail and at most head (which may have
		 * moved on since we read it: look again, a few times). */
		if (f < T || round > 1000) {
			rc = poison(t);
			goto fail;
		}
		if (f > h)
			f = h;
		i = history < 0 || (uint64_t)history > h - f
			    ? f
			    : h - (uint64_t)history;
		/* seq_cst, then the floor again (seq_cst): see scan(). */
		atomic_store_explicit(&t->me->sub.cursor, SUB_BIT | i,
				      memory_order_seq_cst);
		f = t->v.lossy ? load(&c->tail, memory_order_seq_cst)
			       : load(&c->floor, memory_order_seq_cst);
		if (f <= i)
			break;
	}
	t->cur = i;
	t->subscribed = 1;
	t->holding = 0;
	/* For shmk_topic_wait_subscribers(), which waits on space; the
	 * cursor's store above was seq_cst, as shmk__ec_notify() needs. */
	shmk__ec_notify(&t->r, &c->space);
out:
	sub_leave(t);
	return rc;
fail:
	/* A cursor stored by an earlier round must not stay: lossless
	 * publishers would wait for a subscription that does not exist. */
	shmk__topic_unsubscribe(t);
	goto out;
}

void shmk__topic_unsubscribe(struct shmk_topic *t)
{
	atomic_store_explicit(&t->me->sub.cursor, 0, memory_order_release);
	t->subscribed = 0;
	t->holding = 0;
	shmk__ec_notify(&t->r, &t->v.ctl->space);
}

SHMK__EXPORT int shmk_topic_unsubscribe(struct shmk_topic *t)
{
	int rc = sub_enter(t);

	if (rc < 0)
		return rc;
	if (!t->subscribed)
		rc = -ENOTCONN;
	else
		shmk__topic_unsubscribe(t);
	sub_leave(t);
	return rc;
}

struct sub_wait {
	struct shmk_topic *t;
	uint64_t pos, start, len;
	int waited;
};

/* Lapped (lossy): tail passed the cursor.  The messages passed are lost;
 * the cursor moves to the oldest one held. */
static int lapped(struct shmk_topic *t, uint64_t T)
{
	uint64_t n = T - t->cur;

	bump(&t->me->sub.ctr[S_LOST - S_DELIVERED], n);
	set_cursor(t, T);
	return -EOVERFLOW;
}

static int sub_cond(void *arg, int slow)
{
	struct sub_wait *a = arg;
	struct shmk_topic *t = a->t;
	struct topic_view *v = &t->v;
	int rc, round = 0;

	rc = topic_check(t);
	if (rc < 0)
		return rc;
	for (;;) {
		uint64_t i = t->cur, h, s, st, len, g, T;
		struct topic_desc *d = desc(v, i);

		if (v->lossy) {
			T = load(&v->ctl->tail, memory_order_acquire);
			if (T > i)
				return lapped(t, T);
		}
		/* A first look at the descriptor (acquire: pairs with the
		 * publisher's release of seq).  A message that is there, or
		 * passed over, needs no look at head, which every claim
		 * writes; nor does one only linked while we spin, as we would
		 * spin on whether it is claimed or not.  So a subscriber that
		 * keeps up leaves head to the publishers, and reads it, then
		 * the state again, only when it has to tell. */
		s = load(&d->seq, memory_order_acquire);
		if (s == SEQ(i, ST_LINKED) && !slow)
			return SHMK__COND_WAIT;
		if (s == SEQ(i, ST_COMMIT) || s == SEQ(i, ST_SKIP))
			goto look;
		h = load(&v->ctl->head, memory_order_acquire);
		if (i >= h) {
			if (i > h)
				return poison(t);
			/* Drained after a shutdown: seq_cst, the state before
			 * head, against a claim before the claimer's look at
			 * the state (shmk_topic_loan()). */
			if (shut_down(t) &&
			    load(&v->ctl->head, memory_order_seq_cst) <= i)
				return -EPIPE;
			if (slow && !a->waited) {
				a->waited = 1;
				bump(&t->me->sub
					      .ctr[S_EMPTY_WAITS - S_DELIVERED],
				     1);
			}
			return SHMK__COND_IDLE; /* every claim is notified */
		}
		/* Acquire: pairs with the publisher's release of seq. */
		s = load(&d->seq, memory_order_acquire);
	look:
		if (s == SEQ(i, ST_SKIP)) {
			set_cursor(t, i + 1);
			continue;
		}
		if (s != SEQ(i, ST_COMMIT)) {
			if (v->lossy && s >> 2 > i) {
				/* Overwritten: tail says so (a lying tail
				 * gets a few looks, then an expiry). */
				if (++round > 64)
					return SHMK__COND_WAIT;
				continue;
			}
			if (s >> 2 > i)
				return poison(t);
			if (!slow)
				return SHMK__COND_WAIT;
			rc = shmk__topic_recover(v, i);
			if (rc != 1)
				return rc;
			if (++round > 64)
				return SHMK__COND_WAIT;
			continue;
		}
		/* Read once, checked, used: within the log, contiguous. */
		st = load(&d->start, memory_order_relaxed);
		len = load(&d->len, memory_order_relaxed);
		g = grans(len);
		if (len > v->max_msg || gran_off(v, st) + g > v->cg) {
			if (v->lossy &&
			    load(&v->ctl->tail, memory_order_acquire) > i &&
			    ++round <= 64)
				continue; /* overwritten while we looked */
			return poison(t);
		}
		a->pos = i;
		a->start = st;
		a->len = len;
		return SHMK__COND_DONE;
	}
}

/* Lossy: was message i overwritten while we read it?  The read side of a
 * sequence lock: our reads of it, then tail. */
static int overwritten(struct shmk_topic *t, uint64_t i)
{
	uint64_t T;

	if (!t->v.lossy)
		return 0;
	atomic_thread_fence(memory_order_acquire);
	T = load(&t->v.ctl->tail, memory_order_acquire);
	return T > i ? lapped(t, T) : 0;
}

static int take(struct shmk_topic *t, struct sub_wait *a, int timeout_ms)
{
	int rc = shmk__timeout_ok(timeout_ms);

	if (!rc && !t->subscribed)
		rc = -ENOTCONN;
	if (!rc && t->holding)
		rc = -EBUSY;
	if (rc < 0)
		return rc;
	a->t = t;
	return topic_wait(t, &t->v.ctl->data, sub_cond, a, timeout_ms);
}

static void delivered(struct shmk_topic *t, uint64_t i, uint64_t len)
{
	bump(&t->me->sub.ctr[0], 1);
	bump(&t->me->sub.ctr[S_BYTES - S_DELIVERED], len);
	set_cursor(t, i + 1);
}

SHMK__EXPORT int shmk_topic_acquire(struct shmk_topic *t, struct shmk_msg *m,
				    int timeout_ms)
{
	struct sub_wait a = {0};
	int rc = m ? sub_enter(t) : -EINVAL;

	if (rc < 0)
		return rc;
	rc = take(t, &a, timeout_ms);
	if (!rc) {
		m->data = t->v.log + gran_off(&t->v, a.start) * GRAN;
		m->len = (size_t)a.len;
		m->pos_ = a.pos;
		m->slot_ = -1;
		m->role_ = 2;
		t->holding = 1;
		t->held_pos = a.pos;
		SHMK__CRASH("topic_acquired");
	}
	sub_leave(t);
	return rc;
}

SHMK__EXPORT int shmk_topic_release(struct shmk_topic *t, struct shmk_msg *m)
{
	int rc = m ? sub_enter(t) : -EINVAL;

	if (rc < 0)
		return rc;
	if (!t->holding || m->role_ != 2 || m->pos_ != t->held_pos) {
		sub_leave(t);
		return -EINVAL;
	}
	t->holding = 0;
	m->role_ = 0;
	rc = overwritten(t, m->pos_);
	if (!rc)
		delivered(t, m->pos_, m->len);
	sub_leave(t);
	return rc;
}

SHMK__EXPORT ssize_t shmk_topic_receive(struct shmk_topic *t, void *dst,
					size_t cap, int timeout_ms)
{
	struct sub_wait a = {0};
	int rc = !t || (cap && !dst) ? -EINVAL : sub_enter(t);

	if (rc < 0)
		return rc;
	rc = take(t, &a, timeout_ms);
	if (!rc && a.len > cap)
		rc = -EMSGSIZE; /* it stays next */
	if (!rc) {
		if (a.len)
			racy_copy(dst,
				  t->v.log + gran_off(&t->v, a.start) * GRAN,
				  (size_t)a.len);
		rc = overwritten(t, a.pos);
		if (!rc)
			delivered(t, a.pos, a.len);
	}
	sub_leave(t);
	return rc < 0 ? rc : (ssize_t)a.len;
}

/* ---------------------------------------------------------------------
 * Draining
 * --------------------------------------------------------------------- */

struct drain_wait {
	struct shmk_topic *t;
	uint64_t h0;
};

/* Every live subscription but ours has its cursor at h0 or past it. */
static int drain_cond(void *arg, int slow)
{
	struct drain_wait *a = arg;
	struct shmk_topic *t = a->t;
	int k, rc = topic_check(t);

	if (rc < 0)
		return rc;
	for (k = 0; k < SHMK__MAX_PARTS; k++) {
		uint64_t cw =
			load(&t->v.parts[k].sub.cursor, memory_order_acquire);

		if (!(cw & SUB_BIT) || (cw & ~SUB_BIT) >= a->h0 ||
		    k == t->r.slot)
			continue;
		if (known_dead(t, k, cw))
			continue;
		if (slow && shmk__topic_sub_dead(t, k, cw))
			continue;
		return SHMK__COND_WAIT;
	}
	return SHMK__COND_DONE;
}

SHMK__EXPORT int shmk_topic_drain(struct shmk_topic *t, int timeout_ms)
{
	struct drain_wait a = {.t = t};
	int rc;

	if (!t)
		return -EINVAL;
	rc = topic_call_ok(t, timeout_ms);
	if (rc < 0)
		return rc;
	a.h0 = load(&t->v.ctl->head, memory_order_acquire);
	if (a.h0 > IDX_MAX)
		return poison(t);
	return topic_wait(t, &t->v.ctl->space, drain_cond, &a, timeout_ms);
}

/* ---------------------------------------------------------------------
 * Waiting for subscribers
 * --------------------------------------------------------------------- */

struct subs_wait {
	struct shmk_topic *t;
	unsigned n;
};

/*
 * At least n live subscriptions, this handle's own included.  The cursors
 * are counted first without a system call; only a count that reaches n is
 * checked for the liveness of each (a dead subscriber's cursor stays until
 * its slot is reclaimed), so spinning here costs loads only.
 */
static int subs_cond(void *arg, int slow)
{
	struct subs_wait *a = arg;
	struct shmk_topic *t = a->t;
	uint64_t cw[SHMK__MAX_PARTS];
	unsigned seen = 0, live = 0;
	int k, rc = topic_check(t);

	(void)slow;
	if (rc < 0)
		return rc;
	if (shut_down(t))
		return -EPIPE;
	for (k = 0; k < SHMK__MAX_PARTS; k++) {
		cw[k] = load(&t->v.parts[k].sub.cursor, memory_order_acquire);
		if ((cw[k] & SUB_BIT) && !known_dead(t, k, cw[k]))
			seen++;
	}
	if (seen < a->n)
		return SHMK__COND_WAIT;
	for (k = 0; k < SHMK__MAX_PARTS && live < a->n; k++)
		if ((cw[k] & SUB_BIT) && !known_dead(t, k, cw[k]) &&
		    !shmk__topic_sub_dead(t, k, cw[k]))
			live++;
	return live >= a->n ? SHMK__COND_DONE : SHMK__COND_WAIT;
}

SHMK__EXPORT int shmk_topic_wait_subscribers(struct shmk_topic *t, unsigned n,
					     int timeout_ms)
{
	struct subs_wait a = {.t = t, .n = n};
	int rc;

	if (!t || n > SHMK__MAX_PARTS)
		return -EINVAL;
	rc = topic_call_ok(t, timeout_ms);
	if (rc < 0)
		return rc;
	return topic_wait(t, &t->v.ctl->space, subs_cond, &a, timeout_ms);
}

SHMK__EXPORT uint64_t shmk_topic_lost(const struct shmk_topic *t)
{
	return t && !t->r.forked ? my_ctr(t, S_LOST) : 0;
}

/*
 * The newest committed message, found from head back (publishers pay
 * nothing for it), copied, and checked against tail afterwards: a message
 * passed by tail while we copied may be torn, so we try the newest again.
 */
SHMK__EXPORT ssize_t shmk_topic_latest(struct shmk_topic *t, void *dst,
				       size_t cap)
{
	struct topic_view *v;
	int tries;

	if (!t || (cap && !dst))
		return -EINVAL;
	if (topic_check(t) < 0)
		return topic_check(t);
	v = &t->v;
	for (tries = 0; tries < 1000; tries++) {
		uint64_t h, T, i;
		int rc = shmk__topic_snapshot(v, &T, &h);

		if (rc < 0)
			return rc == -EBADMSG ? poison(t) : rc;
		for (i = h; i > T; i--) {
			struct topic_desc *d = desc(v, i - 1);
			uint64_t s = load(&d->seq, memory_order_acquire);
			uint64_t st, len;

			if (s != SEQ(i - 1, ST_COMMIT))
				continue;
			st = load(&d->start, memory_order_relaxed);
			len = load(&d->len, memory_order_relaxed);
			if (len > v->max_msg ||
			    gran_off(v, st) + grans(len) > v->cg)
				break; /* overwritten, or corrupt: again */
			if (len > cap)
				return -EMSGSIZE;
			if (len)
				racy_copy(dst, v->log + gran_off(v, st) * GRAN,
					  (size_t)len);
			atomic_thread_fence(memory_order_acquire);
			if (load(&v->ctl->tail, memory_order_acquire) < i &&
			    load(&d->seq, memory_order_relaxed) == s)
				return (ssize_t)len;
			break;
		}
		if (i == T)
			return -EAGAIN;
	}
	return -EAGAIN;
}
