/*
 * Unit tests of the generated Kafka message codecs (src/protocol/generated):
 *
 * - every message at every valid version, filled with pseudo-random values,
 *   survives encode -> decode -> encode with identical bytes;
 * - every strict prefix of each encoding is refused;
 * - randomly mutated encodings never crash the decoder, and whatever it
 *   accepts re-encodes to a stable form;
 * - byte-exact frames written by hand from the protocol guide;
 * - the API table, header versions and error codes.
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/protocol/generated/kmsg_fill.h"
#include "streamlog/protocol/records.h"
#include "unit.h"

#define SEEDS_PER_VERSION 8
#define MUTATIONS_PER_VERSION 40

/* Added to every message's seed; set by main() (UNIT_SEED reproduces a run) */
static uint64 kmsg_seed;

static const char *
hex(const uint8 *data, int len)
{
	static char out[8192];
	int			i;

	out[0] = '\0';
	for (i = 0; i < len && 2 * i + 2 < (int) sizeof(out); i++)
		snprintf(out + 2 * i, sizeof(out) - 2 * i, "%02x", data[i]);
	return out;
}

#define CHECK_HEX(buf, want) \
	do { \
		const char *got_ = hex((const uint8 *) (buf)->data, (buf)->len); \
		CHECK_MSG(strcmp(got_, (want)) == 0, "\n got  %s\n want %s", got_, (want)); \
	} while (0)

/* Encode m at version into a fresh buffer; returns the writer's error */
static const char *
encode(const KgMessage *m, int16 version, const void *msg, StringInfo out)
{
	SlWriter	w;

	initStringInfo(out);
	SlWriterInit(&w, out);
	m->encode(&w, version, msg);
	return w.error;
}

/* Decode len bytes at data; the result is palloc'd, release with m->release */
static bool
decode(const KgMessage *m, int16 version, const uint8 *data, int len,
	   void **msg, SlReader *r)
{
	*msg = palloc0(m->size);
	SlReaderInit(r, data, len);
	return m->decode(r, version, *msg);
}

static void
discard(const KgMessage *m, void *msg)
{
	m->release(msg);
	pfree(msg);
}

/* Every strict prefix of an encoding must be refused */
static int
truncations_accepted(const KgMessage *m, int16 version, const StringInfo enc)
{
	int			accepted = 0;

	for (int cut = 0; cut < enc->len; cut++)
	{
		uint8	   *copy = palloc(cut + 1);
		void	   *msg;
		SlReader	r;

		memcpy(copy, enc->data, cut);
		if (decode(m, version, copy, cut, &msg, &r) || SlReaderOk(&r))
			accepted++;
		if (r.pos > (size_t) cut)
			accepted++;
		discard(m, msg);
		pfree(copy);
	}
	return accepted;
}

/*
 * Change a few bytes (or cut the end) of an encoding and decode it.  What
 * decodes must re-encode without complaint to a form that is stable.
 * Returns false if that does not hold.
 */
static bool
mutate_once(const KgMessage *m, int16 version, const StringInfo enc,
			uint64 *rng)
{
	int			len = enc->len;
	uint8	   *copy = palloc(len + 1);
	int			nchanges = 1 + (int) (unit_rand(rng) % 4);
	void	   *msg;
	SlReader	r;
	bool		stable = true;

	memcpy(copy, enc->data, len);
	for (int i = 0; i < nchanges && len > 0; i++)
	{
		int			at = (int) (unit_rand(rng) % len);

		switch (unit_rand(rng) % 4)
		{
			case 0:
				copy[at] = (uint8) unit_rand(rng);
				break;
			case 1:
				copy[at] ^= (uint8) (1 << (unit_rand(rng) % 8));
				break;
			case 2:
				copy[at] = (unit_rand(rng) & 1) ? 0xff : 0x00;
				break;
			default:
				len = at;		/* truncate */
				break;
		}
	}

	if (decode(m, version, copy, len, &msg, &r))
	{
		StringInfoData e1;
		StringInfoData e2;
		void	   *again;
		SlReader	r2;

		if (encode(m, version, msg, &e1) != NULL)
			stable = false;
		else if (!decode(m, version, (uint8 *) e1.data, e1.len, &again, &r2))
		{
			stable = false;
			discard(m, again);
		}
		else
		{
			if (encode(m, version, again, &e2) != NULL ||
				e1.len != e2.len || memcmp(e1.data, e2.data, e1.len) != 0)
				stable = false;
			pfree(e2.data);
			discard(m, again);
		}
		pfree(e1.data);
	}
	discard(m, msg);
	pfree(copy);
	return stable;
}

