/*
 * SaslHandshake (API key 17, v0-1) and SaslAuthenticate (API key 36,
 * v0-2; v2 is the first flexible one): Kafka clients log in as PostgreSQL
 * roles.
 *
 * Mechanisms:
 *	 PLAIN			the password, checked against the role's pg_authid
 *					verifier as PostgreSQL checks a password (SASLprep,
 *					SCRAM or MD5); refused on a listener without TLS unless
 *					streamlog.sasl_plain_without_tls is on
 *	 SCRAM-SHA-256	against the role's own verifier in pg_authid: one
 *					password, set with ALTER ROLE ... PASSWORD, for both doors
 *	 SCRAM-SHA-512	against streamlog's own verifier of the role
 *					(storage/scram_credentials.h), as PostgreSQL has none
 *
 * Framing.  After SaslHandshake v1 the tokens come in SaslAuthenticate
 * requests.  After SaslHandshake v0 (kafka-python, old clients) they come
 * as raw size-prefixed frames without a Kafka header, answered the same
 * way: the session says so (SlSaslExpectsRawToken) and the connection
 * marks such a frame (req->sasl_raw) instead of parsing a header.  A raw
 * exchange that fails can only be answered by closing the connection.
 *
 * As Kafka's SaslServerAuthenticator: a failed authentication is answered
 * with SASL_AUTHENTICATION_FAILED and a message that gives no reason, then
 * the connection is closed; the reason goes to the server log, worded as
 * PostgreSQL's own ("password authentication failed for user ...").  An
 * unknown user goes through a mock SCRAM exchange, as PostgreSQL's does,
 * so that the answers do not tell which users exist.
 *
 * KIP-368: with streamlog.connections_max_reauth set, SaslAuthenticate v1+
 * answers the session's lifetime; the client re-authenticates on the open
 * connection (SaslHandshake v1 then SaslAuthenticate, same mechanism, same
 * role) before it ends, or its next request closes the connection.
 */
#include "postgres.h"

#include "common/base64.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "libpq/crypt.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/acl.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metrics/connections.h"
#include "streamlog/metrics/counters.h"
#include "streamlog/protocol/scram.h"
#include "streamlog/server/auth.h"
#include "streamlog/server/handlers.h"
#include "streamlog/storage/scram_credentials.h"

/* What a client is told when it may not log in, whatever the reason */
#define FAILED_MESSAGE "Authentication failed during authentication due to invalid credentials with SASL mechanism %s"

/* Bytes of randomness in the server's part of a SCRAM nonce */
#define SERVER_NONCE_BYTES 18

typedef enum SaslMechanism
{
	MECH_PLAIN,
	MECH_SCRAM_SHA_256,
	MECH_SCRAM_SHA_512,
	NUM_MECHANISMS
} SaslMechanism;

static const char *const mechanism_names[NUM_MECHANISMS] = {
	[MECH_PLAIN] = "PLAIN",
	[MECH_SCRAM_SHA_256] = "SCRAM-SHA-256",
	[MECH_SCRAM_SHA_512] = "SCRAM-SHA-512",
};

typedef enum SaslPhase
{
	PHASE_START,				/* no handshake yet */
	PHASE_HANDSHAKEN,			/* mechanism chosen, first token expected */
	PHASE_SCRAM_FIRST_SENT,		/* server-first sent, client-final expected */
	PHASE_AUTHENTICATED,		/* done; a handshake may start a re-authentication */
	PHASE_FAILED				/* refused: the connection is closing */
} SaslPhase;

/* A session's SASL state (SlSession.sasl_state), in its connection's context */
typedef struct SaslState
{
	MemoryContext exchange_context; /* of the exchange under way */
	SaslPhase	phase;
	bool		raw;			/* tokens come as raw frames (handshake v0) */
	SaslMechanism mechanism;

	/* SCRAM exchange under way, in exchange_context */
	SlScramClientFirst first;
	SlScramSecret secret;
	char	   *server_first;
	char	   *nonce;
	Oid			scram_role;
	char	   *user;
	const char *mock_why;		/* not NULL: a mock exchange, bound to fail, and why */

	/* once authenticated */
	SaslMechanism authenticated_mechanism;
	Oid			counted_role;	/* counted in this role's sessions, if valid */
} SaslState;

