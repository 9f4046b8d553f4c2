/* SPDX-License-Identifier: MIT */
/*
 * region.c - the region layer: names, backing files, the self-describing
 * header, the participant table, and the handle registry that makes fork()
 * safe.  docs/format.md describes the header; docs/design.md explains the
 * choices (atomic publication, OFD liveness tokens, fork handling).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "region.h"

/* ---------------------------------------------------------------------
 * Names
 * --------------------------------------------------------------------- */

static int name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int shmk__name_path(const char *name, char *path, size_t cap)
{
	const char *base;
	size_t n, i;
	int len;

	if (!name)
		return -EINVAL;
	n = strnlen(name, SHMK__PATH_MAX);
	if (n == 0)
		return -EINVAL;
	if (memchr(name, '/', n)) {
		if (n >= SHMK__PATH_MAX || n >= cap)
			return -ENAMETOOLONG;
		base = strrchr(name, '/') + 1;
		if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
			return -EINVAL;
		memcpy(path, name, n + 1);
		return 1;
	}
	if (n > SHMK__NAME_MAX)
		return -ENAMETOOLONG;
	for (i = 0; i < n; i++)
		if (!name_char_ok(name[i]))
			return -EINVAL;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	len = snprintf(path, cap, "%s/%s%s", SHMK__SHM_DIR, SHMK__SHM_PREFIX,
		       name);
	if (len < 0 || (size_t)len >= cap)
		return -ENAMETOOLONG;
	return 0;
}

/* ---------------------------------------------------------------------
 * The registry of open handles.  A child created by fork() inherits every
 * descriptor, and with it a reference to each handle's open file
 * description, which holds the handle's liveness token: if the child kept
 * it, a parent that died would look alive for as long as the child lived.
 * So the child drops every inherited handle descriptor at once (in the
 * atfork child handler) and marks the handle as inherited.  A descriptor is
 * created and entered in the registry under the same lock, so a fork in
 * another thread can never slip between the two.
 * --------------------------------------------------------------------- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static struct shmk__region *reg_head;

static void reg_prepare(void)
{
	pthread_mutex_lock(&reg_lock);
}

static void reg_parent(void)
{
	pthread_mutex_unlock(&reg_lock);
}

static void reg_child(void)
{
	struct shmk__region *r;

	for (r = reg_head; r; r = r->next) {
		if (r->fd >= 0)
			close(r->fd);
		r->fd = -1;
		r->forked = 1;
		shmk__guard_forked(r);
	}
	pthread_mutex_unlock(&reg_lock);
}

static void reg_init(void)
{
	pthread_atfork(reg_prepare, reg_parent, reg_child);
}

static void shmk__reg_enter(void)
{
	pthread_once(&reg_once, reg_init);
	pthread_mutex_lock(&reg_lock);
}

static void shmk__reg_leave(void)
{
	pthread_mutex_unlock(&reg_lock);
}

/* With reg_lock held: r now owns fd and is in the registry. */
static void shmk__reg_insert(struct shmk__region *r, int fd)
{
	r->fd = fd;
	r->prev = NULL;
	r->next = reg_head;
	if (reg_head)
		reg_head->prev = r;
	reg_head = r;
}

/*
 * Takes r out of the registry (if it is in it) and closes its descriptor,
 * under one lock: a fork in between would leave the child holding a
 * description no registry entry tells it to close.
 */
static void shmk__reg_remove_close(struct shmk__region *r)
{
	shmk__reg_enter();
	if (r->prev)
		r->prev->next = r->next;
	else if (reg_head == r)
		reg_head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
	/* Out of the guard before the caller's munmap, and while the
	 * descriptor the handler may fstat is still open. */
	shmk__guard_remove(r);
	/* Closing our description drops the liveness token. */
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	shmk__reg_leave();
}

/*
 * Opens a new description of the regular file behind fd (never a dup).
 * Returns the descriptor, or -ENOTSUP when /proc is not mounted (shmk
 * needs it), or another negative errno.
 */
