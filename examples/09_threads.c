/* SPDX-License-Identifier: MIT */
/*
 * 09_threads - many writers and many readers on one ring, as threads of
 * one process: the seed's "SingleProcess" benchmark, with every message
 * checked.
 *
 * Writer threads write full-node messages for a while; reader threads
 * compete for them (each message goes to exactly one reader).  Every
 * second the program prints the messages written and read so far, the
 * readers' lag ("diff": messages being written or waiting to be read,
 * from shmk_ring_stats) and the MB/s through the ring.  Then the writers stop,
 * the ring is shut down, the readers take what is left, and a final line
 * says whether every message arrived exactly once, intact, and in its
 * writer's order.
 *
 *	./09_threads [-w WRITERS] [-r READERS] [-n NODES] [-b NODE_SIZE]
 *	             [-d SECONDS]
 *
 * Defaults: 1 writer, 1 reader, 50 nodes of 1 MiB, 5 seconds.
 *
 * Unlike the seed's sample, the counts come from the ring itself (the
 * seed summed them unsynchronised across threads), MB/s counts each byte
 * once (the seed added bytes written and bytes read), the ring knows when
 * it is empty (no guessing from counts) and every message is verified.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <shmk.h>

#include "common.h" /* now_s, fill, checksum */

#define MAX_THREADS 32
/* A writer stops after this many messages: the size of the bitmap that
 * records which of its messages arrived (16 MiB per writer). */
#define MAX_SEQ (1ull << 27)

struct head {
	uint32_t writer; /* which writer */
	uint32_t pad;
	uint64_t seq; /* that writer's 0, 1, 2, ... */
	uint64_t sum; /* checksum(payload, seed(writer, seq)) */
};

/* What all threads share. */
static struct {
	int writers, readers;
	size_t node_size;
	atomic_int stop;   /* main: writers, stop */
	atomic_int failed; /* any thread: something went wrong */
	/* seen[w][seq / 64] bit seq % 64: message (w, seq) arrived */
	_Atomic uint64_t *seen[MAX_THREADS];
} run;

struct thread {
	pthread_t tid;
	int id;
	struct shmk_ring *r;	   /* a handle of its own */
	uint64_t count;		   /* messages written or read */
	int64_t last[MAX_THREADS]; /* reader: last seq from each writer */
};

static uint64_t seed_of(uint32_t writer, uint64_t seq)
{
	return seq << 8 | writer;
}

static void fail(void)
{
	atomic_store(&run.failed, 1);
}

/* ------------------------------------------------------------------ */
/* Writers                                                              */
/* ------------------------------------------------------------------ */

static void make_message(unsigned char *msg, uint32_t writer, uint64_t seq)
{
	struct head h = {.writer = writer, .seq = seq};
	size_t size = run.node_size - sizeof(h);

	fill(msg + sizeof(h), size, seed_of(writer, seq));
	h.sum = checksum(msg + sizeof(h), size, seed_of(writer, seq));
	memcpy(msg, &h, sizeof(h));
}

