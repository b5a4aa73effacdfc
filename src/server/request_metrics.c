/*
 * The Kafka requests as the metrics count them, see request_metrics.h.
 *
 * A request's life, as Kafka's RequestChannel times it: read (received_at),
 * queued until its handler first runs (queue time), in its handler (local
 * time, summed over every look at a parked request), waiting while parked
 * (remote time: a Fetch waiting for data, a JoinGroup for its group, an
 * acks=all Produce for its replicas), then its answer waiting for the
 * socket and written (send time).  All read from the clock the worker reads
 * anyway around each look, so counting costs a few clock reads a request.
 */
#include "postgres.h"

#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metrics/connections.h"
#include "streamlog/metrics/counters.h"
#include "streamlog/protocol/codec_base.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/protocol/generated/kmsg.h"
#include "streamlog/server/kafka_errors.h"
#include "streamlog/server/request_metrics.h"

/* Topics named in a slow request's log line at most */
#define SLOW_LOG_MAX_TOPICS 10

/* Microseconds from a to b, 0 if b is not after a */
static uint64
us_between(TimestampTz a, TimestampTz b)
{
	return (a != 0 && b > a) ? (uint64) (b - a) : 0;
}

void
SlRequestMetricsReceived(SlRequest *req, TimestampTz now)
{
	req->received_at = now;
	req->handled_at = 0;
	req->answered_at = 0;
	req->local_us = 0;
	req->error_code = 0;
	req->throttled_ms = 0;
	req->topics = NIL;
	SlConnActivitySetClientId(req->session->activity_slot, req->client_id);
}

/* Memory of the responses read back for their error codes, reset after each */
static MemoryContext error_scan_context = NULL;

static void
note_error_code(int16 error_code, void *arg)
{
	SlRequestMetricsNoteError((SlRequest *) arg, error_code);
}

/*
 * The error codes of req's answer, counted per API and code
 * (stat_api_errors): read back from the answer itself, through the
 * generated decoder, so that every API's are counted, whatever its handler
 * does.  Produce and Fetch count their partitions' errors as they answer
 * (and a Fetch answer may not be whole here: its records are sent from
 * elsewhere); an answer of a failed handler has its error noted already.
 */
static void
count_answer_errors(SlRequest *req)
{
	SlReader	body;
	size_t		header;
	MemoryContext oldcxt;

	if (!sl_track_metrics || !req->send_response || req->response_nrefs > 0 ||
		req->error_code != SL_ERR_NONE ||
		req->api_key == SL_API_PRODUCE || req->api_key == SL_API_FETCH ||
		SlApiLookup(req->api_key) == NULL)
		return;
	/* the header as SlWriteResponseHeader wrote it: no tagged fields */
	header = SlResponseHeaderVersion(req->api_key, req->api_version) >= 1 ? 5 : 4;
	if ((size_t) req->response.len <= header)
		return;
	if (error_scan_context == NULL)
		error_scan_context = AllocSetContextCreate(TopMemoryContext,
												   "streamlog answer errors",
												   ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(error_scan_context);
	SlReaderInit(&body, (const uint8 *) req->response.data + header,
				 (size_t) req->response.len - header);
	(void) SlResponseErrorCodes(&body, req->api_key, req->api_version, note_error_code, req);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(error_scan_context);
}

void
SlRequestMetricsLooked(SlRequest **reqs, int n, TimestampTz started)
{
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < n; i++)
	{
		SlRequest  *req = reqs[i];

		if (req->handled_at == 0)
			req->handled_at = started;
		req->local_us += us_between(started, now);
		if (req->state == SL_REQUEST_DONE && req->answered_at == 0)
		{
			req->answered_at = now;
			count_answer_errors(req);
		}
	}
}

void
SlRequestMetricsNoteError(SlRequest *req, int16 error)
{
	if (error == SL_ERR_NONE)
		return;
	/* the first is counted with the request (SlMetricsCountRequest) */
	if (req->error_code == SL_ERR_NONE)
		req->error_code = error;
	else
		SlMetricsCountError(req->api_key, error, 1);
}

void
SlRequestMetricsNoteTopic(SlRequest *req, const char *topic)
{
	ListCell   *lc;
	MemoryContext oldcxt;

	if (sl_log_min_request_duration < 0 || topic == NULL)
		return;
	if (list_length(req->topics) > SLOW_LOG_MAX_TOPICS)
		return;
	foreach(lc, req->topics)
		if (strcmp(lfirst(lc), topic) == 0)
			return;
	/* kept with the request: a parked one's looks reset their own memory */
	oldcxt = MemoryContextSwitchTo(req->context);
	req->topics = lappend(req->topics, pstrdup(topic));
	MemoryContextSwitchTo(oldcxt);
}

