/* SPDX-License-Identifier: MIT */
/*
 * check: validate objects with what the public API offers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shmk.h"

#include "cli.h"
#include "object.h"

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

/*
 * A finding for each of the n invariants what[] names but those in skip:
 * FAIL if broken in every snapshot (always), else ok, with a note if it
 * was broken in one (seen) while the object (a "ring", a "topic") was busy.
 */
static void report_invariants(struct checker *k, const char *const *what, int n,
			      unsigned always, unsigned seen, unsigned skip,
			      const char *object)
{
	int i;

	for (i = 0; i < n; i++) {
		if (skip & (1u << i))
			continue;
		if (always & (1u << i))
			finding(k, "FAIL", "%s does not hold", what[i]);
		else if (seen & (1u << i))
			finding(k, "ok",
				"%s (broken in one snapshot only: the %s is "
				"busy)",
				what[i], object);
		else
			finding(k, "ok", "%s", what[i]);
	}
}

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
	report_invariants(k, what, NINV, always, seen, 0, "ring");
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
	int lossy = !!(st->flags & SHMK_F_LOSSY);
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
	int i, rc, lossy = !!(st->flags & SHMK_F_LOSSY);
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
			geom_of(st->kind, st->geom, st->ngeom, st->flags, geom,
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
	report_invariants(k, what, NTINV, always, seen,
			  lossy ? 1u << TINV_LOST | 1u << TINV_LAG : 0,
			  "topic");
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

static int run_check(int argc, char **argv)
{
	int i, rc, status = EXIT_OK;

	rc = no_options("check", argc, argv);
	if (rc >= 0)
		return rc;
	if (optind == argc)
		return no_name("check");
	for (i = optind; i < argc; i++)
		if (check_one(argv[i]) != EXIT_OK)
			status = EXIT_FAIL;
	return status;
}

const struct cmd cmd_check = {
	.name = "check",
	.args = "NAME...",
	.summary = "validate objects",
	.help = "Checks each object with what the public API offers and says "
		"what\n"
		"is wrong, if anything:\n"
		"  - its header, read and validated as an open would "
		"(shmk_stat):\n"
		"    magic, kind, format version, sizes against the file, "
		"geometry,\n"
		"    state; a name in state init; more than one creator; a "
		"shut-down\n"
		"    object whose creator is alive; who may open it (owner, "
		"mode);\n"
		"  - an open of its kind (the header validated again, "
		"mapped);\n"
		"  - buffer, array: the read lock taken and released once (a\n"
		"    corrupt lock word fails; a dead writer's mark is a "
		"warning);\n"
		"    this also recovers a lock a dead process held, as any "
		"locker\n"
		"    would;\n"
		"  - ring: the geometry as opened, and its counters "
		"(shmk_ring_stats):\n"
		"    read + lost <= written, bytes_read <= bytes_written, "
		"bytes\n"
		"    within count x node size, lag <= nodes, high_water <= "
		"nodes;\n"
		"  - topic: the geometry as opened, and its counters "
		"(shmk_stat):\n"
		"    bytes published and delivered within count x max_msg, "
		"held <=\n"
		"    the messages the log holds and, if lossless, lost = 0 and "
		"the\n"
		"    slowest subscriber's lag <= the same; the slowest is "
		"named.\n"
		"  Counters are summed without a lock, so a relation counts "
		"as\n"
		"  broken only if it is in 5 snapshots 20 ms apart.\n"
		"It does not read the data, the ring's or topic's descriptors "
		"or the\n"
		"participant blocks (the public API has no access to them), "
		"and it\n"
		"attaches to the object for a moment, as any peer does.  Exit\n"
		"status 0 if every object is ok (warnings allowed), 1 "
		"otherwise.",
	.run = run_check,
};
