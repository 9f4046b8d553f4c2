/* SPDX-License-Identifier: MIT */
/*
 * test_liveness - participants and their kernel-backed liveness: a killed
 * peer is seen dead at once, a stopped one stays alive, slots of the dead
 * are reused so the table is never exhausted by dying processes, a full
 * table says -EUSERS, and fork() never lets a child keep its parent's
 * liveness (nor use its handles).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"

static const char *g_name;
static int g_pipe[2];

/* Opens the object, reports "ready" on the pipe and waits to be killed. */
static int child_attach_and_wait(void *arg)
{
	struct shmk_buffer *b;

	(void)arg;
	CHECK_OK(shmk_buffer_open(g_name, NULL, &b));
	CHECK_EQ(write(g_pipe[1], "r", 1), 1);
	for (;;)
		pause();
}

static void wait_ready(void)
{
	char c;

	CHECK_EQ(read(g_pipe[0], &c, 1), 1);
}

/* The stat entry of the participant with this pid, or NULL. */
static struct shmk_stat_part *part_of(struct shmk_stat *st, pid_t pid)
{
	int i;

	for (i = 0; i < st->nparts; i++)
		if (st->part[i].pid == pid)
			return &st->part[i];
	return NULL;
}

static void test_kill_and_stop(void)
{
	struct shmk_buffer *b;
	struct shmk_stat st;
	pid_t pid;

	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &b));
	pid = spawn(child_attach_and_wait, NULL);
	wait_ready();
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK_EQ(st.nalive, 2);
	CHECK(part_of(&st, pid) && part_of(&st, pid)->alive);
	CHECK(!part_of(&st, pid)->creator);
	CHECK(part_of(&st, getpid()) && part_of(&st, getpid())->creator);

	/* Stopped is not dead. */
	CHECK_OK(kill(pid, SIGSTOP));
	sleep_ms(1000);
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK(part_of(&st, pid)->alive);
	CHECK_EQ(st.nalive, 2);

	/* Killed is dead, as soon as the kernel has closed its files. */
	CHECK_OK(kill(pid, SIGKILL));
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK(part_of(&st, pid) && !part_of(&st, pid)->alive);
	CHECK_EQ(st.nalive, 1);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(g_name));
}

static int child_attach_and_die(void *arg)
{
	struct shmk_buffer *b;

	CHECK_OK(shmk_buffer_open(g_name, NULL, &b));
	if (arg)
		raise(SIGKILL);
	_exit(0); /* without closing: the kernel cleans up */
}

static void test_slots_reused(void)
{
	struct shmk_buffer *b;
	struct shmk_stat st;
	int i;

	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &b));
	for (i = 0; i < 300; i++) {
		int rc = wait_child(
			spawn(child_attach_and_die, (void *)(intptr_t)(i & 1)),
			10000);

		CHECK_EQ(rc, (i & 1) ? 128 + SIGKILL : 0);
	}
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK_EQ(st.nalive, 1);
	CHECK(st.nparts <= 2); /* the dead peers' slot was reused */
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(g_name));
}

static void test_table_full(void)
{
	static struct shmk_buffer *h[SHMK_STAT_MAX_PARTS];
	struct shmk_buffer *b, *x = NULL;
	struct shmk_stat st;
	int i;

	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &b));
	for (i = 0; i < SHMK_STAT_MAX_PARTS - 1; i++)
		CHECK_OK(shmk_buffer_open(g_name, NULL, &h[i]));
	CHECK_RC(shmk_buffer_open(g_name, NULL, &x), -EUSERS);
	CHECK(x == NULL);
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK_EQ(st.nalive, SHMK_STAT_MAX_PARTS);
	CHECK_OK(shmk_buffer_close(h[40]));
	CHECK_OK(shmk_buffer_open(g_name, NULL, &h[40]));
	for (i = 0; i < SHMK_STAT_MAX_PARTS - 1; i++)
		CHECK_OK(shmk_buffer_close(h[i]));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(g_name));
}

static struct shmk_buffer *g_inherited, *g_inherited_anon;
static int g_anon_fd;

/* A child of fork(): inherited handles refuse every call but close. */
static int child_forked(void *arg)
{
	struct shmk_buffer *b = g_inherited, *mine, *anon;
	int v = 0;

	(void)arg;
	CHECK_RC(shmk_buffer_read(b, 0, &v, sizeof(v), 0), -ECHILD);
	CHECK_RC(shmk_buffer_write(b, 0, &v, sizeof(v), 0), -ECHILD);
	CHECK(shmk_buffer_data(b) == NULL);
	CHECK_RC(shmk_buffer_fd(b), -ECHILD);
	CHECK_OK(shmk_buffer_close(b));
	/* Its own handle works. */
	CHECK_OK(shmk_buffer_open(g_name, NULL, &mine));
	CHECK_OK(shmk_buffer_read(mine, 0, &v, sizeof(v), 0));
	CHECK_EQ(v, 31);
	CHECK_OK(shmk_buffer_close(mine));
	/* And an anonymous buffer comes through the shared descriptor,
	 * which closing the inherited handle first leaves open. */
	CHECK_OK(shmk_buffer_close(g_inherited_anon));
	CHECK_OK(shmk_buffer_open_fd(g_anon_fd, NULL, &anon));
	CHECK_OK(shmk_buffer_read(anon, 0, &v, sizeof(v), 0));
	CHECK_EQ(v, 32);
	CHECK_OK(shmk_buffer_close(anon));
	return 0;
}

