/*
 * slbench: Kafka-protocol load generator for the streamlog broker (or any
 * Kafka broker, or librdkafka's in-process mock cluster).
 *
 *   slbench produce --brokers B --topic T --records N [--size S] [--acks all]
 *                   [--compression none]
 *   slbench produce --mock [--partitions P] --topic T --records N [--size S]
 *   slbench consume --brokers B --topic T --partitions P --records N
 *   slbench latency --brokers B --topic T [--rate R] [--seconds D] [--size S]
 *
 * Common options: --set key=value (any librdkafka property, repeatable),
 * --stats FILE (write the last librdkafka statistics JSON seen during the
 * run to FILE), --timeout SECONDS (give up when no progress is made for
 * that long; default 60).
 *
 * produce --mock measures the client against librdkafka's in-process mock
 * cluster (test.mock.num.brokers=1), the ceiling of the client itself.
 * (The mock cluster keeps only the last few MB of each partition, so it
 * cannot stand in for a broker in consume.)
 *
 * Each run ends with one line on stdout:
 *
 *   result mode=... key=value ...
 *
 * Client errors (error callback, failed deliveries, consumer errors) are
 * printed on stderr as they happen and counted in the result line; the exit
 * status is 0 only when the run completed without any.
 *
 * MB = 10^6 bytes of value payload.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define PROG "slbench"
#include "slbench_common.h"

#define VALUE_POOL (1 << 20)
#define LAT_MAGIC UINT64_C(0x736c62656e636821)	/* "slbench!" */

typedef struct Options
{
	const char *mode;
	const char *brokers;
	const char *topic;
	long		records;
	int			size;
	const char *acks;
	const char *compression;
	int			partitions;
	int			partition;
	bool		mock;
	double		rate;
	double		seconds;
	double		warmup;
	double		timeout;
	const char *stats;
} Options;

static Options opt = {
	.size = 100,
	.acks = "all",
	.compression = "none",
	.partitions = 1,
	.partition = 0,
	.rate = 10000,
	.seconds = 10,
	.warmup = 1,
	.timeout = 60,
};

/* Counters shared with librdkafka's threads */
static atomic_long delivered;
static atomic_long failed;

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static char *last_stats[2];		/* by rd_kafka_type_t: producer, consumer */

/* Latency mode: when each record was handed over, when it was acknowledged */
static int64_t *ack_sent_ns;
static int64_t *ack_ns;
static long ack_count;

/* ---------------------------------------------------------------- util */

static void
sleep_until(int64_t t)
{
	struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !interrupted)
		;
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: slbench produce --brokers B | --mock  --topic T --records N [--size S]\n"
			"                       [--acks all] [--compression none] [--partitions P]\n"
			"       slbench consume --brokers B --topic T --partitions P --records N\n"
			"       slbench latency --brokers B --topic T [--rate R] [--seconds D] [--size S]\n"
			"                       [--warmup SECONDS] [--partition P]\n"
			"options for all modes: --set key=value  --stats FILE  --timeout SECONDS\n");
	exit(2);
}

static void
parse_args(int argc, char **argv)
{
	if (argc < 2)
		usage();
	opt.mode = argv[1];
	for (int i = 2; i < argc; i++)
	{
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

#define TAKE() do { if (v == NULL) die("%s needs a value", a); i++; } while (0)
		if (strcmp(a, "--brokers") == 0) { TAKE(); opt.brokers = v; }
		else if (strcmp(a, "--topic") == 0) { TAKE(); opt.topic = v; }
		else if (strcmp(a, "--records") == 0) { TAKE(); opt.records = atol(v); }
		else if (strcmp(a, "--size") == 0) { TAKE(); opt.size = atoi(v); }
		else if (strcmp(a, "--acks") == 0) { TAKE(); opt.acks = v; }
		else if (strcmp(a, "--compression") == 0) { TAKE(); opt.compression = v; }
		else if (strcmp(a, "--partitions") == 0) { TAKE(); opt.partitions = atoi(v); }
		else if (strcmp(a, "--partition") == 0) { TAKE(); opt.partition = atoi(v); }
		else if (strcmp(a, "--rate") == 0) { TAKE(); opt.rate = atof(v); }
		else if (strcmp(a, "--seconds") == 0) { TAKE(); opt.seconds = atof(v); }
		else if (strcmp(a, "--warmup") == 0) { TAKE(); opt.warmup = atof(v); }
		else if (strcmp(a, "--timeout") == 0) { TAKE(); opt.timeout = atof(v); }
		else if (strcmp(a, "--stats") == 0) { TAKE(); opt.stats = v; }
		else if (strcmp(a, "--set") == 0) { TAKE(); add_set(v); }
		else if (strcmp(a, "--mock") == 0) opt.mock = true;
		else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) usage();
		else die("unknown option %s", a);
#undef TAKE
	}
	if (opt.topic == NULL)
		die("--topic is required");
	if (!opt.mock && opt.brokers == NULL)
		die("--brokers is required (or --mock for produce)");
	if (opt.mock && strcmp(opt.mode, "produce") != 0)
		die("--mock is only for produce");
	if (opt.size < 0 || opt.size > 10 * 1000 * 1000)
		die("--size out of range");
	if (opt.partitions < 1)
		die("--partitions must be at least 1");
}

