/* SPDX-License-Identifier: MIT */
/*
 * test_region - what the region layer refuses: symlinks, FIFOs and
 * directories at a name (a canary behind a symlink stays untouched), corrupt
 * headers of every sort, untrusted owners and modes; and that modes are
 * exactly as asked whatever the umask.
 *
 * White-box: src/internal.h for struct shmk__hdr, SHMK__MAGIC,
 * SHMK__VERSION and SHMK__HDR_SIZE: each field of a real object's header
 * is corrupted in turn, and a file's size is checked against the layout.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "check.h"
#include "internal.h"

static char g_dir[64];

static void shm_path(char *buf, size_t cap, const char *name)
{
	CHECK_OK(shmk_path(name, buf, cap));
}

static void write_file(const char *path, const void *p, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	CHECK(fd >= 0);
	CHECK_EQ(write(fd, p, n), (ssize_t)n);
	CHECK_OK(fchmod(fd, mode));
	close(fd);
}

/* Every way of opening or removing name must fail with want. */
static void refused(const char *name, int want_open, int want_unlink)
{
	struct shmk_buffer *b = NULL;
	struct shmk_stat st;

	CHECK_RC(shmk_buffer_open(name, NULL, &b), want_open);
	CHECK(b == NULL);
	CHECK_RC(shmk_stat(name, &st), want_open);
	CHECK_RC(shmk_buffer_create(name, 64, NULL, &b), -EEXIST);
	CHECK(b == NULL);
	if (want_unlink)
		CHECK_RC(shmk_unlink(name), want_unlink);
}

static void test_hostile_names(void)
{
	char canary[128], path[256], fname[256];
	struct stat before, after;
	char buf[16] = {0};
	int fd;

	snprintf(canary, sizeof(canary), "%s/canary", g_dir);
	write_file(canary, "canary", 6, 0600);
	CHECK_OK(stat(canary, &before));
	sleep_ms(20); /* so that a write would show in the mtime */

	/* A symlink at a plain name and at a file path. */
	shm_path(path, sizeof(path), tname("sym"));
	CHECK_OK(symlink(canary, path));
	refused(tname("sym"), -EACCES, -EACCES);
	snprintf(fname, sizeof(fname), "%s/sym", g_dir);
	CHECK_OK(symlink(canary, fname));
	refused(fname, -EACCES, -EACCES);

	/* A FIFO: refused without blocking in open. */
	shm_path(path, sizeof(path), tname("fifo"));
	CHECK_OK(mkfifo(path, 0600));
	refused(tname("fifo"), -EPROTO, -EPROTO);

	/* A directory. */
	shm_path(path, sizeof(path), tname("dir"));
	CHECK_OK(mkdir(path, 0700));
	refused(tname("dir"), -EPROTO, -EPROTO);
	rmdir(path);

	CHECK_OK(stat(canary, &after));
	CHECK_EQ(after.st_size, 6);
	CHECK_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	CHECK_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	CHECK_EQ(after.st_mode, before.st_mode);
	fd = open(canary, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(read(fd, buf, sizeof(buf)), 6);
	CHECK(!memcmp(buf, "canary", 6));
	close(fd);
	shm_path(path, sizeof(path), tname("sym"));
	unlink(path);
	shm_path(path, sizeof(path), tname("fifo"));
	unlink(path);
	unlink(fname);
	unlink(canary);
}

/* A valid buffer's file image, to corrupt. */
static unsigned char *image(size_t *len)
{
	struct shmk_buffer *b;
	char path[256];
	unsigned char *p;
	struct stat st;
	int fd;

	CHECK_OK(shmk_buffer_create(tname("img"), 100, NULL, &b));
	shm_path(path, sizeof(path), tname("img"));
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_OK(fstat(fd, &st));
	CHECK_EQ(st.st_size, SHMK__HDR_SIZE + 100);
	p = malloc((size_t)st.st_size);
	CHECK(p != NULL);
	CHECK_EQ(read(fd, p, (size_t)st.st_size), st.st_size);
	close(fd);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(tname("img")));
	*len = (size_t)st.st_size;
	return p;
}

