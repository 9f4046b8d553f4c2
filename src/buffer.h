/* SPDX-License-Identifier: MIT */
/*
 * buffer.h - the buffer's locked copy, which the array shares: an array
 * is a buffer whose copies are whole elements (buffer.c).
 */
#ifndef SHMK_BUFFER_H
#define SHMK_BUFFER_H

#include "sync.h"

/*
 * The control words of a buffer and of an array, at the start of the
 * header's ctl area (docs/format.md 5.2, 5.3).
 */
struct shmk__buffer_ctl {
	struct shmk__rwlock lock;
	struct shmk__ec changed; /* sleepers in shmk_buffer_wait() */
	uint8_t pad[SHMK__CACHELINE - 4];
};
_Static_assert(sizeof(struct shmk__buffer_ctl) <= SHMK__CTL_SIZE, "buffer ctl");

/*
 * Copies len bytes between the object's data at data (in the mapping,
 * bounds checked by the caller) and p: how SHMK_LOCK_WRITE copies p into
 * the data, SHMK_LOCK_READ the data into p.  The copy is made under the
 * lock, taken for it and waited for at most timeout_ms, unless the calling
 * thread already holds it through this handle.  A write of len > 0 is a
 * new version (shmk__buffer_changed()) before the lock is released.
 * crash names the crash point half-way through a write.  Returns 0,
 * -EOWNERDEAD (copied, but a writer died holding the lock earlier), a
 * lock error (nothing copied), or -EBADMSG if the file shrank under the
 * copy.
 */
int shmk__buffer_copy(struct shmk__region *r, struct shmk__buffer_ctl *c,
		      char *data, void *p, size_t len, int how, int timeout_ms,
		      const char *crash);

/*
 * A new version of the data: counter[SHMK__CTR_WRITES] incremented
 * (seq_cst), then the changed eventcount notified.  Called after the
 * writes it announces, before the write lock is released.
 */
void shmk__buffer_changed(struct shmk__region *r, struct shmk__buffer_ctl *c);

/* shmk_buffer_unlock() and the array's: the release of a write lock is a
 * new version (the holder may have written through the data pointer). */
int shmk__buffer_unlock(struct shmk__region *r, struct shmk__buffer_ctl *c);

/* shmk_buffer_version/wait and the array's: the count of versions, and a
 * wait until it differs from *version (the new count stored there). */
uint64_t shmk__buffer_version(const struct shmk__region *r);
int shmk__buffer_wait(struct shmk__region *r, struct shmk__buffer_ctl *c,
		      uint64_t *version, int timeout_ms);

/* At close: what the calling thread holds is released (a write lock as
 * torn, and as a new version). */
void shmk__buffer_drop(struct shmk__region *r, struct shmk__buffer_ctl *c);

#endif /* SHMK_BUFFER_H */
