/*
 * Fuzz target: the SCRAM messages a client sends and the verifier text
 * the server reads (src/protocol/scram.c).  The first byte of the input
 * chooses what the rest is:
 *
 *	 0  a client-first-message: when accepted, its bare part is the input
 *		after the gs2 header, the user name is not empty and the nonce is
 *		printable
 *	 1  a client-final-message, checked against RFC 7677's exchange: when
 *		accepted, its part without proof is a prefix of the input; it may
 *		verify only with RFC 7677's proof
 *	 2  a verifier in PostgreSQL's text form
 *
 * Each message is parsed from an exactly sized copy, and whatever the
 * parsers return is freed: nothing may be left allocated (LeakSanitizer).
 */
#include "fuzz_common.h"

#include "common/base64.h"

#include "streamlog/protocol/scram.h"

/* RFC 7677's exchange: the server's side of it, made once */
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_NONCE "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"

static SlScramSecret rfc_secret;
static SlScramClientFirst rfc_first;
static char *rfc_server_first;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *salt_b64 = "W22ZaJ0SNY7soEsUEjb6gQ==";
	uint8		salt[32];
	int			saltlen;

	fuzz_init_common();
	(void) argc;
	(void) argv;
	saltlen = pg_b64_decode(salt_b64, strlen(salt_b64), (char *) salt, sizeof(salt));
	FUZZ_CHECK(saltlen == 16);
	FUZZ_CHECK(SlScramMakeSecret(SL_SCRAM_SHA_256, "pencil", salt, saltlen, 4096,
								 &rfc_secret) == NULL);
	FUZZ_CHECK(SlScramParseClientFirst(RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST),
									   &rfc_first) == NULL);
	rfc_server_first = SlScramServerFirst(RFC_NONCE, &rfc_secret);
	return 0;
}

static void
client_first(const uint8 *msg, size_t len)
{
	SlScramClientFirst first;
	const char *err = SlScramParseClientFirst((const char *) msg, (int) len, &first);

	FUZZ_EXPECT(err == NULL, err);
	if (err != NULL)
	{
		FUZZ_CHECK(first.bare == NULL && first.username == NULL &&
				   first.client_nonce == NULL && first.gs2_header == NULL);
		return;
	}
	FUZZ_CHECK(strncmp(first.gs2_header, "n,", 2) == 0);
	FUZZ_CHECK(strlen(first.gs2_header) + strlen(first.bare) == len);
	FUZZ_CHECK(memcmp(first.bare, msg + strlen(first.gs2_header), strlen(first.bare)) == 0);
	FUZZ_CHECK(first.username[0] != '\0');
	for (const char *c = first.client_nonce; *c; c++)
		FUZZ_CHECK(*c > 0x20 && *c < 0x7f && *c != ',');
	SlScramClientFirstFree(&first);
}

static void
client_final(const uint8 *msg, size_t len)
{
	SlScramClientFinal final;
	char	   *server_final = NULL;
	const char *err = SlScramParseClientFinal((const char *) msg, (int) len, &final);

	FUZZ_EXPECT(err == NULL, err);
	if (err != NULL)
	{
		FUZZ_CHECK(final.without_proof == NULL && final.nonce == NULL &&
				   final.channel_binding == NULL);
		return;
	}
	FUZZ_CHECK(strlen(final.without_proof) < len);
	FUZZ_CHECK(memcmp(final.without_proof, msg, strlen(final.without_proof)) == 0);
	FUZZ_CHECK(final.proof_len > 0 && final.proof_len <= SL_SCRAM_MAX_KEY_LEN);
	err = SlScramVerifyFinal(&rfc_secret, &rfc_first, rfc_server_first, RFC_NONCE,
							 &final, &server_final);
	if (err == NULL)
	{
		FUZZ_CHECK(strncmp(server_final, "v=", 2) == 0);
		free(server_final);
	}
	else
		FUZZ_CHECK(server_final == NULL);
	SlScramClientFinalFree(&final);
}

static void
verifier(const uint8 *text, size_t len)
{
	char	   *copy = malloc(len + 1);
	SlScramSecret secret;
	const char *err;

	FUZZ_CHECK(copy != NULL);
	memcpy(copy, text, len);
	copy[len] = '\0';
	err = SlScramParseSecret(copy, &secret);
	FUZZ_EXPECT(err == NULL, err);
	if (err == NULL)
	{
		char	   *again = SlScramSecretText(&secret);

		FUZZ_CHECK(secret.iterations > 0);
		/* what it read, written again, reads the same */
		FUZZ_CHECK(strncmp(again, "SCRAM-SHA-", 10) == 0);
		free(again);
	}
	if (secret.salt)
		free(secret.salt);
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8	   *copy;

	if (size < 1)
		return 0;
	copy = fuzz_copy(data + 1, size - 1);
	switch (data[0] % 3)
	{
		case 0:
			client_first(copy, size - 1);
			break;
		case 1:
			client_final(copy, size - 1);
			break;
		default:
			verifier(copy, size - 1);
			break;
	}
	free(copy);
	return 0;
}
