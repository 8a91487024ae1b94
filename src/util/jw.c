/*
 * jw.c — see jw.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/util/jw.h"

static void
grow(struct jw *w, size_t more)
{
	size_t cap;
	char *p;

	if (w->n + more <= w->cap)
		return;
	cap = w->cap ? w->cap : 1024;
	while (cap < w->n + more)
		cap *= 2;
	if ((p = realloc(w->p, cap)) == NULL)
		abort();
	w->p = p;
	w->cap = cap;
}

static void
put(struct jw *w, const char *s, size_t n)
{
	grow(w, n);
	memcpy(w->p + w->n, s, n);
	w->n += n;
}

static void
quoted(struct jw *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	grow(w, n + 2);
	w->p[w->n++] = '"';
	while (p < end) {
		const unsigned char *run = p;

		while (p < end && *p >= 0x20 && *p != '"' && *p != '\\')
			p++;
		if (p > run)
			put(w, (const char *)run, (size_t)(p - run));
		if (p >= end)
			break;
		switch (*p) {
		case '"':  put(w, "\\\"", 2); break;
		case '\\': put(w, "\\\\", 2); break;
		case '\n': put(w, "\\n", 2); break;
		case '\r': put(w, "\\r", 2); break;
		case '\t': put(w, "\\t", 2); break;
		default: {
			char u[6] = { '\\', 'u', '0', '0', hex[*p >> 4],
			    hex[*p & 15] };

			put(w, u, 6);
		}
		}
		p++;
	}
	put(w, "\"", 1);
}

static void
key(struct jw *w, const char *k)
{
	if (!w->first)
		put(w, ",", 1);
	w->first = 0;
	quoted(w, k, strlen(k));
	put(w, ":", 1);
}

void
jw_open(struct jw *w)
{
	w->n = 0;
	w->first = 1;
	put(w, "{", 1);
}

void
jw_close(struct jw *w)
{
	put(w, "}", 1);
	w->first = 0;	/* (a nested one is a member of its parent) */
}

void
jw_object(struct jw *w, const char *k)
{
	key(w, k);
	put(w, "{", 1);
	w->first = 1;
}

void
jw_array(struct jw *w, const char *k)
{
	key(w, k);
	put(w, "[", 1);
	w->first = 1;
}

void
jw_item(struct jw *w, const char *s)
{
	if (!w->first)
		put(w, ",", 1);
	w->first = 0;
	quoted(w, s, strlen(s));
}

void
jw_array_end(struct jw *w)
{
	put(w, "]", 1);
	w->first = 0;
}

void
jw_free(struct jw *w)
{
	free(w->p);
	w->p = NULL;
	w->n = w->cap = 0;
}

static void scrub_n(unsigned char *p, size_t n);

void
jw_strn(struct jw *w, const char *k, const char *s, size_t n)
{
	char *c;

	key(w, k);
	if (jw_utf8(s, n)) {
		quoted(w, s, n);
		return;
	}
	/* JSON is UTF-8: a byte that is not part of a character is
	 * written as '?' (a reader refused the whole record before) */
	if ((c = malloc(n ? n : 1)) == NULL)
		abort();
	memcpy(c, s, n);
	scrub_n((unsigned char *)c, n);
	quoted(w, c, n);
	free(c);
}

void
jw_str(struct jw *w, const char *k, const char *s)
{
	jw_strn(w, k, s, strlen(s));
}

void
jw_int(struct jw *w, const char *k, int64_t v)
{
	char b[24];

	key(w, k);
	put(w, b, (size_t)snprintf(b, sizeof(b), "%lld", (long long)v));
}

void
jw_bool(struct jw *w, const char *k, int v)
{
	key(w, k);
	put(w, v ? "true" : "false", v ? 4 : 5);
}

void
jw_null(struct jw *w, const char *k)
{
	key(w, k);
	put(w, "null", 4);
}

void
jw_json(struct jw *w, const char *k, const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS |
	    JSON_ENCODE_ANY);

	key(w, k);
	if (s == NULL)
		put(w, "null", 4);
	else
		put(w, s, strlen(s));
	free(s);
}

/* utf8_seq: the length of the well-formed UTF-8 character at p (RFC 3629:
 * no overlong forms, no surrogates, at most U+10FFFF), or 0. */
static size_t
utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned c = *p;
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if ((size_t)(end - p) < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3fu);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* Well-formed UTF-8, as jansson demands of a string. */
int
jw_utf8(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (p < end) {
		size_t len = utf8_seq(p, end);

		if (len == 0)
			return 0;
		p += len;
	}
	return 1;
}

static void
scrub_n(unsigned char *p, size_t n)
{
	unsigned char *end = p + n;

	while (p < end) {
		size_t len = utf8_seq(p, end);

		if (len == 0) {
			*p++ = '?';
			continue;
		}
		p += len;
	}
}

size_t
jw_utf8_cut(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n <= max)
		return n;
	/* s[max] is the first byte left out: back to a character's start */
	for (n = max; n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80; n--)
		;
	return n;
}

void
jw_utf8_scrub(char *s)
{
	scrub_n((unsigned char *)s, strlen(s));
}
