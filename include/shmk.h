/* SPDX-License-Identifier: MIT */
/*
 * shmk.h - shared-memory IPC for C on Linux.
 *
 * shmk moves data between processes on one machine through shared memory:
 * named objects that describe themselves (a peer opens them by name alone),
 * robust against peers that crash and against peers that scribble on the
 * shared bytes.  The objects: shmk_buffer (bytes at offsets) and
 * shmk_array (fixed-size elements), both behind a robust read/write lock;
 * shmk_event (auto- or manual-reset); shmk_ring (a FIFO of nodes, many
 * writers, many readers, zero-copy); shmk_rpc (request/response, a channel
 * per client, handlers on worker threads).  This header is the whole
 * public API and its manual; `man 3 shmk` is an overview of it.
 * shmk needs Linux 3.17 or later with /proc mounted (handles reopen their
 * files through /proc/self/fd; without it calls fail with -ENOTSUP).
 *
 * A two-process example (error checks left out for brevity):
 *
 *	// producer
 *	struct shmk_buffer *b;
 *	int v = 123;
 *	shmk_buffer_create("frames", 1024, NULL, &b);
 *	shmk_buffer_write(b, 0, &v, sizeof(v), -1);
 *
 *	// consumer, in another process: the size comes from the region itself
 *	struct shmk_opts o = { .wait_ms = 5000 };   // wait for the producer
 *	struct shmk_buffer *b;
 *	int v;
 *	shmk_buffer_open("frames", &o, &b);
 *	shmk_buffer_read(b, 0, &v, sizeof(v), -1);  // v == 123
 *	shmk_buffer_close(b);
 *
 * Conventions (every object follows them):
 *  - Every fallible call returns int (ssize_t for lengths): >= 0 on success,
 *    a negative errno on failure.  errno is never used to report errors, the
 *    library never prints and never aborts.  shmk_strerror() names a code.
 *  - Objects come out through out-parameters; *_close(NULL) is a no-op and
 *    close never removes the name: shmk_unlink() does.
 *  - Names: "frames" (letters, digits, '.', '_', '-'; 1..200 characters,
 *    not "." or "..") is a non-persisted object, the file /dev/shm/
 *    shmk.frames; a bad name is -EINVAL, a longer one -ENAMETOOLONG.  A
 *    name containing '/' is a file path (relative to the working directory
 *    unless it starts with '/'): the persisted kind, which survives a
 *    reboot.  NULL creates an anonymous object (a
 *    sealed memfd) shared by handing its descriptor to another process
 *    (shmk_send_fd(), shmk_recv_fd(), shmk_buffer_open_fd()).
 *  - Timeouts are int milliseconds: -1 waits forever, 0 tries once and fails
 *    with -EAGAIN if it would block, > 0 is a deadline on CLOCK_MONOTONIC
 *    computed once at entry; -ETIMEDOUT means the whole timeout was waited.
 *    Signals and spurious wake-ups neither shorten nor stretch a wait.
 *  - Fixed error meanings: -ECANCELED (a blocking call ended by the
 *    handle's *_wake()), -EEXIST (create: name taken), -ENOENT (open: no
 *    such object), -EINVAL (bad argument), -ERANGE (offset or index past the
 *    end), -EMSGSIZE (nothing is ever truncated silently), -EPIPE (the
 *    creator shut the object down), -EPROTO (not a shmk object of this kind,
 *    version or geometry), -EBADMSG (corrupt shared data, or the object's
 *    file shrunk under us: see "SIGBUS guard"), -ENOSPC (no room for the
 *    object), -EACCES (the object's owner or mode is not trusted),
 *    -EUSERS (128 handles already attached), -ECHILD (a handle used in
 *    a child after fork(); see below).
 *  - Handles and fork(): a handle belongs to the process that opened it.  In
 *    a child created by fork() every call on an inherited handle fails with
 *    -ECHILD (shmk_buffer_data() returns NULL), except close, which only
 *    frees the child's copy.  The child opens the object again by name, or,
 *    for an anonymous object, by the descriptor shmk_buffer_fd() gave the
 *    parent before the fork (the child's copy of that descriptor is the
 *    child's: closing the inherited handle leaves it open).  (Children
 *    made with a raw clone() system call rather than fork() are not seen
 *    and must not use the handles.)
 *  - Trust: who may do what to whom.
 *    * An object's trust boundary is the set of processes that may write
 *      its file: its participants.  shmk never lets anyone read an
 *      object without being able to write it (a reader could take the
 *      file's locks and keep others from its participant slots): create
 *      refuses modes such as 0644, 0640 or 0604 with -EINVAL, and open
 *      refuses a file whose mode says so with -EACCES.  Give others
 *      access with 0660 or 0666 and SHMK_F_ALLOW_SHARED, or not at all.
 *    * A participant can break that object (scribble on it, shrink its
 *      file, hold its locks while it lives): the others' calls on it then
 *      fail with -EBADMSG, -EPROTO or an expiry (or, as its own words
 *      are trusted for whose lock is whose, a lock can be handed on
 *      wrongly).  It can never crash an honest process, make it read or
 *      write outside the object, or touch any other object.  A process
 *      outside the boundary can do nothing to it: liveness is the
 *      kernel's, an OFD write lock per participant, which only a writer
 *      can take and a death drops (no pid, so no pid reuse).
 *    * rpc: a client never maps its server's object (it only reads its
 *      header, which others may read but not write) and gets its channel
 *      as two sealed anonymous rings over a UNIX socket; the server knows
 *      it only by the kernel's word (SO_PEERCRED, a pidfd), may restrict
 *      clients by uid and gid (struct shmk_rpc_opts), refuses one that
 *      lies about its pid, and bounds each client's channels and pending
 *      connects.  A client can at most break its own channel.
 *    * The owner of a name can always remove it, whatever its bytes say
 *      (shmk_unlink_force, `shmk rm --force`).
 *    An object is opened only if it is a regular file owned by the
 *    caller's effective uid and not writable by group or others (unless
 *    SHMK_F_ALLOW_SHARED), or sealed against shrinking (an anonymous
 *    object received from any process).  Anonymous objects are sealed so
 *    that nobody can shrink them.  A named object (and an object opened
 *    by a descriptor that is not sealed) can be shrunk by any process
 *    allowed to write its file; touching memory past the new end would
 *    raise SIGBUS.  So shmk guards those mappings:
 *  - SIGBUS guard: THE FIRST TIME A NAMED OBJECT IS MAPPED, shmk INSTALLS
 *    A PROCESS-WIDE SIGBUS HANDLER (sigaction, SA_SIGINFO | SA_ONSTACK |
 *    SA_RESTART), keeping the action that was there.  A fault inside a
 *    shmk mapping whose file was shrunk replaces the mapping from the new
 *    end with private zero pages and returns: the access reads zeros (a
 *    store is lost), and the handle is poisoned: every later call on it
 *    returns -EBADMSG ("the object's file was shrunk under us; close the
 *    handle"), a call blocked in a wait returns -EBADMSG within ~10 ms of
 *    its next look at the memory, a copy that met the cut returns -EBADMSG
 *    (its bytes may be zeros), shmk_*_data() returns NULL, an unlock
 *    releases the lock all the same (the data is marked torn) and
 *    returns -EBADMSG.  Close works and releases what it can; pointers handed out earlier
 *    (shmk_buffer_data, a ring node) stay mapped until close and never
 *    fault.  Only a fault that touches the memory finds out: a process
 *    that never touches the cut part is not told.  Any other SIGBUS goes
 *    to the previous action (its handler is called; the default action
 *    still kills).  AN APPLICATION THAT INSTALLS ITS OWN SIGBUS HANDLER
 *    AFTER ITS FIRST NAMED OBJECT MUST CHAIN TO THE PREVIOUS ONE (the
 *    oldact its sigaction() returned) FOR FAULTS THAT ARE NOT ITS OWN, or
 *    the guard is lost and a shrunk file kills the process again.  One
 *    installed before the first named object needs nothing: shmk chains
 *    to it.  Still, share named objects only with processes you trust:
 *    a peer that can shrink the file can also scribble on it.
 *  - Shared memory is untrusted: every length, offset and index read from a
 *    region is validated before use; a corrupt region gives -EBADMSG or
 *    -EPROTO, never an out-of-bounds access.
 */
#ifndef SHMK_H
#define SHMK_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHMK_VERSION_MAJOR  0
#define SHMK_VERSION_MINOR  1
#define SHMK_VERSION_PATCH  0
#define SHMK_VERSION_STRING "0.1.0"

/* ======================================================================
 * Options and common calls
 * ====================================================================== */

