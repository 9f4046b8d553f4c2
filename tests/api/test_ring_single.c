/* SPDX-License-Identifier: MIT */
/*
 * test_ring_single - rings created with SHMK_F_SINGLE_WRITER and/or
 * SHMK_F_SINGLE_READER:
 *
 *   the mode belongs to the ring: openers see it, open-or-create with
 *   another mode is -EPROTO, the flags anywhere else are -EINVAL;
 *
 *   the role: another handle, in this process or another, gets -EBUSY
 *   while the holder lives (a stopped holder too), and takes the role
 *   over when the holder closes or is SIGKILLed; the holder has one
 *   operation of the role open at a time;
 *
 *   crashes: a single writer SIGKILLed holding a reservation (its node is
 *   skipped, the next writer's messages follow in order), a single reader
 *   SIGKILLed holding a message (counted lost, never delivered);
 *
 *   stress: a writer and a reader process, 2 000 000 messages carrying
 *   (sequence, checksum), in copy and zero-copy mode: every message once,
 *   in order, intact;
 *
 *   the shutdown race: a single writer writing flat out while the ring is
 *   shut down, 300 times: every write that returned 0 is read before the
 *   reader gets -EPIPE (the writer claims with a plain store; the reader
 *   makes every CPU fence before calling the ring drained).
 *
 * "threads" runs the stress and the shutdown race as threads (for TSan).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "check.h"

#define NODE	 64
#define BOTH	 (SHMK_F_SINGLE_WRITER | SHMK_F_SINGLE_READER)
#define TAKEOVER 200 /* ms a role may take to pass from a dead holder */

static const char *g_name;
static int g_pipe[2];

/* Message seq: 8 bytes of seq, 8 of checksum, 0..48 payload bytes. */
static size_t build(unsigned char *buf, uint64_t seq)
{
	size_t len = 16 + (size_t)(seq % 49), j;
	uint64_t sum = seq * 0x9e3779b97f4a7c15u;

	for (j = 16; j < len; j++) {
		buf[j] = (unsigned char)(seq * 7u + j);
		sum = (sum ^ buf[j]) * 1099511628211u;
	}
	memcpy(buf, &seq, 8);
	memcpy(buf + 8, &sum, 8);
	return len;
}

/* Is buf (n bytes) message seq, intact? */
static int is_msg(const unsigned char *buf, size_t n, uint64_t seq)
{
	unsigned char want[NODE];
	size_t len = build(want, seq);

	return n == len && !memcmp(buf, want, len);
}

static struct shmk_ring *open_ring(void)
{
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_ring *r;

	CHECK_OK(shmk_ring_open(g_name, &o, &r));
	return r;
}

static struct shmk_ring *create(size_t nodes, unsigned flags)
{
	struct shmk_opts o = {.flags = flags};
	struct shmk_ring *r;

	CHECK_OK(shmk_ring_create(g_name, nodes, NODE, &o, &r));
	return r;
}

static void destroy(struct shmk_ring *r)
{
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_unlink(g_name));
}

/* ------------------------------------------------------------------ */
/* The mode                                                             */
/* ------------------------------------------------------------------ */

static void test_mode(void)
{
	struct shmk_opts o = {.flags = SHMK_F_OPEN_OR_CREATE};
	struct shmk_opts bad = {.flags = SHMK_F_SINGLE_WRITER};
	struct shmk_ring *r = create(8, BOTH), *r2;
	struct shmk_buffer *b;
	struct shmk_stat st;

	CHECK_OK(shmk_stat(g_name, &st));
	CHECK(st.ngeom >= 3);
	CHECK_EQ(st.geom[2], 3);
	CHECK(!strcmp(shmk_stat_geom_name(st.kind, 2), "single"));
	/* Another mode is another geometry. */
	CHECK_RC(shmk_ring_create(g_name, 8, NODE, &o, &r2), -EPROTO);
	o.flags |= SHMK_F_SINGLE_WRITER;
	CHECK_RC(shmk_ring_create(g_name, 8, NODE, &o, &r2), -EPROTO);
	o.flags |= SHMK_F_SINGLE_READER;
	CHECK_OK(shmk_ring_create(g_name, 8, NODE, &o, &r2));
	CHECK_OK(shmk_ring_close(r2));
	/* The flags mean nothing to an open or to other objects. */
	CHECK_RC(shmk_ring_open(g_name, &bad, &r2), -EINVAL);
	CHECK_RC(shmk_buffer_create(tname("single-buf"), 64, &bad, &b),
		 -EINVAL);
	destroy(r);
	printf("  the mode is the ring's\n");
}

