/* SPDX-License-Identifier: MIT */
/*
 * report.c - the results: text tables for people (the topic section's in
 * report_topic.c, the rpc section's in report_rpc.c), or CSV or JSON for
 * machines, on stdout.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "../../tools/shmk/json.h"
#include "builtin.h"
#include "shmk_bench.h"

/* ------------------------------------------------------------------ */
/* Text output                                                        */
/* ------------------------------------------------------------------ */

const char *size_str(size_t s)
{
	static char b[4][32];
	static int k;
	char *p = b[k++ & 3];

	if (s >= (1u << 20) && !(s % (1u << 20)))
		snprintf(p, 32, "%zu MiB", s >> 20);
	else if (s >= 1024 && !(s % 1024))
		snprintf(p, 32, "%zu KiB", s >> 10);
	else
		snprintf(p, 32, "%zu B", s);
	return p;
}

void fmt_rate(char *b, size_t n, double v, const char *unit)
{
	if (v >= 1e9)
		snprintf(b, n, "%.2f G%s", v / 1e9, unit);
	else if (v >= 1e6)
		snprintf(b, n, "%.2f M%s", v / 1e6, unit);
	else if (v >= 1e3)
		snprintf(b, n, "%.1f k%s", v / 1e3, unit);
	else
		snprintf(b, n, "%.0f %s", v, unit);
}

const char *cell_status(const struct rec *r)
{
	return r->st == ST_NA ? "n/a" : "FAILED";
}

static void print_notes(void)
{
	int n = 0;

	for (int i = 0; i < nrecs; i++)
		if (recs[i].st != ST_OK && recs[i].why[0])
			printf("%s  %s, %s, %s: %s\n",
			       n++ ? "" : "Not measured:\n", recs[i].section,
			       recs[i].label, size_str(recs[i].size),
			       recs[i].why);
}

static void text_chart(void)
{
	char b[32], m[32];

	printf("\n1. Ring bandwidth by node count, the original library's "
	       "chart (GB/s, messages/s)\n");
	printf("   shmk_ring in copy mode, readers and writers are "
	       "processes, every message verified.\n");
	if (g_ncpu < 4)
		printf("   With %d CPUs, 1:2, 2:1 and 2:2 run more processes "
		       "than CPUs: they take turns.\n",
		       g_ncpu);
	for (size_t s = 0; s < 2; s++) {
		printf("\n   %s nodes   ", size_str(chart_sizes[s]));
		for (size_t k = 0; k < 4; k++)
			printf("  %ur:%uw %-18s", chart_rw[k][0],
			       chart_rw[k][1], "");
		printf("\n");
		for (size_t n = 0; n < 5; n++) {
			printf("   %3u nodes    ", chart_nodes[n]);
			for (size_t k = 0; k < 4; k++) {
				struct rec *r = find_rec(
					"chart", &bt_shmk, chart_sizes[s],
					chart_nodes[n], chart_rw[k][0],
					chart_rw[k][1]);

				if (!r || r->st != ST_OK) {
					printf("  %-24s",
					       r ? cell_status(r) : "-");
					continue;
				}
				snprintf(b, sizeof(b), "%.2f GB/s",
					 MED(r, gbps));
				fmt_rate(m, sizeof(m), MED(r, mps), "/s");
				printf("  %10s %-13s", b, m);
			}
			printf("\n");
		}
	}
}

static const struct bt_transport *peer_order(int i)
{
	return i < ntr ? tr[i] : NULL;
}

