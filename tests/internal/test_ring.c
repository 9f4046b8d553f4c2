/* SPDX-License-Identifier: MIT */
/*
 * test_ring - shmk_ring's semantics: the seed's example and ring tests
 * where they still apply, N nodes hold N messages, -EMSGSIZE both ways,
 * zero-length messages, timeouts, shutdown, zero-copy reserve/commit/
 * abort and acquire/release, reservation order, geometry limits, stats,
 * and a corrupt ring.
 *
 * White-box: src/internal.h for SHMK__HDR_SIZE (to find node 0's length
 * word in a ring's file) and shmk__ring_region() (to reach an anonymous
 * ring's mapping and overwrite its operation slots' intents): the API
 * gives no way to corrupt a live ring.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include "check.h"
#include "internal.h"

static const char *g_name;

static int child_reads_seed(void *arg)
{
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_ring *r;
	int v = 0;

	(void)arg;
	CHECK_OK(shmk_ring_open(g_name, &o, &r));
	CHECK_EQ(shmk_ring_nodes(r), 3);
	CHECK_EQ(shmk_ring_node_size(r), 4);
	CHECK_EQ(shmk_ring_read(r, &v, sizeof(v), 5000), 4);
	CHECK_EQ(v, 123);
	CHECK_EQ(shmk_ring_read(r, &v, sizeof(v), 5000), 4);
	CHECK_EQ(v, 456);
	CHECK_RC(shmk_ring_read(r, &v, sizeof(v), 0), -EAGAIN);
	CHECK_OK(shmk_ring_close(r));
	return 0;
}

/* The seed README: a 3-node ring of 4-byte nodes, 123 and 456. */
static void test_seed_example(void)
{
	struct shmk_ring *r;
	int v;

	CHECK_OK(shmk_ring_create(g_name, 3, 4, NULL, &r));
	v = 123;
	CHECK_OK(shmk_ring_write(r, &v, sizeof(v), 0));
	v = 456;
	CHECK_OK(shmk_ring_write(r, &v, sizeof(v), 0));
	CHECK_EQ(wait_child(spawn(child_reads_seed, NULL), 10000), 0);
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_unlink(g_name));
}

static void test_create_errors(void)
{
	struct shmk_ring *r = (void *)1, *o;

	CHECK_RC(shmk_ring_create(g_name, 1, 8, NULL, &r), -EINVAL);
	CHECK(r == NULL);
	CHECK_RC(shmk_ring_create(g_name, 0, 8, NULL, &r), -EINVAL);
	CHECK_RC(shmk_ring_create(g_name, 2, 0, NULL, &r), -EINVAL);
	CHECK_RC(shmk_ring_create(g_name, SIZE_MAX, 8, NULL, &r), -EINVAL);
	CHECK_RC(shmk_ring_create(g_name, 4, SIZE_MAX, NULL, &r), -EINVAL);
	CHECK_RC(shmk_ring_create(g_name, (size_t)1 << 30, (size_t)1 << 30,
				  NULL, &r),
		 -EINVAL); /* 2^60 bytes: the 64-bit sums are checked */
	CHECK_RC(shmk_ring_create("", 2, 1, NULL, &r), -EINVAL);
	CHECK_RC(shmk_ring_open(g_name, NULL, &r), -ENOENT);
	CHECK_OK(shmk_ring_create(g_name, 2, 1, NULL, &r));
	CHECK_RC(shmk_ring_create(g_name, 2, 1, NULL, &o), -EEXIST);
	CHECK_OK(shmk_ring_open(g_name, NULL, &o));
	CHECK_OK(shmk_ring_close(o));
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_unlink(g_name));
	CHECK_OK(shmk_ring_close(NULL));
	CHECK_EQ(shmk_ring_nodes(NULL), 0);
}

