/*
 * mig.h — the migration engine: batches become studies, and each study
 * goes through a persisted state machine from the source archive to the
 * target archive, verified (DESIGN.md "Data flow of a pull migration"):
 *
 *   queued → querying → preflight → retrieving → sending → verifying
 *          → done | quarantined | failed | cancelled
 *
 *   querying    C-FIND at the source: STUDY level (the number of
 *               instances the source says it has), SERIES level, then
 *               IMAGE level per series: the expected SOP instance list.
 *   preflight   the same at the target: instances already there are
 *               skipped (recorded; not with force_full_repull).
 *   retrieving  C-MOVE to our own AE (or C-GET, per source) of the study,
 *               then of each instance still missing, up to
 *               migration.retrieve_attempts rounds; received instances
 *               are in the spool, hashed, before their C-STORE response.
 *               Still missing then: quarantined missing_at_source.
 *   sending     C-STORE from the spool to the target, pipelined on a
 *               pooled association. 0xA7xx and lost associations are
 *               retried (migration.send_attempts, capped exponential
 *               backoff); other failures quarantine the instance
 *               (target_rejected) and the study goes on.
 *   verifying   C-FIND IMAGE level at the target (peer verify: counts):
 *               every sent instance must be there, else verify_mismatch.
 *               With verify: none the C-STORE status is all there is.
 *
 * Every transition is one store unit: the study row, the changed
 * instance rows, spool releases and quarantine copies, and the audit
 * leaves (one per instance that ended, one per study). A step starts only
 * after the unit of the one before is durable, so after kill -9 every
 * study resumes at its last durable state; instances sent again are
 * harmless re-stores of the same bytes and are counted once.
 *
 * Store (store/SCHEMA.md):
 *	studies    ("st", u64 batch, str study UID)        → study JSON
 *	instances  (u64 batch, str study UID, str SOP UID)  → instance JSON
 *	studies    ("q", u64 id)                            → quarantine item
 *
 * The engine runs on the daemon's loop; it reads the batches the API and
 * HL7 intake write (mig_kick tells it one changed), and changes a batch's
 * state itself only from queued to running and from running to done.
 */
#ifndef VNAMIG_MIG_H
#define VNAMIG_MIG_H

#include <stdint.h>

#include <jansson.h>

struct conf_peer;
struct daemon;
struct mig;
struct store;

/* mig_new: load every unfinished batch and its studies, and start. NULL
 * with err when the state cannot be read. */
struct mig *mig_new(struct daemon *d, char *err, size_t cap);
/* mig_kick: batch id was created or changed (durable): read it again.
 * 0: the batches created since the last kick; MIG_KICK_ALL: every one. */
#define MIG_KICK_ALL	UINT64_MAX
void mig_kick(struct mig *m, uint64_t id);
/* mig_kick_brec: the same for a batch whose durable record the caller
 * wrote (r: what the engine takes of it; NULL members are absent):
 * nothing is read back. */
struct mig_brec {
	const char	*state, *source, *target;
	const char	*order;		/* "newest_first", "oldest_first" */
	const char	*push_source, *push_day;
	int		 force_full_repull, resolved, priority;
	uint64_t	 plan_id;
	int64_t		 prefetch_at_ms;
	const char	*created_by;	/* whom the engine works for */
	int		 finished;	/* its record says when it ended */
};
void mig_kick_brec(struct mig *m, uint64_t id, const struct mig_brec *r);
/* mig_drain: shutting down: start nothing more, drop the associations
 * in use (the durable state is where the next start resumes). */
void mig_drain(struct mig *m);
void mig_free_(struct mig *m);
#define mig_free(m) do { mig_free_(m); (m) = NULL; } while (0)

/* mig_progress: live counts of a batch the engine is working (NULL when
 * it is not): studies and instances by state, bytes, rate, ETA. */
json_t *mig_progress(struct mig *m, uint64_t id);
/*
 * Pausing the whole node (source NULL) or one source: no new step
 * starts there; steps under way finish. mig_pause_put writes the pause
 * record (rec: {by, time, reason}; NULL: the resume) into the caller's
 * unit b, mig_pause_apply makes it take effect once b is durable;
 * mig_pauses: the record in force (a new reference), or NULL.
 */
struct store_batch;
void mig_pause_put(struct store_batch *b, const char *source, json_t *rec);
void mig_pause_apply(struct mig *m, const char *source, json_t *rec);
json_t *mig_pauses(struct mig *m, const char *source);
/* mig_breaker: peer p's circuit breaker, as {state, failures, last}
 * (a new reference; see migration.breaker_failures). */
json_t *mig_breaker(struct mig *m, const struct conf_peer *p);
/* mig_plan_apply: plan id is now in state ("active", "paused",
 * "cancelled"): its batches start no new step while paused, and are
 * cancelled once it is cancelled. */
void mig_plan_apply(struct mig *m, uint64_t id, const char *state);
/* mig_counts: batch id's counts (as its record's "counts") from the
 * engine's live state, or NULL when the engine does not hold it (ended,
 * or not read yet): lists show a batch under way as it is. */
json_t *mig_counts(struct mig *m, uint64_t id);

/*
 * Quarantine actions (the API's handlers hold the batch and write the
 * item and the batch record). mig_quarantine_retry puts into b what
 * re-feeds item's instance through the pipeline: its row back to
 * expected, its study back to retrieving (fetched again from the
 * source). -1 with err when the study is being worked now (try when it
 * has ended). With release_by (an API key id: POST .../release of a
 * transform_error item) the instance is also marked to go as it is,
 * untransformed, from then on, its audit leaf saying who released it.
 * mig_quarantine_closed: once b is durable, the item left the open
 * quarantine (retried or released: its study is picked up again).
 */
int mig_quarantine_retry(struct mig *m, struct store_batch *b,
    const json_t *item, const char *release_by, char *err, size_t cap);
void mig_quarantine_closed(struct mig *m, const json_t *item, int retried);

/* mig_progress_all: GET /api/progress: per source and per target
 * (studies done and per hour, bytes, queue depth, ETA, the AIMD limit),
 * and the studies of the batches being worked by modality and by study
 * year. */
json_t *mig_progress_all(struct mig *m);

/* mig_status: the engine's part of GET /api/status. */
json_t *mig_status(struct mig *m);

/* ---- mig_report.c: reading what the engine wrote ---- */

/*
 * mig_report: the verification report of batch id (rec: its record): one
 * row per instance, one per study, the accessions and studies that did
 * not resolve, and the reconciliation summary. NULL with err on a read
 * error.
 */
json_t *mig_report(struct store *st, uint64_t id, json_t *rec, char *err,
    size_t cap);
/* mig_report_csv: the same report's instance rows as CSV (RFC 4180),
 * malloc'd, *len set. */
char *mig_report_csv(json_t *report, size_t *len);
/* mig_quarantine_list: quarantine items, newest first, filtered by reason
 * and batch (NULL / 0: any), at most limit, before id `before` (0: from
 * the newest). */
json_t *mig_quarantine_list(struct store *st, const char *reason,
    uint64_t batch, uint64_t before, size_t limit, char *err, size_t cap);
/* mig_quarantine_get: 1 found (*out), 0 not, -1 error. */
int mig_quarantine_get(struct store *st, uint64_t id, json_t **out);

#endif
