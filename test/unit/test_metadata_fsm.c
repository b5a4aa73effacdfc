/*
 * The metadata fsm under libraft (raft/fixture.h): every server applies
 * the same image, entries are numbered with their Raft index (after the
 * bootstrap configuration and membership changes), snapshots taken and
 * installed on a lagging server carry the whole image.
 */
#include "meta_fixture.h"
#include "unit.h"

static bool
all_applied(MetaCluster *c, uint64_t index)
{
	for (unsigned i = 0; i < c->n; i++)
		if (raft_last_applied(raft_fixture_get(&c->f, i)) < index)
			return false;
	return true;
}

static void
step_until_all_applied(MetaCluster *c, uint64_t index)
{
	for (int k = 0; k < 200000 && !all_applied(c, index); k++)
		raft_fixture_step(&c->f);
}

static void
test_three_servers(void)
{
	MetaCluster c;
	unsigned	leader;
	SlMetaBatch batch;
	SlMetaRecord rec;
	raft_index	last;

	meta_cluster_init(&c, 3, 3, 0);
	CHECK(raft_fixture_step_until_has_leader(&c.f, 10000));
	leader = meta_leader(&c);
	CHECK(leader < 3);

	SlMetaBatchInit(&batch);
	rec = meta_register(1, 1, NULL);
	SlMetaBatchAdd(&batch, &rec);
	rec = meta_topic(1, "t");
	SlMetaBatchAdd(&batch, &rec);
	CHECK(meta_propose(&c, leader, &batch));
	SlMetaBatchFree(&batch);
	/* an invalid batch applies as nothing, and the log goes on */
	SlMetaBatchInit(&batch);
	rec = meta_topic(1, "again");
	SlMetaBatchAdd(&batch, &rec);
	CHECK(meta_propose(&c, leader, &batch));
	SlMetaBatchFree(&batch);
	SlMetaBatchInit(&batch);
	rec = meta_topic(2, "u");
	SlMetaBatchAdd(&batch, &rec);
	CHECK(meta_propose(&c, leader, &batch));
	SlMetaBatchFree(&batch);
	CHECK(!meta_propose(&c, (leader + 1) % 3, &batch));

	last = raft_last_index(raft_fixture_get(&c.f, leader));
	step_until_all_applied(&c, last);
	CHECK(all_applied(&c, last));
	CHECK_EQ_INT(c.proposals_done, 3);
	for (unsigned i = 0; i < 3; i++)
	{
		/* entry 1 is the bootstrap configuration: commands are 2, 3, 4 */
		CHECK_EQ_UINT(c.images[i].applied_index, last);
		CHECK_EQ_UINT(c.images[i].applied_index, 4);
		CHECK_EQ_INT(c.images[i].ntopics, 2);
		CHECK_EQ_UINT(c.images[i].invalid_batches, 1);
		CHECK_EQ_UINT(c.applied[i], 3);
	}
	CHECK(meta_images_agree(&c));
	CHECK(c.index_ok);
	meta_cluster_close(&c);
}

/*
 * A server down while the others take snapshots and drop the log comes
 * back through an installed snapshot and ends with the same image.
 */
static void
test_snapshot_install(void)
{
	MetaCluster c;
	unsigned	leader;
	raft_index	last = 0;
	int			proposed = 0;

	meta_cluster_init(&c, 3, 3, 8);
	CHECK(raft_fixture_step_until_has_leader(&c.f, 10000));
	leader = meta_leader(&c);
	raft_fixture_kill(&c.f, (leader + 1) % 3);
	{
		SlMetaBatch batch;
		SlMetaRecord rec;

		SlMetaBatchInit(&batch);
		rec = meta_register(1, 1, NULL);
		SlMetaBatchAdd(&batch, &rec);
		rec = meta_node_state(SL_META_UNFENCE_NODE, 1, 1);
		SlMetaBatchAdd(&batch, &rec);
		CHECK(meta_propose(&c, leader, &batch));
		SlMetaBatchFree(&batch);
	}
	for (int32_t t = 1; t <= 60; t++)
	{
		SlMetaBatch batch;
		SlMetaRecord rec;
		char		name[16];
		int32_t		one = 1;

		snprintf(name, sizeof(name), "topic-%d", (int) t);
		SlMetaBatchInit(&batch);
		rec = meta_topic(t, name);
		SlMetaBatchAdd(&batch, &rec);
		rec = meta_partition(t, 0, &one, 1, &one, 1, 1);
		SlMetaBatchAdd(&batch, &rec);
		if (meta_propose(&c, leader, &batch))
			proposed++;
		SlMetaBatchFree(&batch);
		raft_fixture_step_n(&c.f, 20);
	}
	CHECK_EQ_INT(proposed, 60);
	raft_fixture_step_until_elapsed(&c.f, 2000);
	CHECK(raft_fixture_get(&c.f, leader)->log.snapshot.last_index > 0);
	raft_fixture_revive(&c.f, (leader + 1) % 3);
	last = raft_last_index(raft_fixture_get(&c.f, meta_leader(&c)));
	step_until_all_applied(&c, last);
	CHECK(all_applied(&c, last));
	for (unsigned i = 0; i < 3; i++)
		CHECK_EQ_INT(c.images[i].ntopics, 60);
	/* the revived server got a snapshot, not all sixty entries */
	CHECK(c.applied[(leader + 1) % 3] < 61);
	CHECK(meta_images_agree(&c));
	CHECK(meta_images_equal(&c.images[0], &c.images[1]));
	CHECK(meta_images_equal(&c.images[1], &c.images[2]));
	CHECK(c.index_ok);
	meta_cluster_close(&c);
}

/* A snapshot that is not one is refused by restore, the image kept */
static void
test_restore_refuses_garbage(void)
{
	struct raft_fsm fsm;
	SlMetaImage img;
	struct raft_buffer buf;
	struct raft_buffer *bufs;
	unsigned	nbufs;

	SlMetaImageInit(&img);
	meta_apply1(&img, 1, meta_topic(3, "kept"));
	CHECK_EQ_INT(SlMetaFsmInit(&fsm, &img, NULL, NULL), 0);
	CHECK_EQ_INT(fsm.version, 2);
	buf.base = raft_malloc(4);
	memcpy(buf.base, "junk", 4);
	buf.len = 4;
	CHECK(fsm.restore(&fsm, &buf) != 0);
	raft_free(buf.base);
	CHECK(SlMetaImageTopicByName(&img, "kept") != NULL);

	/* snapshot then restore is the identity; restore owns the buffer */
	CHECK_EQ_INT(fsm.snapshot(&fsm, &bufs, &nbufs), 0);
	CHECK_EQ_INT(nbufs, 1);
	SlMetaImageFree(&img);
	SlMetaImageInit(&img);
	CHECK_EQ_INT(fsm.restore(&fsm, &bufs[0]), 0);
	raft_free(bufs);
	CHECK(SlMetaImageTopicByName(&img, "kept") != NULL);
	CHECK_EQ_UINT(img.applied_index, 1);
	SlMetaFsmClose(&fsm);
	SlMetaImageFree(&img);
}

int
main(void)
{
	test_three_servers();
	test_snapshot_install();
	test_restore_refuses_garbage();
	return UNIT_DONE();
}
