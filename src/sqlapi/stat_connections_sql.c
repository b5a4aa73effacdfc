/*
 * streamlog.stat_connections: the Kafka client connections open now, as
 * pg_stat_activity shows sessions (metrics/connections.h).
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "streamlog/metrics/connections.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/shmem.h"

#define STAT_CONNECTIONS_COLUMNS 13

/* text of s, NULL if empty */
static Datum
text_or_null(const char *s, bool *isnull)
{
	*isnull = s[0] == '\0';
	return *isnull ? (Datum) 0 : CStringGetTextDatum(s);
}

PG_FUNCTION_INFO_V1(streamlog_stat_connections);

Datum
streamlog_stat_connections(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SlConnActivity *rows;
	int			n;

	SlCheckPreloaded();
	InitMaterializedSRF(fcinfo, 0);
	rows = SlConnActivitySnapshot(&n);
	for (int i = 0; i < n; i++)
	{
		const SlConnActivity *a = &rows[i];
		Datum		values[STAT_CONNECTIONS_COLUMNS];
		bool		nulls[STAT_CONNECTIONS_COLUMNS] = {0};
		const SlApiInfo *api = a->api_key >= 0 ? SlApiLookup(a->api_key) : NULL;

		values[0] = Int32GetDatum(a->pid);
		values[1] = text_or_null(a->listener_name, &nulls[1]);
		values[2] = text_or_null(a->address, &nulls[2]);
		values[3] = text_or_null(a->client_id, &nulls[3]);
		values[4] = text_or_null(a->software_name, &nulls[4]);
		values[5] = text_or_null(a->software_version, &nulls[5]);
		values[6] = text_or_null(a->principal, &nulls[6]);
		values[7] = TimestampTzGetDatum(a->connected_since);
		if (a->api_key >= 0)
		{
			values[8] = CStringGetTextDatum(psprintf("%s v%d", api ? api->name : "Unknown",
													 a->api_version));
			values[9] = Int16GetDatum(a->api_key);
			values[10] = Int16GetDatum(a->api_version);
			values[11] = TimestampTzGetDatum(a->request_since);
		}
		else
			nulls[8] = nulls[9] = nulls[10] = nulls[11] = true;
		values[12] = CStringGetTextDatum(a->api_key >= 0 ? "active" : "idle");
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
