/*
 * The leader's replication view (storage/replica_view.c): the high
 * watermark over the maximal ISR, reports fenced by leader epoch,
 * Kafka's caught-up time, and the ISR changes a leader asks for.
 *
 * The view is pure code of the storage layer, compiled here straight from
 * its source (it is not among the codec objects the other tests link).
 */
#include "streamlog/protocol/codec_base.h"

#include "../../src/storage/replica_view.c"
#include "unit.h"

#define SELF 1

static const int32 three[] = {1, 2, 3};

/* A view of node SELF leading {1,2,3} with ISR isr in epoch 5 */
static void
lead(SlReplicaView *v, const int32 *isr, int32 nisr, int64 log_end, int64 now)
{
	SlReplicaLeadership l = {SELF, 5, 10, 3, three, nisr, isr};

	SlReplicaViewInit(v);
	CHECK(SlReplicaViewSetLeadership(v, SELF, &l, log_end, now));
	CHECK_EQ_INT(v->role, SL_ROLE_LEADER);
}

static void
test_alone(void)
{
	SlReplicaView v;

	SlReplicaViewInit(&v);
	CHECK_EQ_INT(SlReplicaViewHighWatermark(&v, 42, 0), 42);
	/* nobody reports to a node of its own */
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 2, 0, 10, 42, 1000), ERR_NOT_LEADER);
}

static void
test_high_watermark_over_isr(void)
{
	SlReplicaView v;
	int64		hw;

	lead(&v, three, 3, 100, 1000);
	/* no follower heard from in this term: where it was */
	CHECK_EQ_INT(SlReplicaViewHighWatermark(&v, 100, 50), 50);
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 2, 5, 80, 100, 1001), 0);
	CHECK_EQ_INT(SlReplicaViewHighWatermark(&v, 100, 50), 50);
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 3, 5, 90, 100, 1002), 0);
	hw = SlReplicaViewHighWatermark(&v, 100, 50);
	CHECK_EQ_INT(hw, 80);
	/* never backwards: a follower that truncated does not lower it */
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 2, 5, 60, 100, 1003), 0);
	CHECK_EQ_INT(SlReplicaViewHighWatermark(&v, 100, hw), 80);
	/* never above the leader's own log end */
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 2, 5, 150, 100, 1004), 0);
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 3, 5, 150, 100, 1004), 0);
	CHECK_EQ_INT(SlReplicaViewHighWatermark(&v, 100, hw), 100);
}

static void
test_out_of_isr_does_not_count(void)
{
	SlReplicaView v;
	const int32 isr[] = {1, 2};

	lead(&v, isr, 2, 100, 1000);
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 2, 5, 100, 100, 1001), 0);
	/* node 3 never reported: not in the ISR, it holds nothing up */
	CHECK_EQ_INT(SlReplicaViewHighWatermark(&v, 100, 0), 100);
	/* asked to join: it counts from then on (maximal ISR, KIP-497) */
	{
		const int32 grown[] = {1, 2, 3};

		SlReplicaViewAsked(&v, grown, 3);
		CHECK(SlReplicaViewInMaximalIsr(&v, SELF, 3));
		CHECK_EQ_INT(SlReplicaViewHighWatermark(&v, 120, 100), 100);
		SlReplicaViewAskDone(&v);
		CHECK(!SlReplicaViewInMaximalIsr(&v, SELF, 3));
	}
}

static void
test_epochs_fence_reports(void)
{
	SlReplicaView v;

	lead(&v, three, 3, 100, 1000);
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 2, 4, 100, 100, 1001), ERR_FENCED_EPOCH);
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 2, 6, 100, 100, 1001), ERR_UNKNOWN_EPOCH);
	/* nothing changed: node 2 still not heard from */
	CHECK_EQ_INT(v.replicas[1].log_end, -1);
	/* not a replica, or the leader itself */
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 7, 5, 100, 100, 1001), ERR_NOT_LEADER);
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, SELF, 5, 100, 100, 1001), ERR_NOT_LEADER);
}

