/*
 * t_metrics.c — the Prometheus registry without a server: the exact text
 * of a small registry (escaping, cumulative buckets), folding into
 * "_other" at the series limit, collectors, number formatting, ten
 * thousand series found again by lookup, handles that survive the table
 * growing, programmer errors that abort (in a child), and a checker that
 * every line parses as the 0.0.4 text format.
 */
#include "config.h"

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/util/metrics.h"
#include "t/unit/tap.h"

/* ---------------------------------------------------------------------- */
/* A line checker for the text format, independent of the renderer. */

static const char *
skip_name(const char *p, int colon)
{
	const char *start = p;

	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
	    *p == '_' || (colon && *p == ':') ||
	    (p > start && *p >= '0' && *p <= '9'))
		p++;
	return p > start ? p : NULL;
}

/* A sample value running to the end of the line (no timestamps here). */
static int
value_ok(const char *p, const char *end)
{
	size_t n = (size_t)(end - p);
	char tmp[64], *e;

	if ((n == 4 && (!strncmp(p, "+Inf", 4) || !strncmp(p, "-Inf", 4))) ||
	    (n == 3 && !strncmp(p, "NaN", 3)))
		return 1;
	if (n == 0 || n >= sizeof(tmp))
		return 0;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	strtod(tmp, &e);
	return *e == '\0' && strchr(tmp, ' ') == NULL;
}

static int
sample_ok(const char *p, const char *end)
{
	if ((p = skip_name(p, 1)) == NULL)
		return 0;
	if (*p == '{') {
		p++;
		while (*p != '}') {
			if ((p = skip_name(p, 0)) == NULL || *p++ != '=' ||
			    *p++ != '"')
				return 0;
			for (; p < end && *p != '"'; p++)
				if (*p == '\\' && (p + 1 >= end ||
				    !strchr("\\\"n", *++p)))
					return 0;
			if (p >= end)
				return 0;	/* unbalanced quote */
			p++;
			if (*p == ',')
				p++;
			else if (*p != '}')
				return 0;
		}
		p++;
	}
	if (*p++ != ' ')
		return 0;
	return value_ok(p, end);
}

static int
comment_ok(const char *p, const char *end)
{
	int type = strncmp(p, "# TYPE ", 7) == 0;

	if (!type && strncmp(p, "# HELP ", 7) != 0)
		return 0;
	if ((p = skip_name(p + 7, 1)) == NULL || *p++ != ' ')
		return 0;
	if (!type)
		return 1;
	return (end - p == 7 && !strncmp(p, "counter", 7)) ||
	    (end - p == 5 && !strncmp(p, "gauge", 5)) ||
	    (end - p == 9 && !strncmp(p, "histogram", 9));
}

/* The number of lines that do not parse (each shown). */
static int
bad_lines(const char *t)
{
	int bad = 0;

	while (*t != '\0') {
		const char *end = strchr(t, '\n');
		int good;

		if (end == NULL) {
			diag("  no newline after \"%s\"", t);
			return bad + 1;
		}
		good = *t == '#' ? comment_ok(t, end) : sample_ok(t, end);
		if (!good) {
			diag("  bad line: %.*s", (int)(end - t), t);
			bad++;
		}
		t = end + 1;
	}
	return bad;
}

static int
count_lines(const char *t)
{
	int n = 0;

	for (; *t != '\0'; t++)
		n += *t == '\n';
	return n;
}

/* ---------------------------------------------------------------------- */
/* The exact text of a small registry. */

