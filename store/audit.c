/*
 * audit.c — the Merkle audit log (see audit.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "src/util/hex.h"
#include "src/util/log.h"
#include "src/util/notename.h"
#include "store/audit.h"
#include "store/store_key.h"

#define MAX_LEVELS	64
#define NOTE_MAX	1024

struct cbuf {
	char	*p;
	size_t	 n, cap;
};

struct audit {
	struct store	*st;
	char		*origin, *key_file, *ckpt_file;
	EVP_PKEY	*key;
	uint8_t		 pub[32];
	uint8_t		 keyid[4];
	uint8_t		 phi_secret[32];
	char		 boot[40];

	uint64_t	 size;			/* appended */
	uint8_t		 frontier[MAX_LEVELS][AUDIT_HASH];
	uint8_t		 last_leaf[AUDIT_HASH];
	int		 broken;		/* reload found a hole or could
						 * not read: no leaf is
						 * appended until one works */
	char		 why[160];		/* ... and why */
	/* The durable size, read from the store again only when a unit
	 * was made durable since (a RocksDB seek per call cost 5% of the
	 * HTTP status route). */
	uint64_t	 dsize, dsize_units;
	int		 dsize_ok;

	struct cbuf	 buf;			/* the leaf being written */
	time_t		 when_sec;		/* when[] is for this second */
	char		 when[32];
};

static const char meta_pub[] = "audit.pubkey";
static const char meta_origin[] = "audit.origin";
static const char meta_phi[] = "audit.phi_secret";

/*
 * SHA-256 over up to three parts with a fetched digest and a context kept
 * per thread: EVP's one-shot helpers fetch the algorithm on every call,
 * which costs more than hashing a 65-byte node. A thread that ends (a
 * backup verification's) frees its pair through the key's destructor.
 */
struct sha_tls {
	EVP_MD_CTX	*ctx;
	EVP_MD		*md;
};

static pthread_key_t sha_key;
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void
sha_tls_free(void *arg)
{
	struct sha_tls *t = arg;

	EVP_MD_CTX_free(t->ctx);
	EVP_MD_free(t->md);
	free(t);
}

static void
sha_key_make(void)
{
	if (pthread_key_create(&sha_key, sha_tls_free) != 0)
		abort();
}

static void
sha256_parts(const void *p1, size_t n1, const void *p2, size_t n2,
    const void *p3, size_t n3, uint8_t out[AUDIT_HASH])
{
	static __thread struct sha_tls *t;
	unsigned int ol = AUDIT_HASH;

	if (t == NULL) {
		pthread_once(&sha_once, sha_key_make);
		if ((t = calloc(1, sizeof(*t))) == NULL ||
		    (t->md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
		    (t->ctx = EVP_MD_CTX_new()) == NULL ||
		    pthread_setspecific(sha_key, t) != 0)
			abort();
	}
	if (EVP_DigestInit_ex2(t->ctx, t->md, NULL) != 1 ||
	    EVP_DigestUpdate(t->ctx, p1, n1) != 1 ||
	    (n2 && EVP_DigestUpdate(t->ctx, p2, n2) != 1) ||
	    (n3 && EVP_DigestUpdate(t->ctx, p3, n3) != 1) ||
	    EVP_DigestFinal_ex(t->ctx, out, &ol) != 1)
		abort();
}

void
audit_leaf_hash(const void *leaf, size_t n, uint8_t out[AUDIT_HASH])
{
	static const uint8_t zero = 0x00;

	sha256_parts(&zero, 1, leaf, n, NULL, 0, out);
}

void
audit_node_hash(const uint8_t l[AUDIT_HASH], const uint8_t r[AUDIT_HASH],
    uint8_t out[AUDIT_HASH])
{
	static const uint8_t one = 0x01;

	sha256_parts(&one, 1, l, AUDIT_HASH, r, AUDIT_HASH, out);
}

/*
 * The canonical JSON writer. jansson's own (JSON_SORT_KEYS) gives the
 * same bytes but costs more than the rest of an append together; this
 * one writes into a reused buffer and sorts keys on the stack.
 */
/* A key of the object being written: from the JSON, or one of the
 * fields audit_append adds, already rendered. */
struct ckey {
	const char	*key;
	size_t		 klen;
	const json_t	*val;		/* NULL: raw */
	const char	*raw;
};

static void
cb_grow(struct cbuf *c, size_t more)
{
	size_t cap = c->cap ? c->cap : 512;
	char *p;

	while (cap - c->n < more)
		cap *= 2;
	if (cap == c->cap)
		return;
	if ((p = realloc(c->p, cap)) == NULL) {
		log_err("out-of-memory", "where=%s", "audit leaf");
		abort();
	}
	c->p = p;
	c->cap = cap;
}

static void
cb_put(struct cbuf *c, const char *s, size_t n)
{
	if (c->cap - c->n < n)
		cb_grow(c, n);
	memcpy(c->p + c->n, s, n);
	c->n += n;
}

static void
cb_u16(struct cbuf *c, unsigned v)
{
	static const char d[] = "0123456789ABCDEF";
	char e[6] = { '\\', 'u', d[v >> 12 & 15], d[v >> 8 & 15],
	    d[v >> 4 & 15], d[v & 15] };

	cb_put(c, e, 6);
}

/* A JSON string, ASCII only: as jansson's JSON_ENSURE_ASCII. */
static void
cb_str(struct cbuf *c, const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + n;

	cb_put(c, "\"", 1);
	while (p < end) {
		const uint8_t *run = p;

		while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' &&
		    *p != '\\')
			p++;
		if (p > run)
			cb_put(c, (const char *)run, (size_t)(p - run));
		if (p >= end)
			break;
		switch (*p) {
		case '"':  cb_put(c, "\\\"", 2); p++; continue;
		case '\\': cb_put(c, "\\\\", 2); p++; continue;
		case '\b': cb_put(c, "\\b", 2); p++; continue;
		case '\f': cb_put(c, "\\f", 2); p++; continue;
		case '\n': cb_put(c, "\\n", 2); p++; continue;
		case '\r': cb_put(c, "\\r", 2); p++; continue;
		case '\t': cb_put(c, "\\t", 2); p++; continue;
		}
		if (*p < 0x80) {
			cb_u16(c, *p++);
			continue;
		}
		/* UTF-8 (jansson holds only valid UTF-8) to \u escapes. */
		uint32_t cp;
		size_t len = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;

		if ((size_t)(end - p) < len)
			len = (size_t)(end - p);
		cp = len == 4 ? *p & 0x07u : len == 3 ? *p & 0x0fu :
		    *p & 0x1fu;
		for (size_t i = 1; i < len; i++)
			cp = cp << 6 | (p[i] & 0x3fu);
		p += len;
		if (cp >= 0x10000) {
			cp -= 0x10000;
			cb_u16(c, 0xd800 | (cp >> 10));
			cb_u16(c, 0xdc00 | (cp & 0x3ff));
		} else
			cb_u16(c, cp);
	}
	cb_put(c, "\"", 1);
}

