/* SPDX-License-Identifier: MIT */
/*
 * 10_topic_frames - publish/subscribe: every video frame to three
 * subscriber processes, zero-copy, first lossless and then lossy.
 *
 * A ring (08_frames) gives each frame to one reader; a topic gives every
 * frame to every subscriber.  The publisher sends 1920x1080 NV12 frames
 * (1080 rows of Y, then 540 rows of interleaved U and V: 3 MiB) at 100
 * frames/s: it loans room in the topic's log (shmk_topic_loan), paints
 * the frame there and commits it (shmk_topic_commit).  Each subscriber
 * acquires the frame where it lies (shmk_topic_acquire), checks it and
 * releases it (shmk_topic_release).  Nothing is copied.  Two subscribers
 * keep up; the third holds each frame 15 ms before it checks it (so it
 * manages less than 66 frames/s).
 *
 * The log is 16 MiB: five frames (four or five lossy, which frees room a
 * little ahead).  When it is full the policy decides:
 *  - lossless (the default): the publisher waits for the slowest
 *    subscriber, so every subscriber gets every frame, at its pace.
 *  - SHMK_F_LOSSY: the publisher never waits; to make room the log's
 *    tail passes the oldest frames, and a subscriber still behind them
 *    loses them.  It is told: acquire returns -EOVERFLOW once if it was
 *    lapped, release returns -EOVERFLOW if the frame was passed while
 *    held (it may be torn: not to be used; the check says whether its
 *    bytes had changed yet), and shmk_topic_lost() counts both kinds.
 *    Either way the next acquire takes the oldest frame still held, the
 *    next to go: a subscriber always slower than the publisher loses
 *    most frames.  Lossy suits subscribers that are slow now and then,
 *    or that want recent data more than all of it.
 *
 * Each frame carries its number, and each of its rows is a pattern
 * derived from that number; the subscribers check every byte.  Frames
 * that arrive must be intact and in order, and each frame must be either
 * received or counted lost, or the program exits 1.
 *
 *	./10_topic_frames [FRAMES]        # each policy in turn (default 100)
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

#define WIDTH	 1920
#define ROWS	 (1080 + 540) /* NV12: Y rows, then UV rows */
#define CAPACITY (16u << 20)  /* the log: a power of two */
#define PERIOD	 0.010	      /* s: the publisher's frame period */
#define SLOW	 0.015	      /* s: the slow subscriber's work per frame */
#define NSUB	 3	      /* subscribers; the last one is slow */
#define WAIT	 10000	      /* ms: the longest any wait may take */

/* A frame: this header (one cache line), then ROWS rows of WIDTH bytes. */
struct frame {
	uint64_t number; /* 0, 1, 2, ... */
	unsigned char pad[56];
	unsigned char pixels[];
};

#define FRAME_BYTES (sizeof(struct frame) + (size_t)WIDTH * ROWS)

/* Row r of frame n is this ramp from byte (r + n) % 256 on: diagonal
 * stripes that move one pixel a frame. */
static unsigned char ramp[WIDTH + 256];

static const unsigned char *row_of(uint64_t n, size_t r)
{
	return ramp + (r + n) % 256;
}

static void sleep_s(double s) /* s < 1 */
{
	struct timespec ts = {0, (long)(s * 1e9)};

	if (s > 0)
		nanosleep(&ts, NULL);
}

/* The frame's number if it is a whole, correct frame, else -1. */
static long check(const struct shmk_msg *m, long frames)
{
	const struct frame *f = m->data;
	long n;
	size_t r;

	if (m->len != FRAME_BYTES || (n = (long)f->number) < 0 || n >= frames)
		return -1;
	for (r = 0; r < ROWS; r++)
		if (memcmp(f->pixels + r * WIDTH, row_of((uint64_t)n, r),
			   WIDTH))
			return -1;
	return n;
}

