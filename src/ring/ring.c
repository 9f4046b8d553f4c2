/* SPDX-License-Identifier: MIT */
/*
 * ring/ring.c - the ring as an object: its geometry and layout,
 * the kind descriptor (reclaim, stat counters), create, open, close, the
 * handle's properties, shutdown, and statistics.
 *
 * Layer: above ops.c.  Calls ops.c (shmk__ring_role_drop); nothing of
 * write.c or read.c.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "ring_impl.h"

/* ---------------------------------------------------------------------
 * Geometry: geom[0] = nodes, geom[1] = node size.
 * --------------------------------------------------------------------- */

struct ring_geom {
	uint64_t parts_off, desc_off, data_off, stride, total;
};

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a; /* callers keep v far below overflow */
}

static int ring_geometry(const uint64_t geom[SHMK__GEOM_N], struct ring_geom *g)
{
	uint64_t n = geom[0], size = geom[1], align, bytes;

	if ((geom[2] & ~(uint64_t)(MODE_SW | MODE_SR)) ||
	    shmk__geom_unused(geom, 3) < 0)
		return -EINVAL;
	if (n < 2 || n > SHMK__MAX_TOTAL / SHMK__CACHELINE || size < 1 ||
	    size > MAX_NODE_SIZE)
		return -EINVAL;
	/* Node data is cache-line aligned, page aligned from a page up. */
	align = size >= 4096 ? 4096 : SHMK__CACHELINE;
	g->stride = round_up(size, align);
	g->parts_off = SHMK__HDR_SIZE;
	g->desc_off = g->parts_off + SHMK__MAX_PARTS * sizeof(struct ring_part);
	if (shmk__mul(n, sizeof(struct ring_desc), &bytes) < 0 ||
	    shmk__add(g->desc_off, bytes, &g->data_off) < 0)
		return -EINVAL;
	g->data_off = round_up(g->data_off, align);
	if (shmk__mul(n, g->stride, &bytes) < 0 ||
	    shmk__add(g->data_off, bytes, &g->total) < 0 ||
	    g->total > SHMK__MAX_TOTAL)
		return -EINVAL;
	return 0;
}

static int ring_layout(const uint64_t geom[SHMK__GEOM_N], uint64_t *total)
{
	struct ring_geom g;
	int rc = ring_geometry(geom, &g);

	if (!rc)
		*total = g.total;
	return rc;
}

static struct ring_part *part_of(struct shmk__region *reg, int k)
{
	return (struct ring_part *)((char *)reg->hdr + SHMK__HDR_SIZE) + k;
}

/* Adds a participant's counters to the global ones and zeroes them. */
/*
 * A slot changes hands: its intents go.  Clearing them is safe: an
 * unfinished position whose owner has no live intent is recovered, which
 * is right, as that owner is gone.  Its counters stay where they are, and
 * the next holder counts on from them: moving them into the header's
 * (an exchange, then an add) would lose them to a process killed in
 * between, and every reader of the counters adds up every slot anyway.
 */
static void ring_reclaim(struct shmk__region *reg, int slot)
{
	struct ring_part *p = part_of(reg, slot);
	int i;

	for (i = 0; i < NOPS; i++)
		atomic_store_explicit(&p->op[i].intent, 0,
				      memory_order_release);
}

static int ring_stat_counters(int fd, const struct shmk__hdr *h, uint64_t *out);

const struct shmk__kind shmk__ring_kind = {
	.kind = SHMK_KIND_RING,
	.name = "ring",
	.layout = ring_layout,
	.reclaim = ring_reclaim,
	.shutdown = shmk__notify_all,
	.ec_off = {offsetof(struct ring_ctl, data),
		   offsetof(struct ring_ctl, space)},
	.n_ec = 2,
	.stat_counters = ring_stat_counters,
	.geom_names = {"nodes", "node_size", "single", NULL},
	.counter_names = {"written", "bytes_written", "read", "bytes_read",
			  "full_waits", "empty_waits", "wakeups", "aborted",
			  "recovered", "lost", "high_water", "lag", NULL},
	/* The order above is the enum's, then the lag. */
};

