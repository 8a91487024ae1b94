/*
 * t_http_req.c — tables of wire bytes for http_req: good requests fed
 * whole, one byte at a time and in 3-byte pieces; refusals with their
 * status; pipelining, 100-continue, EOF and the limits at their
 * boundaries.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_req.h"
#include "t/unit/tap.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define WIRE(s)		s, sizeof(s) - 1

static const struct http_req_limits lim = {
	.max_header_bytes = 1024,
	.max_headers = 16,
	.max_url = 256,
	.max_body = 4096,
};

/*
 * feed_all: feed wire[0..len) in pieces of step bytes (0: all at once),
 * draining what each call used, until the parser has a result other
 * than NEED_MORE or the bytes run out. *pos says how far it got.
 */
static enum http_req_result
feed_all(struct http_req *r, const char *wire, size_t len, size_t step,
    size_t *pos)
{
	enum http_req_result rc = HTTP_REQ_NEED_MORE;
	size_t n, used;

	while (*pos < len) {
		n = len - *pos;
		if (step != 0 && n > step)
			n = step;
		rc = http_req_feed(r, wire + *pos, n, &used);
		*pos += used;
		if (rc != HTTP_REQ_NEED_MORE)
			return rc;
		if (used != n)
			return HTTP_REQ_ERROR;	/* NEED_MORE must take all */
	}
	return rc;
}

/* --- one good request, in three feeding patterns ------------------- */

struct good_case {
	const char	*name;
	const char	*wire;
	size_t		 len;
	const char	*method, *target, *path, *query;
	const char	*hname, *hvalue;	/* a header to look up */
	size_t		 nheaders;
	const char	*body;
	int		 keep_alive, minor;
};

