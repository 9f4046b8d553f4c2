/* SPDX-License-Identifier: MIT */
/*
 * iceoryx.c - a `shmk bench` peer: Eclipse iceoryx publish/subscribe
 * through its C binding, zero copy by nature.
 *
 * iceoryx needs its daemon, RouDi, which owns the shared memory: setup()
 * writes a configuration with a memory pool that holds the channel's
 * messages (depth in flight, for two channels: a round trip has one each
 * way), starts iox-roudi with it (no process monitoring) and waits until
 * it is ready; teardown() stops it and removes what it left.  Channels set
 * up while it runs share it.  RouDi's
 * names are fixed (its socket and locks in /tmp, its shared memory named
 * "iceoryx_mgmt" and after the user), so only one can run on a machine:
 * setup() fails while another one runs.
 *
 * TX is a publisher that waits for a slow subscriber, RX a subscriber
 * whose full queue (depth messages) blocks the publisher: nothing is
 * dropped.  A lost message is still looked for and reported.  Every chunk
 * carries its length in an 8-byte user header, since the C binding does
 * not say how long a chunk is.  send() and recv() copy through loan and
 * take.
 *
 * Each process registers one runtime with RouDi, named after the harness's
 * pid and its own; a round trip opens two channels in one process.
 *
 * Fan-out (the topic section, c->receivers > 1): every RX process is a
 * subscriber of the one service, and iceoryx hands each of them every
 * chunk (one chunk, counted once per subscriber); the publisher waits
 * while any subscriber's queue is full.  A subscriber's open() returns
 * only once RouDi has connected it to the publisher (which the harness
 * opens at the same time, in another process), so that the first message
 * reaches all of them.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <iceoryx_binding_c/chunk.h>
#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>
#include <iceoryx_binding_c/wait_set.h>

#include "../shmk_bench/transport.h"

#define SERVICE	    "shmk-bench"
#define RT_PREFIX   "shmk-bench-iox."
#define EVENT	    "data"
#define MAX_QUEUE   256u /* the subscriber queue's largest capacity */
#define CHUNK_EXTRA 128u /* chunk header, user header, alignment */
#define MAX_PAYLOAD (1u << 30)
#define START_MS    10000 /* RouDi's start and a subscriber's wait */
#define STOP_MS	    5000  /* SIGTERM, then SIGKILL */
#define DATA_MS	    60000 /* recv gives up after this long without data */

/* Made by setup(), inherited by both children. */
struct ipriv {
	pid_t harness; /* names the runtimes of this run */
	unsigned queue;
};

struct ilocal {
	iox_pub_storage_t pub_storage;
	iox_sub_storage_t sub_storage;
	iox_ws_storage_t ws_storage;
	iox_pub_t pub;
	iox_sub_t sub;
	iox_ws_t ws;
	void *loaned;
	const void *taken;
	int connected; /* TX: a subscriber was seen */
};

/* The parent's daemon, shared by the channels set up while it runs. */
static struct {
	pid_t pid;
	unsigned users;
	size_t max_msg;
	unsigned queue;
	char dir[64]; /* the configuration and the log */
} roudi;

/* The child's runtime. */
static unsigned rt_users;

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void nap(long us)
{
	struct timespec ts = {0, us * 1000};

	nanosleep(&ts, NULL);
}

static int write_config(struct bt_chan *c, const char *path, size_t chunk,
			unsigned count)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		snprintf(c->why, sizeof(c->why), "%s: %s", path,
			 strerror(errno));
		return -errno;
	}
	fprintf(f,
		"[general]\nversion = 1\n\n[[segment]]\n\n"
		"[[segment.mempool]]\nsize = %zu\ncount = %u\n",
		chunk, count);
	if (fclose(f) != 0)
		return -EIO;
	return 0;
}

/* Copies src to dst without terminal escapes (RouDi logs in colour). */
static void plain(char *dst, size_t size, const char *src)
{
	size_t n = 0;

	while (*src && n + 1 < size) {
		if (*src == '\033') {
			while (*src && *src != 'm')
				src++;
			if (*src)
				src++;
			continue;
		}
		if (*src != '\n')
			dst[n++] = *src;
		src++;
	}
	dst[n] = 0;
}

