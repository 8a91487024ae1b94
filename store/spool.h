/*
 * spool.h — received instance bytes: append-only segment files in the
 * spool directory, indexed in the store.
 *
 * A segment (SPOOL_DIR/<16 hex digits>.seg) holds records back to back.
 * A record is a 64-byte header and then one whole Part 10 file (preamble,
 * DICM, file meta, the dataset as received: never transcoded):
 *
 *	0   "VNSPOOL" 0x01	magic and record format 1
 *	8   u64 BE		record length, header included (0 until the
 *				record is committed)
 *	16  u64 BE		offset of the dataset within the record
 *	24  32 bytes		SHA-256 of the dataset bytes (the source
 *				hash: DESIGN.md "Verification levels" 1)
 *	56  8 bytes		zero
 *
 * Writing (one writer thread: the sink's committer): spool_begin takes a
 * lane (an open segment with no record in progress; a new segment when
 * none is free or the lane's segment is full), writes the header and the
 * file meta; spool_write appends dataset bytes, hashing them and feeding
 * the canonical and pixel digests (ds_digest) as they pass, the dataset's
 * SHA-256 and the pixel digest in one pass (ds_digest_feed), unless the
 * caller took them outside (struct spool_hasher); spool_commit
 * completes a group of records (their headers) and fdatasyncs each lane
 * the group touched once. A new segment's directory entry is synced when
 * it is created. spool_abort truncates the lane back to the record's
 * start.
 *
 * Indexing (the loop, in a store unit): spool_index puts the record's
 * index rows and the segment's committed end in the same unit as the
 * caller's state change and audit leaf; the C-STORE response waits for
 * it. The unit may be written while the record's bytes are synced
 * (spool_index_early: the two syncs overlap, and the response waits for
 * both); the segment's row then also says up to where its bytes were
 * known synced when it was written, and after a crash the records
 * indexed past that are re-hashed, and those not whole leave the index
 * (a sender never answered sends them again). After a crash, bytes past
 * a segment's committed end are a partial
 * tail (cut) or whole records whose bytes match their recorded hash but
 * which the index lacks: orphans, from a crash between the spool's sync
 * and the index's, or from a restored checkpoint older than they are.
 * Orphans are reported by SOP Instance UID and indexed again, never
 * dropped: one may have been acknowledged before a restore.
 *
 * Reclaiming: spool_release (the instance is verified at the target, or
 * its quarantine copy is made) drops the index rows; a segment no lane
 * writes to any more whose last record is released is deleted once that
 * unit is durable (spool_reclaim).
 *
 * Thread use: the writer functions on one thread, the rest on the loop;
 * the segment table they share is locked inside.
 */
#ifndef VNAMIG_SPOOL_H
#define VNAMIG_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"

#define SPOOL_HDR	64
#define SPOOL_UID_MAX	64

struct spool;
struct spool_rec;

/* A valid UID (PS3.5 9.1: 1..64 characters, digits and dots, no empty
 * component, no leading zero in one): only such are used in file names
 * or keys. */
int spool_uid_valid(const char *uid);

/* What the index holds of a committed record. */
struct spool_info {
	uint64_t	 seg, off;	/* segment id, record offset in it */
	uint64_t	 len;		/* record length, header included */
	uint64_t	 data_off;	/* dataset offset in the record */
	uint8_t		 sha256[32];	/* of the dataset bytes */
	uint8_t		 canonical[32];	/* ds_digest canonical digest */
	uint8_t		 pixel[32];	/* ds_digest pixel digest */
	int		 has_pixels;
	int		 digest_ok;	/* 0: the dataset did not parse
					 * whole (digests are zero) */
	char		 sop_class[SPOOL_UID_MAX + 1];
	char		 sop_instance[SPOOL_UID_MAX + 1];
	char		 ts_uid[SPOOL_UID_MAX + 1];
	/* the AE title that sent it ("" unknown): a source's copy and a
	 * target's read-back copy of one instance are told apart by it.
	 * Kept in the index and in the record's file meta (recovery reads
	 * it there); "" only for records written before it was. */
	char		 origin_ae[17];
};

/*
 * spool_open: the spool in DIR (created if needed), segments of about
 * SEGMENT bytes. Run spool_recover before writing.
 */
struct spool *spool_open(const char *dir, uint64_t segment, char *err,
    size_t errlen);
void spool_close_(struct spool *sp);
#define spool_close(sp) do { spool_close_(sp); (sp) = NULL; } while (0)

