/*
 * SCRAM, the server's side (RFC 5802, RFC 7677 and Kafka's SCRAM-SHA-512),
 * as pure functions; see scram.h.
 *
 * The keys are those of RFC 5802 section 3, with H and HMAC of the
 * mechanism's hash:
 *	 SaltedPassword = Hi(password, salt, i)	   (PBKDF2 with HMAC)
 *	 StoredKey = H(HMAC(SaltedPassword, "Client Key"))
 *	 ServerKey = HMAC(SaltedPassword, "Server Key")
 *	 AuthMessage = client-first-bare "," server-first "," client-final-without-proof
 *	 ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) must be StoredKey
 *	 server-final = "v=" base64(HMAC(ServerKey, AuthMessage))
 * the same computation as PostgreSQL's (src/backend/libpq/auth-scram.c)
 * and Kafka's (ScramFormatter), so that one verifier serves all three.
 */
#include "streamlog/protocol/codec_base.h"

#include "common/base64.h"
#include "common/cryptohash.h"
#include "common/hmac.h"

#include <limits.h>

#include "streamlog/protocol/scram.h"

static pg_cryptohash_type
hash_type(SlScramHash hash)
{
	return hash == SL_SCRAM_SHA_512 ? PG_SHA512 : PG_SHA256;
}

const char *
SlScramMechanismName(SlScramHash hash)
{
	return hash == SL_SCRAM_SHA_512 ? "SCRAM-SHA-512" : "SCRAM-SHA-256";
}

bool
SlScramMechanismByName(const char *name, SlScramHash *hash)
{
	if (strcmp(name, "SCRAM-SHA-256") == 0)
		*hash = SL_SCRAM_SHA_256;
	else if (strcmp(name, "SCRAM-SHA-512") == 0)
		*hash = SL_SCRAM_SHA_512;
	else
		return false;
	return true;
}

int
SlScramKeyLength(SlScramHash hash)
{
	return hash == SL_SCRAM_SHA_512 ? 64 : 32;
}

/* HMAC(key, data) into result (SlScramKeyLength bytes); false on failure */
static bool
hmac(SlScramHash hash, const uint8 *key, int keylen,
	 const uint8 *data, size_t len, uint8 *result)
{
	pg_hmac_ctx *ctx = pg_hmac_create(hash_type(hash));
	bool		ok;

	if (ctx == NULL)
		return false;
	ok = pg_hmac_init(ctx, key, keylen) == 0 &&
		pg_hmac_update(ctx, data, len) == 0 &&
		pg_hmac_final(ctx, result, SlScramKeyLength(hash)) == 0;
	pg_hmac_free(ctx);
	return ok;
}

/* H(data) into result; false on failure */
static bool
digest(SlScramHash hash, const uint8 *data, size_t len, uint8 *result)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(hash_type(hash));
	bool		ok;

	if (ctx == NULL)
		return false;
	ok = pg_cryptohash_init(ctx) == 0 &&
		pg_cryptohash_update(ctx, data, len) == 0 &&
		pg_cryptohash_final(ctx, result, SlScramKeyLength(hash)) == 0;
	pg_cryptohash_free(ctx);
	return ok;
}

/* Hi(password, salt, iterations): PBKDF2 with HMAC, one block */
static bool
salted_password(SlScramHash hash, const char *password, const uint8 *salt,
				int saltlen, int iterations, uint8 *result)
{
	int			keylen = SlScramKeyLength(hash);
	int			pwlen = strlen(password);
	uint8	   *first = palloc(saltlen + 4);
	uint8		u[SL_SCRAM_MAX_KEY_LEN];
	bool		ok;

	/* U1 = HMAC(password, salt + INT(1)) */
	memcpy(first, salt, saltlen);
	first[saltlen] = 0;
	first[saltlen + 1] = 0;
	first[saltlen + 2] = 0;
	first[saltlen + 3] = 1;
	ok = hmac(hash, (const uint8 *) password, pwlen, first, saltlen + 4, u);
	pfree(first);
	memcpy(result, u, keylen);
	/* Ui = HMAC(password, Ui-1), result = U1 XOR ... XOR Ui */
	for (int i = 2; ok && i <= iterations; i++)
	{
		ok = hmac(hash, (const uint8 *) password, pwlen, u, keylen, u);
		for (int j = 0; j < keylen; j++)
			result[j] ^= u[j];
	}
	return ok;
}

/* base64 of len bytes, NUL-terminated, palloc'd */
static char *
b64_encode(const uint8 *data, int len)
{
	int			cap = pg_b64_enc_len(len) + 1;
	char	   *out = palloc(cap);
	int			n = pg_b64_encode((const char *) data, len, out, cap);

	out[Max(n, 0)] = '\0';
	return out;
}

