/* SPDX-License-Identifier: MIT */
/*
 * report_topic.c - the topic section's text tables: rates and delivered
 * bandwidth by transport, size and subscribers, the publish-to-receive
 * latency, the ratios against the references and the targets.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "builtin.h"
#include "shmk_bench.h"

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

/* A cell of the rates table: messages/s per subscriber, then GB/s
 * delivered to all; "-" where r is NULL. */
static void rate_cell(char *cell, size_t n, const struct rec *r)
{
	char m[32];

	if (!r)
		snprintf(cell, n, "-");
	else if (r->st != ST_OK)
		snprintf(cell, n, "%s", cell_status(r));
	else {
		fmt_rate(m, sizeof(m), MED(r, mps), "/s");
		snprintf(cell, n, "%s %7.2f", m, MED(r, gbps));
	}
}

/* The rates table: its heading, a row per transport and subscriber
 * count, and the ring's copy mode at 64 B as the reference. */
static void topic_rates(void)
{
	struct rec *a;
	char cell[40];
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

				rate_cell(cell, sizeof(cell), r);
				printf(" %19s", cell);
			}
			printf("\n");
		}
	a = find_topic(&bt_shmk, 64, 1);
	if (a) {
		printf("   %-30s %4u", "shmk ring (copy), reference", 1u);
		for (int s = 0; s < ntopic_sizes; s++) {
			rate_cell(cell, sizeof(cell),
				  topic_sizes[s] == 64 ? a : NULL);
			printf(" %19s", cell);
		}
		printf("\n");
	}
}

/* The 64-byte publish-to-receive latency, by transport and subscribers. */
static void topic_latency(void)
{
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
}

/* The topic's better mode against iceoryx (ice) and the tee. */
static void topic_ratios(const struct bt_transport *ice)
{
	char cell[40];

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
}

/* The targets, as ratios measured in this run. */
static void topic_targets(const struct bt_transport *ice)
{
	struct rec *a, *b;

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

void text_topic(void)
{
	const struct bt_transport *ice = topic_peer("iceoryx");

	topic_rates();
	topic_latency();
	topic_ratios(ice);
	topic_targets(ice);
}
