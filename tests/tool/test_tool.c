/* SPDX-License-Identifier: MIT */
/*
 * test_tool - the shmk command against real objects: ls, info (--json
 * too) and rm on live, shut-down, corrupt and missing objects; send and
 * recv round trips in every mode (10 MiB through a small ring), messages
 * longer than a node; watch; check on a healthy and a corrupted ring;
 * create of every kind (kept, ready after the tool exits, a line through
 * a created ring, --open-or-create on the same and on other objects); gc
 * of a SIGKILLed creator's object beside a live one and a kept one;
 * topics: create, ls, info and watch naming the slowest subscriber, the
 * documented recipe of one pub into three subs (100000 lines each, in
 * order), pub and sub in every mode with history and the latest, a
 * lossy topic lapping a stopped sub (the loss said once, with its
 * count), check on a healthy and a corrupted topic, gc of topics;
 * --help and a bad option on every verb; exit codes 0/1/2 and errors on
 * stderr that name the object and the reason.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "check.h"

static const char *g_tool;
static char g_out[65536], g_err[65536];
static char g_outf[64], g_errf[64], g_in[64], g_got[64];
static int g_python;

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

/* Runs a shell command; returns its exit status. */
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	fflush(NULL);
	st = system(cmd);
	CHECK(st != -1 && WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* Runs the tool with args; returns its exit status, output in g_out and
 * g_err.  args may redirect standard input ("< file"). */
static int tool(const char *fmt, ...)
{
	char args[2048];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	st = sh("'%s' %s >%s 2>%s", g_tool, args, g_outf, g_errf);
	slurp(g_outf, g_out, sizeof(g_out));
	slurp(g_errf, g_err, sizeof(g_err));
	return st;
}

#define HAS(buf, s)                                                            \
	do {                                                                   \
		if (!strstr(buf, s)) {                                         \
			fprintf(stderr, "%s:%d: '%s' not in:\n%s\n", __FILE__, \
				__LINE__, s, buf);                             \
			exit(1);                                               \
		}                                                              \
	} while (0)

#define HASNT(buf, s)                                                          \
	do {                                                                   \
		if (strstr(buf, s)) {                                          \
			fprintf(stderr, "%s:%d: '%s' unexpected in:\n%s\n",    \
				__FILE__, __LINE__, s, buf);                   \
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

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void put_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	CHECK(f != NULL);
	CHECK_EQ(fwrite(data, 1, len, f), len);
	CHECK_EQ(fclose(f), 0);
}

/* The whole file at path (malloc'd), its length in *len. */
static char *get_file(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	FILE *f;

	f = fopen(path, "rb");
	CHECK(f != NULL);
	CHECK_OK(fstat(fileno(f), &st));
	buf = malloc((size_t)st.st_size + 1);
	CHECK(buf != NULL);
	CHECK_EQ(fread(buf, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);
	*len = (size_t)st.st_size;
	return buf;
}

/* The file at path must hold exactly len bytes equal to want. */
static void file_equals(const char *path, const void *want, size_t len)
{
	size_t n, i;
	char *got = get_file(path, &n);

	if (n != len || memcmp(got, want, len)) {
		for (i = 0; i < n && i < len; i++)
			if (got[i] != ((const char *)want)[i])
				break;
		fprintf(stderr,
			"%s: received %zu bytes, sent %zu; first "
			"difference at byte %zu\n",
			path, n, len, i);
		if (n < 256 && len < 256)
			fprintf(stderr, "received '%.*s', sent '%.*s'\n",
				(int)n, got, (int)len, (const char *)want);
		exit(1);
	}
	free(got);
}

static void got_equals(const void *want, size_t len)
{
	file_equals(g_got, want, len);
}

/* Ring counters as shmk_stat reports them, by name. */
static uint64_t ring_counter(const char *name, const char *counter)
{
	struct shmk_stat st;
	int i;

	CHECK_OK(shmk_stat(name, &st));
	for (i = 0; i < st.ncounters; i++)
		if (!strcmp(shmk_stat_counter_name(st.kind, i), counter))
			return st.counter[i];
	fprintf(stderr, "no counter %s\n", counter);
	exit(1);
}

/*
 * recv (in the background) and send on one ring, each with its options;
 * returns send's status * 16 + recv's.  recv writes to g_got; send reads
 * g_in.  Both have a deadline, so a bug fails rather than hangs.
 */
static int send_recv(const char *name, const char *send_opts,
		     const char *recv_opts)
{
	return sh(": >%s; '%s' recv --timeout 30000 %s %s >%s 2>>%s & "
		  "'%s' send --timeout 30000 %s %s <%s 2>>%s; s=$?; "
		  "wait $!; r=$?; exit $((s * 16 + r))",
		  g_errf, g_tool, recv_opts, name, g_got, g_errf, g_tool,
		  send_opts, name, g_in, g_errf);
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

/* Creates a buffer and holds it until killed. */
static int child_create_hold(void *arg)
{
	struct shmk_buffer *b;

	CHECK_OK(shmk_buffer_create((const char *)arg, 100, NULL, &b));
	CHECK_EQ(write(g_pipe[1], "c", 1), 1);
	for (;;)
		pause();
}

/* Creates a buffer and dies without closing it. */
static int child_create_die(void *arg)
{
	struct shmk_buffer *b;

	CHECK_OK(shmk_buffer_create((const char *)arg, 100, NULL, &b));
	raise(SIGKILL);
	return 1;
}

/* Moves messages through a ring for a while: watch must see them. */
static int child_traffic(void *arg)
{
	uint64_t end = check_now_ms() + 1500;
	struct shmk_ring *r;
	char buf[64];

	CHECK_OK(shmk_ring_open((const char *)arg, NULL, &r));
	while (check_now_ms() < end) {
		CHECK_OK(shmk_ring_write(r, "0123456789", 10, 1000));
		CHECK_EQ(shmk_ring_read(r, buf, sizeof(buf), 1000), 10);
		sleep_ms(1);
	}
	CHECK_OK(shmk_ring_close(r));
	return 0;
}

/* Parses g_outf as JSON and runs the Python expression test on it (d),
 * which must hold; without python3, checks the braces balance. */
static void json_ok(const char *test)
{
	int depth = 0, in_str = 0;
	const char *p;

	if (g_python) {
		CHECK_EQ(sh("python3 -c 'import json,sys; "
			    "d=json.load(sys.stdin.buffer); assert %s, d' <%s",
			    test, g_outf),
			 0);
		return;
	}
	for (p = g_out; *p; p++) {
		if (in_str && *p == '\\' && p[1])
			p++;
		else if (*p == '"')
			in_str = !in_str;
		else if (!in_str && (*p == '{' || *p == '['))
			depth++;
		else if (!in_str && (*p == '}' || *p == ']'))
			CHECK(--depth >= 0);
	}
	CHECK(!in_str && depth == 0 && g_out[0] == '{');
}

static void test_help_and_usage(void)
{
	static const char *const verbs[] = {
		"ls",	  "info",  "watch", "send", "recv",    "pub", "sub",
		"create", "check", "rm",    "gc",   "version", "help"};
	static const struct {
		const char *args, *err;
	} usage[] = {
		{"", NULL},
		{"frobnicate", "unknown command 'frobnicate'"},
		{"info", NULL},
		{"rm", NULL},
		{"check", NULL},
		{"watch", NULL},
		{"ls extra", NULL},
		{"send", NULL},
		{"recv a b", NULL},
		{"send --chunk 0 x", "invalid value '0' for --chunk"},
		{"send --chunk 4Q x", NULL},
		{"send --timeout", "option '--timeout' needs a value"},
		{"send --nodes 8 x", "need --create"},
		{"send --create --mode 0644x x", NULL},
		{"send --create --mode 0400 x", NULL},
		{"recv --no-shutdown x", NULL},
		{"watch --count 0 x", NULL},
		{"watch --interval x x", NULL},
		{"pub", "which topic?"},
		{"sub a b", NULL},
		{"pub --nodes 4 x", "unknown option '--nodes'"},
		{"send --lossy x", "unknown option '--lossy'"},
		{"sub --lossy x", NULL},
		{"sub --no-shutdown x", NULL},
		{"pub --history 3 x", NULL},
		{"sub --history x x",
		 "invalid value 'x' for --history: a number of messages, "
		 "or all"},
		{"sub --latest --history all x", "--latest"},
		{"pub --capacity 5K x", "a power of two"},
		{"pub --max-msg 3M x",
		 "--max-msg 3145728 is too large for --capacity 4194304"},
		{"pub --subscribers 129 x", NULL},
		{"pub --mode 0644 x", "no read without write"},
		{"send --topic x", "'shmk pub NAME' publishes to it"},
		{"recv --topic x", "'shmk sub NAME' subscribes to it"},
	};
	size_t i;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		char want[64];

		CHECK_EQ(tool("%s --help", verbs[i]), 0);
		snprintf(want, sizeof(want), "usage: shmk %s", verbs[i]);
		HAS(g_out, want);
		CHECK_EQ(tool("%s --bogus x", verbs[i]), 2);
		HAS(g_err, "unknown option '--bogus'");
		snprintf(want, sizeof(want), "Try 'shmk %s --help'", verbs[i]);
		HAS(g_err, want);
	}
	CHECK_EQ(tool("--help"), 0);
	HAS(g_out, "Commands:");
	CHECK_EQ(tool("info -h"), 0);
	HAS(g_out, "usage: shmk info [--json] NAME...");
	CHECK_EQ(tool("help rm"), 0);
	HAS(g_out, "usage: shmk rm [--force] NAME...");
	CHECK_EQ(tool("version"), 0);
	HAS(g_out, SHMK_VERSION_STRING);

	/* Usage errors: exit 2, on stderr, with the reason where given.
	 * pub and sub take a topic's options, send and recv a ring's. */
	for (i = 0; i < sizeof(usage) / sizeof(usage[0]); i++) {
		CHECK_EQ(tool("%s", usage[i].args), 2);
		if (usage[i].err)
			HAS(g_err, usage[i].err);
	}
	CHECK_EQ(tool("create buffer %s --size 4K --mode 0644", tname("ro")),
		 2);
	HAS(g_err, "no read without write");
	CHECK_EQ(tool("send --create --mode 0640 %s", tname("ro")), 2);
	HAS(g_err, "no read without write");
}

/* ls, info, rm on a live object with a second participant, a shut-down
 * one and a file at a shmk name that is not an object. */
static void test_ls_info_rm(void)
{
	const char *live = tname("live"), *junk = tname("junk");
	char path[256], want[1024], c;
	struct shmk_buffer *b, *gone;
	const char *line;
	pid_t pid;
	FILE *f;

	CHECK_OK(shmk_buffer_create(live, 1000, NULL, &b));
	pid = spawn(child_hold, (void *)live);
	CHECK_EQ(read(g_pipe[0], &c, 1), 1);
	CHECK_OK(shmk_buffer_create(tname("gone"), 5000, NULL, &gone));
	CHECK_OK(shmk_buffer_close(gone));
	CHECK_OK(shmk_path(junk, path, sizeof(path)));
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
	HAS(line, " 2 "); /* attached */
	HAS(line, " - "); /* flags: not kept */
	HASNT(line, "keep");
	HAS(line, "size=1000");
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
	HAS(g_out, "flags:        none");
	HAS(g_out, "geometry:     size=1000");
	HAS(g_out, "size:         13288 bytes");
	snprintf(want, sizeof(want), "creator:      pid %d", (int)getpid());
	HAS(g_out, want);
	HAS(g_out, "participants: 2 alive, 2 slots used");
	HAS(g_out, "creator");
	/* The file's path, as the library resolves it. */
	CHECK_OK(shmk_path(live, want, sizeof(want)));
	HAS(g_out, want);

	/* JSON: one valid document, the same facts. */
	CHECK_EQ(tool("info --json %s", live), 0);
	snprintf(want, sizeof(want),
		 "d[\"objects\"][0][\"name\"] == \"%s\" and "
		 "d[\"objects\"][0][\"kind\"] == \"buffer\" and "
		 "d[\"objects\"][0][\"geometry\"][\"size\"] == 1000 and "
		 "d[\"objects\"][0][\"participants\"][\"alive\"] == 2 and "
		 "d[\"objects\"][0][\"keep\"] is False and "
		 "d[\"objects\"][0][\"creator\"][\"pid\"] == %d",
		 live, (int)getpid());
	json_ok(want);
	CHECK_EQ(tool("ls --json"), 0);
	snprintf(want, sizeof(want),
		 "[o[\"state\"] for o in d[\"objects\"] if o[\"name\"] == "
		 "\"%s\"] == [\"ready\"] and [o[\"error\"][:17] for o in "
		 "d[\"objects\"] if o[\"name\"] == \"%s\"] == [\"not a shmk "
		 "object\"]",
		 live, junk);
	json_ok(want);
	/* A missing object: still one document, exit 1, stderr says why. */
	CHECK_EQ(tool("info --json %s %s", live, tname("missing")), 1);
	HAS(g_err, "no such object");
	json_ok("len(d[\"objects\"]) == 2 and d[\"objects\"][1][\"error\"] "
		"== \"no such object\"");

	/* Errors: named object and reason on stderr, exit 1. */
	CHECK_EQ(tool("info %s", tname("missing")), 1);
	snprintf(want, sizeof(want), "shmk info: %s: no such object",
		 tname("missing"));
	HAS(g_err, want);
	CHECK_EQ(tool("info %s", junk), 1);
	HAS(g_err, junk);
	CHECK_EQ(tool("check %s", junk), 1);
	HAS(g_out, "FAIL");
	HAS(g_err, junk);
	CHECK_EQ(tool("rm %s", junk), 1);
	HAS(g_err, "not a shmk object");
	CHECK_EQ(access(path, F_OK), 0); /* left alone */
	unlink(path);

	/* rm: the name goes, the live participant keeps its memory. */
	CHECK_EQ(tool("rm %s %s", live, tname("gone")), 0);
	CHECK_RC(shmk_buffer_open(live, NULL, &gone), -ENOENT);
	CHECK_EQ(tool("rm %s", live), 1);
	HAS(g_err, "no such object");
	CHECK_EQ(tool("ls"), 0);
	CHECK(ls_line(live) == NULL);
	CHECK(ls_line(tname("gone")) == NULL);

	kill(pid, SIGKILL);
	wait_child(pid, 5000);
	CHECK_OK(shmk_buffer_close(b));
}

/* A path with characters JSON must escape, and bytes that are not
 * UTF-8: still one valid document. */
static void test_json_escaping(void)
{
	char dir[64], name[128];
	struct shmk_buffer *b;

	if (!g_python)
		return;
	snprintf(dir, sizeof(dir), "/tmp/shmk-tool-%d.d", (int)getpid());
	CHECK_OK(mkdir(dir, 0700));
	snprintf(name, sizeof(name), "%s/q\"b\\s\tt\001\xff\xc3\xa9", dir);
	CHECK_OK(shmk_buffer_create(name, 10, NULL, &b));
	CHECK_EQ(sh("'%s' info --json \"$(printf '%%s/q\"b\\\\s\\tt\\001"
		    "\\377\\303\\251' %s)\" >%s",
		    g_tool, dir, g_outf),
		 0);
	slurp(g_outf, g_out, sizeof(g_out));
	HAS(g_out, "q\\\"b\\\\s\\u0009t\\u0001\\ufffd\xc3\xa9");
	json_ok("d[\"objects\"][0][\"name\"].endswith("
		"\"/q\\\"b\\\\s\\tt\\x01\\ufffd\\xe9\")");
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(name));
	CHECK_OK(rmdir(dir));
}

static void test_send_recv(void)
{
	const size_t big = (size_t)10 << 20;
	char *data, *p, line[8192];
	const char *ring;
	size_t i, len;
	int n;

	/* 10 MiB of noise through 8 nodes of 4 KiB, in chunks; either side
	 * may create the ring. */
	data = malloc(big);
	CHECK(data != NULL);
	srand(7);
	for (i = 0; i < big; i++)
		data[i] = (char)(rand() >> 7);
	put_file(g_in, data, big);
	ring = tname("chunks");
	CHECK_EQ(send_recv(ring, "--create --nodes 8 --node-size 4K --chunk 4K",
			   "--create --nodes 8 --node-size 4096 --chunk 4K"),
		 0);
	got_equals(data, big);
	CHECK_EQ(ring_counter(ring, "written"), big / 4096);
	CHECK_EQ(ring_counter(ring, "bytes_read"), big);
	CHECK_EQ(tool("info %s", ring), 0);
	HAS(g_out, "state:        shutdown"); /* send's doing */
	HAS(g_out, "geometry:     nodes=8 node_size=4096");
	/* A shut-down ring stays so: a second send fails and says why. */
	CHECK_EQ(tool("send %s </dev/null", ring), 0); /* nothing to send */
	CHECK_EQ(tool("send %s <%s", ring, g_in), 1);
	HAS(g_err, ring);
	HAS(g_err, "shut down");
	/* ... and recv finds it drained and ends at once, with nothing. */
	CHECK_EQ(tool("recv %s", ring), 0);
	CHECK_EQ(strlen(g_out), 0);
	CHECK_EQ(tool("rm %s", ring), 0);

	/* The last chunk is shorter; recv creates, send opens. */
	ring = tname("tail");
	put_file(g_in, data, 10000);
	CHECK_EQ(send_recv(ring, "--chunk 4096",
			   "--chunk 4096 --create --nodes 2 --node-size 4096"),
		 0);
	got_equals(data, 10000);
	CHECK_EQ(ring_counter(ring, "written"), 3);
	/* Another geometry than the ring's is refused, and said so. */
	CHECK_EQ(tool("send --create --nodes 4 --node-size 4096 %s </dev/null",
		      ring),
		 1);
	HAS(g_err, "exists as a ring of 2 nodes of 4096 bytes");
	CHECK_EQ(tool("rm %s", ring), 0);

	/* Lines: empty ones, one exactly a node long; the newline is not
	 * sent (each message is the line alone). */
	p = data;
	for (n = 0; n < 3000; n++) {
		len = (size_t)(n * 37 % 300);
		if (n == 1234)
			len = 512; /* exactly a node */
		if (n % 100 == 0)
			len = 0;
		memset(p, 'a' + n % 26, len);
		p += len;
		*p++ = '\n';
	}
	ring = tname("lines");
	put_file(g_in, data, (size_t)(p - data));
	CHECK_EQ(send_recv(ring, "--create --nodes 4 --node-size 512", ""), 0);
	got_equals(data, (size_t)(p - data));
	CHECK_EQ(ring_counter(ring, "written"), 3000);
	CHECK_EQ(ring_counter(ring, "bytes_written"),
		 (uint64_t)(p - data) - 3000);
	CHECK_EQ(tool("rm %s", ring), 0);

	/* A line longer than a node: an error naming it; what came before
	 * is delivered, nothing of it or after it, and recv ends. */
	ring = tname("long");
	memset(line, 'x', sizeof(line));
	n = snprintf(data, big, "one\ntwo\n%.*s\nfour\n", 513, line);
	put_file(g_in, data, (size_t)n);
	CHECK_EQ(send_recv(ring, "--create --nodes 4 --node-size 512", ""),
		 1 * 16 + 0);
	slurp(g_errf, g_err, sizeof(g_err));
	HAS(g_err, ring);
	HAS(g_err, "line 3 is longer than a node (512 bytes)");
	got_equals("one\ntwo\n", 8);
	CHECK_EQ(tool("rm %s", ring), 0);

	/* Frames: 4-byte little-endian length, then the bytes. */
	p = data;
	for (n = 0; n < 2000; n++) {
		len = (size_t)(n * 53 % 1025);
		p[0] = (char)len;
		p[1] = (char)(len >> 8);
		p[2] = p[3] = 0;
		memset(p + 4, n, len);
		p += 4 + len;
	}
	ring = tname("frames");
	put_file(g_in, data, (size_t)(p - data));
	CHECK_EQ(send_recv(ring, "--frames --create --nodes 3 --node-size 1K",
			   "--frames"),
		 0);
	got_equals(data, (size_t)(p - data));
	CHECK_EQ(ring_counter(ring, "written"), 2000);
	CHECK_EQ(tool("rm %s", ring), 0);
	/* A frame longer than a node, and one cut short. */
	ring = tname("badframe");
	memcpy(data, "\x05\x00\x00\x00hello\x01\x04\x00\x00zz", 15);
	put_file(g_in, data, 15);
	CHECK_EQ(send_recv(ring, "--frames --create --nodes 2 --node-size 1K",
			   "--frames"),
		 1 * 16 + 0);
	slurp(g_errf, g_err, sizeof(g_err));
	HAS(g_err, "frame 2 (1025 bytes) is longer than a node (1024 bytes)");
	got_equals("\x05\x00\x00\x00hello", 9);
	CHECK_EQ(tool("rm %s", ring), 0);
	put_file(g_in, "\x05\x00\x00\x00hel", 7);
	CHECK_EQ(send_recv(ring, "--frames --create --nodes 2 --node-size 1K",
			   "--frames"),
		 1 * 16 + 0);
	slurp(g_errf, g_err, sizeof(g_err));
	HAS(g_err, "frame 1 is truncated: input ended after 3 of its 5 bytes");
	got_equals("", 0);
	CHECK_EQ(tool("rm %s", ring), 0);

	/* Timeouts: nobody reads a full ring; nobody writes. */
	ring = tname("stuck");
	put_file(g_in, data, 100);
	CHECK_EQ(tool("send --create --nodes 2 --node-size 8 --chunk 8 "
		      "--timeout 200 %s <%s",
		      ring, g_in),
		 1);
	HAS(g_err, "no free node within 200 ms");
	CHECK_EQ(tool("rm %s", ring), 0);
	CHECK_EQ(tool("recv --create --timeout 200 %s", ring), 1);
	HAS(g_err, "no message within 200 ms");
	CHECK_EQ(tool("rm %s", ring), 0);
	CHECK_EQ(tool("recv --timeout 50 %s", tname("nothere")), 1);
	HAS(g_err, "no such object");
	free(data);
}

static void test_watch(void)
{
	const char *ring = tname("watched");
	char *line, *save;
	struct shmk_ring *r;
	pid_t pid;

	CHECK_OK(shmk_ring_create(ring, 4, 64, NULL, &r));
	pid = spawn(child_traffic, (void *)ring);
	sleep_ms(100);
	CHECK_EQ(tool("watch --interval 300 --count 2 %s", ring), 0);
	CHECK_EQ(count_lines(g_out), 2);
	HASNT(g_out, "\033"); /* no terminal codes into a pipe */
	for (line = strtok_r(g_out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		HAS(line, ring);
		HAS(line, "kind=ring state=ready alive=2");
		HAS(line, "lag=");
		HASNT(line, "msg/s=0 "); /* the child moves hundreds a second */
		HASNT(line, "MB/s=-");
	}
	CHECK_EQ(wait_child(pid, 10000), 0);
	/* Idle now: nothing moves. */
	CHECK_EQ(tool("watch --interval 50 --count 1 %s", ring), 0);
	CHECK_EQ(count_lines(g_out), 1);
	HAS(g_out, "msg/s=0 MB/s=0.00 waits/s=0 lag=0");
	CHECK_EQ(tool("watch --count 1 %s", tname("nothere")), 1);
	HAS(g_err, "no such object");
	CHECK_OK(shmk_ring_close(r));
}

static void test_check(void)
{
	const char *ring = tname("checked");
	uint64_t v = 99;
	char path[256];
	struct shmk_ring *r;
	int fd;

	CHECK_OK(shmk_ring_create(ring, 8, 128, NULL, &r));
	CHECK_OK(shmk_ring_write(r, "abc", 3, 0));
	CHECK_EQ(tool("check %s", ring), 0);
	HAS(g_out, "geometry: 8 nodes of 128 bytes");
	HAS(g_out, "ok       read + lost <= written");
	HAS(g_out, "ok       high_water <= nodes");
	HASNT(g_out, "FAIL");
	HAS(g_out, ": ok\n");

	/* Corrupt the high-water mark (counter[10], docs/format.md 5.5.3,
	 * counters at 0x140): check must name the broken relation. */
	CHECK_OK(shmk_path(ring, path, sizeof(path)));
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	CHECK_EQ(pwrite(fd, &v, sizeof(v), 0x140 + 10 * 8), sizeof(v));
	CHECK_EQ(tool("check %s", ring), 1);
	HAS(g_out, "FAIL     high_water <= nodes does not hold");
	HAS(g_out, "1 problem(s)");
	HAS(g_err, ring);
	/* Messages read that were never written (counter[2]). */
	v = 1;
	CHECK_EQ(pwrite(fd, &v, sizeof(v), 0x140 + 10 * 8), sizeof(v));
	v = 1000;
	CHECK_EQ(pwrite(fd, &v, sizeof(v), 0x140 + 2 * 8), sizeof(v));
	CHECK_EQ(tool("check %s", ring), 1);
	HAS(g_out, "FAIL     read + lost <= written does not hold");
	close(fd);
	CHECK_OK(shmk_ring_close(r));
	CHECK_EQ(tool("check %s", tname("nothere")), 1);
	HAS(g_err, "no such object");
}

/* What `shmk info --json NAME` says must satisfy the Python expression
 * test on o, the object. */
static void info_json_ok(const char *name, const char *test)
{
	char expr[1024];

	CHECK_EQ(tool("info --json %s", name), 0);
	snprintf(
		expr, sizeof(expr),
		"[o for o in d[\"objects\"] if o[\"name\"] == \"%s\" and (%s)]",
		name, test);
	json_ok(expr);
}

/* The object name as `shmk create` must leave it once the tool has
 * exited: of kind, ready, kept, nobody attached, the creator gone. */
static void created_ok(const char *name, int kind, struct shmk_stat *st)
{
	CHECK_OK(shmk_stat(name, st));
	CHECK_EQ(st->kind, kind);
	CHECK_EQ(st->state, SHMK_STATE_READY);
	CHECK_EQ(st->flags & SHMK_F_KEEP, SHMK_F_KEEP);
	CHECK_EQ(st->creator_alive, 0);
	CHECK_EQ(st->nalive, 0);
	CHECK_EQ(st->owner, geteuid());
}

/* shmk create of every kind; the objects stay ready after the tool
 * exits and are what was asked for. */
static void test_create(void)
{
	const char *ring = tname("c.ring"), *buf = tname("c.buf");
	const char *arr = tname("c.arr"), *ev = tname("c.ev");
	const char *ev2 = tname("c.ev2"), *never = tname("c.never");
	/* (tname() keeps 8 names at a time: these.) */
	const char *shared = tname("c.shared"), *mine = tname("c.mine");
	static const char *const bad[] = {
		"create",
		"create ring",
		"create ring %s extra",
		"create rpc %s",
		"create bogus %s",
		"create ring %s --size 1K",
		"create ring %s --nodes 1",
		"create ring %s --node-size 0",
		"create ring %s --manual-reset",
		"create buffer %s",
		"create buffer %s --size 0",
		"create buffer %s --size 1X",
		"create buffer %s --size 1 --count 2",
		"create array %s --count 4",
		"create array %s --elem-size 4",
		"create event %s --set --size 1",
		"create event %s --mode 0400",
		"create event %s --mode 9",
		"create event %s --verbose=1",
		"create event %s --open-or-create=yes",
	};
	struct shmk_buffer *b, *own;
	struct shmk_array *a;
	struct shmk_event *e;
	struct shmk_ring *r;
	struct shmk_stat st;
	char want[512], got[8];
	int i;

	/* A ring: silent on success, ready and kept after the tool exits. */
	CHECK_EQ(tool("create ring %s --nodes 8 --node-size 1K", ring), 0);
	CHECK_EQ(strlen(g_out), 0);
	CHECK_EQ(strlen(g_err), 0);
	created_ok(ring, SHMK_KIND_RING, &st);
	CHECK_EQ(st.geom[0], 8);
	CHECK_EQ(st.geom[1], 1024);
	CHECK_EQ(st.mode, 0600);
	info_json_ok(ring, "o[\"kind\"] == \"ring\" and o[\"state\"] == "
			   "\"ready\" and o[\"keep\"] == True and "
			   "o[\"geometry\"] == {\"nodes\": 8, \"node_size\": "
			   "1024, \"single\": 0} and "
			   "o[\"creator\"][\"alive\"] == False");
	CHECK_EQ(tool("info %s", ring), 0);
	HAS(g_out, "state:        ready");
	HAS(g_out, "flags:        keep");
	/* A single-writer, single-reader ring: the mode is geometry. */
	CHECK_EQ(tool("create ring %s --nodes 8 --node-size 1K "
		      "--open-or-create --single-writer",
		      ring),
		 1);
	HAS(g_err, "single=writer");
	CHECK_OK(shmk_unlink(ring));
	CHECK_EQ(tool("create ring %s --nodes 8 --node-size 1K "
		      "--single-writer --single-reader",
		      ring),
		 0);
	created_ok(ring, SHMK_KIND_RING, &st);
	CHECK_EQ(st.geom[2], 3);
	CHECK_EQ(tool("info %s", ring), 0);
	HAS(g_out, "geometry:     nodes=8 node_size=1024 single=writer+reader");
	CHECK_EQ(tool("create event %s --single-writer", ev), 2);
	CHECK_EQ(tool("ls"), 0);
	HAS(g_out, "FLAGS");
	CHECK(ls_line(ring) != NULL);
	HAS(ls_line(ring), " keep ");
	HAS(ls_line(ring), "nodes=8 node_size=1024");

	/* A line through it with send and recv (one writer and one reader
	 * process at a time, as the ring's mode asks); a send that does not
	 * shut it down leaves it ready for the next. */
	put_file(g_in, "hello\n", 6);
	CHECK_EQ(tool("send --no-shutdown --timeout 5000 %s <%s", ring, g_in),
		 0);
	CHECK_OK(shmk_stat(ring, &st));
	CHECK_EQ(st.state, SHMK_STATE_READY);
	CHECK_EQ(ring_counter(ring, "lag"), 1);
	put_file(g_in, "world\n", 6);
	CHECK_EQ(tool("send --timeout 5000 %s <%s", ring, g_in), 0);
	CHECK_EQ(tool("recv --timeout 5000 %s", ring), 0);
	CHECK(!strcmp(g_out, "hello\nworld\n"));
	CHECK_EQ(ring_counter(ring, "read"), 2);
	/* send shut it down: it is not what create makes any more. */
	CHECK_EQ(tool("create ring %s --nodes 8 --node-size 1K "
		      "--single-writer --single-reader --open-or-create",
		      ring),
		 1);
	HAS(g_err, ring);
	HAS(g_err, "shut down; shmk rm it first");
	CHECK_EQ(tool("rm %s", ring), 0);
	/* The default geometry, send's; and a ring a program writes. */
	CHECK_EQ(tool("create ring %s", ring), 0);
	created_ok(ring, SHMK_KIND_RING, &st);
	CHECK_EQ(st.geom[0], 64);
	CHECK_EQ(st.geom[1], 65536);
	CHECK_OK(shmk_ring_open(ring, NULL, &r));
	CHECK_OK(shmk_ring_write(r, "x", 1, 0));
	CHECK_EQ(shmk_ring_read(r, got, sizeof(got), 0), 1);
	CHECK_OK(shmk_ring_close(r));

	/* A buffer, with a mode and a size suffix; -v says what it did. */
	CHECK_EQ(tool("create -v buffer %s --size 3K --mode 0660", buf), 0);
	snprintf(want, sizeof(want), "created buffer %s (size=3072", buf);
	HAS(g_out, want);
	created_ok(buf, SHMK_KIND_BUFFER, &st);
	CHECK_EQ(st.geom[0], 3072);
	CHECK_EQ(st.mode, 0660);
	info_json_ok(buf, "o[\"kind\"] == \"buffer\" and o[\"state\"] == "
			  "\"ready\" and o[\"keep\"] and o[\"mode\"] == "
			  "\"0660\" and o[\"geometry\"] == {\"size\": 3072}");
	/* Group-writable: opened on purpose only. */
	CHECK_RC(shmk_buffer_open(buf, NULL, &b), -EACCES);
	CHECK_OK(shmk_buffer_open(
		buf, &(struct shmk_opts){.flags = SHMK_F_ALLOW_SHARED}, &b));
	CHECK_OK(shmk_buffer_write(b, 3070, "ok", 2, 1000));
	CHECK_OK(shmk_buffer_close(b));

	/* An array: --count elements of --elem-size bytes, not the other
	 * way round. */
	CHECK_EQ(tool("create array %s --count 10 --elem-size 8", arr), 0);
	created_ok(arr, SHMK_KIND_ARRAY, &st);
	CHECK_EQ(st.geom[0], 8);
	CHECK_EQ(st.geom[1], 10);
	info_json_ok(arr, "o[\"kind\"] == \"array\" and o[\"state\"] == "
			  "\"ready\" and o[\"keep\"] and o[\"geometry\"] == "
			  "{\"elem_size\": 8, \"length\": 10}");
	CHECK_RC(shmk_array_open(arr, 10, NULL, &a), -EPROTO);
	CHECK_OK(shmk_array_open(arr, 8, NULL, &a));
	CHECK_EQ(shmk_array_length(a), 10);
	CHECK_OK(shmk_array_close(a));

	/* Events: manual-reset and set, or auto-reset and not set. */
	CHECK_EQ(tool("create event %s --manual-reset --set", ev), 0);
	created_ok(ev, SHMK_KIND_EVENT, &st);
	CHECK_EQ(st.geom[0], 1);
	info_json_ok(ev, "o[\"kind\"] == \"event\" and o[\"state\"] == "
			 "\"ready\" and o[\"keep\"] and o[\"geometry\"] == "
			 "{\"manual_reset\": 1}");
	CHECK_OK(shmk_event_open(ev, NULL, &e));
	CHECK_OK(shmk_event_wait(e, 0));
	CHECK_OK(shmk_event_wait(e, 0)); /* manual: still set */
	CHECK_OK(shmk_event_close(e));
	CHECK_EQ(tool("create event %s", ev2), 0);
	created_ok(ev2, SHMK_KIND_EVENT, &st);
	CHECK_EQ(st.geom[0], 0);
	CHECK_OK(shmk_event_open(ev2, NULL, &e));
	CHECK_RC(shmk_event_wait(e, 0), -EAGAIN);
	CHECK_OK(shmk_event_set(e));
	CHECK_OK(shmk_event_wait(e, 0));
	CHECK_RC(shmk_event_wait(e, 0), -EAGAIN); /* auto: taken */
	CHECK_OK(shmk_event_close(e));

	/* The name taken: exit 1 and what to do; --open-or-create succeeds
	 * on the very same object, silently, and fails on another. */
	CHECK_EQ(tool("create buffer %s --size 3K --mode 0660", buf), 1);
	snprintf(want, sizeof(want),
		 "shmk create: %s: exists; shmk rm it first or use "
		 "--open-or-create",
		 buf);
	HAS(g_err, want);
	CHECK_EQ(tool("create buffer %s --size 3K --mode 0660 "
		      "--open-or-create",
		      buf),
		 0);
	CHECK_EQ(strlen(g_out), 0);
	CHECK_EQ(strlen(g_err), 0);
	CHECK_EQ(tool("create --verbose buffer %s --size 3072 --mode 0660 "
		      "--open-or-create",
		      buf),
		 0);
	HAS(g_out, "exists as asked");
	CHECK_EQ(tool("create buffer %s --size 4K --mode 0660 "
		      "--open-or-create",
		      buf),
		 1);
	HAS(g_err, "exists as a buffer of size=3072, not the size=4096 asked");
	CHECK_EQ(tool("create ring %s --mode 0660 --open-or-create", buf), 1);
	HAS(g_err, "exists as a buffer, not a ring");
	CHECK_EQ(tool("create buffer %s --size 3K --open-or-create", buf), 1);
	HAS(g_err, "exists with mode 0660, not 0600");
	CHECK_EQ(tool("create event %s --open-or-create", ev), 1);
	HAS(g_err, "exists as an event of manual_reset=1, not the "
		   "manual_reset=0 asked for");
	CHECK_EQ(tool("create event %s --manual-reset --open-or-create", ev),
		 0);
	created_ok(buf, SHMK_KIND_BUFFER, &st); /* none of that touched it */
	CHECK_EQ(st.geom[0], 3072);
	CHECK_EQ(st.mode, 0660);
	/* Writable by others: opened as such, so create is idempotent. */
	CHECK_EQ(tool("create buffer %s --size 10 --mode 0666", shared), 0);
	CHECK_EQ(tool("create buffer %s --size 10 --mode 0666 "
		      "--open-or-create",
		      shared),
		 0);
	/* A program's own object (not kept: its creator's close shuts it
	 * down) is not what create makes. */
	CHECK_OK(shmk_buffer_create(mine, 10, NULL, &own));
	CHECK_EQ(tool("create buffer %s --size 10 --open-or-create", mine), 1);
	HAS(g_err, "not as a kept object");
	CHECK_EQ(tool("ls"), 0);
	CHECK(ls_line(mine) != NULL);
	HASNT(ls_line(mine), "keep");
	info_json_ok(mine, "o[\"keep\"] == False");
	CHECK_OK(shmk_buffer_close(own));

	/* Usage errors: exit 2, nothing created. */
	for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++) {
		char args[256];

		snprintf(args, sizeof(args), bad[i], never);
		if (tool("%s", args) != 2) {
			fprintf(stderr, "'shmk %s' did not exit 2\n", args);
			exit(1);
		}
		HAS(g_err, "Try 'shmk create --help'");
		CHECK_EQ(strlen(g_out), 0);
		CHECK_RC(shmk_stat(never, &st), -ENOENT);
	}
	CHECK_EQ(tool("create rpc %s", never), 2);
	HAS(g_err, "server");
	CHECK_EQ(tool("create ring %s --size 1K", never), 2);
	HAS(g_err, "--size is not an option of a ring");
	CHECK_EQ(tool("create array %s --count 4", never), 2);
	HAS(g_err, "an array needs --elem-size");
	/* Refused by the library: exit 1, with the reason. */
	CHECK_EQ(tool("create buffer 'bad name' --size 1"), 1);
	HAS(g_err, "invalid argument");
	CHECK_EQ(tool("create buffer %s --size 64T", never), 1);
	HAS(g_err, never);
	CHECK_RC(shmk_stat(never, &st), -ENOENT);

	CHECK_EQ(tool("rm %s %s %s %s %s %s %s", ring, buf, arr, ev, ev2,
		      shared, mine),
		 0);
}

/* A name whose header a peer overwrote: gc names it and says how to
 * remove it; rm refuses it, rm --force removes it. */
static void test_gc_corrupt(const char *pattern)
{
	const char *bad = tname("gc.bad");
	struct shmk_buffer *b;
	char path[256], want[512];
	int fd;

	CHECK_OK(shmk_buffer_create(bad, 4096, NULL, &b));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_path(bad, path, sizeof(path)));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_EQ(pwrite(fd, "\xff\xff\xff\xff", 4, 0), 4);
	close(fd);
	CHECK_EQ(tool("gc %s", pattern), 0);
	CHECK_EQ(strlen(g_out), 0);
	snprintf(want, sizeof(want), "shmk rm --force %s", bad);
	HAS(g_err, want);
	HAS(g_err, "corrupt");
	CHECK_EQ(tool("rm %s", bad), 1);
	HAS(g_err, "not a shmk object");
	CHECK_EQ(access(path, F_OK), 0);
	CHECK_EQ(tool("rm --force %s", bad), 0);
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);
	CHECK_EQ(tool("rm -f %s", bad), 1);
	HAS(g_err, "no such object");
}