/*
 * Decode base64 text of textlen bytes into a palloc'd buffer; its length,
 * or -1 if text is not base64
 */
static int
b64_decode(const char *text, int textlen, char **out)
{
	int			cap = pg_b64_dec_len(textlen) + 1;

	*out = palloc(cap);
	return pg_b64_decode(text, textlen, *out, cap);
}

/* Decode base64 text into exactly len bytes at dest; false if it is not that */
static bool
b64_decode_exact(const char *text, int textlen, uint8 *dest, int len)
{
	char	   *buf;
	int			n = b64_decode(text, textlen, &buf);
	bool		ok = n == len;

	if (ok)
		memcpy(dest, buf, len);
	pfree(buf);
	return ok;
}

const char *
SlScramParseSecret(const char *text, SlScramSecret *secret)
{
	const char *p;
	const char *colon;
	const char *dollar;
	char	   *end;
	long		iterations;
	int			keylen;
	char	   *salt;
	int			saltlen;

	secret->salt = NULL;
	if (strncmp(text, "SCRAM-SHA-256$", 14) == 0)
		secret->hash = SL_SCRAM_SHA_256;
	else if (strncmp(text, "SCRAM-SHA-512$", 14) == 0)
		secret->hash = SL_SCRAM_SHA_512;
	else
		return "not a SCRAM verifier";
	keylen = SlScramKeyLength(secret->hash);
	p = text + 14;

	errno = 0;
	iterations = strtol(p, &end, 10);
	if (end == p || *end != ':' || errno != 0 || iterations < 1 || iterations > INT_MAX)
		return "bad iteration count in SCRAM verifier";
	secret->iterations = (int) iterations;
	p = end + 1;

	dollar = strchr(p, '$');
	if (dollar == NULL || dollar == p)
		return "no salt in SCRAM verifier";
	saltlen = b64_decode(p, dollar - p, &salt);
	pfree(salt);
	if (saltlen <= 0)
		return "bad salt in SCRAM verifier";
	secret->salt = pnstrdup(p, dollar - p);
	p = dollar + 1;

	colon = strchr(p, ':');
	if (colon == NULL)
		return "no ServerKey in SCRAM verifier";
	if (!b64_decode_exact(p, colon - p, secret->stored_key, keylen))
		return "bad StoredKey in SCRAM verifier";
	p = colon + 1;
	if (!b64_decode_exact(p, strlen(p), secret->server_key, keylen))
		return "bad ServerKey in SCRAM verifier";
	return NULL;
}

const char *
SlScramSecretFromSaltedPassword(SlScramHash hash, const uint8 *salted,
								const uint8 *salt, int saltlen, int iterations,
								SlScramSecret *secret)
{
	uint8		client_key[SL_SCRAM_MAX_KEY_LEN];
	int			keylen = SlScramKeyLength(hash);
	bool		ok;

	if (iterations < 1)
		return "iteration count must be positive";
	if (saltlen < 1)
		return "salt must not be empty";
	secret->hash = hash;
	secret->iterations = iterations;
	secret->salt = b64_encode(salt, saltlen);
	ok = hmac(hash, salted, keylen, (const uint8 *) "Client Key", 10, client_key) &&
		digest(hash, client_key, keylen, secret->stored_key) &&
		hmac(hash, salted, keylen, (const uint8 *) "Server Key", 10, secret->server_key);
	explicit_bzero(client_key, sizeof(client_key));
	return ok ? NULL : "could not compute the SCRAM keys";
}

const char *
SlScramMakeSecret(SlScramHash hash, const char *password, const uint8 *salt,
				  int saltlen, int iterations, SlScramSecret *secret)
{
	uint8		salted[SL_SCRAM_MAX_KEY_LEN];
	const char *err;

	if (iterations < 1)
		return "iteration count must be positive";
	if (!salted_password(hash, password, salt, saltlen, iterations, salted))
		return "could not compute the SCRAM keys";
	err = SlScramSecretFromSaltedPassword(hash, salted, salt, saltlen, iterations, secret);
	explicit_bzero(salted, sizeof(salted));
	return err;
}

char *
SlScramSecretText(const SlScramSecret *secret)
{
	int			keylen = SlScramKeyLength(secret->hash);
	StringInfoData s;
	char	   *stored = b64_encode(secret->stored_key, keylen);
	char	   *server = b64_encode(secret->server_key, keylen);

	initStringInfo(&s);
	appendStringInfo(&s, "%s$%d:%s$%s:%s", SlScramMechanismName(secret->hash),
					 secret->iterations, secret->salt, stored, server);
	pfree(stored);
	pfree(server);
	return s.data;
}

/*
 * The value of attribute "<attr>=" at *p, up to the next ',' or end, with
 * *p moved past it (and past the ','); NULL if *p does not start so
 */
