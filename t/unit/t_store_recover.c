/*
 * t_store_recover.c — the store reopens itself once a full disk has room
 * again (store_tick, recover): units ended while it was failed, still
 * gathered for their group, fail then and are never written over the
 * state the reset hooks reload. The audit log's size is part of that
 * state: written, such a unit reused sequence numbers (leaf N twice, the
 * later one winning) and the stored tree no longer matched its leaves.
 * The free space the store sees is this file's statvfs (interposed).
 *
 * Then a tree node goes missing, and the reset finds the log unreadable:
 * taken for whole (or a read error for empty), its next leaf would not
 * chain (or be written over leaf 0). Until a reload reads it whole, a
 * unit that appends fails, and the store with it; once the node is back
 * the store heals itself, and the leaves go on where they were.
 *
 * A read that fails (rocksdb_iter_get_error, interposed) is never taken
 * for an empty log: the durable size stays the last one read, and no
 * checkpoint of size 0 is signed.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <jansson.h>

#include "src/util/log.h"
#include "store/audit.h"
#include "store/store.h"
#include "t/unit/tap.h"

static unsigned long long fake_free = 1ULL << 40;
static int read_fails;

void rocksdb_iter_get_error(const void *it, char **errptr);

void
rocksdb_iter_get_error(const void *it, char **errptr)
{
	static void (*real)(const void *, char **);

	if (read_fails) {
		*errptr = strdup("t_store_recover: injected read error");
		return;
	}
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "rocksdb_iter_get_error");
	real(it, errptr);
}

int
statvfs(const char *path, struct statvfs *sv)
{
	(void)path;
	memset(sv, 0, sizeof(*sv));
	sv->f_frsize = 1;
	sv->f_bavail = fake_free;
	return 0;
}

/* the commit timer has not fired yet: units wait in the group */
static void
kick(void *arg, uint64_t ms)
{
	(void)arg;
	(void)ms;
}

static int ends, failed_ends;

static void
done(void *arg, int err)
{
	(void)arg;
	ends++;
	failed_ends += err != 0;
}

/* add: N leaves in one unit; the last one's sequence number */
static uint64_t
add(struct audit *a, struct store *st, const char *what, int n)
{
	struct store_batch *b = store_begin(st);
	uint64_t seq = 0;

	for (int i = 0; i < n; i++) {
		json_t *ev = json_pack("{s:s, s:i}", "event", what, "i", i);

		seq = audit_append(a, b, ev);
		json_decref(ev);
	}
	store_end(b, done, NULL);
	return seq;
}

