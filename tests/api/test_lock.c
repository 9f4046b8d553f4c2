/* SPDX-License-Identifier: MIT */
/*
 * test_lock - the robust read/write lock of buffers (and arrays, which
 * share it): mutual exclusion across processes and threads, many readers,
 * writer preference (also against an unbroken stream of readers), holders
 * killed with SIGKILL (-EOWNERDEAD within the bound, dead readers
 * released), a stopped holder kept, timed waits exact under a signal
 * storm, the per-thread rules, and change notification.
 *
 * With an argument "threads" only the thread variants run (the
 * ThreadSanitizer build runs that).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

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

/*
 * Writer preference against a stream of readers: READERS processes take
 * the read lock back to back, each holding it 0.3 to 0.5 ms and taking it
 * again at once, so that some reader always holds it.  A writer asks for
 * the write lock W_ROUNDS times during the stream and must get in each
 * time within W_BOUND_MS (a reader-preferring lock starves it for the
 * whole stream); while it holds the lock no reader is inside.
 */
#define READERS	   3
#define W_ROUNDS   10
#define W_BOUND_MS 100

struct stream {
	_Atomic int stop;    /* the writer is done */
	_Atomic int inside;  /* readers holding the read lock */
	_Atomic int writing; /* the writer holds the write lock */
	_Atomic long reads;  /* read locks taken, all readers */
};

static struct stream *g_stream;

static void sleep_us(unsigned us)
{
	struct timespec ts = {0, (long)us * 1000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int child_stream_reader(void *arg)
{
	struct stream *s = g_stream;
	uint64_t end = check_now_ms() + 20000; /* if the writer never ends */
	struct shmk_buffer *b;
	unsigned n = (unsigned)(intptr_t)arg;

	CHECK_OK(shmk_buffer_open(g_name, NULL, &b));
	signal_ready();
	while (!atomic_load(&s->stop) && check_now_ms() < end) {
		CHECK_OK(shmk_buffer_lock(b, SHMK_LOCK_READ, 5000));
		atomic_fetch_add(&s->inside, 1);
		atomic_fetch_add(&s->reads, 1);
		CHECK_EQ(atomic_load(&s->writing), 0);
		sleep_us(300 + (n++ * 37) % 200);
		CHECK_EQ(atomic_load(&s->writing), 0);
		atomic_fetch_sub(&s->inside, 1);
		CHECK_OK(shmk_buffer_unlock(b));
	}
	CHECK_OK(shmk_buffer_close(b));
	return 0;
}

static void *thread_stream_reader(void *arg)
{
	child_stream_reader(arg);
	return NULL;
}

static void test_writer_vs_reader_stream(int threads)
{
	uint64_t took[W_ROUNDS];
	struct shmk_buffer *b;
	struct stream *s;
	pid_t pid[READERS];
	pthread_t t[READERS];
	long reads;
	int i, busy = 0;

	s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(s != MAP_FAILED);
	g_stream = s;
	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &b));
	for (i = 0; i < READERS; i++) {
		void *arg = (void *)(intptr_t)(i * 67);

		if (threads)
			CHECK_OK(pthread_create(&t[i], NULL,
						thread_stream_reader, arg));
		else
			pid[i] = spawn(child_stream_reader, arg);
		wait_ready();
	}
	for (i = 0; i < W_ROUNDS; i++) {
		uint64_t t0;
		int rc;

		sleep_ms(100); /* the stream flows again */
		reads = atomic_load(&s->reads);
		busy += atomic_load(&s->inside) > 0;
		t0 = check_now_ns();
		rc = shmk_buffer_lock(b, SHMK_LOCK_WRITE, 2000);
		took[i] = check_now_ns() - t0;
		if (rc) {
			fprintf(stderr, "round %d: the writer waited %.1f ms\n",
				i, (double)took[i] / 1e6);
			CHECK_OK(rc);
		}
		atomic_store(&s->writing, 1);
		CHECK_EQ(atomic_load(&s->inside), 0);
		sleep_us(200);
		atomic_store(&s->writing, 0);
		CHECK_OK(shmk_buffer_unlock(b));
	}
	atomic_store(&s->stop, 1);
	for (i = 0; i < READERS; i++) {
		if (threads)
			CHECK_OK(pthread_join(t[i], NULL));
		else
			CHECK_EQ(wait_child(pid[i], 10000), 0);
	}
	reads = atomic_load(&s->reads);
	qsort(took, W_ROUNDS, sizeof(took[0]), check_cmp_u64);
	printf("  writer among %d reader %s (%ld read locks, a reader inside "
	       "at %d of %d requests): waited min %.3f median %.3f max "
	       "%.3f ms\n",
	       READERS, threads ? "threads" : "processes", reads, busy,
	       W_ROUNDS, (double)took[0] / 1e6,
	       (double)took[W_ROUNDS / 2] / 1e6,
	       (double)took[W_ROUNDS - 1] / 1e6);
	CHECK(took[W_ROUNDS - 1] <= (uint64_t)W_BOUND_MS * 1000000u);
	/* The readers were really streaming when the writer asked. */
	CHECK(busy >= W_ROUNDS / 2);
	CHECK(reads >= 300);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(g_name));
	munmap(s, sizeof(*s));
}

