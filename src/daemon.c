/*
 * daemon.c — see daemon.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "conf/conf.h"
#include "src/api/api.h"
#include "src/daemon.h"
#include "src/hl7in.h"
#include "src/mig/mig.h"
#include "src/net/net.h"
#include "src/net/net_proto.h"
#include "src/net/store_loop.h"
#include "src/notify.h"
#include "store/audit.h"
#include "store/spool.h"
#include "store/store_ckpt.h"
#include "src/net/store_sink.h"
#include "src/util/fsutil.h"
#include "src/util/hex.h"
#include "src/util/hset.h"
#include "src/util/jw.h"
#include "src/util/log.h"
#include "src/util/sha256.h"
#include "src/util/metrics.h"
#include "src/util/zfile.h"

/* Loop-lag probe: a timer every LAG_TICK_MS; the delay past its due time
 * is how long the loop was busy elsewhere. Buckets are upper bounds in
 * microseconds (the last is +Inf), cumulative since start, ready to be
 * exported as a Prometheus histogram. */
#define LAG_TICK_MS	10
static const uint64_t lag_bounds_us[] = { 250, 500, 1000, 2000, 3000, 4000, 5000,
	10000, 25000, 50000, 100000, 250000, 1000000, UINT64_MAX };
#define LAG_NB (sizeof(lag_bounds_us) / sizeof(lag_bounds_us[0]))

/* One kind of refusal from one address: its last audit leaf. */
struct refusal {
	uint64_t	 h;		/* hash of kind and address; 0: free */
	uint64_t	 at_ms;		/* its last leaf */
	uint64_t	 suppressed;	/* refusals since, without a leaf */
};
#define REFUSALS	256

struct daemon {
	struct event_base	*base;
	struct refusal		 refusals[REFUSALS];
	int			 finished;	/* daemon.stop written */
	json_t			*refused;	/* a restore asked for and not
						 * done: its leaf, once the log
						 * is open */
	struct conf		*conf;
	char			*conf_path;
	char			*data_dir;	/* as opened: restart to move */
	int			 lock_fd;
	struct net_server	*net;
	struct store_loop	*state;		/* RocksDB + audit log */
	struct spool		*spool;		/* received instances */
	struct event		*sig_term, *sig_int, *sig_hup;
	struct event		*lag_timer, *grace_timer;
	struct event		*ckpt_timer;	/* scheduled checkpoints */
	uint64_t		 lag_due_us, lag_max_us, lag_n;
	uint64_t		 lag_buckets[LAG_NB];
	uint64_t		 started_us;
	int			 draining;
	int			 exit_status;
	int			 restart;	/* execv again when done */
	struct api		*api;		/* REST API */
	struct hl7in		*hl7in;		/* HL7 intake */
	struct mig		*mig;		/* the migration engine */
	struct notify		*notify;	/* webhooks out */
	struct metrics		*metrics;	/* GET /metrics */
	struct metric_series	*s_lag;		/* loop lag histogram */
	struct metric		*m_conns, *m_store_state;
	struct metric_series	*s_uptime, *s_audit, *s_spool_bytes,
				*s_spool_inst, *s_spool_seg, *s_commit,
				*s_units, *s_store_free, *s_spool_backlog,
				*s_durable;
	struct store_stats	 last_stats;	/* counted into metrics */
	struct event		*api_timer;	/* api_tick */
	uint64_t		 disk_at, disk_free;	/* health, cached */
	uint64_t		 spool_at;	/* intake_gate, cached */
	int			 spool_low;
	int			 disk_writable;
};

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* resolve_peers: look up the peers whose host is a name, so that the
 * acceptor can check where their associations come from. */
static void
resolve_peers(struct net_server *net, const struct conf *c)
{
	for (size_t i = 0; i < c->npeers; i++)
		net_server_resolve(net, c->peers[i].host);
}

/* ---------------------------------------------------------------------- */
/* Data directory: created if missing, and locked so that two daemons
 * never share one state. */

