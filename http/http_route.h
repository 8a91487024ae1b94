/*
 * http_route.h — the REST API's router: a table of (method, pattern)
 * routes with {name} path parameters, matched against a request path.
 * Pure: no sockets, no JSON. Also the query-string reader.
 *
 * A pattern is a sequence of "/literal" and "/{name}" segments; a
 * parameter matches one non-empty segment, percent-decoded, which must not
 * decode to a '/', a NUL or a control character (such a path matches
 * nothing: 404). Literal segments are compared byte for byte with the raw
 * path; "." and ".." segments and empty segments ("//") never match.
 */
#ifndef VNAMIG_HTTP_ROUTE_H
#define VNAMIG_HTTP_ROUTE_H

#include <stddef.h>

#define HTTP_ROUTE_PARAMS	4	/* per pattern */
#define HTTP_ROUTE_PARAM_MAX	256	/* decoded bytes per parameter */

struct http_route {
	const char	*method;	/* "GET", "POST", "DELETE"; GET also
					 * answers HEAD */
	const char	*pattern;	/* "/api/batches/{id}/pause" */
	const void	*data;		/* the caller's (handler, role ...) */
};

struct http_match {
	const struct http_route	*route;		/* on 200 */
	size_t			 nparams;
	struct {
		char	name[32];
		char	value[HTTP_ROUTE_PARAM_MAX + 1];
	} param[HTTP_ROUTE_PARAMS];
	char			 allow[64];	/* on 405: "GET, HEAD, POST" */
};

/*
 * http_route_match: 200 with m->route set; 404 when no pattern matches the
 * path; 405 when some do but not for this method (m->allow lists the
 * methods that would).
 */
int http_route_match(const struct http_route *table, size_t n,
    const char *method, const char *path, struct http_match *m);

/* A parameter's decoded value by name, or NULL. */
const char *http_match_param(const struct http_match *m, const char *name);

/*
 * http_query_get: the first NAME=VALUE in an application/x-www-form-
 * urlencoded query ("a=1&b=x%20y"), '+' and %XX decoded, into buf.
 * Returns the decoded length, -1 when absent, -2 when the value does not
 * fit in cap - 1 bytes or is badly encoded (a '%' without two hex digits,
 * or a decoded NUL). A name without '=' has the value "".
 */
int http_query_get(const char *query, const char *name, char *buf,
    size_t cap);

/*
 * http_pct_decode: percent-decode len bytes (also '+' → ' ' when plus) into
 * out (cap bytes incl. the NUL). -1 on a bad escape, a NUL, or no room.
 */
int http_pct_decode(const char *s, size_t len, int plus, char *out,
    size_t cap);

#endif
