/* SPDX-License-Identifier: MIT */
/*
 * test_rpc_hostile - an rpc server that serves other users holds against
 * hostile clients: nobody can reach a channel's memory by name or shrink
 * it, nobody but the server can write its object, a client cannot lie
 * about who it is, cannot make the server grow (10,000 hostile connects
 * leave its threads, descriptors and memory where they were), meets the
 * per-process and per-user bounds (a client that takes its channel and
 * never speaks stays counted; one not allowed is refused before it says
 * anything), and either side's death is seen fast.  A child of fork()
 * that closes the server's inherited handle leaves the parent's server
 * serving, and idle.
 *
 * The server runs in this process (its threads, descriptors and RSS are
 * measured from /proc/self); clients are children that drop to other
 * uids with setresuid, so the test needs root: skipped (77) otherwise.
 *
 * White-box: src/internal.h for SHMK__RPC_ANSWER_SIZE, the size of the
 * server's answer to a hello, and through rpc_peer.h shmk__region_peek()
 * (the server's nonce, which names its socket): the clients speak the
 * handshake by hand, as a hostile one would.
 */
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "check.h"
#include "internal.h"
#include "rpc_peer.h"

#define OTHER  65533
#define VICTIM 65534 /* nobody */

static const char *g_name;

static int echo(void *arg, struct shmk_rpc_req *rq)
{
	(void)arg;
	if (rq->len == 4 && !memcmp(rq->data, "slow", 4))
		sleep_ms(3000);
	rq->reply = rq->data;
	rq->reply_len = rq->len;
	return 0;
}

static struct shmk_rpc *serve_opts(struct shmk_rpc_opts *so)
{
	struct shmk_rpc *s;

	so->handler = echo;
	if (!so->mode)
		so->mode = 0666;
	CHECK_OK(shmk_rpc_serve(g_name, so, &s));
	return s;
}

static struct shmk_rpc *client(void)
{
	struct shmk_rpc_opts co = {.wait_ms = 5000,
				   .flags = SHMK_F_ALLOW_SHARED};
	struct shmk_rpc *c;

	CHECK_OK(shmk_rpc_connect(g_name, &co, &c));
	return c;
}

static void call_ok(struct shmk_rpc *c, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		char rep[16];
		struct shmk_rpc_result res;

		CHECK_OK(shmk_rpc_call(c, "ping", 4, rep, sizeof(rep), &res,
				       5000));
		CHECK_EQ(res.len, 4);
		CHECK(!memcmp(rep, "ping", 4));
	}
}

static int nthreads(void)
{
	return count_dir("/proc/self/task");
}

