/*
 * The incremental fetch sessions of the broker workers, counted in shared
 * memory for the metrics endpoint (Kafka's FetchSessionCache metrics).
 *
 * Each worker keeps its shard of the session cache in its own memory
 * (server/fetch_sessions.h); it writes here how many sessions and cached
 * partitions the shard holds whenever that changes, in its own slot, so
 * that a worker that is replaced leaves no count behind (its successor
 * starts its slot at zero).  Evictions are a counter of the whole node.
 * Gauges are written whatever streamlog.track_metrics says (they say what
 * is, not what happened); the eviction counter follows it.
 */
#ifndef SL_METRICS_FETCH_SESSION_COUNTS_H
#define SL_METRICS_FETCH_SESSION_COUNTS_H

#include "postgres.h"

extern Size SlFetchSessionCountsShmemSize(void);
extern void SlFetchSessionCountsShmemInit(void);

/* Worker worker's shard holds sessions sessions of partitions in all */
extern void SlFetchSessionCountsSet(int worker, int64 sessions, int64 partitions);

/* A session was evicted to make room for another */
extern void SlFetchSessionCountsEvicted(void);

/* The node's sums: sessions, cached partitions, evictions */
extern void SlFetchSessionCountsSnapshot(uint64 *sessions, uint64 *partitions,
										 uint64 *evictions);

/* Evictions back to zero (streamlog.stat_reset()) */
extern void SlFetchSessionCountsReset(void);

#endif							/* SL_METRICS_FETCH_SESSION_COUNTS_H */
