/* SPDX-License-Identifier: MIT */
/*
 * shmk_rpc in an event loop: the endpoint's descriptor (shmk_rpc_pollfd),
 * handlers run by the loop's thread (workers -1, shmk_rpc_dispatch), and
 * waking a blocked wait (shmk_rpc_wake).
 *
 * Every part runs in one process (server and client as threads), so the
 * "threads" run is the whole test, for ThreadSanitizer; the last part puts
 * the client in a child process.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"

static const char *g_name;

/* The reply is the request with every byte plus one; the one-byte
 * request "H" is held until g_release is set. */
static _Atomic int g_release;
static pthread_t g_loop_thread;
static _Atomic int g_wrong_thread;

static int echo1(void *arg, struct shmk_rpc_req *rq)
{
	const unsigned char *b = rq->data;

	(void)arg;
	if (rq->len == 1 && b[0] == 'H')
		while (!atomic_load(&g_release))
			sleep_ms(1);
	return check_reply_plus_one(rq);
}

/* As echo1, noting whether it runs on the loop's thread. */
static int echo_loop(void *arg, struct shmk_rpc_req *rq)
{
	if (!pthread_equal(pthread_self(), g_loop_thread))
		atomic_store(&g_wrong_thread, 1);
	return echo1(arg, rq);
}

static struct shmk_rpc *serve(shmk_rpc_handler fn, int workers)
{
	struct shmk_rpc_opts o = {.handler = fn,
				  .nodes = 8,
				  .node_size = 1024,
				  .workers = workers};
	struct shmk_rpc *s;

	CHECK_OK(shmk_rpc_serve(g_name, &o, &s));
	return s;
}

static struct shmk_rpc *connect_(void)
{
	struct shmk_rpc_opts o = {.wait_ms = 5000};
	struct shmk_rpc *c;

	CHECK_OK(shmk_rpc_connect(g_name, &o, &c));
	return c;
}

static int readable(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n = poll(&p, 1, timeout_ms);

	CHECK(n >= 0);
	return n == 1 && (p.revents & POLLIN);
}

/*
 * A client in a loop: submit, poll the descriptor, collect.  Thousands of
 * times with a handler that answers at once, so that replies land at
 * every point of the arming (before it, between the arm and the last
 * look, after): a reply whose end did not make the descriptor readable
 * would leave poll() to its 5 s timeout and fail the test.
 */
static void test_client_loop(void)
{
	struct shmk_rpc *s = serve(echo1, 2), *c = connect_();
	int fd = shmk_rpc_pollfd(c), i, armed = 0;

	CHECK(fd >= 0);
	CHECK_EQ(shmk_rpc_pollfd(c), fd); /* one per endpoint */
	for (i = 0; i < 3000; i++) {
		unsigned char req[16], rep[16];
		struct shmk_rpc_result res;
		uint64_t id;
		int rc;

		memset(req, (unsigned char)i, sizeof(req));
		CHECK_OK(shmk_rpc_submit(c, 0, req, sizeof(req), rep,
					 sizeof(rep), 5000, &id));
		while ((rc = shmk_rpc_wait(c, id, &res, 0)) == -EAGAIN) {
			armed++;
			CHECK(readable(fd, 5000));
		}
		CHECK_OK(rc);
		CHECK_OK(res.status);
		CHECK_EQ(res.len, sizeof(req));
		CHECK_EQ(rep[0], (unsigned char)(i + 1));
		CHECK_EQ(rep[15], (unsigned char)(i + 1));
	}
	printf("  3000 calls collected through the descriptor (%d arms)\n",
	       armed);
	CHECK_OK(shmk_rpc_close(c));
	CHECK_OK(shmk_rpc_close(s));
}

/*
 * A call that ended before the loop armed the descriptor (here: while it
 * waited on another) makes it readable at the arming.
 */
