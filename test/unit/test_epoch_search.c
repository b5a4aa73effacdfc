/*
 * Leader epochs over a list of batches: the binary search for the first
 * batch of a newer epoch, and Kafka's OffsetForLeaderEpoch answers
 * (LeaderEpochFileCache.endOffsetFor): below every epoch, a middle epoch,
 * the latest, one never seen between two seen, one above all, undefined;
 * then agreement with a linear scan over random logs with gaps.
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/storage/epoch_search.h"
#include "unit.h"

typedef struct TestLog
{
	SlEpochBatch *batches;
	int			n;
} TestLog;

static bool
probe_first(int64 offset, SlEpochBatch *batch, void *arg)
{
	TestLog    *t = arg;

	for (int i = 0; i < t->n; i++)
		if (t->batches[i].last_offset >= offset)
		{
			*batch = t->batches[i];
			return true;
		}
	return false;
}

static bool
probe_before(int64 offset, SlEpochBatch *batch, void *arg)
{
	TestLog    *t = arg;

	for (int i = t->n - 1; i >= 0; i--)
		if (t->batches[i].last_offset < offset)
		{
			*batch = t->batches[i];
			return true;
		}
	return false;
}

static SlEpochLog
make_log(TestLog *t, int64 log_start, int64 log_end)
{
	SlEpochLog	log = {log_start, log_end, probe_first, probe_before, t, 0};

	return log;
}

/*
 * Epochs 2 at [10, 20), 4 at [20, 35), 5 at [35, 40); log start 10, end 40
 * (as after retention took what epochs 0 and 1 wrote)
 */
static SlEpochBatch fixed[] = {
	{10, 14, 2}, {15, 19, 2}, {20, 24, 4}, {25, 29, 4}, {30, 34, 4}, {35, 39, 5}
};

static void
check_answer(int32 requested, int32 current, int32 want_epoch, int64 want_offset)
{
	TestLog		t = {fixed, lengthof(fixed)};
	SlEpochLog	log = make_log(&t, 10, 40);
	int32		epoch;
	int64		offset;

	SlEpochEndOffset(&log, requested, current, &epoch, &offset);
	CHECK_MSG(epoch == want_epoch && offset == want_offset,
			  "epoch %d (current %d): got (%d, %lld), want (%d, %lld)",
			  requested, current, epoch, (long long) offset, want_epoch,
			  (long long) want_offset);
}

static void
test_kafka_cases(void)
{
	/* undefined */
	check_answer(-1, 5, SL_UNDEFINED_EPOCH, SL_UNDEFINED_EPOCH_OFFSET);
	/* below every stored epoch: the requested one, and the first start */
	check_answer(0, 5, 0, 10);
	check_answer(1, -1, 1, 10);
	/* a middle epoch: where the next one began */
	check_answer(2, 5, 2, 20);
	check_answer(4, 5, 4, 35);
	/* never seen, between two seen: the one below, the next one's start */
	check_answer(3, 5, 2, 20);
	/* the latest stored, with no newer current epoch: the log end */
	check_answer(5, 5, 5, 40);
	check_answer(5, -1, 5, 40);
	/* the current epoch, no batch of it yet: the log end */
	check_answer(7, 7, 7, 40);
	/* between the last stored and the current: it ended at the log end */
	check_answer(6, 7, 5, 40);
	/* above everything this node knows */
	check_answer(6, 5, SL_UNDEFINED_EPOCH, SL_UNDEFINED_EPOCH_OFFSET);
	check_answer(8, 7, SL_UNDEFINED_EPOCH, SL_UNDEFINED_EPOCH_OFFSET);
	check_answer(6, -1, SL_UNDEFINED_EPOCH, SL_UNDEFINED_EPOCH_OFFSET);
}

