/* SPDX-License-Identifier: MIT */
/*
 * test_wakeup_litmus - the store-buffer race of a fence-free notifier,
 * run as a litmus test until it is met.  Each round a writer (a process
 * pinned to the other CPU; "threads": a thread) writes one message with
 * shmk_ring_write(..., 0) while the reader takes, at the same moment, the
 * path under test:
 *
 *   armed    shmk_ring_read(..., 0) returns -EAGAIN and arms the ring's
 *            descriptor on an eventcount already fenced (FENCED_SURE set):
 *            the notifier's fence under FENCED keeps the wake-up
 *            (shmk__ec_notify_async());
 *   first    the same with FENCED and FENCED_SURE cleared before each
 *            round, so that every arming is the eventcount's first: the
 *            arming's membarrier keeps it (poll_arm());
 *   sleeper  shmk_ring_read(..., 2000) with no spin on a ring without a
 *            descriptor, so the reader announces itself and sleeps: the
 *            sleeper's membarrier keeps it (ec_prepare()).
 *
 * A lost wake-up is decided once both sides are done with the round, from
 * what must hold then.  armed, first: the read returned -EAGAIN, the write
 * returned 0, and the descriptor is not readable (a notifier that sees
 * the armed bit sends its byte before the write returns).  sleeper: the
 * reader's look after its announcement found the ring empty (the ring's
 * empty_waits counter moved) while the writer's notify saw no sleeper
 * (wakeups did not): each side missed the other, which is what the
 * barrier prevents, and the reader went to sleep with nobody to wake it
 * (its slice, 1 ms here, ends that sleep).
 *
 * The window is a store's stay in a store buffer, so both sides meet
 * at a spin barrier in a shared page, then one of them spins for an
 * offset that a staircase keeps where the reader finds the message in
 * half of the rounds (the writer's store becomes visible as the reader
 * looks), with a random jitter of 300 ns either way.  The eventcount
 * word's waiter bits are cleared before each round: a bit left by a
 * waiter that then found the message would make the next notify wake
 * anyway and hide that round.  The message is 2048 bytes, whose copy
 * fills the writer's store buffer ahead of the message's release: with a
 * uniform random offset and no staircase (load average about 20) that
 * was caught about a hundred times as often as an 8-byte message; with
 * the staircase (load average 4) the two were caught about as often.
 *
 * Each path runs for a time, not a number of rounds (3 s armed and
 * first, 1.5 s sleeper, whose losses show at once; the thread variant a
 * third of that, and a few hundred rounds under a sanitizer): without its barrier a round is several times
 * faster, and what detection needs is time (docs/design.md, "The hot
 * path has no fence", has the measured rates).  Without membarrier (a
 * kernel or sandbox that refuses it) every notifier fences and every
 * sleeper polls; the test then checks that path instead.
 *
 * test_wakeup_teeth is this file linked with the crash-point library,
 * whose SHMK_SKIP_BARRIER (src/sys.h) can leave a barrier out.  With
 * --without BARRIER (notify_fence, arm_mb or sleep_mb) it runs the path
 * that barrier guards until the first lost wake-up (30 s at most) and
 * exits 0 only if there was one: ctest runs it for each barrier, so the
 * test shows every run that it can still fail.  Given --seconds or
 * --rounds, it runs them all and counts the losses instead (how the
 * figures in docs/design.md were measured).
 *
 * White-box: src/internal.h for the ring's eventcount word (its bits are
 * reset between rounds) and shmk__async_init() (is membarrier in use).
 *
 * Arguments: [threads] [--path armed|first|sleeper] [--seconds S]
 * [--rounds N] (per path, instead of the defaults) [--without BARRIER].
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "check.h"
#include "internal.h"

enum path { ARMED, FIRST, SLEEPER, NPATHS };

static const char *const path_names[NPATHS] = {"armed", "first", "sleeper"};
/* The barrier each path tests, as SHMK_SKIP_BARRIER names it. */
static const char *const path_barrier[NPATHS] = {"notify_fence", "arm_mb",
						 "sleep_mb"};

#define MSG_SIZE    2048
#define JITTER_NS   300	 /* the offset's random spread, either way */
#define STEP_NS	    20	 /* the staircase's finest step */
#define STEP_MAX_NS 2000 /* its first and coarsest */

/* What the two sides share, in a MAP_SHARED page. */
struct litmus {
	_Atomic uint64_t gate;	  /* the spin barrier: arrivals so far */
	_Atomic uint32_t w_delay; /* the writer's spins this round */
	_Atomic int more;	  /* 0: no more rounds */
	_Atomic int abort;	  /* the writer failed */
	char name[128];
	int cpu;	     /* the writer's CPU, or -1 */
	struct shmk_ring *w; /* threads: the writer's handle */
};

