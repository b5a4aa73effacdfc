/*
 * The short-lived worker that creates __consumer_offsets on first use (see
 * storage/offsets_topic.c): the topic is created and committed in the
 * worker's own transaction, so that the commit that first needs it does not
 * make others wait on its transaction, nor take the topic with it if it
 * rolls back.  Started by the backend that needs the topic, for its
 * database (bgw_main_arg); an error is logged and the worker exits.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "utils/snapmgr.h"

#include "streamlog/storage/storage.h"

extern PGDLLEXPORT void SlOffsetsTopicCreatorMain(Datum arg);

void
SlOffsetsTopicCreatorMain(Datum arg)
{
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);
	pgstat_report_appname("streamlog topic creator");

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SlOffsetsTopicCreate();
	PopActiveSnapshot();
	CommitTransactionCommand();
}