/* ------------------------------------------------------- librdkafka glue */

static int
stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
	int			type = rd_kafka_type(rk) == RD_KAFKA_CONSUMER;

	(void) json_len;
	(void) opaque;
	pthread_mutex_lock(&stats_lock);
	free(last_stats[type]);
	last_stats[type] = json;	/* ours now: returning 1 keeps it */
	pthread_mutex_unlock(&stats_lock);
	return 1;
}

static void
write_stats(void)
{
	FILE	   *f;

	if (opt.stats == NULL)
		return;
	pthread_mutex_lock(&stats_lock);
	f = fopen(opt.stats, "w");
	if (f)
	{
		fprintf(f, "{\"producer\": %s,\n\"consumer\": %s}\n",
				last_stats[0] ? last_stats[0] : "null",
				last_stats[1] ? last_stats[1] : "null");
		fclose(f);
	}
	pthread_mutex_unlock(&stats_lock);
}

static rd_kafka_conf_t *
base_conf(const char *client_id)
{
	rd_kafka_conf_t *conf = client_conf(client_id);

	if (opt.mock)
		set(conf, "test.mock.num.brokers", "1");
	else
		set(conf, "bootstrap.servers", opt.brokers);
	if (opt.stats)
	{
		set(conf, "statistics.interval.ms", "1000");
		rd_kafka_conf_set_stats_cb(conf, stats_cb);
	}
	apply_sets(conf);
	return conf;
}

/* Wait for the topic's metadata: connected, topic known, leaders elected */
static int
wait_for_topic(rd_kafka_t *rk, rd_kafka_topic_t *rkt)
{
	int64_t		deadline = now_ns() + (int64_t) (opt.timeout * 1e9);

	while (!interrupted)
	{
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
		int			partitions = -1;

		if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
			{
				partitions = md->topics[0].partition_cnt;
				for (int p = 0; p < partitions; p++)
					if (md->topics[0].partitions[p].leader < 0)
						partitions = -1;
			}
			else if (md->topic_cnt == 1)
				err = md->topics[0].err;
			rd_kafka_metadata_destroy(md);
		}
		if (partitions > 0)
			return partitions;
		if (now_ns() > deadline)
			die("topic %s not available: %s", opt.topic, rd_kafka_err2str(err));
		usleep(200 * 1000);
	}
	exit(130);
}

/* Printable, non-repeating bytes for values (no compression is assumed) */
static char *
value_pool(void)
{
	char	   *pool = malloc(VALUE_POOL + opt.size + 64);
	uint64_t	x = 0x9e3779b97f4a7c15ULL;

	if (pool == NULL)
		die("out of memory");
	for (size_t i = 0; i < VALUE_POOL + (size_t) opt.size + 64; i++)
	{
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pool[i] = 'a' + (char) (x % 26);
	}
	return pool;
}

static double
mb(double bytes)
{
	return bytes / 1e6;
}

/* -------------------------------------------------------------- produce */

