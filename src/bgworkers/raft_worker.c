/*
 * The Raft worker (CLUSTER.md section 2): one per node of a cluster.
 *
 * It runs the metadata quorum (cluster/quorum.c, libraft) in its
 * WaitEventSet next to its latch, postmaster death and its heartbeat
 * socket; libraft's callbacks only record, and the worker acts after each
 * SlQuorumRun:
 *
 *	 - controller: when this node is the Raft leader and the applied image
 *	   does not name it controller in this term, it proposes CONTROLLER{self,
 *	   term}; it acts as controller only once that record is applied and it
 *	   still leads in that term (P10).  As controller it runs
 *	   SlControllerTick over the heartbeats it heard, carries out the
 *	   requests backends queue in shared memory (controller requests become
 *	   record batches; membership changes go to libraft), one proposal at a
 *	   time so that each is decided on the image the previous one left, and
 *	   adds nodes it hears from that are not Raft members as observers.
 *	 - heartbeats (bgworkers/heartbeats.c): a UDP datagram every
 *	   streamlog.broker_heartbeat_interval_ms from the Raft address to the
 *	   Raft address of every voter; every voter keeps what it hears, so that
 *	   a new controller knows who is alive; the controller answers each, and
 *	   a node logs the answers that refuse it.
 *	 - publish: after each round the nodes, the controller and Raft's status
 *	   go to shared memory (metadata/cluster_state.c), and an image applied
 *	   past the catalog's index is written to the local catalog in a
 *	   transaction of its own (storage/cluster_catalog.c).
 *
 * Identity: the Raft directory $PGDATA/streamlog_raft holds the log (log/)
 * and an identity file naming the cluster id, the node id and the data
 * directory (st_dev, st_ino) it was made in.  A directory of another
 * cluster or node, or copied from another data directory (a pg_basebackup
 * clone), or a log that does not load, makes the worker refuse: it logs why
 * and how to rejoin, puts the reason in shared memory for the views, and
 * exits with 0 so that the postmaster does not start it again; the server
 * stays up.
 *
 * SIGTERM (pg_ctl stop -m fast or smart) is a controlled shutdown: the
 * heartbeats ask for it, the worker waits (at most ~5 s) until the applied
 * image shows the controller moved this node's leaderships, hands Raft
 * leadership to another voter if it has it, and exits.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/cluster/controller.h"
#include "streamlog/cluster/metadata_records.h"
#include "streamlog/cluster/quorum.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/group_placement.h"
#include "streamlog/metadata/producer_id_blocks.h"
#include "streamlog/storage/cluster_catalog.h"
#include "streamlog/bgworkers/heartbeats.h"
#include "streamlog/bgworkers/raft_worker.h"

/* Kafka error codes of slot results */
#define KAFKA_UNKNOWN_SERVER_ERROR (-1)
#define KAFKA_BROKER_NOT_AVAILABLE 8
#define KAFKA_NOT_CONTROLLER 41
#define KAFKA_INVALID_REQUEST 42

/* How long a controlled shutdown waits for the controller, at most */
#define SHUTDOWN_WAIT_MS 5000

#define RAFT_DIR_NAME "streamlog_raft"

#if PG_VERSION_NUM >= 170000
#define MY_PROCNO MyProcNumber
#else
#define MY_PROCNO (MyProc->pgprocno)
#endif

void
SlRaftWorkerRegister(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "streamlog");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "SlRaftWorkerMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "streamlog raft");
	snprintf(worker.bgw_type, BGW_MAXLEN, "streamlog raft");
	RegisterBackgroundWorker(&worker);
}

/* What the one proposal in flight is for */
typedef enum InflightKind
{
	INFLIGHT_NONE = 0,
	INFLIGHT_CONTROLLER,		/* CONTROLLER{self, term} */
	INFLIGHT_TICK,				/* SlControllerTick's records */
	INFLIGHT_REQUEST			/* a slot's controller request */
} InflightKind;

static volatile sig_atomic_t shutdown_requested = false;

static SlQuorum *quorum = NULL;

static InflightKind inflight = INFLIGHT_NONE;
static uint64 inflight_token = 0;
static int	inflight_slot = -1;
/* the answer of the request in flight once committed ("" for none) */
static char inflight_answer[128];
static uint64 change_token = 0;	/* membership change under way, 0 none */
static int	change_slot = -1;
static uint64 controller_proposed_term = 0;
static bool was_controller = false;
static int64 next_tick_ms = 0;
static int64 next_heartbeat_ms = 0;
static uint64 catalog_synced = 0;	/* Raft index the catalog covers */
static uint64 synced_image_index = 0;	/* image index written to it */
static uint64 woken_image_index = 0;	/* the catalog watchers were woken for */
static int32 hurried_against = 0;	/* the gone Raft leader an election was hurried for */
static int64 next_sync_attempt_ms = 0;

/*
 * The nodes fenced in the image the catalog was last written from (valid
 * once a sync succeeded): see publish()
 */
static int32 catalog_fenced[SL_MAX_NODES];
static int	ncatalog_fenced = 0;
static bool catalog_fenced_known = false;
static int64 shutdown_deadline_ms = 0;

