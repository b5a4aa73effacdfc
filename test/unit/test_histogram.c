/*
 * Latency histograms (metrics/histogram.c): bucket bounds, which bucket a
 * value falls in, and percentiles interpolated inside a bucket.
 */
#include "c.h"

#include <math.h>

#include "streamlog/metrics/histogram.h"
#include "unit.h"

#define FIRST_BOUND (UINT64CONST(1) << SL_HISTOGRAM_FIRST_BOUND_LOG2)

static void
check_bounds(void)
{
	/* doubling bounds from 16 us, the last bucket open */
	CHECK_EQ_UINT(SlHistogramBucketUpperUs(0), FIRST_BOUND);
	for (int i = 1; i < SL_HISTOGRAM_BUCKETS - 1; i++)
		CHECK_EQ_UINT(SlHistogramBucketUpperUs(i), 2 * SlHistogramBucketUpperUs(i - 1));
	CHECK_EQ_UINT(SlHistogramBucketUpperUs(SL_HISTOGRAM_BUCKETS - 1), PG_UINT64_MAX);
	/* the last bounded one is above a minute */
	CHECK(SlHistogramBucketUpperUs(SL_HISTOGRAM_BUCKETS - 2) > UINT64CONST(60000000));
}

static void
check_bucket_of(void)
{
	CHECK_EQ_INT(SlHistogramBucketOf(0), 0);
	CHECK_EQ_INT(SlHistogramBucketOf(FIRST_BOUND), 0);	/* bounds are inclusive */
	CHECK_EQ_INT(SlHistogramBucketOf(FIRST_BOUND + 1), 1);
	CHECK_EQ_INT(SlHistogramBucketOf(2 * FIRST_BOUND), 1);
	CHECK_EQ_INT(SlHistogramBucketOf(1000), 6);	/* 512 < 1000 <= 1024 */
	CHECK_EQ_INT(SlHistogramBucketOf(PG_UINT64_MAX), SL_HISTOGRAM_BUCKETS - 1);
	CHECK_EQ_INT(SlHistogramBucketOf(SlHistogramBucketUpperUs(SL_HISTOGRAM_BUCKETS - 2) + 1),
				 SL_HISTOGRAM_BUCKETS - 1);
	/* every bound belongs to its own bucket, the next value to the next */
	for (int i = 0; i < SL_HISTOGRAM_BUCKETS - 1; i++)
	{
		CHECK_EQ_INT(SlHistogramBucketOf(SlHistogramBucketUpperUs(i)), i);
		CHECK_EQ_INT(SlHistogramBucketOf(SlHistogramBucketUpperUs(i) + 1), i + 1);
	}
}

static bool
near(double a, double b)
{
	return fabs(a - b) < 1e-6;
}

static void
check_quantiles(void)
{
	SlHistogram h;
	SlHistogram other;

	memset(&h, 0, sizeof(h));
	CHECK(SlHistogramQuantileUs(&h, 0.5) < 0);	/* empty */
	CHECK_EQ_UINT(SlHistogramCount(&h), 0);

	/* 100 values in (16, 32]: spread evenly over the bucket */
	for (int i = 0; i < 100; i++)
		SlHistogramAdd(&h, 20);
	CHECK_EQ_UINT(SlHistogramCount(&h), 100);
	CHECK_EQ_UINT(h.sum_us, 2000);
	CHECK(near(SlHistogramQuantileUs(&h, 0.5), 24.0));
	CHECK(near(SlHistogramQuantileUs(&h, 1.0), 32.0));
	CHECK(near(SlHistogramQuantileUs(&h, 0.01), 16.16));

	/* 900 more in bucket 0: p50 there, p95 in bucket 1 */
	for (int i = 0; i < 900; i++)
		SlHistogramAdd(&h, 5);
	CHECK(near(SlHistogramQuantileUs(&h, 0.5), 16.0 * 500 / 900));
	CHECK(near(SlHistogramQuantileUs(&h, 0.95), 16.0 + 16.0 * 50 / 100));
	/* out of range q is clamped */
	CHECK(near(SlHistogramQuantileUs(&h, 2.0), 32.0));
	CHECK(SlHistogramQuantileUs(&h, -1.0) >= 0);

	/* a value in the open bucket is its lower bound */
	memset(&other, 0, sizeof(other));
	SlHistogramAdd(&other, PG_UINT64_MAX / 2);
	CHECK(near(SlHistogramQuantileUs(&other, 0.99),
			   (double) SlHistogramBucketUpperUs(SL_HISTOGRAM_BUCKETS - 2)));

	/* merged: counts and sums add up */
	SlHistogramMerge(&h, &other);
	CHECK_EQ_UINT(SlHistogramCount(&h), 1001);
	CHECK_EQ_UINT(h.buckets[SL_HISTOGRAM_BUCKETS - 1], 1);
}

/*
 * Random values: each quantile lies in the bucket of the exact quantile
 * (within a factor of two of it), and quantiles never go down with q
 */
static void
check_random(void)
{
	uint64_t	state = unit_seed(0x5eed1a7e);
	enum
	{
		N = 2000
	};
	static uint64 values[N];

	for (int round = 0; round < 50; round++)
	{
		SlHistogram h;
		int			n = 1 + (int) (unit_rand(&state) % N);
		double		last = -1;

		memset(&h, 0, sizeof(h));
		for (int i = 0; i < n; i++)
		{
			/* spread over many buckets: a random power of two, then some */
			int			shift = (int) (unit_rand(&state) % 30);

			values[i] = (UINT64CONST(1) << shift) + unit_rand(&state) % (UINT64CONST(1) << shift);
			SlHistogramAdd(&h, values[i]);
		}
		/* sort for the exact quantiles */
		for (int i = 1; i < n; i++)
			for (int j = i; j > 0 && values[j - 1] > values[j]; j--)
			{
				uint64		t = values[j];

				values[j] = values[j - 1];
				values[j - 1] = t;
			}
		for (int k = 1; k <= 100; k++)
		{
			double		q = k / 100.0;
			double		got = SlHistogramQuantileUs(&h, q);
			int			rank = (int) ceil(q * n);
			uint64		exact = values[Max(rank, 1) - 1];
			int			b = SlHistogramBucketOf(exact);
			double		lower = b == 0 ? 0 : (double) SlHistogramBucketUpperUs(b - 1);
			double		upper = b == SL_HISTOGRAM_BUCKETS - 1 ? lower :
				(double) SlHistogramBucketUpperUs(b);

			CHECK_MSG(got >= lower - 1e-6 && got <= upper + 1e-6,
					  "q %.2f: %.1f not in the bucket (%.0f, %.0f] of %llu",
					  q, got, lower, upper, (unsigned long long) exact);
			CHECK_MSG(got >= last - 1e-6, "q %.2f: %.1f below %.1f", q, got, last);
			last = got;
		}
	}
}

int
main(void)
{
	check_bounds();
	check_bucket_of();
	check_quantiles();
	check_random();
	return UNIT_DONE();
}
