/*
 * Producer ids on a cluster (metadata/producer_id_blocks.c).  Two nodes
 * must never hand out the same producer id, so in cluster mode a node
 * takes ids from blocks the controller allocates
 * (SL_CTRL_ALLOCATE_PRODUCER_IDS, one PRODUCER_IDS record each: 1000 ids,
 * as Kafka's AllocateProducerIds), kept in shared memory until used up.
 * Standalone, ids come from the local sequence as always (storage).
 */
#ifndef SL_METADATA_PRODUCER_ID_BLOCKS_H
#define SL_METADATA_PRODUCER_ID_BLOCKS_H

#include "streamlog/cluster/metadata_records.h"

extern Size SlProducerIdBlocksShmemSize(void);
extern void SlProducerIdBlocksShmemInit(void);

/*
 * A new producer id: from this node's block in cluster mode (asking the
 * controller for a new block when it is used up), else from the local
 * sequence.  -1 with a Kafka error code in *error_code and *message when
 * no block could be had (COORDINATOR_LOAD_IN_PROGRESS: retriable, as
 * Kafka's RPCProducerIdManager answers).
 */
extern int64 SlProducerIdNext(int16 *error_code, char **message);

/*
 * How a block travels back to the node that asked for it: the message of
 * the controller's answer (a slot's message, _cluster_submit's message
 * column), "producer ids <first> to <last>".  The controller's Raft worker
 * writes it, from the batch it proposed for the request, when the request
 * is done; false if batch holds no PRODUCER_IDS record.
 */
extern bool SlProducerIdBlockFormat(const SlMetaBatch *batch, char *buf, size_t buflen);
extern bool SlProducerIdBlockParse(const char *message, int64 *first, int64 *last);

#endif							/* SL_METADATA_PRODUCER_ID_BLOCKS_H */