static void
test_roundtrip_all(void)
{
	int			nmessages = lengthof(kg_messages);
	int			cases = 0;
	int			mutations = 0;

	for (int mi = 0; mi < nmessages; mi++)
	{
		const KgMessage *m = &kg_messages[mi];

		for (int16 v = m->min_version; v <= m->max_version; v++)
		{
			int			mismatches = 0;
			int			truncated = 0;
			int			unstable = 0;

			for (int seed = 1; seed <= SEEDS_PER_VERSION; seed++)
			{
				uint64		rng = 0x9e3779b97f4a7c15ULL * (uint64) (mi * 1000 + v * 10 + seed) + kmsg_seed;
				void	   *msg = palloc0(m->size);
				void	   *decoded;
				StringInfoData e1;
				StringInfoData e2;
				SlReader	r;
				const char *err;

				m->fill(msg, v, &rng);
				err = encode(m, v, msg, &e1);
				CHECK_MSG(err == NULL, "%s v%d: encode: %s", m->name, v, err);

				if (!decode(m, v, (uint8 *) e1.data, e1.len, &decoded, &r))
				{
					CHECK_MSG(false, "%s v%d: decode: %s in %s at %zu of %d",
							  m->name, v, r.error, r.where ? r.where : "?",
							  r.pos, e1.len);
					discard(m, decoded);
					discard(m, msg);
					pfree(e1.data);
					continue;
				}
				CHECK_MSG(SlReaderRemaining(&r) == 0, "%s v%d: %zu bytes left",
						  m->name, v, SlReaderRemaining(&r));
				err = encode(m, v, decoded, &e2);
				CHECK_MSG(err == NULL, "%s v%d: re-encode: %s", m->name, v, err);
				if (e1.len != e2.len || memcmp(e1.data, e2.data, e1.len) != 0)
					mismatches++;

				truncated += truncations_accepted(m, v, &e1);

				for (int k = 0; k < MUTATIONS_PER_VERSION / SEEDS_PER_VERSION; k++)
				{
					if (!mutate_once(m, v, &e1, &rng))
						unstable++;
					mutations++;
				}

				cases++;
				discard(m, decoded);
				discard(m, msg);
				pfree(e1.data);
				pfree(e2.data);
			}
			CHECK_MSG(mismatches == 0, "%s v%d: %d re-encodings differ",
					  m->name, v, mismatches);
			CHECK_MSG(truncated == 0, "%s v%d: %d truncations accepted",
					  m->name, v, truncated);
			CHECK_MSG(unstable == 0, "%s v%d: %d mutated inputs not stable",
					  m->name, v, unstable);
		}
	}
	/* 104 messages, all their versions */
	CHECK(nmessages == 2 + 2 * 51);
	CHECK(cases > 2000);
	CHECK(mutations > 10000);
}

/*
 * Frame a request: int32 size, request header (version chosen from the
 * API table), then the body written by the caller between begin and end.
 */
static size_t
frame_begin(SlWriter *w, int16 api_key, int16 version, int32 correlation_id,
			const char *client_id)
{
	SlRequestHeader h;
	size_t		pos = SlWriteLengthBegin(w);

	SlRequestHeaderInit(&h);
	h.request_api_key = api_key;
	h.request_api_version = version;
	h.correlation_id = correlation_id;
	h.client_id = SlStrFromCString(client_id);
	SlRequestHeaderEncode(w, SlRequestHeaderVersion(api_key, version), &h);
	return pos;
}

/* Read a request frame's header; the reader is left at the body */
static void
frame_read(SlReader *r, const StringInfo buf, SlRequestHeader *h)
{
	SlReaderInit(r, (const uint8 *) buf->data, buf->len);
	CHECK_EQ_INT(SlReadInt32(r), buf->len - 4);
	/* the key and version come first in every header version */
	CHECK(buf->len >= 8);
	CHECK(SlRequestHeaderDecode(r, SlRequestHeaderVersion(SlLoadInt16((uint8 *) buf->data + 4),
														  SlLoadInt16((uint8 *) buf->data + 6)), h));
}

