/*
 * api_node.c — pausing and resuming the migration engine for the whole
 * node (/api/node) or one source archive (/api/sources/{name}): no new
 * migration step starts there; steps under way finish (a retrieve or a
 * send in flight is not cut). The pause record is durable, audited and
 * survives restarts; once it is durable a named checkpoint of the whole
 * state is taken ("pause-node-…", "pause-<source>-…"), so that an
 * operator can go back to the moment of the pause (POST
 * /api/checkpoints/{name}/restore). A batch's pause takes one too
 * (api_batch.c calls api_pause_checkpoint).
 */
#include "config.h"

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
#include "src/net/store_loop.h"
#include "src/util/log.h"
#include "store/store_ckpt.h"

void
api_pause_checkpoint(struct api_req *q, const char *label)
{
	struct store_ckpt_info info;
	enum store_ckpt_status s;
	char name[STORE_CKPT_NAME_MAX + 32], err[512], t[32];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(t, sizeof(t), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(name, sizeof(name), "pause-%.40s-%s", label, t);
	s = store_ckpt_create(api_store(q), api_audit_log(q),
	    daemon_data_dir(q->d), name, STORE_CKPT_PAUSE, &info, err,
	    sizeof(err));
	if (s == STORE_CKPT_EXISTS)
		return;		/* two pauses in one second: one is enough */
	if (s != STORE_CKPT_OK) {
		/* the pause stands; the checkpoint's failure is told */
		log_warn("state-checkpoint-failed", "name=%s reason=pause "
		    "error=%s", log_q(name), log_q(err));
		api_audit(q, json_pack("{s:s, s:{s:s, s:s}, s:s, s:s}",
		    "event", "state.checkpoint", "object", "name", name,
		    "reason", "pause", "outcome", "failed", "reason_text",
		    err));
		return;
	}
	log_info("state-checkpoint", "name=%s reason=pause key=%s "
	    "audit_size=%llu", log_q(name), log_q(q->who.key),
	    (unsigned long long)info.audit_size);
	api_audit(q, json_pack("{s:s, s:{s:s, s:s, s:I, s:s}, s:s}", "event",
	    "state.checkpoint", "object", "name", name, "reason", "pause",
	    "audit_size", (json_int_t)info.audit_size, "audit_root",
	    info.audit_root, "outcome", "ok"));
}

/* What a source looks like to the operator. */
static json_t *
source_json(struct api_req *q, const struct conf_peer *p)
{
	json_t *pause = mig_pauses(daemon_mig(q->d), p->name);

	return json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:b, s:o, s:o}",
	    "name", p->name, "ae_title", p->ae_title, "host", p->host,
	    "port", (int)p->port, "retrieve", p->retrieve == CONF_RETRIEVE_GET ?
	    "get" : "move", "window", p->window.set ? p->window.text :
	    "always", "paused", pause != NULL, "pause", pause ? pause :
	    json_null(), "breaker", mig_breaker(daemon_mig(q->d), p));
}

static json_t *
node_json(struct api_req *q)
{
	json_t *pause = mig_pauses(daemon_mig(q->d), NULL);

	return json_pack("{s:s, s:b, s:o, s:o}", "ae_title",
	    api_conf(q)->node.ae_title, "paused", pause != NULL, "pause",
	    pause ? pause : json_null(), "engine",
	    mig_status(daemon_mig(q->d)));
}

/* A pause or resume being made durable. */
struct change {
	char	*source;	/* NULL: the node */
	json_t	*rec;		/* NULL: resume */
};

/*
 * Changes on their way to the disk, by scope ("" the node, else the
 * source's name): what the last one asked for, and how many are out. A
 * pause or resume is judged against that, not the state in force, which
 * changes only once a change is durable: four pauses at once were each
 * answered 200 (each its audit leaf and checkpoint), and a pause sent
 * while a resume was being stored was told "already paused", the node
 * then running.
 */
struct inflight {
	char		 scope[CONF_NAME_MAX + 1];
	int		 paused;	/* what the last one asked for */
	unsigned	 n;
};
static struct inflight *inflight;
static size_t ninflight;

static struct inflight *
inflight_find(const char *source)
{
	for (size_t i = 0; i < ninflight; i++)
		if (strcmp(inflight[i].scope, source ? source : "") == 0)
			return &inflight[i];
	return NULL;
}

static void
inflight_add(const char *source, int paused)
{
	struct inflight *f = inflight_find(source);

	if (f == NULL) {
		if ((f = reallocarray(inflight, ninflight + 1,
		    sizeof(*f))) == NULL)
			abort();
		inflight = f;
		f = &inflight[ninflight++];
		snprintf(f->scope, sizeof(f->scope), "%s", source ? source :
		    "");
		f->n = 0;
	}
	f->paused = paused;
	f->n++;
}