/* Flags for shmk_opts.flags. */
enum {
	/*
	 * create: if the name exists, open it instead (the existing object
	 * must have the same kind and geometry, else -EPROTO).
	 */
	SHMK_F_OPEN_OR_CREATE = 1u << 0,
	/*
	 * open: trust an object owned by another user or writable by group or
	 * others.  Without it such an object is refused with -EACCES before
	 * it is mapped.  Only for peers you trust: a process that can write
	 * the backing file can also shrink it, which poisons every handle
	 * that touches the cut part (-EBADMSG; shmk's SIGBUS guard, see
	 * "Trust" above), or scribble on it (-EBADMSG, -EPROTO).
	 */
	SHMK_F_ALLOW_SHARED = 1u << 1,
	/*
	 * create: the object outlives its creator's handle.  The creator's
	 * close does not shut it down; it stays usable until its name is
	 * removed (shmk_unlink, `shmk rm`), and `shmk gc` leaves it alone.
	 * For objects a script or a service manager sets up (`shmk create`)
	 * for other programs to use.
	 */
	SHMK_F_KEEP = 1u << 2,
	/*
	 * shmk_ring_create: a single-writer (single-reader) ring.  One handle
	 * at a time writes (reads): the first to write (read) takes the role;
	 * another handle, in this process or another, gets -EBUSY until the
	 * holder closes or dies (the next one to try then takes the role
	 * over).  The holder's writes (reads) run one at a time, from one
	 * thread at a time (a reservation never committed or aborted stops
	 * all writing until the handle closes), and take no locked
	 * instruction per message, which helps small messages most
	 * (docs/benchmarks.md has the measured figures).  The mode is part
	 * of the ring: openers learn it, shmk_stat() gives it in flags.
	 */
	SHMK_F_SINGLE_WRITER = 1u << 3,
	SHMK_F_SINGLE_READER = 1u << 4,
	/*
	 * shmk_topic_create: overwrite the oldest messages rather than wait
	 * for slow subscribers (see shmk_topic).  Part of the topic: openers
	 * learn it, shmk_stat() gives it in flags.
	 */
	SHMK_F_LOSSY = 1u << 5,
};

/*
 * Options taken by every create and open call.  NULL or all-zero means the
 * defaults.  Zero-initialise the struct and set what you need: fields may
 * be added at the end in later versions.
 */
struct shmk_opts {
	/* create: permission bits (0600 at least, 0777 at most), exactly as
	 * given whatever the umask; 0 means 0600 (0666 for an anonymous
	 * object, which only a descriptor leads to, so that a process of
	 * another user that receives it can open it; 0600 keeps it to
	 * processes of the creator's user) */
	unsigned mode;
	/* open: how long to wait for the object to appear, in ms (0: do not
	 * wait, -1: forever) */
	int wait_ms;
	unsigned flags; /* SHMK_F_* */
	/* Blocking calls spin this many microseconds before they sleep:
	 * 0 means the default (50), < 0 never spin.  Spinning buys wake-up
	 * latency (a sleeping peer takes tens of microseconds to wake) with
	 * CPU time. */
	int spin_us;
};

/* Lock modes for shmk_buffer_lock() and shmk_array_lock(). */
enum {
	SHMK_LOCK_READ = 1,  /* shared: many readers at once */
	SHMK_LOCK_WRITE = 2, /* exclusive: one writer, no reader */
};

/*
 * shmk_strerror - a short English description of an error code.
 * Accepts the negative codes shmk returns (and positive errno values).
 * Returns a static string; never NULL.  Thread-safe.
 */
const char *shmk_strerror(int err);

/*
 * shmk_unlink - remove the name of an object.
 * Processes that have it open keep using it; the memory goes away when the
 * last one closes.  Only names that hold a shmk object are removed.
 * Returns 0, -ENOENT if there is no such object, -EINVAL for a bad name,
 * -EPROTO if the name holds something that is not a shmk object, or another
 * negative errno from the system.  Thread-safe.
 */
int shmk_unlink(const char *name);

/*
 * shmk_unlink_force - remove the name whatever the file behind it holds,
 * so that its owner can clean away (and then create again) an object
 * whose header was overwritten: removes any regular file at the name
 * that belongs to the caller's effective uid (root: to anyone), never a
 * directory, FIFO, socket or symlink's target.  `shmk rm --force`.
 * Returns 0, -ENOENT, -EINVAL for a bad name, -EPROTO if the name holds
 * no regular file, -EPERM if the file is another user's, or another
 * negative errno from the system.  Thread-safe.
 */
int shmk_unlink_force(const char *name);

/*
 * shmk_path - the path of the file behind a name, as create and open
 * resolve it: "/dev/shm/shmk.<name>" for a plain name, the name itself
 * for a file path (a name containing '/').  Whether an object exists
 * there is not looked at.  Writes the path and its terminating NUL to buf,
 * never a part of it: on failure buf holds "" (if cap > 0).
 * Returns 0 on success, -EINVAL for a bad name (or NULL buf with cap > 0),
 * -ENAMETOOLONG if the name is too long, -ERANGE if the path and its NUL
 * need more than cap bytes.  Thread-safe.
 */
int shmk_path(const char *name, char *buf, size_t cap);

/*
 * shmk_list - call fn(name, arg) for each named object of /dev/shm: each
 * regular file "shmk.<name>" there whose <name> is a valid plain name
 * (what `shmk ls` lists).  The name passed is valid only during the
 * call.  Persisted objects (file paths) and anonymous objects are not
 * listed, nor are non-regular files; a listed file need not hold a shmk
 * object (shmk_stat() says).  The order is unspecified (the directory's).
 * Objects may be created and removed meanwhile, fn included: one created
 * or removed during the walk may or may not be seen, a name seen may be
 * gone by the time it is used, and one removed and created again may be
 * given twice.  A non-zero return from fn stops the walk.
 * Returns 0 once every name was given, fn's non-zero value if it stopped
 * the walk, -EINVAL for a NULL fn, or the negative errno of opening or
 * reading the directory.  Thread-safe (fn is called in the caller's thread).
 */
int shmk_list(int (*fn)(const char *name, void *arg), void *arg);

/*
 * Waiting in an event loop, and waking a blocked call.
 *
 * Descriptors: shmk_ring_pollfd(), shmk_topic_pollfd(), shmk_event_pollfd(),
 * shmk_buffer_pollfd() and shmk_array_pollfd() (for RPC endpoints:
 * shmk_rpc_pollfd(), under shmk_rpc) return a descriptor for epoll, poll,
 * select or io_uring.  It becomes readable (POLLIN) when a call of the
 * same handle that returned -EAGAIN (timeout 0) may now make progress: a
 * message or a free node arrived, the event was set, the buffer or array
 * changed, the object was shut down.  The loop:
 *
 *	int fd = shmk_ring_pollfd(r);		// once; the handle owns it
 *	// add fd to epoll (level- or edge-triggered: both work)
 *	for (;;) {
 *		epoll_wait(ep, ...);		// fd readable
 *		while ((n = shmk_ring_read(r, buf, sizeof(buf), 0)) >= 0)
 *			handle(buf, n);
 *		// -EAGAIN: drained, and fd armed again
 *	}
 *
 * The call that returns -EAGAIN arms the descriptor before its last look,
 * so nothing is missed: whatever happens after that look makes the
 * descriptor readable, and it stays readable until a call of the handle
 * next returns -EAGAIN (which empties it).  Readable is a hint: the next
 * call may still find nothing (another thread or process took it; a
 * spurious wake-up: anyone on the machine can send one, nobody can do
 * more).  Until a handle asks for its descriptor nothing changes; after,
 * each -EAGAIN costs a few system calls, and a notify costs one system
 * call per handle armed on what it changed (none when nobody is armed:
 * the fast path stays free of system calls).  Once a descriptor has been
 * armed on a ring or topic, every notify of it also pays one fence (a
 * few nanoseconds) for good: the price of an arming without a barrier on
 * every CPU (docs/design.md).  A message stuck behind a
 * peer that died in the middle of writing it is found at the next call
 * (within 10 ms for blocking calls): a loop that must notice that while
 * idle calls again every few ms.  The descriptor is a UNIX datagram
 * socket bound to an abstract name (docs/design.md says why); it is
 * closed by the handle's close.  Returns the descriptor, or -EINVAL,
 * -ECHILD, -EMFILE and what socket(2) or bind(2) fail with.
 *
 * Waking: shmk_ring_wake() (and _topic_, _event_, _buffer_, _array_;
 * shmk_rpc_wake() under shmk_rpc)
 * makes every call of the handle that is waiting (blocked, spinning,
 * about to sleep) return -ECANCELED, without shutting anything down.  If
 * none is waiting, the next call of the handle that would wait returns
 * -ECANCELED instead, so that a wake is never lost, whenever it comes
 * (a SIGINT handler that calls it ends a `read` the program is about to
 * make, or is making).  Calls that need not wait (they succeed at once,
 * or have timeout 0) are not affected; once a wake has been answered,
 * calls wait as usual.  Async-signal-safe.  Returns 0, -EINVAL, -ECHILD.
 */