static long rss_kib(void)
{
	long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	CHECK(f != NULL);
	CHECK_EQ(fscanf(f, "%ld %ld", &size, &res), 2);
	fclose(f);
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static uint64_t nclients(struct shmk_rpc *s)
{
	struct shmk_rpc_stats st;

	CHECK_OK(shmk_rpc_stats(s, &st));
	return st.clients;
}

/* Waits up to ms for the server to be back at its baseline. */
static int settle(struct shmk_rpc *s, uint64_t chans, int threads, int fds,
		  int ms)
{
	uint64_t end = check_now_ms() + (uint64_t)ms;

	while (check_now_ms() < end) {
		if (nclients(s) == chans && nthreads() == threads &&
		    count_fds() == fds)
			return 1;
		sleep_ms(10);
	}
	fprintf(stderr,
		"not settled: %llu channels (%llu), %d threads (%d), "
		"%d fds (%d)\n",
		(unsigned long long)nclients(s), (unsigned long long)chans,
		nthreads(), threads, count_fds(), fds);
	return 0;
}

/* The server's quiet state: no channel, and thread and descriptor counts
 * that held still for 200 ms (a closed channel's reader takes a moment
 * to go). */
static void baseline(struct shmk_rpc *s, int *threads, int *fds)
{
	uint64_t end = check_now_ms() + 5000, still = check_now_ms();
	int t = nthreads(), f = count_fds();

	while (check_now_ms() - still < 200) {
		CHECK(check_now_ms() < end);
		sleep_ms(10);
		if (nclients(s) != 0 || nthreads() != t || count_fds() != f) {
			t = nthreads();
			f = count_fds();
			still = check_now_ms();
		}
	}
	*threads = t;
	*fds = f;
}

/* ---------------------------------------------------------------------
 * A hand-made client: the handshake spoken byte by byte
 * --------------------------------------------------------------------- */

/* Connects to the server's socket as a client would: its address comes
 * from the object's nonce, read without mapping anything. */
static int raw_connect(void)
{
	return rpc_raw_connect(g_name);
}

static void send_hello(int s, uint32_t pid)
{
	uint32_t w[4] = {0x48524b53u, 1u | (1u << 16), pid, 0};

	(void)send(s, w, sizeof(w), MSG_NOSIGNAL);
}

/* Reads the server's answer: its length, and closes any descriptors;
 * 0 when the server closed without one. */
static ssize_t recv_answer(int s, int *status, int *nfds)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 4)];
	} u;
	char buf[128];
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.b,
			    .msg_controllen = sizeof(u.b)};
	struct pollfd p = {.fd = s, .events = POLLIN};
	struct cmsghdr *c;
	ssize_t n;

	*nfds = 0;
	*status = 0;
	if (poll(&p, 1, 3000) <= 0)
		return -ETIMEDOUT;
	n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_type == SCM_RIGHTS) {
			int k, nf = (int)((c->cmsg_len - CMSG_LEN(0)) /
					  sizeof(int));

			for (k = 0; k < nf; k++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + k * sizeof(int),
				       sizeof(fd));
				close(fd);
				(*nfds)++;
			}
		}
	if (n >= 12)
		memcpy(status, buf + 8, sizeof(*status));
	return n;
}

/* ---------------------------------------------------------------------
 * a. No channel ring has a name; a received ring cannot be shrunk
 * --------------------------------------------------------------------- */

/* Files named after the server's object, the object itself aside: the
 * channel rings of the old scheme were NAME.<token>.q/.p. */
static int channel_files(int try_truncate)
{
	char name[256], dir[4096], prefix[256], path[4096 + 256];
	struct dirent *e;
	int n = 0;
	DIR *d;

	/* A scan, not shmk_list(): files that must not exist, of any type. */
	snprintf(name, sizeof(name), "%s.", g_name);
	CHECK_OK(check_shm_entry(name, dir, sizeof(dir), prefix,
				 sizeof(prefix)));
	d = opendir(dir);
	CHECK(d != NULL);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix))) {
			int fd;

			n++;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
			if (fd >= 0 && try_truncate)
				(void)ftruncate(fd, 0);
			if (fd >= 0)
				close(fd);
		}
	closedir(d);
	return n;
}

static int watcher(void *arg)
{
	uint64_t end = check_now_ms() + 1500;
	int found = 0;

	(void)arg;
	check_become(VICTIM);
	while (check_now_ms() < end)
		found += channel_files(1);
	return found ? 1 : 0;
}

/*
 * The descriptors of this process that are memfds of shmk rings and not
 * in skip[0..nskip) (a child inherits its parent's: the honest client's
 * and the server's rings must not be taken for its own).
 */
static int ring_fds(int *fds, int max, const int *skip, int nskip)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	CHECK(d != NULL);
	while ((e = readdir(d)) && n < max) {
		char p[300], link[256];
		ssize_t l;

		snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
		l = readlink(p, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
		link[l] = 0;
		if (!strncmp(link, "/memfd:shmk.ring", 16)) {
			int fd = atoi(e->d_name), k;

			for (k = 0; k < nskip && skip[k] != fd; k++)
				;
			if (k == nskip)
				fds[n++] = fd;
		}
	}
	closedir(d);
	return n;
}

