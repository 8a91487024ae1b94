/*
 * t_http_resp.c — tables of wire bytes for http_resp: good responses fed
 * whole, split in two at every byte boundary, one byte at a time and in
 * 3-byte pieces; refusals with their reason; interim responses, bodies
 * to EOF, pipelining, the body sink and the limits at their boundaries.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_resp.h"
#include "t/unit/tap.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define WIRE(s)		s, sizeof(s) - 1

static const struct http_resp_limits lim = {
	.max_header_bytes = 1024,
	.max_headers = 16,
	.max_body = 4096,
};

/* What one run of the parser over a wire saw. */
struct seen {
	enum http_resp_result	rc;		/* the last result */
	size_t			pos;		/* bytes consumed */
	int			headers;	/* HEADERS results */
	int			interim;	/* INTERIM results */
	int			first_interim;	/* status of the first */
};

/*
 * feed_pieces: feed wire[0..len) in pieces (cut[] gives where each piece
 * ends; the last piece ends at len), draining what each call used and
 * going on after HEADERS and INTERIM, until DONE or ERROR or the bytes
 * run out. A result with bytes left over in a piece feeds them again.
 */
static void
feed_pieces(struct http_resp *r, const char *wire, size_t len,
    const size_t *cut, size_t ncut, struct seen *s)
{
	size_t end, used, k = 0;

	memset(s, 0, sizeof(*s));
	s->rc = HTTP_RESP_NEED_MORE;
	for (;;) {
		end = k < ncut ? cut[k] : len;
		s->rc = http_resp_feed(r, wire + s->pos, end - s->pos, &used);
		s->pos += used;
		if (s->rc == HTTP_RESP_HEADERS)
			s->headers++;
		else if (s->rc == HTTP_RESP_INTERIM) {
			if (s->interim++ == 0)
				s->first_interim = http_resp_status(r);
		} else if (s->rc == HTTP_RESP_DONE || s->rc == HTTP_RESP_ERROR)
			return;
		else if (s->pos != end) {
			s->rc = HTTP_RESP_ERROR; /* NEED_MORE must take all */
			return;
		}
		if (s->pos < end)
			continue;
		if (end == len)
			return;
		k++;
	}
}

/* feed_step: pieces of step bytes (0: all at once). */
static void
feed_step(struct http_resp *r, const char *wire, size_t len, size_t step,
    struct seen *s)
{
	size_t *cut = NULL, n = 0, at;

	if (step != 0 && len > step) {
		cut = calloc(len / step + 1, sizeof(*cut));
		for (at = step; at < len; at += step)
			cut[n++] = at;
	}
	feed_pieces(r, wire, len, cut, n, s);
	free(cut);
}

/* --- good responses ------------------------------------------------ */

struct good_case {
	const char	*name;
	const char	*wire;
	size_t		 len;
	const char	*method;
	int		 status;
	const char	*reason;
	const char	*hname, *hvalue;	/* a header to look up */
	size_t		 nheaders;
	const char	*body;
	int		 keep_alive, minor;
	const char	*tname, *tvalue;	/* a trailer to look up */
	int		 headers;		/* HEADERS expected */
};

