/* SPDX-License-Identifier: MIT */
/*
 * plan.c - the plan of a run: the transports found (built in, and the
 * plugins of bench/peers/), and the records to measure, one for each row
 * of the report.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../rpc.h"
#include "builtin.h"
#include "shmk_bench.h"
#include "transport.h"

/* ------------------------------------------------------------------ */
/* The transports of this run                                         */
/* ------------------------------------------------------------------ */

const struct bt_transport *tr[MAX_T];
int ntr;

const struct bt_transport *topic_tr[MAX_T];
int ntopic_tr;

const struct known_peer known_peers[] = {
	{"zmq", "ZeroMQ ipc://", "libzmq3-dev"},
	{"nng", "NNG ipc://", "libnng-dev"},
	{"boost_mq", "Boost.Interprocess message_queue", "libboost-dev"},
	{"iceoryx", "Eclipse iceoryx (C binding)", "libiceoryx-binding-c-dev"},
};
const size_t nknown_peers = sizeof(known_peers) / sizeof(known_peers[0]);

const struct bt_transport *find_t(const char *name)
{
	for (int i = 0; i < ntr; i++)
		if (!strcmp(tr[i]->name, name))
			return tr[i];
	return NULL;
}

/* A transport of any section. */
const struct bt_transport *find_any(const char *name)
{
	for (int i = 0; i < ntopic_tr; i++)
		if (!strcmp(topic_tr[i]->name, name))
			return topic_tr[i];
	return find_t(name);
}

int is_shmk(const struct bt_transport *t)
{
	return t == &bt_shmk || t == &bt_shmk_zc || t == &bt_shmk_sleep ||
	       t == &bt_shmk_single;
}

int wanted(const struct bt_transport *t)
{
	const char *s = opt.only_t;
	size_t n = strlen(t->name);

	if (!s)
		return 1;
	while (*s) {
		size_t k = strcspn(s, ",");

		if (k == n && !strncmp(s, t->name, n))
			return 1;
		s += k + (s[k] == ',');
	}
	return 0;
}

static void add_t(const struct bt_transport *t)
{
	if (ntr < MAX_T && !find_t(t->name))
		tr[ntr++] = t;
}

/* Loads every plugin in dir; returns how many. */
static int load_dir(const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char path[PATH_MAX];
		size_t l = strlen(e->d_name);
		bt_entry_fn fn;
		void *h;

		if (l < 4 || strcmp(e->d_name + l - 3, ".so"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			fprintf(stderr, "shmk bench: %s\n", dlerror());
			continue;
		}
		*(void **)&fn = dlsym(h, "shmk_bench_transport");
		if (!fn || !fn() || fn()->abi != BT_ABI) {
			fprintf(stderr,
				"shmk bench: %s: not a transport plugin of "
				"this version\n",
				path);
			dlclose(h);
			continue;
		}
		add_t(fn());
		n++;
	}
	closedir(d);
	return n;
}

/* The peers and latency sections' transports: the built-in ones, then
 * the plugins. */
static void load_peer_transports(void)
{
	const char *env = getenv("SHMK_BENCH_PEERS");
	char exe[PATH_MAX], dir[PATH_MAX + 8];
	ssize_t n;

	add_t(&bt_shmk);
	add_t(&bt_shmk_zc);
	add_t(&bt_shmk_single);
	add_t(&bt_shmk_sleep);
	add_t(&bt_bound);
	add_t(&bt_pipe);
	add_t(&bt_unix);
	add_t(&bt_dgram);
	add_t(&bt_mq);
	add_t(&bt_tcp);
	if (env) {
		load_dir(env);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		*strrchr(exe, '/') = 0;
		snprintf(dir, sizeof(dir), "%s/peers", exe);
		if (load_dir(dir))
			return;
	}
#ifdef SHMK_BENCH_PEERDIR
	load_dir(SHMK_BENCH_PEERDIR);
#endif
}

