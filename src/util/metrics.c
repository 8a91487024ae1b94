/*
 * metrics.c — the Prometheus registry (see metrics.h).
 *
 * Each family keeps its series twice: on a list in creation order (so the
 * output is deterministic) and in a chained hash table keyed by the label
 * values (so lookup is O(1) on average). A series is one allocation that
 * holds its bucket counts and a copy of its label values, and it never
 * moves: growing the table relinks the chains, not the series, which is
 * what lets callers cache handles.
 *
 * Numbers go through snprintf and strtod, which follow LC_NUMERIC; the
 * daemon never calls setlocale(), so the decimal point is '.'.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/util/metrics.h"

#define DROPPED_NAME	"vnamig_metrics_series_dropped_total"
#define DROPPED_HELP	"Lookups of new label combinations folded into " \
			"the \"_other\" series at the per-family series limit."
#define OTHER		"_other"
#define TABLE_MIN	8
#define NUM_MAX		32	/* "%.17g" of any double, with its NUL */
#define TWO_53		9007199254740992.0

enum metric_type {
	MT_COUNTER,
	MT_GAUGE,
	MT_HISTOGRAM,
};

static const char *const type_name[] = { "counter", "gauge", "histogram" };

struct metric_series {
	struct metric		*fam;
	struct metric_series	*next;		/* creation order */
	struct metric_series	*chain;		/* same hash bucket */
	uint64_t		 hash;
	double			 value;		/* counter, gauge; histogram sum */
	uint64_t		 count;		/* histogram observations */
	uint64_t		*bucket;	/* histogram: nbounds + 1, per
						 * bucket, not cumulative */
	char			**values;	/* nlabels */
};

struct metric {
	struct metrics		*reg;
	struct metric		*next;		/* registration order */
	enum metric_type	 type;
	int			 uncapped;	/* the registry's own counter */
	char			*name;
	char			*help;
	char			*lbuf;		/* label names, NUL-separated */
	char			**labels;
	size_t			 nlabels;
	double			*bounds;
	char			(*le)[NUM_MAX];	/* bounds as printed */
	size_t			 nbounds;
	struct metric_series	*head, **tail;
	struct metric_series	**table;	/* labeled families only */
	size_t			 tsize;		/* a power of two */
	size_t			 nseries;	/* all, "_other" included */
	size_t			 nreal;		/* those that count to the cap */
	struct metric_series	*other;		/* the fold target, once used */
	struct metric_series	*dropped;	/* our dropped-counter series */
};

struct collector {
	metrics_collect_fn	*fn;
	void			*arg;
};

struct metrics {
	unsigned		 max_series;
	struct metric		*head, **tail;
	struct metric		*dropped;	/* not on the list: printed last,
						 * and only once it has series */
	struct collector	*coll;
	size_t			 ncoll, capcoll;
};

/* The output buffer of metrics_text. */
struct buf {
	char			*p;
	size_t			 len, cap;
};

