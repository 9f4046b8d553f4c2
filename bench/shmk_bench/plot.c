/* SPDX-License-Identifier: MIT */
/*
 * plot.c - the charts, with gnuplot: the data of each section (*.dat)
 * and a script (charts.gp) written into a directory, then gnuplot run
 * there if it is installed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "builtin.h"
#include "shmk_bench.h"

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

/* chart.dat: nodes, then GB/s per size and readers:writers. */
static void chart_dat(const char *dir)
{
	FILE *f;

	if (!opt.chart || !(f = open_in(dir, "chart.dat")))
		return;
	fprintf(f, "nodes");
	for (int s = 0; s < 2; s++)
		for (int k = 0; k < 4; k++)
			fprintf(f, " \"%s %ur:%uw\"", size_str(chart_sizes[s]),
				chart_rw[k][0], chart_rw[k][1]);
	fprintf(f, "\n");
	for (int n = 0; n < 5; n++) {
		fprintf(f, "%u", chart_nodes[n]);
		for (int s = 0; s < 2; s++)
			for (int k = 0; k < 4; k++) {
				struct rec *r = find_rec(
					"chart", &bt_shmk, chart_sizes[s],
					chart_nodes[n], chart_rw[k][0],
					chart_rw[k][1]);

				if (r && r->st == ST_OK)
					fprintf(f, " %.4f", MED(r, gbps));
				else
					fprintf(f, " NaN");
			}
		fprintf(f, "\n");
	}
	fclose(f);
}

/* peers.dat: size, then GB/s per transport. */
static void peers_dat(const char *dir)
{
	FILE *f;

	if (!opt.peers || !(f = open_in(dir, "peers.dat")))
		return;
	fprintf(f, "size");
	for (int i = 0; i < ntr; i++)
		fprintf(f, " \"%s\"", tr[i]->label);
	fprintf(f, "\n");
	for (int s = 0; s < opt.nsizes; s++) {
		fprintf(f, "%zu", opt.sizes[s]);
		for (int i = 0; i < ntr; i++) {
			struct rec *r =
				find_rec("peers", tr[i], opt.sizes[s], 0, 0, 0);

			if (r && r->st == ST_OK)
				fprintf(f, " %.4f", MED(r, gbps));
			else
				fprintf(f, " NaN");
		}
		fprintf(f, "\n");
	}
	fclose(f);
}

/* latency.dat: the fraction of round trips, then the round trip of each
 * transport at that quantile. */
static void latency_dat(const char *dir)
{
	FILE *f;

	if (!opt.latency || !ncdf || !(f = open_in(dir, "latency.dat")))
		return;
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

/*
 * topic.dat: size, then the bandwidth delivered to all subscribers by
 * each transport and subscriber count.  Returns how many columns follow
 * the size (0 if none was written).
 */
static int topic_dat(const char *dir)
{
	const struct bt_transport *ct[MAX_T * 3];
	unsigned cs[MAX_T * 3];
	int ntopic_cols = 0;
	FILE *f;

	if (!opt.topic || !(f = open_in(dir, "topic.dat")))
		return 0;
	for (int i = 0; i < ntopic_tr; i++)
		for (int j = 0; j < ntopic_subs; j++)
			for (int k = 0; k < ntopic_sizes; k++)
				if (find_topic(topic_tr[i], topic_sizes[k],
					       topic_subs[j])) {
					ct[ntopic_cols] = topic_tr[i];
					cs[ntopic_cols++] = topic_subs[j];
					break;
				}
	fprintf(f, "size");
	for (int c = 0; c < ntopic_cols; c++)
		fprintf(f, " \"%s, %u\"", ct[c]->label, cs[c]);
	fprintf(f, "\n");
	for (int k = 0; k < ntopic_sizes; k++) {
		fprintf(f, "%zu", topic_sizes[k]);
		for (int c = 0; c < ntopic_cols; c++) {
			struct rec *r =
				find_topic(ct[c], topic_sizes[k], cs[c]);

			if (r && r->st == ST_OK)
				fprintf(f, " %.4f", MED(r, gbps));
			else
				fprintf(f, " NaN");
		}
		fprintf(f, "\n");
	}
	fclose(f);
	return ntopic_cols;
}

/* The sizes measured, as a size axis's labels. */
static void size_tics(char *b, size_t cap, const size_t *sizes, int n)
{
	b[0] = 0;
	for (int k = 0, m = 0; k < n; k++)
		m += snprintf(b + m, cap - (size_t)m, "%s\"%s\" %zu",
			      k ? ", " : "", size_str(sizes[k]), sizes[k]);
}

/* charts.gp: a chart for each section with data.  0, or -1. */
static int write_gp(const char *dir, const char *xtics, const char *ttics,
		    int ntopic_cols)
{
	FILE *f = open_in(dir, "charts.gp");

	if (!f)
		return -1;
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
	return 0;
}

/* Runs gnuplot on charts.gp in dir, where it is installed. */
static void run_gnuplot(const char *dir)
{
	char cmd[PATH_MAX + 64];
	int ok;

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

void plot(const char *dir)
{
	char xtics[16 * 40], ttics[16 * 40];
	int ntopic_cols;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "shmk bench: %s: %s\n", dir, strerror(errno));
		return;
	}
	chart_dat(dir);
	peers_dat(dir);
	latency_dat(dir);
	ntopic_cols = topic_dat(dir);
	size_tics(xtics, sizeof(xtics), opt.sizes, opt.nsizes);
	size_tics(ttics, sizeof(ttics), topic_sizes, ntopic_sizes);
	if (write_gp(dir, xtics, ttics, ntopic_cols) < 0)
		return;
	run_gnuplot(dir);
}
