/*
 * streamlog.stat_broker and streamlog.stat_listeners: the broker-wide
 * counters (ISR changes, throttle time, the cleaner's progress, slow
 * requests) and the connection and authentication counts per listener,
 * since the last reset (metrics/counters.h).
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "streamlog/metrics/counters.h"
#include "streamlog/shmem.h"

PG_FUNCTION_INFO_V1(streamlog_stat_broker);

Datum
streamlog_stat_broker(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	uint64		values[SL_METRIC_COUNT];

	SlCheckPreloaded();
	InitMaterializedSRF(fcinfo, 0);
	SlMetricsGlobalSnapshot(values);
	for (int i = 0; i < SL_METRIC_COUNT; i++)
	{
		Datum		row[3];
		bool		nulls[3] = {0};

		row[0] = CStringGetTextDatum(SlMetricName((SlMetric) i));
		row[1] = Int64GetDatum((int64) values[i]);
		row[2] = CStringGetTextDatum(SlMetricIsGauge((SlMetric) i) ? "gauge" : "counter");
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(streamlog_stat_listeners);

Datum
streamlog_stat_listeners(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SlListenerStats *rows;
	int			n;

	SlCheckPreloaded();
	InitMaterializedSRF(fcinfo, 0);
	rows = SlMetricsListenerSnapshot(&n);
	for (int i = 0; i < n; i++)
	{
		Datum		row[1 + SL_LISTENER_EVENT_COUNT];
		bool		nulls[1 + SL_LISTENER_EVENT_COUNT] = {0};

		row[0] = CStringGetTextDatum(rows[i].name);
		for (int e = 0; e < SL_LISTENER_EVENT_COUNT; e++)
			row[1 + e] = Int64GetDatum((int64) rows[i].events[e]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(streamlog_stat_reset);

/*
 * streamlog.stat_reset(): every counter back to zero, as pg_stat_reset();
 * who may is said by EXECUTE on it (superusers, and roles granted it)
 */
Datum
streamlog_stat_reset(PG_FUNCTION_ARGS)
{
	SlCheckPreloaded();
	SlMetricsReset();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(streamlog_stat_reset_time);

Datum
streamlog_stat_reset_time(PG_FUNCTION_ARGS)
{
	SlCheckPreloaded();
	PG_RETURN_TIMESTAMPTZ(SlMetricsResetTime());
}
