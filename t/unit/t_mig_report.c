/*
 * t_mig_report.c — reading what the migration engine wrote, from rows
 * put in a scratch store by hand: the report's outcome mapping and
 * summary (that it adds up, and says so honestly when it does not), the
 * per-study source count check, damaged rows, the CSV's RFC 4180 quoting,
 * and the quarantine's filters and pages.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "src/mig/mig.h"
#include "src/util/log.h"
#include "store/store.h"
#include "store/store_key.h"
#include "t/unit/tap.h"

static char tmp[256];

static void
kick(void *arg, uint64_t delay)
{
	(void)arg;
	(void)delay;
}

static struct store *
open_store(void)
{
	struct store_opts o = { 0 };
	char dir[300], err[512];
	struct store *st;

	snprintf(dir, sizeof(dir), "%s/db", tmp);
	o.dir = dir;
	o.kick = kick;
	o.block_cache = 8 << 20;
	if ((st = store_open(&o, err, sizeof(err))) == NULL)
		diag("store_open: %s", err);
	return st;
}

static void
put(struct store *st, enum store_cf cf, const struct store_key *k,
    const char *val)
{
	struct store_batch *b = store_begin(st);

	store_put(b, cf, k->b, k->len, val, strlen(val));
	store_end(b, NULL, NULL);
}

static void
study(struct store *st, uint64_t batch, const char *uid, const char *val)
{
	struct store_key k;

	store_key_init(&k);
	store_key_cstr(&k, "st");
	store_key_u64(&k, batch);
	store_key_cstr(&k, uid);
	put(st, STORE_CF_STUDIES, &k, val);
}

static void
instance(struct store *st, uint64_t batch, const char *suid,
    const char *sop, const char *val)
{
	struct store_key k;

	store_key_init(&k);
	store_key_u64(&k, batch);
	store_key_cstr(&k, suid);
	store_key_cstr(&k, sop);
	put(st, STORE_CF_INSTANCES, &k, val);
}

static long long
jint(json_t *o, const char *path)
{
	char buf[128], *p, *s;
	json_t *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (s = strtok_r(buf, ".", &p); s != NULL; s = strtok_r(NULL, ".",
	    &p))
		v = json_object_get(v, s);
	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

/* ---------------------------------------------------------------------- */