/* A subscriber: takes frames until the publisher shuts the topic down. */
static int subscriber(const char *name, const char *who, int slow, long frames)
{
	struct shmk_opts o = {.wait_ms = WAIT};
	long got = 0, first = -1, last = -1, n, missing = 0, gaps = 0;
	long lapped = 0, torn = 0, seen = 0;
	char gap_list[64] = "";
	struct shmk_topic *t;
	struct shmk_msg m;
	uint64_t lost;
	int rc;

	rc = shmk_topic_open(name, &o, &t);
	if (!rc)
		rc = shmk_topic_subscribe(t, 0); /* from the next frame on */
	while (!rc) {
		rc = shmk_topic_acquire(t, &m, WAIT);
		if (rc == -EOVERFLOW) { /* lapped: frames lost, none held */
			lapped++;
			rc = 0;
			continue;
		}
		if (rc < 0)
			break; /* -EPIPE: shut down and drained, the end */
		if (slow)
			sleep_s(SLOW); /* "work" on the frame, in place */
		n = check(&m, frames);
		rc = shmk_topic_release(t, &m);
		if (rc == -EOVERFLOW) { /* passed while we held it */
			torn++;
			seen += n < 0; /* its bytes had changed already */
			rc = 0;
			continue;
		}
		if (rc < 0 || n <= last) { /* n < 0: not a correct frame */
			fprintf(stderr, "%s: the frame after %ld: %s\n", who,
				last, rc < 0 ? shmk_strerror(rc) : "wrong");
			rc = 1;
			goto out;
		}
		if (n > last + 1 && ++gaps <= 4) { /* the first few gaps */
			size_t u = strlen(gap_list);

			snprintf(gap_list + u, sizeof(gap_list) - u, " %ld-%ld",
				 last + 1, n - 1);
		}
		missing += n - last - 1;
		first = first < 0 ? n : first;
		last = n;
		got++;
	}
	if (rc == -EPIPE) {
		missing += frames - 1 - last;
		lost = shmk_topic_lost(t);
		printf("  %-6s %3ld received (%ld..%ld), %3llu lost", who, got,
		       first, last, (unsigned long long)lost);
		if (lost)
			printf(": %ld overwritten while read (%ld seen torn), "
			       "%ld lapped; %ld gaps:%s%s",
			       torn, seen, lapped, gaps, gap_list,
			       gaps > 4 ? " ..." : "");
		printf("\n");
		/* The frames that never came are exactly those counted lost,
		 * and a lossless topic loses none. */
		rc = (uint64_t)missing != lost || got + missing != frames ||
		     (lost && !shmk_topic_lossy(t));
		if (rc)
			fprintf(stderr, "%s: %ld frames missing, %llu lost\n",
				who, missing, (unsigned long long)lost);
	} else {
		fprintf(stderr, "%s: %s\n", who, shmk_strerror(rc));
	}
out:
	shmk_topic_close(t);
	return rc ? 1 : 0;
}

/* Loans a frame, paints frame n in place, commits it; the time it
 * waited for room is added to *waited. */
static int publish(struct shmk_topic *t, long n, double *waited)
{
	double t0 = now_s();
	struct shmk_msg m;
	struct frame *f;
	size_t r;
	int rc;

	rc = shmk_topic_loan(t, FRAME_BYTES, &m, WAIT);
	*waited += now_s() - t0;
	if (rc < 0)
		return rc;
	f = m.data;
	f->number = (uint64_t)n;
	for (r = 0; r < ROWS; r++)
		memcpy(f->pixels + r * WIDTH, row_of((uint64_t)n, r), WIDTH);
	return shmk_topic_commit(t, &m); /* m.len: the loan's, FRAME_BYTES */
}

/* Waits for a subscriber to end and prints what it printed (its stdout
 * is the pipe fd), so that the reports come in a fixed order. */
static int reap(pid_t pid, int fd)
{
	char buf[512];
	ssize_t k;

	while ((k = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)k, stdout);
	close(fd);
	return wait_ok(pid);
}

