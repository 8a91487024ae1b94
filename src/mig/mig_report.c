/*
 * mig_report.c — reading what the migration engine wrote: a batch's
 * verification report (every instance's outcome, every study's, and the
 * reconciliation that says whether they add up), the same as CSV, and
 * the quarantine. Reads only; the engine (mig.c) is the only writer of
 * these rows (mig.h lists their keys, store/SCHEMA.md their values).
 *
 * The report is built whole in memory. A batch of a million instances
 * makes a JSON array of a million objects (a few hundred MB) and a scan
 * that holds the loop while it runs; acceptable for the batches seen so
 * far, but the report should become a stream (api_reply_stream over a
 * store iterator) before batches that large are common.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "src/mig/mig.h"
#include "store/store.h"
#include "store/store_key.h"

/* An instance's outcome in the report, from its state. */
enum outcome { O_MIGRATED, O_SKIPPED, O_QUARANTINED, O_FAILED, O_PENDING,
	O__N };
static const char *const outcome_names[O__N] = { "migrated",
	"skipped_present", "quarantined", "failed", "pending" };

/* mig.h's study states, each counted in the summary even when 0, so that
 * a client sees the same members whatever the batch is doing. */
static const char *const study_states[] = { "queued", "querying",
	"preflight", "retrieving", "sending", "verifying", "done",
	"quarantined", "failed", "cancelled" };
#define NSTUDY_STATES	(sizeof(study_states) / sizeof(study_states[0]))

/*
 * The outcome of an instance row. "sent" is final only when the target
 * is not asked (verify: none, level "status"): otherwise the instance
 * still waits for the C-FIND that verifies it. Unknown states are
 * pending: they are not migrated until the engine says so.
 */
static enum outcome
outcome_of(const char *state, const char *level)
{
	if (state == NULL)
		return O_PENDING;
	if (strcmp(state, "verified") == 0)
		return O_MIGRATED;
	if (strcmp(state, "sent") == 0 && level != NULL &&
	    strcmp(level, "status") == 0)
		return O_MIGRATED;
	if (strcmp(state, "present") == 0)
		return O_SKIPPED;
	if (strcmp(state, "quarantined") == 0)
		return O_QUARANTINED;
	if (strcmp(state, "failed") == 0)
		return O_FAILED;
	return O_PENDING;	/* expected, received, sent awaiting verify */
}

/* o[k] (a new reference), or null when absent. */
static json_t *
member(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return v != NULL ? json_incref(v) : json_null();
}

/* A non-negative integer member, or 0. */
static uint64_t
count_of(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) && json_integer_value(v) > 0 ?
	    (uint64_t)json_integer_value(v) : 0;
}

static void
bump(json_t *counts, const char *name)
{
	json_int_t n = json_integer_value(json_object_get(counts, name));

	json_object_set_new(counts, name, json_integer(n + 1));
}

/* ---------------------------------------------------------------------- */
/* The report. */

struct report {
	uint64_t	 batch;
	json_t		*studies;	/* the report's arrays */
	json_t		*instances;
	json_t		*by_state;	/* study state → count */
	json_t		*by_reason;	/* quarantine reason → count */
	uint64_t	 expected;	/* Σ counts.expected of the studies */
	uint64_t	 n[O__N];
	uint64_t	 nstudies;
	char		*err;
	size_t		 cap;
	int		 bad;		/* a row did not parse: err says */
};

