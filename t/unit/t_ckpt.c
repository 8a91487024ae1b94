/*
 * t_ckpt.c — named checkpoints and backups of the whole state
 * (store/store_ckpt.c) on a real store and audit log: names, create /
 * list / delete / prune, restoring an older checkpoint (job state goes
 * back, the audit log keeps every leaf plus the restore leaf and its
 * tree still verifies), restoring one after another, backup create /
 * list / verify / restore round trips, a damaged backup, and refusals.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "src/util/log.h"
#include "store/audit.h"
#include "store/store.h"
#include "store/store_ckpt.h"
#include "store/store_key.h"
#include "t/unit/tap.h"

static char tmp[256], data[300], key[300], ckfile[340];
static struct store *st;
static struct audit *au;

static char err[512];

/* A store_ckpt status, with err shown when it is not the one wanted. */
#define is_st(got, want, ...) do { \
	int g_ = (int)(got), w_ = (int)(want); \
	if (!ok(g_ == w_, __VA_ARGS__)) \
		diag("  got %s, expected %s: %s", \
		    store_ckpt_status_name((enum store_ckpt_status)g_), \
		    store_ckpt_status_name((enum store_ckpt_status)w_), err); \
} while (0)

/* The same for a refusal, whose reason is shown either way. */
#define is_refused(got, want, ...) do { \
	is_st(got, want, __VA_ARGS__); \
	diag("  %s", err); \
} while (0)

static void
open_all(void)
{
	struct store_opts so = { 0 };
	struct audit_opts ao = { 0 };
	char dir[400];

	snprintf(dir, sizeof(dir), "%s/db", data);
	so.dir = dir;
	so.block_cache = 4 << 20;
	so.write_buffer = 4 << 20;
	if ((st = store_open(&so, err, sizeof(err))) == NULL) {
		diag("store_open: %s", err);
		return;
	}
	ao.origin = "vnamig/test";
	ao.key_file = key;
	ao.checkpoint_file = ckfile;
	ao.data_dir = data;
	if ((au = audit_open(st, &ao, err, sizeof(err))) == NULL)
		diag("audit_open: %s", err);
}

static void
close_all(void)
{
	audit_close(au);
	store_close(st);
}

static void
open_opts(struct store_ckpt_open *o)
{
	memset(o, 0, sizeof(*o));
	o->store.block_cache = 4 << 20;
	o->store.write_buffer = 4 << 20;
	o->audit.origin = "vnamig/test";
	o->audit.key_file = key;
	o->audit.checkpoint_file = ckfile;
	o->audit.data_dir = data;
}

/* One unit, as t/store-writer makes them: a study row, a job row, the
 * counter, a non-audit meta key and the audit leaf. */
static void
transition(uint64_t t)
{
	struct store_batch *b = store_begin(st);
	struct store_key k;
	uint8_t cv[8];
	char val[64];
	int vn = snprintf(val, sizeof(val), "{\"v\":1,\"t\":%llu}",
	    (unsigned long long)t);
	json_t *ev = json_pack("{s:s, s:{s:I}, s:s}", "event",
	    "test.transition", "object", "t", (json_int_t)t, "outcome", "ok");

	store_key_init(&k);
	store_key_cstr(&k, "writer");
	store_key_u64(&k, t);
	store_put(b, STORE_CF_STUDIES, k.b, k.len, val, (size_t)vn);
	store_put(b, STORE_CF_JOBS, k.b, k.len, val, (size_t)vn);
	store_be64_put(cv, t + 1);
	store_put(b, STORE_CF_COUNTERS, "transitions", 11, cv, 8);
	store_put(b, STORE_CF_META, "job.last", 8, cv, 8);
	audit_append(au, b, ev);
	json_decref(ev);
	store_end(b, NULL, NULL);
}

static void
fill(uint64_t from, uint64_t to)
{
	for (uint64_t t = from; t < to; t++)
		transition(t);
	store_drain(st);
}

