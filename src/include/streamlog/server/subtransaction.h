/*
 * Running a piece of a Kafka request in a subtransaction, so that an ERROR
 * in it fails that piece (a topic to create, a partition to read) with a
 * Kafka error code instead of the whole request and its connection.
 */
#ifndef SL_SUBTRANSACTION_H
#define SL_SUBTRANSACTION_H

#include "postgres.h"

/*
 * Run fn(arg) in a subtransaction, kept if keep and fn succeeds, rolled
 * back otherwise.  Returns NULL on success, or the error fn raised (copied
 * into the caller's memory context, the error state cleared).
 */
extern ErrorData *SlRunInSubtransaction(void (*fn) (void *arg), void *arg, bool keep);

#endif							/* SL_SUBTRANSACTION_H */
