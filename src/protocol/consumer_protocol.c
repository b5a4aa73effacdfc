/*-------------------------------------------------------------------------
 * consumer_protocol.c
 *	  Decoding of ConsumerProtocolSubscription, the JoinGroup metadata of
 *	  consumer groups.
 *
 * Only the version and the topics are read.  Every version of the message
 * (0 to 3 in Kafka 3.9) starts with them and later versions only append
 * fields, so the topics of a version this code has never seen are still
 * where version 0 put them; that is why the version is not checked, and why
 * the fields after the topics are not read: they are what changes between
 * two incarnations of the same consumer (owned partitions, user data,
 * generation), and the coordinator compares subscriptions by topics.
 * Decoding them strictly would turn a consumer whose client pads or
 * extends them into one whose subscription "cannot be read", which the
 * coordinator then compares byte for byte.
 *
 * The generated codecs (scripts/kafkagen.py) cover request and response
 * messages only; this embedded message is small and stable enough not to
 * teach the generator "data" schemas for it.
 *
 * IDENTIFICATION
 *	  src/protocol/consumer_protocol.c
 *-------------------------------------------------------------------------
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/protocol/consumer_protocol.h"

const char *
SlConsumerSubscriptionDecode(const uint8 *data, size_t len,
							 SlConsumerSubscription *sub)
{
	SlReader	r;
	SlStr	   *topics;
	int32		n;

	memset(sub, 0, sizeof(*sub));
	if (data == NULL || len < SL_CONSUMER_SUBSCRIPTION_MIN_LEN)
		return "consumer subscription too short";
	SlReaderInit(&r, data, len);
	sub->version = SlReadInt16(&r);
	/* A topic name is at least its int16 length */
	topics = SlReadArray(&r, false, false, sizeof(int16), sizeof(SlStr), &n);
	for (int32 i = 0; i < n && SlReaderOk(&r); i++)
		topics[i] = SlReadString(&r, false, false);
	if (!SlReaderOk(&r))
	{
		if (topics)
			pfree(topics);
		memset(sub, 0, sizeof(*sub));
		return r.error;
	}
	sub->ntopics = n;
	sub->topics = topics;
	return NULL;
}
