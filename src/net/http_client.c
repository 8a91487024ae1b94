/*
 * http_client.c — HTTP/1.1 calls on the reactor (http_client.h).
 *
 * A call is QUEUED on its host until a connection is free (an idle one,
 * or a new one within the limits: it is then opened for that call), then
 * ACTIVE on that connection until its response is complete, and WAITING
 * while it backs off before another attempt. One timer per call bounds
 * the attempt (queueing included) or measures the backoff. Connections
 * carry one request at a time (no pipelining); after a complete response
 * that keeps the connection alive it goes IDLE for the next call.
 *
 * Connections are net.c's (net_server_connect): closing one from any of
 * our callbacks is safe, and its hc_conn is freed by the reaper (ops
 * free), after ops closed has unlinked it. Callbacks to the user run
 * from the loop only: from our net callbacks, the call timer or the
 * deferred serve, never from within http_client_request.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "http/http_resp.h"
#include "http/http_url.h"
#include "src/net/http_client.h"
#include "src/net/net.h"
#include "src/util/log.h"

#define HC_CONNECT_MS	10000
#define HC_TIMEOUT_MS	30000
#define HC_BACKOFF_MIN	500
#define HC_BACKOFF_MAX	30000
#define HC_MAX_HOSTS	64	/* hosts kept without connections */

enum call_state { CALL_NEW, CALL_QUEUED, CALL_ACTIVE, CALL_WAITING };
enum conn_state { CONN_OPENING, CONN_BUSY, CONN_IDLE, CONN_CLOSED };

struct hc_host;
struct hc_conn;

struct http_client_call {
	TAILQ_ENTRY(http_client_call)	 qe;	/* host queue */
	LIST_ENTRY(http_client_call)	 all;
	struct http_client		*c;
	struct hc_host			*h;
	struct hc_conn			*k;	/* ACTIVE */
	enum call_state			 st;
	char				 method[16];
	char				*bytes;	/* the request, whole */
	size_t				 len;
	int				 idempotent, retry_safe;
	uint64_t			 connect_ms, timeout_ms;
	uint64_t			 backoff_min, backoff_max;
	uint32_t			 max_attempts;
	unsigned			 attempts;
	int				 stale_retried;
	struct event			*timer;
	http_client_cb			*cb;
	void				*arg;
	char				 error[640];
};
TAILQ_HEAD(call_queue, http_client_call);

struct hc_conn {
	struct hc_conn		*next;		/* host's list */
	struct http_client	*c;		/* NULL once closed */
	struct hc_host		*h;
	struct net_conn		*nc;
	enum conn_state		 st;
	struct http_client_call	*call;
	struct http_resp	*parser;
	struct event		*idle;
	unsigned		 uses;
	int			 up;		/* transport (and TLS) ready */
	int			 got_byte;	/* of this call's response */
	int			 timed_out;	/* closed by the call timer */
};

struct hc_host {
	struct hc_host		*next;
	char			 key[HTTP_URL_HOST_MAX + 4200];
	char			 host[HTTP_URL_HOST_MAX + 1];
	uint16_t		 port;
	int			 https;
	SSL_CTX			*tls;
	struct hc_conn		*conns;
	unsigned		 nconns, nidle;
	struct call_queue	 queue;
};

struct http_client {
	struct net_server		*s;
	struct http_client_limits	 lim;
	struct http_resp_limits		 rlim;
	struct hc_host			*hosts;
	unsigned			 nhosts;
	unsigned			 nconns, nqueued;
	LIST_HEAD(, http_client_call)	 calls;
	struct event			*kick;
	int				 serving, again;
};

static const struct net_proto_ops hc_ops;
static void serve(struct http_client *c);
static void start_attempt(struct http_client_call *call);

void
http_client_limits_default(struct http_client_limits *l)
{
	l->max_per_host = 4;
	l->max_total = 64;
	l->max_idle_per_host = 2;
	l->idle_ms = 30000;
	l->max_queue = 1024;
	l->max_response = 1 << 20;
	l->max_header_bytes = 64 * 1024;
	l->max_headers = 100;
}

