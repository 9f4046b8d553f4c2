/* SPDX-License-Identifier: MIT */
/*
 * region/registry.c - the process's registry of open handles and its
 * fork() handlers, and what must happen under its lock: a new description
 * of a backing (shmk__reopen) and the mapping of a region
 * (shmk__map_region).
 *
 * Layer: the bottom of region, with check.c.  Calls guard.c; nothing of
 * the other files of src/region/.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "region.h"

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

void shmk__reg_enter(void)
{
	pthread_once(&reg_once, reg_init);
	pthread_mutex_lock(&reg_lock);
}

void shmk__reg_leave(void)
{
	pthread_mutex_unlock(&reg_lock);
}

/* With reg_lock held: r now owns fd and is in the registry. */
void shmk__reg_insert(struct shmk__region *r, int fd)
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
void shmk__reg_remove_close(struct shmk__region *r)
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
int shmk__reopen(int fd)
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
int shmk__map_region(struct shmk__region *r, uint64_t len, int guard)
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
