/*
 * The temporary file a transaction's produced batches wait in past
 * streamlog.produce_memory (spill_file.c).  Internal to storage.
 */
#ifndef SL_STORAGE_INTERNAL_SPILL_FILE_H
#define SL_STORAGE_INTERNAL_SPILL_FILE_H

#include "storage/fd.h"

typedef struct SlSpillFile
{
	File		file;			/* -1 until the first write */
	off_t		end;			/* bytes written */
} SlSpillFile;

#define SL_SPILL_FILE_INIT {-1, 0}

/*
 * Append len bytes, in one write; returns where they start.  The file is
 * the top transaction's: deleted when it ends, whatever happens.
 */
extern off_t SlSpillWrite(SlSpillFile *spill, const void *data, size_t len);

/* Read len bytes at offset back, in one read */
extern void SlSpillRead(SlSpillFile *spill, off_t offset, void *data, size_t len);

/* Close and delete the file, if there is one */
extern void SlSpillClose(SlSpillFile *spill);

#endif							/* SL_STORAGE_INTERNAL_SPILL_FILE_H */
