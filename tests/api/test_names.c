/* SPDX-License-Identifier: MIT */
/*
 * test_names - the public view of names: shmk_path() (the file behind a
 * name, bad names, a buffer too small), shmk_list() (exactly the objects
 * there, not other files; an early stop; removed ones gone), and the mode
 * shmk_stat() reports in flags (a ring's single writer or reader, a
 * topic's policy).
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "check.h"

#define CHECK_STR(a, b)                                                        \
	do {                                                                   \
		const char *a_ = (a), *b_ = (b);                               \
		if (strcmp(a_, b_) != 0) {                                     \
			fprintf(stderr,                                        \
				"%s:%d: CHECK_STR(%s, %s) failed: \"%s\" != "  \
				"\"%s\"\n",                                    \
				__FILE__, __LINE__, #a, #b, a_, b_);           \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* shmk_path(name) must fail with want and leave "" in buf. */
static void path_fails(const char *name, int want)
{
	char buf[64];

	memset(buf, 'x', sizeof(buf));
	CHECK_RC(shmk_path(name, buf, sizeof(buf)), want);
	CHECK_EQ(buf[0], '\0');
}

static void test_path(void)
{
	char buf[8192], want[8192], big[5000];
	size_t n;

	/* A plain name: the file the library creates and opens. */
	CHECK_OK(shmk_path("frames", buf, sizeof(buf)));
	CHECK_STR(buf, "/dev/shm/shmk.frames");
	CHECK_OK(shmk_path("a.B_c-9", buf, sizeof(buf)));
	CHECK_STR(buf, "/dev/shm/shmk.a.B_c-9");
	/* A file path is its own file, relative or not. */
	CHECK_OK(shmk_path("/var/tmp/x.shmk", buf, sizeof(buf)));
	CHECK_STR(buf, "/var/tmp/x.shmk");
	CHECK_OK(shmk_path("dir/x", buf, sizeof(buf)));
	CHECK_STR(buf, "dir/x");
	CHECK_OK(shmk_path("./x", buf, sizeof(buf)));
	CHECK_STR(buf, "./x");

	/* What the object calls refuse, shmk_path refuses alike. */
	path_fails(NULL, -EINVAL);
	path_fails("", -EINVAL);
	path_fails(".", -EINVAL);
	path_fails("..", -EINVAL);
	path_fails("a b", -EINVAL);
	path_fails("a*", -EINVAL);
	path_fails("caf\xc3\xa9", -EINVAL);
	path_fails("dir/", -EINVAL);
	path_fails("dir/..", -EINVAL);

	/* 200 characters is the longest plain name. */
	memset(big, 'n', 200);
	big[200] = '\0';
	CHECK_OK(shmk_path(big, buf, sizeof(buf)));
	snprintf(want, sizeof(want), "/dev/shm/shmk.%s", big);
	CHECK_STR(buf, want);
	big[200] = 'n';
	big[201] = '\0';
	path_fails(big, -ENAMETOOLONG);
	/* A file path must fit PATH_MAX. */
	memset(big, 'p', sizeof(big) - 1);
	big[0] = '/';
	big[sizeof(big) - 1] = '\0';
	path_fails(big, -ENAMETOOLONG);

	/* The buffer: exactly the path and its NUL fit; one byte less is
	 * -ERANGE, with nothing but "" written. */
	n = strlen("/dev/shm/shmk.frames");
	memset(buf, 'Z', sizeof(buf));
	CHECK_OK(shmk_path("frames", buf, n + 1));
	CHECK_STR(buf, "/dev/shm/shmk.frames");
	CHECK_EQ(buf[n + 1], 'Z');
	memset(buf, 'Z', sizeof(buf));
	CHECK_RC(shmk_path("frames", buf, n), -ERANGE);
	CHECK_EQ(buf[0], '\0');
	CHECK_EQ(buf[1], 'Z');
	CHECK_EQ(buf[n], 'Z');
	memset(buf, 'Z', sizeof(buf));
	CHECK_RC(shmk_path("dir/x", buf, 5), -ERANGE);
	CHECK_EQ(buf[0], '\0');
	CHECK_EQ(buf[1], 'Z');
	CHECK_OK(shmk_path("dir/x", buf, 6));
	CHECK_STR(buf, "dir/x");
	buf[0] = 'Z';
	CHECK_RC(shmk_path("frames", buf, 1), -ERANGE);
	CHECK_EQ(buf[0], '\0');
	CHECK_RC(shmk_path("frames", NULL, 0), -ERANGE);
	CHECK_RC(shmk_path("frames", NULL, 64), -EINVAL);
	/* A bad name is bad whatever the buffer. */
	CHECK_RC(shmk_path("a b", NULL, 0), -EINVAL);
}

/* ------------------------------------------------------------------ */
/* shmk_list                                                            */
/* ------------------------------------------------------------------ */

#define NOURS 8

