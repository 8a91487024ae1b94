/*
 * http_req.c — see http_req.h. A thin layer over llhttp (strict: no
 * lenient flag is ever set) that stores one request at a time and
 * enforces the limits of struct http_req_limits.
 *
 * llhttp is a streaming parser driven by callbacks. We pause it
 * (HPE_PAUSED) in on_message_complete so that pipelined requests come out
 * one by one, and in on_headers_complete for "Expect: 100-continue".
 * llhttp_get_error_pos() then says where it stopped, which is how many
 * bytes were consumed.
 *
 * Limits:
 *   - header bytes: while the request line and headers are being read,
 *     http_req_feed hands llhttp at most the bytes left in the budget, so
 *     it never reads past max_header_bytes (leading empty lines count);
 *   - header count and stored name/value bytes: in the field callbacks
 *     (trailers of a chunked body are counted the same way, not stored);
 *   - URL: in on_url, before the bytes are stored;
 *   - body: Content-Length as its digits are read, and again in
 *     on_headers_complete from llhttp's content_length; each chunk size in
 *     on_chunk_header; all before any body byte is stored.
 * So memory per request is bounded by the limits: url 3 * (max_url + 1),
 * headers max_header_bytes + 2 * max_headers, body max_body + 1.
 * Our own refusals set err_status/err_what in the callback and return an
 * error, which llhttp turns into some HPE_CB_* or HPE_USER code; a non-zero
 * err_status is what tells them from llhttp's own errors.
 *
 * Debian builds llhttp without LLHTTP_STRICT_MODE, which lets through a
 * few things the RFCs forbid; we refuse them ourselves with 400: header
 * names that are not tokens ("Host a: b") or empty, control characters in
 * values, request-targets with anything but visible ASCII or empty, and
 * bytes after a request that ends the connection.
 *
 * Request smuggling: RFC 9112 section 6.3 says a request with both
 * Content-Length and Transfer-Encoding, or with an invalid Content-Length,
 * is an error; we also refuse a repeated Content-Length even with equal
 * values (RFC 9112 allows merging them, we do not), and a
 * Transfer-Encoding whose final coding is not chunked (llhttp's check).
 */
#include "config.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

#include "http/http_req.h"
#include "http/http_util.h"

enum req_state {
	RS_READING,	/* between or inside requests, llhttp running */
	RS_CONTINUE,	/* paused after headers, 100-continue to be sent */
	RS_DONE,	/* paused after a complete request */
	RS_ERROR,	/* sticky: llhttp refuses to go on, and so do we */
};

/* A stored header: offsets into r->hbuf, each string NUL-terminated. */
struct req_hdr {
	size_t	name_off;
	size_t	value_off;
};

#define VERSION_MAX	8	/* enough of "1.1" to tell D.D from junk */
#define BODY_MIN_CAP	1024
#define BODY_KEEP_CAP	(64 * 1024)	/* body buffers kept across requests */

struct http_req {
	llhttp_t		 p;
	struct http_req_limits	 lim;
	enum req_state		 state;
	uint64_t		 offset;	/* bytes consumed, connection */

	/* Parsing state of the current request. */
	int			 in_head;	/* request line or headers */
	uint64_t		 head_bytes;	/* raw bytes of those so far */
	int			 in_field;	/* inside a header name */
	int			 value_open;	/* last value not closed yet */
	int			 trailers;	/* headers done: now trailers */
	size_t			 ntrailers;
	uint64_t		 trailer_bytes;
	int			 saw_cl, saw_te, expect_continue;
	uint64_t		 field_at;	/* offset of the header name */
	int			 in_cl;		/* value is Content-Length's */
	uint64_t		 cl;		/* its digits so far */
	int			 closed;	/* last request closes conn. */
	char			 version[VERSION_MAX];
	size_t			 version_len;

	/* The request. */
	const char		*method;	/* static, from llhttp */
	char			*url;		/* target \0 path \0 query \0 */
	size_t			 url_len, url_cap;
	size_t			 path_off, query_off;
	int			 url_done;
	char			*hbuf;		/* header names and values */
	size_t			 hbuf_len, hbuf_cap;
	uint64_t		 hstored;	/* name+value bytes, no NULs */
	struct req_hdr		*hdrs;
	size_t			 nhdrs, hdrs_cap;
	char			*body;
	size_t			 body_len, body_cap;
	uint64_t		 body_hint;	/* Content-Length, or 0 */
	uint64_t		 body_max;	/* this request's: lim or less */
	http_req_head_fn	*head_fn;
	void			*head_arg;
	int			 keep_alive;