/*
 * shmk_send_fd - send a descriptor (of an anonymous object, say) over a
 * connected UNIX socket.  shmk_recv_fd - receive one; the new descriptor
 * is close-on-exec and owned by the caller.  Both retry on EINTR.
 * Returns 0 (send) or the descriptor (recv); -EPIPE if the peer closed the
 * socket, -EBADMSG if a message arrived without exactly one descriptor, or
 * another negative errno.  Thread-safe.
 */
int shmk_send_fd(int sock, int fd);
int shmk_recv_fd(int sock);

/* ======================================================================
 * shmk_buffer - raw bytes at offsets, shared between processes
 * ====================================================================== */

struct shmk_buffer;

/*
 * shmk_buffer_create - create a buffer of size bytes (all zero).
 * name as described at the top (NULL: anonymous).  The space is reserved at
 * once, so a full /dev/shm or disk gives -ENOSPC here rather than a crash
 * later.  The handle that created the buffer is its creator: closing it
 * marks the buffer shut down.
 * Returns 0 and *out, -EEXIST if the name is taken (unless
 * SHMK_F_OPEN_OR_CREATE), -EINVAL for a bad name, size 0 or bad options,
 * -ENOSPC, -EACCES, or another negative errno.  Thread-safe.
 */
int shmk_buffer_create(const char *name, size_t size, const struct shmk_opts *o,
		       struct shmk_buffer **out);

/*
 * shmk_buffer_open - open an existing buffer by name; the size is read
 * from the buffer itself.  With o->wait_ms, waits for a creator that has not
 * created it yet.  An object appears under its name only once it is
 * complete, so an open never sees a half-made one.
 * Returns 0 and *out, -ENOENT if there is no such object (after waiting),
 * -ETIMEDOUT (-EAGAIN without waiting) if it never became ready,
 * -EPROTO if it is not a shmk buffer (another kind, another format version,
 * or not a regular file), -EBADMSG if its header is inconsistent (its size
 * field disagrees with the file, a truncated header, ...), -EACCES if it
 * belongs to another user, is writable by others (see SHMK_F_ALLOW_SHARED)
 * or is a symbolic link, -EUSERS, or another negative errno.  Thread-safe.
 */
int shmk_buffer_open(const char *name, const struct shmk_opts *o,
		     struct shmk_buffer **out);

/*
 * shmk_buffer_open_fd - open a buffer from a descriptor, typically of an
 * anonymous buffer received with shmk_recv_fd().  The caller keeps fd (the
 * handle opens its own description of the same memory).  A sealed
 * (anonymous) buffer is accepted from anyone; any other file must pass the
 * trust rule of a named open.
 * Returns as shmk_buffer_open(), -EBADF for a bad descriptor, -EPROTO if
 * it is not a regular file.
 * Thread-safe.
 */
int shmk_buffer_open_fd(int fd, const struct shmk_opts *o,
			struct shmk_buffer **out);

/*
 * shmk_buffer_fd - a descriptor of the buffer to hand to another process
 * (shmk_send_fd(), or inheritance by a child of fork()).  It is a
 * description of its own, distinct from the one behind the handle, so a
 * receiver never shares this handle's liveness.  Close-on-exec; owned by
 * the handle and closed with it: do not close it.  Uses /proc/self/fd.
 * Returns the descriptor, -ECHILD, or another negative errno.
 * Thread-safe.
 */
int shmk_buffer_fd(struct shmk_buffer *b);

/*
 * shmk_buffer_close - unmap and free the handle.  If the handle is the
 * creator's, the buffer is marked shut down first (unless it was created
 * with SHMK_F_KEEP).  Never removes the name.
 * NULL is a no-op.  Returns 0.  Not to be called while another thread still
 * uses the handle.
 */
int shmk_buffer_close(struct shmk_buffer *b);

/* shmk_buffer_size - the usable size in bytes.  Thread-safe. */
size_t shmk_buffer_size(const struct shmk_buffer *b);

/*
 * shmk_buffer_data - a pointer to the first usable byte, for zero-copy
 * access.  The memory is shared with other processes: what you read from it
 * may change under you unless you coordinate.
 */
void *shmk_buffer_data(struct shmk_buffer *b);

/*
 * shmk_buffer_write - copy len bytes from src to offset off.
 * shmk_buffer_read - copy len bytes at offset off to dst.
 * A range that does not lie wholly inside the buffer fails with -ERANGE and
 * copies nothing.  The copy is made under the buffer's lock (write or
 * read), taken for the copy and waited for at most timeout_ms, unless the
 * calling thread already holds it through this handle (shmk_buffer_lock):
 * lock, several reads or writes, unlock is one consistent transaction.
 * Each write with len > 0 bumps the buffer's version: after the copy and
 * before the lock is released (a seq_cst increment), and wakes
 * shmk_buffer_wait(); whoever sees the new version sees the data it
 * counts once it takes the lock.
 * Returns 0, -EOWNERDEAD (the copy was made, but a writer died holding the
 * lock earlier and the data may be half-written: see shmk_buffer_lock),
 * -ERANGE, -EINVAL (NULL pointer with len > 0, timeout below -1),
 * -ETIMEDOUT / -EAGAIN (the lock was not free in time), -EDEADLK (write
 * while this thread holds only the read lock), -ECHILD, -EBADMSG.
 * Thread-safe.
 */
int shmk_buffer_write(struct shmk_buffer *b, size_t off, const void *src,
		      size_t len, int timeout_ms);
int shmk_buffer_read(struct shmk_buffer *b, size_t off, void *dst, size_t len,
		     int timeout_ms);

/*
 * shmk_buffer_lock - take the buffer's read/write lock across processes:
 * many readers at once (SHMK_LOCK_READ) or one writer (SHMK_LOCK_WRITE).
 * A waiting writer goes before readers that come after it, so readers
 * cannot starve writers.  Taking and releasing a free lock makes no system
 * call.  The lock belongs to the calling thread and this handle; the same
 * thread may then read and write through the handle, and use
 * shmk_buffer_data(), until shmk_buffer_unlock().
 *
 * A holder that dies is noticed by the kernel: the next locker takes the
 * lock within 10 ms of the death (docs/design.md, T_live), a stopped
 * (SIGSTOP) holder is never taken for dead.  Dead readers' holds are
 * simply released.  A writer that died while holding the lock may have
 * left the data half-written: whoever takes the lock after it, reader or
 * writer, gets -EOWNERDEAD (and holds the lock), and so does every locker
 * after that until a writer that holds the lock through shmk_buffer_lock()
 * unlocks it.  So: on -EOWNERDEAD a reader knows the data may be torn; a
 * writer repairs or rewrites it, and its unlock declares it consistent.
 *
 * A waiting locker looks at the holder's liveness even with timeout 0, so
 * a caller that only ever tries still recovers a dead holder's lock.
 *
 * Returns 0, -EOWNERDEAD (held; see above), -ETIMEDOUT / -EAGAIN,
 * -EDEADLK (this thread already holds it through this handle; an upgrade
 * from read to write is not possible), -ENOLCK (this thread holds 16
 * shmk locks already), -EINVAL, -ECHILD, -EBADMSG (corrupt lock word).
 * A thread must not lock one object through two handles at once.  A
 * thread that exits holding a lock leaves it held while its process lives
 * (the handle is alive); close the handle, or unlock, first.  Closing a
 * handle releases what the calling thread holds through it; a write lock
 * released that way counts as a write abandoned half-way: the version is
 * bumped and the next lockers get -EOWNERDEAD.
 */
int shmk_buffer_lock(struct shmk_buffer *b, int how, int timeout_ms);

/*
 * shmk_buffer_unlock - release what the calling thread holds.  A write
 * lock's release bumps the version (the holder may have written through
 * shmk_buffer_data()) and clears the mark a dead writer left.
 * Returns 0, -EPERM if this thread holds no lock through the handle.
 */
int shmk_buffer_unlock(struct shmk_buffer *b);

/*
 * shmk_buffer_version - the number of writes so far (writes with len > 0
 * and write-lock releases), for change detection.  0 for NULL.
 * shmk_buffer_wait - wait until the version differs from *version, then
 * store the new version in *version.  Typical use:
 *
 *	uint64_t v = shmk_buffer_version(b);
 *	for (;;) {
 *		read what you need ...
 *		if (shmk_buffer_wait(b, &v, -1) < 0)
 *			break;
 *	}
 *
 * Returns 0, -ETIMEDOUT / -EAGAIN, -EPIPE (the creator shut the buffer
 * down and the version is unchanged), -EINVAL, -ECHILD.  Thread-safe.
 */
