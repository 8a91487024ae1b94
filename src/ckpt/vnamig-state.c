/*
 * vnamig-state.c — named checkpoints, backups and offline restores of a
 * vnamigd data directory (store/store_ckpt.h does the work; this is the
 * command line, the data-dir lock and the words around it).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "conf/conf.h"
#include "src/net/store_loop.h"
#include "src/util/fsutil.h"
#include "src/util/log.h"
#include "store/store_ckpt.h"

#define DEFAULT_CONFIG SYSCONFDIR "/vnamigd.yaml"

enum {
	EXIT_OK = 0,
	EXIT_CONFIG = 1,
	EXIT_USAGE = 2,
	EXIT_STATE = 3,		/* the state cannot be opened */
	EXIT_BUSY = 4,		/* a vnamigd holds the data dir */
	EXIT_NOTFOUND = 5,
	EXIT_EXISTS = 6,
	EXIT_FAILED = 7,
	EXIT_DAMAGED = 8
};

static void
usage(FILE *f)
{
	fprintf(f,
"NAME\n"
"    vnamig-state - checkpoints, backups and restores of vnamigd's state\n"
"\n"
"SYNOPSIS\n"
"    vnamig-state [-c FILE] checkpoint create NAME\n"
"    vnamig-state [-c FILE] checkpoint list [--json]\n"
"    vnamig-state [-c FILE] checkpoint delete NAME\n"
"    vnamig-state [-c FILE] checkpoint prune KEEP\n"
"    vnamig-state [-c FILE] checkpoint restore NAME\n"
"    vnamig-state [-c FILE] backup create DIR\n"
"    vnamig-state backup list DIR [--json]\n"
"    vnamig-state backup verify DIR [ID]\n"
"    vnamig-state [-c FILE] backup restore DIR [ID]\n"
"    vnamig-state --version | --help\n"
"\n"
"DESCRIPTION\n"
"    vnamigd keeps its state (job state and the audit log) in one\n"
"    RocksDB database, DATA_DIR/db. vnamig-state makes named\n"
"    checkpoints of it inside the data directory and backups of it\n"
"    into another directory, and restores either. It reads node.data_dir\n"
"    and the audit settings (audit.key_file, audit.origin,\n"
"    audit.checkpoint_file) from the daemon's configuration.\n"
"\n"
"    Commands that open or change the state (create, delete, prune,\n"
"    restore, backup create) take DATA_DIR/vnamigd.lock as the daemon\n"
"    does and are refused while a vnamigd runs on the directory: stop\n"
"    it first. checkpoint list, backup list and backup verify only read\n"
"    and work at any time.\n"
"\n"
"COMMANDS\n"
"    checkpoint create NAME\n"
"        A RocksDB checkpoint of the state in DATA_DIR/checkpoints/NAME\n"
"        (table files are hard links, so a new checkpoint costs little\n"
"        disk until the database moves on) and DATA_DIR/checkpoints/\n"
"        NAME.json beside it: the name, when it was made, why (request\n"
"        here; the daemon also makes \"schedule\" and \"pause\" ones) and\n"
"        the audit log's size and root at that moment. NAME is 1 to 64\n"
"        of A-Z a-z 0-9 _ . - , not starting with '.', not ending in\n"
"        .json or .tmp; an existing name is refused.\n"
"    checkpoint list [--json]\n"
"        Every checkpoint, oldest first: name, time, reason, audit size\n"
"        and the bytes of its files (with --json also the audit root and\n"
"        the bytes hard-linked with the live state or other checkpoints).\n"
"        \"incomplete\" marks one whose create or delete was cut short.\n"
"    checkpoint delete NAME\n"
"        Remove a checkpoint.\n"
"    checkpoint prune KEEP\n"
"        Remove \"schedule\" checkpoints but the newest KEEP; others are\n"
"        never pruned.\n"
"    checkpoint restore NAME\n"
"        Put the job state back as it was at checkpoint NAME - any of\n"
"        them, not only the latest. The audit log is never rolled back:\n"
"        the whole current log (leaves, tree, signed checkpoints and its\n"
"        keys) is carried into the restored state and the restore is\n"
"        appended to it as a leaf \"state.restored\" naming the\n"
"        checkpoint, its time, its audit size and root and the size at\n"
"        the restore. The current state is kept, not deleted, as\n"
"        DATA_DIR/db.replaced-YYYYmmddTHHMMSSZ; the new one is built\n"
"        beside it and swapped in with one atomic rename.\n"
"    backup create DIR\n"
"        A backup with RocksDB's backup engine into DIR (created when\n"
"        missing; never inside DATA_DIR), incremental over the backups\n"
"        already there, with DIR/vnamig-backup-ID.json recording the\n"
"        audit log's size and root. Prints the new backup's ID.\n"
"    backup list DIR [--json]\n"
"        The backups in DIR: ID, time, bytes, files, audit size.\n"
"    backup verify DIR [ID]\n"
"        Check backup ID (default: every one): RocksDB's own check, then\n"
"        a trial restore into a scratch directory in DIR (every file's\n"
"        checksum is checked as it is copied) whose audit tree is\n"
"        recomputed from its leaves and compared with the stored tree\n"
"        and with the size and root recorded when the backup was made.\n"
"        The scratch copy is removed; DIR needs room for one restore.\n"
"    backup restore DIR [ID]\n"
"        Make DATA_DIR/db backup ID (default: the latest), after the\n"
"        same audit checks; DATA_DIR/db may be missing (a lost disk).\n"
"        Unlike a checkpoint restore, this brings back the backup's\n"
"        audit log: leaves appended after the backup are gone from the\n"
"        restored state. The restore is then appended as a leaf\n"
"        \"state.restored-from-backup\" (backup ID and time, the audit\n"
"        size restored and, when it could be read, the size replaced).\n"
"        Audit checkpoints signed after the backup (in\n"
"        DATA_DIR/audit-checkpoints, in earlier exports, or wherever\n"
"        they were sent) will show the log as rolled back, and\n"
"        vnamig-verify will say so when given them: that is the truth.\n"
"        The state replaced is kept as DATA_DIR/db.replaced-...\n"
"\n"
"    After either restore the restored state is opened once, which\n"
"    signs an audit checkpoint over the restore leaf.\n"
"\n"
"THE SPOOL\n"
"    DATA_DIR/spool (received instances) is not part of checkpoints or\n"
"    backups, and no restore touches it. Instances received after the\n"
"    checkpoint or backup stay in the spool; when vnamigd next starts,\n"
"    its spool recovery finds those the restored index lacks, re-hashes\n"
"    them and indexes them again (logged as spool-orphan). Segments the\n"
"    restored index lists but that were reclaimed since are reported as\n"
"    spool-damaged: those instances had been verified at the target.\n"
"    Nothing in the spool is deleted by a restore.\n"
"\n"
"OPTIONS\n"
"    -c, --config FILE\n"
"        The daemon's configuration (default %s).\n"
"    --json\n"
"        With list: one JSON array on stdout.\n"
"    -V, --version\n"
"        Print the version and exit.\n"
"    -h, --help\n"
"        Print this page and exit.\n"
"\n"
"FILES\n"
"    DATA_DIR/db/                      the state\n"
"    DATA_DIR/checkpoints/NAME/, NAME.json\n"
"                                      a checkpoint and its metadata\n"
"    DATA_DIR/db.replaced-TIME/        a state a restore replaced\n"
"    DATA_DIR/db.restore-TIME/         a restore being built; left by a\n"
"                                      crash, it is finished or removed\n"
"                                      at the next start (DATA_DIR/\n"
"                                      restore-swap says which)\n"
"    DATA_DIR/restore-swap             a restore's swap under way: the\n"
"                                      names and inodes of both states\n"
"    DATA_DIR/vnamigd.lock             held by the daemon and by this\n"
"    DATA_DIR-audit.pem                the audit key (audit.key_file); a\n"
"                                      restore needs it to sign\n"
"\n"
"EXIT STATUS\n"
"    0 done; 1 configuration error; 2 bad command line (unknown command,\n"
"    bad checkpoint name, a backup directory inside DATA_DIR); 3 the\n"
"    state cannot be opened (no DATA_DIR/db, no audit key, RocksDB\n"
"    error); 4 a vnamigd is running on the data directory; 5 no such\n"
"    checkpoint or backup (or an incomplete checkpoint); 6 the\n"
"    checkpoint name exists; 7 the operation failed (I/O, RocksDB: the\n"
"    message says what; the state is unchanged); 8 a backup or the\n"
"    audit log did not verify (the state is unchanged).\n"
"\n"
"EXAMPLES\n"
"    vnamig-state -c /etc/vnamigd.yaml checkpoint create before-batch-7\n"
"    vnamig-state -c /etc/vnamigd.yaml checkpoint restore before-batch-7\n"
"    vnamig-state -c /etc/vnamigd.yaml backup create /backup/vnamig\n"
"    vnamig-state backup verify /backup/vnamig\n"
"\n"
"SEE ALSO\n"
"    vnamigd(8), vnamig-verify(1), store/SCHEMA.md\n",
	    DEFAULT_CONFIG);
}