/* The session's state, made on first use in its connection's context */
static SaslState *
sasl_state(SlRequest *req)
{
	SlSession  *session = req->session;

	if (session->sasl_state == NULL)
	{
		/* req's context is a child of its connection's, which the session's lives in */
		MemoryContext conn_context = MemoryContextGetParent(req->context);
		SaslState  *state = MemoryContextAllocZero(conn_context, sizeof(SaslState));

		state->exchange_context = AllocSetContextCreate(conn_context,
														"streamlog SASL exchange",
														ALLOCSET_SMALL_SIZES);
		session->sasl_state = state;
	}
	return session->sasl_state;
}

bool
SlSaslExpectsRawToken(const SlSession *session)
{
	const SaslState *state = session->sasl_state;

	return state != NULL && state->raw &&
		(state->phase == PHASE_HANDSHAKEN || state->phase == PHASE_SCRAM_FIRST_SENT);
}

/* Is mechanism m served on this session's listener? */
static bool
mechanism_enabled(const SlSession *session, SaslMechanism m)
{
	return m != MECH_PLAIN || SlSessionUsesTls(session) || sl_sasl_plain_without_tls;
}

static bool
mechanism_by_name(SlStr name, SaslMechanism *m)
{
	for (int i = 0; i < NUM_MECHANISMS; i++)
		if (name.len == (int32) strlen(mechanism_names[i]) &&
			memcmp(name.data, mechanism_names[i], name.len) == 0)
		{
			*m = (SaslMechanism) i;
			return true;
		}
	return false;
}

bool
SlHandleSaslHandshake(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlSaslHandshakeRequest request;
	SlSaslHandshakeResponse resp;
	SlSession  *session = req->session;
	SaslState  *state;
	SaslMechanism m;
	int			n = 0;

	if (!SlSaslHandshakeRequestDecode(body, req->api_version, &request))
		return false;
	SlSaslHandshakeResponseInit(&resp);
	SL_ARRAY_ALLOC(resp.mechanisms, NUM_MECHANISMS);
	for (int i = 0; i < NUM_MECHANISMS; i++)
		if (mechanism_enabled(session, (SaslMechanism) i))
			resp.mechanisms.items[n++] = SlStrFromCString(mechanism_names[i]);
	resp.mechanisms.n = n;

	if (!SlSessionUsesSasl(session))
	{
		/* As Kafka on a listener without SASL */
		resp.error_code = SL_ERR_ILLEGAL_SASL_STATE;
		resp.mechanisms.n = 0;
		SlSaslHandshakeResponseEncode(out, req->api_version, &resp);
		return true;
	}
	state = sasl_state(req);
	if (state->phase == PHASE_HANDSHAKEN || state->phase == PHASE_SCRAM_FIRST_SENT ||
		state->phase == PHASE_FAILED ||
		(state->phase == PHASE_AUTHENTICATED && req->api_version < 1))
	{
		/* a second handshake in one exchange; re-authentication needs v1 */
		ereport(LOG,
				(errmsg("streamlog broker: unexpected SaslHandshake from %s, closing the connection",
						req->peer)));
		resp.error_code = SL_ERR_ILLEGAL_SASL_STATE;
		req->close_after = true;
		SlSaslHandshakeResponseEncode(out, req->api_version, &resp);
		return true;
	}
	if (!mechanism_by_name(request.mechanism, &m) || !mechanism_enabled(session, m) ||
		(state->phase == PHASE_AUTHENTICATED && m != state->authenticated_mechanism))
	{
		const char *name = pnstrdup(request.mechanism.data, Max(request.mechanism.len, 0));

		if (mechanism_by_name(request.mechanism, &m) && m == MECH_PLAIN &&
			!mechanism_enabled(session, m))
			ereport(LOG,
					(errmsg("streamlog broker: SASL mechanism PLAIN refused to %s on listener %s without TLS",
							req->peer, session->listener_name),
					 errdetail("The password would cross the network in the clear."),
					 errhint("Use SCRAM-SHA-256 or SCRAM-SHA-512, a SASL_SSL listener, or set streamlog.sasl_plain_without_tls = on.")));
		else if (state->phase == PHASE_AUTHENTICATED)
			ereport(LOG,
					(errmsg("streamlog broker: re-authentication of %s with SASL mechanism \"%s\" refused: it authenticated with %s",
							req->peer, name, mechanism_names[state->authenticated_mechanism])));
		else
			ereport(LOG,
					(errmsg("streamlog broker: unsupported SASL mechanism \"%s\" requested by %s",
							name, req->peer)));
		resp.error_code = SL_ERR_UNSUPPORTED_SASL_MECHANISM;
		req->close_after = true;
		SlSaslHandshakeResponseEncode(out, req->api_version, &resp);
		return true;
	}

	MemoryContextReset(state->exchange_context);
	state->mechanism = m;
	state->phase = PHASE_HANDSHAKEN;
	state->raw = req->api_version == 0;
	state->mock_why = NULL;
	resp.error_code = SL_ERR_NONE;
	SlSaslHandshakeResponseEncode(out, req->api_version, &resp);
	return true;
}