static void die(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

static void
die(const char *fmt, ...)
{
	va_list ap;

	fputs("metrics: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static size_t
size_add(size_t a, size_t b)
{
	if (b > SIZE_MAX - a)
		die("size overflow");
	return a + b;
}

static size_t
size_mul(size_t a, size_t b)
{
	if (a != 0 && b > SIZE_MAX / a)
		die("size overflow");
	return a * b;
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if ((p = calloc(n ? n : 1, size ? size : 1)) == NULL)
		die("out of memory");
	return p;
}

static char *
xstrdup(const char *s)
{
	char *p;

	if ((p = strdup(s)) == NULL)
		die("out of memory");
	return p;
}

/* ---------------------------------------------------------------------- */
/* Names. */

/* [a-zA-Z_:][a-zA-Z0-9_:]*, or without ':' for label names. ASCII ranges
 * rather than isalpha(), which would follow the locale. */
static int
name_ok(const char *s, int colon)
{
	for (size_t i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '_' || (colon && c == ':'))
			continue;
		if (i > 0 && c >= '0' && c <= '9')
			continue;
		return 0;
	}
	return s[0] != '\0';
}

/* Whether a + as and b + bs spell the same string. */
static int
cat_eq(const char *a, const char *as, const char *b, const char *bs)
{
	size_t al = strlen(a), bl = strlen(b);

	if (al + strlen(as) != bl + strlen(bs))
		return 0;
	if (al > bl)
		return cat_eq(b, bs, a, as);
	/* a is a prefix of b; b's rest starts as; as's rest is bs. The last
	 * test only runs once strncmp saw bl - al bytes of as, none a NUL. */
	return memcmp(a, b, al) == 0 &&
	    strncmp(as, b + al, bl - al) == 0 && strcmp(as + (bl - al), bs) == 0;
}

/* Whether the names a family exposes (a histogram's _bucket, _sum and
 * _count as well as its own) overlap those of a new one: a scraper could
 * not tell their samples apart. */
static int
clash(const struct metric *f, const char *name, enum metric_type type)
{
	static const char *const sfx[] = { "", "_bucket", "_sum", "_count" };
	size_t nf = f->type == MT_HISTOGRAM ? 4 : 1;
	size_t nn = type == MT_HISTOGRAM ? 4 : 1;

	for (size_t i = 0; i < nf; i++)
		for (size_t j = 0; j < nn; j++)
			if (cat_eq(f->name, sfx[i], name, sfx[j]))
				return 1;
	return 0;
}

/* Split the comma-separated label names into f->labels; check each. */
static void
parse_labels(struct metric *f, const char *labels)
{
	char *p, *q;
	size_t n = 1;

	if (labels == NULL || *labels == '\0')
		return;
	f->lbuf = xstrdup(labels);
	for (p = f->lbuf; *p != '\0'; p++)
		n += *p == ',';
	f->labels = xcalloc(n, sizeof(*f->labels));
	for (p = f->lbuf; p != NULL; p = q) {
		if ((q = strchr(p, ',')) != NULL)
			*q++ = '\0';
		f->labels[f->nlabels++] = p;
	}
	for (size_t i = 0; i < f->nlabels; i++) {
		const char *l = f->labels[i];

		if (!name_ok(l, 0) || (l[0] == '_' && l[1] == '_'))
			die("%s: bad label name \"%s\"", f->name, l);
		if (f->type == MT_HISTOGRAM && strcmp(l, "le") == 0)
			die("%s: a histogram may not have a label \"le\"",
			    f->name);
		for (size_t j = 0; j < i; j++)
			if (strcmp(l, f->labels[j]) == 0)
				die("%s: label \"%s\" given twice", f->name, l);
	}
}

/* ---------------------------------------------------------------------- */
/* Numbers. */

/* A sample value: integers plainly, the rest in the shortest form that
 * reads back as the same double (exact, and "0.1" rather than
 * "0.10000000000000001"). */
static void
fmt_num(char *out, double v)
{
	if (isnan(v))
		snprintf(out, NUM_MAX, "NaN");
	else if (isinf(v))
		snprintf(out, NUM_MAX, "%s", v > 0 ? "+Inf" : "-Inf");
	else if (v > -TWO_53 && v < TWO_53 && v == (double)(long long)v)
		snprintf(out, NUM_MAX, "%lld", (long long)v);	/* -0 too */
	else
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(out, NUM_MAX, "%.*g", prec, v);
			if (strtod(out, NULL) == v)
				break;
		}
}

/* A bucket bound: as above for integers, else the shortest form that
 * reads back as the same double ("0.005", not "0.0050000000000000001"),
 * since the bound is part of the series' identity in every query. */
static void
fmt_le(char *out, double v)
{
	if (v > -TWO_53 && v < TWO_53 && v == (double)(long long)v) {
		fmt_num(out, v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, NUM_MAX, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

/* ---------------------------------------------------------------------- */
/* Series. */

/* FNV-1a over the values, each with its NUL: as no value holds a NUL,
 * ("ab", "") and ("a", "b") cannot hash the same input. */
static uint64_t
values_hash(const char *const *v, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		const unsigned char *p = (const unsigned char *)
		    (v[i] != NULL ? v[i] : "");

		do {
			h ^= *p;
			h *= 0x100000001b3ULL;
		} while (*p++ != '\0');
	}
	return h;
}

static struct metric_series *
find(const struct metric *f, const char *const *v, uint64_t h)
{
	struct metric_series *s;

	for (s = f->table[h & (f->tsize - 1)]; s != NULL; s = s->chain) {
		size_t i;

		if (s->hash != h)
			continue;
		for (i = 0; i < f->nlabels; i++)
			if (strcmp(s->values[i], v[i] != NULL ? v[i] : "") != 0)
				break;
		if (i == f->nlabels)
			return s;
	}
	return NULL;
}

/* Double the table and relink every series into it (walking the creation
 * list, so no series moves). */
static void
grow(struct metric *f)
{
	size_t n = size_mul(f->tsize ? f->tsize : TABLE_MIN / 2, 2);

	free(f->table);
	f->table = xcalloc(n, sizeof(*f->table));
	f->tsize = n;
	for (struct metric_series *s = f->head; s != NULL; s = s->next) {
		size_t b = s->hash & (n - 1);

		s->chain = f->table[b];
		f->table[b] = s;
	}
}

/* A new series for values v (hash h), at the end of the family's list.
 * One allocation: the struct, the bucket counts, the value pointers, the
 * value bytes. */
static struct metric_series *
series_insert(struct metric *f, const char *const *v, uint64_t h)
{
	struct metric_series *s;
	size_t nb = f->type == MT_HISTOGRAM ? f->nbounds + 1 : 0;
	size_t off_b, off_v, off_s, sz;
	char *base, *str;

	off_b = sizeof(*s);
	off_v = size_add(off_b, size_mul(nb, sizeof(*s->bucket)));
	off_s = size_add(off_v, size_mul(f->nlabels, sizeof(*s->values)));
	sz = off_s;
	for (size_t i = 0; i < f->nlabels; i++)
		sz = size_add(sz, size_add(strlen(v[i] ? v[i] : ""), 1));
	s = xcalloc(1, sz);
	base = (char *)s;
	s->fam = f;
	s->hash = h;
	if (nb > 0)
		s->bucket = (uint64_t *)(void *)(base + off_b);
	if (f->nlabels > 0)
		s->values = (char **)(void *)(base + off_v);
	str = base + off_s;
	for (size_t i = 0; i < f->nlabels; i++) {
		size_t l = strlen(v[i] ? v[i] : "") + 1;

		memcpy(str, v[i] ? v[i] : "", l);
		s->values[i] = str;
		str += l;
	}
	*f->tail = s;
	f->tail = &s->next;
	f->nseries++;
	if (f->nlabels > 0) {
		if (f->nseries > f->tsize)	/* load factor at most 1 */
			grow(f);		/* links s in too */
		else {
			s->chain = f->table[h & (f->tsize - 1)];
			f->table[h & (f->tsize - 1)] = s;
		}
	}
	return s;
}

/* The family is full: count the fold and hand out its "_other" series
 * (which may exist already if a caller used "_other" values itself). */
static struct metric_series *
fold(struct metric *f)
{
	struct metrics *m = f->reg;

	if (f->other == NULL) {
		const char **v = xcalloc(f->nlabels, sizeof(*v));
		uint64_t h;

		for (size_t i = 0; i < f->nlabels; i++)
			v[i] = OTHER;
		h = values_hash(v, f->nlabels);
		if ((f->other = find(f, v, h)) == NULL)
			f->other = series_insert(f, v, h);
		free(v);
	}
	if (f->dropped == NULL) {
		const char *v[1];

		v[0] = f->name;
		f->dropped = metric_series(m->dropped, v);
	}
	f->dropped->value += 1;
	return f->other;
}

struct metric_series *
metric_series(struct metric *f, const char *const *values)
{
	struct metric_series *s;
	uint64_t h;

	if (f->nlabels == 0)
		return f->head;		/* made at registration */
	if (values == NULL)
		die("%s: no label values for a labeled family", f->name);
	h = values_hash(values, f->nlabels);
	if ((s = find(f, values, h)) != NULL)
		return s;
	if (f->uncapped || f->reg->max_series == 0 ||
	    f->nreal < f->reg->max_series) {
		f->nreal++;
		return series_insert(f, values, h);
	}
	return fold(f);
}

void
series_add(struct metric_series *s, double v)
{
	const struct metric *f = s->fam;

	if (f->type == MT_HISTOGRAM)
		die("%s: add on a histogram", f->name);
	if (f->type == MT_COUNTER && !(v >= 0))
		die("%s: counter increment %g", f->name, v);
	s->value += v;
}

void
series_set(struct metric_series *s, double v)
{
	if (s->fam->type != MT_GAUGE)
		die("%s: set on a %s", s->fam->name, type_name[s->fam->type]);
	s->value = v;
}

void
series_observe(struct metric_series *s, double v)
{
	const struct metric *f = s->fam;
	size_t lo = 0, hi = f->nbounds;

	if (f->type != MT_HISTOGRAM)
		die("%s: observe on a %s", f->name, type_name[f->type]);
	/* The first bound >= v; a NaN compares false and ends in +Inf. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v <= f->bounds[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	s->bucket[lo]++;
	s->count++;
	s->value += v;
}

void
series_observe_n(struct metric_series *s, double v, uint64_t n,
    double sum)
{
	const struct metric *f = s->fam;
	size_t lo = 0, hi = f->nbounds;

	if (f->type != MT_HISTOGRAM)
		die("%s: observe on a %s", f->name, type_name[f->type]);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v <= f->bounds[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	s->bucket[lo] += n;
	s->count += n;
	s->value += sum;
}

double
series_value(const struct metric_series *s)
{
	return s->value;
}

void
metric_add(struct metric *f, const char *const *values, double v)
{
	series_add(metric_series(f, values), v);
}

void
metric_set(struct metric *f, const char *const *values, double v)
{
	series_set(metric_series(f, values), v);
}

void
metric_observe(struct metric *f, const char *const *values, double v)
{
	series_observe(metric_series(f, values), v);
}

/* ---------------------------------------------------------------------- */
/* Families and the registry. */

static struct metric *
family_new(struct metrics *m, enum metric_type type, const char *name,
    const char *help, const char *labels, int internal)
{
	struct metric *f;
	size_t nl;

	if (name == NULL || !name_ok(name, 1))
		die("bad metric name \"%s\"", name ? name : "(null)");
	nl = strlen(name);
	if (type == MT_COUNTER && (nl < 6 || strcmp(name + nl - 6, "_total")))
		die("%s: a counter's name must end in _total", name);
	for (f = m->head; f != NULL; f = f->next)
		if (clash(f, name, type))
			die("%s: clashes with family %s", name, f->name);
	if (m->dropped != NULL && clash(m->dropped, name, type))
		die("%s: the registry's own name", name);
	f = xcalloc(1, sizeof(*f));
	f->reg = m;
	f->type = type;
	f->uncapped = internal;
	f->name = xstrdup(name);
	f->help = xstrdup(help != NULL ? help : "");
	f->tail = &f->head;
	parse_labels(f, labels);
	if (f->nlabels > 0)
		grow(f);
	if (!internal) {
		*m->tail = f;
		m->tail = &f->next;
	}
	return f;
}

/* The unlabeled family's one series: always there, so always sampled. */
static struct metric *
family_done(struct metric *f)
{
	if (f->nlabels == 0)
		series_insert(f, NULL, values_hash(NULL, 0));
	return f;
}

struct metric *
metrics_counter(struct metrics *m, const char *name, const char *help,
    const char *labels)
{
	return family_done(family_new(m, MT_COUNTER, name, help, labels, 0));
}

struct metric *
metrics_gauge(struct metrics *m, const char *name, const char *help,
    const char *labels)
{
	return family_done(family_new(m, MT_GAUGE, name, help, labels, 0));
}

struct metric *
metrics_histogram(struct metrics *m, const char *name, const char *help,
    const char *labels, const double *bounds, size_t nbounds)
{
	struct metric *f;

	f = family_new(m, MT_HISTOGRAM, name, help, labels, 0);
	if (nbounds > 0 && isinf(bounds[nbounds - 1]) &&
	    bounds[nbounds - 1] > 0)
		nbounds--;		/* +Inf is implicit */
	for (size_t i = 0; i < nbounds; i++)
		if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i - 1] <
		    bounds[i])))
			die("%s: bucket bounds must be finite and ascending",
			    name);
	f->bounds = xcalloc(nbounds, sizeof(*f->bounds));
	f->le = xcalloc(nbounds, sizeof(*f->le));
	f->nbounds = nbounds;
	for (size_t i = 0; i < nbounds; i++) {
		f->bounds[i] = bounds[i];
		fmt_le(f->le[i], bounds[i]);
	}
	return family_done(f);
}

