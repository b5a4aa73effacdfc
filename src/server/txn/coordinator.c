/*-------------------------------------------------------------------------
 * coordinator.c
 *	  Kafka's transaction coordinator on one node (coordinator.h).
 *
 * The decisions are txn_machine.c's, after Kafka 3.9's
 * TransactionCoordinator; this file reads an id's state, applies the
 * decision, and stores it.  Kafka answers EndTxn once PrepareCommit is in
 * its log and writes the markers afterwards; here the markers go to
 * partitions of this node, in the same PostgreSQL transaction as the
 * Prepare and Complete records, so the answer comes when all of it is
 * durable and no Prepare state outlives a crash.  The periodic pass still
 * finishes any Prepare state it finds.  On a cluster EndTxn stores the
 * Prepare state only, and the coordinator's worker has the partitions'
 * leaders write the markers (coordinator_cluster.c).
 *
 * AddOffsetsToTxn records the group; the group's partition of
 * __consumer_offsets gets a marker at the end too, as in Kafka, when that
 * topic exists.
 *
 * IDENTIFICATION
 *	  src/server/txn/coordinator.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/producer_id_blocks.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/protocol/offsets_records.h"
#include "streamlog/server/txn/coordinator.h"
#include "streamlog/server/txn/coordinator_cluster.h"
#include "streamlog/server/txn/txn_machine.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/transactions.h"
#include "streamlog/storage/txn_cluster.h"
#include "streamlog/storage/txn_offsets.h"
#include "streamlog/storage/txn_state.h"

bool
SlTxnCoordinatorEnabled(void)
{
	return sl_transaction_coordinator;
}

static SlTxnMeta
meta_of(const SlTxnStateRow *row)
{
	SlTxnMeta	m;

	m.producer_id = row->producer_id;
	m.last_producer_id = row->last_producer_id;
	m.producer_epoch = row->producer_epoch;
	m.last_producer_epoch = row->last_producer_epoch;
	m.state = (SlTxnState) row->state;
	return m;
}

/* A new producer id from the same source as idempotent producers' */
static int64
new_producer_id(int16 *error)
{
	char	   *message = NULL;
	int64		id = SlProducerIdNext(error, &message);

	if (message != NULL)
		ereport(LOG, (errmsg("streamlog transaction coordinator: %s", message)));
	return id;
}

/* Write the marker of one partition, if its topic still exists */
static void
write_marker(int32 topic_id, int32 partition, const SlTxnStateRow *row, bool commit)
{
	const SlTopic *topic = SlTopicLookupById(topic_id);

	if (topic == NULL)
		return;
	topic = SlTopicTryLookupAndLock(topic->name, AccessShareLock);
	if (topic == NULL || topic->topic_id != topic_id || partition >= topic->partition_count)
		return;
	(void) SlTxnWriteMarker(topic, partition, row->producer_id, row->producer_epoch,
							commit, 0);
}

/*
 * From Prepare (already stored) to Complete: the markers of every
 * partition and of the groups' __consumer_offsets partitions, then the
 * Complete state with no partitions left.
 */
static void
finish(const char *transactional_id, SlTxnStateRow *row)
{
	bool		commit = row->state == SL_TXN_PREPARE_COMMIT;

	/*
	 * The offsets of TxnOffsetCommit first: a group whose offsets another
	 * transaction holds (an SQL consumer's) makes the whole end wait for a
	 * retry, rolled back, rather than block this worker
	 */
	for (int i = 0; i < row->ngroups; i++)
	{
		if (!commit)
			SlTxnOffsetsDiscard(row->producer_id, row->groups[i]);
		else if (!SlTxnOffsetsCommit(row->producer_id, row->groups[i], true))
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("cannot commit the offsets of transactional id \"%s\" for group \"%s\" now",
							transactional_id, row->groups[i]),
					 errdetail("Another transaction holds committed offsets of the group."),
					 errhint("Retry: the transaction ends once that one does.")));
	}
	for (int i = 0; i < row->npartitions; i++)
		write_marker(row->topic_ids[i], row->partitions[i], row, commit);
	if (row->ngroups > 0)
	{
		const SlTopic *offsets = SlTopicLookup(SL_OFFSETS_TOPIC_NAME, true);

		for (int i = 0; offsets != NULL && i < row->ngroups; i++)
			write_marker(offsets->topic_id,
						 SlOffsetsPartitionFor(row->groups[i], offsets->partition_count),
						 row, commit);
	}
	row->state = commit ? SL_TXN_COMPLETE_COMMIT : SL_TXN_COMPLETE_ABORT;
	row->npartitions = 0;
	row->ngroups = 0;
	SlTxnStateWrite(transactional_id, row);
}

