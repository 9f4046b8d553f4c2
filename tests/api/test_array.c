/* SPDX-License-Identifier: MIT */
/*
 * test_array - shmk_array: the seed's example across processes, element
 * size checked at open, bounds, the typed helpers, ranges written by one
 * process never seen torn or mixed by a reader in another (or in a
 * thread), and several sets under one held write lock seen as one.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"

static const char *g_name;

static int child_reads_seed(void *arg)
{
	struct shmk_array *a, *bad = (void *)1;
	int v;

	(void)arg;
	CHECK_RC(shmk_array_open(g_name, sizeof(long long), NULL, &bad),
		 -EPROTO);
	CHECK(bad == NULL);
	CHECK_OK(SHMK_ARRAY_OPEN(g_name, int, NULL, &a));
	CHECK_EQ(shmk_array_length(a), 10);
	CHECK_OK(SHMK_ARRAY_GET(a, 0, &v));
	CHECK_EQ(v, 123);
	CHECK_OK(SHMK_ARRAY_GET(a, shmk_array_length(a) - 1, &v));
	CHECK_EQ(v, 456);
	CHECK_OK(shmk_array_close(a));
	return 0;
}

static void test_seed_example(void)
{
	struct shmk_array *a;
	int v, all[10];
	long long wrong = 0;
	size_t i;

	CHECK_OK(SHMK_ARRAY_CREATE(g_name, int, 10, NULL, &a));
	CHECK_EQ(shmk_array_elem_size(a), sizeof(int));
	v = 123;
	CHECK_OK(SHMK_ARRAY_SET(a, 0, &v));
	v = 456;
	CHECK_OK(SHMK_ARRAY_SET(a, shmk_array_length(a) - 1, &v));
	CHECK_RC(SHMK_ARRAY_SET(a, 1, &wrong), -EINVAL);
	CHECK_EQ(wait_child(spawn(child_reads_seed, NULL), 10000), 0);
	CHECK_OK(shmk_array_read(a, 0, all, 10));
	CHECK_EQ(all[0], 123);
	CHECK_EQ(all[9], 456);
	for (i = 1; i < 9; i++)
		CHECK_EQ(all[i], 0);
	CHECK_OK(shmk_array_close(a));
	CHECK_OK(shmk_unlink(g_name));
}

static void test_bounds_and_args(void)
{
	struct shmk_array *a = (void *)1;
	int v = 7, buf[4];
	struct shmk_buffer *b;

	CHECK_RC(shmk_array_create(g_name, 0, 10, NULL, &a), -EINVAL);
	CHECK(a == NULL);
	CHECK_RC(shmk_array_create(g_name, 4, 0, NULL, &a), -EINVAL);
	CHECK_RC(shmk_array_create(g_name, SIZE_MAX / 2, 3, NULL, &a), -EINVAL);
	CHECK_OK(shmk_array_create(g_name, sizeof(int), 4, NULL, &a));
	CHECK_RC(shmk_array_get(a, 4, &v), -ERANGE);
	CHECK_RC(shmk_array_set(a, 4, &v), -ERANGE);
	CHECK_RC(shmk_array_set(a, SIZE_MAX, &v), -ERANGE);
	CHECK_RC(shmk_array_read(a, 1, buf, 4), -ERANGE);
	CHECK_RC(shmk_array_write(a, 5, buf, 0), -ERANGE);
	CHECK_RC(shmk_array_write(a, 2, buf, SIZE_MAX), -ERANGE);
	CHECK_RC(shmk_array_write(a, SIZE_MAX, buf, 2), -ERANGE);
	CHECK_OK(shmk_array_write(a, 4, buf, 0));
	CHECK_RC(shmk_array_get(a, 0, NULL), -EINVAL);
	CHECK_RC(shmk_array_get(NULL, 0, &v), -EINVAL);
	CHECK_RC(shmk_array_open(g_name, 0, NULL, &a), -EINVAL);
	CHECK_EQ(shmk_array_length(NULL), 0);
	/* Not an array at all. */
	CHECK_OK(shmk_buffer_create(tname("buf"), 16, NULL, &b));
	CHECK_RC(shmk_array_open(tname("buf"), 4, NULL, &a), -EPROTO);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(tname("buf")));
	CHECK_OK(shmk_array_close(NULL));
	CHECK_OK(shmk_unlink(g_name));
}

/*
 * 64-byte elements in LEN / RANGE aligned ranges.  A write fills one whole
 * range with its own id, in every word of every element; a read reads one
 * whole range, which must carry a single id throughout: a range read never
 * mixes two writes (nor shows an element half-written).
 */
