/* SPDX-License-Identifier: MIT */
/*
 * measure.c - the peers and latency sections: one channel's throughput
 * from a sending to a receiving process, and 64-byte round trips through
 * two channels, for any transport.  The sending and receiving processes
 * here serve the topic section too (measure_topic.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../bench.h"
#include "endpoint.h"
#include "shmk_bench.h"
#include "transport.h"
#include "verify.h"

/* ------------------------------------------------------------------ */
/* peers: throughput of one channel, TX on CPU 0, RX on CPU 1         */
/* ------------------------------------------------------------------ */

/*
 * A process of a pair: on its CPU (TX 0, RX 1), open, then ready.  A
 * fan-out (the topic section) has RX processes 1 to receivers, each on
 * a CPU of its own where there are CPUs enough, else where the scheduler
 * puts them.
 */
void pair_open(int k, struct pair *p, enum bt_role role, struct ep *e)
{
	int rc;

	if ((int)p->c.receivers < g_ncpu)
		pin(role == BT_TX ? 0 : k);
	if (role == BT_RX)
		p->c.rx_index = (unsigned)k - 1;
	rc = p->t->open(&p->c, role);
	if (rc < 0)
		kid_fail(k, rc, "open: %s",
			 p->c.why[0] ? p->c.why : strerror(-rc));
	if (ep_init(e, p->t, &p->c, 0) < 0)
		kid_fail(k, -ENOMEM, "out of memory");
	kid_ready_wait();
}

void pair_tx(int k, void *arg)
{
	struct pair *p = arg;
	struct ep e;
	uint64_t seq;
	int rc;

	pair_open(k, p, BT_TX, &e);
	for (seq = 0; !stopped(seq); seq++) {
		rc = ep_send(&e, seq, 0);
		if (rc < 0)
			kid_fail(k, rc, "send: %s", strerror(-rc));
	}
	rc = ep_send(&e, seq, BM_END);
	if (rc < 0)
		kid_fail(k, rc, "send: %s", strerror(-rc));
	ctl->kid[k].msgs = seq;
	if (p->t->close)
		p->t->close(&p->c, BT_TX);
}

void pair_rx(int k, void *arg)
{
	char why[200];
	struct pair *p = arg;
	struct kid *me = &ctl->kid[k];
	struct bm_hdr h;
	struct ep e;
	uint64_t want = 0;
	int rc;

	pair_open(k, p, BT_RX, &e);
	for (;;) {
		if ((rc = ep_recv(&e, &h, why, sizeof(why))) < 0)
			kid_fail(k, rc, "%s", why);
		if (h.seq != want)
			kid_fail(k, -EBADMSG,
				 "message %llu arrived where %llu was due "
				 "(lost, repeated or out of order)",
				 (unsigned long long)h.seq,
				 (unsigned long long)want);
		if (h.flags & BM_END)
			break;
		want++;
		kid_mark(me, want);
	}
	me->t_end = now_ns();
	me->msgs = want;
	if (p->t->close)
		p->t->close(&p->c, BT_RX);
}

static unsigned g_chan_no;

void chan_name(char *name, size_t n)
{
	snprintf(name, n, "shmkb.%d.%u", (int)getpid(), g_chan_no++);
}

void chan_init(struct bt_chan *c, size_t size, unsigned depth)
{
	memset(c, 0, sizeof(*c));
	chan_name(c->name, sizeof(c->name));
	c->msg_size = size;
	c->depth = depth;
	c->receivers = 1;
}