/* Nodes start free for their first position: seq[i] = i. */
static void ring_init(struct shmk__region *reg)
{
	struct ring_geom g;
	struct ring_desc *d;
	uint64_t i;

	if (ring_geometry(reg->geom, &g) < 0)
		return; /* the caller validated the geometry */
	d = (struct ring_desc *)((char *)reg->hdr + g.desc_off);
	for (i = 0; i < reg->geom[0]; i++)
		atomic_store_explicit(&d[i].seq, i, memory_order_relaxed);
}

/* ---------------------------------------------------------------------
 * Create, open, close
 * --------------------------------------------------------------------- */

static int ring_attached(struct shmk_ring *r, struct shmk_ring **out, int rc)
{
	struct ring_geom g;

	if (rc < 0) {
		free(r);
		return rc;
	}
	if (ring_geometry(r->reg.geom, &g) < 0) {
		shmk__region_close(&r->reg); /* validated at open */
		free(r);
		return -EBADMSG;
	}
	r->ctl = shmk__region_ctl(&r->reg);
	r->parts = part_of(&r->reg, 0);
	r->me = part_of(&r->reg, r->reg.slot);
	r->desc = (struct ring_desc *)((char *)r->reg.hdr + g.desc_off);
	r->data = (char *)r->reg.hdr + g.data_off;
	r->n = r->reg.geom[0];
	r->node_size = r->reg.geom[1];
	r->stride = g.stride;
	r->mode = (unsigned)r->reg.geom[2];
	atomic_init(&r->role_k[RING_WRITER], -1);
	atomic_init(&r->role_k[RING_READER], -1);
	shmk__async_init();
	*out = r;
	return 0;
}

SHMK__EXPORT int shmk_ring_create(const char *name, size_t nodes,
				  size_t node_size, const struct shmk_opts *o,
				  struct shmk_ring **out)
{
	const unsigned single = SHMK_F_SINGLE_WRITER | SHMK_F_SINGLE_READER;
	uint64_t geom[SHMK__GEOM_N] = {nodes, node_size};
	struct shmk_opts oo;
	struct shmk_ring *r;
	int rc = SHMK__HANDLE_NEW(out, &r);

	if (rc < 0)
		return rc;
	/* The mode is geometry: an opener learns it from the header, and
	 * SHMK_F_OPEN_OR_CREATE finds a ring of another mode a mismatch. */
	if (o && (o->flags & single)) {
		oo = *o;
		oo.flags &= ~single;
		geom[2] = ((o->flags & SHMK_F_SINGLE_WRITER) ? MODE_SW : 0) |
			  ((o->flags & SHMK_F_SINGLE_READER) ? MODE_SR : 0);
		o = &oo;
	}
	rc = shmk__region_create(&r->reg, name, &shmk__ring_kind, geom, o,
				 ring_init);
	return ring_attached(r, out, rc);
}

SHMK__EXPORT int shmk_ring_open(const char *name, const struct shmk_opts *o,
				struct shmk_ring **out)
{
	struct shmk_ring *r;
	int rc = SHMK__HANDLE_NEW(out, &r);

	if (rc < 0)
		return rc;
	rc = shmk__region_open(&r->reg, name, &shmk__ring_kind, o);
	return ring_attached(r, out, rc);
}

SHMK__EXPORT int shmk_ring_open_fd(int fd, const struct shmk_opts *o,
				   struct shmk_ring **out)
{
	struct shmk_ring *r;
	int rc = SHMK__HANDLE_NEW(out, &r);

	if (rc < 0)
		return rc;
	rc = shmk__region_open_fd(&r->reg, fd, &shmk__ring_kind, o);
	return ring_attached(r, out, rc);
}

SHMK__EXPORT int shmk_ring_fd(struct shmk_ring *r)
{
	return r ? shmk__region_share_fd(&r->reg) : -EINVAL;
}

SHMK__EXPORT int shmk_ring_close(struct shmk_ring *r)
{
	if (!r)
		return 0;
	/* What we counted stays in our slot (ring_reclaim() says why).
	 * Reservations and acquisitions still open become a dead
	 * participant's: recovered by others. */
	if (!r->reg.forked)
		shmk__ring_role_drop(r);
	shmk__region_close(&r->reg);
	free(r);
	return 0;
}

