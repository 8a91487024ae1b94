/*
 * http_resp.c — see http_resp.h. A thin layer over llhttp in
 * HTTP_RESPONSE mode (strict: no lenient flag is ever set) that stores
 * one response at a time and enforces the limits of struct
 * http_resp_limits.
 *
 * llhttp is a streaming parser driven by callbacks. We pause it
 * (HPE_PAUSED) in on_headers_complete when a body follows (HEADERS), and
 * in on_message_complete (INTERIM for a 1xx, DONE otherwise); the
 * position llhttp_get_error_pos() gives then is how many bytes were
 * consumed. A feed after a pause first lets llhttp run the steps that
 * need no input, so a feed of zero bytes can finish a response.
 *
 * Limits, as in http_req.c:
 *   - header bytes: while a status line and headers are being read,
 *     http_resp_feed hands llhttp at most the bytes left in the budget,
 *     and the stored name/value bytes are counted in the callbacks;
 *     trailers (stored too) and each chunk's extensions have budgets of
 *     their own of the same size;
 *   - header count: in on_header_field (trailers counted apart);
 *   - body: Content-Length as its digits are read and again in
 *     on_headers_complete; each chunk size in on_chunk_header; each piece
 *     in on_body; all before any body byte is stored or given to the
 *     sink.
 * Memory per response is bounded by the limits: reason and headers
 * 2 * max_header_bytes + 4 * max_headers, body max_body + 1 (none with a
 * sink).
 *
 * What the RFCs say and llhttp, built without LLHTTP_STRICT_MODE, lets
 * through, we refuse ourselves: line ends other than CRLF in the framing
 * (that build takes any byte after a CR, and any two bytes after chunk
 * data, as the line end; see scan_framing), header names that are not
 * tokens, empty names, control characters in values and in the reason
 * phrase, status
 * codes outside 100-599 (RFC 9110 section 15), versions other than 1.0
 * and 1.1, bytes after a response that ends the connection. We also
 * refuse what we could not decode: a Transfer-Encoding other than plain
 * "chunked" (RFC 9112 section 6.1 would read a gzip-coded body to EOF;
 * we would hand out the coded bytes), Content-Length with
 * Transfer-Encoding, a repeated Content-Length even with equal values,
 * and 101 Switching Protocols (we never ask for an upgrade).
 *
 * No body, whatever the headers say (RFC 9110 sections 6.4.1, 15.2,
 * 15.3.5, 15.4.5): the response to HEAD, 1xx, 204 and 304. We set
 * llhttp's F_SKIPBODY for them in on_headers_complete, as its own
 * "return 1" would; llhttp reads the flag after the callback.
 */
#include "config.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

#include "http/http_resp.h"
#include "http/http_util.h"

enum resp_state {
	RS_READING,	/* between or inside responses, llhttp running */
	RS_HEADERS,	/* paused after the headers, a body follows */
	RS_INTERIM,	/* paused after a complete 1xx */
	RS_DONE,	/* paused after a complete final response */
	RS_ERROR,	/* sticky */
};

/* A stored header: offsets into r->hbuf, each string NUL-terminated. */
struct resp_hdr {
	size_t	name_off;
	size_t	value_off;
};

#define VERSION_MAX	8	/* enough of "1.1" to tell D.D from junk */
#define BODY_MIN_CAP	1024
#define BODY_KEEP_CAP	(64 * 1024)	/* body buffers kept across responses */

struct http_resp {
	llhttp_t		 p;
	struct http_resp_limits	 lim;
	enum resp_state		 state;
	uint64_t		 offset;	/* bytes consumed, connection */
	int			 head;		/* the request was HEAD */
	int			 closed;	/* last response closes conn. */
	http_resp_sink_fn	 sink;
	void			*sink_arg;

