/* SPDX-License-Identifier: MIT */
/*
 * region/create.c - building a new region: sized, reserved, its header
 * and control words written, the creator attached, then published (an
 * anonymous one sealed, a named one linked to its name, a file path's
 * made durable), and open-or-create.
 *
 * Layer: the top of region, with unlink.c.  Calls open.c (open-or-create
 * opens), region.c, registry.c, check.c and names.c.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "region.h"

/* ---------------------------------------------------------------------
 * Create
 * --------------------------------------------------------------------- */

/*
 * Sizes and reserves the fresh backing r->fd, writes the header, lets the
 * kind initialise its control words, claims a participant slot for the
 * creator (slot 0, the file being new) and sets the state ready.  Nothing
 * of it is visible to others yet.
 */
static int region_build(struct shmk__region *r, const struct shmk__kind *k,
			const uint64_t geom[SHMK__GEOM_N], uint64_t total,
			mode_t mode, int guard,
			void (*init)(struct shmk__region *r))
{
	struct shmk__hdr *h;
	int rc;

	/* fchmod, not the open mode: the umask must not change it. */
	if (fchmod(r->fd, mode) < 0)
		return -errno;
	if (ftruncate(r->fd, (off_t)total) < 0)
		return errno == EFBIG ? -ENOSPC : -errno;
	/* Reserve every page now: a full tmpfs or disk fails here with
	 * ENOSPC instead of raising SIGBUS at a later store. */
	do
		rc = posix_fallocate(r->fd, 0, (off_t)total);
	while (rc == EINTR);
	if (rc)
		return -rc;
	SHMK__CRASH("region_sized"); /* sized and reserved, no header */
	rc = shmk__map_region(r, total, guard);
	if (rc < 0)
		return rc;
	h = r->hdr;
	r->creator = 1;
	memcpy(r->geom, geom, sizeof(r->geom));

	h->magic = SHMK__MAGIC;
	h->endian = SHMK__ENDIAN;
	h->version = SHMK__VERSION;
	h->kind = k->kind;
	h->hdr_size = SHMK__HDR_SIZE;
	h->total_size = total;
	memcpy(h->geom, geom, sizeof(h->geom));
	h->creator_uid = (uint32_t)geteuid();
	h->creator_pid = (uint32_t)getpid();
	h->created_ns = shmk__real_ns();
	h->nonce = shmk__random64();
	h->flags = r->hflags;
	if (init)
		init(r);
	rc = shmk__attach(r, k, SHMK__PART_CREATOR);
	if (rc < 0)
		return rc;
	/* Release: pairs with the acquire load of state in open_mapped();
	 * everything above is seen by whoever sees READY. */
	atomic_store_explicit(&h->state, SHMK_STATE_READY,
			      memory_order_release);
	return 0;
}

static int create_anon(struct shmk__region *r, const struct shmk__kind *k,
		       const uint64_t geom[SHMK__GEOM_N], uint64_t total,
		       mode_t mode, void (*init)(struct shmk__region *r))
{
	char label[32];
	int fd, rc;

	snprintf(label, sizeof(label), "shmk.%s", k->name);
	shmk__reg_enter();
	fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd >= 0)
		shmk__reg_insert(r, fd);
	shmk__reg_leave();
	if (fd < 0)
		return -errno;
	/* Unguarded: sealed below, before anyone else has the memfd. */
	rc = region_build(r, k, geom, total, mode, 0, init);
	/* Sealed: no process holding the descriptor can shrink the memory
	 * under a reader (which would raise SIGBUS), nor undo the seals. */
	if (!rc && fcntl(fd, F_ADD_SEALS,
			 F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		rc = -errno;
	if (rc < 0)
		shmk__region_discard(r);
	return rc;
}

/* Splits path into its directory (written to dir) and checks the fit. */
static int path_dir(const char *path, char *dir, size_t cap)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!slash)
		return -EINVAL;
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= cap)
		return -ENAMETOOLONG;
	memcpy(dir, path, n);
	dir[n] = 0;
	return 0;
}

/* Gives the unnamed file behind fd the name path, failing if it exists. */
static int link_tmpfile(int fd, const char *path)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0)
		return -errno;
	return 0;
}

/* Makes the persisted kind's new object and its name durable. */
static int sync_file(int fd, const char *dir)
{
	int dfd, rc = 0;

	if (fsync(fd) < 0)
		return -errno;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (fsync(dfd) < 0)
		rc = -errno;
	close(dfd);
	return rc;
}

