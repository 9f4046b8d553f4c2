/* SPDX-License-Identifier: MIT */
/*
 * test_verify - the benchmark's verifier catches what it must:
 *
 *   1. bm_check() accepts a well-formed message of every size and rejects
 *      one with any single bit of any byte changed (header or payload),
 *      two payload words swapped, or a wrong length;
 *   2. shmk-bench (argv[1]) run with SHMK_BENCH_CORRUPT=N, which corrupts
 *      one payload byte of message N in every run, reports every run
 *      failed and exits 1; the same run without it passes.  For the peers
 *      and latency sections, for the topic section, where every
 *      subscriber must catch it, for the wake section (its round
 *      trips through epoll are wake.c's, not the transports'), and for
 *      the rpc section (rpc.c's calls: every shmk_rpc and seqpacket row
 *      catches the corrupt request's echo; the floor carries no data to
 *      check and is not corrupted).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "verify.h"

static int fails;

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, \
				__LINE__, #c);                                 \
			fails++;                                               \
		}                                                              \
	} while (0)

static void test_check(void)
{
	static const size_t sizes[] = {32, 33, 40, 64, 100, 1024, 4099, 65536};
	unsigned char *m = malloc(65536), *copy = malloc(65536);
	struct bm_hdr h;

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t len = sizes[k], step = len > 4096 ? 97 : 1, caught = 0,
		       tried = 0;
		uint64_t ps = bm_fill(m, len, 3);

		bm_stamp(m, len, 3, 12345, ps, 0);
		CHECK(bm_check(m, len, &h) == 0);
		CHECK(h.seq == 12345 && h.writer == 3 && h.len == len);
		CHECK(bm_check(m, len - 1, &h) != 0);
		memcpy(copy, m, len);
		for (size_t i = 0; i < len; i += step)
			for (int bit = 0; bit < 8; bit += 7) {
				copy[i] ^= (unsigned char)(1u << bit);
				tried++;
				caught += bm_check(copy, len, &h) != 0;
				copy[i] ^= (unsigned char)(1u << bit);
			}
		CHECK(caught == tried);
		if (caught != tried)
			fprintf(stderr, "  %zu bytes: %zu of %zu caught\n", len,
				caught, tried);
		CHECK(bm_check(copy, len, &h) == 0);
		if (len >= BM_HDR + 16) { /* swap two payload words */
			uint64_t a, b;

			memcpy(&a, copy + BM_HDR, 8);
			memcpy(&b, copy + BM_HDR + 8, 8);
			if (a != b) {
				memcpy(copy + BM_HDR, &b, 8);
				memcpy(copy + BM_HDR + 8, &a, 8);
				CHECK(bm_check(copy, len, &h) != 0);
			}
		}
		/* Another writer's payload under this header. */
		if (len > BM_HDR) {
			bm_fill(copy, len, 4);
			memcpy(copy, m, BM_HDR);
			CHECK(bm_check(copy, len, &h) != 0);
		}
	}
	free(m);
	free(copy);
}

/* Runs the benchmark on sections only and transports tr; its exit
 * status, stderr in err. */
static int run_bench(const char *bench, const char *only, const char *tr,
		     const char *corrupt, char *err, size_t cap)
{
	int p[2], st;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 2);
		close(p[0]);
		if (!freopen("/dev/null", "w", stdout))
			_exit(126);
		if (corrupt)
			setenv("SHMK_BENCH_CORRUPT", corrupt, 1);
		else
			unsetenv("SHMK_BENCH_CORRUPT");
		/* 20 idle clients: a thousand processes under a sanitizer
		 * take minutes to start. */
		execl(bench, bench, "--only", only, "--transports", tr,
		      "--sizes", "1K", "--seconds", "0.1", "--idle-clients",
		      "20", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (got + 1 < cap && (n = read(p[0], err + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	err[got] = 0;
	close(p[0]);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int count(const char *s, const char *what)
{
	int n = 0;

	while ((s = strstr(s, what))) {
		n++;
		s++;
	}
	return n;
}

int main(int argc, char **argv)
{
	static char err[65536];
	int rc;

	test_check();
	for (int s = 0; argc > 1 && s < 4; s++) {
		/* Four transports, each in two sections; or the topic's three
		 * built-in transports at 1, 2 and 4 subscribers, two of them
		 * also timed with 1 and 4; or the wake section's nine rows
		 * (it takes no --transports); or the rpc section's 16 rows of
		 * calls at 1 KiB (3 modes, no spin and 2 hogs 2 each, each
		 * shmk_rpc and seqpacket; shmk_rpc without and with idle
		 * clients) and its floor. */
		static const char *const only_of[] = {"peers,latency", "topic",
						      "wake", "rpc"};
		static const char *const tr_of[] = {"shmk,shmk-zc,pipe,dgram",
						    "topic,topic-zc,tee",
						    "pipe", "pipe"};
		static const int runs_of[] = {8, 13, 9, 16};
		const char *only = only_of[s], *tr = tr_of[s];
		int runs = runs_of[s];

		rc = run_bench(argv[1], only, tr, NULL, err, sizeof(err));
		CHECK(rc == 0);
		if (rc)
			fprintf(stderr, "clean run:\n%s\n", err);
		rc = run_bench(argv[1], only, tr, "5", err, sizeof(err));
		CHECK(rc == 1);
		CHECK(count(err, "FAILED") == runs);
		CHECK(count(err, "arrived corrupt") == runs);
		if (count(err, "FAILED") != runs)
			fprintf(stderr, "corrupted run:\n%s\n", err);
	}
	if (fails) {
		fprintf(stderr, "test_verify: %d checks failed\n", fails);
		return 1;
	}
	printf("test_verify: ok\n");
	return 0;
}