static const struct good_case good[] = {
	{ "Content-Length",
	  WIRE("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	  "Content-Length: 10\r\n\r\n{\"a\":\"bc\"}"), "GET",
	  200, "OK", "content-type", "application/json", 2, "{\"a\":\"bc\"}",
	  1, 1, NULL, NULL, 1 },
	{ "chunked with extensions and trailers",
	  WIRE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	  "Trailer: X-Sum\r\n\r\n"
	  "5;name=val\r\nhello\r\n6;a;b=\"q s\"\r\n world\r\n"
	  "0;last\r\nX-Sum: abc \r\nX-More: 1\r\n\r\n"), "GET",
	  200, "OK", "TRAILER", "X-Sum", 2, "hello world", 1, 1,
	  "x-sum", "abc", 1 },
	{ "chunked, upper-case hex and TE case",
	  WIRE("HTTP/1.1 201 Created\r\ntransfer-encoding: Chunked\r\n\r\n"
	  "A\r\n0123456789\r\n0\r\n\r\n"), "POST",
	  201, "Created", "Transfer-Encoding", "Chunked", 1, "0123456789",
	  1, 1, "x-sum", NULL, 1 },
	{ "Content-Length 0: no HEADERS stop",
	  WIRE("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), "GET",
	  200, "OK", "content-length", "0", 1, "", 1, 1, NULL, NULL, 0 },
	{ "204 has no body",
	  WIRE("HTTP/1.1 204 No Content\r\nX-Id: 7\r\n\r\n"), "DELETE",
	  204, "No Content", "x-id", "7", 1, "", 1, 1, NULL, NULL, 0 },
	{ "304 ignores Content-Length",
	  WIRE("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"),
	  "GET", 304, "Not Modified", "content-length", "100", 1, "", 1, 1,
	  NULL, NULL, 0 },
	{ "HEAD ignores Content-Length",
	  WIRE("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"), "HEAD",
	  200, "OK", "content-length", "1234", 1, "", 1, 1, NULL, NULL, 0 },
	{ "HEAD ignores chunked",
	  WIRE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), "HEAD",
	  200, "OK", "transfer-encoding", "chunked", 1, "", 1, 1, NULL, NULL,
	  0 },
	{ "Connection: close",
	  WIRE("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n"
	  "\r\nhi"), "GET",
	  200, "OK", "connection", "close", 2, "hi", 0, 1, NULL, NULL, 1 },
	{ "HTTP/1.0 closes by default",
	  WIRE("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold"), "GET",
	  200, "OK", "content-length", "3", 1, "old", 0, 0, NULL, NULL, 1 },
	{ "HTTP/1.0 with Connection: keep-alive",
	  WIRE("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
	  "Content-Length: 1\r\n\r\nk"), "GET",
	  200, "OK", "Connection", "keep-alive", 2, "k", 1, 0, NULL, NULL, 1 },
	{ "error body, reason with spaces",
	  WIRE("HTTP/1.1 422 Unprocessable Content\r\n"
	  "Content-Type: application/json\r\nContent-Length: 23\r\n\r\n"
	  "{\"error\":{\"code\":\"x\"}}\n"), "POST",
	  422, "Unprocessable Content", "content-type", "application/json", 2,
	  "{\"error\":{\"code\":\"x\"}}\n", 1, 1, NULL, NULL, 1 },
	{ "empty reason phrase",
	  WIRE("HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n"), "GET",
	  503, "", "content-length", "0", 1, "", 1, 1, NULL, NULL, 0 },
	{ "obs-text in the reason phrase",
	  WIRE("HTTP/1.1 200 D\xc3\xa9j\xc3\xa0 vu\r\nContent-Length: 0\r\n\r\n"),
	  "GET", 200, "D\xc3\xa9j\xc3\xa0 vu", "content-length", "0", 1, "", 1,
	  1, NULL, NULL, 0 },
	{ "header values trimmed, names any case",
	  WIRE("HTTP/1.1 200 OK\r\nX-Thing: \t one two  \t\r\nX-Empty:\r\n"
	  "content-LENGTH: 1\r\n\r\nz"), "GET",
	  200, "OK", "X-THING", "one two", 3, "z", 1, 1, NULL, NULL, 1 },
	{ "empty header value",
	  WIRE("HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n"),
	  "GET", 200, "OK", "x-empty", "", 2, "", 1, 1, NULL, NULL, 0 },
	{ "status 599",
	  WIRE("HTTP/1.1 599 Odd\r\nContent-Length: 0\r\n\r\n"), "GET",
	  599, "Odd", "content-length", "0", 1, "", 1, 1, NULL, NULL, 0 },
	{ "100 Continue, then the response",
	  WIRE("HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"
	  "HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone"), "POST",
	  201, "Created", "x-interim", NULL, 1, "done", 1, 1, NULL, NULL, 1 },
	{ "103 Early Hints twice, then the response",
	  WIRE("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
	  "HTTP/1.1 103 Early Hints\r\nLink: </b>\r\n\r\n"
	  "HTTP/1.1 200 OK\r\nLink: </c>\r\nContent-Length: 1\r\n\r\nx"), "GET",
	  200, "OK", "link", "</c>", 2, "x", 1, 1, NULL, NULL, 1 },
};

static void
check_fields(struct http_resp *r, const struct good_case *c,
    const char *how)
{
	const char *body;
	size_t blen;
	int pass;

	body = http_resp_body(r, &blen);
	pass = http_resp_status(r) == c->status &&
	    strcmp(http_resp_reason(r), c->reason) == 0 &&
	    http_resp_nheaders(r) == c->nheaders &&
	    blen == strlen(c->body) && memcmp(body, c->body, blen) == 0 &&
	    body[blen] == '\0' &&
	    http_resp_body_bytes(r) == blen &&
	    http_resp_keep_alive(r) == c->keep_alive &&
	    http_resp_version_minor(r) == c->minor;
	if (!ok(pass, "%s (%s): fields", c->name, how))
		diag("  %d \"%s\" nh %zu body %zu \"%s\" ka %d minor %d",
		    http_resp_status(r), http_resp_reason(r),
		    http_resp_nheaders(r), blen, body,
		    http_resp_keep_alive(r), http_resp_version_minor(r));
	is_str(http_resp_header(r, c->hname), c->hvalue,
	    "%s (%s): header %s", c->name, how, c->hname);
	if (c->tname != NULL)
		is_str(http_resp_trailer(r, c->tname), c->tvalue,
		    "%s (%s): trailer %s", c->name, how, c->tname);
}