/* N nodes hold N messages; FIFO; lengths kept; -EMSGSIZE both ways. */
static void test_capacity_and_sizes(void)
{
	unsigned char buf[100], out[100];
	struct shmk_ring *r;
	struct shmk_ring_stats st;
	int i;

	CHECK_OK(shmk_ring_create(NULL, 5, 100, NULL, &r));
	for (i = 0; i < 5; i++) {
		memset(buf, i + 1, sizeof(buf));
		CHECK_OK(shmk_ring_write(r, buf, (size_t)(i * 20), 0));
	}
	CHECK_RC(shmk_ring_write(r, buf, 1, 0), -EAGAIN); /* full at N */
	CHECK_RC(shmk_ring_write(r, buf, 101, 0), -EMSGSIZE);
	CHECK_OK(shmk_ring_stats(r, &st));
	CHECK_EQ(st.lag, 5);
	CHECK_EQ(st.high_water, 5);
	/* The first message is empty: distinct from a timeout. */
	CHECK_EQ(shmk_ring_read(r, out, sizeof(out), 0), 0);
	/* Too small a destination: the message stays. */
	CHECK_RC(shmk_ring_read(r, out, 19, 0), -EMSGSIZE);
	CHECK_RC(shmk_ring_read(r, out, 0, 0), -EMSGSIZE);
	CHECK_EQ(shmk_ring_read(r, out, 20, 0), 20);
	CHECK_EQ(out[0], 2);
	for (i = 2; i < 5; i++) {
		CHECK_EQ(shmk_ring_read(r, out, sizeof(out), 0), i * 20);
		CHECK_EQ(out[0], i + 1);
		CHECK_EQ(out[i * 20 - 1], i + 1);
	}
	CHECK_RC(shmk_ring_read(r, out, sizeof(out), 0), -EAGAIN);
	CHECK_OK(shmk_ring_stats(r, &st));
	CHECK_EQ(st.written, 5);
	CHECK_EQ(st.read, 5);
	CHECK_EQ(st.bytes_written, 0 + 20 + 40 + 60 + 80);
	CHECK_EQ(st.bytes_read, st.bytes_written);
	CHECK_EQ(st.lag, 0);
	CHECK_RC(shmk_ring_write(r, NULL, 1, 0), -EINVAL);
	CHECK_OK(shmk_ring_write(r, NULL, 0, 0));
	CHECK_RC(shmk_ring_read(r, NULL, 1, 0), -EINVAL);
	CHECK_EQ(shmk_ring_read(r, NULL, 0, 0), 0);
	CHECK_RC(shmk_ring_write(r, buf, 1, -2), -EINVAL);
	CHECK_OK(shmk_ring_close(r));
}

/* The seed's sequential and two-node tests. */
static void test_two_nodes(void)
{
	struct shmk_ring *r;
	uint32_t i, v;

	CHECK_OK(shmk_ring_create(NULL, 2, 32, NULL, &r));
	for (i = 0; i < 1000; i++) {
		CHECK_OK(shmk_ring_write(r, &i, sizeof(i), 0));
		CHECK_EQ(shmk_ring_read(r, &v, sizeof(v), 0), sizeof(v));
		CHECK_EQ(v, i);
	}
	CHECK_OK(shmk_ring_close(r));
}

/* Reservation order is the read order, whatever the commit order. */
static void test_reservation_order(void)
{
	struct shmk_msg a, b, c, m;
	struct shmk_ring *r;
	int v;

	CHECK_OK(shmk_ring_create(NULL, 5, 8, NULL, &r));
	CHECK_OK(shmk_ring_reserve(r, &a, 0));
	CHECK_EQ(a.len, 8);
	CHECK_OK(shmk_ring_reserve(r, &b, 0));
	CHECK_OK(shmk_ring_reserve(r, &c, 0));
	*(int *)a.data = 1;
	*(int *)b.data = 2;
	*(int *)c.data = 3;
	a.len = b.len = c.len = sizeof(int);
	CHECK_OK(shmk_ring_commit(r, &c));
	CHECK_OK(shmk_ring_commit(r, &b));
	CHECK_RC(shmk_ring_read(r, &v, sizeof(v), 0), -EAGAIN);
	CHECK_OK(shmk_ring_commit(r, &a));
	CHECK_EQ(shmk_ring_read(r, &v, sizeof(v), 0), 4);
	CHECK_EQ(v, 1);
	CHECK_OK(shmk_ring_acquire(r, &m, 0));
	CHECK_EQ(m.len, 4);
	CHECK_EQ(*(int *)m.data, 2);
	CHECK_OK(shmk_ring_release(r, &m));
	CHECK_EQ(shmk_ring_read(r, &v, sizeof(v), 0), 4);
	CHECK_EQ(v, 3);
	/* Misuse is refused. */
	CHECK_RC(shmk_ring_commit(r, &a), -EINVAL);
	CHECK_RC(shmk_ring_release(r, &m), -EINVAL);
	CHECK_OK(shmk_ring_reserve(r, &a, 0));
	CHECK_RC(shmk_ring_release(r, &a), -EINVAL);
	a.len = 9;
	CHECK_RC(shmk_ring_commit(r, &a), -EMSGSIZE); /* still reserved */
	a.len = 0;
	CHECK_OK(shmk_ring_commit(r, &a));
	CHECK_EQ(shmk_ring_read(r, &v, sizeof(v), 0), 0);
	CHECK_OK(shmk_ring_close(r));
}