static int shrinker(void *arg)
{
	struct shmk_rpc *c;
	int fds[16], old[64], nold, n, i;

	(void)arg;
	check_become(VICTIM);
	nold = ring_fds(old, 64, NULL, 0);
	c = client();
	call_ok(c, 3);
	CHECK_EQ(channel_files(0), 0);
	n = ring_fds(fds, 16, old, nold);
	CHECK_EQ(n, 2);
	for (i = 0; i < n; i++) {
		struct stat st;

		CHECK_OK(fstat(fds[i], &st));
		CHECK_EQ(ftruncate(fds[i], 0), -1);
		CHECK_EQ(errno, EPERM);
		CHECK_EQ(ftruncate(fds[i], st.st_size / 2), -1);
		CHECK_EQ(errno, EPERM);
	}
	call_ok(c, 3);
	CHECK_OK(shmk_rpc_close(c));
	printf("  a. %d ring descriptors held by a client of uid %d: "
	       "ftruncate gives EPERM on each\n",
	       n, VICTIM);
	return 0;
}

static void test_no_names(void)
{
	struct shmk_rpc_opts so = {0};
	struct shmk_rpc *s = serve_opts(&so), *honest;
	pid_t w = spawn(watcher, NULL), sh;

	sleep_ms(50);
	sh = spawn(shrinker, NULL);
	CHECK_EQ(wait_child(sh, 30000), 0);
	CHECK_EQ(wait_child(w, 30000), 0);
	honest = client();
	call_ok(honest, 10);
	CHECK_OK(shmk_rpc_close(honest));
	CHECK_OK(shmk_rpc_close(s));
	printf("  a. a watcher of uid %d found no channel file in /dev/shm; "
	       "the server kept serving\n",
	       VICTIM);
}

/* ---------------------------------------------------------------------
 * b. The object is not writable by clients; a scribbled channel hurts
 *    only itself
 * --------------------------------------------------------------------- */

static int scribbler(void *arg)
{
	char path[256];
	struct shmk_rpc *c;
	int fds[16], old[64], nold, n, i, k;
	uint64_t x = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;

	(void)arg;
	check_become(VICTIM);
	CHECK_OK(shmk_path(g_name, path, sizeof(path)));
	CHECK_EQ(open(path, O_RDWR | O_CLOEXEC), -1);
	CHECK_EQ(errno, EACCES);
	nold = ring_fds(old, 64, NULL, 0);
	c = client();
	call_ok(c, 2);
	n = ring_fds(fds, 16, old, nold);
	CHECK_EQ(n, 2);
	for (i = 0; i < n; i++) {
		struct stat st;
		uint64_t *m;

		CHECK_OK(fstat(fds[i], &st));
		m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, fds[i], 0);
		CHECK(m != MAP_FAILED);
		for (k = 0; k < 20000; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			m[(x >> 20) % ((size_t)st.st_size / 8)] =
				k % 3	? x
				: k % 2 ? UINT64_MAX
					: 0;
		}
		munmap(m, (size_t)st.st_size);
	}
	/* Whatever our own calls do now, they return. */
	for (k = 0; k < 5; k++) {
		char rep[16];
		struct shmk_rpc_result res;

		(void)shmk_rpc_call(c, "ping", 4, rep, sizeof(rep), &res, 200);
	}
	shmk_rpc_close(c);
	return 0;
}

static void test_scribble(void)
{
	struct shmk_rpc_opts so = {0};
	struct shmk_rpc *s = serve_opts(&so), *honest;
	struct stat st;
	char path[256];
	pid_t p;

	CHECK_OK(shmk_path(g_name, path, sizeof(path)));
	CHECK_OK(stat(path, &st));
	CHECK_EQ(st.st_mode & 0777, 0644);
	honest = client();
	p = spawn(scribbler, NULL);
	CHECK_EQ(wait_child(p, 60000), 0);
	call_ok(honest, 100);
	CHECK_OK(shmk_rpc_close(honest));
	CHECK_OK(shmk_rpc_close(s));
	printf("  b. the object is mode 0644 (open O_RDWR by uid %d: EACCES); "
	       "a client that scribbled over both its rings did not stop an "
	       "honest one\n",
	       VICTIM);
}

