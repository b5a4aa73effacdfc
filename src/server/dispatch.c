/*
 * Dispatch: from a request frame to a response, through the handler table.
 *
 * Each request runs in its own transaction with an error boundary, so a
 * failing request cannot take the worker down: an ERROR the handler did not
 * catch itself (per topic or partition) is logged and answered, as Kafka's
 * getErrorResponse does, with the Kafka error code of its SQLSTATE in every
 * topic and partition of the request; the connection stays open.  Only a
 * frame that cannot be parsed closes it, and a request for an API or
 * version we do not serve, as Kafka does, except ApiVersions, which answers
 * with UNSUPPORTED_VERSION and the versions it has so that the client can
 * retry.
 *
 * Requests of a batchable API (Produce) read together share that one
 * boundary: one transaction, each request in a subtransaction of its own
 * (its ERROR fails it alone), one commit, then the handler's respond
 * answers each, knowing how the commit went.
 *
 * A batchable request can park after its commit (an acks=all Produce
 * waiting for its replicas): its handler's recheck looks again, in a
 * transaction of its own with an error boundary, at once and then each
 * time what it waits on changes, until it answers.  The work it committed
 * is never done again.
 *
 * Every request but those served before authentication runs as its
 * session's role (server/auth.h): SetUserIdAndSecContext inside the
 * transaction (or the request's subtransaction), undone after the handler
 * and, on an ERROR, by the abort.  A batch's commit runs as the worker:
 * it commits the work of several sessions.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/lwlock.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "streamlog/server/auth.h"
#include "streamlog/server/handlers.h"
#include "streamlog/server/kafka_errors.h"
#include "streamlog/server/quotas.h"
#include "streamlog/server/request_metrics.h"
#include "streamlog/server/server.h"
#include "streamlog/server/subtransaction.h"

static void
request_error_context(void *arg)
{
	SlRequest  *req = arg;
	const SlApiInfo *api = SlApiLookup(req->api_key);
	const char *api_name = api ? api->name : "unknown";

	if (req->log_topic && req->log_partition >= 0)
		errcontext("Kafka %s v%d request from %s (client \"%s\"), topic \"%s\" partition %d",
				   api_name, req->api_version, req->peer, req->client_id,
				   req->log_topic, req->log_partition);
	else if (req->log_topic)
		errcontext("Kafka %s v%d request from %s (client \"%s\"), topic \"%s\"",
				   api_name, req->api_version, req->peer, req->client_id, req->log_topic);
	else
		errcontext("Kafka %s v%d request from %s (client \"%s\")",
				   api_name, req->api_version, req->peer, req->client_id);
}

void
SlRequestErrorContextPush(SlRequest *req, ErrorContextCallback *callback)
{
	req->log_topic = NULL;
	req->log_partition = -1;
	callback->callback = request_error_context;
	callback->arg = req;
	callback->previous = error_context_stack;
	error_context_stack = callback;
}

void
SlRequestErrorContextPop(ErrorContextCallback *callback)
{
	error_context_stack = callback->previous;
}

void
SlRequestNotePartition(SlRequest *req, const char *topic, int32 partition)
{
	req->log_topic = topic;
	req->log_partition = partition;
	SlRequestMetricsNoteTopic(req, topic);
}

void
SlRequestWaitOn(SlRequest *req, SlWaitKey key)
{
	SlWaitSetAdd(&req->waiting_on, key);
	SlWaitExpect(key);
}

bool
SlServerParseHeader(SlRequest *req)
{
	SlReader	r;
	SlStr		client_id;
	MemoryContext oldcxt;

	if (SlSaslExpectsRawToken(req->session))
	{
		/* a token of a SASL exchange begun with SaslHandshake v0 */
		req->sasl_raw = true;
		req->api_key = SL_API_SASL_AUTHENTICATE;
		req->api_version = 0;
		req->correlation_id = 0;
		req->client_id = "";
		req->header_len = 0;
		return true;
	}
	SlReaderInit(&r, req->frame, req->frame_len);
	req->api_key = SlReadInt16(&r);
	req->api_version = SlReadInt16(&r);
	req->correlation_id = SlReadInt32(&r);
	/* client_id stays a classic nullable string even in header v2 */
	client_id = SlReadString(&r, false, true);
	if (SlRequestHeaderVersion(req->api_key, req->api_version) >= 2)
		SlReadTaggedFields(&r);
	if (!SlReaderOk(&r))
	{
		ereport(LOG,
				(errmsg("streamlog broker: malformed request header from %s: %s",
						req->peer, r.error)));
		return false;
	}
	oldcxt = MemoryContextSwitchTo(req->context);
	req->client_id = client_id.len > 0 ? pnstrdup(client_id.data, client_id.len) : "";
	MemoryContextSwitchTo(oldcxt);
	req->header_len = r.pos;
	return true;
}

