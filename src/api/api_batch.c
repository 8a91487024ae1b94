/*
 * api_batch.c — batches: created over the API (POST /api/batches) or by
 * an upstream system's webhook (POST /api/batch_sources/webhook[/CHANNEL]),
 * listed, shown, paused, resumed and cancelled. The migration engine
 * works them; until it exists a batch is a durable, audited request that
 * waits in state "queued".
 *
 * Store (store/SCHEMA.md):
 *	batches  u64 id                          → the batch as JSON
 *	seeds    ("seed", channel, external_id)  → u64 id   (intake dedup)
 *	seeds    ("sig", hex signature)          → u64 unix time (replays)
 *
 * Dedup: a seed with an external_id already seen on its channel answers
 * 200 with the earlier batch; one still being committed is waited for, so
 * two racing deliveries of the same seed make one batch. An empty
 * external_id always makes a new batch.
 *
 * Webhook channels (api.webhooks) may require an HMAC-SHA256 signature:
 *	X-Vnamig-Signature: t=UNIX_SECONDS,v1=HEX(HMAC(secret, "T." || body))
 * accepted while |now - t| is within the channel's replay_window, once.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include "conf/conf.h"
#include "http/http_req.h"
#include "src/api/api.h"
#include "src/api/api_seed.h"
#include "src/daemon.h"
#include "src/mig/mig.h"
#include "src/net/net.h"
#include "src/util/hex.h"
#include "src/util/hset.h"
#include "src/util/jw.h"
#include "src/util/log.h"
#include "store/audit.h"
#include "store/store.h"
#include "store/store_key.h"

enum bstate { B_QUEUED, B_RUNNING, B_PAUSED, B_CANCELLED, B_DONE, B_FAILED,
	B__N };
static const char *const bstate_names[B__N] = { "queued", "running",
	"paused", "cancelled", "done", "failed" };

/* A seed being committed, and the requests waiting on it. */
struct pending {
	struct pending	*next;
	char		*key;		/* channel \0 external_id */
	size_t		 klen;
	uint64_t	 id;
	struct api_req	*waiters;
};

/* A batch with a write in flight: who holds it (the engine, a request,
 * HL7 intake: each releases once) and the record as it will be when the
 * writes land, so a second writer builds on it instead of on the older
 * durable record (a lost update otherwise). */
struct busy {
	uint64_t	 id;
	unsigned	 holds;
	json_t		*rec;		/* NULL: not said */
};

struct api_batches {
	uint64_t	 next_id;
	uint64_t	 count[B__N];
	struct pending	*pending;
	struct busy	*busy;		/* ids with a change in flight */
	uint64_t	 next_plan;	/* plan ids handed out */
	size_t		 nbusy, capbusy;
	char		(*sigs)[65];	/* signatures of requests in flight */
	size_t		 nsigs, capsigs;
	struct jw	 jw;		/* HL7 orders' records */
	/* hashes of the patient IDs the patient index holds (a superset:
	 * nothing is taken out), so that an order for a patient never
	 * seen costs no scan; pats_ok once the index was read whole */
	struct hset	 pats;
	int		 pats_ok;
};

static struct busy *busy_find(struct api_batches *bs, uint64_t id);
static void unbusy(struct api_batches *bs, uint64_t id);


static int
state_of(const char *s)
{
	for (int i = 0; i < B__N; i++)
		if (s != NULL && strcmp(s, bstate_names[i]) == 0)
			return i;
	return -1;
}

struct api_batches *
api_batches_new(void)
{
	struct api_batches *b = calloc(1, sizeof(*b));

	if (b == NULL)
		abort();
	b->next_id = 1;
	return b;
}

void
api_batches_free_(struct api_batches *b)
{
	struct pending *p, *n;

	if (b == NULL)
		return;
	for (p = b->pending; p != NULL; p = n) {
		n = p->next;
		free(p->key);
		free(p);
	}
	for (size_t i = 0; i < b->nbusy; i++)
		json_decref(b->busy[i].rec);
	free(b->busy);
	free(b->sigs);
	jw_free(&b->jw);
	hset_free(&b->pats);
	free(b);
}

static int
count_one(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct api_batches *b = arg;
	json_t *j = json_loadb(val, vlen, 0, NULL);
	int s = state_of(json_string_value(json_object_get(j, "state")));

	if (klen == 8 && store_be64_get(key) >= b->next_id)
		b->next_id = store_be64_get(key) + 1;
	if (s >= 0)
		b->count[s]++;
	json_decref(j);
	return 0;
}

static void pats_add(struct api_batches *bs, const char *src,
    const char *pid);

static int
pat_one(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct store_kreader r;
	char tag[4], src[CONF_NAME_MAX + 1], pid[256];

	(void)val;
	(void)vlen;
	store_kreader_init(&r, key, klen);
	store_kreader_str(&r, tag, sizeof(tag));
	store_kreader_str(&r, src, sizeof(src));
	store_kreader_str(&r, pid, sizeof(pid));
	if (r.err)	/* an ID too long to hold here: not complete */
		((struct api_batches *)arg)->pats_ok = -1;
	else
		pats_add(arg, src, pid);
	return 0;
}

int
api_batches_load(struct api_batches *b, struct store *st)
{
	struct store_key k;

	memset(b->count, 0, sizeof(b->count));
	if (store_scan(st, STORE_CF_BATCHES, "", 0, count_one, b) < 0)
		return -1;
	/* the patients the index names (("pat", src, pid, id) keys) */
	store_key_init(&k);
	store_key_cstr(&k, "pat");
	b->pats_ok = 0;
	if (store_scan(st, STORE_CF_SEEDS, k.b, k.len, pat_one, b) == 0 &&
	    b->pats_ok == 0)
		b->pats_ok = 1;
	else
		b->pats_ok = 0;		/* every patient is scanned for */
	return 0;
}

json_t *
api_batches_counts(struct api_batches *b)
{
	json_t *by = json_object();
	uint64_t total = 0;

	for (int i = 0; i < B__N; i++) {
		json_object_set_new(by, bstate_names[i],
		    json_integer((json_int_t)b->count[i]));
		total += b->count[i];
	}
	return json_pack("{s:I, s:o}", "total", (json_int_t)total,
	    "by_state", by);
}