static void
test_leadership_changes(void)
{
	SlReplicaView v;
	const int32 isr[] = {1, 2};
	SlReplicaLeadership older = {SELF, 4, 20, 3, three, 3, three};
	SlReplicaLeadership shrunk = {SELF, 5, 11, 3, three, 2, isr};
	SlReplicaLeadership deposed = {2, 6, 12, 3, three, 2, isr};

	lead(&v, three, 3, 100, 1000);
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 2, 5, 90, 100, 1001), 0);
	/* an older leadership is ignored */
	CHECK(!SlReplicaViewSetLeadership(&v, SELF, &older, 100, 1002));
	CHECK_EQ_INT(v.leader_epoch, 5);
	/* an ISR change in the same term keeps the progress */
	CHECK(SlReplicaViewSetLeadership(&v, SELF, &shrunk, 100, 1002));
	CHECK_EQ_INT(v.replicas[1].log_end, 90);
	CHECK(!v.replicas[2].in_isr);
	CHECK_EQ_INT(SlReplicaViewHighWatermark(&v, 100, 0), 90);
	/* deposed: a follower, reports refused, the HW from the new leader */
	CHECK(SlReplicaViewSetLeadership(&v, SELF, &deposed, 100, 1003));
	CHECK_EQ_INT(v.role, SL_ROLE_FOLLOWER);
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 3, 6, 100, 100, 1004), ERR_NOT_LEADER);
	CHECK_EQ_INT(SlReplicaViewHighWatermark(&v, 100, 90), 90);
	v.leader_high_watermark = 95;
	CHECK_EQ_INT(SlReplicaViewHighWatermark(&v, 100, 90), 95);
	v.leader_high_watermark = 120;
	CHECK_EQ_INT(SlReplicaViewHighWatermark(&v, 100, 90), 100);
	/* leading again in a later term starts afresh */
	{
		SlReplicaLeadership back = {SELF, 7, 13, 3, three, 3, three};

		CHECK(SlReplicaViewSetLeadership(&v, SELF, &back, 130, 2000));
		CHECK_EQ_INT(v.epoch_start_offset, 130);
		CHECK_EQ_INT(v.replicas[1].log_end, -1);
		CHECK_EQ_INT(v.replicas[1].last_caught_up_ms, 2000);
		CHECK_EQ_INT(SlReplicaViewHighWatermark(&v, 130, 100), 100);
	}
}

static void
test_isr_shrink_and_expand(void)
{
	SlReplicaView v;
	int32		isr[SL_REPLICA_VIEW_MAX];
	int32		nisr;
	const int32 two[] = {1, 2};

	lead(&v, three, 3, 100, 1000);
	/* within the lag: nothing to ask */
	CHECK(!SlReplicaViewIsrProposal(&v, SELF, 100, 100, 5000, 10000, isr, &nisr));
	/* node 2 keeps up, node 3 says nothing for longer than the lag */
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 2, 5, 100, 100, 11500), 0);
	CHECK(SlReplicaViewIsrProposal(&v, SELF, 100, 100, 11500, 10000, isr, &nisr));
	CHECK_EQ_INT(nisr, 2);
	CHECK_EQ_INT(isr[0], 1);
	CHECK_EQ_INT(isr[1], 2);

	/* Kafka's caught-up rule: behind now, but at the leader's end of then */
	lead(&v, three, 3, 100, 1000);
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 2, 5, 90, 100, 2000), 0);
	CHECK_EQ_INT(v.replicas[1].last_caught_up_ms, 1000);
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 2, 5, 100, 150, 3000), 0);
	CHECK_EQ_INT(v.replicas[1].last_caught_up_ms, 2000);
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 2, 5, 150, 150, 4000), 0);
	CHECK_EQ_INT(v.replicas[1].last_caught_up_ms, 4000);
	/* a follower at the log end never lags, however long ago it caught up */
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 3, 5, 150, 150, 4000), 0);
	CHECK(!SlReplicaViewIsrProposal(&v, SELF, 150, 150, 40000, 10000, isr, &nisr));

	/* expand: at the HW and in this epoch */
	lead(&v, two, 2, 100, 1000);
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 3, 5, 80, 100, 1001), 0);
	CHECK(!SlReplicaViewIsrProposal(&v, SELF, 100, 90, 1001, 10000, isr, &nisr));
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 3, 5, 95, 100, 1002), 0);
	/* past the HW but not at the epoch's start offset (100) */
	CHECK(!SlReplicaViewIsrProposal(&v, SELF, 100, 90, 1002, 10000, isr, &nisr));
	CHECK_EQ_INT(SlReplicaViewReport(&v, SELF, 3, 5, 100, 100, 1003), 0);
	CHECK(SlReplicaViewIsrProposal(&v, SELF, 100, 90, 1003, 10000, isr, &nisr));
	CHECK_EQ_INT(nisr, 3);
	/* a follower proposes nothing */
	{
		SlReplicaLeadership f = {2, 6, 11, 3, three, 3, three};

		CHECK(SlReplicaViewSetLeadership(&v, SELF, &f, 100, 1004));
		CHECK(!SlReplicaViewIsrProposal(&v, SELF, 100, 90, 90000, 10000, isr, &nisr));
	}
}

int
main(void)
{
	test_alone();
	test_high_watermark_over_isr();
	test_out_of_isr_does_not_count();
	test_epochs_fence_reports();
	test_leadership_changes();
	test_isr_shrink_and_expand();
	return UNIT_DONE();
}
