/* SPDX-License-Identifier: MIT */
/*
 * names.c - the names of objects: what a name may be and the path of the
 * file behind it (shmk__name_path(), with which every create, open, stat
 * and unlink resolves a name), and the public calls on names: the path of
 * a name, and the names present in SHMK__SHM_DIR.  Those two rest on
 * shmk__name_path() too, so that what is listed and what it resolves to
 * are exactly what a create or an open would use.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "region.h"

/* ---------------------------------------------------------------------
 * Names
 * --------------------------------------------------------------------- */

static int name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int shmk__name_path(const char *name, char *path, size_t cap)
{
	const char *base;
	size_t n, i;
	int len;

	if (!name)
		return -EINVAL;
	n = strnlen(name, SHMK__PATH_MAX);
	if (n == 0)
		return -EINVAL;
	if (memchr(name, '/', n)) {
		if (n >= SHMK__PATH_MAX || n >= cap)
			return -ENAMETOOLONG;
		base = strrchr(name, '/') + 1;
		if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
			return -EINVAL;
		memcpy(path, name, n + 1);
		return 1;
	}
	if (n > SHMK__NAME_MAX)
		return -ENAMETOOLONG;
	for (i = 0; i < n; i++)
		if (!name_char_ok(name[i]))
			return -EINVAL;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	len = snprintf(path, cap, "%s/%s%s", SHMK__SHM_DIR, SHMK__SHM_PREFIX,
		       name);
	if (len < 0 || (size_t)len >= cap)
		return -ENAMETOOLONG;
	return 0;
}

SHMK__EXPORT int shmk_path(const char *name, char *buf, size_t cap)
{
	char path[SHMK__PATH_MAX];
	size_t n;
	int rc;

	if (!buf && cap)
		return -EINVAL;
	/* Resolved into a buffer that always fits, so that a too-long name
	 * (-ENAMETOOLONG) and a too-small buf (-ERANGE) stay apart. */
	rc = shmk__name_path(name, path, sizeof(path));
	if (rc < 0)
		goto fail;
	n = strlen(path);
	if (n >= cap) {
		rc = -ERANGE;
		goto fail;
	}
	memcpy(buf, path, n + 1);
	return 0;
fail:
	if (cap)
		buf[0] = '\0';
	return rc;
}

/* Is the entry e of d a regular file (not following a symlink)?  1 yes,
 * 0 no (or gone since it was read). */
static int is_regular(DIR *d, const struct dirent *e)
{
	struct stat st;

	if (e->d_type != DT_UNKNOWN)
		return e->d_type == DT_REG;
	/* Some file systems leave the type to a stat. */
	if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return S_ISREG(st.st_mode);
}

/* The object name an entry of SHMK__SHM_DIR stands for, or NULL if it
 * stands for none: not "shmk.<name>" with a name create would accept. */
static const char *object_name(const char *entry)
{
	const size_t np = sizeof(SHMK__SHM_PREFIX) - 1;
	char path[SHMK__PATH_MAX];

	if (strncmp(entry, SHMK__SHM_PREFIX, np) != 0)
		return NULL;
	/* 0 means a plain name: no '/', valid characters, not too long. */
	if (shmk__name_path(entry + np, path, sizeof(path)) != 0)
		return NULL;
	return entry + np;
}

SHMK__EXPORT int shmk_list(int (*fn)(const char *name, void *arg), void *arg)
{
	struct dirent *e;
	const char *name;
	int rc = 0;
	DIR *d;

	if (!fn)
		return -EINVAL;
	d = opendir(SHMK__SHM_DIR);
	if (!d)
		return -errno;
	for (;;) {
		errno = 0;
		e = readdir(d);
		if (!e) {
			rc = errno ? -errno : 0;
			break;
		}
		name = object_name(e->d_name);
		if (!name || !is_regular(d, e))
			continue;
		rc = fn(name, arg);
		if (rc)
			break;
	}
	closedir(d);
	return rc;
}