static int
status_exit(enum store_ckpt_status s)
{
	switch (s) {
	case STORE_CKPT_OK:		return EXIT_OK;
	case STORE_CKPT_BADARG:		return EXIT_USAGE;
	case STORE_CKPT_EXISTS:		return EXIT_EXISTS;
	case STORE_CKPT_NOTFOUND:	return EXIT_NOTFOUND;
	case STORE_CKPT_FAILED:		return EXIT_FAILED;
	case STORE_CKPT_DAMAGED:	return EXIT_DAMAGED;
	}
	return EXIT_FAILED;
}

static int
fail(enum store_ckpt_status s, const char *err)
{
	fprintf(stderr, "vnamig-state: %s\n", err);
	return status_exit(s);
}

/* ---------------------------------------------------------------------- */
/* The data directory: locked as vnamigd locks it. */

struct ctx {
	struct conf		*conf;
	const char		*data_dir;
	int			 lock_fd;
	struct event_base	*base;
	struct store_loop	*sl;
	int			 json;
};

static int
lock_data_dir(struct ctx *x)
{
	char holder[32];
	int pid_ok;

	x->lock_fd = fs_lock_dir(x->data_dir, holder, sizeof(holder), &pid_ok);
	if (x->lock_fd == -1) {
		fprintf(stderr, "vnamig-state: cannot open %s/vnamigd.lock: "
		    "%s\n", x->data_dir, strerror(errno));
		return EXIT_STATE;
	}
	if (x->lock_fd == -2) {
		x->lock_fd = -1;
		fprintf(stderr, "vnamig-state: %s is in use (%s/vnamigd.lock "
		    "held by pid %s, a running vnamigd): stop it first\n",
		    x->data_dir, x->data_dir, holder[0] ? holder : "?");
		return EXIT_BUSY;
	}
	{
		char err[1024];

		/* a restore's swap cut short is finished first */
		if (store_ckpt_settle(x->data_dir, 0, err, sizeof(err)) < 0) {
			fprintf(stderr, "vnamig-state: %s\n", err);
			return EXIT_STATE;
		}
	}
	return EXIT_OK;	/* an unwritten pid is a courtesy lost */
}

