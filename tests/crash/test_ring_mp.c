/* SPDX-License-Identifier: MIT */
/*
 * test_ring_mp - shmk_ring under load and under crashes, across processes:
 *
 *   stress: 4 writer and 4 reader processes, 1 000 000 messages per
 *   writer, each carrying (writer, sequence, length, checksum), in copy
 *   and in zero-copy mode: nothing lost, nothing duplicated, every payload
 *   intact, each writer's messages in order at every reader;
 *
 *   crashes: writers SIGKILLed at random moments, hundreds of times, while
 *   readers run; each writer logs a sequence number only after its commit
 *   returned; every logged message is delivered exactly once, none twice;
 *   writers killed right after reserve and mid-copy hold others up for at
 *   most T_unblock; a reader killed holding a node gives the node back
 *   (the message counted lost) and the ring's capacity is whole again.
 *
 * "threads" runs the stress as threads of one process (for TSan);
 * "kills" only the two random-kill tests (to run them in a loop).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "check.h"

#define NODE	     64
#define HDR	     24
#define T_UNBLOCK_MS 10 /* docs/design.md */
#define SLACK_MS     150

struct wire {
	uint32_t writer;
	uint32_t len; /* payload bytes after the header */
	uint64_t seq;
	uint64_t sum;
};

static const char *g_name;

static unsigned char payload_byte(uint32_t w, uint64_t seq, size_t j)
{
	return (unsigned char)(w * 131u + seq * 7u + j);
}

static uint64_t checksum(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603u;
	size_t j;

	for (j = 0; j < n; j++)
		h = (h ^ p[j]) * 1099511628211u;
	return h;
}

/* Builds message (w, seq) into buf; returns its length. */
static size_t build(unsigned char *buf, uint32_t w, uint64_t seq)
{
	struct wire h = {.writer = w, .seq = seq};
	size_t j;

	h.len = (uint32_t)(seq % (NODE - HDR + 1));
	for (j = 0; j < h.len; j++)
		buf[HDR + j] = payload_byte(w, seq, j);
	h.sum = checksum(buf + HDR, h.len);
	memcpy(buf, &h, HDR);
	return HDR + h.len;
}

/* ------------------------------------------------------------------ */
/* Shared bookkeeping: who was seen how often, what was committed       */
/* ------------------------------------------------------------------ */

#define MAX_WRITERS 512

struct book {
	uint64_t per_writer; /* sequence numbers per writer */
	_Atomic uint64_t committed[MAX_WRITERS]; /* logged after commit */
	_Atomic uint64_t delivered;
	_Atomic int errors;
	_Atomic uint8_t seen[]; /* [writer][seq] */
};

static struct book *g_book;

static struct book *book_new(uint64_t writers, uint64_t per_writer)
{
	size_t len = sizeof(struct book) + writers * per_writer;
	struct book *b = mmap(NULL, len, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK(b != MAP_FAILED);
	b->per_writer = per_writer;
	return b;
}

/* A reader's check of one message; last[] is this reader's per-writer
 * order. */
static void check_msg(const unsigned char *p, size_t n, int64_t *last,
		      uint32_t writers)
{
	struct wire h;

	if (n < HDR)
		goto bad;
	memcpy(&h, p, HDR);
	if (h.writer >= writers || h.seq >= g_book->per_writer ||
	    HDR + h.len != n || checksum(p + HDR, h.len) != h.sum)
		goto bad;
	if ((int64_t)h.seq <= last[h.writer]) {
		fprintf(stderr, "writer %u: %llu after %lld\n", h.writer,
			(unsigned long long)h.seq, (long long)last[h.writer]);
		goto bad;
	}
	last[h.writer] = (int64_t)h.seq;
	atomic_fetch_add(&g_book->seen[h.writer * g_book->per_writer + h.seq],
			 1);
	atomic_fetch_add(&g_book->delivered, 1);
	return;
bad:
	if (atomic_fetch_add(&g_book->errors, 1) < 5)
		fprintf(stderr, "bad message (%zu bytes)\n", n);
}

/* ------------------------------------------------------------------ */
/* Workers (processes or threads)                                       */
/* ------------------------------------------------------------------ */

struct worker {
	struct shmk_ring *r; /* NULL: open g_name */
	uint32_t id, writers;
	uint64_t count;
	int zero_copy;
};

static struct shmk_ring *attach(struct worker *w)
{
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_ring *r = w->r;

