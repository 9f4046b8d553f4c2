/* SPDX-License-Identifier: MIT */
/*
 * measure_chart.c - the chart section: the ring's bandwidth by node
 * count, with 1 or 2 writer and 1 or 2 reader processes, every message
 * verified and each writer's delivered exactly once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmk.h>

#include "../bench.h"
#include "builtin.h"
#include "endpoint.h"
#include "shmk_bench.h"
#include "verify.h"

/* ------------------------------------------------------------------ */
/* chart: the ring with 1-2 writer and 1-2 reader processes           */
/* ------------------------------------------------------------------ */

struct chart {
	char name[64];
	size_t size;
	int nw, nr;
	struct shmk_ring *r; /* the parent's: it shuts the ring down */
};

static void chart_w(int k, void *arg)
{
	struct chart *c = arg;
	struct shmk_ring *r;
	struct bt_chan ch = {.msg_size = c->size};
	struct ep e = {0};
	uint64_t seq;
	int rc;

	if (c->nw == 1 && c->nr == 1)
		pin(0);
	rc = shmk_ring_open(c->name, NULL, &r);
	if (rc < 0)
		kid_fail(k, rc, "shmk_ring_open: %s", shmk_strerror(rc));
	if (ep_init(&e, &bt_shmk, &ch, (uint32_t)k) < 0)
		kid_fail(k, -ENOMEM, "out of memory");
	kid_ready_wait();
	for (seq = 0; !stopped(seq); seq++) {
		unsigned v = (unsigned)(seq % BM_VARIANTS);

		bm_stamp(e.bufs[v], c->size, (uint32_t)k, seq, e.psum[v], 0);
		if (opt.corrupt >= 0 && (uint64_t)opt.corrupt == seq)
			e.bufs[v][c->size - 1] ^= 0x10;
		rc = shmk_ring_write(r, e.bufs[v], c->size, -1);
		if (opt.corrupt >= 0 && (uint64_t)opt.corrupt == seq)
			e.bufs[v][c->size - 1] ^= 0x10;
		if (rc < 0)
			kid_fail(k, rc, "shmk_ring_write: %s",
				 shmk_strerror(rc));
	}
	ctl->kid[k].msgs = seq;
	shmk_ring_close(r);
}

static void chart_r(int k, void *arg)
{
	struct chart *c = arg;
	struct kid *me = &ctl->kid[k];
	unsigned char *buf = aligned_alloc(64, (c->size + 63) & ~(size_t)63);
	uint64_t last[MAX_KIDS], n = 0;
	struct shmk_ring *r;
	struct bm_hdr h;
	ssize_t len;
	int rc;

	if (c->nw == 1 && c->nr == 1)
		pin(1);
	for (int w = 0; w < MAX_KIDS; w++)
		last[w] = UINT64_MAX;
	rc = shmk_ring_open(c->name, NULL, &r);
	if (rc < 0 || !buf)
		kid_fail(k, rc, "shmk_ring_open: %s", shmk_strerror(rc));
	kid_ready_wait();
	while ((len = shmk_ring_read(r, buf, c->size, -1)) >= 0) {
		rc = bm_check(buf, (size_t)len, &h);
		if (rc < 0)
			kid_fail(k, -EBADMSG, "a message arrived %s",
				 rc == -1 ? "with a bad header"
					  : "corrupt (checksum mismatch)");
		if (h.writer >= (uint32_t)c->nw ||
		    (last[h.writer] != UINT64_MAX && h.seq <= last[h.writer]))
			kid_fail(k, -EBADMSG,
				 "message %llu of writer %u arrived after "
				 "%llu (repeated or out of order)",
				 (unsigned long long)h.seq, h.writer,
				 (unsigned long long)last[h.writer]);
		last[h.writer] = h.seq;
		me->cnt[h.writer]++;
		me->seqsum[h.writer] += h.seq;
		kid_mark(me, ++n);
	}
	if (len != -EPIPE)
		kid_fail(k, (int)len, "shmk_ring_read: %s",
			 shmk_strerror((int)len));
	me->t_end = now_ns();
	me->msgs = n;
	shmk_ring_close(r);
}