static int
lock_data_dir(struct daemon *d)
{
	char path[4200], holder[32];
	int fd, pid_ok;

	if (fs_mkdir_p(d->data_dir, 0750) < 0) {
		log_err("startup-failed", "data_dir=%s error=%s hint=%s",
		    log_q(d->data_dir), log_q(strerror(errno)),
		    log_q("create it or set node.data_dir to a writable "
		    "directory"));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/vnamigd.lock", d->data_dir);
	fd = fs_lock_dir(d->data_dir, holder, sizeof(holder), &pid_ok);
	if (fd == -1) {
		log_err("startup-failed", "lock=%s error=%s", log_q(path),
		    log_q(strerror(errno)));
		return -1;
	}
	if (fd == -2) {
		log_err("startup-failed", "data_dir=%s error=%s pid=%s hint=%s",
		    log_q(d->data_dir), log_q("in use by another vnamigd"),
		    holder[0] ? holder : "?", log_q("stop the other daemon or "
		    "set another node.data_dir"));
		return -1;
	}
	if (!pid_ok)
		log_warn("lock-pid-write-failed", "lock=%s error=%s",
		    log_q(path), log_q(strerror(errno)));
	d->lock_fd = fd;
	{
		char err[1024];

		/* a restore's swap cut short is finished first */
		if (store_ckpt_settle(d->data_dir, 1, err, sizeof(err)) < 0) {
			log_err("startup-failed", "data_dir=%s error=%s",
			    log_q(d->data_dir), log_q(err));
			return -1;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Loop lag. */

static void
on_lag_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;
	uint64_t now = now_us(), lag;
	size_t b = 0;

	(void)fd;
	(void)ev;
	lag = now > d->lag_due_us ? now - d->lag_due_us : 0;
	d->lag_due_us = now + LAG_TICK_MS * 1000;
	while (lag > lag_bounds_us[b])
		b++;
	d->lag_buckets[b]++;
	d->lag_n++;
	series_observe(d->s_lag, (double)lag / 1e6);
	if (lag > d->lag_max_us)
		d->lag_max_us = lag;
	if (lag > 250000)
		log_warn("loop-lag", "lag_ms=%llu",
		    (unsigned long long)(lag / 1000));
}

/* ---------------------------------------------------------------------- */
/* Metrics: what is counted where it happens (HTTP in the API, the loop
 * lag here) and what is read from live state when scraped. */

#define COMMIT_NB 16	/* store_stats.sync_hist: < 2^i * 100 µs */

static void
collect(struct metrics *reg, void *arg)
{
	static const char *const protos[] = { "dicom", "http", "mllp" };
	static const char *const states[] = { "ok", "low", "failed" };
	struct daemon *d = arg;
	struct store *st;
	struct store_stats ss;
	struct spool_stats sp;

	(void)reg;
	series_set(d->s_uptime, (double)(now_us() - d->started_us) / 1e6);
	for (size_t i = 0; i < 3; i++) {
		const char *in[2] = { protos[i], "in" };
		const char *out[2] = { protos[i], "out" };

		metric_set(d->m_conns, in, (double)net_server_nconns_of(
		    d->net, protos[i], 0));
		if (i == 0)
			metric_set(d->m_conns, out, (double)
			    net_server_nconns_of(d->net, protos[i], 1));
	}
	if (d->state == NULL)
		return;
	st = store_loop_store(d->state);
	for (size_t i = 0; i < 3; i++) {
		const char *v[1] = { states[i] };

		metric_set(d->m_store_state, v,
		    strcmp(store_state_name(store_state(st)), states[i]) == 0);
	}
	store_stats(st, &ss);
	for (size_t b = 0; b < COMMIT_NB; b++)
		if (ss.sync_hist[b] > d->last_stats.sync_hist[b])
			series_observe_n(d->s_commit, b < COMMIT_NB - 1 ?
			    (double)(100ULL << b) / 1e6 : 1e9,
			    ss.sync_hist[b] - d->last_stats.sync_hist[b], 0);
	series_observe_n(d->s_commit, 0, 0,
	    (double)(ss.sync_us_sum - d->last_stats.sync_us_sum) / 1e6);
	series_add(d->s_units, (double)(ss.units - d->last_stats.units));
	series_set(d->s_store_free, (double)ss.free_bytes);
	d->last_stats = ss;
	series_set(d->s_audit, (double)audit_durable_size(
	    store_loop_audit(d->state)));
	if (d->spool != NULL) {
		spool_stats(d->spool, &sp);
		series_set(d->s_spool_bytes, (double)sp.bytes);
		series_set(d->s_spool_inst, (double)sp.live_records);
		series_set(d->s_spool_seg, (double)sp.segments);
		series_set(d->s_spool_backlog,
		    (double)store_sink_backlog_total());
	}
}

static void
on_durable(void *arg, double seconds)
{
	struct daemon *d = arg;

	series_observe(d->s_durable, seconds);
}

static void
setup_metrics(struct daemon *d)
{
	double lag[LAG_NB - 1], commit[COMMIT_NB - 1];
	struct metrics *m;

	for (size_t b = 0; b < LAG_NB - 1; b++)
		lag[b] = (double)lag_bounds_us[b] / 1e6;
	for (size_t b = 0; b < COMMIT_NB - 1; b++)
		commit[b] = (double)(100ULL << b) / 1e6;
	d->metrics = m = metrics_new(1000);
	d->s_uptime = metric_series(metrics_gauge(m, "vnamig_uptime_seconds",
	    "Seconds since vnamigd started.", NULL), NULL);
	d->s_lag = metric_series(metrics_histogram(m,
	    "vnamig_loop_lag_seconds", "How late the event loop ran a 10 ms "
	    "timer: time spent busy elsewhere.", NULL, lag, LAG_NB - 1), NULL);
	d->m_conns = metrics_gauge(m, "vnamig_connections",
	    "Open connections by protocol and direction.", "proto,direction");
	d->m_store_state = metrics_gauge(m, "vnamig_store_state",
	    "1 for the state store's current state (ok, low: under "
	    "storage.min_free, failed: writes failing).", "state");
	d->s_commit = metric_series(metrics_histogram(m,
	    "vnamig_store_commit_seconds", "Time of one group commit (one "
	    "RocksDB write with WAL fsync).", NULL, commit, COMMIT_NB - 1),
	    NULL);
	d->s_units = metric_series(metrics_counter(m,
	    "vnamig_store_units_total", "Store units (atomic changes) made "
	    "durable.", NULL), NULL);
	d->s_store_free = metric_series(metrics_gauge(m,
	    "vnamig_store_free_bytes", "Free bytes on the state store's file "
	    "system.", NULL), NULL);
	d->s_audit = metric_series(metrics_gauge(m, "vnamig_audit_leaves",
	    "Durable leaves in the audit log.", NULL), NULL);
	d->s_spool_bytes = metric_series(metrics_gauge(m,
	    "vnamig_spool_bytes", "Bytes held in spool segments.", NULL),
	    NULL);
	d->s_spool_inst = metric_series(metrics_gauge(m,
	    "vnamig_spool_instances", "Instances held in the spool.", NULL),
	    NULL);
	d->s_spool_seg = metric_series(metrics_gauge(m,
	    "vnamig_spool_segments", "Spool segment files.", NULL), NULL);
	d->s_spool_backlog = metric_series(metrics_gauge(m,
	    "vnamig_spool_backlog_bytes", "Received bytes the spool's writer "
	    "thread has not written (and hashed) yet: how far it is behind "
	    "the network.", NULL), NULL);
	d->s_durable = metric_series(metrics_histogram(m,
	    "vnamig_spool_durable_seconds", "From a received instance's last "
	    "byte until its spool record is synced and its index rows and "
	    "audit leaf are durable: what a sender waits for its C-STORE "
	    "response (or, for an early-answered retrieve, until the engine "
	    "counts it received).", NULL, commit, COMMIT_NB - 1), NULL);
	store_sink_on_durable(on_durable, d);
	metrics_on_collect(m, collect, d);
}

/* Upper bound (µs) of the bucket holding the q-th quantile. */
static uint64_t
lag_quantile(const struct daemon *d, double q)
{
	uint64_t want = (uint64_t)((double)d->lag_n * q), seen = 0;

	for (size_t b = 0; b < LAG_NB; b++) {
		seen += d->lag_buckets[b];
		if (seen > want || seen == d->lag_n)
			return lag_bounds_us[b] < d->lag_max_us ?
			    lag_bounds_us[b] : d->lag_max_us;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Shutdown. */

static void
finish(void *arg)
{
	struct daemon *d = arg;
	json_t *ev;

	/* once: a second signal closes every connection, which may end
	 * the drain (on_empty) before it calls this itself */
	if (d->finished)
		return;
	d->finished = 1;
	ev = json_pack("{s:s, s:{s:I}, s:s}", "event", "daemon.stop",
	    "object", "uptime_s",
	    (json_int_t)((now_us() - d->started_us) / 1000000),
	    "outcome", "ok");
	store_loop_event(d->state, ev, NULL, NULL);
	json_decref(ev);
	log_info("shutdown-complete", "uptime_s=%llu",
	    (unsigned long long)((now_us() - d->started_us) / 1000000));
	event_base_loopexit(d->base, NULL);
}

static void
on_grace(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;
	unsigned n;

	(void)fd;
	(void)ev;
	n = net_server_close_all(d->net, "shutdown grace expired");
	log_warn("shutdown-forced", "connections_closed=%u grace_ms=%llu", n,
	    (unsigned long long)d->conf->limits.shutdown_grace_ms);
	finish(d);
}

static void
begin_shutdown(struct daemon *d, const char *sig)
{
	struct timeval tv;

	if (d->draining) {
		log_warn("shutdown-now", "signal=%s connections=%u", sig,
		    net_server_nconns(d->net));
		net_server_close_all(d->net, "second shutdown signal");
		finish(d);
		return;
	}
	d->draining = 1;
	log_info("shutdown-begin", "signal=%s connections=%u grace_ms=%llu",
	    sig, net_server_nconns(d->net),
	    (unsigned long long)d->conf->limits.shutdown_grace_ms);
	notify_drain(d->notify);	/* pending ones go after the restart */
	mig_drain(d->mig);	/* its studies resume at the next start */
	net_server_on_empty(d->net, finish, d);
	net_server_drain(d->net);
	tv = net_tv_ms(d->conf->limits.shutdown_grace_ms);
	evtimer_add(d->grace_timer, &tv);
}

static void
on_signal(evutil_socket_t sig, short ev, void *arg);

/* ---------------------------------------------------------------------- */
/* Reload (SIGHUP). */

/* The configuration file's absolute name, for the audit log (a leaf is
 * JSON: bytes of the name that are not UTF-8 go in as '?'). */
static const char *
conf_abs(const struct daemon *d, char buf[PATH_MAX])
{
	if (realpath(d->conf_path, buf) == NULL)
		snprintf(buf, PATH_MAX, "%s", d->conf_path);
	jw_utf8_scrub(buf);
	return buf;
}

/* Hex SHA-256 of a file's bytes ("" when unreadable): what the audit log
 * records of the configuration in force. */
static void
file_sha256(const char *path, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE], buf[16384];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	FILE *f = fopen(path, "re");
	size_t n;
	int ok = ctx != NULL && f != NULL &&
	    EVP_DigestInit_ex2(ctx, EVP_sha256(), NULL) == 1;

	while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		ok = EVP_DigestUpdate(ctx, buf, n) == 1;
	ok = ok && !ferror(f) && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
	out[0] = '\0';
	if (ok && mdlen == 32)
		hex_encode(md, 32, out);
	if (f != NULL)
		fclose(f);
	EVP_MD_CTX_free(ctx);
}

static void
log_change(const char *path, const char *old, const char *new,
    int restart, void *arg)
{
	json_array_append_new(arg, json_string(path));
	log_info("config-changed", "key=%s old=%s new=%s applied=%s", path,
	    log_q(old ? old : "(unset)"), log_q(new ? new : "(unset)"),
	    restart ? "after-restart" : "now");
}

static void
apply_logging(const struct conf *c)
{
	log_setup((enum log_level)c->logging.level, c->logging.syslog,
	    c->logging.ident, c->logging.phi);
}

static void
reload(struct daemon *d)
{
	struct conf *nc;
	char *errs, *line, *save = NULL;
	size_t n;

	log_info("reload-begin", "config=%s", log_q(d->conf_path));
	if ((nc = conf_load_file(d->conf_path, &errs)) == NULL) {
		for (line = strtok_r(errs, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save))
			log_err("reload-error", "error=%s", log_q(line));
		log_err("reload-failed", "config=%s action=%s",
		    log_q(d->conf_path), "kept-running-configuration");
		free(errs);
		char abs[PATH_MAX];
		json_t *ev = json_pack("{s:s, s:{s:s}, s:s, s:s}", "event",
		    "config.reload", "object", "config", conf_abs(d, abs),
		    "outcome", "refused", "reason", "the file has errors; "
		    "the running configuration was kept");
		store_loop_event(d->state, ev, NULL, NULL);
		json_decref(ev);
		return;
	}
	json_t *keys = json_array(), *ev;
	char digest[65], abs[PATH_MAX];

	n = conf_diff(d->conf, nc, log_change, keys);
	file_sha256(d->conf_path, digest);
	ev = json_pack("{s:s, s:{s:s, s:s, s:o}, s:s}", "event",
	    "config.reload", "object", "config", conf_abs(d, abs),
	    "config_sha256", digest, "changed", keys, "outcome", "ok");
	store_loop_event(d->state, ev, NULL, NULL);
	json_decref(ev);
	/* Settings that need a restart keep working from what the daemon
	 * copied at start (listeners, data dir); the rest read the new
	 * config from here on. */
	net_server_set_conf(d->net, nc);
	notify_set_conf(d->notify, nc);
	/* the store judges its free space against the new floor too */
	store_set_min_free(store_loop_store(d->state), nc->storage.min_free);
	resolve_peers(d->net, nc);
	conf_free(d->conf);
	d->conf = nc;
	apply_logging(nc);
	/* a window or a limit may have changed: the engine looks at every
	 * batch again now, not at the next minute (a quiet engine's tick
	 * skips its pass until then) */
	mig_kick(d->mig, 0);
	log_info("reload-done", "changes=%zu", n);
}

static void
on_signal(evutil_socket_t sig, short ev, void *arg)
{
	struct daemon *d = arg;

	(void)ev;
	if (sig == SIGHUP)
		reload(d);
	else
		begin_shutdown(d, sig == SIGTERM ? "TERM" : "INT");
}

/* ---------------------------------------------------------------------- */

static int
start_listeners(struct daemon *d)
{
	static const struct {
		const struct net_proto_ops *ops;
		size_t off;
	} ls[] = {
		{ &net_dicom_ops, offsetof(struct conf, dicom) },
		{ &net_http_ops, offsetof(struct conf, http) },
		{ &net_mllp_ops, offsetof(struct conf, mllp) },
	};
	char err[512];

	for (size_t i = 0; i < sizeof(ls) / sizeof(ls[0]); i++) {
		const struct conf_listen *lc =
		    (const void *)((const char *)d->conf + ls[i].off);

		if (!lc->enabled) {
			log_info("listener-off", "proto=%s", ls[i].ops->name);
			continue;
		}
		if (net_server_listen(d->net, lc, ls[i].ops, err,
		    sizeof(err)) < 0) {
			log_err("startup-failed", "error=%s", log_q(err));
			return -1;
		}
	}
	return 0;
}

/* A scheduled checkpoint of the whole state, then the oldest pruned.
 * It blocks the loop for a drain, a memtable flush and the hard links
 * (logged with how long). */
static void
on_ckpt_timer(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct store_ckpt_info info;
	char name[64], err[1024];
	struct tm tm;
	time_t now = time(NULL);
	uint64_t t0 = now_us();
	size_t pruned = 0;
	json_t *ev;

	(void)fd;
	(void)what;
	gmtime_r(&now, &tm);
	strftime(name, sizeof(name), "sched-%Y%m%dT%H%M%SZ", &tm);
	if (store_ckpt_create(store_loop_store(d->state),
	    store_loop_audit(d->state), d->data_dir, name,
	    STORE_CKPT_SCHEDULE, &info, err, sizeof(err)) != STORE_CKPT_OK) {
		log_err("state-checkpoint-failed", "name=%s error=%s", name,
		    log_q(err));
		return;
	}
	if (store_ckpt_prune(d->data_dir, d->conf->storage.checkpoints_keep,
	    &pruned, err, sizeof(err)) != STORE_CKPT_OK)
		log_warn("state-checkpoint-prune-failed", "error=%s",
		    log_q(err));
	log_info("state-checkpoint", "name=%s audit_size=%llu pruned=%zu "
	    "ms=%.1f", name, (unsigned long long)info.audit_size, pruned,
	    (double)(now_us() - t0) / 1000.0);
	ev = json_pack("{s:s, s:{s:s, s:s, s:I, s:s}, s:s}", "event",
	    "state.checkpoint", "object", "name", name, "reason", "schedule",
	    "audit_size", (json_int_t)info.audit_size, "audit_root",
	    info.audit_root, "outcome", "ok");
	notify_event(d->notify, d->state, ev);	/* leaf + webhooks */
	json_decref(ev);
}

/*
 * Someone refused at the door (net_server_refusal): a TLS handshake that
 * failed, an association rejected for good (a calling AE or address not
 * ours), an API call without a good key. An audit leaf,
 * "security.<kind>", with the address and why; the same kind from the
 * same address again within a minute is counted, not written, and the
 * next leaf says how many were (a flood cannot grow the log).
 */
static void
refusal(void *arg, const char *kind, const char *proto, const char *peer,
    const char *why)
{
	struct daemon *d = arg;
	char addr[80], ev[64];
	const char *colon = strrchr(peer, ':');
	/* the address without the port: "a.b.c.d:port", "[v6]:port" */
	size_t n = colon != NULL ? (size_t)(colon - peer) : strlen(peer);
	struct refusal *r;
	uint64_t h, now = now_us() / 1000;
	json_t *j;

	if (d->state == NULL)
		return;
	snprintf(addr, sizeof(addr), "%.*s", (int)n, peer);
	snprintf(ev, sizeof(ev), "security.%s", kind);
	h = hset_hash(ev, strlen(ev)) ^ hset_hash(addr, strlen(addr));
	r = &d->refusals[h % REFUSALS];
	if (r->h == h && now < r->at_ms + 60000) {
		r->suppressed++;
		return;
	}
	j = json_pack("{s:s, s:{s:s}, s:{s:s}, s:s, s:s}", "event", ev,
	    "actor", "peer", addr, "object", "protocol", proto, "outcome",
	    "refused", "reason", why);
	if (j == NULL)
		return;		/* (text that is not UTF-8: never, as called) */
	if (r->h == h && r->suppressed > 0)
		json_object_set_new(j, "suppressed", json_integer(
		    (json_int_t)r->suppressed));
	r->h = h;
	r->at_ms = now;
	r->suppressed = 0;
	store_loop_event(d->state, j, NULL, NULL);
	json_decref(j);
}

/* New instances are refused (0xA700) while the store cannot take them. */
static const char *
intake_gate(void *arg)
{
	struct daemon *d = arg;
	struct statvfs sv;
	uint64_t now;

	switch (store_state(store_loop_store(d->state))) {
	case STORE_OK:
		/* the spool may be on a file system of its own; asked for
		 * every instance and message, it is read every 100 ms */
		now = now_us();
		if (now - d->spool_at >= 100000) {
			int was = d->spool_low;
			uint64_t freeb = 0;

			d->spool_at = now;
			if (statvfs(d->conf->storage.spool_dir, &sv) == 0)
				freeb = (uint64_t)sv.f_bavail * sv.f_frsize;
			d->spool_low = d->conf->storage.min_free &&
			    freeb < d->conf->storage.min_free;
			/* said when it changes, with where and how much */
			if (d->spool_low && !was)
				log_warn("spool-low-space", "dir=%s "
				    "free_bytes=%llu min_free=%llu action=%s",
				    log_q(d->conf->storage.spool_dir),
				    (unsigned long long)freeb,
				    (unsigned long long)
				    d->conf->storage.min_free, "C-STOREs and "
				    "HL7 messages refused, no new retrieve "
				    "started, until there is room again");
			else if (!d->spool_low && was)
				log_info("spool-space-ok", "dir=%s "
				    "free_bytes=%llu", log_q(
				    d->conf->storage.spool_dir),
				    (unsigned long long)freeb);
		}
		if (d->spool_low)
			return "the spool's disk is below storage.min_free; "
			    "retry later";
		return NULL;
	case STORE_LOW:
		return "storage is below storage.min_free; retry later";
	case STORE_FAILED:
		break;
	}
	return "storage cannot write now; retry later";
}

static void
on_store_reset(void *arg)
{
	struct daemon *d = arg;

	if (d->api != NULL)
		api_reload(d->api);
	if (d->hl7in != NULL)
		hl7in_reload(d->hl7in);
}

static void
on_api_timer(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	(void)fd;
	(void)what;
	api_tick(d->api);
	hl7in_tick(d->hl7in);
}

#define RESTORE_PENDING	"restore-pending"

/*
 * A restore asked for over the API (daemon_restore) and not done yet:
 * do it now, before the state is opened. A checkpoint that cannot be
 * restored (gone, damaged) is reported and the current state kept; an
 * I/O failure stops the start with the request still pending.
 */
static int
pending_restore(struct daemon *d)
{
	char path[PATH_MAX], name[128], err[1024];
	const struct conf *c = d->conf;
	struct store_ckpt_open o;
	struct store_ckpt_restored r;
	enum store_ckpt_status s;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/" RESTORE_PENDING, d->data_dir);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(name, 1, sizeof(name) - 1, f);
	fclose(f);
	name[n] = '\0';
	name[strcspn(name, "\n")] = '\0';
	memset(&o, 0, sizeof(o));
	o.store.sync = STORE_SYNC_GROUP;
	o.store.block_cache = c->storage.block_cache;
	o.store.write_buffer = c->storage.write_buffer;
	o.store.max_open_files = c->storage.max_open_files;
	o.store.floor = 2 * c->storage.write_buffer + (16 << 20);
	o.audit.origin = c->audit.origin;
	o.audit.key_file = c->audit.key_file;
	o.audit.checkpoint_file = c->audit.checkpoint_file;
	o.audit.data_dir = d->data_dir;
	log_info("restore-begin", "checkpoint=%s", log_q(name));
	s = store_ckpt_restore(d->data_dir, name, &o, &r, err, sizeof(err));
	if (s == STORE_CKPT_FAILED) {
		log_err("startup-failed", "error=%s hint=%s", log_q(err),
		    log_q("the restore asked for over the API could not be "
		    "done; fix the cause and start again (it is retried), or "
		    "remove " RESTORE_PENDING " from the data directory to "
		    "keep the current state"));
		return -1;
	}
	if (s != STORE_CKPT_OK) {
		log_err("restore-refused", "checkpoint=%s status=%s error=%s "
		    "action=%s", log_q(name), store_ckpt_status_name(s),
		    log_q(err), "kept the current state");
		/* the log has its request (state.restore.requested): it
		 * gets the outcome too */
		d->refused = json_pack("{s:s, s:{s:s}, s:{s:s, s:s}, s:s, "
		    "s:s}", "event", "state.restore.refused", "actor", "node",
		    "startup", "object", "name", name, "status",
		    store_ckpt_status_name(s), "outcome", "refused", "reason",
		    err);
	}
	else
		log_info("restore-done", "checkpoint=%s audit_size=%llu "
		    "replaced=%s restore_seq=%llu", log_q(name),
		    (unsigned long long)r.from_audit_size, log_q(r.replaced),
		    (unsigned long long)r.restore_seq);
	if (unlink(path) < 0 || fs_sync_dir(d->data_dir) < 0) {
		log_err("startup-failed", "error=%s", log_q("cannot remove "
		    RESTORE_PENDING " from the data directory"));
		return -1;
	}
	return 0;
}

int
daemon_restore(struct daemon *d, const char *name, char *err,
    size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	int fd;

	snprintf(path, sizeof(path), "%s/" RESTORE_PENDING, d->data_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0640)) < 0 || write(fd, name, strlen(name)) !=
	    (ssize_t)strlen(name) || write(fd, "\n", 1) != 1 ||
	    fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0 ||
	    fs_sync_dir(d->data_dir) < 0) {
		snprintf(err, errlen, "cannot record the restore in %s: %s",
		    path, strerror(errno));
		return -1;
	}
	log_info("restore-requested", "checkpoint=%s action=%s", log_q(name),
	    "draining, then starting again");
	d->restart = 1;
	begin_shutdown(d, "restore");
	return 0;
}

int
daemon_restart_wanted(const struct daemon *d)
{
	return d->restart;
}

/* recovery_void: spool_recover took a receipt out of the index: its
 * leaf, in the same unit. */
static void
recovery_void(void *arg, struct store_batch *b, const struct spool_info *in)
{
	(void)arg;
	store_sink_void(b, in, "", "its index was durable and its bytes were "
	    "not when vnamigd or the machine stopped; its sender was never "
	    "answered");
}

static int
open_state(struct daemon *d)
{
	char err[1024], digest[65], abs[PATH_MAX];
	json_t *ev;

	if ((d->state = store_loop_open(d->base, d->conf, d->data_dir, 0, err,
	    sizeof(err))) == NULL) {
		log_err("startup-failed", "error=%s", log_q(err));
		return -1;
	}
	{
		struct spool_recovery rc;

		if ((d->spool = spool_open(d->conf->storage.spool_dir,
		    d->conf->storage.spool_segment, err, sizeof(err))) ==
		    NULL) {
			log_err("startup-failed", "error=%s", log_q(err));
			return -1;
		}
		/* receipts recovery voids get their leaves in its units */
		store_sink_use_spool(d->spool, d->state);
		spool_on_void(d->spool, recovery_void, d);
		if (spool_recover(d->spool, store_loop_store(d->state), &rc,
		    err, sizeof(err)) < 0) {
			spool_recovery_free(&rc);
			log_err("startup-failed", "error=%s", log_q(err));
			return -1;
		}
		log_info("spool-open", "dir=%s segments=%llu instances=%llu "
		    "orphans=%llu cut_bytes=%llu damaged_bytes=%llu "
		    "rehashed=%llu voided=%llu",
		    log_q(d->conf->storage.spool_dir),
		    (unsigned long long)rc.segments,
		    (unsigned long long)rc.records,
		    (unsigned long long)rc.orphans,
		    (unsigned long long)rc.cut_bytes,
		    (unsigned long long)rc.damaged,
		    (unsigned long long)rc.checked,
		    (unsigned long long)rc.voided);
		if (rc.orphans || rc.damaged || rc.reclaimed || rc.voided) {
			json_t *rev = json_pack("{s:s, s:{s:I, s:I, s:I, s:I, "
			    "s:I, s:I}, s:s}", "event", "spool.recovered",
			    "object", "segments", (json_int_t)rc.segments,
			    "instances", (json_int_t)rc.records,
			    "orphans_cut", (json_int_t)rc.orphans,
			    "empty_segments_removed",
			    (json_int_t)rc.reclaimed,
			    "damaged_bytes", (json_int_t)rc.damaged,
			    "receipts_voided", (json_int_t)rc.voided,
			    "outcome", rc.damaged ? "damaged" : "ok");
			store_loop_event(d->state, rev, NULL, NULL);
			json_decref(rev);
		}
		spool_recovery_free(&rc);
	}
	if (d->refused != NULL) {
		store_loop_event(d->state, d->refused, NULL, NULL);
		json_decref(d->refused);
		d->refused = NULL;
	}
	net_server_set_intake(d->net, intake_gate, d);
	net_server_set_refusal(d->net, refusal, d);
	if ((d->notify = notify_new(d->net, d->state, d->conf, d->metrics,
	    err, sizeof(err))) == NULL) {
		log_err("startup-failed", "error=%s", log_q(err));
		return -1;
	}
	if ((d->api = api_new(d, err, sizeof(err))) == NULL ||
	    (d->hl7in = hl7in_new(d, err, sizeof(err))) == NULL ||
	    (d->mig = mig_new(d, err, sizeof(err))) == NULL) {
		log_err("startup-failed", "error=%s", log_q(err));
		return -1;
	}
	store_on_reset(store_loop_store(d->state), on_store_reset, d);
	if ((d->api_timer = event_new(d->base, -1, EV_PERSIST, on_api_timer,
	    d)) == NULL)
		abort();
	net_timer_arm(d->api_timer, 60000);
	if (d->conf->storage.checkpoint_ms > 0) {
		if ((d->ckpt_timer = event_new(d->base, -1, EV_PERSIST,
		    on_ckpt_timer, d)) == NULL)
			abort();
		net_timer_arm(d->ckpt_timer, d->conf->storage.checkpoint_ms);
	}
	file_sha256(d->conf_path, digest);
	ev = json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:i}, s:s}",
	    "event", "daemon.start", "object", "version", PACKAGE_VERSION,
	    "ae_title", d->conf->node.ae_title, "config", conf_abs(d, abs),
	    "config_sha256", digest, "pid", (int)getpid(), "outcome", "ok");
	store_loop_event(d->state, ev, NULL, NULL);
	json_decref(ev);
	return 0;
}

