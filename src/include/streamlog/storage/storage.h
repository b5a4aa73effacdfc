/*
 * The storage API: the one seam between the front doors (SQL functions, and
 * later the Kafka broker) and the relations that hold topics and their logs.
 *
 * Vocabulary.  A topic has partitions; a partition is a log of records with
 * increasing offsets, stored as Kafka RecordBatch v2 batches in a chain of
 * segment tables.  The high watermark (HWM) is the offset below which every
 * offset is either committed or known to be abandoned: readers never look at
 * or past it, which is what keeps a consumer from skipping a record that
 * commits late.  The log start offset is the first offset retention kept.
 *
 * This is storage's public header: what the server, the SQL functions and
 * the workers may use.  The rest of storage (partition state, segments,
 * catalog queries, ...) is in storage/internal/, for src/storage/ only;
 * scripts/check_layers.py enforces it.  The entry point's set-up calls are
 * in storage_init.h.
 */
#ifndef SL_STORAGE_H
#define SL_STORAGE_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "storage/lockdefs.h"
#include "utils/jsonb.h"
#include "streamlog/protocol/offsets_records.h"
#include "streamlog/protocol/records.h"
#include "streamlog/storage/partitioner.h"

#define SL_TOPIC_NAME_MAX 249

/* Effective configuration of a topic (Kafka's names in comments) */
typedef struct SlTopicConfig
{
	bool		compact;			/* cleanup.policy has "compact" */
	bool		delete_policy;		/* cleanup.policy has "delete" */
	int64		delete_retention_ms;	/* delete.retention.ms */
	int64		min_compaction_lag_ms;	/* min.compaction.lag.ms */
	int64		max_compaction_lag_ms;	/* max.compaction.lag.ms */
	double		min_cleanable_dirty_ratio;	/* min.cleanable.dirty.ratio */
	bool		key_index;			/* key.index (streamlog's own) */
	int			compression;		/* compression.type; -1 = producer */
	int32		max_message_bytes;	/* max.message.bytes */
	/* min.insync.replicas; -1: the server's (SlTopicMinInsyncReplicas) */
	int32		min_insync_replicas;
	bool		log_append_time;	/* message.timestamp.type */
	/*
	 * message.timestamp.before.max.ms, after.max.ms and difference.max.ms as
	 * set: read them through SlTopicTimestampBeforeMaxMs/AfterMaxMs.
	 */
	int64		timestamp_before_max_ms;
	int64		timestamp_after_max_ms;
	int64		timestamp_difference_max_ms;
	SlPartitioner partitioner;		/* partitioner (streamlog's own) */
	int64		retention_bytes;	/* retention.bytes; -1 = unlimited */
	int64		retention_ms;		/* retention.ms; -1 = forever */
	int64		segment_bytes;		/* segment.bytes */
	int64		segment_ms;			/* segment.ms */
} SlTopicConfig;

/* Fewest in-sync replicas an acks=all produce needs (min.insync.replicas) */
extern int32 SlTopicMinInsyncReplicas(const SlTopicConfig *config);

/*
 * How far a CreateTime record's timestamp may lie before / after the
 * broker's clock.  As in Kafka 3.6+, the deprecated
 * message.timestamp.difference.max.ms stands in for a bound left at its
 * default (Long.MAX_VALUE).
 */
static inline int64
SlTopicTimestampBeforeMaxMs(const SlTopicConfig *config)
{
	return config->timestamp_before_max_ms != PG_INT64_MAX ?
		config->timestamp_before_max_ms : config->timestamp_difference_max_ms;
}

static inline int64
SlTopicTimestampAfterMaxMs(const SlTopicConfig *config)
{
	return config->timestamp_after_max_ms != PG_INT64_MAX ?
		config->timestamp_after_max_ms : config->timestamp_difference_max_ms;
}

/*
 * Does a CreateTime timestamp lie within the topic's bounds around now_ms?
 * If not, *lower and *upper say what the bounds are (saturated at the ends
 * of int64).  Kafka exempts records without a timestamp (-1): the caller
 * decides whether ts is one.
 */
static inline bool
SlTopicTimestampInRange(const SlTopicConfig *config, int64 ts, int64 now_ms,
						int64 *lower, int64 *upper)
{
	int64		before = SlTopicTimestampBeforeMaxMs(config);
	int64		after = SlTopicTimestampAfterMaxMs(config);

	/* Both bounds are >= 0 and now_ms is after 1970: only the sums overflow */
	*lower = now_ms - before;
	*upper = after > PG_INT64_MAX - now_ms ? PG_INT64_MAX : now_ms + after;
	return ts >= *lower && ts <= *upper;
}

/*
 * Compacted topics (cleanup.policy has "compact") refuse records without a
 * key, as Kafka does: compaction keeps the newest record of each key, and a
 * record without one would have no meaning there.  Each door checks it
 * where it looks at records: SlLogBufferRecord for SQL, the Produce
 * handler's batch validation for Kafka.
 */
