/* SPDX-License-Identifier: MIT */
/*
 * bench: run the benchmark program, shmk-bench.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/*
 * bench runs the benchmark program, shmk-bench: beside this program in
 * the build tree (bench/shmk-bench) or where it is installed, else on
 * PATH.  Its options are its own.
 */
static int run_bench(int argc, char **argv)
{
	char exe[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	static const char *const rel[] = {"bench/shmk-bench", "shmk-bench"};

	(void)argc;
	argv[0] = (char *)"shmk-bench";
	if (n > 0) {
		exe[n] = 0;
		*strrchr(exe, '/') = 0;
		for (size_t i = 0; i < 2; i++) {
			snprintf(path, sizeof(path), "%s/%s", exe, rel[i]);
			if (access(path, X_OK) == 0) {
				execv(path, argv);
				break;
			}
		}
	}
	execvp("shmk-bench", argv);
	fprintf(stderr,
		"shmk bench: cannot run shmk-bench (%s): it is built with "
		"shmk (bench/) and installed beside it\n",
		strerror(errno));
	return EXIT_FAIL;
}

const struct cmd cmd_bench = {
	.name = "bench",
	.args = "[OPTIONS]",
	.summary = "measure shmk beside pipes, sockets, peers",
	.help = "Measures shmk on this machine beside the transports it "
		"replaces:\n"
		"the ring's bandwidth by node count (the original library's "
		"chart),\n"
		"throughput by message size and 64-byte round trips of shmk, a "
		"pipe,\n"
		"UNIX sockets, a POSIX message queue, TCP and peer libraries "
		"built\n"
		"as plugins (`make bench-peers`), then the ratios; topics, "
		"waking a\n"
		"sleeping process, and RPC calls beside a UNIX seqpacket "
		"echo.\n"
		"Every message is verified.  About a minute.  'shmk bench "
		"--help'\n"
		"lists its options (--full, --only, --csv, --json, --plot DIR, "
		"...).",
	.run = run_bench,
};