struct metrics *
metrics_new(unsigned max_series)
{
	struct metrics *m = xcalloc(1, sizeof(*m));

	m->max_series = max_series;
	m->tail = &m->head;
	m->dropped = family_new(m, MT_COUNTER, DROPPED_NAME, DROPPED_HELP,
	    "family", 1);
	return m;
}

static void
family_free(struct metric *f)
{
	struct metric_series *s, *next;

	for (s = f->head; s != NULL; s = next) {
		next = s->next;
		free(s);
	}
	free(f->table);
	free(f->le);
	free(f->bounds);
	free(f->labels);
	free(f->lbuf);
	free(f->help);
	free(f->name);
	free(f);
}

void
metrics_free_(struct metrics *m)
{
	struct metric *f, *next;

	if (m == NULL)
		return;
	for (f = m->head; f != NULL; f = next) {
		next = f->next;
		family_free(f);
	}
	family_free(m->dropped);
	free(m->coll);
	free(m);
}

void
metrics_on_collect(struct metrics *m, metrics_collect_fn *fn, void *arg)
{
	if (m->ncoll == m->capcoll) {
		size_t n = m->capcoll ? size_mul(m->capcoll, 2) : 4;
		struct collector *c;

		if ((c = realloc(m->coll, size_mul(n, sizeof(*c)))) == NULL)
			die("out of memory");
		m->coll = c;
		m->capcoll = n;
	}
	m->coll[m->ncoll].fn = fn;
	m->coll[m->ncoll].arg = arg;
	m->ncoll++;
}

