/* SPDX-License-Identifier: MIT */
/*
 * measure_topic.c - the topic section: one publisher to 1, 2 or 4
 * subscriber processes, each of which gets and verifies every message;
 * its throughput, and the one-way latency by a time stamp.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench.h"
#include "endpoint.h"
#include "shmk_bench.h"
#include "transport.h"
#include "verify.h"

/* ------------------------------------------------------------------ */
/* topic: one publisher to 1, 2 or 4 subscriber processes             */
/* ------------------------------------------------------------------ */

/*
 * Throughput: pair_tx publishes, each of r->readers subscribers runs
 * pair_rx (every message, in order, verified), as in the peers section.
 * Into repeat i: the mean of the subscribers' rates (mps) and the bytes
 * delivered to all of them together (gbps).
 */
void measure_fan(struct rec *r, int i)
{
	struct pair p = {.t = r->t};
	double sum = 0;
	unsigned k, n = r->readers;
	int rc;

	chan_init(&p.c, r->size, 32);
	p.c.receivers = n;
	if (p.t->setup && (rc = p.t->setup(&p.c)) < 0) {
		r->st = rc == -EMSGSIZE ? ST_NA : ST_FAIL;
		snprintf(r->why, sizeof(r->why), "%s",
			 p.c.why[0] ? p.c.why : strerror(-rc));
		if (p.t->teardown)
			p.t->teardown(&p.c);
		return;
	}
	rc = run_kids(1, (int)n, pair_tx, pair_rx, &p, opt.secs, NULL, r->why,
		      sizeof(r->why));
	if (p.t->teardown)
		p.t->teardown(&p.c);
	if (rc < 0) {
		r->st = ST_FAIL;
		return;
	}
	for (k = 1; k <= n; k++) {
		struct kid *kd = &ctl->kid[k];
		double s = (double)(kd->t_end - kd->t_mark) / 1e9;
		double m = (double)(kd->msgs - kd->n_mark);

		/* As measure_pair(): the whole run if the window is empty. */
		if (!kd->t_mark || s <= 0 || m < 100) {
			s = (double)(kd->t_end - ctl->t_go) / 1e9;
			m = (double)kd->msgs;
		}
		sum += m / s;
	}
	r->mps[i] = sum / n;
	r->gbps[i] = sum * (double)r->size / 1e9;
	r->nrep = i + 1;
}

/*
 * Latency, one way, by a time stamp: the publisher reads CLOCK_MONOTONIC
 * (one clock for every CPU), writes it into the message's payload and
 * sends; each subscriber reads the clock once the message is in and
 * verified, and keeps the difference.  One message at a time: the next
 * goes out once every subscriber has taken the last (and waits for the
 * next in the transport's own way), so no message queues behind another.
 * The time stamp is part of the checksummed payload, so the publisher
 * sums each message's payload again (32 bytes at 64 B).  Copy mode for
 * every transport (send and recv).
 */
static int lat_send(struct ep *e, uint64_t seq, uint32_t flags)
{
	size_t len = e->c->msg_size;
	unsigned char *b = e->buf;
	uint64_t t0 = now_ns(), ps;
	int rc;

	memcpy(b + BM_HDR, &t0, sizeof(t0));
	ps = bm_payload_sum(b + BM_HDR, len - BM_HDR);
	bm_stamp(b, len, e->writer, seq, ps, flags);
	if (opt.corrupt >= 0 && (uint64_t)opt.corrupt == seq &&
	    !(flags & BM_END))
		b[len - 1] ^= 0x10;
	rc = e->t->send(e->c, b, len);
	return rc;
}

/* Until every subscriber took message seq - 1.  A publisher that shares
 * its CPU lets the subscribers run. */
static void lat_wait(uint64_t seq, unsigned n, int shared)
{
	unsigned spins = 0;

	for (unsigned k = 1; k <= n; k++)
		while (atomic_load_explicit(&ctl->ack[k].taken,
					    memory_order_acquire) < seq) {
			if (shared && ++spins > 64)
				sched_yield();
			else
				bench_relax();
		}
}

static uint64_t lat_kept(unsigned n)
{
	uint64_t m = UINT64_MAX;

	for (unsigned k = 1; k <= n; k++) {
		uint64_t x = atomic_load_explicit(&ctl->ack[k].kept,
						  memory_order_relaxed);

		m = x < m ? x : m;
	}
	return m;
}

