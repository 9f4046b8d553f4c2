/* SPDX-License-Identifier: MIT */
/*
 * 08_frames - zero-copy: video frames through a ring, written and read in
 * place.
 *
 * A 1920x1080 RGB frame is about 6 MiB.  Copying it into the ring and out
 * again would cost two copies per frame; instead the producer reserves a
 * node (shmk_ring_reserve), paints the frame straight into it and commits
 * it, and the consumer acquires the frame where it lies (shmk_ring_acquire),
 * checks every pixel and releases the node for the next frame.  The ring
 * never copies a byte.  Four nodes are enough: the producer paints one
 * frame while the consumer checks another.
 *
 * The frames are a test pattern (diagonal stripes that move one pixel a
 * frame), so the consumer knows what every row must hold.  It prints the
 * frames per second and GB/s.  As in 07_stream, either side may start
 * first and the producer's close ends the stream.
 *
 *	./08_frames consumer               # in one shell
 *	./08_frames producer [FRAMES]      # in another (default 3000)
 *	./08_frames [FRAMES]               # or both, the consumer in a child
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

#include "common.h" /* now_s, wait_ok */

#define NAME   "example.frames"
#define NODES  4
#define WIDTH  1920
#define HEIGHT 1080
#define ROW    ((size_t)WIDTH * 3) /* bytes: R, G, B */
#define WAIT   60000 /* ms: how long either side waits for the other */

/* A frame in a node: this header, then HEIGHT rows of ROW bytes. */
struct frame {
	uint64_t number; /* 0, 1, 2, ... */
	uint64_t count;	 /* frames in the whole stream */
	uint32_t width, height;
	unsigned char pad[40]; /* the pixels start on a cache line */
	unsigned char pixels[];
};

#define FRAME_BYTES (sizeof(struct frame) + (size_t)HEIGHT * ROW)

/*
 * The pattern: one long row of WIDTH + 256 pixels; row y of frame n is
 * this row from pixel (y + n) % 256 on.
 */
static unsigned char pattern[(WIDTH + 256) * 3];

static void make_pattern(void)
{
	size_t i;

	for (i = 0; i < WIDTH + 256; i++) {
		pattern[3 * i] = (unsigned char)i;
		pattern[3 * i + 1] = (unsigned char)(2 * i);
		pattern[3 * i + 2] = (unsigned char)(255 - i);
	}
}

static const unsigned char *row_of(uint64_t n, size_t y)
{
	return pattern + 3 * ((y + n) % 256);
}

/* ------------------------------------------------------------------ */
/* Producer                                                             */
/* ------------------------------------------------------------------ */

/* Paints frame n of count into a node we hold. */
static void paint(struct frame *f, uint64_t n, uint64_t count)
{
	size_t y;

	f->number = n;
	f->count = count;
	f->width = WIDTH;
	f->height = HEIGHT;
	for (y = 0; y < HEIGHT; y++)
		memcpy(f->pixels + y * ROW, row_of(n, y), ROW);
}

/* Reserves a node, paints frame n in it and commits it. */
static int send_frame(struct shmk_ring *r, uint64_t n, uint64_t count)
{
	struct shmk_msg m;
	int rc;

	rc = shmk_ring_reserve(r, &m, WAIT); /* m.len: the node's size */
	if (rc < 0)
		return rc;
	paint(m.data, n, count);
	m.len = FRAME_BYTES; /* the message's length */
	return shmk_ring_commit(r, &m);
}

/* Waits (WAIT ms at most) until the consumer has taken every frame:
 * closing at once could remove the ring before a late consumer opens it. */
static int wait_drained(struct shmk_ring *r, uint64_t frames)
{
	struct timespec ms = {0, 1000000};
	struct shmk_ring_stats st;
	int i;

	for (i = 0; i < WAIT; i++) {
		if (shmk_ring_stats(r, &st) < 0)
			return -1;
		if (st.read == frames)
			return 0;
		nanosleep(&ms, NULL);
	}
	return -1;
}

