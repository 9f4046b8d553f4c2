/* SPDX-License-Identifier: MIT */
/*
 * fuzz_rpc - the frames an rpc endpoint reads from its peer's ring: their
 * validation, the reassembly of requests and replies, cancels, hellos and
 * goodbyes.
 *
 * Each input makes an endpoint (byte 0: server or client, its geometry,
 * whether a valid hello comes first) over two anonymous rings with
 * shmk__rpc_lab(): frames reach it only through the ring the harness
 * writes, as the peer, and are read when the harness polls (or a call
 * reads for itself), as the channel's reader would read them.  Then a
 * program: each step one opcode byte and its operands.  Steps write a
 * frame (raw bytes, or a header made of fields picked the way a hostile
 * peer would, around the ids of the calls in flight), poll, make a call
 * (timeout 0), wait for one (timeout 0), cancel one, drain what the
 * endpoint sent.  The requests that complete are run by the poll, on this
 * thread (the lab endpoint has no threads, so a run means the same every
 * time); the handler echoes, fails, or makes one of the mistakes the
 * endpoint must turn into errors.  Every call must return a value or an error, a reply
 * must fit the caller's buffer (heap memory of exactly its size, so that
 * the sanitizer sees any byte past it), and an error text must end within
 * SHMK_RPC_ERRMAX.  Frame layout: docs/format.md, section 5.6.1.
 *
 * Every input is also given whole to the parsers of the connect
 * handshake's socket messages (docs/format.md, 5.6.2), the client's hello
 * and the server's answer (with 0 to 3 descriptors said to have come with
 * it): what they accept must be what the format allows.
 */
#include "fuzz.h"

#include <unistd.h>

#define MAGIC 0x50524b53u
#define HDR   48

struct frame {
	uint32_t magic;
	uint16_t version;
	uint8_t type;
	uint8_t flags;
	int32_t status;
	uint32_t frag_len;
	uint64_t msg_id;
	uint64_t corr_id;
	uint64_t total_len;
	uint64_t frag_off;
};
_Static_assert(sizeof(struct frame) == HDR, "frame");

#define NCALLS 8

struct call {
	uint64_t id; /* 0: none */
	uint8_t *buf;
	size_t cap;
};

struct lab {
	struct shmk_rpc *ep;
	struct shmk_ring *peer_in;  /* we write the endpoint's input */
	struct shmk_ring *peer_out; /* we drain what it sends */
	int server;
	size_t node_size, max_msg;
	uint64_t peer_id; /* our owner id in the input ring: our hello */
	struct call calls[NCALLS];
	uint8_t *node; /* a frame being built */
};

/* The handler: what the request's first byte asks for. */
static int handler(void *arg, struct shmk_rpc_req *rq)
{
	const uint8_t *d = rq->data;
	size_t i;
	unsigned sum = 0;

	(void)arg;
	for (i = 0; i < rq->len; i++) /* every byte must be there */
		sum += d[i];
	(void)shmk_rpc_cancelled(rq);
	switch (rq->len ? d[0] % 6 : 0) {
	case 0: /* echo */
		rq->reply = rq->data;
		rq->reply_len = rq->len;
		return 0;
	case 1:
		snprintf(rq->error, sizeof(rq->error), "no (%u)", sum);
		return -EIO;
	case 2: /* a length without a reply */
		rq->reply_len = 5;
		return 0;
	case 3: /* over the limit */
		rq->reply = rq->data;
		rq->reply_len = SIZE_MAX;
		return 0;
	case 4:
		return 7;
	default: /* not an errno value */
		memset(rq->error, 'x', sizeof(rq->error)); /* no NUL */
		return -5000;
	}
}

/* Writes one node of len bytes (the frame in l->node) as the peer. */
static void put(struct lab *l, size_t len)
{
	int rc = shmk_ring_write(l->peer_in, l->node, len, 0);

	if (rc == -EAGAIN) { /* full: let the endpoint read, once */
		FUZZ_CHECK(shmk__rpc_poll(l->ep) >= 0);
		rc = shmk_ring_write(l->peer_in, l->node, len, 0);
	}
	FUZZ_RC(rc, -EAGAIN, -EPIPE);
}

static void hello(struct lab *l)
{
	struct frame f = {
		.magic = MAGIC, .version = 1, .type = 5, .corr_id = l->peer_id};

	memcpy(l->node, &f, HDR);
	put(l, HDR);
}

/* An id the way a peer would pick one: a call's, or anything. */
static uint64_t pick_id(struct lab *l, struct fuzz_in *in)
{
	uint8_t k = fuzz_u8(in);

	if (k < 0xc0)
		return l->calls[k % NCALLS].id ? l->calls[k % NCALLS].id
					       : (uint64_t)(k % NCALLS) + 1;
	return fuzz_word(in, k & 0xf);
}

