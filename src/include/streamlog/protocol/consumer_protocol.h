/*-------------------------------------------------------------------------
 * consumer_protocol.h
 *	  Decoding of the "consumer" protocol type's embedded messages: the
 *	  ConsumerProtocolSubscription a consumer puts in its JoinGroup metadata.
 *
 * JoinGroup carries each protocol's metadata as opaque bytes; for groups of
 * protocol type "consumer" those bytes are a ConsumerProtocolSubscription
 * (int16 version, then the message in classic encoding).  The coordinator
 * reads them to tell whether a restarted static member still subscribes to
 * the same topics and to answer OffsetDelete; the bytes come from the
 * network, so they are decoded here, with the other codecs, frontend-safe
 * and covered by unit tests.
 *
 * IDENTIFICATION
 *	  src/include/streamlog/protocol/consumer_protocol.h
 *-------------------------------------------------------------------------
 */
#ifndef SL_CONSUMER_PROTOCOL_H
#define SL_CONSUMER_PROTOCOL_H

#include "streamlog/protocol/wire.h"

/* The least a subscription can be: int16 version, int32 topic count */
#define SL_CONSUMER_SUBSCRIPTION_MIN_LEN 6

typedef struct SlConsumerSubscription
{
	int16		version;
	int32		ntopics;
	SlStr	   *topics;			/* views into the input, in wire order;
								 * palloc'd array, NULL if ntopics is 0 */
} SlConsumerSubscription;

/*
 * Decode the version and the subscribed topics of a subscription of any
 * version.  Returns NULL, or a static message saying why the bytes are not
 * one (*sub is then zeroed).  The fields after the topics (user data,
 * owned partitions, generation, rack) are not read, see the .c file.
 */
extern const char *SlConsumerSubscriptionDecode(const uint8 *data, size_t len,
												SlConsumerSubscription *sub);

#endif							/* SL_CONSUMER_PROTOCOL_H */