struct daemon *
daemon_new(struct conf *conf, const char *conf_path)
{
	struct daemon *d = calloc(1, sizeof(*d));
	struct timeval tick = net_tv_ms(LAG_TICK_MS);

	if (d == NULL)
		abort();
	d->conf = conf;
	d->lock_fd = -1;
	d->started_us = now_us();
	if ((d->conf_path = strdup(conf_path)) == NULL ||
	    (d->data_dir = strdup(conf->node.data_dir)) == NULL)
		abort();
	apply_logging(conf);
	signal(SIGPIPE, SIG_IGN);
	if ((d->base = event_base_new()) == NULL)
		abort();
	d->net = net_server_new(d->base, conf, d);
	setup_metrics(d);
	net_server_set_metrics(d->net, d->metrics);
	if (store_committer_start(d->base) < 0)
		abort();
	d->sig_term = evsignal_new(d->base, SIGTERM, on_signal, d);
	d->sig_int = evsignal_new(d->base, SIGINT, on_signal, d);
	d->sig_hup = evsignal_new(d->base, SIGHUP, on_signal, d);
	d->lag_timer = event_new(d->base, -1, EV_PERSIST, on_lag_tick, d);
	d->grace_timer = evtimer_new(d->base, on_grace, d);
	if (!d->sig_term || !d->sig_int || !d->sig_hup || !d->lag_timer ||
	    !d->grace_timer)
		abort();
	evsignal_add(d->sig_term, NULL);
	evsignal_add(d->sig_int, NULL);
	evsignal_add(d->sig_hup, NULL);
	resolve_peers(d->net, d->conf);
	if (lock_data_dir(d) < 0 || pending_restore(d) < 0 ||
	    open_state(d) < 0 ||
	    start_listeners(d) < 0) {
		daemon_free(d);
		return NULL;
	}
	/* Start the lag probe once startup's own work is done. */
	d->lag_due_us = now_us() + LAG_TICK_MS * 1000;
	evtimer_add(d->lag_timer, &tick);
	log_info("ready", "version=%s ae_title=%s data_dir=%s shard=%u/%u "
	    "peers=%zu config=%s sha256=%s", PACKAGE_VERSION,
	    log_q(conf->node.ae_title), log_q(d->data_dir),
	    conf->node.shard_index, conf->node.shard_count, conf->npeers,
	    log_q(conf_path), sha256_impl());
	return d;
}

