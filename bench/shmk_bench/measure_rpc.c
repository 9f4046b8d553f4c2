/* SPDX-License-Identifier: MIT */
/*
 * measure_rpc.c - the rpc section: shmk_rpc calls beside a UNIX seqpacket
 * echo of the same sizes, and the floor of a call's copies.  The
 * measurements are ../rpc.c's (which bench_rpc runs too), each run by a
 * child of this process (they pin the process that calls them, and make
 * processes of their own), which leaves its result in shared memory.  A
 * measurement calls for --seconds, the first fifth of it a warm-up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../bench.h"
#include "../rpc.h"
#include "shmk.h"
#include "shmk_bench.h"

#define RPC_MAX_SIZE (4u << 20) /* the largest request measured */

/* Names for the section's rows (not transports of the other sections:
 * rpc.c makes their calls). */
const struct bt_transport bt_rpc_shmk = {
	.abi = BT_ABI,
	.name = "shmk-rpc",
	.label = "shmk_rpc",
};

const struct bt_transport bt_rpc_seqpacket = {
	.abi = BT_ABI,
	.name = "seqpacket",
	.label = "UNIX seqpacket",
};

const struct bt_transport bt_rpc_floor = {
	.abi = BT_ABI,
	.name = "rpc-floor",
	.label = "floor",
};

/* The row's mode: "1 call at a time", "16 in flight, no spin". */
const char *rpc_mode(const struct rec *r, char *b, size_t len)
{
	int n;

	if (r->depth == 1)
		n = snprintf(b, len, "1 call at a time");
	else if (r->clients > 1)
		n = snprintf(b, len, "%d clients x %d", r->clients, r->depth);
	else
		n = snprintf(b, len, "%d in flight", r->depth);
	if (n < 0 || (size_t)n >= len)
		return b;
	if (r->nospin)
		snprintf(b + n, len - (size_t)n, ", no spin");
	else if (r->hogs)
		snprintf(b + n, len - (size_t)n, ", %d hogs", r->hogs);
	else if (!strcmp(r->section, "rpc-idle"))
		snprintf(b + n, len - (size_t)n, ", %d idle clients", r->idle);
	return b;
}

/* The label: the transport and the mode. */
void rpc_label(struct rec *r)
{
	char mode[48];

	if (r->t == &bt_rpc_floor)
		snprintf(r->label, sizeof(r->label),
			 "floor: 4 copies through shared memory");
	else
		snprintf(r->label, sizeof(r->label), "%s, %s%s", r->t->label,
			 rpc_mode(r, mode, sizeof(mode)),
			 r->t == &bt_rpc_seqpacket && r->clients > 1
				 ? " (one client)"
				 : "");
}

/* What the measuring child leaves (shared memory, mapped once). */
struct box {
	struct rpc_run run;
	int rc;
};

static struct box *box;

/* The idle clients the descriptors allow (raising the soft limit to the
 * hard one first): the server holds four for each channel. */
static int idle_allowed(int want)
{
	struct rlimit rl;
	long room;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return want;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY)
		return want;
	room = ((long)rl.rlim_cur - 256) / 4;
	return room < want ? (room > 0 ? (int)room : 0) : want;
}

/* The child: one measurement into box. */
static _Noreturn void rpc_kid(const struct rec *r, pid_t parent)
{
	struct rpc_run run = box->run; /* not shared with rpc.c's children */
	int rc = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	if (r->hogs && (rc = rpc_hogs_start(r->hogs)) < 0)
		snprintf(run.why, sizeof(run.why), "fork of a hog: %s",
			 strerror(-rc));
	if (!rc && r->t == &bt_rpc_floor)
		rc = rpc_floor(&run);
	else if (!rc && r->t == &bt_rpc_seqpacket)
		rc = rpc_sock(&run);
	else if (!rc)
		rc = rpc_shmk(&run);
	rpc_hogs_stop();
	box->run = run;
	box->rc = rc;
	_exit(0);
}

/*
 * Runs rpc_kid() and waits for it: the measurement's time, then up to
 * KILL_AFTER seconds more (and more for idle clients to connect).  0, or
 * -1 with why filled.
 */
static int run_kid(const struct rec *r, char *why, size_t whylen)
{
	uint64_t deadline;
	pid_t pid, me = getpid();
	int st;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0)
		rpc_kid(r, me);
	usleep((useconds_t)(opt.secs * 1e6));
	deadline = now_ns() +
		   (uint64_t)(KILL_AFTER + (r->idle ? 60 : 0)) * 1000000000ull;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (now_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			snprintf(why, whylen,
				 "timed out (%d s past the end: a call lost, "
				 "or a process wedged)",
				 KILL_AFTER + (r->idle ? 60 : 0));
			return -1;
		}
		usleep(2000);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		snprintf(why, whylen,
			 "the measuring process ended with "
			 "status 0x%x",
			 st);
		return -1;
	}
	return 0;
}

/* One measurement into repeat i of r. */
void measure_rpc(struct rec *r, int i)
{
	struct rpc_run *run;
	char name[64];

	if (r->size > RPC_MAX_SIZE) {
		r->st = ST_NA;
		snprintf(r->why, sizeof(r->why),
			 "the rpc section measures requests up to %s",
			 size_str(RPC_MAX_SIZE));
		return;
	}
	if (!box) {
		box = mmap(NULL, sizeof(*box), PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (box == MAP_FAILED) {
			box = NULL;
			r->st = ST_FAIL;
			snprintf(r->why, sizeof(r->why), "mmap: %s",
				 strerror(errno));
			return;
		}
	}
	if (r->idle) {
		int n = idle_allowed(r->idle);

		if (n < r->idle) {
			r->idle = n;
			rpc_label(r);
		}
	}
	chan_name(name, sizeof(name));
	memset(box, 0, sizeof(*box));
	run = &box->run;
	run->name = name; /* the child's copy of this stack */
	run->size = r->size;
	run->depth = r->depth;
	run->clients = r->t == &bt_rpc_seqpacket ? 1 : r->clients;
	run->spin_us = r->nospin ? -1 : 0;
	run->idle = r->idle;
	run->small_nodes = !strcmp(r->section, "rpc-idle");
	run->warm_secs = opt.secs * 0.2;
	run->secs = opt.secs * 0.8;
	run->corrupt = r->t == &bt_rpc_floor ? -1 : opt.corrupt;
	if (run_kid(r, r->why, sizeof(r->why)) < 0) {
		r->st = ST_FAIL;
		shmk_unlink(name);
		return;
	}
	shmk_unlink(name); /* left if the server was killed */
	if (box->rc == -EMSGSIZE) {
		r->st = ST_NA;
		snprintf(r->why, sizeof(r->why), "EMSGSIZE: %.180s", run->why);
		return;
	}
	if (box->rc < 0) {
		r->st = ST_FAIL;
		snprintf(r->why, sizeof(r->why), "%s", run->why);
		return;
	}
	r->mps[i] = run->calls_s;
	r->p50[i] = run->p50_us;
	r->p99[i] = run->p99_us;
	r->mean_us[i] = r->t == &bt_rpc_floor ? run->mean_us
			: run->calls_s > 0    ? 1e6 / run->calls_s
					      : 0;
	r->in_flight = r->t == &bt_rpc_seqpacket ? run->sock_depth : r->depth;
	r->nrep = i + 1;
}
