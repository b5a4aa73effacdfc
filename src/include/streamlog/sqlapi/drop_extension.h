/*
 * DROP EXTENSION streamlog and the lock table (drop_extension.c).
 */
#ifndef SL_DROP_EXTENSION_H
#define SL_DROP_EXTENSION_H

/* Install the utility hook (from _PG_init) */
extern void SlDropExtensionInit(void);

#endif							/* SL_DROP_EXTENSION_H */
