/* SPDX-License-Identifier: MIT */
/*
 * test_hostile - what a peer with only the access shmk grants it cannot do
 * to liveness, and what an owner can always do to its own names.  The test
 * runs as root and plays the hostile peer with a child that drops to
 * another uid (nobody):
 *  1. a process that may only read an object's file takes OFD read locks
 *     on every participant byte it can, and keeps taking them: a writer
 *     that died holding the buffer's lock is still found dead (the next
 *     locker gets -EOWNERDEAD), however quickly the forger grabs the dead
 *     holder's byte;
 *  2. shmk makes no object that others may read but not write (0644,
 *     0640, 0604: -EINVAL) and attaches to none (a file chmod'ed so behind
 *     its back: -EACCES, at once, never -EUSERS);
 *  3. the same forger on a dead rpc server's object: shmk_stat sees the
 *     creator dead, and a new server takes the name over;
 *  4. a name whose header was overwritten: shmk_unlink refuses it
 *     (-EPROTO), shmk_unlink_force removes it and the owner creates it
 *     again; another user's force removes nothing; a directory, a FIFO or
 *     a symlink at a name is never removed.
 * Skipped (77) when not run as root: playing two users needs it.
 *
 * White-box: src/internal.h for SHMK__MAX_PARTS and SHMK__LOCK_BYTE()
 * (the participant table's size and the bytes whose OFD locks say who
 * lives, which the forger read-locks) and shmk__ofd_held() (to see that
 * it holds the dead holder's byte).
 */
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/stat.h>

#include "check.h"
#include "internal.h"

#define FORGER 65534 /* nobody */

static char *path_of(const char *name)
{
	static char path[256];

	CHECK_OK(shmk_path(name, path, sizeof(path)));
	return path;
}

