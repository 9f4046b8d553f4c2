/* SPDX-License-Identifier: MIT */
/*
 * rpc.c - test_chaos's rpc.  One server process serves a victim endpoint
 * (an honest restart every few seconds) and a control; two clients call
 * both with requests that check themselves.  Every control call gets its
 * reply; every victim call or connect returns success or an error of
 * ok_call[] or ok_connect[].  The chaos scribbles on the victim's object
 * and on the rings of its channels, which it finds here: they have no
 * names, so through /proc/<pid>/fd of the rpc processes.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "harness.h"

/* An rpc call: dropped frames time out; a channel found corrupt ends
 * (-EPIPE) or fails the send (-EBADMSG); a forged error status is
 * -EPROTO; a forged length over our buffer -EMSGSIZE; -EILSEQ is our
 * own handler's answer to a request whose bytes arrived wrong. */
static const int ok_call[] = {ETIMEDOUT, EPIPE,	 EBADMSG, EPROTO,
			      EMSGSIZE,	 EILSEQ, 0};

/* Connecting: the server restarts (-ENOENT, -ECONNREFUSED, -EPIPE); a
 * forged server word or state (-ECONNREFUSED); forged connect slots
 * (-ETIMEDOUT; -ENOENT when a forged token names rings nobody made; a
 * forged refusal carries a resource error the server could have met,
 * or is -EPROTO); a forged header (-EPROTO, -EBADMSG). */
static const int ok_connect[] = {
	ENOENT, ETIMEDOUT, ECONNREFUSED, EPIPE,	 EPROTO, EBADMSG, ENOMEM,
	ENOSPC, EDQUOT,	   EMFILE,	 ENFILE, EEXIST, EACCES,  EROFS,
	EIO,	EFBIG,	   ENOTSUP,	 ENOLCK, EAGAIN, 0};

#define MAX_REQ 1500

static unsigned char req_byte(uint64_t tag, size_t j)
{
	return (unsigned char)(tag * 131u + j * 7u + (j >> 8));
}

/* A request: its tag in the first 8 bytes (if there is room), then
 * bytes that depend on the tag. */
static void req_build(unsigned char *p, size_t len, uint64_t tag)
{
	size_t j;

	for (j = 0; j < len; j++)
		p[j] = req_byte(tag, j);
	if (len >= 8)
		memcpy(p, &tag, 8);
}

static int req_ok(const unsigned char *p, size_t len)
{
	uint64_t tag;
	size_t j;

	if (len < 8)
		return 1;
	memcpy(&tag, p, 8);
	for (j = 8; j < len; j++)
		if (p[j] != req_byte(tag, j))
			return 0;
	return 1;
}

/* The reply: every byte of the request, xor 0xa5.  arg: 1 for the
 * victim endpoint. */
static int handler(void *arg, struct shmk_rpc_req *rq)
{
	const unsigned char *in = rq->data;
	unsigned char *out;
	size_t j;

	if (!req_ok(in, rq->len)) {
		if (!arg)
			atomic_store(&book->bad_request, 1);
		snprintf(rq->error, sizeof(rq->error), "request garbled");
		return -EILSEQ;
	}
	out = malloc(rq->len ? rq->len : 1);
	if (!out)
		return -ENOMEM;
	for (j = 0; j < rq->len; j++)
		out[j] = in[j] ^ 0xa5;
	rq->reply = out;
	rq->reply_len = rq->len;
	rq->reply_free = free;
	return 0;
}

static const struct shmk_rpc_opts vsrv_opts = {.handler = handler,
					       .arg = (void *)1,
					       .nodes = 8,
					       .node_size = 256,
					       .max_msg = 4096};
const struct shmk_rpc_opts csrv_opts = {
	.handler = handler, .nodes = 16, .node_size = 512, .max_msg = 4096};

static struct shmk_rpc *vserve(void)
{
	struct shmk_rpc *s;
	int rc, tries = 0;

	while ((rc = shmk_rpc_serve(n_vrpc, &vsrv_opts, &s)) == -EADDRINUSE &&
	       tries++ < 100)
		sleep_ms(10);
	CHECK_OK(rc);
	return s;
}

