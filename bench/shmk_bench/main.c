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
 *
 * then the ratios: shmk against the best peer, a pipe, and the cross-core
 * copy bound measured in the same run.  Every message of every transport
 * carries a header and a checksum (verify.h) that the receiver checks; a
 * lost, repeated or corrupt message fails the run.  Peer libraries come
 * as plugins (transport.h, bench/peers/).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmk.h>

#include "../bench.h"
#include "builtin.h"
#include "shmk_bench.h"
#include "transport.h"
#include "verify.h"

/* ------------------------------------------------------------------ */
/* Options                                                              */
/* ------------------------------------------------------------------ */

struct bench_opts opt;

/* ------------------------------------------------------------------ */
/* Output helpers                                                       */
/* ------------------------------------------------------------------ */

int g_ncpu;
static int step_no, step_total;

static const char *size_str(size_t s)
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

static int g_failed;

/* ------------------------------------------------------------------ */
/* Text output                                                          */
/* ------------------------------------------------------------------ */

static void fmt_rate(char *b, size_t n, double v, const char *unit)
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

static const char *cell_status(const struct rec *r)
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

/* One target line: what / reference = ratio, against bound. */
static void text_target(const char *what, const struct rec *a, double va,
			const char *ref, const struct rec *b, double vb,
			const char *unit, int at_most, double bound)
{
	double x;

	printf("   %s\n", what);
	if (!a || a->st != ST_OK || !b || b->st != ST_OK) {
		const struct rec *m = !a || a->st != ST_OK ? a : b;

		printf("     not measured: %s\n",
		       m && m->why[0] ? m->why
				      : "not in this run (sizes, subscribers, "
					"--transports; iceoryx: --list)");
		return;
	}
	x = va / vb;
	printf("     %.2f %s against %s %.2f %s: %.2fx (target %s %.1fx): "
	       "%s\n",
	       va, unit, ref, vb, unit, x, at_most ? "<=" : ">=", bound,
	       (at_most ? x <= bound : x >= bound) ? "met" : "MISSED");
}

