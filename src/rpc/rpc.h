/* SPDX-License-Identifier: MIT */
/*
 * rpc/rpc.h - shmk_rpc: request/response between processes.  The
 * private header of src/rpc/: the frame and handshake layouts, the
 * process-side state, and what the files call of each other.
 *
 * A server creates the rpc object NAME (a header: its geometry, its
 * counters, and the random nonce that names its socket) and listens on
 * the abstract UNIX SOCK_SEQPACKET address derived from that nonce, bound
 * before the object's name appears.  Only the server attaches to the
 * object; a client reads its header without mapping it, connects to the
 * socket, checks that the server's kernel-given uid owns the object, and
 * says hello (its pid).  The server knows the client only by what the
 * kernel says of the socket (SO_PEERCRED, a pidfd), decides whether it
 * may connect, makes its channel, two anonymous sealed rings (client to
 * server, server to client), and answers with their descriptors.  No
 * channel ring ever has a name.  The socket stays open for the channel's
 * life: its hang-up, or the peer's pidfd becoming readable, is the
 * peer's death; a dead peer ends the channel, and every call pending on
 * it fails with -EPIPE.  Nothing the peer writes in shared memory decides
 * who it is or whether it lives.
 *
 * Each message is one or more frames, a frame per ring node: a 48-byte
 * header (below) and a fragment of the message.  One reader thread per
 * channel takes frames, reassembles messages, completes calls, and runs
 * a whole request's handler in place when a worker slot is free (else
 * queues it for the workers); on a client, a caller waiting for its
 * reply reads the channel itself while the reader thread stands aside
 * (calls.c), and an event-loop server (workers -1) runs handlers on the
 * loop's thread in shmk_rpc_dispatch().  Everything read from a
 * frame or a socket message is validated before use; a bad frame is
 * counted and dropped.  docs/format.md describes the frame and the
 * handshake, docs/design.md the protocol.
 *
 * The files of src/rpc/, bottom to top; each calls only those below it
 * (and the library's lower layers, through ../internal.h):
 *   chan.c       the channel: frames out and in, on_frame's checks and
 *                dispatch, the reader thread, peer death, the channel's
 *                life.  Calls up only through struct chan_ops (below).
 *   handshake.c  the handshake's socket messages.  Calls nothing of rpc.
 *   calls.c      calls, a caller reading its own reply.  Calls chan.c.
 *   workers.c    requests, handler slots, workers, replies.  Calls chan.c.
 *   accept.c     a server's acceptor.  Calls chan.c, workers.c,
 *                handshake.c.
 *   connect.c    one connect attempt.  Calls chan.c, handshake.c.
 *   endpoint.c   the kind, serve, connect, close, stats, the handler
 *                table.  Calls all of the above.
 *   testhooks.c  the tests' hooks (not in libshmk).  Calls anything.
 */
#ifndef SHMK_RPC_H
#define SHMK_RPC_H

#include <pthread.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include "../internal.h"

#define RPC_MAGIC   0x50524b53u /* "SKRP" */
#define RPC_VERSION 1
#define HDR	    48u

enum ftype { F_REQ = 1, F_REP, F_ERR, F_CANCEL, F_HELLO, F_BYE, F_MAX };

struct frame {
	uint32_t magic;
	uint16_t version;
	uint8_t type;
	uint8_t flags;	    /* 0 */
	int32_t status;	    /* F_ERR: the handler's negative code */
	uint32_t frag_len;  /* bytes of message in this frame */
	uint64_t msg_id;    /* the sender's id of this message */
	uint64_t corr_id;   /* F_REP, F_ERR, F_CANCEL: the request's id;
			      F_HELLO: informational, never trusted */
	uint64_t total_len; /* bytes of the whole message */
	uint64_t frag_off;  /* where this fragment goes */
};
_Static_assert(sizeof(struct frame) == HDR, "rpc frame");

/*
 * A message to send, as its frames' headers describe it: built with
 * designated initialisers, so that a field left out is 0 (a message of
 * no bytes, no status, no id).
 */
struct frame_out {
	int type;	  /* enum ftype */
	int32_t status;	  /* F_ERR: the handler's negative code */
	uint64_t id;	  /* msg_id: the sender's id of this message */
	uint64_t corr;	  /* corr_id: F_REP, F_ERR, F_CANCEL: the request's */
	const void *data; /* the whole message, len bytes */
	uint64_t len;
};