int rpc_server(void *arg)
{
	int fds = count_fds();
	struct shmk_rpc *cs, *vs;
	struct shmk_rpc_stats st;
	uint64_t restart;
	uint64_t ncalls = 0;
	int i;

	(void)arg;
	rnd_seed(40);
	CHECK_OK(shmk_rpc_serve(n_crpc, &csrv_opts, &cs));
	vs = vserve();
	restart = check_now_ms() + 2000 + rnd() % 2000;
	while (atomic_load(&book->clients_done) < NCLIENTS) {
		sleep_ms(10);
		if (!stopping() && check_now_ms() >= restart) {
			/* An honest restart; the old object may be in any
			 * state the chaos left it in. */
			CHECK_OK(shmk_rpc_close(vs));
			vs = vserve();
			restart = check_now_ms() + 2000 + rnd() % 2000;
		}
	}
	/* Every call on the control was served, nothing was dropped or
	 * malformed.  (A server's counters are its own: the calls and
	 * replies are its clients', who count them themselves.) */
	for (i = 0; i < NCLIENTS; i++)
		ncalls += atomic_load(&book->calls[i]);
	CHECK_OK(shmk_rpc_stats(cs, &st));
	CHECK_EQ(st.calls, 0);
	CHECK_EQ(st.served, ncalls);
	CHECK_EQ(st.replies, 0);
	CHECK_EQ(st.errors, 0);
	CHECK_EQ(st.malformed, 0);
	CHECK_EQ(st.discarded, 0);
	CHECK_EQ(st.timeouts, 0);
	CHECK_EQ(st.clients, 0);
	CHECK_OK(shmk_rpc_close(vs));
	CHECK_OK(shmk_rpc_close(cs));
	CHECK_EQ(count_fds(), fds);
	return 0;
}

static int reply_ok(const unsigned char *req, const unsigned char *rep,
		    size_t len, const struct shmk_rpc_result *res)
{
	size_t j;

	if (res->len != len)
		return 0;
	for (j = 0; j < len; j++)
		if (rep[j] != (req[j] ^ 0xa5))
			return 0;
	return 1;
}

int rpc_client(void *arg)
{
	int me = (int)(uintptr_t)arg, fails = 0;
	int fds = count_fds();
	struct shmk_rpc_opts co = {.wait_ms = 10000};
	struct shmk_rpc_opts vo = {.wait_ms = 300};
	static unsigned char req[MAX_REQ], rep[MAX_REQ + 512];
	struct shmk_rpc *cc, *vc = NULL;
	struct shmk_rpc_result res;
	struct shmk_rpc_stats st;
	uint64_t seq = 0;
	long rc;

	rnd_seed(50 + (unsigned)me);
	CHECK_OK(shmk_rpc_connect(n_crpc, &co, &cc));
	while (!stopping()) {
		size_t len = (size_t)(rnd() % 2 ? rnd() % 200
						: rnd() % (MAX_REQ + 1));
		uint64_t tag = ((uint64_t)(me + 1) << 40) | seq++;

		req_build(req, len, tag);
		CTRL(shmk_rpc_call(cc, req, len, rep, sizeof(rep), &res,
				   CTRL_MS));
		if (!reply_ok(req, rep, len, &res)) {
			fprintf(stderr, "control rpc: a wrong reply\n");
			exit(1);
		}
		atomic_fetch_add(&book->calls[me], 1);

		if (!vc) {
			if (!may_retry())
				continue;
			rc = VICTIM(K_CONNECT, ok_connect,
				    shmk_rpc_connect(n_vrpc, &vo, &vc));
			if (rc < 0) {
				back_off(20);
				continue;
			}
			fails = 0;
		}
		rc = VICTIM(K_RPC, ok_call,
			    shmk_rpc_call(vc, req, len, rep, sizeof(rep), &res,
					  100));
		if (rc == 0 && !reply_ok(req, rep, len, &res))
			atomic_fetch_add(&book->garbled, 1);
		if (seq % 32 == 0)
			VICTIM(K_RPC, ok_none, shmk_rpc_stats(vc, &st));
		/* A channel that ended, or that has stopped answering (a
		 * forged position can wedge it for good): a new one. */
		fails = rc < 0 ? fails + 1 : 0;
		if (rc == -EPIPE || rc == -EBADMSG || fails >= 3) {
			CHECK_OK(shmk_rpc_close(vc));
			vc = NULL;
		}
	}
	if (vc)
		CHECK_OK(shmk_rpc_close(vc));
	CHECK_OK(shmk_rpc_close(cc));
	atomic_fetch_add(&book->clients_done, 1);
	CHECK_EQ(count_fds(), fds);
	return 0;
}