static int shmk__reopen(int fd)
{
	char proc[64];
	int nfd;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	/* Following the magic link is the point; callers have checked that
	 * fd is a regular file, so opening it has no side effect. */
	nfd = open(proc, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (nfd >= 0)
		return nfd;
	if (errno == ENOENT && access("/proc/self/fd", F_OK) < 0)
		return -ENOTSUP;
	return -errno;
}

/*
 * Maps the region from a description of its own, closed at once, rather
 * than from r->fd: a mapping keeps a reference to the description it was
 * made from, and a child of fork() inherits the mapping.  Were it made
 * from r->fd, which holds our liveness token, the child would keep the
 * token alive after we died.  This way the child keeps the memory (its
 * pointers stay valid) but never our liveness.
 *
 * guard: the file can be shrunk by a peer (it is not a memfd sealed
 * against it), so the mapping is entered in the SIGBUS guard.
 */
static int shmk__map_region(struct shmk__region *r, uint64_t len, int guard)
{
	void *map = MAP_FAILED;
	int mfd, rc;

	if (len > SIZE_MAX)
		return -EFBIG;
	shmk__reg_enter();
	mfd = shmk__reopen(r->fd);
	rc = mfd;
	if (mfd >= 0) {
		map = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE,
			   MAP_SHARED, mfd, 0);
		rc = map == MAP_FAILED ? -errno : 0;
		close(mfd);
	}
	if (!rc) {
		r->hdr = map;
		r->size = len;
		if (guard && (rc = shmk__guard_add(r, r->fd)) < 0) {
			munmap(map, (size_t)len);
			r->hdr = NULL;
			r->size = 0;
		}
	}
	shmk__reg_leave();
	return rc;
}

/* ---------------------------------------------------------------------
 * Participants
 * --------------------------------------------------------------------- */

/*
 * Takes the first free participant slot.  The kernel arbitrates: a slot is
 * free exactly when no open file description holds the OFD lock on its
 * byte, which is the case once its holder closed or died, so the table
 * cannot be exhausted by processes that attach and die.
 */
static int shmk__attach(struct shmk__region *r, const struct shmk__kind *kd,
			uint32_t flags)
{
	uint32_t n;
	int k, rc;

	for (k = 0; k < SHMK__MAX_PARTS; k++) {
		struct shmk__part *p = &r->hdr->part[k];
		uint32_t gen;

		rc = shmk__ofd_trylock(r->fd, SHMK__LOCK_BYTE(k));
		if (rc == -EAGAIN)
			continue;
		if (rc < 0)
			return rc;
		SHMK__CRASH("region_attach"); /* token held, slot not filled */
		gen = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
		if (gen == 0)
			gen = 1;
		/* Scanners of the table look this far (seq_cst: before any
		 * lock this handle will take). */
		n = atomic_load_explicit(&r->hdr->nslots, memory_order_relaxed);
		while (n < (uint32_t)k + 1 &&
		       !atomic_compare_exchange_weak_explicit(
			       &r->hdr->nslots, &n, (uint32_t)k + 1,
			       memory_order_seq_cst, memory_order_relaxed))
			;
		r->slot = k;
		/* The last holder's wake-up socket is gone with it. */
		atomic_store_explicit(&p->wake, 0, memory_order_relaxed);
		atomic_store_explicit(&p->armed, 0, memory_order_relaxed);
		if (kd->reclaim)
			kd->reclaim(r, k);
		atomic_store_explicit(&p->pid, (uint32_t)getpid(),
				      memory_order_relaxed);
		atomic_store_explicit(&p->uid, (uint32_t)geteuid(),
				      memory_order_relaxed);
		atomic_store_explicit(&p->flags, flags | SHMK__PART_ATTACHED,
				      memory_order_relaxed);
		atomic_store_explicit(&p->attach_ns, shmk__real_ns(),
				      memory_order_relaxed);
		/* gen last: a reader that sees the new gen sees this holder
		 * (the fields are informational; a snapshot taken while a
		 * slot changes hands may mix two holders). */
		atomic_store_explicit(&p->gen, gen, memory_order_release);
		r->slot_gen = gen;
		return 0;
	}
	return -EUSERS;
}