static int
report_study(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct report *r = arg;
	struct store_kreader kr;
	char kind[8], uid[STORE_KEY_MAX];
	json_t *j, *counts, *sc, *row;
	uint64_t expected;
	const char *state;

	store_kreader_init(&kr, key, klen);
	store_kreader_str(&kr, kind, sizeof(kind));
	store_kreader_u64(&kr);
	store_kreader_str(&kr, uid, sizeof(uid));
	j = json_loadb(val, vlen, 0, NULL);
	if (!store_kreader_done(&kr) || !json_is_object(j)) {
		snprintf(r->err, r->cap, "batch %" PRIu64 ": a study row (%s) "
		    "is damaged: its %s does not parse", r->batch,
		    kr.err ? "unreadable key" : uid, kr.err ? "key" : "value");
		json_decref(j);
		r->bad = 1;
		return 1;
	}
	counts = json_object_get(j, "counts");
	expected = count_of(counts, "expected");
	sc = json_object_get(j, "source_count");
	state = json_string_value(json_object_get(j, "state"));

	row = json_object();
	json_object_set_new(row, "study_uid", json_string(uid));
	json_object_set_new(row, "accession_number", member(j,
	    "accession_number"));
	json_object_set_new(row, "state", member(j, "state"));
	json_object_set_new(row, "reason", member(j, "reason"));
	json_object_set_new(row, "attempts", member(j, "attempts"));
	json_object_set_new(row, "expected", json_integer((json_int_t)
	    expected));
	json_object_set_new(row, "source_count", json_is_integer(sc) ?
	    json_incref(sc) : json_null());
	/* the source's own count (NumberOfStudyRelatedInstances) against
	 * the instances its IMAGE-level C-FIND listed: a source that
	 * under-reports its C-FIND would otherwise go unnoticed */
	json_object_set_new(row, "source_count_mismatch", json_boolean(
	    json_is_integer(sc) && (json_integer_value(sc) < 0 ||
	    (uint64_t)json_integer_value(sc) != expected)));
	json_object_set_new(row, "counts", json_is_object(counts) ?
	    json_incref(counts) : json_object());
	json_object_set_new(row, "updated", member(j, "updated"));
	json_array_append_new(r->studies, row);

	r->nstudies++;
	r->expected += expected;
	bump(r->by_state, state != NULL ? state : "unknown");
	json_decref(j);
	return 0;
}

static int
report_instance(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct report *r = arg;
	struct store_kreader kr;
	char study[STORE_KEY_MAX], sop[STORE_KEY_MAX];
	json_t *j, *row, *reason;
	enum outcome o;

	store_kreader_init(&kr, key, klen);
	store_kreader_u64(&kr);
	store_kreader_str(&kr, study, sizeof(study));
	store_kreader_str(&kr, sop, sizeof(sop));
	j = json_loadb(val, vlen, 0, NULL);
	if (!store_kreader_done(&kr) || !json_is_object(j)) {
		snprintf(r->err, r->cap, "batch %" PRIu64 ": an instance row "
		    "(%s%s%s) is damaged: its %s does not parse", r->batch,
		    kr.err ? "unreadable key" : study, kr.err ? "" : " / ",
		    kr.err ? "" : sop, kr.err ? "key" : "value");
		json_decref(j);
		r->bad = 1;
		return 1;
	}
	o = outcome_of(json_string_value(json_object_get(j, "state")),
	    json_string_value(json_object_get(j, "level")));

	row = json_object();
	json_object_set_new(row, "study_uid", json_string(study));
	json_object_set_new(row, "series_uid", member(j, "series_uid"));
	json_object_set_new(row, "sop_instance_uid", json_string(sop));
	json_object_set_new(row, "sop_class_uid", member(j, "sop_class_uid"));
	json_object_set_new(row, "source_sha256", member(j, "source_sha256"));
	json_object_set_new(row, "sent_sha256", member(j, "sent_sha256"));
	json_object_set_new(row, "target_sha256", member(j, "target_sha256"));
	json_object_set_new(row, "level", member(j, "level"));
	json_object_set_new(row, "time", member(j, "time"));
	/* the edits applied on the way (the HL7 merge crosswalk) */
	json_object_set_new(row, "transforms", json_is_array(json_object_get(j,
	    "transforms")) ? member(j, "transforms") : json_array());
	json_object_set_new(row, "outcome", json_string(outcome_names[o]));
	json_object_set_new(row, "status", member(j, "status"));
	json_object_set_new(row, "reason", member(j, "reason"));
	/* retries of the send, and the quarantine item to act on */
	json_object_set_new(row, "attempts", member(j, "attempts"));
	/* a push source sent it again with other bytes: sent again */
	if (json_is_true(json_object_get(j, "pushed_again")))
		json_object_set_new(row, "pushed_again", json_true());
	json_object_set_new(row, "quarantine_id", member(j, "quarantine_id"));
	/* an operator released it: sent as it is, untransformed */
	if (json_is_object(json_object_get(j, "release")))
		json_object_set_new(row, "release", member(j, "release"));
	/* the target's storage commitment report named it committed */
	json_object_set_new(row, "committed", json_boolean(json_is_true(
	    json_object_get(j, "committed"))));
	json_object_set_new(row, "detail", member(j, "detail"));
	json_array_append_new(r->instances, row);

	r->n[o]++;
	if (o == O_QUARANTINED) {
		reason = json_object_get(j, "reason");
		bump(r->by_reason, json_is_string(reason) ?
		    json_string_value(reason) : "unknown");
	}
	json_decref(j);
	return 0;
}

