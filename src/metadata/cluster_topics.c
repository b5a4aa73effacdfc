/*
 * Topic administration handed to the cluster's controller, see
 * cluster_topics.h.  The request is an SlControllerRequest; the controller
 * answers with Kafka's error codes (TOPIC_ALREADY_EXISTS,
 * UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS, ...), passed on as they
 * are so that each door reports them its way.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "port.h"
#include "utils/jsonb.h"

#include "streamlog/cluster/controller.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/cluster_topics.h"
#include "streamlog/storage/storage.h"

/* Kafka's topic id for a new topic: a random (version 4) uuid */
static void
random_topic_uuid(uint8_t *uuid)
{
	if (!pg_strong_random(uuid, 16))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random topic id")));
	uuid[6] = (uuid[6] & 0x0f) | 0x40;
	uuid[8] = (uuid[8] & 0x3f) | 0x80;
}

static char *
config_text(Jsonb *config)
{
	if (config == NULL)
		return pstrdup("{}");
	return JsonbToCString(NULL, &config->root, VARSIZE(config));
}

static void
set_assignment(SlControllerRequest *req, const SlReplicaAssignment *assignment)
{
	if (assignment == NULL)
		return;
	req->nassignments = assignment->count;
	req->assignment_sizes = (int32_t *) assignment->sizes;
	req->assignments = (int32_t **) assignment->nodes;
}

static int16
submit(const SlControllerRequest *req, int timeout_ms, char **message)
{
	if (message)
		*message = NULL;
	return SlClusterSubmit(req, timeout_ms, message);
}

int16
SlClusterCreateTopic(const char *name, int32 partitions, int32 replication_factor,
					 Jsonb *config, bool internal, const SlReplicaAssignment *assignment,
					 int timeout_ms, char **message)
{
	SlControllerRequest req;

	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_CREATE_TOPIC;
	req.topic_name = (char *) name;
	req.partition_count = partitions;
	req.replication_factor = replication_factor;
	req.config_json = config_text(config);
	req.owner = internal ? NULL : GetUserNameFromId(GetUserId(), false);
	req.internal = internal;
	set_assignment(&req, assignment);
	random_topic_uuid(req.topic_uuid);
	return submit(&req, timeout_ms, message);
}

int16
SlClusterDeleteTopic(const char *name, int timeout_ms, char **message)
{
	SlControllerRequest req;

	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_DELETE_TOPIC;
	req.topic_name = (char *) name;
	return submit(&req, timeout_ms, message);
}

int16
SlClusterCreatePartitions(const char *name, int32 new_total,
						  const SlReplicaAssignment *assignment,
						  int timeout_ms, char **message)
{
	SlControllerRequest req;

	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_CREATE_PARTITIONS;
	req.topic_name = (char *) name;
	req.partition_count = new_total;
	req.replication_factor = 1;
	set_assignment(&req, assignment);
	return submit(&req, timeout_ms, message);
}

int16
SlClusterAlterTopicConfig(const char *name, Jsonb *config, int timeout_ms, char **message)
{
	SlControllerRequest req;

	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_ALTER_TOPIC_CONFIG;
	req.topic_name = (char *) name;
	req.config_json = config_text(config);
	return submit(&req, timeout_ms, message);
}