int shmk__part_alive(const struct shmk__region *r, int k)
{
	if (k < 0 || k >= SHMK__MAX_PARTS)
		return -EINVAL;
	if (k == r->slot)
		return 1; /* our own lock never conflicts with itself */
	return shmk__ofd_held(r->fd, SHMK__LOCK_BYTE(k));
}

/* ---------------------------------------------------------------------
 * Header validation
 * --------------------------------------------------------------------- */

int shmk__hdr_check(const struct shmk__hdr *h, uint64_t file_size,
		    const struct shmk__kind *k)
{
	uint64_t total;

	if (h->magic != SHMK__MAGIC || h->endian != SHMK__ENDIAN ||
	    h->version != SHMK__VERSION)
		return -EPROTO;
	if (h->kind != k->kind)
		return -EPROTO;
	if (h->hdr_size != SHMK__HDR_SIZE || h->total_size != file_size ||
	    h->total_size > SHMK__MAX_TOTAL || h->total_size > SIZE_MAX)
		return -EBADMSG;
	if (k->layout(h->geom, &total) < 0 || total != h->total_size)
		return -EBADMSG;
	return 0;
}

int shmk__geom_unused(const uint64_t geom[SHMK__GEOM_N], int used)
{
	int i;

	for (i = used; i < SHMK__GEOM_N; i++)
		if (geom[i])
			return -EINVAL;
	return 0;
}

int shmk__opts_check(const struct shmk_opts *o, int creating)
{
	const unsigned known =
		SHMK_F_OPEN_OR_CREATE | SHMK_F_ALLOW_SHARED | SHMK_F_KEEP;

	if (!o)
		return 0;
	if (o->flags & ~known)
		return -EINVAL;
	if (o->wait_ms < -1)
		return -EINVAL;
	if (creating && o->mode &&
	    ((o->mode & ~0777u) || (o->mode & 0600u) != 0600u))
		return -EINVAL;
	return 0;
}

int64_t shmk__spin_ns(const struct shmk_opts *o)
{
	if (!o || o->spin_us == 0)
		return SHMK__SPIN_DEFAULT_NS;
	if (o->spin_us < 0)
		return 0;
	return (int64_t)o->spin_us * 1000;
}

/*
 * Checks the backing fd and reads its header into the private copy h:
 * a regular file; trusted (sealed against shrinking, or owned by us and not
 * writable by others, or the caller said trust_any); starting with the
 * magic; at least a header long.  The header is read with pread, so no
 * other process can change the copy.  The caller validates its fields.
 * *sealed says whether the file is sealed against shrinking.
 */
static int load_hdr(int fd, int trust_any, struct stat *st, struct shmk__hdr *h,
		    int *sealed)
{
	size_t want, got;
	ssize_t n;
	int seals;

	if (fstat(fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode))
		return -EPROTO;
	seals = fcntl(fd, F_GET_SEALS);
	*sealed = seals >= 0 && (seals & F_SEAL_SHRINK);
	if (!trust_any && !*sealed &&
	    (st->st_uid != geteuid() || (st->st_mode & (S_IWGRP | S_IWOTH))))
		return -EACCES;
	want = (uint64_t)st->st_size < sizeof(*h) ? (size_t)st->st_size
						  : sizeof(*h);
	/* Fewer bytes than fstat said: shrunk under us. */
	n = shmk__pread(fd, h, want, 0);
	if (n < 0)
		return (int)n;
	got = (size_t)n;
	if (got < sizeof(h->magic) || h->magic != SHMK__MAGIC)
		return -EPROTO;
	if (got < sizeof(*h))
		return -EBADMSG; /* a truncated header */
	return 0;
}

/* open() flags for an existing backing: never follow a symlink, never
 * block on a FIFO, never become a controlling terminal. */
#define OPEN_EXISTING (O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)

static int shmk__open_errno(int e)
{
	switch (e) {
	case ELOOP:
		return -EACCES; /* a symlink at an object's name: not trusted */
	case EISDIR:
	case ENXIO:
		return -EPROTO; /* a directory or a socket: not an object */
	default:
		return -e;
	}
}

int shmk__region_peek(const char *name, int *fdp, struct stat *st,
		      struct shmk__hdr *h)
{
	char path[SHMK__PATH_MAX];
	int fd, rc, sealed;

