/*
 * fuzz_vfy_note.c — libFuzzer harness for vnamig-verify's checkpoint
 * file parser and signature check (vfy_ckpt_read, vfy_ckpt_verify,
 * src/verify/vfy_note.h). The input is a whole checkpoint file: it is
 * written to a temporary file (the parser reads a path) and every note
 * read is verified against two fixed Ed25519 keys, A and B, embedded
 * below; t/fuzz/gen-vfy-seeds holds their private halves and signs some
 * seeds with them, so that good and bad signatures are both reached.
 *
 * Any bytes must give notes or a clear error, never a crash, hang or
 * leak; and what the parser hands back is checked against the input by
 * code written apart from it (abort() when broken):
 *	- the notes are the input's text in order, separated by nothing but
 *	  "\n" (all of it when the file is accepted);
 *	- each note's body ends at its first blank line and has at least
 *	  the origin, size and root lines; origin and size are those lines;
 *	  root and each signature re-encode (OpenSSL's base64) to exactly
 *	  the text of their line, so only canonical base64 is taken;
 *	- each signature line is "— NAME BASE64" with NAME free of ' ' and
 *	  '+', 1 to 16 of them, the note at most VFY_NOTE_MAX bytes;
 *	- the verdict is what C2SP signed-note asks, recomputed here with
 *	  OpenSSL over the input's bytes: BAD when a signature under a
 *	  trusted key id fails, OK when one verifies and none fails,
 *	  UNTRUSTED otherwise.
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "src/verify/vfy_note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_vfy_note: %s:%d: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

/* Test keys only; gen-vfy-seeds has the private halves. */
static const char *const key_pem[] = {
	"-----BEGIN PUBLIC KEY-----\n"		/* A */
	"MCowBQYDK2VwAyEAJR5+TK8+0GsjqNRIkm6BHMBKIgti6rcKrj9BidqogtE=\n"
	"-----END PUBLIC KEY-----\n",
	"-----BEGIN PUBLIC KEY-----\n"		/* B */
	"MCowBQYDK2VwAyEArpPoOypxdGSYAaXP6wmCHDxZnZIscVv5scMd/f7k/VE=\n"
	"-----END PUBLIC KEY-----\n",
};
#define NKEYS	(sizeof(key_pem) / sizeof(key_pem[0]))

static const char dash[] = "\xe2\x80\x94 ";	/* "— " */

static struct vfy_keys	*keys;
static EVP_PKEY		*pk[NKEYS];
static uint8_t		 pub[NKEYS][32];
static char		 path[4096];	/* the input as a file */
static char		 named[4096];	/* its name, to unlink at exit */
static int		 fd = -1;

static void
cleanup(void)
{
	if (named[0] != '\0')
		unlink(named);
	vfy_keys_free(keys);
	for (size_t k = 0; k < NKEYS; k++)
		EVP_PKEY_free(pk[k]);
	vfy_sha256_done();
}

/* Replace the temporary file's content with P (N bytes). */
static void
put_file(const void *p, size_t n)
{
	check(n == 0 || pwrite(fd, p, n, 0) == (ssize_t)n);
	check(ftruncate(fd, (off_t)n) == 0);
}

/*
 * One temporary file for the whole run: a memfd read through
 * /proc/self/fd where there is one (no disk, nothing left behind after
 * a crash), else a file in $TMPDIR unlinked at exit.
 */