static int
ckey_cmp(const void *x, const void *y)
{
	const struct ckey *a = x, *b = y;
	size_t n = a->klen < b->klen ? a->klen : b->klen;
	int r = memcmp(a->key, b->key, n);

	return r ? r : (a->klen > b->klen) - (a->klen < b->klen);
}

static void cb_value(struct cbuf *c, const json_t *j);

/* An object's members sorted, with EXTRA raw members merged in (members
 * of the JSON with an extra's name are left out). */
static void
cb_object(struct cbuf *c, const json_t *j, const struct ckey *extra,
    size_t nextra)
{
	struct ckey stack[32], *k = stack;
	size_t n = 0, cap = sizeof(stack) / sizeof(stack[0]);
	const char *key;
	size_t klen;
	json_t *v;

	if (json_object_size(j) + nextra > cap) {
		cap = json_object_size(j) + nextra;
		if ((k = malloc(cap * sizeof(*k))) == NULL) {
			log_err("out-of-memory", "where=%s", "audit leaf");
			abort();
		}
	}
	json_object_keylen_foreach((json_t *)(uintptr_t)j, key, klen, v) {
		size_t e;

		for (e = 0; e < nextra; e++)
			if (extra[e].klen == klen &&
			    memcmp(extra[e].key, key, klen) == 0)
				break;
		if (e < nextra)
			continue;
		k[n].key = key;
		k[n].klen = klen;
		k[n].val = v;
		k[n].raw = NULL;
		n++;
	}
	for (size_t e = 0; e < nextra; e++)
		k[n++] = extra[e];
	qsort(k, n, sizeof(*k), ckey_cmp);
	cb_put(c, "{", 1);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			cb_put(c, ",", 1);
		cb_str(c, k[i].key, k[i].klen);
		cb_put(c, ":", 1);
		if (k[i].val != NULL)
			cb_value(c, k[i].val);
		else
			cb_put(c, k[i].raw, strlen(k[i].raw));
	}
	cb_put(c, "}", 1);
	if (k != stack)
		free(k);
}

static void
cb_value(struct cbuf *c, const json_t *j)
{
	char num[64];
	int n;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		cb_object(c, j, NULL, 0);
		break;
	case JSON_ARRAY:
		cb_put(c, "[", 1);
		for (size_t i = 0; i < json_array_size(j); i++) {
			if (i > 0)
				cb_put(c, ",", 1);
			cb_value(c, json_array_get(j, i));
		}
		cb_put(c, "]", 1);
		break;
	case JSON_STRING:
		cb_str(c, json_string_value(j), json_string_length(j));
		break;
	case JSON_INTEGER:
		n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(j));
		cb_put(c, num, (size_t)n);
		break;
	case JSON_REAL:
		/* not canonical: leaves hold integers; written as jansson
		 * would, so nothing is lost */
		n = snprintf(num, sizeof(num), "%.17g", json_real_value(j));
		cb_put(c, num, (size_t)n);
		break;
	case JSON_TRUE:
		cb_put(c, "true", 4);
		break;
	case JSON_FALSE:
		cb_put(c, "false", 5);
		break;
	case JSON_NULL:
		cb_put(c, "null", 4);
		break;
	}
}

char *
audit_canonical(const json_t *j, size_t *len)
{
	struct cbuf c = { 0 };

	cb_value(&c, j);
	cb_put(&c, "", 1);
	if (len != NULL)
		*len = c.n - 1;
	return c.p;
}

static size_t
node_key(uint8_t *k, unsigned level, uint64_t index)
{
	k[0] = (uint8_t)level;
	store_be64_put(k + 1, index);
	return 9;
}

/* A stored perfect-subtree hash: 0 found, -1 missing (or not a hash),
 * -2 unreadable (store_error). */
static int
get_node(struct audit *a, unsigned level, uint64_t index,
    uint8_t out[AUDIT_HASH])
{
	uint8_t k[9];
	void *v;
	size_t vn;
	int r = store_get(a->st, STORE_CF_AUDIT_NODE, k,
	    node_key(k, level, index), &v, &vn);

	if (r != 1)
		return r < 0 ? -2 : -1;
	if (vn != AUDIT_HASH) {
		free(v);
		return -1;
	}
	memcpy(out, v, AUDIT_HASH);
	free(v);
	return 0;
}

static unsigned
log2u(uint64_t v)
{
	return 63u - (unsigned)__builtin_clzll(v);
}

/* Largest power of two strictly below n (n >= 2). */
static uint64_t
split(uint64_t n)
{
	return 1ULL << log2u(n - 1);
}

/* MTH(D[lo:hi]) from stored nodes. */
static int
mth(struct audit *a, uint64_t lo, uint64_t hi, uint8_t out[AUDIT_HASH])
{
	uint64_t n = hi - lo, k;
	uint8_t l[AUDIT_HASH], r[AUDIT_HASH];

	if (n == 0) {
		sha256_parts("", 0, NULL, 0, NULL, 0, out);
		return 0;
	}
	if ((n & (n - 1)) == 0 && lo % n == 0)
		return get_node(a, log2u(n), lo / n, out);
	k = split(n);
	if (mth(a, lo, lo + k, l) < 0 || mth(a, lo + k, hi, r) < 0)
		return -1;
	audit_node_hash(l, r, out);
	return 0;
}

