/*
 * Common includes for the codec layer (src/protocol/).
 *
 * The codecs know nothing of sockets, relations or ereport: they return an
 * error string and leave the reporting to the caller.  They compile both
 * inside the server and as frontend code (with -DFRONTEND, linked against
 * libpgcommon and libpgport) so that unit tests and fuzzers run without a
 * server.
 */
#ifndef SL_CODEC_BASE_H
#define SL_CODEC_BASE_H

#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include "lib/stringinfo.h"

#endif							/* SL_CODEC_BASE_H */
