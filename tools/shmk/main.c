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
 *
 * This file holds the command table, the dispatch and the top-level
 * help; each command's code and help text are in its cmd_*.c, the
 * shared parts in cli.c, object.c, signals.c, xfer.c and json.c.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "shmk.h"

#include "cli.h"

/* Each command's entry is beside its code; this is the order of
 * 'shmk help'. */
static const struct cmd *const commands[] = {
	&cmd_ls,  &cmd_info,  &cmd_watch,   &cmd_send,	&cmd_recv,
	&cmd_pub, &cmd_sub,   &cmd_create,  &cmd_check, &cmd_rm,
	&cmd_gc,  &cmd_bench, &cmd_version, &cmd_help,	NULL,
};

static int run_version(int argc, char **argv)
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

const struct cmd cmd_version = {
	.name = "version",
	.args = "",
	.summary = "print the version",
	.help = "Prints shmk's version.",
	.run = run_version,
};

const struct cmd *cmd_find(const char *name)
{
	size_t i;

	for (i = 0; commands[i]; i++)
		if (!strcmp(commands[i]->name, name))
			return commands[i];
	return NULL;
}

static void main_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: shmk COMMAND [ARGS]\n\n"
		   "Inspect, manage and feed shmk shared-memory objects.\n\n"
		   "Commands:\n");
	for (i = 0; commands[i]; i++)
		fprintf(f, "  %-8s %s\n", commands[i]->name,
			commands[i]->summary);
	fprintf(f, "\nEvery command takes --help.  Exit status: 0 success, 1 "
		   "failure, 2 usage error.\n");
}

static int run_help(int argc, char **argv)
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
		return run_version(1, argv + 1);
	c = cmd_find(argv[1]);
	if (!c) {
		fprintf(stderr, "shmk: unknown command '%s'\n\n", argv[1]);
		main_usage(stderr);
		return EXIT_USAGE;
	}
	return c->run(argc - 1, argv + 1);
}

const struct cmd cmd_help = {
	.name = "help",
	.args = "[COMMAND]",
	.summary = "show help",
	.help = "Shows the list of commands, or the help of one.",
	.run = run_help,
};