static void
test_empty_log(void)
{
	TestLog		t = {NULL, 0};
	SlEpochLog	log = make_log(&t, 0, 0);
	SlEpochBatch b;
	int32		epoch;
	int64		offset;

	CHECK(!SlEpochFirstAbove(&log, 0, &b));
	/* a new leader of an empty log knows its own epoch */
	SlEpochEndOffset(&log, 3, 3, &epoch, &offset);
	CHECK_EQ_INT(epoch, 3);
	CHECK_EQ_INT(offset, 0);
	SlEpochEndOffset(&log, 2, 3, &epoch, &offset);
	CHECK_EQ_INT(epoch, 2);
	CHECK_EQ_INT(offset, 0);
	/* a node that does not lead an empty log knows nothing */
	SlEpochEndOffset(&log, 0, -1, &epoch, &offset);
	CHECK_EQ_INT(epoch, SL_UNDEFINED_EPOCH);
	CHECK_EQ_INT(offset, SL_UNDEFINED_EPOCH_OFFSET);
}

/* The same answers as walking every batch, over random logs with gaps */
static void
test_model(void)
{
	uint64_t	state = unit_seed(0);

	for (int round = 0; round < 2000; round++)
	{
		int			n = (int) (unit_rand(&state) % 40);
		SlEpochBatch *batches = malloc(sizeof(SlEpochBatch) * Max(n, 1));
		TestLog		t = {batches, n};
		int64		offset = (int64) (unit_rand(&state) % 100);
		int64		log_start = offset;
		int32		epoch = (int32) (unit_rand(&state) % 3);
		int32		current;
		SlEpochLog	log;

		for (int i = 0; i < n; i++)
		{
			int64		count = 1 + (int64) (unit_rand(&state) % 5);

			if (unit_rand(&state) % 4 == 0)
				epoch += 1 + (int32) (unit_rand(&state) % 3);
			if (unit_rand(&state) % 6 == 0)
				offset += 1 + (int64) (unit_rand(&state) % 3);	/* aborted offsets */
			batches[i] = (SlEpochBatch) {offset, offset + count - 1, epoch};
			offset += count;
		}
		current = unit_rand(&state) % 2 ? epoch + (int32) (unit_rand(&state) % 3) : -1;
		log = make_log(&t, log_start, offset);

		for (int32 e = -1; e <= epoch + 3; e++)
		{
			SlEpochBatch got;
			bool		have = SlEpochFirstAbove(&log, e, &got);
			int			want = -1;
			int32		latest = n > 0 ? batches[n - 1].epoch : -1;
			int32		want_epoch = SL_UNDEFINED_EPOCH;
			int64		want_offset = SL_UNDEFINED_EPOCH_OFFSET;
			int32		end_epoch;
			int64		end_offset;

			for (int i = 0; i < n && want < 0; i++)
				if (batches[i].epoch > e)
					want = i;
			CHECK_MSG(have == (want >= 0) &&
					  (!have || got.base_offset == batches[want].base_offset),
					  "round %d epoch %d: first above", round, e);

			/* endOffsetFor, over the epochs the batches hold */
			latest = Max(latest, current);
			if (e >= 0 && latest >= 0 && e <= latest)
			{
				if (e == latest)
				{
					want_epoch = e;
					want_offset = offset;
				}
				else
				{
					int64		start = want >= 0 ? batches[want].base_offset : offset;
					int			floor = (want >= 0 ? want : n) - 1;

					want_epoch = floor >= 0 ? batches[floor].epoch : e;
					want_offset = start;
				}
			}
			log.probes = 0;
			SlEpochEndOffset(&log, e, current, &end_epoch, &end_offset);
			CHECK_MSG(end_epoch == want_epoch && end_offset == want_offset,
					  "round %d epoch %d current %d: (%d, %lld) want (%d, %lld)",
					  round, e, current, end_epoch, (long long) end_offset,
					  want_epoch, (long long) want_offset);
			/* logarithmic in the offsets: at most ~2 log2(span) + 3 */
			CHECK_MSG(log.probes <= 2 * 10 + 3, "round %d: %d probes", round, log.probes);
		}
		free(batches);
	}
}

int
main(void)
{
	test_kafka_cases();
	test_empty_log();
	test_model();
	return UNIT_DONE();
}
