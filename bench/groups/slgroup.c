/*
 * slgroup: Kafka consumer-group load generator for the streamlog broker.
 *
 *   slgroup drain --brokers B --topic T --partitions P --records N
 *                 --group G [--consumers C]
 *   slgroup rebalance --brokers B --topic T --group G [--reps R]
 *                 [--heartbeat MS] [--session MS]
 *
 * drain: C consumers (threads, each with its own rd_kafka_t) join group G,
 * subscribe to T (auto commit, auto.offset.reset=earliest) and read until
 * each of the N records of the topic has been seen once.  Assigned
 * partitions are paused until every consumer holds its share (so that the
 * group's start-up rebalances are not part of the figure), then resumed;
 * timed from the first record received after that to the last distinct
 * record.
 *
 * rebalance: group members are separate processes (forked before any
 * librdkafka handle exists), which report their subscribe and assignment
 * times (CLOCK_MONOTONIC, shared by all processes) through a pipe.  Per
 * repetition, with a fresh group:
 *   join: two members are started and left to settle; a third is started;
 *         time from its rd_kafka_subscribe() to the last of the three
 *         members' new assignment (rebalance callback, ASSIGN);
 *   kill: the third member is killed with SIGKILL; time from kill() to the
 *         last of the two survivors' new assignment.
 * Each member also times a few Metadata requests (the broker round trip).
 *
 * Common options: --set key=value (any librdkafka property, repeatable),
 * --timeout SECONDS (give up after that long without progress; default 60).
 *
 * Output: "rep k=v ..." lines (rebalance) and one final "result mode=... k=v"
 * line on stdout; errors on stderr.  Exit status 0 only without errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROG "slgroup"
#include "../kafka/slbench_common.h"

#define MAX_CONSUMERS 64
#define MAX_PARTITIONS 256
#define MEMBERS 3

typedef struct Options
{
	const char *mode;
	const char *brokers;
	const char *topic;
	const char *group;
	long		records;
	int			partitions;
	int			consumers;
	int			reps;
	int			heartbeat_ms;
	int			session_ms;
	double		timeout;
} Options;

static Options opt = {
	.partitions = 1,
	.consumers = 3,
	.reps = 3,
	.heartbeat_ms = 500,
	.session_ms = 6000,
	.timeout = 60,
};

/* ---------------------------------------------------------------- util */

static void
usage(void)
{
	fprintf(stderr,
			"usage: slgroup drain --brokers B --topic T --partitions P --records N --group G\n"
			"                     [--consumers C]\n"
			"       slgroup rebalance --brokers B --topic T --group G [--reps R]\n"
			"                     [--heartbeat MS] [--session MS]\n"
			"options for all modes: --set key=value  --timeout SECONDS\n");
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
		else if (strcmp(a, "--group") == 0) { TAKE(); opt.group = v; }
		else if (strcmp(a, "--records") == 0) { TAKE(); opt.records = atol(v); }
		else if (strcmp(a, "--partitions") == 0) { TAKE(); opt.partitions = atoi(v); }
		else if (strcmp(a, "--consumers") == 0) { TAKE(); opt.consumers = atoi(v); }
		else if (strcmp(a, "--reps") == 0) { TAKE(); opt.reps = atoi(v); }
		else if (strcmp(a, "--heartbeat") == 0) { TAKE(); opt.heartbeat_ms = atoi(v); }
		else if (strcmp(a, "--session") == 0) { TAKE(); opt.session_ms = atoi(v); }
		else if (strcmp(a, "--timeout") == 0) { TAKE(); opt.timeout = atof(v); }
		else if (strcmp(a, "--set") == 0) { TAKE(); add_set(v); }
		else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) usage();
		else die("unknown option %s", a);
#undef TAKE
	}
	if (opt.brokers == NULL || opt.topic == NULL || opt.group == NULL)
		die("--brokers, --topic and --group are required");
	if (opt.partitions < 1 || opt.partitions > MAX_PARTITIONS)
		die("--partitions out of range");
	if (opt.consumers < 1 || opt.consumers > MAX_CONSUMERS)
		die("--consumers out of range");
	if (opt.reps < 1)
		die("--reps must be positive");
}

/* ------------------------------------------------------- librdkafka glue */

static rd_kafka_conf_t *
group_conf(const char *client_id)
{
	rd_kafka_conf_t *conf = client_conf(client_id);

	set(conf, "bootstrap.servers", opt.brokers);
	set(conf, "group.id", opt.group);
	set(conf, "enable.auto.commit", "true");
	set(conf, "auto.offset.reset", "earliest");
	apply_sets(conf);
	return conf;
}