static void
test_golden_api_versions_v0(void)
{
	StringInfoData buf;
	SlWriter	w;
	SlApiVersionsRequest req;
	SlRequestHeader h;
	SlReader	r;
	size_t		pos;

	initStringInfo(&buf);
	SlWriterInit(&w, &buf);
	pos = frame_begin(&w, SL_API_API_VERSIONS, 0, 7, "kcat");
	SlApiVersionsRequestInit(&req);
	SlApiVersionsRequestEncode(&w, 0, &req);
	SlWriteLengthEnd(&w, pos);
	CHECK(w.error == NULL);
	/* size 14 | key 18 | version 0 | correlation 7 | client id "kcat" */
	CHECK_HEX(&buf, "0000000e" "0012" "0000" "00000007" "0004" "6b636174");

	frame_read(&r, &buf, &h);
	CHECK_EQ_INT(h.request_api_key, 18);
	CHECK_EQ_INT(h.request_api_version, 0);
	CHECK_EQ_INT(h.correlation_id, 7);
	CHECK(SlStrEqualCString(h.client_id, "kcat"));
	CHECK(SlApiVersionsRequestDecode(&r, 0, &req));
	CHECK_EQ_INT(SlReaderRemaining(&r), 0);
	/* fields of later versions keep their defaults */
	CHECK(req.client_software_name.len == 0);
	pfree(buf.data);
}

static void
test_golden_api_versions_v3(void)
{
	StringInfoData buf;
	SlWriter	w;
	SlApiVersionsRequest req;
	SlRequestHeader h;
	SlReader	r;
	size_t		pos;
	const char *want =
		"00000024"				/* size 36 */
		"0012" "0003" "00000001"	/* key 18, v3, correlation 1 */
		"0007" "72646b61666b61" /* client id "rdkafka", int16 length */
		"00"					/* header tagged fields */
		"0b" "6c696272646b61666b61"	/* compact "librdkafka" */
		"06" "322e302e32"		/* compact "2.0.2" */
		"00";					/* body tagged fields */

	initStringInfo(&buf);
	SlWriterInit(&w, &buf);
	pos = frame_begin(&w, SL_API_API_VERSIONS, 3, 1, "rdkafka");
	SlApiVersionsRequestInit(&req);
	req.client_software_name = SlStrFromCString("librdkafka");
	req.client_software_version = SlStrFromCString("2.0.2");
	SlApiVersionsRequestEncode(&w, 3, &req);
	SlWriteLengthEnd(&w, pos);
	CHECK(w.error == NULL);
	CHECK_HEX(&buf, want);

	frame_read(&r, &buf, &h);
	CHECK_EQ_INT(h.request_api_version, 3);
	CHECK(SlStrEqualCString(h.client_id, "rdkafka"));
	CHECK(SlApiVersionsRequestDecode(&r, 3, &req));
	CHECK_EQ_INT(SlReaderRemaining(&r), 0);
	CHECK(SlStrEqualCString(req.client_software_name, "librdkafka"));
	CHECK(SlStrEqualCString(req.client_software_version, "2.0.2"));

	/* unknown tags in the header and the body are skipped */
	{
		const uint8 tagged[] = {
			0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02,
			0xff, 0xff,			/* null client id */
			0x01, 0x07, 0x02, 0xaa, 0xbb,	/* tag 7, 2 bytes */
			0x02, 'j', 0x02, '1',
			0x02, 0x00, 0x00, 0x21, 0x03, 0x01, 0x02, 0x03
		};

		SlReaderInit(&r, tagged, sizeof(tagged));
		CHECK(SlRequestHeaderDecode(&r, 2, &h));
		CHECK(SlStrIsNull(h.client_id));
		CHECK_EQ_INT(h.correlation_id, 2);
		CHECK(SlApiVersionsRequestDecode(&r, 3, &req));
		CHECK(SlStrEqualCString(req.client_software_name, "j"));
		CHECK(SlStrEqualCString(req.client_software_version, "1"));
		CHECK_EQ_INT(SlReaderRemaining(&r), 0);
	}
	pfree(buf.data);
}

