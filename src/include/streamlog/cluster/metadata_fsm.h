/*
 * The metadata image as libraft's state machine (struct raft_fsm): apply a
 * committed entry (a record batch) to the image, snapshot the image,
 * restore it.  Apply always returns 0 (CLUSTER.md section 2, rule 3): an
 * invalid batch is counted in the image and skipped.
 */
#ifndef SL_CLUSTER_METADATA_FSM_H
#define SL_CLUSTER_METADATA_FSM_H

#include <raft.h>

#include "streamlog/cluster/metadata_image.h"

/*
 * Set up fsm over image (owned by the caller, initialised).  Each applied
 * entry sets image->applied_index; *applied_hook (may be NULL) is called
 * after each entry with hook_arg, for the owner to note what changed.
 */
typedef void (*SlMetaAppliedHook) (void *hook_arg, uint64_t index, bool valid);

extern int	SlMetaFsmInit(struct raft_fsm *fsm, SlMetaImage *image,
						  SlMetaAppliedHook applied_hook, void *hook_arg);
extern void SlMetaFsmClose(struct raft_fsm *fsm);

#endif							/* SL_CLUSTER_METADATA_FSM_H */