	/* Parsing state of the current response. */
	int			 started;	/* a byte of it was seen */
	int			 in_head;	/* status line or headers */
	uint64_t		 head_bytes;	/* raw bytes of those so far */
	int			 in_field;	/* inside a header name */
	int			 value_open;	/* last value not closed yet */
	int			 trailers;	/* headers done: now trailers */
	uint64_t		 stored;	/* name+value bytes, headers */
	uint64_t		 trailer_bytes;	/* the same, trailers */
	uint64_t		 ext_bytes;	/* chunk extensions, this chunk */
	int			 saw_cl, saw_te;
	uint64_t		 field_at;	/* offset of the header name */
	int			 in_cl;		/* value is Content-Length's */
	uint64_t		 cl;		/* its digits so far */
	int			 cr_pending;	/* framing: last byte a CR */
	int			 crlf_need;	/* chunk data ended: CRLF due */
	char			 version[VERSION_MAX];
	size_t			 version_len;

	/* The response. */
	int			 status;
	char			*rbuf;		/* reason phrase, NUL-ended */
	size_t			 rlen, rcap;
	char			*hbuf;		/* header names and values */
	size_t			 hbuf_len, hbuf_cap;
	struct resp_hdr		*hdrs;		/* headers, then trailers */
	size_t			 nhdrs, hdrs_cap;
	size_t			 nheaders;	/* of them headers */
	char			*body;
	size_t			 body_len, body_cap;
	uint64_t		 body_total;	/* stored or sunk */
	uint64_t		 body_hint;	/* Content-Length, or 0 */
	int			 keep_alive;

	/* Where llhttp_execute started, for exact offsets in callbacks,
	 * and how far scan_framing has looked in that buffer. */
	const char		*exec_base;
	uint64_t		 exec_offset;
	const char		*scanned;

	/* After ERROR. */
	const char		*err_what;	/* our refusal, or NULL */
	int			 err_has_at;
	uint64_t		 err_at;
	char			 reason[192];
};

static const char E_HEAD_BIG[] = "status line and headers too large";
static const char E_HEADERS_MANY[] = "too many header fields";
static const char E_TRAILERS_MANY[] = "too many trailer fields";
static const char E_TRAILER_BIG[] = "chunked trailer too large";
static const char E_EXT_BIG[] = "chunk extensions too large";
static const char E_BODY_BIG[] = "response body too large";
static const char E_CL_DUP[] = "duplicate Content-Length";
static const char E_TE_DUP[] = "duplicate Transfer-Encoding";
static const char E_TE_CODING[] =
    "Transfer-Encoding other than \"chunked\" not supported";
static const char E_CL_TE[] = "both Content-Length and Transfer-Encoding";
static const char E_NAME_CHAR[] = "invalid character in header name";
static const char E_NAME_EMPTY[] = "empty header name";
static const char E_VALUE_CHAR[] = "invalid character in header value";
static const char E_REASON_CHAR[] = "invalid character in reason phrase";
static const char E_STATUS[] = "status code outside 100-599";
static const char E_STATUS_BAD[] = "invalid status code";
static const char E_LINE_END[] = "line end is not CRLF";
static const char E_VERSION[] = "unsupported HTTP version";
static const char E_UPGRADE[] = "protocol upgrade not supported";
static const char E_CLOSED[] =
    "data after the last response of the connection";
static const char E_SINK[] = "body sink failed";
static const char E_EOF_NONE[] = "connection closed before the response";
static const char E_EOF_HEAD[] =
    "connection closed in the middle of the status line or headers";
static const char E_EOF_BODY[] =
    "connection closed in the middle of the response body";
static const char E_EOF_INTERIM[] =
    "connection closed after an interim (1xx) response";

static const char empty[] = "";

/* VCHAR, obs-text, SP and HTAB: field values and the reason phrase. */
static int
is_text(unsigned char c)
{
	return (c >= 0x20 && c != 0x7f) || c == '\t';
}

static struct http_resp *
resp_of(llhttp_t *p)
{
	return p->data;
}

