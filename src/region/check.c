/* SPDX-License-Identifier: MIT */
/*
 * region/check.c - the checks of a header's private copy
 * (shmk__hdr_check, shmk__geom_unused for the kinds' layouts) and of the
 * options every create and open is given (shmk__opts_check,
 * shmk__spin_ns).
 *
 * Layer: the bottom of region, with registry.c.  Calls nothing of
 * src/region/.
 */
#define _GNU_SOURCE
#include "region.h"

/* ---------------------------------------------------------------------
 * Header validation
 * --------------------------------------------------------------------- */

int shmk__hdr_check(const struct shmk__hdr *h, uint64_t file_size,
		    const struct shmk__kind *k)
{
	uint64_t total;

	if (h->magic != SHMK__MAGIC || h->endian != SHMK__ENDIAN ||
	    h->version != SHMK__VERSION)
		return -EPROTO;
	if (h->kind != k->kind)
		return -EPROTO;
	if (h->hdr_size != SHMK__HDR_SIZE || h->total_size != file_size ||
	    h->total_size > SHMK__MAX_TOTAL || h->total_size > SIZE_MAX)
		return -EBADMSG;
	if (k->layout(h->geom, &total) < 0 || total != h->total_size)
		return -EBADMSG;
	return 0;
}

int shmk__geom_unused(const uint64_t geom[SHMK__GEOM_N], int used)
{
	int i;

	for (i = used; i < SHMK__GEOM_N; i++)
		if (geom[i])
			return -EINVAL;
	return 0;
}

int shmk__opts_check(const struct shmk_opts *o, int creating)
{
	const unsigned known =
		SHMK_F_OPEN_OR_CREATE | SHMK_F_ALLOW_SHARED | SHMK_F_KEEP;

	if (!o)
		return 0;
	if (o->flags & ~known)
		return -EINVAL;
	if (o->wait_ms < -1)
		return -EINVAL;
	if (creating && o->mode &&
	    ((o->mode & ~0777u) || (o->mode & 0600u) != 0600u))
		return -EINVAL;
	return 0;
}

int64_t shmk__spin_ns(const struct shmk_opts *o)
{
	if (!o || o->spin_us == 0)
		return SHMK__SPIN_DEFAULT_NS;
	if (o->spin_us < 0)
		return 0;
	return (int64_t)o->spin_us * 1000;
}
