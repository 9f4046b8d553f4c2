/* SPDX-License-Identifier: MIT */
/*
 * object.c - what the tool says about an object: its kind, geometry and
 * counters by name, sizes, users and times, and the names of the objects.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shmk.h"

#include "object.h"

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *user_name(uid_t uid, char *buf, size_t cap)
{
	struct passwd *pw = getpwuid(uid);

	if (pw)
		snprintf(buf, cap, "%s", pw->pw_name);
	else
		snprintf(buf, cap, "%u", (unsigned)uid);
	return buf;
}

const char *human_size(uint64_t n, char *buf, size_t cap)
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

const char *time_str(uint64_t ns, char *buf, size_t cap)
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;

	if (!ns || !localtime_r(&t, &tm) ||
	    !strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, cap, "-");
	return buf;
}

/* name, or else prefix and i in buf. */
static const char *name_or(const char *name, const char *prefix, int i,
			   char *buf, size_t cap)
{
	if (name)
		return name;
	snprintf(buf, cap, "%s%d", prefix, i);
	return buf;
}

/* Names of a kind's geometry fields and counters; a kind this tool does
 * not know (a newer library's) still has names, or gets "geomN". */
const char *geom_name(int kind, int i, char *buf, size_t cap)
{
	return name_or(shmk_stat_geom_name(kind, i), "geom", i, buf, cap);
}

const char *counter_name(int kind, int i, char *buf, size_t cap)
{
	return name_or(shmk_stat_counter_name(kind, i), "counter", i, buf, cap);
}

/* Index of the counter called name in st, or -1. */
int counter_index(const struct shmk_stat *st, const char *name)
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
int lag_index(const struct shmk_stat *st)
{
	int i = counter_index(st, "lag");

	return i >= 0 || st->kind != SHMK_KIND_TOPIC
		       ? i
		       : counter_index(st, "slowest_lag");
}

/* The counter called name in st, or 0 if st has none of that name. */
uint64_t counter_of(const struct shmk_stat *st, const char *name)
{
	int i = counter_index(st, name);

	return i >= 0 ? st->counter[i] : 0;
}

const char *kind_str(int kind, char *buf, size_t cap)
{
	const char *n = shmk_kind_name(kind);

	if (strcmp(n, "?") != 0)
		return n;
	snprintf(buf, cap, "kind%d", kind);
	return buf;
}

/* "a ring", "an array". */
const char *a_kind(const char *kind, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s %s", strchr("aeiou", kind[0]) ? "an" : "a",
		 kind);
	return buf;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void free_names(char **names, size_t n)
{
	while (n)
		free(names[--n]);
	free(names);
}

struct name_list {
	char **names;
	size_t n, cap;
};

/* shmk_list()'s callback: keeps a copy of name. */
static int add_name(const char *name, void *arg)
{
	struct name_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 32;
		char **nn = realloc(l->names, cap * sizeof(*nn));

		if (!nn)
			return -ENOMEM;
		l->names = nn;
		l->cap = cap;
	}
	l->names[l->n] = strdup(name);
	if (!l->names[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

/* The names of the objects shmk_list() gives, sorted, in *out and their
 * number in *count.  Returns 0 or a negative errno. */
int list_names(char ***out, size_t *count)
{
	struct name_list l = {0};
	int rc;

	*out = NULL;
	*count = 0;
	rc = shmk_list(add_name, &l);
	if (rc < 0) {
		free_names(l.names, l.n);
		return rc;
	}
	if (l.n)
		qsort(l.names, l.n, sizeof(*l.names), cmp_str);
	*out = l.names;
	*count = l.n;
	return 0;
}

int geom_is_mode(int kind, int i)
{
	const char *n = shmk_stat_geom_name(kind, i);

	return n && ((kind == SHMK_KIND_RING && !strcmp(n, "single")) ||
		     (kind == SHMK_KIND_TOPIC && !strcmp(n, "lossy")));
}

/* "nodes=8 node_size=4096": the geometry asked for or found.  A ring's
 * mode, from flags, reads "single=writer" (or reader, or writer+reader),
 * and is left out for a ring of many writers and readers; a topic's
 * policy, from flags too, reads "lossless" or "lossy". */
const char *geom_of(int kind, const uint64_t *geom, int n, unsigned flags,
		    char *buf, size_t cap)
{
	const unsigned sw = flags & SHMK_F_SINGLE_WRITER,
		       sr = flags & SHMK_F_SINGLE_READER;
	size_t len = 0;
	char nb[32];
	int i;

	buf[0] = 0;
	for (i = 0; i < n && len < cap; i++) {
		const char *name = geom_name(kind, i, nb, sizeof(nb));

		if (geom_is_mode(kind, i) && kind == SHMK_KIND_TOPIC) {
			len += (size_t)snprintf(
				buf + len, cap - len, "%s%s", i ? " " : "",
				flags & SHMK_F_LOSSY ? "lossy" : "lossless");
			continue;
		}
		if (geom_is_mode(kind, i)) {
			if (sw || sr)
				len += (size_t)snprintf(
					buf + len, cap - len, "%ssingle=%s",
					i ? " " : "",
					sw && sr ? "writer+reader"
					: sw	 ? "writer"
						 : "reader");
			continue;
		}
		len += (size_t)snprintf(buf + len, cap - len, "%s%s=%llu",
					i ? " " : "", name,
					(unsigned long long)geom[i]);
	}
	return buf;
}
