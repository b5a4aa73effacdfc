/*
 * TLS for the Kafka listeners, with OpenSSL; see tls.h.
 *
 * The context is built as PostgreSQL builds its own (be-secure-openssl.c):
 * certificate chain and key from files, client CAs from ssl_ca_file, TLS
 * 1.2 at least, the server's cipher preference, no renegotiation, no
 * session cache or tickets (each broker worker would have keys of its
 * own, so a ticket from one would fail on the next).  The postmaster
 * builds it once at start, so that a bad certificate stops the server
 * there with the reason; each worker builds its own at start and on every
 * reload, and keeps the one it has when the new files do not load.
 * Connections already open keep the context they began with (OpenSSL
 * counts its references).
 *
 * OpenSSL allocates with malloc: an SlTls lives until SlTlsFree, which the
 * connection calls when it closes, whatever the reason.
 */
#include "postgres.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "utils/guc.h"

#include "streamlog/bgworkers/tls.h"
#include "streamlog/guc.h"

struct SlTls
{
	SSL		   *ssl;
	unsigned long error;		/* OpenSSL's error of the last failed call */
	int			sys_errno;		/* or the system's */
};

static SSL_CTX *context = NULL;

#define TLS_READ_BUFFER (128 * 1024)

/* The setting, or PostgreSQL's own when it is empty */
static const char *
setting_or_server(const char *value, const char *server_guc)
{
	if (value != NULL && value[0] != '\0')
		return value;
	return GetConfigOption(server_guc, true, false);
}

static const char *
openssl_error(void)
{
	unsigned long e = ERR_get_error();
	const char *reason;

	if (e == 0)
		return "no OpenSSL error reported";
	reason = ERR_reason_error_string(e);
	return reason ? reason : psprintf("OpenSSL error %lu", e);
}

/* A passphrase-protected key cannot be read: no one is there to type it */
static int
no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
	return -1;
}

/* A new server context from the settings; NULL with *why set on failure */
static SSL_CTX *
build_context(char **why)
{
	const char *cert = setting_or_server(sl_ssl_cert_file, "ssl_cert_file");
	const char *key = setting_or_server(sl_ssl_key_file, "ssl_key_file");
	const char *ca = setting_or_server(sl_ssl_ca_file, "ssl_ca_file");
	const char *ciphers = setting_or_server(sl_ssl_ciphers, "ssl_ciphers");
	SSL_CTX    *ctx;

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
	{
		*why = psprintf("could not create a TLS context: %s", openssl_error());
		return NULL;
	}
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
					 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);

	/*
	 * Read ahead, in large reads: a produce request of a megabyte takes a
	 * few recv() calls instead of two per 16 kB record (header, then
	 * body).  The buffers go back while a connection is idle
	 * (SSL_MODE_RELEASE_BUFFERS), so a thousand idle clients hold none.
	 */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx, TLS_READ_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
						SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF

	/*
	 * Kafka clients close without close_notify: a plain close, not an error
	 * (the framing above says whether a request was cut short)
	 */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	if (!SSL_CTX_set_min_proto_version(ctx, sl_ssl_min_protocol_version == SL_TLS_VERSION_1_3 ?
									   TLS1_3_VERSION : TLS1_2_VERSION))
	{
		*why = psprintf("could not set the oldest TLS version: %s", openssl_error());
		goto fail;
	}
	if (cert == NULL || cert[0] == '\0' ||
		SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
	{
		*why = psprintf("could not load the certificate file \"%s\": %s",
						cert ? cert : "", openssl_error());
		goto fail;
	}
	if (key == NULL || key[0] == '\0' ||
		SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
	{
		*why = psprintf("could not load the private key file \"%s\": %s",
						key ? key : "", openssl_error());
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1)
	{
		*why = psprintf("the private key \"%s\" does not match the certificate \"%s\": %s",
						key, cert, openssl_error());
		goto fail;
	}
	if (ciphers != NULL && ciphers[0] != '\0' && SSL_CTX_set_cipher_list(ctx, ciphers) != 1)
	{
		*why = psprintf("could not set the cipher list \"%s\": %s", ciphers, openssl_error());
		goto fail;
	}
	if (ca != NULL && ca[0] != '\0')
	{
		STACK_OF(X509_NAME) *names;

		if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 ||
			(names = SSL_load_client_CA_file(ca)) == NULL)
		{
			*why = psprintf("could not load the CA file \"%s\": %s", ca, openssl_error());
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
	}
	else if (sl_ssl_client_auth != SL_SSL_CLIENT_AUTH_NONE)
	{
		*why = pstrdup("streamlog.ssl_client_auth needs CA certificates to check client certificates against: set streamlog.ssl_ca_file or ssl_ca_file");
		goto fail;
	}
	switch (sl_ssl_client_auth)
	{
		case SL_SSL_CLIENT_AUTH_REQUIRED:
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
			break;
		case SL_SSL_CLIENT_AUTH_REQUESTED:
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
			break;
		default:
			SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
			break;
	}
	return ctx;

fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void
SlTlsLoad(bool at_start)
{
	char	   *why = NULL;
	SSL_CTX    *ctx = build_context(&why);

	if (ctx == NULL)
	{
		if (at_start)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("streamlog TLS listeners cannot start: %s", why),
					 errhint("The Kafka listeners of protocol SSL and SASL_SSL use streamlog.ssl_cert_file and streamlog.ssl_key_file, or else PostgreSQL's ssl_cert_file and ssl_key_file.")));
		ereport(LOG,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("streamlog TLS settings not reloaded: %s", why),
				 errdetail(context ? "TLS connections keep the certificate and settings loaded before." :
						   "TLS connections are refused until the settings are fixed.")));
		return;
	}
	if (context)
		SSL_CTX_free(context);
	context = ctx;
}

