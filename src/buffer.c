/* SPDX-License-Identifier: MIT */
/*
 * buffer.c - shmk_buffer: raw bytes at offsets, shared between processes.
 * Geometry: geom[0] = usable size in bytes; the data follows the header.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct shmk_buffer {
	struct shmk__region r;
	char *data;  /* first usable byte, in the mapping */
	size_t size; /* usable bytes, from the validated private header */
};

static int buffer_layout(const uint64_t geom[SHMK__GEOM_N], uint64_t *total)
{
	int i;

	for (i = 1; i < SHMK__GEOM_N; i++)
		if (geom[i])
			return -EINVAL;
	if (geom[0] == 0 || shmk__add(SHMK__HDR_SIZE, geom[0], total) < 0 ||
	    *total > SHMK__MAX_TOTAL)
		return -EINVAL;
	return 0;
}

const struct shmk__kind shmk__buffer_kind = {
	.kind = SHMK_KIND_BUFFER,
	.name = "buffer",
	.layout = buffer_layout,
	.geom_names = {"size", NULL},
	.counter_names = {NULL},
};

static void buffer_attached(struct shmk_buffer *b)
{
	b->data = shmk__region_data(&b->r);
	b->size = (size_t)b->r.geom[0];
}

SHMK__EXPORT int shmk_buffer_create(const char *name, size_t size,
				    const struct shmk_opts *o,
				    struct shmk_buffer **out)
{
	uint64_t geom[SHMK__GEOM_N] = {size};
	struct shmk_buffer *b;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (size == 0)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	rc = shmk__region_create(&b->r, name, &shmk__buffer_kind, geom, o,
				 NULL);
	if (rc < 0) {
		free(b);
		return rc;
	}
	buffer_attached(b);
	*out = b;
	return 0;
}

SHMK__EXPORT int shmk_buffer_open(const char *name, const struct shmk_opts *o,
				  struct shmk_buffer **out)
{
	struct shmk_buffer *b;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	rc = shmk__region_open(&b->r, name, &shmk__buffer_kind, o);
	if (rc < 0) {
		free(b);
		return rc;
	}
	buffer_attached(b);
	*out = b;
	return 0;
}

SHMK__EXPORT int shmk_buffer_open_fd(int fd, const struct shmk_opts *o,
				     struct shmk_buffer **out)
{
	struct shmk_buffer *b;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	rc = shmk__region_open_fd(&b->r, fd, &shmk__buffer_kind, o);
	if (rc < 0) {
		free(b);
		return rc;
	}
	buffer_attached(b);
	*out = b;
	return 0;
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
			size_t len, int timeout_ms)
{
	int rc;

	if (!b || (len && !p))
		return -EINVAL;
	rc = shmk__region_check(&b->r);
	if (rc < 0)
		return rc;
	rc = shmk__timeout_ok(timeout_ms);
	if (rc < 0)
		return rc;
	/* Written so that no sum can overflow: off + len <= size. */
	if (off > b->size || len > b->size - off)
		return -ERANGE;
	return 0;
}

SHMK__EXPORT int shmk_buffer_write(struct shmk_buffer *b, size_t off,
				   const void *src, size_t len, int timeout_ms)
{
	int rc = buffer_range(b, off, src, len, timeout_ms);

	if (rc < 0)
		return rc;
	if (len)
		memcpy(b->data + off, src, len);
	return 0;
}

SHMK__EXPORT int shmk_buffer_read(struct shmk_buffer *b, size_t off, void *dst,
				  size_t len, int timeout_ms)
{
	int rc = buffer_range(b, off, dst, len, timeout_ms);

	if (rc < 0)
		return rc;
	if (len)
		memcpy(dst, b->data + off, len);
	return 0;
}