/*
 * The handshake on the socket (docs/format.md, 5.6.2): the client's hello,
 * then the server's answer, which carries the two ring descriptors
 * (SCM_RIGHTS, client-to-server ring first) when it accepts.
 */
#define HS_MAGIC   0x48524b53u /* "SKRH" */
#define HS_VERSION 1
enum { HS_HELLO = 1, HS_ACCEPT = 2, HS_REFUSE = 3 };

struct hs_hello {
	uint32_t magic;
	uint16_t version;
	uint16_t type; /* HS_HELLO */
	uint32_t pid;  /* the client's getpid(): must match SO_PEERCRED */
	uint32_t zero;
};
_Static_assert(sizeof(struct hs_hello) == SHMK__RPC_HELLO_SIZE, "hello");

struct hs_answer {
	uint32_t magic;
	uint16_t version;
	uint16_t type;	/* HS_ACCEPT or HS_REFUSE */
	int32_t status; /* HS_REFUSE: why (negative errno); else 0 */
	uint32_t zero;
	uint64_t chan;	    /* HS_ACCEPT: the client's number (rq->peer) */
	uint64_t nodes;	    /* HS_ACCEPT: the rings' geometry, as the */
	uint64_t node_size; /* object's header says */
	uint64_t max_msg;
};
_Static_assert(sizeof(struct hs_answer) == SHMK__RPC_ANSWER_SIZE, "answer");

/* How often a caller waiting for its reply looks at its peer and at who
 * reads its channel (read_for), T_live in docs/design.md. */
#define PEER_LOOK_NS (UINT64_C(10) * 1000000)

/* Geometry of the rpc object: geom[0] nodes, [1] node size, [2] largest
 * message, of every channel. */
#define MIN_NODE_SIZE (HDR + 16)
#define MAX_MSG_LIMIT (UINT64_C(1) << 32)
#define MAX_ACTIVE    1024 /* requests of one peer unanswered at once */

/*
 * Bounds of the acceptor: handshakes under way at once (in all, and per
 * client process: SO_PEERCRED is known at accept, before any byte), how
 * long one may take, and the defaults of the channel limits.
 */
#define MAX_PENDING	    256
#define PENDING_PER_PID	    8
#define PENDING_PER_UID	    64 /* of each uid but the server's own */
#define HANDSHAKE_NS	    (UINT64_C(1000) * 1000000)
#define DEFAULT_MAX_CHANS   1024
#define DEFAULT_MAX_PER_PID 64
#define LISTEN_BACKLOG	    128
/* How long serve looks again at a name whose server seems alive (one
 * killed a moment ago), and how often. */
#define TAKEOVER_NS	(200 * 1000000ull)
#define TAKEOVER_NAP_NS (5 * 1000000ull)

enum {
	C_CALLS,
	C_SERVED,
	C_REPLIES,
	C_BYTES_OUT,
	C_BYTES_IN,
	C_TIMEOUTS,
	C_CANCELS_SENT,
	C_CANCELS_SEEN,
	C_ERRORS,
	C_MALFORMED,
	C_DISCARDED,
	C_CLIENTS,
	C_CONNECTS,
	C_REFUSED,
};

static inline int geom_ok(const uint64_t g[3])
{
	if (g[0] < 2 || g[0] > (1u << 20) || g[1] < MIN_NODE_SIZE ||
	    g[1] > (UINT64_C(1) << 30) || g[2] > MAX_MSG_LIMIT)
		return 0;
	/* Each channel ring must be a ring shmk can make (nodes rounded up
	 * to pages, half the limit left for the rest); otherwise every
	 * connect would be refused.  At most 2^20 * 2^30: no overflow. */
	return g[0] * ((g[1] + 4095) & ~UINT64_C(4095)) <= SHMK__MAX_TOTAL / 2;
}

struct chan;

/* A call this process made, until its caller collects it. */
struct call {
	struct call *next;
	struct chan *ch;
	uint64_t id;
	void *buf; /* the caller's reply buffer */
	size_t cap;
	uint64_t total, got; /* reply bytes announced, arrived */
	int started;	     /* a first fragment arrived */
	int err;	     /* ... of an error (F_ERR), not a reply */
	int waiting;	     /* a thread is in shmk_rpc_wait for it (mu) */
	_Atomic int filling; /* the reader is copying into buf */
	_Atomic int nudged;  /* the reading is free: try to take it */
	_Atomic uint32_t done;
	struct shmk__ec ec; /* the caller sleeps here */
	uint64_t deadline;
	int status;
	char error[SHMK_RPC_ERRMAX];
};