	/* Where llhttp_execute started, for exact offsets in callbacks. */
	const char		*exec_base;
	uint64_t		 exec_offset;

	/* After ERROR. */
	int			 err_status;
	const char		*err_what;
	int			 err_has_at;
	uint64_t		 err_at;
	char			 reason[192];
};

static const char E_HEAD_BIG[] = "request line and headers too large";
static const char E_HEADERS_MANY[] = "too many header fields";
static const char E_TRAILER_BIG[] = "chunked trailer too large";
static const char E_URL_BIG[] = "request-target too long";
static const char E_BODY_BIG[] = "request body too large";
static const char E_CL_DUP[] = "duplicate Content-Length";
static const char E_URL_CHAR[] = "invalid character in request-target";
static const char E_URL_EMPTY[] = "empty request-target";
static const char E_NAME_CHAR[] = "invalid character in header name";
static const char E_NAME_EMPTY[] = "empty header name";
static const char E_VALUE_CHAR[] = "invalid character in header value";
static const char E_CLOSED[] =
    "data after the last request of the connection";
static const char E_CL_TE[] =
    "both Content-Length and Transfer-Encoding (request smuggling)";
static const char E_VERSION[] = "unsupported HTTP version";
static const char E_UPGRADE[] = "protocol upgrade not supported";
static const char E_EOF[] = "connection closed in the middle of a request";

static const char empty[] = "";

static struct http_req *
req_of(llhttp_t *p)
{
	return p->data;
}

/* fail: record our own refusal; the return value stops llhttp. */
static int
fail(struct http_req *r, int status, const char *what)
{
	r->err_status = status;
	r->err_what = what;
	return -1;
}

/* offset_of: the connection offset of a byte in the buffer being parsed. */
static uint64_t
offset_of(const struct http_req *r, const char *where)
{
	return r->exec_offset + (uint64_t)(where - r->exec_base);
}

/* fail_at: the same, naming the offset of the offending byte. */
static int
fail_at(struct http_req *r, int status, const char *what, uint64_t at)
{
	r->err_has_at = 1;
	r->err_at = at;
	return fail(r, status, what);
}

/* The largest buffer sizes the limits allow, overflow-checked. */
static size_t
hbuf_max(const struct http_req *r)
{
	uint64_t n;

	n = (uint64_t)r->lim.max_header_bytes +
	    2 * (uint64_t)r->lim.max_headers;
	return n > SIZE_MAX ? SIZE_MAX : (size_t)n;
}

static size_t
url_max(const struct http_req *r)
{
	uint64_t n;

	n = 3 * ((uint64_t)r->lim.max_url + 1);
	return n > SIZE_MAX ? SIZE_MAX : (size_t)n;
}

static void
hbuf_put(struct http_req *r, const char *at, size_t len)
{
	http_grow(&r->hbuf, &r->hbuf_cap, r->hbuf_len + len, 256, hbuf_max(r));
	memcpy(r->hbuf + r->hbuf_len, at, len);
	r->hbuf_len += len;
}

/* --- request line -------------------------------------------------- */

static int
on_method_complete(llhttp_t *p)
{
	req_of(p)->method = llhttp_method_name((llhttp_method_t)p->method);
	return 0;
}

/*
 * The span callbacks below look at their bytes one by one, in wire
 * order, so that the first refusal (and its status) does not depend on
 * how the bytes were split across feeds: llhttp hands a span over in as
 * many pieces as there were buffers.
 */

static int
on_url(llhttp_t *p, const char *at, size_t len)
{
	struct http_req *r = req_of(p);
	unsigned char c;
	size_t i;

	if (len == 0)		/* llhttp flushing an empty span */
		return 0;
	for (i = 0; i < len; i++) {
		if (r->url_len + i >= r->lim.max_url)
			return fail_at(r, 414, E_URL_BIG, offset_of(r, at + i));
		/* Visible ASCII only (RFC 9112 section 3.2, RFC 3986). */
		c = (unsigned char)at[i];
		if (c <= 0x20 || c >= 0x7f)
			return fail_at(r, 400, E_URL_CHAR,
			    offset_of(r, at + i));
	}
	http_grow(&r->url, &r->url_cap, r->url_len + len, 64, url_max(r));
	memcpy(r->url + r->url_len, at, len);
	r->url_len += len;
	return 0;
}