/* One byte's OFD read lock; 0 or -errno. */
static int read_lock(int fd, off_t byte)
{
	struct flock fl = {.l_type = F_RDLCK,
			   .l_whence = SEEK_SET,
			   .l_start = byte,
			   .l_len = 1};

	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/*
 * The forger: as nobody, opens the object read-only and for `ms` keeps
 * read-locking every participant byte it can get, so that whichever slot
 * frees up is its at once.  Writes one byte to ready[1] once it holds the
 * byte of slot `want` (the victim's), then goes on.  Exit 0; 2 if it
 * could not open the file (the test then fails).
 */
struct forger {
	const char *name;
	int want;
	int ms;
	int ready[2];
};

static int forger_main(void *arg)
{
	struct forger *f = arg;
	uint64_t end;
	int fd, k, told = 0;
	char got[SHMK__MAX_PARTS] = {0};

	close(f->ready[0]);
	check_become(FORGER);
	fd = open(path_of(f->name), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 2;
	/* Without write access there is no write lock to be had. */
	{
		struct flock fl = {.l_type = F_WRLCK,
				   .l_whence = SEEK_SET,
				   .l_start = 0x1000,
				   .l_len = 1};

		if (fcntl(fd, F_OFD_SETLK, &fl) == 0 || errno != EBADF)
			return 3;
	}
	end = check_now_ms() + (uint64_t)f->ms;
	while (check_now_ms() < end) {
		for (k = 0; k < SHMK__MAX_PARTS; k++)
			if (!got[k] && read_lock(fd, 0x1000 + k) == 0)
				got[k] = 1;
		if (!told && got[f->want]) {
			CHECK_EQ(write(f->ready[1], "r", 1), 1);
			told = 1;
		}
		usleep(200);
	}
	return 0;
}

static pid_t forger_start(struct forger *f, const char *name, int want, int ms)
{
	pid_t pid;

	f->name = name;
	f->want = want;
	f->ms = ms;
	CHECK_OK(pipe(f->ready));
	pid = spawn(forger_main, f);
	close(f->ready[1]);
	return pid;
}

/* Waits up to ms for the forger's word that it holds the victim's byte. */
static void forger_wait(struct forger *f, int ms)
{
	struct pollfd p = {.fd = f->ready[0], .events = POLLIN};
	char c;

	CHECK_EQ(poll(&p, 1, ms), 1);
	CHECK_EQ(read(f->ready[0], &c, 1), 1);
	close(f->ready[0]);
}

/* ---------------------------------------------------------------------
 * 1, 2. A forged read lock on a dead lock holder's token
 * --------------------------------------------------------------------- */

static int holder_main(void *arg)
{
	struct shmk_buffer *b;
	int *ready = arg;

	close(ready[0]);
	CHECK_OK(shmk_buffer_open(tname("buf"), NULL, &b));
	CHECK_OK(shmk_buffer_lock(b, SHMK_LOCK_WRITE, -1));
	CHECK_EQ(write(ready[1], "h", 1), 1);
	pause(); /* killed holding the lock */
	return 0;
}

static void test_forged_holder(void)
{
	struct shmk_opts o = {0};
	struct shmk_buffer *b, *b2;
	struct forger f;
	int ready[2], i, fd;
	pid_t holder, forger;
	char c;
	static const unsigned readonly[] = {0644, 0640, 0604, 0646};

	/* 2: no such mode is made. */
	for (i = 0; i < (int)(sizeof(readonly) / sizeof(readonly[0])); i++) {
		struct shmk_ring *r;

		o.mode = readonly[i];
		CHECK_RC(shmk_buffer_create(tname("ro"), 64, &o, &b), -EINVAL);
		CHECK_RC(shmk_ring_create(tname("ro"), 4, 64, &o, &r), -EINVAL);
	}
	o.mode = 0666;
	CHECK_OK(shmk_buffer_create(tname("rw"), 64, &o, &b));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(tname("rw")));

	CHECK_OK(shmk_buffer_create(tname("buf"), 4096, NULL, &b));
	CHECK_OK(pipe(ready));
	holder = spawn(holder_main, ready);
	close(ready[1]);
	CHECK_EQ(read(ready[0], &c, 1), 1);
	close(ready[0]);
	/* The only way to a reader who may not write: the owner's chmod
	 * behind shmk's back.  From then on shmk attaches no more. */
	CHECK_OK(chmod(path_of(tname("buf")), 0644));
	CHECK_RC(shmk_buffer_open(tname("buf"), NULL, &b2), -EACCES);

	/* The holder is slot 1 (we, the creator, are 0). */
	forger = forger_start(&f, tname("buf"), 1, 4000);
	usleep(20000);
	CHECK_OK(kill(holder, SIGKILL));
	CHECK_EQ(wait_child(holder, 5000), 128 + SIGKILL);
	forger_wait(&f, 3000);
	CHECK_RC(shmk_buffer_lock(b, SHMK_LOCK_WRITE, 2000), -EOWNERDEAD);
	CHECK_OK(shmk_buffer_unlock(b));
	/* The dead holder's byte is read-locked by the forger. */
	fd = open(path_of(tname("buf")), O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_EQ(shmk__ofd_held(fd, SHMK__LOCK_BYTE(1)), 0);
	close(fd);
	/* And our open still fails fast, not with -EUSERS. */
	CHECK_RC(shmk_buffer_open(tname("buf"), NULL, &b2), -EACCES);
	CHECK_EQ(wait_child(forger, 10000), 0);
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(tname("buf")));
	printf("a dead lock holder whose token a reader locked: -EOWNERDEAD; "
	       "read-only modes refused\n");
}

/* ---------------------------------------------------------------------
 * 3. A forged read lock on a dead rpc server's token
 * --------------------------------------------------------------------- */

static int server_main(void *arg)
{
	struct shmk_rpc_opts so = {.mode = 0666};
	struct shmk_rpc *srv;
	int *ready = arg;

	close(ready[0]);
	CHECK_OK(shmk_rpc_serve(tname("srv"), &so, &srv));
	CHECK_EQ(write(ready[1], "s", 1), 1);
	pause();
	return 0;
}

static void test_forged_server(void)
{
	struct shmk_rpc_opts so = {.mode = 0666};
	struct shmk_rpc *srv;
	struct shmk_stat st;
	struct forger f;
	int ready[2];
	pid_t server, forger;
	char c;

	CHECK_OK(pipe(ready));
	server = spawn(server_main, ready);
	close(ready[1]);
	CHECK_EQ(read(ready[0], &c, 1), 1);
	close(ready[0]);
	CHECK_OK(shmk_stat(tname("srv"), &st));
	CHECK_EQ(st.creator_alive, 1);

	forger = forger_start(&f, tname("srv"), 0, 4000);
	usleep(20000);
	CHECK_OK(kill(server, SIGKILL));
	CHECK_EQ(wait_child(server, 5000), 128 + SIGKILL);
	forger_wait(&f, 3000);
	/* Dead to everyone, so `shmk gc` would remove it ... */
	CHECK_OK(shmk_stat(tname("srv"), &st));
	CHECK_EQ(st.creator_alive, 0);
	CHECK_EQ(st.nalive, 0);
	/* ... and a new server takes the name over. */
	CHECK_OK(shmk_rpc_serve(tname("srv"), &so, &srv));
	CHECK_OK(shmk_rpc_close(srv));
	CHECK_EQ(wait_child(forger, 10000), 0);
	printf("a dead server whose token a reader locked: taken over\n");
}

/* ---------------------------------------------------------------------
 * 4. An owner can always remove its own name
 * --------------------------------------------------------------------- */

static int other_force(void *arg)
{
	check_become(FORGER);
	return shmk_unlink_force(arg) < 0 ? 0 : 1;
}

static void test_force(void)
{
	static const char junk[64] = "scribbled over by a peer";
	char lnk[256], canary[] = "/tmp/shmk-canary.XXXXXX";
	struct shmk_buffer *b;
	struct stat st;
	int fd;

	CHECK_OK(shmk_buffer_create(tname("junk"), 4096, NULL, &b));
	CHECK_OK(shmk_buffer_close(b));
	fd = open(path_of(tname("junk")), O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_EQ(pwrite(fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	close(fd);
	CHECK_RC(shmk_unlink(tname("junk")), -EPROTO);
	CHECK_RC(shmk_buffer_create(tname("junk"), 4096, NULL, &b), -EEXIST);
	/* Another user's force removes nothing of ours. */
	CHECK_EQ(wait_child(spawn(other_force, (void *)tname("junk")), 10000),
		 0);
	CHECK_OK(stat(path_of(tname("junk")), &st));
	CHECK_OK(shmk_unlink_force(tname("junk")));
	CHECK_RC(stat(path_of(tname("junk")), &st) < 0 ? -errno : 0, -ENOENT);
	CHECK_OK(shmk_buffer_create(tname("junk"), 4096, NULL, &b));
	CHECK_OK(shmk_buffer_close(b));
	CHECK_OK(shmk_unlink(tname("junk")));

	/* Never a directory, a FIFO, or what a symlink points to. */
	CHECK_OK(mkdir(path_of(tname("dir")), 0700));
	CHECK_RC(shmk_unlink_force(tname("dir")), -EPROTO);
	CHECK_OK(rmdir(path_of(tname("dir"))));
	CHECK_OK(mkfifo(path_of(tname("fifo")), 0600));
	CHECK_RC(shmk_unlink_force(tname("fifo")), -EPROTO);
	CHECK_OK(unlink(path_of(tname("fifo"))));
	fd = mkstemp(canary);
	CHECK(fd >= 0);
	close(fd);
	snprintf(lnk, sizeof(lnk), "%s", path_of(tname("lnk")));
	CHECK_OK(symlink(canary, lnk));
	CHECK(shmk_unlink_force(tname("lnk")) < 0);
	CHECK_OK(stat(canary, &st));
	CHECK_OK(unlink(lnk));
	CHECK_OK(unlink(canary));
	printf("a scribbled-over name: removed by its owner's force only\n");
}

int main(void)
{
	check_init();
	if (geteuid() != 0)
		SKIP("playing another user needs root");
	test_forged_holder();
	test_forged_server();
	test_force();
	printf("test_hostile: ok\n");
	return 0;
}
