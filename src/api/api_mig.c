/*
 * api_mig.c — what the migration engine wrote, over HTTP: a batch's
 * verification report (GET /api/batches/{id}/report, JSON or CSV) and
 * the quarantine (GET /api/quarantine, GET /api/quarantine/{id}). Reads
 * only, not audited; the rows are mig_report.c's to interpret.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "http/http_req.h"
#include "src/api/api.h"
#include "src/daemon.h"
#include "src/mig/mig.h"
#include "store/store.h"
#include "store/store_key.h"

/* The {id} of the path as a positive decimal without leading zeros, or
 * 404 answered (WHAT names the resource: "batch"). */
static int
path_id(struct api_req *q, const char *what, uint64_t *id)
{
	const char *s = http_match_param(&q->m, "id");
	char *end;

	*id = strtoull(s, &end, 10);
	if (*s < '1' || *s > '9' || *end != '\0' || strlen(s) > 19) {
		api_error(q, 404, "not_found", NULL, "no %s \"%s\": they are "
		    "numbered 1, 2, ...", what, s);
		return -1;
	}
	return 0;
}

/* The batch of the path, or NULL with 404 or 500 answered (the same
 * answers as GET /api/batches/{id}). */
static json_t *
batch_or_answer(struct api_req *q, uint64_t *id)
{
	uint8_t k[8];
	void *v;
	size_t vn;
	json_t *j = NULL;
	int r;

	if (path_id(q, "batch", id) < 0)
		return NULL;
	store_be64_put(k, *id);
	r = store_get(api_store(q), STORE_CF_BATCHES, k, 8, &v, &vn);
	if (r == 0) {
		api_error(q, 404, "not_found", NULL, "no batch %" PRIu64, *id);
		return NULL;
	}
	if (r > 0) {
		j = json_loadb(v, vn, 0, NULL);
		free(v);
	}
	if (j == NULL)
		api_error(q, 500, "read_failed", NULL, "batch %" PRIu64
		    " could not be read: %s", *id, r < 0 ?
		    store_error(api_store(q)) : "its record does not parse");
	return j;
}

/*
 * GET /api/batches/{id}/report[?format=json|csv]. The report is built
 * whole on the loop (mig_report.c says why that is acceptable for now).
 */
void
api_batch_report(struct api_req *q)
{
	char fmt[8], err[512];
	uint64_t id;
	json_t *rec, *rep;
	char *csv;
	size_t len;
	int r, as_csv;

	r = http_query_get(http_req_query(q->http), "format", fmt,
	    sizeof(fmt));
	if (r != -1 && (r < 0 || (strcmp(fmt, "json") != 0 &&
	    strcmp(fmt, "csv") != 0))) {
		api_error(q, 400, "bad_query", json_pack("{s:s}", "parameter",
		    "format"), "format is json (the default) or csv");
		return;
	}
	as_csv = r >= 0 && strcmp(fmt, "csv") == 0;
	if ((rec = batch_or_answer(q, &id)) == NULL)
		return;
	rep = mig_report(api_store(q), id, rec, err, sizeof(err));
	json_decref(rec);
	if (rep == NULL) {
		api_error(q, 500, "read_failed", NULL, "the report of batch %"
		    PRIu64 " could not be made: %s", id, err);
		return;
	}
	if (!as_csv) {
		api_reply(q, 200, rep);
		return;
	}
	csv = mig_report_csv(rep, &len);
	json_decref(rep);
	api_reply_text(q, 200, "text/csv; charset=utf-8; header=present",
	    csv, len);
	free(csv);
}

/* GET /api/quarantine[?reason=&batch=&before=&limit=] */
void
api_quarantine(struct api_req *q)
{
	uint64_t batch = 0, before = 0, limit = 100;
	char reason[65], err[512];
	json_t *list;
	int rb, rf, rl, rr;

	if ((rl = api_query_u64(q, "limit", &limit)) < 0 ||
	    (rb = api_query_u64(q, "batch", &batch)) < 0 ||
	    (rf = api_query_u64(q, "before", &before)) < 0)
		return;
	if (rl == 1 && (limit < 1 || limit > 1000)) {
		api_error(q, 400, "bad_query", json_pack("{s:s}", "parameter",
		    "limit"), "limit is 1 to 1000");
		return;
	}
	if (rb == 1 && batch == 0) {
		api_error(q, 400, "bad_query", json_pack("{s:s}", "parameter",
		    "batch"), "batch is a batch id: 1, 2, ...");
		return;
	}
	rr = http_query_get(http_req_query(q->http), "reason", reason,
	    sizeof(reason));
	if (rr == -2 || rr == 0) {
		api_error(q, 400, "bad_query", json_pack("{s:s}", "parameter",
		    "reason"), "reason is a quarantine reason such as "
		    "target_rejected (1 to 64 characters)");
		return;
	}
	/* mig_quarantine_list takes before 0 for "from the newest"; here it
	 * is a bound, and no item is older than 0 */
	if (rf == 1 && before == 0) {
		api_reply(q, 200, json_pack("{s:[], s:n}", "items", "next"));
		return;
	}
	list = mig_quarantine_list(api_store(q), rr > 0 ? reason : NULL,
	    batch, before, (size_t)limit, err, sizeof(err));
	if (list == NULL) {
		api_error(q, 500, "read_failed", NULL, "%s", err);
		return;
	}
	api_reply(q, 200, list);
}