static void chart_shutdown(void *arg)
{
	struct chart *c = arg;

	shmk_ring_shutdown(c->r);
}

/* Exactly once: every message each writer sent arrived at one reader,
 * none twice (counts and sums of sequence numbers).  0, or -1 with r
 * failed. */
static int exactly_once(const struct chart *c, struct rec *r)
{
	for (int w = 0; w < c->nw; w++) {
		uint64_t sent = ctl->kid[w].msgs, cnt = 0, sum = 0;

		for (int k = c->nw; k < c->nw + c->nr; k++) {
			cnt += ctl->kid[k].cnt[w];
			sum += ctl->kid[k].seqsum[w];
		}
		if (cnt != sent || sum != (sent ? sent * (sent - 1) / 2 : 0)) {
			r->st = ST_FAIL;
			snprintf(r->why, sizeof(r->why),
				 "writer %d sent %llu messages, readers got "
				 "%llu (sums %llu / %llu)",
				 w, (unsigned long long)sent,
				 (unsigned long long)cnt,
				 (unsigned long long)sum,
				 (unsigned long long)(sent ? sent * (sent - 1) /
								      2
							   : 0));
			return -1;
		}
	}
	return 0;
}

/* The rate into repeat i of r, over the window: from the last reader to
 * open it to the last end. */
static void chart_rate(const struct chart *c, struct rec *r, int i)
{
	double n = 0, s, t_end = 0, t_mark = 0;
	int k;

	for (k = c->nw; k < c->nw + c->nr; k++) {
		struct kid *kd = &ctl->kid[k];

		if ((double)kd->t_end > t_end)
			t_end = (double)kd->t_end;
		if (!kd->t_mark) { /* this reader never got past warm-up */
			t_mark = (double)ctl->t_go;
			n = 0;
			break;
		}
		if ((double)kd->t_mark > t_mark)
			t_mark = (double)kd->t_mark;
	}
	if (t_mark == (double)ctl->t_go) {
		for (k = c->nw; k < c->nw + c->nr; k++)
			n += (double)ctl->kid[k].msgs;
	} else {
		/* Messages after each reader's mark, over the span from the
		 * earliest mark; close enough, both readers run together. */
		double first = t_mark;

		for (k = c->nw; k < c->nw + c->nr; k++) {
			n += (double)(ctl->kid[k].msgs - ctl->kid[k].n_mark);
			if ((double)ctl->kid[k].t_mark < first)
				first = (double)ctl->kid[k].t_mark;
		}
		t_mark = first;
	}
	s = (t_end - t_mark) / 1e9;
	r->mps[i] = n / s;
	r->gbps[i] = n * (double)r->size / s / 1e9;
	r->nrep = i + 1;
}

void measure_chart(struct rec *r, int i)
{
	struct chart c = {
		.size = r->size, .nw = (int)r->writers, .nr = (int)r->readers};
	int rc;

	chan_name(c.name, sizeof(c.name));
	rc = shmk_ring_create(c.name, r->nodes, r->size, NULL, &c.r);
	if (rc < 0) {
		r->st = ST_FAIL;
		snprintf(r->why, sizeof(r->why), "shmk_ring_create: %s",
			 shmk_strerror(rc));
		return;
	}
	rc = run_kids(c.nw, c.nr, chart_w, chart_r, &c, opt.secs,
		      chart_shutdown, r->why, sizeof(r->why));
	shmk_ring_close(c.r);
	shmk_unlink(c.name);
	if (rc < 0) {
		r->st = ST_FAIL;
		return;
	}
	if (exactly_once(&c, r) < 0)
		return;
	chart_rate(&c, r, i);
}