static const char want_small[] =
    "# HELP vn_requests_total Requests handled.\\nBy peer \\\\ status.\n"
    "# TYPE vn_requests_total counter\n"
    "vn_requests_total{peer=\"pacs\\\"1\\\\a\\nb\",status=\"200\"} 5\n"
    "vn_requests_total{peer=\"ris\",status=\"\"} 1\n"
    "# HELP vn_queue_depth Instances \"waiting\".\n"
    "# TYPE vn_queue_depth gauge\n"
    "vn_queue_depth 3\n"
    "# HELP vn_peer_up Whether a peer answers.\n"
    "# TYPE vn_peer_up gauge\n"
    "vn_peer_up{peer=\"pacs\"} 1\n"
    "vn_peer_up{peer=\"ris\"} 0.5\n"
    "# HELP vn_latency_seconds Request latency.\n"
    "# TYPE vn_latency_seconds histogram\n"
    "vn_latency_seconds_bucket{proto=\"dicom\",le=\"0.005\"} 1\n"
    "vn_latency_seconds_bucket{proto=\"dicom\",le=\"0.1\"} 2\n"
    "vn_latency_seconds_bucket{proto=\"dicom\",le=\"1\"} 4\n"
    "vn_latency_seconds_bucket{proto=\"dicom\",le=\"2.5\"} 5\n"
    "vn_latency_seconds_bucket{proto=\"dicom\",le=\"+Inf\"} 6\n"
    "vn_latency_seconds_sum{proto=\"dicom\"} 11.56640625\n"
    "vn_latency_seconds_count{proto=\"dicom\"} 6\n"
    "vn_latency_seconds_bucket{proto=\"http\",le=\"0.005\"} 0\n"
    "vn_latency_seconds_bucket{proto=\"http\",le=\"0.1\"} 0\n"
    "vn_latency_seconds_bucket{proto=\"http\",le=\"1\"} 1\n"
    "vn_latency_seconds_bucket{proto=\"http\",le=\"2.5\"} 1\n"
    "vn_latency_seconds_bucket{proto=\"http\",le=\"+Inf\"} 1\n"
    "vn_latency_seconds_sum{proto=\"http\"} 0.25\n"
    "vn_latency_seconds_count{proto=\"http\"} 1\n"
    "# HELP vn_commit_seconds Commit time.\n"
    "# TYPE vn_commit_seconds histogram\n"
    "vn_commit_seconds_bucket{le=\"0.005\"} 0\n"
    "vn_commit_seconds_bucket{le=\"0.1\"} 0\n"
    "vn_commit_seconds_bucket{le=\"+Inf\"} 0\n"
    "vn_commit_seconds_sum 0\n"
    "vn_commit_seconds_count 0\n"
    "# HELP vn_empty No series yet.\n"
    "# TYPE vn_empty gauge\n";

static void
test_small(void)
{
	static const double lat[] = { 0.005, 0.1, 1, 2.5, INFINITY };
	static const double obs[] = { 0.00390625, 0.0625, 0.5, 1, 2, 8 };
	const char *v1[] = { "pacs\"1\\a\nb", "200" };
	const char *v2[] = { "ris", NULL };
	const char *pacs[] = { "pacs" }, *ris[] = { "ris" };
	const char *dicom[] = { "dicom" }, *http[] = { "http" };
	struct metrics *m = metrics_new(100);
	struct metric *c, *g, *gl, *h;
	char *t;
	size_t len = 0;

	t = metrics_text(m, &len);
	is_str(t, "", "an empty registry renders as nothing");
	is_int(len, 0, "and its length is 0");
	free(t);

	c = metrics_counter(m, "vn_requests_total",
	    "Requests handled.\nBy peer \\ status.", "peer,status");
	g = metrics_gauge(m, "vn_queue_depth", "Instances \"waiting\".", NULL);
	gl = metrics_gauge(m, "vn_peer_up", "Whether a peer answers.", "peer");
	h = metrics_histogram(m, "vn_latency_seconds", "Request latency.",
	    "proto", lat, 5);
	metrics_histogram(m, "vn_commit_seconds", "Commit time.", "", lat, 2);
	metrics_gauge(m, "vn_empty", "No series yet.", "x");

	metric_add(c, v1, 3);
	metric_add(c, v2, 1);
	metric_add(c, v1, 2);
	metric_set(g, NULL, 5);
	metric_add(g, NULL, -2);
	metric_set(gl, pacs, 1);
	metric_set(gl, ris, 0.5);
	for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
		metric_observe(h, dicom, obs[i]);
	metric_observe(h, http, 0.25);

	t = metrics_text(m, &len);
	is_str(t, want_small, "the small registry's exact text");
	is_int(len, strlen(want_small), "its length");
	is_int(bad_lines(t), 0, "every line of it parses");
	free(t);

	is_int(series_value(metric_series(c, v1)), 5,
	    "series_value reads a counter back");
	ok(series_value(metric_series(h, dicom)) == 11.56640625,
	    "and a histogram's sum");
	metrics_free(m);
	ok(m == NULL, "metrics_free sets the pointer to NULL");
	metrics_free(m);	/* NULL-safe */
}