uint64_t shmk_buffer_version(const struct shmk_buffer *b);
int shmk_buffer_wait(struct shmk_buffer *b, uint64_t *version, int timeout_ms);

/* Event loops (shmk_buffer_wait, timeout 0) and waking (wait and lock):
 * see "Waiting in an event loop" above. */
int shmk_buffer_pollfd(struct shmk_buffer *b);
int shmk_buffer_wake(struct shmk_buffer *b);

/* ======================================================================
 * shmk_array - a fixed-length array of fixed-size elements
 * ====================================================================== */

struct shmk_array;

/*
 * shmk_array_create - create an array of length elements of elem_size
 * bytes each (all zero).  The rest is as shmk_buffer_create().
 * shmk_array_open - open an existing array by name.  elem_size is the
 * size the opener expects (sizeof its element type): an array made with
 * another element size is refused with -EPROTO.
 * shmk_array_open_fd, shmk_array_fd - as the buffer's.
 * Returns as the buffer's calls; -EINVAL for a zero size or length.
 */
int shmk_array_create(const char *name, size_t elem_size, size_t length,
		      const struct shmk_opts *o, struct shmk_array **out);
int shmk_array_open(const char *name, size_t elem_size,
		    const struct shmk_opts *o, struct shmk_array **out);
int shmk_array_open_fd(int fd, size_t elem_size, const struct shmk_opts *o,
		       struct shmk_array **out);
int shmk_array_fd(struct shmk_array *a);
/* shmk_array_close - as shmk_buffer_close(). */
int shmk_array_close(struct shmk_array *a);

/* The number of elements, and the size of one; 0 for NULL. */
size_t shmk_array_length(const struct shmk_array *a);
size_t shmk_array_elem_size(const struct shmk_array *a);

/*
 * shmk_array_get - copy element i to dst (elem_size bytes).
 * shmk_array_set - copy src into element i.
 * shmk_array_read - copy count elements from index first to dst.
 * shmk_array_write - copy count elements from src to index first.
 * Each copy is made under the array's lock, as the buffer's are (the
 * same code: an array is a buffer whose copies are whole elements), so no
 * element is ever seen half-written.  These calls take no timeout: the
 * wait for the lock has no deadline, as shmk_buffer_write() with
 * timeout_ms -1 (a dead holder is still recovered within T_live, and
 * shmk_array_wake() ends the wait with -ECANCELED); for a bounded wait,
 * take the lock with shmk_array_lock() first.  As a buffer write, each
 * write of count > 0, and each release of a write lock, is a new version
 * (the `writes` counter of shmk_stat, incremented seq_cst after the copy,
 * before the lock is released).  Out-of-range indices fail with -ERANGE
 * and copy nothing.
 * Returns 0, -EOWNERDEAD (copied; see shmk_buffer_lock), -ERANGE,
 * -EINVAL, -EDEADLK, -ECHILD, -ECANCELED, -EBADMSG.  Thread-safe.
 */
int shmk_array_get(struct shmk_array *a, size_t i, void *dst);
int shmk_array_set(struct shmk_array *a, size_t i, const void *src);
int shmk_array_read(struct shmk_array *a, size_t first, void *dst,
		    size_t count);
int shmk_array_write(struct shmk_array *a, size_t first, const void *src,
		     size_t count);

/* shmk_array_lock, shmk_array_unlock - as shmk_buffer_lock/unlock. */
int shmk_array_lock(struct shmk_array *a, int how, int timeout_ms);
int shmk_array_unlock(struct shmk_array *a);

/*
 * shmk_array_version, shmk_array_wait - as shmk_buffer_version/wait: the
 * number of versions (writes of count > 0 and write-lock releases), and
 * a wait until it differs from *version.  shmk_array_pollfd - the
 * array's descriptor: readable when shmk_array_wait() with timeout 0,
 * which returned -EAGAIN, would now return 0 (see "Waiting in an event
 * loop").  shmk_array_wake - ends a wait for the lock or for a version
 * with -ECANCELED (see shmk_ring_wake).
 */
uint64_t shmk_array_version(const struct shmk_array *a);
int shmk_array_wait(struct shmk_array *a, uint64_t *version, int timeout_ms);
int shmk_array_pollfd(struct shmk_array *a);
int shmk_array_wake(struct shmk_array *a);

/* shmk_array_data - the first element, for access under the lock. */
void *shmk_array_data(struct shmk_array *a);

/*
 * Typed helpers: the element type is given once and its size checked.
 *
 *	struct shmk_array *a;
 *	int v = 123;
 *	SHMK_ARRAY_CREATE("counts", int, 10, NULL, &a);
 *	SHMK_ARRAY_SET(a, 0, &v);   // -EINVAL if sizeof(v) is not the size
 */
#define SHMK_ARRAY_CREATE(name, type, length, o, out)                          \
	shmk_array_create((name), sizeof(type), (length), (o), (out))
#define SHMK_ARRAY_OPEN(name, type, o, out)                                    \
	shmk_array_open((name), sizeof(type), (o), (out))
#define SHMK_ARRAY_GET(a, i, ptr)                                              \
	(shmk_array_elem_size(a) == sizeof(*(ptr))                             \
		 ? shmk_array_get((a), (i), (ptr))                             \
		 : -EINVAL)
#define SHMK_ARRAY_SET(a, i, ptr)                                              \
	(shmk_array_elem_size(a) == sizeof(*(ptr))                             \
		 ? shmk_array_set((a), (i), (ptr))                             \
		 : -EINVAL)

/* ======================================================================
 * shmk_event - a named event, as in "data written" / "data handled"
 * ====================================================================== */

struct shmk_event;

/*
 * shmk_event_create - create an event.  manual_reset 0: auto-reset, each
 * set releases exactly one waiter (or the next one to wait) and the event
 * is reset as it does; several sets before a wait count as one.
 * manual_reset 1: a set releases every waiter, including those whose wait
 * began before it even if a reset follows at once, and the event stays set
 * until shmk_event_reset().  initially_set: start set.
 * shmk_event_open, shmk_event_open_fd, shmk_event_fd, shmk_event_close -
 * as the buffer's.  The creator's close (unless created with SHMK_F_KEEP)
 * wakes waiters, which get -EPIPE.
 */
int shmk_event_create(const char *name, int manual_reset, int initially_set,
		      const struct shmk_opts *o, struct shmk_event **out);
int shmk_event_open(const char *name, const struct shmk_opts *o,
		    struct shmk_event **out);
int shmk_event_open_fd(int fd, const struct shmk_opts *o,
		       struct shmk_event **out);
int shmk_event_fd(struct shmk_event *e);
int shmk_event_close(struct shmk_event *e);

/*
 * shmk_event_set - set the event and wake its waiters (no system call when
 * nobody sleeps).  shmk_event_reset - clear it.
 * Returns 0, -EINVAL, -ECHILD.  Thread-safe.
 */
int shmk_event_set(struct shmk_event *e);
int shmk_event_reset(struct shmk_event *e);

/*
 * shmk_event_wait - wait until the event is set (auto-reset: and take the
 * set).  Spins for the handle's spin budget first, then sleeps.
 * Returns 0, -ETIMEDOUT / -EAGAIN, -EPIPE (shut down by its creator and
 * not set), -EINVAL, -ECHILD.  Thread-safe.
 */
int shmk_event_wait(struct shmk_event *e, int timeout_ms);
/* See "Waiting in an event loop" above (shmk_event_wait, timeout 0). */
int shmk_event_pollfd(struct shmk_event *e);
int shmk_event_wake(struct shmk_event *e);

/* ======================================================================
 * shmk_ring - a FIFO of fixed-size nodes, many writers, many readers
 * ====================================================================== */

/*
 * A handle may be used by many threads at once; each has at most 16
 * messages reserved or acquired through it at a time (more: -EBUSY).
 * Threads that each hold many should open a handle each.
 */
struct shmk_ring;

/*
 * A message handed out by reserve or acquire: data points into the ring's
 * node, len is the node size (reserve) or the message length (acquire).
 * The other fields belong to shmk.
 */
struct shmk_msg {
	void *data;
	size_t len;
	uint64_t pos_; /* private */
	int slot_;     /* private */
	int role_;     /* private */
};

/*
 * shmk_ring_create - create a ring of nodes nodes (at least 2) of
 * node_size bytes (at least 1; up to 2^40).  N nodes hold N messages.
 * Node data is cache-line aligned, page aligned for nodes of a page or
 * more.  shmk_ring_open, _open_fd, _fd, _close - as the buffer's (the
 * geometry comes from the ring).  The creator's close shuts the ring
 * down, as shmk_ring_shutdown() does (unless created with SHMK_F_KEEP).
 * Any number of threads and processes may write and read at once, through
 * one handle or many.  Each message goes to exactly one reader, and
 * messages become readable in the order their writers reserved nodes
 * (so a slow writer holds back the messages reserved after its own).
 * With SHMK_F_SINGLE_WRITER and/or SHMK_F_SINGLE_READER that side is one
 * handle at a time, used by one thread at a time (see the flags).
 * Returns as the buffer's calls; -EINVAL for a bad geometry.
 */
