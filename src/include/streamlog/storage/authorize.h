/*
 * The rules of Kafka's authorizer that take more than one privilege, for
 * both front doors: creating a topic (CREATE on the cluster or on the
 * topic's name) and writing as an idempotent producer (IDEMPOTENT_WRITE on
 * the cluster, or WRITE on some topic).  The SQL functions and the Kafka
 * handlers ask these, so that the two doors cannot drift apart; the single
 * checks are storage/acl.h's SlAclAllowed and SlAclCheck.
 */
#ifndef SL_STORAGE_AUTHORIZE_H
#define SL_STORAGE_AUTHORIZE_H

#include "postgres.h"

/* May the current user create the topic called name? */
extern bool SlMayCreateTopic(const char *name);

/* The same, or ERROR 42501 saying which privileges would do */
extern void SlCheckCreateTopic(const char *name);

/*
 * May the current user be an idempotent producer (InitProducerId without
 * a transactional id)?  As Kafka 3.9: IDEMPOTENT_WRITE on the cluster, or
 * WRITE on a topic; here an existing topic (Kafka also counts an ALLOW
 * entry whose pattern no topic matches yet).
 */
extern bool SlMayWriteIdempotently(void);

#endif							/* SL_STORAGE_AUTHORIZE_H */
