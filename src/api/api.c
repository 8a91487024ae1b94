/*
 * api.c — the REST API's core: the route table, authentication (bearer
 * API keys, roles), body checks (size per route, JSON with line/column
 * errors), answers in the project's JSON shapes, and the helpers that
 * make a mutation durable and audited before it is acknowledged.
 *
 * The handlers live in api_sys.c, api_keys.c, api_audit.c, api_state.c
 * and api_batch.c. The HTTP connections are net_http.c's.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include <jansson.h>

#include "conf/conf.h"
#include "http/http_req.h"
#include "src/api/api.h"
#include "src/util/jw.h"
#include "src/daemon.h"
#include "src/net/net.h"
#include "src/net/store_loop.h"
#include "src/notify.h"
#include "src/util/log.h"
#include "src/util/metrics.h"
#include "store/audit.h"

struct api {
	struct daemon		*d;
	struct api_keys		*keys;
	struct api_batches	*batches;
	struct metric		*m_req;		/* {route, status} */
	struct metric		*m_secs;	/* {route} */
};

static const double http_secs[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01,
	0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10 };

#define KB(n)	((uint64_t)(n) * 1024)

#define API_ROUTE(m, p, fn, role, flags, max, name) \
	{ m, p, &(const struct api_route){ fn, role, flags, max, name } },

const struct http_route api_routes[] = {
#include "src/api/api_routes.h"
};
#undef API_ROUTE
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

struct api *
api_new(struct daemon *d, char *err, size_t errlen)
{
	struct api *a = calloc(1, sizeof(*a));
	struct store *st = store_loop_store(daemon_state(d));

	if (a == NULL)
		abort();
	a->d = d;
	a->m_req = metrics_counter(daemon_metrics(d),
	    "vnamig_http_requests_total", "HTTP requests answered, by route "
	    "(\"-\": refused before routing) and status.", "route,status");
	a->m_secs = metrics_histogram(daemon_metrics(d),
	    "vnamig_http_request_seconds", "Time from a request's arrival to "
	    "its answer being queued, by route.", "route", http_secs,
	    sizeof(http_secs) / sizeof(http_secs[0]));
	a->keys = api_keys_new();
	a->batches = api_batches_new();
	if (api_keys_load(a->keys, st) < 0 ||
	    api_batches_load(a->batches, st) < 0) {
		snprintf(err, errlen, "reading the API keys and batches from "
		    "the store failed: %s", store_error(st));
		api_free(a);
		return NULL;
	}
	return a;
}

void
api_free_(struct api *a)
{
	if (a == NULL)
		return;
	api_keys_free(a->keys);
	api_batches_free(a->batches);
	free(a);
}

void
api_reload(struct api *a)
{
	struct store *st = store_loop_store(daemon_state(a->d));

	if (api_keys_load(a->keys, st) < 0 ||
	    api_batches_load(a->batches, st) < 0)
		log_err("api-reload-failed", "error=%s",
		    log_q(store_error(st)));
}

void
api_tick(struct api *a)
{
	const struct conf *cf = daemon_conf(a->d);
	uint64_t window = 300000;

	/* a signature is remembered as long as any channel would still
	 * accept it */
	for (size_t i = 0; i < cf->api.nwebhooks; i++)
		if (cf->api.webhooks[i].replay_ms > window)
			window = cf->api.webhooks[i].replay_ms;
	api_batches_expire(a->batches, store_loop_store(daemon_state(a->d)),
	    2 * window);
}

void
api_observe(struct api *a, const char *route, int status, double secs)
{
	char st[8];
	const char *v[2] = { route, st };

	if (a == NULL)
		return;
	snprintf(st, sizeof(st), "%d", status);
	metric_add(a->m_req, v, 1);
	if (strcmp(route, "-") != 0)
		metric_observe(a->m_secs, v, secs);
}

struct api_keys *
api_keys_of(struct api_req *q)
{
	return q->api->keys;
}

struct api_batches *
api_batches(struct api *a)
{
	return a->batches;
}

struct api_batches *
api_batches_of(struct api_req *q)
{
	return q->api->batches;
}

struct metrics *
api_metrics_of(struct api_req *q)
{
	return daemon_metrics(q->d);
}