int shmk_ring_create(const char *name, size_t nodes, size_t node_size,
		     const struct shmk_opts *o, struct shmk_ring **out);
int shmk_ring_open(const char *name, const struct shmk_opts *o,
		   struct shmk_ring **out);
int shmk_ring_open_fd(int fd, const struct shmk_opts *o,
		      struct shmk_ring **out);
int shmk_ring_fd(struct shmk_ring *r);
int shmk_ring_close(struct shmk_ring *r);

/* The ring's geometry; 0 for NULL. */
size_t shmk_ring_nodes(const struct shmk_ring *r);
size_t shmk_ring_node_size(const struct shmk_ring *r);

/*
 * shmk_ring_write - copy a message of len bytes (0 is a message too) into
 * the next free node, waiting up to timeout_ms for one.
 * Returns 0, -EMSGSIZE (len > node size: nothing is written), -ETIMEDOUT /
 * -EAGAIN (the ring stayed full), -EPIPE (shut down), -EINVAL, -ECHILD,
 * -EBUSY (16 messages are already reserved or acquired through this
 * handle; on a single-writer ring: another live handle is the writer, or
 * this handle has a write open), -EBADMSG (corrupt ring).  Thread-safe
 * (a single-writer ring: one thread at a time).
 */
int shmk_ring_write(struct shmk_ring *r, const void *src, size_t len,
		    int timeout_ms);

/*
 * shmk_ring_read - take the next message and copy it to dst.
 * Returns its length (0 for an empty message), -EMSGSIZE if it is longer
 * than cap (it stays in the ring, for this or another reader), -ETIMEDOUT
 * / -EAGAIN (nothing came), -EPIPE (shut down and drained), -EINVAL,
 * -ECHILD, -EBUSY (as for writing, on a single-reader ring), -EBADMSG.
 * Thread-safe (a single-reader ring: one thread at a time).
 */
ssize_t shmk_ring_read(struct shmk_ring *r, void *dst, size_t cap,
		       int timeout_ms);

/*
 * Zero-copy writing: shmk_ring_reserve() hands out the next free node
 * (m->data, m->len = the node size); fill it, set m->len to the message
 * length and shmk_ring_commit() it, or shmk_ring_abort() it (readers pass
 * over an aborted node).  Until then the node is yours and the messages
 * reserved after it wait for it; a process that dies holding a
 * reservation is noticed within 10 ms and its node skipped.
 * reserve returns as shmk_ring_write(); commit returns 0, -EMSGSIZE if
 * m->len exceeds the node size (still reserved), -EINVAL for a message
 * this handle did not reserve (or already committed).
 */
int shmk_ring_reserve(struct shmk_ring *r, struct shmk_msg *m, int timeout_ms);
int shmk_ring_commit(struct shmk_ring *r, struct shmk_msg *m);
int shmk_ring_abort(struct shmk_ring *r, struct shmk_msg *m);

/*
 * Zero-copy reading: shmk_ring_acquire() hands out the next message in
 * place (m->data, m->len); read it, then shmk_ring_release() the node.  A
 * process that dies holding a message frees its node (the message is
 * counted lost, never delivered twice).
 * acquire returns as shmk_ring_read() (0 on success); release returns 0
 * or -EINVAL for a message this handle did not acquire.
 */
int shmk_ring_acquire(struct shmk_ring *r, struct shmk_msg *m, int timeout_ms);
int shmk_ring_release(struct shmk_ring *r, struct shmk_msg *m);

/*
 * shmk_ring_pollfd, shmk_ring_wake: see "Waiting in an event loop" above;
 * the descriptor serves reads and writes (reserve, acquire) alike.
 * shmk_ring_drain - wait until every message written before the call has
 * been read and its node released (by any reader; a reader that died
 * holding one counts as done).  Returns 0, -ETIMEDOUT / -EAGAIN,
 * -ECANCELED, -EINVAL, -ECHILD, -EBADMSG.
 */
int shmk_ring_pollfd(struct shmk_ring *r);
int shmk_ring_wake(struct shmk_ring *r);
int shmk_ring_drain(struct shmk_ring *r, int timeout_ms);

/*
 * shmk_ring_shutdown - shut the ring down (what its creator's close does;
 * any participant may call it, e.g. a producer at the end of its input):
 * blocked callers wake at once; writers then fail with -EPIPE, readers
 * take what is left and then get -EPIPE.  For good: a shut-down ring
 * stays so.  Returns 0, -EINVAL, -ECHILD.
 */
int shmk_ring_shutdown(struct shmk_ring *r);

struct shmk_ring_stats {
	uint64_t nodes, node_size;
	uint64_t written, bytes_written; /* committed messages */
	uint64_t read, bytes_read;	 /* released messages */
	uint64_t full_waits;  /* write calls that found the ring full (each
				 call once, whether it then slept or not) */
	uint64_t empty_waits; /* read calls that found it empty (likewise) */
	uint64_t wakeups;     /* sleepers woken (system calls made) */
	uint64_t aborted;     /* reservations given up */
	uint64_t recovered;   /* nodes of dead writers skipped */
	uint64_t lost;	      /* messages dead readers held */
	uint64_t high_water;  /* most messages waiting at once */
	uint64_t lag;	      /* messages reserved and not yet taken now */
};

/*
 * shmk_ring_stats - the ring's counters (all participants', past and
 * present) and its reader lag.  Returns 0, -EINVAL, -ECHILD.
 */
int shmk_ring_stats(struct shmk_ring *r, struct shmk_ring_stats *st);

/* ======================================================================
 * shmk_topic - publish/subscribe: every subscriber gets every message
 * ====================================================================== */

/*
 * A topic is a log of messages of any size from 0 to its max_msg, in one
 * total order that every subscriber sees alike.  Any number of publishers
 * (threads and processes); each handle may also subscribe once, and each
 * subscription receives every message published after it began (plus the
 * history it asked for).  A process holds one participant slot per
 * handle, so up to 128 handles at once, publishers and subscribers
 * together.
 *
 *	// publisher
 *	struct shmk_topic *t;
 *	shmk_topic_create("prices", 1 << 20, 4096, NULL, &t);
 *	shmk_topic_publish(t, "tick 1", 6, -1);
 *
 *	// subscriber, in any number of other processes
 *	struct shmk_topic *t;
 *	char buf[4096];
 *	shmk_topic_open("prices", &o, &t);	// o.wait_ms = 5000
 *	shmk_topic_subscribe(t, 0);		// only new messages
 *	ssize_t n = shmk_topic_receive(t, buf, sizeof(buf), -1);
 *
 * Overflow policy, fixed at create time (shmk_opts.flags):
 *  - lossless (the default): a publisher waits, up to its timeout, while
 *    the slowest live subscriber still needs the space it would reuse.
 *    A subscriber that dies is dropped as soon as it is in the way (the
 *    kernel says so; nothing it wrote is believed); one that is merely
 *    slow is waited for, and `shmk info` names it (counters "slowest_pid"
 *    and "slowest_lag").
 *  - SHMK_F_LOSSY (overwrite): publishers never wait for subscribers; the
 *    oldest messages are overwritten.  A subscriber that was lapped gets
 *    -EOVERFLOW once from its next receive or acquire, with nothing
 *    consumed: shmk_topic_lost() then counts what it lost, and the next
 *    call returns the oldest message still held.  A message read in place
 *    that was overwritten while held makes its release return -EOVERFLOW
 *    (what was read may be torn; it is counted lost).
 *
 * Crashes: a publisher killed between loan and publish never wedges the
 * topic: its record is skipped by everyone once the kernel says it is gone
 * (within 10 ms; counter "recovered").  A subscriber killed holding a
 * message in place releases it by dying.
 */
struct shmk_topic;

/*
 * shmk_topic_create - create a topic whose log holds capacity bytes (a
 * power of two, 4 KiB to 16 GiB) of messages of at most max_msg bytes (1
 * to capacity / 2).  Each message takes its length rounded up to 64
 * bytes of the log, and the log holds at most capacity / 256 - 1
 * messages (at least 63) whatever their size (shmk_topic_stats: slots).
 * A message is contiguous in memory wherever it falls in the log.
 * shmk_topic_open, _open_fd, _fd, _close - as the buffer's; the creator's
 * close shuts the topic down (unless SHMK_F_KEEP): publishers then get
 * -EPIPE, subscribers take what is left and then get -EPIPE.
 * Returns as the buffer's calls; -EINVAL for a bad geometry or flag.
 */
