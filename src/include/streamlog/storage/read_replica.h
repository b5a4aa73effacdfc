/*
 * Which replica a consumer should fetch from (KIP-392): Kafka's
 * RackAwareReplicaSelector as its leader applies it in
 * ReplicaManager.findPreferredReadReplica.  Candidates are the followers in
 * the ISR whose log reaches the fetch offset; if one or more are in the
 * client's rack and the leader is not, the most caught-up of them (largest
 * log end, then the most recently caught up, then the largest node id);
 * otherwise none (-1): the leader serves the fetch itself.
 *
 * Pure code over what the leader knows of its followers: compiled as
 * frontend code for test/unit/test_read_replica.c.
 */
#ifndef SL_STORAGE_READ_REPLICA_H
#define SL_STORAGE_READ_REPLICA_H

#include "streamlog/protocol/codec_base.h"

typedef struct SlReadReplicaCandidate
{
	int32		node_id;
	const char *rack;			/* "" or NULL if none */
	bool		in_isr;
	int64		log_end;		/* -1 if not known */
	int64		last_caught_up_ms;	/* -1 if never */
} SlReadReplicaCandidate;

extern int32 SlPreferredReadReplica(const char *client_rack, const char *leader_rack,
									const SlReadReplicaCandidate *followers, int n,
									int64 fetch_offset);

#endif							/* SL_STORAGE_READ_REPLICA_H */
