/*
 * Unit tests of the metric table (src/protocol/metric_table.c) and the
 * exposition writer (src/protocol/metrics_exposition.c): names that
 * Prometheus takes, each once, and both formats byte for byte.
 */
#include "streamlog/protocol/codec_base.h"

#include <ctype.h>
#include <math.h>

#include "streamlog/protocol/metrics_exposition.h"
#include "unit.h"

static bool
valid_name(const char *name)
{
	if (!(isalpha((unsigned char) name[0]) || name[0] == '_'))
		return false;
	for (const char *c = name; *c; c++)
		if (!(isalnum((unsigned char) *c) || *c == '_'))
			return false;
	return true;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t		n = strlen(s);
	size_t		m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void
test_table(void)
{
	for (int i = 0; i < SL_M_COUNT; i++)
	{
		const SlMetricDef *d = &sl_metric_defs[i];

		CHECK_MSG(d->name != NULL && d->help != NULL && d->labels != NULL,
				  "metric %d has no entry", i);
		if (d->name == NULL)
			continue;
		CHECK_MSG(valid_name(d->name), "%s", d->name);
		CHECK_MSG(d->help[0] != '\0', "%s has no HELP", d->name);
		/* promtool's rules: what the writer adds, the name must not have */
		CHECK_MSG(!ends_with(d->name, "_total"), "%s", d->name);
		CHECK_MSG(d->type == SL_METRIC_HISTOGRAM ||
				  (!ends_with(d->name, "_count") && !ends_with(d->name, "_sum") &&
				   !ends_with(d->name, "_bucket")), "%s", d->name);
		for (int j = 0; j < i; j++)
			CHECK_MSG(sl_metric_defs[j].name == NULL ||
					  strcmp(sl_metric_defs[j].name, d->name) != 0,
					  "%s twice", d->name);
	}
}

static const SlMetricDef defs[] = {
	{"g", SL_METRIC_GAUGE, "topic", "A gauge \\ with\nnewline."},
	{"c", SL_METRIC_COUNTER, "", "A counter."},
	{"h", SL_METRIC_HISTOGRAM, "request", "A histogram."},
	{"empty", SL_METRIC_GAUGE, "", "Never sampled."},
};

static char *
write_all(bool openmetrics)
{
	SlExposition e;
	StringInfoData out;
	SlMetricLabel label = {"topic", "a\"b\\c\nd"};
	SlMetricLabel req = {"request", "Fetch"};
	double		bounds[] = {0.5, 1, 2};
	uint64		cumulative[] = {1, 3, 3};

	SlExpositionInit(&e, defs, lengthof(defs), openmetrics);
	/* out of order: the writer groups each family */
	SlExpositionAdd(&e, 1, NULL, 0, 42);
	SlExpositionAdd(&e, 0, &label, 1, 1.5);
	SlExpositionAddHistogram(&e, 2, &req, 1, bounds, cumulative, 3, 7.25, 4);
	SlExpositionAdd(&e, 0, NULL, 0, NAN);
	SlExpositionAdd(&e, 0, NULL, 0, -INFINITY);
	SlExpositionAdd(&e, 0, NULL, 0, 12345678901234.0);
	initStringInfo(&out);
	SlExpositionFinish(&e, &out);
	return out.data;
}

static void
test_text(void)
{
	char	   *text = write_all(false);
	const char *want =
		"# HELP g A gauge \\\\ with\\nnewline.\n"
		"# TYPE g gauge\n"
		"g{topic=\"a\\\"b\\\\c\\nd\"} 1.5\n"
		"g NaN\n"
		"g -Inf\n"
		"g 12345678901234\n"
		"# HELP c_total A counter.\n"
		"# TYPE c_total counter\n"
		"c_total 42\n"
		"# HELP h A histogram.\n"
		"# TYPE h histogram\n"
		"h_bucket{request=\"Fetch\",le=\"0.5\"} 1\n"
		"h_bucket{request=\"Fetch\",le=\"1\"} 3\n"
		"h_bucket{request=\"Fetch\",le=\"2\"} 3\n"
		"h_bucket{request=\"Fetch\",le=\"+Inf\"} 4\n"
		"h_sum{request=\"Fetch\"} 7.25\n"
		"h_count{request=\"Fetch\"} 4\n";

	CHECK_MSG(strcmp(text, want) == 0, "got:\n%s", text);
	pfree(text);
}

static void
test_openmetrics(void)
{
	char	   *text = write_all(true);
	const char *want =
		"# HELP g A gauge \\\\ with\\nnewline.\n"
		"# TYPE g gauge\n"
		"g{topic=\"a\\\"b\\\\c\\nd\"} 1.5\n"
		"g NaN\n"
		"g -Inf\n"
		"g 12345678901234\n"
		"# HELP c A counter.\n"
		"# TYPE c counter\n"
		"c_total 42\n"
		"# HELP h A histogram.\n"
		"# TYPE h histogram\n"
		"h_bucket{request=\"Fetch\",le=\"0.5\"} 1\n"
		"h_bucket{request=\"Fetch\",le=\"1.0\"} 3\n"
		"h_bucket{request=\"Fetch\",le=\"2.0\"} 3\n"
		"h_bucket{request=\"Fetch\",le=\"+Inf\"} 4\n"
		"h_sum{request=\"Fetch\"} 7.25\n"
		"h_count{request=\"Fetch\"} 4\n"
		"# EOF\n";

	CHECK_MSG(strcmp(text, want) == 0, "got:\n%s", text);
	pfree(text);
}

static void
test_values(void)
{
	StringInfoData s;

	initStringInfo(&s);
	SlExpositionAppendValue(&s, 0);
	appendStringInfoChar(&s, ' ');
	SlExpositionAppendValue(&s, -3);
	appendStringInfoChar(&s, ' ');
	SlExpositionAppendValue(&s, 0.1);
	appendStringInfoChar(&s, ' ');
	SlExpositionAppendValue(&s, 1e300);
	appendStringInfoChar(&s, ' ');
	SlExpositionAppendValue(&s, INFINITY);
	CHECK_MSG(strcmp(s.data, "0 -3 0.10000000000000001 1.0000000000000001e+300 +Inf") == 0,
			  "%s", s.data);
	pfree(s.data);
}

int
main(void)
{
	test_table();
	test_text();
	test_openmetrics();
	test_values();
	return UNIT_DONE();
}
