/* SPDX-License-Identifier: MIT */
/*
 * chaos.c - test_chaos's hostile peer.  It maps the victims straight
 * from their files, read and write, and again and again picks one, a
 * field of it (a header or participant field of any kind, or one its
 * kind's file picks) and a value: random, maximal, negative, zero, off by
 * one, or one the field could plausibly hold.  Now and then it puts a
 * value back a little later, or flips a word between two values in a
 * tight loop.  Every second or so a new epoch: fresh victims under the
 * same names (the old ones shut down); the rpc victim and its channels'
 * rings it finds as they come (rpc.c).
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "harness.h"

#define MAX_RESTORES 64

struct restore {
	struct target *t;
	unsigned gen;
	uint64_t off, orig, when;
	int width;
};

struct chaos {
	struct target t[MAX_TARGETS]; /* T_*, then channel rings */
	struct restore rs[MAX_RESTORES];
	struct shmk_ring *ring;
	struct shmk_buffer *buf;
	struct shmk_array *arr;
	struct shmk_event *ev;
	struct shmk_topic *topic, *ltopic;
};

uint64_t load(struct target *t, uint64_t off, int width)
{
	void *p = t->map + off;

	switch (width) {
	case 1:
		return __atomic_load_n((uint8_t *)p, __ATOMIC_RELAXED);
	case 2:
		return __atomic_load_n((uint16_t *)p, __ATOMIC_RELAXED);
	case 4:
		return __atomic_load_n((uint32_t *)p, __ATOMIC_RELAXED);
	default:
		return __atomic_load_n((uint64_t *)p, __ATOMIC_RELAXED);
	}
}

void store(struct target *t, uint64_t off, int width, uint64_t v)
{
	void *p = t->map + off;

	switch (width) {
	case 1:
		__atomic_store_n((uint8_t *)p, (uint8_t)v, __ATOMIC_RELAXED);
		break;
	case 2:
		__atomic_store_n((uint16_t *)p, (uint16_t)v, __ATOMIC_RELAXED);
		break;
	case 4:
		__atomic_store_n((uint32_t *)p, (uint32_t)v, __ATOMIC_RELAXED);
		break;
	default:
		__atomic_store_n((uint64_t *)p, v, __ATOMIC_RELAXED);
	}
}

void unmap(struct target *t)
{
	if (t->map)
		munmap(t->map, t->size);
	t->map = NULL;
	t->gen++;
}

int map_fd(struct target *t, int fd, int type)
{
	struct stat st;
	uint64_t n, s, align, total;
	void *m;

	if (fstat(fd, &st) < 0 || st.st_size < HDR_SIZE)
		return -1;
	m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 fd, 0);
	if (m == MAP_FAILED)
		return -1;
	unmap(t);
	t->map = m;
	t->size = (size_t)st.st_size;
	t->dev = st.st_dev;
	t->ino = st.st_ino;
	t->type = type;
	t->n = 0;
	if (type != T_RING && type != T_CHAN)
		return 0;
	/* The geometry as it is now (maybe scribbled on already): used only
	 * if the layout it gives fits the file. */
	n = load(t, O_GEOM, 8);
	s = load(t, O_GEOM + 8, 8);
	if (n < 2 || n > 4096 || s < 1 || s > (1u << 20))
		return 0;
	align = s >= 4096 ? 4096 : 64;
	t->stride = (s + align - 1) / align * align;
	t->data = (RING_DESC + 64 * n + align - 1) / align * align;
	total = t->data + n * t->stride;
	if (total > t->size)
		return 0;
	t->n = n;
	t->node = s;
	return 0;
}

static void map_path(struct target *t, const char *path, int type)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);

	CHECK(fd >= 0);
	CHECK(map_fd(t, fd, type) == 0);
	close(fd);
}

void shm_path(char *buf, size_t cap, const char *name)
{
	CHECK_OK(shmk_path(name, buf, cap));
}

