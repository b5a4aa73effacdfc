/*
 * Minimal unit test helpers: CHECK macros count passes and failures, and
 * UNIT_DONE() prints "N passed, N failed" and yields the exit status.
 */
#ifndef SL_UNIT_H
#define SL_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <time.h>

static int	unit_passed = 0;
static int	unit_failed = 0;

/* The seed of the random loops, once unit_seed() has chosen it */
static uint64_t unit_seed_value = 0;
static int	unit_seeded = 0;

#define CHECK(cond) \
	do { \
		if (cond) \
			unit_passed++; \
		else \
		{ \
			unit_failed++; \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
		} \
	} while (0)

#define CHECK_MSG(cond, ...) \
	do { \
		if (cond) \
			unit_passed++; \
		else \
		{ \
			unit_failed++; \
			fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__); \
			fputc('\n', stderr); \
		} \
	} while (0)

#define CHECK_EQ_INT(a, b) \
	do { \
		long long unit_a_ = (long long) (a); \
		long long unit_b_ = (long long) (b); \
		CHECK_MSG(unit_a_ == unit_b_, "%lld != %lld", unit_a_, unit_b_); \
	} while (0)

#define CHECK_EQ_UINT(a, b) \
	do { \
		unsigned long long unit_a_ = (unsigned long long) (a); \
		unsigned long long unit_b_ = (unsigned long long) (b); \
		CHECK_MSG(unit_a_ == unit_b_, "0x%llx != 0x%llx", unit_a_, unit_b_); \
	} while (0)

#define CHECK_NULL_ERR(e) \
	do { \
		const char *unit_e_ = (e); \
		CHECK_MSG(unit_e_ == NULL, "unexpected error: %s", unit_e_); \
	} while (0)

#define CHECK_MEM(a, b, n) CHECK(memcmp((a), (b), (n)) == 0)

/*
 * Count a check that holds by construction.  Not for random loops: each of
 * those asserts the property it exercises, so that a broken property fails
 * the test rather than only a crash doing so.
 */
#define PASS() (unit_passed++)

/* On failure, the seed that reproduces it (see unit_seed()) */
#define UNIT_DONE() \
	(printf("%d passed, %d failed\n", unit_passed, unit_failed), \
	 (unit_failed != 0 && unit_seeded ? \
	  printf("random loops seeded with UNIT_SEED=0x%" PRIx64 "\n", unit_seed_value) : 0), \
	 unit_failed == 0 ? 0 : 1)

/*
 * The seed of a test program's random loops: UNIT_SEED from the environment
 * (any base strtoull reads, or "random" for a fresh one), else the program's
 * fixed default, so that the test command is reproducible.  The seed is
 * printed before the loops run, so that even a sanitizer's abort leaves it
 * in the log, and again by UNIT_DONE() on failure.
 */
static inline uint64_t
unit_seed(uint64_t fixed)
{
	const char *env = getenv("UNIT_SEED");
	uint64_t	seed = fixed;

	if (env != NULL && strcmp(env, "random") == 0)
		seed = ((uint64_t) time(NULL) << 20) ^ (uint64_t) clock();
	else if (env != NULL && *env != '\0')
	{
		char	   *end;

		seed = strtoull(env, &end, 0);
		if (*end != '\0')
		{
			fprintf(stderr, "UNIT_SEED=%s is not a number\n", env);
			exit(2);
		}
	}
	/* xorshift never leaves zero */
	if (seed == 0)
		seed = fixed;
	unit_seed_value = seed;
	unit_seeded = 1;
	printf("random loops seeded with UNIT_SEED=0x%" PRIx64 "\n", seed);
	return seed;
}

/* Deterministic pseudo-random numbers for the fuzz-style loops */
static inline uint64_t
unit_rand(uint64_t *state)
{
	uint64_t	x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

#endif							/* SL_UNIT_H */