/* A request (its copy, out of the ring) being reassembled, or queued for
 * or run by a worker. */
struct inreq {
	struct inreq *next;  /* the channel's active list */
	struct inreq *qnext; /* the work queue */
	struct chan *ch;     /* a reference, while queued or run */
	uint64_t id;
	uint64_t total, got;
	char *buf;
	int queued; /* whole: a worker's (under ep->mu) */
	_Atomic int cancelled;
};

/*
 * What the channel calls above itself: its frames' handlers and what its
 * reader hands on.  The endpoint sets the table (ep->chan_ops) and every
 * channel it makes takes it (chan_new); the channel calls nothing above
 * it but through these, so that the send path, which reads (help_read),
 * does not make the channel depend on the calls and workers above it.
 */
struct chan_ops {
	/* A request frame f (fragment at p).  With ready, a whole request
	 * is claimed and left in *ready; without, it is queued. */
	void (*on_request)(struct chan *ch, const struct frame *f,
			   const char *p, struct inreq **ready);
	/* A reply or error frame for one of our calls. */
	void (*on_reply)(struct chan *ch, const struct frame *f, const char *p);
	/* A cancel of one of the peer's requests. */
	void (*on_cancel)(struct chan *ch, const struct frame *f);
	/* A server's reader has a whole request (*ready above): run it in
	 * place or queue it. */
	void (*run_request)(struct shmk_rpc *ep, struct chan *ch,
			    struct inreq *in);
	/* The reader's ring was quiet: the error frames owed go now. */
	void (*send_owed)(struct chan *ch);
	/* The channel is over: every call pending on ch fails. */
	void (*fail_calls)(struct shmk_rpc *ep, struct chan *ch, int status);
	/* A client's reader thread has left the reading of ch while callers
	 * want it: one of them is nudged to take it. */
	void (*hand_over)(struct shmk_rpc *ep, struct chan *ch);
};

struct chan {
	struct shmk_rpc *ep;
	const struct chan_ops *ops; /* the endpoint's (chan_new) */
	struct chan *next;	    /* the server's list */
	uint64_t num;		    /* peer number */
	struct shmk_ring *in, *out;
	/* The peer as the kernel knows it: the channel's socket (its
	 * hang-up is the peer's death), the peer's pidfd (readable once
	 * the process exited, also when a child of fork() keeps the socket
	 * open), and the peer's pid (SO_PEERCRED, for the per-process
	 * bound).  -1 / 0 for a lab channel. */
	int sock, pidfd;
	pid_t pid;
	_Atomic int hello; /* the peer said hello in its ring */
	_Atomic int dead;
	_Atomic int refs;
	/* Active requests' count and buffers: changed under ep->mu, read
	 * without it by shmk__rpc_chan_busy() (a frame more or less does
	 * not matter). */
	_Atomic uint64_t active_bytes;
	_Atomic int stuck; /* a reply did not fit within REPLY_MS */
	/* Replies that did not go (cut short or never begun): their callers
	 * are owed an error frame, sent as soon as the ring has room (under
	 * ep->mu; nowed is also read without it, as a hint). */
	uint64_t *owed;
	_Atomic int nowed;
	/* Server: when its reader began running a request in place (ns),
	 * 0 while it reads.  The acceptor reads the channel for it meanwhile
	 * (watch_inline). */
	_Atomic uint64_t inline_since;
	_Atomic int unwatched; /* server: not in the acceptor's epoll set */
	/* Client: who reads ring in.  Callers waiting for a reply read it
	 * themselves when they can (one hand-off fewer); the reader thread
	 * stands aside while any wants to. */
	pthread_mutex_t rd;
	_Atomic int want;
	struct shmk__ec want_ec; /* the reader thread waits here for want 0 */
	/* Requests reassembling or in a worker's hands (under ep->mu). */
	struct inreq *active;
	_Atomic int nactive;
};

/* A connection accepted by the server whose hello has not come yet. */
struct pending {
	int fd;
	pid_t pid; /* SO_PEERCRED, read at accept */
	uid_t uid;
	gid_t gid;
	uint64_t deadline; /* dropped then */
};

