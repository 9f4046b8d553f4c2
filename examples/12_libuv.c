/* SPDX-License-Identifier: MIT */
/*
 * 12_libuv - a shmk topic in a libuv loop, beside a timer and a socket.
 *
 * libuv (and any loop built on epoll: libevent, GLib, an asyncio loop in
 * a binding) watches descriptors.  shmk_topic_pollfd() gives one that is
 * readable when a receive of this subscription that returned -EAGAIN may
 * now go on; a uv_poll_t on it calls us back, and we receive with timeout
 * 0 until -EAGAIN again (which arms the descriptor for the next message).
 *
 * A publisher process publishes MSGS readings to the topic
 * "example.readings", writes "bye" on a socket to us, and shuts the topic
 * down.  The loop here handles the topic, the socket and a 100 ms timer
 * that prints progress, and ends when the topic is drained (-EPIPE) and
 * the socket closed.
 *
 *	./12_libuv [MSGS]        # default 20000
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <shmk.h>

#define TOPIC "example.readings"

static struct shmk_topic *sub;
static long msgs, got, next;
static int topic_done, sock_done, bad;
static uv_poll_t topic_watch;
static uv_pipe_t sock;
static uv_timer_t timer;

static int publisher(int fd)
{
	struct shmk_opts o = {.wait_ms = 5000};
	struct timespec pause = {0, 20000};
	struct shmk_topic *t;
	long i;

	if (shmk_topic_open(TOPIC, &o, &t) < 0)
		return 1;
	for (i = 0; i < msgs; i++) {
		if (shmk_topic_publish(t, &i, sizeof(i), 5000) < 0)
			return 1;
		if (i % 64 == 0)
			nanosleep(&pause, NULL);
	}
	if (write(fd, "bye", 3) != 3)
		return 1;
	close(fd);
	shmk_topic_shutdown(t); /* subscribers drain, then -EPIPE */
	shmk_topic_close(t);
	return 0;
}

static void maybe_stop(void)
{
	if (topic_done && sock_done)
		uv_timer_stop(&timer);
}

static void on_topic(uv_poll_t *w, int status, int events)
{
	long v;
	ssize_t n;

	(void)events;
	if (status < 0)
		return;
	while ((n = shmk_topic_receive(sub, &v, sizeof(v), 0)) == sizeof(v)) {
		if (v != next++)
			bad = 1;
		got++;
	}
	if (n == -EPIPE) { /* shut down and drained */
		topic_done = 1;
		uv_poll_stop(w);
		maybe_stop();
	} else if (n != -EAGAIN) {
		fprintf(stderr, "receive: %s\n", shmk_strerror((int)n));
		bad = 1;
	}
}

static void on_alloc(uv_handle_t *h, size_t want, uv_buf_t *buf)
{
	static char space[64];

	(void)h;
	(void)want;
	*buf = uv_buf_init(space, sizeof(space));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	if (n > 0)
		printf("socket: \"%.*s\"\n", (int)n, buf->base);
	if (n == UV_EOF) {
		sock_done = 1;
		uv_close((uv_handle_t *)s, NULL);
		maybe_stop();
	}
}

static void on_tick(uv_timer_t *t)
{
	(void)t;
	printf("timer: %ld readings so far\n", got);
}

int main(int argc, char **argv)
{
	struct shmk_topic *t;
	int sv[2], status;
	pid_t pid;

	msgs = argc > 1 ? atol(argv[1]) : 20000;
	shmk_unlink(TOPIC);
	if (shmk_topic_create(TOPIC, 1 << 20, 64, NULL, &t) < 0 ||
	    shmk_topic_open(TOPIC, NULL, &sub) < 0 ||
	    shmk_topic_subscribe(sub, 0) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		fprintf(stderr, "12_libuv: cannot set up %s\n", TOPIC);
		return 1;
	}
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		_exit(publisher(sv[1]));
	}
	close(sv[1]);

	uv_poll_init(uv_default_loop(), &topic_watch, shmk_topic_pollfd(sub));
	uv_poll_start(&topic_watch, UV_READABLE, on_topic);
	uv_pipe_init(uv_default_loop(), &sock, 0);
	uv_pipe_open(&sock, sv[0]);
	uv_read_start((uv_stream_t *)&sock, on_alloc, on_read);
	uv_timer_init(uv_default_loop(), &timer);
	uv_timer_start(&timer, on_tick, 100, 100);
	/* Arm the descriptor: a first receive (nothing yet, or the first
	 * readings) before the loop waits. */
	on_topic(&topic_watch, 0, UV_READABLE);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);

	waitpid(pid, &status, 0);
	printf("loop: %ld of %ld readings, %s\n", got, msgs,
	       bad ? "NOT in order" : "in order");
	uv_close((uv_handle_t *)&topic_watch, NULL);
	uv_close((uv_handle_t *)&timer, NULL);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
	shmk_topic_close(sub);
	shmk_topic_close(t);
	shmk_unlink(TOPIC);
	return !bad && got == msgs && WIFEXITED(status) && !WEXITSTATUS(status)
		       ? 0
		       : 1;
}