static void text_peers(void)
{
	char b[32];

	printf("\n2. Throughput by message size: one sending and one "
	       "receiving process%s\n",
	       g_ncpu >= 2 ? " on separate CPUs" : "");
	printf("   (64 B and 1 KiB in messages/s, larger sizes in GB/s; "
	       "every message verified)\n\n");
	printf("   %-34s", "transport");
	for (int s = 0; s < opt.nsizes; s++)
		printf(" %11s", size_str(opt.sizes[s]));
	printf("\n");
	for (int i = 0; peer_order(i); i++) {
		const struct bt_transport *t = peer_order(i);
		int any = 0;

		for (int s = 0; s < opt.nsizes; s++)
			any |= find_rec("peers", t, opt.sizes[s], 0, 0, 0) !=
			       NULL;
		if (!any)
			continue;
		printf("   %-34s", t->label);
		for (int s = 0; s < opt.nsizes; s++) {
			struct rec *r =
				find_rec("peers", t, opt.sizes[s], 0, 0, 0);

			if (!r)
				snprintf(b, sizeof(b), "-");
			else if (r->st != ST_OK)
				snprintf(b, sizeof(b), "%s", cell_status(r));
			else if (opt.sizes[s] <= 1024)
				fmt_rate(b, sizeof(b), MED(r, mps), "/s");
			else
				snprintf(b, sizeof(b), "%.2f GB/s",
					 MED(r, gbps));
			printf(" %11s", b);
		}
		printf("\n");
	}
}

static void text_latency(void)
{
	char b[32];

	printf("\n3. Round trip of a 64-byte message (microseconds; two "
	       "processes%s)\n\n",
	       g_ncpu >= 2 ? " on separate CPUs" : "");
	printf("   %-34s %9s %9s %9s %13s\n", "transport", "p50", "p99",
	       "p99.9", "round trips/s");
	for (int i = 0; i < nrecs; i++) {
		struct rec *r = &recs[i];

		if (strcmp(r->section, "latency"))
			continue;
		if (r->st != ST_OK) {
			printf("   %-34s %9s\n", r->label, cell_status(r));
			continue;
		}
		fmt_rate(b, sizeof(b), MED(r, mps), "");
		printf("   %-34s %9.2f %9.2f %9.2f %13s\n", r->label,
		       MED(r, p50), MED(r, p99), MED(r, p999), b);
	}
}

/* The best shmk and best peer record of a section and size. */
static void best_of(const char *section, size_t size, struct rec **shmk,
		    struct rec **peer, struct rec **pipe, struct rec **bound)
{
	int lat = !strcmp(section, "latency");

	*shmk = *peer = *pipe = *bound = NULL;
	for (int i = 0; i < nrecs; i++) {
		struct rec *r = &recs[i];
		struct rec **slot;

		if (strcmp(r->section, section) || r->size != size ||
		    r->st != ST_OK)
			continue;
		if (r->t == &bt_bound) {
			*bound = r;
			continue;
		}
		if (r->t == &bt_pipe)
			*pipe = r;
		slot = is_shmk(r->t) ? shmk : peer;
		if (!*slot || (lat ? MED(r, p50) < MED(*slot, p50)
				   : MED(r, gbps) > MED(*slot, gbps)))
			*slot = r;
	}
}

