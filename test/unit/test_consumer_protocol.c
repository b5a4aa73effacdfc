/*
 * Unit tests of the consumer-protocol decoding (src/protocol/consumer_protocol.c):
 * subscriptions of every version, and hostile input: truncated, oversized
 * lengths, null and negative counts, and seeded random mutations.
 */
#include "streamlog/protocol/codec_base.h"

#include <stdlib.h>

#include "streamlog/protocol/consumer_protocol.h"
#include "streamlog/protocol/wire.h"
#include "unit.h"

static const char *const some_topics[] = {"orders", "", "payments.eu", "t"};

/*
 * A subscription of the given version with the topics above, the fields of
 * later versions filled in; *topics_end is where the topics stop.
 */
static void
build_subscription(StringInfo buf, int16 version, int *topics_end)
{
	SlWriter	w;

	initStringInfo(buf);
	SlWriterInit(&w, buf);
	SlWriteInt16(&w, version);
	SlWriteArrayLen(&w, false, false, lengthof(some_topics));
	for (int i = 0; i < (int) lengthof(some_topics); i++)
		SlWriteString(&w, false, false, SlStrFromCString(some_topics[i]));
	*topics_end = buf->len;
	SlWriteBytes(&w, false, true, (SlBytes) {(const uint8 *) "user", 4});
	if (version >= 1)
	{
		SlWriteArrayLen(&w, false, false, 1);
		SlWriteString(&w, false, false, SlStrFromCString("orders"));
		SlWriteArrayLen(&w, false, false, 2);
		SlWriteInt32(&w, 0);
		SlWriteInt32(&w, 3);
	}
	if (version >= 2)
		SlWriteInt32(&w, 7);
	if (version >= 3)
		SlWriteString(&w, false, true, SlStrFromCString("rack-a"));
}

static bool
same_topics(const SlConsumerSubscription *sub)
{
	if (sub->ntopics != (int32) lengthof(some_topics))
		return false;
	for (int i = 0; i < sub->ntopics; i++)
		if (sub->topics[i].len != (int32) strlen(some_topics[i]) ||
			memcmp(sub->topics[i].data, some_topics[i], sub->topics[i].len) != 0)
			return false;
	return true;
}

/* Every version decodes to its topics; an unknown later version too */
static void
test_versions(void)
{
	for (int16 v = 0; v <= 5; v++)
	{
		StringInfoData buf;
		SlConsumerSubscription sub;
		int			end;

		build_subscription(&buf, v, &end);
		CHECK_NULL_ERR(SlConsumerSubscriptionDecode((const uint8 *) buf.data, buf.len, &sub));
		CHECK_EQ_INT(sub.version, v);
		CHECK_MSG(same_topics(&sub), "version %d", v);
		pfree(sub.topics);
		pfree(buf.data);
	}
}

/*
 * Any prefix that ends inside the topics is refused; any that holds them
 * whole is accepted (the later fields are not read).  Each prefix is copied
 * to a buffer of its exact size so that an overread shows under ASan.
 */
static void
test_truncated(void)
{
	StringInfoData buf;
	int			end;

	build_subscription(&buf, 3, &end);
	for (int cut = 0; cut <= buf.len; cut++)
	{
		uint8	   *copy = palloc(Max(cut, 1));
		SlConsumerSubscription sub;
		const char *err;

		memcpy(copy, buf.data, cut);
		err = SlConsumerSubscriptionDecode(copy, cut, &sub);
		if (cut < end)
		{
			CHECK_MSG(err != NULL, "prefix of %d bytes accepted", cut);
			CHECK(sub.ntopics == 0 && sub.topics == NULL);
		}
		else
		{
			CHECK_MSG(err == NULL && same_topics(&sub), "prefix of %d bytes: %s",
					  cut, err ? err : "wrong topics");
			if (sub.topics)
				pfree(sub.topics);
		}
		pfree(copy);
	}
	CHECK(SlConsumerSubscriptionDecode(NULL, 0, &(SlConsumerSubscription) {0}) != NULL);
	pfree(buf.data);
}

