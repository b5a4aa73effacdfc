/*
 * Writes metrics in the Prometheus text format 0.0.4 or in OpenMetrics
 * 1.0 text, from samples given in any order: each family's samples are
 * gathered apart and written together at the end, in the table's order,
 * each family once under its HELP and TYPE lines (both formats want a
 * family's samples together; OpenMetrics also wants "# EOF" last).
 * Families without samples are left out.  Pure code: label values are
 * escaped here, whatever bytes they hold.
 */
#ifndef SL_METRICS_EXPOSITION_H
#define SL_METRICS_EXPOSITION_H

#include "streamlog/protocol/metric_table.h"

#define SL_EXPOSITION_TEXT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define SL_EXPOSITION_OPENMETRICS_TYPE \
	"application/openmetrics-text; version=1.0.0; charset=utf-8"

typedef struct SlMetricLabel
{
	const char *name;
	const char *value;
} SlMetricLabel;

typedef struct SlExposition
{
	const SlMetricDef *defs;
	int			ndefs;
	bool		openmetrics;
	StringInfoData *samples;	/* per family, its sample lines */
} SlExposition;

extern void SlExpositionInit(SlExposition *e, const SlMetricDef *defs, int ndefs,
							 bool openmetrics);

/* One sample of a counter or gauge family; labels may be NULL if nlabels 0 */
extern void SlExpositionAdd(SlExposition *e, int id, const SlMetricLabel *labels,
							int nlabels, double value);

/*
 * One histogram of a histogram family: nbuckets upper bounds, ascending,
 * with the cumulative counts at or below each, then +Inf (count), sum
 * and count
 */
extern void SlExpositionAddHistogram(SlExposition *e, int id, const SlMetricLabel *labels,
									 int nlabels, const double *bounds,
									 const uint64 *cumulative, int nbuckets,
									 double sum, uint64 count);

/* Append the exposition to out, and free what e holds */
extern void SlExpositionFinish(SlExposition *e, StringInfo out);

/* Append a value as both formats write numbers (integers without ".0") */
extern void SlExpositionAppendValue(StringInfo out, double value);

#endif							/* SL_METRICS_EXPOSITION_H */