struct store *
api_store(struct api_req *q)
{
	return store_loop_store(daemon_state(q->d));
}

struct audit *
api_audit_log(struct api_req *q)
{
	return store_loop_audit(daemon_state(q->d));
}

const struct conf *
api_conf(struct api_req *q)
{
	return daemon_conf(q->d);
}

void
api_time(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct api_req *
api_req_new(struct api *a, struct net_conn *c, struct http_req *r)
{
	struct api_req *q = calloc(1, sizeof(*q));

	if (q == NULL)
		abort();
	q->api = a;
	q->d = a->d;
	q->conn = c;
	q->http = r;
	q->t0_us = now_us();
	snprintf(q->peer, sizeof(q->peer), "%s", net_conn_peer(c));
	snprintf(q->method, sizeof(q->method), "%s", http_req_method(r));
	snprintf(q->path, sizeof(q->path), "%s", http_req_path(r));
	q->head = strcmp(q->method, "HEAD") == 0;
	snprintf(q->who.key, sizeof(q->who.key), "anonymous");
	return q;
}

void
api_req_orphan(struct api_req *q)
{
	q->conn = NULL;
	q->http = NULL;
}

/* ---------------------------------------------------------------------- */
/* Answers. */

void
api_reply_h(struct api_req *q, int status, json_t *body, const char *headers)
{
	char *text = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS |
	    JSON_ENSURE_ASCII) : NULL;
	size_t len = text ? strlen(text) : 0;

	json_decref(body);
	if (text != NULL) {
		/* one line, so that curl output ends cleanly */
		char *t = realloc(text, len + 2);

		if (t == NULL)
			abort();
		text = t;
		text[len++] = '\n';
		text[len] = '\0';
	}
	net_http_answer(q, status, "application/json", headers, text, len);
	free(text);
}

void
api_reply(struct api_req *q, int status, json_t *body)
{
	api_reply_h(q, status, body, NULL);
}

void
api_reply_text(struct api_req *q, int status, const char *ctype,
    const char *text, size_t len)
{
	net_http_answer(q, status, ctype, NULL, text, len);
}

void
api_error(struct api_req *q, int status, const char *code, json_t *detail,
    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	json_t *e;
	const char *hdr = NULL;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* (it may quote the request: jansson takes UTF-8 only, and a
	 * message it refused went out as an empty body) */
	jw_utf8_scrub(msg);
	e = json_pack("{s:s, s:s}", "code", code, "message", msg);
	if (detail != NULL)
		json_object_set_new(e, "detail", detail);
	if (status == 401)
		hdr = "WWW-Authenticate: Bearer realm=\"vnamig\"\r\n";
	else if (status == 503)
		hdr = "Retry-After: 10\r\n";
	api_reply_h(q, status, json_pack("{s:o}", "error", e), hdr);
}

void
api_reply_stream(struct api_req *q, int status, const char *ctype,
    api_stream_fn *fn, void *arg, void (*arg_free)(void *))
{
	q->more = fn;
	q->more_arg = arg;
	q->more_free = arg_free;
	net_http_stream(q, status, ctype);
}

/* ---------------------------------------------------------------------- */
/* Mutations. */

int
api_writable(struct api_req *q)
{
	struct store *st = api_store(q);
	const char *why = net_server_intake(daemon_net(q->d));

	if (store_state(st) == STORE_FAILED) {
		api_error(q, 503, "store_unavailable", NULL, "the state store "
		    "cannot take writes now: %s; nothing was changed, try "
		    "again later", store_error(st));
		return 0;
	}
	if (why != NULL && store_state(st) != STORE_OK) {
		api_error(q, 503, "store_unavailable", NULL, "the state store "
		    "is not taking new work: %s; nothing was changed, try "
		    "again later", why);
		return 0;
	}
	return 1;
}

struct store_batch *
api_begin(struct api_req *q)
{
	return api_writable(q) ? store_begin(api_store(q)) : NULL;
}

static void
add_actor(struct api_req *q, json_t *ev)
{
	json_object_set_new(ev, "actor", json_pack("{s:s, s:s, s:s}",
	    "key", q->who.key, "role", q->who.authed ?
	    conf_api_role_name(q->who.role) : "none", "addr", q->peer));
	json_object_set_new(ev, "request", json_pack("{s:s, s:s}",
	    "method", q->method, "path", q->path));
}

