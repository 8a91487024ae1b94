/*
 * store_ckpt.h — named checkpoints and backups of the whole state
 * (DESIGN.md "Storage"; layout in store/SCHEMA.md).
 *
 * Checkpoints. A checkpoint is a RocksDB checkpoint of DATA_DIR/db in
 * DATA_DIR/checkpoints/NAME (its table files hard links into the live
 * database, so a fresh one costs little disk), with NAME.json beside it:
 *	{"v":1,"name":…,"created":RFC 3339 UTC,"reason":"request"|
 *	 "schedule"|"pause","audit":{"size":N,"root":hex}}
 * the audit log's durable size and root when it was taken. The spool
 * (DATA_DIR/spool) is not part of it.
 *
 * Restore from a checkpoint (offline: the daemon stopped, the caller
 * holding DATA_DIR/vnamigd.lock). Job state — every column family but
 * the audit ones — goes back to the checkpoint; the audit log never
 * does: audit_leaf, audit_node, audit_ckpt and the meta "audit.*" keys
 * are carried over from the current state, and the restore is appended
 * as one more leaf ("state.restored"), alone in its durable unit. The
 * new state is built beside the old one (DATA_DIR/db.restore-TS), then
 * swapped in with one atomic rename (RENAME_EXCHANGE), so DATA_DIR/db
 * is always a whole state; the replaced one is kept as
 * DATA_DIR/db.replaced-YYYYmmddTHHMMSSZ, never deleted here.
 *
 * Backups. RocksDB's backup engine in a directory the user names
 * (never inside DATA_DIR), with DIR/vnamig-backup-ID.json beside the
 * engine's files recording the audit size and root of each. A backup
 * restore brings the backup's audit log back with it (the log rolls
 * back to the backup: checkpoints signed later no longer match it, and
 * vnamig-verify says so), then appends "state.restored-from-backup".
 *
 * Nothing here runs on a loop: create and backup_create drain the store
 * first (every unit ended so far becomes durable) and block while
 * RocksDB writes; the daemon calls them from its loop knowing that.
 */
#ifndef VNAMIG_STORE_CKPT_H
#define VNAMIG_STORE_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "store/audit.h"
#include "store/store.h"

#define STORE_CKPT_NAME_MAX	64
#define STORE_CKPT_PATH_MAX	4096

enum store_ckpt_status {
	STORE_CKPT_OK = 0,
	STORE_CKPT_BADARG,	/* a bad name; a backup dir in DATA_DIR */
	STORE_CKPT_EXISTS,	/* the name is taken */
	STORE_CKPT_NOTFOUND,	/* no such checkpoint / backup / state */
	STORE_CKPT_FAILED,	/* I/O, RocksDB, the audit key: see err */
	STORE_CKPT_DAMAGED	/* a backup or carried log does not check */
};

enum store_ckpt_reason {
	STORE_CKPT_REQUEST = 0,
	STORE_CKPT_SCHEDULE,
	STORE_CKPT_PAUSE
};

struct store_ckpt_info {
	char			 name[STORE_CKPT_NAME_MAX + 1];
	char			 created[40];	/* RFC 3339 UTC, µs */
	enum store_ckpt_reason	 reason;
	uint64_t		 audit_size;
	char			 audit_root[2 * AUDIT_HASH + 1];
	uint64_t		 bytes;		/* the files of its db */
	uint64_t		 bytes_shared;	/* of which hard-linked
						 * elsewhere too */
	int			 complete;	/* db and metadata both there */
};

/* How the restores open the states they build (offline). */
struct store_ckpt_open {
	struct store_opts	 store;	/* template: dir is set per state;
					 * kick is not used */
	struct audit_opts	 audit;	/* the key must exist already */
};

/* What a restore did. */
struct store_ckpt_restored {
	char		 replaced[STORE_CKPT_PATH_MAX];	/* "" when there
							 * was no state */
	uint64_t	 from_audit_size;	/* the checkpoint's/backup's */
	uint64_t	 replaced_audit_size;	/* leaves of the state replaced
						 * (UINT64_MAX: unreadable) */
	uint64_t	 restore_seq;		/* the restore leaf */
	uint32_t	 backup_id;
	char		 backup_time[40];
};

struct store_ckpt_backup {
	uint32_t	 id;
	int64_t		 timestamp;		/* Unix seconds */
	char		 created[40];		/* RFC 3339 UTC */
	uint64_t	 size;			/* bytes */
	uint32_t	 files;
	int		 have_audit;		/* its vnamig-backup-ID.json */
	uint64_t	 audit_size;
	char		 audit_root[2 * AUDIT_HASH + 1];
};

const char *store_ckpt_reason_name(enum store_ckpt_reason r);
const char *store_ckpt_status_name(enum store_ckpt_status s);

/*
 * store_ckpt_name_ok: 1 when NAME may name a checkpoint: 1 to 64 of
 * [A-Za-z0-9_.-], not starting with '.' and not ending in ".json" or
 * ".tmp" (the metadata file and RocksDB's staging directory use those).
 * Otherwise 0 with the reason in err.
 */