static json_t *
summary(struct report *r, json_t *unresolved)
{
	uint64_t accounted = 0;
	double pct;
	json_t *s;

	for (int i = 0; i < O__N; i++)
		accounted += r->n[i];
	/*
	 * Every expected instance has exactly one row and every row exactly
	 * one outcome, so this is always 100: E comes from the studies'
	 * counts.expected and the outcomes from the instance rows, two
	 * records the engine writes in the same unit. Anything else (a row
	 * lost or duplicated, a count not updated) is a bug worth seeing,
	 * so the figure is computed, not assumed. With nothing expected
	 * (no study resolved yet) there is nothing to account for.
	 */
	pct = r->expected == 0 ? 100.0 :
	    (double)accounted * 100.0 / (double)r->expected;
	s = json_object();
	json_object_set_new(s, "expected", json_integer((json_int_t)
	    r->expected));
	for (int i = 0; i < O__N; i++)
		json_object_set_new(s, outcome_names[i],
		    json_integer((json_int_t)r->n[i]));
	json_object_set_new(s, "quarantined_by_reason",
	    json_incref(r->by_reason));
	json_object_set_new(s, "accounted_percent", json_real(pct));
	json_object_set_new(r->by_state, "total", json_integer((json_int_t)
	    r->nstudies));
	json_object_set_new(s, "studies", json_incref(r->by_state));
	json_object_set_new(s, "unresolved", json_integer((json_int_t)
	    json_array_size(unresolved)));
	return s;
}

json_t *
mig_report(struct store *st, uint64_t id, json_t *rec, char *err,
    size_t cap)
{
	struct report r;
	struct store_key k;
	json_t *unresolved, *out = NULL;

	memset(&r, 0, sizeof(r));
	r.batch = id;
	r.err = err;
	r.cap = cap;
	r.studies = json_array();
	r.instances = json_array();
	r.by_state = json_object();
	r.by_reason = json_object();
	for (size_t i = 0; i < NSTUDY_STATES; i++)
		json_object_set_new(r.by_state, study_states[i],
		    json_integer(0));

	store_key_init(&k);
	store_key_cstr(&k, "st");
	store_key_u64(&k, id);
	if (store_scan(st, STORE_CF_STUDIES, k.b, k.len, report_study,
	    &r) < 0) {
		snprintf(err, cap, "batch %" PRIu64 ": reading its studies "
		    "failed: %s", id, store_error(st));
		goto done;
	}
	if (r.bad)
		goto done;
	store_key_init(&k);
	store_key_u64(&k, id);
	if (store_scan(st, STORE_CF_INSTANCES, k.b, k.len, report_instance,
	    &r) < 0) {
		snprintf(err, cap, "batch %" PRIu64 ": reading its instances "
		    "failed: %s", id, store_error(st));
		goto done;
	}
	if (r.bad)
		goto done;

	unresolved = json_object_get(rec, "unresolved");
	unresolved = json_is_array(unresolved) ? json_incref(unresolved) :
	    json_array();
	out = json_object();
	json_object_set(out, "batch", rec);
	json_object_set_new(out, "summary", summary(&r, unresolved));
	json_object_set(out, "studies", r.studies);
	json_object_set(out, "instances", r.instances);
	json_object_set_new(out, "unresolved", unresolved);
 done:
	json_decref(r.studies);
	json_decref(r.instances);
	json_decref(r.by_state);
	json_decref(r.by_reason);
	return out;
}