struct shmk_rpc {
	struct shmk__region r; /* server (and lab): the rpc object */
	int server;
	const struct chan_ops *chan_ops; /* every channel's (chan_new) */
	char name[SHMK_RPC_NAME_MAX + 1];
	shmk_rpc_handler fn;
	void *arg;
	uint64_t nodes, node_size, max_msg;
	int64_t spin_ns;
	uint64_t look_ns; /* a waiting caller's look (PEER_LOOK_NS, calls.c) */
	pthread_mutex_t mu;
	_Atomic int stop;
	struct chan *chans; /* server: live channels; client: its one */
	uint64_t next_chan;
	unsigned nchans; /* server: channels in the list (under mu) */
	struct call *calls;
	_Atomic int npending; /* calls in the table (a hint for readers) */
	_Atomic uint64_t next_id;
	/* Counters: a server's (and a lab's) are the object's; a client's
	 * its own, in own[] (a client never writes the server's memory). */
	_Atomic uint64_t *ctr;
	_Atomic uint64_t own[SHMK__NCOUNTERS];
	/* The work queue. */
	struct inreq *qhead, *qtail;
	_Atomic uint32_t queued;
	_Atomic uint32_t uncollected; /* calls ended, callers not back yet */
	struct shmk__ec qec;
	int nworkers;
	_Atomic int slots; /* handler slots free (take_slot) */
	/* Requests run in place by their channel's reader (server): how
	 * many run now, and when the last one began (ns; both hints for the
	 * watch, below); whether the acceptor sleeps without watching. */
	_Atomic int ninline;
	_Atomic uint64_t inline_ns;
	_Atomic int watch_asleep;
	_Atomic int nowed; /* error frames owed, on all channels */
	pthread_t *workers;
	/* Server: the acceptor, its listening socket, the eventfd that
	 * stops it, its handshakes under way and who may connect. */
	pthread_t acceptor;
	int acceptor_started;
	pid_t owner; /* the process that made the endpoint (fork: see close) */
	int lsock, stopfd;
	/* Server: every channel's socket and pidfd (EPOLLONESHOT, keyed by
	 * channel number), polled by the acceptor: a death is seen at once,
	 * and the readers need not wake to look. */
	int epfd;
	struct pending *pend;
	int npend;
	unsigned conn_mode; /* the requested mode: group/other may connect */
	uid_t self_uid;
	gid_t self_gid;
	uid_t *allow_uid;
	size_t n_allow_uid;
	gid_t *allow_gid;
	size_t n_allow_gid;
	unsigned max_chans, max_per_pid;
	_Atomic int readers; /* channel readers still running */
	struct shmk__ec stop_ec;
	/* Event loops (shmk_rpc_pollfd): the eventfd, -1 until asked for;
	 * armed while a call that found nothing to do waits for it to be
	 * written (shmk__rpc_poll_arm, shmk__rpc_poll_kick).  dispatch:
	 * workers < 0, the handlers run in shmk_rpc_dispatch.  wakes:
	 * shmk_rpc_wake's count, and the last one a wait answered. */
	_Atomic int pollfd;
	_Atomic int armed;
	int dispatch;
	_Atomic uint32_t wakes, wakes_seen;
};

static inline void count(struct shmk_rpc *ep, int i, uint64_t n)
{
	atomic_fetch_add_explicit(&ep->ctr[i], n, memory_order_relaxed);
}

/*
 * The endpoint's descriptor for event loops (shmk_rpc_pollfd): an eventfd
 * of this process, as every notifier is one of its threads.  A call that
 * found nothing to do arms it (shmk__rpc_poll_arm) and then looks again;
 * whoever makes progress possible afterwards (a call ended, a request
 * queued) publishes that with a seq_cst operation and then calls
 * shmk__rpc_poll_kick: the seq_cst store of armed and the seq_cst load in
 * the kick order the two sides as in the eventcount (one sees the other).
 * A kick writes only when armed: no system call when no loop waits.
 */
static inline void shmk__rpc_poll_kick(struct shmk_rpc *ep)
{
	uint64_t one = 1;

	if (!atomic_load_explicit(&ep->armed, memory_order_seq_cst) ||
	    !atomic_exchange_explicit(&ep->armed, 0, memory_order_acquire))
		return;
	/* acquire: pairs with poll_arm's store, after the descriptor was
	 * made.  EAGAIN means the counter is full: readable anyway. */
	if (write(atomic_load_explicit(&ep->pollfd, memory_order_relaxed), &one,
		  sizeof(one)) < 0)
		(void)0;
}

