/*-------------------------------------------------------------------------
 * metrics_connections.c
 *	  Connections and logins per listener, the connections open now per
 *	  listener and principal, and the broker-wide counters (ISR changes,
 *	  the cleaner's passes, slow requests), from the shared counters.
 *
 * IDENTIFICATION
 *	  src/bgworkers/metrics_connections.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "streamlog/bgworkers/metrics_counter_sources.h"
#include "streamlog/metrics/connections.h"
#include "streamlog/metrics/counters.h"
#include "streamlog/metrics/fetch_session_counts.h"

/* Connections open now, counted per (listener, principal) */
static void
add_principals(SlExposition *e)
{
	int			count;
	SlConnActivity *conns = SlConnActivitySnapshot(&count);
	bool	   *done = palloc0(sizeof(bool) * Max(count, 1));

	for (int i = 0; i < count; i++)
	{
		int			n = 0;
		SlMetricLabel labels[2] = {{"listener", conns[i].listener_name},
		{"principal", conns[i].principal}};

		if (done[i])
			continue;
		for (int j = i; j < count; j++)
			if (!done[j] && strcmp(conns[j].listener_name, conns[i].listener_name) == 0 &&
				strcmp(conns[j].principal, conns[i].principal) == 0)
			{
				done[j] = true;
				n++;
			}
		SlExpositionAdd(e, SL_M_CONNECTIONS_BY_PRINCIPAL, labels, 2, n);
	}
	pfree(done);
	pfree(conns);
}

void
SlMetricsAddConnections(SlExposition *e)
{
	int			count;
	SlListenerStats *listeners = SlMetricsListenerSnapshot(&count);
	uint64		global[SL_METRIC_COUNT];
	uint64		sessions;
	uint64		partitions;
	uint64		evictions;

	for (int i = 0; i < count; i++)
	{
		const uint64 *ev = listeners[i].events;
		SlMetricLabel label = {"listener", listeners[i].name};
		uint64		open = ev[SL_LISTENER_CONNECTION_OPENED] >= ev[SL_LISTENER_CONNECTION_CLOSED] ?
			ev[SL_LISTENER_CONNECTION_OPENED] - ev[SL_LISTENER_CONNECTION_CLOSED] : 0;

		SlExpositionAdd(e, SL_M_CONNECTIONS, &label, 1, (double) open);
		SlExpositionAdd(e, SL_M_CONNECTIONS_OPENED, &label, 1,
						(double) ev[SL_LISTENER_CONNECTION_OPENED]);
		SlExpositionAdd(e, SL_M_CONNECTIONS_CLOSED, &label, 1,
						(double) ev[SL_LISTENER_CONNECTION_CLOSED]);
		SlExpositionAdd(e, SL_M_CONNECTIONS_REFUSED, &label, 1,
						(double) ev[SL_LISTENER_CONNECTION_REFUSED]);
		SlExpositionAdd(e, SL_M_AUTH_SUCCEEDED, &label, 1,
						(double) ev[SL_LISTENER_AUTH_SUCCEEDED]);
		SlExpositionAdd(e, SL_M_AUTH_FAILED, &label, 1, (double) ev[SL_LISTENER_AUTH_FAILED]);
	}
	pfree(listeners);
	add_principals(e);

	SlMetricsGlobalSnapshot(global);
	SlExpositionAdd(e, SL_M_ISR_SHRINKS, NULL, 0, (double) global[SL_METRIC_ISR_SHRINKS]);
	SlExpositionAdd(e, SL_M_ISR_EXPANDS, NULL, 0, (double) global[SL_METRIC_ISR_EXPANDS]);
	SlExpositionAdd(e, SL_M_CLEANER_RUNS, NULL, 0, (double) global[SL_METRIC_CLEANER_RUNS]);
	SlExpositionAdd(e, SL_M_CLEANER_SEGMENTS_DELETED, NULL, 0,
					(double) global[SL_METRIC_CLEANER_SEGMENTS_DELETED]);
	SlExpositionAdd(e, SL_M_SLOW_REQUESTS, NULL, 0, (double) global[SL_METRIC_SLOW_REQUESTS]);

	SlFetchSessionCountsSnapshot(&sessions, &partitions, &evictions);
	SlExpositionAdd(e, SL_M_FETCH_SESSIONS, NULL, 0, (double) sessions);
	SlExpositionAdd(e, SL_M_FETCH_SESSION_PARTITIONS, NULL, 0, (double) partitions);
	SlExpositionAdd(e, SL_M_FETCH_SESSION_EVICTIONS, NULL, 0, (double) evictions);
}
