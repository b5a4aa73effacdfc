/*
 * Kafka's OffsetForLeaderEpoch over stored batches (see epoch_search.h).
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/storage/epoch_search.h"

bool
SlEpochFirstAbove(SlEpochLog *log, int32 epoch, SlEpochBatch *found)
{
	int64		lo = log->log_start;
	int64		hi = log->log_end;
	bool		have = false;

	/*
	 * Batches ending below lo are of epochs <= epoch; the answer, if any,
	 * begins below hi.  Each probe moves lo past a batch or hi down to one:
	 * offsets no batch holds (an aborted commit's) are passed over with it.
	 */
	while (lo < hi)
	{
		int64		mid = lo + (hi - lo) / 2;
		SlEpochBatch b;

		log->probes++;
		if (!log->first(mid, &b, log->arg) || b.base_offset >= hi)
		{
			hi = mid;
			continue;
		}
		if (b.epoch > epoch)
		{
			*found = b;
			have = true;
			hi = Min(mid, b.base_offset);
		}
		else
			lo = b.last_offset + 1;
	}
	return have;
}

void
SlEpochEndOffset(SlEpochLog *log, int32 requested_epoch, int32 current_epoch,
				 int32 *end_epoch, int64 *end_offset)
{
	SlEpochBatch last;
	SlEpochBatch higher;
	SlEpochBatch floor;
	int32		latest = SL_UNDEFINED_EPOCH;
	int64		higher_start;

	*end_epoch = SL_UNDEFINED_EPOCH;
	*end_offset = SL_UNDEFINED_EPOCH_OFFSET;
	if (requested_epoch < 0)
		return;

	log->probes++;
	if (log->before(log->log_end, &last, log->arg))
		latest = last.epoch;
	latest = Max(latest, current_epoch);
	if (latest < 0 || requested_epoch > latest)
		return;
	if (requested_epoch == latest)
	{
		*end_epoch = requested_epoch;
		*end_offset = log->log_end;
		return;
	}

	/* The start of the first epoch above requested: stored, or the current */
	if (SlEpochFirstAbove(log, requested_epoch, &higher))
		higher_start = higher.base_offset;
	else
		higher_start = log->log_end;	/* current_epoch, with no batch yet */

	log->probes++;
	if (log->before(higher_start, &floor, log->arg))
		*end_epoch = floor.epoch;
	else
		*end_epoch = requested_epoch;
	*end_offset = higher_start;
}