static void text_ratios(void)
{
	struct rec *s, *p, *pi, *b;

	printf("\n4. The ratios (above 1 = shmk ahead)\n");
	if (opt.peers) {
		printf("   shmk's best mode against the best peer and a "
		       "pipe; shmk's copy mode\n   against the cross-core "
		       "copy bound (what the memory system allows a copy\n"
		       "   in, copy out transport).  single: a ring created "
		       "for one writer and one\n   reader (copy mode).\n\n");
		printf("   %-9s %9s %9s %9s  %-34s %8s %8s %10s\n", "size",
		       "shmk copy", "zero copy", "single", "best peer (GB/s)",
		       "/ peer", "/ pipe", "copy/bound");
	}
	for (int k = 0; opt.peers && k < opt.nsizes; k++) {
		struct rec *c =
			find_rec("peers", &bt_shmk, opt.sizes[k], 0, 0, 0);
		struct rec *z =
			find_rec("peers", &bt_shmk_zc, opt.sizes[k], 0, 0, 0);
		struct rec *g = find_rec("peers", &bt_shmk_single, opt.sizes[k],
					 0, 0, 0);
		char bp[128] = "-", r1[16] = "-", r2[16] = "-", r3[16] = "-",
		     cs[16] = "-", zs[16] = "-", gs[16] = "-";

		best_of("peers", opt.sizes[k], &s, &p, &pi, &b);
		if (!s)
			continue;
		if (c && c->st == ST_OK)
			snprintf(cs, sizeof(cs), "%.2f", MED(c, gbps));
		if (z && z->st == ST_OK)
			snprintf(zs, sizeof(zs), "%.2f", MED(z, gbps));
		if (g && g->st == ST_OK)
			snprintf(gs, sizeof(gs), "%.2f", MED(g, gbps));
		if (p) {
			snprintf(bp, sizeof(bp), "%.26s %.2f", p->label,
				 MED(p, gbps));
			snprintf(r1, sizeof(r1), "%.2fx",
				 MED(s, gbps) / MED(p, gbps));
		}
		if (pi)
			snprintf(r2, sizeof(r2), "%.2fx",
				 MED(s, gbps) / MED(pi, gbps));
		if (b && c && c->st == ST_OK)
			snprintf(r3, sizeof(r3), "%.2fx",
				 MED(c, gbps) / MED(b, gbps));
		printf("   %-9s %9s %9s %9s  %-34s %8s %8s %10s\n",
		       size_str(opt.sizes[k]), cs, zs, gs, bp, r1, r2, r3);
	}
	best_of("latency", 64, &s, &p, &pi, &b);
	if (s) {
		printf("\n   64 B round trip p50: shmk %.2f us", MED(s, p50));
		if (p)
			printf("; best peer, %s, %.2f us: %.1fx faster",
			       p->label, MED(p, p50),
			       MED(p, p50) / MED(s, p50));
		if (pi && pi != p)
			printf("; pipe %.2f us: %.1fx", MED(pi, p50),
			       MED(pi, p50) / MED(s, p50));
		printf("\n");
	}
}

/* The wake section's record of t at size with or without hogs. */
static struct rec *find_wake(const char *section, const struct bt_transport *t,
			     size_t size, int hogs)
{
	for (int i = 0; i < nrecs; i++) {
		struct rec *r = &recs[i];

		if (!strcmp(r->section, section) && r->t == t &&
		    r->size == size && !r->hogs == !hogs)
			return r;
	}
	return NULL;
}

/* A rate: messages/s up to 1 KiB, GB/s above; or why not. */
static void wake_rate(char *b, size_t n, const struct rec *r)
{
	if (!r)
		snprintf(b, n, "-");
	else if (r->st != ST_OK)
		snprintf(b, n, "%s", cell_status(r));
	else if (r->size <= 1024)
		fmt_rate(b, n, MED(r, mps), "/s");
	else
		snprintf(b, n, "%.2f GB/s", MED(r, gbps));
}

/* a / b of the medians of field gbps (1) or p50 (0), or "-". */
static void wake_ratio(char *b, size_t n, const struct rec *x,
		       const struct rec *y, int rate)
{
	if (!x || !y || x->st != ST_OK || y->st != ST_OK)
		snprintf(b, n, "-");
	else if (rate)
		snprintf(b, n, "%.2fx", MED(x, gbps) / MED(y, gbps));
	else
		snprintf(b, n, "%.2fx", MED(x, p50) / MED(y, p50));
}

static void wake_rtt_rows(int hogs)
{
	struct rec *pipe = find_wake("wake-latency", &bt_wake_pipe, 64, hogs);
	const struct bt_transport *t[2] = {&bt_wake_shmk, &bt_wake_pipe};
	char q[16];

	for (int j = 0; j < 2; j++) {
		struct rec *r = find_wake("wake-latency", t[j], 64, hogs);

		if (!r)
			continue;
		if (r->st != ST_OK) {
			printf("   %-40s %9s\n", r->label, cell_status(r));
			continue;
		}
		wake_ratio(q, sizeof(q), r, pipe, 0);
		printf("   %-40s %9.2f %9.2f %11s\n", r->label, MED(r, p50),
		       MED(r, p99), j ? "" : q);
	}
}

