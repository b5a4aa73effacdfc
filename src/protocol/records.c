/*
 * Kafka RecordBatch v2: header parsing, CRC, record iteration and building.
 */
#include "streamlog/protocol/codec_base.h"

#include <string.h>

#include "port/pg_crc32c.h"
#include "streamlog/protocol/compression.h"
#include "streamlog/protocol/crc32c.h"
#include "streamlog/protocol/records.h"
#include "streamlog/protocol/varint.h"

/* Offsets of the remaining header fields (see records.h) */
#define OFF_LAST_OFFSET_DELTA 23
#define OFF_BASE_TIMESTAMP 27
#define OFF_PRODUCER_ID 43
#define OFF_PRODUCER_EPOCH 51
#define OFF_BASE_SEQUENCE 53
#define OFF_RECORD_COUNT 57

/* Smallest possible record body: attributes, four 1-byte varints, count */
#define MIN_RECORD_BODY 6

/* ---- inline varint helpers for the hot paths ---- */

static inline bool
get_varint(const uint8 **pos, const uint8 *end, int32 *value)
{
	const uint8 *p = *pos;
	uint32		u;

	if (likely(p < end && (*p & 0x80) == 0))
		u = *p++;
	else if (likely(end - p >= 2 && (p[1] & 0x80) == 0))
	{
		u = (uint32) (p[0] & 0x7f) | ((uint32) p[1] << 7);
		p += 2;
	}
	else
		return SlGetVarint(pos, end, value);
	*value = (int32) ((u >> 1) ^ (~(u & 1) + 1));
	*pos = p;
	return true;
}

static inline bool
get_varlong(const uint8 **pos, const uint8 *end, int64 *value)
{
	const uint8 *p = *pos;
	uint64		u;

	if (likely(p < end && (*p & 0x80) == 0))
		u = *p++;
	else if (likely(end - p >= 2 && (p[1] & 0x80) == 0))
	{
		u = (uint64) (p[0] & 0x7f) | ((uint64) p[1] << 7);
		p += 2;
	}
	else
		return SlGetVarlong(pos, end, value);
	*value = (int64) ((u >> 1) ^ (~(u & 1) + 1));
	*pos = p;
	return true;
}

static inline uint32
zz32(int32 v)
{
	return ((uint32) v << 1) ^ (uint32) (v >> 31);
}

static inline uint64
zz64(int64 v)
{
	return ((uint64) v << 1) ^ (uint64) (v >> 63);
}

static inline int
size_u32(uint32 u)
{
	int			n = 1;

	while (u >= 0x80)
	{
		u >>= 7;
		n++;
	}
	return n;
}

static inline int
size_u64(uint64 u)
{
	int			n = 1;

	while (u >= 0x80)
	{
		u >>= 7;
		n++;
	}
	return n;
}

static inline uint8 *
put_u32(uint8 *p, uint32 u)
{
	while (u >= 0x80)
	{
		*p++ = (uint8) (u | 0x80);
		u >>= 7;
	}
	*p++ = (uint8) u;
	return p;
}

static inline uint8 *
put_u64(uint8 *p, uint64 u)
{
	while (u >= 0x80)
	{
		*p++ = (uint8) (u | 0x80);
		u >>= 7;
	}
	*p++ = (uint8) u;
	return p;
}

/* ---- header and CRC ---- */

uint32
SlBatchComputeCrc(const uint8 *batch, size_t len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	if (len > SL_BATCH_OFFSET_ATTRIBUTES)
		crc = SlCrc32cUpdate(crc, batch + SL_BATCH_OFFSET_ATTRIBUTES,
							 len - SL_BATCH_OFFSET_ATTRIBUTES);
	FIN_CRC32C(crc);
	return (uint32) crc;
}

