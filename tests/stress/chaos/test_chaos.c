/* SPDX-License-Identifier: MIT */
/*
 * test_chaos - a hostile peer scribbles on live objects while honest
 * processes use them.
 *
 * The chaos process maps the victims straight from their files, read and
 * write: a ring, a buffer, an array, an event, two topics (lossless and
 * lossy), an rpc object, and the rings of that rpc object's channels
 * (their names are gone once a client said hello, so it finds them
 * through /proc/<pid>/fd of the honest processes).  It overwrites control
 * words, positions, node sequences and lengths, a topic's head, tail,
 * floor, descriptors (seq, link, start, len), loan intents and sizes,
 * subscription cursors and log bytes, frame headers, header fields
 * (sizes, geometry, state, counters), participant slots, lock words and
 * futex words with random, maximal, negative, zero and off-by-one values,
 * again and again; now and then it puts a value back a little later, or
 * flips a word between two values in a tight loop.  Every second or so
 * it replaces the ring, buffer, array, event and topics by fresh ones;
 * the rpc server restarts its victim endpoint every few seconds.
 *
 * The honest processes (ring writers and readers, two lockers, an rpc
 * server and its clients, a topic publisher and two subscribers) use
 * every victim with short timeouts and, in the same process, a control
 * object of the same kind that nobody scribbles on.  Asserted:
 *  - every process exits 0 before its deadline: no signal, no sanitizer
 *    report, no hang;
 *  - every call on a victim returns success or an error listed for its
 *    kind in ok_*[] below (anything else fails the process that got it);
 *  - every message a topic hands out in place lies in the log of the
 *    handle's own mapping and is at most its max_msg (every byte of it is
 *    then read);
 *  - every call on a control object succeeds, and all that went through
 *    one arrived once, in order and intact;
 *  - damage was seen: -EBADMSG and -EPROTO were returned (on each kind,
 *    each topic policy), and subscribers read messages from victim
 *    topics;
 *  - no descriptor leaked in the honest processes.
 *
 * Usage: test_chaos [seed=N] [seconds=S].  The seed (printed) fixes every
 * random choice of every process; how they interleave is the scheduler's.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <sys/socket.h>
#include <sys/un.h>

#include "check.h"
#include "internal.h"
#include "rpc_peer.h"

#define NWRITERS 2
#define NREADERS 2
#define NLOCKERS 2
#define NCLIENTS 2
#define NTSUBS	 2	    /* topic subscribers */
#define MAXSEQ	 (1u << 21) /* control ring messages per writer, at most */
#define NODE	 64	    /* ring node size */
#define WIRE	 24	    /* ring message header */
#define CTRL_MS	 120000	    /* control calls: only a hang takes this long */

/* ------------------------------------------------------------------ */
/* What the processes share                                            */
/* ------------------------------------------------------------------ */

enum {
	K_RING,
	K_BUFFER,
	K_ARRAY,
	K_EVENT,
	K_RPC,
	K_CONNECT,
	K_OPEN,
	K_TOPIC,
	K_LTOPIC,
	NK
};
static const char *const kname[NK] = {"ring",	   "buffer", "array",
				      "event",	   "rpc",    "connect",
				      "open/stat", "topic",  "topic/lossy"};
#define NCODE 256

struct book {
	uint64_t seed;
	_Atomic int stop_chaos, stop;
	pid_t rpc_pids[1 + NCLIENTS]; /* the server, then the clients */
	/* Victims: results by kind and errno (0: success). */
	_Atomic uint64_t res[NK][NCODE];
	_Atomic uint64_t max_ms[NK]; /* the longest call */
	_Atomic uint64_t garbled;    /* victim payloads that came back wrong */
	_Atomic uint64_t forged_geometry; /* valid, but not the ring we made */
	/* Chaos. */
	_Atomic uint64_t pokes, restores, hammers, epochs, chans;
	/* Control ring. */
	_Atomic uint64_t committed[NWRITERS];
	_Atomic int writers_done;
	_Atomic uint64_t delivered;
	/* Control buffer, array, events. */
	_Atomic uint64_t buf_writes[NLOCKERS], arr_writes[NLOCKERS];
	_Atomic uint64_t rounds[NLOCKERS];
	_Atomic int ev_done;
	/* Control rpc. */
	_Atomic uint64_t calls[NCLIENTS];
	_Atomic int clients_done;
	_Atomic int bad_request; /* a control request arrived wrong */
	/* Control topics (lossless and lossy): published by one process,
	 * taken by NTSUBS; lossy, what each took and lost. */
	_Atomic uint64_t tcommitted, tgot[NTSUBS];
	_Atomic uint64_t ltgot[NTSUBS], ltlost[NTSUBS];
	_Atomic int tsubs_ready, tpub_done;
	/* Victim topics: messages taken (receive or acquire) by policy. */
	_Atomic uint64_t vtaken[2];
	_Atomic uint8_t seen[NWRITERS][MAXSEQ];
};

static struct book *book;

/* Object names: victims "v.*", controls "c.*". */
static const char *n_vring, *n_vbuf, *n_varr, *n_vev, *n_vrpc;
static const char *n_cring, *n_cbuf, *n_carr, *n_cping, *n_cpong, *n_crpc;
static const char *n_vtopic, *n_vltopic, *n_ctopic, *n_cltopic;

static uint64_t rnd_state;

static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rnd_state += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static void rnd_seed(unsigned role)
{
	rnd_state = book->seed ^ ((uint64_t)role * 0x2545f4914f6cdd1du);
}

