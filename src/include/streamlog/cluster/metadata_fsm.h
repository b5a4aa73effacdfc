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

/*
 * The Raft instance that applies entries to fsm (call after raft_init):
 * libraft's apply callback is not told the entry's index, so the fsm reads
 * it there (raft_last_applied() + 1 while an entry is applied).  Without
 * it, entries are numbered on from the image's applied index, which is
 * right only while every entry of the log is a command (no membership
 * change, no barrier).
 */
extern void SlMetaFsmSetRaft(struct raft_fsm *fsm, struct raft *raft);

#endif							/* SL_CLUSTER_METADATA_FSM_H */