	if (!r)
		CHECK_OK(shmk_ring_open(g_name, &o, &r));
	return r;
}

static void detach(struct worker *w, struct shmk_ring *r)
{
	if (!w->r)
		CHECK_OK(shmk_ring_close(r));
}

static int run_writer(void *arg)
{
	struct worker *w = arg;
	struct shmk_ring *r = attach(w);
	unsigned char buf[NODE];
	uint64_t s;

	for (s = 0; s < w->count; s++) {
		if (w->zero_copy) {
			struct shmk_msg m;

			CHECK_OK(shmk_ring_reserve(r, &m, 10000));
			m.len = build(m.data, w->id, s);
			CHECK_OK(shmk_ring_commit(r, &m));
		} else {
			size_t n = build(buf, w->id, s);

			CHECK_OK(shmk_ring_write(r, buf, n, 10000));
		}
		atomic_store(&g_book->committed[w->id], s + 1);
	}
	detach(w, r);
	return 0;
}

/* Reads until the ring is shut down and drained. */
static int run_reader(void *arg)
{
	struct worker *w = arg;
	struct shmk_ring *r = attach(w);
	int64_t *last = malloc(sizeof(*last) * MAX_WRITERS);
	unsigned char buf[NODE];
	uint32_t i;

	CHECK(last != NULL);
	for (i = 0; i < MAX_WRITERS; i++)
		last[i] = -1;
	for (;;) {
		ssize_t n;

		if (w->zero_copy) {
			struct shmk_msg m;
			int rc = shmk_ring_acquire(r, &m, 20000);

			if (rc == -EPIPE)
				break;
			CHECK_OK(rc);
			check_msg(m.data, m.len, last, w->writers);
			CHECK_OK(shmk_ring_release(r, &m));
			continue;
		}
		n = shmk_ring_read(r, buf, sizeof(buf), 20000);
		if (n == -EPIPE)
			break;
		CHECK(n >= 0);
		check_msg(buf, (size_t)n, last, w->writers);
	}
	free(last);
	detach(w, r);
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

/* Every message of every writer seen exactly once. */
static void check_book(uint32_t writers, uint64_t per_writer)
{
	uint64_t w, s;

	CHECK_EQ(atomic_load(&g_book->errors), 0);
	for (w = 0; w < writers; w++)
		for (s = 0; s < per_writer; s++)
			if (atomic_load(&g_book->seen[w * per_writer + s]) !=
			    1) {
				fprintf(stderr,
					"writer %llu seq %llu seen %u "
					"times\n",
					(unsigned long long)w,
					(unsigned long long)s,
					atomic_load(
						&g_book->seen[w * per_writer +
							      s]));
				exit(1);
			}
	CHECK_EQ(atomic_load(&g_book->delivered), writers * per_writer);
}

static void stress(int threads, int zero_copy, uint64_t per_writer)
{
	enum { W = 4, R = 4 };
	struct worker wk[W + R];
	struct shmk_ring_stats st;
	struct shmk_ring *r;
	pthread_t t[W + R];
	pid_t pid[W + R];
	uint64_t t0 = check_now_ms();
	int i;

	g_book = book_new(W, per_writer);
	CHECK_OK(shmk_ring_create(g_name, 64, NODE, NULL, &r));
	for (i = 0; i < W + R; i++) {
		wk[i] = (struct worker){
			/* Threads: writers with handles of their own,
			 * readers sharing the creator's. */
			.r = threads && i >= W ? r : NULL,
			.id = (uint32_t)i,
			.writers = W,
			.count = per_writer,
			.zero_copy = zero_copy,
		};
		if (threads)
			CHECK_OK(pthread_create(
				&t[i], NULL,
				i < W ? thread_writer : thread_reader, &wk[i]));
		else
			pid[i] = spawn(i < W ? run_writer : run_reader, &wk[i]);
	}
	for (i = 0; i < W; i++) {
		if (threads)
			CHECK_OK(pthread_join(t[i], NULL));
		else
			CHECK_EQ(wait_child(pid[i], 300000), 0);
	}
	CHECK_OK(shmk_ring_shutdown(r)); /* readers drain, then stop */
	for (i = W; i < W + R; i++) {
		if (threads)
			CHECK_OK(pthread_join(t[i], NULL));
		else
			CHECK_EQ(wait_child(pid[i], 60000), 0);
	}
	check_book(W, per_writer);
	CHECK_OK(shmk_ring_stats(r, &st));
	CHECK_EQ(st.written, W * per_writer);
	CHECK_EQ(st.read, W * per_writer);
	CHECK_EQ(st.lost + st.recovered, 0);
	printf("  %s, %s: %d writers x %llu messages to %d readers in %llu "
	       "ms; %llu full and %llu empty waits, %llu wake-ups\n",
	       threads ? "threads" : "processes",
	       zero_copy ? "zero-copy" : "copy", W,
	       (unsigned long long)per_writer, R,
	       (unsigned long long)(check_now_ms() - t0),
	       (unsigned long long)st.full_waits,
	       (unsigned long long)st.empty_waits,
	       (unsigned long long)st.wakeups);
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_unlink(g_name));
	munmap(g_book, sizeof(struct book) + W * per_writer);
}

/* ------------------------------------------------------------------ */
/* Crashes                                                              */
/* ------------------------------------------------------------------ */

/* Every message logged as committed delivered exactly once, none twice
 * (a message committed by a writer killed before it could log it may be
 * delivered once too). */
static void check_committed(uint64_t writers, uint64_t per)
{
	uint64_t w, s;

	CHECK_EQ(atomic_load(&g_book->errors), 0);
	for (w = 0; w < writers; w++) {
		uint64_t c = atomic_load(&g_book->committed[w]);

		for (s = 0; s < per; s++) {
			unsigned n = atomic_load(&g_book->seen[w * per + s]);

			if ((s < c && n != 1) || n > 1) {
				fprintf(stderr,
					"writer %llu seq %llu (committed %llu) "
					"seen %u times\n",
					(unsigned long long)w,
					(unsigned long long)s,
					(unsigned long long)c, n);
				exit(1);
			}
		}
	}
}

/* Writers that are killed at random: writer ids are instance numbers. */
static void test_random_writer_kills(void)
{
	enum { KILLS = 200, PER = 40000, R = 2 };
	struct worker rd[R], wr[KILLS + 1];
	struct shmk_ring_stats st;
	struct shmk_ring *r;
	pid_t readers[R], cur;
	uint64_t w, committed_total = 0, t0 = check_now_ms();
	int i;

	g_book = book_new(KILLS + 1, PER);
	CHECK_OK(shmk_ring_create(g_name, 16, NODE, NULL, &r));
	for (i = 0; i < R; i++) {
		rd[i] = (struct worker){.writers = KILLS + 1,
					.zero_copy = i & 1};
		readers[i] = spawn(run_reader, &rd[i]);
	}
	for (i = 0; i <= KILLS; i++) {
		wr[i] = (struct worker){.id = (uint32_t)i,
					.writers = KILLS + 1,
					.count = PER,
					.zero_copy = i & 1};
		cur = spawn(run_writer, &wr[i]);
		if (i < KILLS) {
			/* Somewhere in its life: often mid-message. */
			usleep((useconds_t)(200 + (i * 7919) % 3000));
			kill(cur, SIGKILL);
			CHECK(wait_child(cur, 10000) >= 0);
		} else {
			/* The last one must get all through: the ring
			 * still flows after 200 deaths. */
			CHECK_EQ(wait_child(cur, 60000), 0);
		}
	}
	CHECK_OK(shmk_ring_shutdown(r));
	for (i = 0; i < R; i++)
		CHECK_EQ(wait_child(readers[i], 60000), 0);
	check_committed(KILLS + 1, PER);
	for (w = 0; w <= KILLS; w++)
		committed_total += atomic_load(&g_book->committed[w]);
	CHECK_EQ(atomic_load(&g_book->committed[KILLS]), PER);
	CHECK_OK(shmk_ring_stats(r, &st));
	printf("  %d writers killed at random: %llu messages logged as "
	       "committed, all delivered once; %llu delivered in all; %llu "
	       "reservations of the dead skipped; %llu ms\n",
	       KILLS, (unsigned long long)committed_total,
	       (unsigned long long)atomic_load(&g_book->delivered),
	       (unsigned long long)st.recovered,
	       (unsigned long long)(check_now_ms() - t0));
	CHECK_EQ(st.lost, 0);
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_unlink(g_name));
	munmap(g_book, sizeof(struct book) + (KILLS + 1) * (size_t)PER);
}

