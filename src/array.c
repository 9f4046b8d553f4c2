/* SPDX-License-Identifier: MIT */
/*
 * array.c - shmk_array: a fixed-length array of fixed-size elements
 * shared between processes.  Every access is bounds-checked and made
 * under the object's read/write lock, so no element is ever seen torn.
 * Geometry: geom[0] = element size, geom[1] = length; the elements follow
 * the header.  An array is a buffer whose copies are whole elements: the
 * control words, the locked copy and the version are the buffer's
 * (buffer.h).
 */
#include <stdlib.h>

#include "buffer.h"
#include "kinds.h"
#include "sync.h"

struct shmk_array {
	struct shmk__region r;
	char *data;
	size_t elem_size;
	size_t length;
	struct shmk__buffer_ctl *ctl;
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
	.ec_off = {offsetof(struct shmk__buffer_ctl, lock.ec),
		   offsetof(struct shmk__buffer_ctl, changed)},
	.n_ec = 2,
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
	a->ctl = shmk__region_ctl(&a->r);
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

/* shmk_array_open (fd NULL) and shmk_array_open_fd (name unused). */
static int array_open(const char *name, const int *fd, size_t elem_size,
		      const struct shmk_opts *o, struct shmk_array **out)
{
	struct shmk_array *a;
	int rc = SHMK__HANDLE_NEW(out, &a);

	if (rc < 0)
		return rc;
	if (elem_size == 0) {
		free(a);
		return -EINVAL;
	}
	if (fd)
		rc = shmk__region_open_fd(&a->r, *fd, &shmk__array_kind, o);
	else
		rc = shmk__region_open(&a->r, name, &shmk__array_kind, o);
	return array_attached(a, out, check_elem(a, elem_size, rc));
}

SHMK__EXPORT int shmk_array_open(const char *name, size_t elem_size,
				 const struct shmk_opts *o,
				 struct shmk_array **out)
{
	return array_open(name, NULL, elem_size, o, out);
}

SHMK__EXPORT int shmk_array_open_fd(int fd, size_t elem_size,
				    const struct shmk_opts *o,
				    struct shmk_array **out)
{
	return array_open(NULL, &fd, elem_size, o, out);
}

SHMK__EXPORT int shmk_array_fd(struct shmk_array *a)
{
	return a ? shmk__region_share_fd(&a->r) : -EINVAL;
}

SHMK__EXPORT int shmk_array_close(struct shmk_array *a)
{
	if (!a)
		return 0;
	shmk__buffer_drop(&a->r, a->ctl);
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
 * Copies count elements from first, in (write) or out (read), with the
 * buffer's locked copy: its ordering, its version and its wake-ups.  The
 * array's calls have no timeout: the lock is waited for without a
 * deadline (a dead holder is still recovered, and shmk_array_wake() ends
 * the wait).  Returns 0, -EOWNERDEAD (copied, but a writer died holding
 * the lock earlier: the array may hold a torn element), or an error.
 */
static int copy(struct shmk_array *a, size_t first, void *p, size_t count,
		int how)
{
	if (!a || (count && !p))
		return -EINVAL;
	if (first > a->length || count > a->length - first)
		return -ERANGE;
	/* Both <= the validated total: no overflow. */
	return shmk__buffer_copy(&a->r, a->ctl, a->data + first * a->elem_size,
				 p, count * a->elem_size, how, -1,
				 "array_mid_write");
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
	return shmk__lock(&a->r, &a->ctl->lock, how, timeout_ms);
}

SHMK__EXPORT int shmk_array_unlock(struct shmk_array *a)
{
	return a ? shmk__buffer_unlock(&a->r, a->ctl) : -EINVAL;
}

SHMK__EXPORT uint64_t shmk_array_version(const struct shmk_array *a)
{
	return a ? shmk__buffer_version(&a->r) : 0;
}

SHMK__EXPORT int shmk_array_wait(struct shmk_array *a, uint64_t *version,
				 int timeout_ms)
{
	return a ? shmk__buffer_wait(&a->r, a->ctl, version, timeout_ms)
		 : -EINVAL;
}

SHMK__EXPORT int shmk_array_pollfd(struct shmk_array *a)
{
	return shmk__pollfd_call(a ? &a->r : NULL);
}

SHMK__EXPORT int shmk_array_wake(struct shmk_array *a)
{
	return shmk__wake_call(a ? &a->r : NULL);
}
