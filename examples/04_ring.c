/* SPDX-License-Identifier: MIT */
/*
 * 04_ring - a ring of three 4-byte nodes between two processes.
 *
 * The producer creates the ring "example.ring" and writes two messages,
 * the ints 123 and 456.  The consumer opens it by name (nodes and node
 * size come from the ring) and reads them back, in order.  Three nodes
 * hold three messages; a full ring makes a writer wait (up to its
 * timeout), an empty one a reader.  The producer's close shuts the ring
 * down: a consumer that has read everything then gets -EPIPE.
 *
 *	./04_ring producer       # in one shell
 *	./04_ring consumer       # in another
 *	./04_ring                # or both: the consumer runs in a child
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include <shmk.h>

#include "common.h" /* wait_ok, spawn_self, which_side */

#define NAME "example.ring"

static int producer(int spawn_consumer)
{
	struct shmk_ring *r;
	int v, rc, status = 0;
	pid_t pid = 0;

	rc = shmk_ring_create(NAME, 3, sizeof(int), NULL, &r);
	if (rc < 0) {
		fprintf(stderr, "producer: create %s: %s%s\n", NAME,
			shmk_strerror(rc),
			rc == -EEXIST ? " (remove it with 'shmk rm')" : "");
		return 1;
	}
	if (spawn_consumer)
		pid = spawn_self("04_ring", "consumer");
	v = 123;
	shmk_ring_write(r, &v, sizeof(v), -1);
	v = 456;
	shmk_ring_write(r, &v, sizeof(v), -1);
	printf("producer: wrote 123 and 456\n");
	fflush(stdout);
	if (!spawn_consumer) {
		/* Stay until both are read (a minute at most). */
		struct timespec tenth = {0, 100000000};
		struct shmk_ring_stats st;
		int i;

		for (i = 0; i < 600; i++) {
			shmk_ring_stats(r, &st);
			if (st.read == 2)
				break;
			nanosleep(&tenth, NULL);
		}
	} else if (!wait_ok(pid)) {
		status = 1;
	}
	shmk_ring_close(r); /* shuts the ring down */
	shmk_unlink(NAME);
	return status ? 1 : 0;
}

static int consumer(void)
{
	struct shmk_opts o = {.wait_ms = 10000}; /* wait for the producer */
	struct shmk_ring *r;
	int a = 0, b = 0, rc;

	rc = shmk_ring_open(NAME, &o, &r);
	if (rc < 0) {
		fprintf(stderr, "consumer: open %s: %s\n", NAME,
			shmk_strerror(rc));
		return 1;
	}
	/* Each read waits (10 s at most) for the next message. */
	if (shmk_ring_read(r, &a, sizeof(a), 10000) != sizeof(a) ||
	    shmk_ring_read(r, &b, sizeof(b), 10000) != sizeof(b)) {
		fprintf(stderr, "consumer: read failed\n");
		return 1;
	}
	printf("consumer: %zu nodes of %zu bytes: read %d and %d\n",
	       shmk_ring_nodes(r), shmk_ring_node_size(r), a, b);
	shmk_ring_close(r);
	return a == 123 && b == 456 ? 0 : 1;
}

int main(int argc, char **argv)
{
	int side = which_side(argc, argv, "producer", "consumer");

	if (side < 0)
		return 2;
	return side == 2 ? consumer() : producer(side == 0);
}
