/* SPDX-License-Identifier: MIT */
/*
 * topic.c - the transports of `shmk bench`'s topic section, which fans one
 * publisher out to several subscriber processes (transport.h: receivers):
 * shmk_topic in copy mode (publish, receive) and in zero copy (loan and
 * commit, acquire and release), and the shell's way of doing it: a pipe
 * from the publisher into a tee process that copies every byte into one
 * pipe per subscriber (`producer | tee >(a) >(b) | c`).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmk.h>

#include "../bench.h"
#include "builtin.h"

/* ------------------------------------------------------------------ */
/* shmk_topic                                                           */
/* ------------------------------------------------------------------ */

struct topic_local {
	struct shmk_topic *t;
	struct shmk_msg m;
};

/*
 * A lossless topic whose log holds at least depth messages: a power of
 * two, 4 KiB at least.  The parent's handle creates it and, closed at
 * teardown, shuts it down.
 */
static int topic_setup(struct bt_chan *c)
{
	size_t cap = 4096, need = c->depth * ((c->msg_size + 63) & ~(size_t)63);
	struct shmk_topic *t;
	int rc;

	while (cap < need || cap / 2 - 64 < c->msg_size)
		cap *= 2;
	rc = shmk_topic_create(c->name, cap, c->msg_size, NULL, &t);
	if (rc < 0) {
		snprintf(c->why, sizeof(c->why), "shmk_topic_create: %s",
			 shmk_strerror(rc));
		return rc;
	}
	c->priv = t;
	return 0;
}

/* A subscriber subscribes here, before the harness's barrier: it gets
 * every message published after it. */
static int topic_open(struct bt_chan *c, enum bt_role role)
{
	struct topic_local *l = calloc(1, sizeof(*l));
	int rc;

	if (!l)
		return -ENOMEM;
	rc = shmk_topic_open(c->name, NULL, &l->t);
	if (rc >= 0 && role == BT_RX)
		rc = shmk_topic_subscribe(l->t, 0);
	if (rc < 0) {
		shmk_topic_close(l->t);
		free(l);
		snprintf(c->why, sizeof(c->why), "shmk_topic_%s: %s",
			 role == BT_RX ? "open or subscribe" : "open",
			 shmk_strerror(rc));
		return rc;
	}
	c->local = l;
	return 0;
}

static int topic_send(struct bt_chan *c, const void *msg, size_t len)
{
	struct topic_local *l = c->local;

	return shmk_topic_publish(l->t, msg, len, -1);
}

static long topic_recv(struct bt_chan *c, void *buf, size_t cap)
{
	struct topic_local *l = c->local;

	return (long)shmk_topic_receive(l->t, buf, cap, -1);
}

static void *topic_loan(struct bt_chan *c, size_t len)
{
	struct topic_local *l = c->local;
	int rc = shmk_topic_loan(l->t, len, &l->m, -1);

	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	return l->m.data;
}

static int topic_publish(struct bt_chan *c, size_t len)
{
	struct topic_local *l = c->local;

	l->m.len = len;
	return shmk_topic_commit(l->t, &l->m);
}

static const void *topic_take(struct bt_chan *c, size_t *len)
{
	struct topic_local *l = c->local;
	int rc = shmk_topic_acquire(l->t, &l->m, -1);

	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	*len = l->m.len;
	return l->m.data;
}

static int topic_release(struct bt_chan *c)
{
	struct topic_local *l = c->local;

	return shmk_topic_release(l->t, &l->m);
}

static void topic_close(struct bt_chan *c, enum bt_role role)
{
	struct topic_local *l = c->local;

	(void)role;
	if (l) {
		shmk_topic_close(l->t);
		free(l);
		c->local = NULL;
	}
}

static void topic_teardown(struct bt_chan *c)
{
	if (c->priv)
		shmk_topic_close(c->priv);
	c->priv = NULL;
	shmk_unlink(c->name);
}

const struct bt_transport bt_topic = {
	.abi = BT_ABI,
	.name = "topic",
	.label = "shmk topic (copy)",
	.setup = topic_setup,
	.open = topic_open,
	.send = topic_send,
	.recv = topic_recv,
	.close = topic_close,
	.teardown = topic_teardown,
	.fanout = 1,
};

const struct bt_transport bt_topic_zc = {
	.abi = BT_ABI,
	.name = "topic-zc",
	.label = "shmk topic (zero copy)",
	.setup = topic_setup,
	.open = topic_open,
	.send = topic_send,
	.recv = topic_recv,
	.loan = topic_loan,
	.publish = topic_publish,
	.take = topic_take,
	.release = topic_release,
	.close = topic_close,
	.teardown = topic_teardown,
	.fanout = 1,
};

/* ------------------------------------------------------------------ */
/* Pipes fed by a tee process                                           */
/* ------------------------------------------------------------------ */

#define TEE_MAX	 8	   /* subscribers */
#define TEE_BUF	 (1 << 17) /* what the tee reads at once, as tee(1) does */
#define TEE_STOP 2000	   /* ms teardown waits for the tee to end */

