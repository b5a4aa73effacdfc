/*
 * Latency histograms with doubling bucket bounds, see histogram.h.
 */
#include "c.h"

#include "port/pg_bitutils.h"

#include "streamlog/metrics/histogram.h"

int
SlHistogramBucketOf(uint64 us)
{
	int			i;

	if (us <= (UINT64CONST(1) << SL_HISTOGRAM_FIRST_BOUND_LOG2))
		return 0;
	/*
	 * Bucket i holds 2^(first + i - 1) < us <= 2^(first + i): the smallest
	 * power of two at least us is 2 to the bit length of us - 1.  One
	 * instruction (counted on every request, for each part of its time).
	 */
	i = pg_leftmost_one_pos64(us - 1) + 1 - SL_HISTOGRAM_FIRST_BOUND_LOG2;
	return Min(i, SL_HISTOGRAM_BUCKETS - 1);
}

uint64
SlHistogramBucketUpperUs(int i)
{
	if (i < 0)
		return 0;
	if (i >= SL_HISTOGRAM_BUCKETS - 1)
		return PG_UINT64_MAX;
	return UINT64CONST(1) << (SL_HISTOGRAM_FIRST_BOUND_LOG2 + i);
}

/* Lower bound of bucket i (exclusive): the upper bound of the one before */
static uint64
bucket_lower_us(int i)
{
	return i == 0 ? 0 : SlHistogramBucketUpperUs(i - 1);
}

uint64
SlHistogramCount(const SlHistogram *h)
{
	uint64		n = 0;

	for (int i = 0; i < SL_HISTOGRAM_BUCKETS; i++)
		n += h->buckets[i];
	return n;
}

void
SlHistogramAdd(SlHistogram *h, uint64 us)
{
	h->buckets[SlHistogramBucketOf(us)]++;
	h->sum_us += us;
}

void
SlHistogramMerge(SlHistogram *a, const SlHistogram *b)
{
	for (int i = 0; i < SL_HISTOGRAM_BUCKETS; i++)
		a->buckets[i] += b->buckets[i];
	a->sum_us += b->sum_us;
}

double
SlHistogramQuantileUs(const SlHistogram *h, double q)
{
	uint64		total = SlHistogramCount(h);
	double		rank;
	uint64		below = 0;

	if (total == 0)
		return -1;
	if (q <= 0)
		q = 0;
	if (q > 1)
		q = 1;

	/* the rank of the value sought, 1-based: ceil(q * total), at least 1 */
	rank = q * (double) total;
	for (int i = 0; i < SL_HISTOGRAM_BUCKETS; i++)
	{
		uint64		n = h->buckets[i];
		double		lower;
		double		upper;

		if (n == 0 || (double) (below + n) < rank)
		{
			below += n;
			continue;
		}
		lower = (double) bucket_lower_us(i);
		if (i == SL_HISTOGRAM_BUCKETS - 1)
			return lower;
		upper = (double) SlHistogramBucketUpperUs(i);
		/* the values of a bucket taken as spread evenly over its width */
		return lower + (upper - lower) * ((rank - (double) below) / (double) n);
	}
	/* not reached: rank <= total */
	return (double) bucket_lower_us(SL_HISTOGRAM_BUCKETS - 1);
}
