/*
 * The preferred read replica of a consumer's fetch (see read_replica.h).
 */
#include "streamlog/protocol/codec_base.h"

#include <string.h>

#include "streamlog/storage/read_replica.h"

static bool
same_rack(const char *a, const char *b)
{
	return a != NULL && b != NULL && a[0] != '\0' && strcmp(a, b) == 0;
}

int32
SlPreferredReadReplica(const char *client_rack, const char *leader_rack,
					   const SlReadReplicaCandidate *followers, int n,
					   int64 fetch_offset)
{
	const SlReadReplicaCandidate *best = NULL;

	if (client_rack == NULL || client_rack[0] == '\0' || same_rack(client_rack, leader_rack))
		return -1;
	for (int i = 0; i < n; i++)
	{
		const SlReadReplicaCandidate *c = &followers[i];

		/* a lagging follower could keep the consumer behind forever */
		if (!c->in_isr || c->log_end < fetch_offset || !same_rack(client_rack, c->rack))
			continue;
		if (best == NULL || c->log_end > best->log_end ||
			(c->log_end == best->log_end &&
			 (c->last_caught_up_ms > best->last_caught_up_ms ||
			  (c->last_caught_up_ms == best->last_caught_up_ms &&
			   c->node_id > best->node_id))))
			best = c;
	}
	return best ? best->node_id : -1;
}
