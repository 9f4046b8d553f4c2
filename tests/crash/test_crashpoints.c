/* SPDX-License-Identifier: MIT */
/*
 * test_crashpoints - every crash point of the library, many times, then an
 * invariant checker (built with SHMK_CRASH_POINTS; docs/reliability.md has
 * the table of points and what a death at each must leave).
 *
 * For each point a victim process runs with SHMK_CRASH=NAME:N (N drawn at
 * random, so that it dies at a different pass each time) next to honest
 * peers that keep working; it is also killed from outside after a random
 * delay.  After each death, and at the end, the checker asserts:
 *
 *   ring:   every message whose write returned (logged only then) is
 *           delivered exactly once, none twice, in each writer's order per
 *           reader; the only ones missing are those counted lost, one per
 *           reader that died holding one; the nodes of dead writers are
 *           counted recovered, one each; the ring moves a lap within the
 *           bound after each death, and all its nodes can be filled again;
 *   lock:   the next locker gets the lock within the bound, with
 *           -EOWNERDEAD exactly when a writer died holding it; a locker
 *           told 0 always sees one whole version (never a torn one);
 *   region: a create killed at any step leaves no name (or a complete
 *           object, once named), no temporary file, and the name can be
 *           made again; an attach killed leaves no participant slot taken;
 *   rpc:    callers of a dead server fail with -EPIPE within the bound and
 *           connect to its successor; a server drops a dead client's
 *           channel (and its rings' names) within the bound and keeps
 *           serving the others;
 *   topic:  (both policies) a publisher's message is delivered whole to
 *           every subscriber if it died after publishing it, and skipped
 *           by every one and counted recovered, once, if it died before;
 *           every message whose publish returned is delivered to every
 *           subscriber (lossy: or counted lost), whole, in its
 *           publisher's order, and all subscribers see one order; a dead
 *           subscriber holds nobody up; the log moves past each death
 *           within the bound (a lap or two), holds as much as a fresh one at
 *           the end, and the slots of the dead are taken again (also:
 *           "topic slot reuse", below).
 *
 * The last part measures the bounds against kills from outside with the
 * waiter asleep (the worst case): how long a dead ring writer or reader
 * holds up the others (T_unblock), how long until the next locker gets a
 * dead holder's lock, how long until an rpc peer's death is noticed, and
 * how long a topic publisher or subscriber, stopped at its crash point
 * (and left alone while stopped: it is alive), then killed, holds up
 * the others.
 * Run it alone to read the figures:  ./build/tests/test_crashpoints
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

#include "check.h"

/* The documented bounds (docs/design.md): a dead owner is noticed within
 * 10 ms of its death; rpc's -EPIPE likewise.  Asserted with slack for a
 * loaded 2-CPU machine (ctest runs tests in parallel, the scheduler may
 * hold any process back): the typical case (mean or median) within
 * TYPICAL_MS, every single one within MAX_MS.  A recovery that does not
 * work fails both by far (seconds, or never). */
#define BOUND_MS   10
#define TYPICAL_MS (BOUND_MS + (CHECK_SANITIZED ? 400 : 200))
#define MAX_MS	   (CHECK_SANITIZED ? 5000 : 3000)
#define WEDGE_MS   5000 /* progress after a death: anything longer is a wedge */

#define MAXW   256   /* writer instances per run */
#define MAXSEQ 32768 /* messages per writer instance */
#define NODES  8

/* The topic: 64 descriptors and 128 granules, so that both run out by
 * turns; messages of 16 to 400 bytes (1 to 7 granules). */
#define TCAP   8192
#define TMAX   400
#define TSLOTS 64
#define TLOG   (1 << 18) /* messages each honest subscriber records */

struct book {
	_Atomic int stop, drain, bad;
	char why[240];
	/* ring */
	_Atomic uint64_t delivered;
	_Atomic uint64_t committed[MAXW]; /* seqs below were committed */
	_Atomic uint8_t seen[MAXW][MAXSEQ];
	/* lock */
	_Atomic uint64_t eod, version;
	/* rpc */
	_Atomic uint64_t calls_ok, epipe, last_epipe_ns, connects;
	/* topic: what each honest subscriber took (publisher << 32 | seq,
	 * in its order), what it lost, and what victims took */
	_Atomic uint64_t tgot[2], tlost[2], vgot;
	_Atomic uint64_t tlog[2][TLOG];
	/* timing: a child's moment */
	_Atomic int flag;
	_Atomic uint64_t t_done;
	_Atomic int rc_done;
};

static struct book *B;
static const char *g_ring, *g_buf, *g_arr, *g_rpc, *g_topic, *g_topic2;
static uint64_t g_rng;
static int g_failed_rounds;

static uint64_t rnd(void)
{
	g_rng ^= g_rng << 13;
	g_rng ^= g_rng >> 7;
	g_rng ^= g_rng << 17;
	return g_rng;
}

static void nap_us(unsigned us)
{
	struct timespec ts = {0, (long)us * 1000};

	nanosleep(&ts, NULL);
}

/* A child saw an invariant broken: the first one is kept and reported. */
static int bad(const char *fmt, ...)
{
	int zero = 0;

	if (atomic_compare_exchange_strong(&B->bad, &zero, 1)) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(B->why, sizeof(B->why), fmt, ap);
		va_end(ap);
	}
	return 1;
}

static void check_book(const char *what)
{
	if (atomic_load(&B->bad)) {
		fprintf(stderr, "%s: %s\n", what, B->why);
		exit(1);
	}
}

/* A wedge: with SHMK_CP_HOLD set, everyone stays as it is for a minute,
 * for a debugger to look. */
static void wedged(const char *what)
{
	fprintf(stderr, "%s\n", what);
	if (getenv("SHMK_CP_HOLD")) {
		fprintf(stderr, "holding (pid %d) for 60 s\n", (int)getpid());
		sleep_ms(60000);
	}
	exit(1);
}

/* Arms the crash point in this (child) process. */
static void arm(const char *point, unsigned n)
{
	char v[96];

	snprintf(v, sizeof(v), "%s:%u", point, n);
	CHECK_OK(setenv("SHMK_CRASH", v, 1));
}

struct role {
	int id;		   /* writer instance */
	const char *point; /* crash point, or NULL */
	unsigned n;	   /* its pass */
	int mode;
};

/* Spawns fn with a role (copied into the child by fork). */
static pid_t go(int (*fn)(void *), int id, const char *point, unsigned n,
		int mode)
{
	struct role ro = {.id = id, .point = point, .n = n, .mode = mode};

	return spawn(fn, &ro);
}

/* Waits for a victim that must die at its crash point. */
static void reap_killed(pid_t pid, const char *point)
{
	int st = wait_child(pid, 20000);

	if (st != 128 + SIGKILL) {
		check_book(point);
		fprintf(stderr, "%s: the victim ended with %d, not SIGKILL\n",
			point, st);
		exit(1);
	}
}

struct stat_ms {
	double max, sum;
	int n;
};

static void stat_add(struct stat_ms *s, double ms)
{
	if (ms < 0)
		ms = 0;
	if (ms > s->max)
		s->max = ms;
	s->sum += ms;
	s->n++;
}

/* ======================================================================
 * Ring: messages that check themselves
 * ====================================================================== */

struct rmsg {
	uint32_t w, pad;
	uint64_t seq, sum;
	unsigned char fill[40];
};
_Static_assert(sizeof(struct rmsg) == 64, "rmsg");

static uint64_t rsum(uint32_t w, uint64_t seq)
{
	return ((uint64_t)w + 1) * UINT64_C(0x9E3779B97F4A7C15) ^
	       (seq + 7) * UINT64_C(0xC2B2AE3D27D4EB4F);
}

static void rmsg_make(struct rmsg *m, uint32_t w, uint64_t seq)
{
	size_t j;

	m->w = w;
	m->pad = 0;
	m->seq = seq;
	m->sum = rsum(w, seq);
	for (j = 0; j < sizeof(m->fill); j++)
		m->fill[j] = (unsigned char)((m->sum >> (j % 8 * 8)) + j);
}

/* Validates a delivered message and records it; last[] is this reader's
 * last seq + 1 per writer (order). */
static int rmsg_take(const void *p, size_t len, uint64_t *last)
{
	struct rmsg m, want;

	if (len != sizeof(m))
		return bad("a message of %zu bytes", len);
	memcpy(&m, p, sizeof(m));
	if (m.w >= MAXW || m.seq >= MAXSEQ)
		return bad("a message from writer %u seq %llu", m.w,
			   (unsigned long long)m.seq);
	rmsg_make(&want, m.w, m.seq);
	if (memcmp(&m, &want, sizeof(m)))
		return bad("corrupt message w%u seq %llu", m.w,
			   (unsigned long long)m.seq);
	if (last[m.w] > m.seq)
		return bad("w%u: seq %llu after %llu", m.w,
			   (unsigned long long)m.seq,
			   (unsigned long long)last[m.w] - 1);
	last[m.w] = m.seq + 1;
	atomic_fetch_add(&B->seen[m.w][m.seq], 1);
	atomic_fetch_add(&B->delivered, 1);
	return 0;
}

static struct shmk_ring *ring_attach(void)
{
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_ring *r;

	CHECK_OK(shmk_ring_open(g_ring, &o, &r));
	return r;
}

/* mode 0: honest (paced, until stop); 1: victim at a crash point (flat
 * out); 2: victim killed from outside (paced). */
static int ring_writer(void *arg)
{
	struct role *ro = arg;
	struct shmk_ring *r = ring_attach();
	struct rmsg m;
	uint64_t seq;
	int rc;

	if (ro->point)
		arm(ro->point, ro->n);
	for (seq = 0; seq < MAXSEQ && !atomic_load(&B->stop); seq++) {
		rmsg_make(&m, (uint32_t)ro->id, seq);
		rc = shmk_ring_write(r, &m, sizeof(m), 5000);
		if (rc < 0)
			return bad("w%d: write: %s", ro->id, shmk_strerror(rc));
		/* Logged only once the write returned. */
		atomic_store(&B->committed[ro->id], seq + 1);
		if (ro->mode != 1)
			nap_us(ro->mode == 0 ? 100 : 20);
	}
	if (ro->mode == 1)
		return 3; /* never reached its crash point */
	shmk_ring_close(r);
	return 0;
}

/* Honest: shmk_ring_read until drained.  Victims: acquire, record (the
 * message was seen), release. */
