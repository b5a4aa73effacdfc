/*-------------------------------------------------------------------------
 * spill_file.c
 *	  The temporary file produced batches wait in until commit
 *	  (spill_file.h).
 *
 * A BufFile would do, but it moves data in BLCKSZ pieces: a 256 kB batch
 * was 32 writes while produce() ran and 32 reads at commit, a million
 * system calls for a gigabyte.  Each batch is written once and read back
 * once, whole, so a plain temporary file (fd.c) with one write and one
 * read per batch is all that is needed.  temp_file_limit still applies.
 *
 * IDENTIFICATION
 *	  src/storage/spill_file.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/resowner.h"
#include "utils/wait_event.h"

#include "streamlog/storage/internal/spill_file.h"

/* What one FileRead or FileWrite moves at most (its amount is an int) */
#define SPILL_IO_MAX ((size_t) 1 << 30)

off_t
SlSpillWrite(SlSpillFile *spill, const void *data, size_t len)
{
	off_t		start = spill->end;
	size_t		done = 0;

	if (spill->file < 0)
	{
		ResourceOwner oldowner = CurrentResourceOwner;

		/* Lives until commit reads it, deleted if the transaction aborts */
		CurrentResourceOwner = TopTransactionResourceOwner;
		spill->file = OpenTemporaryFile(false);
		CurrentResourceOwner = oldowner;
		spill->end = 0;
		start = 0;
	}
	while (done < len)
	{
		int			n = (int) Min(len - done, SPILL_IO_MAX);
		int			written = FileWrite(spill->file, (char *) data + done, n,
										start + done, WAIT_EVENT_BUFFILE_WRITE);

		if (written <= 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write to the temporary file of produced records: %m"),
					 errhint("Check free space in the temporary directory, or raise streamlog.produce_memory to keep more in memory.")));
		done += written;
	}
	spill->end += len;
	return start;
}

void
SlSpillRead(SlSpillFile *spill, off_t offset, void *data, size_t len)
{
	size_t		done = 0;

	while (done < len)
	{
		int			n = (int) Min(len - done, SPILL_IO_MAX);
		int			nread = FileRead(spill->file, (char *) data + done, n,
									 offset + done, WAIT_EVENT_BUFFILE_READ);

		if (nread <= 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read %zu bytes from the temporary file of produced records: %m",
							len)));
		done += nread;
	}
}

void
SlSpillClose(SlSpillFile *spill)
{
	if (spill->file >= 0)
		FileClose(spill->file);
	spill->file = -1;
	spill->end = 0;
}