static void
test_report(struct store *st)
{
	json_t *rec, *rep, *s, *row;
	char err[256];
	const char *outcomes;

	/* batch 7: three studies; batches 6 and 8 around it must not leak in */
	study(st, 6, "1.9", "{\"v\":1,\"state\":\"done\",\"counts\":"
	    "{\"expected\":1}}");
	study(st, 8, "1.9", "{\"v\":1,\"state\":\"done\",\"counts\":"
	    "{\"expected\":1}}");
	study(st, 7, "1.2.3", "{\"v\":1,\"batch\":7,\"study_uid\":\"1.2.3\","
	    "\"state\":\"done\",\"attempts\":1,\"source_count\":4,"
	    "\"accession_number\":\"A1\",\"counts\":{\"expected\":4}}");
	study(st, 7, "1.2.4", "{\"v\":1,\"state\":\"quarantined\",\"reason\":"
	    "\"missing_at_source\",\"source_count\":5,\"counts\":"
	    "{\"expected\":3}}");
	study(st, 7, "1.2.5", "{\"v\":1,\"state\":\"verifying\","
	    "\"source_count\":null,\"counts\":{\"expected\":2}}");
	instance(st, 7, "1.2.3", "1.2.3.1", "{\"v\":1,\"state\":\"verified\","
	    "\"level\":\"count\",\"series_uid\":\"1.2.3.0\",\"sop_class_uid\":"
	    "\"1.2.840.10008.5.1.4.1.1.2\",\"source_sha256\":\"aa\","
	    "\"sent_sha256\":\"aa\",\"target_sha256\":null,\"status\":0,"
	    "\"time\":\"2026-11-24T03:00:00Z\"}");
	instance(st, 7, "1.2.3", "1.2.3.2", "{\"v\":1,\"state\":\"sent\","
	    "\"level\":\"status\",\"status\":0}");
	instance(st, 7, "1.2.3", "1.2.3.3", "{\"v\":1,\"state\":\"present\"}");
	instance(st, 7, "1.2.3", "1.2.3.4", "{\"v\":1,\"state\":\"failed\","
	    "\"reason\":\"source_status\",\"status\":42752}");
	instance(st, 7, "1.2.4", "1.2.4.1", "{\"v\":1,\"state\":"
	    "\"quarantined\",\"reason\":\"missing_at_source\"}");
	instance(st, 7, "1.2.4", "1.2.4.2", "{\"v\":1,\"state\":"
	    "\"quarantined\",\"reason\":\"target_rejected\",\"status\":"
	    "43264,\"detail\":\"Out of resources\"}");
	instance(st, 7, "1.2.4", "1.2.4.3", "{\"v\":1,\"state\":"
	    "\"quarantined\",\"reason\":\"missing_at_source\"}");
	instance(st, 7, "1.2.5", "1.2.5.1", "{\"v\":1,\"state\":\"sent\","
	    "\"level\":\"count\"}");
	instance(st, 7, "1.2.5", "1.2.5.2", "{\"v\":1,\"state\":"
	    "\"received\"}");
	instance(st, 6, "1.9", "1.9.1", "{\"v\":1,\"state\":\"verified\"}");
	instance(st, 8, "1.9", "1.9.1", "{\"v\":1,\"state\":\"verified\"}");
	/* batch 9: four expected, two rows: it does not add up */
	study(st, 9, "2.1", "{\"v\":1,\"state\":\"sending\",\"counts\":"
	    "{\"expected\":4}}");
	instance(st, 9, "2.1", "2.1.1", "{\"v\":1,\"state\":\"verified\"}");
	instance(st, 9, "2.1", "2.1.2", "{\"v\":1,\"state\":\"expected\"}");
	/* batch 10: a damaged row */
	study(st, 10, "3.1", "{\"v\":1,\"state\":\"sending\",\"counts\":"
	    "{\"expected\":1}}");
	instance(st, 10, "3.1", "3.1.1", "not json");
	store_drain(st);

	rec = json_pack("{s:i, s:[{s:s, s:s}]}", "id", 7, "unresolved",
	    "accession_number", "A9", "reason", "not_found_at_source");
	rep = mig_report(st, 7, rec, err, sizeof(err));
	if (!ok(rep != NULL, "mig_report of batch 7")) {
		diag("%s", err);
		json_decref(rec);
		return;
	}
	ok(json_object_get(rep, "batch") == rec, "  carries the batch record");
	s = json_object_get(rep, "summary");
	is_int(jint(s, "expected"), 9, "  expected: the studies' counts");
	is_int(jint(s, "migrated"), 2, "  migrated: verified, and sent with "
	    "level status");
	is_int(jint(s, "skipped_present"), 1, "  skipped_present");
	is_int(jint(s, "quarantined"), 3, "  quarantined");
	is_int(jint(s, "quarantined_by_reason.missing_at_source"), 2,
	    "  quarantined_by_reason missing_at_source");
	is_int(jint(s, "quarantined_by_reason.target_rejected"), 1,
	    "  quarantined_by_reason target_rejected");
	is_int(jint(s, "failed"), 1, "  failed");
	is_int(jint(s, "pending"), 2, "  pending: sent awaiting verify, "
	    "received");
	ok(json_real_value(json_object_get(s, "accounted_percent")) == 100.0,
	    "  accounted_percent 100");
	is_int(jint(s, "studies.total"), 3, "  studies.total");
	ok(jint(s, "studies.done") == 1 && jint(s, "studies.quarantined") ==
	    1 && jint(s, "studies.verifying") == 1 && jint(s,
	    "studies.queued") == 0, "  studies by state, the empty ones 0");
	is_int(jint(s, "unresolved"), 1, "  unresolved count");
	is_int(json_array_size(json_object_get(rep, "unresolved")), 1,
	    "  the unresolved list from the record");

	row = json_array_get(json_object_get(rep, "studies"), 0);
	is_str(json_string_value(json_object_get(row, "study_uid")), "1.2.3",
	    "  studies in key order");
	ok(json_is_false(json_object_get(row, "source_count_mismatch")),
	    "  1.2.3: source count agrees");
	row = json_array_get(json_object_get(rep, "studies"), 1);
	ok(json_is_true(json_object_get(row, "source_count_mismatch")) &&
	    jint(row, "source_count") == 5 && jint(row, "expected") == 3,
	    "  1.2.4: source says 5, C-FIND listed 3: mismatch");
	is_str(json_string_value(json_object_get(row, "reason")),
	    "missing_at_source", "  with the study's reason");
	row = json_array_get(json_object_get(rep, "studies"), 2);
	ok(json_is_false(json_object_get(row, "source_count_mismatch")) &&
	    json_is_null(json_object_get(row, "source_count")),
	    "  1.2.5: no source count, no mismatch");

	is_int(json_array_size(json_object_get(rep, "instances")), 9,
	    "  nine instance rows, none of batches 6 and 8");
	{
		static char buf[256];
		size_t i, n = 0;

		json_array_foreach(json_object_get(rep, "instances"), i, row)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s ",
			    json_string_value(json_object_get(row,
			    "outcome")));
		outcomes = buf;
	}
	is_str(outcomes, "migrated migrated skipped_present failed quarantined "
	    "quarantined quarantined pending pending ", "  outcomes in order");
	row = json_array_get(json_object_get(rep, "instances"), 0);
	ok(json_is_array(json_object_get(row, "transforms")) &&
	    json_is_null(json_object_get(row, "target_sha256")) &&
	    json_is_null(json_object_get(row, "reason")) &&
	    strcmp(json_string_value(json_object_get(row, "study_uid")),
	    "1.2.3") == 0 && strcmp(json_string_value(json_object_get(row,
	    "sop_instance_uid")), "1.2.3.1") == 0,
	    "  an instance row: UIDs from the key, nulls, transforms []");
	json_decref(rep);
	json_decref(rec);

	rec = json_pack("{s:i}", "id", 9);
	rep = mig_report(st, 9, rec, err, sizeof(err));
	s = json_object_get(rep, "summary");
	ok(rep != NULL && json_real_value(json_object_get(s,
	    "accounted_percent")) == 50.0, "batch 9: two rows of four "
	    "expected: accounted_percent 50");
	ok(jint(s, "unresolved") == 0 && json_array_size(json_object_get(rep,
	    "unresolved")) == 0, "  no unresolved list: []");
	json_decref(rep);
	json_decref(rec);

	rec = json_pack("{s:i}", "id", 11);
	rep = mig_report(st, 11, rec, err, sizeof(err));
	s = json_object_get(rep, "summary");
	ok(rep != NULL && jint(s, "expected") == 0 && json_real_value(
	    json_object_get(s, "accounted_percent")) == 100.0 &&
	    json_array_size(json_object_get(rep, "instances")) == 0,
	    "an empty batch: nothing expected, 100 accounted");
	json_decref(rep);
	json_decref(rec);

	rec = json_pack("{s:i}", "id", 10);
	err[0] = '\0';
	rep = mig_report(st, 10, rec, err, sizeof(err));
	ok(rep == NULL && strstr(err, "batch 10") != NULL &&
	    strstr(err, "3.1 / 3.1.1") != NULL, "a damaged instance row: "
	    "NULL, and err names it (%s)", err);
	json_decref(rec);
}