uint64_t
audit_durable_size(struct audit *a)
{
	struct store_stats s;
	uint64_t n;

	store_stats(a->st, &s);
	/* units only grow; one counted here was written before it was */
	if ((!a->dsize_ok || s.units != a->dsize_units) &&
	    audit_store_size(a->st, &n) == 0) {
		a->dsize = n;
		a->dsize_units = s.units;
		a->dsize_ok = 1;
	}
	/* a read that failed keeps the last size read, and tries again */
	return a->dsize;
}

uint64_t
audit_size(const struct audit *a)
{
	return a->size;
}

/* The in-memory frontier from what is durable (open, and after a failed
 * group: whatever was appended but not written is forgotten). */
static int
reload_fail(struct audit *a, int r, unsigned lvl, uint64_t idx)
{
	snprintf(a->why, sizeof(a->why), "tree node (level %u, index %llu) "
	    "%s%s", lvl, (unsigned long long)idx, r == -2 ? "unreadable: " :
	    "missing", r == -2 ? store_read_error(a->st) : "");
	a->broken = 1;
	return -1;
}

static int
reload(struct audit *a)
{
	uint64_t n;

	a->dsize_ok = 0;
	n = audit_durable_size(a);
	if (!a->dsize_ok) {
		/* taken for empty, the next leaf would be written over
		 * leaf 0 */
		snprintf(a->why, sizeof(a->why), "the last leaf could not be "
		    "read: %s", store_read_error(a->st));
		a->broken = 1;
		return -1;
	}
	a->broken = 0;
	a->size = n;
	memset(a->frontier, 0, sizeof(a->frontier));
	memset(a->last_leaf, 0, sizeof(a->last_leaf));
	for (unsigned lvl = 0; lvl < MAX_LEVELS; lvl++) {
		if (!(n >> lvl & 1))
			continue;
		uint64_t start = n >> (lvl + 1) << (lvl + 1);

		int r = get_node(a, lvl, start >> lvl, a->frontier[lvl]);

		if (r < 0)
			return reload_fail(a, r, lvl, start >> lvl);
	}
	if (n > 0) {
		int r = get_node(a, 0, n - 1, a->last_leaf);

		if (r < 0)
			return reload_fail(a, r, 0, n - 1);
	}
	return 0;
}

static void
on_reset(void *arg)
{
	struct audit *a = arg;

	if (reload(a) < 0)
		log_err("audit-broken", "size=%llu error=%s hint=%s",
		    (unsigned long long)a->size, log_q(a->why),
		    log_q("the audit log could not be read back from the "
		    "store (a tree node missing, or a read error): no leaf is "
		    "appended, and the units that would append one fail, "
		    "until a reopen reads it whole; if this repeats, restore "
		    "a backup"));
}

uint64_t
audit_append(struct audit *a, struct store_batch *b, const json_t *ev)
{
	uint64_t seq = a->size, idx;
	uint8_t h[AUDIT_HASH], k[9], lk[8];
	char seqs[24], mono[24], when[64], boot[48], prev[2 * AUDIT_HASH + 3];
	struct ckey extra[5];
	struct timespec rt, mt;
	size_t ne = 0;
	unsigned lvl;
	json_t *missing = NULL;

	if (a->broken) {
		/* Its frontier is not what is stored: a leaf now would not
		 * chain. The unit fails; the store reopens and reloads. */
		store_fail(b, "the audit log could not be read back from "
		    "the store (see audit-broken)");
		return seq;
	}
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mt);
	if (rt.tv_sec != a->when_sec) {
		struct tm tm;

		gmtime_r(&rt.tv_sec, &tm);
		strftime(a->when, sizeof(a->when), "%Y-%m-%dT%H:%M:%S", &tm);
		a->when_sec = rt.tv_sec;
	}
	snprintf(when, sizeof(when), "\"%s.%06ldZ\"", a->when,
	    rt.tv_nsec / 1000);
	snprintf(seqs, sizeof(seqs), "%llu", (unsigned long long)seq);
	snprintf(mono, sizeof(mono), "%llu", (unsigned long long)
	    ((uint64_t)mt.tv_sec * 1000000 + (uint64_t)mt.tv_nsec / 1000));
	snprintf(boot, sizeof(boot), "\"%s\"", a->boot);
	extra[ne++] = (struct ckey){ "seq", 3, NULL, seqs };
	extra[ne++] = (struct ckey){ "time", 4, NULL, when };
	extra[ne++] = (struct ckey){ "mono", 4, NULL, mono };
	extra[ne++] = (struct ckey){ "boot", 4, NULL, boot };
	if (seq > 0) {
		prev[0] = '"';
		hex_encode(a->last_leaf, AUDIT_HASH, prev + 1);
		prev[2 * AUDIT_HASH + 1] = '"';
		prev[2 * AUDIT_HASH + 2] = '\0';
		extra[ne++] = (struct ckey){ "prev", 4, NULL, prev };
	} else
		extra[ne++] = (struct ckey){ "prev", 4, NULL, NULL };
	if (ev == NULL) {
		/* A caller's event that could not be built (jansson takes
		 * UTF-8 only): said, in the log and in the leaf, not an
		 * empty leaf */
		log_err("audit-event-missing", "seq=%llu hint=%s",
		    (unsigned long long)seq, log_q("an event could not be "
		    "encoded (text that is not UTF-8?): its leaf says so"));
		ev = missing = json_pack("{s:s, s:s}", "event",
		    "audit.event_unencodable", "outcome", "error");
	}
	a->buf.n = 0;
	/* "prev" absent at seq 0: listed (so a caller's "prev" is dropped)
	 * but not written */
	cb_object(&a->buf, ev, extra, seq > 0 ? ne : ne - 1);
	if (seq == 0 && json_object_get(ev, "prev") != NULL) {
		/* rare: redo without the caller's prev */
		json_t *copy = json_copy((json_t *)(uintptr_t)ev);

		json_object_del(copy, "prev");
		a->buf.n = 0;
		cb_object(&a->buf, copy, extra, ne - 1);
		json_decref(copy);
	}

	audit_leaf_hash(a->buf.p, a->buf.n, h);
	store_be64_put(lk, seq);
	store_put(b, STORE_CF_AUDIT_LEAF, lk, 8, a->buf.p, a->buf.n);
	store_put(b, STORE_CF_AUDIT_NODE, k, node_key(k, 0, seq), h,
	    AUDIT_HASH);
	memcpy(a->last_leaf, h, AUDIT_HASH);

	for (lvl = 0, idx = seq; idx & 1; lvl++, idx >>= 1) {
		audit_node_hash(a->frontier[lvl], h, h);
		store_put(b, STORE_CF_AUDIT_NODE, k,
		    node_key(k, lvl + 1, idx >> 1), h, AUDIT_HASH);
	}
	memcpy(a->frontier[lvl], h, AUDIT_HASH);
	a->size = seq + 1;
	json_decref(missing);
	return seq;
}