/* One throughput measurement into repeat i of r. */
void measure_pair(struct rec *r, int i)
{
	struct pair p = {.t = r->t};
	int rc;

	chan_init(&p.c, r->size, 32);
	if (p.t->setup && (rc = p.t->setup(&p.c)) < 0) {
		r->st = rc == -EMSGSIZE ? ST_NA : ST_FAIL;
		snprintf(r->why, sizeof(r->why), "%s",
			 p.c.why[0] ? p.c.why : strerror(-rc));
		if (p.t->teardown)
			p.t->teardown(&p.c);
		return;
	}
	if (p.c.label)
		snprintf(r->label, sizeof(r->label), "%s", p.c.label);
	rc = run_kids(1, 1, pair_tx, pair_rx, &p, opt.secs, NULL, r->why,
		      sizeof(r->why));
	if (p.t->teardown)
		p.t->teardown(&p.c);
	if (rc < 0) {
		r->st = ST_FAIL;
		return;
	}
	{
		struct kid *k = &ctl->kid[1];
		double s = (double)(k->t_end - k->t_mark) / 1e9;
		double n = (double)(k->msgs - k->n_mark);

		/* Ended inside the warm-up, or too few messages after it
		 * (a loaded machine): the whole run. */
		if (!k->t_mark || s <= 0 || n < 100) {
			s = (double)(k->t_end - ctl->t_go) / 1e9;
			n = (double)k->msgs;
		}
		r->mps[i] = n / s;
		r->gbps[i] = n * (double)r->size / s / 1e9;
		r->nrep = i + 1;
	}
}

/* ------------------------------------------------------------------ */
/* latency: 64-byte round trips through two channels                  */
/* ------------------------------------------------------------------ */

struct rtt {
	const struct bt_transport *t;
	struct bt_chan ab, ba;
};

static void rtt_open(int k, struct rtt *p, int a, struct ep *tx, struct ep *rx)
{
	struct bt_chan *out = a ? &p->ab : &p->ba, *in = a ? &p->ba : &p->ab;
	int rc;

	/* A sends first on ab, B first receives on ab. */
	if (a) {
		rc = p->t->open(out, BT_TX);
		if (rc >= 0)
			rc = p->t->open(in, BT_RX);
	} else {
		rc = p->t->open(in, BT_RX);
		if (rc >= 0)
			rc = p->t->open(out, BT_TX);
	}
	if (rc < 0)
		kid_fail(k, rc, "open: %s",
			 out->why[0]  ? out->why
			 : in->why[0] ? in->why
				      : strerror(-rc));
	if (ep_init(tx, p->t, out, (uint32_t)!a) < 0 ||
	    ep_init(rx, p->t, in, (uint32_t)a) < 0)
		kid_fail(k, -ENOMEM, "out of memory");
}

static void rtt_a(int k, void *arg)
{
	char why[200];
	struct rtt *p = arg;
	struct kid *me = &ctl->kid[k];
	struct ep tx, rx;
	struct bm_hdr h;
	uint64_t seq;
	uint32_t n = 0;
	int rc;

	pin(0);
	rtt_open(k, p, 1, &tx, &rx);
	kid_ready_wait();
	/* Past the stop, go on until 200 round trips are in (a loaded
	 * machine), for at most 5 s more. */
	for (seq = 0; !atomic_load_explicit(&ctl->stop, memory_order_relaxed) ||
		      (n < 200 &&
		       now_ns() < ctl->t_go + ctl->warm_ns * 5 + 5000000000ull);
	     seq++) {
		uint64_t t0 = now_ns(), t1;

		rc = ep_send(&tx, seq, 0);
		if (rc < 0)
			kid_fail(k, rc, "send: %s", strerror(-rc));
		if ((rc = ep_recv(&rx, &h, why, sizeof(why))) < 0)
			kid_fail(k, rc, "%s", why);
		t1 = now_ns();
		if (h.seq != seq || h.writer != 1)
			kid_fail(k, -EBADMSG,
				 "reply %llu arrived where %llu was due",
				 (unsigned long long)h.seq,
				 (unsigned long long)seq);
		if (t1 >= ctl->t_go + ctl->warm_ns && n < MAX_SAMPLES)
			ctl->samples[n++] =
				(uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX
								: t1 - t0);
	}
	rc = ep_send(&tx, seq, BM_END);
	if (rc < 0)
		kid_fail(k, rc, "send: %s", strerror(-rc));
	ctl->nsamples = n;
	me->msgs = seq;
	if (p->t->close) {
		p->t->close(&p->ab, BT_TX);
		p->t->close(&p->ba, BT_RX);
	}
}

