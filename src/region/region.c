/* SPDX-License-Identifier: MIT */
/*
 * region/region.c - a handle on a region: its participant slot (attach,
 * liveness of the others), a handle reset, undone or made ready, and
 * shutdown, close and the descriptor handed to other processes.
 *
 * Layer: above registry.c and check.c, which it calls.  Calls nothing of
 * open.c, create.c or unlink.c.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "region.h"

/* ---------------------------------------------------------------------
 * Participants
 * --------------------------------------------------------------------- */

/*
 * Takes the first free participant slot.  The kernel arbitrates: a slot is
 * free exactly when no open file description holds the OFD lock on its
 * byte, which is the case once its holder closed or died, so the table
 * cannot be exhausted by processes that attach and die.
 */
int shmk__attach(struct shmk__region *r, const struct shmk__kind *kd,
		 uint32_t flags)
{
	uint32_t n;
	int k, rc;

	for (k = 0; k < SHMK__MAX_PARTS; k++) {
		struct shmk__part *p = &r->hdr->part[k];
		uint32_t gen;

		rc = shmk__ofd_trylock(r->fd, SHMK__LOCK_BYTE(k));
		if (rc == -EAGAIN)
			continue;
		if (rc < 0)
			return rc;
		SHMK__CRASH("region_attach"); /* token held, slot not filled */
		gen = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
		if (gen == 0)
			gen = 1;
		/* Scanners of the table look this far (seq_cst: before any
		 * lock this handle will take). */
		n = atomic_load_explicit(&r->hdr->nslots, memory_order_relaxed);
		while (n < (uint32_t)k + 1 &&
		       !atomic_compare_exchange_weak_explicit(
			       &r->hdr->nslots, &n, (uint32_t)k + 1,
			       memory_order_seq_cst, memory_order_relaxed))
			;
		r->slot = k;
		/* The last holder's wake-up socket is gone with it. */
		atomic_store_explicit(&p->wake, 0, memory_order_relaxed);
		atomic_store_explicit(&p->armed, 0, memory_order_relaxed);
		if (kd->reclaim)
			kd->reclaim(r, k);
		atomic_store_explicit(&p->pid, (uint32_t)getpid(),
				      memory_order_relaxed);
		atomic_store_explicit(&p->uid, (uint32_t)geteuid(),
				      memory_order_relaxed);
		atomic_store_explicit(&p->flags, flags | SHMK__PART_ATTACHED,
				      memory_order_relaxed);
		atomic_store_explicit(&p->attach_ns, shmk__real_ns(),
				      memory_order_relaxed);
		/* gen last: a reader that sees the new gen sees this holder
		 * (the fields are informational; a snapshot taken while a
		 * slot changes hands may mix two holders). */
		atomic_store_explicit(&p->gen, gen, memory_order_release);
		r->slot_gen = gen;
		return 0;
	}
	return -EUSERS;
}

int shmk__part_alive(const struct shmk__region *r, int k)
{
	if (k < 0 || k >= SHMK__MAX_PARTS)
		return -EINVAL;
	if (k == r->slot)
		return 1; /* our own lock never conflicts with itself */
	return shmk__ofd_held(r->fd, SHMK__LOCK_BYTE(k));
}

/* ---------------------------------------------------------------------
 * Handles
 * --------------------------------------------------------------------- */

void shmk__region_reset(struct shmk__region *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->share_fd = -1;
	r->slot = -1;
	r->poll_fd = -1;
	r->send_fd = -1;
}

/* Undoes a half-made handle (never published, or opened but refused). */
void shmk__region_discard(struct shmk__region *r)
{
	shmk__reg_remove_close(r);
	if (r->hdr)
		munmap(r->hdr, r->size);
	shmk__region_reset(r);
}

static _Atomic uint64_t next_serial;

/* What every handle gets on success: its spin budget, kind and serial. */
void shmk__region_ready(struct shmk__region *r, const struct shmk__kind *k,
			const struct shmk_opts *o)
{
	r->spin_ns = shmk__spin_ns(o);
	r->kind = k;
	r->serial = atomic_fetch_add_explicit(&next_serial, 1,
					      memory_order_relaxed) +
		    1;
}

/* ---------------------------------------------------------------------
 * Close, shutdown, sharing
 * --------------------------------------------------------------------- */

void shmk__region_shutdown(struct shmk__region *r)
{
	/* seq_cst (a release would pair with peers' acquire loads of
	 * state): also the publication the kind's wake-ups need. */
	atomic_store_explicit(&r->hdr->state, SHMK_STATE_SHUTDOWN,
			      memory_order_seq_cst);
	atomic_fetch_add_explicit(&r->hdr->state_seq, 1, memory_order_seq_cst);
	if (r->kind && r->kind->shutdown)
		r->kind->shutdown(r);
}

void shmk__region_close(struct shmk__region *r)
{
	if (r->hdr && !r->forked) {
		/* The header's flags are the creator's own, never changed. */
		if (r->creator && !(r->hflags & SHMK__HF_KEEP))
			shmk__region_shutdown(r);
		if (r->slot >= 0) {
			atomic_fetch_and_explicit(&r->hdr->part[r->slot].flags,
						  ~SHMK__PART_ATTACHED,
						  memory_order_relaxed);
			atomic_store_explicit(&r->hdr->part[r->slot].wake, 0,
					      memory_order_relaxed);
		}
	}
	if (r->poll_fd >= 0)
		close(r->poll_fd);
	if (r->send_fd >= 0)
		close(r->send_fd);
	shmk__reg_remove_close(r);
	if (r->hdr)
		munmap(r->hdr, r->size);
	/* In a forked child the descriptor handed out is the child's own
	 * copy, which it may be about to open: it stays open. */
	if (r->share_fd >= 0 && !r->forked)
		close(r->share_fd); /* holds no token: no hurry */
	shmk__region_reset(r);
}

int shmk__region_share_fd(struct shmk__region *r)
{
	int rc;

	rc = shmk__region_check(r);
	if (rc < 0)
		return rc;
	shmk__reg_enter();
	if (r->share_fd < 0) {
		/* A description of its own that holds no lock, so a peer
		 * that receives it never keeps our token alive. */
		rc = shmk__reopen(r->fd);
		if (rc >= 0)
			r->share_fd = rc;
	}
	rc = r->share_fd >= 0 ? r->share_fd : rc;
	shmk__reg_leave();
	return rc;
}

void shmk__region_unshare(struct shmk__region *r)
{
	shmk__reg_enter();
	if (r->share_fd >= 0 && !r->forked)
		close(r->share_fd);
	r->share_fd = -1;
	shmk__reg_leave();
}