/*
 * on_url_complete: lay out "target\0path\0query\0" in r->url. The path
 * ends at '?' or '#'; the query runs from after '?' to '#' or the end.
 */
static int
on_url_complete(llhttp_t *p)
{
	struct http_req *r = req_of(p);
	size_t n = r->url_len, plen, q, qlen;

	if (n == 0)		/* llhttp lets "CONNECT \r\n" through */
		return fail(r, 400, E_URL_EMPTY);
	for (plen = 0; plen < n && r->url[plen] != '?' &&
	    r->url[plen] != '#'; plen++)
		;
	q = plen;
	qlen = 0;
	if (q < n && r->url[q] == '?')
		for (q++; q + qlen < n && r->url[q + qlen] != '#'; qlen++)
			;
	http_grow(&r->url, &r->url_cap, n + 1 + plen + 1 + qlen + 1, 64,
	    url_max(r));
	r->url[n] = '\0';
	r->path_off = n + 1;
	memcpy(r->url + r->path_off, r->url, plen);
	r->url[r->path_off + plen] = '\0';
	r->query_off = r->path_off + plen + 1;
	memcpy(r->url + r->query_off, r->url + q, qlen);
	r->url[r->query_off + qlen] = '\0';
	r->url_done = 1;
	return 0;
}

static int
on_version(llhttp_t *p, const char *at, size_t len)
{
	struct http_req *r = req_of(p);
	size_t n;

	n = sizeof(r->version) - r->version_len;
	if (n > len)
		n = len;
	memcpy(r->version + r->version_len, at, n);
	r->version_len += n;
	return 0;
}

/* Only HTTP/1.0 and HTTP/1.1 (llhttp also takes 0.9 and 2.0). */
static int
on_version_complete(llhttp_t *p)
{
	if (p->http_major != 1 || p->http_minor > 1)
		return fail(req_of(p), 505, E_VERSION);
	return 0;
}

/* --- headers ------------------------------------------------------- */

/* close_value: end the value being stored; trim trailing blanks. */
static void
close_value(struct http_req *r)
{
	struct req_hdr *h;
	const char *name, *v;
	size_t vlen;

	if (!r->value_open)
		return;
	r->value_open = 0;
	h = &r->hdrs[r->nhdrs - 1];
	while (r->hbuf_len > h->value_off &&
	    (r->hbuf[r->hbuf_len - 1] == ' ' ||
	    r->hbuf[r->hbuf_len - 1] == '\t'))
		r->hbuf_len--;
	vlen = r->hbuf_len - h->value_off;
	hbuf_put(r, "", 1);
	name = r->hbuf + h->name_off;
	v = r->hbuf + h->value_off;
	if (http_ascii_caseeq(name, strlen(name), "expect") &&
	    http_ascii_caseeq(v, vlen, "100-continue"))
		r->expect_continue = 1;
}

/* new_field: start storing a header, if the count allows one more. */
static int
new_field(struct http_req *r, const char *at)
{
	size_t n;

	close_value(r);
	if (r->nhdrs >= r->lim.max_headers)
		return fail_at(r, 431, E_HEADERS_MANY, offset_of(r, at));
	if (r->nhdrs == r->hdrs_cap) {
		n = r->hdrs_cap ? r->hdrs_cap * 2 : 16;
		if (n > r->lim.max_headers)
			n = r->lim.max_headers;
		r->hdrs = http_xrealloc(r->hdrs, n * sizeof(*r->hdrs));
		r->hdrs_cap = n;
	}
	r->field_at = offset_of(r, at);
	r->hdrs[r->nhdrs].name_off = r->hbuf_len;
	r->hdrs[r->nhdrs].value_off = r->hbuf_len;
	r->nhdrs++;
	return 0;
}

/*
 * on_header_field: a piece of a header name. Names are tokens: llhttp
 * built without LLHTTP_STRICT_MODE lets "Host a: b" through, but
 * whitespace before the colon must be refused (RFC 9112 section 5.1).
 * Chunked trailers are counted against the limits, not stored.
 */