#define ELEM  64
#define LEN   256
#define RANGE 32

struct elem {
	uint32_t id[ELEM / 4];
};

static int run_ms = 1000;

static void writer_loop(struct shmk_array *a)
{
	static struct elem buf[RANGE];
	uint64_t end = check_now_ms() + (uint64_t)run_ms;
	uint32_t n = 0;
	size_t i, j;

	while (check_now_ms() < end) {
		n++; /* 0 is the initial contents */
		for (i = 0; i < RANGE; i++)
			for (j = 0; j < ELEM / 4; j++)
				buf[i].id[j] = n;
		CHECK_OK(shmk_array_write(a, (n % (LEN / RANGE)) * RANGE, buf,
					  RANGE));
	}
}

/* Reads whole ranges, each a single write.  Returns the number of reads;
 * *changed counts those that found a write other than the last read of
 * the same range (the writer was really racing the reader). */
static long reader_loop(struct shmk_array *a, long *changed)
{
	static __thread struct elem buf[RANGE];
	uint32_t last[LEN / RANGE] = {0};
	uint64_t end = check_now_ms() + (uint64_t)run_ms;
	long reads = 0;
	size_t i, j;

	*changed = 0;
	while (check_now_ms() < end) {
		size_t r = (size_t)(reads * 3) % (LEN / RANGE);

		CHECK_OK(shmk_array_read(a, r * RANGE, buf, RANGE));
		for (i = 0; i < RANGE; i++)
			for (j = 0; j < ELEM / 4; j++)
				if (buf[i].id[j] != buf[0].id[0]) {
					fprintf(stderr,
						"range %zu torn: element %zu "
						"word %zu is write %u, element "
						"0 write %u\n",
						r, i, j, buf[i].id[j],
						buf[0].id[0]);
					exit(1);
				}
		*changed += buf[0].id[0] != last[r];
		last[r] = buf[0].id[0];
		reads++;
	}
	return reads;
}

static int child_writer(void *arg)
{
	struct shmk_array *a;

	(void)arg;
	CHECK_OK(shmk_array_open(g_name, ELEM, NULL, &a));
	writer_loop(a);
	CHECK_OK(shmk_array_close(a));
	return 0;
}

static void *thread_writer(void *arg)
{
	writer_loop(arg);
	return NULL;
}

static void test_no_torn_elements(int threads)
{
	struct shmk_array *a;
	pthread_t t;
	pid_t pid = 0;
	long reads, changed;

	CHECK_OK(shmk_array_create(g_name, ELEM, LEN, NULL, &a));
	if (threads)
		CHECK_OK(pthread_create(&t, NULL, thread_writer, a));
	else
		pid = spawn(child_writer, NULL);
	reads = reader_loop(a, &changed);
	if (threads)
		CHECK_OK(pthread_join(t, NULL));
	else
		CHECK_EQ(wait_child(pid, 20000), 0);
	printf("  %s: %ld range reads, %ld of them a new write, none torn\n",
	       threads ? "threads" : "processes", reads, changed);
	CHECK(reads > 0);
	CHECK(changed > 0); /* the writer wrote while we read */
	CHECK_OK(shmk_array_close(a));
	CHECK_OK(shmk_unlink(g_name));
}

/*
 * Several sets under one held write lock: each set and write reuses the
 * held lock (no deadlock, no release on the way) and a reader elsewhere
 * sees all HELD_N elements change at once, never some of them.
 */
#define HELD_N 4

static void held_writer_loop(struct shmk_array *a)
{
	uint64_t end = check_now_ms() + (uint64_t)run_ms / 2, v = 0, x;
	uint64_t pair[2];

	while (check_now_ms() < end) {
		v++;
		CHECK_OK(shmk_array_lock(a, SHMK_LOCK_WRITE, 5000));
		CHECK_OK(SHMK_ARRAY_SET(a, 0, &v));
		if (v % 16 == 0) /* a wide window for a wrong reader */
			sleep_ms(1);
		CHECK_OK(shmk_array_set(a, 1, &v));
		pair[0] = pair[1] = v;
		CHECK_OK(shmk_array_write(a, 2, pair, 2));
		CHECK_OK(SHMK_ARRAY_GET(a, 0, &x)); /* reads reuse it too */
		CHECK_EQ(x, v);
		CHECK_OK(shmk_array_unlock(a));
		if (v % 16 == 8) /* and a time for readers to get in */
			sleep_ms(1);
	}
	CHECK(v > 0);
}