static void
test_golden_metadata_v1(void)
{
	StringInfoData buf;
	SlWriter	w;
	SlMetadataRequest req;
	SlMetadataRequestMetadataRequestTopic topic;
	SlRequestHeader h;
	SlReader	r;
	size_t		pos;
	const char *want =
		"00000018"				/* size 24 */
		"0003" "0001" "00000005" "0002" "6b70"	/* Metadata v1, corr 5, "kp" */
		"00000001"				/* one topic */
		"0006" "6f7264657273";	/* "orders" */

	initStringInfo(&buf);
	SlWriterInit(&w, &buf);
	pos = frame_begin(&w, SL_API_METADATA, 1, 5, "kp");
	SlMetadataRequestInit(&req);
	SlMetadataRequestMetadataRequestTopicInit(&topic);
	topic.name = SlStrFromCString("orders");
	req.topics.n = 1;
	req.topics.items = &topic;
	SlMetadataRequestEncode(&w, 1, &req);
	SlWriteLengthEnd(&w, pos);
	CHECK(w.error == NULL);
	CHECK_HEX(&buf, want);

	frame_read(&r, &buf, &h);
	CHECK(SlMetadataRequestDecode(&r, 1, &req));
	CHECK_EQ_INT(SlReaderRemaining(&r), 0);
	CHECK_EQ_INT(req.topics.n, 1);
	CHECK(SlStrEqualCString(req.topics.items[0].name, "orders"));
	/* v4+ field: default true */
	CHECK(req.allow_auto_topic_creation == true);

	/* v1: a null array asks for all topics */
	{
		const uint8 all[] = {0xff, 0xff, 0xff, 0xff};

		SlReaderInit(&r, all, sizeof(all));
		CHECK(SlMetadataRequestDecode(&r, 1, &req));
		CHECK_EQ_INT(req.topics.n, -1);
		/* v0 has no null: the same bytes are malformed */
		SlReaderInit(&r, all, sizeof(all));
		CHECK(!SlMetadataRequestDecode(&r, 0, &req));
	}
	pfree(buf.data);
}

static void
test_golden_produce_v3(void)
{
	SlBatchBuilder b;
	StringInfoData batch;
	StringInfoData buf;
	StringInfoData want;
	SlWriter	w;
	SlProduceRequest req;
	SlProduceRequestTopicProduceData topic;
	SlProduceRequestPartitionProduceData part;
	SlRequestHeader h;
	SlReader	r;
	SlRecordIter it;
	SlRecord	rec;
	size_t		pos;

	/* a real RecordBatch v2 as the records blob */
	SlBatchBuilderInit(&b, SL_COMPRESSION_NONE);
	initStringInfo(&batch);
	SlBatchBuilderAdd(&b, 1700000000000, (const uint8 *) "k", 1,
					  (const uint8 *) "hello", 5, NULL, 0);
	CHECK_NULL_ERR(SlBatchBuilderFinish(&b, &batch));
	SlBatchSeal((uint8 *) batch.data, batch.len, 0, -1);

	initStringInfo(&buf);
	SlWriterInit(&w, &buf);
	pos = frame_begin(&w, SL_API_PRODUCE, 3, 42, "p");
	SlProduceRequestInit(&req);
	SlProduceRequestTopicProduceDataInit(&topic);
	SlProduceRequestPartitionProduceDataInit(&part);
	req.acks = -1;
	req.timeout_ms = 30000;
	req.topic_data.n = 1;
	req.topic_data.items = &topic;
	topic.name = SlStrFromCString("orders");
	topic.partition_data.n = 1;
	topic.partition_data.items = &part;
	part.index = 0;
	part.records = (SlBytes) {(const uint8 *) batch.data, batch.len};
	SlProduceRequestEncode(&w, 3, &req);
	SlWriteLengthEnd(&w, pos);
	CHECK(w.error == NULL);

	initStringInfo(&want);
	appendStringInfo(&want, "%08x", buf.len - 4);
	appendStringInfoString(&want,
						   "0000" "0003" "0000002a" "0001" "70"	/* Produce v3, corr 42, "p" */
						   "ffff"	/* null transactional id */
						   "ffff"	/* acks -1 */
						   "00007530"	/* timeout 30000 ms */
						   "00000001" "0006" "6f7264657273"	/* one topic "orders" */
						   "00000001" "00000000");	/* one partition, index 0 */
	appendStringInfo(&want, "%08x", batch.len);
	appendStringInfoString(&want, hex((const uint8 *) batch.data, batch.len));
	CHECK_EQ_INT(buf.len, 4 + 11 + 2 + 2 + 4 + 4 + 8 + 4 + 4 + 4 + batch.len);
	CHECK_HEX(&buf, want.data);

	frame_read(&r, &buf, &h);
	CHECK_EQ_INT(h.correlation_id, 42);
	CHECK(SlProduceRequestDecode(&r, 3, &req));
	CHECK_EQ_INT(SlReaderRemaining(&r), 0);
	CHECK(SlStrIsNull(req.transactional_id));
	CHECK_EQ_INT(req.acks, -1);
	CHECK_EQ_INT(req.timeout_ms, 30000);
	CHECK(req.topic_data.n == 1 && req.topic_data.items[0].partition_data.n == 1);
	if (req.topic_data.n == 1 && req.topic_data.items[0].partition_data.n == 1)
	{
		SlBytes		recs = req.topic_data.items[0].partition_data.items[0].records;

		/* the records are a view into the frame, and parse */
		CHECK(recs.data == (const uint8 *) buf.data + buf.len - batch.len);
		CHECK_NULL_ERR(SlRecordIterInit(&it, recs.data, recs.len, true, 1024));
		CHECK(SlRecordIterNext(&it, &rec));
		CHECK(rec.value_len == 5 && memcmp(rec.value, "hello", 5) == 0);
		SlRecordIterFree(&it);
	}

	/* the transactional id cannot be sent before v3 */
	{
		StringInfoData old;

		initStringInfo(&old);
		SlWriterInit(&w, &old);
		req.transactional_id = SlStrFromCString("txn");
		SlProduceRequestEncode(&w, 2, &req);
		CHECK(w.error != NULL);
		pfree(old.data);
	}

	SlBatchBuilderFree(&b);
	pfree(batch.data);
	pfree(buf.data);
	pfree(want.data);
}

