/*
 * Preferred leader election (metadata/leader_election.c), Kafka's
 * ElectLeaders with election type PREFERRED (KIP-460) for both doors: the
 * Kafka API and streamlog.elect_leaders().
 */
#ifndef SL_METADATA_LEADER_ELECTION_H
#define SL_METADATA_LEADER_ELECTION_H

#include "nodes/pg_list.h"

/* Kafka error codes of an election (Kafka 3.9's Errors) */
#define SL_ELECTION_ERR_UNKNOWN_TOPIC_OR_PARTITION 3
#define SL_ELECTION_ERR_PREFERRED_LEADER_NOT_AVAILABLE 80
#define SL_ELECTION_ERR_ELIGIBLE_LEADERS_NOT_AVAILABLE 83
#define SL_ELECTION_ERR_ELECTION_NOT_NEEDED 84

/* A partition to elect for, and what came of it */
typedef struct SlElection
{
	char	   *topic;
	int32		partition;
	int16		error_code;		/* 0: its preferred replica leads now */
	char	   *message;		/* NULL when error_code is 0 */
} SlElection;

/*
 * Elect the preferred replica (the first) leader of each partition of
 * elections (a List of SlElection *, results filled in): a partition it
 * already leads gets ELECTION_NOT_NEEDED, one whose preferred replica is
 * not in the ISR or not alive PREFERRED_LEADER_NOT_AVAILABLE, the others
 * are handed to the controller in one request and answered once this
 * node's catalog has applied it.  Standalone, every partition is led by
 * its only replica: nothing to elect.  The caller checked authorization.
 */
extern void SlElectPreferredLeaders(List *elections, int timeout_ms);

/*
 * Elect leaders by election_type (cluster/controller.h's
 * SL_ELECTION_PREFERRED, as SlElectPreferredLeaders, or
 * SL_ELECTION_UNCLEAN): an unclean election is for partitions without a
 * leader (others get ELECTION_NOT_NEEDED); the controller takes an ISR
 * member if one is alive, else any live replica, alone in the ISR; with
 * no live replica, ELIGIBLE_LEADERS_NOT_AVAILABLE.
 */
extern void SlElectLeaders(List *elections, int election_type, int timeout_ms);

/* Every partition of every topic, as a List of SlElection * */
extern List *SlElectionsForAllPartitions(void);

#endif							/* SL_METADATA_LEADER_ELECTION_H */