/* Does streamlog serve this API at this version? */
static bool
version_served(const SlHandler *h, const SlRequest *req)
{
	return h != NULL &&
		req->api_version >= h->min_version && req->api_version <= h->max_version;
}

bool
SlServerIsBatchable(const SlRequest *req)
{
	const SlHandler *h = SlHandlerFor(req->api_key);
	const char *why;

	/* A request that may not be served goes alone, to be refused */
	return version_served(h, req) && h->batchable &&
		SlSessionMayServe(req->session, &why);
}

void
SlWriteResponseHeader(SlRequest *req, SlWriter *out)
{
	SlWriteInt32(out, req->correlation_id);
	if (SlResponseHeaderVersion(req->api_key, req->api_version) >= 1)
		SlWriteUvarint(out, 0);	/* no tagged fields */
}

/* Give up on a request: log why and close its connection after it */
static void
request_abandon(SlRequest *req, const char *why)
{
	const SlApiInfo *api = SlApiLookup(req->api_key);

	ereport(LOG,
			(errmsg("streamlog broker: closing connection from %s (client \"%s\"): %s request v%d: %s",
					req->peer, req->client_id, api ? api->name : "unknown",
					req->api_version, why)));
	resetStringInfo(&req->response);
	req->response_nrefs = 0;
	req->response_ref_bytes = 0;
	req->send_response = false;
	req->close_after = true;
	req->state = SL_REQUEST_DONE;
}

/*
 * Answer req, whose handler failed with edata, with the Kafka error code of
 * its SQLSTATE in every error field of the response
 */
static void
answer_with_error(SlRequest *req, ErrorData *edata)
{
	int16		error = SlKafkaErrorForSqlstate(edata->sqlerrcode, req->api_key);
	SlReader	body;
	SlWriter	out;

	if (req->sasl_raw)
	{
		/* a raw SASL exchange has no way to say it failed */
		request_abandon(req, psprintf("SASL authentication failed: %s", edata->message));
		return;
	}
	SlRequestMetricsNoteError(req, error);
	ereport(LOG,
			(errmsg("streamlog broker: request failed, answered with %s: %s",
					SlKafkaErrorName(error), edata->message),
			 edata->detail ? errdetail_internal("%s", edata->detail) : 0));
	SlReaderInit(&body, req->frame + req->header_len, req->frame_len - req->header_len);
	resetStringInfo(&req->response);
	req->response_nrefs = 0;
	req->response_ref_bytes = 0;
	SlWriterInit(&out, &req->response);
	SlWriteResponseHeader(req, &out);
	if (!SlErrorResponseEncode(&body, req->api_key, req->api_version, error,
							   SlStrFromCString(edata->message), &out) || out.error)
		request_abandon(req, psprintf("internal error: %s", edata->message));
}

/*
 * Look again at a batchable request parked after its commit (see the
 * header comment): its work committed, so only its answer is pending.
 * What the look allocates goes with it; the handler's state stays.
 */
