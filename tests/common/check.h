/* SPDX-License-Identifier: MIT */
/*
 * check.h - the test harness: CHECK macros that print file:line, the
 * expression and the values, and helpers for multi-process tests.  A test
 * exits 0 on success, 1 on failure, 77 when it must be skipped.
 */
#ifndef SHMK_CHECK_H
#define SHMK_CHECK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmk.h"

/*
 * Sanitizer builds: CHECK_ASAN under AddressSanitizer (whose quarantine
 * keeps freed memory, so RSS says nothing about leaks there), and
 * CHECK_SANITIZED under it or ThreadSanitizer (both slow a test down).
 */
#if defined(__SANITIZE_ADDRESS__)
#define CHECK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHECK_ASAN 1
#endif
#endif
#ifndef CHECK_ASAN
#define CHECK_ASAN 0
#endif
#if CHECK_ASAN || defined(__SANITIZE_THREAD__)
#define CHECK_SANITIZED 1
#else
#define CHECK_SANITIZED 0
#endif

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, \
				__LINE__, #cond);                              \
			exit(1);                                               \
		}                                                              \
	} while (0)

#define CHECK_EQ(a, b)                                                         \
	do {                                                                   \
		long long a_ = (long long)(a), b_ = (long long)(b);            \
		if (a_ != b_) {                                                \
			fprintf(stderr,                                        \
				"%s:%d: CHECK_EQ(%s, %s) failed: %lld != "     \
				"%lld\n",                                      \
				__FILE__, __LINE__, #a, #b, a_, b_);           \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* An API call must return want (0 or a negative errno). */
#define CHECK_RC(expr, want)                                                   \
	do {                                                                   \
		long long r_ = (long long)(expr), w_ = (long long)(want);      \
		if (r_ != w_) {                                                \
			fprintf(stderr,                                        \
				"%s:%d: %s returned %lld (%s), expected "      \
				"%lld (%s)\n",                                 \
				__FILE__, __LINE__, #expr, r_,                 \
				shmk_strerror((int)r_), w_,                    \
				shmk_strerror((int)w_));                       \
			exit(1);                                               \
		}                                                              \
	} while (0)

#define CHECK_OK(expr) CHECK_RC(expr, 0)

#define SKIP(...)                                                              \
	do {                                                                   \
		printf("SKIP: " __VA_ARGS__);                                  \
		printf("\n");                                                  \
		exit(77);                                                      \
	} while (0)

static pid_t check_main_pid;

/*
 * For the tests that scan the directory itself: the directory a plain
 * name lives in, and its entry there (shmk_path() split at the last '/').
 * Given a prefix of names ("t<pid>."), entry is the prefix of their
 * entries.  0 or a negative errno: shmk_path()'s, -EINVAL for a file
 * path, -ERANGE if dir or entry is too small.
 */
static inline int check_shm_entry(const char *name, char *dir, size_t dcap,
				  char *entry, size_t ecap)
{
	char path[4096];
	const char *slash;
	int rc = shmk_path(name, path, sizeof(path));

	if (rc < 0)
		return rc;
	if (strchr(name, '/'))
		return -EINVAL;
	slash = strrchr(path, '/');
	if (!slash || (size_t)(slash - path) >= dcap ||
	    strlen(slash + 1) >= ecap)
		return -ERANGE;
	snprintf(dir, dcap, "%.*s", (int)(slash - path), path);
	snprintf(entry, ecap, "%s", slash + 1);
	return 0;
}

/* Removes the objects this test made (named t<pid>.*) at exit. */
static void check_cleanup(void)
{
	char name[64], dir[4096], prefix[256];
	struct dirent *e;
	DIR *d;

	if (getpid() != check_main_pid)
		return;
	/* A scan, not shmk_list(): the symlinks, FIFOs and bad names that
	 * hostile tests plant at our names must go too. */
	snprintf(name, sizeof(name), "t%d.", (int)check_main_pid);
	if (check_shm_entry(name, dir, sizeof(dir), prefix, sizeof(prefix)))
		return;
	d = opendir(dir);
	if (!d)
		return;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix)))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

/* Becomes uid (and its gid, no supplementary groups) for good: the tests
 * that play other users run as root and call it in a child. */
static inline void check_become(uid_t uid)
{
	CHECK_OK(setgroups(0, NULL));
	CHECK_OK(setresgid(uid, uid, uid));
	CHECK_OK(setresuid(uid, uid, uid));
	CHECK_EQ(geteuid(), uid);
}

/* Call first in main(). */
static inline void check_init(void)
{
	check_main_pid = getpid();
	atexit(check_cleanup);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

/* A name unique to this test process: t<pid>.<tag>. */
static inline const char *tname(const char *tag)
{
	static char buf[8][128];
	static int next;
	char *b = buf[next++ % 8];

	snprintf(b, sizeof(buf[0]), "t%d.%s", (int)check_main_pid, tag);
	return b;
}

static inline uint64_t check_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t check_now_ms(void)
{
	return check_now_ns() / 1000000;
}

static inline int check_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Judges n timed waits of timeout_ms that all timed out, taking ns[i] each
 * (sorted in place): none may end early, the best must overshoot by at
 * most 5 ms (what the wait itself adds; the median and the worst are
 * scheduling) and the worst by at most 200 ms.  Prints the overshoots.
 */
static inline void check_overshoots(const char *what, int timeout_ms,
				    uint64_t *ns, int n)
{
	uint64_t t = (uint64_t)timeout_ms * 1000000u;

	qsort(ns, (size_t)n, sizeof(*ns), check_cmp_u64);
	printf("  %s, %d ms: overshoot min %.3f median %.3f max %.3f ms\n",
	       what, timeout_ms, ((double)ns[0] - (double)t) / 1e6,
	       ((double)ns[n / 2] - (double)t) / 1e6,
	       ((double)ns[n - 1] - (double)t) / 1e6);
	if (ns[0] < t || ns[0] > t + 5000000u || ns[n - 1] > t + 200000000u) {
		fprintf(stderr,
			"%s, %d ms: waits of %.3f .. %.3f ms: early, or "
			"stretched beyond 5 ms (best) or 200 ms (worst)\n",
			what, timeout_ms, (double)ns[0] / 1e6,
			(double)ns[n - 1] / 1e6);
		exit(1);
	}
}

static inline void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Whether every other thread of this process is asleep (not in state R in
 * /proc/self/task/TID/stat).
 */
static inline int check_threads_asleep(void)
{
	DIR *d = opendir("/proc/self/task");
	long self = syscall(SYS_gettid);
	struct dirent *e;
	int asleep = 1;

	CHECK(d != NULL);
	while (asleep && (e = readdir(d))) {
		char path[300], buf[512], *close_paren;
		ssize_t n;
		int fd;

		if (e->d_name[0] == '.' || atol(e->d_name) == self)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat",
			 e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* the thread has ended */
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		close_paren = strrchr(buf, ')');
		if (close_paren && close_paren[1] == ' ' &&
		    close_paren[2] == 'R')
			asleep = 0;
	}
	closedir(d);
	return asleep;
}

/*
 * Runs fn(arg) in a child process whose exit status is fn's return value.
 * The child dies with the test (PR_SET_PDEATHSIG), so a failing test never
 * leaves processes behind.
 *
 * Under a sanitizer, fork() first waits (up to 200 ms) for this process's
 * other threads to be asleep: the sanitizers' runtimes of this toolchain
 * take no locks around fork(), so a child forked while another thread is
 * inside the sanitizer's allocator inherits its lock held and hangs in
 * its first malloc.  A thread asleep in a system call holds none.
 */
static inline pid_t spawn(int (*fn)(void *), void *arg)
{
	pid_t pid;

	if (CHECK_SANITIZED) {
		uint64_t end = check_now_ms() + 200;

		while (!check_threads_asleep() && check_now_ms() < end)
			sleep_ms(1);
	}
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(fn(arg));
	}
	return pid;
}

/*
 * Waits up to timeout_ms for pid.  Returns its exit status, 128 + the
 * signal that killed it, or -1 after killing it at the deadline.
 */
static inline int wait_child(pid_t pid, int timeout_ms)
{
	uint64_t end = check_now_ms() + (uint64_t)timeout_ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		CHECK(r == 0 || (r < 0 && errno == EINTR));
		if (check_now_ms() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fprintf(stderr, "child %d killed at its deadline\n",
				(int)pid);
			return -1;
		}
		sleep_ms(1);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

/*
 * A SIGUSR1 storm on this process, for timed waits that EINTR must neither
 * end early nor stretch: a child sends one every 100 microseconds, and a
 * handler installed without SA_RESTART (so blocking calls are interrupted)
 * counts them.  check_storm_stop() ends it and returns the count.
 */
static volatile sig_atomic_t check_usr1;

static inline void check_on_usr1(int sig)
{
	(void)sig;
	check_usr1++;
}

static inline int check_storm_child(void *arg)
{
	pid_t target = (pid_t)(intptr_t)arg;

	while (kill(target, SIGUSR1) == 0)
		usleep(100);
	return 0;
}

static inline pid_t check_storm_start(void)
{
	struct sigaction sa = {.sa_handler = check_on_usr1};

	sigaction(SIGUSR1, &sa, NULL);
	check_usr1 = 0;
	return spawn(check_storm_child, (void *)(intptr_t)getpid());
}

static inline int check_storm_stop(pid_t storm)
{
	kill(storm, SIGKILL);
	wait_child(storm, 5000);
	signal(SIGUSR1, SIG_DFL);
	return (int)check_usr1;
}

/* Number of entries in a directory (fd and /dev/shm leak checks). */
static inline int count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	CHECK(d != NULL);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/*
 * Entries in the directory of names (/dev/shm) whose file names begin as
 * the name name_prefix's would.  A scan, not shmk_list(): a leak check
 * counts every file left at the names, objects or not.
 */
static inline int count_entries(const char *name_prefix)
{
	char dir[4096], prefix[256];
	struct dirent *e;
	int n = 0;
	DIR *d;

	CHECK_OK(check_shm_entry(name_prefix, dir, sizeof(dir), prefix,
				 sizeof(prefix)));
	d = opendir(dir);
	CHECK(d != NULL);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix)))
			n++;
	closedir(d);
	return n;
}

/* Entries made by this test (t<pid>.*): other tests may run at the same
 * time, so only our own are counted. */
static inline int count_ours(void)
{
	char name[64];

	snprintf(name, sizeof(name), "t%d.", (int)check_main_pid);
	return count_entries(name);
}

/* Open descriptors of this process. */
static inline int count_fds(void)
{
	return count_dir("/proc/self/fd") - 1; /* the listing's own */
}

/* An RPC handler's reply: the request with every byte plus one (so that a
 * reply can only be its own call's), in memory the library frees. */
static inline int check_reply_plus_one(struct shmk_rpc_req *rq)
{
	const unsigned char *b = rq->data;
	unsigned char *out = malloc(rq->len ? rq->len : 1);
	size_t i;

	CHECK(out != NULL);
	for (i = 0; i < rq->len; i++)
		out[i] = (unsigned char)(b[i] + 1);
	rq->reply = out;
	rq->reply_len = rq->len;
	rq->reply_free = free;
	return 0;
}

#endif /* SHMK_CHECK_H */
