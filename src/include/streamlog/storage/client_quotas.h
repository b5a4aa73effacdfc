/*
 * Client quotas as stored in streamlog.client_quota: one rate per entity
 * (a user, a client id, or both; a NULL name is the <default> entity of its
 * type) and quota key.  Both doors go through here: the SQL function
 * streamlog.alter_client_quota() checks and writes, the Kafka handlers and
 * the broker's enforcement read.
 */
#ifndef SL_STORAGE_CLIENT_QUOTAS_H
#define SL_STORAGE_CLIENT_QUOTAS_H

#include "postgres.h"

#include "nodes/pg_list.h"

typedef struct SlClientQuota
{
	bool		has_user;		/* the entity has a user part */
	char	   *user;			/* its name, NULL for <default> */
	bool		has_client_id;
	char	   *client_id;		/* NULL for <default> */
	char	   *key;			/* producer_byte_rate, ... */
	double		value;
} SlClientQuota;

/*
 * Every stored quota, as a List of SlClientQuota made in the current
 * memory context; in a transaction
 */
extern List *SlClientQuotasList(void);

/*
 * Set (remove false) or remove one quota of one entity, checked as Kafka
 * checks it (ERROR 22023 with what is wrong); validate_only checks and
 * writes nothing.  In a transaction; the caller checked the privilege
 * (ALTER_CONFIGS on the cluster): the table is written as its owner.
 */
extern void SlClientQuotaAlter(const SlClientQuota *quota, bool remove, bool validate_only);

/*
 * The same with the entity as JSON ({"user": "alice", "client-id": null});
 * entity_json and key may be NULL (then refused as invalid)
 */
extern void SlClientQuotaApply(const char *entity_json, const char *key, double value,
							   bool remove, bool validate_only);

#endif							/* SL_STORAGE_CLIENT_QUOTAS_H */
