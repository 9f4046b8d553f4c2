/* SPDX-License-Identifier: MIT */
/*
 * fuzz_open - opening a region whose every byte, and whose length, a
 * hostile process chose.
 *
 * Input: byte 0 picks the opener (buffer, array, event, ring, rpc connect,
 * shmk_stat, or every kind's open in turn), byte 1 how (by name or by
 * descriptor, SHMK_F_ALLOW_SHARED, the array's element size), bytes 2..5
 * the file's length (modulo 1 MiB + 1), the rest its first bytes (zeros
 * after them).  The file is written to /dev/shm as this process's own
 * object, mode 0600, so that the trust check lets it through and the
 * header's validation is what is tested.  A region that opens is then used
 * with timeout 0 (every call must give a value or an error) and its
 * reported geometry is checked against the file.
 */
#include "fuzz.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE (UINT32_C(1) << 20)

static char name[64], path[128];

static void cleanup(void)
{
	unlink(path);
}

static void init(void)
{
	snprintf(name, sizeof(name), "fz%d.open", (int)getpid());
	FUZZ_CHECK(shmk_path(name, path, sizeof(path)) == 0);
	atexit(cleanup);
}

/* The file: len bytes, starting with img (n bytes), zeros after. */
static int make_file(const uint8_t *img, size_t n, size_t len)
{
	int fd;

	unlink(path);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)len) < 0 ||
	    (n && pwrite(fd, img, n < len ? n : len, 0) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* What every open may return for a file it does not like. */
#define OPEN_ERRS -EPROTO, -EBADMSG, -EAGAIN, -EUSERS

static void use_buffer(struct shmk_buffer *b, size_t flen)
{
	size_t sz = shmk_buffer_size(b), n = sz < 64 ? sz : 64;
	volatile uint8_t *d = shmk_buffer_data(b);
	uint8_t tmp[64] = {1, 2, 3};
	uint64_t v;
	int rc;

	/* The size comes from the validated header: it is the file's. */
	FUZZ_CHECK(sz + SHMK__HDR_SIZE == flen);
	FUZZ_CHECK(d != NULL);
	(void)d[0];
	(void)d[sz - 1];
	rc = shmk_buffer_read(b, 0, tmp, n, 0);
	FUZZ_RC(rc, -EAGAIN, -EOWNERDEAD, -EBADMSG);
	rc = shmk_buffer_write(b, sz - n, tmp, n, 0);
	FUZZ_RC(rc, -EAGAIN, -EOWNERDEAD, -EBADMSG);
	FUZZ_CHECK(shmk_buffer_read(b, sz - n, tmp, n + 1, 0) == -ERANGE);
	rc = shmk_buffer_lock(b, SHMK_LOCK_READ, 0);
	FUZZ_RC(rc, -EAGAIN, -EOWNERDEAD, -EBADMSG);
	if (rc == 0 || rc == -EOWNERDEAD)
		FUZZ_CHECK(shmk_buffer_unlock(b) == 0);
	rc = shmk_buffer_lock(b, SHMK_LOCK_WRITE, 0);
	FUZZ_RC(rc, -EAGAIN, -EOWNERDEAD, -EBADMSG);
	if (rc == 0 || rc == -EOWNERDEAD) {
		FUZZ_CHECK(shmk_buffer_read(b, 0, tmp, n, 0) >= -EOWNERDEAD);
		FUZZ_CHECK(shmk_buffer_unlock(b) == 0);
	}
	v = shmk_buffer_version(b);
	rc = shmk_buffer_wait(b, &v, 0);
	FUZZ_RC(rc, -EAGAIN, -EPIPE);
}

static void use_array(struct shmk_array *a, size_t flen)
{
	size_t len = shmk_array_length(a), es = shmk_array_elem_size(a);
	uint8_t *tmp;
	int rc;

	FUZZ_CHECK(len && es && len * es + SHMK__HDR_SIZE == flen);
	tmp = calloc(2, es);
	if (!tmp)
		return;
	/* Without the lock held a copy waits for it without a bound: only
	 * with it (taken with timeout 0). */
	rc = shmk_array_lock(a, SHMK_LOCK_WRITE, 0);
	FUZZ_RC(rc, -EAGAIN, -EOWNERDEAD, -EBADMSG);
	if (rc == 0 || rc == -EOWNERDEAD) {
		FUZZ_RC(shmk_array_get(a, len - 1, tmp), -EOWNERDEAD);
		FUZZ_RC(shmk_array_set(a, 0, tmp), -EOWNERDEAD);
		FUZZ_RC(shmk_array_read(a, len - 1, tmp, 1), -EOWNERDEAD);
		FUZZ_CHECK(shmk_array_get(a, len, tmp) == -ERANGE);
		FUZZ_CHECK(shmk_array_read(a, len - 1, tmp, 2) == -ERANGE);
		FUZZ_CHECK(shmk_array_unlock(a) == 0);
	}
	rc = shmk_array_lock(a, SHMK_LOCK_READ, 0);
	FUZZ_RC(rc, -EAGAIN, -EOWNERDEAD, -EBADMSG);
	if (rc == 0 || rc == -EOWNERDEAD)
		FUZZ_CHECK(shmk_array_unlock(a) == 0);
	free(tmp);
}

static void use_event(struct shmk_event *e)
{
	FUZZ_RC(shmk_event_wait(e, 0), -EAGAIN, -EPIPE);
	FUZZ_CHECK(shmk_event_set(e) == 0);
	FUZZ_RC(shmk_event_wait(e, 0), -EAGAIN, -EPIPE);
	FUZZ_CHECK(shmk_event_reset(e) == 0);
}

/* A message handed out lies inside one node of the mapping. */
static void msg_inside(struct shmk_ring *q, const struct shmk_msg *m)
{
	struct shmk__region *r = shmk__ring_region(q);
	const char *lo = (const char *)r->hdr, *hi = lo + r->size;
	const char *d = m->data;

	FUZZ_CHECK(d >= lo + SHMK__HDR_SIZE && d < hi);
	FUZZ_CHECK(m->len <= shmk_ring_node_size(q));
	FUZZ_CHECK(m->len <= (size_t)(hi - d));
}

static void use_ring(struct shmk_ring *q)
{
	struct shmk_ring_stats st;
	struct shmk_msg m;
	uint8_t tmp[256] = {7};
	ssize_t n;
	int rc;

	rc = shmk_ring_write(q, tmp, 1, 0);
	FUZZ_RC(rc, -EAGAIN, -EPIPE, -EBADMSG);
	n = shmk_ring_read(q, tmp, sizeof(tmp), 0);
	FUZZ_RC(n, -EAGAIN, -EPIPE, -EBADMSG, -EMSGSIZE);
	FUZZ_CHECK(n <= (ssize_t)sizeof(tmp));
	rc = shmk_ring_acquire(q, &m, 0);
	FUZZ_RC(rc, -EAGAIN, -EPIPE, -EBADMSG);
	if (rc == 0) {
		msg_inside(q, &m);
		if (m.len)
			memcpy(tmp, m.data, m.len < 256 ? m.len : 256);
		FUZZ_CHECK(shmk_ring_release(q, &m) == 0);
	}
	rc = shmk_ring_reserve(q, &m, 0);
	FUZZ_RC(rc, -EAGAIN, -EPIPE, -EBADMSG);
	if (rc == 0) {
		msg_inside(q, &m);
		FUZZ_CHECK(m.len == shmk_ring_node_size(q));
		FUZZ_CHECK(shmk_ring_abort(q, &m) == 0);
	}
	FUZZ_CHECK(shmk_ring_stats(q, &st) == 0);
	FUZZ_CHECK(st.nodes == shmk_ring_nodes(q));
}

/* The rpc header as docs/format.md (5.6) lays it out. */
#define RPC_SERVER  0x400
#define RPC_SLOTS   0x4c0
#define RPC_SLOT_SZ 48
#define RPC_NSLOTS  48
#define RPC_CLIENT  0x10
#define PART0_GEN   0x1000

static uint64_t img_u64(const uint8_t *img, size_t n, size_t off)
{
	uint64_t v = 0;

	if (off + 8 <= n)
		memcpy(&v, img + off, 8);
	return v;
}

/*
 * A client waits up to a second for a server that names no owner yet,
 * that looks alive (our own slot: we are the only process attached), or
 * whose connect slots are all taken: correct, but a second per input.
 * Those inputs are left out.
 */
static int connect_fast(const uint8_t *img, size_t n)
{
	uint64_t srv = img_u64(img, n, RPC_SERVER);
	uint32_t gen = (uint32_t)img_u64(img, n, PART0_GEN) + 1;
	int i;

	if (!srv || (srv >> 32 == 1 && (uint32_t)srv == (gen ? gen : 1)))
		return 0;
	for (i = 0; i < RPC_NSLOTS; i++)
		if (!img_u64(img, n, RPC_SLOTS + i * RPC_SLOT_SZ + RPC_CLIENT))
			return 1;
	return 0;
}

static void open_kind(int kind, int fd, int by_fd, const struct shmk_opts *o,
		      size_t es, size_t flen)
{
	int rc;

	switch (kind) {
	case SHMK_KIND_BUFFER: {
		struct shmk_buffer *b;

		rc = by_fd ? shmk_buffer_open_fd(fd, o, &b)
			   : shmk_buffer_open(name, o, &b);
		FUZZ_RC(rc, OPEN_ERRS);
		if (!rc) {
			use_buffer(b, flen);
			shmk_buffer_close(b);
		}
		break;
	}
	case SHMK_KIND_ARRAY: {
		struct shmk_array *a;

		rc = by_fd ? shmk_array_open_fd(fd, es, o, &a)
			   : shmk_array_open(name, es, o, &a);
		FUZZ_RC(rc, OPEN_ERRS, -EINVAL);
		if (!rc) {
			FUZZ_CHECK(shmk_array_elem_size(a) == es);
			use_array(a, flen);
			shmk_array_close(a);
		}
		break;
	}
	case SHMK_KIND_EVENT: {
		struct shmk_event *e;

		rc = by_fd ? shmk_event_open_fd(fd, o, &e)
			   : shmk_event_open(name, o, &e);
		FUZZ_RC(rc, OPEN_ERRS);
		if (!rc) {
			FUZZ_CHECK(flen == SHMK__HDR_SIZE);
			use_event(e);
			shmk_event_close(e);
		}
		break;
	}
	case SHMK_KIND_RING: {
		struct shmk_ring *q;

		rc = by_fd ? shmk_ring_open_fd(fd, o, &q)
			   : shmk_ring_open(name, o, &q);
		FUZZ_RC(rc, OPEN_ERRS);
		if (!rc) {
			FUZZ_CHECK(shmk__ring_region(q)->size == flen);
			use_ring(q);
			shmk_ring_close(q);
		}
		break;
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int inited;
	struct fuzz_in in = {data, size};
	struct shmk_opts o = {.spin_us = -1};
	struct shmk_stat st;
	uint8_t sel, how;
	size_t flen, es;
	int fd, kind;

	if (!inited) {
		init();
		inited = 1;
	}
	sel = fuzz_u8(&in);
	how = fuzz_u8(&in);
	flen = fuzz_u32(&in) % (MAX_FILE + 1);
	fd = make_file(in.p, in.left, flen);
	if (fd < 0)
		return 0;
	if (how & 2)
		o.flags |= SHMK_F_ALLOW_SHARED;
	/* The element size the opener expects: the header's, or a byte. */
	es = (how & 4) ? (size_t)img_u64(in.p, in.left, 0x18) : how >> 4;

	switch (sel % 8) {
	case 0:
	case 1:
	case 2:
	case 3:
		open_kind(sel % 8 + 1, fd, how & 1, &o, es, flen);
		break;
	case 4:
		if (connect_fast(in.p, in.left)) {
			struct shmk_rpc_opts ro = {.spin_us = -1};
			struct shmk_rpc *c;
			int rc = shmk_rpc_connect(name, &ro, &c);

			/* No server answers: it can only fail. */
			FUZZ_CHECK(rc < 0);
		}
		break;
	case 5:
		FUZZ_RC(shmk_stat(name, &st), OPEN_ERRS);
		break;
	default:
		for (kind = SHMK_KIND_BUFFER; kind <= SHMK_KIND_RING; kind++)
			open_kind(kind, fd, kind & 1, &o, es, flen);
		FUZZ_RC(shmk_stat(name, &st), OPEN_ERRS);
		break;
	}
	close(fd);
	return 0;
}
