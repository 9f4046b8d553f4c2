/* SPDX-License-Identifier: MIT */
/*
 * lock.c - test_chaos's buffers and arrays, the objects behind the
 * robust read/write lock.  Two lockers play ping-pong on two control
 * events; between two strokes each writes its record into the control
 * buffer and array and checks both records, under the lock in each of
 * the ways the API offers (never torn, never older than last time), then
 * makes a round of calls on the victim buffer, array and event
 * (event.c).  The chaos scribbles on the writer word, the eventcounts
 * and the participants' read counts.
 */
#include "harness.h"

/* docs/format.md: the writer word's bits. */
#define RW_HELD	 (UINT64_C(1) << 62)
#define RW_DIRTY (UINT64_C(1) << 63)

/* What a lock, or a copy that takes it, may return (harness.h says why
 * each). */
static const int ok_lock[] = {EBADMSG, EOWNERDEAD, ETIMEDOUT, EAGAIN, 0};

static void rec_check(const struct rec *r, uint64_t who)
{
	if (r->seq == 0 && r->inv == 0 && r->who == 0)
		return; /* not written yet */
	if (r->inv != ~r->seq || r->who != who) {
		fprintf(stderr,
			"control: record %llu torn: seq %llu inv %llx "
			"who %llu\n",
			(unsigned long long)who, (unsigned long long)r->seq,
			(unsigned long long)r->inv, (unsigned long long)r->who);
		exit(1);
	}
}

struct lockers {
	struct shmk_buffer *cb, *vb;
	struct shmk_array *ca, *va;
	struct shmk_event *ping, *pong, *ve;
	uint64_t seq, other_buf, other_arr;
	int me;
};

/* One round on the control buffer and array: write our record, check
 * both, under the lock in each of the ways the API offers. */
static void control_round(struct lockers *L)
{
	struct rec mine = {++L->seq, ~L->seq, (uint64_t)L->me}, all[NLOCKERS];
	int other = 1 - L->me, i;

	if (L->seq % 4) {
		CHECK_OK(shmk_buffer_write(L->cb, (size_t)L->me * 64, &mine,
					   sizeof(mine), CTRL_MS));
	} else {
		CHECK_OK(shmk_buffer_lock(L->cb, SHMK_LOCK_WRITE, CTRL_MS));
		memcpy((char *)shmk_buffer_data(L->cb) + L->me * 64, &mine,
		       sizeof(mine));
		CHECK_OK(shmk_buffer_unlock(L->cb));
	}
	atomic_store(&book->buf_writes[L->me], L->seq);
	if (L->seq % 3) {
		for (i = 0; i < NLOCKERS; i++)
			CHECK_OK(shmk_buffer_read(L->cb, (size_t)i * 64,
						  &all[i], sizeof(all[i]),
						  CTRL_MS));
	} else {
		CHECK_OK(shmk_buffer_lock(L->cb, SHMK_LOCK_READ, CTRL_MS));
		for (i = 0; i < NLOCKERS; i++)
			memcpy(&all[i],
			       (char *)shmk_buffer_data(L->cb) + i * 64,
			       sizeof(all[i]));
		CHECK_OK(shmk_buffer_unlock(L->cb));
	}
	for (i = 0; i < NLOCKERS; i++)
		rec_check(&all[i], (uint64_t)i);
	CHECK(all[L->me].seq == L->seq);
	CHECK(all[other].seq >= L->other_buf);
	L->other_buf = all[other].seq;

	CHECK_OK(shmk_array_set(L->ca, (size_t)L->me, &mine));
	atomic_store(&book->arr_writes[L->me], L->seq);
	if (L->seq % 2) {
		CHECK_OK(shmk_array_read(L->ca, 0, all, NLOCKERS));
	} else {
		CHECK_OK(shmk_array_lock(L->ca, SHMK_LOCK_READ, CTRL_MS));
		memcpy(all, shmk_array_data(L->ca), sizeof(all));
		CHECK_OK(shmk_array_unlock(L->ca));
	}
	for (i = 0; i < NLOCKERS; i++)
		rec_check(&all[i], (uint64_t)i);
	CHECK(all[L->me].seq == L->seq);
	CHECK(all[other].seq >= L->other_arr);
	L->other_arr = all[other].seq;
}

static int lock_victim_open(struct lockers *L)
{
	if (!may_retry())
		return -1;
	if ((!L->vb &&
	     VICTIM(K_OPEN, ok_open,
		    shmk_buffer_open(n_vbuf, &wait_open, &L->vb)) < 0) ||
	    (!L->va && VICTIM(K_OPEN, ok_open,
			      shmk_array_open(n_varr, sizeof(struct rec),
					      &wait_open, &L->va)) < 0) ||
	    (!L->ve &&
	     VICTIM(K_OPEN, ok_open,
		    shmk_event_open(n_vev, &wait_open, &L->ve)) < 0)) {
		back_off(4);
		return -1;
	}
	return 0;
}