static rd_kafka_t *
new_consumer(rd_kafka_conf_t *conf)
{
	rd_kafka_t *rk = new_handle(RD_KAFKA_CONSUMER, conf);

	rd_kafka_poll_set_consumer(rk);
	return rk;
}

static void
subscribe(rd_kafka_t *rk)
{
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_resp_err_t err;

	rd_kafka_topic_partition_list_add(topics, opt.topic, RD_KAFKA_PARTITION_UA);
	err = rd_kafka_subscribe(rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (err)
		die("subscribe %s: %s", opt.topic, rd_kafka_err2str(err));
}

/* ---------------------------------------------------------------- drain */

typedef struct Drainer
{
	int			id;
	pthread_t	thread;
	long		delivered;
	long		assignments;
	atomic_int	partitions;		/* in its current assignment */
	bool		resumed;
} Drainer;

static Drainer drainers[MAX_CONSUMERS];
static atomic_int go;			/* every consumer holds its share */
static atomic_llong go_ns;
static atomic_long before_go;	/* records fetched before the pause took */

static atomic_uchar *seen[MAX_PARTITIONS];	/* by partition, offset */
static atomic_long distinct;
static atomic_long duplicates;
static atomic_long consumer_errors;
static atomic_llong first_ns;
static atomic_llong done_ns;
static atomic_llong progress_ns;

static void
drain_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
				   rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	Drainer    *d = opaque;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
	{
		d->assignments++;
		rd_kafka_assign(rk, parts);
		/* hold the partitions until the whole group is assigned */
		if (!atomic_load(&go))
			rd_kafka_pause_partitions(rk, parts);
		atomic_store(&d->partitions, parts->cnt);
	}
	else
	{
		atomic_store(&d->partitions, 0);
		rd_kafka_assign(rk, NULL);
	}
}

/* Start (once) when every consumer has partitions and all are assigned */
static void
check_go(void)
{
	int			total = 0;
	int			zero = 0;

	for (int i = 0; i < opt.consumers; i++)
	{
		int			n = atomic_load(&drainers[i].partitions);

		if (n == 0 && opt.consumers <= opt.partitions)
			return;
		total += n;
	}
	if (total == opt.partitions && atomic_compare_exchange_strong(&go, &zero, 1))
		atomic_store(&go_ns, now_ns());
}

static void
count_record(const rd_kafka_message_t *m)
{
	int64_t		t = now_ns();
	long long	zero = 0;
	bool		fresh = true;

	if (atomic_load(&go))
		atomic_compare_exchange_strong(&first_ns, &zero, t);
	else
		atomic_fetch_add(&before_go, 1);
	atomic_store(&progress_ns, t);
	if (m->partition >= 0 && m->partition < opt.partitions &&
		m->offset >= 0 && m->offset < opt.records)
		fresh = atomic_exchange(&seen[m->partition][m->offset], 1) == 0;
	if (!fresh)
	{
		atomic_fetch_add(&duplicates, 1);
		return;
	}
	if (atomic_fetch_add(&distinct, 1) + 1 == opt.records)
		atomic_store(&done_ns, t);
}

static void *
drainer(void *arg)
{
	Drainer    *d = arg;
	char		name[64];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;

	snprintf(name, sizeof(name), "slgroup-drain-%d", d->id);
	conf = group_conf(name);
	rd_kafka_conf_set_opaque(conf, d);
	rd_kafka_conf_set_rebalance_cb(conf, drain_rebalance_cb);
	rk = new_consumer(conf);
	subscribe(rk);
	while (!interrupted && atomic_load(&done_ns) == 0)
	{
		rd_kafka_message_t *m;

		if (!atomic_load(&go))
			check_go();
		if (atomic_load(&go) && !d->resumed)
		{
			rd_kafka_topic_partition_list_t *mine = NULL;

			if (rd_kafka_assignment(rk, &mine) == RD_KAFKA_RESP_ERR_NO_ERROR)
			{
				rd_kafka_resume_partitions(rk, mine);
				rd_kafka_topic_partition_list_destroy(mine);
			}
			d->resumed = true;
		}
		m = rd_kafka_consumer_poll(rk, atomic_load(&go) ? 100 : 10);
		if (m == NULL)
		{
			if (now_ns() - atomic_load(&progress_ns) > (int64_t) (opt.timeout * 1e9))
				break;
			continue;
		}
		if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			d->delivered++;
			count_record(m);
		}
		else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
		{
			if (atomic_fetch_add(&consumer_errors, 1) < 10)
				fprintf(stderr, "slgroup: consumer %d: %s\n", d->id, rd_kafka_message_errstr(m));
		}
		rd_kafka_message_destroy(m);
	}
	/* commits the final offsets (auto commit), leaves the group */
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return NULL;
}

