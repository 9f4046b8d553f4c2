/* SPDX-License-Identifier: MIT */
/*
 * region/unlink.c - removing an object's name: a handle its own
 * (shmk__region_unlink), and shmk_unlink() and shmk_unlink_force().
 *
 * Layer: the top of region, with create.c.  Calls open.c
 * (shmk__open_errno) and names.c.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "region.h"

/* ---------------------------------------------------------------------
 * Unlink
 * --------------------------------------------------------------------- */

int shmk__region_unlink(const struct shmk__region *r, const char *name)
{
	char path[SHMK__PATH_MAX];
	struct stat own, now;
	int rc;

	if (r->forked || r->fd < 0)
		return 0; /* a child's copy: the name is not its to remove */
	rc = shmk__name_path(name, path, sizeof(path));
	if (rc < 0)
		return rc;
	if (fstat(r->fd, &own) < 0 ||
	    fstatat(AT_FDCWD, path, &now, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	/* The file is ours whatever its bytes say (a peer may have
	 * scribbled on the magic); a name that now holds another file is
	 * not ours to remove. */
	if (now.st_ino != own.st_ino || now.st_dev != own.st_dev)
		return -ENOENT;
	return unlink(path) < 0 ? -errno : 0;
}

/*
 * Removes name's file: a regular file that starts like a shmk object, or
 * with force any regular file of the caller's (root: of anyone), so that
 * an object whose header was scribbled over can still be cleaned away.
 */
static int unlink_name(const char *name, int force)
{
	char path[SHMK__PATH_MAX];
	struct stat st, now;
	uint32_t magic;
	ssize_t n;
	int fd, rc;

	rc = shmk__name_path(name, path, sizeof(path));
	if (rc < 0)
		return rc;
	fd = open(path, O_RDONLY | OPEN_EXISTING);
	/* A file we may not read can still be ours to remove. */
	if (fd < 0 && errno == EACCES && force &&
	    fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) && st.st_uid == geteuid())
		return unlink(path) < 0 ? -errno : 0;
	if (fd < 0)
		return shmk__open_errno(errno);
	if (fstat(fd, &st) < 0) {
		rc = -errno;
	} else if (!S_ISREG(st.st_mode)) {
		rc = -EPROTO;
	} else if (force) {
		rc = st.st_uid == geteuid() || geteuid() == 0 ? 0 : -EPERM;
	} else {
		n = shmk__pread(fd, &magic, sizeof(magic), 0);
		rc = n == (ssize_t)sizeof(magic) && magic == SHMK__MAGIC
			     ? 0
			     : -EPROTO;
	}
	close(fd);
	/* Narrows, but cannot close, the window in which someone who may
	 * write the directory swaps the name for another file. */
	if (!rc && fstatat(AT_FDCWD, path, &now, AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	if (!rc && (now.st_ino != st.st_ino || now.st_dev != st.st_dev))
		rc = -EAGAIN;
	if (!rc && unlink(path) < 0)
		rc = -errno;
	return rc;
}

SHMK__EXPORT int shmk_unlink(const char *name)
{
	return unlink_name(name, 0);
}

SHMK__EXPORT int shmk_unlink_force(const char *name)
{
	return unlink_name(name, 1);
}
