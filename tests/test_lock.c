/* SPDX-License-Identifier: MIT */
/*
 * test_lock - the robust read/write lock of buffers (and arrays, which
 * share it): mutual exclusion across processes and threads, many readers,
 * writer preference, holders killed with SIGKILL (-EOWNERDEAD within the
 * bound, dead readers released), a stopped holder kept, timed waits exact
 * under a signal storm, the per-thread rules, and change notification.
 *
 * With an argument "threads" only the thread variants run (the
 * ThreadSanitizer build runs that).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"

#define COUNT	  100000
#define T_LIVE_MS 10  /* docs/design.md: a dead holder is noticed */
#define SLACK_MS  150 /* scheduling on a loaded 2-CPU machine */

static const char *g_name;
static int g_pipe[2]; /* children -> parent: "ready" */
static int g_go[2];   /* parent -> children: "go on" */

static void signal_ready(void)
{
	CHECK_EQ(write(g_pipe[1], "r", 1), 1);
}

static void wait_ready(void)
{
	char c;

	CHECK_EQ(read(g_pipe[0], &c, 1), 1);
}

/* Adds 1 to the counter at offset 0, COUNT times, under the write lock;
 * every other round through read-modify-write copies, else through the
 * data pointer. */
static int add_many(struct shmk_buffer *b)
{
	uint64_t *p = shmk_buffer_data(b), v;
	int i;

	for (i = 0; i < COUNT; i++) {
		CHECK_OK(shmk_buffer_lock(b, SHMK_LOCK_WRITE, -1));
		if (i & 1) {
			CHECK_OK(shmk_buffer_read(b, 0, &v, sizeof(v), 0));
			v++;
			CHECK_OK(shmk_buffer_write(b, 0, &v, sizeof(v), 0));
		} else {
			(*p)++;
		}
		CHECK_OK(shmk_buffer_unlock(b));
	}
	return 0;
}

static int child_add(void *arg)
{
	struct shmk_buffer *b;

	(void)arg;
	CHECK_OK(shmk_buffer_open(g_name, NULL, &b));
	add_many(b);
	CHECK_OK(shmk_buffer_close(b));
	return 0;
}

static void test_count_processes(void)
{
	struct shmk_buffer *b;
	struct shmk_stat st;
	pid_t pid[4];
	uint64_t v;
	int i;

	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &b));
	for (i = 0; i < 4; i++)
		pid[i] = spawn(child_add, NULL);
	for (i = 0; i < 4; i++)
		CHECK_EQ(wait_child(pid[i], 120000), 0);
	CHECK_OK(shmk_buffer_read(b, 0, &v, sizeof(v), -1));
	CHECK_EQ(v, 4 * COUNT);
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK_EQ(st.counter[1], 0); /* owner_dead */
	/* Every write and every write unlock counts. */
	CHECK_EQ(st.counter[0], 4 * COUNT + 4 * COUNT / 2);
	CHECK_EQ(shmk_buffer_version(b), st.counter[0]);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(g_name));
}

/* Threads: half share one handle, half have their own. */
static struct shmk_buffer *g_shared;

static void *thread_add(void *arg)
{
	struct shmk_buffer *b = g_shared;

	if (arg)
		CHECK_OK(shmk_buffer_open(g_name, NULL, &b));
	add_many(b);
	if (arg)
		CHECK_OK(shmk_buffer_close(b));
	return NULL;
}

static _Atomic int g_stop;

/* Readers through the shared handle: the counter never goes back. */
static void *thread_read(void *arg)
{
	uint64_t v, last = 0;

	(void)arg;
	while (!atomic_load(&g_stop)) {
		CHECK_OK(shmk_buffer_read(g_shared, 0, &v, sizeof(v), -1));
		CHECK(v >= last);
		last = v;
	}
	return NULL;
}

