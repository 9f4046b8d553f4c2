/* SPDX-License-Identifier: MIT */
/*
 * test_buffer - shmk_buffer across processes: size discovery, exclusive
 * create, waiting for a creator, bounds, options, open twice, open-or-
 * create, shutdown state, and unlink.
 */
#include "check.h"

static const char *g_name;
static int g_pipe[2];

static int child_reads(void *arg)
{
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_buffer *b;
	int v;

	(void)arg;
	CHECK_OK(shmk_buffer_open(g_name, &o, &b));
	CHECK_EQ(shmk_buffer_size(b), 1024);
	CHECK_OK(shmk_buffer_read(b, 0, &v, sizeof(v), -1));
	CHECK_EQ(v, 123);
	CHECK_OK(shmk_buffer_read(b, 1000, &v, sizeof(v), -1));
	CHECK_EQ(v, 456);
	v = 789;
	CHECK_OK(shmk_buffer_write(b, 500, &v, sizeof(v), -1));
	CHECK_OK(shmk_buffer_close(b));
	return 0;
}

static void test_cross_process(void)
{
	struct shmk_buffer *b;
	int v;

	g_name = tname("xp");
	CHECK_OK(shmk_buffer_create(g_name, 1024, NULL, &b));
	v = 123;
	CHECK_OK(shmk_buffer_write(b, 0, &v, sizeof(v), -1));
	v = 456;
	CHECK_OK(shmk_buffer_write(b, 1000, &v, sizeof(v), -1));
	CHECK_EQ(wait_child(spawn(child_reads, NULL), 10000), 0);
	CHECK_OK(shmk_buffer_read(b, 500, &v, sizeof(v), 0));
	CHECK_EQ(v, 789);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(g_name));
}

static size_t g_size;

/* Opens by name alone and checks the size and a pattern at both ends. */
static int child_size(void *arg)
{
	struct shmk_buffer *b;
	unsigned char *p;

	(void)arg;
	CHECK_OK(shmk_buffer_open(g_name, NULL, &b));
	CHECK_EQ(shmk_buffer_size(b), g_size);
	p = shmk_buffer_data(b);
	CHECK(p != NULL);
	CHECK_EQ(p[g_size - 1], 0x5a);
	if (g_size > 1)
		CHECK_EQ(p[0], 0xa5);
	CHECK_OK(shmk_buffer_close(b));
	return 0;
}

static void test_size_discovery(void)
{
	static const size_t sizes[] = {1, 7, 4095, 4096, 4097, 1048579};
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct shmk_buffer *b;
		unsigned char *p;

		g_name = tname("size");
		g_size = sizes[i];
		CHECK_OK(shmk_buffer_create(g_name, g_size, NULL, &b));
		CHECK_EQ(shmk_buffer_size(b), g_size);
		p = shmk_buffer_data(b);
		CHECK_EQ(p[g_size - 1], 0); /* created zeroed */
		p[0] = 0xa5;
		p[g_size - 1] = 0x5a;
		CHECK_EQ(wait_child(spawn(child_size, NULL), 10000), 0);
		CHECK_OK(shmk_buffer_close(b));
		CHECK_OK(shmk_unlink(g_name));
	}
}

static void test_exists_and_missing(void)
{
	struct shmk_opts o = {.wait_ms = 100};
	struct shmk_buffer *a, *b;
	uint64_t t0;

	g_name = tname("excl");
	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &a));
	CHECK_RC(shmk_buffer_create(g_name, 64, NULL, &b), -EEXIST);
	CHECK(b == NULL);
	CHECK_RC(shmk_buffer_create(g_name, 128, NULL, &b), -EEXIST);
	CHECK_OK(shmk_buffer_close(a));
	CHECK_OK(shmk_unlink(g_name));
	CHECK_RC(shmk_buffer_open(g_name, NULL, &b), -ENOENT);
	CHECK(b == NULL);
	t0 = check_now_ms();
	CHECK_RC(shmk_buffer_open(g_name, &o, &b), -ENOENT);
	CHECK(check_now_ms() - t0 >= 100);
	CHECK(check_now_ms() - t0 < 2000);
	CHECK_RC(shmk_unlink(g_name), -ENOENT);
}

/* Creates the object 200 ms after starting, then waits for the parent. */
static int child_late_creator(void *arg)
{
	struct shmk_buffer *b;
	int v = 4242;
	char c;

	(void)arg;
	sleep_ms(200);
	CHECK_OK(shmk_buffer_create(g_name, 4096, NULL, &b));
	CHECK_OK(shmk_buffer_write(b, 8, &v, sizeof(v), -1));
	/* Written after create returned: the parent polls for it. */
	CHECK_EQ(read(g_pipe[0], &c, 1), 1);
	CHECK_OK(shmk_buffer_close(b));
	return 0;
}