/* What a walk saw of this test's names (t<pid>.list.*). */
struct seen {
	const char *ours[NOURS];
	int nours;
	int count[NOURS]; /* times ours[i] was given */
	int others;	  /* our names that are not in ours[] */
	int calls;	  /* every call, ours or not */
	int stop_at;	  /* return stop_rc at this call (1-based), or 0 */
	int stop_rc;
	int bad; /* names shmk_path refused, or not a regular file */
};

static int on_name(const char *name, void *arg)
{
	struct seen *s = arg;
	char prefix[64], path[4096];
	struct stat st;
	int i;

	s->calls++;
	if (shmk_path(name, path, sizeof(path)) < 0 || strchr(name, '/'))
		s->bad++;
	snprintf(prefix, sizeof(prefix), "%s", tname("list."));
	if (!strncmp(name, prefix, strlen(prefix))) {
		/* Only ours: others' may go at any time. */
		if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
			s->bad++;
		for (i = 0; i < s->nours; i++)
			if (!strcmp(name, s->ours[i]))
				break;
		if (i < s->nours)
			s->count[i]++;
		else
			s->others++;
	}
	return s->calls == s->stop_at ? s->stop_rc : 0;
}

static void walk(struct seen *s)
{
	memset(s->count, 0, sizeof(s->count));
	s->others = s->calls = s->bad = 0;
	CHECK_OK(shmk_list(on_name, s));
	CHECK_EQ(s->bad, 0);
	CHECK_EQ(s->others, 0);
}

/* What check_cleanup() does not remove: a directory in /dev/shm and a
 * persisted object, removed here if the test fails on the way. */
static char g_dir[256], g_persisted[128];

static void cleanup(void)
{
	if (g_dir[0])
		rmdir(g_dir);
	if (g_persisted[0])
		unlink(g_persisted);
}

/* The path of an entry "shmk.<name>" of /dev/shm, for entries that are
 * not objects. */
static void shm_entry(const char *name, char *path, size_t cap)
{
	/* By hand: shmk_list() is checked against shmk.h, bad names too. */
	snprintf(path, cap, "/dev/shm/shmk.%s", name);
}

static void test_list(void)
{
	char *dir = g_dir, *persisted = g_persisted;
	char lnk[256], fifo[256], badname[256], target[256];
	struct shmk_buffer *b[3], *p;
	struct seen s = {0};
	int i, fd;

	s.ours[0] = strdup(tname("list.a"));
	s.ours[1] = strdup(tname("list.b"));
	s.ours[2] = strdup(tname("list.c"));
	s.ours[3] = strdup(tname("list.junk"));
	s.nours = 4;
	for (i = 0; i < 3; i++)
		CHECK_OK(shmk_buffer_create(s.ours[i], 64, NULL, &b[i]));
	/* A regular file at a valid name is listed, object or not. */
	shm_entry(s.ours[3], target, sizeof(target));
	fd = open(target, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "junk", 4), 4);
	close(fd);
	/* Not listed: a directory, a symlink and a FIFO at valid names, a
	 * regular file whose name is not one, a persisted object. */
	shm_entry(tname("list.dir"), dir, sizeof(g_dir));
	CHECK_OK(mkdir(dir, 0700));
	shm_entry(tname("list.link"), lnk, sizeof(lnk));
	shm_entry(s.ours[0], target, sizeof(target));
	CHECK_OK(symlink(target, lnk));
	shm_entry(tname("list.fifo"), fifo, sizeof(fifo));
	CHECK_OK(mkfifo(fifo, 0600));
	shm_entry(tname("list.bad name"), badname, sizeof(badname));
	fd = open(badname, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	close(fd);
	snprintf(persisted, sizeof(g_persisted), "/tmp/shmk-%s",
		 tname("list.persisted"));
	CHECK_OK(shmk_buffer_create(persisted, 64, NULL, &p));

	walk(&s);
	for (i = 0; i < 4; i++)
		CHECK_EQ(s.count[i], 1);
	CHECK(s.calls >= 4);

	/* A non-zero return stops the walk at once and is returned. */
	s.calls = 0;
	s.stop_at = 1;
	s.stop_rc = 7;
	CHECK_RC(shmk_list(on_name, &s), 7);
	CHECK_EQ(s.calls, 1);
	s.calls = 0;
	s.stop_at = 2;
	s.stop_rc = -ECANCELED;
	CHECK_RC(shmk_list(on_name, &s), -ECANCELED);
	CHECK_EQ(s.calls, 2);
	s.stop_at = 0;
	CHECK_RC(shmk_list(NULL, NULL), -EINVAL);

	/* Removed names are gone, the others stay. */
	CHECK_OK(shmk_buffer_close(b[1]));
	CHECK_OK(shmk_unlink(s.ours[1]));
	shm_entry(s.ours[3], target, sizeof(target));
	CHECK_OK(unlink(target));
	walk(&s);
	CHECK_EQ(s.count[0], 1);
	CHECK_EQ(s.count[1], 0);
	CHECK_EQ(s.count[2], 1);
	CHECK_EQ(s.count[3], 0);
	/* A new one appears. */
	s.ours[4] = strdup(tname("list.d"));
	s.nours = 5;
	CHECK_OK(shmk_buffer_create(s.ours[4], 64, NULL, &b[1]));
	walk(&s);
	CHECK_EQ(s.count[4], 1);
	CHECK_EQ(s.count[0] + s.count[1] + s.count[2] + s.count[3], 2);

	CHECK_OK(shmk_buffer_close(b[1]));
	CHECK_OK(shmk_unlink(s.ours[4]));
	for (i = 0; i < 3; i += 2) {
		CHECK_OK(shmk_buffer_close(b[i]));
		CHECK_OK(shmk_unlink(s.ours[i]));
	}
	walk(&s);
	for (i = 0; i < s.nours; i++)
		CHECK_EQ(s.count[i], 0);
	CHECK_OK(shmk_buffer_close(p));
	CHECK_OK(shmk_unlink(persisted));
	CHECK_OK(rmdir(dir));
	CHECK_OK(unlink(lnk));
	CHECK_OK(unlink(fifo));
	CHECK_OK(unlink(badname));
	for (i = 0; i < s.nours; i++)
		free((void *)s.ours[i]);
}

