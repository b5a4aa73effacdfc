/*
 * A raft/fixture.h cluster whose servers run the metadata fsm, for the
 * cluster layer's unit tests: set up, propose a batch on the leader, and
 * check that every server applied the same image.
 */
#ifndef SL_META_FIXTURE_H
#define SL_META_FIXTURE_H

#include <raft.h>
#include <raft/fixture.h>

#include "streamlog/cluster/metadata_fsm.h"
#include "meta_testlib.h"

typedef struct MetaCluster
{
	struct raft_fixture f;
	unsigned	n;
	struct raft_fsm fsms[RAFT_FIXTURE_MAX_SERVERS];
	SlMetaImage images[RAFT_FIXTURE_MAX_SERVERS];
	uint64_t	applied[RAFT_FIXTURE_MAX_SERVERS];	/* entries seen by the hook */
	uint64_t	last_index[RAFT_FIXTURE_MAX_SERVERS];	/* index the hook saw last */
	bool		index_ok;		/* hook indexes grew and matched libraft's */
	int			proposals_done;
	int			proposals_failed;
	int			restores;		/* snapshots restored (installed) */
} MetaCluster;

typedef struct MetaHookArg
{
	MetaCluster *c;
	unsigned	i;
} MetaHookArg;

static MetaHookArg meta_hook_args[RAFT_FIXTURE_MAX_SERVERS];

/* The metadata fsm's restore, wrapped to count the snapshots installed */
static int	(*meta_fsm_restore) (struct raft_fsm *fsm, struct raft_buffer *buf);
static MetaCluster *meta_restore_cluster;

static inline int
meta_counting_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	int			rv = meta_fsm_restore(fsm, buf);

	if (rv == 0 && meta_restore_cluster != NULL)
		meta_restore_cluster->restores++;
	return rv;
}

static inline void
meta_applied_hook(void *arg, uint64_t index, bool valid)
{
	MetaHookArg *a = arg;
	MetaCluster *c = a->c;

	(void) valid;
	c->applied[a->i]++;
	/* a restored snapshot may go back to its own index; an entry never */
	if (index <= c->last_index[a->i] && c->images[a->i].applied_index != index)
		c->index_ok = false;
	c->last_index[a->i] = index;
}

/* n servers, the first nvoting of them voters, all started */
static inline void
meta_cluster_init(MetaCluster *c, unsigned n, unsigned nvoting, unsigned snapshot_threshold)
{
	struct raft_configuration conf;

	memset(c, 0, sizeof(*c));
	c->n = n;
	c->index_ok = true;
	if (raft_fixture_initialize(&c->f) != 0)
		abort();
	for (unsigned i = 0; i < n; i++)
	{
		SlMetaImageInit(&c->images[i]);
		meta_hook_args[i].c = c;
		meta_hook_args[i].i = i;
		if (SlMetaFsmInit(&c->fsms[i], &c->images[i], meta_applied_hook, &meta_hook_args[i]) != 0)
			abort();
		meta_fsm_restore = c->fsms[i].restore;
		c->fsms[i].restore = meta_counting_restore;
		meta_restore_cluster = c;
		if (raft_fixture_grow(&c->f, &c->fsms[i]) != 0)
			abort();
		SlMetaFsmSetRaft(&c->fsms[i], raft_fixture_get(&c->f, i));
		if (snapshot_threshold > 0)
		{
			raft_set_snapshot_threshold(raft_fixture_get(&c->f, i), snapshot_threshold);
			raft_set_snapshot_trailing(raft_fixture_get(&c->f, i), snapshot_threshold / 2);
		}
	}
	if (raft_fixture_configuration(&c->f, nvoting, &conf) != 0 ||
		raft_fixture_bootstrap(&c->f, &conf) != 0)
		abort();
	raft_configuration_close(&conf);
	if (raft_fixture_start(&c->f) != 0)
		abort();
}

static inline void
meta_cluster_close(MetaCluster *c)
{
	raft_fixture_close(&c->f);
	for (unsigned i = 0; i < c->n; i++)
	{
		SlMetaFsmClose(&c->fsms[i]);
		SlMetaImageFree(&c->images[i]);
	}
}

static inline void
meta_apply_cb(struct raft_apply *req, int status, void *result)
{
	MetaCluster *c = req->data;

	(void) result;
	if (status == 0)
		c->proposals_done++;
	else
		c->proposals_failed++;
	free(req);
}

/* Propose a batch on server i; false if it is not the leader */
static inline bool
meta_propose(MetaCluster *c, unsigned i, const SlMetaBatch *batch)
{
	struct raft_apply *req;
	struct raft_buffer buf;
	void	   *data;
	size_t		len;

	if (raft_state(raft_fixture_get(&c->f, i)) != RAFT_LEADER)
		return false;
	if (!SlMetaBatchEncode(batch, &data, &len))
		abort();
	buf.base = raft_malloc(len);
	buf.len = len;
	memcpy(buf.base, data, len);
	free(data);
	req = malloc(sizeof(*req));
	req->data = c;
	if (raft_apply(raft_fixture_get(&c->f, i), req, &buf, 1, meta_apply_cb) != 0)
	{
		raft_free(buf.base);
		free(req);
		return false;
	}
	return true;
}

/*
 * The index of the live leader of the newest term, or c->n.  A deposed
 * leader that has not heard of its successor yet (or was revived) still
 * believes it leads: the newest term tells them apart.
 */
static inline unsigned
meta_leader(MetaCluster *c)
{
	unsigned	best = c->n;

	for (unsigned i = 0; i < c->n; i++)
		if (raft_fixture_alive(&c->f, i) &&
			raft_state(raft_fixture_get(&c->f, i)) == RAFT_LEADER &&
			(best == c->n ||
			 raft_fixture_get(&c->f, i)->current_term > raft_fixture_get(&c->f, best)->current_term))
			best = i;
	return best;
}

/*
 * Servers that applied up to the same index hold the same image (and every
 * image is what libraft says it applied up to, or a command entry before).
 */
static inline bool
meta_images_agree(MetaCluster *c)
{
	void	   *data[RAFT_FIXTURE_MAX_SERVERS];
	size_t		len[RAFT_FIXTURE_MAX_SERVERS];
	bool		agree = true;

	/* each image encoded once, then compared with the others */
	for (unsigned i = 0; i < c->n; i++)
		if (!SlMetaImageEncode(&c->images[i], &data[i], &len[i]))
			abort();
	for (unsigned i = 0; i < c->n; i++)
		for (unsigned j = i + 1; j < c->n; j++)
			if (c->images[i].applied_index == c->images[j].applied_index &&
				(len[i] != len[j] || memcmp(data[i], data[j], len[i]) != 0))
				agree = false;
	for (unsigned i = 0; i < c->n; i++)
		free(data[i]);
	return agree;
}

#endif							/* SL_META_FIXTURE_H */