/* Writes a corrupted copy of the image as an object and checks the open. */
static void bad_kind(struct shmk__hdr *h);

static void corrupt(const unsigned char *img, size_t len, size_t keep,
		    void (*edit)(struct shmk__hdr *h), int want)
{
	unsigned char *p = malloc(len);
	struct shmk_opts o = {.wait_ms = 50};
	struct shmk_buffer *b = NULL;
	char path[256];

	CHECK(p != NULL);
	memcpy(p, img, len);
	if (edit)
		edit((struct shmk__hdr *)p);
	shm_path(path, sizeof(path), tname("bad"));
	write_file(path, p, keep, 0600);
	CHECK_RC(shmk_buffer_open(tname("bad"), &o, &b), want);
	CHECK(want == 0 ? b != NULL : b == NULL);
	CHECK_OK(shmk_buffer_close(b));
	/* stat describes an "init" object; it reads another kind's header
	 * as that kind, whose geometry a buffer image does not have. */
	if (edit == bad_kind)
		CHECK_RC(shmk_stat(tname("bad"), &(struct shmk_stat){0}),
			 -EBADMSG);
	else if (want != -ETIMEDOUT)
		CHECK_RC(shmk_stat(tname("bad"), &(struct shmk_stat){0}), want);
	/* A corrupt object can still be removed by its owner. */
	if (keep >= 4 && ((struct shmk__hdr *)p)->magic == SHMK__MAGIC)
		CHECK_OK(shmk_unlink(tname("bad")));
	else
		unlink(path);
	free(p);
}

static void bad_magic(struct shmk__hdr *h)
{
	h->magic ^= 1;
}
static void bad_endian(struct shmk__hdr *h)
{
	h->endian = 0x04030201;
}
static void bad_version(struct shmk__hdr *h)
{
	h->version = SHMK__VERSION + 1;
}
static void bad_kind(struct shmk__hdr *h)
{
	h->kind = SHMK_KIND_RING;
}
static void unknown_kind(struct shmk__hdr *h)
{
	h->kind = 999;
}
static void bad_hdr_size(struct shmk__hdr *h)
{
	h->hdr_size = 4096;
}
static void size_too_big(struct shmk__hdr *h)
{
	h->total_size += 4096;
}
static void size_huge(struct shmk__hdr *h)
{
	h->total_size = UINT64_MAX;
}
static void geom_mismatch(struct shmk__hdr *h)
{
	h->geom[0] = 99;
}
static void geom_overflow(struct shmk__hdr *h)
{
	h->geom[0] = UINT64_MAX - 100;
}
static void geom_extra(struct shmk__hdr *h)
{
	h->geom[3] = 1;
}
static void state_init(struct shmk__hdr *h)
{
	h->state = SHMK_STATE_INIT;
}
static void state_bad(struct shmk__hdr *h)
{
	h->state = 7;
}

static void test_corrupt_headers(void)
{
	size_t len;
	unsigned char *img = image(&len);

	corrupt(img, len, len, NULL, 0); /* the image itself is fine */
	corrupt(img, len, len, bad_magic, -EPROTO);
	corrupt(img, len, len, bad_endian, -EPROTO);
	corrupt(img, len, len, bad_version, -EPROTO);
	corrupt(img, len, len, bad_kind, -EPROTO);
	corrupt(img, len, len, unknown_kind, -EPROTO);
	corrupt(img, len, len, bad_hdr_size, -EBADMSG);
	corrupt(img, len, len, size_too_big, -EBADMSG);
	corrupt(img, len, len, size_huge, -EBADMSG);
	corrupt(img, len, len, geom_mismatch, -EBADMSG);
	corrupt(img, len, len, geom_overflow, -EBADMSG);
	corrupt(img, len, len, geom_extra, -EBADMSG);
	corrupt(img, len, len, state_bad, -EBADMSG);
	corrupt(img, len, len, state_init, -ETIMEDOUT); /* never ready */
	corrupt(img, len, len - 1, NULL, -EBADMSG);	/* file shorter */
	corrupt(img, len, 100, NULL, -EBADMSG);		/* truncated header */
	corrupt(img, len, 3, NULL, -EPROTO); /* no room for a magic */
	corrupt(img, len, 0, NULL, -EPROTO); /* empty file */
	free(img);
}