/* Values that concatenate alike are still different series. */
static void
test_separator(void)
{
	struct metrics *m = metrics_new(0);
	struct metric *c = metrics_counter(m, "vn_x_total", "x", "a,b");
	const char *v1[] = { "ab", "" }, *v2[] = { "a", "b" };
	const char *v3[] = { "", "ab" }, *v4[] = { NULL, "ab" };

	ok(metric_series(c, v1) != metric_series(c, v2) &&
	    metric_series(c, v1) != metric_series(c, v3),
	    "(\"ab\",\"\"), (\"a\",\"b\") and (\"\",\"ab\") are three series");
	ok(metric_series(c, v3) == metric_series(c, v4),
	    "a NULL value is the same as \"\"");
	metrics_free(m);
}

/* ---------------------------------------------------------------------- */
/* The series limit. */

static const char want_fold[] =
    "# HELP vn_sent_total Sent.\n"
    "# TYPE vn_sent_total counter\n"
    "vn_sent_total{peer=\"a\"} 1\n"
    "vn_sent_total{peer=\"b\"} 10\n"
    "vn_sent_total{peer=\"_other\"} 5\n"
    "# HELP vn_pair_total Pairs.\n"
    "# TYPE vn_pair_total counter\n"
    "vn_pair_total{x=\"1\",y=\"1\"} 1\n"
    "vn_pair_total{x=\"1\",y=\"2\"} 1\n"
    "vn_pair_total{x=\"_other\",y=\"_other\"} 1\n"
    "# HELP vn_one Unlabeled.\n"
    "# TYPE vn_one gauge\n"
    "vn_one 7\n"
    "# HELP vnamig_metrics_series_dropped_total Lookups of new label "
    "combinations folded into the \"_other\" series at the per-family "
    "series limit.\n"
    "# TYPE vnamig_metrics_series_dropped_total counter\n"
    "vnamig_metrics_series_dropped_total{family=\"vn_sent_total\"} 3\n"
    "vnamig_metrics_series_dropped_total{family=\"vn_pair_total\"} 1\n";

static void
test_fold(void)
{
	struct metrics *m = metrics_new(2);
	struct metric *f, *p, *one;
	struct metric_series *a, *other;
	const char *va[] = { "a" }, *vb[] = { "b" }, *vc[] = { "c" };
	const char *vd[] = { "d" };
	const char *p11[] = { "1", "1" }, *p12[] = { "1", "2" };
	const char *p13[] = { "1", "3" };
	char *t;

	f = metrics_counter(m, "vn_sent_total", "Sent.", "peer");
	p = metrics_counter(m, "vn_pair_total", "Pairs.", "x,y");
	one = metrics_gauge(m, "vn_one", "Unlabeled.", NULL);
	a = metric_series(f, va);
	series_add(a, 1);
	metric_add(f, vb, 10);
	t = metrics_text(m, NULL);
	ok(strstr(t, "vnamig_metrics_series_dropped_total") == NULL,
	    "no dropped counter before anything folded");
	free(t);

	other = metric_series(f, vc);
	ok(other != a && other == metric_series(f, vd),
	    "past the limit, new combinations share one series");
	ok(metric_series(f, va) == a, "known combinations still find theirs");
	series_add(other, 2);
	metric_add(f, vd, 3);	/* the third fold */
	metric_add(p, p11, 1);
	metric_add(p, p12, 1);
	metric_add(p, p13, 1);
	metric_set(one, NULL, 7);
	t = metrics_text(m, NULL);
	is_str(t, want_fold, "the _other series and the dropped counter");
	is_int(bad_lines(t), 0, "every line parses");
	free(t);
	metrics_free(m);

	/* 0: no cap. */
	m = metrics_new(0);
	f = metrics_counter(m, "vn_sent_total", "Sent.", "peer");
	for (int i = 0; i < 300; i++) {
		char b[16];
		const char *v[] = { b };

		snprintf(b, sizeof(b), "p%d", i);
		metric_add(f, v, 1);
	}
	t = metrics_text(m, NULL);
	ok(strstr(t, "_other") == NULL && count_lines(t) == 302,
	    "max_series 0 folds nothing");
	free(t);
	metrics_free(m);
}

