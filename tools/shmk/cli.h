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
/* The usage error of a command given no NAME; returns EXIT_USAGE. */
int no_name(const char *cmd);

/* Prints c's usage and help on standard output. */
void print_help(const struct cmd *c);

/*
 * A command's options as a table, ended by a row with name NULL.  Each
 * row is a long option (--NAME, and -SHORT if short is set) and says
 * what its value is and where it goes:
 *   OPT_FLAG      no value
 *   OPT_SIZE      a size from min to max into the uint64_t at val
 *   OPT_INT       an integer from min to max into the int at val
 *   OPT_MODE      permission bits for a new object into the unsigned
 *   OPT_CAPACITY  a topic's capacity into the uint64_t
 *   OPT_FUNC      parse(cmd, value, val), which reports a bad value
 *                 and returns -1
 * Whatever its type, a row given ors bit into *given and, if flag is
 * set, stores to in *flag: the last of several options that set the
 * same flag wins.  A row with refuse set is known (so that getopt's
 * abbreviations and messages are those of the whole family of commands
 * that share a table) but refused: a usage error says refuse, or
 * "unknown option '--NAME'" if it is "".  --help (-h) is always there.
 */
enum opt_type { OPT_FLAG, OPT_SIZE, OPT_INT, OPT_MODE, OPT_CAPACITY, OPT_FUNC };

struct opt { /* pointers first: no padding between the fields */
	const char *name;
	void *val;
	int64_t min, max; /* OPT_SIZE, OPT_INT */
	int *flag;
	const char *refuse;
	int (*parse)(const char *cmd, const char *s, void *val); /* OPT_FUNC */
	enum opt_type type;
	unsigned bit;
	int to;
	char short_name;
};

/* Options at most in one table. */
#define OPTS_MAX 32

/*
 * Parses argv's options by the table opts (OPTS_MAX rows at most).
 * Operands and options may come in any order; "--" ends the options,
 * and the operands are then argv[optind..argc-1].  given may be NULL.
 * Returns -1 to go on, or an exit status to return at once: EXIT_OK
 * once --help has been printed, EXIT_USAGE once an error has been
 * reported.
 */
int parse_opts(const char *cmd, int argc, char **argv, const struct opt *opts,
	       unsigned *given);

/* The options of a command that has none but --help.  Returns an exit
 * status to return at once, or -1 to go on. */
int no_options(const char *cmd, int argc, char **argv);

/* Reports "invalid value S for --OPT: WANT"; returns -1. */
int bad_value(const char *cmd, const char *opt, const char *s,
	      const char *want);
/* A size from min to max: digits, then optionally K, M, G or T. */
int parse_size(const char *cmd, const char *opt, const char *s, uint64_t min,
	       uint64_t max, uint64_t *out);
/* --max-msg against --capacity (given: whether --max-msg was). */
int topic_max_msg(const char *cmd, uint64_t capacity, int given,
		  uint64_t *max_msg);

#endif
