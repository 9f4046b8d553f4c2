/* SPDX-License-Identifier: MIT */
/*
 * object.c - what the tool says about an object: its kind, geometry and
 * counters by name, sizes, users and times, and the names in /dev/shm.
 */
#define _GNU_SOURCE
#include <dirent.h>
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

/* The file behind a name, as the library resolves it. */
void backing_path(const char *name, char *buf, size_t cap)
{
	if (strchr(name, '/'))
		snprintf(buf, cap, "%s", name);
	else
		snprintf(buf, cap, "%s/%s%s", SHM_DIR, SHM_PREFIX, name);
}

/* Names of a kind's geometry fields and counters; a kind this tool does
 * not know (a newer library's) still has names, or gets "geomN". */
const char *geom_name(int kind, int i, char *buf, size_t cap)
{
	const char *n = shmk_stat_geom_name(kind, i);

	if (n)
		return n;
	snprintf(buf, cap, "geom%d", i);
	return buf;
}

const char *counter_name(int kind, int i, char *buf, size_t cap)
{
	const char *n = shmk_stat_counter_name(kind, i);

	if (n)
		return n;
	snprintf(buf, cap, "counter%d", i);
	return buf;
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

/* The names of the entries shmk.* of /dev/shm, sorted, in *out and
 * their number in *count.  Returns 0 or a negative errno. */
int list_names(char ***out, size_t *count)
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
const char *geom_of(int kind, const uint64_t *geom, int n, char *buf,
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
