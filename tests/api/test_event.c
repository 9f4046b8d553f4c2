/* SPDX-License-Identifier: MIT */
/*
 * test_event - named events across processes: an auto-reset set releases
 * exactly one of three waiters, a manual-reset set releases all (even if
 * reset at once) and stays set, timeouts (exact under a signal storm),
 * shutdown, and a long strictly alternating ping-pong (the "written" /
 * "handled" pattern) in which no wake-up may be lost.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"

static const char *g_name;
static int g_pipe[2];

/* Waits once (5 s at most) and reports the result on the pipe. */
static int child_wait(void *arg)
{
	struct shmk_event *e;
	signed char rc;

	(void)arg;
	CHECK_OK(shmk_event_open(g_name, NULL, &e));
	CHECK_EQ(write(g_pipe[1], "r", 1), 1);
	rc = (signed char)shmk_event_wait(e, 5000);
	CHECK_EQ(write(g_pipe[1], &rc, 1), 1);
	CHECK_OK(shmk_event_close(e));
	return 0;
}

/* Results that arrive on the pipe within ms, counted by value. */
static int collect(int ms, int want_rc)
{
	uint64_t end = check_now_ms() + (uint64_t)ms;
	struct timeval tv;
	signed char rc;
	fd_set fds;
	int n = 0;

	while (check_now_ms() < end) {
		uint64_t left = end - check_now_ms();

		FD_ZERO(&fds);
		FD_SET(g_pipe[0], &fds);
		tv.tv_sec = (time_t)(left / 1000);
		tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
		if (select(g_pipe[0] + 1, &fds, NULL, NULL, &tv) <= 0)
			continue;
		CHECK_EQ(read(g_pipe[0], &rc, 1), 1);
		CHECK_EQ(rc, want_rc);
		n++;
	}
	return n;
}

static void start_waiters(pid_t *pid, int n)
{
	char c;
	int i;

	for (i = 0; i < n; i++)
		pid[i] = spawn(child_wait, NULL);
	for (i = 0; i < n; i++)
		CHECK_EQ(read(g_pipe[0], &c, 1), 1);
	sleep_ms(100); /* all asleep in shmk_event_wait */
}

static void test_auto_reset(void)
{
	struct shmk_event *e;
	struct shmk_stat st;
	pid_t pid[3];
	int i;

	CHECK_OK(shmk_event_create(g_name, 0, 0, NULL, &e));
	start_waiters(pid, 3);
	for (i = 0; i < 3; i++) {
		CHECK_OK(shmk_event_set(e));
		CHECK_EQ(collect(1000, 0), 1); /* one waiter per set */
	}
	for (i = 0; i < 3; i++)
		CHECK_EQ(wait_child(pid[i], 10000), 0);
	/* Nobody waiting: the set is kept for the next waiter, once. */
	CHECK_OK(shmk_event_set(e));
	CHECK_OK(shmk_event_set(e));
	CHECK_OK(shmk_event_wait(e, 0));
	CHECK_RC(shmk_event_wait(e, 0), -EAGAIN);
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK_EQ(st.kind, SHMK_KIND_EVENT);
	CHECK_EQ(st.geom[0], 0);
	CHECK_EQ(st.counter[0], 5); /* sets */
	CHECK_EQ(st.counter[2], 4); /* wakes */
	CHECK_OK(shmk_event_close(e));
	CHECK_OK(shmk_unlink(g_name));
}

static void test_manual_reset(void)
{
	struct shmk_event *e;
	pid_t pid[3];
	int i;

	CHECK_OK(shmk_event_create(g_name, 1, 0, NULL, &e));
	start_waiters(pid, 3);
	CHECK_OK(shmk_event_set(e));
	CHECK_EQ(collect(1000, 0), 3);
	for (i = 0; i < 3; i++)
		CHECK_EQ(wait_child(pid[i], 10000), 0);
	CHECK_OK(shmk_event_wait(e, 0)); /* stays set */
	CHECK_OK(shmk_event_wait(e, 0));
	CHECK_OK(shmk_event_reset(e));
	CHECK_RC(shmk_event_wait(e, 0), -EAGAIN);
	/* A set followed at once by a reset still releases every waiter
	 * that was waiting. */
	start_waiters(pid, 3);
	CHECK_OK(shmk_event_set(e));
	CHECK_OK(shmk_event_reset(e));
	CHECK_EQ(collect(1000, 0), 3);
	for (i = 0; i < 3; i++)
		CHECK_EQ(wait_child(pid[i], 10000), 0);
	CHECK_OK(shmk_event_close(e));
	CHECK_OK(shmk_unlink(g_name));
}