/* unlink(2): shmk_unlink() keeps away from a file whose magic is wrong,
 * and the chaos may have made it so. */
static void remove_victims(void)
{
	const char *names[] = {n_vring, n_vbuf,	  n_varr,
			       n_vev,	n_vtopic, n_vltopic};
	char path[256];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		shm_path(path, sizeof(path), names[i]);
		unlink(path);
	}
}

/* A new epoch: fresh victims under the same names; the old ones are
 * shut down (their users get -EPIPE, reopen and find the new ones). */
static void new_victims(struct chaos *c)
{
	struct shmk_ring *r = c->ring;
	struct shmk_buffer *b = c->buf;
	struct shmk_array *a = c->arr;
	struct shmk_event *e = c->ev;
	struct shmk_topic *tp = c->topic, *ltp = c->ltopic;
	struct shmk_opts lossy = {.flags = SHMK_F_LOSSY};
	char path[256];

	remove_victims();
	CHECK_OK(shmk_ring_create(n_vring, 16, NODE, NULL, &c->ring));
	CHECK_OK(shmk_buffer_create(n_vbuf, BUF_SIZE, NULL, &c->buf));
	CHECK_OK(shmk_array_create(n_varr, sizeof(struct rec), ARR_LEN, NULL,
				   &c->arr));
	CHECK_OK(shmk_event_create(n_vev, 0, 0, NULL, &c->ev));
	CHECK_OK(shmk_topic_create(n_vtopic, TOPIC_CAP, TOPIC_MAX, NULL,
				   &c->topic));
	CHECK_OK(shmk_topic_create(n_vltopic, TOPIC_CAP, TOPIC_MAX, &lossy,
				   &c->ltopic));
	topic_check_layout(c->topic);
	shm_path(path, sizeof(path), n_vring);
	map_path(&c->t[T_RING], path, T_RING);
	shm_path(path, sizeof(path), n_vbuf);
	map_path(&c->t[T_BUFFER], path, T_BUFFER);
	shm_path(path, sizeof(path), n_varr);
	map_path(&c->t[T_ARRAY], path, T_ARRAY);
	shm_path(path, sizeof(path), n_vev);
	map_path(&c->t[T_EVENT], path, T_EVENT);
	shm_path(path, sizeof(path), n_vtopic);
	map_path(&c->t[T_TOPIC], path, T_TOPIC);
	shm_path(path, sizeof(path), n_vltopic);
	map_path(&c->t[T_LTOPIC], path, T_LTOPIC);
	CHECK_OK(shmk_ring_close(r));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_array_close(a));
	CHECK_OK(shmk_event_close(e));
	CHECK_OK(shmk_topic_close(tp));
	CHECK_OK(shmk_topic_close(ltp));
	atomic_fetch_add(&book->epochs, 1);
}

void hint(struct field *f, uint64_t v)
{
	if (f->nh < 12)
		f->h[f->nh++] = v;
}

/* A participant slot k of the table (mostly one in use). */
static void pick_part(struct target *t, struct field *f)
{
	uint64_t k = rnd() % 4 ? rnd() % 4 : rnd() % 128;
	uint64_t base = O_PART + 64 * k;

	switch (rnd() % 6) {
	case 0:
		f->off = base; /* gen */
		f->width = 4;
		hint(f, 0);
		hint(f, load(t, base, 4) + 1);
		break;
	case 1:
		f->off = base + 4 + 4 * (rnd() % 2); /* pid, uid */
		f->width = 4;
		break;
	case 2:
		f->off = base + 12; /* flags */
		f->width = 4;
		hint(f, 1);
		hint(f, 2);
		hint(f, 3);
		break;
	case 3:
		f->off = base + 16 + 8 * (rnd() % 2); /* attach_ns, wake */
		f->width = 8;
		/* Another participant's wake-up token, or none. */
		hint(f, load(t, O_PART + 64 * (rnd() % 4) + 24, 8));
		hint(f, 0);
		break;
	default:
		/* obj[] (read counts), armed. */
		f->off = base + 32 + 8 * (rnd() % 4);
		f->width = 8;
		hint(f, 1);
		hint(f, 2);
		hint(f, (uint64_t)INT64_MAX);
	}
}