static int ring_reader(void *arg)
{
	struct role *ro = arg;
	struct shmk_ring *r = ring_attach();
	static uint64_t last[MAXW];
	char buf[128];
	ssize_t n;

	if (ro->point)
		arm(ro->point, ro->n);
	for (;;) {
		if (ro->mode == 0) {
			n = shmk_ring_read(r, buf, sizeof(buf), 50);
			if (n >= 0) {
				if (rmsg_take(buf, (size_t)n, last))
					return 1;
				continue;
			}
		} else {
			struct shmk_msg m;

			n = shmk_ring_acquire(r, &m, 50);
			if (n == 0) {
				if (rmsg_take(m.data, m.len, last))
					return 1;
				CHECK_OK(shmk_ring_release(r, &m));
				if (ro->mode == 2)
					nap_us(20);
				continue;
			}
		}
		if (n != -ETIMEDOUT)
			return bad("reader: %s", shmk_strerror((int)n));
		if (atomic_load(&B->drain))
			break;
	}
	if (ro->mode == 1)
		return 3;
	shmk_ring_close(r);
	return 0;
}

/* Waits for a lap of the ring past a death: the ring is not wedged. */
static double ring_lap_ms(uint64_t t_dead)
{
	uint64_t d0 = atomic_load(&B->delivered);

	while (atomic_load(&B->delivered) < d0 + NODES + 1) {
		check_book("ring");
		if (check_now_ns() - t_dead > (uint64_t)WEDGE_MS * 1000000) {
			wedged("ring wedged after a death");
		}
		nap_us(100);
	}
	return (double)(check_now_ns() - t_dead) / 1e6;
}

/* Fills every node again after draining: capacity is intact. */
static void ring_capacity(struct shmk_ring *r)
{
	struct rmsg m;
	char buf[128];
	int i;

	while (shmk_ring_read(r, buf, sizeof(buf), 0) >= 0)
		;
	for (i = 0; i < NODES; i++) {
		rmsg_make(&m, 0, (uint64_t)i);
		CHECK_OK(shmk_ring_write(r, &m, sizeof(m), 0));
	}
	CHECK_RC(shmk_ring_write(r, &m, sizeof(m), 0), -EAGAIN);
	for (i = 0; i < NODES; i++) {
		CHECK_EQ(shmk_ring_read(r, buf, sizeof(buf), 0), sizeof(m));
		rmsg_make(&m, 0, (uint64_t)i);
		CHECK(!memcmp(buf, &m, sizeof(m)));
	}
	CHECK_RC(shmk_ring_read(r, buf, sizeof(buf), 0), -EAGAIN);
}

enum { R_WRITER, R_READER };

/*
 * One victim of a ring or topic run: a writer with id w (made by writer)
 * or a reader (reader), at random unless point fixes the side.  It dies
 * at point, or, point NULL, is killed from outside within 6 ms.  Returns
 * the side that died; *t_dead is when it was reaped.
 */
static int kill_one(int (*writer)(void *), int (*reader)(void *),
		    const char *point, int side, int w, uint64_t *t_dead)
{
	int as = point ? side : (int)(rnd() % 2);
	unsigned n = 1 + (unsigned)(rnd() % 40);
	pid_t v;

	if (as == R_WRITER)
		v = go(writer, w, point, n, point ? 1 : 2);
	else
		v = go(reader, -1, point, n, point ? 1 : 2);
	if (point) {
		reap_killed(v, point);
	} else {
		sleep_ms((unsigned)(rnd() % 6));
		kill(v, SIGKILL);
		CHECK_EQ(wait_child(v, 20000), 128 + SIGKILL);
	}
	*t_dead = check_now_ns();
	return as;
}

/*
 * One run: honest writers 0 and 1 and an honest reader throughout;
 * rounds victims, writers or readers, die at point (or, point NULL, are
 * killed from outside at random).
 */
static void ring_run(const char *point, int side, int rounds)
{
	struct shmk_ring *r;
	struct shmk_ring_stats st;
	struct stat_ms lap = {0};
	pid_t hw[2], hr;
	int i, w, wdeaths = 0, rdeaths = 0, expect_missing = 0, failed_counts;
	uint64_t seq, missing = 0, logged = 0;

	memset(B, 0, sizeof(*B));
	CHECK_OK(shmk_ring_create(g_ring, NODES, 64, NULL, &r));
	hw[0] = go(ring_writer, 0, NULL, 0, 0);
	hw[1] = go(ring_writer, 1, NULL, 0, 0);
	hr = go(ring_reader, -1, NULL, 0, 0);
	for (i = 0; i < rounds; i++) {
		uint64_t t;
		int as = kill_one(ring_writer, ring_reader, point, side, 2 + i,
				  &t);

		if (as == R_WRITER)
			wdeaths++;
		else
			rdeaths++;
		stat_add(&lap, ring_lap_ms(t));
	}
	atomic_store(&B->stop, 1);
	i = wait_child(hw[0], 20000) | wait_child(hw[1], 20000);
	atomic_store(&B->drain, 1);
	i |= wait_child(hr, 20000);
	check_book(point ? point : "ring random");
	CHECK_EQ(i, 0);

	/* Exactly once: committed => delivered once (unless counted lost);
	 * nothing twice; nothing a writer never sent. */
	for (w = 0; w < 2 + rounds && w < MAXW; w++) {
		uint64_t c = atomic_load(&B->committed[w]);

		logged += c;
		for (seq = 0; seq < MAXSEQ; seq++) {
			unsigned s = atomic_load(&B->seen[w][seq]);

			if (s > 1) {
				fprintf(stderr,
					"w%d seq %llu delivered %u times\n", w,
					(unsigned long long)seq, s);
				exit(1);
			}
			if (seq < c && !s)
				missing++;
			/* The message a victim died in: readable only once
			 * it was published. */
			if (point && side == R_WRITER && w >= 2 && seq == c)
				CHECK_EQ(s, !strcmp(point, "ring_committed"));
			/* A victim's message past the one it died in. */
			if (seq > c && s) {
				fprintf(stderr,
					"w%d seq %llu delivered, never "
					"written\n",
					w, (unsigned long long)seq);
				exit(1);
			}
		}
	}
	ring_capacity(r);
	CHECK_OK(shmk_ring_stats(r, &st));
	/* Drained: every message read was counted written, and read or
	 * lost, never both: read + lost <= written always (what `shmk check`
	 * holds to).  A writer counts before it publishes, a reader after it
	 * gives its node back, so a death between the act and its count
	 * leaves written one higher: at ring_pre_commit (the message is
	 * then recovered, never read) and ring_released. */
	{
		uint64_t slack = 0;

		if (point && !strcmp(point, "ring_pre_commit"))
			slack = (uint64_t)wdeaths;
		else if (point && !strcmp(point, "ring_released"))
			slack = (uint64_t)rdeaths;
		else if (!point)
			slack = (uint64_t)(wdeaths + rdeaths);
		failed_counts =
			st.read + st.lost > st.written ||
			(point ? st.read + st.lost + slack != st.written
			       : st.read + st.lost + slack < st.written);
	}
	if (failed_counts) {
		fprintf(stderr,
			"%s: written %llu, read %llu, lost %llu, %d readers "
			"died\n",
			point ? point : "random",
			(unsigned long long)st.written,
			(unsigned long long)st.read,
			(unsigned long long)st.lost, rdeaths);
		exit(1);
	}
	if (point && side == R_WRITER) {
		/* Each death before publication leaves one node, recovered
		 * once; after it, none. */
		int pre = strcmp(point, "ring_committed") != 0;

		CHECK_EQ(st.recovered, pre ? (uint64_t)wdeaths : 0);
		CHECK_EQ(st.lost, 0);
	} else if (point) {
		/* A reader that dies holding its message loses it; one that
		 * gave the node back does not. */
		int holds = strcmp(point, "ring_released") != 0;

		CHECK_EQ(st.lost, holds ? (uint64_t)rdeaths : 0);
		CHECK_EQ(st.recovered, 0);
		expect_missing = !strcmp(point, "ring_acquired") ? rdeaths : 0;
	} else {
		CHECK(st.recovered <= (uint64_t)wdeaths);
		CHECK(st.lost <= (uint64_t)rdeaths);
	}
	if (point)
		CHECK_EQ(missing, expect_missing);
	else
		CHECK(missing <= st.lost);
	printf("  %-18s %2d deaths (%d writers, %d readers): %llu messages "
	       "logged, %llu missing = lost %llu, recovered %llu; a lap "
	       "after a death: max %.1f ms, mean %.1f ms\n",
	       point ? point : "ring, random kill", wdeaths + rdeaths, wdeaths,
	       rdeaths, (unsigned long long)logged, (unsigned long long)missing,
	       (unsigned long long)st.lost, (unsigned long long)st.recovered,
	       lap.max, lap.sum / lap.n);
	CHECK(lap.sum / lap.n <= TYPICAL_MS && lap.max <= MAX_MS);
	shmk_ring_close(r);
	CHECK_OK(shmk_unlink(g_ring));
}

/* ======================================================================
 * Locks: a buffer and an array whose every word holds the version
 * ====================================================================== */

#define BUF_SIZE 4096
#define ARR_LEN	 64
#define ARR_ELEM 64
#define WORDS	 (BUF_SIZE / 8)

struct obj {
	struct shmk_buffer *b;
	struct shmk_array *a;
};

static void obj_open(struct obj *o, int array)
{
	struct shmk_opts op = {.wait_ms = 5000};

	memset(o, 0, sizeof(*o));
	if (array)
		CHECK_OK(shmk_array_open(g_arr, ARR_ELEM, &op, &o->a));
	else
		CHECK_OK(shmk_buffer_open(g_buf, &op, &o->b));
}

static void obj_close(struct obj *o)
{
	shmk_buffer_close(o->b);
	shmk_array_close(o->a);
}

static int obj_lock(struct obj *o, int how, int ms)
{
	return o->a ? shmk_array_lock(o->a, how, ms)
		    : shmk_buffer_lock(o->b, how, ms);
}

static int obj_unlock(struct obj *o)
{
	return o->a ? shmk_array_unlock(o->a) : shmk_buffer_unlock(o->b);
}

static uint64_t *obj_data(struct obj *o)
{
	return o->a ? shmk_array_data(o->a) : shmk_buffer_data(o->b);
}

static int obj_read(struct obj *o, uint64_t *dst)
{
	return o->a ? shmk_array_read(o->a, 0, dst, ARR_LEN)
		    : shmk_buffer_read(o->b, 0, dst, BUF_SIZE, 5000);
}

static int obj_write(struct obj *o, const uint64_t *src)
{
	return o->a ? shmk_array_write(o->a, 0, src, ARR_LEN)
		    : shmk_buffer_write(o->b, 0, src, BUF_SIZE, 5000);
}

static void fill_version(uint64_t *w, uint64_t v)
{
	int i;

	for (i = 0; i < WORDS; i++)
		w[i] = v;
}

/* One whole version: every word the same. */
static int whole(const uint64_t *w)
{
	int i;

	for (i = 1; i < WORDS; i++)
		if (w[i] != w[0])
			return 0;
	return 1;
}

