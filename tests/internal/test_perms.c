/* SPDX-License-Identifier: MIT */
/*
 * test_perms - objects between users.  The test runs as root and plays the
 * users with child processes that drop to other uids (setresuid):
 *  1. another user's private (0600) object cannot be opened, described or
 *     removed: -EACCES, from the kernel, with SHMK_F_ALLOW_SHARED too;
 *  2. an object planted by another user at a name, writable by others
 *     (0666, 0622), is refused (-EACCES) before it is mapped or attached,
 *     also by a create with SHMK_F_OPEN_OR_CREATE; SHMK_F_ALLOW_SHARED
 *     opens it on purpose where the kernel lets us;
 *  3. `shmk gc` (and `shmk rm`) run by another user remove nothing of
 *     ours and say so;
 *  4. an anonymous object can be received and opened by another user
 *     (unless made with mode 0600: -EACCES), who cannot shrink or grow
 *     it (its memfd is sealed): ftruncate fails with EPERM, through any
 *     description, and the creator keeps reading it; punching a hole
 *     only zeroes pages, which raises no signal either;
 *  5. a named object shared on purpose (mode 0666) can be shrunk by a
 *     peer of another user allowed to write it: a process that has it
 *     mapped survives (shmk's SIGBUS guard, shmk.h "Trust"): its next call
 *     returns -EBADMSG, a pointer it held (shmk_buffer_data, a ring node
 *     from shmk_ring_acquire) still reads, zeros past the new end, and its
 *     close succeeds, as does the creator's; an open after the truncation
 *     fails with -EBADMSG (or -EPROTO when not even the magic is left).
 *     A peer that may not write it (the default mode 0600)
 *     cannot.
 * Skipped (77) when not run as root: playing two users needs it.
 *
 * Usage: test_perms SHMK-TOOL
 *
 * White-box: src/internal.h for SHMK__HDR_SIZE, the header's size: the
 * sealed memfd is truncated to exactly its header, and a hole is punched
 * in its data past it.
 */
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "check.h"
#include "internal.h"

#define OTHER  65533 /* a user who plants objects */
#define VICTIM 65534 /* nobody: a user who opens them */

static const char *g_tool;

static char *path_of(const char *name)
{
	static char path[256];

	CHECK_OK(shmk_path(name, path, sizeof(path)));
	return path;
}

static int nparts(const char *name)
{
	struct shmk_stat st;

	CHECK_OK(shmk_stat(name, &st));
	return st.nparts;
}

/* ---------------------------------------------------------------------
 * 1. Another user's private object
 * --------------------------------------------------------------------- */

static int victim_private(void *arg)
{
	struct shmk_opts o = {.flags = SHMK_F_ALLOW_SHARED};
	struct shmk_rpc_opts ro = {.flags = SHMK_F_ALLOW_SHARED};
	struct shmk_buffer *b = NULL;
	struct shmk_rpc *ep = NULL;
	struct shmk_stat st;

	(void)arg;
	check_become(VICTIM);
	CHECK_RC(shmk_buffer_open(tname("priv"), NULL, &b), -EACCES);
	CHECK_RC(shmk_buffer_open(tname("priv"), &o, &b), -EACCES);
	CHECK(b == NULL);
	CHECK_RC(shmk_stat(tname("priv"), &st), -EACCES);
	CHECK_RC(shmk_unlink(tname("priv")), -EACCES);
	CHECK_RC(shmk_rpc_connect(tname("privsrv"), NULL, &ep), -EACCES);
	CHECK_RC(shmk_rpc_connect(tname("privsrv"), &ro, &ep), -EACCES);
	CHECK(ep == NULL);
	return 0;
}

static void test_private(void)
{
	struct shmk_buffer *b;
	struct shmk_rpc *srv;
	struct stat st;

	CHECK_OK(shmk_buffer_create(tname("priv"), 4096, NULL, &b));
	CHECK_OK(shmk_rpc_serve(tname("privsrv"), NULL, &srv));
	CHECK_OK(stat(path_of(tname("priv")), &st));
	CHECK_EQ(st.st_mode & 07777, 0600);
	CHECK_EQ(wait_child(spawn(victim_private, NULL), 20000), 0);
	/* Untouched: nobody else attached, still there. */
	CHECK_EQ(nparts(tname("priv")), 1);
	CHECK_OK(shmk_rpc_close(srv));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(tname("priv")));
	printf("private: ok\n");
}

/* ---------------------------------------------------------------------
 * 2. A planted object, writable by others
 * --------------------------------------------------------------------- */

