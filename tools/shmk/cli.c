/* SPDX-License-Identifier: MIT */
/*
 * cli.c - what every shmk command shares: its messages on standard
 * error, its --help, and the parsing of options and their values.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmk.h"

#include "cli.h"

void err_rc(const char *cmd, const char *what, int rc)
{
	fprintf(stderr, "shmk %s: %s: %s\n", cmd, what, shmk_strerror(rc));
}

/* "shmk CMD: WHAT: message" on standard error. */
void errf(const char *cmd, const char *what, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "shmk %s: %s: ", cmd, what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void usage_error(const char *cmd, const char *msg)
{
	fprintf(stderr, "shmk %s: %s\nTry 'shmk %s --help'.\n", cmd, msg, cmd);
}

int no_name(const char *cmd)
{
	usage_error(cmd, "which object? (a NAME is needed)");
	return EXIT_USAGE;
}

void print_help(const struct cmd *c)
{
	printf("usage: shmk %s%s%s\n\n%s\n", c->name, c->args[0] ? " " : "",
	       c->args, c->help);
}

static int help_of(const char *cmd)
{
	print_help(cmd_find(cmd));
	return EXIT_OK;
}

/*
 * getopt_long with shmk's messages.  Returns the option, -1 after the
 * last one, or '?' once an unknown option or a missing value has been
 * reported.  Operands and options may come in any order; "--" ends the
 * options.  The operands are then argv[optind..argc-1].
 */
static int next_opt(const char *cmd, int argc, char **argv, const char *shorts,
		    const struct option *longs)
{
	const char *arg;
	char msg[256];
	int c;

	opterr = 0;
	c = getopt_long(argc, argv, shorts, longs, NULL);
	if (c != '?' && c != ':')
		return c;
	arg = argv[optind - 1];
	if (c == ':')
		snprintf(msg, sizeof(msg), "option '%s' needs a value", arg);
	else if (!strncmp(arg, "--", 2) && strchr(arg, '=') && optopt)
		snprintf(msg, sizeof(msg), "option '%.*s' takes no value",
			 (int)(strchr(arg, '=') - arg), arg);
	else if (!strncmp(arg, "--", 2) || !optopt)
		snprintf(msg, sizeof(msg), "unknown option '%s'", arg);
	else
		snprintf(msg, sizeof(msg), "unknown option '-%c'", optopt);
	usage_error(cmd, msg);
	return '?';
}

/* Parses the options of a command that has none but --help.  Returns
 * an exit status to return at once, or -1 to go on. */
int bad_value(const char *cmd, const char *opt, const char *s, const char *want)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "invalid value '%s' for --%s: %s", s, opt,
		 want);
	usage_error(cmd, msg);
	return -1;
}

/* A size: digits, then optionally K, M, G or T (powers of 1024; "KiB"
 * and "KB" mean the same). */
int parse_size(const char *cmd, const char *opt, const char *s, uint64_t min,
	       uint64_t max, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end, want[128];

	snprintf(want, sizeof(want), "a size from %llu to %llu (K, M, G, T)",
		 (unsigned long long)min, (unsigned long long)max);
	if (*s < '0' || *s > '9')
		return bad_value(cmd, opt, s, want);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return bad_value(cmd, opt, s, want);
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	}
	if (shift) {
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return bad_value(cmd, opt, s, want);
	v <<= shift;
	if (v < min || v > max)
		return bad_value(cmd, opt, s, want);
	*out = v;
	return 0;
}

static int parse_int(const char *cmd, const char *opt, const char *s, long min,
		     long max, int *out)
{
	char *end, want[128];
	long v;

	snprintf(want, sizeof(want), "an integer from %ld to %ld", min, max);
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return bad_value(cmd, opt, s, want);
	*out = (int)v;
	return 0;
}

/* Permission bits for a new object: the library takes 0600 to 0777. */
static int parse_mode(const char *cmd, const char *s, unsigned *out)
{
	const char *want = "octal permission bits from 0600 to 0777 that "
			   "include 0600";
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 8);
	if (errno || end == s || *end || *s == '-' || v > 0777 ||
	    (v & 0600) != 0600)
		return bad_value(cmd, "mode", s, want);
	/* The library's rule (shmk.h, "Trust"), said here in words. */
	if (((v & 040) && !(v & 020)) || ((v & 04) && !(v & 02)))
		return bad_value(cmd, "mode", s,
				 "no read without write for group or others "
				 "(a reader could lock others out): 0600, "
				 "0660, 0666 ...");
	*out = (unsigned)v;
	return 0;
}