static inline bool
SlTopicRequiresKeys(const SlTopicConfig *config)
{
	return config->compact;
}

/* A partition's leader when it has none (offline) */
#define SL_NO_LEADER (-1)

/*
 * Who leads a partition, as the cluster's metadata last said (streamlog.
 * partition; README, "Running a cluster").  A node on its own leads all
 * its partitions, the only replica, in epoch 0.  replicas and isr are node
 * ids; the first replica is the preferred leader.
 */
typedef struct SlPartitionLeadership
{
	int32		leader;			/* node id, or SL_NO_LEADER */
	int32		leader_epoch;	/* +1 on every change of leader */
	int32		partition_epoch;	/* +1 on any change */
	int32		nreplicas;
	int32		nisr;
	const int32 *replicas;
	const int32 *isr;
} SlPartitionLeadership;

typedef struct SlTopic
{
	int32		topic_id;
	int32		partition_count;
	uint8		uuid[16];		/* Kafka's topic id */
	char		name[SL_TOPIC_NAME_MAX + 1];
	Oid			owner;			/* the role that created it (storage/acl.h) */
	SlTopicConfig config;

	/*
	 * [partition_count], by partition, allocated with the copy of the topic
	 * the lookup returned (and replicas and isr with it): a plain struct
	 * copy of an SlTopic shares them, and lives no longer than the original.
	 */
	const SlPartitionLeadership *partitions;
} SlTopic;

/* Partition partition's leadership; the caller has checked the number */
static inline const SlPartitionLeadership *
SlTopicPartitionLeadership(const SlTopic *topic, int32 partition)
{
	Assert(partition >= 0 && partition < topic->partition_count);
	return &topic->partitions[partition];
}

/* topics.c */

/*
 * Lookups return a copy of the topic, palloc'd in the current memory
 * context: it stays valid however the backend's cache changes (any lookup,
 * and any lock wait, may rebuild it).  A topic that is not locked may be
 * stale by the time it is used; take the lock (SlTopicLookupAndLock) before
 * reading or changing the topic's log.
 */

/*
 * Find a topic by name through the backend's cache.  Errors out with
 * undefined_object if missing and !missing_ok.
 */
extern const SlTopic *SlTopicLookup(const char *name, bool missing_ok);

/*
 * Like SlTopicLookup, and also take the topic's lock in the given mode for
 * the rest of the transaction (AccessShareLock to read or produce, which
 * keeps the topic from being dropped or resized under us).  The result is
 * the topic as it is once the lock is held: a change that committed while
 * we waited for the lock is seen.  Errors out if the topic does not exist
 * (or was dropped while we waited).
 */
extern const SlTopic *SlTopicLookupAndLock(const char *name, LOCKMODE mode);

/* The same, but NULL if the topic does not exist or was dropped meanwhile */
extern const SlTopic *SlTopicTryLookupAndLock(const char *name, LOCKMODE mode);

/*
 * Does a transaction wait for a lock on the topic that conflicts with the
 * one this transaction holds in mode held?  For long holders that should
 * give way (the log cleaner).
 */
extern bool SlTopicLockHasWaiters(int32 topic_id, LOCKMODE held);

/*
 * Does this transaction hold the topic's lock, in any mode (it produced to,
 * read or changed the topic)?  A change of the topic that only another
 * process can apply would then wait for this transaction's end.
 */
extern bool SlTopicLockedByMe(int32 topic_id);

/* Topic by id (for the cleaner); NULL if gone */
extern const SlTopic *SlTopicLookupById(int32 topic_id);

/* Topic by Kafka topic id (uuid); NULL if none */
extern const SlTopic *SlTopicLookupByUuid(const uint8 *uuid);

/* Names of every topic, in name order */
extern List *SlTopicListNames(void);

/*
 * Topics by owner, for what DROP ROLE and REASSIGN OWNED do to them
 * (storage/acl.h): the names of role's topics in name order, and giving
 * them all to another role (returns their names).  Both work whatever the
 * caller may read of the catalogue.
 */
extern List *SlTopicListOwnedBy(Oid role);
extern List *SlTopicReassignOwner(Oid from, Oid to);

/*
 * Topics as clients create and drop them.  Names of internal topics are
 * refused with reserved_name (see SlTopicNameIsInternal).
 */
extern void SlTopicCreate(const char *name, int32 partitions, Jsonb *config);
extern bool SlTopicDrop(const char *name, bool missing_ok);

/* Create one of streamlog's own internal topics ("__" names only) */
extern void SlTopicCreateInternal(const char *name, int32 partitions, Jsonb *config);
extern void SlTopicAlterConfig(const char *name, Jsonb *changes);
extern int32 SlTopicAddPartitions(const char *name, int32 count);