static void text_wake(void)
{
	const struct bt_transport *hogged[3] = {&bt_shmk_sleep, &bt_shmk,
						&bt_pipe};
	struct rec *hp = find_wake("wake", &bt_pipe, 64, 1);
	char a[32], b[32], q[16];
	int hogs = 0;

	for (int i = 0; i < nrecs; i++)
		if (!strncmp(recs[i].section, "wake", 4) && recs[i].hogs)
			hogs = recs[i].hogs;
	printf("\n6. Waking a process that sleeps: shmk against a pipe\n"
	       "   (two processes%s, every message verified)\n\n",
	       g_ncpu >= 2 ? " on separate CPUs" : "");
	printf("   64-byte round trip, both processes asleep in epoll_wait "
	       "between messages\n   (microseconds; the ratio: above 1 = "
	       "shmk slower)\n\n");
	printf("   %-40s %9s %9s %11s\n", "transport", "p50", "p99",
	       "p50 / pipe");
	wake_rtt_rows(0);
	{
		uint64_t w, k;
		int rc = wake_quiet_writes(&w, &k);

		if (rc < 0)
			printf("\n   System calls of the write path with "
			       "nobody "
			       "waiting: not measured (%s)\n",
			       strerror(-rc));
		else
			printf("\n   System calls of the write path with "
			       "nobody "
			       "waiting: %llu in %llu writes\n   (the ring's "
			       "wake-ups counter: a notify's only system "
			       "call)\n",
			       (unsigned long long)k, (unsigned long long)w);
	}
	printf("\n   Throughput with spinning off on both ends (the ring "
	       "with 1 MiB of nodes,\n   the pipe with a 1 MiB buffer; 64 B "
	       "and 1 KiB in messages/s, larger sizes\n   in GB/s; the "
	       "ratio: above 1 = shmk ahead)\n\n");
	printf("   %-9s %14s %14s %16s\n", "size", "shmk no spin", "pipe",
	       "no spin / pipe");
	for (int s = 0; s < opt.nsizes; s++) {
		struct rec *x =
			find_wake("wake", &bt_shmk_sleep, opt.sizes[s], 0);
		struct rec *y = find_wake("wake", &bt_pipe, opt.sizes[s], 0);

		wake_rate(a, sizeof(a), x);
		wake_rate(b, sizeof(b), y);
		wake_ratio(q, sizeof(q), x, y, 1);
		printf("   %-9s %14s %14s %16s\n", size_str(opt.sizes[s]), a, b,
		       q);
	}
	if (!hogs)
		return;
	printf("\n   Beside %d CPU-bound hog process%s (a busy loop on each "
	       "CPU, started before\n   and killed after these rows), 64 B: "
	       "throughput (the ratio: above 1 = shmk\n   ahead), then the "
	       "round trip through epoll (above 1 = shmk slower)\n\n",
	       hogs, hogs > 1 ? "es" : "");
	printf("   %-40s %14s %11s\n", "transport", "rate", "/ pipe");
	for (int j = 0; j < 3; j++) {
		struct rec *r = find_wake("wake", hogged[j], 64, 1);

		if (!r)
			continue;
		wake_rate(a, sizeof(a), r);
		wake_ratio(q, sizeof(q), r, hp, 1);
		printf("   %-40s %14s %11s\n", r->label, a, j < 2 ? q : "");
	}
	printf("\n   %-40s %9s %9s %11s\n", "transport", "p50", "p99",
	       "p50 / pipe");
	wake_rtt_rows(1);
}

/* ------------------------------------------------------------------ */
/* CSV and JSON                                                       */
/* ------------------------------------------------------------------ */

/* A record of latencies (p50, p99, p99.9), not rates. */
static int is_lat(const struct rec *r)
{
	return !strcmp(r->section, "latency") ||
	       !strcmp(r->section, "topic-latency") ||
	       !strcmp(r->section, "wake-latency");
}

static int is_rpc(const struct rec *r)
{
	return !strncmp(r->section, "rpc", 3);
}

static const char *st_name(enum st s)
{
	return s == ST_OK ? "ok" : s == ST_NA ? "n/a" : "failed";
}

static void csv_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"')
			putchar('"');
		putchar(*s);
	}
	putchar('"');
}

