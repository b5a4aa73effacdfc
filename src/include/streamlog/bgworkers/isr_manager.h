/*
 * The ISR manager: a background worker of a node of a cluster that asks
 * the controller to change the ISR of the partitions this node leads
 * (Kafka's maybeShrinkIsr / maybeExpandIsr through AlterPartition,
 * KIP-497).  A worker of its own because asking waits for the controller,
 * which a broker worker's loop must never do.
 */
#ifndef SL_ISR_MANAGER_H
#define SL_ISR_MANAGER_H

#include "postgres.h"

extern void SlIsrManagerRegister(void);
extern PGDLLEXPORT void SlIsrManagerMain(Datum arg);

#endif							/* SL_ISR_MANAGER_H */
