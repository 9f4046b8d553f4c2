/* SPDX-License-Identifier: MIT */
/*
 * rpc.c - the measurements of rpc.h: shmk_rpc calls, the seqpacket echo
 * beside them, the floor of a call's copies, and CPU-bound hogs.  The
 * server and the clients of a run are processes of their own; a client
 * reports to the run through a pipe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmk.h>

#include "bench.h"
#include "rpc.h"

/* ------------------------------------------------------------------ */
/* What every run shares                                              */
/* ------------------------------------------------------------------ */

/* Fills why; returns err if negative, else -EIO. */
__attribute__((format(printf, 3, 4))) static int bad(char *why, int err,
						     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	/* clang-tidy 14 takes ap for uninitialized here when it follows a
	 * caller into bad() (it says the same of wake.c's). */
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
	vsnprintf(why, RPC_WHY_LEN, fmt, ap);
	va_end(ap);
	return err < 0 ? err : -EIO;
}

/* In a child just forked: die with the parent, which was parent. */
static void child_init(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
}

/* The reply is the request itself: the server copies it straight from
 * the request's node (or reassembly buffer) into reply nodes. */
static int echo(void *arg, struct shmk_rpc_req *rq)
{
	(void)arg;
	rq->reply = rq->data;
	rq->reply_len = rq->len;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void fill(unsigned char *p, size_t n, uint64_t seq)
{
	size_t i;

	memcpy(p, &seq, n < 8 ? n : 8);
	for (i = 8; i < n; i += 512)
		p[i] = (unsigned char)(seq + i);
}

/* 0 if p is what fill(p, n, seq) wrote. */
static int check(const unsigned char *p, size_t n, uint64_t seq)
{
	uint64_t got = 0;
	size_t i;

	memcpy(&got, p, n < 8 ? n : 8);
	if (n >= 8 && got != seq)
		return -1;
	for (i = 8; i < n; i += 512)
		if (p[i] != (unsigned char)(seq + i))
			return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* A caller: calls through shmk_rpc or the socket, depth at a time    */
/* ------------------------------------------------------------------ */

struct caller {
	struct rpc_run *r;
	struct shmk_rpc *c; /* NULL: the socket, fd */
	int fd;
	int depth;
	unsigned char *req, *rep; /* RPC_DEPTH requests, replies */
	uint64_t ids[RPC_DEPTH];
	uint64_t seq; /* the next request's number */
	/* depth 1: the round trips, every stride-th of them */
	uint32_t *s;
	size_t ns, cap;
	unsigned stride, tick;
};

static int caller_init(struct caller *c, struct rpc_run *r)
{
	memset(c, 0, sizeof(*c));
	c->r = r;
	c->fd = -1;
	c->depth = r->depth;
	c->stride = 1;
	c->req = malloc(r->size * RPC_DEPTH);
	c->rep = malloc(r->size * RPC_DEPTH);
	if (r->secs <= 0 && r->calls < 1)
		return bad(r->why, -EINVAL, "no calls to make");
	if (r->depth == 1) {
		c->cap = r->secs > 0 ? RPC_SAMPLES : (size_t)r->calls;
		if (r->secs > 0 && r->calls > 0 &&
		    (size_t)r->calls < RPC_SAMPLES)
			c->cap = (size_t)r->calls;
		c->s = malloc(sizeof(*c->s) * (c->cap ? c->cap : 1));
	}
	if (!c->req || !c->rep || (r->depth == 1 && !c->s))
		return bad(r->why, -ENOMEM, "out of memory");
	return 0;
}

static void caller_free(struct caller *c)
{
	free(c->req);
	free(c->rep);
	free(c->s);
}

/* Keeps a round trip; once the room is full, every other one of those
 * kept, and every other one from then on. */
static void keep(struct caller *c, uint64_t ns)
{
	if (c->ns == c->cap) {
		for (size_t i = 0; i < c->cap / 2; i++)
			c->s[i] = c->s[2 * i + 1];
		c->ns = c->cap / 2;
		c->stride *= 2;
	}
	if (++c->tick < c->stride)
		return;
	c->tick = 0;
	c->s[c->ns++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

/* Sends request seq.  0, or -errno with why. */
static int put(struct caller *c, uint64_t seq)
{
	size_t size = c->r->size;
	int k = (int)(seq % RPC_DEPTH), rc;
	unsigned char *q = c->req + (size_t)k * size;
	ssize_t n;

	fill(q, size, seq);
	if (c->r->corrupt >= 0 && seq == (uint64_t)c->r->corrupt)
		q[0] ^= 0x10;
	if (c->c) {
		rc = shmk_rpc_submit(c->c, 0, q, size,
				     c->rep + (size_t)k * size, size, 10000,
				     &c->ids[k]);
		if (rc < 0)
			return bad(c->r->why, rc, "submit: %s",
				   shmk_strerror(rc));
		return 0;
	}
	while ((n = send(c->fd, q, size, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (n == (ssize_t)size)
		return 0;
	if (n < 0 && errno == EMSGSIZE)
		return bad(c->r->why, -EMSGSIZE,
			   "a %zu-byte message does not fit the socket's send "
			   "buffer of %d bytes",
			   size, c->r->sndbuf);
	if (n < 0 && errno == EPIPE)
		return -EPIPE; /* the server ended: its status says why */
	return bad(c->r->why, -errno, "send: %s", strerror(errno));
}

/* Waits for the reply to request seq and checks it.  0, or -errno. */
static int take(struct caller *c, uint64_t seq)
{
	size_t size = c->r->size;
	int k = (int)(seq % RPC_DEPTH), rc;
	const unsigned char *p = c->rep + (size_t)k * size;
	struct shmk_rpc_result res;
	ssize_t n;

	if (c->c) {
		rc = shmk_rpc_wait(c->c, c->ids[k], &res, -1);
		if (rc < 0 || res.status < 0)
			return bad(c->r->why, rc < 0 ? rc : res.status,
				   "call %llu: %s", (unsigned long long)seq,
				   shmk_strerror(rc < 0 ? rc : res.status));
		if (res.len != size)
			return bad(c->r->why, -EBADMSG,
				   "reply %llu: %zu bytes, %zu expected",
				   (unsigned long long)seq, (size_t)res.len,
				   size);
	} else {
		while ((n = recv(c->fd, c->rep, size, MSG_TRUNC)) < 0 &&
		       errno == EINTR)
			;
		if (n == 0)
			return -EPIPE; /* the server ended */
		if (n < 0 && errno == EAGAIN)
			return bad(c->r->why, -ETIMEDOUT,
				   "no reply to call %llu in 10 s",
				   (unsigned long long)seq);
		if (n < 0)
			return bad(c->r->why, -errno, "recv: %s",
				   strerror(errno));
		if (n != (ssize_t)size)
			return bad(c->r->why, -EBADMSG,
				   "reply %llu: %zd bytes, %zu expected",
				   (unsigned long long)seq, n, size);
		p = c->rep;
	}
	if (check(p, size, seq) < 0)
		return bad(c->r->why, -EBADMSG, "reply %llu arrived corrupt",
			   (unsigned long long)seq);
	return 0;
}

/* The request to corrupt has yet to go out: a run by a time goes on
 * until it did, however slow the machine. */
static int corrupt_due(const struct caller *c, uint64_t next)
{
	return c->r->corrupt >= 0 && next <= (uint64_t)c->r->corrupt;
}

/*
 * Makes calls, c->depth at a time: limit of them, or (deadline not 0)
 * until then, at most limit if that is not 0; then waits for those under
 * way.  Keeps the round trips if asked (depth 1).  Returns the calls
 * made, or -errno.
 */
static long run_calls(struct caller *c, long limit, uint64_t deadline,
		      int sample)
{
	int clock = deadline || (sample && c->s), stop = 0, rc;
	uint64_t seq0 = c->seq, t_one = 0;
	long sent = 0, done = 0;

	for (;;) {
		while (!stop && sent - done < c->depth) {
			uint64_t t = clock ? now_ns() : 0;

			if ((limit && sent == limit) ||
			    (deadline && t >= deadline &&
			     !corrupt_due(c, seq0 + (uint64_t)sent))) {
				stop = 1;
				break;
			}
			t_one = t;
			rc = put(c, seq0 + (uint64_t)sent);
			if (rc < 0)
				return rc;
			sent++;
		}
		if (done == sent)
			break;
		rc = take(c, seq0 + (uint64_t)done);
		if (rc < 0)
			return rc;
		if (sample && c->s)
			keep(c, now_ns() - t_one);
		done++;
	}
	c->seq += (uint64_t)sent;
	return done;
}

/* What a client tells its run (one write, atomic through a pipe). */
struct report {
	int err;
	uint64_t ns; /* the timed calls took */
	long calls;  /* timed */
	double p50_us, p99_us;
	char why[RPC_WHY_LEN];
};

/* The warm-up, then the timed calls, into *out.  0, or -errno. */
static int call_all(struct caller *c, struct report *out)
{
	struct rpc_run *r = c->r;
	uint64_t t0;
	long n;

	memset(out, 0, sizeof(*out));
	if (r->warm_secs > 0) {
		n = run_calls(c, 0, now_ns() + (uint64_t)(r->warm_secs * 1e9),
			      0);
		if (n < 0)
			return (int)n;
	}
	t0 = now_ns();
	n = run_calls(c, r->calls,
		      r->secs > 0 ? t0 + (uint64_t)(r->secs * 1e9) : 0, 1);
	if (n < 0)
		return (int)n;
	out->ns = now_ns() - t0;
	out->calls = n;
	if (c->s && c->ns) {
		size_t i50 = c->ns / 2, i99 = c->ns * 99 / 100;

		qsort(c->s, c->ns, sizeof(*c->s), cmp_u32);
		out->p50_us = (double)c->s[i50] / 1e3;
		out->p99_us = (double)c->s[i99] / 1e3;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* shmk_rpc                                                           */
/* ------------------------------------------------------------------ */

/* In a child: tells the run through fd, then exits with status. */
static _Noreturn void tell_exit(int fd, struct report *m, int status)
{
	if (write(fd, m, sizeof(*m)) != (ssize_t)sizeof(*m))
		_exit(1);
	_exit(status);
}

/* In a child that opened an endpoint (err: the open's result): tells the
 * run through fd; exits if the open failed, else sleeps until killed. */
static _Noreturn void tell_then_sleep(int fd, int err)
{
	struct report m = {.err = err};

	if (err < 0) {
		snprintf(m.why, sizeof(m.why), "%s", shmk_strerror(err));
		tell_exit(fd, &m, 1);
	}
	if (write(fd, &m, sizeof(m)) != (ssize_t)sizeof(m))
		_exit(1);
	close(fd);
	for (;;)
		pause();
}

static _Noreturn void rpc_client(struct rpc_run *r, int fd)
{
	struct shmk_rpc_opts o = {.wait_ms = 5000, .spin_us = r->spin_us};
	struct report m = {0};
	struct caller c;
	int rc;

	pin(0);
	rc = caller_init(&c, r);
	if (rc == 0) {
		rc = shmk_rpc_connect(r->name, &o, &c.c);
		if (rc < 0)
			bad(r->why, rc, "connect: %s", shmk_strerror(rc));
	}
	if (rc == 0)
		rc = call_all(&c, &m);
	m.err = rc;
	snprintf(m.why, sizeof(m.why), "%s", rc < 0 ? r->why : "");
	if (write(fd, &m, sizeof(m)) != (ssize_t)sizeof(m))
		_exit(1);
	if (c.c)
		shmk_rpc_close(c.c);
	caller_free(&c);
	_exit(rc < 0);
}

/* Kills and reaps n processes (those of pid above 0). */
static void kill_all(pid_t *pid, int n)
{
	for (int i = 0; i < n; i++)
		if (pid[i] > 0)
			kill(pid[i], SIGKILL);
	for (int i = 0; i < n; i++)
		if (pid[i] > 0)
			waitpid(pid[i], NULL, 0);
}

/* Reads a child's report from fd.  0, or -errno with why. */
static int hear(struct rpc_run *r, int fd, struct report *m, const char *who)
{
	ssize_t n = read(fd, m, sizeof(*m));

	if (n != (ssize_t)sizeof(*m))
		return bad(r->why, -EIO, "%s ended without a word", who);
	if (m->err < 0)
		return bad(r->why, m->err, "%s: %s", who, m->why);
	return 0;
}

int rpc_shmk(struct rpc_run *r)
{
	struct shmk_rpc_opts so = {
		.handler = echo,
		.workers = 1,
		.node_size = r->idle || r->small_nodes ? 4096 : 64 << 10,
		.nodes = 16,
		.spin_us = r->spin_us,
		.max_clients = r->idle + 16,
		.max_per_pid = 4};
	pid_t srv = -1, cl[RPC_MAX_CLIENTS], *idle = NULL, me = getpid();
	int p[2], i, st, rc = 0, ncl = 0, nidle = 0, nwant = r->idle;
	struct report m;
	uint64_t worst = 0;

	r->calls_s = r->p50_us = r->p99_us = r->mean_us = 0;
	r->timed = 0;
	r->why[0] = 0;
	if (r->depth < 1 || r->depth > RPC_DEPTH || r->clients < 1 ||
	    r->clients > RPC_MAX_CLIENTS || r->idle < 0 ||
	    (r->secs <= 0 && r->calls < 1))
		return bad(r->why, -EINVAL,
			   "bad depth, clients, idle clients or calls");
	if (pipe(p) < 0)
		return bad(r->why, -errno, "pipe: %s", strerror(errno));
	if (nwant) {
		idle = calloc((size_t)nwant, sizeof(*idle));
		if (!idle) {
			rc = bad(r->why, -ENOMEM, "out of memory");
			goto out;
		}
	}
	fflush(NULL);
	srv = fork();
	if (srv < 0) {
		rc = bad(r->why, -errno, "fork: %s", strerror(errno));
		goto out;
	}
	if (srv == 0) {
		struct shmk_rpc *s;

		child_init(me);
		pin(1);
		tell_then_sleep(p[1], shmk_rpc_serve(r->name, &so, &s));
	}
	if ((rc = hear(r, p[0], &m, "the server")) < 0)
		goto out;
	/* Idle clients: connected, then asleep until killed. */
	for (; nidle < nwant; nidle++) {
		idle[nidle] = fork();
		if (idle[nidle] < 0) {
			rc = bad(r->why, -errno, "fork: %s", strerror(errno));
			goto out;
		}
		if (idle[nidle] == 0) {
			struct shmk_rpc_opts o = {.wait_ms = 60000};
			struct shmk_rpc *c;

			child_init(me);
			tell_then_sleep(p[1],
					shmk_rpc_connect(r->name, &o, &c));
		}
	}
	for (i = 0; i < nwant; i++)
		if ((rc = hear(r, p[0], &m, "an idle client")) < 0)
			goto out;
	for (; ncl < r->clients; ncl++) {
		cl[ncl] = fork();
		if (cl[ncl] < 0) {
			rc = bad(r->why, -errno, "fork: %s", strerror(errno));
			goto out;
		}
		if (cl[ncl] == 0) {
			child_init(me);
			rpc_client(r, p[1]);
		}
	}
	/* From here a client that ends without a word ends the read. */
	close(p[1]);
	p[1] = -1;
	for (i = 0; i < ncl; i++) {
		if ((rc = hear(r, p[0], &m, "a client")) < 0)
			goto out;
		if (m.ns > worst)
			worst = m.ns;
		r->timed += m.calls;
		r->p50_us = m.p50_us;
		r->p99_us = m.p99_us;
	}
	for (i = 0; i < ncl; i++) {
		waitpid(cl[i], &st, 0);
		cl[i] = -1;
		if (!rc && !(WIFEXITED(st) && !WEXITSTATUS(st)))
			rc = bad(r->why, -EIO,
				 "a client ended with status 0x%x", st);
	}
	if (!rc && (!r->timed || !worst))
		rc = bad(r->why, -EIO, "no call was timed");
	if (!rc)
		r->calls_s = (double)r->timed / ((double)worst / 1e9);
out:
	kill_all(cl, ncl);
	kill_all(idle, nidle);
	kill_all(&srv, 1);
	free(idle);
	shmk_unlink(r->name);
	close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The seqpacket reference                                            */
/* ------------------------------------------------------------------ */

/* What a message costs a socket's send buffer at most (the data, rounded
 * up to pages, and the buffer's head): sock_depth()'s measure. */
#define SOCK_MSG_COST(size) ((((size) + 4095) & ~(size_t)4095) + 4096)

/*
 * Sets both ends' buffers to 4 x size + 64 KiB (past net.core.wmem_max
 * and rmem_max, where the plain options are capped, with the FORCE
 * options if we may: root).  Returns the smaller send buffer the kernel
 * gave (it doubles what is asked).
 */
static int sock_bufs(int sv[2], size_t size)
{
	size_t w = 4 * size + (64u << 10);
	int want = w > INT_MAX / 2 ? INT_MAX / 2 : (int)w, least = INT_MAX;
	int i;

	for (i = 0; i < 2; i++) {
		int got = 0;
		socklen_t len = sizeof(got);

		setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
		setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
		if (getsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &got, &len) < 0 ||
		    got / 2 < want) {
			setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &want,
				   sizeof(want));
		}
		len = sizeof(got);
		if (getsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &got, &len) < 0 ||
		    got / 2 < want)
			setsockopt(sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &want,
				   sizeof(want));
		len = sizeof(got);
		if (getsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &got, &len) < 0)
			got = 0;
		if (got < least)
			least = got;
	}
	return least;
}

/* With several calls in flight a socket's sends could fill both
 * directions' buffers (client blocked sending, server blocked sending
 * the reply): the reference keeps its depth to what a send buffer of
 * sndbuf bytes holds. */
static int sock_depth(size_t size, int want, int sndbuf)
{
	int d = (int)((size_t)sndbuf / SOCK_MSG_COST(size));

	if (d < 1)
		d = 1;
	return d < want ? d : want;
}

/* The server: a message in, the same message out, until the client
 * closes.  Exits 3 if a reply does not fit in one message, 4 on another
 * error, 5 on a request of the wrong size. */
static _Noreturn void sock_server(int fd, size_t size)
{
	unsigned char *buf = malloc(size);
	ssize_t n;

	pin(1);
	if (!buf)
		_exit(4);
	for (;;) {
		while ((n = recv(fd, buf, size, MSG_TRUNC)) < 0 &&
		       errno == EINTR)
			;
		if (n == 0)
			break;
		if (n != (ssize_t)size)
			_exit(n < 0 ? 4 : 5);
		while ((n = send(fd, buf, size, MSG_NOSIGNAL)) < 0 &&
		       errno == EINTR)
			;
		if (n != (ssize_t)size)
			_exit(n < 0 && errno == EMSGSIZE ? 3 : 4);
	}
	free(buf);
	_exit(0);
}

int rpc_sock(struct rpc_run *r)
{
	struct timeval tv = {.tv_sec = 10};
	struct report m;
	struct caller c;
	pid_t pid, me = getpid();
	int sv[2], st, rc;

	r->calls_s = r->p50_us = r->p99_us = r->mean_us = 0;
	r->timed = 0;
	r->why[0] = 0;
	if (r->depth < 1 || r->depth > RPC_DEPTH)
		return bad(r->why, -EINVAL, "bad depth");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return bad(r->why, -errno, "socketpair: %s", strerror(errno));
	r->sndbuf = sock_bufs(sv, r->size);
	r->sock_depth = sock_depth(r->size, r->depth, r->sndbuf);
	setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	rc = caller_init(&c, r);
	c.fd = sv[0];
	c.depth = r->sock_depth;
	if (rc < 0) {
		close(sv[0]);
		close(sv[1]);
		caller_free(&c);
		return rc;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		rc = bad(r->why, -errno, "fork: %s", strerror(errno));
		close(sv[1]);
		goto out;
	}
	if (pid == 0) {
		child_init(me);
		close(sv[0]);
		sock_server(sv[1], r->size);
	}
	close(sv[1]);
	pin(0);
	rc = call_all(&c, &m);
	if (rc == 0 && (!m.calls || !m.ns))
		rc = bad(r->why, -EIO, "no call was timed");
	if (rc == 0) {
		r->timed = m.calls;
		r->calls_s = (double)m.calls / ((double)m.ns / 1e9);
		r->p50_us = m.p50_us;
		r->p99_us = m.p99_us;
	}
	close(sv[0]);
	sv[0] = -1;
	waitpid(pid, &st, 0);
	if (rc == -EPIPE || (rc == 0 && !(WIFEXITED(st) && !WEXITSTATUS(st))))
		rc = WIFEXITED(st) && WEXITSTATUS(st) == 3
			     ? bad(r->why, -EMSGSIZE,
				   "a %zu-byte reply does not fit the socket's "
				   "send buffer of %d bytes",
				   r->size, r->sndbuf)
			     : bad(r->why, -EIO,
				   "the server ended with status 0x%x", st);
out:
	if (sv[0] >= 0)
		close(sv[0]);
	caller_free(&c);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The floor                                                          */
/* ------------------------------------------------------------------ */

#define FLOOR_STOP  UINT64_MAX
#define FLOOR_BATCH 16

/*
 * One round trip: the request into shared memory, the flag to the other
 * side, and back; the reply out of shared memory.  Ordering: the store of
 * the flag releases the request's bytes to the side that loads it with
 * acquire, and the other side's store of 2k + 2 releases the reply's the
 * same way back.
 */
static void floor_round(char *sh, char *own, char *back, size_t size,
			_Atomic uint64_t *flag, uint64_t k)
{
	memcpy(sh, own, size);
	atomic_store_explicit(flag, 2 * k + 1, memory_order_release);
	while (atomic_load_explicit(flag, memory_order_acquire) != 2 * k + 2)
		;
	memcpy(back, sh + size, size);
}

int rpc_floor(struct rpc_run *r)
{
	size_t size = r->size;
	/* The request, the reply, then the flag on a cache line of its
	 * own (aligned whatever the size). */
	size_t flag_off = (2 * size + 63) / 64 * 64;
	char *sh = mmap(NULL, flag_off + 64, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char *own = malloc(size), *back = malloc(size);
	uint64_t t0, t1, k = 0, end, n = 0;
	_Atomic uint64_t *flag;
	pid_t child, me = getpid();
	int rc = 0;

	r->calls_s = r->p50_us = r->p99_us = r->mean_us = 0;
	r->timed = 0;
	r->why[0] = 0;
	if (sh == MAP_FAILED || !own || !back) {
		rc = bad(r->why, -ENOMEM, "out of memory");
		goto out;
	}
	flag = (_Atomic uint64_t *)(void *)(sh + flag_off);
	atomic_store(flag, 0);
	memset(own, 1, size);
	memset(back, 0, size);
	fflush(NULL);
	child = fork();
	if (child < 0) {
		rc = bad(r->why, -errno, "fork: %s", strerror(errno));
		goto out;
	}
	if (child == 0) {
		/* The server: the request out of shared memory, the reply
		 * into it. */
		child_init(me);
		pin(1);
		for (k = 0;; k++) {
			uint64_t f;

			while ((f = atomic_load_explicit(
					flag, memory_order_acquire)) !=
				       2 * k + 1 &&
			       f != FLOOR_STOP)
				;
			if (f == FLOOR_STOP)
				_exit(0);
			memcpy(back, sh, size);
			memcpy(sh + size, back, size);
			atomic_store_explicit(flag, 2 * k + 2,
					      memory_order_release);
		}
	}
	pin(0);
	if (r->warm_secs > 0)
		for (end = now_ns() + (uint64_t)(r->warm_secs * 1e9);
		     now_ns() < end; k++)
			floor_round(sh, own, back, size, flag, k);
	t0 = now_ns();
	if (r->secs > 0)
		/* The clock is read every FLOOR_BATCH round trips, so that
		 * reading it costs the floor next to nothing. */
		for (end = t0 + (uint64_t)(r->secs * 1e9);
		     (n % FLOOR_BATCH || now_ns() < end) &&
		     (!r->calls || n < (uint64_t)r->calls);
		     k++, n++)
			floor_round(sh, own, back, size, flag, k);
	else
		for (; n < (uint64_t)r->calls; k++, n++)
			floor_round(sh, own, back, size, flag, k);
	t1 = now_ns();
	atomic_store(flag, FLOOR_STOP);
	waitpid(child, NULL, 0);
	if (n) {
		r->timed = (long)n;
		r->mean_us = (double)(t1 - t0) / 1e3 / (double)n;
		r->calls_s = 1e6 / r->mean_us;
	} else {
		rc = bad(r->why, -EIO, "no round trip");
	}
out:
	if (sh != MAP_FAILED)
		munmap(sh, flag_off + 64);
	free(own);
	free(back);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Hogs                                                               */
/* ------------------------------------------------------------------ */

static pid_t hog[RPC_MAX_HOGS];
static int nhog;

int rpc_hogs_start(int n)
{
	pid_t me = getpid();

	fflush(NULL);
	while (nhog < n && nhog < RPC_MAX_HOGS) {
		pid_t p = fork();

		if (p < 0) {
			int e = errno;

			rpc_hogs_stop();
			return -e;
		}
		if (p == 0) {
			volatile uint64_t x = 0;

			child_init(me);
			pin(nhog % 2);
			for (;;)
				x++;
		}
		hog[nhog++] = p;
	}
	return 0;
}

void rpc_hogs_stop(void)
{
	kill_all(hog, nhog);
	nhog = 0;
}
