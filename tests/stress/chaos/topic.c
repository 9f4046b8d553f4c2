/* SPDX-License-Identifier: MIT */
/*
 * topic.c - test_chaos's topics, lossless and lossy.  A publisher
 * publishes every message to a lossless and a lossy control topic (by
 * copy and by loan, by turns), and between two of them makes one call on
 * a victim topic of each policy in turn; two subscribers take from all
 * four.  Control: every message reaches every subscriber of the
 * lossless topic once, in order, intact; the lossy one's are taken or
 * counted lost, none twice.  Victims: every call returns success or an
 * error of the ok_t*[] lists, and every message handed out in place lies
 * in the handle's own log.  The chaos scribbles on head, tail and floor,
 * the eventcounts, descriptors, loan intents and sizes, cursors, counters
 * and the log.
 *
 * White-box: src/internal.h for shmk__topic_region(), a handle's mapping:
 * a message handed out in place must lie in the log of that mapping, and
 * a victim must have the size the layout below gives.
 */
#include <poll.h>

#include "harness.h"
#include "internal.h"

/* Topics (src/topic/topic.h): the control words, 128 participant blocks of 8
 * loan slots (intent, granules, counters) and a subscription (cursor,
 * counters), the descriptors (seq, link, start, len), the log. */
#define TOPIC_FLOOR (O_CTL + 0x48)
#define TOPIC_PARTS 0x3000
#define TOPIC_PART  576
#define TOPIC_SUB   512
#define TOPIC_DESC  0x15000
#define TOPIC_N	    64 /* TOPIC_CAP / 256 */
#define TOPIC_LOG   0x16000
#define TOPIC_BIT   (UINT64_C(1) << 63) /* an intent's, a cursor's */
#define TOPIC_IDX   ((UINT64_C(1) << 61) - 1)

/*
 * Topics: publish and loan as a ring's write (-EBADMSG, -ETIMEDOUT /
 * -EAGAIN, -EPIPE; -EBUSY cannot come: one loan at a time of 8); receive
 * and acquire the same, and lossy also -EOVERFLOW (a forged tail passes
 * the cursor); release 0, -EOVERFLOW (lossy) or -EBADMSG (the handle was
 * poisoned meanwhile); subscribe and unsubscribe only -EBADMSG; latest
 * -EAGAIN or -EBADMSG.  -EMSGSIZE never: our buffers hold max_msg.
 */
static const int ok_tpub[] = {EBADMSG, ETIMEDOUT, EAGAIN, EPIPE, 0};
static const int ok_ttake[] = {EBADMSG, ETIMEDOUT, EAGAIN, EPIPE, 0};
static const int ok_lttake[] = {EBADMSG, ETIMEDOUT, EAGAIN,
				EPIPE,	 EOVERFLOW, 0};
static const int ok_trelease[] = {EBADMSG, 0};
static const int ok_ltrelease[] = {EBADMSG, EOVERFLOW, 0};
static const int ok_tsub[] = {EBADMSG, 0};
static const int ok_tlatest[] = {EAGAIN, EBADMSG, 0};

/* A victim topic as a process uses it: one policy, opened on demand. */
struct vtopic {
	const char *name;
	int kind, lossy;
	struct shmk_topic *t;
	int subscribed, pollfd;
	uint64_t seq, it;
};

/* A message handed out in place lies in the log of the handle's own
 * mapping (the last capacity bytes), whole, whatever the words said. */
static void topic_inside(struct shmk_topic *t, const struct shmk_msg *m)
{
	struct shmk__region *r = shmk__topic_region(t);
	const char *hi = (const char *)r->hdr + r->size;
	const char *lo = hi - shmk_topic_capacity(t), *d = m->data;

	if (d < lo || d >= hi || m->len > shmk_topic_max_msg(t) ||
	    m->len > (size_t)(hi - d)) {
		fprintf(stderr,
			"topic: a message of %zu bytes at offset %td of a "
			"log of %zu handed out\n",
			m->len, d - lo, shmk_topic_capacity(t));
		exit(1);
	}
}

