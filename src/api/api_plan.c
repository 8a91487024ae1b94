/*
 * api_plan.c — plans: a named migration (one source, one target) that
 * batches join (POST /api/batches {"plan_id"}), with the defaults they
 * take (source, target, priority, order), and one switch for all of
 * them: pause and resume (no new step of its batches starts; steps under
 * way finish; a named checkpoint "pause-plan-N-…" once durable) and
 * cancel (the migration engine cancels each of its batches that has not
 * ended, and no batch joins it any more).
 *
 * Store: meta ("plan", u64 id) → the plan record (JSON).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "conf/conf.h"
#include "http/http_req.h"
#include "src/api/api.h"
#include "src/daemon.h"
#include "src/mig/mig.h"
#include "src/util/log.h"
#include "store/store.h"
#include "store/store_key.h"

static void
plan_key(struct store_key *k, uint64_t id)
{
	store_key_init(k);
	store_key_cstr(k, "plan");
	if (id != 0)
		store_key_u64(k, id);
}

json_t *
api_plan_load(struct store *st, uint64_t id, int *err)
{
	struct store_key k;
	void *v;
	size_t vn;
	json_t *j;
	int r;

	*err = 0;
	plan_key(&k, id);
	if ((r = store_get(st, STORE_CF_META, k.b, k.len, &v, &vn)) != 1) {
		*err = r < 0;
		return NULL;
	}
	j = json_loadb(v, vn, 0, NULL);
	free(v);
	*err = j == NULL;
	return j;
}

struct scan {
	json_t		*list;
	uint64_t	 max;
};

static int
plan_one(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct scan *x = arg;
	json_t *j = json_loadb(val, vlen, 0, NULL);
	uint64_t id;

	if (klen < 8)
		return 0;
	id = store_be64_get((const uint8_t *)key + klen - 8);
	if (id > x->max)
		x->max = id;
	if (j != NULL && x->list != NULL)
		json_array_append(x->list, j);
	json_decref(j);
	return 0;
}

/* Every plan (list non-NULL), and the highest id. -1 on a read error. */
static int
plan_scan(struct store *st, json_t *list, uint64_t *max)
{
	struct scan x = { list, 0 };
	struct store_key k;

	plan_key(&k, 0);
	if (store_scan(st, STORE_CF_META, k.b, k.len, plan_one, &x) < 0)
		return -1;
	*max = x.max;
	return 0;
}

/* Every plan's batches, counted by state, with their ids: one pass over
 * the batches for all the plans listed. "plan id" -> {by_state, ids}. */
static int
count_one(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	json_t *all = arg, *e;
	json_t *j = json_loadb(val, vlen, 0, NULL);
	const char *st;
	char k[24];

	(void)key;
	(void)klen;
	if (j != NULL && json_integer_value(json_object_get(j, "plan_id")) >
	    0 && (st = json_string_value(json_object_get(j, "state"))) !=
	    NULL) {
		snprintf(k, sizeof(k), "%lld", (long long)json_integer_value(
		    json_object_get(j, "plan_id")));
		if ((e = json_object_get(all, k)) == NULL) {
			e = json_pack("{s:o, s:o}", "by_state", json_object(),
			    "ids", json_array());
			json_object_set_new(all, k, e);
		}
		json_object_set_new(json_object_get(e, "by_state"), st,
		    json_integer(json_integer_value(json_object_get(
		    json_object_get(e, "by_state"), st)) + 1));
		json_array_append(json_object_get(e, "ids"), json_object_get(j,
		    "id"));
	}
	json_decref(j);
	return 0;
}

static json_t *
all_batches(struct api_req *q)
{
	json_t *all = json_object();

	if (store_scan(api_store(q), STORE_CF_BATCHES, "", 0, count_one,
	    all) < 0) {
		json_decref(all);
		return NULL;
	}
	return all;
}

/* plan with its "batches" from all (as all_batches made it; NULL: the
 * batches could not be read, and the plan goes without) */
