/* SPDX-License-Identifier: MIT */
/*
 * shmk-bench - what `shmk bench` runs: shmk measured beside the
 * transports its users would otherwise use, on this machine, in one run.
 *
 *   chart    the ring's bandwidth for 2..50 nodes of 1 KiB and 1 MiB with
 *            1 or 2 reader and writer processes (the chart of the C#
 *            SharedMemory library this project grew from);
 *   peers    throughput by message size (64 B .. 1 MiB) of shmk and every
 *            other transport, one sending and one receiving process;
 *   latency  64-byte round trips (p50, p99, p99.9) through each transport;
 *   topic    one publisher to 1, 2 and 4 subscriber processes: shmk_topic
 *            beside a pipe per subscriber fed by a tee process and
 *            iceoryx, per-subscriber rates, delivered bandwidth and the
 *            64-byte publish-to-receive latency, against the ring;
 *   wake     waking a process that sleeps: the 64-byte round trip with
 *            both processes asleep in epoll (shmk's ring descriptors, a
 *            pipe), the ring with spinning off against a pipe at every
 *            size, and 64 B beside a CPU-bound process per CPU;
 *   rpc      shmk_rpc calls (one at a time, 16 in flight, 2 clients; no
 *            spin; beside two hogs; beside 100 or 1000 idle clients)
 *            against a UNIX seqpacket echo of the same sizes, and the
 *            floor of a call's four copies (bench_rpc's measurements,
 *            ../rpc.c);
 *
 * then the ratios: shmk against the best peer, a pipe, and the cross-core
 * copy bound measured in the same run.  Every message of every transport
 * carries a header and a checksum (verify.h) that the receiver checks; a
 * lost, repeated or corrupt message fails the run.  Peer libraries come
 * as plugins (transport.h, bench/peers/).
 *
 * This file reads the options and runs every measurement, then the
 * report; shmk_bench.h names the files that do the rest.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "builtin.h"
#include "shmk_bench.h"
#include "verify.h"

/* ------------------------------------------------------------------ */
/* Options                                                            */
/* ------------------------------------------------------------------ */

struct bench_opts opt;

/* ------------------------------------------------------------------ */
/* Output helpers                                                     */
/* ------------------------------------------------------------------ */

int g_ncpu;
char g_cpu[128], g_date[64];
static int step_no, step_total;

static void machine_info(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];
	time_t now = time(NULL);
	struct tm tm;

	g_ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	snprintf(g_cpu, sizeof(g_cpu), "unknown");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
			char *p = strchr(line, ':') + 2;

			p[strcspn(p, "\n")] = 0;
			snprintf(g_cpu, sizeof(g_cpu), "%s", p);
			break;
		}
	if (f)
		fclose(f);
	gmtime_r(&now, &tm);
	strftime(g_date, sizeof(g_date), "%Y-%m-%d %H:%M UTC", &tm);
}

static void progress(const char *fmt, ...)
{
	char line[160];
	va_list ap;

	step_no++;
	if (!opt.progress)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "\r\033[K[%3d/%d] %s", step_no, step_total, line);
	fflush(stderr);
}

static void progress_done(void)
{
	if (opt.progress)
		fprintf(stderr, "\r\033[K");
}