static struct shmk_opts nospin = {.spin_us = -1, .wait_ms = 5000};
static double ns_per_spin;

static void spin(uint32_t n)
{
	volatile uint32_t i;

	for (i = 0; i < n; i++)
		;
}

/* The shortest of five timed runs: a preempted run is longer. */
static void calibrate(void)
{
	double best = 1e9;
	int i;

	for (i = 0; i < 5; i++) {
		uint64_t t0 = check_now_ns();

		spin(1000000);
		if ((double)(check_now_ns() - t0) / 1e6 < best)
			best = (double)(check_now_ns() - t0) / 1e6;
	}
	ns_per_spin = best > 0.01 ? best : 0.01;
}

static uint32_t spins(double ns)
{
	return (uint32_t)(ns / ns_per_spin);
}

/*
 * Both sides meet here.  seq_cst read-modify-write: a locked instruction
 * on x86, so each side starts its round with its store buffer drained,
 * and what either did before the gate happens before what the other does
 * after it.  A side that waits long yields its CPU: a loaded machine may
 * have put the other side off it.
 */
static void gate_pass(struct litmus *l, uint64_t *passes)
{
	uint64_t want = (*passes += 2), end = 0;
	unsigned n = 0;

	atomic_fetch_add_explicit(&l->gate, 1, memory_order_seq_cst);
	while (atomic_load_explicit(&l->gate, memory_order_seq_cst) < want) {
		if (++n < 4096) {
			shmk__cpu_relax();
			continue;
		}
		if (atomic_load_explicit(&l->abort, memory_order_relaxed)) {
			fprintf(stderr, "the writer failed\n");
			exit(1);
		}
		if (!end) {
			end = check_now_ms() + 30000;
		} else if (check_now_ms() > end) {
			fprintf(stderr, "gate: no other side for 30 s\n");
			exit(1);
		}
		sched_yield();
	}
}

static void pin(int cpu)
{
	cpu_set_t s;

	if (cpu < 0)
		return;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	CHECK_OK(sched_setaffinity(0, sizeof(s), &s));
}

/* The writer: one message a round, after the round's delay. */
static void w_loop(struct litmus *l, struct shmk_ring *w)
{
	static uint64_t buf[MSG_SIZE / 8];
	uint64_t passes = 0, i;
	int rc;

	pin(l->cpu);
	for (i = 0;; i++) {
		gate_pass(l, &passes);
		if (!atomic_load_explicit(&l->more, memory_order_relaxed))
			return;
		spin(atomic_load_explicit(&l->w_delay, memory_order_relaxed));
		buf[0] = i;
		rc = shmk_ring_write(w, buf, MSG_SIZE, 0);
		if (rc) {
			fprintf(stderr, "write %llu: %s\n",
				(unsigned long long)i, shmk_strerror(rc));
			atomic_store(&l->abort, 1);
			return;
		}
		gate_pass(l, &passes);
	}
}

static int w_child(void *arg)
{
	struct litmus *l = arg;
	struct shmk_ring *w;

	CHECK_OK(shmk_ring_open(l->name, &nospin, &w));
	w_loop(l, w);
	CHECK_OK(shmk_ring_close(w));
	return atomic_load(&l->abort);
}

static void *w_thread(void *arg)
{
	struct litmus *l = arg;

	w_loop(l, l->w);
	return NULL;
}

