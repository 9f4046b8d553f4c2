/* SPDX-License-Identifier: MIT */
/*
 * soak - every object in use by twelve processes while a supervisor
 * SIGKILLs a random one every second and starts it again.
 *
 *	soak [--seconds N]	(300 by default; ctest runs 20, CI 300)
 *
 * Workers: two ring writers and a ring reader (messages that check
 * themselves), a buffer locker and an array locker (every word holds the
 * version: a locker told 0 must see one whole version), an event setter
 * and waiter, an rpc server and an rpc client (echo, checked), two topic
 * publishers that publish each message to a lossless and then to a lossy
 * topic (by copy and by loan, by turns), and a subscriber of each (by
 * copy and in place, by turns).  Killed workers start again; a killed
 * server's successor takes its name over.
 *
 * The checker stays green throughout: no corrupt message, no message
 * twice or out of its writer's order, no more missing than dead readers
 * explain, no torn data behind a clean lock, no wrong reply, a lossless
 * subscriber never misses a message of a publisher it has seen (lossy:
 * what it missed is counted lost), dead publishers' loans counted
 * recovered, at most one per death, and every worker's progress counter
 * advances within every 5 s window (no wedge).
 * Resources stay flat: the supervisor's RSS and descriptors, the RSS and
 * descriptors of workers that lived long, and the /dev/shm entries,
 * compared between the end of the warm-up and the end (tolerances below).
 * A progress line goes to stderr every 10 s.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

#include "check.h"

#define NWORK	 12
#define NODES	 16
#define TCAP	 16384 /* topics: 64 descriptors, 256 granules */
#define TMAX	 600
#define WORDS	 512 /* buffer: 4096 bytes; array: 64 x 64 */
#define GENS	 4096
#define WINDOW_S 5
#define RSS_TOL	 (2048 * 1024) /* bytes of RSS growth allowed */
#define FD_TOL	 2
#define SHM_TOL	 2 /* a connect under way has its two rings named */
#define WARMUP_S 5

enum {
	W_RW0,
	W_RW1,
	W_RR,
	W_BUF,
	W_ARR,
	W_EVT,
	W_SRV,
	W_CLI,
	W_TP0,
	W_TP1,
	W_TS,
	W_TL
};
static const char *const wname[NWORK] = {
	"ring-w0", "ring-w1", "ring-r",	  "buffer",   "array",	 "event",
	"rpc-srv", "rpc-cli", "topic-p0", "topic-p1", "topic-s", "topic-sl"};

struct book {
	_Atomic int bad;
	char why[240];
	_Atomic uint64_t progress[NWORK];
	/* ring: writer slot s, generation g (one per start), seq */
	_Atomic uint32_t gen[2];
	_Atomic uint64_t last[2]; /* reader: gen << 32 | seq + 1 */
	_Atomic uint64_t gaps, delivered;
	_Atomic uint64_t version, eod;
	_Atomic uint64_t calls, epipe;
	/* topics: publisher generations; messages each subscriber took */
	_Atomic uint32_t tgen[2];
	_Atomic uint64_t tgot[2];
};

static struct book *B;
static char n_ring[64], n_buf[64], n_arr[64], n_evt[64], n_rpc[64];
static char n_top[64], n_topl[64]; /* the lossless and the lossy topic */

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