static json_t *
with_batches(json_t *plan, json_t *all)
{
	char k[24];
	json_t *e;

	if (all == NULL)
		return plan;
	snprintf(k, sizeof(k), "%lld", (long long)json_integer_value(
	    json_object_get(plan, "id")));
	e = json_object_get(all, k);
	json_object_set_new(plan, "batches", e != NULL ? json_incref(e) :
	    json_pack("{s:o, s:o}", "by_state", json_object(), "ids",
	    json_array()));
	return plan;
}

static json_t *
with_own_batches(struct api_req *q, json_t *plan)
{
	json_t *all = all_batches(q);

	with_batches(plan, all);
	json_decref(all);
	return plan;
}

static int
path_plan(struct api_req *q, uint64_t *id)
{
	const char *s = http_match_param(&q->m, "id");
	char *end = NULL;

	/* digits only, no sign, space or leading zero ("-18446744073709551615"
	 * and " 1" were plan 1) */
	*id = s ? strtoull(s, &end, 10) : 0;
	if (s == NULL || *s < '1' || *s > '9' || *end != '\0' ||
	    strlen(s) > 19) {
		api_error(q, 404, "not_found", NULL, "no plan \"%.32s\": plans "
		    "are numbered 1, 2, ...", s ? s : "");
		return -1;
	}
	return 0;
}

/* Plans with a change on its way to the store: the next change is
 * checked against what is durable, so two at once both passed (a cancel
 * overwritten by a pause, the plan then resumed). */
static uint64_t *changing;
static size_t nchanging, capchanging;

static int
plan_claim(uint64_t id)
{
	for (size_t i = 0; i < nchanging; i++)
		if (changing[i] == id)
			return 0;
	if (nchanging == capchanging) {
		size_t cap = capchanging ? 2 * capchanging : 16;
		uint64_t *v = reallocarray(changing, cap, sizeof(*v));

		if (v == NULL)
			abort();
		changing = v;
		capchanging = cap;
	}
	changing[nchanging++] = id;
	return 1;
}

static void
plan_unclaim(uint64_t id)
{
	for (size_t i = 0; i < nchanging; i++)
		if (changing[i] == id) {
			changing[i] = changing[--nchanging];
			return;
		}
}

static json_t *
plan_or_answer(struct api_req *q, uint64_t *id)
{
	json_t *j;
	int err;

	if (path_plan(q, id) < 0)
		return NULL;
	if ((j = api_plan_load(api_store(q), *id, &err)) == NULL) {
		if (err)
			api_error(q, 500, "read_failed", NULL, "plan %" PRIu64
			    " could not be read: %s", *id, store_error(
			    api_store(q)));
		else
			api_error(q, 404, "not_found", NULL, "no plan %" PRIu64,
			    *id);
	}
	return j;
}

static int
bad(struct api_req *q, const char *field, const char *msg)
{
	api_error(q, 422, "invalid_field", json_pack("{s:s}", "field", field),
	    "%s", msg);
	return -1;
}

