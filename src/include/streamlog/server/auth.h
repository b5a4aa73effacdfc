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
 * May a client from this address connect to a listener of this protocol
 * at all?  False, with *why, where nobody could act for it: a PLAINTEXT
 * listener, a client from another machine, and no
 * streamlog.anonymous_role (on SSL a certificate may still name a role,
 * on SASL a login).  Decided when the connection is accepted, as
 * pg_hba.conf does.
 */
extern bool SlPeerMayConnect(SlSecurityProtocol protocol, bool peer_is_loopback,
							 const char **why);

/*
 * May a request of an API that needs a principal be served on this
 * session now, before any catalogue lookup?  False, with *why set, if the
 * session must first authenticate (SASL listener) or its authentication
 * expired (KIP-368): the connection is then closed, as Kafka does.
 */
extern bool SlSessionMayServe(const SlSession *session, const char **why);

/*
 * Largest frame a client on a SASL listener may send before it has
 * authenticated (Kafka's sasl.server.max.receive.size): enough for any
 * SASL token or ApiVersions request, so that nobody can make the worker
 * allocate streamlog.max_request_size without logging in
 */
#define SL_UNAUTHENTICATED_MAX_FRAME (512 * 1024)

/* The largest frame the connection of session may read now */
extern int32 SlSessionMaxFrameSize(const SlSession *session);

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

/*
 * SASL (server/auth/sasl.c).  Does the session expect its next frame to be
 * a raw SASL token (after SaslHandshake v0) rather than a Kafka request?
 * The connection asks when it cuts a frame.
 */
extern bool SlSaslExpectsRawToken(const SlSession *session);

/*
 * Count req's session as one of role's, for its CONNECTION LIMIT, until
 * the connection closes; false if the limit is reached.  Once per session.
 */
extern bool SlSessionCountRole(SlRequest *req, Oid role);

/* The connection of session closes: give back what its login holds */
extern void SlSessionEnd(SlSession *session);

/*
 * Kafka sessions per role, for CONNECTION LIMIT (server/auth/role_sessions.c):
 * counted in shared memory by broker worker, beside the role's SQL
 * backends.  A worker attaches at start, which forgets what an earlier
 * run of it counted.
 */
extern Size SlRoleSessionsShmemSize(void);
extern void SlRoleSessionsShmemInit(void);
extern void SlRoleSessionsAttach(int worker_index);

/*
 * Count a new Kafka session of role, unless that would pass the role's
 * CONNECTION LIMIT (superusers have none, as in PostgreSQL); false if so.
 * Inside a transaction.
 */
extern bool SlRoleSessionAdmit(Oid role);
extern void SlRoleSessionRelease(Oid role);

/*
 * From _PG_init: SQL logins count the role's Kafka sessions too
 * (ClientAuthentication_hook), so that its CONNECTION LIMIT holds for
 * both doors together
 */
extern void SlRoleSessionsInstallHook(void);

#endif							/* SL_AUTH_H */