/* RouDi's error (its log's first one, else its last line), for c->why. */
static void log_why(struct bt_chan *c, const char *what)
{
	char path[96], line[256], text[256] = "";
	const char *msg;
	FILE *f;

	snprintf(path, sizeof(path), "%s/roudi.log", roudi.dir);
	f = fopen(path, "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			plain(text, sizeof(text), line);
			if (strstr(text, "Fatal") || strstr(text, "Error"))
				break;
		}
		fclose(f);
	}
	/* The message follows the time stamp and "[ Level ]: ". */
	msg = strstr(text, "]: ");
	msg = msg ? msg + 3 : text;
	/* A long message is cut to fit (tested, or GCC warns). */
	if (snprintf(c->why, sizeof(c->why), "%s%s%s", what, *msg ? ": " : "",
		     msg) < 0)
		c->why[0] = 0;
}

static void rm_prefix(const char *dir, const char *prefix)
{
	size_t n = strlen(prefix);
	struct dirent *e;
	char path[512];
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strncmp(e->d_name, prefix, n) == 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	closedir(d);
}

/* Removes what a RouDi that did not stop cleanly left. */
static void rm_roudi_names(void)
{
	struct passwd *pw = getpwuid(geteuid());
	struct group *gr = getgrgid(getegid());
	char path[96];

	unlink("/dev/shm/iceoryx_mgmt");
	if (pw) { /* the data segment is named after its users */
		snprintf(path, sizeof(path), "/dev/shm/%s", pw->pw_name);
		unlink(path);
	}
	if (gr) {
		snprintf(path, sizeof(path), "/dev/shm/%s", gr->gr_name);
		unlink(path);
	}
	unlink("/tmp/roudi");
	unlink("/tmp/roudi.lock");
	unlink("/tmp/iox-unique-roudi.lock");
}

/*
 * A runtime deregisters (and removes its socket, /tmp/<its name>) only
 * when its process calls exit(); a process that ended otherwise stays
 * registered, and RouDi then fails to stop: it cannot signal it.
 */
static int runtimes_left(const char *prefix)
{
	size_t n = strlen(prefix), len;
	struct dirent *e;
	int left = 0;
	DIR *d = opendir("/tmp");

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		len = strlen(e->d_name);
		if (strncmp(e->d_name, prefix, n) == 0 &&
		    (len < 5 || strcmp(e->d_name + len - 5, ".lock") != 0))
			left++;
	}
	closedir(d);
	return left;
}

/* Stops the daemon: SIGTERM, or SIGKILL where it would not stop cleanly
 * or in time; then removes what it could not. */
static void stop_roudi(void)
{
	struct timespec t0;
	char prefix[32];
	int killed, st = 0;
	pid_t w;

	snprintf(prefix, sizeof(prefix), "%s%ld.", RT_PREFIX, (long)getpid());
	if (roudi.pid > 0) {
		killed = runtimes_left(prefix) > 0;
		kill(roudi.pid, killed ? SIGKILL : SIGTERM);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while ((w = waitpid(roudi.pid, &st, WNOHANG)) == 0) {
			if (ms_since(&t0) > STOP_MS && !killed) {
				kill(roudi.pid, SIGKILL);
				killed = 1;
			}
			nap(2000);
		}
		if (w < 0 || !WIFEXITED(st))
			rm_roudi_names();
	}
	roudi.pid = 0;
	rm_prefix("/tmp", prefix);
	if (roudi.dir[0]) {
		rm_prefix(roudi.dir, "roudi.");
		rmdir(roudi.dir);
		roudi.dir[0] = 0;
	}
}

static void runtime_init(pid_t harness, const char *role)
{
	char name[64];

	iox_set_loglevel(Iceoryx_LogLevel_Error);
	snprintf(name, sizeof(name), "%s%ld.%s%ld", RT_PREFIX, (long)harness,
		 role, (long)getpid());
	iox_runtime_init(name);
}

