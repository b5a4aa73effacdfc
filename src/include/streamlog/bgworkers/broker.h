/*
 * Broker workers: background workers that serve the Kafka protocol.
 */
#ifndef SL_BROKER_H
#define SL_BROKER_H

#include "postgres.h"

extern void SlBrokerRegister(void);
extern PGDLLEXPORT void SlBrokerMain(Datum arg);

#endif							/* SL_BROKER_H */
