/*
 * Loading a partition of __transaction_state into streamlog.txn_state when
 * this node becomes its leader, and so the coordinator of its
 * transactional ids (txn_cluster.h; Kafka's
 * TransactionStateManager.loadTransactionsForTxnTopicPartition).
 *
 * As group offsets (group_offsets_load.c): streamlog.txn_state is a plain
 * table of each node, and the replicated log of the partition is what
 * survives a coordinator.  The load reads the whole partition up to the
 * committed log end, keeps the last record of each id (a tombstone removes
 * it), then replaces the rows of every id of the partition, in one
 * transaction.  Kafka's records name topics: partitions of a topic this
 * node does not know (dropped since) are left out.  The groups of
 * AddOffsetsToTxn are not in Kafka's record; on a cluster their partitions
 * of __consumer_offsets are in the transaction's partitions, as in Kafka,
 * which is what the markers need.
 *
 * The state of the loads is in shared memory, per partition: the leader
 * epoch it was loaded for.  Empty after a restart: the worker loads again.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "common/hashfn.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "streamlog/protocol/records.h"
#include "streamlog/protocol/txn_log_records.h"
#include "streamlog/storage/replica_log.h"
#include "streamlog/storage/txn_cluster.h"
#include "streamlog/storage/txn_state.h"

/* streamlog.transaction_state_topic_num_partitions's largest value */
#define MAX_TXN_STATE_PARTITIONS 1000

/* Kafka's TransactionState numbers, as the row keeps them (txn_machine.h) */
#define STATE_EMPTY 0
#define STATE_COMPLETE_ABORT 5
#define NO_PRODUCER -1

/* Batches read at a time while loading */
#define LOAD_READ_BYTES (1024 * 1024)

/* Records of one batch decompress to at most this */
#define LOAD_MAX_DECOMPRESSED (64 * 1024 * 1024)

typedef struct TxnClusterShared
{
	slock_t		mutex;
	Latch	   *worker_latch;
	int32		topic_id;		/* of __transaction_state; 0: none seen */
	int32		loaded_epoch[MAX_TXN_STATE_PARTITIONS];	/* -1: not loaded */
} TxnClusterShared;

static TxnClusterShared *txn_cluster = NULL;

Size
SlTxnClusterShmemSize(void)
{
	return MAXALIGN(sizeof(TxnClusterShared));
}

void
SlTxnClusterShmemInit(void)
{
	bool		found;

	txn_cluster = ShmemInitStruct("streamlog transaction coordinator loads",
								  sizeof(TxnClusterShared), &found);
	if (!found)
	{
		SpinLockInit(&txn_cluster->mutex);
		txn_cluster->worker_latch = NULL;
		txn_cluster->topic_id = 0;
		for (int i = 0; i < MAX_TXN_STATE_PARTITIONS; i++)
			txn_cluster->loaded_epoch[i] = -1;
	}
}

/* Under the mutex: a new topic id (dropped and created again) forgets all */
static void
same_topic(int32 topic_id)
{
	if (txn_cluster->topic_id == topic_id)
		return;
	txn_cluster->topic_id = topic_id;
	for (int i = 0; i < MAX_TXN_STATE_PARTITIONS; i++)
		txn_cluster->loaded_epoch[i] = -1;
}

int32
SlTxnStateLoadedEpoch(int32 topic_id, int32 partition)
{
	int32		epoch;

	if (txn_cluster == NULL || partition < 0 || partition >= MAX_TXN_STATE_PARTITIONS)
		return -1;
	SpinLockAcquire(&txn_cluster->mutex);
	same_topic(topic_id);
	epoch = txn_cluster->loaded_epoch[partition];
	SpinLockRelease(&txn_cluster->mutex);
	return epoch;
}

bool
SlTxnStateLoaded(int32 topic_id, int32 partition, int32 leader_epoch)
{
	if (SlTxnStateLoadedEpoch(topic_id, partition) == leader_epoch)
		return true;
	SlTxnCoordinatorWake();
	return false;
}

void
SlTxnStateMarkLoaded(int32 topic_id, int32 partition, int32 leader_epoch)
{
	if (txn_cluster == NULL || partition < 0 || partition >= MAX_TXN_STATE_PARTITIONS)
		return;
	SpinLockAcquire(&txn_cluster->mutex);
	same_topic(topic_id);
	txn_cluster->loaded_epoch[partition] = leader_epoch;
	SpinLockRelease(&txn_cluster->mutex);
}

void
SlTxnStateUnload(int32 topic_id, int32 partition)
{
	SlTxnStateMarkLoaded(topic_id, partition, -1);
}

void
SlTxnCoordinatorSetWorkerLatch(Latch *latch)
{
	if (txn_cluster == NULL)
		return;
	SpinLockAcquire(&txn_cluster->mutex);
	txn_cluster->worker_latch = latch;
	SpinLockRelease(&txn_cluster->mutex);
}

