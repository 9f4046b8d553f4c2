/* SPDX-License-Identifier: MIT */
/*
 * guard.c - the SIGBUS guard of named regions.  A peer allowed to write a
 * named object's file can ftruncate() it shorter; every page past the new
 * end then raises SIGBUS in each process that has it mapped.  The guard
 * turns that death into an error: its handler replaces the mapping from
 * the new end on with private zero pages, marks the region poisoned, and
 * returns, so the faulting access retries and reads zeros.  Faults outside
 * our mappings go to the handler that was installed before ours.
 * docs/design.md ("The SIGBUS guard") explains the choices.
 *
 * Part of the region layer; it calls only the system.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "region.h"

/*
 * The registry the handler reads: chunks of slots, linked, never freed, so
 * the handler can walk them at any moment without a lock and never touches
 * a region struct (which the application frees after close).  Writers are
 * serialised by the caller (the registry lock of src/region/registry.c).
 */
#define CHUNK_SLOTS 64

struct chunk {
	struct shmk__guard_slot slot[CHUNK_SLOTS];
	/* Release store by the writer that links a new chunk; acquire load
	 * by the handler's walk: the new chunk's zeroed slots are seen. */
	_Atomic(struct chunk *) next;
};

static struct chunk first_chunk;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_rc;	      /* 0, or -errno: written once, under the once */
static struct sigaction prev; /* the action ours replaced */
static uintptr_t page_size;

/*
 * Replaces the part of slot s's mapping that the file no longer backs
 * with private zero pages: from the page after the file's new end, or
 * from the faulting page if that comes first (the size may have grown back
 * since the fault: the retry must not fault again), or all of it if the
 * header itself is gone or the size cannot be learnt.  Nothing read from
 * the mapping is used: the size comes from fstat, the bounds from our own
 * record.  Returns 1 if the mapping was repaired.
 */
static int repair(struct shmk__guard_slot *s, uintptr_t start, uintptr_t len,
		  uintptr_t addr)
{
	uintptr_t keep = 0, fault, end;
	struct stat st;
	void *p;
	int fd;

	end = (len + page_size - 1) & ~(page_size - 1);
	fault = (addr - start) & ~(page_size - 1);
	fd = atomic_load_explicit(&s->fd, memory_order_relaxed);
	if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size >= SHMK__HDR_SIZE) {
		/* The page holding the new end is still the file's: a read
		 * there past the end sees zeros, it never faults. */
		keep = (uint64_t)st.st_size >= end
			       ? end
			       : ((uintptr_t)st.st_size + page_size - 1) &
					 ~(page_size - 1);
	}
	/* Never past the faulting page: the retry must find memory. */
	if (keep > fault)
		keep = fault;
	p = mmap((void *)(start + keep), end - keep, PROT_READ | PROT_WRITE,
		 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 0;
	/* Relaxed: the flag publishes nothing; a call that misses it reads
	 * private zeros, which the kinds check like any shared bytes. */
	atomic_store_explicit(&s->poisoned, 1, memory_order_relaxed);
	return 1;
}

/* Finds the live slot whose mapping holds addr and repairs it. */
static int ours(uintptr_t addr)
{
	struct chunk *c;
	int i;

	for (c = &first_chunk; c;
	     c = atomic_load_explicit(&c->next, memory_order_acquire)) {
		for (i = 0; i < CHUNK_SLOTS; i++) {
			struct shmk__guard_slot *s = &c->slot[i];
			uintptr_t start, len;

			/* Acquire: pairs with the release store of live in
			 * shmk__guard_add(): start, len and fd are the
			 * mapping's. */
			if (!atomic_load_explicit(&s->live,
						  memory_order_acquire))
				continue;
			start = atomic_load_explicit(&s->start,
						     memory_order_relaxed);
			len = atomic_load_explicit(&s->len,
						   memory_order_relaxed);
			if (addr - start >= len)
				continue;
			return repair(s, start, len, addr);
		}
	}
	return 0;
}

/* Hands a fault that is not ours to the action that was there before. */
static void chain(int sig, siginfo_t *si, void *uc)
{
	struct sigaction dfl = {0};

	if (prev.sa_flags & SA_SIGINFO) {
		if (prev.sa_sigaction) {
			prev.sa_sigaction(sig, si, uc);
			return;
		}
	} else if (prev.sa_handler == SIG_IGN) {
		/* A hardware fault cannot be ignored (the kernel kills);
		 * only a signal sent with kill() is, as before us. */
		if (si && si->si_code <= 0)
			return;
	} else if (prev.sa_handler != SIG_DFL) {
		prev.sa_handler(sig);
		return;
	}
	/* The default action: restore it; a fault re-raises itself when
	 * the access retries, a sent signal is raised again (it is blocked
	 * until we return). */
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	if (!si || si->si_code <= 0)
		raise(sig);
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;

	if (!si || si->si_code != BUS_ADRERR || !ours((uintptr_t)si->si_addr))
		chain(sig, si, uc);
	errno = saved;
}

static void install(void)
{
	struct sigaction sa = {0};
	long ps = sysconf(_SC_PAGESIZE);

	page_size = ps > 0 ? (uintptr_t)ps : 4096;
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &prev) < 0)
		install_rc = -errno;
}

int shmk__guard_add(struct shmk__region *r, int fd)
{
	struct shmk__guard_slot *s = NULL;
	struct chunk *c, *last = NULL;
	int i;

	pthread_once(&install_once, install);
	if (install_rc < 0)
		return install_rc;
	for (c = &first_chunk; c && !s;
	     c = atomic_load_explicit(&c->next, memory_order_acquire)) {
		last = c;
		for (i = 0; i < CHUNK_SLOTS && !s; i++)
			if (!c->slot[i].owned)
				s = &c->slot[i];
	}
	if (!s) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -ENOMEM;
		/* Release: pairs with the handler's acquire of next. */
		atomic_store_explicit(&last->next, c, memory_order_release);
		s = &c->slot[0];
	}
	s->owned = 1;
	atomic_store_explicit(&s->start, (uintptr_t)r->hdr,
			      memory_order_relaxed);
	atomic_store_explicit(&s->len, (uintptr_t)r->size,
			      memory_order_relaxed);
	atomic_store_explicit(&s->fd, fd, memory_order_relaxed);
	atomic_store_explicit(&s->poisoned, 0, memory_order_relaxed);
	/* Release: pairs with the handler's acquire load of live. */
	atomic_store_explicit(&s->live, 1, memory_order_release);
	r->guard = s;
	return 0;
}

void shmk__guard_remove(struct shmk__region *r)
{
	struct shmk__guard_slot *s = r->guard;

	if (!s)
		return;
	/* seq_cst, and before the munmap that follows: once the range can
	 * be mapped again by anyone, a fault there is no longer ours. */
	atomic_store_explicit(&s->live, 0, memory_order_seq_cst);
	s->owned = 0;
	r->guard = NULL;
}

void shmk__guard_forked(struct shmk__region *r)
{
	/* The child closed the descriptor; its number may be reused for
	 * another file, whose size must not be taken for ours. */
	if (r->guard)
		atomic_store_explicit(&r->guard->fd, -1, memory_order_relaxed);
}
