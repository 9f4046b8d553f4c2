/* SPDX-License-Identifier: MIT */
/*
 * topic/publish.c - the publisher's side: room in the log and the
 * descriptors (advancing tail over finished messages, lossless never past
 * a live subscriber: scan, advance), claims (try_claim), loan slots
 * (op_get, op_put), and loan, commit, abandon and publish.
 *
 * Layer: above view.c.  Calls view.c; nothing of subscribe.c or
 * endpoint.c.
 */
#define _GNU_SOURCE
#include <string.h>

#include "topic.h"

/* ---------------------------------------------------------------------
 * Room: advancing tail
 * --------------------------------------------------------------------- */

/*
 * Lossless: the lowest cursor of the live subscribers, as a bound tail
 * may advance to without another look.  First the floor is raised to
 * want (seq_cst), then the cursors are read (seq_cst): a subscriber that
 * joins (cursor, then floor, both seq_cst: subscribe()) either is seen
 * here or sees the floor and starts at or past it.  The bound never
 * exceeds the floor we raised, so a later joiner, which starts at or
 * past that floor, is never passed; cursors only grow, so the bound
 * stays good until tail reaches it.  Subscribers we found dead are
 * passed over; our own subscription counts like any other (a lossless
 * handle that publishes while its own subscription lags waits for
 * itself, and its loan times out).  *slow_k: the slowest subscriber's
 * slot, or -1.
 *
 * Only the slots below nslots are read, as the read/write lock's writer
 * drains its readers (sync.c): a joiner's attach raised nslots (seq_cst)
 * before its cursor, so a joiner we do not reach read the floor after we
 * raised it.  This runs every few messages (slack_n in advance()), and
 * the whole table is 128 cache lines.  A forged nslots can make us pass
 * over a live subscriber, which may then read a message being written
 * over, as it would if the forger wrote into the log: a peer that may
 * write the object can spoil its messages anyway.  Nothing is read out
 * of bounds.
 */
static uint64_t scan(struct shmk_topic *t, uint64_t want, int *slow_k)
{
	struct topic_ctl *c = t->v.ctl;
	uint64_t f = load(&c->floor, memory_order_seq_cst), m = UINT64_MAX;
	uint32_t ns;
	int k;

	while (f < want && !atomic_compare_exchange_weak_explicit(
				   &c->floor, &f, want, memory_order_seq_cst,
				   memory_order_seq_cst))
		;
	if (f < want)
		f = want;
	*slow_k = -1;
	/* seq_cst: after the floor, before the cursors. */
	ns = atomic_load_explicit(&t->r.hdr->nslots, memory_order_seq_cst);
	if (ns > SHMK__MAX_PARTS)
		ns = SHMK__MAX_PARTS; /* corrupt: look at them all */
	for (k = 0; k < (int)ns; k++) {
		uint64_t cw =
			load(&t->v.parts[k].sub.cursor, memory_order_seq_cst);

		if (!(cw & SUB_BIT))
			continue;
		if (known_dead(t, k, cw))
			continue;
		if ((cw & ~SUB_BIT) < m) {
			m = cw & ~SUB_BIT;
			*slow_k = k;
		}
	}
	m = m < f ? m : f;
	atomic_store_explicit(&t->bound, m, memory_order_relaxed);
	return m;
}

/* Does a loan of message j placed at granule s with g granules fit, with
 * tail at T whose link is lt? */
static int fits(const struct topic_view *v, uint64_t j, uint64_t s, uint64_t g,
		uint64_t T, uint64_t lt)
{
	return j + 1 < T + v->n && s + g <= lt + v->cg;
}

/* The link of message T (tail), read once and checked: -1 if the
 * descriptor is not T's (tail moved on, or corrupt). */
static int tail_link(const struct topic_view *v, uint64_t T, uint64_t *lt)
{
	struct topic_desc *d = desc(v, T);
	uint64_t s = load(&d->seq, memory_order_acquire);

	if (s >> 2 != T || (s & 3) == 1)
		return -1;
	*lt = load(&d->link, memory_order_relaxed);
	/* The link was read under a state of T's: still T's? */
	return load(&d->seq, memory_order_acquire) >> 2 == T ? 0 : -1;
}

struct loan_wait {
	struct shmk_topic *t;
	int k;	    /* our loan slot */
	uint64_t g; /* granules */
	uint64_t j, start;
	int waited;
};

