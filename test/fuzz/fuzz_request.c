/*
 * Fuzz target: Kafka request frames as the broker receives them.
 *
 * The input is what arrives on a connection: a 4-byte big-endian size, then
 * that many bytes of frame (more frames may follow).  A size <= 0 or larger
 * than the bytes left is refused, as the broker does.  Each frame is copied
 * into an exactly sized buffer (the broker copies it too), so a read past
 * the frame is an ASan error even when more input follows.
 *
 * For each frame:
 *   1. the request header is decoded with the generated decoder, at the
 *      header version SlRequestHeaderVersion gives for the api key and
 *      version the frame starts with;
 *   2. the body is decoded with the request decoder of that api key and
 *      version, when the generated tables serve it (the broker's path);
 *      Produce bodies then have their records walked like the Produce
 *      handler does (RecordBatch v2 from v3, legacy message sets before);
 *   3. the same body bytes are decoded at every version of that api, and
 *      one below and one above (which must be refused).  An api key that is
 *      not generated is mapped onto a generated one, so that mutating the
 *      key reaches every decoder.
 *
 * Whatever a decoder accepts must encode without error at the same
 * version, decode again to the end, and re-encode to identical bytes.
 *
 * Memory: generated decoders palloc their arrays (malloc in frontend code)
 * and keep strings and bytes as views into the input.  The type-erased
 * Release functions of kmsg_fill.h, generated from the same schemas as the
 * decoders, free exactly those arrays, also after a failed decode (arrays
 * are zeroed when allocated and stay attached to the message).  So nothing
 * leaks and LeakSanitizer stays enabled.
 */
#include "fuzz_common.h"

#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/protocol/generated/kmsg_fill.h"
#ifdef SL_FUZZ_LEGACY
#include "streamlog/protocol/legacy_records.h"
#endif

#define MAX_FRAMES 4

static const KgMessage *header_msg;
static const KgMessage *request_msg[SL_API_KEY_MAX + 1];
static int16 request_keys[SL_API_KEY_MAX + 1];
static int	nrequest_keys;

typedef void (*InspectFn) (int16 version, const void *msg);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_init_common();

	for (size_t i = 0; i < lengthof(kg_messages); i++)
	{
		const KgMessage *m = &kg_messages[i];
		size_t		n = strlen(m->name);

		if (m->api_key < 0)
		{
			if (strcmp(m->name, "RequestHeader") == 0)
				header_msg = m;
			continue;
		}
		if (n > 7 && strcmp(m->name + n - 7, "Request") == 0)
		{
			FUZZ_CHECK(m->api_key <= SL_API_KEY_MAX);
			FUZZ_CHECK(request_msg[m->api_key] == NULL);
			request_msg[m->api_key] = m;
		}
	}
	FUZZ_CHECK(header_msg != NULL);

	/* the api table and the message list come from the same schemas */
	for (int k = 0; k <= SL_API_KEY_MAX; k++)
	{
		const SlApiInfo *api = SlApiLookup((int16) k);

		FUZZ_CHECK((api != NULL) == (request_msg[k] != NULL));
		if (api == NULL)
			continue;
		FUZZ_CHECK(api->min_version == request_msg[k]->min_version);
		FUZZ_CHECK(api->max_version == request_msg[k]->max_version);
		request_keys[nrequest_keys++] = (int16) k;
	}
	FUZZ_CHECK(nrequest_keys > 0);
	(void) argc;
	(void) argv;
	return 0;
}

/*
 * A message m accepted at version must encode cleanly, and its encoding
 * must decode whole and re-encode to the same bytes.
 */
static void
check_roundtrip(const KgMessage *m, int16 version, const void *msg)
{
	StringInfoData first;
	StringInfoData second;
	SlWriter	w;
	SlReader	r;
	uint8	   *copy;
	void	   *again;
	bool		ok;

	initStringInfo(&first);
	SlWriterInit(&w, &first);
	m->encode(&w, version, msg);
	if (w.error != NULL)
	{
		fprintf(stderr, "%s v%d: accepted message does not encode: %s\n",
				m->name, version, w.error);
		abort();
	}

	copy = fuzz_copy((const uint8 *) first.data, first.len);
	again = palloc0(m->size);
	SlReaderInit(&r, copy, first.len);
	ok = m->decode(&r, version, again);
	if (!ok || SlReaderRemaining(&r) != 0)
	{
		fprintf(stderr, "%s v%d: own encoding does not decode: %s (at %s, byte %zu of %d)\n",
				m->name, version, r.error ? r.error : "trailing bytes",
				r.where ? r.where : "?", r.pos, first.len);
		abort();
	}

	initStringInfo(&second);
	SlWriterInit(&w, &second);
	m->encode(&w, version, again);
	FUZZ_CHECK(w.error == NULL);
	if (second.len != first.len ||
		memcmp(second.data, first.data, first.len) != 0)
	{
		fprintf(stderr, "%s v%d: re-encoding differs (%d bytes, then %d)\n",
				m->name, version, first.len, second.len);
		abort();
	}

	m->release(again);
	pfree(again);
	free(copy);
	pfree(first.data);
	pfree(second.data);
}

/*
 * Decode len bytes at data as m at version.  Returns whether the decoder
 * accepted them; *consumed (if not NULL) gets the bytes it read.
 */