static void *writer_main(void *arg)
{
	struct thread *t = arg;
	unsigned char *msg = malloc(run.node_size);
	int rc;

	if (!msg) {
		fail();
		return NULL;
	}
	while (!atomic_load(&run.stop) && t->count < MAX_SEQ) {
		make_message(msg, (uint32_t)t->id, t->count);
		/* Waits as long as the ring is full: the readers make room,
		 * or main shuts the ring down (-EPIPE) if something failed. */
		rc = shmk_ring_write(t->r, msg, run.node_size, -1);
		if (rc < 0) {
			if (rc != -EPIPE)
				fprintf(stderr, "writer %d: %s\n", t->id,
					shmk_strerror(rc));
			fail();
			break;
		}
		t->count++;
	}
	free(msg);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Readers                                                              */
/* ------------------------------------------------------------------ */

/* Checks one message; records it in the bitmap. */
static int check_message(struct thread *t, const unsigned char *msg, size_t len)
{
	uint64_t bit, old;
	struct head h;

	memcpy(&h, msg, sizeof(h)); /* the caller checked the length */
	if (len != run.node_size || h.writer >= (uint32_t)run.writers ||
	    h.seq >= MAX_SEQ) {
		fprintf(stderr,
			"reader %d: a message of %zu bytes, bad header\n",
			t->id, len);
		return -1;
	}
	if (checksum(msg + sizeof(h), len - sizeof(h),
		     seed_of(h.writer, h.seq)) != h.sum) {
		fprintf(stderr, "reader %d: writer %u seq %llu: bad checksum\n",
			t->id, h.writer, (unsigned long long)h.seq);
		return -1;
	}
	/* One reader sees each writer's messages in the writer's order. */
	if ((int64_t)h.seq <= t->last[h.writer]) {
		fprintf(stderr, "reader %d: writer %u: seq %llu after %lld\n",
			t->id, h.writer, (unsigned long long)h.seq,
			(long long)t->last[h.writer]);
		return -1;
	}
	t->last[h.writer] = (int64_t)h.seq;
	/* Across readers: each message once. */
	bit = 1ull << (h.seq % 64);
	old = atomic_fetch_or(&run.seen[h.writer][h.seq / 64], bit);
	if (old & bit) {
		fprintf(stderr, "reader %d: writer %u seq %llu: twice\n", t->id,
			h.writer, (unsigned long long)h.seq);
		return -1;
	}
	return 0;
}

static void *reader_main(void *arg)
{
	struct thread *t = arg;
	unsigned char *buf = malloc(run.node_size);
	ssize_t len;

	if (!buf) {
		fail();
		return NULL;
	}
	for (;;) {
		/* Waits as long as the ring is empty; after the shutdown it
		 * returns what is left, then -EPIPE. */
		len = shmk_ring_read(t->r, buf, run.node_size, -1);
		if (len == -EPIPE)
			break;
		if (len < 0 || (size_t)len < sizeof(struct head)) {
			fprintf(stderr, "reader %d: read: %s\n", t->id,
				len < 0 ? shmk_strerror((int)len) : "short");
			fail();
			break;
		}
		if (check_message(t, buf, (size_t)len) < 0) {
			fail();
			break;
		}
		t->count++;
	}
	free(buf);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Main                                                                 */
/* ------------------------------------------------------------------ */

/* One line a second: counts, lag and MB/s since the last line. */
static void progress(struct shmk_ring *r, double t, double dt,
		     uint64_t *last_bytes)
{
	struct shmk_ring_stats st;

	if (shmk_ring_stats(r, &st) < 0)
		return;
	printf("%5.1f s: written %llu, read %llu, diff %llu, "
	       "sleeps (readers/writers) %llu/%llu, %.1f MB/s\n",
	       t, (unsigned long long)st.written, (unsigned long long)st.read,
	       (unsigned long long)st.lag, (unsigned long long)st.empty_waits,
	       (unsigned long long)st.full_waits,
	       (double)(st.bytes_read - *last_bytes) / dt / 1e6);
	fflush(stdout);
	*last_bytes = st.bytes_read;
}

/* Lets the writers run for seconds, printing progress every second. */
static void run_for(struct shmk_ring *r, double seconds)
{
	struct timespec tick = {0, 10000000};
	double t0 = now_s(), last = t0, t;
	uint64_t bytes = 0;

	while (!atomic_load(&run.failed)) {
		nanosleep(&tick, NULL);
		t = now_s();
		if (t - last >= 1 || t - t0 >= seconds) {
			progress(r, t - t0, t - last, &bytes);
			last = t;
		}
		if (t - t0 >= seconds)
			break;
	}
	atomic_store(&run.stop, 1);
}

/* Did every message written arrive exactly once? */
static int all_arrived(const struct thread *w, const struct thread *rd,
		       const struct shmk_ring_stats *st)
{
	uint64_t written = 0, read = 0, seq;
	int i;

	for (i = 0; i < run.writers; i++) {
		written += w[i].count;
		for (seq = 0; seq < w[i].count; seq++)
			if (!(run.seen[i][seq / 64] & 1ull << (seq % 64))) {
				fprintf(stderr, "writer %d seq %llu: lost\n", i,
					(unsigned long long)seq);
				return 0;
			}
	}
	for (i = 0; i < run.readers; i++)
		read += rd[i].count;
	if (written == read && st->written == written && st->read == read &&
	    st->lag == 0 && st->lost == 0)
		return 1;
	fprintf(stderr,
		"counts disagree: writers %llu, readers %llu, ring %llu/%llu, "
		"lag %llu, lost %llu\n",
		(unsigned long long)written, (unsigned long long)read,
		(unsigned long long)st->written, (unsigned long long)st->read,
		(unsigned long long)st->lag, (unsigned long long)st->lost);
	return 0;
}

static int usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-w WRITERS] [-r READERS] [-n NODES] "
		"[-b NODE_SIZE] [-d SECONDS]\n",
		prog);
	return 2;
}

/* Opens a handle per thread, as separate processes would.  (Threads may
 * share one, but a handle has 16 operations in flight at most: -EBUSY.) */