static void test_ended_before_arming(void)
{
	struct shmk_rpc *s = serve(echo1, 2), *c = connect_();
	unsigned char quick = 'q', held = 'H', r1, r2;
	struct shmk_rpc_result res;
	uint64_t a, b;
	int fd = shmk_rpc_pollfd(c);

	CHECK(fd >= 0);
	atomic_store(&g_release, 0);
	CHECK_OK(shmk_rpc_submit(c, 0, &held, 1, &r1, 1, 5000, &a));
	CHECK_OK(shmk_rpc_submit(c, 0, &quick, 1, &r2, 1, 5000, &b));
	sleep_ms(100); /* b has ended, a is held */
	CHECK_RC(shmk_rpc_wait(c, a, &res, 0), -EAGAIN);
	CHECK(readable(fd, 0)); /* b: readable at once */
	CHECK_OK(shmk_rpc_wait(c, b, &res, 0));
	CHECK_EQ(r2, 'q' + 1);
	CHECK_RC(shmk_rpc_wait(c, a, &res, 0), -EAGAIN);
	CHECK(!readable(fd, 50)); /* nothing ended since */
	atomic_store(&g_release, 1);
	CHECK(readable(fd, 5000));
	CHECK_OK(shmk_rpc_wait(c, a, &res, 0));
	CHECK_EQ(r1, 'H' + 1);
	CHECK_OK(shmk_rpc_close(c));
	CHECK_OK(shmk_rpc_close(s));
	printf("  a call that ended before the arming: readable at once\n");
}

/* The server's loop: handlers on its thread, requests from callers. */
struct loop {
	struct shmk_rpc *s;
	_Atomic int stop;
	int ran, eagain;
};

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	int fd = shmk_rpc_pollfd(l->s);

	CHECK(fd >= 0);
	while (!atomic_load(&l->stop)) {
		int n = shmk_rpc_dispatch(l->s, 8);

		if (n == -EAGAIN) {
			l->eagain++;
			readable(fd, 20); /* the stop flag every 20 ms */
			continue;
		}
		CHECK(n >= 1 && n <= 8);
		l->ran += n;
	}
	return NULL;
}

struct caller {
	struct shmk_rpc *c;
	unsigned seed;
	int calls;
};

static void *caller_main(void *arg)
{
	struct caller *k = arg;
	int i;

	for (i = 0; i < k->calls; i++) {
		unsigned char req[300], rep[300];
		struct shmk_rpc_result res;

		memset(req, (unsigned char)(k->seed + (unsigned)i),
		       sizeof(req));
		CHECK_OK(shmk_rpc_call(k->c, req, sizeof(req), rep, sizeof(rep),
				       &res, 10000));
		CHECK_EQ(res.len, sizeof(req));
		CHECK_EQ(rep[0], (unsigned char)(req[0] + 1));
		CHECK_EQ(rep[299], (unsigned char)(req[0] + 1));
	}
	return NULL;
}

static void test_server_dispatch(void)
{
	enum { CALLERS = 3, CALLS = 1000 };
	struct loop l = {.s = serve(echo_loop, -1)};
	struct caller k[CALLERS];
	pthread_t th[CALLERS];
	struct shmk_rpc *c = connect_();
	struct shmk_rpc_stats st;
	int i;

	CHECK_RC(shmk_rpc_dispatch(l.s, 0), -EINVAL);
	CHECK_RC(shmk_rpc_dispatch(c, 1), -EINVAL); /* workers: not -1 */
	atomic_store(&g_wrong_thread, 0);
	CHECK_EQ(pthread_create(&g_loop_thread, NULL, loop_main, &l), 0);
	for (i = 0; i < CALLERS; i++) {
		k[i] = (struct caller){.c = c, .seed = 40u * i, .calls = CALLS};
		CHECK_EQ(pthread_create(&th[i], NULL, caller_main, &k[i]), 0);
	}
	for (i = 0; i < CALLERS; i++)
		CHECK_EQ(pthread_join(th[i], NULL), 0);
	atomic_store(&l.stop, 1);
	CHECK_EQ(pthread_join(g_loop_thread, NULL), 0);
	CHECK_EQ(l.ran, CALLERS * CALLS);
	CHECK_EQ(atomic_load(&g_wrong_thread), 0);
	CHECK_OK(shmk_rpc_stats(l.s, &st));
	CHECK_EQ(st.served, CALLERS * CALLS);
	CHECK_OK(shmk_rpc_close(c));
	CHECK_OK(shmk_rpc_close(l.s));
	printf("  %d calls served by the loop's thread (%d times nothing "
	       "to do)\n",
	       CALLERS * CALLS, l.eagain);
}