/* Every client made control calls (each checked its replies), and the
 * server never got a request garbled. */
void rpc_final(void)
{
	int i;

	for (i = 0; i < NCLIENTS; i++)
		CHECK(atomic_load(&book->calls[i]) > 0);
	CHECK_EQ(atomic_load(&book->bad_request), 0);
}

/*
 * Is the descriptor at path (a process's /proc/<pid>/fd entry whose link
 * is link) a ring of the victim rpc server's channels?  Channel rings are
 * anonymous memfds ("/memfd:shmk.ring"); the victim's have 8 nodes of 256
 * bytes, the control server's 16 of 512, so the geometry tells them apart
 * (read once, when a ring is first seen, before it was scribbled on).
 */
static int victim_chan(const char *path, const char *link)
{
	uint64_t g[2];
	ssize_t n;
	int fd;

	if (strncmp(link, "/memfd:shmk.ring", 16))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = pread(fd, g, sizeof(g), O_GEOM);
	close(fd);
	return n == (ssize_t)sizeof(g) && g[0] == 8 && g[1] == 256;
}

/*
 * Finds the victim rpc object (the server makes a new one at each
 * restart) and the rings of its channels, open in the rpc processes
 * (/proc/<pid>/fd: they never had names).
 */
void scan_rpc(struct target t[MAX_TARGETS])
{
	struct target *obj = &t[T_RPC];
	char path[512], link[512];
	struct stat st;
	int i, k;

	shm_path(path, sizeof(path), n_vrpc);
	if (stat(path, &st) == 0 &&
	    (!obj->map || st.st_ino != obj->ino || st.st_dev != obj->dev)) {
		int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);

		if (fd >= 0) {
			map_fd(obj, fd, T_RPC);
			close(fd);
		}
	}
	for (k = T_CHAN; k < MAX_TARGETS; k++)
		t[k].seen = 0;
	for (i = 0; i < 1 + NCLIENTS; i++) {
		struct dirent *e;
		char dir[64];
		DIR *d;

		snprintf(dir, sizeof(dir), "/proc/%d/fd",
			 (int)book->rpc_pids[i]);
		d = opendir(dir);
		if (!d)
			continue;
		while ((e = readdir(d))) {
			ssize_t n;
			int fd, slot = -1;

			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = 0;
			if (strncmp(link, "/memfd:shmk.ring", 16) ||
			    stat(path, &st) < 0)
				continue;
			for (k = T_CHAN; k < MAX_TARGETS; k++) {
				if (t[k].map && t[k].ino == st.st_ino &&
				    t[k].dev == st.st_dev) {
					t[k].seen = 1;
					break;
				}
				if (!t[k].map && slot < 0)
					slot = k;
			}
			if (k < MAX_TARGETS || slot < 0 ||
			    !victim_chan(path, link))
				continue;
			fd = open(path, O_RDWR | O_CLOEXEC);
			if (fd < 0)
				continue;
			if (map_fd(&t[slot], fd, T_CHAN) == 0) {
				t[slot].seen = 1;
				atomic_fetch_add(&book->chans, 1);
			}
			close(fd);
		}
		closedir(d);
	}
	for (k = T_CHAN; k < MAX_TARGETS; k++)
		if (t[k].map && !t[k].seen)
			unmap(&t[k]);
}

/*
 * The rpc object: only its server maps it, and only its header is read by
 * clients (with a private copy: the generic header fields, chaos.c).  Its
 * control area is unused and its counters are the server's; scribbling
 * them must change nothing a client sees.
 */
void pick_rpc(struct target *t, struct field *f)
{
	(void)t;
	if (rnd() % 2) {
		f->off = O_CTL + 8 * (rnd() % (3072 / 8));
		f->width = 8;
	} else {
		f->off = 0x140 + 8 * (rnd() % 32); /* a counter */
		f->width = 8;
		hint(f, 0);
		hint(f, UINT64_MAX);
	}
}
