/* SPDX-License-Identifier: MIT */
/*
 * kinds.h - the kinds the object files define.  Each object file includes
 * it, so that its definition is checked against the declaration; stat.c,
 * which knows every kind, lists them.  Declaring one is not a call into
 * its file: the region layer receives a kind as a pointer.
 */
#ifndef SHMK_KINDS_H
#define SHMK_KINDS_H

#include "region.h"

extern const struct shmk__kind shmk__buffer_kind;
extern const struct shmk__kind shmk__array_kind;
extern const struct shmk__kind shmk__event_kind;
extern const struct shmk__kind shmk__ring_kind;
extern const struct shmk__kind shmk__rpc_kind;
extern const struct shmk__kind shmk__topic_kind;

#endif /* SHMK_KINDS_H */