static int other_plants(void *arg)
{
	struct shmk_opts o = {.mode = 0666};
	struct shmk_buffer *b;
	int v = 0x5eed;

	(void)arg;
	check_become(OTHER);
	CHECK_OK(shmk_buffer_create(tname("plant666"), 4096, &o, &b));
	CHECK_OK(shmk_buffer_write(b, 0, &v, sizeof(v), -1));
	o.mode = 0622;
	CHECK_OK(shmk_buffer_create(tname("plant622"), 4096, &o, &b));
	/* Both left behind on purpose: the process exits. */
	return 0;
}

static void refused_everywhere(const char *who)
{
	struct shmk_opts oc = {.flags = SHMK_F_OPEN_OR_CREATE};
	struct shmk_buffer *b = NULL;

	/* Not trusted: refused before it is mapped or attached. */
	CHECK_RC(shmk_buffer_open(tname("plant666"), NULL, &b), -EACCES);
	CHECK_RC(shmk_buffer_open(tname("plant622"), NULL, &b), -EACCES);
	/* A create that would open an existing object does not adopt it. */
	CHECK_RC(shmk_buffer_create(tname("plant666"), 4096, &oc, &b), -EACCES);
	CHECK_RC(shmk_buffer_create(tname("plant666"), 4096, NULL, &b),
		 -EEXIST);
	CHECK(b == NULL);
	/* Nobody attached (the planter's own slot only).  0622 cannot
	 * even be described by anyone but its owner (and root). */
	CHECK_EQ(nparts(tname("plant666")), 1);
	if (geteuid() == 0)
		CHECK_EQ(nparts(tname("plant622")), 1);
	printf("planted, opened by %s: refused\n", who);
}

static int victim_planted(void *arg)
{
	struct shmk_opts o = {.flags = SHMK_F_ALLOW_SHARED};
	struct shmk_buffer *b = NULL;
	int v = 0;

	(void)arg;
	check_become(VICTIM);
	refused_everywhere("another user");
	/* Deliberate sharing: the flag trusts it... */
	CHECK_OK(shmk_buffer_open(tname("plant666"), &o, &b));
	CHECK_OK(shmk_buffer_read(b, 0, &v, sizeof(v), 1000));
	CHECK_EQ(v, 0x5eed);
	CHECK_OK(shmk_buffer_close(b));
	/* ...where the kernel lets us: 0622 is not readable by others. */
	CHECK_RC(shmk_buffer_open(tname("plant622"), &o, &b), -EACCES);
	return 0;
}

static void test_planted(void)
{
	struct stat st;

	CHECK_EQ(wait_child(spawn(other_plants, NULL), 20000), 0);
	CHECK_OK(stat(path_of(tname("plant666")), &st));
	CHECK_EQ(st.st_uid, OTHER);
	CHECK_EQ(st.st_mode & 07777, 0666);
	CHECK_OK(stat(path_of(tname("plant622")), &st));
	CHECK_EQ(st.st_mode & 07777, 0622);
	CHECK_EQ(wait_child(spawn(victim_planted, NULL), 20000), 0);
	/* Root is refused the same way: the owner is not root. */
	refused_everywhere("root");
	CHECK_OK(shmk_unlink(tname("plant666")));
	CHECK_OK(shmk_unlink(tname("plant622")));
}

/* ---------------------------------------------------------------------
 * 3. shmk gc and rm as another user
 * --------------------------------------------------------------------- */

static char g_out[65536], g_err[65536];

static void slurp(int fd, char *buf, size_t cap)
{
	ssize_t n = pread(fd, buf, cap - 1, 0);

	CHECK(n >= 0);
	buf[n] = 0;
}

