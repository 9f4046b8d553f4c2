/* SPDX-License-Identifier: MIT */
/*
 * test_topic - shmk_topic, publish/subscribe:
 *
 *   the calls and their errors; every size from 0 to max_msg delivered
 *   intact to every subscriber, across the end of the log; a message too
 *   big for the destination stays next; history and the latest value;
 *   zero-copy loans (commit, abandon) and reads (acquire, release);
 *   lossless: a slow subscriber holds publishers up and is named, a dead
 *   one does not; lossy: a lapped subscriber is told, with the count, and
 *   a message overwritten while held is reported at release; a publisher
 *   killed inside a loan is skipped and counted; the three backings; 100
 *   subscribers at once; waiting for subscribers; shutdown; and 2 publishers x 3 subscribers in
 *   processes seeing one total order, every payload checked.
 *
 * "threads" runs the many-publisher test as threads of one process (for
 * TSan), in both policies.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "check.h"

static unsigned char pat(uint64_t seq, size_t i)
{
	return (unsigned char)(seq * 37u + i * 11u + 5u);
}

static size_t fill(unsigned char *b, uint64_t seq, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		b[i] = pat(seq, i);
	return len;
}

static int intact(const unsigned char *b, uint64_t seq, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != pat(seq, i))
			return 0;
	return 1;
}

/* Copies a message read in place from a lossy topic, which a publisher
 * may be overwriting (release then says so): ThreadSanitizer does not
 * watch this copy, as the race is the design. */
#if defined(__SANITIZE_THREAD__)
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

static struct shmk_opts waiting = {.wait_ms = 5000};

static struct shmk_topic *sub_open(const char *name, int history)
{
	struct shmk_topic *t;

	CHECK_OK(shmk_topic_open(name, &waiting, &t));
	CHECK_OK(shmk_topic_subscribe(t, history));
	return t;
}

static void test_args(void)
{
	const char *name = tname("args");
	struct shmk_opts lossy = {.flags = SHMK_F_LOSSY};
	struct shmk_topic *t, *s;
	struct shmk_msg m, m2;
	char buf[64];

	CHECK_RC(shmk_topic_create(name, 4096, 100, NULL, NULL), -EINVAL);
	CHECK_RC(shmk_topic_create(name, 3000, 100, NULL, &t), -EINVAL);
	CHECK(t == NULL);
	CHECK_RC(shmk_topic_create(name, 2048, 100, NULL, &t), -EINVAL);
	CHECK_RC(shmk_topic_create(name, 4096, 0, NULL, &t), -EINVAL);
	CHECK_RC(shmk_topic_create(name, 4096, 2049, NULL, &t), -EINVAL);
	CHECK_OK(shmk_topic_create(name, 4096, 2048, NULL, &t));
	CHECK_EQ(shmk_topic_capacity(t), 4096);
	CHECK_EQ(shmk_topic_max_msg(t), 2048);
	CHECK_EQ(shmk_topic_lossy(t), 0);
	CHECK_RC(shmk_topic_open(name, &lossy, &s), -EINVAL);
	CHECK_OK(shmk_topic_open(name, NULL, &s));

	CHECK_RC(shmk_topic_loan(t, 2049, &m, 0), -EMSGSIZE);
	CHECK_RC(shmk_topic_publish(t, buf, 4000, 0), -EMSGSIZE);
	CHECK_RC(shmk_topic_publish(t, NULL, 1, 0), -EINVAL);
	CHECK_RC(shmk_topic_loan(t, 1, &m, -2), -EINVAL);
	CHECK_RC(shmk_topic_receive(s, buf, sizeof(buf), 0), -ENOTCONN);
	CHECK_RC(shmk_topic_acquire(s, &m, 0), -ENOTCONN);
	CHECK_RC(shmk_topic_unsubscribe(s), -ENOTCONN);
	CHECK_RC(shmk_topic_subscribe(s, -2), -EINVAL);
	CHECK_RC(shmk_topic_latest(s, buf, sizeof(buf)), -EAGAIN);
	CHECK_OK(shmk_topic_subscribe(s, 0));
	CHECK_RC(shmk_topic_subscribe(s, 0), -EALREADY);
	CHECK_RC(shmk_topic_receive(s, buf, sizeof(buf), 0), -EAGAIN);
	CHECK_RC(shmk_topic_receive(s, buf, sizeof(buf), 20), -ETIMEDOUT);

	/* Loans: commit one longer than loaned is refused and it stays
	 * loaned; a loan committed twice, or of another handle, is not. */
	CHECK_OK(shmk_topic_loan(t, 10, &m, 0));
	CHECK_EQ(m.len, 10);
	m.len = 11;
	CHECK_RC(shmk_topic_commit(t, &m), -EMSGSIZE);
	m.len = 3;
	memcpy(m.data, "abc", 3);
	m2 = m;
	CHECK_RC(shmk_topic_commit(s, &m), -EINVAL);
	CHECK_OK(shmk_topic_commit(t, &m));
	CHECK_RC(shmk_topic_commit(t, &m2), -EINVAL);
	CHECK_RC(shmk_topic_abandon(t, &m2), -EINVAL);
	/* An abandoned loan is passed over. */
	CHECK_OK(shmk_topic_loan(t, 5, &m, 0));
	CHECK_OK(shmk_topic_abandon(t, &m));
	CHECK_OK(shmk_topic_publish(t, "de", 2, 0));

	CHECK_OK(shmk_topic_acquire(s, &m, 0));
	CHECK_EQ(m.len, 3);
	CHECK(!memcmp(m.data, "abc", 3));
	CHECK_RC(shmk_topic_acquire(s, &m2, 0), -EBUSY);
	CHECK_RC(shmk_topic_receive(s, buf, sizeof(buf), 0), -EBUSY);
	m2 = m;
	m2.pos_++;
	CHECK_RC(shmk_topic_release(s, &m2), -EINVAL);
	CHECK_RC(shmk_topic_release(t, &m), -EINVAL);
	CHECK_OK(shmk_topic_release(s, &m));
	CHECK_RC(shmk_topic_release(s, &m), -EINVAL);
	CHECK_EQ(shmk_topic_receive(s, buf, sizeof(buf), 0), 2);
	CHECK(!memcmp(buf, "de", 2));
	CHECK_RC(shmk_topic_receive(s, buf, sizeof(buf), 0), -EAGAIN);
	{
		struct shmk_topic_stats st;

		CHECK_OK(shmk_topic_stats(s, &st));
		CHECK_EQ(st.published, 2);
		CHECK_EQ(st.bytes_published, 5);
		CHECK_EQ(st.abandoned, 1);
		CHECK_EQ(st.delivered, 2);
		CHECK_EQ(st.my_delivered, 2);
		CHECK_EQ(st.subscribers, 1);
		CHECK_EQ(st.my_lag, 0);
		CHECK_EQ(st.held, 3);
		CHECK_RC(shmk_topic_stats(s, NULL), -EINVAL);
	}
	CHECK_OK(shmk_topic_unsubscribe(s));
	CHECK_RC(shmk_topic_receive(s, buf, sizeof(buf), 0), -ENOTCONN);
	CHECK_OK(shmk_topic_close(s));
	{
		/* The slot s left is taken again: its counts stay in the
		 * topic's, the new handle's own start at 0. */
		struct shmk_topic_stats st;

		s = sub_open(name, 0);
		CHECK_OK(shmk_topic_publish(t, "f", 1, 0));
		CHECK_EQ(shmk_topic_receive(s, buf, sizeof(buf), 0), 1);
		CHECK_OK(shmk_topic_stats(s, &st));
		CHECK_EQ(st.delivered, 3);
		CHECK_EQ(st.my_delivered, 1);
		CHECK_OK(shmk_topic_close(s));
	}
	CHECK_OK(shmk_topic_close(t));
	CHECK_OK(shmk_topic_close(NULL));
	CHECK_EQ(shmk_topic_capacity(NULL), 0);
	CHECK_RC(shmk_topic_publish(NULL, "x", 1, 0), -EINVAL);
	CHECK_RC(shmk_topic_subscribe(NULL, 0), -EINVAL);
	/* Another kind's name is not a topic. */
	{
		struct shmk_buffer *b;

		CHECK_OK(
			shmk_buffer_create(tname("notatopic"), 4096, NULL, &b));
		CHECK(shmk_topic_open(tname("notatopic"), NULL, &s) < 0);
		CHECK_OK(shmk_buffer_close(b));
	}
	printf("  args: ok\n");
}

