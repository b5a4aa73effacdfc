/*
 * The cluster's metadata image written into this node's catalog
 * (streamlog.topic, streamlog.partition and their segment tables), so that
 * both doors find topics and leaders where they always did.  Called by the
 * Raft worker, in its own transaction, after its image changed; idempotent:
 * the catalog is brought to match the image, whatever it held before, and
 * the image's applied index is recorded with it (streamlog.cluster_sync).
 */
#ifndef SL_STORAGE_CLUSTER_CATALOG_H
#define SL_STORAGE_CLUSTER_CATALOG_H

#include "streamlog/cluster/metadata_image.h"

/*
 * Bring the catalog to image: create the topics it has and the catalog
 * does not (with the image's topic id, uuid, owner and config, and every
 * partition's segment tables), drop those it no longer has, add
 * partitions, replace configs, and write each partition's replicas, ISR,
 * leader and epochs.  Runs in the caller's transaction.  An image older
 * than the catalog (applied_index below SlClusterCatalogSyncedIndex)
 * changes nothing.  Errors out with lock_not_available, changing nothing,
 * when a topic it must drop, resize or reconfigure is held by a
 * transaction: call it again later (it never waits, so that the Raft
 * worker does not).
 */
extern void SlClusterCatalogSync(const SlMetaImage *image);

/* The applied index the catalog matches (0 if never synced) */
extern uint64 SlClusterCatalogSyncedIndex(void);

#endif							/* SL_STORAGE_CLUSTER_CATALOG_H */