static int vtopic_open(struct vtopic *v)
{
	if (v->t)
		return 0;
	if (!may_retry())
		return -1;
	if (VICTIM(K_OPEN, ok_open,
		   shmk_topic_open(v->name, &wait_open, &v->t)) < 0) {
		back_off(4);
		return -1;
	}
	/* A forged max_msg or policy gives the same file size: a valid
	 * topic, but not the one we made. */
	if (shmk_topic_capacity(v->t) != TOPIC_CAP ||
	    shmk_topic_max_msg(v->t) != TOPIC_MAX ||
	    shmk_topic_lossy(v->t) != v->lossy) {
		atomic_fetch_add(&book->forged_geometry, 1);
		CHECK_OK(shmk_topic_close(v->t));
		v->t = NULL;
		back_off(4);
		return -1;
	}
	v->subscribed = 0;
	/* Half the handles have a wake-up socket: every -EAGAIN arms it,
	 * and notifiers follow the (forged) tokens of the slots. */
	v->pollfd = -1;
	if (rnd() % 2)
		v->pollfd =
			(int)VICTIM(v->kind, ok_none, shmk_topic_pollfd(v->t));
	return 0;
}

/* After an -EAGAIN: wait a little for the socket to say there is more. */
static void vtopic_poll(struct vtopic *v, long rc)
{
	struct pollfd p = {.fd = v->pollfd, .events = POLLIN};

	if (rc == -EAGAIN && v->pollfd >= 0)
		CHECK(poll(&p, 1, (int)(rnd() % 2)) >= 0);
}

static void vtopic_drop(struct vtopic *v)
{
	if (v->t)
		CHECK_OK(shmk_topic_close(v->t));
	v->t = NULL;
}

/* What publishers and subscribers both do now and then. */
static void vtopic_extras(struct vtopic *v)
{
	unsigned char buf[TOPIC_MAX];
	struct shmk_topic_stats ts;
	struct shmk_stat st;
	struct wire h;
	long n;

	n = VICTIM(v->kind, ok_tlatest,
		   shmk_topic_latest(v->t, buf, sizeof(buf)));
	if (n >= 0 && !intact(buf, (size_t)n, &h))
		atomic_fetch_add(&book->garbled, 1);
	VICTIM(v->kind, ok_none, shmk_topic_stats(v->t, &ts));
	VICTIM(K_OPEN, ok_stat, shmk_stat(v->name, &st));
}

static void vtopic_publish(struct vtopic *v)
{
	unsigned char buf[WIRE + TOPIC_MSG];
	size_t len = build(buf, 1, v->seq++, TOPIC_MSG);
	struct shmk_msg m;
	long rc;

	if (vtopic_open(v) < 0)
		return;
	if (rnd() % 2) {
		rc = VICTIM(
			v->kind, ok_tpub,
			shmk_topic_publish(v->t, buf, len, (int)(rnd() % 3)));
	} else {
		size_t size = len + (size_t)(rnd() % 64);

		rc = VICTIM(v->kind, ok_tpub,
			    shmk_topic_loan(v->t, size, &m, (int)(rnd() % 3)));
		if (rc == 0) {
			topic_inside(v->t, &m);
			CHECK(m.len == size);
			memset(m.data, 0x5a, size);
			memcpy(m.data, buf, len);
			m.len = len;
			/* A slow publisher: the chaos may come meanwhile. */
			if (rnd() % 4 == 0)
				sleep_us((unsigned)(rnd() % 1000));
			if (rnd() % 8)
				VICTIM(v->kind, ok_none,
				       shmk_topic_commit(v->t, &m));
			else
				VICTIM(v->kind, ok_none,
				       shmk_topic_abandon(v->t, &m));
		}
	}
	vtopic_poll(v, rc);
	if (v->it++ % 64 == 0)
		vtopic_extras(v);
	if (rc == -EBADMSG || rc == -EPIPE || v->it % 256 == 0)
		vtopic_drop(v);
}

static void vtopic_take(struct vtopic *v)
{
	static const int hist[] = {0, -1, 1, 7, 1000};
	const int *ok = v->lossy ? ok_lttake : ok_ttake;
	unsigned char buf[TOPIC_MAX];
	struct shmk_msg m;
	struct wire h;
	long n;

	if (vtopic_open(v) < 0)
		return;
	if (!v->subscribed) {
		n = VICTIM(v->kind, ok_tsub,
			   shmk_topic_subscribe(v->t, hist[rnd() % 5]));
		if (n < 0) {
			vtopic_drop(v);
			return;
		}
		v->subscribed = 1;
	}
	if (rnd() % 2) {
		n = VICTIM(v->kind, ok,
			   shmk_topic_receive(v->t, buf, sizeof(buf),
					      (int)(rnd() % 3)));
	} else {
		n = VICTIM(v->kind, ok,
			   shmk_topic_acquire(v->t, &m, (int)(rnd() % 3)));
		if (n == 0) {
			long rc;

			/* Whatever the descriptor said, the message is in
			 * the log: read every byte of it. */
			topic_inside(v->t, &m);
			memcpy(buf, m.data, m.len);
			n = (long)m.len;
			if (rnd() % 4 == 0) /* a slow subscriber */
				sleep_us((unsigned)(rnd() % 1000));
			rc = VICTIM(v->kind,
				    v->lossy ? ok_ltrelease : ok_trelease,
				    shmk_topic_release(v->t, &m));
			if (rc < 0)
				n = rc; /* overwritten meanwhile: torn */
		}
	}
	vtopic_poll(v, n);
	if (n >= 0) {
		atomic_fetch_add(&book->vtaken[v->lossy], 1);
		if (!intact(buf, (size_t)n, &h))
			atomic_fetch_add(&book->garbled, 1);
	}
	if (v->it++ % 64 == 0)
		vtopic_extras(v);
	if (n != -EBADMSG && rnd() % 128 == 0) {
		n = VICTIM(v->kind, ok_tsub, shmk_topic_unsubscribe(v->t));
		v->subscribed = 0;
	}
	if (n == -EBADMSG || n == -EPIPE || v->it % 256 == 0)
		vtopic_drop(v);
}