const char *
SlBatchParseHeader(const uint8 *buf, size_t len, SlBatchHeader *hdr,
				   bool verify_crc)
{
	if (len < SL_BATCH_HEADER_SIZE)
		return "truncated record batch header";

	hdr->base_offset = SlLoadInt64(buf + SL_BATCH_OFFSET_BASE_OFFSET);
	hdr->batch_length = SlLoadInt32(buf + SL_BATCH_OFFSET_LENGTH);
	hdr->partition_leader_epoch = SlLoadInt32(buf + SL_BATCH_OFFSET_LEADER_EPOCH);
	hdr->magic = (int8) buf[SL_BATCH_OFFSET_MAGIC];
	hdr->crc = (uint32) SlLoadInt32(buf + SL_BATCH_OFFSET_CRC);
	hdr->attributes = SlLoadInt16(buf + SL_BATCH_OFFSET_ATTRIBUTES);
	hdr->last_offset_delta = SlLoadInt32(buf + OFF_LAST_OFFSET_DELTA);
	hdr->base_timestamp = SlLoadInt64(buf + OFF_BASE_TIMESTAMP);
	hdr->max_timestamp = SlLoadInt64(buf + SL_BATCH_OFFSET_MAX_TIMESTAMP);
	hdr->producer_id = SlLoadInt64(buf + OFF_PRODUCER_ID);
	hdr->producer_epoch = SlLoadInt16(buf + OFF_PRODUCER_EPOCH);
	hdr->base_sequence = SlLoadInt32(buf + OFF_BASE_SEQUENCE);
	hdr->record_count = SlLoadInt32(buf + OFF_RECORD_COUNT);

	if (hdr->magic != SL_BATCH_MAGIC)
		return "unsupported record batch magic (only v2 is supported)";
	if (hdr->batch_length < SL_BATCH_HEADER_SIZE - SL_BATCH_LOG_OVERHEAD)
		return "record batch length too small";
	if (SlBatchSize(hdr) > len)
		return "truncated record batch";
	if (hdr->record_count < 0)
		return "negative record count in record batch";
	if (verify_crc &&
		SlBatchComputeCrc(buf, SlBatchSize(hdr)) != hdr->crc)
		return "record batch CRC mismatch";
	return NULL;
}

/* ---- iteration ---- */

const char *
SlRecordIterInit(SlRecordIter *it, const uint8 *buf, size_t len,
				 bool verify_crc, size_t max_decompressed)
{
	const char *err;
	int			codec;
	const uint8 *records;
	size_t		records_len;

	it->pos = NULL;
	it->end = NULL;
	it->remaining = 0;
	it->decompressed.data = NULL;
	it->decompressed.len = 0;
	it->decompressed.maxlen = 0;
	it->decompressed.cursor = 0;
	it->error = NULL;

	err = SlBatchParseHeader(buf, len, &it->hdr, verify_crc);
	if (err)
	{
		it->error = err;
		return err;
	}

	records = buf + SL_BATCH_HEADER_SIZE;
	records_len = SlBatchSize(&it->hdr) - SL_BATCH_HEADER_SIZE;
	codec = SlBatchCompression(&it->hdr);

	if (codec == SL_COMPRESSION_NONE)
	{
		it->pos = records;
		it->end = records + records_len;
	}
	else if (codec > SL_COMPRESSION_MAX)
	{
		it->error = "unknown compression codec in record batch";
		return it->error;
	}
	else
	{
		initStringInfo(&it->decompressed);
		err = SlDecompress((SlCompression) codec, records, records_len,
						   &it->decompressed, max_decompressed);
		if (err)
		{
			SlRecordIterFree(it);
			it->error = err;
			return err;
		}
		it->pos = (const uint8 *) it->decompressed.data;
		it->end = it->pos + it->decompressed.len;
	}

	/* every record takes at least MIN_RECORD_BODY + 1 bytes */
	if ((size_t) it->hdr.record_count > (size_t) (it->end - it->pos) / (MIN_RECORD_BODY + 1))
	{
		SlRecordIterFree(it);
		it->error = "record count larger than the records in the batch";
		return it->error;
	}
	it->remaining = it->hdr.record_count;
	return NULL;
}

