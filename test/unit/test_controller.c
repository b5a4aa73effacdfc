/*
 * The controller's decisions: requests (topic DDL, elections, producer
 * ids, unregistering), liveness ticks (registration, fencing, leaderships
 * moved and given back, controlled shutdown), Kafka's replica placement,
 * and the request codec against hostile bytes.  Every batch the
 * controller builds is applied to the image and must be valid.
 */
#include "streamlog/cluster/controller.h"
#include "meta_testlib.h"
#include "unit.h"

#define SESSION 6000

static bool
ints_contain(const int32_t *ids, int32_t n, int32_t id)
{
	for (int32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* Apply what the controller decided; true if the image took it */
static bool
commit(SlMetaImage *img, SlMetaBatch *out)
{
	bool		ok = true;

	if (out->nrecords > 0)
		ok = meta_apply_batch(img, img->applied_index + 1, out);
	SlMetaBatchFree(out);
	return ok;
}

static SlHeartbeat
hb(int32_t node_id, uint64_t incarnation, int64_t at, const char *rack)
{
	SlHeartbeat h;

	memset(&h, 0, sizeof(h));
	h.node = meta_register(node_id, incarnation, rack).node;
	h.received_ms = at;
	return h;
}

/* nodes 1..n registered and unfenced through ticks; racks if given */
static void
cluster_of(SlMetaImage *img, int n, const char *const *racks)
{
	SlHeartbeat hbs[16];
	SlMetaBatch out;

	SlMetaImageInit(img);
	for (int i = 0; i < n; i++)
		hbs[i] = hb(i + 1, 100 + i, 0, racks ? racks[i] : NULL);
	SlMetaBatchInit(&out);
	SlControllerTick(img, hbs, n, 0, SESSION, &out);
	CHECK_EQ_INT(out.nrecords, 2 * n);	/* register + unfence each */
	CHECK(commit(img, &out));
	for (int i = 0; i < n; i++)
		CHECK(!SlMetaImageNode(img, i + 1)->fenced);
}

static SlControllerRequest
create_req(const char *name, int32_t partitions, int32_t rf)
{
	SlControllerRequest req;

	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_CREATE_TOPIC;
	req.topic_name = (char *) name;
	req.partition_count = partitions;
	req.replication_factor = rf;
	req.config_json = (char *) "{}";
	req.owner = (char *) "alice";
	for (int i = 0; i < 16; i++)
		req.topic_uuid[i] = (uint8_t) (name[0] + i);
	return req;
}

static int16_t
handle(SlMetaImage *img, const SlControllerRequest *req, char *err)
{
	SlMetaBatch out;
	int16_t		code;

	SlMetaBatchInit(&out);
	code = SlControllerHandleRequest(img, req, &out, err, 256);
	if (code != 0)
		CHECK_EQ_INT(out.nrecords, 0);
	CHECK(commit(img, &out));
	return code;
}

static void
test_create_topic(void)
{
	SlMetaImage img;
	SlControllerRequest req;
	char		err[256];
	const SlMetaTopic *t;
	int			leaders[4] = {0};

	cluster_of(&img, 3, NULL);
	req = create_req("orders", 6, 1);
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	t = SlMetaImageTopicByName(&img, "orders");
	CHECK(t != NULL);
	CHECK_EQ_INT(t->topic_id, 1);
	CHECK_EQ_INT(img.next_topic_id, 2);
	CHECK_EQ_INT(t->partition_count, 6);
	CHECK(strcmp(t->owner, "alice") == 0);
	CHECK_EQ_INT(t->uuid[3], 'o' + 3);
	for (int32_t p = 0; p < 6; p++)
	{
		const SlMetaPartition *part = &t->partitions[p];

		CHECK_EQ_INT(part->nreplicas, 1);
		CHECK_EQ_INT(part->nisr, 1);
		CHECK_EQ_INT(part->leader, part->replicas[0]);
		CHECK_EQ_INT(part->leader_epoch, 0);
		leaders[part->leader]++;
	}
	/* spread evenly over the three nodes */
	CHECK(leaders[1] == 2 && leaders[2] == 2 && leaders[3] == 2);

	CHECK_EQ_INT(handle(&img, &req, err), 36);	/* TOPIC_ALREADY_EXISTS */
	CHECK(strstr(err, "orders") != NULL);
	req = create_req("x", 0, 1);
	CHECK_EQ_INT(handle(&img, &req, err), 37);	/* INVALID_PARTITIONS */
	req = create_req("x", 3, 4);
	CHECK_EQ_INT(handle(&img, &req, err), 38);	/* INVALID_REPLICATION_FACTOR */
	CHECK(strstr(err, "3 available") != NULL);
	req = create_req("x", 3, 0);
	CHECK_EQ_INT(handle(&img, &req, err), 38);
	req = create_req("", 3, 1);
	CHECK_EQ_INT(handle(&img, &req, err), 17);

	/* replication factor 3: every node once per partition, all in the ISR */
	req = create_req("triple", 4, 3);
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	t = SlMetaImageTopicByName(&img, "triple");
	CHECK_EQ_INT(t->topic_id, 2);
	for (int32_t p = 0; p < 4; p++)
	{
		CHECK_EQ_INT(t->partitions[p].nreplicas, 3);
		CHECK_EQ_INT(t->partitions[p].nisr, 3);
		CHECK_EQ_INT(t->partitions[p].leader, t->partitions[p].replicas[0]);
	}

	/* a fenced node gets nothing and does not count */
	{
		SlMetaRecord fence = meta_node_state(SL_META_FENCE_NODE, 2, 101);

		CHECK(meta_apply1(&img, img.applied_index + 1, fence));
	}
	req = create_req("y", 3, 3);
	CHECK_EQ_INT(handle(&img, &req, err), 38);
	req = create_req("y", 10, 1);
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	t = SlMetaImageTopicByName(&img, "y");
	for (int32_t p = 0; p < 10; p++)
		CHECK(t->partitions[p].replicas[0] != 2);
	SlMetaImageFree(&img);
}

/* A topic of many partitions: created, grown, copied, snapshotted */
static void
test_many_partitions(void)
{
	SlMetaImage img,
				copy,
				back;
	SlControllerRequest req;
	char		err[256];
	void	   *data;
	size_t		len;
	const SlMetaTopic *t;

	cluster_of(&img, 3, NULL);
	req = create_req("wide", 20000, 2);
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_CREATE_PARTITIONS;
	req.topic_name = (char *) "wide";
	req.partition_count = 30001;
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	t = SlMetaImageTopicByName(&img, "wide");
	CHECK_EQ_INT(t->partition_count, 30001);
	CHECK_EQ_INT(t->partitions[30000].partition, 30000);
	CHECK_EQ_INT(t->partitions[30000].nreplicas, 2);
	/* a copy and a decoded snapshot grow like the original */
	CHECK(SlMetaImageCopy(&copy, &img));
	CHECK(SlMetaImageEncode(&img, &data, &len));
	CHECK(SlMetaImageDecode(&back, data, len));
	free(data);
	req.partition_count = 30007;
	CHECK_EQ_INT(handle(&copy, &req, err), 0);
	CHECK_EQ_INT(handle(&back, &req, err), 0);
	CHECK(meta_images_equal(&copy, &back));
	CHECK_EQ_INT(SlMetaImageTopicByName(&back, "wide")->partitions[30006].partition, 30006);
	SlMetaImageFree(&back);
	SlMetaImageFree(&copy);
	SlMetaImageFree(&img);
}

static void
test_manual_assignment(void)
{
	SlMetaImage img;
	SlControllerRequest req;
	char		err[256];
	int32_t		a0[] = {2, 1};
	int32_t		a1[] = {3, 2};
	int32_t		bad_dup[] = {1, 1};
	int32_t		bad_node[] = {1, 9};
	int32_t		one[] = {3};
	int32_t    *as[2];
	int32_t		sizes[2];
	const SlMetaTopic *t;

	cluster_of(&img, 3, NULL);
	req = create_req("m", 2, -1);
	req.nassignments = 2;
	req.assignments = as;
	req.assignment_sizes = sizes;
	as[0] = a0;
	as[1] = a1;
	sizes[0] = sizes[1] = 2;
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	t = SlMetaImageTopicByName(&img, "m");
	CHECK_EQ_INT(t->partitions[0].replicas[0], 2);
	CHECK_EQ_INT(t->partitions[0].leader, 2);
	CHECK_EQ_INT(t->partitions[1].replicas[1], 2);
	CHECK_EQ_INT(t->partitions[1].leader, 3);

	req.topic_name = (char *) "m2";
	as[1] = bad_dup;
	CHECK_EQ_INT(handle(&img, &req, err), 39);
	CHECK(strstr(err, "twice") != NULL);
	as[1] = bad_node;
	CHECK_EQ_INT(handle(&img, &req, err), 39);
	CHECK(strstr(err, "not registered") != NULL);
	as[1] = one;
	sizes[1] = 1;
	CHECK_EQ_INT(handle(&img, &req, err), 39);	/* sizes differ */
	req.nassignments = 1;
	CHECK_EQ_INT(handle(&img, &req, err), 39);	/* 1 assignment, 2 partitions */
	CHECK(SlMetaImageTopicByName(&img, "m2") == NULL);

	/* a fenced replica is not in the ISR and does not lead */
	CHECK(meta_apply1(&img, img.applied_index + 1, meta_node_state(SL_META_FENCE_NODE, 2, 101)));
	req.nassignments = 2;
	as[1] = a1;
	sizes[1] = 2;
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	t = SlMetaImageTopicByName(&img, "m2");
	CHECK_EQ_INT(t->partitions[0].leader, 1);
	CHECK_EQ_INT(t->partitions[0].nisr, 1);
	CHECK_EQ_INT(t->partitions[1].leader, 3);
	CHECK(meta_apply1(&img, img.applied_index + 1, meta_node_state(SL_META_FENCE_NODE, 3, 102)));
	req.topic_name = (char *) "m3";
	as[0] = one;
	as[1] = one;
	sizes[0] = sizes[1] = 1;
	CHECK_EQ_INT(handle(&img, &req, err), 39);
	CHECK(strstr(err, "fenced") != NULL);
	SlMetaImageFree(&img);
}

static void
test_other_requests(void)
{
	SlMetaImage img;
	SlControllerRequest req;
	char		err[256];
	const SlMetaTopic *t;

	cluster_of(&img, 2, NULL);
	req = create_req("t", 2, 2);
	CHECK_EQ_INT(handle(&img, &req, err), 0);

	/* create partitions: more than today, at the topic's replication factor */
	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_CREATE_PARTITIONS;
	req.topic_name = (char *) "t";
	req.partition_count = 2;
	CHECK_EQ_INT(handle(&img, &req, err), 37);
	CHECK(strstr(err, "has 2 partitions") != NULL);
	req.partition_count = 5;
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	t = SlMetaImageTopicByName(&img, "t");
	CHECK_EQ_INT(t->partition_count, 5);
	CHECK_EQ_INT(t->partitions[4].nreplicas, 2);
	req.topic_name = (char *) "nope";
	CHECK_EQ_INT(handle(&img, &req, err), 3);

	/* configs */
	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_ALTER_TOPIC_CONFIG;
	req.topic_name = (char *) "t";
	req.config_json = (char *) "{\"retention.ms\": \"5\"}";
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	CHECK(strcmp(SlMetaImageTopicByName(&img, "t")->config_json, req.config_json) == 0);
	req.topic_name = (char *) "nope";
	CHECK_EQ_INT(handle(&img, &req, err), 3);

	/* producer ids: consecutive blocks of 1000 */
	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_ALLOCATE_PRODUCER_IDS;
	req.node_id = 2;
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	CHECK_EQ_INT(img.next_producer_id, 1000);
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	CHECK_EQ_INT(img.next_producer_id, 2000);
	req.node_id = 7;
	CHECK_EQ_INT(handle(&img, &req, err), 102);

	/* delete */
	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_DELETE_TOPIC;
	req.topic_name = (char *) "t";
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	CHECK(SlMetaImageTopicByName(&img, "t") == NULL);
	CHECK_EQ_INT(handle(&img, &req, err), 3);

	/* an unknown request type */
	req.type = (SlControllerRequestType) 42;
	CHECK_EQ_INT(handle(&img, &req, err), 42);
	SlMetaImageFree(&img);
}

static void
test_elect_leaders(void)
{
	SlMetaImage img;
	SlControllerRequest req;
	SlMetaBatch out;
	char		err[256];
	int32_t		reps[] = {1, 2};
	int32_t		tids[] = {1, 1, 1, 9};
	int32_t		parts[] = {0, 0, 1, 0};

	cluster_of(&img, 2, NULL);
	CHECK(meta_apply1(&img, img.applied_index + 1, meta_topic(1, "e")));
	CHECK(meta_apply1(&img, img.applied_index + 1, meta_partition(1, 0, reps, 2, reps, 2, 2)));
	CHECK(meta_apply1(&img, img.applied_index + 1, meta_partition(1, 1, reps, 2, reps + 1, 1, 2)));
	img.next_topic_id = 2;

	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_ELECT_LEADERS;
	req.npartitions = 4;
	req.election_topic_ids = tids;
	req.election_partitions = parts;
	SlMetaBatchInit(&out);
	CHECK_EQ_INT(SlControllerHandleRequest(&img, &req, &out, err, sizeof(err)), 0);
	/* partition 0 once (named twice); partition 1: preferred not in ISR */
	CHECK_EQ_INT(out.nrecords, 1);
	CHECK(commit(&img, &out));
	CHECK_EQ_INT(SlMetaImageTopicById(&img, 1)->partitions[0].leader, 1);
	CHECK_EQ_INT(SlMetaImageTopicById(&img, 1)->partitions[0].leader_epoch, 1);
	CHECK_EQ_INT(SlMetaImageTopicById(&img, 1)->partitions[1].leader, 2);
	/* again: nothing to do, no record */
	SlMetaBatchInit(&out);
	req.npartitions = 0;
	CHECK_EQ_INT(SlControllerHandleRequest(&img, &req, &out, err, sizeof(err)), 0);
	CHECK_EQ_INT(out.nrecords, 0);
	SlMetaBatchFree(&out);
	SlMetaImageFree(&img);
}

/* Leaders of every partition of topic 1 */
static int
count_led_by(const SlMetaImage *img, int32_t node)
{
	int			n = 0;

	for (int32_t t = 0; t < img->ntopics; t++)
		for (int32_t p = 0; p < img->topics[t].partition_count; p++)
			n += img->topics[t].partitions[p].leader == node;
	return n;
}

static void
test_fencing_and_return(void)
{
	SlMetaImage img;
	SlControllerRequest req;
	SlMetaBatch out;
	SlHeartbeat hbs[4];
	char		err[256];
	const SlMetaTopic *one,
			   *three;

	cluster_of(&img, 3, NULL);
	req = create_req("one", 6, 1);
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	req = create_req("three", 3, 3);
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	CHECK(count_led_by(&img, 2) > 0);

	/* everyone heartbeats at 1000: nothing to do */
	for (int i = 0; i < 3; i++)
		hbs[i] = hb(i + 1, 100 + i, 1000, NULL);
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 3, 1000, SESSION, &out);
	CHECK_EQ_INT(out.nrecords, 0);
	SlMetaBatchFree(&out);

	/* node 2 falls silent; at 1000 + SESSION it is still within */
	hbs[0].received_ms = hbs[2].received_ms = 7001;
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 3, 7000, SESSION, &out);
	CHECK_EQ_INT(out.nrecords, 0);
	SlMetaBatchFree(&out);
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 3, 7001, SESSION, &out);
	CHECK(out.nrecords > 1);
	CHECK_EQ_INT(out.records[0].type, SL_META_FENCE_NODE);
	CHECK(commit(&img, &out));
	CHECK(SlMetaImageNode(&img, 2)->fenced);
	CHECK_EQ_INT(count_led_by(&img, 2), 0);
	one = SlMetaImageTopicByName(&img, "one");
	three = SlMetaImageTopicByName(&img, "three");
	for (int32_t p = 0; p < one->partition_count; p++)
	{
		const SlMetaPartition *part = &one->partitions[p];

		if (part->replicas[0] == 2)
		{
			/* one replica: offline, the ISR keeps its last member */
			CHECK_EQ_INT(part->leader, -1);
			CHECK_EQ_INT(part->nisr, 1);
			CHECK_EQ_INT(part->isr[0], 2);
			CHECK_EQ_INT(part->leader_epoch, 1);
		}
		else
			CHECK_EQ_INT(part->leader_epoch, 0);
	}
	for (int32_t p = 0; p < three->partition_count; p++)
	{
		const SlMetaPartition *part = &three->partitions[p];

		/* three replicas: node 2 left the ISR, a leader from the ISR */
		CHECK_EQ_INT(part->nisr, 2);
		CHECK(!ints_contain(part->isr, part->nisr, 2));
		CHECK(part->leader != 2 && part->leader != -1);
	}
	/* a tick later, nothing more */
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 3, 7002, SESSION, &out);
	CHECK_EQ_INT(out.nrecords, 0);
	SlMetaBatchFree(&out);

	/* node 2 comes back (same incarnation): unfenced, leads its partitions again */
	hbs[1].received_ms = 8000;
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 3, 8000, SESSION, &out);
	CHECK_EQ_INT(out.records[0].type, SL_META_UNFENCE_NODE);
	CHECK(commit(&img, &out));
	one = SlMetaImageTopicByName(&img, "one");
	for (int32_t p = 0; p < one->partition_count; p++)
		if (one->partitions[p].replicas[0] == 2)
		{
			CHECK_EQ_INT(one->partitions[p].leader, 2);
			CHECK_EQ_INT(one->partitions[p].leader_epoch, 2);
		}
	/* it is not back in the ISR of "three": that is its leaders' call */
	three = SlMetaImageTopicByName(&img, "three");
	CHECK_EQ_INT(three->partitions[0].nisr, 2);
	SlMetaImageFree(&img);
}

