/*
 * t_store.c — the store and the audit log without a network: key tuples
 * (order and round trip), group commit's units and callbacks, reads,
 * the audit tree's roots and RFC 9162 proofs (cross-checked against the
 * independent Python implementation t/merkle.py), canonical JSON against
 * jansson's, checkpoint signatures, key rotation, export.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "src/util/hex.h"
#include "src/util/log.h"
#include "store/audit.h"
#include "store/store.h"
#include "store/store_key.h"
#include "t/unit/tap.h"

static char tmp[256];

/* ---------------------------------------------------------------------- */
/* Keys. */

struct tup {
	uint32_t	 a;
	char		 s[8];
	size_t		 sl;
	uint64_t	 b;
};

static int
tup_cmp(const struct tup *x, const struct tup *y)
{
	size_t n = x->sl < y->sl ? x->sl : y->sl;
	int r;

	if (x->a != y->a)
		return x->a < y->a ? -1 : 1;
	if ((r = memcmp(x->s, y->s, n)) != 0)
		return r < 0 ? -1 : 1;
	if (x->sl != y->sl)
		return x->sl < y->sl ? -1 : 1;
	if (x->b != y->b)
		return x->b < y->b ? -1 : 1;
	return 0;
}

static void
tup_key(const struct tup *t, struct store_key *k)
{
	store_key_init(k);
	store_key_u32(k, t->a);
	store_key_str(k, t->s, t->sl);
	store_key_u64(k, t->b);
}

static void
test_keys(void)
{
	struct tup t[400];
	struct store_key k1, k2;
	int bad_order = 0, bad_trip = 0;

	srand(7);
	for (int i = 0; i < 400; i++) {
		t[i].a = (uint32_t)(rand() % 3) << (rand() % 30);
		t[i].sl = (size_t)(rand() % 5);
		for (size_t j = 0; j < t[i].sl; j++)	/* NUL and 0xff too */
			t[i].s[j] = "\0\001a\377b"[rand() % 5];
		t[i].b = (uint64_t)rand() << (rand() % 33);
	}
	for (int i = 0; i < 400; i++) {
		struct store_kreader r;
		char s[16];
		size_t sl;

		tup_key(&t[i], &k1);
		for (int j = 0; j < 400; j++) {
			int want = tup_cmp(&t[i], &t[j]), got;
			size_t n;

			tup_key(&t[j], &k2);
			n = k1.len < k2.len ? k1.len : k2.len;
			got = memcmp(k1.b, k2.b, n);
			if (got == 0)
				got = (k1.len > k2.len) - (k1.len < k2.len);
			got = (got > 0) - (got < 0);
			if (got != want)
				bad_order++;
		}
		store_kreader_init(&r, k1.b, k1.len);
		if (store_kreader_u32(&r) != t[i].a ||
		    (sl = store_kreader_str(&r, s, sizeof(s))) != t[i].sl ||
		    memcmp(s, t[i].s, sl) != 0 ||
		    store_kreader_u64(&r) != t[i].b || !store_kreader_done(&r))
			bad_trip++;
	}
	is_int(bad_order, 0, "key bytes sort as the tuples (160000 pairs, "
	    "strings with NUL and 0xff)");
	is_int(bad_trip, 0, "keys read back field by field");

	{
		struct store_key k;
		char big[600];

		memset(big, 'x', sizeof(big));
		store_key_init(&k);
		store_key_str(&k, big, sizeof(big));
		ok(k.overflow, "a key longer than STORE_KEY_MAX is marked "
		    "unusable");
	}
	{
		static const uint8_t bad1[] = { 'a', 0x00, 0x01 };
		static const uint8_t bad2[] = { 'a', 'b' };
		struct store_kreader r;
		char s[8];

		store_kreader_init(&r, bad1, sizeof(bad1));
		ok(store_kreader_str(&r, s, sizeof(s)) == (size_t)-1 && r.err,
		    "a string with a bad escape is refused");
		store_kreader_init(&r, bad2, sizeof(bad2));
		ok(store_kreader_str(&r, s, sizeof(s)) == (size_t)-1 && r.err,
		    "an unterminated string is refused");
		store_kreader_init(&r, bad2, sizeof(bad2));
		store_kreader_u32(&r);
		ok(r.err, "a short integer field is refused");
	}
}

