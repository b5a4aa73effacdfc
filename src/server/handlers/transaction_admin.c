/*
 * The transaction admin APIs: DescribeTransactions (65) and
 * ListTransactions (66) of the coordinator, read from its durable state
 * (storage/txn_state.h), as Kafka 3.9's TransactionCoordinator answers
 * them.  Advertised, like the other transaction APIs, only while the
 * coordinator runs (handlers.c, .transactional).
 *
 * Authorization as Kafka's: DescribeTransactions answers
 * TRANSACTIONAL_ID_AUTHORIZATION_FAILED for an id the caller may not
 * DESCRIBE, and leaves out of an id's partitions the topics the caller may
 * not DESCRIBE; ListTransactions leaves out the ids the caller may not
 * DESCRIBE.
 *
 * DescribeProducers (61) is a partition leader's: the producers of its
 * partitions, served with or without the coordinator.
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "utils/timestamp.h"

#include "streamlog/server/authorize.h"
#include "streamlog/server/handlers.h"
#include "streamlog/server/kafka_errors.h"
#include "streamlog/server/partition_leader.h"
#include "streamlog/server/txn/coordinator.h"
#include "streamlog/server/txn/coordinator_cluster.h"
#include "streamlog/server/txn/txn_machine.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/transactions.h"
#include "streamlog/storage/txn_state.h"

/* A PostgreSQL timestamp as Kafka's milliseconds since the Unix epoch */
static int64
unix_ms(TimestampTz ts)
{
	return ts / 1000 +
		(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;
}

/*
 * The partitions of a transaction by topic, topics the caller may DESCRIBE
 * only; none once it has completed (Kafka clears them)
 */
static void
fill_topics(SlDescribeTransactionsResponseTransactionState *st, const SlTxnStateRow *row)
{
	int			ntopics = 0;

	if (!SlTxnStateHasPartitions((SlTxnState) row->state) || row->npartitions <= 0)
		return;
	SL_ARRAY_ALLOC(st->topics, row->npartitions);
	for (int i = 0; i < row->npartitions; i++)
	{
		const SlTopic *topic = SlTopicLookupById(row->topic_ids[i]);
		SlDescribeTransactionsResponseTopicData *td = NULL;

		if (topic == NULL || !SlMayTopic(topic->name, SL_ACL_DESCRIBE))
			continue;
		for (int j = 0; j < ntopics; j++)
			if (strcmp(st->topics.items[j].topic.data, topic->name) == 0)
				td = &st->topics.items[j];
		if (td == NULL)
		{
			td = &st->topics.items[ntopics++];
			SlDescribeTransactionsResponseTopicDataInit(td);
			td->topic = SlStrFromCString(pstrdup(topic->name));
			SL_ARRAY_ALLOC(td->partitions, row->npartitions);
			td->partitions.n = 0;
		}
		td->partitions.items[td->partitions.n++] = row->partitions[i];
	}
	st->topics.n = ntopics;
}

bool
SlHandleDescribeTransactions(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlDescribeTransactionsRequest request;
	SlDescribeTransactionsResponse resp;

	if (!SlTxnCoordinatorEnabled())
		return SlHandleTransactionApi(req, body, out);
	if (!SlDescribeTransactionsRequestDecode(body, req->api_version, &request))
		return false;
	SlDescribeTransactionsResponseInit(&resp);
	SL_ARRAY_ALLOC(resp.transaction_states, Max(request.transactional_ids.n, 0));
	for (int i = 0; i < request.transactional_ids.n; i++)
	{
		SlDescribeTransactionsResponseTransactionState *st = &resp.transaction_states.items[i];
		SlStr		wire = request.transactional_ids.items[i];
		char	   *tid = wire.len > 0 && wire.len <= SL_TRANSACTIONAL_ID_MAX ?
			pnstrdup(wire.data, wire.len) : NULL;
		SlTxnStateRow row;

		SlDescribeTransactionsResponseTransactionStateInit(st);
		st->transactional_id = wire;
		st->transaction_state = SlStrFromCString("");
		st->transaction_start_time_ms = -1;
		st->producer_id = -1;
		st->producer_epoch = -1;
		if (tid == NULL)
			st->error_code = SL_ERR_TRANSACTIONAL_ID_NOT_FOUND;
		else if (!SlMayTransactionalId(tid, SL_ACL_DESCRIBE))
			st->error_code = SL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
		/* On a cluster, only the id's coordinator knows it (coordinator_cluster.h) */
		else if ((st->error_code = SlTxnCoordinatorError(tid)) != SL_ERR_NONE)
			;
		else if (!SlTxnStateRead(tid, &row))
			st->error_code = SL_ERR_TRANSACTIONAL_ID_NOT_FOUND;
		else
		{
			st->transaction_state = SlStrFromCString(SlTxnStateName(row.state));
			st->transaction_timeout_ms = row.timeout_ms;
			st->transaction_start_time_ms = row.started_at == 0 ? -1 : unix_ms(row.started_at);
			st->producer_id = row.producer_id;
			st->producer_epoch = row.producer_epoch;
			fill_topics(st, &row);
		}
	}
	SlDescribeTransactionsResponseEncode(out, req->api_version, &resp);
	return true;
}

/* Is name one of Kafka's transaction state names? */
static bool
known_state_name(SlStr name)
{
	for (int s = 0; s <= SL_TXN_STATE_MAX; s++)
	{
		const char *known = SlTxnStateName(s);

		if (name.len == (int) strlen(known) && memcmp(name.data, known, name.len) == 0)
			return true;
	}
	return false;
}

static bool
state_matches(const SlListTransactionsRequest *request, const char *state)
{
	if (request->state_filters.n <= 0)
		return true;
	for (int i = 0; i < request->state_filters.n; i++)
	{
		SlStr		f = request->state_filters.items[i];

		if (f.len == (int) strlen(state) && memcmp(f.data, state, f.len) == 0)
			return true;
	}
	return false;
}

static bool
producer_matches(const SlListTransactionsRequest *request, int64 producer_id)
{
	if (request->producer_id_filters.n <= 0)
		return true;
	for (int i = 0; i < request->producer_id_filters.n; i++)
		if (request->producer_id_filters.items[i] == producer_id)
			return true;
	return false;
}

/*
 * ListTransactions v0-1: the ids in the given states, of the given
 * producer ids, with a transaction running longer than the duration (v1),
 * every filter empty (or negative) matching all.  A state name Kafka does
 * not know goes back in UnknownStateFilters (and matches nothing).
 */
bool
SlHandleListTransactions(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlListTransactionsRequest request;
	SlListTransactionsResponse resp;
	List	   *ids;
	ListCell   *lc;
	TimestampTz now = GetCurrentTimestamp();
	int			nunknown = 0;

	if (!SlTxnCoordinatorEnabled())
		return SlHandleTransactionApi(req, body, out);
	if (!SlListTransactionsRequestDecode(body, req->api_version, &request))
		return false;
	SlListTransactionsResponseInit(&resp);
	SL_ARRAY_ALLOC(resp.unknown_state_filters, Max(request.state_filters.n, 0));
	for (int i = 0; i < request.state_filters.n; i++)
		if (!known_state_name(request.state_filters.items[i]))
			resp.unknown_state_filters.items[nunknown++] = request.state_filters.items[i];
	resp.unknown_state_filters.n = nunknown;

	ids = SlTxnStateIds();
	SL_ARRAY_ALLOC(resp.transaction_states, list_length(ids));
	resp.transaction_states.n = 0;
	foreach(lc, ids)
	{
		char	   *tid = lfirst(lc);
		SlTxnStateRow row;
		const char *state;
		SlListTransactionsResponseTransactionState *st;

		if (!SlMayTransactionalId(tid, SL_ACL_DESCRIBE) || !SlTxnStateRead(tid, &row))
			continue;
		state = SlTxnStateName(row.state);
		if (!state_matches(&request, state) || !producer_matches(&request, row.producer_id))
			continue;
		/* as Kafka: an id with no transaction started counts as running */
		if (request.duration_filter >= 0 && row.started_at != 0 &&
			(now - row.started_at) / 1000 < request.duration_filter)
			continue;
		st = &resp.transaction_states.items[resp.transaction_states.n++];
		SlListTransactionsResponseTransactionStateInit(st);
		st->transactional_id = SlStrFromCString(tid);
		st->producer_id = row.producer_id;
		st->transaction_state = SlStrFromCString(state);
	}
	SlListTransactionsResponseEncode(out, req->api_version, &resp);
	return true;
}

/* A partition's active producers: sequence state and open transactions */
static void
fill_producers(SlDescribeProducersResponsePartitionResponse *pr, const SlTopic *topic,
			   int32 partition)
{
	int			nproducers;
	int			nopen;
	SlProducerState *producers = SlProducersOfPartition(topic, partition, &nproducers);
	SlOpenTxn  *open = SlTxnOpenList(topic->topic_id, partition, &nopen);
	int			n = 0;

	SL_ARRAY_ALLOC(pr->active_producers, nproducers + nopen);
	for (int i = 0; i < nproducers; i++)
	{
		SlDescribeProducersResponseProducerState *ps = &pr->active_producers.items[n++];

		SlDescribeProducersResponseProducerStateInit(ps);
		ps->producer_id = producers[i].producer_id;
		ps->producer_epoch = producers[i].producer_epoch;
		ps->last_sequence = producers[i].last_sequence;
		ps->coordinator_epoch = -1;
	}
	/* an open transaction's start; a producer the checks forgot still counts */
	for (int j = 0; j < nopen; j++)
	{
		SlDescribeProducersResponseProducerState *ps = NULL;

		for (int i = 0; i < n; i++)
			if (pr->active_producers.items[i].producer_id == open[j].producer_id)
				ps = &pr->active_producers.items[i];
		if (ps == NULL)
		{
			ps = &pr->active_producers.items[n++];
			SlDescribeProducersResponseProducerStateInit(ps);
			ps->producer_id = open[j].producer_id;
			ps->producer_epoch = open[j].producer_epoch;
			ps->coordinator_epoch = -1;
		}
		ps->current_txn_start_offset = open[j].first_offset;
	}
	pr->active_producers.n = n;
}

/*
 * DescribeProducers v0 (KIP-664): per partition the producers its
 * sequence checks know, with the start of each one's open transaction.
 * The caller needs READ on the topic, as in Kafka; a partition this node
 * does not lead says so.  Last timestamps are not kept (-1), nor
 * coordinator epochs (-1).
 */
bool
SlHandleDescribeProducers(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlDescribeProducersRequest request;
	SlDescribeProducersResponse resp;

	if (!SlDescribeProducersRequestDecode(body, req->api_version, &request))
		return false;
	SlDescribeProducersResponseInit(&resp);
	SL_ARRAY_ALLOC(resp.topics, Max(request.topics.n, 0));
	for (int i = 0; i < request.topics.n; i++)
	{
		SlDescribeProducersRequestTopicRequest *t = &request.topics.items[i];
		SlDescribeProducersResponseTopicResponse *r = &resp.topics.items[i];
		char	   *name = SlTopicNameFromWire(t->name);
		bool		allowed = name != NULL && SlMayTopic(name, SL_ACL_READ);
		const SlTopic *topic = allowed ? SlTopicLookup(name, true) : NULL;

		SlDescribeProducersResponseTopicResponseInit(r);
		r->name = t->name;
		SL_ARRAY_ALLOC(r->partitions, Max(t->partition_indexes.n, 0));
		for (int j = 0; j < t->partition_indexes.n; j++)
		{
			SlDescribeProducersResponsePartitionResponse *pr = &r->partitions.items[j];
			int32		p = t->partition_indexes.items[j];

			SlDescribeProducersResponsePartitionResponseInit(pr);
			pr->partition_index = p;
			if (!allowed)
				pr->error_code = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
			else if (topic == NULL || p < 0 || p >= topic->partition_count)
				pr->error_code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
			else if ((pr->error_code = SlPartitionLeaderError(topic, p)) == SL_ERR_NONE)
				fill_producers(pr, topic, p);
		}
	}
	SlDescribeProducersResponseEncode(out, req->api_version, &resp);
	return true;
}
