/* SPDX-License-Identifier: MIT */
/*
 * 07_stream - a producer streams messages through a ring to a consumer,
 * which checks every one and prints the throughput.
 *
 * Each message is a header (sequence number, message count, payload size,
 * checksum) and a payload of pseudo-random bytes.  The consumer checks that
 * the sequence numbers come 0, 1, 2, ... (none lost, none twice, in order),
 * that every checksum matches and that the count is complete.
 *
 * Either side may start first: the consumer waits for the ring to appear
 * (opts.wait_ms), the producer for room in it (a write's timeout); a
 * minute at most each.  The end of the stream is the producer's close,
 * which shuts the ring down: once the consumer has read everything, its
 * next read fails with -EPIPE.
 *
 * This is the seed's ServerTest/ClientTest pair, made exact: there a
 * timeout of 100 bound to a start index, so every message lost its first
 * 100 bytes and the client compared bytes that were never written, and the
 * two sides' counts differed.  Here the checksum covers every byte and the
 * counts must agree.
 *
 *	./07_stream consumer                   # in one shell
 *	./07_stream producer [COUNT [SIZE]]    # in another
 *	./07_stream [COUNT [SIZE]]             # or both, the consumer in a child
 *
 * COUNT messages (default 20000) of SIZE payload bytes (default 65536).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <shmk.h>

#include "common.h" /* now_s, fill, checksum, wait_ok */

#define NAME  "example.stream"
#define NODES 32
#define WAIT  60000 /* ms: how long either side waits for the other */

struct head {
	uint64_t seq;	/* 0, 1, 2, ... */
	uint64_t count; /* messages in the whole stream */
	uint64_t size;	/* payload bytes after this header */
	uint64_t sum;	/* checksum(payload, size, seq) */
};

/* ------------------------------------------------------------------ */
/* Producer                                                             */
/* ------------------------------------------------------------------ */

/* Builds message seq in msg: header and payload. */
static void make_message(unsigned char *msg, uint64_t seq, uint64_t count,
			 size_t size)
{
	struct head h = {.seq = seq, .count = count, .size = size};

	fill(msg + sizeof(h), size, seq);
	h.sum = checksum(msg + sizeof(h), size, seq);
	memcpy(msg, &h, sizeof(h));
}

/*
 * Waits (up to WAIT ms) until the consumer has taken every message.  The
 * producer's close shuts the ring down and its unlink removes the name:
 * a consumer that had not opened the ring yet would never find it.
 */
static int wait_drained(struct shmk_ring *r, uint64_t count)
{
	struct timespec ms = {0, 1000000};
	struct shmk_ring_stats st;
	int i;

	for (i = 0; i < WAIT; i++) {
		if (shmk_ring_stats(r, &st) < 0)
			return -1;
		if (st.read == count)
			return 0;
		nanosleep(&ms, NULL);
	}
	return -1;
}