/*
 * End the open transaction of row: Prepare, markers, Complete.  On a
 * cluster only Prepare: the coordinator's worker has the partitions'
 * leaders write the markers and then stores Complete
 * (coordinator_cluster.h), as Kafka answers EndTxn once PrepareCommit is in
 * its log.
 */
static void
end_transaction(const char *transactional_id, SlTxnStateRow *row, bool commit)
{
	row->state = commit ? SL_TXN_PREPARE_COMMIT : SL_TXN_PREPARE_ABORT;
	SlTxnStateWrite(transactional_id, row);
	if (SlClusterEnabled())
	{
		SlTxnCoordinatorWake();
		return;
	}
	finish(transactional_id, row);
}

int16
SlTxnInitProducerId(const char *transactional_id, int32 timeout_ms,
					int64 expected_id, int16 expected_epoch,
					int64 *producer_id, int16 *producer_epoch)
{
	SlTxnStateRow row;
	SlTxnMeta	cur;
	SlTxnInitDecision d;
	int16		error = SL_ERR_NONE;

	*producer_id = -1;
	*producer_epoch = -1;
	if ((error = SlTxnCoordinatorError(transactional_id)) != SL_ERR_NONE)
		return error;
	if (timeout_ms <= 0 || timeout_ms > sl_transaction_max_timeout_ms)
		return SL_ERR_INVALID_TRANSACTION_TIMEOUT;
	if (!SlTxnStateTryLock(transactional_id))
		return SL_ERR_CONCURRENT_TRANSACTIONS;
	if (!SlTxnStateRead(transactional_id, &row))
	{
		memset(&row, 0, sizeof(row));
		row.producer_id = new_producer_id(&error);
		if (row.producer_id < 0)
			return error;
		row.last_producer_id = SL_TXN_NO_PRODUCER_ID;
		row.producer_epoch = SL_TXN_NO_PRODUCER_EPOCH;
		row.last_producer_epoch = SL_TXN_NO_PRODUCER_EPOCH;
		row.state = SL_TXN_EMPTY;
	}
	cur = meta_of(&row);
	SlTxnDecideInit(&cur, expected_id, expected_epoch, &d);
	switch (d.action)
	{
		case SL_TXN_INIT_FAIL:
			return d.error;
		case SL_TXN_INIT_RETURN:
			break;
		case SL_TXN_INIT_ROTATE:
			d.next.producer_id = new_producer_id(&error);
			if (d.next.producer_id < 0)
				return error;
			/* FALLTHROUGH */
		case SL_TXN_INIT_BUMP:
			row.producer_id = d.next.producer_id;
			row.last_producer_id = d.next.last_producer_id;
			row.producer_epoch = d.next.producer_epoch;
			row.last_producer_epoch = d.next.last_producer_epoch;
			row.state = SL_TXN_EMPTY;
			row.timeout_ms = timeout_ms;
			row.npartitions = 0;
			row.ngroups = 0;
			row.started_at = 0;
			SlTxnStateWrite(transactional_id, &row);
			break;
		case SL_TXN_INIT_FENCE_AND_ABORT:
			/* The zombie's epoch is fenced by the markers' */
			row.producer_epoch = d.next.producer_epoch;
			row.last_producer_epoch = d.next.last_producer_epoch;
			end_transaction(transactional_id, &row, false);
			return d.error;
	}
	*producer_id = row.producer_id;
	*producer_epoch = row.producer_epoch;
	return SL_ERR_NONE;
}

