/*
 * store_sink.h — where a received C-STORE dataset goes until the spool
 * (store issue) replaces it: one Part 10 file per instance in a
 * directory, DIR/<SOPInstanceUID>.dcm, written under a temporary name,
 * fsynced, renamed, and the directory fsynced: durable when
 * store_sink_commit() returns 0, never half-visible.
 *
 * The instance UID is validated before it becomes a file name (PS3.5
 * 9.1: 1..64 characters, digits and dots, no empty component, no leading
 * zero in a component), so "..", "/" or anything else never reaches the
 * file system.
 */
#ifndef VNAMIG_STORE_SINK_H
#define VNAMIG_STORE_SINK_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

struct store_sink;

/* store_uid_valid: 1 when uid is a valid UID (see above), else 0. */
int store_uid_valid(const char *uid);

/*
 * store_sink_use_spool: from now on, sinks begun with the committer
 * running write spool records (store/spool.h) instead of files; a commit
 * is done when the record is synced AND its index rows and the audit
 * leaf "instance.received" are durable in the store (one unit). The unit
 * is written while the record is synced (the two syncs overlap): when
 * the sync then fails, the record leaves the index again, with the leaf
 * "instance.receipt_voided" (store_sink_void), and the commit fails. DIR
 * is then unused.
 */
struct spool;
struct store_loop;
void store_sink_use_spool(struct spool *sp, struct store_loop *sl);
/* store_sink_on_spooled: fn(arg, info) on the loop each time a spooled
 * instance's record and index are durable (info->origin_ae says who sent
 * it), before its sender is answered; NULL: no one. */
struct spool_info;
void store_sink_on_spooled(void (*fn)(void *, const struct spool_info *),
    void *arg);
/* store_sink_set_push: the instance comes from push source SOURCE (a
 * peer with push_to): its commit also queues it for the migration engine
 * (studies ("pq", source, SOP UID) -> {study_uid, series_uid, ...,
 * segment, offset, bytes}) in the same unit, so what was answered is
 * never forgotten; the engine takes a row once its record's bytes are
 * synced (spool_durable). Spool mode. */
void store_sink_set_push(struct store_sink *s, const char *source,
    const char *study, const char *series);

/*
 * store_sink_begin: start the file for one instance in dir (created if
 * needed) with its Part 10 header (preamble, DICM, file meta), sent by AE
 * from ADDR (the audit leaf's actor; a spool record keeps AE as its
 * origin). Returns NULL with a message in err when the UIDs are invalid
 * or the file cannot be created.
 */
struct store_sink *store_sink_begin(const char *dir, const char *sop_class,
    const char *sop_instance, const char *ts_uid, const char *ae,
    const char *addr, char *err, size_t cap);
/* store_sink_write: n more dataset bytes. 0, or -1 with err (then abort). */
int store_sink_write(struct store_sink *s, const uint8_t *p, size_t n,
    char *err, size_t cap);
/* store_sink_commit: make the file durable under its final name and free
 * s, on the caller's thread (a sink begun without the committer). 0, or
 * -1 with err (the temporary file removed, s freed). */
int store_sink_commit(struct store_sink *s, char *err, size_t cap);
/*
 * The committer: store_sink_commit's work (fsync, rename, the directory's
 * fsync) on a thread of its own, so the reactor never waits for the disk.
 * It takes every sink queued since its last round as one group: each
 * file fsynced and renamed, then each directory fsynced once for the
 * whole group (group commit). The outcomes come back to the loop of base
 * (through a pipe), where done(arg, rc, err) runs: rc 0 when durable.
 */
struct store_commit;	/* one queued sink, until its done() has run */

/* store_committer_start: start the thread (once per process); 0 or -1. */
int store_committer_start(struct event_base *base);
/* store_committer_stop: finish what is queued, join the thread. */
void store_committer_stop(void);
/* store_sink_commit_async: queue s (taken over); NULL when the committer
 * is not running or s was begun without it (then commit synchronously).
 * The returned handle may be cancelled until done() has run. */
struct store_commit *store_sink_commit_async(struct store_sink *s,
    void (*done)(void *arg, int rc, const char *err), void *arg);
/* store_commit_cancel: done() will not run (the file is still made
 * durable: it was received whole). */
void store_commit_cancel(struct store_commit *c);

/*
 * With the committer running, every disk operation of a sink happens on
 * its thread, in order: store_sink_begin queues the file's creation,
 * store_sink_write a copy of the bytes (a failure shows at commit), so
 * the reactor never waits for the disk. Back-pressure is the caller's:
 * store_sink_backlog_over says whether too many bytes wait to be
 * written, and store_sink_on_drain asks for fn(arg) on the loop once the
 * sink's are (1: it will be called; 0: nothing waits, it will not).
 * Without the committer (the tools) the calls write at once and nothing
 * waits.
 */
/* Bytes of every sink waiting for the committer to write them: how far
 * the writer thread is behind what the loop received (/metrics). */
uint64_t store_sink_backlog_total(void);
/* Whether S, or all sinks together, hold more than LIMIT bytes for the
 * disk (one look under the lock). */
int store_sink_backlog_over(struct store_sink *s, uint64_t limit);
/* store_sink_on_durable: fn(arg, seconds) on the loop for each spooled
 * instance made durable (record synced, index and audit leaf in the
 * store): the time from its last byte (store_sink_commit_async) to then;
 * NULL: no one. */
void store_sink_on_durable(void (*fn)(void *, double), void *arg);
/* store_sink_void: a receipt that did not hold (a record indexed while
 * it was synced, whose sync failed, or one spool_recover took out of the
 * index: never acknowledged): the leaf "instance.receipt_voided" in B
 * (actor: the peer ACTOR, or "" for the node at startup; reason WHY).
 * and push queue rows naming the record then name the newest durable
 * copy from the same sender, or go (a row a unit on its way writes again
 * is left to it). Taking the record out of the index is the caller's.
 * After store_sink_use_spool. */
struct spool_info;
struct store_batch;
void store_sink_void(struct store_batch *b, const struct spool_info *in,
    const char *actor, const char *why);
/* store_sink_pq_busy: 1 while a unit not yet durable writes the push
 * queue row (source SRC, SOP Instance UID SOP): the engine leaves such a
 * row for a later drain. */
int store_sink_pq_busy(const char *src, const char *sop);
int store_sink_on_drain(struct store_sink *s, void (*fn)(void *), void *arg);
/* store_sink_cancel_drain: fn will not be called (s queued for commit
 * stays valid until its done() has run). */
void store_sink_cancel_drain(struct store_sink *s);

/* store_sink_abort: remove the temporary file and free s; NULL is fine. */
void store_sink_abort(struct store_sink *s);
/* Bytes written so far (header included). */
uint64_t store_sink_bytes(const struct store_sink *s);

#endif