/*
 * A node whose incarnation is known gone (its Raft port refused a
 * connection after its last heartbeat) is fenced at the next tick, well
 * within its session; a new incarnation of it registers at once.
 */
static void
test_gone_is_fenced_at_once(void)
{
	SlMetaImage img;
	SlControllerRequest req;
	SlMetaBatch out;
	SlHeartbeat hbs[4];
	char		err[256];
	const SlMetaTopic *three;

	cluster_of(&img, 3, NULL);
	req = create_req("three", 3, 3);
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	CHECK(count_led_by(&img, 2) > 0);
	for (int i = 0; i < 3; i++)
		hbs[i] = hb(i + 1, 100 + i, 1000, NULL);

	/* late by less than a session, but gone: fenced, leaderships moved */
	hbs[1].gone = true;
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 3, 1500, SESSION, &out);
	CHECK(out.nrecords > 1);
	CHECK_EQ_INT(out.records[0].type, SL_META_FENCE_NODE);
	CHECK_EQ_INT(out.records[0].node.node_id, 2);
	CHECK(commit(&img, &out));
	CHECK(SlMetaImageNode(&img, 2)->fenced);
	CHECK_EQ_INT(count_led_by(&img, 2), 0);
	three = SlMetaImageTopicByName(&img, "three");
	for (int32_t p = 0; p < three->partition_count; p++)
	{
		CHECK(!ints_contain(three->partitions[p].isr, three->partitions[p].nisr, 2));
		CHECK(three->partitions[p].leader != 2 && three->partitions[p].leader != -1);
	}

	/* a gone entry registers nothing, even as a claimant */
	hbs[3] = hb(2, 999, 1600, NULL);
	hbs[3].gone = true;
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 4, 1600, SESSION, &out);
	CHECK_EQ_INT(out.nrecords, 0);
	SlMetaBatchFree(&out);

	/* the node restarted: its new incarnation registers and is unfenced */
	hbs[3].gone = false;
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 4, 1700, SESSION, &out);
	CHECK(out.nrecords >= 2);
	CHECK_EQ_INT(out.records[0].type, SL_META_REGISTER_NODE);
	CHECK_EQ_INT(out.records[1].type, SL_META_UNFENCE_NODE);
	CHECK(commit(&img, &out));
	CHECK(!SlMetaImageNode(&img, 2)->fenced);
	CHECK(SlMetaImageNode(&img, 2)->incarnation == 999);
	SlMetaImageFree(&img);
}

