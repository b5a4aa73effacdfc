/*
 * Client quotas as Kafka enforces them (KIP-13, KIP-55, KIP-124, KIP-219,
 * KIP-599): byte rates of Produce and Fetch, the share of a worker's time
 * a client's requests take, and the rate of partition creations and
 * deletions, per user and client id, measured over sampled windows in
 * shared memory (so over every worker of this node).  A client over its
 * quota is answered at once with throttle_time_ms and its connection is
 * muted for that long (KIP-219): the worker never sleeps.
 */
#ifndef SL_SERVER_QUOTAS_H
#define SL_SERVER_QUOTAS_H

#include "postgres.h"

#include "streamlog/server/request.h"

extern Size SlQuotasShmemSize(void);
extern void SlQuotasShmemInit(void);

/*
 * Are any quotas stored (as this worker last looked)?  Then the worker
 * takes one Produce at a time from each connection, as Kafka handles one
 * request at a time per connection, so that a throttled client is muted
 * before its next request rather than after all it had sent.
 */
extern bool SlQuotasInForce(void);

/*
 * Before req is handled, in its transaction: record what it brings (a
 * Produce's bytes, the partitions a topic administration request creates
 * or deletes) and set req->throttle_ms from its user's and client id's
 * rates.  A throttled Fetch is answered at once without records, as Kafka
 * does.  Returns the Kafka error to answer with instead of handling it
 * (THROTTLING_QUOTA_EXCEEDED for CreateTopics v6+, CreatePartitions v3+,
 * DeleteTopics v5+ over their mutation rate), or SL_ERR_NONE.
 */
extern int16 SlQuotaBeforeRequest(SlRequest *req);

/*
 * After req was handled (elapsed_us is the time it took): record what its
 * answer carries (a Fetch's bytes) and the time, and write req->throttle_ms
 * into its response's throttle_time_ms.
 */
extern void SlQuotaAfterRequest(SlRequest *req, int64 elapsed_us);

#endif							/* SL_SERVER_QUOTAS_H */