/* ------------------------------------------------------------------ */
/* The role within one process                                          */
/* ------------------------------------------------------------------ */

static void test_role_local(void)
{
	struct shmk_ring *c = create(4, BOTH), *a = open_ring(),
			 *b = open_ring();
	struct shmk_msg m, m2;
	unsigned char buf[NODE];

	/* Writer role: taken by a's first write. */
	CHECK_OK(shmk_ring_write(a, "a1", 2, 0));
	CHECK_RC(shmk_ring_write(b, "b1", 2, 0), -EBUSY);
	CHECK_RC(shmk_ring_reserve(b, &m, 0), -EBUSY);
	CHECK_RC(shmk_ring_write(c, "c1", 2, 0), -EBUSY);
	/* One operation of the role at a time on the holder. */
	CHECK_OK(shmk_ring_reserve(a, &m, 0));
	CHECK_RC(shmk_ring_reserve(a, &m2, 0), -EBUSY);
	CHECK_RC(shmk_ring_write(a, "a2", 2, 0), -EBUSY);
	memcpy(m.data, "a2", 2);
	m.len = 2;
	CHECK_OK(shmk_ring_commit(a, &m));
	/* Reader role: taken by b's first read; a and c are refused. */
	CHECK_EQ(shmk_ring_read(b, buf, sizeof(buf), 0), 2);
	CHECK(!memcmp(buf, "a1", 2));
	CHECK_RC(shmk_ring_read(a, buf, sizeof(buf), 0), -EBUSY);
	CHECK_RC(shmk_ring_acquire(c, &m2, 0), -EBUSY);
	CHECK_OK(shmk_ring_acquire(b, &m, 0));
	CHECK_RC(shmk_ring_read(b, buf, sizeof(buf), 0), -EBUSY);
	CHECK(m.len == 2 && !memcmp(m.data, "a2", 2));
	CHECK_OK(shmk_ring_release(b, &m));
	/* A failed operation ends it too: the next one may start. */
	CHECK_RC(shmk_ring_read(b, buf, sizeof(buf), 0), -EAGAIN);
	CHECK_RC(shmk_ring_read(b, buf, sizeof(buf), 20), -ETIMEDOUT);
	CHECK_OK(shmk_ring_write(a, "a3", 2, 0));
	/* The holder's close gives the role back. */
	CHECK_OK(shmk_ring_close(a));
	CHECK_OK(shmk_ring_write(c, "c2", 2, 0));
	CHECK_RC(shmk_ring_write(b, "b2", 2, 0), -EBUSY);
	CHECK_OK(shmk_ring_close(b));
	CHECK_EQ(shmk_ring_read(c, buf, sizeof(buf), 0), 2);
	CHECK(!memcmp(buf, "a3", 2));
	CHECK_EQ(shmk_ring_read(c, buf, sizeof(buf), 0), 2);
	CHECK(!memcmp(buf, "c2", 2));
	destroy(c);

	/* Only the side asked for is single: a single-writer ring has any
	 * number of readers. */
	c = create(4, SHMK_F_SINGLE_WRITER);
	a = open_ring();
	CHECK_OK(shmk_ring_write(c, "x", 1, 0));
	CHECK_OK(shmk_ring_write(c, "y", 1, 0));
	CHECK_OK(shmk_ring_acquire(a, &m, 0));
	CHECK_OK(shmk_ring_acquire(c, &m2, 0));
	CHECK_OK(shmk_ring_release(c, &m2));
	CHECK_OK(shmk_ring_release(a, &m));
	CHECK_RC(shmk_ring_write(a, "z", 1, 0), -EBUSY);
	CHECK_OK(shmk_ring_close(a));
	destroy(c);
	printf("  one writer and one reader handle at a time\n");
}

/* ------------------------------------------------------------------ */
/* The role across processes, and crashed holders                       */
/* ------------------------------------------------------------------ */

enum { HOLD_ROLE, HOLD_RESERVATION, HOLD_MESSAGE };