static void
good_step(const struct good_case *c, size_t step)
{
	struct http_resp *r;
	struct seen s;
	char how[32];

	snprintf(how, sizeof(how), "step %zu", step);
	r = http_resp_new(&lim, c->method);
	feed_step(r, c->wire, c->len, step, &s);
	if (!ok(s.rc == HTTP_RESP_DONE && s.pos == c->len &&
	    s.headers == c->headers, "%s (%s): DONE, all %zu bytes used",
	    c->name, how, c->len)) {
		diag("  rc %d, used %zu, headers %d, %s", (int)s.rc, s.pos,
		    s.headers, http_resp_error(r) ? http_resp_error(r) : "");
		http_resp_free(r);
		return;
	}
	check_fields(r, c, how);
	http_resp_free(r);
	ok(r == NULL, "%s (%s): http_resp_free NULLs", c->name, how);
}

/* Every way of cutting the wire in two gives the same response. */
static void
good_splits(const struct good_case *c)
{
	struct http_resp *r;
	struct seen s;
	size_t i, bad = 0, first = 0;

	for (i = 1; i < c->len; i++) {
		r = http_resp_new(&lim, c->method);
		feed_pieces(r, c->wire, c->len, &i, 1, &s);
		if (s.rc != HTTP_RESP_DONE || s.pos != c->len ||
		    http_resp_status(r) != c->status ||
		    http_resp_body_bytes(r) != strlen(c->body) ||
		    memcmp(http_resp_body(r, NULL), c->body,
		    strlen(c->body)) != 0 || s.headers != c->headers) {
			if (bad++ == 0)
				first = i;
		}
		http_resp_free(r);
	}
	if (!ok(bad == 0, "%s: split in two at each of %zu boundaries",
	    c->name, c->len - 1))
		diag("  %zu splits failed, the first at %zu", bad, first);
}

/* --- refusals ------------------------------------------------------ */

struct bad_case {
	const char	*name;
	const char	*wire;
	size_t		 len;
	const char	*reason;	/* a part of the reason */
};

