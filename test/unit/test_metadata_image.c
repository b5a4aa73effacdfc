/*
 * The metadata image: KRaft's rules for each record, batches that apply
 * all or nothing, and snapshots (round trip, truncation, hostile bytes).
 */
#include "streamlog/cluster/metadata_image.h"
#include "streamlog/cluster/metadata_records.h"
#include "meta_testlib.h"
#include "unit.h"

static int32_t r123[] = {1, 2, 3};
static int32_t r12[] = {1, 2};
static int32_t r1[] = {1};
static int32_t r2[] = {2};
static int32_t r4[] = {4};
static int32_t r11[] = {1, 1};

static void
test_nodes(void)
{
	SlMetaImage img;
	const SlMetaNode *n;

	SlMetaImageInit(&img);
	CHECK_EQ_INT(img.controller_id, -1);
	CHECK_EQ_INT(img.next_topic_id, 1);
	CHECK(meta_apply1(&img, 1, meta_register(2, 100, "a")));
	CHECK(meta_apply1(&img, 2, meta_register(1, 200, NULL)));
	CHECK_EQ_INT(img.nnodes, 2);
	CHECK_EQ_INT(img.nodes[0].node_id, 1);	/* sorted */
	n = SlMetaImageNode(&img, 2);
	CHECK(n != NULL && n->fenced && !n->shutting_down);
	CHECK(strcmp(n->rack, "a") == 0);
	CHECK(SlMetaImageNode(&img, 3) == NULL);

	/* unfence with a stale incarnation: ignored, the batch stays valid */
	CHECK(meta_apply1(&img, 3, meta_node_state(SL_META_UNFENCE_NODE, 2, 99)));
	CHECK(SlMetaImageNode(&img, 2)->fenced);
	CHECK(meta_apply1(&img, 4, meta_node_state(SL_META_UNFENCE_NODE, 2, 100)));
	CHECK(!SlMetaImageNode(&img, 2)->fenced);
	/* an unknown node cannot be fenced */
	CHECK(!meta_apply1(&img, 5, meta_node_state(SL_META_FENCE_NODE, 9, 1)));
	CHECK_EQ_UINT(img.invalid_batches, 1);
	CHECK_EQ_UINT(img.applied_index, 5);

	CHECK(meta_apply1(&img, 6, meta_node_state(SL_META_SHUTDOWN_NODE, 2, 100)));
	CHECK(SlMetaImageNode(&img, 2)->shutting_down);
	/* a new incarnation replaces the registration: fenced, not shutting down */
	CHECK(meta_apply1(&img, 7, meta_register(2, 101, NULL)));
	n = SlMetaImageNode(&img, 2);
	CHECK(n->fenced && !n->shutting_down && n->incarnation == 101 && n->rack == NULL);
	CHECK(meta_apply1(&img, 8, meta_node_state(SL_META_FENCE_NODE, 2, 100)));	/* stale */
	CHECK(meta_apply1(&img, 9, meta_node_state(SL_META_UNFENCE_NODE, 2, 101)));
	CHECK(!SlMetaImageNode(&img, 2)->fenced);
	CHECK(meta_apply1(&img, 10, meta_node_state(SL_META_FENCE_NODE, 2, 101)));
	CHECK(SlMetaImageNode(&img, 2)->fenced);

	CHECK(meta_apply1(&img, 11, meta_node_state(SL_META_UNREGISTER_NODE, 1, 0)));
	CHECK(SlMetaImageNode(&img, 1) == NULL);
	CHECK(!meta_apply1(&img, 12, meta_node_state(SL_META_UNREGISTER_NODE, 1, 0)));
	CHECK(!meta_apply1(&img, 13, meta_register(-1, 1, NULL)));
	CHECK_EQ_UINT(img.invalid_batches, 3);
	SlMetaImageFree(&img);
}


