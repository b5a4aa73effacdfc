/*
 * The Kafka server layer: turns requests into responses through the
 * storage API.  Called by the broker workers' event loop.
 */
#ifndef SL_SERVER_H
#define SL_SERVER_H

#include "streamlog/server/request.h"

/*
 * While req is handled, every log line (and error) names its client, API
 * and version and, once SlRequestNotePartition says so, the topic and
 * partition.  Push before handling, pop after.
 */
extern void SlRequestErrorContextPush(SlRequest *req, ErrorContextCallback *callback);
extern void SlRequestErrorContextPop(ErrorContextCallback *callback);
extern void SlRequestNotePartition(SlRequest *req, const char *topic, int32 partition);

/*
 * Parse the request header of req's frame.  Returns false (with a log
 * line) if the frame cannot be parsed at all: the connection is closed.
 */
extern bool SlServerParseHeader(SlRequest *req);

/*
 * Is req of a batchable API (Produce), to be committed together with the
 * others of its API read at the same time?
 */
extern bool SlServerIsBatchable(const SlRequest *req);

/*
 * Handle a request that is not batchable: its state becomes DONE, or
 * PARKED with a deadline (a Fetch waiting for data).
 */
extern void SlServerHandle(SlRequest *req);

/*
 * Handle batchable requests together, those of one API (Produce,
 * OffsetCommit) in one transaction: one commit (one WAL flush), then every
 * response.  Each becomes DONE, or PARKED until its replicas have it.
 */
extern void SlServerHandleBatch(SlRequest **reqs, int n);

/*
 * Look again at a parked request (new data may have arrived, or the
 * deadline passed): it becomes DONE or stays PARKED.
 */
extern void SlServerRetryParked(SlRequest *req, bool deadline_passed);

#endif							/* SL_SERVER_H */