static void
test_incarnations(void)
{
	SlMetaImage img;
	SlMetaBatch out;
	SlHeartbeat hbs[3];
	const SlMetaNode *n;

	cluster_of(&img, 2, NULL);
	/* a second claimant of id 2 while 100+1 heartbeats: refused */
	hbs[0] = hb(1, 100, 500, NULL);
	hbs[1] = hb(2, 101, 500, NULL);
	hbs[2] = hb(2, 999, 600, NULL);
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 3, 700, SESSION, &out);
	CHECK_EQ_INT(out.nrecords, 0);
	SlMetaBatchFree(&out);
	CHECK_EQ_UINT(SlMetaImageNode(&img, 2)->incarnation, 101);

	/* once the registered one is silent past the session: the claimant */
	hbs[0].received_ms = 7000;
	hbs[2].received_ms = 7000;
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 3, 7000, SESSION, &out);
	CHECK_EQ_INT(out.records[0].type, SL_META_REGISTER_NODE);
	CHECK_EQ_INT(out.records[1].type, SL_META_UNFENCE_NODE);
	CHECK(commit(&img, &out));
	n = SlMetaImageNode(&img, 2);
	CHECK_EQ_UINT(n->incarnation, 999);
	CHECK(!n->fenced);
	/* the old incarnation heartbeating again changes nothing */
	hbs[1].received_ms = 7100;
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 3, 7100, SESSION, &out);
	CHECK_EQ_INT(out.nrecords, 0);
	SlMetaBatchFree(&out);

	/* a node never heard of registers; a dead one never does */
	hbs[0] = hb(5, 1, 7100, "r");
	hbs[1] = hb(6, 1, 0, NULL);
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 2, 7100, SESSION, &out);
	CHECK_EQ_INT(out.nrecords, 2);
	CHECK(commit(&img, &out));
	CHECK(SlMetaImageNode(&img, 5) != NULL);
	CHECK(SlMetaImageNode(&img, 6) == NULL);
	CHECK(strcmp(SlMetaImageNode(&img, 5)->rack, "r") == 0);
	/*
	 * a claimant whose endpoints no record can carry registers nothing,
	 * and does not keep the tick from fencing the others
	 */
	hbs[0] = hb(8, 1, 7100 + SESSION + 1, NULL);
	hbs[0].node.kafka_port = 70000;
	hbs[1] = hb(5, 1, 7100, "r");
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 2, 7100 + SESSION + 1, SESSION, &out);
	CHECK(out.nrecords > 0);
	CHECK(commit(&img, &out));
	CHECK(SlMetaImageNode(&img, 8) == NULL);
	CHECK(SlMetaImageNode(&img, 5)->fenced);
	/* nodes without a heartbeat entry are left alone */
	SlMetaBatchInit(&out);
	SlControllerTick(&img, NULL, 0, 1000000, SESSION, &out);
	CHECK_EQ_INT(out.nrecords, 0);
	SlMetaBatchFree(&out);
	SlMetaImageFree(&img);
}

static void
test_controlled_shutdown(void)
{
	SlMetaImage img;
	SlControllerRequest req;
	SlMetaBatch out;
	SlHeartbeat hbs[4];
	char		err[256];

	cluster_of(&img, 3, NULL);
	req = create_req("single", 6, 1);
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	req = create_req("double", 6, 2);
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	CHECK(count_led_by(&img, 3) > 0);
	CHECK(!SlControllerShutdownDone(&img, 3));

	for (int i = 0; i < 3; i++)
		hbs[i] = hb(i + 1, 100 + i, 1000, NULL);
	hbs[2].want_shutdown = true;
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 3, 1000, SESSION, &out);
	CHECK_EQ_INT(out.records[0].type, SL_META_SHUTDOWN_NODE);
	CHECK(commit(&img, &out));
	CHECK(SlMetaImageNode(&img, 3)->shutting_down);
	CHECK_EQ_INT(count_led_by(&img, 3), 0);
	CHECK(SlControllerShutdownDone(&img, 3));
	CHECK(!SlControllerShutdownDone(&img, 1));
	/* "single" partitions of node 3 are offline: nothing else holds them */
	{
		const SlMetaTopic *t = SlMetaImageTopicByName(&img, "single");
		const SlMetaTopic *d = SlMetaImageTopicByName(&img, "double");
		int			offline = 0;

		for (int32_t p = 0; p < 6; p++)
		{
			if (t->partitions[p].replicas[0] == 3)
			{
				CHECK_EQ_INT(t->partitions[p].leader, -1);
				offline++;
			}
			/* two replicas: the other one leads */
			CHECK(d->partitions[p].leader != -1 && d->partitions[p].leader != 3);
		}
		CHECK_EQ_INT(offline, 2);
	}
	/* new partitions avoid the node shutting down */
	req = create_req("later", 4, 1);
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	CHECK_EQ_INT(count_led_by(&img, 3), 0);
	/* the next tick repeats nothing */
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 3, 1500, SESSION, &out);
	CHECK_EQ_INT(out.nrecords, 0);
	SlMetaBatchFree(&out);
	/*
	 * it restarts at once: a new incarnation while the old one's last
	 * heartbeat (asking to stop) is still within the session; its
	 * shutdown was done, so the new one registers without waiting, and
	 * its single partitions come back
	 */
	hbs[3] = hb(3, 555, 1600, NULL);
	hbs[0].received_ms = hbs[1].received_ms = 1600;
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 4, 1600, SESSION, &out);
	CHECK(commit(&img, &out));
	CHECK(!SlMetaImageNode(&img, 3)->shutting_down);
	CHECK_EQ_UINT(SlMetaImageNode(&img, 3)->incarnation, 555);
	CHECK_EQ_INT(count_led_by(&img, 3), 2);
	SlMetaImageFree(&img);
}