static int
on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct http_req *r = req_of(p);
	uint64_t *count;
	size_t i;

	if (len == 0)		/* llhttp flushing an empty span */
		return 0;
	if (!r->in_field) {
		if (r->trailers) {
			if (r->ntrailers >= r->lim.max_headers)
				return fail_at(r, 431, E_HEADERS_MANY,
				    offset_of(r, at));
			r->ntrailers++;
		} else if (new_field(r, at) != 0)
			return -1;
		r->in_field = 1;
	}
	count = r->trailers ? &r->trailer_bytes : &r->hstored;
	for (i = 0; i < len; i++) {
		if (*count + i >= r->lim.max_header_bytes)
			return fail_at(r, 431, r->trailers ? E_TRAILER_BIG :
			    E_HEAD_BIG, offset_of(r, at + i));
		if (!http_is_tchar((unsigned char)at[i]))
			return fail_at(r, 400, E_NAME_CHAR,
			    offset_of(r, at + i));
	}
	*count += len;
	if (!r->trailers)
		hbuf_put(r, at, len);
	return 0;
}

/*
 * on_header_field_complete: the name is whole; refuse a second
 * Content-Length and Content-Length with Transfer-Encoding here, before
 * llhttp looks at the values.
 */
static int
on_header_field_complete(llhttp_t *p)
{
	struct http_req *r = req_of(p);
	struct req_hdr *h;
	const char *name;
	size_t nlen;

	/* Without LLHTTP_STRICT_MODE, llhttp takes ": v" as a header. */
	if (!r->in_field)
		return fail(r, 400, E_NAME_EMPTY);
	r->in_field = 0;
	if (r->trailers)
		return 0;
	h = &r->hdrs[r->nhdrs - 1];
	name = r->hbuf + h->name_off;
	nlen = r->hbuf_len - h->name_off;
	if (http_ascii_caseeq(name, nlen, "content-length")) {
		if (r->saw_cl)
			return fail_at(r, 400, E_CL_DUP, r->field_at);
		if (r->saw_te)
			return fail_at(r, 400, E_CL_TE, r->field_at);
		r->saw_cl = 1;
		r->in_cl = 1;
	} else if (http_ascii_caseeq(name, nlen, "transfer-encoding")) {
		if (r->saw_cl)
			return fail_at(r, 400, E_CL_TE, r->field_at);
		r->saw_te = 1;
	}
	hbuf_put(r, "", 1);
	h->value_off = r->hbuf_len;
	r->value_open = 1;
	return 0;
}

/*
 * cl_digit: follow Content-Length's digits so that a length over
 * max_body is refused as soon as it is read, even one too long for 64
 * bits (which llhttp calls invalid). Anything else is llhttp's to refuse.
 */
static int
cl_digit(struct http_req *r, const char *at)
{
	unsigned d;

	if (*at < '0' || *at > '9') {
		r->in_cl = 0;
		return 0;
	}
	d = (unsigned)(*at - '0');
	if (r->cl > (r->lim.max_body - d) / 10)
		return fail_at(r, 413, E_BODY_BIG, offset_of(r, at));
	r->cl = r->cl * 10 + d;
	return 0;
}

/* on_header_value: a piece of a value; see on_header_field. */
static int
on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct http_req *r = req_of(p);
	uint64_t *count;
	unsigned char c;
	size_t i;

	if (len == 0 || (!r->trailers && !r->value_open))
		return 0;
	count = r->trailers ? &r->trailer_bytes : &r->hstored;
	for (i = 0; i < len; i++) {
		if (*count + i >= r->lim.max_header_bytes)
			return fail_at(r, 431, r->trailers ? E_TRAILER_BIG :
			    E_HEAD_BIG, offset_of(r, at + i));
		/* VCHAR, obs-text, SP, HTAB (RFC 9110 section 5.5). */
		c = (unsigned char)at[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return fail_at(r, 400, E_VALUE_CHAR,
			    offset_of(r, at + i));
		if (r->in_cl && cl_digit(r, at + i) != 0)
			return -1;
	}
	*count += len;
	if (!r->trailers)
		hbuf_put(r, at, len);
	return 0;
}

