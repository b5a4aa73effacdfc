/*
 * What the two librdkafka load generators, slbench (bench/kafka) and
 * slgroup (bench/groups), share: fatal errors, the monotonic clock, the
 * interrupt flag, librdkafka configuration (with the --set key=value
 * properties of the command line) and handles, and the count of client
 * errors that decides their exit status.
 *
 * Each program is one file built on its own by its run.sh, so everything
 * here is static; define PROG, the program's name for its messages, before
 * including this.
 */
#ifndef SLBENCH_COMMON_H
#define SLBENCH_COMMON_H

#ifndef PROG
#error "define PROG (the program's name, for messages) before including slbench_common.h"
#endif

#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#define MAX_SETS 64

/* Errors librdkafka reported through error_cb: any makes the run fail */
static atomic_long client_errors;
static volatile sig_atomic_t interrupted;

/* --set key=value, applied last so that they override the program's own */
static const char *conf_sets[MAX_SETS];
static int	nconf_sets;

__attribute__((format(printf, 1, 2), noreturn))
static inline void
die(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* CLOCK_MONOTONIC: the same clock in every process of a run */
static inline int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void
on_signal(int sig)
{
	(void) sig;
	interrupted = 1;
}

static inline int
cmp_i64(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a,
				y = *(const int64_t *) b;

	return (x > y) - (x < y);
}

static inline void
add_set(const char *kv)
{
	if (nconf_sets == MAX_SETS)
		die("too many --set options");
	conf_sets[nconf_sets++] = kv;
}

static inline void
set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char		err[512];

	if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK)
		die("%s=%s: %s", name, value, err);
}

static inline void
apply_sets(rd_kafka_conf_t *conf)
{
	for (int i = 0; i < nconf_sets; i++)
	{
		char	   *kv = strdup(conf_sets[i]);
		char	   *eq = strchr(kv, '=');

		if (eq == NULL)
			die("--set %s: expected key=value", conf_sets[i]);
		*eq = '\0';
		set(conf, kv, eq + 1);
		free(kv);
	}
}

static inline void
error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void) rk;
	(void) opaque;
	atomic_fetch_add(&client_errors, 1);
	fprintf(stderr, PROG ": client error: %s: %s\n", rd_kafka_err2name(err), reason);
}

/* A configuration named client_id that counts client errors */
static inline rd_kafka_conf_t *
client_conf(const char *client_id)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	set(conf, "client.id", client_id);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	return conf;
}

static inline rd_kafka_t *
new_handle(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
	char		err[512];
	rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));

	if (rk == NULL)
		die("rd_kafka_new: %s", err);
	return rk;
}

#endif							/* SLBENCH_COMMON_H */