/* One export file: DIR/NAME, optionally through zstd. */
static FILE *
export_open(const char *dir, const char *name, FILE **raw, int zstd)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((*raw = fopen(path, "we")) == NULL) {
		fprintf(stderr, "vnamigd: cannot create %s: %s\n", path,
		    strerror(errno));
		return NULL;
	}
	if (!zstd)
		return *raw;
	FILE *z = zfile_writer(*raw, 9);

	if (z == NULL) {
		fprintf(stderr, "vnamigd: zstd: out of memory\n");
		fclose(*raw);
	}
	return z;
}

static int
export_close(FILE *f, FILE *raw, int zstd)
{
	int r = 0;

	if (zstd && fclose(f) != 0)
		r = -1;
	if (fflush(raw) != 0 || fsync(fileno(raw)) != 0)
		r = -1;
	if (fclose(raw) != 0)
		r = -1;
	return r;
}

int
daemon_audit_export(struct conf *conf, const char *conf_path,
    const char *dir, int zstd)
{
	struct daemon *d = calloc(1, sizeof(*d));
	FILE *lf = NULL, *lraw = NULL, *cf = NULL, *craw = NULL;
	char err[1024], *pem = NULL;
	int64_t n = -1;
	int rc = 3;

	if (d == NULL)
		abort();
	d->conf = conf;
	d->lock_fd = -1;
	if ((d->conf_path = strdup(conf_path)) == NULL ||
	    (d->data_dir = strdup(conf->node.data_dir)) == NULL ||
	    (d->base = event_base_new()) == NULL)
		abort();
	apply_logging(conf);
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		fprintf(stderr, "vnamigd: cannot create %s: %s\n", dir,
		    strerror(errno));
		goto out;
	}
	if (lock_data_dir(d) < 0)
		goto out;
	/* The export signs a checkpoint with the key that signs the log: a
	 * missing one would be made anew (a rotation nobody asked for, and
	 * an export the earlier key no longer verifies). */
	if (access(conf->audit.key_file, R_OK) < 0) {
		fprintf(stderr, "vnamigd: the audit key %s cannot be read (%s): "
		    "an export signs a checkpoint with the key that signs the "
		    "log (audit.key_file); put it back, or start the daemon to "
		    "make and record a new one\n", conf->audit.key_file,
		    strerror(errno));
		goto out;
	}
	if ((d->state = store_loop_open(d->base, conf, d->data_dir, 0, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "vnamigd: %s\n", err);
		goto out;
	}
	/* A checkpoint over everything, so the export is covered whole. */
	if (store_loop_checkpoint(d->state) < 0)
		goto out;
	store_drain(store_loop_store(d->state));
	rc = 4;
	if ((lf = export_open(dir, zstd ? "leaves.jsonl.zst" : "leaves.jsonl",
	    &lraw, zstd)) == NULL ||
	    (cf = export_open(dir, "checkpoints", &craw, 0)) == NULL)
		goto out;
	n = audit_export(store_loop_audit(d->state), lf, cf, &pem, err,
	    sizeof(err));
	if (n < 0)
		fprintf(stderr, "vnamigd: export: %s\n", err);
	if (export_close(lf, lraw, zstd) < 0 ||
	    export_close(cf, craw, 0) < 0) {
		fprintf(stderr, "vnamigd: writing to %s: %s\n", dir,
		    strerror(errno));
		n = -1;
	}
	lf = cf = NULL;
	if (n >= 0) {	/* every key the log was signed with */
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/audit-key.pub", dir);
		if (pem == NULL || (f = fopen(path, "we")) == NULL ||
		    fputs(pem, f) == EOF || fclose(f) != 0) {
			fprintf(stderr, "vnamigd: cannot write %s\n", path);
			n = -1;
		}
	}
	if (n >= 0) {
		char *ck = audit_latest_checkpoint(store_loop_audit(d->state));

		printf("exported %lld leaves to %s%s\n", (long long)n, dir,
		    zstd ? " (leaves.jsonl.zst)" : "");
		if (ck != NULL)
			printf("latest checkpoint:\n%s", ck);
		free(ck);
		rc = 0;
	}
out:
	if (lf != NULL)
		export_close(lf, lraw, zstd);
	if (cf != NULL)
		export_close(cf, craw, 0);
	free(pem);
	d->conf = NULL;		/* the caller's */
	store_loop_close(d->state);
	if (d->base)
		event_base_free(d->base);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	free(d->conf_path);
	free(d->data_dir);
	free(d);
	return rc;
}

