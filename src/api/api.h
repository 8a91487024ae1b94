/*
 * api.h — the REST API: routes, authentication and roles, and the
 * handlers behind them (src/api/api_*.c). net_http.c owns the HTTP
 * connections and calls api_dispatch() for each parsed request; a handler
 * answers at once or later (after a store commit), through api_reply*().
 *
 * Permission table (DESIGN: viewer reads, operator controls jobs, admin
 * manages keys and state):
 *
 *	viewer		every GET except /api/keys and /api/backups
 *	operator	+ batches (submit, pause, resume, cancel), webhook
 *			  intake, named checkpoints
 *	admin		+ API keys, checkpoint restore, backups
 *
 * /api/health and /metrics answer without a key when api.health_open /
 * api.metrics_open say so; webhook channels may be anonymous.
 */
#ifndef VNAMIG_API_H
#define VNAMIG_API_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "conf/conf.h"
#include "http/http_route.h"
#include "store/store.h"

struct api;
struct daemon;
struct http_req;
struct metrics;
struct net_conn;

/* Route flags. */
#define API_OPEN_HEALTH	0x01	/* open when api.health_open */
#define API_OPEN_METRICS 0x02	/* open when api.metrics_open */
#define API_JSON	0x04	/* takes a JSON object body */
#define API_MUTATES	0x08	/* changes state: audited */
#define API_WEBHOOK	0x10	/* authenticated per webhook channel */
#define API_OPTJSON	0x20	/* an empty body is allowed */
#define API_RAW		0x40	/* takes a non-JSON body (q->raw) */

struct api_req;
typedef void api_fn(struct api_req *q);

struct api_route {
	api_fn			*fn;
	enum conf_api_role	 role;		/* least role allowed */
	unsigned		 flags;
	uint64_t		 max_body;	/* 0 = limits.http_body */
	const char		*name;		/* metric label: "batches.get" */
};

/* Who is calling. */
struct api_who {
	char			 key[65];	/* key id, or "anonymous" */
	enum conf_api_role	 role;
	int			 authed;
};

/*
 * A request being answered. conn and http are NULL once the client went
 * away; a handler that waited (store commit) must copy what it needs from
 * http before waiting, and still calls api_reply* (which then only frees).
 */
typedef int api_stream_fn(struct api_req *q, struct evbuffer *out);

struct api_req {
	struct api		*api;
	struct daemon		*d;
	struct net_conn		*conn;
	struct http_req		*http;
	const struct api_route	*route;
	struct http_match	 m;
	struct api_who		 who;
	json_t			*body;		/* API_JSON routes */
	const char		*raw;		/* the raw body (API_WEBHOOK) */
	size_t			 rawlen;
	char			 peer[80];	/* "addr:port" */
	char			 method[8];
	char			 path[256];	/* for logs and the audit leaf */
	int			 head;
	int			 status;	/* once answered */
	uint64_t		 t0_us;
	/* Streaming answers. */
	api_stream_fn		*more;
	void			*more_arg;
	void			(*more_free)(void *);
	/* Batches waiting on the same webhook seed (api_batch.c). */
	struct api_req		*next_waiter;
	void			*priv;
	/* Called when the request is freed, answered or not. */
	void			(*cleanup)(struct api_req *q);
	char			 sig[65];	/* webhook signature held */
};

/* The API of one daemon. */
struct api *api_new(struct daemon *d, char *err, size_t errlen);
void api_free_(struct api *a);
#define api_free(a) do { api_free_(a); (a) = NULL; } while (0)
/* The store was reset (failed group, recovery): reload the mirrors. */
void api_reload(struct api *a);
/* Once a minute: drop expired webhook signatures. */
void api_tick(struct api *a);
/* Count an answered request in the metrics (route "-": refused by the
 * parser). */
void api_observe(struct api *a, const char *route, int status,
    double secs);

/* net_http: a parsed request (route matched or not); answers through
 * api_reply* now or later. */
struct api_req *api_req_new(struct api *a, struct net_conn *c,
    struct http_req *r);
