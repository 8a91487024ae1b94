/*
 * vfy_note.c — trusted keys and signed checkpoint notes (vfy_note.h).
 * Parsing is strict: a note that is not exactly in the documented form
 * is refused rather than guessed at, since the verifier's whole point is
 * to notice what was changed.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "src/verify/vfy_note.h"

#define KEYFILE_MAX	(64u << 10)

#define ED25519_PUB	32
#define ED25519_SIG	64

static const char em_dash_sp[] = "\xe2\x80\x94 ";	/* "— " */

struct vfy_key {
	char		*file;
	EVP_PKEY	*pk;
	uint8_t		 pub[ED25519_PUB];
	char		 used[9];	/* id it verified a note as, or "" */
};

struct vfy_keys {
	struct vfy_key	*k;
	size_t		 n;
};

/* Append to the string in BUF (N bytes), cutting what does not fit. */
static void
cat(char *buf, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
cat(char *buf, size_t n, const char *fmt, ...)
{
	size_t have = strnlen(buf, n);
	va_list ap;

	if (have + 1 >= n)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + have, n - have, fmt, ap);
	va_end(ap);
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
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Standard base64 (RFC 4648 section 4), padded and canonical (the unused
 * bits of the last group zero): the bytes decoded into OUT (at most CAP),
 * or -1.
 */
static long
b64_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
	size_t pad, olen, o = 0;

	if (n == 0 || n % 4 != 0)
		return -1;
	pad = s[n - 1] != '=' ? 0 : s[n - 2] != '=' ? 1 : 2;
	olen = n / 4 * 3 - pad;
	if (olen > cap)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		unsigned long bits;

		for (size_t k = 0; k < 4; k++) {
			if (i + 4 == n && k >= 4 - pad)
				v[k] = 0;
			else if ((v[k] = b64val(s[i + k])) < 0)
				return -1;
		}
		if (i + 4 == n && ((pad == 1 && (v[2] & 3) != 0) ||
		    (pad == 2 && (v[1] & 15) != 0)))
			return -1;	/* not canonical */
		bits = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
		    (unsigned long)v[2] << 6 | (unsigned long)v[3];
		out[o++] = (uint8_t)(bits >> 16);
		if (o < olen)
			out[o++] = (uint8_t)(bits >> 8);
		if (o < olen)
			out[o++] = (uint8_t)bits;
	}
	return (long)olen;
}

/* C2SP signed-note Ed25519 key id: SHA-256(name || "\n" || 0x01 || pub). */
static void
key_id(const char *name, const uint8_t pub[ED25519_PUB], uint8_t id[4])
{
	static const uint8_t nl_alg[2] = { '\n', 0x01 };
	uint8_t h[VFY_HASH];

	vfy_sha256(name, strlen(name), nl_alg, 2, pub, ED25519_PUB, h);
	memcpy(id, h, 4);
}

struct vfy_keys *
vfy_keys_new(void)
{
	struct vfy_keys *k = calloc(1, sizeof(*k));

	if (k == NULL)
		abort();
	return k;
}

void
vfy_keys_free_(struct vfy_keys *k)
{
	if (k == NULL)
		return;
	for (size_t i = 0; i < k->n; i++) {
		free(k->k[i].file);
		EVP_PKEY_free(k->k[i].pk);
	}
	free(k->k);
	free(k);
}

/*
 * Every "BEGIN PUBLIC KEY" block of PATH (an export's audit-key.pub holds
 * every key its log was signed with); text around them (comments, an
 * openssl -text_pub dump) is passed over, as a single-key reader would.
 */
