/* SPDX-License-Identifier: MIT */
/*
 * topic.h - what white-box users of the topic (the fuzz target) use of
 * its internals.
 */
#ifndef SHMK_TOPIC_H
#define SHMK_TOPIC_H

#include "region.h"

/* The region under a topic (for the fuzz target's checks). */
struct shmk_topic;
struct shmk__region *shmk__topic_region(struct shmk_topic *t);

#endif /* SHMK_TOPIC_H */
