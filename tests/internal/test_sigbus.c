/* SPDX-License-Identifier: MIT */
/*
 * test_sigbus - the SIGBUS guard of named objects, as one user (no root):
 * a forked peer of the same user shrinks an object's file through its own
 * open() while this process has it mapped.
 *  a. a thread blocked in shmk_ring_read() on an empty ring whose file
 *     shrinks to 0 returns -EBADMSG within 2 s; the next calls do too and
 *     close succeeds; a node acquired before the shrink reads zeros;
 *  b. the bytes of shmk_buffer_data() past the new end read zeros, those
 *     before it keep their contents, no signal reaches the application,
 *     and every call on the buffer then fails with -EBADMSG; the same for
 *     a file object (a name with '/');
 *  c. a SIGBUS outside any shmk mapping still kills the process;
 *  d. an application handler installed before the first shmk object is
 *     chained to for a fault outside shmk's mappings;
 *  e. with more guarded mappings than the registry's first chunk holds,
 *     the last one is still found.
 *
 * Usage: test_sigbus
 *
 * White-box: src/internal.h for SHMK__HDR_SIZE, the header's size: files
 * are shrunk to the header alone or to a chosen page of their data.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "check.h"
#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static char *path_of(const char *name)
{
	static char path[256];

	CHECK_OK(shmk_path(name, path, sizeof(path)));
	return path;
}

/* The peer: shrinks the file through a description of its own. */
struct shrink {
	const char *name;
	off_t len;
};

static int shrinker(void *arg)
{
	const struct shrink *s = arg;
	int fd = open(path_of(s->name), O_RDWR | O_CLOEXEC);

	CHECK(fd >= 0);
	CHECK_OK(ftruncate(fd, s->len));
	close(fd);
	return 0;
}

static void shrink(const char *name, off_t len)
{
	struct shrink s = {name, len};

	CHECK_EQ(wait_child(spawn(shrinker, &s), 20000), 0);
}

/* Maps a fresh temporary file of two pages, then cuts it to nothing: the
 * returned memory faults with SIGBUS, and it is no shmk mapping. */
static volatile char *foreign_mapping(void)
{
	char path[] = "/tmp/test_sigbus.XXXXXX";
	long ps = sysconf(_SC_PAGESIZE);
	void *p;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	CHECK_OK(unlink(path));
	CHECK_OK(ftruncate(fd, 2 * ps));
	p = mmap(NULL, (size_t)(2 * ps), PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 0);
	CHECK(p != MAP_FAILED);
	CHECK_OK(ftruncate(fd, 0));
	close(fd);
	return p;
}

/* ---------------------------------------------------------------------
 * The application's own handler (d): counts, remembers the address and
 * jumps back out of the fault.
 * --------------------------------------------------------------------- */

static sigjmp_buf g_jmp;
static volatile sig_atomic_t g_app_calls, g_jump_ok;
static void *volatile g_app_addr;

static void app_handler(int sig, siginfo_t *si, void *uc)
{
	static const char msg[] = "SIGBUS reached the application\n";

	(void)sig;
	(void)uc;
	g_app_calls++;
	if (!g_jump_ok) {
		/* A fault in a shmk mapping must never get here. */
		CHECK_EQ(write(2, msg, sizeof(msg) - 1), sizeof(msg) - 1);
		_exit(1);
	}
	g_app_addr = si->si_addr;
	siglongjmp(g_jmp, 1);
}

static void install_app_handler(void)
{
	struct sigaction sa = {0};

	sa.sa_sigaction = app_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	CHECK_OK(sigaction(SIGBUS, &sa, NULL));
}

/* ---------------------------------------------------------------------
 * c. A foreign fault still kills
 * --------------------------------------------------------------------- */

static int foreign_child(void *arg)
{
	struct shmk_buffer *b;
	volatile char *p;

	(void)arg;
	/* A guard is installed and a shmk mapping is live: the handler
	 * runs and must find the address is not ours. */
	CHECK_OK(shmk_buffer_create(tname("foreign"), 4096, NULL, &b));
	p = foreign_mapping();
	p[100] = 1; /* SIGBUS: dies here */
	return 0;
}

