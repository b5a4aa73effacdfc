/*
 * Broker workers: background workers that serve the Kafka protocol.
 */
#ifndef SL_BROKER_H
#define SL_BROKER_H

#include "postgres.h"

extern void SlBrokerRegister(void);
extern PGDLLEXPORT void SlBrokerMain(Datum arg);

/*
 * Wake the broker workers that have Fetch requests waiting for data: some
 * partition's high watermark moved.  Cheap when nobody waits.
 */
extern void SlBrokerWakeFetchers(void);

#endif							/* SL_BROKER_H */