/* ------------------------------------------------------------------ */
/* Main                                                               */
/* ------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shmk bench [options]\n"
		"\n"
		"Measures shmk beside the transports it replaces, on this "
		"machine (about a\nminute; --full about ten).  The topic "
		"section runs in short (64 B and\n1 MiB, 1 and 4 subscribers) "
		"within a whole run, at every size and count\nwith --only "
		"topic or --full; so does the rpc section (short: 1 KiB,\n"
		"64 KiB and 512 KiB, one call at a time and 16 in flight, "
		"then 1 KiB with\nspinning off, beside 2 hogs and beside 100 "
		"idle clients; whole: also 64 B,\n2 clients of 16 in flight, "
		"and 1000 idle clients).\n"
		"\n"
		"  --only LIST        sections: chart, peers, latency, "
		"topic, wake, rpc\n"
		"                     (comma-separated)\n"
		"  --full             longer runs, 5 repeats: min, median, "
		"max\n"
		"  --transports LIST  peers, latency and topic for these "
		"only (names: --list)\n"
		"  --sizes LIST       message sizes for peers, topic, wake, "
		"rpc, e.g. 64,1K,1M\n"
		"  --seconds S        time per measurement (default 0.25, "
		"--full 0.5)\n"
		"  --repeats N        repeats of each measurement (1..%d)\n"
		"  --idle-clients N   idle clients of the rpc section's idle "
		"row (0..%d)\n"
		"  --csv | --json     results for machines on stdout\n"
		"  --plot DIR         write PNG charts (gnuplot) and their "
		"data into DIR\n"
		"  --list             the transports found, and the peers "
		"missing\n"
		"\n"
		"Peers come as plugins from bench/peers/ (`make "
		"bench-peers`), or from\n$SHMK_BENCH_PEERS.  "
		"SHMK_BENCH_CORRUPT=N corrupts message N of every run\n"
		"(to see the verifier catch it).  Exit status: 0, or 1 if "
		"any measurement\nfailed.\n",
		MAX_REP, RPC_IDLE_MAX);
}

static int parse_sizes(const char *s)
{
	opt.nsizes = 0;
	while (*s && opt.nsizes < 16) {
		char *end;
		unsigned long long v = strtoull(s, &end, 10);

		if (*end == 'K' || *end == 'k')
			v <<= 10, end++;
		else if (*end == 'M' || *end == 'm')
			v <<= 20, end++;
		if (end == s || (*end && *end != ',') || v < BM_HDR ||
		    v > (64ull << 20))
			return -1;
		opt.sizes[opt.nsizes++] = (size_t)v;
		s = end + (*end == ',');
	}
	return opt.nsizes ? 0 : -1;
}

/*
 * Reads the options into opt, the --only list into *only.  Returns -1 to
 * go on with the run, else the exit status (--help, --list, a mistake).
 */
static int parse_args(int argc, char **argv, const char **only)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--full")) {
			opt.full = 1;
		} else if (!strcmp(a, "--csv")) {
			opt.fmt = F_CSV;
		} else if (!strcmp(a, "--json")) {
			opt.fmt = F_JSON;
		} else if (!strcmp(a, "--only") && v) {
			*only = v, i++;
		} else if (!strcmp(a, "--transports") && v) {
			opt.only_t = v, i++;
		} else if (!strcmp(a, "--sizes") && v) {
			opt.sizes_given = 1;
			if (parse_sizes(v) < 0) {
				fprintf(stderr,
					"shmk bench: --sizes: a list of sizes "
					"from 32 B to 64M, e.g. 64,1K,1M\n");
				return 2;
			}
			i++;
		} else if (!strcmp(a, "--seconds") && v) {
			opt.secs = atof(v), i++;
			if (!(opt.secs >= 0.02 && opt.secs <= 60)) {
				fprintf(stderr, "shmk bench: --seconds: 0.02 "
						"to 60\n");
				return 2;
			}
		} else if (!strcmp(a, "--repeats") && v) {
			opt.reps = atoi(v), i++;
			if (opt.reps < 1 || opt.reps > MAX_REP) {
				fprintf(stderr,
					"shmk bench: --repeats: 1 to %d\n",
					MAX_REP);
				return 2;
			}
		} else if (!strcmp(a, "--idle-clients") && v) {
			char *end;
			long n = strtol(v, &end, 10);

			i++;
			if (end == v || *end || n < 0 || n > RPC_IDLE_MAX) {
				fprintf(stderr,
					"shmk bench: --idle-clients: 0 to %d\n",
					RPC_IDLE_MAX);
				return 2;
			}
			opt.rpc_idle = (int)n;
		} else if (!strcmp(a, "--plot") && v) {
			opt.plot = v, i++;
		} else if (!strcmp(a, "--list")) {
			load_transports();
			list_transports();
			return 0;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "shmk bench: unknown option '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	return -1;
}

/* The sections to run, and the defaults of what was not given.  -1, or
 * the exit status. */
