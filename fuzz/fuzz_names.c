/* SPDX-License-Identifier: MIT */
/*
 * fuzz_names - names, as every call that takes one sees them: plain names,
 * file paths (any '/'), odd bytes, every length up to past PATH_MAX.
 *
 * The input (after byte 0, which picks the buffer size given to the
 * validator) is the name, up to its first NUL.  shmk__name_path() is
 * checked against the rules as shmk.h states them, written out again here
 * independently: plain names of 1..200 characters from [A-Za-z0-9._-]
 * other than "." and "..", paths whose last component is not empty, "."
 * or "..", -ENAMETOOLONG for what does not fit.  A name the rules refuse
 * is then given to the public calls, which must refuse it before touching
 * anything.  A name they accept is used for real, kept inside a scratch
 * directory: a plain name gets this process's prefix ("fz<pid>."), a path
 * (relative or absolute) is put under a scratch directory in /dev/shm
 * (the working directory is libFuzzer's: it names the corpus), paths with
 * a ".." component are left out; the object is created, opened,
 * described, removed, and must then be gone.
 */
#include "fuzz.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_MAX_ 200
#define PATH_MAX_ 4096

static char scratch[64], prefix[32];

static void cleanup(void)
{
	DIR *d = opendir(scratch);
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' || strlen(e->d_name) > 2)
			unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
	rmdir(scratch);
}

static void init(void)
{
	snprintf(scratch, sizeof(scratch), "/dev/shm/fz-names.%d",
		 (int)getpid());
	snprintf(prefix, sizeof(prefix), "fz%d.", (int)getpid());
	if (mkdir(scratch, 0700) < 0)
		abort();
	atexit(cleanup);
}

static int plain_char(char c)
{
	return strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789._-",
		      c) != NULL &&
	       c != 0;
}

/* The rules of shmk.h: 0 plain, 1 path, or the error. */
static int rule(const char *name)
{
	size_t n = strlen(name), i;
	const char *base;

	if (n == 0)
		return -EINVAL;
	if (n >= PATH_MAX_)
		return -ENAMETOOLONG;
	if (strchr(name, '/')) {
		base = strrchr(name, '/') + 1;
		if (!strcmp(base, "") || !strcmp(base, ".") ||
		    !strcmp(base, ".."))
			return -EINVAL;
		return 1;
	}
	if (n > NAME_MAX_)
		return -ENAMETOOLONG;
	for (i = 0; i < n; i++)
		if (!plain_char(name[i]))
			return -EINVAL;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	return 0;
}

static void check_validator(const char *name, size_t cap)
{
	char *path = malloc(cap), want[PATH_MAX_ + 64];
	int rc, r = rule(name);

	if (!path)
		return;
	memset(path, 0x55, cap);
	rc = shmk__name_path(name, path, cap);
	/* By hand, not shmk_path(): the oracle must not be the code tested. */
	if (r == 0)
		snprintf(want, sizeof(want), "/dev/shm/shmk.%s", name);
	else if (r == 1)
		snprintf(want, sizeof(want), "%s", name);
	if (r >= 0 && strlen(want) >= cap)
		r = -ENAMETOOLONG; /* does not fit the caller's buffer */
	/* A bad path that would not fit either: either error will do (the
	 * library's callers all give SHMK__PATH_MAX). */
	if (r == -EINVAL && rc == -ENAMETOOLONG && strlen(name) >= cap)
		r = rc;
	if (rc != r)
		fprintf(stderr, "name_path(\"%s\", %zu): %d, rules: %d\n", name,
			cap, rc, r);
	FUZZ_CHECK(rc == r);
	if (rc >= 0)
		FUZZ_CHECK(strcmp(path, want) == 0);
	free(path);
}

/* A refused name: every call refuses it, and nothing is made. */
static void check_refused(const char *name, int err)
{
	struct shmk_opts o = {0};
	struct shmk_buffer *b = NULL;
	struct shmk_ring *q = NULL;
	struct shmk_rpc *r = NULL;
	struct shmk_rpc_opts ro = {0};
	struct shmk_stat st;

	FUZZ_CHECK(shmk_buffer_create(name, 64, &o, &b) == err && !b);
	FUZZ_CHECK(shmk_buffer_open(name, &o, &b) == err && !b);
	FUZZ_CHECK(shmk_ring_create(name, 2, 8, &o, &q) == err && !q);
	FUZZ_CHECK(shmk_ring_open(name, &o, &q) == err && !q);
	FUZZ_CHECK(shmk_stat(name, &st) == err);
	FUZZ_CHECK(shmk_unlink(name) == err);
	/* rpc names are plain names of at most SHMK_RPC_NAME_MAX. */
	FUZZ_CHECK(shmk_rpc_serve(name, &ro, &r) < 0 && !r);
	FUZZ_CHECK(shmk_rpc_connect(name, &ro, &r) < 0 && !r);
}

static int has_dotdot(const char *p)
{
	const char *s = p;

	while ((s = strstr(s, "..")) != NULL) {
		if ((s == p || s[-1] == '/') && (s[2] == '/' || s[2] == 0))
			return 1;
		s++;
	}
	return 0;
}

/* An accepted name, made harmless: plain names get our prefix, paths
 * go under the scratch directory. */
static int sandbox(const char *name, int kind, char *out, size_t cap)
{
	int n;

	if (kind == 0)
		n = snprintf(out, cap, "%s%s", prefix, name);
	else if (has_dotdot(name))
		return -1;
	else
		n = snprintf(out, cap, "%s/%s", scratch, name);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	return rule(out) == kind ? 0 : -1;
}

static void check_accepted(const char *name, int kind)
{
	char s[PATH_MAX_ + 64];
	struct shmk_opts o = {0};
	struct shmk_buffer *b, *b2;
	struct shmk_stat st;
	int rc;

	if (sandbox(name, kind, s, sizeof(s)) < 0)
		return;
	rc = shmk_buffer_create(s, 64, &o, &b);
	if (kind == 0)
		FUZZ_CHECK(rc == 0); /* in /dev/shm, with our prefix */
	else
		FUZZ_CHECK(rc <= 0); /* a path: the file system may refuse */
	if (rc < 0)
		return;
	FUZZ_CHECK(shmk_buffer_open(s, &o, &b2) == 0);
	FUZZ_CHECK(shmk_stat(s, &st) == 0 && st.kind == SHMK_KIND_BUFFER &&
		   st.nalive == 2);
	shmk_buffer_close(b2);
	shmk_buffer_close(b);
	FUZZ_CHECK(shmk_unlink(s) == 0);
	FUZZ_CHECK(shmk_buffer_open(s, &o, &b2) == -ENOENT);
	FUZZ_CHECK(shmk_unlink(s) == -ENOENT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t caps[] = {PATH_MAX_, 1, 14, 15, 16, 64, 215, 216};
	static int inited;
	char *name;
	int r;

	if (!inited) {
		init();
		inited = 1;
	}
	if (size < 1)
		return 0;
	name = malloc(size);
	if (!name)
		return 0;
	memcpy(name, data + 1, size - 1);
	name[size - 1] = 0;
	check_validator(name, caps[data[0] % 8]);
	check_validator(name, PATH_MAX_);
	r = rule(name);
	if (r < 0)
		check_refused(name, r);
	else if (data[0] & 0x80)
		check_accepted(name, r);
	free(name);
	return 0;
}