static void out_csv(void)
{
	printf("section,transport,label,size,nodes,readers,writers,repeats,"
	       "gbps_min,gbps_median,gbps_max,msgs_min,msgs_median,msgs_max,"
	       "p50_us,p99_us,p999_us,status,note\n");
	for (int i = 0; i < nrecs; i++) {
		struct rec *r = &recs[i];

		printf("%s,%s,", r->section, r->t->name);
		csv_str(r->label);
		printf(",%zu,%u,%u,%u,%d", r->size, r->nodes, r->readers,
		       r->writers, r->nrep);
		if (is_rpc(r)) {
			/* calls (the floor: round trips) a second; the
			 * label names the mode */
			printf(",,,,%.0f,%.0f,%.0f,",
			       stat_of(r->mps, r->nrep, 0), MED(r, mps),
			       stat_of(r->mps, r->nrep, 2));
			if (r->depth == 1 && r->t != &bt_rpc_floor)
				printf("%.3f,%.3f,", MED(r, p50), MED(r, p99));
			else
				printf(",,");
		} else if (!is_lat(r))
			printf(",%.4f,%.4f,%.4f,%.0f,%.0f,%.0f,,,",
			       stat_of(r->gbps, r->nrep, 0), MED(r, gbps),
			       stat_of(r->gbps, r->nrep, 2),
			       stat_of(r->mps, r->nrep, 0), MED(r, mps),
			       stat_of(r->mps, r->nrep, 2));
		else
			printf(",,,,%.0f,%.0f,%.0f,%.3f,%.3f,%.3f",
			       stat_of(r->mps, r->nrep, 0), MED(r, mps),
			       stat_of(r->mps, r->nrep, 2), MED(r, p50),
			       MED(r, p99), MED(r, p999));
		printf(",%s,", st_name(r->st));
		csv_str(r->why);
		putchar('\n');
	}
}

/* {"min": ..., "median": ..., "max": ...} of v, under key. */
static void json_stat(struct json *j, const char *key, const double *v, int n,
		      int decimals)
{
	static const char *const which[3] = {"min", "median", "max"};

	json_open_object(j, key);
	for (int k = 0; k < 3; k++)
		json_double(j, which[k], stat_of(v, n, k), decimals);
	json_close(j);
}

/* The results of an rpc record: calls a second (the floor: the mean
 * round trip), the round trip of one call at a time. */
static void json_rpc(struct json *j, const struct rec *r)
{
	if (r->t == &bt_rpc_floor) {
		json_stat(j, "mean_us", r->mean_us, r->nrep, 3);
		json_double(j, "round_trips_per_s", MED(r, mps), 0);
		return;
	}
	json_stat(j, "calls_per_s", r->mps, r->nrep, 0);
	if (r->depth == 1) {
		json_double(j, "p50_us", MED(r, p50), 3);
		json_double(j, "p99_us", MED(r, p99), 3);
		json_double(j, "mean_us", MED(r, mean_us), 3);
	}
	if (r->t == &bt_rpc_seqpacket)
		json_int(j, "in_flight", r->in_flight);
}

/* The fields of record r that say what it measured. */
static void json_what(struct json *j, const struct rec *r)
{
	json_str(j, "section", r->section);
	json_str(j, "transport", r->t->name);
	json_str(j, "label", r->label);
	json_u64(j, "size", r->size);
	if (!strcmp(r->section, "chart")) {
		json_u64(j, "nodes", r->nodes);
		json_u64(j, "readers", r->readers);
		json_u64(j, "writers", r->writers);
	}
	if (!strncmp(r->section, "topic", 5))
		json_u64(j, "subscribers", r->readers);
	if (!strcmp(r->section, "topic-latency"))
		json_str(j, "measure", r->rtt ? "round trip" : "one way");
	if (!strncmp(r->section, "wake", 4))
		json_int(j, "hogs", r->hogs);
	if (is_rpc(r) && r->t != &bt_rpc_floor) {
		json_int(j, "depth", r->depth);
		json_int(j, "clients",
			 r->t == &bt_rpc_seqpacket ? 1 : r->clients);
		json_str(j, "spin", r->nospin ? "off" : "default");
		json_int(j, "hogs", r->hogs);
		json_int(j, "idle_clients", r->idle);
	}
}