static void
test_topics_and_partitions(void)
{
	SlMetaImage img;
	const SlMetaTopic *t;
	const SlMetaPartition *p;
	SlMetaRecord rec;

	SlMetaImageInit(&img);
	for (int32_t n = 1; n <= 4; n++)
	{
		CHECK(meta_apply1(&img, 100 + n, meta_register(n, 1, NULL)));
		CHECK(meta_apply1(&img, 200 + n, meta_node_state(SL_META_UNFENCE_NODE, n, 1)));
	}
	CHECK(meta_apply1(&img, 1, meta_topic(7, "orders")));
	CHECK_EQ_INT(img.next_topic_id, 8);
	CHECK(!meta_apply1(&img, 2, meta_topic(7, "other")));	/* id taken */
	CHECK(!meta_apply1(&img, 3, meta_topic(9, "orders")));	/* name taken */
	CHECK(!meta_apply1(&img, 4, meta_topic(0, "zero")));
	CHECK(!meta_apply1(&img, 5, meta_topic(10, "")));
	CHECK(meta_apply1(&img, 6, meta_topic(3, "early")));
	CHECK_EQ_INT(img.next_topic_id, 8);	/* only grows */
	CHECK_EQ_INT(img.topics[0].topic_id, 3);

	/* partitions in order, each consistent */
	CHECK(!meta_apply1(&img, 7, meta_partition(7, 1, r123, 3, r123, 3, 1)));	/* gap */
	CHECK(meta_apply1(&img, 8, meta_partition(7, 0, r123, 3, r123, 3, 1)));
	CHECK(!meta_apply1(&img, 9, meta_partition(7, 1, r11, 2, r1, 1, 1)));	/* dup replica */
	CHECK(!meta_apply1(&img, 10, meta_partition(7, 1, r12, 2, r4, 1, 4)));	/* ISR not in replicas */
	CHECK(!meta_apply1(&img, 11, meta_partition(7, 1, r12, 2, r1, 1, 2)));	/* leader not in ISR */
	CHECK(!meta_apply1(&img, 12, meta_partition(8, 0, r1, 1, r1, 1, 1)));	/* no topic */
	CHECK(meta_apply1(&img, 13, meta_partition(7, 1, r12, 2, r2, 1, SL_META_NO_LEADER)));
	t = SlMetaImageTopicByName(&img, "orders");
	CHECK(t != NULL && t->partition_count == 2);
	CHECK(SlMetaImageTopicById(&img, 7) == t);

	/* a leader change bumps both epochs, an ISR change the partition epoch */
	CHECK(meta_apply1(&img, 14, meta_change(7, 0, 2, NULL, -1)));
	p = &SlMetaImageTopicById(&img, 7)->partitions[0];
	CHECK_EQ_INT(p->leader, 2);
	CHECK_EQ_INT(p->leader_epoch, 1);
	CHECK_EQ_INT(p->partition_epoch, 1);
	CHECK(meta_apply1(&img, 15, meta_change(7, 0, SL_META_UNCHANGED, r12, 2)));
	p = &SlMetaImageTopicById(&img, 7)->partitions[0];
	CHECK_EQ_INT(p->leader_epoch, 1);
	CHECK_EQ_INT(p->partition_epoch, 2);
	CHECK_EQ_INT(p->nisr, 2);
	/* the ISR may not drop the leader, the leader must be in the ISR */
	CHECK(!meta_apply1(&img, 16, meta_change(7, 0, SL_META_UNCHANGED, r1, 1)));
	CHECK(!meta_apply1(&img, 17, meta_change(7, 0, 3, NULL, -1)));
	CHECK(!meta_apply1(&img, 18, meta_change(7, 0, 2, r4, 1)));
	CHECK(!meta_apply1(&img, 19, meta_change(7, 5, 2, NULL, -1)));
	CHECK(!meta_apply1(&img, 20, meta_change(7, 0, -7, NULL, -1)));
	/* a fenced node, or one shutting down, takes no leadership */
	CHECK(meta_apply1(&img, 300, meta_node_state(SL_META_FENCE_NODE, 1, 1)));
	CHECK(!meta_apply1(&img, 301, meta_change(7, 0, 1, NULL, -1)));
	CHECK(!meta_apply1(&img, 302, meta_partition(7, 2, r1, 1, r1, 1, 1)));
	CHECK(meta_apply1(&img, 303, meta_node_state(SL_META_UNFENCE_NODE, 1, 1)));
	CHECK(meta_apply1(&img, 304, meta_node_state(SL_META_SHUTDOWN_NODE, 1, 1)));
	CHECK(!meta_apply1(&img, 305, meta_change(7, 0, 1, NULL, -1)));
	CHECK(meta_apply1(&img, 306, meta_register(1, 2, NULL)));
	CHECK(meta_apply1(&img, 307, meta_node_state(SL_META_UNFENCE_NODE, 1, 2)));
	/* unknown nodes neither */
	CHECK(meta_apply1(&img, 308, meta_node_state(SL_META_UNREGISTER_NODE, 4, 0)));
	CHECK(!meta_apply1(&img, 309, meta_partition(7, 2, r4, 1, r4, 1, 4)));
	/* both at once; then offline */
	CHECK(meta_apply1(&img, 21, meta_change(7, 0, 1, r1, 1)));
	CHECK(meta_apply1(&img, 22, meta_change(7, 0, SL_META_NO_LEADER, NULL, -1)));
	p = &SlMetaImageTopicById(&img, 7)->partitions[0];
	CHECK_EQ_INT(p->leader, -1);
	CHECK_EQ_INT(p->leader_epoch, 3);
	CHECK_EQ_INT(p->partition_epoch, 4);
	CHECK_EQ_INT(p->nisr, 1);

	rec = meta_rec(SL_META_TOPIC_CONFIG);
	rec.topic.topic_id = 7;
	rec.topic.config_json = (char *) "{\"cleanup.policy\": \"compact\"}";
	CHECK(meta_apply1(&img, 23, rec));
	CHECK(strcmp(SlMetaImageTopicById(&img, 7)->config_json, rec.topic.config_json) == 0);
	rec.topic.topic_id = 70;
	CHECK(!meta_apply1(&img, 24, rec));

	rec = meta_rec(SL_META_REMOVE_TOPIC);
	rec.topic.topic_id = 7;
	CHECK(meta_apply1(&img, 25, rec));
	CHECK(SlMetaImageTopicById(&img, 7) == NULL);
	CHECK(SlMetaImageTopicByName(&img, "orders") == NULL);
	CHECK(!meta_apply1(&img, 26, rec));
	/* the id is not handed out again, the name is free */
	CHECK_EQ_INT(img.next_topic_id, 8);
	CHECK(meta_apply1(&img, 27, meta_topic(8, "orders")));
	SlMetaImageFree(&img);
}