/* An aborted reservation is passed over; so is a run of them. */
static void test_abort(void)
{
	struct shmk_msg a, b, m;
	struct shmk_ring_stats st;
	struct shmk_ring *r;
	int v = 7, i;

	CHECK_OK(shmk_ring_create(NULL, 4, 8, NULL, &r));
	CHECK_OK(shmk_ring_reserve(r, &a, 0));
	CHECK_OK(shmk_ring_reserve(r, &b, 0));
	CHECK_OK(shmk_ring_write(r, &v, sizeof(v), 0));
	CHECK_OK(shmk_ring_abort(r, &a));
	CHECK_RC(shmk_ring_read(r, &v, sizeof(v), 0), -EAGAIN); /* b */
	CHECK_OK(shmk_ring_abort(r, &b));
	v = 0;
	CHECK_EQ(shmk_ring_read(r, &v, sizeof(v), 0), 4);
	CHECK_EQ(v, 7);
	for (i = 0; i < 4; i++) { /* a full ring of aborts */
		CHECK_OK(shmk_ring_reserve(r, &m, 0));
		CHECK_OK(shmk_ring_abort(r, &m));
	}
	CHECK_RC(shmk_ring_read(r, &v, sizeof(v), 0), -EAGAIN);
	CHECK_OK(shmk_ring_write(r, &v, sizeof(v), 0));
	CHECK_EQ(shmk_ring_read(r, &v, sizeof(v), 0), 4);
	CHECK_OK(shmk_ring_stats(r, &st));
	CHECK_EQ(st.aborted, 6);
	CHECK_EQ(st.written, 2);
	CHECK_EQ(st.read, 2);
	CHECK_OK(shmk_ring_close(r));
}

/* At most 16 messages held through one handle at once. */
static void test_busy(void)
{
	struct shmk_msg m[17];
	struct shmk_ring *r;
	int i;

	CHECK_OK(shmk_ring_create(NULL, 64, 8, NULL, &r));
	for (i = 0; i < 16; i++)
		CHECK_OK(shmk_ring_reserve(r, &m[i], 0));
	CHECK_RC(shmk_ring_reserve(r, &m[16], 0), -EBUSY);
	for (i = 0; i < 16; i++) {
		m[i].len = 0;
		CHECK_OK(shmk_ring_commit(r, &m[i]));
	}
	for (i = 0; i < 16; i++)
		CHECK_OK(shmk_ring_acquire(r, &m[i], 0));
	CHECK_RC(shmk_ring_acquire(r, &m[16], 0), -EBUSY);
	for (i = 0; i < 16; i++)
		CHECK_OK(shmk_ring_release(r, &m[i]));
	CHECK_OK(shmk_ring_close(r));
}

static void test_timeouts(void)
{
	struct shmk_ring *r;
	uint64_t t0;
	char c = 1;

	CHECK_OK(shmk_ring_create(NULL, 2, 1, NULL, &r));
	t0 = check_now_ms();
	CHECK_RC(shmk_ring_read(r, &c, 1, 100), -ETIMEDOUT);
	CHECK(check_now_ms() - t0 >= 100);
	CHECK(check_now_ms() - t0 < 1000);
	CHECK_OK(shmk_ring_write(r, &c, 1, 0));
	CHECK_OK(shmk_ring_write(r, &c, 1, 0));
	t0 = check_now_ms();
	CHECK_RC(shmk_ring_write(r, &c, 1, 100), -ETIMEDOUT);
	CHECK(check_now_ms() - t0 >= 100);
	CHECK(check_now_ms() - t0 < 1000);
	CHECK_OK(shmk_ring_close(r));
}

