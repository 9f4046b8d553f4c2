/* SPDX-License-Identifier: MIT */
/*
 * region/open.c - reading an existing object's header without mapping it
 * (shmk__region_peek, shmk__region_peek_fd), and opening an object by
 * name, waiting for it if asked, or from a descriptor: validate, map,
 * attach.
 *
 * Layer: above region.c.  Calls region.c, registry.c, check.c and
 * names.c; nothing of create.c or unlink.c.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "region.h"

/* ---------------------------------------------------------------------
 * Reading a header
 * --------------------------------------------------------------------- */

/*
 * Checks the backing fd and reads its header into the private copy h:
 * a regular file; trusted (sealed against shrinking, or owned by us and not
 * writable by others, or the caller said trust_any); starting with the
 * magic; at least a header long.  The header is read with pread, so no
 * other process can change the copy.  The caller validates its fields.
 * *sealed says whether the file is sealed against shrinking.
 */
static int load_hdr(int fd, int trust_any, struct stat *st, struct shmk__hdr *h,
		    int *sealed)
{
	size_t want, got;
	ssize_t n;
	int seals;

	if (fstat(fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode))
		return -EPROTO;
	seals = fcntl(fd, F_GET_SEALS);
	*sealed = seals >= 0 && (seals & F_SEAL_SHRINK);
	if (!trust_any && !*sealed &&
	    (st->st_uid != geteuid() || (st->st_mode & (S_IWGRP | S_IWOTH))))
		return -EACCES;
	want = (uint64_t)st->st_size < sizeof(*h) ? (size_t)st->st_size
						  : sizeof(*h);
	/* Fewer bytes than fstat said: shrunk under us. */
	n = shmk__pread(fd, h, want, 0);
	if (n < 0)
		return (int)n;
	got = (size_t)n;
	if (got < sizeof(h->magic) || h->magic != SHMK__MAGIC)
		return -EPROTO;
	if (got < sizeof(*h))
		return -EBADMSG; /* a truncated header */
	return 0;
}

int shmk__open_errno(int e)
{
	switch (e) {
	case ELOOP:
		return -EACCES; /* a symlink at an object's name: not trusted */
	case EISDIR:
	case ENXIO:
		return -EPROTO; /* a directory or a socket: not an object */
	default:
		return -e;
	}
}

int shmk__region_peek(const char *name, int *fdp, struct stat *st,
		      struct shmk__hdr *h)
{
	char path[SHMK__PATH_MAX];
	int fd, rc, sealed;

	rc = shmk__name_path(name, path, sizeof(path));
	if (rc < 0)
		return rc;
	fd = open(path, O_RDONLY | OPEN_EXISTING);
	if (fd < 0)
		return shmk__open_errno(errno);
	/* Nothing is mapped: describing another user's object is safe. */
	rc = load_hdr(fd, 1, st, h, &sealed);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	*fdp = fd;
	return 0;
}

int shmk__region_peek_fd(int fd, struct stat *st, struct shmk__hdr *h)
{
	int sealed;

	return load_hdr(fd, 1, st, h, &sealed);
}

/* ---------------------------------------------------------------------
 * Open
 * --------------------------------------------------------------------- */

/* Validates the backing r->fd, maps it and attaches to it. */
static int open_mapped(struct shmk__region *r, const struct shmk__kind *k,
		       int trust_any)
{
	struct shmk__hdr *h;
	struct stat st;
	uint64_t total;
	uint32_t state;
	int rc, sealed = 0;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	rc = load_hdr(r->fd, trust_any, &st, h, &sealed);
	/* Attaching to an object others may read but not write would let
	 * any of them keep us, or the next process, from a slot. */
	if (!rc && shmk__mode_readonly((unsigned)st.st_mode))
		rc = -EACCES;
	if (!rc)
		rc = shmk__hdr_check(h, (uint64_t)st.st_size, k);
	if (!rc) {
		/* From here on geometry comes only from the validated copy. */
		total = h->total_size;
		memcpy(r->geom, h->geom, sizeof(r->geom));
	}
	free(h);
	/* A memfd sealed against shrinking needs no guard; anything else
	 * (a named object, a file passed by descriptor) may shrink. */
	if (!rc)
		rc = shmk__map_region(r, total, !sealed);
	if (rc < 0)
		return rc;
	/* Acquire: pairs with the release store of READY by the creator. */
	state = atomic_load_explicit(&r->hdr->state, memory_order_acquire);
	if (state == SHMK_STATE_INIT)
		return -EAGAIN;
	if (state != SHMK_STATE_READY && state != SHMK_STATE_SHUTDOWN)
		return -EBADMSG;
	return shmk__attach(r, k, 0);
}