/* mode 0: honest writer; 1: honest reader; 2: victim at a crash point;
 * 3: victim killed from outside. */
static int locker(void *arg)
{
	struct role *ro = arg;
	struct obj o;
	uint64_t buf[WORDS];
	unsigned i;
	int rc;

	obj_open(&o, ro->id);
	if (ro->point) /* the pass in the low bits, the work above */
		arm(ro->point, ro->n & 0xffff);
	for (i = 0; !atomic_load(&B->stop); i++) {
		int what = ro->mode < 2 ? ro->mode : (int)(i % 4);

		if (ro->mode == 2)
			what = (int)(ro->n >> 16);
		if (what == 0) { /* write under the lock, through the data */
			rc = obj_lock(&o, SHMK_LOCK_WRITE, 5000);
			if (rc == -EOWNERDEAD)
				atomic_fetch_add(&B->eod, 1);
			else if (rc)
				return bad("write lock: %s", shmk_strerror(rc));
			fill_version(obj_data(&o),
				     atomic_fetch_add(&B->version, 1) + 1);
			if (ro->mode == 3)
				nap_us((unsigned)(i % 200));
			CHECK_OK(obj_unlock(&o));
		} else if (what == 1) { /* read a copy */
			rc = obj_read(&o, buf);
			if (rc == -EOWNERDEAD)
				atomic_fetch_add(&B->eod, 1);
			else if (rc)
				return bad("read: %s", shmk_strerror(rc));
			else if (!whole(buf))
				return bad("a torn version read with 0 "
					   "(%llu, %llu)",
					   (unsigned long long)buf[0],
					   (unsigned long long)buf[WORDS - 1]);
		} else if (what == 2) { /* a copy in, the lock taken inside */
			fill_version(buf, atomic_fetch_add(&B->version, 1) + 1);
			rc = obj_write(&o, buf);
			if (rc == -EOWNERDEAD)
				atomic_fetch_add(&B->eod, 1);
			else if (rc)
				return bad("write: %s", shmk_strerror(rc));
		} else { /* hold the read lock */
			rc = obj_lock(&o, SHMK_LOCK_READ, 5000);
			if (rc == -EOWNERDEAD)
				atomic_fetch_add(&B->eod, 1);
			else if (rc)
				return bad("read lock: %s", shmk_strerror(rc));
			CHECK_OK(obj_unlock(&o));
		}
		if (ro->mode < 2)
			nap_us(ro->mode == 0 ? 200 : 100);
	}
	if (ro->mode == 2)
		return 3;
	obj_close(&o);
	return 0;
}

static uint64_t owner_dead_count(int array)
{
	struct shmk_stat st;

	CHECK_OK(shmk_stat(array ? g_arr : g_buf, &st));
	return st.counter[1]; /* "owner_dead" */
}

/*
 * The owner_dead counter's rise since od0, once it has reached want or
 * 2 s have passed.  The recoverer counts just after its CAS frees the
 * lock, so the next locker can get in before the count: a recoverer
 * preempted between the two shows 0 for a moment.
 */
static uint64_t owner_dead_since(int array, uint64_t od0, uint64_t want)
{
	uint64_t od, t0 = check_now_ns();

	while ((od = owner_dead_count(array) - od0) < want &&
	       check_now_ns() - t0 < 2000000000ull)
		sleep_ms(1);
	return od;
}

/* A victim's work at each point: 0 lock+write, 2 write copy, 3 read lock. */
static int lock_work(const char *point)
{
	if (!strcmp(point, "lock_read_held"))
		return 3;
	if (!strcmp(point, "buffer_mid_write") ||
	    !strcmp(point, "array_mid_write"))
		return 2;
	return 0; /* lock_claimed, lock_write_held */
}

static void lock_run(const char *point, int array, int rounds)
{
	struct shmk_buffer *b = NULL;
	struct shmk_array *a = NULL;
	struct obj o;
	struct stat_ms lat = {0};
	uint64_t buf[WORDS];
	pid_t hw, hr, v;
	int i, torn = !point || lock_work(point) != 3, dirty_rounds = 0;
	int claim_only = point && !strcmp(point, "lock_claimed");

	memset(B, 0, sizeof(*B));
	if (array)
		CHECK_OK(shmk_array_create(g_arr, ARR_ELEM, ARR_LEN, NULL, &a));
	else
		CHECK_OK(shmk_buffer_create(g_buf, BUF_SIZE, NULL, &b));
	memset(&o, 0, sizeof(o));
	o.a = a;
	o.b = b;
	hw = go(locker, array, NULL, 0, 0);
	hr = go(locker, array, NULL, 0, 1);
	for (i = 0; i < rounds; i++) {
		uint64_t eod0 = atomic_load(&B->eod),
			 od0 = owner_dead_count(array);
		uint64_t t, od;
		int rc, saw;

		if (point) {
			unsigned n = 1 + (unsigned)(rnd() % 20);

			v = go(locker, array, point,
			       n | (unsigned)lock_work(point) << 16, 2);
			reap_killed(v, point);
		} else {
			v = go(locker, array, NULL, 0, 3);
			sleep_ms((unsigned)(rnd() % 8));
			kill(v, SIGKILL);
			CHECK_EQ(wait_child(v, 20000), 128 + SIGKILL);
		}
		/* The next locker: within the bound, told whether a writer
		 * died holding the lock. */
		t = check_now_ns();
		rc = obj_lock(&o, SHMK_LOCK_WRITE, 5000);
		stat_add(&lat, (double)(check_now_ns() - t) / 1e6);
		CHECK(rc == 0 || rc == -EOWNERDEAD);
		memcpy(buf, obj_data(&o), BUF_SIZE);
		/* Told 0: one whole version, whoever wrote last. */
		if (rc == 0 && !whole(buf)) {
			fprintf(stderr, "%s: torn data behind a clean lock\n",
				point ? point : "random");
			exit(1);
		}
		saw = rc == -EOWNERDEAD || atomic_load(&B->eod) > eod0;
		od = owner_dead_since(array, od0,
				      point && (torn || claim_only) ? 1 : 0);
		dirty_rounds += saw;
		if (point && torn && !claim_only) {
			/* Died holding the write lock: someone is told. */
			CHECK(saw);
			CHECK_EQ(od, 1);
		} else if (claim_only) {
			/* Died before draining the readers: it wrote nothing,
			 * its claim is taken away and nobody is told. */
			CHECK(!saw);
			CHECK_EQ(od, 1);
		} else if (point) {
			CHECK(!saw); /* a dead reader tears nothing */
			CHECK_EQ(od, 0);
		} else {
			CHECK(od <= 1);
		}
		fill_version(obj_data(&o),
			     atomic_fetch_add(&B->version, 1) + 1);
		CHECK_OK(obj_unlock(&o)); /* repaired: clean again */
		check_book(point ? point : "lock random");
	}
	atomic_store(&B->stop, 1);
	i = wait_child(hw, 20000) | wait_child(hr, 20000);
	check_book(point ? point : "lock random");
	CHECK_EQ(i, 0);
	CHECK_OK(obj_lock(&o, SHMK_LOCK_WRITE, 0)); /* clean, free */
	CHECK(whole(obj_data(&o)));
	CHECK_OK(obj_unlock(&o));
	printf("  %-18s %2d deaths (%s): -EOWNERDEAD after %d; next "
	       "locker after the death: max %.2f ms, mean %.2f ms\n",
	       point ? point : "lock, random kill", rounds,
	       array ? "array" : "buffer", dirty_rounds, lat.max,
	       lat.sum / lat.n);
	CHECK(lat.sum / lat.n <= TYPICAL_MS && lat.max <= MAX_MS);
	shmk_buffer_close(b);
	shmk_array_close(a);
	CHECK_OK(shmk_unlink(array ? g_arr : g_buf));
}

/* ======================================================================
 * Region: creates and attaches killed at every step
 * ====================================================================== */

static const char *reg_name(int round, int i)
{
	static char b[128];

	snprintf(b, sizeof(b), "t%d.reg.%d.%d", (int)check_main_pid, round, i);
	return b;
}

/* Objects named .shmk-tmp.* in /dev/shm: the fallback's leftovers. */
static int count_tmp(void)
{
	char dir[4096], entry[256];
	struct dirent *e;
	int n = 0;
	DIR *d;

	/* A scan: region/create.c's temporary files have no object name. */
	CHECK_OK(check_shm_entry("x", dir, sizeof(dir), entry, sizeof(entry)));
	d = opendir(dir);
	CHECK(d != NULL);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, ".shmk-tmp.", 10))
			n++;
	closedir(d);
	return n;
}

static int creator(void *arg)
{
	struct role *ro = arg;
	struct shmk_buffer *b;
	struct shmk_opts o = {.wait_ms = 1000};
	int i;

	arm(ro->point, ro->n);
	for (i = 0; i < 64; i++) {
		if (ro->mode)
			CHECK_OK(shmk_buffer_open(g_buf, &o, &b));
		else
			CHECK_OK(shmk_buffer_create(reg_name(ro->id, i), 4096,
						    NULL, &b));
		/* kept open: they die with the process */
	}
	return 3;
}

static void region_run(const char *point, int rounds)
{
	int attach = !strcmp(point, "region_attach");
	int linked = !strcmp(point, "region_linked");
	int i, j, base = count_ours(), tmp0 = count_tmp(), maxn = 0;
	struct shmk_buffer *b = NULL, *x;
	struct shmk_stat st;

	if (attach)
		CHECK_OK(shmk_buffer_create(g_buf, 4096, NULL, &b));
	for (i = 0; i < rounds; i++) {
		unsigned n = 1 + (unsigned)(rnd() % (attach ? 4 : 6));
		pid_t v = go(creator, i, point, n, attach);

		if (n > (unsigned)maxn)
			maxn = (int)n;
		reap_killed(v, point);
		if (attach) {
			/* No slot stays taken: only ours is alive. */
			CHECK_OK(shmk_stat(g_buf, &st));
			CHECK_EQ(st.nalive, 1);
			continue;
		}
		/* The creates before the fatal one are whole objects. */
		for (j = 0; j + 1 < (int)n; j++) {
			CHECK_OK(shmk_buffer_open(reg_name(i, j), NULL, &x));
			CHECK_EQ(shmk_buffer_size(x), 4096);
			shmk_buffer_close(x);
			CHECK_OK(shmk_unlink(reg_name(i, j)));
		}
		/* The fatal one: nothing, or (once named) a whole object;
		 * the name can be made again either way. */
		j = (int)n - 1;
		if (linked) {
			CHECK_OK(shmk_stat(reg_name(i, j), &st));
			CHECK_EQ(st.state, SHMK_STATE_READY);
			CHECK_EQ(st.creator_alive, 0);
			CHECK_OK(shmk_buffer_open(reg_name(i, j), NULL, &x));
			shmk_buffer_close(x);
			CHECK_OK(shmk_unlink(reg_name(i, j)));
		} else {
			CHECK_RC(shmk_stat(reg_name(i, j), &st), -ENOENT);
		}
		CHECK_OK(shmk_buffer_create(reg_name(i, j), 4096, NULL, &x));
		shmk_buffer_close(x);
		CHECK_OK(shmk_unlink(reg_name(i, j)));
		CHECK_EQ(count_ours(), base);
		CHECK_EQ(count_tmp(), tmp0);
	}
	if (attach) {
		/* More deaths than slots: the table never fills. */
		CHECK_OK(shmk_stat(g_buf, &st));
		CHECK(st.nparts <= 1 + maxn);
		shmk_buffer_close(b);
		CHECK_OK(shmk_unlink(g_buf));
	}
	CHECK_EQ(count_ours(), base);
	printf("  %-18s %2d deaths: %s\n", point, rounds,
	       attach	? "no participant slot stays taken"
	       : linked ? "a whole object under its name, made again"
			: "no name, no temporary file, made again");
}