static int child_held_writer(void *arg)
{
	struct shmk_array *a;

	(void)arg;
	CHECK_OK(SHMK_ARRAY_OPEN(g_name, uint64_t, NULL, &a));
	held_writer_loop(a);
	CHECK_OK(shmk_array_close(a));
	return 0;
}

static void *thread_held_writer(void *arg)
{
	struct shmk_array *a;

	(void)arg;
	CHECK_OK(SHMK_ARRAY_OPEN(g_name, uint64_t, NULL, &a));
	held_writer_loop(a);
	CHECK_OK(shmk_array_close(a));
	return NULL;
}

/* Reads the HELD_N elements, in one read or under a held read lock one
 * by one; all must be equal.  Returns their value. */
static uint64_t held_read(struct shmk_array *a, int one_by_one)
{
	uint64_t v[HELD_N];
	size_t i;

	if (one_by_one) {
		CHECK_OK(shmk_array_lock(a, SHMK_LOCK_READ, 5000));
		for (i = 0; i < HELD_N; i++)
			CHECK_OK(SHMK_ARRAY_GET(a, i, &v[i]));
		CHECK_OK(shmk_array_unlock(a));
	} else {
		CHECK_OK(shmk_array_read(a, 0, v, HELD_N));
	}
	for (i = 1; i < HELD_N; i++)
		if (v[i] != v[0]) {
			fprintf(stderr,
				"half a locked update seen: element 0 is %llu, "
				"element %zu is %llu\n",
				(unsigned long long)v[0], i,
				(unsigned long long)v[i]);
			exit(1);
		}
	return v[0];
}

/* Reads for run_ms / 2; the updates must come in order and be seen. */
static void held_reader_loop(struct shmk_array *a)
{
	uint64_t end = check_now_ms() + (uint64_t)run_ms / 2, v, last = 0;
	long reads = 0, seen = 0;

	while (check_now_ms() < end) {
		v = held_read(a, (int)(reads & 1));
		CHECK(v >= last);
		seen += v != last;
		last = v;
		reads++;
	}
	printf("  %ld reads saw %ld locked updates, none half-made\n", reads,
	       seen);
	CHECK(seen > 1);
}

static int child_held_reader(void *arg)
{
	struct shmk_array *a;

	(void)arg;
	CHECK_OK(SHMK_ARRAY_OPEN(g_name, uint64_t, NULL, &a));
	held_reader_loop(a);
	CHECK_OK(shmk_array_close(a));
	return 0;
}

static void test_held_lock(int threads)
{
	struct shmk_array *a;
	pid_t pid[2];
	pthread_t t;
	uint64_t v = 0;

	CHECK_OK(SHMK_ARRAY_CREATE(g_name, uint64_t, HELD_N, NULL, &a));
	/* Under a held read lock a write would deadlock: refused. */
	CHECK_OK(shmk_array_lock(a, SHMK_LOCK_READ, 0));
	CHECK_RC(SHMK_ARRAY_SET(a, 0, &v), -EDEADLK);
	CHECK_OK(SHMK_ARRAY_GET(a, 0, &v));
	CHECK_OK(shmk_array_unlock(a));
	if (threads) {
		/* A writer that deadlocked would hang the join: the alarm
		 * ends the test instead. */
		alarm(60);
		CHECK_OK(pthread_create(&t, NULL, thread_held_writer, NULL));
		held_reader_loop(a);
		CHECK_OK(pthread_join(t, NULL));
		alarm(0);
	} else {
		/* Both in children, so that a writer that deadlocked (and
		 * the reader it blocks) are found at their deadline. */
		pid[0] = spawn(child_held_writer, NULL);
		pid[1] = spawn(child_held_reader, NULL);
		CHECK_EQ(wait_child(pid[0], 10000), 0);
		CHECK_EQ(wait_child(pid[1], 10000), 0);
	}
	v = held_read(a, 0);
	printf("  %s: %llu locked updates of %d elements\n",
	       threads ? "threads" : "processes", (unsigned long long)v,
	       HELD_N);
	CHECK(v > 0);
	CHECK_OK(shmk_array_close(a));
	CHECK_OK(shmk_unlink(g_name));
}

int main(int argc, char **argv)
{
	check_init();
	g_name = tname("array");
	if (argc > 1 && !strcmp(argv[1], "threads")) {
		test_no_torn_elements(1);
		test_held_lock(1);
		printf("test_array threads: ok\n");
		return 0;
	}
	test_seed_example();
	test_bounds_and_args();
	test_no_torn_elements(0);
	test_no_torn_elements(1);
	test_held_lock(0);
	test_held_lock(1);
	printf("test_array: ok\n");
	return 0;
}
