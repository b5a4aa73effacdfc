/*
 * SCRAM-SHA-512 credentials of PostgreSQL roles, which pg_authid cannot
 * hold (it keeps SCRAM-SHA-256 verifiers only): one verifier per role in
 * streamlog.scram_credential, readable by superusers only, never a
 * password.  A row names its role by oid and by name, and counts only
 * while both still match: a dropped role's row is ignored and removed, and
 * a role that later takes the same oid does not inherit it.
 *
 * These functions read and write the table as the bootstrap superuser:
 * the callers (SaslAuthenticate, the SQL functions, Kafka's
 * Describe/AlterUserScramCredentials) check who may do what first.
 */
#ifndef SL_STORAGE_SCRAM_CREDENTIALS_H
#define SL_STORAGE_SCRAM_CREDENTIALS_H

#include "postgres.h"

#include "nodes/pg_list.h"

#include "streamlog/protocol/scram.h"

/*
 * May user set or remove role's credentials?  As ALTER ROLE ... PASSWORD:
 * a superuser any role's, a role its own; for roles that are not
 * superusers, also a role with CREATEROLE or with ALTER on the cluster
 * (Kafka's rule for AlterUserScramCredentials: the ACL store, which counts
 * streamlog_admin in).  The one rule of both doors (SQL and Kafka).
 */
extern bool SlScramCredentialMayManage(Oid user, Oid role);

/*
 * May user see which roles have credentials?  Kafka's rule for
 * DescribeUserScramCredentials: DESCRIBE on the cluster.
 */
extern bool SlScramCredentialMayDescribe(Oid user);

/* role's SCRAM-SHA-512 verifier into *secret; false if it has none */
extern bool SlScramCredentialGet(Oid role, SlScramSecret *secret);

/* Set (insert or replace) role's SCRAM-SHA-512 verifier */
extern void SlScramCredentialSet(Oid role, const SlScramSecret *secret);

/* Remove role's SCRAM-SHA-512 verifier; false if it had none */
extern bool SlScramCredentialDelete(Oid role);

/*
 * Set role's own pg_authid verifier to this SCRAM-SHA-256 one, as ALTER
 * ROLE ... PASSWORD '<verifier>' does: one password for SQL and Kafka
 */
extern void SlRolePasswordSet(Oid role, const SlScramSecret *secret);

/*
 * Remove role's SCRAM-SHA-256 password (ALTER ROLE ... PASSWORD NULL);
 * false if its password is no SCRAM-SHA-256 verifier
 */
extern bool SlRolePasswordDrop(Oid role);

/* A credential as Kafka describes it: no secret in it */
typedef struct SlScramCredentialInfo
{
	char	   *user;
	SlScramHash hash;
	int			iterations;
} SlScramCredentialInfo;

/*
 * The credentials of every role (user NULL) or of role user, sorted by
 * user then hash: SCRAM-SHA-256 verifiers of pg_authid and streamlog's
 * SCRAM-SHA-512 ones.  A List of SlScramCredentialInfo.
 */
extern List *SlScramCredentialList(const char *user);

#endif							/* SL_STORAGE_SCRAM_CREDENTIALS_H */
