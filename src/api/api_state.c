/*
 * api_state.c — named checkpoints and backups of the state over HTTP
 * (store/store_ckpt.c does the work; vnamig-state does the same offline).
 *
 * A restore replaces the state under a running daemon, so it is done the
 * safe way: the request is recorded durably, the daemon drains as on
 * SIGTERM and starts itself again, and the new process restores before
 * it opens anything (daemon_restore). The answer (202) says so.
 *
 * Checkpoints are hard links and take milliseconds on the loop. A backup
 * copies the state and runs on the loop too (the live store must not
 * change under RocksDB's backup engine's view of the audit tree); a
 * backup's verification, a trial restore into scratch space, reads only
 * the backup directory and runs on a thread of its own.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "src/api/api.h"
#include "src/daemon.h"
#include "src/net/net.h"
#include "src/util/log.h"
#include "store/store_ckpt.h"

static json_t *
ckpt_json(const struct store_ckpt_info *c)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:b}", "name",
	    c->name, "created", c->created, "reason",
	    store_ckpt_reason_name(c->reason), "audit_size",
	    (json_int_t)c->audit_size, "audit_root", c->audit_root, "bytes",
	    (json_int_t)c->bytes, "complete", c->complete);
}

static int
status_http(enum store_ckpt_status s)
{
	switch (s) {
	case STORE_CKPT_OK: return 200;
	case STORE_CKPT_BADARG: return 422;
	case STORE_CKPT_EXISTS: return 409;
	case STORE_CKPT_NOTFOUND: return 404;
	case STORE_CKPT_DAMAGED: return 409;
	default: return 500;
	}
}

void
api_ckpt_list(struct api_req *q)
{
	struct store_ckpt_info *v = NULL;
	size_t n = 0;
	char err[512];
	json_t *arr;

	if (store_ckpt_list(daemon_data_dir(q->d), &v, &n, err,
	    sizeof(err)) != STORE_CKPT_OK) {
		api_error(q, 500, "read_failed", NULL, "%s", err);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, ckpt_json(&v[i]));
	free(v);
	api_reply(q, 200, json_pack("{s:o}", "checkpoints", arr));
}

static void
ckpt_done(struct api_req *q, int err)
{
	json_t *c = q->priv;

	q->priv = NULL;
	if (err) {
		/* the checkpoint exists; only its audit record failed */
		json_decref(c);
		api_error(q, 503, "store_unavailable", NULL, "the checkpoint "
		    "was made but its audit record could not be written: %s",
		    store_error(api_store(q)));
		return;
	}
	api_reply(q, 201, json_pack("{s:o}", "checkpoint", c));
}

void
api_ckpt_create(struct api_req *q)
{
	const char *name = json_string_value(json_object_get(q->body,
	    "name"));
	struct store_ckpt_info info;
	enum store_ckpt_status s;
	struct store_batch *b;
	char err[512];

	if (name == NULL || !store_ckpt_name_ok(name, err, sizeof(err))) {
		api_error(q, 422, "invalid_field", json_pack("{s:s}", "field",
		    "name"), "%s", name == NULL ? "give the checkpoint a "
		    "name: {\"name\": \"before-upgrade\"}" : err);
		return;
	}
	if (!api_writable(q))
		return;
	s = store_ckpt_create(api_store(q), api_audit_log(q),
	    daemon_data_dir(q->d), name, STORE_CKPT_REQUEST, &info, err,
	    sizeof(err));
	if (s != STORE_CKPT_OK) {
		api_error(q, status_http(s), s == STORE_CKPT_EXISTS ? "exists" :
		    "checkpoint_failed", NULL, "%s", err);
		return;
	}
	log_info("state-checkpoint", "name=%s reason=request key=%s "
	    "audit_size=%llu", log_q(name), log_q(q->who.key),
	    (unsigned long long)info.audit_size);
	if ((b = api_begin(q)) == NULL)
		return;
	q->priv = ckpt_json(&info);
	api_commit(q, b, json_pack("{s:s, s:{s:s, s:s, s:I, s:s}, s:s}",
	    "event", "state.checkpoint", "object", "name", name, "reason",
	    "request", "audit_size", (json_int_t)info.audit_size,
	    "audit_root", info.audit_root, "outcome", "ok"), ckpt_done);
}