/* ---------------------------------------------------------------------
 * c. A false pid is refused, and nothing of it stays
 * --------------------------------------------------------------------- */

static int liar(void *arg)
{
	int s, st, nf, i;

	(void)arg;
	check_become(VICTIM);
	for (i = 0; i < 20; i++) {
		s = raw_connect();
		CHECK(s >= 0);
		send_hello(s, (uint32_t)getpid() + 1 + (uint32_t)i);
		/* Refused in words (-EACCES), with no descriptor, then
		 * closed. */
		CHECK_EQ(recv_answer(s, &st, &nf), SHMK__RPC_ANSWER_SIZE);
		CHECK_EQ(st, -EACCES);
		CHECK_EQ(nf, 0);
		CHECK_EQ(recv_answer(s, &st, &nf), 0);
		close(s);
	}
	return 0;
}

static void test_liar(void)
{
	struct shmk_rpc_opts so = {0};
	struct shmk_rpc *s = serve_opts(&so), *c;
	struct shmk_stat ost;
	int threads, fds;
	pid_t p;

	c = client(); /* warm: the first connect's one-time costs */
	CHECK_OK(shmk_rpc_close(c));
	baseline(s, &threads, &fds);
	p = spawn(liar, NULL);
	CHECK_EQ(wait_child(p, 30000), 0);
	CHECK(settle(s, 0, threads, fds, 1000));
	CHECK_OK(shmk_stat(g_name, &ost));
	CHECK(ost.counter[13] >= 20); /* refused */
	CHECK_EQ(ost.counter[12], 1); /* connects: the warm one only */
	CHECK_OK(shmk_rpc_close(s));
	printf("  c. 20 hellos with a false pid refused; channels 0, threads "
	       "%d, fds %d as before\n",
	       threads, fds);
}

/* ---------------------------------------------------------------------
 * d. 10,000 hostile connects leave the server as it was
 * --------------------------------------------------------------------- */

#define FLOOD_PROCS 4
#define FLOOD_EACH  2500

static int flooder(void *arg)
{
	int held[6], nheld = 0, i;
	uint64_t seed = (uint64_t)(uintptr_t)arg;

	check_become(VICTIM);
	for (i = 0; i < FLOOD_EACH; i++) {
		int s = raw_connect(), st, nf;

		if (s < 0) {
			sleep_ms(1); /* backlog full, or a refusal */
			continue;
		}
		switch ((i + (int)seed) % 4) {
		case 0: /* connect and close at once */
			close(s);
			break;
		case 1: /* connect and never say hello: held a while */
			if (nheld == 6) {
				close(held[0]);
				memmove(held, held + 1, 5 * sizeof(int));
				nheld--;
			}
			held[nheld++] = s;
			break;
		case 2: /* lie */
			send_hello(s, (uint32_t)getpid() ^ 0x40000000u);
			close(s);
			break;
		default: /* a whole handshake, then nothing: exit */
			send_hello(s, (uint32_t)getpid());
			(void)recv_answer(s, &st, &nf);
			close(s);
			break;
		}
		if (i % 500 == 499) {
			/* A process that dies right after its handshake. */
			pid_t k = fork();

			if (k == 0) {
				int t = raw_connect();

				if (t >= 0) {
					send_hello(t, (uint32_t)getpid());
					(void)recv_answer(t, &st, &nf);
				}
				_exit(0);
			}
			if (k > 0)
				waitpid(k, NULL, 0);
		}
	}
	while (nheld > 0)
		close(held[--nheld]);
	return 0;
}