int shmk_topic_create(const char *name, size_t capacity, size_t max_msg,
		      const struct shmk_opts *o, struct shmk_topic **out);
int shmk_topic_open(const char *name, const struct shmk_opts *o,
		    struct shmk_topic **out);
int shmk_topic_open_fd(int fd, const struct shmk_opts *o,
		       struct shmk_topic **out);
int shmk_topic_fd(struct shmk_topic *t);
int shmk_topic_close(struct shmk_topic *t);

/* The topic's geometry and policy; 0 for NULL. */
size_t shmk_topic_capacity(const struct shmk_topic *t);
size_t shmk_topic_max_msg(const struct shmk_topic *t);
int shmk_topic_lossy(const struct shmk_topic *t);

/*
 * Publishing, zero-copy: shmk_topic_loan() hands out size bytes (at most
 * max_msg) of the log in place (m->data, m->len = size); write the
 * message there, set m->len to its length (at most the loan's) and
 * shmk_topic_commit() it, or shmk_topic_abandon() the loan (subscribers
 * pass over it).  Messages are delivered in the order their loans were
 * taken, so a loan held long holds back the messages loaned after it.
 * loan waits up to timeout_ms for room (lossless: for the slowest
 * subscriber; both policies: for a live publisher still writing the
 * oldest message).
 * loan returns 0, -EMSGSIZE (size > max_msg), -ETIMEDOUT / -EAGAIN, -EPIPE,
 * -EBUSY (8 loans already open through this handle; or fewer, while loan
 * slots it took over with its participant slot still name a message a
 * dead publisher left unfinished), -EINVAL, -ECHILD, -EBADMSG.  commit returns 0, -EMSGSIZE if m->len exceeds the loan (still
 * loaned), -EINVAL for a loan this handle did not make.  Thread-safe.
 * shmk_topic_publish - the copy: loan, copy len bytes, commit.
 */
int shmk_topic_loan(struct shmk_topic *t, size_t size, struct shmk_msg *m,
		    int timeout_ms);
int shmk_topic_commit(struct shmk_topic *t, struct shmk_msg *m);
int shmk_topic_abandon(struct shmk_topic *t, struct shmk_msg *m);
int shmk_topic_publish(struct shmk_topic *t, const void *src, size_t len,
		       int timeout_ms);

/*
 * shmk_topic_subscribe - begin this handle's subscription.  history: 0
 * for only the messages published from now on, K > 0 for the last K
 * messages still held as well (fewer if fewer are held), -1 for all that
 * are held.  shmk_topic_unsubscribe - end it (close does too).
 * A handle's subscription is used by one thread at a time.
 * Returns 0, -EALREADY (already subscribed), -EINVAL, -ECHILD, -EPIPE,
 * -EAGAIN (publishers kept moving the log while we looked: try again),
 * -EBADMSG (the shared words are corrupt: the handle is poisoned).
 */
int shmk_topic_subscribe(struct shmk_topic *t, int history);
int shmk_topic_unsubscribe(struct shmk_topic *t);

/*
 * Receiving, zero-copy: shmk_topic_acquire() hands out the subscription's
 * next message in place (m->data, m->len), read-only; read it, then
 * shmk_topic_release() it.  Lossless: the message stays intact until
 * release.  Lossy: see -EOVERFLOW above.
 * acquire returns 0, -ETIMEDOUT / -EAGAIN (nothing came), -EPIPE (shut
 * down and drained), -EOVERFLOW (lapped, lossy only), -ENOTCONN (not
 * subscribed), -EBUSY (a message is already held), -EINVAL, -ECHILD,
 * -EBADMSG.  release returns 0, -EOVERFLOW, or -EINVAL for a message not
 * acquired through this handle.
 * shmk_topic_receive - the copy: the next message into dst.  Returns its
 * length, -EMSGSIZE if it is longer than cap (it stays next), or as
 * acquire.
 */
int shmk_topic_acquire(struct shmk_topic *t, struct shmk_msg *m,
		       int timeout_ms);
int shmk_topic_release(struct shmk_topic *t, struct shmk_msg *m);
ssize_t shmk_topic_receive(struct shmk_topic *t, void *dst, size_t cap,
			   int timeout_ms);

/*
 * shmk_topic_pollfd, shmk_topic_wake: see "Waiting in an event loop"
 * above (receive, acquire, loan, publish).  shmk_topic_drain - wait until
 * every live subscription (this handle's own aside) has taken every
 * message published before the call.  Returns 0, -ETIMEDOUT / -EAGAIN,
 * -ECANCELED, -EINVAL, -ECHILD, -EBADMSG.
 */
int shmk_topic_pollfd(struct shmk_topic *t);
int shmk_topic_wake(struct shmk_topic *t);
int shmk_topic_drain(struct shmk_topic *t, int timeout_ms);

/*
 * shmk_topic_wait_subscribers - wait until the topic has at least n live
 * subscriptions (this handle's own counts), e.g. before a first message
 * that everyone must see.  Each subscription wakes the waiters; a
 * subscriber that died is not counted.  Returns 0, -ETIMEDOUT / -EAGAIN,
 * -ECANCELED (shmk_topic_wake), -EPIPE (shut down), -EINVAL (n above
 * 128, the participants an object holds), -ECHILD, -EBADMSG.
 */
int shmk_topic_wait_subscribers(struct shmk_topic *t, unsigned n,
				int timeout_ms);

/*
 * shmk_topic_lost - messages this subscription lost to overwriting (lossy
 * topics), in all.  Returns the count, or 0 for NULL.
 */
uint64_t shmk_topic_lost(const struct shmk_topic *t);

/*
 * shmk_topic_latest - copy the newest complete message into dst, without
 * subscribing (the sensor-state case): a consistent copy even while
 * publishers overwrite the log.  Returns its length, -EAGAIN if the topic
 * holds no message, -EMSGSIZE if it is longer than cap, -EINVAL, -ECHILD,
 * -EBADMSG.  Does not wait.
 */
ssize_t shmk_topic_latest(struct shmk_topic *t, void *dst, size_t cap);

/*
 * shmk_topic_shutdown - as shmk_ring_shutdown().  Returns 0, -EINVAL,
 * -ECHILD.
 */
int shmk_topic_shutdown(struct shmk_topic *t);

struct shmk_topic_stats {
	uint64_t capacity, max_msg, slots; /* slots: most messages held
					      at once */
	int lossy;
	uint64_t published, bytes_published; /* committed messages */
	uint64_t abandoned;		     /* loans given up */
	uint64_t recovered;   /* loans of dead publishers skipped */
	uint64_t full_waits;  /* loans that found no room */
	uint64_t delivered;   /* messages taken, by all subscriptions */
	uint64_t lost;	      /* messages lost to overwriting, by all */
	uint64_t held;	      /* messages in the log now */
	uint64_t subscribers; /* live subscriptions now */
	uint64_t slowest_lag; /* messages the slowest one has to take */
	uint64_t slowest_pid; /* its pid (0: none) */
	uint64_t my_delivered, my_lost, my_lag; /* this handle's subscription */
};

/* shmk_topic_stats - the counters.  Returns 0, -EINVAL, -ECHILD. */
int shmk_topic_stats(struct shmk_topic *t, struct shmk_topic_stats *st);

/* ======================================================================
 * shmk_rpc: request/response between processes
 *
 * A server serves NAME; each client that connects gets its own channel
 * (a pair of rings), so a slow client never blocks another.  Calls carry
 * any number of bytes up to the server's max_msg, split over ring nodes
 * and put back together by offset; replies are matched to calls by id and
 * may come back in any order.  Handlers run on worker threads (never on
 * the thread that reads a channel), on both sides: a client with a
 * handler can be called by its server too.
 *
 *	static int add(void *arg, struct shmk_rpc_req *rq)
 *	{
 *		const unsigned char *b = rq->data;
 *		unsigned char *sum;
 *
 *		if (rq->len != 2) {
 *			snprintf(rq->error, sizeof(rq->error), "want 2 bytes");
 *			return -EINVAL;	// the caller gets -EINVAL and this text
 *		}
 *		sum = malloc(1);	// handlers run on several threads
 *		*sum = b[0] + b[1];
 *		rq->reply = sum;
 *		rq->reply_len = 1;
 *		rq->reply_free = free;	// called once the reply is sent
 *		return 0;
 *	}
 *
 *	struct shmk_rpc_opts so = {.handler = add};
 *	shmk_rpc_serve("calc", &so, &srv);		// server process
 *
 *	struct shmk_rpc_opts co = {.wait_ms = 5000};
 *	shmk_rpc_connect("calc", &co, &cli);		// client process
 *	unsigned char in[2] = {123, 10}, out;
 *	struct shmk_rpc_result res;
 *	shmk_rpc_call(cli, in, 2, &out, 1, &res, 1000);	// out == 133
 *
 * Failures come back as negative codes: the handler's own (a reply over
 * max_msg becomes -EMSGSIZE, a reply_len without a reply -EINVAL),
 * -ENOSYS when the other side has no handler, -ETIMEDOUT when the call's
 * deadline passed (the other side is told with a cancel, and a late reply
 * is dropped), -EPIPE when the other side closed or died (noticed within
 * 10 ms of its death, from its socket's hang-up or its pidfd: never from
 * anything it wrote, docs/design.md), -EMSGSIZE for a request over
 * max_msg or a reply larger than the buffer given.
 * ====================================================================== */