static int log_has(const char *path, const char *what)
{
	char line[256];
	int found = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

/* Starts RouDi and waits until it is ready for runtimes. */
static int start_roudi(struct bt_chan *c, size_t chunk, unsigned count)
{
	char cfg[96], log[96];
	struct timespec t0;
	int rc, st;

	strcpy(roudi.dir, "/tmp/shmk-bench-roudi.XXXXXX");
	if (!mkdtemp(roudi.dir)) {
		roudi.dir[0] = 0;
		return -errno;
	}
	snprintf(cfg, sizeof(cfg), "%s/roudi.toml", roudi.dir);
	snprintf(log, sizeof(log), "%s/roudi.log", roudi.dir);
	rc = write_config(c, cfg, chunk, count);
	if (rc < 0)
		goto err;
	roudi.pid = fork();
	if (roudi.pid < 0) {
		rc = -errno;
		goto err;
	}
	if (roudi.pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int nul = open("/dev/null", O_RDONLY);

		/* The daemon goes with the harness. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (nul >= 0)
			dup2(nul, 0);
		/* No monitoring: on a loaded machine a process that missed
		 * its keep-alive for 1.5 s would be taken for dead and its
		 * ports removed under it (then it aborts). */
		execlp("iox-roudi", "iox-roudi", "-c", cfg, "-l", "warning",
		       "-m", "off", (char *)NULL);
		_exit(127);
	}
	/* RouDi says when it is ready.  (A runtime registered only to see
	 * whether it could would never deregister: it cannot call exit() in
	 * this process, and RouDi fails to stop while a runtime it cannot
	 * signal any more is registered.) */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!log_has(log, "RouDi is ready for clients")) {
		if (waitpid(roudi.pid, &st, WNOHANG) == roudi.pid) {
			roudi.pid = 0;
			rc = -EBUSY;
			if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
				snprintf(c->why, sizeof(c->why),
					 "iox-roudi not found (package "
					 "iceoryx)");
				rc = -ENOENT;
			} else {
				log_why(c, "iox-roudi exited (another one "
					   "running?)");
			}
			goto err;
		}
		if (ms_since(&t0) > START_MS) {
			log_why(c, "iox-roudi did not start");
			rc = -ETIMEDOUT;
			goto err;
		}
		nap(2000);
	}
	return 0;
err:
	stop_roudi();
	return rc;
}