static char *
read_attribute(const char **p, const char *end, char attr)
{
	const char *start;
	const char *stop;

	if (end - *p < 2 || (*p)[0] != attr || (*p)[1] != '=')
		return NULL;
	start = *p + 2;
	stop = memchr(start, ',', end - start);
	if (stop == NULL)
		stop = end;
	*p = stop < end ? stop + 1 : end;
	return pnstrdup(start, stop - start);
}

/* Decode a saslname (=2C is ',', =3D is '='); NULL if malformed */
static char *
decode_saslname(const char *name)
{
	StringInfoData out;

	initStringInfo(&out);
	for (const char *p = name; *p; p++)
	{
		if (*p == '=')
		{
			if (strncmp(p, "=2C", 3) == 0)
				appendStringInfoChar(&out, ',');
			else if (strncmp(p, "=3D", 3) == 0)
				appendStringInfoChar(&out, '=');
			else
			{
				pfree(out.data);
				return NULL;
			}
			p += 2;
		}
		else
			appendStringInfoChar(&out, *p);
	}
	return out.data;
}

/* RFC 5802 printable: %x21-7E except ',' */
static bool
is_printable(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (*s < 0x21 || *s > 0x7E || *s == ',')
			return false;
	return true;
}

const char *
SlScramParseClientFirst(const char *msg, int len, SlScramClientFirst *first)
{
	const char *p = msg;
	const char *end = msg + len;
	const char *bare;
	char	   *authzid = NULL;
	char	   *name;
	const char *err = NULL;

	memset(first, 0, sizeof(*first));
	if (memchr(msg, '\0', len) != NULL)
		return "client-first-message holds a NUL byte";

	/* gs2-header: "n," [ "a=" authzid ] "," */
	if (len < 3)
		return "client-first-message is too short";
	if (p[0] == 'p' || p[0] == 'y')
		return "channel binding is not supported (only gs2 flag 'n')";
	if (p[0] != 'n' || p[1] != ',')
		return "malformed gs2 header in client-first-message";
	p += 2;
	if (*p == 'a')
	{
		char	   *raw = read_attribute(&p, end, 'a');

		if (raw == NULL)
			return "malformed authzid in client-first-message";
		authzid = decode_saslname(raw);
		pfree(raw);
		if (authzid == NULL)
			return "malformed authzid in client-first-message";
	}
	else if (*p == ',')
		p++;
	else
		return "malformed gs2 header in client-first-message";

	/* client-first-message-bare: n=<user>,r=<nonce>[,extensions] */
	bare = p;
	if (p < end && *p == 'm')
		err = "mandatory extensions are not supported";
	else if ((name = read_attribute(&p, end, 'n')) == NULL)
		err = "no user name in client-first-message";
	else
	{
		first->username = decode_saslname(name);
		pfree(name);
		if (first->username == NULL || first->username[0] == '\0')
			err = "malformed user name in client-first-message";
	}
	if (err == NULL)
	{
		first->client_nonce = read_attribute(&p, end, 'r');
		if (first->client_nonce == NULL || !is_printable(first->client_nonce))
			err = "malformed nonce in client-first-message";
	}
	/* Kafka's extensions: tokenauth (delegation tokens) is not served */
	while (err == NULL && p < end)
	{
		const char *stop = memchr(p, ',', end - p);
		int			n = stop ? stop - p : end - p;

		if (n >= 10 && strncmp(p, "tokenauth=", 10) == 0)
			err = "delegation tokens (tokenauth) are not supported";
		p += n + (stop ? 1 : 0);
	}
	if (err == NULL && authzid != NULL && authzid[0] != '\0' &&
		strcmp(authzid, first->username) != 0)
		err = "authzid differs from the user name";
	if (authzid)
		pfree(authzid);
	if (err != NULL)
	{
		SlScramClientFirstFree(first);
		return err;
	}
	first->gs2_header = pnstrdup(msg, bare - msg);
	first->bare = pnstrdup(bare, end - bare);
	return NULL;
}

void
SlScramClientFirstFree(SlScramClientFirst *first)
{
	if (first->gs2_header)
		pfree(first->gs2_header);
	if (first->bare)
		pfree(first->bare);
	if (first->username)
		pfree(first->username);
	if (first->client_nonce)
		pfree(first->client_nonce);
	memset(first, 0, sizeof(*first));
}

char *
SlScramServerFirst(const char *nonce, const SlScramSecret *secret)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s, "r=%s,s=%s,i=%d", nonce, secret->salt, secret->iterations);
	return s.data;
}

