/* SPDX-License-Identifier: MIT */
/*
 * cli.h - what every shmk command shares: the command table's entry,
 * messages, --help, and option parsing.
 *
 * Every message goes to standard error as "shmk CMD: ...".  The parsers
 * report a bad value themselves (as a usage error) and return -1; the
 * command then exits with EXIT_USAGE.
 */
#ifndef SHMK_TOOL_CLI_H
#define SHMK_TOOL_CLI_H

#include <stdint.h>

struct option;

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

#define TOPIC_CAP (UINT64_C(4) << 20)  /* a new topic's default capacity */
#define TOPIC_MSG (UINT64_C(64) << 10) /* and its default max_msg */

/* One command: "usage: shmk NAME ARGS", then HELP, for --help. */
struct cmd {
	const char *name;
	const char *args;
	const char *summary; /* its line in 'shmk help' */
	const char *help;
	int (*run)(int argc, char **argv); /* argv[0] is the command */
};

/* The commands, each defined beside its code in cmd_*.c (main.c: version
 * and help). */
extern const struct cmd cmd_ls, cmd_info, cmd_watch, cmd_send, cmd_recv,
	cmd_pub, cmd_sub, cmd_create, cmd_check, cmd_rm, cmd_gc, cmd_bench,
	cmd_version, cmd_help;

/* The command called name, or NULL (main.c holds the table). */
const struct cmd *cmd_find(const char *name);

/* "shmk CMD: WHAT: the error rc means" (rc a negative errno). */
void err_rc(const char *cmd, const char *what, int rc);
/* "shmk CMD: WHAT: message". */
void errf(const char *cmd, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "shmk CMD: MSG" and where to find the usage. */
void usage_error(const char *cmd, const char *msg);

/* Prints c's usage and help on standard output. */
void print_help(const struct cmd *c);
/* The same for the command called cmd; returns EXIT_OK. */
int help_of(const char *cmd);

/*
 * getopt_long with shmk's messages.  Returns the option, -1 after the
 * last one, or '?' once an unknown option or a missing value has been
 * reported.  The operands are then argv[optind..argc-1].
 */
int next_opt(const char *cmd, int argc, char **argv, const char *shorts,
	     const struct option *longs);
/* The options of a command that has none but --help.  Returns an exit
 * status to return at once, or -1 to go on. */
int no_options(const char *cmd, int argc, char **argv);

/* Reports "invalid value S for --OPT: WANT"; returns -1. */
int bad_value(const char *cmd, const char *opt, const char *s,
	      const char *want);
/* A size from min to max: digits, then optionally K, M, G or T. */
int parse_size(const char *cmd, const char *opt, const char *s, uint64_t min,
	       uint64_t max, uint64_t *out);
int parse_int(const char *cmd, const char *opt, const char *s, long min,
	      long max, int *out);
/* --mode: permission bits for a new object. */
int parse_mode(const char *cmd, const char *s, unsigned *out);
/* --capacity: a topic's, a power of two from 4K to 16G. */
int parse_capacity(const char *cmd, const char *s, uint64_t *out);
/* --max-msg against --capacity (given: whether --max-msg was). */
int topic_max_msg(const char *cmd, uint64_t capacity, int given,
		  uint64_t *max_msg);

#endif