static void
raft_worker_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	shutdown_requested = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

/* Milliseconds since the Unix epoch, as the heartbeats count time */
static int64
now_ms(void)
{
	return GetCurrentTimestamp() / 1000 +
		(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;
}

static void
publish_refusal(const char *why)
{
	LWLockAcquire(&sl_cluster->lock, LW_EXCLUSIVE);
	strlcpy(sl_cluster->refused, why, sizeof(sl_cluster->refused));
	sl_cluster->raft_worker_procno = -1;
	LWLockRelease(&sl_cluster->lock);
	ConditionVariableBroadcast(&sl_cluster->changed);
}

/*
 * Refuse to take part in the cluster: log why and how to rejoin, leave the
 * reason for the views, and exit so that the postmaster does not retry.
 */
static void
refuse(const char *hint, const char *fmt,...) pg_attribute_printf(2, 3);

static void
refuse(const char *hint, const char *fmt,...)
{
	char		why[512];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	publish_refusal(why);
	ereport(LOG,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("streamlog raft worker refuses to join the cluster: %s", why),
			 hint ? errhint("%s", hint) : 0));
	if (quorum)
		SlQuorumClose(quorum, false);
	quorum = NULL;
	proc_exit(0);
}

static const char *
rejoin_hint(const char *raft_dir)
{
	return psprintf("Remove \"%s\" and restart the server to join the cluster as a new member "
					"(a voter must first be removed from the quorum with streamlog.remove_voter "
					"on the controller, then added back).", raft_dir);
}

/*
 * The identity file: cluster id, node id and the data directory it was
 * made in.  Written once, when the Raft directory is created.
 */
static void
write_identity(const char *path, const struct stat *data_dir)
{
	char	   *tmp = psprintf("%s.tmp", path);
	char	   *text = psprintf("cluster_id=%s\nnode_id=%d\ndata_dir_dev=%llu\ndata_dir_ino=%llu\n",
								sl_cluster_id, sl_node_id,
								(unsigned long long) data_dir->st_dev,
								(unsigned long long) data_dir->st_ino);
	int			fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);

	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", tmp)));
	if (write(fd, text, strlen(text)) != (ssize_t) strlen(text) || pg_fsync(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmp)));
	CloseTransientFile(fd);
	durable_rename(tmp, path, ERROR);
}

/*
 * Check the Raft directory's identity, creating the directory if there is
 * none (then *created is set); refuses (never returns) on a mismatch.
 * Returns the log's path.
 */
static char *
check_identity(bool *created)
{
	char	   *raft_dir = psprintf("%s/%s", DataDir, RAFT_DIR_NAME);
	char	   *log_dir = psprintf("%s/log", raft_dir);
	char	   *identity = psprintf("%s/identity", raft_dir);
	struct stat data_st;
	struct stat st;
	FILE	   *f;
	char		line[256];
	char		cluster_id[128] = "";
	int			node_id = -1;
	unsigned long long dev = 0;
	unsigned long long ino = 0;

	if (stat(DataDir, &data_st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat data directory \"%s\": %m", DataDir)));
	if (stat(raft_dir, &st) != 0)
	{
		if (errno != ENOENT)
			refuse(rejoin_hint(raft_dir), "could not stat \"%s\": %m", raft_dir);
		if (MakePGDirectory(raft_dir) != 0 || MakePGDirectory(log_dir) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create directory \"%s\": %m", log_dir)));
		write_identity(identity, &data_st);
		fsync_fname(raft_dir, true);
		*created = true;
		ereport(LOG,
				(errmsg("streamlog created the Raft directory \"%s\" for node %d of cluster \"%s\"",
						raft_dir, sl_node_id, sl_cluster_id)));
		return log_dir;
	}

	f = AllocateFile(identity, "r");
	if (f == NULL)
		refuse(rejoin_hint(raft_dir), "the Raft directory \"%s\" has no identity file (%m): it is not one this node made",
			   raft_dir);
	while (fgets(line, sizeof(line), f) != NULL)
	{
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "cluster_id=", 11) == 0)
			strlcpy(cluster_id, line + 11, sizeof(cluster_id));
		else if (strncmp(line, "node_id=", 8) == 0)
			node_id = atoi(line + 8);
		else if (strncmp(line, "data_dir_dev=", 13) == 0)
			dev = strtoull(line + 13, NULL, 10);
		else if (strncmp(line, "data_dir_ino=", 13) == 0)
			ino = strtoull(line + 13, NULL, 10);
	}
	FreeFile(f);

	if (strcmp(cluster_id, sl_cluster_id) != 0)
		refuse(psprintf("Set streamlog.cluster_id to '%s' to start this node in its cluster, or %s",
						cluster_id, rejoin_hint(raft_dir)),
			   "the Raft directory \"%s\" belongs to cluster \"%s\", not to \"%s\" (streamlog.cluster_id)",
			   raft_dir, cluster_id, sl_cluster_id);
	if (node_id != sl_node_id)
		refuse(rejoin_hint(raft_dir),
			   "the Raft directory \"%s\" belongs to node %d, not to node %d (streamlog.node_id)",
			   raft_dir, node_id, sl_node_id);
	if (dev != (unsigned long long) data_st.st_dev || ino != (unsigned long long) data_st.st_ino)
		refuse(rejoin_hint(raft_dir),
			   "the Raft directory \"%s\" was copied from another data directory (a pg_basebackup clone?): "
			   "a copy must not join as its source",
			   raft_dir);
	if (stat(log_dir, &st) != 0 || !S_ISDIR(st.st_mode))
		refuse(rejoin_hint(raft_dir), "the Raft directory \"%s\" has lost its log", raft_dir);
	return log_dir;
}

