/* SPDX-License-Identifier: MIT */
/*
 * region.h - the region layer (src/region/, guard.c, names.c): one named
 * (or anonymous) mapping with a validated header, this handle's
 * participant slot in it, and what the layer needs to know of each kind of
 * object.  The interface of the layer to those above; src/region/region.h
 * adds what its own files share.
 */
#ifndef SHMK_REGION_H
#define SHMK_REGION_H

#include "format.h"
#include "guard.h"
#include "sys.h"

struct shmk__region;

/*
 * Kinds: what the region layer needs to know of each object.  Each object
 * file defines one; src/kinds.h declares them.
 */
struct shmk__kind {
	uint16_t kind; /* enum shmk_kind */
	const char *name;
	/*
	 * Total region size for this geometry, overflow-checked and at most
	 * SHMK__MAX_TOTAL; -EINVAL if the geometry is impossible.  Called on
	 * the creator's arguments and on an opener's private header copy.
	 */
	int (*layout)(const uint64_t geom[SHMK__GEOM_N], uint64_t *total);
	/*
	 * Called by attach on a slot it has just claimed, before the slot's
	 * new generation is published: clears what the slot's previous
	 * holder (closed or dead) left in its per-participant words.  NULL:
	 * nothing to clear.
	 */
	void (*reclaim)(struct shmk__region *r, int slot);
	/* Called when the creator shuts the object down, after the state is
	 * set: wakes the kind's sleepers so they see it (shmk__notify_all
	 * for every kind with eventcounts).  NULL: none. */
	void (*shutdown)(struct shmk__region *r);
	/* Where the kind's eventcounts are: byte offsets in ctl, each on a
	 * cache line of its own.  shmk__notify_all() notifies them all. */
	uint16_t ec_off[4];
	int n_ec;
	/* Fills the counters shmk_stat() reports from the object's file
	 * (pread; nothing is mapped) and its header copy h.  NULL: the
	 * header's counters are the kind's. */
	int (*stat_counters)(int fd, const struct shmk__hdr *h, uint64_t *out);
	/* 1 if only the creator ever attaches (others at most read the
	 * header, never taking a participant slot): its mode may then let
	 * others read without writing (see shmk__mode_readonly). */
	int creator_only;
	/* Names of the geometry fields and counters, NULL-terminated. */
	const char *geom_names[SHMK__GEOM_N + 1];
	const char *counter_names[SHMK__NCOUNTERS + 1];
};

/* One handle's view of a region: the mapping, its validated geometry and
 * the handle's participant slot in it. */
struct shmk__region {
	int fd; /* our own description; holds our liveness token */
	struct shmk__hdr *hdr;	     /* the mapping starts with the header */
	uint64_t size;		     /* mapped bytes = validated total size */
	uint64_t geom[SHMK__GEOM_N]; /* private copy, validated at open */
	int slot;		     /* our participant slot */
	uint32_t slot_gen;	     /* its generation while we hold it */
	int64_t spin_ns;	     /* spin budget of blocking calls */
	uint32_t hflags;	     /* create: the header's flags */
	const struct shmk__kind *kind;
	uint64_t serial; /* unique among this process's handles, never 0 */
	int creator;	 /* 1 if this handle created the object */
	int forked;	 /* 1 in a child that inherited the handle */
	int share_fd;	 /* for shmk_*_fd(): -1 until asked */
	struct shmk__region *next, *prev; /* the registry (fork handling) */
	/* The SIGBUS guard's record of the mapping; NULL when unguarded
	 * (sealed memfds cannot shrink). */
	struct shmk__guard_slot *guard;
	/* Waiting: the wake-up socket (-1 until shmk__poll_fd() makes it)
	 * and the token in its name; the socket notifies send from (-1
	 * until one first needs it); wakes counts shmk__region_wake(),
	 * wakes_seen the wakes some wait has answered with -ECANCELED. */
	int poll_fd;
	uint64_t poll_token;
	_Atomic int send_fd;
	_Atomic uint32_t wakes, wakes_seen;
};

/* Argument checks shared by every create and open call. */
int shmk__opts_check(const struct shmk_opts *o, int creating);

/*
 * The spin budget of a handle's blocking calls, in ns, from what opts asks
 * for (spin_us: 0 the default, < 0 none).  Read here, at open, and kept
 * in the handle (r->spin_ns): the sync layer only spends it.
 */
#define SHMK__SPIN_DEFAULT_NS 50000
int64_t shmk__spin_ns(const struct shmk_opts *o);

/*
 * 1 if mode lets its group or others read the file without writing it.
 * A process that may read an object's file can take read locks on any of
 * its bytes, and a read lock on a participant slot's byte keeps every
 * later process from claiming that slot; so shmk neither creates nor
 * attaches to an object whose mode allows that (docs/design.md, "Trust").
 */
static inline int shmk__mode_readonly(unsigned mode)
{
	return ((mode & 040) && !(mode & 020)) || ((mode & 04) && !(mode & 02));
}

/*
 * Creates the object (name NULL: anonymous) with the kind's geometry: the
 * backing is made, sized and reserved, init() fills the kind's control
 * words, the state is set ready, and only then the name appears, so no
 * process ever sees a half-made object.  With SHMK_F_OPEN_OR_CREATE an
 * existing object of the same kind and geometry is opened instead.
 */
