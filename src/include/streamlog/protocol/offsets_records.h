/*-------------------------------------------------------------------------
 * offsets_records.h
 *	  The records of Kafka's __consumer_offsets topic: keys and values of
 *	  committed offsets and of group metadata, in the versions Kafka 3.9's
 *	  classic group coordinator writes, and the partition a group's records
 *	  go to.
 *
 * A key is an int16 key version followed by the key's fields; a value an
 * int16 value version followed by its fields; a tombstone is a key with a
 * null value.  The versions written here are all non-flexible (no tagged
 * fields): Kafka's first flexible value versions are OffsetCommitValue 4
 * and GroupMetadataValue 4, which its classic coordinator does not write.
 *
 *	OffsetCommitKey v1		group string, topic string, partition int32
 *	OffsetCommitValue v3	offset int64, leader epoch int32, metadata
 *							string, commit timestamp int64
 *	GroupMetadataKey v2		group string
 *	GroupMetadataValue v3	protocol type string, generation int32,
 *							protocol and leader nullable strings, current
 *							state timestamp int64, members array of
 *							(member id, group instance id (nullable),
 *							client id, client host strings, rebalance and
 *							session timeouts int32, subscription and
 *							assignment bytes)
 *
 * Pure codec code: no ereport, errors are returned as static strings.
 *
 * IDENTIFICATION
 *	  src/include/streamlog/protocol/offsets_records.h
 *-------------------------------------------------------------------------
 */
#ifndef SL_OFFSETS_RECORDS_H
#define SL_OFFSETS_RECORDS_H

#include "streamlog/protocol/wire.h"

#include "streamlog/protocol/codec_base.h"

#define SL_OFFSET_COMMIT_KEY_VERSION	1
#define SL_OFFSET_COMMIT_VALUE_VERSION	3
#define SL_GROUP_METADATA_KEY_VERSION	2
#define SL_GROUP_METADATA_VALUE_VERSION	3

typedef struct SlOffsetCommitValue
{
	int64		offset;
	int32		leader_epoch;	/* -1 = unknown */
	const char *metadata;		/* NULL is written as "", as Kafka's NoMetadata */
	int64		commit_timestamp;	/* ms since the epoch */
} SlOffsetCommitValue;

typedef struct SlGroupMetadataMember
{
	const char *member_id;
	const char *instance_id;	/* NULL for a dynamic member */
	const char *client_id;
	const char *client_host;
	int32		rebalance_timeout_ms;
	int32		session_timeout_ms;
	const uint8 *subscription;	/* the member's metadata of the protocol */
	int32		subscription_len;
	const uint8 *assignment;
	int32		assignment_len;
} SlGroupMetadataMember;

typedef struct SlGroupMetadataValue
{
	const char *protocol_type;	/* NULL is written as "" */
	int32		generation;
	const char *protocol;		/* NULL if none */
	const char *leader;			/* NULL if none */
	int64		current_state_timestamp;	/* ms since the epoch; -1 = unknown */
	int			nmembers;
	const SlGroupMetadataMember *members;
} SlGroupMetadataValue;

/*
 * Java's String.hashCode of a UTF-8 string: s[0]*31^(n-1) + ... + s[n-1]
 * over its UTF-16 code units, in 32-bit wrapping arithmetic.  Bytes that
 * are not valid UTF-8 count as U+FFFD, as Java decodes them.
 */
extern int32 SlJavaStringHashCode(const char *utf8, size_t len);

/*
 * The partition of __consumer_offsets that holds a group's records, as
 * Kafka chooses it: Utils.abs(groupId.hashCode()) % partitions.
 */
extern int32 SlOffsetsPartitionFor(const char *group_id, int32 partitions);

/*
 * Append a key or value to buf.  Each returns NULL, or a static message if
 * a field could not be encoded as it is (a string longer than 32767
 * bytes); what was appended is then not to be used.
 */
extern const char *SlEncodeOffsetCommitKey(StringInfo buf, const char *group_id,
										   const char *topic, int32 partition);
extern const char *SlEncodeOffsetCommitValue(StringInfo buf,
											 const SlOffsetCommitValue *value);
extern const char *SlEncodeGroupMetadataKey(StringInfo buf, const char *group_id);
extern const char *SlEncodeGroupMetadataValue(StringInfo buf,
											  const SlGroupMetadataValue *value);

/*
 * What a coordinator loading a partition of the topic needs from a record
 * key: an offset commit's group, topic and partition (key versions 0 and
 * 1), or a group's metadata (version 2; only the group).  The strings are
 * views into the key (not terminated).
 */
typedef enum SlOffsetsKeyKind
{
	SL_OFFSETS_KEY_INVALID,
	SL_OFFSETS_KEY_OFFSET_COMMIT,
	SL_OFFSETS_KEY_GROUP_METADATA
} SlOffsetsKeyKind;

typedef struct SlOffsetsKey
{
	SlOffsetsKeyKind kind;
	SlStr		group_id;
	SlStr		topic;			/* offset commits only */
	int32		partition;		/* offset commits only */
} SlOffsetsKey;

/*
 * Decode a key; returns NULL, or a static message (kind then
 * SL_OFFSETS_KEY_INVALID) for bytes that are no key Kafka writes.
 */
extern const char *SlDecodeOffsetsKey(const uint8 *buf, size_t len, SlOffsetsKey *key);

/*
 * Decode an offset commit value, versions 0 to 3 (the fields a version
 * lacks are -1); metadata is a view, metadata_len its length.  NULL, or a
 * static message.
 */
extern const char *SlDecodeOffsetCommitValue(const uint8 *buf, size_t len,
											 SlOffsetCommitValue *value,
											 int32 *metadata_len);

#endif							/* SL_OFFSETS_RECORDS_H */