static uint64_t
counter(const char *ck, size_t n, enum store_cf cf)
{
	void *v;
	size_t vn;
	uint64_t c = UINT64_MAX;

	if (store_get(st, cf, ck, n, &v, &vn) == 1 && vn == 8)
		c = store_be64_get(v);
	free(v);
	return c;
}

static int
count1(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
	(void)k;
	(void)kl;
	(void)v;
	(void)vl;
	(*(uint64_t *)arg)++;
	return 0;
}

static uint64_t
rows(enum store_cf cf)
{
	uint64_t n = 0;

	store_scan(st, cf, "", 0, count1, &n);
	return n;
}

/* The leaf hashes of the first N leaves (malloc'd). */
static uint8_t *
leaf_hashes(uint64_t n)
{
	uint8_t *h = calloc(n ? n : 1, AUDIT_HASH);

	for (uint64_t i = 0; h != NULL && i < n; i++)
		if (audit_leaf(au, i, h + i * AUDIT_HASH, NULL, NULL) < 0)
			memset(h + i * AUDIT_HASH, 0xee, AUDIT_HASH);
	return h;
}

static json_t *
leaf_json(uint64_t seq)
{
	char *j = NULL;
	size_t n;
	json_error_t je;
	json_t *r = NULL;

	if (audit_leaf(au, seq, NULL, &j, &n) == 0)
		r = json_loadb(j, n, 0, &je);
	free(j);
	return r;
}

static const char *
jstr(json_t *j, const char *a, const char *b)
{
	json_t *o = json_object_get(j, a);

	return json_string_value(b ? json_object_get(o, b) : o);
}

static long long
jint(json_t *j, const char *a, const char *b)
{
	json_t *o = json_object_get(j, a);

	return json_integer_value(b ? json_object_get(o, b) : o);
}

static void
test_names(void)
{
	static const char *const good[] = { "a", "before-batch-7",
	    "2024.05.01_night", "A-Z.a_z-0.9",
	    "x234567890123456789012345678901234567890123456789012345678901234" };
	static const char *const bad[] = { "", ".", "..", ".hidden", "a/b",
	    "../x", "a b", "naïve", "x.json", "x.tmp", "a\nb", "a*",
	    "x2345678901234567890123456789012345678901234567890123456789012345" };
	int g = 0, b = 0;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		g += store_ckpt_name_ok(good[i], err, sizeof(err));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (!store_ckpt_name_ok(bad[i], err, sizeof(err)) && err[0])
			b++;
		else
			diag("accepted: \"%s\"", bad[i]);
	}
	is_int(g, 5, "names of 1 to 64 of [A-Za-z0-9_.-] are accepted");
	is_int(b, 13, "empty, 65 long, '.', '..', hidden, with '/', space, "
	    "non-ASCII, newline, '*', ending .json/.tmp: refused with a "
	    "reason");
}

/* Everything about one checkpoint restore: the state before (size L,
 * hashes H, root R), what the restore reported. */
