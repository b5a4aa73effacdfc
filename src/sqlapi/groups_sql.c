/*-------------------------------------------------------------------------
 * groups_sql.c
 *	  SQL: the Kafka group coordinator's groups and members
 *	  (streamlog.kafka_groups(), streamlog.kafka_group_members()).
 *
 * Membership lives only in the coordinator's shared memory (see
 * server/group_coordinator.h), so these functions read it through the
 * coordinator's own calls, which copy it out under its lock; committed
 * offsets are in streamlog.group_offset and read with plain SQL.  A group
 * that disappears between the listing and its description is skipped, and
 * so is a group the role may not DESCRIBE (as Kafka's ListGroups and
 * DescribeGroups leave it out).
 *
 * IDENTIFICATION
 *	  src/sqlapi/groups_sql.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "streamlog/server/group_coordinator.h"
#include "streamlog/shmem.h"
#include "streamlog/storage/acl.h"

PG_FUNCTION_INFO_V1(streamlog_kafka_groups);
PG_FUNCTION_INFO_V1(streamlog_kafka_group_members);

/*
 * Describe group_id into d if the role may DESCRIBE it (and it still
 * exists): the groups the views show
 */
static bool
describe_visible_group(const char *group_id, SlGroupDescription *d)
{
	return SlAclAllowed(GetUserId(), SL_RESOURCE_GROUP, group_id, SL_ACL_DESCRIBE) &&
		SlGroupDescribe(group_id, true, d);
}

/*
 * streamlog.kafka_groups(): every group the coordinator knows, with its
 * state, generation, protocol, leader and member count.
 */
Datum
streamlog_kafka_groups(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *listed;
	ListCell   *lc;

	SlCheckPreloaded();
	InitMaterializedSRF(fcinfo, 0);
	listed = SlGroupList();
	foreach(lc, listed)
	{
		SlGroupListing *l = lfirst(lc);
		SlGroupDescription d;
		Datum		values[7];
		bool		nulls[7] = {0};

		if (!describe_visible_group(l->group_id, &d))
			continue;
		values[0] = CStringGetTextDatum(l->group_id);
		values[1] = CStringGetTextDatum(SlGroupStateName(d.state));
		values[2] = CStringGetTextDatum(d.protocol_type);
		nulls[2] = d.protocol_type[0] == '\0';
		values[3] = CStringGetTextDatum(d.protocol_name);
		nulls[3] = d.protocol_name[0] == '\0';
		values[4] = Int32GetDatum(d.generation);
		values[5] = CStringGetTextDatum(d.leader);
		nulls[5] = d.leader[0] == '\0';
		values[6] = Int32GetDatum(d.nmembers);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

static Datum
bytes_datum(const uint8 *data, int32 len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	if (len > 0)
		memcpy(VARDATA(b), data, len);
	return PointerGetDatum(b);
}

/*
 * streamlog.kafka_group_members(): every member of every group, with its
 * client, timeouts, last heartbeat, metadata of the group's protocol and
 * assignment.
 */
Datum
streamlog_kafka_group_members(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *listed;
	ListCell   *lc;

	SlCheckPreloaded();
	InitMaterializedSRF(fcinfo, 0);
	listed = SlGroupList();
	foreach(lc, listed)
	{
		SlGroupListing *l = lfirst(lc);
		SlGroupDescription d;

		if (!describe_visible_group(l->group_id, &d))
			continue;
		for (int i = 0; i < d.nmembers; i++)
		{
			SlGroupMemberInfo *m = &d.members[i];
			Datum		values[10];
			bool		nulls[10] = {0};

			values[0] = CStringGetTextDatum(l->group_id);
			values[1] = CStringGetTextDatum(m->member_id);
			values[2] = m->instance_id ? CStringGetTextDatum(m->instance_id) : (Datum) 0;
			nulls[2] = m->instance_id == NULL;
			values[3] = CStringGetTextDatum(m->client_id);
			values[4] = CStringGetTextDatum(m->client_host);
			values[5] = Int32GetDatum(m->session_timeout_ms);
			values[6] = Int32GetDatum(m->rebalance_timeout_ms);
			values[7] = TimestampTzGetDatum(m->last_heartbeat);
			values[8] = bytes_datum(m->metadata, m->metadata_len);
			values[9] = bytes_datum(m->assignment, m->assignment_len);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}