/*
 * Advances tail so that a loan of j at s with g granules fits (and a
 * little more, so that the next loans need no walk): over finished
 * messages only, and lossless never past a live subscriber.  Returns 1
 * if tail moved (try the claim again), 0 if blocked (*who: the message
 * or -(slot + 1) of the subscriber in the way), < 0 an error.
 */
static int advance(struct loan_wait *a, uint64_t j, uint64_t s, uint64_t T,
		   uint64_t lt, int slow)
{
	struct shmk_topic *t = a->t;
	struct topic_view *v = &t->v;
	uint64_t T2 = T, l2 = lt, bound = UINT64_MAX;
	/* Lossless, a little more than we need, so that the next loans find
	 * room without a walk and a look at every cursor; lossy, only what
	 * we need: every message held as long as there is room for it. */
	uint64_t slack_g = v->lossy ? a->g : a->g + v->cg / 16;
	uint64_t slack_n = v->lossy ? 0 : v->n / 16;
	int k, rounds = 0;

	if (!v->lossy)
		bound = atomic_load_explicit(&t->bound, memory_order_relaxed);
	while (T2 < j) {
		struct topic_desc *d = desc(v, T2);
		uint64_t sx = load(&d->seq, memory_order_acquire);
		int enough = fits(v, j, s, a->g, T2, l2);

		/* Moved on: others advanced tail past T2 meanwhile. */
		if (sx >> 2 > T2)
			return 1;

		/* Enough, with some to spare: stop. */
		if (enough && j + 1 + slack_n < T2 + v->n &&
		    s + slack_g <= l2 + v->cg)
			break;
		if (sx != SEQ(T2, ST_COMMIT) && sx != SEQ(T2, ST_SKIP)) {
			if (enough)
				break;
			if (!slow)
				return SHMK__COND_WAIT;
			/* A publisher still writing the oldest message. */
			k = shmk__topic_recover(v, T2);
			if (k != 1)
				return k;
			continue;
		}
		if (T2 + 1 > bound) {
			int slow_k;

			/* The floor never passes head (a joiner starts at
			 * most there). */
			bound = scan(
				t, T2 + 1 + slack_n < j ? T2 + 1 + slack_n : j,
				&slow_k);
			if (T2 + 1 > bound) {
				uint64_t cw;

				if (enough)
					break;
				if (slow_k < 0)
					break; /* only ourselves (cannot be) */
				if (!slow)
					return SHMK__COND_WAIT;
				cw = load(&v->parts[slow_k].sub.cursor,
					  memory_order_acquire);
				if ((cw & SUB_BIT) &&
				    shmk__topic_sub_dead(t, slow_k, cw) &&
				    rounds++ < SHMK__MAX_PARTS)
					continue;	/* and scan again */
				return SHMK__COND_WAIT; /* a slow subscriber */
			}
		}
		T2++;
		{
			struct topic_desc *nd = desc(v, T2);
			uint64_t ns = load(&nd->seq, memory_order_acquire);

			/* A finished message linked its successor (a later
			 * message's state: tail moved on, look again). */
			if (ns >> 2 > T2)
				return 1;
			if (ns >> 2 < T2 || (ns & 3) == 1)
				return poison(t);
			l2 = load(&nd->link, memory_order_relaxed);
		}
	}
	if (T2 == T)
		return fits(v, j, s, a->g, T, lt) ? 1 : SHMK__COND_WAIT;
	/* seq_cst: lossy, before the data we or others then write over the
	 * messages passed (subscribers check tail after they read). */
	atomic_compare_exchange_strong_explicit(&v->ctl->tail, &T, T2,
						memory_order_seq_cst,
						memory_order_relaxed);
	return 1;
}

/* One attempt to claim a message: 1 claimed, SHMK__COND_WAIT blocked,
 * < 0 an error. */
