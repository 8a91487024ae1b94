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

#include <jansson.h>

#include "http/http_req.h"
#include "src/api/api.h"
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