/*
 * Makes a named object atomically: it is built in an unnamed file
 * (O_TMPFILE) in the target directory and linked to its name only when
 * complete; link() fails if the name exists, which makes creation
 * exclusive without ever opening what sits at the name.  Where the file
 * system lacks O_TMPFILE a uniquely named hidden file is used instead and
 * linked the same way.
 */
static int create_named(struct shmk__region *r, const char *path, int isfile,
			const struct shmk__kind *k,
			const uint64_t geom[SHMK__GEOM_N], uint64_t total,
			mode_t mode, void (*init)(struct shmk__region *r))
{
	char dir[SHMK__PATH_MAX], tmp[SHMK__PATH_MAX + 64];
	struct stat st;
	int fd, rc, tries;

	tmp[0] = 0;
	rc = path_dir(path, dir, sizeof(dir));
	if (rc < 0)
		return rc;
	/* A cheap early answer; the link below is the authority. */
	if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	shmk__reg_enter();
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	for (tries = 0; fd < 0 && tries < 8 &&
			(errno == EOPNOTSUPP || errno == EISDIR ||
			 (tmp[0] && errno == EEXIST));
	     tries++) {
		snprintf(tmp, sizeof(tmp), "%s/.shmk-tmp.%016llx", dir,
			 (unsigned long long)shmk__random64());
		fd = open(tmp,
			  O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			  0600);
	}
	if (fd >= 0)
		shmk__reg_insert(r, fd);
	shmk__reg_leave();
	if (fd < 0)
		return -errno;
	SHMK__CRASH("region_opened"); /* an empty unnamed file */
	rc = region_build(r, k, geom, total, mode, 1, init);
	SHMK__CRASH("region_built"); /* complete, not yet named */
	if (!rc && tmp[0])
		rc = link(tmp, path) < 0 ? -errno : 0;
	else if (!rc)
		rc = link_tmpfile(fd, path);
	if (tmp[0])
		unlink(tmp);
	SHMK__CRASH("region_linked"); /* named, create has not returned */
	/* The persisted kind: the new object and its name are durable
	 * before the caller is told it exists. */
	if (!rc && isfile && (rc = sync_file(fd, dir)) < 0)
		unlink(path);
	if (rc < 0)
		shmk__region_discard(r);
	return rc;
}

static int region_create(struct shmk__region *r, const char *name,
			 const struct shmk__kind *k,
			 const uint64_t geom[SHMK__GEOM_N],
			 const struct shmk_opts *o,
			 void (*init)(struct shmk__region *r))
{
	char path[SHMK__PATH_MAX];
	struct shmk_opts oo = {0};
	mode_t mode = 0600;
	uint64_t total;
	int rc, isfile, tries;

	shmk__region_reset(r);
	rc = shmk__opts_check(o, 1);
	if (rc < 0)
		return rc;
	if (o && o->mode)
		mode = (mode_t)o->mode;
	if (!k->creator_only && shmk__mode_readonly(mode))
		return -EINVAL;
	rc = k->layout(geom, &total);
	if (rc < 0)
		return rc;
	if (o && (o->flags & SHMK_F_KEEP))
		r->hflags = SHMK__HF_KEEP;
	/* No name leads to an anonymous object: its descriptor is the
	 * capability, and a receiver of another user must be able to
	 * reopen it through /proc/self/fd.  0666 unless asked otherwise. */
	if (!name)
		return create_anon(r, k, geom, total,
				   o && o->mode ? mode : 0666, init);
	isfile = shmk__name_path(name, path, sizeof(path));
	if (isfile < 0)
		return isfile;
	for (tries = 0;; tries++) {
		rc = create_named(r, path, isfile, k, geom, total, mode, init);
		if (rc != -EEXIST || !(o && (o->flags & SHMK_F_OPEN_OR_CREATE)))
			return rc;
		oo.flags = o->flags & ~(unsigned)SHMK_F_OPEN_OR_CREATE;
		rc = shmk__region_open(r, name, k, &oo);
		/* Removed between our create and our open: go again. */
		if (rc == -ENOENT && tries < 100)
			continue;
		if (rc < 0)
			return rc;
		if (memcmp(r->geom, geom, sizeof(r->geom)) != 0) {
			shmk__region_close(r);
			return -EPROTO;
		}
		return 0;
	}
}

/* The entry points. */
int shmk__region_create(struct shmk__region *r, const char *name,
			const struct shmk__kind *k,
			const uint64_t geom[SHMK__GEOM_N],
			const struct shmk_opts *o,
			void (*init)(struct shmk__region *r))
{
	int rc = region_create(r, name, k, geom, o, init);

	if (!rc)
		shmk__region_ready(r, k, o);
	return rc;
}
