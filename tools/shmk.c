/* SPDX-License-Identifier: MIT */
/*
 * shmk - inspect and manage shmk objects.
 *
 *   shmk ls               list the objects in /dev/shm
 *   shmk info NAME...     describe objects
 *   shmk rm NAME...       remove objects' names
 *
 * Exit status: 0 success, 1 an operation failed, 2 usage error.  Errors go
 * to standard error and name the object and the reason.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shmk.h"

#define SHM_DIR	   "/dev/shm"
#define SHM_PREFIX "shmk."

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct command {
	const char *name;
	const char *args;
	const char *summary;
	const char *help;
	int (*run)(int argc, char **argv);
};

static const struct command *find_command(const char *name);

static void err(const char *cmd, const char *what, int rc)
{
	fprintf(stderr, "shmk %s: %s: %s\n", cmd, what, shmk_strerror(rc));
}

static void usage_error(const char *cmd, const char *msg)
{
	fprintf(stderr, "shmk %s: %s\nTry 'shmk %s --help'.\n", cmd, msg, cmd);
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

/* Returns 1 if argv holds -h/--help, -1 (after a message) for another
 * option, 0 otherwise.  "--" ends the options. */
static int scan_options(const char *cmd, int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return 0;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
		if (argv[i][0] == '-' && argv[i][1]) {
			char msg[256];

			snprintf(msg, sizeof(msg), "unknown option '%s'",
				 argv[i]);
			usage_error(cmd, msg);
			return -1;
		}
	}
	return 0;
}

/* Collects the operands (everything but a leading "--"). */
static int operands(int argc, char **argv, char ***out)
{
	int i;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			*out = argv + i + 1;
			return argc - i - 1;
		}
	*out = argv + 1;
	return argc - 1;
}

static void print_help(const struct command *c)
{
	printf("usage: shmk %s%s%s\n\n%s\n", c->name, c->args[0] ? " " : "",
	       c->args, c->help);
}

/* Common start of every command: --help, unknown options. */
static int begin(const char *cmd, int argc, char **argv)
{
	int rc = scan_options(cmd, argc, argv);

	if (rc > 0) {
		print_help(find_command(cmd));
		return EXIT_OK;
	}
	return rc < 0 ? EXIT_USAGE : -1;
}