/* ---------------------------------------------------------------------- */
/* Group commit. */

static int order[16], norder;

static void
on_done(void *arg, int err)
{
	order[norder++] = err ? -1 : (int)(intptr_t)arg;
}

static int kicks;
static void
kick(void *arg, uint64_t delay)
{
	(void)arg;
	(void)delay;
	kicks++;
}

static int
scan_count(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
	(void)k;
	(void)kl;
	(void)v;
	(void)vl;
	(*(int *)arg)++;
	return 0;
}

static struct store *
open_store(const char *sub)
{
	struct store_opts o = { 0 };
	char dir[300], err[512];
	struct store *st;

	snprintf(dir, sizeof(dir), "%s/%s", tmp, sub);
	o.dir = dir;
	o.kick = kick;
	o.block_cache = 8 << 20;
	if ((st = store_open(&o, err, sizeof(err))) == NULL)
		diag("store_open: %s", err);
	return st;
}

static void
test_group(void)
{
	struct store *st = open_store("g");
	struct store_batch *b;
	struct store_stats ss;
	void *v, *k;
	size_t vn, kn;
	int n = 0;

	if (!ok(st != NULL, "store opens with every column family"))
		return;
	for (int i = 0; i < 3; i++) {
		char key[16], val[16];

		snprintf(key, sizeof(key), "k%d", i);
		snprintf(val, sizeof(val), "v%d", i);
		b = store_begin(st);
		store_put(b, STORE_CF_JOBS, key, 2, val, 2);
		store_end(b, on_done, (void *)(intptr_t)i);
	}
	is_int(kicks, 1, "three units in one turn ask for one flush");
	is_int(store_get(st, STORE_CF_JOBS, "k0", 2, &v, &vn), 0,
	    "a unit not yet synced is not visible");
	store_flush(st);
	store_drain(st);
	is_int(norder, 3, "every unit's callback ran");
	ok(order[0] == 0 && order[1] == 1 && order[2] == 2,
	    "callbacks ran in the order the units ended, each with success");
	store_stats(st, &ss);
	is_int(ss.groups, 1, "the three units were one group (one sync)");
	ok(store_get(st, STORE_CF_JOBS, "k1", 2, &v, &vn) == 1 && vn == 2 &&
	    memcmp(v, "v1", 2) == 0, "durable writes read back");
	free(v);
	is_int(store_get(st, STORE_CF_BATCHES, "k1", 2, &v, &vn), 0,
	    "column families are separate");
	store_scan(st, STORE_CF_JOBS, "k", 1, scan_count, &n);
	is_int(n, 3, "a prefix scan sees every key");
	ok(store_last(st, STORE_CF_JOBS, "k", 1, &k, &kn, &v, &vn) == 1 &&
	    kn == 2 && memcmp(k, "k2", 2) == 0, "store_last finds the last "
	    "key under a prefix");
	free(k);
	free(v);
	ok(store_last(st, STORE_CF_JOBS, "z", 1, &k, &kn, &v, &vn) == 0,
	    "store_last under an absent prefix finds none");
	b = store_begin(st);
	store_del(b, STORE_CF_JOBS, "k1", 2);
	store_end(b, on_done, (void *)(intptr_t)9);
	store_drain(st);
	is_int(store_get(st, STORE_CF_JOBS, "k1", 2, &v, &vn), 0,
	    "a delete lands");
	is_int(order[3], 9, "store_drain makes a unit durable without a kick");
	ok(store_state(st) == STORE_OK, "the store is ok");
	store_close(st);

	/* Reopen: everything durable is there. */
	st = open_store("g");
	ok(st != NULL && store_get(st, STORE_CF_JOBS, "k2", 2, &v, &vn) == 1,
	    "state survives a close and reopen");
	free(v);
	store_close(st);
}

/* ---------------------------------------------------------------------- */
/* Audit. */

