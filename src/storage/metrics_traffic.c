/*-------------------------------------------------------------------------
 * metrics_traffic.c
 *	  Traffic per topic (metrics_sources.h): what the shared counters
 *	  counted per partition and door, summed per topic as Kafka's
 *	  BrokerTopicMetrics are, under the topic's name.  A partition of a
 *	  topic dropped since, or of another database, is left out; the
 *	  counters' overflow row shows as topic "(overflow)".
 *
 * IDENTIFICATION
 *	  src/storage/metrics_traffic.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/hsearch.h"

#include "streamlog/metrics/counters.h"
#include "streamlog/storage/metrics_sources.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/internal/catalog_query.h"

static const SlNamedQuery topics_query = {
	"SELECT topic_id, name FROM streamlog.topic ORDER BY topic_id", 0, {0}
};

typedef struct TopicTraffic
{
	int32		topic_id;		/* hash key */
	char	   *name;
	SlPartitionDoorStats door[SL_DOOR_COUNT];
} TopicTraffic;

static const char *const door_names[SL_DOOR_COUNT] = {"kafka", "sql"};

static void
add_door(SlPartitionDoorStats *sum, const SlPartitionDoorStats *d)
{
	sum->bytes_in += d->bytes_in;
	sum->records_in += d->records_in;
	sum->bytes_out += d->bytes_out;
	sum->records_out += d->records_out;
	sum->produce_requests += d->produce_requests;
	sum->produce_failed += d->produce_failed;
	sum->fetch_requests += d->fetch_requests;
	sum->fetch_failed += d->fetch_failed;
}

void
SlMetricsAddTraffic(SlExposition *e)
{
	int			count;
	SlPartitionStats *stats = SlMetricsPartitionSnapshot(&count);
	Oid			catalog = SlMakePartitionKey(0, 0).catalog;
	HASHCTL		info;
	HTAB	   *topics;
	uint64		n;
	TopicTraffic *order;
	int			ntopics = 0;
	TopicTraffic overflow;
	bool		any_overflow = false;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(int32);
	info.entrysize = sizeof(TopicTraffic);
	info.hcxt = CurrentMemoryContext;
	topics = hash_create("streamlog metrics topics", 64, &info,
						 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	memset(&overflow, 0, sizeof(overflow));
	overflow.name = "(overflow)";
	for (int i = 0; i < count; i++)
	{
		const SlMetricsPartition *key = &stats[i].key;
		SlPartitionDoorStats *sum;
		bool		found;

		if (key->topic_id < 0)
		{
			sum = overflow.door;
			any_overflow = true;
		}
		else if (key->database != MyDatabaseId || key->catalog != catalog)
			continue;
		else
		{
			TopicTraffic *t = hash_search(topics, &key->topic_id, HASH_ENTER, &found);

			if (!found)
			{
				memset(t->door, 0, sizeof(t->door));
				t->name = NULL;
			}
			sum = t->door;
		}
		for (int d = 0; d < SL_DOOR_COUNT; d++)
			add_door(&sum[d], &stats[i].door[d]);
	}

	/* the names, in the catalog's order */
	order = palloc(sizeof(TopicTraffic) * (hash_get_num_entries(topics) + 1));
	SPI_connect();
	n = SlCatalogRun(&topics_query, NULL, NULL);
	for (uint64 i = 0; i < n; i++)
	{
		int32		id = SlCatalogInt32(i, 1, -1);
		TopicTraffic *t = hash_search(topics, &id, HASH_FIND, NULL);

		if (t == NULL)
			continue;
		order[ntopics] = *t;
		order[ntopics++].name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
	}
	if (any_overflow)
		order[ntopics++] = overflow;

	for (int i = 0; i < ntopics; i++)
		for (int d = 0; d < SL_DOOR_COUNT; d++)
		{
			const SlPartitionDoorStats *s = &order[i].door[d];
			SlMetricLabel labels[2] = {{"topic", order[i].name}, {"door", door_names[d]}};

			SlExpositionAdd(e, SL_M_BYTES_IN, labels, 2, (double) s->bytes_in);
			SlExpositionAdd(e, SL_M_BYTES_OUT, labels, 2, (double) s->bytes_out);
			SlExpositionAdd(e, SL_M_MESSAGES_IN, labels, 2, (double) s->records_in);
			SlExpositionAdd(e, SL_M_MESSAGES_OUT, labels, 2, (double) s->records_out);
			SlExpositionAdd(e, SL_M_PRODUCE_REQUESTS, labels, 2, (double) s->produce_requests);
			SlExpositionAdd(e, SL_M_PRODUCE_FAILED, labels, 2, (double) s->produce_failed);
			SlExpositionAdd(e, SL_M_FETCH_REQUESTS, labels, 2, (double) s->fetch_requests);
			SlExpositionAdd(e, SL_M_FETCH_FAILED, labels, 2, (double) s->fetch_failed);
		}
	SPI_finish();
	hash_destroy(topics);
	pfree(stats);
}
