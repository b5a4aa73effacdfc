/*
 * Latency histograms: fixed buckets whose upper bounds double, from 16
 * microseconds up to about 67 seconds, then one open bucket.  Pure
 * functions over plain counts (compiled as frontend code for the unit
 * tests); the shared-memory atomics that hold the counts are the counters'
 * (counters.h), which copy them into an SlHistogram to read them.
 *
 * Doubling bounds keep a histogram small enough to hold one per Kafka API,
 * version and part of a request's time, at the price of precision: a
 * percentile is interpolated linearly inside its bucket, so it is off by
 * less than the bucket's width (at most its lower bound).
 */
#ifndef SL_METRICS_HISTOGRAM_H
#define SL_METRICS_HISTOGRAM_H

#include "c.h"

/* Buckets: SL_HISTOGRAM_BUCKETS - 1 bounded ones and the open one */
#define SL_HISTOGRAM_BUCKETS 24
/* Upper bound of bucket 0, in microseconds, as a power of two */
#define SL_HISTOGRAM_FIRST_BOUND_LOG2 4

typedef struct SlHistogram
{
	uint64		buckets[SL_HISTOGRAM_BUCKETS];	/* counts, not cumulative */
	uint64		sum_us;			/* sum of the values counted */
} SlHistogram;

/* The bucket a duration of us microseconds falls in (bounds inclusive) */
extern int	SlHistogramBucketOf(uint64 us);

/*
 * Upper bound of bucket i in microseconds (inclusive); UINT64_MAX for the
 * open last bucket
 */
extern uint64 SlHistogramBucketUpperUs(int i);

/* Number of values counted: the sum of the buckets */
extern uint64 SlHistogramCount(const SlHistogram *h);

/* Count one value in a plain histogram */
extern void SlHistogramAdd(SlHistogram *h, uint64 us);

/* Add the counts of b into a */
extern void SlHistogramMerge(SlHistogram *a, const SlHistogram *b);

/*
 * The q-quantile (0 < q <= 1) in microseconds, interpolated linearly inside
 * the bucket that holds it; a value in the open bucket is reported as that
 * bucket's lower bound.  -1 for an empty histogram.
 */
extern double SlHistogramQuantileUs(const SlHistogram *h, double q);

#endif							/* SL_METRICS_HISTOGRAM_H */