int
audit_root(struct audit *a, uint64_t size, uint8_t root[AUDIT_HASH])
{
	return mth(a, 0, size, root);
}

int
audit_leaf(struct audit *a, uint64_t seq, uint8_t hash[AUDIT_HASH],
    char **json, size_t *len)
{
	uint8_t k[8];
	void *v;
	size_t vn;

	store_be64_put(k, seq);
	if (store_get(a->st, STORE_CF_AUDIT_LEAF, k, 8, &v, &vn) != 1)
		return -1;
	if (hash != NULL)
		audit_leaf_hash(v, vn, hash);
	if (json != NULL) {
		char *s = realloc(v, vn + 1);

		if (s == NULL) {
			free(v);
			return -1;
		}
		s[vn] = '\0';
		*json = s;
		if (len != NULL)
			*len = vn;
	} else
		free(v);
	return 0;
}

/* A growing list of hashes. */
struct hlist {
	uint8_t	*p;
	size_t	 n, cap;
	int	 err;
};

static void
hl_add(struct hlist *l, struct audit *a, uint64_t lo, uint64_t hi)
{
	if (l->err)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		uint8_t *p = realloc(l->p, cap * AUDIT_HASH);

		if (p == NULL) {
			l->err = 1;
			return;
		}
		l->p = p;
		l->cap = cap;
	}
	if (mth(a, lo, hi, l->p + l->n * AUDIT_HASH) < 0)
		l->err = 1;
	else
		l->n++;
}

/* RFC 9162 2.1.3.1 PATH(m, D[lo:hi]), m relative to lo. */
static void
path(struct hlist *l, struct audit *a, uint64_t m, uint64_t lo, uint64_t hi)
{
	uint64_t n = hi - lo, k;

	if (n <= 1)
		return;
	k = split(n);
	if (m < k) {
		path(l, a, m, lo, lo + k);
		hl_add(l, a, lo + k, hi);
	} else {
		path(l, a, m - k, lo + k, hi);
		hl_add(l, a, lo, lo + k);
	}
}

/* RFC 9162 2.1.4.1 SUBPROOF(m, D[lo:hi], b). */
static void
subproof(struct hlist *l, struct audit *a, uint64_t m, uint64_t lo,
    uint64_t hi, int b)
{
	uint64_t n = hi - lo, k;

	if (m == n) {
		if (!b)
			hl_add(l, a, lo, hi);
		return;
	}
	k = split(n);
	if (m <= k) {
		subproof(l, a, m, lo, lo + k, b);
		hl_add(l, a, lo + k, hi);
	} else {
		subproof(l, a, m - k, lo + k, hi, 0);
		hl_add(l, a, lo, lo + k);
	}
}

static int
proof_done(struct hlist *l, uint8_t **out, size_t *n, char *err,
    size_t errlen)
{
	if (l->err) {
		free(l->p);
		snprintf(err, errlen, "a tree node could not be read");
		return -1;
	}
	*out = l->p;
	*n = l->n;
	return 0;
}

int
audit_inclusion(struct audit *a, uint64_t index, uint64_t size,
    uint8_t **out, size_t *n, char *err, size_t errlen)
{
	struct hlist l = { 0 };
	uint64_t dn = audit_durable_size(a);

	*out = NULL;
	*n = 0;
	if (size > dn || index >= size) {
		snprintf(err, errlen, "leaf %llu is not in a tree of size %llu "
		    "(the log holds %llu leaves)", (unsigned long long)index,
		    (unsigned long long)size, (unsigned long long)dn);
		return -1;
	}
	path(&l, a, index, 0, size);
	return proof_done(&l, out, n, err, errlen);
}

int
audit_consistency(struct audit *a, uint64_t m, uint64_t size,
    uint8_t **out, size_t *n, char *err, size_t errlen)
{
	struct hlist l = { 0 };
	uint64_t dn = audit_durable_size(a);

	*out = NULL;
	*n = 0;
	if (size > dn || m > size || m == 0) {
		snprintf(err, errlen, "no consistency proof from size %llu to "
		    "%llu (sizes must be 1 <= from <= to <= %llu)",
		    (unsigned long long)m, (unsigned long long)size,
		    (unsigned long long)dn);
		return -1;
	}
	if (m < size)
		subproof(&l, a, m, 0, size, 1);
	return proof_done(&l, out, n, err, errlen);
}

void
audit_phi(const struct audit *a, const char *value, char out[65])
{
	/* HMAC-SHA256 (RFC 2104) on the thread's kept digest: OpenSSL's
	 * one-shot HMAC() fetches SHA-256 and makes a context each call,
	 * which was 3% of the HL7 intake (an MRN per order) */
	uint8_t pad[64], inner[AUDIT_HASH], mac[AUDIT_HASH];

	memset(pad, 0x36, sizeof(pad));
	for (size_t i = 0; i < sizeof(a->phi_secret); i++)
		pad[i] ^= a->phi_secret[i];
	sha256_parts(pad, sizeof(pad), value, strlen(value), NULL, 0, inner);
	memset(pad, 0x5c, sizeof(pad));
	for (size_t i = 0; i < sizeof(a->phi_secret); i++)
		pad[i] ^= a->phi_secret[i];
	sha256_parts(pad, sizeof(pad), inner, sizeof(inner), NULL, 0, mac);
	OPENSSL_cleanse(pad, sizeof(pad));
	hex_encode(mac, 32, out);
}