static void vtopics_init(struct vtopic v[2])
{
	memset(v, 0, 2 * sizeof(*v));
	v[0].name = n_vtopic;
	v[0].kind = K_TOPIC;
	v[1].name = n_vltopic;
	v[1].kind = K_LTOPIC;
	v[1].lossy = 1;
}

/*
 * The publisher: each control message (published, or loaned and
 * committed) goes to every subscriber, in order, once, intact; between
 * two of them one call on a victim topic, of each policy in turn.
 */
int topic_pub(void *arg)
{
	int fds = count_fds();
	struct shmk_opts o = {.wait_ms = 5000};
	unsigned char buf[WIRE + TOPIC_MSG];
	struct shmk_topic *ct[2];
	struct vtopic v[2];
	struct shmk_msg m;
	uint64_t seq = 0;
	int k;

	(void)arg;
	rnd_seed(60);
	vtopics_init(v);
	CHECK_OK(shmk_topic_open(n_ctopic, &o, &ct[0]));
	CHECK_OK(shmk_topic_open(n_cltopic, &o, &ct[1]));
	while (atomic_load(&book->tsubs_ready) < NTSUBS)
		sleep_ms(1);
	while (!stopping()) {
		size_t len = build(buf, 0, seq, TOPIC_MSG);

		for (k = 0; k < 2; k++) {
			if ((seq + (unsigned)k) & 1) {
				CTRL(shmk_topic_publish(ct[k], buf, len,
							CTRL_MS));
				continue;
			}
			CTRL(shmk_topic_loan(ct[k], len, &m, CTRL_MS));
			topic_inside(ct[k], &m);
			memcpy(m.data, buf, len);
			CTRL(shmk_topic_commit(ct[k], &m));
		}
		atomic_store(&book->tcommitted, ++seq);
		vtopic_publish(&v[seq % 2]);
	}
	atomic_store(&book->tpub_done, 1);
	vtopic_drop(&v[0]);
	vtopic_drop(&v[1]);
	CHECK_OK(shmk_topic_close(ct[0]));
	CHECK_OK(shmk_topic_close(ct[1]));
	CHECK_EQ(count_fds(), fds);
	return 0;
}

/*
 * One look at the lossy control topic.  What comes is intact, and is
 * message number (taken + lost so far): nothing repeated, nothing out of
 * order, nothing lost without being counted.  A message overwritten while
 * held (release: -EOVERFLOW) is counted lost, and not looked at.
 */
static long lossy_take(struct shmk_topic *lt, uint64_t *got, int timeout)
{
	unsigned char buf[WIRE + TOPIC_MSG];
	struct wire h = {0};
	struct shmk_msg m;
	long n;

	if (*got % 2) {
		n = shmk_topic_receive(lt, buf, sizeof(buf), timeout);
	} else {
		n = shmk_topic_acquire(lt, &m, timeout);
		if (n == 0) {
			topic_inside(lt, &m);
			CHECK(m.len <= sizeof(buf));
			memcpy(buf, m.data, m.len);
			n = shmk_topic_release(lt, &m);
			if (n == 0)
				n = (long)m.len;
		}
	}
	if (n == -EOVERFLOW || n == -ETIMEDOUT || n == -EAGAIN)
		return n;
	CTRL(n);
	if (!intact(buf, (size_t)n, &h) || h.writer != 0 ||
	    h.seq != *got + shmk_topic_lost(lt)) {
		fprintf(stderr,
			"lossy control topic: %ld bytes (seq %llu) after "
			"%llu taken, %llu lost\n",
			n, (unsigned long long)h.seq, (unsigned long long)*got,
			(unsigned long long)shmk_topic_lost(lt));
		exit(1);
	}
	++*got;
	return n;
}

