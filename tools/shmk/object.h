/* SPDX-License-Identifier: MIT */
/*
 * object.h - what the tool says about an object: names for its kind,
 * geometry and counters (a kind this tool does not know, a newer
 * library's, still gets names), sizes, users, times, and the names of
 * the objects in /dev/shm.
 *
 * The functions that take buf write at most cap bytes there and return
 * the string to print, buf or a constant.
 */
#ifndef SHMK_TOOL_OBJECT_H
#define SHMK_TOOL_OBJECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct shmk_stat;

/* Where named objects are, for messages (shmk_path() gives a name's
 * file). */
#define SHM_DIR "/dev/shm"

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t now_ms(void);

/* A user's name, or the uid in digits. */
const char *user_name(uid_t uid, char *buf, size_t cap);
/* "512 B", "4.0 KiB". */
const char *human_size(uint64_t n, char *buf, size_t cap);
/* Local time of a CLOCK_REALTIME stamp in ns, or "-" for 0. */
const char *time_str(uint64_t ns, char *buf, size_t cap);

/* The name of a kind's geometry field or counter i, or "geomN",
 * "counterN". */
const char *geom_name(int kind, int i, char *buf, size_t cap);
const char *counter_name(int kind, int i, char *buf, size_t cap);
/* Index of the counter called name in st, or -1. */
int counter_index(const struct shmk_stat *st, const char *name);
/* The counter that says how far behind the readers are, or -1. */
int lag_index(const struct shmk_stat *st);
/* The counter called name in st, or 0 if st has none of that name. */
uint64_t counter_of(const struct shmk_stat *st, const char *name);
/* "ring", or "kindN" for a kind the library does not name. */
const char *kind_str(int kind, char *buf, size_t cap);
/* "a ring", "an array". */
const char *a_kind(const char *kind, char *buf, size_t cap);
/* Is geometry field i of kind a ring's mode or a topic's policy?  Its
 * value is not for the tool to decode: shmk_stat() gives both in flags. */
int geom_is_mode(int kind, int i);
/* "nodes=8 node_size=4096": n geometry fields of a kind, a ring's mode
 * and a topic's policy from flags (SHMK_F_SINGLE_WRITER, _READER,
 * SHMK_F_LOSSY). */
const char *geom_of(int kind, const uint64_t *geom, int n, unsigned flags,
		    char *buf, size_t cap);

/* The names of the objects in /dev/shm (shmk_list()), sorted, in *out
 * and their number in *count.  Returns 0 or a negative errno; free them
 * with free_names(). */
int list_names(char ***out, size_t *count);
void free_names(char **names, size_t n);

#endif