static void
open_file(void)
{
	const char *tmp = getenv("TMPDIR");

#ifdef MFD_CLOEXEC
	if ((fd = memfd_create("fuzz_vfy_note", MFD_CLOEXEC)) >= 0) {
		struct stat sb;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
			return;
		close(fd);
	}
#endif
	snprintf(named, sizeof(named), "%s/fuzz_vfy_note.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	check((fd = mkstemp(named)) >= 0);
	snprintf(path, sizeof(path), "%s", named);
}

static void
init(void)
{
	char err[512];
	size_t pl;

	open_file();
	atexit(cleanup);

	keys = vfy_keys_new();
	for (size_t k = 0; k < NKEYS; k++) {
		BIO *bio = BIO_new_mem_buf(key_pem[k], -1);

		check(bio != NULL);
		pk[k] = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
		BIO_free(bio);
		pl = sizeof(pub[k]);
		check(pk[k] != NULL && EVP_PKEY_get_raw_public_key(pk[k],
		    pub[k], &pl) == 1 && pl == sizeof(pub[k]));
		put_file(key_pem[k], strlen(key_pem[k]));
		if (vfy_keys_load(keys, path, err, sizeof(err)) < 0) {
			fprintf(stderr, "fuzz_vfy_note: %s\n", err);
			abort();
		}
	}
}

/* Does line L (N bytes) read exactly as the base64 of P (LEN bytes)? */
static int
is_b64_of(const char *l, size_t n, const uint8_t *p, size_t len)
{
	unsigned char enc[4 * (4 + 512) / 3 + 8];
	int el;

	if (len > 4 + 512)
		return 0;
	el = EVP_EncodeBlock(enc, p, (int)len);
	return el >= 0 && (size_t)el == n && memcmp(enc, l, n) == 0;
}

/* The verdict C2SP signed-note asks for, over the input's bytes. */
static enum vfy_sig_state
want_state(const struct vfy_ckpt *c, const char *text)
{
	int good = 0;

	for (size_t i = 0; i < c->nsigs; i++) {
		const struct vfy_sig *s = &c->sigs[i];

		for (size_t k = 0; k < NKEYS; k++) {
			static const uint8_t nl_alg[2] = { '\n', 0x01 };
			EVP_MD_CTX *ctx = EVP_MD_CTX_new();
			uint8_t h[32];
			unsigned hl = sizeof(h);
			int ok;

			/* key id: SHA-256(name || "\n" || 0x01 || pub) */
			check(ctx != NULL);
			check(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
			    EVP_DigestUpdate(ctx, s->name, strlen(s->name)) ==
			    1 && EVP_DigestUpdate(ctx, nl_alg, 2) == 1 &&
			    EVP_DigestUpdate(ctx, pub[k], 32) == 1 &&
			    EVP_DigestFinal_ex(ctx, h, &hl) == 1);
			if (memcmp(h, s->keyid, 4) != 0) {
				EVP_MD_CTX_free(ctx);
				continue;
			}
			check(EVP_MD_CTX_reset(ctx) == 1);
			/* a trusted key's signature of another length fails */
			ok = s->siglen == 64 &&
			    EVP_DigestVerifyInit(ctx, NULL, NULL, NULL,
			    pk[k]) == 1 && EVP_DigestVerify(ctx, s->sig, 64,
			    (const uint8_t *)text, c->body) == 1;
			EVP_MD_CTX_free(ctx);
			if (!ok)
				return VFY_SIG_BAD;
			good = 1;
		}
	}
	return good ? VFY_SIG_OK : VFY_SIG_UNTRUSTED;
}

/* Note C, found in the input at TEXT. */
static void
check_note(const struct vfy_ckpt *c, const char *text)
{
	const char *p = text, *end = text + c->body - 1, *nl;
	size_t line = 0;
	char dec[24];

	check(c->body >= 6 && c->body < c->len && c->len <= VFY_NOTE_MAX);
	check(c->text != NULL && strlen(c->text) == c->len);
	check(c->text[c->len - 1] == '\n');
	check(text[c->body - 1] == '\n' && text[c->body] == '\n');
	check(memmem(text, c->body, "\n\n", 2) == NULL);
	check(c->origin != NULL);
	check(c->nsigs >= 1 && c->nsigs <= VFY_NOTE_SIGS);

	/* The body: origin, size, root, extension lines. */
	for (; p < end; p = nl + 1, line++) {
		size_t n;

		nl = memchr(p, '\n', (size_t)(end - p) + 1);
		n = (size_t)(nl - p);
		check(n > 0);
		check(n < 4 || memcmp(p, dash, 4) != 0);
		if (line == 0)
			check(n == strlen(c->origin) &&
			    memcmp(p, c->origin, n) == 0);
		else if (line == 1)
			check(n == (size_t)snprintf(dec, sizeof(dec), "%"
			    PRIu64, c->size) && memcmp(p, dec, n) == 0);
		else if (line == 2)
			check(is_b64_of(p, n, c->root, sizeof(c->root)));
	}
	check(line >= 3);

	/* The signatures: "— NAME BASE64(keyid || sig)". */
	p = text + c->body + 1;
	for (size_t i = 0; i < c->nsigs; i++, p = nl + 1) {
		const struct vfy_sig *s = &c->sigs[i];
		size_t nn = strlen(s->name);
		uint8_t raw[4 + 512];

		check(p < text + c->len);
		nl = memchr(p, '\n', c->len - (size_t)(p - text));
		check(nl != NULL && (size_t)(nl - p) > 5 + nn);
		check(memcmp(p, dash, 4) == 0);
		check(nn > 0 && strpbrk(s->name, " +") == NULL);
		check(memcmp(p + 4, s->name, nn) == 0 && p[4 + nn] == ' ');
		check(s->siglen >= 1 && s->siglen <= 512);
		memcpy(raw, s->keyid, 4);
		memcpy(raw + 4, s->sig, s->siglen);
		check(is_b64_of(p + 5 + nn, (size_t)(nl - (p + 5 + nn)), raw,
		    4 + s->siglen));
	}
	check(p == text + c->len);
}

static void
check_verdict(struct vfy_ckpt *c, const char *text)
{
	enum vfy_sig_state want = want_state(c, text);

	vfy_ckpt_verify(c, keys);
	check(c->state == want);
	check(memchr(c->why, '\0', sizeof(c->why)) != NULL);
	if (c->state == VFY_SIG_OK) {
		check(c->why[0] == '\0');
		check(strlen(c->keyid) == 8 &&
		    strspn(c->keyid, "0123456789abcdef") == 8);
	} else
		check(c->why[0] != '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct vfy_ckpt *list = NULL;
	char err[1024], ids[64];
	size_t n = 0, at = 0, used;
	enum vfy_read r;

	if (fd < 0)
		init();
	put_file(data, size);
	err[0] = '\0';
	r = vfy_ckpt_read(path, &list, &n, err, sizeof(err));
	check(r == VFY_READ_OK || r == VFY_READ_BAD);
	if (r == VFY_READ_BAD)
		check(strncmp(err, path, strlen(path)) == 0);

	for (size_t i = 0; i < n; i++) {
		struct vfy_ckpt *c = &list[i];

		check(c->index == i + 1 && c->file == path);
		while (at < size && in[at] == '\n')
			at++;
		check(c->len <= size - at && memcmp(in + at, c->text,
		    c->len) == 0);
		check_note(c, in + at);
		check_verdict(c, in + at);
		at += c->len;
	}
	if (r == VFY_READ_OK) {
		while (at < size && in[at] == '\n')
			at++;
		check(at == size);
	}

	used = vfy_keys_used(keys, ids, size % sizeof(ids));
	check(used <= NKEYS);
	used = vfy_keys_used(keys, ids, sizeof(ids));
	check(strlen(ids) == (used == 0 ? 0 : used * 9 - 1));

	for (size_t i = 0; i < n; i++)
		vfy_ckpt_clear(&list[i]);
	free(list);
	return 0;
}