struct spool_recovery {
	uint64_t	 segments;	/* segment files found */
	uint64_t	 records;	/* indexed records */
	uint64_t	 cut_bytes;	/* partial tails and orphans cut */
	uint64_t	 orphans;	/* whole records found unindexed, and
					 * indexed again */
	uint64_t	 reclaimed;	/* empty segments deleted */
	uint64_t	 damaged;	/* indexed bytes missing from disk */
	uint64_t	 checked;	/* indexed records past a synced mark,
					 * re-hashed */
	uint64_t	 voided;	/* of them, not whole: taken out of
					 * the index (never acknowledged) */
	struct spool_info *void_list;	/* them (spool_recovery_free) */
};

/*
 * spool_recover: compare the segment files with the store's index:
 * re-hash the records indexed past their segment's synced mark (their
 * index is written while their bytes are synced: spool_index_early) and
 * take those not whole out of the index (listed in out: never
 * acknowledged, since their C-STORE response waits for both), index
 * whole unindexed records again (each logged with its SOP Instance UID),
 * cut partial tails, delete segments that hold nothing, report indexed
 * bytes that are missing (loudly: damaged). Existing segments are not
 * appended to again. 0, or -1 with err (unreadable directory or store, a
 * segment that cannot be synced). A record past a synced mark that cannot
 * be read is left indexed (damaged, logged; checked again next time).
 * Free out with spool_recovery_free.
 */
int spool_recover(struct spool *sp, struct store *st,
    struct spool_recovery *out, char *err, size_t errlen);
void spool_recovery_free(struct spool_recovery *r);
/* spool_on_void: fn(arg, b, in) for each record spool_recover takes out of
 * the index, in the unit B that does (its leaf goes with it). */
void spool_on_void(struct spool *sp, void (*fn)(void *, struct store_batch *,
    const struct spool_info *), void *arg);

/*
 * A dataset's hashes (the SHA-256 of its bytes, and its canonical and
 * pixel digests: ds_digest), taken as its bytes pass, in one pass
 * (ds_digest_feed). spool_write takes them itself; a caller that sees the
 * bytes before the writer does (the sink, on the loop, while they are
 * still in its cache) may take them there instead and hand them over
 * (spool_rec_hash_outside, spool_rec_hashes). Any thread; one at a time.
 */
struct spool_hashes {
	uint8_t		 sha256[32];
	uint8_t		 canonical[32];
	uint8_t		 pixel[32];
	int		 has_pixels;
	int		 digest_ok;	/* 0: the dataset did not parse whole
					 * (canonical and pixel are zero) */
};
struct spool_hasher;
/* For a dataset in transfer syntax TS_UID (unknown: the SHA-256 only).
 * Never NULL. */
struct spool_hasher *spool_hasher_new(const char *ts_uid);
void spool_hasher_feed(struct spool_hasher *h, const void *p, size_t n);
/* What the dataset's length is known to be at least so far (where its
 * Pixel Data ends), or 0: for spool_rec_expect. */
uint64_t spool_hasher_expect(const struct spool_hasher *h);
/* After the last byte. */
void spool_hasher_final(struct spool_hasher *h, struct spool_hashes *out);
void spool_hasher_free_(struct spool_hasher *h);
#define spool_hasher_free(h) do { spool_hasher_free_(h); (h) = NULL; } \
	while (0)

/* Writer side. */
/* spool_begin: a record of one instance; SENDING_AE (NULL or "" when not
 * known) is its origin_ae, kept in the record's file meta as well
 * (0002,0017), so that recovery finds it again. */
struct spool_rec *spool_begin(struct spool *sp, const char *sop_class,
    const char *sop_instance, const char *ts_uid, const char *sending_ae,
    char *err, size_t errlen);
int spool_write(struct spool_rec *r, const void *p, size_t n, char *err,
    size_t errlen);
/* The record's hashes are taken outside: spool_write only writes, and
 * spool_rec_hashes must give them before the record is finished (else
 * it fails, saying so). Right after spool_begin. */
void spool_rec_hash_outside(struct spool_rec *r);
void spool_rec_hashes(struct spool_rec *r, const struct spool_hashes *h);
/* The dataset will be at least END bytes long (spool_hasher_expect): a
 * record that will not fit the small-record buffer takes a lane of its
 * own now. 0, or -1 with err (the record failed). */
int spool_rec_expect(struct spool_rec *r, uint64_t end, char *err,
    size_t errlen);