/* A frame made of fields: plausible by default, hostile on request. */
static void frame_fields(struct lab *l, struct fuzz_in *in)
{
	uint8_t t = fuzz_u8(in), bad = fuzz_u8(in);
	size_t frag = l->node_size - HDR, flen, len;
	struct frame f = {.magic = MAGIC, .version = 1};

	f.type = (uint8_t)(t % 7);
	f.msg_id = pick_id(l, in);
	f.corr_id = f.type == 5 ? l->peer_id : pick_id(l, in);
	f.total_len = fuzz_u16(in) % (l->max_msg + 1);
	f.frag_off = (uint64_t)fuzz_u8(in) * (uint64_t)frag;
	if (f.frag_off > f.total_len)
		f.frag_off = f.total_len;
	flen = f.total_len - f.frag_off < frag ? f.total_len - f.frag_off
					       : frag;
	if (f.type == 3) /* an error: a status and its text */
		f.status = (int32_t)(-(int32_t)(fuzz_u16(in) % 4200));
	if (bad & 1)
		f.type = (uint8_t)fuzz_u8(in);
	if (bad & 2)
		f.total_len = fuzz_word(in, f.total_len);
	if (bad & 4)
		f.frag_off = fuzz_word(in, f.frag_off);
	if (bad & 8)
		flen = fuzz_u16(in) % (frag + 1);
	if (bad & 16)
		f.status = (int32_t)fuzz_u32(in);
	if (bad & 32)
		f.flags = fuzz_u8(in);
	f.frag_len = (uint32_t)flen;
	if (bad & 64)
		f.frag_len = (uint32_t)fuzz_word(in, flen);
	len = HDR + flen;
	if (bad & 128) /* a node whose length is not the frame's */
		len = fuzz_u16(in) % (l->node_size + 1);
	memcpy(l->node, &f, HDR);
	memset(l->node + HDR, 'a' + t % 26, frag);
	if (flen)
		l->node[HDR] = (uint8_t)(t / 7); /* the handler's choice */
	put(l, len);
}

/* A frame of raw bytes from the input. */
static void frame_raw(struct lab *l, struct fuzz_in *in)
{
	size_t len = fuzz_u16(in) % (l->node_size + 1), i;

	memset(l->node, 0, l->node_size);
	for (i = 0; i < len && in->left; i++)
		l->node[i] = fuzz_u8(in);
	put(l, len);
}

static void drain(struct lab *l)
{
	uint8_t buf[4096];

	while (shmk_ring_read(l->peer_out, buf, sizeof(buf), 0) >= 0)
		;
}

static void call(struct lab *l, struct fuzz_in *in)
{
	uint8_t k = fuzz_u8(in);
	struct call *c = &l->calls[k % NCALLS];
	size_t frag = l->node_size - HDR, len = fuzz_u16(in);
	uint8_t *req;
	int rc;

	/* A few frames (a call of many would fill the endpoint's output,
	 * and the cancel that follows a request cut short waits 100 ms for
	 * room), or one over the limit. */
	len = k & 0x80 ? l->max_msg + 1 + len % 2 : len % (8 * frag + 1);

	if (c->id)
		return;
	c->cap = fuzz_u16(in) % (l->max_msg + 1);
	c->buf = malloc(c->cap ? c->cap : 1);
	req = calloc(1, len ? len : 1);
	if (!c->buf || !req) {
		free(c->buf);
		free(req);
		c->buf = NULL;
		return;
	}
	rc = shmk_rpc_submit(l->ep, l->server ? 1 : 0, req, len, c->buf, c->cap,
			     0, &c->id);
	free(req);
	if (len > l->max_msg)
		FUZZ_CHECK(rc == -EMSGSIZE);
	FUZZ_RC(rc, -ETIMEDOUT, -EAGAIN, -EPIPE, -EMSGSIZE);
	if (rc < 0) {
		free(c->buf);
		c->buf = NULL;
		c->id = 0;
	}
}

static void wait_for(struct lab *l, struct fuzz_in *in, int cancel)
{
	struct call *c = &l->calls[fuzz_u8(in) % NCALLS];
	struct shmk_rpc_result res;
	int rc;

	if (!c->id)
		return;
	if (cancel) {
		FUZZ_CHECK(shmk_rpc_cancel(l->ep, c->id) == 0);
	} else {
		memset(&res, 0x77, sizeof(res));
		rc = shmk_rpc_wait(l->ep, c->id, &res, 0);
		FUZZ_RC(rc, -EAGAIN, -ETIMEDOUT);
		if (rc < 0)
			return; /* still under way */
		FUZZ_CHECK(memchr(res.error, 0, sizeof(res.error)) != NULL);
		FUZZ_CHECK(res.status <= 0 && res.status > -4096);
		if (res.status == 0)
			FUZZ_CHECK(res.len <= c->cap);
	}
	free(c->buf);
	memset(c, 0, sizeof(*c));
}

static const struct {
	size_t nodes, size, max_msg;
} geoms[] = {{8, 64, 64}, {4, 128, 1000}, {16, 96, 200}, {2, 64, 0}};

