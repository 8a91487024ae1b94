/*
 * net_http.c — HTTP/1.1 connections: bytes from the bufferevent through
 * http_req (llhttp, strict, with limits), one request at a time in order
 * (pipelining), keep-alive, "100 Continue", and JSON answers with the
 * project's error body {"error": {"code", "message"}}.
 *
 * Routes served so far: GET/HEAD /api/health. The REST API issue adds the
 * router and the rest; everything else is a 404 that says so.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "conf/conf.h"
#include "http/http_req.h"
#include "src/daemon.h"
#include "src/net/net.h"
#include "src/net/net_proto.h"
#include "src/util/log.h"

/* Requests handled per read event before yielding to other connections. */
#define HTTP_BUDGET 16

static const struct conf *
hconf(struct net_conn *c)
{
	return net_server_conf(net_conn_server(c));
}

struct hconn {
	struct http_req	*req;
	int		 mid;	/* part of a request has been parsed */
};

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
	net_conn_set_data(c, h);
	net_conn_set_timeout(c, cf->limits.idle_ms);
	return 0;
}

static void
http_free(struct net_conn *c)
{
	struct hconn *h = net_conn_data(c);

	if (h != NULL)
		http_req_free(h->req);
	free(h);
}

static const char *
reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/* Queue one response; body is a JSON value (stolen). */
static void
respond(struct net_conn *c, int status, json_t *body, int head_only,
    int keep_alive, const char *extra_headers)
{
	struct evbuffer *out = bufferevent_get_output(net_conn_bev(c));
	char *text = json_dumps(body, JSON_COMPACT);
	size_t len = text ? strlen(text) + 1 : 0;

	json_decref(body);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n"
	    "%s%s\r\n", status, reason_phrase(status), len,
	    keep_alive ? "" : "Connection: close\r\n",
	    extra_headers ? extra_headers : "");
	if (!head_only && text) {
		evbuffer_add(out, text, len - 1);
		evbuffer_add(out, "\n", 1);
	}
	free(text);
}

/* The error body's machine-readable code for a parse failure status. */
static const char *
status_code(int status)
{
	switch (status) {
	case 413: return "body_too_large";
	case 414: return "uri_too_long";
	case 431: return "headers_too_large";
	case 505: return "http_version_not_supported";
	default: return "bad_request";
	}
}

static json_t *
error_body(const char *code, const char *message)
{
	return json_pack("{s:{s:s, s:s}}", "error", "code", code, "message",
	    message);
}

/* Bearer token → the configured key it matches, or NULL. */
static const struct conf_api_key *
authenticate(const struct conf *cf, const char *authz)
{
	uint8_t h[32];
	unsigned int hl = sizeof(h);
	const struct conf_api_key *found = NULL;

	if (authz == NULL || strncasecmp(authz, "Bearer ", 7) != 0)
		return NULL;
	authz += 7;
	if (!EVP_Digest(authz, strlen(authz), h, &hl, EVP_sha256(), NULL))
		return NULL;
	for (size_t i = 0; i < cf->api.nkeys; i++)
		if (CRYPTO_memcmp(h, cf->api.keys[i].token_sha256, 32) == 0)
			found = &cf->api.keys[i];
	return found;
}

static void
route(struct net_conn *c, struct http_req *r, int keep)
{
	const char *m = http_req_method(r), *path = http_req_path(r);
	const struct conf *cf = hconf(c);
	int head = strcmp(m, "HEAD") == 0, status, ready;
	char msg[300];
	json_t *body;

	if (strcmp(path, "/api/health") != 0) {
		snprintf(msg, sizeof(msg), "no resource at %.200s", path);
		respond(c, 404, error_body("not_found", msg), head, keep, NULL);
		status = 404;
	} else if (strcmp(m, "GET") != 0 && !head) {
		respond(c, 405, error_body("method_not_allowed",
		    "/api/health answers GET and HEAD"), 0, keep,
		    "Allow: GET, HEAD\r\n");
		status = 405;
	} else if (!cf->api.health_open &&
	    authenticate(cf, http_req_header(r, "Authorization")) == NULL) {
		respond(c, 401, error_body("unauthorized", "send "
		    "Authorization: Bearer <api key> (api.health_open is "
		    "false)"), head, keep,
		    "WWW-Authenticate: Bearer realm=\"vnamig\"\r\n");
		status = 401;
	} else {
		body = daemon_health(net_server_app(net_conn_server(c)),
		    &ready);
		status = ready ? 200 : 503;
		respond(c, status, body, head, keep, NULL);
	}
	log_debug("http-request", "conn=%llu peer=%s method=%s path=%s "
	    "status=%d", (unsigned long long)net_conn_id(c),
	    net_conn_peer(c), log_q(m), log_q(path), status);
}

/* Feed what is buffered; returns 1 when the budget ran out with input
 * left, 0 otherwise (need more or closed). */
static int
http_pump(struct net_conn *c, struct evbuffer *in)
{
	struct hconn *h = net_conn_data(c);
	struct http_req *r = h->req;
	const char *why;
	int status;

	for (int n = 0; n < HTTP_BUDGET; ) {
		size_t len = evbuffer_get_length(in), used = 0;
		const char *p = len ?
		    (const char *)evbuffer_pullup(in, -1) : "";
		enum http_req_result res;

		if (len == 0)
			return 0;
		res = http_req_feed(r, p, len, &used);
		evbuffer_drain(in, used);
		h->mid = 1;
		switch (res) {
		case HTTP_REQ_NEED_MORE:
			return 0;
		case HTTP_REQ_CONTINUE:
			evbuffer_add_printf(bufferevent_get_output(
			    net_conn_bev(c)), "HTTP/1.1 100 Continue\r\n\r\n");
			break;
		case HTTP_REQ_ERROR:
			status = http_req_error(r, &why);
			log_info("http-bad-request", "conn=%llu peer=%s "
			    "status=%d reason=%s",
			    (unsigned long long)net_conn_id(c),
			    net_conn_peer(c), status, log_q(why));
			respond(c, status, error_body(status_code(status), why),
			    0, 0, NULL);
			net_conn_close(c, "bad request", 1);
			return 0;
		case HTTP_REQ_DONE: {
			int keep = http_req_keep_alive(r) &&
			    !net_conn_draining(c);

			route(c, r, keep);
			http_req_next(r);
			h->mid = 0;
			n++;
			if (!keep) {
				net_conn_close(c, "request done", 1);
				return 0;
			}
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

	if (!h->mid)
		net_conn_close(c, "shutting down", 1);
}

const struct net_proto_ops net_http_ops = {
	.name = "http",
	.open = http_open,
	.read = http_read,
	.drain = http_drain,
	.free = http_free,
};