/* shmk_rpc_wake ends a blocked wait and a blocked call, and a wake made
 * while nobody waits ends the next wait. */
struct blocked {
	struct shmk_rpc *c;
	int rc, status;
	uint64_t took_ms;
};

static void *blocked_call(void *arg)
{
	struct blocked *b = arg;
	unsigned char held = 'H', r;
	struct shmk_rpc_result res;
	uint64_t t0 = check_now_ms();

	b->rc = shmk_rpc_call(b->c, &held, 1, &r, 1, &res, -1);
	b->status = res.status;
	b->took_ms = check_now_ms() - t0;
	return NULL;
}

static void test_wake(void)
{
	struct shmk_rpc *s = serve(echo1, 2), *c = connect_();
	struct blocked b = {.c = c};
	struct shmk_rpc_result res;
	unsigned char held = 'H', r;
	pthread_t th;
	uint64_t id, t0;

	CHECK_RC(shmk_rpc_wake(NULL), -EINVAL);
	atomic_store(&g_release, 0);
	CHECK_EQ(pthread_create(&th, NULL, blocked_call, &b), 0);
	sleep_ms(100);
	CHECK_OK(shmk_rpc_wake(c));
	CHECK_EQ(pthread_join(th, NULL), 0);
	CHECK_EQ(b.rc, -ECANCELED);
	CHECK_EQ(b.status, -ECANCELED);
	CHECK(b.took_ms < 100 + 1000);
	/* A wake with nobody waiting: the next wait ends at once, the call
	 * stays under way, and the wait after that waits as usual. */
	CHECK_OK(shmk_rpc_submit(c, 0, &held, 1, &r, 1, 10000, &id));
	CHECK_OK(shmk_rpc_wake(c));
	t0 = check_now_ms();
	CHECK_RC(shmk_rpc_wait(c, id, &res, 5000), -ECANCELED);
	CHECK(check_now_ms() - t0 < 1000);
	CHECK_RC(shmk_rpc_wait(c, id, &res, 100), -ETIMEDOUT);
	atomic_store(&g_release, 1);
	CHECK_OK(shmk_rpc_wait(c, id, &res, 5000));
	CHECK_OK(res.status);
	CHECK_EQ(r, 'H' + 1);
	CHECK_OK(shmk_rpc_close(c));
	CHECK_OK(shmk_rpc_close(s));
	printf("  a wake ends a blocked call (%llu ms) and, pending, the "
	       "next wait\n",
	       (unsigned long long)b.took_ms);
}

/* Across processes: the client is a child; the server's loop here. */
static int child_client(void *arg)
{
	struct shmk_rpc *c = connect_();
	struct caller k = {.c = c, .seed = 7, .calls = 2000};

	(void)arg;
	caller_main(&k);
	CHECK_OK(shmk_rpc_close(c));
	return 0;
}

static void test_dispatch_across_processes(void)
{
	struct loop l;
	pid_t pid;

	/* Forked before the server's threads exist (see test_rpc). */
	pid = spawn(child_client, NULL);
	l = (struct loop){.s = serve(echo_loop, -1)};
	atomic_store(&g_wrong_thread, 0);
	CHECK_EQ(pthread_create(&g_loop_thread, NULL, loop_main, &l), 0);
	CHECK_EQ(wait_child(pid, 60000), 0);
	atomic_store(&l.stop, 1);
	CHECK_EQ(pthread_join(g_loop_thread, NULL), 0);
	CHECK_EQ(l.ran, 2000);
	CHECK_EQ(atomic_load(&g_wrong_thread), 0);
	CHECK_OK(shmk_rpc_close(l.s));
	printf("  2000 calls from a child process served by the loop\n");
}

int main(int argc, char **argv)
{
	check_init();
	g_name = tname("rpcloop");
	test_client_loop();
	test_ended_before_arming();
	test_server_dispatch();
	test_wake();
	if (argc > 1 && !strcmp(argv[1], "threads")) {
		printf("test_rpc_loop threads: ok\n");
		return 0;
	}
	test_dispatch_across_processes();
	printf("test_rpc_loop: ok\n");
	return 0;
}
