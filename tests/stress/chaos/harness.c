/* SPDX-License-Identifier: MIT */
/*
 * harness.c - what test_chaos's processes share (harness.h): the book and
 * the names, random numbers, the check of every call on a victim, the
 * back-off after a victim could not be opened, and the messages.
 */
#include "harness.h"

struct book *book;

const char *n_vring, *n_vbuf, *n_varr, *n_vev, *n_vrpc;
const char *n_cring, *n_cbuf, *n_carr, *n_cping, *n_cpong, *n_crpc;
const char *n_vtopic, *n_vltopic, *n_ctopic, *n_cltopic;
const char *n_fixed;

const char *const kname[NK] = {"ring",	    "buffer", "array",
			       "event",	    "rpc",    "connect",
			       "open/stat", "topic",  "topic/lossy"};

static uint64_t rnd_state;

uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rnd_state += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

void rnd_seed(unsigned role)
{
	rnd_state = book->seed ^ ((uint64_t)role * 0x2545f4914f6cdd1du);
}

void sleep_us(unsigned us)
{
	struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* What a victim may answer (harness.h); the kinds' own lists are in
 * their files. */
const int ok_wait[] = {ETIMEDOUT, EAGAIN, EPIPE, 0};
const int ok_none[] = {0};
/* Opening a victim: between two epochs its name is missing (-ENOENT);
 * a forged INIT state makes the open wait for it (-ETIMEDOUT); a forged
 * header is refused. */
const int ok_open[] = {ENOENT, ETIMEDOUT, EPROTO, EBADMSG, 0};
const int ok_stat[] = {ENOENT, EPROTO, EBADMSG, 0};

/* When the call VICTIM() makes began. */
uint64_t vt0;

long victim(int kind, const char *what, long rc, const int *ok)
{
	int code = rc < 0 ? (int)-rc : 0;
	uint64_t ms = check_now_ms() - vt0, max;

	if (code) {
		const int *p;

		for (p = ok; *p && *p != code; p++)
			;
		if (!*p) {
			fprintf(stderr,
				"victim %s: %s returned %ld (%s): not an "
				"error this damage may give\n",
				kname[kind], what, rc, shmk_strerror((int)rc));
			exit(1);
		}
	}
	if (code < NCODE)
		atomic_fetch_add(&book->res[kind][code], 1);
	if (ms > 2000) /* worth a look: the machine may be that busy */
		fprintf(stderr, "victim %s: %s took %llu ms (%ld)\n",
			kname[kind], what, (unsigned long long)ms, rc);
	max = atomic_load(&book->max_ms[kind]);
	while (ms > max &&
	       !atomic_compare_exchange_weak(&book->max_ms[kind], &max, ms))
		;
	return rc;
}

int stopping(void)
{
	return atomic_load(&book->stop);
}

const struct shmk_opts wait_open = {.wait_ms = 50};

/* After a victim could not be opened the next try waits a little: an
 * honest program does not spin on a broken object either (and a dozen
 * that do would starve everyone else). */
static uint64_t retry_at;

int may_retry(void)
{
	return check_now_ms() >= retry_at;
}

void back_off(unsigned ms)
{
	retry_at = check_now_ms() + 1 + rnd() % ms;
}

static uint64_t checksum(const unsigned char *p, size_t n, uint64_t h)
{
	size_t j;

	for (j = 0; j < n; j++)
		h = (h ^ p[j]) * 1099511628211u;
	return h;
}

size_t build(unsigned char *buf, uint32_t w, uint64_t seq, size_t max)
{
	struct wire h = {.writer = w, .seq = seq};
	size_t j;

	h.len = (uint32_t)(seq % (max + 1));
	for (j = 0; j < h.len; j++)
		buf[WIRE + j] = (unsigned char)(w * 131u + seq * 7u + j);
	h.sum = checksum(buf + WIRE, h.len, 1469598103934665603u ^ seq ^ w);
	memcpy(buf, &h, WIRE);
	return WIRE + h.len;
}

int intact(const unsigned char *buf, size_t n, struct wire *h)
{
	if (n < WIRE)
		return 0;
	memcpy(h, buf, WIRE);
	return h->writer < NWRITERS && h->len == n - WIRE &&
	       h->sum == checksum(buf + WIRE, h->len,
				  1469598103934665603u ^ h->seq ^ h->writer);
}