static void text_topic(void)
{
	const struct bt_transport *ice = topic_peer("iceoryx");
	struct rec *a, *b;
	char m[32], cell[40];
	int shared = 0;

	for (int j = 0; j < ntopic_subs; j++)
		shared |= (int)topic_subs[j] >= g_ncpu;
	printf("\n5. Topic: one publisher to 1, 2 or 4 subscriber processes; "
	       "every subscriber\n   gets and verifies every message.  "
	       "Each cell: messages/s per subscriber,\n   then GB/s "
	       "delivered to all subscribers together.\n");
	if (shared)
		printf("   With %d CPUs, a publisher and %d or more "
		       "subscribers take turns on them\n   (not pinned; the "
		       "tee is a process more).\n",
		       g_ncpu, g_ncpu);
	printf("\n   %-30s %4s", "transport", "subs");
	for (int s = 0; s < ntopic_sizes; s++)
		printf(" %19s", size_str(topic_sizes[s]));
	printf("\n");
	for (int i = 0; i < ntopic_tr; i++)
		for (int j = 0; j < ntopic_subs; j++) {
			int any = 0;

			for (int s = 0; s < ntopic_sizes; s++)
				any |= find_topic(topic_tr[i], topic_sizes[s],
						  topic_subs[j]) != NULL;
			if (!any)
				continue;
			printf("   %-30s %4u", topic_tr[i]->label,
			       topic_subs[j]);
			for (int s = 0; s < ntopic_sizes; s++) {
				struct rec *r =
					find_topic(topic_tr[i], topic_sizes[s],
						   topic_subs[j]);

				if (!r)
					snprintf(cell, sizeof(cell), "-");
				else if (r->st != ST_OK)
					snprintf(cell, sizeof(cell), "%s",
						 cell_status(r));
				else {
					fmt_rate(m, sizeof(m), MED(r, mps),
						 "/s");
					snprintf(cell, sizeof(cell), "%s %7.2f",
						 m, MED(r, gbps));
				}
				printf(" %19s", cell);
			}
			printf("\n");
		}
	a = find_topic(&bt_shmk, 64, 1);
	if (a) {
		printf("   %-30s %4u", "shmk ring (copy), reference", 1u);
		for (int s = 0; s < ntopic_sizes; s++) {
			if (topic_sizes[s] != 64)
				snprintf(cell, sizeof(cell), "-");
			else if (a->st != ST_OK)
				snprintf(cell, sizeof(cell), "%s",
					 cell_status(a));
			else {
				fmt_rate(m, sizeof(m), MED(a, mps), "/s");
				snprintf(cell, sizeof(cell), "%s %7.2f", m,
					 MED(a, gbps));
			}
			printf(" %19s", cell);
		}
		printf("\n");
	}

	printf("\n   64-byte publish-to-receive latency, microseconds: a "
	       "CLOCK_MONOTONIC time\n   stamp in each message, read again "
	       "by each subscriber once it has the message\n   and has "
	       "verified it; one message at a time; copy mode.\n\n");
	printf("   %-44s %4s %9s %9s %9s\n", "transport", "subs", "p50", "p99",
	       "p99.9");
	for (int i = 0; i < nrecs; i++) {
		struct rec *r = &recs[i];
		double h = r->rtt ? 2 : 1;
		char lab[96];

		if (strcmp(r->section, "topic-latency"))
			continue;
		snprintf(lab, sizeof(lab), "%s%s", r->label,
			 r->rtt		    ? ": half a round trip"
			 : r->t == &bt_shmk ? ": one way, time stamp"
					    : "");
		if (r->st != ST_OK) {
			printf("   %-44s %4u %9s\n", lab, r->readers,
			       cell_status(r));
			continue;
		}
		printf("   %-44s %4u %9.2f %9.2f %9.2f\n", lab, r->readers,
		       MED(r, p50) / h, MED(r, p99) / h, MED(r, p999) / h);
	}

	/* Against the references, at every size and count measured: the
	 * bandwidth delivered by the topic's better mode over theirs. */
	printf("\n   The topic's better mode (copy or zero copy) against the "
	       "references, delivered\n   bandwidth over delivered "
	       "bandwidth:\n\n");
	for (int q = 0; q < 2; q++) {
		const struct bt_transport *ref = q ? topic_peer("tee") : ice;
		char lab[40];

		for (int j = 0; ref && j < ntopic_subs; j++) {
			snprintf(lab, sizeof(lab), "/ %s", ref->label);
			printf("   %-30s %4u", lab, topic_subs[j]);
			for (int s = 0; s < ntopic_sizes; s++) {
				struct rec *c =
					find_topic(&bt_topic, topic_sizes[s],
						   topic_subs[j]);
				struct rec *z =
					find_topic(&bt_topic_zc, topic_sizes[s],
						   topic_subs[j]);
				struct rec *o = find_topic(ref, topic_sizes[s],
							   topic_subs[j]);
				double v = 0;

				if (c && c->st == ST_OK)
					v = MED(c, gbps);
				if (z && z->st == ST_OK && MED(z, gbps) > v)
					v = MED(z, gbps);
				if (v > 0 && o && o->st == ST_OK)
					snprintf(cell, sizeof(cell), "%.2fx",
						 v / MED(o, gbps));
				else
					snprintf(cell, sizeof(cell), "-");
				printf(" %19s", cell);
			}
			printf("\n");
		}
	}

	printf("\n   Targets, as ratios measured in this run:\n");
	a = find_topic(&bt_topic, 64, 1);
	b = find_topic(&bt_shmk, 64, 1);
	text_target("1 to 1, 64 B, copy: the topic's rate against the "
		    "ring's copy mode (>= 0.8x)",
		    a, a ? MED(a, mps) / 1e6 : 0, "the ring", b,
		    b ? MED(b, mps) / 1e6 : 0, "M msgs/s", 0, 0.8);
	a = find_topic(&bt_topic_zc, 1 << 20, 4);
	b = ice ? find_topic(ice, 1 << 20, 4) : NULL;
	text_target("1 MiB, zero copy, 4 subscribers: delivered bandwidth "
		    "against iceoryx's (>= 2x)",
		    a, a ? MED(a, gbps) : 0, "iceoryx", b, b ? MED(b, gbps) : 0,
		    "GB/s", 0, 2.0);
	a = find_lat(&bt_topic, 1, 0);
	b = find_lat(&bt_shmk, 1, 1);
	text_target("64 B latency p50, 1 subscriber, against the ring's "
		    "one way (half its round trip; <= 1.3x)",
		    a, a ? MED(a, p50) : 0, "the ring", b,
		    b ? MED(b, p50) / 2 : 0, "us", 1, 1.3);
}

