/* SPDX-License-Identifier: MIT */
/*
 * 03_events - the "written" / "handled" pattern: a writer fills a shared
 * buffer and sets the event "written"; a reader wakes, checks the data and
 * sets "handled"; the writer waits for "handled" before the next round.
 * The two strictly alternate.  The writer prints the rate at the end.
 *
 *	./03_events [ROUNDS [SIZE]]     (default 10000 rounds of 256 KiB)
 *
 * The reader runs in a child process.  Both events are auto-reset: each
 * set wakes one waiter and is consumed by it.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmk.h>

#include "common.h" /* now_s */

static int reader(const char *prefix, long rounds)
{
	struct shmk_opts o = {.wait_ms = 10000};
	struct shmk_event *written, *handled;
	struct shmk_buffer *b;
	char name[64];
	long i;

	snprintf(name, sizeof(name), "%s.written", prefix);
	if (shmk_event_open(name, &o, &written) < 0)
		return 1;
	snprintf(name, sizeof(name), "%s.handled", prefix);
	if (shmk_event_open(name, &o, &handled) < 0)
		return 1;
	snprintf(name, sizeof(name), "%s.data", prefix);
	if (shmk_buffer_open(name, &o, &b) < 0)
		return 1;
	for (i = 0; i < rounds; i++) {
		const unsigned char *p;
		size_t j, n = shmk_buffer_size(b);

		if (shmk_event_wait(written, 10000) < 0)
			return 1;
		/* The writer waits for "handled": reading in place, with
		 * no copy and no lock, is safe in this pattern.  Every byte
		 * is checked, so every byte crosses to this CPU. */
		p = shmk_buffer_data(b);
		for (j = 0; j < n; j++)
			if (p[j] != (unsigned char)i) {
				fprintf(stderr,
					"reader: round %ld: wrong "
					"byte %zu\n",
					i, j);
				return 1;
			}
		shmk_event_set(handled);
	}
	shmk_buffer_close(b);
	shmk_event_close(handled);
	shmk_event_close(written);
	return 0;
}

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? atol(argv[1]) : 10000;
	size_t size = argc > 2 ? (size_t)atol(argv[2]) : 256 * 1024;
	struct shmk_event *written, *handled;
	struct shmk_buffer *b;
	char prefix[32], name[64];
	int rc, status;
	double t0, s;
	pid_t pid;
	long i;

	if (rounds <= 0 || size == 0) {
		fprintf(stderr, "usage: %s [ROUNDS [SIZE]]\n", argv[0]);
		return 2;
	}
	snprintf(prefix, sizeof(prefix), "example.events.%d", (int)getpid());
	snprintf(name, sizeof(name), "%s.written", prefix);
	rc = shmk_event_create(name, 0, 0, NULL, &written);
	snprintf(name, sizeof(name), "%s.handled", prefix);
	if (!rc)
		rc = shmk_event_create(name, 0, 0, NULL, &handled);
	snprintf(name, sizeof(name), "%s.data", prefix);
	if (!rc)
		rc = shmk_buffer_create(name, size, NULL, &b);
	if (rc < 0) {
		fprintf(stderr, "writer: create %s: %s\n", name,
			shmk_strerror(rc));
		return 1;
	}
	pid = fork();
	if (pid == 0)
		_exit(reader(prefix, rounds));

	t0 = now_s();
	for (i = 0; i < rounds; i++) {
		memset(shmk_buffer_data(b), (int)(unsigned char)i, size);
		shmk_event_set(written);
		rc = shmk_event_wait(handled, 10000);
		if (rc < 0) {
			fprintf(stderr, "writer: round %ld: %s\n", i,
				shmk_strerror(rc));
			break;
		}
	}
	s = now_s() - t0;
	waitpid(pid, &status, 0);
	if (rc == 0)
		printf("%ld rounds of %zu bytes in %.3f s: %.0f rounds/s, "
		       "%.1f MB/s\n",
		       rounds, size, s, (double)rounds / s,
		       (double)rounds * (double)size / s / 1e6);
	shmk_buffer_close(b);
	shmk_event_close(handled);
	shmk_event_close(written);
	shmk_unlink(name);
	snprintf(name, sizeof(name), "%s.written", prefix);
	shmk_unlink(name);
	snprintf(name, sizeof(name), "%s.handled", prefix);
	shmk_unlink(name);
	return rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