const char *
http_client_error_name(enum http_client_error e)
{
	static const char *const n[] = { "ok", "dns", "connect", "tls",
	    "timeout", "protocol", "limit", "shutdown" };

	return (unsigned)e < sizeof(n) / sizeof(n[0]) ? n[e] : "?";
}

uint64_t
http_client_backoff(unsigned failures, uint64_t min_ms, uint64_t max_ms,
    uint32_t rnd)
{
	uint64_t d = min_ms ? min_ms : 1;

	for (unsigned i = 1; i < failures && d < max_ms; i++)
		d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
	if (d > max_ms)
		d = max_ms;
	return d / 2 + (uint64_t)((double)(d - d / 2) * ((double)rnd /
	    4294967296.0));
}

static uint32_t
rnd32(void)
{
	uint32_t r = 0;

	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)random();
	return r;
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	serve(arg);
}

static void
kick(struct http_client *c)
{
	event_active(c->kick, EV_TIMEOUT, 0);
}

struct http_client *
http_client_new(struct net_server *s, const struct http_client_limits *lim)
{
	struct http_client *c = calloc(1, sizeof(*c));
	struct http_client_limits d;

	if (c == NULL)
		abort();
	http_client_limits_default(&d);
	c->s = s;
	c->lim = d;
	if (lim != NULL) {
#define TAKE(f) if (lim->f) c->lim.f = lim->f
		TAKE(max_per_host); TAKE(max_total); TAKE(max_idle_per_host);
		TAKE(idle_ms); TAKE(max_queue); TAKE(max_response);
		TAKE(max_header_bytes); TAKE(max_headers);
#undef TAKE
	}
	c->rlim.max_header_bytes = c->lim.max_header_bytes;
	c->rlim.max_headers = c->lim.max_headers;
	c->rlim.max_body = c->lim.max_response;
	LIST_INIT(&c->calls);
	if ((c->kick = event_new(net_server_base(s), -1, 0, on_kick, c)) ==
	    NULL)
		abort();
	return c;
}

/* ---------------------------------------------------------------------- */
/* Hosts. */

/* ssl_error: OpenSSL's last error as text (or dflt). */
static const char *
ssl_error(char *buf, size_t cap, const char *dflt)
{
	unsigned long e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last == 0)
		return dflt;
	ERR_error_string_n(last, buf, cap);
	return buf;
}

/* tls_ctx: TLS 1.2+, the server verified against ca (or the system's
 * CAs) and checked to be u's host (name or address). */