/* The outcome of one token */
typedef struct SaslStep
{
	bool		failed;			/* refused: answer so and close */
	bool		done;			/* authenticated */
	const char *challenge;		/* the server's next token (may be "") */
	int			challenge_len;
	Oid			role;			/* once done */
	const char *user;			/* for the log line of a failure */
	const char *why;			/* for it too: PostgreSQL's DETAIL */
	const char *message;		/* for it too: errmsg, if not a password failure */
} SaslStep;

static void
step_fail(SaslStep *step, const char *user, const char *why)
{
	step->failed = true;
	step->user = user;
	step->why = why;
}

/* Log a refused login as PostgreSQL words it; nothing of it to the client */
static void
log_failure(SlRequest *req, SaslState *state, const SaslStep *step)
{
	const char *mech = mechanism_names[state->mechanism];

	if (step->message)
		ereport(LOG,
				(errmsg("streamlog broker: %s (Kafka login with SASL %s from %s)",
						step->message, mech, req->peer)));
	else if (step->user)
		ereport(LOG,
				(errmsg("streamlog broker: password authentication failed for user \"%s\" (Kafka login with SASL %s from %s)",
						step->user, mech, req->peer),
				 step->why ? errdetail_log("%s", step->why) : 0));
	else
		ereport(LOG,
				(errmsg("streamlog broker: malformed SASL %s message from %s: %s",
						mech, req->peer, step->why)));
}

/* A user name from the wire, or NULL (with why) if no role could have it */
static const char *
checked_user_name(const char *user, SaslStep *step)
{
	if (user[0] == '\0' || strlen(user) >= NAMEDATALEN)
	{
		step_fail(step, user, psprintf("Role \"%s\" does not exist.", user));
		return NULL;
	}
	return user;
}

/*
 * PLAIN (RFC 4616): authzid NUL authcid NUL password.  The password is
 * checked as PostgreSQL checks one sent in the clear: against the role's
 * verifier, SCRAM (after SASLprep) or MD5, with VALID UNTIL.
 */
static void
plain_step(const char *token, int len, SaslStep *step)
{
	const char *end = token + len;
	const char *nul1 = memchr(token, '\0', len);
	const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', end - nul1 - 1) : NULL;
	char	   *authzid;
	char	   *user;
	char	   *password;
	char	   *shadow;
	const char *logdetail = NULL;

	if (nul2 == NULL || memchr(nul2 + 1, '\0', end - nul2 - 1) != NULL)
	{
		step->failed = true;
		step->why = "a PLAIN token is authzid NUL user NUL password";
		return;
	}
	authzid = pnstrdup(token, nul1 - token);
	user = pnstrdup(nul1 + 1, nul2 - nul1 - 1);
	password = pnstrdup(nul2 + 1, end - nul2 - 1);
	step->user = user;
	if (authzid[0] != '\0' && strcmp(authzid, user) != 0)
	{
		step_fail(step, user, psprintf("Authorization id \"%s\" differs from the user name.", authzid));
		return;
	}
	if (checked_user_name(user, step) == NULL)
		return;
	shadow = get_role_password(user, &logdetail);
	if (shadow == NULL ||
		plain_crypt_verify(user, shadow, password, &logdetail) != STATUS_OK)
	{
		explicit_bzero(password, strlen(password));
		step_fail(step, user, logdetail);
		return;
	}
	explicit_bzero(password, strlen(password));
	step->done = true;
	step->role = get_role_oid(user, false);
}