static void test_wait_for_creator(void)
{
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_buffer *b;
	uint64_t t0;
	pid_t pid;
	int v = 0;

	g_name = tname("late");
	CHECK_OK(pipe(g_pipe));
	t0 = check_now_ms();
	pid = spawn(child_late_creator, NULL);
	CHECK_OK(shmk_buffer_open(g_name, &o, &b));
	CHECK(check_now_ms() - t0 >= 150);
	CHECK(check_now_ms() - t0 < 4000);
	CHECK_EQ(shmk_buffer_size(b), 4096);
	while (v != 4242 && check_now_ms() - t0 < 5000)
		CHECK_OK(shmk_buffer_read(b, 8, &v, sizeof(v), -1));
	CHECK_EQ(v, 4242);
	CHECK_EQ(write(g_pipe[1], "x", 1), 1);
	CHECK_EQ(wait_child(pid, 10000), 0);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(g_name));
	close(g_pipe[0]);
	close(g_pipe[1]);
}

static void test_bounds(void)
{
	unsigned char src[16] = {1, 2, 3, 4}, dst[16], *p;
	struct shmk_buffer *b;
	size_t i;

	CHECK_OK(shmk_buffer_create(NULL, 1024, NULL, &b));
	p = shmk_buffer_data(b);
	CHECK_OK(shmk_buffer_write(b, 1020, src, 4, 0));
	CHECK_EQ(p[1023], 4);
	CHECK_RC(shmk_buffer_write(b, 1021, src, 4, 0), -ERANGE);
	CHECK_RC(shmk_buffer_write(b, 1024, src, 1, 0), -ERANGE);
	CHECK_OK(shmk_buffer_write(b, 1024, src, 0, 0)); /* empty, at end */
	CHECK_RC(shmk_buffer_write(b, 1025, src, 0, 0), -ERANGE);
	CHECK_RC(shmk_buffer_write(b, SIZE_MAX, src, 2, 0), -ERANGE);
	CHECK_RC(shmk_buffer_write(b, 1, src, SIZE_MAX, 0), -ERANGE);
	CHECK_RC(shmk_buffer_write(b, 2, src, SIZE_MAX - 1, 0), -ERANGE);
	CHECK_RC(shmk_buffer_read(b, 1021, dst, 4, 0), -ERANGE);
	CHECK_RC(shmk_buffer_read(b, SIZE_MAX, dst, 2, 0), -ERANGE);
	CHECK_RC(shmk_buffer_read(b, 1, dst, SIZE_MAX, 0), -ERANGE);
	CHECK_RC(shmk_buffer_write(b, 0, NULL, 1, 0), -EINVAL);
	CHECK_RC(shmk_buffer_read(b, 0, NULL, 1, 0), -EINVAL);
	CHECK_RC(shmk_buffer_write(b, 0, src, 1, -2), -EINVAL);
	CHECK_RC(shmk_buffer_write(NULL, 0, src, 1, 0), -EINVAL);
	/* Refused writes changed nothing. */
	for (i = 0; i < 1020; i++)
		CHECK_EQ(p[i], 0);
	CHECK_OK(shmk_buffer_read(b, 1020, dst, 4, -1));
	CHECK(!memcmp(dst, src, 4));
	CHECK_OK(shmk_buffer_close(b));
}

static void test_bad_arguments(void)
{
	struct shmk_opts o = {0};
	struct shmk_buffer *b = (void *)1;
	static char longname[256];

	CHECK_RC(shmk_buffer_create(tname("a"), 0, NULL, &b), -EINVAL);
	CHECK(b == NULL);
	CHECK_RC(shmk_buffer_create(tname("a"), 1, NULL, NULL), -EINVAL);
	CHECK_RC(shmk_buffer_create(tname("a"), (size_t)1 << 62, NULL, &b),
		 -EINVAL);
	o.flags = 1u << 20;
	CHECK_RC(shmk_buffer_create(tname("a"), 1, &o, &b), -EINVAL);
	CHECK_RC(shmk_buffer_open(tname("a"), &o, &b), -EINVAL);
	o.flags = 0;
	o.mode = 0400;
	CHECK_RC(shmk_buffer_create(tname("a"), 1, &o, &b), -EINVAL);
	o.mode = 01600;
	CHECK_RC(shmk_buffer_create(tname("a"), 1, &o, &b), -EINVAL);
	o.mode = 0;
	o.wait_ms = -2;
	CHECK_RC(shmk_buffer_open(tname("a"), &o, &b), -EINVAL);
	CHECK_RC(shmk_buffer_create("", 1, NULL, &b), -EINVAL);
	CHECK_RC(shmk_buffer_create("a b", 1, NULL, &b), -EINVAL);
	CHECK_RC(shmk_buffer_create("..", 1, NULL, &b), -EINVAL);
	CHECK_RC(shmk_buffer_open("x\n", NULL, &b), -EINVAL);
	memset(longname, 'n', 200);
	CHECK_RC(shmk_buffer_open(longname, NULL, &b), -ENOENT);
	memset(longname, 'n', 201);
	CHECK_RC(shmk_buffer_open(longname, NULL, &b), -ENAMETOOLONG);
	CHECK_RC(shmk_buffer_create("/tmp/", 1, NULL, &b), -EINVAL);
	CHECK_RC(shmk_buffer_create("/no/such/dir/x", 1, NULL, &b), -ENOENT);
	CHECK_OK(shmk_buffer_close(NULL));
	CHECK_EQ(shmk_buffer_size(NULL), 0);
	CHECK(shmk_buffer_data(NULL) == NULL);
	CHECK_RC(shmk_buffer_fd(NULL), -EINVAL);
	CHECK(strcmp(shmk_strerror(-EPROTO), shmk_strerror(-EBADMSG)));
	CHECK(strstr(shmk_strerror(-ENOENT), "no such") != NULL);
	CHECK(shmk_strerror(-99999) != NULL);
}

