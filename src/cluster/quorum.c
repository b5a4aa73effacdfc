/*
 * The metadata quorum over libraft 0.15 (canonical/raft) with its libuv
 * disk and TCP I/O (see cluster/quorum.h).  Nothing else of the project
 * includes raft.h but the metadata state machine (metadata_fsm.c), so that
 * a swap of the library (cowsql/raft) stays here.
 *
 * Everything runs on the caller's thread, inside SlQuorumRun's uv_run:
 * libraft's callbacks below only note what happened (finished proposals,
 * membership changes) for the caller to take afterwards.  They never
 * ereport nor palloc (CLUSTER.md section 2, rule 1): this file is plain C.
 *
 * Ids: libraft refuses server id 0, which Kafka's node.id allows, so a
 * node's libraft id is its node id + 1; no one outside this file sees it.
 *
 * Entries: libraft 0.15 sends several entries in one AppendEntries message
 * with each entry's data padded to 8 bytes on one side and not on the
 * other, so that every entry after one whose length is not a multiple of 8
 * arrives shifted (seen here: a node catching up applied garbage).  Its
 * main user, dqlite, only ever proposes multiples of 8.  So do we: each
 * entry is an envelope, "SLQ1", the record batch's length (u32, little
 * endian), the batch, zeros up to a multiple of 8; the state machine is
 * handed the batch alone.
 */
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "streamlog/cluster/metadata_fsm.h"
#include "streamlog/cluster/quorum.h"

#define RAFT_ID(node_id) ((raft_id) (node_id) + 1)
#define NODE_ID(raft_id) ((int32_t) ((raft_id) - 1))

/* How many applied entries' validity are remembered for their proposals */
#define APPLIED_RING 256

/* A membership change under way: libraft takes one at a time */
typedef enum ChangeStage
{
	CHANGE_NONE = 0,
	CHANGE_ADDING,				/* raft_add: joins as a spare */
	CHANGE_ASSIGNING,			/* raft_assign: voter or standby */
	CHANGE_REMOVING
} ChangeStage;

#define ENTRY_MAGIC "SLQ1"
#define ENTRY_HEADER 8

struct SlQuorum
{
	uv_loop_t	loop;
	struct raft_uv_transport transport;
	struct raft_io io;
	struct raft_fsm fsm;
	int			(*fsm_apply) (struct raft_fsm *fsm, const struct raft_buffer *buf,
							  void **result);	/* the metadata fsm's own */
	struct raft raft;
	SlMetaImage image;
	int32_t		node_id;
	unsigned	election_timeout_ms;	/* as set at open */
	unsigned	heartbeat_timeout_ms;
	bool		hurried;		/* SlQuorumHurryElection in force */
	bool		transport_inited;
	bool		io_inited;
	bool		fsm_inited;
	bool		raft_inited;
	bool		closed;			/* raft_close's callback ran */

	/* finished proposals and changes, for SlQuorumTakeDone */
	SlQuorumDone *done;
	int			ndone;
	int			done_capacity;
	uint64_t	next_token;

	/* whether the entry at each recent index applied (the fsm's hook) */
	uint64_t	applied_index[APPLIED_RING];
	bool		applied_valid[APPLIED_RING];

	/* the one membership change under way */
	struct raft_change change;
	ChangeStage change_stage;
	uint64_t	change_token;
	int32_t		change_node;
	int			change_role;	/* RAFT_VOTER or RAFT_STANDBY */

	struct raft_transfer transfer;
	bool		transfer_busy;
};

/* A proposal in flight: libraft holds req until its callback */
typedef struct Proposal
{
	struct raft_apply req;
	SlQuorum   *q;
	uint64_t	token;
} Proposal;

/* Note a finished request; out of memory loses it (the caller times out) */
static void
note_done(SlQuorum *q, uint64_t token, bool ok, uint64_t index)
{
	if (q->ndone == q->done_capacity)
	{
		int			cap = q->done_capacity ? q->done_capacity * 2 : 16;
		SlQuorumDone *grown = realloc(q->done, sizeof(SlQuorumDone) * cap);

		if (grown == NULL)
			return;
		q->done = grown;
		q->done_capacity = cap;
	}
	q->done[q->ndone].token = token;
	q->done[q->ndone].ok = ok;
	q->done[q->ndone].index = index;
	q->ndone++;
}

