/*
 * ctl_audit.c — vnamigctl as a witness of vnamigd's audit log.
 *
 * The log is an RFC 9162 Merkle tree (leaf hash SHA-256(0x00 || leaf),
 * node SHA-256(0x01 || left || right)) whose head the daemon signs as a
 * C2SP signed note (store/audit.c make_note):
 *
 *	ORIGIN\nSIZE\nBASE64(ROOT)\n
 *	\n
 *	— ORIGIN BASE64(KEYID[4] || ED25519-SIGNATURE[64])\n
 *
 * signed over the first three lines, KEYID the first 4 bytes of
 * SHA-256(ORIGIN || "\n" || 0x01 || 32-byte public key).
 *
 * audit verify checks the signature with a key the witness trusts (a PEM
 * file, or the one recorded at the first run), then checks that the log
 * only grew since the checkpoint it witnessed last: same root at the
 * same size, or an RFC 9162 consistency proof (2.1.4.2) from the old
 * size and root to the new ones, verified here. Only then is the new
 * checkpoint recorded. audit proof checks an inclusion proof (2.1.3.2)
 * and ties its root to the witnessed one.
 *
 * Nothing the server says about old roots is trusted: the old root is
 * the witness's own; the server's copy only helps to say what differs.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "src/ctl/ctl.h"
#include "src/util/hex.h"

#define HASH		32
#define MAX_PROOF	64	/* hashes in a proof of a 2^64 tree */
#define NOTE_MAX	8192

static const char P_CKPT[] = "/api/audit/checkpoint";

/* --- bytes --------------------------------------------------------- */

static void
sha256(const void *a, size_t an, const void *b, size_t bn, const void *c,
    size_t cn, uint8_t out[HASH])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int ol = HASH;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, a, an) != 1 ||
	    (bn && EVP_DigestUpdate(ctx, b, bn) != 1) ||
	    (cn && EVP_DigestUpdate(ctx, c, cn) != 1) ||
	    EVP_DigestFinal_ex(ctx, out, &ol) != 1)
		abort();
	EVP_MD_CTX_free(ctx);
}

static void
node_hash(const uint8_t l[HASH], const uint8_t r[HASH], uint8_t out[HASH])
{
	static const uint8_t one = 0x01;

	sha256(&one, 1, l, HASH, r, HASH, out);
}