static void test_count_threads(void)
{
	pthread_t t[4], r;
	uint64_t v;
	int i;

	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &g_shared));
	atomic_store(&g_stop, 0);
	CHECK_OK(pthread_create(&r, NULL, thread_read, NULL));
	for (i = 0; i < 4; i++)
		CHECK_OK(pthread_create(&t[i], NULL, thread_add,
					(void *)(intptr_t)(i & 1)));
	for (i = 0; i < 4; i++)
		CHECK_OK(pthread_join(t[i], NULL));
	atomic_store(&g_stop, 1);
	CHECK_OK(pthread_join(r, NULL));
	CHECK_OK(shmk_buffer_read(g_shared, 0, &v, sizeof(v), -1));
	CHECK_EQ(v, 4 * COUNT);
	CHECK_OK(shmk_buffer_close(g_shared));
	CHECK_OK(shmk_unlink(g_name));
}

/* Takes the lock as asked, reports, then waits to be killed (or, with
 * how < 0, releases it when told and exits). */
static int child_hold(void *arg)
{
	int how = (int)(intptr_t)arg, rc;
	struct shmk_buffer *b;
	char c;

	CHECK_OK(shmk_buffer_open(g_name, NULL, &b));
	rc = shmk_buffer_lock(b, how < 0 ? -how : how, -1);
	CHECK(rc == 0 || rc == -EOWNERDEAD);
	signal_ready();
	if (how > 0)
		for (;;)
			pause();
	CHECK_EQ(read(g_go[0], &c, 1), 1);
	CHECK_OK(shmk_buffer_unlock(b));
	CHECK_OK(shmk_buffer_close(b));
	return 0;
}

/* Writes patterns for ever, under the lock, until killed mid-way. */
static int child_scribble(void *arg)
{
	struct shmk_buffer *b;
	unsigned char n = 0;

	(void)arg;
	CHECK_OK(shmk_buffer_open(g_name, NULL, &b));
	signal_ready();
	for (;;) {
		int rc = shmk_buffer_lock(b, SHMK_LOCK_WRITE, -1);

		CHECK(rc == 0 || rc == -EOWNERDEAD);
		memset(shmk_buffer_data(b), n++, shmk_buffer_size(b));
		CHECK_OK(shmk_buffer_unlock(b));
	}
}

/* Locks and returns how long it took, in ms. */
static uint64_t timed_lock(struct shmk_buffer *b, int how, int want)
{
	uint64_t t0 = check_now_ms();

	CHECK_RC(shmk_buffer_lock(b, how, 5000), want);
	return check_now_ms() - t0;
}

