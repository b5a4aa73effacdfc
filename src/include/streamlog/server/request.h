/*
 * One Kafka request as the broker sees it, from the frame read off a socket
 * to the response bytes written back.  The connection layer
 * (bgworkers/conn.c) owns the queue of requests; the server layer
 * (src/server/) fills in the response.  Neither side knows the other's
 * internals: no sockets here, no decoding there.
 */
#ifndef SL_REQUEST_H
#define SL_REQUEST_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

#include "streamlog/protocol/wire.h"
#include "streamlog/server/session.h"
#include "streamlog/storage/wakeups.h"

typedef enum SlRequestState
{
	SL_REQUEST_NEW,				/* read, not yet handled */
	SL_REQUEST_PARKED,			/* waiting for data or a deadline (Fetch) */
	SL_REQUEST_DONE				/* response ready (or none is due) */
} SlRequestState;

typedef struct SlRequest
{
	struct SlRequest *next;		/* in its connection's queue */
	MemoryContext context;		/* everything of this request */

	/*
	 * What one attempt at handling it allocates (the response's pieces
	 * included), reset when a parked request is looked at again, so that
	 * a request parked for long does not grow with every look.
	 */
	MemoryContext attempt_context;

	/* the frame, without its size prefix */
	const uint8 *frame;
	size_t		frame_len;

	/* from the request header */
	int16		api_key;
	int16		api_version;
	int32		correlation_id;
	const char *client_id;		/* NUL-terminated copy, "" if null */
	size_t		header_len;		/* body starts at frame + header_len */

	SlRequestState state;
	bool		send_response;	/* false for Produce with acks=0 */
	StringInfoData response;	/* header + body, without size prefix */
	/* records fields the response leaves in place, to be sent from there */
	SlWriterRef *response_refs;
	int			response_nrefs;
	size_t		response_ref_bytes;

	/* a parked request: when to stop waiting; set on the last look */
	TimestampTz deadline;
	bool		final_attempt;
	/* what it waits on (partitions, groups); refilled by each attempt */
	SlWaitSet	waiting_on;
	/*
	 * What its handler keeps: a parked Fetch its decoded request, between
	 * attempts (in context); a batchable handler its work, for its response
	 */
	void	   *handler_state;

	/*
	 * The frame is a raw SASL token (after SaslHandshake v0), not a Kafka
	 * request: no header, and answered with a raw token, without one
	 */
	bool		sasl_raw;

	/*
	 * Bytes of response the worker has room for (the rest of
	 * streamlog.max_unsent_bytes_per_worker), set before each attempt; a
	 * Fetch returns no more records than this, but its first batch whole
	 * (KIP-74).  -1: no bound but the handler's own.
	 */
	int64		response_room;

	/*
	 * Set by the server layer: how long its client is over a quota; the
	 * answer says so (throttle_time_ms) and the connection is then muted
	 * for that long (KIP-219).  quota_user: the user its quotas are
	 * looked up for, set with it.
	 */
	int32		throttle_ms;
	const char *quota_user;

	/* set by the server layer: close the connection after this one */
	bool		close_after;
	const char *peer;			/* for log lines */
	SlSession  *session;		/* of its connection, which outlives it */

	/* the partition being worked on, for log lines; NULL / -1 if none */
	const char *log_topic;
	int32		log_partition;

	/*
	 * For the request metrics and the slow request log
	 * (server/request_metrics.h): when its frame was read, when its handler
	 * first ran and when its answer was ready; how long its handlers ran
	 * over all its looks; the first error it answered with; the topics it
	 * worked on (only while streamlog.log_min_request_duration is on)
	 */
	TimestampTz received_at;
	TimestampTz handled_at;
	TimestampTz answered_at;
	int64		local_us;
	int16		error_code;
	int32		throttled_ms;	/* what its answer told the client to wait */
	List	   *topics;
} SlRequest;

/*
 * req will wait on key if it parks: say so before looking at what key
 * stands for (a partition's high watermark, a group's state), so that a
 * change after the look wakes it.
 */
extern void SlRequestWaitOn(SlRequest *req, SlWaitKey key);

#endif							/* SL_REQUEST_H */