/* A topic's --capacity: a power of two from 4K to 16G, as
 * shmk_topic_create() takes. */
static int parse_capacity(const char *cmd, const char *s, uint64_t *out)
{
	if (parse_size(cmd, "capacity", s, 4096, UINT64_C(1) << 34, out) < 0)
		return -1;
	if (*out & (*out - 1))
		return bad_value(cmd, "capacity", s,
				 "a power of two from 4K to 16G");
	return 0;
}

/*
 * A topic's --max-msg against its capacity: at most capacity / 2
 * (shmk_topic_create).  Not given: the default, or the largest a small
 * capacity allows.  Returns 0, or -1 once the error has been reported.
 */
int topic_max_msg(const char *cmd, uint64_t capacity, int given,
		  uint64_t *max_msg)
{
	uint64_t most = capacity / 2;
	char msg[256];

	if (!given) {
		*max_msg = TOPIC_MSG < most ? TOPIC_MSG : most;
		return 0;
	}
	if (*max_msg <= most)
		return 0;
	snprintf(msg, sizeof(msg),
		 "--max-msg %llu is too large for --capacity %llu: at most "
		 "%llu (capacity / 2)",
		 (unsigned long long)*max_msg, (unsigned long long)capacity,
		 (unsigned long long)most);
	usage_error(cmd, msg);
	return -1;
}

int parse_opts(const char *cmd, int argc, char **argv, const struct opt *opts,
	       unsigned *given)
{
	struct option longs[OPTS_MAX + 2];
	char shorts[2 * OPTS_MAX + 3] = ":h", msg[128];
	const struct opt *o;
	size_t n, len = 2;
	int c, rc;

	for (n = 0; opts[n].name && n < OPTS_MAX; n++) {
		longs[n].name = opts[n].name;
		longs[n].has_arg = opts[n].type == OPT_FLAG ? no_argument
							    : required_argument;
		longs[n].flag = NULL;
		longs[n].val = 256 + (int)n; /* above any short option */
		if (opts[n].short_name) {
			shorts[len++] = opts[n].short_name;
			if (opts[n].type != OPT_FLAG)
				shorts[len++] = ':';
		}
	}
	shorts[len] = 0;
	longs[n] = (struct option){"help", no_argument, NULL, 'h'};
	longs[n + 1] = (struct option){NULL, 0, NULL, 0};
	optind = 0;
	while ((c = next_opt(cmd, argc, argv, shorts, longs)) != -1) {
		if (c == 'h')
			return help_of(cmd);
		if (c == '?')
			return EXIT_USAGE;
		if (c >= 256) {
			o = &opts[c - 256];
		} else {
			for (o = opts; o->name && o->short_name != c; o++)
				;
			if (!o->name)
				return EXIT_USAGE;
		}
		if (o->refuse) {
			if (!o->refuse[0]) {
				snprintf(msg, sizeof(msg),
					 "unknown option '--%s'", o->name);
				usage_error(cmd, msg);
			} else {
				usage_error(cmd, o->refuse);
			}
			return EXIT_USAGE;
		}
		switch (o->type) {
		case OPT_FLAG:
			rc = 0;
			break;
		case OPT_SIZE:
			rc = parse_size(cmd, o->name, optarg, (uint64_t)o->min,
					(uint64_t)o->max, o->val);
			break;
		case OPT_INT:
			rc = parse_int(cmd, o->name, optarg, (long)o->min,
				       (long)o->max, o->val);
			break;
		case OPT_MODE:
			rc = parse_mode(cmd, optarg, o->val);
			break;
		case OPT_CAPACITY:
			rc = parse_capacity(cmd, optarg, o->val);
			break;
		default:
			rc = o->parse(cmd, optarg, o->val);
			break;
		}
		if (rc < 0)
			return EXIT_USAGE;
		if (given)
			*given |= o->bit;
		if (o->flag)
			*o->flag = o->to;
	}
	return -1;
}

int no_options(const char *cmd, int argc, char **argv)
{
	static const struct opt none[] = {{NULL}};

	return parse_opts(cmd, argc, argv, none, NULL);
}
