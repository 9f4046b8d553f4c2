/* SPDX-License-Identifier: MIT */
/*
 * test_faults - every system call and allocation an API path makes is
 * failed in turn.  Under the fault-injection shim (faults/faultinj.c,
 * LD_PRELOAD; the test re-executes itself with it), each path runs with
 * the Nth call that can fail with ENOMEM, ENOSPC, EMFILE or EINTR
 * failing, for N = 1, 2, ... until the path makes fewer than N such
 * calls, each attempt in a child process.  Every attempt must end in one
 * of two ways:
 *  - an error, the one injected (EFBIG from ftruncate is reported as
 *    -ENOSPC), with no descriptor leaked, no name left that the path did
 *    not finish making, every object that is left complete and usable,
 *    and (under ASan) no memory leaked;
 *  - success, only where the failed call's failure is harmless and the
 *    library is meant to absorb it (an EINTR it retries, a random number
 *    it can do without, a liveness probe, see harmless()), with the
 *    object working.
 * An EINTR on a call the library documents as retried (fd passing,
 * posix_fallocate, reading the header, OFD locks, futex waits, sleeps)
 * must never reach the caller.  No attempt may end by waiting for a
 * deadline: a fault is reported at once.
 *
 * Usage: test_faults SHIM.so [PATH [KIND N]]: every path, one, or one
 * attempt (with SHMK_FI_TRACE=1 the shim prints the failed call's stack).
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "check.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static void (*fi_begin)(void);
static long (*fi_end)(void);
static const char *(*fi_fired)(int *err);

/* What a path's run leaves for the checks after it. */
struct ctx {
	int sock[2];
	char dir[64];	    /* a directory for the persisted kind */
	char made[256];	    /* the name the run created ("" if none) */
	int made_is_file;   /* made is a file path (persisted kind) */
	void *keep;	    /* a handle of the setup, closed by teardown */
	const char *target; /* the name a setup made */
};

#define STEP(expr)                                                             \
	do {                                                                   \
		rc = (expr);                                                   \
		if (rc < 0)                                                    \
			goto out;                                              \
	} while (0)

static void made(struct ctx *c, const char *name)
{
	snprintf(c->made, sizeof(c->made), "%s", name);
}

/* ---------------------------------------------------------------------
 * The paths.  run() is the window: it closes every handle it opened,
 * returns 0 or its first error, and says in c->made what it created.
 * --------------------------------------------------------------------- */

static int buffer_use(struct shmk_buffer *b)
{
	int rc, v = 4242, w = 0;

	rc = shmk_buffer_write(b, 64, &v, sizeof(v), 1000);
	if (!rc)
		rc = shmk_buffer_read(b, 64, &w, sizeof(w), 1000);
	if (!rc)
		CHECK_EQ(w, v);
	return rc;
}

static int run_buffer_create(struct ctx *c)
{
	struct shmk_buffer *b = NULL;
	int rc;

	STEP(shmk_buffer_create(tname("fb"), 4096, NULL, &b));
	made(c, tname("fb"));
	STEP(buffer_use(b));
out:
	shmk_buffer_close(b);
	return rc;
}

static void setup_object(struct ctx *c)
{
	struct shmk_buffer *b;

	c->target = tname("fo");
	CHECK_OK(shmk_buffer_create(c->target, 4096, NULL, &b));
	c->keep = b;
}

static void teardown_object(struct ctx *c)
{
	CHECK_OK(shmk_buffer_close(c->keep));
}

static int run_buffer_open(struct ctx *c)
{
	struct shmk_buffer *b = NULL;
	int rc;

	STEP(shmk_buffer_open(c->target, NULL, &b));
	CHECK_EQ(shmk_buffer_size(b), 4096);
	STEP(buffer_use(b));
out:
	shmk_buffer_close(b);
	return rc;
}

/* The persisted kind: made in a directory of its own, synced. */
static void setup_dir(struct ctx *c)
{
	snprintf(c->dir, sizeof(c->dir), "/tmp/shmk-faults-XXXXXX");
	CHECK(mkdtemp(c->dir) != NULL);
}