/*
 * Apply an entry: the record batch inside its envelope.  An entry that is
 * not an envelope (it cannot be one of ours) goes to the fsm as it is,
 * which counts it as invalid.
 */
static int
envelope_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	SlQuorum   *q = (SlQuorum *) ((char *) fsm - offsetof(SlQuorum, fsm));
	const uint8_t *p = buf->base;
	struct raft_buffer inner = *buf;

	if (buf->len >= ENTRY_HEADER && memcmp(p, ENTRY_MAGIC, 4) == 0)
	{
		size_t		len = (size_t) p[4] | ((size_t) p[5] << 8) |
			((size_t) p[6] << 16) | ((size_t) p[7] << 24);

		if (len <= buf->len - ENTRY_HEADER)
		{
			inner.base = (uint8_t *) buf->base + ENTRY_HEADER;
			inner.len = len;
		}
	}
	return q->fsm_apply(fsm, &inner, result);
}

/* The fsm's hook: remember whether each entry changed the image */
static void
applied_hook(void *arg, uint64_t index, bool valid)
{
	SlQuorum   *q = arg;

	q->applied_index[index % APPLIED_RING] = index;
	q->applied_valid[index % APPLIED_RING] = valid;
}

static void
apply_cb(struct raft_apply *req, int status, void *result)
{
	Proposal   *p = req->data;
	SlQuorum   *q = p->q;
	bool		ok = status == 0;
	uint64_t	index = req->index;

	(void) result;
	/* A batch that applied as invalid (stale epochs, say) did nothing */
	if (ok && q->applied_index[index % APPLIED_RING] == index)
		ok = q->applied_valid[index % APPLIED_RING];
	note_done(q, p->token, ok, index);
	free(p);
}

static void change_cb(struct raft_change *req, int status);

static void
change_cb(struct raft_change *req, int status)
{
	SlQuorum   *q = req->data;
	uint64_t	index = q->raft.configuration_uncommitted_index ?
		q->raft.configuration_uncommitted_index : q->raft.configuration_index;

	if (status == 0 && q->change_stage == CHANGE_ADDING)
	{
		/* Joined as a spare: now give it its role */
		q->change_stage = CHANGE_ASSIGNING;
		if (raft_assign(&q->raft, &q->change, RAFT_ID(q->change_node),
						q->change_role, change_cb) == 0)
			return;
		status = RAFT_CANTCHANGE;
	}
	q->change_stage = CHANGE_NONE;
	note_done(q, q->change_token, status == 0, index);
}

static void
transfer_cb(struct raft_transfer *req)
{
	SlQuorum   *q = req->data;

	q->transfer_busy = false;
}

static void
close_cb(struct raft *r)
{
	SlQuorum   *q = r->data;

	q->closed = true;
}

/*
 * Start libuv's thread pool now, with every signal blocked, so that its
 * threads inherit a mask that keeps PostgreSQL's signal handlers on the
 * worker's own thread (CLUSTER.md section 2, rule 2).  The pool starts once
 * per process, at its first work item: this is it.
 */
static void
noop_work(uv_work_t *req)
{
	(void) req;
}

static void
noop_after_work(uv_work_t *req, int status)
{
	(void) status;
	free(req);
}

static void
start_thread_pool(uv_loop_t *loop)
{
	uv_work_t  *req = malloc(sizeof(uv_work_t));

	if (req != NULL && uv_queue_work(loop, req, noop_work, noop_after_work) != 0)
		free(req);
}

static void
quorum_free(SlQuorum *q)
{
	if (q->raft_inited && !q->closed)
	{
		raft_close(&q->raft, close_cb);
		while (!q->closed)
			uv_run(&q->loop, UV_RUN_ONCE);
	}
	if (q->io_inited)
		raft_uv_close(&q->io);
	if (q->transport_inited)
		raft_uv_tcp_close(&q->transport);
	/* Let libuv finish closing its handles, then the loop */
	uv_run(&q->loop, UV_RUN_DEFAULT);
	uv_loop_close(&q->loop);
	if (q->fsm_inited)
		SlMetaFsmClose(&q->fsm);
	SlMetaImageFree(&q->image);
	free(q->done);
	free(q);
}