int store_ckpt_name_ok(const char *name, char *err, size_t errlen);

/*
 * store_ckpt_create: drain ST, then checkpoint it as NAME with the audit
 * log's durable size and root (A) in its metadata. *out (may be NULL)
 * describes it. BADARG, EXISTS, FAILED (err says why; nothing is left
 * behind) or OK.
 */
enum store_ckpt_status store_ckpt_create(struct store *st, struct audit *a,
    const char *data_dir, const char *name, enum store_ckpt_reason reason,
    struct store_ckpt_info *out, char *err, size_t errlen);

/*
 * store_ckpt_list: every checkpoint under DATA_DIR/checkpoints, oldest
 * first (incomplete ones — a create or delete cut short — included, with
 * complete 0). *out is malloc'd (caller frees; NULL when none). OK (no
 * directory yet: none) or FAILED.
 */
enum store_ckpt_status store_ckpt_list(const char *data_dir,
    struct store_ckpt_info **out, size_t *n, char *err, size_t errlen);

/* store_ckpt_delete: remove NAME and its metadata. BADARG, NOTFOUND,
 * FAILED or OK. */
enum store_ckpt_status store_ckpt_delete(const char *data_dir,
    const char *name, char *err, size_t errlen);

/* store_ckpt_prune: delete "schedule" checkpoints but the newest KEEP;
 * *deleted (may be NULL) counts them. FAILED or OK. */
enum store_ckpt_status store_ckpt_prune(const char *data_dir, size_t keep,
    size_t *deleted, char *err, size_t errlen);

/*
 * store_ckpt_settle: before the state is opened (the caller holding
 * DATA_DIR/vnamigd.lock): a restore's swap cut short by a crash
 * (DATA_DIR/restore-swap left) is finished, forward when the restored
 * state was in place or half-way, back when the swap had not begun; and
 * with REFUSE_MISSING (the daemon, which would open an empty state and
 * begin a new audit log), a missing DATA_DIR/db beside db.restore-… or
 * db.replaced-… states is refused. 0, or -1 with err.
 */
int store_ckpt_settle(const char *data_dir, int refuse_missing, char *err,
    size_t errlen);

/*
 * store_ckpt_restore: offline (the caller holds the data-dir lock and no
 * store is open on DATA_DIR/db): make DATA_DIR/db the checkpoint NAME
 * with the current audit log carried over and the restore appended, as
 * described above. BADARG, NOTFOUND (no such checkpoint, incomplete, or
 * no current state to carry the log from), DAMAGED (the carried log does
 * not check: nothing changed), FAILED or OK (*out filled).
 */
enum store_ckpt_status store_ckpt_restore(const char *data_dir,
    const char *name, const struct store_ckpt_open *o,
    struct store_ckpt_restored *out, char *err, size_t errlen);

/*
 * store_ckpt_backup_create: drain ST and back it up into DIR (created if
 * missing) with the audit size and root beside it. *out (may be NULL)
 * gets the new backup. BADARG (DIR is inside DATA_DIR), FAILED or OK.
 */
enum store_ckpt_status store_ckpt_backup_create(struct store *st,
    struct audit *a, const char *data_dir, const char *dir,
    struct store_ckpt_backup *out, char *err, size_t errlen);

/* store_ckpt_backup_list: the backups in DIR by id (*out malloc'd).
 * NOTFOUND (DIR holds no backup engine), FAILED or OK. */
enum store_ckpt_status store_ckpt_backup_list(const char *dir,
    struct store_ckpt_backup **out, size_t *n, char *err, size_t errlen);

/*
 * store_ckpt_backup_verify: check backup ID (0: every one): RocksDB's
 * own check (files present, sizes), then a trial restore into a scratch
 * directory in DIR (RocksDB checks each file's checksum as it copies),
 * opened to recompute the audit tree from its leaves and compare it
 * with the stored tree and with the size and root recorded at backup
 * time. The scratch copy is removed. NOTFOUND, DAMAGED (err names the
 * backup and the problem), FAILED or OK.
 */
enum store_ckpt_status store_ckpt_backup_verify(const char *dir, uint32_t id,
    char *err, size_t errlen);

/*
 * store_ckpt_backup_restore: offline, as store_ckpt_restore: make
 * DATA_DIR/db backup ID of DIR (0: the latest) — its audit log included
 * — and append "state.restored-from-backup". DATA_DIR/db may be absent.
 * NOTFOUND, DAMAGED (the restored tree does not check: nothing changed),
 * FAILED or OK (*out filled).
 */
enum store_ckpt_status store_ckpt_backup_restore(const char *data_dir,
    const char *dir, uint32_t id, const struct store_ckpt_open *o,
    struct store_ckpt_restored *out, char *err, size_t errlen);

/* (audit_tree_check in store/audit.h checks a store's audit tree.) */

#endif