static void
check_restored(const char *name, uint64_t want_t, uint64_t L,
    const uint8_t *H, const uint8_t R[AUDIT_HASH],
    const struct store_ckpt_info *ci, const struct store_ckpt_restored *r,
    uint64_t ckpts_before)
{
	uint8_t *h2, root[AUDIT_HASH], rc[AUDIT_HASH];
	uint64_t size = 0;
	size_t np = 0;
	json_t *j;

	is_int(counter("transitions", 11, STORE_CF_COUNTERS), want_t,
	    "%s: the counter is back to the checkpoint's", name);
	is_int(rows(STORE_CF_STUDIES), want_t, "%s: the studies are the "
	    "checkpoint's", name);
	is_int(rows(STORE_CF_JOBS), want_t, "%s: so are the jobs", name);
	is_int(counter("job.last", 8, STORE_CF_META), want_t, "%s: and the "
	    "meta keys that are not the audit log's", name);
	is_int(audit_durable_size(au), L + 1, "%s: the audit log kept all "
	    "%llu leaves and has one more", name, (unsigned long long)L);
	h2 = leaf_hashes(L);
	ok(h2 != NULL && memcmp(h2, H, L * AUDIT_HASH) == 0, "%s: every "
	    "earlier leaf is byte for byte what it was", name);
	free(h2);
	ok(audit_root(au, L, root) == 0 && memcmp(root, R, AUDIT_HASH) == 0,
	    "%s: the tree of the first %llu leaves has the root it had",
	    name, (unsigned long long)L);
	err[0] = '\0';
	if (!ok(audit_tree_check(st, &size, rc, err, sizeof(err)) == 0 &&
	    size == L + 1 && audit_root(au, L + 1, root) == 0 &&
	    memcmp(root, rc, AUDIT_HASH) == 0, "%s: the root recomputed from "
	    "the leaves is the stored tree's (audit_root)", name))
		diag("  %s", err);
	j = leaf_json(L);
	ok(j != NULL && strcmp(jstr(j, "event", NULL), "state.restored") ==
	    0 && strcmp(jstr(j, "object", "checkpoint"), ci->name) == 0 &&
	    strcmp(jstr(j, "object", "created"), ci->created) == 0 &&
	    jint(j, "object", "audit_size") == (long long)ci->audit_size &&
	    strcmp(jstr(j, "object", "audit_root"), ci->audit_root) == 0 &&
	    jint(j, "object", "audit_size_at_restore") == (long long)L &&
	    strcmp(jstr(j, "outcome", NULL), "ok") == 0,
	    "%s: the last leaf is state.restored naming the checkpoint, its "
	    "time, its audit size and root and the size at the restore",
	    name);
	json_decref(j);
	is_int(r->restore_seq, L, "%s: the restore reports its leaf", name);
	is_int(r->replaced_audit_size, L, "%s: and the size carried", name);
	ok(access(r->replaced, F_OK) == 0 && strstr(r->replaced,
	    "/db.replaced-") != NULL, "%s: the replaced state is kept as %s",
	    name, r->replaced);
	is_int(rows(STORE_CF_AUDIT_CKPT), ckpts_before, "%s: the signed "
	    "audit checkpoints are the current ones", name);
	ok(audit_consistency(au, ci->audit_size ? ci->audit_size : 1, L + 1,
	    &h2, &np, err, sizeof(err)) == 0, "%s: the log is consistent "
	    "with the checkpoint's (a consistency proof exists)", name);
	free(h2);
}

struct snap {
	uint64_t	 L;
	uint8_t		*H;
	uint8_t		 R[AUDIT_HASH];
	uint64_t	 ckpts;
};

static void
snap_take(struct snap *s)
{
	store_drain(st);
	s->L = audit_durable_size(au);
	s->H = leaf_hashes(s->L);
	audit_root(au, s->L, s->R);
	s->ckpts = rows(STORE_CF_AUDIT_CKPT);
}