void
SlRequestMetricsNoteThrottle(SlRequest *req, int32 throttle_ms)
{
	if (throttle_ms <= 0)
		return;
	req->throttled_ms += throttle_ms;
	SlMetricsAdd(req->api_key == SL_API_PRODUCE ? SL_METRIC_THROTTLE_PRODUCE_MS :
				 req->api_key == SL_API_FETCH ? SL_METRIC_THROTTLE_FETCH_MS :
				 SL_METRIC_THROTTLE_REQUEST_MS, (uint64) throttle_ms);
}

static const char *
api_name(int16 api_key)
{
	const SlApiInfo *api = SlApiLookup(api_key);

	return api ? api->name : "Unknown";
}

static const char *
error_name(int16 error)
{
	const char *name = SlKafkaErrorName(error);

	return name ? name : "UNKNOWN";
}

/* One LOG line for a request slower than streamlog.log_min_request_duration */
static void
log_slow(SlRequest *req, const SlRequestOutcome *o)
{
	StringInfoData topics;
	ListCell   *lc;

	initStringInfo(&topics);
	foreach(lc, req->topics)
	{
		if (topics.len > 0)
			appendStringInfoString(&topics, ", ");
		if (foreach_current_index(lc) == SLOW_LOG_MAX_TOPICS)
		{
			appendStringInfoString(&topics, "...");
			break;
		}
		appendStringInfo(&topics, "\"%s\"", (const char *) lfirst(lc));
	}
	ereport(LOG,
			(errmsg("streamlog: Kafka request took %.3f ms: %s v%d from %s (client \"%s\")%s%s: "
					"queue %.3f ms, local %.3f ms, remote %.3f ms, send %.3f ms%s%s",
					o->time_us[SL_TIME_TOTAL] / 1000.0,
					api_name(req->api_key), req->api_version, req->peer, req->client_id,
					topics.len > 0 ? ", topics " : "", topics.data,
					o->time_us[SL_TIME_QUEUE] / 1000.0,
					o->time_us[SL_TIME_LOCAL] / 1000.0,
					o->time_us[SL_TIME_REMOTE] / 1000.0,
					o->time_us[SL_TIME_SEND] / 1000.0,
					o->error_code != 0 ? ", error " : "",
					o->error_code != 0 ? error_name(o->error_code) : ""),
			 errhidestmt(true), errhidecontext(true)));
	pfree(topics.data);
}

void
SlRequestMetricsFinish(SlRequest *req)
{
	SlRequestOutcome o;
	TimestampTz now;
	TimestampTz handled;
	TimestampTz answered;

	if (req->received_at == 0)
		return;
	if (!sl_track_metrics && sl_log_min_request_duration < 0)
		return;
	now = GetCurrentTimestamp();
	/* one never looked at, or never answered (its connection went) */
	handled = req->handled_at != 0 ? req->handled_at : now;
	answered = req->answered_at != 0 ? req->answered_at : now;

	memset(&o, 0, sizeof(o));
	o.api_key = req->api_key;
	o.api_version = req->api_version;
	o.error_code = req->error_code;
	o.throttle_ms = (uint64) Max(req->throttled_ms, 0);
	o.time_us[SL_TIME_TOTAL] = us_between(req->received_at, now);
	o.time_us[SL_TIME_QUEUE] = us_between(req->received_at, handled);
	o.time_us[SL_TIME_LOCAL] = (uint64) Max(req->local_us, 0);
	o.time_us[SL_TIME_REMOTE] = us_between(handled, answered) > o.time_us[SL_TIME_LOCAL] ?
		us_between(handled, answered) - o.time_us[SL_TIME_LOCAL] : 0;
	o.time_us[SL_TIME_SEND] = us_between(answered, now);
	SlMetricsCountRequest(&o);

	if (sl_log_min_request_duration >= 0 &&
		o.time_us[SL_TIME_TOTAL] >= (uint64) sl_log_min_request_duration * 1000)
	{
		SlMetricsAdd(SL_METRIC_SLOW_REQUESTS, 1);
		log_slow(req, &o);
	}
}

const char *
SlRequestMetricsActivity(const SlRequest *req)
{
	static char text[256];

	snprintf(text, sizeof(text), "%s v%d from %s@%s", api_name(req->api_key),
			 req->api_version, req->client_id ? req->client_id : "", req->peer);
	return text;
}
