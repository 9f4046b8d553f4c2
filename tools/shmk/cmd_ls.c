/* SPDX-License-Identifier: MIT */
/*
 * ls, info: list the objects in /dev/shm, describe objects.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "shmk.h"

#include "cli.h"
#include "json.h"
#include "object.h"

/* One object as info --json and ls --json print it; rc < 0: an object
 * that could not be described, with the reason. */
static void json_describe(struct json *j, const char *name,
			  const struct shmk_stat *st, int rc)
{
	char path[4096 + 16], buf[64], user[64];
	int i, lag;

	json_open_object(j, NULL);
	json_str(j, "name", name);
	/* A bad name has no file to give. */
	if (!shmk_path(name, path, sizeof(path)))
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

/* "nodes=8 node_size=4096 lag=0": the geometry, and a ring's lag (a
 * topic's slowest subscriber's). */
static const char *geom_str(const struct shmk_stat *st, char *buf, size_t cap)
{
	size_t len;
	int lag;

	len = strlen(
		geom_of(st->kind, st->geom, st->ngeom, st->flags, buf, cap));
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

static int run_ls(int argc, char **argv)
{
	static struct shmk_stat st;
	struct json j;
	char **names;
	int json = 0, rc;
	size_t n, i;
	const struct opt opts[] = {
		{"json", .short_name = 'j', .type = OPT_FLAG, .flag = &json,
		 .to = 1},
		{.name = NULL},
	};

	rc = parse_opts("ls", argc, argv, opts, NULL);
	if (rc >= 0)
		return rc;
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
	int lossy = !!(st->flags & SHMK_F_LOSSY);

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

	printf("name:         %s\n", name);
	if (!shmk_path(name, path, sizeof(path)))
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
	printf("geometry:     %s\n", geom_of(st->kind, st->geom, st->ngeom,
					     st->flags, buf, sizeof(buf)));
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

static int run_info(int argc, char **argv)
{
	static struct shmk_stat st;
	struct json j;
	int i, rc, json = 0, status = EXIT_OK;
	const struct opt opts[] = {
		{"json", .short_name = 'j', .type = OPT_FLAG, .flag = &json,
		 .to = 1},
		{.name = NULL},
	};

	rc = parse_opts("info", argc, argv, opts, NULL);
	if (rc >= 0)
		return rc;
	if (optind == argc)
		return no_name("info");
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

const struct cmd cmd_ls = {
	.name = "ls",
	.args = "[--json]",
	.summary = "list the objects in " SHM_DIR,
	.help = "Lists every shmk object in " SHM_DIR
		": name, kind, size of the\n"
		"region, mode, owner, the creator's pid and whether it still "
		"has\n"
		"the object open, state, how many processes have it open, its\n"
		"flags ('keep': made to outlive its creator, as 'shmk create' "
		"makes\n"
		"them; '-': none) and its geometry (a ring's reader lag too; "
		"a\n"
		"topic's policy and its slowest subscriber's lag).  An entry "
		"that\n"
		"is not a readable shmk object is listed with the reason.\n"
		"Persisted objects (files) live elsewhere: use 'shmk info "
		"PATH'.\n"
		"\n"
		"  --json  one JSON document: {\"objects\": [...]}, each "
		"object as\n"
		"          'shmk info --json' prints it (with \"error\" "
		"instead when\n"
		"          it cannot be described)",
	.run = run_ls,
};

const struct cmd cmd_info = {
	.name = "info",
	.args = "[--json] NAME...",
	.summary = "describe objects",
	.help = "Prints the header of each object without attaching to it: "
		"kind,\n"
		"state, flags (keep: made to outlive its creator), owner and "
		"mode,\n"
		"sizes, geometry, creator, participants (whether each is "
		"alive, as\n"
		"the kernel says), counters and, for a ring, the reader lag\n"
		"(messages reserved and not yet taken); for a topic, its "
		"policy,\n"
		"the messages it holds and its live subscribers, the slowest "
		"named\n"
		"by pid with its lag (on a lossless topic, the one publishers "
		"wait\n"
		"for).\n"
		"NAME is a plain name (an object in " SHM_DIR
		") or a file path.\n"
		"\n"
		"  --json  one JSON document: {\"objects\": [...]} with name, "
		"path,\n"
		"          kind, state, keep (true or false), mode, owner, "
		"sizes,\n"
		"          geometry, creator, participants, counters (and lag: "
		"a\n"
		"          ring's, a topic's slowest subscriber's); an object\n"
		"          that cannot be described has \"error\" and the "
		"exit\n"
		"          status is 1",
	.run = run_info,
};