static void test_open_twice(void)
{
	struct shmk_buffer *c, *a, *b;
	struct shmk_stat st;
	int v = 5, w = 0;

	g_name = tname("twice");
	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &c));
	CHECK_OK(shmk_buffer_open(g_name, NULL, &a));
	CHECK_OK(shmk_buffer_open(g_name, NULL, &b));
	CHECK(shmk_buffer_data(a) != shmk_buffer_data(b));
	CHECK_OK(shmk_buffer_write(a, 4, &v, sizeof(v), -1));
	CHECK_OK(shmk_buffer_read(b, 4, &w, sizeof(w), -1));
	CHECK_EQ(w, 5);
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK_EQ(st.kind, SHMK_KIND_BUFFER);
	CHECK_EQ(st.state, SHMK_STATE_READY);
	CHECK_EQ(st.nalive, 3);
	CHECK_EQ(st.creator_alive, 1);
	CHECK_EQ(st.creator_pid, getpid());
	CHECK_EQ(st.ngeom, 1);
	CHECK_EQ(st.geom[0], 64);
	CHECK(!strcmp(shmk_stat_geom_name(st.kind, 0), "size"));
	CHECK(shmk_stat_geom_name(st.kind, 1) == NULL);
	CHECK_OK(shmk_buffer_close(a));
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK_EQ(st.nalive, 2);
	/* The creator's close marks the object shut down; others go on. */
	CHECK_OK(shmk_buffer_close(c));
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK_EQ(st.state, SHMK_STATE_SHUTDOWN);
	CHECK_EQ(st.creator_alive, 0);
	CHECK_EQ(st.nalive, 1);
	CHECK_OK(shmk_buffer_read(b, 4, &w, sizeof(w), -1));
	CHECK_EQ(w, 5);
	CHECK_OK(shmk_buffer_close(b));
	/* A shut-down object can still be opened (the persisted kind is
	 * reopened after its creator is long gone). */
	CHECK_OK(shmk_buffer_open(g_name, NULL, &b));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(g_name));
}

static void test_open_or_create(void)
{
	struct shmk_opts o = {.flags = SHMK_F_OPEN_OR_CREATE};
	struct shmk_buffer *a, *b;
	struct shmk_stat st;

	g_name = tname("ooc");
	CHECK_OK(shmk_buffer_create(g_name, 100, &o, &a));
	CHECK_OK(shmk_buffer_create(g_name, 100, &o, &b));
	CHECK_RC(shmk_buffer_create(g_name, 101, &o, &b), -EPROTO);
	CHECK_OK(shmk_buffer_close(b)); /* b: the second, an opener */
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK_EQ(st.state, SHMK_STATE_READY);
	CHECK_OK(shmk_buffer_close(a));
	CHECK_OK(shmk_stat(g_name, &st));
	CHECK_EQ(st.state, SHMK_STATE_SHUTDOWN);
	CHECK_OK(shmk_unlink(g_name));
}

static void test_unlink(void)
{
	struct shmk_buffer *b, *c;
	char path[256];
	FILE *f;
	int v = 77;

	g_name = tname("unl");
	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &b));
	CHECK_OK(shmk_unlink(g_name));
	CHECK_RC(shmk_buffer_open(g_name, NULL, &c), -ENOENT);
	/* Handles outlive the name. */
	CHECK_OK(shmk_buffer_write(b, 0, &v, sizeof(v), -1));
	/* The name is free again. */
	CHECK_OK(shmk_buffer_create(g_name, 64, NULL, &c));
	CHECK_OK(shmk_buffer_read(c, 0, &v, sizeof(v), -1));
	CHECK_EQ(v, 0);
	CHECK_OK(shmk_buffer_close(c));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(g_name));
	/* A file that is not a shmk object is never removed. */
	CHECK_OK(shmk_path(tname("plain"), path, sizeof(path)));
	f = fopen(path, "w");
	CHECK(f != NULL);
	fputs("not an object", f);
	fclose(f);
	CHECK_RC(shmk_unlink(tname("plain")), -EPROTO);
	CHECK_EQ(access(path, F_OK), 0);
	unlink(path);
	CHECK_RC(shmk_unlink("bad name"), -EINVAL);
}

int main(void)
{
	check_init();
	test_cross_process();
	test_size_discovery();
	test_exists_and_missing();
	test_wait_for_creator();
	test_bounds();
	test_bad_arguments();
	test_open_twice();
	test_open_or_create();
	test_unlink();
	printf("test_buffer: ok\n");
	return 0;
}
