/*
 * ctl_fmt.c — the human side of vnamigctl's output: members of the
 * server's JSON as text ("-" for what is missing: the server may not
 * have every field yet), bytes and durations in words, aligned tables.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/ctl/ctl.h"

json_t *
ctl_jget(const json_t *o, const char *path)
{
	char key[128];
	const char *dot;
	size_t n;

	while (o != NULL && json_is_object(o)) {
		dot = strchr(path, '.');
		n = dot ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		o = json_object_get(o, key);
		if (dot == NULL)
			return (json_t *)(uintptr_t)o;
		path = dot + 1;
	}
	return NULL;
}

const char *
ctl_jtext(const json_t *o, const char *path, char *buf, size_t n)
{
	const json_t *v = ctl_jget(o, path), *x;
	size_t i, len = 0;

	if (v == NULL || json_is_null(v))
		return "-";
	if (json_is_string(v))
		return json_string_value(v)[0] ? json_string_value(v) : "-";
	if (json_is_integer(v))
		snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, n, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, n, "%s", json_is_true(v) ? "yes" : "no");
	else if (json_is_array(v)) {
		if (json_array_size(v) == 0)
			return "-";
		buf[0] = '\0';
		json_array_foreach(v, i, x) {
			char *one;

			if (len + 1 >= n)
				break;		/* truncated */
			one = json_is_string(x) ? NULL :
			    json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
			len += (size_t)snprintf(buf + len, n - len,
			    "%s%s", i ? "," : "", one ? one :
			    json_is_string(x) ? json_string_value(x) : "?");
			free(one);
		}
	} else {
		char *s = json_dumps(v, JSON_COMPACT);

		snprintf(buf, n, "%s", s ? s : "?");
		free(s);
	}
	return buf;
}

double
ctl_jnum(const json_t *o, const char *path)
{
	const json_t *v = ctl_jget(o, path);

	return json_is_number(v) ? json_number_value(v) : -1;
}

const char *
ctl_bytes(double v, char *buf, size_t n)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB",
	    "PiB" };
	unsigned u = 0;

	if (v < 0 || isnan(v))
		return "-";
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, n, "%.0f B", v);
	else
		snprintf(buf, n, "%.1f %s", v, unit[u]);
	return buf;
}

const char *
ctl_duration(double s, char *buf, size_t n)
{
	uint64_t t;

	if (s < 0 || isnan(s) || s > 1e12)
		return "-";
	t = (uint64_t)(s + 0.5);
	if (t < 60)
		snprintf(buf, n, "%" PRIu64 "s", t);
	else if (t < 3600)
		snprintf(buf, n, "%" PRIu64 "m %02" PRIu64 "s", t / 60, t % 60);
	else if (t < 86400)
		snprintf(buf, n, "%" PRIu64 "h %02" PRIu64 "m", t / 3600,
		    t / 60 % 60);
	else
		snprintf(buf, n, "%" PRIu64 "d %" PRIu64 "h", t / 86400,
		    t / 3600 % 24);
	return buf;
}

void
ctl_print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);

	if (s != NULL)
		printf("%s\n", s);
	free(s);
}

int
ctl_json_or(const struct ctl *c, const struct ctl_answer *a)
{
	if (!c->json)
		return 0;
	if (a->json != NULL)
		ctl_print_json(a->json);
	else if (a->len > 0)
		printf("%s\n", a->body);
	return 1;
}

void
ctl_progress_words(const json_t *p, char *out, size_t n)
{
	char t[4][32], b1[32], b2[40], b3[32], r[32];
	double rate = ctl_jnum(p, "rate_bytes_s");

	snprintf(b2, sizeof(b2), "%s%s", ctl_bytes(rate, r, sizeof(r)),
	    rate >= 0 ? "/s" : " per s");
	snprintf(out, n, "studies %s/%s, instances %s/%s, %s, %s, ETA %s",
	    ctl_jtext(p, "studies_done", t[0], sizeof(t[0])),
	    ctl_jtext(p, "studies_total", t[1], sizeof(t[1])),
	    ctl_jtext(p, "instances_done", t[2], sizeof(t[2])),
	    ctl_jtext(p, "instances_total", t[3], sizeof(t[3])),
	    ctl_bytes(ctl_jnum(p, "bytes_done"), b1, sizeof(b1)), b2,
	    ctl_duration(ctl_jnum(p, "eta_s"), b3, sizeof(b3)));
}

/* --- tables -------------------------------------------------------- */

struct ctl_table {
	size_t	  ncols, nrows, cap;
	char	**cells;	/* nrows * ncols, row 0 the headings */
};

static void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n)) == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(CTL_CONN);
	}
	return p;
}

struct ctl_table *
ctl_table_new(const char *const *heads)
{
	struct ctl_table *t = xrealloc(NULL, sizeof(*t));

	memset(t, 0, sizeof(*t));
	while (heads[t->ncols] != NULL)
		t->ncols++;
	ctl_table_row(t, heads);
	return t;
}

void
ctl_table_row(struct ctl_table *t, const char *const *cells)
{
	size_t i;

	if (t->nrows == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->cells = xrealloc(t->cells, t->cap * t->ncols *
		    sizeof(*t->cells));
	}
	for (i = 0; i < t->ncols; i++) {
		const char *s = cells[i] != NULL ? cells[i] : "-";
		char *d = strdup(s), *p;

		if (d == NULL) {
			fprintf(stderr, PROG ": out of memory\n");
			exit(CTL_CONN);
		}
		/* One line per row: no control characters. */
		for (p = d; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20)
				*p = ' ';
		t->cells[t->nrows * t->ncols + i] = d;
	}
	t->nrows++;
}

/* width: the display width of UTF-8 text (code points). */
static size_t
width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

void
ctl_table_print(struct ctl_table *t, FILE *f)
{
	size_t *w, r, i, cw;

	w = xrealloc(NULL, t->ncols * sizeof(*w));
	for (i = 0; i < t->ncols; i++) {
		w[i] = 0;
		for (r = 0; r < t->nrows; r++) {
			cw = width(t->cells[r * t->ncols + i]);
			if (cw > w[i])
				w[i] = cw;
		}
	}
	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			const char *s = t->cells[r * t->ncols + i];

			if (i + 1 == t->ncols)
				fprintf(f, "%s\n", s);
			else
				fprintf(f, "%s%*s", s, (int)(w[i] - width(s) +
				    2), "");
		}
	}
	for (r = 0; r < t->nrows * t->ncols; r++)
		free(t->cells[r]);
	free(t->cells);
	free(w);
	free(t);
}

void
ctl_kv(const char *key, const char *value, int w)
{
	printf("%-*s  %s\n", w, key, value);
}

/* --- arguments ----------------------------------------------------- */

int
ctl_parse_u64(const char *s, uint64_t min, uint64_t max, const char *what,
    uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 ||
	    v < min || v > max) {
		fprintf(stderr, PROG ": %s \"%s\" is not a number from %" PRIu64
		    " to %" PRIu64 "\n", what, s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

char *
ctl_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s), i, o = 0;
	char *d = xrealloc(NULL, 3 * n + 1);

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~", ch) != NULL)
			d[o++] = (char)ch;
		else {
			d[o++] = '%';
			d[o++] = hex[ch >> 4];
			d[o++] = hex[ch & 15];
		}
	}
	d[o] = '\0';
	return d;
}