/* Parse one header at *pos; shared by iteration and SlRecordHeaderNext */
static inline bool
parse_header(const uint8 **pos, const uint8 *end, SlRecordHeader *h)
{
	const uint8 *p = *pos;
	int32		klen;
	int32		vlen;

	if (!get_varint(&p, end, &klen) || klen < 0 || klen > end - p)
		return false;
	h->key = (const char *) p;
	h->key_len = klen;
	p += klen;
	if (!get_varint(&p, end, &vlen) || vlen < -1 || vlen > end - p)
		return false;
	if (vlen < 0)
		h->value = NULL;
	else
	{
		h->value = p;
		p += vlen;
	}
	h->value_len = vlen;
	*pos = p;
	return true;
}

static bool
iter_fail(SlRecordIter *it, const char *msg)
{
	it->error = msg;
	it->remaining = 0;
	return false;
}

bool
SlRecordIterNext(SlRecordIter *it, SlRecord *rec)
{
	const uint8 *p = it->pos;
	const uint8 *end = it->end;
	const uint8 *rend;
	int32		length;
	int64		ts_delta;
	int32		off_delta;
	int32		klen;
	int32		vlen;
	int32		hcount;
	int32		i;

	if (it->error)
		return false;
	if (it->remaining <= 0)
	{
		if (p != end)
			return iter_fail(it, "trailing data after the last record of the batch");
		return false;
	}
	if (p >= end)
		return iter_fail(it, "fewer records in the batch than its record count");

	if (!get_varint(&p, end, &length))
		return iter_fail(it, "malformed record length");
	if (length < MIN_RECORD_BODY || length > end - p)
		return iter_fail(it, "invalid record length");
	rend = p + length;

	rec->attributes = (int8) *p++;
	if (!get_varlong(&p, rend, &ts_delta))
		return iter_fail(it, "malformed record timestamp delta");
	if (!get_varint(&p, rend, &off_delta))
		return iter_fail(it, "malformed record offset delta");

	if (!get_varint(&p, rend, &klen) || klen < -1 || klen > rend - p)
		return iter_fail(it, "invalid record key length");
	if (klen < 0)
		rec->key = NULL;
	else
	{
		rec->key = p;
		p += klen;
	}
	rec->key_len = klen;

	if (!get_varint(&p, rend, &vlen) || vlen < -1 || vlen > rend - p)
		return iter_fail(it, "invalid record value length");
	if (vlen < 0)
		rec->value = NULL;
	else
	{
		rec->value = p;
		p += vlen;
	}
	rec->value_len = vlen;

	if (!get_varint(&p, rend, &hcount) || hcount < 0 || hcount > (rend - p) / 2)
		return iter_fail(it, "invalid record header count");
	rec->header_count = hcount;
	rec->headers = p;
	for (i = 0; i < hcount; i++)
	{
		SlRecordHeader h;

		if (!parse_header(&p, rend, &h))
			return iter_fail(it, "malformed record header");
	}
	rec->headers_end = p;

	if (p != rend)
		return iter_fail(it, "record length does not match its contents");

	rec->offset = (int64) ((uint64) it->hdr.base_offset + (uint64) (int64) off_delta);
	if (it->hdr.attributes & SL_BATCH_ATTR_LOG_APPEND_TIME)
		rec->timestamp = it->hdr.max_timestamp;
	else
		rec->timestamp = (int64) ((uint64) it->hdr.base_timestamp + (uint64) ts_delta);

	it->pos = rend;
	it->remaining--;
	return true;
}

void
SlRecordIterFree(SlRecordIter *it)
{
	if (it->decompressed.data != NULL)
	{
		pfree(it->decompressed.data);
		it->decompressed.data = NULL;
		it->decompressed.len = 0;
		it->decompressed.maxlen = 0;
	}
	it->pos = it->end = NULL;
	it->remaining = 0;
}

