/* SPDX-License-Identifier: MIT */
/*
 * test_persist - the persisted kind (a name with '/' is a file): data
 * written by a process that exits, cleanly or killed, is there for a new
 * process; relative paths work; unlink removes the file.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "check.h"

#define SIZE ((size_t)1048576 + 5)

static char g_path[128];

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 31 + (i >> 9));
}

/* Creates the object, fills it, then exits cleanly or dies. */
static int child_writer(void *arg)
{
	struct shmk_buffer *b;
	unsigned char *p;
	size_t i;

	CHECK_OK(shmk_buffer_create(g_path, SIZE, NULL, &b));
	p = shmk_buffer_data(b);
	for (i = 0; i < SIZE; i++)
		p[i] = pattern(i);
	if (arg)
		raise(SIGKILL); /* a crash: nothing is closed */
	CHECK_OK(shmk_buffer_close(b));
	return 0;
}

static int g_want_state;

static int child_reader(void *arg)
{
	struct shmk_buffer *b;
	struct shmk_stat st;
	unsigned char *p;
	size_t i;

	(void)arg;
	CHECK_OK(shmk_stat(g_path, &st));
	CHECK_EQ(st.state, g_want_state);
	CHECK_EQ(st.creator_alive, 0);
	CHECK_OK(shmk_buffer_open(g_path, NULL, &b));
	CHECK_EQ(shmk_buffer_size(b), SIZE);
	p = shmk_buffer_data(b);
	for (i = 0; i < SIZE; i++)
		if (p[i] != pattern(i)) {
			fprintf(stderr, "byte %zu: %u != %u\n", i, p[i],
				pattern(i));
			return 1;
		}
	CHECK_OK(shmk_buffer_close(b));
	return 0;
}

static void run(int crash)
{
	struct stat st;

	CHECK_EQ(
		wait_child(spawn(child_writer, (void *)(intptr_t)crash), 20000),
		crash ? 128 + SIGKILL : 0);
	CHECK_OK(stat(g_path, &st));
	CHECK(S_ISREG(st.st_mode));
	CHECK_EQ(st.st_mode & 0777, 0600);
	g_want_state = crash ? SHMK_STATE_READY : SHMK_STATE_SHUTDOWN;
	CHECK_EQ(wait_child(spawn(child_reader, NULL), 20000), 0);
	/* ... and again: reopening changes nothing. */
	CHECK_EQ(wait_child(spawn(child_reader, NULL), 20000), 0);
	CHECK_OK(shmk_unlink(g_path));
	CHECK_RC(stat(g_path, &st) == 0 ? 0 : -errno, -ENOENT);
}

int main(void)
{
	char dir[64] = "/tmp/shmk-persist-XXXXXX";
	struct shmk_buffer *b;

	check_init();
	CHECK(mkdtemp(dir) != NULL);
	snprintf(g_path, sizeof(g_path), "%s/obj", dir);
	run(0);
	run(1);

	/* A relative path is a file too. */
	CHECK_OK(chdir(dir));
	CHECK_OK(shmk_buffer_create("./rel", 10, NULL, &b));
	CHECK_OK(access("rel", F_OK));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_buffer_open("./rel", NULL, &b));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink("./rel"));
	CHECK_OK(chdir("/"));
	/* Nothing left behind, not even a temporary file. */
	CHECK_EQ(count_dir(dir), 0);
	CHECK_OK(rmdir(dir));
	printf("test_persist: ok\n");
	return 0;
}