static int
b64(const uint8_t *p, size_t n, char *out, size_t outsz)
{
	if (outsz < 4 * ((n + 2) / 3) + 1)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return 0;
}

/* The note text (three lines) for size and root, signed. */
static int
make_note(struct audit *a, uint64_t size, const uint8_t root[AUDIT_HASH],
    char *note, size_t notesz)
{
	char r64[64], s64[128];
	uint8_t sig[4 + 64];
	size_t siglen = 64;
	EVP_MD_CTX *ctx;
	int body, ok;

	b64(root, AUDIT_HASH, r64, sizeof(r64));
	body = snprintf(note, notesz, "%s\n%llu\n%s\n", a->origin,
	    (unsigned long long)size, r64);
	if (body < 0 || (size_t)body >= notesz)
		return -1;
	memcpy(sig, a->keyid, 4);
	ctx = EVP_MD_CTX_new();
	ok = ctx != NULL &&
	    EVP_DigestSignInit(ctx, NULL, NULL, NULL, a->key) == 1 &&
	    EVP_DigestSign(ctx, sig + 4, &siglen, (const uint8_t *)note,
	    (size_t)body) == 1 && siglen == 64;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	b64(sig, sizeof(sig), s64, sizeof(s64));
	if ((size_t)snprintf(note + body, notesz - (size_t)body,
	    "\n\xe2\x80\x94 %s %s\n", a->origin, s64) >= notesz - (size_t)body)
		return -1;
	return 0;
}

char *
audit_latest_checkpoint(struct audit *a)
{
	void *k, *v;
	size_t kn, vn;
	char *s = NULL;

	if (store_last(a->st, STORE_CF_AUDIT_CKPT, "", 0, &k, &kn, &v,
	    &vn) == 1 && (s = malloc(vn + 1)) != NULL) {
		memcpy(s, v, vn);
		s[vn] = '\0';
	}
	free(k);
	free(v);
	return s;
}

static uint64_t
latest_ckpt_size(struct audit *a, int *have)
{
	void *k, *v;
	size_t kn, vn;
	uint64_t n = 0;

	*have = 0;
	if (store_last(a->st, STORE_CF_AUDIT_CKPT, "", 0, &k, &kn, &v,
	    &vn) == 1 && kn == 8) {
		n = store_be64_get(k);
		*have = 1;
	}
	free(k);
	free(v);
	return n;
}

