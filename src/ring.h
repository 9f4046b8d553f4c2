/* SPDX-License-Identifier: MIT */
/*
 * ring.h - what the layers above the ring (rpc) use of its internals.
 * The ring itself is src/ring/ (ring_impl.h says which file does what).
 */
#ifndef SHMK_RING_H
#define SHMK_RING_H

#include "region.h"

/* The region under a ring (for rpc's liveness checks). */
struct shmk_ring;
struct shmk__region *shmk__ring_region(struct shmk_ring *r);
/* shmk_ring_acquire with a spin budget of its own (ns, 0: none). */
struct shmk_msg;
int shmk__ring_acquire_spin(struct shmk_ring *r, struct shmk_msg *m,
			    int timeout_ms, int64_t spin_ns);
/* The same, waiting with SHMK__WAIT_LONG (an empty ring is slept on until
 * the deadline): for a reader that learns of its writers' deaths another
 * way (rpc: the peer's socket and pidfd). */
int shmk__ring_acquire_long(struct shmk_ring *r, struct shmk_msg *m,
			    int timeout_ms, int64_t spin_ns);

#endif /* SHMK_RING_H */