/*
 * Timed waits that must time out (a read lock the holder keeps, a change
 * that never comes), each REPS times per timeout, quiet and under a
 * SIGUSR1 storm: never early, never a spurious success, and the best of
 * the repeats within 5 ms of the timeout (check_overshoots()).  A wait
 * that restarted its timeout on every signal would never end: the alarm
 * ends the test instead.
 */
#define REPS 5

static void test_timed_waits(void)
{
	static const int timeouts[] = {1, 50, 200};
	struct shmk_buffer *b, *c;
	uint64_t lk[REPS], wt[REPS];
	pid_t holder, storm = 0;
	int i, k, round, caught;

	alarm(60);
	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &b));
	CHECK_OK(shmk_buffer_open(g_name, NULL, &c));
	holder = spawn(child_hold, (void *)(intptr_t)SHMK_LOCK_WRITE);
	wait_ready();
	for (round = 0; round < 2; round++) {
		if (round == 1)
			storm = check_storm_start();
		for (i = 0; i < 3; i++) {
			for (k = 0; k < REPS; k++) {
				uint64_t t0 = check_now_ns();
				uint64_t v = shmk_buffer_version(b);

				CHECK_RC(shmk_buffer_lock(b, SHMK_LOCK_READ,
							  timeouts[i]),
					 -ETIMEDOUT);
				lk[k] = check_now_ns() - t0;
				t0 = check_now_ns();
				CHECK_RC(shmk_buffer_wait(c, &v, timeouts[i]),
					 -ETIMEDOUT);
				wt[k] = check_now_ns() - t0;
			}
			check_overshoots(round ? "read lock, SIGUSR1 storm"
					       : "read lock",
					 timeouts[i], lk, REPS);
			check_overshoots(round ? "buffer wait, SIGUSR1 storm"
					       : "buffer wait",
					 timeouts[i], wt, REPS);
		}
		CHECK_RC(shmk_buffer_lock(b, SHMK_LOCK_READ, 0), -EAGAIN);
	}
	caught = check_storm_stop(storm);
	printf("  %d signals caught during the storm\n", caught);
	CHECK(caught >= 100); /* the waits were really interrupted */
	kill(holder, SIGKILL);
	wait_child(holder, 5000);
	alarm(0);
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
		test_writer_vs_reader_stream(1);
		printf("test_lock threads: ok\n");
		return 0;
	}
	test_count_processes();
	test_count_threads();
	test_thread_rules();
	test_fork_while_holding();
	test_writer_preference();
	test_writer_vs_reader_stream(0);
	test_writer_vs_reader_stream(1);
	test_dead_writer();
	test_dead_reader();
	test_stopped_holder();
	test_timed_waits();
	test_change_notification();
	printf("test_lock: ok\n");
	return 0;
}