#define SHMK_RPC_NAME_MAX 180 /* the longest name of an rpc object */
#define SHMK_RPC_ERRMAX	  128 /* error text, with its terminating NUL */

/* What a handler gets, and fills in. */
struct shmk_rpc_req {
	const void *data; /* the request; valid until the handler returns */
	size_t len;
	uint64_t id;   /* the call's id at the caller */
	uint64_t peer; /* who calls: on a server, the client's number
			  (for shmk_rpc_submit); on a client, 0 */
	/* The reply: copied out after the handler returns (it may point
	 * into data), then passed to reply_free if that is set.  NULL / 0:
	 * an empty reply. */
	const void *reply;
	size_t reply_len;
	void (*reply_free)(void *reply);
	/* With a negative return: a message for the caller. */
	char error[SHMK_RPC_ERRMAX];
	void *priv_;
};

/*
 * A handler: 0 (or more) to send the reply, a negative errno value to
 * send that error and rq->error instead.  Runs on one of the endpoint's
 * worker threads, several at once if there are several workers.
 */
typedef int (*shmk_rpc_handler)(void *arg, struct shmk_rpc_req *rq);

/* shmk_rpc_cancelled - 1 once the caller gave up on this request, or its
 * channel ended (its reply will be dropped); a long handler may stop
 * early. */
int shmk_rpc_cancelled(const struct shmk_rpc_req *rq);

struct shmk_rpc_opts {
	shmk_rpc_handler handler; /* NULL: calls to us get -ENOSYS */
	void *arg;		  /* passed to the handler */
	int workers; /* handler threads; 0 means 2; -1: none, the handlers
			run in shmk_rpc_dispatch (an event loop's thread) */
	/* Server: every channel's geometry; 0 means the default. */
	size_t nodes;	  /* ring nodes per direction (64; 2 to 2^20) */
	size_t node_size; /* bytes per node, 48 of them the frame header
			     (4096; 64 to 2^30; serve refuses a ring
			     above 2^45 bytes with -EINVAL) */
	size_t max_msg;	  /* largest request or reply (64 MiB, at most
			     4 GiB) */
	/* server: the rpc object's permission bits as shmk_opts.mode (0600
	 * by default), its group and other write bits always cleared
	 * (clients only read the object).  Without allow lists, the group
	 * and other bits also say who may connect: any group bit, a client
	 * whose effective gid is the server's; any other bit, anyone. */
	unsigned mode;
	int wait_ms; /* client: wait this long for the server */
	int spin_us; /* as shmk_opts.spin_us */
	/* client: SHMK_F_ALLOW_SHARED to connect to a server of another
	 * user, or whose object others may write */
	unsigned flags;
	/*
	 * server: who may connect, by the kernel's credentials of the
	 * client's socket (SO_PEERCRED: effective uid and gid, not the
	 * supplementary groups).  The server's own uid and root always may;
	 * with either list non-empty, others only if their uid is in
	 * allow_uid or their gid in allow_gid (mode then says nothing of
	 * who connects).  The lists are copied; at most 65536 entries each.
	 * Others get -EACCES at connect.
	 */
	const uid_t *allow_uid;
	size_t n_allow_uid;
	const gid_t *allow_gid;
	size_t n_allow_gid;
	/* server: channels at once, in all (0: 1024) and per client process
	 * (0: 64); a connect over either gets -EUSERS.  Each channel costs
	 * the server a thread and four descriptors (mind RLIMIT_NOFILE). */
	int max_clients;
	int max_per_pid;
};

struct shmk_rpc;

/*
 * shmk_rpc_serve - serve NAME (plain names only, at most
 * SHMK_RPC_NAME_MAX characters).  Takes over the name from a server that
 * died; a live one's gives -EADDRINUSE, after looking again for 200 ms
 * (a server killed a moment ago can still look alive).  The server's
 * object is created with o->mode less its group and other write bits
 * (clients only read it; nobody but the server attaches); who may
 * connect is o->allow_uid / allow_gid, else the mode's group and other
 * bits (see struct shmk_rpc_opts).  The server listens on an abstract
 * UNIX socket named after the object's random nonce; each connect is
 * handled without waiting on the client (a hello not sent within 1 s
 * is dropped), so a slow or hostile client never holds up another.
 * Returns 0, -EINVAL, -ENAMETOOLONG, -EADDRINUSE, -ENOMEM, a socket
 * error, or a create's errors.
 */
int shmk_rpc_serve(const char *name, const struct shmk_rpc_opts *o,
		   struct shmk_rpc **out);

/*
 * shmk_rpc_connect - connect to the server of NAME, waiting up to
 * o->wait_ms for it to appear and answer (with wait_ms 0, a second for
 * the answer; the server's hello always gets at least a second; -1:
 * forever, also for a server restarting over a dead one's name).  The
 * client reads the server's object without mapping it, connects to the
 * server's socket, and receives its channel's two rings as sealed
 * anonymous descriptors.  The server knows the client by its socket's
 * kernel credentials only.  A server has room for max_clients (1024)
 * clients at once, max_per_pid (64) of one process; too many connects
 * under way at once (8 of one process, 64 of one other user) are told to
 * try again, which connect does within wait_ms.  Returns 0, -ENOENT
 * (no server; with wait_ms, none came), -ETIMEDOUT, -ECONNREFUSED (the
 * server died or closed, and none came back within wait_ms), -EUSERS
 * (over the server's limits), -EACCES (another user's server: see
 * o->flags; a server whose socket is not its object's owner's; one
 * that does not let our uid or gid connect; or a server in another pid
 * namespace than ours, which cannot check who we are), the server's own
 * refusal
 * (-ENOMEM, or what creating the rings gave it: a resource error such
 * as -ENOSPC or -EMFILE; a refusal carrying any other code is taken for
 * a corrupt one, -EPROTO), -EPROTO (a malformed answer, or ring
 * descriptors not sealed against shrinking), -EINVAL, -ENOMEM, or a
 * system error (-EMFILE).
 */
int shmk_rpc_connect(const char *name, const struct shmk_rpc_opts *o,
		     struct shmk_rpc **out);

/*
 * shmk_rpc_close - close an endpoint: its threads stop, calls not
 * collected are forgotten, a server's clients get -EPIPE, a server's name
 * goes.  No other thread may be using the endpoint (waiting for a call
 * included), and it is not to be called from a handler.  Returns 0, or
 * the error of removing a server's name (the endpoint is closed all the
 * same; the name stays behind as a dead server's, which the next
 * shmk_rpc_serve of it takes over and `shmk gc` removes).
 */
int shmk_rpc_close(struct shmk_rpc *ep);

/* How a call ended. */
struct shmk_rpc_result {
	int status; /* 0, or the negative code the call returned */
	size_t len; /* the reply's length (also when it did not fit); for
		       an error, its text's */
	char error[SHMK_RPC_ERRMAX]; /* the handler's message, or "" */
};

/*
 * shmk_rpc_call - call the server of a client endpoint and wait for the
 * reply, which is copied into reply (cap bytes).  timeout_ms covers the
 * whole call: sending every fragment (blocking while the ring is full)
 * and the reply.  Returns res->status: 0, the handler's code, or -ENOSYS,
 * -ETIMEDOUT, -EPIPE, -EMSGSIZE, -ECANCELED (shmk_rpc_cancel from another
 * thread), -ECONNABORTED (the server gave up on the reply: this client
 * took none of it for a second, as when stopped; said as soon as it
 * reads again), -EPROTO (a peer's malformed answer), -ENOMEM, a ring error
 * (-EBADMSG: corrupt shared memory), or -EINVAL (also on a server
 * endpoint: use shmk_rpc_submit with the client's number; res is then not
 * written).  Thread-safe.
 */
int shmk_rpc_call(struct shmk_rpc *ep, const void *req, size_t len, void *reply,
		  size_t cap, struct shmk_rpc_result *res, int timeout_ms);