static int g_pipe[2];

enum point { AFTER_RESERVE, MID_COPY, AFTER_COMMIT, HOLDING_READ };

/* Stops at a point and waits to be killed there. */
static int child_stop_at(void *arg)
{
	enum point at = (enum point)(intptr_t)arg;
	struct shmk_ring *r;
	struct shmk_msg m;

	CHECK_OK(shmk_ring_open(g_name, NULL, &r));
	if (at == HOLDING_READ) {
		CHECK_OK(shmk_ring_acquire(r, &m, 5000));
	} else {
		CHECK_OK(shmk_ring_reserve(r, &m, 5000));
		if (at == MID_COPY)
			memset(m.data, 0xee, m.len / 2);
		if (at == AFTER_COMMIT) {
			m.len = 3;
			memcpy(m.data, "end", 3);
			CHECK_OK(shmk_ring_commit(r, &m));
		}
	}
	CHECK_EQ(write(g_pipe[1], "s", 1), 1);
	for (;;)
		pause();
}

static void test_kill_points(void)
{
	static const char *const names[] = {"after reserve", "mid-copy",
					    "after commit"};
	struct shmk_ring_stats st;
	struct shmk_ring *r;
	char buf[NODE], c;
	int at, i;

	CHECK_OK(pipe(g_pipe));
	for (at = AFTER_RESERVE; at <= AFTER_COMMIT; at++) {
		uint64_t t0, ms;
		pid_t pid;

		CHECK_OK(shmk_ring_create(g_name, 4, NODE, NULL, &r));
		pid = spawn(child_stop_at, (void *)(intptr_t)at);
		CHECK_EQ(read(g_pipe[0], &c, 1), 1);
		/* A message reserved after the victim's waits for it. */
		CHECK_OK(shmk_ring_write(r, "next", 4, 0));
		if (at != AFTER_COMMIT)
			CHECK_RC(shmk_ring_read(r, buf, sizeof(buf), 50),
				 -ETIMEDOUT); /* alive: waited for */
		CHECK_OK(kill(pid, SIGKILL));
		CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
		t0 = check_now_ms();
		if (at == AFTER_COMMIT) {
			/* Committed is committed: delivered. */
			CHECK_EQ(shmk_ring_read(r, buf, sizeof(buf), 5000), 3);
			CHECK(!memcmp(buf, "end", 3));
		}
		CHECK_EQ(shmk_ring_read(r, buf, sizeof(buf), 5000), 4);
		ms = check_now_ms() - t0;
		CHECK(!memcmp(buf, "next", 4));
		CHECK_OK(shmk_ring_stats(r, &st));
		CHECK_EQ(st.recovered, at == AFTER_COMMIT ? 0 : 1);
		printf("  writer killed %s: the next message came %llu ms "
		       "after its death\n",
		       names[at], (unsigned long long)ms);
		CHECK(ms <= T_UNBLOCK_MS + SLACK_MS);
		/* Capacity is whole. */
		for (i = 0; i < 4; i++)
			CHECK_OK(shmk_ring_write(r, "x", 1, 0));
		CHECK_OK(shmk_ring_close(r));
		CHECK_OK(shmk_unlink(g_name));
	}

	/* A reader killed holding a node. */
	CHECK_OK(shmk_ring_create(g_name, 4, NODE, NULL, &r));
	for (i = 0; i < 4; i++)
		CHECK_OK(shmk_ring_write(r, "m", 1, 0));
	{
		pid_t pid =
			spawn(child_stop_at, (void *)(intptr_t)HOLDING_READ);
		uint64_t t0;

		CHECK_EQ(read(g_pipe[0], &c, 1), 1);
		CHECK_RC(shmk_ring_write(r, "y", 1, 0), -EAGAIN); /* full */
		CHECK_OK(kill(pid, SIGKILL));
		CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
		t0 = check_now_ms();
		CHECK_OK(shmk_ring_write(r, "y", 1, 5000)); /* its node */
		CHECK(check_now_ms() - t0 <= T_UNBLOCK_MS + SLACK_MS);
	}
	for (i = 0; i < 3; i++)
		CHECK_EQ(shmk_ring_read(r, buf, sizeof(buf), 0), 1);
	CHECK_EQ(shmk_ring_read(r, buf, sizeof(buf), 0), 1);
	CHECK_EQ(buf[0], 'y');
	CHECK_RC(shmk_ring_read(r, buf, sizeof(buf), 0), -EAGAIN);
	CHECK_OK(shmk_ring_stats(r, &st));
	CHECK_EQ(st.lost, 1);
	for (i = 0; i < 4; i++) /* capacity is whole */
		CHECK_OK(shmk_ring_write(r, "z", 1, 0));
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_unlink(g_name));
}

