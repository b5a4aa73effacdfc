/*
 * The Kafka requests as the metrics count them (metrics/counters.h): each
 * request's times, from its frame read to its answer's last byte sent,
 * split as Kafka's RequestMetrics splits them (queue, local, remote, send
 * time), its error, and the slow request log
 * (streamlog.log_min_request_duration).
 */
#ifndef SL_REQUEST_METRICS_H
#define SL_REQUEST_METRICS_H

#include "streamlog/server/request.h"

/* req's frame was read whole (at now) */
extern void SlRequestMetricsReceived(SlRequest *req, TimestampTz now);

/*
 * The n requests of reqs were looked at (handled, or a parked one looked at
 * again) from started until now: their handler's time, and, if one is
 * answered, when its answer got ready
 */
extern void SlRequestMetricsLooked(SlRequest **reqs, int n, TimestampTz started);

/*
 * req answers with error (one per partition that failed, per topic...):
 * the first one is its error; every one is counted for its API key
 */
extern void SlRequestMetricsNoteError(SlRequest *req, int16 error);

/* req works on topic, for the slow request log */
extern void SlRequestMetricsNoteTopic(SlRequest *req, const char *topic);

/* req's client was told to wait throttle_ms (a quota) */
extern void SlRequestMetricsNoteThrottle(SlRequest *req, int32 throttle_ms);

/*
 * req is done with: its answer was sent (or dropped).  Counts it and logs
 * it if it was slow.  Never fails.
 */
extern void SlRequestMetricsFinish(SlRequest *req);

/* "Fetch v12 from client-id@127.0.0.1:5555": pg_stat_activity's query */
extern const char *SlRequestMetricsActivity(const SlRequest *req);

#endif							/* SL_REQUEST_METRICS_H */
