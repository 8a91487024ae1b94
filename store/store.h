/*
 * store.h — the daemon's durable state: one RocksDB per data dir, one
 * column family per kind of record (store/SCHEMA.md), and group commit.
 *
 * Group commit. Callers never write to RocksDB directly. A unit of work
 * (the writes that belong together: a state change and the audit leaf
 * that records it) is made between store_begin() and store_end():
 *
 *	struct store_batch *b = store_begin(st);
 *	store_put(b, STORE_CF_STUDIES, key, klen, val, vlen);
 *	audit_append(audit, b, leaf);
 *	store_end(b, done, arg);	// done(arg, 0) once durable
 *
 * Every unit ended while no sync is running joins the current group;
 * the group is handed to the store's sync thread at the end of the loop
 * turn (the kick callback), written as one WriteBatch and synced once
 * (WAL fsync). While a sync runs, the next group keeps filling. Done
 * callbacks run on the loop thread, from store_poll(), in the order the
 * units ended; only then may a peer be told its data is safe (DESIGN.md
 * "durable before acknowledged"). With sync: always, every unit is its
 * own group (one fsync each: the slow, simple policy).
 *
 * A unit is atomic: it lands whole or not at all. Units are atomic with
 * respect to each other too: a failed group fails every unit in it and
 * every unit gathered after it (they may depend on it, as audit leaves
 * do), and the reset hooks run so in-memory mirrors (the audit frontier)
 * reload from what is durable.
 *
 * Trouble (disk full, EIO) is a state, not a crash: store_state() says
 * whether new work may be taken; store_tick() (once a second) watches
 * free space against min_free and reopens the database after a failure
 * once there is room again.
 *
 * Not thread-safe except where noted: everything runs on the loop thread;
 * the sync thread only ever sees whole groups.
 */
#ifndef VNAMIG_STORE_H
#define VNAMIG_STORE_H

#include <stddef.h>
#include <stdint.h>

enum store_cf {
	STORE_CF_DEFAULT = 0,	/* unused: RocksDB requires it */
	STORE_CF_META,		/* schema version, ids, salts */
	STORE_CF_JOBS,		/* plans */
	STORE_CF_BATCHES,
	STORE_CF_STUDIES,
	STORE_CF_INSTANCES,
	STORE_CF_QUEUE,		/* (priority, order) → study */
	STORE_CF_SEEDS,		/* intake dedup */
	STORE_CF_HL7,		/* HL7 inbox */
	STORE_CF_SPOOL,		/* spool segments and their instances */
	STORE_CF_AUDIT_LEAF,	/* seq → canonical JSON leaf */
	STORE_CF_AUDIT_NODE,	/* (level, index) → perfect subtree hash */
	STORE_CF_AUDIT_CKPT,	/* size → signed checkpoint */
	STORE_CF_COUNTERS,
	STORE_CF__N
};

enum store_sync_mode { STORE_SYNC_GROUP = 0, STORE_SYNC_ALWAYS = 1 };

enum store_state {
	STORE_OK = 0,
	STORE_LOW,	/* below min_free: take no new work; writes still go */
	STORE_FAILED	/* a write failed: every write fails until recovery */
};

struct store;
struct store_batch;

/* The glue's part: make store_flush() run at the end of this loop turn
 * (delay_ms 0) or after delay_ms (commit_interval). */
typedef void store_kick_fn(void *arg, uint64_t delay_ms);

struct store_opts {
	const char		*dir;		/* the RocksDB directory */
	enum store_sync_mode	 sync;
	uint64_t		 commit_interval_ms;
	uint64_t		 block_cache;	/* bytes */
	uint64_t		 write_buffer;	/* bytes */
	uint32_t		 max_open_files;
	uint64_t		 min_free;	/* bytes free on dir's fs */
	uint64_t		 floor;		/* below this, no write is even
						 * tried (0 = none) */
	store_kick_fn		*kick;
	void			*kick_arg;
	int			 readonly;	/* read what is durable, beside a
						 * running daemon; no writes */
	int			 sync_on_loop;	/* write + fsync on the calling
						 * thread (benchmark only: the
						 * loop stalls for every sync) */
};

/*
 * store_open: open (creating if needed) the database in opts->dir with
 * every column family, and start the sync thread. Returns NULL with a
 * message in err on failure (the caller logs it and exits).
 */
struct store *store_open(const struct store_opts *opts, char *err,
    size_t errlen);