/* ------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_ls(int argc, char **argv)
{
	char **names = NULL, **ops;
	size_t n = 0, cap = 0, i;
	struct dirent *e;
	DIR *d;
	int rc;

	rc = begin("ls", argc, argv);
	if (rc >= 0)
		return rc;
	if (operands(argc, argv, &ops) > 0) {
		usage_error("ls", "takes no operands");
		return EXIT_USAGE;
	}
	d = opendir(SHM_DIR);
	if (!d) {
		err("ls", SHM_DIR, -errno);
		return EXIT_FAIL;
	}
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, SHM_PREFIX, strlen(SHM_PREFIX)) != 0 ||
		    !e->d_name[strlen(SHM_PREFIX)])
			continue;
		if (n == cap) {
			char **nn;

			cap = cap ? cap * 2 : 32;
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
		err("ls", SHM_DIR, -ENOMEM);
		while (n)
			free(names[--n]);
		free(names);
		return EXIT_FAIL;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	printf("%-24s %-7s %10s %4s %-8s %-16s %-8s %s\n", "NAME", "KIND",
	       "SIZE", "MODE", "OWNER", "CREATOR", "STATE", "ATTACHED");
	for (i = 0; i < n; i++) {
		static struct shmk_stat st;
		char sz[32], user[32], creator[32];

		rc = shmk_stat(names[i], &st);
		if (rc < 0) {
			printf("%-24s %-7s %10s %4s %-8s %-16s %-8s (%s)\n",
			       names[i], "?", "-", "-", "-", "-", "-",
			       shmk_strerror(rc));
			free(names[i]);
			continue;
		}
		snprintf(creator, sizeof(creator), "%d %s", (int)st.creator_pid,
			 st.creator_alive ? "alive" : "gone");
		printf("%-24s %-7s %10s %04o %-8s %-16s %-8s %d\n", names[i],
		       shmk_kind_name(st.kind),
		       human_size(st.total_size, sz, sizeof(sz)), st.mode,
		       user_name(st.owner, user, sizeof(user)), creator,
		       shmk_state_name(st.state), st.nalive);
		free(names[i]);
	}
	free(names);
	return EXIT_OK;
}

static void print_info(const char *name, const struct shmk_stat *st)
{
	char path[4096 + 16], buf[64], user[32];
	int i;

	backing_path(name, path, sizeof(path));
	printf("name:         %s\n", name);
	printf("path:         %s\n", path);
	printf("kind:         %s\n", shmk_kind_name(st->kind));
	printf("state:        %s\n", shmk_state_name(st->state));
	printf("format:       version %d\n", st->version);
	printf("owner:        %s, mode %04o\n",
	       user_name(st->owner, user, sizeof(user)), st->mode);
	printf("size:         %llu bytes (%s), header %llu bytes\n",
	       (unsigned long long)st->total_size,
	       human_size(st->total_size, buf, sizeof(buf)),
	       (unsigned long long)st->header_size);
	printf("geometry:    ");
	for (i = 0; i < st->ngeom; i++)
		printf(" %s=%llu", shmk_stat_geom_name(st->kind, i),
		       (unsigned long long)st->geom[i]);
	printf("\n");
	printf("creator:      pid %d, %s, %s\n", (int)st->creator_pid,
	       user_name(st->creator_uid, user, sizeof(user)),
	       st->creator_alive ? "alive" : "gone");
	printf("created:      %s\n",
	       time_str(st->created_ns, buf, sizeof(buf)));
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
			       shmk_stat_counter_name(st->kind, i),
			       (unsigned long long)st->counter[i]);
	}
}

static int cmd_info(int argc, char **argv)
{
	static struct shmk_stat st;
	char **ops;
	int n, i, rc, status = EXIT_OK;

	rc = begin("info", argc, argv);
	if (rc >= 0)
		return rc;
	n = operands(argc, argv, &ops);
	if (n == 0) {
		usage_error("info", "which object? (a NAME is needed)");
		return EXIT_USAGE;
	}
	for (i = 0; i < n; i++) {
		rc = shmk_stat(ops[i], &st);
		if (rc < 0) {
			err("info", ops[i], rc);
			status = EXIT_FAIL;
			continue;
		}
		if (i)
			printf("\n");
		print_info(ops[i], &st);
	}
	return status;
}

static int cmd_rm(int argc, char **argv)
{
	char **ops;
	int n, i, rc, status = EXIT_OK;

	rc = begin("rm", argc, argv);
	if (rc >= 0)
		return rc;
	n = operands(argc, argv, &ops);
	if (n == 0) {
		usage_error("rm", "which object? (a NAME is needed)");
		return EXIT_USAGE;
	}
	for (i = 0; i < n; i++) {
		rc = shmk_unlink(ops[i]);
		if (rc < 0) {
			err("rm", ops[i], rc);
			status = EXIT_FAIL;
		}
	}
	return status;
}

static int cmd_help(int argc, char **argv);

static int cmd_version(int argc, char **argv)
{
	int rc = begin("version", argc, argv);

	if (rc >= 0)
		return rc;
	printf("shmk %s\n", SHMK_VERSION_STRING);
	return EXIT_OK;
}

static const struct command commands[] = {
	{"ls", "", "list the objects in " SHM_DIR,
	 "Lists every shmk object in " SHM_DIR ": name, kind, size of the\n"
	 "region, mode, owner, the creator's pid and whether it still has\n"
	 "the object open, state, and how many processes have it open.\n"
	 "Persisted objects (files) live elsewhere: use 'shmk info PATH'.",
	 cmd_ls},
	{"info", "NAME...", "describe objects",
	 "Prints the header of each object without attaching to it: kind,\n"
	 "state, owner and mode, sizes, geometry, creator, participants\n"
	 "(whether each is alive, as the kernel says) and counters.\n"
	 "NAME is a plain name (an object in " SHM_DIR ") or a file path.",
	 cmd_info},
	{"rm", "NAME...", "remove objects' names",
	 "Removes the name of each object.  Processes that have it open keep\n"
	 "using it; its memory is freed when the last one closes.  Only shmk\n"
	 "objects are removed: any other file at a name is left alone.",
	 cmd_rm},
	{"version", "", "print the version", "Prints shmk's version.",
	 cmd_version},
	{"help", "[COMMAND]", "show help",
	 "Shows the list of commands, or the help of one.", cmd_help},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *find_command(const char *name)
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
		   "Inspect and manage shmk shared-memory objects.\n\n"
		   "Commands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-8s %-10s %s\n", commands[i].name,
			commands[i].args, commands[i].summary);
	fprintf(f, "\nEvery command takes --help.  Exit status: 0 success, 1 "
		   "failure, 2 usage error.\n");
}

static int cmd_help(int argc, char **argv)
{
	const struct command *c;
	char **ops;
	int rc = begin("help", argc, argv);

	if (rc >= 0)
		return rc;
	if (operands(argc, argv, &ops) == 0) {
		main_usage(stdout);
		return EXIT_OK;
	}
	c = find_command(ops[0]);
	if (!c) {
		usage_error("help", "no such command");
		return EXIT_USAGE;
	}
	print_help(c);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	const struct command *c;

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
	c = find_command(argv[1]);
	if (!c) {
		fprintf(stderr, "shmk: unknown command '%s'\n\n", argv[1]);
		main_usage(stderr);
		return EXIT_USAGE;
	}
	return c->run(argc - 1, argv + 1);
}
