/*
 * Fuzz target: ConsumerProtocolSubscription decoding
 * (src/protocol/consumer_protocol.c), the JoinGroup metadata of consumer
 * groups, which comes from the network.
 *
 * The input is decoded from an exactly sized copy.  When it is accepted,
 * every topic must lie inside the input and the count must fit in it; the
 * topics encoded again after the same version must decode to the same
 * topics; and any bytes appended must not change the outcome (the fields
 * after the topics are not read).  When it is refused, nothing is returned.
 */
#include "fuzz_common.h"

#include "streamlog/protocol/consumer_protocol.h"
#include "streamlog/protocol/wire.h"

FUZZ_COMMON_INITIALIZE()

static void
check_same(const SlConsumerSubscription *a, const SlConsumerSubscription *b)
{
	FUZZ_CHECK(a->version == b->version);
	FUZZ_CHECK(a->ntopics == b->ntopics);
	for (int32 i = 0; i < a->ntopics; i++)
	{
		FUZZ_CHECK(a->topics[i].len == b->topics[i].len);
		FUZZ_CHECK(a->topics[i].len == 0 ||
				   memcmp(a->topics[i].data, b->topics[i].data, a->topics[i].len) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8	   *copy = fuzz_copy(data, size);
	uint8	   *longer;
	SlConsumerSubscription sub;
	SlConsumerSubscription again;
	StringInfoData buf;
	SlWriter	w;
	const char *err;

	err = SlConsumerSubscriptionDecode(copy, size, &sub);
	FUZZ_EXPECT(err == NULL, err);
	if (err != NULL)
	{
		FUZZ_CHECK(sub.ntopics == 0 && sub.topics == NULL);
		free(copy);
		return 0;
	}
	FUZZ_CHECK(sub.ntopics >= 0);
	FUZZ_CHECK((size_t) sub.ntopics * 2 + SL_CONSUMER_SUBSCRIPTION_MIN_LEN <= size);
	FUZZ_CHECK(sub.ntopics == 0 || sub.topics != NULL);
	for (int32 i = 0; i < sub.ntopics; i++)
	{
		FUZZ_CHECK(sub.topics[i].len >= 0);
		FUZZ_CHECK(fuzz_within((const uint8 *) sub.topics[i].data, sub.topics[i].len,
							   copy, copy + size));
		fuzz_touch(sub.topics[i].data, sub.topics[i].len, 0);
	}

	/* the topics encoded again decode to themselves */
	initStringInfo(&buf);
	SlWriterInit(&w, &buf);
	SlWriteInt16(&w, sub.version);
	SlWriteArrayLen(&w, false, false, sub.ntopics);
	for (int32 i = 0; i < sub.ntopics; i++)
		SlWriteString(&w, false, false, sub.topics[i]);
	FUZZ_CHECK(w.error == NULL);
	FUZZ_CHECK(SlConsumerSubscriptionDecode((const uint8 *) buf.data, buf.len, &again) == NULL);
	check_same(&sub, &again);
	if (again.topics)
		pfree(again.topics);
	pfree(buf.data);

	/* trailing bytes are not read */
	longer = malloc(size + 3);
	FUZZ_CHECK(longer != NULL);
	memcpy(longer, copy, size);
	memset(longer + size, 0xff, 3);
	FUZZ_CHECK(SlConsumerSubscriptionDecode(longer, size + 3, &again) == NULL);
	check_same(&sub, &again);
	if (again.topics)
		pfree(again.topics);
	free(longer);

	if (sub.topics)
		pfree(sub.topics);
	free(copy);
	return 0;
}