static void pick_header(struct target *t, struct field *f)
{
	uint64_t i;

	switch (rnd() % 10) {
	case 0:
		switch (rnd() % 5) {
		case 0:
			f->off = O_MAGIC;
			f->width = 4;
			break;
		case 1:
			f->off = O_ENDIAN;
			f->width = 4;
			hint(f, 0x04030201);
			break;
		case 2:
			f->off = O_VERSION;
			f->width = 2;
			hint(f, 2);
			break;
		case 3:
			f->off = O_KIND;
			f->width = 2;
			hint(f, rnd() % 7);
			break;
		default:
			f->off = O_HDR_SIZE;
			f->width = 4;
			hint(f, 4096);
		}
		break;
	case 1:
		f->off = O_TOTAL;
		f->width = 8;
		hint(f, t->size + 1);
		hint(f, t->size - 1);
		hint(f, (uint64_t)1 << 46);
		hint(f, ((uint64_t)1 << 46) + 1);
		break;
	case 2:
		i = rnd() % 3 ? rnd() % 3 : rnd() % 8;
		f->off = O_GEOM + 8 * i;
		f->width = 8;
		hint(f, 1);
		hint(f, 2);
		hint(f, (uint64_t)1 << 40);
		hint(f, ((uint64_t)1 << 40) + 1);
		break;
	case 3:
		f->off = O_STATE;
		f->width = 4;
		hint(f, 0);
		hint(f, 1);
		hint(f, 2);
		hint(f, 3);
		break;
	case 4:
		f->off = rnd() % 2 ? O_STATE_SEQ : O_NSLOTS;
		f->width = 4;
		hint(f, 128);
		hint(f, 129);
		break;
	case 5:
		f->off = O_COUNTER + 8 * (rnd() % 16);
		f->width = 8;
		break;
	default:
		pick_part(t, f);
	}
}

/* A value for a field whose value now is orig. */
static uint64_t pick_value(const struct field *f, uint64_t orig)
{
	uint64_t v, mask = f->width == 8 ? UINT64_MAX
					 : (UINT64_C(1) << (8 * f->width)) - 1;
	unsigned r = (unsigned)(rnd() % 14);

	if (r >= 10 && !f->nh)
		r = 0;
	switch (r) {
	case 0:
		v = rnd();
		break;
	case 1:
		v = 0;
		break;
	case 2:
		v = UINT64_MAX;
		break;
	case 3: /* the largest positive */
		v = mask >> 1;
		break;
	case 4: /* the most negative */
		v = (mask >> 1) + 1;
		break;
	case 5: /* small negatives */
		v = (uint64_t) - (int64_t)(1 + rnd() % 4);
		break;
	case 6:
		v = orig + 1;
		break;
	case 7:
		v = orig - 1;
		break;
	case 8:
		v = orig ^ (UINT64_C(1) << (rnd() % (8 * (unsigned)f->width)));
		break;
	case 9:
		v = rnd() % 5;
		break;
	default:
		v = f->h[rnd() % (unsigned)f->nh];
	}
	return v & mask;
}

