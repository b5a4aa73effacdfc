/*-------------------------------------------------------------------------
 * producer_id_blocks.c
 *	  Producer ids in cluster mode: blocks from the controller, kept in
 *	  shared memory (producer_id_blocks.h).
 *
 * A block is asked for when the current one is used up, without a lock
 * held across the request (it goes over the network and may wait for a new
 * controller): two processes that find the block empty at once each get a
 * block; the first installed is used, the other's ids are left unused, as
 * a restarted Kafka broker leaves the rest of its block.  Ids are int64,
 * so a few thousand lost ids do not matter; giving one twice would.
 *
 * A restart forgets the block (it is in shared memory): the next producer
 * gets an id from a new block, never one from before, since every block
 * is committed in the metadata log before it is used.
 *
 * IDENTIFICATION
 *	  src/metadata/producer_id_blocks.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <inttypes.h>

#include "storage/shmem.h"
#include "storage/spin.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_submit.h"
#include "streamlog/metadata/producer_id_blocks.h"
#include "streamlog/storage/storage.h"

/* What a node tells a client when no block can be had (retriable) */
#define KAFKA_COORDINATOR_LOAD_IN_PROGRESS 14

/*
 * How long InitProducerId waits for a block: short, since the broker worker
 * that asks serves nothing else meanwhile, and the client retries a
 * COORDINATOR_LOAD_IN_PROGRESS (Kafka's broker answers it at once while
 * its next block is being fetched)
 */
#define BLOCK_REQUEST_TIMEOUT_MS 5000

typedef struct SlProducerIdBlock
{
	slock_t		mutex;
	int64		next;			/* next id to hand out */
	int64		last;			/* last id of the block; next > last: empty */
	uint64		blocks;			/* blocks received since start */
} SlProducerIdBlock;

static SlProducerIdBlock *pid_block = NULL;

Size
SlProducerIdBlocksShmemSize(void)
{
	return MAXALIGN(sizeof(SlProducerIdBlock));
}

void
SlProducerIdBlocksShmemInit(void)
{
	bool		found;

	pid_block = ShmemInitStruct("streamlog producer id block", sizeof(SlProducerIdBlock), &found);
	if (!found)
	{
		SpinLockInit(&pid_block->mutex);
		pid_block->next = 0;
		pid_block->last = -1;
		pid_block->blocks = 0;
	}
}

/* An id from the block in shared memory, or -1 if it is used up */
static int64
take_from_block(void)
{
	int64		id = -1;

	SpinLockAcquire(&pid_block->mutex);
	if (pid_block->next <= pid_block->last)
		id = pid_block->next++;
	SpinLockRelease(&pid_block->mutex);
	return id;
}

/*
 * Install [first, last] unless another process installed a block
 * meanwhile that still has ids; then take an id
 */
static int64
install_and_take(int64 first, int64 last)
{
	int64		id;

	SpinLockAcquire(&pid_block->mutex);
	if (pid_block->next > pid_block->last && first > pid_block->last)
	{
		pid_block->next = first;
		pid_block->last = last;
		pid_block->blocks++;
	}
	id = pid_block->next <= pid_block->last ? pid_block->next++ : -1;
	SpinLockRelease(&pid_block->mutex);
	return id;
}

int64
SlProducerIdNext(int16 *error_code, char **message)
{
	SlControllerRequest req;
	int64		id;

	*error_code = 0;
	*message = NULL;
	if (!SlClusterEnabled())
		return SlProducerIdAllocate();

	for (int attempt = 0; attempt < 3; attempt++)
	{
		void	   *data;
		size_t		len;
		char	   *copy;
		char	   *answer = NULL;
		uint64		index;
		int16		rc;
		int64		first;
		int64		last;

		id = take_from_block();
		if (id >= 0)
			return id;

		memset(&req, 0, sizeof(req));
		req.type = SL_CTRL_ALLOCATE_PRODUCER_IDS;
		req.node_id = sl_node_id;
		if (!SlControllerRequestEncode(&req, &data, &len))
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory encoding a request to the controller")));
		copy = palloc(len);
		memcpy(copy, data, len);
		free(data);
		rc = SlClusterSubmitToController(SL_SLOT_CONTROLLER_REQUEST, 0, copy, (int32) len,
										 BLOCK_REQUEST_TIMEOUT_MS, &answer, &index);
		pfree(copy);
		if (rc != 0)
		{
			*error_code = KAFKA_COORDINATOR_LOAD_IN_PROGRESS;
			*message = psprintf("no block of producer ids could be had from the controller: %s",
								answer ? answer : "no reason given");
			return -1;
		}
		if (answer == NULL || !SlProducerIdBlockParse(answer, &first, &last))
		{
			*error_code = KAFKA_COORDINATOR_LOAD_IN_PROGRESS;
			*message = psprintf("the controller's answer to a request for producer ids does not name a block: \"%s\"",
								answer ? answer : "");
			return -1;
		}
		id = install_and_take(first, last);
		if (id >= 0)
			return id;
		/* others used up the block meanwhile: ask again */
	}
	*error_code = KAFKA_COORDINATOR_LOAD_IN_PROGRESS;
	*message = pstrdup("producer id blocks were used up as fast as the controller handed them out");
	return -1;
}

bool
SlProducerIdBlockFormat(const SlMetaBatch *batch, char *buf, size_t buflen)
{
	for (int i = 0; i < batch->nrecords; i++)
	{
		const SlMetaRecord *rec = &batch->records[i];

		if (rec->type == SL_META_PRODUCER_IDS && rec->producer_id_count > 0)
		{
			snprintf(buf, buflen, "producer ids %" PRId64 " to %" PRId64,
					 rec->first_producer_id,
					 rec->first_producer_id + rec->producer_id_count - 1);
			return true;
		}
	}
	return false;
}

bool
SlProducerIdBlockParse(const char *message, int64 *first, int64 *last)
{
	int64_t		f;
	int64_t		l;
	int			consumed = 0;

	if (sscanf(message, "producer ids %" SCNd64 " to %" SCNd64 "%n", &f, &l, &consumed) != 2 ||
		message[consumed] != '\0' || f < 0 || l < f)
		return false;
	*first = f;
	*last = l;
	return true;
}