/* offset_of: the connection offset of a byte in the buffer being parsed. */
static uint64_t
offset_of(const struct http_resp *r, const char *where)
{
	return r->exec_offset + (uint64_t)(where - r->exec_base);
}

/* fail: record our own refusal; the return value stops llhttp. */
static int
fail(struct http_resp *r, const char *what)
{
	r->err_what = what;
	return -1;
}

/* fail_at: the same, naming the offset of the offending byte. */
static int
fail_at(struct http_resp *r, const char *what, uint64_t at)
{
	r->err_has_at = 1;
	r->err_at = at;
	return fail(r, what);
}

/* The largest header buffer the limits allow (headers and trailers). */
static size_t
hbuf_max(const struct http_resp *r)
{
	uint64_t n;

	n = 2 * ((uint64_t)r->lim.max_header_bytes +
	    2 * (uint64_t)r->lim.max_headers);
	return n > SIZE_MAX ? SIZE_MAX : (size_t)n;
}

static void
hbuf_put(struct http_resp *r, const char *at, size_t len)
{
	http_grow(&r->hbuf, &r->hbuf_cap, r->hbuf_len + len, 256, hbuf_max(r));
	memcpy(r->hbuf + r->hbuf_len, at, len);
	r->hbuf_len += len;
}

/*
 * scan_framing: look at the bytes llhttp consumed as framing (everything
 * but body data: status line, headers, chunk lines, trailers) from
 * r->scanned to END. In the framing a CR comes only before an LF and an
 * LF only after a CR; the two bytes after each chunk's data are CRLF
 * (RFC 9112 sections 2.2 and 7.1). 0, or -1 naming the offending byte.
 */
static int
scan_framing(struct http_resp *r, const char *end)
{
	const char *p;

	for (p = r->scanned; p < end; p++) {
		if (r->crlf_need == 2 && *p != '\r')
			return fail_at(r, E_LINE_END, offset_of(r, p));
		if (*p == '\n' && !r->cr_pending)
			return fail_at(r, E_LINE_END, offset_of(r, p));
		if (r->cr_pending && *p != '\n')
			return fail_at(r, E_LINE_END, offset_of(r, p));
		r->cr_pending = *p == '\r';
		if (r->crlf_need > 0)
			r->crlf_need--;
	}
	r->scanned = end;
	return 0;
}

/* --- status line --------------------------------------------------- */

static int
on_message_begin(llhttp_t *p)
{
	resp_of(p)->started = 1;
	return 0;
}

static int
on_version(llhttp_t *p, const char *at, size_t len)
{
	struct http_resp *r = resp_of(p);
	size_t n;

	r->started = 1;
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
		return fail(resp_of(p), E_VERSION);
	return 0;
}

/* RFC 9110 section 15: three digits, 100 to 599. */
static int
check_status(struct http_resp *r)
{
	if (r->p.status_code < 100 || r->p.status_code > 599)
		return fail(r, E_STATUS);
	r->status = r->p.status_code;
	return 0;
}

/* on_status: a piece of the reason phrase, checked and stored. */
static int
on_status(llhttp_t *p, const char *at, size_t len)
{
	struct http_resp *r = resp_of(p);
	size_t i;

	if (len == 0)
		return 0;
	if (r->status == 0 && check_status(r) != 0)
		return -1;
	for (i = 0; i < len; i++)
		if (!is_text((unsigned char)at[i]))
			return fail_at(r, E_REASON_CHAR, offset_of(r, at + i));
	/* Bounded: the whole head is at most max_header_bytes. */
	http_grow(&r->rbuf, &r->rcap, r->rlen + len + 1, 64,
	    (size_t)r->lim.max_header_bytes + 1);
	memcpy(r->rbuf + r->rlen, at, len);
	r->rlen += len;
	r->rbuf[r->rlen] = '\0';
	return 0;
}