static bool
decode_one(const KgMessage *m, int16 version, const uint8 *data, size_t len,
		   size_t *consumed, const char **error, InspectFn inspect)
{
	void	   *msg = palloc0(m->size);
	SlReader	r;
	bool		ok;

	SlReaderInit(&r, data, len);
	ok = m->decode(&r, version, msg);
	FUZZ_CHECK(ok == (r.error == NULL));
	FUZZ_CHECK(r.pos <= r.len);
	if (ok)
	{
		check_roundtrip(m, version, msg);
		if (inspect)
			inspect(version, msg);
	}
	m->release(msg);
	pfree(msg);
	if (consumed)
		*consumed = r.pos;
	if (error)
		*error = r.error;
	return ok;
}

/* The records of a Produce request, checked as the Produce handler does */
static void
inspect_produce(int16 version, const void *msg)
{
	const SlProduceRequest *req = msg;

	for (int32 t = 0; t < req->topic_data.n; t++)
	{
		const SlProduceRequestTopicProduceData *td = &req->topic_data.items[t];

		for (int32 p = 0; p < td->partition_data.n; p++)
		{
			SlBytes		records = td->partition_data.items[p].records;

			if (records.len <= 0)
				continue;
			if (version >= 3)
			{
				FuzzWalk	w;

				fuzz_walk_batches(records.data, records.len, true,
								  FUZZ_MAX_DECOMPRESSED, &w);
				FUZZ_EXPECT(w.error == NULL && w.nbatches > 0, w.error);
			}
#ifdef SL_FUZZ_LEGACY
			else
			{
				StringInfoData batch;
				int32		count = -1;
				const char *err;

				initStringInfo(&batch);
				err = SlMessageSetToBatch(records.data, records.len,
										  FUZZ_MAX_DECOMPRESSED, &batch,
										  &count);
				if (err == NULL)
				{
					FuzzWalk	w;

					fuzz_walk_batches((const uint8 *) batch.data, batch.len,
									  false, SIZE_MAX, &w);
					FUZZ_CHECK(w.error == NULL && w.nbatches == 1);
					FUZZ_CHECK(w.nrecords == count);
				}
				else
					FUZZ_CHECK(batch.len == 0);
				FUZZ_EXPECT(err == NULL, err);
				pfree(batch.data);
			}
#endif
		}
	}
}

static void
fuzz_frame(const uint8 *frame, size_t len)
{
	SlReader	r;
	SlRequestHeader hdr;
	int16		api_key;
	int16		api_version;
	int16		header_version;
	const SlApiInfo *api;
	const KgMessage *m;
	const uint8 *body;
	size_t		body_len;
	bool		served;

	/* the header version follows from the key and version it starts with */
	SlReaderInit(&r, frame, len);
	api_key = SlReadInt16(&r);
	api_version = SlReadInt16(&r);
	header_version = SlRequestHeaderVersion(api_key, api_version);
	FUZZ_CHECK(header_version >= 0 && header_version <= 2);

	SlReaderInit(&r, frame, len);
	if (!SlRequestHeaderDecode(&r, header_version, &hdr))
	{
		FUZZ_EXPECT(false, r.error);
		return;
	}
	FUZZ_CHECK(hdr.request_api_key == api_key);
	FUZZ_CHECK(hdr.request_api_version == api_version);
	FUZZ_CHECK(hdr.client_id.len >= -1);
	FUZZ_CHECK(hdr.client_id.len <= 0 ||
			   fuzz_within((const uint8 *) hdr.client_id.data,
						   hdr.client_id.len, frame, frame + len));
	fuzz_touch(hdr.client_id.data, hdr.client_id.len, 0);
	check_roundtrip(header_msg, header_version, &hdr);

	body = frame + r.pos;
	body_len = len - r.pos;

	/* 1: the request's own api key and version, as the broker decodes it */
	api = SlApiLookup(api_key);
	served = api != NULL && api_version >= api->min_version &&
		api_version <= api->max_version;
	if (served)
	{
		size_t		consumed = 0;
		const char *err = NULL;
		bool		ok;

		ok = decode_one(request_msg[api_key], api_version, body, body_len,
						&consumed, &err,
						api_key == SL_API_PRODUCE ? inspect_produce : NULL);
		FUZZ_EXPECT(ok, err);
		FUZZ_EXPECT(consumed == body_len, "trailing bytes after the body");
	}
	else
		FUZZ_EXPECT(false, "api key or version not in the generated tables");

	/* 2: every version of that api (or of one standing in for it) */
	if (api == NULL)
		api_key = request_keys[(uint16) api_key % nrequest_keys];
	m = request_msg[api_key];
	for (int v = m->min_version - 1; v <= m->max_version + 1; v++)
	{
		bool		ok;

		if (served && v == api_version)
			continue;
		ok = decode_one(m, (int16) v, body, body_len, NULL, NULL, NULL);
		if (v < m->min_version || v > m->max_version)
			FUZZ_CHECK(!ok);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		pos = 0;
	int			frames = 0;

	while (frames < MAX_FRAMES && size - pos >= 4)
	{
		int32		frame_size = SlLoadInt32(data + pos);
		uint8	   *frame;

		if (frame_size <= 0 || (size_t) frame_size > size - pos - 4)
			break;
		frame = fuzz_copy(data + pos + 4, (size_t) frame_size);
		fuzz_frame(frame, (size_t) frame_size);
		free(frame);
		pos += 4 + (size_t) frame_size;
		frames++;
	}
	FUZZ_EXPECT(frames > 0 && pos == size, "input is not a sequence of whole frames");
	return 0;
}