static int settle_options(const char *only)
{
	if (only) {
		opt.chart = strstr(only, "chart") != NULL;
		opt.peers = strstr(only, "peers") != NULL;
		opt.latency = strstr(only, "latency") != NULL;
		opt.topic = opt.topic_full = strstr(only, "topic") != NULL;
		opt.wake = strstr(only, "wake") != NULL;
		opt.rpc = opt.rpc_full = strstr(only, "rpc") != NULL;
		if (!opt.chart && !opt.peers && !opt.latency && !opt.topic &&
		    !opt.wake && !opt.rpc) {
			fprintf(stderr, "shmk bench: --only: chart, peers, "
					"latency, topic, wake or rpc\n");
			return 2;
		}
	} else {
		opt.chart = opt.peers = opt.latency = opt.topic = opt.wake =
			opt.rpc = 1;
	}
	if (opt.full)
		opt.topic_full = opt.rpc_full = 1;
	if (opt.secs < 0)
		opt.secs = opt.full ? 0.5 : 0.25;
	if (!opt.reps)
		opt.reps = opt.full ? 5 : 1;
	if (!opt.nsizes) {
		static const size_t def[] = {64, 1024, 65536, 262144, 1 << 20};

		memcpy(opt.sizes, def, sizeof(def));
		opt.nsizes = 5;
	}
	return -1;
}

/* Every name of --transports is a transport of some section.  -1, or
 * the exit status. */
static int check_transports(void)
{
	for (const char *p = opt.only_t; p && *p;) {
		size_t n = strcspn(p, ",");
		char name[32];

		snprintf(name, sizeof(name), "%.*s", (int)n, p);
		if (!find_any(name)) {
			fprintf(stderr,
				"shmk bench: no transport '%s' "
				"(shmk bench --list)\n",
				name);
			return 2;
		}
		p += n + (p[n] == ',');
	}
	return -1;
}

/* ------------------------------------------------------------------ */
/* The run                                                            */
/* ------------------------------------------------------------------ */

/* One measurement of r, into repeat rep. */
static void measure_one(struct rec *r, int rep)
{
	if (r->section[0] == 'c') {
		progress("chart: %u nodes of %s, %ur:%uw", r->nodes,
			 size_str(r->size), r->readers, r->writers);
		measure_chart(r, rep);
	} else if (r->section[0] == 'p') {
		progress("throughput: %s, %s", r->t->label, size_str(r->size));
		measure_pair(r, rep);
	} else if (!strcmp(r->section, "topic")) {
		progress("topic: %s, %u subscriber%s, %s", r->t->label,
			 r->readers, r->readers > 1 ? "s" : "",
			 size_str(r->size));
		if (r->t == &bt_shmk)
			measure_pair(r, rep);
		else
			measure_fan(r, rep);
	} else if (!strncmp(r->section, "wake", 4)) {
		progress("wake: %s, %s", r->label, size_str(r->size));
		measure_wake(r, rep);
	} else if (!strncmp(r->section, "rpc", 3)) {
		progress("rpc: %s, %s", r->label, size_str(r->size));
		measure_rpc(r, rep);
	} else if (!strcmp(r->section, "topic-latency")) {
		progress("topic latency: %s, %u subscriber%s", r->t->label,
			 r->readers, r->readers > 1 ? "s" : "");
		if (r->rtt)
			measure_rtt(r, rep);
		else
			measure_fan_lat(r, rep);
	} else {
		progress("round trip: %s", r->t->label);
		measure_rtt(r, rep);
	}
}

/*
 * Every measurement first, then the repeats in turns: a stretch of the
 * host's noise spreads over all of them instead of spoiling every repeat
 * of one.
 */
static void run_all(void)
{
	for (int rep = 0; rep < opt.reps; rep++)
		for (int i = 0; i < nrecs; i++)
			if (recs[i].st == ST_OK)
				measure_one(&recs[i], rep);
	hogs_stop();
}

int main(int argc, char **argv)
{
	const char *only = NULL, *corrupt = getenv("SHMK_BENCH_CORRUPT");
	int rc, failed = 0;

	opt.secs = -1;
	opt.rpc_idle = -1;
	opt.reps = 0;
	opt.corrupt = corrupt ? atol(corrupt) : -1;
	if ((rc = parse_args(argc, argv, &only)) >= 0 ||
	    (rc = settle_options(only)) >= 0)
		return rc;
	opt.progress = isatty(2);
	machine_info();
	load_transports();
	if ((rc = check_transports()) >= 0)
		return rc;
	if (ctl_map() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);

	step_total = plan_steps();
	report_start(step_total);
	plan_rows();
	run_all();
	progress_done();

	for (int i = 0; i < nrecs; i++)
		if (recs[i].st == ST_FAIL)
			failed++;
	report();
	if (opt.plot)
		plot(opt.plot);
	report_failures();
	return failed ? 1 : 0;
}