static void lock_victim_close(struct lockers *L)
{
	CHECK_OK(shmk_buffer_close(L->vb));
	CHECK_OK(shmk_array_close(L->va));
	CHECK_OK(shmk_event_close(L->ve));
	L->vb = NULL;
	L->va = NULL;
	L->ve = NULL;
}

static void victim_buffer(struct lockers *L)
{
	int how = rnd() % 2 ? SHMK_LOCK_WRITE : SHMK_LOCK_READ;
	size_t off = (size_t)(rnd() % BUF_SIZE), len;
	unsigned char tmp[256];
	uint64_t ver;
	long rc;

	len = (size_t)(rnd() % sizeof(tmp));
	if (len > BUF_SIZE - off)
		len = BUF_SIZE - off;
	memset(tmp, L->me, sizeof(tmp));
	rc = VICTIM(K_BUFFER, ok_lock,
		    shmk_buffer_lock(L->vb, how, (int)(rnd() % 3)));
	if (rc == 0 || rc == -EOWNERDEAD) {
		char *d = shmk_buffer_data(L->vb);

		CHECK(d != NULL);
		if (how == SHMK_LOCK_WRITE) {
			memset(d + off, L->me, len);
			VICTIM(K_BUFFER, ok_none,
			       shmk_buffer_write(L->vb, off, tmp, len, 0));
		} else {
			memcpy(tmp, d + off, len);
			VICTIM(K_BUFFER, ok_none,
			       shmk_buffer_read(L->vb, off, tmp, len, 0));
		}
		VICTIM(K_BUFFER, ok_none, shmk_buffer_unlock(L->vb));
	}
	VICTIM(K_BUFFER, ok_lock,
	       shmk_buffer_write(L->vb, off, tmp, len, (int)(rnd() % 3)));
	VICTIM(K_BUFFER, ok_lock,
	       shmk_buffer_read(L->vb, off, tmp, len, (int)(rnd() % 3)));
	ver = shmk_buffer_version(L->vb);
	VICTIM(K_BUFFER, ok_wait,
	       shmk_buffer_wait(L->vb, &ver, (int)(rnd() % 2)));
}

static void victim_array(struct lockers *L)
{
	int how = rnd() % 2 ? SHMK_LOCK_WRITE : SHMK_LOCK_READ;
	size_t i = (size_t)(rnd() % ARR_LEN), cnt;
	struct rec r[8] = {{0}};
	long rc;

	cnt = 1 + (size_t)(rnd() % 8);
	if (cnt > ARR_LEN - i)
		cnt = ARR_LEN - i;
	/* The array's own copies wait for the lock without a deadline, so
	 * a victim is only used with the lock taken first (with one). */
	rc = VICTIM(K_ARRAY, ok_lock,
		    shmk_array_lock(L->va, how, (int)(rnd() % 3)));
	if (rc != 0 && rc != -EOWNERDEAD)
		return;
	CHECK(shmk_array_data(L->va) != NULL);
	if (how == SHMK_LOCK_WRITE) {
		VICTIM(K_ARRAY, ok_none, shmk_array_set(L->va, i, r));
		VICTIM(K_ARRAY, ok_none, shmk_array_write(L->va, i, r, cnt));
	} else {
		VICTIM(K_ARRAY, ok_none, shmk_array_get(L->va, i, r));
		VICTIM(K_ARRAY, ok_none, shmk_array_read(L->va, i, r, cnt));
	}
	VICTIM(K_ARRAY, ok_none, shmk_array_unlock(L->va));
}

static void victim_round(struct lockers *L, uint64_t it)
{
	struct shmk_stat st;

	if (lock_victim_open(L) < 0)
		return;
	victim_buffer(L);
	victim_array(L);
	victim_event(L->ve);
	if (it % 32 == 0) {
		VICTIM(K_OPEN, ok_stat, shmk_stat(n_vbuf, &st));
		VICTIM(K_OPEN, ok_stat, shmk_stat(n_varr, &st));
		VICTIM(K_OPEN, ok_stat, shmk_stat(n_vev, &st));
	}
	/* A fresh look now and then: the epoch may have moved on. */
	if (it % 64 == 0)
		lock_victim_close(L);
}

/*
 * Locker 0 and locker 1 play ping-pong on two control events (each round
 * is one set and one wait of each), and between two strokes each does a
 * round on the control buffer and array and one on the victims.
 */