int
main(void)
{
	char tmp[256], dd[300], db[320], key[320], err[512] = "", cmd[300];
	struct store_opts so = { 0 };
	struct audit_opts ao = { 0 };
	struct store *st;
	struct audit *a;
	uint64_t size = 0, s0, sc;
	uint8_t root[32];

	log_setup(LOG_LVL_ERROR, 0, "t_store_recover", 0);
	snprintf(tmp, sizeof(tmp), "%s/t_store_recover.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmp) == NULL) {
		printf("1..0 # SKIP no temporary directory\n");
		return 0;
	}
	snprintf(dd, sizeof(dd), "%s/data", tmp);
	snprintf(db, sizeof(db), "%s/db", dd);
	snprintf(key, sizeof(key), "%s/key.pem", tmp);
	if (mkdir(dd, 0700) < 0)
		return ok(0, "mkdir %s", dd), 1;
	so.dir = db;
	so.kick = kick;
	so.commit_interval_ms = 100;
	so.floor = 1000;
	if ((st = store_open(&so, err, sizeof(err))) == NULL)
		return ok(0, "store_open: %s", err), 1;
	ao.origin = "vnamig/test";
	ao.key_file = key;
	ao.data_dir = dd;
	if ((a = audit_open(st, &ao, err, sizeof(err))) == NULL)
		return ok(0, "audit_open: %s", err), 1;
	add(a, st, "ok", 1);
	store_flush(st);
	store_drain(st);
	s0 = audit_durable_size(a);
	ok(s0 >= 1, "a leaf is durable (size %llu)", (unsigned long long)s0);

	fake_free = 10;				/* the disk is full */
	add(a, st, "lost", 1);
	store_flush(st);
	store_drain(st);
	is_int(store_state(st), STORE_FAILED, "a group written below the "
	    "floor fails the store");
	is_int(audit_size(a), s0, "the log is back at its durable size");
	ends = failed_ends = 0;
	add(a, st, "waiting", 2);		/* gathered, not yet submitted */
	fake_free = 1ULL << 40;			/* room again */
	store_tick(st);				/* recover(): reopen, reset */
	is_int(store_state(st), STORE_OK, "with room again the store reopens");
	is_int(ends, 1, "the unit ended while it was failed has its outcome");
	is_int(failed_ends, 1, "  failed, never written after the reset");
	sc = add(a, st, "after", 1);
	is_int(sc, s0, "the next leaf takes the next sequence number after "
	    "the durable ones");
	store_flush(st);
	store_drain(st);
	is_int(audit_durable_size(a), s0 + 1, "and is durable");
	{
		int rc = audit_tree_check(st, &size, root, err, sizeof(err));

		ok(rc == 0 && size == s0 + 1, "the stored tree matches its "
		    "%llu leaves %s", (unsigned long long)size, rc ? err : "");
	}

	/* leaf s-1's node, the one reload reads last, goes missing */
	{
		uint64_t n = audit_durable_size(a);
		uint8_t nk[9];
		void *nv = NULL;
		size_t nvn = 0;
		struct store_batch *b;

		nk[0] = 0;
		for (int i = 0; i < 8; i++)
			nk[1 + i] = (uint8_t)((n - 1) >> (56 - 8 * i));
		ok(store_get(st, STORE_CF_AUDIT_NODE, nk, 9, &nv, &nvn) == 1 &&
		    nvn == 32, "leaf %llu's node is stored",
		    (unsigned long long)(n - 1));
		b = store_begin(st);
		store_del(b, STORE_CF_AUDIT_NODE, nk, 9);
		store_end(b, done, NULL);
		store_flush(st);
		store_drain(st);
		fake_free = 10;			/* a failed group: reset */
		add(a, st, "lost", 1);
		store_flush(st);
		store_drain(st);
		fake_free = 1ULL << 40;
		store_tick(st);			/* reopen; the reload fails */
		is_int(store_state(st), STORE_OK, "the store reopens");
		ends = failed_ends = 0;
		add(a, st, "unchained", 1);
		store_flush(st);
		store_drain(st);
		is_int(failed_ends, 1, "a leaf appended to a log that could "
		    "not be read back fails its unit");
		is_int(store_state(st), STORE_FAILED, "  and the store with it");
		ok(strstr(store_error(st), "audit") != NULL, "  which says "
		    "why: %s", store_error(st));
		is_int(audit_durable_size(a), n, "  nothing was written");
		store_tick(st);			/* reopen; still missing */
		b = store_begin(st);
		store_put(b, STORE_CF_AUDIT_NODE, nk, 9, nv, nvn);
		store_end(b, done, NULL);
		store_flush(st);
		store_drain(st);		/* the node is back */
		free(nv);
		ends = failed_ends = 0;
		add(a, st, "heals", 1);		/* fails, and the reset reads */
		store_flush(st);
		store_drain(st);
		store_tick(st);
		is_int(store_state(st), STORE_OK, "with the node back the store "
		    "heals itself");
		sc = add(a, st, "chained", 1);
		store_flush(st);
		store_drain(st);
		is_int(sc, n, "the next leaf is leaf %llu",
		    (unsigned long long)n);
		is_int(failed_ends, 1, "  durable (only the unit appended "
		    "while unread failed)");
		{
			int rc = audit_tree_check(st, &size, root, err,
			    sizeof(err));

			ok(rc == 0 && size == n + 1, "the stored tree matches "
			    "its %llu leaves %s", (unsigned long long)size,
			    rc ? err : "");
		}
	}

	/* reads fail: the durable size is not taken for 0 */
	{
		uint64_t n;
		char *note = NULL;

		add(a, st, "more", 1);
		store_flush(st);
		store_drain(st);
		n = audit_durable_size(a);
		add(a, st, "and more", 1);
		store_flush(st);
		store_drain(st);
		read_fails = 1;
		ok(audit_store_size(st, &size) < 0, "a read that fails is an "
		    "error, not an empty log (%s)", store_read_error(st));
		ok(audit_durable_size(a) >= n, "the durable size stays the "
		    "last one read (%llu, not 0)",
		    (unsigned long long)audit_durable_size(a));
		if (audit_checkpoint(a, &note, err, sizeof(err)) >= 0 &&
		    note != NULL)
			ok(strstr(note, "\n0\n") == NULL, "no checkpoint of size 0 "
			    "is signed");
		else
			ok(1, "no checkpoint of size 0 is signed (none: %s)", err);
		free(note);
		read_fails = 0;
		{
			int rc = audit_store_size(st, &size);

			ok(rc == 0 && size == n + 1 && audit_durable_size(a) ==
			    n + 1, "reads work again: %llu leaves",
			    (unsigned long long)size);
		}
	}
	audit_close(a);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		diag("could not remove %s", tmp);
	printf("1..%d\n", tap_n);
	return tap_failed != 0;
}