static int ice_setup(struct bt_chan *c)
{
	struct ipriv *p;
	unsigned queue = c->depth < MAX_QUEUE ? c->depth : MAX_QUEUE;
	size_t chunk;
	int rc;

	if (c->msg_size > MAX_PAYLOAD) {
		snprintf(c->why, sizeof(c->why),
			 "chunks are limited to %u bytes here", MAX_PAYLOAD);
		return -EMSGSIZE;
	}
	if (queue == 0)
		queue = 1;
	if (queue < c->depth)
		c->label = "iceoryx publish/subscribe (queue of 256)";
	if (roudi.users > 0 &&
	    (c->msg_size > roudi.max_msg || queue > roudi.queue)) {
		snprintf(c->why, sizeof(c->why),
			 "RouDi already runs with smaller memory pools");
		return -EBUSY;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	if (roudi.users == 0) {
		/* Per channel: the queue, one chunk loaned, one held by
		 * each subscriber and slack; two channels. */
		chunk = (c->msg_size + CHUNK_EXTRA + 63) & ~(size_t)63;
		rc = start_roudi(c, chunk, 2 * (queue + 8 + c->receivers));
		if (rc < 0) {
			free(p);
			return rc;
		}
		roudi.max_msg = c->msg_size;
		roudi.queue = queue;
	}
	roudi.users++;
	p->harness = getpid();
	p->queue = queue;
	c->priv = p;
	return 0;
}

static void ice_teardown(struct bt_chan *c)
{
	if (!c->priv)
		return;
	free(c->priv);
	c->priv = NULL;
	if (roudi.users > 0 && --roudi.users == 0)
		stop_roudi();
}

/* A publisher that waits for a slow subscriber (never drops). */
static void open_tx(struct bt_chan *c, struct ilocal *l)
{
	iox_pub_options_t o;

	iox_pub_options_init(&o);
	o.historyCapacity = 0;
	o.offerOnCreate = true;
	o.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
	l->pub = iox_pub_init(&l->pub_storage, SERVICE, c->name, EVENT, &o);
}

/* A subscriber whose full queue blocks the publisher, and a wait set to
 * sleep on while the queue is empty. */
static int open_rx(struct bt_chan *c, struct ilocal *l)
{
	struct ipriv *p = c->priv;
	enum iox_SubscribeState s;
	iox_sub_options_t o;
	struct timespec t0;

	iox_sub_options_init(&o);
	o.queueCapacity = p->queue;
	o.historyRequest = 0;
	o.subscribeOnCreate = true;
	o.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
	l->sub = iox_sub_init(&l->sub_storage, SERVICE, c->name, EVENT, &o);
	l->ws = iox_ws_init(&l->ws_storage);
	if (iox_ws_attach_subscriber_state(l->ws, l->sub,
					   SubscriberState_HAS_DATA, 0,
					   NULL) != WaitSetResult_SUCCESS) {
		snprintf(c->why, sizeof(c->why), "cannot attach a wait set");
		return -EIO;
	}
	/* RouDi has the subscription once it is no longer just requested:
	 * the publisher, offered now or later, then connects to it.  With
	 * several subscribers the publisher cannot tell when all of them
	 * are there (it only learns that one is): each waits until it is
	 * connected. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		s = iox_sub_get_subscription_state(l->sub);
		if (s == SubscribeState_SUBSCRIBED ||
		    (s == SubscribeState_WAIT_FOR_OFFER && c->receivers <= 1))
			return 0;
		if (ms_since(&t0) > START_MS) {
			snprintf(c->why, sizeof(c->why),
				 "subscription state %d after %d ms", (int)s,
				 START_MS);
			return -ETIMEDOUT;
		}
		nap(200);
	}
}

static int ice_open(struct bt_chan *c, enum bt_role role)
{
	struct ipriv *p = c->priv;
	struct ilocal *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	/* Once per process: a round trip opens two channels in one. */
	if (rt_users++ == 0)
		runtime_init(p->harness, role == BT_TX ? "tx" : "rx");
	c->local = l; /* close() undoes a failed open too */
	if (role == BT_RX)
		return open_rx(c, l);
	open_tx(c, l);
	return 0;
}

static void *ice_loan(struct bt_chan *c, size_t len)
{
	struct ilocal *l = c->local;
	struct timespec t0;
	enum iox_AllocationResult r;
	uint64_t n = len;
	void *p;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* A message published before RX's subscription connected would be
	 * dropped: wait for it once (open() cannot: in a round trip both
	 * processes open TX first). */
	while (!l->connected) {
		l->connected = iox_pub_has_subscribers(l->pub);
		if (l->connected)
			break;
		if (ms_since(&t0) > START_MS) {
			snprintf(c->why, sizeof(c->why),
				 "no subscriber after %d ms", START_MS);
			errno = ETIMEDOUT;
			return NULL;
		}
		nap(200);
	}
	if (len > MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return NULL;
	}
	for (;;) {
		r = iox_pub_loan_aligned_chunk_with_user_header(
			l->pub, &p, (uint32_t)len, 8, sizeof(n), 8);
		if (r == AllocationResult_SUCCESS)
			break;
		/* Chunks come back as the subscriber releases them. */
		if (r != AllocationResult_RUNNING_OUT_OF_CHUNKS ||
		    ms_since(&t0) > DATA_MS) {
			snprintf(c->why, sizeof(c->why),
				 "iox_pub_loan_chunk: result %d", (int)r);
			errno = r == AllocationResult_NO_MEMPOOLS_AVAILABLE
					? EMSGSIZE
					: ENOMEM;
			return NULL;
		}
		nap(50);
	}
	memcpy(iox_chunk_header_to_user_header(
		       iox_chunk_header_from_user_payload(p)),
	       &n, sizeof(n));
	l->loaned = p;
	return p;
}

static int ice_publish(struct bt_chan *c, size_t len)
{
	struct ilocal *l = c->local;
	uint64_t n = len;

	if (!l->loaned)
		return -EINVAL;
	memcpy(iox_chunk_header_to_user_header(
		       iox_chunk_header_from_user_payload(l->loaned)),
	       &n, sizeof(n));
	/* Waits while the subscriber's queue is full. */
	iox_pub_publish_chunk(l->pub, l->loaned);
	l->loaned = NULL;
	return 0;
}

static const void *ice_take(struct bt_chan *c, size_t *len)
{
	struct ilocal *l = c->local;
	iox_notification_info_t info[1];
	struct timespec t0, slice = {1, 0};
	enum iox_ChunkReceiveResult r;
	const void *p;
	uint64_t n, missed;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		r = iox_sub_take_chunk(l->sub, &p);
		if (r == ChunkReceiveResult_SUCCESS)
			break;
		if (r != ChunkReceiveResult_NO_CHUNK_AVAILABLE) {
			snprintf(c->why, sizeof(c->why),
				 "iox_sub_take_chunk: result %d", (int)r);
			errno = EIO;
			return NULL;
		}
		if (ms_since(&t0) > DATA_MS) {
			snprintf(c->why, sizeof(c->why), "no message for %d ms",
				 DATA_MS);
			errno = ETIMEDOUT;
			return NULL;
		}
		iox_ws_timed_wait(l->ws, slice, info, 1, &missed);
	}
	if (iox_sub_has_lost_chunks(l->sub)) {
		iox_sub_release_chunk(l->sub, p);
		snprintf(c->why, sizeof(c->why), "iceoryx dropped messages");
		errno = EIO;
		return NULL;
	}
	memcpy(&n,
	       iox_chunk_header_to_user_header_const(
		       iox_chunk_header_from_user_payload_const(p)),
	       sizeof(n));
	if (n > c->msg_size) { /* a length we never wrote */
		iox_sub_release_chunk(l->sub, p);
		snprintf(c->why, sizeof(c->why), "chunk length %llu",
			 (unsigned long long)n);
		errno = EPROTO;
		return NULL;
	}
	l->taken = p;
	*len = n;
	return p;
}

