/*
 * notify.c — the durable outbox of event notifications (notify.h).
 *
 * In memory: per webhook name a queue of its pending records in seq
 * order (seq, attempts, next_at; the body stays in the store and is read
 * when a delivery starts), and the seqs of the dead records, oldest
 * first, for the max_outbox limit. A queue is IDLE (its head waits for
 * next_at, or it is empty), SENDING (an HTTP call under way) or SAVING
 * (the store unit recording the outcome is being made durable); only
 * once that unit is durable does memory change, so memory never runs
 * ahead of the store.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "conf/conf.h"
#include "src/net/http_client.h"
#include "src/net/net.h"
#include "src/net/store_loop.h"
#include "src/notify.h"
#include "src/util/hex.h"
#include "src/util/log.h"
#include "src/util/metrics.h"
#include "store/audit.h"
#include "store/store.h"
#include "store/store_key.h"

#define K_OUTBOX	"outbox"
#define K_DEAD		"outbox-dead"
#define RETRY_STORE_MS	1000	/* the store cannot write: look again */
#define OVER_LOG_MS	60000	/* "outbox full" at most this often */
#define MAX_RESPONSE	(64 * 1024)
#define PRUNE_MAX	64	/* dead records dropped per emit */

struct nrec {
	TAILQ_ENTRY(nrec)	 qe;
	struct nq		*q;
	uint64_t		 seq;
	unsigned		 attempts;
	uint64_t		 next_at;	/* wall clock, ms */
	int			 durable;
};

enum nq_state { NQ_IDLE, NQ_SENDING, NQ_SAVING };
enum outcome { O_DELIVERED, O_RETRY, O_DEAD };

struct nq {
	struct nq			*next;
	struct notify			*n;
	char				 name[CONF_NAME_MAX + 1];
	const struct conf_notify_hook	*w;	/* NULL: not configured */
	TAILQ_HEAD(, nrec)		 recs;
	size_t				 nrecs;
	enum nq_state			 st;
	struct http_client_call		*call;
	json_t				*cur;	/* the head's record, SENDING
						 * and SAVING */
	uint64_t			 t0;	/* the call began (ms) */
	unsigned			 max_attempts;	/* as sent */
	uint64_t			 backoff_min, backoff_max;
	struct event			*timer;
};

struct notify_ticket {
	size_t		 n;
	struct nrec	*recs[];
};

struct notify {
	struct net_server	*s;
	struct store_loop	*sl;
	const struct conf	*conf;
	struct http_client	*hc;
	struct nq		*queues;
	size_t			 npending;
	uint64_t		*dead;		/* seqs, a ring, oldest first */
	size_t			 dead_head, ndead, dead_cap;
	uint64_t		 next_seq;
	int			 draining;
	uint64_t		 over, over_logged_at;
	struct metric		*m_del;		/* {webhook,outcome} */
	struct metric_series	*s_pending, *s_dead, *s_over;
};

static void q_kick(struct nq *q);

static uint32_t
rnd32(void)
{
	uint32_t r = 0;

	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)random();
	return r;
}

static uint64_t
wall_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void
rec_key(struct store_key *k, const char *kind, uint64_t seq)
{
	store_key_init(k);
	store_key_cstr(k, kind);
	store_key_u64(k, seq);
}

static void
gauges(struct notify *n)
{
	if (n->s_pending != NULL) {
		series_set(n->s_pending, (double)n->npending);
		series_set(n->s_dead, (double)n->ndead);
	}
}

static void
count(struct notify *n, const char *webhook, enum outcome o)
{
	static const char *const names[] = { "delivered", "retry", "dead" };
	const char *v[2] = { webhook, names[o] };

	if (n->m_del != NULL)
		metric_add(n->m_del, v, 1);
}

static const struct conf_notify_hook *
hook_conf(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->notify.nwebhooks; i++)
		if (strcmp(c->notify.webhooks[i].name, name) == 0)
			return &c->notify.webhooks[i];
	return NULL;
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	q_kick(arg);
}