	rc = shmk__name_path(name, path, sizeof(path));
	if (rc < 0)
		return rc;
	fd = open(path, O_RDONLY | OPEN_EXISTING);
	if (fd < 0)
		return shmk__open_errno(errno);
	/* Nothing is mapped: describing another user's object is safe. */
	rc = load_hdr(fd, 1, st, h, &sealed);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	*fdp = fd;
	return 0;
}

int shmk__region_peek_fd(int fd, struct stat *st, struct shmk__hdr *h)
{
	int sealed;

	return load_hdr(fd, 1, st, h, &sealed);
}

/* ---------------------------------------------------------------------
 * Create
 * --------------------------------------------------------------------- */

static void shmk__region_reset(struct shmk__region *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->share_fd = -1;
	r->slot = -1;
	r->poll_fd = -1;
	r->send_fd = -1;
}

/* Undoes a half-made handle (never published, or opened but refused). */
static void shmk__region_discard(struct shmk__region *r)
{
	shmk__reg_remove_close(r);
	if (r->hdr)
		munmap(r->hdr, r->size);
	shmk__region_reset(r);
}

/*
 * Sizes and reserves the fresh backing r->fd, writes the header, lets the
 * kind initialise its control words, claims a participant slot for the
 * creator (slot 0, the file being new) and sets the state ready.  Nothing
 * of it is visible to others yet.
 */
static int region_build(struct shmk__region *r, const struct shmk__kind *k,
			const uint64_t geom[SHMK__GEOM_N], uint64_t total,
			mode_t mode, int guard,
			void (*init)(struct shmk__region *r))
{
	struct shmk__hdr *h;
	int rc;

	/* fchmod, not the open mode: the umask must not change it. */
	if (fchmod(r->fd, mode) < 0)
		return -errno;
	if (ftruncate(r->fd, (off_t)total) < 0)
		return errno == EFBIG ? -ENOSPC : -errno;
	/* Reserve every page now: a full tmpfs or disk fails here with
	 * ENOSPC instead of raising SIGBUS at a later store. */
	do
		rc = posix_fallocate(r->fd, 0, (off_t)total);
	while (rc == EINTR);
	if (rc)
		return -rc;
	SHMK__CRASH("region_sized"); /* sized and reserved, no header */
	rc = shmk__map_region(r, total, guard);
	if (rc < 0)
		return rc;
	h = r->hdr;
	r->creator = 1;
	memcpy(r->geom, geom, sizeof(r->geom));

	h->magic = SHMK__MAGIC;
	h->endian = SHMK__ENDIAN;
	h->version = SHMK__VERSION;
	h->kind = k->kind;
	h->hdr_size = SHMK__HDR_SIZE;
	h->total_size = total;
	memcpy(h->geom, geom, sizeof(h->geom));
	h->creator_uid = (uint32_t)geteuid();
	h->creator_pid = (uint32_t)getpid();
	h->created_ns = shmk__real_ns();
	h->nonce = shmk__random64();
	h->flags = r->hflags;
	if (init)
		init(r);
	rc = shmk__attach(r, k, SHMK__PART_CREATOR);
	if (rc < 0)
		return rc;
	/* Release: pairs with the acquire load of state in open_mapped();
	 * everything above is seen by whoever sees READY. */
	atomic_store_explicit(&h->state, SHMK_STATE_READY,
			      memory_order_release);
	return 0;
}

static int create_anon(struct shmk__region *r, const struct shmk__kind *k,
		       const uint64_t geom[SHMK__GEOM_N], uint64_t total,
		       mode_t mode, void (*init)(struct shmk__region *r))
{
	char label[32];
	int fd, rc;

	snprintf(label, sizeof(label), "shmk.%s", k->name);
	shmk__reg_enter();
	fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd >= 0)
		shmk__reg_insert(r, fd);
	shmk__reg_leave();
	if (fd < 0)
		return -errno;
	/* Unguarded: sealed below, before anyone else has the memfd. */
	rc = region_build(r, k, geom, total, mode, 0, init);
	/* Sealed: no process holding the descriptor can shrink the memory
	 * under a reader (which would raise SIGBUS), nor undo the seals. */
	if (!rc && fcntl(fd, F_ADD_SEALS,
			 F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		rc = -errno;
	if (rc < 0)
		shmk__region_discard(r);
	return rc;
}

/* Splits path into its directory (written to dir) and checks the fit. */
static int path_dir(const char *path, char *dir, size_t cap)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!slash)
		return -EINVAL;
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= cap)
		return -ENAMETOOLONG;
	memcpy(dir, path, n);
	dir[n] = 0;
	return 0;
}