static void test_timeouts_and_shutdown(void)
{
	struct shmk_event *e, *o;
	pid_t pid[2];
	uint64_t t0;
	int i;

	CHECK_OK(shmk_event_create(g_name, 0, 1, NULL, &e));
	CHECK_OK(shmk_event_open(g_name, NULL, &o));
	CHECK_OK(shmk_event_wait(o, 0)); /* initially set */
	CHECK_RC(shmk_event_wait(o, 0), -EAGAIN);
	t0 = check_now_ms();
	CHECK_RC(shmk_event_wait(o, 100), -ETIMEDOUT);
	CHECK(check_now_ms() - t0 >= 100);
	CHECK(check_now_ms() - t0 < 1000);
	CHECK_RC(shmk_event_wait(o, -2), -EINVAL);
	CHECK_OK(shmk_event_close(o));
	/* The creator's close wakes the waiters with -EPIPE. */
	start_waiters(pid, 2);
	CHECK_OK(shmk_event_close(e));
	CHECK_EQ(collect(1000, -EPIPE), 2);
	for (i = 0; i < 2; i++)
		CHECK_EQ(wait_child(pid[i], 10000), 0);
	CHECK_OK(shmk_unlink(g_name));
	CHECK_RC(shmk_event_create(g_name, 2, 0, NULL, &e), 0);
	CHECK_OK(shmk_event_close(e)); /* manual_reset: any non-zero */
	CHECK_OK(shmk_unlink(g_name));
}

/*
 * Waits on an event nobody sets, quiet and then under a SIGUSR1 storm,
 * REPS times per timeout, auto-reset with the default spin and
 * manual-reset without: every wait times out (never a spurious 0), none
 * early, and the best of the repeats within 5 ms of the timeout
 * (check_overshoots()).  A wait that restarted its timeout on every signal
 * would never end: the alarm ends the test instead.
 */
#define REPS 5

static void test_waits_under_signals(void)
{
	static const int timeouts[] = {1, 20, 100};
	static const char *const what[2][2] = {
		{"auto-reset, default spin", "manual-reset, no spin"},
		{"auto-reset, default spin, SIGUSR1 storm",
		 "manual-reset, no spin, SIGUSR1 storm"}};
	struct shmk_opts nospin = {.spin_us = -1};
	struct shmk_event *e;
	uint64_t ns[REPS];
	int i, k, manual, round, caught;
	pid_t storm = 0;

	alarm(60);
	for (round = 0; round < 2; round++) {
		if (round == 1)
			storm = check_storm_start();
		for (manual = 0; manual < 2; manual++) {
			CHECK_OK(shmk_event_create(g_name, manual, 0,
						   manual ? &nospin : NULL,
						   &e));
			for (i = 0; i < 3; i++) {
				for (k = 0; k < REPS; k++) {
					uint64_t t0 = check_now_ns();

					CHECK_RC(
						shmk_event_wait(e, timeouts[i]),
						-ETIMEDOUT);
					ns[k] = check_now_ns() - t0;
				}
				check_overshoots(what[round][manual],
						 timeouts[i], ns, REPS);
			}
			CHECK_RC(shmk_event_wait(e, 0), -EAGAIN);
			CHECK_OK(shmk_event_close(e));
			CHECK_OK(shmk_unlink(g_name));
		}
	}
	caught = check_storm_stop(storm);
	alarm(0);
	printf("  %d signals caught during the storm\n", caught);
	CHECK(caught >= 100); /* the waits were really interrupted */
}

#define ROUNDS 20000

/* The other side of the ping-pong: waits for "written", checks the
 * value, answers "handled". */
static int child_pong(void *arg)
{
	struct shmk_opts o = {.wait_ms = 5000, .spin_us = (int)(intptr_t)arg};
	struct shmk_event *written, *handled;
	struct shmk_buffer *b;
	uint32_t v;
	int i;

	CHECK_OK(shmk_event_open(tname("written"), &o, &written));
	CHECK_OK(shmk_event_open(tname("handled"), &o, &handled));
	CHECK_OK(shmk_buffer_open(tname("slot"), &o, &b));
	for (i = 0; i < ROUNDS; i++) {
		CHECK_OK(shmk_event_wait(written, 5000));
		CHECK_OK(shmk_buffer_read(b, 0, &v, sizeof(v), -1));
		CHECK_EQ(v, (uint32_t)i);
		CHECK_OK(shmk_event_set(handled));
	}
	shmk_buffer_close(b);
	shmk_event_close(handled);
	shmk_event_close(written);
	return 0;
}