/* Propose a batch; false if it could not be */
static bool
propose_batch(const SlMetaBatch *batch, InflightKind kind, int slot)
{
	void	   *data = NULL;
	size_t		len = 0;
	uint64_t	token = 0;
	bool		ok;

	if (!SlMetaBatchEncode(batch, &data, &len))
		return false;
	ok = SlQuorumPropose(quorum, data, len, &token);
	free(data);
	if (ok)
	{
		inflight = kind;
		inflight_token = token;
		inflight_slot = slot;
	}
	return ok;
}

static void
propose_controller(uint64 term)
{
	SlMetaBatch batch;
	SlMetaRecord rec;

	SlMetaBatchInit(&batch);
	memset(&rec, 0, sizeof(rec));
	rec.type = SL_META_CONTROLLER;
	rec.node_id = sl_node_id;
	rec.controller_epoch = term;
	if (SlMetaBatchAdd(&batch, &rec) && propose_batch(&batch, INFLIGHT_CONTROLLER, -1))
		controller_proposed_term = term;
	SlMetaBatchFree(&batch);
}

/*
 * Say why each node the tick fences is fenced: the server log is where a
 * failover's timeline is read (and the tests check which rule fired)
 */
static void
log_fences(const SlMetaBatch *batch, int64 now)
{
	for (int i = 0; i < batch->nrecords; i++)
	{
		const SlMetaRecord *rec = &batch->records[i];
		int64		heard;

		if (rec->type != SL_META_FENCE_NODE)
			continue;
		heard = SlHeartbeatsLastHeard(rec->node.node_id, rec->node.incarnation);
		if (SlHeartbeatsGone(rec->node.node_id, rec->node.incarnation))
			ereport(LOG,
					(errmsg("streamlog controller fences node %d: it is gone (its Raft address refused a connection, last heartbeat %lld ms ago)",
							rec->node.node_id, (long long) (now - heard))));
		else
			ereport(LOG,
					(errmsg("streamlog controller fences node %d: no heartbeat for %lld ms (session timeout %d ms)",
							rec->node.node_id, (long long) (now - heard),
							sl_broker_session_timeout_ms)));
	}
}

/* Liveness: SlControllerTick over the heartbeats heard */
static void
controller_tick(const SlMetaImage *image, int64 now)
{
	SlHeartbeat hbs[SL_MAX_HEARD_HEARTBEATS];
	int			n = SlHeartbeatsCollect(hbs, lengthof(hbs));
	SlMetaBatch batch;

	SlMetaBatchInit(&batch);
	SlControllerTick(image, hbs, n, now, sl_broker_session_timeout_ms, &batch);
	if (batch.nrecords > 0 && propose_batch(&batch, INFLIGHT_TICK, -1))
		log_fences(&batch, now);
	SlMetaBatchFree(&batch);
}

/* Fill in a slot's result (the lock is not held); frees it if abandoned */
static void
finish_slot(int i, int16 error_code, const char *message, uint64 index)
{
	SlClusterSlot *slot = &sl_cluster->slots[i];

	LWLockAcquire(&sl_cluster->lock, LW_EXCLUSIVE);
	if (slot->abandoned)
	{
		slot->abandoned = false;
		slot->state = SL_SLOT_FREE;
	}
	else
	{
		slot->error_code = error_code;
		strlcpy(slot->message, message ? message : "", sizeof(slot->message));
		slot->index = index;
		slot->state = SL_SLOT_DONE;
	}
	LWLockRelease(&sl_cluster->lock);
	ConditionVariableBroadcast(&sl_cluster->changed);
}

/* Take the first queued slot whose kind passes; -1 if none */
static int
take_slot(bool requests, bool changes)
{
	int			taken = -1;

	LWLockAcquire(&sl_cluster->lock, LW_EXCLUSIVE);
	for (int i = 0; i < SL_CLUSTER_QUEUE_SLOTS; i++)
	{
		SlClusterSlot *slot = &sl_cluster->slots[i];
		bool		is_request = slot->kind == SL_SLOT_CONTROLLER_REQUEST;

		if (slot->state == SL_SLOT_QUEUED && (is_request ? requests : changes))
		{
			slot->state = SL_SLOT_WORKING;
			taken = i;
			break;
		}
	}
	LWLockRelease(&sl_cluster->lock);
	return taken;
}

/* Refuse every queued slot: this node is not the controller */
static void
refuse_queued_slots(int32 controller_id)
{
	int			i;
	char		message[128];

	snprintf(message, sizeof(message), "node %d is not the controller (the controller is %d)",
			 sl_node_id, controller_id);
	while ((i = take_slot(true, true)) >= 0)
		finish_slot(i, KAFKA_NOT_CONTROLLER, message, 0);
}