/* ======================================================================
 * RPC: servers and clients killed at every step
 * ====================================================================== */

#define RPC_NODE 256 /* 208 bytes of message per frame */
#define RPC_BIG	 1500

static int echo(void *arg, struct shmk_rpc_req *rq)
{
	(void)arg;
	if (rq->len >= 4 && !memcmp(rq->data, "slow", 4))
		sleep_ms(2000); /* a call in flight for the timing tests */
	rq->reply = rq->data;
	rq->reply_len = rq->len;
	return 0;
}

static int server(void *arg)
{
	struct role *ro = arg;
	struct shmk_rpc_opts so = {.handler = echo,
				   .nodes = 16,
				   .node_size = RPC_NODE,
				   .max_msg = 1 << 16};
	struct shmk_rpc *srv;
	uint64_t end = check_now_ns() + 5000000000u;
	int rc;

	if (ro->point)
		arm(ro->point, ro->n);
	/* The name is taken over from a dead server (its creator gone). */
	while ((rc = shmk_rpc_serve(g_rpc, &so, &srv)) == -EADDRINUSE &&
	       check_now_ns() < end)
		sleep_ms(1);
	if (rc < 0)
		return bad("serve: %s", shmk_strerror(rc));
	atomic_store(&B->flag, 1);
	while (!atomic_load(&B->stop))
		sleep_ms(2);
	shmk_rpc_close(srv);
	return ro->point ? 3 : 0;
}

static void req_fill(unsigned char *p, size_t len, uint64_t salt)
{
	size_t j;

	for (j = 0; j < len; j++)
		p[j] = (unsigned char)(salt * 31 + j * 7);
}

/*
 * mode 0: honest client, one connection, calls until stop (reconnects
 * after -EPIPE); 1: honest client connecting for each call; 2: victim:
 * connect, one multi-frame call, close, again.
 */
static int client(void *arg)
{
	struct role *ro = arg;
	struct shmk_rpc_opts co = {.wait_ms = 5000};
	struct shmk_rpc *ep = NULL;
	struct shmk_rpc_result res;
	unsigned char req[RPC_BIG], rep[RPC_BIG];
	uint64_t k;
	int rc;

	if (ro->point)
		arm(ro->point, ro->n);
	for (k = 1; !atomic_load(&B->stop); k++) {
		size_t len = ro->mode == 2 ? RPC_BIG : 1 + (k * 977) % RPC_BIG;

		if (!ep) {
			rc = shmk_rpc_connect(g_rpc, &co, &ep);
			if (rc == -ECONNREFUSED || rc == -ETIMEDOUT) {
				ep = NULL; /* the server died meanwhile */
				continue;
			}
			if (rc < 0)
				return bad("connect: %s", shmk_strerror(rc));
			atomic_fetch_add(&B->connects, 1);
		}
		req_fill(req, len, k + (uint64_t)ro->mode * 1000003);
		rc = shmk_rpc_call(ep, req, len, rep, sizeof(rep), &res, 5000);
		if (rc == -EPIPE && ro->mode != 2) {
			atomic_store(&B->last_epipe_ns, check_now_ns());
			atomic_fetch_add(&B->epipe, 1);
			shmk_rpc_close(ep);
			ep = NULL;
			continue;
		}
		if (rc < 0)
			return bad("call: %s", shmk_strerror(rc));
		if (res.len != len || memcmp(req, rep, len))
			return bad("a wrong reply");
		atomic_fetch_add(&B->calls_ok, 1);
		if (ro->mode) {
			shmk_rpc_close(ep);
			ep = NULL;
		}
	}
	shmk_rpc_close(ep);
	return ro->mode == 2 ? 3 : 0;
}

/* The server's view: clients attached, and files named after the object
 * (channel rings are anonymous: there must never be any). */
static void rpc_view(uint64_t *clients, int *named)
{
	char name[128];
	struct shmk_stat st;

	*clients = shmk_stat(g_rpc, &st) == 0 ? st.counter[11] : 0;
	/* Files that must not exist, of any type. */
	snprintf(name, sizeof(name), "%s.", g_rpc);
	*named = count_entries(name);
}

/* Waits for progress: n more calls answered. */
static double rpc_progress_ms(uint64_t t0, uint64_t n)
{
	uint64_t c0 = atomic_load(&B->calls_ok), t1 = check_now_ns();

	while (atomic_load(&B->calls_ok) < c0 + n) {
		check_book("rpc");
		if (check_now_ns() - t1 > (uint64_t)WEDGE_MS * 1000000 * 2) {
			wedged("rpc: no call answered for a while");
		}
		nap_us(200);
	}
	return (double)(check_now_ns() - t0) / 1e6;
}

static void wait_flag(void)
{
	uint64_t t0 = check_now_ns();

	while (!atomic_load(&B->flag)) {
		check_book("wait");
		CHECK(check_now_ns() - t0 < 10000000000u);
		nap_us(200);
	}
}

/*
 * Server deaths: a server that dies at point (or at random); an honest
 * client keeps calling (or connecting, for the accept points).  Client
 * deaths: an honest server and client; victims die at point.
 */
static void rpc_run(const char *point, int server_side, int rounds)
{
	const char *p = point && !strcmp(point, "rpc_mid_reply")
				? "rpc_mid_message"
				: point;
	int churn = point && !strncmp(point, "rpc_accept", 10);
	struct stat_ms det = {0}, prog = {0};
	pid_t srv, hc, v;
	uint64_t clients;
	int i, named;

	memset(B, 0, sizeof(*B));
	srv = go(server, 0, server_side ? p : NULL,
		 1 + (unsigned)(rnd() % (churn ? 4 : 12)), 0);
	if (!server_side)
		wait_flag();
	hc = go(client, 0, NULL, 0, churn);
	for (i = 0; i < rounds; i++) {
		uint64_t t, e0 = atomic_load(&B->epipe);

		if (server_side) {
			if (point) {
				reap_killed(srv, p);
			} else {
				rpc_progress_ms(check_now_ns(), 1);
				sleep_ms((unsigned)(rnd() % 20));
				kill(srv, SIGKILL);
				CHECK_EQ(wait_child(srv, 20000), 128 + SIGKILL);
			}
			t = check_now_ns();
			if (!churn) {
				/* The caller was told -EPIPE, at once. */
				while (atomic_load(&B->epipe) == e0) {
					check_book(p ? p : "rpc random");
					CHECK(check_now_ns() - t <
					      (uint64_t)WEDGE_MS * 1000000);
					nap_us(100);
				}
				stat_add(&det,
					 (double)((int64_t)atomic_load(
							  &B->last_epipe_ns) -
						  (int64_t)t) /
						 1e6);
			}
			/* A successor takes the name over, and serves. */
			atomic_store(&B->flag, 0);
			srv = go(server, 0, point && i + 1 < rounds ? p : NULL,
				 1 + (unsigned)(rnd() % (churn ? 4 : 12)), 0);
			/* A successor that is a victim too shows progress by
			 * reaching its own crash point; an honest one, by
			 * answering. */
			if (!point || i + 1 == rounds)
				stat_add(&prog, rpc_progress_ms(t, 3));
		} else {
			if (point) {
				v = go(client, 0, p,
				       1 + (unsigned)(rnd() %
						      (strncmp(p, "rpc_connect",
							       11)
							       ? 20
							       : 4)),
				       2);
				reap_killed(v, p);
			} else {
				v = go(client, 0, NULL, 0, 2);
				sleep_ms((unsigned)(rnd() % 20));
				kill(v, SIGKILL);
				CHECK_EQ(wait_child(v, 20000), 128 + SIGKILL);
			}
			t = check_now_ns();
			/* The server drops the dead client's channel and its
			 * rings' names; the honest client is still served. */
			for (;;) {
				rpc_view(&clients, &named);
				if (clients == 1 && named == 0)
					break;
				check_book(p ? p : "rpc random");
				if (check_now_ns() - t >
				    (uint64_t)WEDGE_MS * 1000000 * 4) {
					fprintf(stderr,
						"%s: %llu clients, %d "
						"names left\n",
						p ? p : "random",
						(unsigned long long)clients,
						named);
					exit(1);
				}
				nap_us(200);
			}
			stat_add(&det, (double)(check_now_ns() - t) / 1e6);
			stat_add(&prog, rpc_progress_ms(t, 3));
			CHECK_EQ(atomic_load(&B->epipe), 0);
		}
	}
	atomic_store(&B->stop, 1);
	i = wait_child(hc, 20000) | wait_child(srv, 20000);
	check_book(p ? p : "rpc random");
	CHECK_EQ(i, 0);
	rpc_view(&clients, &named);
	CHECK_EQ(named, 0);
	shmk_unlink(g_rpc); /* closed: gone already */
	if (server_side && churn)
		printf("  %-18s %2d server deaths: the connecting client got "
		       "the successor; served again after %.1f ms max\n",
		       point, rounds, prog.max);
	else if (server_side)
		printf("  %-18s %2d server deaths: -EPIPE %.1f ms max after "
		       "the death was seen; served again after %.1f ms max\n",
		       point ? point : "server, random", rounds, det.max,
		       prog.max);
	else
		printf("  %-18s %2d client deaths: channel and names gone "
		       "%.1f ms max after; others served throughout\n",
		       point ? point : "client, random", rounds, det.max);
	CHECK(det.n == 0 ||
	      (det.sum / det.n <= TYPICAL_MS && det.max <= MAX_MS));
}

/* ======================================================================
 * Topic
 * ====================================================================== */

static int topic_lossy_run; /* the policy of the topic being tested */

static int topic_open_(struct shmk_topic **t)
{
	struct shmk_opts o = {.wait_ms = 5000};

	return shmk_topic_open(g_topic, &o, t);
}

