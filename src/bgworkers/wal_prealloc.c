/*
 * WAL segments made ahead by another broker worker, see wal_prealloc.h.
 *
 * XLogFileInit is what PostgreSQL's own processes call for a segment they
 * need (and the checkpointer for the one ahead): it opens the segment if it
 * exists, else makes it under a temporary name and installs it under
 * ControlFileLock, so that two processes making the same segment at once
 * both end with it (the second one's becomes a later segment, or goes).
 * The broker that needs a segment before it is ready simply makes it
 * itself, as without this.
 */
#include "postgres.h"

#include <unistd.h>

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"

#include "streamlog/bgworkers/broker_stats.h"
#include "streamlog/bgworkers/wal_prealloc.h"
#include "streamlog/shmem.h"

/*
 * Segments kept ready past the one being written: at 2 the producing
 * broker still made one in ten itself at 1 KiB records (the helper, busy
 * making the one before, came late); 4 are 64 MB of WAL files made early
 */
#define SEGMENTS_AHEAD 4

typedef struct SlWalPrealloc
{
	pg_atomic_uint64 wanted;	/* segments up to this one should exist */
	pg_atomic_uint64 claimed;	/* a worker makes them up to this one */
	pg_atomic_uint32 worker;	/* the worker asked */
} SlWalPrealloc;

static SlWalPrealloc *prealloc = NULL;

Size
SlWalPreallocShmemSize(void)
{
	return MAXALIGN(sizeof(SlWalPrealloc));
}

void
SlWalPreallocShmemInit(void)
{
	bool		found;

	prealloc = ShmemInitStruct("streamlog WAL preallocation", SlWalPreallocShmemSize(), &found);
	if (!found)
	{
		pg_atomic_init_u64(&prealloc->wanted, 0);
		pg_atomic_init_u64(&prealloc->claimed, 0);
		pg_atomic_init_u32(&prealloc->worker, 0);
	}
}

void
SlWalPreallocAsk(int worker_index)
{
	static XLogSegNo last_seen = 0;
	XLogSegNo	segno;
	uint64		target;
	uint64		wanted;
	uint32		connections = 0;
	int			helper;
	int			procno;

	XLByteToSeg(GetXLogInsertRecPtr(), segno, wal_segment_size);
	/* once per segment: a look at shared memory, no more, per commit */
	if (segno == last_seen)
		return;
	last_seen = segno;
	helper = SlBrokerStatsFewestConnections(worker_index, &connections);
	if (helper < 0)
		return;					/* a worker alone makes its own, as before */
	target = (uint64) segno + SEGMENTS_AHEAD;
	wanted = pg_atomic_read_u64(&prealloc->wanted);
	while (wanted < target)
		if (pg_atomic_compare_exchange_u64(&prealloc->wanted, &wanted, target))
			break;
	if (wanted >= target)
		return;					/* asked already */
	pg_atomic_write_u32(&prealloc->worker, (uint32) helper);
	procno = sl_shared->broker_procno[helper];
	if (procno >= 0)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

void
SlWalPreallocWork(int worker_index)
{
	uint64		wanted;
	uint64		claimed;
	XLogSegNo	segno;
	TimeLineID	tli;

	if (prealloc == NULL ||
		pg_atomic_read_u32(&prealloc->worker) != (uint32) worker_index)
		return;
	wanted = pg_atomic_read_u64(&prealloc->wanted);
	claimed = pg_atomic_read_u64(&prealloc->claimed);
	if (wanted <= claimed ||
		!pg_atomic_compare_exchange_u64(&prealloc->claimed, &claimed, wanted))
		return;
	/* a standby's WAL comes from its primary */
	if (RecoveryInProgress())
		return;
	tli = GetWALInsertionTimeLine();
	XLByteToSeg(GetXLogInsertRecPtr(), segno, wal_segment_size);
	for (XLogSegNo s = Max(segno + 1, (XLogSegNo) claimed + 1); s <= (XLogSegNo) wanted; s++)
		close(XLogFileInit(s, tli));
}
