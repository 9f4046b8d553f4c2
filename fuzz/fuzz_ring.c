/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ring - a real ring whose shared words a hostile participant keeps
 * overwriting while two honest handles use it.
 *
 * Each input makes a small anonymous ring (byte 0 picks its geometry) with
 * two handles on it, then runs a program: each step is one opcode byte
 * and its operands.  Some steps overwrite shared words (head, tail, a
 * node's sequence or length, an operation slot's intent, the header's
 * state, a participant's generation, nslots, any bytes) with values picked
 * the way a hostile peer would (fuzz_word); the others are calls on either
 * handle, always with timeout 0: write, read, acquire, release, reserve,
 * commit, abort, stats, shutdown, and closing and reopening the second
 * handle (a participant that leaves with messages in its hands).  The
 * mapping keeps its size; whatever the words say, every call must return
 * a value or an error, and every message it hands out must lie inside one
 * node of the mapping.  Offsets are those of docs/format.md, section 5.5.
 */
#include "fuzz.h"

#include <unistd.h>

#define CTL_HEAD     0x400
#define CTL_TAIL     0x440
#define CTL_DATA_EC  0x480
#define CTL_SPACE_EC 0x4c0
#define PARTS	     0x3000
#define PART_BLOCK   1024
#define OP_SIZE	     64
#define NOPS	     16
#define DESC	     0x23000
#define DESC_SIZE    64
#define ROLE_W	     (UINT64_C(1) << 62)
#define ROLE_R	     (UINT64_C(2) << 62)

#define HELD 4 /* messages a handle keeps in its hands at most */

struct held {
	struct shmk_msg m;
	int what; /* 0 none, 1 reserved, 2 acquired */
};

struct lab {
	struct shmk_ring *q[2];
	struct held held[2][HELD];
	char *base; /* the creator's mapping */
	size_t size;
	uint64_t n, node_size;
};

/* The message lies inside node (its position mod N) of the mapping. */
static void msg_inside(struct lab *l, int h, const struct shmk_msg *m)
{
	struct shmk__region *r = shmk__ring_region(l->q[h]);
	const char *lo = (const char *)r->hdr, *hi = lo + r->size;
	const char *d = m->data;

	FUZZ_CHECK(d > lo + DESC && d < hi);
	FUZZ_CHECK(m->len <= l->node_size);
	FUZZ_CHECK(m->len <= (size_t)(hi - d));
}

static struct held *free_held(struct lab *l, int h)
{
	int i;

	for (i = 0; i < HELD; i++)
		if (!l->held[h][i].what)
			return &l->held[h][i];
	return NULL;
}

static void drop_held(struct lab *l, int h)
{
	memset(l->held[h], 0, sizeof(l->held[h]));
}

#define RING_ERRS -EAGAIN, -EPIPE, -EBADMSG, -EBUSY

static void step_call(struct lab *l, struct fuzz_in *in, uint8_t op)
{
	int h = (op >> 4) & 1, rc;
	struct shmk_ring *q = l->q[h];
	struct held *hd;
	uint8_t buf[4096 + 8];
	size_t len;
	ssize_t n;

	if (!q)
		return;
	memset(buf, 0xa5, sizeof(buf));
	switch (op % 16) {
	case 0: /* write */
		len = fuzz_u16(in) % (l->node_size + 2);
		rc = shmk_ring_write(q, buf, len, 0);
		if (len > l->node_size)
			FUZZ_CHECK(rc == -EMSGSIZE);
		else
			FUZZ_RC(rc, RING_ERRS);
		break;
	case 1: /* read */
		len = fuzz_u16(in) % (sizeof(buf) + 1);
		n = shmk_ring_read(q, buf, len, 0);
		FUZZ_RC(n, RING_ERRS, -EMSGSIZE);
		FUZZ_CHECK(n <= (ssize_t)len);
		break;
	case 2: /* acquire and keep */
		hd = free_held(l, h);
		if (!hd)
			break;
		rc = shmk_ring_acquire(q, &hd->m, 0);
		FUZZ_RC(rc, RING_ERRS);
		if (rc == 0) {
			msg_inside(l, h, &hd->m);
			if (hd->m.len)
				memcpy(buf, hd->m.data,
				       hd->m.len < sizeof(buf) ? hd->m.len
							       : sizeof(buf));
			hd->what = 2;
		}
		break;
	case 3: /* reserve and keep */
		hd = free_held(l, h);
		if (!hd)
			break;
		rc = shmk_ring_reserve(q, &hd->m, 0);
		FUZZ_RC(rc, RING_ERRS);
		if (rc == 0) {
			msg_inside(l, h, &hd->m);
			FUZZ_CHECK(hd->m.len == l->node_size);
			memset(hd->m.data, 0x5a, hd->m.len);
			hd->what = 1;
		}
		break;
	case 4: /* release, commit or abort what we hold */
	case 5:
		hd = &l->held[h][fuzz_u8(in) % HELD];
		if (hd->what == 2) {
			FUZZ_CHECK(shmk_ring_release(q, &hd->m) == 0);
		} else if (hd->what == 1 && op % 16 == 4) {
			hd->m.len = fuzz_u16(in) % (l->node_size + 2);
			rc = shmk_ring_commit(q, &hd->m);
			if (rc == -EMSGSIZE) {
				FUZZ_CHECK(hd->m.len > l->node_size);
				break; /* still ours */
			}
			FUZZ_CHECK(rc == 0);
		} else if (hd->what == 1) {
			FUZZ_CHECK(shmk_ring_abort(q, &hd->m) == 0);
		}
		hd->what = 0;
		break;
	case 6: { /* stats */
		struct shmk_ring_stats st;

		FUZZ_CHECK(shmk_ring_stats(q, &st) == 0);
		FUZZ_CHECK(st.nodes == l->n && st.node_size == l->node_size);
		break;
	}
	case 7: /* a message no longer (or never) ours: the API cleared it */
		hd = &l->held[h][fuzz_u8(in) % HELD];
		if (!hd->what) {
			FUZZ_CHECK(shmk_ring_commit(q, &hd->m) == -EINVAL);
			FUZZ_CHECK(shmk_ring_release(q, &hd->m) == -EINVAL);
			FUZZ_CHECK(shmk_ring_abort(q, &hd->m) == -EINVAL);
		}
		break;
	case 8: /* shutdown */
		if (fuzz_u8(in) == 0x5d)
			FUZZ_CHECK(shmk_ring_shutdown(q) == 0);
		break;
	case 9: /* the second handle leaves (holding what it holds) */
		if (h == 1) {
			shmk_ring_close(q);
			l->q[1] = NULL;
			drop_held(l, 1);
		}
		break;
	}
}

static void step_poke(struct lab *l, struct fuzz_in *in, uint8_t op)
{
	uint64_t head = fuzz_peek(l->base, CTL_HEAD),
		 tail = fuzz_peek(l->base, CTL_TAIL);
	uint64_t i = fuzz_u8(in) % l->n;
	size_t off;

	switch (op % 8) {
	case 0:
		fuzz_poke(l->base, CTL_HEAD, fuzz_word(in, head));
		break;
	case 1:
		fuzz_poke(l->base, CTL_TAIL, fuzz_word(in, tail));
		break;
	case 2:
		off = DESC + i * DESC_SIZE;
		fuzz_poke(l->base, off, fuzz_word(in, fuzz_peek(l->base, off)));
		break;
	case 3:
		off = DESC + i * DESC_SIZE + 8;
		fuzz_poke(l->base, off, fuzz_word(in, l->node_size));
		break;
	case 4: { /* an intent: any participant, one slot or all 16 */
		uint8_t who = fuzz_u8(in), k0 = (who >> 2) % 8, k;
		uint64_t v =
			fuzz_word(in, (who & 0x40 ? tail : head) |
					      (who & 0x80 ? ROLE_R : ROLE_W));

		/* Which slot an operation gets depends on a hint of the
		 * thread's: all 16 make an input mean the same every run. */
		for (k = k0 == 7 ? 0 : k0; k < (k0 == 7 ? NOPS : k0 + 1); k++)
			fuzz_poke(l->base,
				  PARTS + (size_t)(who % 4) * PART_BLOCK +
					  (size_t)k * OP_SIZE,
				  v);
		break;
	}
	case 5: { /* the header: state, nslots, a generation */
		uint8_t what = fuzz_u8(in);
		uint32_t v = fuzz_u32(in);

		off = what % 3 == 0   ? 0x100
		      : what % 3 == 1 ? 0x108
				      : 0x1000 + (size_t)(what / 3 % 4) * 64;
		atomic_store_explicit((_Atomic uint32_t *)(l->base + off), v,
				      memory_order_relaxed);
		break;
	}
	case 6: /* the eventcounts */
		atomic_store_explicit(
			(_Atomic uint32_t *)(l->base + (i & 1 ? CTL_DATA_EC
							      : CTL_SPACE_EC)),
			fuzz_u32(in), memory_order_relaxed);
		break;
	default: { /* any bytes, anywhere */
		size_t at = fuzz_u32(in) % l->size, k, len = fuzz_u8(in) % 9;

		for (k = 0; k < len && at + k < l->size; k++)
			l->base[at + k] = (char)fuzz_u8(in);
		break;
	}
	}
}

static const struct {
	size_t n, size;
} geoms[] = {{2, 1}, {3, 8}, {4, 64}, {8, 100}, {5, 4096}, {2, 48}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct shmk_opts o = {.spin_us = -1};
	struct lab l;
	uint8_t g = fuzz_u8(&in) % (sizeof(geoms) / sizeof(geoms[0]));
	int fd, steps;

	memset(&l, 0, sizeof(l));
	if (shmk_ring_create(NULL, geoms[g].n, geoms[g].size, &o, &l.q[0]) < 0)
		return 0;
	fd = shmk_ring_fd(l.q[0]);
	if (fd < 0 || shmk_ring_open_fd(fd, &o, &l.q[1]) < 0) {
		shmk_ring_close(l.q[0]);
		return 0;
	}
	l.base = (char *)shmk__ring_region(l.q[0])->hdr;
	l.size = shmk__ring_region(l.q[0])->size;
	l.n = geoms[g].n;
	l.node_size = geoms[g].size;
	for (steps = 0; in.left && steps < 256; steps++) {
		uint8_t op = fuzz_u8(&in);

		if (op & 0x80)
			step_poke(&l, &in, op);
		else
			step_call(&l, &in, op);
	}
	/* Leave with messages in hand: close must cope. */
	shmk_ring_close(l.q[1]);
	shmk_ring_close(l.q[0]);
	return 0;
}
