/*-------------------------------------------------------------------------
 * protocols.h
 *	  Internal to the group coordinator (src/server/groups/): the protocols
 *	  a member supports, as stored in its slot, and what the group makes of
 *	  them (the protocol chosen, whether a member fits, its subscription).
 *
 * IDENTIFICATION
 *	  src/include/streamlog/server/groups/protocols.h
 *-------------------------------------------------------------------------
 */
#ifndef SL_GROUP_PROTOCOLS_H
#define SL_GROUP_PROTOCOLS_H

#include "postgres.h"

#include "nodes/pg_list.h"

#include "streamlog/server/groups/slots.h"

/*
 * A member's protocols, serialized from JoinGroup in its order of
 * preference: (int32 name length, name, NUL, int32 metadata length,
 * metadata)*.  Stored per member as a blob.
 */
typedef struct SlProtoList
{
	const uint8 *data;
	int32		len;
	int32		n;
} SlProtoList;

typedef struct SlProtoIter
{
	const uint8 *p;
	const uint8 *end;
} SlProtoIter;

extern void SlProtoIterInit(SlProtoIter *it, const SlProtoList *list);
extern bool SlProtoIterNext(SlProtoIter *it, const char **name,
							const uint8 **meta, int32 *meta_len);
extern SlProtoList SlProtoListFromArgs(const SlGroupJoinArgs *args);
extern SlProtoList SlProtoListOf(const MemberSlot *m);
extern bool SlProtoListFind(const SlProtoList *list, const char *protocol,
							const uint8 **meta, int32 *meta_len);
extern bool SlProtoListEqual(const SlProtoList *a, const SlProtoList *b);

/* Subscriptions of the "consumer" protocol type */
extern List *SlProtoSubscriptionTopics(const uint8 *meta, int32 len, bool *ok);
extern bool SlProtoSameSubscription(const char *protocol_type,
									const uint8 *old_meta, int32 old_len,
									const uint8 *new_meta, int32 new_len);

/* The group's choice of protocol, and whether a joining member fits it */
extern const char *SlGroupSelectProtocol(const GroupSlot *g);
extern bool SlGroupSupportsProtocols(const GroupSlot *g, const MemberSlot *self,
									 const char *protocol_type,
									 const SlProtoList *list);

#endif							/* SL_GROUP_PROTOCOLS_H */