/* Carry out a controller request: records proposed, or an error */
static void
start_request(int i, const SlMetaImage *image)
{
	SlClusterSlot *slot = &sl_cluster->slots[i];
	SlControllerRequest req;
	SlMetaBatch batch;
	char		errbuf[256] = "";
	int16		err;

	/* The bytes are the slot owner's until DONE; we own it while WORKING */
	if (!SlControllerRequestDecode(&req, slot->request, slot->request_len))
	{
		finish_slot(i, KAFKA_INVALID_REQUEST, "the cluster request does not decode", 0);
		return;
	}
	SlMetaBatchInit(&batch);
	err = SlControllerHandleRequest(image, &req, &batch, errbuf, sizeof(errbuf));
	if (err != 0)
		finish_slot(i, err, errbuf, 0);
	else if (batch.nrecords == 0)
		finish_slot(i, 0, NULL, image->applied_index);	/* nothing to change */
	else if (!propose_batch(&batch, INFLIGHT_REQUEST, i))
		finish_slot(i, KAFKA_NOT_CONTROLLER, "this node lost the Raft leadership", 0);
	else if (!SlProducerIdBlockFormat(&batch, inflight_answer, sizeof(inflight_answer)))
		inflight_answer[0] = '\0';	/* the block, for who asked for producer ids */
	SlMetaBatchFree(&batch);
	SlControllerRequestFree(&req);
}

/* Carry out a membership slot */
static void
start_change(int i, const SlMetaImage *image)
{
	SlClusterSlot *slot = &sl_cluster->slots[i];
	const SlMetaNode *node = SlMetaImageNode(image, slot->node_id);
	uint64_t	token = 0;
	bool		ok = false;
	char		message[256];

	switch (slot->kind)
	{
		case SL_SLOT_ADD_VOTER:
		case SL_SLOT_ADD_OBSERVER:
			if (node == NULL || node->raft_address == NULL || node->raft_address[0] == '\0')
			{
				snprintf(message, sizeof(message), "node %d has not registered with the controller",
						 slot->node_id);
				finish_slot(i, KAFKA_BROKER_NOT_AVAILABLE, message, 0);
				return;
			}
			ok = SlQuorumAddMember(quorum, slot->node_id, node->raft_address,
								   slot->kind == SL_SLOT_ADD_VOTER ? SL_QUORUM_VOTER : SL_QUORUM_OBSERVER,
								   &token);
			break;
		case SL_SLOT_REMOVE_MEMBER:
			ok = SlQuorumRemoveMember(quorum, slot->node_id, &token);
			break;
		case SL_SLOT_TRANSFER_LEADERSHIP:
			if (SlQuorumTransferLeadership(quorum, slot->node_id))
				finish_slot(i, 0, NULL, 0);
			else
				finish_slot(i, KAFKA_INVALID_REQUEST, "leadership cannot be transferred there", 0);
			return;
		default:
			finish_slot(i, KAFKA_INVALID_REQUEST, "unknown kind of cluster request", 0);
			return;
	}
	if (!ok)
	{
		snprintf(message, sizeof(message), "the membership of node %d cannot change that way now",
				 slot->node_id);
		finish_slot(i, KAFKA_INVALID_REQUEST, message, 0);
		return;
	}
	change_token = token;
	change_slot = i;
}

/* Add one node we hear from that is not a Raft member, as an observer */
static void
add_observers(const SlQuorumStatus *st, const SlMetaImage *image, int64 now)
{
	for (int i = 0; i < image->nnodes; i++)
	{
		const SlMetaNode *node = &image->nodes[i];
		int64		heard_ms;
		bool		member = false;
		uint64_t	token;

		if (node->fenced || node->raft_address == NULL || node->raft_address[0] == '\0')
			continue;
		for (int m = 0; m < st->nmembers; m++)
			member |= st->members[m].node_id == node->node_id;
		if (member)
			continue;
		heard_ms = SlHeartbeatsLastHeard(node->node_id, node->incarnation);
		if (heard_ms == 0 || now - heard_ms > sl_broker_session_timeout_ms)
			continue;
		if (SlQuorumAddMember(quorum, node->node_id, node->raft_address, SL_QUORUM_OBSERVER, &token))
		{
			change_token = token;
			change_slot = -1;
			ereport(LOG,
					(errmsg("streamlog controller adds node %d (%s) to the metadata quorum as an observer",
							node->node_id, node->raft_address)));
		}
		return;					/* one at a time */
	}
}