/* Every size, to two subscribers, many laps of a small log. */
static void test_sizes(void)
{
	const char *name = tname("sizes");
	size_t max = 1500, sizes[] = {0, 1, 63, 64, 65, 127, 1000, 1500};
	static unsigned char buf[4096];
	struct shmk_topic *t, *a, *b;
	uint64_t seq;
	struct shmk_msg m;

	CHECK_OK(shmk_topic_create(name, 4096, max, NULL, &t));
	a = sub_open(name, 0);
	b = sub_open(name, 0);
	for (seq = 0; seq < 2000; seq++) {
		size_t len = seq < 8 ? sizes[seq] : (seq * 7919) % (max + 1);

		if (seq % 2) {
			CHECK_OK(shmk_topic_loan(t, len, &m, 0));
			CHECK((char *)m.data + len <=
			      (char *)m.data + shmk_topic_capacity(t));
			fill(m.data, seq, len);
			CHECK_OK(shmk_topic_commit(t, &m));
		} else {
			fill(buf, seq, len);
			CHECK_OK(shmk_topic_publish(t, buf, len, 0));
		}
		memset(buf, 0, sizeof(buf));
		CHECK_EQ(shmk_topic_receive(a, buf, sizeof(buf), 0), len);
		CHECK(intact(buf, seq, len));
		CHECK_OK(shmk_topic_acquire(b, &m, 0));
		CHECK_EQ(m.len, len);
		CHECK(intact(m.data, seq, len));
		CHECK_OK(shmk_topic_release(b, &m));
	}
	/* Too big for the destination: it stays next. */
	fill(buf, 9, 100);
	CHECK_OK(shmk_topic_publish(t, buf, 100, 0));
	CHECK_RC(shmk_topic_receive(a, buf, 99, 0), -EMSGSIZE);
	CHECK_RC(shmk_topic_latest(a, buf, 99), -EMSGSIZE);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(shmk_topic_receive(a, buf, 100, 0), 100);
	CHECK(intact(buf, 9, 100));
	CHECK_OK(shmk_topic_close(a));
	CHECK_OK(shmk_topic_close(b));
	CHECK_OK(shmk_topic_close(t));
	printf("  sizes 0..%zu over many laps, copy and zero-copy: ok\n", max);
}

/* Messages of half the log always fit, wherever the last one ended:
 * lossless with a subscriber that keeps up, and lossy. */
static void test_half(void)
{
	static unsigned char buf[2048];
	struct shmk_opts lossy = {.flags = SHMK_F_LOSSY};
	size_t lens[] = {2048, 1, 2048, 65, 2047, 2048, 0, 1984, 2048};
	int pol;

	for (pol = 0; pol < 2; pol++) {
		const char *name = tname(pol ? "half_lossy" : "half");
		struct shmk_topic *t, *s;
		uint64_t seq;

		CHECK_OK(shmk_topic_create(name, 4096, 2048,
					   pol ? &lossy : NULL, &t));
		s = sub_open(name, 0);
		for (seq = 0; seq < 900; seq++) {
			size_t len = lens[seq % 9];

			fill(buf, seq, len);
			CHECK_OK(shmk_topic_publish(t, buf, len, 0));
			memset(buf, 0, sizeof(buf));
			CHECK_EQ(shmk_topic_receive(s, buf, sizeof(buf), 0),
				 len);
			CHECK(intact(buf, seq, len));
		}
		CHECK_OK(shmk_topic_close(s));
		CHECK_OK(shmk_topic_close(t));
	}
	printf("  messages of half the log, lap after lap, both policies: "
	       "ok\n");
}