static int try_claim(struct loan_wait *a, int slow)
{
	struct shmk_topic *t = a->t;
	struct topic_view *v = &t->v;
	struct topic_op *op = &t->me->op[a->k];
	uint64_t j = load(&v->ctl->head, memory_order_acquire);
	int round = 0;

	for (;;) {
		struct topic_desc *d;
		uint64_t s, l, st, T, lt;
		int rc;

		if (j > IDX_MAX)
			return poison(t);
		d = desc(v, j);
		s = load(&d->seq, memory_order_acquire);
		if (s != SEQ(j, ST_LINKED)) {
			uint64_t h = load(&v->ctl->head, memory_order_acquire);

			if (h != j) {
				j = h; /* claimed by another: go on */
				continue;
			}
			if (s >> 2 > j)
				return poison(t);
			/* j - 1's claimer has not linked j yet. */
			if (!slow || j == 0)
				return SHMK__COND_WAIT;
			rc = shmk__topic_recover(v, j - 1);
			if (rc != 1 || ++round > 64)
				return rc == 1 ? SHMK__COND_WAIT : rc;
			continue;
		}
		/* Acquire above: the link is j - 1's claimer's. */
		l = load(&d->link, memory_order_relaxed);
		st = place(v, l, a->g);
		T = load(&v->ctl->tail, memory_order_acquire);
		if (T > j) {
			/* j was claimed and passed since we read head. */
			uint64_t h = load(&v->ctl->head, memory_order_acquire);

			if (h < T)
				return poison(t);
			j = h;
			continue;
		}
		if (T == j)
			lt = l;
		else if (tail_link(v, T, &lt) < 0) {
			if (++round > 64)
				return SHMK__COND_WAIT;
			continue; /* tail moved on */
		}
		if (!fits(v, j, st, a->g, T, lt)) {
			if (!a->waited && slow) {
				a->waited = 1;
				bump(&op->ctr[P_FULL_WAITS], 1);
			}
			rc = advance(a, j, st, T, lt, slow);
			if (rc != 1)
				return rc;
			if (++round > 64)
				return SHMK__COND_WAIT;
			continue;
		}
		/* The intent before the claim (the claim's release publishes
		 * it to whoever sees head past j), the size before the
		 * intent. */
		atomic_store_explicit(&op->gran, a->g, memory_order_relaxed);
		atomic_store_explicit(&op->intent, j | INTENT_BIT,
				      memory_order_release);
		SHMK__CRASH("topic_intent"); /* the claim never happens */
		if (!atomic_compare_exchange_weak_explicit(
			    &v->ctl->head, &j, j + 1, memory_order_seq_cst,
			    memory_order_acquire)) {
			/* Lost the race: the intent must not stay, or it would
			 * pass for the winner's if the winner dies. */
			atomic_store_explicit(&op->intent, 0,
					      memory_order_relaxed);
			continue;
		}
		SHMK__CRASH("topic_claimed"); /* j + 1 not linked yet */
		{
			struct topic_desc *nd = desc(v, j + 1);

			/* j + 1's descriptor is free: j + 1 < tail + N. */
			atomic_store_explicit(&nd->link, st + a->g,
					      memory_order_relaxed);
			atomic_store_explicit(&nd->seq, SEQ(j + 1, ST_LINKED),
					      memory_order_release);
		}
		/* Our data stores come after the claim and after the tail we
		 * saw: a lossy subscriber that reads them, then tail, sees
		 * that tail (the write side of a sequence lock). */
		atomic_thread_fence(memory_order_release);
		a->j = j;
		a->start = st;
		return 1;
	}
}

static int loan_cond(void *arg, int slow)
{
	struct loan_wait *a = arg;
	int rc;

	rc = topic_check(a->t);
	if (rc < 0)
		return rc;
	if (shut_down(a->t))
		return -EPIPE;
	rc = try_claim(a, slow);
	return rc == 1 ? SHMK__COND_DONE : rc;
}

static int op_get(struct shmk_topic *t)
{
	int k;

	for (k = 0; k < NOPS; k++) {
		_Atomic uint64_t *iw = &t->me->op[k].intent;
		uint8_t free_ = 0;
		uint64_t in, j;

		/* Acquire: pairs with op_put(); the last holder is done. */
		if (!atomic_compare_exchange_strong_explicit(
			    &t->busy[k], &free_, 1, memory_order_acquire,
			    memory_order_relaxed))
			continue;
		/* An orphaned intent our slot's last holder left: recover()
		 * needs it until its message is finished, which it does now
		 * unless a live publisher still names the message. */
		in = load(iw, memory_order_acquire);
		if (!(in & ORPHAN_BIT))
			return k;
		j = in & ~(INTENT_BIT | ORPHAN_BIT);
		if (finished(&t->v, j) || shmk__topic_recover(&t->v, j) == 1) {
			atomic_store_explicit(iw, 0, memory_order_relaxed);
			return k;
		}
		atomic_store_explicit(&t->busy[k], 0, memory_order_release);
	}
	return -EBUSY;
}

static void op_put(struct shmk_topic *t, int k)
{
	/* Release: whoever sees the intent cleared sees the message's
	 * final state, stored before. */
	atomic_store_explicit(&t->me->op[k].intent, 0, memory_order_release);
	atomic_store_explicit(&t->mine[k], 0, memory_order_relaxed);
	atomic_store_explicit(&t->busy[k], 0, memory_order_release);
}