/* Finished proposals and changes: their slots get their results */
static void
take_done(void)
{
	SlQuorumDone done[32];
	int			n;

	while ((n = SlQuorumTakeDone(quorum, done, lengthof(done))) > 0)
		for (int k = 0; k < n; k++)
		{
			if (inflight != INFLIGHT_NONE && done[k].token == inflight_token)
			{
				if (inflight == INFLIGHT_REQUEST && inflight_slot >= 0)
				{
					SlQuorumStatus st;

					SlQuorumGetStatus(quorum, &st);
					if (done[k].ok)
					{
						finish_slot(inflight_slot, 0,
									inflight_answer[0] ? inflight_answer : NULL,
									done[k].index);
						/* the requester may wait for its node to apply it */
						(void) SlQuorumAnnounceCommit(quorum);
					}
					else if (!st.is_leader)
						finish_slot(inflight_slot, KAFKA_NOT_CONTROLLER,
									"this node lost the Raft leadership before the change was committed",
									0);
					else
						/* committed, but it no longer applied: no use retrying */
						finish_slot(inflight_slot, KAFKA_UNKNOWN_SERVER_ERROR,
									"the change was committed but did not apply to the metadata",
									done[k].index);
				}
				if (inflight == INFLIGHT_CONTROLLER && !done[k].ok)
					controller_proposed_term = 0;	/* try again */
				inflight = INFLIGHT_NONE;
				inflight_slot = -1;
			}
			else if (change_token != 0 && done[k].token == change_token)
			{
				if (change_slot >= 0)
					finish_slot(change_slot, done[k].ok ? 0 : KAFKA_INVALID_REQUEST,
								done[k].ok ? NULL : "the membership change failed",
								done[k].index);
				change_token = 0;
				change_slot = -1;
			}
		}
}

/*
 * A follower watches its Raft leader as the controller watches every node:
 * when the leader's heartbeat is late and its Raft address refuses, the
 * leader is gone, and the election is called at once rather than a whole
 * election timeout after its last message (a dead controller is replaced,
 * and fences the dead node, that much sooner).  Back to the usual timeout
 * once a leader is known again, or the leader heartbeats after all.
 */
static void
watch_raft_leader(const SlQuorumStatus *st, const SlMetaImage *image, int64 now)
{
	const SlMetaNode *leader = st->leader_id > 0 ? SlMetaImageNode(image, st->leader_id) : NULL;

	if (hurried_against != 0 &&
		(st->is_leader || (st->leader_id > 0 && st->leader_id != hurried_against) ||
		 (st->leader_id == hurried_against && leader != NULL &&
		  !SlHeartbeatsGone(leader->node_id, leader->incarnation))))
	{
		SlQuorumElectionAsUsual(quorum);
		hurried_against = 0;
	}
	if (st->is_leader || leader == NULL || leader->node_id == sl_node_id)
		return;
	(void) SlHeartbeatsProbe(image, now, leader->node_id);
	if (hurried_against == 0 && SlHeartbeatsGone(leader->node_id, leader->incarnation))
	{
		ereport(LOG,
				(errmsg("streamlog node %d calls a Raft election: leader %d is gone (its Raft address refused a connection)",
						sl_node_id, leader->node_id)));
		SlQuorumHurryElection(quorum);
		hurried_against = leader->node_id;
	}
}

/* Act on the round: controller duties, or refusing requests */
static bool
act(const SlQuorumStatus *st, const SlMetaImage *image, int64 now)
{
	bool		controller = st->is_leader && image->controller_id == sl_node_id &&
		image->controller_epoch == st->term;

	take_done();
	watch_raft_leader(st, image, now);

	/* P10: Raft leadership alone is not enough; take office by a record */
	if (st->is_leader && !controller && inflight == INFLIGHT_NONE &&
		controller_proposed_term != st->term)
		propose_controller(st->term);

	if (controller && !was_controller)
	{
		ereport(LOG,
				(errmsg("streamlog node %d is the controller (epoch %llu)",
						sl_node_id, (unsigned long long) st->term)));
		SlHeartbeatsTouchRegistered(image, now);
		next_tick_ms = now;
	}
	was_controller = controller;

	if (!controller)
	{
		if (!st->is_leader)
		{
			/*
			 * What was in flight will not commit through us: its slots are
			 * answered now (libraft's late failure callbacks carry tokens no
			 * longer waited for), and the requester retries elsewhere
			 */
			if (inflight == INFLIGHT_REQUEST && inflight_slot >= 0)
				finish_slot(inflight_slot, KAFKA_NOT_CONTROLLER,
							"this node lost the Raft leadership before the change was committed", 0);
			if (change_token != 0 && change_slot >= 0)
				finish_slot(change_slot, KAFKA_NOT_CONTROLLER,
							"this node lost the Raft leadership before the membership change was committed", 0);
			inflight = INFLIGHT_NONE;
			inflight_slot = -1;
			change_token = 0;
			change_slot = -1;
		}
		refuse_queued_slots(image->controller_id);
		return false;
	}

	/* a node found gone is fenced now, not at the next tick */
	if (SlHeartbeatsProbe(image, now, -1))
		next_tick_ms = now;
	if (inflight == INFLIGHT_NONE && now >= next_tick_ms)
	{
		controller_tick(image, now);
		next_tick_ms = now + sl_broker_heartbeat_interval_ms;
	}
	if (inflight == INFLIGHT_NONE)
	{
		int			i = take_slot(true, false);

		if (i >= 0)
			start_request(i, image);
	}
	if (change_token == 0 && !SlQuorumChangeBusy(quorum))
	{
		int			i = take_slot(false, true);

		if (i >= 0)
			start_change(i, image);
		else
			add_observers(st, image, now);
	}
	return true;
}