static void
test_golden_api_versions_response(void)
{
	StringInfoData buf;
	SlWriter	w;
	SlResponseHeader rh;
	SlApiVersionsResponse resp;
	SlApiVersionsResponseApiVersion key;
	SlReader	r;
	size_t		pos;

	initStringInfo(&buf);
	SlWriterInit(&w, &buf);
	pos = SlWriteLengthBegin(&w);
	SlResponseHeaderInit(&rh);
	rh.correlation_id = 7;
	CHECK_EQ_INT(SlResponseHeaderVersion(SL_API_API_VERSIONS, 3), 0);
	SlResponseHeaderEncode(&w, SlResponseHeaderVersion(SL_API_API_VERSIONS, 3), &rh);
	SlApiVersionsResponseInit(&resp);
	SlApiVersionsResponseApiVersionInit(&key);
	key.api_key = SL_API_API_VERSIONS;
	key.min_version = 0;
	key.max_version = 4;
	resp.api_keys.n = 1;
	resp.api_keys.items = &key;
	SlApiVersionsResponseEncode(&w, 3, &resp);
	SlWriteLengthEnd(&w, pos);
	CHECK(w.error == NULL);
	CHECK_HEX(&buf,
			  "00000013"		/* size 19 */
			  "00000007"		/* header v0: correlation id only */
			  "0000"			/* no error */
			  "02" "0012" "0000" "0004" "00"	/* [ApiVersions 0-4] */
			  "00000000"		/* throttle */
			  "00");			/* no tagged fields */

	/* a known tag (FinalizedFeaturesEpoch) and an unknown one */
	{
		const uint8 body[] = {
			0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
			0x02,
			0x01, 0x08, 0, 0, 0, 0, 0, 0, 0, 0x05,
			0x09, 0x02, 0xab, 0xcd
		};
		StringInfoData again;

		SlReaderInit(&r, body, sizeof(body));
		CHECK(SlApiVersionsResponseDecode(&r, 3, &resp));
		CHECK_EQ_INT(resp.finalized_features_epoch, 5);
		CHECK_EQ_INT(resp.api_keys.n, 0);
		CHECK(resp.zk_migration_ready == false);
		CHECK_EQ_INT(SlReaderRemaining(&r), 0);

		/* written back: only the known tag */
		initStringInfo(&again);
		SlWriterInit(&w, &again);
		SlApiVersionsResponseEncode(&w, 3, &resp);
		CHECK_HEX(&again, "0000" "01" "00000000" "01" "0108" "0000000000000005");
		pfree(again.data);

		/* read as v2, the compact count 00 01 00 00 is an int32 of 65536 */
		SlReaderInit(&r, body, sizeof(body));
		CHECK(!SlApiVersionsResponseDecode(&r, 2, &resp));

		/* a tag whose size lies about its value */
		{
			uint8		bad[sizeof(body)];

			memcpy(bad, body, sizeof(body));
			bad[9] = 0x04;	/* an int64 in 4 bytes */
			SlReaderInit(&r, bad, sizeof(bad));
			CHECK(!SlApiVersionsResponseDecode(&r, 3, &resp));
			CHECK(r.where != NULL && strcmp(r.where, "ApiVersionsResponse") == 0);
		}
	}
	pfree(buf.data);
}

