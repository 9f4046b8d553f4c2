/* SPDX-License-Identifier: MIT */
/*
 * test_cycles - 10 000 create/open/close cycles of each kind of backing
 * leave the descriptor table and /dev/shm exactly as they were.
 */
#include "check.h"

#define CYCLES 10000

int main(void)
{
	struct shmk_buffer *c, *o, *a, *f;
	int fds, shm, i;

	check_init();
	/* Warm up once, so that lazily opened library state is counted. */
	CHECK_OK(shmk_buffer_create(tname("cyc"), 64, NULL, &c));
	CHECK_OK(shmk_buffer_close(c));
	CHECK_OK(shmk_unlink(tname("cyc")));
	fds = count_fds();
	shm = count_ours();
	for (i = 0; i < CYCLES; i++) {
		CHECK_OK(shmk_buffer_create(tname("cyc"), 64, NULL, &c));
		CHECK_OK(shmk_buffer_open(tname("cyc"), NULL, &o));
		CHECK(shmk_buffer_fd(o) >= 0);
		CHECK_OK(shmk_buffer_close(o));
		CHECK_OK(shmk_buffer_close(c));
		CHECK_OK(shmk_unlink(tname("cyc")));

		CHECK_OK(shmk_buffer_create(NULL, 64, NULL, &a));
		CHECK_OK(shmk_buffer_open_fd(shmk_buffer_fd(a), NULL, &f));
		CHECK_OK(shmk_buffer_close(f));
		CHECK_OK(shmk_buffer_close(a));
		if (i % 1000 == 0) {
			CHECK_EQ(count_fds(), fds);
			CHECK_EQ(count_ours(), shm);
		}
	}
	CHECK_EQ(count_fds(), fds);
	CHECK_EQ(count_ours(), shm);
	printf("test_cycles: %d cycles, %d descriptors and %d /dev/shm "
	       "entries before and after\n",
	       CYCLES, fds, shm);
	return 0;
}