/* ---------------------------------------------------------------------- */
/* Signatures seen: dropped once older than every channel's window. */

struct expire {
	struct store		*st;
	struct store_batch	*b;
	uint64_t		 cutoff;
	size_t			 n;
};

static int
expire_one(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct expire *x = arg;

	if (vlen == 8 && store_be64_get(val) < x->cutoff) {
		if (x->b == NULL)
			x->b = store_begin(x->st);
		store_del(x->b, STORE_CF_SEEDS, key, klen);
		x->n++;
	}
	return x->n >= 10000;	/* the rest next minute */
}

void
api_batches_expire(struct api_batches *b, struct store *st,
    uint64_t max_age_ms)
{
	struct store_key k;
	struct expire x = { st, NULL, 0, 0 };
	uint64_t now = (uint64_t)time(NULL);

	(void)b;
	if (store_state(st) != STORE_OK)
		return;
	x.cutoff = now > max_age_ms / 1000 ? now - max_age_ms / 1000 : 0;
	store_key_init(&k);
	store_key_cstr(&k, "sig");
	store_scan(st, STORE_CF_SEEDS, k.b, k.len, expire_one, &x);
	if (x.b != NULL)
		store_end(x.b, NULL, NULL);
}

/* ---------------------------------------------------------------------- */
/* Reading. */

static void
id_key(uint8_t k[8], uint64_t id)
{
	store_be64_put(k, id);
}

/* The stored batch, or NULL (absent: *err 0; read error: *err 1). */
static json_t *
load_batch(struct store *st, uint64_t id, int *err)
{
	uint8_t k[8];
	void *v;
	size_t vn;
	json_t *j;
	int r;

	id_key(k, id);
	*err = 0;
	if ((r = store_get(st, STORE_CF_BATCHES, k, 8, &v, &vn)) <= 0) {
		*err = r < 0;
		return NULL;
	}
	j = json_loadb(v, vn, 0, NULL);
	free(v);
	if (j == NULL)
		*err = 1;
	return j;
}

static int
path_id(struct api_req *q, uint64_t *id)
{
	const char *s = http_match_param(&q->m, "id");
	char *end;

	*id = strtoull(s, &end, 10);
	if (*s < '1' || *s > '9' || *end != '\0' || strlen(s) > 19) {
		api_error(q, 404, "not_found", NULL, "no batch \"%s\": batches "
		    "are numbered 1, 2, ...", s);
		return -1;
	}
	return 0;
}

/* GET /api/batches/{id} and the start of the changes: the batch or an
 * answer. */
static json_t *
get_or_answer(struct api_req *q, uint64_t *id)
{
	json_t *j;
	int err;

	if (path_id(q, id) < 0)
		return NULL;
	if ((j = load_batch(api_store(q), *id, &err)) == NULL) {
		if (err)
			api_error(q, 500, "read_failed", NULL, "batch %" PRIu64
			    " could not be read: %s", *id,
			    store_error(api_store(q)));
		else
			api_error(q, 404, "not_found", NULL, "no batch %" PRIu64,
			    *id);
	}
	return j;
}

void
api_batch_get(struct api_req *q)
{
	uint64_t id;
	json_t *j = get_or_answer(q, &id), *p;

	if (j == NULL)
		return;
	/* the engine's live counts while it works the batch */
	if ((p = mig_progress(daemon_mig(q->d), id)) != NULL)
		json_object_set_new(j, "progress", p);
	api_reply(q, 200, json_pack("{s:o}", "batch", j));
}

struct list {
	struct mig	*m;
	int		 state;		/* -1: any */
	size_t		 limit;
	json_t		*arr;
	uint64_t	 last;
	int		 more;
};

static int
list_one(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct list *l = arg;
	json_t *j;

	if (klen != 8)
		return 0;
	if ((j = json_loadb(val, vlen, 0, NULL)) == NULL)
		return 0;
	if (l->state >= 0 && state_of(json_string_value(json_object_get(j,
	    "state"))) != l->state) {
		json_decref(j);
		return 0;
	}
	if (json_array_size(l->arr) == l->limit) {
		/* another one matches: there is a next page */
		json_decref(j);
		l->more = 1;
		return 1;
	}
	l->last = store_be64_get(key);
	{
		/* a batch under way: its counts as they are now */
		json_t *c = mig_counts(l->m, l->last);

		if (c != NULL)
			json_object_set_new(j, "counts", c);
	}
	json_array_append_new(l->arr, j);
	return 0;
}

void
api_batch_list(struct api_req *q)
{
	struct list l = { daemon_mig(q->d), -1, 100, NULL, 0, 0 };
	uint64_t after = 0, limit;
	uint8_t start[8];
	char st[32];
	int r;

	if ((r = api_query_u64(q, "limit", &limit)) < 0 ||
	    api_query_u64(q, "after", &after) < 0)
		return;
	if (r == 1) {
		if (limit < 1 || limit > 1000) {
			api_error(q, 400, "bad_query", json_pack("{s:s}",
			    "parameter", "limit"), "limit is 1 to 1000");
			return;
		}
		l.limit = (size_t)limit;
	}
	r = http_query_get(http_req_query(q->http), "state", st, sizeof(st));
	if (r == -2 || (r >= 0 && (l.state = state_of(st)) < 0)) {
		api_error(q, 400, "bad_query", json_pack("{s:s}", "parameter",
		    "state"), "state is one of queued, running, paused, "
		    "cancelled, done, failed");
		return;
	}
	if (after == UINT64_MAX) {
		api_reply(q, 200, json_pack("{s:[], s:n}", "batches", "next"));
		return;
	}
	l.arr = json_array();
	id_key(start, after + 1);
	if (store_scan_from(api_store(q), STORE_CF_BATCHES, "", 0, start, 8,
	    list_one, &l) < 0) {
		json_decref(l.arr);
		api_error(q, 500, "read_failed", NULL, "the batches could not "
		    "be read: %s", store_error(api_store(q)));
		return;
	}
	api_reply(q, 200, json_pack("{s:o, s:o}", "batches", l.arr, "next",
	    l.more ? json_integer((json_int_t)l.last) : json_null()));
}