/* Blocks in read (arg 0) or write (arg 1) and reports what it got. */
static int child_blocked(void *arg)
{
	struct shmk_ring *r;
	char c = 0;
	int rc;

	CHECK_OK(shmk_ring_open(g_name, NULL, &r));
	if (arg)
		while ((rc = shmk_ring_write(r, &c, 1, 10000)) == 0)
			;
	else
		rc = (int)shmk_ring_read(r, &c, 1, 10000);
	CHECK_RC(rc, -EPIPE);
	CHECK_OK(shmk_ring_close(r));
	return 0;
}

static void test_shutdown(void)
{
	struct shmk_ring *r, *w;
	pid_t pid;
	uint64_t t0;
	char c = 5;

	/* Blocked readers and writers wake at once. */
	CHECK_OK(shmk_ring_create(g_name, 2, 1, NULL, &r));
	pid = spawn(child_blocked, (void *)0);
	sleep_ms(100);
	t0 = check_now_ms();
	CHECK_OK(shmk_ring_close(r));
	CHECK_EQ(wait_child(pid, 5000), 0);
	CHECK(check_now_ms() - t0 < 100);
	CHECK_OK(shmk_unlink(g_name));

	CHECK_OK(shmk_ring_create(g_name, 2, 1, NULL, &r));
	pid = spawn(child_blocked, (void *)1);
	sleep_ms(100);
	t0 = check_now_ms();
	CHECK_OK(shmk_ring_shutdown(r));
	CHECK_EQ(wait_child(pid, 5000), 0);
	CHECK(check_now_ms() - t0 < 100);
	/* Readers drain what is left, then get -EPIPE. */
	CHECK_EQ(shmk_ring_read(r, &c, 1, 0), 1);
	CHECK_EQ(shmk_ring_read(r, &c, 1, 0), 1);
	CHECK_RC(shmk_ring_read(r, &c, 1, 0), -EPIPE);
	CHECK_RC(shmk_ring_write(r, &c, 1, 0), -EPIPE);
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_unlink(g_name));

	/* A writer that opened and the creator's close: writes fail. */
	CHECK_OK(shmk_ring_create(g_name, 4, 1, NULL, &r));
	CHECK_OK(shmk_ring_open(g_name, NULL, &w));
	CHECK_OK(shmk_ring_write(w, &c, 1, 0));
	CHECK_OK(shmk_ring_close(r));
	CHECK_RC(shmk_ring_write(w, &c, 1, 0), -EPIPE);
	CHECK_EQ(shmk_ring_read(w, &c, 1, 0), 1);
	CHECK_RC(shmk_ring_read(w, &c, 1, -1), -EPIPE);
	CHECK_OK(shmk_ring_close(w));
	CHECK_OK(shmk_unlink(g_name));
}

/* Nodes of one byte and of 64 MiB. */
static void test_node_sizes(void)
{
	const size_t big = (size_t)64 << 20;
	struct shmk_ring *r;
	struct shmk_msg m;
	unsigned char *p;
	char c = 'x', d = 0;

	CHECK_OK(shmk_ring_create(NULL, 2, 1, NULL, &r));
	CHECK_OK(shmk_ring_write(r, &c, 1, 0));
	CHECK_EQ(shmk_ring_read(r, &d, 1, 0), 1);
	CHECK_EQ(d, 'x');
	CHECK_OK(shmk_ring_close(r));

	CHECK_OK(shmk_ring_create(NULL, 2, big, NULL, &r));
	CHECK_OK(shmk_ring_reserve(r, &m, 0));
	CHECK_EQ(m.len, big);
	CHECK_EQ((uintptr_t)m.data % 4096, 0); /* page aligned */
	p = m.data;
	p[0] = 1;
	p[big - 1] = 2;
	CHECK_OK(shmk_ring_commit(r, &m));
	CHECK_OK(shmk_ring_acquire(r, &m, 0));
	CHECK_EQ(m.len, big);
	p = m.data;
	CHECK_EQ(p[0], 1);
	CHECK_EQ(p[big - 1], 2);
	CHECK_OK(shmk_ring_release(r, &m));
	CHECK_OK(shmk_ring_close(r));
}

