/*
 * The metadata quorum: the one header behind which the Raft library
 * (Debian's libraft, canonical/raft 0.15) sits, so that swapping it (for
 * cowsql/raft, say) stays in quorum.c.  The state machine it replicates is
 * the metadata image (metadata_image.h): entries are record batches,
 * snapshots are encoded images.
 *
 * Threading and callbacks: everything runs on the caller's thread inside
 * SlQuorumRun; callbacks (apply, proposal done) only record what happened,
 * the caller acts after SlQuorumRun returns (CLUSTER.md section 2, rule 1).
 */
#ifndef SL_CLUSTER_QUORUM_H
#define SL_CLUSTER_QUORUM_H

#include "streamlog/cluster/metadata_image.h"

typedef struct SlQuorum SlQuorum;

typedef enum SlQuorumRole
{
	SL_QUORUM_VOTER = 0,
	SL_QUORUM_OBSERVER = 1		/* follows the log, does not vote (libraft's
								 * standby) */
} SlQuorumRole;

typedef struct SlQuorumMember
{
	int32_t		node_id;
	char		address[128];	/* host:port */
	SlQuorumRole role;
} SlQuorumMember;

typedef struct SlQuorumOptions
{
	int32_t		node_id;
	const char *address;		/* this node's Raft host:port */
	const char *dir;			/* its Raft directory */
	int			nvoters;		/* initial voters (bootstrap of a new log) */
	const SlQuorumMember *voters;
	unsigned	election_timeout_ms;	/* on average, a follower that hears no
										 * leader this long stands (each wait
										 * is drawn from 2/3 to 4/3 of it) */
	unsigned	heartbeat_timeout_ms;
	unsigned	snapshot_threshold; /* entries between snapshots */
} SlQuorumOptions;

/*
 * Open the quorum: its libuv loop, transport and log.  A new directory is
 * bootstrapped with the voters when this node is one of them; otherwise it
 * waits to be added.  NULL and a message in errbuf on failure.
 */
extern SlQuorum *SlQuorumOpen(const SlQuorumOptions *opts, char *errbuf, size_t errlen);
/* Stop and free (after a leadership transfer if asked and possible) */
extern void SlQuorumClose(SlQuorum *q, bool transfer_leadership);

/* The fd to wait on (libuv's backend fd) and how long to wait at most */
extern int	SlQuorumFd(SlQuorum *q);
extern int	SlQuorumTimeoutMs(SlQuorum *q);
/* Run whatever is ready, without blocking */
extern void SlQuorumRun(SlQuorum *q);

/*
 * Propose a record batch (only on the Raft leader); *token identifies it in
 * SlQuorumTakeDone.  false if not leader or out of memory.
 */
extern bool SlQuorumPropose(SlQuorum *q, const void *data, size_t len, uint64_t *token);

/*
 * Tell the followers the commit index now rather than at the next
 * heartbeat (leader only): libraft sends it with the next append, so this
 * appends a barrier entry, which changes nothing in the image.  For a
 * change that other nodes wait to apply.
 */
extern bool SlQuorumAnnounceCommit(SlQuorum *q);

/* A finished proposal: its index once committed and applied, or failure */
typedef struct SlQuorumDone
{
	uint64_t	token;
	bool		ok;
	uint64_t	index;
} SlQuorumDone;
/* Take finished proposals (up to max); returns how many */
extern int	SlQuorumTakeDone(SlQuorum *q, SlQuorumDone *done, int max);

/* The image as applied so far (valid until the next SlQuorumRun) */
extern const SlMetaImage *SlQuorumImage(SlQuorum *q);

/*
 * Membership, one change at a time (leader only; false otherwise).  Adding
 * a member that is there already changes its role.  *token (may be NULL)
 * identifies the change in SlQuorumTakeDone, with the index of the
 * configuration entry that carried it.
 */
extern bool SlQuorumAddMember(SlQuorum *q, int32_t node_id, const char *address,
							  SlQuorumRole role, uint64_t *token);
extern bool SlQuorumRemoveMember(SlQuorum *q, int32_t node_id, uint64_t *token);
extern bool SlQuorumTransferLeadership(SlQuorum *q, int32_t to_node_id);	/* 0: any */
/* Is a membership change or a leadership transfer under way? */
extern bool SlQuorumChangeBusy(SlQuorum *q);

typedef struct SlQuorumStatus
{
	int32_t		node_id;
	bool		is_leader;
	int32_t		leader_id;		/* -1 unknown */
	uint64_t	term;
	uint64_t	commit_index;
	uint64_t	applied_index;
	uint64_t	last_index;
	int			nmembers;
	SlQuorumMember members[16];
	uint64_t	match_index[16];	/* leader only: each member's progress */
	int64_t		last_contact_ms[16];	/* leader only: ms since it last
										 * sent to a member that answered
										 * within an election timeout; -1
										 * otherwise */
} SlQuorumStatus;
extern void SlQuorumGetStatus(SlQuorum *q, SlQuorumStatus *status);

/*
 * A follower that knows its leader is gone (not merely silent) calls an
 * election within two Raft heartbeats from now instead of a whole election
 * timeout after the leader's last message; SlQuorumElectionAsUsual undoes
 * it once a leader is known again (the short timeout must not outlive the
 * emergency: it would make elections out of a slow round).  Liveness only:
 * votes are granted by the same rules.
 */
extern void SlQuorumHurryElection(SlQuorum *q);
extern void SlQuorumElectionAsUsual(SlQuorum *q);

#endif							/* SL_CLUSTER_QUORUM_H */
