/*
 * Who a Kafka session is: the PostgreSQL role its requests run as.
 *
 * On a SASL listener the role is the one that authenticated (SaslHandshake
 * and SaslAuthenticate, server/auth/sasl.c); before that only ApiVersions
 * and the SASL APIs are served.  On a listener without SASL it is decided
 * on the first request (server/auth/session_role.c): the role a verified
 * client certificate maps to, else streamlog.anonymous_role, else, for a
 * client on this machine, the bootstrap superuser (as initdb's trust for
 * local connections), else nobody: the connection is refused.
 *
 * Each request then runs with SetUserIdAndSecContext(role,
 * SECURITY_LOCAL_USERID_CHANGE) inside its transaction (server/dispatch.c),
 * so that every privilege check is PostgreSQL's own for that role.
 */
#ifndef SL_AUTH_H
#define SL_AUTH_H

#include "postgres.h"

#include "streamlog/server/request.h"
#include "streamlog/server/session.h"

/* Does the session's listener ask for SASL (SASL_PLAINTEXT, SASL_SSL)? */
extern bool SlSessionUsesSasl(const SlSession *session);

/* Does it run over TLS (SSL, SASL_SSL)? */
extern bool SlSessionUsesTls(const SlSession *session);

/*
 * May a request of an API that needs a principal be served on this
 * session now, before any catalogue lookup?  False, with *why set, if the
 * session must first authenticate (SASL listener) or its authentication
 * expired (KIP-368): the connection is then closed, as Kafka does.
 */
extern bool SlSessionMayServe(const SlSession *session, const char **why);

/*
 * The role req's session acts as, deciding it on the first request of a
 * listener without SASL, and checking that the role still exists.  Runs
 * inside a transaction.  InvalidOid, with *why set, if nobody: the
 * connection is to be closed.
 */
extern Oid	SlSessionRole(SlRequest *req, const char **why);

/*
 * May role log in now, as PostgreSQL checks it at connection time: it
 * exists, has LOGIN, and its VALID UNTIL has not passed.  False with *why
 * (for the server log only) if not.  Inside a transaction.
 */
extern bool SlRoleMayLogIn(Oid role, const char **why);

#endif							/* SL_AUTH_H */