int
vfy_keys_load(struct vfy_keys *ks, const char *path, char *err,
    size_t errlen)
{
	static const char beg[] = "-----BEGIN PUBLIC KEY-----",
	    end[] = "-----END PUBLIC KEY-----";
	char buf[KEYFILE_MAX + 1];
	size_t n, loaded = 0;
	int bad = 0;
	const char *p, *e;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "cannot open key %s: %s", path,
		    strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	if (ferror(f) || n > KEYFILE_MAX) {
		snprintf(err, errlen, "cannot read key %s: %s", path,
		    ferror(f) ? strerror(errno) : "larger than 64 KiB");
		fclose(f);
		return -1;
	}
	fclose(f);
	buf[n] = '\0';
	for (p = buf; (p = memmem(p, (size_t)(buf + n - p), beg,
	    sizeof(beg) - 1)) != NULL; p = e) {
		struct vfy_key key = { 0 }, *nk;
		size_t pl = ED25519_PUB;
		BIO *bio;

		if ((e = memmem(p, (size_t)(buf + n - p), end,
		    sizeof(end) - 1)) == NULL)
			e = buf + n;
		else
			e += sizeof(end) - 1;
		if ((bio = BIO_new_mem_buf(p, (int)(e - p))) == NULL)
			abort();
		key.pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
		BIO_free(bio);
		if (key.pk == NULL || EVP_PKEY_get_base_id(key.pk) !=
		    EVP_PKEY_ED25519 || EVP_PKEY_get_raw_public_key(key.pk,
		    key.pub, &pl) != 1 || pl != ED25519_PUB) {
			EVP_PKEY_free(key.pk);
			ERR_clear_error();
			bad = 1;
			break;
		}
		if ((key.file = strdup(path)) == NULL ||
		    (nk = reallocarray(ks->k, ks->n + 1, sizeof(*nk))) == NULL)
			abort();
		ks->k = nk;
		ks->k[ks->n++] = key;
		loaded++;
	}
	if (bad || loaded == 0) {
		snprintf(err, errlen, "key %s is not an Ed25519 public key in "
		    "PEM (-----BEGIN PUBLIC KEY-----)%s", path, loaded > 0 ?
		    ": a block after its first is not one" : "");
		return -1;
	}
	return 0;
}

size_t
vfy_keys_used(const struct vfy_keys *ks, char *ids, size_t n)
{
	size_t used = 0;

	if (n > 0)
		ids[0] = '\0';
	for (size_t i = 0; i < ks->n; i++) {
		if (ks->k[i].used[0] == '\0')
			continue;
		cat(ids, n, "%s%s", used > 0 ? "," : "", ks->k[i].used);
		used++;
	}
	return used;
}

