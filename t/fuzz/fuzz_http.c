/*
 * fuzz_http.c — libFuzzer entry point for the request path of the REST
 * API: http_req (llhttp, strict) and then the router (http_route_match
 * over the API's own route table, src/api/api_routes.h) and the query
 * reader, for every request the bytes hold.
 *
 * Besides crashes and leaks it checks the router's contract: a match has
 * its route and every parameter decoded, non-empty, without '/', NUL or
 * control bytes; 405 lists the methods that would match; matching is
 * deterministic (the same path twice gives the same answer); and a query
 * value is either absent (-1), refused (-2) or exactly as long as said.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_req.h"
#include "http/http_route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond) do { if (!(cond)) abort(); } while (0)

/* The API's routes without their handlers: only the patterns matter. */
#define API_ROUTE(m, p, ...) { m, p, NULL },
static const struct http_route routes[] = {
#include "src/api/api_routes.h"
};
#undef API_ROUTE
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static const struct http_req_limits lim = {
	.max_header_bytes = 2048,
	.max_headers = 16,
	.max_url = 512,
	.max_body = 1024,
};

static const char *const qnames[] = { "seq", "size", "from", "to", "limit",
	"after", "state", "zstd", "" };

static void
route_one(const struct http_req *r)
{
	struct http_match m, m2;
	const char *method = http_req_method(r), *path = http_req_path(r);
	int rc = http_route_match(routes, NROUTES, method, path, &m);
	char buf[64];

	check(rc == 200 || rc == 404 || rc == 405);
	check(http_route_match(routes, NROUTES, method, path, &m2) == rc);
	if (rc == 200) {
		check(m.route != NULL && m.route == m2.route);
		check(m.nparams <= HTTP_ROUTE_PARAMS);
		for (size_t i = 0; i < m.nparams; i++) {
			const char *v = m.param[i].value;

			check(v[0] != '\0');
			check(strlen(v) <= HTTP_ROUTE_PARAM_MAX);
			for (const char *p = v; *p; p++)
				check(*p != '/' && (unsigned char)*p >= 0x20 &&
				    *p != 0x7f);
			check(http_match_param(&m, m.param[i].name) != NULL);
		}
	} else if (rc == 405)
		check(m.allow[0] != '\0' && m.route == NULL);
	else
		check(m.route == NULL);
	for (size_t i = 0; i < sizeof(qnames) / sizeof(qnames[0]); i++) {
		int n = http_query_get(http_req_query(r), qnames[i], buf,
		    sizeof(buf));

		check(n >= -2);
		if (n >= 0)
			check((size_t)n == strlen(buf) && (size_t)n <
			    sizeof(buf));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_req *r = http_req_new(&lim);
	size_t pos = 0, used;
	char out[64];

	while (pos < size) {
		enum http_req_result rc = http_req_feed(r, (const char *)data +
		    pos, size - pos, &used);

		pos += used;
		if (rc == HTTP_REQ_DONE) {
			route_one(r);
			http_req_next(r);
		} else if (rc != HTTP_REQ_CONTINUE)
			break;
	}
	if (http_req_eof(r) == HTTP_REQ_DONE)
		route_one(r);
	http_req_free(r);
	/* the decoder on its own, over the raw bytes */
	if (http_pct_decode((const char *)data, size < 80 ? size : 80,
	    size & 1, out, sizeof(out)) >= 0)
		check(strlen(out) < sizeof(out));
	return 0;
}