static void
test_defaults_and_versions(void)
{
	SlFetchResponse resp;
	SlFetchResponsePartitionData part;
	SlReader	r;
	StringInfoData buf;
	SlWriter	w;

	/* Init applies the schema defaults */
	SlFetchResponsePartitionDataInit(&part);
	CHECK_EQ_INT(part.last_stable_offset, -1);
	CHECK_EQ_INT(part.log_start_offset, -1);
	CHECK_EQ_INT(part.preferred_read_replica, -1);
	CHECK_EQ_INT(part.current_leader.leader_id, -1);
	CHECK_EQ_INT(part.snapshot_id.end_offset, -1);
	CHECK(part.records.len == -1);
	CHECK(part.aborted_transactions.n == 0);

	/* unknown versions are refused both ways */
	{
		const uint8 empty[] = {0};

		SlReaderInit(&r, empty, 0);
		CHECK(!SlFetchResponseDecode(&r, 18, &resp));
		CHECK(!SlFetchResponseDecode(&r, -1, &resp));
	}
	initStringInfo(&buf);
	SlWriterInit(&w, &buf);
	SlFetchResponseInit(&resp);
	SlFetchResponseEncode(&w, 18, &resp);
	CHECK(w.error != NULL && buf.len == 0);

	/* an ignorable field is dropped silently by old versions */
	SlWriterInit(&w, &buf);
	resp.throttle_time_ms = 100;
	SlFetchResponseEncode(&w, 0, &resp);
	CHECK(w.error == NULL);
	CHECK_HEX(&buf, "00000000");

	/* a non-ignorable one is reported */
	resetStringInfo(&buf);
	SlWriterInit(&w, &buf);
	resp.session_id = 9;
	SlFetchResponseEncode(&w, 6, &resp);
	CHECK(w.error != NULL);
	pfree(buf.data);
}