/*
 * The secret of a user who cannot log in with SCRAM (unknown, no verifier
 * of this hash, expired), so that the exchange runs to its end as for
 * anyone: a salt that is the same for the same name (from a key drawn
 * once per worker), keys nobody can match
 */
static void
mock_secret(SlScramHash hash, const char *user, SlScramSecret *secret)
{
	static uint8 mock_key[32];
	static bool have_key = false;
	uint8		salt[PG_SHA256_DIGEST_LENGTH];
	pg_cryptohash_ctx *ctx;
	int			n;

	if (!have_key)
	{
		if (!pg_strong_random(mock_key, sizeof(mock_key)))
			elog(ERROR, "could not generate random bytes");
		have_key = true;
	}
	ctx = pg_cryptohash_create(PG_SHA256);
	if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, mock_key, sizeof(mock_key)) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) user, strlen(user)) < 0 ||
		pg_cryptohash_final(ctx, salt, sizeof(salt)) < 0)
		elog(ERROR, "could not compute a mock SCRAM salt");
	pg_cryptohash_free(ctx);
	memset(secret, 0, sizeof(*secret));
	secret->hash = hash;
	secret->iterations = SL_SCRAM_DEFAULT_ITERATIONS;
	secret->salt = palloc(pg_b64_enc_len(SL_SCRAM_SALT_LEN) + 1);
	n = pg_b64_encode((const char *) salt, SL_SCRAM_SALT_LEN, secret->salt,
					  pg_b64_enc_len(SL_SCRAM_SALT_LEN) + 1);
	secret->salt[Max(n, 0)] = '\0';
}

/* The verifier user logs in with by SCRAM, or a mock one and why */
static void
scram_secret(SaslState *state, SlScramHash hash, const char *user)
{
	const char *logdetail = NULL;

	state->scram_role = InvalidOid;
	if (hash == SL_SCRAM_SHA_256)
	{
		char	   *shadow = strlen(user) < NAMEDATALEN ?
			get_role_password(user, &logdetail) : NULL;

		if (shadow != NULL && get_password_type(shadow) == PASSWORD_TYPE_SCRAM_SHA_256 &&
			SlScramParseSecret(shadow, &state->secret) == NULL)
		{
			state->scram_role = get_role_oid(user, false);
			return;
		}
		if (shadow != NULL)
			logdetail = psprintf("User \"%s\" does not have a valid SCRAM secret.", user);
		else if (logdetail == NULL)
			logdetail = psprintf("Role \"%s\" does not exist.", user);
	}
	else
	{
		Oid			role = strlen(user) < NAMEDATALEN ? get_role_oid(user, true) : InvalidOid;

		if (OidIsValid(role) && SlScramCredentialGet(role, &state->secret))
		{
			state->scram_role = role;
			return;
		}
		logdetail = OidIsValid(role) ?
			psprintf("User \"%s\" has no SCRAM-SHA-512 credential.", user) :
			psprintf("Role \"%s\" does not exist.", user);
	}
	state->mock_why = logdetail;
	mock_secret(hash, user, &state->secret);
}

