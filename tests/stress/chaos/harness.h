/* SPDX-License-Identifier: MIT */
/*
 * harness.h - what the processes of test_chaos share (harness.c): the
 * book they keep in shared memory, the objects' names and geometry,
 * random numbers, the checks of every call on a victim and on a control,
 * and the messages rings and topics carry.  Then the chaos process's view
 * of a victim it mapped (chaos.c), which each victim kind's file fills in
 * for its kind, and what each of those files gives the run.
 */
#ifndef SHMK_CHAOS_HARNESS_H
#define SHMK_CHAOS_HARNESS_H

#include <stdatomic.h>
#include <sys/types.h>

#include "check.h"

#define NWRITERS 2
#define NREADERS 2
#define NLOCKERS 2
#define NCLIENTS 2
#define NTSUBS	 2	    /* topic subscribers */
#define MAXSEQ	 (1u << 21) /* control ring messages per writer, at most */
#define NODE	 64	    /* ring node size */
#define WIRE	 24	    /* ring message header */
#define CTRL_MS	 120000	    /* control calls: only a hang takes this long */
/* The victims' geometry (and the controls' where it is the same). */
#define BUF_SIZE    4096
#define ARR_LEN	    64
#define TOPIC_CAP   16384 /* victims: 64 descriptors, 256 granules */
#define TOPIC_MAX   1000
#define TOPIC_MSG   300 /* the longest message we publish */
#define CTOPIC_CAP  65536
#define CLTOPIC_CAP 16384 /* the lossy control: small, lapped often */

/* ------------------------------------------------------------------ */
/* What the processes share                                            */
/* ------------------------------------------------------------------ */

enum {
	K_RING,
	K_BUFFER,
	K_ARRAY,
	K_EVENT,
	K_RPC,
	K_CONNECT,
	K_OPEN,
	K_TOPIC,
	K_LTOPIC,
	NK
};
extern const char *const kname[NK];
#define NCODE 256

struct book {
	uint64_t seed;
	_Atomic int stop_chaos, stop;
	pid_t rpc_pids[1 + NCLIENTS]; /* the server, then the clients */
	/* Victims: results by kind and errno (0: success). */
	_Atomic uint64_t res[NK][NCODE];
	_Atomic uint64_t max_ms[NK]; /* the longest call */
	_Atomic uint64_t garbled;    /* victim payloads that came back wrong */
	_Atomic uint64_t forged_geometry; /* valid, but not the ring we made */
	/* Chaos. */
	_Atomic uint64_t pokes, restores, hammers, epochs, chans;
	/* Control ring. */
	_Atomic uint64_t committed[NWRITERS];
	_Atomic int writers_done;
	_Atomic uint64_t delivered;
	/* Control buffer, array, events. */
	_Atomic uint64_t buf_writes[NLOCKERS], arr_writes[NLOCKERS];
	_Atomic uint64_t rounds[NLOCKERS];
	_Atomic int ev_done;
	/* Control rpc. */
	_Atomic uint64_t calls[NCLIENTS];
	_Atomic int clients_done;
	_Atomic int bad_request; /* a control request arrived wrong */
	/* Control topics (lossless and lossy): published by one process,
	 * taken by NTSUBS; lossy, what each took and lost. */
	_Atomic uint64_t tcommitted, tgot[NTSUBS];
	_Atomic uint64_t ltgot[NTSUBS], ltlost[NTSUBS];
	_Atomic int tsubs_ready, tpub_done;
	/* Victim topics: messages taken (receive or acquire) by policy. */
	_Atomic uint64_t vtaken[2];
	_Atomic uint8_t seen[NWRITERS][MAXSEQ];
};

extern struct book *book;

/* Object names: victims "v.*", controls "c.*", and the rpc server of the
 * fixed tests (rpc_handshake.c); set before any process starts. */
extern const char *n_vring, *n_vbuf, *n_varr, *n_vev, *n_vrpc;
extern const char *n_cring, *n_cbuf, *n_carr, *n_cping, *n_cpong, *n_crpc;
extern const char *n_vtopic, *n_vltopic, *n_ctopic, *n_cltopic;
extern const char *n_fixed;

/* splitmix64, seeded by the run's seed and the process's role. */
uint64_t rnd(void);
void rnd_seed(unsigned role);
void sleep_us(unsigned us);

/* ------------------------------------------------------------------ */
/* What a victim may answer                                            */
/* ------------------------------------------------------------------ */

/*
 * Errors a call on a scribbled-on object may return besides success,
 * each because the damage can look like that (0 ends a list):
 *  -EBADMSG   the damage was seen for what it is;
 *  -EPROTO    likewise, where the format says so (wrong magic, version,
 *             kind; an rpc error frame with a status out of range);
 *  -ETIMEDOUT / -EAGAIN   a forged owner, reader count, intent or
 *             position that looks alive and busy, or a lost wake-up
 *             word: waiting until the timeout is all a caller can do;
 *  -EPIPE     a forged SHUTDOWN state (or the epoch's end, when the
 *             chaos closes the creator's handle); for rpc, a channel
 *             whose ring was found corrupt ends and its calls fail so;
 *  -EOWNERDEAD  a forged owner whose slot is dead, or a forged DIRTY
 *             bit: the lock is taken and the data called suspect;
 *  -EBUSY     (rings) a forged single-writer or single-reader mode
 *             (geometry word 2, seen by a handle opened after it) or a
 *             forged role word: another handle holds the role.
 */
extern const int ok_wait[], ok_none[], ok_open[], ok_stat[];

