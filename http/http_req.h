/*
 * http_req.h — HTTP/1.1 request parsing over llhttp in strict mode, with
 * limits. Pure: bytes in, requests out; no sockets, no libevent.
 *
 * Feed bytes with http_req_feed(); it stops after each complete request
 * (so pipelined requests are handled one at a time, in order) and reports
 * how many bytes it consumed. After handling a request, call
 * http_req_next() and feed the rest.
 */
#ifndef VNAMIG_HTTP_REQ_H
#define VNAMIG_HTTP_REQ_H

#include <stddef.h>
#include <stdint.h>

struct http_req;

struct http_req_limits {
	uint32_t	max_header_bytes;	/* request line + headers */
	uint32_t	max_headers;		/* header count */
	uint32_t	max_url;		/* request-target bytes */
	uint64_t	max_body;		/* decoded body bytes */
};

enum http_req_result {
	HTTP_REQ_NEED_MORE = 0,	/* all input consumed, request incomplete */
	HTTP_REQ_DONE = 1,	/* a full request is available */
	HTTP_REQ_ERROR = -1,	/* see http_req_error(); close after reply */
	HTTP_REQ_CONTINUE = 2,	/* headers done with "Expect: 100-continue"
				 * and the body is within limits: send
				 * "HTTP/1.1 100 Continue", then feed on */
};

/*
 * The head hook: called when a request's headers are complete and a
 * body follows, before any of it is read (method, target and headers are
 * readable);
 * returns the most body bytes this request may have. A smaller figure
 * than limits.max_body refuses a longer body with 413 before it is
 * buffered: a server can bound what an unauthenticated client makes it
 * hold by route and by credentials, not only by one global limit.
 */
typedef uint64_t http_req_head_fn(void *arg, const struct http_req *r);
void http_req_set_head_fn(struct http_req *r, http_req_head_fn *fn,
    void *arg);
/* The body limit in force for the current request (after the hook). */
uint64_t http_req_body_limit(const struct http_req *r);

/* http_req_new never returns NULL (aborts on out of memory). */
struct http_req *http_req_new(const struct http_req_limits *lim);
void http_req_free_(struct http_req *r);
#define http_req_free(r) do { http_req_free_(r); (r) = NULL; } while (0)

/*
 * http_req_feed: parse up to len bytes; *used tells how many were
 * consumed (the caller drains that many and keeps the rest for the next
 * call, after http_req_next when DONE).
 */
enum http_req_result http_req_feed(struct http_req *r, const char *data,
    size_t len, size_t *used);
/* The peer closed its side: completes a body that runs to EOF, if any. */
enum http_req_result http_req_eof(struct http_req *r);
/* Forget the current request and get ready for the next one. */
void http_req_next(struct http_req *r);

/* The request, valid after DONE (or CONTINUE for all but the body). */
const char *http_req_method(const struct http_req *r);	/* "GET" */
const char *http_req_target(const struct http_req *r);	/* raw URL */
const char *http_req_path(const struct http_req *r);	/* before '?' */
const char *http_req_query(const struct http_req *r);	/* after '?' or "" */
/* First header of that name (case-insensitive), or NULL. */
const char *http_req_header(const struct http_req *r, const char *name);
size_t http_req_nheaders(const struct http_req *r);
const char *http_req_body(const struct http_req *r, size_t *len);
int http_req_keep_alive(const struct http_req *r);
int http_req_version_minor(const struct http_req *r);	/* 0 or 1 */

/* After ERROR: the HTTP status to answer (400, 413, 414, 431, 505 ...)
 * and a one-line reason saying what was wrong and where (byte offset). */
int http_req_error(const struct http_req *r, const char **reason);

#endif