static int
run_drain(void)
{
	Drainer    *d = drainers;
	int64_t		start = now_ns();
	double		secs;
	long		delivered = 0;

	if (opt.records <= 0)
		die("--records must be positive");
	for (int p = 0; p < opt.partitions; p++)
		if ((seen[p] = calloc(opt.records, sizeof(atomic_uchar))) == NULL)
			die("out of memory");
	atomic_store(&progress_ns, start);
	for (int i = 0; i < opt.consumers; i++)
	{
		d[i].id = i;
		if (pthread_create(&d[i].thread, NULL, drainer, &d[i]) != 0)
			die("pthread_create failed");
	}
	for (int i = 0; i < opt.consumers; i++)
	{
		pthread_join(d[i].thread, NULL);
		delivered += d[i].delivered;
	}
	secs = atomic_load(&done_ns) && atomic_load(&first_ns) ?
		(atomic_load(&done_ns) - atomic_load(&first_ns)) / 1e9 : -1;
	printf("result mode=drain topic=%s partitions=%d consumers=%d records=%ld distinct=%ld "
		   "delivered=%ld duplicates=%ld consumer_errors=%ld client_errors=%ld seconds=%.3f "
		   "records_per_s=%.0f group_ready_ms=%.1f first_record_ms=%.1f before_start=%ld",
		   opt.topic, opt.partitions, opt.consumers, opt.records, atomic_load(&distinct),
		   delivered, atomic_load(&duplicates), atomic_load(&consumer_errors),
		   atomic_load(&client_errors), secs, secs > 0 ? opt.records / secs : 0,
		   atomic_load(&go_ns) ? (atomic_load(&go_ns) - start) / 1e6 : -1.0,
		   atomic_load(&first_ns) ? (atomic_load(&first_ns) - start) / 1e6 : -1.0,
		   atomic_load(&before_go));
	for (int i = 0; i < opt.consumers; i++)
		printf(" m%d_records=%ld m%d_assignments=%ld", i, d[i].delivered, i, d[i].assignments);
	printf("\n");
	fflush(stdout);
	return (atomic_load(&distinct) == opt.records && atomic_load(&consumer_errors) == 0 &&
			atomic_load(&client_errors) == 0) ? 0 : 1;
}

/* ------------------------------------------------------------ rebalance */

static int event_fd = -1;		/* write end of the members' pipe */
static int member_id;

/* One line per event; a write of less than PIPE_BUF bytes is atomic */
static void
emit(const char *kind, int64_t t, long n)
{
	char		buf[128];
	int			len = snprintf(buf, sizeof(buf), "%s %d %" PRId64 " %ld\n", kind, member_id, t, n);

	if (write(event_fd, buf, len) != len)
		_exit(3);
}

static void
member_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
					rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	(void) opaque;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
	{
		rd_kafka_assign(rk, parts);
		emit("assign", now_ns(), parts->cnt);
	}
	else
	{
		rd_kafka_assign(rk, NULL);
		emit("revoke", now_ns(), parts->cnt);
	}
}

