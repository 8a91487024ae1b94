/*
 * http_route.c — path-pattern matching and query-string decoding for the
 * REST API. See http_route.h.
 *
 * The table is small (a few dozen routes) and matched linearly: a request
 * costs a few string compares, far below the cost of parsing it.
 */
#include "config.h"

#include <string.h>

#include "http/http_route.h"
#include "src/util/hex.h"

int
http_pct_decode(const char *s, size_t len, int plus, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int h, l;

			if (i + 2 >= len)
				return -1;
			h = hex_digit((unsigned char)s[i + 1]);
			l = hex_digit((unsigned char)s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = h << 4 | l;
			i += 2;
		} else if (c == '+' && plus)
			c = ' ';
		if (c == 0 || o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	if (cap == 0)
		return -1;
	out[o] = '\0';
	return (int)o;
}

/* One segment of the path: [*p, end) after the leading '/'. */
static size_t
seglen(const char *p)
{
	size_t n = 0;

	while (p[n] != '\0' && p[n] != '/')
		n++;
	return n;
}

/* Does path match pattern? Fills the parameters when it does. */
static int
match_one(const char *pattern, const char *path, struct http_match *m)
{
	const char *pp = pattern, *sp = path;

	m->nparams = 0;
	for (;;) {
		size_t pl, sl;

		if (*pp == '\0' || *sp == '\0')
			return *pp == '\0' && *sp == '\0';
		if (*pp != '/' || *sp != '/')
			return 0;
		pp++;
		sp++;
		pl = seglen(pp);
		sl = seglen(sp);
		if (sl == 0 || (sl == 1 && sp[0] == '.') ||
		    (sl == 2 && sp[0] == '.' && sp[1] == '.'))
			return 0;
		if (pl >= 2 && pp[0] == '{' && pp[pl - 1] == '}') {
			size_t k = m->nparams, nl = pl - 2;
			char *v;
			int dl;

			if (k >= HTTP_ROUTE_PARAMS ||
			    nl >= sizeof(m->param[k].name))
				return 0;
			memcpy(m->param[k].name, pp + 1, nl);
			m->param[k].name[nl] = '\0';
			v = m->param[k].value;
			dl = http_pct_decode(sp, sl, 0, v,
			    sizeof(m->param[k].value));
			if (dl <= 0)
				return 0;
			for (int i = 0; i < dl; i++)
				if (v[i] == '/' || (unsigned char)v[i] < 0x20 ||
				    v[i] == 0x7f)
					return 0;
			m->nparams++;
		} else if (pl != sl || memcmp(pp, sp, sl) != 0)
			return 0;
		pp += pl;
		sp += sl;
	}
}

static void
allow_add(char *allow, size_t cap, const char *method)
{
	size_t n = strlen(allow);

	if (strstr(allow, method) != NULL)
		return;
	if (n > 0 && n + 2 < cap) {
		memcpy(allow + n, ", ", 3);
		n += 2;
	}
	if (n + strlen(method) < cap)
		memcpy(allow + n, method, strlen(method) + 1);
}

int
http_route_match(const struct http_route *table, size_t n,
    const char *method, const char *path, struct http_match *m)
{
	int seen = 0;
	const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
	struct http_match scratch;

	m->route = NULL;
	m->nparams = 0;
	m->allow[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (strcmp(table[i].method, want) == 0) {
			if (match_one(table[i].pattern, path, m)) {
				m->route = &table[i];
				return 200;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!match_one(table[i].pattern, path, &scratch))
			continue;
		seen = 1;
		allow_add(m->allow, sizeof(m->allow), table[i].method);
		if (strcmp(table[i].method, "GET") == 0)
			allow_add(m->allow, sizeof(m->allow), "HEAD");
	}
	m->nparams = 0;
	return seen ? 405 : 404;
}

const char *
http_match_param(const struct http_match *m, const char *name)
{
	for (size_t i = 0; i < m->nparams; i++)
		if (strcmp(m->param[i].name, name) == 0)
			return m->param[i].value;
	return NULL;
}

int
http_query_get(const char *query, const char *name, char *buf, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = query;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len >= nl && memcmp(p, name, nl) == 0 &&
		    (len == nl || p[nl] == '=')) {
			const char *v = len == nl ? p + nl : p + nl + 1;
			size_t vl = len == nl ? 0 : len - nl - 1;
			int r = http_pct_decode(v, vl, 1, buf, cap);

			return r < 0 ? -2 : r;
		}
		p = end ? end + 1 : NULL;
	}
	return -1;
}