struct commit {
	struct api_req		*q;
	api_done_fn		*done;
	struct notify_ticket	*notes;		/* webhooks out */
};

static void
committed(void *arg, int err)
{
	struct commit *c = arg;
	struct api_req *q = c->q;
	api_done_fn *done = c->done;

	notify_settle(c->notes, err);	/* delivered once durable */
	free(c);
	done(q, err);
}

void
api_commit(struct api_req *q, struct store_batch *b, json_t *ev,
    api_done_fn *done)
{
	struct commit *c = malloc(sizeof(*c));

	if (c == NULL)
		abort();
	c->q = q;
	c->done = done;
	add_actor(q, ev);
	audit_append(api_audit_log(q), b, ev);
	/* the notifications of the change, in its unit (outbox) */
	c->notes = notify_emit(daemon_notify(q->d), b, ev);
	json_decref(ev);
	store_end(b, committed, c);
}

void
api_audit(struct api_req *q, json_t *ev)
{
	add_actor(q, ev);
	store_loop_event(daemon_state(q->d), ev, NULL, NULL);
	json_decref(ev);
}

int
api_query_u64(struct api_req *q, const char *name, uint64_t *out)
{
	char buf[32], *end;
	int n = http_query_get(http_req_query(q->http), name, buf,
	    sizeof(buf));

	if (n == -1)
		return 0;
	if (n > 0 && buf[0] >= '0' && buf[0] <= '9') {
		unsigned long long v;

		errno = 0;
		v = strtoull(buf, &end, 10);
		/* (past 2^64-1 strtoull gives that, and ERANGE) */
		if (*end == '\0' && n <= 20 && errno != ERANGE) {
			*out = v;
			return 1;
		}
	}
	api_error(q, 400, "bad_query", json_pack("{s:s}", "parameter", name),
	    "query parameter %s must be an unsigned integer", name);
	return -1;
}

/* ---------------------------------------------------------------------- */
/* Dispatch. */

