/*
 * The cluster's metadata: the records of the Raft log (KRaft's, KIP-500/
 * 631/497) and the image that applying them in order builds.
 *
 * Vocabulary.  An entry of the Raft log carries one record batch: records
 * applied together or not at all (a topic and its partitions, say).  The
 * image is what every node holds after applying the same entries in the
 * same order: nodes, topics, partitions with their replicas, ISR, leader and
 * epochs, the controller, the next ids to hand out.
 *
 * Pure code: no ereport, no palloc, no SQL.  It runs inside libraft's
 * callbacks (where a longjmp would corrupt libuv's loop), in the unit tests
 * and in the fuzzers, so it allocates with malloc and reports errors by
 * return value.  Applying is deterministic: the same entries give the same
 * image on every node, and an invalid batch changes nothing (it is counted,
 * never fatal: libraft stops applying for good at a non-zero return).
 */
#ifndef SL_CLUSTER_METADATA_IMAGE_H
#define SL_CLUSTER_METADATA_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_META_NO_LEADER (-1)

/* A node as registered (RegisterBrokerRecord) */
typedef struct SlMetaNode
{
	int32_t		node_id;
	uint64_t	incarnation;	/* random per start of the node: a restart is a
								 * new incarnation, a second live claimant of
								 * the id is refused */
	bool		fenced;			/* no heartbeat within the session timeout, or
								 * not yet unfenced after registering */
	bool		shutting_down;	/* controlled shutdown under way */
	char	   *kafka_host;		/* advertised Kafka endpoint */
	int32_t		kafka_port;
	char	   *sql_conninfo;	/* how other nodes reach its SQL */
	char	   *raft_address;	/* host:port of its Raft listener */
	char	   *rack;			/* NULL if none (broker.rack) */
} SlMetaNode;

/* A partition (PartitionRecord, changed by PartitionChangeRecord) */
typedef struct SlMetaPartition
{
	int32_t		partition;
	int32_t		nreplicas;
	int32_t    *replicas;		/* the first is the preferred leader */
	int32_t		nisr;
	int32_t    *isr;
	int32_t		leader;			/* SL_META_NO_LEADER when offline */
	int32_t		leader_epoch;	/* +1 on every leader change */
	int32_t		partition_epoch;	/* +1 on every change */

	/*
	 * A reassignment under way (KIP-455): replicas is the target followed
	 * by the replicas being removed; adding are the targets that were not
	 * replicas before.  Both empty when none.  In a PARTITION_CHANGE record
	 * a count of -1 leaves them (and nreplicas 0 the replicas) unchanged.
	 */
	int32_t		nadding;
	int32_t    *adding;
	int32_t		nremoving;
	int32_t    *removing;
} SlMetaPartition;

/* A topic (TopicRecord and its partitions) */
typedef struct SlMetaTopic
{
	int32_t		topic_id;		/* streamlog.topic.topic_id on every node */
	uint8_t		uuid[16];		/* Kafka's topic id */
	char	   *name;
	char	   *config_json;	/* explicit settings only, a JSON object */
	char	   *owner;			/* role name of its creator */
	int32_t		partition_count;
	SlMetaPartition *partitions;	/* [partition_count], by partition */
} SlMetaTopic;

typedef struct SlMetaImage
{
	uint64_t	applied_index;	/* Raft index of the last entry applied */
	int32_t		controller_id;	/* -1 until a controller took office */
	uint64_t	controller_epoch;	/* Raft term in which it took office */
	int32_t		next_topic_id;
	int64_t		next_producer_id;	/* first id of the next block */
	uint64_t	invalid_batches;	/* entries that changed nothing */
	int32_t		nnodes;
	SlMetaNode *nodes;			/* sorted by node_id */
	int32_t		ntopics;
	SlMetaTopic *topics;		/* sorted by topic_id */
} SlMetaImage;

/* An empty image (nothing applied) */
extern void SlMetaImageInit(SlMetaImage *image);
extern void SlMetaImageFree(SlMetaImage *image);
/* Deep copy; false if out of memory (dst is then empty) */
extern bool SlMetaImageCopy(SlMetaImage *dst, const SlMetaImage *src);

/*
 * Apply the record batch of the Raft entry at index.  Returns false (and
 * changes nothing but applied_index and invalid_batches) if the batch does
 * not decode or does not apply (unknown topic, stale epochs...).
 */
extern bool SlMetaImageApply(SlMetaImage *image, uint64_t index,
							 const void *data, size_t len);

/* Lookups; NULL if absent */
extern const SlMetaNode *SlMetaImageNode(const SlMetaImage *image, int32_t node_id);
extern const SlMetaTopic *SlMetaImageTopicById(const SlMetaImage *image, int32_t topic_id);
extern const SlMetaTopic *SlMetaImageTopicByName(const SlMetaImage *image, const char *name);

/*
 * Is the boolean topic config name set to true in the topic's config_json
 * (topic_config_flag.c)?  false when absent, or when the text is not a
 * flat JSON object.
 */
extern bool SlMetaTopicConfigFlag(const SlMetaTopic *topic, const char *name);

/*
 * Snapshots bound the Raft log: the whole image as bytes (malloc'd; free()
 * it), and back.  Decode refuses (false, image left empty) whatever is not
 * a snapshot this code wrote.
 */
extern bool SlMetaImageEncode(const SlMetaImage *image, void **data, size_t *len);
extern bool SlMetaImageDecode(SlMetaImage *image, const void *data, size_t len);

#endif							/* SL_CLUSTER_METADATA_IMAGE_H */
