/*
 * conf.c — the YAML configuration → struct conf, driven by one schema
 * table per section. The same tables render the effective settings for
 * conf_dump()/conf_diff(), so a key cannot be parsed but not shown.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <openssl/evp.h>

#include "conf/conf.h"
#include "conf/conf_yaml.h"
#include "src/util/hex.h"
#include "src/util/notename.h"
#include "src/hl7/hl7.h"
#include "http/http_url.h"

enum ct {
	CT_NONE,	/* handled by the caller (lists, sections) */
	CT_STR,		/* any non-empty text */
	CT_PATH,	/* a file or directory name */
	CT_FILE,	/* a file that must be readable now */
	CT_HOST,	/* host name or address */
	CT_AE,		/* DICOM AE title, into char[17] */
	CT_NAME,	/* [A-Za-z0-9_.-]{1,64}, used in URLs */
	CT_PORT,	/* 1..65535 into uint16_t */
	CT_PORT0,	/* 0..65535 into uint16_t (0 = any free port) */
	CT_U32,		/* decimal, min..max */
	CT_SIZE,	/* conf_parse_size into uint64_t, min..max */
	CT_SIZE32,	/* conf_parse_size into uint32_t, min..max */
	CT_RATE,	/* conf_parse_rate into uint64_t */
	CT_DURATION,	/* conf_parse_duration into uint64_t ms, min..max */
	CT_BOOL,	/* true/false/yes/no/on/off into int */
	CT_ENUM,	/* one of choices[] into int (index) */
	CT_WINDOW,	/* conf_parse_window into struct conf_sched */
	CT_TLS,		/* a tls: mapping into struct conf_tls */
	CT_TLS_CLIENT,	/* the same, of a peer we connect to (no
			 * verify_peer: the peer is always verified) */
	CT_SECRET,	/* token text: hashed into uint8_t[32] */
	CT_SECRET_HEX,	/* 64 hex digits into uint8_t[32] */
	CT_SECRET_FILE,	/* token read from a file, hashed into uint8_t[32] */
};

struct ckey {
	const char		*name;
	enum ct			 type;
	size_t			 off;
	uint64_t		 min, max;
	const char *const	*choices;
	int			 required;
	int			 restart;	/* applying it needs a restart */
};

/* Where each value was given, by path, for checks that span keys. */
struct pos {
	char		 path[256];
	unsigned	 line, col;
};

struct ctx {
	struct cy_errs	*e;
	struct conf	*c;
	struct pos	*pos;
	size_t		 npos, cappos;
};

static const char *const roles[] = { "", "source", "target", "both", NULL };
static const char *const retrieves[] = { "move", "get", NULL };
static const char *const iqueries[] = { "auto", "study", "series", NULL };
static const char *const verifies[] = { "counts", "none", "readback",
	NULL };
static const char *const vlevels[] = { "bytes", "dataset", "pixel", NULL };
static const char *const acks[] = { "durable", "early", NULL };
static const char *const orders[] = { "oldest_first", "newest_first", NULL };
static const char *const syncs[] = { "always", "group", NULL };
static const char *const api_roles[] = { "viewer", "operator", "admin", NULL };
static const char *const levels[] = { "error", "warn", "info", "debug", NULL };

#define K(n, t, s, f) .name = n, .type = t, .off = offsetof(s, f)
#define NODE(n, t, f) K(n, t, struct conf, node.f)
#define LIM(n, t, f) K(n, t, struct conf, limits.f)
#define STO(n, t, f) K(n, t, struct conf, storage.f)
#define KB(x) ((uint64_t)(x) << 10)
#define MB(x) ((uint64_t)(x) << 20)
#define GB(x) ((uint64_t)(x) << 30)
#define SEC(x) ((uint64_t)(x) * 1000)

static const struct ckey node_keys[] = {
	{ NODE("ae_title", CT_AE, ae_title), .restart = 1 },
	{ NODE("data_dir", CT_PATH, data_dir), .restart = 1 },
	{ NODE("shard_index", CT_U32, shard_index), .max = 1023, .restart = 1 },
	{ NODE("shard_count", CT_U32, shard_count), .min = 1, .max = 1024,
	    .restart = 1 },
	{ .name = NULL }
};

static const struct ckey listen_keys[] = {
	{ K("address", CT_HOST, struct conf_listen, address), .restart = 1 },
	{ K("port", CT_PORT0, struct conf_listen, port), .restart = 1 },
	{ K("enabled", CT_BOOL, struct conf_listen, enabled), .restart = 1 },
	{ K("max_connections", CT_U32, struct conf_listen, max_connections),
	    .min = 1, .max = 1000000 },
	{ K("tls", CT_TLS, struct conf_listen, tls), .restart = 1 },
	{ .name = NULL }
};

static const struct ckey tls_keys[] = {
	{ K("cert", CT_FILE, struct conf_tls, cert) },
	{ K("key", CT_FILE, struct conf_tls, key) },
	{ K("ca", CT_FILE, struct conf_tls, ca) },
	{ K("verify_peer", CT_BOOL, struct conf_tls, verify_peer) },
	{ .name = NULL }
};

static const struct ckey tls_client_keys[] = {
	{ K("cert", CT_FILE, struct conf_tls, cert) },
	{ K("key", CT_FILE, struct conf_tls, key) },
	{ K("ca", CT_FILE, struct conf_tls, ca) },
	{ K("verify_host", CT_BOOL, struct conf_tls, verify_host) },
	{ .name = NULL }
};

static const struct ckey limits_keys[] = {
	{ LIM("max_pdu", CT_SIZE32, max_pdu), .min = 4096, .max = MB(16) },
	{ LIM("associations_in", CT_U32, associations_in), .min = 1,
	    .max = 100000 },
	{ LIM("associations_out", CT_U32, associations_out), .min = 1,
	    .max = 100000 },
	{ LIM("artim_timeout", CT_DURATION, artim_ms), .min = 100,
	    .max = SEC(3600) },
	{ LIM("dimse_timeout", CT_DURATION, dimse_ms), .min = 100,
	    .max = SEC(86400) },
	{ LIM("retrieve_timeout", CT_DURATION, retrieve_ms), .min = 1000,
	    .max = SEC(7 * 86400) },
	{ LIM("retrieve_stall", CT_DURATION, stall_ms), .min = 1000,
	    .max = SEC(86400) },
	{ LIM("async_window", CT_U32, async_window), .min = 1, .max = 64 },
	{ LIM("store_backlog", CT_SIZE, store_backlog), .min = KB(64),
	    .max = GB(1) },
	{ LIM("unread_answers", CT_SIZE, unread_answers), .min = KB(64),
	    .max = MB(64) },
	{ LIM("commit_timeout", CT_DURATION, commit_ms), .min = 1000,
	    .max = SEC(7 * 86400) },
	{ LIM("find_matches", CT_U32, find_matches), .min = 1,
	    .max = 100000000 },
	{ LIM("network_timeout", CT_DURATION, network_ms), .min = 100,
	    .max = SEC(3600) },
	{ LIM("idle_timeout", CT_DURATION, idle_ms), .min = 1000,
	    .max = SEC(86400) },
	{ LIM("shutdown_grace", CT_DURATION, shutdown_grace_ms),
	    .max = SEC(3600) },
	{ LIM("sequence_depth", CT_U32, sequence_depth), .min = 1,
	    .max = 1024 },
	{ LIM("http_body", CT_SIZE, http_body), .min = KB(1), .max = GB(64) },
	{ LIM("http_header", CT_SIZE32, http_header), .min = KB(1),
	    .max = MB(1) },
	{ LIM("mllp_frame", CT_SIZE, mllp_frame), .min = KB(1),
	    .max = MB(256) },
	{ LIM("mllp_pipeline", CT_U32, mllp_pipeline), .min = 1,
	    .max = 1024 },
	{ .name = NULL }
};

static const struct ckey peer_keys[] = {
	{ K("name", CT_NAME, struct conf_peer, name), .required = 1 },
	{ K("ae_title", CT_AE, struct conf_peer, ae_title), .required = 1 },
	{ K("host", CT_HOST, struct conf_peer, host), .required = 1 },
	{ K("port", CT_PORT, struct conf_peer, port), .required = 1 },
	{ K("role", CT_ENUM, struct conf_peer, role), .choices = roles,
	    .required = 1 },
	{ K("retrieve", CT_ENUM, struct conf_peer, retrieve),
	    .choices = retrieves },
	{ K("image_query", CT_ENUM, struct conf_peer, image_query),
	    .choices = iqueries },
	{ K("tls", CT_TLS_CLIENT, struct conf_peer, tls) },
	{ K("max_associations", CT_U32, struct conf_peer, max_associations),
	    .min = 1, .max = 10000 },
	{ K("bandwidth", CT_RATE, struct conf_peer, bandwidth) },
	{ K("window", CT_WINDOW, struct conf_peer, window) },
	{ K("max_pdu", CT_SIZE32, struct conf_peer, max_pdu), .min = 4096,
	    .max = MB(16) },
	{ K("verify", CT_ENUM, struct conf_peer, verify),
	    .choices = verifies },
	{ K("readback_percent", CT_U32, struct conf_peer, readback_percent),
	    .min = 1, .max = 100 },
	{ K("verify_level", CT_ENUM, struct conf_peer, verify_level),
	    .choices = vlevels },
	{ K("commit", CT_BOOL, struct conf_peer, commit) },
	{ K("push_to", CT_NAME, struct conf_peer, push_to) },
	{ .name = NULL }
};

static const struct ckey export_keys[] = {
	{ K("name", CT_NAME, struct conf_peer, name), .required = 1 },
	{ K("path", CT_PATH, struct conf_peer, export_path), .required = 1 },
	{ K("fsync", CT_BOOL, struct conf_peer, export_fsync) },
	{ K("bandwidth", CT_RATE, struct conf_peer, bandwidth) },
	{ K("window", CT_WINDOW, struct conf_peer, window) },
	{ .name = NULL }
};

