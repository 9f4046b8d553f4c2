/* SPDX-License-Identifier: MIT */
/*
 * 06_rpc - a call from one process to another: the seed's example, where
 * the server adds two bytes and the client calls it with {123, 10}.
 *
 * The server serves "example.rpc" with a handler; the client connects by
 * name (waiting for the server if it is not up yet) and calls.  The reply
 * comes back into the client's buffer: 133.  Errors cross the wire too: a
 * call with the wrong number of bytes gets the handler's -EINVAL and its
 * message.  Handlers run on the server's worker threads, never on the
 * thread that reads the client's requests.
 *
 *	./06_rpc server          # in one shell (Ctrl-C ends it)
 *	./06_rpc client          # in another
 *	./06_rpc                 # or both: the client runs in a child
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <shmk.h>

#include "common.h" /* wait_ok, spawn_self, which_side */

#define NAME "example.rpc"

/* The handler: the reply is the sum of the request's two bytes. */
static int add(void *arg, struct shmk_rpc_req *rq)
{
	const unsigned char *in = rq->data;
	unsigned char *sum;

	(void)arg;
	if (rq->len != 2) {
		snprintf(rq->error, sizeof(rq->error),
			 "add takes 2 bytes, not %zu", rq->len);
		return -EINVAL;
	}
	sum = malloc(1);
	if (!sum)
		return -ENOMEM;
	*sum = (unsigned char)(in[0] + in[1]);
	rq->reply = sum;
	rq->reply_len = 1;
	rq->reply_free = free; /* called once the reply is sent */
	return 0;
}

static int client(void)
{
	struct shmk_rpc_opts o = {.wait_ms = 10000}; /* wait for the server */
	unsigned char req[2] = {123, 10}, sum = 0;
	struct shmk_rpc_result res;
	struct shmk_rpc *c;
	int rc;

	rc = shmk_rpc_connect(NAME, &o, &c);
	if (rc < 0) {
		fprintf(stderr, "client: connect %s: %s\n", NAME,
			shmk_strerror(rc));
		return 1;
	}
	rc = shmk_rpc_call(c, req, sizeof(req), &sum, sizeof(sum), &res, 5000);
	if (rc < 0) {
		fprintf(stderr, "client: call: %s\n", shmk_strerror(rc));
		shmk_rpc_close(c);
		return 1;
	}
	printf("client: %d + %d = %d\n", req[0], req[1], sum);
	/* The handler refuses one byte: its code and message come back. */
	rc = shmk_rpc_call(c, req, 1, &sum, sizeof(sum), &res, 5000);
	printf("client: a call with one byte: %s (\"%s\")\n", shmk_strerror(rc),
	       res.error);
	shmk_rpc_close(c);
	return sum == 133 && rc == -EINVAL ? 0 : 1;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int server(int spawn_client)
{
	struct shmk_rpc_opts o = {.handler = add};
	struct shmk_rpc *s;
	int rc, status = 0;

	rc = shmk_rpc_serve(NAME, &o, &s);
	if (rc < 0) {
		fprintf(stderr, "server: serve %s: %s\n", NAME,
			shmk_strerror(rc));
		return 1;
	}
	if (!spawn_client) {
		printf("server: serving %s; Ctrl-C ends it\n", NAME);
		fflush(stdout);
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		while (!stop)
			pause();
	} else if (!wait_ok(spawn_self("06_rpc", "client"))) {
		status = 1;
	}
	shmk_rpc_close(s); /* its clients get -EPIPE; the name goes */
	return status ? 1 : 0;
}

int main(int argc, char **argv)
{
	int side = which_side(argc, argv, "server", "client");

	if (side < 0)
		return 2;
	return side == 2 ? client() : server(side == 0);
}