static const struct bad_case bad[] = {
	{ "status code of 4 digits",
	  WIRE("HTTP/1.1 2000 OK\r\n\r\n"), "invalid status code at byte 1" },
	{ "status code 099",
	  WIRE("HTTP/1.1 099 Low\r\n\r\n"), "status code outside 100-599" },
	{ "status code 600",
	  WIRE("HTTP/1.1 600 High\r\n\r\n"), "status code outside 100-599" },
	{ "status code of 2 digits",
	  WIRE("HTTP/1.1 20 OK\r\n\r\n"), "status" },
	{ "status code not digits",
	  WIRE("HTTP/1.1 abc OK\r\n\r\n"), "invalid status code at byte 9" },
	{ "no status code",
	  WIRE("HTTP/1.1\r\n\r\n"), "at byte 8" },
	{ "HTTP/2.0 status line",
	  WIRE("HTTP/2.0 200 OK\r\n\r\n"), "version" },
	{ "HTTP/1.2",
	  WIRE("HTTP/1.2 200 OK\r\n\r\n"), "unsupported HTTP version" },
	{ "HTTP/0.9",
	  WIRE("HTTP/0.9 200 OK\r\n\r\n"), "unsupported HTTP version" },
	{ "HTTP/1.x",
	  WIRE("HTTP/1.x 200 OK\r\n\r\n"), "at byte 7" },
	{ "lower-case protocol",
	  WIRE("http/1.1 200 OK\r\n\r\n"), "at byte 0" },
	{ "a request instead",
	  WIRE("GET / HTTP/1.1\r\n\r\n"), "at byte 0" },
	{ "TLS bytes",
	  WIRE("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), "at byte 0" },
	{ "control char in the reason",
	  WIRE("HTTP/1.1 200 O\x01K\r\n\r\n"),
	  "invalid character in reason phrase at byte 14" },
	{ "bare LF line ends",
	  WIRE("HTTP/1.1 200 OK\nContent-Length: 0\n\n"), "at byte" },
	{ "space in header name",
	  WIRE("HTTP/1.1 200 OK\r\nX Foo: b\r\n\r\n"),
	  "header name at byte 18" },
	{ "space before colon",
	  WIRE("HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"), "at byte 32" },
	{ "empty header name",
	  WIRE("HTTP/1.1 200 OK\r\n: v\r\n\r\n"), "empty header name" },
	{ "control char in header value",
	  WIRE("HTTP/1.1 200 OK\r\nX: a\x01" "b\r\n\r\n"), "at byte 21" },
	{ "CL + TE",
	  WIRE("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
	  "both Content-Length and Transfer-Encoding at byte 36" },
	{ "TE + CL",
	  WIRE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	  "Content-Length: 5\r\n\r\n0\r\n\r\n"),
	  "both Content-Length and Transfer-Encoding" },
	{ "duplicate CL, equal values",
	  WIRE("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n"
	  "\r\nx"), "duplicate Content-Length at byte 36" },
	{ "CL not a number",
	  WIRE("HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello"),
	  "Content-Length" },
	{ "TE gzip (coded body to EOF)",
	  WIRE("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx"),
	  "other than \"chunked\"" },
	{ "TE gzip, chunked",
	  WIRE("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
	  "0\r\n\r\n"), "other than \"chunked\"" },
	{ "two TE headers",
	  WIRE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
	  "duplicate Transfer-Encoding" },
	{ "101 Switching Protocols",
	  WIRE("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\n\r\n"), "upgrade not supported" },
	{ "bad chunk size",
	  WIRE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
	  "chunk size" },
	{ "chunk without CRLF after data",
	  WIRE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "2\r\nabc\r\n0\r\n\r\n"), "line end is not CRLF at byte 52" },
	{ "any two bytes after chunk data",
	  WIRE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "2\r\nabXY0\r\n\r\n"), "line end is not CRLF at byte 52" },
	{ "CR without LF after the status line",
	  WIRE("HTTP/1.1 200 OK\rXContent-Length: 0\r\n\r\n"),
	  "line end is not CRLF at byte 16" },
	{ "CR without LF ending the headers",
	  WIRE("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\rX"),
	  "line end is not CRLF at byte 37" },
	{ "CR without LF after a chunk size",
	  WIRE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "2\rXab\r\n0\r\n\r\n"), "line end is not CRLF at byte 49" },
	{ "CR without LF after the last chunk",
	  WIRE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "2\r\nab\r\n0\rX\r\n"), "line end is not CRLF at byte 56" },
	{ "CR without LF ending the trailers",
	  WIRE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "2\r\nab\r\n0\r\n\rX"), "line end is not CRLF at byte 58" },
	{ "huge Content-Length",
	  WIRE("HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n"),
	  "response body too large" },
	{ "Content-Length past 64 bits",
	  WIRE("HTTP/1.1 200 OK\r\n"
	  "Content-Length: 99999999999999999999999\r\n\r\n"),
	  "response body too large at byte 36" },
	{ "Content-Length one over",
	  WIRE("HTTP/1.1 200 OK\r\nContent-Length: 4097\r\n\r\n"),
	  "response body too large" },
	{ "chunk larger than limit",
	  WIRE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "1001\r\n"), "response body too large" },
	{ "empty trailer name",
	  WIRE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "0\r\n: v\r\n\r\n"), "empty header name" },
};

static void
bad_one(const struct bad_case *c, size_t step)
{
	struct http_resp *r;
	struct seen s;
	const char *why;
	size_t used;

	r = http_resp_new(&lim, "GET");
	feed_step(r, c->wire, c->len, step, &s);
	why = http_resp_error(r);
	if (!ok(s.rc == HTTP_RESP_ERROR && why != NULL &&
	    strstr(why, c->reason) != NULL, "%s (step %zu): refused",
	    c->name, step))
		diag("  rc %d, reason \"%s\"", (int)s.rc, why ? why : "(none)");
	else if (step == 0)
		diag("  %s", why);
	is_int(http_resp_feed(r, WIRE("HTTP/1.1 200 OK\r\n\r\n"), &used),
	    HTTP_RESP_ERROR, "%s (step %zu): error sticks", c->name, step);
	is_int(http_resp_keep_alive(r), 0, "%s (step %zu): no keep-alive",
	    c->name, step);
	http_resp_free(r);
}

/* --- flows --------------------------------------------------------- */