void
SlTxnCoordinatorWake(void)
{
	Latch	   *latch;

	if (txn_cluster == NULL)
		return;
	SpinLockAcquire(&txn_cluster->mutex);
	latch = txn_cluster->worker_latch;
	SpinLockRelease(&txn_cluster->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

/* One id and the last record the log holds for it */
typedef struct LoadEntry
{
	char		id[NAMEDATALEN * 4];	/* key of the hash: a prefix, see load_record */
	char	   *transactional_id;
	bool		live;
	SlTxnStateRow row;
} LoadEntry;

typedef struct LoadState
{
	HTAB	   *entries;
	int64		next_offset;
	int64		skipped;
} LoadState;

/* Kafka's record's topics and partitions as the row's topic ids */
static void
row_partitions(SlTxnStateRow *row, const SlTxnLogValue *v)
{
	int			total = 0;
	int			n = 0;

	for (int i = 0; i < v->ntopics; i++)
		total += Max(v->topics[i].npartitions, 0);
	row->topic_ids = palloc(sizeof(int32) * Max(total, 1));
	row->partitions = palloc(sizeof(int32) * Max(total, 1));
	for (int i = 0; i < v->ntopics; i++)
	{
		const SlTopic *topic = v->topics[i].topic ?
			SlTopicLookup(v->topics[i].topic, true) : NULL;

		if (topic == NULL)
			continue;
		for (int j = 0; j < v->topics[i].npartitions; j++)
		{
			int32		p = v->topics[i].partitions[j];

			if (p < 0 || p >= topic->partition_count)
				continue;
			row->topic_ids[n] = topic->topic_id;
			row->partitions[n] = p;
			n++;
		}
	}
	row->npartitions = n;
}

static void
load_record(LoadState *st, const SlRecord *rec)
{
	SlStr		tid;
	SlTxnLogValue v;
	char	   *id;
	char		key[NAMEDATALEN * 4];
	LoadEntry  *e;
	bool		found;

	if (rec->key == NULL || rec->key_len <= 0 ||
		SlDecodeTxnLogKey(rec->key, rec->key_len, &tid) != NULL ||
		tid.len <= 0 || tid.len > SL_TRANSACTIONAL_ID_MAX ||
		memchr(tid.data, '\0', tid.len) != NULL)
	{
		st->skipped++;
		return;
	}
	id = pnstrdup(tid.data, tid.len);

	/*
	 * The hash's key: the id's first bytes and its hash, enough to tell ids
	 * apart in practice; two ids that share both are told apart below
	 */
	memset(key, 0, sizeof(key));
	snprintf(key, sizeof(key), "%08x:%s",
			 (unsigned) hash_bytes((const unsigned char *) id, strlen(id)), id);
	e = hash_search(st->entries, key, HASH_ENTER, &found);
	if (found && strcmp(e->transactional_id, id) != 0)
	{
		st->skipped++;			/* a collision of both: keep the first id */
		return;
	}
	if (!found)
		e->transactional_id = id;
	if (rec->value == NULL)
	{
		e->live = false;
		return;
	}
	if (SlDecodeTxnLogValue(rec->value, rec->value_len, &v) != NULL ||
		v.status < STATE_EMPTY || v.status > STATE_COMPLETE_ABORT)
	{
		st->skipped++;
		return;
	}
	e->live = true;
	memset(&e->row, 0, sizeof(e->row));
	e->row.producer_id = v.producer_id;
	e->row.last_producer_id = NO_PRODUCER;
	e->row.producer_epoch = v.producer_epoch;
	e->row.last_producer_epoch = NO_PRODUCER;
	e->row.timeout_ms = v.timeout_ms;
	e->row.state = v.status;
	row_partitions(&e->row, &v);
	e->row.started_at = v.start_ms >= 0 ? SlKafkaToTimestamp(v.start_ms) : 0;
	e->row.updated_at = SlKafkaToTimestamp(v.last_update_ms);
}

static void
load_batch(const SlReplicaBatch *batch, void *arg)
{
	LoadState  *st = arg;
	SlRecordIter it;
	SlRecord	rec;

	st->next_offset = Max(st->next_offset, batch->last_offset + 1);
	if (SlRecordIterInit(&it, batch->data, batch->len, false, LOAD_MAX_DECOMPRESSED) != NULL)
	{
		st->skipped++;
		return;
	}
	while (SlRecordIterNext(&it, &rec))
		load_record(st, &rec);
	if (it.error)
		st->skipped++;
	SlRecordIterFree(&it);
}

int64
SlTxnStateDropPartition(const SlTopic *topic, int32 partition)
{
	List	   *ids = SlTxnStateIds();
	ListCell   *lc;
	int64		n = 0;

	foreach(lc, ids)
	{
		const char *id = lfirst(lc);

		if (SlTxnLogPartitionFor(id, topic->partition_count) != partition)
			continue;
		SlTxnStateForget(id);
		n++;
	}
	return n;
}

int64
SlTxnStateLoadPartition(const SlTopic *topic, int32 partition)
{
	LoadState	st;
	HASHCTL		info;
	HASH_SEQ_STATUS seq;
	LoadEntry  *e;
	int64		loaded = 0;

	memset(&st, 0, sizeof(st));
	memset(&info, 0, sizeof(info));
	info.keysize = NAMEDATALEN * 4;
	info.entrysize = sizeof(LoadEntry);
	info.hcxt = CurrentMemoryContext;
	st.entries = hash_create("streamlog transaction state load", 256, &info,
							 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	for (;;)
	{
		int64		from = st.next_offset;

		if (SlReplicaRead(topic, partition, from, LOAD_READ_BYTES, load_batch, &st) == 0 ||
			st.next_offset <= from)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	if (st.skipped > 0)
		ereport(LOG,
				(errmsg("streamlog: %lld records of %s-%d were not records Kafka's transaction coordinator writes; skipped",
						(long long) st.skipped, SL_TRANSACTION_STATE_TOPIC_NAME, partition)));

	(void) SlTxnStateDropPartition(topic, partition);
	hash_seq_init(&seq, st.entries);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (!e->live)
			continue;
		SlTxnStateRestore(e->transactional_id, &e->row);
		loaded++;
	}
	hash_destroy(st.entries);
	return loaded;
}