#define MIG(n, t, f) K(n, t, struct conf, migration.f)
static const struct ckey migration_keys[] = {
	{ MIG("max_studies", CT_U32, max_studies), .min = 1, .max = 10000 },
	{ MIG("retrieve_attempts", CT_U32, retrieve_attempts), .min = 1,
	    .max = 100 },
	{ MIG("send_attempts", CT_U32, send_attempts), .min = 1, .max = 100 },
	{ MIG("retry_backoff", CT_DURATION, retry_ms), .min = 100,
	    .max = SEC(3600) },
	{ MIG("retry_backoff_max", CT_DURATION, retry_max_ms), .min = 100,
	    .max = SEC(86400) },
	{ MIG("breaker_failures", CT_U32, breaker_failures), .max = 1000 },
	{ MIG("breaker_open", CT_DURATION, breaker_open_ms), .min = 1000,
	    .max = SEC(3600) },
	{ MIG("quarantine_dir", CT_PATH, quarantine_dir), .restart = 1 },
	{ MIG("retrieve_ack", CT_ENUM, retrieve_ack_early), .choices = acks },
	{ MIG("push_stable", CT_DURATION, push_stable_ms), .min = 1000,
	    .max = SEC(86400) },
	{ MIG("retrieve_hold", CT_DURATION, retrieve_hold_ms),
	    .max = SEC(60) },
	{ MIG("order", CT_ENUM, newest_first), .choices = orders },
	{ .name = NULL }
};

static const struct ckey storage_keys[] = {
	{ STO("spool_dir", CT_PATH, spool_dir), .restart = 1 },
	{ STO("backup_dir", CT_PATH, backup_dir) },
	{ STO("spool_segment", CT_SIZE, spool_segment), .min = MB(1),
	    .max = GB(64) },
	{ STO("sync", CT_ENUM, sync), .choices = syncs, .restart = 1 },
	{ STO("commit_interval", CT_DURATION, commit_interval_ms),
	    .max = SEC(1) },
	{ STO("block_cache", CT_SIZE, block_cache), .min = MB(8),
	    .max = GB(1024), .restart = 1 },
	{ STO("write_buffer", CT_SIZE, write_buffer), .min = MB(1),
	    .max = GB(16), .restart = 1 },
	{ STO("max_open_files", CT_U32, max_open_files), .min = 64,
	    .max = 1000000, .restart = 1 },
	{ STO("min_free", CT_SIZE, min_free), .max = GB(1024 * 1024) },
	{ STO("checkpoint_interval", CT_DURATION, checkpoint_ms),
	    .max = SEC(30 * 86400) },
	{ STO("checkpoints_keep", CT_U32, checkpoints_keep), .min = 1,
	    .max = 10000 },
	{ .name = NULL }
};

static const struct ckey audit_keys[] = {
	{ K("key_file", CT_PATH, struct conf, audit.key_file), .restart = 1 },
	{ K("origin", CT_STR, struct conf, audit.origin), .restart = 1 },
	{ K("checkpoint_file", CT_PATH, struct conf, audit.checkpoint_file),
	    .restart = 1 },
	{ K("checkpoint_interval", CT_DURATION, struct conf,
	    audit.checkpoint_ms), .min = 1000, .max = SEC(86400) },
	{ .name = NULL }
};

static const struct ckey key_keys[] = {
	{ K("id", CT_NAME, struct conf_api_key, id), .required = 1 },
	{ K("role", CT_ENUM, struct conf_api_key, role), .choices = api_roles,
	    .required = 1 },
	{ K("token", CT_SECRET, struct conf_api_key, token_sha256) },
	{ K("token_sha256", CT_SECRET_HEX, struct conf_api_key,
	    token_sha256) },
	{ K("token_file", CT_SECRET_FILE, struct conf_api_key,
	    token_sha256) },
	{ .name = NULL }
};

static const struct ckey api_keys[] = {
	{ K("health_open", CT_BOOL, struct conf, api.health_open) },
	{ K("metrics_open", CT_BOOL, struct conf, api.metrics_open) },
	{ K("max_keys", CT_U32, struct conf, api.max_keys), .min = 1,
	    .max = 100000 },
	{ K("max_batch_items", CT_U32, struct conf, api.max_batch_items),
	    .min = 1, .max = 10000000 },
	{ .name = "keys" },	/* a list, handled by load_keys() */
	{ .name = "webhooks" },	/* a list, handled by load_webhooks() */
	{ .name = NULL }
};

static const struct ckey webhook_keys[] = {
	{ K("channel", CT_NAME, struct conf_webhook, channel), .required = 1 },
	{ K("anonymous", CT_BOOL, struct conf_webhook, anonymous) },
	{ K("replay_window", CT_DURATION, struct conf_webhook, replay_ms),
	    .min = 1000, .max = SEC(86400) },
	{ .name = "hmac_secret" },	/* text, never rendered */
	{ .name = "hmac_secret_file" },
	{ .name = "allow" },		/* a list of addresses / CIDRs */
	{ .name = NULL }
};

static const struct ckey hl7_keys[] = {
	{ K("catch_all", CT_NAME, struct conf, hl7.catch_all) },
	{ K("retention", CT_DURATION, struct conf, hl7.retention_ms),
	    .min = 60000, .max = SEC(10ULL * 365 * 86400) },
	{ K("max_inbox", CT_U32, struct conf, hl7.max_inbox), .min = 100,
	    .max = 100000000 },
	{ .name = "senders" },	/* a list, handled by load_hl7() */
	{ .name = NULL }
};

static const struct ckey sender_keys[] = {
	{ K("name", CT_NAME, struct conf_hl7_sender, name), .required = 1 },
	{ K("app", CT_STR, struct conf_hl7_sender, app), .required = 1 },
	{ K("facility", CT_STR, struct conf_hl7_sender, facility) },
	{ K("source", CT_NAME, struct conf_hl7_sender, source) },
	{ K("target", CT_NAME, struct conf_hl7_sender, target) },
	{ K("priority", CT_U32, struct conf_hl7_sender, priority), .max = 9 },
	{ K("prefetch_priority", CT_U32, struct conf_hl7_sender,
	    prefetch_priority), .max = 9 },
	{ K("accession", CT_STR, struct conf_hl7_sender, accession) },
	{ K("mrn", CT_STR, struct conf_hl7_sender, mrn) },
	{ K("study_uid", CT_STR, struct conf_hl7_sender, study_uid) },
	{ K("charset", CT_STR, struct conf_hl7_sender, charset) },
	{ .name = NULL }
};

static const struct ckey notify_keys[] = {
	{ K("max_outbox", CT_U32, struct conf, notify.max_outbox), .min = 1,
	    .max = 100000000 },
	{ .name = "webhooks" },	/* a list, handled by load_hooks() */
	{ .name = NULL }
};

static const struct ckey hook_keys[] = {
	{ K("name", CT_NAME, struct conf_notify_hook, name), .required = 1 },
	{ .name = "url", .required = 1 },	/* rendered apart */
	{ .name = "events", .required = 1 },	/* a list of patterns */
	{ .name = "hmac_secret" },	/* text, never rendered */
	{ .name = "hmac_secret_file" },
	{ K("ca", CT_FILE, struct conf_notify_hook, ca) },
	{ K("timeout", CT_DURATION, struct conf_notify_hook, timeout_ms),
	    .min = 100, .max = SEC(600) },
	{ K("max_attempts", CT_U32, struct conf_notify_hook, max_attempts),
	    .min = 1, .max = 1000 },
	{ K("backoff_min", CT_DURATION, struct conf_notify_hook,
	    backoff_min_ms), .min = 10, .max = SEC(3600) },
	{ K("backoff_max", CT_DURATION, struct conf_notify_hook,
	    backoff_max_ms), .min = 100, .max = SEC(86400) },
	{ .name = NULL }
};

static const struct ckey logging_keys[] = {
	{ K("level", CT_ENUM, struct conf, logging.level), .choices = levels },
	{ K("syslog", CT_BOOL, struct conf, logging.syslog) },
	{ K("ident", CT_NAME, struct conf, logging.ident) },
	{ K("phi", CT_BOOL, struct conf, logging.phi) },
	{ .name = NULL }
};

/* ---------------------------------------------------------------------- */
/* Small helpers. */

static char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		abort();
	return d;
}

static char *
xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
xprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

#define ERR(x, n, ...) cy_err((x)->e, (n)->line, (n)->col, __VA_ARGS__)

static void
pos_add(struct ctx *x, const char *path, const struct cy_node *n)
{
	if (x->npos == x->cappos) {
		size_t cap = x->cappos ? x->cappos * 2 : 64;
		struct pos *np = realloc(x->pos, cap * sizeof(*np));

		if (np == NULL)
			abort();
		x->pos = np;
		x->cappos = cap;
	}
	snprintf(x->pos[x->npos].path, sizeof(x->pos[0].path), "%s", path);
	x->pos[x->npos].line = n->line;
	x->pos[x->npos++].col = n->col;
}

/* The node where path was given, or fallback (a section, the root). */
static const struct cy_node *
pos_at(const struct ctx *x, const char *path, const struct cy_node *fallback,
    struct cy_node *tmp)
{
	for (size_t i = 0; i < x->npos; i++)
		if (strcmp(x->pos[i].path, path) == 0) {
			tmp->line = x->pos[i].line;
			tmp->col = x->pos[i].col;
			return tmp;
		}
	return fallback;
}

/* Levenshtein distance, for "did you mean" (short words only). */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[64], i, j;

	if (la >= 63 || lb >= 63)
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0], tmp;

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			tmp = row[j];
			row[j] = diag + (a[i - 1] != b[j - 1]);
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			if (tmp + 1 < row[j])
				row[j] = tmp + 1;
			diag = tmp;
		}
	}
	return row[lb];
}

static void
unknown_key(struct ctx *x, const struct cy_node *k, const struct ckey *keys,
    const char *where)
{
	char list[512], hint[128] = "";
	size_t n = 0, best = 3;

	list[0] = '\0';
	for (const struct ckey *d = keys; d->name; d++) {
		size_t dist = edit_distance(k->value, d->name);

		n += (size_t)snprintf(list + n, n < sizeof(list) ?
		    sizeof(list) - n : 0, "%s%s", d == keys ? "" : ", ",
		    d->name);
		if (n >= sizeof(list))
			n = sizeof(list) - 1;
		if (dist < best) {
			best = dist;
			snprintf(hint, sizeof(hint), " (did you mean \"%s\"?)",
			    d->name);
		}
	}
	ERR(x, k, "unknown key \"%.64s\" in %s; expected one of: %s%s",
	    k->value, where, list, hint);
}

static int
scalar(struct ctx *x, const struct cy_node *v, const char *path,
    const char *what)
{
	if (v->kind != CY_SCALAR) {
		ERR(x, v, "%s must be %s, found %s", path, what,
		    cy_kind_name(v->kind));
		return -1;
	}
	if (strlen(v->value) != v->len) {
		ERR(x, v, "%s holds a NUL byte; expected %s", path, what);
		return -1;
	}
	return 0;
}

