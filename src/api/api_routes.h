/*
 * api_routes.h — every route of the REST API, once: method, path pattern,
 * handler, least role, flags, body limit (0 = limits.http_body) and the
 * name used in metrics. Included with API_ROUTE defined: src/api/api.c
 * builds the router's table from it, t/fuzz/fuzz_http.c the same table
 * without handlers, and t/openapi.t checks http/openapi.json against it.
 */
API_ROUTE("GET", "/api/health", api_health, CONF_API_VIEWER, API_OPEN_HEALTH,
    0, "health")
API_ROUTE("GET", "/api/status", api_status, CONF_API_VIEWER, 0, 0, "status")
API_ROUTE("GET", "/metrics", api_metrics, CONF_API_VIEWER, API_OPEN_METRICS,
    0, "metrics")
API_ROUTE("GET", "/api/openapi.json", api_openapi, CONF_API_VIEWER, 0, 0,
    "openapi")
API_ROUTE("GET", "/api/keys", api_keys_list, CONF_API_ADMIN, 0, 0,
    "keys.list")
API_ROUTE("POST", "/api/keys", api_keys_create, CONF_API_ADMIN, API_JSON |
    API_MUTATES, KB(4), "keys.create")
API_ROUTE("DELETE", "/api/keys/{id}", api_keys_delete, CONF_API_ADMIN,
    API_MUTATES, KB(1), "keys.delete")
API_ROUTE("GET", "/api/batches", api_batch_list, CONF_API_VIEWER, 0, 0,
    "batches.list")
API_ROUTE("POST", "/api/batches", api_batch_create, CONF_API_OPERATOR,
    API_JSON | API_MUTATES, KB(16384), "batches.create")
API_ROUTE("GET", "/api/batches/{id}", api_batch_get, CONF_API_VIEWER, 0, 0,
    "batches.get")
API_ROUTE("GET", "/api/batches/{id}/report", api_batch_report,
    CONF_API_VIEWER, 0, 0, "batches.report")
API_ROUTE("POST", "/api/batches/{id}/pause", api_batch_pause,
    CONF_API_OPERATOR, API_JSON | API_OPTJSON | API_MUTATES, KB(4),
    "batches.pause")
API_ROUTE("POST", "/api/batches/{id}/resume", api_batch_resume,
    CONF_API_OPERATOR, API_JSON | API_OPTJSON | API_MUTATES, KB(4),
    "batches.resume")
API_ROUTE("POST", "/api/batches/{id}/cancel", api_batch_cancel,
    CONF_API_OPERATOR, API_JSON | API_OPTJSON | API_MUTATES, KB(4),
    "batches.cancel")
API_ROUTE("POST", "/api/batch_sources/webhook", api_batch_webhook,
    CONF_API_OPERATOR, API_WEBHOOK | API_MUTATES, KB(16384), "webhook")
API_ROUTE("POST", "/api/batch_sources/webhook/{channel}", api_batch_webhook,
    CONF_API_OPERATOR, API_WEBHOOK | API_MUTATES, KB(16384), "webhook")
API_ROUTE("GET", "/api/hl7/messages", api_hl7_messages, CONF_API_VIEWER, 0,
    0, "hl7.messages")
API_ROUTE("POST", "/api/hl7/ingest", api_hl7_ingest, CONF_API_OPERATOR,
    API_RAW | API_MUTATES, KB(65536), "hl7.ingest")
API_ROUTE("POST", "/api/hl7/preview", api_hl7_preview, CONF_API_VIEWER,
    API_RAW, KB(1024), "hl7.preview")
API_ROUTE("GET", "/api/quarantine", api_quarantine, CONF_API_VIEWER, 0, 0,
    "quarantine.list")
API_ROUTE("GET", "/api/quarantine/{id}", api_quarantine_get, CONF_API_VIEWER,
    0, 0, "quarantine.get")
API_ROUTE("POST", "/api/quarantine/{id}/retry", api_quarantine_retry,
    CONF_API_OPERATOR, API_JSON | API_OPTJSON | API_MUTATES, KB(4),
    "quarantine.retry")
API_ROUTE("POST", "/api/quarantine/{id}/release", api_quarantine_release,
    CONF_API_OPERATOR, API_JSON | API_OPTJSON | API_MUTATES, KB(4),
    "quarantine.release")