static struct nq *
queue_of(struct notify *n, const char *name)
{
	struct nq *q;

	for (q = n->queues; q != NULL; q = q->next)
		if (strcmp(q->name, name) == 0)
			return q;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		abort();
	q->n = n;
	snprintf(q->name, sizeof(q->name), "%s", name);
	q->w = hook_conf(n->conf, name);
	TAILQ_INIT(&q->recs);
	if ((q->timer = evtimer_new(net_server_base(n->s), on_timer, q)) ==
	    NULL)
		abort();
	q->next = n->queues;
	n->queues = q;
	return q;
}

static struct nrec *
rec_add(struct nq *q, uint64_t seq, unsigned attempts, uint64_t next_at,
    int durable)
{
	struct nrec *r = calloc(1, sizeof(*r));

	if (r == NULL)
		abort();
	r->q = q;
	r->seq = seq;
	r->attempts = attempts;
	r->next_at = next_at;
	r->durable = durable;
	TAILQ_INSERT_TAIL(&q->recs, r, qe);
	q->nrecs++;
	q->n->npending++;
	return r;
}

static void
rec_drop(struct nrec *r)
{
	TAILQ_REMOVE(&r->q->recs, r, qe);
	r->q->nrecs--;
	r->q->n->npending--;
	free(r);
}

static void
dead_push(struct notify *n, uint64_t seq)
{
	if (n->ndead == n->dead_cap) {
		size_t cap = n->dead_cap ? n->dead_cap * 2 : 64;
		uint64_t *d = malloc(cap * sizeof(*d));

		if (d == NULL)
			abort();
		for (size_t i = 0; i < n->ndead; i++)
			d[i] = n->dead[(n->dead_head + i) % n->dead_cap];
		free(n->dead);
		n->dead = d;
		n->dead_cap = cap;
		n->dead_head = 0;
	}
	n->dead[(n->dead_head + n->ndead++) % n->dead_cap] = seq;
}

static uint64_t
dead_pop(struct notify *n)
{
	uint64_t seq = n->dead[n->dead_head];

	n->dead_head = (n->dead_head + 1) % n->dead_cap;
	n->ndead--;
	return seq;
}

/* ---------------------------------------------------------------------- */
/* Loading. */

struct load {
	struct notify	*n;
	uint64_t	 max_seq;
	int		 bad;
};

static uint64_t
key_seq(const void *key, size_t klen, const char *kind, int *ok)
{
	struct store_kreader r;
	char buf[16];
	uint64_t seq;

	store_kreader_init(&r, key, klen);
	store_kreader_str(&r, buf, sizeof(buf));
	seq = store_kreader_u64(&r);
	*ok = store_kreader_done(&r) && strcmp(buf, kind) == 0;
	return seq;
}

static int
load_dead(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct load *l = arg;
	int ok;
	uint64_t seq = key_seq(key, klen, K_DEAD, &ok);

	(void)val;
	(void)vlen;
	if (!ok)
		return 0;
	dead_push(l->n, seq);
	if (seq > l->max_seq)
		l->max_seq = seq;
	return 0;
}

static int
load_pending(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct load *l = arg;
	json_t *j = json_loadb(val, vlen, 0, NULL);
	const char *w = json_string_value(json_object_get(j, "webhook"));
	int ok;
	uint64_t seq = key_seq(key, klen, K_OUTBOX, &ok);

	if (!ok || w == NULL) {
		l->bad++;
		json_decref(j);
		return 0;
	}
	rec_add(queue_of(l->n, w), seq, (unsigned)json_integer_value(
	    json_object_get(j, "attempts")), (uint64_t)json_integer_value(
	    json_object_get(j, "next_at")), 1);
	if (seq > l->max_seq)
		l->max_seq = seq;
	json_decref(j);
	return 0;
}

/* Queues with records but no configured webhook: said at start and on
 * reload, so that waiting notifications are not a surprise. */
static void
log_orphans(struct notify *n)
{
	for (struct nq *q = n->queues; q != NULL; q = q->next)
		if (q->w == NULL && q->nrecs > 0)
			log_warn("notify-unconfigured", "webhook=%s "
			    "pending=%zu hint=%s", q->name, q->nrecs,
			    log_q("configure a notify webhook of that name "
			    "to deliver them"));
}