/* The AE VR (PS3.5 6.2): up to 16 characters of the default repertoire,
 * no backslash or control characters, not all spaces. We also refuse "/"
 * and "..": AE titles end up in log fields and file names. Leading and
 * trailing spaces are not significant and are trimmed. */
static int
valid_ae(const char *s, char *out, const char **why)
{
	size_t len;

	while (*s == ' ')
		s++;
	len = strlen(s);
	while (len > 0 && s[len - 1] == ' ')
		len--;
	if (len == 0) {
		*why = "is empty or all spaces";
		return -1;
	}
	if (len > CONF_AE_MAX) {
		*why = "is longer than 16 characters";
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		if (s[i] < ' ' || s[i] > '~' || s[i] == '\\' || s[i] == '/') {
			*why = "holds a control character, backslash or '/'";
			return -1;
		}
	if (memmem(s, len, "..", 2) != NULL) {
		*why = "holds \"..\"";
		return -1;
	}
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

static int
valid_name(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > CONF_NAME_MAX || s[0] == '.' || s[0] == '-')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' ||
		    *s == '.'))
			return 0;
	return 1;
}

static int
parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
			return -1;
	}
	*out = v;
	return 0;
}

static void
sha256(const void *p, size_t n, uint8_t out[32])
{
	unsigned int len = 32;

	if (!EVP_Digest(p, n, out, &len, EVP_sha256(), NULL))
		abort();
}

/* Read a small secret file (a token), newline-trimmed. -1 + errno-ish
 * message on failure. */