int topic_sub(void *arg)
{
	int me = (int)(uintptr_t)arg;
	int fds = count_fds();
	struct shmk_opts o = {.wait_ms = 5000};
	unsigned char buf[WIRE + TOPIC_MSG];
	uint64_t next = 0, lgot = 0, it, idle_since = 0;
	struct shmk_topic *ct, *lt;
	struct vtopic v[2];
	struct shmk_msg m;
	struct wire h = {0};
	long n;

	rnd_seed(70 + (unsigned)me);
	vtopics_init(v);
	CHECK_OK(shmk_topic_open(n_ctopic, &o, &ct));
	CHECK_OK(shmk_topic_subscribe(ct, 0));
	CHECK_OK(shmk_topic_open(n_cltopic, &o, &lt));
	CHECK_OK(shmk_topic_subscribe(lt, 0));
	atomic_fetch_add(&book->tsubs_ready, 1);
	for (it = 0;; it++) {
		int done = atomic_load(&book->tpub_done);

		if (it & 1) {
			n = shmk_topic_receive(ct, buf, sizeof(buf), 20);
		} else {
			n = shmk_topic_acquire(ct, &m, 20);
			if (n == 0) {
				topic_inside(ct, &m);
				CHECK(m.len <= sizeof(buf));
				memcpy(buf, m.data, m.len);
				n = (long)m.len;
				CTRL(shmk_topic_release(ct, &m));
			}
		}
		if (n >= 0) {
			/* Control: intact, every one, once, in order. */
			if (!intact(buf, (size_t)n, &h) || h.writer != 0 ||
			    h.seq != next) {
				fprintf(stderr,
					"control topic: subscriber %d got "
					"%ld bytes (seq %llu) for message "
					"%llu\n",
					me, n, (unsigned long long)h.seq,
					(unsigned long long)next);
				exit(1);
			}
			atomic_store(&book->tgot[me], ++next);
			idle_since = 0;
		} else if (n == -ETIMEDOUT || n == -EAGAIN) {
			if (!done)
				idle_since = 0;
			else if (next == atomic_load(&book->tcommitted))
				break;
			else if (!idle_since)
				idle_since = check_now_ms();
			else if (check_now_ms() - idle_since > 10000)
				break;
		} else {
			CTRL(n);
		}
		if (done)
			continue;
		lossy_take(lt, &lgot, 0);
		if (it % 16 == 0) {
			/* The newest, while the publisher laps the log. */
			n = shmk_topic_latest(lt, buf, sizeof(buf));
			if (n != -EAGAIN)
				CTRL(n);
			CHECK(n < 0 ||
			      (intact(buf, (size_t)n, &h) && h.writer == 0));
		}
		vtopic_take(&v[it % 2]);
	}
	/* The publisher is done: what is left of the lossy control. */
	while ((n = lossy_take(lt, &lgot, 20)) >= 0 || n == -EOVERFLOW)
		;
	atomic_store(&book->ltgot[me], lgot);
	atomic_store(&book->ltlost[me], shmk_topic_lost(lt));
	vtopic_drop(&v[0]);
	vtopic_drop(&v[1]);
	CHECK_OK(shmk_topic_close(ct));
	CHECK_OK(shmk_topic_close(lt));
	CHECK_EQ(count_fds(), fds);
	return 0;
}

/* Every control topic message reached every subscriber (each checked
 * order and payloads as they came). */
void topic_final(void)
{
	int i;

	CHECK(atomic_load(&book->tcommitted) > 0);
	for (i = 0; i < NTSUBS; i++) {
		CHECK_EQ(atomic_load(&book->tgot[i]),
			 atomic_load(&book->tcommitted));
		/* Lossy: each was taken or counted lost, none twice. */
		CHECK(atomic_load(&book->ltgot[i]) > 0);
		CHECK_EQ(atomic_load(&book->ltgot[i]) +
				 atomic_load(&book->ltlost[i]),
			 atomic_load(&book->tcommitted));
	}
}

/* The victim is laid out as the offsets above say. */
void topic_check_layout(struct shmk_topic *t)
{
	CHECK(shmk__topic_region(t)->size == TOPIC_LOG + TOPIC_CAP);
}

/* A message number near head or tail, mostly. */
static uint64_t near_msg(uint64_t head, uint64_t tail)
{
	return (rnd() % 2 ? head : tail) + rnd() % 5 - 2;
}

