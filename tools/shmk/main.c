/* SPDX-License-Identifier: MIT */
/*
 * shmk - inspect, manage and feed shmk objects.
 *
 *   shmk ls [--json]                  list the objects in /dev/shm
 *   shmk info [--json] NAME...        describe objects
 *   shmk watch [--interval MS] [--count N] NAME...
 *                                     live rates, once a second
 *   shmk send [OPTIONS] NAME          standard input into a ring
 *   shmk recv [OPTIONS] NAME          a ring to standard output
 *   shmk pub [OPTIONS] NAME           standard input to a topic's
 *                                     subscribers
 *   shmk sub [OPTIONS] NAME           a topic to standard output
 *   shmk create KIND NAME [OPTIONS]   create an object that outlives
 *                                     the tool (SHMK_F_KEEP)
 *   shmk check NAME...                validate objects
 *   shmk rm NAME...                   remove objects' names
 *   shmk gc [--dry-run] [PATTERN...]  remove abandoned objects
 *
 * Only the public API (shmk.h) is used: the tool links the shared library.
 * Exit status: 0 success, 1 an operation failed, 2 usage error.  Errors go
 * to standard error and name the object and the reason.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shmk.h"

#include "cli.h"
#include "json.h"

#define SHM_DIR	   "/dev/shm"
#define SHM_PREFIX "shmk."
#define IO_BUF	   (1u << 20) /* send's and recv's stdio buffers */

/* send's input and recv's output buffer: one command runs per process. */
static char g_iobuf[IO_BUF];

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *user_name(uid_t uid, char *buf, size_t cap)
{
	struct passwd *pw = getpwuid(uid);

	if (pw)
		snprintf(buf, cap, "%s", pw->pw_name);
	else
		snprintf(buf, cap, "%u", (unsigned)uid);
	return buf;
}

static const char *human_size(uint64_t n, char *buf, size_t cap)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, cap, "%.1f %s", v, unit[u]);
	return buf;
}

static const char *time_str(uint64_t ns, char *buf, size_t cap)
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;

	if (!ns || !localtime_r(&t, &tm) ||
	    !strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, cap, "-");
	return buf;
}

/* The file behind a name, as the library resolves it. */
static void backing_path(const char *name, char *buf, size_t cap)
{
	if (strchr(name, '/'))
		snprintf(buf, cap, "%s", name);
	else
		snprintf(buf, cap, "%s/%s%s", SHM_DIR, SHM_PREFIX, name);
}

/* Names of a kind's geometry fields and counters; a kind this tool does
 * not know (a newer library's) still has names, or gets "geomN". */
static const char *geom_name(int kind, int i, char *buf, size_t cap)
{
	const char *n = shmk_stat_geom_name(kind, i);

	if (n)
		return n;
	snprintf(buf, cap, "geom%d", i);
	return buf;
}

static const char *counter_name(int kind, int i, char *buf, size_t cap)
{
	const char *n = shmk_stat_counter_name(kind, i);

	if (n)
		return n;
	snprintf(buf, cap, "counter%d", i);
	return buf;
}

/* Index of the counter called name in st, or -1. */
static int counter_index(const struct shmk_stat *st, const char *name)
{
	const char *n;
	int i;

	for (i = 0; i < st->ncounters; i++) {
		n = shmk_stat_counter_name(st->kind, i);
		if (n && !strcmp(n, name))
			return i;
	}
	return -1;
}

/* The counter that says how far behind the readers are: a ring's lag, a
 * topic's slowest subscriber's.  Its index in st, or -1. */
static int lag_index(const struct shmk_stat *st)
{
	int i = counter_index(st, "lag");

	return i >= 0 || st->kind != SHMK_KIND_TOPIC
		       ? i
		       : counter_index(st, "slowest_lag");
}

/* The counter called name in st, or 0 if st has none of that name. */
static uint64_t counter_of(const struct shmk_stat *st, const char *name)
{
	int i = counter_index(st, name);

	return i >= 0 ? st->counter[i] : 0;
}

static const char *kind_str(int kind, char *buf, size_t cap)
{
	const char *n = shmk_kind_name(kind);

	if (strcmp(n, "?") != 0)
		return n;
	snprintf(buf, cap, "kind%d", kind);
	return buf;
}

/* "a ring", "an array". */
static const char *a_kind(const char *kind, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s %s", strchr("aeiou", kind[0]) ? "an" : "a",
		 kind);
	return buf;
}

/* ---------------------------------------------------------------------
 * Signals: send, recv and watch end cleanly on SIGINT, SIGTERM, SIGHUP
 * --------------------------------------------------------------------- */

static volatile sig_atomic_t g_signal; /* the stopping signal, or 0 */
static volatile sig_atomic_t g_tstp;   /* watch: SIGTSTP arrived */
/* send, recv, pub, sub: the handle a stopping signal wakes (its blocked
 * call returns -ECANCELED; a wake that comes before the call ends the
 * call's wait as soon as it begins).  Set once open, cleared before the
 * handle closes. */
static struct shmk_ring *volatile g_wake_ring;
static struct shmk_topic *volatile g_wake_topic;

static void on_signal(int sig)
{
	struct shmk_ring *r = g_wake_ring;
	struct shmk_topic *t = g_wake_topic;

	if (sig == SIGTSTP) {
		g_tstp = 1;
		return;
	}
	g_signal = sig;
	if (r)
		shmk_ring_wake(r);
	if (t)
		shmk_topic_wake(t);
}

/* The handle the signals wake (NULL, NULL: none). */
static void wake_on_signal(struct shmk_ring *r, struct shmk_topic *t)
{
	g_wake_ring = r;
	g_wake_topic = t;
}

/* Without SA_RESTART, so that a blocking read(2) returns EINTR. */
static void catch_signals(int tstp)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGTSTP};
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigs[i] != SIGTSTP || tstp)
			sigaction(sigs[i], &sa, NULL);
}

/* One object as info --json and ls --json print it; rc < 0: an object
 * that could not be described, with the reason. */
static void json_describe(struct json *j, const char *name,
			  const struct shmk_stat *st, int rc)
{
	char path[4096 + 16], buf[64], user[64];
	int i, lag;

	backing_path(name, path, sizeof(path));
	json_open_object(j, NULL);
	json_str(j, "name", name);
	json_str(j, "path", path);
	if (rc < 0) {
		json_str(j, "error", shmk_strerror(rc));
		json_int(j, "errno", -rc);
		json_close(j);
		return;
	}
	json_str(j, "kind", kind_str(st->kind, buf, sizeof(buf)));
	json_int(j, "kind_id", st->kind);
	json_str(j, "state", shmk_state_name(st->state));
	json_bool(j, "keep", !!(st->flags & SHMK_F_KEEP));
	json_int(j, "format_version", st->version);
	snprintf(buf, sizeof(buf), "%04o", st->mode);
	json_str(j, "mode", buf);
	json_u64(j, "owner_uid", st->owner);
	json_str(j, "owner", user_name(st->owner, user, sizeof(user)));
	json_u64(j, "total_size", st->total_size);
	json_u64(j, "header_size", st->header_size);
	json_open_object(j, "geometry");
	for (i = 0; i < st->ngeom; i++)
		json_u64(j, geom_name(st->kind, i, buf, sizeof(buf)),
			 st->geom[i]);
	json_close(j);
	json_open_object(j, "creator");
	json_int(j, "pid", st->creator_pid);
	json_u64(j, "uid", st->creator_uid);
	json_str(j, "user", user_name(st->creator_uid, user, sizeof(user)));
	json_bool(j, "alive", st->creator_alive);
	json_u64(j, "created_ns", st->created_ns);
	json_close(j);
	json_open_object(j, "participants");
	json_int(j, "alive", st->nalive);
	json_int(j, "slots_used", st->nparts);
	json_open_array(j, "list");
	for (i = 0; i < st->nparts; i++) {
		const struct shmk_stat_part *p = &st->part[i];

		json_open_object(j, NULL);
		json_int(j, "slot", p->slot);
		json_int(j, "pid", p->pid);
		json_u64(j, "uid", p->uid);
		json_str(j, "user", user_name(p->uid, user, sizeof(user)));
		json_bool(j, "alive", p->alive);
		json_bool(j, "creator", p->creator);
		json_u64(j, "attach_ns", p->attach_ns);
		json_close(j);
	}
	json_close(j);
	json_close(j);
	json_open_object(j, "counters");
	for (i = 0; i < st->ncounters; i++)
		json_u64(j, counter_name(st->kind, i, buf, sizeof(buf)),
			 st->counter[i]);
	json_close(j);
	lag = lag_index(st);
	if (lag >= 0)
		json_u64(j, "lag", st->counter[lag]);
	json_close(j);
}

/* ---------------------------------------------------------------------
 * ls, info
 * --------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
	while (n)
		free(names[--n]);
	free(names);
}

/* The names of the entries shmk.* of /dev/shm, sorted, in *out and
 * their number in *count.  Returns 0 or a negative errno. */
static int list_names(char ***out, size_t *count)
{
	size_t n = 0, cap = 32;
	struct dirent *e;
	char **names;
	DIR *d;

	*out = NULL;
	*count = 0;
	d = opendir(SHM_DIR);
	if (!d)
		return -errno;
	names = malloc(cap * sizeof(*names));
	if (!names) {
		closedir(d);
		return -ENOMEM;
	}
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, SHM_PREFIX, strlen(SHM_PREFIX)) != 0 ||
		    !e->d_name[strlen(SHM_PREFIX)])
			continue;
		if (n == cap) {
			char **nn;

			cap *= 2;
			nn = realloc(names, cap * sizeof(*names));
			if (!nn)
				break;
			names = nn;
		}
		names[n] = strdup(e->d_name + strlen(SHM_PREFIX));
		if (!names[n])
			break;
		n++;
	}
	closedir(d);
	if (e) { /* stopped early: out of memory */
		free_names(names, n);
		return -ENOMEM;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	*out = names;
	*count = n;
	return 0;
}

/* "nodes=8 node_size=4096": the geometry asked for or found.  A ring's
 * mode reads "single=writer" (or reader, or writer+reader), and is left
 * out for a ring of many writers and readers; a topic's policy reads
 * "lossless" or "lossy". */
static const char *geom_of(int kind, const uint64_t *geom, int n, char *buf,
			   size_t cap)
{
	static const char *const single[] = {"", "writer", "reader",
					     "writer+reader"};
	size_t len = 0;
	char nb[32];
	int i;

	buf[0] = 0;
	for (i = 0; i < n && len < cap; i++) {
		const char *name = geom_name(kind, i, nb, sizeof(nb));

		if (!strcmp(name, "single") && geom[i] < 4) {
			if (geom[i])
				len += (size_t)snprintf(
					buf + len, cap - len, "%ssingle=%s",
					i ? " " : "", single[geom[i]]);
			continue;
		}
		if (kind == SHMK_KIND_TOPIC && !strcmp(name, "lossy") &&
		    geom[i] < 2) {
			len += (size_t)snprintf(buf + len, cap - len, "%s%s",
						i ? " " : "",
						geom[i] ? "lossy" : "lossless");
			continue;
		}
		len += (size_t)snprintf(buf + len, cap - len, "%s%s=%llu",
					i ? " " : "", name,
					(unsigned long long)geom[i]);
	}
	return buf;
}

/* "nodes=8 node_size=4096 lag=0": the geometry, and a ring's lag (a
 * topic's slowest subscriber's). */
static const char *geom_str(const struct shmk_stat *st, char *buf, size_t cap)
{
	size_t len;
	int lag;

	len = strlen(geom_of(st->kind, st->geom, st->ngeom, buf, cap));
	lag = lag_index(st);
	if (lag >= 0 && len < cap)
		snprintf(buf + len, cap - len, " lag=%llu",
			 (unsigned long long)st->counter[lag]);
	return buf;
}

/* The FLAGS column: "keep", or "-". */
static const char *flags_str(const struct shmk_stat *st)
{
	return st->flags & SHMK_F_KEEP ? "keep" : "-";
}

static int cmd_ls(int argc, char **argv)
{
	static const struct option longs[] = {{"json", no_argument, NULL, 'j'},
					      {"help", no_argument, NULL, 'h'},
					      {NULL, 0, NULL, 0}};
	static struct shmk_stat st;
	struct json j;
	char **names;
	int c, json = 0, rc;
	size_t n, i;

	optind = 0;
	while ((c = next_opt("ls", argc, argv, ":hj", longs)) != -1) {
		if (c == 'h')
			return help_of("ls");
		if (c != 'j')
			return EXIT_USAGE;
		json = 1;
	}
	if (optind < argc) {
		usage_error("ls", "takes no operands");
		return EXIT_USAGE;
	}
	rc = list_names(&names, &n);
	if (rc < 0) {
		err_rc("ls", SHM_DIR, rc);
		return EXIT_FAIL;
	}
	if (json) {
		json_init(&j, stdout);
		json_open_object(&j, NULL);
		json_open_array(&j, "objects");
	} else {
		printf("%-24s %-7s %10s %4s %-8s %-16s %-8s %-8s %-5s %s\n",
		       "NAME", "KIND", "SIZE", "MODE", "OWNER", "CREATOR",
		       "STATE", "ATTACHED", "FLAGS", "GEOMETRY");
	}
	for (i = 0; i < n; i++) {
		char sz[32], user[32], creator[32], kind[32], geom[256];

		rc = shmk_stat(names[i], &st);
		if (json) {
			json_describe(&j, names[i], &st, rc);
		} else if (rc < 0) {
			printf("%-24s %-7s %10s %4s %-8s %-16s %-8s %-8s "
			       "%-5s (%s)\n",
			       names[i], "?", "-", "-", "-", "-", "-", "-", "-",
			       shmk_strerror(rc));
		} else {
			snprintf(creator, sizeof(creator), "%d %s",
				 (int)st.creator_pid,
				 st.creator_alive ? "alive" : "gone");
			printf("%-24s %-7s %10s %04o %-8s %-16s %-8s %-8d "
			       "%-5s %s\n",
			       names[i], kind_str(st.kind, kind, sizeof(kind)),
			       human_size(st.total_size, sz, sizeof(sz)),
			       st.mode, user_name(st.owner, user, sizeof(user)),
			       creator, shmk_state_name(st.state), st.nalive,
			       flags_str(&st),
			       geom_str(&st, geom, sizeof(geom)));
		}
	}
	if (json) {
		json_close(&j);
		json_close(&j);
		putchar('\n');
	}
	free_names(names, n);
	return EXIT_OK;
}

