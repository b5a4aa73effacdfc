/*
 * The transaction coordinator's periodic pass (server/txn/coordinator.h,
 * SlTxnExpire), run by the cleaner after each retention pass: aborts
 * timed-out transactions, finishes those left in a Prepare state, removes
 * idle transactional ids.
 */
#ifndef SL_BGWORKERS_TXN_EXPIRY_H
#define SL_BGWORKERS_TXN_EXPIRY_H

extern void SlTransactionsExpire(void);

#endif							/* SL_BGWORKERS_TXN_EXPIRY_H */