/* Runs the tool as uid with args (a NULL-terminated list). */
static int tool_as(uid_t uid, const char *const *args)
{
	char outp[] = "/tmp/shmk-perms-out-XXXXXX";
	char errp[] = "/tmp/shmk-perms-err-XXXXXX";
	const char *argv[16];
	int out = mkstemp(outp), err = mkstemp(errp), i, st;
	pid_t pid;

	CHECK(out >= 0 && err >= 0);
	unlink(outp);
	unlink(errp);
	argv[0] = g_tool;
	for (i = 0; args[i]; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(out, 1);
		dup2(err, 2);
		check_become(uid);
		execv(g_tool, (char *const *)argv);
		_exit(126);
	}
	st = wait_child(pid, 20000);
	slurp(out, g_out, sizeof(g_out));
	slurp(err, g_err, sizeof(g_err));
	close(out);
	close(err);
	if (st == 126)
		SKIP("the tool cannot be run by uid %d", (int)uid);
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

static void test_gc(void)
{
	struct shmk_opts o = {.mode = 0666};
	char pattern[64], want[256];
	struct shmk_buffer *b;
	struct shmk_stat st;

	/* Abandoned objects of root: gc material, for root only. */
	CHECK_OK(shmk_buffer_create(tname("gc.priv"), 100, NULL, &b));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_buffer_create(tname("gc.read"), 100, &o, &b));
	CHECK_OK(shmk_buffer_close(b));
	snprintf(pattern, sizeof(pattern), "t%d.gc.*", (int)getpid());

	CHECK_EQ(tool_as(VICTIM, (const char *const[]){"gc", pattern, NULL}),
		 0);
	CHECK_EQ(strlen(g_out), 0);
	snprintf(want, sizeof(want), "%s: left alone: owned by uid 0",
		 tname("gc.priv"));
	HAS(g_err, want);
	snprintf(want, sizeof(want), "%s: left alone: owned by uid 0",
		 tname("gc.read"));
	HAS(g_err, want);
	/* Without a pattern: counted. */
	CHECK_EQ(tool_as(VICTIM, (const char *const[]){"gc", NULL}), 0);
	HAS(g_err, "object(s) of other users");
	/* rm: the kernel refuses (0600: cannot even be read; 0666: the
	 * directory is sticky). */
	CHECK_EQ(tool_as(VICTIM,
			 (const char *const[]){"rm", tname("gc.priv"), NULL}),
		 1);
	HAS(g_err, "permission denied");
	CHECK_EQ(tool_as(VICTIM,
			 (const char *const[]){"rm", tname("gc.read"), NULL}),
		 1);
	HAS(g_err, "not permitted");
	CHECK_OK(shmk_stat(tname("gc.priv"), &st));
	CHECK_OK(shmk_stat(tname("gc.read"), &st));

	/* They were collectable: root's gc removes both. */
	CHECK_EQ(tool_as(0, (const char *const[]){"gc", pattern, NULL}), 0);
	snprintf(want, sizeof(want), "removed %s", tname("gc.priv"));
	HAS(g_out, want);
	snprintf(want, sizeof(want), "removed %s", tname("gc.read"));
	HAS(g_out, want);
	CHECK_RC(shmk_stat(tname("gc.priv"), &st), -ENOENT);
	printf("gc and rm as another user: nothing removed, said so\n");
}

/* ---------------------------------------------------------------------
 * 4. An anonymous object received by another user
 * --------------------------------------------------------------------- */

static int g_sock[2];

static int victim_anon(void *arg)
{
	struct shmk_buffer *b;
	char proc[64];
	int fd, fd2, v = 0;

	(void)arg;
	close(g_sock[0]);
	check_become(VICTIM);
	fd = shmk_recv_fd(g_sock[1]);
	CHECK(fd >= 0);
	/* Sealed: accepted from anyone. */
	CHECK_OK(shmk_buffer_open_fd(fd, NULL, &b));
	CHECK_OK(shmk_buffer_read(b, 1000, &v, sizeof(v), 1000));
	CHECK_EQ(v, 777);
	CHECK_EQ(ftruncate(fd, 0), -1);
	CHECK_EQ(errno, EPERM);
	CHECK_EQ(ftruncate(fd, SHMK__HDR_SIZE), -1);
	CHECK_EQ(errno, EPERM);
	CHECK_EQ(ftruncate(fd, 1 << 20), -1);
	CHECK_EQ(errno, EPERM);
	/* The seals are the file's, not the description's. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	fd2 = open(proc, O_RDWR | O_CLOEXEC);
	CHECK(fd2 >= 0);
	CHECK_EQ(ftruncate(fd2, 0), -1);
	CHECK_EQ(errno, EPERM);
	/* Nor can they be lifted. */
	CHECK_EQ(fcntl(fd2, F_ADD_SEALS, F_SEAL_WRITE), -1);
	CHECK_EQ(errno, EPERM);
	/* A hole punched in the data only zeroes pages. */
	CHECK_OK(fallocate(fd2, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			   SHMK__HDR_SIZE + 8192, 4096));
	close(fd2);
	close(fd);
	CHECK_OK(shmk_buffer_close(b));
	/* One made with mode 0600 is kept to its creator's user. */
	fd = shmk_recv_fd(g_sock[1]);
	CHECK(fd >= 0);
	CHECK_RC(shmk_buffer_open_fd(fd, NULL, &b), -EACCES);
	close(fd);
	CHECK_EQ(write(g_sock[1], "d", 1), 1);
	return 0;
}