static void
dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void) rk;
	(void) opaque;
	if (m->err)
	{
		if (atomic_fetch_add(&failed, 1) < 10)
			fprintf(stderr, "slbench: delivery failed: %s\n", rd_kafka_err2str(m->err));
	}
	else
	{
		atomic_fetch_add(&delivered, 1);
		if (ack_ns != NULL && m->_private != NULL)
		{
			long		i = (long) (intptr_t) m->_private - 1;

			ack_ns[ack_count++] = now_ns() - ack_sent_ns[i];
		}
	}
}

static int
run_produce(void)
{
	rd_kafka_conf_t *conf = base_conf("slbench-produce");
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	char	   *pool = value_pool();
	int64_t		t0,
				t1;
	long		queue_full = 0;
	double		secs;
	int			partitions;

	set(conf, "acks", opt.acks);
	set(conf, "compression.type", opt.compression);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rk = new_handle(RD_KAFKA_PRODUCER, conf);
	if (opt.mock)
	{
		rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(rk);

		if (mc == NULL)
			die("no mock cluster");
		if (rd_kafka_mock_topic_create(mc, opt.topic, opt.partitions, 1))
			die("could not create topic %s in the mock cluster", opt.topic);
	}
	rkt = rd_kafka_topic_new(rk, opt.topic, NULL);
	partitions = wait_for_topic(rk, rkt);

	t0 = now_ns();
	for (long i = 0; i < opt.records && !interrupted; i++)
	{
		char	   *value = pool + (size_t) ((uint64_t) i * 7919 % VALUE_POOL);

		/* The pool outlives the handle: no copy (flags 0) */
		while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, 0, value, opt.size,
								NULL, 0, NULL) == -1)
		{
			rd_kafka_resp_err_t err = rd_kafka_last_error();

			if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
				die("produce: %s", rd_kafka_err2str(err));
			queue_full++;
			rd_kafka_poll(rk, 1);
		}
		if ((i & 1023) == 0)
			rd_kafka_poll(rk, 0);
	}
	while (rd_kafka_outq_len(rk) > 0 && !interrupted)
	{
		long		before = atomic_load(&delivered) + atomic_load(&failed);

		rd_kafka_flush(rk, (int) (opt.timeout * 1000));
		if (rd_kafka_outq_len(rk) > 0 &&
			atomic_load(&delivered) + atomic_load(&failed) == before)
		{
			fprintf(stderr, "slbench: no delivery for %.0f s with %d messages outstanding\n",
					opt.timeout, rd_kafka_outq_len(rk));
			break;
		}
	}
	t1 = now_ns();
	secs = (t1 - t0) / 1e9;
	write_stats();

	printf("result mode=produce target=%s topic=%s partitions=%d records=%ld size=%d "
		   "acks=%s compression=%s delivered=%ld failed=%ld client_errors=%ld "
		   "queue_full_waits=%ld seconds=%.3f records_per_s=%.0f mb_per_s=%.2f\n",
		   opt.mock ? "mock" : opt.brokers, opt.topic, partitions, opt.records, opt.size,
		   opt.acks, opt.compression, atomic_load(&delivered), atomic_load(&failed),
		   atomic_load(&client_errors), queue_full, secs,
		   atomic_load(&delivered) / secs, mb((double) atomic_load(&delivered) * opt.size) / secs);
	fflush(stdout);

	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	return (atomic_load(&delivered) == opt.records && atomic_load(&failed) == 0 &&
			atomic_load(&client_errors) == 0) ? 0 : 1;
}

/* -------------------------------------------------------------- consume */

typedef struct ConsumeState
{
	long		count;
	long		errors;
	double		bytes;
	int64_t		t_first;		/* when the first record arrived */
	int64_t		t_done;			/* when the last wanted record arrived */
} ConsumeState;

static void
consume_cb(rd_kafka_message_t *m, void *opaque)
{
	ConsumeState *st = opaque;

	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		if (st->count == 0)
			st->t_first = now_ns();
		st->bytes += m->len;
		if (++st->count == opt.records)
			st->t_done = now_ns();
	}
	else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
	{
		if (st->errors++ < 10)
			fprintf(stderr, "slbench: consumer error: %s [%d]: %s\n",
					opt.topic, m->partition, rd_kafka_message_errstr(m));
	}
}