static void lat_tx(int k, void *arg)
{
	struct pair *p = arg;
	unsigned n = p->c.receivers;
	int shared = (int)n >= g_ncpu, rc;
	struct ep e;
	uint64_t seq;

	pair_open(k, p, BT_TX, &e);
	/* Past the stop, go on until every subscriber has 200 samples (a
	 * loaded machine), for at most 5 s more. */
	for (seq = 0; !stopped(seq) ||
		      (lat_kept(n) < 200 &&
		       now_ns() < ctl->t_go + ctl->warm_ns * 5 + 5000000000ull);
	     seq++) {
		lat_wait(seq, n, shared);
		rc = lat_send(&e, seq, 0);
		if (rc < 0)
			kid_fail(k, rc, "send: %s", strerror(-rc));
	}
	lat_wait(seq, n, shared);
	rc = lat_send(&e, seq, BM_END);
	if (rc < 0)
		kid_fail(k, rc, "send: %s", strerror(-rc));
	ctl->kid[k].msgs = seq;
	if (p->t->close)
		p->t->close(&p->c, BT_TX);
}

static void lat_rx(int k, void *arg)
{
	char why[200];
	struct pair *p = arg;
	uint32_t per = MAX_SAMPLES / p->c.receivers, kept = 0;
	uint32_t *samples = ctl->samples + (size_t)(k - 1) * per;
	struct bm_hdr h;
	struct ep e;
	uint64_t want = 0, t0, t1;
	int rc;

	pair_open(k, p, BT_RX, &e);
	e.zc = 0;
	for (;;) {
		if ((rc = ep_recv(&e, &h, why, sizeof(why))) < 0)
			kid_fail(k, rc, "%s", why);
		t1 = now_ns();
		if (h.seq != want)
			kid_fail(k, -EBADMSG,
				 "message %llu arrived where %llu was due "
				 "(lost, repeated or out of order)",
				 (unsigned long long)h.seq,
				 (unsigned long long)want);
		memcpy(&t0, e.buf + BM_HDR, sizeof(t0));
		if (t1 < t0)
			kid_fail(k, -ERANGE,
				 "the clock read %llu ns earlier on the "
				 "subscriber than on the publisher",
				 (unsigned long long)(t0 - t1));
		if (t0 >= ctl->t_go + ctl->warm_ns && kept < per) {
			samples[kept++] =
				(uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX
								: t1 - t0);
			atomic_store_explicit(&ctl->ack[k].kept, kept,
					      memory_order_relaxed);
		}
		/* Release: our sample is in before the publisher goes on. */
		atomic_store_explicit(&ctl->ack[k].taken, want + 1,
				      memory_order_release);
		if (h.flags & BM_END)
			break;
		want++;
	}
	if (p->t->close)
		p->t->close(&p->c, BT_RX);
}

void measure_fan_lat(struct rec *r, int i)
{
	struct pair p = {.t = r->t};
	double secs = opt.secs * 1.5;
	unsigned k, n = r->readers;
	uint32_t per = MAX_SAMPLES / n, total = 0;
	int rc;

	chan_init(&p.c, r->size, 32);
	p.c.receivers = n;
	if (p.t->setup && (rc = p.t->setup(&p.c)) < 0) {
		r->st = rc == -EMSGSIZE ? ST_NA : ST_FAIL;
		snprintf(r->why, sizeof(r->why), "%s",
			 p.c.why[0] ? p.c.why : strerror(-rc));
		goto out;
	}
	rc = run_kids(1, (int)n, lat_tx, lat_rx, &p, secs, NULL, r->why,
		      sizeof(r->why));
	if (rc < 0) {
		r->st = ST_FAIL;
		goto out;
	}
	/* Every subscriber's samples together, at the front. */
	for (k = 1; k <= n; k++) {
		uint32_t m = (uint32_t)atomic_load(&ctl->ack[k].kept);

		memmove(ctl->samples + total, ctl->samples + (k - 1) * per,
			(size_t)m * sizeof(uint32_t));
		total += m;
	}
	if (total < 10) {
		r->st = ST_FAIL;
		snprintf(r->why, sizeof(r->why), "only %u messages timed",
			 total);
		goto out;
	}
	qsort(ctl->samples, total, sizeof(uint32_t), cmp_u32);
	r->p50[i] = quantile_us(ctl->samples, total, 0.50);
	r->p99[i] = quantile_us(ctl->samples, total, 0.99);
	r->p999[i] = quantile_us(ctl->samples, total, 0.999);
	r->mps[i] = (double)ctl->kid[0].msgs / secs;
	r->nrep = i + 1;
out:
	if (p.t->teardown)
		p.t->teardown(&p.c);
}