/* Reads one message (10 s at most) and reports when it came. */
static int child_read_one(void *arg)
{
	struct shmk_ring *r;
	char buf[NODE];
	uint64_t at;

	(void)arg;
	CHECK_OK(shmk_ring_open(g_name, NULL, &r));
	CHECK_EQ(shmk_ring_read(r, buf, sizeof(buf), 10000), 4);
	CHECK(!memcmp(buf, "next", 4));
	at = check_now_ms();
	CHECK_EQ(write(g_pipe[1], &at, sizeof(at)), (ssize_t)sizeof(at));
	CHECK_OK(shmk_ring_close(r));
	return 0;
}

/*
 * A reader asleep on an empty ring sleeps without a timer; a writer then
 * reserves and dies; another writer commits after it.  The commit's
 * notify wakes the reader, which must pass the dead reservation at once.
 */
static void test_dead_reservation_while_asleep(void)
{
	struct shmk_ring *r;
	uint64_t sent, got;
	pid_t reader, victim;
	char c;

	CHECK_OK(shmk_ring_create(g_name, 4, NODE, NULL, &r));
	reader = spawn(child_read_one, NULL);
	sleep_ms(100); /* asleep */
	victim = spawn(child_stop_at, (void *)(intptr_t)AFTER_RESERVE);
	CHECK_EQ(read(g_pipe[0], &c, 1), 1);
	CHECK_OK(kill(victim, SIGKILL));
	CHECK_EQ(wait_child(victim, 5000), 128 + SIGKILL);
	sleep_ms(50);
	sent = check_now_ms();
	CHECK_OK(shmk_ring_write(r, "next", 4, 0));
	CHECK_EQ(read(g_pipe[0], &got, sizeof(got)), (ssize_t)sizeof(got));
	CHECK_EQ(wait_child(reader, 5000), 0);
	printf("  reader asleep, a reservation's owner died: the next message "
	       "came %llu ms after its commit\n",
	       (unsigned long long)(got - sent));
	CHECK(got - sent <= T_UNBLOCK_MS + SLACK_MS);
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_unlink(g_name));
}