static int readable_now(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int rc;

	do
		rc = poll(&p, 1, 0);
	while (rc < 0 && errno == EINTR);
	CHECK(rc >= 0);
	return rc == 1 && (p.revents & POLLIN);
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

struct result {
	int rounds, waited, lost, first_round;
	double secs, first_secs;
};

/* One path: up to rounds rounds or secs seconds, or (stop) to the first
 * lost wake-up. */
static struct result run_path(int threads, enum path p, int rounds, double secs,
			      int stop, const int cpus[2], uint64_t seed)
{
	static uint64_t rb[MSG_SIZE / 8];
	struct litmus *l = mmap(NULL, sizeof(*l), PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	/* The bits each round starts without. */
	uint32_t reset =
		SHMK__EC_SLEEPER | SHMK__EC_ARMED |
		(p == FIRST ? SHMK__EC_FENCED | SHMK__EC_FENCED_SURE : 0);
	int64_t jit = spins(JITTER_NS), fine = spins(STEP_NS) + 1;
	int64_t coarse = spins(STEP_MAX_NS) + 1, step = coarse, c = 0, off;
	uint64_t passes = 0, x = seed, t0, i, v;
	struct shmk_ring_stats st, st0;
	struct result res = {0};
	struct shmk__region *reg;
	struct shmk__ec *ec;
	struct shmk_ring *r;
	int fd = -1, hit, last = 0, run = 0;
	pthread_t th;
	pid_t pid = 0;
	ssize_t n;

	CHECK(l != MAP_FAILED);
	snprintf(l->name, sizeof(l->name), "%s", tname(path_names[p]));
	l->cpu = cpus[1];
	atomic_store(&l->more, 1);
	CHECK_OK(shmk_ring_create(l->name, 4, MSG_SIZE, &nospin, &r));
	reg = shmk__ring_region(r);
	ec = (struct shmk__ec *)(reg->hdr->ctl + reg->kind->ec_off[0]);
	if (p != SLEEPER) {
		fd = shmk_ring_pollfd(r);
		CHECK(fd >= 0);
		/* The first arming: from here on the eventcount is fenced. */
		CHECK_RC(shmk_ring_read(r, rb, MSG_SIZE, 0), -EAGAIN);
		if (shmk__async_reached())
			CHECK(atomic_load(&ec->word) & SHMK__EC_FENCED_SURE);
	}
	if (threads) {
		CHECK_OK(shmk_ring_open(l->name, &nospin, &l->w));
		CHECK(!pthread_create(&th, NULL, w_thread, l));
	} else {
		pid = spawn(w_child, l);
	}
	pin(cpus[0]);
	CHECK_OK(shmk_ring_stats(r, &st0));
	t0 = check_now_ns();
	for (i = 0; i < (uint64_t)rounds; i++) {
		if (check_now_ns() - t0 > (uint64_t)(secs * 1e9) ||
		    (stop && res.lost))
			break;
		/* The writer waits at the gate: nobody uses the word. */
		atomic_fetch_and_explicit(&ec->word, ~reset,
					  memory_order_seq_cst);
		off = c + (int64_t)(rnd(&x) % (uint64_t)(2 * jit + 1)) - jit;
		atomic_store_explicit(&l->w_delay, off > 0 ? (uint32_t)off : 0,
				      memory_order_relaxed);
		gate_pass(l, &passes);
		spin(off < 0 ? (uint32_t)-off : 0);
		n = shmk_ring_read(r, rb, MSG_SIZE, p == SLEEPER ? 2000 : 0);
		gate_pass(l, &passes);
		/* The write has returned; judge the round. */
		hit = 0;
		if (p == SLEEPER) {
			CHECK_EQ(n, MSG_SIZE);
			CHECK_OK(shmk_ring_stats(r, &st));
			hit = st.empty_waits != st0.empty_waits;
			if (hit && st.wakeups == st0.wakeups && !res.lost++) {
				res.first_round = (int)i;
				res.first_secs =
					(double)(check_now_ns() - t0) / 1e9;
			}
			st0 = st;
		} else if (n == -EAGAIN) {
			hit = 1;
			if (!readable_now(fd) && !res.lost++) {
				res.first_round = (int)i;
				res.first_secs =
					(double)(check_now_ns() - t0) / 1e9;
			}
			CHECK_EQ(shmk_ring_read(r, rb, MSG_SIZE, 0), MSG_SIZE);
			if (p == FIRST && shmk__async_reached())
				CHECK(atomic_load(&ec->word) &
				      SHMK__EC_FENCED_SURE);
		} else {
			CHECK_EQ(n, MSG_SIZE);
		}
		memcpy(&v, rb, sizeof(v));
		CHECK_EQ(v, i);
		res.waited += hit;
		/* Found half the time: the writer's store lands as the reader
		 * makes its last look.  The step halves at each turn and
		 * doubles after 8 moves the same way, so the offset finds the
		 * point within a few dozen rounds (also under a sanitizer,
		 * where it is tens of microseconds) and follows it when the
		 * machine's load moves it. */
		if (hit != last) {
			step = step / 2 > fine ? step / 2 : fine;
			run = 0;
		} else if (++run == 8) {
			step = step * 2 < coarse ? step * 2 : coarse;
			run = 0;
		}
		last = hit;
		c += hit ? -step : step;
	}
	res.rounds = (int)i;
	res.secs = (double)(check_now_ns() - t0) / 1e9;
	atomic_store(&l->more, 0);
	gate_pass(l, &passes);
	if (threads) {
		pthread_join(th, NULL);
		CHECK_OK(shmk_ring_close(l->w));
	} else {
		CHECK_EQ(wait_child(pid, 30000), 0);
	}
	CHECK(!atomic_load(&l->abort));
	CHECK_OK(shmk_ring_close(r));
	munmap(l, sizeof(*l));
	return res;
}

int main(int argc, char **argv)
{
	int threads = 0, only = -1, rounds = 0, i, k, cpus[2] = {-1, -1};
	int want_loss = -1, bad = 0, mb;
	double secs = 0;
	const char *skip = NULL;
	cpu_set_t all;
	uint64_t seed;

	check_init();
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "threads")) {
			threads = 1;
		} else if (!strcmp(argv[i], "--path") && i + 1 < argc) {
			for (k = 0; k < NPATHS; k++)
				if (!strcmp(argv[i + 1], path_names[k]))
					only = k;
			CHECK(only >= 0);
			i++;
		} else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
			rounds = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			secs = atof(argv[++i]);
		} else if (!strcmp(argv[i], "--without") && i + 1 < argc) {
			skip = argv[++i];
		} else {
			fprintf(stderr, "unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	for (k = 0; skip && k < NPATHS; k++)
		if (!strcmp(skip, path_barrier[k]))
			want_loss = k;
	if (skip && want_loss < 0) {
		fprintf(stderr, "--without %s: no such barrier\n", skip);
		return 2;
	}
#ifdef SHMK_CRASH_POINTS
	/* Before the library's first look at it (and inherited by the
	 * writer's process). */
	if (skip)
		CHECK_OK(setenv("SHMK_SKIP_BARRIER", skip, 1));
#else
	if (skip) {
		fprintf(stderr, "--without: only the crash-point library can "
				"leave a barrier out (test_wakeup_teeth)\n");
		return 2;
	}
#endif
	/* Two CPUs of ours, if we have them: one a side. */
	CHECK_OK(sched_getaffinity(0, sizeof(all), &all));
	for (i = 0, k = 0; i < CPU_SETSIZE && k < 2; i++)
		if (CPU_ISSET(i, &all))
			cpus[k++] = i;
	if (k < 2)
		cpus[0] = cpus[1] = -1;
	calibrate();
	seed = check_now_ns() | 1;
	mb = shmk__async_init(); /* what opening a ring does */
	printf("  %.3f ns a spin, CPUs %d and %d, seed %llu, membarrier %s"
	       "%s%s\n",
	       ns_per_spin, cpus[0], cpus[1], (unsigned long long)seed,
	       mb ? "in use" : "not available (the barriers are fences)",
	       skip ? ", left out: " : "", skip ? skip : "");
	for (k = 0; k < NPATHS; k++) {
		/* Seconds, not rounds: a round without its barrier is several
		 * times faster than one with it (no membarrier, no byte
		 * sent), and how soon a loss shows is a matter of time
		 * (docs/design.md).  The thread variant is the short one, and
		 * under a sanitizer (races, not reordering) a few hundred
		 * rounds.  Without a barrier: to the first loss, 30 s at
		 * most. */
		double t = secs > 0 ? secs : k == SLEEPER ? 1.5 : 3;
		int n = rounds ? rounds : 100000000, stop = 0;
		struct result res;

		if ((only >= 0 && k != only) ||
		    (want_loss >= 0 && k != want_loss))
			continue;
		if (threads && secs <= 0)
			t /= 3;
		if (threads && CHECK_SANITIZED && !rounds)
			n = 300;
		if (want_loss >= 0 && !rounds && secs <= 0) {
			t = 30;
			stop = 1;
		}
		res = run_path(threads, (enum path)k, n, t, stop, cpus,
			       seed + 2 * (uint64_t)k);
		CHECK_OK(sched_setaffinity(0, sizeof(all), &all));
		printf("  %s (%s): %d rounds in %.2f s, %d waited, %d lost",
		       path_names[k], threads ? "threads" : "processes",
		       res.rounds, res.secs, res.waited, res.lost);
		if (res.lost)
			printf(", the first in round %d after %.3f s",
			       res.first_round, res.first_secs);
		printf("\n");
		if ((want_loss < 0) == (res.lost > 0))
			bad = 1;
	}
	if (want_loss >= 0)
		printf("test_wakeup_litmus without %s: %s\n", skip,
		       bad ? "no wake-up lost: the test has lost its teeth"
			   : "lost wake-ups found: ok");
	else
		printf("test_wakeup_litmus%s: %s\n", threads ? " threads" : "",
		       bad ? "lost wake-ups" : "ok");
	return bad;
}
