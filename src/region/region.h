/* SPDX-License-Identifier: MIT */
/*
 * region/region.h - the private header of src/region/, the region layer:
 * backing files, the self-describing header, the participant table, and
 * the handle registry that makes fork() safe.  docs/format.md describes
 * the header; docs/design.md explains the choices (atomic publication, OFD
 * liveness tokens, fork handling).  ../region.h (src/region.h) is what the
 * layers above use; this header adds what the files of src/region/ call
 * of each other.
 *
 * The files of src/region/, bottom to top; each calls only those below it
 * (and guard.c, names.c, sys.c):
 *   check.c     the checks of a header copy and of the options.  Calls
 *               nothing of src/region/.
 *   registry.c  the registry of open handles and its fork() handlers, new
 *               descriptions of a backing, mapping.  Calls nothing of
 *               src/region/.
 *   region.c    a handle: its participant slot, reset, discard, ready,
 *               shutdown, close, sharing.  Calls registry.c and check.c.
 *   open.c      peeking at a header, opening by name or descriptor.
 *               Calls region.c, registry.c and check.c.
 *   create.c    building and publishing a new region, open-or-create.
 *               Calls open.c and those below it.
 *   unlink.c    removing names.  Calls open.c.
 */
#ifndef SHMK_REGION_REGION_H
#define SHMK_REGION_REGION_H

#include "../region.h"

/* open() flags for an existing backing: never follow a symlink, never
 * block on a FIFO, never become a controlling terminal. */
#define OPEN_EXISTING (O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)

/* registry.c */
void shmk__reg_enter(void);
void shmk__reg_leave(void);
void shmk__reg_insert(struct shmk__region *r, int fd);
void shmk__reg_remove_close(struct shmk__region *r);
int shmk__reopen(int fd);
int shmk__map_region(struct shmk__region *r, uint64_t len, int guard);

/* region.c */
int shmk__attach(struct shmk__region *r, const struct shmk__kind *kd,
		 uint32_t flags);
void shmk__region_reset(struct shmk__region *r);
void shmk__region_discard(struct shmk__region *r);
void shmk__region_ready(struct shmk__region *r, const struct shmk__kind *k,
			const struct shmk_opts *o);

/* open.c */
int shmk__open_errno(int e);

#endif /* SHMK_REGION_REGION_H */
