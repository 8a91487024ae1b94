/*
 * http_resp.h — HTTP/1.1 response parsing over llhttp in strict mode,
 * with limits: the client side's twin of http_req.h. Pure: bytes in,
 * responses out; no sockets, no libevent.
 *
 * Tell the parser which method the request used (a response to HEAD
 * has no body whatever its headers say), feed it the bytes the server
 * sends with http_resp_feed() and act on the result:
 *
 *	HEADERS   status line and headers are known; the body follows
 *	          (a sink may be set now, e.g. only for a 200)
 *	INTERIM   a 1xx (100 Continue, 103 Early Hints): its status and
 *	          headers are known until the next feed; the final response
 *	          to the same request follows
 *	DONE      the response is complete; http_resp_next() for the next
 *	ERROR     see http_resp_error(); close the connection
 *
 * Each feed stops at such an event and says how many bytes it consumed;
 * the caller keeps the rest and feeds it again. When the server closes
 * the connection, call http_resp_eof(): it completes a body that runs
 * until the close.
 *
 * The body is stored (NUL-terminated) unless a sink is set with
 * http_resp_set_sink(), which then gets each piece as it is decoded and
 * nothing is kept: big downloads need not be held whole.
 */
#ifndef VNAMIG_HTTP_RESP_H
#define VNAMIG_HTTP_RESP_H

#include <stddef.h>
#include <stdint.h>

struct http_resp;

struct http_resp_limits {
	uint32_t	max_header_bytes;	/* status line + headers, and
						 * the trailers apart, per
						 * response (each 1xx too) */
	uint32_t	max_headers;		/* header count; trailers apart */
	uint64_t	max_body;		/* decoded body bytes, stored
						 * or given to the sink */
};

enum http_resp_result {
	HTTP_RESP_NEED_MORE = 0,	/* all input consumed, not done */
	HTTP_RESP_DONE = 1,		/* a full response is available */
	HTTP_RESP_ERROR = -1,		/* see http_resp_error(); close */
	HTTP_RESP_HEADERS = 2,		/* headers of the final response */
	HTTP_RESP_INTERIM = 3,		/* a 1xx response was read */
};

/*
 * The body sink: called with each decoded piece of the body, in order.
 * Returns 0 to go on, -1 to stop (the feed then returns ERROR with
 * "body sink failed"; the sink keeps its own reason).
 */
typedef int (*http_resp_sink_fn)(void *arg, const char *data, size_t len);

/*
 * http_resp_new: a parser for the response to a request sent with METHOD
 * ("GET", "HEAD", ...; only HEAD changes anything). Never returns NULL
 * (aborts on out of memory). The limits are copied.
 */
struct http_resp *http_resp_new(const struct http_resp_limits *lim,
    const char *method);
void http_resp_free_(struct http_resp *r);
#define http_resp_free(r) do { http_resp_free_(r); (r) = NULL; } while (0)

/*
 * http_resp_set_sink: give the body to FN (with ARG) instead of storing
 * it, from the next body byte on; FN NULL goes back to storing. May be
 * called at any time, typically after HEADERS. Kept across
 * http_resp_next().
 */
void http_resp_set_sink(struct http_resp *r, http_resp_sink_fn fn,
    void *arg);

/*
 * http_resp_feed: parse up to len bytes; *used tells how many were
 * consumed (the caller drains that many and keeps the rest for the next
 * call, after http_resp_next when DONE). NEED_MORE always consumes all.
 */
enum http_resp_result http_resp_feed(struct http_resp *r, const char *data,
    size_t len, size_t *used);
/*
 * http_resp_eof: the server closed the connection. DONE when that ends a
 * body delimited by the close (no Content-Length, not chunked); ERROR
 * when it cuts a response short or comes before any of it; DONE or ERROR
 * unchanged when one is pending; NEED_MORE after a response that closed
 * the connection (nothing more was to come).
 */
enum http_resp_result http_resp_eof(struct http_resp *r);
/* Forget the response and get ready for the one to the next request,
 * sent with METHOD. Only after DONE; a no-op otherwise. */
void http_resp_next(struct http_resp *r, const char *method);

/* The response: status line and headers valid after HEADERS, INTERIM or
 * DONE; the body and trailers after DONE. Strings are valid until the
 * next feed, next or free. */
int http_resp_status(const struct http_resp *r);	/* 200, or 0 */
const char *http_resp_reason(const struct http_resp *r);	/* "OK" */
int http_resp_version_minor(const struct http_resp *r);	/* 0 or 1 */
/* First header (or trailer) of that name, case-insensitive, or NULL. */
const char *http_resp_header(const struct http_resp *r, const char *name);
const char *http_resp_trailer(const struct http_resp *r, const char *name);
size_t http_resp_nheaders(const struct http_resp *r);
/* The stored body ("" with len 0 when a sink took it). */
const char *http_resp_body(const struct http_resp *r, size_t *len);
/* Decoded body bytes so far (stored or given to the sink). */
uint64_t http_resp_body_bytes(const struct http_resp *r);
/* 1 when the connection can carry another request after this response. */
int http_resp_keep_alive(const struct http_resp *r);

/* After ERROR: a one-line reason saying what was wrong and where (byte
 * offset in the connection); NULL when there is no error. */
const char *http_resp_error(const struct http_resp *r);

#endif