static void
restore_logged(struct api_req *q, int err)
{
	char *name = q->priv, e[512];

	q->priv = NULL;
	if (err) {
		free(name);
		api_error(q, 503, "store_unavailable", NULL, "the restore "
		    "request could not be recorded in the audit log: %s; "
		    "nothing was changed", store_error(api_store(q)));
		return;
	}
	if (daemon_restore(q->d, name, e, sizeof(e)) < 0) {
		/* the request's leaf says ok: say what became of it */
		api_audit(q, json_pack("{s:s, s:{s:s}, s:s, s:s}", "event",
		    "state.restore.failed", "object", "name", name, "outcome",
		    "failed", "reason", e));
		free(name);
		api_error(q, 500, "restore_failed", NULL, "%s", e);
		return;
	}
	api_reply(q, 202, json_pack("{s:{s:s, s:s}, s:s}", "restore", "name",
	    name, "state", "pending", "message", "vnamigd is draining and "
	    "will start again with the checkpoint restored; watch "
	    "GET /api/health and the log (restore-done)"));
	free(name);
}

void
api_ckpt_restore(struct api_req *q)
{
	const char *name = http_match_param(&q->m, "name");
	struct store_ckpt_info *v = NULL;
	struct store_batch *b;
	size_t n = 0;
	char err[512];
	int found = 0, complete = 0;

	if (!store_ckpt_name_ok(name, err, sizeof(err))) {
		api_error(q, 422, "invalid_name", NULL, "%s", err);
		return;
	}
	if (store_ckpt_list(daemon_data_dir(q->d), &v, &n, err,
	    sizeof(err)) != STORE_CKPT_OK) {
		api_error(q, 500, "read_failed", NULL, "%s", err);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0) {
			found = 1;
			complete = v[i].complete;
		}
	free(v);
	if (!found || !complete) {
		api_error(q, found ? 409 : 404, found ? "incomplete" :
		    "not_found", NULL, found ? "checkpoint \"%s\" is "
		    "incomplete (its creation was cut short); it cannot be "
		    "restored" : "no checkpoint \"%s\"; see GET "
		    "/api/checkpoints", name);
		return;
	}
	if ((b = api_begin(q)) == NULL)
		return;
	if ((q->priv = strdup(name)) == NULL)
		abort();
	api_commit(q, b, json_pack("{s:s, s:{s:s}, s:s}", "event",
	    "state.restore.requested", "object", "name", name, "outcome",
	    "ok"), restore_logged);
}

/* ---------------------------------------------------------------------- */
/* Backups, into storage.backup_dir. */

static const char *
backup_dir(struct api_req *q)
{
	const char *dir = api_conf(q)->storage.backup_dir;

	if (dir == NULL)
		api_error(q, 409, "not_configured", NULL, "no backup directory: "
		    "set storage.backup_dir in the configuration (on another "
		    "disk, ideally) and reload");
	return dir;
}

static json_t *
backup_json(const struct store_ckpt_backup *b)
{
	return json_pack("{s:i, s:s, s:I, s:i, s:b}", "id", (int)b->id,
	    "created", b->created, "size", (json_int_t)b->size, "files",
	    (int)b->files, "audit", b->have_audit);
}

void
api_backup_list(struct api_req *q)
{
	const char *dir = backup_dir(q);
	struct store_ckpt_backup *v = NULL;
	enum store_ckpt_status s;
	size_t n = 0;
	char err[512];
	json_t *arr;

	if (dir == NULL)
		return;
	s = store_ckpt_backup_list(dir, &v, &n, err, sizeof(err));
	if (s != STORE_CKPT_OK && s != STORE_CKPT_NOTFOUND) {
		api_error(q, 500, "read_failed", NULL, "%s", err);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, backup_json(&v[i]));
	free(v);
	api_reply(q, 200, json_pack("{s:o, s:s}", "backups", arr, "dir",
	    dir));
}

static void
backup_done(struct api_req *q, int err)
{
	json_t *j = q->priv;

	q->priv = NULL;
	if (err) {
		json_decref(j);
		api_error(q, 503, "store_unavailable", NULL, "the backup was "
		    "made but its audit record could not be written: %s",
		    store_error(api_store(q)));
		return;
	}
	api_reply(q, 201, json_pack("{s:o}", "backup", j));
}