static int
on_status_complete(llhttp_t *p)
{
	struct http_resp *r = resp_of(p);

	return r->status == 0 ? check_status(r) : 0;
}

/* --- headers and trailers ------------------------------------------ */

/* close_value: end the value being stored; trim trailing blanks. */
static void
close_value(struct http_resp *r)
{
	struct resp_hdr *h;

	if (!r->value_open)
		return;
	r->value_open = 0;
	h = &r->hdrs[r->nhdrs - 1];
	while (r->hbuf_len > h->value_off &&
	    (r->hbuf[r->hbuf_len - 1] == ' ' ||
	    r->hbuf[r->hbuf_len - 1] == '\t'))
		r->hbuf_len--;
	hbuf_put(r, "", 1);
}

/* new_field: start storing a header or trailer, if the count allows. */
static int
new_field(struct http_resp *r, const char *at)
{
	size_t n, have, cap;

	close_value(r);
	have = r->trailers ? r->nhdrs - r->nheaders : r->nhdrs;
	if (have >= r->lim.max_headers)
		return fail_at(r, r->trailers ? E_TRAILERS_MANY :
		    E_HEADERS_MANY, offset_of(r, at));
	if (r->nhdrs == r->hdrs_cap) {
		cap = 2 * (size_t)r->lim.max_headers;
		n = r->hdrs_cap ? r->hdrs_cap * 2 : 16;
		if (n > cap)
			n = cap;
		r->hdrs = http_xrealloc(r->hdrs, n * sizeof(*r->hdrs));
		r->hdrs_cap = n;
	}
	r->field_at = offset_of(r, at);
	r->hdrs[r->nhdrs].name_off = r->hbuf_len;
	r->hdrs[r->nhdrs].value_off = r->hbuf_len;
	r->nhdrs++;
	return 0;
}

/* on_header_field: a piece of a header (or trailer) name. */
static int
on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct http_resp *r = resp_of(p);
	uint64_t *count;
	size_t i;

	if (len == 0)		/* llhttp flushing an empty span */
		return 0;
	if (!r->in_field) {
		if (new_field(r, at) != 0)
			return -1;
		r->in_field = 1;
	}
	count = r->trailers ? &r->trailer_bytes : &r->stored;
	for (i = 0; i < len; i++) {
		if (*count + i >= r->lim.max_header_bytes)
			return fail_at(r, r->trailers ? E_TRAILER_BIG :
			    E_HEAD_BIG, offset_of(r, at + i));
		if (!http_is_tchar((unsigned char)at[i]))
			return fail_at(r, E_NAME_CHAR, offset_of(r, at + i));
	}
	*count += len;
	hbuf_put(r, at, len);
	return 0;
}

/*
 * on_header_field_complete: the name is whole; refuse a second
 * Content-Length or Transfer-Encoding, and the two together, before
 * llhttp looks at the values.
 */