void load_transports(void)
{
	load_peer_transports();
	topic_tr[ntopic_tr++] = &bt_topic;
	topic_tr[ntopic_tr++] = &bt_topic_zc;
	topic_tr[ntopic_tr++] = &bt_tee;
	for (int i = 0; i < ntr && ntopic_tr < MAX_T; i++)
		if (tr[i]->fanout)
			topic_tr[ntopic_tr++] = tr[i];
}

void list_transports(void)
{
	printf("transports:\n");
	for (int i = 0; i < ntr; i++)
		printf("  %-10s %s\n", tr[i]->name, tr[i]->label);
	for (int i = 0; i < ntopic_tr; i++)
		if (!find_t(topic_tr[i]->name))
			printf("  %-10s %s (topic section)\n",
			       topic_tr[i]->name, topic_tr[i]->label);
	for (size_t k = 0; k < nknown_peers; k++)
		if (!find_t(known_peers[k].name))
			printf("  %-10s %s: not built (needs %s; run `make "
			       "bench-peers`)\n",
			       known_peers[k].name, known_peers[k].label,
			       known_peers[k].package);
}

/* ------------------------------------------------------------------ */
/* Records                                                            */
/* ------------------------------------------------------------------ */

struct rec *recs;
int nrecs;
static int caprecs;

