/*
 * The records of __consumer_offsets: every key and value against bytes
 * worked out by hand from Kafka's schemas, and the partition of a group
 * against Java's String.hashCode.
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/protocol/offsets_records.h"
#include "unit.h"
#include "unit_hex.h"

static void
test_java_hash_code(void)
{
	/* Values of java.lang.String.hashCode() */
	CHECK_EQ_INT(SlJavaStringHashCode("", 0), 0);
	CHECK_EQ_INT(SlJavaStringHashCode("a", 1), 97);
	CHECK_EQ_INT(SlJavaStringHashCode("abc", 3), 96354);
	CHECK_EQ_INT(SlJavaStringHashCode("hello", 5), 99162322);
	CHECK_EQ_INT(SlJavaStringHashCode("my-group", 8), -1906497762);
	/* é is one UTF-16 unit (0xe9) but two UTF-8 bytes */
	CHECK_EQ_INT(SlJavaStringHashCode("group\xc3\xa9", 7), -1237460406);
	/* U+1F600 is the surrogate pair d83d de00 */
	CHECK_EQ_INT(SlJavaStringHashCode("g\xf0\x9f\x98\x80", 5), 1871882);
	/* A stray continuation byte is U+FFFD, as Java decodes it */
	CHECK_EQ_INT(SlJavaStringHashCode("a\x80", 2), 97 * 31 + 0xfffd);
	/* A truncated sequence: each of its bytes is U+FFFD */
	CHECK_EQ_INT(SlJavaStringHashCode("\xe2\x82", 2), 0xfffd * 31 + 0xfffd);
	/* Integer.MIN_VALUE, the one hash whose Math.abs stays negative */
	CHECK_EQ_INT(SlJavaStringHashCode("polygenelubricants", 18), PG_INT32_MIN);
}

static void
test_partition_for(void)
{
	/* Utils.abs(groupId.hashCode()) % 50 */
	CHECK_EQ_INT(SlOffsetsPartitionFor("", 50), 0);
	CHECK_EQ_INT(SlOffsetsPartitionFor("a", 50), 47);
	CHECK_EQ_INT(SlOffsetsPartitionFor("hello", 50), 22);
	CHECK_EQ_INT(SlOffsetsPartitionFor("my-group", 50), 12);
	CHECK_EQ_INT(SlOffsetsPartitionFor("console-consumer-12345", 50), 6);
	CHECK_EQ_INT(SlOffsetsPartitionFor("polygenelubricants", 50), 0);
	CHECK_EQ_INT(SlOffsetsPartitionFor("my-group", 1), 0);
	CHECK_EQ_INT(SlOffsetsPartitionFor("my-group", 7), 1906497762 % 7);
}

static void
test_offset_commit(void)
{
	StringInfoData buf;
	SlOffsetCommitValue v;

	initStringInfo(&buf);
	CHECK(SlEncodeOffsetCommitKey(&buf, "g", "t1", 3) == NULL);
	/* version 1, "g", "t1", partition 3 */
	CHECK_HEX(&buf, "0001" "00016" "7" "0002" "7431" "00000003");

	resetStringInfo(&buf);
	v.offset = 42;
	v.leader_epoch = -1;
	v.metadata = NULL;
	v.commit_timestamp = 1700000000123LL;	/* 0x18bcfe5687b */
	CHECK(SlEncodeOffsetCommitValue(&buf, &v) == NULL);
	/* version 3, offset, leader epoch, metadata "" (never null), timestamp */
	CHECK_HEX(&buf, "0003" "000000000000002a" "ffffffff" "0000" "0000018bcfe5687b");

	resetStringInfo(&buf);
	v.leader_epoch = 5;
	v.metadata = "md";
	CHECK(SlEncodeOffsetCommitValue(&buf, &v) == NULL);
	CHECK_HEX(&buf, "0003" "000000000000002a" "00000005" "0002" "6d64" "0000018bcfe5687b");
	pfree(buf.data);
}

static void
test_group_metadata(void)
{
	StringInfoData buf;
	SlGroupMetadataValue v;
	SlGroupMetadataMember m[2];
	const uint8 sub[] = {0xaa, 0xbb};
	const uint8 asg[] = {0xcc};

	initStringInfo(&buf);
	CHECK(SlEncodeGroupMetadataKey(&buf, "gr") == NULL);
	CHECK_HEX(&buf, "0002" "0002" "6772");

	/* An empty group: no protocol, no leader, no members */
	resetStringInfo(&buf);
	memset(&v, 0, sizeof(v));
	v.protocol_type = "consumer";
	v.generation = 2;
	v.current_state_timestamp = 1;
	CHECK(SlEncodeGroupMetadataValue(&buf, &v) == NULL);
	CHECK_HEX(&buf, "0003" "0008" "636f6e73756d6572" "00000002" "ffff" "ffff"
			  "0000000000000001" "00000000");

	/* Two members, one static */
	resetStringInfo(&buf);
	m[0].member_id = "m1";
	m[0].instance_id = NULL;
	m[0].client_id = "c";
	m[0].client_host = "/h";
	m[0].rebalance_timeout_ms = 300000;	/* 0x493e0 */
	m[0].session_timeout_ms = 10000;	/* 0x2710 */
	m[0].subscription = sub;
	m[0].subscription_len = 2;
	m[0].assignment = asg;
	m[0].assignment_len = 1;
	m[1] = m[0];
	m[1].member_id = "m2";
	m[1].instance_id = "i";
	m[1].subscription = NULL;
	m[1].assignment = NULL;
	v.protocol = "range";
	v.leader = "m1";
	v.generation = 7;
	v.nmembers = 2;
	v.members = m;
	CHECK(SlEncodeGroupMetadataValue(&buf, &v) == NULL);
	CHECK_HEX(&buf,
			  "0003" "0008" "636f6e73756d6572" "00000007" "0005" "72616e6765"
			  "0002" "6d31" "0000000000000001" "00000002"
			  /* m1: id, null instance id, client id, host, timeouts, bytes */
			  "0002" "6d31" "ffff" "0001" "63" "0002" "2f68" "000493e0" "00002710"
			  "00000002" "aabb" "00000001" "cc"
			  /* m2: a static member without subscription or assignment yet */
			  "0002" "6d32" "0001" "69" "0001" "63" "0002" "2f68" "000493e0" "00002710"
			  "00000000" "00000000");
	pfree(buf.data);
}