/* The state must be there (store_open would make an empty one) and so
 * must the key (audit_open would make a new one). */
static int
state_present(struct ctx *x)
{
	char path[4200];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/db/CURRENT", x->data_dir);
	if (stat(path, &sb) < 0) {
		fprintf(stderr, "vnamig-state: no state in %s/db (is "
		    "node.data_dir right?)\n", x->data_dir);
		return EXIT_STATE;
	}
	if (access(x->conf->audit.key_file, R_OK) < 0) {
		fprintf(stderr, "vnamig-state: the audit key %s cannot be read "
		    "(%s): check audit.key_file\n", x->conf->audit.key_file,
		    strerror(errno));
		return EXIT_STATE;
	}
	return EXIT_OK;
}

/* Lock, then open the state with its audit log on a private loop. */
static int
open_state(struct ctx *x)
{
	char err[1024];
	int rc;

	if ((rc = lock_data_dir(x)) != EXIT_OK || (rc = state_present(x)) !=
	    EXIT_OK)
		return rc;
	if ((x->base = event_base_new()) == NULL) {
		fprintf(stderr, "vnamig-state: out of memory\n");
		return EXIT_STATE;
	}
	if ((x->sl = store_loop_open(x->base, x->conf, x->data_dir, 0, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "vnamig-state: %s\n", err);
		return EXIT_STATE;
	}
	return EXIT_OK;
}

/* Close the state (signing an audit checkpoint if the log grew). */
static void
close_state(struct ctx *x)
{
	store_loop_close(x->sl);
	if (x->base != NULL)
		event_base_free(x->base);
	x->base = NULL;
}

/* The options the restores open states with: as store_loop_open's. */
static void
restore_opts(const struct ctx *x, struct store_ckpt_open *o)
{
	const struct conf *c = x->conf;

	memset(o, 0, sizeof(*o));
	o->store.sync = STORE_SYNC_GROUP;
	o->store.block_cache = c->storage.block_cache;
	o->store.write_buffer = c->storage.write_buffer;
	o->store.max_open_files = c->storage.max_open_files;
	o->store.floor = 2 * (c->storage.write_buffer ?
	    c->storage.write_buffer : 64 << 20) + (16 << 20);
	o->audit.origin = c->audit.origin;
	o->audit.key_file = c->audit.key_file;
	o->audit.checkpoint_file = c->audit.checkpoint_file;
	o->audit.data_dir = x->data_dir;
}

/* Open the restored state once the way the daemon does (and so sign an
 * audit checkpoint over the restore leaf). */
static int
reopen_restored(struct ctx *x)
{
	char err[1024];

	if ((x->base = event_base_new()) == NULL ||
	    (x->sl = store_loop_open(x->base, x->conf, x->data_dir, 0, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "vnamig-state: the state was restored but does "
		    "not open: %s\n", x->base ? err : "out of memory");
		return EXIT_FAILED;
	}
	close_state(x);
	return EXIT_OK;
}

/* ---------------------------------------------------------------------- */
/* checkpoint … */

static int
ckpt_create(struct ctx *x, const char *name)
{
	struct store_ckpt_info ci;
	enum store_ckpt_status s;
	char err[1024];
	int rc;

	if (!store_ckpt_name_ok(name, err, sizeof(err)))
		return fail(STORE_CKPT_BADARG, err);
	if ((rc = open_state(x)) != EXIT_OK)
		return rc;
	s = store_ckpt_create(store_loop_store(x->sl), store_loop_audit(x->sl),
	    x->data_dir, name, STORE_CKPT_REQUEST, &ci, err, sizeof(err));
	close_state(x);
	if (s != STORE_CKPT_OK)
		return fail(s, err);
	printf("checkpoint \"%s\" created in %s/checkpoints/%s (audit size "
	    "%" PRIu64 ", root %s, %" PRIu64 " bytes)\n", ci.name, x->data_dir,
	    ci.name, ci.audit_size, ci.audit_root, ci.bytes);
	return EXIT_OK;
}

static int
ckpt_list(struct ctx *x)
{
	struct store_ckpt_info *v;
	enum store_ckpt_status s;
	char err[1024];
	size_t n;

	if ((s = store_ckpt_list(x->data_dir, &v, &n, err, sizeof(err))) !=
	    STORE_CKPT_OK)
		return fail(s, err);
	if (x->json) {
		json_t *a = json_array();
		char *out;

		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, json_pack("{s:s, s:s?, s:s?, "
			    "s:I, s:s?, s:I, s:I, s:b}", "name", v[i].name,
			    "created", v[i].complete ? v[i].created : NULL,
			    "reason", v[i].complete ?
			    store_ckpt_reason_name(v[i].reason) : NULL,
			    "audit_size", (json_int_t)v[i].audit_size,
			    "audit_root", v[i].complete ? v[i].audit_root :
			    NULL, "bytes", (json_int_t)v[i].bytes,
			    "bytes_shared", (json_int_t)v[i].bytes_shared,
			    "complete", v[i].complete));
		out = json_dumps(a, JSON_INDENT(2));
		printf("%s\n", out ? out : "[]");
		free(out);
		json_decref(a);
	} else {
		printf("%-24s %-27s %-9s %10s %12s\n", "NAME", "CREATED",
		    "REASON", "AUDIT_SIZE", "BYTES");
		for (size_t i = 0; i < n; i++) {
			if (!v[i].complete) {
				printf("%-24s %-27s %-9s %10s %12" PRIu64 "\n",
				    v[i].name, "(incomplete)", "-", "-",
				    v[i].bytes);
				continue;
			}
			printf("%-24s %-27s %-9s %10" PRIu64 " %12" PRIu64 "\n",
			    v[i].name, v[i].created,
			    store_ckpt_reason_name(v[i].reason),
			    v[i].audit_size, v[i].bytes);
		}
	}
	free(v);
	return EXIT_OK;
}

static int
ckpt_delete(struct ctx *x, const char *name)
{
	enum store_ckpt_status s;
	char err[1024];
	int rc;

	if (!store_ckpt_name_ok(name, err, sizeof(err)))
		return fail(STORE_CKPT_BADARG, err);
	if ((rc = lock_data_dir(x)) != EXIT_OK)
		return rc;
	if ((s = store_ckpt_delete(x->data_dir, name, err, sizeof(err))) !=
	    STORE_CKPT_OK)
		return fail(s, err);
	printf("checkpoint \"%s\" deleted\n", name);
	return EXIT_OK;
}

static int
ckpt_prune(struct ctx *x, const char *keep_s)
{
	enum store_ckpt_status s;
	char err[1024], *end;
	unsigned long long keep;
	size_t del;
	int rc;

	errno = 0;
	keep = strtoull(keep_s, &end, 10);
	if (keep_s[0] < '0' || keep_s[0] > '9' || *end != '\0' || errno) {
		fprintf(stderr, "vnamig-state: prune KEEP: \"%s\" is not a "
		    "count\n", keep_s);
		return EXIT_USAGE;
	}
	if ((rc = lock_data_dir(x)) != EXIT_OK)
		return rc;
	if ((s = store_ckpt_prune(x->data_dir, (size_t)keep, &del, err,
	    sizeof(err))) != STORE_CKPT_OK)
		return fail(s, err);
	printf("%zu scheduled checkpoint(s) deleted, the newest %llu kept\n",
	    del, keep);
	return EXIT_OK;
}

static int
ckpt_restore(struct ctx *x, const char *name)
{
	struct store_ckpt_open o;
	struct store_ckpt_restored r;
	struct store_ckpt_info *v;
	enum store_ckpt_status s;
	char err[1024], created[40] = "?";
	size_t n;
	int rc;

	if (!store_ckpt_name_ok(name, err, sizeof(err)))
		return fail(STORE_CKPT_BADARG, err);
	if ((rc = lock_data_dir(x)) != EXIT_OK)
		return rc;
	if (store_ckpt_list(x->data_dir, &v, &n, err, sizeof(err)) ==
	    STORE_CKPT_OK) {
		for (size_t i = 0; i < n; i++)
			if (strcmp(v[i].name, name) == 0)
				memcpy(created, v[i].created, sizeof(created));
		free(v);
	}
	restore_opts(x, &o);
	if ((s = store_ckpt_restore(x->data_dir, name, &o, &r, err,
	    sizeof(err))) != STORE_CKPT_OK)
		return fail(s, err);
	printf("restored checkpoint \"%s\" (made %s, audit size %" PRIu64
	    ") into %s/db\n", name, created, r.from_audit_size, x->data_dir);
	printf("  job state:  as it was at the checkpoint\n");
	printf("  audit log:  kept whole (%" PRIu64 " leaves, not rolled "
	    "back); the restore is leaf %" PRIu64 " (\"state.restored\")\n",
	    r.replaced_audit_size, r.restore_seq);
	printf("  replaced:   the state before the restore is kept as %s\n",
	    r.replaced);
	printf("  spool:      not part of checkpoints: instances received "
	    "after the checkpoint stay in the spool for a later release to "
	    "reconcile; nothing was deleted\n");
	return reopen_restored(x);
}

/* ---------------------------------------------------------------------- */
/* backup … */

static int
parse_id(const char *s, uint32_t *id)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (s[0] < '1' || s[0] > '9' || *end != '\0' || errno ||
	    v > UINT32_MAX) {
		fprintf(stderr, "vnamig-state: backup ID \"%s\" is not a "
		    "number from 1\n", s);
		return -1;
	}
	*id = (uint32_t)v;
	return 0;
}

