/* SPDX-License-Identifier: MIT */
/*
 * test_tool - the shmk command: ls, info and rm on live, shut-down,
 * corrupt and missing objects; --help on every verb; exit codes 0/1/2 and
 * errors on stderr that name the object and the reason.
 */
#include <fcntl.h>

#include "check.h"

static const char *g_tool;
static char g_out[65536], g_err[65536];
static char g_outf[64], g_errf[64];

static void slurp(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	CHECK(fd >= 0);
	n = read(fd, buf, cap - 1);
	CHECK(n >= 0);
	buf[n] = 0;
	close(fd);
}

/* Runs the tool with args; returns its exit status, output in g_out and
 * g_err. */
static int tool(const char *fmt, ...)
{
	char args[1024], cmd[2048];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "'%s' %s >%s 2>%s", g_tool, args, g_outf,
		 g_errf);
	st = system(cmd);
	CHECK(st != -1 && WIFEXITED(st));
	slurp(g_outf, g_out, sizeof(g_out));
	slurp(g_errf, g_err, sizeof(g_err));
	return WEXITSTATUS(st);
}

#define HAS(buf, s)                                                            \
	do {                                                                   \
		if (!strstr(buf, s)) {                                         \
			fprintf(stderr, "%s:%d: '%s' not in:\n%s\n", __FILE__, \
				__LINE__, s, buf);                             \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* The line of `shmk ls` output that lists name, or NULL. */
static const char *ls_line(const char *name)
{
	static char line[512];
	const char *p = g_out;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		if (!strncmp(p, name, strlen(name)) && p[strlen(name)] == ' ') {
			snprintf(line, sizeof(line), "%.*s", (int)n, p);
			return line;
		}
		p = nl ? nl + 1 : NULL;
	}
	return NULL;
}

static int g_pipe[2];

static int child_hold(void *arg)
{
	struct shmk_buffer *b;

	CHECK_OK(shmk_buffer_open((const char *)arg, NULL, &b));
	CHECK_EQ(write(g_pipe[1], "r", 1), 1);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	const char *live, *junk;
	char path[256], want[256], c;
	const char *line;
	struct shmk_buffer *b, *gone;
	pid_t pid;
	FILE *f;

	check_init();
	live = tname("live");
	junk = tname("junk");
	CHECK(argc == 2);
	g_tool = argv[1];
	snprintf(g_outf, sizeof(g_outf), "/tmp/shmk-tool-%d.out", getpid());
	snprintf(g_errf, sizeof(g_errf), "/tmp/shmk-tool-%d.err", getpid());
	CHECK_OK(pipe(g_pipe));

	/* A live object with a second participant, a shut-down one, and a
	 * file at a shmk name that is not an object. */
	CHECK_OK(shmk_buffer_create(live, 1000, NULL, &b));
	pid = spawn(child_hold, (void *)live);
	CHECK_EQ(read(g_pipe[0], &c, 1), 1);
	CHECK_OK(shmk_buffer_create(tname("gone"), 5000, NULL, &gone));
	CHECK_OK(shmk_buffer_close(gone));
	snprintf(path, sizeof(path), "/dev/shm/shmk.%s", junk);
	f = fopen(path, "w");
	CHECK(f != NULL);
	fputs("junk", f);
	fclose(f);

	CHECK_EQ(tool("ls"), 0);
	HAS(g_out, "NAME");
	line = ls_line(live);
	CHECK(line != NULL);
	HAS(line, "buffer");
	HAS(line, "0600");
	HAS(line, "ready");
	snprintf(want, sizeof(want), "%d alive", (int)getpid());
	HAS(line, want);
	HAS(line, " 2"); /* attached */
	line = ls_line(tname("gone"));
	CHECK(line != NULL);
	HAS(line, "shutdown");
	HAS(line, "gone");
	line = ls_line(junk);
	CHECK(line != NULL);
	HAS(line, "?");
	HAS(line, "not a shmk object");

	CHECK_EQ(tool("info %s", live), 0);
	HAS(g_out, "kind:         buffer");
	HAS(g_out, "state:        ready");
	HAS(g_out, "geometry:     size=1000");
	HAS(g_out, "size:         13288 bytes");
	snprintf(want, sizeof(want), "creator:      pid %d", (int)getpid());
	HAS(g_out, want);
	HAS(g_out, "participants: 2 alive, 2 slots used");
	HAS(g_out, "creator");
	snprintf(want, sizeof(want), "/dev/shm/shmk.%s", live);
	HAS(g_out, want);

	/* Errors: named object and reason on stderr, exit 1. */
	CHECK_EQ(tool("info %s", tname("missing")), 1);
	snprintf(want, sizeof(want), "shmk info: %s: no such object",
		 tname("missing"));
	HAS(g_err, want);
	CHECK_EQ(tool("info %s", junk), 1);
	HAS(g_err, junk);
	CHECK_EQ(tool("rm %s", junk), 1);
	HAS(g_err, "not a shmk object");
	CHECK_EQ(access(path, F_OK), 0); /* left alone */
	unlink(path);

	/* Usage errors: exit 2. */
	CHECK_EQ(tool(""), 2);
	CHECK_EQ(tool("frobnicate"), 2);
	HAS(g_err, "unknown command 'frobnicate'");
	CHECK_EQ(tool("info"), 2);
	CHECK_EQ(tool("rm"), 2);
	CHECK_EQ(tool("ls --bogus"), 2);
	HAS(g_err, "unknown option '--bogus'");
	CHECK_EQ(tool("ls extra"), 2);

	/* Help everywhere. */
	CHECK_EQ(tool("--help"), 0);
	HAS(g_out, "Commands:");
	CHECK_EQ(tool("ls --help"), 0);
	HAS(g_out, "usage: shmk ls");
	CHECK_EQ(tool("info -h"), 0);
	HAS(g_out, "usage: shmk info NAME...");
	CHECK_EQ(tool("rm --help"), 0);
	HAS(g_out, "usage: shmk rm NAME...");
	CHECK_EQ(tool("help rm"), 0);
	HAS(g_out, "usage: shmk rm NAME...");
	CHECK_EQ(tool("version"), 0);
	HAS(g_out, SHMK_VERSION_STRING);

	/* rm: the name goes, the live participant keeps its memory. */
	CHECK_EQ(tool("rm %s %s", live, tname("gone")), 0);
	CHECK_RC(shmk_buffer_open(live, NULL, &gone), -ENOENT);
	CHECK_EQ(tool("rm %s", live), 1);
	HAS(g_err, "no such object");
	CHECK_EQ(tool("ls"), 0);
	CHECK(ls_line(live) == NULL);

	kill(pid, SIGKILL);
	wait_child(pid, 5000);
	CHECK_OK(shmk_buffer_close(b));
	unlink(g_outf);
	unlink(g_errf);
	printf("test_tool: ok\n");
	return 0;
}