struct notify *
notify_new(struct net_server *s, struct store_loop *sl,
    const struct conf *conf, struct metrics *m, char *err, size_t cap)
{
	struct notify *n = calloc(1, sizeof(*n));
	struct http_client_limits lim;
	struct store_key k;
	struct load l = { n, 0, 0 };
	uint64_t now_us = wall_ms() * 1000;

	if (n == NULL)
		abort();
	n->s = s;
	n->sl = sl;
	n->conf = conf;
	memset(&lim, 0, sizeof(lim));
	lim.max_response = MAX_RESPONSE;
	n->hc = http_client_new(s, &lim);
	store_key_init(&k);
	store_key_cstr(&k, K_DEAD);
	if (store_scan(store_loop_store(sl), STORE_CF_META, k.b, k.len,
	    load_dead, &l) < 0)
		goto fail;
	store_key_init(&k);
	store_key_cstr(&k, K_OUTBOX);
	if (store_scan(store_loop_store(sl), STORE_CF_META, k.b, k.len,
	    load_pending, &l) < 0)
		goto fail;
	n->next_seq = l.max_seq + 1 > now_us ? l.max_seq + 1 : now_us;
	if (m != NULL) {
		n->m_del = metrics_counter(m, "vnamig_notify_deliveries_total",
		    "Event notification attempts by webhook and outcome "
		    "(delivered: 2xx; retry: failed, to be tried again; dead: "
		    "given up after max_attempts).", "webhook,outcome");
		struct metric *g = metrics_gauge(m, "vnamig_notify_outbox",
		    "Notification records in the outbox: pending delivery, "
		    "and dead (kept for inspection).", "state");
		const char *p[1] = { "pending" }, *d[1] = { "dead" };

		n->s_pending = metric_series(g, p);
		n->s_dead = metric_series(g, d);
		n->s_over = metric_series(metrics_counter(m,
		    "vnamig_notify_outbox_overflow_total", "Notifications "
		    "recorded while pending records alone filled "
		    "notify.max_outbox (kept anyway: never dropped).", NULL),
		    NULL);
	}
	gauges(n);
	log_info("notify-open", "webhooks=%zu pending=%zu dead=%zu "
	    "unreadable=%d", conf->notify.nwebhooks, n->npending, n->ndead,
	    l.bad);
	log_orphans(n);
	for (struct nq *q = n->queues; q != NULL; q = q->next)
		q_kick(q);
	return n;
fail:
	snprintf(err, cap, "reading the notification outbox failed: %s",
	    store_error(store_loop_store(sl)));
	notify_free(n);
	return NULL;
}

void
notify_set_conf(struct notify *n, const struct conf *conf)
{
	if (n == NULL)
		return;
	n->conf = conf;
	for (struct nq *q = n->queues; q != NULL; q = q->next)
		q->w = hook_conf(conf, q->name);
	log_orphans(n);
	for (struct nq *q = n->queues; q != NULL; q = q->next)
		q_kick(q);
}

/* ---------------------------------------------------------------------- */
/* Emitting. */

/* node: the first part of ids: the AE title (spaces as '_'), ".sN" when
 * sharded. */
static void
node_name(const struct conf *c, char *out, size_t cap)
{
	if (c->node.shard_count > 1)
		snprintf(out, cap, "%s.s%u", c->node.ae_title,
		    c->node.shard_index);
	else
		snprintf(out, cap, "%s", c->node.ae_title);
	for (char *p = out; *p; p++)
		if (*p == ' ')
			*p = '_';
}

static void
time_ms(uint64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char s[24];

	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%s.%03uZ", s, (unsigned)(ms % 1000));
}

/* over: pending records alone fill max_outbox: say so (not too often),
 * count it, and keep the notification. */
static void
over(struct notify *n)
{
	uint64_t now = net_now_ms();

	n->over++;
	if (n->s_over != NULL)
		series_add(n->s_over, 1);
	if (n->over_logged_at == 0 || now - n->over_logged_at >= OVER_LOG_MS) {
		log_err("notify-outbox-full", "pending=%zu max_outbox=%u "
		    "overflow_total=%" PRIu64 " action=%s hint=%s",
		    n->npending, n->conf->notify.max_outbox, n->over,
		    "kept-anyway", log_q("the receivers are not taking "
		    "notifications: check them (vnamig_notify_deliveries_"
		    "total) or raise notify.max_outbox"));
		n->over_logged_at = now;
	}
}