static void nap_us(unsigned us)
{
	struct timespec ts = {0, (long)us * 1000};

	nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------------
 * Workers
 * --------------------------------------------------------------------- */

struct msg {
	uint32_t slot, gen;
	uint64_t seq, sum;
	unsigned char fill[40];
};

static void msg_make(struct msg *m, uint32_t slot, uint32_t gen, uint64_t seq)
{
	size_t j;

	m->slot = slot;
	m->gen = gen;
	m->seq = seq;
	m->sum = (seq + 1) * UINT64_C(0x9E3779B97F4A7C15) ^
		 ((uint64_t)gen << 8 | slot) * UINT64_C(0xC2B2AE3D27D4EB4F);
	for (j = 0; j < sizeof(m->fill); j++)
		m->fill[j] = (unsigned char)((m->sum >> (j % 8 * 8)) + j);
}

static int ring_writer(int slot)
{
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_ring *r;
	uint32_t gen = atomic_fetch_add(&B->gen[slot], 1) + 1;
	struct msg m;
	uint64_t seq;
	int rc;

	CHECK_OK(shmk_ring_open(n_ring, &o, &r));
	for (seq = 0;; seq++) {
		msg_make(&m, (uint32_t)slot, gen, seq);
		rc = shmk_ring_write(r, &m, sizeof(m), 5000);
		if (rc < 0)
			return bad("ring write: %s", shmk_strerror(rc));
		atomic_fetch_add(&B->progress[slot], 1);
		if (seq % 64 == 0)
			nap_us(500);
	}
}

/* Records (gen, seq) of slot: strictly after the last one (no duplicate,
 * writer's order); a skipped seq of the same generation is a gap. */
static int ring_take(const void *p, size_t len)
{
	struct msg m, want;
	uint64_t last, cur;

	if (len != sizeof(m))
		return bad("ring: a message of %zu bytes", len);
	memcpy(&m, p, sizeof(m));
	if (m.slot > 1)
		return bad("ring: slot %u", m.slot);
	msg_make(&want, m.slot, m.gen, m.seq);
	if (memcmp(&m, &want, sizeof(m)))
		return bad("ring: corrupt message");
	last = atomic_load(&B->last[m.slot]);
	cur = (uint64_t)m.gen << 32 | (m.seq + 1);
	if (cur <= last)
		return bad(
			"ring: slot %u gen %u seq %llu after gen %u seq %llu",
			m.slot, m.gen, (unsigned long long)m.seq,
			(unsigned)(last >> 32),
			(unsigned long long)(uint32_t)last - 1);
	atomic_store(&B->last[m.slot], cur);
	if (last >> 32 == m.gen)
		atomic_fetch_add(&B->gaps, m.seq - (uint32_t)last);
	else if (m.seq)
		atomic_fetch_add(&B->gaps, m.seq);
	atomic_fetch_add(&B->delivered, 1);
	return 0;
}

static int ring_reader(void)
{
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_ring *r;
	struct shmk_msg m;
	int rc;

	CHECK_OK(shmk_ring_open(n_ring, &o, &r));
	for (;;) {
		rc = shmk_ring_acquire(r, &m, 2000);
		if (rc == -ETIMEDOUT)
			continue;
		if (rc < 0)
			return bad("ring acquire: %s", shmk_strerror(rc));
		if (ring_take(m.data, m.len))
			return 1;
		CHECK_OK(shmk_ring_release(r, &m));
		atomic_fetch_add(&B->progress[W_RR], 1);
	}
}

static int whole(const uint64_t *w)
{
	int i;

	for (i = 1; i < WORDS; i++)
		if (w[i] != w[0])
			return 0;
	return 1;
}

static int locker(int array)
{
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_buffer *b = NULL;
	struct shmk_array *a = NULL;
	uint64_t buf[WORDS], *data;
	unsigned i;
	int rc, j;

	if (array)
		CHECK_OK(shmk_array_open(n_arr, 64, &o, &a));
	else
		CHECK_OK(shmk_buffer_open(n_buf, &o, &b));
	data = array ? shmk_array_data(a) : shmk_buffer_data(b);
	for (i = 0;; i++) {
		if (i % 3 == 0) { /* a new version under the write lock */
			rc = array ? shmk_array_lock(a, SHMK_LOCK_WRITE, 5000)
				   : shmk_buffer_lock(b, SHMK_LOCK_WRITE, 5000);
			if (rc && rc != -EOWNERDEAD)
				return bad("lock: %s", shmk_strerror(rc));
			if (rc)
				atomic_fetch_add(&B->eod, 1);
			uint64_t v = atomic_fetch_add(&B->version, 1) + 1;
			for (j = 0; j < WORDS; j++)
				data[j] = v;
			CHECK_OK(array ? shmk_array_unlock(a)
				       : shmk_buffer_unlock(b));
		} else { /* a copy: one whole version if told 0 */
			rc = array ? shmk_array_read(a, 0, buf, 64)
				   : shmk_buffer_read(b, 0, buf, sizeof(buf),
						      5000);
			if (rc && rc != -EOWNERDEAD)
				return bad("read: %s", shmk_strerror(rc));
			if (rc)
				atomic_fetch_add(&B->eod, 1);
			else if (!whole(buf))
				return bad("%s: torn data behind a clean lock",
					   array ? "array" : "buffer");
		}
		atomic_fetch_add(&B->progress[array ? W_ARR : W_BUF], 1);
		nap_us(200);
	}
}

static int event_worker(void)
{
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_event *e;
	int rc;

	CHECK_OK(shmk_event_open(n_evt, &o, &e));
	for (;;) {
		CHECK_OK(shmk_event_set(e));
		rc = shmk_event_wait(e, 2000); /* auto-reset: ours */
		if (rc < 0)
			return bad("event wait: %s", shmk_strerror(rc));
		atomic_fetch_add(&B->progress[W_EVT], 1);
		nap_us(300);
	}
}

static int echo(void *arg, struct shmk_rpc_req *rq)
{
	(void)arg;
	rq->reply = rq->data;
	rq->reply_len = rq->len;
	return 0;
}

static int rpc_server(void)
{
	struct shmk_rpc_opts so = {.handler = echo, .node_size = 512};
	struct shmk_rpc *srv;
	uint64_t end = check_now_ns() + 5000000000u, p = 0;
	int rc;

	/* The name is taken over from a killed predecessor. */
	while ((rc = shmk_rpc_serve(n_rpc, &so, &srv)) == -EADDRINUSE &&
	       check_now_ns() < end)
		sleep_ms(1);
	if (rc < 0)
		return bad("serve: %s", shmk_strerror(rc));
	for (;;) {
		struct shmk_rpc_stats st;

		CHECK_OK(shmk_rpc_stats(srv, &st));
		if (st.served != p) {
			p = st.served;
			atomic_fetch_add(&B->progress[W_SRV], 1);
		}
		sleep_ms(5);
	}
}

static int rpc_client(void)
{
	struct shmk_rpc_opts co = {.wait_ms = 5000};
	struct shmk_rpc *ep = NULL;
	struct shmk_rpc_result res;
	unsigned char req[3000], rep[3000];
	uint64_t k;
	size_t j;
	int rc;

	for (k = 1;; k++) {
		size_t len = 1 + (k * 733) % sizeof(req);

		if (!ep) {
			rc = shmk_rpc_connect(n_rpc, &co, &ep);
			if (rc == -ECONNREFUSED || rc == -ETIMEDOUT) {
				ep = NULL;
				continue;
			}
			if (rc < 0)
				return bad("connect: %s", shmk_strerror(rc));
		}
		for (j = 0; j < len; j++)
			req[j] = (unsigned char)(k + j * 13);
		rc = shmk_rpc_call(ep, req, len, rep, sizeof(rep), &res, 5000);
		if (rc == -EPIPE) { /* the server was killed */
			atomic_fetch_add(&B->epipe, 1);
			shmk_rpc_close(ep);
			ep = NULL;
			continue;
		}
		if (rc < 0)
			return bad("call: %s", shmk_strerror(rc));
		if (res.len != len || memcmp(req, rep, len))
			return bad("a wrong reply");
		atomic_fetch_add(&B->calls, 1);
		atomic_fetch_add(&B->progress[W_CLI], 1);
		nap_us(200);
	}
}

/* A topic message: its publisher slot and generation, its seq, its
 * length, then bytes that say all of it. */
struct tmsg {
	uint32_t slot, gen;
	uint64_t seq;
	uint32_t len, pad;
};

static size_t tmsg_len(uint64_t seq)
{
	return sizeof(struct tmsg) +
	       (size_t)(seq * 131 % (TMAX - sizeof(struct tmsg) + 1));
}

static unsigned char tbyte(const struct tmsg *h, size_t i)
{
	return (unsigned char)(h->seq * 37 + h->gen * 13 + h->slot * 101 +
			       i * 11);
}

static void tmsg_make(unsigned char *p, uint32_t slot, uint32_t gen,
		      uint64_t seq)
{
	struct tmsg h = {slot, gen, seq, (uint32_t)tmsg_len(seq), 0};
	size_t i;

	memcpy(p, &h, sizeof(h));
	for (i = sizeof(h); i < h.len; i++)
		p[i] = tbyte(&h, i);
}

/* One message to topic t: a copy, or a loan by turns; every 8th message
 * is a loan held for 1 ms, so that many kills land inside one. */
static int topic_put(struct shmk_topic *t, const unsigned char *m, size_t len,
		     uint64_t seq)
{
	struct shmk_msg l;
	int rc;

	if (seq % 2 == 0)
		return shmk_topic_publish(t, m, len, 5000);
	rc = shmk_topic_loan(t, len, &l, 5000);
	if (rc < 0)
		return rc;
	memcpy(l.data, m, len / 2);
	if (seq % 8 == 1)
		nap_us(1000);
	memcpy((char *)l.data + len / 2, m + len / 2, len - len / 2);
	return shmk_topic_commit(t, &l);
}

static int topic_publisher(int slot)
{
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_topic *t, *tl;
	uint32_t gen = atomic_fetch_add(&B->tgen[slot], 1) + 1;
	unsigned char m[TMAX];
	uint64_t seq;
	int rc;

	CHECK_OK(shmk_topic_open(n_top, &o, &t));
	CHECK_OK(shmk_topic_open(n_topl, &o, &tl));
	for (seq = 0;; seq++) {
		size_t len = tmsg_len(seq);

		tmsg_make(m, (uint32_t)slot, gen, seq);
		rc = topic_put(t, m, len, seq);
		if (rc == 0)
			rc = topic_put(tl, m, len, seq);
		if (rc < 0)
			return bad("topic publish: %s", shmk_strerror(rc));
		atomic_fetch_add(&B->progress[W_TP0 + slot], 1);
		nap_us(seq % 8 == 0 ? 300 : 50);
	}
}

/*
 * A subscriber (lossy or not) from now on, by copy and in place by turns.
 * Each message is whole and comes after the last one this subscriber
 * took of its publisher slot (its generation, then its seq); lossless,
 * it is exactly the next: the same generation's next seq, or a later
 * generation's first (a publisher restarted after this subscriber saw
 * its predecessor, so nothing of the new one was published before).
 */
static int topic_subscriber(int lossy)
{
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_topic *t;
	uint64_t last[2] = {0, 0}, n; /* gen << 32 | seq + 1 */
	unsigned char buf[TMAX];
	int rc;

	CHECK_OK(shmk_topic_open(lossy ? n_topl : n_top, &o, &t));
	CHECK_OK(shmk_topic_subscribe(t, 0));
	for (n = 0;; n++) {
		struct shmk_msg m;
		struct tmsg h;
		size_t len = 0, i;
		uint64_t cur;

		if (n % 2 == 0) {
			ssize_t r =
				shmk_topic_receive(t, buf, sizeof(buf), 2000);

			rc = r < 0 ? (int)r : 0;
			len = r < 0 ? 0 : (size_t)r;
		} else {
			rc = shmk_topic_acquire(t, &m, 2000);
			if (!rc) {
				len = m.len <= sizeof(buf) ? m.len : 0;
				memcpy(buf, m.data, len);
				/* Lossy: believed only if not overwritten. */
				rc = shmk_topic_release(t, &m);
			}
		}
		if (rc == -ETIMEDOUT || (lossy && rc == -EOVERFLOW))
			continue;
		if (rc < 0)
			return bad("topic receive: %s", shmk_strerror(rc));
		if (len < sizeof(h))
			return bad("topic: a message of %zu bytes", len);
		memcpy(&h, buf, sizeof(h));
		if (h.slot > 1 || h.len != len || len != tmsg_len(h.seq))
			return bad("topic: a message of %zu bytes says slot %u "
				   "seq %llu len %u",
				   len, h.slot, (unsigned long long)h.seq,
				   h.len);
		for (i = sizeof(h); i < len; i++)
			if (buf[i] != tbyte(&h, i))
				return bad(
					"topic: slot %u gen %u seq %llu torn",
					h.slot, h.gen,
					(unsigned long long)h.seq);
		cur = (uint64_t)h.gen << 32 | (h.seq + 1);
		if (cur <= last[h.slot] ||
		    (!lossy && last[h.slot] &&
		     (h.gen == last[h.slot] >> 32
			      ? h.seq != (uint32_t)last[h.slot]
			      : h.seq != 0)))
			return bad("topic%s: slot %u gen %u seq %llu after gen "
				   "%u seq %llu",
				   lossy ? " (lossy)" : "", h.slot, h.gen,
				   (unsigned long long)h.seq,
				   (unsigned)(last[h.slot] >> 32),
				   (unsigned long long)(uint32_t)last[h.slot] -
					   1);
		last[h.slot] = cur;
		atomic_fetch_add(&B->tgot[lossy], 1);
		atomic_fetch_add(&B->progress[lossy ? W_TL : W_TS], 1);
	}
}

static int worker(void *arg)
{
	int k = (int)(intptr_t)arg;

	switch (k) {
	case W_RW0:
	case W_RW1:
		return ring_writer(k);
	case W_RR:
		return ring_reader();
	case W_BUF:
	case W_ARR:
		return locker(k == W_ARR);
	case W_EVT:
		return event_worker();
	case W_SRV:
		return rpc_server();
	case W_CLI:
		return rpc_client();
	case W_TP0:
	case W_TP1:
		return topic_publisher(k - W_TP0);
	default:
		return topic_subscriber(k == W_TL);
	}
}

/* ---------------------------------------------------------------------
 * The supervisor
 * --------------------------------------------------------------------- */

static long rss_of(pid_t pid)
{
	char path[64];
	long pages = 0, res = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &res) != 2)
		res = -1;
	fclose(f);
	return res < 0 ? -1 : res * sysconf(_SC_PAGESIZE);
}

