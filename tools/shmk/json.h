/* SPDX-License-Identifier: MIT */
/*
 * json.h - a small JSON writer: one compact document, written as it goes
 * to a stdio stream.
 *
 * It depends on nothing but libc, so that any program of the tree (the
 * shmk tool, the benchmark) can compile json.c in.  Strings are escaped
 * and invalid UTF-8 becomes U+FFFD, so the output is always valid JSON.
 * Commas and keys are placed for the caller:
 *
 *	struct json j;
 *
 *	json_init(&j, stdout);
 *	json_open_object(&j, NULL);
 *	json_str(&j, "name", "jobs");
 *	json_open_array(&j, "sizes");
 *	json_u64(&j, NULL, 64);
 *	json_u64(&j, NULL, 4096);
 *	json_close(&j);
 *	json_close(&j);
 *	putchar('\n');
 *
 * prints {"name":"jobs","sizes":[64,4096]}.  A value inside an object
 * takes a key; inside an array, or at the top, key is NULL.  Write errors
 * are the stream's: check ferror() or fflush() at the end.
 *
 * The writer holds no memory and is not thread-safe: one struct json per
 * document, used by one thread.
 */
#ifndef SHMK_TOOL_JSON_H
#define SHMK_TOOL_JSON_H

#include <stdint.h>
#include <stdio.h>

/* Objects and arrays nest at most JSON_MAX_DEPTH - 1 deep. */
#define JSON_MAX_DEPTH 16

struct json {
	FILE *f;
	int depth;			     /* objects and arrays open */
	unsigned char first[JSON_MAX_DEPTH]; /* per depth: nothing written */
	char close[JSON_MAX_DEPTH];	     /* per depth: '}' or ']' */
};

/* Starts a document written to f. */
void json_init(struct json *j, FILE *f);

/* Opens an object or an array; json_close() ends the innermost one. */
void json_open_object(struct json *j, const char *key);
void json_open_array(struct json *j, const char *key);
void json_close(struct json *j);

/* One value each.  json_double writes decimals digits after the point,
 * and null for an infinity or a NaN (JSON has neither). */
void json_str(struct json *j, const char *key, const char *v);
void json_u64(struct json *j, const char *key, uint64_t v);
void json_int(struct json *j, const char *key, long long v);
void json_bool(struct json *j, const char *key, int v);
void json_double(struct json *j, const char *key, double v, int decimals);

/* The string s, quoted and escaped, alone: for a program that lays out
 * its own document. */
void json_string(FILE *f, const char *s);

#endif