/* The seed's timeouts with a slow peer (threads): data intact. */
struct slow {
	struct shmk_ring *r;
	int slow_reader;
	_Atomic int timeouts;
};

static void *slow_peer_thread(void *arg)
{
	struct slow *s = arg;
	uint32_t v, i;

	for (i = 0; i < 1000; i++) {
		ssize_t n;

		if (s->slow_reader)
			sleep_ms(1);
		while ((n = shmk_ring_read(s->r, &v, sizeof(v),
					   s->slow_reader ? 1000 : 1)) ==
		       -ETIMEDOUT)
			atomic_fetch_add(&s->timeouts, 1);
		CHECK_EQ(n, sizeof(v));
		CHECK_EQ(v, i);
	}
	return NULL;
}

static void test_slow_peers(void)
{
	int slow_reader;

	for (slow_reader = 0; slow_reader < 2; slow_reader++) {
		struct slow s = {.slow_reader = slow_reader};
		pthread_t t;
		uint32_t i;
		int rc;

		CHECK_OK(shmk_ring_create(NULL, 2, 32, NULL, &s.r));
		CHECK_OK(pthread_create(&t, NULL, slow_peer_thread, &s));
		for (i = 0; i < 1000; i++) {
			if (!slow_reader)
				sleep_ms(1);
			while ((rc = shmk_ring_write(s.r, &i, sizeof(i),
						     slow_reader ? 1 : 1000)) ==
			       -ETIMEDOUT)
				atomic_fetch_add(&s.timeouts, 1);
			CHECK_OK(rc);
		}
		CHECK_OK(pthread_join(t, NULL));
		CHECK(atomic_load(&s.timeouts) >= 1);
		CHECK_OK(shmk_ring_close(s.r));
	}
}

/* A corrupt ring fails closed: -EBADMSG, no crash; others go on. */
static void test_corrupt(void)
{
	struct shmk_ring *r, *other;
	struct shmk_stat st;
	int v = 1;
	char path[256];
	int fd;
	uint64_t bad = UINT64_C(1) << 50, off;

	CHECK_OK(shmk_ring_create(g_name, 4, 8, NULL, &r));
	CHECK_OK(shmk_ring_create(NULL, 4, 8, NULL, &other));
	CHECK_OK(shmk_ring_write(r, &v, sizeof(v), 0));
	/* Scribble a length far past the node size. */
	CHECK_OK(shmk_path(g_name, path, sizeof(path)));
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	off = SHMK__HDR_SIZE + 128 * 1024 + 8; /* node 0's len */
	CHECK_EQ(pwrite(fd, &bad, sizeof(bad), (off_t)off), sizeof(bad));
	close(fd);
	CHECK_RC(shmk_ring_read(r, &v, sizeof(v), 0), -EBADMSG);
	CHECK_RC(shmk_ring_write(r, &v, sizeof(v), 0), -EBADMSG); /* poisoned */
	CHECK_OK(shmk_ring_write(other, &v, sizeof(v), 0));
	CHECK_EQ(shmk_ring_read(other, &v, sizeof(v), 0), sizeof(v));
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK_EQ(st.kind, SHMK_KIND_RING);
	CHECK_EQ(st.geom[0], 4);
	CHECK_OK(shmk_ring_close(other));
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_unlink(g_name));

	/* Positions far ahead of every node (a lie: a node is never more
	 * than a lap behind): -EBADMSG at once, no endless "recovery". */
	CHECK_OK(shmk_ring_create(g_name, 4, 8, NULL, &r));
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	bad = 1000000000;
	CHECK_EQ(pwrite(fd, &bad, sizeof(bad), 0x400), sizeof(bad)); /* head */
	CHECK_EQ(pwrite(fd, &bad, sizeof(bad), 0x440), sizeof(bad)); /* tail */
	close(fd);
	{
		uint64_t t0 = check_now_ms();

		CHECK_RC(shmk_ring_write(r, &v, sizeof(v), 1000), -EBADMSG);
		CHECK(check_now_ms() - t0 < 500);
	}
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_unlink(g_name));
}

