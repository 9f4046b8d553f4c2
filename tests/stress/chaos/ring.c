/* SPDX-License-Identifier: MIT */
/*
 * ring.c - test_chaos's rings.  Two writers and two readers use the
 * victim ring beside a control ring, on which every message must arrive
 * once, in each writer's order, intact; on the victim, every call returns
 * success or an error of ok_ring_io[].  The chaos scribbles on the
 * victim ring and on the rings of the victim rpc server's channels: head
 * and tail, the eventcounts, node sequences and lengths, operation slots
 * and their counters, and (channel rings) the frame headers in nodes.
 */
#include "harness.h"

/* docs/format.md: a ring's operation slots, positions and roles. */
#define RING_PARTS  0x3000 /* 128 blocks of 16 operation slots */
#define POS_MAX	    ((UINT64_C(1) << 62) - 1)
#define ROLE_W	    (UINT64_C(1) << 62)
#define ROLE_R	    (UINT64_C(2) << 62)
#define SKIP_BIT    (UINT64_C(1) << 63)
#define FRAME_MAGIC 0x50524b53u

/* What a ring's calls may return (harness.h says why each). */
static const int ok_ring_io[] = {EBADMSG, ETIMEDOUT, EAGAIN, EPIPE, EBUSY, 0};

static struct shmk_ring *vring_open(void)
{
	struct shmk_ring *r;

	if (!may_retry())
		return NULL;
	if (VICTIM(K_OPEN, ok_open, shmk_ring_open(n_vring, &wait_open, &r)) <
	    0) {
		back_off(4);
		return NULL;
	}
	/* A forged node size of 1 to 63 gives the same file size, so the
	 * ring is a valid one of another geometry: not the ring we use
	 * (writes over its node size would fail with -EMSGSIZE). */
	if (shmk_ring_nodes(r) != 16 || shmk_ring_node_size(r) != NODE) {
		atomic_fetch_add(&book->forged_geometry, 1);
		CHECK_OK(shmk_ring_close(r));
		back_off(4);
		return NULL;
	}
	return r;
}

static void vring_drop(struct shmk_ring **r)
{
	CHECK_OK(shmk_ring_close(*r));
	*r = NULL;
}

/* The things both ends do now and then on the victim ring. */
static void vring_extras(struct shmk_ring *vr)
{
	struct shmk_ring_stats rs;
	struct shmk_stat st;

	VICTIM(K_RING, ok_none, shmk_ring_stats(vr, &rs));
	VICTIM(K_OPEN, ok_stat, shmk_stat(n_vring, &st));
}

int ring_writer(void *arg)
{
	uint32_t w = (uint32_t)(uintptr_t)arg;
	int fds = count_fds();
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_ring *cr, *vr = NULL;
	unsigned char buf[NODE];
	uint64_t seq = 0, vseq = 0, it;
	struct shmk_msg m;
	long rc;

	rnd_seed(10 + w);
	CHECK_OK(shmk_ring_open(n_cring, &o, &cr));
	for (it = 0; !stopping() && seq < MAXSEQ; it++) {
		size_t len = build(buf, w, seq, NODE - WIRE);

		/* Control: must go through, in order, whole. */
		if (it & 1) {
			CTRL(shmk_ring_write(cr, buf, len, CTRL_MS));
		} else {
			CTRL(shmk_ring_reserve(cr, &m, CTRL_MS));
			memcpy(m.data, buf, len);
			m.len = len;
			CTRL(shmk_ring_commit(cr, &m));
		}
		atomic_store(&book->committed[w], ++seq);

		if (!vr && !(vr = vring_open()))
			continue;
		len = build(buf, w, vseq++, NODE - WIRE);
		switch (rnd() % 4) {
		case 0:
		case 1:
			rc = VICTIM(K_RING, ok_ring_io,
				    shmk_ring_write(vr, buf, len,
						    (int)(rnd() % 3)));
			break;
		default:
			rc = VICTIM(
				K_RING, ok_ring_io,
				shmk_ring_reserve(vr, &m, (int)(rnd() % 3)));
			if (rc < 0)
				break;
			CHECK(m.len == NODE);
			memcpy(m.data, buf, len);
			m.len = len;
			/* A slow writer: the chaos may come meanwhile. */
			if (rnd() % 4 == 0)
				sleep_us((unsigned)(rnd() % 1000));
			if (rnd() % 8)
				VICTIM(K_RING, ok_none,
				       shmk_ring_commit(vr, &m));
			else
				VICTIM(K_RING, ok_none,
				       shmk_ring_abort(vr, &m));
		}
		if (it % 64 == 0)
			vring_extras(vr);
		if (rc == -EBADMSG || rc == -EPIPE || it % 256 == 0)
			vring_drop(&vr);
	}
	atomic_fetch_add(&book->writers_done, 1);
	if (vr)
		vring_drop(&vr);
	CHECK_OK(shmk_ring_close(cr));
	CHECK_EQ(count_fds(), fds);
	return 0;
}

