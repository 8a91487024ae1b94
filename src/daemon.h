/*
 * daemon.h — vnamigd's reactor: one event_base, the listeners, signals
 * (SIGTERM/SIGINT drain, SIGHUP reload), the data-dir lock, the loop-lag
 * probe, and the health summary the HTTP API serves.
 */
#ifndef VNAMIG_DAEMON_H
#define VNAMIG_DAEMON_H

#include <stdint.h>

#include <jansson.h>

struct conf;
struct daemon;

/*
 * daemon_new: take ownership of conf (loaded from conf_path), lock and
 * prepare the data dir, bind the listeners. Returns NULL after logging
 * why (the caller exits 3).
 */
struct daemon *daemon_new(struct conf *conf, const char *conf_path);
/* Run until drained; returns the process exit status. */
int daemon_run(struct daemon *d);
void daemon_free_(struct daemon *d);
#define daemon_free(d) do { daemon_free_(d); (d) = NULL; } while (0)

/*
 * daemon_audit_export: with the daemon stopped (the data dir is locked),
 * sign a checkpoint and write DIR/leaves.jsonl (or .jsonl.zst),
 * DIR/checkpoints and DIR/audit-key.pub for vnamig-verify. Returns the
 * exit status: 0, 3 (could not open the state), 4 (could not write).
 */
int daemon_audit_export(struct conf *conf, const char *conf_path,
    const char *dir, int zstd);

const struct conf *daemon_conf(const struct daemon *d);

/* The parts, for the API's handlers. */
struct api;
struct metrics;
struct net_server;
struct notify;
struct spool;
struct store_loop;
struct api *daemon_api(struct daemon *d);
struct hl7in;
struct hl7in *daemon_hl7in(struct daemon *d);
struct mig;
struct mig *daemon_mig(struct daemon *d);
struct event_base;
struct event_base *daemon_base(struct daemon *d);
struct notify *daemon_notify(struct daemon *d);
struct metrics *daemon_metrics(struct daemon *d);
struct net_server *daemon_net(struct daemon *d);
struct spool *daemon_spool(struct daemon *d);
struct store_loop *daemon_state(struct daemon *d);
const char *daemon_data_dir(const struct daemon *d);
uint64_t daemon_uptime_s(const struct daemon *d);
/* What GET /api/health says in brief: ready for work (1/0), and its
 * status word (ok, degraded, shutting_down). */
int daemon_ready(struct daemon *d);
const char *daemon_status_word(struct daemon *d);

/*
 * daemon_restore: restore the named checkpoint: record the request
 * durably (DATA_DIR/restore-pending), drain as on SIGTERM, and have
 * main() start vnamigd again (execv), which restores before it opens the
 * state. A restart by hand or a kill in between finishes it too. -1 with
 * err when the request cannot be recorded.
 */
int daemon_restore(struct daemon *d, const char *name, char *err,
    size_t errlen);
/* After daemon_run: start again (a restore was asked for). */
int daemon_restart_wanted(const struct daemon *d);

/*
 * daemon_health: a new JSON object describing liveness and readiness
 * (data dir writable with room, listeners up, loop lag); *ready is set to
 * 0 when the daemon should not be sent new work.
 */
json_t *daemon_health(struct daemon *d, int *ready);

#endif