/* Takes a role, tells the parent, and waits to be killed. */
static int child_hold(void *arg)
{
	struct shmk_ring *r = open_ring();
	struct shmk_msg m;
	unsigned char buf[NODE];

	switch ((int)(intptr_t)arg) {
	case HOLD_ROLE:
		CHECK_OK(shmk_ring_write(r, buf, build(buf, 0), 0));
		break;
	case HOLD_RESERVATION:
		CHECK_OK(shmk_ring_write(r, buf, build(buf, 0), 0));
		CHECK_OK(shmk_ring_reserve(r, &m, 0));
		memset(m.data, 0xee, NODE); /* half a message, never sent */
		break;
	case HOLD_MESSAGE:
		CHECK_OK(shmk_ring_acquire(r, &m, 5000));
		CHECK(is_msg(m.data, m.len, 0));
		break;
	}
	CHECK_EQ(write(g_pipe[1], "k", 1), 1);
	for (;;)
		pause();
}

/* Polls op until it stops failing with -EBUSY; its ms. */
static uint64_t until_not_busy(int (*op)(struct shmk_ring *),
			       struct shmk_ring *r)
{
	uint64_t t0 = check_now_ms();
	int rc;

	while ((rc = op(r)) == -EBUSY)
		CHECK(check_now_ms() - t0 < 5000);
	CHECK_OK(rc);
	return check_now_ms() - t0;
}

static uint64_t g_next; /* next sequence number op_write writes */

static int op_write(struct shmk_ring *r)
{
	unsigned char buf[NODE];
	int rc = shmk_ring_write(r, buf, build(buf, g_next), 0);

	if (!rc)
		g_next++;
	return rc;
}

static int op_read_1(struct shmk_ring *r)
{
	unsigned char buf[NODE];
	ssize_t n = shmk_ring_read(r, buf, sizeof(buf), 0);

	if (n < 0)
		return (int)n;
	CHECK(is_msg(buf, (size_t)n, 1));
	return 0;
}

static void test_role_processes(void)
{
	struct shmk_ring_stats st;
	struct shmk_ring *c;
	unsigned char buf[NODE];
	uint64_t ms;
	pid_t pid;
	char k;
	int i;

	CHECK_OK(pipe(g_pipe));

	/* A live holder, stopped or not, keeps the writer role. */
	c = create(8, BOTH);
	pid = spawn(child_hold, (void *)(intptr_t)HOLD_ROLE);
	CHECK_EQ(read(g_pipe[0], &k, 1), 1);
	CHECK_OK(kill(pid, SIGSTOP));
	for (i = 0; i < 20; i++) {
		CHECK_RC(shmk_ring_write(c, "x", 1, 0), -EBUSY);
		sleep_ms(10);
	}
	CHECK_OK(kill(pid, SIGCONT));
	CHECK_RC(shmk_ring_write(c, "x", 1, 0), -EBUSY);
	CHECK_OK(kill(pid, SIGKILL));
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	g_next = 1;
	ms = until_not_busy(op_write, c);
	printf("  a SIGKILLed writer's role was taken over after %llu ms\n",
	       (unsigned long long)ms);
	CHECK(ms <= TAKEOVER);
	CHECK_EQ(shmk_ring_read(c, buf, sizeof(buf), 0), 16);
	CHECK(is_msg(buf, 16, 0));
	CHECK_EQ(shmk_ring_read(c, buf, sizeof(buf), 0), 17);
	CHECK(is_msg(buf, 17, 1));
	destroy(c);

	/* A writer killed holding a reservation: its node is skipped and
	 * the new writer's messages follow. */
	c = create(4, BOTH);
	pid = spawn(child_hold, (void *)(intptr_t)HOLD_RESERVATION);
	CHECK_EQ(read(g_pipe[0], &k, 1), 1);
	CHECK_OK(kill(pid, SIGKILL));
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	g_next = 1;
	until_not_busy(op_write, c);
	CHECK_EQ(shmk_ring_read(c, buf, sizeof(buf), 5000), 16);
	CHECK(is_msg(buf, 16, 0));
	CHECK_EQ(shmk_ring_read(c, buf, sizeof(buf), 5000), 17);
	CHECK(is_msg(buf, 17, 1));
	for (i = 0; i < 4; i++) /* capacity is whole */
		CHECK_OK(op_write(c));
	CHECK_RC(op_write(c), -EAGAIN);
	CHECK_OK(shmk_ring_stats(c, &st));
	CHECK_EQ(st.recovered, 1);
	CHECK_EQ(st.written, 6);
	destroy(c);

	/* A reader killed holding a message: lost, and the role passes. */
	c = create(4, BOTH);
	for (g_next = 0; g_next < 3;)
		CHECK_OK(op_write(c));
	pid = spawn(child_hold, (void *)(intptr_t)HOLD_MESSAGE);
	CHECK_EQ(read(g_pipe[0], &k, 1), 1);
	CHECK_RC(shmk_ring_read(c, buf, sizeof(buf), 0), -EBUSY);
	CHECK_OK(kill(pid, SIGKILL));
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	ms = until_not_busy(op_read_1, c); /* message 0 was the dead's */
	printf("  a SIGKILLed reader's role was taken over after %llu ms\n",
	       (unsigned long long)ms);
	CHECK(ms <= TAKEOVER);
	CHECK_EQ(shmk_ring_read(c, buf, sizeof(buf), 0), 18);
	CHECK(is_msg(buf, 18, 2));
	for (i = 0; i < 4; i++) /* capacity is whole */
		CHECK_OK(op_write(c));
	CHECK_OK(shmk_ring_stats(c, &st));
	CHECK_EQ(st.lost, 1);
	CHECK_EQ(st.read, 2);
	destroy(c);
	close(g_pipe[0]);
	close(g_pipe[1]);
	printf("  crashed holders: node skipped, message counted lost\n");
}