/* Gives the unnamed file behind fd the name path, failing if it exists. */
static int link_tmpfile(int fd, const char *path)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0)
		return -errno;
	return 0;
}

/* Makes the persisted kind's new object and its name durable. */
static int sync_file(int fd, const char *dir)
{
	int dfd, rc = 0;

	if (fsync(fd) < 0)
		return -errno;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (fsync(dfd) < 0)
		rc = -errno;
	close(dfd);
	return rc;
}

/*
 * Makes a named object atomically: it is built in an unnamed file
 * (O_TMPFILE) in the target directory and linked to its name only when
 * complete; link() fails if the name exists, which makes creation
 * exclusive without ever opening what sits at the name.  Where the file
 * system lacks O_TMPFILE a uniquely named hidden file is used instead and
 * linked the same way.
 */
static int create_named(struct shmk__region *r, const char *path, int isfile,
			const struct shmk__kind *k,
			const uint64_t geom[SHMK__GEOM_N], uint64_t total,
			mode_t mode, void (*init)(struct shmk__region *r))
{
	char dir[SHMK__PATH_MAX], tmp[SHMK__PATH_MAX + 64];
	struct stat st;
	int fd, rc, tries;

	tmp[0] = 0;
	rc = path_dir(path, dir, sizeof(dir));
	if (rc < 0)
		return rc;
	/* A cheap early answer; the link below is the authority. */
	if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	shmk__reg_enter();
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	for (tries = 0; fd < 0 && tries < 8 &&
			(errno == EOPNOTSUPP || errno == EISDIR ||
			 (tmp[0] && errno == EEXIST));
	     tries++) {
		snprintf(tmp, sizeof(tmp), "%s/.shmk-tmp.%016llx", dir,
			 (unsigned long long)shmk__random64());
		fd = open(tmp,
			  O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			  0600);
	}
	if (fd >= 0)
		shmk__reg_insert(r, fd);
	shmk__reg_leave();
	if (fd < 0)
		return -errno;
	SHMK__CRASH("region_opened"); /* an empty unnamed file */
	rc = region_build(r, k, geom, total, mode, 1, init);
	SHMK__CRASH("region_built"); /* complete, not yet named */
	if (!rc && tmp[0])
		rc = link(tmp, path) < 0 ? -errno : 0;
	else if (!rc)
		rc = link_tmpfile(fd, path);
	if (tmp[0])
		unlink(tmp);
	SHMK__CRASH("region_linked"); /* named, create has not returned */
	/* The persisted kind: the new object and its name are durable
	 * before the caller is told it exists. */
	if (!rc && isfile && (rc = sync_file(fd, dir)) < 0)
		unlink(path);
	if (rc < 0)
		shmk__region_discard(r);
	return rc;
}

