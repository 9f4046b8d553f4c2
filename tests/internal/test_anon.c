/* SPDX-License-Identifier: MIT */
/*
 * test_anon - anonymous buffers: no name anywhere, shared with another
 * process over a UNIX socket, sealed so that no peer can shrink them; and
 * the descriptor-passing helpers' errors.
 *
 * White-box: src/internal.h for SHMK__HDR_SIZE, the header's size,
 * to lay out by hand the image of a buffer a peer hands over in a memfd.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "check.h"
#include "internal.h"

static int g_sock[2];

static int child_receiver(void *arg)
{
	struct shmk_buffer *b;
	int fd, v = 0;

	(void)arg;
	close(g_sock[0]);
	fd = shmk_recv_fd(g_sock[1]);
	CHECK(fd >= 0);
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	CHECK_OK(shmk_buffer_open_fd(fd, NULL, &b));
	CHECK_EQ(shmk_buffer_size(b), 4096);
	CHECK_OK(shmk_buffer_read(b, 100, &v, sizeof(v), -1));
	CHECK_EQ(v, 1234);
	/* Sealed: nobody can shrink (or grow) it under its readers. */
	CHECK_EQ(ftruncate(fd, 0), -1);
	CHECK_EQ(errno, EPERM);
	CHECK_EQ(ftruncate(fd, 1 << 20), -1);
	close(fd); /* the handle has a description of its own */
	v = 4321;
	CHECK_OK(shmk_buffer_write(b, 200, &v, sizeof(v), -1));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_EQ(write(g_sock[1], "d", 1), 1);
	return 0;
}

static void test_share_over_socket(void)
{
	struct shmk_buffer *b;
	char link[256] = {0}, proc[64];
	pid_t pid;
	int v = 1234;
	char c;

	CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g_sock));
	/* The child exists before the buffer: it can only get it by fd. */
	pid = spawn(child_receiver, NULL);
	close(g_sock[1]);
	CHECK_OK(shmk_buffer_create(NULL, 4096, NULL, &b));
	/* No name anywhere: the memory is a memfd. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", shmk_buffer_fd(b));
	CHECK(readlink(proc, link, sizeof(link) - 1) > 0);
	CHECK(!strncmp(link, "/memfd:shmk.buffer", 18));
	CHECK_OK(shmk_buffer_write(b, 100, &v, sizeof(v), -1));
	CHECK_OK(shmk_send_fd(g_sock[0], shmk_buffer_fd(b)));
	CHECK_EQ(read(g_sock[0], &c, 1), 1);
	CHECK_EQ(wait_child(pid, 10000), 0);
	CHECK_OK(shmk_buffer_read(b, 200, &v, sizeof(v), -1));
	CHECK_EQ(v, 4321);
	CHECK_OK(shmk_buffer_close(b));
	close(g_sock[0]);
}

/*
 * A peer hands over a valid image in an unsealed memfd that others may
 * write: it could shrink the memory under us, so it is refused; sealed,
 * the same image is accepted from anyone.
 */
static void test_unsealed(void)
{
	const size_t len = SHMK__HDR_SIZE + 100;
	struct shmk_buffer *a, *b = NULL;
	void *img;
	int src, fd;

	CHECK_OK(shmk_buffer_create(NULL, 100, NULL, &a));
	src = shmk_buffer_fd(a);
	img = malloc(len);
	CHECK(img != NULL);
	CHECK_EQ(pread(src, img, len, 0), len);
	CHECK_OK(shmk_buffer_close(a));

	fd = memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, img, len), len);
	CHECK_OK(fchmod(fd, 0666));
	CHECK_RC(shmk_buffer_open_fd(fd, NULL, &b), -EACCES);
	CHECK(b == NULL);
	CHECK_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK));
	CHECK_OK(shmk_buffer_open_fd(fd, NULL, &b));
	CHECK_EQ(shmk_buffer_size(b), 100);
	CHECK_OK(shmk_buffer_close(b));
	/* Owned by us and private: trusted as a named object would be. */
	close(fd);
	fd = memfd_create("private", MFD_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, img, len), len);
	CHECK_OK(fchmod(fd, 0600));
	CHECK_OK(shmk_buffer_open_fd(fd, NULL, &b));
	CHECK_OK(shmk_buffer_close(b));
	close(fd);
	free(img);
}

static void test_fd_errors(void)
{
	char tmpl[] = "/tmp/shmk-anon-XXXXXX";
	struct shmk_buffer *b = NULL, *n;
	int s[2], fd;

	CHECK_RC(shmk_buffer_open_fd(-1, NULL, &b), -EBADF);
	CHECK_RC(shmk_buffer_open_fd(1000000, NULL, &b), -EBADF);
	CHECK(b == NULL);
	/* A file that is not an object. */
	fd = mkstemp(tmpl);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "hello", 5), 5);
	CHECK_RC(shmk_buffer_open_fd(fd, NULL, &b), -EPROTO);
	close(fd);
	unlink(tmpl);
	/* Not a regular file: refused before anything is opened. */
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_RC(shmk_buffer_open_fd(fd, NULL, &b), -EPROTO);
	close(fd);
	/* A named object's descriptor works as well. */
	CHECK_OK(shmk_buffer_create(tname("named"), 16, NULL, &n));
	CHECK_OK(shmk_buffer_open_fd(shmk_buffer_fd(n), NULL, &b));
	CHECK_EQ(shmk_buffer_size(b), 16);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_buffer_close(n));
	CHECK_OK(shmk_unlink(tname("named")));

	CHECK_RC(shmk_send_fd(-1, 0), -EBADF);
	CHECK_RC(shmk_recv_fd(-1), -EBADF);
	CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s));
	CHECK_RC(shmk_send_fd(s[0], -1), -EBADF);
	CHECK_EQ(write(s[0], "x", 1), 1); /* a message without a descriptor */
	CHECK_RC(shmk_recv_fd(s[1]), -EBADMSG);
	close(s[0]);
	CHECK_RC(shmk_recv_fd(s[1]), -EPIPE);
	close(s[1]);
}

int main(void)
{
	check_init();
	test_share_over_socket();
	test_unsealed();
	test_fd_errors();
	printf("test_anon: ok\n");
	return 0;
}