/* Opens, forks a long-lived grandchild, then waits to be killed. */
static int child_middle(void *arg)
{
	struct shmk_buffer *b;
	pid_t gc;

	(void)arg;
	CHECK_OK(shmk_buffer_open(g_name, NULL, &b));
	gc = fork();
	CHECK(gc >= 0);
	if (gc == 0) {
		/* fork() has returned, so the atfork handler has run: tell
		 * the test, then outlive the middle process a little. */
		gc = getpid();
		CHECK_EQ(write(g_pipe[1], &gc, sizeof(gc)),
			 (ssize_t)sizeof(gc));
		sleep_ms(3000);
		_exit(0);
	}
	for (;;)
		pause();
}

static void test_fork(void)
{
	struct shmk_buffer *b, *anon;
	struct shmk_stat st;
	pid_t pid, gc;
	int v;

	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &b));
	v = 31;
	CHECK_OK(shmk_buffer_write(b, 0, &v, sizeof(v), -1));
	CHECK_OK(shmk_buffer_create(NULL, 64, NULL, &anon));
	v = 32;
	CHECK_OK(shmk_buffer_write(anon, 0, &v, sizeof(v), -1));
	g_anon_fd = shmk_buffer_fd(anon);
	CHECK(g_anon_fd >= 0);
	CHECK_EQ(shmk_buffer_fd(anon), g_anon_fd); /* the same each time */
	g_inherited = b;
	g_inherited_anon = anon;
	CHECK_EQ(wait_child(spawn(child_forked, NULL), 10000), 0);
	/* The parent's handles are untouched by the child's close. */
	CHECK_OK(shmk_buffer_read(b, 0, &v, sizeof(v), 0));
	CHECK_EQ(v, 31);

	/* A process that dies is dead even while its fork child lives. */
	pid = spawn(child_middle, NULL);
	CHECK_EQ(read(g_pipe[0], &gc, sizeof(gc)), (ssize_t)sizeof(gc));
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK(part_of(&st, pid) && part_of(&st, pid)->alive);
	CHECK_OK(kill(pid, SIGKILL));
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	CHECK_EQ(kill(gc, 0), 0); /* the grandchild still runs */
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK(!part_of(&st, pid)->alive);
	CHECK_EQ(st.nalive, 1);
	kill(gc, SIGKILL);
	CHECK_OK(shmk_buffer_close(anon));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(g_name));
}

static _Atomic int g_stop;

/* Opens and closes a handle as fast as it can. */
static void *churn(void *arg)
{
	struct shmk_buffer *b;

	(void)arg;
	while (!atomic_load(&g_stop)) {
		CHECK_OK(shmk_buffer_open(g_name, NULL, &b));
		CHECK_OK(shmk_buffer_close(b));
	}
	return NULL;
}

/*
 * A fork in one thread while another opens and closes handles: no child
 * may ever be left holding a description (and so a liveness token) of a
 * handle its parent has closed.
 */
static void test_fork_during_close(void)
{
	enum { KIDS = 200 };
	static pid_t kids[KIDS];
	struct shmk_buffer *b;
	struct shmk_stat st;
	pthread_t t;
	int i;

	CHECK_OK(shmk_buffer_create(g_name, 1 << 20, NULL, &b));
	CHECK_OK(pthread_create(&t, NULL, churn, NULL));
	for (i = 0; i < KIDS; i++) {
		kids[i] = fork();
		CHECK(kids[i] >= 0);
		if (kids[i] == 0) {
			/* fork() has returned here, so the atfork handler
			 * has run: say so, then live on, never exec. */
			CHECK_EQ(write(g_pipe[1], "k", 1), 1);
			pause();
			_exit(0);
		}
	}
	atomic_store(&g_stop, 1);
	CHECK_OK(pthread_join(t, NULL));
	for (i = 0; i < KIDS; i++) {
		char c;

		CHECK_EQ(read(g_pipe[0], &c, 1), 1);
	}
	CHECK_OK(shmk_stat(g_name, &st));
	for (i = 0; i < KIDS; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	CHECK_EQ(st.nalive, 1);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(g_name));
}

int main(void)
{
	check_init();
	CHECK_OK(pipe(g_pipe));
	g_name = tname("live");
	test_kill_and_stop();
	test_slots_reused();
	test_table_full();
	test_fork();
	test_fork_during_close();
	printf("test_liveness: ok\n");
	return 0;
}