static void test_dead_writer(void)
{
	struct shmk_buffer *b;
	struct shmk_stat st;
	uint64_t ms;
	pid_t pid;
	int i, dirty = 0;

	CHECK_OK(shmk_buffer_create(g_name, 1 << 20, NULL, &b));

	/* Killed right after taking the write lock. */
	pid = spawn(child_hold, (void *)(intptr_t)SHMK_LOCK_WRITE);
	wait_ready();
	CHECK_RC(shmk_buffer_lock(b, SHMK_LOCK_READ, 0), -EAGAIN);
	CHECK_OK(kill(pid, SIGKILL));
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	ms = timed_lock(b, SHMK_LOCK_READ, -EOWNERDEAD);
	CHECK(ms <= T_LIVE_MS + SLACK_MS);
	/* Still marked: the next reader is told too. */
	CHECK_OK(shmk_buffer_unlock(b));
	CHECK_RC(shmk_buffer_read(b, 0, &i, sizeof(i), 0), -EOWNERDEAD);
	/* A writer repairs; its unlock clears the mark. */
	CHECK_RC(shmk_buffer_lock(b, SHMK_LOCK_WRITE, 0), -EOWNERDEAD);
	CHECK_OK(shmk_buffer_unlock(b));
	CHECK_OK(shmk_buffer_lock(b, SHMK_LOCK_WRITE, 0));
	CHECK_OK(shmk_buffer_unlock(b));
	CHECK_OK(shmk_buffer_read(b, 0, &i, sizeof(i), 0));
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK_EQ(st.counter[1], 1); /* owner_dead */

	/* A caller that only ever tries (timeout 0) recovers too. */
	pid = spawn(child_hold, (void *)(intptr_t)SHMK_LOCK_WRITE);
	wait_ready();
	CHECK_OK(kill(pid, SIGKILL));
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	for (i = 0; i < 100; i++) {
		int rc = shmk_buffer_lock(b, SHMK_LOCK_WRITE, 0);

		if (rc == -EOWNERDEAD)
			break;
		CHECK_RC(rc, -EAGAIN);
		sleep_ms(1);
	}
	CHECK(i < 100);
	CHECK_OK(shmk_buffer_unlock(b));

	/* Killed at random moments while writing: each time the lock comes
	 * back within the bound, marked if the victim held it. */
	for (i = 0; i < 40; i++) {
		int rc;

		pid = spawn(child_scribble, NULL);
		wait_ready();
		sleep_ms((unsigned)(i % 7));
		CHECK_OK(kill(pid, SIGKILL));
		CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
		ms = check_now_ms();
		rc = shmk_buffer_lock(b, SHMK_LOCK_WRITE, 5000);
		ms = check_now_ms() - ms;
		CHECK(rc == 0 || rc == -EOWNERDEAD);
		CHECK(ms <= T_LIVE_MS + SLACK_MS);
		dirty += rc == -EOWNERDEAD;
		CHECK_OK(shmk_buffer_unlock(b));
		CHECK_OK(shmk_buffer_lock(b, SHMK_LOCK_WRITE, 0));
		CHECK_OK(shmk_buffer_unlock(b));
	}
	printf("  killed 40 scribblers, %d of them holding the lock\n", dirty);
	CHECK(dirty > 0);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(g_name));
}

static void test_dead_reader(void)
{
	struct shmk_buffer *b;
	struct shmk_stat st;
	pid_t pid, many[30];
	uint64_t ms;
	int i;

	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &b));
	pid = spawn(child_hold, (void *)(intptr_t)SHMK_LOCK_READ);
	wait_ready();
	CHECK_RC(shmk_buffer_lock(b, SHMK_LOCK_WRITE, 0), -EAGAIN);
	CHECK_OK(shmk_buffer_lock(b, SHMK_LOCK_READ, 0)); /* readers share */
	CHECK_OK(shmk_buffer_unlock(b));
	CHECK_OK(kill(pid, SIGKILL));
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	/* A dead reader tore nothing: the writer gets a clean lock. */
	ms = timed_lock(b, SHMK_LOCK_WRITE, 0);
	CHECK(ms <= T_LIVE_MS + SLACK_MS);
	CHECK_OK(shmk_buffer_unlock(b));
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK_EQ(st.counter[2], 1); /* readers_reclaimed */

	/* Many dead readers cost no more than one. */
	for (i = 0; i < 30; i++) {
		many[i] = spawn(child_hold, (void *)(intptr_t)SHMK_LOCK_READ);
		wait_ready();
	}
	for (i = 0; i < 30; i++) {
		CHECK_OK(kill(many[i], SIGKILL));
		CHECK_EQ(wait_child(many[i], 5000), 128 + SIGKILL);
	}
	ms = timed_lock(b, SHMK_LOCK_WRITE, 0);
	printf("  30 dead readers: the writer waited %llu ms\n",
	       (unsigned long long)ms);
	CHECK(ms <= T_LIVE_MS + SLACK_MS);
	CHECK_OK(shmk_buffer_unlock(b));
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK_EQ(st.counter[2], 31);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(g_name));
}