/*
 * shmk_rpc_submit - send a call without waiting for its reply; *id names
 * it for shmk_rpc_wait or shmk_rpc_cancel, one of which must follow.
 * peer: 0 on a client; on a server, the client's number (rq->peer).  reply
 * must stay valid until then.  timeout_ms is the call's deadline, sending
 * included.  Returns 0, -ETIMEDOUT (sending), -EPIPE, -ENOENT (no such
 * client), -EMSGSIZE, -EINVAL, -ENOMEM, or a ring error (-EBADMSG).
 * Thread-safe.
 */
int shmk_rpc_submit(struct shmk_rpc *ep, uint64_t peer, const void *req,
		    size_t len, void *reply, size_t cap, int timeout_ms,
		    uint64_t *id);

/*
 * shmk_rpc_wait - wait up to timeout_ms for call id.  Returns 0 once the
 * call has ended (how: res), the call then being forgotten; -EAGAIN or
 * -ETIMEDOUT if it is still under way (wait again or cancel), -ENOENT
 * for an unknown id, -EBUSY if another thread waits for it, -EINVAL.  When the
 * call's own deadline passes, it ends with res->status -ETIMEDOUT; a
 * shmk_rpc_cancel from another thread ends it with -ECANCELED.
 */
int shmk_rpc_wait(struct shmk_rpc *ep, uint64_t id, struct shmk_rpc_result *res,
		  int timeout_ms);

/*
 * shmk_rpc_cancel - give up on call id: the other side is told, a late
 * reply is dropped, and the call is forgotten (if a thread waits for it,
 * that wait returns it with -ECANCELED and forgets it).  Returns 0,
 * -ENOENT or -EINVAL.
 */
int shmk_rpc_cancel(struct shmk_rpc *ep, uint64_t id);

/* Counters of an endpoint: a server's are its rpc object's (shmk info
 * shows them); a client's are its own (a client never writes the
 * server's memory), so calls, replies, timeouts, cancels_sent,
 * bytes_out... of a client are counted on the client, and served,
 * cancels_seen, clients, connects on the server. */
struct shmk_rpc_stats {
	uint64_t calls;		      /* calls made */
	uint64_t served;	      /* requests handled */
	uint64_t replies;	      /* replies (and errors) received */
	uint64_t bytes_out, bytes_in; /* message bytes sent, received */
	uint64_t timeouts;	      /* calls that reached their deadline */
	uint64_t cancels_sent, cancels_seen;
	uint64_t errors;    /* error replies received */
	uint64_t malformed; /* frames dropped as invalid */
	uint64_t discarded; /* replies dropped: late (their call was gone),
			       or not taken by a stuck client within 1 s
			       (its caller gets -ECONNABORTED) */
	uint64_t clients;   /* server: connected now */
	uint64_t connects;  /* server: connections accepted in all (refused
			       ones: counter 13 of shmk_stat, "refused") */
};

/* shmk_rpc_stats - the counters.  Returns 0 or -EINVAL. */
int shmk_rpc_stats(struct shmk_rpc *ep, struct shmk_rpc_stats *st);

/*
 * An endpoint in an event loop.
 *
 * shmk_rpc_pollfd - the endpoint's descriptor (made on first use, owned
 * by the endpoint, closed by shmk_rpc_close) for epoll, poll, select or
 * io_uring.  It becomes readable (POLLIN) after a call that found nothing
 * to do armed it: shmk_rpc_wait(ep, id, &res, 0) returning -EAGAIN (it
 * is then readable when any call of the endpoint has ended: wait again,
 * timeout 0, for each call under way), or shmk_rpc_dispatch returning
 * -EAGAIN (readable when a request has come).  Arming empties it.  A call
 * that ended before the arming and is not collected makes it readable at
 * once, so nothing is missed.  Readable is a hint: another thread may
 * have collected what there was.  Until a loop arms it, nothing costs
 * more; while armed, whoever ends a call or queues a request writes it
 * once (one system call), which the endpoint's own threads do: the
 * descriptor is an eventfd of this process.  Returns the descriptor,
 * -EINVAL, -ECHILD (an endpoint inherited over fork), or what eventfd(2)
 * fails with.  Thread-safe.
 *
 * shmk_rpc_dispatch - on an endpoint made with workers = -1, run the
 * handlers of up to max requests that have come, on the calling thread,
 * and send their replies.  Returns how many ran (>= 1), -EAGAIN if none
 * had come (the descriptor is then armed), -EINVAL (no such mode, max <=
 * 0), -ECHILD.  Thread-safe; a handler may call shmk_rpc_cancelled.
 *
 * shmk_rpc_wake - make every shmk_rpc_wait and shmk_rpc_call of ep that
 * is waiting return -ECANCELED within 10 ms, without closing anything: a
 * wait's call stays under way (wait again or cancel it), a
 * shmk_rpc_call's is cancelled.  If none is waiting, the next one that
 * would wait returns -ECANCELED instead (a wake is never lost).
 * Async-signal-safe.  Returns 0 or -EINVAL.
 */
int shmk_rpc_pollfd(struct shmk_rpc *ep);
int shmk_rpc_dispatch(struct shmk_rpc *ep, int max);
int shmk_rpc_wake(struct shmk_rpc *ep);

/* ======================================================================
 * Introspection (what `shmk ls` and `shmk info` print)
 * ====================================================================== */

enum shmk_kind {
	SHMK_KIND_BUFFER = 1,
	SHMK_KIND_ARRAY = 2,
	SHMK_KIND_EVENT = 3,
	SHMK_KIND_RING = 4,
	SHMK_KIND_RPC = 5,
	SHMK_KIND_TOPIC = 6,
};

enum shmk_state {
	SHMK_STATE_INIT = 0,	 /* the creator is still initialising it */
	SHMK_STATE_READY = 1,	 /* in use */
	SHMK_STATE_SHUTDOWN = 2, /* the creator closed it */
};

#define SHMK_STAT_MAX_PARTS    128
#define SHMK_STAT_MAX_COUNTERS 32
#define SHMK_STAT_MAX_GEOM     8

struct shmk_stat_part {
	int slot;    /* index in the object's participant table */
	int alive;   /* 1: the holder has it open (the kernel says so) */
	int creator; /* 1: this participant created the object */
	pid_t pid;   /* in the attaching process's PID namespace */
	uid_t uid;
	uint64_t attach_ns; /* CLOCK_REALTIME, ns since the epoch */
};

struct shmk_stat {
	int kind;	      /* enum shmk_kind */
	int state;	      /* enum shmk_state */
	int version;	      /* format version */
	unsigned mode;	      /* permission bits of the backing object */
	uid_t owner;	      /* owner of the backing object */
	uint64_t total_size;  /* bytes of the whole region */
	uint64_t header_size; /* bytes before the object's data */
	int ngeom;	      /* entries used in geom[] */
	uint64_t geom[SHMK_STAT_MAX_GEOM]; /* see shmk_stat_geom_name() */
	uid_t creator_uid;		   /* effective uid of the creator */
	pid_t creator_pid;   /* pid of the creator, in its namespace */
	int creator_alive;   /* 1 if the creator still has it open */
	uint64_t created_ns; /* CLOCK_REALTIME, ns since the epoch */
	int nparts;	     /* participant slots ever used, in part[] */
	int nalive;	     /* of which alive now */
	struct shmk_stat_part part[SHMK_STAT_MAX_PARTS];
	int ncounters; /* entries used in counter[] */
	uint64_t counter[SHMK_STAT_MAX_COUNTERS]; /* shmk_stat_counter_name() */
	/* SHMK_F_KEEP if created to outlive its creator; and the creation
	 * flags that are part of the object: a ring's mode
	 * (SHMK_F_SINGLE_WRITER, SHMK_F_SINGLE_READER; neither: many writers
	 * and readers), a topic's SHMK_F_LOSSY */
	unsigned flags;
};

/*
 * shmk_stat - describe an object without attaching to it: its header,
 * its participants and whether each is alive, and its counters.  Nothing
 * is mapped: the header is read with pread() and validated as an open
 * would, except that objects of other users may be described and an
 * object still being built is described (state "init") rather than
 * refused.  Returns 0, -EINVAL, or the errors of an open (without
 * waiting) other than -EACCES for the owner or mode.
 * Thread-safe.
 */
int shmk_stat(const char *name, struct shmk_stat *st);

/* shmk_kind_name - "buffer", "ring", ...; "?" for an unknown kind. */
const char *shmk_kind_name(int kind);

/* shmk_state_name - "init", "ready", "shutdown"; "?" otherwise. */
const char *shmk_state_name(int state);

/*
 * shmk_stat_geom_name - the name of geometry field i of a kind ("size",
 * "nodes", ...), or NULL if the kind has no field i.  shmk_stat_counter_name
 * - likewise for counter i.  Use them to print a shmk_stat generically.
 */
const char *shmk_stat_geom_name(int kind, int i);
const char *shmk_stat_counter_name(int kind, int i);

#ifdef __cplusplus
}
#endif

#endif /* SHMK_H */
