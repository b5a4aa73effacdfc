/*
 * Definitions of the streamlog.* settings, sorted by name.
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "guc.h"

int			sl_batch_bytes = 256 * 1024;
char	   *sl_database = NULL;
int			sl_max_partitions = 4096;
int			sl_retention_check_interval = 30000;

void
SlDefineGucs(void)
{
	DefineCustomIntVariable("streamlog.batch_bytes",
							"Target size of the record batches that SQL produce() writes.",
							"Records produced by SQL in one transaction are packed into "
							"batches of about this many bytes (before compression), "
							"capped by the topic's max.message.bytes.",
							&sl_batch_bytes,
							256 * 1024, 1024, 64 * 1024 * 1024,
							PGC_USERSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomStringVariable("streamlog.database",
							   "Database whose topics the background workers serve.",
							   NULL,
							   &sl_database,
							   "postgres",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.max_partitions",
							"Most partitions, over all topics, whose state is kept in shared memory.",
							NULL,
							&sl_max_partitions,
							4096, 16, 1000000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.retention_check_interval",
							"Time between two retention passes of the cleaner (log.retention.check.interval.ms).",
							NULL,
							&sl_retention_check_interval,
							30000, 100, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("streamlog");
}
