/*-------------------------------------------------------------------------
 * partition_change.c
 *	  A partition leader's ISR change, handed to the controller
 *	  (partition_change.h).
 *
 * The request names this node as the leader asking; the controller judges
 * it on its image (controller_alter_partition.c) and the answer comes back
 * once the change is committed and applied to this node's catalog, so
 * that the caller reads the new ISR and partition epoch there.  A node of
 * its own has one replica per partition: there is no ISR to change.
 *
 * IDENTIFICATION
 *	  src/metadata/partition_change.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "streamlog/guc.h"
#include "streamlog/cluster/controller.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/cluster_submit.h"
#include "streamlog/metadata/partition_change.h"

int16
SlClusterAlterPartition(int32 topic_id, int32 partition,
						int32 leader_epoch, int32 partition_epoch,
						const int32 *isr, int nisr,
						int timeout_ms, char **message)
{
	SlControllerRequest req;
	char	   *answer = NULL;
	int16		error_code;

	if (!SlClusterEnabled())
	{
		answer = pstrdup("a node of its own is the only replica of its partitions: "
						 "there is no ISR to change");
		error_code = SL_CLUSTER_ERR_INVALID_REQUEST;
	}
	else
	{
		memset(&req, 0, sizeof(req));
		req.type = SL_CTRL_ALTER_PARTITION;
		req.node_id = sl_node_id;
		req.topic_id = topic_id;
		req.partition = partition;
		req.leader_epoch = leader_epoch;
		req.partition_epoch = partition_epoch;
		req.isr = (int32_t *) isr;
		req.nisr = nisr;
		error_code = SlClusterSubmit(&req, timeout_ms, &answer);
	}
	if (message != NULL)
		*message = answer;
	return error_code;
}
