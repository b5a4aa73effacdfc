/*
 * SCRAM server side (src/protocol/scram.c): RFC 7677's SCRAM-SHA-256
 * exchange byte for byte, the same exchange with SHA-512 (values computed
 * with Python's hashlib, as Kafka's ScramFormatter computes them),
 * PostgreSQL's verifier text, and the refusals: wrong proof, wrong nonce,
 * channel binding, authzid, tokenauth, and every truncation of each
 * message.
 */
#include "postgres_fe.h"

#include "common/base64.h"

#include "streamlog/protocol/scram.h"
#include "unit.h"

#define CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define NONCE "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define SERVER_FIRST "r=" NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define FINAL_WITHOUT_PROOF "c=biws,r=" NONCE

static const char *const sha256_proof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
static const char *const sha256_server_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
static const char *const sha256_verifier =
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
	"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

static const char *const sha512_proof =
	"gMGXRcevScNtxZ6/8lQYpGtnsNAc3mGcmNomv+xnoOMw+3R2xNJdMNnzMlTN8PPC6wdp6dybEmDYXYTxwnYPJQ==";
static const char *const sha512_server_final =
	"v=ZQnYEgWQMFmmsM8aQMF0nDDCy/AgCzkwk8CmMZYcMg0vSVlKDanekLtifDSeVGT4+5ZxXnJq199RVG2rR7N7Zw==";
static const char *const sha512_verifier =
	"SCRAM-SHA-512$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
	"6AAub3065EYRmyFpM2RNwqK+eGnrkYuEWbXn19LsEmBqzu8QaCXNc1FwpnX9NhH2hK/60dzj9DoO5DvVkOHbvg==:"
	"jZHbYjC1aHh0/hKbxyBuGFjDrgjgKTT1esA7awWiKcRZ0o/0b1yWEebBeSVkkCFewf91nLDfKF24mvD5nmE6rA==";

static void
rfc_salt(uint8 *salt, int *len)
{
	const char *b64 = "W22ZaJ0SNY7soEsUEjb6gQ==";

	*len = pg_b64_decode(b64, strlen(b64), (char *) salt, 32);
}

/* Run the RFC 7677 exchange with hash; the verdict of the final message */
static const char *
exchange(SlScramHash hash, const char *client_final, char **server_final)
{
	SlScramSecret secret;
	SlScramClientFirst first;
	SlScramClientFinal final;
	uint8		salt[32];
	int			saltlen;
	const char *err;
	char	   *server_first;

	rfc_salt(salt, &saltlen);
	CHECK_NULL_ERR(SlScramMakeSecret(hash, "pencil", salt, saltlen, 4096, &secret));
	CHECK_NULL_ERR(SlScramParseClientFirst(CLIENT_FIRST, strlen(CLIENT_FIRST), &first));
	server_first = SlScramServerFirst(NONCE, &secret);
	CHECK(strcmp(server_first, SERVER_FIRST) == 0);
	err = SlScramParseClientFinal(client_final, strlen(client_final), &final);
	if (err)
		return err;
	return SlScramVerifyFinal(&secret, &first, server_first, NONCE, &final, server_final);
}

static void
test_rfc7677_exchange(void)
{
	char	   *server_final = NULL;
	char	   *msg = psprintf("%s,p=%s", FINAL_WITHOUT_PROOF, sha256_proof);

	CHECK_NULL_ERR(exchange(SL_SCRAM_SHA_256, msg, &server_final));
	CHECK(server_final && strcmp(server_final, sha256_server_final) == 0);
}

static void
test_sha512_exchange(void)
{
	char	   *server_final = NULL;
	char	   *msg = psprintf("%s,p=%s", FINAL_WITHOUT_PROOF, sha512_proof);

	CHECK_NULL_ERR(exchange(SL_SCRAM_SHA_512, msg, &server_final));
	CHECK(server_final && strcmp(server_final, sha512_server_final) == 0);
	/* the SHA-256 proof is not one for SHA-512 */
	msg = psprintf("%s,p=%s", FINAL_WITHOUT_PROOF, sha256_proof);
	CHECK(exchange(SL_SCRAM_SHA_512, msg, &server_final) != NULL);
}

