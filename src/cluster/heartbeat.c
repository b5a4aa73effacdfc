/*
 * The heartbeat datagrams' codec (see cluster/heartbeat.h).
 */
#include <string.h>

#include "streamlog/cluster/heartbeat.h"

/* A bounded writer: once a field does not fit, every later write fails */
typedef struct HbWriter
{
	uint8_t    *buf;
	size_t		size;
	size_t		len;
	bool		ok;
} HbWriter;

typedef struct HbReader
{
	const uint8_t *data;
	size_t		len;
	size_t		pos;
	bool		ok;
} HbReader;

static void
put_bytes(HbWriter *w, const void *p, size_t n)
{
	if (!w->ok || w->size - w->len < n)
	{
		w->ok = false;
		return;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void
put_u8(HbWriter *w, uint8_t v)
{
	put_bytes(w, &v, 1);
}

static void
put_u32(HbWriter *w, uint32_t v)
{
	uint8_t		b[4] = {v >> 24, v >> 16, v >> 8, v};

	put_bytes(w, b, 4);
}

static void
put_u64(HbWriter *w, uint64_t v)
{
	put_u32(w, (uint32_t) (v >> 32));
	put_u32(w, (uint32_t) v);
}

/* A string of a field of field_size bytes (with its terminator) */
static void
put_str(HbWriter *w, const char *s, size_t field_size)
{
	size_t		n = strnlen(s, field_size);
	uint8_t		b[2] = {n >> 8, n};

	if (n >= field_size)
	{
		w->ok = false;
		return;
	}
	put_bytes(w, b, 2);
	put_bytes(w, s, n);
}

static void
put_header(HbWriter *w, SlHeartbeatKind kind)
{
	put_bytes(w, SL_HEARTBEAT_MAGIC, 4);
	put_u8(w, SL_HEARTBEAT_VERSION);
	put_u8(w, (uint8_t) kind);
}

static const uint8_t *
get_bytes(HbReader *r, size_t n)
{
	const uint8_t *p;

	if (!r->ok || r->len - r->pos < n)
	{
		r->ok = false;
		return NULL;
	}
	p = r->data + r->pos;
	r->pos += n;
	return p;
}

static uint8_t
get_u8(HbReader *r)
{
	const uint8_t *p = get_bytes(r, 1);

	return p ? p[0] : 0;
}

static uint32_t
get_u32(HbReader *r)
{
	const uint8_t *p = get_bytes(r, 4);

	return p ? ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
		((uint32_t) p[2] << 8) | p[3] : 0;
}

static uint64_t
get_u64(HbReader *r)
{
	uint64_t	hi = get_u32(r);

	return (hi << 32) | get_u32(r);
}

/* Into a field of field_size bytes; a string that does not fit, or holds a NUL, fails */
static void
get_str(HbReader *r, char *out, size_t field_size)
{
	const uint8_t *p = get_bytes(r, 2);
	size_t		n;
	const uint8_t *s;

	out[0] = '\0';
	if (p == NULL)
		return;
	n = ((size_t) p[0] << 8) | p[1];
	if (n >= field_size)
	{
		r->ok = false;
		return;
	}
	s = get_bytes(r, n);
	if (s == NULL)
		return;
	if (memchr(s, '\0', n) != NULL)
	{
		r->ok = false;
		return;
	}
	memcpy(out, s, n);
	out[n] = '\0';
}

size_t
SlHeartbeatEncode(const SlHeartbeatMsg *msg, uint8_t *buf, size_t size)
{
	HbWriter	w = {buf, size, 0, true};

	put_header(&w, SL_HB_HEARTBEAT);
	put_str(&w, msg->cluster_id, sizeof(msg->cluster_id));
	put_u32(&w, (uint32_t) msg->node_id);
	put_u64(&w, msg->incarnation);
	put_u8(&w, msg->want_shutdown ? 1 : 0);
	put_str(&w, msg->kafka_host, sizeof(msg->kafka_host));
	put_u32(&w, (uint32_t) msg->kafka_port);
	put_str(&w, msg->sql_conninfo, sizeof(msg->sql_conninfo));
	put_str(&w, msg->raft_address, sizeof(msg->raft_address));
	put_str(&w, msg->rack, sizeof(msg->rack));
	return w.ok ? w.len : 0;
}

size_t
SlHeartbeatReplyEncode(const SlHeartbeatReply *reply, uint8_t *buf, size_t size)
{
	HbWriter	w = {buf, size, 0, true};

	put_header(&w, SL_HB_REPLY);
	put_str(&w, reply->cluster_id, sizeof(reply->cluster_id));
	put_u32(&w, (uint32_t) reply->controller_id);
	put_u32(&w, (uint32_t) reply->node_id);
	put_u64(&w, reply->incarnation);
	put_u8(&w, (uint8_t) reply->status);
	put_str(&w, reply->message, sizeof(reply->message));
	return w.ok ? w.len : 0;
}

int
SlHeartbeatKindOf(const uint8_t *data, size_t len)
{
	if (data == NULL || len < 6 || memcmp(data, SL_HEARTBEAT_MAGIC, 4) != 0 ||
		data[4] != SL_HEARTBEAT_VERSION)
		return 0;
	if (data[5] == SL_HB_HEARTBEAT || data[5] == SL_HB_REPLY)
		return data[5];
	return 0;
}

bool
SlHeartbeatDecode(const uint8_t *data, size_t len, SlHeartbeatMsg *msg)
{
	HbReader	r = {data, len, 6, true};
	uint8_t		flag;

	memset(msg, 0, sizeof(*msg));
	if (SlHeartbeatKindOf(data, len) != SL_HB_HEARTBEAT)
		return false;
	get_str(&r, msg->cluster_id, sizeof(msg->cluster_id));
	msg->node_id = (int32_t) get_u32(&r);
	msg->incarnation = get_u64(&r);
	flag = get_u8(&r);
	get_str(&r, msg->kafka_host, sizeof(msg->kafka_host));
	msg->kafka_port = (int32_t) get_u32(&r);
	get_str(&r, msg->sql_conninfo, sizeof(msg->sql_conninfo));
	get_str(&r, msg->raft_address, sizeof(msg->raft_address));
	get_str(&r, msg->rack, sizeof(msg->rack));
	if (!r.ok || r.pos != len || flag > 1 || msg->node_id < 0 ||
		msg->kafka_port < 0 || msg->kafka_port > 65535)
	{
		memset(msg, 0, sizeof(*msg));
		return false;
	}
	msg->want_shutdown = flag == 1;
	return true;
}

bool
SlHeartbeatReplyDecode(const uint8_t *data, size_t len, SlHeartbeatReply *reply)
{
	HbReader	r = {data, len, 6, true};
	uint8_t		status;

	memset(reply, 0, sizeof(*reply));
	if (SlHeartbeatKindOf(data, len) != SL_HB_REPLY)
		return false;
	get_str(&r, reply->cluster_id, sizeof(reply->cluster_id));
	reply->controller_id = (int32_t) get_u32(&r);
	reply->node_id = (int32_t) get_u32(&r);
	reply->incarnation = get_u64(&r);
	status = get_u8(&r);
	get_str(&r, reply->message, sizeof(reply->message));
	if (!r.ok || r.pos != len || status > SL_HB_REFUSED)
	{
		memset(reply, 0, sizeof(*reply));
		return false;
	}
	reply->status = (SlHeartbeatStatus) status;
	return true;
}