static void teardown_dir(struct ctx *c)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/obj", c->dir);
	unlink(path);
	CHECK_OK(rmdir(c->dir)); /* fails if anything else was left */
}

static int run_buffer_file(struct ctx *c)
{
	struct shmk_buffer *b = NULL;
	char path[128];
	int rc;

	snprintf(path, sizeof(path), "%s/obj", c->dir);
	STEP(shmk_buffer_create(path, 4096, NULL, &b));
	made(c, path);
	c->made_is_file = 1;
	STEP(buffer_use(b));
out:
	shmk_buffer_close(b);
	return rc;
}

static void setup_sock(struct ctx *c)
{
	CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c->sock));
}

static void teardown_sock(struct ctx *c)
{
	close(c->sock[0]);
	close(c->sock[1]);
}

/* An anonymous buffer handed over a socket and opened from the fd. */
static int run_anon_fd(struct ctx *c)
{
	struct shmk_buffer *a = NULL, *b = NULL;
	int rc, fd = -1, v = 77, w = 0;

	STEP(shmk_buffer_create(NULL, 4096, NULL, &a));
	STEP(shmk_buffer_write(a, 8, &v, sizeof(v), 1000));
	STEP(shmk_buffer_fd(a));
	STEP(shmk_send_fd(c->sock[0], rc));
	STEP(fd = shmk_recv_fd(c->sock[1]));
	STEP(shmk_buffer_open_fd(fd, NULL, &b));
	STEP(shmk_buffer_read(b, 8, &w, sizeof(w), 1000));
	CHECK_EQ(w, v);
	/* Sealed (F_GET_SEALS is never failed by the shim). */
	CHECK(fcntl(fd, F_GET_SEALS) & F_SEAL_SHRINK);
	rc = 0;
out:
	shmk_buffer_close(b);
	shmk_buffer_close(a);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int run_array_create(struct ctx *c)
{
	struct shmk_array *a = NULL;
	uint64_t v = 9, w = 0;
	int rc;

	STEP(shmk_array_create(tname("fa"), sizeof(v), 16, NULL, &a));
	made(c, tname("fa"));
	STEP(shmk_array_set(a, 3, &v));
	STEP(shmk_array_get(a, 3, &w));
	CHECK_EQ(w, v);
out:
	shmk_array_close(a);
	return rc;
}

static void setup_array(struct ctx *c)
{
	struct shmk_array *a;

	c->target = tname("fao");
	CHECK_OK(shmk_array_create(c->target, 8, 16, NULL, &a));
	c->keep = a;
}

static void teardown_array(struct ctx *c)
{
	CHECK_OK(shmk_array_close(c->keep));
}

static int run_array_open(struct ctx *c)
{
	struct shmk_array *a = NULL;
	uint64_t v = 11, w = 0;
	int rc;

	STEP(shmk_array_open(c->target, 8, NULL, &a));
	CHECK_EQ(shmk_array_length(a), 16);
	STEP(shmk_array_set(a, 5, &v));
	STEP(shmk_array_get(a, 5, &w));
	CHECK_EQ(w, v);
out:
	shmk_array_close(a);
	return rc;
}

static int run_event_create(struct ctx *c)
{
	struct shmk_event *e = NULL;
	int rc;

	STEP(shmk_event_create(tname("fe"), 0, 0, NULL, &e));
	made(c, tname("fe"));
	STEP(shmk_event_set(e));
	STEP(shmk_event_wait(e, 1000));
out:
	shmk_event_close(e);
	return rc;
}

static void setup_event(struct ctx *c)
{
	struct shmk_event *e;

	c->target = tname("feo");
	CHECK_OK(shmk_event_create(c->target, 1, 0, NULL, &e));
	c->keep = e;
}

static void teardown_event(struct ctx *c)
{
	CHECK_OK(shmk_event_close(c->keep));
}

static int run_event_open(struct ctx *c)
{
	struct shmk_event *e = NULL;
	int rc;

	STEP(shmk_event_open(c->target, NULL, &e));
	STEP(shmk_event_set(e));
	STEP(shmk_event_wait(e, 1000));
	STEP(shmk_event_reset(e));
	/* Not set: a short wait times out (through the futex). */
	rc = shmk_event_wait(e, 20);
	if (rc == -ETIMEDOUT)
		rc = 0;
out:
	shmk_event_close(e);
	return rc;
}

static int ring_use(struct shmk_ring *w, struct shmk_ring *r)
{
	char buf[64];
	ssize_t n;
	int rc;

	rc = shmk_ring_write(w, "hello", 5, 1000);
	if (rc < 0)
		return rc;
	n = shmk_ring_read(r, buf, sizeof(buf), 1000);
	if (n < 0)
		return (int)n;
	CHECK_EQ(n, 5);
	CHECK(!memcmp(buf, "hello", 5));
	/* Empty: a short read waits (futex) and times out. */
	n = shmk_ring_read(r, buf, sizeof(buf), 20);
	return n == -ETIMEDOUT ? 0 : (int)n;
}

static int run_ring_create(struct ctx *c)
{
	struct shmk_ring *q = NULL;
	int rc;

	STEP(shmk_ring_create(tname("fr"), 8, 64, NULL, &q));
	made(c, tname("fr"));
	STEP(ring_use(q, q));
out:
	shmk_ring_close(q);
	return rc;
}

static void setup_ring(struct ctx *c)
{
	struct shmk_ring *q;

	c->target = tname("fro");
	CHECK_OK(shmk_ring_create(c->target, 8, 64, NULL, &q));
	c->keep = q;
}

static void teardown_ring(struct ctx *c)
{
	CHECK_OK(shmk_ring_close(c->keep));
}

static int run_ring_open(struct ctx *c)
{
	struct shmk_ring *q = NULL;
	int rc;

	STEP(shmk_ring_open(c->target, NULL, &q));
	STEP(ring_use(c->keep, q));
out:
	shmk_ring_close(q);
	return rc;
}

static int echo(void *arg, struct shmk_rpc_req *rq)
{
	(void)arg;
	rq->reply = rq->data;
	rq->reply_len = rq->len;
	return 0;
}

/*
 * A server and a client in one process: serve, connect, call, close.  A
 * failure must end the path at once, not at a deadline: the waits are
 * SLOW_MS long, and an attempt must take less than half of that.
 */
#define SLOW_MS 10000
static int run_rpc(struct ctx *c)
{
	struct shmk_rpc_opts so = {.handler = echo, .workers = 1};
	struct shmk_rpc_opts co = {.wait_ms = SLOW_MS};
	struct shmk_rpc *srv = NULL, *cli = NULL;
	struct shmk_rpc_result res;
	char out[16] = {0};
	int rc;

	STEP(shmk_rpc_serve(tname("fp"), &so, &srv));
	STEP(shmk_rpc_connect(tname("fp"), &co, &cli));
	STEP(shmk_rpc_call(cli, "ping", 4, out, sizeof(out), &res, SLOW_MS));
	CHECK_EQ(res.len, 4);
	CHECK(!memcmp(out, "ping", 4));
out:
	shmk_rpc_close(cli);
	/* A server's name that could not be removed is reported. */
	if (shmk_rpc_close(srv) < 0) {
		made(c, tname("fp"));
		if (!rc)
			rc = -EIO;
	}
	return rc;
}

static void setup_closed(struct ctx *c)
{
	struct shmk_buffer *b;

	c->target = tname("fu");
	CHECK_OK(shmk_buffer_create(c->target, 4096, NULL, &b));
	CHECK_OK(shmk_buffer_close(b));
}

static int run_unlink(struct ctx *c)
{
	return shmk_unlink(c->target);
}

struct path {
	const char *name;
	void (*setup)(struct ctx *c);
	int (*run)(struct ctx *c);
	void (*teardown)(struct ctx *c);
	/* EXACT: an error returned is the one injected.  ABSORB: success
	 * is also allowed when a call that removing a name makes failed,
	 * or a socket message of the rpc handshake (the server drops a
	 * connection whose handshake failed, and the client, still within
	 * its wait_ms, connects again), as long as every check after the
	 * run holds. */
	unsigned flags;
};
enum { EXACT = 1, ABSORB = 2 };

static const struct path paths[] = {
	{"buffer_create", NULL, run_buffer_create, NULL, EXACT},
	{"buffer_open", setup_object, run_buffer_open, teardown_object, EXACT},
	{"buffer_file", setup_dir, run_buffer_file, teardown_dir, EXACT},
	{"anon_fd", setup_sock, run_anon_fd, teardown_sock, EXACT},
	{"array_create", NULL, run_array_create, NULL, EXACT},
	{"array_open", setup_array, run_array_open, teardown_array, EXACT},
	{"event_create", NULL, run_event_create, NULL, EXACT},
	{"event_open", setup_event, run_event_open, teardown_event, EXACT},
	{"ring_create", NULL, run_ring_create, NULL, EXACT},
	{"ring_open", setup_ring, run_ring_open, teardown_ring, EXACT},
	/* Errors of the server's threads reach the client as the server's
	 * refusal, or as the end of the channel: any error will do, as
	 * long as it comes (no attempt may hang). */
	{"rpc", NULL, run_rpc, NULL, ABSORB},
	{"unlink", setup_closed, run_unlink, NULL, EXACT},
};

/* ---------------------------------------------------------------------
 * One attempt, in a child
 * --------------------------------------------------------------------- */

static const char *const kinds[] = {"ENOMEM", "ENOSPC", "EMFILE", "EINTR"};

/* Calls whose EINTR the library retries: it must never be seen. */
static int retried(const char *fn)
{
	static const char *const fns[] = {
		"pread",       "posix_fallocate", "fcntl(setlk)",
		"sendmsg",     "recvmsg",	  "clock_nanosleep",
		"futex(wait)", "getrandom",	  NULL,
	};
	int i;

	for (i = 0; fns[i]; i++)
		if (!strcmp(fn, fns[i]))
			return 1;
	return 0;
}

/*
 * Calls whose failure the library may absorb (success is then allowed,
 * with the object checked).  Each for a reason:
 *  - fstatat: create's early look at the name is only a hint (the link
 *    that publishes the object is the authority); shmk_unlink's second
 *    look is not, and fails the call.
 *  - fcntl(getlk): a liveness probe that fails says "alive" (an owner is
 *    never called dead on doubt); the waiter looks again a slice later.
 */
static int harmless(const char *fn)
{
	return !strcmp(fn, "fstatat") || !strcmp(fn, "fcntl(getlk)");
}

/* The calls of a name's removal (shmk_unlink and its like). */
static int removal(const char *fn)
{
	static const char *const fns[] = {"open",    "fstat",  "pread",
					  "fstatat", "unlink", NULL};
	int i;

	for (i = 0; fns[i]; i++)
		if (!strcmp(fn, fns[i]))
			return 1;
	return 0;
}

#define NAMES_MAX 16

struct ours {
	char (*names)[256];
	char prefix[64];
	int n;
};

static int add_ours(const char *name, void *arg)
{
	struct ours *o = arg;

	if (!strncmp(name, o->prefix, strlen(o->prefix))) {
		CHECK(o->n < NAMES_MAX);
		snprintf(o->names[o->n++], 256, "%s", name);
	}
	return 0;
}

/* Our objects (t<pid>.*). */
static int list_ours(char names[NAMES_MAX][256])
{
	struct ours o = {.names = names};

	snprintf(o.prefix, sizeof(o.prefix), "t%d.", (int)check_main_pid);
	CHECK_OK(shmk_list(add_ours, &o));
	return o.n;
}

static int in_list(char names[NAMES_MAX][256], int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return 1;
	return 0;
}

/* An object that is left must be whole: described as ready (or shut
 * down by its creator's close), and open as its kind. */
static void check_whole(const char *name)
{
	struct shmk_stat st;

	CHECK_OK(shmk_stat(name, &st));
	CHECK(st.state == SHMK_STATE_READY || st.state == SHMK_STATE_SHUTDOWN);
	if (st.kind == SHMK_KIND_BUFFER) {
		struct shmk_buffer *b;

		CHECK_OK(shmk_buffer_open(name, NULL, &b));
		CHECK_OK(buffer_use(b));
		CHECK_OK(shmk_buffer_close(b));
	}
}

/*
 * Runs path p with the nth call of kind k failing.  Exits 0 if the fault
 * was injected and everything held, 2 if the path made fewer than n
 * such calls (and succeeded), 1 on failure.  Prints the failed call.
 */
static void attempt(const struct path *p, const char *k, long n)
{
	char before[NAMES_MAX][256], after[NAMES_MAX][256], num[32];
	struct ctx c = {.sock = {-1, -1}};
	int nb, na, i, fds, err = 0, rc;
	const char *fn;
	long calls;

	if (p->setup)
		p->setup(&c);
	nb = list_ours(before);
	fds = count_fds();
	snprintf(num, sizeof(num), "%ld", n);
	setenv("SHMK_FI_N", num, 1);
	setenv("SHMK_FI_ERRNO", k, 1);
	fi_begin();
	rc = p->run(&c);
	calls = fi_end();
	fn = fi_fired(&err);

	/* What happened to the call. */
	if (!fn) {
		if (rc != 0)
			fprintf(stderr, "%s: failed without a fault: %s\n",
				p->name, shmk_strerror(rc));
		CHECK_OK(rc);
		CHECK(calls < n);
	} else if (err == EINTR && retried(fn)) {
		if (rc != 0)
			fprintf(stderr, "%s: EINTR of %s not retried: %s\n",
				p->name, fn, shmk_strerror(rc));
		CHECK_OK(rc);
	} else {
		/* rpc: a server that cannot start a channel's reader
		 * (pthread_create's EAGAIN) refuses with -EAGAIN, which
		 * connect retries within its wait; any other failure, and
		 * the client's own threads failing, fail the connect. */
		int absorbed =
			(p->flags & ABSORB) &&
			(removal(fn) || !strcmp(fn, "sendmsg") ||
			 !strcmp(fn, "recvmsg") ||
			 (!strcmp(fn, "pthread_create") && err == EAGAIN));

		if (rc == 0 && !harmless(fn) && !absorbed)
			fprintf(stderr, "%s: succeeded though %s failed (%s)\n",
				p->name, fn, shmk_strerror(err));
		CHECK(rc < 0 || harmless(fn) || absorbed);
		if (rc < 0 && (p->flags & EXACT)) {
			int want = err == EFBIG ? -ENOSPC : -err;

			if (rc != want)
				fprintf(stderr, "%s: %s failed (%s), got %s\n",
					p->name, fn, shmk_strerror(err),
					shmk_strerror(rc));
			CHECK_EQ(rc, want);
		}
	}
	if (fn)
		printf("  %s %s #%ld: %s -> %s\n", p->name, k, n, fn,
		       shmk_strerror(rc));

	/* Nothing leaked, nothing half-made. */
	if (count_fds() != fds)
		fprintf(stderr, "%s: %d descriptors before, %d after\n",
			p->name, fds, count_fds());
	CHECK_EQ(count_fds(), fds);
	na = list_ours(after);
	for (i = 0; i < na; i++) {
		/* Only what was there, and what the run reported made. */
		if (!in_list(before, nb, after[i]) && strcmp(after[i], c.made))
			fprintf(stderr, "%s: left %s behind\n", p->name,
				after[i]);
		CHECK(in_list(before, nb, after[i]) ||
		      !strcmp(after[i], c.made));
		check_whole(after[i]);
	}
	if (c.made[0]) {
		/* The create succeeded, so the object is there. */
		CHECK(c.made_is_file || in_list(after, na, c.made));
		check_whole(c.made);
		if (!c.made_is_file)
			CHECK_OK(shmk_unlink(c.made));
	}
	/* A failed unlink leaves the object as it was. */
	if (p->run == run_unlink) {
		CHECK_EQ(in_list(after, na, c.target), rc < 0);
		if (rc < 0)
			check_whole(c.target);
	}
	if (p->teardown)
		p->teardown(&c);
	for (i = 0; i < nb; i++)
		shmk_unlink(before[i]);
#ifdef HAVE_LSAN
	if (__lsan_do_recoverable_leak_check()) {
		fprintf(stderr, "%s %s #%ld: leaks\n", p->name, k, n);
		exit(1);
	}
#endif
	exit(fn ? 0 : 2);
}

/* Runs every attempt of path p for kind k; returns the injection points. */
static long sweep(const struct path *p, const char *k)
{
	long n;

	for (n = 1;; n++) {
		uint64_t t0;
		pid_t pid;
		int st;

		fflush(NULL);
		t0 = check_now_ms();
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			attempt(p, k, n);
		}
		st = wait_child(pid, 30000);
		if (check_now_ms() - t0 >= SLOW_MS / 2) {
			fprintf(stderr,
				"FAILED: %s with call %ld failing (%s)"
				": took %llu ms\n",
				p->name, n, k,
				(unsigned long long)(check_now_ms() - t0));
			exit(1);
		}
		if (st == 2)
			return n - 1;
		if (st != 0) {
			fprintf(stderr,
				"FAILED: %s with call %ld failing (%s)"
				": status %d\n",
				p->name, n, k, st);
			exit(1);
		}
		CHECK(n < 1000);
	}
}