/*
 * in: the publisher's pipe, read by the tee; out[k]: subscriber k's.
 * The parent keeps the publisher's end of in and the subscribers' ends
 * of out[] until teardown, for the children it forks later; each child
 * keeps its own end only.
 */
struct tee {
	int in[2];
	int out[TEE_MAX][2];
	unsigned n;
	pid_t pid;
};

static void tee_close_all(struct tee *t)
{
	for (unsigned k = 0; k < t->n; k++)
		if (t->out[k][0] >= 0) {
			close(t->out[k][0]);
			t->out[k][0] = -1;
		}
	if (t->in[1] >= 0) {
		close(t->in[1]);
		t->in[1] = -1;
	}
}

/* The tee process: every byte from in to every out, until in ends or an
 * out is closed. */
static void tee_run(struct tee *t)
{
	char *buf = malloc(TEE_BUF);
	ssize_t n;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	close(t->in[1]);
	for (unsigned k = 0; k < t->n; k++)
		close(t->out[k][0]);
	if (!buf)
		_exit(1);
	for (;;) {
		n = read(t->in[0], buf, TEE_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(n < 0);
		for (unsigned k = 0; k < t->n; k++)
			if (write_full(t->out[k][1], buf, (size_t)n) < 0)
				_exit(1);
	}
}

/* A pipe with the largest buffer an unprivileged user may ask for (as
 * the pipe transport's). */
static int big_pipe(int p[2])
{
	int max = 1 << 20;
	FILE *in;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	in = fopen("/proc/sys/fs/pipe-max-size", "r");
	if (in) {
		if (fscanf(in, "%d", &max) != 1)
			max = 1 << 20;
		fclose(in);
	}
	fcntl(p[1], F_SETPIPE_SZ, max);
	return 0;
}

static int tee_setup(struct bt_chan *c)
{
	struct tee *t = calloc(1, sizeof(*t));
	unsigned k;
	int rc;

	if (!t)
		return -ENOMEM;
	c->priv = t;
	t->n = c->receivers ? c->receivers : 1;
	t->in[0] = t->in[1] = -1;
	for (k = 0; k < TEE_MAX; k++)
		t->out[k][0] = t->out[k][1] = -1;
	if (t->n > TEE_MAX) {
		snprintf(c->why, sizeof(c->why), "at most %d subscribers",
			 TEE_MAX);
		return -EINVAL;
	}
	rc = big_pipe(t->in);
	for (k = 0; rc == 0 && k < t->n; k++)
		rc = big_pipe(t->out[k]);
	if (rc < 0)
		return rc;
	fflush(NULL);
	t->pid = fork();
	if (t->pid < 0)
		return -errno;
	if (t->pid == 0)
		tee_run(t);
	/* The tee's ends are its own. */
	close(t->in[0]);
	t->in[0] = -1;
	for (k = 0; k < t->n; k++) {
		close(t->out[k][1]);
		t->out[k][1] = -1;
	}
	return 0;
}

static int tee_open(struct bt_chan *c, enum bt_role role)
{
	struct tee *t = c->priv;

	for (unsigned k = 0; k < t->n; k++)
		if (role == BT_TX || k != c->rx_index) {
			close(t->out[k][0]);
			t->out[k][0] = -1;
		}
	if (role == BT_RX) {
		close(t->in[1]);
		t->in[1] = -1;
	}
	return 0;
}

static int tee_send(struct bt_chan *c, const void *msg, size_t len)
{
	struct tee *t = c->priv;

	return write_full(t->in[1], msg, len) < 0 ? -EPIPE : 0;
}

/* A byte stream: exactly msg_size bytes make a message. */
static long tee_recv(struct bt_chan *c, void *buf, size_t cap)
{
	struct tee *t = c->priv;

	if (cap < c->msg_size)
		return -EMSGSIZE;
	return read_full(t->out[c->rx_index][0], buf, c->msg_size) < 0
		       ? -EPIPE
		       : (long)c->msg_size;
}

/* Closing our ends ends the tee (end of file, or a broken pipe); one that
 * does not end in time is killed. */
static void tee_teardown(struct bt_chan *c)
{
	struct tee *t = c->priv;
	uint64_t until = now_ns() + (uint64_t)TEE_STOP * 1000000u;

	if (!t)
		return;
	tee_close_all(t);
	for (unsigned k = 0; k < TEE_MAX; k++)
		if (t->out[k][1] >= 0)
			close(t->out[k][1]);
	if (t->in[0] >= 0)
		close(t->in[0]);
	while (t->pid > 0 && waitpid(t->pid, NULL, WNOHANG) == 0) {
		if (now_ns() > until) {
			kill(t->pid, SIGKILL);
			waitpid(t->pid, NULL, 0);
			break;
		}
		usleep(1000);
	}
	free(t);
	c->priv = NULL;
}

const struct bt_transport bt_tee = {
	.abi = BT_ABI,
	.name = "tee",
	.label = "pipes fed by a tee process",
	.setup = tee_setup,
	.open = tee_open,
	.send = tee_send,
	.recv = tee_recv,
	.teardown = tee_teardown,
	.fanout = 1,
};
