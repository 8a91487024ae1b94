/*
 * hl7_path.c — see hl7.h. Field paths ("PID-3#2.1|PID-2"), finding the
 * raw bytes they name, unescaping (HL7 v2.5.1 2.7) and decoding to UTF-8.
 *
 * A value is found by scanning its field for the repetition, component
 * and subcomponent separators: delimiters first, escapes afterwards, so
 * an escaped \S\ never splits. Unescaping never makes a value longer (the
 * longest result, ESC xx yy zz from \Mxxyyzz\, is shorter than its
 * escape), so a buffer of the raw length always holds it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dimse/ds_charset.h"
#include "src/hl7/hl7.h"
#include "src/hl7/hl7_int.h"

#define PATH_MAX_LEN	255
#define PATH_MAX_ALT	16
#define NUM_MAX		9999u
#define STACK_BUF	512

/* ---- path syntax ---- */

static int
is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* path_err: "'PATH' at offset N: why" (the whole chain is quoted). */
static int
path_err(char *err, size_t errlen, const char *path, size_t at,
    const char *why)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "'%s' at offset %zu: %s", path, at, why);
	return -1;
}

/* num: a number 1..NUM_MAX without leading zeros at path[*i], i < b. */
static int
num(const char *path, size_t *i, size_t b, uint32_t *v)
{
	uint32_t n = 0;
	size_t k = *i;

	if (k >= b || !is_digit(path[k]) || path[k] == '0')
		return -1;
	while (k < b && is_digit(path[k])) {
		n = n * 10 + (uint32_t)(path[k++] - '0');
		if (n > NUM_MAX)
			return -1;
	}
	*v = n;
	*i = k;
	return 0;
}

/* parse_one: the alternative path[a..b) (no spaces) into *p. */
static int
parse_one(const char *path, size_t a, size_t b, struct hl7_path *p,
    char *err, size_t errlen)
{
	size_t i = a;

	memset(p, 0, sizeof(*p));
	p->rep = p->comp = p->sub = 1;
	if (b - a < 3 || !is_upper(path[a]) ||
	    !(is_upper(path[a + 1]) || is_digit(path[a + 1])) ||
	    !(is_upper(path[a + 2]) || is_digit(path[a + 2])))
		return path_err(err, errlen, path, a, "segment ID must "
		    "be 3 characters A-Z 0-9, the first a letter");
	memcpy(p->seg, path + a, 3);
	i = a + 3;
	if (i >= b || path[i] != '-')
		return path_err(err, errlen, path, i, "expected '-' and "
		    "a field number after the segment ID");
	i++;
	if (num(path, &i, b, &p->field) == -1)
		return path_err(err, errlen, path, i, "field number must "
		    "be 1 to 9999 (no leading zeros)");
	if (i < b && path[i] == '#') {
		i++;
		if (num(path, &i, b, &p->rep) == -1)
			return path_err(err, errlen, path, i, "repeat "
			    "number must be 1 to 9999 (no leading zeros)");
	}
	if (i < b && path[i] == '.') {
		i++;
		if (num(path, &i, b, &p->comp) == -1)
			return path_err(err, errlen, path, i, "component "
			    "number must be 1 to 9999 (no leading zeros)");
		if (i < b && path[i] == '.') {
			i++;
			if (num(path, &i, b, &p->sub) == -1)
				return path_err(err, errlen, path, i,
				    "subcomponent number must be 1 to 9999 (no "
				    "leading zeros)");
		}
	}
	if (i < b)
		return path_err(err, errlen, path, i, path[i] == '#' ?
		    "the repeat (#R) comes before the component (.C)" :
		    "unexpected character after the path");
	return 0;
}