static int region_create(struct shmk__region *r, const char *name,
			 const struct shmk__kind *k,
			 const uint64_t geom[SHMK__GEOM_N],
			 const struct shmk_opts *o,
			 void (*init)(struct shmk__region *r))
{
	char path[SHMK__PATH_MAX];
	struct shmk_opts oo = {0};
	mode_t mode = 0600;
	uint64_t total;
	int rc, isfile, tries;

	shmk__region_reset(r);
	rc = shmk__opts_check(o, 1);
	if (rc < 0)
		return rc;
	if (o && o->mode)
		mode = (mode_t)o->mode;
	if (!k->creator_only && shmk__mode_readonly(mode))
		return -EINVAL;
	rc = k->layout(geom, &total);
	if (rc < 0)
		return rc;
	if (o && (o->flags & SHMK_F_KEEP))
		r->hflags = SHMK__HF_KEEP;
	/* No name leads to an anonymous object: its descriptor is the
	 * capability, and a receiver of another user must be able to
	 * reopen it through /proc/self/fd.  0666 unless asked otherwise. */
	if (!name)
		return create_anon(r, k, geom, total,
				   o && o->mode ? mode : 0666, init);
	isfile = shmk__name_path(name, path, sizeof(path));
	if (isfile < 0)
		return isfile;
	for (tries = 0;; tries++) {
		rc = create_named(r, path, isfile, k, geom, total, mode, init);
		if (rc != -EEXIST || !(o && (o->flags & SHMK_F_OPEN_OR_CREATE)))
			return rc;
		oo.flags = o->flags & ~(unsigned)SHMK_F_OPEN_OR_CREATE;
		rc = shmk__region_open(r, name, k, &oo);
		/* Removed between our create and our open: go again. */
		if (rc == -ENOENT && tries < 100)
			continue;
		if (rc < 0)
			return rc;
		if (memcmp(r->geom, geom, sizeof(r->geom)) != 0) {
			shmk__region_close(r);
			return -EPROTO;
		}
		return 0;
	}
}

/* ---------------------------------------------------------------------
 * Open
 * --------------------------------------------------------------------- */

/* Validates the backing r->fd, maps it and attaches to it. */
static int open_mapped(struct shmk__region *r, const struct shmk__kind *k,
		       int trust_any)
{
	struct shmk__hdr *h;
	struct stat st;
	uint64_t total;
	uint32_t state;
	int rc, sealed = 0;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	rc = load_hdr(r->fd, trust_any, &st, h, &sealed);
	/* Attaching to an object others may read but not write would let
	 * any of them keep us, or the next process, from a slot. */
	if (!rc && shmk__mode_readonly((unsigned)st.st_mode))
		rc = -EACCES;
	if (!rc)
		rc = shmk__hdr_check(h, (uint64_t)st.st_size, k);
	if (!rc) {
		/* From here on geometry comes only from the validated copy. */
		total = h->total_size;
		memcpy(r->geom, h->geom, sizeof(r->geom));
	}
	free(h);
	/* A memfd sealed against shrinking needs no guard; anything else
	 * (a named object, a file passed by descriptor) may shrink. */
	if (!rc)
		rc = shmk__map_region(r, total, !sealed);
	if (rc < 0)
		return rc;
	/* Acquire: pairs with the release store of READY by the creator. */
	state = atomic_load_explicit(&r->hdr->state, memory_order_acquire);
	if (state == SHMK_STATE_INIT)
		return -EAGAIN;
	if (state != SHMK_STATE_READY && state != SHMK_STATE_SHUTDOWN)
		return -EBADMSG;
	return shmk__attach(r, k, 0);
}

static int open_once(struct shmk__region *r, const char *path,
		     const struct shmk__kind *k, int trust_any)
{
	int fd, rc;

	shmk__reg_enter();
	fd = open(path, O_RDWR | OPEN_EXISTING);
	if (fd >= 0)
		shmk__reg_insert(r, fd);
	shmk__reg_leave();
	if (fd < 0)
		return shmk__open_errno(errno);
	rc = open_mapped(r, k, trust_any);
	if (rc < 0)
		shmk__region_discard(r);
	return rc;
}

static int region_open(struct shmk__region *r, const char *name,
		       const struct shmk__kind *k, const struct shmk_opts *o)
{
	char path[SHMK__PATH_MAX];
	uint64_t deadline, nap = 1000000; /* 1 ms, doubling, at most 10 ms */
	int rc, trust_any;

	shmk__region_reset(r);
	rc = shmk__opts_check(o, 0);
	if (rc < 0)
		return rc;
	rc = shmk__name_path(name, path, sizeof(path));
	if (rc < 0)
		return rc;
	trust_any = o && (o->flags & SHMK_F_ALLOW_SHARED);
	deadline = shmk__deadline(o ? o->wait_ms : 0);
	for (;;) {
		rc = open_once(r, path, k, trust_any);
		/* Not there yet: a consumer started before its producer
		 * waits for it (names appear only when ready). */
		if (rc != -ENOENT && rc != -EAGAIN)
			return rc;
		if (deadline == 0)
			return rc;
		if (shmk__mono_ns() >= deadline)
			return rc == -EAGAIN ? -ETIMEDOUT : rc;
		shmk__nap(nap, deadline);
		nap = nap * 2 > 10000000 ? 10000000 : nap * 2;
	}
}