static struct shmk_topic *topic_make(size_t cap, size_t max_msg)
{
	struct shmk_opts o = {.flags = topic_lossy_run ? SHMK_F_LOSSY : 0};
	struct shmk_topic *t;

	CHECK_OK(shmk_topic_create(g_topic, cap, max_msg, &o, &t));
	return t;
}

/* Publishes once, armed to die at its crash point; or (mode 1) dies
 * holding three loans; or (mode 2) subscribes to what is held and
 * acquires, armed. */
static int topic_one_victim(void *arg)
{
	struct role *ro = arg;
	struct shmk_topic *t;
	struct shmk_msg m;
	int i;

	CHECK_OK(topic_open_(&t));
	if (ro->mode == 1) {
		for (i = 0; i < 3; i++)
			CHECK_OK(shmk_topic_loan(t, 8, &m, 1000));
		raise(SIGKILL);
	}
	arm(ro->point, ro->n);
	if (ro->mode == 2) {
		CHECK_OK(shmk_topic_subscribe(t, -1));
		shmk_topic_acquire(t, &m, 1000);
		return 3;
	}
	shmk_topic_publish(t, "x", 1, 1000);
	return 3;
}

/* Attaches (taking the lowest free participant slot) and leaves; with
 * mode 1, first holds every loan a handle may hold, and commits them;
 * with mode 2, first publishes three laps of the log. */
static int topic_attacher(void *arg)
{
	struct role *ro = arg;
	struct shmk_topic *t;
	struct shmk_msg m[8];
	int i;

	CHECK_OK(topic_open_(&t));
	for (i = 0; ro->mode == 2 && i < 3 * TSLOTS; i++)
		CHECK_OK(shmk_topic_publish(t, "lap", 3, 1000));
	for (i = 0; ro->mode == 1 && i < 8; i++)
		CHECK_OK(shmk_topic_loan(t, 8, &m[i], 1000));
	for (i = 0; ro->mode == 1 && i < 8; i++) {
		memcpy(m[i].data, "loan ", 5);
		((char *)m[i].data)[5] = (char)('0' + i);
		m[i].len = 6;
		CHECK_OK(shmk_topic_commit(t, &m[i]));
	}
	CHECK_OK(shmk_topic_close(t));
	return 0;
}

/* Publishes once, stopping itself (SHMK_CRASH=topic_intent:1:stop) with
 * its intent naming the next message, before its claim; continued, its
 * claim is lost, and it must publish all the same. */
static int topic_stopper(void *arg)
{
	struct shmk_topic *t;
	int rc;

	(void)arg;
	CHECK_OK(topic_open_(&t));
	CHECK_OK(setenv("SHMK_CRASH", "topic_intent:1:stop", 1));
	rc = shmk_topic_publish(t, "late", 4, 2000);
	if (rc < 0)
		return bad("a publisher whose claim was lost: %s",
			   shmk_strerror(rc));
	CHECK_OK(shmk_topic_close(t));
	return 0;
}

/* Waits until pid has stopped itself. */
static void wait_stopped(pid_t pid)
{
	uint64_t t0 = check_now_ns();
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG | WUNTRACED);

		if (r == pid) {
			CHECK(WIFSTOPPED(st));
			return;
		}
		CHECK(r == 0 || (r < 0 && errno == EINTR));
		CHECK(check_now_ns() - t0 < 20000000000u);
		nap_us(200);
	}
}

/*
 * The slot of a dead publisher taken again.  (a) A live publisher stops
 * between its intent for message j and its claim; another claims j and
 * is killed before it links j + 1; a new process takes the dead one's
 * slot while the stopped one's intent still names j.  Continued, the
 * stopped one loses its claim and needs j finished, which only the dead
 * one's intent (its size) can do: it must not be thrown away.  (b) A
 * publisher killed there, its slot taken twice again before anyone
 * looked: the second new holder gets past j (skipped, counted), with all
 * the loans a handle may hold at once.  (c) So does the new holder of the
 * slot of a publisher killed holding three loans.  (d) A subscriber
 * killed holding a message, its slot taken by a publisher: the dead
 * cursor holds nobody up, also while the slot's new holder lives.
 * (test_crash has the converse of (a): a dead intent never passes for a
 * live claimer's.)
 */
static void topic_slot_reuse(void)
{
	unsigned char buf[256];
	struct shmk_topic *t = topic_make(4096, 256), *s;
	struct shmk_topic_stats st;
	pid_t v, l;
	int i;

	CHECK_OK(topic_open_(&s)); /* slot 1; the creator has slot 0 */
	CHECK_OK(shmk_topic_subscribe(s, 0));
	memset(B, 0, sizeof(*B));
	l = spawn(topic_stopper, NULL); /* slot 2 */
	wait_stopped(l);
	v = go(topic_one_victim, 0, "topic_claimed", 1, 0); /* slot 3 */
	reap_killed(v, "topic_claimed");
	CHECK_EQ(wait_child(go(topic_attacher, 0, NULL, 0, 0), 20000), 0);
	CHECK_OK(kill(l, SIGCONT));
	i = wait_child(l, 20000);
	check_book("topic, a lost claim");
	CHECK_EQ(i, 0);
	CHECK_EQ(shmk_topic_receive(s, buf, sizeof(buf), 1000), 4);
	CHECK(!memcmp(buf, "late", 4));
	CHECK_OK(shmk_topic_stats(t, &st));
	CHECK_EQ(st.recovered, 1);
	CHECK_EQ(st.published, 1);

	v = go(topic_one_victim, 0, "topic_claimed", 1, 0);
	reap_killed(v, "topic_claimed");
	CHECK_EQ(wait_child(go(topic_attacher, 0, NULL, 0, 0), 20000), 0);
	CHECK_EQ(wait_child(go(topic_attacher, 0, NULL, 0, 1), 20000), 0);
	for (i = 0; i < 8; i++) {
		CHECK_EQ(shmk_topic_receive(s, buf, sizeof(buf), 1000), 6);
		CHECK(!memcmp(buf, "loan ", 5) && buf[5] == '0' + i);
	}
	CHECK_OK(shmk_topic_publish(t, "after", 5, 1000));
	CHECK_EQ(shmk_topic_receive(s, buf, sizeof(buf), 1000), 5);
	CHECK(!memcmp(buf, "after", 5));
	CHECK_OK(shmk_topic_stats(t, &st));
	CHECK_EQ(st.recovered, 2);
	CHECK_EQ(st.published, 10);

	reap_killed(go(topic_one_victim, 0, NULL, 0, 1), "three loans");
	CHECK_EQ(wait_child(go(topic_attacher, 0, NULL, 0, 1), 20000), 0);
	for (i = 0; i < 8; i++) {
		CHECK_EQ(shmk_topic_receive(s, buf, sizeof(buf), 1000), 6);
		CHECK(!memcmp(buf, "loan ", 5) && buf[5] == '0' + i);
	}
	CHECK_RC(shmk_topic_receive(s, buf, sizeof(buf), 0), -EAGAIN);
	CHECK_OK(shmk_topic_stats(t, &st));
	CHECK_EQ(st.recovered, 5);
	CHECK_EQ(st.published, 18);

	CHECK_OK(shmk_topic_close(s)); /* no live subscriber from here on */
	v = go(topic_one_victim, 0, "topic_acquired", 1, 2);
	reap_killed(v, "topic_acquired");
	CHECK_EQ(wait_child(go(topic_attacher, 0, NULL, 0, 2), 20000), 0);
	CHECK_OK(shmk_topic_stats(t, &st));
	CHECK_EQ(st.published, 18 + 3 * TSLOTS);
	CHECK_EQ(st.subscribers, 0);
	CHECK_OK(shmk_topic_close(t));
	CHECK_OK(shmk_unlink(g_topic));
	printf("  %-18s %s: a claim lost to a publisher killed before its "
	       "link, its slot taken again: the loser publishes; a killed "
	       "claim and three loans skipped, counted; the new holder loans "
	       "8 at once; a dead subscriber's slot, a publisher's now, "
	       "holds nobody\n",
	       "topic slot reuse", topic_lossy_run ? "lossy" : "lossless");
}

/* A topic message: who, which, how long, then bytes that say so. */
struct thdr {
	uint32_t w, len;
	uint64_t seq;
};

static size_t tmsg_len(uint32_t w, uint64_t seq)
{
	return sizeof(struct thdr) + (size_t)((seq * 131 + w * 17) %
					      (TMAX - sizeof(struct thdr) + 1));
}

static unsigned char tpat(uint32_t w, uint64_t seq, size_t i)
{
	return (unsigned char)(seq * 37 + w * 101 + i * 11 + 5);
}

static void tmsg_make(unsigned char *p, uint32_t w, uint64_t seq, size_t len)
{
	struct thdr h = {.w = w, .len = (uint32_t)len, .seq = seq};
	size_t i;

	memcpy(p, &h, sizeof(h));
	for (i = sizeof(h); i < len; i++)
		p[i] = tpat(w, seq, i);
}

/*
 * Checks a delivered message (whole, never torn) and its order: each
 * publisher's messages come in its order and, lossless, without a gap
 * (an honest subscriber, there from the start, from its first).  last[]
 * is this subscriber's last seq + 1 per publisher.  An honest
 * subscriber k records it.
 */
static int tmsg_take(const unsigned char *p, size_t n, uint64_t *last, int k)
{
	struct thdr h;
	size_t i;
	uint64_t at;

	if (n < sizeof(h))
		return bad("topic: a message of %zu bytes", n);
	memcpy(&h, p, sizeof(h));
	if (h.w >= MAXW || h.len != n || n != tmsg_len(h.w, h.seq))
		return bad("topic: a message of %zu bytes says w%u seq %llu "
			   "len %u",
			   n, h.w, (unsigned long long)h.seq, h.len);
	for (i = sizeof(h); i < n; i++)
		if (p[i] != tpat(h.w, h.seq, i))
			return bad("topic: w%u seq %llu torn at byte %zu", h.w,
				   (unsigned long long)h.seq, i);
	if (h.seq < last[h.w] ||
	    (!topic_lossy_run && (last[h.w] || k >= 0) && h.seq != last[h.w]))
		return bad("topic: subscriber %d: w%u seq %llu after %llu", k,
			   h.w, (unsigned long long)h.seq,
			   (unsigned long long)last[h.w] - 1);
	last[h.w] = h.seq + 1;
	if (k < 0)
		return 0;
	at = atomic_load(&B->tgot[k]);
	if (at >= TLOG)
		return bad("topic: subscriber %d's log is full", k);
	atomic_store(&B->tlog[k][at], (uint64_t)h.w << 32 | h.seq);
	atomic_store(&B->tgot[k], at + 1);
	return 0;
}