static int ice_release(struct bt_chan *c)
{
	struct ilocal *l = c->local;

	if (!l->taken)
		return -EINVAL;
	iox_sub_release_chunk(l->sub, l->taken);
	l->taken = NULL;
	return 0;
}

static int ice_send(struct bt_chan *c, const void *msg, size_t len)
{
	void *p = ice_loan(c, len);

	if (!p)
		return -errno;
	memcpy(p, msg, len);
	return ice_publish(c, len);
}

static long ice_recv(struct bt_chan *c, void *buf, size_t cap)
{
	size_t len;
	const void *p = ice_take(c, &len);
	int rc;

	if (!p)
		return -errno;
	if (len > cap) {
		ice_release(c);
		return -EMSGSIZE;
	}
	memcpy(buf, p, len);
	rc = ice_release(c);
	return rc < 0 ? rc : (long)len;
}

static void ice_close(struct bt_chan *c, enum bt_role role)
{
	struct ilocal *l = c->local;

	(void)role;
	if (!l)
		return;
	if (l->pub) {
		if (l->loaned)
			iox_pub_release_chunk(l->pub, l->loaned);
		iox_pub_deinit(l->pub);
	}
	if (l->sub) {
		if (l->taken)
			iox_sub_release_chunk(l->sub, l->taken);
		if (l->ws) {
			iox_ws_detach_subscriber_state(
				l->ws, l->sub, SubscriberState_HAS_DATA);
			iox_ws_deinit(l->ws);
		}
		iox_sub_deinit(l->sub);
	}
	free(l);
	c->local = NULL;
	if (rt_users > 0 && --rt_users == 0)
		iox_runtime_shutdown();
}

static const struct bt_transport ice_transport = {
	.abi = BT_ABI,
	.name = "iceoryx",
	.label = "iceoryx publish/subscribe",
	.setup = ice_setup,
	.open = ice_open,
	.send = ice_send,
	.recv = ice_recv,
	.loan = ice_loan,
	.publish = ice_publish,
	.take = ice_take,
	.release = ice_release,
	.close = ice_close,
	.teardown = ice_teardown,
	.fanout = 1,
};

BT_PLUGIN(ice_transport)