static void
test_csv(void)
{
	json_t *rep;
	char *csv;
	size_t len;
	const char *want =
	    "study_uid,series_uid,sop_instance_uid,sop_class_uid,"
	    "source_sha256,sent_sha256,target_sha256,level,time,outcome,"
	    "status,reason,detail\r\n"
	    "1.2,1.2.0,1.2.1,1.2.840,ab,ab,,count,2026-11-24T03:00:00Z,"
	    "migrated,0x0000,,\r\n"
	    "1.2,,1.2.2,,,,,,,quarantined,0xA700,target_rejected,"
	    "\"said \"\"no\"\", twice\"\r\n"
	    "1.2,,1.2.3,,,,,,,failed,70000,x,\"line\r\nbreak\"\r\n"
	    "1.2,,1.2.4,,,,,,,pending,,,\"a\nb\"\r\n";

	rep = json_pack("{s:[{s:s, s:s, s:s, s:s, s:s, s:s, s:n, s:s, s:s,"
	    " s:s, s:i, s:n, s:n}, {s:s, s:s, s:s, s:i, s:s, s:s},"
	    " {s:s, s:s, s:s, s:i, s:s, s:s}, {s:s, s:s, s:s, s:n, s:s}]}",
	    "instances",
	    "study_uid", "1.2", "series_uid", "1.2.0", "sop_instance_uid",
	    "1.2.1", "sop_class_uid", "1.2.840", "source_sha256", "ab",
	    "sent_sha256", "ab", "target_sha256", "level", "count", "time",
	    "2026-11-24T03:00:00Z", "outcome", "migrated", "status", 0,
	    "reason", "detail",
	    "study_uid", "1.2", "sop_instance_uid", "1.2.2", "outcome",
	    "quarantined", "status", 0xA700, "reason", "target_rejected",
	    "detail", "said \"no\", twice",
	    "study_uid", "1.2", "sop_instance_uid", "1.2.3", "outcome",
	    "failed", "status", 70000, "reason", "x", "detail",
	    "line\r\nbreak",
	    "study_uid", "1.2", "sop_instance_uid", "1.2.4", "outcome",
	    "pending", "status", "detail", "a\nb");
	if (!ok(rep != NULL, "a report to write as CSV"))
		return;
	csv = mig_report_csv(rep, &len);
	ok(csv != NULL && len == strlen(want) && memcmp(csv, want, len) == 0,
	    "CSV: header, CRLF, nulls empty, status 0xHHHH, quotes doubled, "
	    "CR/LF/comma quoted");
	if (csv != NULL && (len != strlen(want) || memcmp(csv, want, len)))
		diag("got:\n%s", csv);
	free(csv);
	json_decref(rep);

	rep = json_pack("{s:[]}", "instances");
	csv = mig_report_csv(rep, &len);
	ok(csv != NULL && len == strlen(want) - strlen(strstr(want, "1.2,")),
	    "CSV of no instances: the header line alone");
	free(csv);
	json_decref(rep);
}