static int open_once(struct shmk__region *r, const char *path,
		     const struct shmk__kind *k, int trust_any)
{
	int fd, rc;

	shmk__reg_enter();
	fd = open(path, O_RDWR | OPEN_EXISTING);
	if (fd >= 0)
		shmk__reg_insert(r, fd);
	shmk__reg_leave();
	if (fd < 0)
		return shmk__open_errno(errno);
	rc = open_mapped(r, k, trust_any);
	if (rc < 0)
		shmk__region_discard(r);
	return rc;
}

static int region_open(struct shmk__region *r, const char *name,
		       const struct shmk__kind *k, const struct shmk_opts *o)
{
	char path[SHMK__PATH_MAX];
	uint64_t deadline, nap = 1000000; /* 1 ms, doubling, at most 10 ms */
	int rc, trust_any;

	shmk__region_reset(r);
	rc = shmk__opts_check(o, 0);
	if (rc < 0)
		return rc;
	rc = shmk__name_path(name, path, sizeof(path));
	if (rc < 0)
		return rc;
	trust_any = o && (o->flags & SHMK_F_ALLOW_SHARED);
	deadline = shmk__deadline(o ? o->wait_ms : 0);
	for (;;) {
		rc = open_once(r, path, k, trust_any);
		/* Not there yet: a consumer started before its producer
		 * waits for it (names appear only when ready). */
		if (rc != -ENOENT && rc != -EAGAIN)
			return rc;
		if (deadline == 0)
			return rc;
		if (shmk__mono_ns() >= deadline)
			return rc == -EAGAIN ? -ETIMEDOUT : rc;
		shmk__nap(nap, deadline);
		nap = nap * 2 > 10000000 ? 10000000 : nap * 2;
	}
}

static int region_open_fd(struct shmk__region *r, int fd,
			  const struct shmk__kind *k, const struct shmk_opts *o)
{
	struct stat st;
	int own, rc;

	shmk__region_reset(r);
	rc = shmk__opts_check(o, 0);
	if (rc < 0)
		return rc;
	if (fd < 0)
		return -EBADF;
	if (fstat(fd, &st) < 0)
		return -errno; /* EBADF for a bad descriptor */
	/* Never open anything but a regular file: reopening a device a
	 * hostile sender passed could have side effects. */
	if (!S_ISREG(st.st_mode))
		return -EPROTO;
	/*
	 * A new open file description of the same file, never a dup: the
	 * handle's liveness token must belong to this handle alone, not to
	 * a description the sender (or the caller's fd) also holds.
	 */
	shmk__reg_enter();
	own = shmk__reopen(fd);
	if (own >= 0)
		shmk__reg_insert(r, own);
	shmk__reg_leave();
	if (own < 0)
		return own;
	rc = open_mapped(r, k, o && (o->flags & SHMK_F_ALLOW_SHARED));
	if (rc < 0)
		shmk__region_discard(r);
	return rc;
}

/* The entry points. */
int shmk__region_open(struct shmk__region *r, const char *name,
		      const struct shmk__kind *k, const struct shmk_opts *o)
{
	int rc = region_open(r, name, k, o);

	if (!rc)
		shmk__region_ready(r, k, o);
	return rc;
}

int shmk__region_open_fd(struct shmk__region *r, int fd,
			 const struct shmk__kind *k, const struct shmk_opts *o)
{
	int rc = region_open_fd(r, fd, k, o);

	if (!rc)
		shmk__region_ready(r, k, o);
	return rc;
}