static int
read_token_file(const char *path, char *buf, size_t cap, const char **why)
{
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		*why = strerror(errno);
		return -1;
	}
	n = read(fd, buf, cap);
	close(fd);
	if (n < 0) {
		*why = strerror(errno);
		return -1;
	}
	if ((size_t)n == cap) {
		*why = "file is larger than 4 KiB";
		return -1;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	if (strlen(buf) != (size_t)n || n == 0) {
		*why = "file is empty or holds a NUL byte";
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* One value. */

static void walk_map(struct ctx *x, const struct cy_node *m,
    const struct ckey *keys, void *base, const char *where);

static int
set_bool(struct ctx *x, const struct cy_node *v, const char *path, int *out)
{
	static const char *const t[] = { "true", "yes", "on", "True", "TRUE",
	    "Yes", "On", NULL };
	static const char *const f[] = { "false", "no", "off", "False",
	    "FALSE", "No", "Off", NULL };

	for (int i = 0; t[i]; i++)
		if (strcmp(v->value, t[i]) == 0)
			return *out = 1, 0;
	for (int i = 0; f[i]; i++)
		if (strcmp(v->value, f[i]) == 0)
			return *out = 0, 0;
	ERR(x, v, "%s is \"%.64s\"; expected true or false", path, v->value);
	return -1;
}

static int
set_enum(struct ctx *x, const struct cy_node *v, const struct ckey *d,
    const char *path, int *out)
{
	char list[256] = "";
	size_t n = 0;

	for (int i = 0; d->choices[i]; i++) {
		if (d->choices[i][0] == '\0')
			continue;
		if (strcmp(v->value, d->choices[i]) == 0)
			return *out = i, 0;
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
		    n ? ", " : "", d->choices[i]);
		if (n >= sizeof(list))
			n = sizeof(list) - 1;
	}
	ERR(x, v, "%s is \"%.64s\"; expected one of: %s", path, v->value,
	    list);
	return -1;
}

static int
check_range(struct ctx *x, const struct cy_node *v, const struct ckey *d,
    const char *path, uint64_t val, const char *unit)
{
	uint64_t max = d->max ? d->max : UINT64_MAX;

	if (val < d->min || val > max) {
		ERR(x, v, "%s = %.64s is out of range; expected %llu%s to "
		    "%llu%s", path, v->value, (unsigned long long)d->min, unit,
		    (unsigned long long)max, unit);
		return -1;
	}
	return 0;
}

static int
set_secret(struct ctx *x, const struct cy_node *v, const struct ckey *d,
    const char *path, uint8_t *out)
{
	char buf[4096];
	const char *why;

	switch (d->type) {
	case CT_SECRET:
		if (v->len < 12) {
			ERR(x, v, "%s is shorter than 12 characters; expected "
			    "a long random token", path);
			return -1;
		}
		sha256(v->value, v->len, out);
		return 0;
	case CT_SECRET_HEX:
		if (v->len != 64 || hex_decode(v->value, out, 32) < 0)
			goto badhex;
		return 0;
	default:
		if (read_token_file(v->value, buf, sizeof(buf), &why) < 0) {
			ERR(x, v, "%s: cannot read \"%.200s\": %s; expected a "
			    "readable file holding the token", path, v->value,
			    why);
			return -1;
		}
		sha256(buf, strlen(buf), out);
		explicit_bzero(buf, sizeof(buf));
		return 0;
	}
badhex:
	ERR(x, v, "%s must be 64 hexadecimal digits (the SHA-256 of the "
	    "token, e.g. from: printf %%s TOKEN | sha256sum)", path);
	return -1;
}

static int
set_text(struct ctx *x, const struct cy_node *v, const struct ckey *d,
    const char *path, void *field)
{
	const char *why;
	char **sp = field;

	if (v->len == 0) {
		ERR(x, v, "%s is empty; expected a value", path);
		return -1;
	}
	switch (d->type) {
	case CT_AE:
		if (valid_ae(v->value, field, &why) < 0) {
			ERR(x, v, "%s \"%.64s\" %s; expected an AE title of 1-16 "
			    "printable characters", path, v->value, why);
			return -1;
		}
		return 0;
	case CT_NAME:
		if (!valid_name(v->value)) {
			ERR(x, v, "%s \"%.64s\" is not a valid name; expected "
			    "1-64 of A-Z a-z 0-9 _ - . (not starting with . "
			    "or -)", path, v->value);
			return -1;
		}
		break;
	case CT_HOST:
		if (v->len > 253 || strpbrk(v->value, " /\\") != NULL) {
			ERR(x, v, "%s \"%.64s\" is not a host name or address",
			    path, v->value);
			return -1;
		}
		break;
	case CT_FILE:
		if (access(v->value, R_OK) != 0) {
			ERR(x, v, "%s: cannot read \"%.200s\": %s; expected a "
			    "readable file", path, v->value, strerror(errno));
			return -1;
		}
		break;
	default:
		break;
	}
	free(*sp);
	*sp = xstrdup(v->value);
	return 0;
}

static int
set_number(struct ctx *x, const struct cy_node *v, const struct ckey *d,
    const char *path, void *field)
{
	uint64_t u;
	const char *err = NULL;
	const char *unit = "";

	switch (d->type) {
	case CT_PORT:
	case CT_PORT0:
		if (parse_u64(v->value, &u) < 0 || u > 65535 ||
		    (d->type == CT_PORT && u == 0)) {
			ERR(x, v, "%s \"%.64s\" is not a port; expected %s to "
			    "65535", path, v->value, d->type == CT_PORT ? "1" :
			    "0 (any free port)");
			return -1;
		}
		*(uint16_t *)field = (uint16_t)u;
		return 0;
	case CT_U32:
		if (parse_u64(v->value, &u) < 0)
			err = "expected a whole number";
		break;
	case CT_SIZE:
	case CT_SIZE32:
		conf_parse_size(v->value, &u, &err);
		unit = " bytes";
		break;
	case CT_RATE:
		conf_parse_rate(v->value, &u, &err);
		break;
	default:	/* CT_DURATION */
		conf_parse_duration(v->value, &u, &err);
		unit = " ms";
		break;
	}
	if (err != NULL) {
		ERR(x, v, "%s = \"%.64s\": %s", path, v->value, err);
		return -1;
	}
	if (check_range(x, v, d, path, u, unit) < 0)
		return -1;
	if (d->type == CT_U32 || d->type == CT_SIZE32)
		*(uint32_t *)field = (uint32_t)u;
	else
		*(uint64_t *)field = u;
	return 0;
}

static void
set_value(struct ctx *x, const struct cy_node *v, const struct ckey *d,
    void *base, const char *path)
{
	void *field = (char *)base + d->off;
	struct conf_sched *sc;
	const char *err;

	if (d->type == CT_TLS || d->type == CT_TLS_CLIENT) {
		struct conf_tls *t = field;

		if (!cy_is_null(v))
			walk_map(x, v, d->type == CT_TLS ? tls_keys :
			    tls_client_keys, t, path);
		t->enabled = 1;
		return;
	}
	if (cy_is_null(v))
		return;		/* key present without a value: default */
	if (scalar(x, v, path, "a single value") < 0)
		return;
	switch (d->type) {
	case CT_BOOL:
		set_bool(x, v, path, field);
		break;
	case CT_ENUM:
		set_enum(x, v, d, path, field);
		break;
	case CT_SECRET:
	case CT_SECRET_HEX:
	case CT_SECRET_FILE:
		set_secret(x, v, d, path, field);
		break;
	case CT_WINDOW:
		sc = field;
		if (conf_parse_window(v->value, &sc->win, &err) < 0) {
			ERR(x, v, "%s = \"%.64s\": %s", path, v->value, err);
			break;
		}
		sc->set = 1;
		free(sc->text);
		sc->text = xstrdup(v->value);
		break;
	case CT_STR:
	case CT_PATH:
	case CT_FILE:
	case CT_HOST:
	case CT_AE:
	case CT_NAME:
		set_text(x, v, d, path, field);
		break;
	default:
		set_number(x, v, d, path, field);
		break;
	}
}

/* ---------------------------------------------------------------------- */
/* Mappings, sections, lists. */

/*
 * Walk mapping m against keys, storing into base. Reports unknown and
 * duplicate keys and missing required ones. Keys whose descriptor has no
 * type handler (like api.keys) are left to the caller, which looks them up
 * with find_key().
 */
static void
walk_map(struct ctx *x, const struct cy_node *m, const struct ckey *keys,
    void *base, const char *where)
{
	const struct cy_node *seen[32] = { NULL }, *given[32] = { NULL };
	char path[256];

	if (m->kind != CY_MAP) {
		ERR(x, m, "%s must be a mapping (key: value lines), found %s",
		    where, cy_kind_name(m->kind));
		return;
	}
	for (size_t i = 0; i + 1 < m->nkids; i += 2) {
		const struct cy_node *k = m->kids[i], *v = m->kids[i + 1];
		size_t j;

		if (k->kind != CY_SCALAR) {
			ERR(x, k, "a key in %s is %s; expected a plain name",
			    where, cy_kind_name(k->kind));
			continue;
		}
		for (j = 0; keys[j].name; j++)
			if (strcmp(keys[j].name, k->value) == 0)
				break;
		if (keys[j].name == NULL) {
			unknown_key(x, k, keys, where);
			continue;
		}
		if (seen[j] != NULL) {
			ERR(x, k, "duplicate key \"%s\" in %s (first given at "
			    "line %u); give each key once", k->value, where,
			    seen[j]->line);
			continue;
		}
		seen[j] = k;
		given[j] = v;
		snprintf(path, sizeof(path), "%s.%s", where, k->value);
		pos_add(x, path, v);
		if (keys[j].type != CT_NONE)
			set_value(x, v, &keys[j], base, path);
	}
	for (size_t j = 0; keys[j].name; j++)
		if (keys[j].required && seen[j] == NULL)
			ERR(x, m, "%s is missing the required key \"%s\"",
			    where, keys[j].name);
		else if (keys[j].required && cy_is_null(given[j]))
			/* a required key has no default to keep */
			ERR(x, seen[j], "%s.%s is empty; it is required: give "
			    "it a value", where, keys[j].name);
}

/* The value node of key name in mapping m, or NULL. */
static const struct cy_node *
find_key(const struct cy_node *m, const char *name)
{
	if (m == NULL || m->kind != CY_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < m->nkids; i += 2)
		if (m->kids[i]->kind == CY_SCALAR &&
		    strcmp(m->kids[i]->value, name) == 0)
			return m->kids[i + 1];
	return NULL;
}

static void
check_tls(struct ctx *x, const struct cy_node *at, const struct conf_tls *t,
    const char *where, int server)
{
	if (!t->enabled)
		return;
	if (server && (t->cert == NULL || t->key == NULL))
		ERR(x, at, "%s.tls needs both cert and key to serve TLS",
		    where);
	else if ((t->cert == NULL) != (t->key == NULL))
		ERR(x, at, "%s.tls gives %s without %s; give both for a client "
		    "certificate, or neither", where, t->cert ? "cert" : "key",
		    t->cert ? "key" : "cert");
	if (server && t->verify_peer && t->ca == NULL)
		ERR(x, at, "%s.tls.verify_peer needs ca: the CA bundle that "
		    "signs the clients' certificates", where);
}

static void
load_listen(struct ctx *x, const struct cy_node *m)
{
	static const struct {
		const char *name;
		size_t off;
	} l[] = {
		{ "dicom", offsetof(struct conf, dicom) },
		{ "http", offsetof(struct conf, http) },
		{ "mllp", offsetof(struct conf, mllp) },
	};
	static const struct ckey names[] = {
		{ .name = "dicom" }, { .name = "http" }, { .name = "mllp" },
		{ .name = NULL }
	};
	char where[64];

	if (m->kind != CY_MAP) {
		ERR(x, m, "listen must be a mapping with dicom:, http:, mllp:; "
		    "found %s", cy_kind_name(m->kind));
		return;
	}
	for (size_t i = 0; i + 1 < m->nkids; i += 2)
		if (m->kids[i]->kind != CY_SCALAR ||
		    (find_key(m, m->kids[i]->value) != m->kids[i + 1]))
			ERR(x, m->kids[i], "duplicate or invalid key in listen");
	for (size_t i = 0; i + 1 < m->nkids; i += 2) {
		const struct cy_node *k = m->kids[i];
		size_t j;

		if (k->kind != CY_SCALAR)
			continue;
		for (j = 0; j < 3; j++)
			if (strcmp(k->value, l[j].name) == 0)
				break;
		if (j == 3) {
			unknown_key(x, k, names, "listen");
			continue;
		}
		struct conf_listen *li = (void *)((char *)x->c + l[j].off);

		li->enabled = 1;
		snprintf(where, sizeof(where), "listen.%s", l[j].name);
		if (!cy_is_null(m->kids[i + 1]))
			walk_map(x, m->kids[i + 1], listen_keys, li, where);
		check_tls(x, k, &li->tls, where, 1);
	}
}

static void
peer_defaults(struct conf_peer *p)
{
	memset(p, 0, sizeof(*p));
	p->tls.verify_host = 1;
	p->retrieve = CONF_RETRIEVE_MOVE;
	p->readback_percent = 100;
	p->verify_level = CONF_VLEVEL_DATASET;
	p->max_associations = 4;
}

static void
load_peers(struct ctx *x, const struct cy_node *s)
{
	char where[64];

	if (s->kind != CY_SEQ) {
		ERR(x, s, "peers must be a list (lines starting with \"- \"), "
		    "found %s", cy_kind_name(s->kind));
		return;
	}
	x->c->peers = calloc(s->nkids ? s->nkids : 1, sizeof(*x->c->peers));
	if (x->c->peers == NULL)
		abort();
	for (size_t i = 0; i < s->nkids; i++) {
		struct conf_peer *p = &x->c->peers[x->c->npeers++];

		peer_defaults(p);
		snprintf(where, sizeof(where), "peers[%zu]", i);
		walk_map(x, s->kids[i], peer_keys, p, where);
		check_tls(x, s->kids[i], &p->tls, where, 0);
		if (p->name == NULL)
			continue;
		for (size_t j = 0; j < x->c->nexports; j++)
			if (x->c->exports[j].name != NULL &&
			    strcmp(x->c->exports[j].name, p->name) == 0)
				ERR(x, s->kids[i], "%s: name \"%s\" is already "
				    "used by exports[%zu]; peer and export names "
				    "share one namespace", where, p->name, j);
		for (size_t j = 0; j < i; j++) {
			const struct conf_peer *q = &x->c->peers[j];
			struct cy_node tmp;
			char path[96];

			snprintf(path, sizeof(path), "%s.name", where);
			if (q->name && strcmp(q->name, p->name) == 0)
				ERR(x, pos_at(x, path, s->kids[i], &tmp),
				    "peer name \"%s\" is already used by "
				    "peers[%zu]; names must be unique",
				    p->name, j);
			snprintf(path, sizeof(path), "%s.ae_title", where);
			if (p->ae_title[0] &&
			    strcmp(q->ae_title, p->ae_title) == 0)
				ERR(x, pos_at(x, path, s->kids[i], &tmp),
				    "AE title \"%s\" of %s is already used by "
				    "peers[%zu] (\"%s\"); AE titles must be "
				    "unique", p->ae_title, where, j,
				    q->name ? q->name : "?");
		}
	}
}

static void
load_exports(struct ctx *x, const struct cy_node *s)
{
	char where[64];

	if (s->kind != CY_SEQ) {
		ERR(x, s, "exports must be a list (lines starting with "
		    "\"- \"), found %s", cy_kind_name(s->kind));
		return;
	}
	x->c->exports = calloc(s->nkids ? s->nkids : 1,
	    sizeof(*x->c->exports));
	if (x->c->exports == NULL)
		abort();
	for (size_t i = 0; i < s->nkids; i++) {
		struct conf_peer *p = &x->c->exports[x->c->nexports++];

		peer_defaults(p);
		p->role = CONF_ROLE_TARGET;
		p->verify = CONF_VERIFY_READBACK;	/* every file, re-read */
		p->verify_level = CONF_VLEVEL_BYTES;
		p->export_fsync = 1;
		snprintf(where, sizeof(where), "exports[%zu]", i);
		walk_map(x, s->kids[i], export_keys, p, where);
		if (p->name == NULL)
			continue;
		for (size_t j = 0; j < x->c->npeers; j++)
			if (x->c->peers[j].name != NULL &&
			    strcmp(x->c->peers[j].name, p->name) == 0)
				ERR(x, s->kids[i], "%s: name \"%s\" is already "
				    "used by peers[%zu]; peer and export names "
				    "share one namespace", where, p->name, j);
		for (size_t j = 0; j < i; j++)
			if (x->c->exports[j].name != NULL &&
			    strcmp(x->c->exports[j].name, p->name) == 0)
				ERR(x, s->kids[i], "%s: name \"%s\" is already "
				    "used by exports[%zu]", where, p->name, j);
	}
}

static void
load_keys(struct ctx *x, const struct cy_node *s)
{
	char where[64];

	if (s->kind != CY_SEQ) {
		ERR(x, s, "api.keys must be a list, found %s",
		    cy_kind_name(s->kind));
		return;
	}
	x->c->api.keys = calloc(s->nkids ? s->nkids : 1,
	    sizeof(*x->c->api.keys));
	if (x->c->api.keys == NULL)
		abort();
	for (size_t i = 0; i < s->nkids; i++) {
		struct conf_api_key *k = &x->c->api.keys[x->c->api.nkeys++];
		int given = 0;

		snprintf(where, sizeof(where), "api.keys[%zu]", i);
		walk_map(x, s->kids[i], key_keys, k, where);
		given += find_key(s->kids[i], "token") != NULL;
		given += find_key(s->kids[i], "token_sha256") != NULL;
		given += find_key(s->kids[i], "token_file") != NULL;
		if (s->kids[i]->kind == CY_MAP && given != 1)
			ERR(x, s->kids[i], "%s needs exactly one of token, "
			    "token_sha256, token_file (found %d)", where, given);
		for (size_t j = 0; k->id && j < i; j++)
			if (x->c->api.keys[j].id &&
			    strcmp(x->c->api.keys[j].id, k->id) == 0)
				ERR(x, s->kids[i], "API key id \"%s\" is used "
				    "twice; ids must be unique", k->id);
	}
}

/* "10.0.0.0/8", "::1", "192.0.2.7": 0, or -1 when not an address. */
static int
parse_cidr(const char *text, struct conf_cidr *c)
{
	char buf[64], *slash, *end;
	unsigned long bits;

	if (strlen(text) >= sizeof(buf))
		return -1;
	memcpy(buf, text, strlen(text) + 1);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
		c->bits = 32;
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
		c->bits = 128;
	} else
		return -1;
	if (slash != NULL) {
		errno = 0;
		bits = strtoul(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || errno || bits > c->bits)
			return -1;
		c->bits = (unsigned)bits;
	}
	return 0;
}