/* ---------------------------------------------------------------------- */
/* Creating. */

/* api_seed_check's way to the plans: the store's. */
static json_t *
seed_plan(void *arg, uint64_t id, int *err)
{
	return api_plan_load(arg, id, err);
}

/* Validate the seed in q->body; -1 answered (422). */
static int
check_seed(struct api_req *q)
{
	struct api_seed_err e;

	if (api_seed_check(q->body, api_conf(q), seed_plan, api_store(q),
	    &e) == 0)
		return 0;
	api_error(q, 422, "invalid_field", json_pack("{s:s}", "field",
	    e.field), "%s", e.msg);
	return -1;
}

static const char *
str_or(json_t *o, const char *k, const char *def)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : def;
}

static json_t *
list_or_empty(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_array(v) ? json_deep_copy(v) : json_array();
}

/* The batch record for a checked seed (body), made by `by`. */
static json_t *
new_batch_of(json_t *b, uint64_t id, const char *channel, const char *by)
{
	json_t *pr = json_object_get(b, "priority"), *j;
	char t[32];

	api_time((int64_t)time(NULL), t);
	j = json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:b, s:s, s:s, s:s, "
	    "s:s, s:o, s:o, s:s, s:{s:i, s:i, s:i, s:i}, s:s}",
	    "id", (json_int_t)id,
	    "name", str_or(b, "batch_name", ""),
	    "state", "queued",
	    "source", str_or(b, "source", ""),
	    "target", str_or(b, "target", ""),
	    "priority", (json_int_t)(json_is_integer(pr) ?
	    json_integer_value(pr) : 5),
	    "force_full_repull", json_is_true(json_object_get(b,
	    "force_full_repull")),
	    "external_id", str_or(b, "external_id", ""),
	    "channel", channel,
	    "created", t, "updated", t,
	    "accession_numbers", list_or_empty(b, "accession_numbers"),
	    "study_instance_uids", list_or_empty(b, "study_instance_uids"),
	    "patient_id", str_or(b, "patient_id", ""),
	    "counts", "studies", 0, "instances", 0, "done", 0, "quarantined",
	    0,
	    "created_by", by);
	/* every study of the patient at the source too (HL7 pre-fetch) */
	if (json_is_true(json_object_get(b, "include_priors")))
		json_object_set_new(j, "include_priors", json_true());
	if (json_is_object(json_object_get(b, "query")))
		json_object_set(j, "query", json_object_get(b, "query"));
	if (json_is_string(json_object_get(b, "order")))
		json_object_set(j, "order", json_object_get(b, "order"));
	if (json_is_integer(json_object_get(b, "plan_id")))
		json_object_set(j, "plan_id", json_object_get(b, "plan_id"));
	/* when the order that asked for it arrived (HL7 intake), for the
	 * arrival-to-first-retrieval metric */
	if (json_is_integer(json_object_get(b, "prefetch_at_ms")))
		json_object_set(j, "prefetch_at_ms", json_object_get(b,
		    "prefetch_at_ms"));
	return j;
}

static json_t *
new_batch(struct api_req *q, uint64_t id, const char *channel)
{
	return new_batch_of(q->body, id, channel, q->who.key);
}

/* seeds ("pat", source, patient_id, u64 id) → "": a patient's batches,
 * for HL7 merges and pre-fetch without reading every batch. A patient
 * ID is one source's (its assigning authority's): the same ID at
 * another source is another patient. */
static void
pat_key(struct store_key *k, const char *src, const char *pid, uint64_t id)
{
	store_key_init(k);
	store_key_cstr(k, "pat");
	store_key_cstr(k, src);
	store_key_cstr(k, pid);
	if (id != 0)
		store_key_u64(k, id);
}

/* the hset's name of (src, pid) */
static void
pats_name(char *out, size_t n, const char *src, const char *pid)
{
	snprintf(out, n, "%s\x1f%s", src, pid);
}

static void
pats_add(struct api_batches *bs, const char *src, const char *pid)
{
	char nm[CONF_NAME_MAX + 300];

	pats_name(nm, sizeof(nm), src, pid);
	hset_add(&bs->pats, nm);
}

/* 0: patient pid of src has surely no batch in the index */
static int
pats_may(const struct api_batches *bs, const char *src, const char *pid)
{
	char nm[CONF_NAME_MAX + 300];

	pats_name(nm, sizeof(nm), src, pid);
	return !bs->pats_ok || hset_may(&bs->pats, nm);
}

static void
index_patient(struct api_batches *bs, struct store_batch *b, json_t *batch,
    uint64_t id)
{
	const char *pid = json_string_value(json_object_get(batch,
	    "patient_id")), *src = json_string_value(json_object_get(batch,
	    "source"));
	struct store_key k;

	if (pid == NULL || pid[0] == '\0')
		return;
	if (src == NULL)
		src = "";
	pat_key(&k, src, pid, id);
	store_put(b, STORE_CF_SEEDS, k.b, k.len, "", 0);
	pats_add(bs, src, pid);
}

uint64_t
api_batches_put(struct api_batches *bs, struct store_batch *b,
    json_t *seed, const char *channel, const char *by, json_t **out)
{
	uint64_t id = bs->next_id++;
	json_t *j = new_batch_of(seed, id, channel, by);
	uint8_t k[8];
	char *val = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	id_key(k, id);
	store_put(b, STORE_CF_BATCHES, k, 8, val, strlen(val));
	free(val);
	index_patient(bs, b, j, id);
	if (out != NULL)
		*out = j;
	else
		json_decref(j);
	return id;
}

/*
 * The record new_batch_of makes from an HL7 order's seed, member for
 * member and in the order jansson's JSON_SORT_KEYS writes it, without the
 * two trees (seed and record) and their dump: at 10,000 orders a second
 * those were a fifth of the reactor (contrib/bench/mllp).
 */