static int lab_open(struct lab *l, uint8_t how)
{
	char name[64];
	struct shmk_rpc_opts o = {.handler = handler};
	struct shmk_opts ro = {.spin_us = -1};
	struct shmk_ring *in = NULL, *out = NULL;
	size_t g = (how >> 2) % (sizeof(geoms) / sizeof(geoms[0]));
	int rc;

	l->server = how & 1;
	l->node_size = geoms[g].size;
	l->max_msg = geoms[g].max_msg ? geoms[g].max_msg : 4096;
	o.max_msg = geoms[g].max_msg;
	/* The endpoint's output never fills: a reply never waits. */
	if (shmk_ring_create(NULL, geoms[g].nodes, l->node_size, &ro, &in) <
		    0 ||
	    shmk_ring_create(NULL, 1024, l->node_size, &ro, &out) < 0 ||
	    shmk_ring_open_fd(shmk_ring_fd(in), &ro, &l->peer_in) < 0 ||
	    shmk_ring_open_fd(shmk_ring_fd(out), &ro, &l->peer_out) < 0) {
		shmk_ring_close(in);
		shmk_ring_close(out);
		shmk_ring_close(l->peer_in);
		shmk_ring_close(l->peer_out);
		return -1;
	}
	l->peer_id = shmk__owner_id(shmk__ring_region(l->peer_in));
	snprintf(name, sizeof(name), "fz%d.rpc", (int)getpid());
	l->node = calloc(1, l->node_size);
	rc = l->node ? shmk__rpc_lab(name, l->server, in, out, &o, &l->ep)
		     : -ENOMEM;
	if (rc < 0) {
		if (!l->node) {
			shmk_ring_close(in);
			shmk_ring_close(out);
		}
		shmk_ring_close(l->peer_in);
		shmk_ring_close(l->peer_out);
		free(l->node);
		return -1;
	}
	return 0;
}

static void lab_close(struct lab *l)
{
	struct shmk_rpc_stats st;
	int i;

	FUZZ_CHECK(shmk_rpc_stats(l->ep, &st) == 0);
	drain(l);
	shmk_rpc_close(l->ep);
	for (i = 0; i < NCALLS; i++)
		free(l->calls[i].buf);
	shmk_ring_close(l->peer_in);
	shmk_ring_close(l->peer_out);
	free(l->node);
}

/* The handshake parsers on the raw input. */
static void handshake(const uint8_t *data, size_t size)
{
	struct shmk__rpc_answer a;
	uint32_t pid = 0;
	int rc;

	rc = shmk__rpc_hello_parse(data, size, &pid);
	FUZZ_CHECK(rc == 0 || rc == -EPROTO);
	if (rc == 0)
		FUZZ_CHECK(size == SHMK__RPC_HELLO_SIZE && pid > 0 &&
			   pid <= INT32_MAX);
	memset(&a, 0, sizeof(a));
	rc = shmk__rpc_answer_parse(data, size, (int)(size % 4), &a);
	if (rc == 0) {
		FUZZ_CHECK(size == SHMK__RPC_ANSWER_SIZE && size % 4 == 2);
		FUZZ_CHECK(a.chan != 0 && a.nodes >= 2 &&
			   a.nodes <= (1u << 20) && a.node_size >= HDR + 16 &&
			   a.node_size <= (1u << 30) &&
			   a.max_msg <= (UINT64_C(1) << 32));
	} else {
		/* A refusal carries only the codes a server may give. */
		FUZZ_CHECK(rc == -EPROTO || rc == -EACCES || rc == -EUSERS ||
			   rc == -ENOMEM || rc == -ENOSPC || rc == -EDQUOT ||
			   rc == -EMFILE || rc == -ENFILE || rc == -EAGAIN ||
			   rc == -ENOTSUP || rc == -ENOLCK || rc == -EIO);
		FUZZ_CHECK(size == SHMK__RPC_ANSWER_SIZE || rc == -EPROTO);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct lab l;
	uint8_t how = fuzz_u8(&in);
	int steps;

	handshake(data, size);
	memset(&l, 0, sizeof(l));
	if (lab_open(&l, how) < 0)
		return 0;
	if (how & 2)
		hello(&l);
	for (steps = 0; in.left && steps < 128; steps++) {
		uint8_t op = fuzz_u8(&in);

		switch (op % 8) {
		case 0:
		case 1:
			frame_fields(&l, &in);
			break;
		case 2:
			frame_raw(&l, &in);
			break;
		case 3:
			FUZZ_CHECK(shmk__rpc_poll(l.ep) >= 0);
			break;
		case 4:
			call(&l, &in);
			break;
		case 5:
		case 6:
			wait_for(&l, &in, op % 8 == 6);
			break;
		default:
			drain(&l);
			break;
		}
	}
	FUZZ_CHECK(shmk__rpc_poll(l.ep) >= 0);
	lab_close(&l);
	return 0;
}