static int
backup_create(struct ctx *x, const char *dir)
{
	struct store_ckpt_backup b;
	enum store_ckpt_status s;
	char err[1024];
	int rc;

	if ((rc = open_state(x)) != EXIT_OK)
		return rc;
	s = store_ckpt_backup_create(store_loop_store(x->sl),
	    store_loop_audit(x->sl), x->data_dir, dir, &b, err, sizeof(err));
	close_state(x);
	if (s != STORE_CKPT_OK)
		return fail(s, err);
	printf("backup %" PRIu32 " created in %s (%s, %" PRIu64 " bytes, %"
	    PRIu32 " files, audit size %" PRIu64 ", root %s)\n", b.id, dir,
	    b.created, b.size, b.files, b.audit_size, b.audit_root);
	return EXIT_OK;
}

static int
backup_list(struct ctx *x, const char *dir)
{
	struct store_ckpt_backup *v;
	enum store_ckpt_status s;
	char err[1024];
	size_t n;

	if ((s = store_ckpt_backup_list(dir, &v, &n, err, sizeof(err))) !=
	    STORE_CKPT_OK)
		return fail(s, err);
	if (x->json) {
		json_t *a = json_array();
		char *out;

		for (size_t i = 0; i < n; i++) {
			json_t *o = json_pack("{s:I, s:s, s:I, s:I, s:I}",
			    "id", (json_int_t)v[i].id, "created", v[i].created,
			    "timestamp", (json_int_t)v[i].timestamp,
			    "bytes", (json_int_t)v[i].size,
			    "files", (json_int_t)v[i].files);

			json_object_set_new(o, "audit_size", v[i].have_audit ?
			    json_integer((json_int_t)v[i].audit_size) :
			    json_null());
			json_object_set_new(o, "audit_root", v[i].have_audit ?
			    json_string(v[i].audit_root) : json_null());
			json_array_append_new(a, o);
		}
		out = json_dumps(a, JSON_INDENT(2));
		printf("%s\n", out ? out : "[]");
		free(out);
		json_decref(a);
	} else {
		printf("%-6s %-21s %12s %6s %10s\n", "ID", "CREATED", "BYTES",
		    "FILES", "AUDIT_SIZE");
		for (size_t i = 0; i < n; i++) {
			char as[24] = "?";

			if (v[i].have_audit)
				snprintf(as, sizeof(as), "%" PRIu64,
				    v[i].audit_size);
			printf("%-6" PRIu32 " %-21s %12" PRIu64 " %6" PRIu32
			    " %10s\n", v[i].id, v[i].created, v[i].size,
			    v[i].files, as);
		}
	}
	free(v);
	return EXIT_OK;
}

