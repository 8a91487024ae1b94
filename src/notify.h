/*
 * notify.h — outbound event notifications (notify.webhooks): each event
 * a webhook's patterns match is POSTed to it as JSON, durably and at
 * least once.
 *
 * Transactional outbox. notify_emit() is called inside the store unit
 * that makes the change (api_commit): it puts one record per matching
 * webhook into that unit, in the meta column family under
 * ("outbox", u64 seq), so a notification exists if and only if its
 * change does. Delivery starts once the unit is durable (notify_settle).
 * Each webhook's records are delivered one at a time, in order (a
 * failing one holds the later ones back: order over throughput):
 *
 *	POST url
 *	Content-Type: application/json
 *	X-Vnamig-Event: batch.pause
 *	X-Vnamig-Delivery: VNAMIG-1732406038123000	(the body's id: dedup)
 *	X-Vnamig-Signature: t=UNIX,v1=HEX(HMAC-SHA256(secret, "T." || body))
 *
 *	{"actor":{...},"event":"batch.pause","id":"VNAMIG-...",
 *	 "object":{...},"time":"2026-11-23T23:59:59.123Z"}
 *
 * A 2xx deletes the record (a store unit). Anything else (another
 * status, no answer, a TLS or DNS failure) is an attempt: the record's
 * attempts and next_at (capped exponential backoff with jitter; a
 * Retry-After is honoured up to backoff_max) are updated durably and it
 * is tried again; after max_attempts it moves to ("outbox-dead", seq)
 * with its last error, the audit log gets a "notify.failed" leaf in the
 * same unit, and a warning is logged. On start the records left are
 * loaded and resumed, each webhook's in order. A record whose webhook is
 * no longer configured waits (counted, logged at start and on reload)
 * until a webhook of that name is configured again. A delivery whose
 * 2xx came but whose deletion did not become durable (a crash between)
 * is sent again: receivers deduplicate on X-Vnamig-Delivery.
 *
 * Which events: those of every change made over the API (api_commit)
 * and the scheduled checkpoint (notify_event); the daemon's own leaves
 * (daemon.start, config.reload, notify.failed) are not sent.
 *
 * Ids: "<node>-<seq>", node the AE title (".sN" added when sharded),
 * seq the record's key: at start it is set past both the last record
 * and the wall clock in microseconds, so that ids stay unique even after
 * a backup restore rolled the outbox back.
 *
 * Limit: notify.max_outbox records, pending and dead together. When an
 * emit would go past it the oldest dead records are dropped (in the same
 * unit; logged). Pending records are never dropped: when they alone fill
 * the outbox the emit still happens (a notification is never lost
 * silently), and the error is logged (once a minute) and counted in
 * vnamig_notify_outbox_overflow_total.
 *
 * Metrics: vnamig_notify_deliveries_total{webhook,outcome} (delivered,
 * retry, dead), vnamig_notify_outbox{state} (pending, dead).
 */
#ifndef VNAMIG_NOTIFY_H
#define VNAMIG_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct conf;
struct metrics;
struct net_server;
struct store_batch;
struct store_loop;
struct notify;
struct notify_ticket;

/*
 * notify_new: load the outbox from sl's store and start delivering on
 * s's loop, per conf (borrowed: notify_set_conf replaces it) into m (may
 * be NULL). Returns NULL with err when the outbox cannot be read.
 */
struct notify *notify_new(struct net_server *s, struct store_loop *sl,
    const struct conf *conf, struct metrics *m, char *err, size_t cap);
/* After a reload: webhooks are matched by name. */
void notify_set_conf(struct notify *n, const struct conf *conf);

/*
 * notify_emit: in the unit b being built, a record for each webhook
 * whose events match ev's "event" (ev: the audit event, with "object"
 * and "actor"; borrowed). Returns a ticket to hand to notify_settle when
 * the unit's fate is known, or NULL when no webhook wants ev (n may be
 * NULL: none).
 */
struct notify_ticket *notify_emit(struct notify *n, struct store_batch *b,
    const json_t *ev);
/* notify_settle: the unit of t is durable (err 0: deliver) or failed
 * (forget). Frees t; NULL-safe. */
void notify_settle(struct notify_ticket *t, int err);

/* notify_event: store_loop_event with notifications: one unit holding
 * the audit leaf for ev (borrowed) and its outbox records. Returns the
 * leaf's seq. For events made outside api_commit (the scheduled
 * checkpoint). */
uint64_t notify_event(struct notify *n, struct store_loop *sl,
    const json_t *ev);

/* notify_drain: the daemon is stopping: deliveries under way are
 * abandoned (their records stay pending) and no new one starts. */
void notify_drain(struct notify *n);
/* Drain, wait for this module's store units, free. NULL-safe. */
void notify_free_(struct notify *n);
#define notify_free(n) do { notify_free_(n); (n) = NULL; } while (0)

#endif
