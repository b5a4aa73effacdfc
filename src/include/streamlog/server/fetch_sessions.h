/*
 * Incremental fetch sessions (KIP-227).  A consumer of many partitions
 * sends its whole partition list once (a full fetch, session epoch 0); the
 * broker keeps it as a session and answers with the session's id.  Later
 * fetches (the same id, the next epoch) name only the partitions whose
 * fetch position changed, and the forgotten ones; the answer holds only
 * the partitions with something new to say (records, a moved high
 * watermark or log start, an error).
 *
 * Each broker worker keeps its own shard of the cache, in its memory, as
 * Kafka 3.7+ shards its FetchSessionCache: a session id names the worker
 * that made it, and a connection stays on one worker for its life.  A
 * client that reconnects and lands on another worker gets
 * FETCH_SESSION_ID_NOT_FOUND and starts again with a full fetch, which
 * every session-aware client does.  streamlog.fetch_session_cache_slots
 * (Kafka's max.incremental.fetch.session.cache.slots) is split evenly
 * over the workers; a full cache evicts as Kafka's does.
 */
#ifndef SL_FETCH_SESSIONS_H
#define SL_FETCH_SESSIONS_H

#include "streamlog/protocol/generated/kmsg.h"

/* Kafka's FetchMetadata: no session, and the epochs that start or end one */
#define SL_FETCH_SESSION_INVALID_ID		0
#define SL_FETCH_SESSION_INITIAL_EPOCH	0
#define SL_FETCH_SESSION_FINAL_EPOCH	(-1)

typedef enum SlFetchSessionKind
{
	SL_FETCH_SESSIONLESS,		/* answer everything, make no session */
	SL_FETCH_FULL,				/* answer everything, then make a session */
	SL_FETCH_INCREMENTAL,		/* the session's partitions, changes only */
	SL_FETCH_SESSION_ERROR		/* answer error, no partitions */
} SlFetchSessionKind;

/* What a Fetch request's session fields made of it */
typedef struct SlFetchSessionContext
{
	SlFetchSessionKind kind;
	int16		error;			/* SL_FETCH_SESSION_ERROR: which */
	int32		session_id;		/* SL_FETCH_INCREMENTAL: the session */
	bool		privileged;		/* a replica's fetch (Kafka's isFromFollower) */
	bool		uses_topic_ids; /* v13+ */
} SlFetchSessionContext;

/* This process is broker worker worker_index: its shard of the cache */
extern void SlFetchSessionsStart(int worker_index);

/*
 * On a Fetch request's first look, before it is served: reads its session
 * fields into ctx and, for an incremental fetch, applies its changes to the
 * session and rewrites request->topics into the session's whole partition
 * list (allocated in the current memory context), which the handler then
 * serves as if the client had sent it.  A full fetch naming a session
 * closes it.
 */
extern void SlFetchSessionBegin(SlFetchRequest *request, int16 version, bool privileged,
								SlFetchSessionContext *ctx);

/*
 * When the response is ready to encode (request and resp side by side,
 * topic by topic and partition by partition): a full fetch makes its
 * session (resp->session_id, 0 if the cache has no room); an incremental
 * one keeps in resp only the partitions the client must hear about and
 * remembers what it was told.
 */
extern void SlFetchSessionFinish(const SlFetchSessionContext *ctx, const SlFetchRequest *request,
								 SlFetchResponse *resp);

#endif							/* SL_FETCH_SESSIONS_H */