/* SCRAM client-first: choose the verifier, answer server-first */
static void
scram_first_step(SlRequest *req, SaslState *state, const char *token, int len,
				 SaslStep *step)
{
	SlScramHash hash = state->mechanism == MECH_SCRAM_SHA_512 ?
		SL_SCRAM_SHA_512 : SL_SCRAM_SHA_256;
	MemoryContext oldcxt = MemoryContextSwitchTo(state->exchange_context);
	const char *err = SlScramParseClientFirst(token, len, &state->first);
	uint8		random[SERVER_NONCE_BYTES];
	char	   *b64;
	int			n;

	if (err != NULL)
	{
		MemoryContextSwitchTo(oldcxt);
		step->failed = true;
		step->why = pstrdup(err);
		return;
	}
	state->user = state->first.username;
	scram_secret(state, hash, state->user);

	if (!pg_strong_random(random, sizeof(random)))
		elog(ERROR, "could not generate a SCRAM nonce");
	b64 = palloc(pg_b64_enc_len(sizeof(random)) + 1);
	n = pg_b64_encode((const char *) random, sizeof(random), b64,
					  pg_b64_enc_len(sizeof(random)) + 1);
	b64[Max(n, 0)] = '\0';
	state->nonce = psprintf("%s%s", state->first.client_nonce, b64);
	state->server_first = SlScramServerFirst(state->nonce, &state->secret);
	MemoryContextSwitchTo(oldcxt);

	state->phase = PHASE_SCRAM_FIRST_SENT;
	step->challenge = state->server_first;
	step->challenge_len = strlen(state->server_first);
}

/* SCRAM client-final: check the proof, answer server-final */
static void
scram_final_step(SaslState *state, const char *token, int len, SaslStep *step)
{
	SlScramClientFinal final;
	char	   *server_final = NULL;
	const char *err = SlScramParseClientFinal(token, len, &final);

	if (err != NULL)
	{
		step->failed = true;
		step->why = err;
		return;
	}
	err = SlScramVerifyFinal(&state->secret, &state->first, state->server_first,
							 state->nonce, &final, &server_final);
	if (state->mock_why != NULL)
	{
		step_fail(step, state->user, state->mock_why);
		return;
	}
	if (err != NULL)
	{
		step_fail(step, state->user,
				  strcmp(err, "invalid proof") == 0 ?
				  psprintf("Password does not match for user \"%s\".", state->user) : err);
		return;
	}
	step->done = true;
	step->role = state->scram_role;
	step->user = state->user;
	step->challenge = server_final;
	step->challenge_len = strlen(server_final);
}

/*
 * The credentials of role were verified: may it log in now?  As
 * PostgreSQL checks after authentication (LOGIN, VALID UNTIL, CONNECTION
 * LIMIT), and a re-authentication must keep the role, as Kafka requires.
 */
static void
admit(SlRequest *req, SaslState *state, SaslStep *step)
{
	SlSession  *session = req->session;
	const char *why;

	if (!SlRoleMayLogIn(step->role, &why))
	{
		step->failed = true;
		step->message = why;
		return;
	}
	if (OidIsValid(session->role))
	{
		if (step->role != session->role)
		{
			step->failed = true;
			step->message = psprintf("re-authentication as role \"%s\" on a session of role \"%s\" refused",
									 step->user, GetUserNameFromId(session->role, true));
		}
		return;
	}
	if (!SlSessionCountRole(req, step->role))
	{
		step->failed = true;
		step->message = psprintf("too many connections for role \"%s\"", step->user);
		return;
	}
}

bool
SlSessionCountRole(SlRequest *req, Oid role)
{
	SaslState  *state = sasl_state(req);

	/* counted once per session, whatever a client out of step sends */
	if (state->counted_role == role)
		return true;
	if (OidIsValid(state->counted_role))
	{
		SlRoleSessionRelease(state->counted_role);
		state->counted_role = InvalidOid;
	}
	if (!SlRoleSessionAdmit(role))
		return false;
	state->counted_role = role;
	return true;
}