static int
run_consume(void)
{
	rd_kafka_conf_t *conf = base_conf("slbench-consume");
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	rd_kafka_queue_t *q;
	ConsumeState st = {0};
	int64_t		t0,
				t_first_batch = 0,
				last_progress;
	long		first_batch = 0;
	double		secs,
				steady;
	set(conf, "enable.partition.eof", "false");
	rk = new_handle(RD_KAFKA_CONSUMER, conf);
	rkt = rd_kafka_topic_new(rk, opt.topic, NULL);
	wait_for_topic(rk, rkt);
	q = rd_kafka_queue_new(rk);

	t0 = now_ns();
	for (int p = 0; p < opt.partitions; p++)
		if (rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_BEGINNING, q) == -1)
			die("consume_start %s [%d]: %s", opt.topic, p,
				rd_kafka_err2str(rd_kafka_last_error()));
	last_progress = t0;
	while (st.count < opt.records && !interrupted)
	{
		/* Returns as soon as something was served, or after 100 ms */
		int			n = rd_kafka_consume_callback_queue(q, 100, consume_cb, &st);
		int64_t		now = now_ns();

		if (n < 0)
			die("consume: %s", rd_kafka_err2str(rd_kafka_last_error()));
		rd_kafka_poll(rk, 0);	/* errors, statistics */
		if (n > 0)
		{
			if (first_batch == 0 && st.count > 0)
			{
				first_batch = st.count;
				t_first_batch = now;
			}
			last_progress = now;
		}
		else if (now - last_progress > (int64_t) (opt.timeout * 1e9))
		{
			fprintf(stderr, "slbench: no record for %.0f s after %ld of %ld\n",
					opt.timeout, st.count, opt.records);
			break;
		}
	}
	secs = ((st.t_done ? st.t_done : now_ns()) - t0) / 1e9;
	write_stats();

	/*
	 * The steady rate leaves out the start (offset lookups, the first
	 * fetch): from the first records handed over to the last.
	 */
	steady = (st.t_done && t_first_batch && st.t_done > t_first_batch) ?
		(st.t_done - t_first_batch) / 1e9 : 0;
	printf("result mode=consume target=%s topic=%s partitions=%d records=%ld consumed=%ld "
		   "errors=%ld client_errors=%ld seconds=%.3f first_record_ms=%.1f records_per_s=%.0f "
		   "mb_per_s=%.2f steady_records_per_s=%.0f steady_mb_per_s=%.2f\n",
		   opt.brokers, opt.topic, opt.partitions, opt.records,
		   st.count, st.errors, atomic_load(&client_errors), secs,
		   st.t_first ? (st.t_first - t0) / 1e6 : -1.0,
		   st.count / secs, mb(st.bytes) / secs,
		   steady > 0 ? (st.count - first_batch) / steady : 0.0,
		   steady > 0 ? mb(st.bytes * (st.count - first_batch) / st.count) / steady : 0.0);
	fflush(stdout);

	for (int p = 0; p < opt.partitions; p++)
		rd_kafka_consume_stop(rkt, p);
	rd_kafka_queue_destroy(q);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	return (st.count >= opt.records && st.errors == 0 && atomic_load(&client_errors) == 0) ? 0 : 1;
}

/* -------------------------------------------------------------- latency */

/* The value of a latency record starts with this header */
typedef struct LatHeader
{
	uint64_t	magic;
	int64_t		seq;			/* negative during the warm-up */
	int64_t		sent_ns;		/* CLOCK_MONOTONIC when handed to produce */
} LatHeader;

typedef struct LatConsumer
{
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	long		expected;		/* measured records */
	int64_t    *latency_ns;		/* by seq, -1 until received */
	atomic_long received;		/* measured records received */
	atomic_long duplicates;
	atomic_long errors;
	atomic_int	ready;			/* positioned at the end of the partition */
	atomic_int	stop;
} LatConsumer;