/* The document, through the tool's JSON writer (tools/shmk/json.c). */
static void out_json(void)
{
	struct utsname u;
	struct json j;

	uname(&u);
	json_init(&j, stdout);
	json_open_object(&j, NULL);
	json_str(&j, "date", g_date);
	json_open_object(&j, "machine");
	json_str(&j, "kernel", u.release);
	json_str(&j, "arch", u.machine);
	json_str(&j, "cpu", g_cpu);
	json_int(&j, "cpus", g_ncpu);
	json_close(&j);
	json_double(&j, "seconds_per_measurement", opt.secs, 2);
	json_open_array(&j, "results");
	for (int i = 0; i < nrecs; i++) {
		const struct rec *r = &recs[i];

		json_open_object(&j, NULL);
		json_what(&j, r);
		json_str(&j, "status", st_name(r->st));
		if (r->st == ST_OK && is_rpc(r)) {
			json_rpc(&j, r);
		} else if (r->st == ST_OK && !is_lat(r)) {
			json_stat(&j, "gbps", r->gbps, r->nrep, 4);
			json_stat(&j, "msgs_per_s", r->mps, r->nrep, 0);
		} else if (r->st == ST_OK) {
			json_double(&j, "p50_us", MED(r, p50), 3);
			json_double(&j, "p99_us", MED(r, p99), 3);
			json_double(&j, "p999_us", MED(r, p999), 3);
			json_double(&j,
				    r->section[0] == 't' && !r->rtt
					    ? "messages_per_s"
					    : "round_trips_per_s",
				    MED(r, mps), 0);
		}
		json_int(&j, "repeats", r->nrep);
		if (r->why[0])
			json_str(&j, "note", r->why);
		json_close(&j);
	}
	json_close(&j);
	json_close(&j);
	putchar('\n');
}

/*
 * The results, in the format asked for, on stdout.  out_csv() and
 * out_json() above (the latter writing through the tool's JSON writer,
 * tools/shmk/json.c) are all the code that knows those formats; the rest
 * of the program reaches them only through here, so that another writer
 * replaces them alone.
 */
void report(void)
{
	if (opt.fmt == F_CSV) {
		out_csv();
		return;
	}
	if (opt.fmt == F_JSON) {
		out_json();
		return;
	}
	if (opt.chart)
		text_chart();
	if (opt.peers)
		text_peers();
	if (opt.latency)
		text_latency();
	if (opt.peers || opt.latency)
		text_ratios();
	if (opt.topic)
		text_topic();
	if (opt.wake)
		text_wake();
	if (opt.rpc)
		text_rpc();
	printf("\n");
	if (opt.peers || opt.latency || opt.topic) {
		int missing = 0;

		for (size_t p = 0; p < nknown_peers; p++)
			if (!find_t(known_peers[p].name)) {
				if (!missing++)
					printf("Peers skipped (not built; "
					       "`make "
					       "bench-peers` adds them):");
				printf("%s %s", missing > 1 ? "," : "",
				       known_peers[p].label);
			}
		if (missing)
			printf("\n");
	}
	print_notes();
}

/* What this run will do, before it starts (the text format only). */
void report_start(int steps)
{
	struct utsname u;

	if (opt.fmt != F_TEXT)
		return;
	uname(&u);
	printf("shmk bench, %s: %s, %d CPUs, Linux %s %s\n", g_date, g_cpu,
	       g_ncpu, u.release, u.machine);
	printf("%d measurements of %.2f s%s: about %.0f s\n\n", steps, opt.secs,
	       opt.reps > 1 ? " (medians of repeats)" : "",
	       steps * (opt.secs + 0.08) * 1.1);
}

/* Every failed measurement, on stderr, whatever the format. */
void report_failures(void)
{
	for (int i = 0; i < nrecs; i++)
		if (recs[i].st == ST_FAIL)
			fprintf(stderr, "shmk bench: FAILED: %s, %s, %s: %s\n",
				recs[i].section, recs[i].label,
				size_str(recs[i].size), recs[i].why);
}
