/*
 * The preferred read replica (KIP-392, Kafka's RackAwareReplicaSelector):
 * no client rack, or the leader in it, means the leader; otherwise the
 * most caught-up in-sync follower of that rack whose log reaches the fetch
 * offset, ties to the most recently caught up, then the larger node id.
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/storage/read_replica.h"
#include "unit.h"

static void
test_selection(void)
{
	SlReadReplicaCandidate f[] = {
		{2, "east", true, 100, 5000},
		{3, "west", true, 100, 5000},
		{4, "west", true, 120, 4000},
		{5, "west", false, 200, 1000},	/* not in the ISR */
		{6, "north", true, 10, 5000},	/* behind the fetch offset */
	};

	CHECK_EQ_INT(SlPreferredReadReplica("", "central", f, 5, 50), -1);
	CHECK_EQ_INT(SlPreferredReadReplica(NULL, "central", f, 5, 50), -1);
	CHECK_EQ_INT(SlPreferredReadReplica("east", "east", f, 5, 50), -1);	/* the leader's rack */
	CHECK_EQ_INT(SlPreferredReadReplica("east", "central", f, 5, 50), 2);
	CHECK_EQ_INT(SlPreferredReadReplica("west", "central", f, 5, 50), 4);	/* most caught up */
	CHECK_EQ_INT(SlPreferredReadReplica("west", "", f, 5, 110), 4);
	CHECK_EQ_INT(SlPreferredReadReplica("west", "central", f, 5, 130), -1);
	CHECK_EQ_INT(SlPreferredReadReplica("north", "central", f, 5, 50), -1);
	CHECK_EQ_INT(SlPreferredReadReplica("north", "central", f, 5, 10), 6);
	CHECK_EQ_INT(SlPreferredReadReplica("south", "central", f, 5, 0), -1);
	/* a follower without a rack never matches */
	{
		SlReadReplicaCandidate g[] = {{7, "", true, 100, 1}, {8, NULL, true, 100, 1}};

		CHECK_EQ_INT(SlPreferredReadReplica("x", "", g, 2, 0), -1);
	}
}

static void
test_ties(void)
{
	SlReadReplicaCandidate f[] = {
		{2, "r", true, 100, 1000},
		{3, "r", true, 100, 2000},	/* caught up more recently */
		{4, "r", true, 100, 2000},	/* same: the larger id */
	};

	CHECK_EQ_INT(SlPreferredReadReplica("r", "leader-rack", f, 3, 100), 4);
	CHECK_EQ_INT(SlPreferredReadReplica("r", "leader-rack", f, 2, 100), 3);
	CHECK_EQ_INT(SlPreferredReadReplica("r", "leader-rack", f, 0, 100), -1);
}

int
main(void)
{
	test_selection();
	test_ties();
	return UNIT_DONE();
}