struct shmk__region *shmk__ring_region(struct shmk_ring *r)
{
	return &r->reg;
}

SHMK__EXPORT size_t shmk_ring_nodes(const struct shmk_ring *r)
{
	return r ? (size_t)r->n : 0;
}

SHMK__EXPORT size_t shmk_ring_node_size(const struct shmk_ring *r)
{
	return r ? (size_t)r->node_size : 0;
}

SHMK__EXPORT int shmk_ring_pollfd(struct shmk_ring *r)
{
	return shmk__pollfd_call(r ? &r->reg : NULL);
}

SHMK__EXPORT int shmk_ring_wake(struct shmk_ring *r)
{
	return shmk__wake_call(r ? &r->reg : NULL);
}

SHMK__EXPORT int shmk_ring_shutdown(struct shmk_ring *r)
{
	int rc;

	if (!r)
		return -EINVAL;
	rc = shmk__region_check(&r->reg);
	if (rc < 0)
		return rc;
	shmk__region_shutdown(&r->reg);
	return 0;
}

/* ---------------------------------------------------------------------
 * Statistics
 * --------------------------------------------------------------------- */

/* Sums the global counters and every operation slot's (each read once);
 * out[RING_CTRS] is the lag. */
static void sum(uint64_t out[RING_CTRS + 1], const _Atomic uint64_t *global,
		const struct ring_part *parts, uint64_t head, uint64_t tail)
{
	int i, k, o;

	for (i = 0; i < RING_CTRS; i++)
		out[i] = atomic_load_explicit(&global[i], memory_order_relaxed);
	for (k = 0; k < SHMK__MAX_PARTS; k++)
		for (o = 0; o < NOPS; o++)
			for (i = 0; i < RING_OP_CTRS; i++)
				out[i] += atomic_load_explicit(
					&parts[k].op[o].ctr[i],
					memory_order_relaxed);
	out[RING_CTRS] = head > tail ? head - tail : 0;
}

SHMK__EXPORT int shmk_ring_stats(struct shmk_ring *r,
				 struct shmk_ring_stats *st)
{
	uint64_t v[RING_CTRS + 1], head, tail;
	int rc;

	if (!r || !st)
		return -EINVAL;
	rc = shmk__region_check(&r->reg);
	if (rc < 0)
		return rc;
	tail = atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
	head = atomic_load_explicit(&r->ctl->head, memory_order_acquire);
	sum(v, r->reg.hdr->counter, r->parts, head, tail);
	memset(st, 0, sizeof(*st));
	st->nodes = r->n;
	st->node_size = r->node_size;
	st->written = v[RING_C_WRITTEN];
	st->bytes_written = v[RING_C_BYTES_W];
	st->read = v[RING_C_READ];
	st->bytes_read = v[RING_C_BYTES_R];
	st->full_waits = v[RING_C_FULL_WAITS];
	st->empty_waits = v[RING_C_EMPTY_WAITS];
	st->wakeups = v[RING_C_WAKEUPS];
	st->aborted = v[RING_G_ABORTED];
	st->recovered = v[RING_G_RECOVERED];
	st->lost = v[RING_G_LOST];
	st->high_water = v[RING_G_HWM];
	st->lag = v[RING_CTRS];
	return 0;
}

/* For shmk_stat(): the same sums, from the file (nothing mapped). */
static int ring_stat_counters(int fd, const struct shmk__hdr *h, uint64_t *out)
{
	const struct ring_ctl *c = (const struct ring_ctl *)h->ctl;
	struct ring_part *parts;
	size_t len = SHMK__MAX_PARTS * sizeof(*parts);
	int rc;

	parts = malloc(len);
	if (!parts)
		return -ENOMEM;
	rc = shmk__pread_all(fd, parts, len, SHMK__HDR_SIZE);
	if (rc < 0) {
		free(parts);
		return rc;
	}
	sum(out, h->counter, parts,
	    atomic_load_explicit(&c->head, memory_order_relaxed),
	    atomic_load_explicit(&c->tail, memory_order_relaxed));
	free(parts);
	return 0;
}
