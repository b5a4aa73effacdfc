/*-------------------------------------------------------------------------
 * controller_request.c
 *	  A controller request as bytes, for forwarding it from the node that
 *	  received it to the controller (streamlog._cluster_submit).
 *
 * Layout: magic "SLCR" (u32), format (u8), type (u8), then every field of
 * SlControllerRequest whatever the type (a request is small and rare; one
 * layout is one decoder to get right): topic name, partition count,
 * replication factor, configs, owner (strings, -1 for none), internal (u8),
 * the manual assignment (count, then an int32 array per partition), the
 * election pairs (count, topic ids, partitions), node id, topic uuid.
 *
 * IDENTIFICATION
 *	  src/cluster/controller_request.c
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "streamlog/cluster/controller.h"
#include "streamlog/cluster/internal/metadata_wire.h"

#define SL_CTRL_REQUEST_MAGIC 0x534c4352	/* "SLCR" */
#define SL_CTRL_REQUEST_FORMAT 2

/* Most partitions one request may assign by hand or elect */
#define SL_CTRL_MAX_PARTITIONS 100000

void
SlControllerRequestFree(SlControllerRequest *req)
{
	free(req->topic_name);
	free(req->config_json);
	free(req->owner);
	if (req->assignments != NULL)
		for (int32_t i = 0; i < req->nassignments; i++)
			free(req->assignments[i]);
	free(req->assignments);
	free(req->assignment_sizes);
	free(req->election_topic_ids);
	free(req->election_partitions);
	free(req->isr);
	memset(req, 0, sizeof(*req));
}

bool
SlControllerRequestEncode(const SlControllerRequest *req, void **data, size_t *len)
{
	SlWireWriter w;

	SlWireWriterInit(&w);
	if (req->nassignments < 0 || req->nassignments > SL_CTRL_MAX_PARTITIONS ||
		(req->election_type != SL_ELECTION_PREFERRED && req->election_type != SL_ELECTION_UNCLEAN) ||
		req->npartitions < 0 || req->npartitions > SL_CTRL_MAX_PARTITIONS ||
		(req->nassignments > 0 && (req->assignments == NULL || req->assignment_sizes == NULL)) ||
		(req->npartitions > 0 && (req->election_topic_ids == NULL || req->election_partitions == NULL)) ||
		(req->nisr > 0 && req->isr == NULL))
	{
		*data = NULL;
		*len = 0;
		return false;
	}
	SlWirePutU32(&w, SL_CTRL_REQUEST_MAGIC);
	SlWirePutU8(&w, SL_CTRL_REQUEST_FORMAT);
	SlWirePutU8(&w, (uint8_t) req->type);
	SlWirePutString(&w, req->topic_name);
	SlWirePutI32(&w, req->partition_count);
	SlWirePutI32(&w, req->replication_factor);
	SlWirePutString(&w, req->config_json);
	SlWirePutString(&w, req->owner);
	SlWirePutU8(&w, req->internal ? 1 : 0);
	SlWirePutI32(&w, req->nassignments);
	for (int32_t i = 0; i < req->nassignments; i++)
		SlWirePutI32Array(&w, req->assignments[i], req->assignment_sizes[i]);
	SlWirePutI32(&w, req->npartitions);
	for (int32_t i = 0; i < req->npartitions; i++)
	{
		SlWirePutI32(&w, req->election_topic_ids[i]);
		SlWirePutI32(&w, req->election_partitions[i]);
	}
	SlWirePutI32(&w, req->node_id);
	SlWirePutBytes(&w, req->topic_uuid, 16);
	SlWirePutI32(&w, req->topic_id);
	SlWirePutI32(&w, req->partition);
	SlWirePutI32(&w, req->leader_epoch);
	SlWirePutI32(&w, req->partition_epoch);
	/* an ISR is absent (-1) but where ALTER_PARTITION gives one */
	SlWirePutI32Array(&w, req->isr, req->nisr < 0 ? -1 : req->nisr);
	SlWirePutU8(&w, (uint8_t) req->election_type);
	return SlWireWriterFinish(&w, data, len);
}

bool
SlControllerRequestDecode(SlControllerRequest *req, const void *data, size_t len)
{
	SlWireReader r;
	uint32_t	magic;
	uint8_t		format;
	uint8_t		type;
	uint8_t		internal;
	uint8_t		election_type;
	int32_t		n;

	memset(req, 0, sizeof(*req));
	SlWireReaderInit(&r, data, len);
	magic = SlWireGetU32(&r);
	format = SlWireGetU8(&r);
	type = SlWireGetU8(&r);
	if (r.failed || magic != SL_CTRL_REQUEST_MAGIC || format != SL_CTRL_REQUEST_FORMAT ||
		type < SL_CTRL_CREATE_TOPIC || type > SL_CTRL_REQUEST_TYPE_MAX)
		return false;
	req->type = (SlControllerRequestType) type;
	SlWireGetString(&r, &req->topic_name, true);
	req->partition_count = SlWireGetI32(&r);
	req->replication_factor = SlWireGetI32(&r);
	SlWireGetString(&r, &req->config_json, true);
	SlWireGetString(&r, &req->owner, true);
	internal = SlWireGetU8(&r);
	if (internal > 1)
		r.failed = true;
	req->internal = internal == 1;

	/* each assignment takes at least its int32 count */
	n = SlWireGetI32(&r);
	if (r.failed || n < 0 || n > SL_CTRL_MAX_PARTITIONS || (size_t) n > SlWireRemaining(&r) / 4)
		goto bad;
	if (n > 0)
	{
		req->assignments = calloc((size_t) n, sizeof(int32_t *));
		req->assignment_sizes = calloc((size_t) n, sizeof(int32_t));
		if (req->assignments == NULL || req->assignment_sizes == NULL)
			goto bad;
		req->nassignments = n;
		for (int32_t i = 0; i < n && !r.failed; i++)
			SlWireGetI32Array(&r, &req->assignments[i], &req->assignment_sizes[i], false);
	}

	/* each election pair takes eight bytes */
	n = SlWireGetI32(&r);
	if (r.failed || n < 0 || n > SL_CTRL_MAX_PARTITIONS || (size_t) n > SlWireRemaining(&r) / 8)
		goto bad;
	if (n > 0)
	{
		req->election_topic_ids = malloc(sizeof(int32_t) * (size_t) n);
		req->election_partitions = malloc(sizeof(int32_t) * (size_t) n);
		if (req->election_topic_ids == NULL || req->election_partitions == NULL)
			goto bad;
		req->npartitions = n;
		for (int32_t i = 0; i < n; i++)
		{
			req->election_topic_ids[i] = SlWireGetI32(&r);
			req->election_partitions[i] = SlWireGetI32(&r);
		}
	}
	req->node_id = SlWireGetI32(&r);
	SlWireGetBytes(&r, req->topic_uuid, 16);
	req->topic_id = SlWireGetI32(&r);
	req->partition = SlWireGetI32(&r);
	req->leader_epoch = SlWireGetI32(&r);
	req->partition_epoch = SlWireGetI32(&r);
	SlWireGetI32Array(&r, &req->isr, &req->nisr, true);
	election_type = SlWireGetU8(&r);
	if (election_type != SL_ELECTION_PREFERRED && election_type != SL_ELECTION_UNCLEAN)
		r.failed = true;
	req->election_type = (int8_t) election_type;
	if (r.failed || SlWireRemaining(&r) != 0)
		goto bad;
	return true;

bad:
	SlControllerRequestFree(req);
	return false;
}
