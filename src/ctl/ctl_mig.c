/*
 * ctl_mig.c — the commands over the migration engine: the node and the
 * sources (state, pause, resume) and the quarantine (list, show, retry,
 * release, reject). One request each (the quarantine list may follow pages), the
 * answer in words or as a table, or as the server's JSON with --json.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* pause_by: "by BY at TIME[: REASON]" from P's pause (the node's, a
 * source's). */
static void
pause_by(const json_t *p, char *out, size_t n)
{
	const json_t *r = ctl_jget(p, "pause.reason");

	snprintf(out, n, "by %s at %s%s%.400s", T(p, "pause.by"),
	    T(p, "pause.time"), json_is_string(r) ? ": " : "",
	    json_is_string(r) ? json_string_value(r) : "");
}

/* paused_words: "no", or "yes, " and pause_by. */
static void
paused_words(const json_t *p, char *out, size_t n)
{
	char by[512];

	pause_by(p, by, sizeof(by));
	snprintf(out, n, "%s%s", json_is_true(ctl_jget(p, "paused")) ?
	    "yes, " : "no", json_is_true(ctl_jget(p, "paused")) ? by : "");
}

/*
 * pause_action: POST PATH with {"reason": --reason} when given; then
 * "WHAT: paused by ..." or "WHAT: not paused" from the answer's MEMBER
 * (the node or the source as it is now).
 */
static int
pause_action(struct ctl *c, const char *path, const char *member,
    const char *what)
{
	struct ctl_answer a;
	json_t *body = NULL;
	char line[600];
	int rc;

	if (c->o.reason != NULL)
		body = json_pack("{s:s}", "reason", c->o.reason);
	rc = ctl_api(c, "POST", path, body, 0, &a);
	json_decref(body);
	if (rc == CTL_OK && !ctl_json_or(c, &a)) {
		const json_t *o = ctl_jget(a.json, member);

		pause_by(o, line, sizeof(line));
		if (json_is_true(ctl_jget(o, "paused")))
			printf("%s: paused %s\n", what, line);
		else
			printf("%s: not paused\n", what);
	}
	ctl_answer_free(&a);
	return rc;
}

/* --- node ---------------------------------------------------------- */

int
cmd_node(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	const json_t *j, *e;
	char line[600];
	int rc;

	(void)args;
	(void)n;
	if ((rc = ctl_api(c, "GET", "/api/node", NULL, 0, &a)) != CTL_OK ||
	    ctl_json_or(c, &a))
		goto out;
	j = ctl_jget(a.json, "node");
	e = ctl_jget(j, "engine");
	ctl_kv("ae_title", T(j, "ae_title"), 8);
	paused_words(j, line, sizeof(line));
	ctl_kv("paused", line, 8);
	ctl_progress_words(e, line, sizeof(line));
	ctl_kv("engine", line, 8);
	snprintf(line, sizeof(line), "batches %s, studies %s, associations "
	    "out %s", T(e, "batches_active"), T(e, "studies_active"),
	    T(e, "associations_out"));
	ctl_kv("active", line, 8);
out:
	ctl_answer_free(&a);
	return rc;
}

int
cmd_node_pause(struct ctl *c, char **args, int n)
{
	(void)args;
	(void)n;
	return pause_action(c, "/api/node/pause", "node", "node");
}

int
cmd_node_resume(struct ctl *c, char **args, int n)
{
	(void)args;
	(void)n;
	return pause_action(c, "/api/node/resume", "node", "node");
}

/* --- sources ------------------------------------------------------- */

static void
source_row(struct ctl_table *t, const json_t *s)
{
	const json_t *r = ctl_jget(s, "pause.reason");
	const char *row[] = { T(s, "name"), T(s, "ae_title"), T(s, "host"),
	    T(s, "port"), T(s, "retrieve"), T(s, "window"),
	    T(s, "breaker.state"), T(s, "paused"),
	    T(s, "pause.by"), T(s, "pause.time"),
	    json_is_string(r) ? json_string_value(r) : "-" };

	ctl_table_row(t, row);
}

static struct ctl_table *
source_table(void)
{
	static const char *const h[] = { "NAME", "AE_TITLE", "HOST", "PORT",
	    "RETRIEVE", "WINDOW", "BREAKER", "PAUSED", "BY", "SINCE", "REASON",
	    NULL };

	return ctl_table_new(h);
}

int
cmd_sources(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	struct ctl_table *t;
	json_t *s;
	size_t i;
	int rc;

	(void)args;
	(void)n;
	if ((rc = ctl_api(c, "GET", "/api/sources", NULL, 0, &a)) != CTL_OK ||
	    ctl_json_or(c, &a))
		goto out;
	t = source_table();
	json_array_foreach(ctl_jget(a.json, "sources"), i, s)
		source_row(t, s);
	ctl_table_print(t, stdout);
out:
	ctl_answer_free(&a);
	return rc;
}

