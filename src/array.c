/* SPDX-License-Identifier: MIT */
/*
 * array.c - shmk_array: a fixed-length array of fixed-size elements
 * shared between processes.  Every access is bounds-checked and made
 * under the object's read/write lock, so no element is ever seen torn.
 * Geometry: geom[0] = element size, geom[1] = length; the elements follow
 * the header.  The control words are the lock alone.
 */
#include <stdlib.h>
#include <string.h>

#include "kinds.h"
#include "sync.h"

struct shmk_array {
	struct shmk__region r;
	char *data;
	size_t elem_size;
	size_t length;
	struct shmk__rwlock *lock;
};

static int array_layout(const uint64_t geom[SHMK__GEOM_N], uint64_t *total)
{
	uint64_t bytes;

	if (shmk__geom_unused(geom, 2) < 0 || geom[0] == 0 || geom[1] == 0 ||
	    shmk__mul(geom[0], geom[1], &bytes) < 0 ||
	    shmk__add(SHMK__HDR_SIZE, bytes, total) < 0 ||
	    *total > SHMK__MAX_TOTAL)
		return -EINVAL;
	return 0;
}

const struct shmk__kind shmk__array_kind = {
	.kind = SHMK_KIND_ARRAY,
	.name = "array",
	.layout = array_layout,
	.reclaim = shmk__rw_reclaim,
	.shutdown = shmk__notify_all,
	.ec_off = {offsetof(struct shmk__rwlock, ec)},
	.n_ec = 1,
	.geom_names = {"elem_size", "length", NULL},
	.counter_names = {"writes", "owner_dead", "readers_reclaimed", NULL},
};

static int array_attached(struct shmk_array *a, struct shmk_array **out, int rc)
{
	if (rc < 0) {
		free(a);
		return rc;
	}
	a->data = shmk__region_data(&a->r);
	a->elem_size = (size_t)a->r.geom[0];
	a->length = (size_t)a->r.geom[1];
	a->lock = shmk__region_ctl(&a->r);
	*out = a;
	return 0;
}

SHMK__EXPORT int shmk_array_create(const char *name, size_t elem_size,
				   size_t length, const struct shmk_opts *o,
				   struct shmk_array **out)
{
	uint64_t geom[SHMK__GEOM_N] = {elem_size, length};
	struct shmk_array *a;
	int rc = SHMK__HANDLE_NEW(out, &a);

	if (rc < 0)
		return rc;
	if (elem_size == 0 || length == 0) {
		free(a);
		return -EINVAL;
	}
	rc = shmk__region_create(&a->r, name, &shmk__array_kind, geom, o, NULL);
	return array_attached(a, out, rc);
}

/* The element size the opener expects must be the creator's. */
static int check_elem(struct shmk_array *a, size_t elem_size, int rc)
{
	if (!rc && a->r.geom[0] != elem_size) {
		shmk__region_close(&a->r);
		return -EPROTO;
	}
	return rc;
}

SHMK__EXPORT int shmk_array_open(const char *name, size_t elem_size,
				 const struct shmk_opts *o,
				 struct shmk_array **out)
{
	struct shmk_array *a;
	int rc = SHMK__HANDLE_NEW(out, &a);

	if (rc < 0)
		return rc;
	if (elem_size == 0) {
		free(a);
		return -EINVAL;
	}
	rc = shmk__region_open(&a->r, name, &shmk__array_kind, o);
	return array_attached(a, out, check_elem(a, elem_size, rc));
}

SHMK__EXPORT int shmk_array_open_fd(int fd, size_t elem_size,
				    const struct shmk_opts *o,
				    struct shmk_array **out)
{
	struct shmk_array *a;
	int rc = SHMK__HANDLE_NEW(out, &a);

	if (rc < 0)
		return rc;
	if (elem_size == 0) {
		free(a);
		return -EINVAL;
	}
	rc = shmk__region_open_fd(&a->r, fd, &shmk__array_kind, o);
	return array_attached(a, out, check_elem(a, elem_size, rc));
}

