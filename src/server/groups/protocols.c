/*-------------------------------------------------------------------------
 * protocols.c
 *	  The protocols of a group's members: their stored lists, the choice of
 *	  the group's protocol, whether a joining member fits the group, and
 *	  the subscriptions of consumer groups.
 *
 * Each member keeps the protocols of its last JoinGroup, in its order of
 * preference, as one blob in the shared area (see slots.c).  A group's
 * protocol is chosen among those every member supports, by the members'
 * preferences, as Kafka does; for the "consumer" protocol type the
 * metadata is a ConsumerProtocolSubscription, decoded by the protocol
 * layer (protocol/consumer_protocol.c), whose topics tell whether a
 * restarted static member still subscribes to the same thing.
 *
 * IDENTIFICATION
 *	  src/server/groups/protocols.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "streamlog/protocol/consumer_protocol.h"
#include "streamlog/server/groups/protocols.h"

void
SlProtoIterInit(SlProtoIter *it, const SlProtoList *list)
{
	it->p = list->data;
	it->end = list->data + list->len;
}

bool
SlProtoIterNext(SlProtoIter *it, const char **name, const uint8 **meta, int32 *meta_len)
{
	int32		name_len;

	if (it->p == NULL || it->p >= it->end)
		return false;
	memcpy(&name_len, it->p, sizeof(int32));
	*name = (const char *) it->p + sizeof(int32);
	it->p += sizeof(int32) + name_len + 1;
	memcpy(meta_len, it->p, sizeof(int32));
	*meta = it->p + sizeof(int32);
	it->p += sizeof(int32) + *meta_len;
	return true;
}

/* Serialize a joining member's protocols (palloc'd) */
SlProtoList
SlProtoListFromArgs(const SlGroupJoinArgs *args)
{
	StringInfoData buf;
	SlProtoList	list;

	initStringInfo(&buf);
	for (int i = 0; i < args->nprotocols; i++)
	{
		int32		name_len = strlen(args->protocols[i].name);
		int32		meta_len = Max(args->protocols[i].metadata_len, 0);

		appendBinaryStringInfo(&buf, (char *) &name_len, sizeof(int32));
		appendBinaryStringInfo(&buf, args->protocols[i].name, name_len + 1);
		appendBinaryStringInfo(&buf, (char *) &meta_len, sizeof(int32));
		if (meta_len > 0)
			appendBinaryStringInfo(&buf, (const char *) args->protocols[i].metadata, meta_len);
	}
	list.data = (const uint8 *) buf.data;
	list.len = buf.len;
	list.n = args->nprotocols;
	return list;
}

SlProtoList
SlProtoListOf(const MemberSlot *m)
{
	SlProtoList	list;

	list.data = DsaPointerIsValid(m->protocols) ?
		(const uint8 *) SlGroupBlobGet(m->protocols) : NULL;
	list.len = list.data ? m->protocols_len : 0;
	list.n = list.data ? m->nprotocols : 0;
	return list;
}

bool
SlProtoListFind(const SlProtoList *list, const char *protocol, const uint8 **meta,
			  int32 *meta_len)
{
	SlProtoIter	it;
	const char *name;
	const uint8 *m;
	int32		len;

	SlProtoIterInit(&it, list);
	while (SlProtoIterNext(&it, &name, &m, &len))
	{
		if (strcmp(name, protocol) == 0)
		{
			if (meta)
				*meta = m;
			if (meta_len)
				*meta_len = len;
			return true;
		}
	}
	return false;
}