const char *
SlScramParseClientFinal(const char *msg, int len, SlScramClientFinal *final)
{
	const char *p = msg;
	const char *end = msg + len;
	const char *proof_at = NULL;
	const char *err = NULL;
	char	   *cb;
	char	   *proof;

	memset(final, 0, sizeof(*final));
	if (memchr(msg, '\0', len) != NULL)
		return "client-final-message holds a NUL byte";
	cb = read_attribute(&p, end, 'c');
	if (cb == NULL)
		return "no channel binding in client-final-message";
	final->channel_binding_len = b64_decode(cb, strlen(cb), &final->channel_binding);
	pfree(cb);
	if (final->channel_binding_len < 0)
		err = "malformed channel binding in client-final-message";
	else if ((final->nonce = read_attribute(&p, end, 'r')) == NULL)
		err = "no nonce in client-final-message";

	/* extensions, then the proof, last */
	while (err == NULL && proof_at == NULL)
	{
		const char *stop;

		if (p >= end)
			err = "no proof in client-final-message";
		else if (end - p >= 2 && p[0] == 'p' && p[1] == '=')
			proof_at = p;
		else if ((stop = memchr(p, ',', end - p)) == NULL)
			err = "no proof in client-final-message";
		else
			p = stop + 1;
	}
	if (err == NULL)
	{
		/* without-proof ends before the ',' that precedes p= */
		proof = read_attribute(&p, end, 'p');
		if (p != end || proof_at[-1] != ',')
			err = "proof is not the last attribute of client-final-message";
		else
		{
			char	   *buf;
			int			n = b64_decode(proof, strlen(proof), &buf);

			if (n <= 0 || n > SL_SCRAM_MAX_KEY_LEN)
				err = "malformed proof in client-final-message";
			else
			{
				memcpy(final->proof, buf, n);
				final->proof_len = n;
			}
			pfree(buf);
		}
		pfree(proof);
	}
	if (err != NULL)
	{
		SlScramClientFinalFree(final);
		return err;
	}
	final->without_proof = pnstrdup(msg, proof_at - msg - 1);
	return NULL;
}

void
SlScramClientFinalFree(SlScramClientFinal *final)
{
	if (final->without_proof)
		pfree(final->without_proof);
	if (final->channel_binding)
		pfree(final->channel_binding);
	if (final->nonce)
		pfree(final->nonce);
	memset(final, 0, sizeof(*final));
}

/* Compare n bytes in a time that does not depend on where they differ */
static bool
equal_constant_time(const uint8 *a, const uint8 *b, int n)
{
	uint8		diff = 0;

	for (int i = 0; i < n; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

const char *
SlScramVerifyFinal(const SlScramSecret *secret, const SlScramClientFirst *first,
				   const char *server_first, const char *nonce,
				   const SlScramClientFinal *final, char **server_final)
{
	int			keylen = SlScramKeyLength(secret->hash);
	StringInfoData auth;
	uint8		signature[SL_SCRAM_MAX_KEY_LEN];
	uint8		client_key[SL_SCRAM_MAX_KEY_LEN];
	uint8		stored[SL_SCRAM_MAX_KEY_LEN];
	bool		ok;
	const char *err = NULL;

	if (final->channel_binding_len != (int) strlen(first->gs2_header) ||
		memcmp(final->channel_binding, first->gs2_header, final->channel_binding_len) != 0)
		return "channel binding differs from the gs2 header of client-first-message";
	/*
	 * The nonce must end with the one server-first sent, as Kafka's
	 * ScramSaslServer checks it: librdkafka (2.0) sends its own nonce
	 * followed by the whole combined one.  The server's random part is
	 * there either way, so an exchange cannot be replayed, and the proof
	 * covers the message as sent.
	 */
	{
		size_t		flen = strlen(final->nonce);
		size_t		nlen = strlen(nonce);

		if (flen < nlen || strcmp(final->nonce + flen - nlen, nonce) != 0)
			return "nonce differs from the one of this exchange";
	}
	if (final->proof_len != keylen)
		return "proof has the wrong length";

	initStringInfo(&auth);
	appendStringInfo(&auth, "%s,%s,%s", first->bare, server_first, final->without_proof);

	/* ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage) */
	ok = hmac(secret->hash, secret->stored_key, keylen,
			  (const uint8 *) auth.data, auth.len, signature);
	for (int i = 0; i < keylen; i++)
		client_key[i] = final->proof[i] ^ signature[i];
	ok = ok && digest(secret->hash, client_key, keylen, stored);
	if (!ok)
		err = "could not compute the SCRAM proof";
	else if (!equal_constant_time(stored, secret->stored_key, keylen))
		err = "invalid proof";
	else if (!hmac(secret->hash, secret->server_key, keylen,
				   (const uint8 *) auth.data, auth.len, signature))
		err = "could not compute the server signature";
	else
	{
		char	   *b64 = b64_encode(signature, keylen);

		*server_final = psprintf("v=%s", b64);
		pfree(b64);
	}
	pfree(auth.data);
	return err;
}
