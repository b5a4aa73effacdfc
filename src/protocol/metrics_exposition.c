/*-------------------------------------------------------------------------
 * metrics_exposition.c
 *	  The Prometheus text format 0.0.4 and OpenMetrics 1.0 text, written
 *	  from the metric table (metric_table.c) and samples.  The two differ
 *	  here only in a counter's TYPE line (the text format names the family
 *	  with _total, OpenMetrics without) and in OpenMetrics' "# EOF".
 *
 * IDENTIFICATION
 *	  src/protocol/metrics_exposition.c
 *-------------------------------------------------------------------------
 */
#include "streamlog/protocol/metrics_exposition.h"

#include <math.h>

void
SlExpositionInit(SlExposition *e, const SlMetricDef *defs, int ndefs, bool openmetrics)
{
	e->defs = defs;
	e->ndefs = ndefs;
	e->openmetrics = openmetrics;
	/*
	 * Every family's buffer is made here, in the caller's memory context:
	 * samples may come from code running in a shorter-lived one (SPI's)
	 */
	e->samples = palloc0(sizeof(StringInfoData) * ndefs);
	for (int i = 0; i < ndefs; i++)
		initStringInfo(&e->samples[i]);
}

void
SlExpositionAppendValue(StringInfo out, double value)
{
	if (isnan(value))
		appendStringInfoString(out, "NaN");
	else if (isinf(value))
		appendStringInfoString(out, value > 0 ? "+Inf" : "-Inf");
	else if (value == floor(value) && fabs(value) < 9007199254740992.0)
		appendStringInfo(out, "%.0f", value);
	else
		appendStringInfo(out, "%.17g", value);
}

/* A label value between double quotes, with \, " and newline escaped */
static void
append_label_value(StringInfo out, const char *value)
{
	appendStringInfoChar(out, '"');
	for (const char *c = value; *c; c++)
	{
		if (*c == '\\')
			appendStringInfoString(out, "\\\\");
		else if (*c == '"')
			appendStringInfoString(out, "\\\"");
		else if (*c == '\n')
			appendStringInfoString(out, "\\n");
		else
			appendStringInfoChar(out, *c);
	}
	appendStringInfoChar(out, '"');
}

/*
 * name + suffix, then the labels (and one more, extra_name="extra_value",
 * when extra_name is not NULL), then the value
 */
static void
append_sample(StringInfo out, const char *name, const char *suffix,
			  const SlMetricLabel *labels, int nlabels,
			  const char *extra_name, const char *extra_value, double value)
{
	appendStringInfoString(out, name);
	appendStringInfoString(out, suffix);
	if (nlabels > 0 || extra_name != NULL)
	{
		appendStringInfoChar(out, '{');
		for (int i = 0; i < nlabels; i++)
		{
			if (i > 0)
				appendStringInfoChar(out, ',');
			appendStringInfo(out, "%s=", labels[i].name);
			append_label_value(out, labels[i].value ? labels[i].value : "");
		}
		if (extra_name != NULL)
		{
			if (nlabels > 0)
				appendStringInfoChar(out, ',');
			appendStringInfo(out, "%s=", extra_name);
			append_label_value(out, extra_value);
		}
		appendStringInfoChar(out, '}');
	}
	appendStringInfoChar(out, ' ');
	SlExpositionAppendValue(out, value);
	appendStringInfoChar(out, '\n');
}

static StringInfo
family_samples(SlExposition *e, int id)
{
	return &e->samples[id];
}

void
SlExpositionAdd(SlExposition *e, int id, const SlMetricLabel *labels, int nlabels,
				double value)
{
	const SlMetricDef *def = &e->defs[id];

	append_sample(family_samples(e, id), def->name,
				  def->type == SL_METRIC_COUNTER ? "_total" : "",
				  labels, nlabels, NULL, NULL, value);
}

void
SlExpositionAddHistogram(SlExposition *e, int id, const SlMetricLabel *labels, int nlabels,
						 const double *bounds, const uint64 *cumulative, int nbuckets,
						 double sum, uint64 count)
{
	const SlMetricDef *def = &e->defs[id];
	StringInfo	s = family_samples(e, id);
	char		le[64];
	StringInfoData bound;

	initStringInfo(&bound);
	for (int i = 0; i < nbuckets; i++)
	{
		resetStringInfo(&bound);
		SlExpositionAppendValue(&bound, bounds[i]);
		/* OpenMetrics writes a bound as a float: 1.0, not 1 */
		snprintf(le, sizeof(le), "%s%s", bound.data,
				 e->openmetrics && strpbrk(bound.data, ".eIN") == NULL ? ".0" : "");
		append_sample(s, def->name, "_bucket", labels, nlabels, "le", le,
					  (double) cumulative[i]);
	}
	append_sample(s, def->name, "_bucket", labels, nlabels, "le", "+Inf", (double) count);
	append_sample(s, def->name, "_sum", labels, nlabels, NULL, NULL, sum);
	append_sample(s, def->name, "_count", labels, nlabels, NULL, NULL, (double) count);
	pfree(bound.data);
}

/* HELP text with \ and newline escaped, as both formats want */
static void
append_help(StringInfo out, const char *help)
{
	for (const char *c = help; *c; c++)
	{
		if (*c == '\\')
			appendStringInfoString(out, "\\\\");
		else if (*c == '\n')
			appendStringInfoString(out, "\\n");
		else
			appendStringInfoChar(out, *c);
	}
}

void
SlExpositionFinish(SlExposition *e, StringInfo out)
{
	for (int id = 0; id < e->ndefs; id++)
	{
		const SlMetricDef *def = &e->defs[id];
		const char *family_suffix;

		if (e->samples[id].len == 0)
		{
			pfree(e->samples[id].data);
			continue;
		}
		family_suffix = def->type == SL_METRIC_COUNTER && !e->openmetrics ? "_total" : "";
		appendStringInfo(out, "# HELP %s%s ", def->name, family_suffix);
		append_help(out, def->help);
		appendStringInfo(out, "\n# TYPE %s%s %s\n", def->name, family_suffix,
						 SlMetricTypeName(def->type));
		appendBinaryStringInfo(out, e->samples[id].data, e->samples[id].len);
		pfree(e->samples[id].data);
	}
	if (e->openmetrics)
		appendStringInfoString(out, "# EOF\n");
	pfree(e->samples);
	e->samples = NULL;
}