static void test_ping_pong(int spin_us)
{
	struct shmk_opts o = {.spin_us = spin_us};
	struct shmk_event *written, *handled;
	struct shmk_buffer *b;
	uint64_t t0;
	uint32_t i;
	pid_t pid;

	CHECK_OK(shmk_event_create(tname("written"), 0, 0, &o, &written));
	CHECK_OK(shmk_event_create(tname("handled"), 0, 0, &o, &handled));
	CHECK_OK(shmk_buffer_create(tname("slot"), 64, &o, &b));
	pid = spawn(child_pong, (void *)(intptr_t)spin_us);
	t0 = check_now_ms();
	for (i = 0; i < ROUNDS; i++) {
		CHECK_OK(shmk_buffer_write(b, 0, &i, sizeof(i), -1));
		CHECK_OK(shmk_event_set(written));
		/* 5 s: a lost wake-up would show as a timeout. */
		CHECK_OK(shmk_event_wait(handled, 5000));
	}
	printf("  ping-pong, spin %d us: %d round trips in %llu ms\n", spin_us,
	       ROUNDS, (unsigned long long)(check_now_ms() - t0));
	CHECK_EQ(wait_child(pid, 10000), 0);
	shmk_buffer_close(b);
	shmk_event_close(handled);
	shmk_event_close(written);
	shmk_unlink(tname("slot"));
	shmk_unlink(tname("handled"));
	shmk_unlink(tname("written"));
}

/* Threads: the same ping-pong and one-waiter-per-set, each thread with
 * handles of its own (run under ThreadSanitizer). */
static _Atomic int g_released;

static void *thread_pong(void *arg)
{
	child_pong(arg);
	return NULL;
}

static void *thread_wait(void *arg)
{
	struct shmk_event *e;

	(void)arg;
	CHECK_OK(shmk_event_open(g_name, NULL, &e));
	CHECK_OK(shmk_event_wait(e, 5000));
	atomic_fetch_add(&g_released, 1);
	CHECK_OK(shmk_event_close(e));
	return NULL;
}

static void test_threads(void)
{
	struct shmk_opts o = {0};
	struct shmk_event *written, *handled, *e;
	struct shmk_buffer *b;
	pthread_t t[3];
	uint32_t i;

	CHECK_OK(shmk_event_create(tname("written"), 0, 0, &o, &written));
	CHECK_OK(shmk_event_create(tname("handled"), 0, 0, &o, &handled));
	CHECK_OK(shmk_buffer_create(tname("slot"), 64, &o, &b));
	CHECK_OK(pthread_create(&t[0], NULL, thread_pong, NULL));
	for (i = 0; i < ROUNDS; i++) {
		CHECK_OK(shmk_buffer_write(b, 0, &i, sizeof(i), -1));
		CHECK_OK(shmk_event_set(written));
		CHECK_OK(shmk_event_wait(handled, 5000));
	}
	CHECK_OK(pthread_join(t[0], NULL));
	shmk_buffer_close(b);
	shmk_event_close(handled);
	shmk_event_close(written);

	CHECK_OK(shmk_event_create(g_name, 0, 0, NULL, &e));
	for (i = 0; i < 3; i++)
		CHECK_OK(pthread_create(&t[i], NULL, thread_wait, NULL));
	sleep_ms(100);
	for (i = 0; i < 3; i++) {
		CHECK_OK(shmk_event_set(e));
		sleep_ms(500); /* time for a wrong second release to show */
		CHECK_EQ(atomic_load(&g_released), (int)i + 1);
	}
	for (i = 0; i < 3; i++)
		CHECK_OK(pthread_join(t[i], NULL));
	CHECK_OK(shmk_event_close(e));
}

int main(int argc, char **argv)
{
	check_init();
	if (argc > 1 && !strcmp(argv[1], "threads")) {
		CHECK_OK(pipe(g_pipe));
		g_name = tname("event");
		test_threads();
		printf("test_event threads: ok\n");
		return 0;
	}
	CHECK_OK(pipe(g_pipe));
	g_name = tname("event");
	test_auto_reset();
	test_manual_reset();
	test_timeouts_and_shutdown();
	test_waits_under_signals();
	test_ping_pong(0);
	test_ping_pong(-1);
	printf("test_event: ok\n");
	return 0;
}
