/* SPDX-License-Identifier: MIT */
/*
 * shmk_bench.h - what the files of shmk-bench share (not an interface of
 * shmk): the options, the transports and records of the run, the
 * children's control block, the measurements and the report.
 *
 *   main.c           options; the run: every measurement, then the report
 *   plan.c           the transports of this run and the records to measure
 *   child.c          the processes of a measurement
 *   endpoint.h       sending and receiving one verified message (inline)
 *   measure.c        the peers and latency sections, and the sending and
 *                    receiving processes the topic section shares
 *   measure_chart.c  the chart section (the ring by node count)
 *   measure_topic.c  the topic section
 *   measure_wake.c   the wake section (its round trip: ../wake.c)
 *   measure_rpc.c    the rpc section (its measurements: ../rpc.c)
 *   report.c         text, CSV and JSON; report_topic.c the topic's text,
 *                    report_rpc.c the rpc section's
 *   plot.c           the charts (gnuplot)
 *   builtin.c, topic.c  the built-in transports (builtin.h, transport.h)
 *   verify.h         every message's header and checksum
 */
#ifndef SHMK_BENCH_SHMK_BENCH_H
#define SHMK_BENCH_SHMK_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "../bench.h"
#include "transport.h"

#define MAX_T	    32	   /* transports */
#define MAX_KIDS    8	   /* processes of one measurement */
#define MAX_REP	    9	   /* repeats */
#define MAX_SAMPLES 400000 /* round trips kept */
#define KILL_AFTER  20	   /* seconds a measurement may overrun */

/* ------------------------------------------------------------------ */
/* Options (main.c)                                                   */
/* ------------------------------------------------------------------ */

enum fmt { F_TEXT, F_CSV, F_JSON };

#define RPC_IDLE_MAX 1000 /* --idle-clients at most */

struct bench_opts {
	int full;
	int chart, peers, latency, topic, wake, rpc;
	int topic_full; /* every size and subscriber count, not the short run */
	int rpc_full;	/* every size and mode, not the short run */
	int rpc_idle;	/* --idle-clients (-1: the default) */
	enum fmt fmt;
	const char *plot;
	double secs; /* per measurement */
	int reps;
	const char *only_t; /* --transports */
	size_t sizes[16];
	int nsizes, sizes_given;
	int progress;
	long corrupt; /* SHMK_BENCH_CORRUPT: corrupt message N */
};

extern struct bench_opts opt;
extern int g_ncpu;

/* ------------------------------------------------------------------ */
/* The transports of this run (plan.c)                                */
/* ------------------------------------------------------------------ */

/* The peers and latency sections': the built-in ones, then plugins. */
extern const struct bt_transport *tr[MAX_T];
extern int ntr;

/* The topic section's: the built-in ones, then plugins that fan out. */
extern const struct bt_transport *topic_tr[MAX_T];
extern int ntopic_tr;

/* Peers that come as plugins, for "skipped" lines. */
struct known_peer {
	const char *name, *label, *package;
};

extern const struct known_peer known_peers[];
extern const size_t nknown_peers;

void load_transports(void);
void list_transports(void);
const struct bt_transport *find_t(const char *name);
const struct bt_transport *find_any(const char *name);
const struct bt_transport *topic_peer(const char *name);
int is_shmk(const struct bt_transport *t);
int wanted(const struct bt_transport *t);

/* ------------------------------------------------------------------ */
/* Records: one row of the results each (plan.c)                      */
/* ------------------------------------------------------------------ */

enum st { ST_OK, ST_NA, ST_FAIL };

struct rec {
	const char *section; /* "chart", "peers", "latency", "topic",
				"topic-latency", "wake", "wake-latency",
				"rpc", "rpc-idle", "rpc-floor" */
	const struct bt_transport *t;
	char label[64];
	size_t size;
	unsigned nodes, readers, writers; /* topic: readers = subscribers */
	int rtt;  /* topic-latency: a round trip (the ring's; the report
		    halves it), else one way, by time stamp */
	int hogs; /* wake, rpc: CPU-bound processes running through it */
	/* rpc: calls in flight per client, client processes, spinning off,
	 * idle clients connected; what the seqpacket socket kept in flight */
	int depth, clients, nospin, idle, in_flight;
	int nrep;
	double gbps[MAX_REP], mps[MAX_REP]; /* per repeat; rpc: calls/s */
	double p50[MAX_REP], p99[MAX_REP], p999[MAX_REP];
	double mean_us[MAX_REP]; /* rpc: the mean call (one at a time) */
	enum st st;
	char why[200];
};

extern struct rec *recs;
extern int nrecs;

struct rec *new_rec(const char *section, const struct bt_transport *t,
		    size_t size);
struct rec *find_rec(const char *section, const struct bt_transport *t,
		     size_t size, unsigned nodes, unsigned nr, unsigned nw);
struct rec *find_lat(const struct bt_transport *t, unsigned subs, int rtt);
struct rec *find_topic(const struct bt_transport *t, size_t size,
		       unsigned subs);

/* The median (which = 1), minimum (0) or maximum (2) of n values. */
double stat_of(const double *v, int n, int which);

#define MED(r, f) stat_of((r)->f, (r)->nrep, 1)

/* The chart section's node counts, node sizes and readers:writers. */
extern const unsigned chart_nodes[5];
extern const size_t chart_sizes[2];
extern const unsigned chart_rw[4][2];

