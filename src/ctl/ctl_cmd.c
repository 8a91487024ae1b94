/*
 * ctl_cmd.c — the commands over status, batches, reports, keys,
 * checkpoints, backups and metrics: one request each (batches may
 * follow pages: ctl_pages), the answer as a table, or as the server's
 * JSON with --json. Members the server does not (yet) send print as "-".
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "src/ctl/ctl.h"

/* Text buffers for T(): 16 members in one row or printf at most. */
static char tb[16][512];

/* T: member K of O as text (ctl_jtext), in the next of tb's buffers. */
static const char *
T(const json_t *o, const char *k)
{
	static unsigned ti;

	return ctl_jtext(o, k, tb[ti++ % 16], sizeof(tb[0]));
}

/* get: GET PATH, its JSON in *out (owned by A). */
static int
get(struct ctl *c, const char *path, struct ctl_answer *a)
{
	return ctl_api(c, "GET", path, NULL, 0, a);
}

/* batch_id: ARG as a batch id (digits), or -1 after saying so. */
static int
batch_id(const char *arg, uint64_t *id)
{
	return ctl_parse_u64(arg, 1, INT64_MAX, "batch ID", id);
}

/* --- status, health ------------------------------------------------ */

int
cmd_status(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	json_t *j, *by, *v;
	const char *k, *sep;
	char line[512], d[32];
	size_t len = 0;
	int rc;

	(void)args;
	(void)n;
	if ((rc = get(c, "/api/status", &a)) != CTL_OK || ctl_json_or(c, &a))
		goto out;
	j = a.json;
	ctl_kv("version", T(j, "version"), 9);
	ctl_kv("node", T(j, "node"), 9);
	snprintf(line, sizeof(line), "%s (%s s)", ctl_duration(ctl_jnum(j,
	    "uptime_s"), d, sizeof(d)), T(j, "uptime_s"));
	ctl_kv("uptime", line, 9);
	ctl_kv("ready", T(j, "ready"), 9);
	ctl_kv("store", T(j, "store.state"), 9);
	snprintf(line, sizeof(line), "size %s, durable %s", T(j, "audit.size"),
	    T(j, "audit.durable_size"));
	ctl_kv("audit", line, 9);
	len = (size_t)snprintf(line, sizeof(line), "%s total",
	    T(j, "batches.total"));
	by = ctl_jget(j, "batches.by_state");
	sep = ":";
	json_object_foreach(by, k, v) {
		if (len >= sizeof(line))
			break;
		len += (size_t)snprintf(line + len, sizeof(line) - len,
		    "%s %s %s", sep, k, T(by, k));
		sep = ",";
	}
	ctl_kv("batches", line, 9);
	ctl_progress_words(ctl_jget(j, "progress"), line, sizeof(line));
	ctl_kv("progress", line, 9);
out:
	ctl_answer_free(&a);
	return rc;
}

/* flatten: every member of O as "prefix.key  value" lines. */
static void
flatten(json_t *o, const char *prefix)
{
	const char *k;
	json_t *v;
	char key[256], buf[512];

	json_object_foreach(o, k, v) {
		snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." :
		    "", k);
		if (json_is_object(v))
			flatten(v, key);
		else
			ctl_kv(key, ctl_jtext(o, k, buf, sizeof(buf)), 24);
	}
}

/* health: 200 ok, 503 degraded (exit 4, the answer still printed). */
int
cmd_health(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	int rc;

	(void)args;
	(void)n;
	if ((rc = ctl_api(c, "GET", "/api/health", NULL, CTL_ANY_STATUS,
	    &a)) != CTL_OK)
		goto out;
	if ((a.status != 200 && a.status != 503) || !json_is_object(a.json)) {
		rc = ctl_refusal(c, "GET", "/api/health", &a);
		goto out;
	}
	if (!ctl_json_or(c, &a))
		flatten(a.json, "");
	if (a.status == 503) {
		ctl_err(c, "GET", "/api/health", "503: %s", ctl_jtext(a.json,
		    "status", tb[0], sizeof(tb[0])));
		rc = CTL_SERVER;
	}
out:
	ctl_answer_free(&a);
	return rc;
}