static void test_foreign_kills(void)
{
	int st = wait_child(spawn(foreign_child, NULL), 20000);

	if (UNDER_ASAN) {
		/* The handler before ours is the sanitizer's, which reports
		 * the fault ("AddressSanitizer: BUS") and exits 1: chained,
		 * and the process died. */
		CHECK_EQ(st, 1);
		printf("c. foreign SIGBUS under ASan: its handler ran, "
		       "status %d\n",
		       st);
	} else {
		CHECK_EQ(st, 128 + SIGBUS);
		printf("c. foreign SIGBUS: the process died of it\n");
	}
	CHECK_OK(shmk_unlink(tname("foreign")));
}

/* ---------------------------------------------------------------------
 * d. A previous handler is chained
 * --------------------------------------------------------------------- */

static void test_chained(void)
{
	struct shmk_buffer *b;
	volatile char *p;

	/* main() installed app_handler before any shmk object. */
	CHECK_OK(shmk_buffer_create(tname("chain"), 4096, NULL, &b));
	p = foreign_mapping();
	g_app_calls = 0;
	g_jump_ok = 1;
	if (!sigsetjmp(g_jmp, 1))
		p[10] = 1;
	g_jump_ok = 0;
	CHECK_EQ(g_app_calls, 1);
	CHECK(g_app_addr == (void *)(p + 10));
	g_app_calls = 0;
	/* The guard is still there (the app handler did not replace it). */
	CHECK_OK(shmk_buffer_write(b, 0, "x", 1, -1));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(tname("chain")));
	munmap((void *)p, (size_t)(2 * sysconf(_SC_PAGESIZE)));
	printf("d. foreign SIGBUS: chained to the application's handler\n");
}

/* ---------------------------------------------------------------------
 * b. A buffer shrunk under its mapping
 * --------------------------------------------------------------------- */

static void buffer_case(const char *name)
{
	struct shmk_buffer *b;
	uint64_t version = 0;
	volatile unsigned char *d;
	int v = 99, w = -1;
	size_t i;

	CHECK_OK(shmk_buffer_create(name, 65536, NULL, &b));
	CHECK_OK(shmk_buffer_write(b, 10, &v, sizeof(v), -1));
	CHECK_OK(shmk_buffer_write(b, 60000, &v, sizeof(v), -1));
	d = shmk_buffer_data(b);
	CHECK(d != NULL);
	CHECK_EQ(d[60000], 99);
	/* A new end inside a page: the header and the first bytes stay. */
	shrink(name, SHMK__HDR_SIZE + 4096 + 100);
	for (i = 8192; i < 65536; i += 512)
		CHECK_EQ(d[i], 0); /* past the new end: zeros, no signal */
	CHECK_EQ(d[60000], 0);
	CHECK_EQ(d[10], 99); /* before it: still the file's bytes */
	CHECK_EQ(g_app_calls, 0);
	CHECK_RC(shmk_buffer_read(b, 10, &w, sizeof(w), -1), -EBADMSG);
	CHECK_RC(shmk_buffer_write(b, 10, &v, sizeof(v), -1), -EBADMSG);
	CHECK_RC(shmk_buffer_lock(b, SHMK_LOCK_READ, -1), -EBADMSG);
	CHECK_RC(shmk_buffer_wait(b, &version, 1000), -EBADMSG);
	CHECK(shmk_buffer_data(b) == NULL);
	/* Written after the cut: private, and still no signal. */
	d[60000] = 5;
	CHECK_EQ(d[60000], 5);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(unlink(path_of(name)));
}

static void test_buffer(void)
{
	char dir[] = "/tmp/test_sigbus.d.XXXXXX", file[128];

	buffer_case(tname("buf"));
	/* A file object gets the same guard. */
	CHECK(mkdtemp(dir) != NULL);
	snprintf(file, sizeof(file), "%s/obj", dir);
	buffer_case(file);
	CHECK_OK(rmdir(dir));
	printf("b. buffer shrunk: zeros past the end, -EBADMSG, closed "
	       "(named and file)\n");
}

/* ---------------------------------------------------------------------
 * a. A ring shrunk to nothing under a blocked reader
 * --------------------------------------------------------------------- */

struct blocked {
	struct shmk_ring *q;
	ssize_t rc;
	uint64_t done_ns;
};

static void *blocked_reader(void *arg)
{
	struct blocked *a = arg;
	char buf[64];

	a->rc = shmk_ring_read(a->q, buf, sizeof(buf), 30000);
	a->done_ns = check_now_ns();
	return NULL;
}