static void
latency_cb(rd_kafka_message_t *m, void *opaque)
{
	LatConsumer *c = opaque;
	int64_t		now = now_ns();
	LatHeader	h;

	if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
		atomic_store(&c->ready, 1);
	else if (m->err)
	{
		if (atomic_fetch_add(&c->errors, 1) < 10)
			fprintf(stderr, "slbench: consumer error: %s\n", rd_kafka_message_errstr(m));
	}
	else if (m->len >= sizeof(h))
	{
		memcpy(&h, m->payload, sizeof(h));
		if (h.magic == LAT_MAGIC && h.seq >= 0 && h.seq < c->expected)
		{
			if (c->latency_ns[h.seq] >= 0)
				atomic_fetch_add(&c->duplicates, 1);
			else
			{
				c->latency_ns[h.seq] = now - h.sent_ns;
				atomic_fetch_add(&c->received, 1);
			}
		}
	}
}

static void *
latency_consumer(void *arg)
{
	LatConsumer *c = arg;
	rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);

	if (rd_kafka_consume_start_queue(c->rkt, opt.partition, RD_KAFKA_OFFSET_END, q) == -1)
		die("consume_start %s [%d]: %s", opt.topic, opt.partition,
			rd_kafka_err2str(rd_kafka_last_error()));
	while (!atomic_load(&c->stop))
	{
		/* Each record is timed as soon as librdkafka hands it over */
		rd_kafka_consume_callback_queue(q, 20, latency_cb, c);
		rd_kafka_poll(c->rk, 0);	/* errors, statistics */
	}
	rd_kafka_consume_stop(c->rkt, opt.partition);
	rd_kafka_queue_destroy(q);
	return NULL;
}

static double
pct_ms(const int64_t *sorted, long n, double p)
{
	long		i;

	if (n == 0)
		return -1;
	i = (long) (p / 100.0 * n + 0.5) - 1;
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return sorted[i] / 1e6;
}