int
conf_cidr_match(const struct conf_cidr *c, int family, const void *addr)
{
	const uint8_t *a = addr;
	unsigned full = c->bits / 8, rest = c->bits % 8;

	if (family != c->family)
		return 0;
	if (memcmp(a, c->addr, full) != 0)
		return 0;
	if (rest != 0) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));

		if ((a[full] & mask) != (c->addr[full] & mask))
			return 0;
	}
	return 1;
}

const struct conf_webhook *
conf_webhook(const struct conf *c, const char *channel)
{
	for (size_t i = 0; i < c->api.nwebhooks; i++)
		if (c->api.webhooks[i].channel != NULL &&
		    strcmp(c->api.webhooks[i].channel, channel) == 0)
			return &c->api.webhooks[i];
	return NULL;
}

/* hmac_secret or hmac_secret_file of mapping m (one, or none) into
 * *secret and *len. */
static void
load_hmac(struct ctx *x, const struct cy_node *m, const char *where,
    char **secret, size_t *len)
{
	const struct cy_node *sec, *file;
	char buf[4096];
	const char *why;

	sec = find_key(m, "hmac_secret");
	file = find_key(m, "hmac_secret_file");
	if (sec != NULL && file != NULL)
		ERR(x, file, "%s gives both hmac_secret and hmac_secret_file; "
		    "expected one", where);
	else if (sec != NULL) {
		if (sec->kind != CY_SCALAR || sec->len < 16 ||
		    strlen(sec->value) != sec->len)
			ERR(x, sec, "%s.hmac_secret must be text of at least 16 "
			    "characters, without NUL bytes (a long random "
			    "secret shared with the sender)", where);
		else {
			*secret = xstrdup(sec->value);
			*len = sec->len;
		}
	} else if (file != NULL) {
		if (file->kind != CY_SCALAR ||
		    read_token_file(file->value, buf, sizeof(buf), &why) < 0)
			ERR(x, file, "%s.hmac_secret_file: cannot read "
			    "\"%.200s\": %s; expected a readable file holding "
			    "the secret", where, file->kind == CY_SCALAR ?
			    file->value : "?", file->kind == CY_SCALAR ? why :
			    "not a file name");
		else if (strlen(buf) < 16)
			ERR(x, file, "%s.hmac_secret_file \"%.200s\" holds "
			    "fewer than 16 characters; expected a long random "
			    "secret", where, file->value);
		else {
			*secret = xstrdup(buf);
			*len = strlen(buf);
		}
		explicit_bzero(buf, sizeof(buf));
	}
}

static void
load_webhook(struct ctx *x, const struct cy_node *m, struct conf_webhook *w,
    const char *where)
{
	const struct cy_node *allow;

	w->replay_ms = SEC(300);
	walk_map(x, m, webhook_keys, w, where);
	if (m->kind != CY_MAP)
		return;
	load_hmac(x, m, where, &w->hmac_secret, &w->hmac_len);
	if ((allow = find_key(m, "allow")) == NULL || cy_is_null(allow))
		return;
	if (allow->kind != CY_SEQ) {
		ERR(x, allow, "%s.allow must be a list of addresses or "
		    "ADDRESS/BITS ranges, found %s", where,
		    cy_kind_name(allow->kind));
		return;
	}
	w->allow = calloc(allow->nkids ? allow->nkids : 1, sizeof(*w->allow));
	if (w->allow == NULL)
		abort();
	for (size_t i = 0; i < allow->nkids; i++) {
		const struct cy_node *a = allow->kids[i];

		if (a->kind != CY_SCALAR || strlen(a->value) != a->len ||
		    parse_cidr(a->value, &w->allow[w->nallow]) < 0)
			ERR(x, a, "%s.allow[%zu] \"%.64s\" is not an address; "
			    "expected e.g. 127.0.0.1, 10.0.0.0/8 or ::1", where,
			    i, a->kind == CY_SCALAR ? a->value : "?");
		else
			w->nallow++;
	}
}

static void
load_webhooks(struct ctx *x, const struct cy_node *s)
{
	char where[64];

	if (s->kind != CY_SEQ) {
		ERR(x, s, "api.webhooks must be a list, found %s",
		    cy_kind_name(s->kind));
		return;
	}
	x->c->api.webhooks = calloc(s->nkids ? s->nkids : 1,
	    sizeof(*x->c->api.webhooks));
	if (x->c->api.webhooks == NULL)
		abort();
	for (size_t i = 0; i < s->nkids; i++) {
		struct conf_webhook *w =
		    &x->c->api.webhooks[x->c->api.nwebhooks++];

		snprintf(where, sizeof(where), "api.webhooks[%zu]", i);
		load_webhook(x, s->kids[i], w, where);
		if (w->channel != NULL && strcmp(w->channel, "api") == 0)
			ERR(x, s->kids[i], "%s: channel \"api\" is reserved "
			    "(POST /api/batches deduplicates under it); pick "
			    "another name", where);
		for (size_t j = 0; w->channel && j < i; j++)
			if (x->c->api.webhooks[j].channel &&
			    strcmp(x->c->api.webhooks[j].channel,
			    w->channel) == 0)
				ERR(x, s->kids[i], "webhook channel \"%s\" is "
				    "given twice; channels must be unique",
				    w->channel);
	}
}

int
conf_event_match(const char *pattern, const char *event)
{
	size_t n = strlen(pattern);

	if (strcmp(pattern, "*") == 0)
		return 1;
	if (n >= 2 && strcmp(pattern + n - 2, ".*") == 0)
		return strncmp(event, pattern, n - 1) == 0;
	return strcmp(event, pattern) == 0;
}

/* "*", or dotted words of [A-Za-z0-9_-] ("batch.pause"), the last word
 * possibly "*" ("batch.*"). */
static int
valid_pattern(const char *p)
{
	size_t word = 0;

	if (strcmp(p, "*") == 0)
		return 1;
	for (const char *s = p; *s; s++) {
		if (*s == '.') {
			if (word == 0)
				return 0;
			word = 0;
		} else if (*s == '*') {
			if (word != 0 || s == p || s[1] != '\0')
				return 0;
			word = 1;
		} else if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' &&
		    *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		    *s == '-')
			word++;
		else
			return 0;
	}
	return word > 0 && strlen(p) <= 128;
}

static void
load_hook(struct ctx *x, const struct cy_node *m, struct conf_notify_hook *h,
    const char *where)
{
	const struct cy_node *ev;
	struct http_url u;
	char uerr[200];

	h->timeout_ms = SEC(10);
	h->max_attempts = 20;
	h->backoff_min_ms = SEC(1);
	h->backoff_max_ms = SEC(600);
	walk_map(x, m, hook_keys, h, where);
	if (m->kind != CY_MAP)
		return;
	if ((ev = find_key(m, "url")) != NULL && !cy_is_null(ev)) {
		if (ev->kind != CY_SCALAR || strlen(ev->value) != ev->len)
			ERR(x, ev, "%s.url must be a URL, found %s", where,
			    cy_kind_name(ev->kind));
		else if (http_url_parse(ev->value, &u, uerr,
		    sizeof(uerr)) < 0)
			ERR(x, ev, "%s.url: %s; expected http://HOST[:PORT]/"
			    "PATH or https://...", where, uerr);
		else
			h->url = xstrdup(ev->value);
	}
	if (h->ca != NULL && h->url != NULL && strncasecmp(h->url,
	    "https:", 6) != 0)
		ERR(x, find_key(m, "ca"), "%s.ca is given but the url is not "
		    "https://", where);
	if (h->backoff_max_ms < h->backoff_min_ms)
		ERR(x, m, "%s.backoff_max is below backoff_min", where);
	load_hmac(x, m, where, &h->hmac_secret, &h->hmac_len);
	if ((ev = find_key(m, "events")) == NULL || cy_is_null(ev))
		return;
	if (ev->kind != CY_SEQ || ev->nkids == 0) {
		ERR(x, ev, "%s.events must be a list of event patterns (\"*\", "
		    "\"batch.*\", \"batch.pause\"), found %s", where,
		    ev->kind == CY_SEQ ? "an empty list" :
		    cy_kind_name(ev->kind));
		return;
	}
	if ((h->events = calloc(ev->nkids, sizeof(*h->events))) == NULL)
		abort();
	for (size_t i = 0; i < ev->nkids; i++) {
		const struct cy_node *p = ev->kids[i];

		if (p->kind != CY_SCALAR || strlen(p->value) != p->len ||
		    !valid_pattern(p->value))
			ERR(x, p, "%s.events[%zu] \"%.64s\" is not an event "
			    "pattern; expected \"*\", a name like "
			    "\"batch.pause\" or a prefix like \"batch.*\"",
			    where, i, p->kind == CY_SCALAR ? p->value : "?");
		else
			h->events[h->nevents++] = xstrdup(p->value);
	}
}

static void
load_hooks(struct ctx *x, const struct cy_node *s)
{
	struct conf_notify_hook *hs;
	char where[64];

	if (s->kind != CY_SEQ) {
		ERR(x, s, "notify.webhooks must be a list, found %s",
		    cy_kind_name(s->kind));
		return;
	}
	if ((hs = calloc(s->nkids ? s->nkids : 1, sizeof(*hs))) == NULL)
		abort();
	x->c->notify.webhooks = hs;
	for (size_t i = 0; i < s->nkids; i++) {
		struct conf_notify_hook *h = &hs[x->c->notify.nwebhooks++];

		snprintf(where, sizeof(where), "notify.webhooks[%zu]", i);
		load_hook(x, s->kids[i], h, where);
		for (size_t j = 0; h->name && j < i; j++)
			if (hs[j].name && strcmp(hs[j].name, h->name) == 0)
				ERR(x, s->kids[i], "notify webhook name \"%s\" "
				    "is given twice; names must be unique",
				    h->name);
	}
}