API_ROUTE("POST", "/api/quarantine/{id}/reject", api_quarantine_reject,
    CONF_API_OPERATOR, API_JSON | API_OPTJSON | API_MUTATES, KB(4),
    "quarantine.reject")
API_ROUTE("GET", "/api/plans", api_plan_list, CONF_API_VIEWER, 0, 0,
    "plans.list")
API_ROUTE("POST", "/api/plans", api_plan_create, CONF_API_OPERATOR,
    API_JSON | API_MUTATES, KB(16), "plans.create")
API_ROUTE("GET", "/api/plans/{id}", api_plan_get, CONF_API_VIEWER, 0, 0,
    "plans.get")
API_ROUTE("POST", "/api/plans/{id}/pause", api_plan_pause, CONF_API_OPERATOR,
    API_JSON | API_OPTJSON | API_MUTATES, KB(4), "plans.pause")
API_ROUTE("POST", "/api/plans/{id}/resume", api_plan_resume,
    CONF_API_OPERATOR, API_JSON | API_OPTJSON | API_MUTATES, KB(4),
    "plans.resume")
API_ROUTE("POST", "/api/plans/{id}/cancel", api_plan_cancel,
    CONF_API_OPERATOR, API_JSON | API_OPTJSON | API_MUTATES, KB(4),
    "plans.cancel")
API_ROUTE("GET", "/api/node", api_node_get, CONF_API_VIEWER, 0, 0, "node.get")
API_ROUTE("GET", "/api/progress", api_progress, CONF_API_VIEWER, 0, 0,
    "progress")
API_ROUTE("POST", "/api/node/pause", api_node_pause, CONF_API_OPERATOR,
    API_JSON | API_OPTJSON | API_MUTATES, KB(4), "node.pause")
API_ROUTE("POST", "/api/node/resume", api_node_resume, CONF_API_OPERATOR,
    API_JSON | API_OPTJSON | API_MUTATES, KB(4), "node.resume")
API_ROUTE("GET", "/api/sources", api_sources_list, CONF_API_VIEWER, 0, 0,
    "sources.list")
API_ROUTE("GET", "/api/sources/{name}", api_source_get, CONF_API_VIEWER, 0, 0,
    "sources.get")
API_ROUTE("POST", "/api/sources/{name}/pause", api_source_pause,
    CONF_API_OPERATOR, API_JSON | API_OPTJSON | API_MUTATES, KB(4),
    "sources.pause")
API_ROUTE("POST", "/api/sources/{name}/resume", api_source_resume,
    CONF_API_OPERATOR, API_JSON | API_OPTJSON | API_MUTATES, KB(4),
    "sources.resume")
API_ROUTE("GET", "/api/audit/checkpoint", api_audit_checkpoint,
    CONF_API_VIEWER, 0, 0, "audit.checkpoint")
API_ROUTE("GET", "/api/audit/leaf/{seq}", api_audit_leaf, CONF_API_VIEWER, 0,
    0, "audit.leaf")
API_ROUTE("GET", "/api/audit/proof", api_audit_proof, CONF_API_VIEWER, 0, 0,
    "audit.proof")
API_ROUTE("GET", "/api/audit/consistency", api_audit_consistency,
    CONF_API_VIEWER, 0, 0, "audit.consistency")
API_ROUTE("GET", "/api/audit/export", api_audit_export, CONF_API_VIEWER, 0, 0,
    "audit.export")
API_ROUTE("GET", "/api/checkpoints", api_ckpt_list, CONF_API_VIEWER, 0, 0,
    "checkpoints.list")
API_ROUTE("POST", "/api/checkpoints", api_ckpt_create, CONF_API_OPERATOR,
    API_JSON | API_MUTATES, KB(4), "checkpoints.create")
API_ROUTE("POST", "/api/checkpoints/{name}/restore", api_ckpt_restore,
    CONF_API_ADMIN, API_JSON | API_OPTJSON | API_MUTATES, KB(4),
    "checkpoints.restore")
API_ROUTE("GET", "/api/backups", api_backup_list, CONF_API_ADMIN, 0, 0,
    "backups.list")
API_ROUTE("POST", "/api/backups", api_backup_create, CONF_API_ADMIN, API_JSON
    | API_OPTJSON | API_MUTATES, KB(4), "backups.create")
API_ROUTE("POST", "/api/backups/{id}/verify", api_backup_verify,
    CONF_API_ADMIN, API_JSON | API_OPTJSON, KB(4), "backups.verify")