/* --- pages --------------------------------------------------------- */

int
ctl_pages(struct ctl *c, const char *path, const char *member,
    const char *cursor, uint64_t want, int all, json_t *out, json_t **next)
{
	struct ctl_answer a;
	json_t *page, *x;
	uint64_t have = 0, at = 0;
	char p[1024];
	size_t i, got;
	int rc, len;

	*next = NULL;
	for (;;) {
		const char *sep = strchr(path, '?') ? "&" : "?";

		len = snprintf(p, sizeof(p), "%s", path);
		if (want && len > 0 && (size_t)len < sizeof(p)) {
			/* the server's pages hold 1000 at most */
			len += snprintf(p + len, sizeof(p) - (size_t)len,
			    "%slimit=%" PRIu64, sep, want - have > 1000 ?
			    1000 : want - have);
			sep = "&";
		}
		if (at && len > 0 && (size_t)len < sizeof(p))
			len += snprintf(p + len, sizeof(p) - (size_t)len,
			    "%s%s=%" PRIu64, sep, cursor, at);
		if (len < 0 || (size_t)len >= sizeof(p)) {
			ctl_err(c, "GET", path, "the query is too long");
			return CTL_USAGE;
		}
		if ((rc = ctl_api(c, "GET", p, NULL, 0, &a)) != CTL_OK) {
			ctl_answer_free(&a);
			break;
		}
		page = ctl_jget(a.json, member);
		json_array_foreach(page, i, x) {
			if (want && have >= want)
				break;
			json_array_append(out, x);
			have++;
		}
		json_decref(*next);
		*next = json_incref(ctl_jget(a.json, "next"));
		got = json_array_size(page);
		ctl_answer_free(&a);
		if (!json_is_integer(*next) || json_integer_value(*next) <= 0 ||
		    (want && have >= want) || (!want && !all) || got == 0)
			break;
		at = (uint64_t)json_integer_value(*next);
	}
	return rc;
}

void
ctl_pages_note(const char *what, const json_t *next, uint64_t have,
    uint64_t want, int all)
{
	if (!json_is_integer(next) || all)
		return;
	if (want && have >= want)
		fprintf(stderr, PROG ": %" PRIu64 " shown, more after %"
		    JSON_INTEGER_FORMAT "\n", have, json_integer_value(next));
	else if (!want)
		fprintf(stderr, PROG ": more %s after %" JSON_INTEGER_FORMAT
		    ": use --all or --limit N\n", what,
		    json_integer_value(next));
}

/* --- batches ------------------------------------------------------- */

static void
batch_row(struct ctl_table *t, const json_t *b)
{
	const char *row[] = { T(b, "id"), T(b, "state"), T(b, "priority"),
	    T(b, "source"), T(b, "target"), T(b, "counts.studies"),
	    T(b, "counts.done"), T(b, "counts.quarantined"), T(b, "updated"),
	    T(b, "name") };

	ctl_table_row(t, row);
}

/*
 * batches: one page (the server's size) by default; --limit N asks for
 * N and follows "next" until it has them; --all follows every page.
 * --json prints one object with every batch fetched and the last next.
 */