bool
SlRecordHeaderNext(const uint8 **pos, const uint8 *end,
				   SlRecordHeader *header)
{
	return parse_header(pos, end, header);
}

/* ---- building ---- */

void
SlBatchBuilderInit(SlBatchBuilder *b, SlCompression compression)
{
	b->compression = compression;
	b->base_timestamp = -1;
	b->max_timestamp = -1;
	b->record_count = 0;
	b->producer_id = SL_NO_PRODUCER_ID;
	b->producer_epoch = SL_NO_PRODUCER_EPOCH;
	b->base_sequence = SL_NO_SEQUENCE;
	b->attributes = 0;
	b->fixed_base_timestamp = false;
	b->last_offset_delta = -1;
	initStringInfo(&b->records);
}

void
SlBatchBuilderFree(SlBatchBuilder *b)
{
	if (b->records.data != NULL)
		pfree(b->records.data);
	b->records.data = NULL;
	b->records.len = 0;
	b->records.maxlen = 0;
	b->record_count = 0;
}

void
SlBatchBuilderReset(SlBatchBuilder *b)
{
	resetStringInfo(&b->records);
	b->record_count = 0;
	b->base_timestamp = -1;
	b->max_timestamp = -1;
	b->attributes = 0;
	b->fixed_base_timestamp = false;
	b->last_offset_delta = -1;
}

void
SlBatchBuilderSetBase(SlBatchBuilder *b, int16 attributes,
					  bool fixed_base_timestamp, int64 base_timestamp)
{
	b->attributes = attributes & ~SL_BATCH_ATTR_COMPRESSION_MASK;
	b->fixed_base_timestamp = fixed_base_timestamp;
	if (fixed_base_timestamp)
		b->base_timestamp = base_timestamp;
}

/*
 * Append one record with the given offset delta.  Headers come either
 * decoded (headers, nheaders) or already encoded (raw_headers .. raw_end,
 * nheaders of them), as a record read from another batch has them.
 */
static void
builder_add(SlBatchBuilder *b, int32 offset_delta, int64 timestamp,
			const uint8 *key, int32 key_len,
			const uint8 *value, int32 value_len,
			const SlRecordHeader *headers, int nheaders,
			const uint8 *raw_headers, const uint8 *raw_end)
{
	uint64		zts;
	uint32		zoff;
	size_t		body;
	size_t		total;
	int			i;
	uint8	   *p;

	if (key == NULL || key_len < 0)
		key_len = -1;
	if (value == NULL || value_len < 0)
		value_len = -1;
	if (raw_headers == NULL && (nheaders < 0 || headers == NULL))
		nheaders = 0;

	if (b->record_count == 0)
	{
		if (!b->fixed_base_timestamp)
			b->base_timestamp = timestamp;
		b->max_timestamp = timestamp;
	}
	else if (timestamp > b->max_timestamp)
		b->max_timestamp = timestamp;

	zts = zz64((int64) ((uint64) timestamp - (uint64) b->base_timestamp));
	zoff = zz32(offset_delta);

	body = 1 + size_u64(zts) + size_u32(zoff);
	body += size_u32(zz32(key_len)) + (key_len > 0 ? key_len : 0);
	body += size_u32(zz32(value_len)) + (value_len > 0 ? value_len : 0);
	body += size_u32(zz32(nheaders));
	if (raw_headers != NULL)
		body += (size_t) (raw_end - raw_headers);
	else
	{
		for (i = 0; i < nheaders; i++)
		{
			const SlRecordHeader *h = &headers[i];
			int32		hk = h->key_len > 0 && h->key != NULL ? h->key_len : 0;
			int32		hv = (h->value == NULL || h->value_len < 0) ? -1 : h->value_len;

			body += size_u32(zz32(hk)) + hk;
			body += size_u32(zz32(hv)) + (hv > 0 ? hv : 0);
		}
	}
	total = size_u32(zz32((int32) body)) + body;

	if ((size_t) (b->records.maxlen - b->records.len) <= total)
		enlargeStringInfo(&b->records,
						  total >= (size_t) PG_INT32_MAX ? PG_INT32_MAX : (int) total);
	p = (uint8 *) b->records.data + b->records.len;

	p = put_u32(p, zz32((int32) body));
	*p++ = 0;					/* record attributes: unused */
	p = put_u64(p, zts);
	p = put_u32(p, zoff);
	p = put_u32(p, zz32(key_len));
	if (key_len > 0)
	{
		memcpy(p, key, key_len);
		p += key_len;
	}
	p = put_u32(p, zz32(value_len));
	if (value_len > 0)
	{
		memcpy(p, value, value_len);
		p += value_len;
	}
	p = put_u32(p, zz32(nheaders));
	if (raw_headers != NULL)
	{
		memcpy(p, raw_headers, raw_end - raw_headers);
		p += raw_end - raw_headers;
	}
	else
	{
		for (i = 0; i < nheaders; i++)
		{
			const SlRecordHeader *h = &headers[i];
			int32		hk = h->key_len > 0 && h->key != NULL ? h->key_len : 0;
			int32		hv = (h->value == NULL || h->value_len < 0) ? -1 : h->value_len;

			p = put_u32(p, zz32(hk));
			if (hk > 0)
			{
				memcpy(p, h->key, hk);
				p += hk;
			}
			p = put_u32(p, zz32(hv));
			if (hv > 0)
			{
				memcpy(p, h->value, hv);
				p += hv;
			}
		}
	}

	Assert((size_t) (p - (uint8 *) b->records.data - b->records.len) == total);
	b->records.len += (int) total;
	b->records.data[b->records.len] = '\0';
	b->record_count++;
	b->last_offset_delta = offset_delta;
}