static void sleep_us(unsigned us)
{
	struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ */
/* What a victim may answer                                            */
/* ------------------------------------------------------------------ */

/*
 * Errors a call on a scribbled-on object may return besides success,
 * each because the damage can look like that (0 ends a list):
 *  -EBADMSG   the damage was seen for what it is;
 *  -EPROTO    likewise, where the format says so (wrong magic, version,
 *             kind; an rpc error frame with a status out of range);
 *  -ETIMEDOUT / -EAGAIN   a forged owner, reader count, intent or
 *             position that looks alive and busy, or a lost wake-up
 *             word: waiting until the timeout is all a caller can do;
 *  -EPIPE     a forged SHUTDOWN state (or the epoch's end, when the
 *             chaos closes the creator's handle); for rpc, a channel
 *             whose ring was found corrupt ends and its calls fail so;
 *  -EOWNERDEAD  a forged owner whose slot is dead, or a forged DIRTY
 *             bit: the lock is taken and the data called suspect;
 *  -EBUSY     (rings) a forged single-writer or single-reader mode
 *             (geometry word 2, seen by a handle opened after it) or a
 *             forged role word: another handle holds the role.
 */
static const int ok_ring_io[] = {EBADMSG, ETIMEDOUT, EAGAIN, EPIPE, EBUSY, 0};
static const int ok_lock[] = {EBADMSG, EOWNERDEAD, ETIMEDOUT, EAGAIN, 0};
static const int ok_wait[] = {ETIMEDOUT, EAGAIN, EPIPE, 0};
static const int ok_none[] = {0};
/* Opening a victim: between two epochs its name is missing (-ENOENT);
 * a forged INIT state makes the open wait for it (-ETIMEDOUT); a forged
 * header is refused. */
static const int ok_open[] = {ENOENT, ETIMEDOUT, EPROTO, EBADMSG, 0};
static const int ok_stat[] = {ENOENT, EPROTO, EBADMSG, 0};
/* An rpc call: dropped frames time out; a channel found corrupt ends
 * (-EPIPE) or fails the send (-EBADMSG); a forged error status is
 * -EPROTO; a forged length over our buffer -EMSGSIZE; -EILSEQ is our
 * own handler's answer to a request whose bytes arrived wrong. */
static const int ok_call[] = {ETIMEDOUT, EPIPE,	 EBADMSG, EPROTO,
			      EMSGSIZE,	 EILSEQ, 0};
/*
 * Topics: publish and loan as a ring's write (-EBADMSG, -ETIMEDOUT /
 * -EAGAIN, -EPIPE; -EBUSY cannot come: one loan at a time of 8); receive
 * and acquire the same, and lossy also -EOVERFLOW (a forged tail passes
 * the cursor); release 0, -EOVERFLOW (lossy) or -EBADMSG (the handle was
 * poisoned meanwhile); subscribe and unsubscribe only -EBADMSG; latest
 * -EAGAIN or -EBADMSG.  -EMSGSIZE never: our buffers hold max_msg.
 */
static const int ok_tpub[] = {EBADMSG, ETIMEDOUT, EAGAIN, EPIPE, 0};
static const int ok_ttake[] = {EBADMSG, ETIMEDOUT, EAGAIN, EPIPE, 0};
static const int ok_lttake[] = {EBADMSG, ETIMEDOUT, EAGAIN,
				EPIPE,	 EOVERFLOW, 0};
static const int ok_trelease[] = {EBADMSG, 0};
static const int ok_ltrelease[] = {EBADMSG, EOVERFLOW, 0};
static const int ok_tsub[] = {EBADMSG, 0};
static const int ok_tlatest[] = {EAGAIN, EBADMSG, 0};
/* Connecting: the server restarts (-ENOENT, -ECONNREFUSED, -EPIPE); a
 * forged server word or state (-ECONNREFUSED); forged connect slots
 * (-ETIMEDOUT; -ENOENT when a forged token names rings nobody made; a
 * forged refusal carries a resource error the server could have met,
 * or is -EPROTO); a forged header (-EPROTO, -EBADMSG). */
static const int ok_connect[] = {
	ENOENT, ETIMEDOUT, ECONNREFUSED, EPIPE,	 EPROTO, EBADMSG, ENOMEM,
	ENOSPC, EDQUOT,	   EMFILE,	 ENFILE, EEXIST, EACCES,  EROFS,
	EIO,	EFBIG,	   ENOTSUP,	 ENOLCK, EAGAIN, 0};

/*
 * Checks and counts what a call on a victim returned, and how long it
 * took.  VICTIM(kind, ok, call) notes the time, makes the call and
 * checks it.
 */
static uint64_t vt0;
#define VICTIM(kind, ok, call)                                                 \
	victim((kind), #call, (vt0 = check_now_ms(), (long)(call)), (ok))

static long victim(int kind, const char *what, long rc, const int *ok)
{
	int code = rc < 0 ? (int)-rc : 0;
	uint64_t ms = check_now_ms() - vt0, max;

	if (code) {
		const int *p;

		for (p = ok; *p && *p != code; p++)
			;
		if (!*p) {
			fprintf(stderr,
				"victim %s: %s returned %ld (%s): not an "
				"error this damage may give\n",
				kname[kind], what, rc, shmk_strerror((int)rc));
			exit(1);
		}
	}
	if (code < NCODE)
		atomic_fetch_add(&book->res[kind][code], 1);
	if (ms > 2000) /* worth a look: the machine may be that busy */
		fprintf(stderr, "victim %s: %s took %llu ms (%ld)\n",
			kname[kind], what, (unsigned long long)ms, rc);
	max = atomic_load(&book->max_ms[kind]);
	while (ms > max &&
	       !atomic_compare_exchange_weak(&book->max_ms[kind], &max, ms))
		;
	return rc;
}

/* A call on a control object must succeed. */
#define CTRL(expr)                                                             \
	do {                                                                   \
		long r_ = (long)(expr);                                        \
		if (r_ < 0) {                                                  \
			fprintf(stderr,                                        \
				"%s:%d: control: %s returned %ld "             \
				"(%s)\n",                                      \
				__FILE__, __LINE__, #expr, r_,                 \
				shmk_strerror((int)r_));                       \
			exit(1);                                               \
		}                                                              \
	} while (0)

static int stopping(void)
{
	return atomic_load(&book->stop);
}

/* ------------------------------------------------------------------ */
/* Ring messages: (writer, length, sequence, checksum) and a payload   */
/* ------------------------------------------------------------------ */

struct wire {
	uint32_t writer;
	uint32_t len;
	uint64_t seq;
	uint64_t sum;
};

static uint64_t checksum(const unsigned char *p, size_t n, uint64_t h)
{
	size_t j;

	for (j = 0; j < n; j++)
		h = (h ^ p[j]) * 1099511628211u;
	return h;
}

/* A message of at most WIRE + max bytes (its length depends on seq). */
static size_t build(unsigned char *buf, uint32_t w, uint64_t seq, size_t max)
{
	struct wire h = {.writer = w, .seq = seq};
	size_t j;

	h.len = (uint32_t)(seq % (max + 1));
	for (j = 0; j < h.len; j++)
		buf[WIRE + j] = (unsigned char)(w * 131u + seq * 7u + j);
	h.sum = checksum(buf + WIRE, h.len, 1469598103934665603u ^ seq ^ w);
	memcpy(buf, &h, WIRE);
	return WIRE + h.len;
}

/* 1 if buf (n bytes) is a message build() made, filling *h. */
static int intact(const unsigned char *buf, size_t n, struct wire *h)
{
	if (n < WIRE)
		return 0;
	memcpy(h, buf, WIRE);
	return h->writer < NWRITERS && h->len == n - WIRE &&
	       h->sum == checksum(buf + WIRE, h->len,
				  1469598103934665603u ^ h->seq ^ h->writer);
}

/* ------------------------------------------------------------------ */
/* Ring writers and readers                                            */
/* ------------------------------------------------------------------ */

static const struct shmk_opts wait_open = {.wait_ms = 50};

/* After a victim could not be opened the next try waits a little: an
 * honest program does not spin on a broken object either (and a dozen
 * that do would starve everyone else). */
static uint64_t retry_at;

static int may_retry(void)
{
	return check_now_ms() >= retry_at;
}

static void back_off(unsigned ms)
{
	retry_at = check_now_ms() + 1 + rnd() % ms;
}

static struct shmk_ring *vring_open(void)
{
	struct shmk_ring *r;

	if (!may_retry())
		return NULL;
	if (VICTIM(K_OPEN, ok_open, shmk_ring_open(n_vring, &wait_open, &r)) <
	    0) {
		back_off(4);
		return NULL;
	}
	/* A forged node size of 1 to 63 gives the same file size, so the
	 * ring is a valid one of another geometry: not the ring we use
	 * (writes over its node size would fail with -EMSGSIZE). */
	if (shmk_ring_nodes(r) != 16 || shmk_ring_node_size(r) != NODE) {
		atomic_fetch_add(&book->forged_geometry, 1);
		CHECK_OK(shmk_ring_close(r));
		back_off(4);
		return NULL;
	}
	return r;
}

static void vring_drop(struct shmk_ring **r)
{
	CHECK_OK(shmk_ring_close(*r));
	*r = NULL;
}

/* The things both ends do now and then on the victim ring. */
static void vring_extras(struct shmk_ring *vr)
{
	struct shmk_ring_stats rs;
	struct shmk_stat st;

	VICTIM(K_RING, ok_none, shmk_ring_stats(vr, &rs));
	VICTIM(K_OPEN, ok_stat, shmk_stat(n_vring, &st));
}

static int ring_writer(void *arg)
{
	uint32_t w = (uint32_t)(uintptr_t)arg;
	int fds = count_fds();
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_ring *cr, *vr = NULL;
	unsigned char buf[NODE];
	uint64_t seq = 0, vseq = 0, it;
	struct shmk_msg m;
	long rc;

	rnd_seed(10 + w);
	CHECK_OK(shmk_ring_open(n_cring, &o, &cr));
	for (it = 0; !stopping() && seq < MAXSEQ; it++) {
		size_t len = build(buf, w, seq, NODE - WIRE);

		/* Control: must go through, in order, whole. */
		if (it & 1) {
			CTRL(shmk_ring_write(cr, buf, len, CTRL_MS));
		} else {
			CTRL(shmk_ring_reserve(cr, &m, CTRL_MS));
			memcpy(m.data, buf, len);
			m.len = len;
			CTRL(shmk_ring_commit(cr, &m));
		}
		atomic_store(&book->committed[w], ++seq);

		if (!vr && !(vr = vring_open()))
			continue;
		len = build(buf, w, vseq++, NODE - WIRE);
		switch (rnd() % 4) {
		case 0:
		case 1:
			rc = VICTIM(K_RING, ok_ring_io,
				    shmk_ring_write(vr, buf, len,
						    (int)(rnd() % 3)));
			break;
		default:
			rc = VICTIM(
				K_RING, ok_ring_io,
				shmk_ring_reserve(vr, &m, (int)(rnd() % 3)));
			if (rc < 0)
				break;
			CHECK(m.len == NODE);
			memcpy(m.data, buf, len);
			m.len = len;
			/* A slow writer: the chaos may come meanwhile. */
			if (rnd() % 4 == 0)
				sleep_us((unsigned)(rnd() % 1000));
			if (rnd() % 8)
				VICTIM(K_RING, ok_none,
				       shmk_ring_commit(vr, &m));
			else
				VICTIM(K_RING, ok_none,
				       shmk_ring_abort(vr, &m));
		}
		if (it % 64 == 0)
			vring_extras(vr);
		if (rc == -EBADMSG || rc == -EPIPE || it % 256 == 0)
			vring_drop(&vr);
	}
	atomic_fetch_add(&book->writers_done, 1);
	if (vr)
		vring_drop(&vr);
	CHECK_OK(shmk_ring_close(cr));
	CHECK_EQ(count_fds(), fds);
	return 0;
}

static uint64_t committed(void)
{
	uint64_t n = 0;
	int w;

	for (w = 0; w < NWRITERS; w++)
		n += atomic_load(&book->committed[w]);
	return n;
}

static int ring_reader(void *arg)
{
	uint32_t me = (uint32_t)(uintptr_t)arg;
	int fds = count_fds();
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_ring *cr, *vr = NULL;
	uint64_t last[NWRITERS], it, idle_since = 0;
	unsigned char buf[NODE];
	struct shmk_msg m;
	struct wire h;
	long n;
	int i;

	rnd_seed(20 + me);
	for (i = 0; i < NWRITERS; i++)
		last[i] = UINT64_MAX;
	CHECK_OK(shmk_ring_open(n_cring, &o, &cr));
	for (it = 0;; it++) {
		int done = atomic_load(&book->writers_done) == NWRITERS;

		if (it & 1) {
			n = shmk_ring_read(cr, buf, sizeof(buf), 20);
		} else {
			n = shmk_ring_acquire(cr, &m, 20);
			if (n == 0) {
				CHECK(m.len <= NODE);
				memcpy(buf, m.data, m.len);
				n = (long)m.len;
				CTRL(shmk_ring_release(cr, &m));
			}
		}
		if (n >= 0) {
			/* Control: intact, once, in each writer's order. */
			if (!intact(buf, (size_t)n, &h)) {
				fprintf(stderr,
					"control ring: a message of "
					"%ld bytes is not intact\n",
					n);
				exit(1);
			}
			CHECK(h.seq < MAXSEQ);
			CHECK(last[h.writer] == UINT64_MAX ||
			      h.seq > last[h.writer]);
			last[h.writer] = h.seq;
			CHECK_EQ(atomic_exchange(&book->seen[h.writer][h.seq],
						 1),
				 0);
			atomic_fetch_add(&book->delivered, 1);
			idle_since = 0;
		} else if (n == -ETIMEDOUT || n == -EAGAIN) {
			/* Done when the writers are and all they wrote came,
			 * or nothing came for long (the parent then finds
			 * what did not). */
			if (!done)
				idle_since = 0;
			else if (atomic_load(&book->delivered) == committed())
				break;
			else if (!idle_since)
				idle_since = check_now_ms();
			else if (check_now_ms() - idle_since > 10000)
				break;
		} else {
			CTRL(n);
		}
		if (done)
			continue;

		if (!vr && !(vr = vring_open()))
			continue;
		if (rnd() % 2) {
			n = VICTIM(K_RING, ok_ring_io,
				   shmk_ring_read(vr, buf, sizeof(buf),
						  (int)(rnd() % 3)));
		} else {
			n = VICTIM(K_RING, ok_ring_io,
				   shmk_ring_acquire(vr, &m, (int)(rnd() % 3)));
			if (n == 0) {
				/* Whatever the length says, it is in the
				 * node: touch every byte of it. */
				CHECK(m.len <= NODE);
				memcpy(buf, m.data, m.len);
				n = (long)m.len;
				if (rnd() % 4 == 0) /* a slow reader */
					sleep_us((unsigned)(rnd() % 1000));
				VICTIM(K_RING, ok_none,
				       shmk_ring_release(vr, &m));
			}
		}
		if (n >= 0 && !intact(buf, (size_t)n, &h))
			atomic_fetch_add(&book->garbled, 1);
		if (it % 64 == 0)
			vring_extras(vr);
		if (n == -EBADMSG || n == -EPIPE || it % 256 == 0)
			vring_drop(&vr);
	}
	if (vr)
		vring_drop(&vr);
	CHECK_OK(shmk_ring_close(cr));
	CHECK_EQ(count_fds(), fds);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Lockers: buffer, array and event, victims and controls              */
/* ------------------------------------------------------------------ */

#define BUF_SIZE 4096
#define ARR_LEN	 64

struct rec {
	uint64_t seq, inv, who;
};

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

static void victim_event(struct lockers *L)
{
	switch (rnd() % 4) {
	case 0:
		VICTIM(K_EVENT, ok_none, shmk_event_set(L->ve));
		break;
	case 1:
		VICTIM(K_EVENT, ok_none, shmk_event_reset(L->ve));
		break;
	default:
		VICTIM(K_EVENT, ok_wait,
		       shmk_event_wait(L->ve, (int)(rnd() % 3)));
	}
}

static void victim_round(struct lockers *L, uint64_t it)
{
	struct shmk_stat st;

	if (lock_victim_open(L) < 0)
		return;
	victim_buffer(L);
	victim_array(L);
	victim_event(L);
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
static int locker(void *arg)
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

/* ------------------------------------------------------------------ */
/* RPC: a server of a victim and a control, and clients of both        */
/* ------------------------------------------------------------------ */

#define MAX_REQ 1500

static unsigned char req_byte(uint64_t tag, size_t j)
{
	return (unsigned char)(tag * 131u + j * 7u + (j >> 8));
}

/* A request: its tag in the first 8 bytes (if there is room), then
 * bytes that depend on the tag. */
static void req_build(unsigned char *p, size_t len, uint64_t tag)
{
	size_t j;

	for (j = 0; j < len; j++)
		p[j] = req_byte(tag, j);
	if (len >= 8)
		memcpy(p, &tag, 8);
}

static int req_ok(const unsigned char *p, size_t len)
{
	uint64_t tag;
	size_t j;

	if (len < 8)
		return 1;
	memcpy(&tag, p, 8);
	for (j = 8; j < len; j++)
		if (p[j] != req_byte(tag, j))
			return 0;
	return 1;
}

/* The reply: every byte of the request, xor 0xa5.  arg: 1 for the
 * victim endpoint. */
static int handler(void *arg, struct shmk_rpc_req *rq)
{
	const unsigned char *in = rq->data;
	unsigned char *out;
	size_t j;

	if (!req_ok(in, rq->len)) {
		if (!arg)
			atomic_store(&book->bad_request, 1);
		snprintf(rq->error, sizeof(rq->error), "request garbled");
		return -EILSEQ;
	}
	out = malloc(rq->len ? rq->len : 1);
	if (!out)
		return -ENOMEM;
	for (j = 0; j < rq->len; j++)
		out[j] = in[j] ^ 0xa5;
	rq->reply = out;
	rq->reply_len = rq->len;
	rq->reply_free = free;
	return 0;
}

static const struct shmk_rpc_opts vsrv_opts = {.handler = handler,
					       .arg = (void *)1,
					       .nodes = 8,
					       .node_size = 256,
					       .max_msg = 4096};
static const struct shmk_rpc_opts csrv_opts = {
	.handler = handler, .nodes = 16, .node_size = 512, .max_msg = 4096};

static struct shmk_rpc *vserve(void)
{
	struct shmk_rpc *s;
	int rc, tries = 0;

	while ((rc = shmk_rpc_serve(n_vrpc, &vsrv_opts, &s)) == -EADDRINUSE &&
	       tries++ < 100)
		sleep_ms(10);
	CHECK_OK(rc);
	return s;
}

static int rpc_server(void *arg)
{
	int fds = count_fds();
	struct shmk_rpc *cs, *vs;
	struct shmk_rpc_stats st;
	uint64_t restart;
	uint64_t ncalls = 0;
	int i;

	(void)arg;
	rnd_seed(40);
	CHECK_OK(shmk_rpc_serve(n_crpc, &csrv_opts, &cs));
	vs = vserve();
	restart = check_now_ms() + 2000 + rnd() % 2000;
	while (atomic_load(&book->clients_done) < NCLIENTS) {
		sleep_ms(10);
		if (!stopping() && check_now_ms() >= restart) {
			/* An honest restart; the old object may be in any
			 * state the chaos left it in. */
			CHECK_OK(shmk_rpc_close(vs));
			vs = vserve();
			restart = check_now_ms() + 2000 + rnd() % 2000;
		}
	}
	/* Every call on the control was served, nothing was dropped or
	 * malformed.  (A server's counters are its own: the calls and
	 * replies are its clients', who count them themselves.) */
	for (i = 0; i < NCLIENTS; i++)
		ncalls += atomic_load(&book->calls[i]);
	CHECK_OK(shmk_rpc_stats(cs, &st));
	CHECK_EQ(st.calls, 0);
	CHECK_EQ(st.served, ncalls);
	CHECK_EQ(st.replies, 0);
	CHECK_EQ(st.errors, 0);
	CHECK_EQ(st.malformed, 0);
	CHECK_EQ(st.discarded, 0);
	CHECK_EQ(st.timeouts, 0);
	CHECK_EQ(st.clients, 0);
	CHECK_OK(shmk_rpc_close(vs));
	CHECK_OK(shmk_rpc_close(cs));
	CHECK_EQ(count_fds(), fds);
	return 0;
}

static int reply_ok(const unsigned char *req, const unsigned char *rep,
		    size_t len, const struct shmk_rpc_result *res)
{
	size_t j;

	if (res->len != len)
		return 0;
	for (j = 0; j < len; j++)
		if (rep[j] != (req[j] ^ 0xa5))
			return 0;
	return 1;
}

static int rpc_client(void *arg)
{
	int me = (int)(uintptr_t)arg, fails = 0;
	int fds = count_fds();
	struct shmk_rpc_opts co = {.wait_ms = 10000};
	struct shmk_rpc_opts vo = {.wait_ms = 300};
	static unsigned char req[MAX_REQ], rep[MAX_REQ + 512];
	struct shmk_rpc *cc, *vc = NULL;
	struct shmk_rpc_result res;
	struct shmk_rpc_stats st;
	uint64_t seq = 0;
	long rc;

	rnd_seed(50 + (unsigned)me);
	CHECK_OK(shmk_rpc_connect(n_crpc, &co, &cc));
	while (!stopping()) {
		size_t len = (size_t)(rnd() % 2 ? rnd() % 200
						: rnd() % (MAX_REQ + 1));
		uint64_t tag = ((uint64_t)(me + 1) << 40) | seq++;

		req_build(req, len, tag);
		CTRL(shmk_rpc_call(cc, req, len, rep, sizeof(rep), &res,
				   CTRL_MS));
		if (!reply_ok(req, rep, len, &res)) {
			fprintf(stderr, "control rpc: a wrong reply\n");
			exit(1);
		}
		atomic_fetch_add(&book->calls[me], 1);

		if (!vc) {
			if (!may_retry())
				continue;
			rc = VICTIM(K_CONNECT, ok_connect,
				    shmk_rpc_connect(n_vrpc, &vo, &vc));
			if (rc < 0) {
				back_off(20);
				continue;
			}
			fails = 0;
		}
		rc = VICTIM(K_RPC, ok_call,
			    shmk_rpc_call(vc, req, len, rep, sizeof(rep), &res,
					  100));
		if (rc == 0 && !reply_ok(req, rep, len, &res))
			atomic_fetch_add(&book->garbled, 1);
		if (seq % 32 == 0)
			VICTIM(K_RPC, ok_none, shmk_rpc_stats(vc, &st));
		/* A channel that ended, or that has stopped answering (a
		 * forged position can wedge it for good): a new one. */
		fails = rc < 0 ? fails + 1 : 0;
		if (rc == -EPIPE || rc == -EBADMSG || fails >= 3) {
			CHECK_OK(shmk_rpc_close(vc));
			vc = NULL;
		}
	}
	if (vc)
		CHECK_OK(shmk_rpc_close(vc));
	CHECK_OK(shmk_rpc_close(cc));
	atomic_fetch_add(&book->clients_done, 1);
	CHECK_EQ(count_fds(), fds);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Topics: a publisher and subscribers, victims and a control          */
/* ------------------------------------------------------------------ */

#define TOPIC_CAP   16384 /* victims: 64 descriptors, 256 granules */
#define TOPIC_MAX   1000
#define TOPIC_MSG   300 /* the longest message we publish */
#define CTOPIC_CAP  65536
#define CLTOPIC_CAP 16384 /* the lossy control: small, lapped often */

/* A victim topic as a process uses it: one policy, opened on demand. */
struct vtopic {
	const char *name;
	int kind, lossy;
	struct shmk_topic *t;
	int subscribed, pollfd;
	uint64_t seq, it;
};

/* A message handed out in place lies in the log of the handle's own
 * mapping (the last capacity bytes), whole, whatever the words said. */
static void topic_inside(struct shmk_topic *t, const struct shmk_msg *m)
{
	struct shmk__region *r = shmk__topic_region(t);
	const char *hi = (const char *)r->hdr + r->size;
	const char *lo = hi - shmk_topic_capacity(t), *d = m->data;

	if (d < lo || d >= hi || m->len > shmk_topic_max_msg(t) ||
	    m->len > (size_t)(hi - d)) {
		fprintf(stderr,
			"topic: a message of %zu bytes at offset %td of a "
			"log of %zu handed out\n",
			m->len, d - lo, shmk_topic_capacity(t));
		exit(1);
	}
}

static int vtopic_open(struct vtopic *v)
{
	if (v->t)
		return 0;
	if (!may_retry())
		return -1;
	if (VICTIM(K_OPEN, ok_open,
		   shmk_topic_open(v->name, &wait_open, &v->t)) < 0) {
		back_off(4);
		return -1;
	}
	/* A forged max_msg or policy gives the same file size: a valid
	 * topic, but not the one we made. */
	if (shmk_topic_capacity(v->t) != TOPIC_CAP ||
	    shmk_topic_max_msg(v->t) != TOPIC_MAX ||
	    shmk_topic_lossy(v->t) != v->lossy) {
		atomic_fetch_add(&book->forged_geometry, 1);
		CHECK_OK(shmk_topic_close(v->t));
		v->t = NULL;
		back_off(4);
		return -1;
	}
	v->subscribed = 0;
	/* Half the handles have a wake-up socket: every -EAGAIN arms it,
	 * and notifiers follow the (forged) tokens of the slots. */
	v->pollfd = -1;
	if (rnd() % 2)
		v->pollfd =
			(int)VICTIM(v->kind, ok_none, shmk_topic_pollfd(v->t));
	return 0;
}

/* After an -EAGAIN: wait a little for the socket to say there is more. */
static void vtopic_poll(struct vtopic *v, long rc)
{
	struct pollfd p = {.fd = v->pollfd, .events = POLLIN};

	if (rc == -EAGAIN && v->pollfd >= 0)
		CHECK(poll(&p, 1, (int)(rnd() % 2)) >= 0);
}

static void vtopic_drop(struct vtopic *v)
{
	if (v->t)
		CHECK_OK(shmk_topic_close(v->t));
	v->t = NULL;
}

/* What publishers and subscribers both do now and then. */
static void vtopic_extras(struct vtopic *v)
{
	unsigned char buf[TOPIC_MAX];
	struct shmk_topic_stats ts;
	struct shmk_stat st;
	struct wire h;
	long n;

	n = VICTIM(v->kind, ok_tlatest,
		   shmk_topic_latest(v->t, buf, sizeof(buf)));
	if (n >= 0 && !intact(buf, (size_t)n, &h))
		atomic_fetch_add(&book->garbled, 1);
	VICTIM(v->kind, ok_none, shmk_topic_stats(v->t, &ts));
	VICTIM(K_OPEN, ok_stat, shmk_stat(v->name, &st));
}

static void vtopic_publish(struct vtopic *v)
{
	unsigned char buf[WIRE + TOPIC_MSG];
	size_t len = build(buf, 1, v->seq++, TOPIC_MSG);
	struct shmk_msg m;
	long rc;

	if (vtopic_open(v) < 0)
		return;
	if (rnd() % 2) {
		rc = VICTIM(
			v->kind, ok_tpub,
			shmk_topic_publish(v->t, buf, len, (int)(rnd() % 3)));
	} else {
		size_t size = len + (size_t)(rnd() % 64);

		rc = VICTIM(v->kind, ok_tpub,
			    shmk_topic_loan(v->t, size, &m, (int)(rnd() % 3)));
		if (rc == 0) {
			topic_inside(v->t, &m);
			CHECK(m.len == size);
			memset(m.data, 0x5a, size);
			memcpy(m.data, buf, len);
			m.len = len;
			/* A slow publisher: the chaos may come meanwhile. */
			if (rnd() % 4 == 0)
				sleep_us((unsigned)(rnd() % 1000));
			if (rnd() % 8)
				VICTIM(v->kind, ok_none,
				       shmk_topic_commit(v->t, &m));
			else
				VICTIM(v->kind, ok_none,
				       shmk_topic_abandon(v->t, &m));
		}
	}
	vtopic_poll(v, rc);
	if (v->it++ % 64 == 0)
		vtopic_extras(v);
	if (rc == -EBADMSG || rc == -EPIPE || v->it % 256 == 0)
		vtopic_drop(v);
}

static void vtopic_take(struct vtopic *v)
{
	static const int hist[] = {0, -1, 1, 7, 1000};
	const int *ok = v->lossy ? ok_lttake : ok_ttake;
	unsigned char buf[TOPIC_MAX];
	struct shmk_msg m;
	struct wire h;
	long n;

	if (vtopic_open(v) < 0)
		return;
	if (!v->subscribed) {
		n = VICTIM(v->kind, ok_tsub,
			   shmk_topic_subscribe(v->t, hist[rnd() % 5]));
		if (n < 0) {
			vtopic_drop(v);
			return;
		}
		v->subscribed = 1;
	}
	if (rnd() % 2) {
		n = VICTIM(v->kind, ok,
			   shmk_topic_receive(v->t, buf, sizeof(buf),
					      (int)(rnd() % 3)));
	} else {
		n = VICTIM(v->kind, ok,
			   shmk_topic_acquire(v->t, &m, (int)(rnd() % 3)));
		if (n == 0) {
			long rc;

			/* Whatever the descriptor said, the message is in
			 * the log: read every byte of it. */
			topic_inside(v->t, &m);
			memcpy(buf, m.data, m.len);
			n = (long)m.len;
			if (rnd() % 4 == 0) /* a slow subscriber */
				sleep_us((unsigned)(rnd() % 1000));
			rc = VICTIM(v->kind,
				    v->lossy ? ok_ltrelease : ok_trelease,
				    shmk_topic_release(v->t, &m));
			if (rc < 0)
				n = rc; /* overwritten meanwhile: torn */
		}
	}
	vtopic_poll(v, n);
	if (n >= 0) {
		atomic_fetch_add(&book->vtaken[v->lossy], 1);
		if (!intact(buf, (size_t)n, &h))
			atomic_fetch_add(&book->garbled, 1);
	}
	if (v->it++ % 64 == 0)
		vtopic_extras(v);
	if (n != -EBADMSG && rnd() % 128 == 0) {
		n = VICTIM(v->kind, ok_tsub, shmk_topic_unsubscribe(v->t));
		v->subscribed = 0;
	}
	if (n == -EBADMSG || n == -EPIPE || v->it % 256 == 0)
		vtopic_drop(v);
}

static void vtopics_init(struct vtopic v[2])
{
	memset(v, 0, 2 * sizeof(*v));
	v[0].name = n_vtopic;
	v[0].kind = K_TOPIC;
	v[1].name = n_vltopic;
	v[1].kind = K_LTOPIC;
	v[1].lossy = 1;
}

/*
 * The publisher: each control message (published, or loaned and
 * committed) goes to every subscriber, in order, once, intact; between
 * two of them one call on a victim topic, of each policy in turn.
 */
static int topic_pub(void *arg)
{
	int fds = count_fds();
	struct shmk_opts o = {.wait_ms = 5000};
	unsigned char buf[WIRE + TOPIC_MSG];
	struct shmk_topic *ct[2];
	struct vtopic v[2];
	struct shmk_msg m;
	uint64_t seq = 0;
	int k;

	(void)arg;
	rnd_seed(60);
	vtopics_init(v);
	CHECK_OK(shmk_topic_open(n_ctopic, &o, &ct[0]));
	CHECK_OK(shmk_topic_open(n_cltopic, &o, &ct[1]));
	while (atomic_load(&book->tsubs_ready) < NTSUBS)
		sleep_ms(1);
	while (!stopping()) {
		size_t len = build(buf, 0, seq, TOPIC_MSG);

		for (k = 0; k < 2; k++) {
			if ((seq + (unsigned)k) & 1) {
				CTRL(shmk_topic_publish(ct[k], buf, len,
							CTRL_MS));
				continue;
			}
			CTRL(shmk_topic_loan(ct[k], len, &m, CTRL_MS));
			topic_inside(ct[k], &m);
			memcpy(m.data, buf, len);
			CTRL(shmk_topic_commit(ct[k], &m));
		}
		atomic_store(&book->tcommitted, ++seq);
		vtopic_publish(&v[seq % 2]);
	}
	atomic_store(&book->tpub_done, 1);
	vtopic_drop(&v[0]);
	vtopic_drop(&v[1]);
	CHECK_OK(shmk_topic_close(ct[0]));
	CHECK_OK(shmk_topic_close(ct[1]));
	CHECK_EQ(count_fds(), fds);
	return 0;
}

/*
 * One look at the lossy control topic.  What comes is intact, and is
 * message number (taken + lost so far): nothing repeated, nothing out of
 * order, nothing lost without being counted.  A message overwritten while
 * held (release: -EOVERFLOW) is counted lost, and not looked at.
 */
static long lossy_take(struct shmk_topic *lt, uint64_t *got, int timeout)
{
	unsigned char buf[WIRE + TOPIC_MSG];
	struct wire h = {0};
	struct shmk_msg m;
	long n;

	if (*got % 2) {
		n = shmk_topic_receive(lt, buf, sizeof(buf), timeout);
	} else {
		n = shmk_topic_acquire(lt, &m, timeout);
		if (n == 0) {
			topic_inside(lt, &m);
			CHECK(m.len <= sizeof(buf));
			memcpy(buf, m.data, m.len);
			n = shmk_topic_release(lt, &m);
			if (n == 0)
				n = (long)m.len;
		}
	}
	if (n == -EOVERFLOW || n == -ETIMEDOUT || n == -EAGAIN)
		return n;
	CTRL(n);
	if (!intact(buf, (size_t)n, &h) || h.writer != 0 ||
	    h.seq != *got + shmk_topic_lost(lt)) {
		fprintf(stderr,
			"lossy control topic: %ld bytes (seq %llu) after "
			"%llu taken, %llu lost\n",
			n, (unsigned long long)h.seq, (unsigned long long)*got,
			(unsigned long long)shmk_topic_lost(lt));
		exit(1);
	}
	++*got;
	return n;
}

static int topic_sub(void *arg)
{
	int me = (int)(uintptr_t)arg;
	int fds = count_fds();
	struct shmk_opts o = {.wait_ms = 5000};
	unsigned char buf[WIRE + TOPIC_MSG];
	uint64_t next = 0, lgot = 0, it, idle_since = 0;
	struct shmk_topic *ct, *lt;
	struct vtopic v[2];
	struct shmk_msg m;
	struct wire h = {0};
	long n;

	rnd_seed(70 + (unsigned)me);
	vtopics_init(v);
	CHECK_OK(shmk_topic_open(n_ctopic, &o, &ct));
	CHECK_OK(shmk_topic_subscribe(ct, 0));
	CHECK_OK(shmk_topic_open(n_cltopic, &o, &lt));
	CHECK_OK(shmk_topic_subscribe(lt, 0));
	atomic_fetch_add(&book->tsubs_ready, 1);
	for (it = 0;; it++) {
		int done = atomic_load(&book->tpub_done);

		if (it & 1) {
			n = shmk_topic_receive(ct, buf, sizeof(buf), 20);
		} else {
			n = shmk_topic_acquire(ct, &m, 20);
			if (n == 0) {
				topic_inside(ct, &m);
				CHECK(m.len <= sizeof(buf));
				memcpy(buf, m.data, m.len);
				n = (long)m.len;
				CTRL(shmk_topic_release(ct, &m));
			}
		}
		if (n >= 0) {
			/* Control: intact, every one, once, in order. */
			if (!intact(buf, (size_t)n, &h) || h.writer != 0 ||
			    h.seq != next) {
				fprintf(stderr,
					"control topic: subscriber %d got "
					"%ld bytes (seq %llu) for message "
					"%llu\n",
					me, n, (unsigned long long)h.seq,
					(unsigned long long)next);
				exit(1);
			}
			atomic_store(&book->tgot[me], ++next);
			idle_since = 0;
		} else if (n == -ETIMEDOUT || n == -EAGAIN) {
			if (!done)
				idle_since = 0;
			else if (next == atomic_load(&book->tcommitted))
				break;
			else if (!idle_since)
				idle_since = check_now_ms();
			else if (check_now_ms() - idle_since > 10000)
				break;
		} else {
			CTRL(n);
		}
		if (done)
			continue;
		lossy_take(lt, &lgot, 0);
		if (it % 16 == 0) {
			/* The newest, while the publisher laps the log. */
			n = shmk_topic_latest(lt, buf, sizeof(buf));
			if (n != -EAGAIN)
				CTRL(n);
			CHECK(n < 0 ||
			      (intact(buf, (size_t)n, &h) && h.writer == 0));
		}
		vtopic_take(&v[it % 2]);
	}
	/* The publisher is done: what is left of the lossy control. */
	while ((n = lossy_take(lt, &lgot, 20)) >= 0 || n == -EOVERFLOW)
		;
	atomic_store(&book->ltgot[me], lgot);
	atomic_store(&book->ltlost[me], shmk_topic_lost(lt));
	vtopic_drop(&v[0]);
	vtopic_drop(&v[1]);
	CHECK_OK(shmk_topic_close(ct));
	CHECK_OK(shmk_topic_close(lt));
	CHECK_EQ(count_fds(), fds);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The chaos                                                           */
/* ------------------------------------------------------------------ */

/* docs/format.md */
#define O_MAGIC	     0x000
#define O_ENDIAN     0x004
#define O_VERSION    0x008
#define O_KIND	     0x00a
#define O_HDR_SIZE   0x00c
#define O_TOTAL	     0x010
#define O_GEOM	     0x018
#define O_STATE	     0x100
#define O_STATE_SEQ  0x104
#define O_NSLOTS     0x108
#define O_COUNTER    0x140
#define O_CTL	     0x400
#define O_PART	     0x1000
#define HDR_SIZE     0x3000
#define RING_PARTS   0x3000 /* 128 blocks of 16 operation slots */
#define RING_DESC    0x23000
#define POS_MAX	     ((UINT64_C(1) << 62) - 1)
#define ROLE_W	     (UINT64_C(1) << 62)
#define ROLE_R	     (UINT64_C(2) << 62)
#define SKIP_BIT     (UINT64_C(1) << 63)
#define RW_HELD	     (UINT64_C(1) << 62)
#define RW_DIRTY     (UINT64_C(1) << 63)
#define FRAME_MAGIC  0x50524b53u
#define MAX_TARGETS  26
#define MAX_RESTORES 64
/* Topics (src/topic.c): the control words, 128 participant blocks of 8
 * loan slots (intent, granules, counters) and a subscription (cursor,
 * counters), the descriptors (seq, link, start, len), the log. */
#define TOPIC_FLOOR (O_CTL + 0x48)
#define TOPIC_PARTS 0x3000
#define TOPIC_PART  576
#define TOPIC_SUB   512
#define TOPIC_DESC  0x15000
#define TOPIC_N	    64 /* TOPIC_CAP / 256 */
#define TOPIC_LOG   0x16000
#define TOPIC_BIT   (UINT64_C(1) << 63) /* an intent's, a cursor's */
#define TOPIC_IDX   ((UINT64_C(1) << 61) - 1)

enum { T_RING, T_BUFFER, T_ARRAY, T_EVENT, T_RPC, T_TOPIC, T_LTOPIC, T_CHAN };

struct target {
	int type; /* T_*; unused slot: map NULL */
	unsigned char *map;
	size_t size;
	dev_t dev;
	ino_t ino;
	unsigned gen; /* bumped at each (re)mapping */
	int seen;     /* channel rings: still open somewhere */
	/* Rings: the layout, from the header as it was when mapped. */
	uint64_t n, node, stride, data;
};

struct restore {
	struct target *t;
	unsigned gen;
	uint64_t off, orig, when;
	int width;
};

struct chaos {
	struct target t[MAX_TARGETS];
	struct restore rs[MAX_RESTORES];
	struct shmk_ring *ring;
	struct shmk_buffer *buf;
	struct shmk_array *arr;
	struct shmk_event *ev;
	struct shmk_topic *topic, *ltopic;
};

static uint64_t load(struct target *t, uint64_t off, int width)
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

static void store(struct target *t, uint64_t off, int width, uint64_t v)
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

static void unmap(struct target *t)
{
	if (t->map)
		munmap(t->map, t->size);
	t->map = NULL;
	t->gen++;
}

/* Maps the file open at fd, read-write, as the target of type. */
static int map_fd(struct target *t, int fd, int type)
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

static void shm_path(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "/dev/shm/shmk.%s", name);
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
	CHECK(shmk__topic_region(c->topic)->size == TOPIC_LOG + TOPIC_CAP);
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

/*
 * Is the descriptor at path (a process's /proc/<pid>/fd entry whose link
 * is link) a ring of the victim rpc server's channels?  Channel rings are
 * anonymous memfds ("/memfd:shmk.ring"); the victim's have 8 nodes of 256
 * bytes, the control server's 16 of 512, so the geometry tells them apart
 * (read once, when a ring is first seen, before it was scribbled on).
 */
static int victim_chan(const char *path, const char *link)
{
	uint64_t g[2];
	ssize_t n;
	int fd;

	if (strncmp(link, "/memfd:shmk.ring", 16))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = pread(fd, g, sizeof(g), O_GEOM);
	close(fd);
	return n == (ssize_t)sizeof(g) && g[0] == 8 && g[1] == 256;
}

/*
 * Finds the victim rpc object (the server makes a new one at each
 * restart) and the rings of its channels, open in the rpc processes
 * (/proc/<pid>/fd: they never had names).
 */
static void scan_rpc(struct chaos *c)
{
	struct target *obj = &c->t[T_RPC];
	char path[512], link[512];
	struct stat st;
	int i, k;

	shm_path(path, sizeof(path), n_vrpc);
	if (stat(path, &st) == 0 &&
	    (!obj->map || st.st_ino != obj->ino || st.st_dev != obj->dev)) {
		int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);

		if (fd >= 0) {
			map_fd(obj, fd, T_RPC);
			close(fd);
		}
	}
	for (k = T_CHAN; k < MAX_TARGETS; k++)
		c->t[k].seen = 0;
	for (i = 0; i < 1 + NCLIENTS; i++) {
		struct dirent *e;
		char dir[64];
		DIR *d;

		snprintf(dir, sizeof(dir), "/proc/%d/fd",
			 (int)book->rpc_pids[i]);
		d = opendir(dir);
		if (!d)
			continue;
		while ((e = readdir(d))) {
			ssize_t n;
			int fd, slot = -1;

			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = 0;
			if (strncmp(link, "/memfd:shmk.ring", 16) ||
			    stat(path, &st) < 0)
				continue;
			for (k = T_CHAN; k < MAX_TARGETS; k++) {
				if (c->t[k].map && c->t[k].ino == st.st_ino &&
				    c->t[k].dev == st.st_dev) {
					c->t[k].seen = 1;
					break;
				}
				if (!c->t[k].map && slot < 0)
					slot = k;
			}
			if (k < MAX_TARGETS || slot < 0 ||
			    !victim_chan(path, link))
				continue;
			fd = open(path, O_RDWR | O_CLOEXEC);
			if (fd < 0)
				continue;
			if (map_fd(&c->t[slot], fd, T_CHAN) == 0) {
				c->t[slot].seen = 1;
				atomic_fetch_add(&book->chans, 1);
			}
			close(fd);
		}
		closedir(d);
	}
	for (k = T_CHAN; k < MAX_TARGETS; k++)
		if (c->t[k].map && !c->t[k].seen)
			unmap(&c->t[k]);
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

/* A field to scribble on: its offset, width and plausible values. */
struct field {
	uint64_t off;
	int width;
	int nh;
	uint64_t h[12];
};

static void hint(struct field *f, uint64_t v)
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

/* Node i of a ring near its positions, mostly. */
static uint64_t near_node(struct target *t, uint64_t pos)
{
	return (rnd() % 2 ? pos + rnd() % 3 - 1 : rnd()) % t->n;
}

static void pick_ring(struct target *t, struct field *f)
{
	uint64_t head = load(t, O_CTL, 8), tail = load(t, O_CTL + 0x40, 8);
	uint64_t n = t->n, i, d;
	unsigned r = (unsigned)(rnd() % (t->type == T_CHAN ? 14 : 10));

	if (!n) { /* no layout: only the control words */
		r = (unsigned)(rnd() % 3);
	}
	switch (r) {
	case 0:
	case 1:
		f->off = r ? O_CTL + 0x40 : O_CTL; /* tail : head */
		f->width = 8;
		hint(f, r ? head : tail);
		hint(f, (r ? head : tail) + 1);
		hint(f, (r ? tail : head) + n);
		hint(f, (r ? tail : head) - n);
		hint(f, (r ? tail : head) + n + 1);
		hint(f, POS_MAX);
		hint(f, POS_MAX + 1);
		hint(f, SKIP_BIT);
		break;
	case 2:
		f->off = O_CTL + 0x80 + 0x40 * (rnd() % 2); /* eventcounts */
		f->width = 4;
		hint(f, load(t, f->off, 4) | 1);
		hint(f, load(t, f->off, 4) + 2);
		break;
	case 3:
	case 4:
	case 5:
	case 6:
		i = near_node(t, rnd() % 2 ? head : tail);
		d = RING_DESC + 64 * i;
		f->off = d; /* seq */
		f->width = 8;
		hint(f, head);
		hint(f, tail);
		hint(f, tail + 1);
		hint(f, i + n * (rnd() % 4));
		hint(f, i + n * (rnd() % 4) + 1);
		hint(f, (i + n * (rnd() % 4) + 1) | SKIP_BIT);
		hint(f, (tail + 1) | SKIP_BIT);
		hint(f, i + n * ((head + n) / n));
		hint(f, POS_MAX);
		hint(f, POS_MAX + 1);
		break;
	case 7:
		i = near_node(t, tail);
		f->off = RING_DESC + 64 * i + 8; /* len */
		f->width = 8;
		hint(f, t->node);
		hint(f, t->node + 1);
		hint(f, 48);
		hint(f, 47);
		break;
	case 8:
		/* An operation slot's intent: a position of a live role. */
		f->off = RING_PARTS + 1024 * (rnd() % 8) + 64 * (rnd() % 2);
		f->width = 8;
		hint(f, (head - 1) | ROLE_W);
		hint(f, head | ROLE_W);
		hint(f, tail | ROLE_R);
		hint(f, (tail - 1) | ROLE_R);
		hint(f, (head - 1) | ROLE_R);
		hint(f, 0);
		break;
	case 9:
		f->off = RING_PARTS + 1024 * (rnd() % 8) + 64 * (rnd() % 2) +
			 8 + 8 * (rnd() % 7); /* counters */
		f->width = 8;
		break;
	default: {
		/* A frame header in a node (rpc channel rings). */
		static const struct {
			uint8_t off, width;
		} fr[] = {{0, 4},  {4, 2},  {6, 1},  {7, 1},  {8, 4},
			  {12, 4}, {16, 8}, {24, 8}, {32, 8}, {40, 8}};
		unsigned k = (unsigned)(rnd() % 10);

		i = near_node(t, rnd() % 2 ? head : tail);
		if (t->node < 48)
			break;
		f->off = t->data + i * t->stride + fr[k].off;
		f->width = fr[k].width;
		hint(f, FRAME_MAGIC);
		hint(f, 1 + rnd() % 7);
		hint(f, t->node - 48);
		hint(f, t->node - 47);
		hint(f, 4096);
		hint(f, 4097);
		hint(f, (uint64_t) - (int64_t)(1 + rnd() % 4096));
		hint(f, 1 + rnd() % 64);
	}
	}
}

/* A message number near head or tail, mostly. */
static uint64_t near_msg(uint64_t head, uint64_t tail)
{
	return (rnd() % 2 ? head : tail) + rnd() % 5 - 2;
}

static void pick_topic(struct target *t, struct field *f)
{
	uint64_t head = load(t, O_CTL, 8), tail = load(t, O_CTL + 0x40, 8);
	uint64_t maxg = (TOPIC_MAX + 63) / 64, cg = TOPIC_CAP / 64, j, v;
	uint64_t part =
		TOPIC_PARTS + TOPIC_PART * (rnd() % 4 ? rnd() % 4 : rnd() % 8);
	unsigned st;

	switch (rnd() % 13) {
	case 0:
		f->off = O_CTL; /* head */
		f->width = 8;
		hint(f, tail);
		hint(f, head + 1);
		hint(f, head - 1);
		hint(f, tail + TOPIC_N);
		hint(f, tail + TOPIC_N + 1);
		hint(f, TOPIC_IDX);
		hint(f, TOPIC_IDX + 1);
		break;
	case 1:
		f->off = O_CTL + 0x40; /* tail */
		f->width = 8;
		hint(f, head);
		hint(f, head + 1);
		hint(f, tail + 1);
		hint(f, tail - 1);
		hint(f, head - TOPIC_N);
		hint(f, head - TOPIC_N - 1);
		break;
	case 2:
		f->off = TOPIC_FLOOR;
		f->width = 8;
		hint(f, head);
		hint(f, head + 1);
		hint(f, tail);
		hint(f, tail - 1);
		hint(f, TOPIC_IDX);
		break;
	case 3:
		f->off = O_CTL + 0x80 + 0x40 * (rnd() % 2); /* eventcounts */
		f->width = 4;
		hint(f, load(t, f->off, 4) | 1);
		hint(f, load(t, f->off, 4) + 2);
		break;
	case 4:
	case 5:
		/* A descriptor's seq: message j in one of its states. */
		j = near_msg(head, tail);
		f->off = TOPIC_DESC + 64 * (j % TOPIC_N);
		f->width = 8;
		for (st = 0; st < 4; st++)
			hint(f, j * 4 + st);
		hint(f, (j + TOPIC_N) * 4 + rnd() % 4);
		hint(f, (j - TOPIC_N) * 4 + rnd() % 4);
		hint(f, (j + 1) * 4 + 2);
		hint(f, TOPIC_IDX * 4 + 2);
		break;
	case 6:
		/* Link or start: granule positions. */
		j = near_msg(head, tail);
		f->off = TOPIC_DESC + 64 * (j % TOPIC_N) + 8 * (1 + rnd() % 2);
		f->width = 8;
		v = load(t, f->off, 8);
		hint(f, v + cg);
		hint(f, v - cg);
		hint(f, v + cg - 1);
		hint(f, v + cg - maxg + 1);
		hint(f, v / cg * cg + cg - 1);
		hint(f, UINT64_MAX - cg);
		break;
	case 7:
		j = near_msg(head, tail);
		f->off = TOPIC_DESC + 64 * (j % TOPIC_N) + 24; /* len */
		f->width = 8;
		hint(f, TOPIC_MAX);
		hint(f, TOPIC_MAX + 1);
		hint(f, TOPIC_CAP);
		hint(f, 64 * maxg);
		hint(f, UINT64_MAX - 62);
		break;
	case 8:
		/* An intent: a message a publisher (live or dead) claims. */
		f->off = part + 64 * (rnd() % 8);
		f->width = 8;
		hint(f, (head - 1) | TOPIC_BIT);
		hint(f, (head - 2) | TOPIC_BIT);
		hint(f, head | TOPIC_BIT);
		hint(f, tail | TOPIC_BIT);
		hint(f, 0);
		break;
	case 9:
		f->off = part + 64 * (rnd() % 8) + 8; /* its granules */
		f->width = 8;
		hint(f, maxg);
		hint(f, maxg + 1);
		hint(f, cg);
		hint(f, 0);
		break;
	case 10:
		f->off = part + TOPIC_SUB; /* a cursor */
		f->width = 8;
		hint(f, TOPIC_BIT | tail);
		hint(f, TOPIC_BIT | (tail - 1));
		hint(f, TOPIC_BIT | head);
		hint(f, TOPIC_BIT | (head + 1));
		hint(f, TOPIC_BIT);
		hint(f, 0);
		break;
	case 11:
		/* A counter: a loan slot's or a subscription's. */
		f->off = part + 64 * (rnd() % 9) + 8 * (2 + rnd() % 6);
		f->width = 8;
		break;
	default: {
		/* The log, under a subscriber's feet. */
		static const int widths[] = {1, 2, 4, 8};

		f->width = widths[rnd() % 4];
		f->off = TOPIC_LOG + rnd() % TOPIC_CAP / (uint64_t)f->width *
					     (uint64_t)f->width;
	}
	}
}

static void pick_lock(struct target *t, struct field *f)
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

static void pick_event(struct field *f)
{
	switch (rnd() % 3) {
	case 0:
		f->off = O_CTL; /* state */
		f->width = 4;
		hint(f, 0);
		hint(f, 1);
		hint(f, 2);
		break;
	case 1:
		f->off = O_CTL + 4; /* sets */
		f->width = 4;
		break;
	default:
		f->off = O_CTL + 0x40;
		f->width = 4;
	}
}

/*
 * The rpc object: only its server maps it, and only its header is read by
 * clients (with a private copy: the generic header fields above).  Its
 * control area is unused and its counters are the server's; scribbling
 * them must change nothing a client sees.
 */
static void pick_rpc(struct target *t, struct field *f)
{
	(void)t;
	if (rnd() % 2) {
		f->off = O_CTL + 8 * (rnd() % (3072 / 8));
		f->width = 8;
	} else {
		f->off = 0x140 + 8 * (rnd() % 32); /* a counter */
		f->width = 8;
		hint(f, 0);
		hint(f, UINT64_MAX);
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

static int chaos(void *arg)
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
			scan_rpc(&c);
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

/* ------------------------------------------------------------------ */
/* What the chaos found, each made once on purpose                     */
/* ------------------------------------------------------------------ */

static const char *n_fixed;

static unsigned char *map_name(const char *name, size_t len)
{
	char path[256];
	void *m;
	int fd;

	shm_path(path, sizeof(path), name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	close(fd);
	return m;
}

/* A server whose header a peer scribbled on still removes its name when
 * it closes (shmk_unlink() refused the wrong magic, so the name stayed
 * and the next shmk_rpc_serve() of it failed with -EADDRINUSE). */
static void test_scribbled_server(void)
{
	struct shmk_rpc *s;
	unsigned char *m;
	char path[256];

	CHECK_OK(shmk_rpc_serve(n_fixed, &csrv_opts, &s));
	m = map_name(n_fixed, HDR_SIZE);
	store(&(struct target){.map = m}, O_MAGIC, 4, 0);
	munmap(m, HDR_SIZE);
	CHECK_OK(shmk_rpc_close(s));
	shm_path(path, sizeof(path), n_fixed);
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);
	CHECK_OK(shmk_rpc_serve(n_fixed, &csrv_opts, &s));
	CHECK_OK(shmk_rpc_close(s));
}

static int stopped_server(void *arg)
{
	struct shmk_rpc *s;

	(void)arg;
	CHECK_OK(shmk_rpc_serve(n_fixed, &csrv_opts, &s));
	for (;;)
		pause();
}

/* A refusal as the handshake carries it (docs/format.md 5.6.2). */
static int parse_refusal(int32_t why)
{
	uint32_t w[12] = {0x48524b53u, 1u | (3u << 16), (uint32_t)why};
	struct shmk__rpc_answer a;

	return shmk__rpc_answer_parse(w, sizeof(w), 0, &a);
}

/* A refusal's code is the server's to give: a forged one that no server
 * gives reads as a corrupt answer (it used to come back from connect as
 * is: -EINVAL, as if the caller's arguments were wrong). */
static void test_forged_refusal(void)
{
	struct shmk_rpc_opts o = {.wait_ms = 300};
	static const int forged[][2] = {
		{-EINVAL, -EPROTO}, {-ENOSPC, -ENOSPC},	  {-EUSERS, -EUSERS},
		{-4096, -EPROTO},   {INT32_MIN, -EPROTO}, {0, -EPROTO}};
	struct shmk_rpc *c;
	struct shmk_stat st;
	pid_t srv;
	size_t i;
	int status;

	for (i = 0; i < sizeof(forged) / sizeof(forged[0]); i++)
		CHECK_EQ(parse_refusal(forged[i][0]), forged[i][1]);
	/* A stopped server: the kernel takes the connection, nobody
	 * answers; the connect gives up at its deadline. */
	srv = spawn(stopped_server, NULL);
	while (shmk_stat(n_fixed, &st) != 0 || st.nalive < 1)
		sleep_ms(1);
	kill(srv, SIGSTOP);
	CHECK(waitpid(srv, &status, WUNTRACED) == srv && WIFSTOPPED(status));
	CHECK_RC(shmk_rpc_connect(n_fixed, &o, &c), -ETIMEDOUT);
	kill(srv, SIGKILL);
	CHECK_EQ(wait_child(srv, 5000), 128 + SIGKILL);
	CHECK_OK(shmk_unlink(n_fixed));
}

/* The server's socket, as a hostile client reaches it. */
static int raw_connect(const char *name)
{
	int s = rpc_raw_connect(name);

	CHECK(s >= 0);
	return s;
}

/*
 * The hostile peer on the handshake: random bytes, truncated and
 * oversized hellos, a hello with descriptors attached (the server's
 * /dev/null, a socket), many at once: each is dropped, the server's
 * descriptors are where they were, and an honest client connects.
 */
static void test_hostile_handshake(void)
{
	struct shmk_rpc_opts o = {.wait_ms = 5000};
	struct shmk_rpc *s, *c;
	struct shmk_rpc_stats st;
	int i, fds0;

	CHECK_OK(shmk_rpc_serve(n_fixed, &csrv_opts, &s));
	CHECK_OK(shmk_rpc_connect(n_fixed, &o, &c)); /* warm */
	CHECK_OK(shmk_rpc_close(c));
	sleep_ms(50);
	fds0 = count_fds();
	for (i = 0; i < 400; i++) {
		uint32_t w[16];
		int k, sk = raw_connect(n_fixed);
		size_t len;

		for (k = 0; k < 16; k++)
			w[k] = (uint32_t)rnd();
		/* A true hello's words, mostly, each time with one thing
		 * wrong: a nonzero reserved word, or a pid not ours. */
		w[2] = (uint32_t)getpid() + (i % 8 == 1);
		if (i % 4 != 0) {
			w[0] = 0x48524b53u;
			w[1] = 1u | (1u << 16);
			w[3] = i % 8 == 1 ? 0 : w[3] | 1;
		}
		len = i % 5 == 0   ? rnd() % 64
		      : i % 5 == 1 ? 15
		      : i % 5 == 2 ? 17
				   : 16;
		if (i % 3 == 0) {
			/* With descriptors nobody asked for. */
			union {
				struct cmsghdr h;
				char b[CMSG_SPACE(sizeof(int) * 2)];
			} u;
			int pass[2] = {open("/dev/null", O_RDONLY | O_CLOEXEC),
				       sk};
			struct iovec iov = {w, len};
			struct msghdr mh = {.msg_iov = &iov,
					    .msg_iovlen = 1,
					    .msg_control = u.b,
					    .msg_controllen = sizeof(u.b)};
			struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(pass));
			memcpy(CMSG_DATA(cm), pass, sizeof(pass));
			(void)sendmsg(sk, &mh, MSG_NOSIGNAL);
			close(pass[0]);
		} else {
			(void)send(sk, w, len, MSG_NOSIGNAL);
		}
		if (i % 7 == 0)
			sleep_ms(1);
		close(sk);
	}
	CHECK_OK(shmk_rpc_connect(n_fixed, &o, &c));
	{
		char rep[8];
		struct shmk_rpc_result res;

		CHECK_OK(shmk_rpc_call(c, "abc", 3, rep, sizeof(rep), &res,
				       5000));
	}
	CHECK_OK(shmk_rpc_close(c));
	CHECK_OK(shmk_rpc_stats(s, &st));
	CHECK_EQ(st.connects, 2);
	/* The server's threads let go of the last hellos and of the honest
	 * client's channel on their own time (on a loaded machine, seconds):
	 * a leak is what is still there after 10 s. */
	for (i = 0; i < 1000 && count_fds() != fds0; i++)
		sleep_ms(10);
	CHECK_EQ(count_fds(), fds0);
	CHECK_OK(shmk_rpc_close(s));
	printf("  hostile handshakes: 400 bad hellos (random, truncated, "
	       "oversized, with stray descriptors) dropped; the server's "
	       "descriptors unchanged, an honest client served\n");
}

/* ------------------------------------------------------------------ */
/* The run                                                             */
/* ------------------------------------------------------------------ */

static void controls_final(void)
{
	struct shmk_buffer *cb;
	struct shmk_array *ca;
	struct rec r;
	uint64_t w, s, total = 0;
	int i;

	/* Every committed control message was delivered, once. */
	for (w = 0; w < NWRITERS; w++) {
		uint64_t n = atomic_load(&book->committed[w]);

		CHECK(n > 0);
		for (s = 0; s < n; s++)
			if (!atomic_load(&book->seen[w][s])) {
				fprintf(stderr,
					"control ring: writer %llu message "
					"%llu (of %llu) lost\n",
					(unsigned long long)w,
					(unsigned long long)s,
					(unsigned long long)n);
				exit(1);
			}
		total += n;
	}
	CHECK_EQ(atomic_load(&book->delivered), total);
	/* Each locker's last record is in the control buffer and array. */
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
	for (i = 0; i < NCLIENTS; i++)
		CHECK(atomic_load(&book->calls[i]) > 0);
	CHECK_EQ(atomic_load(&book->bad_request), 0);
	/* Every control topic message reached every subscriber (each
	 * checked order and payloads as they came). */
	CHECK(atomic_load(&book->tcommitted) > 0);
	for (i = 0; i < NTSUBS; i++) {
		CHECK_EQ(atomic_load(&book->tgot[i]),
			 atomic_load(&book->tcommitted));
		/* Lossy: each was taken or counted lost, none twice. */
		CHECK(atomic_load(&book->ltgot[i]) > 0);
		CHECK_EQ(atomic_load(&book->ltgot[i]) +
				 atomic_load(&book->ltlost[i]),
			 atomic_load(&book->tcommitted));
	}
}

static void report(void)
{
	uint64_t damage = 0, per[NK] = {0};
	int k, e;

	printf("chaos: %llu pokes, %llu restores, %llu hammers, %llu epochs, "
	       "%llu channel rings mapped\n",
	       (unsigned long long)book->pokes,
	       (unsigned long long)book->restores,
	       (unsigned long long)book->hammers,
	       (unsigned long long)book->epochs,
	       (unsigned long long)book->chans);
	printf("control: %llu ring messages, %llu lock rounds, %llu + %llu "
	       "rpc calls, %llu topic messages to each of %d subscribers "
	       "(lossy: %llu + %llu taken, %llu + %llu lost)\n",
	       (unsigned long long)book->delivered,
	       (unsigned long long)book->rounds[0],
	       (unsigned long long)book->calls[0],
	       (unsigned long long)book->calls[1],
	       (unsigned long long)book->tcommitted, NTSUBS,
	       (unsigned long long)book->ltgot[0],
	       (unsigned long long)book->ltgot[1],
	       (unsigned long long)book->ltlost[0],
	       (unsigned long long)book->ltlost[1]);
	for (k = 0; k < NK; k++) {
		printf("victim %-9s (longest %4llu ms)", kname[k],
		       (unsigned long long)book->max_ms[k]);
		for (e = 0; e < NCODE; e++) {
			uint64_t n = atomic_load(&book->res[k][e]);

			if (!n)
				continue;
			printf(" %s %llu", e ? shmk_strerror(-e) : "ok",
			       (unsigned long long)n);
			if (e == EBADMSG || e == EPROTO) {
				damage += n;
				per[k] += n;
			}
		}
		printf("\n");
	}
	printf("victim topic messages taken: %llu lossless, %llu lossy\n",
	       (unsigned long long)book->vtaken[0],
	       (unsigned long long)book->vtaken[1]);
	printf("victim payloads that came back wrong (a forged length, or a "
	       "forged sequence that let a writer into a node being read: "
	       "nothing checks payloads): %llu; rings of a forged but valid "
	       "geometry: %llu\n",
	       (unsigned long long)book->garbled,
	       (unsigned long long)book->forged_geometry);
	/* The run cannot pass without having hurt anything. */
	CHECK(book->pokes > 1000);
	/* No call on a victim hangs: the longest timeout given is 300 ms
	 * (a connect; 1 s more for the server's hello); the rest is for a
	 * machine loaded by other tests. */
	for (k = 0; k < NK; k++)
		CHECK(book->max_ms[k] < 60000);
	CHECK(damage > 0);
	CHECK(per[K_RING] > 0);
	CHECK(per[K_BUFFER] + per[K_ARRAY] > 0);
	CHECK(per[K_RPC] + per[K_CONNECT] > 0);
	CHECK(per[K_OPEN] > 0);
	CHECK(per[K_TOPIC] > 0);
	CHECK(per[K_LTOPIC] > 0);
	CHECK(book->vtaken[0] > 0 && book->vtaken[1] > 0);
	CHECK(book->chans > 0);
}

int main(int argc, char **argv)
{
	uint64_t seed = 0;
	int seconds = 15, i, n = 0, failed = 0;
	pid_t pids[16];
	const char *role[16];
	uint64_t deadline;

	check_init();
	seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	for (i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "seed=", 5))
			seed = strtoull(argv[i] + 5, NULL, 0);
		else if (!strncmp(argv[i], "seconds=", 8))
			seconds = atoi(argv[i] + 8);
		else
			seed = strtoull(argv[i], NULL, 0);
	}
	CHECK(seconds > 0);
	printf("test_chaos: seed %llu, %d s (rerun: test_chaos seed=%llu)\n",
	       (unsigned long long)seed, seconds, (unsigned long long)seed);
	book = mmap(NULL, sizeof(*book), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(book != MAP_FAILED);
	book->seed = seed;
	n_vring = strdup(tname("v.ring"));
	n_vbuf = strdup(tname("v.buf"));
	n_varr = strdup(tname("v.arr"));
	n_vev = strdup(tname("v.ev"));
	n_vrpc = strdup(tname("v.rpc"));
	n_cring = strdup(tname("c.ring"));
	n_cbuf = strdup(tname("c.buf"));
	n_carr = strdup(tname("c.arr"));
	n_cping = strdup(tname("c.ping"));
	n_cpong = strdup(tname("c.pong"));
	n_crpc = strdup(tname("c.rpc"));
	n_vtopic = strdup(tname("v.topic"));
	n_vltopic = strdup(tname("v.ltopic"));
	n_ctopic = strdup(tname("c.topic"));
	n_cltopic = strdup(tname("c.ltopic"));
	n_fixed = strdup(tname("x.rpc"));
	test_scribbled_server();
	test_forged_refusal();
	test_hostile_handshake();

	/* The controls exist throughout (the parent is their creator). */
	{
		struct shmk_ring *cr;
		struct shmk_buffer *cb;
		struct shmk_array *ca;
		struct shmk_event *ping, *pong;
		struct shmk_topic *ct, *clt;
		struct shmk_opts lossy = {.flags = SHMK_F_LOSSY};
		uint64_t t0;
		int rc;

		CHECK_OK(shmk_ring_create(n_cring, 16, NODE, NULL, &cr));
		CHECK_OK(shmk_buffer_create(n_cbuf, BUF_SIZE, NULL, &cb));
		CHECK_OK(shmk_array_create(n_carr, sizeof(struct rec), NLOCKERS,
					   NULL, &ca));
		CHECK_OK(shmk_event_create(n_cping, 0, 0, NULL, &ping));
		CHECK_OK(shmk_event_create(n_cpong, 0, 0, NULL, &pong));
		CHECK_OK(shmk_topic_create(n_ctopic, CTOPIC_CAP,
					   TOPIC_MSG + WIRE, NULL, &ct));
		CHECK_OK(shmk_topic_create(n_cltopic, CLTOPIC_CAP,
					   TOPIC_MSG + WIRE, &lossy, &clt));

		pids[n] = spawn(rpc_server, NULL);
		book->rpc_pids[0] = pids[n];
		role[n++] = "rpc server";
		for (i = 0; i < NCLIENTS; i++) {
			pids[n] = spawn(rpc_client, (void *)(uintptr_t)i);
			book->rpc_pids[1 + i] = pids[n];
			role[n++] = "rpc client";
		}
		/* The victims exist before anyone looks for them. */
		pids[n] = spawn(chaos, NULL);
		role[n++] = "chaos";
		for (t0 = check_now_ms(); check_now_ms() - t0 < 10000;) {
			struct shmk_stat st;

			rc = shmk_stat(n_vev, &st);
			if (rc == 0)
				break;
			sleep_ms(5);
		}
		for (i = 0; i < NWRITERS; i++) {
			pids[n] = spawn(ring_writer, (void *)(uintptr_t)i);
			role[n++] = "ring writer";
		}
		for (i = 0; i < NREADERS; i++) {
			pids[n] = spawn(ring_reader, (void *)(uintptr_t)i);
			role[n++] = "ring reader";
		}
		for (i = 0; i < NLOCKERS; i++) {
			pids[n] = spawn(locker, (void *)(uintptr_t)i);
			role[n++] = "locker";
		}
		for (i = 0; i < NTSUBS; i++) {
			pids[n] = spawn(topic_sub, (void *)(uintptr_t)i);
			role[n++] = "topic subscriber";
		}
		pids[n] = spawn(topic_pub, NULL);
		role[n++] = "topic publisher";

		sleep_ms((unsigned)seconds * 1000);
		atomic_store(&book->stop_chaos, 1);
		sleep_ms(200);
		atomic_store(&book->stop, 1);

		/* Everyone ends by itself, and cleanly. */
		deadline = check_now_ms() + 150000;
		for (i = 0; i < n; i++) {
			uint64_t now = check_now_ms();
			int st = wait_child(
				pids[i],
				now < deadline ? (int)(deadline - now) : 1);

			if (st != 0) {
				fprintf(stderr, "%s (pid %d) %s %d\n", role[i],
					(int)pids[i],
					st < 0	   ? "hung; killed"
					: st > 128 ? "killed by signal"
						   : "exited with",
					st > 128 ? st - 128 : st);
				failed = 1;
			}
		}
		report();
		CHECK(!failed);
		/* Nothing was left behind but the controls: no victim, no
		 * rpc object, no channel ring (names of scribbled-on files
		 * included). */
		CHECK_EQ(count_ours(), 7);
		controls_final();
		CHECK_OK(shmk_ring_close(cr));
		CHECK_OK(shmk_buffer_close(cb));
		CHECK_OK(shmk_array_close(ca));
		CHECK_OK(shmk_event_close(ping));
		CHECK_OK(shmk_event_close(pong));
		CHECK_OK(shmk_topic_close(ct));
		CHECK_OK(shmk_topic_close(clt));
	}
	printf("test_chaos: ok (seed %llu)\n", (unsigned long long)seed);
	return 0;
}
