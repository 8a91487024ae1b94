/*
 * vfy_json.c — the strict JSON validator (vfy_json.h). A recursive
 * descent over RFC 8259's grammar with a depth limit; strings are checked
 * for UTF-8 (RFC 3629: no overlong forms, no surrogates, at most
 * U+10FFFF) and escapes (a \u high surrogate must be followed by a \u low
 * one). Only the top-level keys are decoded, to find "seq" and "prev".
 * The cursor functions at the end (vfy_jcur_*) expose the same grammar,
 * piece by piece, to readers of larger documents (vfy_report.c).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "src/verify/vfy_json.h"

/* A decoded string, kept only up to CAP bytes. */
struct jstr {
	char	*buf;
	size_t	 cap, len;
	int	 over;		/* longer than cap */
};

static int	value(struct vfy_jcur *);

static int
bad(struct vfy_jcur *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
bad(struct vfy_jcur *j, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (j->failed)
		return -1;
	j->failed = 1;
	k = snprintf(j->err, j->errlen, "byte %zu: ", j->i);
	if (k < 0 || (size_t)k >= j->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(j->err + k, j->errlen - (size_t)k, fmt, ap);
	va_end(ap);
	return -1;
}

static void
ws(struct vfy_jcur *j)
{
	while (j->i < j->n && (j->p[j->i] == ' ' || j->p[j->i] == '\t' ||
	    j->p[j->i] == '\n' || j->p[j->i] == '\r'))
		j->i++;
}

static int
peek(const struct vfy_jcur *j)
{
	return j->i < j->n ? j->p[j->i] : -1;
}

static void
put(struct jstr *s, const unsigned char *b, size_t n)
{
	if (s == NULL)
		return;
	if (s->over || n > s->cap - s->len) {
		s->over = 1;
		return;
	}
	memcpy(s->buf + s->len, b, n);
	s->len += n;
}

/* Code point CP as UTF-8 into S. */
static void
put_cp(struct jstr *s, unsigned long cp)
{
	unsigned char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | cp >> 6);
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | cp >> 12);
		b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | cp >> 18);
		b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	put(s, b, n);
}

/* Length of the valid UTF-8 sequence at P (N bytes left), 0 if invalid. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, k;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;		/* overlong */
		else if (p[0] == 0xed)
			hi = 0x9f;		/* surrogates */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		if (p[0] == 0xf0)
			lo = 0x90;		/* overlong */
		else if (p[0] == 0xf4)
			hi = 0x8f;		/* above U+10FFFF */
	} else
		return 0;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (k = 2; k < len; k++)
		if (p[k] < 0x80 || p[k] > 0xbf)
			return 0;
	return len;
}

/* Four hex digits after "\u"; -1 when they are not. */
static long
hex4(struct vfy_jcur *j)
{
	long v = 0;

	if (j->n - j->i < 4)
		return -1;
	for (int k = 0; k < 4; k++) {
		int c = j->p[j->i + (size_t)k];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	j->i += 4;
	return v;
}

/* The escape after a backslash (j->i at the character after it). */
static int
escape(struct vfy_jcur *j, struct jstr *out)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *e;
	long cp, lo;
	int c = peek(j);

	if (c > 0 && c != 'u' && (e = strchr(from, c)) != NULL) {
		unsigned char b = (unsigned char)to[e - from];

		put(out, &b, 1);
		j->i++;
		return 0;
	}
	if (c != 'u')
		return bad(j, "invalid escape in a string");
	j->i++;
	if ((cp = hex4(j)) < 0)
		return bad(j, "\\u must be followed by four hex digits");
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return bad(j, "\\u%04lx is a lone low surrogate", cp);
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (j->n - j->i < 2 || j->p[j->i] != '\\' ||
		    j->p[j->i + 1] != 'u')
			return bad(j, "\\u%04lx (a high surrogate) is not "
			    "followed by a \\u low surrogate", cp);
		j->i += 2;
		if ((lo = hex4(j)) < 0 || lo < 0xdc00 || lo > 0xdfff)
			return bad(j, "\\u%04lx (a high surrogate) is not "
			    "followed by a \\u low surrogate", cp);
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	put_cp(out, (unsigned long)cp);
	return 0;
}

/* A string (j->i at its opening quote), decoded into OUT when not NULL. */
static int
string(struct vfy_jcur *j, struct jstr *out)
{
	size_t len;

	j->i++;
	for (;;) {
		int c = peek(j);

		if (c < 0)
			return bad(j, "the input ends inside a string");
		if (c == '"') {
			j->i++;
			return 0;
		}
		if (c == '\\') {
			j->i++;
			if (escape(j, out) < 0)
				return -1;
			continue;
		}
		if (c < 0x20)
			return bad(j, "control character 0x%02x in a string "
			    "(must be escaped)", c);
		if ((len = utf8_len(j->p + j->i, j->n - j->i)) == 0)
			return bad(j, "invalid UTF-8 in a string");
		put(out, j->p + j->i, len);
		j->i += len;
	}
}