/*
 * mode 0: honest (paced, until stop); 1: victim at a crash point (flat
 * out); 2: victim killed from outside (paced, and slow inside its
 * loans).  Copies (publish) and loans by turns; a loan may be larger
 * than the message put in it.
 */
static int topic_writer(void *arg)
{
	struct role *ro = arg;
	unsigned char buf[TMAX];
	struct shmk_topic *t;
	struct shmk_msg m;
	uint32_t w = (uint32_t)ro->id;
	uint64_t seq;
	int rc;

	CHECK_OK(topic_open_(&t));
	if (ro->point)
		arm(ro->point, ro->n);
	for (seq = 0; seq < UINT32_MAX && !atomic_load(&B->stop); seq++) {
		size_t len = tmsg_len(w, seq), half = len / 2;

		if (seq % 2 == 0) {
			tmsg_make(buf, w, seq, len);
			rc = shmk_topic_publish(t, buf, len, 5000);
		} else {
			size_t size = len + (size_t)(seq % 3) * 8;

			rc = shmk_topic_loan(t, size < TMAX ? size : TMAX, &m,
					     5000);
			if (!rc) {
				tmsg_make(buf, w, seq, len);
				memcpy(m.data, buf, half);
				if (ro->mode == 2)
					nap_us(20);
				memcpy((char *)m.data + half, buf + half,
				       len - half);
				m.len = len;
				rc = shmk_topic_commit(t, &m);
			}
		}
		if (rc < 0)
			return bad("topic w%u: %s", w, shmk_strerror(rc));
		/* Logged only once the publish or commit returned. */
		atomic_store(&B->committed[w], seq + 1);
		if (ro->mode != 1)
			nap_us(ro->mode == 0 ? 100 : 20);
	}
	if (ro->mode == 1)
		return 3; /* never reached its crash point */
	CHECK_OK(shmk_topic_close(t));
	return 0;
}

/*
 * Subscribers, there before any publisher, until drain: id 0 copies out
 * (receive), id 1 reads in place (acquire, copy, release; lossy, a copy
 * is believed only if release says it was not overwritten); victims (id
 * -1) read in place, join late and record nothing.
 */
static int topic_reader(void *arg)
{
	struct role *ro = arg;
	static uint64_t last[MAXW];
	unsigned char buf[TMAX];
	struct shmk_topic *t;
	struct shmk_msg m;
	ssize_t n = 0;
	int rc;

	CHECK_OK(topic_open_(&t));
	CHECK_OK(shmk_topic_subscribe(t, 0));
	if (ro->id >= 0)
		atomic_fetch_add(&B->flag, 1);
	if (ro->point)
		arm(ro->point, ro->n);
	for (;;) {
		if (ro->id == 0) {
			n = shmk_topic_receive(t, buf, sizeof(buf), 50);
			rc = n < 0 ? (int)n : 0;
		} else {
			rc = shmk_topic_acquire(t, &m, 50);
			if (!rc) {
				if (m.len > sizeof(buf))
					return bad("topic: a %zu-byte message",
						   m.len);
				n = (ssize_t)m.len;
				memcpy(buf, m.data, m.len);
				rc = shmk_topic_release(t, &m);
				if (!rc && ro->id < 0)
					atomic_fetch_add(&B->vgot, 1);
			}
		}
		if (!rc) {
			if (tmsg_take(buf, (size_t)n, last, ro->id))
				return 1;
			if (ro->mode == 2)
				nap_us(20);
			continue;
		}
		if (rc == -EOVERFLOW && topic_lossy_run)
			continue; /* lapped: counted lost */
		if (rc != -ETIMEDOUT)
			return bad("topic subscriber %d: %s", ro->id,
				   shmk_strerror(rc));
		if (atomic_load(&B->drain))
			break;
	}
	if (ro->mode == 1)
		return 3;
	if (ro->id >= 0)
		atomic_store(&B->tlost[ro->id], shmk_topic_lost(t));
	CHECK_OK(shmk_topic_close(t));
	return 0;
}

/*
 * Waits until each honest subscriber has taken enough more messages to
 * be past a death (N descriptors).  A dead publisher's message j is at or
 * past every cursor (nobody passes it unfinished), and each cursor is at
 * least tail >= head - N >= j + 1 - N: N + 1 more means past j.  A dead
 * lossless subscriber's cursor c holds tail at or below it, and each live
 * cursor is at least head - N >= c - N: 2 N + 1 more means tail passed c.
 */
static double topic_lap_ms(uint64_t t_dead, int subscriber)
{
	uint64_t g0 = atomic_load(&B->tgot[0]), g1 = atomic_load(&B->tgot[1]);
	uint64_t need = (subscriber ? 2 : 1) * TSLOTS + 1;

	while (atomic_load(&B->tgot[0]) < g0 + need ||
	       atomic_load(&B->tgot[1]) < g1 + need) {
		check_book("topic");
		if (check_now_ns() - t_dead > (uint64_t)WEDGE_MS * 1000000)
			wedged("topic wedged after a death");
		nap_us(100);
	}
	return (double)(check_now_ns() - t_dead) / 1e6;
}

static int cmp_u64(const void *a, const void *b)
{
	return check_cmp_u64(a, b);
}

/* Every subscriber sees one order: lossless, the same messages; lossy,
 * the ones both took in the same order. */
static void topic_same_order(const char *what)
{
	uint64_t n0 = atomic_load(&B->tgot[0]), n1 = atomic_load(&B->tgot[1]);
	uint64_t *byid, i, prev = 0, common = 0;

	if (!topic_lossy_run) {
		CHECK_EQ(n0, n1);
		for (i = 0; i < n0; i++)
			if (B->tlog[0][i] != B->tlog[1][i]) {
				fprintf(stderr,
					"%s: subscribers differ at message "
					"%llu\n",
					what, (unsigned long long)i);
				exit(1);
			}
		return;
	}
	/* Subscriber 0's messages sorted by id, each with its place. */
	byid = malloc(n0 * 2 * sizeof(*byid) + 16);
	CHECK(byid != NULL);
	for (i = 0; i < n0; i++) {
		byid[2 * i] = B->tlog[0][i];
		byid[2 * i + 1] = i;
	}
	qsort(byid, n0, 2 * sizeof(*byid), cmp_u64);
	for (i = 0; i < n1; i++) {
		uint64_t lo = 0, hi = n0, id = B->tlog[1][i];

		while (lo < hi) {
			uint64_t mid = (lo + hi) / 2;

			if (byid[2 * mid] < id)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == n0 || byid[2 * lo] != id)
			continue;
		if (common++ && byid[2 * lo + 1] <= prev) {
			fprintf(stderr,
				"%s: w%llu seq %llu out of the order the other "
				"subscriber saw\n",
				what, (unsigned long long)(id >> 32),
				(unsigned long long)(uint32_t)id);
			exit(1);
		}
		prev = byid[2 * lo + 1];
	}
	free(byid);
}

/*
 * The log holds as many messages as a fresh topic's (lossless: a new
 * subscriber lets as many in before the log is full; lossy: publishers
 * never wait, a lapped subscriber is told and goes on from the oldest
 * held), and gives them back whole and in order.
 */
static int topic_fill(struct shmk_topic *t)
{
	struct shmk_topic *s;
	unsigned char buf[TMAX];
	uint64_t seq, next;
	int n = 0, rc;

	CHECK_OK(topic_open_(&s));
	CHECK_OK(shmk_topic_subscribe(s, 0));
	for (seq = 0; seq < 3 * TSLOTS; seq++) {
		tmsg_make(buf, 0, seq, 64);
		rc = shmk_topic_publish(t, buf, 64, 0);
		if (rc == -EAGAIN && !topic_lossy_run)
			break;
		CHECK_OK(rc);
		n++;
	}
	if (topic_lossy_run)
		CHECK_RC(shmk_topic_receive(s, buf, sizeof(buf), 0),
			 -EOVERFLOW);
	next = shmk_topic_lost(s);
	while ((rc = (int)shmk_topic_receive(s, buf, sizeof(buf), 0)) > 0) {
		struct thdr h;

		CHECK_EQ(rc, 64);
		memcpy(&h, buf, sizeof(h));
		CHECK_EQ(h.seq, next);
		next++;
	}
	CHECK_RC(rc, -EAGAIN);
	CHECK_EQ(next, (uint64_t)n);
	n -= (int)shmk_topic_lost(s);
	CHECK_OK(shmk_topic_close(s));
	return n;
}

static void topic_capacity(struct shmk_topic *t)
{
	const char *keep = g_topic;
	struct shmk_topic *f;
	int held, fresh;

	held = topic_fill(t);
	g_topic = g_topic2;
	f = topic_make(TCAP, TMAX);
	fresh = topic_fill(f);
	CHECK_OK(shmk_topic_close(f));
	CHECK_OK(shmk_unlink(g_topic));
	g_topic = keep;
	if (topic_lossy_run)
		CHECK(held >= 1 && held <= TSLOTS && fresh >= 1);
	else
		CHECK_EQ(held, fresh);
}

/* Publisher points, and the subscriber's. */
static const char *const topic_pub_points[] = {
	"topic_claimed", "topic_loaned", "topic_mid_copy", "topic_committed"};

/*
 * One run: two honest subscribers and then two honest publishers
 * throughout; rounds victims, publishers or subscribers, die at point
 * (or, point NULL, are killed from outside at random moments).
 */