int
cmd_batches(struct ctl *c, char **args, int n)
{
	static const char *const h[] = { "ID", "STATE", "PRIO", "SOURCE",
	    "TARGET", "STUDIES", "DONE", "QUAR", "UPDATED", "NAME", NULL };
	struct ctl_table *t;
	json_t *all = json_array(), *next = NULL, *b;
	uint64_t want = 0;
	char path[512], *st = NULL;
	size_t i;
	int rc;

	(void)args;
	(void)n;
	if (c->o.limit != NULL && ctl_parse_u64(c->o.limit, 1, 1000000,
	    "--limit", &want) < 0) {
		json_decref(all);
		return CTL_USAGE;
	}
	if (c->o.state != NULL)
		st = ctl_escape(c->o.state);
	snprintf(path, sizeof(path), "/api/batches%s%s", st ? "?state=" : "",
	    st ? st : "");
	free(st);
	rc = ctl_pages(c, path, "batches", "after", want, c->o.all, all,
	    &next);
	if (rc == CTL_OK && c->json) {
		json_t *o = json_pack("{s:O, s:O}", "batches", all, "next",
		    next ? next : json_null());

		ctl_print_json(o);
		json_decref(o);
	} else if (rc == CTL_OK) {
		t = ctl_table_new(h);
		json_array_foreach(all, i, b)
			batch_row(t, b);
		ctl_table_print(t, stdout);
		ctl_pages_note("batches", next, json_array_size(all), want,
		    c->o.all);
	}
	json_decref(next);
	json_decref(all);
	return rc;
}

static void
batch_kv(const json_t *b)
{
	static const char *const f[] = { "id", "name", "state", "source",
	    "target", "priority", "force_full_repull", "external_id",
	    "channel", "created", "updated", "patient_id",
	    "accession_numbers", "study_instance_uids", NULL };
	char line[256];
	size_t i;

	for (i = 0; f[i] != NULL; i++)
		ctl_kv(f[i], T(b, f[i]), 19);
	snprintf(line, sizeof(line), "%s studies, %s instances, %s done, %s "
	    "quarantined", T(b, "counts.studies"), T(b, "counts.instances"),
	    T(b, "counts.done"), T(b, "counts.quarantined"));
	ctl_kv("counts", line, 19);
}

int
cmd_batch(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	char path[64];
	uint64_t id;
	int rc;

	(void)n;
	if (batch_id(args[0], &id) < 0)
		return CTL_USAGE;
	snprintf(path, sizeof(path), "/api/batches/%" PRIu64, id);
	if ((rc = get(c, path, &a)) == CTL_OK && !ctl_json_or(c, &a))
		batch_kv(ctl_jget(a.json, "batch"));
	ctl_answer_free(&a);
	return rc;
}

/*
 * report_csv: GET PATH?format=csv and write the body to stdout as it
 * came (RFC 4180, CRLF line ends: for spreadsheets), refusing an answer
 * that is not text/csv rather than passing it on as if it were.
 */
static int
report_csv(struct ctl *c, const char *path)
{
	struct ctl_answer a;
	char p[128];
	int rc;

	snprintf(p, sizeof(p), "%s?format=csv", path);
	if ((rc = ctl_api(c, "GET", p, NULL, CTL_RAW, &a)) != CTL_OK)
		goto out;
	if (a.content_type == NULL || strncasecmp(a.content_type, "text/csv",
	    8) != 0) {
		ctl_err(c, "GET", p, "%d, but the answer is %s, not text/csv",
		    a.status, a.content_type ? a.content_type :
		    "without a Content-Type");
		rc = CTL_CONN;
		goto out;
	}
	if (fwrite(a.body, 1, a.len, stdout) != a.len || fflush(stdout) != 0) {
		fprintf(stderr, PROG ": writing the report: %s\n",
		    strerror(errno));
		rc = CTL_CONN;
	}
out:
	ctl_answer_free(&a);
	return rc;
}