static void
test_producer_ids_and_controller(void)
{
	SlMetaImage img;
	SlMetaRecord rec;

	SlMetaImageInit(&img);
	rec = meta_rec(SL_META_PRODUCER_IDS);
	rec.node_id = 1;
	rec.first_producer_id = 0;
	rec.producer_id_count = 1000;
	CHECK(meta_apply1(&img, 1, rec));
	CHECK_EQ_INT(img.next_producer_id, 1000);
	/* the same block again is stale */
	CHECK(!meta_apply1(&img, 2, rec));
	rec.first_producer_id = 1000;
	rec.producer_id_count = 0;
	CHECK(!meta_apply1(&img, 3, rec));
	rec.producer_id_count = 1000;
	CHECK(meta_apply1(&img, 4, rec));
	CHECK_EQ_INT(img.next_producer_id, 2000);

	rec = meta_rec(SL_META_CONTROLLER);
	rec.node_id = 2;
	rec.controller_epoch = 3;
	CHECK(meta_apply1(&img, 5, rec));
	CHECK_EQ_INT(img.controller_id, 2);
	CHECK_EQ_UINT(img.controller_epoch, 3);
	rec.node_id = 1;
	CHECK(!meta_apply1(&img, 6, rec));	/* epoch must grow */
	rec.controller_epoch = 2;
	CHECK(!meta_apply1(&img, 7, rec));
	rec.controller_epoch = 4;
	CHECK(meta_apply1(&img, 8, rec));
	CHECK_EQ_INT(img.controller_id, 1);
	SlMetaImageFree(&img);
}

