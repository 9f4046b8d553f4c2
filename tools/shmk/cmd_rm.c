/* SPDX-License-Identifier: MIT */
/*
 * rm, gc: remove objects' names; remove abandoned objects.
 */
#define _GNU_SOURCE
#include <fnmatch.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shmk.h"

#include "cli.h"
#include "object.h"

static int run_rm(int argc, char **argv)
{
	int i, rc, force = 0, status = EXIT_OK;
	const struct opt opts[] = {
		{"force", .short_name = 'f', .type = OPT_FLAG, .flag = &force,
		 .to = 1},
		{.name = NULL},
	};

	rc = parse_opts("rm", argc, argv, opts, NULL);
	if (rc >= 0)
		return rc;
	if (optind == argc)
		return no_name("rm");
	for (i = optind; i < argc; i++) {
		rc = force ? shmk_unlink_force(argv[i]) : shmk_unlink(argv[i]);
		if (rc < 0) {
			err_rc("rm", argv[i], rc);
			status = EXIT_FAIL;
		}
	}
	return status;
}

/* Nobody has it open: its creator and every participant are gone, as
 * the kernel says (their liveness locks are free).  A kept object is
 * meant to be unattended (shmk create): never abandoned. */
static int abandoned(const struct shmk_stat *st)
{
	int i;

	if (st->creator_alive || (st->flags & SHMK_F_KEEP))
		return 0;
	for (i = 0; i < st->nparts; i++)
		if (st->part[i].alive)
			return 0;
	return 1;
}

static int run_gc(int argc, char **argv)
{
	static struct shmk_stat st;
	int i, rc, dry = 0, status = EXIT_OK, others = 0;
	char **names, path[4096], kind[32];
	uid_t me = geteuid();
	struct stat fs;
	size_t n, k;
	const struct opt opts[] = {
		{"dry-run", .short_name = 'n', .type = OPT_FLAG, .flag = &dry,
		 .to = 1},
		{.name = NULL},
	};

	rc = parse_opts("gc", argc, argv, opts, NULL);
	if (rc >= 0)
		return rc;
	rc = list_names(&names, &n);
	if (rc < 0) {
		err_rc("gc", SHM_DIR, rc);
		return EXIT_FAIL;
	}
	for (k = 0; k < n; k++) {
		const char *name = names[k];

		if (optind < argc) {
			for (i = optind; i < argc; i++)
				if (!fnmatch(argv[i], name, 0))
					break;
			if (i == argc)
				continue;
		}
		/* Other users' objects are none of our business (nor could
		 * we remove them: /dev/shm is sticky).  Named if asked for
		 * by a pattern, else counted. */
		if (shmk_path(name, path, sizeof(path)) < 0 ||
		    lstat(path, &fs) < 0 || !S_ISREG(fs.st_mode))
			continue;
		if (fs.st_uid != me) {
			if (optind < argc)
				errf("gc", name,
				     "left alone: owned by uid %u, not by you",
				     (unsigned)fs.st_uid);
			others++;
			continue;
		}
		rc = shmk_stat(name, &st);
		if (rc == -EPROTO || rc == -EBADMSG) {
			/* Nobody can use it, but its state is unknown: the
			 * owner decides (the header may be a peer's doing). */
			errf("gc", name,
			     "left alone: corrupt (%s); 'shmk rm --force %s' "
			     "removes it",
			     shmk_strerror(rc), name);
			continue;
		}
		if (rc < 0) {
			errf("gc", name, "left alone: %s", shmk_strerror(rc));
			continue;
		}
		if (st.owner != me || !abandoned(&st))
			continue;
		if (dry) {
			printf("would remove %s (%s, creator pid %d gone, "
			       "%d participant(s), none alive)\n",
			       name, kind_str(st.kind, kind, sizeof(kind)),
			       (int)st.creator_pid, st.nparts);
			continue;
		}
		/* Look again just before: someone may have opened it since.
		 * (One who opens it between this look and the unlink keeps
		 * a working object whose name is gone.) */
		rc = shmk_stat(name, &st);
		if (rc < 0 || !abandoned(&st))
			continue;
		rc = shmk_unlink(name);
		if (rc < 0) {
			err_rc("gc", name, rc);
			status = EXIT_FAIL;
			continue;
		}
		printf("removed %s (%s, creator pid %d gone, %d "
		       "participant(s), none alive)\n",
		       name, kind_str(st.kind, kind, sizeof(kind)),
		       (int)st.creator_pid, st.nparts);
	}
	free_names(names, n);
	if (others && optind == argc)
		errf("gc", SHM_DIR,
		     "left alone %d object(s) of other users (gc removes "
		     "only your own)",
		     others);
	return status;
}

const struct cmd cmd_rm = {
	.name = "rm",
	.args = "[--force] NAME...",
	.summary = "remove objects' names",
	.help = "Removes the name of each object.  Processes that have it open "
		"keep\n"
		"using it; its memory is freed when the last one closes.  Only "
		"shmk\n"
		"objects are removed: any other file at a name is left alone.\n"
		"\n"
		"  --force, -f  remove any regular file of yours at the name, "
		"also\n"
		"               one whose header was overwritten (shmk gc "
		"names\n"
		"               such objects)",
	.run = run_rm,
};

const struct cmd cmd_gc = {
	.name = "gc",
	.args = "[--dry-run] [PATTERN...]",
	.summary = "remove abandoned objects",
	.help = "Removes the objects of " SHM_DIR
		" that nobody has open any more:\n"
		"owned by the caller's effective uid, with the creator and "
		"every\n"
		"participant gone (as the kernel says: their liveness locks "
		"are\n"
		"free; a pid is never trusted).  Prints each one removed.  "
		"Kept\n"
		"objects (made with SHMK_F_KEEP, as 'shmk create' makes them; "
		"FLAGS\n"
		"keep in 'shmk ls') are meant to be unattended and are left "
		"alone:\n"
		"remove them with 'shmk rm'.  Objects that cannot be read are "
		"left\n"
		"alone and named on standard error, a corrupt one with the "
		"command\n"
		"that removes it (shmk rm --force); persisted objects (files) "
		"are\n"
		"not looked at.  Other users' objects are left alone: named "
		"on\n"
		"standard error if a PATTERN matches them, else counted "
		"there.\n"
		"Just before removing an object gc looks again; a process "
		"that\n"
		"opens it in the moment between keeps a working object whose "
		"name\n"
		"is gone.\n"
		"\n"
		"  --dry-run, -n  print what would be removed, remove nothing\n"
		"  PATTERN        only names matching one of these shell "
		"patterns\n"
		"                 (without the shmk. prefix; quote them)",
	.run = run_gc,
};