static void
test_checkpoints(void)
{
	struct store_ckpt_info c1, c2, *v = NULL;
	struct store_ckpt_restored r;
	struct store_ckpt_open o;
	struct snap s;
	char path[600];
	uint8_t root[AUDIT_HASH];
	char hex[2 * AUDIT_HASH + 1];
	size_t n = 0, del = 0;

	open_all();
	if (!ok(st != NULL && au != NULL, "the state opens"))
		return;
	fill(0, 10);
	is_st(store_ckpt_create(st, au, data, "c1", STORE_CKPT_REQUEST, &c1,
	    err, sizeof(err)), STORE_CKPT_OK, "checkpoint c1 is made");
	audit_root(au, audit_durable_size(au), root);
	for (int i = 0; i < AUDIT_HASH; i++)
		snprintf(hex + 2 * i, 3, "%02x", root[i]);
	ok(c1.audit_size == audit_durable_size(au) &&
	    strcmp(c1.audit_root, hex) == 0 && c1.complete && c1.bytes > 0,
	    "its metadata holds the audit log's durable size and root");
	snprintf(path, sizeof(path), "%s/checkpoints/c1.json", data);
	ok(access(path, R_OK) == 0, "with c1.json beside it");
	is_refused(store_ckpt_create(st, au, data, "c1", STORE_CKPT_REQUEST, NULL,
	    err, sizeof(err)), STORE_CKPT_EXISTS, "an existing name is "
	    "refused");
	is_refused(store_ckpt_create(st, au, data, "../up", STORE_CKPT_REQUEST,
	    NULL, err, sizeof(err)), STORE_CKPT_BADARG, "a bad name is "
	    "refused");
	audit_checkpoint(au, NULL, err, sizeof(err));
	fill(10, 20);
	is_st(store_ckpt_create(st, au, data, "c2", STORE_CKPT_SCHEDULE, &c2,
	    err, sizeof(err)), STORE_CKPT_OK, "checkpoint c2 is made later");
	audit_checkpoint(au, NULL, err, sizeof(err));
	fill(20, 30);
	audit_checkpoint(au, NULL, err, sizeof(err));

	is_st(store_ckpt_list(data, &v, &n, err, sizeof(err)), STORE_CKPT_OK,
	    "checkpoints are listed");
	ok(n == 2 && strcmp(v[0].name, "c1") == 0 &&
	    strcmp(v[1].name, "c2") == 0 && v[0].reason == STORE_CKPT_REQUEST &&
	    v[1].reason == STORE_CKPT_SCHEDULE && v[0].complete &&
	    v[1].audit_size == c2.audit_size &&
	    strcmp(v[1].created, c2.created) == 0, "oldest first, with "
	    "reason, time and audit size");
	free(v);

	/* Restore the older one, offline. */
	snap_take(&s);
	close_all();
	open_opts(&o);
	is_st(store_ckpt_restore(data, "c1", &o, &r, err, sizeof(err)),
	    STORE_CKPT_OK, "c1 (not the latest) is restored");
	open_all();
	if (st == NULL || au == NULL)
		return;
	check_restored("c1", 10, s.L, s.H, s.R, &c1, &r, s.ckpts);
	free(s.H);
	fill(10, 12);
	ok(audit_tree_check(st, &s.L, root, err, sizeof(err)) == 0,
	    "the tree goes on growing after the restore");

	/* Then the later one, then the older one again: a checkpoint is
	 * not changed by being restored. */
	snap_take(&s);
	close_all();
	is_st(store_ckpt_restore(data, "c2", &o, &r, err, sizeof(err)),
	    STORE_CKPT_OK, "then c2 is restored");
	open_all();
	check_restored("c2", 20, s.L, s.H, s.R, &c2, &r, s.ckpts);
	free(s.H);
	snap_take(&s);
	close_all();
	is_st(store_ckpt_restore(data, "c1", &o, &r, err, sizeof(err)),
	    STORE_CKPT_OK, "and c1 again");
	open_all();
	check_restored("c1 again", 10, s.L, s.H, s.R, &c1, &r, s.ckpts);
	free(s.H);
	close_all();

	/* Refusals. */
	is_refused(store_ckpt_restore(data, "nope", &o, &r, err, sizeof(err)),
	    STORE_CKPT_NOTFOUND, "a missing checkpoint");
	is_refused(store_ckpt_restore(data, "a/b", &o, &r, err, sizeof(err)),
	    STORE_CKPT_BADARG, "a bad name");
	snprintf(path, sizeof(path), "%s/checkpoints/half", data);
	mkdir(path, 0750);
	is_refused(store_ckpt_restore(data, "half", &o, &r, err, sizeof(err)),
	    STORE_CKPT_NOTFOUND, "an incomplete one");
	{
		struct store_ckpt_open bad = o;
		char nokey[400];

		snprintf(nokey, sizeof(nokey), "%s/missing.pem", tmp);
		bad.audit.key_file = nokey;
		is_refused(store_ckpt_restore(data, "c2", &bad, &r, err,
		    sizeof(err)), STORE_CKPT_FAILED, "no audit key");
		ok(access(nokey, F_OK) < 0, "and no key was made");
	}
	open_all();
	is_int(counter("transitions", 11, STORE_CF_COUNTERS), 10,
	    "the refusals changed nothing");
	close_all();

	/* Delete and prune. */
	is_st(store_ckpt_list(data, &v, &n, err, sizeof(err)), STORE_CKPT_OK,
	    "list with an incomplete one");
	ok(n == 3 && strcmp(v[0].name, "half") == 0 && !v[0].complete,
	    "it is listed as incomplete");
	free(v);
	is_st(store_ckpt_delete(data, "half", err, sizeof(err)),
	    STORE_CKPT_OK, "an incomplete checkpoint can be deleted");
	is_st(store_ckpt_delete(data, "c2", err, sizeof(err)), STORE_CKPT_OK,
	    "c2 is deleted");
	is_refused(store_ckpt_delete(data, "c2", err, sizeof(err)),
	    STORE_CKPT_NOTFOUND, "twice");
	snprintf(path, sizeof(path), "%s/checkpoints/c2", data);
	ok(access(path, F_OK) < 0, "its directory is gone");
	open_all();
	for (int i = 0; i < 4; i++) {
		char nm[16];

		snprintf(nm, sizeof(nm), "s%d", i);
		store_ckpt_create(st, au, data, nm, STORE_CKPT_SCHEDULE, NULL,
		    err, sizeof(err));
	}
	store_ckpt_create(st, au, data, "p0", STORE_CKPT_PAUSE, NULL, err,
	    sizeof(err));
	close_all();
	is_st(store_ckpt_prune(data, 2, &del, err, sizeof(err)),
	    STORE_CKPT_OK, "prune to the newest 2 scheduled");
	is_int(del, 2, "two were deleted");
	store_ckpt_list(data, &v, &n, err, sizeof(err));
	ok(n == 4 && strcmp(v[0].name, "c1") == 0 &&
	    strcmp(v[1].name, "s2") == 0 && strcmp(v[2].name, "s3") == 0 &&
	    strcmp(v[3].name, "p0") == 0, "c1 (request), s2, s3 and p0 "
	    "(pause) remain");
	free(v);
}