static int producer(const char *name, long frames)
{
	struct shmk_ring *r;
	long n;
	int rc;

	rc = shmk_ring_create(name, NODES, FRAME_BYTES, NULL, &r);
	if (rc < 0) {
		fprintf(stderr, "producer: create %s: %s%s\n", name,
			shmk_strerror(rc),
			rc == -EEXIST ? " (remove it with 'shmk rm')" : "");
		return 1;
	}
	for (n = 0; n < frames; n++) {
		rc = send_frame(r, (uint64_t)n, (uint64_t)frames);
		if (rc < 0) {
			fprintf(stderr, "producer: frame %ld: %s\n", n,
				shmk_strerror(rc));
			break;
		}
	}
	rc = n == frames ? wait_drained(r, (uint64_t)frames) : -1;
	if (rc == 0)
		printf("producer: sent %ld frames, all taken\n", frames);
	shmk_ring_close(r); /* shuts the ring down: the end of the stream */
	shmk_unlink(name);
	return rc < 0 ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* Consumer                                                             */
/* ------------------------------------------------------------------ */

/* Is this frame number want, whole and with the right pixels? */
static int check_frame(const struct shmk_msg *m, uint64_t want, uint64_t *count)
{
	const struct frame *f = m->data;
	size_t y;

	if (want == 0 && m->len >= sizeof(*f))
		*count = f->count;
	if (m->len != FRAME_BYTES || f->number != want || f->count != *count ||
	    f->width != WIDTH || f->height != HEIGHT) {
		fprintf(stderr, "consumer: frame %llu: wrong header\n",
			(unsigned long long)want);
		return -1;
	}
	for (y = 0; y < HEIGHT; y++)
		if (memcmp(f->pixels + y * ROW, row_of(want, y), ROW) != 0) {
			fprintf(stderr, "consumer: frame %llu: row %zu wrong\n",
				(unsigned long long)want, y);
			return -1;
		}
	return 0;
}

static void report(long frames, double s)
{
	printf("consumer: %ld frames of %dx%d RGB (%.1f MiB) checked in "
	       "%.3f s: %.0f frames/s, %.2f GB/s\n",
	       frames, WIDTH, HEIGHT, (double)FRAME_BYTES / 1048576, s,
	       (double)frames / s,
	       (double)frames * (double)FRAME_BYTES / s / 1e9);
	fflush(stdout);
}

/* Takes frames until the producer's close: the number taken, or -1. */
static long receive_frames(struct shmk_ring *r, uint64_t *count)
{
	struct shmk_msg m;
	double t0 = 0;
	long n;
	int rc;

	for (n = 0;; n++) {
		rc = shmk_ring_acquire(r, &m, WAIT);
		if (rc == -EPIPE)
			break; /* shut down, and we have read everything */
		if (rc < 0) {
			fprintf(stderr, "consumer: after %ld frames: %s\n", n,
				shmk_strerror(rc));
			return -1;
		}
		if (n == 0)
			t0 = now_s(); /* from the first frame */
		rc = check_frame(&m, (uint64_t)n, count);
		/* Until the release the node is ours: no writer reuses it. */
		shmk_ring_release(r, &m);
		if (rc < 0)
			return -1;
	}
	if (n > 0)
		report(n, now_s() - t0);
	return n;
}

static int consumer(const char *name)
{
	struct shmk_opts o = {.wait_ms = WAIT}; /* wait for the producer */
	struct shmk_ring *r;
	uint64_t count = 0;
	long n;
	int rc;

	rc = shmk_ring_open(name, &o, &r);
	if (rc < 0) {
		fprintf(stderr, "consumer: open %s: %s\n", name,
			shmk_strerror(rc));
		return 1;
	}
	if (shmk_ring_node_size(r) < FRAME_BYTES) {
		fprintf(stderr, "consumer: %s: nodes too small for a frame\n",
			name);
		shmk_ring_close(r);
		return 1;
	}
	n = receive_frames(r, &count);
	if (n >= 0 && (uint64_t)n != count)
		fprintf(stderr, "consumer: lost frames: %ld of %llu came\n", n,
			(unsigned long long)count);
	rc = n > 0 && (uint64_t)n == count ? 0 : 1;
	if (rc)
		shmk_ring_shutdown(r); /* so the producer stops at once */
	shmk_ring_close(r);
	return rc;
}

/* ------------------------------------------------------------------ */

/* Both sides: the consumer first, in a child, to show it waits. */
static int both(long frames)
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
	rc = producer(name, frames);
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
	int a = role ? 2 : 1; /* the FRAMES argument */
	long frames = argc > a ? atol(argv[a]) : 3000;

	if (frames <= 0 || argc > a + 1 ||
	    (role && !strcmp(role, "consumer") && argc > 2)) {
		fprintf(stderr, "usage: %s [producer] [FRAMES] | consumer\n",
			argv[0]);
		return 2;
	}
	make_pattern();
	if (!role)
		return both(frames);
	if (!strcmp(role, "producer"))
		return producer(NAME, frames);
	return consumer(NAME);
}