static void
test_interim(void)
{
	static const char wire[] =
	    "HTTP/1.1 100 Continue\r\n\r\n"
	    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	struct http_resp *r;
	size_t used, off;

	r = http_resp_new(&lim, "PUT");
	is_int(http_resp_feed(r, WIRE(wire), &used), HTTP_RESP_INTERIM,
	    "interim: INTERIM first");
	is_int(used, 25, "interim: the 100 used 25 bytes");
	is_int(http_resp_status(r), 100, "interim: status 100 known");
	is_str(http_resp_reason(r), "Continue", "interim: its reason");
	off = used;
	is_int(http_resp_feed(r, wire + off, sizeof(wire) - 1 - off, &used),
	    HTTP_RESP_HEADERS, "interim: then the final headers");
	is_int(http_resp_status(r), 200, "interim: status 200 after");
	off += used;
	is_int(http_resp_feed(r, wire + off, sizeof(wire) - 1 - off, &used),
	    HTTP_RESP_DONE, "interim: then DONE");
	is_str(http_resp_body(r, NULL), "ok", "interim: body of the final");
	http_resp_free(r);

	r = http_resp_new(&lim, "PUT");
	is_int(http_resp_eof(r), HTTP_RESP_ERROR, "EOF before any response");
	ok(strstr(http_resp_error(r), "before the response") != NULL,
	    "  says so (%s)", http_resp_error(r));
	http_resp_free(r);

	r = http_resp_new(&lim, "PUT");
	is_int(http_resp_feed(r, WIRE("HTTP/1.1 100 Continue\r\n\r\n"), &used),
	    HTTP_RESP_INTERIM, "EOF after 100: INTERIM first");
	is_int(http_resp_eof(r), HTTP_RESP_ERROR, "EOF after 100: ERROR");
	ok(strstr(http_resp_error(r), "interim") != NULL, "  says so (%s)",
	    http_resp_error(r));
	http_resp_free(r);
}

