/*
 * net_http.c — HTTP/1.1 connections: bytes from the bufferevent through
 * http_req (llhttp, strict, with limits), one request at a time in order
 * (pipelining), keep-alive, "100 Continue"; each request goes to the REST
 * API (src/api/), which answers now or later (after a store commit).
 *
 * While a request waits for its answer the socket is not read: pipelined
 * requests wait in the kernel, not in our memory. Streamed answers
 * (the audit export) are produced as the socket drains, with chunked
 * transfer coding, so their size is not bounded by memory either.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>

#include "conf/conf.h"
#include "http/http_req.h"
#include "src/api/api.h"
#include "src/daemon.h"
#include "src/net/net.h"
#include "src/net/net_proto.h"
#include "src/util/log.h"

/* Requests handled per read event before yielding to other connections. */
#define HTTP_BUDGET 16
/* A streamed answer is topped up to this much queued output. */
#define HTTP_STREAM_HIGH (256 * 1024)

static const struct conf *
hconf(struct net_conn *c)
{
	return net_server_conf(net_conn_server(c));
}

struct hconn {
	struct http_req	*req;
	struct api_req	*cur;		/* being answered */
	int		 mid;		/* part of a request has been parsed */
	int		 keep;		/* keep-alive after cur */
	int		 in_dispatch;	/* api_dispatch is on the stack */
	int		 chunked;	/* cur streams with chunked coding */
	struct evbuffer	*scratch;	/* an answer being put together */
	struct event	*head_timer;	/* headers must arrive whole in
					 * limits.network_timeout */
	int		 head_armed;
	int		 out_held;	/* not read: answers left unread */
};

/* The headers are in: the slow-client deadline is met. */
static void
head_done(struct hconn *h)
{
	if (h->head_armed) {
		evtimer_del(h->head_timer);
		h->head_armed = 0;
	}
}

static uint64_t
head_limit(void *arg, const struct http_req *r)
{
	struct net_conn *c = arg;

	head_done(net_conn_data(c));

	return api_body_limit(daemon_api(net_server_app(net_conn_server(c))),
	    r);
}

static void on_head_timeout(evutil_socket_t fd, short what, void *arg);

static int
http_open(struct net_conn *c)
{
	const struct conf *cf = hconf(c);
	struct http_req_limits lim = {
		.max_header_bytes = cf->limits.http_header,
		.max_headers = 100,
		.max_url = 8192,
		.max_body = cf->limits.http_body,
	};

	struct hconn *h = calloc(1, sizeof(*h));

	if (h == NULL)
		abort();
	h->req = http_req_new(&lim);
	if ((h->scratch = evbuffer_new()) == NULL ||
	    (h->head_timer = evtimer_new(net_server_base(net_conn_server(c)),
	    on_head_timeout, c)) == NULL)
		abort();
	http_req_set_head_fn(h->req, head_limit, c);
	net_conn_set_data(c, h);
	net_conn_set_label(c, "-");
	net_conn_set_timeout(c, cf->limits.idle_ms);
	return 0;
}

static void
req_free(struct api_req *q)
{
	if (q->cleanup != NULL)
		q->cleanup(q);
	json_decref(q->body);
	if (q->more_free != NULL)
		q->more_free(q->more_arg);
	free(q);
}

static void
http_free(struct net_conn *c)
{
	struct hconn *h = net_conn_data(c);

	if (h == NULL)
		return;
	if (h->cur != NULL) {
		/* the answer is still being worked on (a store commit);
		 * it frees the request when it comes */
		if (h->cur->more != NULL)
			req_free(h->cur);
		else
			api_req_orphan(h->cur);
	}
	http_req_free(h->req);
	evbuffer_free(h->scratch);
	event_free(h->head_timer);
	free(h);
}

static const char *
reason_phrase(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/* The error body's machine-readable code for a parse failure status. */
static const char *
status_code(int status)
{
	switch (status) {
	case 408: return "request_timeout";
	case 411: return "length_required";
	case 413: return "body_too_large";
	case 414: return "uri_too_long";
	case 431: return "headers_too_large";
	case 505: return "http_version_not_supported";
	default: return "bad_request";
	}
}

static void
head_lines(struct evbuffer *out, int status, const char *ctype,
    const char *headers, int keep)
{
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Cache-Control: no-store\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "%s%s", status, reason_phrase(status), ctype,
	    keep ? "" : "Connection: close\r\n", headers ? headers : "");
}

/* A request the parser refused: answer and close. */
static void
refuse(struct net_conn *c, int status, const char *why, uint64_t limit)
{
	struct evbuffer *out = bufferevent_get_output(net_conn_bev(c));
	json_t *b = json_pack("{s:{s:s, s:s}}", "error", "code",
	    status_code(status), "message", why);
	char *text;

	if (status == 413)
		json_object_set_new(json_object_get(b, "error"), "detail",
		    json_pack("{s:I}", "limit", (json_int_t)limit));
	text = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);

	json_decref(b);
	head_lines(out, status, "application/json", NULL, 0);
	evbuffer_add_printf(out, "Content-Length: %zu\r\n\r\n%s\n",
	    strlen(text) + 1, text);
	free(text);
	api_observe(daemon_api(net_server_app(net_conn_server(c))), "-",
	    status, 0);
}

