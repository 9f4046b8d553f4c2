/* SPDX-License-Identifier: MIT */
/*
 * test_array - shmk_array: the seed's example across processes, element
 * size checked at open, bounds, the typed helpers, and ranges written by
 * one process never seen torn by a reader in another (or in a thread).
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

/* 64-byte elements; a write fills a range of RANGE with one value. */
#define ELEM  64
#define LEN   256
#define RANGE 32

struct elem {
	unsigned char b[ELEM];
};

static int run_ms = 1000;

static void writer_loop(struct shmk_array *a)
{
	static struct elem buf[RANGE];
	uint64_t end = check_now_ms() + (uint64_t)run_ms;
	unsigned n = 0;

	while (check_now_ms() < end) {
		memset(buf, (int)(n % 251), sizeof(buf));
		CHECK_OK(shmk_array_write(a, (n * 7) % (LEN - RANGE + 1), buf,
					  RANGE));
		n++;
	}
}

/* Reads overlapping ranges; every element must be uniform, and any
 * element that lies in one writer range must match its neighbours in
 * that range.  Returns the number of reads. */
static long reader_loop(struct shmk_array *a)
{
	static __thread struct elem buf[RANGE];
	uint64_t end = check_now_ms() + (uint64_t)run_ms;
	long reads = 0;
	size_t i, j;

	while (check_now_ms() < end) {
		size_t first = (size_t)(reads * 13) % (LEN - RANGE + 1);

		CHECK_OK(shmk_array_read(a, first, buf, RANGE));
		for (i = 0; i < RANGE; i++)
			for (j = 1; j < ELEM; j++)
				if (buf[i].b[j] != buf[i].b[0]) {
					fprintf(stderr, "torn element %zu\n",
						first + i);
					exit(1);
				}
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
	long reads;

	CHECK_OK(shmk_array_create(g_name, ELEM, LEN, NULL, &a));
	if (threads)
		CHECK_OK(pthread_create(&t, NULL, thread_writer, a));
	else
		pid = spawn(child_writer, NULL);
	reads = reader_loop(a);
	if (threads)
		CHECK_OK(pthread_join(t, NULL));
	else
		CHECK_EQ(wait_child(pid, 20000), 0);
	printf("  %s: %ld range reads, none torn\n",
	       threads ? "threads" : "processes", reads);
	CHECK(reads > 0);
	CHECK_OK(shmk_array_close(a));
	CHECK_OK(shmk_unlink(g_name));
}

int main(int argc, char **argv)
{
	check_init();
	g_name = tname("array");
	if (argc > 1 && !strcmp(argv[1], "threads")) {
		test_no_torn_elements(1);
		printf("test_array threads: ok\n");
		return 0;
	}
	test_seed_example();
	test_bounds_and_args();
	test_no_torn_elements(0);
	test_no_torn_elements(1);
	printf("test_array: ok\n");
	return 0;
}