static void test_flood(void)
{
	struct shmk_rpc_opts so = {0};
	struct shmk_rpc *s = serve_opts(&so), *c;
	struct shmk_stat ost;
	pid_t p[FLOOD_PROCS];
	int threads, fds, i;
	long rss0, rss1;
	uint64_t t0;

	c = client();
	call_ok(c, 10);
	CHECK_OK(shmk_rpc_close(c));
	baseline(s, &threads, &fds);
	rss0 = rss_kib();
	t0 = check_now_ms();
	for (i = 0; i < FLOOD_PROCS; i++)
		p[i] = spawn(flooder, (void *)(uintptr_t)i);
	/* An honest client is served during the flood. */
	c = client();
	call_ok(c, 20);
	for (i = 0; i < FLOOD_PROCS; i++)
		CHECK_EQ(wait_child(p[i], 240000), 0);
	call_ok(c, 20);
	CHECK_OK(shmk_rpc_close(c));
	/* Settled: exactly the baseline's threads and descriptors, and no
	 * channel; memory within 8 MiB (malloc keeps some of what it
	 * had). */
	CHECK(settle(s, 0, threads, fds, 5000));
	rss1 = rss_kib();
	CHECK_OK(shmk_stat(g_name, &ost));
	printf("  d. %d hostile connects in %llu ms (%llu channels made, "
	       "%llu refused or dropped): threads %d -> %d, fds %d -> %d, "
	       "RSS %ld -> %ld KiB\n",
	       FLOOD_PROCS * FLOOD_EACH,
	       (unsigned long long)(check_now_ms() - t0),
	       (unsigned long long)ost.counter[12],
	       (unsigned long long)ost.counter[13], threads, nthreads(), fds,
	       count_fds(), rss0, rss1);
	CHECK(CHECK_ASAN || rss1 - rss0 <= 8 * 1024);
	c = client();
	call_ok(c, 10);
	CHECK_OK(shmk_rpc_close(c));
	CHECK_OK(shmk_rpc_close(s));
}

/* ---------------------------------------------------------------------
 * e. The per-process bound
 * --------------------------------------------------------------------- */

#define PER_PID 4

static int greedy(void *arg)
{
	struct shmk_rpc_opts co = {.wait_ms = 2000,
				   .flags = SHMK_F_ALLOW_SHARED};
	struct shmk_rpc *c[PER_PID + 2];
	int i;

	(void)arg;
	check_become(VICTIM);
	for (i = 0; i < PER_PID; i++)
		CHECK_OK(shmk_rpc_connect(g_name, &co, &c[i]));
	CHECK_RC(shmk_rpc_connect(g_name, &co, &c[PER_PID]), -EUSERS);
	CHECK_RC(shmk_rpc_connect(g_name, &co, &c[PER_PID + 1]), -EUSERS);
	call_ok(c[0], 2);
	/* Hold them while another process connects. */
	sleep_ms(1000);
	for (i = 0; i < PER_PID; i++)
		CHECK_OK(shmk_rpc_close(c[i]));
	return 0;
}

static void test_per_pid(void)
{
	struct shmk_rpc_opts so = {.max_per_pid = PER_PID};
	struct shmk_rpc *s = serve_opts(&so), *c;
	pid_t p = spawn(greedy, NULL);

	sleep_ms(300);
	c = client();
	call_ok(c, 5);
	CHECK_OK(shmk_rpc_close(c));
	CHECK_EQ(wait_child(p, 30000), 0);
	CHECK_OK(shmk_rpc_close(s));
	printf("  e. a process with %d channels gets -EUSERS for more; "
	       "another process still connects\n",
	       PER_PID);
}

/* ---------------------------------------------------------------------
 * f. Who may connect
 * --------------------------------------------------------------------- */

static int as_user(void *arg)
{
	uid_t uid = (uid_t)(uintptr_t)arg;
	struct shmk_rpc_opts co = {.wait_ms = 2000,
				   .flags = SHMK_F_ALLOW_SHARED};
	struct shmk_rpc *c;
	int rc;

	check_become(uid);
	rc = shmk_rpc_connect(g_name, &co, &c);
	if (rc == 0) {
		call_ok(c, 3);
		CHECK_OK(shmk_rpc_close(c));
	}
	return rc == 0 ? 0 : rc == -EACCES ? 13 : 1;
}