/* source_path: /api/sources/NAME[/ACTION] into PATH; -1 when too long. */
static int
source_path(const char *name, const char *action, char *path, size_t n)
{
	char *e = ctl_escape(name);
	int len = snprintf(path, n, "/api/sources/%s%s%s", e, action ? "/" :
	    "", action ? action : "");

	free(e);
	if (len < 0 || (size_t)len >= n) {
		fprintf(stderr, PROG ": source name \"%.64s...\" is too long\n",
		    name);
		return -1;
	}
	return 0;
}

int
cmd_source(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	const json_t *s;
	char path[512], line[600];
	int rc;

	(void)n;
	if (source_path(args[0], NULL, path, sizeof(path)) < 0)
		return CTL_USAGE;
	if ((rc = ctl_api(c, "GET", path, NULL, 0, &a)) != CTL_OK ||
	    ctl_json_or(c, &a))
		goto out;
	s = ctl_jget(a.json, "source");
	ctl_kv("name", T(s, "name"), 8);
	ctl_kv("ae_title", T(s, "ae_title"), 8);
	snprintf(line, sizeof(line), "%s port %s", T(s, "host"),
	    T(s, "port"));
	ctl_kv("address", line, 8);
	ctl_kv("retrieve", T(s, "retrieve"), 8);
	ctl_kv("window", T(s, "window"), 8);
	snprintf(line, sizeof(line), "%s%s%s", T(s, "breaker.state"),
	    json_is_string(ctl_jget(s, "breaker.last")) ? ", last failure: " :
	    "", json_is_string(ctl_jget(s, "breaker.last")) ?
	    T(s, "breaker.last") : "");
	ctl_kv("breaker", line, 8);
	paused_words(s, line, sizeof(line));
	ctl_kv("paused", line, 8);
out:
	ctl_answer_free(&a);
	return rc;
}

static int
source_action(struct ctl *c, const char *name, const char *action)
{
	char path[512], what[128];

	if (source_path(name, action, path, sizeof(path)) < 0)
		return CTL_USAGE;
	snprintf(what, sizeof(what), "source %.64s", name);
	return pause_action(c, path, "source", what);
}

int
cmd_source_pause(struct ctl *c, char **args, int n)
{
	(void)n;
	return source_action(c, args[0], "pause");
}

int
cmd_source_resume(struct ctl *c, char **args, int n)
{
	(void)n;
	return source_action(c, args[0], "resume");
}

/* --- quarantine ---------------------------------------------------- */

/*
 * quarantine: the items, newest first, one page (the server's size) by
 * default; --limit N and --all follow "next" (as before=) like batches;
 * --reason and --batch are the server's filters. --json prints one
 * object with every item fetched and the last next.
 */
int
cmd_quarantine(struct ctl *c, char **args, int n)
{
	static const char *const h[] = { "ID", "BATCH", "STUDY_UID",
	    "SOP_INSTANCE_UID", "REASON", "STATE", "TIME", "DETAIL", NULL };
	struct ctl_table *t;
	json_t *all = json_array(), *next = NULL, *q;
	uint64_t want = 0, batch = 0;
	char path[512], *r;
	size_t i;
	int rc = CTL_USAGE, len;

	(void)args;
	(void)n;
	if ((c->o.limit != NULL && ctl_parse_u64(c->o.limit, 1, 1000000,
	    "--limit", &want) < 0) || (c->o.batch != NULL &&
	    ctl_parse_u64(c->o.batch, 1, INT64_MAX, "--batch", &batch) < 0))
		goto out;
	len = snprintf(path, sizeof(path), "/api/quarantine");
	if (c->o.reason != NULL) {	/* the server takes 64 at most */
		r = ctl_escape(c->o.reason);
		len += snprintf(path + len, sizeof(path) - (size_t)len,
		    "?reason=%.400s", r);
		free(r);
	}
	if (batch)
		snprintf(path + len, sizeof(path) - (size_t)len, "%cbatch=%"
		    PRIu64, c->o.reason != NULL ? '&' : '?', batch);
	rc = ctl_pages(c, path, "items", "before", want, c->o.all, all, &next);
	if (rc == CTL_OK && c->json) {
		json_t *o = json_pack("{s:O, s:O}", "items", all, "next",
		    next ? next : json_null());

		ctl_print_json(o);
		json_decref(o);
	} else if (rc == CTL_OK) {
		t = ctl_table_new(h);
		json_array_foreach(all, i, q) {
			const char *row[] = { T(q, "id"), T(q, "batch"),
			    T(q, "study_uid"), T(q, "sop_instance_uid"),
			    T(q, "reason"), T(q, "state"), T(q, "time"),
			    T(q, "detail") };

			ctl_table_row(t, row);
		}
		ctl_table_print(t, stdout);
		ctl_pages_note("items", next, json_array_size(all), want,
		    c->o.all);
	}
out:
	json_decref(next);
	json_decref(all);
	return rc;
}