/*
 * The checks of the calls above without their change, for a door that
 * hands the change to the cluster's controller instead (cluster mode):
 * the same errors, for the same reasons.  Create: name (free, no internal
 * name unless internal), partitions, config, the partition budget of the
 * caller; returns the config normalized as it would be stored.  Alter:
 * returns the topic's whole explicit config with changes applied,
 * normalized.  Add partitions: count and the budget of the topic's owner.
 */
extern Jsonb *SlTopicCheckCreate(const char *name, int32 partitions, Jsonb *config,
								 bool internal);
extern Jsonb *SlTopicCheckAlterConfig(const SlTopic *topic, Jsonb *changes);
extern void SlTopicCheckAddPartitions(const SlTopic *topic, int32 count);

/* Check a topic name against Kafka's rules; errors out if invalid */
extern void SlTopicValidateName(const char *name);

/*
 * Names beginning with "__" belong to internal topics, which streamlog
 * creates and writes itself, as Kafka does its __consumer_offsets and
 * __transaction_state.  Clients may read them, and nothing more.
 */
#define SL_INTERNAL_TOPIC_PREFIX "__"

extern bool SlTopicNameIsInternal(const char *name);

/*
 * Error out with reserved_name if name is an internal topic's; action is
 * what a client asked to do with it ("create", "drop", "produce to").
 */
extern void SlTopicRefuseInternal(const char *name, const char *action);

/* Settings set explicitly on a topic (NULL if none) */
extern Jsonb *SlTopicExplicitConfig(int32 topic_id);

/* Ids of every topic, for the cleaner */
extern List *SlTopicListIds(void);

/* Error out unless partition is within the topic */
extern void SlTopicCheckPartition(const SlTopic *topic, int32 partition);

/* topic_lock_cache.c */

/*
 * The fast path of a caller that locks the same topic again and again in
 * one transaction (SQL produce(), called once per row): a cache of the
 * topic it last locked, kept by the caller (in fn_extra, zeroed at first).
 * Its fields are storage's.
 */
typedef struct SlTopicLockCache
{
	SlTopic		topic;
	LOCKMODE	mode;
	LocalTransactionId lxid;	/* transaction that holds the lock */
	uint64		subxact_aborts; /* its subtransaction aborts then */
	uint64		generation;		/* catalog generation then */
} SlTopicLockCache;

/*
 * SlTopicLookupAndLock(name, mode), without the lookup when the cache
 * already holds name, locked in mode by this transaction: valid as long as
 * no subtransaction of the transaction aborted since (which released the
 * lock) and no topic DDL committed since (which may have changed the
 * topic).  *refilled (if not NULL) says whether the cache was refilled,
 * for callers that derive state from the topic.
 */
extern const SlTopic *SlTopicLookupAndLockCached(SlTopicLockCache *cache,
												 const char *name, LOCKMODE mode,
												 bool *refilled);

/* topic_config.c */

extern void SlTopicConfigDefaults(SlTopicConfig *config);

/*
 * Validate explicit settings (jsonb object of Kafka config names to string
 * or number values) and apply them over config.  Errors out naming the
 * offending config.  Returns the normalized settings (all values strings).
 */
extern Jsonb *SlTopicConfigApply(Jsonb *settings, SlTopicConfig *config);

/*
 * Kafka's config types, with the ids DescribeConfigs gives them (v3+).
 * Topic configs have no secrets: none is of type password.
 */
typedef enum SlConfigType
{
	SL_CONFIG_TYPE_UNKNOWN = 0,
	SL_CONFIG_TYPE_BOOLEAN = 1,
	SL_CONFIG_TYPE_STRING = 2,
	SL_CONFIG_TYPE_INT = 3,
	SL_CONFIG_TYPE_LONG = 5,
	SL_CONFIG_TYPE_DOUBLE = 6,
	SL_CONFIG_TYPE_LIST = 7
} SlConfigType;

/*
 * Every config name and its effective value, in name order, with what Kafka
 * says of it: its type, documentation, and the broker config it takes its
 * default from (its synonym; NULL if none) with the default in that
 * config's unit (log.retention.hours is 168 where retention.ms is
 * 604800000).  enforced is false for the configs streamlog accepts and
 * stores but does not act on.
 */
typedef struct SlConfigEntry
{
	const char *name;
	char	   *value;
	bool		is_default;
	SlConfigType type;
	bool		enforced;
	const char *synonym;
	const char *synonym_default;
	const char *doc;
} SlConfigEntry;

extern List *SlTopicConfigDescribe(Jsonb *explicit_settings);

/* Kafka's type of a topic config; SL_CONFIG_TYPE_UNKNOWN if there is none */
extern SlConfigType SlTopicConfigTypeOf(const char *name);

/* Partitions */