static int
append_file(const char *path, const char *text, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	size_t n = strlen(text), off = 0;

	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	while (off < n) {
		ssize_t w = write(fd, text + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(err, errlen, "cannot write %s: %s", path,
			    strerror(errno));
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0) {
		snprintf(err, errlen, "cannot sync %s: %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
audit_checkpoint(struct audit *a, char **out, char *err, size_t errlen)
{
	uint64_t size = audit_durable_size(a), last;
	uint8_t root[AUDIT_HASH], k[8];
	char note[NOTE_MAX], sep[NOTE_MAX + 2];
	int have;

	if (out != NULL)
		*out = NULL;
	last = latest_ckpt_size(a, &have);
	if (have && last == size)
		return 0;
	if (audit_root(a, size, root) < 0) {
		snprintf(err, errlen, "the tree of size %llu could not be "
		    "read from the store", (unsigned long long)size);
		return -1;
	}
	if (make_note(a, size, root, note, sizeof(note)) < 0) {
		snprintf(err, errlen, "signing the checkpoint failed");
		return -1;
	}
	struct store_batch *b = store_begin(a->st);

	store_be64_put(k, size);
	store_put(b, STORE_CF_AUDIT_CKPT, k, 8, note, strlen(note));
	store_end(b, NULL, NULL);
	if (a->ckpt_file != NULL) {
		snprintf(sep, sizeof(sep), "%s\n", note);
		if (append_file(a->ckpt_file, sep, err, errlen) < 0)
			return -1;
	}
	if (out != NULL)
		*out = strdup(note);
	return 1;
}

struct export_ctx {
	FILE	*f;
	int	 err;
	int64_t	 n;
	uint64_t next;
	uint8_t	(*keys)[32];		/* named by audit.key leaves */
	size_t	 nkeys;
};

static void
key_add(struct export_ctx *x, const uint8_t pub[32])
{
	uint8_t (*k)[32];

	for (size_t i = 0; i < x->nkeys; i++)
		if (memcmp(x->keys[i], pub, 32) == 0)
			return;
	if ((k = reallocarray(x->keys, x->nkeys + 1, 32)) == NULL)
		abort();
	x->keys = k;
	memcpy(x->keys[x->nkeys++], pub, 32);
}

/* The keys an audit.key leaf names: the one it starts using, and the one
 * before it (a log whose first key's leaf was lost still names it). */
static void
leaf_keys(struct export_ctx *x, const void *val, size_t vlen)
{
	static const char ev[] = "\"audit.key\"";
	static const char *const names[] = { "previous_public_key",
	    "public_key" };
	json_t *j, *o;

	if (memmem(val, vlen, ev, sizeof(ev) - 1) == NULL ||
	    (j = json_loadb(val, vlen, 0, NULL)) == NULL)
		return;
	o = json_object_get(j, "object");
	if (json_is_string(json_object_get(j, "event")) &&
	    strcmp(json_string_value(json_object_get(j, "event")),
	    "audit.key") == 0)
		for (size_t i = 0; i < 2; i++) {
			const char *h = json_string_value(json_object_get(o,
			    names[i]));
			uint8_t pub[32];

			if (hex_decode(h, pub, 32) == 0)	/* 64 digits */
				key_add(x, pub);
		}
	json_decref(j);
}

static int
export_leaf(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct export_ctx *x = arg;

	if (klen != 8 || store_be64_get(key) != x->next) {
		x->err = 2;
		return 1;
	}
	x->next++;
	if (fwrite(val, 1, vlen, x->f) != vlen || fputc('\n', x->f) == EOF) {
		x->err = 1;
		return 1;
	}
	x->n++;
	leaf_keys(x, val, vlen);
	return 0;
}

static int
export_ckpt(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct export_ctx *x = arg;

	(void)key;
	(void)klen;
	if (fwrite(val, 1, vlen, x->f) != vlen || fputc('\n', x->f) == EOF) {
		x->err = 1;
		return 1;
	}
	return 0;
}

/* bio_str: what was written to BIO (when OK) as a malloc'd string, or
 * NULL; BIO is freed. */
static char *
bio_str(BIO *bio, int ok)
{
	char *p = NULL, *s = NULL;
	long n;

	if (bio != NULL && ok && (n = BIO_get_mem_data(bio, &p)) > 0 &&
	    (s = malloc((size_t)n + 1)) != NULL) {
		memcpy(s, p, (size_t)n);
		s[n] = '\0';
	}
	BIO_free(bio);
	return s;
}

/* PEM of every key in X and the current one (malloc'd), or NULL. */
static char *
keys_pem(const struct audit *a, struct export_ctx *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	int ok = bio != NULL;

	key_add(x, a->pub);
	for (size_t i = 0; ok && i < x->nkeys; i++) {
		EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519,
		    NULL, x->keys[i], 32);

		ok = k != NULL && PEM_write_bio_PUBKEY(bio, k) == 1;
		EVP_PKEY_free(k);
	}
	return bio_str(bio, ok);
}

int64_t
audit_export(struct audit *a, FILE *leaves, FILE *ckpts, char **pems,
    char *err, size_t errlen)
{
	struct export_ctx x = { .f = leaves };
	int64_t r = -1;

	if (pems != NULL)
		*pems = NULL;
	if (store_scan(a->st, STORE_CF_AUDIT_LEAF, "", 0, export_leaf,
	    &x) < 0 || x.err == 2) {
		if (x.err == 2)
			snprintf(err, errlen, "leaf %llu is missing from the "
			    "store", (unsigned long long)x.next);
		else
			snprintf(err, errlen, "reading the leaves failed: %s",
			    store_error(a->st));
		goto out;
	}
	if (x.err || fflush(leaves) == EOF) {
		snprintf(err, errlen, "writing the leaves: %s",
		    strerror(errno));
		goto out;
	}
	if (ckpts != NULL) {
		struct export_ctx c = { .f = ckpts };

		if (store_scan(a->st, STORE_CF_AUDIT_CKPT, "", 0, export_ckpt,
		    &c) < 0) {
			snprintf(err, errlen, "reading the checkpoints failed: "
			    "%s", store_error(a->st));
			goto out;
		}
		if (c.err || fflush(ckpts) == EOF) {
			snprintf(err, errlen, "writing the checkpoints: %s",
			    strerror(errno));
			goto out;
		}
	}
	if (pems != NULL && (*pems = keys_pem(a, &x)) == NULL) {
		snprintf(err, errlen, "cannot encode the public keys");
		goto out;
	}
	r = x.n;
out:
	free(x.keys);
	return r;
}

char *
audit_public_pem(const struct audit *a)
{
	BIO *bio = BIO_new(BIO_s_mem());

	return bio_str(bio, bio != NULL && PEM_write_bio_PUBKEY(bio,
	    a->key) == 1);
}

/* Refuse a key under the data dir: a copy of the state must not carry
 * the means to re-sign it. */
static int
key_outside(const char *key_file, const char *data_dir, char *err,
    size_t errlen)
{
	char kd[PATH_MAX], dd[PATH_MAX], tmp[PATH_MAX];
	char *slash;

	if (data_dir == NULL)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s", key_file);
	if ((slash = strrchr(tmp, '/')) != NULL)
		*(slash == tmp ? slash + 1 : slash) = '\0';
	else
		snprintf(tmp, sizeof(tmp), ".");
	if (realpath(tmp, kd) == NULL) {
		snprintf(err, errlen, "audit key %s: directory %s: %s",
		    key_file, tmp, strerror(errno));
		return -1;
	}
	if (realpath(data_dir, dd) == NULL)
		return 0;
	size_t dl = strlen(dd);

	if (strncmp(kd, dd, dl) == 0 && (kd[dl] == '/' || kd[dl] == '\0')) {
		snprintf(err, errlen, "audit key %s is inside the data dir "
		    "%s: keep it elsewhere (e.g. /etc/vnamig), so a copy of "
		    "the state does not carry the key that signs it",
		    key_file, data_dir);
		return -1;
	}
	return 0;
}

static int
write_pub(struct audit *a, char *err, size_t errlen)
{
	char path[PATH_MAX];
	char *pem = audit_public_pem(a);
	int r = -1;

	snprintf(path, sizeof(path), "%s.pub", a->key_file);
	if (pem == NULL) {
		snprintf(err, errlen, "cannot encode the public key");
		return -1;
	}
	FILE *f = fopen(path, "we");

	if (f == NULL)
		snprintf(err, errlen, "cannot write %s: %s", path,
		    strerror(errno));
	else if (fputs(pem, f) == EOF || fclose(f) != 0)
		snprintf(err, errlen, "cannot write %s: %s", path,
		    strerror(errno));
	else
		r = 0;
	free(pem);
	return r;
}

static int
load_key(struct audit *a, int *created, char *err, size_t errlen)
{
	FILE *f = fopen(a->key_file, "re");
	size_t pl = sizeof(a->pub);

	*created = 0;
	if (f != NULL) {
		a->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		if (a->key == NULL || EVP_PKEY_id(a->key) != EVP_PKEY_ED25519) {
			snprintf(err, errlen, "audit key %s is not an Ed25519 "
			    "private key in PEM (make one with: openssl "
			    "genpkey -algorithm ed25519 -out %s)", a->key_file,
			    a->key_file);
			return -1;
		}
	} else if (errno != ENOENT) {
		snprintf(err, errlen, "cannot read audit key %s: %s",
		    a->key_file, strerror(errno));
		return -1;
	} else {
		int fd;

		if ((a->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) ==
		    NULL) {
			snprintf(err, errlen, "cannot generate an Ed25519 key");
			return -1;
		}
		fd = open(a->key_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600);
		if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
			snprintf(err, errlen, "cannot create audit key %s: %s",
			    a->key_file, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		if (PEM_write_PrivateKey(f, a->key, NULL, NULL, 0, NULL,
		    NULL) != 1 || fflush(f) != 0 || fsync(fd) != 0) {
			fclose(f);
			unlink(a->key_file);
			snprintf(err, errlen, "cannot write audit key %s",
			    a->key_file);
			return -1;
		}
		fclose(f);
		*created = 1;
	}
	if (EVP_PKEY_get_raw_public_key(a->key, a->pub, &pl) != 1 || pl != 32) {
		snprintf(err, errlen, "cannot read the public half of %s",
		    a->key_file);
		return -1;
	}
	/* C2SP signed-note key id: SHA-256(name || "\n" || 0x01 || pub). */
	{
		uint8_t h[32];
		static const uint8_t nlalg[2] = { '\n', 0x01 };

		sha256_parts(a->origin, strlen(a->origin), nlalg, 2, a->pub,
		    32, h);
		memcpy(a->keyid, h, 4);
	}
	{
		char path[PATH_MAX];
		struct stat sb;

		snprintf(path, sizeof(path), "%s.pub", a->key_file);
		if ((*created || stat(path, &sb) < 0) &&
		    write_pub(a, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static void
read_boot_id(char *out, size_t n)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	snprintf(out, n, "unknown");
	if (f != NULL) {
		if (fgets(out, (int)n, f) != NULL)
			out[strcspn(out, "\n")] = '\0';
		fclose(f);
	}
}

static void
open_done(void *arg, int err)
{
	*(int *)arg = err ? -1 : 1;
}

/* open_unit: end unit B and wait until it is durable; 0, or -1 with err */
static int
open_unit(struct store *st, struct store_batch *b, char *err, size_t errlen)
{
	int done = 0;

	store_end(b, open_done, &done);
	store_drain(st);
	if (done == 1)
		return 0;
	snprintf(err, errlen, "cannot write the store: %s", store_error(st));
	return -1;
}

struct audit *
audit_open(struct store *st, const struct audit_opts *o, char *err,
    size_t errlen)
{
	struct audit *a = calloc(1, sizeof(*a));
	void *v = NULL;
	size_t vn = 0;
	int created, r, have_pub, have_phi, have_origin;
	uint8_t old_pub[32];

	if (a == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->st = st;
	if ((a->origin = strdup(o->origin)) == NULL ||
	    (a->key_file = strdup(o->key_file)) == NULL ||
	    (o->checkpoint_file != NULL &&
	    (a->ckpt_file = strdup(o->checkpoint_file)) == NULL)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (!note_name_valid(a->origin)) {
		snprintf(err, errlen, "audit origin \"%.200s\": 1 to 200 "
		    "printable ASCII characters, no space and no '+' (a "
		    "signed note's key name, c2sp.org/signed-note)",
		    a->origin);
		goto fail;
	}
	/* One log, one origin: the verifier requires every checkpoint to
	 * carry the first one's. Fixed at the log's first start; a later
	 * configuration (a renamed node) does not change it. */
	r = store_get(st, STORE_CF_META, meta_origin, sizeof(meta_origin) - 1,
	    &v, &vn);
	if (r < 0) {
		snprintf(err, errlen, "cannot read the store: %s",
		    store_error(st));
		goto fail;
	}
	if (r == 1 && (vn != strlen(a->origin) || memcmp(v, a->origin,
	    vn) != 0)) {
		char *kept = strndup(v, vn);

		if (kept == NULL || !note_name_valid(kept)) {
			free(kept);
			free(v);
			snprintf(err, errlen, "the audit origin kept in the "
			    "store is not a valid one");
			goto fail;
		}
		log_warn("audit-origin-kept", "configured=%s kept=%s why=%s",
		    log_q(a->origin), log_q(kept), log_q("the log's origin is "
		    "fixed at its first start: every checkpoint of one log "
		    "carries one origin"));
		free(a->origin);
		a->origin = kept;
	}
	have_origin = r == 1;
	free(v);
	v = NULL;
	read_boot_id(a->boot, sizeof(a->boot));
	if (key_outside(a->key_file, o->data_dir, err, errlen) < 0 ||
	    load_key(a, &created, err, errlen) < 0)
		goto fail;
	if (reload(a) < 0) {
		snprintf(err, errlen, "the audit log in the store could not "
		    "be read back (%s): a node missing means a backup must be "
		    "restored; a read error may pass on another start",
		    a->why);
		goto fail;
	}
	r = store_get(st, STORE_CF_META, meta_phi, sizeof(meta_phi) - 1, &v,
	    &vn);
	if (r < 0) {
		snprintf(err, errlen, "cannot read the store: %s",
		    store_read_error(st));
		goto fail;
	}
	have_phi = r == 1 && vn == sizeof(a->phi_secret);
	if (have_phi)
		memcpy(a->phi_secret, v, vn);
	free(v);
	r = store_get(st, STORE_CF_META, meta_pub, sizeof(meta_pub) - 1, &v,
	    &vn);
	have_pub = r == 1 && vn == 32;
	if (have_pub)
		memcpy(old_pub, v, 32);
	free(v);
	if (r < 0) {
		snprintf(err, errlen, "cannot read the store: %s",
		    store_error(st));
		goto fail;
	}

	if (!have_origin) {
		struct store_batch *b = store_begin(st);

		store_put(b, STORE_CF_META, meta_origin, sizeof(meta_origin) - 1,
		    a->origin, strlen(a->origin));
		if (open_unit(st, b, err, errlen) < 0)
			goto fail;
	}
	if (!have_phi || !have_pub || memcmp(old_pub, a->pub, 32) != 0) {
		struct store_batch *b = store_begin(st);
		char nid[9], oid[65], npk[65];
		json_t *ev;

		if (!have_phi) {
			if (RAND_bytes(a->phi_secret,
			    sizeof(a->phi_secret)) != 1) {
				store_end(b, NULL, NULL);
				snprintf(err, errlen, "no randomness");
				goto fail;
			}
			store_put(b, STORE_CF_META, meta_phi,
			    sizeof(meta_phi) - 1, a->phi_secret,
			    sizeof(a->phi_secret));
		}
		hex_encode(a->keyid, 4, nid);
		hex_encode(a->pub, 32, npk);
		ev = json_pack("{s:s, s:{s:s, s:s}, s:s}",
		    "event", "audit.key",
		    "object", "key_id", nid, "public_key", npk,
		    "outcome", !have_pub ? "first-use" : "rotated");
		if (have_pub) {
			hex_encode(old_pub, 32, oid);
			json_object_set_new(json_object_get(ev, "object"),
			    "previous_public_key", json_string(oid));
		}
		if (created)
			json_object_set_new(ev, "reason",
			    json_string("key generated on first start"));
		audit_append(a, b, ev);
		json_decref(ev);
		store_put(b, STORE_CF_META, meta_pub, sizeof(meta_pub) - 1,
		    a->pub, 32);
		if (open_unit(st, b, err, errlen) < 0)
			goto fail;
		log_info("audit-key", "key_id=%s outcome=%s file=%s", nid,
		    !have_pub ? "first-use" : "rotated", log_q(a->key_file));
	}
	store_on_reset(st, on_reset, a);
	return a;
fail:
	audit_close_(a);
	return NULL;
}

void
audit_close_(struct audit *a)
{
	if (a == NULL)
		return;
	EVP_PKEY_free(a->key);
	OPENSSL_cleanse(a->phi_secret, sizeof(a->phi_secret));
	free(a->origin);
	free(a->key_file);
	free(a->ckpt_file);
	free(a->buf.p);
	free(a);
}

/* ---------------------------------------------------------------------- */
/* The audit tree read from a store alone (checks, restores). */

struct rootc {
	uint8_t		 stack[64][AUDIT_HASH];
	uint64_t	 n;
	int		 gap;
};

static int
root_leaf(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct rootc *r = arg;
	uint8_t h[AUDIT_HASH];
	unsigned lvl = 0;

	if (klen != 8 || store_be64_get(key) != r->n) {
		r->gap = 1;
		return 1;
	}
	audit_leaf_hash(val, vlen, h);
	for (uint64_t i = r->n; i & 1; i >>= 1, lvl++)
		audit_node_hash(r->stack[lvl], h, h);
	memcpy(r->stack[lvl], h, AUDIT_HASH);
	r->n++;
	return 0;
}

/* RFC 9162 root from the perfect subtrees of a tree of N leaves,
 * STACK[lvl] holding the one of 2^lvl leaves where N has that bit. */
static void
root_fold(uint8_t stack[64][AUDIT_HASH], uint64_t n, uint8_t out[AUDIT_HASH])
{
	int have = 0;

	if (n == 0) {
		sha256_parts("", 0, NULL, 0, NULL, 0, out);
		return;
	}
	for (unsigned lvl = 0; lvl < 64; lvl++) {
		if (!(n >> lvl & 1))
			continue;
		if (!have)
			memcpy(out, stack[lvl], AUDIT_HASH);
		else
			audit_node_hash(stack[lvl], out, out);
		have = 1;
	}
}

int
audit_store_size(struct store *st, uint64_t *n)
{
	void *k, *v;
	size_t kn, vn;
	int r = store_last(st, STORE_CF_AUDIT_LEAF, "", 0, &k, &kn, &v, &vn);

	*n = 0;
	if (r == 1 && kn == 8)
		*n = store_be64_get(k) + 1;
	free(k);
	free(v);
	return r < 0 || (r == 1 && kn != 8) ? -1 : 0;
}

/* The root of N leaves from the stored frontier nodes: 0, or -1 when one
 * is missing. */
int
audit_store_root(struct store *st, uint64_t n, uint8_t root[AUDIT_HASH])
{
	uint8_t (*fr)[AUDIT_HASH] = calloc(64, AUDIT_HASH);
	uint8_t k[9];
	int r = 0;

	if (fr == NULL)
		return -1;
	for (unsigned lvl = 0; lvl < 64 && r == 0; lvl++) {
		void *v;
		size_t vn;

		if (!(n >> lvl & 1))
			continue;
		k[0] = (uint8_t)lvl;
		store_be64_put(k + 1, (n >> (lvl + 1) << (lvl + 1)) >> lvl);
		if (store_get(st, STORE_CF_AUDIT_NODE, k, 9, &v, &vn) != 1)
			r = -1;
		else if (vn != AUDIT_HASH) {
			free(v);
			r = -1;
		} else {
			memcpy(fr[lvl], v, AUDIT_HASH);
			free(v);
		}
	}
	if (r == 0)
		root_fold(fr, n, root);
	free(fr);
	return r;
}

int
audit_tree_check(struct store *st, uint64_t *size,
    uint8_t root[AUDIT_HASH], char *err, size_t errlen)
{
	struct rootc *rc = calloc(1, sizeof(*rc));
	uint8_t fr[AUDIT_HASH];
	uint64_t last;
	int r = -1;

	if (rc == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (audit_store_size(st, &last) < 0)
		snprintf(err, errlen, "the last audit leaf could not be read: "
		    "%s", store_error(st));
	else if (store_scan(st, STORE_CF_AUDIT_LEAF, "", 0, root_leaf, rc) < 0)
		snprintf(err, errlen, "the audit leaves could not be read");
	else if (rc->gap || rc->n != last)
		snprintf(err, errlen, "audit leaf %llu is missing (the last "
		    "is %llu)", (unsigned long long)rc->n,
		    (unsigned long long)(last ? last - 1 : 0));
	else if (audit_store_root(st, rc->n, fr) < 0)
		snprintf(err, errlen, "a tree node of the audit log (size "
		    "%llu) is missing", (unsigned long long)rc->n);
	else {
		root_fold(rc->stack, rc->n, root);
		if (memcmp(root, fr, AUDIT_HASH) != 0)
			snprintf(err, errlen, "the audit root recomputed from "
			    "the %llu leaves differs from the stored tree's",
			    (unsigned long long)rc->n);
		else {
			*size = rc->n;
			r = 0;
		}
	}
	free(rc);
	return r;
}
