/*
 * http_client.h — HTTP/1.1 requests from the reactor (no threads): one
 * call = one request, answered by a callback on the loop with the
 * response or an error saying what failed.
 *
 * Connections are kept alive and reused, per scheme://host:port (and CA
 * file; a CA file is read when its host is first called), within
 * limits: connections per host and in all (more calls wait
 * in order, in a bounded queue: a call beyond it is refused at once),
 * idle connections per host, an idle timeout. TLS is 1.2 or later, the
 * server's certificate verified against the system's CAs or a given CA
 * file, its name checked against the URL's host (or IP address), SNI
 * sent; there is no way to turn verification off.
 *
 * Each attempt is bounded by a connect timeout and a total timeout (from
 * its start, queueing included, to the whole response), the response by
 * header and body limits. A failed attempt is tried again, after a capped
 * exponential backoff with jitter, when that is safe:
 *
 *	DNS or connect failure			always (nothing was sent)
 *	timeout before any response byte	idempotent method or retry_safe
 *	closed before any response byte		idempotent method or retry_safe
 *	429 Too Many Requests			always (the server refused it)
 *	5xx except 501 and 505			idempotent method or retry_safe
 *
 * A Retry-After of a 429/503 is honoured: the next attempt waits at least
 * that long; one asking for more than backoff_max ends the call with that
 * response (retry_after_ms says how long) instead. A request sent on a
 * kept-alive connection that the server had closed meanwhile is sent
 * again at once on a new one (once, not counted as an attempt) when
 * retrying is safe. TLS failures, protocol errors and limits are final.
 *
 * Names are looked up without blocking (net_server_connect: evdns, with
 * /etc/hosts first); IPv4 and IPv6 literals are used as they are.
 */
#ifndef VNAMIG_HTTP_CLIENT_H
#define VNAMIG_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct net_server;
struct http_client;
struct http_client_call;

struct http_client_limits {
	uint32_t	max_per_host;		/* open connections, 4 */
	uint32_t	max_total;		/* all hosts, 64 */
	uint32_t	max_idle_per_host;	/* kept alive, 2 */
	uint64_t	idle_ms;		/* then closed, 30 s */
	uint32_t	max_queue;		/* calls waiting, 1024 */
	uint64_t	max_response;		/* body bytes, 1 MiB */
	uint32_t	max_header_bytes;	/* head: 64 KiB */
	uint32_t	max_headers;		/* 100 */
};

/* The defaults above; a 0 in limits given to http_client_new means the
 * default too. */
void http_client_limits_default(struct http_client_limits *l);

enum http_client_error {
	HC_OK = 0,		/* a response, whatever its status */
	HC_ERR_DNS,		/* the host name did not resolve */
	HC_ERR_CONNECT,		/* refused, unreachable, reset */
	HC_ERR_TLS,		/* handshake failed: the certificate was not
				 * verified, is for another name, ... */
	HC_ERR_TIMEOUT,		/* connect_timeout or timeout passed */
	HC_ERR_PROTOCOL,	/* not HTTP/1.1, or closed before the
				 * response was complete */
	HC_ERR_LIMIT,		/* the response broke a limit */
	HC_ERR_SHUTDOWN,	/* the daemon is stopping */
};
/* "ok", "dns", "connect", "tls", "timeout", "protocol", "limit",
 * "shutdown". */
const char *http_client_error_name(enum http_client_error e);

struct http_client_req {
	const char	*method;	/* "GET", "POST", ... */
	const char	*url;		/* http:// or https:// */
	/* More header lines, each "Name: value\r\n", or NULL. Host,
	 * Content-Length, Transfer-Encoding and Connection are ours. */
	const char	*headers;
	const void	*body;
	size_t		 body_len;
	const char	*ca_file;	/* https: PEM CA bundle; NULL: the
					 * system's CAs */
	uint64_t	 connect_timeout_ms;	/* 0: 10 s */
	uint64_t	 timeout_ms;		/* per attempt; 0: 30 s */
	uint32_t	 max_attempts;		/* 0 or 1: no retry */
	uint64_t	 backoff_min_ms;	/* 0: 500 ms */
	uint64_t	 backoff_max_ms;	/* 0: 30 s */
	/* The caller vouches that the request may be repeated (it carries
	 * an idempotency key): a non-idempotent method is then retried as
	 * an idempotent one would be. */
	int		 retry_safe;
};

/* What a call came to. Everything in it is valid during the callback
 * only. */
struct http_client_result {
	enum http_client_error	 err;
	const char		*error;		/* in words, "" when HC_OK */
	int			 status;	/* HC_OK: 100-599 */
	const char		*body;		/* HC_OK: NUL-terminated */
	size_t			 body_len;
	unsigned		 attempts;	/* made, this one included */
	uint64_t		 retry_after_ms;	/* asked for, or 0 */
	const struct http_resp	*resp;		/* HC_OK: the parser */
};

typedef void http_client_cb(void *arg, const struct http_client_result *r);

/* http_client_new: a client on s's loop. lim is copied (NULL: the
 * defaults). Never NULL. */
struct http_client *http_client_new(struct net_server *s,
    const struct http_client_limits *lim);
/* Close every connection; calls still open end without their callback.
 * Not from within a callback of this client. NULL-safe. */
void http_client_free_(struct http_client *c);
#define http_client_free(c) do { http_client_free_(c); (c) = NULL; } \
	while (0)

/*
 * http_client_request: start a call; rq and everything it points to are
 * copied. cb hears of the outcome from the loop, never from within this
 * call, exactly once (unless the call is cancelled). Returns the call,
 * or NULL with err when it cannot be made: a bad URL, method or header,
 * an unusable CA file, the queue full (max_queue calls waiting).
 */
struct http_client_call *http_client_request(struct http_client *c,
    const struct http_client_req *rq, http_client_cb *cb, void *arg,
    char *err, size_t cap);
/* http_client_cancel: forget the call (no callback). A request already
 * sent may still have reached the server. */
void http_client_cancel(struct http_client_call *call);

/* A header of the response in r (case-insensitive), or NULL. */
const char *http_client_header(const struct http_client_result *r,
    const char *name);

/* Connections open (busy or idle) and calls waiting for one. */
unsigned http_client_nconns(const struct http_client *c);
unsigned http_client_nqueued(const struct http_client *c);

/*
 * http_client_backoff: the wait before the attempt after the FAILURES-th
 * failure (1, 2, ...): min * 2^(failures-1), capped at max, then
 * "equal jitter": half of it plus rnd's share of the other half (rnd
 * uniform in 0..UINT32_MAX). Pure, for the tests.
 */
uint64_t http_client_backoff(unsigned failures, uint64_t min_ms,
    uint64_t max_ms, uint32_t rnd);

#endif