/*
 * Shared state is per database and per installation of the extension
 * (topic ids restart when it is dropped and created again), hence the
 * database and the OID of the streamlog.topic table in the key.
 */
typedef struct SlPartitionKey
{
	Oid			database;
	Oid			catalog;
	int32		topic_id;
	int32		partition;
} SlPartitionKey;

/* Key of a partition of a topic of this database's streamlog */
extern SlPartitionKey SlMakePartitionKey(int32 topic_id, int32 partition);

/* partition_state.c */

/*
 * The offsets of a partition that readers go by, as they are now: the log
 * start offset (the first retention kept) and the high watermark.  The
 * caller has locked the topic.
 */
typedef struct SlPartitionOffsets
{
	int64		log_start_offset;
	int64		high_watermark;
	/*
	 * The committed log end: the high watermark, but on a replicated
	 * partition (replica_progress.h), where it may be ahead
	 */
	int64		log_end_offset;
} SlPartitionOffsets;

extern void SlPartitionGetOffsets(int32 topic_id, int32 partition,
								  SlPartitionOffsets *offsets);

/* log_append.c */

/* One record handed to the log */
typedef struct SlProduceRecord
{
	int64		timestamp;		/* ms since epoch */
	const uint8 *key;
	int32		key_len;		/* -1 = null */
	const uint8 *value;
	int32		value_len;		/* -1 = null */
	const SlRecordHeader *headers;
	int			nheaders;
} SlProduceRecord;

/*
 * Buffer a record for the current transaction; it is appended to the log at
 * commit (offsets are assigned then, in commit order).  The caller has
 * locked the topic (SlTopicLookupAndLock).  Errors out with
 * null_value_not_allowed for a record without a key on a compacted topic.
 */
extern void SlLogBufferRecord(const SlTopic *topic, int32 partition,
							  const SlProduceRecord *record);

/*
 * The same for a partition that another node leads: at commit its batches
 * go to this node's forward queue (storage/forward_queue.h), which the
 * forwarder delivers to the leader after the commit, exactly once and in
 * commit order.
 */
extern void SlLogForwardRecord(const SlTopic *topic, int32 partition,
							   const SlProduceRecord *record);

/*
 * Buffer a whole batch received from a Kafka producer (validated by the
 * caller: header, CRC, records) for the current transaction.  The caller
 * computed min_timestamp and max_timestamp from the records (-1 if none has
 * a timestamp; min over those that have one): a header whose maxTimestamp
 * differs is rewritten, with its CRC, and a well-formed batch is stored
 * byte for byte.  At commit it gets its base offset, written to
 * *base_offset_out if not NULL, and on a LogAppendTime topic the append
 * time it is stamped with, written to *log_append_time_out if not NULL.
 *
 * A batch of an idempotent producer (a producer id >= 0) must have passed
 * SlProducerCheckBatch; its sequences are noted here, with
 * base_offset_out as where a retry finds its offset.
 */
extern void SlLogBufferBatch(const SlTopic *topic, int32 partition,
							 const uint8 *data, size_t len,
							 const SlBatchHeader *hdr, int64 min_timestamp,
							 int64 max_timestamp, int64 *base_offset_out,
							 int64 *log_append_time_out);

/*
 * SlLogBufferBatch without the copy: the batch stays where data is, which
 * must stay valid and writable until the transaction ends (a Kafka
 * request's frame, held until it is answered); its base offset, leader
 * epoch and, if they need it, maxTimestamp and CRC are written there.
 * Saves copying every byte a producer sends once more before it is
 * written.
 */
extern void SlLogBufferBatchInPlace(const SlTopic *topic, int32 partition,
									uint8 *data, size_t len,
									const SlBatchHeader *hdr, int64 min_timestamp,
									int64 max_timestamp, int64 *base_offset_out,
									int64 *log_append_time_out);

/* producers.c: idempotent producers (P6) */

typedef enum SlSequenceCheck
{
	SL_SEQUENCE_OK,				/* the next batch: store it */
	SL_SEQUENCE_DUPLICATE,		/* a retry of a stored batch: don't */
	SL_SEQUENCE_OUT_OF_ORDER,	/* a gap or a reordering */
	SL_SEQUENCE_FENCED			/* an older epoch of the producer */
} SlSequenceCheck;

/*
 * Check a batch received from a producer (its header, hdr) against what
 * the partition stored and what this transaction buffered: its producer
 * id, epoch and sequences.  A batch without a producer id is always OK.
 * For a duplicate, *duplicate_offset is the stored batch's base offset (-1
 * if it is still being committed).  Check every batch of a request before
 * buffering any with SlLogBufferBatch, which notes each for the checks that
 * follow (and for other transactions once this one commits).
 */
extern SlSequenceCheck SlProducerCheckBatch(const SlTopic *topic, int32 partition,
											const SlBatchHeader *hdr,
											int64 *duplicate_offset);

