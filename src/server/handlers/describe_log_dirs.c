/*-------------------------------------------------------------------------
 * describe_log_dirs.c
 *	  Kafka DescribeLogDirs (API key 35) handler.  Versions 0-4; v2 is the
 *	  first flexible one, v3 adds the top-level error, v4 the volume's
 *	  total and usable bytes.
 *
 *	  A node has one log directory, its data directory
 *	  (storage/log_dirs.c), holding every partition with a replica here;
 *	  a partition's size is that of its segment relations.  The offset lag
 *	  is 0: a log here is never a "future" log being moved between
 *	  directories, and a follower's distance to its leader is shown by
 *	  streamlog.replicas.  As Kafka 3.9, DESCRIBE on the cluster is needed:
 *	  without it the answer has no directory and, from v3,
 *	  CLUSTER_AUTHORIZATION_FAILED.  Topics asked for that are not here are
 *	  left out, as Kafka leaves them out.
 *
 * IDENTIFICATION
 *	  src/server/handlers/describe_log_dirs.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/hsearch.h"

#include "streamlog/guc.h"
#include "streamlog/server/authorize.h"
#include "streamlog/server/handlers.h"
#include "streamlog/storage/log_dirs.h"

/* A partition the request asks for, as a key of the set below */
typedef struct AskedPartition
{
	char		topic[SL_TOPIC_NAME_MAX + 1];
	int32		partition;
} AskedPartition;

/*
 * The partitions the request asks for, or NULL for all (topics null).  A
 * set, so that matching costs the request's size plus this node's
 * partitions, whatever a client repeats; names longer than a topic's can
 * name none and are left out.
 */
static HTAB *
asked_set(const SlDescribeLogDirsRequest *request)
{
	HASHCTL		ctl;
	HTAB	   *set;

	if (request->topics.n < 0)
		return NULL;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(AskedPartition);
	ctl.entrysize = sizeof(AskedPartition);
	ctl.hcxt = CurrentMemoryContext;
	set = hash_create("DescribeLogDirs partitions", 64, &ctl,
					  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (int i = 0; i < request->topics.n; i++)
	{
		const SlDescribeLogDirsRequestDescribableLogDirTopic *t = &request->topics.items[i];
		AskedPartition key;

		if (t->topic.len <= 0 || t->topic.len > SL_TOPIC_NAME_MAX)
			continue;
		memset(&key, 0, sizeof(key));
		memcpy(key.topic, t->topic.data, t->topic.len);
		for (int j = 0; j < t->partitions.n; j++)
		{
			key.partition = t->partitions.items[j];
			hash_search(set, &key, HASH_ENTER, NULL);
		}
	}
	return set;
}

static bool
asked_for(HTAB *asked, const SlLogDirPartition *p)
{
	AskedPartition key;

	if (asked == NULL)
		return true;
	if (strlen(p->topic) > SL_TOPIC_NAME_MAX)
		return false;
	memset(&key, 0, sizeof(key));
	strcpy(key.topic, p->topic);
	key.partition = p->partition;
	return hash_search(asked, &key, HASH_FIND, NULL) != NULL;
}

/* Partitions of parts[from..] in the topic of parts[from] (rows come by topic) */
static int
partitions_of_topic(const SlLogDirPartition *parts, int nparts, int from)
{
	int			n = 1;

	while (from + n < nparts && strcmp(parts[from + n].topic, parts[from].topic) == 0)
		n++;
	return n;
}

bool
SlHandleDescribeLogDirs(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlDescribeLogDirsRequest request;
	SlDescribeLogDirsResponse resp;
	SlDescribeLogDirsResponseDescribeLogDirsResult *dir;
	SlLogDirPartition *parts;
	int			nparts;
	int			ntopics = 0;
	HTAB	   *asked;

	if (!SlDescribeLogDirsRequestDecode(body, req->api_version, &request))
		return false;
	SlDescribeLogDirsResponseInit(&resp);
	if (!SlMayCluster(SL_ACL_DESCRIBE))
	{
		resp.error_code = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
		SL_ARRAY_ALLOC(resp.results, 0);
		SlDescribeLogDirsResponseEncode(out, req->api_version, &resp);
		return true;
	}

	SL_ARRAY_ALLOC(resp.results, 1);
	dir = &resp.results.items[0];
	SlDescribeLogDirsResponseDescribeLogDirsResultInit(dir);
	dir->error_code = SL_ERR_NONE;
	dir->log_dir = SlStrFromCString(SlLogDirPath());
	(void) SlLogDirSpace(&dir->total_bytes, &dir->usable_bytes);

	parts = SlLogDirPartitions(sl_node_id, &nparts);
	asked = asked_set(&request);
	SL_ARRAY_ALLOC(dir->topics, nparts);
	for (int i = 0; i < nparts; i++)
	{
		SlDescribeLogDirsResponseDescribeLogDirsTopic *topic;
		SlDescribeLogDirsResponseDescribeLogDirsPartition *p;

		if (!asked_for(asked, &parts[i]))
			continue;
		/* rows come ordered by topic: a new topic starts an entry */
		if (ntopics == 0 ||
			!SlStrEqualCString(dir->topics.items[ntopics - 1].name, parts[i].topic))
		{
			topic = &dir->topics.items[ntopics++];
			SlDescribeLogDirsResponseDescribeLogDirsTopicInit(topic);
			topic->name = SlStrFromCString(parts[i].topic);
			SL_ARRAY_ALLOC(topic->partitions, 0);
			topic->partitions.items = palloc0(sizeof(*topic->partitions.items) *
											  partitions_of_topic(parts, nparts, i));
		}
		topic = &dir->topics.items[ntopics - 1];
		p = &topic->partitions.items[topic->partitions.n++];
		SlDescribeLogDirsResponseDescribeLogDirsPartitionInit(p);
		p->partition_index = parts[i].partition;
		p->partition_size = parts[i].size_bytes;
		p->offset_lag = 0;
		p->is_future_key = false;
	}
	dir->topics.n = ntopics;
	SlDescribeLogDirsResponseEncode(out, req->api_version, &resp);
	return true;
}
