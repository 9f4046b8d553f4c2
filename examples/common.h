/* SPDX-License-Identifier: MIT */
/*
 * common.h - the few lines of plumbing that the examples share, so that
 * each example's own file is about shmk.  Nothing here calls shmk.
 */
#ifndef SHMK_EXAMPLES_COMMON_H
#define SHMK_EXAMPLES_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Seconds on a clock that never jumps (for rates). */
static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits for child pid: 1 if it ran and exited 0, else 0. */
static inline int wait_ok(pid_t pid)
{
	int status;

	return pid > 0 && waitpid(pid, &status, 0) == pid &&
	       WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Starts this program again in a child, as "prog side" (the other side
 * of a two-sided example); returns the child's pid, or -1. */
static inline pid_t spawn_self(const char *prog, const char *side)
{
	pid_t pid;

	fflush(stdout); /* or the child inherits unwritten output */
	pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", prog, side, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/*
 * Which side of a two-sided example argv asks for: 1 for "one", 2 for
 * "other", 0 for no argument (both: one starts the other); anything else
 * prints the usage line and gives -1.
 */
static inline int which_side(int argc, char **argv, const char *one,
			     const char *other)
{
	if (argc == 1)
		return 0;
	if (!strcmp(argv[1], one))
		return 1;
	if (!strcmp(argv[1], other))
		return 2;
	fprintf(stderr, "usage: %s [%s|%s]\n", argv[0], one, other);
	return -1;
}

/* The payload of 07 and 09: n pseudo-random bytes that depend on seed
 * (xorshift64). */
static inline void fill(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15u | 1; /* never 0 */
	size_t i;

	for (i = 0; i < n; i += sizeof(x)) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, n - i < sizeof(x) ? n - i : sizeof(x));
	}
}

/* A 64-bit hash (FNV-1a over words, folded): enough to catch a torn,
 * stale or misplaced message, not meant to resist an attacker. */
static inline uint64_t checksum(const unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t h = 0xcbf29ce484222325u ^ seed, w;

	for (; n >= sizeof(w); n -= sizeof(w), p += sizeof(w)) {
		memcpy(&w, p, sizeof(w));
		h = (h ^ w) * 0x100000001b3u;
		h ^= h >> 32;
	}
	while (n--)
		h = (h ^ *p++) * 0x100000001b3u;
	return h;
}

#endif