/* ------------------------------------------------------------------ */
/* CSV and JSON                                                         */
/* ------------------------------------------------------------------ */

/* A record of latencies (p50, p99, p99.9), not rates. */
static int is_lat(const struct rec *r)
{
	return !strcmp(r->section, "latency") ||
	       !strcmp(r->section, "topic-latency");
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
		if (!is_lat(r))
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

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static char g_cpu[128], g_date[64];

static void out_json(void)
{
	struct utsname u;

	uname(&u);
	printf("{\n  \"date\": ");
	json_str(g_date);
	printf(",\n  \"machine\": {\"kernel\": ");
	json_str(u.release);
	printf(", \"arch\": ");
	json_str(u.machine);
	printf(", \"cpu\": ");
	json_str(g_cpu);
	printf(", \"cpus\": %d},\n  \"seconds_per_measurement\": %.2f,\n"
	       "  \"results\": [\n",
	       g_ncpu, opt.secs);
	for (int i = 0; i < nrecs; i++) {
		struct rec *r = &recs[i];

		printf("    {\"section\": \"%s\", \"transport\": ", r->section);
		json_str(r->t->name);
		printf(", \"label\": ");
		json_str(r->label);
		printf(", \"size\": %zu", r->size);
		if (!strcmp(r->section, "chart"))
			printf(", \"nodes\": %u, \"readers\": %u, "
			       "\"writers\": %u",
			       r->nodes, r->readers, r->writers);
		if (!strncmp(r->section, "topic", 5))
			printf(", \"subscribers\": %u", r->readers);
		if (!strcmp(r->section, "topic-latency"))
			printf(", \"measure\": \"%s\"",
			       r->rtt ? "round trip" : "one way");
		printf(", \"status\": \"%s\"", st_name(r->st));
		if (r->st == ST_OK && !is_lat(r))
			printf(", \"gbps\": {\"min\": %.4f, \"median\": "
			       "%.4f, \"max\": %.4f}, \"msgs_per_s\": "
			       "{\"min\": %.0f, \"median\": %.0f, \"max\": "
			       "%.0f}",
			       stat_of(r->gbps, r->nrep, 0), MED(r, gbps),
			       stat_of(r->gbps, r->nrep, 2),
			       stat_of(r->mps, r->nrep, 0), MED(r, mps),
			       stat_of(r->mps, r->nrep, 2));
		else if (r->st == ST_OK)
			printf(", \"p50_us\": %.3f, \"p99_us\": %.3f, "
			       "\"p999_us\": %.3f, \"%s_per_s\": %.0f",
			       MED(r, p50), MED(r, p99), MED(r, p999),
			       r->section[0] == 't' && !r->rtt ? "messages"
							       : "round_trips",
			       MED(r, mps));
		printf(", \"repeats\": %d", r->nrep);
		if (r->why[0]) {
			printf(", \"note\": ");
			json_str(r->why);
		}
		printf("}%s\n", i + 1 < nrecs ? "," : "");
	}
	printf("  ]\n}\n");
}

/* ------------------------------------------------------------------ */
/* Charts with gnuplot                                                  */
/* ------------------------------------------------------------------ */

static FILE *open_in(const char *dir, const char *file)
{
	char p[PATH_MAX];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	f = fopen(p, "w");
	if (!f)
		fprintf(stderr, "shmk bench: %s: %s\n", p, strerror(errno));
	return f;
}

static void plot(const char *dir)
{
	char cmd[PATH_MAX + 64], xtics[16 * 40], ttics[16 * 40] = "";
	int ok, ntopic_cols;
	FILE *f;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "shmk bench: %s: %s\n", dir, strerror(errno));
		return;
	}
	/* chart.dat: nodes, then GB/s per size and readers:writers. */
	if (opt.chart && (f = open_in(dir, "chart.dat"))) {
		fprintf(f, "nodes");
		for (int s = 0; s < 2; s++)
			for (int k = 0; k < 4; k++)
				fprintf(f, " \"%s %ur:%uw\"",
					size_str(chart_sizes[s]),
					chart_rw[k][0], chart_rw[k][1]);
		fprintf(f, "\n");
		for (int n = 0; n < 5; n++) {
			fprintf(f, "%u", chart_nodes[n]);
			for (int s = 0; s < 2; s++)
				for (int k = 0; k < 4; k++) {
					struct rec *r = find_rec(
						"chart", &bt_shmk,
						chart_sizes[s], chart_nodes[n],
						chart_rw[k][0], chart_rw[k][1]);

					if (r && r->st == ST_OK)
						fprintf(f, " %.4f",
							MED(r, gbps));
					else
						fprintf(f, " NaN");
				}
			fprintf(f, "\n");
		}
		fclose(f);
	}
	if (opt.peers && (f = open_in(dir, "peers.dat"))) {
		fprintf(f, "size");
		for (int i = 0; i < ntr; i++)
			fprintf(f, " \"%s\"", tr[i]->label);
		fprintf(f, "\n");
		for (int s = 0; s < opt.nsizes; s++) {
			fprintf(f, "%zu", opt.sizes[s]);
			for (int i = 0; i < ntr; i++) {
				struct rec *r = find_rec("peers", tr[i],
							 opt.sizes[s], 0, 0, 0);

				if (r && r->st == ST_OK)
					fprintf(f, " %.4f", MED(r, gbps));
				else
					fprintf(f, " NaN");
			}
			fprintf(f, "\n");
		}
		fclose(f);
	}
	if (opt.latency && ncdf && (f = open_in(dir, "latency.dat"))) {
		fprintf(f, "fraction");
		for (int i = 0; i < ncdf; i++)
			fprintf(f, " \"%s\"", cdf[i].t->label);
		fprintf(f, "\n");
		for (int q = 0; q <= 1000; q++) {
			fprintf(f, "%.4f", q / 1000.0);
			for (int i = 0; i < ncdf; i++)
				if (cdf[i].s && cdf[i].n)
					fprintf(f, " %.3f",
						quantile_us(cdf[i].s, cdf[i].n,
							    q / 1000.0));
				else
					fprintf(f, " NaN");
			fprintf(f, "\n");
		}
		fclose(f);
	}
	/* topic.dat: size, then the bandwidth delivered to all subscribers
	 * by each transport and subscriber count. */
	ntopic_cols = 0;
	if (opt.topic && (f = open_in(dir, "topic.dat"))) {
		const struct bt_transport *ct[MAX_T * 3];
		unsigned cs[MAX_T * 3];

		for (int i = 0; i < ntopic_tr; i++)
			for (int j = 0; j < ntopic_subs; j++)
				for (int k = 0; k < ntopic_sizes; k++)
					if (find_topic(topic_tr[i],
						       topic_sizes[k],
						       topic_subs[j])) {
						ct[ntopic_cols] = topic_tr[i];
						cs[ntopic_cols++] =
							topic_subs[j];
						break;
					}
		fprintf(f, "size");
		for (int c = 0; c < ntopic_cols; c++)
			fprintf(f, " \"%s, %u\"", ct[c]->label, cs[c]);
		fprintf(f, "\n");
		for (int k = 0; k < ntopic_sizes; k++) {
			fprintf(f, "%zu", topic_sizes[k]);
			for (int c = 0; c < ntopic_cols; c++) {
				struct rec *r = find_topic(
					ct[c], topic_sizes[k], cs[c]);

				if (r && r->st == ST_OK)
					fprintf(f, " %.4f", MED(r, gbps));
				else
					fprintf(f, " NaN");
			}
			fprintf(f, "\n");
		}
		fclose(f);
	}
	/* The sizes measured, as the size axis's labels. */
	for (int k = 0, n = 0; k < opt.nsizes; k++)
		n += snprintf(xtics + n, sizeof(xtics) - (size_t)n,
			      "%s\"%s\" %zu", k ? ", " : "",
			      size_str(opt.sizes[k]), opt.sizes[k]);
	for (int k = 0, n = 0; k < ntopic_sizes; k++)
		n += snprintf(ttics + n, sizeof(ttics) - (size_t)n,
			      "%s\"%s\" %zu", k ? ", " : "",
			      size_str(topic_sizes[k]), topic_sizes[k]);
	f = open_in(dir, "charts.gp");
	if (!f)
		return;
	fprintf(f,
		"# gnuplot charts.gp (written by shmk bench, %s)\n"
		"set terminal pngcairo size 1000,640 font ',11'\n"
		"set termoption noenhanced\n"
		"set key outside right top autotitle columnhead\n"
		"set grid\n"
		"set datafile missing 'NaN'\n"
		"# sixteen colours, then the same dashed\n"
		"C = '#1f77b4 #d62728 #2ca02c #9467bd #ff7f0e #8c564b "
		"#e377c2 #17becf #7f7f7f #bcbd22 #000000 #393b79 #637939 "
		"#843c39 #7b4173 #3182bd'\n"
		"col(i) = word(C, (i - 2) %% 16 + 1)\n"
		"dash(i) = (i - 2) / 16 + 1\n",
		g_date);
	if (opt.chart)
		fprintf(f,
			"set output 'chart.png'\n"
			"set title 'shmk ring bandwidth by node count "
			"(processes; %s; %d CPUs)'\n"
			"set xlabel 'nodes'\nset ylabel 'GB/s'\n"
			"set logscale x\nset xtics (2,5,10,20,50)\n"
			"plot for [i=2:9] 'chart.dat' using 1:i with "
			"linespoints lw 2 lc rgb col(i) dt dash(i)\n"
			"unset logscale\nunset xtics\nset xtics\n",
			g_date, g_ncpu);
	if (opt.peers)
		fprintf(f,
			"set output 'peers.png'\n"
			"set title 'Throughput by message size, one sender "
			"and one receiver process (%s)'\n"
			"set xlabel 'message size (bytes)'\n"
			"set ylabel 'GB/s'\nset logscale xy\n"
			"set format y '%%g'\n"
			"set xtics (%s)\n"
			"plot for [i=2:%d] 'peers.dat' using 1:i with "
			"linespoints lw 2 lc rgb col(i) dt dash(i)\n"
			"unset logscale\nset xtics autofreq\n"
			"set format x '%%g'\n",
			g_date, xtics, ntr + 1);
	if (opt.topic && ntopic_cols)
		fprintf(f,
			"set output 'topic.png'\n"
			"set title 'Topic: bandwidth delivered to all "
			"subscribers, by transport and subscribers (%s)'\n"
			"set xlabel 'message size (bytes)'\n"
			"set ylabel 'GB/s'\nset logscale xy\n"
			"set format y '%%g'\n"
			"set xtics (%s)\n"
			"plot for [i=2:%d] 'topic.dat' using 1:i with "
			"linespoints lw 2 lc rgb col(i) dt dash(i)\n"
			"unset logscale\nset xtics autofreq\n"
			"set format x '%%g'\n",
			g_date, ttics, ntopic_cols + 1);
	if (opt.latency && ncdf)
		fprintf(f,
			"set output 'latency.png'\n"
			"set title '64-byte round trip: distribution (%s)'\n"
			"set xlabel 'round trip (microseconds)'\n"
			"set ylabel 'fraction of round trips at most x'\n"
			"set logscale x\nset key right bottom inside\n"
			"plot for [i=2:%d] 'latency.dat' using i:1 with "
			"lines lw 2 lc rgb col(i) dt dash(i) title "
			"columnhead(i)\n",
			g_date, ncdf + 1);
	fclose(f);
	if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
		fprintf(stderr,
			"shmk bench: gnuplot is not installed: the data and "
			"%s/charts.gp are written; `make bench-peers` "
			"installs gnuplot\n",
			dir);
		return;
	}
	snprintf(cmd, sizeof(cmd), "cd '%s' && gnuplot charts.gp", dir);
	ok = system(cmd) == 0;
	fprintf(stderr, "shmk bench: %s in %s/\n",
		ok ? "charts written (chart.png, peers.png, latency.png, "
		     "topic.png)"
		   : "gnuplot failed; data and charts.gp",
		dir);
}