/* GET /api/quarantine/{id} */
void
api_quarantine_get(struct api_req *q)
{
	uint64_t id;
	json_t *item;
	int r;

	if (path_id(q, "quarantine item", &id) < 0)
		return;
	r = mig_quarantine_get(api_store(q), id, &item);
	if (r == 0)
		api_error(q, 404, "not_found", NULL, "no quarantine item %"
		    PRIu64, id);
	else if (r < 0)
		api_error(q, 500, "read_failed", NULL, "quarantine item %"
		    PRIu64 " could not be read: %s", id,
		    *store_error(api_store(q)) ? store_error(api_store(q)) :
		    "its record does not parse");
	else
		api_reply(q, 200, json_pack("{s:o}", "item", item));
}

/* ---------------------------------------------------------------------- */
/* Acting on an item: POST /api/quarantine/{id}/{retry|release|reject}.
 * Each is one durable, audited unit: the item's new state with who did
 * it (adjudicated), and for a retry the instance and study rows put back
 * into the pipeline and the batch running again. A release is a retry
 * whose instance then goes as it is, untransformed (transform_error
 * items only). */

struct qact {
	json_t		*item;
	uint64_t	 batch;
	char		 from[16];	/* the batch's state before a retry */
	int		 retried;
	int		 held;		/* the batch is claimed */
};

static void
acted(struct api_req *q, int err)
{
	struct qact *a = q->priv;

	q->priv = NULL;
	/* the batch's state changed only when it was done (running again) */
	if (a->held)
		api_batches_release(api_batches_of(q), a->batch, !err,
		    a->from, strcmp(a->from, "done") == 0 ? "running" :
		    a->from);
	if (err)
		api_error(q, 503, "store_unavailable", NULL, "the change could "
		    "not be stored: %s; the item is still open",
		    store_error(api_store(q)));
	else {
		mig_quarantine_closed(daemon_mig(q->d), a->item, a->retried);
		api_reply(q, 200, json_pack("{s:O}", "item", a->item));
	}
	json_decref(a->item);
	free(a);
}