void pick_topic(struct target *t, struct field *f)
{
	uint64_t head = load(t, O_CTL, 8), tail = load(t, O_CTL + 0x40, 8);
	uint64_t maxg = (TOPIC_MAX + 63) / 64, cg = TOPIC_CAP / 64, j, v;
	uint64_t part =
		TOPIC_PARTS + TOPIC_PART * (rnd() % 4 ? rnd() % 4 : rnd() % 8);
	unsigned st;

	switch (rnd() % 13) {
	case 0:
		f->off = O_CTL; /* head */
		f->width = 8;
		hint(f, tail);
		hint(f, head + 1);
		hint(f, head - 1);
		hint(f, tail + TOPIC_N);
		hint(f, tail + TOPIC_N + 1);
		hint(f, TOPIC_IDX);
		hint(f, TOPIC_IDX + 1);
		break;
	case 1:
		f->off = O_CTL + 0x40; /* tail */
		f->width = 8;
		hint(f, head);
		hint(f, head + 1);
		hint(f, tail + 1);
		hint(f, tail - 1);
		hint(f, head - TOPIC_N);
		hint(f, head - TOPIC_N - 1);
		break;
	case 2:
		f->off = TOPIC_FLOOR;
		f->width = 8;
		hint(f, head);
		hint(f, head + 1);
		hint(f, tail);
		hint(f, tail - 1);
		hint(f, TOPIC_IDX);
		break;
	case 3:
		f->off = O_CTL + 0x80 + 0x40 * (rnd() % 2); /* eventcounts */
		f->width = 4;
		hint(f, load(t, f->off, 4) | 1);
		hint(f, load(t, f->off, 4) + 2);
		break;
	case 4:
	case 5:
		/* A descriptor's seq: message j in one of its states. */
		j = near_msg(head, tail);
		f->off = TOPIC_DESC + 64 * (j % TOPIC_N);
		f->width = 8;
		for (st = 0; st < 4; st++)
			hint(f, j * 4 + st);
		hint(f, (j + TOPIC_N) * 4 + rnd() % 4);
		hint(f, (j - TOPIC_N) * 4 + rnd() % 4);
		hint(f, (j + 1) * 4 + 2);
		hint(f, TOPIC_IDX * 4 + 2);
		break;
	case 6:
		/* Link or start: granule positions. */
		j = near_msg(head, tail);
		f->off = TOPIC_DESC + 64 * (j % TOPIC_N) + 8 * (1 + rnd() % 2);
		f->width = 8;
		v = load(t, f->off, 8);
		hint(f, v + cg);
		hint(f, v - cg);
		hint(f, v + cg - 1);
		hint(f, v + cg - maxg + 1);
		hint(f, v / cg * cg + cg - 1);
		hint(f, UINT64_MAX - cg);
		break;
	case 7:
		j = near_msg(head, tail);
		f->off = TOPIC_DESC + 64 * (j % TOPIC_N) + 24; /* len */
		f->width = 8;
		hint(f, TOPIC_MAX);
		hint(f, TOPIC_MAX + 1);
		hint(f, TOPIC_CAP);
		hint(f, 64 * maxg);
		hint(f, UINT64_MAX - 62);
		break;
	case 8:
		/* An intent: a message a publisher (live or dead) claims. */
		f->off = part + 64 * (rnd() % 8);
		f->width = 8;
		hint(f, (head - 1) | TOPIC_BIT);
		hint(f, (head - 2) | TOPIC_BIT);
		hint(f, head | TOPIC_BIT);
		hint(f, tail | TOPIC_BIT);
		hint(f, 0);
		break;
	case 9:
		f->off = part + 64 * (rnd() % 8) + 8; /* its granules */
		f->width = 8;
		hint(f, maxg);
		hint(f, maxg + 1);
		hint(f, cg);
		hint(f, 0);
		break;
	case 10:
		f->off = part + TOPIC_SUB; /* a cursor */
		f->width = 8;
		hint(f, TOPIC_BIT | tail);
		hint(f, TOPIC_BIT | (tail - 1));
		hint(f, TOPIC_BIT | head);
		hint(f, TOPIC_BIT | (head + 1));
		hint(f, TOPIC_BIT);
		hint(f, 0);
		break;
	case 11:
		/* A counter: a loan slot's or a subscription's. */
		f->off = part + 64 * (rnd() % 9) + 8 * (2 + rnd() % 6);
		f->width = 8;
		break;
	default: {
		/* The log, under a subscriber's feet. */
		static const int widths[] = {1, 2, 4, 8};

		f->width = widths[rnd() % 4];
		f->off = TOPIC_LOG + rnd() % TOPIC_CAP / (uint64_t)f->width *
					     (uint64_t)f->width;
	}
	}
}