static void
test_api_table(void)
{
	int			nmessages = lengthof(kg_messages);
	int			apis = 0;

	CHECK_EQ_INT(SL_API_PRODUCE, 0);
	CHECK_EQ_INT(SL_API_API_VERSIONS, 18);
	CHECK_EQ_INT(SL_API_DESCRIBE_CLUSTER, 60);
	CHECK_EQ_INT(SL_API_DESCRIBE_QUORUM, 55);
	CHECK_EQ_INT(SL_API_REMOVE_RAFT_VOTER, 81);
	CHECK_EQ_INT(SL_API_KEY_MAX, 81);
	CHECK(strcmp(sl_kafka_apis[SL_API_PRODUCE].name, "Produce") == 0);
	CHECK_EQ_INT(sl_kafka_apis[SL_API_PRODUCE].min_version, 0);
	CHECK_EQ_INT(sl_kafka_apis[SL_API_PRODUCE].max_version, 11);
	CHECK_EQ_INT(sl_kafka_apis[SL_API_PRODUCE].first_flexible, 9);
	CHECK_EQ_INT(sl_kafka_apis[SL_API_SASL_HANDSHAKE].first_flexible, -1);
	CHECK_EQ_INT(sl_kafka_apis[SL_API_DESCRIBE_CLUSTER].first_flexible, 0);
	CHECK(sl_kafka_apis[4].name == NULL);
	CHECK(SlApiLookup(4) == NULL);
	CHECK(SlApiLookup(-1) == NULL);
	CHECK(SlApiLookup(SL_API_KEY_MAX + 1) == NULL);
	CHECK(SlApiLookup(SL_API_FETCH) == &sl_kafka_apis[SL_API_FETCH]);

	/* the table agrees with the generated messages */
	for (int i = 0; i < nmessages; i++)
	{
		const KgMessage *m = &kg_messages[i];
		const SlApiInfo *api;

		if (m->api_key < 0)
			continue;
		api = SlApiLookup(m->api_key);
		CHECK_MSG(api != NULL && api->min_version == m->min_version &&
				  api->max_version == m->max_version, "%s", m->name);
		if (strstr(m->name, "Request") != NULL)
			apis++;
	}
	CHECK_EQ_INT(apis, 51);

	/* header versions */
	CHECK_EQ_INT(SlRequestHeaderVersion(SL_API_API_VERSIONS, 2), 1);
	CHECK_EQ_INT(SlRequestHeaderVersion(SL_API_API_VERSIONS, 3), 2);
	CHECK_EQ_INT(SlRequestHeaderVersion(SL_API_API_VERSIONS, 9), 2);
	CHECK_EQ_INT(SlRequestHeaderVersion(SL_API_SASL_HANDSHAKE, 1), 1);
	CHECK_EQ_INT(SlRequestHeaderVersion(SL_API_DESCRIBE_CLUSTER, 0), 2);
	CHECK_EQ_INT(SlRequestHeaderVersion(7, 0), 0);
	CHECK_EQ_INT(SlRequestHeaderVersion(1000, 0), 1);
	CHECK_EQ_INT(SlResponseHeaderVersion(SL_API_API_VERSIONS, 4), 0);
	CHECK_EQ_INT(SlResponseHeaderVersion(SL_API_METADATA, 9), 1);
	CHECK_EQ_INT(SlResponseHeaderVersion(SL_API_METADATA, 8), 0);
	CHECK_EQ_INT(SlResponseHeaderVersion(SL_API_FETCH, 12), 1);

	/* error codes */
	CHECK_EQ_INT(SL_ERR_UNKNOWN_SERVER_ERROR, -1);
	CHECK_EQ_INT(SL_ERR_NONE, 0);
	CHECK_EQ_INT(SL_ERR_OFFSET_OUT_OF_RANGE, 1);
	CHECK_EQ_INT(SL_ERR_CORRUPT_MESSAGE, 2);
	CHECK_EQ_INT(SL_ERR_UNKNOWN_TOPIC_OR_PARTITION, 3);
	CHECK_EQ_INT(SL_ERR_MESSAGE_TOO_LARGE, 10);
	CHECK_EQ_INT(SL_ERR_NOT_COORDINATOR, 16);
	CHECK_EQ_INT(SL_ERR_REBALANCE_IN_PROGRESS, 27);
	CHECK_EQ_INT(SL_ERR_UNSUPPORTED_VERSION, 35);
	CHECK_EQ_INT(SL_ERR_TOPIC_ALREADY_EXISTS, 36);
	CHECK_EQ_INT(SL_ERR_INVALID_PRODUCER_EPOCH, 47);
	CHECK_EQ_INT(SL_ERR_UNKNOWN_TOPIC_ID, 100);
	CHECK_EQ_INT(SL_ERR_TRANSACTION_ABORTABLE, 120);
	CHECK(strcmp(SlKafkaErrorName(3), "UNKNOWN_TOPIC_OR_PARTITION") == 0);
	CHECK(strcmp(SlKafkaErrorName(-1), "UNKNOWN_SERVER_ERROR") == 0);
	CHECK(strcmp(SlKafkaErrorName(0), "NONE") == 0);
	CHECK(SlKafkaErrorName(-2) == NULL);
	CHECK(SlKafkaErrorName(SL_ERR_MAX + 1) == NULL);
	for (int code = -1; code <= SL_ERR_MAX; code++)
		CHECK_MSG(SlKafkaErrorName(code) != NULL, "no name for %d", code);
}

/* What SlResponseErrorCodes gave: how many codes, the last one */
static int	codes_seen;
static int16 last_code_seen;

static void
see_code(int16 error_code, void *arg)
{
	(void) arg;
	codes_seen++;
	last_code_seen = error_code;
}

/*
 * Error responses: for every API and version, the error response of a
 * random request encodes and decodes again, and the error codes read back
 * from it (SlResponseErrorCodes, what the metrics count) are all the one
 * it was made with; a Produce error response mirrors the request's topics
 * and partitions with the error in each, one code read back per partition.
 */