/* A batch whose last record is invalid changes nothing but the counters */
static void
test_batch_atomic(void)
{
	SlMetaImage img,
				before;
	SlMetaBatch batch;
	SlMetaRecord rec;

	SlMetaImageInit(&img);
	CHECK(meta_apply1(&img, 1, meta_register(1, 1, NULL)));
	CHECK(meta_apply1(&img, 2, meta_node_state(SL_META_UNFENCE_NODE, 1, 1)));
	CHECK(meta_apply1(&img, 2, meta_topic(1, "a")));
	CHECK(meta_apply1(&img, 3, meta_partition(1, 0, r1, 1, r1, 1, 1)));
	CHECK(SlMetaImageCopy(&before, &img));

	SlMetaBatchInit(&batch);
	rec = meta_register(1, 2, "new");
	SlMetaBatchAdd(&batch, &rec);
	rec = meta_node_state(SL_META_UNFENCE_NODE, 1, 2);
	SlMetaBatchAdd(&batch, &rec);
	rec = meta_register(5, 2, NULL);
	SlMetaBatchAdd(&batch, &rec);
	rec = meta_node_state(SL_META_UNREGISTER_NODE, 5, 0);
	SlMetaBatchAdd(&batch, &rec);
	rec = meta_topic(2, "b");
	SlMetaBatchAdd(&batch, &rec);
	rec = meta_partition(2, 0, r1, 1, r1, 1, 1);
	SlMetaBatchAdd(&batch, &rec);
	rec = meta_change(1, 0, SL_META_NO_LEADER, NULL, -1);
	SlMetaBatchAdd(&batch, &rec);
	rec = meta_rec(SL_META_REMOVE_TOPIC);
	rec.topic.topic_id = 1;
	SlMetaBatchAdd(&batch, &rec);
	rec = meta_rec(SL_META_PRODUCER_IDS);
	rec.node_id = 1;
	rec.producer_id_count = 1000;
	SlMetaBatchAdd(&batch, &rec);
	rec = meta_rec(SL_META_CONTROLLER);
	rec.node_id = 1;
	rec.controller_epoch = 1;
	SlMetaBatchAdd(&batch, &rec);
	/* and the invalid one: a partition of a topic removed above */
	rec = meta_change(1, 0, 1, NULL, -1);
	SlMetaBatchAdd(&batch, &rec);

	CHECK(!meta_apply_batch(&img, 4, &batch));
	CHECK_EQ_UINT(img.applied_index, 4);
	CHECK_EQ_UINT(img.invalid_batches, 1);
	before.applied_index = 4;
	before.invalid_batches = 1;
	CHECK(meta_images_equal(&img, &before));

	/* without the bad record, all of it applies */
	batch.nrecords--;
	{
		SlMetaRecord *last = &batch.records[batch.nrecords];

		free(last->partition.isr);
	}
	CHECK(meta_apply_batch(&img, 5, &batch));
	CHECK(SlMetaImageTopicById(&img, 1) == NULL);
	CHECK(SlMetaImageTopicById(&img, 2) != NULL);
	CHECK(SlMetaImageNode(&img, 5) == NULL);
	CHECK(strcmp(SlMetaImageNode(&img, 1)->rack, "new") == 0);
	CHECK_EQ_INT(img.next_producer_id, 1000);
	CHECK_EQ_INT(img.controller_id, 1);
	CHECK_EQ_INT(img.next_topic_id, 3);

	/* garbage is an invalid batch too */
	CHECK(!SlMetaImageApply(&img, 6, "junk", 4));
	CHECK_EQ_UINT(img.invalid_batches, 2);
	CHECK_EQ_UINT(img.applied_index, 6);

	SlMetaBatchFree(&batch);
	SlMetaImageFree(&before);
	SlMetaImageFree(&img);
}

/* An image with a bit of everything */
static void
sample_image(SlMetaImage *img)
{
	SlMetaRecord rec;

	SlMetaImageInit(img);
	meta_apply1(img, 1, meta_register(1, 11, "r1"));
	meta_apply1(img, 2, meta_register(2, 22, NULL));
	meta_apply1(img, 3, meta_node_state(SL_META_UNFENCE_NODE, 1, 11));
	meta_apply1(img, 4, meta_node_state(SL_META_SHUTDOWN_NODE, 2, 22));
	meta_apply1(img, 5, meta_topic(1, "one"));
	meta_apply1(img, 6, meta_partition(1, 0, r12, 2, r12, 2, 1));
	meta_apply1(img, 7, meta_partition(1, 1, r2, 1, r2, 1, SL_META_NO_LEADER));
	meta_apply1(img, 8, meta_topic(4, "four"));
	rec = meta_rec(SL_META_CONTROLLER);
	rec.node_id = 1;
	rec.controller_epoch = 9;
	meta_apply1(img, 9, rec);
	meta_apply1(img, 10, meta_topic(1, "dup"));	/* invalid, counted */
}

