/*
 * The log cleaner's view of transactions (txn_cleaner.h): batches of
 * aborted transactions go, markers may go only once none of their
 * transaction's batches is left, an ABORT's index entry goes with its
 * last batch, one pass later, as Kafka's cleaner does.
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/protocol/records.h"
#include "streamlog/storage/txn_cleaner.h"
#include "unit.h"

#define TXN (SL_BATCH_ATTR_TRANSACTIONAL)

static void
test_one_pass(void)
{
	/*
	 * 0 plain; 1 P1 data; 2 P2 data; 3 P1 data; 4 P2 COMMIT; 5 P1 ABORT;
	 * 6 P3 ABORT of nothing; 7 P4 COMMIT of nothing
	 */
	SlAbortedTxn aborted[] = {{1, 1, 5}};
	SlTxnCleaner c;
	SlTxnMarkerVerdict v;

	SlTxnCleanerInit(&c, aborted, 1);
	CHECK(!SlTxnCleanerDataBatch(&c, 0, -1, 0));
	CHECK(SlTxnCleanerDataBatch(&c, TXN, 1, 1));
	CHECK(!SlTxnCleanerDataBatch(&c, TXN, 2, 2));
	CHECK(SlTxnCleanerDataBatch(&c, TXN, 1, 3));
	v = SlTxnCleanerMarker(&c, 2, 4, false);
	CHECK(!v.can_discard);		/* its batch at 2 stays */
	CHECK(!v.drop_index);
	v = SlTxnCleanerMarker(&c, 1, 5, true);
	CHECK(!v.can_discard);		/* its batches go in this pass */
	CHECK(!v.drop_index);
	v = SlTxnCleanerMarker(&c, 3, 6, true);
	CHECK(v.can_discard);
	CHECK(!v.drop_index);
	v = SlTxnCleanerMarker(&c, 4, 7, false);
	CHECK(v.can_discard);
	CHECK_EQ_INT(c.nongoing, 0);
	SlTxnCleanerFree(&c);
}

static void
test_next_pass(void)
{
	/*
	 * After the first pass: 0 plain; 2 P2 data (compacted away later: not
	 * here); 4 P2 COMMIT; 5 P1 ABORT, its batches gone.  Then P1 again:
	 * 8 P1 data, 9 P1 ABORT (still indexed with its batch)
	 */
	SlAbortedTxn aborted[] = {{1, 1, 5}, {1, 8, 9}};
	SlTxnCleaner c;
	SlTxnMarkerVerdict v;

	SlTxnCleanerInit(&c, aborted, 2);
	CHECK(!SlTxnCleanerDataBatch(&c, 0, -1, 0));
	v = SlTxnCleanerMarker(&c, 2, 4, false);
	CHECK(v.can_discard);
	v = SlTxnCleanerMarker(&c, 1, 5, true);
	CHECK(v.can_discard);
	CHECK(v.drop_index);
	CHECK(SlTxnCleanerDataBatch(&c, TXN, 1, 8));
	v = SlTxnCleanerMarker(&c, 1, 9, true);
	CHECK(!v.can_discard);
	CHECK(!v.drop_index);
	SlTxnCleanerFree(&c);
}

static void
test_range_starts_inside(void)
{
	/*
	 * The range read starts at 10: an aborted transaction that ended at 7
	 * is over; one from 8 to 12 is under way with its batch at 11
	 */
	SlAbortedTxn aborted[] = {{5, 3, 7}, {6, 8, 12}};
	SlTxnCleaner c;
	SlTxnMarkerVerdict v;

	SlTxnCleanerInit(&c, aborted, 2);
	CHECK(!SlTxnCleanerDataBatch(&c, TXN, 5, 10));	/* a new one of 5 */
	CHECK(SlTxnCleanerDataBatch(&c, TXN, 6, 11));
	v = SlTxnCleanerMarker(&c, 6, 12, true);
	CHECK(!v.can_discard);
	v = SlTxnCleanerMarker(&c, 5, 13, false);
	CHECK(!v.can_discard);
	/* Many producers at once */
	for (int i = 0; i < 100; i++)
		CHECK(!SlTxnCleanerDataBatch(&c, TXN, 1000 + i, 20 + i));
	for (int i = 99; i >= 0; i--)
		CHECK(!SlTxnCleanerMarker(&c, 1000 + i, 200 - i, false).can_discard);
	CHECK_EQ_INT(c.nongoing, 0);
	SlTxnCleanerFree(&c);
}

int
main(void)
{
	test_one_pass();
	test_next_pass();
	test_range_starts_inside();
	return UNIT_DONE();
}