bool
SlHandleSaslAuthenticate(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlSaslAuthenticateRequest request;
	SlSaslAuthenticateResponse resp;
	SlSession  *session = req->session;
	SaslState  *state = session->sasl_state;
	SaslStep	step = {0};
	const char *token;
	int			len;
	bool		reauth;

	if (req->sasl_raw)
	{
		len = (int) (req->frame_len - req->header_len);
		token = (const char *) req->frame + req->header_len;
	}
	else
	{
		if (!SlSaslAuthenticateRequestDecode(body, req->api_version, &request))
			return false;
		token = (const char *) request.auth_bytes.data;
		len = Max(request.auth_bytes.len, 0);
	}
	SlSaslAuthenticateResponseInit(&resp);
	resp.error_message = SL_STR_NULL;
	resp.auth_bytes = (SlBytes) {(const uint8 *) "", 0};

	if (!SlSessionUsesSasl(session) || state == NULL ||
		(state->phase != PHASE_HANDSHAKEN && state->phase != PHASE_SCRAM_FIRST_SENT))
	{
		resp.error_code = SL_ERR_ILLEGAL_SASL_STATE;
		resp.error_message = SlStrFromCString("Unexpected SaslAuthenticate: send SaslHandshake first");
		/*
		 * As Kafka: answered, and the connection goes on, where there is
		 * nothing to authenticate or the client already did; before
		 * authentication, a client out of step is dropped
		 */
		if (SlSessionUsesSasl(session) && !OidIsValid(session->role))
		{
			ereport(LOG,
					(errmsg("streamlog broker: SaslAuthenticate from %s without a SaslHandshake before it, closing the connection",
							req->peer)));
			req->close_after = true;
		}
		SlSaslAuthenticateResponseEncode(out, req->api_version, &resp);
		return true;
	}

	reauth = OidIsValid(session->role);
	if (state->phase == PHASE_SCRAM_FIRST_SENT)
		scram_final_step(state, token, len, &step);
	else if (state->mechanism == MECH_PLAIN)
		plain_step(token, len, &step);
	else
		scram_first_step(req, state, token, len, &step);
	if (step.done)
		admit(req, state, &step);

	if (step.failed)
	{
		log_failure(req, state, &step);
		SlMetricsCountListener(session->listener_index, session->listener_name,
							   SL_LISTENER_AUTH_FAILED);
		MemoryContextReset(state->exchange_context);
		state->phase = PHASE_FAILED;
		state->raw = false;
		/* nothing more is served, not even what was pipelined behind it */
		session->role = InvalidOid;
		req->close_after = true;
		if (req->sasl_raw)
		{
			/* nothing can be said in a raw exchange but closing */
			req->send_response = false;
			return true;
		}
		resp.error_code = SL_ERR_SASL_AUTHENTICATION_FAILED;
		resp.error_message = SlStrFromCString(psprintf(FAILED_MESSAGE,
													   mechanism_names[state->mechanism]));
		SlSaslAuthenticateResponseEncode(out, req->api_version, &resp);
		return true;
	}

	if (step.done)
	{
		session->role = step.role;
		state->phase = PHASE_AUTHENTICATED;
		state->authenticated_mechanism = state->mechanism;
		state->raw = false;
		session->auth_expiry = sl_connections_max_reauth > 0 ?
			TimestampTzPlusMilliseconds(GetCurrentTimestamp(), sl_connections_max_reauth) : 0;
		resp.session_lifetime_ms = sl_connections_max_reauth;
		/* as PostgreSQL's "connection authorized" with log_connections */
		ereport(Log_connections ? LOG : DEBUG1,
				(errmsg("streamlog broker: %s from %s as role \"%s\" with SASL %s",
						reauth ? "re-authenticated" : "authenticated",
						req->peer, step.user, mechanism_names[state->mechanism])));
		SlMetricsCountListener(session->listener_index, session->listener_name,
							   SL_LISTENER_AUTH_SUCCEEDED);
		SlConnActivitySetPrincipal(session->activity_slot, psprintf("User:%s", step.user));
		MemoryContextReset(state->exchange_context);
	}
	if (req->sasl_raw)
	{
		SlWriteRaw(out, step.challenge ? step.challenge : "", step.challenge ? step.challenge_len : 0);
		return true;
	}
	resp.error_code = SL_ERR_NONE;
	if (step.challenge)
		resp.auth_bytes = (SlBytes) {(const uint8 *) step.challenge, step.challenge_len};
	SlSaslAuthenticateResponseEncode(out, req->api_version, &resp);
	return true;
}

void
SlSessionEnd(SlSession *session)
{
	SaslState  *state = session->sasl_state;

	if (state != NULL && OidIsValid(state->counted_role))
	{
		SlRoleSessionRelease(state->counted_role);
		state->counted_role = InvalidOid;
	}
}
