/*-------------------------------------------------------------------------
 * offsets_records.c
 *	  Keys and values of Kafka's __consumer_offsets records, and the
 *	  partition of a group (see offsets_records.h for the layouts).
 *
 * Written by hand rather than generated: four small non-flexible
 * messages whose versions are fixed by what Kafka's classic coordinator
 * writes, not a range a broker negotiates.
 *
 * IDENTIFICATION
 *	  src/protocol/offsets_records.c
 *-------------------------------------------------------------------------
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/protocol/offsets_records.h"
#include "streamlog/protocol/wire.h"

/*
 * Decode one code point of UTF-8 at *p (before end), moving *p past it.
 * A malformed or truncated sequence yields U+FFFD and moves one byte, as
 * Java's decoder replaces each bad byte.
 */
static uint32
next_code_point(const uint8 **p, const uint8 *end)
{
	const uint8 *s = *p;
	uint32		c = s[0];
	int			n;
	uint32		min;

	if (c < 0x80)
	{
		*p = s + 1;
		return c;
	}
	if ((c & 0xe0) == 0xc0)
		n = 1, c &= 0x1f, min = 0x80;
	else if ((c & 0xf0) == 0xe0)
		n = 2, c &= 0x0f, min = 0x800;
	else if ((c & 0xf8) == 0xf0)
		n = 3, c &= 0x07, min = 0x10000;
	else
	{
		*p = s + 1;
		return 0xfffd;
	}
	if (end - s <= n)
	{
		*p = s + 1;
		return 0xfffd;
	}
	for (int i = 1; i <= n; i++)
	{
		if ((s[i] & 0xc0) != 0x80)
		{
			*p = s + 1;
			return 0xfffd;
		}
		c = (c << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF are not UTF-8 */
	if (c < min || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
	{
		*p = s + 1;
		return 0xfffd;
	}
	*p = s + n + 1;
	return c;
}

int32
SlJavaStringHashCode(const char *utf8, size_t len)
{
	const uint8 *p = (const uint8 *) utf8;
	const uint8 *end = p + len;
	uint32		h = 0;			/* unsigned: Java's int overflow wraps */

	while (p < end)
	{
		uint32		c = next_code_point(&p, end);

		if (c >= 0x10000)
		{
			/* Two UTF-16 code units: the surrogate pair */
			c -= 0x10000;
			h = h * 31 + (0xd800 | (c >> 10));
			h = h * 31 + (0xdc00 | (c & 0x3ff));
		}
		else
			h = h * 31 + c;
	}
	return (int32) h;
}

int32
SlOffsetsPartitionFor(const char *group_id, int32 partitions)
{
	int32		h = SlJavaStringHashCode(group_id, strlen(group_id));

	/* Kafka's Utils.abs: Integer.MIN_VALUE, whose Math.abs is negative, is 0 */
	if (h == PG_INT32_MIN)
		h = 0;
	else if (h < 0)
		h = -h;
	return h % partitions;
}

static void
write_string(SlWriter *w, const char *s, bool nullable)
{
	if (s == NULL && !nullable)
		s = "";
	SlWriteString(w, false, nullable, SlStrFromCString(s));
}

const char *
SlEncodeOffsetCommitKey(StringInfo buf, const char *group_id, const char *topic,
						int32 partition)
{
	SlWriter	w;

	SlWriterInit(&w, buf);
	SlWriteInt16(&w, SL_OFFSET_COMMIT_KEY_VERSION);
	write_string(&w, group_id, false);
	write_string(&w, topic, false);
	SlWriteInt32(&w, partition);
	return w.error;
}

const char *
SlEncodeOffsetCommitValue(StringInfo buf, const SlOffsetCommitValue *value)
{
	SlWriter	w;

	SlWriterInit(&w, buf);
	SlWriteInt16(&w, SL_OFFSET_COMMIT_VALUE_VERSION);
	SlWriteInt64(&w, value->offset);
	SlWriteInt32(&w, value->leader_epoch);
	write_string(&w, value->metadata, false);
	SlWriteInt64(&w, value->commit_timestamp);
	return w.error;
}

const char *
SlEncodeGroupMetadataKey(StringInfo buf, const char *group_id)
{
	SlWriter	w;

	SlWriterInit(&w, buf);
	SlWriteInt16(&w, SL_GROUP_METADATA_KEY_VERSION);
	write_string(&w, group_id, false);
	return w.error;
}

const char *
SlEncodeGroupMetadataValue(StringInfo buf, const SlGroupMetadataValue *value)
{
	SlWriter	w;

	SlWriterInit(&w, buf);
	SlWriteInt16(&w, SL_GROUP_METADATA_VALUE_VERSION);
	write_string(&w, value->protocol_type, false);
	SlWriteInt32(&w, value->generation);
	write_string(&w, value->protocol, true);
	write_string(&w, value->leader, true);
	SlWriteInt64(&w, value->current_state_timestamp);
	SlWriteArrayLen(&w, false, false, value->nmembers);
	for (int i = 0; i < value->nmembers; i++)
	{
		const SlGroupMetadataMember *m = &value->members[i];
		SlBytes		subscription = {m->subscription, m->subscription ? m->subscription_len : 0};
		SlBytes		assignment = {m->assignment, m->assignment ? m->assignment_len : 0};

		write_string(&w, m->member_id, false);
		write_string(&w, m->instance_id, true);
		write_string(&w, m->client_id, false);
		write_string(&w, m->client_host, false);
		SlWriteInt32(&w, m->rebalance_timeout_ms);
		SlWriteInt32(&w, m->session_timeout_ms);
		SlWriteBytes(&w, false, false, subscription);
		SlWriteBytes(&w, false, false, assignment);
	}
	return w.error;
}

const char *
SlDecodeOffsetsKey(const uint8 *buf, size_t len, SlOffsetsKey *key)
{
	SlReader	r;
	int16		version;

	memset(key, 0, sizeof(*key));
	key->kind = SL_OFFSETS_KEY_INVALID;
	if (buf == NULL)
		return "no key";
	SlReaderInit(&r, buf, len);
	version = SlReadInt16(&r);
	key->group_id = SlReadString(&r, false, false);
	if (version == 0 || version == 1)
	{
		key->topic = SlReadString(&r, false, false);
		key->partition = SlReadInt32(&r);
		key->kind = SL_OFFSETS_KEY_OFFSET_COMMIT;
	}
	else if (version == 2)
		key->kind = SL_OFFSETS_KEY_GROUP_METADATA;
	else if (r.error == NULL)
		return "unknown key version";
	if (r.error != NULL)
	{
		key->kind = SL_OFFSETS_KEY_INVALID;
		return r.error;
	}
	return NULL;
}

const char *
SlDecodeOffsetCommitValue(const uint8 *buf, size_t len, SlOffsetCommitValue *value,
						  int32 *metadata_len)
{
	SlReader	r;
	int16		version;
	SlStr		metadata;

	memset(value, 0, sizeof(*value));
	value->leader_epoch = -1;
	value->commit_timestamp = -1;
	*metadata_len = 0;
	if (buf == NULL)
		return "no value";
	SlReaderInit(&r, buf, len);
	version = SlReadInt16(&r);
	if (r.error == NULL && (version < 0 || version > SL_OFFSET_COMMIT_VALUE_VERSION))
		return "unknown value version";
	value->offset = SlReadInt64(&r);
	if (version >= 3)
		value->leader_epoch = SlReadInt32(&r);
	metadata = SlReadString(&r, false, false);
	value->commit_timestamp = SlReadInt64(&r);
	if (version == 1)
		(void) SlReadInt64(&r);	/* expire timestamp */
	if (r.error != NULL)
		return r.error;
	value->metadata = metadata.data;
	*metadata_len = metadata.len;
	return NULL;
}