static int
on_header_field_complete(llhttp_t *p)
{
	struct http_resp *r = resp_of(p);
	struct resp_hdr *h;
	const char *name;
	size_t nlen;

	/* Without LLHTTP_STRICT_MODE, llhttp takes ": v" as a header. */
	if (!r->in_field)
		return fail(r, E_NAME_EMPTY);
	r->in_field = 0;
	h = &r->hdrs[r->nhdrs - 1];
	name = r->hbuf + h->name_off;
	nlen = r->hbuf_len - h->name_off;
	if (!r->trailers && http_ascii_caseeq(name, nlen, "content-length")) {
		if (r->saw_cl)
			return fail_at(r, E_CL_DUP, r->field_at);
		if (r->saw_te)
			return fail_at(r, E_CL_TE, r->field_at);
		r->saw_cl = 1;
		r->in_cl = 1;
	} else if (!r->trailers &&
	    http_ascii_caseeq(name, nlen, "transfer-encoding")) {
		if (r->saw_te)
			return fail_at(r, E_TE_DUP, r->field_at);
		if (r->saw_cl)
			return fail_at(r, E_CL_TE, r->field_at);
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
 * bits. Anything else is llhttp's to refuse.
 */
static int
cl_digit(struct http_resp *r, const char *at)
{
	unsigned d;

	if (*at < '0' || *at > '9') {
		r->in_cl = 0;
		return 0;
	}
	d = (unsigned)(*at - '0');
	if (r->cl > (r->lim.max_body - d) / 10)
		return fail_at(r, E_BODY_BIG, offset_of(r, at));
	r->cl = r->cl * 10 + d;
	return 0;
}

/* on_header_value: a piece of a value; see on_header_field. */
static int
on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct http_resp *r = resp_of(p);
	uint64_t *count;
	size_t i;

	if (len == 0 || !r->value_open)
		return 0;
	count = r->trailers ? &r->trailer_bytes : &r->stored;
	for (i = 0; i < len; i++) {
		if (*count + i >= r->lim.max_header_bytes)
			return fail_at(r, r->trailers ? E_TRAILER_BIG :
			    E_HEAD_BIG, offset_of(r, at + i));
		if (!is_text((unsigned char)at[i]))
			return fail_at(r, E_VALUE_CHAR, offset_of(r, at + i));
		if (r->in_cl && cl_digit(r, at + i) != 0)
			return -1;
	}
	*count += len;
	hbuf_put(r, at, len);
	return 0;
}

static int
on_header_value_complete(llhttp_t *p)
{
	struct http_resp *r = resp_of(p);

	r->in_cl = 0;
	close_value(r);
	return 0;
}

/* find: the first field of that name in hdrs[from..to), or NULL. */
static const char *
find(const struct http_resp *r, size_t from, size_t to, const char *name)
{
	const char *h;
	size_t i, j;

	for (i = from; i < to; i++) {
		/* Only closed fields; the last one may still be open. */
		if (i == r->nhdrs - 1 && (r->value_open || r->in_field))
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

/*
 * on_headers_complete: settle whether a body follows and check its
 * length against max_body before any of it arrives. Pauses (HEADERS)
 * when a body follows; a 1xx or a response without a body runs on to
 * on_message_complete.
 */
static int
on_headers_complete(llhttp_t *p)
{
	struct http_resp *r = resp_of(p);
	const char *te;
	int chunked;

	close_value(r);
	r->in_cl = 0;
	r->in_head = 0;
	r->trailers = 1;
	r->nheaders = r->nhdrs;
	if (p->http_major != 1 || p->http_minor > 1)
		return fail(r, E_VERSION);
	if (r->status == 0 && check_status(r) != 0)
		return -1;
	if (r->status == 101)
		return fail(r, E_UPGRADE);
	if (r->status < 200 || r->status == 204 || r->status == 304 ||
	    r->head) {
		p->flags |= F_SKIPBODY;
		return 0;
	}
	chunked = (p->flags & F_CHUNKED) != 0;
	if (r->saw_te) {
		te = find(r, 0, r->nheaders, "transfer-encoding");
		if (!chunked || te == NULL ||
		    !http_ascii_caseeq(te, strlen(te), "chunked"))
			return fail(r, E_TE_CODING);
	}
	if (!chunked && (p->flags & F_CONTENT_LENGTH)) {
		if (p->content_length > r->lim.max_body)
			return fail(r, E_BODY_BIG);
		r->body_hint = p->content_length;
		if (p->content_length == 0)
			return 0;
	}
	r->state = RS_HEADERS;
	return HPE_PAUSED;
}

/* --- body ---------------------------------------------------------- */

static int
on_chunk_extension(llhttp_t *p, const char *at, size_t len)
{
	struct http_resp *r = resp_of(p);

	if (len > r->lim.max_header_bytes - r->ext_bytes)
		return fail_at(r, E_EXT_BIG, offset_of(r, at));
	r->ext_bytes += len;
	return 0;
}

static int
on_chunk_header(llhttp_t *p)
{
	struct http_resp *r = resp_of(p);

	r->ext_bytes = 0;
	if (p->content_length > r->lim.max_body - r->body_total)
		return fail(r, E_BODY_BIG);
	return 0;
}

static int
on_body(llhttp_t *p, const char *at, size_t len)
{
	struct http_resp *r = resp_of(p);
	uint64_t total;
	size_t max;

	if (len == 0)
		return 0;
	if (scan_framing(r, at) != 0)
		return -1;
	r->scanned = at + len;
	if (len > r->lim.max_body - r->body_total)
		return fail_at(r, E_BODY_BIG, offset_of(r, at));
	r->body_total += len;
	/* llhttp zeroes content_length when a chunk's data is all read. */
	if ((p->flags & F_CHUNKED) && p->content_length == 0)
		r->crlf_need = 2;
	if (r->sink != NULL) {
		if (r->sink(r->sink_arg, at, len) != 0)
			return fail_at(r, E_SINK, offset_of(r, at));
		return 0;
	}
	/* Grow towards the whole body (+ NUL), as far as it is known. */
	total = r->body_hint ? r->body_hint : r->lim.max_body;
	max = total >= SIZE_MAX ? SIZE_MAX : (size_t)total + 1;
	http_grow(&r->body, &r->body_cap, r->body_len + len + 1, BODY_MIN_CAP, max);
	memcpy(r->body + r->body_len, at, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return 0;
}

static int
on_message_complete(llhttp_t *p)
{
	struct http_resp *r = resp_of(p);

	close_value(r);
	if (r->status < 200) {
		r->state = RS_INTERIM;
		return HPE_PAUSED;
	}
	r->keep_alive = llhttp_should_keep_alive(p);
	r->state = RS_DONE;
	return HPE_PAUSED;
}

static const llhttp_settings_t resp_settings = {
	.on_message_begin = on_message_begin,
	.on_status = on_status,
	.on_version = on_version,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_chunk_extension_name = on_chunk_extension,
	.on_chunk_extension_value = on_chunk_extension,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
	.on_status_complete = on_status_complete,
	.on_version_complete = on_version_complete,
	.on_header_field_complete = on_header_field_complete,
	.on_header_value_complete = on_header_value_complete,
	.on_chunk_header = on_chunk_header,
};

/* --- the interface ------------------------------------------------- */

/* clear: forget the response; keep small buffers for the next one. */
static void
clear(struct http_resp *r)
{
	r->started = 0;
	r->in_head = 1;
	r->head_bytes = 0;
	r->in_field = r->value_open = r->trailers = 0;
	r->stored = r->trailer_bytes = r->ext_bytes = 0;
	r->saw_cl = r->saw_te = 0;
	r->in_cl = 0;
	r->cl = 0;
	r->cr_pending = r->crlf_need = 0;
	r->version_len = 0;
	r->status = 0;
	r->rlen = 0;
	if (r->rbuf != NULL)
		r->rbuf[0] = '\0';
	r->hbuf_len = 0;
	r->nhdrs = r->nheaders = 0;
	if (r->body_cap > BODY_KEEP_CAP) {
		free(r->body);
		r->body = NULL;
		r->body_cap = 0;
	}
	r->body_len = 0;
	r->body_total = 0;
	r->body_hint = 0;
	r->keep_alive = 0;
}

static void
set_method(struct http_resp *r, const char *method)
{
	r->head = method != NULL && strcmp(method, "HEAD") == 0;
}

struct http_resp *
http_resp_new(const struct http_resp_limits *lim, const char *method)
{
	struct http_resp *r;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		abort();
	r->lim = *lim;
	llhttp_init(&r->p, HTTP_RESPONSE, &resp_settings);
	r->p.data = r;
	r->state = RS_READING;
	set_method(r, method);
	clear(r);
	return r;
}

void
http_resp_free_(struct http_resp *r)
{
	if (r == NULL)
		return;
	free(r->rbuf);
	free(r->hbuf);
	free(r->hdrs);
	free(r->body);
	free(r);
}

void
http_resp_set_sink(struct http_resp *r, http_resp_sink_fn fn, void *arg)
{
	r->sink = fn;
	r->sink_arg = arg;
}

/* is_dd: the version span looks like "1.2": well formed, unsupported. */
static int
is_dd(const struct http_resp *r)
{
	return r->version_len == 3 && r->version[0] >= '0' &&
	    r->version[0] <= '9' && r->version[1] == '.' &&
	    r->version[2] >= '0' && r->version[2] <= '9';
}

/* set_error: enter RS_ERROR, saying what was wrong at offset at. */
static void
set_error(struct http_resp *r, llhttp_errno_t err, uint64_t at)
{
	const char *what;

	if (r->err_what != NULL) {
		what = r->err_what;
		if (r->err_has_at)
			at = r->err_at;
	} else if (err == HPE_INVALID_VERSION && is_dd(r)) {
		what = E_VERSION;
	} else if (err == HPE_PAUSED_UPGRADE || err == HPE_PAUSED_H2_UPGRADE) {
		what = E_UPGRADE;
	} else if (err == HPE_INVALID_STATUS) {
		what = E_STATUS_BAD;
	} else {
		what = llhttp_get_error_reason(&r->p);
		if (what == NULL)
			what = llhttp_errno_name(err);
	}
	r->err_what = what;
	snprintf(r->reason, sizeof(r->reason), "%s at byte %" PRIu64, what,
	    at);
	r->keep_alive = 0;
	r->state = RS_ERROR;
}

/* result: the outcome of state, after accounting for used bytes. */
static enum http_resp_result
result(struct http_resp *r, size_t off, size_t *used)
{
	*used = off;
	r->offset += off;
	switch (r->state) {
	case RS_HEADERS:
		return HTTP_RESP_HEADERS;
	case RS_INTERIM:
		return HTTP_RESP_INTERIM;
	case RS_DONE:
		return HTTP_RESP_DONE;
	case RS_ERROR:
		return HTTP_RESP_ERROR;
	case RS_READING:
		break;
	}
	return HTTP_RESP_NEED_MORE;
}

/* resume: go on after HEADERS or INTERIM (after INTERIM, with a fresh
 * response: the final one follows). 1 when llhttp was paused. */
static int
resume(struct http_resp *r)
{
	if (r->state == RS_INTERIM)
		clear(r);
	else if (r->state != RS_HEADERS)
		return 0;
	r->state = RS_READING;
	llhttp_resume(&r->p);
	return 1;
}

/*
 * run: llhttp over data[0..n) (n may be 0 right after a pause: llhttp
 * then runs the steps that need no input). Returns the bytes consumed;
 * r->state says whether it stopped.
 */
static size_t
run(struct http_resp *r, const char *data, size_t n, uint64_t at)
{
	llhttp_errno_t err;
	const char *pos;
	size_t off = n;

	r->exec_base = data;
	r->exec_offset = at;
	r->scanned = data;
	err = llhttp_execute(&r->p, data, n);
	if (err == HPE_OK) {
		if (r->in_head)
			r->head_bytes += n;
	} else {
		pos = llhttp_get_error_pos(&r->p);
		off = pos != NULL && pos >= data && pos <= data + n ?
		    (size_t)(pos - data) : 0;
		if (err != HPE_PAUSED || r->state == RS_READING) {
			/* A bad line end before llhttp's error comes first. */
			if (r->err_what == NULL)
				(void)scan_framing(r, data + off);
			set_error(r, err, at + off);
			return off;
		}
	}
	/* A response is not HEADERS or DONE before its framing checks. */
	if (scan_framing(r, data + off) != 0)
		set_error(r, HPE_USER, at + off);
	return off;
}

enum http_resp_result
http_resp_feed(struct http_resp *r, const char *data, size_t len,
    size_t *used)
{
	size_t off = 0, n;
	int again;

	*used = 0;
	if (len == 0)
		data = empty;
	again = resume(r);
	if (r->state != RS_READING)
		return result(r, 0, used);
	if (r->closed) {
		if (len > 0) {
			r->err_what = E_CLOSED;
			set_error(r, HPE_CLOSED_CONNECTION, r->offset);
		}
		return result(r, 0, used);
	}
	while (off < len || again) {
		again = 0;
		n = len - off;
		if (r->in_head) {
			if (r->head_bytes >= r->lim.max_header_bytes &&
			    n > 0) {
				r->err_what = E_HEAD_BIG;
				set_error(r, HPE_USER, r->offset + off);
				return result(r, off, used);
			}
			if (n > r->lim.max_header_bytes - r->head_bytes)
				n = (size_t)(r->lim.max_header_bytes -
				    r->head_bytes);
		}
		off += run(r, data + off, n, r->offset + off);
		if (r->state != RS_READING)
			break;
	}
	return result(r, off, used);
}

enum http_resp_result
http_resp_eof(struct http_resp *r)
{
	llhttp_errno_t err;
	size_t used;

	if (r->state == RS_INTERIM) {
		r->err_what = E_EOF_INTERIM;
		set_error(r, HPE_INVALID_EOF_STATE, r->offset);
	}
	resume(r);
	if (r->state != RS_READING || r->closed)
		return result(r, 0, &used);
	/* Let llhttp run what needs no input (the end of a message). */
	run(r, empty, 0, r->offset);
	if (r->state != RS_READING)
		return result(r, 0, &used);
	if (!r->started) {
		r->err_what = E_EOF_NONE;
		set_error(r, HPE_INVALID_EOF_STATE, r->offset);
		return result(r, 0, &used);
	}
	err = llhttp_finish(&r->p);
	if (err == HPE_PAUSED && r->state == RS_DONE)
		return result(r, 0, &used);
	if (r->err_what == NULL)
		r->err_what = r->in_head ? E_EOF_HEAD : E_EOF_BODY;
	set_error(r, err, r->offset);
	return result(r, 0, &used);
}

void
http_resp_next(struct http_resp *r, const char *method)
{
	if (r->state != RS_DONE)
		return;
	r->state = RS_READING;
	r->closed = !r->keep_alive;
	llhttp_resume(&r->p);
	clear(r);
	set_method(r, method);
}

int
http_resp_status(const struct http_resp *r)
{
	return r->status;
}

const char *
http_resp_reason(const struct http_resp *r)
{
	return r->rlen ? r->rbuf : empty;
}

int
http_resp_version_minor(const struct http_resp *r)
{
	return r->p.http_minor;
}

const char *
http_resp_header(const struct http_resp *r, const char *name)
{
	return find(r, 0, r->trailers ? r->nheaders : r->nhdrs, name);
}

const char *
http_resp_trailer(const struct http_resp *r, const char *name)
{
	return r->trailers ? find(r, r->nheaders, r->nhdrs, name) : NULL;
}

size_t
http_resp_nheaders(const struct http_resp *r)
{
	return r->trailers ? r->nheaders : r->nhdrs;
}

const char *
http_resp_body(const struct http_resp *r, size_t *len)
{
	if (len != NULL)
		*len = r->body_len;
	return r->body_len ? r->body : empty;
}

uint64_t
http_resp_body_bytes(const struct http_resp *r)
{
	return r->body_total;
}

int
http_resp_keep_alive(const struct http_resp *r)
{
	return r->state == RS_ERROR ? 0 : r->keep_alive;
}

const char *
http_resp_error(const struct http_resp *r)
{
	return r->state == RS_ERROR ? r->reason : NULL;
}