int
daemon_run(struct daemon *d)
{
	event_base_dispatch(d->base);
	return d->exit_status;
}

const struct conf *
daemon_conf(const struct daemon *d)
{
	return d->conf;
}

struct hl7in *
daemon_hl7in(struct daemon *d)
{
	return d->hl7in;
}

struct api *
daemon_api(struct daemon *d)
{
	return d->api;
}

struct notify *
daemon_notify(struct daemon *d)
{
	return d->notify;
}

struct metrics *
daemon_metrics(struct daemon *d)
{
	return d->metrics;
}

struct net_server *
daemon_net(struct daemon *d)
{
	return d->net;
}

struct mig *
daemon_mig(struct daemon *d)
{
	return d->mig;
}

struct event_base *
daemon_base(struct daemon *d)
{
	return d->base;
}

struct spool *
daemon_spool(struct daemon *d)
{
	return d->spool;
}

struct store_loop *
daemon_state(struct daemon *d)
{
	return d->state;
}

const char *
daemon_data_dir(const struct daemon *d)
{
	return d->data_dir;
}

uint64_t
daemon_uptime_s(const struct daemon *d)
{
	return (now_us() - d->started_us) / 1000000;
}

/* The data directory: two system calls on a path, so probes share one
 * reading a second. */
static void
disk_check(struct daemon *d)
{
	struct statvfs sv;

	if (d->disk_at == 0 || now_us() - d->disk_at >= 1000000) {
		d->disk_at = now_us();
		d->disk_writable = access(d->data_dir, W_OK) == 0;
		d->disk_free = 0;
		if (statvfs(d->data_dir, &sv) == 0)
			d->disk_free = (uint64_t)sv.f_bavail * sv.f_frsize;
	}
}

