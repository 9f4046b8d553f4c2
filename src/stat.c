/* SPDX-License-Identifier: MIT */
/*
 * stat.c - introspection of every kind of object: what `shmk ls` and
 * `shmk info` print.  It sits above the objects, as it knows them all.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kinds.h"
#include "stat.h"

_Static_assert(SHMK_STAT_MAX_PARTS == SHMK__MAX_PARTS, "stat parts");
_Static_assert(SHMK_STAT_MAX_COUNTERS == SHMK__NCOUNTERS, "stat counters");
_Static_assert(SHMK_STAT_MAX_GEOM == SHMK__GEOM_N, "stat geometry");

static const struct shmk__kind *const kinds[] = {
	&shmk__buffer_kind, &shmk__array_kind, &shmk__event_kind,
	&shmk__ring_kind,   &shmk__rpc_kind,   &shmk__topic_kind,
};

static const struct shmk__kind *kind_of(int kind)
{
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i]->kind == kind)
			return kinds[i];
	return NULL;
}

SHMK__EXPORT const char *shmk_kind_name(int kind)
{
	const struct shmk__kind *k = kind_of(kind);

	return k ? k->name : "?";
}

SHMK__EXPORT const char *shmk_state_name(int state)
{
	switch (state) {
	case SHMK_STATE_INIT:
		return "init";
	case SHMK_STATE_READY:
		return "ready";
	case SHMK_STATE_SHUTDOWN:
		return "shutdown";
	default:
		return "?";
	}
}

/* names[i] of a list of at most max names that a NULL ends, or NULL. */
static const char *nth_name(const char *const *names, int max, int i)
{
	int n;

	if (i < 0 || i >= max)
		return NULL;
	for (n = 0; n <= i; n++)
		if (!names[n])
			return NULL;
	return names[i];
}

SHMK__EXPORT const char *shmk_stat_geom_name(int kind, int i)
{
	const struct shmk__kind *k = kind_of(kind);

	return k ? nth_name(k->geom_names, SHMK__GEOM_N, i) : NULL;
}

SHMK__EXPORT const char *shmk_stat_counter_name(int kind, int i)
{
	const struct shmk__kind *k = kind_of(kind);

	return k ? nth_name(k->counter_names, SHMK__NCOUNTERS, i) : NULL;
}

/* The creation flags that are part of the object: a ring's mode and a
 * topic's policy, geom[2] of each (bits as docs/format.md gives them). */
static unsigned mode_flags(const struct shmk__hdr *h)
{
	unsigned f = 0;

	if (h->kind == SHMK_KIND_RING) {
		f |= h->geom[2] & 1 ? SHMK_F_SINGLE_WRITER : 0;
		f |= h->geom[2] & 2 ? SHMK_F_SINGLE_READER : 0;
	} else if (h->kind == SHMK_KIND_TOPIC) {
		f |= h->geom[2] & 1 ? SHMK_F_LOSSY : 0;
	}
	return f;
}

/* Fills st from the private header copy h; liveness asks the kernel. */
static int stat_of_hdr(struct shmk_stat *st, const struct shmk__hdr *h, int fd,
		       const struct stat *fs, const struct shmk__kind *k)
{
	int i, n = 0;

	memset(st, 0, sizeof(*st));
	st->kind = h->kind;
	st->state = (int)atomic_load_explicit(&h->state, memory_order_relaxed);
	st->version = h->version;
	st->mode = (unsigned)(fs->st_mode & 07777);
	st->owner = fs->st_uid;
	st->total_size = h->total_size;
	st->header_size = h->hdr_size;
	for (i = 0; i < SHMK__GEOM_N && k->geom_names[i]; i++)
		st->geom[i] = h->geom[i];
	st->ngeom = i;
	st->creator_uid = h->creator_uid;
	st->creator_pid = (pid_t)h->creator_pid;
	st->created_ns = h->created_ns;
	st->flags = h->flags & SHMK__HF_KEEP ? SHMK_F_KEEP : 0;
	st->flags |= mode_flags(h);
	for (i = 0; i < SHMK__MAX_PARTS; i++) {
		const struct shmk__part *p = &h->part[i];
		struct shmk_stat_part *sp = &st->part[n];
		int alive;

		if (!atomic_load_explicit(&p->gen, memory_order_relaxed))
			continue;
		alive = shmk__ofd_held(fd, SHMK__LOCK_BYTE(i));
		if (alive < 0)
			return alive;
		sp->slot = i;
		sp->alive = alive;
		sp->creator = !!(
			atomic_load_explicit(&p->flags, memory_order_relaxed) &
			SHMK__PART_CREATOR);
		sp->pid = (pid_t)atomic_load_explicit(&p->pid,
						      memory_order_relaxed);
		sp->uid = (uid_t)atomic_load_explicit(&p->uid,
						      memory_order_relaxed);
		sp->attach_ns = atomic_load_explicit(&p->attach_ns,
						     memory_order_relaxed);
		st->nalive += alive;
		if (sp->creator && alive)
			st->creator_alive = 1;
		n++;
	}
	st->nparts = n;
	for (i = 0; i < SHMK__NCOUNTERS && k->counter_names[i]; i++)
		st->counter[i] = atomic_load_explicit(&h->counter[i],
						      memory_order_relaxed);
	st->ncounters = i;
	return k->stat_counters ? k->stat_counters(fd, h, st->counter) : 0;
}

/* Describes the object of fd, whose header h and fstat fs were read. */
static int stat_of(int fd, const struct stat *fs, const struct shmk__hdr *h,
		   struct shmk_stat *st)
{
	const struct shmk__kind *k = kind_of(h->kind);
	int rc = k ? shmk__hdr_check(h, (uint64_t)fs->st_size, k) : -EPROTO;

	if (!rc && atomic_load_explicit(&h->state, memory_order_relaxed) >
			   SHMK_STATE_SHUTDOWN)
		rc = -EBADMSG;
	if (!rc)
		rc = stat_of_hdr(st, h, fd, fs, k);
	return rc;
}

int shmk__stat_fd(int fd, struct shmk_stat *st)
{
	struct shmk__hdr *h = calloc(1, sizeof(*h));
	struct stat fs;
	int rc;

	if (!h)
		return -ENOMEM;
	rc = shmk__region_peek_fd(fd, &fs, h);
	if (!rc)
		rc = stat_of(fd, &fs, h, st);
	free(h);
	return rc;
}

SHMK__EXPORT int shmk_stat(const char *name, struct shmk_stat *st)
{
	struct shmk__hdr *h;
	struct stat fs;
	int fd, rc;

	if (!st)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	rc = shmk__region_peek(name, &fd, &fs, h);
	if (rc < 0) {
		free(h);
		return rc;
	}
	rc = stat_of(fd, &fs, h, st);
	close(fd);
	free(h);
	return rc;
}