static int region_open_fd(struct shmk__region *r, int fd,
			  const struct shmk__kind *k, const struct shmk_opts *o)
{
	struct stat st;
	int own, rc;

	shmk__region_reset(r);
	rc = shmk__opts_check(o, 0);
	if (rc < 0)
		return rc;
	if (fd < 0)
		return -EBADF;
	if (fstat(fd, &st) < 0)
		return -errno; /* EBADF for a bad descriptor */
	/* Never open anything but a regular file: reopening a device a
	 * hostile sender passed could have side effects. */
	if (!S_ISREG(st.st_mode))
		return -EPROTO;
	/*
	 * A new open file description of the same file, never a dup: the
	 * handle's liveness token must belong to this handle alone, not to
	 * a description the sender (or the caller's fd) also holds.
	 */
	shmk__reg_enter();
	own = shmk__reopen(fd);
	if (own >= 0)
		shmk__reg_insert(r, own);
	shmk__reg_leave();
	if (own < 0)
		return own;
	rc = open_mapped(r, k, o && (o->flags & SHMK_F_ALLOW_SHARED));
	if (rc < 0)
		shmk__region_discard(r);
	return rc;
}

static _Atomic uint64_t next_serial;

/* What every handle gets on success: its spin budget, kind and serial. */
static void shmk__region_ready(struct shmk__region *r,
			       const struct shmk__kind *k,
			       const struct shmk_opts *o)
{
	r->spin_ns = shmk__spin_ns(o);
	r->kind = k;
	r->serial = atomic_fetch_add_explicit(&next_serial, 1,
					      memory_order_relaxed) +
		    1;
}

/* The entry points. */
int shmk__region_create(struct shmk__region *r, const char *name,
			const struct shmk__kind *k,
			const uint64_t geom[SHMK__GEOM_N],
			const struct shmk_opts *o,
			void (*init)(struct shmk__region *r))
{
	int rc = region_create(r, name, k, geom, o, init);

	if (!rc)
		shmk__region_ready(r, k, o);
	return rc;
}

int shmk__region_open(struct shmk__region *r, const char *name,
		      const struct shmk__kind *k, const struct shmk_opts *o)
{
	int rc = region_open(r, name, k, o);

	if (!rc)
		shmk__region_ready(r, k, o);
	return rc;
}

int shmk__region_open_fd(struct shmk__region *r, int fd,
			 const struct shmk__kind *k, const struct shmk_opts *o)
{
	int rc = region_open_fd(r, fd, k, o);

	if (!rc)
		shmk__region_ready(r, k, o);
	return rc;
}

/* ---------------------------------------------------------------------
 * Close, shutdown, sharing
 * --------------------------------------------------------------------- */

void shmk__region_shutdown(struct shmk__region *r)
{
	/* seq_cst (a release would pair with peers' acquire loads of
	 * state): also the publication the kind's wake-ups need. */
	atomic_store_explicit(&r->hdr->state, SHMK_STATE_SHUTDOWN,
			      memory_order_seq_cst);
	atomic_fetch_add_explicit(&r->hdr->state_seq, 1, memory_order_seq_cst);
	if (r->kind && r->kind->shutdown)
		r->kind->shutdown(r);
}

void shmk__region_close(struct shmk__region *r)
{
	if (r->hdr && !r->forked) {
		/* The header's flags are the creator's own, never changed. */
		if (r->creator && !(r->hflags & SHMK__HF_KEEP))
			shmk__region_shutdown(r);
		if (r->slot >= 0) {
			atomic_fetch_and_explicit(&r->hdr->part[r->slot].flags,
						  ~SHMK__PART_ATTACHED,
						  memory_order_relaxed);
			atomic_store_explicit(&r->hdr->part[r->slot].wake, 0,
					      memory_order_relaxed);
		}
	}
	if (r->poll_fd >= 0)
		close(r->poll_fd);
	if (r->send_fd >= 0)
		close(r->send_fd);
	shmk__reg_remove_close(r);
	if (r->hdr)
		munmap(r->hdr, r->size);
	/* In a forked child the descriptor handed out is the child's own
	 * copy, which it may be about to open: it stays open. */
	if (r->share_fd >= 0 && !r->forked)
		close(r->share_fd); /* holds no token: no hurry */
	shmk__region_reset(r);
}