/* Lock and read an id for a call after InitProducerId; an error or 0 */
static int16
lock_and_read(const char *transactional_id, SlTxnStateRow *row, bool *found)
{
	int16		error = SlTxnCoordinatorError(transactional_id);

	*found = false;
	memset(row, 0, sizeof(*row));
	if (error != SL_ERR_NONE)
		return error;
	if (!SlTxnStateTryLock(transactional_id))
		return SL_ERR_CONCURRENT_TRANSACTIONS;
	*found = SlTxnStateRead(transactional_id, row);
	return SL_ERR_NONE;
}

/*
 * Start a transaction on row if none is open: Kafka's start timestamp,
 * and nothing left of the last one
 */
static void
begin_if_needed(SlTxnStateRow *row)
{
	if (row->state == SL_TXN_ONGOING)
		return;
	row->state = SL_TXN_ONGOING;
	row->started_at = GetCurrentTimestamp();
	row->npartitions = 0;
	row->ngroups = 0;
}

/* Order of partitions by topic id, then partition */
static int
partition_ref_cmp(const void *a, const void *b)
{
	const SlTxnPartitionRef *x = a;
	const SlTxnPartitionRef *y = b;

	if (x->topic_id != y->topic_id)
		return x->topic_id < y->topic_id ? -1 : 1;
	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	return 0;
}

/*
 * The transaction's partitions and the request's, each once, sorted: a
 * request may name a partition any number of times, so the merge sorts
 * rather than compares every pair.  Returns how many there are.
 */
static int
merge_partitions(const SlTxnStateRow *row, const SlTxnPartitionRef *parts, int nparts,
				 SlTxnPartitionRef **merged)
{
	SlTxnPartitionRef *all = palloc(sizeof(SlTxnPartitionRef) *
									(row->npartitions + nparts + 1));
	int			n = 0;

	for (int i = 0; i < row->npartitions; i++)
	{
		all[i].topic_id = row->topic_ids[i];
		all[i].partition = row->partitions[i];
	}
	if (nparts > 0)
		memcpy(all + row->npartitions, parts, sizeof(SlTxnPartitionRef) * nparts);
	qsort(all, row->npartitions + nparts, sizeof(SlTxnPartitionRef), partition_ref_cmp);
	for (int i = 0; i < row->npartitions + nparts; i++)
		if (n == 0 || partition_ref_cmp(&all[n - 1], &all[i]) != 0)
			all[n++] = all[i];
	*merged = all;
	return n;
}

/* Add parts to the open transaction of row (checked), starting it if needed */
static int16
add_partitions(const char *transactional_id, SlTxnStateRow *row, const SlTxnMeta *cur,
			   const SlTxnPartitionRef *parts, int nparts)
{
	SlTxnPartitionRef *merged;
	int			n;

	begin_if_needed(row);
	n = merge_partitions(row, parts, nparts, &merged);
	/* All in it already: nothing to store (Kafka's answer without a write) */
	if (n == row->npartitions && cur->state == SL_TXN_ONGOING)
		return SL_ERR_NONE;
	row->topic_ids = palloc(sizeof(int32) * Max(n, 1));
	row->partitions = palloc(sizeof(int32) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		row->topic_ids[i] = merged[i].topic_id;
		row->partitions[i] = merged[i].partition;
	}
	row->npartitions = n;
	SlTxnStateWrite(transactional_id, row);
	return SL_ERR_NONE;
}

int16
SlTxnAddPartitions(const char *transactional_id, int64 producer_id, int16 producer_epoch,
				   const SlTxnPartitionRef *parts, int nparts)
{
	SlTxnStateRow row;
	SlTxnMeta	cur;
	bool		found;
	int16		error = lock_and_read(transactional_id, &row, &found);

	if (error != SL_ERR_NONE)
		return error;
	cur = meta_of(&row);
	error = SlTxnCheckAddPartitions(found ? &cur : NULL, producer_id, producer_epoch);
	if (error != SL_ERR_NONE)
		return error;
	return add_partitions(transactional_id, &row, &cur, parts, nparts);
}