int
cmd_report(struct ctl *c, char **args, int n)
{
	static const char *const h[] = { "STUDY_UID", "STATE", "EXPECTED",
	    "MIGRATED", "SKIPPED", "QUARANTINED", "FAILED", "REASON", NULL };
	struct ctl_answer a;
	struct ctl_table *t;
	json_t *s, *sum;
	char path[80];
	uint64_t id;
	size_t i;
	int rc;

	(void)n;
	if (batch_id(args[0], &id) < 0)
		return CTL_USAGE;
	snprintf(path, sizeof(path), "/api/batches/%" PRIu64 "/report", id);
	if (c->o.csv && c->json) {
		fprintf(stderr, PROG ": report: --csv or --json, not both\n");
		return CTL_USAGE;
	}
	if (c->o.csv)
		return report_csv(c, path);
	if ((rc = get(c, path, &a)) != CTL_OK || ctl_json_or(c, &a))
		goto out;
	batch_kv(ctl_jget(a.json, "batch"));
	/* the reconciliation: every expected instance is accounted for */
	sum = ctl_jget(a.json, "summary");
	printf("\nexpected %s: migrated %s, skipped (already at the target) "
	    "%s, quarantined %s, failed %s, pending %s (%s%% accounted); "
	    "unresolved items %s\n\n", T(sum, "expected"), T(sum, "migrated"),
	    T(sum, "skipped_present"), T(sum, "quarantined"), T(sum, "failed"),
	    T(sum, "pending"), T(sum, "accounted_percent"),
	    T(sum, "unresolved"));
	t = ctl_table_new(h);
	json_array_foreach(ctl_jget(a.json, "studies"), i, s) {
		const json_t *k = ctl_jget(s, "counts");
		char mig[32];

		snprintf(mig, sizeof(mig), "%lld", (long long)(
		    json_integer_value(ctl_jget(k, "verified")) +
		    json_integer_value(ctl_jget(k, "sent"))));
		{
			const char *row[] = { T(s, "study_uid"),
			    T(s, "state"), T(s, "expected"), mig,
			    T(k, "present"), T(k, "quarantined"),
			    T(k, "failed"), T(s, "reason") };

			ctl_table_row(t, row);
		}
	}
	ctl_table_print(t, stdout);
out:
	ctl_answer_free(&a);
	return rc;
}

/* --- submit, pause, resume, cancel --------------------------------- */