/* ---------------------------------------------------------------------- */
/* CSV (RFC 4180). */

struct buf {
	char	*p;
	size_t	 n, cap;
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	if (n > SIZE_MAX - 1 - b->n)
		abort();
	if (b->n + n + 1 > b->cap) {
		size_t c = b->cap ? b->cap : 4096;
		char *p;

		while (c < b->n + n + 1)
			c = c > SIZE_MAX / 2 ? SIZE_MAX : c * 2;
		if ((p = realloc(b->p, c)) == NULL)
			abort();
		b->p = p;
		b->cap = c;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

/* One field: quoted when it holds a comma, a quote, CR or LF (quotes
 * doubled), else as it is. */
static void
csv_text(struct buf *b, const char *s)
{
	const char *q;

	if (strpbrk(s, ",\"\r\n") == NULL) {
		buf_add(b, s, strlen(s));
		return;
	}
	buf_add(b, "\"", 1);
	while ((q = strchr(s, '"')) != NULL) {
		buf_add(b, s, (size_t)(q - s) + 1);
		buf_add(b, "\"", 1);
		s = q + 1;
	}
	buf_add(b, s, strlen(s));
	buf_add(b, "\"", 1);
}

/* A JSON value as a field: null and absent are empty; the DIMSE status
 * in the 0xHHHH form the standard and DICOM logs use (0xA700). */
static void
csv_value(struct buf *b, json_t *v, int status)
{
	char num[32], *t;

	if (v == NULL || json_is_null(v))
		return;
	if (json_is_string(v)) {
		csv_text(b, json_string_value(v));
		return;
	}
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		if (status && i >= 0 && i <= 0xffff)
			snprintf(num, sizeof(num), "0x%04X", (unsigned)i);
		else
			snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, i);
		buf_add(b, num, strlen(num));
		return;
	}
	if ((t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
		abort();
	csv_text(b, t);
	free(t);
}

static const char *const csv_cols[] = { "study_uid", "series_uid",
	"sop_instance_uid", "sop_class_uid", "source_sha256", "sent_sha256",
	"target_sha256", "level", "time", "outcome", "status", "reason",
	"detail" };
#define NCSV_COLS	(sizeof(csv_cols) / sizeof(csv_cols[0]))

char *
mig_report_csv(json_t *report, size_t *len)
{
	json_t *rows = json_object_get(report, "instances"), *row;
	struct buf b = { NULL, 0, 0 };
	size_t i, c;

	for (c = 0; c < NCSV_COLS; c++) {
		if (c > 0)
			buf_add(&b, ",", 1);
		buf_add(&b, csv_cols[c], strlen(csv_cols[c]));
	}
	buf_add(&b, "\r\n", 2);
	json_array_foreach(rows, i, row) {
		for (c = 0; c < NCSV_COLS; c++) {
			if (c > 0)
				buf_add(&b, ",", 1);
			csv_value(&b, json_object_get(row, csv_cols[c]),
			    strcmp(csv_cols[c], "status") == 0);
		}
		buf_add(&b, "\r\n", 2);
	}
	*len = b.n;
	return b.p;
}

/* ---------------------------------------------------------------------- */
/* The quarantine. */

static void
q_key(struct store_key *k, int with_id, uint64_t id)
{
	store_key_init(k);
	store_key_cstr(k, "q");
	if (with_id)
		store_key_u64(k, id);
}

/*
 * The store scans forward only, and the items are keyed by increasing
 * id, so the newest `limit` matches below `before` are found by reading
 * every item from the oldest up to `before` and keeping the last
 * limit + 1 matches in a ring (the one more says whether there is a next
 * page). O(items below before) per page: fine while the quarantine holds
 * thousands; a reverse iterator in store.c is the fix when it holds
 * millions.
 */
struct qlist {
	const char	*reason;
	uint64_t	 batch, before;
	json_t		**ring;
	uint64_t	*ids;
	size_t		 size;		/* limit + 1 */
	size_t		 n;		/* matches seen */
	char		*err;
	size_t		 cap;
	int		 bad;
};

static int
qlist_one(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct qlist *l = arg;
	struct store_kreader kr;
	char kind[8];
	uint64_t id;
	json_t *j, *reason, *batch;
	size_t slot;

	store_kreader_init(&kr, key, klen);
	store_kreader_str(&kr, kind, sizeof(kind));
	id = store_kreader_u64(&kr);
	if (!store_kreader_done(&kr))
		return 0;	/* not an item's key: some other "q" record */
	if (l->before != 0 && id >= l->before)
		return 1;	/* ascending: nothing further is older */
	j = json_loadb(val, vlen, 0, NULL);
	if (!json_is_object(j)) {
		snprintf(l->err, l->cap, "quarantine item %" PRIu64 " is "
		    "damaged: its value does not parse", id);
		json_decref(j);
		l->bad = 1;
		return 1;
	}
	reason = json_object_get(j, "reason");
	batch = json_object_get(j, "batch");
	if ((l->reason != NULL && (!json_is_string(reason) ||
	    strcmp(json_string_value(reason), l->reason) != 0)) ||
	    (l->batch != 0 && (!json_is_integer(batch) ||
	    (uint64_t)json_integer_value(batch) != l->batch))) {
		json_decref(j);
		return 0;
	}
	slot = l->n % l->size;
	json_decref(l->ring[slot]);
	l->ring[slot] = j;
	l->ids[slot] = id;
	l->n++;
	return 0;
}

json_t *
mig_quarantine_list(struct store *st, const char *reason, uint64_t batch,
    uint64_t before, size_t limit, char *err, size_t cap)
{
	struct qlist l;
	struct store_key k;
	json_t *items, *out = NULL;
	size_t i, take;
	uint64_t last = 0;

	if (limit == 0)
		return json_pack("{s:[], s:n}", "items", "next");
	if (limit > SIZE_MAX / sizeof(json_t *) - 1)
		limit = SIZE_MAX / sizeof(json_t *) - 1;
	memset(&l, 0, sizeof(l));
	l.reason = reason;
	l.batch = batch;
	l.before = before;
	l.size = limit + 1;
	l.err = err;
	l.cap = cap;
	if ((l.ring = calloc(l.size, sizeof(*l.ring))) == NULL ||
	    (l.ids = calloc(l.size, sizeof(*l.ids))) == NULL)
		abort();
	q_key(&k, 0, 0);
	if (store_scan(st, STORE_CF_STUDIES, k.b, k.len, qlist_one, &l) < 0) {
		snprintf(err, cap, "reading the quarantine failed: %s",
		    store_error(st));
		goto done;
	}
	if (l.bad)
		goto done;

	/* newest first: back from the last match */
	items = json_array();
	take = l.n < limit ? l.n : limit;
	for (i = 0; i < take; i++) {
		size_t slot = (l.n - 1 - i) % l.size;

		json_array_append(items, l.ring[slot]);
		last = l.ids[slot];
	}
	out = json_pack("{s:o, s:o}", "items", items, "next", l.n > limit ?
	    json_integer((json_int_t)last) : json_null());
 done:
	for (i = 0; i < l.size; i++)
		json_decref(l.ring[i]);
	free(l.ring);
	free(l.ids);
	return out;
}

int
mig_quarantine_get(struct store *st, uint64_t id, json_t **out)
{
	struct store_key k;
	void *v;
	size_t vn;
	int r;

	*out = NULL;
	q_key(&k, 1, id);
	if ((r = store_get(st, STORE_CF_STUDIES, k.b, k.len, &v, &vn)) <= 0)
		return r;
	*out = json_loadb(v, vn, 0, NULL);
	free(v);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return -1;
	}
	return 1;
}