/*
 * AddOffsetsToTxn on a cluster, as Kafka: the group's partition of
 * __consumer_offsets joins the transaction's partitions, so that its
 * marker, written by the group's coordinator (its leader), makes the
 * offsets of TxnOffsetCommit visible there; and it survives a change of
 * transaction coordinator in __transaction_state, which holds partitions.
 * Before that topic exists (the group's FindCoordinator creates it, after
 * this call in the clients' order) the group alone is kept, and its
 * partition is added when the transaction ends (coordinator_cluster.c),
 * as Kafka adds a partition its configuration names.  True if it added
 * the partition to row.
 */
static bool
add_offsets_partition(SlTxnStateRow *row, const char *group_id)
{
	const SlTopic *offsets = SlTopicLookup(SL_OFFSETS_TOPIC_NAME, true);
	int32		p;
	int32	   *topic_ids;
	int32	   *partitions;

	if (offsets == NULL || offsets->partition_count <= 0)
	{
		(void) SlOffsetsTopicCreateInBackground();
		return false;
	}
	p = SlOffsetsPartitionFor(group_id, offsets->partition_count);
	for (int i = 0; i < row->npartitions; i++)
		if (row->topic_ids[i] == offsets->topic_id && row->partitions[i] == p)
			return false;
	topic_ids = palloc(sizeof(int32) * (row->npartitions + 1));
	partitions = palloc(sizeof(int32) * (row->npartitions + 1));
	if (row->npartitions > 0)
	{
		memcpy(topic_ids, row->topic_ids, sizeof(int32) * row->npartitions);
		memcpy(partitions, row->partitions, sizeof(int32) * row->npartitions);
	}
	topic_ids[row->npartitions] = offsets->topic_id;
	partitions[row->npartitions] = p;
	row->topic_ids = topic_ids;
	row->partitions = partitions;
	row->npartitions++;
	return true;
}

int16
SlTxnAddOffsets(const char *transactional_id, int64 producer_id, int16 producer_epoch,
				const char *group_id)
{
	SlTxnStateRow row;
	SlTxnMeta	cur;
	bool		found;
	int16		error = lock_and_read(transactional_id, &row, &found);
	char	  **groups;
	bool		added;

	if (error != SL_ERR_NONE)
		return error;
	cur = meta_of(&row);
	error = SlTxnCheckAddPartitions(found ? &cur : NULL, producer_id, producer_epoch);
	if (error != SL_ERR_NONE)
		return error;
	begin_if_needed(&row);
	added = SlClusterEnabled() && add_offsets_partition(&row, group_id);
	for (int i = 0; i < row.ngroups; i++)
		if (strcmp(row.groups[i], group_id) == 0 && cur.state == SL_TXN_ONGOING && !added)
			return SL_ERR_NONE;
	groups = palloc(sizeof(char *) * (row.ngroups + 1));
	for (int i = 0; i < row.ngroups; i++)
		groups[i] = row.groups[i];
	groups[row.ngroups++] = pstrdup(group_id);
	row.groups = groups;
	SlTxnStateWrite(transactional_id, &row);
	return SL_ERR_NONE;
}

int16
SlTxnEnd(const char *transactional_id, int64 producer_id, int16 producer_epoch, bool commit)
{
	SlTxnStateRow row;
	SlTxnMeta	cur;
	bool		found;
	int16		error = lock_and_read(transactional_id, &row, &found);

	if (error != SL_ERR_NONE)
		return error;
	cur = meta_of(&row);
	switch (SlTxnDecideEnd(found ? &cur : NULL, producer_id, producer_epoch, commit, &error))
	{
		case SL_TXN_END_FAIL:
			return error;
		case SL_TXN_END_DONE:
			return SL_ERR_NONE;
		case SL_TXN_END_PREPARE:
			end_transaction(transactional_id, &row, commit);
			break;
	}
	return SL_ERR_NONE;
}

