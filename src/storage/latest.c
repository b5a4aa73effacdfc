/*
 * The current record of a key: what a topic read as a table holds for it.
 *
 * Within a partition the record with the highest offset is current, as
 * compaction keeps it.  A key normally lives in one partition, but nothing
 * makes it: producers choose partitions themselves (librdkafka hashes with
 * CRC32 by default, the Java client with murmur2, a custom partitioner as
 * it likes), and partitions added to a topic move keys.  So every
 * partition is searched, and where a key has records in several the
 * newest timestamp wins (records without one count as oldest; on a tie the
 * higher partition), which is also what streamlog.latest(topic) keeps.  A
 * current record that is a tombstone (null value) means the key has none.
 *
 * With the topic's key index (key_index.c) the search walks the key's
 * entries newest first and reads the record at each, skipping entries whose
 * record is gone or belongs to another key of the same hash; without it,
 * every partition's log is read.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/memutils.h"

#include "streamlog/storage/internal/key_index.h"
#include "streamlog/storage/storage.h"

/* A found record, copied out of its scan */
typedef struct Found
{
	bool		valid;
	int32		partition;
	SlRecord	rec;
} Found;

static const uint8 *
copy_bytes(const uint8 *data, size_t len)
{
	uint8	   *copy = palloc(Max(len, 1));

	if (len > 0)
		memcpy(copy, data, len);
	return copy;
}

static void
found_free(Found *found)
{
	if (found->valid)
	{
		pfree((void *) found->rec.key);
		pfree((void *) found->rec.value);
		pfree((void *) found->rec.headers);
	}
	found->valid = false;
}

static void
found_set(Found *found, int32 partition, const SlRecord *rec)
{
	found_free(found);
	found->valid = true;
	found->partition = partition;
	found->rec = *rec;
	found->rec.key = copy_bytes(rec->key, Max(rec->key_len, 0));
	found->rec.value = copy_bytes(rec->value, Max(rec->value_len, 0));
	found->rec.headers = copy_bytes(rec->headers, rec->headers_end - rec->headers);
	found->rec.headers_end = found->rec.headers + (rec->headers_end - rec->headers);
}

static bool
same_key(const SlRecord *rec, const uint8 *key, int32 key_len)
{
	return rec->key_len == key_len && memcmp(rec->key, key, key_len) == 0;
}

/* Keep the newer of best and candidate (see the file header); candidate goes */
static void
keep_newer(Found *best, Found *candidate)
{
	if (!candidate->valid)
		return;
	if (best->valid &&
		(best->rec.timestamp > candidate->rec.timestamp ||
		 (best->rec.timestamp == candidate->rec.timestamp &&
		  best->partition > candidate->partition)))
	{
		found_free(candidate);
		return;
	}
	found_free(best);
	*best = *candidate;
	candidate->valid = false;
}

/* The record at offset of partition if it is there and has key */
static bool
read_at(const SlTopic *topic, int32 partition, int64 offset,
		const uint8 *key, int32 key_len, Found *found)
{
	SlLogScanBounds bounds;
	SlLogScan  *scan;
	SlRecord	rec;
	bool		hit = false;

	SlLogScanBoundsInit(&bounds);
	bounds.from_offset = offset;
	bounds.to_offset = offset;
	scan = SlLogScanBegin(topic, partition, &bounds);
	if (SlLogScanNext(scan, &rec) && rec.offset == offset && same_key(&rec, key, key_len))
	{
		found_set(found, partition, &rec);
		hit = true;
	}
	SlLogScanEnd(scan);
	return hit;
}

static void
search_index(const SlTopic *topic, Oid relid, const uint8 *key, int32 key_len,
			 int32 partition, Found *best)
{
	SlKeyIndexCandidates *c = SlKeyIndexCandidatesBegin(relid, key, key_len, partition);
	int32		p;
	int64		offset;

	while (SlKeyIndexCandidatesNext(c, &p, &offset))
	{
		Found		candidate = {0};

		if (p < topic->partition_count &&
			read_at(topic, p, offset, key, key_len, &candidate))
		{
			keep_newer(best, &candidate);
			/* The older entries of p do not count */
			SlKeyIndexCandidatesSkipPartition(c, p);
		}
		CHECK_FOR_INTERRUPTS();
	}
	SlKeyIndexCandidatesEnd(c);
}

static void
search_log(const SlTopic *topic, int32 partition, const uint8 *key, int32 key_len,
		   Found *best)
{
	Found		candidate = {0};
	SlLogScanBounds bounds;
	SlLogScan  *scan;
	SlRecord	rec;

	SlLogScanBoundsInit(&bounds);
	scan = SlLogScanBegin(topic, partition, &bounds);
	while (SlLogScanNext(scan, &rec))
	{
		if (rec.key_len >= 0 && same_key(&rec, key, key_len))
			found_set(&candidate, partition, &rec);
		CHECK_FOR_INTERRUPTS();
	}
	SlLogScanEnd(scan);
	keep_newer(best, &candidate);
}

bool
SlLogLatest(const SlTopic *topic, const uint8 *key, int32 key_len, int32 partition,
			int32 *partition_out, SlRecord *rec_out)
{
	Found		best = {0};
	Oid			relid = topic->config.key_index ? SlKeyIndexRelid(topic->topic_id) : InvalidOid;

	if (partition >= 0)
		SlTopicCheckPartition(topic, partition);
	if (OidIsValid(relid))
		search_index(topic, relid, key, key_len, partition, &best);
	else if (partition >= 0)
		search_log(topic, partition, key, key_len, &best);
	else
		for (int32 p = 0; p < topic->partition_count; p++)
			search_log(topic, p, key, key_len, &best);

	if (!best.valid || best.rec.value_len < 0)
		return false;
	*partition_out = best.partition;
	*rec_out = best.rec;
	return true;
}
