/*
 * The cleaner: a background worker that enforces retention.
 */
#ifndef SL_CLEANER_H
#define SL_CLEANER_H

#include "postgres.h"

extern void SlCleanerRegister(void);
extern PGDLLEXPORT void SlCleanerMain(Datum arg);

#endif							/* SL_CLEANER_H */