static int
digits(struct vfy_jcur *j)
{
	size_t start = j->i;

	while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9')
		j->i++;
	return j->i > start ? 0 : -1;
}

/*
 * A number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?. *U gets its
 * value and *is_u is set when it is an integer in 0 .. 2^64-1 written
 * without sign, fraction or exponent.
 */
static int
number(struct vfy_jcur *j, uint64_t *u, int *is_u)
{
	size_t start = j->i;
	int plain = 1;
	uint64_t v = 0;

	if (peek(j) == '-') {
		j->i++;
		plain = 0;
	}
	if (peek(j) == '0')
		j->i++;
	else if (digits(j) < 0)
		return bad(j, "invalid number");
	for (size_t k = start; plain && k < j->i; k++) {
		unsigned d = (unsigned)(j->p[k] - '0');

		if (v > (UINT64_MAX - d) / 10)
			plain = 0;
		else
			v = v * 10 + d;
	}
	if (peek(j) == '.') {
		j->i++;
		plain = 0;
		if (digits(j) < 0)
			return bad(j, "invalid number: no digit after '.'");
	}
	if (peek(j) == 'e' || peek(j) == 'E') {
		j->i++;
		plain = 0;
		if (peek(j) == '+' || peek(j) == '-')
			j->i++;
		if (digits(j) < 0)
			return bad(j, "invalid number: no digit in the "
			    "exponent");
	}
	if (u != NULL)
		*u = v;
	if (is_u != NULL)
		*is_u = plain;
	return 0;
}

static int
literal(struct vfy_jcur *j, const char *word)
{
	size_t n = strlen(word);

	if (j->n - j->i < n || memcmp(j->p + j->i, word, n) != 0)
		return bad(j, "unexpected character '%c'", j->p[j->i]);
	j->i += n;
	return 0;
}

/* A top-level member's value: "seq" and "prev" are kept. */
static int
top_member(struct vfy_jcur *j, const struct jstr *key, struct vfy_leaf *leaf)
{
	if (key->len == 3 && memcmp(key->buf, "seq", 3) == 0) {
		if (leaf->has_seq)
			return bad(j, "a second \"seq\"");
		leaf->has_seq = 1;
		if (peek(j) == '-' || (peek(j) >= '0' && peek(j) <= '9'))
			return number(j, &leaf->seq, &leaf->seq_ok);
		return value(j);
	}
	if (key->len == 4 && memcmp(key->buf, "prev", 4) == 0) {
		struct jstr s = { leaf->prev, sizeof(leaf->prev) - 1, 0, 0 };

		if (leaf->has_prev)
			return bad(j, "a second \"prev\"");
		leaf->has_prev = 1;
		if (peek(j) != '"')
			return value(j);
		if (string(j, &s) < 0)
			return -1;
		leaf->prev_ok = !s.over;
		leaf->prev[s.over ? 0 : s.len] = '\0';
		return 0;
	}
	return value(j);
}

/* An object (j->i at '{'); LEAF is set for the top level only. */
static int
object(struct vfy_jcur *j, struct vfy_leaf *leaf)
{
	char kb[8];
	int r;

	j->i++;
	ws(j);
	if (peek(j) == '}') {
		j->i++;
		return 0;
	}
	for (;;) {
		struct jstr key = { kb, sizeof(kb), 0, 0 };

		if (peek(j) != '"')
			return bad(j, "expected a string (an object key)");
		if (string(j, leaf != NULL ? &key : NULL) < 0)
			return -1;
		ws(j);
		if (peek(j) != ':')
			return bad(j, "expected ':' after an object key");
		j->i++;
		ws(j);
		if (leaf != NULL && !key.over)
			r = top_member(j, &key, leaf);
		else
			r = value(j);
		if (r < 0)
			return -1;
		ws(j);
		if (peek(j) == '}') {
			j->i++;
			return 0;
		}
		if (peek(j) != ',')
			return bad(j, "expected ',' or '}' in an object");
		j->i++;
		ws(j);
	}
}

static int
array(struct vfy_jcur *j)
{
	j->i++;
	ws(j);
	if (peek(j) == ']') {
		j->i++;
		return 0;
	}
	for (;;) {
		if (value(j) < 0)
			return -1;
		ws(j);
		if (peek(j) == ']') {
			j->i++;
			return 0;
		}
		if (peek(j) != ',')
			return bad(j, "expected ',' or ']' in an array");
		j->i++;
		ws(j);
	}
}