/* make_room: the outbox is at max_outbox: drop the oldest dead records
 * in b to make room for one more. */
static void
make_room(struct notify *n, struct store_batch *b)
{
	size_t dropped = 0;
	struct store_key k;

	while (n->ndead > 0 && dropped < PRUNE_MAX && n->npending +
	    n->ndead >= n->conf->notify.max_outbox) {
		rec_key(&k, K_DEAD, dead_pop(n));
		store_del(b, STORE_CF_META, k.b, k.len);
		dropped++;
	}
	if (dropped > 0)
		log_info("notify-dead-dropped", "records=%zu dead_left=%zu "
		    "max_outbox=%u why=%s", dropped, n->ndead,
		    n->conf->notify.max_outbox, log_q("the outbox is full: "
		    "the oldest dead records go first"));
}

/* record: the outbox record of one notification (body as sent). */
static char *
record(struct notify *n, const struct conf_notify_hook *w, const json_t *ev,
    uint64_t seq, uint64_t now)
{
	char node[64], id[96], t[32], *body, *val;
	const char *name = json_string_value(json_object_get(ev, "event"));
	json_t *obj = json_object_get(ev, "object");
	json_t *actor = json_object_get(ev, "actor");
	json_t *j;

	node_name(n->conf, node, sizeof(node));
	snprintf(id, sizeof(id), "%s-%" PRIu64, node, seq);
	time_ms(now, t);
	j = json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", id, "event", name,
	    "time", t, "object", obj ? json_incref(obj) : json_object(),
	    "actor", actor ? json_incref(actor) : json_null());
	if (j == NULL)
		abort();
	body = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	json_decref(j);
	j = json_pack("{s:i, s:s, s:s, s:s, s:s, s:i, s:I, s:I}", "v", 1,
	    "webhook", w->name, "event", name, "id", id, "body", body,
	    "attempts", 0, "next_at", (json_int_t)now, "created",
	    (json_int_t)now);
	free(body);
	if (j == NULL)
		abort();
	val = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return val;
}

struct notify_ticket *
notify_emit(struct notify *n, struct store_batch *b, const json_t *ev)
{
	const char *name = json_string_value(json_object_get(ev, "event"));
	struct notify_ticket *t = NULL;
	uint64_t now = wall_ms();
	size_t nw;

	if (n == NULL || name == NULL || (nw = n->conf->notify.nwebhooks) == 0)
		return NULL;
	for (size_t i = 0; i < nw; i++) {
		const struct conf_notify_hook *w = &n->conf->notify.webhooks[i];
		struct store_key k;
		size_t e;
		char *val;

		for (e = 0; e < w->nevents; e++)
			if (conf_event_match(w->events[e], name))
				break;
		if (e == w->nevents)
			continue;
		if (n->npending + n->ndead >= n->conf->notify.max_outbox)
			make_room(n, b);
		if (n->npending >= n->conf->notify.max_outbox)
			over(n);
		if (t == NULL && (t = calloc(1, sizeof(*t) + nw *
		    sizeof(t->recs[0]))) == NULL)
			abort();
		rec_key(&k, K_OUTBOX, n->next_seq);
		val = record(n, w, ev, n->next_seq, now);
		store_put(b, STORE_CF_META, k.b, k.len, val, strlen(val));
		free(val);
		t->recs[t->n++] = rec_add(queue_of(n, w->name), n->next_seq++,
		    0, now, 0);
	}
	gauges(n);
	return t;
}

void
notify_settle(struct notify_ticket *t, int err)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++) {
		struct nrec *r = t->recs[i];
		struct nq *q = r->q;

		if (err != 0) {
			struct notify *n = q->n;

			rec_drop(r);	/* its change was not made either */
			gauges(n);
		} else {
			r->durable = 1;
			q_kick(q);
		}
	}
	free(t);
}