/* parse_chain: the alternatives of path into ps[0 .. *n). */
static int
parse_chain(const char *path, struct hl7_path *ps, size_t *n, char *err,
    size_t errlen)
{
	size_t len, a, b, x, y;

	*n = 0;
	if (path == NULL)
		path = "";
	len = strnlen(path, PATH_MAX_LEN + 1);
	if (len > PATH_MAX_LEN) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "path too long (more than %d "
			    "bytes)", PATH_MAX_LEN);
		return -1;
	}
	for (a = 0;; a = b + 1) {
		for (b = a; b < len && path[b] != '|'; b++)
			;
		for (x = a; x < b && path[x] == ' '; x++)
			;
		for (y = b; y > x && path[y - 1] == ' '; y--)
			;
		if (x == y) {
			if (err != NULL && errlen > 0)
				snprintf(err, errlen, "'%s': empty path at "
				    "offset %zu", path, x);
			return -1;
		}
		if (*n == PATH_MAX_ALT) {
			if (err != NULL && errlen > 0)
				snprintf(err, errlen, "'%s': more than %d "
				    "alternatives", path, PATH_MAX_ALT);
			return -1;
		}
		if (parse_one(path, x, y, &ps[*n], err, errlen) == -1)
			return -1;
		++*n;
		if (b == len)
			return 0;
	}
}

int
hl7_path_check(const char *path, char *err, size_t errlen)
{
	struct hl7_path ps[PATH_MAX_ALT];
	size_t n;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	return parse_chain(path, ps, &n, err, errlen);
}

/* ---- finding the raw bytes ---- */

/* narrow: to the k-th (1-based) piece of s[0..*n) split on d; k = 0
 * keeps it whole. 0 when there are fewer pieces. */
static int
narrow(const char **s, size_t *n, char d, uint32_t k)
{
	const char *p = *s, *end = *s + *n, *q;

	if (k == 0)
		return 1;
	while (--k > 0) {
		q = memchr(p, d, (size_t)(end - p));
		if (q == NULL)
			return 0;
		p = q + 1;
	}
	q = memchr(p, d, (size_t)(end - p));
	*s = p;
	*n = (size_t)((q != NULL ? q : end) - p);
	return 1;
}

int
hl7__raw(const struct hl7_msg *m, const struct hl7_path *p, const char **s,
    size_t *n, int *literal)
{
	const struct hl7_seg *sg = hl7__seg(m, p->seg);
	const struct hl7_span *f;

	*literal = 0;
	if (sg == NULL || p->field == 0 || p->field > sg->nfields)
		return 0;
	f = &m->fields[sg->field0 + p->field - 1];
	*s = m->buf + f->off;
	*n = f->len;
	if (sg == &m->segs[0] && p->field <= 2) {
		*literal = 1;
		return p->rep <= 1 && p->comp <= 1 && p->sub <= 1;
	}
	return narrow(s, n, m->rs, p->rep) && narrow(s, n, m->cs, p->comp) &&
	    narrow(s, n, m->ss, p->sub);
}

/* ---- unescaping ---- */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* hex: n hex digits (n even) at s into bytes at o; -1 when not hex. */
static int
hex(const char *s, size_t n, char *o)
{
	size_t i;
	int hi, lo;

	if (n == 0 || n % 2 != 0)
		return -1;
	for (i = 0; i < n; i += 2) {
		if ((hi = hexval(s[i])) < 0 || (lo = hexval(s[i + 1])) < 0)
			return -1;
		o[i / 2] = (char)(hi << 4 | lo);
	}
	return (int)(n / 2);
}

/*
 * escape: the bytes for the escape whose body (between the escape
 * characters) is s[0..n), written at o; returns how many, or -1 for an
 * escape we do not know (the caller keeps it literally). Never more than
 * n + 1 bytes.
 */
