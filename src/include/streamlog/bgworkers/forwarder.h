/*
 * The forwarder: a background worker (cluster mode only) that delivers SQL
 * produce to partitions other nodes lead (replication/produce_forward.c).
 */
#ifndef SL_BGWORKERS_FORWARDER_H
#define SL_BGWORKERS_FORWARDER_H

#include "postgres.h"

extern void SlForwarderRegister(void);
extern PGDLLEXPORT void SlForwarderMain(Datum arg);

#endif							/* SL_BGWORKERS_FORWARDER_H */