static void test_stopped_holder(void)
{
	struct shmk_buffer *b;
	uint64_t t0;
	pid_t pid;

	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &b));
	pid = spawn(child_hold, (void *)(intptr_t)-SHMK_LOCK_WRITE);
	wait_ready();
	CHECK_OK(kill(pid, SIGSTOP));
	t0 = check_now_ms();
	CHECK_RC(shmk_buffer_lock(b, SHMK_LOCK_WRITE, 3000), -ETIMEDOUT);
	CHECK(check_now_ms() - t0 >= 3000);
	CHECK_OK(kill(pid, SIGCONT));
	CHECK_EQ(write(g_go[1], "u", 1), 1); /* now release it */
	CHECK_OK(shmk_buffer_lock(b, SHMK_LOCK_WRITE, 5000));
	CHECK_OK(shmk_buffer_unlock(b));
	CHECK_EQ(wait_child(pid, 5000), 0);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(g_name));
}

/* Writer preference: a waiting writer keeps new readers out. */
static int child_writer_waits(void *arg)
{
	struct shmk_buffer *b;
	int rc;

	(void)arg;
	CHECK_OK(shmk_buffer_open(g_name, NULL, &b));
	signal_ready();
	rc = shmk_buffer_lock(b, SHMK_LOCK_WRITE, 10000);
	CHECK_OK(rc);
	CHECK_OK(shmk_buffer_unlock(b));
	CHECK_OK(shmk_buffer_close(b));
	return 0;
}

static void test_writer_preference(void)
{
	struct shmk_buffer *a, *b;
	pid_t pid;

	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &a));
	CHECK_OK(shmk_buffer_open(g_name, NULL, &b));
	CHECK_OK(shmk_buffer_lock(a, SHMK_LOCK_READ, 0));
	pid = spawn(child_writer_waits, NULL);
	wait_ready();
	sleep_ms(100); /* the writer is now waiting for our reader */
	CHECK_RC(shmk_buffer_lock(b, SHMK_LOCK_READ, 100), -ETIMEDOUT);
	CHECK_OK(shmk_buffer_unlock(a));
	CHECK_EQ(wait_child(pid, 10000), 0);
	CHECK_OK(shmk_buffer_lock(b, SHMK_LOCK_READ, 0));
	CHECK_OK(shmk_buffer_unlock(b));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_buffer_close(a));
	CHECK_OK(shmk_unlink(g_name));
}

static void on_usr1(int sig)
{
	(void)sig;
}

/* Sends SIGUSR1 to the parent every 100 microseconds. */
static int child_storm(void *arg)
{
	pid_t target = (pid_t)(intptr_t)arg;

	while (kill(target, SIGUSR1) == 0)
		usleep(100);
	return 0;
}

static void test_timed_waits(void)
{
	static const int timeouts[] = {1, 50, 200};
	struct sigaction sa = {.sa_handler = on_usr1};
	struct shmk_buffer *b, *c;
	pid_t holder, storm = 0;
	int i, round;

	sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: EINTR happens */
	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &b));
	CHECK_OK(shmk_buffer_open(g_name, NULL, &c));
	holder = spawn(child_hold, (void *)(intptr_t)SHMK_LOCK_WRITE);
	wait_ready();
	for (round = 0; round < 2; round++) {
		if (round == 1)
			storm = spawn(child_storm, (void *)(intptr_t)getpid());
		for (i = 0; i < 3; i++) {
			uint64_t t0 = check_now_ms(), ms;
			uint64_t v = shmk_buffer_version(b);

			CHECK_RC(shmk_buffer_lock(b, SHMK_LOCK_READ,
						  timeouts[i]),
				 -ETIMEDOUT);
			ms = check_now_ms() - t0;
			CHECK(ms >= (uint64_t)timeouts[i]);
			CHECK(ms <= (uint64_t)timeouts[i] + 40);
			t0 = check_now_ms();
			CHECK_RC(shmk_buffer_wait(c, &v, timeouts[i]),
				 -ETIMEDOUT);
			ms = check_now_ms() - t0;
			CHECK(ms >= (uint64_t)timeouts[i]);
			CHECK(ms <= (uint64_t)timeouts[i] + 40);
		}
		CHECK_RC(shmk_buffer_lock(b, SHMK_LOCK_READ, 0), -EAGAIN);
	}
	kill(storm, SIGKILL);
	wait_child(storm, 5000);
	kill(holder, SIGKILL);
	wait_child(holder, 5000);
	signal(SIGUSR1, SIG_DFL);
	CHECK_OK(shmk_buffer_close(c));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(g_name));
}