/*
 * The newest stored batch of producer_id in partition, as the checks above
 * know it: its epoch, last sequence and the offset after it (-1 if not
 * known).  False if the producer is not known there.  For forwarded
 * batches (sqlapi/forward_sql.c), whose producer never skips a sequence:
 * a batch of that epoch ending at or below last_seq was stored.
 */
extern bool SlProducerNewestBatch(const SlTopic *topic, int32 partition, int64 producer_id,
								  int16 *epoch, int32 *last_seq, int64 *end_offset);

/*
 * One producer of a partition: its epoch and newest sequence (-1: none),
 * the time of its newest batch or marker and the coordinator epoch of its
 * newest marker (-1: none known)
 */
typedef struct SlProducerState
{
	int64		producer_id;
	int16		producer_epoch;
	int32		last_sequence;
	int64		last_timestamp;
	int32		coordinator_epoch;
} SlProducerState;

/*
 * The producers a partition's sequence checks know, in no order;
 * palloc'd, *count says how many (DescribeProducers)
 */
extern SlProducerState *SlProducersOfPartition(const SlTopic *topic, int32 partition,
											   int *count);

/* producer_ids.c */

/*
 * A new producer id for InitProducerId, never given before in this
 * installation, not even before a restart.  Needs a transaction.
 */
extern int64 SlProducerIdAllocate(void);

/* log_read.c */

/*
 * A scan over stored batches of one partition, between offsets and
 * timestamps, up to the HWM seen when the scan started.  The caller has
 * locked the topic.
 */
typedef struct SlLogScan SlLogScan;

typedef struct SlLogScanBounds
{
	int64		from_offset;	/* inclusive */
	int64		to_offset;		/* inclusive; PG_INT64_MAX = no bound */
	int64		from_ts;		/* ms, inclusive; PG_INT64_MIN = no bound */
	int64		to_ts;			/* ms, inclusive; PG_INT64_MAX = no bound */
	bool		error_below_start;	/* from below log start: error, else clamp */
	/*
	 * Kafka's read_committed (transactions.h): stop at the last stable
	 * offset, and records skip aborted transactions.  Records never
	 * include transaction markers, whatever this says.
	 */
	bool		read_committed;
} SlLogScanBounds;

/* Bounds of the whole log, from offset 0 (clamped to the log start) */
extern void SlLogScanBoundsInit(SlLogScanBounds *bounds);

extern SlLogScan *SlLogScanBegin(const SlTopic *topic, int32 partition,
								 const SlLogScanBounds *bounds);

/*
 * Next record within bounds; false at the end.  rec's pointers stay valid
 * until the next call.
 */
extern bool SlLogScanNext(SlLogScan *scan, SlRecord *rec);
extern void SlLogScanEnd(SlLogScan *scan);

/*
 * Stored batches, as stored (for Fetch): the batch that holds from_offset
 * first, then the following ones below the HWM.  SlLogScanPeekBatch finds
 * the next one and gives its size, without copying it; SlLogScanCopyBatch
 * then copies it (len bytes) to dst, or the caller stops there.
 */
extern bool SlLogScanPeekBatch(SlLogScan *scan, size_t *len, int64 *base_offset,
							   int64 *last_offset);
extern void SlLogScanCopyBatch(SlLogScan *scan, uint8 *dst);

/* The HWM and log start offset the scan works with */
extern int64 SlLogScanHighWatermark(SlLogScan *scan);
/* Where it stops: the HWM, or the last stable offset if read_committed */
extern int64 SlLogScanReadLimit(SlLogScan *scan);
extern int64 SlLogScanLogStart(SlLogScan *scan);

/* The append time of the batch SlLogScanPeekBatch found last */
extern int64 SlLogScanBatchAppendTime(SlLogScan *scan);

/* latest.c: topics as tables */

/*
 * The current record of key in topic: the newest record with that key, in
 * partition or in any (-1; where a key has records in several partitions
 * the newest timestamp wins).  False if there is none, or if it is a
 * tombstone (a null value).  Uses the topic's key index if it has one,
 * else reads the log.  The record's bytes are palloc'd in the caller's
 * context.  The caller has locked the topic.
 */
extern bool SlLogLatest(const SlTopic *topic, const uint8 *key, int32 key_len,
						int32 partition, int32 *partition_out, SlRecord *rec_out);

/*
 * Every key's current record in topic, by the rule of SlLogLatest, handed
 * to emit one by one (in partition and offset order; rec's pointers stay
 * valid during the call).  Bounded memory: sorts spill past work_mem.
 * The caller has locked the topic.
 */
typedef void (*SlLatestEmit) (void *arg, int32 partition, const SlRecord *rec);

extern void SlLogLatestAll(const SlTopic *topic, SlLatestEmit emit, void *arg);

/* key_index.c */