static void test_history(void)
{
	const char *name = tname("hist");
	struct shmk_topic *t, *s;
	uint64_t i, v;
	char buf[16];

	CHECK_OK(shmk_topic_create(name, 1 << 16, 64, NULL, &t));
	CHECK_RC(shmk_topic_latest(t, buf, sizeof(buf)), -EAGAIN);
	for (i = 0; i < 10; i++) {
		CHECK_OK(shmk_topic_publish(t, &i, sizeof(i), 0));
		CHECK_EQ(shmk_topic_latest(t, &v, sizeof(v)), sizeof(v));
		CHECK_EQ(v, i);
	}
	/* The last 3; all; none; more than held is all. */
	s = sub_open(name, 3);
	for (i = 7; i < 10; i++) {
		CHECK_EQ(shmk_topic_receive(s, &v, sizeof(v), 0), sizeof(v));
		CHECK_EQ(v, i);
	}
	CHECK_RC(shmk_topic_receive(s, &v, sizeof(v), 0), -EAGAIN);
	CHECK_OK(shmk_topic_close(s));
	s = sub_open(name, -1);
	for (i = 0; i < 10; i++) {
		CHECK_EQ(shmk_topic_receive(s, &v, sizeof(v), 0), sizeof(v));
		CHECK_EQ(v, i);
	}
	CHECK_OK(shmk_topic_unsubscribe(s));
	CHECK_OK(shmk_topic_subscribe(s, 0));
	CHECK_RC(shmk_topic_receive(s, &v, sizeof(v), 0), -EAGAIN);
	CHECK_OK(shmk_topic_unsubscribe(s));
	CHECK_OK(shmk_topic_subscribe(s, 1000));
	CHECK_EQ(shmk_topic_receive(s, &v, sizeof(v), 0), sizeof(v));
	CHECK_EQ(v, 0);
	CHECK_OK(shmk_topic_close(s));
	CHECK_OK(shmk_topic_close(t));
	printf("  history 3 / all / none, latest: ok\n");
}

static int child_sub_sleep(void *arg)
{
	struct shmk_topic *t = sub_open(arg, 0);

	(void)t;
	printf("  subscriber %d ready\n", (int)getpid());
	for (;;)
		pause(); /* until killed */
	return 0;
}

/* Publishes until the log is full; returns how many went in. */
static int fill_up(struct shmk_topic *t, size_t len)
{
	static unsigned char buf[1024];
	int n = 0, rc;

	while ((rc = shmk_topic_publish(t, buf, len, 0)) == 0)
		n++;
	CHECK_RC(rc, -EAGAIN);
	return n;
}

static void test_lossless(void)
{
	const char *name = tname("lossless");
	struct shmk_topic *t, *s;
	struct shmk_topic_stats st;
	unsigned char buf[1024];
	uint64_t t0, t1;
	pid_t pid;
	int n, i;

	CHECK_OK(shmk_topic_create(name, 4096, 1024, NULL, &t));
	/* No subscriber: nothing holds publishers up. */
	for (i = 0; i < 500; i++)
		CHECK_OK(shmk_topic_publish(t, buf, 512, 0));
	s = sub_open(name, 0);
	n = fill_up(t, 512);
	CHECK(n >= 4 && n <= 8);
	t0 = check_now_ms();
	CHECK_RC(shmk_topic_publish(t, buf, 512, 50), -ETIMEDOUT);
	t1 = check_now_ms();
	CHECK(t1 - t0 >= 50);
	CHECK_OK(shmk_topic_stats(t, &st));
	CHECK_EQ(st.subscribers, 1);
	CHECK_EQ(st.slowest_pid, getpid());
	CHECK_EQ(st.slowest_lag, n);
	CHECK(st.full_waits >= 1);
	/* One taken makes room for one. */
	CHECK_EQ(shmk_topic_receive(s, buf, sizeof(buf), 0), 512);
	CHECK_OK(shmk_topic_publish(t, buf, 512, 0));
	CHECK_RC(shmk_topic_publish(t, buf, 512, 0), -EAGAIN);
	for (i = 0; i < n; i++)
		CHECK_EQ(shmk_topic_receive(s, buf, sizeof(buf), 0), 512);
	CHECK_RC(shmk_topic_receive(s, buf, sizeof(buf), 0), -EAGAIN);
	CHECK_OK(shmk_topic_close(s));

	/* A live subscriber in another process holds publishers up and is
	 * named; once killed it holds nobody. */
	pid = spawn(child_sub_sleep, (void *)name);
	for (i = 0; i < 500; i++) {
		CHECK_OK(shmk_topic_stats(t, &st));
		if (st.subscribers == 1)
			break;
		sleep_ms(10);
	}
	CHECK_EQ(st.subscribers, 1);
	n = fill_up(t, 512);
	CHECK_RC(shmk_topic_publish(t, buf, 512, 30), -ETIMEDOUT);
	CHECK_OK(shmk_topic_stats(t, &st));
	CHECK_EQ(st.slowest_pid, pid);
	CHECK_EQ(st.slowest_lag, n);
	kill(pid, SIGKILL);
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	t0 = check_now_ms();
	CHECK_OK(shmk_topic_publish(t, buf, 512, 5000));
	t1 = check_now_ms();
	for (i = 0; i < 100; i++)
		CHECK_OK(shmk_topic_publish(t, buf, 512, 0));
	CHECK_OK(shmk_topic_stats(t, &st));
	CHECK_EQ(st.subscribers, 0);
	CHECK_OK(shmk_topic_close(t));
	printf("  lossless: a slow subscriber waited for, a killed one "
	       "dropped (publish took %d ms): ok\n",
	       (int)(t1 - t0));
}