/* Was node fenced in the image the catalog holds? */
static bool
fenced_in_catalog(int32 node_id)
{
	for (int i = 0; i < ncatalog_fenced; i++)
		if (catalog_fenced[i] == node_id)
			return true;
	return false;
}

/*
 * Write what this node knows into shared memory; true if it changed.
 *
 * The catalog (leaderships) and this view (which nodes are fenced) are
 * written one after the other, and a broker answers Metadata from both:
 * the leaders from the catalog, the offline replicas from the view.  A
 * fence moves leaderships away (leader -1 where no other replica is in
 * the ISR), an unfence gives them back, so either order alone would let
 * a broker see a partition without a leader and without an offline
 * replica.  So while the catalog is behind the image (catalog_behind), a
 * node fenced in either is shown fenced: the view is published that way
 * before the catalog is written, and as the image has it only after.
 */
static bool
publish(const SlQuorumStatus *st, const SlMetaImage *image, bool catalog_behind)
{
	bool		changed;
	int			n = 0;
	SlClusterNode *nodes = palloc0(sizeof(SlClusterNode) * SL_MAX_NODES);

	for (int i = 0; i < image->nnodes && n < SL_MAX_NODES; i++)
	{
		const SlMetaNode *src = &image->nodes[i];
		SlClusterNode *dst = &nodes[n++];

		dst->node_id = src->node_id;
		dst->incarnation = src->incarnation;
		strlcpy(dst->kafka_host, src->kafka_host ? src->kafka_host : "", sizeof(dst->kafka_host));
		dst->kafka_port = src->kafka_port;
		strlcpy(dst->sql_conninfo, src->sql_conninfo ? src->sql_conninfo : "", sizeof(dst->sql_conninfo));
		strlcpy(dst->raft_address, src->raft_address ? src->raft_address : "", sizeof(dst->raft_address));
		strlcpy(dst->rack, src->rack ? src->rack : "", sizeof(dst->rack));
		dst->fenced = src->fenced ||
			(catalog_behind && catalog_fenced_known && fenced_in_catalog(src->node_id));
		dst->shutting_down = src->shutting_down;
		dst->last_heartbeat_ms = SlHeartbeatsLastHeard(src->node_id, src->incarnation);
	}
	/* Raft members not registered (yet) are shown too, fenced */
	for (int m = 0; m < st->nmembers && n < SL_MAX_NODES; m++)
	{
		bool		known = false;

		for (int i = 0; i < n; i++)
			known |= nodes[i].node_id == st->members[m].node_id;
		if (known)
			continue;
		nodes[n].node_id = st->members[m].node_id;
		strlcpy(nodes[n].raft_address, st->members[m].address, sizeof(nodes[n].raft_address));
		nodes[n].fenced = true;
		n++;
	}
	for (int i = 0; i < n; i++)
		for (int m = 0; m < st->nmembers; m++)
			if (st->members[m].node_id == nodes[i].node_id)
			{
				nodes[i].voter = st->members[m].role == SL_QUORUM_VOTER;
				nodes[i].observer = st->members[m].role == SL_QUORUM_OBSERVER;
			}

	LWLockAcquire(&sl_cluster->lock, LW_EXCLUSIVE);
	changed = sl_cluster->applied_index != image->applied_index ||
		sl_cluster->controller_id != image->controller_id ||
		sl_cluster->raft.term != st->term ||
		sl_cluster->raft.leader_id != st->leader_id ||
		sl_cluster->raft.nmembers != st->nmembers ||
		sl_cluster->catalog_synced_index != catalog_synced;
	sl_cluster->raft = *st;
	sl_cluster->controller_id = image->controller_id;
	sl_cluster->controller_epoch = image->controller_epoch;
	sl_cluster->applied_index = image->applied_index;
	sl_cluster->catalog_synced_index = catalog_synced;
	sl_cluster->nnodes = n;
	memcpy(sl_cluster->nodes, nodes, sizeof(SlClusterNode) * n);
	sl_cluster->generation++;
	LWLockRelease(&sl_cluster->lock);
	pfree(nodes);
	if (changed)
		ConditionVariableBroadcast(&sl_cluster->changed);
	return changed;
}

static bool
extension_installed(void)
{
	return OidIsValid(get_extension_oid("streamlog", true));
}

/* The catalog's synced index, at start (0 without the extension) */
static uint64
read_catalog_synced(void)
{
	uint64		index = 0;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		if (extension_installed())
			index = SlClusterCatalogSyncedIndex();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	return index;
}

/*
 * Bring the local catalog to the image, in a transaction of its own; an
 * error is logged and the next round tries again (a second later)
 */