/* Writes one message, waiting up to 10 s, and reports when it got in. */
static int child_write_one(void *arg)
{
	struct shmk_ring *r;
	uint64_t at;

	(void)arg;
	CHECK_OK(shmk_ring_open(g_name, NULL, &r));
	CHECK_OK(shmk_ring_write(r, "late", 4, 10000));
	at = check_now_ms();
	CHECK_EQ(write(g_pipe[1], &at, sizeof(at)), (ssize_t)sizeof(at));
	CHECK_OK(shmk_ring_close(r));
	return 0;
}

/*
 * A writer asleep on a full ring; a reader then takes a node and dies
 * (nobody is notified).  The writer must still get that node back.
 */
static void test_dead_reader_while_writer_asleep(void)
{
	struct shmk_ring *r;
	uint64_t died, got;
	pid_t writer, victim;
	char c;

	CHECK_OK(shmk_ring_create(g_name, 2, NODE, NULL, &r));
	CHECK_OK(shmk_ring_write(r, "a", 1, 0));
	CHECK_OK(shmk_ring_write(r, "b", 1, 0));
	writer = spawn(child_write_one, NULL);
	sleep_ms(100); /* asleep: the ring is full */
	victim = spawn(child_stop_at, (void *)(intptr_t)HOLDING_READ);
	CHECK_EQ(read(g_pipe[0], &c, 1), 1);
	CHECK_OK(kill(victim, SIGKILL));
	CHECK_EQ(wait_child(victim, 5000), 128 + SIGKILL);
	died = check_now_ms();
	CHECK_EQ(read(g_pipe[0], &got, sizeof(got)), (ssize_t)sizeof(got));
	CHECK_EQ(wait_child(writer, 5000), 0);
	printf("  writer asleep on a full ring, a reader died holding a node: "
	       "the writer got in %llu ms after the death\n",
	       (unsigned long long)(got > died ? got - died : 0));
	CHECK(got <= died + T_UNBLOCK_MS + SLACK_MS);
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_unlink(g_name));
}

