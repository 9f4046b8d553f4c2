/* SPDX-License-Identifier: MIT */
/*
 * stat.h - introspection of every kind (stat.c), for the layers that
 * describe an object they did not open.
 */
#ifndef SHMK_STAT_H
#define SHMK_STAT_H

#include "region.h"

/* shmk_stat() of the object behind fd (the file itself, whatever its name
 * now holds). */
struct shmk_stat;
int shmk__stat_fd(int fd, struct shmk_stat *st);

#endif /* SHMK_STAT_H */