static json_t *
string_array(const char *const *v, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* submit_body: --file's object (if any) with the flags over it. */
static json_t *
submit_body(struct ctl *c)
{
	json_error_t jerr;
	json_t *b;
	uint64_t prio;

	if (c->o.file != NULL) {
		b = json_load_file(c->o.file, JSON_REJECT_DUPLICATES, &jerr);
		if (b == NULL) {
			fprintf(stderr, PROG ": %s line %d: %s\n", c->o.file,
			    jerr.line, jerr.text);
			return NULL;
		}
		if (!json_is_object(b)) {
			fprintf(stderr, PROG ": %s: expected a JSON object (a "
			    "batch seed)\n", c->o.file);
			json_decref(b);
			return NULL;
		}
	} else
		b = json_object();
#define SET(k, v) json_object_set_new(b, (k), (v))
	if (c->o.source)
		SET("source", json_string(c->o.source));
	if (c->o.target)
		SET("target", json_string(c->o.target));
	if (c->o.name)
		SET("batch_name", json_string(c->o.name));
	if (c->o.external_id)
		SET("external_id", json_string(c->o.external_id));
	if (c->o.patient_id)
		SET("patient_id", json_string(c->o.patient_id));
	if (c->o.nacc)
		SET("accession_numbers", string_array(c->o.acc, c->o.nacc));
	if (c->o.nstudy)
		SET("study_instance_uids", string_array(c->o.study,
		    c->o.nstudy));
	if (c->o.repull)
		SET("force_full_repull", json_true());
	if (c->o.order)
		SET("order", json_string(c->o.order));
	if (c->o.plan) {
		uint64_t plan;

		if (ctl_parse_u64(c->o.plan, 1, UINT32_MAX, "--plan",
		    &plan) < 0) {
			json_decref(b);
			return NULL;
		}
		SET("plan_id", json_integer((json_int_t)plan));
	}
	if (c->o.study_date || c->o.modality) {
		/* a query: the patient narrows it rather than naming one */
		json_t *q = json_object();

		if (c->o.study_date)
			json_object_set_new(q, "study_date",
			    json_string(c->o.study_date));
		if (c->o.modality)
			json_object_set_new(q, "modality",
			    json_string(c->o.modality));
		if (c->o.patient_id) {
			json_object_set_new(q, "patient_id",
			    json_string(c->o.patient_id));
			json_object_del(b, "patient_id");
		}
		SET("query", q);
	}
	if (c->o.priority) {
		if (ctl_parse_u64(c->o.priority, 0, 9, "--priority",
		    &prio) < 0) {
			json_decref(b);
			return NULL;
		}
		SET("priority", json_integer((json_int_t)prio));
	}
#undef SET
	if (json_object_get(b, "plan_id") == NULL &&
	    (!json_is_string(json_object_get(b, "source")) ||
	    !json_is_string(json_object_get(b, "target")))) {
		fprintf(stderr, PROG ": submit needs --source and --target "
		    "(or source and target in --file)\n");
		json_decref(b);
		return NULL;
	}
	return b;
}

int
cmd_submit(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	json_t *body, *b;
	char acc[32];
	int rc;

	(void)args;
	(void)n;
	if ((body = submit_body(c)) == NULL)
		return CTL_USAGE;
	rc = ctl_api(c, "POST", "/api/batches", body, 0, &a);
	json_decref(body);
	if (rc != CTL_OK || ctl_json_or(c, &a))
		goto out;
	b = ctl_jget(a.json, "batch");
	snprintf(acc, sizeof(acc), "%zu", json_array_size(ctl_jget(b,
	    "accession_numbers")));
	if (json_is_false(ctl_jget(a.json, "created")))
		printf("batch %s exists already for external id %s: not "
		    "created again (%s)\n", T(a.json, "batch_id"),
		    T(b, "external_id"), T(b, "state"));
	else
		printf("batch %s created: %s, %s -> %s, %s accession "
		    "number(s), %zu study UID(s), priority %s\n",
		    T(a.json, "batch_id"), T(b, "state"), T(b, "source"),
		    T(b, "target"), acc, json_array_size(ctl_jget(b,
		    "study_instance_uids")), T(b, "priority"));
out:
	ctl_answer_free(&a);
	return rc;
}

static int
batch_action(struct ctl *c, const char *arg, const char *action)
{
	struct ctl_answer a;
	char path[96];
	uint64_t id;
	int rc;

	if (batch_id(arg, &id) < 0)
		return CTL_USAGE;
	snprintf(path, sizeof(path), "/api/batches/%" PRIu64 "/%s", id,
	    action);
	if ((rc = ctl_api(c, "POST", path, NULL, 0, &a)) == CTL_OK &&
	    !ctl_json_or(c, &a))
		printf("batch %" PRIu64 ": %s\n", id,
		    T(a.json, "batch.state"));
	ctl_answer_free(&a);
	return rc;
}

int
cmd_pause(struct ctl *c, char **args, int n)
{
	(void)n;
	return batch_action(c, args[0], "pause");
}

int
cmd_resume(struct ctl *c, char **args, int n)
{
	(void)n;
	return batch_action(c, args[0], "resume");
}

int
cmd_cancel(struct ctl *c, char **args, int n)
{
	(void)n;
	return batch_action(c, args[0], "cancel");
}

/* --- keys ---------------------------------------------------------- */

int
cmd_keys(struct ctl *c, char **args, int n)
{
	static const char *const h[] = { "ID", "ROLE", "SOURCE", "CREATED",
	    NULL };
	struct ctl_answer a;
	struct ctl_table *t;
	json_t *k;
	size_t i;
	int rc;

	(void)args;
	(void)n;
	if ((rc = get(c, "/api/keys", &a)) != CTL_OK || ctl_json_or(c, &a))
		goto out;
	t = ctl_table_new(h);
	json_array_foreach(ctl_jget(a.json, "keys"), i, k) {
		const char *row[] = { T(k, "id"), T(k, "role"), T(k, "source"),
		    T(k, "created") };

		ctl_table_row(t, row);
	}
	ctl_table_print(t, stdout);
out:
	ctl_answer_free(&a);
	return rc;
}

int
cmd_key_create(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	json_t *body;
	const char *tok;
	int rc;

	(void)n;
	if (c->o.role == NULL) {
		fprintf(stderr, PROG ": key create needs --role (viewer, "
		    "operator or admin)\n");
		return CTL_USAGE;
	}
	body = json_pack("{s:s, s:s}", "id", args[0], "role", c->o.role);
	rc = ctl_api(c, "POST", "/api/keys", body, 0, &a);
	json_decref(body);
	if (rc != CTL_OK)
		goto out;
	tok = json_string_value(ctl_jget(a.json, "token"));
	if (!ctl_json_or(c, &a)) {
		printf("key \"%s\" created, role %s\n", T(a.json, "key.id"),
		    T(a.json, "key.role"));
		printf("token: %s\n", tok ? tok : "-");
	}
	fprintf(stderr, PROG ": WARNING: the token is shown this once and "
	    "cannot be read back: store it now (in a key file of mode 600; "
	    "vnamigctl --key-file FILE)\n");
out:
	ctl_answer_free(&a);
	return rc;
}

int
cmd_key_delete(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	char path[600], *id = ctl_escape(args[0]);
	int rc;

	(void)n;
	snprintf(path, sizeof(path), "/api/keys/%s", id);
	free(id);
	if ((rc = ctl_api(c, "DELETE", path, NULL, 0, &a)) == CTL_OK &&
	    !ctl_json_or(c, &a))
		printf("key \"%s\" deleted\n", args[0]);
	ctl_answer_free(&a);
	return rc;
}

/* --- checkpoints, restore, backups --------------------------------- */

int
cmd_checkpoints(struct ctl *c, char **args, int n)
{
	static const char *const h[] = { "NAME", "CREATED", "REASON",
	    "AUDIT_SIZE", NULL };
	struct ctl_answer a;
	struct ctl_table *t;
	json_t *k;
	size_t i;
	int rc;

	(void)args;
	(void)n;
	if ((rc = get(c, "/api/checkpoints", &a)) != CTL_OK ||
	    ctl_json_or(c, &a))
		goto out;
	t = ctl_table_new(h);
	json_array_foreach(ctl_jget(a.json, "checkpoints"), i, k) {
		const char *row[] = { T(k, "name"), T(k, "created"),
		    T(k, "reason"), T(k, "audit_size") };

		ctl_table_row(t, row);
	}
	ctl_table_print(t, stdout);
out:
	ctl_answer_free(&a);
	return rc;
}

int
cmd_checkpoint(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	json_t *body = json_pack("{s:s}", "name", args[0]);
	int rc;

	(void)n;
	rc = ctl_api(c, "POST", "/api/checkpoints", body, 0, &a);
	json_decref(body);
	if (rc == CTL_OK && !ctl_json_or(c, &a))
		printf("checkpoint \"%s\" created (%s, audit size %s)\n",
		    T(a.json, "checkpoint.name"),
		    T(a.json, "checkpoint.created"),
		    T(a.json, "checkpoint.audit_size"));
	ctl_answer_free(&a);
	return rc;
}

/* confirm: ask on the terminal; 1 when the answer is yes. */
static int
confirm(const char *name)
{
	char line[64];

	fprintf(stderr, "Restore checkpoint \"%s\"? vnamigd puts the job "
	    "state back as it was then (the audit log is kept whole and "
	    "records the restore). Type yes to go on: ", name);
	fflush(stderr);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return 0;
	line[strcspn(line, "\r\n")] = '\0';
	return strcmp(line, "yes") == 0 || strcmp(line, "y") == 0;
}

int
cmd_restore(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	char path[600], *name;
	int rc;

	(void)n;
	if (!c->o.yes) {
		if (!isatty(STDIN_FILENO)) {
			fprintf(stderr, PROG ": restore: standard input is not "
			    "a terminal to confirm on; add --yes\n");
			return CTL_USAGE;
		}
		if (!confirm(args[0])) {
			fprintf(stderr, PROG ": restore not confirmed: "
			    "nothing done\n");
			return CTL_USAGE;
		}
	}
	name = ctl_escape(args[0]);
	snprintf(path, sizeof(path), "/api/checkpoints/%s/restore", name);
	free(name);
	if ((rc = ctl_api(c, "POST", path, NULL, 0, &a)) == CTL_OK &&
	    !ctl_json_or(c, &a))
		printf("restore of checkpoint \"%s\": %s\n%s\n",
		    T(a.json, "restore.name"), T(a.json, "restore.state"),
		    T(a.json, "message"));
	ctl_answer_free(&a);
	return rc;
}

static void
backup_words(const json_t *b, char *out, size_t n)
{
	char sz[32];

	snprintf(out, n, "backup %s (%s, %s, %s files)", T(b, "id"),
	    T(b, "created"), ctl_bytes(ctl_jnum(b, "size"), sz, sizeof(sz)),
	    T(b, "files"));
}

int
cmd_backups(struct ctl *c, char **args, int n)
{
	static const char *const h[] = { "ID", "CREATED", "SIZE", "FILES",
	    NULL };
	struct ctl_answer a;
	struct ctl_table *t;
	json_t *k;
	size_t i;
	int rc;

	(void)args;
	(void)n;
	if ((rc = get(c, "/api/backups", &a)) != CTL_OK ||
	    ctl_json_or(c, &a))
		goto out;
	t = ctl_table_new(h);
	json_array_foreach(ctl_jget(a.json, "backups"), i, k) {
		const char *row[] = { T(k, "id"), T(k, "created"),
		    T(k, "size"), T(k, "files") };

		ctl_table_row(t, row);
	}
	ctl_table_print(t, stdout);
out:
	ctl_answer_free(&a);
	return rc;
}

int
cmd_backup(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	char line[256];
	int rc;

	(void)args;
	(void)n;
	if ((rc = ctl_api(c, "POST", "/api/backups", NULL, 0, &a)) ==
	    CTL_OK && !ctl_json_or(c, &a)) {
		backup_words(ctl_jget(a.json, "backup"), line, sizeof(line));
		printf("%s created\n", line);
	}
	ctl_answer_free(&a);
	return rc;
}

int
cmd_backup_verify(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	char path[96], line[256];
	uint64_t id;
	int rc;

	(void)n;
	if (ctl_parse_u64(args[0], 1, UINT32_MAX, "backup ID", &id) < 0)
		return CTL_USAGE;
	snprintf(path, sizeof(path), "/api/backups/%" PRIu64 "/verify", id);
	if ((rc = ctl_api(c, "POST", path, NULL, 0, &a)) != CTL_OK)
		goto out;
	if (!ctl_json_or(c, &a)) {
		backup_words(ctl_jget(a.json, "backup"), line, sizeof(line));
		if (json_is_true(ctl_jget(a.json, "ok")))
			printf("%s verified\n", line);
	}
	if (!json_is_true(ctl_jget(a.json, "ok"))) {
		ctl_err(c, "POST", path, "backup %" PRIu64 " did NOT verify%s%s",
		    id, json_is_string(ctl_jget(a.json, "message")) ? ": " : "",
		    json_is_string(ctl_jget(a.json, "message")) ?
		    json_string_value(ctl_jget(a.json, "message")) : "");
		rc = CTL_VERIFY;
	}
out:
	ctl_answer_free(&a);
	return rc;
}

/* --- metrics ------------------------------------------------------- */

int
cmd_metrics(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	int rc;

	(void)args;
	(void)n;
	if ((rc = ctl_api(c, "GET", "/metrics", NULL, CTL_RAW, &a)) ==
	    CTL_OK) {
		fwrite(a.body, 1, a.len, stdout);
		if (fflush(stdout) != 0) {
			fprintf(stderr, PROG ": writing the metrics: %s\n",
			    strerror(errno));
			rc = CTL_CONN;
		}
	}
	ctl_answer_free(&a);
	return rc;
}