static int
run_latency(void)
{
	rd_kafka_conf_t *pconf = base_conf("slbench-latency-producer");
	rd_kafka_conf_t *cconf;
	rd_kafka_t *producer;
	rd_kafka_topic_t *prkt;
	LatConsumer c;
	pthread_t	thread;
	char	   *value;
	long		warm = (long) (opt.warmup * opt.rate);
	long		total;
	int64_t		start,
				interval_ns,
				end_send,
				deadline,
				late_max = 0;
	long		late = 0;
	long		n = 0;
	double		sum = 0;
	int			size = opt.size < (int) sizeof(LatHeader) ? (int) sizeof(LatHeader) : opt.size;

	if (opt.rate <= 0 || opt.seconds <= 0)
		die("--rate and --seconds must be positive");
	memset(&c, 0, sizeof(c));
	c.expected = (long) (opt.seconds * opt.rate);
	total = warm + c.expected;
	interval_ns = (int64_t) (1e9 / opt.rate);
	c.latency_ns = malloc(sizeof(int64_t) * c.expected);
	value = value_pool();
	if (c.latency_ns == NULL)
		die("out of memory");
	for (long i = 0; i < c.expected; i++)
		c.latency_ns[i] = -1;
	ack_sent_ns = malloc(sizeof(int64_t) * c.expected);
	ack_ns = malloc(sizeof(int64_t) * c.expected);
	if (ack_sent_ns == NULL || ack_ns == NULL)
		die("out of memory");

	set(pconf, "linger.ms", "0");
	set(pconf, "acks", opt.acks);
	set(pconf, "compression.type", opt.compression);
	rd_kafka_conf_set_dr_msg_cb(pconf, dr_cb);
	producer = new_handle(RD_KAFKA_PRODUCER, pconf);
	prkt = rd_kafka_topic_new(producer, opt.topic, NULL);

	cconf = base_conf("slbench-latency-consumer");
	set(cconf, "fetch.wait.max.ms", "100");
	set(cconf, "fetch.error.backoff.ms", "10");
	set(cconf, "enable.partition.eof", "true");
	c.rk = new_handle(RD_KAFKA_CONSUMER, cconf);
	c.rkt = rd_kafka_topic_new(c.rk, opt.topic, NULL);

	wait_for_topic(producer, prkt);
	wait_for_topic(c.rk, c.rkt);
	if (pthread_create(&thread, NULL, latency_consumer, &c) != 0)
		die("pthread_create failed");
	deadline = now_ns() + (int64_t) (opt.timeout * 1e9);
	while (!atomic_load(&c.ready))
	{
		if (now_ns() > deadline || interrupted)
			die("the consumer did not reach the end of %s [%d]", opt.topic, opt.partition);
		usleep(10 * 1000);
	}

	start = now_ns();
	for (long i = 0; i < total && !interrupted; i++)
	{
		int64_t		due = start + i * interval_ns;
		int64_t		t = now_ns();
		LatHeader	h;

		if (t < due)
			sleep_until(due);
		else if (t - due > interval_ns)
		{
			late++;
			if (t - due > late_max)
				late_max = t - due;
		}
		h.magic = LAT_MAGIC;
		h.seq = i - warm;
		h.sent_ns = now_ns();
		memcpy(value, &h, sizeof(h));
		if (h.seq >= 0)
			ack_sent_ns[h.seq] = h.sent_ns;
		while (rd_kafka_produce(prkt, opt.partition, RD_KAFKA_MSG_F_COPY, value, size,
								NULL, 0, h.seq >= 0 ? (void *) (intptr_t) (h.seq + 1) : NULL) == -1)
		{
			if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL)
				die("produce: %s", rd_kafka_err2str(rd_kafka_last_error()));
			rd_kafka_poll(producer, 1);
		}
		rd_kafka_poll(producer, 0);
	}
	end_send = now_ns();
	rd_kafka_flush(producer, (int) (opt.timeout * 1000));

	/* Let the consumer catch up, then stop it */
	deadline = now_ns() + 10 * (int64_t) 1000000000;
	while (atomic_load(&c.received) < c.expected && now_ns() < deadline && !interrupted)
		usleep(10 * 1000);
	write_stats();
	atomic_store(&c.stop, 1);
	pthread_join(thread, NULL);

	for (long i = 0; i < c.expected; i++)
		if (c.latency_ns[i] >= 0)
		{
			c.latency_ns[n++] = c.latency_ns[i];
			sum += c.latency_ns[i];
		}
	qsort(c.latency_ns, n, sizeof(int64_t), cmp_i64);
	qsort(ack_ns, ack_count, sizeof(int64_t), cmp_i64);

	printf("result mode=latency topic=%s partition=%d size=%d rate=%.0f seconds=%.1f "
		   "warmup_records=%ld sent=%ld received=%ld lost=%ld duplicates=%ld failed=%ld "
		   "consumer_errors=%ld client_errors=%ld send_rate=%.0f late_sends=%ld late_max_ms=%.2f "
		   "p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f mean_ms=%.3f "
		   "ack_p50_ms=%.3f ack_p99_ms=%.3f ack_max_ms=%.3f\n",
		   opt.topic, opt.partition, size, opt.rate, opt.seconds, warm, c.expected, n,
		   c.expected - n, atomic_load(&c.duplicates), atomic_load(&failed),
		   atomic_load(&c.errors), atomic_load(&client_errors),
		   total / ((end_send - start) / 1e9), late, late_max / 1e6,
		   pct_ms(c.latency_ns, n, 50), pct_ms(c.latency_ns, n, 90), pct_ms(c.latency_ns, n, 99),
		   pct_ms(c.latency_ns, n, 99.9), n ? c.latency_ns[n - 1] / 1e6 : -1.0,
		   n ? sum / n / 1e6 : -1.0,
		   pct_ms(ack_ns, ack_count, 50), pct_ms(ack_ns, ack_count, 99),
		   ack_count ? ack_ns[ack_count - 1] / 1e6 : -1.0);
	fflush(stdout);

	rd_kafka_topic_destroy(c.rkt);
	rd_kafka_destroy(c.rk);
	rd_kafka_topic_destroy(prkt);
	rd_kafka_destroy(producer);
	return (n == c.expected && atomic_load(&failed) == 0 && atomic_load(&c.errors) == 0 &&
			atomic_load(&client_errors) == 0) ? 0 : 1;
}

int
main(int argc, char **argv)
{
	int			rc;

	parse_args(argc, argv);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (strcmp(opt.mode, "produce") == 0)
	{
		if (opt.records <= 0)
			die("--records must be positive");
		rc = run_produce();
	}
	else if (strcmp(opt.mode, "consume") == 0)
	{
		if (opt.records <= 0)
			die("--records must be positive");
		rc = run_consume();
	}
	else if (strcmp(opt.mode, "latency") == 0)
		rc = run_latency();
	else
		usage();
	return rc;
}
