/*
 * TLS for the Kafka listeners of protocol SSL and SASL_SSL, with OpenSSL.
 *
 * One server context per process, built from streamlog.ssl_* (which default
 * to PostgreSQL's own ssl_cert_file, ssl_key_file, ssl_ca_file and
 * ssl_ciphers: one certificate for both doors).  Every call is
 * non-blocking: what OpenSSL waits for comes back as SL_TLS_WANT_READ or
 * SL_TLS_WANT_WRITE, for the caller's event loop to wait on.
 */
#ifndef SL_TLS_H
#define SL_TLS_H

#include "postgres.h"

typedef struct SlTls SlTls;		/* one connection's TLS state */

typedef enum SlTlsResult
{
	SL_TLS_OK,					/* done (or bytes moved) */
	SL_TLS_WANT_READ,			/* wait for the socket to be readable */
	SL_TLS_WANT_WRITE,			/* wait for it to be writeable */
	SL_TLS_CLOSED,				/* the peer closed the TLS session */
	SL_TLS_ERROR				/* failed: see SlTlsError */
} SlTlsResult;

/*
 * Build the server context from the settings.  At postmaster start a bad
 * setting is an ERROR (the server does not start); later (a reload, a
 * worker starting) it is a LOG line and the context in use stays.
 */
extern void SlTlsLoad(bool at_start);

/* A connection over sock, server side; NULL (with a LOG line) on failure */
extern SlTls *SlTlsCreate(pgsocket sock);

/* Go on with the handshake */
extern SlTlsResult SlTlsHandshake(SlTls *tls);

/* Read or write up to len bytes; *n is what was moved when SL_TLS_OK */
extern SlTlsResult SlTlsRead(SlTls *tls, void *buf, size_t len, size_t *n);
extern SlTlsResult SlTlsWrite(SlTls *tls, const void *buf, size_t len, size_t *n);

/*
 * Bytes read from the socket already, which it will not signal again
 * (possibly the start of a record only: a read may still want more)
 */
extern bool SlTlsHasBufferedInput(SlTls *tls);

/* Why the last call failed (palloc'd) */
extern char *SlTlsError(SlTls *tls);

/*
 * The subject of the client's certificate as an RFC 2253 string
 * ("CN=alice,O=Example"), if it sent one and it was verified; else NULL.
 * Palloc'd in the current context.
 */
extern char *SlTlsPeerSubject(SlTls *tls);

/* "TLSv1.3", cipher name: for log lines */
extern const char *SlTlsProtocolName(SlTls *tls);
extern const char *SlTlsCipher(SlTls *tls);

/* Send close_notify if it can go at once, and free the state */
extern void SlTlsFree(SlTls *tls, bool say_goodbye);

#endif							/* SL_TLS_H */
