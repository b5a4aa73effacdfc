/*
 * Which partitions a SQL consumer of a group claims next: the one
 * selection behind streamlog.consume(), whether the group is coordinated
 * by this node or the consumer runs on another node and claims through
 * streamlog._group_claim() on the coordinator (README, "SQL consume() on
 * any node").
 *
 * Candidates are the partitions with records between the group's position
 * and the high watermark (or whose committed offset retention left
 * behind), tried least recently served first: never served, then by the
 * time of their last commit, so that a busy partition does not starve the
 * others.  One step claims the fewest untried candidates whose estimated
 * records fill what the caller still wants, with SKIP LOCKED
 * (SlGroupClaim), so that concurrent consumers of a group find the other
 * partitions free.  The high watermarks and log starts come from the
 * caller: the node that reads the records judges what there is to read.
 */
#include "postgres.h"

#include "streamlog/storage/storage.h"

/* A partition a consumer may read from */
typedef struct Candidate
{
	int32		partition;
	int64		estimate;		/* records below the high watermark */
	int64		create_at;		/* no row yet: create it here; else -1 */
	bool		served;			/* the group has a row */
	TimestampTz served_at;		/* its last commit */
} Candidate;

/* Least recently served first: never served, then oldest commit, then partition */
static int
compare_candidates(const void *a, const void *b)
{
	const Candidate *x = a;
	const Candidate *y = b;

	if (x->served != y->served)
		return x->served ? 1 : -1;
	if (x->served && x->served_at != y->served_at)
		return x->served_at < y->served_at ? -1 : 1;
	return x->partition < y->partition ? -1 : (x->partition > y->partition ? 1 : 0);
}

int
SlGroupClaimNext(const char *group_id, const SlTopic *topic, const int64 *hwms,
				 const int64 *log_starts, int64 wanted, bool *tried, bool write_records,
				 int32 *partitions, int64 *offsets, bool *exhausted)
{
	int32		nparts = topic->partition_count;
	SlGroupPosition *positions = SlGroupPositions(group_id, topic);
	Candidate  *candidates = palloc(sizeof(Candidate) * Max(nparts, 1));
	int			ncandidates = 0;
	int32	   *batch_parts = palloc(sizeof(int32) * Max(nparts, 1));
	int64	   *batch_create = palloc(sizeof(int64) * Max(nparts, 1));
	bool	   *batch_claimed = palloc(sizeof(bool) * Max(nparts, 1));
	int64	   *batch_offsets = palloc(sizeof(int64) * Max(nparts, 1));
	int			nbatch = 0;
	int64		expected = 0;
	int			nclaimed = 0;

	for (int32 p = 0; p < nparts; p++)
	{
		SlGroupPosition *pos = &positions[p];
		int64		from = pos->exists ? Max(pos->committed_offset, log_starts[p]) : log_starts[p];

		if (tried[p])
			continue;
		/* Records to read, or an offset that retention left behind */
		if (hwms[p] > from || (pos->exists && pos->committed_offset < log_starts[p]))
		{
			Candidate  *c = &candidates[ncandidates++];

			c->partition = p;
			c->estimate = Max(hwms[p] - from, 0);
			c->create_at = pos->exists ? -1 : log_starts[p];
			c->served = pos->exists;
			c->served_at = pos->committed_at;
		}
	}
	qsort(candidates, ncandidates, sizeof(Candidate), compare_candidates);

	/* The fewest that can fill what is wanted */
	while (nbatch < ncandidates && (nbatch == 0 || expected < wanted))
	{
		Candidate  *c = &candidates[nbatch];

		batch_parts[nbatch] = c->partition;
		batch_create[nbatch++] = c->create_at;
		expected += c->estimate;
		tried[c->partition] = true;
	}
	*exhausted = nbatch == ncandidates;
	if (nbatch == 0)
		return 0;

	SlGroupClaim(group_id, topic->topic_id, batch_parts, batch_create, nbatch, write_records,
				 batch_claimed, batch_offsets);
	for (int i = 0; i < nbatch; i++)
		if (batch_claimed[i])
		{
			partitions[nclaimed] = batch_parts[i];
			offsets[nclaimed++] = batch_offsets[i];
		}
	return nclaimed;
}
