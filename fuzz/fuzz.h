/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h - what the libFuzzer targets share: the entry point's prototype,
 * a reader that takes fixed-width fields off the input (zeros once it runs
 * out), and FUZZ_CHECK, which aborts (a crash libFuzzer reports, with the
 * input that made it) when a promise of the API is broken without any
 * sanitizer noticing.  Every target also builds without libFuzzer, with
 * replay.c as its main, to run its corpus as a regression test.
 */
#ifndef SHMK_FUZZ_H
#define SHMK_FUZZ_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "shmk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed\n",      \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

/* An API call's result: 0 or more, or one of the negative codes it may
 * give; anything else is a broken promise. */
#define FUZZ_RC(rc, ...)                                                       \
	do {                                                                   \
		const long long ok_[] = {__VA_ARGS__};                         \
		long long r_ = (long long)(rc);                                \
		size_t i_;                                                     \
		int hit_ = r_ >= 0;                                            \
		for (i_ = 0; i_ < sizeof(ok_) / sizeof(ok_[0]); i_++)          \
			hit_ |= r_ == ok_[i_];                                 \
		if (!hit_) {                                                   \
			fprintf(stderr, "%s:%d: %s returned %lld (%s)\n",      \
				__FILE__, __LINE__, #rc, r_,                   \
				shmk_strerror((int)r_));                       \
			abort();                                               \
		}                                                              \
	} while (0)

struct fuzz_in {
	const uint8_t *p;
	size_t left;
};

static inline uint64_t fuzz_take(struct fuzz_in *in, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n && in->left; i++, in->left--)
		v |= (uint64_t)*in->p++ << (8 * i);
	return v;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	return (uint8_t)fuzz_take(in, 1);
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
	return (uint16_t)fuzz_take(in, 2);
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
	return (uint32_t)fuzz_take(in, 4);
}

static inline uint64_t fuzz_u64(struct fuzz_in *in)
{
	return fuzz_take(in, 8);
}

/*
 * A 64-bit value the way a hostile peer would pick one: the input's own
 * bits, or one of the values that break arithmetic (0, all ones, the sign
 * bit, ...), or one near base (a position the structure is at now).
 */
static inline uint64_t fuzz_word(struct fuzz_in *in, uint64_t base)
{
	static const uint64_t odd[] = {0,
				       1,
				       UINT64_MAX,
				       UINT64_MAX - 1,
				       UINT64_C(1) << 63,
				       (UINT64_C(1) << 63) - 1,
				       UINT64_C(1) << 62,
				       (UINT64_C(1) << 62) - 1,
				       UINT32_MAX,
				       (UINT64_C(1) << 32) + 1};
	uint8_t how = fuzz_u8(in);

	switch (how % 4) {
	case 0:
		return fuzz_u64(in);
	case 1:
		return odd[(how / 4) % (sizeof(odd) / sizeof(odd[0]))];
	case 2:
		return base + (uint64_t)(int64_t)(int8_t)fuzz_u8(in);
	default:
		return (base + (uint64_t)(int64_t)(int8_t)fuzz_u8(in)) |
		       (UINT64_C(1) << 63);
	}
}

/* The 64-bit word off bytes into a shared mapping at base, read or
 * written (relaxed) as the hostile peer that shares it would. */
static inline uint64_t fuzz_peek(char *base, size_t off)
{
	return atomic_load_explicit((_Atomic uint64_t *)(base + off),
				    memory_order_relaxed);
}

static inline void fuzz_poke(char *base, size_t off, uint64_t v)
{
	atomic_store_explicit((_Atomic uint64_t *)(base + off), v,
			      memory_order_relaxed);
}

#endif /* SHMK_FUZZ_H */