static SSL_CTX *
tls_ctx(const struct http_url *u, const char *ca, char *err, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	X509_VERIFY_PARAM *vp;
	char buf[256];

	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx,
	    TLS1_2_VERSION) != 1) {
		snprintf(err, cap, "cannot make a TLS context: %s",
		    ssl_error(buf, sizeof(buf), "?"));
		goto fail;
	}
	if (ca != NULL ? SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 :
	    SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(err, cap, "%s%s: %s", ca ? "CA file " : "the system's "
		    "CA certificates", ca ? ca : "", ssl_error(buf, sizeof(buf),
		    "cannot be loaded"));
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	vp = SSL_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_hostflags(vp,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if ((u->ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, u->host) :
	    X509_VERIFY_PARAM_set1_host(vp, u->host, 0)) != 1) {
		snprintf(err, cap, "cannot check the certificate against "
		    "\"%s\"", u->host);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static void
host_free(struct hc_host *h)
{
	SSL_CTX_free(h->tls);
	free(h);
}

/* Hosts with neither connections nor calls are dropped once there are
 * many (a client of ever-new URLs keeps no more than HC_MAX_HOSTS). */
static void
hosts_prune(struct http_client *c)
{
	struct hc_host **p = &c->hosts, *h;

	while ((h = *p) != NULL && c->nhosts > HC_MAX_HOSTS) {
		if (h->conns == NULL && TAILQ_EMPTY(&h->queue)) {
			int busy = 0;
			struct http_client_call *call;

			LIST_FOREACH(call, &c->calls, all)
				busy |= call->h == h;
			if (!busy) {
				*p = h->next;
				c->nhosts--;
				host_free(h);
				continue;
			}
		}
		p = &h->next;
	}
}

static struct hc_host *
host_get(struct http_client *c, const struct http_url *u, const char *ca,
    char *err, size_t cap)
{
	struct hc_host *h;
	char key[sizeof(h->key)];

	snprintf(key, sizeof(key), "%s://%s:%u %s", u->https ? "https" :
	    "http", u->host, (unsigned)u->port, u->https && ca ? ca : "-");
	for (h = c->hosts; h != NULL; h = h->next)
		if (strcmp(h->key, key) == 0)
			return h;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		abort();
	if (u->https && (h->tls = tls_ctx(u, ca, err, cap)) == NULL) {
		free(h);
		return NULL;
	}
	snprintf(h->key, sizeof(h->key), "%s", key);
	snprintf(h->host, sizeof(h->host), "%s", u->host);
	h->port = u->port;
	h->https = u->https;
	TAILQ_INIT(&h->queue);
	h->next = c->hosts;
	c->hosts = h;
	c->nhosts++;
	if (!c->serving)	/* serve() may be walking the list */
		hosts_prune(c);
	return h;
}

/* ---------------------------------------------------------------------- */
/* Ending a call. */

static void
call_unqueue(struct http_client_call *call)
{
	if (call->st == CALL_QUEUED) {
		TAILQ_REMOVE(&call->h->queue, call, qe);
		call->c->nqueued--;
	}
	call->st = CALL_NEW;
}

static void
call_free(struct http_client_call *call)
{
	call_unqueue(call);
	LIST_REMOVE(call, all);
	event_free(call->timer);
	free(call->bytes);
	free(call);
}

/* finish: tell the user, then forget the call. */
static void
finish(struct http_client_call *call, enum http_client_error err,
    const char *error, const struct http_resp *resp, uint64_t retry_after)
{
	struct http_client_result r;

	memset(&r, 0, sizeof(r));
	r.err = err;
	r.error = err == HC_OK ? "" : error;
	r.attempts = call->attempts;
	r.retry_after_ms = retry_after;
	if (resp != NULL) {
		r.resp = resp;
		r.status = http_resp_status(resp);
		r.body = http_resp_body(resp, &r.body_len);
	}
	call_unqueue(call);
	evtimer_del(call->timer);
	call->k = NULL;
	call->cb(call->arg, &r);
	call_free(call);
}

/* retry_later: wait, then make another attempt. */
static void
retry_later(struct http_client_call *call, uint64_t at_least,
    const char *why)
{
	uint64_t d = http_client_backoff(call->attempts, call->backoff_min,
	    call->backoff_max, rnd32());

	if (d < at_least)
		d = at_least;
	log_info("http-client-retry", "host=%s:%u method=%s attempt=%u/%u "
	    "error=%s delay_ms=%llu", call->h->host, (unsigned)call->h->port,
	    call->method, call->attempts, call->max_attempts, log_q(why),
	    (unsigned long long)d);
	call_unqueue(call);
	call->k = NULL;
	call->st = CALL_WAITING;
	net_timer_arm(call->timer, d);
}

/* fail: a failed attempt: another one when allowed, else the end. */
static void
fail(struct http_client_call *call, enum http_client_error err,
    const char *why, int retryable)
{
	if (why != call->error)
		snprintf(call->error, sizeof(call->error), "%s", why);
	if (retryable && call->attempts < call->max_attempts)
		retry_later(call, 0, call->error);
	else
		finish(call, err, call->error, NULL, 0);
}

/* ---------------------------------------------------------------------- */
/* Connections. */

static void
on_idle(evutil_socket_t fd, short what, void *arg)
{
	struct hc_conn *k = arg;

	(void)fd;
	(void)what;
	if (k->st == CONN_IDLE)
		net_conn_close(k->nc, "idle connection closed", 0);
}

/* conn_unlink: k leaves its host and the counts (closed). */
static void
conn_unlink(struct hc_conn *k)
{
	struct http_client *c = k->c;
	struct hc_host *h = k->h;

	for (struct hc_conn **p = &h->conns; *p != NULL; p = &(*p)->next)
		if (*p == k) {
			*p = k->next;
			break;
		}
	h->nconns--;
	c->nconns--;
	if (k->st == CONN_IDLE)
		h->nidle--;
	evtimer_del(k->idle);
	k->st = CONN_CLOSED;
	k->c = NULL;
}

/* conn_release: the call on k is over; keep k for the next (keep alive)
 * or close it. */
static void
conn_release(struct hc_conn *k, int keep)
{
	struct hc_host *h = k->h;

	k->call = NULL;
	if (!keep || h->nidle >= k->c->lim.max_idle_per_host) {
		net_conn_close(k->nc, keep ? "enough idle connections" :
		    "response read, not kept alive", 0);
		return;
	}
	k->st = CONN_IDLE;
	h->nidle++;
	net_timer_arm(k->idle, k->c->lim.idle_ms);
	kick(k->c);
}

static void
send_request(struct hc_conn *k)
{
	struct http_client_call *call = k->call;

	if (k->parser == NULL)
		k->parser = http_resp_new(&k->c->rlim, call->method);
	else
		http_resp_next(k->parser, call->method);
	k->st = CONN_BUSY;
	k->got_byte = 0;
	k->uses++;
	if (bufferevent_write(net_conn_bev(k->nc), call->bytes, call->len) <
	    0)
		net_conn_close(k->nc, "cannot queue the request", 0);
}

/* conn_open: a new connection for call (the limits were checked). */
static void
conn_open(struct http_client *c, struct hc_host *h,
    struct http_client_call *call)
{
	struct hc_conn *k = calloc(1, sizeof(*k));
	struct net_conn *nc;
	char err[256];

	if (k == NULL)
		abort();
	k->c = c;
	k->h = h;
	k->st = CONN_OPENING;
	k->call = call;
	call->k = k;
	call->st = CALL_ACTIVE;
	if ((k->idle = evtimer_new(net_server_base(c->s), on_idle, k)) ==
	    NULL)
		abort();
	k->next = h->conns;
	h->conns = k;
	h->nconns++;
	c->nconns++;
	/* may close at once (closed runs before this returns) */
	nc = net_server_connect(c->s, &hc_ops, h->host, h->port, h->tls, k,
	    call->connect_ms, err, sizeof(err));
	if (nc == NULL) {
		conn_unlink(k);
		event_free(k->idle);
		free(k);
		call->k = NULL;
		fail(call, HC_ERR_CONNECT, err, 0);
		return;
	}
	if (k->st != CONN_CLOSED)
		k->nc = nc;
}

static struct hc_conn *
idle_conn(struct hc_host *h)
{
	for (struct hc_conn *k = h->conns; k != NULL; k = k->next)
		if (k->st == CONN_IDLE)
			return k;
	return NULL;
}

/* room_elsewhere: at the overall limit, close an idle connection of
 * another host so that h may open one. 1 when one was closed. */
static int
room_elsewhere(struct http_client *c, struct hc_host *h)
{
	for (struct hc_host *o = c->hosts; o != NULL; o = o->next) {
		struct hc_conn *k;

		if (o == h || (k = idle_conn(o)) == NULL)
			continue;
		net_conn_close(k->nc, "room for a connection to another "
		    "host", 0);
		return 1;
	}
	return 0;
}

static int
serve_host(struct http_client *c, struct hc_host *h)
{
	struct http_client_call *call;
	struct hc_conn *k;

	while ((call = TAILQ_FIRST(&h->queue)) != NULL) {
		if ((k = idle_conn(h)) != NULL) {
			call_unqueue(call);
			evtimer_del(k->idle);
			h->nidle--;
			k->call = call;
			call->k = k;
			call->st = CALL_ACTIVE;
			send_request(k);
			continue;
		}
		if (h->nconns >= c->lim.max_per_host)
			return 0;
		if (c->nconns >= c->lim.max_total && !room_elsewhere(c, h))
			return 0;
		call_unqueue(call);
		conn_open(c, h, call);
		return 1;	/* callbacks may have changed anything */
	}
	return 0;
}

static void
serve(struct http_client *c)
{
	if (c->serving) {
		c->again = 1;
		return;
	}
	c->serving = 1;
	do {
		c->again = 0;
		for (struct hc_host *h = c->hosts; h != NULL; h = h->next)
			if (serve_host(c, h)) {
				c->again = 1;
				break;
			}
	} while (c->again);
	c->serving = 0;
}

/* ---------------------------------------------------------------------- */
/* The connection's events (net.c). */

static int
status_retryable(const struct http_client_call *call, int status)
{
	if (status == 429)
		return 1;
	if (status < 500 || status == 501 || status == 505)
		return 0;
	return call->idempotent || call->retry_safe;
}

/* response_done: k's response is complete (k may be closed already). */
static void
response_done(struct hc_conn *k, int keep)
{
	struct http_client_call *call = k->call;
	const struct http_resp *r = k->parser;
	int status = http_resp_status(r);
	const char *ra = http_resp_header(r, "Retry-After");
	uint64_t ra_ms = 0;

	if ((status == 429 || status == 503) && ra != NULL &&
	    http_retry_after(ra, time(NULL), &ra_ms) < 0)
		ra_ms = 0;
	if (k->c != NULL)
		conn_release(k, keep);
	else
		k->call = NULL;
	call->k = NULL;
	if (status_retryable(call, status) && call->attempts <
	    call->max_attempts && ra_ms <= call->backoff_max) {
		snprintf(call->error, sizeof(call->error), "HTTP %d %s",
		    status, http_resp_reason(r));
		retry_later(call, ra_ms, call->error);
		return;
	}
	finish(call, HC_OK, "", r, ra_ms);
}

static void
hc_read(struct net_conn *nc, struct evbuffer *in)
{
	struct hc_conn *k = net_conn_data(nc);
	enum http_resp_result rc;
	size_t len, used;
	const char *data;

	if (k->call == NULL) {
		evbuffer_drain(in, evbuffer_get_length(in));
		net_conn_close(nc, "bytes from the server with no request "
		    "outstanding", 0);
		return;
	}
	len = evbuffer_get_length(in);
	if (len > 0)
		k->got_byte = 1;
	for (;;) {
		data = (const char *)evbuffer_pullup(in, -1);
		len = evbuffer_get_length(in);
		rc = http_resp_feed(k->parser, data ? data : "", len, &used);
		evbuffer_drain(in, used);
		if (rc == HTTP_RESP_HEADERS || rc == HTTP_RESP_INTERIM)
			continue;
		break;
	}
	if (rc == HTTP_RESP_DONE) {
		response_done(k, http_resp_keep_alive(k->parser) &&
		    evbuffer_get_length(in) == 0);
		return;
	}
	if (rc == HTTP_RESP_ERROR) {
		struct http_client_call *call = k->call;
		const char *e = http_resp_error(k->parser);
		int limit = strstr(e, "too large") != NULL ||
		    strstr(e, "too many") != NULL;

		k->call = NULL;
		call->k = NULL;
		net_conn_close(nc, "invalid response", 0);
		snprintf(call->error, sizeof(call->error), "%s from %s:%u: %s",
		    limit ? "response over a limit" : "invalid HTTP response",
		    call->h->host, (unsigned)call->h->port, e);
		fail(call, limit ? HC_ERR_LIMIT : HC_ERR_PROTOCOL, call->error,
		    0);
	}
}

static void
hc_connected(struct net_conn *nc)
{
	struct hc_conn *k = net_conn_data(nc);

	k->up = 1;
	net_conn_set_timeout(nc, 0);	/* the call timer bounds it now */
	net_conn_set_label(nc, k->h->host);
	if (k->call != NULL)
		send_request(k);
	else
		conn_release(k, 1);
}

/* classify: why a connection that never came up failed. */
static enum http_client_error
classify(struct hc_conn *k, struct net_conn *nc, const char *why,
    char *buf, size_t cap)
{
	struct bufferevent *bev = net_conn_bev(nc);
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	int dnserr = bev ? bufferevent_socket_get_dns_error(bev) : 0;
	long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	const char *h = k->h->host;
	unsigned p = k->h->port;

	if (k->timed_out || strstr(why, "timed out") != NULL) {
		snprintf(buf, cap, "connecting to %s:%u timed out", h, p);
		return HC_ERR_TIMEOUT;
	}
	if (dnserr != 0) {
		snprintf(buf, cap, "host name %s did not resolve: %s", h,
		    evutil_gai_strerror(dnserr));
		return HC_ERR_DNS;
	}
	if (vr != X509_V_OK) {
		snprintf(buf, cap, "TLS: the certificate of %s:%u was not "
		    "verified: %s", h, p, X509_verify_cert_error_string(vr));
		return HC_ERR_TLS;
	}
	if (ssl != NULL && strstr(why, "TLS") != NULL) {
		snprintf(buf, cap, "TLS handshake with %s:%u failed (see the "
		    "tls-failed log line)", h, p);
		return HC_ERR_TLS;
	}
	snprintf(buf, cap, "cannot connect to %s:%u: %s", h, p, why);
	return HC_ERR_CONNECT;
}

static void
hc_closed(struct net_conn *nc, const char *why)
{
	struct hc_conn *k = net_conn_data(nc);
	struct http_client *c = k->c;
	struct http_client_call *call = k->call;
	enum http_client_error e;
	char buf[640];
	int safe;

	if (c == NULL)
		return;
	conn_unlink(k);
	if (call == NULL) {
		if (k->up && k->uses > 0)
			log_debug("http-client-idle-closed", "host=%s:%u "
			    "uses=%u reason=%s", k->h->host,
			    (unsigned)k->h->port, k->uses, log_q(why));
		kick(c);
		return;
	}
	safe = call->idempotent || call->retry_safe;
	if (!k->up) {
		e = classify(k, nc, why, buf, sizeof(buf));
		k->call = NULL;
		call->k = NULL;
		fail(call, e, buf, e != HC_ERR_TLS);
	} else if (k->got_byte && !k->timed_out &&
	    http_resp_eof(k->parser) == HTTP_RESP_DONE) {
		response_done(k, 0);	/* a body ended by the close */
	} else if (k->timed_out) {
		snprintf(buf, sizeof(buf), "no complete response from %s:%u "
		    "within %llu ms%s", k->h->host, (unsigned)k->h->port,
		    (unsigned long long)call->timeout_ms, k->got_byte ?
		    " (part of one came)" : "");
		k->call = NULL;
		call->k = NULL;
		fail(call, HC_ERR_TIMEOUT, buf, safe && !k->got_byte);
	} else if (!k->got_byte && k->uses > 1 && safe &&
	    !call->stale_retried) {
		/* the server had closed the kept-alive connection */
		k->call = NULL;
		call->k = NULL;
		call->stale_retried = 1;
		call->st = CALL_QUEUED;
		TAILQ_INSERT_HEAD(&call->h->queue, call, qe);
		c->nqueued++;
	} else {
		snprintf(buf, sizeof(buf), "%s:%u closed the connection %s "
		    "(%s)", k->h->host, (unsigned)k->h->port, k->got_byte ?
		    "in the middle of the response" : "before the response",
		    k->got_byte ? http_resp_error(k->parser) : why);
		k->call = NULL;
		call->k = NULL;
		fail(call, HC_ERR_PROTOCOL, buf, safe && !k->got_byte);
	}
	kick(c);
}

static void
hc_drain(struct net_conn *nc)
{
	struct hc_conn *k = net_conn_data(nc);

	/* a call under way finishes (its timer bounds it) */
	if (k->call == NULL)
		net_conn_close(nc, "shutting down", 0);
}

static void
hc_free(struct net_conn *nc)
{
	struct hc_conn *k = net_conn_data(nc);

	http_resp_free(k->parser);
	event_free(k->idle);
	free(k);
}

static const struct net_proto_ops hc_ops = {
	.name = "http-client",
	.read = hc_read,
	.drain = hc_drain,
	.free = hc_free,
	.connected = hc_connected,
	.closed = hc_closed,
};

/* ---------------------------------------------------------------------- */
/* Calls. */

static void
on_call_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_client_call *call = arg;
	char buf[400];

	(void)fd;
	(void)what;
	switch (call->st) {
	case CALL_WAITING:
		start_attempt(call);
		break;
	case CALL_QUEUED:
		snprintf(buf, sizeof(buf), "no connection to %s:%u was free "
		    "within %llu ms", call->h->host, (unsigned)call->h->port,
		    (unsigned long long)call->timeout_ms);
		call_unqueue(call);
		fail(call, HC_ERR_TIMEOUT, buf, 0);
		break;
	case CALL_ACTIVE:
		call->k->timed_out = 1;
		net_conn_close(call->k->nc, "request timed out", 0);
		break;
	case CALL_NEW:
		break;
	}
}

static void
start_attempt(struct http_client_call *call)
{
	call->attempts++;
	call->st = CALL_QUEUED;
	TAILQ_INSERT_TAIL(&call->h->queue, call, qe);
	call->c->nqueued++;
	net_timer_arm(call->timer, call->timeout_ms);
	kick(call->c);
}

static int
is_token(const char *s, size_t n)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    (s[i] != '\0' && strchr(tchar, s[i]) != NULL)))
			return 0;
	return 1;
}