void api_dispatch(struct api_req *q);
/* net_http's head hook: the body this request may bring (route limit for
 * callers allowed the route, 64 KiB for the rest). */
uint64_t api_body_limit(struct api *a, const struct http_req *r);
/* net_http: the connection is going away while q is pending. */
void api_req_orphan(struct api_req *q);

/* Answers. Each ends the request (and frees q). Bodies are stolen. */
void api_reply(struct api_req *q, int status, json_t *body);
void api_reply_h(struct api_req *q, int status, json_t *body,
    const char *headers);
void api_reply_text(struct api_req *q, int status, const char *ctype,
    const char *text, size_t len);
void api_error(struct api_req *q, int status, const char *code,
    json_t *detail, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A chunked answer: fn is called whenever the socket can take more;
 * returns 1 for more, 0 when done, -1 to abort the connection. */
void api_reply_stream(struct api_req *q, int status, const char *ctype,
    api_stream_fn *fn, void *arg, void (*arg_free)(void *));
/* Implemented by net_http: send what api_reply* prepared. */
void net_http_answer(struct api_req *q, int status, const char *ctype,
    const char *headers, const char *body, size_t len);
void net_http_stream(struct api_req *q, int status, const char *ctype);

/*
 * Mutations: a store unit for q's change, and its audit leaf. ev (stolen)
 * gets "actor" {key, role, addr} and "request" {method, path}; done runs
 * on the loop when the unit is durable (err 0) or failed.
 * api_begin answers 503 itself and returns NULL when the store cannot
 * take writes.
 */
typedef void api_done_fn(struct api_req *q, int err);
struct store_batch *api_begin(struct api_req *q);
/* Whether a change may be made now: 1, or 0 with 503 answered. For work
 * done before its unit (a checkpoint, a backup). */
int api_writable(struct api_req *q);
void api_commit(struct api_req *q, struct store_batch *b, json_t *ev,
    api_done_fn *done);
/* An audit leaf for ev alone, not waited for (refusals). */
void api_audit(struct api_req *q, json_t *ev);

/* Helpers for handlers. */
struct store *api_store(struct api_req *q);
struct audit *api_audit_log(struct api_req *q);
const struct conf *api_conf(struct api_req *q);
/* Query parameter as an unsigned integer: 1 found, 0 absent, -1 bad
 * (answered 400). */
int api_query_u64(struct api_req *q, const char *name, uint64_t *out);
/* RFC 3339 UTC "2026-11-23T23:59:59Z" for t (seconds since the epoch). */
void api_time(int64_t t, char out[32]);

/* The tables and handlers of each part. */
extern const struct http_route api_routes[];
extern const size_t api_nroutes;

/* api_keys.c */
struct api_keys;
struct api_keys *api_keys_new(void);
void api_keys_free_(struct api_keys *k);
#define api_keys_free(k) do { api_keys_free_(k); (k) = NULL; } while (0)
int api_keys_load(struct api_keys *k, struct store *st);
int api_keys_auth(struct api_keys *k, const struct conf *cf,
    const char *token, struct api_who *who);
api_fn api_keys_list, api_keys_create, api_keys_delete;

/* api_sys.c */
api_fn api_health, api_status, api_metrics, api_openapi;

/* api_audit.c */
api_fn api_audit_checkpoint, api_audit_leaf, api_audit_proof,
    api_audit_consistency, api_audit_export;

/* api_state.c */
api_fn api_ckpt_list, api_ckpt_create, api_ckpt_restore,
    api_backup_list, api_backup_create, api_backup_verify;

/* api_hl7.c */
api_fn api_hl7_messages, api_hl7_ingest, api_hl7_preview;

/* api_batch.c */
struct api_batches;
struct api_batches *api_batches_new(void);
void api_batches_free_(struct api_batches *b);
#define api_batches_free(b) do { api_batches_free_(b); (b) = NULL; } \
	while (0)
int api_batches_load(struct api_batches *b, struct store *st);
void api_batches_expire(struct api_batches *b, struct store *st,
    uint64_t max_age_ms);
json_t *api_batches_counts(struct api_batches *b);
/* HL7 intake: a batch from a seed built there (source, target, priority,
 * accession_numbers, study_instance_uids, patient_id), its record put in
 * unit b; returns its id (*out: the record, when wanted). Call
 * api_batches_created once b is durable. */
uint64_t api_batches_put(struct api_batches *bs, struct store_batch *b,
    json_t *seed, const char *channel, const char *by, json_t **out);
/* The same for an HL7 order, its record written straight as text (no
 * seed or record tree: thousands a second); returns its id. */
struct api_order {
	const char	*source, *target;
	const char	*accession;	/* "": none */
	const char	*study_uid;	/* "": none */
	const char	*patient_id;	/* "": none */
	const char	*external_id;
	int		 priority;
	int		 include_priors;
	int64_t		 prefetch_at_ms;
};
uint64_t api_batches_put_order(struct api_batches *bs,
    struct store_batch *b, const struct api_order *o, const char *channel,
    const char *by);
void api_batches_created(struct api_batches *bs);
/* Each batch of patient pid not started yet (queued, paused), or already
 * under way or done (not_started 0): fn(arg, id, record) returns 1 when
 * it changed the record, which is then written in b. The count changed,
 * or -1. */
struct api_held {
	uint64_t	*id;
	size_t		 n;
};
/* The batches changed are held (api_batches_claim) in held, to be let go
 * with api_batches_unhold once b is durable (or failed); a batch with a
 * write in flight is read as that write leaves it. */
int api_batches_of_patient(struct api_batches *bs, struct store *st,
    struct store_batch *b, const char *src, const char *pid, int not_started,
    int (*fn)(void *, uint64_t, json_t *), void *arg, struct api_held *held);
void api_batches_unhold(struct api_batches *bs, struct api_held *held);
struct api_batches *api_batches(struct api *a);
api_fn api_batch_list, api_batch_get, api_batch_create, api_batch_webhook,
    api_batch_pause, api_batch_resume, api_batch_cancel;
/* The engine's side: the batch may be changed by the engine now (1: it
 * is marked busy until api_batches_release), or not (0: a request is
 * changing it). */
int api_batches_claim(struct api_batches *bs, uint64_t id);
/* api_batches_pending: the record as the claimed write will leave it
 * (copied), for api_batches_of_patient's writes meanwhile. */
void api_batches_pending(struct api_batches *bs, uint64_t id, json_t *rec);
/* api_batches_hold: hold id once more (or claim it); a copy of its
 * pending record, or NULL. Released by api_batches_release/unhold. */
json_t *api_batches_hold(struct api_batches *bs, uint64_t id);
/* Done (a state change from `from` to `to` was written, or nothing when
 * from < 0). */
void api_batches_release(struct api_batches *bs, uint64_t id, int changed,
    const char *from, const char *to);

/* api_plan.c: plans (a named migration its batches join) */
api_fn api_plan_create, api_plan_list, api_plan_get, api_plan_pause,
    api_plan_resume, api_plan_cancel;
/* api_plan_load: plan id's record, or NULL (*err 1: a read error). */
json_t *api_plan_load(struct store *st, uint64_t id, int *err);
/* api_batches_plan_id: the next plan id, above max (the highest
 * stored) and every one handed out before. */
uint64_t api_batches_plan_id(struct api_batches *bs, uint64_t max);

/* api_mig.c: the engine's reports and quarantine */
api_fn api_batch_report, api_quarantine, api_quarantine_get,
    api_quarantine_retry, api_quarantine_release, api_quarantine_reject;

/* api_node.c: pausing the node or a source */
api_fn api_node_get, api_node_pause, api_node_resume, api_sources_list,
    api_source_get, api_source_pause, api_source_resume, api_progress;
/* A named checkpoint "pause-LABEL-TIME" of the whole state, audited (a
 * failure is logged and audited, not answered: the pause stands). */
void api_pause_checkpoint(struct api_req *q, const char *label);

/* The parts' state, for the handlers. */
struct api_keys *api_keys_of(struct api_req *q);
struct api_batches *api_batches_of(struct api_req *q);
struct metrics *api_metrics_of(struct api_req *q);

#endif
