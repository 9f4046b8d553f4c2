/* SPDX-License-Identifier: MIT */
/*
 * format.h - the layout of the shared bytes every kind has: the header,
 * its counters and control area, and the participant table.  Host byte
 * order; the endian word reveals a mismatch.  Every field has a fixed
 * width and offset.  docs/format.md is the authority; the kinds lay out
 * their control words and data in their own files.
 */
#ifndef SHMK_FORMAT_H
#define SHMK_FORMAT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SHMK__MAGIC	0x6b6d6873u /* the bytes "shmk" on a little-endian host */
#define SHMK__ENDIAN	0x01020304u
#define SHMK__VERSION	1
#define SHMK__HDR_SIZE	12288u
#define SHMK__GEOM_N	8
#define SHMK__NCOUNTERS 32
#define SHMK__MAX_PARTS 128
#define SHMK__CTL_SIZE	3072u
#define SHMK__CACHELINE 64
/* Largest region: keeps every offset representable in off_t and size_t
 * and far from overflow in any sum of two of them. */
#define SHMK__MAX_TOTAL (UINT64_C(1) << 46)

/*
 * Participant slot k.  Written only by the process whose open file
 * description holds the slot's liveness token (an OFD write lock on file
 * byte SHMK__LOCK_BYTE(k)); read by anyone.  The fields are informational
 * (pid and uid are never used to decide anything): liveness is the lock.
 */
struct shmk__part {
	_Atomic uint32_t gen;	/* bumped by each new holder; 0 = never used */
	_Atomic uint32_t pid;	/* holder's pid, in its own namespace */
	_Atomic uint32_t uid;	/* holder's effective uid */
	_Atomic uint32_t flags; /* SHMK__PART_* */
	_Atomic uint64_t attach_ns; /* CLOCK_REALTIME at attach, ns */
	/* The holder's wake-up socket (shmk__poll_fd()): the random token
	 * in its name, 0 for none.  Written by the holder, read by
	 * notifiers. */
	_Atomic uint64_t wake;
	/* Words of the object kind about this participant (its lock holds,
	 * its intents), written by the holder; zero until the kind uses
	 * them.  A slot is a whole cache line so that participants writing
	 * their own words never share one. */
	_Atomic uint64_t obj[3];
	/* The eventcounts (bit i: the one on line i of ctl) whose next
	 * notify must wake the holder's socket: set by the holder, cleared
	 * by the notifier that sends. */
	_Atomic uint64_t armed;
};
#define SHMK__HF_KEEP	    1u /* header flag: no shutdown at the creator's close */
#define SHMK__PART_CREATOR  1u /* the slot's holder created the object */
#define SHMK__PART_ATTACHED 2u /* set at attach, cleared by a clean close */

struct shmk__hdr {
	/* 0x000: identity.  Written by the creator before the object is
	 * published under its name; never changed afterwards. */
	uint32_t magic;		     /* SHMK__MAGIC */
	uint32_t endian;	     /* SHMK__ENDIAN */
	uint16_t version;	     /* SHMK__VERSION */
	uint16_t kind;		     /* enum shmk_kind */
	uint32_t hdr_size;	     /* bytes before the object's data */
	uint64_t total_size;	     /* bytes of the whole region */
	uint64_t geom[SHMK__GEOM_N]; /* kind-specific geometry */
	uint32_t creator_uid;	     /* creator's effective uid */
	uint32_t creator_pid;	     /* creator's pid (informational) */
	uint64_t created_ns;	     /* CLOCK_REALTIME at creation, ns */
	uint64_t nonce;		     /* random, unique to this incarnation */
	uint32_t flags;		     /* SHMK__HF_* */
	uint8_t pad0[0x100 - 0x74];
	/* 0x100: lifecycle.  state: enum shmk_state, written by the creator
	 * (release).  state_seq: bumped after each change of state once the
	 * object is published (that is, at shutdown). */
	_Atomic uint32_t state;
	_Atomic uint32_t state_seq;
	/* One more than the highest participant slot ever claimed: those
	 * who scan the table stop there.  Raised by attach (seq_cst). */
	_Atomic uint32_t nslots;
	uint8_t pad1[0x140 - 0x10c];
	/* 0x140: counters, kind-specific, updated with relaxed atomics. */
	_Atomic uint64_t counter[SHMK__NCOUNTERS];
	uint8_t pad2[0x400 - 0x240];
	/* 0x400: the object's control words (locks, cursors, events), laid
	 * out by the object, each hot word on its own cache line. */
	uint8_t ctl[SHMK__CTL_SIZE];
	/* 0x1000: the participant table (0x1000..0x3000). */
	struct shmk__part part[SHMK__MAX_PARTS];
};

_Static_assert(sizeof(struct shmk__part) == SHMK__CACHELINE, "part layout");
_Static_assert(offsetof(struct shmk__hdr, version) == 0x08, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, kind) == 0x0a, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, hdr_size) == 0x0c, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, total_size) == 0x10, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, geom) == 0x18, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, creator_uid) == 0x58, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, created_ns) == 0x60, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, nonce) == 0x68, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, state) == 0x100, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, state_seq) == 0x104, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, nslots) == 0x108, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, counter) == 0x140, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, ctl) == 0x400, "hdr layout");
_Static_assert(offsetof(struct shmk__hdr, part) == 0x1000, "hdr layout");
_Static_assert(sizeof(struct shmk__hdr) == SHMK__HDR_SIZE, "hdr size");

/* Liveness token of participant slot k: an OFD lock on this file byte
 * (a lock range says nothing about the bytes' contents). */
#define SHMK__LOCK_BYTE(k) (UINT64_C(0x1000) + (uint64_t)(k))

#endif /* SHMK_FORMAT_H */