static void
test_backups(void)
{
	struct store_ckpt_backup b1, b2, *v = NULL;
	struct store_ckpt_restored r;
	struct store_ckpt_open o;
	struct snap s;
	char bk[400], inside[400], cmd[1200];
	uint8_t root[AUDIT_HASH];
	uint64_t size;
	size_t n = 0;
	json_t *j;

	snprintf(bk, sizeof(bk), "%s/backups", tmp);
	snprintf(inside, sizeof(inside), "%s/bk/deeper", data);
	open_opts(&o);
	open_all();
	if (st == NULL || au == NULL)
		return;
	is_refused(store_ckpt_backup_create(st, au, data, inside, NULL, err,
	    sizeof(err)), STORE_CKPT_BADARG, "a backup dir inside the data "
	    "dir is refused");
	snprintf(cmd, sizeof(cmd), "%s/bk", data);
	ok(access(cmd, F_OK) < 0, "and nothing was made there");
	is_st(store_ckpt_backup_create(st, au, data, bk, &b1, err,
	    sizeof(err)), STORE_CKPT_OK, "backup 1 is made");
	ok(b1.id == 1 && b1.audit_size == audit_durable_size(au) &&
	    b1.files > 0, "it has an id, files, and the audit size");
	fill(10, 25);
	is_st(store_ckpt_backup_create(st, au, data, bk, &b2, err,
	    sizeof(err)), STORE_CKPT_OK, "backup 2 is made later");
	fill(25, 27);
	snap_take(&s);
	free(s.H);
	close_all();

	is_st(store_ckpt_backup_list(bk, &v, &n, err, sizeof(err)),
	    STORE_CKPT_OK, "backups are listed");
	ok(n == 2 && v[0].id == 1 && v[1].id == 2 && v[0].have_audit &&
	    v[1].audit_size == b2.audit_size &&
	    strcmp(v[0].audit_root, b1.audit_root) == 0, "both, by id, with "
	    "their audit size and root");
	free(v);
	is_refused(store_ckpt_backup_list(tmp, &v, &n, err, sizeof(err)),
	    STORE_CKPT_NOTFOUND, "a directory without backups");
	is_st(store_ckpt_backup_verify(bk, 0, err, sizeof(err)),
	    STORE_CKPT_OK, "every backup verifies (trial restore, tree)");
	is_refused(store_ckpt_backup_verify(bk, 7, err, sizeof(err)),
	    STORE_CKPT_NOTFOUND, "backup 7");

	/* Restore the older backup: its audit log comes back with it. */
	is_st(store_ckpt_backup_restore(data, bk, 1, &o, &r, err,
	    sizeof(err)), STORE_CKPT_OK, "backup 1 is restored");
	ok(r.backup_id == 1 && r.from_audit_size == b1.audit_size &&
	    r.replaced_audit_size == s.L && r.restore_seq == b1.audit_size &&
	    access(r.replaced, F_OK) == 0, "the restore reports the sizes "
	    "and the replaced state (%s)", r.replaced);
	open_all();
	if (st == NULL || au == NULL)
		return;
	is_int(counter("transitions", 11, STORE_CF_COUNTERS), 10,
	    "the job state is backup 1's");
	is_int(audit_durable_size(au), b1.audit_size + 1, "the audit log is "
	    "backup 1's plus the restore leaf");
	err[0] = '\0';
	if (!ok(audit_tree_check(st, &size, root, err, sizeof(err)) ==
	    0 && size == b1.audit_size + 1, "its tree verifies"))
		diag("  %s", err);
	j = leaf_json(b1.audit_size);
	ok(j != NULL && strcmp(jstr(j, "event", NULL),
	    "state.restored-from-backup") == 0 &&
	    jint(j, "object", "backup_id") == 1 &&
	    jint(j, "object", "audit_size") == (long long)b1.audit_size &&
	    jint(j, "object", "audit_size_replaced") == (long long)s.L &&
	    strcmp(jstr(j, "object", "backup_time"), b1.created) == 0,
	    "the last leaf is state.restored-from-backup with the backup's "
	    "id, time and audit size");
	json_decref(j);
	close_all();

	/* A lost db: the latest backup into an empty data dir. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/db'", data);
	if (system(cmd) != 0)
		diag("rm failed");
	is_st(store_ckpt_backup_restore(data, bk, 0, &o, &r, err,
	    sizeof(err)), STORE_CKPT_OK, "the latest backup restores where "
	    "there is no state");
	ok(r.backup_id == 2 && r.replaced[0] == '\0' &&
	    r.replaced_audit_size == UINT64_MAX, "backup 2, nothing replaced");
	open_all();
	is_int(counter("transitions", 11, STORE_CF_COUNTERS), 25,
	    "the job state is backup 2's");
	ok(audit_tree_check(st, &size, root, err, sizeof(err)) == 0 &&
	    size == b2.audit_size + 1, "and its audit log plus the restore "
	    "leaf, verified");
	close_all();

	/* A byte changed in a backed-up file (same size). */
	snprintf(cmd, sizeof(cmd), "f=$(ls '%s'/shared_checksum/*.sst | head "
	    "-1) && printf 'X' | dd of=\"$f\" bs=1 seek=100 conv=notrunc "
	    "status=none", bk);
	if (system(cmd) != 0)
		diag("could not damage the backup");
	is_refused(store_ckpt_backup_verify(bk, 0, err, sizeof(err)),
	    STORE_CKPT_DAMAGED, "a changed byte is found");
	{
		char scratch[600];

		snprintf(scratch, sizeof(scratch), "ls -a '%s' | grep -q "
		    "vnamig-verify", bk);
		ok(system(scratch) != 0, "the scratch restore was removed");
	}
}

int
main(void)
{
	char cmd[300];

	log_setup(LOG_LVL_ERROR, 0, "t_ckpt", 0);
	snprintf(tmp, sizeof(tmp), "%s/t_ckpt.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(data, sizeof(data), "%s/data", tmp);
	snprintf(key, sizeof(key), "%s/audit.pem", tmp);
	snprintf(ckfile, sizeof(ckfile), "%s/audit-checkpoints", data);
	mkdir(data, 0750);
	test_names();
	test_checkpoints();
	test_backups();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		diag("could not remove %s", tmp);
	return done_testing();
}
