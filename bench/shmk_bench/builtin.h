/* SPDX-License-Identifier: MIT */
/* builtin.h - the transports built into `shmk bench` (builtin.c, and
 * topic.c for the topic section's). */
#ifndef SHMK_BENCH_BUILTIN_H
#define SHMK_BENCH_BUILTIN_H

#include "transport.h"

extern const struct bt_transport bt_shmk, bt_shmk_zc, bt_shmk_sleep,
	bt_shmk_single, bt_bound, bt_pipe, bt_unix, bt_dgram, bt_mq, bt_tcp,
	bt_topic, bt_topic_zc, bt_tee;

#endif /* SHMK_BENCH_BUILTIN_H */