/* ---------------------------------------------------------------------- */
/* Collectors. */

struct coll_state {
	struct metric	*depth;
	int		 calls, order_ok, second;
};

static void
collect_first(struct metrics *reg, void *arg)
{
	struct coll_state *cs = arg;

	(void)reg;
	cs->calls++;
	metric_set(cs->depth, NULL, cs->calls * 10);
}

static void
collect_second(struct metrics *reg, void *arg)
{
	struct coll_state *cs = arg;

	(void)reg;
	cs->second++;
	cs->order_ok = cs->second == cs->calls;	/* first ran already */
}

static void
test_collect(void)
{
	struct metrics *m = metrics_new(10);
	struct coll_state cs = { NULL, 0, 0, 0 };
	char *t;

	cs.depth = metrics_gauge(m, "vn_depth", "Depth.", NULL);
	metrics_on_collect(m, collect_first, &cs);
	metrics_on_collect(m, collect_second, &cs);
	is_int(cs.calls, 0, "collectors wait for a scrape");
	t = metrics_text(m, NULL);
	ok(strstr(t, "\nvn_depth 10\n") != NULL, "a collector's gauge shows");
	ok(cs.order_ok, "collectors run in registration order");
	free(t);
	t = metrics_text(m, NULL);
	ok(strstr(t, "\nvn_depth 20\n") != NULL && cs.calls == 2,
	    "and again on every scrape");
	free(t);
	metrics_free(m);
}

/* ---------------------------------------------------------------------- */
/* Numbers. */

/* The value line of a one-gauge registry, in out. */
static void
render(double v, char *out, size_t cap)
{
	struct metrics *m = metrics_new(1);
	char *t, *p, *e;

	metric_set(metrics_gauge(m, "g", "x", NULL), NULL, v);
	t = metrics_text(m, NULL);
	p = strstr(t, "\ng ");
	e = p != NULL ? strchr(p + 3, '\n') : NULL;
	if (p == NULL || e == NULL)
		snprintf(out, cap, "(no sample)");
	else
		snprintf(out, cap, "%.*s", (int)(e - p - 3), p + 3);
	free(t);
	metrics_free(m);
}

static void
test_numbers(void)
{
	static const struct {
		double		 v;
		const char	*want;
	} t[] = {
		{ 12, "12" },
		{ -3, "-3" },
		{ 0, "0" },
		{ -0.0, "0" },
		{ 1.5, "1.5" },
		{ 0.1, "0.1" },
		{ 0.1 + 0.2, "0.30000000000000004" },
		{ 123456789.25, "123456789.25" },
		{ 9007199254740991.0, "9007199254740991" },
		{ 9007199254740992.0, "9007199254740992" },
		{ -9007199254740991.0, "-9007199254740991" },
		{ 1e20, "1e+20" },
		{ 1e300, "1e+300" },
		{ -1e-300, "-1e-300" },
		{ INFINITY, "+Inf" },
		{ -INFINITY, "-Inf" },
		{ NAN, "NaN" },
	};
	static const double bounds[] = { 1e-05, 0.005, 0.1, 0.25, 1, 2.5,
	    100000, 1e20 };
	static const char want_le[] =
	    "h_bucket{le=\"1e-05\"} 0\n"
	    "h_bucket{le=\"0.005\"} 0\n"
	    "h_bucket{le=\"0.1\"} 0\n"
	    "h_bucket{le=\"0.25\"} 0\n"
	    "h_bucket{le=\"1\"} 0\n"
	    "h_bucket{le=\"2.5\"} 0\n"
	    "h_bucket{le=\"100000\"} 0\n"
	    "h_bucket{le=\"1e+20\"} 1\n"
	    "h_bucket{le=\"+Inf\"} 2\n"
	    "h_sum NaN\n"
	    "h_count 2\n";
	struct metrics *m;
	struct metric *h;
	char out[64], *text;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		render(t[i].v, out, sizeof(out));
		is_str(out, t[i].want, "%g prints as expected", t[i].v);
	}

	m = metrics_new(1);
	h = metrics_histogram(m, "h", "x", NULL, bounds,
	    sizeof(bounds) / sizeof(bounds[0]));
	metric_observe(h, NULL, 1e19);
	metric_observe(h, NULL, NAN);	/* counts in +Inf, poisons sum */
	text = metrics_text(m, NULL);
	is_str(strstr(text, "h_bucket"), want_le,
	    "bucket bounds print shortest; NaN lands in +Inf");
	is_int(bad_lines(text), 0, "and parse");
	free(text);
	metrics_free(m);
}