/* check_headers: "Name: value\r\n" lines, none of ours. */
static int
check_headers(const char *hs, char *err, size_t cap)
{
	static const char *const ours[] = { "host", "content-length",
	    "transfer-encoding", "connection", NULL };
	const char *p = hs;

	while (*p != '\0') {
		const char *colon = strchr(p, ':'), *end = strstr(p, "\r\n");

		if (end == NULL || colon == NULL || colon > end ||
		    !is_token(p, (size_t)(colon - p))) {
			snprintf(err, cap, "headers must be \"Name: value\\r\\n"
			    "\" lines");
			return -1;
		}
		for (const char *v = colon + 1; v < end; v++)
			if ((unsigned char)*v < ' ' && *v != '\t') {
				snprintf(err, cap, "a control byte in the "
				    "value of header %.*s", (int)(colon - p),
				    p);
				return -1;
			}
		for (int i = 0; ours[i]; i++)
			if (strlen(ours[i]) == (size_t)(colon - p) &&
			    strncasecmp(p, ours[i], (size_t)(colon - p)) == 0) {
				snprintf(err, cap, "header %s is set by the "
				    "client", ours[i]);
				return -1;
			}
		p = end + 2;
	}
	return 0;
}

static int
idempotent(const char *m)
{
	static const char *const im[] = { "GET", "HEAD", "PUT", "DELETE",
	    "OPTIONS", "TRACE", NULL };

	for (int i = 0; im[i]; i++)
		if (strcmp(m, im[i]) == 0)
			return 1;
	return 0;
}