uint64_t
api_batches_put_order(struct api_batches *bs, struct store_batch *b,
    const struct api_order *o, const char *channel, const char *by)
{
	uint64_t id = bs->next_id++;
	struct jw *w = &bs->jw;
	struct store_key pk;
	uint8_t k[8];
	char t[32];

	api_time((int64_t)time(NULL), t);
	jw_open(w);
	jw_array(w, "accession_numbers");
	if (o->accession[0] != '\0')
		jw_item(w, o->accession);
	jw_array_end(w);
	jw_str(w, "channel", channel);
	jw_object(w, "counts");
	jw_int(w, "done", 0);
	jw_int(w, "instances", 0);
	jw_int(w, "quarantined", 0);
	jw_int(w, "studies", 0);
	jw_close(w);
	jw_str(w, "created", t);
	jw_str(w, "created_by", by);
	jw_str(w, "external_id", o->external_id);
	jw_bool(w, "force_full_repull", 0);
	jw_int(w, "id", (int64_t)id);
	if (o->include_priors)
		jw_bool(w, "include_priors", 1);
	jw_str(w, "name", "");
	jw_str(w, "patient_id", o->patient_id);
	jw_int(w, "prefetch_at_ms", o->prefetch_at_ms);
	jw_int(w, "priority", o->priority);
	jw_str(w, "source", o->source);
	jw_str(w, "state", "queued");
	jw_array(w, "study_instance_uids");
	if (o->study_uid[0] != '\0')
		jw_item(w, o->study_uid);
	jw_array_end(w);
	jw_str(w, "target", o->target);
	jw_str(w, "updated", t);
	jw_close(w);
	id_key(k, id);
	store_put(b, STORE_CF_BATCHES, k, 8, w->p, w->n);
	if (o->patient_id[0] != '\0') {
		pat_key(&pk, o->source, o->patient_id, id);
		store_put(b, STORE_CF_SEEDS, pk.b, pk.len, "", 0);
		pats_add(bs, o->source, o->patient_id);
	}
	return id;
}

uint64_t
api_batches_plan_id(struct api_batches *bs, uint64_t max)
{
	if (bs->next_plan <= max)
		bs->next_plan = max + 1;
	return bs->next_plan++;
}

void
api_batches_created(struct api_batches *bs)
{
	bs->count[B_QUEUED]++;
}

/* Batches of a patient in a given state set, for HL7 merges and
 * pre-fetch, through the patient index: calls fn with each (id, record);
 * fn may change the record (it is then written in b, and the index
 * follows a changed patient_id). Returns how many were changed, or -1 on
 * a read error. */
struct by_patient {
	struct api_batches	*bs;
	struct api_held		*held;
	struct store		*st;
	const char		*pid;
	unsigned		 states;
	struct store_batch	*b;
	int			(*fn)(void *, uint64_t, json_t *);
	void			*arg;
	int			 n, err;
};

static int
by_patient_one(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct by_patient *x = arg;
	struct busy *bz;
	uint64_t id;
	json_t *j;
	int s, e;

	(void)val;
	(void)vlen;
	if (klen < 8)
		return 0;
	id = store_be64_get((const uint8_t *)key + klen - 8);
	if ((bz = busy_find(x->bs, id)) != NULL && bz->rec != NULL)
		j = json_deep_copy(bz->rec);	/* a write of it in flight */
	else if ((j = load_batch(x->st, id, &e)) == NULL) {
		x->err |= e;
		return 0;
	}
	s = state_of(json_string_value(json_object_get(j, "state")));
	if (s >= 0 && (x->states & (1u << s)) && x->fn(x->arg, id, j)) {
		const char *now = json_string_value(json_object_get(j,
		    "patient_id"));
		char *v = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		uint8_t k[8];

		/* held until the caller's unit is durable: a writer that
		 * comes meanwhile waits (the engine) or builds on this */
		json_decref(api_batches_hold(x->bs, id));
		api_batches_pending(x->bs, id, j);
		if ((x->held->id = realloc(x->held->id, (x->held->n + 1) *
		    sizeof(*x->held->id))) == NULL)
			abort();
		x->held->id[x->held->n++] = id;

		id_key(k, id);
		store_put(x->b, STORE_CF_BATCHES, k, 8, v, strlen(v));
		free(v);
		if (now == NULL || strcmp(now, x->pid) != 0) {
			store_del(x->b, STORE_CF_SEEDS, key, klen);
			index_patient(x->bs, x->b, j, id);
		}
		x->n++;
	}
	json_decref(j);
	return 0;
}

void
api_batches_unhold(struct api_batches *bs, struct api_held *h)
{
	for (size_t i = 0; i < h->n; i++)
		unbusy(bs, h->id[i]);
	free(h->id);
	h->id = NULL;
	h->n = 0;
}

int
api_batches_of_patient(struct api_batches *bs, struct store *st,
    struct store_batch *b, const char *src, const char *pid, int not_started,
    int (*fn)(void *, uint64_t, json_t *), void *arg, struct api_held *held)
{
	struct by_patient x = { bs, held, st, pid, not_started ?
	    (1u << B_QUEUED |
	    1u << B_PAUSED) : (1u << B_RUNNING | 1u << B_DONE |
	    1u << B_FAILED), b, fn, arg, 0, 0 };
	struct store_key k;

	if (!pats_may(bs, src, pid))
		return 0;	/* never indexed: no scan */
	pat_key(&k, src, pid, 0);
	if (store_scan(st, STORE_CF_SEEDS, k.b, k.len, by_patient_one, &x) < 0
	    || x.err)
		return -1;
	return x.n;
}

static void
seed_key(struct store_key *k, const char *channel, const char *ext)
{
	store_key_init(k);
	store_key_cstr(k, "seed");
	store_key_cstr(k, channel);
	store_key_cstr(k, ext);
}

static void
sig_key(struct store_key *k, const char *sig)
{
	store_key_init(k);
	store_key_cstr(k, "sig");
	store_key_cstr(k, sig);
}