static int
verify_one(EVP_PKEY *pk, const struct vfy_sig *s, const char *msg,
    size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (ctx == NULL)
		abort();
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1 &&
	    EVP_DigestVerify(ctx, s->sig, s->siglen, (const uint8_t *)msg,
	    len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/*
 * As C2SP signed-note asks: a note verifies when a trusted key's
 * signature on it verifies, and none fails; signatures by other keys (or
 * other algorithms) are ignored.
 */
void
vfy_ckpt_verify(struct vfy_ckpt *c, struct vfy_keys *ks)
{
	struct vfy_key *good = NULL;
	char hex[9];
	uint8_t id[4];

	c->state = VFY_SIG_UNTRUSTED;
	c->why[0] = '\0';
	for (size_t i = 0; i < c->nsigs; i++) {
		const struct vfy_sig *s = &c->sigs[i];

		for (size_t k = 0; k < ks->n; k++) {
			key_id(s->name, ks->k[k].pub, id);
			if (memcmp(id, s->keyid, 4) != 0)
				continue;
			/* a trusted key's signature of the wrong length is a
			 * signature that fails, not one to skip */
			if (s->siglen == ED25519_SIG &&
			    verify_one(ks->k[k].pk, s, c->text, c->body)) {
				good = &ks->k[k];
				continue;
			}
			vfy_hex(s->keyid, 4, hex);
			c->state = VFY_SIG_BAD;
			snprintf(c->why, sizeof(c->why), "the signature by key "
			    "id %s (%s, trusted from %s) does not verify", hex,
			    s->name, ks->k[k].file);
			return;
		}
	}
	if (good != NULL) {
		c->state = VFY_SIG_OK;
		for (size_t i = 0; i < c->nsigs; i++) {
			key_id(c->sigs[i].name, good->pub, id);
			if (memcmp(id, c->sigs[i].keyid, 4) == 0)
				break;
		}
		vfy_hex(id, 4, c->keyid);
		if (good->used[0] == '\0')
			memcpy(good->used, c->keyid, sizeof(good->used));
		return;
	}
	cat(c->why, sizeof(c->why), "signed by key id");
	for (size_t i = 0; i < c->nsigs; i++) {
		vfy_hex(c->sigs[i].keyid, 4, hex);
		cat(c->why, sizeof(c->why), "%s %s (%s)", i > 0 ? "," : "",
		    hex, c->sigs[i].name);
	}
	cat(c->why, sizeof(c->why), ", not by a trusted key (trusted, as "
	    "%s:", c->origin);
	for (size_t k = 0; k < ks->n; k++) {
		key_id(c->origin, ks->k[k].pub, id);
		vfy_hex(id, 4, hex);
		cat(c->why, sizeof(c->why), "%s %s from %s", k > 0 ? "," : "",
		    hex, ks->k[k].file);
	}
	cat(c->why, sizeof(c->why), "%s)", ks->n == 0 ? " none" : "");
}

void
vfy_ckpt_clear(struct vfy_ckpt *c)
{
	for (size_t i = 0; i < c->nsigs; i++) {
		free(c->sigs[i].name);
		free(c->sigs[i].sig);
	}
	free(c->sigs);
	free(c->origin);
	free(c->text);
	memset(c, 0, sizeof(*c));
}

/* ---------------------------------------------------------------------- */

/* One "\n"-terminated line of a checkpoint file. */
struct cursor {
	const char	*p;
	size_t		 n, i;
	const char	*line;
	size_t		 len;
};

/* 1 a line, 0 the end, -1 the file ends inside a line. */
static int
next_line(struct cursor *c)
{
	const char *nl;

	if (c->i == c->n)
		return 0;
	if ((nl = memchr(c->p + c->i, '\n', c->n - c->i)) == NULL)
		return -1;
	c->line = c->p + c->i;
	c->len = (size_t)(nl - c->line);
	c->i += c->len + 1;
	return 1;
}

static char *
xstrndup(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* The size line: decimal, no sign, no leading zero. */
static int
parse_size(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || (n > 1 && p[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (p[i] < '0' || p[i] > '9')
			return -1;
		d = (unsigned)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* "— NAME BASE64": one signature line (without its "— "). */
static int
parse_sig(struct vfy_ckpt *c, const char *p, size_t n, char *err,
    size_t errlen)
{
	const char *sp = memchr(p, ' ', n);
	uint8_t raw[4 + 512];
	struct vfy_sig *s;
	long len;

	if (sp == NULL || sp == p || memchr(p, '+', (size_t)(sp - p)) !=
	    NULL) {
		snprintf(err, errlen, "a signature line must be \"— NAME "
		    "SIGNATURE\" (NAME without spaces or '+')");
		return -1;
	}
	len = b64_decode(sp + 1, n - (size_t)(sp + 1 - p), raw, sizeof(raw));
	if (len < 5) {
		snprintf(err, errlen, "the signature is not canonical base64 "
		    "of a key id and a signature");
		return -1;
	}
	if (c->nsigs == VFY_NOTE_SIGS) {
		snprintf(err, errlen, "more than %d signatures",
		    VFY_NOTE_SIGS);
		return -1;
	}
	if ((s = reallocarray(c->sigs, c->nsigs + 1, sizeof(*s))) == NULL)
		abort();
	c->sigs = s;
	s = &c->sigs[c->nsigs++];
	s->name = xstrndup(p, (size_t)(sp - p));
	memcpy(s->keyid, raw, 4);
	s->siglen = (size_t)len - 4;
	if ((s->sig = malloc(s->siglen)) == NULL)
		abort();
	memcpy(s->sig, raw + 4, s->siglen);
	return 0;
}

/* The body: origin, size, root, extension lines (all non-empty). */
static int
parse_body(struct vfy_ckpt *c, struct cursor *cur, char *err,
    size_t errlen)
{
	unsigned nl = 0;
	int r;

	while ((r = next_line(cur)) == 1 && cur->len > 0) {
		const char *l = cur->line;
		size_t n = cur->len;

		if (n >= 4 && memcmp(l, em_dash_sp, 4) == 0) {
			snprintf(err, errlen, "a signature line before the "
			    "blank line that ends the text");
			return -1;
		}
		if (nl == 0)
			c->origin = xstrndup(l, n);
		else if (nl == 1 && parse_size(l, n, &c->size) < 0) {
			snprintf(err, errlen, "line 2 (the size) is not a "
			    "decimal number");
			return -1;
		} else if (nl == 2 && b64_decode(l, n, c->root,
		    sizeof(c->root)) != VFY_HASH) {
			snprintf(err, errlen, "line 3 (the root hash) is not "
			    "canonical base64 of 32 bytes");
			return -1;
		}
		nl++;
	}
	if (r != 1 || nl < 3) {
		snprintf(err, errlen, "%s", r != 1 ? "the file ends before "
		    "the note's signatures" : "fewer than three lines (origin, "
		    "size, root) before the blank line");
		return -1;
	}
	return 0;
}

/* One note starting at cur->i (not at a blank line). */
static int
parse_note(struct vfy_ckpt *c, struct cursor *cur, char *err,
    size_t errlen)
{
	size_t start = cur->i;
	int r;

	if (parse_body(c, cur, err, errlen) < 0)
		return -1;
	c->body = cur->i - 1 - start;	/* up to the blank line */
	while ((r = next_line(cur)) == 1 && cur->len > 0) {
		if (cur->len < 4 || memcmp(cur->line, em_dash_sp, 4) != 0) {
			snprintf(err, errlen, "a line that is not a signature "
			    "(\"— NAME SIGNATURE\") after the blank line");
			return -1;
		}
		if (parse_sig(c, cur->line + 4, cur->len - 4, err,
		    errlen) < 0)
			return -1;
	}
	if (r < 0) {
		snprintf(err, errlen, "the file ends inside a line");
		return -1;
	}
	if (c->nsigs == 0) {
		snprintf(err, errlen, "no signature");
		return -1;
	}
	/* The text ends before the blank line after the signatures. */
	c->len = cur->i - start - (r == 1 ? 1 : 0);
	if (c->len > VFY_NOTE_MAX) {
		snprintf(err, errlen, "longer than %d bytes", VFY_NOTE_MAX);
		return -1;
	}
	c->text = xstrndup(cur->p + start, c->len);
	return 0;
}

static enum vfy_read
slurp(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	struct stat sb;
	FILE *f = fopen(path, "re");
	size_t n;

	*buf = NULL;
	if (f == NULL || fstat(fileno(f), &sb) < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		if (f != NULL)
			fclose(f);
		return VFY_READ_IO;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > VFY_CKPT_FILE_MAX) {
		snprintf(err, errlen, "%s is not a regular file of at most "
		    "%d MiB", path, VFY_CKPT_FILE_MAX >> 20);
		fclose(f);
		return VFY_READ_IO;
	}
	if ((*buf = malloc((size_t)sb.st_size + 1)) == NULL)
		abort();
	n = fread(*buf, 1, (size_t)sb.st_size + 1, f);
	if (ferror(f) || n > (size_t)sb.st_size) {
		snprintf(err, errlen, "cannot read %s: %s", path, ferror(f) ?
		    strerror(errno) : "it grew while being read");
		fclose(f);
		free(*buf);
		*buf = NULL;
		return VFY_READ_IO;
	}
	fclose(f);
	*len = n;
	return VFY_READ_OK;
}

/* Control characters other than "\n" have no place in a note. */
static const char *
find_control(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)p[i] < 0x20 && p[i] != '\n') ||
		    p[i] == 0x7f)
			return p + i;
	return NULL;
}

enum vfy_read
vfy_ckpt_read(const char *path, struct vfy_ckpt **list, size_t *n,
    char *err, size_t errlen)
{
	struct cursor cur = { 0 };
	char *buf, why[256];
	const char *ctl;
	unsigned index = 0;
	size_t len;
	enum vfy_read r;

	if ((r = slurp(path, &buf, &len, err, errlen)) != VFY_READ_OK)
		return r;
	cur.p = buf;
	cur.n = len;
	if ((ctl = find_control(buf, len)) != NULL) {
		snprintf(err, errlen, "%s: byte %zu: control character 0x%02x",
		    path, (size_t)(ctl - buf), (unsigned)(unsigned char)*ctl);
		free(buf);
		return VFY_READ_BAD;
	}
	for (;;) {
		struct vfy_ckpt c = { 0 }, *nl;

		while (cur.i < cur.n && cur.p[cur.i] == '\n')
			cur.i++;
		if (cur.i == cur.n)
			break;
		c.file = path;
		c.index = ++index;
		if (parse_note(&c, &cur, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s: checkpoint %u is malformed: "
			    "%s", path, index, why);
			vfy_ckpt_clear(&c);
			free(buf);
			return VFY_READ_BAD;
		}
		if ((nl = reallocarray(*list, *n + 1, sizeof(*nl))) == NULL)
			abort();
		*list = nl;
		(*list)[(*n)++] = c;
	}
	free(buf);
	return VFY_READ_OK;
}