SlTls *
SlTlsCreate(pgsocket sock)
{
	SlTls	   *tls;
	SSL		   *ssl;

	if (context == NULL)
	{
		ereport(LOG, (errmsg("streamlog broker refused a TLS connection: no TLS context is loaded")));
		return NULL;
	}
	ERR_clear_error();
	ssl = SSL_new(context);
	if (ssl == NULL || SSL_set_fd(ssl, sock) != 1)
	{
		ereport(LOG,
				(errmsg("streamlog broker could not set up TLS for a connection: %s",
						openssl_error())));
		if (ssl)
			SSL_free(ssl);
		return NULL;
	}
	SSL_set_accept_state(ssl);
	tls = palloc0(sizeof(SlTls));
	tls->ssl = ssl;
	return tls;
}

/* What ret of an SSL call means for the event loop */
static SlTlsResult
result_of(SlTls *tls, int ret)
{
	int			err = SSL_get_error(tls->ssl, ret);

	switch (err)
	{
		case SSL_ERROR_NONE:
			return SL_TLS_OK;
		case SSL_ERROR_WANT_READ:
			return SL_TLS_WANT_READ;
		case SSL_ERROR_WANT_WRITE:
			return SL_TLS_WANT_WRITE;
		case SSL_ERROR_ZERO_RETURN:
			return SL_TLS_CLOSED;
		case SSL_ERROR_SYSCALL:
			tls->error = ERR_get_error();
			tls->sys_errno = errno;
			/* EOF without close_notify, or a reset: the peer just went away */
			if (tls->error == 0 &&
				(tls->sys_errno == 0 || tls->sys_errno == EPIPE ||
				 tls->sys_errno == ECONNRESET))
				return SL_TLS_CLOSED;
			return SL_TLS_ERROR;
		default:
			tls->error = ERR_get_error();
			tls->sys_errno = 0;
			return SL_TLS_ERROR;
	}
}

SlTlsResult
SlTlsHandshake(SlTls *tls)
{
	ERR_clear_error();
	errno = 0;
	return result_of(tls, SSL_do_handshake(tls->ssl));
}

SlTlsResult
SlTlsRead(SlTls *tls, void *buf, size_t len, size_t *n)
{
	int			ret;

	ERR_clear_error();
	errno = 0;
	ret = SSL_read_ex(tls->ssl, buf, len, n);
	if (ret == 1)
		return SL_TLS_OK;
	*n = 0;
	return result_of(tls, ret);
}

SlTlsResult
SlTlsWrite(SlTls *tls, const void *buf, size_t len, size_t *n)
{
	int			ret;

	ERR_clear_error();
	errno = 0;
	ret = SSL_write_ex(tls->ssl, buf, len, n);
	if (ret == 1)
		return SL_TLS_OK;
	*n = 0;
	return result_of(tls, ret);
}

bool
SlTlsHasBufferedInput(SlTls *tls)
{
	/* read ahead: records not yet decrypted count too */
	return SSL_has_pending(tls->ssl) == 1;
}

char *
SlTlsError(SlTls *tls)
{
	if (tls->error != 0)
	{
		const char *reason = ERR_reason_error_string(tls->error);

		return reason ? pstrdup(reason) : psprintf("OpenSSL error %lu", tls->error);
	}
	if (tls->sys_errno != 0)
		return pstrdup(strerror(tls->sys_errno));
	return pstrdup("unknown TLS error");
}

char *
SlTlsPeerSubject(SlTls *tls)
{
	X509	   *cert = SSL_get0_peer_certificate(tls->ssl);
	BIO		   *bio;
	char	   *data;
	long		len;
	char	   *subject;

	if (cert == NULL || SSL_get_verify_result(tls->ssl) != X509_V_OK)
		return NULL;
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL)
		return NULL;
	X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
	len = BIO_get_mem_data(bio, &data);
	subject = pnstrdup(data, len);
	BIO_free(bio);
	return subject;
}

const char *
SlTlsProtocolName(SlTls *tls)
{
	return SSL_get_version(tls->ssl);
}

const char *
SlTlsCipher(SlTls *tls)
{
	return SSL_get_cipher_name(tls->ssl);
}

void
SlTlsFree(SlTls *tls, bool say_goodbye)
{
	if (say_goodbye && SSL_is_init_finished(tls->ssl))
	{
		ERR_clear_error();
		(void) SSL_shutdown(tls->ssl);
	}
	SSL_free(tls->ssl);
	ERR_clear_error();
	pfree(tls);
}