/* item_path: /api/quarantine/ID[/ACTION]; -1 after saying ARG is bad. */
static int
item_path(const char *arg, const char *action, char *path, size_t n)
{
	uint64_t id;

	if (ctl_parse_u64(arg, 1, INT64_MAX, "quarantine ID", &id) < 0)
		return -1;
	snprintf(path, n, "/api/quarantine/%" PRIu64 "%s%s", id, action ?
	    "/" : "", action ? action : "");
	return 0;
}

static void
item_kv(const json_t *q)
{
	static const char *const f[] = { "id", "batch", "state", "reason",
	    "detail", "status", "study_uid", "series_uid", "sop_instance_uid",
	    "sop_class_uid", "source_sha256", "target_sha256", "file", "time",
	    NULL };
	const json_t *adj = ctl_jget(q, "adjudicated");
	char line[1200];
	size_t i;

	for (i = 0; f[i] != NULL; i++)
		ctl_kv(f[i], T(q, f[i]), 16);
	if (json_is_object(adj)) {
		snprintf(line, sizeof(line), "by %s at %s%s%.1024s",
		    T(adj, "by"), T(adj, "time"), json_is_string(ctl_jget(adj,
		    "note")) ? ": " : "", json_is_string(ctl_jget(adj,
		    "note")) ? T(adj, "note") : "");
		ctl_kv("adjudicated", line, 16);
	}
}

int
cmd_quarantine_show(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	char path[96];
	int rc;

	(void)n;
	if (item_path(args[0], NULL, path, sizeof(path)) < 0)
		return CTL_USAGE;
	if ((rc = ctl_api(c, "GET", path, NULL, 0, &a)) == CTL_OK &&
	    !ctl_json_or(c, &a))
		item_kv(ctl_jget(a.json, "item"));
	ctl_answer_free(&a);
	return rc;
}

/* item_action: POST .../ID/ACTION with {"note": --note} when given. */
static int
item_action(struct ctl *c, const char *arg, const char *action)
{
	struct ctl_answer a;
	json_t *body = NULL;
	char path[96];
	int rc;

	if (item_path(arg, action, path, sizeof(path)) < 0)
		return CTL_USAGE;
	if (c->o.note != NULL)
		body = json_pack("{s:s}", "note", c->o.note);
	rc = ctl_api(c, "POST", path, body, 0, &a);
	json_decref(body);
	if (rc == CTL_OK && !ctl_json_or(c, &a)) {
		const json_t *q = ctl_jget(a.json, "item");

		printf("quarantine item %s: %s (by %s at %s)\n", T(q, "id"),
		    T(q, "state"), T(q, "adjudicated.by"),
		    T(q, "adjudicated.time"));
	}
	ctl_answer_free(&a);
	return rc;
}

int
cmd_quarantine_retry(struct ctl *c, char **args, int n)
{
	(void)n;
	return item_action(c, args[0], "retry");
}

int
cmd_quarantine_release(struct ctl *c, char **args, int n)
{
	(void)n;
	return item_action(c, args[0], "release");
}

int
cmd_quarantine_reject(struct ctl *c, char **args, int n)
{
	(void)n;
	return item_action(c, args[0], "reject");
}

/* --- plans --------------------------------------------------------- */

/* by_state: "done 2, cancelled 1" from {"done": 2, ...}, or "-". */
static void
by_state(json_t *p, char *out, size_t n)
{
	json_t *b = json_object_get(json_object_get(p, "batches"),
	    "by_state");
	const char *k;
	json_t *v;
	size_t o = 0;

	out[0] = '\0';
	json_object_foreach(b, k, v) {
		int w = snprintf(out + o, n - o, "%s%s %lld", o ? ", " : "", k,
		    (long long)json_integer_value(v));

		if (w < 0 || (size_t)w >= n - o)
			break;
		o += (size_t)w;
	}
	if (o == 0)
		snprintf(out, n, "-");
}

int
cmd_plans(struct ctl *c, char **args, int n)
{
	static const char *const h[] = { "ID", "NAME", "SOURCE", "TARGET",
	    "PRIORITY", "ORDER", "STATE", "BATCHES", NULL };
	struct ctl_answer a;
	struct ctl_table *t;
	json_t *p;
	size_t i;
	char bs[256];
	int rc;

	(void)args;
	(void)n;
	if ((rc = ctl_api(c, "GET", "/api/plans", NULL, 0, &a)) != CTL_OK ||
	    ctl_json_or(c, &a))
		goto out;
	t = ctl_table_new(h);
	json_array_foreach(ctl_jget(a.json, "plans"), i, p) {
		const char *row[] = { T(p, "id"), T(p, "name"), T(p, "source"),
		    T(p, "target"), T(p, "priority"), T(p, "order"),
		    T(p, "state"), bs };

		by_state(p, bs, sizeof(bs));
		ctl_table_row(t, row);
	}
	ctl_table_print(t, stdout);
out:
	ctl_answer_free(&a);
	return rc;
}