static void test_allow(void)
{
	uid_t allow[] = {OTHER};
	struct shmk_rpc_opts so = {.allow_uid = allow, .n_allow_uid = 1};
	struct shmk_rpc *s = serve_opts(&so);

	CHECK_EQ(wait_child(spawn(as_user, (void *)(uintptr_t)OTHER), 30000),
		 0);
	CHECK_EQ(wait_child(spawn(as_user, (void *)(uintptr_t)VICTIM), 30000),
		 13);
	CHECK_OK(shmk_rpc_close(s));
	/* Without lists, mode 0600: others may not. */
	so = (struct shmk_rpc_opts){.mode = 0644};
	s = serve_opts(&so);
	CHECK_EQ(wait_child(spawn(as_user, (void *)(uintptr_t)VICTIM), 30000),
		 0);
	CHECK_OK(shmk_rpc_close(s));
	so = (struct shmk_rpc_opts){.mode = 0640};
	s = serve_opts(&so);
	CHECK_EQ(wait_child(spawn(as_user, (void *)(uintptr_t)VICTIM), 30000),
		 13);
	CHECK_OK(shmk_rpc_close(s));
	printf("  f. allow_uid {%d}: uid %d connects, uid %d gets -EACCES; "
	       "mode 0644 lets others connect, 0640 not\n",
	       OTHER, OTHER, VICTIM);
}

/* ---------------------------------------------------------------------
 * g. Deaths are seen within a second
 * --------------------------------------------------------------------- */

static int server_child(void *arg)
{
	struct shmk_rpc_opts so = {0};
	struct shmk_rpc *s;

	(void)arg;
	s = serve_opts(&so);
	for (;;)
		sleep_ms(1000);
	shmk_rpc_close(s);
	return 0;
}

static int client_child(void *arg)
{
	struct shmk_rpc *c;

	(void)arg;
	check_become(VICTIM);
	c = client();
	call_ok(c, 2);
	for (;;)
		sleep_ms(1000);
	return 0;
}

static void test_deaths(void)
{
	pid_t srv = spawn(server_child, NULL), cl;
	struct shmk_rpc_opts so = {0};
	struct shmk_rpc_result res;
	struct shmk_rpc *c, *s;
	uint64_t id, t0, took1, took2;
	char rep[16];

	c = client();
	CHECK_OK(
		shmk_rpc_submit(c, 0, "slow", 4, rep, sizeof(rep), 10000, &id));
	sleep_ms(100);
	kill(srv, SIGKILL);
	t0 = check_now_ms();
	CHECK_OK(shmk_rpc_wait(c, id, &res, 5000));
	took1 = check_now_ms() - t0;
	CHECK_EQ(res.status, -EPIPE);
	CHECK(took1 < 1000);
	CHECK_EQ(wait_child(srv, 5000), 128 + SIGKILL);
	CHECK_OK(shmk_rpc_close(c));

	s = serve_opts(&so); /* takes the dead server's name over */
	cl = spawn(client_child, NULL);
	t0 = check_now_ms();
	while (nclients(s) != 1) {
		CHECK(check_now_ms() - t0 < 10000);
		sleep_ms(1);
	}
	sleep_ms(100);
	kill(cl, SIGKILL);
	t0 = check_now_ms();
	while (nclients(s) != 0) {
		CHECK(check_now_ms() - t0 < 1000);
		sleep_ms(1);
	}
	took2 = check_now_ms() - t0;
	CHECK_EQ(wait_child(cl, 5000), 128 + SIGKILL);
	CHECK_OK(shmk_rpc_close(s));
	printf("  g. a killed server: the pending call got -EPIPE after %llu "
	       "ms; a killed client's channel went after %llu ms\n",
	       (unsigned long long)took1, (unsigned long long)took2);
}