static int
value(struct vfy_jcur *j)
{
	int c = peek(j), r;

	switch (c) {
	case -1:
		return bad(j, "the input ends where a value should be");
	case '{':
	case '[':
		if (j->depth >= VFY_JSON_DEPTH)
			return bad(j, "nested deeper than %d",
			    VFY_JSON_DEPTH);
		j->depth++;
		r = c == '{' ? object(j, NULL) : array(j);
		j->depth--;
		return r;
	case '"':
		return string(j, NULL);
	case 't':
		return literal(j, "true");
	case 'f':
		return literal(j, "false");
	case 'n':
		return literal(j, "null");
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return number(j, NULL, NULL);
		if (c >= 0x20 && c < 0x7f)
			return bad(j, "unexpected character '%c'", c);
		return bad(j, "unexpected byte 0x%02x", (unsigned)c);
	}
}

int
vfy_json_leaf(const char *p, size_t n, struct vfy_leaf *leaf, char *err,
    size_t errlen)
{
	struct vfy_jcur j;

	vfy_jcur_init(&j, p, n, err, errlen);
	j.depth = 1;

	memset(leaf, 0, sizeof(*leaf));
	ws(&j);
	if (peek(&j) != '{')
		return bad(&j, "a leaf must be a JSON object");
	if (object(&j, leaf) < 0)
		return -1;
	ws(&j);
	if (j.i != j.n)
		return bad(&j, "data after the object");
	return 0;
}

/* ---------------------------------------------------------------------- */
/* The cursor (vfy_json.h). */

void
vfy_jcur_init(struct vfy_jcur *j, const void *p, size_t n, char *err,
    size_t errlen)
{
	memset(j, 0, sizeof(*j));
	j->p = p;
	j->n = n;
	j->err = err;
	j->errlen = errlen;
	if (errlen > 0)
		err[0] = '\0';
}

int
vfy_jcur_peek(struct vfy_jcur *j)
{
	ws(j);
	return peek(j);
}

int
vfy_jcur_skip(struct vfy_jcur *j)
{
	ws(j);
	return value(j);
}

int
vfy_jcur_string(struct vfy_jcur *j, char *buf, size_t cap, size_t *len)
{
	struct jstr s = { buf, cap > 0 ? cap - 1 : 0, 0, 0 };

	ws(j);
	if (peek(j) != '"')
		return bad(j, "expected a string");
	if (string(j, buf != NULL ? &s : NULL) < 0)
		return -1;
	if (buf != NULL && cap > 0)
		buf[s.over ? 0 : s.len] = '\0';
	if (len != NULL)
		*len = s.len;
	return s.over ? 1 : 0;
}

int
vfy_jcur_u64(struct vfy_jcur *j, uint64_t *v)
{
	int is_u = 0, c = vfy_jcur_peek(j);

	if (c != '-' && (c < '0' || c > '9'))
		return value(j) < 0 ? -1 : 1;
	if (number(j, v, &is_u) < 0)
		return -1;
	return is_u ? 0 : 1;
}

int
vfy_jcur_open(struct vfy_jcur *j, int c)
{
	if (vfy_jcur_peek(j) != c)
		return bad(j, "expected '%c'", c);
	if (j->depth >= VFY_JSON_DEPTH)
		return bad(j, "nested deeper than %d", VFY_JSON_DEPTH);
	j->depth++;
	j->i++;
	j->first = 1;
	return 0;
}

int
vfy_jcur_next(struct vfy_jcur *j, int close, char *key, size_t cap)
{
	int c = vfy_jcur_peek(j), r;

	if (c == close) {
		j->i++;
		j->depth--;
		j->first = 0;
		return 0;
	}
	if (!j->first) {
		if (c != ',')
			return bad(j, "expected ',' or '%c'", close);
		j->i++;
	}
	j->first = 0;
	if (close == ']')
		return 1;
	if ((r = vfy_jcur_string(j, key, cap, NULL)) < 0)
		return -1;
	if (r == 1 && key != NULL && cap > 0)
		key[0] = '\0';		/* too long: no key we look for */
	if (vfy_jcur_peek(j) != ':')
		return bad(j, "expected ':' after an object key");
	j->i++;
	return 1;
}

int
vfy_jcur_end(struct vfy_jcur *j)
{
	ws(j);
	if (j->i != j->n)
		return bad(j, "data after the value");
	return 0;
}

int
vfy_jcur_fail(struct vfy_jcur *j, const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return bad(j, "%s", msg);
}

size_t
vfy_utf8_len(const unsigned char *p, size_t n)
{
	return n == 0 ? 0 : utf8_len(p, n);
}