/* A topic holds as many messages as its stats say (slots) and shmk.h
 * says (capacity / 256 - 1, at least 63): a lossless one whose
 * subscriber takes nothing stops publishers exactly there. */
static void test_slots(void)
{
	static const size_t caps[] = {4096, 1 << 16, 1 << 20};
	const char *name = tname("slots");
	struct shmk_topic_stats st;
	struct shmk_topic *t, *s;
	uint64_t n, want;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		CHECK_OK(shmk_topic_create(name, caps[i], 64, NULL, &t));
		s = sub_open(name, 0);
		for (n = 0; (rc = shmk_topic_publish(t, "x", 1, 0)) == 0; n++)
			;
		CHECK_RC(rc, -EAGAIN);
		want = caps[i] / 256 < 64 ? 63 : caps[i] / 256 - 1;
		CHECK_EQ(n, want);
		CHECK_OK(shmk_topic_stats(t, &st));
		CHECK_EQ(st.slots, n);
		CHECK_EQ(st.held, n);
		CHECK_EQ(st.slowest_lag, n);
		CHECK_OK(shmk_topic_close(s));
		CHECK_OK(shmk_topic_close(t));
		CHECK_OK(shmk_unlink(name));
	}
	printf("  slots: a topic holds what its stats and shmk.h say: ok\n");
}

static void test_lossy(void)
{
	const char *name = tname("lossy");
	struct shmk_opts lossy = {.flags = SHMK_F_LOSSY};
	struct shmk_topic *t, *s;
	struct shmk_topic_stats st;
	struct shmk_msg m;
	uint64_t i, v, first, got = 0, lost;
	int rc;

	CHECK_OK(shmk_topic_create(name, 4096, 64, &lossy, &t));
	CHECK_EQ(shmk_topic_lossy(t), 1);
	s = sub_open(name, 0);
	CHECK_EQ(shmk_topic_lossy(s), 1);
	/* 64 descriptors: 1000 messages lap the subscriber, publishers
	 * never wait. */
	for (i = 0; i < 1000; i++)
		CHECK_OK(shmk_topic_publish(t, &i, sizeof(i), 0));
	CHECK_RC(shmk_topic_receive(s, &v, sizeof(v), 0), -EOVERFLOW);
	lost = shmk_topic_lost(s);
	CHECK(lost >= 1000 - 64 && lost < 1000);
	/* Goes on from the oldest held, in order, to the end. */
	first = lost;
	while ((rc = (int)shmk_topic_receive(s, &v, sizeof(v), 0)) > 0) {
		CHECK_EQ(v, first + got);
		got++;
	}
	CHECK_RC(rc, -EAGAIN);
	CHECK_EQ(got + lost, 1000);
	CHECK_OK(shmk_topic_stats(s, &st));
	CHECK_EQ(st.lost, lost);
	CHECK_EQ(st.my_lost, lost);
	CHECK_EQ(st.delivered, got);
	CHECK_EQ(st.full_waits, 0);

	/* A message held in place and overwritten: release says so. */
	CHECK_OK(shmk_topic_publish(t, &i, sizeof(i), 0));
	CHECK_OK(shmk_topic_acquire(s, &m, 0));
	for (i = 0; i < 200; i++)
		CHECK_OK(shmk_topic_publish(t, &i, sizeof(i), 0));
	CHECK_RC(shmk_topic_release(s, &m), -EOVERFLOW);
	CHECK(shmk_topic_lost(s) > lost);
	CHECK_EQ(shmk_topic_receive(s, &v, sizeof(v), 0), sizeof(v));
	CHECK(v > 0 && v < 200);
	/* One held in place and not overwritten is delivered. */
	while (shmk_topic_receive(s, &v, sizeof(v), 0) > 0)
		;
	CHECK_OK(shmk_topic_publish(t, &i, sizeof(i), 0));
	CHECK_OK(shmk_topic_acquire(s, &m, 0));
	CHECK_OK(shmk_topic_release(s, &m));
	/* A lossless opener of a lossy name: the policy is the topic's. */
	{
		struct shmk_opts oc = {.flags = SHMK_F_OPEN_OR_CREATE};
		struct shmk_topic *u;

		rc = shmk_topic_create(name, 4096, 64, &oc, &u);
		CHECK(rc < 0);
	}
	CHECK_OK(shmk_topic_close(s));
	CHECK_OK(shmk_topic_close(t));
	printf("  lossy: lapped subscriber told (lost %llu of 1000), torn "
	       "read reported at release: ok\n",
	       (unsigned long long)lost);
}

static int child_loan_die(void *arg)
{
	struct shmk_topic *t;
	struct shmk_msg m;

	CHECK_OK(shmk_topic_open(arg, &waiting, &t));
	CHECK_OK(shmk_topic_loan(t, 100, &m, 1000));
	memset(m.data, 0xee, 50);
	raise(SIGKILL);
	return 1;
}