static void
test_unregister(void)
{
	SlMetaImage img;
	SlControllerRequest req;
	char		err[256];

	cluster_of(&img, 2, NULL);
	req = create_req("u", 4, 2);
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_UNREGISTER_NODE;
	req.node_id = 2;
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	CHECK(SlMetaImageNode(&img, 2) == NULL);
	CHECK_EQ_INT(count_led_by(&img, 2), 0);
	CHECK_EQ_INT(count_led_by(&img, 1), 4);
	CHECK_EQ_INT(handle(&img, &req, err), 102);
	SlMetaImageFree(&img);
}

static SlControllerRequest
alter_req(int32_t asker, int32_t topic_id, int32_t partition, int32_t leader_epoch,
		  int32_t partition_epoch, int32_t *isr, int32_t nisr)
{
	SlControllerRequest req;

	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_ALTER_PARTITION;
	req.node_id = asker;
	req.topic_id = topic_id;
	req.partition = partition;
	req.leader_epoch = leader_epoch;
	req.partition_epoch = partition_epoch;
	req.isr = isr;
	req.nisr = nisr;
	return req;
}

/* AlterPartition (KIP-497): each of Kafka's refusals, then the changes */
static void
test_alter_partition(void)
{
	SlMetaImage img;
	SlControllerRequest req;
	SlMetaBatch out;
	char		err[256];
	int32_t		reps[] = {1, 2, 3};
	int32_t		shrunk[] = {1, 3};
	int32_t		no_leader[] = {2, 3};
	int32_t		dup[] = {1, 1};
	int32_t		stranger[] = {1, 4};
	int32_t		all[] = {3, 1, 2};
	const SlMetaPartition *part;

	cluster_of(&img, 4, NULL);
	CHECK(meta_apply1(&img, img.applied_index + 1, meta_topic(1, "isr")));
	CHECK(meta_apply1(&img, img.applied_index + 1, meta_partition(1, 0, reps, 3, reps, 3, 1)));
	img.next_topic_id = 2;
	part = &SlMetaImageTopicById(&img, 1)->partitions[0];
	CHECK_EQ_INT(part->leader_epoch, 0);
	CHECK_EQ_INT(part->partition_epoch, 0);

	req = alter_req(1, 1, 1, 0, 0, shrunk, 2);
	CHECK_EQ_INT(handle(&img, &req, err), 3);	/* no such partition */
	req = alter_req(1, 9, 0, 0, 0, shrunk, 2);
	CHECK_EQ_INT(handle(&img, &req, err), 3);
	req = alter_req(1, 1, 0, 1, 0, shrunk, 2);
	CHECK_EQ_INT(handle(&img, &req, err), 41);	/* epochs the controller lacks */
	req = alter_req(1, 1, 0, 0, 1, shrunk, 2);
	CHECK_EQ_INT(handle(&img, &req, err), 41);
	req = alter_req(2, 1, 0, 0, 0, shrunk, 2);
	CHECK_EQ_INT(handle(&img, &req, err), 42);	/* not the leader */
	CHECK(strstr(err, "does not lead") != NULL);
	req = alter_req(1, 1, 0, 0, 0, no_leader, 2);
	CHECK_EQ_INT(handle(&img, &req, err), 42);	/* the leader left out */
	req = alter_req(1, 1, 0, 0, 0, dup, 2);
	CHECK_EQ_INT(handle(&img, &req, err), 42);
	req = alter_req(1, 1, 0, 0, 0, stranger, 2);
	CHECK_EQ_INT(handle(&img, &req, err), 42);	/* not a replica */
	req = alter_req(1, 1, 0, 0, 0, NULL, 0);
	CHECK_EQ_INT(handle(&img, &req, err), 42);

	/* the same ISR in another order: accepted, nothing to write */
	req = alter_req(1, 1, 0, 0, 0, all, 3);
	SlMetaBatchInit(&out);
	CHECK_EQ_INT(SlControllerHandleRequest(&img, &req, &out, err, sizeof(err)), 0);
	CHECK_EQ_INT(out.nrecords, 0);
	SlMetaBatchFree(&out);

	/* shrink: partition epoch +1, leader epoch kept */
	req = alter_req(1, 1, 0, 0, 0, shrunk, 2);
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	part = &SlMetaImageTopicById(&img, 1)->partitions[0];
	CHECK_EQ_INT(part->nisr, 2);
	CHECK_EQ_INT(part->leader, 1);
	CHECK_EQ_INT(part->leader_epoch, 0);
	CHECK_EQ_INT(part->partition_epoch, 1);

	/* the same request again names a stale partition epoch */
	CHECK_EQ_INT(handle(&img, &req, err), 95);	/* INVALID_UPDATE_VERSION */
	CHECK(strstr(err, "stale") != NULL);

	/* expand with a fenced member: INELIGIBLE_REPLICA */
	CHECK(meta_apply1(&img, img.applied_index + 1, meta_node_state(SL_META_FENCE_NODE, 2, 101)));
	req = alter_req(1, 1, 0, 0, 1, all, 3);
	CHECK_EQ_INT(handle(&img, &req, err), 107);
	CHECK(strstr(err, "node 2") != NULL);
	CHECK(meta_apply1(&img, img.applied_index + 1, meta_node_state(SL_META_UNFENCE_NODE, 2, 101)));
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	part = &SlMetaImageTopicById(&img, 1)->partitions[0];
	CHECK_EQ_INT(part->nisr, 3);
	CHECK_EQ_INT(part->partition_epoch, 2);

	/* a new leader (node 1 fenced): the old one's request is fenced */
	{
		SlHeartbeat hbs[4];

		for (int i = 0; i < 4; i++)
			hbs[i] = hb(i + 1, 100 + i, 10000, NULL);
		hbs[0].received_ms = 0;
		SlMetaBatchInit(&out);
		SlControllerTick(&img, hbs, 4, 10000, SESSION, &out);
		CHECK(commit(&img, &out));
	}
	part = &SlMetaImageTopicById(&img, 1)->partitions[0];
	CHECK(part->leader != 1 && part->leader != -1);
	CHECK_EQ_INT(part->leader_epoch, 1);
	req = alter_req(1, 1, 0, 0, 2, shrunk, 2);
	CHECK_EQ_INT(handle(&img, &req, err), 42);	/* it leads no more */
	{
		int32_t		leader = part->leader;
		int32_t		only[1];
		int32_t		pe = part->partition_epoch;

		only[0] = leader;
		req = alter_req(leader, 1, 0, 0, pe, only, 1);
		CHECK_EQ_INT(handle(&img, &req, err), 74);	/* FENCED_LEADER_EPOCH */
		req = alter_req(leader, 1, 0, 1, pe, only, 1);
		CHECK_EQ_INT(handle(&img, &req, err), 0);
		part = &SlMetaImageTopicById(&img, 1)->partitions[0];
		CHECK_EQ_INT(part->nisr, 1);
		CHECK_EQ_INT(part->isr[0], leader);
		CHECK_EQ_INT(part->partition_epoch, pe + 1);
	}
	SlMetaImageFree(&img);
}

/*
 * Seeded: leaders and strangers ask for random ISRs with epochs near the
 * current ones while nodes are fenced and return.  An accepted change
 * always named the current epochs and came from the leader, the leader
 * stays in the ISR, every member is usable at the time, and the image
 * takes every batch the controller builds.
 */
