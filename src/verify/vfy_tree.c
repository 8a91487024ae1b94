/*
 * vfy_tree.c — SHA-256 and the streaming RFC 9162 tree hash (vfy_tree.h).
 *
 * RFC 9162 2.1.1 defines the root of n > 1 leaves D[0:n] as
 *	MTH(D[0:n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))
 * with k the largest power of two below n. D[0:k] is the perfect subtree
 * of n's highest set bit; recursing into D[k:n] peels off the next bit.
 * So the root is the frontier (one perfect subtree per set bit of n)
 * folded from the smallest subtree up: r = F[lowest]; then for each
 * higher set bit b, r = node(F[b], r).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "src/verify/vfy_tree.h"

#define LEVELS	64

struct vfy_tree {
	uint64_t	n;
	uint8_t		f[LEVELS][VFY_HASH];	/* f[b] valid when bit b of n */
};

/* Fetched once: the verifier is single-threaded. */
static EVP_MD		*md;
static EVP_MD_CTX	*ctx;

void
vfy_sha256(const void *p1, size_t n1, const void *p2, size_t n2,
    const void *p3, size_t n3, uint8_t out[VFY_HASH])
{
	unsigned int ol = VFY_HASH;

	if (md == NULL && (md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		abort();
	if (ctx == NULL && (ctx = EVP_MD_CTX_new()) == NULL)
		abort();
	if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 ||
	    (n1 > 0 && EVP_DigestUpdate(ctx, p1, n1) != 1) ||
	    (n2 > 0 && EVP_DigestUpdate(ctx, p2, n2) != 1) ||
	    (n3 > 0 && EVP_DigestUpdate(ctx, p3, n3) != 1) ||
	    EVP_DigestFinal_ex(ctx, out, &ol) != 1 || ol != VFY_HASH)
		abort();
}

void
vfy_sha256_done(void)
{
	EVP_MD_CTX_free(ctx);
	EVP_MD_free(md);
	ctx = NULL;
	md = NULL;
}

void
vfy_leaf_hash(const void *leaf, size_t n, uint8_t out[VFY_HASH])
{
	static const uint8_t zero = 0x00;

	vfy_sha256(&zero, 1, leaf, n, NULL, 0, out);
}

void
vfy_node_hash(const uint8_t l[VFY_HASH], const uint8_t r[VFY_HASH],
    uint8_t out[VFY_HASH])
{
	static const uint8_t one = 0x01;

	vfy_sha256(&one, 1, l, VFY_HASH, r, VFY_HASH, out);
}

void
vfy_hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

struct vfy_tree *
vfy_tree_new(void)
{
	struct vfy_tree *t = calloc(1, sizeof(*t));

	if (t == NULL)
		abort();
	return t;
}

void
vfy_tree_free_(struct vfy_tree *t)
{
	free(t);
}

/*
 * vfy_tree_add: the new leaf merges with the perfect subtrees of n's
 * trailing one bits, as a binary counter carries (bits 0..b-1 of n set,
 * bit b clear: the merged subtree becomes f[b]).
 */
void
vfy_tree_add(struct vfy_tree *t, const uint8_t h[VFY_HASH])
{
	uint8_t cur[VFY_HASH];
	unsigned b = 0;

	if (t->n == UINT64_MAX)
		abort();		/* 2^64 leaves: unreachable */
	memcpy(cur, h, VFY_HASH);
	while (t->n >> b & 1) {
		vfy_node_hash(t->f[b], cur, cur);
		b++;
	}
	memcpy(t->f[b], cur, VFY_HASH);
	t->n++;
}

uint64_t
vfy_tree_size(const struct vfy_tree *t)
{
	return t->n;
}

void
vfy_tree_root(const struct vfy_tree *t, uint8_t out[VFY_HASH])
{
	unsigned b;
	int have = 0;

	if (t->n == 0) {
		vfy_sha256(NULL, 0, NULL, 0, NULL, 0, out);
		return;
	}
	for (b = 0; b < LEVELS; b++) {
		if (!(t->n >> b & 1))
			continue;
		if (!have)
			memcpy(out, t->f[b], VFY_HASH);
		else
			vfy_node_hash(t->f[b], out, out);
		have = 1;
	}
}
