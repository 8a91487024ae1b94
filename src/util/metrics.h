/*
 * metrics.h — a Prometheus metrics registry: counters, gauges and
 * histograms with labels, rendered in the text exposition format 0.0.4.
 *
 * Pure: no libevent, no sockets, no clock; the HTTP glue serves what
 * metrics_text() returns. Single-threaded, like the reactor that owns it.
 *
 * Misuse is a programmer error and aborts with a message on stderr: a
 * name that breaks Prometheus's rules, a family name registered twice
 * (or clashing with a histogram's _bucket/_sum/_count), a counter not
 * named *_total, a negative or NaN counter increment, or an operation of
 * the wrong type (observe on a counter, set on a counter or histogram).
 * Allocation failure aborts too: nothing here returns NULL.
 *
 * Cardinality is bounded per family: once a labeled family holds
 * max_series label combinations, each lookup of a new combination is
 * folded into one series whose every label value is "_other", and
 * vnamig_metrics_series_dropped_total{family="NAME"} counts the folded
 * lookups. That family appears in the output only once something folded.
 */
#ifndef VNAMIG_METRICS_H
#define VNAMIG_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct metrics;		/* a registry */
struct metric;		/* one family: name, help, type, label names */
struct metric_series;	/* one label-value combination of a family */

/*
 * A new, empty registry. max_series caps the label combinations of each
 * labeled family (the "_other" series comes on top); 0 means no cap.
 */
struct metrics *metrics_new(unsigned max_series);
/* Free the registry, its families and series (handles die with it). */
void metrics_free_(struct metrics *m);
#define metrics_free(m) do { metrics_free_(m); (m) = NULL; } while (0)

/*
 * Register a family. labels is a comma-separated list of label names
 * ("peer,status", no spaces), or NULL (or "") for an unlabeled family,
 * whose single series exists from now on with the value 0. help is
 * copied. The family lives as long as the registry; output lists
 * families in registration order.
 */
struct metric *metrics_counter(struct metrics *m, const char *name,
    const char *help, const char *labels);
struct metric *metrics_gauge(struct metrics *m, const char *name,
    const char *help, const char *labels);
/*
 * bounds: the buckets' upper bounds, strictly ascending and finite;
 * +Inf is implicit (a trailing +Inf is accepted and ignored). Copied.
 * "le" is not allowed as a label name here.
 */
struct metric *metrics_histogram(struct metrics *m, const char *name,
    const char *help, const char *labels, const double *bounds,
    size_t nbounds);

/*
 * The series for one combination of label values, created on first use
 * (or the family's "_other" series once it is full). values holds one
 * string per label name, in order; a NULL string counts as "". Pass NULL
 * for an unlabeled family. The handle stays valid, at the same address,
 * as long as the registry: hot paths should look it up once and use the
 * series_* calls, which never allocate.
 */
struct metric_series *metric_series(struct metric *f,
    const char *const *values);

/* Look up (metric_series) and update in one call. */
void metric_add(struct metric *f, const char *const *values, double v);
void metric_set(struct metric *f, const char *const *values, double v);
void metric_observe(struct metric *f, const char *const *values,
    double v);

/* Counter += v (v >= 0), or gauge += v (any sign). */
void series_add(struct metric_series *s, double v);
/* Gauge = v. */
void series_set(struct metric_series *s, double v);
/* Histogram: count v in its bucket (NaN goes to +Inf), add it to sum. */
void series_observe(struct metric_series *s, double v);
/* Histogram, for callers that count elsewhere and report deltas (the
 * store's sync thread): n observations in v's bucket, whose values add
 * up to sum (n may be 0 to add to the sum alone). */
void series_observe_n(struct metric_series *s, double v, uint64_t n,
    double sum);
/* The value of a counter or gauge series; a histogram's sum. */
double series_value(const struct metric_series *s);

/*
 * Scrape-time collectors: metrics_text() calls each, in registration
 * order, just before it renders, so gauges computed from live state
 * (queue depths, open connections) are set then rather than kept
 * up to date on every change.
 */
typedef void metrics_collect_fn(struct metrics *reg, void *arg);
void metrics_on_collect(struct metrics *m, metrics_collect_fn *fn,
    void *arg);

/*
 * Run the collectors, then render every family in the text exposition
 * format 0.0.4: families in registration order, series in creation
 * order. Returns a malloc'd NUL-terminated string the caller frees;
 * *len (if len is not NULL) gets its length without the NUL.
 */
char *metrics_text(struct metrics *m, size_t *len);

#endif