static void
test_alter_partition_seeded(uint64_t *rng)
{
	for (int round = 0; round < 200; round++)
	{
		SlMetaImage img;
		SlControllerRequest req;
		char		err[256];
		int32_t		reps[] = {1, 2, 3, 4};
		int32_t		isr[5];

		cluster_of(&img, 4, NULL);
		CHECK(meta_apply1(&img, img.applied_index + 1, meta_topic(1, "s")));
		CHECK(meta_apply1(&img, img.applied_index + 1, meta_partition(1, 0, reps, 4, reps, 4, 1)));
		img.next_topic_id = 2;
		for (int step = 0; step < 60; step++)
		{
			const SlMetaPartition *part = &SlMetaImageTopicById(&img, 1)->partitions[0];
			int32_t		le = part->leader_epoch,
						pe = part->partition_epoch,
						leader = part->leader;
			int32_t		nisr = 0;
			int32_t		asker;
			int16_t		code;
			uint64_t	r = unit_rand(rng);

			if (r % 7 == 0)
			{
				/* a node is fenced or comes back, through a tick */
				SlHeartbeat hbs[4];
				SlMetaBatch out;
				int32_t		silent = 1 + (int32_t) (unit_rand(rng) % 4);
				int64_t		now = (int64_t) (step + 2) * (SESSION + 1);

				for (int i = 0; i < 4; i++)
					hbs[i] = hb(i + 1, 100 + i, now, NULL);
				if (r % 2 == 0)
					hbs[silent - 1].received_ms = 0;
				SlMetaBatchInit(&out);
				SlControllerTick(&img, hbs, 4, now, SESSION, &out);
				CHECK(commit(&img, &out));
				continue;
			}
			for (int32_t n = 1; n <= 4; n++)
				if (unit_rand(rng) % 2 == 0)
					isr[nisr++] = n;
			if (unit_rand(rng) % 3 != 0 && leader >= 0 && !ints_contain(isr, nisr, leader))
				isr[nisr++] = leader;
			asker = unit_rand(rng) % 4 == 0 ? 1 + (int32_t) (unit_rand(rng) % 4) : leader;
			req = alter_req(asker, 1, 0, le + (int32_t) (unit_rand(rng) % 3) - 1,
							pe + (int32_t) (unit_rand(rng) % 3) - 1, isr, nisr);
			code = handle(&img, &req, err);
			part = &SlMetaImageTopicById(&img, 1)->partitions[0];
			if (code == 0)
			{
				CHECK_EQ_INT(req.leader_epoch, le);
				CHECK_EQ_INT(req.partition_epoch, pe);
				CHECK_EQ_INT(asker, leader);
				CHECK_EQ_INT(part->nisr, nisr);
				CHECK_EQ_INT(part->leader, leader);
				CHECK_EQ_INT(part->leader_epoch, le);
				for (int32_t i = 0; i < nisr; i++)
					CHECK(!SlMetaImageNode(&img, isr[i])->fenced);
			}
			else
			{
				CHECK_EQ_INT(part->partition_epoch, pe);
				CHECK(code == 3 || code == 41 || code == 42 || code == 74 ||
					  code == 95 || code == 107);
			}
			CHECK(part->leader == -1 || ints_contain(part->isr, part->nisr, part->leader));
		}
		SlMetaImageFree(&img);
	}
}

/*
 * Unclean election: a partition whose ISR members are all gone stays
 * offline, unless its topic sets unclean.leader.election.enable; then the
 * first usable replica leads, alone in the ISR, with the next epoch
 */
static void
test_unclean_election(void)
{
	SlMetaImage img;
	SlControllerRequest req;
	SlMetaBatch out;
	SlHeartbeat hbs[3];
	char		err[256];
	int32_t		reps[] = {1, 2, 3};
	int32_t		only1[] = {1};
	SlMetaRecord topic;
	const SlMetaPartition *clean,
			   *unclean;

	cluster_of(&img, 3, NULL);
	CHECK(meta_apply1(&img, img.applied_index + 1, meta_topic(1, "clean")));
	CHECK(meta_apply1(&img, img.applied_index + 1, meta_partition(1, 0, reps, 3, only1, 1, 1)));
	topic = meta_topic(2, "unclean");
	topic.topic.config_json = (char *) "{\"retention.ms\": \"5\", \"unclean.leader.election.enable\": \"true\"}";
	CHECK(meta_apply1(&img, img.applied_index + 1, topic));
	CHECK(meta_apply1(&img, img.applied_index + 1, meta_partition(2, 0, reps, 3, only1, 1, 1)));
	img.next_topic_id = 3;

	/* node 1, the only ISR member, falls silent */
	for (int i = 0; i < 3; i++)
		hbs[i] = hb(i + 1, 100 + i, 10000, NULL);
	hbs[0].received_ms = 0;
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 3, 10000, SESSION, &out);
	CHECK(commit(&img, &out));
	clean = &SlMetaImageTopicById(&img, 1)->partitions[0];
	unclean = &SlMetaImageTopicById(&img, 2)->partitions[0];
	CHECK_EQ_INT(clean->leader, -1);
	CHECK_EQ_INT(clean->nisr, 1);
	CHECK_EQ_INT(clean->isr[0], 1);
	CHECK_EQ_INT(unclean->leader, 2);
	CHECK_EQ_INT(unclean->nisr, 1);
	CHECK_EQ_INT(unclean->isr[0], 2);
	CHECK_EQ_INT(unclean->leader_epoch, 1);

	/* ElectLeaders UNCLEAN on a copy: the offline partition gets node 2 */
	{
		SlMetaImage copy;
		int32_t		tids[] = {1, 2};
		int32_t		parts[] = {0, 0};
		SlMetaBatch o;

		CHECK(SlMetaImageCopy(&copy, &img));
		memset(&req, 0, sizeof(req));
		req.type = SL_CTRL_ELECT_LEADERS;
		req.election_type = SL_ELECTION_UNCLEAN;
		req.npartitions = 2;
		req.election_topic_ids = tids;
		req.election_partitions = parts;
		SlMetaBatchInit(&o);
		CHECK_EQ_INT(SlControllerHandleRequest(&copy, &req, &o, err, sizeof(err)), 0);
		CHECK_EQ_INT(o.nrecords, 1);	/* the unclean topic has a leader */
		CHECK(commit(&copy, &o));
		clean = &SlMetaImageTopicById(&copy, 1)->partitions[0];
		CHECK_EQ_INT(clean->leader, 2);
		CHECK_EQ_INT(clean->nisr, 1);
		CHECK_EQ_INT(clean->isr[0], 2);
		/* preferred election of it: node 1 is not alive, nothing */
		req.election_type = SL_ELECTION_PREFERRED;
		SlMetaBatchInit(&o);
		CHECK_EQ_INT(SlControllerHandleRequest(&copy, &req, &o, err, sizeof(err)), 0);
		CHECK_EQ_INT(o.nrecords, 0);
		SlMetaBatchFree(&o);
		SlMetaImageFree(&copy);
	}

	/* turning it on for the clean topic elects at the next tick */
	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_ALTER_TOPIC_CONFIG;
	req.topic_name = (char *) "clean";
	req.config_json = (char *) "{\"unclean.leader.election.enable\": \"true\"}";
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	hbs[1].received_ms = hbs[2].received_ms = 10100;
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, 3, 10100, SESSION, &out);
	CHECK(commit(&img, &out));
	clean = &SlMetaImageTopicById(&img, 1)->partitions[0];
	CHECK_EQ_INT(clean->leader, 2);
	CHECK_EQ_INT(clean->leader_epoch, 2);	/* offline was epoch 1 */
	SlMetaImageFree(&img);
}

/* The config flag reader against good and hostile JSON */
static void
test_config_flag(uint64_t *rng)
{
	static const struct
	{
		const char *json;
		bool		set;
	}			cases[] = {
		{"{\"u\": \"true\"}", true},
		{"{\"u\":\"true\"}", true},
		{" { \"a\" : \"x\\\"y\" , \"u\" : true } ", true},
		{"{\"u\": \"false\"}", false},
		{"{\"u\": \"true\", \"u\": \"false\"}", false},
		{"{\"uu\": \"true\"}", false},
		{"{}", false},
		{"", false},
		{"{\"u\": \"true\"", false},
		{"{\"u\": {\"x\": 1}}", false},
		{"[\"u\", \"true\"]", false},
		{"{\"u\" \"true\"}", false},
		{"{\"u\": \"tru", false},
	};
	SlMetaTopic topic;
	char		buf[64];

	memset(&topic, 0, sizeof(topic));
	CHECK(!SlMetaTopicConfigFlag(&topic, "u"));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		topic.config_json = (char *) cases[i].json;
		CHECK_EQ_INT(SlMetaTopicConfigFlag(&topic, "u"), cases[i].set);
	}
	/* random bytes never crash it */
	for (int iter = 0; iter < 20000; iter++)
	{
		size_t		n = unit_rand(rng) % (sizeof(buf) - 1);

		for (size_t k = 0; k < n; k++)
			buf[k] = "{}\":, \\tuer"[unit_rand(rng) % 12];
		buf[n] = '\0';
		topic.config_json = buf;
		(void) SlMetaTopicConfigFlag(&topic, "u");
	}
}

static SlControllerRequest
reassign_req(int32_t *tid, int32_t *part, int32_t **targets, int32_t *sizes, int32_t n)
{
	SlControllerRequest req;

	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_REASSIGN_PARTITIONS;
	req.npartitions = n;
	req.election_topic_ids = tid;
	req.election_partitions = part;
	req.nassignments = n;
	req.assignments = targets;
	req.assignment_sizes = sizes;
	return req;
}

static bool
ints_equal(const int32_t *a, int32_t na, const int32_t *b, int32_t nb)
{
	return na == nb && (na == 0 || memcmp(a, b, sizeof(int32_t) * (size_t) na) == 0);
}

