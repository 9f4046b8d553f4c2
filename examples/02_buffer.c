/* SPDX-License-Identifier: MIT */
/*
 * 02_buffer - two processes share a 1024-byte buffer.
 *
 * The producer creates the buffer "example.buffer" and writes 123 at
 * offset 0 and 456 at offset 1000.  The consumer opens it by name alone
 * (the size comes from the buffer itself), reads both numbers back and
 * tells the producer it is done by writing 1 at offset 1020.  The producer
 * sleeps in shmk_buffer_wait() until the buffer changes: every write bumps
 * the buffer's version and wakes whoever waits for it.
 *
 *	./02_buffer producer       # in one shell
 *	./02_buffer consumer       # in another
 *	./02_buffer                # or both: the consumer runs in a child
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>

#include <shmk.h>

#include "common.h" /* wait_ok, spawn_self, which_side */

#define NAME	"example.buffer"
#define DONE_AT 1020

static int producer(int spawn_consumer)
{
	struct shmk_buffer *b;
	int v, done = 0, rc;
	uint64_t version;
	pid_t pid = 0;

	rc = shmk_buffer_create(NAME, 1024, NULL, &b);
	if (rc < 0) {
		fprintf(stderr, "producer: create %s: %s%s\n", NAME,
			shmk_strerror(rc),
			rc == -EEXIST ? " (remove it with 'shmk rm')" : "");
		return 1;
	}
	v = 123;
	shmk_buffer_write(b, 0, &v, sizeof(v), -1);
	v = 456;
	shmk_buffer_write(b, 1000, &v, sizeof(v), -1);
	version = shmk_buffer_version(b);
	printf("producer: wrote 123 at offset 0 and 456 at offset 1000\n");
	fflush(stdout);

	if (spawn_consumer) {
		pid = spawn_self("02_buffer", "consumer");
	} else {
		printf("producer: waiting (a minute at most) for a consumer\n");
		fflush(stdout);
	}
	/* Sleep until the consumer's mark arrives (or a minute passes). */
	while (!done && shmk_buffer_wait(b, &version, 60000) == 0)
		shmk_buffer_read(b, DONE_AT, &done, sizeof(done), -1);
	shmk_buffer_close(b); /* close never removes the name ... */
	shmk_unlink(NAME);    /* ... unlink does */
	if (pid > 0 && !wait_ok(pid))
		return 1;
	return done ? 0 : 1;
}

static int consumer(void)
{
	struct shmk_opts o = {.wait_ms = 10000}; /* wait for the producer */
	struct shmk_buffer *b;
	int a, c, one = 1, rc;

	rc = shmk_buffer_open(NAME, &o, &b);
	if (rc < 0) {
		fprintf(stderr, "consumer: open %s: %s\n", NAME,
			shmk_strerror(rc));
		return 1;
	}
	shmk_buffer_read(b, 0, &a, sizeof(a), -1);
	shmk_buffer_read(b, 1000, &c, sizeof(c), -1);
	printf("consumer: %zu-byte buffer, read %d and %d\n",
	       shmk_buffer_size(b), a, c);
	shmk_buffer_write(b, DONE_AT, &one, sizeof(one), -1);
	shmk_buffer_close(b);
	return a == 123 && c == 456 ? 0 : 1;
}

int main(int argc, char **argv)
{
	int side = which_side(argc, argv, "producer", "consumer");

	if (side < 0)
		return 2;
	return side == 2 ? consumer() : producer(side == 0);
}
