/*
 * api_seed.c — the seed of a batch (POST /api/batches and webhook
 * intake, both through api_batch.c) checked against the configuration:
 * which fields, of which types and ranges, naming which peers. Pure: a
 * JSON object and a conf in, a verdict out, so that t/fuzz/fuzz_seed.c
 * runs exactly what the handlers run.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "conf/conf.h"
#include "src/api/api_seed.h"
#include "src/util/jw.h"

/* A DICOM UID: 1-64 characters, digits and dots, components without
 * leading zeros, not starting or ending with a dot. */
static int
uid_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return 0;
			continue;
		}
		if (s[i] < '0' || s[i] > '9')
			return 0;
		if (s[i] == '0' && (i == 0 || s[i - 1] == '.') &&
		    i + 1 < n && s[i + 1] != '.')
			return 0;
	}
	return 1;
}

/* Text for a DICOM string value: no control characters, no backslash. */
static int
text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == '\\' || s[i] == 0x7f)
			return 0;
	return 1;
}

static const char *const fields[] = { "external_id", "batch_name",
	"source", "target", "accession_numbers", "study_instance_uids",
	"patient_id", "priority", "force_full_repull", "include_priors",
	"query", "order", "plan_id", NULL };

/* A check under way. */
struct ck {
	json_t			*seed;
	const struct conf	*cf;
	struct api_seed_err	*e;
};

