/* SPDX-License-Identifier: MIT */
/*
 * report_rpc.c - the rpc section's text tables: shmk_rpc's calls a second
 * beside the seqpacket echo's, row by row, with the ratio and the round
 * trip of one call at a time; the idle clients' cost; the floor of every
 * size against the mean call of both; and the targets as ratios
 * measured in the run.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "shmk_bench.h"

/* The record of section with t at size in r's mode (NULL: none). */
static struct rec *rpc_find(const char *section, const struct bt_transport *t,
			    const struct rec *r, size_t size)
{
	for (int i = 0; i < nrecs; i++) {
		struct rec *x = &recs[i];

		if (!strcmp(x->section, section) && x->t == t &&
		    x->size == size && x->depth == r->depth &&
		    x->clients == r->clients && x->nospin == r->nospin &&
		    x->hogs == r->hogs && x->idle == r->idle)
			return x;
	}
	return NULL;
}

/* A rate cell, or why not. */
static void rpc_rate(char *b, size_t n, const struct rec *r)
{
	if (!r)
		snprintf(b, n, "-");
	else if (r->st != ST_OK)
		snprintf(b, n, "%s", cell_status(r));
	else
		fmt_rate(b, n, MED(r, mps), "/s");
}

static int ok(const struct rec *r)
{
	return r && r->st == ST_OK;
}

/* A row: shmk_rpc (a) beside the seqpacket echo (b). */
static void rpc_row(const struct rec *a, const struct rec *b)
{
	char mode[48], x[32], y[32], q[16] = "-";

	rpc_rate(x, sizeof(x), a);
	rpc_rate(y, sizeof(y), b);
	if (ok(a) && ok(b))
		snprintf(q, sizeof(q), "%.2fx", MED(a, mps) / MED(b, mps));
	printf("   %-8s %-24s %12s %12s %8s", size_str(a->size),
	       rpc_mode(a, mode, sizeof(mode)), x, y, q);
	if (a->depth == 1) {
		if (ok(a))
			printf("  %8.2f %8.2f", MED(a, p50), MED(a, p99));
		else
			printf("  %8s %8s", "-", "-");
		if (ok(b))
			printf("  %8.2f %8.2f", MED(b, p50), MED(b, p99));
		else
			printf("  %8s %8s", "-", "-");
	}
	printf("\n");
	if (b && b->st != ST_OK && b->why[0])
		printf("   %-8s %-24s seqpacket %s: %s\n", "", "",
		       cell_status(b), b->why);
}

/* What idle clients cost one busy client. */
static void rpc_idle(void)
{
	struct rec *a = NULL, *b = NULL;

	for (int i = 0; i < nrecs; i++)
		if (!strcmp(recs[i].section, "rpc-idle")) {
			if (recs[i].idle)
				b = &recs[i];
			else
				a = &recs[i];
		}
	if (!a || !b)
		return;
	printf("\n   1 KiB, one call at a time, without and with %d idle "
	       "client processes connected\n   (channels of 16 nodes of "
	       "4 KiB in both rows, as in bench_rpc)\n\n",
	       b->idle);
	if (!ok(a) || !ok(b)) {
		printf("   %s\n", !ok(a) ? cell_status(a) : cell_status(b));
		return;
	}
	{
		char x[32], y[32];

		fmt_rate(x, sizeof(x), MED(a, mps), "/s");
		fmt_rate(y, sizeof(y), MED(b, mps), "/s");
		printf("   calls: %s without, %s with (%.2fx); p50 %.2f / "
		       "%.2f us, p99 %.2f / %.2f us\n",
		       x, y, MED(b, mps) / MED(a, mps), MED(a, p50),
		       MED(b, p50), MED(a, p99), MED(b, p99));
	}
}

/* The floor against the mean call one at a time. */
static void rpc_floor_table(void)
{
	char c[3][16];

	printf("\n   The floor: a round trip from CPU 0 to CPU 1 and back "
	       "through shared memory\n   that makes a call's four copies "
	       "and spins on a flag (no transport that\n   copies beats "
	       "it), beside the mean call one at a time (microseconds)\n\n");
	printf("   %-8s %9s %10s %10s %11s %16s\n", "request", "floor",
	       "shmk_rpc", "seqpacket", "shmk/floor", "seqpacket/floor");
	for (int s = 0; s < nrpc_sizes; s++) {
		struct rec one = {.depth = 1, .clients = 1};
		struct rec *f = rpc_find("rpc-floor", &bt_rpc_floor, &one,
					 rpc_sizes[s]);
		struct rec *a =
			rpc_find("rpc", &bt_rpc_shmk, &one, rpc_sizes[s]);
		struct rec *b =
			rpc_find("rpc", &bt_rpc_seqpacket, &one, rpc_sizes[s]);
		const struct rec *v[3] = {f, a, b};
		char r1[16] = "-", r2[16] = "-";

		if (!f)
			continue;
		for (int k = 0; k < 3; k++)
			if (ok(v[k]))
				snprintf(c[k], sizeof(c[k]), "%.2f",
					 MED(v[k], mean_us));
			else
				snprintf(c[k], sizeof(c[k]), "%s",
					 v[k] ? cell_status(v[k]) : "-");
		if (ok(f) && ok(a))
			snprintf(r1, sizeof(r1), "%.2f",
				 MED(a, mean_us) / MED(f, mean_us));
		if (ok(f) && ok(b))
			snprintf(r2, sizeof(r2), "%.2f",
				 MED(b, mean_us) / MED(f, mean_us));
		printf("   %-8s %9s %10s %10s %11s %16s\n",
		       size_str(rpc_sizes[s]), c[0], c[1], c[2], r1, r2);
	}
}