static void test_dead_publisher(int lossy_)
{
	const char *name = tname(lossy_ ? "deadpub_lossy" : "deadpub");
	struct shmk_opts o = {.flags = lossy_ ? SHMK_F_LOSSY : 0};
	struct shmk_topic *t, *s;
	struct shmk_topic_stats st;
	uint64_t t0, v, i;
	pid_t pid;

	CHECK_OK(shmk_topic_create(name, 4096, 128, &o, &t));
	s = sub_open(name, 0);
	i = 1;
	CHECK_OK(shmk_topic_publish(t, &i, sizeof(i), 0));
	pid = spawn(child_loan_die, (void *)name);
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	/* Messages loaned after the dead one wait behind it, then go. */
	for (i = 2; i < 5; i++)
		CHECK_OK(shmk_topic_publish(t, &i, sizeof(i), 0));
	t0 = check_now_ms();
	for (i = 1; i < 5; i++) {
		CHECK_EQ(shmk_topic_receive(s, &v, sizeof(v), 5000), sizeof(v));
		CHECK_EQ(v, i);
	}
	CHECK_RC(shmk_topic_receive(s, &v, sizeof(v), 0), -EAGAIN);
	CHECK_OK(shmk_topic_stats(t, &st));
	CHECK_EQ(st.recovered, 1);
	CHECK_EQ(st.published, 4);
	/* And the log laps past it. */
	for (i = 0; i < 300; i++) {
		CHECK_OK(shmk_topic_publish(t, &i, sizeof(i), 1000));
		CHECK_EQ(shmk_topic_receive(s, &v, sizeof(v), 0), sizeof(v));
		CHECK_EQ(v, i);
	}
	printf("  %s: a publisher killed inside its loan skipped after %d "
	       "ms, counted: ok\n",
	       lossy_ ? "lossy" : "lossless", (int)(check_now_ms() - t0));
	CHECK_OK(shmk_topic_close(s));
	CHECK_OK(shmk_topic_close(t));
}

/* Subscribes, tells the parent through the pipe, and stays until the
 * pipe's other end says to go (or closes). */
static int child_sub_stay(void *arg)
{
	const int *fds = arg; /* fds[0]: read to go; fds[1]: write when in */
	struct shmk_topic *t;
	char c = 's';

	CHECK_OK(shmk_topic_open(tname("subs"), &waiting, &t));
	CHECK_OK(shmk_topic_subscribe(t, 0));
	CHECK_EQ(write(fds[1], &c, 1), 1);
	(void)read(fds[0], &c, 1);
	CHECK_OK(shmk_topic_close(t));
	return 0;
}

static int child_sub_die(void *arg)
{
	struct shmk_topic *t;

	(void)arg;
	CHECK_OK(shmk_topic_open(tname("subs"), &waiting, &t));
	CHECK_OK(shmk_topic_subscribe(t, 0));
	raise(SIGKILL);
	return 1;
}

/*
 * shmk_topic_wait_subscribers: its errors; a dead subscriber does not
 * count; a subscription in another process makes the descriptor of a
 * timeout-0 wait readable (so the subscription notifies: without it the
 * descriptor stays quiet and the poll below fails), and the blocking
 * wait returns when it comes.
 */
static void test_wait_subscribers(void)
{
	const char *name = tname("subs");
	struct shmk_topic *t, *u;
	struct pollfd pf;
	int up[2], down[2], fds[2], fd;
	uint64_t t0;
	pid_t pid;
	char c;

	CHECK_OK(shmk_topic_create(name, 4096, 64, NULL, &t));
	CHECK_RC(shmk_topic_wait_subscribers(NULL, 1, 0), -EINVAL);
	CHECK_RC(shmk_topic_wait_subscribers(t, 129, 0), -EINVAL);
	CHECK_RC(shmk_topic_wait_subscribers(t, 1, -2), -EINVAL);
	CHECK_OK(shmk_topic_wait_subscribers(t, 0, 0));
	CHECK_RC(shmk_topic_wait_subscribers(t, 1, 0), -EAGAIN);
	CHECK_RC(shmk_topic_wait_subscribers(t, 1, 30), -ETIMEDOUT);

	/* A subscriber killed: its cursor stays, it is not counted. */
	pid = spawn(child_sub_die, NULL);
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	CHECK_RC(shmk_topic_wait_subscribers(t, 1, 30), -ETIMEDOUT);

	/* Armed by a timeout-0 wait, woken by a subscription elsewhere. */
	fd = shmk_topic_pollfd(t);
	CHECK(fd >= 0);
	CHECK_RC(shmk_topic_wait_subscribers(t, 1, 0), -EAGAIN);
	pf = (struct pollfd){.fd = fd, .events = POLLIN};
	CHECK_EQ(poll(&pf, 1, 0), 0);
	CHECK_OK(pipe(up));
	CHECK_OK(pipe(down));
	fds[0] = down[0];
	fds[1] = up[1];
	pid = spawn(child_sub_stay, fds);
	CHECK_EQ(read(up[0], &c, 1), 1);
	CHECK_EQ(poll(&pf, 1, 5000), 1);
	CHECK_OK(shmk_topic_wait_subscribers(t, 1, 0));

	/* Blocking: the second subscriber, ours, comes 50 ms later. */
	CHECK_OK(shmk_topic_open(name, &waiting, &u));
	t0 = check_now_ms();
	CHECK_RC(shmk_topic_wait_subscribers(t, 2, 50), -ETIMEDOUT);
	CHECK(check_now_ms() - t0 >= 45);
	CHECK_OK(shmk_topic_subscribe(u, 0));
	CHECK_OK(shmk_topic_wait_subscribers(t, 2, 5000));
	CHECK_OK(shmk_topic_close(u));
	CHECK_EQ(write(down[1], "x", 1), 1);
	CHECK_EQ(wait_child(pid, 5000), 0);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
	CHECK_RC(shmk_topic_wait_subscribers(t, 1, 30), -ETIMEDOUT);

	/* Shut down: the wait ends with -EPIPE. */
	CHECK_OK(shmk_topic_open(name, &waiting, &u));
	CHECK_OK(shmk_topic_shutdown(t));
	CHECK_RC(shmk_topic_wait_subscribers(u, 1, 1000), -EPIPE);
	CHECK_OK(shmk_topic_close(u));
	CHECK_OK(shmk_topic_close(t));
	printf("  waiting for subscribers: counted live, woken by a "
	       "subscription elsewhere, ended by shutdown: ok\n");
}