/* Several writers at once, killed and replaced at random: lost claim
 * races and deaths together never wedge the ring or lose a committed
 * message. */
static void test_random_kills_many_writers(void)
{
	enum { W = 3, ROUNDS = 60, PER = 30000, R = 2 };
	struct worker rd[R], wr[W * ROUNDS];
	struct shmk_ring_stats st;
	struct shmk_ring *r;
	pid_t readers[R], cur[W];
	uint64_t t0 = check_now_ms();
	int i, j;

	g_book = book_new(W * ROUNDS, PER);
	CHECK_OK(shmk_ring_create(g_name, 8, NODE, NULL, &r));
	for (i = 0; i < R; i++) {
		rd[i] = (struct worker){.writers = W * ROUNDS,
					.zero_copy = i & 1};
		readers[i] = spawn(run_reader, &rd[i]);
	}
	for (i = 0; i < ROUNDS; i++) {
		for (j = 0; j < W; j++) {
			int id = i * W + j;

			wr[id] = (struct worker){.id = (uint32_t)id,
						 .writers = W * ROUNDS,
						 .count = PER,
						 .zero_copy = id & 1};
			cur[j] = spawn(run_writer, &wr[id]);
		}
		usleep((useconds_t)(500 + (i * 7919) % 4000));
		for (j = 0; j < W; j++) {
			if (i < ROUNDS - 1)
				kill(cur[j], SIGKILL);
			CHECK(wait_child(cur[j], 60000) >= 0);
		}
	}
	CHECK_OK(shmk_ring_shutdown(r));
	for (i = 0; i < R; i++)
		CHECK_EQ(wait_child(readers[i], 60000), 0);
	check_committed(W * ROUNDS, PER);
	for (j = 0; j < W; j++) /* the last round ran to its end */
		CHECK_EQ(atomic_load(&g_book->committed[(ROUNDS - 1) * W + j]),
			 PER);
	CHECK_OK(shmk_ring_stats(r, &st));
	printf("  %d rounds of %d writers killed together: every committed "
	       "message delivered once; %llu dead reservations skipped; "
	       "%llu ms\n",
	       ROUNDS - 1, W, (unsigned long long)st.recovered,
	       (unsigned long long)(check_now_ms() - t0));
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_unlink(g_name));
	munmap(g_book, sizeof(struct book) + (size_t)W * ROUNDS * PER);
}

/* A stopped (alive) writer is waited for, never skipped. */
static void test_stopped_writer(void)
{
	struct shmk_ring_stats st;
	struct shmk_ring *r;
	char buf[NODE], c;
	pid_t pid;

	CHECK_OK(shmk_ring_create(g_name, 4, NODE, NULL, &r));
	pid = spawn(child_stop_at, (void *)(intptr_t)AFTER_RESERVE);
	CHECK_EQ(read(g_pipe[0], &c, 1), 1);
	CHECK_OK(shmk_ring_write(r, "next", 4, 0));
	CHECK_OK(kill(pid, SIGSTOP));
	CHECK_RC(shmk_ring_read(r, buf, sizeof(buf), 2000), -ETIMEDOUT);
	CHECK_OK(shmk_ring_stats(r, &st));
	CHECK_EQ(st.recovered, 0);
	CHECK_OK(kill(pid, SIGKILL));
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	CHECK_EQ(shmk_ring_read(r, buf, sizeof(buf), 5000), 4);
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_unlink(g_name));
}

int main(int argc, char **argv)
{
	check_init();
	g_name = tname("ringmp");
	if (argc > 1 && !strcmp(argv[1], "threads")) {
		/* The processes' stress, in full: 4 x 1 000 000. */
		stress(1, 0, 1000000);
		stress(1, 1, 1000000);
		printf("test_ring_mp threads: ok\n");
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "kills")) { /* for soaking */
		test_random_kills_many_writers();
		test_random_writer_kills();
		printf("test_ring_mp kills: ok\n");
		return 0;
	}
	stress(0, 0, 1000000);
	stress(0, 1, 1000000);
	stress(1, 0, 200000);
	test_kill_points();
	test_stopped_writer();
	test_dead_reservation_while_asleep();
	test_dead_reader_while_writer_asleep();
	test_random_kills_many_writers();
	test_random_writer_kills();
	printf("test_ring_mp: ok\n");
	return 0;
}