/* build: the request's bytes: request line, our headers, the caller's,
 * the body. */
static char *
build(const struct http_client_req *rq, const struct http_url *u,
    size_t *len)
{
	char auth[HTTP_URL_HOST_MAX + 16], cl[48] = "";
	const char *target = u->target_len ? rq->url + u->target_off : "/";
	int tlen = u->target_len ? (int)u->target_len : 1;
	size_t hl, total;
	char *b;
	int n;

	http_url_authority(u, auth, sizeof(auth));
	if (rq->body_len > 0 || strcmp(rq->method, "POST") == 0 ||
	    strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "PATCH") == 0)
		snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n",
		    rq->body_len);
	hl = strlen(rq->method) + (size_t)tlen + strlen(auth) + strlen(cl) +
	    (rq->headers ? strlen(rq->headers) : 0) + 128;
	if (__builtin_add_overflow(hl, rq->body_len, &total) ||
	    (b = malloc(total)) == NULL)
		abort();
	n = snprintf(b, hl, "%s %.*s HTTP/1.1\r\nHost: %s\r\nUser-Agent: "
	    "vnamig/%s\r\n%s%s\r\n", rq->method, tlen, target, auth,
	    PACKAGE_VERSION, cl, rq->headers ? rq->headers : "");
	if (n < 0 || (size_t)n >= hl)
		abort();
	if (rq->body_len > 0)
		memcpy(b + n, rq->body, rq->body_len);
	*len = (size_t)n + rq->body_len;
	return b;
}