static int child_hold_die(void *arg)
{
	struct shmk_topic *t = sub_open(arg, -1);
	struct shmk_msg m;

	CHECK_OK(shmk_topic_acquire(t, &m, 1000));
	raise(SIGKILL);
	return 1;
}

/* A subscriber killed while holding a message in place lets go of it. */
static void test_dead_holder(void)
{
	const char *name = tname("deadholder");
	struct shmk_topic *t;
	char buf[1024] = {0};
	pid_t pid;
	int i;

	CHECK_OK(shmk_topic_create(name, 4096, 1024, NULL, &t));
	CHECK_OK(shmk_topic_publish(t, buf, 1000, 0));
	pid = spawn(child_hold_die, (void *)name);
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	for (i = 0; i < 100; i++)
		CHECK_OK(shmk_topic_publish(t, buf, 1000, 1000));
	CHECK_OK(shmk_topic_close(t));
	printf("  a subscriber killed holding a message releases it: ok\n");
}

static int child_fd_sub(void *arg)
{
	struct shmk_topic *t;
	uint64_t v;

	CHECK_OK(shmk_topic_open_fd(*(int *)arg, NULL, &t));
	CHECK_OK(shmk_topic_subscribe(t, -1));
	CHECK_EQ(shmk_topic_receive(t, &v, sizeof(v), 5000), sizeof(v));
	CHECK_EQ(v, 42);
	CHECK_OK(shmk_topic_close(t));
	return 0;
}

static void test_backings(void)
{
	char path[128];
	struct shmk_topic *t, *s;
	uint64_t v = 42;
	pid_t pid;
	int fd;

	snprintf(path, sizeof(path), "/tmp/shmk-topic-%d", (int)getpid());
	unlink(path);
	CHECK_OK(shmk_topic_create(path, 8192, 128, NULL, &t));
	s = sub_open(path, 0);
	CHECK_OK(shmk_topic_publish(t, &v, sizeof(v), 0));
	v = 0;
	CHECK_EQ(shmk_topic_receive(s, &v, sizeof(v), 0), sizeof(v));
	CHECK_EQ(v, 42);
	CHECK_OK(shmk_topic_close(s));
	CHECK_OK(shmk_topic_close(t));
	unlink(path);

	CHECK_OK(shmk_topic_create(NULL, 8192, 128, NULL, &t));
	fd = shmk_topic_fd(t);
	CHECK(fd >= 0);
	CHECK_OK(shmk_topic_publish(t, &v, sizeof(v), 0));
	pid = spawn(child_fd_sub, &fd);
	CHECK_EQ(wait_child(pid, 10000), 0);
	close(fd);
	CHECK_OK(shmk_topic_close(t));
	printf("  file path and anonymous topics: ok\n");
}

static void test_many_subscribers(void)
{
	const char *name = tname("many");
	struct shmk_topic *t, *s[100];
	uint64_t i, v;
	int k;

	CHECK_OK(shmk_topic_create(name, 1 << 16, 64, NULL, &t));
	for (k = 0; k < 100; k++)
		s[k] = sub_open(name, 0);
	for (i = 0; i < 300; i++) {
		CHECK_OK(shmk_topic_publish(t, &i, sizeof(i), 0));
		for (k = 0; k < 100; k++) {
			CHECK_EQ(shmk_topic_receive(s[k], &v, sizeof(v), 0),
				 sizeof(v));
			CHECK_EQ(v, i);
		}
	}
	for (k = 0; k < 100; k++)
		CHECK_OK(shmk_topic_close(s[k]));
	CHECK_OK(shmk_topic_close(t));
	printf("  100 subscribers at once: ok\n");
}

/*
 * Readers that look at head and tail while fast lossy publishers move
 * both: latest and subscribe must never take tail past the head they
 * read for corruption (it is only the publishers' progress in between:
 * a reader preempted there used to get -EBADMSG and a poisoned handle).
 * How often the window is hit depends on the scheduler, so this runs a
 * while and counts.
 */
struct racer {
	struct shmk_topic *t;
	_Atomic int stop;
};

static void *race_pub(void *arg)
{
	struct racer *r = arg;

	/* -EAGAIN: the other publisher was still writing the oldest
	 * message. */
	while (!atomic_load(&r->stop)) {
		int rc = shmk_topic_publish(r->t, "x", 1, 0);

		CHECK(rc == 0 || rc == -EAGAIN);
	}
	return NULL;
}

static void test_reader_races(void)
{
	struct shmk_opts o = {.flags = SHMK_F_LOSSY, .spin_us = -1};
	struct racer r = {0};
	struct shmk_topic *s;
	pthread_t th[2];
	uint64_t end = check_now_ms() + 2000, latest = 0, subs = 0;
	char buf[8];
	int k, rc;

	CHECK_OK(shmk_topic_create(NULL, 4096, 1, &o, &r.t));
	CHECK_OK(shmk_topic_open_fd(shmk_topic_fd(r.t), NULL, &s));
	for (k = 0; k < 2; k++)
		CHECK(!pthread_create(&th[k], NULL, race_pub, &r));
	while (check_now_ms() < end) {
		for (k = 0; k < 1000; k++) {
			ssize_t n = shmk_topic_latest(s, buf, sizeof(buf));

			CHECK(n == 1 || n == -EAGAIN);
			latest += n == 1;
		}
		for (k = 0; k < 100; k++) {
			/* -EAGAIN: tail moved at every look. */
			rc = shmk_topic_subscribe(s, -1);
			CHECK(rc == 0 || rc == -EAGAIN);
			if (rc < 0)
				continue;
			rc = (int)shmk_topic_receive(s, buf, sizeof(buf), 0);
			CHECK(rc == 1 || rc == -EOVERFLOW || rc == -EAGAIN);
			CHECK_OK(shmk_topic_unsubscribe(s));
			subs++;
		}
	}
	atomic_store(&r.stop, 1);
	for (k = 0; k < 2; k++)
		pthread_join(th[k], NULL);
	CHECK(latest > 0);
	CHECK_OK(shmk_topic_close(s));
	CHECK_OK(shmk_topic_close(r.t));
	printf("  lossy readers racing 2 publishers: %llu latest copies, "
	       "%llu subscriptions, never called corrupt: ok\n",
	       (unsigned long long)latest, (unsigned long long)subs);
}