static void
inflight_done(const char *source)
{
	struct inflight *f = inflight_find(source);

	if (f != NULL && --f->n == 0)
		*f = inflight[--ninflight];
}

static void
changed(struct api_req *q, int err)
{
	struct change *c = q->priv;

	q->priv = NULL;
	inflight_done(c->source);
	if (err)
		api_error(q, 503, "store_unavailable", NULL, "the change could "
		    "not be stored: %s; nothing changed", store_error(
		    api_store(q)));
	else {
		mig_pause_apply(daemon_mig(q->d), c->source, c->rec);
		if (c->rec != NULL)
			api_pause_checkpoint(q, c->source ? c->source : "node");
		if (c->source != NULL)
			api_reply(q, 200, json_pack("{s:o}", "source",
			    source_json(q, conf_peer_by_name(api_conf(q),
			    c->source))));
		else
			api_reply(q, 200, json_pack("{s:o}", "node",
			    node_json(q)));
	}
	json_decref(c->rec);
	free(c->source);
	free(c);
}

static void
pause_or_resume(struct api_req *q, const char *source, int on)
{
	struct store_batch *b;
	struct change *c;
	struct inflight *f;
	json_t *reason = json_object_get(q->body, "reason"), *now;
	char t[32];
	int paused;

	if (reason != NULL && (!json_is_string(reason) ||
	    json_string_length(reason) > 1024)) {
		api_error(q, 422, "invalid_field", json_pack("{s:s}", "field",
		    "reason"), "reason must be a string of at most 1024 "
		    "characters");
		return;
	}
	if ((f = inflight_find(source)) != NULL)
		paused = f->paused;
	else {
		now = mig_pauses(daemon_mig(q->d), source);
		paused = now != NULL;
		json_decref(now);
	}
	if (paused == on) {
		api_error(q, 409, "invalid_transition", NULL, "%s%s is already "
		    "%s%s", source ? "source " : "the node", source ? source :
		    "", on ? "paused" : "running", f != NULL ? " (a change "
		    "to that is being stored)" : "");
		return;
	}
	if ((b = api_begin(q)) == NULL)
		return;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		abort();
	if (source != NULL && (c->source = strdup(source)) == NULL)
		abort();
	if (on) {
		api_time((int64_t)time(NULL), t);
		c->rec = json_pack("{s:s, s:s, s:s}", "by", q->who.key,
		    "time", t, "reason", reason ? json_string_value(reason) :
		    "");
	}
	mig_pause_put(b, source, c->rec);
	inflight_add(source, on);
	q->priv = c;
	api_commit(q, b, json_pack("{s:s, s:{s:s, s:s}, s:s}", "event",
	    on ? "migration.pause" : "migration.resume", "object", "scope",
	    source ? "source" : "node", "source", source ? source : "",
	    "outcome", "ok"), changed);
}

/* The {name} of the path: a configured source, or 404 answered. */
static const struct conf_peer *
source_or_answer(struct api_req *q)
{
	const char *name = http_match_param(&q->m, "name");
	const struct conf_peer *p = conf_peer_by_name(api_conf(q), name);

	if (p == NULL || !(p->role & CONF_ROLE_SOURCE)) {
		api_error(q, 404, "not_found", NULL, "no source peer named "
		    "\"%.64s\" in the configuration", name);
		return NULL;
	}
	return p;
}

void
api_progress(struct api_req *q)
{
	api_reply(q, 200, mig_progress_all(daemon_mig(q->d)));
}

void
api_node_get(struct api_req *q)
{
	api_reply(q, 200, json_pack("{s:o}", "node", node_json(q)));
}

void
api_node_pause(struct api_req *q)
{
	pause_or_resume(q, NULL, 1);
}

void
api_node_resume(struct api_req *q)
{
	pause_or_resume(q, NULL, 0);
}

void
api_sources_list(struct api_req *q)
{
	const struct conf *c = api_conf(q);
	json_t *a = json_array();

	for (size_t i = 0; i < c->npeers; i++)
		if (c->peers[i].role & CONF_ROLE_SOURCE)
			json_array_append_new(a, source_json(q, &c->peers[i]));
	api_reply(q, 200, json_pack("{s:o}", "sources", a));
}

void
api_source_get(struct api_req *q)
{
	const struct conf_peer *p = source_or_answer(q);

	if (p != NULL)
		api_reply(q, 200, json_pack("{s:o}", "source",
		    source_json(q, p)));
}

void
api_source_pause(struct api_req *q)
{
	const struct conf_peer *p = source_or_answer(q);

	if (p != NULL)
		pause_or_resume(q, p->name, 1);
}

void
api_source_resume(struct api_req *q)
{
	const struct conf_peer *p = source_or_answer(q);

	if (p != NULL)
		pause_or_resume(q, p->name, 0);
}