static void test_anon(void)
{
	struct shmk_opts o = {.mode = 0600};
	struct shmk_buffer *b, *p;
	unsigned char page[4096];
	int v = 777, w = 0;
	pid_t pid;
	char c;
	size_t i;

	CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g_sock));
	pid = spawn(victim_anon, NULL);
	close(g_sock[1]);
	CHECK_OK(shmk_buffer_create(NULL, 16384, NULL, &b));
	CHECK_OK(shmk_buffer_write(b, 1000, &v, sizeof(v), -1));
	memset(page, 0xab, sizeof(page));
	CHECK_OK(shmk_buffer_write(b, 8192, page, sizeof(page), -1));
	CHECK_OK(shmk_send_fd(g_sock[0], shmk_buffer_fd(b)));
	CHECK_OK(shmk_buffer_create(NULL, 4096, &o, &p));
	CHECK_OK(shmk_send_fd(g_sock[0], shmk_buffer_fd(p)));
	CHECK_EQ(read(g_sock[0], &c, 1), 1);
	CHECK_OK(shmk_buffer_close(p));
	CHECK_EQ(wait_child(pid, 20000), 0);
	/* Every byte still there to read, no signal; the punched page is
	 * zero. */
	CHECK_OK(shmk_buffer_read(b, 1000, &w, sizeof(w), -1));
	CHECK_EQ(w, 777);
	CHECK_OK(shmk_buffer_read(b, 8192, page, sizeof(page), -1));
	for (i = 0; i < sizeof(page); i++)
		CHECK_EQ(page[i], 0);
	CHECK_OK(shmk_buffer_read(b, 16384 - 4, &w, sizeof(w), -1));
	CHECK_OK(shmk_buffer_close(b));
	close(g_sock[0]);
	printf("anonymous: sealed against shrinking and growing\n");
}

/* ---------------------------------------------------------------------
 * 5. A named object shrunk by a peer allowed to write it
 * --------------------------------------------------------------------- */

static int g_go[2], g_ready[2];

/* Attached before the truncation; survives it. */
static int reader(void *arg)
{
	struct shmk_opts o = {.flags = SHMK_F_ALLOW_SHARED};
	const char *name = arg;
	struct shmk_buffer *b;
	volatile int *p;
	int v = 0;
	char c;

	CHECK_OK(shmk_buffer_open(name, &o, &b));
	CHECK_OK(shmk_buffer_read(b, 60000, &v, sizeof(v), 1000));
	CHECK_EQ(v, 99);
	p = (volatile int *)((char *)shmk_buffer_data(b) + 60000);
	CHECK_EQ(*p, 99);
	CHECK_EQ(write(g_ready[1], "r", 1), 1);
	CHECK_EQ(read(g_go[0], &c, 1), 1);
	/* Past the new end: private zeros, no signal; then every call on
	 * the handle says what happened, and close still works. */
	CHECK_EQ(*p, 0);
	CHECK_RC(shmk_buffer_read(b, 60000, &v, sizeof(v), 1000), -EBADMSG);
	CHECK_RC(shmk_buffer_write(b, 60000, &v, sizeof(v), 1000), -EBADMSG);
	CHECK_OK(shmk_buffer_close(b));
	return 0;
}

/* The same with a ring: a node held across the truncation. */
static int ring_reader(void *arg)
{
	struct shmk_opts o = {.flags = SHMK_F_ALLOW_SHARED};
	const char *name = arg;
	struct shmk_ring *q;
	struct shmk_msg m;
	char buf[64], c;
	size_t i;

	CHECK_OK(shmk_ring_open(name, &o, &q));
	CHECK_OK(shmk_ring_acquire(q, &m, 1000));
	CHECK_EQ(m.len, sizeof(buf));
	CHECK_EQ(((volatile char *)m.data)[0], 'm');
	CHECK_EQ(write(g_ready[1], "r", 1), 1);
	CHECK_EQ(read(g_go[0], &c, 1), 1);
	for (i = 0; i < sizeof(buf); i++)
		CHECK_EQ(((volatile char *)m.data)[i], 0);
	CHECK_RC(shmk_ring_release(q, &m), -EBADMSG);
	CHECK_RC(shmk_ring_read(q, buf, sizeof(buf), 0), -EBADMSG);
	CHECK_RC(shmk_ring_write(q, buf, sizeof(buf), 0), -EBADMSG);
	CHECK_OK(shmk_ring_close(q));
	return 0;
}