/* One target line: shmk_rpc's a against b (ratio of v(a) to v(b)), at
 * least or at most bound; where a row is missing or failed, why. */
static void rpc_target(const char *what, const struct rec *a,
		       const struct rec *b, int p50, int at_most, double bound)
{
	const struct rec *m = !ok(a) ? a : b;
	double x;

	if (!ok(a) || !ok(b)) {
		printf("   %-44s not measured (%s)\n", what,
		       !m	   ? "not in this run"
		       : m->why[0] ? m->why
				   : "n/a");
		return;
	}
	x = p50 ? MED(a, p50) / MED(b, p50) : MED(a, mps) / MED(b, mps);
	printf("   %-44s %7.2fx  (target %s %.1fx): %s\n", what, x,
	       at_most ? "<=" : ">=", bound,
	       (at_most ? x <= bound : x >= bound) ? "met" : "MISSED");
}

/* The targets, as ratios measured in this run: shmk_rpc's calls
 * a second against the seqpacket echo's in the same mode; with idle
 * clients, the busy client's p50 with them against without. */
static void rpc_targets(void)
{
	static const struct {
		const char *what;
		size_t size;
		int depth, nospin, hogs;
		double bound;
	} t[] = {
		{"1 KiB, one call at a time", 1024, 1, 0, 0, 10},
		{"1 KiB, 16 in flight", 1024, 16, 0, 0, 5},
		{"64 KiB, one call at a time", 64 << 10, 1, 0, 0, 4},
		{"512 KiB, one call at a time", 512 << 10, 1, 0, 0, 4},
		{"1 KiB, one call at a time, no spin", 1024, 1, 1, 0, 1.2},
		{"1 KiB, 16 in flight, no spin", 1024, 16, 1, 0, 1.2},
		{"1 KiB, one call at a time, 2 hogs", 1024, 1, 0, 2, 2},
		{"1 KiB, 16 in flight, 2 hogs", 1024, 16, 0, 2, 2},
	};
	struct rec *with = NULL, *without = NULL;
	char what[64];

	printf("\n   Targets, as ratios measured in this run "
	       "(shmk_rpc / seqpacket,\n   calls a second):\n\n");
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct rec mode = {.depth = t[i].depth,
				   .clients = 1,
				   .nospin = t[i].nospin,
				   .hogs = t[i].hogs};

		rpc_target(t[i].what,
			   rpc_find("rpc", &bt_rpc_shmk, &mode, t[i].size),
			   rpc_find("rpc", &bt_rpc_seqpacket, &mode, t[i].size),
			   0, 0, t[i].bound);
	}
	for (int i = 0; i < nrecs; i++)
		if (!strcmp(recs[i].section, "rpc-idle")) {
			if (recs[i].idle)
				with = &recs[i];
			else
				without = &recs[i];
		}
	snprintf(what, sizeof(what), "p50 with %d idle clients / without",
		 with ? with->idle : 0);
	rpc_target(what, with, without, 1, 1, 1.2);
}

void text_rpc(void)
{
	int any = 0;

	printf("\n7. RPC: shmk_rpc calls beside a UNIX seqpacket echo of the "
	       "same sizes\n   (a server process on CPU 1, clients on CPU 0; "
	       "a reply as large as its\n   request, every reply checked; "
	       "calls a second, the ratio above 1 = shmk\n   ahead; one call "
	       "at a time also the round trip's p50 and p99 in us)\n\n");
	printf("   %-8s %-24s %12s %12s %8s  %8s %8s  %8s %8s\n", "request",
	       "mode", "shmk_rpc", "seqpacket", "ratio", "shmk p50", "p99",
	       "seqp p50", "p99");
	for (int i = 0; i < nrecs; i++) {
		struct rec *a = &recs[i];

		if (strcmp(a->section, "rpc") != 0 || a->t != &bt_rpc_shmk)
			continue;
		rpc_row(a, rpc_find("rpc", &bt_rpc_seqpacket, a, a->size));
	}
	rpc_idle();
	rpc_floor_table();
	printf("\n   The seqpacket socketpair (a message per request and per "
	       "reply) has buffers\n   of 4 x size + 64 KiB each way; with "
	       "several calls in flight it keeps at\n   most what its send "
	       "buffer holds:\n  ");
	for (int i = 0; i < nrecs; i++) {
		struct rec *b = &recs[i];

		if (strcmp(b->section, "rpc") != 0 ||
		    b->t != &bt_rpc_seqpacket || b->depth == 1 ||
		    b->clients > 1 || b->nospin || b->hogs || !ok(b))
			continue;
		printf("%s %d at %s", any++ ? "," : "", b->in_flight,
		       size_str(b->size));
	}
	printf("%s.\n", any ? "" : " (none measured)");
	for (int i = 0; i < nrecs; i++)
		if (!strcmp(recs[i].section, "rpc") && recs[i].clients > 1) {
			printf("   2 clients: their calls together; the "
			       "seqpacket column is one client of 16\n   in "
			       "flight.\n");
			break;
		}
	rpc_targets();
}