int locker(void *arg)
{
	struct lockers L = {.me = (int)(uintptr_t)arg};
	int fds = count_fds();
	struct shmk_opts o = {.wait_ms = 5000};
	uint64_t it;

	rnd_seed(30 + (unsigned)L.me);
	CHECK_OK(shmk_buffer_open(n_cbuf, &o, &L.cb));
	CHECK_OK(shmk_array_open(n_carr, sizeof(struct rec), &o, &L.ca));
	CHECK_OK(shmk_event_open(n_cping, &o, &L.ping));
	CHECK_OK(shmk_event_open(n_cpong, &o, &L.pong));
	for (it = 0;; it++) {
		if (L.me == 0) {
			if (stopping()) {
				atomic_store(&book->ev_done, 1);
				CHECK_OK(shmk_event_set(L.ping));
				break;
			}
			CHECK_OK(shmk_event_set(L.ping));
			control_round(&L);
			victim_round(&L, it);
			CHECK_OK(shmk_event_wait(L.pong, CTRL_MS));
		} else {
			CHECK_OK(shmk_event_wait(L.ping, CTRL_MS));
			if (atomic_load(&book->ev_done))
				break;
			control_round(&L);
			victim_round(&L, it);
			CHECK_OK(shmk_event_set(L.pong));
		}
		atomic_fetch_add(&book->rounds[L.me], 1);
	}
	lock_victim_close(&L);
	CHECK_OK(shmk_buffer_close(L.cb));
	CHECK_OK(shmk_array_close(L.ca));
	CHECK_OK(shmk_event_close(L.ping));
	CHECK_OK(shmk_event_close(L.pong));
	CHECK_EQ(count_fds(), fds);
	return 0;
}

/* Each locker's last record is in the control buffer and array, and the
 * two made as many rounds. */
void lockers_final(void)
{
	struct shmk_buffer *cb;
	struct shmk_array *ca;
	struct rec r;
	int i;

	CHECK_OK(shmk_buffer_open(n_cbuf, NULL, &cb));
	CHECK_OK(shmk_array_open(n_carr, sizeof(struct rec), NULL, &ca));
	for (i = 0; i < NLOCKERS; i++) {
		CHECK_OK(shmk_buffer_read(cb, (size_t)i * 64, &r, sizeof(r),
					  1000));
		rec_check(&r, (uint64_t)i);
		CHECK_EQ(r.seq, atomic_load(&book->buf_writes[i]));
		CHECK(r.seq > 0);
		CHECK_OK(shmk_array_get(ca, (size_t)i, &r));
		rec_check(&r, (uint64_t)i);
		CHECK_EQ(r.seq, atomic_load(&book->arr_writes[i]));
	}
	CHECK_OK(shmk_buffer_close(cb));
	CHECK_OK(shmk_array_close(ca));
	CHECK(atomic_load(&book->rounds[0]) > 0);
	CHECK_EQ(atomic_load(&book->rounds[0]), atomic_load(&book->rounds[1]));
}

/* The owner ids of the first slots in use: plausible lock owners. */
static int owner_ids(struct target *t, uint64_t *h, int max)
{
	int k, n = 0;

	for (k = 0; k < 8 && n < max; k++) {
		uint64_t gen = load(t, O_PART + 64 * (uint64_t)k, 4);

		if (gen)
			h[n++] = ((uint64_t)(k + 1) << 32) | gen;
	}
	return n;
}

void pick_lock(struct target *t, struct field *f)
{
	uint64_t ids[8];
	int nid = owner_ids(t, ids, 8), i;

	switch (rnd() % 6) {
	case 0:
	case 1:
	case 2:
		f->off = O_CTL; /* the writer word */
		f->width = 8;
		hint(f, RW_DIRTY);
		hint(f, RW_HELD);
		hint(f, ((uint64_t)129 << 32) | 1);
		hint(f, ((uint64_t)128 << 32) | 1 | RW_HELD); /* dead slot */
		hint(f, (uint64_t)1 << 40);
		for (i = 0; i < nid && i < 3; i++) {
			hint(f, ids[i]);
			hint(f, ids[i] | RW_HELD | (rnd() % 2 ? RW_DIRTY : 0));
		}
		break;
	case 3:
		f->off = O_CTL + 0x40; /* the lock's eventcount */
		f->width = 4;
		break;
	case 4:
		if (t->type == T_BUFFER) {
			f->off = O_CTL + 0x80; /* the changed eventcount */
			f->width = 4;
			break;
		}
		/* fall through */
	default:
		f->off = O_PART + 64 * (rnd() % 4) + 32; /* read counts */
		f->width = 8;
		hint(f, 1);
		hint(f, (uint64_t)-1);
	}
}