static void topic_run(const char *point, int side, int rounds)
{
	const char *what = point ? point : "topic, random kill";
	struct shmk_topic *t = NULL;
	struct shmk_topic_stats st;
	struct shmk_stat ss;
	struct stat_ms lap = {0};
	uint64_t *top[2], sum_c = 0, x = 0, missing[2] = {0, 0}, got;
	pid_t hw[2], hr[2];
	int i, k, w, wdeaths = 0, rdeaths = 0;
	int committed_pt = point && !strcmp(point, "topic_committed");

	memset(B, 0, sizeof(*B));
	t = topic_make(TCAP, TMAX);
	hr[0] = go(topic_reader, 0, NULL, 0, 0);
	hr[1] = go(topic_reader, 1, NULL, 0, 0);
	while (atomic_load(&B->flag) < 2) {
		check_book(what);
		nap_us(200);
	}
	hw[0] = go(topic_writer, 0, NULL, 0, 0);
	hw[1] = go(topic_writer, 1, NULL, 0, 0);
	for (i = 0; i < rounds; i++) {
		uint64_t t_dead;
		int as = kill_one(topic_writer, topic_reader, point, side,
				  2 + i, &t_dead);

		if (as == R_WRITER)
			wdeaths++;
		else
			rdeaths++;
		stat_add(&lap, topic_lap_ms(t_dead, as == R_READER));
	}
	atomic_store(&B->stop, 1);
	i = wait_child(hw[0], 20000) | wait_child(hw[1], 20000);
	atomic_store(&B->drain, 1);
	i |= wait_child(hr[0], 20000) | wait_child(hr[1], 20000);
	check_book(what);
	CHECK_EQ(i, 0);

	/* What each honest subscriber took of each publisher: its count and
	 * its last seq + 1 (in order, checked as taken). */
	for (k = 0; k < 2; k++) {
		uint64_t j, n = atomic_load(&B->tgot[k]);

		top[k] = calloc(MAXW, sizeof(uint64_t));
		CHECK(top[k] != NULL);
		for (j = 0; j < n; j++) {
			uint64_t id = B->tlog[k][j];

			top[k][id >> 32] = (uint32_t)id + 1;
		}
	}
	for (w = 0; w < 2 + rounds && w < MAXW; w++) {
		uint64_t c = atomic_load(&B->committed[w]);
		int victim = w >= 2, seen = 0;

		sum_c += c;
		for (k = 0; k < 2; k++) {
			uint64_t n = 0, j;

			/* Never anything past the message it died in. */
			if (top[k][w] > c + victim) {
				fprintf(stderr,
					"%s: w%d seq %llu delivered, never "
					"published\n",
					what, w,
					(unsigned long long)top[k][w] - 1);
				exit(1);
			}
			for (j = 0; j < atomic_load(&B->tgot[k]); j++)
				if (B->tlog[k][j] >> 32 == (uint64_t)w &&
				    (uint32_t)B->tlog[k][j] < c)
					n++;
			missing[k] += c - n;
			seen += top[k][w] == c + 1;
		}
		/* The message a victim died in: delivered (whole) only if
		 * it was committed; skipped by every subscriber if not. */
		if (victim && seen)
			x++;
		if (victim && point && side == R_WRITER && !topic_lossy_run)
			CHECK_EQ(seen, committed_pt ? 2 : 0);
		if (victim && point && side == R_WRITER && !committed_pt)
			CHECK_EQ(seen, 0);
	}
	for (k = 0; k < 2; k++) {
		uint64_t lost = atomic_load(&B->tlost[k]);

		if (topic_lossy_run)
			CHECK(missing[k] <= lost);
		else
			CHECK(missing[k] == 0 && lost == 0);
		free(top[k]);
	}
	topic_same_order(what);

	CHECK_OK(shmk_topic_stats(t, &st));
	got = atomic_load(&B->tgot[0]) + atomic_load(&B->tgot[1]) +
	      atomic_load(&B->vgot);
	CHECK_EQ(st.abandoned, 0);
	CHECK_EQ(st.subscribers, 0);
	if (!topic_lossy_run)
		CHECK_EQ(st.lost, 0);
	if (point && side == R_WRITER) {
		/* One recovered per death before the publication, none after
		 * it; what was published is what was logged, and the message
		 * each victim died in if it died after publishing it. */
		CHECK_EQ(st.recovered, committed_pt ? 0 : (uint64_t)wdeaths);
		CHECK_EQ(st.published,
			 sum_c + (committed_pt ? (uint64_t)wdeaths : 0));
		CHECK_EQ(st.delivered, got);
	} else if (point) {
		CHECK_EQ(st.recovered, 0);
		CHECK_EQ(st.published, sum_c);
		CHECK_EQ(st.delivered, got);
	} else {
		/* A victim killed between its count and its publication is
		 * counted published and recovered. */
		CHECK(st.recovered + x <= (uint64_t)wdeaths);
		CHECK(st.published >= sum_c + x);
		CHECK(st.published <= sum_c + (uint64_t)wdeaths);
		if (!topic_lossy_run)
			CHECK(st.published <= sum_c + x + st.recovered);
		CHECK(st.delivered >= got &&
		      st.delivered <= got + (uint64_t)rdeaths);
	}
	/* The killed processes' slots were taken again: at most the six of
	 * us at a time (creator, four honest, one victim) were ever used. */
	CHECK_OK(shmk_stat(g_topic, &ss));
	CHECK(ss.nparts <= 6);
	CHECK_EQ(ss.nalive, 1);
	topic_capacity(t);
	printf("  %-18s %-8s %3d deaths (%d publishers, %d subscribers): "
	       "%llu published, %llu recovered, %llu + %llu taken (lost "
	       "%llu + %llu), one order; a lap after a death: max %.1f ms, "
	       "mean %.1f ms\n",
	       point ? point : "topic, random",
	       topic_lossy_run ? "lossy" : "lossless", wdeaths + rdeaths,
	       wdeaths, rdeaths, (unsigned long long)st.published,
	       (unsigned long long)st.recovered,
	       (unsigned long long)atomic_load(&B->tgot[0]),
	       (unsigned long long)atomic_load(&B->tgot[1]),
	       (unsigned long long)atomic_load(&B->tlost[0]),
	       (unsigned long long)atomic_load(&B->tlost[1]), lap.max,
	       lap.sum / lap.n);
	CHECK(lap.sum / lap.n <= TYPICAL_MS && lap.max <= MAX_MS);
	CHECK_OK(shmk_topic_close(t));
	CHECK_OK(shmk_unlink(g_topic));
}

/* ======================================================================
 * The bounds, against kills from outside with the waiter asleep
 * ====================================================================== */

/* Victims that take something, say so, and wait to be killed. */
static int holder(void *arg)
{
	struct role *ro = arg;
	struct shmk_ring *r;
	struct shmk_msg m;
	struct obj o;
	struct shmk_rpc *ep;
	struct shmk_rpc_opts co = {.wait_ms = 5000};

	if (ro->mode == 0) { /* a ring writer holding a reservation */
		r = ring_attach();
		CHECK_OK(shmk_ring_reserve(r, &m, 5000));
	} else if (ro->mode == 1) { /* a ring reader holding a message */
		r = ring_attach();
		CHECK_OK(shmk_ring_acquire(r, &m, 5000));
	} else if (ro->mode == 2) { /* a writer holding the lock */
		obj_open(&o, 0);
		CHECK_OK(obj_lock(&o, SHMK_LOCK_WRITE, 5000));
	} else { /* an rpc client, connected */
		CHECK_OK(shmk_rpc_connect(g_rpc, &co, &ep));
	}
	atomic_store(&B->flag, 1);
	for (;;)
		pause();
}

/* Waiters: block, then record when and how they got through. */
static int waiter(void *arg)
{
	struct role *ro = arg;
	char buf[128];
	struct obj o;
	struct shmk_rpc *ep;
	struct shmk_rpc_result res;
	struct shmk_rpc_opts co = {.wait_ms = 5000};
	struct rmsg m;
	int rc;

	if (ro->mode == 0) { /* a reader behind the held reservation */
		struct shmk_ring *r = ring_attach();

		rc = (int)shmk_ring_read(r, buf, sizeof(buf), 5000);
	} else if (ro->mode == 1) { /* a writer facing the full ring */
		struct shmk_ring *r = ring_attach();

		rmsg_make(&m, 1, 0);
		rc = shmk_ring_write(r, &m, sizeof(m), 5000);
	} else if (ro->mode == 2) {
		obj_open(&o, 0);
		rc = obj_lock(&o, SHMK_LOCK_WRITE, 5000);
	} else { /* a caller whose server is killed mid-call */
		CHECK_OK(shmk_rpc_connect(g_rpc, &co, &ep));
		atomic_store(&B->flag, 2);
		rc = shmk_rpc_call(ep, "slow", 4, buf, sizeof(buf), &res, 5000);
	}
	atomic_store(&B->t_done, check_now_ns());
	atomic_store(&B->rc_done, rc);
	return 0;
}

static void bound_report(const char *what, double *ms, int n, int want_rc,
			 const char *rcname)
{
	double max = 0, mid;
	int i, j;

	for (i = 1; i < n; i++) /* sort, for the median */
		for (j = i; j > 0 && ms[j - 1] > ms[j]; j--) {
			double t = ms[j];

			ms[j] = ms[j - 1];
			ms[j - 1] = t;
		}
	for (i = 0; i < n; i++)
		if (ms[i] > max)
			max = ms[i];
	mid = ms[n / 2];
	printf("  %-44s min %.2f, median %.2f, max %.2f ms (%d kills, %s)\n",
	       what, ms[0], mid, max, n, rcname);
	(void)want_rc;
	CHECK(mid <= TYPICAL_MS && max <= MAX_MS);
}

static void bounds(int reps)
{
	double ms[64];
	struct shmk_ring *r;
	struct shmk_buffer *b;
	struct rmsg m;
	int i, kind;

	for (kind = 0; kind < 5; kind++) {
		for (i = 0; i < reps; i++) {
			pid_t h, w = 0, srv = 0;
			uint64_t t_kill;

			memset(B, 0, sizeof(*B));
			r = NULL;
			b = NULL;
			if (kind < 2)
				CHECK_OK(shmk_ring_create(g_ring, 4, 64, NULL,
							  &r));
			if (kind == 2) {
				CHECK_OK(shmk_buffer_create(g_buf, BUF_SIZE,
							    NULL, &b));
			}
			if (kind >= 3) {
				srv = go(server, 0, NULL, 0, 0);
				wait_flag();
				atomic_store(&B->flag, 0);
			}
			if (kind == 1) { /* full, and a reader will hold one */
				int k;

				for (k = 0; k < 4; k++) {
					rmsg_make(&m, 0, (uint64_t)k);
					CHECK_OK(shmk_ring_write(r, &m,
								 sizeof(m), 0));
				}
			}
			if (kind != 3) {
				h = go(holder, 0, NULL, 0,
				       kind == 4 ? 3 : kind);
				wait_flag();
			} else {
				h = srv; /* the server dies mid-call */
			}
			if (kind == 0) { /* a message behind the held node */
				rmsg_make(&m, 0, 1);
				CHECK_OK(shmk_ring_write(r, &m, sizeof(m), 0));
			}
			if (kind < 4)
				w = go(waiter, 0, NULL, 0, kind);
			if (kind == 3)
				while (atomic_load(&B->flag) != 2)
					nap_us(200);
			/* Long enough for the waiter to be asleep. */
			sleep_ms(30 + (unsigned)(rnd() % 30));
			t_kill = check_now_ns();
			CHECK_OK(kill(h, SIGKILL));
			if (kind < 4) {
				CHECK_EQ(wait_child(w, 20000), 0);
				ms[i] = (double)(atomic_load(&B->t_done) -
						 t_kill) /
					1e6;
				CHECK_RC(atomic_load(&B->rc_done),
					 kind == 0   ? (int)sizeof(m)
					 : kind == 1 ? 0
					 : kind == 2 ? -EOWNERDEAD
						     : -EPIPE);
			} else { /* the server forgets the client */
				uint64_t clients;
				int named;

				do {
					rpc_view(&clients, &named);
					nap_us(100);
				} while (clients && check_now_ns() - t_kill <
							    10000000000u);
				ms[i] = (double)(check_now_ns() - t_kill) / 1e6;
				CHECK_EQ(clients, 0);
			}
			CHECK_EQ(wait_child(h, 20000), 128 + SIGKILL);
			if (kind == 4) {
				atomic_store(&B->stop, 1);
				CHECK_EQ(wait_child(srv, 20000), 0);
			}
			if (r) {
				shmk_ring_close(r);
				CHECK_OK(shmk_unlink(g_ring));
			}
			if (b) {
				shmk_buffer_close(b);
				CHECK_OK(shmk_unlink(g_buf));
			}
			shmk_unlink(g_rpc);
		}
		bound_report(
			kind == 0   ? "ring: dead writer, the reader behind it"
			: kind == 1 ? "ring: dead reader, the writer on it"
			: kind == 2 ? "lock: dead writer, the next locker"
			: kind == 3 ? "rpc: dead server, the caller"
				    : "rpc: dead client, the server drops it",
			ms, reps, 0,
			kind == 0   ? "got the next message"
			: kind == 1 ? "wrote"
			: kind == 2 ? "-EOWNERDEAD"
			: kind == 3 ? "-EPIPE"
				    : "clients 0");
	}
}

