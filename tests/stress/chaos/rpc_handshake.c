/* SPDX-License-Identifier: MIT */
/*
 * rpc_handshake.c - what the chaos found in the rpc server, each made once
 * on purpose before test_chaos's run: a server whose header was
 * scribbled on still removes its name; a forged refusal reads as a
 * corrupt answer, and a stopped server's connect ends at its deadline;
 * hostile handshakes (random, truncated and oversized hellos, hellos with
 * stray descriptors) are dropped without a leak.
 *
 * White-box: src/internal.h for shmk__rpc_answer_parse(), to parse a
 * forged refusal as a client does, and through rpc_peer.h for
 * shmk__region_peek(), to reach the server's socket without a connect.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "harness.h"
#include "internal.h"
#include "rpc_peer.h"

static unsigned char *map_name(const char *name, size_t len)
{
	char path[256];
	void *m;
	int fd;

	shm_path(path, sizeof(path), name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	close(fd);
	return m;
}

/* A server whose header a peer scribbled on still removes its name when
 * it closes (shmk_unlink() refused the wrong magic, so the name stayed
 * and the next shmk_rpc_serve() of it failed with -EADDRINUSE). */
void test_scribbled_server(void)
{
	struct shmk_rpc *s;
	unsigned char *m;
	char path[256];

	CHECK_OK(shmk_rpc_serve(n_fixed, &csrv_opts, &s));
	m = map_name(n_fixed, HDR_SIZE);
	store(&(struct target){.map = m}, O_MAGIC, 4, 0);
	munmap(m, HDR_SIZE);
	CHECK_OK(shmk_rpc_close(s));
	shm_path(path, sizeof(path), n_fixed);
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);
	CHECK_OK(shmk_rpc_serve(n_fixed, &csrv_opts, &s));
	CHECK_OK(shmk_rpc_close(s));
}

static int stopped_server(void *arg)
{
	struct shmk_rpc *s;

	(void)arg;
	CHECK_OK(shmk_rpc_serve(n_fixed, &csrv_opts, &s));
	for (;;)
		pause();
}

/* A refusal as the handshake carries it (docs/format.md 5.6.2). */
static int parse_refusal(int32_t why)
{
	uint32_t w[12] = {0x48524b53u, 1u | (3u << 16), (uint32_t)why};
	struct shmk__rpc_answer a;

	return shmk__rpc_answer_parse(w, sizeof(w), 0, &a);
}

/* A refusal's code is the server's to give: a forged one that no server
 * gives reads as a corrupt answer (it used to come back from connect as
 * is: -EINVAL, as if the caller's arguments were wrong). */
void test_forged_refusal(void)
{
	struct shmk_rpc_opts o = {.wait_ms = 300};
	static const int forged[][2] = {
		{-EINVAL, -EPROTO}, {-ENOSPC, -ENOSPC},	  {-EUSERS, -EUSERS},
		{-4096, -EPROTO},   {INT32_MIN, -EPROTO}, {0, -EPROTO}};
	struct shmk_rpc *c;
	struct shmk_stat st;
	pid_t srv;
	size_t i;
	int status;

	for (i = 0; i < sizeof(forged) / sizeof(forged[0]); i++)
		CHECK_EQ(parse_refusal(forged[i][0]), forged[i][1]);
	/* A stopped server: the kernel takes the connection, nobody
	 * answers; the connect gives up at its deadline. */
	srv = spawn(stopped_server, NULL);
	while (shmk_stat(n_fixed, &st) != 0 || st.nalive < 1)
		sleep_ms(1);
	kill(srv, SIGSTOP);
	CHECK(waitpid(srv, &status, WUNTRACED) == srv && WIFSTOPPED(status));
	CHECK_RC(shmk_rpc_connect(n_fixed, &o, &c), -ETIMEDOUT);
	kill(srv, SIGKILL);
	CHECK_EQ(wait_child(srv, 5000), 128 + SIGKILL);
	CHECK_OK(shmk_unlink(n_fixed));
}

/* The server's socket, as a hostile client reaches it. */
static int raw_connect(const char *name)
{
	int s = rpc_raw_connect(name);

	CHECK(s >= 0);
	return s;
}

/*
 * The hostile peer on the handshake: random bytes, truncated and
 * oversized hellos, a hello with descriptors attached (the server's
 * /dev/null, a socket), many at once: each is dropped, the server's
 * descriptors are where they were, and an honest client connects.
 */
void test_hostile_handshake(void)
{
	struct shmk_rpc_opts o = {.wait_ms = 5000};
	struct shmk_rpc *s, *c;
	struct shmk_rpc_stats st;
	int i, fds0;

	CHECK_OK(shmk_rpc_serve(n_fixed, &csrv_opts, &s));
	CHECK_OK(shmk_rpc_connect(n_fixed, &o, &c)); /* warm */
	CHECK_OK(shmk_rpc_close(c));
	sleep_ms(50);
	fds0 = count_fds();
	for (i = 0; i < 400; i++) {
		uint32_t w[16];
		int k, sk = raw_connect(n_fixed);
		size_t len;

		for (k = 0; k < 16; k++)
			w[k] = (uint32_t)rnd();
		/* A true hello's words, mostly, each time with one thing
		 * wrong: a nonzero reserved word, or a pid not ours. */
		w[2] = (uint32_t)getpid() + (i % 8 == 1);
		if (i % 4 != 0) {
			w[0] = 0x48524b53u;
			w[1] = 1u | (1u << 16);
			w[3] = i % 8 == 1 ? 0 : w[3] | 1;
		}
		len = i % 5 == 0   ? rnd() % 64
		      : i % 5 == 1 ? 15
		      : i % 5 == 2 ? 17
				   : 16;
		if (i % 3 == 0) {
			/* With descriptors nobody asked for. */
			union {
				struct cmsghdr h;
				char b[CMSG_SPACE(sizeof(int) * 2)];
			} u;
			int pass[2] = {open("/dev/null", O_RDONLY | O_CLOEXEC),
				       sk};
			struct iovec iov = {w, len};
			struct msghdr mh = {.msg_iov = &iov,
					    .msg_iovlen = 1,
					    .msg_control = u.b,
					    .msg_controllen = sizeof(u.b)};
			struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(pass));
			memcpy(CMSG_DATA(cm), pass, sizeof(pass));
			(void)sendmsg(sk, &mh, MSG_NOSIGNAL);
			close(pass[0]);
		} else {
			(void)send(sk, w, len, MSG_NOSIGNAL);
		}
		if (i % 7 == 0)
			sleep_ms(1);
		close(sk);
	}
	CHECK_OK(shmk_rpc_connect(n_fixed, &o, &c));
	{
		char rep[8];
		struct shmk_rpc_result res;

		CHECK_OK(shmk_rpc_call(c, "abc", 3, rep, sizeof(rep), &res,
				       5000));
	}
	CHECK_OK(shmk_rpc_close(c));
	CHECK_OK(shmk_rpc_stats(s, &st));
	CHECK_EQ(st.connects, 2);
	/* The server's threads let go of the last hellos and of the honest
	 * client's channel on their own time (on a loaded machine, seconds):
	 * a leak is what is still there after 10 s. */
	for (i = 0; i < 1000 && count_fds() != fds0; i++)
		sleep_ms(10);
	CHECK_EQ(count_fds(), fds0);
	CHECK_OK(shmk_rpc_close(s));
	printf("  hostile handshakes: 400 bad hellos (random, truncated, "
	       "oversized, with stray descriptors) dropped; the server's "
	       "descriptors unchanged, an honest client served\n");
}