static void test_gc(void)
{
	const char *dead = tname("gc.dead"), *live = tname("gc.live");
	const char *held = tname("gc.held"), *kept = tname("gc.kept");
	char pattern[64], want[256], c;
	pid_t pid, maker, holder;
	struct shmk_stat st;

	pid = spawn(child_create_die, (void *)dead);
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	pid = spawn(child_create_hold, (void *)live);
	CHECK_EQ(read(g_pipe[0], &c, 1), 1);
	/* Its creator killed, but another process still has it open. */
	maker = spawn(child_create_hold, (void *)held);
	CHECK_EQ(read(g_pipe[0], &c, 1), 1);
	holder = spawn(child_hold, (void *)held);
	CHECK_EQ(read(g_pipe[0], &c, 1), 1);
	kill(maker, SIGKILL);
	CHECK_EQ(wait_child(maker, 5000), 128 + SIGKILL);
	/* Made by shmk create: its creator exited and nobody has it open,
	 * but it is kept, meant to be unattended. */
	CHECK_EQ(tool("create buffer %s --size 100", kept), 0);
	CHECK_OK(shmk_stat(kept, &st));
	CHECK_EQ(st.creator_alive, 0);
	CHECK_EQ(st.nalive, 0);
	/* Only this test's names: other tests may run beside it. */
	snprintf(pattern, sizeof(pattern), "'t%d.gc.*'", (int)getpid());

	CHECK_EQ(tool("gc --dry-run %s", pattern), 0);
	snprintf(want, sizeof(want), "would remove %s (buffer", dead);
	HAS(g_out, want);
	HASNT(g_out, live);
	HASNT(g_out, held);
	HASNT(g_out, kept);
	CHECK_EQ(count_lines(g_out), 1);
	CHECK_EQ(tool("info %s", dead), 0); /* still there */

	CHECK_EQ(tool("gc %s", pattern), 0);
	snprintf(want, sizeof(want), "removed %s (buffer", dead);
	HAS(g_out, want);
	HASNT(g_out, live);
	HASNT(g_out, held);
	HASNT(g_out, kept);
	CHECK_EQ(tool("info %s", dead), 1);
	HAS(g_err, "no such object");
	CHECK_EQ(tool("info %s", live), 0);
	HAS(g_out, "creator:      pid");
	HAS(g_out, "alive");
	CHECK_EQ(tool("info %s", held), 0);
	HAS(g_out, "participants: 1 alive, 2 slots used");
	HASNT(g_out, "(null)");

	/* Nobody left: both go. */
	kill(pid, SIGKILL);
	wait_child(pid, 5000);
	kill(holder, SIGKILL);
	wait_child(holder, 5000);
	CHECK_EQ(tool("gc %s", pattern), 0);
	snprintf(want, sizeof(want), "removed %s (buffer", live);
	HAS(g_out, want);
	snprintf(want, sizeof(want), "removed %s (buffer", held);
	HAS(g_out, want);
	CHECK_EQ(count_lines(g_out), 2);
	HASNT(g_out, kept);
	CHECK_EQ(tool("gc %s", pattern), 0);
	CHECK_EQ(strlen(g_out), 0);
	/* The kept one is still there, and still usable; rm removes it. */
	CHECK_EQ(tool("info %s", kept), 0);
	HAS(g_out, "state:        ready");
	HAS(g_out, "flags:        keep");
	CHECK_EQ(tool("rm %s", kept), 0);
	CHECK_EQ(tool("gc %s", pattern), 0);
	CHECK_EQ(strlen(g_out), 0);
	CHECK_RC(shmk_stat(kept, &st), -ENOENT);
	test_gc_corrupt(pattern);
}