/*
 * The topic's: a holder that stops itself at a crash point (alive, so
 * nothing of it may be taken: the waiter still waits after 1 s in the
 * first round, 30 to 60 ms in the others), then is killed while the
 * waiter sleeps.
 *   mode 0: a publisher stopped inside its loan; the subscriber behind
 *           it gets the next message (the dead one's is skipped);
 *   mode 1: a lossless subscriber stopped holding a message; the
 *           publisher on the full log publishes.
 */
static int topic_holder(void *arg)
{
	struct role *ro = arg;
	unsigned char buf[TMAX];
	struct shmk_topic *t;
	struct shmk_msg m;

	CHECK_OK(topic_open_(&t));
	if (ro->mode == 0) {
		CHECK_OK(setenv("SHMK_CRASH", "topic_loaned:1:stop", 1));
		tmsg_make(buf, 1, 0, 200);
		CHECK_OK(shmk_topic_publish(t, buf, 200, 5000));
	} else {
		CHECK_OK(shmk_topic_subscribe(t, 0));
		atomic_store(&B->flag, 1);
		CHECK_OK(setenv("SHMK_CRASH", "topic_acquired:1:stop", 1));
		CHECK_OK(shmk_topic_acquire(t, &m, 5000));
	}
	return 3; /* continued: never */
}

static int topic_waiter(void *arg)
{
	struct role *ro = arg;
	unsigned char buf[TMAX];
	struct shmk_topic *t;
	int rc;

	CHECK_OK(topic_open_(&t));
	if (ro->mode == 0) {
		CHECK_OK(shmk_topic_subscribe(t, 0));
		atomic_store(&B->flag, 1);
		rc = (int)shmk_topic_receive(t, buf, sizeof(buf), 5000);
	} else {
		tmsg_make(buf, 2, 0, 64);
		rc = shmk_topic_publish(t, buf, 64, 5000);
	}
	atomic_store(&B->t_done, check_now_ns());
	atomic_store(&B->rc_done, rc);
	return 0;
}

static void topic_bounds(int reps)
{
	double ms[64];
	unsigned char buf[TMAX];
	int kind, i, k;

	for (kind = 0; kind < 3; kind++) {
		topic_lossy_run = kind == 1;
		for (i = 0; i < reps; i++) {
			struct shmk_topic *t = topic_make(TCAP, TMAX);
			struct shmk_topic_stats st;
			uint64_t t_kill;
			pid_t h, w;

			memset(B, 0, sizeof(*B));
			if (kind < 2) {
				w = go(topic_waiter, 0, NULL, 0, 0);
				while (!atomic_load(&B->flag))
					nap_us(200);
				h = go(topic_holder, 0, NULL, 0, 0);
				wait_stopped(h);
				/* A message loaned after the stopped one's. */
				tmsg_make(buf, 0, 0, 64);
				CHECK_OK(shmk_topic_publish(t, buf, 64, 0));
			} else {
				h = go(topic_holder, 0, NULL, 0, 1);
				while (!atomic_load(&B->flag))
					nap_us(200);
				tmsg_make(buf, 0, 0, 64);
				CHECK_OK(shmk_topic_publish(t, buf, 64, 0));
				wait_stopped(h);
				for (k = 0;
				     k < 2 * TSLOTS &&
				     shmk_topic_publish(t, buf, 64, 0) == 0;
				     k++)
					;
				CHECK(k <
				      2 * TSLOTS); /* full: it is waited for */
				w = go(topic_waiter, 0, NULL, 0, 1);
			}
			sleep_ms(i ? 30 + (unsigned)(rnd() % 30) : 1000);
			/* Stopped is alive: nothing of it was taken. */
			CHECK_EQ(atomic_load(&B->t_done), 0);
			CHECK_OK(shmk_topic_stats(t, &st));
			CHECK_EQ(st.recovered, 0);
			t_kill = check_now_ns();
			CHECK_OK(kill(h, SIGKILL));
			CHECK_EQ(wait_child(w, 20000), 0);
			ms[i] = (double)(atomic_load(&B->t_done) - t_kill) /
				1e6;
			CHECK_RC(atomic_load(&B->rc_done), kind < 2 ? 64 : 0);
			CHECK_EQ(wait_child(h, 20000), 128 + SIGKILL);
			CHECK_OK(shmk_topic_stats(t, &st));
			CHECK_EQ(st.recovered, kind < 2);
			CHECK_OK(shmk_topic_close(t));
			CHECK_OK(shmk_unlink(g_topic));
		}
		bound_report(
			kind == 0
				? "topic: dead publisher, the subscriber behind"
			: kind == 1
				? "topic (lossy): the same"
				: "topic: dead subscriber, the publisher on it",
			ms, reps, 0,
			kind < 2 ? "got the next message" : "published");
	}
	topic_lossy_run = 0;
}

/* ====================================================================== */

static const char *const ring_writer_points[] = {
	"ring_reserved", "ring_mid_copy", "ring_pre_commit", "ring_committed"};
static const char *const ring_reader_points[] = {
	"ring_acquired", "ring_mid_release", "ring_released"};
static const char *const lock_points[] = {"lock_claimed", "lock_write_held",
					  "lock_read_held", "buffer_mid_write"};
static const char *const region_points[] = {"region_opened", "region_sized",
					    "region_built", "region_linked",
					    "region_attach"};
static const char *const rpc_server_points[] = {
	"rpc_mid_reply", "rpc_request_read", "rpc_pre_reply",
	"rpc_accept_hello", "rpc_accept_created"};
static const char *const rpc_client_points[] = {
	"rpc_mid_message", "rpc_connect_sent", "rpc_connect_answered",
	"rpc_connect_opened"};

#define N_OF(a) (int)(sizeof(a) / sizeof((a)[0]))

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	int rounds = CHECK_SANITIZED ? 50 : 120, i;
	uint64_t t0 = check_now_ns();
	const char *seed = getenv("SHMK_CP_SEED");

	check_init();
	(void)g_failed_rounds;
	g_rng = seed ? strtoull(seed, NULL, 0)
		     : check_now_ns() ^ (uint64_t)getpid();
	if (!g_rng)
		g_rng = 1;
	printf("test_crashpoints: seed %llu (SHMK_CP_SEED to repeat)\n",
	       (unsigned long long)g_rng);
	B = mmap(NULL, sizeof(*B), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(B != MAP_FAILED);
	g_ring = tname("ring");
	g_buf = tname("buf");
	g_arr = tname("arr");
	g_rpc = tname("rpc");
	g_topic = tname("topic");
	g_topic2 = tname("topic.fresh");
#define WANT(x) (!only || !strncmp(only, (x), strlen(only)))
	printf("ring: writers and readers killed at each point\n");
	for (i = 0; i < N_OF(ring_writer_points); i++)
		if (WANT(ring_writer_points[i]))
			ring_run(ring_writer_points[i], R_WRITER, rounds);
	for (i = 0; i < N_OF(ring_reader_points); i++)
		if (WANT(ring_reader_points[i]))
			ring_run(ring_reader_points[i], R_READER, rounds);
	if (WANT("random-ring"))
		ring_run(NULL, 0, rounds * 2);
	printf("lock: holders killed at each point\n");
	for (i = 0; i < N_OF(lock_points); i++)
		if (WANT(lock_points[i]))
			lock_run(lock_points[i], 0, rounds);
	if (WANT("array_mid_write"))
		lock_run("array_mid_write", 1, rounds);
	if (WANT("random-lock")) {
		lock_run(NULL, 0, rounds * 2);
		lock_run(NULL, 1, rounds);
	}
	printf("region: creates and attaches killed at each step\n");
	for (i = 0; i < N_OF(region_points); i++)
		if (WANT(region_points[i]))
			region_run(region_points[i],
				   !strcmp(region_points[i], "region_attach")
					   ? 150
					   : rounds);
	printf("rpc: servers and clients killed at each step\n");
	for (i = 0; i < N_OF(rpc_server_points); i++)
		if (WANT(rpc_server_points[i]))
			rpc_run(rpc_server_points[i], 1, rounds / 2);
	for (i = 0; i < N_OF(rpc_client_points); i++)
		if (WANT(rpc_client_points[i]))
			rpc_run(rpc_client_points[i], 0, rounds / 2);
	if (WANT("random-rpc-server"))
		rpc_run(NULL, 1, rounds / 2);
	if (WANT("random-rpc-client"))
		rpc_run(NULL, 0, rounds / 2);
	printf("topic: publishers and subscribers killed at each point\n");
	for (topic_lossy_run = 0; topic_lossy_run < 2; topic_lossy_run++) {
		for (i = 0; i < N_OF(topic_pub_points); i++)
			if (WANT(topic_pub_points[i]))
				topic_run(topic_pub_points[i], R_WRITER,
					  rounds);
		if (WANT("topic_acquired"))
			topic_run("topic_acquired", R_READER, rounds);
		if (WANT("topic-random"))
			topic_run(NULL, 0, rounds * 2);
		if (WANT("topic-slot-reuse"))
			topic_slot_reuse();
	}
	topic_lossy_run = 0;
	if (WANT("bounds")) {
		printf("bounds: kills from outside, the waiter asleep "
		       "(documented: %d ms; asserted: median %d ms, max %d "
		       "ms)\n",
		       BOUND_MS, TYPICAL_MS, MAX_MS);
		bounds(10);
		topic_bounds(10);
	}
	printf("test_crashpoints: ok (%.1f s)\n",
	       (double)(check_now_ns() - t0) / 1e9);
	return 0;
}