static void
sync_catalog(const SlMetaImage *image, uint64 raft_applied, int64 now)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	/*
	 * Entries that are not records (membership changes) leave the image as
	 * it was: the catalog covers them as soon as it matches the image
	 */
	if (image->applied_index <= synced_image_index)
	{
		if (raft_applied > catalog_synced)
			catalog_synced = raft_applied;
		return;
	}
	if (now < next_sync_attempt_ms)
		return;
	pgstat_report_activity(STATE_RUNNING, "writing the cluster metadata to the catalog");
	PG_TRY();
	{
		bool		installed;

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		installed = extension_installed();
		if (installed)
			SlClusterCatalogSync(image);
		PopActiveSnapshot();
		CommitTransactionCommand();
		if (installed)
		{
			synced_image_index = image->applied_index;
			catalog_synced = Max(raft_applied, image->applied_index);
			ncatalog_fenced = 0;
			for (int i = 0; i < image->nnodes && ncatalog_fenced < SL_MAX_NODES; i++)
				if (image->nodes[i].fenced)
					catalog_fenced[ncatalog_fenced++] = image->nodes[i].node_id;
			catalog_fenced_known = true;
		}
		else
			next_sync_attempt_ms = now + 1000;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		next_sync_attempt_ms = now + 1000;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	pgstat_report_activity(STATE_IDLE, NULL);
}

static void
detach_shmem(int code, Datum arg)
{
	LWLockAcquire(&sl_cluster->lock, LW_EXCLUSIVE);
	if (sl_cluster->raft_worker_procno == MY_PROCNO)
		sl_cluster->raft_worker_procno = -1;
	/* Results of requests it will never finish */
	for (int i = 0; i < SL_CLUSTER_QUEUE_SLOTS; i++)
	{
		SlClusterSlot *slot = &sl_cluster->slots[i];

		if (slot->state == SL_SLOT_WORKING || slot->state == SL_SLOT_QUEUED)
		{
			if (slot->abandoned)
				slot->state = SL_SLOT_FREE;
			else
			{
				slot->error_code = KAFKA_NOT_CONTROLLER;
				strlcpy(slot->message, "the Raft worker stopped", sizeof(slot->message));
				slot->state = SL_SLOT_DONE;
			}
			slot->abandoned = false;
		}
	}
	sl_cluster->controller_id = -1;
	sl_cluster->raft.is_leader = false;
	LWLockRelease(&sl_cluster->lock);
	ConditionVariableBroadcast(&sl_cluster->changed);
}

static WaitEventSet *
make_wait_set(pgsocket heartbeat_sock)
{
	WaitEventSet *set;

#if PG_VERSION_NUM >= 170000
	set = CreateWaitEventSet(NULL, 4);
#else
	set = CreateWaitEventSet(TopMemoryContext, 4);
#endif
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(set, WL_SOCKET_READABLE, SlQuorumFd(quorum), NULL, NULL);
	AddWaitEventToSet(set, WL_SOCKET_READABLE, heartbeat_sock, NULL, NULL);
	return set;
}