static void
load_hl7(struct ctx *x, const struct cy_node *m)
{
	const struct cy_node *s, *f;
	char where[64], err[256];
	static const char *const pathk[3] = { "accession", "mrn",
	    "study_uid" };

	walk_map(x, m, hl7_keys, x->c, "hl7");
	if (m->kind != CY_MAP || (s = find_key(m, "senders")) == NULL ||
	    cy_is_null(s))
		return;
	if (s->kind != CY_SEQ) {
		ERR(x, s, "hl7.senders must be a list, found %s",
		    cy_kind_name(s->kind));
		return;
	}
	if ((x->c->hl7.senders = calloc(s->nkids ? s->nkids : 1,
	    sizeof(*x->c->hl7.senders))) == NULL)
		abort();
	for (size_t i = 0; i < s->nkids; i++) {
		struct conf_hl7_sender *h =
		    &x->c->hl7.senders[x->c->hl7.nsenders++];
		char **paths[3];

		snprintf(where, sizeof(where), "hl7.senders[%zu]", i);
		h->priority = 5;
		h->prefetch_priority = 9;
		walk_map(x, s->kids[i], sender_keys, h, where);
		paths[0] = &h->accession;
		paths[1] = &h->mrn;
		paths[2] = &h->study_uid;
		for (int k = 0; k < 3; k++)
			if (*paths[k] != NULL && hl7_path_check(*paths[k], err,
			    sizeof(err)) < 0 && (f = find_key(s->kids[i],
			    pathk[k])) != NULL)
				ERR(x, f, "%s.%s \"%.64s\": %s; expected a path "
				    "like OBR-3.1 or OBR-3.1|OBR-2.1", where,
				    pathk[k], *paths[k], err);
		if (h->charset != NULL && hl7_charset_check(h->charset) < 0 &&
		    (f = find_key(s->kids[i], "charset")) != NULL)
			ERR(x, f, "%s.charset \"%.64s\" is not a character "
			    "set we decode; expected e.g. 8859/1 or UNICODE "
			    "UTF-8", where, h->charset);
		if (h->source != NULL && h->target == NULL)
			ERR(x, s->kids[i], "%s gives a source but no target; "
			    "a batch needs both", where);
		for (size_t j = 0; h->name && j < i; j++)
			if (x->c->hl7.senders[j].name && strcmp(
			    x->c->hl7.senders[j].name, h->name) == 0)
				ERR(x, s->kids[i], "HL7 sender name \"%s\" is "
				    "given twice; names must be unique",
				    h->name);
	}
	/* the defaults every sender gets unless it says otherwise */
	for (size_t i = 0; i < x->c->hl7.nsenders; i++) {
		struct conf_hl7_sender *h = &x->c->hl7.senders[i];

		if (h->accession == NULL)
			h->accession = xstrdup("OBR-3.1|OBR-2.1");
		if (h->mrn == NULL)
			h->mrn = xstrdup("PID-3.1");
		if (h->study_uid == NULL)
			h->study_uid = xstrdup("OBR-29.1|ZDS-1.1");
	}
}

const struct conf_hl7_sender *
conf_hl7_sender(const struct conf *c, const char *app, const char *facility)
{
	const struct conf_hl7_sender *by_app = NULL;

	for (size_t i = 0; i < c->hl7.nsenders; i++) {
		const struct conf_hl7_sender *h = &c->hl7.senders[i];

		if (app == NULL || strcmp(h->app, app) != 0)
			continue;
		if (h->facility != NULL && facility != NULL &&
		    strcmp(h->facility, facility) == 0)
			return h;
		if (h->facility == NULL && by_app == NULL)
			by_app = h;
	}
	if (by_app != NULL || c->hl7.catch_all == NULL)
		return by_app;
	for (size_t i = 0; i < c->hl7.nsenders; i++)
		if (c->hl7.senders[i].name != NULL &&
		    strcmp(c->hl7.senders[i].name, c->hl7.catch_all) == 0)
			return &c->hl7.senders[i];
	return NULL;
}

static void
load_notify(struct ctx *x, const struct cy_node *m)
{
	const struct cy_node *hooks;

	walk_map(x, m, notify_keys, x->c, "notify");
	if ((hooks = find_key(m, "webhooks")) != NULL && !cy_is_null(hooks))
		load_hooks(x, hooks);
}

/* ---------------------------------------------------------------------- */
/* The whole file. */

static void
set_defaults(struct conf *c)
{
	snprintf(c->node.ae_title, sizeof(c->node.ae_title), "VNAMIG");
	c->node.data_dir = xstrdup("./var");
	c->node.shard_count = 1;
	c->dicom.port = 11112;
	c->http.port = 8080;
	c->mllp.port = 2575;
	c->dicom.address = xstrdup("127.0.0.1");
	c->http.address = xstrdup("127.0.0.1");
	c->mllp.address = xstrdup("127.0.0.1");
	c->dicom.max_connections = 1024;
	c->http.max_connections = 1024;
	c->mllp.max_connections = 256;
	c->limits.max_pdu = 256 * 1024;
	c->limits.associations_in = 64;
	c->limits.associations_out = 32;
	c->limits.artim_ms = SEC(30);
	c->limits.dimse_ms = SEC(120);
	c->limits.network_ms = SEC(30);
	c->limits.retrieve_ms = SEC(6 * 3600);
	c->limits.stall_ms = SEC(600);
	c->limits.find_matches = 100000;
	c->limits.commit_ms = SEC(600);
	c->limits.store_backlog = MB(4);
	c->limits.unread_answers = MB(1);
	c->limits.async_window = 8;
	c->limits.idle_ms = SEC(300);
	c->limits.shutdown_grace_ms = SEC(30);
	c->limits.sequence_depth = 64;
	c->limits.http_body = MB(64);
	c->limits.http_header = KB(64);
	c->limits.mllp_frame = MB(1);
	c->limits.mllp_pipeline = 32;
	c->storage.spool_segment = MB(256);
	c->storage.sync = CONF_SYNC_GROUP;
	c->storage.block_cache = MB(512);
	c->storage.write_buffer = MB(64);
	c->storage.max_open_files = 4096;
	c->storage.min_free = GB(1);
	c->storage.checkpoint_ms = SEC(6 * 3600);
	c->storage.checkpoints_keep = 8;
	c->audit.checkpoint_ms = SEC(300);
	c->api.health_open = 1;
	c->api.max_keys = 256;
	c->hl7.retention_ms = SEC(30ULL * 86400);
	c->hl7.max_inbox = 1000000;
	c->api.max_batch_items = 100000;
	c->notify.max_outbox = 100000;
	c->migration.max_studies = 8;
	c->migration.retrieve_attempts = 3;
	c->migration.send_attempts = 5;
	c->migration.retry_ms = SEC(5);
	c->migration.retry_max_ms = SEC(300);
	c->migration.retrieve_ack_early = 1;
	c->migration.push_stable_ms = SEC(30);
	c->migration.retrieve_hold_ms = SEC(2);
	c->migration.breaker_failures = 5;
	c->migration.breaker_open_ms = SEC(30);
	c->logging.level = 2;	/* info */
	c->logging.ident = xstrdup("vnamigd");
}

static void
load_api(struct ctx *x, const struct cy_node *m)
{
	const struct cy_node *keys;

	walk_map(x, m, api_keys, x->c, "api");
	if ((keys = find_key(m, "keys")) != NULL && !cy_is_null(keys))
		load_keys(x, keys);
	if ((keys = find_key(m, "webhooks")) != NULL && !cy_is_null(keys))
		load_webhooks(x, keys);
}

static void
cross_checks(struct ctx *x, const struct cy_node *root)
{
	struct conf *c = x->c;
	const struct conf_listen *l[3] = { &c->dicom, &c->http, &c->mllp };
	static const char *const ln[3] = { "dicom", "http", "mllp" };
	struct cy_node tmp;
	char path[64];

	if (c->node.shard_index >= c->node.shard_count)
		ERR(x, pos_at(x, "node.shard_index", root, &tmp),
		    "node.shard_index %u is not below node.shard_count "
		    "%u; shards are numbered 0 to count-1",
		    c->node.shard_index, c->node.shard_count);
	/* a peer's caps are shared by the shards: each takes its part
	 * (rounded up, at least one association) */
	for (size_t i = 0; c->node.shard_count > 1 && i < c->npeers; i++) {
		struct conf_peer *p = &c->peers[i];
		uint32_t n = c->node.shard_count;

		p->max_associations = (p->max_associations + n - 1) / n;
		p->bandwidth = (p->bandwidth + n - 1) / n;
	}
	for (size_t i = 0; i < c->npeers; i++) {
		const struct conf_peer *p = &c->peers[i], *t;

		if (p->push_to == NULL)
			continue;
		snprintf(path, sizeof(path), "peers[%zu].push_to", i);
		if (!(p->role & CONF_ROLE_SOURCE))
			ERR(x, pos_at(x, path, root, &tmp), "peer \"%s\" has "
			    "push_to but role %s; a push source needs role "
			    "source or both", p->name ? p->name : "?",
			    conf_role_name(p->role));
		if ((t = conf_peer_by_name(c, p->push_to)) == NULL ||
		    !(t->role & CONF_ROLE_TARGET))
			ERR(x, pos_at(x, path, root, &tmp), "push_to \"%s\" of "
			    "peer \"%s\" is not a target peer or an export",
			    p->push_to, p->name ? p->name : "?");
	}
	for (size_t i = 0; i < c->npeers; i++) {
		snprintf(path, sizeof(path), "peers[%zu].ae_title", i);
		if (strcmp(c->peers[i].ae_title, c->node.ae_title) == 0)
			ERR(x, pos_at(x, path, root, &tmp), "peer \"%s\" has our own AE title \"%s\" "
			    "(node.ae_title); give it its own",
			    c->peers[i].name ? c->peers[i].name : "?",
			    c->node.ae_title);
	}
	for (int i = 0; i < 3; i++)
		for (int j = i + 1; j < 3; j++)
			if (l[i]->enabled && l[j]->enabled && l[i]->port &&
			    l[i]->port == l[j]->port &&
			    strcmp(l[i]->address, l[j]->address) == 0) {
				snprintf(path, sizeof(path), "listen.%s.port",
				    ln[j]);
				ERR(x, pos_at(x, path, root, &tmp), "listen.%s and listen.%s both use "
				    "%s port %u; give each its own port",
				    ln[i], ln[j], l[i]->address, l[i]->port);
			}
	if (c->storage.spool_dir == NULL) {
		size_t n = strlen(c->node.data_dir) + sizeof("/spool");

		if ((c->storage.spool_dir = malloc(n)) == NULL)
			abort();
		snprintf(c->storage.spool_dir, n, "%s/spool", c->node.data_dir);
	}
	if (c->migration.quarantine_dir == NULL)
		c->migration.quarantine_dir = xprintf("%s/quarantine",
		    c->node.data_dir);
	for (size_t i = 0; i < c->hl7.nsenders; i++) {
		const struct conf_hl7_sender *h = &c->hl7.senders[i];
		const struct conf_peer *p;

		snprintf(path, sizeof(path), "hl7.senders[%zu].source", i);
		if (h->source != NULL && ((p = conf_peer_by_name(c,
		    h->source)) == NULL || !(p->role & CONF_ROLE_SOURCE)))
			ERR(x, pos_at(x, path, root, &tmp), "%s \"%s\" is not "
			    "a configured peer with role source or both", path,
			    h->source);
		snprintf(path, sizeof(path), "hl7.senders[%zu].target", i);
		if (h->target != NULL && ((p = conf_peer_by_name(c,
		    h->target)) == NULL || !(p->role & CONF_ROLE_TARGET)))
			ERR(x, pos_at(x, path, root, &tmp), "%s \"%s\" is not "
			    "a configured peer with role target or both", path,
			    h->target);
	}
	if (c->hl7.catch_all != NULL) {
		int found = 0;

		for (size_t i = 0; i < c->hl7.nsenders; i++)
			found |= c->hl7.senders[i].name != NULL &&
			    strcmp(c->hl7.senders[i].name,
			    c->hl7.catch_all) == 0;
		if (!found)
			ERR(x, pos_at(x, "hl7.catch_all", root, &tmp),
			    "hl7.catch_all \"%s\" names no sender in "
			    "hl7.senders", c->hl7.catch_all);
	}
	if (c->audit.key_file == NULL)
		c->audit.key_file = xprintf("%s-audit.pem", c->node.data_dir);
	if (c->audit.checkpoint_file == NULL)
		c->audit.checkpoint_file = xprintf("%s/audit-checkpoints",
		    c->node.data_dir);
	if (c->audit.origin == NULL) {
		/* from the AE title, its spaces and '+' made '_' (a note
		 * name has neither: src/util/notename.h) */
		c->audit.origin = c->node.shard_count > 1 ?
		    xprintf("vnamig/%s/shard-%u", c->node.ae_title,
		    c->node.shard_index) : xprintf("vnamig/%s", c->node.ae_title);
		for (char *p = c->audit.origin; *p != '\0'; p++)
			if (*p == ' ' || *p == '+')
				*p = '_';
	}
	if (!note_name_valid(c->audit.origin))
		ERR(x, pos_at(x, "audit.origin", root, &tmp), "audit.origin "
		    "\"%.200s\": 1 to 200 printable ASCII characters, no "
		    "space and no '+' (the checkpoints' signed-note key name)",
		    c->audit.origin);
}