static int http_pump(struct net_conn *c, struct evbuffer *in);

/* A request begun but its headers not whole within
 * limits.network_timeout (a client trickling bytes to hold a
 * connection): 408, and the connection is closed. */
static void
on_head_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct net_conn *c = arg;
	struct hconn *h = net_conn_data(c);
	char why[128];

	(void)fd;
	(void)what;
	h->head_armed = 0;
	if (h->cur != NULL)
		return;
	snprintf(why, sizeof(why), "the request's headers did not arrive "
	    "within limits.network_timeout (%llu ms)", (unsigned long long)
	    net_server_conf(net_conn_server(c))->limits.network_ms);
	log_info("http-bad-request", "conn=%llu peer=%s status=408 reason=%s",
	    (unsigned long long)net_conn_id(c), net_conn_peer(c), log_q(why));
	refuse(c, 408, why, 0);
	net_conn_close(c, "request timeout", 1);
}

/* cur is answered: log it, and go on with the next request. */
static void
finish(struct net_conn *c, struct hconn *h)
{
	struct api_req *q = h->cur;
	struct timespec ts;
	uint64_t now;
	double secs;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	secs = (double)(now - q->t0_us) / 1e6;
	log_debug("http-request", "conn=%llu peer=%s method=%s path=%s "
	    "status=%d key=%s us=%llu", (unsigned long long)net_conn_id(c),
	    net_conn_peer(c), log_q(q->method), log_q(q->path), q->status,
	    log_q(q->who.key), (unsigned long long)(now - q->t0_us));
	api_observe(q->api, q->route ? q->route->name : "-", q->status, secs);
	h->cur = NULL;
	req_free(q);
	http_req_next(h->req);
	h->mid = 0;
	if (!h->keep) {
		net_conn_close(c, "request done", 1);
		return;
	}
	if (!h->in_dispatch) {
		/* answered later: pick up what was pipelined meanwhile */
		bufferevent_enable(net_conn_bev(c), EV_READ);
		bufferevent_trigger(net_conn_bev(c), EV_READ,
		    BEV_TRIG_DEFER_CALLBACKS | BEV_TRIG_IGNORE_WATERMARKS);
	}
}

void
net_http_answer(struct api_req *q, int status, const char *ctype,
    const char *headers, const char *body, size_t len)
{
	struct net_conn *c = q->conn;
	struct hconn *h;
	struct evbuffer *out;

	q->status = status;
	if (c == NULL) {
		/* the client went away while we worked: counted all the same */
		api_observe(q->api, q->route ? q->route->name : "-", status, 0);
		req_free(q);
		return;
	}
	h = net_conn_data(c);
	out = h->scratch;
	head_lines(out, status, ctype, headers, h->keep);
	if (status == 204 || status == 304)
		evbuffer_add(out, "\r\n", 2);
	else {
		evbuffer_add_printf(out, "Content-Length: %zu\r\n\r\n", len);
		if (!q->head && len > 0)
			evbuffer_add(out, body, len);
	}
	net_conn_send(c, out);
	finish(c, h);
}

/* Top the output up from the stream; finish it when the producer is
 * done. */
static void
stream_more(struct net_conn *c, struct hconn *h)
{
	struct api_req *q = h->cur;
	struct evbuffer *out = bufferevent_get_output(net_conn_bev(c));
	struct evbuffer *tmp = evbuffer_new();
	int rc = 1;

	if (tmp == NULL)
		abort();
	while (rc == 1 && evbuffer_get_length(out) < HTTP_STREAM_HIGH) {
		rc = q->more(q, tmp);
		if (rc >= 0 && evbuffer_get_length(tmp) > 0) {
			if (h->chunked)
				evbuffer_add_printf(out, "%zx\r\n",
				    evbuffer_get_length(tmp));
			evbuffer_add_buffer(out, tmp);
			if (h->chunked)
				evbuffer_add(out, "\r\n", 2);
		}
	}
	evbuffer_free(tmp);
	if (rc < 0) {
		log_warn("http-stream-failed", "conn=%llu peer=%s path=%s",
		    (unsigned long long)net_conn_id(c), net_conn_peer(c),
		    log_q(q->path));
		/* cut the answer short: the client sees a truncated body
		 * (no last chunk), never a complete-looking one */
		h->keep = 0;
		h->cur = NULL;
		api_observe(q->api, q->route->name, 500, 0);
		req_free(q);
		net_conn_close(c, "stream failed", 1);
		return;
	}
	if (rc == 0) {
		if (h->chunked)
			evbuffer_add(out, "0\r\n\r\n", 5);
		else
			h->keep = 0;	/* HTTP/1.0: the close ends it */
		finish(c, h);
	}
}