static int
plan_path(const char *id, const char *action, char *path, size_t n)
{
	uint64_t v;

	/* the number, not the text: " 7", "-1" or a CR LF in it went into
	 * the request line as given */
	if (ctl_parse_u64(id, 1, UINT32_MAX, "plan ID", &v) < 0)
		return -1;
	snprintf(path, n, "/api/plans/%llu%s%s", (unsigned long long)v,
	    action ? "/" : "", action ? action : "");
	return 0;
}

static void
plan_show(json_t *p)
{
	char bs[256];

	by_state(p, bs, sizeof(bs));
	ctl_kv("id", T(p, "id"), 11);
	ctl_kv("name", T(p, "name"), 11);
	ctl_kv("source", T(p, "source"), 11);
	ctl_kv("target", T(p, "target"), 11);
	ctl_kv("priority", T(p, "priority"), 11);
	ctl_kv("order", T(p, "order"), 11);
	ctl_kv("state", T(p, "state"), 11);
	ctl_kv("reason", T(p, "reason"), 11);
	ctl_kv("created", T(p, "created"), 11);
	ctl_kv("created_by", T(p, "created_by"), 11);
	ctl_kv("batches", bs, 11);
}

int
cmd_plan(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	char path[128];
	int rc;

	(void)n;
	if (plan_path(args[0], NULL, path, sizeof(path)) < 0)
		return CTL_USAGE;
	if ((rc = ctl_api(c, "GET", path, NULL, 0, &a)) == CTL_OK &&
	    !ctl_json_or(c, &a))
		plan_show(json_object_get(a.json, "plan"));
	ctl_answer_free(&a);
	return rc;
}

int
cmd_plan_create(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	json_t *body;
	uint64_t prio;
	int rc;

	(void)n;
	if (c->o.source == NULL || c->o.target == NULL) {
		fprintf(stderr, PROG ": plan create needs --source and "
		    "--target\n");
		return CTL_USAGE;
	}
	body = json_pack("{s:s, s:s, s:s}", "name", args[0], "source",
	    c->o.source, "target", c->o.target);
	if (c->o.priority != NULL) {
		if (ctl_parse_u64(c->o.priority, 0, 9, "--priority",
		    &prio) < 0) {
			json_decref(body);
			return CTL_USAGE;
		}
		json_object_set_new(body, "priority",
		    json_integer((json_int_t)prio));
	}
	if (c->o.order != NULL)
		json_object_set_new(body, "order", json_string(c->o.order));
	if (c->o.note != NULL)
		json_object_set_new(body, "description",
		    json_string(c->o.note));
	rc = ctl_api(c, "POST", "/api/plans", body, 0, &a);
	json_decref(body);
	if (rc == CTL_OK && !ctl_json_or(c, &a))
		printf("plan %s created: %s -> %s, priority %s, %s; batches "
		    "join it with vnamigctl submit --plan %s\n",
		    T(ctl_jget(a.json, "plan"), "id"),
		    T(ctl_jget(a.json, "plan"), "source"),
		    T(ctl_jget(a.json, "plan"), "target"),
		    T(ctl_jget(a.json, "plan"), "priority"),
		    T(ctl_jget(a.json, "plan"), "order"),
		    T(ctl_jget(a.json, "plan"), "id"));
	ctl_answer_free(&a);
	return rc;
}

static int
plan_action(struct ctl *c, const char *id, const char *action)
{
	struct ctl_answer a;
	json_t *body = NULL;
	char path[128];
	int rc;

	if (plan_path(id, action, path, sizeof(path)) < 0)
		return CTL_USAGE;
	if (c->o.reason != NULL)
		body = json_pack("{s:s}", "reason", c->o.reason);
	rc = ctl_api(c, "POST", path, body, 0, &a);
	json_decref(body);
	if (rc == CTL_OK && !ctl_json_or(c, &a))
		printf("plan %s: %s\n", id, T(ctl_jget(a.json, "plan"),
		    "state"));
	ctl_answer_free(&a);
	return rc;
}

int
cmd_plan_pause(struct ctl *c, char **args, int n)
{
	(void)n;
	return plan_action(c, args[0], "pause");
}

int
cmd_plan_resume(struct ctl *c, char **args, int n)
{
	(void)n;
	return plan_action(c, args[0], "resume");
}

int
cmd_plan_cancel(struct ctl *c, char **args, int n)
{
	(void)n;
	return plan_action(c, args[0], "cancel");
}