static int
content_json(const char *ct)
{
	size_t n = strlen("application/json");

	if (ct == NULL)
		return 0;
	while (*ct == ' ')
		ct++;
	return strncasecmp(ct, "application/json", n) == 0 &&
	    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static int
parse_body(struct api_req *q)
{
	size_t len;
	const char *body = http_req_body(q->http, &len);
	json_error_t je;

	if (len == 0 && (q->route->flags & API_OPTJSON)) {
		q->body = json_object();
		return 0;
	}
	if (!content_json(http_req_header(q->http, "Content-Type"))) {
		api_error(q, 415, "unsupported_media_type", NULL, "%s %s takes "
		    "a JSON object: send Content-Type: application/json",
		    q->method, q->path);
		return -1;
	}
	q->body = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (q->body == NULL) {
		api_error(q, 400, "bad_json", json_pack("{s:i, s:i, s:i}",
		    "line", je.line, "column", je.column, "position",
		    je.position), "the body is not valid JSON: line %d, column "
		    "%d: %s", je.line, je.column, je.text);
		return -1;
	}
	if (!json_is_object(q->body)) {
		api_error(q, 400, "bad_json", NULL, "the body must be a JSON "
		    "object ({...})");
		return -1;
	}
	return 0;
}

/*
 * Before a body is read: how much of one this request may bring. A caller
 * not (yet) known to be allowed the route gets UNAUTH_BODY, enough for
 * any honest mistake to reach its 401/403/404 answer, so that clients
 * without a key cannot make us buffer limits.http_body each.
 */
#define UNAUTH_BODY	KB(64)

uint64_t
api_body_limit(struct api *a, const struct http_req *r)
{
	const struct conf *cf = daemon_conf(a->d);
	const struct api_route *rt;
	struct http_match m;
	struct api_who who = { "", CONF_API_VIEWER, 0 };
	uint64_t max;

	if (http_route_match(api_routes, api_nroutes, http_req_method(r),
	    http_req_path(r), &m) != 200)
		return UNAUTH_BODY;
	rt = m.route->data;
	max = rt->max_body ? rt->max_body : cf->limits.http_body;
	if (rt->flags & API_WEBHOOK) {
		const char *ch = http_match_param(&m, "channel");
		const struct conf_webhook *w = conf_webhook(cf, ch ? ch :
		    "default");

		if (w != NULL && w->anonymous)
			return max;
	}
	if (api_keys_auth(a->keys, cf, http_req_header(r, "Authorization"),
	    &who) == 0 && who.role >= rt->role)
		return max;
	return max < UNAUTH_BODY ? max : UNAUTH_BODY;
}

void
api_dispatch(struct api_req *q)
{
	const struct conf *cf = api_conf(q);
	const struct api_route *rt;
	size_t blen;
	uint64_t max;
	int rc;

	rc = http_route_match(api_routes, api_nroutes, q->method, q->path,
	    &q->m);
	if (rc == 404) {
		api_error(q, 404, "not_found", NULL, "no resource at %s; see "
		    "GET /api/openapi.json for the routes", q->path);
		return;
	}
	if (rc == 405) {
		char hdr[128], msg[400];

		snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", q->m.allow);
		snprintf(msg, sizeof(msg), "%s answers %s", q->path,
		    q->m.allow);
		api_reply_h(q, 405, json_pack("{s:{s:s, s:s}}", "error",
		    "code", "method_not_allowed", "message", msg), hdr);
		return;
	}
	q->route = rt = q->m.route->data;

	/* Who is calling. Webhook routes authenticate per channel. */
	if (((rt->flags & API_OPEN_HEALTH) && cf->api.health_open) ||
	    ((rt->flags & API_OPEN_METRICS) && cf->api.metrics_open) ||
	    (rt->flags & API_WEBHOOK)) {
		/* a key, when given and good, still names the caller */
		api_keys_auth(q->api->keys, cf, http_req_header(q->http,
		    "Authorization"), &q->who);
	} else {
		const char *authz = http_req_header(q->http, "Authorization");

		if (api_keys_auth(q->api->keys, cf, authz, &q->who) < 0) {
			log_info("http-unauthorized", "peer=%s method=%s "
			    "path=%s reason=%s", q->peer, q->method,
			    log_q(q->path), authz ? "unknown key" : "no key");
			if (q->conn != NULL)
				net_server_refusal(net_conn_server(q->conn),
				    "unauthorized", "http", q->peer, authz ?
				    "an API key not known" : "no API key");
			api_error(q, 401, "unauthorized", NULL, authz == NULL ?
			    "send Authorization: Bearer <api key>" :
			    "the API key is not known (or not a Bearer token)");
			return;
		}
		if (q->who.role < rt->role) {
			api_audit(q, json_pack("{s:s, s:s, s:s}", "event",
			    "api.denied", "outcome", "refused", "reason",
			    "role"));
			api_error(q, 403, "forbidden", json_pack("{s:s, s:s}",
			    "role", conf_api_role_name(q->who.role),
			    "required", conf_api_role_name(rt->role)),
			    "key \"%s\" has role %s; %s %s needs %s", q->who.key,
			    conf_api_role_name(q->who.role), q->method,
			    q->m.route->pattern, conf_api_role_name(rt->role));
			return;
		}
	}

	http_req_body(q->http, &blen);
	max = rt->max_body ? rt->max_body : cf->limits.http_body;
	if (blen > max) {
		api_error(q, 413, "body_too_large", json_pack("{s:I}", "limit",
		    (json_int_t)max), "the body is %zu bytes; %s %s takes at "
		    "most %" PRIu64, blen, q->method, q->m.route->pattern, max);
		return;
	}
	if (!(rt->flags & (API_JSON | API_WEBHOOK | API_RAW)) && blen > 0 &&
	    strcmp(q->method, "POST") != 0) {
		api_error(q, 400, "unexpected_body", NULL, "%s %s takes no "
		    "body", q->method, q->m.route->pattern);
		return;
	}
	if ((rt->flags & API_JSON) && parse_body(q) < 0)
		return;
	if (rt->flags & (API_WEBHOOK | API_RAW))
		q->raw = http_req_body(q->http, &q->rawlen);
	rt->fn(q);
}