/* What a create carries to its commit. */
struct seed {
	uint64_t	 id;
	json_t		*batch;
	struct pending	*pend;		/* NULL: no external_id */
	char		 sig[65];	/* "" when unsigned */
};

static void repeat_signed(struct api_req *q, uint64_t id, char *sig);

static void
answer_repeat(struct api_req *q, uint64_t id)
{
	int err;
	json_t *j = load_batch(api_store(q), id, &err);

	if (j == NULL) {
		api_error(q, 500, "read_failed", NULL, "batch %" PRIu64 " of "
		    "this seed could not be read", id);
		return;
	}
	api_reply(q, 200, json_pack("{s:I, s:b, s:o}", "batch_id",
	    (json_int_t)id, "created", 0, "batch", j));
}

static void
created(struct api_req *q, int err)
{
	struct seed *s = q->priv;
	struct api_batches *bs = api_batches_of(q);
	struct api_req *w, *next;

	q->priv = NULL;
	if (s->pend != NULL) {
		struct pending **pp;

		for (pp = &bs->pending; *pp != s->pend; pp = &(*pp)->next)
			;
		*pp = s->pend->next;
	}
	if (err) {
		api_error(q, 503, "store_unavailable", NULL, "the batch could "
		    "not be stored: %s; send it again", store_error(
		    api_store(q)));
		for (w = s->pend ? s->pend->waiters : NULL; w; w = next) {
			next = w->next_waiter;
			free(w->priv);
			w->priv = NULL;
			api_error(w, 503, "store_unavailable", NULL, "the batch "
			    "could not be stored; send it again");
		}
	} else {
		bs->count[B_QUEUED]++;
		mig_kick(daemon_mig(q->d), s->id);
		log_info("batch-created", "id=%llu channel=%s key=%s peer=%s",
		    (unsigned long long)s->id, log_q(json_string_value(
		    json_object_get(s->batch, "channel"))), log_q(q->who.key),
		    q->peer);
		for (w = s->pend ? s->pend->waiters : NULL; w; w = next) {
			next = w->next_waiter;
			if (w->priv != NULL)
				repeat_signed(w, s->id, w->priv);
			else
				api_reply(w, 200, json_pack("{s:I, s:b, s:O}",
				    "batch_id", (json_int_t)s->id, "created",
				    0, "batch", s->batch));
		}
		{
			char loc[64];

			snprintf(loc, sizeof(loc), "Location: /api/batches/"
			    "%llu\r\n", (unsigned long long)s->id);
			api_reply_h(q, 201, json_pack("{s:I, s:b, s:O}",
			    "batch_id", (json_int_t)s->id, "created", 1,
			    "batch", s->batch), loc);
		}
	}
	if (s->pend != NULL) {
		free(s->pend->key);
		free(s->pend);
	}
	json_decref(s->batch);
	free(s);
}

/* A repeat of a durable seed: its signature (if any) is recorded before
 * the answer, so the same signed request is refused next time. */
static void
repeat_logged(struct api_req *q, int err)
{
	uint64_t *id = q->priv;
	uint64_t v = *id;

	q->priv = NULL;
	free(id);
	if (err) {
		api_error(q, 503, "store_unavailable", NULL, "the store could "
		    "not record the request: %s; send it again",
		    store_error(api_store(q)));
		return;
	}
	answer_repeat(q, v);
}

static void
put_sig(struct store_batch *b, const char *sig)
{
	struct store_key k;
	uint8_t t[8];

	if (sig[0] == '\0')
		return;
	sig_key(&k, sig);
	store_be64_put(t, (uint64_t)time(NULL));
	store_put(b, STORE_CF_SEEDS, k.b, k.len, t, 8);
}

/* A signed repeat: record the signature (and an audit leaf) durably,
 * then answer with the earlier batch. sig is freed. */
static void
repeat_signed(struct api_req *q, uint64_t id, char *sig)
{
	struct store_batch *b;
	uint64_t *pid;

	q->priv = NULL;
	if ((b = api_begin(q)) == NULL) {
		free(sig);
		return;
	}
	put_sig(b, sig);
	free(sig);
	if ((pid = malloc(sizeof(*pid))) == NULL)
		abort();
	*pid = id;
	q->priv = pid;
	api_commit(q, b, json_pack("{s:s, s:{s:I}, s:s}", "event",
	    "batch.seed.repeat", "object", "batch_id", (json_int_t)id,
	    "outcome", "ok"), repeat_logged);
}

/* Make the batch of a checked seed: dedup, then one store unit with the
 * batch, its seed key, the signature and the audit leaf. */