SHMK__EXPORT int shmk_array_fd(struct shmk_array *a)
{
	return a ? shmk__region_share_fd(&a->r) : -EINVAL;
}

SHMK__EXPORT int shmk_array_close(struct shmk_array *a)
{
	if (!a)
		return 0;
	shmk__lock_drop(&a->r, a->lock);
	shmk__region_close(&a->r);
	free(a);
	return 0;
}

SHMK__EXPORT size_t shmk_array_length(const struct shmk_array *a)
{
	return a ? a->length : 0;
}

SHMK__EXPORT size_t shmk_array_elem_size(const struct shmk_array *a)
{
	return a ? a->elem_size : 0;
}

SHMK__EXPORT void *shmk_array_data(struct shmk_array *a)
{
	if (!a || shmk__region_check(&a->r) < 0)
		return NULL;
	return a->data;
}

/*
 * Copies count elements from first, in (write) or out (read), under the
 * lock.  Returns 0, -EOWNERDEAD (copied, but a writer died holding the
 * lock earlier: the array may hold a torn element), or an error.
 */
static int copy(struct shmk_array *a, size_t first, void *p, size_t count,
		int how)
{
	int taken, locked;
	size_t bytes;

	if (!a || (count && !p))
		return -EINVAL;
	if (first > a->length || count > a->length - first)
		return -ERANGE;
	bytes = count * a->elem_size; /* <= the validated total: no overflow */
	locked = shmk__lock_enter(&a->r, a->lock, how, -1, &taken);
	if (locked < 0 && locked != -EOWNERDEAD)
		return locked;
	if (how == SHMK_LOCK_WRITE) {
#ifdef SHMK_CRASH_POINTS
		/* Half written when the writer dies: the data is torn. */
		memcpy(a->data + first * a->elem_size, p, bytes / 2);
		SHMK__CRASH("array_mid_write");
#endif
		memcpy(a->data + first * a->elem_size, p, bytes);
		/* Relaxed: a statistic (arrays have no wait-for-change). */
		atomic_fetch_add_explicit(&a->r.hdr->counter[SHMK__CTR_WRITES],
					  1, memory_order_relaxed);
	} else {
		memcpy(p, a->data + first * a->elem_size, bytes);
	}
	if (taken)
		shmk__rw_unlock(&a->r, a->lock, how, SHMK__RW_KEEP);
	/* The file shrank during the copy: it met private zeros. */
	if (shmk__region_poisoned(&a->r))
		return -EBADMSG;
	return locked;
}

SHMK__EXPORT int shmk_array_get(struct shmk_array *a, size_t i, void *dst)
{
	if (a && i >= a->length)
		return -ERANGE;
	return copy(a, i, dst, 1, SHMK_LOCK_READ);
}

SHMK__EXPORT int shmk_array_set(struct shmk_array *a, size_t i, const void *src)
{
	if (a && i >= a->length)
		return -ERANGE;
	return copy(a, i, (void *)src, 1, SHMK_LOCK_WRITE);
}

SHMK__EXPORT int shmk_array_read(struct shmk_array *a, size_t first, void *dst,
				 size_t count)
{
	return copy(a, first, dst, count, SHMK_LOCK_READ);
}

SHMK__EXPORT int shmk_array_write(struct shmk_array *a, size_t first,
				  const void *src, size_t count)
{
	return copy(a, first, (void *)src, count, SHMK_LOCK_WRITE);
}

SHMK__EXPORT int shmk_array_lock(struct shmk_array *a, int how, int timeout_ms)
{
	if (!a)
		return -EINVAL;
	return shmk__lock(&a->r, a->lock, how, timeout_ms);
}

SHMK__EXPORT int shmk_array_unlock(struct shmk_array *a)
{
	int how;

	if (!a)
		return -EINVAL;
	return shmk__unlock(&a->r, a->lock, &how);
}

SHMK__EXPORT int shmk_array_wake(struct shmk_array *a)
{
	return shmk__wake_call(a ? &a->r : NULL);
}