/*
 * A peer that overwrites our operation slots' intents (docs/format.md
 * 5.5.1) does not take our messages from us: commit, abort and release
 * still work, and the handle keeps all 16 slots (found by fuzz_ring; the
 * check used to read the shared intent back, so each such message failed
 * with -EINVAL and its slot was lost to the handle for good).
 */
static void test_intent_overwritten(void)
{
	struct shmk_ring *r;
	struct shmk_msg m;
	char *hdr;
	int i, k, v = 5;

	CHECK_OK(shmk_ring_create(NULL, 4, 8, NULL, &r));
	hdr = (char *)shmk__ring_region(r)->hdr;
	for (i = 0; i < 3 * 16 + 1; i++) {
		if (i % 3 == 2)
			CHECK_OK(shmk_ring_write(r, &v, sizeof(v), 0));
		if (i % 3 == 2)
			CHECK_OK(shmk_ring_acquire(r, &m, 0));
		else
			CHECK_OK(shmk_ring_reserve(r, &m, 0));
		/* Our participant slot is 0: its block's 16 intents. */
		for (k = 0; k < 16; k++)
			atomic_store((_Atomic uint64_t *)(hdr + SHMK__HDR_SIZE +
							  64 * k),
				     UINT64_C(0xdead));
		if (i % 3 == 0) {
			m.len = 1;
			CHECK_OK(shmk_ring_commit(r, &m));
			CHECK_EQ(shmk_ring_read(r, &v, sizeof(v), 0), 1);
		} else if (i % 3 == 1) {
			CHECK_OK(shmk_ring_abort(r, &m));
		} else {
			CHECK_OK(shmk_ring_release(r, &m));
		}
		/* What we gave back is no longer ours. */
		CHECK_RC(shmk_ring_release(r, &m), -EINVAL);
		CHECK_RC(shmk_ring_commit(r, &m), -EINVAL);
	}
	CHECK_OK(shmk_ring_close(r));
}

/* SHMK_F_KEEP: the creator's close leaves the ring usable. */
static void test_keep(void)
{
	struct shmk_opts o = {.flags = SHMK_F_KEEP};
	struct shmk_ring *r;
	struct shmk_stat st;
	char c = 0;

	CHECK_OK(shmk_ring_create(g_name, 4, 8, &o, &r));
	CHECK_OK(shmk_ring_write(r, "k", 1, 0));
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK_EQ(st.state, SHMK_STATE_READY);
	CHECK_EQ(st.flags, SHMK_F_KEEP);
	CHECK_EQ(st.creator_alive, 0);
	CHECK_OK(shmk_ring_open(g_name, NULL, &r));
	CHECK_EQ(shmk_ring_read(r, &c, 1, 0), 1);
	CHECK_EQ(c, 'k');
	CHECK_OK(shmk_ring_write(r, "l", 1, 0));
	CHECK_OK(shmk_ring_close(r));
	/* Without the flag the same sequence ends in a shut-down ring. */
	CHECK_OK(shmk_unlink(g_name));
	CHECK_OK(shmk_ring_create(g_name, 4, 8, NULL, &r));
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK_EQ(st.state, SHMK_STATE_SHUTDOWN);
	CHECK_EQ(st.flags, 0);
	CHECK_OK(shmk_ring_open(g_name, NULL, &r));
	CHECK_RC(shmk_ring_write(r, "m", 1, 0), -EPIPE);
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_unlink(g_name));
}