static int
escape(const struct hl7_msg *m, const char *s, size_t n, char *o)
{
	int k;

	if (n == 1) {
		switch (s[0]) {
		case 'F': o[0] = m->fs; return 1;
		case 'S': o[0] = m->cs; return 1;
		case 'T': o[0] = m->ss; return 1;
		case 'R': o[0] = m->rs; return 1;
		case 'E': o[0] = m->es; return 1;
		case 'P': if (m->tc == 0) return -1;
			o[0] = m->tc; return 1;
		case 'H': case 'N': return 0;	/* highlighting */
		default: return -1;
		}
	}
	if (n == 0)
		return -1;
	switch (s[0]) {
	case 'X':
		return hex(s + 1, n - 1, o);
	case 'C':	/* ISO 2022: ESC xx yy */
	case 'M':	/* ESC xx yy, ESC xx yy zz */
		if (!(n == 5 || (s[0] == 'M' && n == 7)))
			return -1;
		o[0] = 0x1b;
		k = hex(s + 1, n - 1, o + 1);
		return k < 0 ? -1 : k + 1;
	case 'Z':	/* locally defined: meaning unknown here */
		return 0;
	case '.':
		if (n == 3 && memcmp(s, ".br", 3) == 0) {
			o[0] = '\n';
			return 1;
		}
		if (n >= 3 && memcmp(s, ".sp", 3) == 0) {
			o[0] = '\n';	/* one line, whatever the count */
			return 1;
		}
		if ((n == 3 && (memcmp(s, ".fi", 3) == 0 ||
		    memcmp(s, ".nf", 3) == 0 || memcmp(s, ".ce", 3) == 0)) ||
		    (n >= 3 && (memcmp(s, ".in", 3) == 0 ||
		    memcmp(s, ".ti", 3) == 0 || memcmp(s, ".sk", 3) == 0)))
			return 0;
		return -1;
	default:
		return -1;
	}
}

/* unescape: s[0..n) into o (room for n bytes); returns the length. */
static size_t
unescape(const struct hl7_msg *m, const char *s, size_t n, char *o)
{
	size_t i = 0, k = 0, j;
	int r;

	while (i < n) {
		if (s[i] != m->es) {
			o[k++] = s[i++];
			continue;
		}
		for (j = i + 1; j < n && s[j] != m->es; j++)
			;
		if (j == n) {		/* unterminated: literal */
			memcpy(o + k, s + i, n - i);
			return k + (n - i);
		}
		r = escape(m, s + i + 1, j - i - 1, o + k);
		if (r < 0) {		/* unknown: literal */
			memcpy(o + k, s + i, j + 1 - i);
			k += j + 1 - i;
		} else
			k += (size_t)r;
		i = j + 1;
	}
	return k;
}

enum hl7_get_result
hl7__value(const struct hl7_msg *m, const char *s, size_t n, int literal,
    char *out, size_t cap)
{
	char stack[STACK_BUF], *tmp = stack, one;
	size_t k;
	int r;

	if (cap == 0) {		/* measure with room for the NUL only */
		out = &one;
		cap = 1;
	}
	out[0] = '\0';
	if (literal) {
		if (n == 0)
			return HL7_ABSENT;
		if (n >= cap)
			return HL7_TOOLONG;
		memcpy(out, s, n);
		out[n] = '\0';
		return HL7_FOUND;
	}
	if (n > sizeof(stack) && (tmp = malloc(n)) == NULL)
		abort();
	k = unescape(m, s, n, tmp);
	r = k == 0 ? 0 : ds_cs_decode(m->dcs, DS_VR_UT, (const uint8_t *)tmp,
	    k, out, cap, NULL);
	if (tmp != stack)
		free(tmp);
	if (r < 0)
		return HL7_TOOLONG;
	return r > 0 ? HL7_FOUND : HL7_ABSENT;
}

/* ---- the public look-ups ---- */

enum hl7_get_result
hl7_lookup(const struct hl7_msg *m, const char *path, char *out, size_t cap)
{
	struct hl7_path ps[PATH_MAX_ALT];
	enum hl7_get_result r;
	const char *s;
	size_t n, i, len;
	int lit;

	if (cap > 0)
		out[0] = '\0';
	if (parse_chain(path, ps, &n, NULL, 0) == -1)
		return HL7_BADPATH;
	for (i = 0; i < n; i++) {
		if (!hl7__raw(m, &ps[i], &s, &len, &lit))
			continue;
		r = hl7__value(m, s, len, lit, out, cap);
		if (r == HL7_FOUND)
			return r;
		if (cap > 0)
			out[0] = '\0';
		if (r == HL7_TOOLONG)
			return r;
	}
	return HL7_ABSENT;
}

const char *
hl7_get(const struct hl7_msg *m, const char *path, char *out, size_t cap)
{
	return hl7_lookup(m, path, out, cap) == HL7_FOUND ? out : NULL;
}
