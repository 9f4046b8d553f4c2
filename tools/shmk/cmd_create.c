/* SPDX-License-Identifier: MIT */
/*
 * create: make an object that outlives the tool (SHMK_F_KEEP).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shmk.h"

#include "cli.h"
#include "object.h"

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

/* The flags shmk_stat() gives for a ring's mode. */
#define MODE_FLAGS (SHMK_F_SINGLE_WRITER | SHMK_F_SINGLE_READER | SHMK_F_LOSSY)

struct create_req {
	const char *name;
	const struct create_kind *k;
	/* In the order of the kind's geometry fields (shmk_stat geom[]). */
	uint64_t geom[3];
	int ngeom;
	int set; /* event: start set */
	unsigned mode, given;
	unsigned flags; /* a ring's mode: SHMK_F_SINGLE_WRITER, _READER */
	int open_or_create, verbose;
};

/* "--nodes": the option of bit C_*, for a message. */
static const char *opt_name(const struct opt *opts, unsigned bit)
{
	static char buf[64];

	while (opts->name && opts->bit != bit)
		opts++;
	snprintf(buf, sizeof(buf), "--%s", opts->name ? opts->name : "?");
	return buf;
}

/* Parses create's options and operands into q.  Returns an exit status
 * to return at once, or -1 to go on. */