static void test_shutdown(void)
{
	const char *name = tname("shut");
	struct shmk_topic *t, *p, *s;
	uint64_t i, v;

	CHECK_OK(shmk_topic_create(name, 4096, 64, NULL, &t));
	CHECK_OK(shmk_topic_open(name, NULL, &p));
	s = sub_open(name, 0);
	for (i = 0; i < 3; i++)
		CHECK_OK(shmk_topic_publish(p, &i, sizeof(i), 0));
	CHECK_OK(shmk_topic_close(t)); /* the creator's close */
	CHECK_RC(shmk_topic_publish(p, &i, sizeof(i), 0), -EPIPE);
	for (i = 0; i < 3; i++) {
		CHECK_EQ(shmk_topic_receive(s, &v, sizeof(v), -1), sizeof(v));
		CHECK_EQ(v, i);
	}
	CHECK_RC(shmk_topic_receive(s, &v, sizeof(v), -1), -EPIPE);
	CHECK_OK(shmk_topic_close(s));
	CHECK_OK(shmk_topic_close(p));
	printf("  shutdown: drained, then -EPIPE: ok\n");
}

/* ---------------------------------------------------------------------
 * Many publishers, many subscribers: one total order
 * --------------------------------------------------------------------- */

#define NPUB 2
#define NSUB 3

struct wire {
	uint32_t pub, len;
	uint64_t seq;
};

struct mp {
	const char *name;
	int lossy, threads;
	uint64_t per_pub;
	size_t max;
	struct shmk_topic *t; /* threads: shared handle for publishers */
	_Atomic int ready;
	uint64_t order[NSUB]; /* hash of what each subscriber saw */
	uint64_t got[NSUB], lost[NSUB];
};

/* A child's part: its topic and its number (copied at fork). */
struct role {
	struct mp *x;
	int id;
};

static size_t msg_len(uint32_t p, uint64_t seq, size_t max)
{
	return sizeof(struct wire) +
	       (size_t)((seq * 131 + p * 17) % (max - sizeof(struct wire) + 1));
}

static int run_pub(struct mp *x, struct shmk_topic *t, uint32_t p)
{
	uint64_t seq;

	for (seq = 0; seq < x->per_pub; seq++) {
		size_t len = msg_len(p, seq, x->max);
		struct shmk_msg m;
		struct wire w = {.pub = p, .len = (uint32_t)len, .seq = seq};

		if (seq % 2) {
			CHECK_OK(shmk_topic_loan(t, len, &m, 10000));
			memcpy(m.data, &w, sizeof(w));
			fill((unsigned char *)m.data + sizeof(w), seq * 2 + p,
			     len - sizeof(w));
			CHECK_OK(shmk_topic_commit(t, &m));
		} else {
			unsigned char buf[4096];

			memcpy(buf, &w, sizeof(w));
			fill(buf + sizeof(w), seq * 2 + p, len - sizeof(w));
			CHECK_OK(shmk_topic_publish(t, buf, len, 10000));
		}
	}
	return 0;
}

/* Receives until -EPIPE; checks every payload and each publisher's
 * order; hashes the total order (lossless) into x->order[k]. */
static int run_sub(struct mp *x, struct shmk_topic *t, int k)
{
	uint64_t next[NPUB] = {0}, h = 1469598103934665603u, got = 0;
	unsigned char buf[4096];
	ssize_t n;

	for (;;) {
		struct wire w;

		if (k % 2) {
			struct shmk_msg m;
			int rc = shmk_topic_acquire(t, &m, 10000);

			if (rc == -EPIPE)
				break;
			if (rc == -EOVERFLOW && x->lossy)
				continue;
			CHECK_OK(rc);
			n = (ssize_t)m.len;
			CHECK(m.len <= sizeof(buf));
			racy_copy(buf, m.data, m.len);
			rc = shmk_topic_release(t, &m);
			if (rc == -EOVERFLOW && x->lossy)
				continue; /* what we copied may be torn */
			CHECK_OK(rc);
		} else {
			n = shmk_topic_receive(t, buf, sizeof(buf), 10000);
			if (n == -EPIPE)
				break;
			if (n == -EOVERFLOW && x->lossy)
				continue;
			CHECK(n >= 0);
		}
		CHECK(n >= (ssize_t)sizeof(w));
		memcpy(&w, buf, sizeof(w));
		CHECK(w.pub < NPUB && w.len == (uint32_t)n);
		CHECK_EQ(n, msg_len(w.pub, w.seq, x->max));
		CHECK(intact(buf + sizeof(w), w.seq * 2 + w.pub,
			     (size_t)n - sizeof(w)));
		if (x->lossy)
			CHECK(w.seq >= next[w.pub]);
		else
			CHECK_EQ(w.seq, next[w.pub]);
		next[w.pub] = w.seq + 1;
		h = (h ^ (w.pub * 0x9e3779b97f4a7c15u + w.seq)) *
		    1099511628211u;
		got++;
	}
	if (!x->lossy)
		for (int p = 0; p < NPUB; p++)
			CHECK_EQ(next[p], x->per_pub);
	x->order[k] = h;
	x->got[k] = got;
	x->lost[k] = shmk_topic_lost(t);
	if (x->lossy)
		CHECK_EQ(got + x->lost[k], NPUB * x->per_pub);
	return 0;
}