static void
event_settled(void *arg, int err)
{
	notify_settle(arg, err);
}

uint64_t
notify_event(struct notify *n, struct store_loop *sl, const json_t *ev)
{
	struct store_batch *b = store_begin(store_loop_store(sl));
	uint64_t seq = audit_append(store_loop_audit(sl), b, ev);
	struct notify_ticket *t = notify_emit(n, b, ev);

	store_end(b, event_settled, t);
	return seq;
}

/* ---------------------------------------------------------------------- */
/* Delivering. */

/* sign: "t=T,v1=HEX(HMAC-SHA256(secret, "T." || body))" */
static void
sign(const struct conf_notify_hook *w, const char *body, size_t len,
    char *out, size_t cap)
{
	char ts[24], hex[65], dg[] = "SHA256";
	uint8_t mac[32];
	size_t ml = sizeof(mac);
	EVP_MAC *m;
	EVP_MAC_CTX *mc;
	OSSL_PARAM pr[2];
	long long t = (long long)time(NULL);

	snprintf(ts, sizeof(ts), "%lld.", t);
	pr[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, dg, 0);
	pr[1] = OSSL_PARAM_construct_end();
	if ((m = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (mc = EVP_MAC_CTX_new(m)) == NULL ||
	    !EVP_MAC_init(mc, (const uint8_t *)w->hmac_secret, w->hmac_len,
	    pr) || !EVP_MAC_update(mc, (const uint8_t *)ts, strlen(ts)) ||
	    !EVP_MAC_update(mc, (const uint8_t *)body, len) ||
	    !EVP_MAC_final(mc, mac, &ml, sizeof(mac)))
		abort();
	EVP_MAC_CTX_free(mc);
	EVP_MAC_free(m);
	hex_encode(mac, 32, hex);
	snprintf(out, cap, "t=%lld,v1=%s", t, hex);
}

struct saving {
	struct nq	*q;
	enum outcome	 o;
	uint64_t	 next_at;
	int		 status;
	char		 error[320];
};

static void
saved(void *arg, int err)
{
	struct saving *sv = arg;
	struct nq *q = sv->q;
	struct notify *n = q->n;
	struct nrec *r = TAILQ_FIRST(&q->recs);
	const char *id = json_string_value(json_object_get(q->cur, "id"));
	const char *ev = json_string_value(json_object_get(q->cur, "event"));

	if (id == NULL || ev == NULL)
		id = ev = "?";
	q->st = NQ_IDLE;
	if (err != 0) {
		log_err("notify-store-failed", "webhook=%s id=%s error=%s "
		    "action=%s", q->name, id, log_q(store_error(
		    store_loop_store(n->sl))), "tried again later");
		if (!n->draining)
			net_timer_arm(q->timer, RETRY_STORE_MS);
		goto out;
	}
	count(n, q->name, sv->o);
	if (sv->o == O_DELIVERED) {
		log_info("notify-delivered", "webhook=%s id=%s event=%s "
		    "status=%d attempts=%u ms=%" PRIu64, q->name, id, ev,
		    sv->status, r->attempts + 1, net_now_ms() - q->t0);
		rec_drop(r);
	} else if (sv->o == O_DEAD) {
		log_warn("notify-failed", "webhook=%s id=%s event=%s "
		    "attempts=%u error=%s action=%s", q->name, id, ev,
		    r->attempts + 1, log_q(sv->error),
		    "outbox-dead,audit:notify.failed");
		dead_push(n, r->seq);
		rec_drop(r);
	} else {
		r->attempts++;
		r->next_at = sv->next_at;
		log_info("notify-attempt-failed", "webhook=%s id=%s event=%s "
		    "attempt=%u/%u error=%s retry_in_ms=%" PRIu64, q->name, id,
		    ev, r->attempts, q->max_attempts, log_q(sv->error),
		    sv->next_at > wall_ms() ? sv->next_at - wall_ms() : 0);
	}
	gauges(n);
out:
	json_decref(q->cur);
	q->cur = NULL;
	free(sv);
	q_kick(q);
}

/* outcome: record what the attempt at the head came to, durably. */
static void
outcome(struct nq *q, int status, const char *error, uint64_t retry_after)
{
	struct notify *n = q->n;
	struct nrec *r = TAILQ_FIRST(&q->recs);
	struct saving *sv = calloc(1, sizeof(*sv));
	struct store_batch *b = store_begin(store_loop_store(n->sl));
	struct store_key k;
	uint64_t now = wall_ms();
	char *val;

	if (sv == NULL)
		abort();
	sv->q = q;
	sv->status = status;
	snprintf(sv->error, sizeof(sv->error), "%s", error);
	q->st = NQ_SAVING;
	rec_key(&k, K_OUTBOX, r->seq);
	if (status >= 200 && status <= 299) {
		sv->o = O_DELIVERED;
		store_del(b, STORE_CF_META, k.b, k.len);
		store_end(b, saved, sv);
		return;
	}
	json_object_set_new(q->cur, "attempts", json_integer(r->attempts + 1));
	json_object_set_new(q->cur, "last_error", json_string(error));
	json_object_set_new(q->cur, "last_at", json_integer((json_int_t)now));
	if (r->attempts + 1 >= q->max_attempts) {
		json_t *leaf;

		sv->o = O_DEAD;
		json_object_set_new(q->cur, "dead_at",
		    json_integer((json_int_t)now));
		store_del(b, STORE_CF_META, k.b, k.len);
		rec_key(&k, K_DEAD, r->seq);
		leaf = json_pack("{s:s, s:{s:s, s:O?, s:O?, s:i}, s:s, s:s}",
		    "event", "notify.failed", "object", "webhook", q->name,
		    "id", json_object_get(q->cur, "id"), "event",
		    json_object_get(q->cur, "event"), "attempts",
		    (int)r->attempts + 1, "outcome", "failed", "reason", error);
		audit_append(store_loop_audit(n->sl), b, leaf);
		json_decref(leaf);
	} else {
		uint64_t d = http_client_backoff(r->attempts + 1,
		    q->backoff_min, q->backoff_max, rnd32());
		uint64_t ra = retry_after < q->backoff_max ? retry_after :
		    q->backoff_max;

		sv->o = O_RETRY;
		sv->next_at = now + (d > ra ? d : ra);
		json_object_set_new(q->cur, "next_at",
		    json_integer((json_int_t)sv->next_at));
	}
	val = json_dumps(q->cur, JSON_COMPACT | JSON_SORT_KEYS);
	store_put(b, STORE_CF_META, k.b, k.len, val, strlen(val));
	free(val);
	store_end(b, saved, sv);
}

static void
on_result(void *arg, const struct http_client_result *res)
{
	struct nq *q = arg;
	char error[400];

	q->call = NULL;
	if (res->err != HC_OK)
		snprintf(error, sizeof(error), "%s: %s",
		    http_client_error_name(res->err), res->error);
	else if (res->status < 200 || res->status > 299) {
		char snippet[80] = "";

		/* the start of the receiver's answer, on one line */
		for (size_t i = 0; i < res->body_len && i + 1 <
		    sizeof(snippet); i++)
			snippet[i] = res->body[i] >= ' ' && res->body[i] < 127 ?
			    res->body[i] : ' ';
		snprintf(error, sizeof(error), "HTTP %d%s%s", res->status,
		    snippet[0] ? ": " : "", snippet);
	} else
		error[0] = '\0';
	outcome(q, res->err == HC_OK ? res->status : 0, error,
	    res->retry_after_ms);
}

/* deliver: send the head record of q (durable, due). */
static void
deliver(struct nq *q, struct nrec *r)
{
	const struct conf_notify_hook *w = q->w;
	struct http_client_req rq;
	struct store_key k;
	char hdr[1024], sig[128] = "", err[300];
	const char *body, *id, *ev;
	void *v;
	size_t vn;
	int got;

	rec_key(&k, K_OUTBOX, r->seq);
	got = store_get(store_loop_store(q->n->sl), STORE_CF_META, k.b, k.len,
	    &v, &vn);
	if (got <= 0) {
		if (got == 0) {		/* gone from under us: say so */
			log_err("notify-record-missing", "webhook=%s seq=%"
			    PRIu64 " action=%s", q->name, r->seq, "skipped");
			rec_drop(r);
			gauges(q->n);
			q_kick(q);
		} else
			net_timer_arm(q->timer, RETRY_STORE_MS);
		return;
	}
	q->cur = json_loadb(v, vn, 0, NULL);
	free(v);
	body = json_string_value(json_object_get(q->cur, "body"));
	id = json_string_value(json_object_get(q->cur, "id"));
	ev = json_string_value(json_object_get(q->cur, "event"));
	if (body == NULL || id == NULL || ev == NULL) {
		if (q->cur == NULL)
			q->cur = json_object();
		q->max_attempts = 1;	/* straight to outbox-dead */
		outcome(q, 0, "the outbox record is damaged", 0);
		return;
	}
	if (w->hmac_secret != NULL)
		sign(w, body, strlen(body), sig, sizeof(sig));
	snprintf(hdr, sizeof(hdr), "Content-Type: application/json\r\n"
	    "X-Vnamig-Event: %s\r\nX-Vnamig-Delivery: %s\r\n%s%s%s", ev, id,
	    sig[0] ? "X-Vnamig-Signature: " : "", sig, sig[0] ? "\r\n" : "");
	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.url = w->url;
	rq.headers = hdr;
	rq.body = body;
	rq.body_len = strlen(body);
	rq.ca_file = w->ca;
	rq.connect_timeout_ms = w->timeout_ms;
	rq.timeout_ms = w->timeout_ms;
	rq.max_attempts = 1;	/* each attempt is counted durably here */
	rq.retry_safe = 1;	/* X-Vnamig-Delivery: receivers dedup */
	q->max_attempts = w->max_attempts;
	q->backoff_min = w->backoff_min_ms;
	q->backoff_max = w->backoff_max_ms;
	q->t0 = net_now_ms();
	q->st = NQ_SENDING;
	if ((q->call = http_client_request(q->n->hc, &rq, on_result, q, err,
	    sizeof(err))) == NULL)
		outcome(q, 0, err, 0);	/* counted as an attempt */
}

static void
q_kick(struct nq *q)
{
	struct notify *n = q->n;
	struct nrec *r = TAILQ_FIRST(&q->recs);
	uint64_t now;

	if (n->draining || q->st != NQ_IDLE || q->w == NULL || r == NULL ||
	    !r->durable)
		return;
	if (store_state(store_loop_store(n->sl)) == STORE_FAILED) {
		net_timer_arm(q->timer, RETRY_STORE_MS);
		return;
	}
	now = wall_ms();
	/* a wall clock set back, or a smaller backoff_max since: no wait
	 * longer than backoff_max */
	if (r->next_at > now + q->w->backoff_max_ms)
		r->next_at = now + q->w->backoff_max_ms;
	if (r->next_at > now) {
		net_timer_arm(q->timer, r->next_at - now);
		return;
	}
	evtimer_del(q->timer);
	deliver(q, r);
}

/* ---------------------------------------------------------------------- */

void
notify_drain(struct notify *n)
{
	if (n == NULL || n->draining)
		return;
	n->draining = 1;
	for (struct nq *q = n->queues; q != NULL; q = q->next) {
		evtimer_del(q->timer);
		if (q->st == NQ_SENDING) {
			if (q->call != NULL)
				http_client_cancel(q->call);
			q->call = NULL;
			json_decref(q->cur);
			q->cur = NULL;
			q->st = NQ_IDLE;
		}
	}
	if (n->npending > 0)
		log_info("notify-stopped", "pending=%zu action=%s",
		    n->npending, "delivered after the next start");
}

void
notify_free_(struct notify *n)
{
	struct nq *q;
	struct nrec *r;

	if (n == NULL)
		return;
	notify_drain(n);
	/* our units (and the API's, which settle tickets) end first */
	store_drain(store_loop_store(n->sl));
	while ((q = n->queues) != NULL) {
		n->queues = q->next;
		while ((r = TAILQ_FIRST(&q->recs)) != NULL)
			rec_drop(r);
		json_decref(q->cur);
		event_free(q->timer);
		free(q);
	}
	http_client_free(n->hc);
	free(n->dead);
	free(n);
}