static int
bad(struct ck *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
bad(struct ck *c, const char *field, const char *fmt, ...)
{
	va_list ap;

	c->e->field = field;
	va_start(ap, fmt);
	vsnprintf(c->e->msg, sizeof(c->e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* How much of s a "%.*s" may show: at most 64 bytes, and no part of a
 * character (the message goes out in JSON, which takes UTF-8 only). */
static int
cut64(const char *s)
{
	return (int)jw_utf8_cut(s, 64);
}

/* Check a string array field; 0 with *n its size. */
static int
check_list(struct ck *c, const char *name, int uids, size_t *n)
{
	json_t *v = json_object_get(c->seed, name), *e;
	size_t i;
	char where[96];

	*n = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return bad(c, name, "%s must be an array of strings", name);
	json_array_foreach(v, i, e) {
		const char *s = json_string_value(e);

		snprintf(where, sizeof(where), "%s[%zu]", name, i);
		if (s == NULL)
			return bad(c, name, "%s is not a string", where);
		if (uids ? !uid_ok(s) : !text_ok(s, 64))
			return bad(c, name, uids ? "%s is not a DICOM UID "
			    "(digits and dots, at most 64)" : "%s must be 1-64 "
			    "characters without control characters or "
			    "backslashes", where);
	}
	*n = json_array_size(v);
	return 0;
}

static int
check_peer(struct ck *c, const char *field, int role)
{
	const char *name = json_string_value(json_object_get(c->seed, field));
	const struct conf_peer *p;

	if (name == NULL)
		return bad(c, field, "%s is required: the name of a configured "
		    "peer", field);
	if ((p = conf_peer_by_name(c->cf, name)) == NULL) {
		char msg[160];

		snprintf(msg, sizeof(msg), "%s: no peer named \"%.*s\" in the "
		    "configuration", field, cut64(name), name);
		return bad(c, field, "%s", msg);
	}
	if (!(p->role & role)) {
		char msg[200];

		snprintf(msg, sizeof(msg), "%s: peer \"%.64s\" has role %s; it "
		    "cannot be a %s", field, name, conf_role_name(p->role),
		    field);
		return bad(c, field, "%s", msg);
	}
	return 0;
}

/* A DICOM date range as C-FIND matches it: YYYYMMDD, YYYYMMDD-,
 * -YYYYMMDD or YYYYMMDD-YYYYMMDD. */
static int
date_range_ok(const char *s)
{
	size_t n = strlen(s), d = 0;
	const char *dash = strchr(s, '-');

	for (size_t i = 0; i < n; i++)
		if (s[i] >= '0' && s[i] <= '9')
			d++;
		else if (s[i] != '-')
			return 0;
	if (dash == NULL)
		return n == 8;
	if (strchr(dash + 1, '-') != NULL)
		return 0;
	return (dash - s == 0 || dash - s == 8) && (strlen(dash + 1) == 0 ||
	    strlen(dash + 1) == 8) && d >= 8;
}

/* check_query: {"study_date": range, "modality": code, "patient_id"},
 * at least one. */
static int
check_query(struct ck *c, json_t *v)
{
	const char *k;
	json_t *x;
	int n = 0;

	if (!json_is_object(v))
		return bad(c, "query", "%s", "query must be an object with "
		    "study_date, modality and/or patient_id");
	json_object_foreach(v, k, x) {
		if (strcmp(k, "study_date") == 0) {
			if (!json_is_string(x) || !date_range_ok(
			    json_string_value(x)))
				return bad(c, "query.study_date", "%s",
				    "query.study_date must be YYYYMMDD or a "
				    "range YYYYMMDD-YYYYMMDD (either end may "
				    "be left out)");
		} else if (strcmp(k, "modality") == 0) {
			const char *m = json_string_value(x);

			if (m == NULL || strlen(m) < 1 || strlen(m) > 16 ||
			    strspn(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
			    strlen(m))
				return bad(c, "query.modality", "%s",
				    "query.modality must be a DICOM modality "
				    "code such as CT or MR");
		} else if (strcmp(k, "patient_id") == 0) {
			if (!json_is_string(x) || json_string_length(x) == 0 ||
			    !text_ok(json_string_value(x), 64))
				return bad(c, "query.patient_id", "%s",
				    "query.patient_id must be 1-64 characters "
				    "without control characters or backslashes");
		} else
			return bad(c, "query", "unknown member \"%.*s\"; a "
			    "query takes study_date, modality, patient_id",
			    cut64(k), k);
		n++;
	}
	if (n == 0)
		return bad(c, "query", "%s", "query names nothing: give "
		    "study_date, modality and/or patient_id");
	return 0;
}

int
api_seed_check(json_t *seed, const struct conf *cf, api_seed_plan_fn *plan,
    void *arg, struct api_seed_err *e)
{
	struct ck ck = { seed, cf, e }, *c = &ck;
	const char *k;
	json_t *v;
	size_t na, nu;

	json_object_foreach(c->seed, k, v) {
		int known = 0;

		for (size_t i = 0; fields[i]; i++)
			known |= strcmp(k, fields[i]) == 0;
		if (!known)
			return bad(c, k, "unknown field \"%.*s\"; a batch takes "
			    "external_id, batch_name, source, target, "
			    "accession_numbers, study_instance_uids, "
			    "patient_id, priority, force_full_repull, "
			    "include_priors, query, order, plan_id", cut64(k),
			    k);
	}
	if ((v = json_object_get(c->seed, "plan_id")) != NULL &&
	    !json_is_null(v)) {
		/* a plan's batch: its source, target, priority and order
		 * unless the request says otherwise */
		static const char *const inherit[] = { "source", "target",
			"priority", "order", NULL };
		json_t *p;
		int err;

		if (!json_is_integer(v) || json_integer_value(v) < 1)
			return bad(c, "plan_id", "%s", "plan_id must be the id "
			    "of a plan (POST /api/plans)");
		err = 0;
		if (plan == NULL || (p = plan(arg, (uint64_t)
		    json_integer_value(v), &err)) == NULL)
			return bad(c, "plan_id", "%s", err ? "the plan could "
			    "not be read" : "no such plan");
		if (strcmp(json_string_value(json_object_get(p, "state")) ?:
		    "", "cancelled") == 0) {
			json_decref(p);
			return bad(c, "plan_id", "%s", "the plan was cancelled: "
			    "no batch joins it any more");
		}
		for (size_t i = 0; inherit[i]; i++)
			if (json_is_null(json_object_get(c->seed, inherit[i])) ||
			    json_object_get(c->seed, inherit[i]) == NULL)
				json_object_set(c->seed, inherit[i],
				    json_object_get(p, inherit[i]));
		json_decref(p);
	}
	if (check_peer(c, "source", CONF_ROLE_SOURCE) < 0 ||
	    check_peer(c, "target", CONF_ROLE_TARGET) < 0)
		return -1;
	if ((v = json_object_get(c->seed, "external_id")) != NULL &&
	    !json_is_null(v) && (!json_is_string(v) ||
	    strlen(json_string_value(v)) > 256))
		return bad(c, "external_id", "%s must be a string of at most "
		    "256 characters", "external_id");
	if ((v = json_object_get(c->seed, "batch_name")) != NULL &&
	    !json_is_null(v) && (!json_is_string(v) ||
	    strlen(json_string_value(v)) > 256))
		return bad(c, "batch_name", "%s must be a string of at most "
		    "256 characters", "batch_name");
	if ((v = json_object_get(c->seed, "patient_id")) != NULL &&
	    !json_is_null(v) && (!json_is_string(v) ||
	    (json_string_length(v) > 0 && !text_ok(json_string_value(v), 64))))
		return bad(c, "patient_id", "%s must be 1-64 characters without "
		    "control characters or backslashes", "patient_id");
	if ((v = json_object_get(c->seed, "priority")) != NULL &&
	    !json_is_null(v) && (!json_is_integer(v) ||
	    json_integer_value(v) < 0 || json_integer_value(v) > 9))
		return bad(c, "priority", "%s must be an integer from 0 to 9 "
		    "(higher first)", "priority");
	if ((v = json_object_get(c->seed, "force_full_repull")) != NULL &&
	    !json_is_null(v) && !json_is_boolean(v))
		return bad(c, "force_full_repull", "%s must be true or false",
		    "force_full_repull");
	if ((v = json_object_get(c->seed, "include_priors")) != NULL &&
	    !json_is_null(v) && !json_is_boolean(v))
		return bad(c, "include_priors", "%s must be true or false",
		    "include_priors");
	if (json_is_true(v) && json_string_length(json_object_get(c->seed,
	    "patient_id")) == 0)
		return bad(c, "include_priors", "%s", "include_priors needs "
		    "patient_id: the priors are that patient's other studies "
		    "at the source");
	if (check_list(c, "accession_numbers", 0, &na) < 0 ||
	    check_list(c, "study_instance_uids", 1, &nu) < 0)
		return -1;
	if ((v = json_object_get(c->seed, "query")) != NULL &&
	    !json_is_null(v) && check_query(c, v) < 0)
		return -1;
	if ((v = json_object_get(c->seed, "order")) != NULL &&
	    !json_is_null(v) && (!json_is_string(v) || (strcmp(
	    json_string_value(v), "oldest_first") != 0 && strcmp(
	    json_string_value(v), "newest_first") != 0)))
		return bad(c, "order", "%s", "order must be oldest_first or "
		    "newest_first (by StudyDate; migration.order when absent)");
	if (na + nu > cf->api.max_batch_items) {
		char msg[160];

		snprintf(msg, sizeof(msg), "the batch names %zu studies; at most "
		    "%u (api.max_batch_items): split it", na + nu,
		    cf->api.max_batch_items);
		return bad(c, "study_instance_uids", "%s", msg);
	}
	v = json_object_get(c->seed, "patient_id");
	if (na + nu == 0 && (v == NULL || !json_is_string(v) ||
	    json_string_length(v) == 0) && !json_is_object(json_object_get(
	    c->seed, "query")))
		return bad(c, "study_instance_uids", "%s", "a batch needs at "
		    "least one of accession_numbers, study_instance_uids, "
		    "patient_id or query");
	return 0;
}

