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

/* One id's answer */
static void
describe_one(SlDescribeTransactionsResponseTransactionState *st, SlStr wire)
{
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

/* Order of the request's ids (an index into them) by their bytes */
static const SlStr *sort_ids;

static int
id_index_cmp(const void *a, const void *b)
{
	SlStr		x = sort_ids[*(const int *) a];
	SlStr		y = sort_ids[*(const int *) b];
	int			common = Min(Max(x.len, 0), Max(y.len, 0));
	int			c = common > 0 ? memcmp(x.data, y.data, common) : 0;

	if (c != 0)
		return c;
	return x.len < y.len ? -1 : x.len > y.len;
}

/*
 * DescribeTransactions v0: each id's state.  An id the request names more
 * than once is looked up once (the ids are sorted first), so that what a
 * request costs is bounded by how many different ids it names.
 */
bool
SlHandleDescribeTransactions(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlDescribeTransactionsRequest request;
	SlDescribeTransactionsResponse resp;
	int			n;
	int		   *order;

	if (!SlTxnCoordinatorEnabled())
		return SlHandleTransactionApi(req, body, out);
	if (!SlDescribeTransactionsRequestDecode(body, req->api_version, &request))
		return false;
	SlDescribeTransactionsResponseInit(&resp);
	n = Max(request.transactional_ids.n, 0);
	SL_ARRAY_ALLOC(resp.transaction_states, n);
	order = palloc(sizeof(int) * Max(n, 1));
	for (int i = 0; i < n; i++)
		order[i] = i;
	sort_ids = request.transactional_ids.items;
	qsort(order, n, sizeof(int), id_index_cmp);
	sort_ids = NULL;
	for (int k = 0; k < n; k++)
	{
		int			i = order[k];
		SlDescribeTransactionsResponseTransactionState *st = &resp.transaction_states.items[i];

		if (k > 0)
		{
			SlStr		a = request.transactional_ids.items[order[k - 1]];
			SlStr		b = request.transactional_ids.items[i];

			if (a.len == b.len && (a.len <= 0 || memcmp(a.data, b.data, a.len) == 0))
			{
				*st = resp.transaction_states.items[order[k - 1]];
				continue;
			}
		}
		describe_one(st, request.transactional_ids.items[i]);
	}
	SlDescribeTransactionsResponseEncode(out, req->api_version, &resp);
	return true;
}

/* The SlTxnState of a state name, or -1 if Kafka knows no such state */
static int
state_of_name(SlStr name)
{
	for (int s = 0; s <= SL_TXN_STATE_MAX; s++)
	{
		const char *known = SlTxnStateName(s);

		if (name.len == (int) strlen(known) && memcmp(name.data, known, name.len) == 0)
			return s;
	}
	return -1;
}

static int
int64_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : x > y;
}

/*
 * A request's filters, read once: the filters' counts come from the wire,
 * so that matching an id costs a bit test and a binary search rather than
 * a walk over every filter for every id
 */
typedef struct ListFilters
{
	bool		any_state;		/* no state filter */
	uint32		states;			/* bit (1 << state) per state asked */
	int			nproducers;		/* 0: no producer id filter */
	int64	   *producers;		/* sorted */
} ListFilters;

static bool
state_matches(const ListFilters *f, int state)
{
	return f->any_state || (state >= 0 && state <= SL_TXN_STATE_MAX &&
							(f->states & (1u << state)) != 0);
}

static bool
producer_matches(const ListFilters *f, int64 producer_id)
{
	return f->nproducers == 0 ||
		bsearch(&producer_id, f->producers, f->nproducers, sizeof(int64), int64_cmp) != NULL;
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
	ListFilters filters;

	if (!SlTxnCoordinatorEnabled())
		return SlHandleTransactionApi(req, body, out);
	if (!SlListTransactionsRequestDecode(body, req->api_version, &request))
		return false;
	SlListTransactionsResponseInit(&resp);
	SL_ARRAY_ALLOC(resp.unknown_state_filters, Max(request.state_filters.n, 0));
	filters.any_state = request.state_filters.n <= 0;
	filters.states = 0;
	for (int i = 0; i < request.state_filters.n; i++)
	{
		int			state = state_of_name(request.state_filters.items[i]);

		if (state < 0)
			resp.unknown_state_filters.items[nunknown++] = request.state_filters.items[i];
		else
			filters.states |= 1u << state;
	}
	resp.unknown_state_filters.n = nunknown;
	filters.nproducers = Max(request.producer_id_filters.n, 0);
	filters.producers = palloc(sizeof(int64) * Max(filters.nproducers, 1));
	if (filters.nproducers > 0)
		memcpy(filters.producers, request.producer_id_filters.items,
			   sizeof(int64) * filters.nproducers);
	qsort(filters.producers, filters.nproducers, sizeof(int64), int64_cmp);

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
		if (!state_matches(&filters, row.state) || !producer_matches(&filters, row.producer_id))
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
		ps->last_timestamp = producers[i].last_timestamp;
		ps->coordinator_epoch = producers[i].coordinator_epoch;
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

/* A partition a DescribeProducers request names, and where */
typedef struct ProducersRef
{
	const SlTopic *topic;
	int32		partition;
	SlDescribeProducersResponsePartitionResponse *answer;
	int			index;			/* order in the request */
} ProducersRef;

static int
producers_ref_cmp(const void *a, const void *b)
{
	const ProducersRef *x = a;
	const ProducersRef *y = b;

	if (x->topic->topic_id != y->topic->topic_id)
		return x->topic->topic_id < y->topic->topic_id ? -1 : 1;
	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * DescribeProducers v0 (KIP-664): per partition the producers its
 * sequence checks know, with the start of each one's open transaction.
 * The caller needs READ on the topic, as in Kafka; a partition this node
 * does not lead says so.  Last timestamps are not kept (-1), nor
 * coordinator epochs (-1).  A partition named more than once (in one topic
 * entry or in several of the same topic) is read once and its answer
 * copied: what a request costs is bounded by the partitions that exist.
 */
bool
SlHandleDescribeProducers(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlDescribeProducersRequest request;
	SlDescribeProducersResponse resp;
	ProducersRef *refs;
	int			nrefs = 0;
	int			total = 0;

	if (!SlDescribeProducersRequestDecode(body, req->api_version, &request))
		return false;
	SlDescribeProducersResponseInit(&resp);
	SL_ARRAY_ALLOC(resp.topics, Max(request.topics.n, 0));
	for (int i = 0; i < request.topics.n; i++)
		total += Max(request.topics.items[i].partition_indexes.n, 0);
	refs = palloc(sizeof(ProducersRef) * Max(total, 1));
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
			else
			{
				refs[nrefs].topic = topic;
				refs[nrefs].partition = p;
				refs[nrefs].answer = pr;
				refs[nrefs].index = nrefs;
				nrefs++;
			}
		}
	}
	qsort(refs, nrefs, sizeof(ProducersRef), producers_ref_cmp);
	for (int k = 0; k < nrefs; k++)
	{
		SlDescribeProducersResponsePartitionResponse *pr = refs[k].answer;

		if (k > 0 && refs[k - 1].topic->topic_id == refs[k].topic->topic_id &&
			refs[k - 1].partition == refs[k].partition)
		{
			*pr = *refs[k - 1].answer;
			continue;
		}
		if ((pr->error_code = SlPartitionLeaderError(refs[k].topic, refs[k].partition)) ==
			SL_ERR_NONE)
			fill_producers(pr, refs[k].topic, refs[k].partition);
	}
	SlDescribeProducersResponseEncode(out, req->api_version, &resp);
	return true;
}