int
daemon_ready(struct daemon *d)
{
	disk_check(d);
	return d->disk_writable && d->disk_free >=
	    d->conf->storage.min_free && store_state(store_loop_store(
	    d->state)) == STORE_OK && !d->draining && intake_gate(d) ==
	    NULL;
}

const char *
daemon_status_word(struct daemon *d)
{
	return daemon_ready(d) ? "ok" : d->draining ? "shutting_down" :
	    "degraded";
}

json_t *
daemon_health(struct daemon *d, int *ready)
{
	static const char *const protos[] = { "dicom", "http", "mllp" };
	json_t *h, *ls, *dd;
	uint64_t freeb = 0;
	int writable, room;

	disk_check(d);
	writable = d->disk_writable;
	freeb = d->disk_free;
	room = freeb >= d->conf->storage.min_free;
	int store_ready = 0;
	json_t *sj = store_loop_health(d->state, &store_ready);
	struct spool_stats sps;

	spool_stats(d->spool, &sps);
	json_object_set_new(sj, "spool", json_pack("{s:s, s:I, s:I, s:I}",
	    "dir", d->conf->storage.spool_dir,
	    "segments", (json_int_t)sps.segments,
	    "bytes", (json_int_t)sps.bytes,
	    "instances", (json_int_t)sps.live_records));

	/* the spool may be on a file system of its own: below min_free
	 * there, nothing can be taken in */
	json_object_set_new(json_object_get(sj, "spool"), "low",
	    json_boolean(intake_gate(d) != NULL && d->spool_low));
	*ready = writable && room && store_ready && !d->draining &&
	    intake_gate(d) == NULL;
	dd = json_pack("{s:s, s:b, s:I, s:I}", "path", d->data_dir,
	    "writable", writable, "free_bytes", (json_int_t)freeb,
	    "min_free_bytes", (json_int_t)d->conf->storage.min_free);
	ls = json_object();
	for (size_t i = 0; i < 3; i++)
		if (net_server_port(d->net, protos[i]) != 0)
			json_object_set_new(ls, protos[i], json_pack(
			    "{s:s, s:i}", "address",
			    net_server_address(d->net, protos[i]), "port",
			    (int)net_server_port(d->net, protos[i])));
	h = json_pack("{s:s, s:s, s:s, s:{s:i, s:i}, s:I, s:o, s:o, s:o, s:i, "
	    "s:{s:f, s:f}}",
	    "status", *ready ? "ok" : d->draining ? "shutting_down" :
	    "degraded", "version", PACKAGE_VERSION,
	    "ae_title", d->conf->node.ae_title,
	    "shard", "index", (int)d->conf->node.shard_index,
	    "count", (int)d->conf->node.shard_count,
	    "uptime_s", (json_int_t)((now_us() - d->started_us) / 1000000),
	    "data_dir", dd, "listeners", ls,
	    "store", sj,
	    "connections", (int)net_server_nconns(d->net),
	    "loop_lag_ms", "p99", (double)lag_quantile(d, 0.99) / 1000.0,
	    "max", (double)d->lag_max_us / 1000.0);
	/* the histogram itself, so that a phase can be measured by the
	 * difference of two readings: samples per bucket, by upper bound
	 * in µs (null: +Inf) */
	{
		json_t *le = json_array(), *n = json_array();

		for (size_t b = 0; b < LAG_NB; b++) {
			json_array_append_new(le, lag_bounds_us[b] ==
			    UINT64_MAX ? json_null() :
			    json_integer((json_int_t)lag_bounds_us[b]));
			json_array_append_new(n,
			    json_integer((json_int_t)d->lag_buckets[b]));
		}
		json_object_set_new(json_object_get(h, "loop_lag_ms"),
		    "bucket_le_us", le);
		json_object_set_new(json_object_get(h, "loop_lag_ms"),
		    "bucket_samples", n);
		json_object_set_new(json_object_get(h, "loop_lag_ms"),
		    "tick_ms", json_integer(LAG_TICK_MS));
	}
	return h;
}