/* ------------------------------------------------------------------ */
/* Stress and the shutdown race (processes or threads)                  */
/* ------------------------------------------------------------------ */

struct side {
	struct shmk_ring *r; /* NULL: open g_name */
	uint64_t count;	     /* messages to write (0: until -EPIPE) */
	int zero_copy;
	_Atomic uint64_t *done; /* messages written, or read */
	_Atomic int *bad;
};

static int run_writer(void *arg)
{
	struct side *s = arg;
	struct shmk_ring *r = s->r ? s->r : open_ring();
	unsigned char buf[NODE];
	uint64_t q;

	for (q = 0; !s->count || q < s->count; q++) {
		int rc;

		if (s->zero_copy) {
			struct shmk_msg m;

			rc = shmk_ring_reserve(r, &m, 10000);
			if (!rc) {
				m.len = build(m.data, q);
				rc = shmk_ring_commit(r, &m);
			}
		} else {
			rc = shmk_ring_write(r, buf, build(buf, q), 10000);
		}
		if (rc == -EPIPE && !s->count)
			break;
		CHECK_OK(rc);
		/* Counted only once the write returned 0. */
		atomic_store(s->done, q + 1);
	}
	if (!s->r)
		CHECK_OK(shmk_ring_close(r));
	return 0;
}

static int run_reader(void *arg)
{
	struct side *s = arg;
	struct shmk_ring *r = s->r ? s->r : open_ring();
	unsigned char buf[NODE];
	uint64_t q;

	for (q = 0;; q++) {
		int ok;

		if (s->zero_copy) {
			struct shmk_msg m;
			int rc = shmk_ring_acquire(r, &m, 20000);

			if (rc == -EPIPE)
				break;
			CHECK_OK(rc);
			ok = is_msg(m.data, m.len, q);
			CHECK_OK(shmk_ring_release(r, &m));
		} else {
			ssize_t n = shmk_ring_read(r, buf, sizeof(buf), 20000);

			if (n == -EPIPE)
				break;
			CHECK(n >= 0);
			ok = is_msg(buf, (size_t)n, q);
		}
		if (!ok && atomic_fetch_add(s->bad, 1) < 5)
			fprintf(stderr, "message %llu wrong or out of order\n",
				(unsigned long long)q);
		atomic_store(s->done, q + 1);
	}
	if (!s->r)
		CHECK_OK(shmk_ring_close(r));
	return 0;
}

static void *thread_writer(void *arg)
{
	run_writer(arg);
	return NULL;
}

static void *thread_reader(void *arg)
{
	run_reader(arg);
	return NULL;
}

/* Shared counters: written, read, bad. */
struct tally {
	_Atomic uint64_t written, read;
	_Atomic int bad;
};

/* One writer and one reader over c: returns once the writer is done (or,
 * with count 0, once stop() returned) and the reader drained. */