static struct audit *
open_audit(struct store *st, const char *key, char *err, size_t errlen)
{
	struct audit_opts ao = { 0 };
	char data[300], ck[300];

	snprintf(data, sizeof(data), "%s/a", tmp);
	snprintf(ck, sizeof(ck), "%s/ckpts", tmp);
	ao.origin = "vnamig/test";
	ao.key_file = key;
	ao.checkpoint_file = ck;
	ao.data_dir = data;
	return audit_open(st, &ao, err, errlen);
}

static int
hexs(const uint8_t *p, size_t n, FILE *f)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
	return 0;
}

/* One proof line for t/merkle.py: KIND M N HASH,HASH,... (- if none);
 * frees the proof. */
static void
put_proof(FILE *pf, const char *kind, uint64_t m, uint64_t sz, uint8_t *p,
    size_t n)
{
	fprintf(pf, "%s %llu %llu ", kind, (unsigned long long)m,
	    (unsigned long long)sz);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(',', pf);
		hexs(p + i * AUDIT_HASH, AUDIT_HASH, pf);
	}
	fputs(n ? "\n" : "-\n", pf);
	free(p);
}

static void
test_canonical(void)
{
	static const char *const docs[] = {
		"{\"b\":1,\"a\":[true,false,null,-5],\"c\":{\"z\":\"\",\"y\":"
		    "\"x\"}}",
		"{\"s\":\"tab\\there \\\"q\\\" back\\\\slash / \\u0001 "
		    "\\u00e9\\u4e2d\\ud83d\\ude00\"}",
		"{\"ab\":1,\"a\":2,\"b\":3,\"aa\":4,\"\":5}",
		"[1,{\"k\":[{\"b\":2,\"a\":1}]},\"\\u007f\"]",
	};
	int bad = 0;

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		json_error_t e;
		json_t *j = json_loads(docs[i], 0, &e);
		char *a = audit_canonical(j, NULL), *b = json_dumps(j,
		    JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);

		if (j == NULL || a == NULL || b == NULL || strcmp(a, b) != 0) {
			bad++;
			diag("ours:    %s", a ? a : "(null)");
			diag("jansson: %s", b ? b : "(null)");
		}
		free(a);
		free(b);
		json_decref(j);
	}
	is_int(bad, 0, "canonical JSON is byte for byte jansson's sorted, "
	    "compact, ASCII form (escapes, surrogates, nesting)");
}

static int
verify_note(const char *note, const char *pubfile)
{
	FILE *f = fopen(pubfile, "r");
	EVP_PKEY *pk = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
	const char *dash = strstr(note, "\n\n\xe2\x80\x94 ");
	const char *sp;
	unsigned char raw[128];
	int n, ok_ = 0;

	if (f != NULL)
		fclose(f);
	if (pk == NULL || dash == NULL ||
	    (sp = strrchr(dash + 5, ' ')) == NULL)
		goto out;
	n = EVP_DecodeBlock(raw, (const unsigned char *)sp + 1,
	    (int)strcspn(sp + 1, "\n"));
	/* 68 bytes decode to 69 with one '=' of padding */
	if (n < 68)
		goto out;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	ok_ = EVP_DigestVerifyInit(c, NULL, NULL, NULL, pk) == 1 &&
	    EVP_DigestVerify(c, raw + 4, 64, (const unsigned char *)note,
	    (size_t)(dash - note) + 1) == 1;
	EVP_MD_CTX_free(c);
out:
	EVP_PKEY_free(pk);
	return ok_;
}

