/* SPDX-License-Identifier: MIT */
/*
 * guard.h - the SIGBUS guard of regions a peer can shrink (named files),
 * guard.c.  Part of the region layer: src/region/ enters and removes its
 * mappings; the handler calls only the system.
 */
#ifndef SHMK_GUARD_H
#define SHMK_GUARD_H

#include <stdatomic.h>
#include <stdint.h>

/*
 * One mapping as the SIGBUS handler sees it.  Slots live in chunks that
 * are never freed; they are filled and emptied by the region layer under
 * its registry lock, and read by the handler without any lock.
 */
struct shmk__guard_slot {
	_Atomic uint32_t live;	   /* 1 while mapped; release/acquire */
	_Atomic uint32_t poisoned; /* 1 once the handler cut the mapping */
	_Atomic uintptr_t start;   /* the mapping's first byte */
	_Atomic uintptr_t len;	   /* its length in bytes (our own size) */
	_Atomic int fd;		   /* a description of the file, or -1 */
	int owned;		   /* taken by a region (registry lock) */
};

/*
 * Installs the process-wide handler (once, chaining to the previous
 * action) and enters r's mapping (r->hdr, r->size, already mapped) with
 * fd, which must stay open until shmk__guard_remove().  Returns 0, or
 * -ENOMEM.  Called with the registry lock of src/region/registry.c held,
 * as are the two below; remove comes before the munmap.
 */
struct shmk__region;
int shmk__guard_add(struct shmk__region *r, int fd);
void shmk__guard_remove(struct shmk__region *r);
/* In a fork child: r's descriptor is closed, the handler forgets it. */
void shmk__guard_forked(struct shmk__region *r);

#endif /* SHMK_GUARD_H */