static void test_ring(void)
{
	struct blocked a = {0};
	struct shmk_ring *q;
	struct shmk_msg m;
	pthread_t t;
	uint64_t t0;
	size_t i;
	char buf[64];

	CHECK_OK(shmk_ring_create(tname("ring"), 8, 4096, NULL, &q));
	a.q = q;
	CHECK_OK(pthread_create(&t, NULL, blocked_reader, &a));
	sleep_ms(100); /* asleep on the empty ring */
	/* Before the shrink: the reader may be done before shrink()
	 * returns (it waits for the child that truncates). */
	t0 = check_now_ns();
	shrink(tname("ring"), 0);
	CHECK_OK(pthread_join(t, NULL));
	CHECK_RC(a.rc, -EBADMSG);
	printf("a. blocked ring read ended %.1f ms after the shrink began\n",
	       (double)(a.done_ns - t0) / 1e6);
	CHECK(a.done_ns - t0 < 2000000000u);
	CHECK_EQ(g_app_calls, 0);
	CHECK_RC(shmk_ring_write(q, "x", 1, -1), -EBADMSG);
	CHECK_RC(shmk_ring_read(q, buf, sizeof(buf), 0), -EBADMSG);
	CHECK_OK(shmk_ring_close(q));
	CHECK_OK(unlink(path_of(tname("ring"))));

	/* A node held when the file goes: it reads zeros, never faults. */
	CHECK_OK(shmk_ring_create(tname("ring2"), 8, 4096, NULL, &q));
	memset(buf, 'm', sizeof(buf));
	CHECK_OK(shmk_ring_write(q, buf, sizeof(buf), -1));
	CHECK_OK(shmk_ring_acquire(q, &m, -1));
	CHECK_EQ(m.len, sizeof(buf));
	CHECK_EQ(((volatile char *)m.data)[0], 'm');
	shrink(tname("ring2"), 0);
	for (i = 0; i < sizeof(buf); i++)
		CHECK_EQ(((volatile char *)m.data)[i], 0);
	CHECK_EQ(g_app_calls, 0);
	CHECK_RC(shmk_ring_release(q, &m), -EBADMSG);
	CHECK_RC(shmk_ring_read(q, buf, sizeof(buf), 0), -EBADMSG);
	CHECK_OK(shmk_ring_close(q));
	CHECK_OK(unlink(path_of(tname("ring2"))));
	printf("a. ring shrunk: -EBADMSG, a held node reads zeros, closed\n");
}

/* ---------------------------------------------------------------------
 * e. Past the registry's first chunk
 * --------------------------------------------------------------------- */

#define MANY 70 /* more than a chunk's 64 slots */

static void test_many(void)
{
	struct shmk_buffer *b[MANY];
	char tag[32];
	volatile unsigned char *d;
	int i, v = 7;

	for (i = 0; i < MANY; i++) {
		snprintf(tag, sizeof(tag), "many%d", i);
		CHECK_OK(shmk_buffer_create(tname(tag), 8192, NULL, &b[i]));
	}
	snprintf(tag, sizeof(tag), "many%d", MANY - 1);
	CHECK_OK(shmk_buffer_write(b[MANY - 1], 8000, &v, sizeof(v), -1));
	d = shmk_buffer_data(b[MANY - 1]);
	shrink(tname(tag), SHMK__HDR_SIZE);
	CHECK_EQ(d[8000], 0);
	CHECK_EQ(g_app_calls, 0);
	CHECK_RC(shmk_buffer_read(b[MANY - 1], 0, &v, sizeof(v), -1), -EBADMSG);
	CHECK_OK(shmk_buffer_read(b[0], 0, &v, sizeof(v), -1));
	for (i = 0; i < MANY; i++) {
		snprintf(tag, sizeof(tag), "many%d", i);
		CHECK_OK(shmk_buffer_close(b[i]));
		CHECK_OK(unlink(path_of(tname(tag))));
	}
	printf("e. %d guarded mappings: the last one's shrink is caught, "
	       "the others work\n",
	       MANY);
}

int main(void)
{
	check_init();
	/* Before any shmk object: the guard then chains to it (d). */
	test_foreign_kills();
	install_app_handler();
	test_chained();
	test_buffer();
	test_ring();
	test_many();
	printf("test_sigbus: ok\n");
	return 0;
}
