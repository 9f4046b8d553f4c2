/* SPDX-License-Identifier: MIT */
/*
 * internal.h - every internal interface of libshmk at once, for the code
 * that needs them all: rpc.c and the white-box tests and fuzz targets.
 * The other source files include the headers of their own layer and the
 * layers below (docs/design.md, "Layers"):
 *
 *	sys.h		system calls, clocks, deadlines, errors
 *	format.h	the layout of the shared header and participant table
 *	guard.h		the SIGBUS guard (region layer)
 *	region.h	regions, participants, kinds, names
 *	sync.h		eventcounts, waits, wake-up sockets, the rwlock
 *	kinds.h		the kinds the object files define
 *	buffer.h	the locked copy the buffer and the array share
 *	ring.h		ring internals the rpc layer uses
 *	topic.h		topic internals the fuzz target uses
 *	stat.h		introspection of an object by descriptor
 *
 * The rpc layer's own declarations follow.
 */
#ifndef SHMK_INTERNAL_H
#define SHMK_INTERNAL_H

#include "buffer.h"
#include "format.h"
#include "guard.h"
#include "kinds.h"
#include "region.h"
#include "ring.h"
#include "stat.h"
#include "sync.h"
#include "sys.h"
#include "topic.h"

/* rpc/testhooks.c: a client's ring to its server (for the tests' hostile
 * peer). */
struct shmk_rpc;
struct shmk_ring *shmk__rpc_out_ring(struct shmk_rpc *ep);
/* rpc/testhooks.c: how often a caller of ep waiting for its reply looks at
 * the server and at who reads the channel (10 ms); a test lengthens it so
 * that a caller left asleep shows as a stall of that length. */
void shmk__rpc_set_look(struct shmk_rpc *ep, uint64_t ns);
/*
 * rpc/testhooks.c, for the fuzz target (fuzz/fuzz_rpc.c): an endpoint (a server if
 * server) whose one channel, peer number 1, runs over the rings in (frames
 * from the peer) and out (same node size), made without a connect and
 * without threads or sockets: frames are taken from in only by
 * shmk__rpc_poll(), which does what the reader does with each frame
 * waiting there (at most a ring's worth; returns how many) and then runs
 * the requests that completed (o->handler) as a worker would, and by calls
 * that read for themselves.  The endpoint owns in and out from the call
 * on, also when it fails; shmk_rpc_close() ends it.
 */
int shmk__rpc_lab(const char *name, int server, struct shmk_ring *in,
		  struct shmk_ring *out, const struct shmk_rpc_opts *o,
		  struct shmk_rpc **epp);
int shmk__rpc_poll(struct shmk_rpc *ep);

/*
 * rpc/handshake.c: the connect handshake's socket messages (docs/format.md 5.6.2),
 * parsed from a private copy of what one recvmsg() returned (len bytes,
 * nfds descriptors with it).  The hello: 0 and the client's claimed pid,
 * or -EPROTO.  The answer: 0 and *a for an acceptance, the refusal's code
 * for a refusal (a code the protocol does not carry becomes -EPROTO), or
 * -EPROTO for anything malformed.
 */
#define SHMK__RPC_HELLO_SIZE  16u
#define SHMK__RPC_ANSWER_SIZE 48u
struct shmk__rpc_answer {
	uint64_t chan, nodes, node_size, max_msg;
};
int shmk__rpc_hello_parse(const void *buf, size_t len, uint32_t *pid);
int shmk__rpc_answer_parse(const void *buf, size_t len, int nfds,
			   struct shmk__rpc_answer *a);

#endif /* SHMK_INTERNAL_H */
