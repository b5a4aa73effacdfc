/*
 * The partition side of Kafka transactions (KIP-98): transactional batches,
 * transaction markers (control batches), the last stable offset and the
 * index of aborted transactions.
 *
 * A transactional producer's batches carry the transactional attribute.
 * The first one a producer appends to a partition opens its transaction
 * there; the marker the coordinator writes at EndTxn (COMMIT or ABORT)
 * closes it.  Each partition keeps, durably and in the same transaction as
 * the append (streamlog.txn_open), the first offset of every open
 * transaction: the last stable offset (LSO) is the first offset of the
 * oldest one, or the high watermark if none is open, and read_committed
 * readers stop there.  An ABORT marker adds (producer id, first offset,
 * marker offset) to the partition's aborted-transaction index
 * (streamlog.txn_aborted), which read_committed Fetch hands to Kafka
 * clients (they filter aborted records themselves) and SQL readers use to
 * skip them.
 *
 * The contract with the transaction coordinator (src/server/txn/) is
 * SlTxnWriteMarker and SlPartitionLastStableOffset.
 */
#ifndef SL_STORAGE_TRANSACTIONS_H
#define SL_STORAGE_TRANSACTIONS_H

#include "streamlog/guc.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/txn_filter.h"

/*
 * Whether the Produce handler stores transactional batches: while the
 * transaction coordinator serves transactional producers
 * (streamlog.transaction_coordinator; one switch for both halves).
 * Otherwise transactional producers fail fast with
 * TRANSACTIONAL_ID_AUTHORIZATION_FAILED.  The storage below accepts them
 * either way (streamlog._txn_test_append drives it in tests).
 */
#define SL_TXN_PRODUCE_ACCEPTED (sl_transaction_coordinator)

/*
 * Append a COMMIT or ABORT control batch for (producer_id, producer_epoch)
 * to a partition this node leads, inside the caller's transaction (durable
 * when it commits).  Ends that producer's open transaction on the
 * partition: the LSO may advance, an ABORT adds the range to the
 * aborted-transaction index.  A marker for a producer with no open
 * transaction on the partition is still written (Kafka does).  Returns its
 * offset.
 *
 * The marker's offset is taken at once (not at commit as produced records'
 * are), so the high watermark of the partition waits for the caller's
 * transaction to end: keep it short.  Records the same transaction
 * buffers for the partition come after the marker.  The caller has locked
 * the topic (AccessShareLock) and checked the partition.
 */
extern int64 SlTxnWriteMarker(const SlTopic *topic, int32 partition, int64 producer_id,
							  int16 producer_epoch, bool commit, int32 coordinator_epoch);

/*
 * First offset of the oldest open transaction, or the high watermark if
 * none (never above the high watermark, nor below the log start offset).
 * Reads the committed state with the latest snapshot; needs a transaction.
 */
extern int64 SlPartitionLastStableOffset(int32 topic_id, int32 partition);

/*
 * The aborted transactions of a partition that overlap [from_offset,
 * to_offset) (last_offset >= from_offset and first_offset < to_offset),
 * ordered by first offset, palloc'd in the caller's context; *count says
 * how many.  Needs a transaction.
 */
extern SlAbortedTxn *SlTxnAbortedInRange(int32 topic_id, int32 partition,
										 int64 from_offset, int64 to_offset,
										 int *count);

/*
 * What a partition's shared state knows of its transactions, so that the
 * LSO of a partition without open transactions costs no query (known:
 * counted at load; false on a standby, which always queries).
 * open_txns is an upper bound of the open transactions, lso_queries and
 * lso_skipped count the LSOs computed with and without the query since
 * the state was loaded.
 */
typedef struct SlPartitionTxnStats
{
	bool		known;
	int32		open_txns;
	bool		may_have_aborted;
	int64		lso_queries;
	int64		lso_skipped;
} SlPartitionTxnStats;

extern void SlPartitionTxnStatsGet(int32 topic_id, int32 partition,
								   SlPartitionTxnStats *stats);

/* An open transaction of a partition (streamlog.txn_open) */
typedef struct SlOpenTxn
{
	int64		producer_id;
	int16		producer_epoch;
	int64		first_offset;
} SlOpenTxn;

/*
 * Open transactions of a partition, oldest first (for DescribeProducers
 * and the coordinator's recovery); palloc'd, *count says how many
 */
extern SlOpenTxn *SlTxnOpenList(int32 topic_id, int32 partition, int *count);

#endif							/* SL_STORAGE_TRANSACTIONS_H */
