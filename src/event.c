/* SPDX-License-Identifier: MIT */
/*
 * event.c - shmk_event: a named event between processes, auto-reset (each
 * set releases one waiter) or manual-reset (a set releases every waiter
 * and stays set until reset).  Geometry: geom[0] = 1 for manual reset.
 */
#include <stdlib.h>

#include "kinds.h"
#include "sync.h"

struct event_ctl {
	_Atomic uint32_t state; /* 1 set, 0 not; written by set/reset/wait */
	_Atomic uint32_t sets;	/* bumped by every set (manual waiters) */
	uint8_t pad0[SHMK__CACHELINE - 8];
	struct shmk__ec ec; /* sleepers in shmk_event_wait() */
	uint8_t pad1[SHMK__CACHELINE - 4];
};
_Static_assert(sizeof(struct event_ctl) <= SHMK__CTL_SIZE, "event ctl");

enum { CTR_SETS, CTR_RESETS, CTR_WAKES };

struct shmk_event {
	struct shmk__region r;
	struct event_ctl *ctl;
	int manual;
};

static int event_layout(const uint64_t geom[SHMK__GEOM_N], uint64_t *total)
{
	if (shmk__geom_unused(geom, 1) < 0 || geom[0] > 1)
		return -EINVAL;
	*total = SHMK__HDR_SIZE;
	return 0;
}

const struct shmk__kind shmk__event_kind = {
	.kind = SHMK_KIND_EVENT,
	.name = "event",
	.layout = event_layout,
	.shutdown = shmk__notify_all,
	.ec_off = {offsetof(struct event_ctl, ec)},
	.n_ec = 1,
	.geom_names = {"manual_reset", NULL},
	.counter_names = {"sets", "resets", "wakes", NULL},
};

static int event_attached(struct shmk_event *e, struct shmk_event **out, int rc)
{
	if (rc < 0) {
		free(e);
		return rc;
	}
	e->ctl = shmk__region_ctl(&e->r);
	e->manual = e->r.geom[0] == 1;
	*out = e;
	return 0;
}

static void init_set(struct shmk__region *r)
{
	struct event_ctl *c = shmk__region_ctl(r);

	atomic_store_explicit(&c->state, 1, memory_order_relaxed);
}

SHMK__EXPORT int shmk_event_create(const char *name, int manual_reset,
				   int initially_set, const struct shmk_opts *o,
				   struct shmk_event **out)
{
	uint64_t geom[SHMK__GEOM_N] = {manual_reset ? 1 : 0};
	struct shmk_event *e;
	int rc = SHMK__HANDLE_NEW(out, &e);

	if (rc < 0)
		return rc;
	rc = shmk__region_create(&e->r, name, &shmk__event_kind, geom, o,
				 initially_set ? init_set : NULL);
	return event_attached(e, out, rc);
}

/* shmk_event_open (fd NULL) and shmk_event_open_fd (name unused). */
static int event_open(const char *name, const int *fd,
		      const struct shmk_opts *o, struct shmk_event **out)
{
	struct shmk_event *e;
	int rc = SHMK__HANDLE_NEW(out, &e);

	if (rc < 0)
		return rc;
	if (fd)
		rc = shmk__region_open_fd(&e->r, *fd, &shmk__event_kind, o);
	else
		rc = shmk__region_open(&e->r, name, &shmk__event_kind, o);
	return event_attached(e, out, rc);
}

SHMK__EXPORT int shmk_event_open(const char *name, const struct shmk_opts *o,
				 struct shmk_event **out)
{
	return event_open(name, NULL, o, out);
}

SHMK__EXPORT int shmk_event_open_fd(int fd, const struct shmk_opts *o,
				    struct shmk_event **out)
{
	return event_open(NULL, &fd, o, out);
}

SHMK__EXPORT int shmk_event_fd(struct shmk_event *e)
{
	return e ? shmk__region_share_fd(&e->r) : -EINVAL;
}

SHMK__EXPORT int shmk_event_close(struct shmk_event *e)
{
	if (!e)
		return 0;
	shmk__region_close(&e->r);
	free(e);
	return 0;
}

/* 0 if e is a handle to use, else -EINVAL or the region's error. */
static int event_check(struct shmk_event *e)
{
	return e ? shmk__region_check(&e->r) : -EINVAL;
}

SHMK__EXPORT int shmk_event_set(struct shmk_event *e)
{
	int rc = event_check(e);

	if (rc < 0)
		return rc;
	/* seq_cst both: the publication shmk__ec_notify() needs. */
	atomic_store_explicit(&e->ctl->state, 1, memory_order_seq_cst);
	atomic_fetch_add_explicit(&e->ctl->sets, 1, memory_order_seq_cst);
	shmk__count(&e->r, CTR_SETS, 1);
	shmk__ec_notify(&e->r, &e->ctl->ec);
	return 0;
}

SHMK__EXPORT int shmk_event_reset(struct shmk_event *e)
{
	int rc = event_check(e);

	if (rc < 0)
		return rc;
	atomic_store_explicit(&e->ctl->state, 0, memory_order_seq_cst);
	shmk__count(&e->r, CTR_RESETS, 1);
	return 0;
}

struct event_wait {
	struct shmk_event *e;
	uint32_t sets; /* manual: the set count when the wait began */
};

static int event_cond(void *arg, int slow)
{
	struct event_wait *a = arg;
	struct event_ctl *c = a->e->ctl;
	uint32_t one = 1;
	int rc = shmk__region_check(&a->e->r);

	(void)slow;
	if (rc < 0)
		return rc; /* the file was shrunk under us */
	if (a->e->manual) {
		/* Acquire: pairs with the set that released us. */
		if (atomic_load_explicit(&c->state, memory_order_acquire) ||
		    atomic_load_explicit(&c->sets, memory_order_acquire) !=
			    a->sets)
			return 1;
	} else if (atomic_compare_exchange_strong_explicit(
			   &c->state, &one, 0, memory_order_acq_rel,
			   memory_order_acquire)) {
		return 1; /* this set is ours alone */
	}
	if (atomic_load_explicit(&a->e->r.hdr->state, memory_order_acquire) ==
	    SHMK_STATE_SHUTDOWN)
		return -EPIPE;
	return 0;
}

SHMK__EXPORT int shmk_event_pollfd(struct shmk_event *e)
{
	return shmk__pollfd_call(e ? &e->r : NULL);
}

SHMK__EXPORT int shmk_event_wake(struct shmk_event *e)
{
	return shmk__wake_call(e ? &e->r : NULL);
}

SHMK__EXPORT int shmk_event_wait(struct shmk_event *e, int timeout_ms)
{
	struct event_wait a;
	int rc = event_check(e);

	if (!rc)
		rc = shmk__timeout_ok(timeout_ms);
	if (rc < 0)
		return rc;
	a.e = e;
	a.sets = atomic_load_explicit(&e->ctl->sets, memory_order_acquire);
	rc = shmk__wait(&e->r, shmk__wakes(&e->r), &e->ctl->ec, event_cond, &a,
			shmk__deadline(timeout_ms), e->r.spin_ns, 0, 0);
	if (!rc)
		shmk__count(&e->r, CTR_WAKES, 1);
	return rc;
}