static void
test_verifier_text(void)
{
	SlScramSecret made;
	SlScramSecret parsed;
	uint8		salt[32];
	int			saltlen;

	rfc_salt(salt, &saltlen);
	CHECK_EQ_INT(saltlen, 16);
	CHECK_NULL_ERR(SlScramMakeSecret(SL_SCRAM_SHA_256, "pencil", salt, saltlen, 4096, &made));
	CHECK(strcmp(SlScramSecretText(&made), sha256_verifier) == 0);
	CHECK_NULL_ERR(SlScramParseSecret(sha256_verifier, &parsed));
	CHECK_EQ_INT(parsed.hash, SL_SCRAM_SHA_256);
	CHECK_EQ_INT(parsed.iterations, 4096);
	CHECK(strcmp(parsed.salt, "W22ZaJ0SNY7soEsUEjb6gQ==") == 0);
	CHECK_MEM(parsed.stored_key, made.stored_key, 32);
	CHECK_MEM(parsed.server_key, made.server_key, 32);

	CHECK_NULL_ERR(SlScramMakeSecret(SL_SCRAM_SHA_512, "pencil", salt, saltlen, 4096, &made));
	CHECK(strcmp(SlScramSecretText(&made), sha512_verifier) == 0);
	CHECK_NULL_ERR(SlScramParseSecret(sha512_verifier, &parsed));
	CHECK_EQ_INT(parsed.hash, SL_SCRAM_SHA_512);
	CHECK_MEM(parsed.stored_key, made.stored_key, 64);

	/* not verifiers, or broken ones */
	CHECK(SlScramParseSecret("md5a3556571e93b0d20722ba62be61e8c2d", &parsed) != NULL);
	CHECK(SlScramParseSecret("SCRAM-SHA-256$x:W22ZaJ0SNY7soEsUEjb6gQ==$a:b", &parsed) != NULL);
	CHECK(SlScramParseSecret("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
							 "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=", &parsed) != NULL);
	/* a 512 key length where 256 is announced */
	CHECK(SlScramParseSecret("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
							 "6AAub3065EYRmyFpM2RNwqK+eGnrkYuEWbXn19LsEmBqzu8QaCXNc1FwpnX9NhH2hK/60dzj9DoO5DvVkOHbvg==:"
							 "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", &parsed) != NULL);
	/* every truncation of a verifier is refused, none read past its end */
	for (size_t n = 0; n < strlen(sha256_verifier); n++)
	{
		char	   *cut = pnstrdup(sha256_verifier, n);

		CHECK_MSG(SlScramParseSecret(cut, &parsed) != NULL, "prefix of %zu bytes accepted", n);
		pfree(cut);
	}
}

/* Kafka's AlterUserScramCredentials sends SaltedPassword, not the password */
static void
test_from_salted_password(void)
{
	/* Hi("pencil", RFC salt, 4096) with SHA-256, from Python's hashlib */
	const char *salted_b64 = "xKSVEDI6tPlSysH6mUQZOeeOp01r6B3fcJbodRPcYV0=";
	uint8		salted[64];
	uint8		salt[32];
	int			saltlen;
	SlScramSecret secret;

	rfc_salt(salt, &saltlen);
	CHECK_EQ_INT(pg_b64_decode(salted_b64, strlen(salted_b64), (char *) salted, 64), 32);
	CHECK_NULL_ERR(SlScramSecretFromSaltedPassword(SL_SCRAM_SHA_256, salted, salt, saltlen,
												   4096, &secret));
	CHECK(strcmp(SlScramSecretText(&secret), sha256_verifier) == 0);
	CHECK(SlScramSecretFromSaltedPassword(SL_SCRAM_SHA_256, salted, salt, 0, 4096, &secret) != NULL);
}

static void
test_refusals(void)
{
	char	   *server_final;
	char	   *msg;
	char		bad_proof[128];

	/* a proof off by one bit */
	strlcpy(bad_proof, sha256_proof, sizeof(bad_proof));
	bad_proof[0] = bad_proof[0] == 'd' ? 'e' : 'd';
	msg = psprintf("%s,p=%s", FINAL_WITHOUT_PROOF, bad_proof);
	CHECK(strcmp(exchange(SL_SCRAM_SHA_256, msg, &server_final), "invalid proof") == 0);

	/* another exchange's nonce: a replayed client-final */
	msg = psprintf("c=biws,r=rOprNGfwEbeRWgbNEkqOother,p=%s", sha256_proof);
	CHECK(strstr(exchange(SL_SCRAM_SHA_256, msg, &server_final), "nonce") != NULL);

	/*
	 * librdkafka's form: its own nonce before the combined one passes the
	 * nonce check (as in Kafka); the proof, made for the RFC's message,
	 * then does not match the message sent
	 */
	msg = psprintf("c=biws,r=rOprNGfwEbeRWgbNEkqO%s,p=%s", NONCE, sha256_proof);
	CHECK(strcmp(exchange(SL_SCRAM_SHA_256, msg, &server_final), "invalid proof") == 0);

	/* channel binding data that is not the gs2 header ("y,,") */
	msg = psprintf("c=eSws,r=%s,p=%s", NONCE, sha256_proof);
	CHECK(strstr(exchange(SL_SCRAM_SHA_256, msg, &server_final), "channel binding") != NULL);

	/* proof not last, missing, or not base64 */
	msg = psprintf("p=%s,%s", sha256_proof, FINAL_WITHOUT_PROOF);
	CHECK(exchange(SL_SCRAM_SHA_256, msg, &server_final) != NULL);
	CHECK(exchange(SL_SCRAM_SHA_256, FINAL_WITHOUT_PROOF, &server_final) != NULL);
	msg = psprintf("%s,p=***", FINAL_WITHOUT_PROOF);
	CHECK(exchange(SL_SCRAM_SHA_256, msg, &server_final) != NULL);
}