struct http_client_call *
http_client_request(struct http_client *c, const struct http_client_req *rq,
    http_client_cb *cb, void *arg, char *err, size_t cap)
{
	struct http_client_call *call;
	struct http_url u;
	struct hc_host *h;
	char uerr[200];

	if (rq->method == NULL || strlen(rq->method) >= sizeof(call->method) ||
	    !is_token(rq->method, strlen(rq->method))) {
		snprintf(err, cap, "the method is not an HTTP token");
		return NULL;
	}
	if (http_url_parse(rq->url, &u, uerr, sizeof(uerr)) < 0) {
		snprintf(err, cap, "URL: %s", uerr);
		return NULL;
	}
	if (rq->headers != NULL && check_headers(rq->headers, err, cap) < 0)
		return NULL;
	if (c->nqueued >= c->lim.max_queue) {
		snprintf(err, cap, "%u calls already wait for a connection "
		    "(the queue is full); try again later", c->nqueued);
		return NULL;
	}
	if ((h = host_get(c, &u, rq->ca_file, err, cap)) == NULL)
		return NULL;
	if ((call = calloc(1, sizeof(*call))) == NULL)
		abort();
	call->c = c;
	call->h = h;
	snprintf(call->method, sizeof(call->method), "%s", rq->method);
	call->bytes = build(rq, &u, &call->len);
	call->idempotent = idempotent(rq->method);
	call->retry_safe = rq->retry_safe;
	call->connect_ms = rq->connect_timeout_ms ? rq->connect_timeout_ms :
	    HC_CONNECT_MS;
	call->timeout_ms = rq->timeout_ms ? rq->timeout_ms : HC_TIMEOUT_MS;
	call->max_attempts = rq->max_attempts ? rq->max_attempts : 1;
	call->backoff_min = rq->backoff_min_ms ? rq->backoff_min_ms :
	    HC_BACKOFF_MIN;
	call->backoff_max = rq->backoff_max_ms ? rq->backoff_max_ms :
	    HC_BACKOFF_MAX;
	if (call->backoff_max < call->backoff_min)
		call->backoff_max = call->backoff_min;
	call->cb = cb;
	call->arg = arg;
	if ((call->timer = evtimer_new(net_server_base(c->s), on_call_timer,
	    call)) == NULL)
		abort();
	LIST_INSERT_HEAD(&c->calls, call, all);
	start_attempt(call);
	return call;
}

