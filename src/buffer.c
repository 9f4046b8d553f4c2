/* SPDX-License-Identifier: MIT */
/*
 * buffer.c - shmk_buffer: raw bytes at offsets, shared between processes,
 * behind the robust read/write lock, with a version that every write bumps.
 * Geometry: geom[0] = usable size in bytes; the data follows the header.
 * The locked copy here is the array's too (buffer.h).
 */
#include <stdlib.h>
#include <string.h>

#include "buffer.h"
#include "kinds.h"
#include "sync.h"

struct shmk_buffer {
	struct shmk__region r;
	char *data;  /* first usable byte, in the mapping */
	size_t size; /* usable bytes, from the validated private header */
	struct shmk__buffer_ctl *ctl;
};

static int buffer_layout(const uint64_t geom[SHMK__GEOM_N], uint64_t *total)
{
	if (shmk__geom_unused(geom, 1) < 0 || geom[0] == 0 ||
	    shmk__add(SHMK__HDR_SIZE, geom[0], total) < 0 ||
	    *total > SHMK__MAX_TOTAL)
		return -EINVAL;
	return 0;
}

const struct shmk__kind shmk__buffer_kind = {
	.kind = SHMK_KIND_BUFFER,
	.name = "buffer",
	.layout = buffer_layout,
	.reclaim = shmk__rw_reclaim,
	.shutdown = shmk__notify_all,
	.ec_off = {offsetof(struct shmk__buffer_ctl, lock.ec),
		   offsetof(struct shmk__buffer_ctl, changed)},
	.n_ec = 2,
	.geom_names = {"size", NULL},
	.counter_names = {"writes", "owner_dead", "readers_reclaimed", NULL},
};

/* Finishes a create or open that returned rc. */
static int buffer_attached(struct shmk_buffer *b, struct shmk_buffer **out,
			   int rc)
{
	if (rc < 0) {
		free(b);
		return rc;
	}
	b->data = shmk__region_data(&b->r);
	b->size = (size_t)b->r.geom[0];
	b->ctl = shmk__region_ctl(&b->r);
	*out = b;
	return 0;
}

SHMK__EXPORT int shmk_buffer_create(const char *name, size_t size,
				    const struct shmk_opts *o,
				    struct shmk_buffer **out)
{
	uint64_t geom[SHMK__GEOM_N] = {size};
	struct shmk_buffer *b;
	int rc = SHMK__HANDLE_NEW(out, &b);

	if (rc < 0)
		return rc;
	if (size == 0) {
		free(b);
		return -EINVAL;
	}
	rc = shmk__region_create(&b->r, name, &shmk__buffer_kind, geom, o,
				 NULL);
	return buffer_attached(b, out, rc);
}

/* shmk_buffer_open (fd NULL) and shmk_buffer_open_fd (name unused). */
static int buffer_open(const char *name, const int *fd,
		       const struct shmk_opts *o, struct shmk_buffer **out)
{
	struct shmk_buffer *b;
	int rc = SHMK__HANDLE_NEW(out, &b);

	if (rc < 0)
		return rc;
	if (fd)
		rc = shmk__region_open_fd(&b->r, *fd, &shmk__buffer_kind, o);
	else
		rc = shmk__region_open(&b->r, name, &shmk__buffer_kind, o);
	return buffer_attached(b, out, rc);
}

SHMK__EXPORT int shmk_buffer_open(const char *name, const struct shmk_opts *o,
				  struct shmk_buffer **out)
{
	return buffer_open(name, NULL, o, out);
}

SHMK__EXPORT int shmk_buffer_open_fd(int fd, const struct shmk_opts *o,
				     struct shmk_buffer **out)
{
	return buffer_open(NULL, &fd, o, out);
}

SHMK__EXPORT int shmk_buffer_fd(struct shmk_buffer *b)
{
	if (!b)
		return -EINVAL;
	return shmk__region_share_fd(&b->r);
}

SHMK__EXPORT int shmk_buffer_close(struct shmk_buffer *b)
{
	if (!b)
		return 0;
	shmk__buffer_drop(&b->r, b->ctl);
	shmk__region_close(&b->r);
	free(b);
	return 0;
}

SHMK__EXPORT size_t shmk_buffer_size(const struct shmk_buffer *b)
{
	return b ? b->size : 0;
}

SHMK__EXPORT void *shmk_buffer_data(struct shmk_buffer *b)
{
	if (!b || shmk__region_check(&b->r) < 0)
		return NULL;
	return b->data;
}

/* The checks shared by read and write: 0, or the error to return. */
static int buffer_range(const struct shmk_buffer *b, size_t off, const void *p,
			size_t len)
{
	if (!b || (len && !p))
		return -EINVAL;
	/* Written so that no sum can overflow: off + len <= size. */
	if (off > b->size || len > b->size - off)
		return -ERANGE;
	return 0;
}

/* ---------------------------------------------------------------------
 * The locked copy, the buffer's and the array's
 * --------------------------------------------------------------------- */

void shmk__buffer_changed(struct shmk__region *r, struct shmk__buffer_ctl *c)
{
	/* seq_cst: the publication shmk__ec_notify() needs; pairs with the
	 * acquire loads in changed_cond() and shmk_buffer_version().  The
	 * writes it announces come before it, and the unlock (a seq_cst
	 * store, or the holder's later one) after it, so whoever sees the
	 * new version and then takes the lock sees the data it counts. */
	atomic_fetch_add_explicit(&r->hdr->counter[SHMK__CTR_WRITES], 1,
				  memory_order_seq_cst);
	shmk__ec_notify(r, &c->changed);
}

