/*-------------------------------------------------------------------------
 * metadata_fsm.c
 *	  The metadata image as libraft's state machine.
 *
 * libraft 0.15 calls apply once per committed command entry, snapshot when
 * the log has grown by the snapshot threshold, and restore when a snapshot
 * is loaded at start or installed from the leader.  Everything runs inside
 * libraft's callbacks on the Raft worker's thread: nothing here may longjmp
 * or use PostgreSQL's memory (CLUSTER.md section 2, rule 1).
 *
 * IDENTIFICATION
 *	  src/cluster/metadata_fsm.c
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "streamlog/cluster/metadata_fsm.h"

typedef struct SlMetaFsm
{
	SlMetaImage *image;
	SlMetaAppliedHook applied_hook;
	void	   *hook_arg;
	struct raft *raft;			/* NULL until SlMetaFsmSetRaft */
} SlMetaFsm;

/*
 * Apply one committed entry.  Always 0: a non-zero return would stop
 * libraft applying at this index for good (rule 3); an invalid batch is
 * counted in the image instead.
 */
static int
fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	SlMetaFsm  *f = fsm->data;
	uint64_t	index;
	bool		valid;

	if (f->raft != NULL)
		index = raft_last_applied(f->raft) + 1;
	else
		index = f->image->applied_index + 1;
	valid = SlMetaImageApply(f->image, index, buf->base, buf->len);
	if (f->applied_hook != NULL)
		f->applied_hook(f->hook_arg, index, valid);
	*result = NULL;
	return 0;
}

/* The image as one buffer; libraft frees it (no snapshot_finalize) */
static int
fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	SlMetaFsm  *f = fsm->data;
	void	   *data;
	size_t		len;
	struct raft_buffer *out;

	if (!SlMetaImageEncode(f->image, &data, &len))
		return RAFT_NOMEM;
	out = raft_malloc(sizeof(struct raft_buffer));
	if (out == NULL)
	{
		free(data);
		return RAFT_NOMEM;
	}
	out->base = raft_malloc(len > 0 ? len : 1);
	if (out->base == NULL)
	{
		raft_free(out);
		free(data);
		return RAFT_NOMEM;
	}
	memcpy(out->base, data, len);
	out->len = len;
	free(data);
	*bufs = out;
	*n_bufs = 1;
	return 0;
}

/*
 * Replace the image by a snapshot's.  On success the buffer is ours to
 * free; a snapshot that does not decode is refused (RAFT_MALFORMED) and the
 * image kept: a node cannot go on from state it cannot read, and libraft
 * then fails its start or the install, which says so.
 */
static int
fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	SlMetaFsm  *f = fsm->data;
	SlMetaImage restored;

	if (!SlMetaImageDecode(&restored, buf->base, buf->len))
		return RAFT_MALFORMED;
	SlMetaImageFree(f->image);
	*f->image = restored;
	raft_free(buf->base);
	if (f->applied_hook != NULL)
		f->applied_hook(f->hook_arg, f->image->applied_index, true);
	return 0;
}

int
SlMetaFsmInit(struct raft_fsm *fsm, SlMetaImage *image,
			  SlMetaAppliedHook applied_hook, void *hook_arg)
{
	SlMetaFsm  *f = malloc(sizeof(SlMetaFsm));

	memset(fsm, 0, sizeof(*fsm));
	if (f == NULL)
		return RAFT_NOMEM;
	f->image = image;
	f->applied_hook = applied_hook;
	f->hook_arg = hook_arg;
	f->raft = NULL;
	fsm->version = 2;
	fsm->data = f;
	fsm->apply = fsm_apply;
	fsm->snapshot = fsm_snapshot;
	fsm->restore = fsm_restore;
	fsm->snapshot_finalize = NULL;
	return 0;
}

void
SlMetaFsmSetRaft(struct raft_fsm *fsm, struct raft *raft)
{
	SlMetaFsm  *f = fsm->data;

	if (f != NULL)
		f->raft = raft;
}

void
SlMetaFsmClose(struct raft_fsm *fsm)
{
	free(fsm->data);
	fsm->data = NULL;
}