/* A member process: never returns */
static void
member_main(int id)
{
	char		name[64],
				ms[32];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	int64_t		rtt[6];
	int			nrtt = 0;

	member_id = id;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	snprintf(name, sizeof(name), "slgroup-member-%d", id);
	conf = group_conf(name);
	snprintf(ms, sizeof(ms), "%d", opt.heartbeat_ms);
	set(conf, "heartbeat.interval.ms", ms);
	snprintf(ms, sizeof(ms), "%d", opt.session_ms);
	set(conf, "session.timeout.ms", ms);
	set(conf, "auto.offset.reset", "latest");
	rd_kafka_conf_set_rebalance_cb(conf, member_rebalance_cb);
	rk = new_consumer(conf);

	/* The broker round trip: Metadata requests on an open connection */
	for (int i = 0; i < 7; i++)
	{
		const struct rd_kafka_metadata *md = NULL;
		int64_t		t0 = now_ns();

		if (rd_kafka_metadata(rk, 0, NULL, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			if (i > 0)			/* the first one also connects */
				rtt[nrtt++] = now_ns() - t0;
			rd_kafka_metadata_destroy(md);
		}
	}
	if (nrtt > 0)
	{
		qsort(rtt, nrtt, sizeof(int64_t), cmp_i64);
		emit("rtt", now_ns(), (long) rtt[nrtt / 2]);
	}

	emit("subscribe", now_ns(), 0);
	subscribe(rk);
	while (!interrupted)
	{
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

		if (m)
			rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	_exit(atomic_load(&client_errors) ? 1 : 0);
}

typedef struct Event
{
	char		kind[16];
	int			id;
	int64_t		t;
	long		n;
} Event;

static int	event_rd = -1;
static char evbuf[65536];
static size_t evlen;

/* Next event from the members, waiting up to timeout_ms; false on timeout */
static bool
next_event(Event *ev, int timeout_ms)
{
	int64_t		deadline = now_ns() + (int64_t) timeout_ms * 1000000;

	for (;;)
	{
		char	   *nl = memchr(evbuf, '\n', evlen);
		struct pollfd pfd = {.fd = event_rd, .events = POLLIN};
		int64_t		left;
		ssize_t		r;

		if (nl)
		{
			*nl = '\0';
			if (sscanf(evbuf, "%15s %d %" SCNd64 " %ld", ev->kind, &ev->id, &ev->t, &ev->n) != 4)
				die("bad event: %s", evbuf);
			evlen -= nl + 1 - evbuf;
			memmove(evbuf, nl + 1, evlen);
			return true;
		}
		left = (deadline - now_ns()) / 1000000;
		if (left <= 0 || interrupted)
			return false;
		if (poll(&pfd, 1, (int) left) <= 0)
			continue;
		r = read(event_rd, evbuf + evlen, sizeof(evbuf) - evlen);
		if (r <= 0)
			die("the members' pipe closed");
		evlen += r;
	}
}

typedef struct Member
{
	pid_t		pid;
	bool		alive;
	int64_t		subscribed;		/* when it called subscribe */
	int64_t		assigned;		/* when it last got an assignment */
	int64_t		revoked;		/* when it last lost one */
	long		partitions;		/* in its current assignment */
	int64_t		rtt_ns;
} Member;

static Member members[MEMBERS];

static void
apply(const Event *ev)
{
	Member	   *m;

	if (ev->id < 0 || ev->id >= MEMBERS)
		die("event from an unknown member %d", ev->id);
	m = &members[ev->id];
	if (strcmp(ev->kind, "assign") == 0)
	{
		m->assigned = ev->t;
		m->partitions = ev->n;
	}
	else if (strcmp(ev->kind, "revoke") == 0)
	{
		m->revoked = ev->t;
		m->partitions = 0;
	}
	else if (strcmp(ev->kind, "subscribe") == 0)
		m->subscribed = ev->t;
	else if (strcmp(ev->kind, "rtt") == 0)
		m->rtt_ns = ev->n;
}

static void
spawn(int id)
{
	pid_t		pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0)
	{
		close(event_rd);
		member_main(id);
	}
	memset(&members[id], 0, sizeof(Member));
	members[id].pid = pid;
	members[id].alive = true;
}

/* Have all live members an assignment newer than `since`? */
static bool
all_assigned_since(int64_t since)
{
	for (int i = 0; i < MEMBERS; i++)
		if (members[i].alive &&
			(members[i].assigned <= since || members[i].assigned < members[i].revoked))
			return false;
	return true;
}

/*
 * Wait until every live member holds an assignment newer than `since`
 * (0: any), then for no event in quiet_ms.  Returns the time of the last
 * member's assignment, or -1 on timeout.
 */
static int64_t
wait_assigned(int64_t since, int quiet_ms)
{
	int64_t		deadline = now_ns() + (int64_t) (opt.timeout * 1e9);
	int64_t		last = -1;
	Event		ev;

	for (;;)
	{
		bool		got;

		if (all_assigned_since(since))
		{
			last = 0;
			for (int i = 0; i < MEMBERS; i++)
				if (members[i].alive && members[i].assigned > last)
					last = members[i].assigned;
			if (quiet_ms == 0)
				return last;
			got = next_event(&ev, quiet_ms);
			if (!got)
				return last;
			apply(&ev);
			continue;
		}
		if (now_ns() > deadline || interrupted)
			return -1;
		if (next_event(&ev, 200))
			apply(&ev);
	}
}

static void
stop_member(int id, int sig)
{
	int64_t		deadline = now_ns() + 15 * (int64_t) 1000000000;

	if (!members[id].alive)
		return;
	kill(members[id].pid, sig);
	while (waitpid(members[id].pid, NULL, WNOHANG) == 0)
	{
		if (now_ns() > deadline)
		{
			kill(members[id].pid, SIGKILL);
			waitpid(members[id].pid, NULL, 0);
			break;
		}
		usleep(20 * 1000);
	}
	members[id].alive = false;
}

static void
stop_all(void)
{
	for (int i = 0; i < MEMBERS; i++)
		if (members[i].alive)
			kill(members[i].pid, SIGTERM);
	for (int i = 0; i < MEMBERS; i++)
		stop_member(i, SIGTERM);
}

static int
run_rebalance(void)
{
	int			pipefd[2];
	const char *base = opt.group;
	char		group[256];
	int			failures = 0;
	double		join_sum = 0,
				kill_sum = 0;
	int			joins = 0,
				kills = 0;

	signal(SIGPIPE, SIG_IGN);
	for (int rep = 0; rep < opt.reps && !interrupted; rep++)
	{
		int64_t		t_sub,
					t_kill,
					done;
		double		join_ms = -1,
					kill_ms = -1,
					rtt_ms;
		long		after_join[MEMBERS] = {0},
					after_kill[MEMBERS] = {0};

		if (pipe(pipefd) != 0)
			die("pipe: %s", strerror(errno));
		event_rd = pipefd[0];
		event_fd = pipefd[1];
		evlen = 0;
		snprintf(group, sizeof(group), "%s-%d", base, rep);
		opt.group = group;

		/* A stable group of two */
		spawn(0);
		spawn(1);
		if (wait_assigned(0, 1500) < 0)
		{
			fprintf(stderr, "slgroup: rep %d: the first two members got no assignment\n", rep);
			failures++;
			stop_all();
			goto next;
		}

		/* join: a third member subscribes */
		spawn(2);
		{
			Event		ev;
			int64_t		deadline = now_ns() + (int64_t) (opt.timeout * 1e9);

			while (members[2].subscribed == 0 && now_ns() < deadline && !interrupted)
				if (next_event(&ev, 200))
					apply(&ev);
		}
		t_sub = members[2].subscribed;
		done = t_sub ? wait_assigned(t_sub, 0) : -1;
		if (done < 0)
		{
			fprintf(stderr, "slgroup: rep %d: no new assignment after the join\n", rep);
			failures++;
			stop_all();
			goto next;
		}
		join_ms = (done - t_sub) / 1e6;
		for (int i = 0; i < MEMBERS; i++)
			after_join[i] = members[i].partitions;
		/* let the group settle (no further rebalance) */
		if (wait_assigned(0, 1500) < 0)
		{
			failures++;
			stop_all();
			goto next;
		}

		/* kill: the third member dies without leaving the group */
		t_kill = now_ns();
		kill(members[2].pid, SIGKILL);
		waitpid(members[2].pid, NULL, 0);
		members[2].alive = false;
		done = wait_assigned(t_kill, 0);
		if (done < 0)
		{
			fprintf(stderr, "slgroup: rep %d: no new assignment after the kill\n", rep);
			failures++;
			stop_all();
			goto next;
		}
		kill_ms = (done - t_kill) / 1e6;
		for (int i = 0; i < MEMBERS; i++)
			after_kill[i] = members[i].alive ? members[i].partitions : 0;
		stop_all();

		rtt_ms = 0;
		for (int i = 0; i < MEMBERS; i++)
			if (members[i].rtt_ns > rtt_ms * 1e6)
				rtt_ms = members[i].rtt_ns / 1e6;
		printf("rep rep=%d group=%s join_ms=%.1f kill_ms=%.1f kill_minus_session_ms=%.1f "
			   "rtt_ms=%.3f partitions_after_join=%ld+%ld+%ld partitions_after_kill=%ld+%ld\n",
			   rep, group, join_ms, kill_ms, kill_ms - opt.session_ms, rtt_ms,
			   after_join[0], after_join[1], after_join[2], after_kill[0], after_kill[1]);
		fflush(stdout);
		join_sum += join_ms;
		kill_sum += kill_ms;
		joins++;
		kills++;
next:
		close(pipefd[0]);
		close(pipefd[1]);
	}
	printf("result mode=rebalance reps=%d failures=%d heartbeat_ms=%d session_ms=%d "
		   "join_mean_ms=%.1f kill_mean_ms=%.1f\n",
		   opt.reps, failures, opt.heartbeat_ms, opt.session_ms,
		   joins ? join_sum / joins : -1.0, kills ? kill_sum / kills : -1.0);
	fflush(stdout);
	return failures == 0 && !interrupted ? 0 : 1;
}

int
main(int argc, char **argv)
{
	parse_args(argc, argv);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (strcmp(opt.mode, "drain") == 0)
		return run_drain();
	if (strcmp(opt.mode, "rebalance") == 0)
		return run_rebalance();
	usage();
	return 2;
}
