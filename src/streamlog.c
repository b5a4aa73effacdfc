/*
 * streamlog: Kafka semantics inside PostgreSQL.  Library entry point.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "streamlog/guc.h"
#include "streamlog/shmem.h"
#include "streamlog/sqlapi/drop_extension.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/xact.h"
#include "streamlog/bgworkers/broker.h"
#include "streamlog/bgworkers/cleaner.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	/*
	 * Loaded by CREATE EXTENSION or a function call without preloading: stay
	 * inert, so that the install script can report what to set.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	SlDefineGucs();
	SlShmemRequest();
	SlTopicsInit();
	SlDropExtensionInit();
	SlXactInit();
	SlCleanerRegister();
	SlBrokerRegister();
}