static mode_t mode_of(const char *name)
{
	char path[256];
	struct stat st;

	shm_path(path, sizeof(path), name);
	CHECK_OK(stat(path, &st));
	return st.st_mode & 07777;
}

static void test_modes(void)
{
	static const mode_t masks[] = {077, 0, 022};
	struct shmk_opts o = {0};
	struct shmk_buffer *b, *c;
	size_t i;
	mode_t old;

	for (i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		old = umask(masks[i]);
		o.mode = 0660;
		CHECK_OK(shmk_buffer_create(tname("m660"), 8, &o, &b));
		CHECK_EQ(mode_of(tname("m660")), 0660);
		CHECK_OK(shmk_buffer_close(b));
		CHECK_OK(shmk_unlink(tname("m660")));
		CHECK_OK(shmk_buffer_create(tname("mdef"), 8, NULL, &b));
		CHECK_EQ(mode_of(tname("mdef")), 0600);
		CHECK_OK(shmk_buffer_close(b));
		CHECK_OK(shmk_unlink(tname("mdef")));
		umask(old);
	}
	/* An object writable by others is not trusted unless asked. */
	o.mode = 0666;
	CHECK_OK(shmk_buffer_create(tname("m666"), 8, &o, &b));
	CHECK_EQ(mode_of(tname("m666")), 0666);
	CHECK_RC(shmk_buffer_open(tname("m666"), NULL, &c), -EACCES);
	o.flags = SHMK_F_ALLOW_SHARED;
	CHECK_OK(shmk_buffer_open(tname("m666"), &o, &c));
	CHECK_OK(shmk_buffer_close(c));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(tname("m666")));
}

/* As another user: plants an object at the name for the parent. */
static int child_other_user(void *arg)
{
	struct shmk_buffer *b;

	(void)arg;
	CHECK_OK(setresgid(65534, 65534, 65534));
	CHECK_OK(setresuid(65534, 65534, 65534));
	CHECK_OK(shmk_buffer_create(tname("other"), 8, NULL, &b));
	/* Leave it behind on purpose: the object outlives us. */
	return 0;
}

static void test_other_owner(void)
{
	struct shmk_opts o = {.flags = SHMK_F_ALLOW_SHARED};
	struct shmk_buffer *b = NULL;
	struct shmk_stat st;

	if (geteuid() != 0) {
		printf("test_other_owner: skipped (needs root)\n");
		return;
	}
	CHECK_EQ(wait_child(spawn(child_other_user, NULL), 10000), 0);
	CHECK_RC(shmk_buffer_open(tname("other"), NULL, &b), -EACCES);
	CHECK(b == NULL);
	CHECK_OK(shmk_stat(tname("other"), &st)); /* describing is safe */
	CHECK_EQ(st.owner, 65534);
	CHECK_EQ(st.creator_uid, 65534);
	CHECK_EQ(st.creator_alive, 0);
	CHECK_OK(shmk_buffer_open(tname("other"), &o, &b));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(tname("other")));
}

int main(void)
{
	check_init();
	snprintf(g_dir, sizeof(g_dir), "/tmp/shmk-test-XXXXXX");
	CHECK(mkdtemp(g_dir) != NULL);
	test_hostile_names();
	test_corrupt_headers();
	test_modes();
	test_other_owner();
	CHECK_OK(rmdir(g_dir));
	printf("test_region: ok\n");
	return 0;
}