static int proc_sub(void *arg)
{
	struct role *r = arg;
	struct mp *x = r->x;
	struct shmk_topic *t = sub_open(x->name, 0);

	atomic_fetch_add(&x->ready, 1);
	run_sub(x, t, r->id);
	CHECK_OK(shmk_topic_close(t));
	return 0;
}

static int proc_pub(void *arg)
{
	struct role *r = arg;
	struct mp *x = r->x;
	struct shmk_topic *t;

	CHECK_OK(shmk_topic_open(x->name, &waiting, &t));
	run_pub(x, t, (uint32_t)r->id);
	CHECK_OK(shmk_topic_close(t));
	return 0;
}

struct thr {
	struct mp *x;
	struct shmk_topic *t;
	int id, sub;
};

static void *thread_main(void *arg)
{
	struct thr *h = arg;

	if (h->sub)
		run_sub(h->x, h->t, h->id);
	else
		run_pub(h->x, h->t, (uint32_t)h->id);
	return NULL;
}

static void many(int threads, int lossy_, uint64_t per_pub, size_t cap)
{
	struct shmk_opts o = {.flags = lossy_ ? SHMK_F_LOSSY : 0};
	struct mp *x = mmap(NULL, sizeof(*x), PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct shmk_topic *t, *subs[NSUB];
	struct shmk_topic_stats st;
	uint64_t t0 = check_now_ms();
	int k;

	CHECK(x != MAP_FAILED);
	memset(x, 0, sizeof(*x));
	x->name = tname(lossy_ ? "mp_lossy" : "mp");
	x->lossy = lossy_;
	x->per_pub = per_pub;
	x->max = 2000;
	CHECK_OK(shmk_topic_create(x->name, cap, x->max, &o, &t));
	if (threads) {
		pthread_t th[NPUB + NSUB];
		struct thr a[NPUB + NSUB];

		for (k = 0; k < NSUB; k++) {
			subs[k] = sub_open(x->name, 0);
			a[k] = (struct thr){x, subs[k], k, 1};
		}
		/* Publishers share one handle (thread-safe loans). */
		for (k = 0; k < NPUB; k++)
			a[NSUB + k] = (struct thr){x, t, k, 0};
		for (k = 0; k < NPUB + NSUB; k++)
			CHECK(!pthread_create(&th[k], NULL, thread_main,
					      &a[k]));
		for (k = NSUB; k < NPUB + NSUB; k++)
			pthread_join(th[k], NULL);
		CHECK_OK(shmk_topic_shutdown(t));
		for (k = 0; k < NSUB; k++)
			pthread_join(th[k], NULL);
		for (k = 0; k < NSUB; k++)
			CHECK_OK(shmk_topic_close(subs[k]));
	} else {
		pid_t ps[NSUB], pp[NPUB];

		for (k = 0; k < NSUB; k++) {
			struct role r = {x, k};

			ps[k] = spawn(proc_sub, &r);
		}
		while (atomic_load(&x->ready) < NSUB)
			sleep_ms(1);
		for (k = 0; k < NPUB; k++) {
			struct role r = {x, k};

			pp[k] = spawn(proc_pub, &r);
		}
		for (k = 0; k < NPUB; k++)
			CHECK_EQ(wait_child(pp[k], 120000), 0);
		CHECK_OK(shmk_topic_shutdown(t));
		for (k = 0; k < NSUB; k++)
			CHECK_EQ(wait_child(ps[k], 120000), 0);
	}
	CHECK_OK(shmk_topic_stats(t, &st));
	CHECK_EQ(st.published, NPUB * per_pub);
	if (!lossy_) {
		for (k = 1; k < NSUB; k++)
			CHECK(x->order[k] == x->order[0]);
		CHECK_EQ(st.delivered, NSUB * NPUB * per_pub);
		CHECK_EQ(st.lost, 0);
	}
	printf("  %d publishers x %d subscribers (%s, %s), %llu messages "
	       "each: %s; delivered %llu %llu %llu, lost %llu %llu %llu, "
	       "%llu ms\n",
	       NPUB, NSUB, threads ? "threads" : "processes",
	       lossy_ ? "lossy" : "lossless", (unsigned long long)per_pub,
	       lossy_ ? "every payload intact, per-publisher order kept"
		      : "one total order at every subscriber",
	       (unsigned long long)x->got[0], (unsigned long long)x->got[1],
	       (unsigned long long)x->got[2], (unsigned long long)x->lost[0],
	       (unsigned long long)x->lost[1], (unsigned long long)x->lost[2],
	       (unsigned long long)(check_now_ms() - t0));
	CHECK_OK(shmk_topic_close(t));
	munmap(x, sizeof(*x));
}

int main(int argc, char **argv)
{
	uint64_t n = CHECK_SANITIZED ? 20000 : 100000;

	check_init();
	if (argc > 1 && !strcmp(argv[1], "threads")) {
		many(1, 0, n / 2, 1 << 16);
		many(1, 1, n / 2, 1 << 14);
		test_reader_races();
		printf("test_topic threads: ok\n");
		return 0;
	}
	test_args();
	test_sizes();
	test_half();
	test_history();
	test_lossless();
	test_slots();
	test_lossy();
	test_dead_publisher(0);
	test_dead_publisher(1);
	test_dead_holder();
	test_backings();
	test_many_subscribers();
	test_wait_subscribers();
	test_shutdown();
	test_reader_races();
	many(0, 0, n, 1 << 16);
	many(0, 1, n, 1 << 14);
	printf("test_topic: ok\n");
	return 0;
}