int main(int argc, char **argv)
{
	const char *only = argc > 2 ? argv[2] : NULL;
	size_t i, j;

	check_init();
	if (argc < 2) {
		fprintf(stderr, "usage: test_faults SHIM.so [path]\n");
		return 1;
	}
	fi_begin = (void (*)(void))dlsym(RTLD_DEFAULT, "shmk_fi_begin");
	fi_end = (long (*)(void))dlsym(RTLD_DEFAULT, "shmk_fi_end");
	fi_fired = (const char *(*)(int *))dlsym(RTLD_DEFAULT, "shmk_fi_fired");
	if (!fi_begin || !fi_end || !fi_fired) {
		/* Not loaded yet: again, with the shim in front of the C
		 * library (and of the sanitizer's interceptors, which pass
		 * the calls on to it). */
		if (getenv("SHMK_FI_REEXEC"))
			SKIP("the fault-injection shim did not load");
		setenv("SHMK_FI_REEXEC", "1", 1);
		setenv("LD_PRELOAD", argv[1], 1);
#ifdef HAVE_LSAN
		{
			const char *a = getenv("ASAN_OPTIONS");
			char buf[512];

			snprintf(buf, sizeof(buf),
				 "%s%sverify_asan_link_order=0", a ? a : "",
				 a && *a ? ":" : "");
			setenv("ASAN_OPTIONS", buf, 1);
		}
#endif
		execv("/proc/self/exe", argv);
		perror("execv");
		return 1;
	}
	unsetenv("LD_PRELOAD"); /* not for the tool or anything we run */
	if (argc > 4) {
		for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
			if (!strcmp(argv[2], paths[i].name)) {
				pid_t pid;

				fflush(NULL);
				pid = fork();
				if (pid == 0)
					attempt(&paths[i], argv[3],
						atol(argv[4]));
				return wait_child(pid, 60000);
			}
		return 1;
	}
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const struct path *p = &paths[i];
		char line[256];
		int len;

		if (only && strcmp(only, p->name))
			continue;
		len = snprintf(line, sizeof(line), "%-14s", p->name);
		for (j = 0; j < sizeof(kinds) / sizeof(kinds[0]); j++) {
			long pts = sweep(p, kinds[j]);

			/* Every path allocates: a sweep that injected
			 * nothing means the shim is not in the way. */
			if (j == 0)
				CHECK(pts > 0);

			len += snprintf(line + len, sizeof(line) - (size_t)len,
					" %s %3ld", kinds[j], pts);
		}
		printf("%s\n", line);
	}
	printf("test_faults: ok\n");
	return 0;
}