void
api_backup_create(struct api_req *q)
{
	const char *dir = backup_dir(q);
	struct store_ckpt_backup nb;
	enum store_ckpt_status s;
	struct store_batch *b;
	char err[512];

	if (dir == NULL)
		return;
	if (!api_writable(q))
		return;
	s = store_ckpt_backup_create(api_store(q), api_audit_log(q),
	    daemon_data_dir(q->d), dir, &nb, err, sizeof(err));
	if (s != STORE_CKPT_OK) {
		api_error(q, status_http(s), "backup_failed", NULL, "%s", err);
		return;
	}
	log_info("state-backup", "id=%u dir=%s key=%s size=%llu", nb.id,
	    log_q(dir), log_q(q->who.key), (unsigned long long)nb.size);
	if ((b = api_begin(q)) == NULL)
		return;
	q->priv = backup_json(&nb);
	api_commit(q, b, json_pack("{s:s, s:{s:i, s:s, s:I, s:I, s:s}, s:s}",
	    "event", "state.backup", "object", "id", (int)nb.id, "dir", dir,
	    "bytes", (json_int_t)nb.size, "audit_size",
	    (json_int_t)nb.audit_size, "audit_root", nb.audit_root,
	    "outcome", "ok"), backup_done);
}

/* Verification on a thread; the answer comes back through a pipe. */
static int verifying;	/* one trial restore at a time */

struct verify {
	struct api_req		*q;
	char			*dir;
	uint32_t		 id;
	enum store_ckpt_status	 s;
	char			 err[1024];
	int			 fd[2];
};

static void
verify_back(evutil_socket_t fd, short what, void *arg)
{
	struct verify *v = arg;
	struct api_req *q = v->q;
	char c;

	(void)what;
	(void)!read(fd, &c, 1);
	close(v->fd[0]);
	close(v->fd[1]);
	verifying = 0;
	log_info("state-backup-verify", "id=%u dir=%s status=%s error=%s",
	    v->id, log_q(v->dir), store_ckpt_status_name(v->s),
	    log_q(v->err[0] ? v->err : "-"));
	if (v->s == STORE_CKPT_OK)
		api_reply(q, 200, json_pack("{s:{s:i}, s:b}", "backup", "id",
		    (int)v->id, "ok", 1));
	else if (v->s == STORE_CKPT_DAMAGED)
		api_reply(q, 200, json_pack("{s:{s:i}, s:b, s:s}", "backup",
		    "id", (int)v->id, "ok", 0, "problem", v->err));
	else
		api_error(q, status_http(v->s), "verify_failed", NULL, "%s",
		    v->err);
	free(v->dir);
	free(v);
}

static void *
verify_thread(void *arg)
{
	struct verify *v = arg;

	v->s = store_ckpt_backup_verify(v->dir, v->id, v->err,
	    sizeof(v->err));
	(void)!write(v->fd[1], "x", 1);
	return NULL;
}

void
api_backup_verify(struct api_req *q)
{
	const char *dir, *ids;
	struct verify *v;
	pthread_t t;
	pthread_attr_t at;
	char *end;
	unsigned long id;

	/* backup_dir answers (and frees q) when there is none: nothing of
	 * q may be read after that */
	if ((dir = backup_dir(q)) == NULL)
		return;
	ids = http_match_param(&q->m, "id");
	if (verifying) {
		api_error(q, 409, "busy", NULL, "a backup is being verified; "
		    "one runs at a time (each is a trial restore): try again "
		    "when it is done");
		return;
	}
	errno = 0;
	id = strtoul(ids, &end, 10);
	if (*ids < '1' || *ids > '9' || *end != '\0' || errno ||
	    id > UINT32_MAX) {
		api_error(q, 400, "bad_path", NULL, "a backup is named by its "
		    "id (1, 2, ...); see GET /api/backups");
		return;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL || (v->dir = strdup(dir)) ==
	    NULL)
		abort();
	v->q = q;
	v->id = (uint32_t)id;
	verifying = 1;
	if (pipe(v->fd) < 0) {
		free(v->dir);
		free(v);
		verifying = 0;
		api_error(q, 500, "verify_failed", NULL, "cannot start the "
		    "verification: %s", strerror(errno));
		return;
	}
	event_base_once(net_server_base(daemon_net(q->d)), v->fd[0], EV_READ,
	    verify_back, v, NULL);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, verify_thread, v) != 0) {
		v->s = STORE_CKPT_FAILED;
		snprintf(v->err, sizeof(v->err), "cannot start a thread");
		(void)!write(v->fd[1], "x", 1);
	}
	pthread_attr_destroy(&at);
}