static uint64_t committed(void)
{
	uint64_t n = 0;
	int w;

	for (w = 0; w < NWRITERS; w++)
		n += atomic_load(&book->committed[w]);
	return n;
}

int ring_reader(void *arg)
{
	uint32_t me = (uint32_t)(uintptr_t)arg;
	int fds = count_fds();
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_ring *cr, *vr = NULL;
	uint64_t last[NWRITERS], it, idle_since = 0;
	unsigned char buf[NODE];
	struct shmk_msg m;
	struct wire h;
	long n;
	int i;

	rnd_seed(20 + me);
	for (i = 0; i < NWRITERS; i++)
		last[i] = UINT64_MAX;
	CHECK_OK(shmk_ring_open(n_cring, &o, &cr));
	for (it = 0;; it++) {
		int done = atomic_load(&book->writers_done) == NWRITERS;

		if (it & 1) {
			n = shmk_ring_read(cr, buf, sizeof(buf), 20);
		} else {
			n = shmk_ring_acquire(cr, &m, 20);
			if (n == 0) {
				CHECK(m.len <= NODE);
				memcpy(buf, m.data, m.len);
				n = (long)m.len;
				CTRL(shmk_ring_release(cr, &m));
			}
		}
		if (n >= 0) {
			/* Control: intact, once, in each writer's order. */
			if (!intact(buf, (size_t)n, &h)) {
				fprintf(stderr,
					"control ring: a message of "
					"%ld bytes is not intact\n",
					n);
				exit(1);
			}
			CHECK(h.seq < MAXSEQ);
			CHECK(last[h.writer] == UINT64_MAX ||
			      h.seq > last[h.writer]);
			last[h.writer] = h.seq;
			CHECK_EQ(atomic_exchange(&book->seen[h.writer][h.seq],
						 1),
				 0);
			atomic_fetch_add(&book->delivered, 1);
			idle_since = 0;
		} else if (n == -ETIMEDOUT || n == -EAGAIN) {
			/* Done when the writers are and all they wrote came,
			 * or nothing came for long (the parent then finds
			 * what did not). */
			if (!done)
				idle_since = 0;
			else if (atomic_load(&book->delivered) == committed())
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

		if (!vr && !(vr = vring_open()))
			continue;
		if (rnd() % 2) {
			n = VICTIM(K_RING, ok_ring_io,
				   shmk_ring_read(vr, buf, sizeof(buf),
						  (int)(rnd() % 3)));
		} else {
			n = VICTIM(K_RING, ok_ring_io,
				   shmk_ring_acquire(vr, &m, (int)(rnd() % 3)));
			if (n == 0) {
				/* Whatever the length says, it is in the
				 * node: touch every byte of it. */
				CHECK(m.len <= NODE);
				memcpy(buf, m.data, m.len);
				n = (long)m.len;
				if (rnd() % 4 == 0) /* a slow reader */
					sleep_us((unsigned)(rnd() % 1000));
				VICTIM(K_RING, ok_none,
				       shmk_ring_release(vr, &m));
			}
		}
		if (n >= 0 && !intact(buf, (size_t)n, &h))
			atomic_fetch_add(&book->garbled, 1);
		if (it % 64 == 0)
			vring_extras(vr);
		if (n == -EBADMSG || n == -EPIPE || it % 256 == 0)
			vring_drop(&vr);
	}
	if (vr)
		vring_drop(&vr);
	CHECK_OK(shmk_ring_close(cr));
	CHECK_EQ(count_fds(), fds);
	return 0;
}

/* Every committed control message was delivered, once. */
void ring_final(void)
{
	uint64_t w, s, total = 0;

	for (w = 0; w < NWRITERS; w++) {
		uint64_t n = atomic_load(&book->committed[w]);

		CHECK(n > 0);
		for (s = 0; s < n; s++)
			if (!atomic_load(&book->seen[w][s])) {
				fprintf(stderr,
					"control ring: writer %llu message "
					"%llu (of %llu) lost\n",
					(unsigned long long)w,
					(unsigned long long)s,
					(unsigned long long)n);
				exit(1);
			}
		total += n;
	}
	CHECK_EQ(atomic_load(&book->delivered), total);
}

/* Node i of a ring near its positions, mostly. */
static uint64_t near_node(struct target *t, uint64_t pos)
{
	return (rnd() % 2 ? pos + rnd() % 3 - 1 : rnd()) % t->n;
}

void pick_ring(struct target *t, struct field *f)
{
	uint64_t head = load(t, O_CTL, 8), tail = load(t, O_CTL + 0x40, 8);
	uint64_t n = t->n, i, d;
	unsigned r = (unsigned)(rnd() % (t->type == T_CHAN ? 14 : 10));

	if (!n) { /* no layout: only the control words */
		r = (unsigned)(rnd() % 3);
	}
	switch (r) {
	case 0:
	case 1:
		f->off = r ? O_CTL + 0x40 : O_CTL; /* tail : head */
		f->width = 8;
		hint(f, r ? head : tail);
		hint(f, (r ? head : tail) + 1);
		hint(f, (r ? tail : head) + n);
		hint(f, (r ? tail : head) - n);
		hint(f, (r ? tail : head) + n + 1);
		hint(f, POS_MAX);
		hint(f, POS_MAX + 1);
		hint(f, SKIP_BIT);
		break;
	case 2:
		f->off = O_CTL + 0x80 + 0x40 * (rnd() % 2); /* eventcounts */
		f->width = 4;
		hint(f, load(t, f->off, 4) | 1);
		hint(f, load(t, f->off, 4) + 2);
		break;
	case 3:
	case 4:
	case 5:
	case 6:
		i = near_node(t, rnd() % 2 ? head : tail);
		d = RING_DESC + 64 * i;
		f->off = d; /* seq */
		f->width = 8;
		hint(f, head);
		hint(f, tail);
		hint(f, tail + 1);
		hint(f, i + n * (rnd() % 4));
		hint(f, i + n * (rnd() % 4) + 1);
		hint(f, (i + n * (rnd() % 4) + 1) | SKIP_BIT);
		hint(f, (tail + 1) | SKIP_BIT);
		hint(f, i + n * ((head + n) / n));
		hint(f, POS_MAX);
		hint(f, POS_MAX + 1);
		break;
	case 7:
		i = near_node(t, tail);
		f->off = RING_DESC + 64 * i + 8; /* len */
		f->width = 8;
		hint(f, t->node);
		hint(f, t->node + 1);
		hint(f, 48);
		hint(f, 47);
		break;
	case 8:
		/* An operation slot's intent: a position of a live role. */
		f->off = RING_PARTS + 1024 * (rnd() % 8) + 64 * (rnd() % 2);
		f->width = 8;
		hint(f, (head - 1) | ROLE_W);
		hint(f, head | ROLE_W);
		hint(f, tail | ROLE_R);
		hint(f, (tail - 1) | ROLE_R);
		hint(f, (head - 1) | ROLE_R);
		hint(f, 0);
		break;
	case 9:
		f->off = RING_PARTS + 1024 * (rnd() % 8) + 64 * (rnd() % 2) +
			 8 + 8 * (rnd() % 7); /* counters */
		f->width = 8;
		break;
	default: {
		/* A frame header in a node (rpc channel rings). */
		static const struct {
			uint8_t off, width;
		} fr[] = {{0, 4},  {4, 2},  {6, 1},  {7, 1},  {8, 4},
			  {12, 4}, {16, 8}, {24, 8}, {32, 8}, {40, 8}};
		unsigned k = (unsigned)(rnd() % 10);

		i = near_node(t, rnd() % 2 ? head : tail);
		if (t->node < 48)
			break;
		f->off = t->data + i * t->stride + fr[k].off;
		f->width = fr[k].width;
		hint(f, FRAME_MAGIC);
		hint(f, 1 + rnd() % 7);
		hint(f, t->node - 48);
		hint(f, t->node - 47);
		hint(f, 4096);
		hint(f, 4097);
		hint(f, (uint64_t) - (int64_t)(1 + rnd() % 4096));
		hint(f, 1 + rnd() % 64);
	}
	}
}