/* ---------------------------------------------------------------------- */
/* Many series. */

#define NFAM	10
#define NPER	1000

static void
test_many(void)
{
	struct metrics *m = metrics_new(NPER);
	struct metric *f[NFAM];
	struct metric_series *first, *s;
	int wrong = 0, moved = 0;
	char name[32], peer[16], idx[16], *t;
	const char *v[] = { peer, idx };

	for (int i = 0; i < NFAM; i++) {
		snprintf(name, sizeof(name), "vn_many%d_total", i);
		f[i] = metrics_counter(m, name, "Many.", "peer,idx");
	}
	snprintf(peer, sizeof(peer), "peer%d", 0);
	snprintf(idx, sizeof(idx), "%d", 0);
	first = metric_series(f[0], v);		/* while the table is small */
	for (int i = 0; i < NFAM; i++)
		for (int j = 0; j < NPER; j++) {
			snprintf(peer, sizeof(peer), "peer%d", j % 37);
			snprintf(idx, sizeof(idx), "%d", j);
			metric_add(f[i], v, i * NPER + j);
		}
	for (int i = 0; i < NFAM; i++)
		for (int j = NPER - 1; j >= 0; j--) {
			snprintf(peer, sizeof(peer), "peer%d", j % 37);
			snprintf(idx, sizeof(idx), "%d", j);
			s = metric_series(f[i], v);
			wrong += series_value(s) != (double)(i * NPER + j);
			if (i == 0 && j == 0)
				moved = s != first;
		}
	is_int(wrong, 0, "%d series found again with their values",
	    NFAM * NPER);
	ok(!moved, "a handle taken early survives the table growing");
	series_add(first, 0.5);
	snprintf(peer, sizeof(peer), "peer%d", 0);
	snprintf(idx, sizeof(idx), "%d", 0);
	ok(series_value(metric_series(f[0], v)) == 0.5,
	    "an update through it is seen by lookup");
	t = metrics_text(m, NULL);
	is_int(count_lines(t), NFAM * (NPER + 2), "all of them render");
	ok(strstr(t, "_other") == NULL, "none folded under the limit");
	ok(strstr(t, "\nvn_many9_total{peer=\"peer0\",idx=\"999\"} 9999\n")
	    != NULL, "the last one, by text");
	is_int(bad_lines(t), 0, "and every line parses");
	free(t);
	metrics_free(m);
}

/* ---------------------------------------------------------------------- */
/* Programmer errors abort; run each in a child. */

static struct metrics *
reg(void)
{
	return metrics_new(10);
}

static void
e_name(void)
{
	metrics_gauge(reg(), "1up", "x", NULL);
}

static void
e_name_char(void)
{
	metrics_gauge(reg(), "vn-up", "x", NULL);
}

static void
e_label(void)
{
	metrics_gauge(reg(), "vn_up", "x", "peer,__x");
}