/* A child of a thread that holds a lock holds nothing itself. */
static struct shmk_buffer *g_parent_handle;

static int child_after_fork(void *arg)
{
	struct shmk_buffer *b, *mine;
	int v = 1;

	(void)arg;
	b = g_parent_handle;
	CHECK_RC(shmk_buffer_unlock(b), -ECHILD);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_buffer_open(g_name, NULL, &mine));
	CHECK_RC(shmk_buffer_unlock(mine), -EPERM);
	/* The parent still holds the write lock. */
	CHECK_RC(shmk_buffer_write(mine, 0, &v, sizeof(v), 50), -ETIMEDOUT);
	CHECK_RC(shmk_buffer_lock(mine, SHMK_LOCK_WRITE, 50), -ETIMEDOUT);
	CHECK_OK(shmk_buffer_close(mine));
	return 0;
}

static void test_fork_while_holding(void)
{
	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &g_parent_handle));
	CHECK_OK(shmk_buffer_lock(g_parent_handle, SHMK_LOCK_WRITE, 0));
	CHECK_EQ(wait_child(spawn(child_after_fork, NULL), 10000), 0);
	CHECK_OK(shmk_buffer_unlock(g_parent_handle));
	CHECK_OK(shmk_buffer_close(g_parent_handle));
	CHECK_OK(shmk_unlink(g_name));
}

static void test_thread_rules(void)
{
	struct shmk_buffer *b, *h[17];
	int v = 0, i;

	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &b));
	CHECK_RC(shmk_buffer_unlock(b), -EPERM);
	CHECK_RC(shmk_buffer_lock(b, 3, 0), -EINVAL);
	CHECK_RC(shmk_buffer_lock(b, SHMK_LOCK_READ, -2), -EINVAL);
	CHECK_OK(shmk_buffer_lock(b, SHMK_LOCK_READ, 0));
	CHECK_RC(shmk_buffer_lock(b, SHMK_LOCK_READ, 0), -EDEADLK);
	CHECK_RC(shmk_buffer_write(b, 0, &v, sizeof(v), 0), -EDEADLK);
	CHECK_OK(shmk_buffer_read(b, 0, &v, sizeof(v), 0));
	CHECK_OK(shmk_buffer_unlock(b));
	CHECK_OK(shmk_buffer_lock(b, SHMK_LOCK_WRITE, 0));
	CHECK_OK(shmk_buffer_read(b, 0, &v, sizeof(v), 0));
	CHECK_OK(shmk_buffer_write(b, 0, &v, sizeof(v), 0));
	CHECK_OK(shmk_buffer_unlock(b));
	/* At most 16 locks per thread. */
	for (i = 0; i < 17; i++) {
		CHECK_OK(shmk_buffer_create(NULL, 8, NULL, &h[i]));
		CHECK_RC(shmk_buffer_lock(h[i], SHMK_LOCK_READ, 0),
			 i < 16 ? 0 : -ENOLCK);
	}
	for (i = 0; i < 17; i++)
		CHECK_OK(shmk_buffer_close(h[i])); /* releases what it holds */
	/* Closing while holding a read lock releases it; closing while
	 * holding the write lock abandons the write: the next locker is
	 * told, and waiters for a change are woken. */
	CHECK_OK(shmk_buffer_open(g_name, NULL, &h[0]));
	CHECK_OK(shmk_buffer_lock(h[0], SHMK_LOCK_READ, 0));
	CHECK_OK(shmk_buffer_close(h[0]));
	CHECK_OK(shmk_buffer_lock(b, SHMK_LOCK_WRITE, 0));
	CHECK_OK(shmk_buffer_unlock(b));
	CHECK_OK(shmk_buffer_open(g_name, NULL, &h[0]));
	CHECK_OK(shmk_buffer_lock(h[0], SHMK_LOCK_WRITE, 0));
	{
		uint64_t seen = shmk_buffer_version(b);

		CHECK_OK(shmk_buffer_close(h[0]));
		CHECK_OK(shmk_buffer_wait(b, &seen, 0));
	}
	CHECK_RC(shmk_buffer_lock(b, SHMK_LOCK_WRITE, 0), -EOWNERDEAD);
	CHECK_OK(shmk_buffer_unlock(b));
	CHECK_OK(shmk_buffer_lock(b, SHMK_LOCK_WRITE, 0));
	CHECK_OK(shmk_buffer_unlock(b));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(g_name));
}