/* Empties the descriptor and arms it; the caller then looks again (with
 * a seq_cst load) at what it waits for.  No descriptor: nothing to do. */
static inline void shmk__rpc_poll_arm(struct shmk_rpc *ep)
{
	int fd = atomic_load_explicit(&ep->pollfd, memory_order_acquire);
	uint64_t v;

	if (fd < 0)
		return;
	if (read(fd, &v, sizeof(v)) < 0)
		(void)0; /* EAGAIN: it was empty */
	atomic_store_explicit(&ep->armed, 1, memory_order_seq_cst);
}

static inline int remaining_ms(uint64_t deadline)
{
	uint64_t now;

	if (deadline == SHMK__FOREVER)
		return -1;
	now = shmk__mono_ns();
	if (now >= deadline)
		return 0;
	return (int)((deadline - now + 999999) / 1000000 > INT32_MAX
			     ? INT32_MAX
			     : (deadline - now + 999999) / 1000000);
}

static inline int malformed(struct chan *ch)
{
	count(ch->ep, C_MALFORMED, 1);
	return 0;
}

/* ---------------------------------------------------------------------
 * What each file offers the others
 * --------------------------------------------------------------------- */

/* chan.c: the channel */
void shmk__rpc_frame_write(struct shmk_msg *m, const struct frame_out *o,
			   uint64_t off, uint32_t flen);
int shmk__rpc_send_frame(struct chan *ch, const struct frame_out *o,
			 uint64_t deadline, int stall_ms);
int shmk__rpc_chan_busy(struct chan *ch);
int shmk__rpc_help_read(struct chan *ch);
int shmk__rpc_peer_dead(struct chan *ch);
int shmk__rpc_on_frame(struct chan *ch, struct shmk_msg *m,
		       struct inreq **ready);
void shmk__rpc_chan_end(struct chan *ch);
struct chan *shmk__rpc_chan_new(struct shmk_rpc *ep);
void shmk__rpc_chan_put(struct chan *ch);
int shmk__rpc_say_hello(struct chan *ch);
int shmk__rpc_start_reader(struct chan *ch);

/* handshake.c: the handshake's socket messages */
socklen_t shmk__rpc_sock_addr(struct sockaddr_un *a, uint64_t nonce);
ssize_t shmk__rpc_recv_msg(int s, void *buf, size_t cap, int *fds, int maxfds,
			   int *nfds);
int shmk__rpc_send_hs(int s, const void *buf, size_t len, const int *fds,
		      int nfds);
int shmk__rpc_peer_pidfd(int s, pid_t pid);

/* calls.c: calls */
void shmk__rpc_calls_fail(struct shmk_rpc *ep, struct chan *ch, int status);
void shmk__rpc_hand_over(struct shmk_rpc *ep, struct chan *ch);
void shmk__rpc_on_reply(struct chan *ch, const struct frame *f, const char *p);
void shmk__rpc_call_free(struct call *c);

/* workers.c: requests and workers */
void shmk__rpc_on_request(struct chan *ch, const struct frame *f, const char *p,
			  struct inreq **ready);
void shmk__rpc_on_cancel(struct chan *ch, const struct frame *f);
void shmk__rpc_run_or_queue(struct shmk_rpc *ep, struct chan *ch,
			    struct inreq *in);
void shmk__rpc_send_owed(struct chan *ch);
void shmk__rpc_inreq_drop(struct chan *ch, struct inreq *in);
int shmk__rpc_start_workers(struct shmk_rpc *ep, const struct shmk_rpc_opts *o);
struct inreq *shmk__rpc_dequeue(struct shmk_rpc *ep);
void shmk__rpc_run_work(struct shmk_rpc *ep, struct inreq *in);

/* accept.c: the acceptor */
void *shmk__rpc_acceptor_main(void *arg);

/* connect.c: a connect attempt */
int shmk__rpc_connect_once(struct shmk_rpc *ep, const char *name,
			   const struct shmk__kind *kind,
			   const struct shmk_opts *ro, uint64_t answer_by);

/* endpoint.c: endpoints (for testhooks.c) */
int shmk__rpc_ep_new(const char *name, const struct shmk_rpc_opts *o,
		     struct shmk_rpc **out, struct shmk_rpc **epp);
void shmk__rpc_ep_free(struct shmk_rpc *ep);
void shmk__rpc_ep_geometry(struct shmk_rpc *ep);

#endif /* SHMK_RPC_H */
