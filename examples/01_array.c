/* SPDX-License-Identifier: MIT */
/*
 * 01_array - two processes share an array of ten ints.
 *
 * The producer creates the array "example.array", sets element 0 to 123
 * and the last element to 456.  The consumer opens it by name, saying
 * which element type it expects (an array of another element size is
 * refused), and prints both.  Every access is bounds-checked and made
 * under the array's lock, so no element is ever seen half-written.
 *
 *	./01_array producer       # in one shell (Ctrl-C ends it)
 *	./01_array consumer       # in another
 *	./01_array                # or both: the consumer runs in a child
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>

#include <shmk.h>

#include "common.h" /* wait_ok, spawn_self, which_side */

#define NAME "example.array"

static int producer(int spawn_consumer)
{
	struct shmk_array *a;
	int v, rc;

	rc = SHMK_ARRAY_CREATE(NAME, int, 10, NULL, &a);
	if (rc < 0) {
		fprintf(stderr, "producer: create %s: %s%s\n", NAME,
			shmk_strerror(rc),
			rc == -EEXIST ? " (remove it with 'shmk rm')" : "");
		return 1;
	}
	v = 123;
	SHMK_ARRAY_SET(a, 0, &v);
	v = 456;
	SHMK_ARRAY_SET(a, shmk_array_length(a) - 1, &v);
	printf("producer: [0] = 123, [9] = 456\n");
	fflush(stdout);
	if (!spawn_consumer) {
		/* Keep the array until interrupted, then remove it. */
		sigset_t set;
		int sig;

		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		sigprocmask(SIG_BLOCK, &set, NULL);
		printf("producer: Ctrl-C removes it\n");
		fflush(stdout);
		sigwait(&set, &sig);
		rc = 0;
	} else {
		rc = wait_ok(spawn_self("01_array", "consumer")) ? 0 : 1;
	}
	shmk_array_close(a);
	shmk_unlink(NAME);
	return rc;
}

static int consumer(void)
{
	struct shmk_opts o = {.wait_ms = 10000};
	struct shmk_array *a;
	int first, last, rc;

	rc = SHMK_ARRAY_OPEN(NAME, int, &o, &a);
	if (rc < 0) {
		fprintf(stderr, "consumer: open %s: %s\n", NAME,
			shmk_strerror(rc));
		return 1;
	}
	rc = SHMK_ARRAY_GET(a, 0, &first);
	if (rc == 0)
		rc = SHMK_ARRAY_GET(a, shmk_array_length(a) - 1, &last);
	if (rc < 0) {
		fprintf(stderr, "consumer: get: %s\n", shmk_strerror(rc));
		shmk_array_close(a);
		return 1;
	}
	printf("consumer: %zu ints: %d %d\n", shmk_array_length(a), first,
	       last);
	shmk_array_close(a);
	return first == 123 && last == 456 ? 0 : 1;
}

int main(int argc, char **argv)
{
	int side = which_side(argc, argv, "producer", "consumer");

	if (side < 0)
		return 2;
	return side == 2 ? consumer() : producer(side == 0);
}