static int
backup_verify(const char *dir, const char *ids)
{
	enum store_ckpt_status s;
	char err[1024];
	uint32_t id = 0;

	if (ids != NULL && parse_id(ids, &id) < 0)
		return EXIT_USAGE;
	if ((s = store_ckpt_backup_verify(dir, id, err, sizeof(err))) !=
	    STORE_CKPT_OK)
		return fail(s, err);
	if (id != 0)
		printf("backup %" PRIu32 " in %s verified\n", id, dir);
	else
		printf("every backup in %s verified\n", dir);
	return EXIT_OK;
}

static int
backup_restore(struct ctx *x, const char *dir, const char *ids)
{
	struct store_ckpt_open o;
	struct store_ckpt_restored r;
	enum store_ckpt_status s;
	char err[1024], was[64];
	uint32_t id = 0;
	int rc;

	if (ids != NULL && parse_id(ids, &id) < 0)
		return EXIT_USAGE;
	if (mkdir(x->data_dir, 0750) < 0 && errno != EEXIST) {
		fprintf(stderr, "vnamig-state: cannot create %s: %s\n",
		    x->data_dir, strerror(errno));
		return EXIT_STATE;
	}
	if ((rc = lock_data_dir(x)) != EXIT_OK)
		return rc;
	restore_opts(x, &o);
	if ((s = store_ckpt_backup_restore(x->data_dir, dir, id, &o, &r, err,
	    sizeof(err))) != STORE_CKPT_OK)
		return fail(s, err);
	if (r.replaced[0] == '\0')
		snprintf(was, sizeof(was), "there was no state before");
	else if (r.replaced_audit_size == UINT64_MAX)
		snprintf(was, sizeof(was), "the state replaced could not be "
		    "read");
	else
		snprintf(was, sizeof(was), "the state replaced had %" PRIu64,
		    r.replaced_audit_size);
	printf("restored backup %" PRIu32 " of %s (made %s) into %s/db\n",
	    r.backup_id, dir, r.backup_time, x->data_dir);
	printf("  audit log:  the backup's %" PRIu64 " leaves (%s); the "
	    "restore is leaf %" PRIu64 " (\"state.restored-from-backup\")\n",
	    r.from_audit_size, was, r.restore_seq);
	printf("  replaced:   %s\n", r.replaced[0] ? r.replaced :
	    "nothing (there was no state)");
	printf("  spool:      not part of backups: instances received after "
	    "the backup stay in the spool for a later release to reconcile; "
	    "nothing was deleted\n");
	printf("WARNING: the audit log is back to the backup's %" PRIu64
	    " leaves. Audit checkpoints signed after the backup was made (in "
	    "%s, in earlier exports, or wherever they were sent) will show "
	    "the log as rolled back, and vnamig-verify will say so when "
	    "given them. That is the truth: keep this output with the "
	    "reason for the restore.\n", r.from_audit_size,
	    x->conf->audit.checkpoint_file);
	return reopen_restored(x);
}