int shmk__buffer_copy(struct shmk__region *r, struct shmk__buffer_ctl *c,
		      char *data, void *p, size_t len, int how, int timeout_ms,
		      const char *crash)
{
	int taken, locked;

	(void)crash; /* a crash point only in the test library */
	locked = shmk__lock_enter(r, &c->lock, how, timeout_ms, &taken);
	if (locked < 0 && locked != -EOWNERDEAD)
		return locked;
	if (len && how == SHMK_LOCK_WRITE) {
#ifdef SHMK_CRASH_POINTS
		/* Half written when the writer dies: the data is torn. */
		memcpy(data, p, len / 2);
		SHMK__CRASH(crash);
#endif
		memcpy(data, p, len);
		/* After the copy, before the unlock. */
		shmk__buffer_changed(r, c);
	} else if (len) {
		memcpy(p, data, len);
	}
	if (taken)
		shmk__rw_unlock(r, &c->lock, how, SHMK__RW_KEEP);
	/* The file shrank during the copy: it met private zeros. */
	if (shmk__region_poisoned(r))
		return -EBADMSG;
	return locked;
}

int shmk__buffer_unlock(struct shmk__region *r, struct shmk__buffer_ctl *c)
{
	int how, rc = shmk__unlock(r, &c->lock, &how);

	/* The holder may have written through the data pointer. */
	if (!rc && how == SHMK_LOCK_WRITE)
		shmk__buffer_changed(r, c);
	return rc;
}

void shmk__buffer_drop(struct shmk__region *r, struct shmk__buffer_ctl *c)
{
	/* Writes made under a write lock still held are announced. */
	if (shmk__lock_drop(r, &c->lock) == SHMK_LOCK_WRITE)
		shmk__buffer_changed(r, c);
}

SHMK__EXPORT int shmk_buffer_write(struct shmk_buffer *b, size_t off,
				   const void *src, size_t len, int timeout_ms)
{
	int rc = buffer_range(b, off, src, len);

	if (rc < 0)
		return rc;
	return shmk__buffer_copy(&b->r, b->ctl, b->data + off, (void *)src, len,
				 SHMK_LOCK_WRITE, timeout_ms,
				 "buffer_mid_write");
}

SHMK__EXPORT int shmk_buffer_read(struct shmk_buffer *b, size_t off, void *dst,
				  size_t len, int timeout_ms)
{
	int rc = buffer_range(b, off, dst, len);

	if (rc < 0)
		return rc;
	return shmk__buffer_copy(&b->r, b->ctl, b->data + off, dst, len,
				 SHMK_LOCK_READ, timeout_ms, NULL);
}

SHMK__EXPORT int shmk_buffer_lock(struct shmk_buffer *b, int how,
				  int timeout_ms)
{
	if (!b)
		return -EINVAL;
	return shmk__lock(&b->r, &b->ctl->lock, how, timeout_ms);
}

SHMK__EXPORT int shmk_buffer_unlock(struct shmk_buffer *b)
{
	return b ? shmk__buffer_unlock(&b->r, b->ctl) : -EINVAL;
}

uint64_t shmk__buffer_version(const struct shmk__region *r)
{
	if (r->forked)
		return 0;
	return atomic_load_explicit(&r->hdr->counter[SHMK__CTR_WRITES],
				    memory_order_acquire);
}

SHMK__EXPORT uint64_t shmk_buffer_version(const struct shmk_buffer *b)
{
	return b ? shmk__buffer_version(&b->r) : 0;
}

struct changed_wait {
	struct shmk__region *r;
	uint64_t seen;
};

static int changed_cond(void *arg, int slow)
{
	struct changed_wait *a = arg;
	uint64_t v;
	int rc = shmk__region_check(a->r);

	(void)slow;
	if (rc < 0)
		return rc; /* the file was shrunk under us */
	/* Acquire: pairs with shmk__buffer_changed()'s increment. */
	v = atomic_load_explicit(&a->r->hdr->counter[SHMK__CTR_WRITES],
				 memory_order_acquire);
	if (v != a->seen) {
		a->seen = v;
		return 1;
	}
	if (atomic_load_explicit(&a->r->hdr->state, memory_order_acquire) ==
	    SHMK_STATE_SHUTDOWN)
		return -EPIPE;
	return 0;
}

int shmk__buffer_wait(struct shmk__region *r, struct shmk__buffer_ctl *c,
		      uint64_t *version, int timeout_ms)
{
	struct changed_wait a;
	int rc;

	if (!version)
		return -EINVAL;
	rc = shmk__region_check(r);
	if (!rc)
		rc = shmk__timeout_ok(timeout_ms);
	if (rc < 0)
		return rc;
	a.r = r;
	a.seen = *version;
	rc = shmk__wait(r, shmk__wakes(r), &c->changed, changed_cond, &a,
			shmk__deadline(timeout_ms), r->spin_ns, 0, 0);
	if (!rc)
		*version = a.seen;
	return rc;
}

SHMK__EXPORT int shmk_buffer_pollfd(struct shmk_buffer *b)
{
	return shmk__pollfd_call(b ? &b->r : NULL);
}

SHMK__EXPORT int shmk_buffer_wake(struct shmk_buffer *b)
{
	return shmk__wake_call(b ? &b->r : NULL);
}

SHMK__EXPORT int shmk_buffer_wait(struct shmk_buffer *b, uint64_t *version,
				  int timeout_ms)
{
	return b ? shmk__buffer_wait(&b->r, b->ctl, version, timeout_ms)
		 : -EINVAL;
}