void
SlRaftWorkerMain(Datum arg)
{
	const SlQuorumVoters *voters = SlQuorumVotersGet();
	SlQuorumMember members[SL_MAX_QUORUM_VOTERS];
	SlQuorumOptions opts;
	char		errbuf[512];
	char	   *log_dir;
	const char *raft_address;
	WaitEventSet *wait_set;
	pgsocket	heartbeat_sock;
	bool		new_log = false;
	MemoryContext round_context;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, raft_worker_sigterm);
	/* no statement here to cancel: a cancel must not end the worker */
	pqsignal(SIGINT, SIG_IGN);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(sl_database, NULL, 0);
	pgstat_report_appname("streamlog raft");

	/*
	 * A new incarnation per start of the worker: to the cluster a worker
	 * that starts again (after a crash, or after pg_terminate_backend went
	 * through a controlled shutdown) is a node that starts again
	 */
	LWLockAcquire(&sl_cluster->lock, LW_EXCLUSIVE);
	sl_cluster->refused[0] = '\0';
	if (!pg_strong_random(&sl_cluster->incarnation, sizeof(sl_cluster->incarnation)))
		sl_cluster->incarnation = (uint64) GetCurrentTimestamp() ^ ((uint64) MyProcPid << 32);
	if (sl_cluster->incarnation == 0)
		sl_cluster->incarnation = 1;
	strlcpy(sl_cluster->cluster_id, sl_cluster_id, sizeof(sl_cluster->cluster_id));
	LWLockRelease(&sl_cluster->lock);

	if (sl_cluster_id == NULL || sl_cluster_id[0] == '\0')
		refuse("Set streamlog.cluster_id to the same value on every node of the cluster.",
			   "streamlog.cluster_id is not set");
	raft_address = SlClusterRaftAddress();
	if (raft_address[0] == '\0')
		refuse("Set streamlog.raft_listen_address to host:port on a node that is not a voter.",
			   "node %d is not among the voters of streamlog.controller_quorum_voters and has no streamlog.raft_listen_address",
			   sl_node_id);

	log_dir = check_identity(&new_log);
	heartbeat_sock = SlHeartbeatsOpen(raft_address, errbuf, sizeof(errbuf));
	if (heartbeat_sock == PGINVALID_SOCKET)
		refuse("Give this node a Raft address of its own (streamlog.raft_listen_address), free for TCP and UDP.",
			   "%s", errbuf);
	SlHeartbeatsDescribeSelf(raft_address);

	memset(&opts, 0, sizeof(opts));
	for (int i = 0; i < voters->n; i++)
	{
		memset(&members[i], 0, sizeof(members[i]));
		members[i].node_id = voters->items[i].node_id;
		strlcpy(members[i].address, voters->items[i].address, sizeof(members[i].address));
		members[i].role = SL_QUORUM_VOTER;
	}
	opts.node_id = sl_node_id;
	opts.address = raft_address;
	opts.dir = log_dir;
	opts.nvoters = voters->n;
	opts.voters = members;
	opts.election_timeout_ms = sl_raft_election_timeout_ms;
	opts.heartbeat_timeout_ms = sl_raft_heartbeat_interval_ms;
	opts.snapshot_threshold = sl_metadata_snapshot_entries;
	quorum = SlQuorumOpen(&opts, errbuf, sizeof(errbuf));
	if (quorum == NULL)
		refuse(rejoin_hint(psprintf("%s/%s", DataDir, RAFT_DIR_NAME)),
			   "the Raft directory does not load: %s", errbuf);

	/*
	 * The catalog says up to which index of the log it was written; a new
	 * log (a member that joins afresh, its old directory wiped) starts from
	 * nothing, and the catalog is written again from its first image
	 */
	catalog_synced = synced_image_index = new_log ? 0 : read_catalog_synced();
	LWLockAcquire(&sl_cluster->lock, LW_EXCLUSIVE);
	sl_cluster->raft_worker_procno = MY_PROCNO;
	sl_cluster->started_ms = now_ms();
	sl_cluster->catalog_synced_index = catalog_synced;
	LWLockRelease(&sl_cluster->lock);
	before_shmem_exit(detach_shmem, 0);
	ereport(LOG,
			(errmsg("streamlog raft worker of node %d started on %s (cluster \"%s\", %d voters)",
					sl_node_id, raft_address, sl_cluster_id, voters->n)));

	wait_set = make_wait_set(heartbeat_sock);
	round_context = AllocSetContextCreate(TopMemoryContext, "streamlog raft round",
										  ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		WaitEvent	events[4];
		int64		now = now_ms();
		long		timeout = SlQuorumTimeoutMs(quorum);
		long		to_heartbeat = Max(next_heartbeat_ms - now, 0);
		SlQuorumStatus st;
		const SlMetaImage *image;
		bool		controller;
		bool		published;

		if (timeout < 0 || timeout > to_heartbeat)
			timeout = to_heartbeat;
		if (shutdown_requested)
			timeout = Min(timeout, 50);
		/* probes of late nodes are polled, not waited on */
		if (SlHeartbeatsProbing())
			timeout = Min(timeout, 10);
		(void) WaitEventSetWait(wait_set, timeout, events, lengthof(events), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			SlHeartbeatsDescribeSelf(raft_address);
		}
		MemoryContextSwitchTo(round_context);

		SlQuorumRun(quorum);
		now = now_ms();
		SlQuorumGetStatus(quorum, &st);
		image = SlQuorumImage(quorum);
		controller = st.is_leader && image->controller_id == sl_node_id &&
			image->controller_epoch == st.term;
		SlHeartbeatsReceive(controller, image, now);
		if (now >= next_heartbeat_ms || (shutdown_requested && shutdown_deadline_ms == 0))
		{
			SlHeartbeatsSend(shutdown_requested);
			SlHeartbeatsExpire(now);
			next_heartbeat_ms = now + sl_broker_heartbeat_interval_ms;
		}
		(void) act(&st, image, now);
		/* nodes the catalog is about to fence or unfence: shown fenced first */
		published = image->applied_index > synced_image_index &&
			publish(&st, image, true);
		/* the catalog, so that its index is published in this round */
		sync_catalog(image, st.applied_index, now);
		if (publish(&st, image, image->applied_index > synced_image_index) || published)
		{
			/* after the catalog and the view: what a woken request reads */
			SlGroupPlacementMayHaveChanged();
		}
		/* the workers that follow leaderships act on the new ones now */
		if (synced_image_index != woken_image_index)
		{
			woken_image_index = synced_image_index;
			SlClusterWakeCatalogWatchers();
		}

		if (shutdown_requested)
		{
			if (shutdown_deadline_ms == 0)
			{
				shutdown_deadline_ms = now + SHUTDOWN_WAIT_MS;
				ereport(LOG, (errmsg("streamlog node %d asks the controller for a controlled shutdown",
									 sl_node_id)));
			}
			if (SlControllerShutdownDone(image, sl_node_id) || now >= shutdown_deadline_ms)
			{
				bool		done = SlControllerShutdownDone(image, sl_node_id);

				ereport(LOG,
						(errmsg("streamlog node %d leaves the cluster: %s", sl_node_id,
								done ? "the controller moved its leaderships" :
								"the controller did not finish its controlled shutdown in time")));
				SlQuorumClose(quorum, true);
				quorum = NULL;

				/*
				 * 1, not 0: when the server goes on (pg_terminate_backend of
				 * this worker) the postmaster starts it again
				 */
				proc_exit(1);
			}
		}
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(round_context);
	}
}