static void
test_audit(void)
{
	struct store *st = open_store("a");
	struct audit *a;
	char key[300], pub[300], leaves[300], proofs[300], cmd[1024];
	char err[512], *note = NULL, *j;
	uint8_t root[AUDIT_HASH], *p;
	size_t n;
	FILE *lf, *pf;
	const uint64_t N = 70;
	int r;

	snprintf(key, sizeof(key), "%s/a/audit.pem", tmp);
	a = st ? open_audit(st, key, err, sizeof(err)) : NULL;
	ok(a == NULL && strstr(err, "inside the data dir") != NULL,
	    "a key under the data dir is refused: %s", err);
	snprintf(key, sizeof(key), "%s/audit.pem", tmp);
	snprintf(pub, sizeof(pub), "%s/audit.pem.pub", tmp);
	a = st ? open_audit(st, key, err, sizeof(err)) : NULL;
	if (!ok(a != NULL, "audit opens, making its key"))
		diag("%s", err);
	if (a == NULL)
		return;
	ok(access(key, R_OK) == 0 && access(pub, R_OK) == 0,
	    "the private key and KEY.pub were written");
	{
		struct stat sb;

		ok(stat(key, &sb) == 0 && (sb.st_mode & 077) == 0,
		    "the private key is readable by its owner only");
	}
	is_int(audit_durable_size(a), 1, "the key's first use is leaf 0");

	for (uint64_t i = 1; i < N; i++) {
		struct store_batch *b = store_begin(st);
		/* (leaf 3: a caller whose event could not be built) */
		json_t *ev = i == 3 ? NULL : json_pack("{s:s, s:{s:I}, s:s, "
		    "s:s}", "event", "test", "object", "i", (json_int_t)i,
		    "outcome", "ok", "seq", "caller's seq is replaced");

		is_int(audit_append(a, b, ev), i, "append %llu returns its seq",
		    (unsigned long long)i);
		ok(ev == NULL || json_object_size(ev) == 4, "the event is left "
		    "unchanged");
		json_decref(ev);
		store_end(b, NULL, NULL);
		if (i % 7 == 0)
			store_drain(st);
	}
	store_drain(st);
	is_int(audit_durable_size(a), N, "every leaf is durable");
	ok(audit_leaf(a, 5, NULL, &j, &n) == 0 && strstr(j, "\"seq\":5,") &&
	    strstr(j, "\"prev\":\"") && strstr(j, "\"boot\":\"") &&
	    strstr(j, "\"mono\":") && strstr(j, "\"time\":\"20"),
	    "a leaf carries seq, prev, time, mono and boot");
	free(j);
	ok(audit_leaf(a, 3, NULL, &j, &n) == 0 && strstr(j,
	    "\"event\":\"audit.event_unencodable\"") && strstr(j,
	    "\"outcome\":\"error\""), "a NULL event (one that could not be "
	    "built) makes a leaf that says so, not an empty one");
	free(j);

	/* Everything to files for the Python reference. */
	snprintf(leaves, sizeof(leaves), "%s/leaves", tmp);
	snprintf(proofs, sizeof(proofs), "%s/proofs", tmp);
	lf = fopen(leaves, "w");
	ok(audit_export(a, lf, NULL, NULL, err, sizeof(err)) == (int64_t)N,
	    "export writes every leaf");
	fclose(lf);
	pf = fopen(proofs, "w");
	for (uint64_t sz = 0; sz <= N; sz++) {
		if (audit_root(a, sz, root) == 0) {
			fprintf(pf, "root %llu ", (unsigned long long)sz);
			hexs(root, AUDIT_HASH, pf);
			fputc('\n', pf);
		}
	}
	for (uint64_t sz = 1; sz <= N; sz += (sz < 20 ? 1 : 7)) {
		for (uint64_t m = 0; m < sz; m += (sz < 20 ? 1 : 3)) {
			if (audit_inclusion(a, m, sz, &p, &n, err,
			    sizeof(err)) == 0)
				put_proof(pf, "incl", m, sz, p, n);
			if (m > 0 && audit_consistency(a, m, sz, &p, &n, err,
			    sizeof(err)) == 0)
				put_proof(pf, "cons", m, sz, p, n);
		}
	}
	fclose(pf);
	{
		const char *top = getenv("top_srcdir");
		char out[300], line[512];
		int oks = 0, bad = 0;

		snprintf(out, sizeof(out), "%s/py.out", tmp);
		snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s/t/merkle.py "
		    "check %s %s > %s 2>&1", top ? top : ".", leaves, proofs,
		    out);
		r = system(cmd);
		if ((lf = fopen(out, "r")) != NULL) {
			while (fgets(line, sizeof(line), lf) != NULL) {
				if (strncmp(line, "ok ", 3) == 0)
					oks++;
				else if (strncmp(line, "not ok", 6) == 0) {
					bad++;
					if (bad < 5)
						diag("%s", line);
				}
			}
			fclose(lf);
		}
		ok(r == 0 && bad == 0 && oks > 300, "the independent Python "
		    "RFC 9162 tree agrees on every root and proof, and its "
		    "verifiers accept every proof (%d checks)", oks);
	}
	ok(audit_inclusion(a, N, N, &p, &n, err, sizeof(err)) < 0,
	    "no inclusion proof for a leaf outside the tree: %s", err);
	ok(audit_consistency(a, 3, N + 1, &p, &n, err, sizeof(err)) < 0,
	    "no consistency proof beyond the durable size: %s", err);

	r = audit_checkpoint(a, &note, err, sizeof(err));
	is_int(r, 1, "a checkpoint is signed");
	ok(note != NULL && strncmp(note, "vnamig/test\n70\n", 15) == 0,
	    "the note names the origin and size");
	ok(note != NULL && verify_note(note, pub), "its Ed25519 signature "
	    "verifies with KEY.pub over the first three lines");
	if (note != NULL) {
		char *bad = strdup(note);

		bad[13]++;	/* size 70 → 71 */
		ok(!verify_note(bad, pub), "a changed note does not verify");
		free(bad);
	}
	free(note);
	store_drain(st);
	is_int(audit_checkpoint(a, NULL, err, sizeof(err)), 0,
	    "no new checkpoint when the log has not grown");
	{
		char phi1[65], phi2[65];

		audit_phi(a, "DOE^JOHN", phi1);
		audit_phi(a, "DOE^JANE", phi2);
		ok(strlen(phi1) == 64 && strcmp(phi1, phi2) != 0 &&
		    strstr(phi1, "DOE") == NULL, "PHI becomes a keyed "
		    "commitment");
		{
			/* HMAC-SHA256 under the stored secret, as
			 * OpenSSL's own HMAC() computes it */
			uint8_t mac[32];
			unsigned int ml = sizeof(mac);
			char want[65];
			void *v;
			size_t vn;

			v = NULL;
			if (store_get(st, STORE_CF_META, "audit.phi_secret",
			    16, &v, &vn) == 1 && vn == 32)
				HMAC(EVP_sha256(), v, 32,
				    (const uint8_t *)"DOE^JOHN", 8, mac, &ml);
			else
				memset(mac, 0, sizeof(mac));
			free(v);
			hex_encode(mac, 32, want);
			is_str(phi1, want, "the commitment is HMAC-SHA256 "
			    "under the stored secret");
		}
	}
	audit_close(a);

	/* Reopen with the same key: the tree continues where it was. */
	a = open_audit(st, key, err, sizeof(err));
	ok(a != NULL && audit_size(a) == N, "reopen reloads the tree size");
	if (a != NULL) {
		struct store_batch *b = store_begin(st);
		json_t *ev = json_pack("{s:s}", "event", "after-reopen");
		uint8_t r2[AUDIT_HASH];

		audit_append(a, b, ev);
		json_decref(ev);
		store_end(b, NULL, NULL);
		store_drain(st);
		ok(audit_root(a, N, r2) == 0 && audit_root(a, N, root) == 0 &&
		    memcmp(r2, root, AUDIT_HASH) == 0 &&
		    audit_durable_size(a) == N + 1,
		    "appending after a reopen extends the same tree");
		audit_close(a);
	}
	/* A new key: the rotation is a leaf. */
	unlink(key);
	a = open_audit(st, key, err, sizeof(err));
	ok(a != NULL && audit_leaf(a, N + 1, NULL, &j, &n) == 0 &&
	    strstr(j, "\"outcome\":\"rotated\"") &&
	    strstr(j, "\"previous_public_key\":\""), "a new key is recorded "
	    "as a rotation with the previous public key");
	free(j);
	audit_close(a);
	store_close(st);
}

int
main(void)
{
	char cmd[300];

	log_setup(LOG_LVL_ERROR, 0, "t_store", 0);
	snprintf(tmp, sizeof(tmp), "%s/t_store.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	{
		char d[300];

		snprintf(d, sizeof(d), "%s/a", tmp);
		mkdir(d, 0700);
	}
	test_keys();
	test_group();
	test_canonical();
	test_audit();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		diag("could not remove %s", tmp);
	printf("1..%d\n", tap_n);
	return tap_failed != 0;
}