static void
intake(struct api_req *q, const char *channel, const char *sig)
{
	struct api_batches *bs = api_batches_of(q);
	const char *ext = str_or(q->body, "external_id", "");
	struct store_key sk;
	struct store_batch *b;
	struct seed *s;
	uint8_t ik[8];
	char *val, phi[65] = "";
	json_t *obj;

	if (ext[0] != '\0') {
		size_t cl = strlen(channel), el = strlen(ext);
		void *v;
		size_t vn;
		int r;

		for (struct pending *p = bs->pending; p; p = p->next)
			if (p->klen == cl + 1 + el &&
			    memcmp(p->key, channel, cl + 1) == 0 &&
			    memcmp(p->key + cl + 1, ext, el) == 0) {
				/* the same seed is being stored: its answer
				 * is ours (and our signature is recorded
				 * then) */
				if (sig[0] != '\0' &&
				    (q->priv = strdup(sig)) == NULL)
					abort();
				q->next_waiter = p->waiters;
				p->waiters = q;
				return;
			}
		seed_key(&sk, channel, ext);
		r = store_get(api_store(q), STORE_CF_SEEDS, sk.b, sk.len, &v,
		    &vn);
		if (r < 0) {
			api_error(q, 500, "read_failed", NULL, "the seed index "
			    "could not be read: %s", store_error(api_store(q)));
			return;
		}
		if (r == 1) {
			uint64_t id = vn == 8 ? store_be64_get(v) : 0;
			char *sc;

			free(v);
			if (sig[0] == '\0') {
				answer_repeat(q, id);
				return;
			}
			if ((sc = strdup(sig)) == NULL)
				abort();
			repeat_signed(q, id, sc);
			return;
		}
	}
	if ((b = api_begin(q)) == NULL)
		return;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		abort();
	s->id = bs->next_id++;
	snprintf(s->sig, sizeof(s->sig), "%s", sig);
	s->batch = new_batch(q, s->id, channel);
	if (ext[0] != '\0') {
		size_t cl = strlen(channel), el = strlen(ext);

		if ((s->pend = calloc(1, sizeof(*s->pend))) == NULL ||
		    (s->pend->key = malloc(cl + 1 + el)) == NULL)
			abort();
		memcpy(s->pend->key, channel, cl + 1);
		memcpy(s->pend->key + cl + 1, ext, el);
		s->pend->klen = cl + 1 + el;
		s->pend->id = s->id;
		s->pend->next = bs->pending;
		bs->pending = s->pend;
		seed_key(&sk, channel, ext);
		store_be64_put(ik, s->id);
		store_put(b, STORE_CF_SEEDS, sk.b, sk.len, ik, 8);
	}
	put_sig(b, sig);
	id_key(ik, s->id);
	val = json_dumps(s->batch, JSON_COMPACT | JSON_SORT_KEYS);
	store_put(b, STORE_CF_BATCHES, ik, 8, val, strlen(val));
	free(val);
	index_patient(bs, b, s->batch, s->id);
	if (json_string_length(json_object_get(s->batch, "patient_id")) > 0)
		audit_phi(api_audit_log(q), json_string_value(json_object_get(
		    s->batch, "patient_id")), phi);
	obj = json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:b}",
	    "batch_id", (json_int_t)s->id, "channel", channel, "external_id",
	    ext, "source", json_string_value(json_object_get(s->batch,
	    "source")), "target", json_string_value(json_object_get(s->batch,
	    "target")), "priority", json_integer_value(json_object_get(
	    s->batch, "priority")), "studies", (json_int_t)json_array_size(
	    json_object_get(s->batch, "study_instance_uids")), "accessions",
	    (json_int_t)json_array_size(json_object_get(s->batch,
	    "accession_numbers")), "force_full_repull", json_is_true(
	    json_object_get(s->batch, "force_full_repull")));
	if (phi[0] != '\0')
		json_object_set_new(obj, "patient_phi", json_string(phi));
	q->priv = s;
	api_commit(q, b, json_pack("{s:s, s:o, s:s}", "event",
	    "batch.created", "object", obj, "outcome", "ok"), created);
}

void
api_batch_create(struct api_req *q)
{
	if (check_seed(q) < 0)
		return;
	intake(q, "api", "");
}

/* ---------------------------------------------------------------------- */
/* Webhook intake: authenticate per channel, then as a create. */

static int
refuse(struct api_req *q, int status, const char *code, const char *reason,
    const char *channel, const char *msg)
{
	log_warn("webhook-refused", "channel=%s peer=%s key=%s reason=%s",
	    log_q(channel), q->peer, log_q(q->who.key), reason);
	api_audit(q, json_pack("{s:s, s:{s:s}, s:s, s:s}", "event",
	    "batch.seed.refused", "object", "channel", channel, "outcome",
	    "refused", "reason", reason));
	api_error(q, status, code, json_pack("{s:s}", "channel", channel),
	    "%s", msg);
	return -1;
}

/* t=UNIX,v1=HEX → 0 with *t and sig filled. */
static int
parse_sig(const char *h, long long *t, char sig[65])
{
	const char *p = h;
	int have_t = 0, have_v = 0;

	while (*p != '\0') {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		while (*p == ' ' && n > 0)
			p++, n--;
		if (n > 2 && strncmp(p, "t=", 2) == 0) {
			char buf[24], *e;

			if (n - 2 >= sizeof(buf))
				return -1;
			memcpy(buf, p + 2, n - 2);
			buf[n - 2] = '\0';
			*t = strtoll(buf, &e, 10);
			if (*e != '\0' || buf[0] == '\0')
				return -1;
			have_t = 1;
		} else if (n == 67 && strncmp(p, "v1=", 3) == 0) {
			for (size_t i = 0; i < 64; i++) {
				char c = p[3 + i];

				if (!((c >= '0' && c <= '9') ||
				    (c >= 'a' && c <= 'f') ||
				    (c >= 'A' && c <= 'F')))
					return -1;
				sig[i] = (char)(c >= 'A' && c <= 'F' ?
				    c - 'A' + 'a' : c);
			}
			sig[64] = '\0';
			have_v = 1;
		}
		p = end ? end + 1 : p + n;
	}
	return have_t && have_v ? 0 : -1;
}

/* A verified signature is held from its check until its request ends:
 * the same signed request arriving meanwhile is a replay, though the
 * first one's record is not durable yet. */
static void
sig_release(struct api_req *q)
{
	struct api_batches *bs = api_batches_of(q);

	for (size_t i = 0; i < bs->nsigs; i++)
		if (strcmp(bs->sigs[i], q->sig) == 0) {
			memcpy(bs->sigs[i], bs->sigs[--bs->nsigs], 65);
			break;
		}
	q->cleanup = NULL;
}

static int
sig_held(struct api_batches *bs, const char *sig)
{
	for (size_t i = 0; i < bs->nsigs; i++)
		if (strcmp(bs->sigs[i], sig) == 0)
			return 1;
	return 0;
}

static void
sig_hold(struct api_req *q, const char *sig)
{
	struct api_batches *bs = api_batches_of(q);

	if (bs->nsigs == bs->capsigs) {
		size_t cap = bs->capsigs ? 2 * bs->capsigs : 8;
		char (*v)[65] = realloc(bs->sigs, cap * sizeof(*v));

		if (v == NULL)
			abort();
		bs->sigs = v;
		bs->capsigs = cap;
	}
	memcpy(bs->sigs[bs->nsigs++], sig, 65);
	memcpy(q->sig, sig, 65);
	q->cleanup = sig_release;
}