static void
recheck_parked(SlRequest *req, const SlHandler *h)
{
	MemoryContext look = AllocSetContextCreate(req->context, "streamlog request recheck",
											   ALLOCSET_SMALL_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(look);
	ErrorData  *edata = NULL;
	SlWriter	out;

	SlWaitSetClear(&req->waiting_on);
	resetStringInfo(&req->response);
	req->response_nrefs = 0;
	req->response_ref_bytes = 0;
	SlWriterInit(&out, &req->response);
	SlWriteResponseHeader(req, &out);
	req->state = SL_REQUEST_DONE;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	PG_TRY();
	{
		h->recheck(req, &out);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(look);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(req->attempt_context);
	if (edata != NULL)
	{
		req->state = SL_REQUEST_DONE;
		answer_with_error(req, edata);
	}
	else if (req->state == SL_REQUEST_DONE && out.error)
		request_abandon(req, psprintf("could not encode the response: %s", out.error));
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(look);
}

/* One request of a run, between its start and its answer */
typedef struct RequestRun
{
	SlRequest  *req;
	SlReader	body;
	SlWriter	out;
	bool		ok;				/* its body could be decoded */
	ErrorData  *error;			/* its own ERROR, in a batch */
	const char *refused;		/* why its session may not be served */
} RequestRun;

/*
 * Answer a request its client's quota does not let through (KIP-599) with
 * error in every topic of the response; false if its body is malformed
 */
static bool
answer_refused(RequestRun *run, int16 error)
{
	return SlErrorResponseEncode(&run->body, run->req->api_key, run->req->api_version,
								 error, SlStrFromCString("Throttling quota has been exceeded."),
								 &run->out) && run->out.error == NULL;
}

/*
 * Run h's handler for run as its session's role, unless h is served before
 * authentication, and within its client's quotas.  The user id is put back
 * after it; after an ERROR, the abort of the (sub)transaction puts it back.
 */
static void
handle_as_role(RequestRun *run, const SlHandler *h)
{
	Oid			save_userid;
	int			save_sec_context;
	Oid			role;
	int16		refused;

	if (h->before_auth)
	{
		run->ok = h->handle(run->req, &run->body, &run->out);
		return;
	}
	role = SlSessionRole(run->req, &run->refused);
	if (!OidIsValid(role))
	{
		run->ok = true;
		return;
	}
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(role, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	/* quotas are looked up for the role it runs as (GetUserId) */
	refused = SlQuotaBeforeRequest(run->req);
	if (refused != SL_ERR_NONE)
		run->ok = answer_refused(run, refused);
	else
		run->ok = h->handle(run->req, &run->body, &run->out);
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/* The batch member's part of a batch: its handler, in a subtransaction */
static void
handle_in_batch(void *arg)
{
	RequestRun *run = arg;

	handle_as_role(run, SlHandlerFor(run->req->api_key));
}

/* After the commit (or its failure): answer, or give up on the connection */
static void
finish_request(RequestRun *run, const SlHandler *h, ErrorData *commit_error)
{
	SlRequest  *req = run->req;

	if (run->refused)
	{
		request_abandon(req, run->refused);
		return;
	}
	if (h->batchable && run->ok)
	{
		h->respond(req, &run->out, run->error ? run->error : commit_error,
				   run->error != NULL);
		/* parked after its commit: look at once, then when woken */
		if (req->state == SL_REQUEST_PARKED && h->recheck != NULL)
		{
			recheck_parked(req, h);
			return;
		}
		if (!req->send_response)
			return;
	}
	else if (commit_error)
	{
		answer_with_error(req, commit_error);
		return;
	}
	if (!run->ok)
		request_abandon(req, psprintf("malformed request body: %s%s%s",
									  run->body.error ? run->body.error : "unknown",
									  run->body.where ? " in " : "",
									  run->body.where ? run->body.where : ""));
	else if (run->out.error)
		request_abandon(req, psprintf("could not encode the response: %s", run->out.error));
	else
	{
		req->response_refs = run->out.refs;
		req->response_nrefs = run->out.nrefs;
		req->response_ref_bytes = run->out.ref_bytes;
	}
}

/* Minor releases of 2025 and later turned the flag into bits */
#ifdef SYNC_STANDBY_DEFINED
#define SYNC_STANDBYS_DEFINED() \
	((WalSndCtl->sync_standbys_status & SYNC_STANDBY_DEFINED) != 0)
#else
#define SYNC_STANDBYS_DEFINED() (WalSndCtl->sync_standbys_defined)
#endif

/*
 * Exit, answering nothing, if the commit just made did not reach the
 * synchronous standbys that synchronous_commit waits for.  The wait is given
 * up when the postmaster dies (kill -9 of the primary), when the worker is
 * told to stop or its wait is canceled, and the commit then returns as if
 * it had been replicated: a backend's client gets no answer (PostgreSQL
 * stops its output), but a worker must see to that itself, or a failover to
 * the standby loses what was acknowledged (P5 with a standby).
 * commit_end_before is XactLastCommitEnd before the commit: a transaction
 * that wrote nothing leaves it as it was, and has nothing to wait for.
 */
static void
exit_unless_commit_replicated(XLogRecPtr commit_end_before)
{
	int			mode;
	bool		replicated;

	switch (synchronous_commit)
	{
		case SYNCHRONOUS_COMMIT_REMOTE_WRITE:
			mode = SYNC_REP_WAIT_WRITE;
			break;
		case SYNCHRONOUS_COMMIT_REMOTE_FLUSH:
			mode = SYNC_REP_WAIT_FLUSH;
			break;
		case SYNCHRONOUS_COMMIT_REMOTE_APPLY:
			mode = SYNC_REP_WAIT_APPLY;
			break;
		default:
			return;				/* no standby waited for */
	}
	if (max_wal_senders == 0 || XactLastCommitEnd == commit_end_before)
		return;

	LWLockAcquire(SyncRepLock, LW_SHARED);
	replicated = !SYNC_STANDBYS_DEFINED() ||
		WalSndCtl->lsn[mode] >= XactLastCommitEnd;
	LWLockRelease(SyncRepLock);
	if (replicated && !ProcDiePending)
		return;
	ereport(FATAL,
			(errcode(ERRCODE_ADMIN_SHUTDOWN),
			 errmsg("streamlog broker exits without answering: its commit at %X/%X may not have reached the synchronous standby",
					LSN_FORMAT_ARGS(XactLastCommitEnd)),
			 errdetail("The wait for synchronous replication was given up (the postmaster died, or the worker was stopped or canceled)."),
			 errhint("Clients retry; an idempotent producer's retry is stored once.")));
}

/*
 * Run n requests of handler h in one transaction with an error boundary:
 * the one place where requests meet transactions.  n is 1 unless h is
 * batchable; then each request runs in a subtransaction of its own.
 */
static void
run_requests(SlRequest **reqs, int n, const SlHandler *h)
{
	RequestRun *runs = palloc0(sizeof(RequestRun) * n);
	MemoryContext context = CurrentMemoryContext;
	ErrorData  *commit_error = NULL;
	XLogRecPtr	commit_end_before = XactLastCommitEnd;
	TimestampTz started = GetCurrentTimestamp();
	long		secs;
	int			usecs;

	Assert(n == 1 || h->batchable);
	for (int i = 0; i < n; i++)
	{
		SlRequest  *req = reqs[i];
		MemoryContext oldcxt = MemoryContextSwitchTo(req->context);

		/* Nothing of an earlier look at a parked request is needed any more */
		if (req->attempt_context == NULL)
			req->attempt_context = AllocSetContextCreate(req->context,
														 "streamlog request attempt",
														 ALLOCSET_DEFAULT_SIZES);
		else
			MemoryContextReset(req->attempt_context);
		MemoryContextSwitchTo(req->attempt_context);
		SlWaitSetClear(&req->waiting_on);

		runs[i].req = req;
		SlReaderInit(&runs[i].body, req->frame + req->header_len,
					 req->frame_len - req->header_len);
		resetStringInfo(&req->response);
		req->response_nrefs = 0;
		req->response_ref_bytes = 0;
		SlWriterInit(&runs[i].out, &req->response);
		/* Fetched records are sent from where the handler put them */
		SlWriterAllowRefs(&runs[i].out);
		if (!req->sasl_raw)
			SlWriteResponseHeader(req, &runs[i].out);
		req->state = SL_REQUEST_DONE;
		MemoryContextSwitchTo(oldcxt);
	}

	/* now() of the transaction: a worker has no statements to set it */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	PG_TRY();
	{
		for (int i = 0; i < n; i++)
		{
			RequestRun *run = &runs[i];

			MemoryContextSwitchTo(run->req->attempt_context);
			if (!h->batchable)
			{
				handle_as_role(run, h);
				continue;
			}
			/* Its own error context: the caller pushed none for a batch */
			{
				ErrorContextCallback callback;

				SlRequestErrorContextPush(run->req, &callback);
				run->error = SlRunInSubtransaction(handle_in_batch, run, true);
				if (run->error)
				{
					run->ok = true;
					run->req->log_topic = NULL;
					ereport(LOG,
							(errmsg("streamlog broker: request failed alone: %s",
									run->error->message)));
				}
				SlRequestErrorContextPop(&callback);
			}
		}
		MemoryContextSwitchTo(context);
		PopActiveSnapshot();
		CommitTransactionCommand();
		exit_unless_commit_replicated(commit_end_before);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(context);
		commit_error = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		if (h->batchable)
			ereport(LOG,
					(errmsg("streamlog broker: could not commit %d requests: %s",
							n, commit_error->message)));
	}
	PG_END_TRY();
	MemoryContextSwitchTo(context);

	for (int i = 0; i < n; i++)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(reqs[i]->attempt_context);

		finish_request(&runs[i], h, commit_error);
		MemoryContextSwitchTo(oldcxt);
	}
	/* the time of a batch is shared by its requests */
	TimestampDifference(started, GetCurrentTimestamp(), &secs, &usecs);
	for (int i = 0; i < n; i++)
		SlQuotaAfterRequest(reqs[i], ((int64) secs * 1000000 + usecs) / n);
	pfree(runs);
}

/* Handle req (see SlServerHandle), untimed */
static void
handle_request(SlRequest *req)
{
	const SlHandler *h = SlHandlerFor(req->api_key);
	MemoryContext oldcxt = MemoryContextSwitchTo(req->context);
	ErrorContextCallback callback;
	const char *why;

	SlRequestErrorContextPush(req, &callback);

	if (h != NULL && !h->before_auth && !SlSessionMayServe(req->session, &why))
		request_abandon(req, why);
	else if (h == NULL || req->api_version < h->min_version || req->api_version > h->max_version)
	{
		if (req->api_key == SL_API_API_VERSIONS)
		{
			SlWriter	out;

			resetStringInfo(&req->response);
			SlWriterInit(&out, &req->response);
			SlApiVersionsUnsupported(req, &out);
			req->state = SL_REQUEST_DONE;
		}
		else
			request_abandon(req, h == NULL ? "API not supported" : "version not supported");
	}
	else
		run_requests(&req, 1, h);
	SlRequestErrorContextPop(&callback);
	MemoryContextSwitchTo(oldcxt);
}

void
SlServerHandle(SlRequest *req)
{
	TimestampTz started = GetCurrentTimestamp();

	handle_request(req);
	SlRequestMetricsLooked(&req, 1, started);
}

void
SlServerRetryParked(SlRequest *req, bool deadline_passed)
{
	const SlHandler *h = SlHandlerFor(req->api_key);
	TimestampTz started = GetCurrentTimestamp();

	req->final_attempt = deadline_passed;
	if (h != NULL && h->batchable && h->recheck != NULL)
	{
		ErrorContextCallback callback;

		SlRequestErrorContextPush(req, &callback);
		recheck_parked(req, h);
		SlRequestErrorContextPop(&callback);
	}
	else
	{
		req->state = SL_REQUEST_NEW;
		handle_request(req);
	}
	SlRequestMetricsLooked(&req, 1, started);
}

void
SlServerHandleBatch(SlRequest **reqs, int n)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	SlRequest **same = palloc(sizeof(SlRequest *) * n);
	bool	   *taken = palloc0(sizeof(bool) * n);
	TimestampTz started;

	/* one transaction per API (Produce, OffsetCommit), in arrival order */
	for (int i = 0; i < n; i++)
	{
		int			m = 0;

		if (taken[i])
			continue;
		for (int j = i; j < n; j++)
		{
			if (!taken[j] && reqs[j]->api_key == reqs[i]->api_key)
			{
				same[m++] = reqs[j];
				taken[j] = true;
			}
		}
		started = GetCurrentTimestamp();
		run_requests(same, m, SlHandlerFor(reqs[i]->api_key));
		SlRequestMetricsLooked(same, m, started);
		MemoryContextSwitchTo(oldcxt);
	}
	pfree(same);
	pfree(taken);
}