static void
test_too_long(void)
{
	StringInfoData buf;
	char	   *huge = palloc(40000);

	memset(huge, 'x', 39999);
	huge[39999] = '\0';
	initStringInfo(&buf);
	CHECK(SlEncodeGroupMetadataKey(&buf, huge) != NULL);
	resetStringInfo(&buf);
	CHECK(SlEncodeOffsetCommitKey(&buf, "g", "t", 0) == NULL);
	pfree(buf.data);
	pfree(huge);
}

/*
 * What a new coordinator reads back when it loads a partition: every key
 * and value the encoders write, the versions Kafka wrote before, and
 * bytes that are none of them (refused, never read past their end)
 */
static void
test_decode(void)
{
	StringInfoData buf;
	SlOffsetsKey k;
	SlOffsetCommitValue v;
	SlOffsetCommitValue out;
	int32		mlen;
	static const uint8 v1_value[] = {
		0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 1, 'm',
		0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 10
	};
	static const uint8 bad_version[] = {0, 9, 0, 1, 'g'};

	initStringInfo(&buf);
	CHECK(SlEncodeOffsetCommitKey(&buf, "grp", "topic", 7) == NULL);
	CHECK(SlDecodeOffsetsKey((const uint8 *) buf.data, buf.len, &k) == NULL);
	CHECK_EQ_INT(k.kind, SL_OFFSETS_KEY_OFFSET_COMMIT);
	CHECK_EQ_INT(k.group_id.len, 3);
	CHECK(memcmp(k.group_id.data, "grp", 3) == 0);
	CHECK_EQ_INT(k.topic.len, 5);
	CHECK(memcmp(k.topic.data, "topic", 5) == 0);
	CHECK_EQ_INT(k.partition, 7);
	/* every shorter prefix is refused */
	for (int len = 0; len < buf.len; len++)
		CHECK(SlDecodeOffsetsKey((const uint8 *) buf.data, len, &k) != NULL);

	resetStringInfo(&buf);
	CHECK(SlEncodeGroupMetadataKey(&buf, "grp") == NULL);
	CHECK(SlDecodeOffsetsKey((const uint8 *) buf.data, buf.len, &k) == NULL);
	CHECK_EQ_INT(k.kind, SL_OFFSETS_KEY_GROUP_METADATA);
	CHECK_EQ_INT(k.group_id.len, 3);
	CHECK(SlDecodeOffsetsKey(bad_version, sizeof(bad_version), &k) != NULL);
	CHECK_EQ_INT(k.kind, SL_OFFSETS_KEY_INVALID);
	CHECK(SlDecodeOffsetsKey(NULL, 0, &k) != NULL);

	resetStringInfo(&buf);
	v.offset = 42;
	v.leader_epoch = 5;
	v.metadata = "md";
	v.commit_timestamp = 1700000000123LL;
	CHECK(SlEncodeOffsetCommitValue(&buf, &v) == NULL);
	CHECK(SlDecodeOffsetCommitValue((const uint8 *) buf.data, buf.len, &out, &mlen) == NULL);
	CHECK(out.offset == 42);
	CHECK_EQ_INT(out.leader_epoch, 5);
	CHECK_EQ_INT(mlen, 2);
	CHECK(memcmp(out.metadata, "md", 2) == 0);
	CHECK(out.commit_timestamp == 1700000000123LL);
	for (int len = 0; len < buf.len; len++)
		CHECK(SlDecodeOffsetCommitValue((const uint8 *) buf.data, len, &out, &mlen) != NULL);

	/* version 1: offset 7, metadata "m", commit 9, expiry 10; no epoch */
	CHECK(SlDecodeOffsetCommitValue(v1_value, sizeof(v1_value), &out, &mlen) == NULL);
	CHECK(out.offset == 7);
	CHECK_EQ_INT(out.leader_epoch, -1);
	CHECK(out.commit_timestamp == 9);
	CHECK(SlDecodeOffsetCommitValue(bad_version, sizeof(bad_version), &out, &mlen) != NULL);
	pfree(buf.data);
}

int
main(void)
{
	test_java_hash_code();
	test_partition_for();
	test_offset_commit();
	test_group_metadata();
	test_too_long();
	test_decode();
	return UNIT_DONE();
}
