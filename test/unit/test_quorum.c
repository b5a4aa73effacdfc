/*
 * The quorum over libraft with its real libuv disk and TCP I/O, three
 * members in this one process on loopback: a leader is elected, proposals
 * of every length are applied alike everywhere, and a member that was away
 * catches up (several entries in one AppendEntries message: libraft 0.15
 * pads them on one side only, which the entry envelope of quorum.c must
 * survive) and holds the same image as the others, also after a restart
 * that replays its log from disk.  Waits are for conditions, with a
 * generous deadline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "streamlog/cluster/metadata_records.h"
#include "streamlog/cluster/quorum.h"
#include "meta_testlib.h"
#include "unit.h"

#define N 3
#define DEADLINE_MS 60000

static SlQuorum *q[N];
static SlQuorumMember voters[N];
static char dirs[N][256];

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A loopback TCP port nothing listens on now */
static int
free_port(void)
{
	struct sockaddr_in a;
	socklen_t	len = sizeof(a);
	int			fd = socket(AF_INET, SOCK_STREAM, 0);
	int			port;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *) &a, sizeof(a));
	getsockname(fd, (struct sockaddr *) &a, &len);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static SlQuorum *
open_member(int i)
{
	SlQuorumOptions o;
	char		err[256];
	SlQuorum   *m;

	memset(&o, 0, sizeof(o));
	o.node_id = voters[i].node_id;
	o.address = voters[i].address;
	o.dir = dirs[i];
	o.nvoters = N;
	o.voters = voters;
	o.election_timeout_ms = 300;
	o.heartbeat_timeout_ms = 50;
	o.snapshot_threshold = 1024;
	m = SlQuorumOpen(&o, err, sizeof(err));
	CHECK_MSG(m != NULL, "member %d: %s", i, err);
	return m;
}

/* Run every open member until cond holds or the deadline passes */
typedef bool (*Cond) (void *arg);

static bool
run_until(Cond cond, void *arg)
{
	int64_t		deadline = now_ms() + DEADLINE_MS;

	while (now_ms() < deadline)
	{
		for (int i = 0; i < N; i++)
			if (q[i])
				SlQuorumRun(q[i]);
		if (cond(arg))
			return true;
		usleep(1000);
	}
	return false;
}

static int
leader(void)
{
	for (int i = 0; i < N; i++)
	{
		SlQuorumStatus st;

		if (q[i] == NULL)
			continue;
		SlQuorumGetStatus(q[i], &st);
		if (st.is_leader)
			return i;
	}
	return -1;
}

static bool
has_leader(void *arg)
{
	(void) arg;
	return leader() >= 0;
}

/* Every open member applied at least *(uint64_t *) arg */
static bool
all_applied(void *arg)
{
	uint64_t	want = *(uint64_t *) arg;

	for (int i = 0; i < N; i++)
		if (q[i] && SlQuorumImage(q[i])->applied_index < want)
			return false;
	return true;
}

/* Propose a batch registering node_id with a rack of rack_len bytes */
static uint64_t
propose(int at, int32_t node_id, int rack_len)
{
	SlMetaBatch batch;
	SlMetaRecord rec;
	char		rack[64];
	void	   *data;
	size_t		len;
	uint64_t	token = 0;

	memset(rack, 'r', sizeof(rack));
	rack[rack_len] = '\0';
	SlMetaBatchInit(&batch);
	rec = meta_register(node_id, 1000 + node_id, rack_len ? rack : NULL);
	SlMetaBatchAdd(&batch, &rec);
	SlMetaBatchEncode(&batch, &data, &len);
	CHECK(SlQuorumPropose(q[at], data, len, &token));
	free(data);
	SlMetaBatchFree(&batch);
	return token;
}

static bool
same_images(void)
{
	void	   *ref = NULL;
	size_t		ref_len = 0;
	bool		same = true;

	for (int i = 0; i < N; i++)
	{
		void	   *data;
		size_t		len;

		if (q[i] == NULL || !SlMetaImageEncode(SlQuorumImage(q[i]), &data, &len))
			return false;
		if (ref == NULL)
		{
			ref = data;
			ref_len = len;
			continue;
		}
		same &= len == ref_len && memcmp(data, ref, len) == 0;
		free(data);
	}
	free(ref);
	return same;
}

int
main(void)
{
	char		base[] = "/tmp/sl_quorum_XXXXXX";
	int			away;
	int			l;
	uint64_t	target;
	char		cmd[300];

	/* as in the server, a peer gone mid-send is an error, not a signal */
	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(base) == NULL)
		return 2;
	for (int i = 0; i < N; i++)
	{
		voters[i].node_id = i;	/* node 0 too: libraft's ids are shifted */
		snprintf(voters[i].address, sizeof(voters[i].address), "127.0.0.1:%d", free_port());
		voters[i].role = SL_QUORUM_VOTER;
		snprintf(dirs[i], sizeof(dirs[i]), "%s/n%d", base, i);
		mkdir(dirs[i], 0700);
	}
	for (int i = 0; i < N; i++)
		q[i] = open_member(i);
	CHECK(run_until(has_leader, NULL));
	l = leader();
	CHECK(l >= 0);
	if (l < 0)
		return UNIT_DONE();

	/* Proposals of lengths around every multiple of 8, applied everywhere */
	for (int k = 0; k < 9; k++)
		propose(l, 10 + k, k);
	target = SlQuorumImage(q[l])->applied_index + 9;
	CHECK(run_until(all_applied, &target));
	CHECK(same_images());
	CHECK_EQ_INT(SlQuorumImage(q[l])->invalid_batches, 0);

	/* One follower away while entries of odd lengths are committed */
	away = (l + 1) % N;
	SlQuorumClose(q[away], false);
	q[away] = NULL;
	for (int k = 0; k < 9; k++)
		propose(l, 20 + k, 9 - k);
	target = SlQuorumImage(q[l])->applied_index + 9;
	CHECK(run_until(all_applied, &target));

	/* Back, it catches up with several entries per message */
	q[away] = open_member(away);
	CHECK(run_until(all_applied, &target));
	CHECK(same_images());
	CHECK_EQ_INT(SlQuorumImage(q[away])->invalid_batches, 0);
	CHECK_EQ_INT(SlQuorumImage(q[away])->nnodes, 18);

	/* And after a restart that replays every entry from its disk */
	SlQuorumClose(q[away], false);
	q[away] = open_member(away);
	CHECK(run_until(all_applied, &target));
	CHECK(same_images());
	CHECK_EQ_INT(SlQuorumImage(q[away])->invalid_batches, 0);

	for (int i = 0; i < N; i++)
		SlQuorumClose(q[i], false);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", base);
	return UNIT_DONE();
}