void
daemon_free_(struct daemon *d)
{
	if (d == NULL)
		return;
	notify_free(d->notify);	/* its connections and units first */
	net_server_free(d->net);
	/* answers finished as connections closed may have ended units (a
	 * signed webhook repeat records its signature): they complete while
	 * the API and HL7 intake they call back into still exist */
	if (d->state != NULL)
		store_drain(store_loop_store(d->state));
	mig_free(d->mig);	/* its units' callbacks reach the API */
	api_free(d->api);
	hl7in_free(d->hl7in);
	if (d->api_timer)
		event_free(d->api_timer);
	store_committer_stop();	/* queued instances made durable first */
	if (d->state != NULL)	/* (and indexed, or voided) */
		store_drain(store_loop_store(d->state));
	store_sink_use_spool(NULL, NULL);
	store_sink_on_durable(NULL, NULL);
	spool_close(d->spool);		/* (it follows the store's resets) */
	store_loop_close(d->state);	/* last checkpoint signed */
	if (d->sig_term)
		event_free(d->sig_term);
	if (d->sig_int)
		event_free(d->sig_int);
	if (d->sig_hup)
		event_free(d->sig_hup);
	if (d->lag_timer)
		event_free(d->lag_timer);
	if (d->grace_timer)
		event_free(d->grace_timer);
	if (d->ckpt_timer)
		event_free(d->ckpt_timer);
	if (d->base)
		event_base_free(d->base);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	conf_free(d->conf);
	metrics_free(d->metrics);
	json_decref(d->refused);
	free(d->conf_path);
	free(d->data_dir);
	free(d);
}