static void
load_root(struct ctx *x, const struct cy_node *root)
{
	static const struct ckey top[] = {
		{ .name = "node" }, { .name = "listen" }, { .name = "limits" },
		{ .name = "peers" }, { .name = "storage" }, { .name = "api" },
		{ .name = "logging" }, { .name = "audit" }, { .name = "notify" },
		{ .name = "hl7" }, { .name = "migration" },
		{ .name = "exports" },
		{ .name = NULL }
	};
	const struct cy_node *seen[12] = { NULL };

	if (root->kind != CY_MAP) {
		ERR(x, root, "the file must be a mapping (node:, listen:, "
		    "peers: ...), found %s", cy_kind_name(root->kind));
		return;
	}
	for (size_t i = 0; i + 1 < root->nkids; i += 2) {
		const struct cy_node *k = root->kids[i], *v = root->kids[i + 1];
		size_t j;

		if (k->kind != CY_SCALAR) {
			ERR(x, k, "a top-level key is %s; expected a section "
			    "name", cy_kind_name(k->kind));
			continue;
		}
		for (j = 0; top[j].name; j++)
			if (strcmp(top[j].name, k->value) == 0)
				break;
		if (top[j].name == NULL) {
			unknown_key(x, k, top, "the top level");
			continue;
		}
		if (seen[j]) {
			ERR(x, k, "duplicate section \"%s\" (first given at "
			    "line %u); give each section once", k->value,
			    seen[j]->line);
			continue;
		}
		seen[j] = k;
		if (cy_is_null(v))
			continue;
		switch (j) {
		case 0: walk_map(x, v, node_keys, x->c, "node"); break;
		case 1: load_listen(x, v); break;
		case 2: walk_map(x, v, limits_keys, x->c, "limits"); break;
		case 3: load_peers(x, v); break;
		case 4: walk_map(x, v, storage_keys, x->c, "storage"); break;
		case 5: load_api(x, v); break;
		case 7: walk_map(x, v, audit_keys, x->c, "audit"); break;
		case 8: load_notify(x, v); break;
		case 9: load_hl7(x, v); break;
		case 10: walk_map(x, v, migration_keys, x->c, "migration");
			break;
		case 11: load_exports(x, v); break;
		default: walk_map(x, v, logging_keys, x->c, "logging"); break;
		}
	}
	cross_checks(x, root);
}

struct conf *
conf_load_buffer(const char *name, const char *buf, size_t len, char **errs)
{
	struct cy_errs e = { .file = name };
	struct ctx x = { .e = &e };
	struct cy_node *root;
	struct conf *c;

	*errs = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		abort();
	c->path = xstrdup(name);
	set_defaults(c);
	x.c = c;
	if (len > CONF_FILE_MAX)
		cy_err(&e, 0, 0, "file is larger than %d bytes; a "
		    "configuration file is far smaller", CONF_FILE_MAX);
	else if ((root = cy_parse(buf, len, &e)) != NULL) {
		load_root(&x, root);
		cy_free(root);
	}
	free(x.pos);
	if (e.n > 0) {
		conf_free(c);
		*errs = e.buf;
		return NULL;
	}
	free(e.buf);
	return c;
}

