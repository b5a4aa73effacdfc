/*
 * Minimal unit test helpers: CHECK macros count passes and failures, and
 * UNIT_DONE() prints "N passed, N failed" and yields the exit status.
 */
#ifndef SL_UNIT_H
#define SL_UNIT_H

#include <stdio.h>
#include <string.h>
#include <inttypes.h>

static int	unit_passed = 0;
static int	unit_failed = 0;

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

/* Count a check without a condition (e.g. a loop that must just not crash) */
#define PASS() (unit_passed++)

#define UNIT_DONE() \
	(printf("%d passed, %d failed\n", unit_passed, unit_failed), \
	 unit_failed == 0 ? 0 : 1)

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