/*
 * Checks and counts what a call on a victim returned, and how long it
 * took.  VICTIM(kind, ok, call) notes the time, makes the call and
 * checks it.
 */
extern uint64_t vt0;
#define VICTIM(kind, ok, call)                                                 \
	victim((kind), #call, (vt0 = check_now_ms(), (long)(call)), (ok))

long victim(int kind, const char *what, long rc, const int *ok);

/* A call on a control object must succeed. */
#define CTRL(expr)                                                             \
	do {                                                                   \
		long r_ = (long)(expr);                                        \
		if (r_ < 0) {                                                  \
			fprintf(stderr,                                        \
				"%s:%d: control: %s returned %ld "             \
				"(%s)\n",                                      \
				__FILE__, __LINE__, #expr, r_,                 \
				shmk_strerror((int)r_));                       \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* 1 once the run is over: each process then finishes and checks. */
int stopping(void);

/* A victim's open waits 50 ms for it.  After one could not be opened, the
 * next try waits a little (back_off): an honest program does not spin on
 * a broken object either. */
extern const struct shmk_opts wait_open;
int may_retry(void);
void back_off(unsigned ms);

/* ------------------------------------------------------------------ */
/* Messages of rings and topics: (writer, length, sequence, checksum)  */
/* ------------------------------------------------------------------ */

struct wire {
	uint32_t writer;
	uint32_t len;
	uint64_t seq;
	uint64_t sum;
};

/* A message of at most WIRE + max bytes (its length depends on seq). */
size_t build(unsigned char *buf, uint32_t w, uint64_t seq, size_t max);
/* 1 if buf (n bytes) is a message build() made, filling *h. */
int intact(const unsigned char *buf, size_t n, struct wire *h);

/* ------------------------------------------------------------------ */
/* What the chaos scribbles on (chaos.c)                               */
/* ------------------------------------------------------------------ */

/* docs/format.md: the header of every kind, a ring's descriptors. */
#define O_MAGIC	    0x000
#define O_ENDIAN    0x004
#define O_VERSION   0x008
#define O_KIND	    0x00a
#define O_HDR_SIZE  0x00c
#define O_TOTAL	    0x010
#define O_GEOM	    0x018
#define O_STATE	    0x100
#define O_STATE_SEQ 0x104
#define O_NSLOTS    0x108
#define O_COUNTER   0x140
#define O_CTL	    0x400
#define O_PART	    0x1000
#define HDR_SIZE    0x3000
#define RING_DESC   0x23000
#define MAX_TARGETS 26 /* the victims, the rpc object, channel rings */

enum { T_RING, T_BUFFER, T_ARRAY, T_EVENT, T_RPC, T_TOPIC, T_LTOPIC, T_CHAN };

struct target {
	int type; /* T_*; unused slot: map NULL */
	unsigned char *map;
	size_t size;
	dev_t dev;
	ino_t ino;
	unsigned gen; /* bumped at each (re)mapping */
	int seen;     /* channel rings: still open somewhere */
	/* Rings: the layout, from the header as it was when mapped. */
	uint64_t n, node, stride, data;
};

/* A field to scribble on: its offset, width and plausible values. */
struct field {
	uint64_t off;
	int width;
	int nh;
	uint64_t h[12];
};

/* Adds v to f's plausible values. */
void hint(struct field *f, uint64_t v);
/* A word of the mapping, read and written as the object's users do. */
uint64_t load(struct target *t, uint64_t off, int width);
void store(struct target *t, uint64_t off, int width, uint64_t v);
/* Maps the file open at fd, read-write, as the target of type; unmap()
 * lets go of a mapping.  shm_path(): the file of a named object. */
int map_fd(struct target *t, int fd, int type);
void unmap(struct target *t);
void shm_path(char *buf, size_t cap, const char *name);

/* ------------------------------------------------------------------ */
/* Each victim kind, in its own file                                   */
/* ------------------------------------------------------------------ */

/* ring.c: the writers and readers; the control ring's final check; a
 * field of a ring (the victim's, or a channel ring's). */
int ring_writer(void *arg);
int ring_reader(void *arg);
void ring_final(void);
void pick_ring(struct target *t, struct field *f);

/* lock.c: the buffer and the array, both behind the robust lock, and the
 * two lockers that use them (and the events, event.c).  A record of the
 * control buffer and array: torn if inv is not ~seq. */
struct rec {
	uint64_t seq, inv, who;
};
int locker(void *arg);
void lockers_final(void);
void pick_lock(struct target *t, struct field *f);

/* event.c: one call on the victim event; a field of an event. */
void victim_event(struct shmk_event *ve);
void pick_event(struct field *f);

/* rpc.c: the server of the victim and of the control, its clients; the
 * control's final check; finding the victim's object and its channels'
 * rings among the targets; a field of the rpc object. */
extern const struct shmk_rpc_opts csrv_opts;
int rpc_server(void *arg);
int rpc_client(void *arg);
void rpc_final(void);
void scan_rpc(struct target t[MAX_TARGETS]);
void pick_rpc(struct target *t, struct field *f);

/* rpc_handshake.c: what the chaos found in the rpc server, each made once
 * on purpose before the run. */
void test_scribbled_server(void);
void test_forged_refusal(void);
void test_hostile_handshake(void);

/* topic.c: the publisher and the subscribers; the controls' final check;
 * that a victim has the layout the chaos scribbles by; a field of a
 * topic. */
int topic_pub(void *arg);
int topic_sub(void *arg);
void topic_final(void);
void topic_check_layout(struct shmk_topic *t);
void pick_topic(struct target *t, struct field *f);

/* chaos.c: the chaos process. */
int chaos(void *arg);

#endif