/* ---------------------------------------------------------------------
 * Topics: create, ls, info, watch, pub, sub, check, gc
 * --------------------------------------------------------------------- */

/* A subscriber in another process that takes nothing, until killed:
 * it holds a lossless topic's publishers up. */
static int child_sub_idle(void *arg)
{
	struct shmk_opts o = {.wait_ms = 5000};
	struct shmk_topic *t;

	CHECK_OK(shmk_topic_open((const char *)arg, &o, &t));
	CHECK_OK(shmk_topic_subscribe(t, 0));
	CHECK_EQ(write(g_pipe[1], "s", 1), 1);
	for (;;)
		pause();
}

/* Runs the shell command cmd in a child process (exec'd, so that the
 * child is the tool when cmd starts with exec). */
static int child_sh(void *arg)
{
	execl("/bin/sh", "sh", "-c", (const char *)arg, (char *)NULL);
	return 127;
}

/* Waits up to 10 s for counter of name to reach want; returns it. */
static uint64_t wait_counter(const char *name, const char *counter,
			     uint64_t want)
{
	uint64_t end = check_now_ms() + 10000, v;

	while ((v = ring_counter(name, counter)) < want && check_now_ms() < end)
		sleep_ms(2);
	return v;
}

/* The lines "from\n" .. "to\n" in buf (cap bytes); returns the length. */
static size_t seq_lines(char *buf, size_t cap, int from, int to)
{
	size_t n = 0;
	int i;

	for (i = from; i <= to && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%d\n", i);
	CHECK(n < cap);
	return n;
}

/*
 * pub (into name, creating it if need be) and one sub, each with its
 * options; returns pub's status * 16 + sub's.  sub writes to g_got; pub
 * reads g_in and waits for sub to subscribe.  Both have a deadline.
 */
static int pub_sub(const char *name, const char *pub_opts, const char *sub_opts)
{
	return sh(": >%s; '%s' sub --timeout 30000 %s %s >%s 2>>%s & "
		  "'%s' pub --subscribers 1 --timeout 30000 %s %s <%s "
		  "2>>%s; s=$?; wait $!; r=$?; exit $((s * 16 + r))",
		  g_errf, g_tool, sub_opts, name, g_got, g_errf, g_tool,
		  pub_opts, name, g_in, g_errf);
}

/* create topic; ls, info (--json too) and watch on it, the slowest
 * subscriber named. */
static void test_topic_info(void)
{
	const char *topic = tname("t.info"), *never = tname("t.never");
	struct shmk_topic *t;
	struct shmk_stat st;
	char want[512], c;
	uint64_t i;
	pid_t pid;

	CHECK_EQ(tool("create topic %s --capacity 64K --max-msg 1K", topic), 0);
	CHECK_EQ(strlen(g_out) + strlen(g_err), 0);
	created_ok(topic, SHMK_KIND_TOPIC, &st);
	CHECK_EQ(st.geom[0], 65536);
	CHECK_EQ(st.geom[1], 1024);
	CHECK_EQ(st.geom[2], 0);
	CHECK_EQ(tool("info %s", topic), 0);
	HAS(g_out, "kind:         topic");
	HAS(g_out, "geometry:     capacity=65536 max_msg=1024 lossless");
	HAS(g_out, "policy:       lossless (publishers wait for the slowest");
	HAS(g_out, "held:         0 message(s)");
	HAS(g_out, "subscribers:  none");
	HASNT(g_out, "slowest:");
	info_json_ok(topic, "o[\"kind\"] == \"topic\" and o[\"keep\"] and "
			    "o[\"geometry\"] == {\"capacity\": 65536, "
			    "\"max_msg\": 1024, \"lossy\": 0} and o[\"lag\"] "
			    "== 0");
	/* The same again is fine; the other policy is not. */
	CHECK_EQ(tool("create topic %s --capacity 64K --max-msg 1K "
		      "--open-or-create",
		      topic),
		 0);
	CHECK_EQ(tool("create topic %s --capacity 64K --max-msg 1K --lossy "
		      "--open-or-create",
		      topic),
		 1);
	HAS(g_err, "exists as a topic of capacity=65536 max_msg=1024 "
		   "lossless, not the capacity=65536 max_msg=1024 lossy asked");

	/* A subscriber in another process that takes nothing: named, with
	 * its lag, by info, ls and watch. */
	pid = spawn(child_sub_idle, (void *)topic);
	CHECK_EQ(read(g_pipe[0], &c, 1), 1);
	CHECK_OK(shmk_topic_open(topic, NULL, &t));
	for (i = 0; i < 7; i++)
		CHECK_OK(shmk_topic_publish(t, &i, sizeof(i), 0));
	CHECK_EQ(tool("info %s", topic), 0);
	HAS(g_out, "held:         7 message(s)");
	HAS(g_out, "subscribers:  1 live");
	snprintf(want, sizeof(want),
		 "slowest:      pid %d, 7 message(s) behind (publishers wait "
		 "for it)",
		 (int)pid);
	HAS(g_out, want);
	snprintf(want, sizeof(want),
		 "o[\"lag\"] == 7 and o[\"counters\"][\"slowest_pid\"] == %d "
		 "and o[\"counters\"][\"subscribers\"] == 1 and "
		 "o[\"counters\"][\"published\"] == 7",
		 (int)pid);
	info_json_ok(topic, want);
	CHECK_EQ(tool("ls"), 0);
	CHECK(ls_line(topic) != NULL);
	HAS(ls_line(topic), "topic");
	HAS(ls_line(topic), " keep ");
	HAS(ls_line(topic), "capacity=65536 max_msg=1024 lossless lag=7");
	CHECK_EQ(tool("watch --interval 50 --count 1 %s", topic), 0);
	HAS(g_out, "kind=topic state=ready alive=2 msg/s=0 MB/s=0.00 "
		   "waits/s=0 lag=7");
	kill(pid, SIGKILL);
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	CHECK_EQ(tool("info %s", topic), 0);
	HAS(g_out, "subscribers:  none");
	CHECK_OK(shmk_topic_close(t));

	/* Defaults; a lossy one. */
	CHECK_EQ(tool("rm %s", topic), 0);
	CHECK_EQ(tool("create topic %s", topic), 0);
	created_ok(topic, SHMK_KIND_TOPIC, &st);
	CHECK_EQ(st.geom[0], 4 << 20);
	CHECK_EQ(st.geom[1], 64 << 10);
	CHECK_EQ(tool("rm %s", topic), 0);
	CHECK_EQ(tool("create -v topic %s --lossy --capacity 4K --mode 0660",
		      topic),
		 0);
	HAS(g_out, "capacity=4096 max_msg=2048 lossy, mode 0660");
	created_ok(topic, SHMK_KIND_TOPIC, &st);
	CHECK_EQ(st.geom[2], 1);
	CHECK_EQ(st.mode, 0660);
	CHECK_EQ(tool("info %s", topic), 0);
	HAS(g_out, "policy:       lossy (the oldest messages are overwritten)");
	CHECK_EQ(tool("rm %s", topic), 0);

	/* Usage errors: exit 2, nothing made. */
	CHECK_EQ(tool("create topic %s --capacity 3M", never), 2);
	HAS(g_err, "invalid value '3M' for --capacity: a power of two");
	CHECK_EQ(tool("create topic %s --capacity 2K", never), 2);
	CHECK_EQ(tool("create topic %s --capacity 8K --max-msg 8K", never), 2);
	HAS(g_err, "--max-msg 8192 is too large for --capacity 8192: at most "
		   "4096");
	CHECK_EQ(tool("create topic %s --max-msg 0", never), 2);
	CHECK_EQ(tool("create topic %s --nodes 4", never), 2);
	HAS(g_err, "--nodes is not an option of a topic");
	CHECK_EQ(tool("create ring %s --lossy", never), 2);
	HAS(g_err, "--lossy is not an option of a ring");
	CHECK_RC(shmk_stat(never, &st), -ENOENT);
}

/* The recipe of shmk(1) and 'shmk pub --help': one producer into three
 * consumers at once, each of which gets every line, in order. */
static void test_pub_three(void)
{
	const char *topic = tname("t.feed");
	char a[80], b[80], c[80], *want;
	size_t len;

	snprintf(a, sizeof(a), "%s.a", g_got);
	snprintf(b, sizeof(b), "%s.b", g_got);
	snprintf(c, sizeof(c), "%s.c", g_got);
	want = malloc(1 << 20);
	CHECK(want != NULL);
	len = seq_lines(want, 1 << 20, 1, 100000);
	CHECK_EQ(sh("S='%s'; $S sub --timeout 30000 %s > %s & "
		    "$S sub --timeout 30000 %s > %s & "
		    "$S sub --timeout 30000 %s > %s & "
		    "seq 100000 | $S pub --subscribers 3 --timeout 30000 %s; "
		    "p=$?; wait; exit $p",
		    g_tool, topic, a, topic, b, topic, c, topic),
		 0);
	file_equals(a, want, len);
	file_equals(b, want, len);
	file_equals(c, want, len);
	unlink(a);
	unlink(b);
	unlink(c);
	/* pub made it and shut it down at the end of its input. */
	CHECK_EQ(ring_counter(topic, "published"), 100000);
	CHECK_EQ(ring_counter(topic, "delivered"), 300000);
	CHECK_EQ(ring_counter(topic, "lost"), 0);
	CHECK_EQ(tool("info %s", topic), 0);
	HAS(g_out, "state:        shutdown");
	HAS(g_out, "geometry:     capacity=4194304 max_msg=65536 lossless");
	HAS(g_out, "flags:        none");
	/* A shut-down topic stays so: pub says why, sub ends at once. */
	CHECK_EQ(tool("pub %s </dev/null", topic), 0); /* nothing to send */
	put_file(g_in, "x\n", 2);
	CHECK_EQ(tool("pub %s <%s", topic, g_in), 1);
	HAS(g_err, "the topic is shut down, nothing more can be published");
	CHECK_EQ(tool("pub --subscribers 1 %s <%s", topic, g_in), 1);
	HAS(g_err, "the topic is shut down");
	CHECK_EQ(tool("sub --timeout 5000 %s", topic), 0);
	CHECK_EQ(strlen(g_out), 0);
	CHECK_EQ(tool("rm %s", topic), 0);
	free(want);
}

/* pub and sub in every mode, history, the latest, and their errors. */
static void test_pub_sub(void)
{
	const char *topic = tname("t.ps"), *ring = tname("t.ring");
	char *data, *p, line[1024], cmd[512], h3[80], hall[80], hnew[80];
	struct shmk_ring *r;
	size_t len;
	pid_t pid;
	char c;
	int n;

	/* Lines: empty ones, one exactly max_msg long. */
	data = malloc(1 << 20);
	CHECK(data != NULL);
	p = data;
	for (n = 0; n < 3000; n++) {
		len = (size_t)(n * 37 % 300);
		if (n == 1234)
			len = 512;
		if (n % 100 == 0)
			len = 0;
		memset(p, 'a' + n % 26, len);
		p += len;
		*p++ = '\n';
	}
	put_file(g_in, data, (size_t)(p - data));
	CHECK_EQ(pub_sub(topic, "--capacity 16K --max-msg 512", ""), 0);
	got_equals(data, (size_t)(p - data));
	CHECK_EQ(ring_counter(topic, "published"), 3000);
	CHECK_EQ(ring_counter(topic, "bytes_published"),
		 (uint64_t)(p - data) - 3000);
	CHECK_EQ(tool("rm %s", topic), 0);

	/* Frames, every length from 0 to 1 KiB, through a small log. */
	p = data;
	for (n = 0; n < 2000; n++) {
		len = (size_t)(n * 53 % 1025);
		p[0] = (char)len;
		p[1] = (char)(len >> 8);
		p[2] = p[3] = 0;
		memset(p + 4, n, len);
		p += 4 + len;
	}
	put_file(g_in, data, (size_t)(p - data));
	CHECK_EQ(pub_sub(topic, "--frames --capacity 8K --max-msg 1K",
			 "--frames"),
		 0);
	got_equals(data, (size_t)(p - data));
	CHECK_EQ(ring_counter(topic, "published"), 2000);
	CHECK_EQ(tool("rm %s", topic), 0);
	/* Chunks, the last one shorter. */
	put_file(g_in, data, 10000);
	CHECK_EQ(pub_sub(topic, "--chunk 4K", "--chunk 4K"), 0);
	got_equals(data, 10000);
	CHECK_EQ(ring_counter(topic, "published"), 3);
	CHECK_EQ(tool("rm %s", topic), 0);

	/* A line longer than max_msg: named; what came before arrives. */
	memset(line, 'x', sizeof(line));
	n = snprintf(data, 1 << 20, "one\ntwo\n%.*s\nfour\n", 65, line);
	put_file(g_in, data, (size_t)n);
	CHECK_EQ(pub_sub(topic, "--capacity 4K --max-msg 64", ""), 1 * 16);
	slurp(g_errf, g_err, sizeof(g_err));
	HAS(g_err, "line 3 is longer than the topic's max_msg (64 bytes)");
	got_equals("one\ntwo\n", 8);
	CHECK_EQ(tool("rm %s", topic), 0);

	/* A subscriber started first waits for the topic to appear. */
	snprintf(cmd, sizeof(cmd), "exec '%s' sub --timeout 30000 %s >%s",
		 g_tool, topic, g_got);
	pid = spawn(child_sh, cmd);
	sleep_ms(300);
	CHECK_EQ(waitpid(pid, NULL, WNOHANG), 0); /* still waiting */
	put_file(g_in, "early\nbird\n", 11);
	CHECK_EQ(
		tool("pub --subscribers 1 --timeout 30000 %s <%s", topic, g_in),
		0);
	CHECK_EQ(wait_child(pid, 30000), 0);
	got_equals("early\nbird\n", 11);
	CHECK_EQ(tool("rm %s", topic), 0);

	/* History and the latest, on a kept topic pub does not shut down. */
	CHECK_EQ(tool("create topic %s --capacity 64K --max-msg 64", topic), 0);
	CHECK_EQ(tool("sub --latest %s", topic), 1);
	HAS(g_err, "holds no message");
	len = seq_lines(data, 1 << 20, 1, 10);
	put_file(g_in, data, len);
	CHECK_EQ(tool("pub --no-shutdown %s <%s", topic, g_in), 0);
	CHECK_EQ(tool("sub --latest %s", topic), 0);
	CHECK(!strcmp(g_out, "10\n"));
	CHECK_EQ(tool("sub --latest --frames %s", topic), 0);
	CHECK(!memcmp(g_out,
		      "\x02\x00\x00\x00"
		      "10",
		      6));
	snprintf(h3, sizeof(h3), "%s.h3", g_got);
	snprintf(hall, sizeof(hall), "%s.hall", g_got);
	snprintf(hnew, sizeof(hnew), "%s.hnew", g_got);
	CHECK_EQ(sh("S='%s'; $S sub --history 3 --timeout 30000 %s >%s & "
		    "$S sub --history all --timeout 30000 %s >%s & "
		    "$S sub --timeout 30000 %s >%s & "
		    "echo 11 | $S pub --subscribers 3 --timeout 30000 %s; "
		    "p=$?; wait; exit $p",
		    g_tool, topic, h3, topic, hall, topic, hnew, topic),
		 0);
	file_equals(h3, "8\n9\n10\n11\n", strlen("8\n9\n10\n11\n"));
	len = seq_lines(data, 1 << 20, 1, 11);
	file_equals(hall, data, len);
	file_equals(hnew, "11\n", 3);
	unlink(h3);
	unlink(hall);
	unlink(hnew);
	CHECK_EQ(tool("rm %s", topic), 0);

	/* Geometry asked for that the topic does not have; the wrong kind
	 * both ways. */
	CHECK_EQ(tool("create topic %s --capacity 8K --max-msg 64", topic), 0);
	CHECK_EQ(tool("pub --lossy %s </dev/null", topic), 1);
	HAS(g_err, "exists as a topic of capacity=8192 max_msg=64 lossless, "
		   "not the capacity=8192 max_msg=64 lossy asked for");
	CHECK_EQ(tool("pub --capacity 16K %s </dev/null", topic), 1);
	HAS(g_err, "not the capacity=16384 max_msg=64 lossless asked for");
	CHECK_EQ(tool("pub --capacity 8K --max-msg 64 --no-shutdown %s "
		      "</dev/null",
		      topic),
		 0);
	CHECK_EQ(tool("send %s </dev/null", topic), 1);
	HAS(g_err, "is a topic, not a ring");
	CHECK_OK(shmk_ring_create(ring, 2, 64, NULL, &r));
	CHECK_EQ(tool("sub %s", ring), 1);
	HAS(g_err, "is a ring, not a topic");
	CHECK_EQ(tool("pub %s </dev/null", ring), 1);
	HAS(g_err, "is a ring, not a topic");
	CHECK_OK(shmk_ring_close(r));

	/* Waiting for subscribers, and for room, in vain: said, with the
	 * one that holds a lossless topic up. */
	CHECK_EQ(tool("pub --subscribers 2 --timeout 200 --no-shutdown %s "
		      "</dev/null",
		      topic),
		 1);
	HAS(g_err, "0 of the 2 subscriber(s) waited for came within 200 ms");
	pid = spawn(child_sub_idle, (void *)topic);
	CHECK_EQ(read(g_pipe[0], &c, 1), 1);
	len = seq_lines(data, 1 << 20, 1, 1000);
	put_file(g_in, data, len);
	CHECK_EQ(tool("pub --no-shutdown --timeout 200 %s <%s", topic, g_in),
		 1);
	snprintf(line, sizeof(line),
		 "no room within 200 ms: the slowest subscriber, pid %d, is "
		 "63 message(s) behind",
		 (int)pid);
	HAS(g_err, line);
	kill(pid, SIGKILL);
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	CHECK_EQ(tool("sub --timeout 200 %s", topic), 1);
	HAS(g_err, "no message within 200 ms");
	CHECK_EQ(tool("rm %s %s", topic, ring), 0);
	CHECK_EQ(tool("sub --timeout 50 %s", tname("t.nothere")), 1);
	HAS(g_err, "no such object");
	free(data);
}

/* A lossy topic laps a stopped subscriber: it says so once, with the
 * count, and goes on from the oldest message held to the end. */
static void test_sub_lapped(void)
{
	const char *topic = tname("t.lossy");
	char cmd[512], errf[80], *got, *p, *nl;
	uint64_t lost;
	size_t len, i;
	pid_t pid;
	int first, v, prev;

	CHECK_EQ(tool("create topic %s --lossy --capacity 4K --max-msg 64",
		      topic),
		 0);
	snprintf(errf, sizeof(errf), "%s.lap", g_errf);
	snprintf(cmd, sizeof(cmd), "exec '%s' sub --timeout 30000 %s >%s 2>%s",
		 g_tool, topic, g_got, errf);
	pid = spawn(child_sh, cmd);
	CHECK_EQ(wait_counter(topic, "subscribers", 1), 1);
	put_file(g_in, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", 21);
	CHECK_EQ(tool("pub --no-shutdown %s <%s", topic, g_in), 0);
	CHECK_EQ(wait_counter(topic, "delivered", 10), 10);
	kill(pid, SIGSTOP);
	got = malloc(1 << 20);
	CHECK(got != NULL);
	len = seq_lines(got, 1 << 20, 11, 1000);
	put_file(g_in, got, len);
	CHECK_EQ(tool("pub %s <%s", topic, g_in), 0); /* never waits */
	CHECK_EQ(tool("info %s", topic), 0);
	snprintf(cmd, sizeof(cmd),
		 "slowest:      pid %d, 990 message(s) "
		 "behind\n",
		 (int)pid);
	HAS(g_out, cmd);
	kill(pid, SIGCONT);
	CHECK_EQ(wait_child(pid, 30000), 0);
	lost = ring_counter(topic, "lost");
	CHECK(lost >= 990 - 64 && lost < 990);

	/* 1..10, then the last ones held, in order, up to 1000. */
	free(got);
	got = get_file(g_got, &len);
	got = realloc(got, len + 1);
	CHECK(got != NULL);
	got[len] = 0;
	for (i = 0, prev = 0, first = 0, p = got; *p; p = nl + 1, i++) {
		nl = strchr(p, '\n');
		CHECK(nl != NULL);
		v = atoi(p);
		if (i == 10)
			first = v;
		else
			CHECK_EQ(v, prev + 1);
		prev = v;
	}
	CHECK_EQ(prev, 1000);
	CHECK_EQ((uint64_t)first, 11 + lost);
	CHECK_EQ(i, 10 + 990 - lost);
	/* One line on standard error, that counts them and says where. */
	slurp(errf, g_err, sizeof(g_err));
	CHECK_EQ(count_lines(g_err), 1);
	snprintf(cmd, sizeof(cmd),
		 "shmk sub: %s: lapped: lost %llu message(s) before message "
		 "11 of the output\n",
		 topic, (unsigned long long)lost);
	HAS(g_err, cmd);
	unlink(errf);
	free(got);
	CHECK_EQ(tool("rm %s", topic), 0);
}

/* check on a healthy topic and on one whose counters were overwritten;
 * gc of the topics pub made and of a killed creator's. */
static void test_topic_check_gc(void)
{
	const char *topic = tname("t.chk"), *made = tname("gct.made");
	const char *dead = tname("gct.dead"), *kept = tname("gct.kept");
	char path[256], pattern[64], want[256], c;
	struct shmk_topic *t;
	uint64_t v;
	pid_t pid;
	int fd;

	CHECK_OK(shmk_topic_create(topic, 8192, 128, NULL, &t));
	CHECK_OK(shmk_topic_publish(t, "abc", 3, 0));
	CHECK_EQ(tool("check %s", topic), 0);
	HAS(g_out, "ok       opened as a topic");
	HAS(g_out, "geometry: a lossless log of 8192 bytes, messages of up "
		   "to 128 bytes, 63 at most");
	HAS(g_out, "ok       bytes_published <= published x max_msg");
	HAS(g_out, "ok       held <= the log's messages");
	HAS(g_out, "ok       lossless: lost = 0");
	HASNT(g_out, "FAIL");
	HAS(g_out, ": ok\n");
	/* Lost messages on a lossless topic (counter[6], the header's
	 * counters at 0x140), bytes never published (counter[1]). */
	CHECK_OK(shmk_path(topic, path, sizeof(path)));
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	v = 5;
	CHECK_EQ(pwrite(fd, &v, sizeof(v), 0x140 + 6 * 8), sizeof(v));
	CHECK_EQ(tool("check %s", topic), 1);
	HAS(g_out, "FAIL     lossless: lost = 0 does not hold");
	HAS(g_out, "1 problem(s)");
	HAS(g_err, topic);
	v = 0;
	CHECK_EQ(pwrite(fd, &v, sizeof(v), 0x140 + 6 * 8), sizeof(v));
	v = 1000;
	CHECK_EQ(pwrite(fd, &v, sizeof(v), 0x140 + 1 * 8), sizeof(v));
	CHECK_EQ(tool("check %s", topic), 1);
	HAS(g_out,
	    "FAIL     bytes_published <= published x max_msg does not hold");
	v = 0;
	CHECK_EQ(pwrite(fd, &v, sizeof(v), 0x140 + 1 * 8), sizeof(v));
	close(fd);
	CHECK_OK(shmk_topic_close(t));
	CHECK_EQ(tool("check %s", topic), 0); /* shut down: said */
	HAS(g_out, "shut down: publishers get -EPIPE");
	CHECK_OK(shmk_unlink(topic));

	/* Made by pub (its creator, gone), by a process killed since with
	 * a subscriber still alive, by shmk create (kept). */
	put_file(g_in, "x\n", 2);
	CHECK_EQ(tool("pub %s <%s", made, g_in), 0);
	CHECK_EQ(tool("create topic %s", kept), 0);
	CHECK_OK(shmk_topic_create(dead, 4096, 64, NULL, &t));
	pid = spawn(child_sub_idle, (void *)dead);
	CHECK_EQ(read(g_pipe[0], &c, 1), 1);
	CHECK_OK(shmk_topic_close(t)); /* as good as killed: gone */
	snprintf(pattern, sizeof(pattern), "'t%d.gct.*'", (int)getpid());
	CHECK_EQ(tool("gc %s", pattern), 0);
	snprintf(want, sizeof(want), "removed %s (topic, creator pid", made);
	HAS(g_out, want);
	CHECK_EQ(count_lines(g_out), 1);
	kill(pid, SIGKILL);
	CHECK_EQ(wait_child(pid, 5000), 128 + SIGKILL);
	CHECK_EQ(tool("gc %s", pattern), 0);
	snprintf(want, sizeof(want), "removed %s (topic", dead);
	HAS(g_out, want);
	CHECK_EQ(count_lines(g_out), 1);
	CHECK_EQ(tool("info %s", kept), 0);
	HAS(g_out, "state:        ready");
	CHECK_EQ(tool("rm %s", kept), 0);
}

int main(int argc, char **argv)
{
	check_init();
	CHECK(argc == 2);
	g_tool = argv[1];
	snprintf(g_outf, sizeof(g_outf), "/tmp/shmk-tool-%d.out", getpid());
	snprintf(g_errf, sizeof(g_errf), "/tmp/shmk-tool-%d.err", getpid());
	snprintf(g_in, sizeof(g_in), "/tmp/shmk-tool-%d.in", getpid());
	snprintf(g_got, sizeof(g_got), "/tmp/shmk-tool-%d.got", getpid());
	CHECK_OK(pipe(g_pipe));
	g_python = sh("command -v python3 >/dev/null 2>&1") == 0;
	if (!g_python)
		printf("test_tool: no python3: JSON checked for balance "
		       "only\n");

	test_help_and_usage();
	test_ls_info_rm();
	test_json_escaping();
	test_send_recv();
	test_watch();
	test_check();
	test_create();
	test_gc();
	test_topic_info();
	test_pub_three();
	test_pub_sub();
	test_sub_lapped();
	test_topic_check_gc();

	unlink(g_outf);
	unlink(g_errf);
	unlink(g_in);
	unlink(g_got);
	printf("test_tool: ok\n");
	return 0;
}