int
SlTxnExpire(void)
{
	TimestampTz now = GetCurrentTimestamp();
	List	   *due = SlTxnStateDue(now, sl_transactional_id_expiration_ms);
	ListCell   *lc;
	int			changed = 0;

	foreach(lc, due)
	{
		const char *id = lfirst(lc);
		SlTxnStateRow row;
		SlTxnMeta	cur;

		/*
		 * On a cluster, only ids this node coordinates (a row of an id whose
		 * partition moved is unloaded by the worker)
		 */
		if (SlTxnCoordinatorError(id) != SL_ERR_NONE)
			continue;
		/* Busy: a request is changing it; the next pass looks again */
		if (!SlTxnStateTryLock(id) || !SlTxnStateRead(id, &row))
			continue;
		cur = meta_of(&row);
		switch (cur.state)
		{
			case SL_TXN_ONGOING:
				if (row.started_at + (int64) row.timeout_ms * 1000 >= now)
					continue;
				/* Fence the producer, as Kafka's abort of a timed-out one */
				row.producer_epoch = SlTxnFenceEpoch(&cur);
				row.last_producer_epoch = SL_TXN_NO_PRODUCER_EPOCH;
				end_transaction(id, &row, false);
				ereport(LOG,
						(errmsg("streamlog transaction coordinator: aborted the transaction of \"%s\" after its timeout of %d ms",
								id, row.timeout_ms)));
				break;
			case SL_TXN_PREPARE_COMMIT:
			case SL_TXN_PREPARE_ABORT:
				/*
				 * On a cluster the coordinator's worker completes them; the
				 * test hook keeps them in their Prepare state
				 */
				if (SlClusterEnabled() || sl_transaction_markers_hold)
					continue;
				finish(id, &row);
				break;
			case SL_TXN_EMPTY:
			case SL_TXN_COMPLETE_COMMIT:
			case SL_TXN_COMPLETE_ABORT:
				if (row.updated_at + (int64) sl_transactional_id_expiration_ms * 1000 >= now)
					continue;
				SlTxnStateRemove(id);
				break;
			default:
				continue;
		}
		changed++;
	}
	return changed;
}

int16
SlTxnCheckOffsetCommit(const char *transactional_id, int64 producer_id,
					   int16 producer_epoch, const char *group_id)
{
	SlTxnStateRow row;
	SlTxnMeta	cur;
	int16		error;

	/*
	 * On a cluster the group's coordinator is not the transaction's, whose
	 * state it does not hold: as Kafka 3.9 without KIP-890's verification
	 * of offset commits, it takes the offsets, and the transaction's marker
	 * decides their fate
	 */
	if (SlClusterEnabled())
		return SL_ERR_NONE;
	if (!SlTxnStateRead(transactional_id, &row))
		return SL_ERR_INVALID_PRODUCER_ID_MAPPING;
	cur = meta_of(&row);
	error = SlTxnCheckAddPartitions(&cur, producer_id, producer_epoch);
	if (error != SL_ERR_NONE)
		return error;
	/* KIP-890's verification: the group must be in the open transaction */
	if (cur.state != SL_TXN_ONGOING)
		return SL_ERR_INVALID_TXN_STATE;
	for (int i = 0; i < row.ngroups; i++)
		if (strcmp(row.groups[i], group_id) == 0)
			return SL_ERR_NONE;
	return SL_ERR_INVALID_TXN_STATE;
}

bool
SlTxnPartitionInTransaction(int64 producer_id, int16 producer_epoch, int32 topic_id,
							int32 partition)
{
	/*
	 * On a cluster the partition's leader does not hold the coordinator's
	 * state (Kafka asks the coordinator with AddPartitionsToTxn v4
	 * verify_only, KIP-890): the batch is taken, as by Kafka before 3.6
	 */
	if (SlClusterEnabled())
		return true;
	return SlTxnStateProducerHolds(producer_id, producer_epoch, SL_TXN_ONGOING,
								   topic_id, partition);
}