/* A topic's policy and subscribers, the slowest one named: on a lossless
 * topic, the one its publishers wait for when the log is full. */
static void print_topic(const struct shmk_stat *st)
{
	uint64_t subs = counter_of(st, "subscribers");
	int lossy = st->ngeom > 2 && st->geom[2];

	printf("policy:       %s\n",
	       lossy ? "lossy (the oldest messages are overwritten)"
		     : "lossless (publishers wait for the slowest subscriber)");
	printf("held:         %llu message(s) in the log\n",
	       (unsigned long long)counter_of(st, "held"));
	if (!subs) {
		printf("subscribers:  none\n");
		return;
	}
	printf("subscribers:  %llu live\n", (unsigned long long)subs);
	printf("slowest:      pid %llu, %llu message(s) behind%s\n",
	       (unsigned long long)counter_of(st, "slowest_pid"),
	       (unsigned long long)counter_of(st, "slowest_lag"),
	       lossy ? "" : " (publishers wait for it)");
}

static void print_info(const char *name, const struct shmk_stat *st)
{
	char path[4096 + 16], buf[64], user[32];
	int i;

	backing_path(name, path, sizeof(path));
	printf("name:         %s\n", name);
	printf("path:         %s\n", path);
	printf("kind:         %s\n", kind_str(st->kind, buf, sizeof(buf)));
	printf("state:        %s\n", shmk_state_name(st->state));
	if (st->flags & SHMK_F_KEEP)
		printf("flags:        keep (outlives its creator's close; gc "
		       "leaves it alone)\n");
	else
		printf("flags:        none\n");
	printf("format:       version %d\n", st->version);
	printf("owner:        %s, mode %04o\n",
	       user_name(st->owner, user, sizeof(user)), st->mode);
	printf("size:         %llu bytes (%s), header %llu bytes\n",
	       (unsigned long long)st->total_size,
	       human_size(st->total_size, buf, sizeof(buf)),
	       (unsigned long long)st->header_size);
	printf("geometry:     %s\n",
	       geom_of(st->kind, st->geom, st->ngeom, buf, sizeof(buf)));
	printf("creator:      pid %d, %s, %s\n", (int)st->creator_pid,
	       user_name(st->creator_uid, user, sizeof(user)),
	       st->creator_alive ? "alive" : "gone");
	printf("created:      %s\n",
	       time_str(st->created_ns, buf, sizeof(buf)));
	i = counter_index(st, "lag");
	if (i >= 0)
		printf("lag:          %llu message(s) reserved and not yet "
		       "taken\n",
		       (unsigned long long)st->counter[i]);
	if (st->kind == SHMK_KIND_TOPIC)
		print_topic(st);
	printf("participants: %d alive, %d slots used\n", st->nalive,
	       st->nparts);
	if (st->nparts) {
		printf("  %4s %8s %-8s %-19s %-5s %s\n", "SLOT", "PID", "USER",
		       "ATTACHED", "ALIVE", "ROLE");
		for (i = 0; i < st->nparts; i++) {
			const struct shmk_stat_part *p = &st->part[i];

			printf("  %4d %8d %-8s %-19s %-5s %s\n", p->slot,
			       (int)p->pid,
			       user_name(p->uid, user, sizeof(user)),
			       time_str(p->attach_ns, buf, sizeof(buf)),
			       p->alive ? "yes" : "no",
			       p->creator ? "creator" : "-");
		}
	}
	if (st->ncounters) {
		printf("counters:\n");
		for (i = 0; i < st->ncounters; i++)
			printf("  %-20s %llu\n",
			       counter_name(st->kind, i, buf, sizeof(buf)),
			       (unsigned long long)st->counter[i]);
	}
}

static int cmd_info(int argc, char **argv)
{
	static const struct option longs[] = {{"json", no_argument, NULL, 'j'},
					      {"help", no_argument, NULL, 'h'},
					      {NULL, 0, NULL, 0}};
	static struct shmk_stat st;
	struct json j;
	int c, i, rc, json = 0, status = EXIT_OK;

	optind = 0;
	while ((c = next_opt("info", argc, argv, ":hj", longs)) != -1) {
		if (c == 'h')
			return help_of("info");
		if (c != 'j')
			return EXIT_USAGE;
		json = 1;
	}
	if (optind == argc) {
		usage_error("info", "which object? (a NAME is needed)");
		return EXIT_USAGE;
	}
	if (json) {
		json_init(&j, stdout);
		json_open_object(&j, NULL);
		json_open_array(&j, "objects");
	}
	for (i = optind; i < argc; i++) {
		rc = shmk_stat(argv[i], &st);
		if (rc < 0) {
			err_rc("info", argv[i], rc);
			status = EXIT_FAIL;
		}
		if (json) {
			json_describe(&j, argv[i], &st, rc);
			continue;
		}
		if (rc < 0)
			continue;
		if (i > optind)
			printf("\n");
		print_info(argv[i], &st);
	}
	if (json) {
		json_close(&j);
		json_close(&j);
		putchar('\n');
	}
	return status;
}

/* ---------------------------------------------------------------------
 * watch
 * --------------------------------------------------------------------- */

/* Which counters make a kind's columns (NULL: not applicable). */
struct watch_map {
	int kind;
	const char *msgs, *bytes, *wait1, *wait2;
};

static const struct watch_map watch_maps[] = {
	{SHMK_KIND_RING, "read", "bytes_read", "full_waits", "empty_waits"},
	{SHMK_KIND_BUFFER, "writes", NULL, NULL, NULL},
	{SHMK_KIND_ARRAY, "writes", NULL, NULL, NULL},
	{SHMK_KIND_EVENT, "sets", NULL, "wakes", NULL},
	{SHMK_KIND_TOPIC, "published", "bytes_published", "full_waits",
	 "empty_waits"},
};

struct watched {
	const char *name;
	struct shmk_stat st[2]; /* the last two snapshots */
	int rc[2];
};

/* Counter `name` per second between a and b; -1: not applicable. */
static double rate_of(const struct shmk_stat *a, const struct shmk_stat *b,
		      const char *name, double secs)
{
	int ia, ib;

	if (!name)
		return -1;
	ia = counter_index(a, name);
	ib = counter_index(b, name);
	if (ia < 0 || ib < 0)
		return -1;
	/* A counter can step back: the object was made again, or a
	 * participant's counters were being folded as stat read them. */
	if (b->counter[ib] <= a->counter[ia])
		return 0;
	return (double)(b->counter[ib] - a->counter[ia]) / secs;
}

static const char *fmt_rate(double v, int decimals, char *buf, size_t cap)
{
	if (v < 0)
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, "%.*f", decimals, v);
	return buf;
}

/*
 * One object's figures for the tick that ended with snapshot cur
 * (prev: the one before, or -1 on a terminal's first frame).  tty: a
 * table row; else a "key=value" line.
 */
static void watch_line(const struct watched *w, int cur, int prev, double secs,
		       int tty)
{
	const struct shmk_stat *b = &w->st[cur],
			       *a = &w->st[prev < 0 ? cur : prev];
	const struct watch_map *m = NULL;
	double msgs = -1, mb = -1, waits = -1, x;
	char r1[32], r2[32], r3[32], lag[32], kind[32], cn[32];
	size_t i;
	int k, valid;

	if (w->rc[cur] < 0) {
		if (tty)
			printf("%-24s (%s)\033[K\n", w->name,
			       shmk_strerror(w->rc[cur]));
		else
			printf("%s error=\"%s\"\n", w->name,
			       shmk_strerror(w->rc[cur]));
		return;
	}
	valid = prev >= 0 && w->rc[prev] == 0 && a->kind == b->kind;
	for (i = 0; i < sizeof(watch_maps) / sizeof(watch_maps[0]); i++)
		if (watch_maps[i].kind == b->kind)
			m = &watch_maps[i];
	if (valid && m) {
		msgs = rate_of(a, b, m->msgs, secs);
		mb = rate_of(a, b, m->bytes, secs);
		if (mb >= 0)
			mb /= 1e6;
		waits = rate_of(a, b, m->wait1, secs);
		x = rate_of(a, b, m->wait2, secs);
		if (x >= 0)
			waits = waits < 0 ? x : waits + x;
	}
	k = lag_index(b);
	if (k >= 0)
		snprintf(lag, sizeof(lag), "%llu",
			 (unsigned long long)b->counter[k]);
	else
		snprintf(lag, sizeof(lag), "-");
	if (tty)
		printf("%-24s %-7s %-8s %5d %10s %8s %8s %8s", w->name,
		       kind_str(b->kind, kind, sizeof(kind)),
		       shmk_state_name(b->state), b->nalive,
		       fmt_rate(msgs, 0, r1, sizeof(r1)),
		       fmt_rate(mb, 2, r2, sizeof(r2)),
		       fmt_rate(waits, 0, r3, sizeof(r3)), lag);
	else
		printf("%s kind=%s state=%s alive=%d msg/s=%s MB/s=%s "
		       "waits/s=%s lag=%s",
		       w->name, kind_str(b->kind, kind, sizeof(kind)),
		       shmk_state_name(b->state), b->nalive,
		       fmt_rate(msgs, 0, r1, sizeof(r1)),
		       fmt_rate(mb, 2, r2, sizeof(r2)),
		       fmt_rate(waits, 0, r3, sizeof(r3)), lag);
	/* A kind this tool has no columns for: every counter's rate. */
	if (!m && valid)
		for (k = 0; k < b->ncounters; k++) {
			const char *n =
				counter_name(b->kind, k, cn, sizeof(cn));

			printf(" %s/s=%s", n,
			       fmt_rate(rate_of(a, b, n, secs), 0, r1,
					sizeof(r1)));
		}
	printf(tty ? "\033[K\n" : "\n");
}

static void watch_frame(const struct watched *w, int n, int cur, int prev,
			double secs, int interval_ms, int tty)
{
	char when[32];
	time_t t = time(NULL);
	struct tm tm;
	int i;

	if (!localtime_r(&t, &tm) ||
	    !strftime(when, sizeof(when), "%H:%M:%S", &tm))
		snprintf(when, sizeof(when), "-");
	if (tty) {
		printf("\033[H"); /* home: redraw in place */
		printf("shmk watch: every %d ms, %s (Ctrl-C quits)\033[K\n",
		       interval_ms, when);
		printf("%-24s %-7s %-8s %5s %10s %8s %8s %8s\033[K\n", "NAME",
		       "KIND", "STATE", "ALIVE", "MSG/S", "MB/S", "WAITS/S",
		       "LAG");
	}
	for (i = 0; i < n; i++) {
		if (!tty)
			printf("%s ", when);
		watch_line(&w[i], cur, prev, secs, tty);
	}
	if (tty)
		printf("\033[J"); /* clear what an earlier frame left below */
	fflush(stdout);
}

/*
 * Sleeps until deadline (CLOCK_MONOTONIC ms) with the stopping signals
 * unblocked only inside ppoll, so that one arriving just before the
 * sleep still ends it.  Returns 0 at the deadline, -EINTR on a signal.
 */
static int watch_sleep(uint64_t deadline, const sigset_t *unblocked)
{
	for (;;) {
		uint64_t now = now_ms();
		struct timespec ts;

		if (g_signal || g_tstp)
			return -EINTR;
		if (now >= deadline)
			return 0;
		ts.tv_sec = (time_t)((deadline - now) / 1000);
		ts.tv_nsec = (long)((deadline - now) % 1000) * 1000000;
		if (ppoll(NULL, 0, &ts, unblocked) < 0 && errno == EINTR &&
		    (g_signal || g_tstp))
			return -EINTR;
	}
}