/*
 * Delete the key index entries of a partition below its log start (a
 * no-op unless the topic has a key index and the log start moved since);
 * the cleaner calls it after retention.  A failure is logged as a
 * warning, in a subtransaction of its own: it never undoes the caller's
 * work nor errors out.
 */
extern void SlKeyIndexPrune(const SlTopic *topic, int32 partition);

/* retention.c */

/*
 * In a transaction: if the active segment is due to roll (segment.bytes,
 * segment.ms, or fully past retention.ms), create the next segment and
 * return true with its seq and relid.
 */
extern bool SlRetentionPrepareRoll(const SlTopic *topic, int32 partition,
								   int64 now_ms, int32 *seq, Oid *relid);

/*
 * In a later transaction: switch appends to the segment made by
 * SlRetentionPrepareRoll (if roll_relid is valid), then drop the segments
 * past retention.ms / retention.bytes.  Returns how many were dropped.
 */
extern int	SlRetentionApply(const SlTopic *topic, int32 partition, int64 now_ms,
							 int32 roll_seq, Oid roll_relid);

/* compaction.c: the log cleaner (cleanup.policy=compact) */

/* What one cleaning pass over a partition did */
typedef struct SlCompactionResult
{
	bool		cleaned;		/* a pass ran (false: nothing to clean) */
	bool		busy;			/* another cleaner holds the partition */
	int64		cleaned_offset; /* the checkpoint: first dirty offset */
	int64		records_removed;
	int64		bytes_reclaimed;
} SlCompactionResult;

/*
 * Run one cleaning pass over a partition of a compacted topic, in the
 * caller's transaction: its result is visible when that commits, and a
 * crash before leaves the log as it was.  The caller has locked the topic
 * (AccessShareLock).  forced: clean whatever is dirty (SQL clean()), else
 * only if due (min.cleanable.dirty.ratio, max.compaction.lag.ms, or a
 * tombstone's delete horizon passed).  background (the cleaner): if another
 * transaction is cleaning the partition, return with result->busy set
 * instead of waiting; and give way to a transaction that waits for a
 * stronger lock on the topic, with an error of SQLSTATE lock_not_available
 * (the caller rolls back, nothing is lost, a later round cleans).
 */
extern void SlCompactPartition(const SlTopic *topic, int32 partition, int64 now_ms,
							   bool forced, bool background, SlCompactionResult *result);

/* A pass failed: note the error in the partition's progress (own xact) */
extern void SlCompactionNoteError(int32 topic_id, int32 partition, const char *message);

/*
 * Drop tables of segments that compaction replaced, which no one has open
 * (never waiting for a lock).  Returns how many were dropped.
 */
extern int	SlCompactionDropRetired(void);

/* Progress of the cleaner on one partition, for streamlog.compaction */
typedef struct SlCompactionStatus
{
	int64		cleaned_offset;
	double		dirty_ratio;
	int64		dirty_bytes;
	TimestampTz last_run;		/* 0 = never */
	int64		passes;
	int64		records_removed;
	int64		bytes_reclaimed;
	char	   *last_error;		/* NULL = none */
} SlCompactionStatus;

extern void SlCompactionGetStatus(const SlTopic *topic, int32 partition, int64 now_ms,
								  SlCompactionStatus *status);

/* time helpers */
static inline int64
SlTimestampToKafka(TimestampTz ts)
{
	/* PostgreSQL counts microseconds from 2000-01-01, Kafka ms from 1970 */
	int64		ms = ts >= 0 ? ts / 1000 : -((-ts + 999) / 1000);

	return ms + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * 86400000;
}

