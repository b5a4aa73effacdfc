/*
 * The replication view of a partition, see replica_view.h: Kafka's rules
 * for the high watermark (Partition.maybeIncrementLeaderHW over the
 * maximal ISR of KIP-497), for catching up (Replica.updateFetchState) and
 * for ISR changes (maybeShrinkIsr, maybeExpandIsr), as pure functions.
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/storage/internal/replica_view.h"

/* Kafka's error codes, as replica_progress.h names them */
#define ERR_NOT_LEADER 6
#define ERR_FENCED_EPOCH 74
#define ERR_UNKNOWN_EPOCH 75

static bool
contains(const int32 *ids, int32 n, int32 id)
{
	for (int32 i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

static SlReplicaProgress *
find_replica(SlReplicaView *view, int32 node_id)
{
	for (int32 i = 0; i < view->nreplicas; i++)
		if (view->replicas[i].node_id == node_id)
			return &view->replicas[i];
	return NULL;
}

void
SlReplicaViewInit(SlReplicaView *view)
{
	memset(view, 0, sizeof(*view));
	view->role = SL_ROLE_ALONE;
	view->leader = -1;
	view->leader_epoch = -1;
	view->partition_epoch = -1;
	view->epoch_start_offset = 0;
	view->leader_high_watermark = -1;
}

bool
SlReplicaViewSetLeadership(SlReplicaView *view, int32 self_id,
						   const SlReplicaLeadership *l, int64 log_end, int64 now_ms)
{
	SlReplicaView old = *view;
	SlReplicaRole role;
	bool		new_term;

	if (view->leader_epoch >= 0 &&
		(l->leader_epoch < view->leader_epoch ||
		 (l->leader_epoch == view->leader_epoch &&
		  l->partition_epoch <= view->partition_epoch)))
		return false;

	if (l->leader == self_id)
		role = SL_ROLE_LEADER;
	else if (l->leader >= 0 && contains(l->replicas, l->nreplicas, self_id))
		role = SL_ROLE_FOLLOWER;
	else
		role = SL_ROLE_NONE;
	new_term = role == SL_ROLE_LEADER &&
		(old.role != SL_ROLE_LEADER || old.leader_epoch != l->leader_epoch);

	view->role = role;
	view->leader = l->leader;
	view->leader_epoch = l->leader_epoch;
	view->partition_epoch = l->partition_epoch;
	if (new_term)
		view->epoch_start_offset = log_end;
	view->nreplicas = Min(l->nreplicas, SL_REPLICA_VIEW_MAX);
	for (int32 i = 0; i < view->nreplicas; i++)
	{
		SlReplicaProgress *r = &view->replicas[i];
		SlReplicaProgress *before = new_term ? NULL : find_replica(&old, l->replicas[i]);

		r->node_id = l->replicas[i];
		r->in_isr = contains(l->isr, l->nisr, r->node_id);
		r->pending_add = false;
		if (before != NULL)
		{
			r->log_end = before->log_end;
			r->last_caught_up_ms = before->last_caught_up_ms;
			r->last_report_ms = before->last_report_ms;
			r->last_report_leader_end = before->last_report_leader_end;
		}
		else
		{
			/* as Kafka's makeLeader: ISR members count as caught up now */
			r->log_end = -1;
			r->last_caught_up_ms = r->in_isr ? now_ms : -1;
			r->last_report_ms = -1;
			r->last_report_leader_end = -1;
		}
	}
	return true;
}

int64
SlReplicaViewHighWatermark(const SlReplicaView *view, int64 log_end, int64 current_hw)
{
	int64		hw = current_hw;

	switch (view->role)
	{
		case SL_ROLE_ALONE:
			return log_end;
		case SL_ROLE_LEADER:
			{
				int64		lowest = log_end;

				for (int32 i = 0; i < view->nreplicas; i++)
				{
					const SlReplicaProgress *r = &view->replicas[i];

					/* the leader's own is log_end */
					if (r->node_id == view->leader || (!r->in_isr && !r->pending_add))
						continue;
					/* a member not heard from in this term holds it */
					if (r->log_end < 0)
						return Min(current_hw, log_end);
					lowest = Min(lowest, r->log_end);
				}
				hw = Max(current_hw, lowest);
				break;
			}
		case SL_ROLE_FOLLOWER:
			if (view->leader_high_watermark >= 0)
				hw = Max(current_hw, Min(view->leader_high_watermark, log_end));
			break;
		case SL_ROLE_NONE:
			break;
	}
	return Min(hw, log_end);
}

int16
SlReplicaViewReport(SlReplicaView *view, int32 self_id, int32 follower_id,
					int32 leader_epoch, int64 follower_end, int64 log_end, int64 now_ms)
{
	SlReplicaProgress *r;

	if (view->role != SL_ROLE_LEADER)
		return ERR_NOT_LEADER;
	if (leader_epoch < view->leader_epoch)
		return ERR_FENCED_EPOCH;
	if (leader_epoch > view->leader_epoch)
		return ERR_UNKNOWN_EPOCH;
	r = follower_id == self_id ? NULL : find_replica(view, follower_id);
	if (r == NULL)
		return ERR_NOT_LEADER;

	if (follower_end >= log_end)
		r->last_caught_up_ms = Max(r->last_caught_up_ms, now_ms);
	else if (r->last_report_ms >= 0 && follower_end >= r->last_report_leader_end)
		r->last_caught_up_ms = Max(r->last_caught_up_ms, r->last_report_ms);
	r->log_end = follower_end;
	r->last_report_ms = now_ms;
	r->last_report_leader_end = log_end;
	return 0;
}

bool
SlReplicaViewIsrProposal(const SlReplicaView *view, int32 self_id, int64 log_end,
						 int64 high_watermark, int64 now_ms, int64 lag_ms,
						 int32 *isr, int32 *nisr)
{
	bool		changed = false;

	*nisr = 0;
	if (view->role != SL_ROLE_LEADER)
		return false;
	for (int32 i = 0; i < view->nreplicas; i++)
	{
		const SlReplicaProgress *r = &view->replicas[i];
		bool		member;

		if (r->node_id == self_id)
			member = true;
		else if (r->in_isr)
			/* Kafka's isFollowerOutOfSync */
			member = r->log_end == log_end ||
				(r->last_caught_up_ms >= 0 && now_ms - r->last_caught_up_ms <= lag_ms);
		else
			/* Kafka's isFollowerInSync: at the HW and in this leader epoch */
			member = r->log_end >= 0 && r->log_end >= high_watermark &&
				r->log_end >= view->epoch_start_offset;
		if (member != r->in_isr)
			changed = true;
		if (member)
			isr[(*nisr)++] = r->node_id;
	}
	return changed;
}

void
SlReplicaViewAsked(SlReplicaView *view, const int32 *isr, int32 nisr)
{
	for (int32 i = 0; i < view->nreplicas; i++)
	{
		SlReplicaProgress *r = &view->replicas[i];

		r->pending_add = !r->in_isr && contains(isr, nisr, r->node_id);
	}
}

void
SlReplicaViewAskDone(SlReplicaView *view)
{
	for (int32 i = 0; i < view->nreplicas; i++)
		view->replicas[i].pending_add = false;
}

bool
SlReplicaViewInMaximalIsr(const SlReplicaView *view, int32 self_id, int32 node_id)
{
	for (int32 i = 0; i < view->nreplicas; i++)
		if (view->replicas[i].node_id == node_id)
			return view->replicas[i].in_isr || view->replicas[i].pending_add;
	return view->role == SL_ROLE_ALONE && node_id == self_id;
}