/* ------------------------------------------------------------------ */
/* The mode in shmk_stat                                                */
/* ------------------------------------------------------------------ */

#define RING_MODE (SHMK_F_SINGLE_WRITER | SHMK_F_SINGLE_READER)

/* The flags shmk_stat gives for a ring created with flags. */
static unsigned ring_flags(const char *tag, unsigned flags)
{
	struct shmk_opts o = {.flags = flags};
	struct shmk_ring *r, *r2;
	struct shmk_stat st, st2;
	const char *name = tname(tag);

	CHECK_OK(shmk_ring_create(name, 8, 64, &o, &r));
	CHECK_OK(shmk_stat(name, &st));
	CHECK_EQ(st.kind, SHMK_KIND_RING);
	/* An opener's view is the same: the mode is the ring's. */
	CHECK_OK(shmk_ring_open(name, NULL, &r2));
	CHECK_OK(shmk_stat(name, &st2));
	CHECK_EQ(st2.flags, st.flags);
	CHECK_OK(shmk_ring_close(r2));
	CHECK_OK(shmk_ring_close(r));
	/* Still the mode once shut down by the creator's close. */
	CHECK_OK(shmk_stat(name, &st2));
	CHECK_EQ(st2.flags, st.flags);
	CHECK_OK(shmk_unlink(name));
	return st.flags;
}

static void test_mode(void)
{
	struct shmk_opts o = {0};
	struct shmk_buffer *b;
	struct shmk_topic *t;
	struct shmk_stat st;

	CHECK_EQ(ring_flags("mode.multi", 0), 0);
	CHECK_EQ(ring_flags("mode.sw", SHMK_F_SINGLE_WRITER),
		 SHMK_F_SINGLE_WRITER);
	CHECK_EQ(ring_flags("mode.sr", SHMK_F_SINGLE_READER),
		 SHMK_F_SINGLE_READER);
	CHECK_EQ(ring_flags("mode.both", RING_MODE), RING_MODE);
	CHECK_EQ(ring_flags("mode.keep", SHMK_F_KEEP | SHMK_F_SINGLE_WRITER),
		 SHMK_F_KEEP | SHMK_F_SINGLE_WRITER);

	/* A topic's policy. */
	CHECK_OK(shmk_topic_create(tname("mode.lossless"), 4096, 100, &o, &t));
	CHECK_OK(shmk_stat(tname("mode.lossless"), &st));
	CHECK_EQ(st.flags, 0);
	CHECK_OK(shmk_topic_close(t));
	o.flags = SHMK_F_LOSSY;
	CHECK_OK(shmk_topic_create(tname("mode.lossy"), 4096, 100, &o, &t));
	CHECK_OK(shmk_stat(tname("mode.lossy"), &st));
	CHECK_EQ(st.flags, SHMK_F_LOSSY);
	CHECK_OK(shmk_topic_close(t));
	/* Other kinds have no mode. */
	CHECK_OK(shmk_buffer_create(tname("mode.buf"), 64, NULL, &b));
	CHECK_OK(shmk_stat(tname("mode.buf"), &st));
	CHECK_EQ(st.flags, 0);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(tname("mode.lossless")));
	CHECK_OK(shmk_unlink(tname("mode.lossy")));
	CHECK_OK(shmk_unlink(tname("mode.buf")));
}

int main(void)
{
	check_init();
	atexit(cleanup);
	test_path();
	test_list();
	test_mode();
	printf("test_names: ok\n");
	return 0;
}