void
http_client_cancel(struct http_client_call *call)
{
	struct hc_conn *k = call->k;

	if (k != NULL) {
		/* its answer may still come: the connection is not reused */
		k->call = NULL;
		call->k = NULL;
		if (k->st != CONN_CLOSED)
			net_conn_close(k->nc, "call cancelled", 0);
	}
	call_free(call);
}

const char *
http_client_header(const struct http_client_result *r, const char *name)
{
	return r->resp != NULL ? http_resp_header(r->resp, name) : NULL;
}

unsigned
http_client_nconns(const struct http_client *c)
{
	return c->nconns;
}

unsigned
http_client_nqueued(const struct http_client *c)
{
	return c->nqueued;
}

void
http_client_free_(struct http_client *c)
{
	struct http_client_call *call;
	struct hc_host *h;

	if (c == NULL)
		return;
	while ((call = LIST_FIRST(&c->calls)) != NULL) {
		if (call->k != NULL)
			call->k->call = NULL;
		call->k = NULL;
		call_free(call);
	}
	while ((h = c->hosts) != NULL) {
		struct hc_conn *k;

		while ((k = h->conns) != NULL) {
			struct net_conn *nc = k->nc;

			conn_unlink(k);
			if (nc != NULL)
				net_conn_close(nc, "http client closed", 0);
		}
		c->hosts = h->next;
		host_free(h);
	}
	event_free(c->kick);
	free(c);
}
