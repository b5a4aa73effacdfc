/*
 * Fuzz target: the cluster layer's decoders of bytes from the network and
 * from disk (src/cluster/).  The first byte of the input chooses what the
 * rest is:
 *
 *	 0  a metadata record batch (SlMetaBatchDecode): when accepted, it
 *		re-encodes to the same bytes, and applying it to a sample image
 *		either changes it into an image whose snapshot round-trips, or
 *		changes nothing but the counters
 *	 1  an image snapshot (SlMetaImageDecode): when accepted, it re-encodes
 *		to the same bytes, and a controller tick on it (every node
 *		heartbeating, one of them a new incarnation, one asking to shut
 *		down) decides records that the image accepts
 *	 2  a controller request (SlControllerRequestDecode): when accepted,
 *		it re-encodes to the same bytes, and what the controller decides
 *		for it on the sample image applies, or it is refused with nothing
 *		decided
 *	 3  a sequence of record batches, each a big-endian u16 length and its
 *		bytes, applied in turn to the sample image: each either applies or
 *		leaves the image as it was before it (but the counters), which
 *		exercises the undo of a batch that fails half-way on states that
 *		earlier batches built
 *
 * The cluster layer allocates with malloc: everything is freed before
 * returning (LeakSanitizer).
 */
#include "fuzz_common.h"

#include "streamlog/cluster/controller.h"
#include "streamlog/cluster/metadata_image.h"
#include "streamlog/cluster/metadata_records.h"

static SlMetaImage sample;

static bool
apply_batch(SlMetaImage *img, const SlMetaBatch *batch)
{
	void	   *data;
	size_t		len;
	bool		ok;

	FUZZ_CHECK(SlMetaBatchEncode(batch, &data, &len));
	ok = SlMetaImageApply(img, img->applied_index + 1, data, len);
	free(data);
	return ok;
}

static void
add_node_records(SlMetaBatch *batch, int32_t id, const char *rack)
{
	SlMetaRecord rec;

	memset(&rec, 0, sizeof(rec));
	rec.type = SL_META_REGISTER_NODE;
	rec.node.node_id = id;
	rec.node.incarnation = (uint64_t) id * 1000;
	rec.node.kafka_host = (char *) "127.0.0.1";
	rec.node.kafka_port = 9092 + id;
	rec.node.sql_conninfo = (char *) "host=127.0.0.1";
	rec.node.raft_address = (char *) "127.0.0.1:7000";
	rec.node.rack = (char *) rack;
	FUZZ_CHECK(SlMetaBatchAdd(batch, &rec));
	memset(&rec, 0, sizeof(rec));
	rec.type = SL_META_UNFENCE_NODE;
	rec.node.node_id = id;
	rec.node.incarnation = (uint64_t) id * 1000;
	FUZZ_CHECK(SlMetaBatchAdd(batch, &rec));
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	SlMetaBatch batch;
	SlControllerRequest req;
	char		err[256];

	fuzz_init_common();
	(void) argc;
	(void) argv;
	SlMetaImageInit(&sample);
	SlMetaBatchInit(&batch);
	add_node_records(&batch, 1, "a");
	add_node_records(&batch, 2, "b");
	add_node_records(&batch, 3, "a");
	FUZZ_CHECK(apply_batch(&sample, &batch));
	SlMetaBatchFree(&batch);

	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_CREATE_TOPIC;
	req.topic_name = (char *) "orders";
	req.partition_count = 3;
	req.replication_factor = 2;
	SlMetaBatchInit(&batch);
	FUZZ_CHECK(SlControllerHandleRequest(&sample, &req, &batch, err, sizeof(err)) == 0);
	FUZZ_CHECK(apply_batch(&sample, &batch));
	SlMetaBatchFree(&batch);
	return 0;
}

/* Are two images the same but for the counters of what was applied? */
static bool
same_but_counters(const SlMetaImage *a, const SlMetaImage *b)
{
	SlMetaImage x;
	void	   *da,
			   *db;
	size_t		la,
				lb;
	bool		same;

	FUZZ_CHECK(SlMetaImageCopy(&x, b));
	x.applied_index = a->applied_index;
	x.invalid_batches = a->invalid_batches;
	FUZZ_CHECK(SlMetaImageEncode(a, &da, &la));
	FUZZ_CHECK(SlMetaImageEncode(&x, &db, &lb));
	same = la == lb && memcmp(da, db, la) == 0;
	free(da);
	free(db);
	SlMetaImageFree(&x);
	return same;
}

/* Does an image hold its invariants (and round-trip as a snapshot)? */
static void
check_image(const SlMetaImage *img)
{
	void	   *data;
	size_t		len;
	SlMetaImage back;

	FUZZ_CHECK(SlMetaImageEncode(img, &data, &len));
	FUZZ_CHECK(SlMetaImageDecode(&back, data, len));
	SlMetaImageFree(&back);
	free(data);
}

