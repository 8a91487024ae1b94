/*
 * api_sys.c — the daemon's own routes: GET /api/health (liveness and
 * readiness), GET /api/status (the summary vnamigctl shows), GET /metrics
 * (Prometheus text) and GET /api/openapi.json (the API's description,
 * http/openapi.json, compiled in).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "src/api/api.h"
#include "src/daemon.h"
#include "src/mig/mig.h"
#include "src/net/net.h"
#include "src/net/store_loop.h"
#include "src/util/metrics.h"
#include "store/audit.h"
#include "store/spool.h"

/* http/openapi.json, NUL-terminated (src/api/openapi_doc.c, generated). */
extern const char api_openapi_doc[];

void
api_health(struct api_req *q)
{
	int ready;
	json_t *h = daemon_health(q->d, &ready);

	api_reply_h(q, ready ? 200 : 503, h, ready ? NULL :
	    "Retry-After: 10\r\n");
}

void
api_status(struct api_req *q)
{
	int sready;
	json_t *st;
	struct audit *a = api_audit_log(q);

	/* the parts of the health answer it shows, without building the
	 * rest (the status route is polled by vnamigctl watch) */
	st = json_pack("{s:s, s:s, s:I, s:b, s:s, s:o, s:{s:I, s:I}, s:o, "
	    "s:i}",
	    "version", PACKAGE_VERSION,
	    "node", api_conf(q)->node.ae_title,
	    "uptime_s", (json_int_t)daemon_uptime_s(q->d),
	    "ready", daemon_ready(q->d),
	    "status", daemon_status_word(q->d),
	    "store", store_loop_health(daemon_state(q->d), &sready),
	    "audit", "size", (json_int_t)audit_size(a),
	    "durable_size", (json_int_t)audit_durable_size(a),
	    "batches", api_batches_counts(api_batches_of(q)),
	    "connections", (int)net_server_nconns(daemon_net(q->d)));
	{
		struct spool_stats sp;

		spool_stats(daemon_spool(q->d), &sp);
		json_object_set_new(json_object_get(st, "store"), "spool",
		    json_pack("{s:s, s:I, s:I, s:I}", "dir",
		    api_conf(q)->storage.spool_dir, "segments",
		    (json_int_t)sp.segments, "bytes", (json_int_t)sp.bytes,
		    "instances", (json_int_t)sp.live_records));
	}
	/* What the migration engine is moving now (the batches it works) */
	json_object_set_new(st, "progress", mig_status(daemon_mig(q->d)));
	api_reply(q, 200, st);
}

void
api_metrics(struct api_req *q)
{
	size_t len;
	char *text = metrics_text(api_metrics_of(q), &len);

	api_reply_text(q, 200, "text/plain; version=0.0.4; charset=utf-8",
	    text, len);
	free(text);
}

void
api_openapi(struct api_req *q)
{
	api_reply_text(q, 200, "application/json", api_openapi_doc,
	    strlen(api_openapi_doc));
}