static void
test_eof_body(void)
{
	static const char wire[] = "HTTP/1.1 200 OK\r\nX: y\r\n\r\nto the end";
	static const char *const versions[] = { "HTTP/1.1", "HTTP/1.0" };
	struct http_resp *r;
	struct seen s;
	char buf[128];
	size_t len, step, v;

	for (v = 0; v < NELEM(versions); v++)
		for (step = 0; step <= 1; step++) {
			len = (size_t)snprintf(buf, sizeof(buf), "%s%s",
			    versions[v], wire + 8);
			r = http_resp_new(&lim, "GET");
			feed_step(r, buf, len, step, &s);
			ok(s.rc == HTTP_RESP_NEED_MORE && s.headers == 1,
			    "EOF body %s (step %zu): HEADERS, not done before "
			    "the close", versions[v], step);
			is_int(s.pos, len, "  all bytes used");
			is_int(http_resp_eof(r), HTTP_RESP_DONE,
			    "  EOF completes it");
			is_str(http_resp_body(r, NULL), "to the end",
			    "  the body runs to the close");
			is_int(http_resp_keep_alive(r), 0, "  no keep-alive");
			http_resp_free(r);
		}

	/* Over max_body before the close. */
	r = http_resp_new(&lim, "GET");
	len = (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n\r\n");
	feed_step(r, buf, len, 0, &s);
	is_int(s.rc, HTTP_RESP_HEADERS, "EOF body over the limit: headers");
	{
		char big[1024];
		size_t used, i;
		enum http_resp_result rc = HTTP_RESP_NEED_MORE;

		memset(big, 'b', sizeof(big));
		for (i = 0; i < 5 && rc == HTTP_RESP_NEED_MORE; i++)
			rc = http_resp_feed(r, big, sizeof(big), &used);
		is_int(rc, HTTP_RESP_ERROR, "EOF body over the limit: ERROR");
		is_int(i, 5, "  on the fifth KiB");
		ok(strstr(http_resp_error(r), "too large at byte 4115") !=
		    NULL, "  at the first byte over (%s)", http_resp_error(r));
	}
	http_resp_free(r);
}

static void
test_eof_cut(void)
{
	static const struct {
		const char	*name, *wire, *reason;
	} cut[] = {
		{ "in the status line", "HTTP/1.1 20", "status line or headers" },
		{ "in the headers", "HTTP/1.1 200 OK\r\nContent-Le",
		  "status line or headers" },
		{ "in a Content-Length body",
		  "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc",
		  "response body" },
		{ "in a chunked body",
		  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
		  "response body" },
		{ "before the last chunk",
		  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "3\r\nabc\r\n", "response body" },
	};
	struct http_resp *r;
	size_t i, used;
	const char *why;

	for (i = 0; i < NELEM(cut); i++) {
		r = http_resp_new(&lim, "GET");
		http_resp_feed(r, cut[i].wire, strlen(cut[i].wire), &used);
		is_int(http_resp_eof(r), HTTP_RESP_ERROR, "EOF %s: ERROR",
		    cut[i].name);
		why = http_resp_error(r);
		ok(why != NULL && strstr(why, cut[i].reason) != NULL,
		    "  says where (%s)", why ? why : "(none)");
		http_resp_free(r);
	}

	r = http_resp_new(&lim, "GET");
	is_int(http_resp_feed(r, WIRE("HTTP/1.1 200 OK\r\nContent-Length: 0"
	    "\r\n\r\n"), &used), HTTP_RESP_DONE, "EOF with a response pending");
	is_int(http_resp_eof(r), HTTP_RESP_DONE, "  leaves DONE pending");
	http_resp_next(r, "GET");
	is_int(http_resp_eof(r), HTTP_RESP_ERROR,
	    "  after next: EOF before the next response is an error");
	http_resp_free(r);

	r = http_resp_new(&lim, "GET");
	is_int(http_resp_feed(r, WIRE("HTTP/1.1 200 OK\r\nConnection: close\r\n"
	    "Content-Length: 0\r\n\r\n"), &used), HTTP_RESP_DONE,
	    "Connection: close response");
	http_resp_next(r, "GET");
	is_int(http_resp_eof(r), HTTP_RESP_NEED_MORE,
	    "  then EOF is the expected end");
	http_resp_free(r);
}

static void
test_pipelined(size_t step)
{
	static const char wire[] =
	    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"
	    "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"	/* HEAD */
	    "HTTP/1.1 100 Continue\r\n\r\n"
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "1\r\nc\r\n0\r\n\r\n"
	    "HTTP/1.1 404 Not Found\r\nConnection: close\r\n"
	    "Content-Length: 1\r\n\r\nd";
	static const char *const method[] = { "GET", "HEAD", "POST", "GET" };
	static const char *const body[] = { "a", "", "c", "d" };
	static const int status[] = { 200, 200, 200, 404 };
	struct http_resp *r;
	struct seen s;
	size_t i, pos = 0, len = sizeof(wire) - 1;

	r = http_resp_new(&lim, method[0]);
	for (i = 0; i < NELEM(method); i++) {
		feed_step(r, wire + pos, len - pos, step, &s);
		pos += s.pos;
		is_int(s.rc, HTTP_RESP_DONE,
		    "pipelined (step %zu): response %zu DONE", step, i + 1);
		ok(http_resp_status(r) == status[i] &&
		    strcmp(http_resp_body(r, NULL), body[i]) == 0,
		    "pipelined (step %zu): response %zu status and body", step,
		    i + 1);
		if (i == 2)
			is_int(s.interim, 1, "pipelined (step %zu): the 100 "
			    "seen", step);
		is_int(http_resp_keep_alive(r), i < 3,
		    "pipelined (step %zu): response %zu keep-alive", step,
		    i + 1);
		if (i + 1 < NELEM(method))
			http_resp_next(r, method[i + 1]);
	}
	is_int(pos, len, "pipelined (step %zu): all bytes used", step);
	http_resp_free(r);
}

static void
test_after_close(void)
{
	static const char wire[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n"
	    "Content-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
	struct http_resp *r;
	size_t used, off;

	r = http_resp_new(&lim, "GET");
	is_int(http_resp_feed(r, WIRE(wire), &used), HTTP_RESP_DONE,
	    "close: first DONE");
	is_int(http_resp_keep_alive(r), 0, "close: no keep-alive");
	off = used;
	is_int(http_resp_feed(r, wire + off, sizeof(wire) - 1 - off, &used),
	    HTTP_RESP_DONE, "close: DONE again until next");
	is_int(used, 0, "close: nothing used before next");
	http_resp_next(r, "GET");
	is_int(http_resp_feed(r, wire + off, sizeof(wire) - 1 - off, &used),
	    HTTP_RESP_ERROR, "close: data after it refused");
	ok(strstr(http_resp_error(r), "last response of the connection at byte 57") !=
	    NULL, "close: offset counts over both feeds (%s)",
	    http_resp_error(r));
	http_resp_free(r);
}

/* --- the body sink ------------------------------------------------- */

struct sink {
	char	buf[8192];
	size_t	len;
	size_t	calls;
	size_t	fail_after;	/* bytes; 0: never */
};

static int
sink_fn(void *arg, const char *data, size_t len)
{
	struct sink *k = arg;

	k->calls++;
	if (k->fail_after != 0 && k->len + len > k->fail_after)
		return -1;
	if (len > sizeof(k->buf) - k->len)
		return -1;
	memcpy(k->buf + k->len, data, len);
	k->len += len;
	return 0;
}

static void
test_sink(void)
{
	static const char chunked[] =
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
	static const char plain[] =
	    "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world";
	struct sink k;
	struct http_resp *r;
	struct seen s;
	size_t len, used;

	memset(&k, 0, sizeof(k));
	r = http_resp_new(&lim, "GET");
	http_resp_set_sink(r, sink_fn, &k);
	feed_step(r, WIRE(chunked), 1, &s);
	is_int(s.rc, HTTP_RESP_DONE, "sink, chunked byte by byte: DONE");
	ok(k.len == 11 && memcmp(k.buf, "hello world", 11) == 0,
	    "  the sink got the decoded body");
	ok(k.calls >= 11, "  as it arrived (%zu calls)", k.calls);
	http_resp_body(r, &len);
	is_int(len, 0, "  nothing stored");
	is_int(http_resp_body_bytes(r), 11, "  11 bytes counted");
	http_resp_next(r, "GET");

	/* Set after HEADERS: kept across next, as documented. */
	memset(&k, 0, sizeof(k));
	http_resp_set_sink(r, NULL, NULL);
	is_int(http_resp_feed(r, WIRE(plain) - 11, &used), HTTP_RESP_HEADERS,
	    "sink set after HEADERS: headers");
	if (http_resp_status(r) == 200)
		http_resp_set_sink(r, sink_fn, &k);
	is_int(http_resp_feed(r, "hello world", 11, &used), HTTP_RESP_DONE,
	    "  then DONE");
	ok(k.len == 11, "  the sink got the body");
	http_resp_free(r);

	/* A sink that fails stops the parse. */
	memset(&k, 0, sizeof(k));
	k.fail_after = 5;
	r = http_resp_new(&lim, "GET");
	http_resp_set_sink(r, sink_fn, &k);
	feed_step(r, WIRE(chunked), 0, &s);
	is_int(s.rc, HTTP_RESP_ERROR, "failing sink: ERROR");
	ok(strstr(http_resp_error(r), "body sink failed at byte 60") != NULL,
	    "  at the piece it refused (%s)", http_resp_error(r));
	http_resp_free(r);

	/* max_body holds for the sink too. */
	{
		struct http_resp_limits l = lim;

		memset(&k, 0, sizeof(k));
		l.max_body = 10;
		r = http_resp_new(&l, "GET");
		http_resp_set_sink(r, sink_fn, &k);
		feed_step(r, WIRE(chunked), 0, &s);
		is_int(s.rc, HTTP_RESP_ERROR, "sink over max_body: ERROR");
		is_int(k.len, 5, "  the sink got the chunk within it");
		http_resp_free(r);
	}
}

/* --- limits at their boundaries ------------------------------------ */

/* resp_with: a 200 with n headers "X-Hnn: v", Content-Length 0. */
static size_t
resp_with(char *buf, size_t cap, unsigned n)
{
	size_t len;
	unsigned i;

	len = (size_t)snprintf(buf, cap, "HTTP/1.1 200 OK\r\n");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len,
		    "X-H%02u: v\r\n", i);
	len += (size_t)snprintf(buf + len, cap - len,
	    "Content-Length: 0\r\n\r\n");
	return len;
}

static void
limit_case(const char *name, const struct http_resp_limits *l,
    const char *buf, size_t len, const char *reason)
{
	struct http_resp *r;
	struct seen s;
	size_t step;

	for (step = 0; step <= 1; step++) {
		r = http_resp_new(l, "GET");
		feed_step(r, buf, len, step, &s);
		if (reason == NULL)
			ok(s.rc == HTTP_RESP_DONE && s.pos == len,
			    "%s (step %zu): DONE", name, step);
		else if (!ok(s.rc == HTTP_RESP_ERROR &&
		    strstr(http_resp_error(r), reason) != NULL,
		    "%s (step %zu): refused", name, step))
			diag("  rc %d %s", s.rc, http_resp_error(r) ?
			    http_resp_error(r) : "");
		http_resp_free(r);
	}
}

static void
test_limits(void)
{
	struct http_resp_limits l = lim;
	char buf[4096];
	size_t len;

	/* Header count: 15 + Content-Length fit, one more does not. */
	len = resp_with(buf, sizeof(buf), 15);
	limit_case("16 headers", &l, buf, len, NULL);
	len = resp_with(buf, sizeof(buf), 16);
	limit_case("17 headers", &l, buf, len, "too many header fields");

	/* Header bytes: exactly the limit, then one byte over. */
	len = resp_with(buf, sizeof(buf), 3);
	l.max_header_bytes = (uint32_t)len;
	limit_case("header bytes at the limit", &l, buf, len, NULL);
	l.max_header_bytes = (uint32_t)len - 1;
	limit_case("header bytes one over", &l, buf, len,
	    "status line and headers too large");

	/* A long reason phrase is header bytes. */
	l = lim;
	len = (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 200 ");
	memset(buf + len, 'r', 1100);
	len += 1100;
	len += (size_t)snprintf(buf + len, sizeof(buf) - len, "\r\n\r\n");
	limit_case("reason phrase too long", &l, buf, len, "too large");

	/* Each 1xx has a budget of its own. */
	len = 0;
	while (len < 1500)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
		    "HTTP/1.1 100 Continue\r\n\r\n");
	len += (size_t)snprintf(buf + len, sizeof(buf) - len,
	    "HTTP/1.1 204 No Content\r\n\r\n");
	limit_case("many 100s, each within the limit", &l, buf, len, NULL);

	/* Body: max_body exactly, then one over; chunks add up. */
	l.max_body = 1000;
	len = (size_t)snprintf(buf, sizeof(buf),
	    "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
	memset(buf + len, 'b', 1000);
	limit_case("body at max_body", &l, buf, len + 1000, NULL);
	l.max_body = 999;
	limit_case("body one over max_body", &l, buf, len + 1000,
	    "response body too large");
	l.max_body = 10;
	limit_case("chunks add up over max_body", &l,
	    WIRE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\n12345\r\n5\r\n67890\r\n1\r\nx\r\n0\r\n\r\n"),
	    "response body too large at byte");

	/* Trailers: a count of their own. */
	l = lim;
	l.max_headers = 2;
	limit_case("2 trailers", &l,
	    WIRE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "0\r\nA: 1\r\nB: 2\r\n\r\n"), NULL);
	limit_case("3 trailers", &l,
	    WIRE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), "too many trailer fields");

	/* Chunk extensions: header bytes per chunk. */
	l = lim;
	len = (size_t)snprintf(buf, sizeof(buf),
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;e=");
	memset(buf + len, 'e', 1100);
	len += 1100;
	len += (size_t)snprintf(buf + len, sizeof(buf) - len,
	    "\r\nx\r\n0\r\n\r\n");
	limit_case("chunk extensions too long", &l, buf, len,
	    "chunk extensions too large");

	/* max_headers 0 refuses any header. */
	l.max_headers = 0;
	limit_case("max_headers 0", &l,
	    WIRE("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
	    "too many header fields");
}

static void
test_misc(void)
{
	struct http_resp *r = NULL;
	size_t used;

	http_resp_free(r);
	ok(r == NULL, "http_resp_free(NULL) is a no-op");

	r = http_resp_new(&lim, "GET");
	ok(http_resp_error(r) == NULL, "no error before any input");
	is_int(http_resp_status(r), 0, "no status before any input");
	is_str(http_resp_reason(r), "", "no reason before any input");
	ok(http_resp_header(r, "content-length") == NULL,
	    "no header before any input");
	is_int(http_resp_feed(r, NULL, 0, &used), HTTP_RESP_NEED_MORE,
	    "empty feed");
	is_int(used, 0, "empty feed uses nothing");
	http_resp_next(r, "GET");	/* harmless when nothing is complete */
	is_int(http_resp_feed(r, WIRE("HTTP/1.1 200 OK\r\nContent-Length: 2"
	    "\r\n\r\n"), &used), HTTP_RESP_HEADERS, "headers of a body");
	is_int(http_resp_feed(r, NULL, 0, &used), HTTP_RESP_NEED_MORE,
	    "an empty feed after HEADERS needs more");
	ok(http_resp_trailer(r, "x") == NULL, "no trailers");
	is_int(http_resp_feed(r, "ab", 2, &used), HTTP_RESP_DONE, "DONE");
	http_resp_free(r);
}

int
main(void)
{
	static const size_t steps[] = { 0, 1, 3 };
	size_t i, s;

	for (s = 0; s < NELEM(steps); s++)
		for (i = 0; i < NELEM(good); i++)
			good_step(&good[i], steps[s]);
	for (i = 0; i < NELEM(good); i++)
		good_splits(&good[i]);
	for (s = 0; s < 2; s++)
		for (i = 0; i < NELEM(bad); i++)
			bad_one(&bad[i], steps[s]);
	test_interim();
	test_eof_body();
	test_eof_cut();
	test_pipelined(0);
	test_pipelined(1);
	test_pipelined(7);
	test_after_close();
	test_sink();
	test_limits();
	test_misc();
	return done_testing();
}