struct conf *
conf_load_file(const char *path, char **errs)
{
	struct stat st;
	struct conf *c;
	char *buf, msg[1024];
	ssize_t n;
	size_t got = 0;
	int fd;

	*errs = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(msg, sizeof(msg), "%s: cannot open: %s; expected a "
		    "readable YAML file (see conf/vnamigd.yaml)\n", path,
		    strerror(errno));
		*errs = xstrdup(msg);
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > CONF_FILE_MAX) {
		snprintf(msg, sizeof(msg), "%s: not a regular file of at most "
		    "%d bytes\n", path, CONF_FILE_MAX);
		close(fd);
		*errs = xstrdup(msg);
		return NULL;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		abort();
	while (got < (size_t)st.st_size &&
	    (n = read(fd, buf + got, (size_t)st.st_size - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(msg, sizeof(msg), "%s: read error: %s\n", path,
			    strerror(errno));
			close(fd);
			free(buf);
			*errs = xstrdup(msg);
			return NULL;
		}
		got += (size_t)n;
	}
	close(fd);
	c = conf_load_buffer(path, buf, got, errs);
	free(buf);
	return c;
}

static void
free_tls(struct conf_tls *t)
{
	free(t->cert);
	free(t->key);
	free(t->ca);
}

void
conf_free_(struct conf *c)
{
	struct conf_listen *l[3];

	if (c == NULL)
		return;
	l[0] = &c->dicom, l[1] = &c->http, l[2] = &c->mllp;
	for (int i = 0; i < 3; i++) {
		free(l[i]->address);
		free_tls(&l[i]->tls);
	}
	for (size_t i = 0; i < c->npeers; i++) {
		free(c->peers[i].name);
		free(c->peers[i].host);
		free(c->peers[i].window.text);
		free(c->peers[i].push_to);
		free_tls(&c->peers[i].tls);
	}
	free(c->peers);
	for (size_t i = 0; i < c->nexports; i++) {
		free(c->exports[i].name);
		free(c->exports[i].export_path);
		free(c->exports[i].window.text);
	}
	free(c->exports);
	for (size_t i = 0; i < c->api.nkeys; i++)
		free(c->api.keys[i].id);
	free(c->api.keys);
	for (size_t i = 0; i < c->api.nwebhooks; i++) {
		struct conf_webhook *w = &c->api.webhooks[i];

		free(w->channel);
		if (w->hmac_secret != NULL)
			explicit_bzero(w->hmac_secret, w->hmac_len);
		free(w->hmac_secret);
		free(w->allow);
	}
	free(c->api.webhooks);
	for (size_t i = 0; i < c->notify.nwebhooks; i++) {
		struct conf_notify_hook *h = &c->notify.webhooks[i];

		free(h->name);
		free(h->url);
		for (size_t j = 0; j < h->nevents; j++)
			free(h->events[j]);
		free(h->events);
		if (h->hmac_secret != NULL)
			explicit_bzero(h->hmac_secret, h->hmac_len);
		free(h->hmac_secret);
		free(h->ca);
	}
	free(c->notify.webhooks);
	free(c->storage.backup_dir);
	free(c->migration.quarantine_dir);
	for (size_t i = 0; i < c->hl7.nsenders; i++) {
		struct conf_hl7_sender *h = &c->hl7.senders[i];

		free(h->name);
		free(h->app);
		free(h->facility);
		free(h->source);
		free(h->target);
		free(h->accession);
		free(h->mrn);
		free(h->study_uid);
		free(h->charset);
	}
	free(c->hl7.senders);
	free(c->hl7.catch_all);
	free(c->node.data_dir);
	free(c->storage.spool_dir);
	free(c->audit.key_file);
	free(c->audit.origin);
	free(c->audit.checkpoint_file);
	free(c->logging.ident);
	free(c->path);
	free(c);
}

/* ---------------------------------------------------------------------- */
/* Rendering: dump and diff. */

struct line {
	char	*path, *value;
	int	 restart;
};

struct lines {
	struct line	*v;
	size_t		 n, cap;
};

static void
lines_add(struct lines *ls, const char *path, const char *value, int restart)
{
	if (ls->n == ls->cap) {
		size_t cap = ls->cap ? ls->cap * 2 : 128;
		struct line *nv = realloc(ls->v, cap * sizeof(*nv));

		if (nv == NULL)
			abort();
		ls->v = nv;
		ls->cap = cap;
	}
	ls->v[ls->n].path = xstrdup(path);
	ls->v[ls->n].value = xstrdup(value);
	ls->v[ls->n++].restart = restart;
}

static void
lines_free(struct lines *ls)
{
	for (size_t i = 0; i < ls->n; i++) {
		free(ls->v[i].path);
		free(ls->v[i].value);
	}
	free(ls->v);
}

static void render_map(struct lines *ls, const char *where,
    const struct ckey *keys, const void *base, int restart);

/* Render one key's value into buf; 0 when the key has nothing to show. */
static int
render(const struct ckey *d, const void *field, char *buf, size_t cap)
{
	const uint8_t *h;

	switch (d->type) {
	case CT_STR: case CT_PATH: case CT_FILE: case CT_HOST: case CT_NAME:
		snprintf(buf, cap, "%s", *(char *const *)field ?
		    *(char *const *)field : "-");
		return 1;
	case CT_AE:
		snprintf(buf, cap, "%s", (const char *)field);
		return 1;
	case CT_PORT: case CT_PORT0:
		snprintf(buf, cap, "%u", *(const uint16_t *)field);
		return 1;
	case CT_U32: case CT_SIZE32:
		snprintf(buf, cap, "%u", *(const uint32_t *)field);
		return 1;
	case CT_SIZE: case CT_RATE:
		snprintf(buf, cap, "%llu",
		    (unsigned long long)*(const uint64_t *)field);
		return 1;
	case CT_DURATION:
		snprintf(buf, cap, "%llums",
		    (unsigned long long)*(const uint64_t *)field);
		return 1;
	case CT_BOOL:
		snprintf(buf, cap, "%s", *(const int *)field ? "true" : "false");
		return 1;
	case CT_ENUM:
		snprintf(buf, cap, "%s", d->choices[*(const int *)field]);
		return 1;
	case CT_WINDOW:
		snprintf(buf, cap, "%s", ((const struct conf_sched *)field)->set ?
		    ((const struct conf_sched *)field)->text : "always");
		return 1;
	case CT_SECRET_HEX:
		h = field;
		for (int i = 0; i < 32 && cap > 64; i++)
			snprintf(buf + 2 * i, 3, "%02x", h[i]);
		return 1;
	default:	/* CT_NONE, CT_TLS (a sub-map), token, token_file */
		return 0;
	}
}

static void
render_map(struct lines *ls, const char *where, const struct ckey *keys,
    const void *base, int restart)
{
	char path[256], val[512];

	for (const struct ckey *d = keys; d->name; d++) {
		const void *field = (const char *)base + d->off;

		snprintf(path, sizeof(path), "%s.%s", where, d->name);
		if (d->type == CT_TLS || d->type == CT_TLS_CLIENT) {
			const struct conf_tls *t = field;

			snprintf(val, sizeof(val), "%s", t->enabled ? "true" :
			    "false");
			snprintf(path, sizeof(path), "%s.tls.enabled", where);
			lines_add(ls, path, val, restart || d->restart);
			snprintf(path, sizeof(path), "%s.tls", where);
			if (t->enabled)
				render_map(ls, path, d->type == CT_TLS ?
				    tls_keys : tls_client_keys, t,
				    restart || d->restart);
			continue;
		}
		if (render(d, field, val, sizeof(val)))
			lines_add(ls, path, val, restart || d->restart);
	}
}

/* notify.*: a webhook's URL may hold a secret in its path or query
 * (many services put the token there): shown as its origin and the
 * SHA-256 of the whole URL. */
static void
render_notify(const struct conf *c, struct lines *ls)
{
	char where[128], val[1024];

	render_map(ls, "notify", notify_keys, c, 0);
	for (size_t i = 0; i < c->notify.nwebhooks; i++) {
		const struct conf_notify_hook *h = &c->notify.webhooks[i];
		struct http_url u;
		uint8_t md[32];
		char auth[300], err[200];
		size_t n = 0;

		snprintf(where, sizeof(where), "notify.webhooks.%s", h->name);
		render_map(ls, where, hook_keys, h, 0);
		snprintf(where, sizeof(where), "notify.webhooks.%s.url",
		    h->name);
		if (h->url != NULL && http_url_parse(h->url, &u, err,
		    sizeof(err)) == 0) {
			sha256(h->url, strlen(h->url), md);
			http_url_authority(&u, auth, sizeof(auth));
			n = (size_t)snprintf(val, sizeof(val), "%s://%s/... "
			    "sha256=", u.https ? "https" : "http", auth);
			for (int j = 0; j < 32 && n + 3 < sizeof(val); j++)
				n += (size_t)snprintf(val + n, sizeof(val) - n,
				    "%02x", md[j]);
			lines_add(ls, where, val, 0);
		}
		val[0] = '\0';
		for (size_t j = 0, m = 0; j < h->nevents; j++) {
			m += (size_t)snprintf(val + m, sizeof(val) - m,
			    "%s%s", j ? "," : "", h->events[j]);
			if (m >= sizeof(val))
				m = sizeof(val) - 1;
		}
		snprintf(where, sizeof(where), "notify.webhooks.%s.events",
		    h->name);
		lines_add(ls, where, val, 0);
		snprintf(where, sizeof(where), "notify.webhooks.%s.hmac",
		    h->name);
		lines_add(ls, where, h->hmac_secret ? "set" : "none", 0);
	}
}

static void
render_all(const struct conf *c, struct lines *ls)
{
	const struct conf_listen *l[3] = { &c->dicom, &c->http, &c->mllp };
	static const char *const ln[3] = { "listen.dicom", "listen.http",
	    "listen.mllp" };
	char where[128];

	render_map(ls, "node", node_keys, c, 0);
	for (int i = 0; i < 3; i++) {
		if (l[i]->enabled)
			render_map(ls, ln[i], listen_keys, l[i], 0);
		else {
			snprintf(where, sizeof(where), "%s.enabled", ln[i]);
			lines_add(ls, where, "false", 1);
		}
	}
	render_map(ls, "limits", limits_keys, c, 0);
	for (size_t i = 0; i < c->npeers; i++) {
		snprintf(where, sizeof(where), "peers.%s", c->peers[i].name);
		render_map(ls, where, peer_keys, &c->peers[i], 0);
	}
	for (size_t i = 0; i < c->nexports; i++) {
		snprintf(where, sizeof(where), "exports.%s",
		    c->exports[i].name);
		render_map(ls, where, export_keys, &c->exports[i], 0);
	}
	render_map(ls, "storage", storage_keys, c, 0);
	render_map(ls, "migration", migration_keys, c, 0);
	render_map(ls, "api", api_keys, c, 0);
	for (size_t i = 0; i < c->api.nkeys; i++) {
		snprintf(where, sizeof(where), "api.keys.%s", c->api.keys[i].id);
		render_map(ls, where, key_keys, &c->api.keys[i], 0);
	}
	for (size_t i = 0; i < c->api.nwebhooks; i++) {
		const struct conf_webhook *w = &c->api.webhooks[i];
		char addr[INET6_ADDRSTRLEN + 8], val[512] = "";

		snprintf(where, sizeof(where), "api.webhooks.%s", w->channel);
		render_map(ls, where, webhook_keys, w, 0);
		snprintf(where, sizeof(where), "api.webhooks.%s.hmac",
		    w->channel);
		lines_add(ls, where, w->hmac_secret ? "set" : "none", 0);
		for (size_t j = 0; j < w->nallow; j++) {
			inet_ntop(w->allow[j].family, w->allow[j].addr, addr,
			    sizeof(addr));
			snprintf(val + strlen(val), sizeof(val) - strlen(val),
			    "%s%s/%u", j ? "," : "", addr, w->allow[j].bits);
		}
		snprintf(where, sizeof(where), "api.webhooks.%s.allow",
		    w->channel);
		lines_add(ls, where, w->nallow ? val : "any", 0);
	}
	render_map(ls, "hl7", hl7_keys, c, 0);
	for (size_t i = 0; i < c->hl7.nsenders; i++) {
		snprintf(where, sizeof(where), "hl7.senders.%s",
		    c->hl7.senders[i].name);
		render_map(ls, where, sender_keys, &c->hl7.senders[i], 0);
	}
	render_map(ls, "logging", logging_keys, c, 0);
	render_map(ls, "audit", audit_keys, c, 0);
	render_notify(c, ls);
}

char *
conf_dump(const struct conf *c)
{
	struct lines ls = { 0 };
	size_t len = 1, off = 0;
	char *out;

	render_all(c, &ls);
	for (size_t i = 0; i < ls.n; i++)
		len += strlen(ls.v[i].path) + strlen(ls.v[i].value) + 4;
	if ((out = malloc(len)) == NULL)
		abort();
	out[0] = '\0';
	for (size_t i = 0; i < ls.n; i++)
		off += (size_t)snprintf(out + off, len - off, "%s = %s\n",
		    ls.v[i].path, ls.v[i].value);
	lines_free(&ls);
	return out;
}

static const struct line *
lines_find(const struct lines *ls, const char *path)
{
	for (size_t i = 0; i < ls->n; i++)
		if (strcmp(ls->v[i].path, path) == 0)
			return &ls->v[i];
	return NULL;
}

size_t
conf_diff(const struct conf *a, const struct conf *b, conf_diff_fn *fn,
    void *arg)
{
	struct lines la = { 0 }, lb = { 0 };
	size_t n = 0;

	render_all(a, &la);
	render_all(b, &lb);
	for (size_t i = 0; i < la.n; i++) {
		const struct line *o = &la.v[i], *m = lines_find(&lb, o->path);

		if (m == NULL || strcmp(o->value, m->value) != 0) {
			fn(o->path, o->value, m ? m->value : NULL,
			    o->restart || (m && m->restart), arg);
			n++;
		}
	}
	for (size_t i = 0; i < lb.n; i++)
		if (lines_find(&la, lb.v[i].path) == NULL) {
			fn(lb.v[i].path, NULL, lb.v[i].value, lb.v[i].restart,
			    arg);
			n++;
		}
	lines_free(&la);
	lines_free(&lb);
	return n;
}

/* ---------------------------------------------------------------------- */

const struct conf_peer *
conf_peer_by_name(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->npeers; i++)
		if (c->peers[i].name != NULL &&
		    strcmp(c->peers[i].name, name) == 0)
			return &c->peers[i];
	for (size_t i = 0; i < c->nexports; i++)
		if (c->exports[i].name != NULL &&
		    strcmp(c->exports[i].name, name) == 0)
			return &c->exports[i];
	return NULL;
}

const struct conf_peer *
conf_peer_by_ae(const struct conf *c, const char *ae)
{
	for (size_t i = 0; i < c->npeers; i++)
		if (strcmp(c->peers[i].ae_title, ae) == 0)
			return &c->peers[i];
	return NULL;
}

const char *
conf_role_name(enum conf_role r)
{
	return (unsigned)r <= 3 ? roles[r] : "?";
}

const char *
conf_api_role_name(enum conf_api_role r)
{
	return (unsigned)r <= 2 ? api_roles[r] : "?";
}