static int create_options(struct create_req *q, int argc, char **argv)
{
	uint64_t nodes = 64, node_size = 65536, size = 0, count = 0, elem = 0;
	uint64_t capacity = TOPIC_CAP, max_msg = 0;
	unsigned extra, i;
	int manual = 0, rc;
	char msg[256], ak[48];
	/* Every kind's options in one table: one not of the kind asked for
	 * is reported below, by its bit. */
	const struct opt opts[] = {
		{"nodes", .type = OPT_SIZE, .val = &nodes, .min = 2,
		 .max = UINT32_MAX, .bit = C_NODES},
		{"node-size", .type = OPT_SIZE, .val = &node_size, .min = 1,
		 .max = INT64_C(1) << 40, .bit = C_NODE_SIZE},
		{"size", .type = OPT_SIZE, .val = &size, .min = 1,
		 .max = CREATE_MAX, .bit = C_SIZE},
		{"count", .type = OPT_SIZE, .val = &count, .min = 1,
		 .max = CREATE_MAX, .bit = C_COUNT},
		{"elem-size", .type = OPT_SIZE, .val = &elem, .min = 1,
		 .max = CREATE_MAX, .bit = C_ELEM_SIZE},
		{"manual-reset", .type = OPT_FLAG, .bit = C_MANUAL,
		 .flag = &manual, .to = 1},
		{"set", .type = OPT_FLAG, .bit = C_SET, .flag = &q->set,
		 .to = 1},
		{"single-writer", .type = OPT_FLAG, .bit = C_SINGLE_W},
		{"single-reader", .type = OPT_FLAG, .bit = C_SINGLE_R},
		{"capacity", .type = OPT_CAPACITY, .val = &capacity,
		 .bit = C_CAPACITY},
		{"max-msg", .type = OPT_SIZE, .val = &max_msg, .min = 1,
		 .max = INT64_C(1) << 33, .bit = C_MAX_MSG},
		{"lossy", .type = OPT_FLAG, .bit = C_LOSSY},
		{"mode", .type = OPT_MODE, .val = &q->mode},
		{"open-or-create", .type = OPT_FLAG, .flag = &q->open_or_create,
		 .to = 1},
		{"verbose", .short_name = 'v', .type = OPT_FLAG,
		 .flag = &q->verbose, .to = 1},
		{.name = NULL},
	};

	q->mode = 0600;
	rc = parse_opts("create", argc, argv, opts, &q->given);
	if (rc >= 0)
		return rc;
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
				 opt_name(opts, 1u << i),
				 a_kind(q->k->name, ak, sizeof(ak)));
			usage_error("create", msg);
			return EXIT_USAGE;
		}
	for (i = 0; i < C_NOPTS; i++)
		if ((q->k->need & (1u << i)) && !(q->given & (1u << i))) {
			snprintf(msg, sizeof(msg), "%s needs %s",
				 a_kind(q->k->name, ak, sizeof(ak)),
				 opt_name(opts, 1u << i));
			usage_error("create", msg);
			return EXIT_USAGE;
		}
	switch (q->k->kind) {
	case SHMK_KIND_RING:
		/* The mode is the ring's third geometry field, whose value
		 * is the library's business: it is compared and shown
		 * through flags (geom_is_mode()). */
		q->geom[0] = nodes;
		q->geom[1] = node_size;
		q->geom[2] = 0;
		q->flags = (q->given & C_SINGLE_W ? SHMK_F_SINGLE_WRITER : 0) |
			   (q->given & C_SINGLE_R ? SHMK_F_SINGLE_READER : 0);
		q->ngeom = 3;
		break;
	case SHMK_KIND_TOPIC:
		if (topic_max_msg("create", capacity, !!(q->given & C_MAX_MSG),
				  &max_msg) < 0)
			return EXIT_USAGE;
		q->geom[0] = capacity;
		q->geom[1] = max_msg;
		q->geom[2] = 0; /* the policy: in flags, as a ring's mode */
		q->flags = q->given & C_LOSSY ? SHMK_F_LOSSY : 0;
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
		ro.flags |= q->flags;
		rc = shmk_ring_create(q->name, (size_t)q->geom[0],
				      (size_t)q->geom[1], &ro, &r);
		if (!rc) {
			*src = shmk_stat(q->name, st);
			shmk_ring_close(r);
		}
		break;
	case SHMK_KIND_TOPIC:
		ro = *o;
		ro.flags |= q->flags;
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
	same = st->ngeom == q->ngeom &&
	       (st->flags & MODE_FLAGS) == (q->flags & MODE_FLAGS);
	for (i = 0; same && i < q->ngeom; i++)
		same = geom_is_mode(st->kind, i) || st->geom[i] == q->geom[i];
	if (!same) {
		errf("create", name, "exists as %s of %s, not the %s asked for",
		     a_kind(q->k->name, ak, sizeof(ak)),
		     geom_of(st->kind, st->geom, st->ngeom, st->flags, have,
			     sizeof(have)),
		     geom_of(q->k->kind, q->geom, q->ngeom, q->flags, want,
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

static int run_create(int argc, char **argv)
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
	geom_of(q.k->kind, q.geom, q.ngeom, q.flags, geom, sizeof(geom));
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

const struct cmd cmd_create = {
	.name = "create",
	.args = "KIND NAME [OPTIONS]",
	.summary = "create an object for others to use",
	.help = "Creates the object NAME of KIND (ring, topic, buffer, array "
		"or\n"
		"event) for other programs to open, and exits.  The object is "
		"kept\n"
		"(SHMK_F_KEEP): it stays ready after the tool exits, nobody's "
		"close\n"
		"shuts it down, and 'shmk gc' leaves it alone; 'shmk rm NAME'\n"
		"removes it ('shmk send' and 'shmk pub' still shut a ring or "
		"topic\n"
		"down at the end of their input, unless --no-shutdown).  "
		"Prints\n"
		"nothing on success unless --verbose.  An rpc object is not "
		"created\n"
		"this way: its server process makes and owns it "
		"(shmk_rpc_serve).\n"
		"\n"
		"  ring    --nodes N         nodes (at least 2; default 64)\n"
		"          --node-size SIZE  bytes per node (default 64K)\n"
		"          --single-writer   one writing handle at a time "
		"(faster\n"
		"          --single-reader   small messages); one reading "
		"handle\n"
		"  topic   --capacity SIZE   bytes of the log, a power of two "
		"from "
		"4K\n"
		"                            to 16G (default 4M)\n"
		"          --max-msg SIZE    the longest message, at most "
		"capacity /\n"
		"                            2 (default 64K, or that if less)\n"
		"          --lossy           overwrite the oldest messages "
		"rather\n"
		"                            than wait for slow subscribers\n"
		"  buffer  --size SIZE       bytes (needed)\n"
		"  array   --count N         elements (needed)\n"
		"          --elem-size SIZE  bytes per element (needed)\n"
		"  event   --manual-reset    a set releases every waiter and "
		"stays\n"
		"                            set until reset (default: "
		"auto-reset)\n"
		"          --set             start set\n"
		"  --mode OCTAL      permission bits, 0600 to 0777 (default "
		"0600);\n"
		"                    no read without write for group or "
		"others\n"
		"  --open-or-create  if NAME exists as this command would make "
		"it\n"
		"                    (kind, geometry, mode, owner, kept, not "
		"shut\n"
		"                    down), succeed and leave it as it is; "
		"else fail\n"
		"                    and say what differs (--set is not "
		"applied to\n"
		"                    an existing event)\n"
		"  --verbose, -v     say what was done\n"
		"\n"
		"Sizes and counts take K, M, G, T suffixes.  Exit status 1 if "
		"NAME\n"
		"exists (without --open-or-create: 'shmk rm' it first) or the\n"
		"library refuses, 2 on a usage error.",
	.run = run_create,
};