static void
test_snapshot(void)
{
	SlMetaImage img,
				back,
				copy;
	void	   *data;
	size_t		len;
	uint8_t    *longer;
	int			refused = 0;

	sample_image(&img);
	CHECK_EQ_UINT(img.invalid_batches, 1);
	CHECK(SlMetaImageEncode(&img, &data, &len));
	CHECK(SlMetaImageDecode(&back, data, len));
	CHECK(meta_images_equal(&img, &back));
	CHECK_EQ_UINT(back.applied_index, 10);
	CHECK_EQ_INT(back.controller_id, 1);
	CHECK(SlMetaImageNode(&back, 2)->shutting_down);
	CHECK(!SlMetaImageNode(&back, 1)->fenced);
	CHECK_EQ_INT(SlMetaImageTopicByName(&back, "one")->partitions[1].leader, -1);
	CHECK(SlMetaImageCopy(&copy, &back));
	CHECK(meta_images_equal(&copy, &img));
	SlMetaImageFree(&copy);
	SlMetaImageFree(&back);

	for (size_t n = 0; n < len; n++)
	{
		uint8_t    *cut = malloc(n > 0 ? n : 1);

		memcpy(cut, data, n);
		if (!SlMetaImageDecode(&back, cut, n))
			refused++;
		else
			SlMetaImageFree(&back);
		CHECK_EQ_INT(back.nnodes + back.ntopics, 0);
		free(cut);
	}
	CHECK_EQ_INT(refused, (int) len);
	longer = malloc(len + 1);
	memcpy(longer, data, len);
	longer[len] = 7;
	CHECK(!SlMetaImageDecode(&back, longer, len + 1));
	/* a record batch is not a snapshot */
	CHECK(!SlMetaImageDecode(&back, "SLMB\1\0\0\0\0", 9));
	free(longer);
	free(data);

	/* the empty image too */
	SlMetaImageFree(&img);
	SlMetaImageInit(&img);
	CHECK(SlMetaImageEncode(&img, &data, &len));
	CHECK(SlMetaImageDecode(&back, data, len));
	CHECK(meta_images_equal(&img, &back));
	free(data);
	SlMetaImageFree(&back);
}

/* Snapshots whose parts disagree are refused, not trusted */
static void
test_snapshot_inconsistent(uint64_t *rng)
{
	SlMetaImage img,
				back;
	void	   *data;
	size_t		len;
	int			decoded = 0,
				canonical = 0;

	sample_image(&img);
	/* two topics with one name */
	free(img.topics[1].name);
	img.topics[1].name = strdup("one");
	CHECK(SlMetaImageEncode(&img, &data, &len));
	CHECK(!SlMetaImageDecode(&back, data, len));
	free(data);
	SlMetaImageFree(&img);

	/* a leader outside the ISR */
	sample_image(&img);
	img.topics[0].partitions[1].leader = 1;
	CHECK(SlMetaImageEncode(&img, &data, &len));
	CHECK(!SlMetaImageDecode(&back, data, len));
	free(data);
	SlMetaImageFree(&img);

	/* a node no registration could have made */
	sample_image(&img);
	img.nodes[0].kafka_port = 65536;
	CHECK(SlMetaImageEncode(&img, &data, &len));
	CHECK(!SlMetaImageDecode(&back, data, len));
	free(data);
	SlMetaImageFree(&img);

	/* a topic id at or past next_topic_id */
	sample_image(&img);
	img.next_topic_id = 4;
	CHECK(SlMetaImageEncode(&img, &data, &len));
	CHECK(!SlMetaImageDecode(&back, data, len));
	free(data);
	SlMetaImageFree(&img);

	/* random corruption: no crash; what decodes re-encodes the same */
	sample_image(&img);
	CHECK(SlMetaImageEncode(&img, &data, &len));
	SlMetaImageFree(&img);
	for (int iter = 0; iter < 20000; iter++)
	{
		uint8_t    *buf = malloc(len);
		int			edits = 1 + (int) (unit_rand(rng) % 3);

		memcpy(buf, data, len);
		for (int e = 0; e < edits; e++)
			buf[unit_rand(rng) % len] ^= (uint8_t) (1 + unit_rand(rng) % 255);
		if (SlMetaImageDecode(&back, buf, len))
		{
			void	   *again;
			size_t		againlen;

			decoded++;
			if (SlMetaImageEncode(&back, &again, &againlen))
			{
				if (againlen == len && memcmp(again, buf, len) == 0)
					canonical++;
				free(again);
			}
			SlMetaImageFree(&back);
		}
		free(buf);
	}
	CHECK_EQ_INT(canonical, decoded);
	free(data);
}