SHMK__EXPORT int shmk_topic_loan(struct shmk_topic *t, size_t size,
				 struct shmk_msg *m, int timeout_ms)
{
	struct loan_wait a = {.t = t};
	int rc;

	if (!t || !m)
		return -EINVAL;
	rc = topic_call_ok(t, timeout_ms);
	if (rc < 0)
		return rc;
	if (size > t->v.max_msg)
		return -EMSGSIZE;
	a.g = grans(size);
	a.k = op_get(t);
	if (a.k < 0)
		return a.k;
	rc = topic_wait(t, &t->v.ctl->space, loan_cond, &a, timeout_ms);
	if (rc < 0) {
		op_put(t, a.k);
		return rc;
	}
	atomic_store_explicit(&t->mine[a.k], a.j + 1, memory_order_relaxed);
	atomic_store_explicit(&t->mine_size[a.k], size, memory_order_relaxed);
	m->data = t->v.log + gran_off(&t->v, a.start) * GRAN;
	m->len = size;
	m->pos_ = a.j;
	m->slot_ = a.k;
	m->role_ = 1;
	atomic_store_explicit(&desc(&t->v, a.j)->start, a.start,
			      memory_order_relaxed);
	SHMK__CRASH("topic_loaned");
	/* Shut down while we claimed: subscribers may have been told the
	 * topic is drained (seq_cst, after the claim; see sub_cond()). */
	if (shut_down(t)) {
		shmk_topic_abandon(t, m);
		return -EPIPE;
	}
	return 0;
}

/* The loan m as this handle made it, checked against our own record. */
static int loan_ok(struct shmk_topic *t, const struct shmk_msg *m)
{
	if (!t || !m || m->role_ != 1 || m->slot_ < 0 || m->slot_ >= NOPS ||
	    !atomic_load_explicit(&t->busy[m->slot_], memory_order_relaxed) ||
	    atomic_load_explicit(&t->mine[m->slot_], memory_order_relaxed) !=
		    m->pos_ + 1)
		return -EINVAL;
	return shmk__region_check(&t->r);
}

static void finish(struct shmk_topic *t, struct shmk_msg *m, unsigned st)
{
	int k = m->slot_;

	/* Release: start, len and the data are visible to whoever
	 * acquires the state. */
	atomic_store_explicit(&desc(&t->v, m->pos_)->seq, SEQ(m->pos_, st),
			      memory_order_release);
	SHMK__CRASH("topic_committed"); /* published; intent still set */
	m->role_ = 0;
	if (shmk__ec_notify_async(&t->r, &t->v.ctl->data))
		bump(&t->me->op[k].ctr[P_WAKEUPS], 1);
	/* A publisher may wait for this message to finish (the oldest). */
	shmk__ec_notify_async(&t->r, &t->v.ctl->space);
	op_put(t, k);
}

SHMK__EXPORT int shmk_topic_commit(struct shmk_topic *t, struct shmk_msg *m)
{
	int rc = loan_ok(t, m);
	struct topic_op *op;

	if (rc < 0)
		return rc;
	if (m->len >
	    atomic_load_explicit(&t->mine_size[m->slot_], memory_order_relaxed))
		return -EMSGSIZE; /* still loaned */
	op = &t->me->op[m->slot_];
	atomic_store_explicit(&desc(&t->v, m->pos_)->len, m->len,
			      memory_order_relaxed);
	bump(&op->ctr[P_PUBLISHED], 1);
	bump(&op->ctr[P_BYTES], m->len);
	finish(t, m, ST_COMMIT);
	return 0;
}

SHMK__EXPORT int shmk_topic_abandon(struct shmk_topic *t, struct shmk_msg *m)
{
	int rc = loan_ok(t, m);

	if (rc < 0)
		return rc;
	shmk__count(&t->r, G_ABANDONED, 1);
	finish(t, m, ST_SKIP);
	return 0;
}

SHMK__EXPORT int shmk_topic_publish(struct shmk_topic *t, const void *src,
				    size_t len, int timeout_ms)
{
	struct shmk_msg m;
	int rc;

	if (!t || (len && !src))
		return -EINVAL;
	rc = shmk_topic_loan(t, len, &m, timeout_ms);
	if (rc < 0)
		return rc;
	if (len) {
#ifdef SHMK_CRASH_POINTS
		memcpy(m.data, src, len / 2);
		SHMK__CRASH("topic_mid_copy");
#endif
		memcpy(m.data, src, len);
	}
	return shmk_topic_commit(t, &m);
}