static int run(int lossy, long frames)
{
	static const char *const who[NSUB] = {"fast-1", "fast-2", "slow"};
	struct shmk_opts o = {.flags = lossy ? SHMK_F_LOSSY : 0};
	struct shmk_topic_stats st = {0};
	int i, k, rc, fd[NSUB], p[2], ok = 1;
	double waited = 0, t0, t1;
	struct shmk_topic *t;
	pid_t pid[NSUB];
	char name[64];
	long n = 0;

	/* A name of our own, so that two runs at once do not meet. */
	snprintf(name, sizeof(name), "example.topic_frames.%d", (int)getpid());
	rc = shmk_topic_create(name, CAPACITY, FRAME_BYTES, &o, &t);
	if (rc < 0) {
		fprintf(stderr, "create %s: %s\n", name, shmk_strerror(rc));
		return 1;
	}
	printf("%s: %ld frames of 1920x1080 NV12 (%zu bytes) at %.0f/s\n",
	       lossy ? "SHMK_F_LOSSY" : "lossless", frames, FRAME_BYTES,
	       1 / PERIOD);
	fflush(stdout); /* or the children would print it again */
	for (k = 0; k < NSUB && pipe(p) == 0; k++) {
		pid[k] = fork();
		if (pid[k] == 0) { /* a new handle, by name (05_anonymous) */
			dup2(p[1], STDOUT_FILENO);
			exit(subscriber(name, who[k], k == NSUB - 1, frames));
		}
		close(p[1]);
		fd[k] = p[0];
		if (pid[k] < 0) {
			close(p[0]);
			break;
		}
	}
	/* A subscription gets the frames published after it began: wait
	 * (WAIT ms at most) until all of them are subscribed. */
	for (i = 0; k == NSUB && i < WAIT && st.subscribers < NSUB; i++) {
		sleep_s(0.001);
		shmk_topic_stats(t, &st);
	}
	if (st.subscribers < NSUB)
		fprintf(stderr, "the subscribers did not all start\n");
	t0 = now_s();
	for (n = 0; st.subscribers == NSUB && n < frames; n++) {
		double next = now_s() + PERIOD;

		rc = publish(t, n, &waited);
		if (rc < 0) {
			fprintf(stderr, "frame %ld: %s\n", n,
				shmk_strerror(rc));
			break;
		}
		sleep_s(next - now_s()); /* the camera's pace, at most */
	}
	t1 = now_s();
	shmk_topic_shutdown(t); /* the end: subscribers drain, then -EPIPE */
	for (i = 0; i < k; i++) {
		if (n < frames)
			kill(pid[i], SIGTERM);
		ok &= reap(pid[i], fd[i]);
	}
	shmk_topic_stats(t, &st); /* the subscribers' counters included */
	printf("  publisher: %ld frames in %.2f s (%.0f/s), %.3f s of it "
	       "in shmk_topic_loan\n",
	       n, t1 - t0, (double)n / (t1 - t0), waited);
	printf("  topic: published %llu, delivered %llu, lost %llu, "
	       "full_waits %llu, held %llu\n",
	       (unsigned long long)st.published,
	       (unsigned long long)st.delivered, (unsigned long long)st.lost,
	       (unsigned long long)st.full_waits, (unsigned long long)st.held);
	/* Each subscriber took or lost each frame, once. */
	if (n < frames || st.published != (uint64_t)frames ||
	    st.delivered + st.lost != NSUB * (uint64_t)frames)
		ok = 0;
	shmk_topic_close(t);
	shmk_unlink(name);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	long frames = argc > 1 ? atol(argv[1]) : 100;
	int i, rc;

	if (argc > 2 || frames <= 0) {
		fprintf(stderr, "usage: %s [FRAMES]\n", argv[0]);
		return 2;
	}
	for (i = 0; i < WIDTH + 256; i++)
		ramp[i] = (unsigned char)i;
	rc = run(0, frames);
	printf("\n");
	return run(1, frames) | rc;
}