/* ------------------------------------------------------------------ */
/* Main                                                                 */
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
		"topic or --full.\n"
		"\n"
		"  --only LIST        sections: chart, peers, latency, "
		"topic (comma-separated)\n"
		"  --full             longer runs, 5 repeats: min, median, "
		"max\n"
		"  --transports LIST  peers, latency and topic for these "
		"only (names: --list)\n"
		"  --sizes LIST       message sizes for peers and topic, "
		"e.g. 64,1K,1M\n"
		"  --seconds S        time per measurement (default 0.25, "
		"--full 0.5)\n"
		"  --repeats N        repeats of each measurement (1..%d)\n"
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
		MAX_REP);
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

int main(int argc, char **argv)
{
	const char *only = NULL, *corrupt = getenv("SHMK_BENCH_CORRUPT");
	int i, s, k, rep;

	opt.secs = -1;
	opt.reps = 0;
	opt.corrupt = corrupt ? atol(corrupt) : -1;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--full")) {
			opt.full = 1;
		} else if (!strcmp(a, "--csv")) {
			opt.fmt = F_CSV;
		} else if (!strcmp(a, "--json")) {
			opt.fmt = F_JSON;
		} else if (!strcmp(a, "--only") && v) {
			only = v, i++;
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
	if (only) {
		opt.chart = strstr(only, "chart") != NULL;
		opt.peers = strstr(only, "peers") != NULL;
		opt.latency = strstr(only, "latency") != NULL;
		opt.topic = opt.topic_full = strstr(only, "topic") != NULL;
		if (!opt.chart && !opt.peers && !opt.latency && !opt.topic) {
			fprintf(stderr, "shmk bench: --only: chart, peers, "
					"latency or topic\n");
			return 2;
		}
	} else {
		opt.chart = opt.peers = opt.latency = opt.topic = 1;
	}
	if (opt.full)
		opt.topic_full = 1;
	if (opt.secs < 0)
		opt.secs = opt.full ? 0.5 : 0.25;
	if (!opt.reps)
		opt.reps = opt.full ? 5 : 1;
	if (!opt.nsizes) {
		static const size_t def[] = {64, 1024, 65536, 262144, 1 << 20};

		memcpy(opt.sizes, def, sizeof(def));
		opt.nsizes = 5;
	}
	opt.progress = isatty(2);
	machine_info();
	load_transports();
	if (opt.only_t)
		for (const char *p = opt.only_t; *p;) {
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
	if (ctl_map() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);

	/* What this run will do. */
	{
		int nt = 0;

		for (i = 0; i < ntr; i++)
			nt += wanted(tr[i]);
		step_total = opt.reps * ((opt.chart ? 40 : 0) +
					 (opt.peers ? nt * opt.nsizes : 0) +
					 (opt.latency ? nt : 0) +
					 (opt.topic ? topic_plan(0) : 0));
		if (opt.fmt == F_TEXT) {
			struct utsname u;

			uname(&u);
			printf("shmk bench, %s: %s, %d CPUs, Linux %s %s\n",
			       g_date, g_cpu, g_ncpu, u.release, u.machine);
			printf("%d measurements of %.2f s%s: about %.0f s\n\n",
			       step_total, opt.secs,
			       opt.reps > 1 ? " (medians of repeats)" : "",
			       step_total * (opt.secs + 0.08) * 1.1);
		}
	}

	/* Every measurement first, then the repeats in turns: a stretch of
	 * the host's noise spreads over all of them instead of spoiling
	 * every repeat of one. */
	if (opt.chart)
		for (s = 0; s < 2; s++)
			for (k = 0; k < 4; k++)
				for (i = 0; i < 5; i++) {
					struct rec *r =
						new_rec("chart", &bt_shmk,
							chart_sizes[s]);

					r->nodes = chart_nodes[i];
					r->readers = chart_rw[k][0];
					r->writers = chart_rw[k][1];
				}
	if (opt.peers)
		for (i = 0; i < ntr; i++)
			for (s = 0; wanted(tr[i]) && s < opt.nsizes; s++)
				new_rec("peers", tr[i], opt.sizes[s]);
	if (opt.latency)
		for (i = 0; i < ntr; i++)
			if (wanted(tr[i]))
				new_rec("latency", tr[i], 64);
	if (opt.topic)
		topic_plan(1);
	for (rep = 0; rep < opt.reps; rep++)
		for (i = 0; i < nrecs; i++) {
			struct rec *r = &recs[i];

			if (r->st != ST_OK)
				continue;
			if (r->section[0] == 'c') {
				progress("chart: %u nodes of %s, %ur:%uw",
					 r->nodes, size_str(r->size),
					 r->readers, r->writers);
				measure_chart(r, rep);
			} else if (r->section[0] == 'p') {
				progress("throughput: %s, %s", r->t->label,
					 size_str(r->size));
				measure_pair(r, rep);
			} else if (!strcmp(r->section, "topic")) {
				progress("topic: %s, %u subscriber%s, %s",
					 r->t->label, r->readers,
					 r->readers > 1 ? "s" : "",
					 size_str(r->size));
				if (r->t == &bt_shmk)
					measure_pair(r, rep);
				else
					measure_fan(r, rep);
			} else if (!strcmp(r->section, "topic-latency")) {
				progress("topic latency: %s, %u subscriber%s",
					 r->t->label, r->readers,
					 r->readers > 1 ? "s" : "");
				if (r->rtt)
					measure_rtt(r, rep);
				else
					measure_fan_lat(r, rep);
			} else {
				progress("round trip: %s", r->t->label);
				measure_rtt(r, rep);
			}
		}
	progress_done();

	for (i = 0; i < nrecs; i++)
		if (recs[i].st == ST_FAIL)
			g_failed++;
	if (opt.fmt == F_CSV) {
		out_csv();
	} else if (opt.fmt == F_JSON) {
		out_json();
	} else {
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
		printf("\n");
		if (opt.peers || opt.latency || opt.topic) {
			int missing = 0;

			for (size_t p = 0; p < nknown_peers; p++)
				if (!find_t(known_peers[p].name)) {
					if (!missing++)
						printf("Peers skipped (not "
						       "built; `make "
						       "bench-peers` adds "
						       "them):");
					printf("%s %s", missing > 1 ? "," : "",
					       known_peers[p].label);
				}
			if (missing)
				printf("\n");
		}
		print_notes();
	}
	if (opt.plot)
		plot(opt.plot);
	for (i = 0; i < nrecs; i++)
		if (recs[i].st == ST_FAIL)
			fprintf(stderr, "shmk bench: FAILED: %s, %s, %s: %s\n",
				recs[i].section, recs[i].label,
				size_str(recs[i].size), recs[i].why);
	return g_failed ? 1 : 0;
}