static void
to_hex(const uint8_t *p, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hx[p[i] >> 4];
		out[2 * i + 1] = hx[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* b64_decode: standard base64 with padding, S[0..n) into OUT (cap
 * bytes); the decoded length, or -1. */
static long
b64_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
	size_t i, o = 0, pad = 0;
	uint32_t acc;
	int v, k;

	if (n % 4 != 0)
		return -1;
	for (i = 0; i < n; i += 4) {
		acc = 0;
		for (k = 0; k < 4; k++) {
			if (s[i + k] == '=' && i + 4 == n && k >= 2 &&
			    (k == 3 || s[i + 3] == '=')) {
				pad++;
				v = 0;
			} else if ((v = b64val((unsigned char)s[i + k])) < 0 ||
			    pad)
				return -1;
			acc = acc << 6 | (uint32_t)v;
		}
		for (k = 0; k < 3 - (int)pad; k++) {
			if (o >= cap)
				return -1;
			out[o++] = (uint8_t)(acc >> (16 - 8 * k));
		}
	}
	return (long)o;
}

/* --- RFC 9162 proofs ----------------------------------------------- */

/* 2.1.3.2: HASH (leaf SEQ of a tree of SIZE) with PATH gives ROOT. */
static int
inclusion_ok(uint64_t seq, uint64_t size, const uint8_t leaf[HASH],
    const uint8_t (*path)[HASH], size_t n, const uint8_t root[HASH])
{
	uint64_t fn = seq, sn;
	uint8_t r[HASH];
	size_t i;

	if (seq >= size)
		return 0;
	sn = size - 1;
	memcpy(r, leaf, HASH);
	for (i = 0; i < n; i++) {
		if (sn == 0)
			return 0;
		if ((fn & 1) || fn == sn) {
			node_hash(path[i], r, r);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else
			node_hash(r, path[i], r);
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(r, root, HASH) == 0;
}

/* 2.1.4.2, for 0 < M < N: the tree of M leaves and root R1 is a prefix
 * of the tree of N leaves and root R2. */
static int
consistency_ok(uint64_t m, uint64_t size, const uint8_t r1[HASH],
    const uint8_t r2[HASH], const uint8_t (*proof)[HASH], size_t n)
{
	uint8_t (*p)[HASH], fr[HASH], sr[HASH];
	uint64_t fn, sn;
	size_t i, k = 0;
	int ok = 0;

	if (m == 0 || m >= size || n == 0 || n > MAX_PROOF)
		return 0;
	if ((p = calloc(n + 1, HASH)) == NULL)
		return 0;
	if ((m & (m - 1)) == 0)		/* a power of 2: R1 comes first */
		memcpy(p[k++], r1, HASH);
	for (i = 0; i < n; i++)
		memcpy(p[k++], proof[i], HASH);
	fn = m - 1;
	sn = size - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	memcpy(fr, p[0], HASH);
	memcpy(sr, p[0], HASH);
	for (i = 1; i < k; i++) {
		if (sn == 0)
			goto out;
		if ((fn & 1) || fn == sn) {
			node_hash(p[i], fr, fr);
			node_hash(p[i], sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else
			node_hash(sr, p[i], sr);
		fn >>= 1;
		sn >>= 1;
	}
	ok = sn == 0 && memcmp(fr, r1, HASH) == 0 && memcmp(sr, r2, HASH) == 0;
out:
	free(p);
	return ok;
}

/* hashes: a JSON array of hex hashes (malloc'd, *n), or NULL. */
static uint8_t (*hashes(const json_t *a, size_t *n))[HASH]
{
	uint8_t (*h)[HASH];
	size_t i;
	json_t *v;

	*n = json_array_size(a);
	if (!json_is_array(a) || *n > MAX_PROOF)
		return NULL;
	if ((h = calloc(*n + 1, HASH)) == NULL)
		return NULL;
	json_array_foreach(a, i, v)
		if (hex_decode(json_string_value(v), h[i], HASH) < 0) {
			free(h);
			return NULL;
		}
	return h;
}

/* --- keys and notes ------------------------------------------------ */

struct key {
	EVP_PKEY	*pk;
	uint8_t		 raw[32];
	char		*pem;		/* as read */
};

static void
key_clear(struct key *k)
{
	EVP_PKEY_free(k->pk);
	free(k->pem);
	memset(k, 0, sizeof(*k));
}

/* key_from_pem: an Ed25519 public key; 0, or -1 with ERR. */
static int
key_from_pem(const char *pem, struct key *k, char *err, size_t errlen)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	size_t rl = sizeof(k->raw);

	memset(k, 0, sizeof(*k));
	k->pk = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (k->pk == NULL || EVP_PKEY_id(k->pk) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(k->pk, k->raw, &rl) != 1 || rl != 32) {
		snprintf(err, errlen, "not an Ed25519 public key in PEM");
		key_clear(k);
		return -1;
	}
	k->pem = strdup(pem);
	return 0;
}

static char *
slurp(const char *path, size_t max, char *err, size_t errlen)
{
	char *buf;
	size_t n;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(max + 1)) == NULL)
		abort();
	n = fread(buf, 1, max + 1, f);
	fclose(f);
	if (n > max) {
		snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static void
key_id(const char *origin, const uint8_t raw[32], uint8_t id[4])
{
	static const uint8_t nl1[2] = { '\n', 0x01 };
	uint8_t h[HASH];

	sha256(origin, strlen(origin), nl1, 2, raw, 32, h);
	memcpy(id, h, 4);
}

struct note {
	char		 origin[256];
	uint64_t	 size;
	uint8_t		 root[HASH];
	size_t		 body_len;	/* the signed text: note[0..) */
	char		 ids[128];	/* key ids that signed, for messages */
};

/* line: the next line of S (up to '\n'), its length in *n; NULL at end. */
static const char *
line(const char **s, size_t *n)
{
	const char *p = *s, *nl;

	if (*p == '\0')
		return NULL;
	if ((nl = strchr(p, '\n')) == NULL)
		return NULL;	/* every line of a note ends in '\n' */
	*n = (size_t)(nl - p);
	*s = nl + 1;
	return p;
}

/*
 * note_parse: the body of TEXT into N; strict (three lines, a blank
 * line, signature lines). 0, or -1 with the reason in ERR.
 */
static int
note_parse(const char *text, struct note *n, char *err, size_t errlen)
{
	const char *s = text, *l;
	size_t len, i;
	uint8_t buf[HASH + 1];

	memset(n, 0, sizeof(*n));
	if ((l = line(&s, &len)) == NULL || len == 0 ||
	    len >= sizeof(n->origin)) {
		snprintf(err, errlen, "the note has no origin line");
		return -1;
	}
	memcpy(n->origin, l, len);
	if ((l = line(&s, &len)) == NULL || len == 0 || len > 20 ||
	    (len > 1 && l[0] == '0')) {
		snprintf(err, errlen, "the note's size line is not a number");
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (l[i] < '0' || l[i] > '9' || n->size > (UINT64_MAX -
		    (uint64_t)(l[i] - '0')) / 10) {
			snprintf(err, errlen, "the note's size line is not a "
			    "number");
			return -1;
		}
		n->size = n->size * 10 + (uint64_t)(l[i] - '0');
	}
	if ((l = line(&s, &len)) == NULL ||
	    b64_decode(l, len, buf, sizeof(buf)) != HASH) {
		snprintf(err, errlen, "the note's root line is not a base64 "
		    "SHA-256 hash");
		return -1;
	}
	memcpy(n->root, buf, HASH);
	/* Extension lines may follow; the body ends at the blank line. */
	while ((l = line(&s, &len)) != NULL && len != 0)
		;
	if (l == NULL) {
		snprintf(err, errlen, "the note has no blank line before its "
		    "signatures");
		return -1;
	}
	n->body_len = (size_t)(l - text);
	return 0;
}

/*
 * note_verify: a signature line of TEXT by ORIGIN with K's key id that
 * verifies over the body. 0; or -1 with ERR saying what failed.
 */
static int
note_verify(const char *text, struct note *n, const struct key *k,
    char *err, size_t errlen)
{
	static const char dash[] = "\xe2\x80\x94 ";
	const char *s = text + n->body_len + 1, *l, *sp;
	uint8_t id[4], sig[4 + 64 + 1];
	size_t len, olen = strlen(n->origin), idl = 0;
	long sl;
	char hx[9];
	int found = 0, good = 0;
	EVP_MD_CTX *ctx;

	key_id(n->origin, k->raw, id);
	while ((l = line(&s, &len)) != NULL) {
		if (len < sizeof(dash) - 1 || memcmp(l, dash,
		    sizeof(dash) - 1) != 0) {
			snprintf(err, errlen, "a signature line of the note "
			    "does not start with \"— \"");
			return -1;
		}
		l += sizeof(dash) - 1;
		len -= sizeof(dash) - 1;
		if ((sp = memchr(l, ' ', len)) == NULL ||
		    (sl = b64_decode(sp + 1, len - (size_t)(sp - l) - 1, sig,
		    sizeof(sig))) < 5) {
			snprintf(err, errlen, "a signature line of the note is "
			    "malformed");
			return -1;
		}
		to_hex(sig, 4, hx);
		if (idl + 10 < sizeof(n->ids))
			idl += (size_t)snprintf(n->ids + idl, sizeof(n->ids) -
			    idl, "%s%s", idl ? "," : "", hx);
		if ((size_t)(sp - l) != olen || memcmp(l, n->origin, olen) ||
		    memcmp(sig, id, 4) != 0)
			continue;
		found = 1;
		if (sl != 68)
			continue;
		ctx = EVP_MD_CTX_new();
		if (ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL,
		    k->pk) == 1 && EVP_DigestVerify(ctx, sig + 4, 64,
		    (const uint8_t *)text, n->body_len) == 1)
			good = 1;
		EVP_MD_CTX_free(ctx);
	}
	to_hex(id, 4, hx);
	if (good)
		return 0;
	if (found)
		snprintf(err, errlen, "the signature by key id %s does not "
		    "verify: the checkpoint was altered or not signed by that "
		    "key", hx);
	else
		snprintf(err, errlen, "the checkpoint is not signed by the "
		    "trusted key (key id %s) but by key id(s) %s: a new audit "
		    "key? accept it with --pubkey FILE after checking it",
		    hx, n->ids[0] ? n->ids : "none");
	return -1;
}

/* --- the witness state --------------------------------------------- */

struct witness {
	char		*path;
	int		 exists;
	char		 origin[256];
	uint64_t	 size;
	uint8_t		 root[HASH];
	char		*pem;		/* the trusted key */
};

static char *
state_path(struct ctl *c)
{
	char *p;

	if (c->o.state != NULL)
		return strdup(c->o.state);
	if (asprintf(&p, "%s/witness.json", c->conf_dir) < 0)
		return NULL;
	return p;
}

/* witness_load: read the state (absent is fine: *exists 0). 0, or
 * CTL_VERIFY / CTL_USAGE after saying why. */
static int
witness_load(struct ctl *c, struct witness *w)
{
	json_error_t jerr;
	json_t *j;
	const char *o, *r, *k;
	json_int_t sz;

	memset(w, 0, sizeof(*w));
	if ((w->path = state_path(c)) == NULL)
		abort();
	if (access(w->path, F_OK) < 0 && errno == ENOENT)
		return CTL_OK;
	if ((j = json_load_file(w->path, 0, &jerr)) == NULL) {
		fprintf(stderr, PROG ": witness state %s: %s (line %d); it is "
		    "left as it is: move it away to start witnessing anew\n",
		    w->path, jerr.text, jerr.line);
		return CTL_VERIFY;
	}
	o = json_string_value(json_object_get(j, "origin"));
	r = json_string_value(json_object_get(j, "root"));
	k = json_string_value(json_object_get(j, "public_key"));
	sz = json_integer_value(json_object_get(j, "size"));
	if (o == NULL || strlen(o) >= sizeof(w->origin) ||
	    hex_decode(r, w->root, HASH) < 0 || k == NULL ||
	    !json_is_integer(json_object_get(j, "size")) || sz < 0) {
		fprintf(stderr, PROG ": witness state %s: origin, size, root "
		    "(64 hex digits) or public_key missing or malformed; it is "
		    "left as it is: move it away to start witnessing anew\n",
		    w->path);
		json_decref(j);
		return CTL_VERIFY;
	}
	snprintf(w->origin, sizeof(w->origin), "%s", o);
	w->size = (uint64_t)sz;
	w->pem = strdup(k);
	w->exists = 1;
	json_decref(j);
	return CTL_OK;
}

static void
witness_free(struct witness *w)
{
	free(w->path);
	free(w->pem);
}

/* mkdirs: the directories above PATH (mode 0700 when made). */
static int
mkdirs(const char *path)
{
	char *d = strdup(path), *p;

	if (d == NULL)
		return -1;
	for (p = d + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(d, 0700) < 0 && errno != EEXIST) {
			free(d);
			return -1;
		}
		*p = '/';
	}
	free(d);
	return 0;
}

/* witness_save: the new checkpoint, written whole and renamed in. */
static int
witness_save(struct ctl *c, const struct witness *w, const struct note *n,
    const char *note, const struct key *k)
{
	char tmp[4200], root[2 * HASH + 1], id[9], now[32];
	uint8_t kid[4];
	time_t t = time(NULL);
	struct tm tm;
	json_t *j;
	FILE *f;
	int fd, ok;

	to_hex(n->root, HASH, root);
	key_id(n->origin, k->raw, kid);
	to_hex(kid, 4, id);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	j = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "url",
	    c->base, "origin", n->origin, "size", (json_int_t)n->size,
	    "root", root, "key_id", id, "public_key", k->pem, "note", note,
	    "witnessed", now);
	snprintf(tmp, sizeof(tmp), "%s.tmp", w->path);
	if (j == NULL || mkdirs(w->path) < 0 ||
	    (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0) {
		fprintf(stderr, PROG ": cannot write the witness state %s: "
		    "%s\n", tmp, strerror(errno));
		json_decref(j);
		return -1;
	}
	f = fdopen(fd, "w");
	ok = f != NULL && json_dumpf(j, f, JSON_INDENT(2)) == 0 &&
	    fputc('\n', f) != EOF && fflush(f) == 0 && fsync(fd) == 0;
	if (f != NULL)
		ok = fclose(f) == 0 && ok;
	else
		close(fd);
	json_decref(j);
	if (!ok || rename(tmp, w->path) < 0) {
		fprintf(stderr, PROG ": cannot write the witness state %s: "
		    "%s\n", w->path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* --- audit checkpoint ---------------------------------------------- */

int
cmd_audit_checkpoint(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	struct key k;
	uint8_t id[4];
	char buf[64], hx[9], err[128];
	int rc;

	(void)args;
	(void)n;
	if ((rc = ctl_api(c, "GET", P_CKPT, NULL, 0, &a)) != CTL_OK ||
	    c->json) {
		if (rc == CTL_OK)
			ctl_print_json(a.json);
		ctl_answer_free(&a);
		return rc;
	}
	ctl_kv("origin", ctl_jtext(a.json, "origin", buf, sizeof(buf)), 7);
	ctl_kv("size", ctl_jtext(a.json, "size", buf, sizeof(buf)), 7);
	ctl_kv("root", ctl_jtext(a.json, "root", buf, sizeof(buf)), 7);
	if (json_is_string(ctl_jget(a.json, "public_key")) &&
	    json_is_string(ctl_jget(a.json, "origin")) &&
	    key_from_pem(json_string_value(ctl_jget(a.json, "public_key")),
	    &k, err, sizeof(err)) == 0) {
		key_id(json_string_value(ctl_jget(a.json, "origin")), k.raw,
		    id);
		to_hex(id, 4, hx);
		ctl_kv("key id", hx, 7);
		key_clear(&k);
	}
	printf("\n%s", ctl_jtext(a.json, "note", buf, sizeof(buf)));
	ctl_answer_free(&a);
	return CTL_OK;
}

/* --- audit verify -------------------------------------------------- */

/* A verification failed: say what, where; CTL_VERIFY. */
#define FAILED(path, ...) \
	(ctl_err(c, "GET", (path), __VA_ARGS__), CTL_VERIFY)

/*
 * trusted_key: the key to check with: --pubkey FILE, else the witness's,
 * else (first use) the server's, said loudly. *tofu 1 for the last.
 */
static int
trusted_key(struct ctl *c, const struct witness *w, const json_t *ck,
    struct key *k, int *tofu)
{
	const char *pem = json_string_value(json_object_get(ck,
	    "public_key"));
	char err[256], *text;
	int rc;

	*tofu = 0;
	if (c->o.pubkey != NULL) {
		if ((text = slurp(c->o.pubkey, 64 * 1024, err,
		    sizeof(err))) == NULL) {
			fprintf(stderr, PROG ": --pubkey %s\n", err);
			return CTL_USAGE;
		}
		rc = key_from_pem(text, k, err, sizeof(err));
		free(text);
		if (rc < 0) {
			fprintf(stderr, PROG ": --pubkey %s: %s\n",
			    c->o.pubkey, err);
			return CTL_USAGE;
		}
		return CTL_OK;
	}
	if (w->exists) {
		if (key_from_pem(w->pem, k, err, sizeof(err)) < 0) {
			fprintf(stderr, PROG ": witness state %s: public_key: "
			    "%s\n", w->path, err);
			return CTL_VERIFY;
		}
		return CTL_OK;
	}
	if (pem == NULL || key_from_pem(pem, k, err, sizeof(err)) < 0)
		return FAILED(P_CKPT, "no usable public_key in the answer (%s) "
		    "and no --pubkey FILE", pem ? err : "missing");
	*tofu = 1;
	return CTL_OK;
}

/* consistency: the log of the witness (size w->size) is a prefix of the
 * one in N; fetch and check the proof. *nproof its length. */
static int
consistency(struct ctl *c, const struct witness *w, const struct note *n,
    size_t *nproof)
{
	struct ctl_answer a;
	uint8_t (*p)[HASH], theirs[HASH];
	char path[128], mine[2 * HASH + 1], srv[2 * HASH + 1];
	int rc;

	*nproof = 0;
	snprintf(path, sizeof(path), "/api/audit/consistency?from=%" PRIu64
	    "&to=%" PRIu64, w->size, n->size);
	if ((rc = ctl_api(c, "GET", path, NULL, CTL_ANY_STATUS, &a)) !=
	    CTL_OK)
		return rc;
	if (a.status != 200) {
		/* A log that cannot prove it grew has not been verified. */
		(void)ctl_refusal(c, "GET", path, &a);
		ctl_answer_free(&a);
		return CTL_VERIFY;
	}
	to_hex(w->root, HASH, mine);
	p = hashes(ctl_jget(a.json, "proof"), nproof);
	if (p == NULL)
		rc = FAILED(path, "consistency: no proof, or a malformed one, "
		    "in the answer");
	else if (!consistency_ok(w->size, n->size, w->root, n->root,
	    (const uint8_t (*)[HASH])p, *nproof)) {
		if (hex_decode(json_string_value(ctl_jget(a.json, "from_root")),
		    theirs, HASH) == 0 && memcmp(theirs, w->root, HASH) != 0) {
			to_hex(theirs, HASH, srv);
			rc = FAILED(path, "consistency: root mismatch at size %"
			    PRIu64 ": the witness recorded %s, the log now has "
			    "%s: the log was rewritten (or %s was changed)",
			    w->size, mine, srv, w->path);
		} else
			rc = FAILED(path, "consistency: the proof from size %"
			    PRIu64 " (root %s) to the signed size %" PRIu64
			    " does not verify: the log is not an extension of "
			    "the one witnessed", w->size, mine, n->size);
	}
	free(p);
	ctl_answer_free(&a);
	return rc;
}

/* checkpoint_note: fetch, parse and check the signed checkpoint. */
static int
signed_checkpoint(struct ctl *c, struct ctl_answer *a, struct note *n,
    const char **note)
{
	const char *origin;
	uint8_t r[HASH];
	char err[256];
	int rc;

	if ((rc = ctl_api(c, "GET", P_CKPT, NULL, 0, a)) != CTL_OK)
		return rc;
	*note = json_string_value(json_object_get(a->json, "note"));
	if (*note == NULL || strlen(*note) > NOTE_MAX)
		return FAILED(P_CKPT, "no signed note in the answer");
	if (note_parse(*note, n, err, sizeof(err)) < 0)
		return FAILED(P_CKPT, "%s", err);
	/* The answer's own fields must say what the signed note says. */
	origin = json_string_value(json_object_get(a->json, "origin"));
	if ((origin != NULL && strcmp(origin, n->origin) != 0) ||
	    (json_is_integer(json_object_get(a->json, "size")) &&
	    (uint64_t)json_integer_value(json_object_get(a->json, "size")) !=
	    n->size) || (json_is_string(json_object_get(a->json, "root")) &&
	    (hex_decode(json_string_value(json_object_get(a->json, "root")), r,
	    HASH) < 0 || memcmp(r, n->root, HASH) != 0)))
		return FAILED(P_CKPT, "the answer's origin, size or root differ "
		    "from its signed note's");
	return CTL_OK;
}

/*
 * grown: the log in N extends the one witnessed in W (same origin, not
 * smaller, the same root at the same size, else a consistency proof).
 * CTL_OK with *np the proof's length, or the failure said.
 */
static int
grown(struct ctl *c, const struct witness *w, const struct note *n,
    size_t *np)
{
	char mine[2 * HASH + 1], theirs[2 * HASH + 1];

	*np = 0;
	if (!w->exists)
		return CTL_OK;
	if (strcmp(w->origin, n->origin) != 0)
		return FAILED(P_CKPT, "the log is \"%s\", the witness state %s "
		    "is for \"%s\" (use --state FILE for another log)",
		    n->origin, w->path, w->origin);
	if (n->size < w->size)
		return FAILED(P_CKPT, "the log's size went backwards: %" PRIu64
		    " signed now, %" PRIu64 " witnessed before (a rollback)",
		    n->size, w->size);
	if (n->size == w->size && memcmp(n->root, w->root, HASH) != 0) {
		to_hex(w->root, HASH, mine);
		to_hex(n->root, HASH, theirs);
		return FAILED(P_CKPT, "root mismatch at size %" PRIu64 ": "
		    "signed %s, witnessed %s (a forked log, or %s was "
		    "changed)", n->size, theirs, mine, w->path);
	}
	if (w->size == 0 || n->size == w->size)
		return CTL_OK;
	return consistency(c, w, n, np);
}

static void
print_verified(struct ctl *c, const struct witness *w, const struct note *n,
    const char *hx, int tofu, size_t np)
{
	char root[2 * HASH + 1];
	json_t *j;

	to_hex(n->root, HASH, root);
	if (c->json) {
		j = json_pack("{s:b, s:s, s:I, s:s, s:s, s:b, s:s}", "ok", 1,
		    "origin", n->origin, "size", (json_int_t)n->size, "root",
		    root, "key_id", hx, "first_use", !w->exists, "state",
		    w->path);
		json_object_set_new(j, "previous_size", w->exists ?
		    json_integer((json_int_t)w->size) : json_null());
		ctl_print_json(j);
		json_decref(j);
		return;
	}
	printf("audit log \"%s\": size %" PRIu64 ", root %s\n", n->origin,
	    n->size, root);
	printf("  signature    ok (Ed25519, key id %s%s)\n", hx, tofu ?
	    ", trusted on first use" : c->o.pubkey ? ", --pubkey" :
	    ", the witnessed key");
	if (!w->exists)
		printf("  consistency  nothing witnessed before: this "
		    "checkpoint is the first\n");
	else if (n->size == w->size)
		printf("  consistency  ok: unchanged since the last witnessed "
		    "checkpoint (same size, same root)\n");
	else if (w->size == 0)
		printf("  consistency  ok: the witnessed log was empty\n");
	else
		printf("  consistency  ok: size %" PRIu64 " -> %" PRIu64 ", "
		    "proof of %zu hashes\n", w->size, n->size, np);
	printf("  witnessed    recorded in %s\n", w->path);
}

int
cmd_audit_verify(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	struct witness w;
	struct note nt;
	struct key k;
	const char *note = NULL;
	char err[512], hx[9];
	uint8_t id[4];
	size_t np = 0;
	int rc, tofu = 0;

	(void)args;
	(void)n;
	memset(&k, 0, sizeof(k));
	memset(&a, 0, sizeof(a));
	if ((rc = witness_load(c, &w)) != CTL_OK)
		goto out;
	if ((rc = signed_checkpoint(c, &a, &nt, &note)) != CTL_OK ||
	    (rc = trusted_key(c, &w, a.json, &k, &tofu)) != CTL_OK)
		goto out;
	if (note_verify(note, &nt, &k, err, sizeof(err)) < 0) {
		rc = FAILED(P_CKPT, "signature: %s", err);
		goto out;
	}
	key_id(nt.origin, k.raw, id);
	to_hex(id, 4, hx);
	if ((rc = grown(c, &w, &nt, &np)) != CTL_OK)
		goto out;
	if (tofu)
		fprintf(stderr, PROG ": WARNING: trust on first use: the audit "
		    "key (Ed25519, key id %s) was taken from the server's "
		    "answer and checked against nothing; it is now recorded in "
		    "%s and every later run holds the log to it. Compare it "
		    "with the server's audit key (DATA_DIR-audit.pem.pub), or "
		    "give --pubkey FILE.\n", hx, w.path);
	if (witness_save(c, &w, &nt, note, &k) < 0) {
		rc = CTL_VERIFY;
		goto out;
	}
	print_verified(c, &w, &nt, hx, tofu, np);
out:
	key_clear(&k);
	witness_free(&w);
	ctl_answer_free(&a);
	return rc;
}

/* --- audit proof --------------------------------------------------- */

/*
 * tie: the root R of a tree of SIZE against the witnessed one: equal at
 * the same size, else a consistency proof between the two. Prints the
 * outcome; 0 or CTL_VERIFY.
 */
static int
tie(struct ctl *c, const struct witness *w, uint64_t size,
    const uint8_t r[HASH])
{
	struct witness small = *w;
	struct note big;
	size_t np;
	int rc;

	if (size == w->size) {
		if (memcmp(r, w->root, HASH) != 0)
			return FAILED(P_CKPT, "the proof's root at size %"
			    PRIu64 " is not the witnessed one (%s)", size,
			    w->path);
		if (!c->json)
			printf("  witnessed    ok: the root is the witnessed "
			    "one (size %" PRIu64 ")\n", size);
		return CTL_OK;
	}
	memset(&big, 0, sizeof(big));
	if (size < w->size) {
		small.size = size;
		memcpy(small.root, r, HASH);
		big.size = w->size;
		memcpy(big.root, w->root, HASH);
	} else {
		big.size = size;
		memcpy(big.root, r, HASH);
	}
	if (small.size == 0)
		return CTL_OK;
	if ((rc = consistency(c, &small, &big, &np)) != CTL_OK)
		return rc;
	if (!c->json)
		printf("  witnessed    ok: consistent with the witnessed root "
		    "at size %" PRIu64 " (proof of %zu hashes)\n", w->size,
		    np);
	return CTL_OK;
}

/* leaf_text: the leaf's bytes, checked against its hash, when the
 * server offers them (GET /api/audit/leaf/SEQ). */
static int
leaf_text(struct ctl *c, uint64_t seq, const uint8_t lh[HASH])
{
	struct ctl_answer a;
	const char *t;
	char path[64];
	uint8_t h[HASH];
	static const uint8_t zero = 0x00;
	int rc;

	snprintf(path, sizeof(path), "/api/audit/leaf/%" PRIu64, seq);
	if ((rc = ctl_api(c, "GET", path, NULL, CTL_ANY_STATUS, &a)) !=
	    CTL_OK || a.status != 200 ||
	    (t = json_string_value(ctl_jget(a.json, "leaf_text"))) == NULL) {
		printf("  leaf text    not available (%d)\n", a.status);
		ctl_answer_free(&a);
		return rc == CTL_CONN ? CTL_CONN : CTL_OK;
	}
	sha256(&zero, 1, t, strlen(t), NULL, 0, h);
	if (memcmp(h, lh, HASH) != 0)
		rc = FAILED(path, "the leaf's text does not hash to the leaf "
		    "hash of the proof");
	else
		printf("  leaf         %s\n", t);
	ctl_answer_free(&a);
	return rc;
}

int
cmd_audit_proof(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	struct witness w;
	uint8_t lh[HASH], root[HASH], (*p)[HASH] = NULL;
	uint64_t seq, size = 0;
	char path[128], hr[2 * HASH + 1];
	size_t np;
	int rc;

	(void)n;
	memset(&a, 0, sizeof(a));
	if (ctl_parse_u64(args[0], 0, INT64_MAX, "SEQ", &seq) < 0 ||
	    (c->o.size != NULL && ctl_parse_u64(c->o.size, 1, INT64_MAX,
	    "--size", &size) < 0))
		return CTL_USAGE;
	if ((rc = witness_load(c, &w)) != CTL_OK)
		goto out;
	if (!w.exists && c->o.state != NULL) {
		fprintf(stderr, PROG ": no witness state %s (run audit verify "
		    "--state %s first)\n", w.path, w.path);
		rc = CTL_USAGE;
		goto out;
	}
	if (size == 0 && w.exists && seq < w.size)
		size = w.size;		/* prove against the witnessed root */
	if (size != 0)
		snprintf(path, sizeof(path), "/api/audit/proof?seq=%" PRIu64
		    "&size=%" PRIu64, seq, size);
	else
		snprintf(path, sizeof(path), "/api/audit/proof?seq=%" PRIu64,
		    seq);
	if ((rc = ctl_api(c, "GET", path, NULL, 0, &a)) != CTL_OK)
		goto out;
	if (c->json)
		ctl_print_json(a.json);
	if (!json_is_integer(ctl_jget(a.json, "size")) ||
	    (size != 0 && (uint64_t)json_integer_value(ctl_jget(a.json,
	    "size")) != size) || (uint64_t)json_integer_value(ctl_jget(a.json,
	    "seq")) != seq || hex_decode(json_string_value(ctl_jget(a.json,
	    "leaf_hash")), lh, HASH) < 0 || hex_decode(json_string_value(
	    ctl_jget(a.json, "root")), root, HASH) < 0 ||
	    (p = hashes(ctl_jget(a.json, "path"), &np)) == NULL) {
		rc = FAILED(path, "the answer lacks seq, size, leaf_hash, root "
		    "or path, or they are not what was asked");
		goto out;
	}
	size = (uint64_t)json_integer_value(ctl_jget(a.json, "size"));
	if (!inclusion_ok(seq, size, lh, (const uint8_t (*)[HASH])p, np,
	    root)) {
		rc = FAILED(path, "the inclusion proof of leaf %" PRIu64 " in "
		    "the tree of %" PRIu64 " does not verify", seq, size);
		goto out;
	}
	if (c->json) {
		/* --json: the server's answer above; the checks by status. */
		rc = w.exists ? tie(c, &w, size, root) : CTL_OK;
		goto out;
	}
	to_hex(root, HASH, hr);
	printf("leaf %" PRIu64 " of the log of size %" PRIu64 "\n", seq, size);
	printf("  inclusion    ok: in root %s (proof of %zu hashes)\n", hr,
	    np);
	if ((rc = leaf_text(c, seq, lh)) != CTL_OK)
		goto out;
	if (w.exists)
		rc = tie(c, &w, size, root);
	else
		printf("  witnessed    no: no witness state (%s); run audit "
		    "verify to tie proofs to a signed root\n", w.path);
out:
	free(p);
	witness_free(&w);
	ctl_answer_free(&a);
	return rc;
}