static int
check_plan(struct api_req *q)
{
	static const char *const fields[] = { "name", "source", "target",
		"priority", "order", "description", NULL };
	const struct conf *c = api_conf(q);
	const struct conf_peer *p;
	const char *k, *s;
	json_t *v;

	json_object_foreach(q->body, k, v) {
		int known = 0;

		for (size_t i = 0; fields[i]; i++)
			known |= strcmp(k, fields[i]) == 0;
		if (!known)
			return bad(q, k, "unknown field; a plan takes name, "
			    "source, target, priority, order, description");
	}
	s = json_string_value(json_object_get(q->body, "name"));
	if (s == NULL || s[0] == '\0' || strlen(s) > 128)
		return bad(q, "name", "name must be a string of 1-128 "
		    "characters");
	s = json_string_value(json_object_get(q->body, "source"));
	if (s == NULL || (p = conf_peer_by_name(c, s)) == NULL ||
	    !(p->role & CONF_ROLE_SOURCE))
		return bad(q, "source", "source must name a configured peer "
		    "with role source or both");
	s = json_string_value(json_object_get(q->body, "target"));
	if (s == NULL || (p = conf_peer_by_name(c, s)) == NULL ||
	    !(p->role & CONF_ROLE_TARGET))
		return bad(q, "target", "target must name a configured peer "
		    "with role target or both, or an export");
	if ((v = json_object_get(q->body, "priority")) != NULL &&
	    !json_is_null(v) && (!json_is_integer(v) ||
	    json_integer_value(v) < 0 || json_integer_value(v) > 9))
		return bad(q, "priority", "priority must be an integer from 0 "
		    "to 9 (higher first)");
	if ((v = json_object_get(q->body, "order")) != NULL &&
	    !json_is_null(v) && (!json_is_string(v) || (strcmp(
	    json_string_value(v), "oldest_first") != 0 && strcmp(
	    json_string_value(v), "newest_first") != 0)))
		return bad(q, "order", "order must be oldest_first or "
		    "newest_first");
	if ((v = json_object_get(q->body, "description")) != NULL &&
	    !json_is_null(v) && (!json_is_string(v) ||
	    json_string_length(v) > 1024))
		return bad(q, "description", "description must be a string of "
		    "at most 1024 characters");
	return 0;
}

/* A change being made durable: the record as it will be. */
struct change {
	uint64_t	 id;
	json_t		*rec;
	int		 created;
	char		 from[16];
};

static void
changed(struct api_req *q, int err)
{
	struct change *c = q->priv;
	const char *st = json_string_value(json_object_get(c->rec, "state"));

	q->priv = NULL;
	if (!c->created)
		plan_unclaim(c->id);
	if (err)
		api_error(q, 503, "store_unavailable", NULL, "the plan could "
		    "not be stored: %s; nothing changed", store_error(
		    api_store(q)));
	else {
		mig_plan_apply(daemon_mig(q->d), c->id, st);
		if (strcmp(st, "paused") == 0) {
			char label[32];

			snprintf(label, sizeof(label), "plan-%" PRIu64, c->id);
			api_pause_checkpoint(q, label);
		}
		log_info(c->created ? "plan-created" : "plan-changed",
		    "id=%" PRIu64 " state=%s key=%s", c->id, st,
		    log_q(q->who.key));
		api_reply(q, c->created ? 201 : 200, json_pack("{s:o}", "plan",
		    with_own_batches(q, json_incref(c->rec))));
	}
	json_decref(c->rec);
	free(c);
}

static void
put_plan(struct store_batch *b, uint64_t id, json_t *rec)
{
	struct store_key k;
	char *v = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);

	plan_key(&k, id);
	store_put(b, STORE_CF_META, k.b, k.len, v, strlen(v));
	free(v);
}

void
api_plan_create(struct api_req *q)
{
	struct store_batch *b;
	struct change *c;
	uint64_t max;
	json_t *v;
	char t[32];

	if (check_plan(q) < 0)
		return;
	if (plan_scan(api_store(q), NULL, &max) < 0) {
		api_error(q, 500, "read_failed", NULL, "the plans could not be "
		    "read: %s", store_error(api_store(q)));
		return;
	}
	if ((b = api_begin(q)) == NULL)
		return;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		abort();
	/* ids only grow, also across plans being stored right now */
	c->id = api_batches_plan_id(api_batches(daemon_api(q->d)), max);
	c->created = 1;
	api_time((int64_t)time(NULL), t);
	v = json_object_get(q->body, "priority");
	c->rec = json_pack("{s:I, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, "
	    "s:s}", "id", (json_int_t)c->id, "name", json_string_value(
	    json_object_get(q->body, "name")), "source", json_string_value(
	    json_object_get(q->body, "source")), "target", json_string_value(
	    json_object_get(q->body, "target")), "priority",
	    (json_int_t)(json_is_integer(v) ? json_integer_value(v) : 5),
	    "order", json_is_string(json_object_get(q->body, "order")) ?
	    json_string_value(json_object_get(q->body, "order")) :
	    api_conf(q)->migration.newest_first ? "newest_first" :
	    "oldest_first", "state", "active", "created", t, "updated", t,
	    "created_by", q->who.key);
	if (json_is_string(json_object_get(q->body, "description")))
		json_object_set(c->rec, "description", json_object_get(q->body,
		    "description"));
	put_plan(b, c->id, c->rec);
	q->priv = c;
	api_commit(q, b, json_pack("{s:s, s:{s:I, s:s, s:s, s:s}, s:s}",
	    "event", "plan.created", "object", "plan_id", (json_int_t)c->id,
	    "name", json_string_value(json_object_get(c->rec, "name")),
	    "source", json_string_value(json_object_get(c->rec, "source")),
	    "target", json_string_value(json_object_get(c->rec, "target")),
	    "outcome", "ok"), changed);
}