void
SlBatchBuilderAdd(SlBatchBuilder *b, int64 timestamp,
				  const uint8 *key, int32 key_len,
				  const uint8 *value, int32 value_len,
				  const SlRecordHeader *headers, int nheaders)
{
	builder_add(b, b->record_count, timestamp, key, key_len, value, value_len,
				headers, nheaders, NULL, NULL);
}

void
SlBatchBuilderAddRecord(SlBatchBuilder *b, int32 offset_delta, const SlRecord *rec)
{
	builder_add(b, offset_delta, rec->timestamp, rec->key, rec->key_len,
				rec->value, rec->value_len, NULL, rec->header_count,
				rec->headers, rec->headers_end);
}

const char *
SlBatchBuilderFinish(SlBatchBuilder *b, StringInfo out)
{
	int			start = out->len;
	uint8	   *h;
	size_t		total;

	if (b->compression == SL_COMPRESSION_NONE)
		enlargeStringInfo(out, SL_BATCH_HEADER_SIZE + b->records.len);
	else
		enlargeStringInfo(out, SL_BATCH_HEADER_SIZE);
	out->len += SL_BATCH_HEADER_SIZE;

	if (b->compression == SL_COMPRESSION_NONE)
	{
		memcpy(out->data + out->len, b->records.data, b->records.len);
		out->len += b->records.len;
		out->data[out->len] = '\0';
	}
	else
	{
		const char *err = SlCompress(b->compression,
									 (const uint8 *) b->records.data,
									 (size_t) b->records.len, out);

		if (err)
		{
			out->len = start;
			out->data[start] = '\0';
			return err;
		}
	}

	total = (size_t) (out->len - start);
	if (total - SL_BATCH_LOG_OVERHEAD > (size_t) PG_INT32_MAX)
	{
		out->len = start;
		out->data[start] = '\0';
		return "record batch too large";
	}

	h = (uint8 *) out->data + start;
	SlStoreInt64(h + SL_BATCH_OFFSET_BASE_OFFSET, 0);
	SlStoreInt32(h + SL_BATCH_OFFSET_LENGTH, (int32) (total - SL_BATCH_LOG_OVERHEAD));
	SlStoreInt32(h + SL_BATCH_OFFSET_LEADER_EPOCH, 0);
	h[SL_BATCH_OFFSET_MAGIC] = SL_BATCH_MAGIC;
	SlStoreInt32(h + SL_BATCH_OFFSET_CRC, 0);
	SlStoreInt16(h + SL_BATCH_OFFSET_ATTRIBUTES,
				 (int16) ((b->compression & SL_BATCH_ATTR_COMPRESSION_MASK) | b->attributes));
	SlStoreInt32(h + OFF_LAST_OFFSET_DELTA, b->last_offset_delta);
	SlStoreInt64(h + OFF_BASE_TIMESTAMP, b->base_timestamp);
	SlStoreInt64(h + SL_BATCH_OFFSET_MAX_TIMESTAMP, b->max_timestamp);
	SlStoreInt64(h + OFF_PRODUCER_ID, b->producer_id);
	SlStoreInt16(h + OFF_PRODUCER_EPOCH, b->producer_epoch);
	SlStoreInt32(h + OFF_BASE_SEQUENCE, b->base_sequence);
	SlStoreInt32(h + OFF_RECORD_COUNT, b->record_count);
	return NULL;
}