/* A peer of another user, allowed to write the file. */
static int shrinker(void *arg)
{
	const char *name = arg;
	off_t len;
	int fd;

	check_become(VICTIM);
	len = strstr(name, "trunc0") ? 0 : 4096;
	fd = open(path_of(name), O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_OK(ftruncate(fd, len));
	close(fd);
	return 0;
}

/* A peer that may not write it. */
static int no_shrinker(void *arg)
{
	const char *name = arg;

	check_become(VICTIM);
	CHECK_EQ(open(path_of(name), O_RDWR | O_CLOEXEC), -1);
	CHECK_EQ(errno, EACCES);
	return 0;
}

/* Lets the reader attach, shrinks the file as another user, lets the
 * reader go on: it must exit 0. */
static void shrink_run(const char *name, int (*fn)(void *))
{
	pid_t pid;
	char ch;

	CHECK_OK(pipe2(g_go, O_CLOEXEC));
	CHECK_OK(pipe2(g_ready, O_CLOEXEC));
	pid = spawn(fn, (void *)name);
	CHECK_EQ(read(g_ready[0], &ch, 1), 1);
	CHECK_EQ(wait_child(spawn(shrinker, (void *)name), 20000), 0);
	CHECK_EQ(write(g_go[1], "g", 1), 1);
	CHECK_EQ(wait_child(pid, 20000), 0);
	close(g_go[0]);
	close(g_go[1]);
	close(g_ready[0]);
	close(g_ready[1]);
}

static void shrink_case(const char *name, int want_open)
{
	struct shmk_opts o = {.mode = 0666};
	struct shmk_buffer *b, *c = NULL;
	int v = 99;

	CHECK_OK(shmk_buffer_create(name, 65536, &o, &b));
	CHECK_OK(shmk_buffer_write(b, 60000, &v, sizeof(v), -1));
	shrink_run(name, reader);
	o.flags = SHMK_F_ALLOW_SHARED;
	o.mode = 0;
	CHECK_RC(shmk_buffer_open(name, &o, &c), want_open);
	CHECK(c == NULL);
	/* The creator's handle is mapped too: its close writes the header
	 * (or its private zeros, when the header is gone) and succeeds.
	 * The name goes with unlink(2), as shmk_unlink() removes only what
	 * starts like an object. */
	CHECK_RC(shmk_buffer_read(b, 60000, &v, sizeof(v), -1), -EBADMSG);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(unlink(path_of(name)));
	printf("named, shrunk to %s by a peer: reader survives (-EBADMSG), "
	       "open %s\n",
	       want_open == -EPROTO ? "0" : "4096", shmk_strerror(want_open));
}

static void shrink_ring_case(const char *name)
{
	struct shmk_opts o = {.mode = 0666};
	struct shmk_ring *q;
	char buf[64];

	CHECK_OK(shmk_ring_create(name, 8, 4096, &o, &q));
	memset(buf, 'm', sizeof(buf));
	CHECK_OK(shmk_ring_write(q, buf, sizeof(buf), -1));
	shrink_run(name, ring_reader);
	CHECK_RC(shmk_ring_write(q, buf, sizeof(buf), 0), -EBADMSG);
	CHECK_OK(shmk_ring_close(q));
	CHECK_OK(unlink(path_of(name)));
	printf("named ring, shrunk to 0 by a peer: reader survives "
	       "(-EBADMSG), its node reads zeros\n");
}

static int shrink_child(void *arg)
{
	(void)arg;
	shrink_case(tname("trunc"), -EBADMSG);
	shrink_case(tname("trunc0"), -EPROTO);
	shrink_ring_case(tname("ring_trunc0"));
	return 0;
}

static void test_shrink(void)
{
	struct shmk_opts o = {.mode = 0644};
	struct shmk_buffer *b;

	/* In a child: the SIGBUS guard is installed there, not here. */
	CHECK_EQ(wait_child(spawn(shrink_child, NULL), 30000), 0);
	/* Without write access, no truncation.  (Read access without write
	 * access is never granted: test_hostile.) */
	CHECK_RC(shmk_buffer_create(tname("ro"), 4096, &o, &b), -EINVAL);
	CHECK_OK(shmk_buffer_create(tname("rw"), 4096, NULL, &b));
	CHECK_EQ(wait_child(spawn(no_shrinker, (void *)tname("rw")), 20000), 0);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(tname("rw")));
}

int main(int argc, char **argv)
{
	check_init();
	if (argc != 2) {
		fprintf(stderr, "usage: test_perms SHMK-TOOL\n");
		return 1;
	}
	g_tool = argv[1];
	if (geteuid() != 0)
		SKIP("playing two users needs root");
	test_private();
	test_planted();
	test_gc();
	test_anon();
	test_shrink();
	CHECK_EQ(count_ours(), 0);
	printf("test_perms: ok\n");
	return 0;
}