void
net_http_stream(struct api_req *q, int status, const char *ctype)
{
	struct net_conn *c = q->conn;
	struct hconn *h;
	struct evbuffer *out;

	q->status = status;
	if (c == NULL) {
		req_free(q);
		return;
	}
	h = net_conn_data(c);
	out = bufferevent_get_output(net_conn_bev(c));
	h->chunked = http_req_version_minor(h->req) >= 1;
	if (!h->chunked)
		h->keep = 0;
	head_lines(out, status, ctype, h->chunked ?
	    "Transfer-Encoding: chunked\r\n" : NULL, h->keep);
	evbuffer_add(out, "\r\n", 2);
	if (q->head) {
		/* no body at all, not even the last chunk (RFC 9110 9.3.2):
		 * the client would take it for the next answer's start */
		q->more = NULL;
		finish(c, h);
		return;
	}
	stream_more(c, h);
}

static void
http_write(struct net_conn *c)
{
	struct hconn *h = net_conn_data(c);

	if (h != NULL && h->cur != NULL && h->cur->more != NULL &&
	    !h->in_dispatch)
		stream_more(c, h);
	else if (h != NULL && h->out_held && h->cur == NULL) {
		/* all out: what was pipelined meanwhile */
		h->out_held = 0;
		bufferevent_enable(net_conn_bev(c), EV_READ);
		bufferevent_trigger(net_conn_bev(c), EV_READ,
		    BEV_TRIG_DEFER_CALLBACKS | BEV_TRIG_IGNORE_WATERMARKS);
	}
}

/* Feed what is buffered; returns 1 when the budget ran out with input
 * left, 0 otherwise (need more, waiting for an answer, or closed). */
static int
http_pump(struct net_conn *c, struct evbuffer *in)
{
	struct hconn *h = net_conn_data(c);
	struct http_req *r = h->req;
	const char *why;
	int status;

	for (int n = 0; n < HTTP_BUDGET; ) {
		size_t len = evbuffer_get_length(in), used = 0;
		const char *p;
		enum http_req_result res;

		if (h->cur != NULL)
			return 0;
		if (len == 0)
			return 0;
		/* answers a client may leave unread before its connection
		 * is not read any more, until they are out (one that
		 * pipelines requests and never reads made us queue the
		 * answers without bound): limits.unread_answers */
		if (net_conn_unsent(c) >= hconf(c)->limits.unread_answers) {
			h->out_held = 1;
			bufferevent_disable(net_conn_bev(c), EV_READ);
			return 0;
		}
		p = (const char *)evbuffer_pullup(in, -1);
		res = http_req_feed(r, p, len, &used);
		evbuffer_drain(in, used);
		if (!h->mid && used > 0 && !h->head_armed) {
			net_timer_arm(h->head_timer, net_server_conf(
			    net_conn_server(c))->limits.network_ms);
			h->head_armed = 1;
		}
		h->mid = 1;
		switch (res) {
		case HTTP_REQ_NEED_MORE:
			return 0;
		case HTTP_REQ_CONTINUE:
			evbuffer_add_printf(bufferevent_get_output(
			    net_conn_bev(c)), "HTTP/1.1 100 Continue\r\n\r\n");
			break;
		case HTTP_REQ_ERROR:
			head_done(h);
			status = http_req_error(r, &why);
			log_info("http-bad-request", "conn=%llu peer=%s "
			    "status=%d reason=%s",
			    (unsigned long long)net_conn_id(c),
			    net_conn_peer(c), status, log_q(why));
			refuse(c, status, why, http_req_body_limit(r));
			net_conn_close(c, "bad request", 1);
			return 0;
		case HTTP_REQ_DONE: {
			struct daemon *d = net_server_app(net_conn_server(c));

			head_done(h);
			h->keep = http_req_keep_alive(r) &&
			    !net_conn_draining(c);
			h->cur = api_req_new(daemon_api(d), c, r);
			h->in_dispatch = 1;
			api_dispatch(h->cur);
			h->in_dispatch = 0;
			n++;
			if (h->cur != NULL) {
				if (h->cur->more != NULL) {
					/* streaming: go on when it drains */
					stream_more(c, h);
					if (h->cur != NULL)
						bufferevent_disable(
						    net_conn_bev(c), EV_READ);
				} else
					/* answered after a commit: stop
					 * reading until then */
					bufferevent_disable(net_conn_bev(c),
					    EV_READ);
				return 0;
			}
			if (!h->keep)
				return 0;	/* finish() closed it */
			break;
		}
		}
	}
	return evbuffer_get_length(in) > 0;
}

static void
http_read(struct net_conn *c, struct evbuffer *in)
{
	if (http_pump(c, in))
		/* Over budget: come back after the others had their turn. */
		bufferevent_trigger(net_conn_bev(c), EV_READ,
		    BEV_TRIG_DEFER_CALLBACKS);
}

/* Draining: connections between requests close now; one mid-request
 * finishes it (the response says Connection: close). */
static void
http_drain(struct net_conn *c)
{
	struct hconn *h = net_conn_data(c);

	if (!h->mid && h->cur == NULL)
		net_conn_close(c, "shutting down", 1);
	else
		h->keep = 0;
}

const struct net_proto_ops net_http_ops = {
	.name = "http",
	.open = http_open,
	.read = http_read,
	.write = http_write,
	.drain = http_drain,
	.free = http_free,
};