static void
test_error_responses(void)
{
	int			nmessages = lengthof(kg_messages);
	uint64		rng = 99;

	for (int i = 0; i < nmessages; i++)
	{
		const KgMessage *req = &kg_messages[i];
		const KgMessage *resp = i + 1 < nmessages ? &kg_messages[i + 1] : NULL;

		if (req->api_key < 0 || strstr(req->name, "Request") == NULL)
			continue;
		for (int16 v = req->min_version; v <= req->max_version; v++)
		{
			void	   *msg = palloc0(req->size);
			void	   *back;
			StringInfoData buf;
			StringInfoData out;
			SlReader	r;
			SlWriter	w;

			req->init(msg);
			req->fill(msg, v, &rng);
			CHECK(encode(req, v, msg, &buf) == NULL);
			SlReaderInit(&r, (const uint8 *) buf.data, buf.len);
			initStringInfo(&out);
			SlWriterInit(&w, &out);
			CHECK_MSG(SlErrorResponseEncode(&r, req->api_key, v, SL_ERR_UNKNOWN_SERVER_ERROR,
											SlStrFromCString("boom"), &w) && w.error == NULL,
					  "%s v%d: %s %s", req->name, v, w.error ? w.error : "", r.error ? r.error : "");
			CHECK_MSG(decode(resp, v, (const uint8 *) out.data, out.len, &back, &r) &&
					  r.pos == (size_t) out.len, "%s v%d", resp->name, v);
			SlReaderInit(&r, (const uint8 *) out.data, out.len);
			codes_seen = 0;
			last_code_seen = SL_ERR_UNKNOWN_SERVER_ERROR;
			CHECK_MSG(SlResponseErrorCodes(&r, req->api_key, v, see_code, NULL),
					  "%s v%d: %s", resp->name, v, r.error ? r.error : "");
			CHECK_MSG(last_code_seen == SL_ERR_UNKNOWN_SERVER_ERROR, "%s v%d: %d",
					  resp->name, v, last_code_seen);
		}
	}

	/* Produce v3: two partitions of one topic */
	{
		SlProduceRequest req;
		SlProduceResponse resp;
		SlProduceRequestPartitionProduceData parts[2];
		SlProduceRequestTopicProduceData topic;

		SlProduceRequestInit(&req);
		SlProduceRequestTopicProduceDataInit(&topic);
		for (int p = 0; p < 2; p++)
		{
			SlProduceRequestPartitionProduceDataInit(&parts[p]);
			parts[p].index = 5 + p;
		}
		topic.name = SlStrFromCString("t1");
		topic.partition_data.n = 2;
		topic.partition_data.items = parts;
		req.topic_data.n = 1;
		req.topic_data.items = &topic;
		SlProduceErrorResponse(&req, 8, SL_ERR_KAFKA_STORAGE_ERROR, SlStrFromCString("m"), &resp);
		CHECK_EQ_INT(resp.responses.n, 1);
		CHECK(SlStrEqualCString(resp.responses.items[0].name, "t1"));
		CHECK_EQ_INT(resp.responses.items[0].partition_responses.n, 2);
		for (int p = 0; p < 2; p++)
		{
			CHECK_EQ_INT(resp.responses.items[0].partition_responses.items[p].index, 5 + p);
			CHECK_EQ_INT(resp.responses.items[0].partition_responses.items[p].error_code,
						 SL_ERR_KAFKA_STORAGE_ERROR);
			CHECK(SlStrEqualCString(resp.responses.items[0].partition_responses.items[p].error_message, "m"));
		}
		{
			StringInfoData out;
			SlWriter	w;
			SlReader	r;

			initStringInfo(&out);
			SlWriterInit(&w, &out);
			SlProduceResponseEncode(&w, 8, &resp);
			SlReaderInit(&r, (const uint8 *) out.data, out.len);
			codes_seen = 0;
			CHECK(SlResponseErrorCodes(&r, SL_API_PRODUCE, 8, see_code, NULL));
			CHECK_EQ_INT(codes_seen, 2);
			CHECK_EQ_INT(last_code_seen, SL_ERR_KAFKA_STORAGE_ERROR);
		}
	}
}

int
main(void)
{
	kmsg_seed = unit_seed(1);
	test_golden_api_versions_v0();
	test_golden_api_versions_v3();
	test_golden_metadata_v1();
	test_golden_produce_v3();
	test_golden_api_versions_response();
	test_defaults_and_versions();
	test_api_table();
	test_roundtrip_all();
	test_error_responses();
	return UNIT_DONE();
}