static const struct good_case good[] = {
	{ "simple GET",
	  WIRE("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
	  "GET", "/", "/", "", "host", "a", 1, "", 1, 1 },
	{ "query split",
	  WIRE("GET /studies?PatientID=12&limit=5 HTTP/1.1\r\nHost: a\r\n\r\n"),
	  "GET", "/studies?PatientID=12&limit=5", "/studies",
	  "PatientID=12&limit=5", "HOST", "a", 1, "", 1, 1 },
	{ "1.1 keep-alive by default",
	  WIRE("HEAD /x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n"),
	  "HEAD", "/x", "/x", "", "accept", "*/*", 2, "", 1, 1 },
	{ "1.0 closes by default",
	  WIRE("GET /old HTTP/1.0\r\n\r\n"),
	  "GET", "/old", "/old", "", "host", NULL, 0, "", 0, 0 },
	{ "1.0 with Connection: keep-alive",
	  WIRE("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
	  "GET", "/", "/", "", "connection", "keep-alive", 1, "", 1, 0 },
	{ "Connection: close",
	  WIRE("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
	  "GET", "/", "/", "", "Connection", "close", 2, "", 0, 1 },
	{ "POST with body",
	  WIRE("POST /studies HTTP/1.1\r\nHost: a\r\n"
	  "Content-Type: application/dicom\r\nContent-Length: 5\r\n\r\nhello"),
	  "POST", "/studies", "/studies", "", "content-type",
	  "application/dicom", 3, "hello", 1, 1 },
	{ "chunked body",
	  WIRE("PUT /c HTTP/1.1\r\nHost: a\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n"
	  "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"),
	  "PUT", "/c", "/c", "", "x-trailer", NULL, 2, "hello world", 1, 1 },
	{ "POST without length has no body",
	  WIRE("POST /p HTTP/1.1\r\nHost: a\r\n\r\n"),
	  "POST", "/p", "/p", "", "content-length", NULL, 1, "", 1, 1 },
	{ "header value blanks trimmed, names any case",
	  WIRE("GET /q?a HTTP/1.1\r\nX-Thing: \t one two  \t\r\n"
	  "x-empty:\r\nHost: a\r\n\r\n"),
	  "GET", "/q?a", "/q", "a", "X-THING", "one two", 3, "", 1, 1 },
	{ "empty header value",
	  WIRE("GET / HTTP/1.1\r\nX-Empty:\r\nHost: a\r\n\r\n"),
	  "GET", "/", "/", "", "x-empty", "", 2, "", 1, 1 },
	{ "fragment kept out of path and query",
	  WIRE("GET /p?q=1#frag HTTP/1.1\r\nHost: a\r\n\r\n"),
	  "GET", "/p?q=1#frag", "/p", "q=1", "host", "a", 1, "", 1, 1 },
	{ "Upgrade is ignored",
	  WIRE("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
	  "Upgrade: websocket\r\n\r\n"),
	  "GET", "/", "/", "", "upgrade", "websocket", 3, "", 1, 1 },
	{ "leading empty line is skipped",
	  WIRE("\r\nDELETE /s/1 HTTP/1.1\r\nHost: a\r\n\r\n"),
	  "DELETE", "/s/1", "/s/1", "", "host", "a", 1, "", 1, 1 },
};

static void
good_one(const struct good_case *c, size_t step)
{
	struct http_req *r;
	enum http_req_result rc;
	const char *body, *why = NULL;
	size_t pos = 0, blen;
	int pass;

	r = http_req_new(&lim);
	rc = feed_all(r, c->wire, c->len, step, &pos);
	if (!ok(rc == HTTP_REQ_DONE && pos == c->len,
	    "%s (step %zu): DONE, all %zu bytes used", c->name, step, c->len)) {
		diag("  rc %d, used %zu, status %d %s", (int)rc, pos,
		    http_req_error(r, &why), why);
		http_req_free(r);
		return;
	}
	body = http_req_body(r, &blen);
	pass = strcmp(http_req_method(r), c->method) == 0 &&
	    strcmp(http_req_target(r), c->target) == 0 &&
	    strcmp(http_req_path(r), c->path) == 0 &&
	    strcmp(http_req_query(r), c->query) == 0 &&
	    http_req_nheaders(r) == c->nheaders &&
	    blen == strlen(c->body) && memcmp(body, c->body, blen) == 0 &&
	    body[blen] == '\0' &&
	    http_req_keep_alive(r) == c->keep_alive &&
	    http_req_version_minor(r) == c->minor;
	if (!ok(pass, "%s (step %zu): fields", c->name, step))
		diag("  %s \"%s\" path \"%s\" query \"%s\" nh %zu body %zu "
		    "\"%s\" ka %d minor %d", http_req_method(r),
		    http_req_target(r), http_req_path(r), http_req_query(r),
		    http_req_nheaders(r), blen, body, http_req_keep_alive(r),
		    http_req_version_minor(r));
	is_str(http_req_header(r, c->hname), c->hvalue,
	    "%s (step %zu): header %s", c->name, step, c->hname);
	http_req_free(r);
	ok(r == NULL, "%s (step %zu): http_req_free NULLs", c->name, step);
}

/* --- refusals ------------------------------------------------------ */

struct bad_case {
	const char	*name;
	const char	*wire;
	size_t		 len;
	int		 status;
	const char	*reason;	/* a part of the reason */
};

static const struct bad_case bad[] = {
	{ "CL + TE",
	  WIRE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400,
	  "smuggling) at byte 45" },
	{ "TE + CL",
	  WIRE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	  "Content-Length: 5\r\n\r\n0\r\n\r\n"), 400, "smuggling" },
	{ "duplicate CL, equal values",
	  WIRE("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n"
	  "\r\nhello"), 400, "duplicate Content-Length at byte 36" },
	{ "duplicate CL, other case",
	  WIRE("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 6\r\n"
	  "\r\nhello!"), 400, "duplicate Content-Length" },
	{ "CL not a number",
	  WIRE("POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\nhello"), 400,
	  "Content-Length" },
	{ "TE not ending in chunked",
	  WIRE("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nxx"), 400,
	  "Transfer-Encoding" },
	{ "huge Content-Length",
	  WIRE("PUT /big HTTP/1.1\r\nHost: a\r\n"
	  "Content-Length: 1000000000000\r\n\r\n"), 413, "body too large" },
	{ "Content-Length one over",
	  WIRE("PUT /big HTTP/1.1\r\nContent-Length: 4097\r\n\r\n"), 413,
	  "body too large" },
	{ "chunk larger than limit",
	  WIRE("PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "1001\r\n"), 413, "body too large" },
	{ "HTTP/2.0 request line",
	  WIRE("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505, "version" },
	{ "HTTP/1.2",
	  WIRE("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 505, "version" },
	{ "HTTP/0.9",
	  WIRE("GET / HTTP/0.9\r\n\r\n"), 505, "version" },
	{ "HTTP/3.0",
	  WIRE("GET / HTTP/3.0\r\n\r\n"), 505, "version" },
	{ "HTTP/1.x malformed",
	  WIRE("GET / HTTP/1.x\r\n\r\n"), 400, "at byte 13" },
	{ "garbage",
	  WIRE("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 400,
	  "at byte 0" },
	{ "space in header name",
	  WIRE("GET / HTTP/1.1\r\nHost a: b\r\n\r\n"), 400, "at byte 20" },
	{ "bare LF line end",
	  WIRE("GET / HTTP/1.1\nHost: a\n\n"), 400, "at byte" },
	{ "request line without version (HTTP/0.9)",
	  WIRE("GET /HTTP/1.1\r\n\r\n"), 505, "version" },
	{ "space before colon",
	  WIRE("POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello"), 400,
	  "at byte 32" },
	{ "space in other header name",
	  WIRE("GET / HTTP/1.1\r\nX-Foo : bar\r\n\r\n"), 400,
	  "header name at byte 21" },
	{ "tab in URL",
	  WIRE("GET /a\tb HTTP/1.1\r\n\r\n"), 400, "request-target at byte 6" },
	{ "non-ASCII in URL",
	  WIRE("GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n"), 400,
	  "request-target at byte 8" },
	{ "empty request-target",
	  WIRE("CONNECT \r\nHost: a\r\n\r\n"), 400, "empty request-target" },
	{ "empty header name",
	  WIRE("GET / HTTP/1.1\r\n: v\r\n\r\n"), 400, "empty header name" },
	{ "empty trailer name",
	  WIRE("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "0\r\n: v\r\n\r\n"), 400, "empty header name" },
	{ "control char in header value",
	  WIRE("GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n"), 400, "at byte 20" },
	{ "Content-Length past 64 bits",
	  WIRE("POST / HTTP/1.1\r\n"
	  "Content-Length: 99999999999999999999999\r\n\r\n"), 413,
	  "body too large at byte 36" },
	{ "lower-case method",
	  WIRE("get / HTTP/1.1\r\n\r\n"), 400, "at byte 0" },
	{ "bad chunk size",
	  WIRE("PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
	  400, "chunk size" },
};

static void
bad_one(const struct bad_case *c, size_t step)
{
	struct http_req *r;
	enum http_req_result rc;
	const char *why = NULL;
	size_t pos = 0, used;
	int status;

	r = http_req_new(&lim);
	rc = feed_all(r, c->wire, c->len, step, &pos);
	status = http_req_error(r, &why);
	if (!ok(rc == HTTP_REQ_ERROR && status == c->status &&
	    strstr(why, c->reason) != NULL,
	    "%s (step %zu): %d", c->name, step, c->status))
		diag("  rc %d, status %d, reason \"%s\"", (int)rc, status, why);
	else if (step == 0)
		diag("  %d %s", status, why);
	is_int(http_req_feed(r, "GET / HTTP/1.1\r\n\r\n", 18, &used),
	    HTTP_REQ_ERROR, "%s (step %zu): error sticks", c->name, step);
	http_req_free(r);
}

/* Chunks within the limit one by one, but not together: 413 on the last. */
static void
test_chunks_add_up(void)
{
	static const char head[] =
	    "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
	static char chunk[5 + 3072 + 2];
	struct http_req *r;
	const char *why;
	size_t used;

	memcpy(chunk, "C00\r\n", 5);
	memset(chunk + 5, 'x', 3072);
	memcpy(chunk + 5 + 3072, "\r\n", 2);
	r = http_req_new(&lim);
	is_int(http_req_feed(r, WIRE(head), &used), HTTP_REQ_NEED_MORE,
	    "chunks add up: headers");
	is_int(http_req_feed(r, chunk, sizeof(chunk), &used),
	    HTTP_REQ_NEED_MORE, "chunks add up: 3 KiB chunk taken");
	is_int(http_req_feed(r, WIRE("401\r\n"), &used), HTTP_REQ_ERROR,
	    "chunks add up: 3 KiB + 1025 refused");
	is_int(http_req_error(r, &why), 413, "chunks add up: 413");
	ok(strstr(why, "at byte 3131") != NULL,
	    "chunks add up: refused at the chunk header (%s)", why);
	http_req_free(r);
}

/* --- flows --------------------------------------------------------- */

static void
test_pipelined(size_t step)
{
	static const char wire[] =
	    "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
	    "POST /b?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
	    "GET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	static const char *const want[] = { "/a", "/b?x=1", "/c" };
	struct http_req *r;
	size_t pos = 0, i, len = sizeof(wire) - 1;
	size_t size;

	r = http_req_new(&lim);
	for (i = 0; i < NELEM(want); i++) {
		is_int(feed_all(r, wire, len, step, &pos), HTTP_REQ_DONE,
		    "pipelined (step %zu): request %zu DONE", step, i + 1);
		is_str(http_req_target(r), want[i],
		    "pipelined (step %zu): request %zu target", step, i + 1);
		if (i == 0 && step == 0) {
			is_int(pos, 28, "pipelined: first used 28 bytes");
			is_int(http_req_feed(r, wire + pos, len - pos, &size),
			    HTTP_REQ_DONE, "DONE again until next");
			is_int(size, 0, "nothing used before next");
		}
		if (i == 1)
			is_str(http_req_body(r, NULL), "abc",
			    "pipelined (step %zu): body of the second", step);
		http_req_next(r);
	}
	is_int(pos, len, "pipelined (step %zu): all bytes used", step);
	is_int(http_req_eof(r), HTTP_REQ_NEED_MORE,
	    "pipelined (step %zu): EOF after the last is clean", step);
	http_req_free(r);
}

static void
test_after_close(void)
{
	static const char wire[] =
	    "GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n";
	struct http_req *r;
	const char *why;
	size_t used, off;

	r = http_req_new(&lim);
	is_int(http_req_feed(r, WIRE(wire), &used), HTTP_REQ_DONE,
	    "close: first DONE");
	is_int(http_req_keep_alive(r), 0, "close: no keep-alive");
	off = used;
	http_req_next(r);
	is_int(http_req_feed(r, wire + off, sizeof(wire) - 1 - off, &used),
	    HTTP_REQ_ERROR, "close: data after it refused");
	is_int(http_req_error(r, &why), 400, "close: 400");
	ok(strstr(why, "at byte 37") != NULL,
	    "close: offset counts over both feeds (%s)", why);
	http_req_free(r);
}

static void
test_continue(void)
{
	static const char head[] =
	    "POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
	    "Content-Length: 5\r\n\r\n";
	struct http_req *r;
	size_t used, blen;
	const char *why;

	r = http_req_new(&lim);
	is_int(http_req_feed(r, WIRE(head), &used), HTTP_REQ_CONTINUE,
	    "100-continue: CONTINUE after headers");
	is_int(used, sizeof(head) - 1, "100-continue: headers used");
	is_str(http_req_path(r), "/up", "100-continue: path known");
	is_str(http_req_header(r, "expect"), "100-Continue",
	    "100-continue: headers known");
	is_int(http_req_feed(r, "hel", 3, &used), HTTP_REQ_NEED_MORE,
	    "100-continue: body part");
	is_int(http_req_feed(r, "lo", 2, &used), HTTP_REQ_DONE,
	    "100-continue: DONE with body");
	is_str(http_req_body(r, &blen), "hello", "100-continue: body");
	http_req_next(r);

	/* Headers and body in one buffer: CONTINUE first, body after. */
	is_int(http_req_feed(r, "POST / HTTP/1.1\r\nExpect: 100-continue\r\n"
	    "Content-Length: 2\r\n\r\nok", 62, &used), HTTP_REQ_CONTINUE,
	    "100-continue in one buffer: CONTINUE");
	is_int(used, 60, "100-continue in one buffer: body left over");
	is_int(http_req_feed(r, "ok", 2, &used), HTTP_REQ_DONE,
	    "100-continue in one buffer: then DONE");
	http_req_next(r);

	/* No body: nothing to continue. */
	is_int(http_req_feed(r, "POST / HTTP/1.1\r\nExpect: 100-continue\r\n"
	    "Content-Length: 0\r\n\r\n", 60, &used), HTTP_REQ_DONE,
	    "100-continue without body: DONE");
	http_req_next(r);

	/* HTTP/1.0: the expectation is ignored (RFC 9110 10.1.1). */
	is_int(http_req_feed(r, "POST / HTTP/1.0\r\nExpect: 100-continue\r\n"
	    "Content-Length: 1\r\n\r\nx", 61, &used), HTTP_REQ_DONE,
	    "100-continue from 1.0: ignored");
	http_req_free(r);

	/* Over the limit: 413, never CONTINUE. */
	r = http_req_new(&lim);
	is_int(http_req_feed(r, "POST / HTTP/1.1\r\nExpect: 100-continue\r\n"
	    "Content-Length: 5000\r\n\r\n", 63, &used), HTTP_REQ_ERROR,
	    "100-continue over limit: ERROR");
	is_int(http_req_error(r, &why), 413, "100-continue over limit: 413");
	http_req_free(r);
}

static void
test_eof(void)
{
	struct http_req *r;
	size_t used;
	const char *why;

	r = http_req_new(&lim);
	is_int(http_req_eof(r), HTTP_REQ_NEED_MORE, "EOF when idle");
	http_req_free(r);

	r = http_req_new(&lim);
	is_int(http_req_feed(r, "GET / HTTP/1.1\r\nHo", 18, &used),
	    HTTP_REQ_NEED_MORE, "EOF: half a request");
	is_int(http_req_eof(r), HTTP_REQ_ERROR, "EOF mid-request: ERROR");
	is_int(http_req_error(r, &why), 400, "EOF mid-request: 400");
	diag("  %s", why);
	http_req_free(r);

	r = http_req_new(&lim);
	is_int(http_req_feed(r, "PUT / HTTP/1.1\r\nContent-Length: 9\r\n\r\nab",
	    39, &used), HTTP_REQ_NEED_MORE, "EOF: half a body");
	is_int(http_req_eof(r), HTTP_REQ_ERROR, "EOF mid-body: ERROR");
	http_req_free(r);

	r = http_req_new(&lim);
	is_int(http_req_feed(r, "PUT / HTTP/1.1\r\nExpect: 100-continue\r\n"
	    "Content-Length: 9\r\n\r\n", 59, &used), HTTP_REQ_CONTINUE,
	    "EOF: waiting for the body after CONTINUE");
	is_int(http_req_eof(r), HTTP_REQ_ERROR, "EOF after CONTINUE: ERROR");
	is_int(http_req_error(r, &why), 400, "EOF after CONTINUE: 400");
	http_req_free(r);

	r = http_req_new(&lim);
	is_int(http_req_feed(r, WIRE("GET / HTTP/1.1\r\n\r\n"), &used),
	    HTTP_REQ_DONE, "EOF: a request pending");
	is_int(http_req_eof(r), HTTP_REQ_DONE, "EOF leaves DONE pending");
	http_req_free(r);
}

/* --- limits at their boundaries ------------------------------------ */

/* req_with: a GET with n headers "X-Hnn: v" and a url of ulen bytes. */
static size_t
req_with(char *buf, size_t cap, size_t ulen, unsigned n)
{
	size_t len;
	unsigned i;

	len = (size_t)snprintf(buf, cap, "GET /");
	memset(buf + len, 'u', ulen - 1);
	len += ulen - 1;
	len += (size_t)snprintf(buf + len, cap - len, " HTTP/1.1\r\n");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len,
		    "X-H%02u: v\r\n", i);
	len += (size_t)snprintf(buf + len, cap - len, "\r\n");
	return len;
}

static void
limit_case(const char *name, struct http_req_limits *l, const char *buf,
    size_t len, int status)
{
	struct http_req *r;
	const char *why = "";
	size_t pos, step;
	int rc;

	for (step = 0; step <= 1; step++) {
		r = http_req_new(l);
		pos = 0;
		rc = feed_all(r, buf, len, step, &pos);
		if (status == 0)
			ok(rc == HTTP_REQ_DONE, "%s (step %zu): DONE", name,
			    step);
		else if (!ok(rc == HTTP_REQ_ERROR &&
		    http_req_error(r, &why) == status,
		    "%s (step %zu): %d", name, step, status))
			diag("  rc %d status %d %s", rc,
			    http_req_error(r, &why), why);
		http_req_free(r);
	}
}

static void
test_limits(void)
{
	struct http_req_limits l = lim;
	char buf[4096], name[64];
	size_t len;

	/* Header count: 16 fit, 17 do not. */
	len = req_with(buf, sizeof(buf), 1, 16);
	limit_case("16 headers", &l, buf, len, 0);
	len = req_with(buf, sizeof(buf), 1, 17);
	limit_case("too many headers", &l, buf, len, 431);

	/* URL: max_url fits, one more does not. */
	len = req_with(buf, sizeof(buf), 256, 0);
	limit_case("URL at max_url", &l, buf, len, 0);
	len = req_with(buf, sizeof(buf), 257, 0);
	limit_case("URL too long", &l, buf, len, 414);

	/* Header bytes: exactly the limit, then one byte over. */
	len = req_with(buf, sizeof(buf), 1, 3);
	l.max_header_bytes = (uint32_t)len;
	snprintf(name, sizeof(name), "header bytes at limit %zu", len);
	limit_case(name, &l, buf, len, 0);
	l.max_header_bytes = (uint32_t)len - 1;
	limit_case("header bytes one over", &l, buf, len, 431);

	/* One long header value. */
	l = lim;
	len = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nX-Big: ");
	memset(buf + len, 'v', 1100);
	len += 1100;
	len += (size_t)snprintf(buf + len, sizeof(buf) - len, "\r\n\r\n");
	limit_case("header bytes too big", &l, buf, len, 431);

	/* Endless empty lines are header bytes too. */
	for (len = 0; len < 1100; len += 2)
		memcpy(buf + len, "\r\n", 2);
	limit_case("endless empty lines", &l, buf, len, 431);

	/* Body: max_body exactly, then one over. */
	l.max_body = 1000;
	len = (size_t)snprintf(buf, sizeof(buf),
	    "PUT / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
	memset(buf + len, 'b', 1000);
	limit_case("body at max_body", &l, buf, len + 1000, 0);
	l.max_body = 999;
	limit_case("body one over max_body", &l, buf, len + 1000, 413);

	/* Trailers count against max_headers too. */
	l = lim;
	l.max_headers = 2;
	limit_case("2 trailers", &l,
	    WIRE("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "0\r\nA: 1\r\nB: 2\r\n\r\n"), 0);
	limit_case("too many trailers", &l,
	    WIRE("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), 431);

	/* max_headers 0 refuses any header. */
	l.max_headers = 0;
	limit_case("max_headers 0", &l,
	    WIRE("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 431);
}

static void
test_misc(void)
{
	struct http_req *r = NULL;
	const char *why = NULL;
	size_t used;

	http_req_free(r);
	ok(r == NULL, "http_req_free(NULL) is a no-op");

	r = http_req_new(&lim);
	is_int(http_req_error(r, &why), 0, "no error before any input");
	is_str(http_req_method(r), "", "no method before any input");
	ok(http_req_header(r, "host") == NULL, "no header before any input");
	is_int(http_req_feed(r, "", 0, &used), HTTP_REQ_NEED_MORE,
	    "empty feed");
	is_int(used, 0, "empty feed uses nothing");
	http_req_next(r);	/* harmless when nothing is complete */
	is_int(http_req_feed(r, WIRE("GET / HTTP/1.1\r\n\r\n"), &used),
	    HTTP_REQ_DONE, "request after a stray next");
	is_int(http_req_nheaders(r), 0, "no headers");
	http_req_free(r);
}

/* --- the head hook: a per-request body limit, before the body -------- */

struct hook {
	int		 calls;
	uint64_t	 limit;
	char		 path[64];
};

static uint64_t
hook_fn(void *arg, const struct http_req *r)
{
	struct hook *h = arg;

	h->calls++;
	snprintf(h->path, sizeof(h->path), "%s", http_req_path(r));
	return h->limit;
}

static void
test_head_hook(void)
{
	static const char get[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char small[] = "POST /p HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 4\r\n\r\nabcd";
	static const char big[] = "POST /p HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 5\r\n\r\nabcde";
	static const char chunked[] = "POST /c HTTP/1.1\r\nHost: x\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n"
	    "0\r\n\r\n";
	struct hook h = { 0, 4, "" };
	struct http_req *r;
	const char *why;
	size_t pos;

	r = http_req_new(&lim);
	http_req_set_head_fn(r, hook_fn, &h);
	pos = 0;
	is_int(feed_all(r, get, strlen(get), 0, &pos), HTTP_REQ_DONE,
	    "hook: a GET without a body is parsed");
	is_int(h.calls, 0, "hook: not asked when no body follows");
	http_req_next(r);
	pos = 0;
	is_int(feed_all(r, small, strlen(small), 0, &pos), HTTP_REQ_DONE,
	    "hook: a body at its limit is taken");
	is_int(h.calls, 1, "hook: asked once for a request with a body");
	is_str(h.path, "/p", "hook: sees the request's path");
	is_int((int)http_req_body_limit(r), 4, "hook: its limit is in force");
	http_req_next(r);
	pos = 0;
	is_int(feed_all(r, big, strlen(big), 0, &pos), HTTP_REQ_ERROR,
	    "hook: a Content-Length over its limit is refused");
	is_int(http_req_error(r, &why), 413, "  with 413");
	ok(pos < strlen(big) - 4, "  before the body is read (at %zu)", pos);
	http_req_free(r);

	for (size_t step = 0; step < 2; step++) {
		r = http_req_new(&lim);
		http_req_set_head_fn(r, hook_fn, &h);
		pos = 0;
		is_int(feed_all(r, chunked, strlen(chunked), step, &pos),
		    HTTP_REQ_ERROR, "hook: chunks over its limit are refused "
		    "(step %zu)", step);
		is_int(http_req_error(r, &why), 413, "  with 413");
		http_req_free(r);
	}
	/* the limit is per request: the next one starts from max_body */
	h.limit = UINT64_MAX;
	r = http_req_new(&lim);
	http_req_set_head_fn(r, hook_fn, &h);
	pos = 0;
	is_int(feed_all(r, chunked, strlen(chunked), 0, &pos), HTTP_REQ_DONE,
	    "hook: a larger figure than max_body changes nothing");
	ok(http_req_body_limit(r) == lim.max_body, "  max_body stays the "
	    "ceiling");
	http_req_free(r);
}

int
main(void)
{
	size_t i;
	static const size_t steps[] = { 0, 1, 3 };
	size_t s;

	for (s = 0; s < NELEM(steps); s++)
		for (i = 0; i < NELEM(good); i++)
			good_one(&good[i], steps[s]);
	for (s = 0; s < 2; s++)
		for (i = 0; i < NELEM(bad); i++)
			bad_one(&bad[i], steps[s]);
	test_chunks_add_up();
	test_head_hook();
	test_pipelined(0);
	test_pipelined(1);
	test_pipelined(5);
	test_after_close();
	test_continue();
	test_eof();
	test_limits();
	test_misc();
	return done_testing();
}