static inline TimestampTz
SlKafkaToTimestamp(int64 ms)
{
	return (ms - (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * 86400000) * 1000;
}

/* delete_records.c */

/*
 * Kafka's DeleteRecords: move the log start offset of a partition up to
 * before_offset (-1 = the high watermark), dropping the segments wholly
 * below it.  Errors out with invalid_parameter_value for an offset past the
 * high watermark (or below -1).  Takes the topic's AccessExclusiveLock; the
 * shared state follows at commit.  Returns the new log start offset (the
 * low watermark), which never moves backwards.
 */
extern int64 SlPartitionDeleteRecords(const SlTopic *topic, int32 partition,
									  int64 before_offset);

/* ------------------------------------------------------------------------
 * group_offsets.c: committed offsets of consumer groups
 *
 * One row per (group, topic, partition) in streamlog.group_offset, shared
 * by Kafka groups and SQL consumers.  The committed offset is the next
 * offset the group will consume.  Every function works in the caller's
 * transaction and reads with the latest snapshot; the caller has an active
 * snapshot (as for any SPI use).
 * ------------------------------------------------------------------------
 */

typedef struct SlGroupOffset
{
	int32		topic_id;
	int32		partition;
	int64		committed_offset;	/* next offset to consume */
	int32		leader_epoch;	/* -1 = unknown */
	char	   *metadata;		/* NULL = none */
	TimestampTz committed_at;	/* filled in by fetch; ignored by commit */
} SlGroupOffset;

/* Error out (invalid_parameter_value) for a group name we refuse: empty */
extern void SlGroupValidateId(const char *group_id);

/*
 * Store committed offsets of a group (OffsetCommit): insert or overwrite,
 * metadata and leader epoch included, committed_at set to now.  Duplicate
 * partitions: the last one wins.  Errors out for a negative offset; the
 * caller has checked that the topics and partitions exist.  With nowait,
 * returns false and stores nothing if another transaction holds one of
 * the rows (an SQL consumer's open transaction, a concurrent commit), so a
 * broker worker never blocks (locks it took stay until the transaction
 * ends); otherwise waits for it and returns true.
 */
extern bool SlGroupOffsetsCommit(const char *group_id, const SlGroupOffset *offsets,
								 int count, bool nowait);

/*
 * Committed offsets of a group (OffsetFetch), of one topic or of all
 * (topic_id -1), ordered by topic id and partition; palloc'd in the
 * caller's context.  Partitions without a row are not listed (Kafka
 * answers -1 for them).  Never waits: rows another transaction is
 * changing are seen as last committed.
 */
extern SlGroupOffset *SlGroupOffsetsFetch(const char *group_id, int32 topic_id, int *count);

/*
 * Delete committed offsets of a group: all (DeleteGroups), of one topic,
 * or of one partition (OffsetDelete); -1 = any.  Returns how many rows
 * went.  With nowait, returns -1 and deletes nothing if another
 * transaction holds one of the rows; otherwise waits for it.
 */
extern int64 SlGroupOffsetsDelete(const char *group_id, int32 topic_id, int32 partition,
								  bool nowait);

/* Groups with committed offsets (ListGroups), in name order; List of char * */
extern List *SlGroupListIds(void);
extern bool SlGroupExists(const char *group_id);

/* What a group has committed for one partition, read without locking */
typedef struct SlGroupPosition
{
	bool		exists;			/* the group has a row for the partition */
	int64		committed_offset;
	TimestampTz committed_at;
} SlGroupPosition;

/* Positions of a group in every partition of topic (array by partition) */
extern SlGroupPosition *SlGroupPositions(const char *group_id, const SlTopic *topic);

/*
 * Claim partitions of a topic for a group in the current transaction
 * without waiting on anyone: lock the rows no other transaction holds
 * (SKIP LOCKED).  create_at[i] >= 0 says the group had no row for
 * partitions[i]: it is created at that offset, unless another transaction
 * is creating it.  Sets claimed[i], and offsets[i] to the committed offset
 * of each claimed partition; returns how many were claimed.  Claims last
 * until the transaction ends.  write_records false leaves out the
 * __consumer_offsets records of created rows: a transaction that will be
 * prepared cannot carry them (SlGroupSettle writes them afterwards).
 */
extern int	SlGroupClaim(const char *group_id, int32 topic_id, const int32 *partitions,
						 const int64 *create_at, int count, bool write_records,
						 bool *claimed, int64 *offsets);

/*
 * group_claim.c: the selection of consume().  Claim for group_id, in one
 * step, the fewest partitions of topic not yet tried[] whose records
 * (estimated from hwms[] and log_starts[], by partition, as the reading
 * node sees them) fill wanted, least recently served first.  Marks the
 * partitions tried; fills partitions[]/offsets[] (room for every
 * partition) with the claimed ones and their committed offsets and returns
 * how many; *exhausted when no untried candidate is left.
 */
extern int	SlGroupClaimNext(const char *group_id, const SlTopic *topic, const int64 *hwms,
							 const int64 *log_starts, int64 wanted, bool *tried,
							 bool write_records, int32 *partitions, int64 *offsets,
							 bool *exhausted);

/*
 * Set the committed offsets of partitions this transaction claimed;
 * write_records as for SlGroupClaim
 */
extern void SlGroupAdvance(const char *group_id, int32 topic_id, const int32 *partitions,
						   const int64 *offsets, int count, bool write_records);

/*
 * A consumer on another node moved these partitions from from_offsets[]
 * to to_offsets[] (README, "SQL consume() on any node"): lock their rows
 * (waiting), and where the committed offset is still the from offset
 * advance it; where it is already the to offset, write its
 * __consumer_offsets record again (a prepared advance carries none).
 * found[i] gets the committed offset afterwards, -1 if there is no row:
 * anything but to_offsets[i] means someone else moved it meanwhile.
 */
extern void SlGroupSettle(const char *group_id, int32 topic_id, const int32 *partitions,
						  const int64 *from_offsets, const int64 *to_offsets, int count,
						  int64 *found);

/*
 * group_remote_claims.c: what a consume() crossing nodes leaves behind
 * (README, "SQL consume() on any node").  On the consuming node, its
 * intents, in the caller's transaction: partitions advanced from_offsets
 * -> to_offsets under the gid of the coordinator's prepared transaction.
 */
typedef struct SlConsumeIntent
{
	char	   *gid;
	int32		coordinator;	/* the node that prepared it */
	char	   *group_id;
	int32		topic_id;
	int32		partition;
	int64		from_offset;
	int64		to_offset;
} SlConsumeIntent;

extern void SlConsumeIntentAdd(const char *gid, int32 coordinator, const char *group_id,
							   int32 topic_id, const int32 *partitions,
							   const int64 *from_offsets, const int64 *to_offsets,
							   int count);
/* Every intent, ordered by gid (a List of SlConsumeIntent *) */
extern List *SlConsumeIntentList(void);
extern void SlConsumeIntentForget(const char *gid);
extern void SlConsumeIntentForgetSet(const char *gid, const char *group_id, int32 topic_id);

/*
 * On the coordinator: a prepared transaction of a remote consumer marks its
 * gid, so that the mark exists exactly when it committed here; unmarking
 * says whether it was there.
 */
extern void SlRemoteClaimMark(const char *gid, const char *group_id, int32 topic_id);
extern bool SlRemoteClaimUnmark(const char *gid, const char *group_id, int32 topic_id);
/* A transaction prepared under gid waits on this node */
extern bool SlPreparedXactExists(const char *gid);
/*
 * pg_xact_status() of a full transaction id of this node: "committed",
 * "aborted" (also by a crash), "in progress", or NULL when too old to know
 */
extern char *SlXactStatus(uint64 full_xid);

/*
 * group_offsets_wait.c: this transaction wrote records of group_id to
 * offsets_topic (may be NULL); on a replicated partition, a backend's
 * COMMIT then returns only once they are replicated, or a WARNING says
 * why not (streamlog.offsets_commit_timeout_ms)
 */
extern void SlGroupOffsetsNoteWrite(const SlTopic *offsets_topic, const char *group_id);

/*
 * Wait until the high watermark of some partition of topic passes hwms[]
 * (indexed by partition, as read before), or until deadline; true if one
 * did.  Interrupts (cancel, statement_timeout) are served while waiting.
 * The caller has locked the topic.
 */
extern bool SlGroupWaitForRecords(const SlTopic *topic, const int64 *hwms,
								  TimestampTz deadline);

/* ------------------------------------------------------------------------
 * offsets_topic.c: Kafka's __consumer_offsets
 *
 * An internal compacted topic that group_offsets.c writes in the same
 * transaction as every change of the committed offsets, created on first
 * use (streamlog.offsets_topic_num_partitions partitions).
 * ------------------------------------------------------------------------
 */

#define SL_OFFSETS_TOPIC_NAME "__consumer_offsets"

/*
 * Create __consumer_offsets unless it exists, in the current transaction
 * (for the worker that creates it on first use: its transaction commits
 * at once).  Concurrent calls create it once.
 */
extern void SlOffsetsTopicCreate(void);

/*
 * Kafka's FindCoordinator on a cluster: true if __consumer_offsets exists
 * (or streamlog.offsets_topic is off); if not, starts the worker that
 * creates it, without waiting for it (one at a time per process, at most
 * once a second), and returns false: the caller answers
 * COORDINATOR_NOT_AVAILABLE, which clients retry, until the topic is here.
 */
extern bool SlOffsetsTopicCreateInBackground(void);

/*
 * The topic's explicit config as it is created with, for a node of a
 * cluster, which has the controller create it instead
 */
extern Jsonb *SlOffsetsTopicConfig(void);

/*
 * The partition of __consumer_offsets (of partitions partitions) that holds
 * group_id's records, as Kafka places it: its leader coordinates the group
 */
extern int32 SlOffsetsGroupPartition(const char *group_id, int32 partitions);

/*
 * Store a Kafka group's metadata (value NULL: its tombstone, the group is
 * gone) in the current transaction, as Kafka's coordinator does after a
 * rebalance completes or the group empties.  Does nothing if
 * streamlog.offsets_topic is off.
 */
extern void SlOffsetsTopicStoreGroup(const char *group_id,
									 const SlGroupMetadataValue *value);

/*
 * Expire committed offsets (offsets.retention.minutes): delete the rows of
 * groups not in keep_groups (List of char *: Kafka groups with members,
 * whose offsets never expire) committed before cutoff, and whole groups of
 * expire_groups (Kafka groups empty since before the cutoff), with their
 * tombstones, and the group's when it has no offsets left.  Rows an SQL
 * consumer holds are left for the next pass.  Returns how many rows went.
 */
extern int64 SlGroupOffsetsExpire(TimestampTz cutoff, List *keep_groups,
								  List *expire_groups);

#endif							/* SL_STORAGE_H */