static void rtt_b(int k, void *arg)
{
	char why[200];
	struct rtt *p = arg;
	struct ep tx, rx;
	struct bm_hdr h;
	uint64_t want = 0;
	int rc;

	pin(1);
	rtt_open(k, p, 0, &tx, &rx);
	kid_ready_wait();
	for (;;) {
		if ((rc = ep_recv(&rx, &h, why, sizeof(why))) < 0)
			kid_fail(k, rc, "%s", why);
		if (h.seq != want || h.writer != 0)
			kid_fail(k, -EBADMSG,
				 "request %llu arrived where %llu was due",
				 (unsigned long long)h.seq,
				 (unsigned long long)want);
		if (h.flags & BM_END)
			break;
		rc = ep_send(&tx, want, 0);
		if (rc < 0)
			kid_fail(k, rc, "send: %s", strerror(-rc));
		want++;
	}
	if (p->t->close) {
		p->t->close(&p->ab, BT_RX);
		p->t->close(&p->ba, BT_TX);
	}
}

int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

double quantile_us(const uint32_t *s, uint32_t n, double q)
{
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);

	return n ? (double)s[i] / 1000.0 : 0;
}

struct cdf cdf[MAX_T];
int ncdf;

void measure_rtt(struct rec *r, int i)
{
	struct rtt p = {.t = r->t};
	double secs = opt.secs * 1.5;
	uint32_t n;
	int rc, k;

	chan_init(&p.ab, r->size, 32);
	chan_init(&p.ba, r->size, 32);
	if (p.t->setup &&
	    ((rc = p.t->setup(&p.ab)) < 0 || (rc = p.t->setup(&p.ba)) < 0)) {
		r->st = rc == -EMSGSIZE ? ST_NA : ST_FAIL;
		snprintf(r->why, sizeof(r->why), "%s",
			 p.ab.why[0]   ? p.ab.why
			 : p.ba.why[0] ? p.ba.why
				       : strerror(-rc));
		goto out;
	}
	rc = run_kids(1, 1, rtt_a, rtt_b, &p, secs, NULL, r->why,
		      sizeof(r->why));
	if (rc < 0) {
		r->st = ST_FAIL;
		goto out;
	}
	n = ctl->nsamples;
	if (n < 10) {
		r->st = ST_FAIL;
		snprintf(r->why, sizeof(r->why), "only %u round trips", n);
		goto out;
	}
	qsort(ctl->samples, n, sizeof(uint32_t), cmp_u32);
	r->p50[i] = quantile_us(ctl->samples, n, 0.50);
	r->p99[i] = quantile_us(ctl->samples, n, 0.99);
	r->p999[i] = quantile_us(ctl->samples, n, 0.999);
	r->mps[i] = (double)ctl->kid[0].msgs / secs;
	r->nrep = i + 1;
	/* Keep the last repeat's samples for the distribution chart (the
	 * latency section's only). */
	if (strcmp(r->section, "latency"))
		goto out;
	for (k = 0; k < ncdf && cdf[k].t != r->t; k++)
		;
	if (k == ncdf && ncdf < MAX_T)
		cdf[ncdf++].t = r->t;
	if (k < ncdf) {
		free(cdf[k].s);
		cdf[k].n = 0;
		cdf[k].s = malloc((size_t)n * sizeof(uint32_t));
		if (cdf[k].s) {
			memcpy(cdf[k].s, ctl->samples,
			       (size_t)n * sizeof(uint32_t));
			cdf[k].n = n;
		}
	}
out:
	if (p.t->teardown) {
		p.t->teardown(&p.ab);
		p.t->teardown(&p.ba);
	}
}