static void
test_client_first(void)
{
	SlScramClientFirst first;
	const char *msg;

	msg = CLIENT_FIRST;
	CHECK_NULL_ERR(SlScramParseClientFirst(msg, strlen(msg), &first));
	CHECK(strcmp(first.gs2_header, "n,,") == 0);
	CHECK(strcmp(first.bare, "n=user,r=rOprNGfwEbeRWgbNEkqO") == 0);
	CHECK(strcmp(first.username, "user") == 0);
	CHECK(strcmp(first.client_nonce, "rOprNGfwEbeRWgbNEkqO") == 0);

	/* saslname escapes, and an authzid equal to the user */
	msg = "n,a=us=2Cer=3D,n=us=2Cer=3D,r=abc";
	CHECK_NULL_ERR(SlScramParseClientFirst(msg, strlen(msg), &first));
	CHECK(strcmp(first.username, "us,er=") == 0);
	CHECK(strcmp(first.gs2_header, "n,a=us=2Cer=3D,") == 0);

	/* Kafka's extensions are carried, tokenauth refused */
	msg = "n,,n=user,r=abc,ext=1";
	CHECK_NULL_ERR(SlScramParseClientFirst(msg, strlen(msg), &first));
	CHECK(strcmp(first.bare, "n=user,r=abc,ext=1") == 0);
	msg = "n,,n=user,r=abc,tokenauth=true";
	CHECK(SlScramParseClientFirst(msg, strlen(msg), &first) != NULL);

	/* refused: channel binding, another authzid, bad escapes, no nonce */
	msg = "y,,n=user,r=abc";
	CHECK(SlScramParseClientFirst(msg, strlen(msg), &first) != NULL);
	msg = "p=tls-unique,,n=user,r=abc";
	CHECK(SlScramParseClientFirst(msg, strlen(msg), &first) != NULL);
	msg = "n,a=admin,n=user,r=abc";
	CHECK(SlScramParseClientFirst(msg, strlen(msg), &first) != NULL);
	msg = "n,,n=us=er,r=abc";
	CHECK(SlScramParseClientFirst(msg, strlen(msg), &first) != NULL);
	msg = "n,,n=user";
	CHECK(SlScramParseClientFirst(msg, strlen(msg), &first) != NULL);
	msg = "n,,m=ext,n=user,r=abc";
	CHECK(SlScramParseClientFirst(msg, strlen(msg), &first) != NULL);
	CHECK(SlScramParseClientFirst("n,,n=u\0,r=abc", 13, &first) != NULL);

	/* every truncation is refused, none read past its end (ASan) */
	for (size_t n = 0; n < strlen(CLIENT_FIRST) - strlen("rOprNGfwEbeRWgbNEkqO"); n++)
	{
		char	   *cut = palloc(n + 1);

		memcpy(cut, CLIENT_FIRST, n);	/* not NUL-terminated as parsed */
		CHECK_MSG(SlScramParseClientFirst(cut, n, &first) != NULL,
				  "prefix of %zu bytes accepted", n);
		pfree(cut);
	}
}

static void
test_client_final_truncations(void)
{
	char	   *msg = psprintf("%s,p=%s", FINAL_WITHOUT_PROOF, sha256_proof);
	SlScramClientFinal final;

	CHECK_NULL_ERR(SlScramParseClientFinal(msg, strlen(msg), &final));
	CHECK(strcmp(final.without_proof, FINAL_WITHOUT_PROOF) == 0);
	CHECK(strcmp(final.nonce, NONCE) == 0);
	CHECK_EQ_INT(final.proof_len, 32);
	CHECK_EQ_INT(final.channel_binding_len, 3);
	for (size_t n = 0; n < strlen(msg); n++)
	{
		char	   *cut = palloc(n + 1);
		char	   *server_final;
		const char *err;

		memcpy(cut, msg, n);
		err = SlScramParseClientFinal(cut, n, &final);
		/* a shorter proof may still parse: it cannot verify */
		if (err == NULL)
		{
			char	   *whole = pnstrdup(cut, n);

			err = exchange(SL_SCRAM_SHA_256, whole, &server_final);
		}
		CHECK_MSG(err != NULL, "prefix of %zu bytes accepted", n);
		pfree(cut);
	}
}

static void
test_mechanism_names(void)
{
	SlScramHash hash;

	CHECK(SlScramMechanismByName("SCRAM-SHA-256", &hash) && hash == SL_SCRAM_SHA_256);
	CHECK(SlScramMechanismByName("SCRAM-SHA-512", &hash) && hash == SL_SCRAM_SHA_512);
	CHECK(!SlScramMechanismByName("SCRAM-SHA-1", &hash));
	CHECK(!SlScramMechanismByName("PLAIN", &hash));
	CHECK(strcmp(SlScramMechanismName(SL_SCRAM_SHA_512), "SCRAM-SHA-512") == 0);
	CHECK_EQ_INT(SlScramKeyLength(SL_SCRAM_SHA_256), 32);
	CHECK_EQ_INT(SlScramKeyLength(SL_SCRAM_SHA_512), 64);
}

int
main(void)
{
	test_rfc7677_exchange();
	test_sha512_exchange();
	test_verifier_text();
	test_from_salted_password();
	test_refusals();
	test_client_first();
	test_client_final_truncations();
	test_mechanism_names();
	return UNIT_DONE();
}