/* ---------------------------------------------------------------------- */
/* Exposition. */

static void
buf_put(struct buf *b, const char *s, size_t n)
{
	size_t need = size_add(size_add(b->len, n), 1);	/* and a NUL */

	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < need)
			cap = size_mul(cap, 2);
		if ((p = realloc(b->p, cap)) == NULL)
			die("out of memory");
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
buf_puts(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

/* s escaped: backslash and newline always, '"' in label values only. */
static void
buf_escaped(struct buf *b, const char *s, int quote)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *e = NULL;

		if (*s == '\\')
			e = "\\\\";
		else if (*s == '\n')
			e = "\\n";
		else if (*s == '"' && quote)
			e = "\\\"";
		if (e == NULL)
			continue;
		buf_put(b, run, (size_t)(s - run));
		buf_puts(b, e);
		run = s + 1;
	}
	buf_put(b, run, (size_t)(s - run));
}

/* One sample line: name+suffix, the labels (and le), the value. */
static void
sample(struct buf *b, const struct metric_series *s, const char *suffix,
    const char *le, const char *value)
{
	const struct metric *f = s->fam;

	buf_puts(b, f->name);
	buf_puts(b, suffix);
	if (f->nlabels > 0 || le != NULL) {
		buf_puts(b, "{");
		for (size_t i = 0; i < f->nlabels; i++) {
			if (i > 0)
				buf_puts(b, ",");
			buf_puts(b, f->labels[i]);
			buf_puts(b, "=\"");
			buf_escaped(b, s->values[i], 1);
			buf_puts(b, "\"");
		}
		if (le != NULL) {
			buf_puts(b, f->nlabels > 0 ? ",le=\"" : "le=\"");
			buf_puts(b, le);
			buf_puts(b, "\"");
		}
		buf_puts(b, "}");
	}
	buf_puts(b, " ");
	buf_puts(b, value);
	buf_puts(b, "\n");
}

