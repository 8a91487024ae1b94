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
#include "src/net/store_loop.h"
#include "src/util/metrics.h"
#include "store/audit.h"

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
	int ready;
	json_t *h = daemon_health(q->d, &ready), *st;
	struct audit *a = api_audit_log(q);

	st = json_pack("{s:s, s:O, s:I, s:b, s:s, s:O, s:{s:I, s:I}, s:o, "
	    "s:O}",
	    "version", PACKAGE_VERSION,
	    "node", json_object_get(h, "ae_title"),
	    "uptime_s", (json_int_t)daemon_uptime_s(q->d),
	    "ready", ready,
	    "status", json_string_value(json_object_get(h, "status")),
	    "store", json_object_get(h, "store"),
	    "audit", "size", (json_int_t)audit_size(a),
	    "durable_size", (json_int_t)audit_durable_size(a),
	    "batches", api_batches_counts(api_batches_of(q)),
	    "connections", json_object_get(h, "connections"));
	/* What the migration engine moves: no engine yet, so nothing is in
	 * flight and the rate and ETA are unknown (null), not zero. */
	json_object_set_new(st, "progress", json_pack("{s:i, s:i, s:i, s:i, "
	    "s:i, s:n, s:n}", "studies_done", 0, "studies_total", 0,
	    "instances_done", 0, "instances_total", 0, "bytes_done", 0,
	    "rate_bytes_s", "eta_s"));
	json_decref(h);
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