/*
 * Random batches against a model: applying a batch equals applying it to
 * a copy and keeping the copy only if every record was valid.
 */
static void
test_random_batches(uint64_t *rng)
{
	SlMetaImage img;
	int			valid = 0,
				invalid = 0;

	SlMetaImageInit(&img);
	for (uint64_t index = 1; index <= 3000; index++)
	{
		SlMetaBatch batch;
		SlMetaImage copy;
		int			nrec = 1 + (int) (unit_rand(rng) % 4);
		bool		ok;

		SlMetaBatchInit(&batch);
		for (int i = 0; i < nrec; i++)
		{
			SlMetaRecord rec;
			int32_t		node = (int32_t) (unit_rand(rng) % 4);
			int32_t		topic = 1 + (int32_t) (unit_rand(rng) % 6);
			int32_t		reps[3];
			int32_t		nreps = 1 + (int32_t) (unit_rand(rng) % 3);
			int32_t		nisr = (int32_t) (unit_rand(rng) % (nreps + 1));
			char		name[16];

			for (int32_t k = 0; k < nreps; k++)
				reps[k] = (int32_t) ((node + k) % 4);
			snprintf(name, sizeof(name), "t%d", (int) (unit_rand(rng) % 8));
			switch (unit_rand(rng) % 9)
			{
				case 0:
					rec = meta_register(node, unit_rand(rng) % 3, NULL);
					break;
				case 1:
					rec = meta_node_state(SL_META_FENCE_NODE + (int) (unit_rand(rng) % 2),
										  node, unit_rand(rng) % 3);
					break;
				case 2:
					rec = meta_topic(topic, name);
					break;
				case 3:
				case 4:
					{
						const SlMetaTopic *t = SlMetaImageTopicById(&img, topic);

						rec = meta_partition(topic, t ? t->partition_count : 0, reps, nreps,
											 reps, nisr,
											 nisr > 0 ? reps[unit_rand(rng) % nisr] : -1);
					}
					break;
				case 5:
				case 6:
					{
						bool		isr_too = unit_rand(rng) % 2;

						rec = meta_change(topic, (int32_t) (unit_rand(rng) % 3),
										  (int32_t) (unit_rand(rng) % 6) - 2,
										  isr_too ? reps : NULL, isr_too ? nisr : -1);
					}
					break;
				case 7:
					rec = meta_rec(SL_META_REMOVE_TOPIC);
					rec.topic.topic_id = topic;
					break;
				default:
					rec = meta_node_state(SL_META_UNREGISTER_NODE, node, 0);
					break;
			}
			SlMetaBatchAdd(&batch, &rec);
		}
		CHECK(SlMetaImageCopy(&copy, &img));
		ok = meta_apply_batch(&img, index, &batch);
		if (ok)
			valid++;
		else
		{
			invalid++;
			copy.applied_index = index;
			copy.invalid_batches++;
			CHECK(meta_images_equal(&img, &copy));
		}
		/* every partition of the image keeps its invariants */
		for (int32_t t = 0; t < img.ntopics; t++)
			for (int32_t p = 0; p < img.topics[t].partition_count; p++)
			{
				const SlMetaPartition *part = &img.topics[t].partitions[p];
				bool		in_isr = part->leader == -1;

				for (int32_t k = 0; k < part->nisr; k++)
					in_isr |= part->isr[k] == part->leader;
				CHECK(in_isr);
			}
		SlMetaImageFree(&copy);
		SlMetaBatchFree(&batch);
	}
	/* both kinds happened */
	CHECK(valid > 100);
	CHECK(invalid > 100);
	SlMetaImageFree(&img);
}

int
main(void)
{
	uint64_t	rng = unit_seed(0x1a6e5eed);

	test_nodes();
	test_topics_and_partitions();
	test_producer_ids_and_controller();
	test_batch_atomic();
	test_snapshot();
	test_snapshot_inconsistent(&rng);
	test_random_batches(&rng);
	return UNIT_DONE();
}
