/*
 * store_loop.h — the store and the audit log on the reactor: the store's
 * completion fd and group-commit kick as libevent events, the free-space
 * tick, and signed audit checkpoints on a timer. The daemon and the tools
 * that write state (vnamigd --audit-export, the store benchmark, the crash
 * tests' writer) open their state through here.
 */
#ifndef VNAMIG_STORE_LOOP_H
#define VNAMIG_STORE_LOOP_H

#include <jansson.h>

#include "store/audit.h"
#include "store/store.h"

struct event_base;
struct conf;
struct store_loop;

/*
 * store_loop_open: DATA_DIR/db with the configured options, and the audit
 * log with its key. Returns NULL with a message in err.
 */
#define STORE_LOOP_SYNC_ON_LOOP	0x1	/* fsync on the loop (benchmark) */
struct store_loop *store_loop_open(struct event_base *base,
    const struct conf *c, const char *data_dir, unsigned flags, char *err,
    size_t errlen);
/* Sign a last checkpoint, wait for every pending unit, close. */
void store_loop_close_(struct store_loop *sl);
#define store_loop_close(sl) do { store_loop_close_(sl); (sl) = NULL; } \
	while (0)

struct store *store_loop_store(struct store_loop *sl);
struct audit *store_loop_audit(struct store_loop *sl);

/*
 * store_loop_event: one unit holding only the audit leaf for EV (borrowed);
 * done (may be NULL) runs once it is durable. Returns the leaf's seq.
 */
uint64_t store_loop_event(struct store_loop *sl, json_t *ev,
    store_done_fn *done, void *arg);

/* Sign a checkpoint now if the log grew (the timer does this too). */
int store_loop_checkpoint(struct store_loop *sl);

/* The store's part of /api/health. */
json_t *store_loop_health(struct store_loop *sl, int *ready);

#endif