static int producer(const char *name, long count, size_t size)
{
	size_t len = sizeof(struct head) + size;
	struct shmk_ring *r;
	unsigned char *msg;
	long seq;
	int rc;

	rc = shmk_ring_create(name, NODES, len, NULL, &r);
	if (rc < 0) {
		fprintf(stderr, "producer: create %s: %s%s\n", name,
			shmk_strerror(rc),
			rc == -EEXIST ? " (remove it with 'shmk rm')" : "");
		return 1;
	}
	msg = malloc(len);
	for (seq = 0; msg && seq < count; seq++) {
		make_message(msg, (uint64_t)seq, (uint64_t)count, size);
		rc = shmk_ring_write(r, msg, len, WAIT);
		if (rc < 0) {
			/* -ETIMEDOUT: nobody read for a minute; -EPIPE: the
			 * consumer gave up and shut the ring down */
			fprintf(stderr, "producer: message %ld: %s\n", seq,
				shmk_strerror(rc));
			break;
		}
	}
	rc = seq == count ? wait_drained(r, (uint64_t)count) : -1;
	if (rc == 0)
		printf("producer: wrote %ld messages of %zu bytes, all taken\n",
		       count, size);
	shmk_ring_close(r); /* shuts the ring down: the end of the stream */
	shmk_unlink(name);
	free(msg);
	return rc < 0 ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* Consumer                                                             */
/* ------------------------------------------------------------------ */

/* Checks message msg of len bytes, which must be number want. */
static int check_message(const unsigned char *msg, size_t len, uint64_t want,
			 uint64_t *count)
{
	struct head h;

	if (len < sizeof(h)) {
		fprintf(stderr, "consumer: message %llu: %zu bytes\n",
			(unsigned long long)want, len);
		return -1;
	}
	memcpy(&h, msg, sizeof(h));
	if (want == 0)
		*count = h.count;
	if (h.seq != want || h.count != *count || h.size != len - sizeof(h)) {
		fprintf(stderr,
			"consumer: expected message %llu of %llu, got %llu of "
			"%llu (%llu bytes)\n",
			(unsigned long long)want, (unsigned long long)*count,
			(unsigned long long)h.seq, (unsigned long long)h.count,
			(unsigned long long)h.size);
		return -1;
	}
	if (checksum(msg + sizeof(h), h.size, h.seq) != h.sum) {
		fprintf(stderr, "consumer: message %llu: bad checksum\n",
			(unsigned long long)h.seq);
		return -1;
	}
	return 0;
}

static void report(uint64_t n, double bytes, double s)
{
	printf("consumer: %llu messages verified in %.3f s: %.0f msgs/s, "
	       "%.1f MB/s\n",
	       (unsigned long long)n, s, s > 0 ? (double)n / s : 0,
	       s > 0 ? bytes / s / 1e6 : 0);
	fflush(stdout);
}

/* Reads until the producer's close; returns the messages read or -1. */
static long long consume(struct shmk_ring *r, unsigned char *buf, size_t cap,
			 uint64_t *count)
{
	double t0 = 0, next_report = 0, bytes = 0;
	uint64_t n = 0;

	for (;;) {
		ssize_t len = shmk_ring_read(r, buf, cap, WAIT);

		if (len == -EPIPE)
			break; /* shut down, and we have read everything */
		if (len < 0) {
			fprintf(stderr, "consumer: after %llu messages: %s\n",
				(unsigned long long)n, shmk_strerror((int)len));
			return -1;
		}
		if (check_message(buf, (size_t)len, n, count) < 0)
			return -1;
		if (n++ == 0)
			t0 = next_report = now_s(); /* from the first message */
		bytes += (double)len - (double)sizeof(struct head);
		if (now_s() >= next_report + 1) {
			next_report = now_s();
			report(n, bytes, next_report - t0);
		}
	}
	if (n > 0)
		report(n, bytes, now_s() - t0);
	return (long long)n;
}

static int consumer(const char *name)
{
	struct shmk_opts o = {.wait_ms = WAIT}; /* wait for the producer */
	struct shmk_ring *r;
	uint64_t count = 0;
	unsigned char *buf;
	long long n;
	int rc;

	rc = shmk_ring_open(name, &o, &r);
	if (rc < 0) {
		fprintf(stderr, "consumer: open %s: %s\n", name,
			shmk_strerror(rc));
		return 1;
	}
	printf("consumer: ring %s: %zu nodes of %zu bytes\n", name,
	       shmk_ring_nodes(r), shmk_ring_node_size(r));
	fflush(stdout);
	buf = malloc(shmk_ring_node_size(r));
	n = buf ? consume(r, buf, shmk_ring_node_size(r), &count) : -1;
	if (n >= 0 && (uint64_t)n != count)
		fprintf(stderr, "consumer: lost messages: %lld of %llu came\n",
			n, (unsigned long long)count);
	if (n < 0 || (uint64_t)n != count || count == 0) {
		/* Tell the producer at once rather than let it time out. */
		shmk_ring_shutdown(r);
		rc = 1;
	}
	shmk_ring_close(r);
	free(buf);
	return rc;
}

/* ------------------------------------------------------------------ */

/* Both sides: the consumer first, in a child, to show it waits. */
static int both(long count, size_t size)
{
	char name[64];
	pid_t pid;
	int rc;

	/* A name of our own, so that two runs at once do not meet. */
	snprintf(name, sizeof(name), "%s.%d", NAME, (int)getpid());
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		exit(consumer(name));
	rc = producer(name, count, size);
	if (rc && pid > 0)
		kill(pid, SIGTERM); /* it would wait a minute for nothing */
	if (!wait_ok(pid))
		rc = 1;
	return rc;
}

int main(int argc, char **argv)
{
	const char *role = argc > 1 && (!strcmp(argv[1], "producer") ||
					!strcmp(argv[1], "consumer"))
				   ? argv[1]
				   : NULL;
	int a = role ? 2 : 1; /* first numeric argument */
	long count = argc > a ? atol(argv[a]) : 20000;
	long size = argc > a + 1 ? atol(argv[a + 1]) : 65536;

	if (count <= 0 || size < 0 || argc > a + 2 ||
	    (role && !strcmp(role, "consumer") && argc > 2)) {
		fprintf(stderr,
			"usage: %s [producer] [COUNT [SIZE]] | consumer\n",
			argv[0]);
		return 2;
	}
	if (!role)
		return both(count, (size_t)size);
	if (!strcmp(role, "producer"))
		return producer(NAME, count, (size_t)size);
	return consumer(NAME);
}