static void
act(struct api_req *q, const char *verb)
{
	struct store_batch *b;
	struct store_key k;
	struct qact *a;
	uint64_t id;
	json_t *item, *note = json_object_get(q->body, "note"), *rec = NULL;
	uint8_t bk[8];
	const char *state, *reason;
	char t[32], err[256], ev[32];
	int r, again = strcmp(verb, "reject") != 0;	/* retry, release */

	if (note != NULL && (!json_is_string(note) ||
	    json_string_length(note) > 1024)) {
		api_error(q, 422, "invalid_field", json_pack("{s:s}", "field",
		    "note"), "note must be a string of at most 1024 "
		    "characters");
		return;
	}
	if (path_id(q, "quarantine item", &id) < 0)
		return;
	if ((r = mig_quarantine_get(api_store(q), id, &item)) <= 0) {
		if (r == 0)
			api_error(q, 404, "not_found", NULL, "no quarantine "
			    "item %" PRIu64, id);
		else
			api_error(q, 500, "read_failed", NULL, "quarantine "
			    "item %" PRIu64 " could not be read", id);
		return;
	}
	state = json_string_value(json_object_get(item, "state"));
	if (state == NULL || strcmp(state, "open") != 0) {
		api_error(q, 409, "invalid_transition", json_pack("{s:s}",
		    "state", state ? state : "?"), "quarantine item %" PRIu64
		    " is %s, not open: it was adjudicated already", id,
		    state ? state : "in an unknown state");
		json_decref(item);
		return;
	}
	reason = json_string_value(json_object_get(item, "reason")) ?: "";
	if (strcmp(verb, "release") == 0 && strcmp(reason, "transform_error") !=
	    0) {
		/* release sends as it is what a transform held back: the
		 * other reasons hold nothing that could go as it is */
		api_error(q, 409, "invalid_transition", json_pack("{s:s}",
		    "reason", reason), "quarantine item %" PRIu64 " (%s) holds "
		    "nothing to send as it is (release sends, untransformed, "
		    "an instance whose transform failed: transform_error); "
		    "use retry to fetch and send it again, or reject to close "
		    "it", id, reason[0] ? reason : "?");
		json_decref(item);
		return;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL)
		abort();
	a->item = item;
	a->batch = (uint64_t)json_integer_value(json_object_get(item,
	    "batch"));
	/* Every action claims the item's batch until it is durable: the
	 * item reads "open" until then, and a second action meanwhile (two
	 * operators, a client's repeat) was taken too (each audited, the
	 * last write winning over what the others were told). */
	if (!api_batches_claim(api_batches_of(q), a->batch)) {
		api_error(q, 409, "busy", NULL, "batch %" PRIu64 " is being "
		    "changed (an action on one of its items, or on it, is "
		    "being stored); try again", a->batch);
		goto fail;
	}
	a->held = 1;
	if (again) {
		void *v;
		size_t vn;

		store_be64_put(bk, a->batch);
		if (store_get(api_store(q), STORE_CF_BATCHES, bk, 8, &v, &vn) !=
		    1 || (rec = json_loadb(v, vn, 0, NULL)) == NULL) {
			api_error(q, 500, "read_failed", NULL, "batch %" PRIu64
			    " could not be read", a->batch);
			goto fail;
		}
		free(v);
		snprintf(a->from, sizeof(a->from), "%s", json_string_value(
		    json_object_get(rec, "state")) ?: "");
		if (strcmp(a->from, "cancelled") == 0) {
			api_error(q, 409, "invalid_transition", NULL, "batch %"
			    PRIu64 " was cancelled; its items can only be "
			    "rejected", a->batch);
			goto fail;
		}
	}
	if ((b = api_begin(q)) == NULL)
		goto fail;
	if (rec != NULL) {
		if (mig_quarantine_retry(daemon_mig(q->d), b, item,
		    strcmp(verb, "release") == 0 ? q->who.key : NULL, err,
		    sizeof(err)) < 0) {
			store_end(b, NULL, NULL);	/* empty: it failed
							 * before writing */
			api_error(q, 409, "busy", NULL, "%s", err);
			goto fail;
		}
		a->retried = 1;
		if (strcmp(a->from, "done") == 0) {
			char *s;

			/* the batch runs again for the retried instance */
			json_object_set_new(rec, "state", json_string(
			    "running"));
			json_object_del(rec, "finished");
			s = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
			store_put(b, STORE_CF_BATCHES, bk, 8, s, strlen(s));
			free(s);
		}
	}
	api_time((int64_t)time(NULL), t);
	json_object_set_new(item, "state", json_string(strcmp(verb, "retry") ==
	    0 ? "retried" : strcmp(verb, "release") == 0 ? "released" :
	    "rejected"));
	json_object_set_new(item, "adjudicated", json_pack("{s:s, s:s, s:s}",
	    "by", q->who.key, "time", t, "note", note ? json_string_value(note) :
	    ""));
	store_key_init(&k);
	store_key_cstr(&k, "q");
	store_key_u64(&k, id);
	{
		char *s = json_dumps(item, JSON_COMPACT | JSON_SORT_KEYS);

		store_put(b, STORE_CF_STUDIES, k.b, k.len, s, strlen(s));
		free(s);
	}
	json_decref(rec);
	q->priv = a;
	snprintf(ev, sizeof(ev), "quarantine.%s", verb);
	api_commit(q, b, json_pack("{s:s, s:{s:I, s:I, s:O, s:O, s:O}, s:s}",
	    "event", ev, "object", "id", (json_int_t)id, "batch_id",
	    (json_int_t)a->batch, "study_uid", json_object_get(item,
	    "study_uid"), "sop_instance_uid", json_object_get(item,
	    "sop_instance_uid"), "reason", json_object_get(item, "reason"),
	    "outcome", "ok"), acted);
	return;
fail:
	if (a->held)
		api_batches_release(api_batches_of(q), a->batch, 0, NULL, NULL);
	json_decref(rec);
	json_decref(a->item);
	free(a);
}

void
api_quarantine_retry(struct api_req *q)
{
	act(q, "retry");
}

void
api_quarantine_release(struct api_req *q)
{
	act(q, "release");
}

void
api_quarantine_reject(struct api_req *q)
{
	act(q, "reject");
}
