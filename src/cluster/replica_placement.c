/*-------------------------------------------------------------------------
 * replica_placement.c
 *	  Where the replicas of new partitions go: Kafka's assignment
 *	  (AdminUtils.assignReplicasToBrokers), over the nodes that are
 *	  registered, unfenced and not shutting down.
 *
 * Without racks: partition p's first replica is node (start + p) mod n, the
 * others follow it at a shift that grows by one every n partitions, so that
 * leaders and followers spread evenly.  With racks (every usable node has
 * one): the same walk over the nodes listed rack by rack in turn (rack1's
 * first, rack2's first, ..., rack1's second...), skipping a node whose rack
 * already holds a replica of the partition while some rack holds none, and
 * a node already holding one while some node holds none.  When only some
 * nodes name a rack, Kafka refuses; we place as if none did, since the
 * doors cannot repair a cluster's settings mid-request.
 *
 * start and shift come from the seed (low and high halves), so that the
 * same seed gives the same placement; seed 0 is Kafka's fixed start 0.
 *
 * IDENTIFICATION
 *	  src/cluster/replica_placement.c
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "streamlog/cluster/controller.h"

/* Kafka's replicaIndex: the j-th follower of a first replica */
static int32_t
follower_index(int32_t first, int64_t shift, int32_t j, int32_t n)
{
	int64_t		s = 1 + (shift + j) % (n - 1);

	return (int32_t) ((first + s) % n);
}

static bool
usable(const SlMetaNode *node)
{
	return !node->fenced && !node->shutting_down;
}

static int
compare_racks(const void *a, const void *b)
{
	const SlMetaNode *x = *(const SlMetaNode *const *) a;
	const SlMetaNode *y = *(const SlMetaNode *const *) b;
	int			c = strcmp(x->rack, y->rack);

	if (c != 0)
		return c;
	return x->node_id < y->node_id ? -1 : x->node_id > y->node_id;
}

/*
 * The usable nodes listed rack by rack in turn (Kafka's
 * getRackAlternatedBrokerList): racks in name order, nodes of a rack by id.
 * nodes[] is sorted by (rack, id) on entry; out gets the alternation, and
 * rack_of[i] the rack number of out[i].
 */
static void
alternate_racks(const SlMetaNode **nodes, int32_t n, const SlMetaNode **out, int32_t *rack_of,
				int32_t *nracks_out)
{
	int32_t    *rack_start = malloc(sizeof(int32_t) * ((size_t) n + 1));
	int32_t    *next = malloc(sizeof(int32_t) * (size_t) n);
	int32_t		nracks = 0;
	int32_t		filled = 0;

	if (rack_start == NULL || next == NULL)
	{
		/* out of memory: the plain order still places every replica */
		for (int32_t i = 0; i < n; i++)
		{
			out[i] = nodes[i];
			rack_of[i] = i;
		}
		*nracks_out = n;
		free(rack_start);
		free(next);
		return;
	}
	for (int32_t i = 0; i < n; i++)
		if (i == 0 || strcmp(nodes[i]->rack, nodes[i - 1]->rack) != 0)
			rack_start[nracks++] = i;
	rack_start[nracks] = n;
	for (int32_t r = 0; r < nracks; r++)
		next[r] = rack_start[r];
	for (int32_t r = 0; filled < n; r = (r + 1) % nracks)
	{
		if (next[r] < rack_start[r + 1])
		{
			rack_of[filled] = r;
			out[filled++] = nodes[next[r]++];
		}
	}
	*nracks_out = nracks;
	free(rack_start);
	free(next);
}

bool
SlControllerAssign(const SlMetaImage *image, int32_t count,
				   int32_t replication_factor, int32_t first_partition,
				   uint64_t seed, int32_t *assignment)
{
	const SlMetaNode **nodes;
	const SlMetaNode **order;
	int32_t    *rack_of;
	int32_t		n = 0;
	int32_t		nracks;
	bool		racks = true;
	int64_t		start;
	int64_t		shift;
	bool	   *rack_used;
	bool	   *node_used;

	if (count < 0 || replication_factor <= 0 || first_partition < 0)
		return false;
	for (int32_t i = 0; i < image->nnodes; i++)
		if (usable(&image->nodes[i]))
			n++;
	if (n < replication_factor)
		return false;
	if (count == 0)
		return true;

	nodes = malloc(sizeof(SlMetaNode *) * (size_t) n);
	order = malloc(sizeof(SlMetaNode *) * (size_t) n);
	rack_of = malloc(sizeof(int32_t) * (size_t) n);
	rack_used = calloc((size_t) n, sizeof(bool));
	node_used = calloc((size_t) n, sizeof(bool));
	if (nodes == NULL || order == NULL || rack_of == NULL || rack_used == NULL || node_used == NULL)
	{
		free(nodes);
		free(order);
		free(rack_of);
		free(rack_used);
		free(node_used);
		return false;
	}
	n = 0;
	for (int32_t i = 0; i < image->nnodes; i++)
		if (usable(&image->nodes[i]))
		{
			nodes[n++] = &image->nodes[i];
			if (image->nodes[i].rack == NULL)
				racks = false;
		}

	if (racks)
	{
		qsort(nodes, (size_t) n, sizeof(SlMetaNode *), compare_racks);
		alternate_racks(nodes, n, order, rack_of, &nracks);
	}
	else
	{
		/* by id (the image's order); every node a rack of its own */
		for (int32_t i = 0; i < n; i++)
		{
			order[i] = nodes[i];
			rack_of[i] = i;
		}
		nracks = n;
	}

	start = (int64_t) (seed % (uint64_t) n);
	shift = (int64_t) ((seed >> 32) % (uint64_t) n);
	for (int32_t k = 0; k < count; k++)
	{
		int64_t		p = (int64_t) first_partition + k;
		int32_t		first;
		int32_t    *out = &assignment[(size_t) k * (size_t) replication_factor];
		int32_t		nused_racks = 1;
		int32_t		nused_nodes = 1;
		int32_t		j = 0;

		if (p > 0 && p % n == 0)
			shift++;
		first = (int32_t) ((p + start) % n);
		out[0] = order[first]->node_id;
		if (replication_factor == 1)
			continue;
		memset(rack_used, 0, sizeof(bool) * (size_t) n);
		memset(node_used, 0, sizeof(bool) * (size_t) n);
		rack_used[rack_of[first]] = true;
		node_used[first] = true;
		for (int32_t r = 1; r < replication_factor; r++)
		{
			for (;;)
			{
				/* with racks, Kafka shifts by whole rounds of racks */
				int32_t		idx = follower_index(first, racks ? shift * nracks : shift, j++, n);

				if ((!rack_used[rack_of[idx]] || nused_racks == nracks) &&
					(!node_used[idx] || nused_nodes == n))
				{
					out[r] = order[idx]->node_id;
					if (!rack_used[rack_of[idx]])
						nused_racks++;
					if (!node_used[idx])
						nused_nodes++;
					rack_used[rack_of[idx]] = true;
					node_used[idx] = true;
					break;
				}
			}
		}
	}
	free(nodes);
	free(order);
	free(rack_of);
	free(rack_used);
	free(node_used);
	return true;
}