static int
check_hmac(struct api_req *q, const struct conf_webhook *w,
    const char *channel, char sig[65])
{
	const char *h = http_req_header(q->http, "X-Vnamig-Signature");
	long long t = 0;
	long long now = (long long)time(NULL);
	uint8_t mac[32];
	size_t ml = sizeof(mac);
	char want[65], ts[24], msg[160], dg[] = "SHA256";
	EVP_MAC *m;
	EVP_MAC_CTX *mc;
	OSSL_PARAM pr[2];
	struct store_key k;
	void *v;
	size_t vn;
	int r;

	if (h == NULL)
		return refuse(q, 401, "signature_required", "no signature",
		    channel, "this channel requires X-Vnamig-Signature: "
		    "t=UNIX_SECONDS,v1=HEX(HMAC-SHA256(secret, \"T.\" + body))");
	if (parse_sig(h, &t, sig) < 0)
		return refuse(q, 401, "bad_signature", "malformed signature",
		    channel, "X-Vnamig-Signature must read "
		    "t=UNIX_SECONDS,v1=64 hex digits");
	if (t < now - (long long)(w->replay_ms / 1000) ||
	    t > now + (long long)(w->replay_ms / 1000)) {
		snprintf(msg, sizeof(msg), "the signature's time %lld is more "
		    "than %llu s from ours (%lld): sign each delivery anew", t,
		    (unsigned long long)(w->replay_ms / 1000), now);
		return refuse(q, 401, "signature_expired", "signature outside "
		    "the replay window", channel, msg);
	}
	snprintf(ts, sizeof(ts), "%lld.", t);
	pr[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, dg, 0);
	pr[1] = OSSL_PARAM_construct_end();
	if ((m = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (mc = EVP_MAC_CTX_new(m)) == NULL ||
	    !EVP_MAC_init(mc, (const uint8_t *)w->hmac_secret, w->hmac_len,
	    pr) || !EVP_MAC_update(mc, (const uint8_t *)ts, strlen(ts)) ||
	    !EVP_MAC_update(mc, (const uint8_t *)q->raw, q->rawlen) ||
	    !EVP_MAC_final(mc, mac, &ml, sizeof(mac)))
		abort();
	EVP_MAC_CTX_free(mc);
	EVP_MAC_free(m);
	hex_encode(mac, 32, want);
	if (CRYPTO_memcmp(want, sig, 64) != 0)
		return refuse(q, 401, "bad_signature", "signature mismatch",
		    channel, "the signature does not match the body; sign "
		    "\"T.\" followed by the exact body bytes with the "
		    "channel's secret");
	sig_key(&k, sig);
	r = sig_held(api_batches_of(q), sig) ? 1 :
	    store_get(api_store(q), STORE_CF_SEEDS, k.b, k.len, &v, &vn);
	if (r == 1) {
		if (!sig_held(api_batches_of(q), sig))
			free(v);
		return refuse(q, 401, "signature_replayed", "signature seen "
		    "before", channel, "this signed request was accepted "
		    "before; a retry must be signed anew (a new t=)");
	}
	if (r < 0) {
		api_error(q, 500, "read_failed", NULL, "the signature index "
		    "could not be read: %s", store_error(api_store(q)));
		return -1;
	}
	sig_hold(q, sig);
	return 0;
}

void
api_batch_webhook(struct api_req *q)
{
	const struct conf *cf = api_conf(q);
	const char *channel = http_match_param(&q->m, "channel");
	const struct conf_webhook *w;
	static char dname[] = "default";
	static const struct conf_webhook dflt = { .channel = dname };
	char sig[65] = "";
	json_error_t je;

	if (channel == NULL)
		channel = "default";
	if ((w = conf_webhook(cf, channel)) == NULL) {
		if (strcmp(channel, "default") != 0) {
			api_error(q, 404, "not_found", NULL, "no webhook "
			    "channel \"%s\" (api.webhooks)", channel);
			return;
		}
		w = &dflt;
	}
	if (w->nallow > 0) {
		uint8_t addr[16];
		int fam = q->conn ? net_conn_addr(q->conn, addr) : 0, ok = 0;

		for (size_t i = 0; i < w->nallow; i++)
			ok |= conf_cidr_match(&w->allow[i], fam, addr);
		if (!ok) {
			refuse(q, 403, "address_not_allowed", "address",
			    channel, "this address may not deliver to this "
			    "channel (api.webhooks allow)");
			return;
		}
	}
	if (!w->anonymous) {
		if (!q->who.authed) {
			refuse(q, 401, "unauthorized", "no key", channel,
			    "send Authorization: Bearer <api key> (operator "
			    "role); the channel is not anonymous");
			return;
		}
		if (q->who.role < CONF_API_OPERATOR) {
			refuse(q, 403, "forbidden", "role", channel,
			    "webhook intake needs a key with the operator "
			    "role");
			return;
		}
	}
	if (w->hmac_secret != NULL && check_hmac(q, w, channel, sig) < 0)
		return;
	/* the body, parsed only once it is authenticated */
	q->body = json_loadb(q->raw, q->rawlen, JSON_REJECT_DUPLICATES, &je);
	if (q->body == NULL || !json_is_object(q->body)) {
		api_error(q, 400, "bad_json", q->body ? NULL : json_pack(
		    "{s:i, s:i, s:i}", "line", je.line, "column", je.column,
		    "position", je.position), q->body ? "the body must be a "
		    "JSON object" : "the body is not valid JSON: line %d, "
		    "column %d: %s", je.line, je.column, je.text);
		return;
	}
	if (check_seed(q) < 0)
		return;
	intake(q, channel, sig);
}

/* ---------------------------------------------------------------------- */
/* Pause, resume, cancel. */

struct change {
	uint64_t	 id;
	int		 from, to;
	json_t		*batch;
};

static struct busy *
busy_find(struct api_batches *bs, uint64_t id)
{
	for (size_t i = 0; i < bs->nbusy; i++)
		if (bs->busy[i].id == id)
			return &bs->busy[i];
	return NULL;
}

static struct busy *
busy_add(struct api_batches *bs, uint64_t id)
{
	if (bs->nbusy == bs->capbusy) {
		size_t cap = bs->capbusy ? 2 * bs->capbusy : 8;
		struct busy *v = realloc(bs->busy, cap * sizeof(*v));

		if (v == NULL)
			abort();
		bs->busy = v;
		bs->capbusy = cap;
	}
	bs->busy[bs->nbusy].id = id;
	bs->busy[bs->nbusy].holds = 1;
	bs->busy[bs->nbusy].rec = NULL;
	return &bs->busy[bs->nbusy++];
}

static void
unbusy(struct api_batches *bs, uint64_t id)
{
	struct busy *e = busy_find(bs, id);

	if (e == NULL || --e->holds > 0)
		return;
	json_decref(e->rec);
	*e = bs->busy[--bs->nbusy];
}

int
api_batches_claim(struct api_batches *bs, uint64_t id)
{
	if (busy_find(bs, id) != NULL)
		return 0;
	busy_add(bs, id);
	return 1;
}

void
api_batches_pending(struct api_batches *bs, uint64_t id, json_t *rec)
{
	struct busy *e = busy_find(bs, id);

	if (e == NULL)
		return;
	json_decref(e->rec);
	e->rec = json_deep_copy(rec);
}

json_t *
api_batches_hold(struct api_batches *bs, uint64_t id)
{
	struct busy *e = busy_find(bs, id);

	if (e == NULL) {
		busy_add(bs, id);
		return NULL;
	}
	e->holds++;
	return e->rec != NULL ? json_deep_copy(e->rec) : NULL;
}

void
api_batches_release(struct api_batches *bs, uint64_t id, int changed,
    const char *from, const char *to)
{
	int f, t;

	unbusy(bs, id);
	if (!changed || from == NULL || to == NULL ||
	    (f = state_of(from)) < 0 || (t = state_of(to)) < 0 || f == t)
		return;
	if (bs->count[f] > 0)
		bs->count[f]--;
	bs->count[t]++;
}

static void
changed(struct api_req *q, int err)
{
	struct change *c = q->priv;
	struct api_batches *bs = api_batches_of(q);

	q->priv = NULL;
	unbusy(bs, c->id);
	if (err)
		api_error(q, 503, "store_unavailable", NULL, "the change could "
		    "not be stored: %s; batch %llu is still %s",
		    store_error(api_store(q)), (unsigned long long)c->id,
		    bstate_names[c->from]);
	else {
		bs->count[c->from]--;
		bs->count[c->to]++;
		mig_kick(daemon_mig(q->d), c->id);
		if (c->to == B_PAUSED) {
			char label[32];

			/* the state at the pause, to come back to */
			snprintf(label, sizeof(label), "batch-%llu",
			    (unsigned long long)c->id);
			api_pause_checkpoint(q, label);
		}
		log_info("batch-state", "id=%llu from=%s to=%s key=%s",
		    (unsigned long long)c->id, bstate_names[c->from],
		    bstate_names[c->to], log_q(q->who.key));
		api_reply(q, 200, json_pack("{s:O}", "batch", c->batch));
	}
	json_decref(c->batch);
	free(c);
}

static void
transition(struct api_req *q, const char *verb, int to, unsigned from_ok)
{
	struct api_batches *bs = api_batches_of(q);
	struct store_batch *b;
	struct change *c;
	uint64_t id;
	uint8_t k[8];
	json_t *j = get_or_answer(q, &id), *reason;
	char t[32], *val, ev[48];
	int from;

	if (j == NULL)
		return;
	from = state_of(json_string_value(json_object_get(j, "state")));
	if (!api_batches_claim(bs, id)) {
		json_decref(j);
		api_error(q, 409, "busy", NULL, "batch %llu is being "
		    "changed by another request; try again",
		    (unsigned long long)id);
		return;
	}
	if (from < 0 || !(from_ok & (1u << from))) {
		unbusy(bs, id);
		api_error(q, 409, "invalid_transition", json_pack("{s:s}",
		    "state", from < 0 ? "?" : bstate_names[from]), "batch %llu "
		    "is %s; it cannot be %s", (unsigned long long)id,
		    from < 0 ? "in an unknown state" : bstate_names[from],
		    verb);
		json_decref(j);
		return;
	}
	if ((b = api_begin(q)) == NULL) {
		unbusy(bs, id);
		json_decref(j);
		return;
	}
	api_time((int64_t)time(NULL), t);
	json_object_set_new(j, "state", json_string(bstate_names[to]));
	json_object_set_new(j, "updated", json_string(t));
	if (to == B_CANCELLED)	/* the engine ends its studies, then it */
		json_object_set_new(j, "ending", json_true());
	reason = json_object_get(q->body, "reason");
	if (json_is_string(reason))
		json_object_set(j, "reason", reason);
	else
		json_object_del(j, "reason");	/* the last one's is stale */
	val = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	id_key(k, id);
	store_put(b, STORE_CF_BATCHES, k, 8, val, strlen(val));
	free(val);
	api_batches_pending(bs, id, j);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		abort();
	c->id = id;
	c->from = from;
	c->to = to;
	c->batch = j;
	q->priv = c;
	snprintf(ev, sizeof(ev), "batch.%s", strcmp(verb, "paused") == 0 ?
	    "pause" : strcmp(verb, "resumed") == 0 ? "resume" : "cancel");
	api_commit(q, b, json_pack("{s:s, s:{s:I, s:s, s:s}, s:s}", "event",
	    ev, "object", "batch_id", (json_int_t)id, "from",
	    bstate_names[from], "to", bstate_names[to], "outcome", "ok"),
	    changed);
}

void
api_batch_pause(struct api_req *q)
{
	transition(q, "paused", B_PAUSED, 1u << B_QUEUED | 1u << B_RUNNING);
}

void
api_batch_resume(struct api_req *q)
{
	transition(q, "resumed", B_QUEUED, 1u << B_PAUSED);
}

void
api_batch_cancel(struct api_req *q)
{
	transition(q, "cancelled", B_CANCELLED, 1u << B_QUEUED |
	    1u << B_RUNNING | 1u << B_PAUSED);
}