void
api_plan_list(struct api_req *q)
{
	json_t *list = json_array(), *p, *all;
	uint64_t max;
	size_t i;

	if (plan_scan(api_store(q), list, &max) < 0) {
		json_decref(list);
		api_error(q, 500, "read_failed", NULL, "the plans could not be "
		    "read: %s", store_error(api_store(q)));
		return;
	}
	all = all_batches(q);
	json_array_foreach(list, i, p)
		with_batches(p, all);
	json_decref(all);
	api_reply(q, 200, json_pack("{s:o}", "plans", list));
}

void
api_plan_get(struct api_req *q)
{
	uint64_t id;
	json_t *j = plan_or_answer(q, &id);

	if (j != NULL)
		api_reply(q, 200, json_pack("{s:o}", "plan",
		    with_own_batches(q, j)));
}

static void
transition(struct api_req *q, const char *to, const char *verb,
    const char *event)
{
	uint64_t id;
	json_t *j = plan_or_answer(q, &id), *reason;
	const char *from;
	struct store_batch *b;
	struct change *c;
	char t[32];

	if (j == NULL)
		return;
	from = json_string_value(json_object_get(j, "state")) ?: "";
	reason = json_object_get(q->body, "reason");
	if (reason != NULL && !json_is_null(reason) && (!json_is_string(
	    reason) || json_string_length(reason) > 1024)) {
		json_decref(j);
		bad(q, "reason", "reason must be a string of at most 1024 "
		    "characters");
		return;
	}
	if (strcmp(from, "cancelled") == 0 || strcmp(from, to) == 0 ||
	    (strcmp(to, "active") == 0 && strcmp(from, "paused") != 0)) {
		api_error(q, 409, "invalid_transition", json_pack("{s:s}",
		    "state", from), "plan %" PRIu64 " is %s; it cannot be %s",
		    id, from, verb);
		json_decref(j);
		return;
	}
	if (!plan_claim(id)) {
		api_error(q, 409, "busy", json_pack("{s:s}", "state", from),
		    "plan %" PRIu64 " is being changed by another request; "
		    "retry", id);
		json_decref(j);
		return;
	}
	if ((b = api_begin(q)) == NULL) {
		plan_unclaim(id);
		json_decref(j);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		abort();
	c->id = id;
	snprintf(c->from, sizeof(c->from), "%s", from);
	api_time((int64_t)time(NULL), t);
	json_object_set_new(j, "state", json_string(to));
	json_object_set_new(j, "updated", json_string(t));
	if (json_is_string(reason))
		json_object_set(j, "reason", reason);
	else
		json_object_del(j, "reason");
	c->rec = j;
	put_plan(b, id, j);
	q->priv = c;
	api_commit(q, b, json_pack("{s:s, s:{s:I, s:s, s:s}, s:s}", "event",
	    event, "object", "plan_id", (json_int_t)id, "from", c->from, "to",
	    to, "outcome", "ok"), changed);
}

void
api_plan_pause(struct api_req *q)
{
	transition(q, "paused", "paused", "plan.pause");
}

void
api_plan_resume(struct api_req *q)
{
	transition(q, "active", "resumed", "plan.resume");
}

void
api_plan_cancel(struct api_req *q)
{
	transition(q, "cancelled", "cancelled", "plan.cancel");
}