/*
 * e'. A mute client: it takes no part in its channel (it never reads the
 * answer, so the ring descriptors wait unread in its socket), and keeps
 * its places in the per-process limit for as long as it lives, also past
 * the 10 s an earlier version gave it: dropping it would leave its rings
 * alive and uncounted.
 */
static int mute(void *arg)
{
	int s[PER_PID + 1], st, nf, i;

	(void)arg;
	check_become(VICTIM);
	for (i = 0; i < PER_PID; i++) {
		s[i] = raw_connect();
		CHECK(s[i] >= 0);
		send_hello(s[i], (uint32_t)getpid());
	}
	sleep_ms(11000);
	s[PER_PID] = raw_connect();
	CHECK(s[PER_PID] >= 0);
	send_hello(s[PER_PID], (uint32_t)getpid());
	CHECK_EQ(recv_answer(s[PER_PID], &st, &nf), SHMK__RPC_ANSWER_SIZE);
	CHECK_EQ(st, -EUSERS);
	CHECK_EQ(nf, 0);
	for (i = 0; i <= PER_PID; i++)
		close(s[i]);
	return 0;
}

/* f'. Not allowed: refused before its hello, in words. */
static int early(void *arg)
{
	int s, st, nf;

	(void)arg;
	check_become(VICTIM);
	s = raw_connect();
	CHECK(s >= 0);
	CHECK_EQ(recv_answer(s, &st, &nf), SHMK__RPC_ANSWER_SIZE);
	CHECK_EQ(st, -EACCES);
	close(s);
	return 0;
}

static void test_mute(void)
{
	struct shmk_rpc_opts so = {.mode = 0666, .max_per_pid = PER_PID};
	struct shmk_rpc *s = serve_opts(&so);
	uid_t other = OTHER;

	CHECK_EQ(wait_child(spawn(mute, NULL), 60000), 0);
	CHECK_OK(shmk_rpc_close(s));
	/* Readable by all (0644), open to uid OTHER only. */
	so = (struct shmk_rpc_opts){
		.mode = 0644, .allow_uid = &other, .n_allow_uid = 1};
	s = serve_opts(&so);
	CHECK_EQ(wait_child(spawn(early, NULL), 30000), 0);
	CHECK_OK(shmk_rpc_close(s));
	printf("  e'. %d mute channels still count after 11 s (-EUSERS for "
	       "one more); a uid not allowed is refused before its hello\n",
	       PER_PID);
}

/* CPU time of this process so far, in ms. */
static long cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int forked_close(void *arg)
{
	return shmk_rpc_close(arg) == 0 ? 0 : 1;
}

/* h. A child of fork() closes the server's handle it inherited. */
static void test_fork_close(void)
{
	struct shmk_rpc_opts so = {0};
	struct shmk_rpc *s = serve_opts(&so), *c;
	long t0;

	c = client();
	call_ok(c, 3);
	CHECK_EQ(wait_child(spawn(forked_close, s), 10000), 0);
	/* The parent's acceptor is neither woken for good nor stopped. */
	t0 = cpu_ms();
	sleep_ms(500);
	CHECK(cpu_ms() - t0 < 100);
	call_ok(c, 3);
	CHECK_OK(shmk_rpc_close(c));
	c = client();
	call_ok(c, 3);
	CHECK_OK(shmk_rpc_close(c));
	CHECK_OK(shmk_rpc_close(s));
	printf("  h. a fork child's close of the server: the parent serves "
	       "on, idle\n");
}

int main(void)
{
	check_init();
	if (geteuid() != 0) {
		printf("test_rpc_hostile: skipped (needs root to play other "
		       "users)\n");
		return 77;
	}
	g_name = tname("hrpc");
	test_no_names();
	test_scribble();
	test_liar();
	test_per_pid();
	test_allow();
	test_mute();
	test_fork_close();
	test_deaths();
	test_flood();
	printf("test_rpc_hostile: ok\n");
	return 0;
}