static int cmd_watch(int argc, char **argv)
{
	static const struct option longs[] = {
		{"interval", required_argument, NULL, 'i'},
		{"count", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int c, i, n, cur = 0, tty, interval = 1000, count = 0, ticks = 0;
	const char *term = getenv("TERM");
	sigset_t stop, unblocked;
	uint64_t t0, t1, next;
	struct watched *w;

	optind = 0;
	while ((c = next_opt("watch", argc, argv, ":hi:c:", longs)) != -1) {
		switch (c) {
		case 'h':
			return help_of("watch");
		case 'i':
			if (parse_int("watch", "interval", optarg, 1, 3600000,
				      &interval) < 0)
				return EXIT_USAGE;
			break;
		case 'c':
			if (parse_int("watch", "count", optarg, 1, INT32_MAX,
				      &count) < 0)
				return EXIT_USAGE;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	n = argc - optind;
	if (n == 0) {
		usage_error("watch", "which object? (a NAME is needed)");
		return EXIT_USAGE;
	}
	w = calloc((size_t)n, sizeof(*w));
	if (!w) {
		err_rc("watch", "memory", -ENOMEM);
		return EXIT_FAIL;
	}
	for (i = 0; i < n; i++) {
		w[i].name = argv[optind + i];
		w[i].rc[0] = shmk_stat(w[i].name, &w[i].st[0]);
		if (w[i].rc[0] < 0) {
			err_rc("watch", w[i].name, w[i].rc[0]);
			free(w);
			return EXIT_FAIL;
		}
	}
	tty = isatty(STDOUT_FILENO) && term && strcmp(term, "dumb") != 0;

	/* The stopping signals are delivered only while we sleep. */
	catch_signals(tty);
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	if (tty)
		sigaddset(&stop, SIGTSTP);
	sigprocmask(SIG_BLOCK, &stop, &unblocked);
	sigdelset(&unblocked, SIGINT);
	sigdelset(&unblocked, SIGTERM);
	sigdelset(&unblocked, SIGHUP);
	sigdelset(&unblocked, SIGTSTP);

	if (tty) { /* hide the cursor, clear, a first frame without rates */
		printf("\033[?25l\033[2J");
		watch_frame(w, n, cur, -1, 0, interval, tty);
	}
	t0 = now_ms();
	next = t0 + (uint64_t)interval;
	while (!count || ticks < count) {
		if (watch_sleep(next, &unblocked) < 0) {
			if (g_signal)
				break;
			/* Ctrl-Z: give the terminal back as it was, stop,
			 * and take it again when continued. */
			g_tstp = 0;
			printf("\033[?25h");
			fflush(stdout);
			raise(SIGSTOP);
			printf("\033[?25l\033[2J");
			watch_frame(w, n, cur, -1, 0, interval, tty);
			continue;
		}
		t1 = now_ms();
		for (i = 0; i < n; i++)
			w[i].rc[!cur] = shmk_stat(w[i].name, &w[i].st[!cur]);
		watch_frame(w, n, !cur, cur,
			    (double)(t1 > t0 ? t1 - t0 : 1) / 1000.0, interval,
			    tty);
		cur = !cur;
		t0 = t1;
		ticks++;
		/* A fixed cadence; after a stall, start again from now. */
		next += (uint64_t)interval;
		if (next <= t1)
			next = t1 + (uint64_t)interval;
	}
	if (tty) /* the cursor back, below the last frame */
		printf("\033[?25h");
	fflush(stdout);
	free(w);
	return EXIT_OK;
}

/* ---------------------------------------------------------------------
 * send, recv (a ring); pub, sub (a topic)
 * --------------------------------------------------------------------- */

enum { MODE_LINES, MODE_CHUNKS, MODE_FRAMES };

/* pub's geometry options given, a bit each, in geometry order. */
enum { G_CAPACITY = 1u << 0, G_MAX_MSG = 1u << 1, G_LOSSY = 1u << 2 };

struct xfer {
	const char *cmd, *name;
	int topic; /* pub, sub: the object is a topic */
	int mode;
	uint64_t chunk; /* MODE_CHUNKS: bytes per message */
	int create, shutdown;
	uint64_t nodes, node_size;  /* --create's geometry */
	uint64_t capacity, max_msg; /* pub: the geometry of a new topic */
	int lossy;		    /* pub: a new topic's; sub: the topic's */
	unsigned given;		    /* pub: the G_* options given */
	int subscribers;	    /* pub: wait for that many */
	int history, latest;	    /* sub */
	unsigned mode_bits;
	int timeout_ms; /* -1: wait forever */
	struct shmk_ring *r;
	struct shmk_topic *t;
	size_t node;   /* the longest message: a ring's node size, a
			  topic's max_msg */
	uint64_t nmsg; /* messages sent or received */
	/* send: the message being filled, reserved in the ring (pub: in
	 * buf); recv, sub: the message taken */
	struct shmk_msg m;
	int open;
	size_t fill;
	unsigned char hdr[4]; /* MODE_FRAMES: the length prefix */
	int nhdr;
	size_t flen;
	char *buf; /* pub: the message being built; sub: a lossy topic's
		      message copied out, or the latest */
	/* sub: losses said so far; laps not said yet, and the messages
	 * written out before the first and the last of them */
	uint64_t lost_told, laps, lap_first, lap_last;
	uint64_t tell_ms; /* no word about laps before then */
};

/* The options of each command, by their codes in xfer_options(). */
static const char *xfer_allowed(const char *cmd)
{
	if (!strcmp(cmd, "send"))
		return "cfCnsmtNT";
	if (!strcmp(cmd, "recv"))
		return "cfCnsmtT";
	if (!strcmp(cmd, "pub"))
		return "cfKXLmtNS";
	return "cfHlt"; /* sub */
}

/* sub --history: a count, or "all" (-1). */
static int parse_history(const char *cmd, const char *s, int *out)
{
	char *end;
	long v;

	if (!strcmp(s, "all")) {
		*out = -1;
		return 0;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > INT32_MAX)
		return bad_value(cmd, "history", s,
				 "a number of messages, or all");
	*out = (int)v;
	return 0;
}

/* Parses the options of send, recv, pub or sub.  Returns an exit status
 * to return at once, or -1 to go on. */
static int xfer_options(struct xfer *x, int argc, char **argv)
{
	static const struct option longs[] = {
		{"chunk", required_argument, NULL, 'c'},
		{"frames", no_argument, NULL, 'f'},
		{"create", no_argument, NULL, 'C'},
		{"nodes", required_argument, NULL, 'n'},
		{"node-size", required_argument, NULL, 's'},
		{"mode", required_argument, NULL, 'm'},
		{"timeout", required_argument, NULL, 't'},
		{"no-shutdown", no_argument, NULL, 'N'},
		{"capacity", required_argument, NULL, 'K'},
		{"max-msg", required_argument, NULL, 'X'},
		{"lossy", no_argument, NULL, 'L'},
		{"subscribers", required_argument, NULL, 'S'},
		{"history", required_argument, NULL, 'H'},
		{"latest", no_argument, NULL, 'l'},
		{"topic", no_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *cmd = x->cmd, *allowed = xfer_allowed(cmd);
	int c, i, geom = 0, history = 0, pub = !strcmp(cmd, "pub");
	char msg[128];

	x->topic = pub || !strcmp(cmd, "sub");
	x->mode = MODE_LINES;
	x->nodes = 64;
	x->node_size = 65536;
	x->capacity = TOPIC_CAP;
	x->mode_bits = 0600;
	x->timeout_ms = -1;
	x->shutdown = pub || !strcmp(cmd, "send");
	optind = 0;
	while ((c = next_opt(cmd, argc, argv, ":h", longs)) != -1) {
		if (c != 'h' && c != '?' && !strchr(allowed, c)) {
			/* Another of these commands' option: unknown here. */
			for (i = 0; longs[i].name && longs[i].val != c; i++)
				;
			snprintf(msg, sizeof(msg), "unknown option '--%s'",
				 longs[i].name ? longs[i].name : "?");
			usage_error(cmd, msg);
			return EXIT_USAGE;
		}
		switch (c) {
		case 'h':
			return help_of(cmd);
		case 'c':
			if (parse_size(cmd, "chunk", optarg, 1,
				       UINT64_C(1) << 40, &x->chunk) < 0)
				return EXIT_USAGE;
			x->mode = MODE_CHUNKS;
			break;
		case 'f':
			x->mode = MODE_FRAMES;
			break;
		case 'C':
			x->create = 1;
			break;
		case 'n':
			if (parse_size(cmd, "nodes", optarg, 2, UINT32_MAX,
				       &x->nodes) < 0)
				return EXIT_USAGE;
			geom = 1;
			break;
		case 's':
			if (parse_size(cmd, "node-size", optarg, 1,
				       UINT64_C(1) << 40, &x->node_size) < 0)
				return EXIT_USAGE;
			geom = 1;
			break;
		case 'm':
			if (parse_mode(cmd, optarg, &x->mode_bits) < 0)
				return EXIT_USAGE;
			geom = 1;
			break;
		case 't':
			if (parse_int(cmd, "timeout", optarg, -1, INT32_MAX,
				      &x->timeout_ms) < 0)
				return EXIT_USAGE;
			break;
		case 'N':
			x->shutdown = 0;
			break;
		case 'K':
			if (parse_capacity(cmd, optarg, &x->capacity) < 0)
				return EXIT_USAGE;
			x->given |= G_CAPACITY;
			break;
		case 'X':
			if (parse_size(cmd, "max-msg", optarg, 1,
				       UINT64_C(1) << 33, &x->max_msg) < 0)
				return EXIT_USAGE;
			x->given |= G_MAX_MSG;
			break;
		case 'L':
			x->lossy = 1;
			x->given |= G_LOSSY;
			break;
		case 'S':
			if (parse_int(cmd, "subscribers", optarg, 0, 128,
				      &x->subscribers) < 0)
				return EXIT_USAGE;
			break;
		case 'H':
			if (parse_history(cmd, optarg, &x->history) < 0)
				return EXIT_USAGE;
			history = 1;
			break;
		case 'l':
			x->latest = 1;
			break;
		case 'T':
			usage_error(cmd, "a topic has commands of its own: "
					 "'shmk pub NAME' publishes to it, "
					 "'shmk sub NAME' subscribes to it");
			return EXIT_USAGE;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		usage_error(cmd, argc != optind ? "takes one NAME"
				 : x->topic ? "which topic? (a NAME is needed)"
					    : "which ring? (a NAME is needed)");
		return EXIT_USAGE;
	}
	if (geom && !x->create && !x->topic) {
		usage_error(cmd, "--nodes, --node-size and --mode need "
				 "--create");
		return EXIT_USAGE;
	}
	if (x->latest && history) {
		usage_error(cmd, "--latest reads the newest message without "
				 "subscribing: it takes no --history");
		return EXIT_USAGE;
	}
	if (pub && topic_max_msg(cmd, x->capacity, !!(x->given & G_MAX_MSG),
				 &x->max_msg) < 0)
		return EXIT_USAGE;
	x->name = argv[optind];
	return -1;
}

/* An -EPROTO at open: say what is there instead. */
static void xfer_mismatch(const struct xfer *x)
{
	static struct shmk_stat st;
	int rc = shmk_stat(x->name, &st);
	int want = x->topic ? SHMK_KIND_TOPIC : SHMK_KIND_RING;
	char kind[32], ak[48];

	if (!rc && st.kind != want) {
		errf(x->cmd, x->name, "is %s, not a %s",
		     a_kind(kind_str(st.kind, kind, sizeof(kind)), ak,
			    sizeof(ak)),
		     x->topic ? "topic" : "ring");
	} else if (!rc && x->create && st.ngeom >= 2) {
		errf(x->cmd, x->name,
		     "exists as a ring of %llu nodes of %llu bytes, not the "
		     "%llu nodes of %llu bytes asked for",
		     (unsigned long long)st.geom[0],
		     (unsigned long long)st.geom[1],
		     (unsigned long long)x->nodes,
		     (unsigned long long)x->node_size);
	} else {
		err_rc(x->cmd, x->name, -EPROTO); /* another format version */
	}
}

/*
 * pub: opens the topic, or creates it if there is none (pub is then its
 * creator, and its exit shuts the topic down, --no-shutdown or not).  An
 * existing topic must have the geometry options given.  Returns 0, or -1
 * once the error has been reported.
 */
static int pub_open(struct xfer *x)
{
	struct shmk_opts o = {0};
	uint64_t have[3], want[3];
	char hs[128], ws[128];
	int rc = -ENOENT, tries, i, made = 0, same = 1;

	o.mode = x->mode_bits;
	o.flags = x->lossy ? SHMK_F_LOSSY : 0;
	/* Made by another between our open and our create: open it. */
	for (tries = 0; tries < 100; tries++) {
		rc = shmk_topic_open(x->name, NULL, &x->t);
		if (rc != -ENOENT)
			break;
		rc = shmk_topic_create(x->name, (size_t)x->capacity,
				       (size_t)x->max_msg, &o, &x->t);
		made = !rc;
		if (rc != -EEXIST)
			break;
	}
	if (rc == -EPROTO)
		xfer_mismatch(x);
	else if (rc < 0)
		err_rc(x->cmd, x->name, rc);
	if (rc < 0)
		return -1;
	have[0] = shmk_topic_capacity(x->t);
	have[1] = shmk_topic_max_msg(x->t);
	have[2] = (uint64_t)shmk_topic_lossy(x->t);
	want[0] = x->capacity;
	want[1] = x->max_msg;
	want[2] = (uint64_t)x->lossy;
	for (i = 0; i < 3; i++) {
		if (!(x->given & (1u << i)))
			want[i] = have[i];
		same = same && want[i] == have[i];
	}
	if (!made && !same) {
		errf(x->cmd, x->name,
		     "exists as a topic of %s, not the %s asked for",
		     geom_of(SHMK_KIND_TOPIC, have, 3, hs, sizeof(hs)),
		     geom_of(SHMK_KIND_TOPIC, want, 3, ws, sizeof(ws)));
		shmk_topic_close(x->t);
		x->t = NULL;
		return -1;
	}
	return 0;
}

static int xfer_open(struct xfer *x)
{
	struct shmk_opts o = {0};
	int rc;

	if (!strcmp(x->cmd, "pub")) {
		rc = pub_open(x);
	} else {
		o.wait_ms = x->timeout_ms;
		if (x->topic) {
			rc = shmk_topic_open(x->name, &o, &x->t);
		} else if (x->create) {
			o.mode = x->mode_bits;
			o.flags = SHMK_F_OPEN_OR_CREATE;
			rc = shmk_ring_create(x->name, (size_t)x->nodes,
					      (size_t)x->node_size, &o, &x->r);
		} else {
			rc = shmk_ring_open(x->name, &o, &x->r);
		}
		if (rc == -EPROTO)
			xfer_mismatch(x);
		else if (rc < 0)
			err_rc(x->cmd, x->name, rc);
	}
	if (rc < 0)
		return -1;
	if (!x->topic) {
		x->node = shmk_ring_node_size(x->r);
		return 0;
	}
	x->node = shmk_topic_max_msg(x->t);
	if (strcmp(x->cmd, "pub") != 0)
		x->lossy = shmk_topic_lossy(x->t);
	/* pub builds messages here; sub copies out a lossy topic's, and
	 * the latest. */
	if (!strcmp(x->cmd, "pub") || x->lossy || x->latest) {
		x->buf = malloc(x->node);
		if (!x->buf) {
			err_rc(x->cmd, "memory for a message", -ENOMEM);
			shmk_topic_close(x->t);
			x->t = NULL;
			return -1;
		}
	}
	return 0;
}

/* One try of what a command waits for (a free node, a message, room in
 * a topic), waiting at most t ms. */
typedef int (*xfer_op)(struct xfer *x, int t);

static int op_reserve(struct xfer *x, int t)
{
	return shmk_ring_reserve(x->r, &x->m, t);
}

static int op_acquire(struct xfer *x, int t)
{
	return shmk_ring_acquire(x->r, &x->m, t);
}

static int op_publish(struct xfer *x, int t)
{
	return shmk_topic_publish(x->t, x->buf, x->fill, t);
}

/* A lossless topic's message is read in place, held until it is written
 * out; a lossy topic's is copied out first, as a publisher may overwrite
 * it in place meanwhile (the receive checks the copy). */
static int op_take(struct xfer *x, int t)
{
	ssize_t n;

	if (!x->lossy)
		return shmk_topic_acquire(x->t, &x->m, t);
	n = shmk_topic_receive(x->t, x->buf, x->node, t);
	if (n < 0)
		return (int)n;
	x->m.data = x->buf;
	x->m.len = (size_t)n;
	return 0;
}

/*
 * sub: says on standard error how many messages the laps not said yet
 * lost, and where in the output; at most once a second (a subscriber
 * lapped over and over would flood it) unless final.
 */
static void sub_tell(struct xfer *x, int final)
{
	uint64_t lost = shmk_topic_lost(x->t), now = now_ms(), n;
	char all[64] = "";

	if (!x->laps || (!final && now < x->tell_ms))
		return;
	n = lost - x->lost_told;
	if (x->lost_told)
		snprintf(all, sizeof(all), " (%llu lost in all)",
			 (unsigned long long)lost);
	if (x->laps == 1)
		errf(x->cmd, x->name,
		     "lapped: lost %llu message(s) before message %llu of the "
		     "output%s",
		     (unsigned long long)n,
		     (unsigned long long)x->lap_first + 1, all);
	else
		errf(x->cmd, x->name,
		     "lapped %llu times, before messages %llu to %llu of the "
		     "output: lost %llu message(s)%s",
		     (unsigned long long)x->laps,
		     (unsigned long long)x->lap_first + 1,
		     (unsigned long long)x->lap_last + 1, (unsigned long long)n,
		     all);
	x->lost_told = lost;
	x->laps = 0;
	x->tell_ms = now + 1000;
}

/* sub: a lossy topic lapped us (the receive said -EOVERFLOW, and the
 * next one gives the oldest message still held). */
static void sub_lapped(struct xfer *x)
{
	if (!x->laps++)
		x->lap_first = x->nmsg;
	x->lap_last = x->nmsg;
	sub_tell(x, 0);
}

/*
 * Runs a blocking operation until it is done, x->timeout_ms (-1: never)
 * has passed, or a stopping signal came: the signal handler wakes the
 * handle (shmk_*_wake), and the operation returns -ECANCELED.  sub waits
 * at most a second at a time while it has laps to tell.  Returns as the
 * operation, -ETIMEDOUT, or -EINTR on a signal.
 */
static int xfer_wait(struct xfer *x, xfer_op op)
{
	uint64_t end =
		x->timeout_ms < 0 ? 0 : now_ms() + (uint64_t)x->timeout_ms;
	int rc, t;

	for (;;) {
		if (g_signal)
			return -EINTR;
		t = x->timeout_ms;
		if (x->timeout_ms >= 0) {
			uint64_t now = now_ms();

			t = now >= end ? 0 : (int)(end - now);
		}
		if (x->laps && (t < 0 || t > 1000))
			t = 1000; /* sub: laps not said yet, a second on */
		rc = op(x, t);
		if (rc == -ECANCELED)
			continue; /* a signal: seen above */
		if (rc != -ETIMEDOUT && rc != -EAGAIN)
			return rc;
		if (x->laps)
			sub_tell(x, 0);
		if (x->timeout_ms >= 0 && now_ms() >= end)
			return -ETIMEDOUT;
	}
}

/* Reports the error rc of an operation on the ring or topic; returns
 * -1. */
static int xfer_error(struct xfer *x, int rc)
{
	const char *what = x->topic ? "topic" : "ring";
	int out = !strcmp(x->cmd, "send") || !strcmp(x->cmd, "pub");
	struct shmk_topic_stats s;

	if (rc == -EPIPE)
		errf(x->cmd, x->name,
		     "the %s is shut down, nothing more can be %s (it "
		     "stays shut down: remove it with 'shmk rm %s')",
		     what, x->topic ? "published" : "sent", x->name);
	else if (rc == -ETIMEDOUT && x->topic && out &&
		 !shmk_topic_stats(x->t, &s) && !s.lossy && s.subscribers)
		/* Lossless: who holds the topic up. */
		errf(x->cmd, x->name,
		     "no room within %d ms: the slowest subscriber, pid "
		     "%llu, is %llu message(s) behind",
		     x->timeout_ms, (unsigned long long)s.slowest_pid,
		     (unsigned long long)s.slowest_lag);
	else if (rc == -ETIMEDOUT)
		errf(x->cmd, x->name, "%s within %d ms",
		     !out	? "no message"
		     : x->topic ? "no room"
				: "no free node",
		     x->timeout_ms);
	else if (rc == -EINTR)
		errf(x->cmd, x->name, "interrupted (%s)", strsignal(g_signal));
	else
		err_rc(x->cmd, x->name, rc);
	return -1;
}

static const char *unit_name(const struct xfer *x)
{
	return x->mode == MODE_LINES	? "line"
	       : x->mode == MODE_CHUNKS ? "chunk"
					: "frame";
}

/* What bounds a message: "a node", "the topic's max_msg". */
static const char *bound_name(const struct xfer *x)
{
	return x->topic ? "the topic's max_msg" : "a node";
}

/*
 * Starts the next message: a node reserved in the ring or, for a topic,
 * buf.  A topic's message is published whole: a loan held while input
 * trickles in would hold back every message loaned after it, other
 * publishers' too.
 */
static int send_begin(struct xfer *x)
{
	int rc;

	if (x->topic) {
		x->m.data = x->buf;
		x->m.len = x->node;
	} else {
		rc = xfer_wait(x, op_reserve);
		if (rc < 0)
			return xfer_error(x, rc);
	}
	x->open = 1;
	x->fill = 0;
	return 0;
}

static int send_commit(struct xfer *x)
{
	int rc;

	if (x->topic) {
		rc = xfer_wait(x, op_publish);
	} else {
		x->m.len = x->fill;
		rc = shmk_ring_commit(x->r, &x->m);
	}
	if (rc < 0)
		return xfer_error(x, rc);
	x->open = 0;
	x->nmsg++;
	return 0;
}

static int too_long(struct xfer *x, const char *len)
{
	errf(x->cmd, x->name,
	     "%s %llu%s is longer than %s (%zu bytes): not sent, and "
	     "nothing is ever truncated",
	     unit_name(x), (unsigned long long)x->nmsg + 1, len, bound_name(x),
	     x->node);
	return -1;
}

/* Feeds n bytes of standard input to the message(s) being built. */
static int send_bytes(struct xfer *x, const char *p, size_t n)
{
	const char *end = p + n, *nl;
	size_t take;
	char len[48];

	while (p < end) {
		if (x->mode == MODE_FRAMES && x->nhdr < 4) {
			take = (size_t)(end - p) < (size_t)(4 - x->nhdr)
				       ? (size_t)(end - p)
				       : (size_t)(4 - x->nhdr);
			memcpy(x->hdr + x->nhdr, p, take);
			x->nhdr += (int)take;
			p += take;
			if (x->nhdr < 4)
				break;
			x->flen = (size_t)x->hdr[0] | (size_t)x->hdr[1] << 8 |
				  (size_t)x->hdr[2] << 16 |
				  (size_t)x->hdr[3] << 24;
			if (x->flen > x->node) {
				snprintf(len, sizeof(len), " (%zu bytes)",
					 x->flen);
				return too_long(x, len);
			}
			if (send_begin(x) < 0)
				return -1;
		} else if (!x->open && send_begin(x) < 0) {
			return -1;
		}
		switch (x->mode) {
		case MODE_LINES:
			nl = memchr(p, '\n', (size_t)(end - p));
			take = (size_t)((nl ? nl : end) - p);
			if (take > x->node - x->fill)
				return too_long(x, "");
			memcpy((char *)x->m.data + x->fill, p, take);
			x->fill += take;
			p += take;
			if (nl) {
				p++;
				if (send_commit(x) < 0)
					return -1;
			}
			break;
		case MODE_CHUNKS:
		case MODE_FRAMES: {
			size_t want = x->mode == MODE_CHUNKS ? (size_t)x->chunk
							     : x->flen;

			take = want - x->fill;
			if (take > (size_t)(end - p))
				take = (size_t)(end - p);
			memcpy((char *)x->m.data + x->fill, p, take);
			x->fill += take;
			p += take;
			if (x->fill == want) {
				if (send_commit(x) < 0)
					return -1;
				x->nhdr = 0;
			}
			break;
		}
		}
	}
	return 0;
}

/* End of input: the last line or chunk goes as it is; a frame must be
 * whole. */
static int send_eof(struct xfer *x)
{
	if (x->mode == MODE_FRAMES && x->nhdr < 4 && x->nhdr) {
		errf(x->cmd, x->name,
		     "frame %llu is truncated: input ended after %d of its 4 "
		     "length bytes",
		     (unsigned long long)x->nmsg + 1, x->nhdr);
		return -1;
	}
	if (x->mode == MODE_FRAMES && x->open) {
		errf(x->cmd, x->name,
		     "frame %llu is truncated: input ended after %zu of its "
		     "%zu bytes",
		     (unsigned long long)x->nmsg + 1, x->fill, x->flen);
		return -1;
	}
	return x->open ? send_commit(x) : 0;
}

/*
 * pub --subscribers N: waits until the topic has N live subscribers, up
 * to --timeout.  A subscription wakes nobody, so the topic's counters
 * are looked at every 5 ms.  Returns 0, or -1 once the error has been
 * reported.
 */
static int pub_wait_subscribers(struct xfer *x)
{
	uint64_t end = now_ms() + (uint64_t)x->timeout_ms;
	static struct shmk_stat st;
	struct shmk_topic_stats s;
	int rc;

	for (;;) {
		rc = shmk_topic_stats(x->t, &s);
		if (rc < 0)
			return xfer_error(x, rc);
		if (s.subscribers >= (uint64_t)x->subscribers)
			return 0;
		/* Shut down (a topic left from an earlier run, say): its
		 * subscribers end at once, so they may never be seen. */
		if (!shmk_stat(x->name, &st) && st.state == SHMK_STATE_SHUTDOWN)
			return xfer_error(x, -EPIPE);
		if (g_signal)
			return xfer_error(x, -EINTR);
		if (x->timeout_ms >= 0 && now_ms() >= end) {
			errf(x->cmd, x->name,
			     "%llu of the %d subscriber(s) waited for came "
			     "within %d ms",
			     (unsigned long long)s.subscribers, x->subscribers,
			     x->timeout_ms);
			return -1;
		}
		usleep(5000);
	}
}

/* send, pub: standard input into a ring, or to a topic's subscribers. */
static int xfer_send(const char *cmd, int argc, char **argv)
{
	struct xfer x = {.cmd = cmd};
	int rc, status = EXIT_FAIL;
	ssize_t n;

	rc = xfer_options(&x, argc, argv);
	if (rc >= 0)
		return rc;
	if (xfer_open(&x) < 0)
		return EXIT_FAIL;
	if (x.mode == MODE_CHUNKS && x.chunk > x.node) {
		errf(cmd, x.name, "--chunk %llu is larger than %s (%zu bytes)",
		     (unsigned long long)x.chunk, bound_name(&x), x.node);
		goto out;
	}
	wake_on_signal(x.r, x.t);
	catch_signals(0);
	if (x.subscribers && pub_wait_subscribers(&x) < 0)
		goto out;
	for (;;) {
		if (g_signal) {
			xfer_error(&x, -EINTR);
			goto out;
		}
		n = read(STDIN_FILENO, g_iobuf, sizeof(g_iobuf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_rc(cmd, "standard input", -errno);
			goto out;
		}
		if (n == 0)
			break;
		if (send_bytes(&x, g_iobuf, (size_t)n) < 0)
			goto out;
	}
	if (send_eof(&x) == 0)
		status = EXIT_OK;
out:
	if (x.open && !x.topic)
		shmk_ring_abort(x.r, &x.m);
	/* However send ends, readers are told: they drain and stop. */
	if (x.shutdown && x.topic)
		shmk_topic_shutdown(x.t);
	else if (x.shutdown)
		shmk_ring_shutdown(x.r);
	wake_on_signal(NULL, NULL);
	if (x.topic)
		shmk_topic_close(x.t);
	else
		shmk_ring_close(x.r);
	free(x.buf);
	return status;
}

static int cmd_send(int argc, char **argv)
{
	return xfer_send("send", argc, argv);
}

static int cmd_pub(int argc, char **argv)
{
	return xfer_send("pub", argc, argv);
}

/* Writes message m to standard output in x's mode. */
static int recv_put(struct xfer *x, const struct shmk_msg *m)
{
	unsigned char pre[4];

	if (x->mode == MODE_FRAMES) {
		if (m->len > UINT32_MAX) {
			errf(x->cmd, x->name,
			     "message %llu is %zu bytes, too long for a "
			     "frame's 4-byte length: not written",
			     (unsigned long long)x->nmsg + 1, m->len);
			return -1;
		}
		pre[0] = (unsigned char)m->len;
		pre[1] = (unsigned char)(m->len >> 8);
		pre[2] = (unsigned char)(m->len >> 16);
		pre[3] = (unsigned char)(m->len >> 24);
		if (fwrite(pre, 1, 4, stdout) != 4)
			goto fail;
	}
	if (m->len && fwrite(m->data, 1, m->len, stdout) != m->len)
		goto fail;
	if (x->mode == MODE_LINES && putchar('\n') == EOF)
		goto fail;
	return 0;
fail:
	err_rc(x->cmd, "standard output", -errno);
	return -1;
}

/* Hands the message taken back: a ring's node, a lossless topic's place
 * (a lossy topic's was copied out). */
static void recv_release(struct xfer *x)
{
	if (!x->topic)
		shmk_ring_release(x->r, &x->m);
	else if (!x->lossy)
		shmk_topic_release(x->t, &x->m);
}

/* sub --latest: the newest message held, without subscribing. */
static int sub_latest(struct xfer *x)
{
	ssize_t n = shmk_topic_latest(x->t, x->buf, x->node);

	if (n == -EAGAIN) {
		errf(x->cmd, x->name, "holds no message");
		return EXIT_FAIL;
	}
	if (n < 0) {
		err_rc(x->cmd, x->name, (int)n);
		return EXIT_FAIL;
	}
	x->m.data = x->buf;
	x->m.len = (size_t)n;
	if (recv_put(x, &x->m) < 0)
		return EXIT_FAIL;
	if (fflush(stdout) == EOF) {
		err_rc(x->cmd, "standard output", -errno);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* recv, sub: a ring's or a topic's messages to standard output. */
static int xfer_recv(const char *cmd, int argc, char **argv)
{
	struct xfer x = {.cmd = cmd};
	int rc, status = EXIT_FAIL;
	xfer_op take;

	rc = xfer_options(&x, argc, argv);
	if (rc >= 0)
		return rc;
	if (xfer_open(&x) < 0)
		return EXIT_FAIL;
	/* A full buffer, flushed whenever the ring runs empty: batches
	 * under load, prompt when idle. */
	setvbuf(stdout, g_iobuf, _IOFBF, sizeof(g_iobuf));
	signal(SIGPIPE, SIG_IGN); /* a closed pipe is an error to report */
	if (x.latest) {
		status = sub_latest(&x);
		goto out;
	}
	if (x.topic) {
		rc = shmk_topic_subscribe(x.t, x.history);
		if (rc == -EPIPE) {
			status = EXIT_OK; /* shut down: nothing to take */
			goto out;
		}
		if (rc < 0) {
			err_rc(cmd, x.name, rc);
			goto out;
		}
	}
	take = x.topic ? op_take : op_acquire;
	wake_on_signal(x.r, x.t);
	catch_signals(0);
	for (;;) {
		rc = take(&x, 0);
		if (rc == -EAGAIN) {
			if (fflush(stdout) == EOF) {
				err_rc(cmd, "standard output", -errno);
				goto out;
			}
			rc = xfer_wait(&x, take);
		}
		if (rc == -EOVERFLOW && x.topic) {
			sub_lapped(&x);
			continue;
		}
		if (rc == -EPIPE) /* shut down and drained: the end */
			break;
		if (rc < 0) {
			xfer_error(&x, rc);
			goto out;
		}
		rc = recv_put(&x, &x.m);
		recv_release(&x);
		if (rc < 0)
			goto out;
		x.nmsg++;
		if (x.laps)
			sub_tell(&x, 0);
		if (g_signal) {
			xfer_error(&x, -EINTR);
			goto out;
		}
	}
	if (fflush(stdout) == EOF)
		err_rc(cmd, "standard output", -errno);
	else
		status = EXIT_OK;
out:
	wake_on_signal(NULL, NULL);
	if (x.topic) {
		sub_tell(&x, 1);
		shmk_topic_close(x.t);
	} else {
		shmk_ring_close(x.r);
	}
	free(x.buf);
	return status;
}

static int cmd_recv(int argc, char **argv)
{
	return xfer_recv("recv", argc, argv);
}

static int cmd_sub(int argc, char **argv)
{
	return xfer_recv("sub", argc, argv);
}

/* ---------------------------------------------------------------------
 * check
 * --------------------------------------------------------------------- */

struct checker {
	const char *name;
	int problems, warnings;
};

static void finding(struct checker *k, const char *level, const char *fmt, ...)
{
	va_list ap;

	if (!strcmp(level, "FAIL"))
		k->problems++;
	else if (!strcmp(level, "warning"))
		k->warnings++;
	printf("  %-8s ", level);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* bytes <= count * node_size, without overflow. */
static int bytes_fit(uint64_t bytes, uint64_t count, uint64_t node_size)
{
	return !node_size
		       ? bytes == 0
		       : bytes / node_size + (bytes % node_size != 0) <= count;
}

/* The ring invariants that hold in a consistent snapshot. */
enum { INV_READ, INV_BYTES, INV_BYTES_W, INV_BYTES_R, INV_LAG, INV_HWM, NINV };

static unsigned ring_violations(const struct shmk_ring_stats *s)
{
	unsigned v = 0;

	if (s->read > s->written || s->lost > s->written - s->read)
		v |= 1u << INV_READ;
	if (s->bytes_read > s->bytes_written)
		v |= 1u << INV_BYTES;
	if (!bytes_fit(s->bytes_written, s->written, s->node_size))
		v |= 1u << INV_BYTES_W;
	if (!bytes_fit(s->bytes_read, s->read, s->node_size))
		v |= 1u << INV_BYTES_R;
	if (s->lag > s->nodes)
		v |= 1u << INV_LAG;
	if (s->high_water > s->nodes)
		v |= 1u << INV_HWM;
	return v;
}

#define CHECK_SNAPSHOTS 5

static void check_ring(struct checker *k, const struct shmk_stat *st,
		       struct shmk_ring *r)
{
	static const char *const what[NINV] = {
		"read + lost <= written",
		"bytes_read <= bytes_written",
		"bytes_written <= written x node_size",
		"bytes_read <= read x node_size",
		"lag <= nodes",
		"high_water <= nodes",
	};
	struct shmk_ring_stats s;
	unsigned always = ~0u, seen = 0, v;
	int i, rc;

	if (shmk_ring_nodes(r) != st->geom[0] ||
	    shmk_ring_node_size(r) != st->geom[1])
		finding(k, "FAIL",
			"geometry: the open ring has %zu nodes of %zu bytes, "
			"the header %llu of %llu",
			shmk_ring_nodes(r), shmk_ring_node_size(r),
			(unsigned long long)st->geom[0],
			(unsigned long long)st->geom[1]);
	else
		finding(k, "ok", "geometry: %zu nodes of %zu bytes",
			shmk_ring_nodes(r), shmk_ring_node_size(r));
	/*
	 * The counters are summed without a lock while the ring may be in
	 * use, so one snapshot can break a relation for a moment.  Only a
	 * relation broken in every snapshot is reported.
	 */
	for (i = 0; i < CHECK_SNAPSHOTS; i++) {
		if (i)
			usleep(20000);
		rc = shmk_ring_stats(r, &s);
		if (rc < 0) {
			finding(k, "FAIL", "shmk_ring_stats: %s",
				shmk_strerror(rc));
			return;
		}
		v = ring_violations(&s);
		always &= v;
		seen |= v;
		if (!always)
			break;
	}
	for (i = 0; i < NINV; i++) {
		if (always & (1u << i))
			finding(k, "FAIL", "%s does not hold", what[i]);
		else
			finding(k, "ok", "%s%s", what[i],
				seen & (1u << i) ? " (broken in one snapshot "
						   "only: the ring is busy)"
						 : "");
	}
	if (always)
		finding(k, "info",
			"last snapshot: written %llu (%llu bytes), read %llu "
			"(%llu bytes), lost %llu, lag %llu, high_water %llu",
			(unsigned long long)s.written,
			(unsigned long long)s.bytes_written,
			(unsigned long long)s.read,
			(unsigned long long)s.bytes_read,
			(unsigned long long)s.lost, (unsigned long long)s.lag,
			(unsigned long long)s.high_water);
	if (st->state == SHMK_STATE_SHUTDOWN)
		finding(k, "info",
			"shut down: writers get -EPIPE; %llu message(s) left "
			"for readers",
			(unsigned long long)s.lag);
}

/* The topic invariants that hold in a consistent snapshot. */
enum { TINV_BYTES_P, TINV_BYTES_D, TINV_HELD, TINV_LOST, TINV_LAG, NTINV };

static unsigned topic_violations(const struct shmk_stat *st, uint64_t slots)
{
	uint64_t max = st->geom[1];
	int lossy = st->geom[2] != 0;
	unsigned v = 0;

	if (!bytes_fit(counter_of(st, "bytes_published"),
		       counter_of(st, "published"), max))
		v |= 1u << TINV_BYTES_P;
	if (!bytes_fit(counter_of(st, "bytes_delivered"),
		       counter_of(st, "delivered"), max))
		v |= 1u << TINV_BYTES_D;
	if (counter_of(st, "held") > slots)
		v |= 1u << TINV_HELD;
	/* Lossless: nothing is ever overwritten, and tail never passes a
	 * live subscriber, so none is more than the log behind. */
	if (!lossy && counter_of(st, "lost"))
		v |= 1u << TINV_LOST;
	if (!lossy && counter_of(st, "slowest_lag") > slots)
		v |= 1u << TINV_LAG;
	return v;
}

/*
 * A topic: its geometry as opened against the header's, then its
 * counters, from the header (shmk_stat, which sums every participant's
 * without a lock: as for a ring, only a relation broken in every one of
 * CHECK_SNAPSHOTS snapshots is reported).
 */
static void check_topic(struct checker *k, const struct shmk_stat *st,
			struct shmk_topic *t)
{
	static const char *const what[NTINV] = {
		"bytes_published <= published x max_msg",
		"bytes_delivered <= delivered x max_msg",
		"held <= the log's messages",
		"lossless: lost = 0",
		"lossless: slowest_lag <= the log's messages",
	};
	static struct shmk_stat s;
	struct shmk_topic_stats ts;
	unsigned always = ~0u, seen = 0, v;
	int i, rc, lossy = st->ngeom > 2 && st->geom[2];
	char geom[128];

	rc = shmk_topic_stats(t, &ts);
	if (rc < 0) {
		finding(k, "FAIL", "shmk_topic_stats: %s", shmk_strerror(rc));
		return;
	}
	if (st->ngeom < 3 || shmk_topic_capacity(t) != st->geom[0] ||
	    shmk_topic_max_msg(t) != st->geom[1] ||
	    shmk_topic_lossy(t) != lossy) {
		finding(k, "FAIL",
			"geometry: the open topic has capacity %zu, max_msg "
			"%zu, %s; the header %s",
			shmk_topic_capacity(t), shmk_topic_max_msg(t),
			shmk_topic_lossy(t) ? "lossy" : "lossless",
			geom_of(st->kind, st->geom, st->ngeom, geom,
				sizeof(geom)));
		return;
	}
	finding(k, "ok",
		"geometry: a %s log of %zu bytes, messages of up to %zu "
		"bytes, %llu at most",
		lossy ? "lossy" : "lossless", shmk_topic_capacity(t),
		shmk_topic_max_msg(t), (unsigned long long)ts.slots);
	for (i = 0; i < CHECK_SNAPSHOTS; i++) {
		if (i)
			usleep(20000);
		rc = shmk_stat(k->name, &s);
		if (rc < 0) {
			finding(k, "FAIL", "shmk_stat: %s", shmk_strerror(rc));
			return;
		}
		v = topic_violations(&s, ts.slots);
		always &= v;
		seen |= v;
		if (!always)
			break;
	}
	for (i = 0; i < NTINV; i++) {
		if (lossy && (i == TINV_LOST || i == TINV_LAG))
			continue;
		if (always & (1u << i))
			finding(k, "FAIL", "%s does not hold", what[i]);
		else
			finding(k, "ok", "%s%s", what[i],
				seen & (1u << i) ? " (broken in one snapshot "
						   "only: the topic is busy)"
						 : "");
	}
	if (always)
		finding(k, "info",
			"last snapshot: published %llu (%llu bytes), "
			"delivered %llu (%llu bytes), lost %llu, held %llu, "
			"slowest_lag %llu",
			(unsigned long long)counter_of(&s, "published"),
			(unsigned long long)counter_of(&s, "bytes_published"),
			(unsigned long long)counter_of(&s, "delivered"),
			(unsigned long long)counter_of(&s, "bytes_delivered"),
			(unsigned long long)counter_of(&s, "lost"),
			(unsigned long long)counter_of(&s, "held"),
			(unsigned long long)counter_of(&s, "slowest_lag"));
	if (counter_of(&s, "subscribers"))
		finding(k, "info",
			"%llu subscriber(s); the slowest, pid %llu, is %llu "
			"message(s) behind",
			(unsigned long long)counter_of(&s, "subscribers"),
			(unsigned long long)counter_of(&s, "slowest_pid"),
			(unsigned long long)counter_of(&s, "slowest_lag"));
	if (lossy && counter_of(&s, "lost"))
		finding(k, "info",
			"lossy: %llu message(s) lost to overwriting by "
			"subscribers left behind",
			(unsigned long long)counter_of(&s, "lost"));
	if (st->state == SHMK_STATE_SHUTDOWN)
		finding(k, "info",
			"shut down: publishers get -EPIPE; subscribers take "
			"the %llu message(s) held, then stop",
			(unsigned long long)counter_of(&s, "held"));
}

/* Takes the read lock once: a corrupt lock word or a dead writer's
 * mark shows. */
static void check_lock(struct checker *k, int rc, const char *kind)
{
	if (rc == 0 || rc == -EOWNERDEAD)
		finding(k, "ok", "lock: taken and released for reading");
	if (rc == -EOWNERDEAD)
		finding(k, "warning",
			"lock: a writer died holding it; the %s may be "
			"half-written until a writer locks and unlocks it",
			kind);
	else if (rc == -ETIMEDOUT || rc == -EAGAIN)
		finding(k, "info",
			"lock: held by a live writer for 100 ms; not checked");
	else if (rc < 0)
		finding(k, "FAIL", "lock: %s", shmk_strerror(rc));
}

static void check_open(struct checker *k, const struct shmk_stat *st)
{
	struct shmk_opts o = {0};
	struct shmk_buffer *b;
	struct shmk_array *a;
	struct shmk_event *e;
	struct shmk_topic *t;
	struct shmk_ring *r;
	char kbuf[32];
	const char *kind;
	int rc;

	/* check describes other users' objects too, as shmk_stat does;
	 * the trust rule is reported above. */
	o.flags = SHMK_F_ALLOW_SHARED;
	kind = kind_str(st->kind, kbuf, sizeof(kbuf));
	switch (st->kind) {
	case SHMK_KIND_BUFFER:
		rc = shmk_buffer_open(k->name, &o, &b);
		if (rc < 0)
			break;
		finding(k, "ok", "opened as a buffer");
		if (shmk_buffer_size(b) != st->geom[0])
			finding(k, "FAIL", "size: %zu open, %llu in the header",
				shmk_buffer_size(b),
				(unsigned long long)st->geom[0]);
		rc = shmk_buffer_lock(b, SHMK_LOCK_READ, 100);
		check_lock(k, rc, "data");
		if (rc == 0 || rc == -EOWNERDEAD)
			shmk_buffer_unlock(b);
		shmk_buffer_close(b);
		return;
	case SHMK_KIND_ARRAY:
		rc = shmk_array_open(k->name, (size_t)st->geom[0], &o, &a);
		if (rc < 0)
			break;
		finding(k, "ok",
			"opened as an array of %zu elements of %zu "
			"bytes",
			shmk_array_length(a), shmk_array_elem_size(a));
		if (shmk_array_length(a) != st->geom[1])
			finding(k, "FAIL",
				"length: %zu open, %llu in the header",
				shmk_array_length(a),
				(unsigned long long)st->geom[1]);
		rc = shmk_array_lock(a, SHMK_LOCK_READ, 100);
		check_lock(k, rc, "elements");
		if (rc == 0 || rc == -EOWNERDEAD)
			shmk_array_unlock(a);
		shmk_array_close(a);
		return;
	case SHMK_KIND_EVENT:
		rc = shmk_event_open(k->name, &o, &e);
		if (rc < 0)
			break;
		finding(k, "ok", "opened as an event");
		shmk_event_close(e);
		return;
	case SHMK_KIND_RING:
		rc = shmk_ring_open(k->name, &o, &r);
		if (rc < 0)
			break;
		finding(k, "ok", "opened as a ring");
		check_ring(k, st, r);
		shmk_ring_close(r);
		return;
	case SHMK_KIND_TOPIC:
		rc = shmk_topic_open(k->name, &o, &t);
		if (rc < 0)
			break;
		finding(k, "ok", "opened as a topic");
		check_topic(k, st, t);
		shmk_topic_close(t);
		return;
	default:
		finding(k, "info",
			"kind %s: this tool has no open for it; only the "
			"header was checked",
			kind);
		return;
	}
	finding(k, "FAIL", "open as a %s: %s", kind, shmk_strerror(rc));
}

static int check_one(const char *name)
{
	static struct shmk_stat st, again;
	struct checker k = {name, 0, 0};
	char kind[32];
	int rc, i, creators = 0;

	rc = shmk_stat(name, &st);
	if (rc < 0) {
		printf("%s: header\n", name);
		finding(&k, "FAIL", "shmk_stat: %s%s", shmk_strerror(rc),
			rc == -EPROTO	 ? " (not a shmk object of a kind "
					   "and format version this "
					   "library knows)"
			: rc == -EBADMSG ? " (its header is inconsistent)"
					 : "");
		errf("check", name, "%s", shmk_strerror(rc));
		return EXIT_FAIL;
	}
	printf("%s: %s, %s, %d of %d participant(s) alive\n", name,
	       kind_str(st.kind, kind, sizeof(kind)), shmk_state_name(st.state),
	       st.nalive, st.nparts);
	finding(&k, "ok",
		"header: format version %d, %llu bytes, read and "
		"validated",
		st.version, (unsigned long long)st.total_size);
	if (st.state == SHMK_STATE_INIT)
		finding(&k, "FAIL",
			"state init under a name: the object was never "
			"finished, or its header was overwritten");
	for (i = 0; i < st.nparts; i++)
		creators += st.part[i].creator;
	if (creators > 1)
		finding(&k, "FAIL", "%d participants are marked creator",
			creators);
	if (st.creator_alive && st.state == SHMK_STATE_SHUTDOWN) {
		/* For a moment while a creator closes: look again. */
		usleep(50000);
		if (!shmk_stat(name, &again) && again.creator_alive &&
		    again.state == SHMK_STATE_SHUTDOWN)
			finding(&k, "FAIL",
				"shut down while its creator (pid %d) is "
				"alive",
				(int)st.creator_pid);
	}
	if (st.owner != geteuid())
		finding(&k, "info",
			"owned by uid %u: opens refuse it without "
			"SHMK_F_ALLOW_SHARED",
			(unsigned)st.owner);
	else if (st.mode & 022)
		finding(&k, "warning",
			"mode %04o: writable by group or others; opens refuse "
			"it without SHMK_F_ALLOW_SHARED",
			st.mode);
	check_open(&k, &st);
	if (k.problems) {
		printf("%s: %d problem(s)\n", name, k.problems);
		errf("check", name, "%d problem(s) found", k.problems);
		return EXIT_FAIL;
	}
	printf("%s: ok%s\n", name, k.warnings ? " (with warnings)" : "");
	return EXIT_OK;
}

static int cmd_check(int argc, char **argv)
{
	int i, rc, status = EXIT_OK;

	rc = no_options("check", argc, argv);
	if (rc >= 0)
		return rc;
	if (optind == argc) {
		usage_error("check", "which object? (a NAME is needed)");
		return EXIT_USAGE;
	}
	for (i = optind; i < argc; i++)
		if (check_one(argv[i]) != EXIT_OK)
			status = EXIT_FAIL;
	return status;
}

/* ---------------------------------------------------------------------
 * create
 * --------------------------------------------------------------------- */

/* create's geometry and event options, a bit each. */
enum {
	C_NODES = 1u << 0,
	C_NODE_SIZE = 1u << 1,
	C_SIZE = 1u << 2,
	C_COUNT = 1u << 3,
	C_ELEM_SIZE = 1u << 4,
	C_MANUAL = 1u << 5,
	C_SET = 1u << 6,
	C_SINGLE_W = 1u << 7,
	C_SINGLE_R = 1u << 8,
	C_CAPACITY = 1u << 9,
	C_MAX_MSG = 1u << 10,
	C_LOSSY = 1u << 11,
	C_NOPTS = 12,
};

static const char *const create_opt_name[C_NOPTS] = {
	"--nodes",	   "--node-size",    "--size",	  "--count",
	"--elem-size",	   "--manual-reset", "--set",	  "--single-writer",
	"--single-reader", "--capacity",     "--max-msg", "--lossy",
};

/* The kinds create makes; `need` options have no default. */
static const struct create_kind {
	const char *name;
	int kind;
	unsigned allowed, need;
} create_kinds[] = {
	{"ring", SHMK_KIND_RING,
	 C_NODES | C_NODE_SIZE | C_SINGLE_W | C_SINGLE_R, 0},
	{"topic", SHMK_KIND_TOPIC, C_CAPACITY | C_MAX_MSG | C_LOSSY, 0},
	{"buffer", SHMK_KIND_BUFFER, C_SIZE, C_SIZE},
	{"array", SHMK_KIND_ARRAY, C_COUNT | C_ELEM_SIZE,
	 C_COUNT | C_ELEM_SIZE},
	{"event", SHMK_KIND_EVENT, C_MANUAL | C_SET, 0},
};

/* The largest size or count create passes on (the library refuses an
 * object past 2^46 bytes anyway). */
#define CREATE_MAX                                                             \
	((uint64_t)SIZE_MAX < (UINT64_C(1) << 46) ? (uint64_t)SIZE_MAX         \
						  : (UINT64_C(1) << 46))

struct create_req {
	const char *name;
	const struct create_kind *k;
	/* In the order of the kind's geometry fields (shmk_stat geom[]). */
	uint64_t geom[3];
	int ngeom;
	int set; /* event: start set */
	unsigned mode, given;
	int open_or_create, verbose;
};

/* Parses create's options and operands into q.  Returns an exit status
 * to return at once, or -1 to go on. */
static int create_options(struct create_req *q, int argc, char **argv)
{
	static const struct option longs[] = {
		{"nodes", required_argument, NULL, 'n'},
		{"node-size", required_argument, NULL, 's'},
		{"size", required_argument, NULL, 'S'},
		{"count", required_argument, NULL, 'c'},
		{"elem-size", required_argument, NULL, 'e'},
		{"manual-reset", no_argument, NULL, 'M'},
		{"set", no_argument, NULL, 'i'},
		{"single-writer", no_argument, NULL, 'W'},
		{"single-reader", no_argument, NULL, 'R'},
		{"capacity", required_argument, NULL, 'K'},
		{"max-msg", required_argument, NULL, 'X'},
		{"lossy", no_argument, NULL, 'L'},
		{"mode", required_argument, NULL, 'm'},
		{"open-or-create", no_argument, NULL, 'o'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	uint64_t nodes = 64, node_size = 65536, size = 0, count = 0, elem = 0;
	uint64_t capacity = TOPIC_CAP, max_msg = 0;
	unsigned extra, i;
	int c, manual = 0;
	char msg[256], ak[48];

	q->mode = 0600;
	optind = 0;
	while ((c = next_opt("create", argc, argv, ":hv", longs)) != -1) {
		switch (c) {
		case 'h':
			return help_of("create");
		case 'n':
			if (parse_size("create", "nodes", optarg, 2, UINT32_MAX,
				       &nodes) < 0)
				return EXIT_USAGE;
			q->given |= C_NODES;
			break;
		case 's':
			if (parse_size("create", "node-size", optarg, 1,
				       UINT64_C(1) << 40, &node_size) < 0)
				return EXIT_USAGE;
			q->given |= C_NODE_SIZE;
			break;
		case 'S':
			if (parse_size("create", "size", optarg, 1, CREATE_MAX,
				       &size) < 0)
				return EXIT_USAGE;
			q->given |= C_SIZE;
			break;
		case 'c':
			if (parse_size("create", "count", optarg, 1, CREATE_MAX,
				       &count) < 0)
				return EXIT_USAGE;
			q->given |= C_COUNT;
			break;
		case 'e':
			if (parse_size("create", "elem-size", optarg, 1,
				       CREATE_MAX, &elem) < 0)
				return EXIT_USAGE;
			q->given |= C_ELEM_SIZE;
			break;
		case 'M':
			manual = 1;
			q->given |= C_MANUAL;
			break;
		case 'i':
			q->set = 1;
			q->given |= C_SET;
			break;
		case 'W':
			q->given |= C_SINGLE_W;
			break;
		case 'R':
			q->given |= C_SINGLE_R;
			break;
		case 'K':
			if (parse_capacity("create", optarg, &capacity) < 0)
				return EXIT_USAGE;
			q->given |= C_CAPACITY;
			break;
		case 'X':
			if (parse_size("create", "max-msg", optarg, 1,
				       UINT64_C(1) << 33, &max_msg) < 0)
				return EXIT_USAGE;
			q->given |= C_MAX_MSG;
			break;
		case 'L':
			q->given |= C_LOSSY;
			break;
		case 'm':
			if (parse_mode("create", optarg, &q->mode) < 0)
				return EXIT_USAGE;
			break;
		case 'o':
			q->open_or_create = 1;
			break;
		case 'v':
			q->verbose = 1;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		usage_error("create", argc - optind < 2
					      ? "a KIND and a NAME are needed"
					      : "takes one KIND and one NAME");
		return EXIT_USAGE;
	}
	if (!strcmp(argv[optind], "rpc")) {
		usage_error("create",
			    "an rpc object is not created by hand: its server "
			    "process makes it (shmk_rpc_serve) and owns it");
		return EXIT_USAGE;
	}
	for (i = 0; i < sizeof(create_kinds) / sizeof(create_kinds[0]); i++)
		if (!strcmp(argv[optind], create_kinds[i].name))
			q->k = &create_kinds[i];
	if (!q->k) {
		snprintf(msg, sizeof(msg),
			 "unknown kind '%s' (ring, topic, buffer, array or "
			 "event)",
			 argv[optind]);
		usage_error("create", msg);
		return EXIT_USAGE;
	}
	extra = q->given & ~q->k->allowed;
	for (i = 0; extra && i < C_NOPTS; i++)
		if (extra & (1u << i)) {
			snprintf(msg, sizeof(msg), "%s is not an option of %s",
				 create_opt_name[i],
				 a_kind(q->k->name, ak, sizeof(ak)));
			usage_error("create", msg);
			return EXIT_USAGE;
		}
	for (i = 0; i < C_NOPTS; i++)
		if ((q->k->need & (1u << i)) && !(q->given & (1u << i))) {
			snprintf(msg, sizeof(msg), "%s needs %s",
				 a_kind(q->k->name, ak, sizeof(ak)),
				 create_opt_name[i]);
			usage_error("create", msg);
			return EXIT_USAGE;
		}
	switch (q->k->kind) {
	case SHMK_KIND_RING:
		/* The mode is the ring's third geometry field. */
		q->geom[0] = nodes;
		q->geom[1] = node_size;
		q->geom[2] = (q->given & C_SINGLE_W ? 1 : 0) |
			     (q->given & C_SINGLE_R ? 2 : 0);
		q->ngeom = 3;
		break;
	case SHMK_KIND_TOPIC:
		if (topic_max_msg("create", capacity, !!(q->given & C_MAX_MSG),
				  &max_msg) < 0)
			return EXIT_USAGE;
		q->geom[0] = capacity;
		q->geom[1] = max_msg;
		q->geom[2] = q->given & C_LOSSY ? 1 : 0;
		q->ngeom = 3;
		break;
	case SHMK_KIND_BUFFER:
		q->geom[0] = size;
		q->ngeom = 1;
		break;
	case SHMK_KIND_ARRAY:
		q->geom[0] = elem;
		q->geom[1] = count;
		q->ngeom = 2;
		break;
	case SHMK_KIND_EVENT:
		q->geom[0] = (uint64_t)manual;
		q->ngeom = 1;
		break;
	}
	q->name = argv[optind + 1];
	return -1;
}

/*
 * Creates q's object with options o and, if that succeeds, describes it
 * into *st before closing the handle (so the description is of the object
 * the handle had, unless the name was replaced in between).  Returns the
 * create's result; *src that of shmk_stat.
 */
static int create_call(const struct create_req *q, const struct shmk_opts *o,
		       struct shmk_stat *st, int *src)
{
	struct shmk_opts ro;
	struct shmk_buffer *b;
	struct shmk_array *a;
	struct shmk_event *e;
	struct shmk_topic *t;
	struct shmk_ring *r;
	int rc = -EINVAL;

	switch (q->k->kind) {
	case SHMK_KIND_RING:
		ro = *o;
		if (q->given & C_SINGLE_W)
			ro.flags |= SHMK_F_SINGLE_WRITER;
		if (q->given & C_SINGLE_R)
			ro.flags |= SHMK_F_SINGLE_READER;
		rc = shmk_ring_create(q->name, (size_t)q->geom[0],
				      (size_t)q->geom[1], &ro, &r);
		if (!rc) {
			*src = shmk_stat(q->name, st);
			shmk_ring_close(r);
		}
		break;
	case SHMK_KIND_TOPIC:
		ro = *o;
		if (q->geom[2])
			ro.flags |= SHMK_F_LOSSY;
		rc = shmk_topic_create(q->name, (size_t)q->geom[0],
				       (size_t)q->geom[1], &ro, &t);
		if (!rc) {
			*src = shmk_stat(q->name, st);
			shmk_topic_close(t);
		}
		break;
	case SHMK_KIND_BUFFER:
		rc = shmk_buffer_create(q->name, (size_t)q->geom[0], o, &b);
		if (!rc) {
			*src = shmk_stat(q->name, st);
			shmk_buffer_close(b);
		}
		break;
	case SHMK_KIND_ARRAY:
		rc = shmk_array_create(q->name, (size_t)q->geom[0],
				       (size_t)q->geom[1], o, &a);
		if (!rc) {
			*src = shmk_stat(q->name, st);
			shmk_array_close(a);
		}
		break;
	case SHMK_KIND_EVENT:
		rc = shmk_event_create(q->name, (int)q->geom[0], q->set, o, &e);
		if (!rc) {
			*src = shmk_stat(q->name, st);
			shmk_event_close(e);
		}
		break;
	}
	return rc;
}

/*
 * Whether the existing object st is the one q asks for: the same kind
 * and geometry, kept, ready, ours and with the mode asked for.  Returns
 * 0, or -1 once the difference has been reported.
 */
static int create_same(const struct create_req *q, const struct shmk_stat *st)
{
	char kind[32], ak[48], ak2[48], have[256], want[256], user[64];
	const char *name = q->name;
	int i, same;

	if (st->kind != q->k->kind) {
		errf("create", name, "exists as %s, not %s",
		     a_kind(kind_str(st->kind, kind, sizeof(kind)), ak,
			    sizeof(ak)),
		     a_kind(q->k->name, ak2, sizeof(ak2)));
		return -1;
	}
	same = st->ngeom == q->ngeom;
	for (i = 0; same && i < q->ngeom; i++)
		same = st->geom[i] == q->geom[i];
	if (!same) {
		errf("create", name, "exists as %s of %s, not the %s asked for",
		     a_kind(q->k->name, ak, sizeof(ak)),
		     geom_of(st->kind, st->geom, st->ngeom, have, sizeof(have)),
		     geom_of(q->k->kind, q->geom, q->ngeom, want,
			     sizeof(want)));
		return -1;
	}
	if (st->owner != geteuid()) {
		errf("create", name, "exists, owned by %s, not by you",
		     user_name(st->owner, user, sizeof(user)));
		return -1;
	}
	if (st->mode != q->mode) {
		errf("create", name, "exists with mode %04o, not %04o",
		     st->mode, q->mode);
		return -1;
	}
	if (!(st->flags & SHMK_F_KEEP)) {
		errf("create", name,
		     "exists, but not as a kept object: its creator (pid %d, "
		     "%s) shuts it down when it closes it; shmk rm it first",
		     (int)st->creator_pid,
		     st->creator_alive ? "alive" : "gone");
		return -1;
	}
	if (st->state != SHMK_STATE_READY) {
		errf("create", name, "exists and is %s; shmk rm it first",
		     st->state == SHMK_STATE_SHUTDOWN ? "shut down"
						      : "not ready");
		return -1;
	}
	return 0;
}

static int cmd_create(int argc, char **argv)
{
	static struct shmk_stat st;
	struct create_req q = {0};
	struct shmk_opts o = {0};
	char geom[256], ak[48];
	int rc, src = 0;

	rc = create_options(&q, argc, argv);
	if (rc >= 0)
		return rc;
	o.mode = q.mode;
	o.flags = SHMK_F_KEEP;
	rc = create_call(&q, &o, &st, &src);
	geom_of(q.k->kind, q.geom, q.ngeom, geom, sizeof(geom));
	if (!rc) {
		if (q.verbose)
			printf("created %s %s (%s, mode %04o, keep)\n",
			       q.k->name, q.name, geom, q.mode);
		return EXIT_OK;
	}
	if (rc == -EEXIST && !q.open_or_create) {
		errf("create", q.name,
		     "exists; shmk rm it first or use --open-or-create");
		return EXIT_FAIL;
	}
	if (rc != -EEXIST) {
		if (rc == -EINVAL)
			errf("create", q.name,
			     "%s (a bad name, or %s of %s past the library's "
			     "limits)",
			     shmk_strerror(rc),
			     a_kind(q.k->name, ak, sizeof(ak)), geom);
		else
			err_rc("create", q.name, rc);
		return EXIT_FAIL;
	}
	/*
	 * It exists: open it as the library's open-or-create does (same
	 * kind and geometry, else -EPROTO), then see that it is what this
	 * command would have made.  An object meant to be writable by
	 * group or others is opened as such.
	 */
	o.flags |= SHMK_F_OPEN_OR_CREATE;
	if (q.mode & 022)
		o.flags |= SHMK_F_ALLOW_SHARED;
	rc = create_call(&q, &o, &st, &src);
	if (rc == -EPROTO || rc == -EACCES) {
		/* Another kind, geometry, owner or mode: say which. */
		src = shmk_stat(q.name, &st);
		if (src < 0) {
			err_rc("create", q.name, src);
			return EXIT_FAIL;
		}
		if (create_same(&q, &st) < 0)
			return EXIT_FAIL;
	}
	if (rc < 0) {
		err_rc("create", q.name, rc);
		return EXIT_FAIL;
	}
	if (src < 0) {
		err_rc("create", q.name, src);
		return EXIT_FAIL;
	}
	if (create_same(&q, &st) < 0)
		return EXIT_FAIL;
	if (q.verbose)
		printf("%s exists as asked (%s %s, mode %04o, keep): left as "
		       "it is\n",
		       q.name, q.k->name, geom, q.mode);
	return EXIT_OK;
}

/* ---------------------------------------------------------------------
 * rm, gc
 * --------------------------------------------------------------------- */

static int cmd_rm(int argc, char **argv)
{
	static const struct option longs[] = {{"force", no_argument, NULL, 'f'},
					      {"help", no_argument, NULL, 'h'},
					      {NULL, 0, NULL, 0}};
	int c, i, rc, force = 0, status = EXIT_OK;

	optind = 0;
	while ((c = next_opt("rm", argc, argv, ":hf", longs)) != -1) {
		if (c == 'h')
			return help_of("rm");
		if (c != 'f')
			return EXIT_USAGE;
		force = 1;
	}
	if (optind == argc) {
		usage_error("rm", "which object? (a NAME is needed)");
		return EXIT_USAGE;
	}
	for (i = optind; i < argc; i++) {
		rc = force ? shmk_unlink_force(argv[i]) : shmk_unlink(argv[i]);
		if (rc < 0) {
			err_rc("rm", argv[i], rc);
			status = EXIT_FAIL;
		}
	}
	return status;
}

/* Nobody has it open: its creator and every participant are gone, as
 * the kernel says (their liveness locks are free).  A kept object is
 * meant to be unattended (shmk create): never abandoned. */
static int abandoned(const struct shmk_stat *st)
{
	int i;

	if (st->creator_alive || (st->flags & SHMK_F_KEEP))
		return 0;
	for (i = 0; i < st->nparts; i++)
		if (st->part[i].alive)
			return 0;
	return 1;
}

static int cmd_gc(int argc, char **argv)
{
	static const struct option longs[] = {
		{"dry-run", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	static struct shmk_stat st;
	int c, i, rc, dry = 0, status = EXIT_OK, others = 0;
	char **names, path[4096], kind[32];
	uid_t me = geteuid();
	struct stat fs;
	size_t n, k;

	optind = 0;
	while ((c = next_opt("gc", argc, argv, ":hn", longs)) != -1) {
		if (c == 'h')
			return help_of("gc");
		if (c != 'n')
			return EXIT_USAGE;
		dry = 1;
	}
	rc = list_names(&names, &n);
	if (rc < 0) {
		err_rc("gc", SHM_DIR, rc);
		return EXIT_FAIL;
	}
	for (k = 0; k < n; k++) {
		const char *name = names[k];

		if (optind < argc) {
			for (i = optind; i < argc; i++)
				if (!fnmatch(argv[i], name, 0))
					break;
			if (i == argc)
				continue;
		}
		/* Other users' objects are none of our business (nor could
		 * we remove them: /dev/shm is sticky).  Named if asked for
		 * by a pattern, else counted. */
		backing_path(name, path, sizeof(path));
		if (lstat(path, &fs) < 0 || !S_ISREG(fs.st_mode))
			continue;
		if (fs.st_uid != me) {
			if (optind < argc)
				errf("gc", name,
				     "left alone: owned by uid %u, not by you",
				     (unsigned)fs.st_uid);
			others++;
			continue;
		}
		rc = shmk_stat(name, &st);
		if (rc == -EPROTO || rc == -EBADMSG) {
			/* Nobody can use it, but its state is unknown: the
			 * owner decides (the header may be a peer's doing). */
			errf("gc", name,
			     "left alone: corrupt (%s); 'shmk rm --force %s' "
			     "removes it",
			     shmk_strerror(rc), name);
			continue;
		}
		if (rc < 0) {
			errf("gc", name, "left alone: %s", shmk_strerror(rc));
			continue;
		}
		if (st.owner != me || !abandoned(&st))
			continue;
		if (dry) {
			printf("would remove %s (%s, creator pid %d gone, "
			       "%d participant(s), none alive)\n",
			       name, kind_str(st.kind, kind, sizeof(kind)),
			       (int)st.creator_pid, st.nparts);
			continue;
		}
		/* Look again just before: someone may have opened it since.
		 * (One who opens it between this look and the unlink keeps
		 * a working object whose name is gone.) */
		rc = shmk_stat(name, &st);
		if (rc < 0 || !abandoned(&st))
			continue;
		rc = shmk_unlink(name);
		if (rc < 0) {
			err_rc("gc", name, rc);
			status = EXIT_FAIL;
			continue;
		}
		printf("removed %s (%s, creator pid %d gone, %d "
		       "participant(s), none alive)\n",
		       name, kind_str(st.kind, kind, sizeof(kind)),
		       (int)st.creator_pid, st.nparts);
	}
	free_names(names, n);
	if (others && optind == argc)
		errf("gc", SHM_DIR,
		     "left alone %d object(s) of other users (gc removes "
		     "only your own)",
		     others);
	return status;
}

/* ---------------------------------------------------------------------
 * help, version, the command table
 * --------------------------------------------------------------------- */

static int cmd_help(int argc, char **argv);

/*
 * bench runs the benchmark program, shmk-bench: beside this program in
 * the build tree (bench/shmk-bench) or where it is installed, else on
 * PATH.  Its options are its own.
 */
static int cmd_bench(int argc, char **argv)
{
	char exe[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	static const char *const rel[] = {"bench/shmk-bench", "shmk-bench"};

	(void)argc;
	argv[0] = (char *)"shmk-bench";
	if (n > 0) {
		exe[n] = 0;
		*strrchr(exe, '/') = 0;
		for (size_t i = 0; i < 2; i++) {
			snprintf(path, sizeof(path), "%s/%s", exe, rel[i]);
			if (access(path, X_OK) == 0) {
				execv(path, argv);
				break;
			}
		}
	}
	execvp("shmk-bench", argv);
	fprintf(stderr,
		"shmk bench: cannot run shmk-bench (%s): it is built with "
		"shmk (bench/) and installed beside it\n",
		strerror(errno));
	return EXIT_FAIL;
}

static int cmd_version(int argc, char **argv)
{
	int rc = no_options("version", argc, argv);

	if (rc >= 0)
		return rc;
	if (optind < argc) {
		usage_error("version", "takes no operands");
		return EXIT_USAGE;
	}
	printf("shmk %s\n", SHMK_VERSION_STRING);
	return EXIT_OK;
}

/* The options send and recv share; what is waited for each message. */
#define XFER_HELP(what)                                                        \
	"  --create          create the ring if it does not exist (either "    \
	"side may;\n"                                                          \
	"                    both sides must then give the same geometry)\n"   \
	"  --nodes N         with --create: nodes in the ring (default 64)\n"  \
	"  --node-size SIZE  with --create: bytes per node (default 64K)\n"    \
	"  --mode OCTAL      with --create: permission bits (default 0600)\n"  \
	"  --timeout MS      how long to wait for the ring to appear and, "    \
	"for each\n"                                                           \
	"                    message, for " what "; -1 (the default)\n"        \
	"                    waits forever, 0 does not wait"

static const struct cmd commands[] = {
	{"ls", "[--json]", "list the objects in " SHM_DIR,
	 "Lists every shmk object in " SHM_DIR ": name, kind, size of the\n"
	 "region, mode, owner, the creator's pid and whether it still has\n"
	 "the object open, state, how many processes have it open, its\n"
	 "flags ('keep': made to outlive its creator, as 'shmk create' makes\n"
	 "them; '-': none) and its geometry (a ring's reader lag too; a\n"
	 "topic's policy and its slowest subscriber's lag).  An entry that\n"
	 "is not a readable shmk object is listed with the reason.\n"
	 "Persisted objects (files) live elsewhere: use 'shmk info PATH'.\n"
	 "\n"
	 "  --json  one JSON document: {\"objects\": [...]}, each object as\n"
	 "          'shmk info --json' prints it (with \"error\" instead when\n"
	 "          it cannot be described)",
	 cmd_ls},
	{"info", "[--json] NAME...", "describe objects",
	 "Prints the header of each object without attaching to it: kind,\n"
	 "state, flags (keep: made to outlive its creator), owner and mode,\n"
	 "sizes, geometry, creator, participants (whether each is alive, as\n"
	 "the kernel says), counters and, for a ring, the reader lag\n"
	 "(messages reserved and not yet taken); for a topic, its policy,\n"
	 "the messages it holds and its live subscribers, the slowest named\n"
	 "by pid with its lag (on a lossless topic, the one publishers wait\n"
	 "for).\n"
	 "NAME is a plain name (an object in " SHM_DIR ") or a file path.\n"
	 "\n"
	 "  --json  one JSON document: {\"objects\": [...]} with name, path,\n"
	 "          kind, state, keep (true or false), mode, owner, sizes,\n"
	 "          geometry, creator, participants, counters (and lag: a\n"
	 "          ring's, a topic's slowest subscriber's); an object\n"
	 "          that cannot be described has \"error\" and the exit\n"
	 "          status is 1",
	 cmd_info},
	{"watch", "[--interval MS] [--count N] NAME...", "live rates",
	 "Shows, once a second, what each object did since the last look,\n"
	 "from the difference of two snapshots (shmk_stat; nothing is\n"
	 "attached): MSG/S messages read per second for a ring, published\n"
	 "for a topic, writes for a buffer or array, sets for an event; MB/S\n"
	 "bytes read (a topic: published) per second (10^6); WAITS/S writers\n"
	 "that found a ring full plus readers that found it empty (a topic:\n"
	 "publishers that found no room plus subscribers that found nothing),\n"
	 "or an event's waits that returned; LAG a ring's messages waiting, a\n"
	 "topic's slowest subscriber's; ALIVE the participants alive.  A kind\n"
	 "without these columns gets every counter's rate.  On a terminal\n"
	 "the table is redrawn in place; otherwise one line per object per\n"
	 "tick.  Ctrl-C (or SIGTERM) ends it and leaves the terminal as it\n"
	 "was.\n"
	 "\n"
	 "  --interval MS  time between looks (default 1000)\n"
	 "  --count N      stop after N ticks (default: run until stopped)",
	 cmd_watch},
	{"send", "[OPTIONS] NAME", "standard input into a ring",
	 "Reads standard input and writes it into the ring NAME as\n"
	 "messages: one per line by default (the newline is not sent; a\n"
	 "last line without one is sent too).  A message longer than a node\n"
	 "is an error that names the line, chunk or frame: nothing is ever\n"
	 "truncated, and what came before it has been sent.\n"
	 "\n"
	 "At the end of input send shuts the ring down (shmk_ring_shutdown)\n"
	 "so that readers take what is left and stop; it does so however it\n"
	 "ends (an error, SIGINT, SIGTERM) unless --no-shutdown.  A shut-\n"
	 "down ring stays shut down: later writers fail, later readers drain\n"
	 "it and stop.  Remove it with 'shmk rm NAME' (or let the program\n"
	 "that created it remove it) before using the name again.\n"
	 "\n"
	 "  --chunk SIZE      messages of SIZE bytes (K, M, G suffixes), the\n"
	 "                    last one shorter if the input ends so\n"
	 "  --frames          length-prefixed frames: a 4-byte little-endian\n"
	 "                    length, then that many bytes\n"
	 "  --no-shutdown     leave the ring open at the end (for a ring "
	 "other\n"
	 "                    writers still use; the creator's close shuts it\n"
	 "                    down anyway, so with --create it has no effect\n"
	 "                    when send made the ring: make a ring that\n"
	 "                    outlives its sends with 'shmk create "
	 "ring')\n" XFER_HELP("a free node"),
	 cmd_send},
	{"recv", "[OPTIONS] NAME", "a ring to standard output",
	 "Takes messages from the ring NAME and writes them to standard\n"
	 "output, each as send reads it in the same mode: a line (the\n"
	 "message and a newline), raw bytes (--chunk), or a frame (--frames:\n"
	 "4-byte little-endian length, then the bytes).  When the ring is\n"
	 "shut down and drained recv exits 0.  A ring stays shut down once it\n"
	 "is: remove it ('shmk rm NAME') before using the name again.  Each\n"
	 "message is taken from the ring as it is written out: with several\n"
	 "readers, each gets some of the messages.\n"
	 "\n"
	 "  --chunk SIZE      write messages as raw bytes (SIZE, as send's,\n"
	 "                    is checked but not needed to write them)\n"
	 "  --frames          write length-prefixed frames\n" XFER_HELP(
		 "a message"),
	 cmd_recv},
	{"pub", "[OPTIONS] NAME", "standard input to a topic's subscribers",
	 "Reads standard input and publishes it to the topic NAME as\n"
	 "messages, framed as 'shmk send' frames them: one per line by\n"
	 "default (the newline is not sent), --chunk or --frames.  Every\n"
	 "subscriber ('shmk sub') gets every message, in one order.  A "
	 "message\n"
	 "longer than the topic's max_msg is an error that names it: nothing\n"
	 "is ever truncated, and what came before it has been published.\n"
	 "\n"
	 "If NAME does not exist, pub creates it (--capacity, --max-msg,\n"
	 "--lossy, --mode) and is its creator.  If it exists, it must have\n"
	 "the geometry options given.  A subscriber gets only what is\n"
	 "published after it subscribed (unless it asks for history):\n"
	 "--subscribers N waits for N of them before the first message.  A\n"
	 "lossless topic (the default) makes pub wait for its slowest\n"
	 "subscriber; a lossy one overwrites what they have not taken.\n"
	 "\n"
	 "At the end of input pub shuts the topic down (shmk_topic_shutdown)\n"
	 "so that subscribers take what is left and stop; it does so however\n"
	 "it ends (an error, SIGINT, SIGTERM) unless --no-shutdown.  A shut-\n"
	 "down topic stays shut down: remove it with 'shmk rm NAME' before\n"
	 "using the name again.\n"
	 "\n"
	 "  --chunk SIZE       messages of SIZE bytes, the last one shorter "
	 "if\n"
	 "                     the input ends so\n"
	 "  --frames           length-prefixed frames: a 4-byte little-endian\n"
	 "                     length, then that many bytes\n"
	 "  --subscribers N    wait for N live subscribers before the first\n"
	 "                     message (default 0: do not wait)\n"
	 "  --no-shutdown      leave the topic open at the end (no effect "
	 "when\n"
	 "                     pub created it: its creator's exit shuts it\n"
	 "                     down; make one that outlives its publishers\n"
	 "                     with 'shmk create topic')\n"
	 "  --capacity SIZE    bytes of the log, a power of two from 4K to "
	 "16G\n"
	 "                     (default 4M)\n"
	 "  --max-msg SIZE     the longest message, at most capacity / 2\n"
	 "                     (default 64K, or that if less)\n"
	 "  --lossy            overwrite the oldest messages rather than wait\n"
	 "                     for slow subscribers\n"
	 "  --mode OCTAL       permission bits of a topic pub creates "
	 "(default\n"
	 "                     0600)\n"
	 "  --timeout MS       how long to wait for the subscribers and, for\n"
	 "                     each message, for room; -1 (the default) waits\n"
	 "                     forever, 0 does not wait\n"
	 "\n"
	 "One producer into three consumers:\n"
	 "  shmk sub feed > a & shmk sub feed > b & shmk sub feed > c &\n"
	 "  seq 100000 | shmk pub --subscribers 3 feed\n"
	 "  wait; shmk rm feed",
	 cmd_pub},
	{"sub", "[OPTIONS] NAME", "a topic to standard output",
	 "Subscribes to the topic NAME and writes each message published to\n"
	 "it from then on to standard output, as 'shmk recv' writes a ring's:\n"
	 "a line (the message and a newline), raw bytes (--chunk) or a frame\n"
	 "(--frames).  Every subscriber gets every message, in the one order\n"
	 "they all see.  If NAME does not exist yet, sub waits for it.  When\n"
	 "the topic is shut down and drained, sub exits 0.\n"
	 "\n"
	 "A lossless topic waits for its slowest subscriber ('shmk info' "
	 "names\n"
	 "it).  A lossy topic overwrites what a subscriber has not taken yet:\n"
	 "sub then says on standard error how many messages it lost and "
	 "before\n"
	 "which message of its output, and goes on from the oldest still held\n"
	 "(one such line a second at most, the rest at the end).  The exit\n"
	 "status stays 0: losing the oldest is a lossy topic's policy.\n"
	 "\n"
	 "  --history K|all  first the last K messages the topic still holds\n"
	 "                   (all: every one), then the new ones (default 0)\n"
	 "  --latest         write the newest message held and exit, without\n"
	 "                   subscribing (exit 1 if it holds none)\n"
	 "  --chunk SIZE     write messages as raw bytes\n"
	 "  --frames         write length-prefixed frames\n"
	 "  --timeout MS     how long to wait for the topic to appear and for\n"
	 "                   each message; -1 (the default) waits forever, 0\n"
	 "                   does not wait",
	 cmd_sub},
	{"create", "KIND NAME [OPTIONS]", "create an object for others to use",
	 "Creates the object NAME of KIND (ring, topic, buffer, array or\n"
	 "event) for other programs to open, and exits.  The object is kept\n"
	 "(SHMK_F_KEEP): it stays ready after the tool exits, nobody's close\n"
	 "shuts it down, and 'shmk gc' leaves it alone; 'shmk rm NAME'\n"
	 "removes it ('shmk send' and 'shmk pub' still shut a ring or topic\n"
	 "down at the end of their input, unless --no-shutdown).  Prints\n"
	 "nothing on success unless --verbose.  An rpc object is not created\n"
	 "this way: its server process makes and owns it (shmk_rpc_serve).\n"
	 "\n"
	 "  ring    --nodes N         nodes (at least 2; default 64)\n"
	 "          --node-size SIZE  bytes per node (default 64K)\n"
	 "          --single-writer   one writing handle at a time (faster\n"
	 "          --single-reader   small messages); one reading handle\n"
	 "  topic   --capacity SIZE   bytes of the log, a power of two from "
	 "4K\n"
	 "                            to 16G (default 4M)\n"
	 "          --max-msg SIZE    the longest message, at most capacity /\n"
	 "                            2 - 64 (default 64K, or that if less)\n"
	 "          --lossy           overwrite the oldest messages rather\n"
	 "                            than wait for slow subscribers\n"
	 "  buffer  --size SIZE       bytes (needed)\n"
	 "  array   --count N         elements (needed)\n"
	 "          --elem-size SIZE  bytes per element (needed)\n"
	 "  event   --manual-reset    a set releases every waiter and stays\n"
	 "                            set until reset (default: auto-reset)\n"
	 "          --set             start set\n"
	 "  --mode OCTAL      permission bits, 0600 to 0777 (default 0600);\n"
	 "                    no read without write for group or others\n"
	 "  --open-or-create  if NAME exists as this command would make it\n"
	 "                    (kind, geometry, mode, owner, kept, not shut\n"
	 "                    down), succeed and leave it as it is; else fail\n"
	 "                    and say what differs (--set is not applied to\n"
	 "                    an existing event)\n"
	 "  --verbose, -v     say what was done\n"
	 "\n"
	 "Sizes and counts take K, M, G, T suffixes.  Exit status 1 if NAME\n"
	 "exists (without --open-or-create: 'shmk rm' it first) or the\n"
	 "library refuses, 2 on a usage error.",
	 cmd_create},
	{"check", "NAME...", "validate objects",
	 "Checks each object with what the public API offers and says what\n"
	 "is wrong, if anything:\n"
	 "  - its header, read and validated as an open would (shmk_stat):\n"
	 "    magic, kind, format version, sizes against the file, geometry,\n"
	 "    state; a name in state init; more than one creator; a shut-down\n"
	 "    object whose creator is alive; who may open it (owner, mode);\n"
	 "  - an open of its kind (the header validated again, mapped);\n"
	 "  - buffer, array: the read lock taken and released once (a\n"
	 "    corrupt lock word fails; a dead writer's mark is a warning);\n"
	 "    this also recovers a lock a dead process held, as any locker\n"
	 "    would;\n"
	 "  - ring: the geometry as opened, and its counters "
	 "(shmk_ring_stats):\n"
	 "    read + lost <= written, bytes_read <= bytes_written, bytes\n"
	 "    within count x node size, lag <= nodes, high_water <= nodes;\n"
	 "  - topic: the geometry as opened, and its counters (shmk_stat):\n"
	 "    bytes published and delivered within count x max_msg, held <=\n"
	 "    the messages the log holds and, if lossless, lost = 0 and the\n"
	 "    slowest subscriber's lag <= the same; the slowest is named.\n"
	 "  Counters are summed without a lock, so a relation counts as\n"
	 "  broken only if it is in 5 snapshots 20 ms apart.\n"
	 "It does not read the data, the ring's or topic's descriptors or the\n"
	 "participant blocks (the public API has no access to them), and it\n"
	 "attaches to the object for a moment, as any peer does.  Exit\n"
	 "status 0 if every object is ok (warnings allowed), 1 otherwise.",
	 cmd_check},
	{"rm", "[--force] NAME...", "remove objects' names",
	 "Removes the name of each object.  Processes that have it open keep\n"
	 "using it; its memory is freed when the last one closes.  Only shmk\n"
	 "objects are removed: any other file at a name is left alone.\n"
	 "\n"
	 "  --force, -f  remove any regular file of yours at the name, also\n"
	 "               one whose header was overwritten (shmk gc names\n"
	 "               such objects)",
	 cmd_rm},
	{"gc", "[--dry-run] [PATTERN...]", "remove abandoned objects",
	 "Removes the objects of " SHM_DIR " that nobody has open any more:\n"
	 "owned by the caller's effective uid, with the creator and every\n"
	 "participant gone (as the kernel says: their liveness locks are\n"
	 "free; a pid is never trusted).  Prints each one removed.  Kept\n"
	 "objects (made with SHMK_F_KEEP, as 'shmk create' makes them; FLAGS\n"
	 "keep in 'shmk ls') are meant to be unattended and are left alone:\n"
	 "remove them with 'shmk rm'.  Objects that cannot be read are left\n"
	 "alone and named on standard error, a corrupt one with the command\n"
	 "that removes it (shmk rm --force); persisted objects (files) are\n"
	 "not looked at.  Other users' objects are left alone: named on\n"
	 "standard error if a PATTERN matches them, else counted there.\n"
	 "Just before removing an object gc looks again; a process that\n"
	 "opens it in the moment between keeps a working object whose name\n"
	 "is gone.\n"
	 "\n"
	 "  --dry-run, -n  print what would be removed, remove nothing\n"
	 "  PATTERN        only names matching one of these shell patterns\n"
	 "                 (without the shmk. prefix; quote them)",
	 cmd_gc},
	{"bench", "[OPTIONS]", "measure shmk beside pipes, sockets, peers",
	 "Measures shmk on this machine beside the transports it replaces:\n"
	 "the ring's bandwidth by node count (the original library's chart),\n"
	 "throughput by message size and 64-byte round trips of shmk, a pipe,\n"
	 "UNIX sockets, a POSIX message queue, TCP and peer libraries built\n"
	 "as plugins (`make bench-peers`), then the ratios.  Every message is\n"
	 "verified.  About a minute.  'shmk bench --help' lists its options\n"
	 "(--full, --only, --csv, --json, --plot DIR, ...).",
	 cmd_bench},
	{"version", "", "print the version", "Prints shmk's version.",
	 cmd_version},
	{"help", "[COMMAND]", "show help",
	 "Shows the list of commands, or the help of one.", cmd_help},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

const struct cmd *cmd_find(const char *name)
{
	size_t i;

	for (i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void main_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: shmk COMMAND [ARGS]\n\n"
		   "Inspect, manage and feed shmk shared-memory objects.\n\n"
		   "Commands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-8s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(f, "\nEvery command takes --help.  Exit status: 0 success, 1 "
		   "failure, 2 usage error.\n");
}

static int cmd_help(int argc, char **argv)
{
	const struct cmd *c;
	int rc = no_options("help", argc, argv);

	if (rc >= 0)
		return rc;
	if (optind == argc) {
		main_usage(stdout);
		return EXIT_OK;
	}
	c = cmd_find(argv[optind]);
	if (!c) {
		usage_error("help", "no such command");
		return EXIT_USAGE;
	}
	print_help(c);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	const struct cmd *c;

	if (argc < 2) {
		main_usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		main_usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version"))
		return cmd_version(1, argv + 1);
	c = cmd_find(argv[1]);
	if (!c) {
		fprintf(stderr, "shmk: unknown command '%s'\n\n", argv[1]);
		main_usage(stderr);
		return EXIT_USAGE;
	}
	return c->run(argc - 1, argv + 1);
}
