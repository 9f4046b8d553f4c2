/* SPDX-License-Identifier: MIT */
/*
 * test_enospc - space is reserved at creation: on a full tmpfs (mounted
 * in a private mount namespace, over /dev/shm and over a directory)
 * creating a large object fails with -ENOSPC, raises no signal and leaves
 * nothing behind; an object that fits can be written to its last byte.
 * Skipped (77) where no mount namespace can be made.
 */
#include <sched.h>
#include <sys/mount.h>

#include "check.h"

static int make_small_tmpfs(const char *dir)
{
	return mount("tmpfs", dir, "tmpfs", 0, "size=64k");
}

static void fill(struct shmk_buffer *b)
{
	memset(shmk_buffer_data(b), 0xee, shmk_buffer_size(b));
}

/* In a mount namespace of its own, so its mounts end with it.  dir is
 * the parent's (which removes it): the child's mount over it is never
 * seen outside. */
static int child(void *arg)
{
	const char *dir = arg;
	char path[128], shm[4096], entry[256];
	struct shmk_buffer *b = NULL;

	/* Where plain names live: the whole directory is counted, so that
	 * nothing at all (a temporary file included) may be left there. */
	CHECK_OK(check_shm_entry("x", shm, sizeof(shm), entry, sizeof(entry)));
	if (unshare(CLONE_NEWNS) < 0)
		return 77;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 77;
	if (make_small_tmpfs(dir) < 0)
		return 77;
	if (make_small_tmpfs(shm) < 0)
		return 77;

	/* The persisted kind, on a small file system. */
	snprintf(path, sizeof(path), "%s/big", dir);
	CHECK_RC(shmk_buffer_create(path, 1 << 20, NULL, &b), -ENOSPC);
	CHECK(b == NULL);
	CHECK_EQ(count_dir(dir), 0);
	snprintf(path, sizeof(path), "%s/fits", dir);
	CHECK_OK(shmk_buffer_create(path, 40000, NULL, &b));
	fill(b);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_RC(shmk_buffer_create(path, 40000, NULL, &b), -EEXIST);
	snprintf(path, sizeof(path), "%s/more", dir);
	CHECK_RC(shmk_buffer_create(path, 40000, NULL, &b), -ENOSPC);
	CHECK_EQ(count_dir(dir), 1);

	/* The non-persisted kind, on a full /dev/shm. */
	CHECK_RC(shmk_buffer_create("big", 1 << 20, NULL, &b), -ENOSPC);
	CHECK_EQ(count_dir(shm), 0);
	CHECK_OK(shmk_buffer_create("fits", 40000, NULL, &b));
	fill(b);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_RC(shmk_buffer_create("more", 40000, NULL, &b), -ENOSPC);
	CHECK_EQ(count_dir(shm), 1);

	/* The anonymous kind lives on the kernel's internal tmpfs, not in
	 * /dev/shm, so a full /dev/shm does not stop it. */
	CHECK_OK(shmk_buffer_create(NULL, 1 << 20, NULL, &b));
	fill(b);
	CHECK_OK(shmk_buffer_close(b));
	return 0;
}

int main(void)
{
	char dir[64] = "/tmp/shmk-enospc-XXXXXX";
	int rc;

	check_init();
	CHECK(mkdtemp(dir) != NULL);
	rc = wait_child(spawn(child, dir), 30000);
	CHECK_OK(rmdir(dir));
	if (rc == 77)
		SKIP("no private mount namespace here");
	CHECK_EQ(rc, 0);
	printf("test_enospc: ok\n");
	return 0;
}