static void pair(struct shmk_ring *c, int threads, int zero_copy,
		 uint64_t count, struct tally *t, void (*stop)(void))
{
	struct side w = {.r = threads ? c : NULL,
			 .count = count,
			 .zero_copy = zero_copy,
			 .done = &t->written,
			 .bad = &t->bad};
	struct side rd = w;
	pthread_t tw, tr;
	pid_t pw = 0, pr = 0;

	rd.done = &t->read;
	if (threads) {
		CHECK_OK(pthread_create(&tw, NULL, thread_writer, &w));
		CHECK_OK(pthread_create(&tr, NULL, thread_reader, &rd));
	} else {
		pw = spawn(run_writer, &w);
		pr = spawn(run_reader, &rd);
	}
	if (stop)
		stop();
	if (threads)
		CHECK_OK(pthread_join(tw, NULL));
	else
		CHECK_EQ(wait_child(pw, 120000), 0);
	CHECK_OK(shmk_ring_shutdown(c));
	if (threads)
		CHECK_OK(pthread_join(tr, NULL));
	else
		CHECK_EQ(wait_child(pr, 120000), 0);
}

static struct tally *tally_new(void)
{
	struct tally *t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK(t != MAP_FAILED);
	return t;
}

static void stress(int threads, int zero_copy, uint64_t count)
{
	struct tally *t = tally_new();
	struct shmk_ring_stats st;
	struct shmk_ring *c = create(64, BOTH);
	uint64_t t0 = check_now_ms(), ms;

	pair(c, threads, zero_copy, count, t, NULL);
	ms = check_now_ms() - t0;
	CHECK_EQ(atomic_load(&t->bad), 0);
	CHECK_EQ(atomic_load(&t->written), count);
	CHECK_EQ(atomic_load(&t->read), count);
	CHECK_OK(shmk_ring_stats(c, &st));
	CHECK_EQ(st.written, count);
	CHECK_EQ(st.read, count);
	CHECK_EQ(st.lost + st.recovered, 0);
	printf("  %s, %s: %llu messages in order in %llu ms\n",
	       threads ? "threads" : "processes",
	       zero_copy ? "zero copy" : "copy", (unsigned long long)count,
	       (unsigned long long)ms);
	destroy(c);
	munmap(t, sizeof(*t));
}

static struct shmk_ring *g_ring; /* the ring shutdown_soon() shuts */
static struct tally *g_tally;	 /* and its pair's counters */
static unsigned g_rand = 12345;

/* Once both sides are under way, after 0-2 ms. */
static void shutdown_soon(void)
{
	uint64_t t0 = check_now_ms();

	while (!atomic_load(&g_tally->written) || !atomic_load(&g_tally->read))
		CHECK(check_now_ms() - t0 < 10000);
	g_rand = g_rand * 1103515245u + 12345u;
	usleep(g_rand >> 16 & 2047);
	CHECK_OK(shmk_ring_shutdown(g_ring));
}

static void shutdown_race(int threads, int rounds)
{
	uint64_t total = 0;
	int i;

	for (i = 0; i < rounds; i++) {
		struct tally *t = tally_new();

		g_ring = create(8, BOTH);
		g_tally = t;
		pair(g_ring, threads, i & 1, 0, t, shutdown_soon);
		CHECK_EQ(atomic_load(&t->bad), 0);
		if (atomic_load(&t->read) != atomic_load(&t->written)) {
			fprintf(stderr,
				"round %d: %llu writes returned 0, %llu "
				"messages read\n",
				i, (unsigned long long)atomic_load(&t->written),
				(unsigned long long)atomic_load(&t->read));
			exit(1);
		}
		total += atomic_load(&t->read);
		destroy(g_ring);
		munmap(t, sizeof(*t));
	}
	printf("  shutdown race, %s: %d rounds, %llu messages, every "
	       "accepted one read\n",
	       threads ? "threads" : "processes", rounds,
	       (unsigned long long)total);
}

int main(int argc, char **argv)
{
	check_init();
	g_name = tname("single");
	if (argc > 1 && !strcmp(argv[1], "threads")) {
		stress(1, 0, 100000);
		stress(1, 1, 100000);
		shutdown_race(1, 50);
		printf("test_ring_single threads: ok\n");
		return 0;
	}
	test_mode();
	test_role_local();
	test_role_processes();
	stress(0, 0, 2000000);
	stress(0, 1, 2000000);
	shutdown_race(0, 300);
	printf("test_ring_single: ok\n");
	return 0;
}