static int
on_header_value_complete(llhttp_t *p)
{
	struct http_req *r = req_of(p);

	r->in_cl = 0;
	if (!r->trailers)
		close_value(r);
	return 0;
}

/*
 * on_headers_complete: check the body length against max_body before any
 * of it arrives; refuse upgrades (we serve HTTP/1.x only, so Upgrade is
 * ignored as RFC 9110 section 7.8 allows, and CONNECT is handed out as an
 * ordinary request that ends the connection); pause for 100-continue.
 */
static int
on_headers_complete(llhttp_t *p)
{
	struct http_req *r = req_of(p);
	int chunked, has_body;

	close_value(r);
	r->in_cl = 0;
	r->in_head = 0;
	r->trailers = 1;
	/* A request line without a version is HTTP/0.9 to llhttp. */
	if (p->http_major != 1 || p->http_minor > 1)
		return fail(r, 505, E_VERSION);
	chunked = (p->flags & F_CHUNKED) != 0;
	if ((p->flags & F_TRANSFER_ENCODING) && r->saw_cl)
		return fail(r, 400, E_CL_TE);
	/* the hook is asked only when a body follows: most requests have
	 * none and need not pay for its checks */
	if (r->head_fn != NULL && (chunked || ((p->flags & F_CONTENT_LENGTH) &&
	    p->content_length > 0))) {
		uint64_t m = r->head_fn(r->head_arg, r);

		if (m < r->body_max)
			r->body_max = m;
	}
	if (!chunked && (p->flags & F_CONTENT_LENGTH)) {
		if (p->content_length > r->body_max)
			return fail(r, 413, E_BODY_BIG);
		r->body_hint = p->content_length;
	}
	p->upgrade = 0;
	r->keep_alive = llhttp_should_keep_alive(p) &&
	    p->method != HTTP_CONNECT;
	has_body = chunked || p->content_length > 0;
	if (r->expect_continue && p->http_minor == 1 && has_body) {
		r->state = RS_CONTINUE;
		return HPE_PAUSED;
	}
	return 0;
}

/* --- body ---------------------------------------------------------- */

static int
on_chunk_header(llhttp_t *p)
{
	struct http_req *r = req_of(p);

	if (p->content_length > r->body_max - r->body_len)
		return fail(r, 413, E_BODY_BIG);
	return 0;
}