int shmk__region_create(struct shmk__region *r, const char *name,
			const struct shmk__kind *k,
			const uint64_t geom[SHMK__GEOM_N],
			const struct shmk_opts *o,
			void (*init)(struct shmk__region *r));
int shmk__region_open(struct shmk__region *r, const char *name,
		      const struct shmk__kind *k, const struct shmk_opts *o);
int shmk__region_open_fd(struct shmk__region *r, int fd,
			 const struct shmk__kind *k, const struct shmk_opts *o);
/* Marks the region shut down if r is the creator, then unmaps it. */
void shmk__region_close(struct shmk__region *r);
/* A descriptor to hand to another process (see shmk_buffer_fd). */
int shmk__region_share_fd(struct shmk__region *r);
/* Closes the descriptor share_fd handed out, once the receivers have
 * theirs (the next share_fd makes a new one). */
void shmk__region_unshare(struct shmk__region *r);
/*
 * Removes name if it still names r's own file, whatever the file's bytes
 * say (shmk_unlink() refuses a file whose magic was overwritten).
 * Returns 0, -ENOENT if the name is gone or now names another file, or
 * another negative errno.
 */
int shmk__region_unlink(const struct shmk__region *r, const char *name);
/* Sets state = SHUTDOWN (release) and bumps state_seq. */
void shmk__region_shutdown(struct shmk__region *r);

/*
 * 1 once the SIGBUS guard found the object's file shrunk under the mapping
 * (its tail now reads private zeros).  Relaxed: the flag guards nothing;
 * the guard's handler sets it.
 */
static inline int shmk__region_poisoned(const struct shmk__region *r)
{
	return unlikely(r->guard != NULL) &&
	       unlikely(atomic_load_explicit(&r->guard->poisoned,
					     memory_order_relaxed) != 0);
}

/*
 * -ECHILD if the handle was inherited through fork(), -EBADMSG if the
 * object's file was shrunk under us (close the handle), else 0.  Called
 * at the entry of every call on an object, and by the conditions of its
 * waits, so that a blocked call ends too.
 */
static inline int shmk__region_check(const struct shmk__region *r)
{
	if (unlikely(r->forked))
		return -ECHILD;
	return shmk__region_poisoned(r) ? -EBADMSG : 0;
}

static inline void *shmk__region_data(const struct shmk__region *r)
{
	return (char *)r->hdr + SHMK__HDR_SIZE;
}

/* The object's control words: the header's ctl area, laid out by the
 * kind (each kind casts it to its own struct). */
static inline void *shmk__region_ctl(const struct shmk__region *r)
{
	return r->hdr->ctl;
}

/*
 * The start of every create and open: the out-parameter must not be NULL
 * and is cleared (a failed call leaves NULL there), then *h is a new
 * zeroed handle of the kind's type.  0, -EINVAL or -ENOMEM.  A macro, to
 * serve every kind's handle type; the caller includes <stdlib.h>.
 */
#define SHMK__HANDLE_NEW(out, h)                                               \
	((out) == NULL ? -EINVAL                                               \
		       : (*(out) = NULL, *(h) = calloc(1, sizeof(**(h))),      \
			  *(h) != NULL ? 0 : -ENOMEM))

/* For a kind's layout(): 0 if geom[used..] are all zero (the fields the
 * kind does not use), else -EINVAL. */
int shmk__geom_unused(const uint64_t geom[SHMK__GEOM_N], int used);

static inline void shmk__count(struct shmk__region *r, int i, uint64_t n)
{
	atomic_fetch_add_explicit(&r->hdr->counter[i], n, memory_order_relaxed);
}

/* Is participant slot k held by a live process? 1 yes, 0 no, or -errno. */
int shmk__part_alive(const struct shmk__region *r, int k);

/* Name handling (names.c), shared by src/region/ and stat.c. */
#define SHMK__NAME_MAX	 200
#define SHMK__PATH_MAX	 4096
#define SHMK__SHM_DIR	 "/dev/shm"
#define SHMK__SHM_PREFIX "shmk."
/*
 * Validates name and writes the path of its backing: SHMK__SHM_DIR
 * "/shmk.<name>" for a plain name, the name itself for a file path.
 * Returns 0 for a plain name, 1 for a file path, -EINVAL if the name is
 * bad, -ENAMETOOLONG if the path does not fit.
 */
int shmk__name_path(const char *name, char *path, size_t cap);

/*
 * Opens an existing object's backing read-only (never following a
 * symlink, never blocking on a FIFO), checks that it is a regular file
 * that starts with the magic, and reads the header into *h without mapping
 * anything; the owner and mode are not checked, as nothing is mapped.  The
 * caller validates the header with shmk__hdr_check().  Does not wait.  On
 * success *fdp is the descriptor and *st what fstat said of it.
 */
struct stat;
int shmk__region_peek(const char *name, int *fdp, struct stat *st,
		      struct shmk__hdr *h);
/* The same for a descriptor already open (read access is enough). */
int shmk__region_peek_fd(int fd, struct stat *st, struct shmk__hdr *h);
/* Validates a private header copy against the file size and the kind:
 * -EPROTO for another format or kind, -EBADMSG for inconsistent sizes. */
int shmk__hdr_check(const struct shmk__hdr *h, uint64_t file_size,
		    const struct shmk__kind *k);

#endif /* SHMK_REGION_H */
