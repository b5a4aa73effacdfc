/*
 * Server settings of streamlog, all named streamlog.*.
 */
#ifndef SL_GUC_H
#define SL_GUC_H

extern int	sl_batch_bytes;
extern char *sl_database;
extern int	sl_max_partitions;
extern int	sl_retention_check_interval;

extern void SlDefineGucs(void);

#endif							/* SL_GUC_H */