static int
on_body(llhttp_t *p, const char *at, size_t len)
{
	struct http_req *r = req_of(p);
	uint64_t total;
	size_t need, max;

	if (len == 0)
		return 0;
	if (len > r->body_max - r->body_len)
		return fail(r, 413, E_BODY_BIG);
	need = r->body_len + len + 1;
	/* Grow towards the whole body (+ NUL), as far as it is known. */
	total = r->body_hint ? r->body_hint : r->body_max;
	max = total >= SIZE_MAX ? SIZE_MAX : (size_t)total + 1;
	http_grow(&r->body, &r->body_cap, need, BODY_MIN_CAP, max);
	memcpy(r->body + r->body_len, at, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return 0;
}

static int
on_message_complete(llhttp_t *p)
{
	struct http_req *r = req_of(p);

	r->keep_alive = llhttp_should_keep_alive(p) &&
	    p->method != HTTP_CONNECT;
	r->state = RS_DONE;
	return HPE_PAUSED;
}

static const llhttp_settings_t req_settings = {
	.on_url = on_url,
	.on_version = on_version,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
	.on_url_complete = on_url_complete,
	.on_method_complete = on_method_complete,
	.on_version_complete = on_version_complete,
	.on_header_field_complete = on_header_field_complete,
	.on_header_value_complete = on_header_value_complete,
	.on_chunk_header = on_chunk_header,
};

/* --- the interface ------------------------------------------------- */

/* clear: forget the request; keep small buffers for the next one. */
static void
clear(struct http_req *r)
{
	r->in_head = 1;
	r->head_bytes = 0;
	r->in_field = r->value_open = r->trailers = 0;
	r->ntrailers = 0;
	r->trailer_bytes = 0;
	r->saw_cl = r->saw_te = r->expect_continue = 0;
	r->in_cl = 0;
	r->cl = 0;
	r->version_len = 0;
	r->method = NULL;
	r->url_len = r->path_off = r->query_off = 0;
	r->url_done = 0;
	r->hbuf_len = 0;
	r->hstored = 0;
	r->nhdrs = 0;
	if (r->body_cap > BODY_KEEP_CAP) {
		free(r->body);
		r->body = NULL;
		r->body_cap = 0;
	}
	r->body_len = 0;
	r->body_hint = 0;
	r->body_max = r->lim.max_body;
	r->keep_alive = 0;
}

uint64_t
http_req_body_limit(const struct http_req *r)
{
	return r->body_max;
}

void
http_req_set_head_fn(struct http_req *r, http_req_head_fn *fn, void *arg)
{
	r->head_fn = fn;
	r->head_arg = arg;
}

struct http_req *
http_req_new(const struct http_req_limits *lim)
{
	struct http_req *r;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		abort();
	r->lim = *lim;
	llhttp_init(&r->p, HTTP_REQUEST, &req_settings);
	r->p.data = r;
	r->state = RS_READING;
	clear(r);
	return r;
}

void
http_req_free_(struct http_req *r)
{
	if (r == NULL)
		return;
	free(r->url);
	free(r->hbuf);
	free(r->hdrs);
	free(r->body);
	free(r);
}

/* is_dd: the version span looks like "1.2": well formed, unsupported. */
static int
is_dd(const struct http_req *r)
{
	return r->version_len == 3 && r->version[0] >= '0' &&
	    r->version[0] <= '9' && r->version[1] == '.' &&
	    r->version[2] >= '0' && r->version[2] <= '9';
}

/* set_error: enter RS_ERROR, saying what was wrong at offset at. */
static void
set_error(struct http_req *r, llhttp_errno_t err, uint64_t at)
{
	const char *what;
	int status;

	if (r->err_status != 0) {
		status = r->err_status;
		what = r->err_what;
		if (r->err_has_at)
			at = r->err_at;
	} else if (err == HPE_INVALID_VERSION && is_dd(r)) {
		status = 505;
		what = E_VERSION;
	} else if (err == HPE_PAUSED_UPGRADE || err == HPE_PAUSED_H2_UPGRADE) {
		status = 400;
		what = E_UPGRADE;
	} else {
		status = 400;
		what = llhttp_get_error_reason(&r->p);
		if (what == NULL)
			what = llhttp_errno_name(err);
	}
	r->err_status = status;
	r->err_what = what;
	snprintf(r->reason, sizeof(r->reason), "%s at byte %" PRIu64, what,
	    at);
	r->keep_alive = 0;
	r->state = RS_ERROR;
}

/* result: the outcome of state, after accounting for used bytes. */
static enum http_req_result
result(struct http_req *r, size_t off, size_t *used)
{
	*used = off;
	r->offset += off;
	switch (r->state) {
	case RS_DONE:
		return HTTP_REQ_DONE;
	case RS_CONTINUE:
		return HTTP_REQ_CONTINUE;
	case RS_ERROR:
		return HTTP_REQ_ERROR;
	case RS_READING:
		break;
	}
	return HTTP_REQ_NEED_MORE;
}

enum http_req_result
http_req_feed(struct http_req *r, const char *data, size_t len,
    size_t *used)
{
	llhttp_errno_t err;
	const char *base, *pos;
	size_t off = 0, n;

	*used = 0;
	if (r->state == RS_CONTINUE) {	/* 100 Continue was sent */
		r->state = RS_READING;
		llhttp_resume(&r->p);
	}
	if (r->state != RS_READING)
		return result(r, 0, used);
	if (r->closed) {
		/* Like llhttp's strict build: only empty lines may follow. */
		for (; off < len && (data[off] == '\r' || data[off] == '\n');
		    off++)
			;
		if (off < len) {
			r->err_status = 400;
			r->err_what = E_CLOSED;
			set_error(r, HPE_CLOSED_CONNECTION, r->offset + off);
		}
		return result(r, off, used);
	}
	while (off < len) {
		n = len - off;
		if (r->in_head) {
			if (r->head_bytes >= r->lim.max_header_bytes) {
				r->err_status = 431;
				r->err_what = E_HEAD_BIG;
				set_error(r, HPE_USER, r->offset + off);
				return result(r, off, used);
			}
			if (n > r->lim.max_header_bytes - r->head_bytes)
				n = r->lim.max_header_bytes - r->head_bytes;
		}
		base = data + off;
		r->exec_base = base;
		r->exec_offset = r->offset + off;
		err = llhttp_execute(&r->p, base, n);
		if (err == HPE_OK) {
			if (r->in_head)
				r->head_bytes += n;
			off += n;
			continue;
		}
		pos = llhttp_get_error_pos(&r->p);
		if (pos != NULL && pos >= base && pos <= base + n)
			off += (size_t)(pos - base);
		if (err != HPE_PAUSED || r->state == RS_READING)
			set_error(r, err, r->offset + off);
		return result(r, off, used);
	}
	return result(r, off, used);
}

/*
 * http_req_eof: a request never runs to EOF (RFC 9112 section 6.3: no
 * Content-Length and no chunked means no body), so this returns
 * NEED_MORE when the connection was idle between requests, ERROR (400)
 * when it cut a request short (after CONTINUE too: the body is missing),
 * and DONE or ERROR unchanged when one of those is pending.
 */
enum http_req_result
http_req_eof(struct http_req *r)
{
	llhttp_errno_t err;
	size_t used;

	if (r->state == RS_CONTINUE) {
		r->state = RS_READING;
		llhttp_resume(&r->p);
	}
	if (r->state != RS_READING)
		return result(r, 0, &used);
	/*
	 * After http_req_next, llhttp has yet to run the end of the last
	 * message (it was paused in on_message_complete); let it, or
	 * llhttp_finish would think a request is cut short.
	 */
	r->exec_base = empty;
	r->exec_offset = r->offset;
	err = llhttp_execute(&r->p, empty, 0);
	if (err == HPE_OK)
		err = llhttp_finish(&r->p);
	if (err == HPE_OK)
		return HTTP_REQ_NEED_MORE;	/* idle: nothing cut short */
	if (err != HPE_PAUSED || r->state != RS_DONE) {
		if (err == HPE_INVALID_EOF_STATE && r->err_status == 0) {
			r->err_status = 400;
			r->err_what = E_EOF;
		}
		set_error(r, err, r->offset);
	}
	return result(r, 0, &used);
}

void
http_req_next(struct http_req *r)
{
	if (r->state != RS_DONE)
		return;
	r->state = RS_READING;
	r->closed = !r->keep_alive;
	llhttp_resume(&r->p);
	clear(r);
}

const char *
http_req_method(const struct http_req *r)
{
	return r->method ? r->method : empty;
}

const char *
http_req_target(const struct http_req *r)
{
	return r->url_done ? r->url : empty;
}

const char *
http_req_path(const struct http_req *r)
{
	return r->url_done ? r->url + r->path_off : empty;
}

const char *
http_req_query(const struct http_req *r)
{
	return r->url_done ? r->url + r->query_off : empty;
}

const char *
http_req_header(const struct http_req *r, const char *name)
{
	const char *h;
	size_t i, j;

	/* Only closed headers; the last one may still be open. */
	for (i = 0; i < r->nhdrs; i++) {
		if (i == r->nhdrs - 1 && !r->trailers &&
		    (r->value_open || r->in_field))
			break;
		h = r->hbuf + r->hdrs[i].name_off;
		for (j = 0; h[j] != '\0' && http_ascii_lower((unsigned char)h[j]) ==
		    http_ascii_lower((unsigned char)name[j]); j++)
			;
		if (h[j] == '\0' && name[j] == '\0')
			return r->hbuf + r->hdrs[i].value_off;
	}
	return NULL;
}

size_t
http_req_nheaders(const struct http_req *r)
{
	return r->nhdrs;
}

const char *
http_req_body(const struct http_req *r, size_t *len)
{
	if (len != NULL)
		*len = r->body_len;
	return r->body_len ? r->body : empty;
}

int
http_req_keep_alive(const struct http_req *r)
{
	return r->state == RS_ERROR ? 0 : r->keep_alive;
}

int
http_req_version_minor(const struct http_req *r)
{
	return r->p.http_minor;
}

int
http_req_error(const struct http_req *r, const char **reason)
{
	if (r->state != RS_ERROR) {
		if (reason != NULL)
			*reason = empty;
		return 0;
	}
	if (reason != NULL)
		*reason = r->reason;
	return r->err_status;
}