static void
e_label_colon(void)
{
	metrics_gauge(reg(), "vn_up", "x", "a:b");
}

static void
e_label_empty(void)
{
	metrics_gauge(reg(), "vn_up", "x", "a,,b");
}

static void
e_label_twice(void)
{
	metrics_gauge(reg(), "vn_up", "x", "a,b,a");
}

static void
e_counter_name(void)
{
	metrics_counter(reg(), "vn_sent", "x", NULL);
}

static void
e_duplicate(void)
{
	struct metrics *m = reg();

	metrics_gauge(m, "vn_up", "x", NULL);
	metrics_gauge(m, "vn_up", "y", "peer");
}

static void
e_clash(void)
{
	struct metrics *m = reg();
	static const double b[] = { 1 };

	metrics_histogram(m, "vn_h", "x", NULL, b, 1);
	metrics_gauge(m, "vn_h_sum", "x", NULL);
}

static void
e_reserved(void)
{
	metrics_counter(reg(), "vnamig_metrics_series_dropped_total", "x",
	    NULL);
}

static void
e_observe_counter(void)
{
	metric_observe(metrics_counter(reg(), "vn_x_total", "x", NULL),
	    NULL, 1);
}

static void
e_set_counter(void)
{
	metric_set(metrics_counter(reg(), "vn_x_total", "x", NULL), NULL, 1);
}

static void
e_add_histogram(void)
{
	static const double b[] = { 1 };

	metric_add(metrics_histogram(reg(), "vn_h", "x", NULL, b, 1), NULL, 1);
}

static void
e_negative(void)
{
	metric_add(metrics_counter(reg(), "vn_x_total", "x", NULL), NULL, -1);
}

static void
e_bounds(void)
{
	static const double b[] = { 1, 0.5 };

	metrics_histogram(reg(), "vn_h", "x", NULL, b, 2);
}

static void
e_le(void)
{
	static const double b[] = { 1 };

	metrics_histogram(reg(), "vn_h", "x", "le", b, 1);
}

static void
e_no_values(void)
{
	metric_add(metrics_counter(reg(), "vn_x_total", "x", "peer"), NULL, 1);
}

static void
fine(void)
{
	struct metrics *m = reg();
	const char *v[] = { "a", "b" };

	metric_add(metrics_counter(m, "vn:x_total", "x", "_peer,a1"), v, 1);
	metrics_free(m);
}

static int
aborts(void (*fn)(void))
{
	pid_t pid;
	int status = -1, fd;

	fflush(stdout);
	if ((pid = fork()) == 0) {
		if ((fd = open("/dev/null", O_WRONLY)) >= 0)
			dup2(fd, 2);	/* the message is not ours to show */
		fn();
		_exit(0);
	}
	waitpid(pid, &status, 0);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void
test_errors(void)
{
	static const struct {
		void		(*fn)(void);
		const char	*what;
	} t[] = {
		{ e_name, "a metric name starting with a digit" },
		{ e_name_char, "a '-' in a metric name" },
		{ e_label, "a label name starting with __" },
		{ e_label_colon, "a ':' in a label name" },
		{ e_label_empty, "an empty label name" },
		{ e_label_twice, "a label name twice" },
		{ e_counter_name, "a counter not named *_total" },
		{ e_duplicate, "a family registered twice" },
		{ e_clash, "a name clashing with a histogram's _sum" },
		{ e_reserved, "the registry's own counter name" },
		{ e_observe_counter, "observe on a counter" },
		{ e_set_counter, "set on a counter" },
		{ e_add_histogram, "add on a histogram" },
		{ e_negative, "a negative counter increment" },
		{ e_bounds, "bucket bounds out of order" },
		{ e_le, "a histogram label named le" },
		{ e_no_values, "no values for a labeled family" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ok(aborts(t[i].fn), "abort: %s", t[i].what);
	ok(!aborts(fine), "no abort: ':' in a metric name, '_' and digits "
	    "in label names");
}

int
main(void)
{
	test_small();
	test_separator();
	test_fold();
	test_collect();
	test_numbers();
	test_many();
	test_errors();
	return done_testing();
}