static void
family_text(struct buf *b, const struct metric *f)
{
	char num[NUM_MAX];

	buf_puts(b, "# HELP ");
	buf_puts(b, f->name);
	buf_puts(b, " ");
	buf_escaped(b, f->help, 0);
	buf_puts(b, "\n# TYPE ");
	buf_puts(b, f->name);
	buf_puts(b, " ");
	buf_puts(b, type_name[f->type]);
	buf_puts(b, "\n");
	for (const struct metric_series *s = f->head; s; s = s->next) {
		uint64_t cum = 0;

		if (f->type != MT_HISTOGRAM) {
			fmt_num(num, s->value);
			sample(b, s, "", NULL, num);
			continue;
		}
		for (size_t i = 0; i < f->nbounds; i++) {
			cum += s->bucket[i];
			snprintf(num, sizeof(num), "%" PRIu64, cum);
			sample(b, s, "_bucket", f->le[i], num);
		}
		snprintf(num, sizeof(num), "%" PRIu64, s->count);
		sample(b, s, "_bucket", "+Inf", num);
		fmt_num(num, s->value);
		sample(b, s, "_sum", NULL, num);
		snprintf(num, sizeof(num), "%" PRIu64, s->count);
		sample(b, s, "_count", NULL, num);
	}
}

char *
metrics_text(struct metrics *m, size_t *len)
{
	struct buf b = { NULL, 0, 0 };

	/* By index: a collector may register another. */
	for (size_t i = 0; i < m->ncoll; i++)
		m->coll[i].fn(m, m->coll[i].arg);
	buf_put(&b, "", 0);		/* an empty registry is "" */
	for (const struct metric *f = m->head; f != NULL; f = f->next)
		family_text(&b, f);
	if (m->dropped->head != NULL)
		family_text(&b, m->dropped);
	b.p[b.len] = '\0';
	if (len != NULL)
		*len = b.len;
	return b.p;
}