/* ---------------------------------------------------------------------- */

static int
need(int have, int min, int max, const char *synopsis)
{
	if (have >= min && have <= max)
		return 0;
	fprintf(stderr, "vnamig-state: usage: vnamig-state %s; see "
	    "vnamig-state --help\n", synopsis);
	return -1;
}

static int
load_conf(struct ctx *x, const char *path)
{
	char *errs = NULL;

	if ((x->conf = conf_load_file(path, &errs)) == NULL) {
		fputs(errs ? errs : "", stderr);
		fprintf(stderr, "vnamig-state: %s: configuration refused\n",
		    path);
		free(errs);
		return EXIT_CONFIG;
	}
	x->data_dir = x->conf->node.data_dir;
	return EXIT_OK;
}

/* Run WORDS (the command after the options). */
static int
run(struct ctx *x, const char *conf_path, int n, char **w)
{
	int rc;

	if (n < 2) {
		fprintf(stderr, "vnamig-state: expected \"checkpoint\" or "
		    "\"backup\" and what to do; see vnamig-state --help\n");
		return EXIT_USAGE;
	}
	if (strcmp(w[0], "backup") == 0 && strcmp(w[1], "list") == 0)
		return need(n, 3, 3, "backup list DIR [--json]") < 0 ? EXIT_USAGE :
		    backup_list(x, w[2]);
	if (strcmp(w[0], "backup") == 0 && strcmp(w[1], "verify") == 0)
		return need(n, 3, 4, "backup verify DIR [ID]") < 0 ?
		    EXIT_USAGE : backup_verify(w[2], n == 4 ? w[3] : NULL);
	if (strcmp(w[0], "checkpoint") == 0) {
		static const char *const cmds[] = { "create", "list", "delete",
		    "prune", "restore" };
		static const char *const syn[] = { "checkpoint create NAME",
		    "checkpoint list [--json]", "checkpoint delete NAME",
		    "checkpoint prune KEEP", "checkpoint restore NAME" };
		size_t i;

		for (i = 0; i < 5 && strcmp(w[1], cmds[i]) != 0; i++)
			;
		if (i == 5)
			goto unknown;
		if (need(n, i == 1 ? 2 : 3, i == 1 ? 2 : 3, syn[i]) < 0)
			return EXIT_USAGE;
		if ((rc = load_conf(x, conf_path)) != EXIT_OK)
			return rc;
		switch (i) {
		case 0: return ckpt_create(x, w[2]);
		case 1: return ckpt_list(x);
		case 2: return ckpt_delete(x, w[2]);
		case 3: return ckpt_prune(x, w[2]);
		default: return ckpt_restore(x, w[2]);
		}
	}
	if (strcmp(w[0], "backup") == 0 && (strcmp(w[1], "create") == 0 ||
	    strcmp(w[1], "restore") == 0)) {
		int create = w[1][0] == 'c';

		if (need(n, 3, create ? 3 : 4, create ? "backup create DIR" :
		    "backup restore DIR [ID]") < 0)
			return EXIT_USAGE;
		if ((rc = load_conf(x, conf_path)) != EXIT_OK)
			return rc;
		return create ? backup_create(x, w[2]) :
		    backup_restore(x, w[2], n == 4 ? w[3] : NULL);
	}
unknown:
	fprintf(stderr, "vnamig-state: unknown command \"%s %s\"; see "
	    "vnamig-state --help\n", w[0], w[1]);
	return EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct ctx x = { .lock_fd = -1 };
	const char *path = DEFAULT_CONFIG;
	char **words;
	int ch, n = 0, rc;

	while ((ch = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'j': x.json = 1; break;
		case 'V': printf("vnamig-state %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr, "vnamig-state: see vnamig-state "
			    "--help\n");
			return EXIT_USAGE;
		}
	}
	words = argv + optind;
	n = argc - optind;
	if (x.json && !(n >= 2 && strcmp(words[1], "list") == 0)) {
		fprintf(stderr, "vnamig-state: --json goes with list\n");
		return EXIT_USAGE;
	}
	log_setup(LOG_LVL_WARN, 0, "vnamig-state", 0);
	rc = run(&x, path, n, words);
	if (x.lock_fd >= 0)
		close(x.lock_fd);
	conf_free(x.conf);
	return rc;
}