/* Waits for two changes, then for the shutdown. */
static int child_watch(void *arg)
{
	struct shmk_opts o = {.spin_us = (int)(intptr_t)arg};
	struct shmk_buffer *b;
	uint64_t v;
	int x;

	CHECK_OK(shmk_buffer_open(g_name, &o, &b));
	v = shmk_buffer_version(b);
	signal_ready();
	CHECK_OK(shmk_buffer_wait(b, &v, 5000));
	CHECK_OK(shmk_buffer_read(b, 0, &x, sizeof(x), -1));
	CHECK_EQ(x, 1);
	signal_ready();
	CHECK_OK(shmk_buffer_wait(b, &v, 5000));
	CHECK_OK(shmk_buffer_read(b, 0, &x, sizeof(x), -1));
	CHECK_EQ(x, 2);
	signal_ready();
	CHECK_RC(shmk_buffer_wait(b, &v, 5000), -EPIPE);
	CHECK_OK(shmk_buffer_close(b));
	return 0;
}

static void test_change_notification(void)
{
	static const int spins[] = {0, -1};
	struct shmk_buffer *b;
	uint64_t v;
	pid_t pid;
	int x, i;

	for (i = 0; i < 2; i++) {
		CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &b));
		v = shmk_buffer_version(b);
		CHECK_RC(shmk_buffer_wait(b, &v, 0), -EAGAIN);
		pid = spawn(child_watch, (void *)(intptr_t)spins[i]);
		wait_ready();
		sleep_ms(50); /* asleep (or spinning, then asleep) */
		x = 1;
		CHECK_OK(shmk_buffer_write(b, 0, &x, sizeof(x), -1));
		wait_ready();
		sleep_ms(50);
		/* Through the data pointer: the unlock tells. */
		CHECK_OK(shmk_buffer_lock(b, SHMK_LOCK_WRITE, -1));
		*(int *)shmk_buffer_data(b) = 2;
		CHECK_OK(shmk_buffer_unlock(b));
		wait_ready();
		sleep_ms(50);
		CHECK_OK(shmk_buffer_close(b)); /* the creator shuts it down */
		CHECK_EQ(wait_child(pid, 10000), 0);
		CHECK_OK(shmk_unlink(g_name));
	}
}

int main(int argc, char **argv)
{
	check_init();
	CHECK_OK(pipe(g_pipe));
	CHECK_OK(pipe(g_go));
	g_name = tname("lock");
	if (argc > 1 && !strcmp(argv[1], "threads")) {
		test_count_threads();
		printf("test_lock threads: ok\n");
		return 0;
	}
	test_count_processes();
	test_count_threads();
	test_thread_rules();
	test_fork_while_holding();
	test_writer_preference();
	test_dead_writer();
	test_dead_reader();
	test_stopped_holder();
	test_timed_waits();
	test_change_notification();
	printf("test_lock: ok\n");
	return 0;
}
