/*
 * A partition's log as replication sees it (CLUSTER.md sections 3 and 4):
 * the leader epochs stored in its batches, appending batches a leader
 * already gave offsets to, truncating to where an epoch ended, and reading
 * stored batches for a follower catching up.
 *
 * Every stored batch carries the leader epoch it was appended in, in its
 * partitionLeaderEpoch field (bytes 12-15 of a RecordBatch v2; outside its
 * CRC, like the base offset): the leader stamps its current epoch when it
 * appends (0 on a node of its own), a follower keeps the leader's.  So a
 * log answers "where did epoch E end?" (Kafka's OffsetForLeaderEpoch,
 * KIP-101/279) from its batches alone, and every replica holds the same
 * bytes (P9).
 *
 * The caller has locked the topic (SlTopicLookupAndLock) in every function
 * below; a follower's append and truncation take RowExclusiveLock like a
 * produce, so they do not wait for readers.
 */
#ifndef SL_STORAGE_REPLICA_LOG_H
#define SL_STORAGE_REPLICA_LOG_H

#include "streamlog/storage/storage.h"

/* A batch as a leader stored it, with the offsets and epoch it gave it */
typedef struct SlReplicaBatch
{
	int64		base_offset;
	int64		last_offset;
	int32		leader_epoch;	/* as stored in the batch's bytes */
	int64		append_time;	/* the leader's, ms since epoch */
	const uint8 *data;			/* the whole RecordBatch v2, as stored */
	size_t		len;
} SlReplicaBatch;

/* replica_append.c (owner: replstream) */

/*
 * Append a batch the partition's leader stored, at the offsets it gave it,
 * in the caller's transaction: only if it starts exactly at this log's end
 * (returns SL_REPLICA_APPENDED; the end moves past it at commit), never
 * assigning offsets.  A batch below the end is SL_REPLICA_HAVE (already
 * held: skipped), one above it SL_REPLICA_GAP (catch up first).  The batch
 * is validated as a produce's would be (magic 2, CRC, offset deltas, the
 * stored epoch equal to leader_epoch) and SL_REPLICA_INVALID changes
 * nothing.  Idempotent-producer state follows the appended batches, so a
 * follower that becomes leader deduplicates retries as its predecessor did.
 * SL_REPLICA_FENCED: this node has led the partition since the epoch in
 * which topic (as the caller read it) says the sender leads: too late,
 * nothing appended; the caller stops following that leader.
 */
typedef enum SlReplicaAppendResult
{
	SL_REPLICA_APPENDED,
	SL_REPLICA_HAVE,
	SL_REPLICA_GAP,
	SL_REPLICA_INVALID,
	SL_REPLICA_FENCED
} SlReplicaAppendResult;

extern SlReplicaAppendResult SlReplicaAppend(const SlTopic *topic, int32 partition,
											 const SlReplicaBatch *batch);

/*
 * A leader's door, before it checks or appends a batch of partition
 * (produce, forwarded SQL produce): false while an append this node began
 * as a follower, before it led, is still in flight (answer a retriable
 * error: NOT_LEADER_OR_FOLLOWER, as Kafka while a partition becomes
 * leader); none may begin afterwards.  True where this node does not lead
 * the partition as topic says, and on a node of its own.
 */
extern bool SlPartitionLeaderReady(const SlTopic *topic, int32 partition);

/* leader_epochs.c (owner: replicalog) */

/* The log end offset: the offset the next batch gets (committed batches) */
extern int64 SlPartitionLogEnd(const SlTopic *topic, int32 partition);

/* The leader epoch of the last batch of the log, -1 if it holds none */
extern int32 SlPartitionLastEpoch(const SlTopic *topic, int32 partition);

/*
 * Kafka's OffsetForLeaderEpoch on this log (LeaderEpochFileCache.
 * endOffsetFor; epoch_search.h): the largest epoch <= epoch that the log
 * holds batches of (*end_epoch), and the offset where it ended: the base
 * offset of the first batch of a larger epoch, or the log end if none.
 * current_epoch is this node's leader epoch of the partition if it leads
 * it (a leader knows its epoch before writing in it), else -1: epoch equal
 * to the latest of it and the stored ones answers (epoch, log end).  As
 * Kafka: no batch of any epoch <= epoch (retention took them) answers
 * (epoch, start of the first larger one); epoch -1 or above the latest
 * answers (*end_epoch -1, *end_offset -1), UNDEFINED.
 */
extern void SlPartitionEpochEndOffset(const SlTopic *topic, int32 partition,
									  int32 epoch, int32 current_epoch,
									  int32 *end_epoch, int64 *end_offset);

/*
 * The leader epoch of the batch holding offset (or of the first batch
 * after it, past a gap), -1 if the log holds none there: what ListOffsets
 * answers for the log start and for a record found by its timestamp
 */
extern int32 SlPartitionEpochAt(const SlTopic *topic, int32 partition, int64 offset);

/* replica_truncate.c (owner: replicalog) */

/*
 * Remove every batch at or above offset (a follower truncating to where its
 * leader's epoch ended), in the caller's transaction: the partition's shared
 * state (log end, high watermark, active segment), its idempotent-producer
 * state and key index follow.  A batch that straddles offset is removed
 * whole (batches are the unit of replication; the caller truncates to a
 * batch boundary the leader gave).  offset at or above the log end changes
 * nothing; below the log start offset it empties the log and moves the log
 * start offset to offset.  Not replicated: each replica truncates its own
 * log.  Returns the number of batches removed.  Appends to the partition
 * by other transactions wait until the caller's transaction ends (one in
 * flight is waited for first); the caller's own may follow at offset.
 * Truncate before appending to the partition in a transaction, not after:
 * a reservation in flight is waited for, the caller's own too (it ends
 * with the transaction), and an appender that reserves without
 * SlPartitionStateReserve must wait while another backend holds the
 * partition's truncation fence (partition_state.c) as that one does.
 */
extern int64 SlPartitionTruncate(const SlTopic *topic, int32 partition, int64 offset);

/*
 * Kafka's truncateFullyAndStartAt, for a follower whose leader's log starts
 * above this log's end (retention or DeleteRecords removed what it lacks):
 * remove every batch, whatever offset is, so that the next batch appended
 * must start at offset, and set the log start offset to log_start (at
 * least offset: the leader's log start may fall inside the first batch it
 * still holds, which starts at offset).  The high watermark becomes
 * offset.  Atomic and fenced as SlPartitionTruncate, in the caller's
 * transaction, before any append of it to the partition.  Returns the
 * number of batches removed.
 */
extern int64 SlPartitionTruncateFullyAndStartAt(const SlTopic *topic, int32 partition,
												int64 offset, int64 log_start);

/* replica_read.c (owner: replicalog) */

/*
 * Stored batches from offset on (the batch holding offset first; below the
 * log start, the first batch kept, which tells the caller where the log
 * starts now), up to max_bytes (at least one batch), up to the committed
 * log end (not only the high watermark: followers replicate what the
 * leader holds); emit is called with each.  Returns the number emitted; 0
 * at the end.  For a follower's catch-up of history older than its
 * replication slot.
 */
typedef void (*SlReplicaBatchEmit) (const SlReplicaBatch *batch, void *arg);

extern int	SlReplicaRead(const SlTopic *topic, int32 partition, int64 offset,
						  int32 max_bytes, SlReplicaBatchEmit emit, void *arg);

#endif							/* SL_STORAGE_REPLICA_LOG_H */