int shmk__region_share_fd(struct shmk__region *r)
{
	int rc;

	rc = shmk__region_check(r);
	if (rc < 0)
		return rc;
	shmk__reg_enter();
	if (r->share_fd < 0) {
		/* A description of its own that holds no lock, so a peer
		 * that receives it never keeps our token alive. */
		rc = shmk__reopen(r->fd);
		if (rc >= 0)
			r->share_fd = rc;
	}
	rc = r->share_fd >= 0 ? r->share_fd : rc;
	shmk__reg_leave();
	return rc;
}

void shmk__region_unshare(struct shmk__region *r)
{
	shmk__reg_enter();
	if (r->share_fd >= 0 && !r->forked)
		close(r->share_fd);
	r->share_fd = -1;
	shmk__reg_leave();
}

/* ---------------------------------------------------------------------
 * Unlink
 * --------------------------------------------------------------------- */

int shmk__region_unlink(const struct shmk__region *r, const char *name)
{
	char path[SHMK__PATH_MAX];
	struct stat own, now;
	int rc;

	if (r->forked || r->fd < 0)
		return 0; /* a child's copy: the name is not its to remove */
	rc = shmk__name_path(name, path, sizeof(path));
	if (rc < 0)
		return rc;
	if (fstat(r->fd, &own) < 0 ||
	    fstatat(AT_FDCWD, path, &now, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	/* The file is ours whatever its bytes say (a peer may have
	 * scribbled on the magic); a name that now holds another file is
	 * not ours to remove. */
	if (now.st_ino != own.st_ino || now.st_dev != own.st_dev)
		return -ENOENT;
	return unlink(path) < 0 ? -errno : 0;
}

/*
 * Removes name's file: a regular file that starts like a shmk object, or
 * with force any regular file of the caller's (root: of anyone), so that
 * an object whose header was scribbled over can still be cleaned away.
 */
static int unlink_name(const char *name, int force)
{
	char path[SHMK__PATH_MAX];
	struct stat st, now;
	uint32_t magic;
	ssize_t n;
	int fd, rc;

	rc = shmk__name_path(name, path, sizeof(path));
	if (rc < 0)
		return rc;
	fd = open(path, O_RDONLY | OPEN_EXISTING);
	/* A file we may not read can still be ours to remove. */
	if (fd < 0 && errno == EACCES && force &&
	    fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) && st.st_uid == geteuid())
		return unlink(path) < 0 ? -errno : 0;
	if (fd < 0)
		return shmk__open_errno(errno);
	if (fstat(fd, &st) < 0) {
		rc = -errno;
	} else if (!S_ISREG(st.st_mode)) {
		rc = -EPROTO;
	} else if (force) {
		rc = st.st_uid == geteuid() || geteuid() == 0 ? 0 : -EPERM;
	} else {
		n = shmk__pread(fd, &magic, sizeof(magic), 0);
		rc = n == (ssize_t)sizeof(magic) && magic == SHMK__MAGIC
			     ? 0
			     : -EPROTO;
	}
	close(fd);
	/* Narrows, but cannot close, the window in which someone who may
	 * write the directory swaps the name for another file. */
	if (!rc && fstatat(AT_FDCWD, path, &now, AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	if (!rc && (now.st_ino != st.st_ino || now.st_dev != st.st_dev))
		rc = -EAGAIN;
	if (!rc && unlink(path) < 0)
		rc = -errno;
	return rc;
}

SHMK__EXPORT int shmk_unlink(const char *name)
{
	return unlink_name(name, 0);
}

SHMK__EXPORT int shmk_unlink_force(const char *name)
{
	return unlink_name(name, 1);
}