/* Waits for the running group, runs its callbacks, then closes. Units not
 * yet handed to the thread are failed. */
void store_close_(struct store *st);
#define store_close(st) do { store_close_(st); (st) = NULL; } while (0)

/* Writes. */
struct store_batch *store_begin(struct store *st);
void store_put(struct store_batch *b, enum store_cf cf, const void *key,
    size_t klen, const void *val, size_t vlen);
void store_del(struct store_batch *b, enum store_cf cf, const void *key,
    size_t klen);
/* err 0 = durable; otherwise the unit was not written (store_error()). */
typedef void store_done_fn(void *arg, int err);
void store_end(struct store_batch *b, store_done_fn *done, void *arg);
/* store_fail: a unit that cannot be made whole (a mirror it builds on
 * could not be read) fails, and with it its group, as a failed write
 * would: the store fails (WHY is its error), the reset hooks run, and
 * recovery reopens it. Called between store_begin and store_end. */
void store_fail(struct store_batch *b, const char *why);
/* Units are numbered as they end (from 1): store_unit_next is the number
 * the unit being built will have; store_unit_done the last one whose
 * outcome is known (its done callback has run, durable or failed). Units
 * finish in the order they ended. */
uint64_t store_unit_next(const struct store *st);
uint64_t store_unit_done(const struct store *st);

/* Hand the gathered group to the sync thread (the kick's target). */
void store_flush(struct store *st);
/* Readable when the sync thread has finished a group. */
int store_fd(const struct store *st);
/* Run the callbacks of finished groups; start the next group. */
void store_poll(struct store *st);
/* Block until every unit ended so far is durable or failed, running
 * their callbacks (shutdown, tools, tests). */
void store_drain(struct store *st);

/*
 * Reads see what is durable (units not yet synced are invisible).
 * store_get: 1 found (*val malloc'd, caller frees), 0 absent, -1 error.
 */
int store_get(struct store *st, enum store_cf cf, const void *key,
    size_t klen, void **val, size_t *vlen);
/* Every key starting with PREFIX, in order; fn returns nonzero to stop.
 * Returns -1 on a read error, else 0. */
typedef int store_scan_fn(void *arg, const void *key, size_t klen,
    const void *val, size_t vlen);
int store_scan(struct store *st, enum store_cf cf, const void *prefix,
    size_t plen, store_scan_fn *fn, void *arg);
/* The same, starting at the first key >= START (which should begin with
 * PREFIX): pagination. */
int store_scan_from(struct store *st, enum store_cf cf, const void *prefix,
    size_t plen, const void *start, size_t slen, store_scan_fn *fn,
    void *arg);
/* The last key with PREFIX: 1 found (*key malloc'd), 0 none, -1 error. */
int store_last(struct store *st, enum store_cf cf, const void *prefix,
    size_t plen, void **key, size_t *klen, void **val, size_t *vlen);

/* Called after a failed group and after recovery, in registration
 * order, so in-memory mirrors reload from durable state. */
typedef void store_reset_fn(void *arg);
void store_on_reset(struct store *st, store_reset_fn *fn, void *arg);
/* Forget a hook (its arg is going away). */
void store_off_reset(struct store *st, store_reset_fn *fn, void *arg);

enum store_state store_state(const struct store *st);
const char *store_state_name(enum store_state s);
/* Why the store failed; while it has not, why the last read failed (a
 * store_get, scan or last that returned -1); "" when neither. */
const char *store_error(const struct store *st);
/* Why the last read (store_get, scan, last) failed, whatever the state;
 * "" when it did not. */
const char *store_read_error(const struct store *st);
/* Free-space watch and recovery; call about once a second. */
void store_tick(struct store *st);
/* store_set_min_free: storage.min_free after a reload (the next tick
 * judges the free space against it). */
void store_set_min_free(struct store *st, uint64_t min_free);

struct store_stats {
	uint64_t	 groups, units, bytes;	/* written so far */
	uint64_t	 failed_units;
	uint64_t	 sync_us_last, sync_us_max, sync_us_sum;
	uint64_t	 sync_hist[16];	/* sync time: < 2^i * 100 us */
	uint64_t	 free_bytes;
	size_t		 pending_units;	/* ended, not yet durable */
};
void store_stats(struct store *st, struct store_stats *out);

/* The RocksDB handle, for checkpoints and backups (store_ckpt.c). */
struct rocksdb_t;
struct rocksdb_t *store_db(struct store *st);

const char *store_cf_name(enum store_cf cf);

#endif