/* Counts and lengths that the input cannot hold, null and negative ones */
static void
test_hostile_lengths(void)
{
	SlConsumerSubscription sub;

	{
		/* no topics: valid */
		const uint8 b[] = {0, 1, 0, 0, 0, 0};

		CHECK_NULL_ERR(SlConsumerSubscriptionDecode(b, sizeof(b), &sub));
		CHECK_EQ_INT(sub.ntopics, 0);
		CHECK(sub.topics == NULL);
	}
	{
		/* null topic array (-1) */
		const uint8 b[] = {0, 0, 0xff, 0xff, 0xff, 0xff};

		CHECK(SlConsumerSubscriptionDecode(b, sizeof(b), &sub) != NULL);
	}
	{
		/* negative count */
		const uint8 b[] = {0, 0, 0xff, 0xff, 0xff, 0xfe, 0, 0};

		CHECK(SlConsumerSubscriptionDecode(b, sizeof(b), &sub) != NULL);
	}
	{
		/* INT32_MIN count */
		const uint8 b[] = {0, 0, 0x80, 0, 0, 0, 0, 0};

		CHECK(SlConsumerSubscriptionDecode(b, sizeof(b), &sub) != NULL);
	}
	{
		/* a count of a billion topics in a few bytes: refused before allocating */
		const uint8 b[] = {0, 0, 0x3b, 0x9a, 0xca, 0x00, 0, 1, 'a'};

		CHECK(SlConsumerSubscriptionDecode(b, sizeof(b), &sub) != NULL);
		CHECK(sub.topics == NULL);
	}
	{
		/* two topics announced, the second's length runs past the end */
		const uint8 b[] = {0, 0, 0, 0, 0, 2, 0, 1, 'a', 0x7f, 0xff, 'b'};

		CHECK(SlConsumerSubscriptionDecode(b, sizeof(b), &sub) != NULL);
	}
	{
		/* a null topic name (-1) */
		const uint8 b[] = {0, 0, 0, 0, 0, 1, 0xff, 0xff};

		CHECK(SlConsumerSubscriptionDecode(b, sizeof(b), &sub) != NULL);
	}
	{
		/* a negative topic name length */
		const uint8 b[] = {0, 0, 0, 0, 0, 1, 0x80, 0x00};

		CHECK(SlConsumerSubscriptionDecode(b, sizeof(b), &sub) != NULL);
	}
}

/*
 * Seeded mutations of valid subscriptions.  Whatever the bytes, a decode
 * that succeeds returns topics lying inside the input and no more of them
 * than the input can hold; a mutation after the topics changes nothing;
 * and decoding is deterministic.  The rounds run from unit_seed() (UNIT_SEED
 * in the environment replays them); a failure names its round's seed.
 */
#define MUTATION_ROUNDS 20000

static void
test_mutations(void)
{
	uint64_t	first_seed = unit_seed(0x5eed0001);

	for (int round = 0; round < MUTATION_ROUNDS; round++)
	{
		uint64_t	seed = first_seed + (uint64_t) round;
		uint64_t	rng = seed * 0x9e3779b97f4a7c15ULL + 1;
		StringInfoData buf;
		uint8	   *copy;
		int			end;
		int			len;
		int			lowest = INT32_MAX;
		SlConsumerSubscription sub;
		SlConsumerSubscription again;
		const char *err;
		bool		ok = true;

		build_subscription(&buf, (int16) (unit_rand(&rng) % 4), &end);
		len = buf.len;
		if (unit_rand(&rng) % 4 == 0)
			len = (int) (unit_rand(&rng) % (buf.len + 1));
		copy = palloc(Max(len, 1));
		memcpy(copy, buf.data, len);
		for (int k = 1 + (int) (unit_rand(&rng) % 4); k > 0 && len > 0; k--)
		{
			int			at = (int) (unit_rand(&rng) % len);

			copy[at] ^= (uint8) (1 + unit_rand(&rng) % 255);
			lowest = Min(lowest, at);
		}

		err = SlConsumerSubscriptionDecode(copy, len, &sub);
		if (err == NULL)
		{
			ok = ok && (size_t) sub.ntopics * 2 + SL_CONSUMER_SUBSCRIPTION_MIN_LEN <= (size_t) len;
			for (int i = 0; i < sub.ntopics; i++)
				ok = ok && sub.topics[i].len >= 0 &&
					(sub.topics[i].len == 0 ||
					 ((const uint8 *) sub.topics[i].data >= copy &&
					  (const uint8 *) sub.topics[i].data + sub.topics[i].len <= copy + len));
		}
		else
			ok = ok && sub.ntopics == 0 && sub.topics == NULL;
		if (lowest >= end && len >= end)
			ok = ok && err == NULL && same_topics(&sub);
		if (len < end && lowest >= len)
			ok = ok && err != NULL;
		/* decoded twice: the same outcome */
		ok = (SlConsumerSubscriptionDecode(copy, len, &again) == NULL) == (err == NULL) &&
			again.ntopics == sub.ntopics && ok;
		CHECK_MSG(ok, "property broken in round %d, seed 0x%" PRIx64 " (replay: UNIT_SEED=0x%" PRIx64 ")",
				  round, seed, first_seed);
		if (sub.topics)
			pfree(sub.topics);
		if (again.topics)
			pfree(again.topics);
		pfree(copy);
		pfree(buf.data);
	}
}

int
main(void)
{
	test_versions();
	test_truncated();
	test_hostile_lengths();
	test_mutations();
	return UNIT_DONE();
}