static void
fuzz_batch(const uint8_t *data, size_t size)
{
	SlMetaBatch batch;
	SlMetaImage img;
	void	   *again;
	size_t		againlen;
	uint64_t	invalid;

	if (!SlMetaBatchDecode(&batch, data, size))
	{
		FUZZ_EXPECT(false, "record batch");
		return;
	}
	FUZZ_CHECK(SlMetaBatchEncode(&batch, &again, &againlen));
	FUZZ_CHECK(againlen == size && memcmp(again, data, size) == 0);
	free(again);
	SlMetaBatchFree(&batch);

	FUZZ_CHECK(SlMetaImageCopy(&img, &sample));
	invalid = img.invalid_batches;
	if (!SlMetaImageApply(&img, img.applied_index + 1, data, size))
	{
		SlMetaImage expect;

		/* refused: nothing changed but the counters */
		FUZZ_CHECK(img.invalid_batches == invalid + 1);
		FUZZ_CHECK(SlMetaImageCopy(&expect, &sample));
		expect.applied_index = img.applied_index;
		expect.invalid_batches = img.invalid_batches;
		{
			void	   *a,
					   *b;
			size_t		la,
						lb;

			FUZZ_CHECK(SlMetaImageEncode(&img, &a, &la));
			FUZZ_CHECK(SlMetaImageEncode(&expect, &b, &lb));
			FUZZ_CHECK(la == lb && memcmp(a, b, la) == 0);
			free(a);
			free(b);
		}
		SlMetaImageFree(&expect);
	}
	check_image(&img);
	SlMetaImageFree(&img);
}

static void
fuzz_image(const uint8_t *data, size_t size)
{
	SlMetaImage img;
	void	   *again;
	size_t		againlen;
	SlHeartbeat *hbs;
	SlMetaBatch out;
	int			n = 0;

	if (!SlMetaImageDecode(&img, data, size))
	{
		FUZZ_EXPECT(false, "image snapshot");
		return;
	}
	FUZZ_CHECK(SlMetaImageEncode(&img, &again, &againlen));
	FUZZ_CHECK(againlen == size && memcmp(again, data, size) == 0);
	free(again);

	/* a tick: everyone heartbeats now; node ids pick the variations */
	hbs = calloc((size_t) img.nnodes + 2, sizeof(SlHeartbeat));
	FUZZ_CHECK(hbs != NULL);
	for (int32_t i = 0; i < img.nnodes; i++)
	{
		hbs[n].node = img.nodes[i];
		hbs[n].received_ms = 100000;
		if (img.nodes[i].node_id % 3 == 1)
			hbs[n].node.incarnation++;
		hbs[n].want_shutdown = img.nodes[i].node_id % 5 == 2;
		n++;
	}
	memset(&hbs[n], 0, sizeof(SlHeartbeat));
	hbs[n].node.node_id = 424242;
	hbs[n].received_ms = 99999;
	n++;
	SlMetaBatchInit(&out);
	SlControllerTick(&img, hbs, n, 100000, 6000, &out);
	FUZZ_CHECK(out.nrecords == 0 || apply_batch(&img, &out));
	SlMetaBatchFree(&out);
	free(hbs);
	check_image(&img);
	SlMetaImageFree(&img);
}

static void
fuzz_sequence(const uint8_t *data, size_t size)
{
	SlMetaImage img;
	size_t		at = 0;

	FUZZ_CHECK(SlMetaImageCopy(&img, &sample));
	while (size - at >= 2)
	{
		size_t		len = ((size_t) data[at] << 8) | data[at + 1];
		SlMetaImage before;
		uint8_t    *batch;

		at += 2;
		if (len > size - at)
			len = size - at;
		/* an exactly sized copy, so that ASan sees any overread */
		batch = malloc(len > 0 ? len : 1);
		FUZZ_CHECK(batch != NULL);
		memcpy(batch, data + at, len);
		at += len;
		FUZZ_CHECK(SlMetaImageCopy(&before, &img));
		if (!SlMetaImageApply(&img, img.applied_index + 1, batch, len))
		{
			FUZZ_CHECK(img.invalid_batches == before.invalid_batches + 1);
			FUZZ_CHECK(same_but_counters(&img, &before));
		}
		SlMetaImageFree(&before);
		free(batch);
	}
	check_image(&img);
	SlMetaImageFree(&img);
}

static void
fuzz_request(const uint8_t *data, size_t size)
{
	SlControllerRequest req;
	void	   *again;
	size_t		againlen;
	SlMetaBatch out;
	SlMetaImage img;
	char		err[256];
	int16_t		code;

	if (!SlControllerRequestDecode(&req, data, size))
	{
		FUZZ_EXPECT(false, "controller request");
		return;
	}
	FUZZ_CHECK(SlControllerRequestEncode(&req, &again, &againlen));
	FUZZ_CHECK(againlen == size && memcmp(again, data, size) == 0);
	free(again);

	FUZZ_CHECK(SlMetaImageCopy(&img, &sample));
	SlMetaBatchInit(&out);
	code = SlControllerHandleRequest(&img, &req, &out, err, sizeof(err));
	if (code != 0)
		FUZZ_CHECK(out.nrecords == 0 && err[0] != '\0');
	else if (out.nrecords > 0)
		FUZZ_CHECK(apply_batch(&img, &out));
	SlMetaBatchFree(&out);
	check_image(&img);
	SlMetaImageFree(&img);
	SlControllerRequestFree(&req);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t    *copy;

	if (size < 1)
		return 0;
	/* an exactly sized copy, so that ASan sees any overread */
	copy = malloc(size - 1 > 0 ? size - 1 : 1);
	FUZZ_CHECK(copy != NULL);
	memcpy(copy, data + 1, size - 1);
	switch (data[0])
	{
		case 0:
			fuzz_batch(copy, size - 1);
			break;
		case 1:
			fuzz_image(copy, size - 1);
			break;
		case 2:
			fuzz_request(copy, size - 1);
			break;
		case 3:
			fuzz_sequence(copy, size - 1);
			break;
		default:
			break;
	}
	free(copy);
	return 0;
}