/* KIP-455: a reassignment adds, waits for the ISR, completes, moves the leader */
static void
test_reassignment(void)
{
	SlMetaImage img;
	SlControllerRequest req;
	char		err[256];
	int32_t		reps[] = {1, 2, 3};
	int32_t		tid[] = {1};
	int32_t		pid[] = {0};
	int32_t		to234[] = {2, 3, 4};
	int32_t		want_replicas[] = {2, 3, 4, 1};
	int32_t		isr1234[] = {1, 2, 3, 4};
	int32_t		to12[] = {1, 2};
	int32_t		bad_dup[] = {2, 2};
	int32_t		bad_node[] = {2, 9};
	int32_t		nine[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
	int32_t    *targets[1];
	int32_t		sizes[1];
	const SlMetaPartition *part;
	void	   *data;
	size_t		len;
	SlMetaImage back;

	cluster_of(&img, 4, NULL);
	CHECK(meta_apply1(&img, img.applied_index + 1, meta_topic(1, "move")));
	CHECK(meta_apply1(&img, img.applied_index + 1, meta_partition(1, 0, reps, 3, reps, 3, 1)));
	img.next_topic_id = 2;

	/* refusals */
	sizes[0] = 0;
	targets[0] = NULL;
	req = reassign_req(tid, pid, targets, sizes, 1);
	CHECK_EQ_INT(handle(&img, &req, err), 85);	/* nothing to cancel */
	targets[0] = bad_dup;
	sizes[0] = 2;
	CHECK_EQ_INT(handle(&img, &req, err), 39);
	targets[0] = bad_node;
	CHECK_EQ_INT(handle(&img, &req, err), 39);
	CHECK(strstr(err, "not registered") != NULL);
	targets[0] = nine;
	sizes[0] = 9;
	CHECK_EQ_INT(handle(&img, &req, err), 39);
	pid[0] = 5;
	targets[0] = to234;
	sizes[0] = 3;
	CHECK_EQ_INT(handle(&img, &req, err), 3);
	pid[0] = 0;

	/* start: node 4 added, node 1 being removed, still leading */
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	part = &SlMetaImageTopicById(&img, 1)->partitions[0];
	CHECK(ints_equal(part->replicas, part->nreplicas, want_replicas, 4));
	CHECK_EQ_INT(part->nadding, 1);
	CHECK_EQ_INT(part->adding[0], 4);
	CHECK_EQ_INT(part->nremoving, 1);
	CHECK_EQ_INT(part->removing[0], 1);
	CHECK_EQ_INT(part->nisr, 3);
	CHECK_EQ_INT(part->leader, 1);
	CHECK_EQ_INT(part->partition_epoch, 1);
	/* the same again changes nothing */
	{
		SlMetaBatch out;

		SlMetaBatchInit(&out);
		CHECK_EQ_INT(SlControllerHandleRequest(&img, &req, &out, err, sizeof(err)), 0);
		CHECK_EQ_INT(out.nrecords, 0);
		SlMetaBatchFree(&out);
	}
	/* a snapshot keeps the reassignment */
	CHECK(SlMetaImageEncode(&img, &data, &len));
	CHECK_EQ_INT(((uint8_t *) data)[4], 2);
	CHECK(SlMetaImageDecode(&back, data, len));
	free(data);
	CHECK(meta_images_equal(&img, &back));
	SlMetaImageFree(&back);
	/* a tick with everyone alive changes nothing: node 4 is not in sync */
	{
		SlHeartbeat hbs[4];
		SlMetaBatch out;

		for (int i = 0; i < 4; i++)
			hbs[i] = hb(i + 1, 100 + i, 100, NULL);
		SlMetaBatchInit(&out);
		SlControllerTick(&img, hbs, 4, 100, SESSION, &out);
		CHECK_EQ_INT(out.nrecords, 0);
		SlMetaBatchFree(&out);
	}

	/* the leader adds node 4 to the ISR: the reassignment completes */
	req = alter_req(1, 1, 0, 0, 1, isr1234, 4);
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	part = &SlMetaImageTopicById(&img, 1)->partitions[0];
	CHECK(ints_equal(part->replicas, part->nreplicas, to234, 3));
	CHECK_EQ_INT(part->nadding, 0);
	CHECK_EQ_INT(part->nremoving, 0);
	CHECK_EQ_INT(part->nisr, 3);
	CHECK(!ints_contain(part->isr, part->nisr, 1));
	CHECK_EQ_INT(part->leader, 2);
	CHECK_EQ_INT(part->leader_epoch, 1);
	CHECK_EQ_INT(part->partition_epoch, 2);
	CHECK(SlMetaImageEncode(&img, &data, &len));
	CHECK_EQ_INT(((uint8_t *) data)[4], 1);	/* no reassignment: format 1 */
	free(data);

	/* a target that adds nobody completes at once, the leader moving */
	{
		int32_t		to34[] = {3, 4};

		targets[0] = to34;
		sizes[0] = 2;
		req = reassign_req(tid, pid, targets, sizes, 1);
		CHECK_EQ_INT(handle(&img, &req, err), 0);
		part = &SlMetaImageTopicById(&img, 1)->partitions[0];
		CHECK(ints_equal(part->replicas, part->nreplicas, to34, 2));
		CHECK_EQ_INT(part->nadding + part->nremoving, 0);
		CHECK_EQ_INT(part->leader, 3);
		CHECK_EQ_INT(part->nisr, 2);
	}

	/* pending, then replaced by another target, then cancelled */
	targets[0] = to12;
	sizes[0] = 2;
	req = reassign_req(tid, pid, targets, sizes, 1);
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	part = &SlMetaImageTopicById(&img, 1)->partitions[0];
	CHECK_EQ_INT(part->nadding, 2);
	CHECK_EQ_INT(part->nremoving, 2);
	CHECK_EQ_INT(part->leader, 3);
	targets[0] = to234;
	sizes[0] = 3;
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	part = &SlMetaImageTopicById(&img, 1)->partitions[0];
	CHECK_EQ_INT(part->nadding, 1);
	CHECK_EQ_INT(part->adding[0], 2);
	CHECK_EQ_INT(part->nremoving, 0);
	CHECK_EQ_INT(part->nreplicas, 3);
	sizes[0] = 0;
	targets[0] = NULL;
	CHECK_EQ_INT(handle(&img, &req, err), 0);
	part = &SlMetaImageTopicById(&img, 1)->partitions[0];
	CHECK_EQ_INT(part->nreplicas, 2);
	CHECK_EQ_INT(part->nadding + part->nremoving, 0);
	CHECK_EQ_INT(part->leader, 3);
	CHECK_EQ_INT(handle(&img, &req, err), 85);

	/* new partitions take the target's replication factor, not 2 + 1 */
	{
		int32_t		to24[] = {2, 4};

		targets[0] = to24;
		sizes[0] = 2;
		req = reassign_req(tid, pid, targets, sizes, 1);
		CHECK_EQ_INT(handle(&img, &req, err), 0);
		CHECK_EQ_INT(SlMetaImageTopicById(&img, 1)->partitions[0].nreplicas, 3);
		memset(&req, 0, sizeof(req));
		req.type = SL_CTRL_CREATE_PARTITIONS;
		req.topic_name = (char *) "move";
		req.partition_count = 2;
		CHECK_EQ_INT(handle(&img, &req, err), 0);
		CHECK_EQ_INT(SlMetaImageTopicById(&img, 1)->partitions[1].nreplicas, 2);
	}
	SlMetaImageFree(&img);
}

/*
 * Seeded: reassignments, AlterPartitions from the leader and ticks that
 * fence and bring back nodes, in random order.  Every batch applies, the
 * ISR stays within the replicas with the leader in it, and once the
 * leader puts every adding replica in the ISR the reassignment is over,
 * with the replicas its target.
 */
static void
test_reassignment_seeded(uint64_t *rng)
{
	for (int round = 0; round < 200; round++)
	{
		SlMetaImage img;
		SlControllerRequest req;
		char		err[256];
		int32_t		reps[] = {1, 2, 3};
		int32_t		tid[] = {1};
		int32_t		pid[] = {0};
		int32_t		target[5];
		int32_t    *targets[1] = {target};
		int32_t		sizes[1];
		int64_t		now = 0;

		cluster_of(&img, 5, NULL);
		CHECK(meta_apply1(&img, img.applied_index + 1, meta_topic(1, "r")));
		CHECK(meta_apply1(&img, img.applied_index + 1, meta_partition(1, 0, reps, 3, reps, 3, 1)));
		img.next_topic_id = 2;
		for (int step = 0; step < 40; step++)
		{
			const SlMetaPartition *part = &SlMetaImageTopicById(&img, 1)->partitions[0];
			uint64_t	r = unit_rand(rng) % 4;

			if (r == 0)
			{
				/* a random target of 1 to 3 distinct nodes */
				int32_t		n = 1 + (int32_t) (unit_rand(rng) % 3);

				sizes[0] = 0;
				while (sizes[0] < n)
				{
					int32_t		node = 1 + (int32_t) (unit_rand(rng) % 5);

					if (!ints_contain(target, sizes[0], node))
						target[sizes[0]++] = node;
				}
				req = reassign_req(tid, pid, targets, sizes, 1);
				(void) handle(&img, &req, err);
			}
			else if (r == 1 && part->leader >= 0)
			{
				/* the leader takes every live replica into the ISR */
				int32_t		isr[16];
				int32_t		nisr = 0;
				int32_t		target_replicas[16];
				int32_t		ntarget = 0;
				bool		all_live = true;
				int16_t		code;

				bool		kept_member = false;

				for (int32_t i = 0; i < part->nreplicas; i++)
				{
					if (!SlMetaImageNode(&img, part->replicas[i])->fenced)
					{
						isr[nisr++] = part->replicas[i];
						kept_member |= !ints_contain(part->removing, part->nremoving,
													 part->replicas[i]);
					}
					else if (ints_contain(part->adding, part->nadding, part->replicas[i]))
						all_live = false;
					if (!ints_contain(part->removing, part->nremoving, part->replicas[i]))
						target_replicas[ntarget++] = part->replicas[i];
				}
				/* KIP-455 completes only with an ISR member left in the target */
				all_live &= kept_member;
				req = alter_req(part->leader, 1, 0, part->leader_epoch,
								part->partition_epoch, isr, nisr);
				code = handle(&img, &req, err);
				CHECK_EQ_INT(code, 0);
				part = &SlMetaImageTopicById(&img, 1)->partitions[0];
				if (all_live)
				{
					CHECK_EQ_INT(part->nadding, 0);
					CHECK_EQ_INT(part->nremoving, 0);
					CHECK(ints_equal(part->replicas, part->nreplicas, target_replicas, ntarget));
				}
			}
			else
			{
				/* a tick: one node silent or everyone back */
				SlHeartbeat hbs[5];
				SlMetaBatch out;

				now += SESSION + 1;
				for (int i = 0; i < 5; i++)
					hbs[i] = hb(i + 1, 100 + i, now, NULL);
				if (r == 2)
					hbs[unit_rand(rng) % 5].received_ms = 0;
				SlMetaBatchInit(&out);
				SlControllerTick(&img, hbs, 5, now, SESSION, &out);
				CHECK(commit(&img, &out));
			}
			part = &SlMetaImageTopicById(&img, 1)->partitions[0];
			CHECK(part->leader == -1 || ints_contain(part->isr, part->nisr, part->leader));
			for (int32_t i = 0; i < part->nisr; i++)
				CHECK(ints_contain(part->replicas, part->nreplicas, part->isr[i]));
			CHECK(part->nreplicas - part->nremoving >= 1);
		}
		SlMetaImageFree(&img);
	}
}

/* A partition's state before a step, to judge the step's change */
typedef struct PartSnap
{
	int32_t		leader;
	int32_t		leader_epoch;
	int32_t		partition_epoch;
	int32_t		nisr;
	int32_t		isr[16];
	int32_t		nreplicas;
	int32_t		replicas[16];
} PartSnap;

static void
snap_partition(PartSnap *s, const SlMetaPartition *p)
{
	s->leader = p->leader;
	s->leader_epoch = p->leader_epoch;
	s->partition_epoch = p->partition_epoch;
	s->nisr = p->nisr;
	memcpy(s->isr, p->isr, sizeof(int32_t) * (size_t) p->nisr);
	s->nreplicas = p->nreplicas;
	memcpy(s->replicas, p->replicas, sizeof(int32_t) * (size_t) p->nreplicas);
}

/*
 * Seeded model of everything that moves leaders and ISRs, on two topics
 * of five nodes (one with unclean.leader.election.enable): ticks that
 * fence and bring back nodes, AlterPartitions from leaders (and from
 * others, with stale epochs), reassignments, preferred and unclean
 * ElectLeaders.  After every step, for every partition: the leader is in
 * the ISR, the ISR within the replicas; a leader is never a fenced node;
 * the leader epoch moves by one exactly when the leader changes, the
 * partition epoch by one on any change; and a new leader comes from the
 * ISR before the step, unless the step was an unclean election (the
 * topic's config on a tick, or an UNCLEAN ElectLeaders) or a reassignment
 * that completed (it comes from the ISR after).
 */
static void
test_controller_model_seeded(uint64_t *rng)
{
	for (int round = 0; round < 300; round++)
	{
		SlMetaImage img;
		char		err[256];
		int32_t		reps[] = {1, 2, 3};
		int32_t		reps2[] = {3, 4, 5};
		SlMetaRecord topic;
		int64_t		now = 0;
		bool		silent[6] = {false};

		cluster_of(&img, 5, NULL);
		CHECK(meta_apply1(&img, img.applied_index + 1, meta_topic(1, "clean")));
		CHECK(meta_apply1(&img, img.applied_index + 1, meta_partition(1, 0, reps, 3, reps, 3, 1)));
		topic = meta_topic(2, "unclean");
		topic.topic.config_json = (char *) "{\"unclean.leader.election.enable\": \"true\"}";
		CHECK(meta_apply1(&img, img.applied_index + 1, topic));
		CHECK(meta_apply1(&img, img.applied_index + 1, meta_partition(2, 0, reps2, 3, reps2, 3, 3)));
		img.next_topic_id = 3;

		for (int step = 0; step < 50; step++)
		{
			PartSnap	before[2];
			uint64_t	r = unit_rand(rng) % 6;
			bool		unclean_step = false;
			SlControllerRequest req;

			for (int t = 0; t < 2; t++)
				snap_partition(&before[t], &SlMetaImageTopicById(&img, t + 1)->partitions[0]);
			if (r == 0)
			{
				/* a tick: a node falls silent or comes back */
				SlHeartbeat hbs[5];
				SlMetaBatch out;
				int			n = 1 + (int) (unit_rand(rng) % 5);

				silent[n] = !silent[n];
				now += SESSION + 1;
				for (int i = 0; i < 5; i++)
					hbs[i] = hb(i + 1, 100 + i, silent[i + 1] ? 0 : now, NULL);
				SlMetaBatchInit(&out);
				SlControllerTick(&img, hbs, 5, now, SESSION, &out);
				CHECK(commit(&img, &out));
				unclean_step = true;	/* for the unclean topic only */
			}
			else if (r == 1 || r == 2)
			{
				/* an AlterPartition, usually from the leader */
				int32_t		t = 1 + (int32_t) (unit_rand(rng) % 2);
				const SlMetaPartition *p = &SlMetaImageTopicById(&img, t)->partitions[0];
				int32_t		isr[16];
				int32_t		nisr = 0;
				int32_t		asker = unit_rand(rng) % 4 == 0 ?
					1 + (int32_t) (unit_rand(rng) % 5) : p->leader;

				for (int32_t i = 0; i < p->nreplicas; i++)
					if (p->replicas[i] == p->leader || unit_rand(rng) % 2 == 0)
						isr[nisr++] = p->replicas[i];
				req = alter_req(asker, t, 0, p->leader_epoch - (int32_t) (unit_rand(rng) % 2),
								p->partition_epoch, isr, nisr);
				(void) handle(&img, &req, err);
			}
			else if (r == 3)
			{
				/* a reassignment to 1-4 random nodes, or a cancel */
				int32_t		tid[1] = {1 + (int32_t) (unit_rand(rng) % 2)};
				int32_t		pid[1] = {0};
				int32_t		target[4];
				int32_t    *targets[1] = {target};
				int32_t		sizes[1] = {0};
				int32_t		n = (int32_t) (unit_rand(rng) % 5);

				while (sizes[0] < n)
				{
					int32_t		node = 1 + (int32_t) (unit_rand(rng) % 5);

					if (!ints_contain(target, sizes[0], node))
						target[sizes[0]++] = node;
				}
				req = reassign_req(tid, pid, targets, sizes, 1);
				(void) handle(&img, &req, err);
			}
			else
			{
				/* an election of both partitions, preferred or unclean */
				int32_t		tids[] = {1, 2};
				int32_t		parts[] = {0, 0};

				memset(&req, 0, sizeof(req));
				req.type = SL_CTRL_ELECT_LEADERS;
				req.election_type = r == 5 ? SL_ELECTION_UNCLEAN : SL_ELECTION_PREFERRED;
				req.npartitions = 2;
				req.election_topic_ids = tids;
				req.election_partitions = parts;
				CHECK_EQ_INT(handle(&img, &req, err), 0);
				unclean_step = r == 5;
			}

			for (int t = 0; t < 2; t++)
			{
				const SlMetaPartition *p = &SlMetaImageTopicById(&img, t + 1)->partitions[0];
				const PartSnap *b = &before[t];
				bool		changed = p->partition_epoch != b->partition_epoch;
				bool		reassigned = p->nreplicas != b->nreplicas ||
					memcmp(p->replicas, b->replicas, sizeof(int32_t) * (size_t) p->nreplicas) != 0;

				CHECK(p->leader == -1 || ints_contain(p->isr, p->nisr, p->leader));
				for (int32_t i = 0; i < p->nisr; i++)
					CHECK(ints_contain(p->replicas, p->nreplicas, p->isr[i]));
				CHECK(p->leader == -1 || !SlMetaImageNode(&img, p->leader)->fenced);
				CHECK_EQ_INT(p->leader_epoch, b->leader_epoch + (p->leader != b->leader ? 1 : 0));
				CHECK(p->partition_epoch == b->partition_epoch ||
					  p->partition_epoch == b->partition_epoch + 1);
				if (!changed)
					CHECK_EQ_INT(p->leader, b->leader);
				/* elections only from the ISR, but for unclean ones */
				if (p->leader != b->leader && p->leader != -1 && !reassigned &&
					!(unclean_step && (t == 1 || r == 5)))
					CHECK(ints_contain(b->isr, b->nisr, p->leader));
			}
		}
		SlMetaImageFree(&img);
	}
}

/* Kafka's AdminUtilsTest.testReplicaAssignment: 5 brokers, fixed start 0 */
static void
test_assign_kafka_vectors(void)
{
	SlMetaImage img;
	int32_t		got[30];
	static const int32_t expected[10][3] = {
		{0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 0}, {4, 0, 1},
		{0, 2, 3}, {1, 3, 4}, {2, 4, 0}, {3, 0, 1}, {4, 1, 2}
	};

	SlMetaImageInit(&img);
	for (int32_t i = 0; i < 5; i++)
	{
		CHECK(meta_apply1(&img, i * 2 + 1, meta_register(i, 1, NULL)));
		CHECK(meta_apply1(&img, i * 2 + 2, meta_node_state(SL_META_UNFENCE_NODE, i, 1)));
	}
	CHECK(SlControllerAssign(&img, 10, 3, 0, 0, got));
	for (int p = 0; p < 10; p++)
		for (int r = 0; r < 3; r++)
			CHECK_EQ_INT(got[p * 3 + r], expected[p][r]);
	CHECK(!SlControllerAssign(&img, 1, 6, 0, 0, got));
	CHECK(SlControllerAssign(&img, 0, 5, 0, 0, got));
	SlMetaImageFree(&img);
}

/*
 * Rack-aware: with as many racks as replicas, every partition has one
 * replica per rack; leaders and replicas spread evenly (Kafka's
 * checkReplicaDistribution).
 */
static void
test_assign_racks(uint64_t *rng)
{
	static const char *const racks[] = {"rack1", "rack2", "rack2", "rack3", "rack3", "rack1"};
	SlMetaImage img;
	int32_t		got[36 * 3];

	cluster_of(&img, 6, racks);
	for (int round = 0; round < 50; round++)
	{
		uint64_t	seed = unit_rand(rng);
		int			leaders[7] = {0};
		int			replicas[7] = {0};

		CHECK(SlControllerAssign(&img, 36, 3, 0, seed, got));
		for (int p = 0; p < 36; p++)
		{
			bool		rack_seen[4] = {false};

			for (int r = 0; r < 3; r++)
			{
				int32_t		node = got[p * 3 + r];
				int			rack = racks[node - 1][4] - '0';

				CHECK(node >= 1 && node <= 6);
				CHECK(!rack_seen[rack]);
				rack_seen[rack] = true;
				replicas[node]++;
			}
			leaders[got[p * 3]]++;
		}
		for (int n = 1; n <= 6; n++)
		{
			CHECK_EQ_INT(leaders[n], 6);
			CHECK_EQ_INT(replicas[n], 18);
		}
	}
	/* fewer racks than replicas: distinct nodes still, racks reused evenly */
	CHECK(SlControllerAssign(&img, 12, 5, 0, 7, got));
	for (int p = 0; p < 12; p++)
		for (int r = 0; r < 5; r++)
			for (int k = 0; k < r; k++)
				CHECK(got[p * 5 + r] != got[p * 5 + k]);
	SlMetaImageFree(&img);
}

static void
test_request_codec(uint64_t *rng)
{
	SlControllerRequest req,
				back;
	int32_t		a0[] = {1, 2, 3};
	int32_t		a1[] = {4};
	int32_t    *as[] = {a0, a1};
	int32_t		sizes[] = {3, 1};
	int32_t		tids[] = {5, 6};
	int32_t		parts[] = {0, 7};
	void	   *data,
			   *again;
	size_t		len,
				againlen;
	int			decoded = 0,
				canonical = 0;

	req = create_req("codec", 2, 3);
	req.internal = true;
	req.nassignments = 2;
	req.assignments = as;
	req.assignment_sizes = sizes;
	req.npartitions = 2;
	req.election_topic_ids = tids;
	req.election_partitions = parts;
	req.node_id = 42;
	req.topic_id = 9;
	req.partition = 4;
	req.leader_epoch = 5;
	req.partition_epoch = 6;
	req.isr = a0;
	req.nisr = 3;
	req.election_type = SL_ELECTION_UNCLEAN;
	CHECK(SlControllerRequestEncode(&req, &data, &len));
	CHECK(SlControllerRequestDecode(&back, data, len));
	CHECK_EQ_INT(back.type, SL_CTRL_CREATE_TOPIC);
	CHECK(strcmp(back.topic_name, "codec") == 0);
	CHECK(strcmp(back.owner, "alice") == 0);
	CHECK(strcmp(back.config_json, "{}") == 0);
	CHECK_EQ_INT(back.partition_count, 2);
	CHECK_EQ_INT(back.replication_factor, 3);
	CHECK(back.internal);
	CHECK_EQ_INT(back.nassignments, 2);
	CHECK_EQ_INT(back.assignment_sizes[0], 3);
	CHECK_EQ_INT(back.assignments[0][2], 3);
	CHECK_EQ_INT(back.assignments[1][0], 4);
	CHECK_EQ_INT(back.npartitions, 2);
	CHECK_EQ_INT(back.election_partitions[1], 7);
	CHECK_EQ_INT(back.node_id, 42);
	CHECK_EQ_INT(back.topic_id, 9);
	CHECK_EQ_INT(back.partition, 4);
	CHECK_EQ_INT(back.leader_epoch, 5);
	CHECK_EQ_INT(back.partition_epoch, 6);
	CHECK_EQ_INT(back.nisr, 3);
	CHECK_EQ_INT(back.isr[2], 3);
	CHECK_EQ_INT(back.election_type, SL_ELECTION_UNCLEAN);
	CHECK_MEM(back.topic_uuid, req.topic_uuid, 16);
	CHECK(SlControllerRequestEncode(&back, &again, &againlen));
	CHECK(againlen == len && memcmp(again, data, len) == 0);
	free(again);
	SlControllerRequestFree(&back);

	for (size_t n = 0; n < len; n++)
	{
		uint8_t    *cut = malloc(n > 0 ? n : 1);

		memcpy(cut, data, n);
		CHECK(!SlControllerRequestDecode(&back, cut, n));
		CHECK(back.topic_name == NULL && back.assignments == NULL);
		free(cut);
	}
	for (int iter = 0; iter < 20000; iter++)
	{
		uint8_t    *buf = malloc(len);
		int			edits = 1 + (int) (unit_rand(rng) % 3);

		memcpy(buf, data, len);
		for (int e = 0; e < edits; e++)
			buf[unit_rand(rng) % len] ^= (uint8_t) (1 + unit_rand(rng) % 255);
		if (SlControllerRequestDecode(&back, buf, len))
		{
			decoded++;
			if (SlControllerRequestEncode(&back, &again, &againlen))
			{
				if (againlen == len && memcmp(again, buf, len) == 0)
					canonical++;
				free(again);
			}
			SlControllerRequestFree(&back);
		}
		free(buf);
	}
	CHECK_EQ_INT(canonical, decoded);
	free(data);

	/* an assignment count that lies */
	{
		static const uint8_t lie[] = {
			'S', 'L', 'C', 'R', 2, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 1,
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x7f, 0xff, 0xff, 0xff
		};

		CHECK(!SlControllerRequestDecode(&back, lie, sizeof(lie)));
	}
}

int
main(void)
{
	uint64_t	rng = unit_seed(0xc0417011e5);

	test_create_topic();
	test_many_partitions();
	test_manual_assignment();
	test_other_requests();
	test_elect_leaders();
	test_fencing_and_return();
	test_gone_is_fenced_at_once();
	test_incarnations();
	test_controlled_shutdown();
	test_unregister();
	test_alter_partition();
	test_alter_partition_seeded(&rng);
	test_unclean_election();
	test_reassignment();
	test_reassignment_seeded(&rng);
	test_controller_model_seeded(&rng);
	test_config_flag(&rng);
	test_assign_kafka_vectors();
	test_assign_racks(&rng);
	test_request_codec(&rng);
	return UNIT_DONE();
}