static void poke(struct chaos *c, struct target *t)
{
	struct field f = {0};
	uint64_t orig, v;
	int i, header;

	header = rnd() % 5 == 0;
	if (header) {
		pick_header(t, &f);
	} else {
		switch (t->type) {
		case T_RING:
		case T_CHAN:
			pick_ring(t, &f);
			break;
		case T_BUFFER:
		case T_ARRAY:
			pick_lock(t, &f);
			break;
		case T_EVENT:
			pick_event(&f);
			break;
		case T_TOPIC:
		case T_LTOPIC:
			pick_topic(t, &f);
			break;
		default:
			pick_rpc(t, &f);
		}
	}
	if (!f.width || f.off + (uint64_t)f.width > t->size ||
	    f.off % (uint64_t)f.width)
		return;
	orig = load(t, f.off, f.width);
	v = pick_value(&f, orig);
	atomic_fetch_add(&book->pokes, 1);
	if (rnd() % 32 == 0) {
		/* Flip between two values while they read it. */
		uint64_t w = pick_value(&f, orig), end = check_now_ms() + 2;

		atomic_fetch_add(&book->hammers, 1);
		for (i = 0; check_now_ms() < end; i++)
			store(t, f.off, f.width, i & 1 ? v : w);
		if (rnd() % 2)
			store(t, f.off, f.width, orig);
		return;
	}
	store(t, f.off, f.width, v);
	/* A wrong header is mostly put back (the rpc object's always: it
	 * lives until the server restarts): with a wrong magic for good,
	 * every open would fail the same way. */
	if (header ? t->type != T_RPC && rnd() % 4 == 0 : rnd() % 3 != 0)
		return;
	/* Put it back a little later (the object has moved on meanwhile:
	 * another lie). */
	for (i = 0; i < MAX_RESTORES; i++)
		if (!c->rs[i].t) {
			c->rs[i] = (struct restore){.t = t,
						    .gen = t->gen,
						    .off = f.off,
						    .orig = orig,
						    .width = f.width,
						    .when = check_now_ms() +
							    rnd() % 30};
			break;
		}
}

static void restores(struct chaos *c)
{
	uint64_t now = check_now_ms();
	int i;

	for (i = 0; i < MAX_RESTORES; i++) {
		struct restore *r = &c->rs[i];

		if (!r->t || r->when > now)
			continue;
		if (r->t->map && r->t->gen == r->gen) {
			store(r->t, r->off, r->width, r->orig);
			atomic_fetch_add(&book->restores, 1);
		}
		r->t = NULL;
	}
}

static struct target *pick_target(struct chaos *c)
{
	struct target *chans[MAX_TARGETS];
	int n = 0, k;

	for (k = T_CHAN; k < MAX_TARGETS; k++)
		if (c->t[k].map)
			chans[n++] = &c->t[k];
	switch (rnd() % 16) {
	case 0:
	case 1:
	case 2:
		return &c->t[T_RING];
	case 3:
	case 4:
		return &c->t[T_BUFFER];
	case 5:
	case 6:
		return &c->t[T_ARRAY];
	case 7:
		return &c->t[T_EVENT];
	case 8:
		return c->t[T_RPC].map ? &c->t[T_RPC] : &c->t[T_RING];
	case 9:
	case 10:
	case 11:
		return &c->t[rnd() % 2 ? T_TOPIC : T_LTOPIC];
	default:
		return n ? chans[rnd() % (unsigned)n] : &c->t[T_RING];
	}
}

int chaos(void *arg)
{
	static struct chaos c;
	uint64_t epoch_end = 0, next_scan = 0, now;
	unsigned pause_us = 500;

	(void)arg;
	rnd_seed(1);
	while (!atomic_load(&book->stop_chaos)) {
		now = check_now_ms();
		if (now >= epoch_end) {
			new_victims(&c);
			epoch_end = now + 300 + rnd() % 1200;
			/* Some epochs are a storm, some a drizzle. */
			pause_us = (unsigned)(50 + rnd() % 3000);
		}
		if (now >= next_scan) {
			scan_rpc(c.t);
			next_scan = now + 20;
		}
		restores(&c);
		poke(&c, pick_target(&c));
		sleep_us((unsigned)(rnd() % (pause_us + 1)));
	}
	CHECK_OK(shmk_ring_close(c.ring));
	CHECK_OK(shmk_buffer_close(c.buf));
	CHECK_OK(shmk_array_close(c.arr));
	CHECK_OK(shmk_event_close(c.ev));
	CHECK_OK(shmk_topic_close(c.topic));
	CHECK_OK(shmk_topic_close(c.ltopic));
	remove_victims();
	return 0;
}