static int open_handles(int fd, struct thread *t, int n)
{
	int i, rc;

	for (i = 0; i < n; i++) {
		t[i].id = i;
		memset(t[i].last, 0xff, sizeof(t[i].last)); /* all -1 */
		rc = shmk_ring_open_fd(fd, NULL, &t[i].r);
		if (rc < 0) {
			fprintf(stderr, "open_fd: %s\n", shmk_strerror(rc));
			return rc;
		}
	}
	return 0;
}

static void close_handles(struct thread *t, int n)
{
	int i;

	for (i = 0; i < n; i++)
		shmk_ring_close(t[i].r);
}

/* Starts the threads, runs, stops, checks: 0 if all went well. */
static int bench(struct shmk_ring *r, struct thread *w, struct thread *rd,
		 double seconds)
{
	struct shmk_ring_stats st;
	double t0 = now_s(), elapsed;
	int i, ok;

	for (i = 0; i < run.readers; i++)
		pthread_create(&rd[i].tid, NULL, reader_main, &rd[i]);
	for (i = 0; i < run.writers; i++)
		pthread_create(&w[i].tid, NULL, writer_main, &w[i]);
	run_for(r, seconds);
	if (atomic_load(&run.failed))
		shmk_ring_shutdown(r); /* wake every thread at once */
	for (i = 0; i < run.writers; i++)
		pthread_join(w[i].tid, NULL);
	/* No more writes: the readers take what is left, then -EPIPE. */
	shmk_ring_shutdown(r);
	for (i = 0; i < run.readers; i++)
		pthread_join(rd[i].tid, NULL);
	elapsed = now_s() - t0; /* to the last message read */

	if (shmk_ring_stats(r, &st) < 0)
		return 1;
	ok = !atomic_load(&run.failed) && all_arrived(w, rd, &st);
	printf("total: %llu messages of %zu bytes in %.2f s: %.0f msgs/s, "
	       "%.1f MB/s; diff %llu; %s\n",
	       (unsigned long long)st.read, run.node_size, elapsed,
	       (double)st.read / elapsed, (double)st.bytes_read / elapsed / 1e6,
	       (unsigned long long)st.lag,
	       ok ? "all verified: none lost, none twice, in writer order"
		  : "FAILED");
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct thread w[MAX_THREADS] = {0}, rd[MAX_THREADS] = {0};
	long nodes = 50, size = 1 << 20;
	double seconds = 5;
	struct shmk_ring *r;
	int c, i, rc;

	run.writers = run.readers = 1;
	while ((c = getopt(argc, argv, "w:r:n:b:d:")) != -1) {
		switch (c) {
		case 'w':
			run.writers = atoi(optarg);
			break;
		case 'r':
			run.readers = atoi(optarg);
			break;
		case 'n':
			nodes = atol(optarg);
			break;
		case 'b':
			size = atol(optarg);
			break;
		case 'd':
			seconds = atof(optarg);
			break;
		default:
			return usage(argv[0]);
		}
	}
	if (optind < argc || run.writers < 1 || run.writers > MAX_THREADS ||
	    run.readers < 1 || run.readers > MAX_THREADS || nodes < 2 ||
	    size < (long)sizeof(struct head) || seconds <= 0)
		return usage(argv[0]);
	run.node_size = (size_t)size;
	printf("node size: %zu, nodes: %ld, writers: %d, readers: %d, "
	       "seconds: %g\n",
	       run.node_size, nodes, run.writers, run.readers, seconds);

	/* One process: the ring needs no name. */
	rc = shmk_ring_create(NULL, (size_t)nodes, run.node_size, NULL, &r);
	if (rc < 0) {
		fprintf(stderr, "create: %s\n", shmk_strerror(rc));
		return 1;
	}
	for (i = 0; i < run.writers; i++)
		run.seen[i] = calloc(MAX_SEQ / 64, sizeof(*run.seen[i]));
	rc = open_handles(shmk_ring_fd(r), w, run.writers);
	if (!rc)
		rc = open_handles(shmk_ring_fd(r), rd, run.readers);
	for (i = 0; i < run.writers && !rc; i++)
		if (!run.seen[i])
			rc = -ENOMEM;
	if (!rc)
		rc = bench(r, w, rd, seconds);
	close_handles(w, run.writers);
	close_handles(rd, run.readers);
	shmk_ring_close(r);
	for (i = 0; i < run.writers; i++)
		free(run.seen[i]);
	return rc ? 1 : 0;
}