struct rec *new_rec(const char *section, const struct bt_transport *t,
		    size_t size)
{
	struct rec *r;

	if (nrecs == caprecs) {
		caprecs = caprecs ? 2 * caprecs : 128;
		recs = realloc(recs, (size_t)caprecs * sizeof(*recs));
		if (!recs) {
			perror("shmk bench");
			exit(1);
		}
	}
	r = &recs[nrecs++];
	memset(r, 0, sizeof(*r));
	r->section = section;
	r->t = t;
	r->size = size;
	if (t)
		snprintf(r->label, sizeof(r->label), "%s", t->label);
	return r;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median (which = 1), minimum (0) or maximum (2) of n values. */
double stat_of(const double *v, int n, int which)
{
	double s[MAX_REP];

	if (n <= 0)
		return 0;
	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_d);
	if (which == 0)
		return s[0];
	if (which == 2)
		return s[n - 1];
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

struct rec *find_rec(const char *section, const struct bt_transport *t,
		     size_t size, unsigned nodes, unsigned nr, unsigned nw)
{
	for (int i = 0; i < nrecs; i++) {
		struct rec *r = &recs[i];

		if (!strcmp(r->section, section) && r->t == t &&
		    r->size == size && r->nodes == nodes && r->readers == nr &&
		    r->writers == nw)
			return r;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The sections' plans                                                */
/* ------------------------------------------------------------------ */

const unsigned chart_nodes[5] = {2, 5, 10, 20, 50};
const size_t chart_sizes[2] = {1024, 1 << 20};
const unsigned chart_rw[4][2] = {{1, 1}, {1, 2}, {2, 1}, {2, 2}};

size_t topic_sizes[16];
int ntopic_sizes;
unsigned topic_subs[3];
int ntopic_subs;

struct rec *find_lat(const struct bt_transport *t, unsigned subs, int rtt)
{
	for (int i = 0; i < nrecs; i++) {
		struct rec *r = &recs[i];

		if (!strcmp(r->section, "topic-latency") && r->t == t &&
		    r->readers == subs && r->rtt == rtt)
			return r;
	}
	return NULL;
}

struct rec *find_topic(const struct bt_transport *t, size_t size, unsigned subs)
{
	return find_rec("topic", t, size, 0, subs, 1);
}

const struct bt_transport *topic_peer(const char *name)
{
	for (int i = 0; i < ntopic_tr; i++)
		if (!strcmp(topic_tr[i]->name, name))
			return topic_tr[i];
	return NULL;
}

/*
 * The topic section's measurements (create: make them, else count them):
 * every transport at every size and subscriber count; the 64-byte latency
 * with 1 and 4 subscribers; the ring's copy mode at 64 B and its round
 * trip as the references, and its one way by time stamp (a check of the
 * method: it should match half the round trip).  Within a whole
 * `shmk bench`, a short form: 64 B and 1 MiB, 1 and 4 subscribers.
 */
int topic_plan(int create)
{
	static const size_t full_sizes[] = {64, 1024, 65536, 1 << 20};
	static const unsigned lat_subs[] = {1, 4};
	int n = 0;

	ntopic_sizes = ntopic_subs = 0;
	if (opt.sizes_given)
		for (int s = 0; s < opt.nsizes; s++)
			topic_sizes[ntopic_sizes++] = opt.sizes[s];
	else
		for (int s = 0; s < 4; s++)
			if (opt.topic_full || s == 0 || s == 3)
				topic_sizes[ntopic_sizes++] = full_sizes[s];
	topic_subs[ntopic_subs++] = 1;
	if (opt.topic_full)
		topic_subs[ntopic_subs++] = 2;
	topic_subs[ntopic_subs++] = 4;
	for (int i = 0; i < ntopic_tr; i++)
		for (int j = 0; wanted(topic_tr[i]) && j < ntopic_subs; j++)
			for (int s = 0; s < ntopic_sizes; s++, n++)
				if (create)
					new_rec("topic", topic_tr[i],
						topic_sizes[s])
						->readers = topic_subs[j];
	for (int s = 0; wanted(&bt_shmk) && s < ntopic_sizes; s++) {
		if (topic_sizes[s] != 64)
			continue;
		n++;
		if (create)
			new_rec("topic", &bt_shmk, 64)->readers = 1;
	}
	for (int i = 0; i < ntopic_tr; i++)
		for (int j = 0; topic_tr[i] != &bt_topic_zc &&
				wanted(topic_tr[i]) && j < 2;
		     j++, n++)
			if (create)
				new_rec("topic-latency", topic_tr[i], 64)
					->readers = lat_subs[j];
	for (int j = 0; wanted(&bt_shmk) && j < 2; j++, n++)
		if (create) {
			struct rec *r = new_rec("topic-latency", &bt_shmk, 64);

			r->readers = 1;
			r->rtt = !j;
		}
	if (create)
		for (int i = 0; i < nrecs; i++)
			if (!strncmp(recs[i].section, "topic", 5))
				recs[i].writers = 1;
	return n;
}

/*
 * The wake section's measurements (create: make them, else count them):
 * the 64-byte round trip with both processes asleep in epoll, shmk's ring
 * descriptors and a pipe; the ring with spinning off (1 MiB of nodes) and
 * the pipe at every size; then beside a CPU-bound hog process per CPU,
 * 64 B again through the ring with spinning off, the ring with the
 * default wait policy and the pipe, and both round trips.  Each shmk row
 * comes just before its pipe reference.  --transports does not apply.
 */
int wake_plan(int create)
{
	static const struct bt_transport *const lat[] = {&bt_wake_shmk,
							 &bt_wake_pipe};
	static const struct bt_transport *const hogged[] = {&bt_shmk_sleep,
							    &bt_shmk, &bt_pipe};
	int n = 0, s, j;

	for (j = 0; j < 2; j++, n++)
		if (create)
			new_rec("wake-latency", lat[j], 64);
	for (s = 0; s < opt.nsizes; s++)
		for (j = 0; j < 2; j++, n++)
			if (create)
				new_rec("wake", j ? &bt_pipe : &bt_shmk_sleep,
					opt.sizes[s]);
	for (j = 0; j < 5; j++, n++) {
		struct rec *r;

		if (!create)
			continue;
		r = j < 3 ? new_rec("wake", hogged[j], 64)
			  : new_rec("wake-latency", lat[j - 3], 64);
		r->hogs = g_ncpu;
		snprintf(r->label, sizeof(r->label), "%s, %d hog%s",
			 r->t->label, g_ncpu, g_ncpu > 1 ? "s" : "");
	}
	return n;
}

size_t rpc_sizes[16];
int nrpc_sizes;

/* Idle clients of the rpc section's idle row: bench_rpc's 1000 in the
 * whole section, 100 in the short form (forking and connecting them
 * takes longer than the row). */
#define RPC_IDLE_FULL  1000
#define RPC_IDLE_SHORT 100

/* A record of the rpc section: its mode in the fields, the label made by
 * measure_rpc.c's rpc_label() once they are set. */
static struct rec *rpc_rec(const char *section, const struct bt_transport *t,
			   size_t size, int depth, int clients)
{
	struct rec *r = new_rec(section, t, size);

	r->depth = depth;
	r->clients = clients;
	return r;
}

/*
 * The rpc section's measurements (create: make them, else count them),
 * bench_rpc's rows, each a shmk_rpc measurement just before its
 * seqpacket reference: at every size one call at a time and 16 calls in
 * flight (the whole section also 2 client processes of 16 in flight each,
 * the socket then one client of 16); at 1 KiB one at a time and 16 in
 * flight with spinning off, the same beside two CPU-bound hogs, and one at
 * a time without and with idle clients connected (shmk_rpc only); last
 * the floor of every size.  The sizes: 1 KiB, 64 KiB and 512 KiB in the
 * short form (within a whole `shmk bench`), also 64 B in the whole
 * section (--only rpc, --full); --sizes replaces them.  --transports does
 * not apply.
 */
int rpc_plan(int create)
{
	static const size_t full_sizes[] = {64, 1024, 64 << 10, 512 << 10};
	static const int modes[3][2] = {{1, 1}, {RPC_DEPTH, 1}, {RPC_DEPTH, 2}};
	const struct bt_transport *pair[2] = {&bt_rpc_shmk, &bt_rpc_seqpacket};
	int n = 0, s, m, j, first = nrecs, nmodes = opt.rpc_full ? 3 : 2;

	nrpc_sizes = 0;
	if (opt.sizes_given)
		for (s = 0; s < opt.nsizes; s++)
			rpc_sizes[nrpc_sizes++] = opt.sizes[s];
	else
		for (s = 0; s < 4; s++)
			if (opt.rpc_full || s > 0)
				rpc_sizes[nrpc_sizes++] = full_sizes[s];
	for (s = 0; s < nrpc_sizes; s++)
		for (m = 0; m < nmodes; m++)
			for (j = 0; j < 2; j++, n++)
				if (create)
					rpc_rec("rpc", pair[j], rpc_sizes[s],
						modes[m][0], modes[m][1]);
	/* No spin, then 2 hogs: one at a time, then 16 in flight. */
	for (m = 0; m < 4; m++)
		for (j = 0; j < 2; j++, n++) {
			struct rec *r;

			if (!create)
				continue;
			r = rpc_rec("rpc", pair[j], 1024, modes[m % 2][0], 1);
			r->nospin = m < 2;
			r->hogs = m < 2 ? 0 : 2;
		}
	for (j = 0; j < 2; j++, n++)
		if (create)
			rpc_rec("rpc-idle", &bt_rpc_shmk, 1024, 1, 1)->idle =
				!j		    ? 0
				: opt.rpc_idle >= 0 ? opt.rpc_idle
				: opt.rpc_full	    ? RPC_IDLE_FULL
						    : RPC_IDLE_SHORT;
	for (s = 0; s < nrpc_sizes; s++, n++)
		if (create)
			rpc_rec("rpc-floor", &bt_rpc_floor, rpc_sizes[s], 1, 1);
	for (int i = first; create && i < nrecs; i++)
		rpc_label(&recs[i]);
	return n;
}

/* How many measurements the run will make (the records of plan_rows(),
 * times the repeats). */
int plan_steps(void)
{
	int nt = 0;

	for (int i = 0; i < ntr; i++)
		nt += wanted(tr[i]);
	return opt.reps *
	       ((opt.chart ? 40 : 0) + (opt.peers ? nt * opt.nsizes : 0) +
		(opt.latency ? nt : 0) + (opt.topic ? topic_plan(0) : 0) +
		(opt.wake ? wake_plan(0) : 0) + (opt.rpc ? rpc_plan(0) : 0));
}

/* A record for every measurement of the sections asked for. */
void plan_rows(void)
{
	int i, s, k;

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
	if (opt.wake)
		wake_plan(1);
	if (opt.rpc)
		rpc_plan(1);
}