const char *
SlBatchBuilderFinishSealed(SlBatchBuilder *b, StringInfo out, SlBatchHeader *hdr)
{
	int			start = out->len;
	const char *error = SlBatchBuilderFinish(b, out);
	uint8	   *batch = (uint8 *) out->data + start;
	size_t		len = (size_t) (out->len - start);

	if (error != NULL)
		return error;
	SlBatchSeal(batch, len, 0, -1);
	return SlBatchParseHeader(batch, len, hdr, true);
}

void
SlBatchSeal(uint8 *batch, size_t len, int64 base_offset,
			int64 log_append_time)
{
	size_t		size;
	int32		blen;

	if (len < SL_BATCH_HEADER_SIZE)
		return;
	blen = SlLoadInt32(batch + SL_BATCH_OFFSET_LENGTH);
	size = (size_t) blen + SL_BATCH_LOG_OVERHEAD;
	if (blen < 0 || size > len)
		size = len;

	SlStoreInt64(batch + SL_BATCH_OFFSET_BASE_OFFSET, base_offset);
	if (log_append_time >= 0)
	{
		int16		attrs = SlLoadInt16(batch + SL_BATCH_OFFSET_ATTRIBUTES);

		attrs |= SL_BATCH_ATTR_LOG_APPEND_TIME;
		SlStoreInt16(batch + SL_BATCH_OFFSET_ATTRIBUTES, attrs);
		SlStoreInt64(batch + SL_BATCH_OFFSET_MAX_TIMESTAMP, log_append_time);
	}
	SlStoreInt32(batch + SL_BATCH_OFFSET_CRC,
				 (int32) SlBatchComputeCrc(batch, size));
}

void
SlBatchSetProducer(uint8 *batch, size_t len, int64 producer_id,
				   int16 producer_epoch, int32 base_sequence)
{
	size_t		size;
	int32		blen;

	if (len < SL_BATCH_HEADER_SIZE)
		return;
	blen = SlLoadInt32(batch + SL_BATCH_OFFSET_LENGTH);
	size = (size_t) blen + SL_BATCH_LOG_OVERHEAD;
	if (blen < 0 || size > len)
		size = len;

	SlStoreInt64(batch + SL_BATCH_OFFSET_PRODUCER_ID, producer_id);
	SlStoreInt16(batch + SL_BATCH_OFFSET_PRODUCER_EPOCH, producer_epoch);
	SlStoreInt32(batch + SL_BATCH_OFFSET_BASE_SEQUENCE, base_sequence);
	SlStoreInt32(batch + SL_BATCH_OFFSET_CRC,
				 (int32) SlBatchComputeCrc(batch, size));
}
