/*
 * The isolation argument of the SQL readers (read(), history(),
 * consume()): Kafka's isolation.level, as text.
 */
#ifndef SL_ISOLATION_ARG_H
#define SL_ISOLATION_ARG_H

#include "postgres.h"

#include "fmgr.h"

/*
 * True for 'read_committed' (stop at the last stable offset, skip aborted
 * transactions), false for 'read_uncommitted'; any other value (or NULL)
 * is an error naming the two
 */
extern bool SlIsolationArgReadCommitted(FunctionCallInfo fcinfo, int argno);

#endif							/* SL_ISOLATION_ARG_H */