/* The high-water mark is the most messages that waited, exactly. */
static void test_high_water(void)
{
	static const size_t nodes[] = {2, 5, 64, 256};
	struct shmk_ring_stats st;
	struct shmk_ring *r;
	unsigned i;
	size_t k;
	char c;

	for (i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		size_t n = nodes[i];

		CHECK_OK(shmk_ring_create(NULL, n, 1, NULL, &r));
		for (k = 0; k < n - 1; k++)
			CHECK_OK(shmk_ring_write(r, "x", 1, 0));
		CHECK_OK(shmk_ring_stats(r, &st));
		CHECK_EQ(st.high_water, n - 1);
		/* Lower fill levels later leave it as it was. */
		CHECK_EQ(shmk_ring_read(r, &c, 1, 0), 1);
		for (k = 0; k < 3 * n; k++) {
			CHECK_OK(shmk_ring_write(r, "y", 1, 0));
			CHECK_EQ(shmk_ring_read(r, &c, 1, 0), 1);
		}
		CHECK_OK(shmk_ring_stats(r, &st));
		CHECK_EQ(st.high_water, n - 1);
		while (shmk_ring_write(r, "z", 1, 0) == 0)
			;
		CHECK_OK(shmk_ring_stats(r, &st));
		CHECK_EQ(st.high_water, n);
		CHECK_OK(shmk_ring_close(r));
	}
}

/* Every node's data starts on a cache line (a page from a page up). */
static void test_alignment(void)
{
	static const size_t sizes[] = {1, 3, 63, 64, 65, 100, 4095, 4096, 5000};
	struct shmk_ring *r;
	struct shmk_msg m[3];
	unsigned i, k;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uintptr_t align = sizes[i] >= 4096 ? 4096 : 64;

		CHECK_OK(shmk_ring_create(NULL, 3, sizes[i], NULL, &r));
		for (k = 0; k < 3; k++) {
			CHECK_OK(shmk_ring_reserve(r, &m[k], 0));
			CHECK_EQ((uintptr_t)m[k].data % align, 0);
			CHECK(k == 0 ||
			      (char *)m[k].data >=
				      (char *)m[k - 1].data + sizes[i]);
			m[k].len = 0;
			CHECK_OK(shmk_ring_commit(r, &m[k]));
		}
		CHECK_OK(shmk_ring_close(r));
	}
}

/* CPU time of this process so far, in microseconds. */
static uint64_t cpu_us(void)
{
	struct rusage ru;

	CHECK_OK(getrusage(RUSAGE_SELF, &ru));
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* Blocks 1 s on an empty ring (arg 0) or a full one (arg 1); exits 0 if
 * that cost under 50 ms of CPU (5 %): once the spin budget is spent, a
 * waiter sleeps. */
static int child_idle(void *arg)
{
	struct shmk_ring *r;
	uint64_t t0;
	char c = 0;
	int rc;

	CHECK_OK(shmk_ring_open(g_name, NULL, &r));
	t0 = cpu_us();
	if (arg)
		rc = shmk_ring_write(r, &c, 1, 1000);
	else
		rc = (int)shmk_ring_read(r, &c, 1, 1000);
	t0 = cpu_us() - t0;
	CHECK_RC(rc, -ETIMEDOUT);
	printf("  a %s waiting 1 s used %.2f ms of CPU\n",
	       arg ? "writer" : "reader", (double)t0 / 1000);
	CHECK_OK(shmk_ring_close(r));
	return t0 < 50000 ? 0 : 1;
}

static void test_idle_waiters(void)
{
	struct shmk_ring *r;

	CHECK_OK(shmk_ring_create(g_name, 2, 1, NULL, &r));
	CHECK_EQ(wait_child(spawn(child_idle, (void *)0), 10000), 0);
	CHECK_OK(shmk_ring_write(r, "a", 1, 0));
	CHECK_OK(shmk_ring_write(r, "b", 1, 0));
	CHECK_EQ(wait_child(spawn(child_idle, (void *)1), 10000), 0);
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_unlink(g_name));
}

int main(void)
{
	check_init();
	g_name = tname("ring");
	test_seed_example();
	test_create_errors();
	test_capacity_and_sizes();
	test_high_water();
	test_alignment();
	test_two_nodes();
	test_reservation_order();
	test_abort();
	test_busy();
	test_timeouts();
	test_shutdown();
	test_idle_waiters();
	test_node_sizes();
	test_slow_peers();
	test_corrupt();
	test_keep();
	test_intent_overwritten();
	printf("test_ring: ok\n");
	return 0;
}