/* ---------------------------------------------------------------------- */

static void
qitem(struct store *st, uint64_t id, uint64_t batch, const char *reason)
{
	struct store_key k;
	char val[256];

	store_key_init(&k);
	store_key_cstr(&k, "q");
	store_key_u64(&k, id);
	snprintf(val, sizeof(val), "{\"v\":1,\"id\":%llu,\"batch\":%llu,"
	    "\"sop_instance_uid\":\"1.%llu\",\"reason\":\"%s\",\"state\":"
	    "\"open\"}", (unsigned long long)id, (unsigned long long)batch,
	    (unsigned long long)id, reason);
	put(st, STORE_CF_STUDIES, &k, val);
}

/* The page's ids as "10 9 8" and its next ("-" for null). */
static const char *
page(struct store *st, const char *reason, uint64_t batch, uint64_t before,
    size_t limit)
{
	static char buf[512];
	char err[256];
	json_t *l = mig_quarantine_list(st, reason, batch, before, limit, err,
	    sizeof(err)), *it, *next;
	size_t i, n = 0;

	if (l == NULL) {
		snprintf(buf, sizeof(buf), "error: %s", err);
		return buf;
	}
	buf[0] = '\0';
	json_array_foreach(json_object_get(l, "items"), i, it)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%lld ",
		    jint(it, "id"));
	next = json_object_get(l, "next");
	if (json_is_integer(next))
		snprintf(buf + n, sizeof(buf) - n, "next %lld",
		    (long long)json_integer_value(next));
	else
		snprintf(buf + n, sizeof(buf) - n, "next %s",
		    json_is_null(next) ? "-" : "?");
	json_decref(l);
	return buf;
}

static void
test_quarantine(struct store *st)
{
	json_t *it;

	is_str(page(st, NULL, 0, 0, 100), "next -", "an empty quarantine");
	for (uint64_t id = 1; id <= 10; id++)
		qitem(st, id, id % 2 ? 7 : 8, id % 3 ? "target_rejected" :
		    "missing_at_source");
	store_drain(st);

	is_str(page(st, NULL, 0, 0, 100), "10 9 8 7 6 5 4 3 2 1 next -",
	    "every item, newest first (the study rows beside them are not "
	    "items)");
	is_str(page(st, NULL, 0, 0, 3), "10 9 8 next 8", "a page of 3");
	is_str(page(st, NULL, 0, 8, 3), "7 6 5 next 5", "  before=8");
	is_str(page(st, NULL, 0, 5, 3), "4 3 2 next 2", "  before=5");
	is_str(page(st, NULL, 0, 2, 3), "1 next -", "  before=2: the last");
	is_str(page(st, NULL, 0, 6, 5), "5 4 3 2 1 next -",
	    "exactly limit left: no next page");
	is_str(page(st, NULL, 0, 0, 10), "10 9 8 7 6 5 4 3 2 1 next -",
	    "limit = every item: no next page");
	is_str(page(st, "missing_at_source", 0, 0, 100), "9 6 3 next -",
	    "reason filter");
	is_str(page(st, NULL, 7, 0, 100), "9 7 5 3 1 next -", "batch filter");
	is_str(page(st, "missing_at_source", 8, 0, 100), "6 next -",
	    "both filters");
	is_str(page(st, NULL, 7, 0, 2), "9 7 next 7", "a filtered page");
	is_str(page(st, NULL, 7, 7, 2), "5 3 next 3", "  the next one");
	is_str(page(st, "nothing_like_it", 0, 0, 100), "next -",
	    "an unknown reason matches nothing");
	is_str(page(st, NULL, 0, 1, 100), "next -", "nothing before 1");
	is_str(page(st, NULL, 0, 0, 0), "next -", "limit 0: an empty page");

	ok(mig_quarantine_get(st, 6, &it) == 1 && jint(it, "id") == 6 &&
	    jint(it, "batch") == 8, "mig_quarantine_get: item 6");
	json_decref(it);
	ok(mig_quarantine_get(st, 99, &it) == 0 && it == NULL,
	    "  an absent item: 0");
}

int
main(void)
{
	struct store *st;
	char cmd[300];

	log_setup(LOG_LVL_ERROR, 0, "t_mig_report", 0);
	snprintf(tmp, sizeof(tmp), "%s/t_mig_report.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if ((st = open_store()) != NULL) {
		test_report(st);
		test_quarantine(st);
		store_close(st);
	} else
		ok(0, "the scratch store opens");
	test_csv();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		diag("could not remove %s", tmp);
	return done_testing();
}
