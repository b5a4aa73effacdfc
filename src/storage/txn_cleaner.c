/*
 * The log cleaner's view of transactions (txn_cleaner.h), as Kafka's
 * CleanedTransactionMetadata: aborted transactions become under way when
 * the batches read reach their first offset, and end at their marker;
 * committed ones are under way from their first batch met to their
 * marker.
 */
#include "streamlog/protocol/records.h"
#include "streamlog/storage/txn_cleaner.h"

void
SlTxnCleanerInit(SlTxnCleaner *c, const SlAbortedTxn *aborted, int naborted)
{
	c->aborted = aborted;
	c->naborted = naborted;
	c->next_aborted = 0;
	c->ongoing = NULL;
	c->nongoing = 0;
	c->capacity = 0;
}

void
SlTxnCleanerFree(SlTxnCleaner *c)
{
	if (c->ongoing)
		pfree(c->ongoing);
	c->ongoing = NULL;
	c->nongoing = c->capacity = 0;
}

static SlTxnCleanerOngoing *
find(SlTxnCleaner *c, int64 producer_id)
{
	for (int i = 0; i < c->nongoing; i++)
		if (c->ongoing[i].producer_id == producer_id)
			return &c->ongoing[i];
	return NULL;
}

static SlTxnCleanerOngoing *
add(SlTxnCleaner *c, int64 producer_id)
{
	SlTxnCleanerOngoing *o;

	if (c->nongoing == c->capacity)
	{
		c->capacity = c->capacity == 0 ? 8 : c->capacity * 2;
		c->ongoing = c->ongoing == NULL ?
			palloc(sizeof(SlTxnCleanerOngoing) * c->capacity) :
			repalloc(c->ongoing, sizeof(SlTxnCleanerOngoing) * c->capacity);
	}
	o = &c->ongoing[c->nongoing++];
	o->producer_id = producer_id;
	o->aborted = -1;
	o->batch_seen = false;
	return o;
}

static void
drop(SlTxnCleaner *c, SlTxnCleanerOngoing *o)
{
	*o = c->ongoing[--c->nongoing];
}

/*
 * Aborted transactions that start at or below offset are under way (an
 * aborted transaction whose marker lies below offset was met already, or
 * lies below the range read: either way it is over)
 */
static void
start_aborted_up_to(SlTxnCleaner *c, int64 offset)
{
	while (c->next_aborted < c->naborted &&
		   c->aborted[c->next_aborted].first_offset <= offset)
	{
		const SlAbortedTxn *txn = &c->aborted[c->next_aborted];

		if (txn->last_offset >= offset)
		{
			SlTxnCleanerOngoing *o = find(c, txn->producer_id);

			if (o == NULL)
				o = add(c, txn->producer_id);
			o->aborted = c->next_aborted;
		}
		c->next_aborted++;
	}
}

bool
SlTxnCleanerDataBatch(SlTxnCleaner *c, int16 attributes, int64 producer_id,
					  int64 last_offset)
{
	SlTxnCleanerOngoing *o;

	start_aborted_up_to(c, last_offset);
	if (!(attributes & SL_BATCH_ATTR_TRANSACTIONAL) || producer_id < 0)
		return false;
	o = find(c, producer_id);
	if (o == NULL)
		o = add(c, producer_id);
	o->batch_seen = true;
	return o->aborted >= 0;
}

SlTxnMarkerVerdict
SlTxnCleanerMarker(SlTxnCleaner *c, int64 producer_id, int64 offset, bool abort)
{
	SlTxnMarkerVerdict v = {true, false};
	SlTxnCleanerOngoing *o;

	start_aborted_up_to(c, offset);
	o = find(c, producer_id);
	if (o != NULL)
	{
		/* Batches met in this pass: the marker stays (they may go now) */
		v.can_discard = !o->batch_seen;
		if (abort && o->aborted >= 0 && c->aborted[o->aborted].last_offset == offset)
			v.drop_index = !o->batch_seen;
		drop(c, o);
	}
	return v;
}