bool
SlProtoListEqual(const SlProtoList *a, const SlProtoList *b)
{
	return a->n == b->n && a->len == b->len &&
		(a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/*
 * The topics of a consumer-protocol subscription (see consumer_protocol.h),
 * copied; NIL if it cannot be read.
 */
List *
SlProtoSubscriptionTopics(const uint8 *meta, int32 len, bool *ok)
{
	SlConsumerSubscription sub;
	List	   *topics = NIL;

	*ok = false;
	if (len < 0 || SlConsumerSubscriptionDecode(meta, len, &sub) != NULL)
		return NIL;
	for (int32 i = 0; i < sub.ntopics; i++)
		topics = lappend(topics, pnstrdup(sub.topics[i].data, sub.topics[i].len));
	*ok = true;
	return topics;
}

static int
compare_c_strings(const ListCell *a, const ListCell *b)
{
	return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

/*
 * Does a member's new metadata for protocol subscribe to what the old one
 * did?  For the consumer protocol, the subscribed topics are compared
 * (owned partitions and user data change between incarnations of a
 * consumer); for other protocol types, the bytes.
 */
bool
SlProtoSameSubscription(const char *protocol_type, const uint8 *old_meta, int32 old_len,
				 const uint8 *new_meta, int32 new_len)
{
	if (strcmp(protocol_type, "consumer") == 0)
	{
		bool		old_ok;
		bool		new_ok;
		List	   *old_topics = SlProtoSubscriptionTopics(old_meta, old_len, &old_ok);
		List	   *new_topics = SlProtoSubscriptionTopics(new_meta, new_len, &new_ok);
		ListCell   *a;
		ListCell   *b;

		if (old_ok && new_ok)
		{
			if (list_length(old_topics) != list_length(new_topics))
				return false;
			list_sort(old_topics, compare_c_strings);
			list_sort(new_topics, compare_c_strings);
			forboth(a, old_topics, b, new_topics)
			{
				if (strcmp(lfirst(a), lfirst(b)) != 0)
					return false;
			}
			return true;
		}
	}
	return old_len == new_len && (old_len <= 0 || memcmp(old_meta, new_meta, old_len) == 0);
}

/*
 * The protocol for the next generation: among those every member supports,
 * the one most members prefer (each votes for the first of its list that
 * all support); ties go to the first member's order.
 */
const char *
SlGroupSelectProtocol(const GroupSlot *g)
{
	const MemberSlot *first = NULL;
	SlProtoList	first_list;
	SlProtoIter	it;
	const char *name;
	const uint8 *meta;
	int32		len;
	const char *best = NULL;
	int			best_votes = -1;

	for (int i = g->first; i >= 0 && first == NULL; i = sl_group_members[i].next)
		if (!sl_group_members[i].pending)
			first = &sl_group_members[i];
	if (first == NULL)
		return NULL;
	first_list = SlProtoListOf(first);
	SlProtoIterInit(&it, &first_list);
	while (SlProtoIterNext(&it, &name, &meta, &len))
	{
		bool		everyone = true;
		int			votes = 0;

		for (int i = g->first; i >= 0 && everyone; i = sl_group_members[i].next)
		{
			SlProtoList	l;

			if (sl_group_members[i].pending)
				continue;
			l = SlProtoListOf(&sl_group_members[i]);
			everyone = SlProtoListFind(&l, name, NULL, NULL);
		}
		if (!everyone)
			continue;
		/* Count the members whose first supported-by-all choice this is */
		for (int i = g->first; i >= 0; i = sl_group_members[i].next)
		{
			SlProtoList	l;
			SlProtoIter	mit;
			const char *mname;
			const uint8 *mmeta;
			int32		mlen;

			if (sl_group_members[i].pending)
				continue;
			l = SlProtoListOf(&sl_group_members[i]);
			SlProtoIterInit(&mit, &l);
			while (SlProtoIterNext(&mit, &mname, &mmeta, &mlen))
			{
				bool		all = true;

				for (int j = g->first; j >= 0 && all; j = sl_group_members[j].next)
				{
					SlProtoList	o;

					if (sl_group_members[j].pending)
						continue;
					o = SlProtoListOf(&sl_group_members[j]);
					all = SlProtoListFind(&o, mname, NULL, NULL);
				}
				if (all)
				{
					if (strcmp(mname, name) == 0)
						votes++;
					break;
				}
			}
		}
		if (votes > best_votes)
		{
			best = name;
			best_votes = votes;
		}
	}
	return best;
}

/*
 * Can a member with these protocols join the group?  The protocol type must
 * match, and one of its protocols must be supported by every other member.
 */
bool
SlGroupSupportsProtocols(const GroupSlot *g, const MemberSlot *self, const char *protocol_type,
				  const SlProtoList *list)
{
	SlProtoIter	it;
	const char *name;
	const uint8 *meta;
	int32		len;
	int			others = 0;

	for (int i = g->first; i >= 0; i = sl_group_members[i].next)
		if (!sl_group_members[i].pending && &sl_group_members[i] != self)
			others++;
	if (protocol_type[0] == '\0' || list->n == 0)
		return false;
	if (others == 0)
		return true;
	if (strcmp(protocol_type, g->protocol_type) != 0)
		return false;
	SlProtoIterInit(&it, list);
	while (SlProtoIterNext(&it, &name, &meta, &len))
	{
		bool		all = true;

		for (int i = g->first; i >= 0 && all; i = sl_group_members[i].next)
		{
			SlProtoList	o;

			if (sl_group_members[i].pending || &sl_group_members[i] == self)
				continue;
			o = SlProtoListOf(&sl_group_members[i]);
			all = SlProtoListFind(&o, name, NULL, NULL);
		}
		if (all)
			return true;
	}
	return false;
}