/* The record is whole: its hashes and header are final and its lane takes
 * the next record (which the same fdatasync will then cover). Called by
 * spool_commit when not before. */
void spool_finish(struct spool_rec *r);
/* Complete N records and make them durable: headers written, each lane
 * fdatasynced once. Records that fail get -1 from spool_rec_status. */
void spool_commit(struct spool_rec **recs, size_t n);
int spool_rec_status(const struct spool_rec *r, const char **err);
/* The record is finished and will be indexed while spool_commit syncs it
 * (both before its sender is answered): what to index, or NULL (it
 * failed: index it never). A segment's row then says how far its bytes
 * are known synced; recovery re-hashes the records past that. */
const struct spool_info *spool_index_early(struct spool_rec *r);
const struct spool_info *spool_rec_info(const struct spool_rec *r);
/* Free the record after its commit (spool_done), or cut it from its lane
 * when it was never finished (spool_abort; a finished record stays: the
 * next recovery cuts it if it is never indexed). */
void spool_abort(struct spool_rec *r);
void spool_done(struct spool_rec *r);

/* Loop side. */
void spool_index(struct spool *sp, struct store_batch *b,
    const struct spool_info *in);
/* 1 when the bytes of segment SEG up to END are known synced (or the
 * segment is not known here: older than this process), else 0. */
int spool_durable(struct spool *sp, uint64_t seg, uint64_t end);
/* 1 found (*out filled), 0 not, -1 error: the newest record of an
 * instance. */
int spool_lookup(struct spool *sp, struct store *st, const char *sop_instance,
    struct spool_info *out);
int spool_get(struct store *st, uint64_t seg, uint64_t off,
    struct spool_info *out);
/* spool_each: fn(arg, seg, off) for every committed record of an
 * instance (a read-back from a target adds one beside the source's),
 * oldest index key first; fn returns nonzero to stop. How many, or -1. */
int spool_each(struct store *st, const char *sop_instance,
    int (*fn)(void *, uint64_t, uint64_t), void *arg);
/* spool_newest: the newest copy of an instance that ORIGIN_AE sent and
 * whose bytes are synced (spool_durable; a record indexed while its bytes
 * are synced is voided if they never get there), but SKIP (NULL: none).
 * 1 found (*out filled), 0 none, -1 error. */
int spool_newest(struct spool *sp, struct store *st, const char *sop_instance,
    const char *origin_ae, const struct spool_info *skip,
    struct spool_info *out);
/* spool_release: the record leaves the index in B's unit. 1 released;
 * 0 not there, or released already by a unit not yet finished (once,
 * whoever asks: its segment counts it out once); -1. */
int spool_release(struct spool *sp, struct store *st, struct store_batch *b,
    uint64_t seg, uint64_t off);
/* After the unit with the releases is durable: delete emptied segments.
 * Returns how many. */
unsigned spool_reclaim(struct spool *sp, struct store *st);
/* The path of a segment (for sending from it). */
void spool_seg_path(const struct spool *sp, uint64_t seg, char *buf,
    size_t n);

/* Every indexed record, in segment order; fn returns nonzero to stop.
 * -1 on a read error, else the number of rows that did not decode. */
typedef int spool_scan_fn(void *arg, const struct spool_info *in);
int spool_scan(struct store *st, spool_scan_fn *fn, void *arg);
/*
 * spool_read: copy a record's Part 10 file to OUT (NULL: only check it),
 * re-hashing its dataset bytes: 0 when they match the recorded SHA-256,
 * 1 when they do not (err says where), -1 when unreadable.
 */
int spool_read(const char *dir, const struct spool_info *in, FILE *out,
    char *err, size_t errlen);

/*
 * spool_quarantine: keep a record aside for REASON: its Part 10 file,
 * re-hashed, zstd-compressed to QDIR/<uid>-<seg>-<off>.dcm.zst (synced),
 * a quarantine row with the reason, and the record released from the
 * spool, in B. Blocking disk work on the caller's thread: quarantine is
 * rare. 0, or -1 with err (nothing changed; a record whose bytes no longer
 * match its hash is left in place).
 */
int spool_quarantine(struct spool *sp, struct store *st,
    struct store_batch *b, uint64_t seg, uint64_t off, const char *reason,
    const char *qdir, char *err, size_t errlen);

struct spool_stats {
	uint64_t	 segments, bytes, live_records;
};
void spool_stats(struct spool *sp, struct spool_stats *out);

#endif