/* The topic section's sizes and subscriber counts in this run. */
extern size_t topic_sizes[16];
extern int ntopic_sizes;
extern unsigned topic_subs[3];
extern int ntopic_subs;

int topic_plan(int create);
int wake_plan(int create);
int rpc_plan(int create);
int plan_steps(void);
void plan_rows(void);

/* ------------------------------------------------------------------ */
/* Processes: a control block shared with the children (child.c)      */
/* ------------------------------------------------------------------ */

struct kid {
	uint64_t msgs;	 /* messages received (readers) or sent */
	uint64_t n_mark; /* messages when the measured window opened */
	uint64_t t_mark, t_end;
	uint64_t cnt[MAX_KIDS], seqsum[MAX_KIDS]; /* per writer (chart) */
	int err;
	char why[200];
};

struct ctl {
	_Atomic uint32_t ready, go, stop;
	uint64_t t_go, warm_ns;
	struct kid kid[MAX_KIDS];
	/* topic latency: what subscriber k (kid k) has taken, and how many
	 * samples it has kept, each on a line of its own */
	struct {
		_Alignas(64) _Atomic uint64_t taken;
		_Atomic uint64_t kept;
	} ack[MAX_KIDS];
	uint32_t nsamples;
	uint32_t samples[MAX_SAMPLES]; /* round trips, ns */
};

extern struct ctl *ctl;

typedef void (*kid_fn)(int k, void *arg);

int ctl_map(void);

/*
 * Runs nw "writer" children then nr "reader" children (kid_fn each),
 * releases them together, stops them after secs, calls after_writers
 * once every writer ended, then waits for the readers.  0, or -1 with
 * why filled.
 */
int run_kids(int nw, int nr, kid_fn wfn, kid_fn rfn, void *arg, double secs,
	     void (*after_writers)(void *), char *why, size_t whylen);

/* In a child: records why it failed and exits. */
_Noreturn void kid_fail(int k, int err, const char *fmt, ...);

/* In a child: says it is ready, waits until all are. */
void kid_ready_wait(void);

/* Opens the measured window once warm_ns have passed since go. */
static inline void kid_mark(struct kid *k, uint64_t n)
{
	if (!k->t_mark) {
		uint64_t t = now_ns();

		if (t >= ctl->t_go + ctl->warm_ns) {
			k->t_mark = t;
			k->n_mark = n;
		}
	}
}

/* A sender stops when told, but not before the message to corrupt
 * (SHMK_BENCH_CORRUPT) went out, however slow the machine. */
static inline int stopped(uint64_t seq)
{
	return atomic_load_explicit(&ctl->stop, memory_order_relaxed) &&
	       (opt.corrupt < 0 || seq > (uint64_t)opt.corrupt);
}

/* ------------------------------------------------------------------ */
/* Measurements, into repeat i of a record (measure*.c)               */
/* ------------------------------------------------------------------ */

void measure_pair(struct rec *r, int i);    /* peers; topic: the ring */
void measure_rtt(struct rec *r, int i);	    /* latency */
void measure_chart(struct rec *r, int i);   /* chart */
void measure_fan(struct rec *r, int i);	    /* topic */
void measure_fan_lat(struct rec *r, int i); /* topic-latency */
void measure_wake(struct rec *r, int i);    /* wake, wake-latency */
void measure_rpc(struct rec *r, int i);	    /* rpc, rpc-idle, rpc-floor */
int wake_quiet_writes(uint64_t *writes, uint64_t *wakeups);

/* The wake section's round-trip rows, and the end of its hogs. */
extern const struct bt_transport bt_wake_shmk, bt_wake_pipe;
void hogs_stop(void);

/* The rpc section's rows: shmk_rpc, the seqpacket echo, the floor. */
extern const struct bt_transport bt_rpc_shmk, bt_rpc_seqpacket, bt_rpc_floor;
extern size_t rpc_sizes[16];
extern int nrpc_sizes;
void rpc_label(struct rec *r);
const char *rpc_mode(const struct rec *r, char *b, size_t len);

/* Sorted samples of the last latency run of each transport (for the
 * CDF). */
struct cdf {
	const struct bt_transport *t;
	uint32_t *s;
	uint32_t n;
};

extern struct cdf cdf[MAX_T];
extern int ncdf;

int cmp_u32(const void *a, const void *b);
double quantile_us(const uint32_t *s, uint32_t n, double q);

/* A unique name for a channel or ring of this run. */
void chan_name(char *name, size_t n);
void chan_init(struct bt_chan *c, size_t size, unsigned depth);

/* A channel of one sending and c.receivers receiving processes. */
struct pair {
	const struct bt_transport *t;
	struct bt_chan c;
};

struct ep;

void pair_open(int k, struct pair *p, enum bt_role role, struct ep *e);
void pair_tx(int k, void *arg);
void pair_rx(int k, void *arg);

/* ------------------------------------------------------------------ */
/* The report (report.c, report_topic.c)                              */
/* ------------------------------------------------------------------ */

/* The machine and the time of the run (main.c). */
extern char g_cpu[128], g_date[64];

void report_start(int steps);
void report(void);
void report_failures(void);

/* "64 B", "1 KiB", "1 MiB"; four calls may share a line. */
const char *size_str(size_t s);
void fmt_rate(char *b, size_t n, double v, const char *unit);
const char *cell_status(const struct rec *r);
void text_topic(void);
void text_rpc(void);

/* PNG charts and their data into dir (plot.c). */
void plot(const char *dir);

#endif /* SHMK_BENCH_SHMK_BENCH_H */
