/* SPDX-License-Identifier: MIT */
/*
 * 05_anonymous - a buffer with no name, shared by its descriptor.
 *
 * Created with a NULL name, a buffer is a sealed memfd: nothing appears
 * in /dev/shm, nothing is left behind if every process dies, and no peer
 * can shrink it.  Other processes get it through a descriptor, in one of
 * two ways, both shown here:
 *
 *  1. a child of fork() inherits the descriptor that shmk_buffer_fd() gave
 *     the parent before the fork, and opens it with shmk_buffer_open_fd().
 *     The parent's handle is inherited too, but a handle belongs to the
 *     process that opened it: in the child every call on it fails with
 *     -ECHILD.
 *  2. any other process (here a new program, started with exec, which
 *     inherits no descriptor of shmk's: they are close-on-exec) receives
 *     it over a UNIX socket: shmk_send_fd() and shmk_recv_fd().
 *
 * The parent writes a greeting at offset 0; each child checks it and
 * writes a reply at its own offset; the parent checks both replies.
 *
 *	./05_anonymous
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <shmk.h>

#include "common.h" /* wait_ok */

#define SIZE	 4096
#define TEXT_LEN 64 /* greeting and replies: fixed-size strings */

static void greeting(char *s, pid_t parent)
{
	memset(s, 0, TEXT_LEN);
	snprintf(s, TEXT_LEN, "hello from %d", (int)parent);
}

static void reply(char *s, int child)
{
	memset(s, 0, TEXT_LEN);
	snprintf(s, TEXT_LEN, "child %d was here", child);
}

/* Checks the parent's greeting and writes child's reply at its offset. */
static int answer(struct shmk_buffer *b, int child)
{
	char got[TEXT_LEN], want[TEXT_LEN];
	int rc;

	rc = shmk_buffer_read(b, 0, got, TEXT_LEN, -1);
	greeting(want, getppid());
	if (rc < 0 || memcmp(got, want, TEXT_LEN) != 0) {
		fprintf(stderr, "child %d: wrong greeting\n", child);
		return 1;
	}
	printf("child %d: read \"%s\" from a %zu-byte buffer\n", child, got,
	       shmk_buffer_size(b));
	reply(want, child);
	rc = shmk_buffer_write(b, (size_t)child * TEXT_LEN, want, TEXT_LEN, -1);
	return rc < 0 ? 1 : 0;
}

/* Child 1, forked: opens the descriptor it inherited. */
static int forked_child(struct shmk_buffer *inherited, int fd)
{
	struct shmk_buffer *b;
	char c;
	int rc;

	rc = shmk_buffer_read(inherited, 0, &c, 1, -1);
	printf("child 1: the inherited handle says: %s\n", shmk_strerror(rc));
	if (rc != -ECHILD)
		return 1;
	rc = shmk_buffer_open_fd(fd, NULL, &b);
	/* Only now: closing the inherited handle frees the child's copy of
	 * it, and fd with it (the handle owns fd).  b has its own. */
	shmk_buffer_close(inherited);
	if (rc < 0) {
		fprintf(stderr, "child 1: open_fd: %s\n", shmk_strerror(rc));
		return 1;
	}
	rc = answer(b, 1);
	shmk_buffer_close(b);
	return rc;
}

/* Child 2, a new program: receives the descriptor over the socket. */
static int receiving_child(int sock)
{
	struct shmk_buffer *b;
	int fd, rc;

	fd = shmk_recv_fd(sock);
	if (fd < 0) {
		fprintf(stderr, "child 2: recv_fd: %s\n", shmk_strerror(fd));
		return 1;
	}
	rc = shmk_buffer_open_fd(fd, NULL, &b);
	close(fd); /* ours; the handle keeps its own */
	if (rc < 0) {
		fprintf(stderr, "child 2: open_fd: %s\n", shmk_strerror(rc));
		return 1;
	}
	rc = answer(b, 2);
	shmk_buffer_close(b);
	return rc;
}

/* Starts child 2 as a fresh program with one end of a socket pair. */
static pid_t start_receiver(int *sock)
{
	char arg[16];
	int sv[2];
	pid_t pid;

	/* Not close-on-exec: the new program must keep sv[1]. */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		snprintf(arg, sizeof(arg), "%d", sv[1]);
		execl("/proc/self/exe", "05_anonymous", "receive", arg,
		      (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	if (pid < 0)
		close(sv[0]);
	*sock = sv[0];
	return pid;
}

/* Both replies where the children put them? */
static int check_replies(struct shmk_buffer *b)
{
	char got[TEXT_LEN], want[TEXT_LEN];
	int child;

	for (child = 1; child <= 2; child++) {
		reply(want, child);
		if (shmk_buffer_read(b, (size_t)child * TEXT_LEN, got, TEXT_LEN,
				     -1) < 0 ||
		    memcmp(got, want, TEXT_LEN) != 0) {
			fprintf(stderr, "parent: no reply from child %d\n",
				child);
			return 1;
		}
		printf("parent: reply %d: \"%s\"\n", child, got);
	}
	return 0;
}

static int parent(void)
{
	char text[TEXT_LEN];
	struct shmk_buffer *b;
	int rc, fd, sock, ok;
	pid_t pid;

	rc = shmk_buffer_create(NULL, SIZE, NULL, &b);
	if (rc < 0) {
		fprintf(stderr, "parent: create: %s\n", shmk_strerror(rc));
		return 1;
	}
	greeting(text, getpid());
	shmk_buffer_write(b, 0, text, TEXT_LEN, -1);
	fd = shmk_buffer_fd(b); /* before the fork, for child 1 */
	printf("parent: wrote \"%s\" to an anonymous buffer, descriptor %d\n",
	       text, fd);
	fflush(stdout); /* or the children inherit unwritten output */

	pid = fork();
	if (pid == 0)
		exit(forked_child(b, fd));
	ok = wait_ok(pid);

	pid = start_receiver(&sock);
	if (pid > 0) {
		rc = shmk_send_fd(sock, fd);
		if (rc < 0)
			fprintf(stderr, "parent: send_fd: %s\n",
				shmk_strerror(rc));
		close(sock);
	}
	ok = wait_ok(pid) && ok;

	rc = ok ? check_replies(b) : 1;
	shmk_buffer_close(b); /* the last handle: the memory goes away */
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "receive"))
		return receiving_child(atoi(argv[2]));
	if (argc > 1) {
		fprintf(stderr, "usage: %s\n", argv[0]);
		return 2;
	}
	return parent();
}
