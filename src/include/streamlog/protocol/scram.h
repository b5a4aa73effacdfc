/*
 * SCRAM (RFC 5802, RFC 7677), the server's side, as pure functions: parse
 * the client's messages, build the server's, verify a proof, and make or
 * read a verifier (StoredKey, ServerKey, salt, iterations).  No I/O, no
 * randomness (the caller brings the server nonce), no ereport: errors come
 * back as strings, for the caller to log.  SCRAM-SHA-256 verifiers are
 * PostgreSQL's own (pg_authid.rolpassword), in its text form.
 *
 * Only channel binding flag 'n' is accepted: streamlog advertises no -PLUS
 * mechanism, and Kafka's clients send nothing else.
 */
#ifndef SL_SCRAM_H
#define SL_SCRAM_H

#include "streamlog/protocol/codec_base.h"

typedef enum SlScramHash
{
	SL_SCRAM_SHA_256,
	SL_SCRAM_SHA_512
} SlScramHash;

/* Longest key of any hash (SHA-512's 64 bytes) */
#define SL_SCRAM_MAX_KEY_LEN 64

/* Salt bytes of verifiers streamlog makes (PostgreSQL's SCRAM_DEFAULT_SALT_LEN) */
#define SL_SCRAM_SALT_LEN 16

/* Kafka's and PostgreSQL's default iteration count; Kafka's bounds */
#define SL_SCRAM_DEFAULT_ITERATIONS 4096
#define SL_SCRAM_MIN_ITERATIONS 4096
#define SL_SCRAM_MAX_ITERATIONS 16384

/* A verifier: what the server keeps instead of the password */
typedef struct SlScramSecret
{
	SlScramHash hash;
	int			iterations;
	char	   *salt;			/* base64, as server-first sends it */
	uint8		stored_key[SL_SCRAM_MAX_KEY_LEN];
	uint8		server_key[SL_SCRAM_MAX_KEY_LEN];
} SlScramSecret;

/* The client's first message, parsed */
typedef struct SlScramClientFirst
{
	char	   *gs2_header;		/* "n,," or "n,a=<authzid>,": c= must repeat it */
	char	   *bare;			/* client-first-message-bare, for AuthMessage */
	char	   *username;		/* saslname decoded (=2C, =3D) */
	char	   *client_nonce;
} SlScramClientFirst;

/* The client's final message, parsed */
typedef struct SlScramClientFinal
{
	char	   *without_proof;	/* client-final-message-without-proof */
	char	   *channel_binding;	/* c=, decoded */
	int			channel_binding_len;
	char	   *nonce;
	uint8		proof[SL_SCRAM_MAX_KEY_LEN];
	int			proof_len;
} SlScramClientFinal;

/* "SCRAM-SHA-256" or "SCRAM-SHA-512" */
extern const char *SlScramMechanismName(SlScramHash hash);

/* The hash of a mechanism name; false if name is no SCRAM mechanism */
extern bool SlScramMechanismByName(const char *name, SlScramHash *hash);

/* Bytes of the hash's keys: 32 or 64 */
extern int	SlScramKeyLength(SlScramHash hash);

/*
 * Read PostgreSQL's verifier text ("SCRAM-SHA-256$<iterations>:<salt>$
 * <StoredKey>:<ServerKey>", keys and salt in base64).  NULL on success,
 * else what is wrong with it.  secret->salt is palloc'd, or NULL.
 */
extern const char *SlScramParseSecret(const char *text, SlScramSecret *secret);

/*
 * Make the verifier of password (taken as the bytes given: normalize it
 * first if the verifier must match one made with SASLprep) with this salt
 * and iteration count.  NULL on success, else why not.
 */
extern const char *SlScramMakeSecret(SlScramHash hash, const char *password,
									 const uint8 *salt, int saltlen,
									 int iterations, SlScramSecret *secret);

/*
 * Make the verifier from SaltedPassword (what Kafka's
 * AlterUserScramCredentials sends instead of the password), of
 * SlScramKeyLength bytes.  NULL on success, else why not.
 */
extern const char *SlScramSecretFromSaltedPassword(SlScramHash hash, const uint8 *salted,
												   const uint8 *salt, int saltlen,
												   int iterations, SlScramSecret *secret);

/* A verifier in PostgreSQL's text form (the SHA-512 one in the same form) */
extern char *SlScramSecretText(const SlScramSecret *secret);

/*
 * Parse client-first-message (len bytes, not NUL-terminated).  NULL or why
 * not; nothing is left allocated when it fails.
 */
extern const char *SlScramParseClientFirst(const char *msg, int len,
										   SlScramClientFirst *first);

/* Free what a parsed client-first holds (palloc'd: also on error) */
extern void SlScramClientFirstFree(SlScramClientFirst *first);

/* server-first-message for the combined nonce (client's + server's) */
extern char *SlScramServerFirst(const char *nonce, const SlScramSecret *secret);

/* Parse client-final-message (len bytes).  NULL or why not, as above */
extern const char *SlScramParseClientFinal(const char *msg, int len,
										   SlScramClientFinal *final);

/* Free what a parsed client-final holds */
extern void SlScramClientFinalFree(SlScramClientFinal *final);

/*
 * Check the client's final message against the exchange: channel binding
 * as announced in the first message, the nonce the server sent, and the
 * proof (compared in constant time).  On success NULL, and *server_final
 * is the server's final message ("v=<ServerSignature>"); else why not.
 */
extern const char *SlScramVerifyFinal(const SlScramSecret *secret,
									  const SlScramClientFirst *first,
									  const char *server_first,
									  const char *nonce,
									  const SlScramClientFinal *final,
									  char **server_final);

#endif							/* SL_SCRAM_H */