static int fds_of(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	return count_dir(path);
}

struct slot {
	pid_t pid;
	uint64_t born;
	long rss0;
	int fd0;
	int kills;
};

static void check_green(void)
{
	if (atomic_load(&B->bad)) {
		fprintf(stderr, "soak: FAILED: %s\n", B->why);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	struct slot w[NWORK];
	struct shmk_ring *ring;
	struct shmk_buffer *buf;
	struct shmk_array *arr;
	struct shmk_event *evt;
	struct shmk_topic *top, *topl;
	struct shmk_topic_stats ts, tsl;
	struct shmk_stat ss;
	struct shmk_opts lossy = {.flags = SHMK_F_LOSSY};
	struct shmk_ring_stats st;
	uint64_t seen[NWORK], t0, t_warm = 0, t_win, t_print, end;
	long rss_sup0 = 0, rss_sup;
	int seconds = 300, fd_sup0 = 0, shm0 = 0, i, kills = 0, lived = 0;
	int deaths_rr = 0, deaths_tp = 0, ts_down = 0;
	uint64_t ts_pub0 = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atoi(argv[++i]);
		else if (!strncmp(argv[i], "--seconds=", 10))
			seconds = atoi(argv[i] + 10);
		else {
			fprintf(stderr, "usage: soak [--seconds N]\n");
			return 2;
		}
	}
	if (seconds < WARMUP_S + 5)
		seconds = WARMUP_S + 5;
	check_init();
	B = mmap(NULL, sizeof(*B), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(B != MAP_FAILED);
	snprintf(n_ring, sizeof(n_ring), "%s", tname("soak.ring"));
	snprintf(n_buf, sizeof(n_buf), "%s", tname("soak.buf"));
	snprintf(n_arr, sizeof(n_arr), "%s", tname("soak.arr"));
	snprintf(n_evt, sizeof(n_evt), "%s", tname("soak.evt"));
	snprintf(n_rpc, sizeof(n_rpc), "%s", tname("soak.rpc"));
	snprintf(n_top, sizeof(n_top), "%s", tname("soak.topic"));
	snprintf(n_topl, sizeof(n_topl), "%s", tname("soak.topic-lossy"));
	CHECK_OK(shmk_ring_create(n_ring, NODES, sizeof(struct msg), NULL,
				  &ring));
	CHECK_OK(shmk_buffer_create(n_buf, WORDS * 8, NULL, &buf));
	CHECK_OK(shmk_array_create(n_arr, 64, 64, NULL, &arr));
	CHECK_OK(shmk_event_create(n_evt, 0, 0, NULL, &evt));
	CHECK_OK(shmk_topic_create(n_top, TCAP, TMAX, NULL, &top));
	CHECK_OK(shmk_topic_create(n_topl, TCAP, TMAX, &lossy, &topl));
	srand((unsigned)getpid());
	t0 = check_now_ns();
	for (i = 0; i < NWORK; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].pid = spawn(worker, (void *)(intptr_t)i);
		w[i].born = t0;
		seen[i] = 0;
	}
	fprintf(stderr, "soak: %d s, %d workers, a SIGKILL every second\n",
		seconds, NWORK);
	end = t0 + (uint64_t)seconds * 1000000000u;
	t_win = t0 + WINDOW_S * 1000000000ull;
	t_print = t0 + 10000000000ull;
	while (check_now_ns() < end) {
		uint64_t now;
		int k, st_;

		sleep_ms(1000);
		check_green();
		now = check_now_ns();
		/* Warm-up over: the baseline. */
		if (!t_warm && now - t0 >= WARMUP_S * 1000000000ull) {
			t_warm = now;
			rss_sup0 = rss_of(getpid());
			fd_sup0 = count_fds();
			shm0 = count_ours();
		}
		/* First resource sample of each worker, 2 s after its start. */
		for (k = 0; k < NWORK; k++)
			if (w[k].pid > 0 && !w[k].rss0 &&
			    now - w[k].born > 2000000000ull) {
				w[k].rss0 = rss_of(w[k].pid);
				w[k].fd0 = fds_of(w[k].pid);
			}
		/* The lossless topic's subscriber, killed a second ago, starts
		 * again only now: meanwhile its dead cursor held nobody up
		 * (the publishers went on for more than the log holds). */
		if (ts_down) {
			uint64_t p = atomic_load(&B->progress[W_TP0]) +
				     atomic_load(&B->progress[W_TP1]);

			if (p - ts_pub0 <= 2 * 64) {
				check_green();
				fprintf(stderr,
					"soak: a dead subscriber held the "
					"lossless topic's publishers up (%llu "
					"messages in 1 s)\n",
					(unsigned long long)(p - ts_pub0));
				return 1;
			}
			w[W_TS].pid = spawn(worker, (void *)(intptr_t)W_TS);
			w[W_TS].born = check_now_ns();
			ts_down = 0;
		}
		/* A random worker dies and starts again. */
		k = rand() % NWORK;
		CHECK_OK(kill(w[k].pid, SIGKILL));
		st_ = wait_child(w[k].pid, 10000);
		if (st_ != 128 + SIGKILL) {
			check_green();
			fprintf(stderr, "soak: %s ended with %d\n", wname[k],
				st_);
			return 1;
		}
		kills++;
		w[k].kills++;
		deaths_rr += k == W_RR;
		deaths_tp += k == W_TP0 || k == W_TP1;
		w[k].rss0 = 0;
		if (k == W_TS) {
			ts_down = 1;
			ts_pub0 = atomic_load(&B->progress[W_TP0]) +
				  atomic_load(&B->progress[W_TP1]);
			w[k].pid = 0;
		} else {
			w[k].pid = spawn(worker, (void *)(intptr_t)k);
			w[k].born = check_now_ns();
		}
		/* No wedge: every counter moved in the last window. */
		if (now >= t_win) {
			for (k = 0; k < NWORK; k++) {
				uint64_t p = atomic_load(&B->progress[k]);

				if (p == seen[k]) {
					fprintf(stderr,
						"soak: %s made no progress "
						"in %d s\n",
						wname[k], WINDOW_S);
					return 1;
				}
				seen[k] = p;
			}
			t_win = now + WINDOW_S * 1000000000ull;
		}
		if (now >= t_print) {
			CHECK_OK(shmk_ring_stats(ring, &st));
			CHECK_OK(shmk_topic_stats(top, &ts));
			CHECK_OK(shmk_topic_stats(topl, &tsl));
			fprintf(stderr,
				"soak: %3llu s: %d kills; ring %llu delivered, "
				"%llu lost, %llu recovered, %llu gaps; locks "
				"%llu+%llu (%llu -EOWNERDEAD); events %llu; "
				"rpc %llu calls (%llu -EPIPE); topics %llu + "
				"%llu taken (%llu lost), %llu recovered; "
				"supervisor RSS %ld KiB, %d fds; /dev/shm %d\n",
				(unsigned long long)((now - t0) / 1000000000u),
				kills, (unsigned long long)B->delivered,
				(unsigned long long)st.lost,
				(unsigned long long)st.recovered,
				(unsigned long long)B->gaps,
				(unsigned long long)B->progress[W_BUF],
				(unsigned long long)B->progress[W_ARR],
				(unsigned long long)B->eod,
				(unsigned long long)B->progress[W_EVT],
				(unsigned long long)B->calls,
				(unsigned long long)B->epipe,
				(unsigned long long)B->tgot[0],
				(unsigned long long)B->tgot[1],
				(unsigned long long)tsl.lost,
				(unsigned long long)(ts.recovered +
						     tsl.recovered),
				rss_of(getpid()) / 1024, count_fds(),
				count_ours());
			t_print = now + 10000000000ull;
		}
	}
	check_green();

	/* Resources: flat between the end of the warm-up and now. */
	rss_sup = rss_of(getpid());
	printf("soak: %d s, %d kills (", seconds, kills);
	for (i = 0; i < NWORK; i++)
		printf("%s%s %d", i ? ", " : "", wname[i], w[i].kills);
	printf(")\n");
	printf("  supervisor: RSS %ld -> %ld KiB, fds %d -> %d; /dev/shm "
	       "entries %d -> %d\n",
	       rss_sup0 / 1024, rss_sup / 1024, fd_sup0, count_fds(), shm0,
	       count_ours());
	CHECK(rss_sup - rss_sup0 <= RSS_TOL);
	CHECK_EQ(count_fds(), fd_sup0);
	CHECK(abs(count_ours() - shm0) <= SHM_TOL);
	for (i = 0; i < NWORK; i++) {
		long rss;
		int fds;

		if (!w[i].rss0 || check_now_ns() - w[i].born < 10000000000ull)
			continue; /* not alive long enough to compare */
		rss = rss_of(w[i].pid);
		fds = fds_of(w[i].pid);
		printf("  %-8s alive %llu s: RSS %ld -> %ld KiB, fds %d -> "
		       "%d\n",
		       wname[i],
		       (unsigned long long)((check_now_ns() - w[i].born) /
					    1000000000u),
		       w[i].rss0 / 1024, rss / 1024, w[i].fd0, fds);
		/* AddressSanitizer keeps freed memory in quarantine (up to
		 * 256 MiB): RSS says nothing there; LeakSanitizer does. */
		CHECK(CHECK_ASAN || rss - w[i].rss0 <= RSS_TOL);
		CHECK(fds - w[i].fd0 <= FD_TOL);
		lived++;
	}
	CHECK_OK(shmk_ring_stats(ring, &st));
	printf("  ring: %llu delivered, %llu lost, %llu recovered, %llu gaps "
	       "(allowed: lost + reader deaths = %llu); locks: %llu "
	       "-EOWNERDEAD; rpc: %llu calls, %llu -EPIPE\n",
	       (unsigned long long)B->delivered, (unsigned long long)st.lost,
	       (unsigned long long)st.recovered, (unsigned long long)B->gaps,
	       (unsigned long long)(st.lost + (uint64_t)deaths_rr),
	       (unsigned long long)B->eod, (unsigned long long)B->calls,
	       (unsigned long long)B->epipe);
	/* A gap is a message a dead reader took (counted lost), or one it
	 * had just released when it died, before it could record it. */
	CHECK(B->gaps <= st.lost + (uint64_t)deaths_rr);
	/* Topics: a dead publisher leaves at most one loan (it holds one at
	 * a time), recovered once; lossless loses nothing; the slots of the
	 * killed were taken again (the supervisor, two publishers and a
	 * subscriber at a time); nothing waits on the dead. */
	CHECK_OK(shmk_topic_stats(top, &ts));
	CHECK_OK(shmk_topic_stats(topl, &tsl));
	printf("  topics: lossless %llu published, %llu taken, %llu "
	       "recovered; lossy %llu published, %llu taken, %llu lost, %llu "
	       "recovered (allowed: %d publisher deaths)\n",
	       (unsigned long long)ts.published, (unsigned long long)B->tgot[0],
	       (unsigned long long)ts.recovered,
	       (unsigned long long)tsl.published,
	       (unsigned long long)B->tgot[1], (unsigned long long)tsl.lost,
	       (unsigned long long)tsl.recovered, deaths_tp);
	CHECK(ts.recovered + tsl.recovered <= (uint64_t)deaths_tp);
	CHECK_EQ(ts.lost, 0);
	CHECK_EQ(ts.abandoned + tsl.abandoned, 0);
	CHECK_OK(shmk_stat(n_top, &ss));
	CHECK(ss.nparts <= 4);
	CHECK_OK(shmk_stat(n_topl, &ss));
	CHECK(ss.nparts <= 4);
	for (i = 0; i < NWORK; i++) {
		if (w[i].pid <= 0)
			continue; /* the topic subscriber, between lives */
		kill(w[i].pid, SIGKILL);
		wait_child(w[i].pid, 10000);
	}
	shmk_ring_close(ring);
	shmk_buffer_close(buf);
	shmk_array_close(arr);
	shmk_event_close(evt);
	shmk_topic_close(top);
	shmk_topic_close(topl);
	shmk_unlink(n_top);
	shmk_unlink(n_topl);
	shmk_unlink(n_ring);
	shmk_unlink(n_buf);
	shmk_unlink(n_arr);
	shmk_unlink(n_evt);
	shmk_unlink(n_rpc);
	/* Nothing left behind but what a server killed in the middle of a
	 * connect may have named. */
	printf("  /dev/shm entries left: %d\n", count_ours());
	CHECK(count_ours() <= SHM_TOL);
	(void)lived;
	printf("soak: ok, 1 passed, 0 failed\n");
	return 0;
}