SlQuorum *
SlQuorumOpen(const SlQuorumOptions *opts, char *errbuf, size_t errlen)
{
	SlQuorum   *q;
	sigset_t	all;
	sigset_t	saved;
	bool		voter = false;
	int			rv;

	errbuf[0] = '\0';
	q = calloc(1, sizeof(SlQuorum));
	if (q == NULL)
	{
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	q->node_id = opts->node_id;
	q->next_token = 1;
	SlMetaImageInit(&q->image);

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);

	rv = uv_loop_init(&q->loop);
	if (rv != 0)
	{
		snprintf(errbuf, errlen, "could not start an event loop: %s", uv_strerror(rv));
		pthread_sigmask(SIG_SETMASK, &saved, NULL);
		SlMetaImageFree(&q->image);
		free(q);
		return NULL;
	}
	start_thread_pool(&q->loop);

	if ((rv = raft_uv_tcp_init(&q->transport, &q->loop)) != 0)
	{
		snprintf(errbuf, errlen, "could not set up the Raft transport: %s", raft_strerror(rv));
		goto fail;
	}
	q->transport_inited = true;
	if ((rv = raft_uv_init(&q->io, &q->loop, opts->dir, &q->transport)) != 0)
	{
		snprintf(errbuf, errlen, "could not open the Raft directory \"%s\": %s",
				 opts->dir, raft_strerror(rv));
		goto fail;
	}
	q->io_inited = true;
	if ((rv = SlMetaFsmInit(&q->fsm, &q->image, applied_hook, q)) != 0)
	{
		snprintf(errbuf, errlen, "could not set up the metadata state machine (%d)", rv);
		goto fail;
	}
	q->fsm_inited = true;
	q->fsm_apply = q->fsm.apply;
	q->fsm.apply = envelope_apply;
	if ((rv = raft_init(&q->raft, &q->io, &q->fsm, RAFT_ID(opts->node_id), opts->address)) != 0)
	{
		snprintf(errbuf, errlen, "could not initialise Raft: %s", raft_errmsg(&q->raft));
		goto fail;
	}
	q->raft_inited = true;
	q->raft.data = q;
	SlMetaFsmSetRaft(&q->fsm, &q->raft);
	/*
	 * libraft waits between one and two times its election timeout: with
	 * two thirds of ours, a follower stands between 2/3 and 4/3 of it, on
	 * average after it, and a dead leader is replaced within about 4/3 of it
	 */
	q->election_timeout_ms = opts->election_timeout_ms * 2 / 3 > opts->heartbeat_timeout_ms * 2 ?
		opts->election_timeout_ms * 2 / 3 : opts->heartbeat_timeout_ms * 2;
	q->heartbeat_timeout_ms = opts->heartbeat_timeout_ms;
	raft_set_election_timeout(&q->raft, q->election_timeout_ms);
	raft_set_heartbeat_timeout(&q->raft, opts->heartbeat_timeout_ms);
	raft_set_snapshot_threshold(&q->raft, opts->snapshot_threshold);
	raft_set_snapshot_trailing(&q->raft, opts->snapshot_threshold / 2 < 128 ?
							   opts->snapshot_threshold / 2 : 128);
	/* A node back from a partition must not depose a working leader */
	raft_set_pre_vote(&q->raft, true);

	/*
	 * A new log of a voter starts with the initial voters, the same on every
	 * voter; a log that has entries refuses it (RAFT_CANTBOOTSTRAP), which is
	 * the normal case of a restart.  A node that is not a voter waits to be
	 * added by the leader.
	 */
	for (int i = 0; i < opts->nvoters; i++)
		voter |= opts->voters[i].node_id == opts->node_id;
	if (voter)
	{
		struct raft_configuration conf;

		raft_configuration_init(&conf);
		for (int i = 0; i < opts->nvoters; i++)
		{
			rv = raft_configuration_add(&conf, RAFT_ID(opts->voters[i].node_id),
										opts->voters[i].address, RAFT_VOTER);
			if (rv != 0)
			{
				raft_configuration_close(&conf);
				snprintf(errbuf, errlen, "invalid voter %d (%s): %s",
						 (int) opts->voters[i].node_id, opts->voters[i].address,
						 raft_strerror(rv));
				goto fail;
			}
		}
		rv = raft_bootstrap(&q->raft, &conf);
		raft_configuration_close(&conf);
		if (rv != 0 && rv != RAFT_CANTBOOTSTRAP)
		{
			snprintf(errbuf, errlen, "could not bootstrap the Raft log: %s (%s)",
					 raft_errmsg(&q->raft), raft_strerror(rv));
			goto fail;
		}
	}
	if ((rv = raft_start(&q->raft)) != 0)
	{
		/* raft_errmsg can be empty: the error code always says something */
		snprintf(errbuf, errlen, "could not load the Raft log: %s (%s)",
				 raft_errmsg(&q->raft), raft_strerror(rv));
		goto fail;
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	return q;

fail:
	quorum_free(q);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	return NULL;
}

void
SlQuorumClose(SlQuorum *q, bool transfer_leadership)
{
	if (q == NULL)
		return;
	if (transfer_leadership && raft_state(&q->raft) == RAFT_LEADER &&
		!q->transfer_busy)
	{
		q->transfer.data = q;
		if (raft_transfer(&q->raft, &q->transfer, 0, transfer_cb) == 0)
		{
			/* libraft calls back when it worked or an election timeout passed */
			q->transfer_busy = true;
			while (q->transfer_busy)
				uv_run(&q->loop, UV_RUN_ONCE);
		}
	}
	quorum_free(q);
}

int
SlQuorumFd(SlQuorum *q)
{
	return uv_backend_fd(&q->loop);
}

int
SlQuorumTimeoutMs(SlQuorum *q)
{
	return uv_backend_timeout(&q->loop);
}

void
SlQuorumRun(SlQuorum *q)
{
	uv_run(&q->loop, UV_RUN_NOWAIT);
}

bool
SlQuorumPropose(SlQuorum *q, const void *data, size_t len, uint64_t *token)
{
	Proposal   *p;
	struct raft_buffer buf;
	uint8_t    *e;

	if (raft_state(&q->raft) != RAFT_LEADER || len == 0 || len > UINT32_MAX - 16)
		return false;
	p = calloc(1, sizeof(Proposal));
	buf.len = (ENTRY_HEADER + len + 7) & ~(size_t) 7;
	buf.base = raft_malloc(buf.len);
	if (p == NULL || buf.base == NULL)
	{
		free(p);
		raft_free(buf.base);
		return false;
	}
	e = buf.base;
	memset(e, 0, buf.len);
	memcpy(e, ENTRY_MAGIC, 4);
	e[4] = (uint8_t) len;
	e[5] = (uint8_t) (len >> 8);
	e[6] = (uint8_t) (len >> 16);
	e[7] = (uint8_t) (len >> 24);
	memcpy(e + ENTRY_HEADER, data, len);
	p->q = q;
	p->token = q->next_token++;
	p->req.data = p;
	if (raft_apply(&q->raft, &p->req, &buf, 1, apply_cb) != 0)
	{
		raft_free(buf.base);
		free(p);
		return false;
	}
	*token = p->token;
	return true;
}

int
SlQuorumTakeDone(SlQuorum *q, SlQuorumDone *done, int max)
{
	int			n = q->ndone < max ? q->ndone : max;

	memcpy(done, q->done, sizeof(SlQuorumDone) * n);
	memmove(q->done, q->done + n, sizeof(SlQuorumDone) * (q->ndone - n));
	q->ndone -= n;
	return n;
}

const SlMetaImage *
SlQuorumImage(SlQuorum *q)
{
	return &q->image;
}

static void
barrier_cb(struct raft_barrier *req, int status)
{
	(void) status;
	free(req);
}

bool
SlQuorumAnnounceCommit(SlQuorum *q)
{
	struct raft_barrier *req;

	if (raft_state(&q->raft) != RAFT_LEADER)
		return false;
	req = calloc(1, sizeof(struct raft_barrier));
	if (req == NULL)
		return false;
	if (raft_barrier(&q->raft, req, barrier_cb) != 0)
	{
		free(req);
		return false;
	}
	return true;
}

bool
SlQuorumAddMember(SlQuorum *q, int32_t node_id, const char *address,
				  SlQuorumRole role, uint64_t *token)
{
	const struct raft_configuration *conf = &q->raft.configuration;
	int			raft_role = role == SL_QUORUM_VOTER ? RAFT_VOTER : RAFT_STANDBY;
	int			rv;

	if (raft_state(&q->raft) != RAFT_LEADER || q->change_stage != CHANGE_NONE ||
		address == NULL || address[0] == '\0')
		return false;
	q->change.data = q;
	q->change_node = node_id;
	q->change_role = raft_role;
	/* Already a member (a standby promoted to voter, say): only its role */
	for (unsigned i = 0; i < conf->n; i++)
		if (conf->servers[i].id == RAFT_ID(node_id))
		{
			if (conf->servers[i].role == raft_role)
				return false;
			q->change_stage = CHANGE_ASSIGNING;
			rv = raft_assign(&q->raft, &q->change, RAFT_ID(node_id), raft_role, change_cb);
			goto started;
		}
	q->change_stage = CHANGE_ADDING;
	rv = raft_add(&q->raft, &q->change, RAFT_ID(node_id), address, change_cb);

started:
	if (rv != 0)
	{
		q->change_stage = CHANGE_NONE;
		return false;
	}
	q->change_token = q->next_token++;
	if (token)
		*token = q->change_token;
	return true;
}

bool
SlQuorumRemoveMember(SlQuorum *q, int32_t node_id, uint64_t *token)
{
	if (raft_state(&q->raft) != RAFT_LEADER || q->change_stage != CHANGE_NONE)
		return false;
	q->change.data = q;
	q->change_node = node_id;
	q->change_stage = CHANGE_REMOVING;
	if (raft_remove(&q->raft, &q->change, RAFT_ID(node_id), change_cb) != 0)
	{
		q->change_stage = CHANGE_NONE;
		return false;
	}
	q->change_token = q->next_token++;
	if (token)
		*token = q->change_token;
	return true;
}

bool
SlQuorumTransferLeadership(SlQuorum *q, int32_t to_node_id)
{
	if (raft_state(&q->raft) != RAFT_LEADER || q->transfer_busy)
		return false;
	q->transfer.data = q;
	if (raft_transfer(&q->raft, &q->transfer, to_node_id > 0 ? RAFT_ID(to_node_id) : 0,
					  transfer_cb) != 0)
		return false;
	q->transfer_busy = true;
	return true;
}

bool
SlQuorumChangeBusy(SlQuorum *q)
{
	return q->change_stage != CHANGE_NONE || q->transfer_busy;
}

void
SlQuorumGetStatus(SlQuorum *q, SlQuorumStatus *status)
{
	struct raft *r = &q->raft;
	const struct raft_configuration *conf = &r->configuration;
	raft_id		leader_id = 0;
	const char *leader_address = NULL;
	bool		leader = raft_state(r) == RAFT_LEADER;
	raft_time	now = r->io->time(r->io);

	memset(status, 0, sizeof(*status));
	status->node_id = q->node_id;
	status->is_leader = leader;
	raft_leader(r, &leader_id, &leader_address);
	status->leader_id = leader_id ? NODE_ID(leader_id) : -1;
	status->term = r->current_term;
	status->commit_index = r->commit_index;
	status->applied_index = raft_last_applied(r);
	status->last_index = raft_last_index(r);
	for (unsigned i = 0; i < conf->n && status->nmembers < 16; i++)
	{
		int			k = status->nmembers++;
		SlQuorumMember *m = &status->members[k];

		m->node_id = NODE_ID(conf->servers[i].id);
		snprintf(m->address, sizeof(m->address), "%s",
				 conf->servers[i].address ? conf->servers[i].address : "");
		/* a spare (being added) does not vote: shown as an observer */
		m->role = conf->servers[i].role == RAFT_VOTER ? SL_QUORUM_VOTER : SL_QUORUM_OBSERVER;
		status->match_index[k] = 0;
		status->last_contact_ms[k] = -1;
		if (conf->servers[i].id == r->id)
		{
			status->match_index[k] = raft_last_index(r);
			status->last_contact_ms[k] = 0;
		}
		else if (leader && r->leader_state.progress != NULL)
		{
			const struct raft_progress *p = &r->leader_state.progress[i];

			status->match_index[k] = p->match_index;
			/*
			 * libraft 0.15 keeps when it last sent to a member and whether
			 * the member answered within an election timeout, not when it
			 * last answered: ms since the last send if it did, else -1
			 */
			if (p->recent_recv)
				status->last_contact_ms[k] = now >= p->last_send ? (int64_t) (now - p->last_send) : 0;
		}
	}
}

void
SlQuorumHurryElection(SlQuorum *q)
{
	if (q->hurried)
		return;
	/* two heartbeats: as soon as libraft allows without racing its own */
	raft_set_election_timeout(&q->raft, q->heartbeat_timeout_ms * 2);
	q->hurried = true;
}

void
SlQuorumElectionAsUsual(SlQuorum *q)
{
	if (!q->hurried)
		return;
	raft_set_election_timeout(&q->raft, q->election_timeout_ms);
	q->hurried = false;
}
