/*
 * sha256.c — see sha256.h. The block functions: x86 SHA extensions (one
 * stream, and two interleaved), else OpenSSL's. Written from FIPS 180-4
 * and Intel's description of the SHA instructions (sha256rnds2 does two
 * rounds on the state held as ABEF/CDGH; sha256msg1/msg2 extend the
 * message schedule four words at a time).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

/* OpenSSL's SHA256_CTX functions are deprecated in OpenSSL 3 in favour of
 * EVP, which cannot hash blocks into a state we hold. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include "src/util/sha256.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define SHA256_X86 1
#endif

static const uint32_t iv[8] = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

/* OpenSSL's block function, nb blocks into h: SHA256_Update of whole
 * blocks into an empty context goes straight to it, all blocks in one
 * call (SHA256_Transform takes one a call: 11% slower here). */
static void
blocks_openssl(uint32_t h[8], const uint8_t *p, size_t nb)
{
	SHA256_CTX c;

	SHA256_Init(&c);
	for (int i = 0; i < 8; i++)
		c.h[i] = h[i];
	SHA256_Update(&c, p, nb * 64);
	for (int i = 0; i < 8; i++)
		h[i] = c.h[i];
}

#ifdef SHA256_X86
#define SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b,
	0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
	0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7,
	0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
	0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152,
	0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
	0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
	0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
	0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* h[0..7] (A..H) into the instructions' layout: s0 = ABEF, s1 = CDGH. */
SHA_TARGET static void
x86_load(const uint32_t h[8], __m128i *s0, __m128i *s1)
{
	__m128i dcba = _mm_loadu_si128((const __m128i *)(const void *)&h[0]);
	__m128i hgfe = _mm_loadu_si128((const __m128i *)(const void *)&h[4]);
	__m128i cdab = _mm_shuffle_epi32(dcba, 0xb1);
	__m128i efgh = _mm_shuffle_epi32(hgfe, 0x1b);

	*s0 = _mm_alignr_epi8(cdab, efgh, 8);
	*s1 = _mm_blend_epi16(efgh, cdab, 0xf0);
}

SHA_TARGET static void
x86_store(uint32_t h[8], __m128i s0, __m128i s1)
{
	__m128i feba = _mm_shuffle_epi32(s0, 0x1b);
	__m128i dchg = _mm_shuffle_epi32(s1, 0xb1);

	_mm_storeu_si128((__m128i *)(void *)&h[0],
	    _mm_blend_epi16(feba, dchg, 0xf0));
	_mm_storeu_si128((__m128i *)(void *)&h[4],
	    _mm_alignr_epi8(dchg, feba, 8));
}

/*
 * Group i (0..15) of four rounds for one stream, in two halves so two
 * streams' halves can alternate: w[0..3] hold the message words W[4i..]
 * onwards (groups 0-3 load them from the block at p), and each group
 * extends the schedule for the ones after it. i is a constant, so the
 * conditions fold away and w[] lives in registers.
 */
#define SHA_HALF1(i, w, m, s0, s1, p) do {				\
	if ((i) < 4)							\
		w[(i) & 3] = _mm_shuffle_epi8(_mm_loadu_si128(		\
		    (const __m128i *)(const void *)((p) + 16 * (i))),	\
		    bswap);						\
	m = _mm_add_epi32(w[(i) & 3], _mm_loadu_si128(			\
	    (const __m128i *)(const void *)&K[4 * (i)]));		\
	s1 = _mm_sha256rnds2_epu32(s1, s0, m);				\
} while (0)
#define SHA_HALF2(i, w, m, s0, s1) do {					\
	if ((i) >= 3 && (i) <= 14)					\
		w[((i) + 1) & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(	\
		    w[((i) + 1) & 3], _mm_alignr_epi8(w[(i) & 3],	\
		    w[((i) - 1) & 3], 4)), w[(i) & 3]);			\
	m = _mm_shuffle_epi32(m, 0x0e);					\
	s0 = _mm_sha256rnds2_epu32(s0, s1, m);				\
	if ((i) >= 1 && (i) <= 12)					\
		w[((i) - 1) & 3] = _mm_sha256msg1_epu32(w[((i) - 1) & 3],\
		    w[(i) & 3]);					\
} while (0)
#define SHA_GROUPS(G) do {						\
	G(0); G(1); G(2); G(3); G(4); G(5); G(6); G(7);			\
	G(8); G(9); G(10); G(11); G(12); G(13); G(14); G(15);		\
} while (0)

#define SHA_BSWAP const __m128i bswap = _mm_set_epi64x(		\
	0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL)

SHA_TARGET static void
blocks_x86(uint32_t h[8], const uint8_t *p, size_t nb)
{
	SHA_BSWAP;
	__m128i s0, s1, a0, a1, w[4], m;

	x86_load(h, &s0, &s1);
	for (; nb > 0; nb--, p += 64) {
		a0 = s0;
		a1 = s1;
#define G1(i) do {							\
	SHA_HALF1(i, w, m, s0, s1, p);					\
	SHA_HALF2(i, w, m, s0, s1);					\
} while (0)
		SHA_GROUPS(G1);
#undef G1
		s0 = _mm_add_epi32(s0, a0);
		s1 = _mm_add_epi32(s1, a1);
	}
	x86_store(h, s0, s1);
}

/* Two streams in step: each instruction of one waits on the one before
 * it, so the other's fill the gaps. */
SHA_TARGET static void
blocks2_x86(uint32_t ha[8], const uint8_t *pa, uint32_t hb[8],
    const uint8_t *pb, size_t nb)
{
	SHA_BSWAP;
	__m128i as0, as1, aa0, aa1, aw[4], am;
	__m128i bs0, bs1, ba0, ba1, bw[4], bm;

	x86_load(ha, &as0, &as1);
	x86_load(hb, &bs0, &bs1);
	for (; nb > 0; nb--, pa += 64, pb += 64) {
		aa0 = as0;
		aa1 = as1;
		ba0 = bs0;
		ba1 = bs1;
#define G2(i) do {							\
	SHA_HALF1(i, aw, am, as0, as1, pa);				\
	SHA_HALF1(i, bw, bm, bs0, bs1, pb);				\
	SHA_HALF2(i, aw, am, as0, as1);					\
	SHA_HALF2(i, bw, bm, bs0, bs1);					\
} while (0)
		SHA_GROUPS(G2);
#undef G2
		as0 = _mm_add_epi32(as0, aa0);
		as1 = _mm_add_epi32(as1, aa1);
		bs0 = _mm_add_epi32(bs0, ba0);
		bs1 = _mm_add_epi32(bs1, ba1);
	}
	x86_store(ha, as0, as1);
	x86_store(hb, bs0, bs1);
}

static int
x86_has_sha(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d) ||
	    !(c & (1u << 19)) || !(c & (1u << 9)))	/* SSE4.1, SSSE3 */
		return 0;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return 0;
	return (b & (1u << 29)) != 0;			/* SHA */
}
#endif

/* 1: the x86 SHA instructions; 0: OpenSSL; -1: not yet decided. */
static int use_x86 = -1;

static int
x86(void)
{
	int v = __atomic_load_n(&use_x86, __ATOMIC_RELAXED);

	if (v < 0) {
		const char *e = getenv("VNAMIG_SHA256");

		v = 0;
#ifdef SHA256_X86
		if (e == NULL || strcmp(e, "generic") != 0)
			v = x86_has_sha();
#else
		(void)e;
#endif
		__atomic_store_n(&use_x86, v, __ATOMIC_RELAXED);
	}
	return v;
}

static void
blocks(uint32_t h[8], const uint8_t *p, size_t nb)
{
#ifdef SHA256_X86
	if (x86()) {
		blocks_x86(h, p, nb);
		return;
	}
#endif
	blocks_openssl(h, p, nb);
}

const char *
sha256_impl(void)
{
	return x86() ? "x86-sha-2way" : "openssl";
}

void
sha256_init(struct sha256 *c)
{
	memcpy(c->h, iv, sizeof(iv));
	c->len = 0;
	c->nbuf = 0;
}

/* Bytes into c's partial block; hashes it once whole. Leaves pp, np at
 * what is left, which is nothing unless the partial block was completed
 * (or was empty). */
static void
head(struct sha256 *c, const uint8_t **pp, size_t *np)
{
	size_t k;

	c->len += *np;
	if (c->nbuf == 0)
		return;
	k = 64 - c->nbuf;
	if (k > *np)
		k = *np;
	memcpy(c->buf + c->nbuf, *pp, k);
	c->nbuf += (unsigned)k;
	*pp += k;
	*np -= k;
	if (c->nbuf == 64) {
		blocks(c->h, c->buf, 1);
		c->nbuf = 0;
	}
}

/* The rest after head: whole blocks, then a partial one kept. */
static void
tail(struct sha256 *c, const uint8_t *p, size_t n)
{
	if (n >= 64) {
		blocks(c->h, p, n / 64);
		p += n / 64 * 64;
		n %= 64;
	}
	if (n > 0) {
		memcpy(c->buf + c->nbuf, p, n);
		c->nbuf += (unsigned)n;
	}
}

void
sha256_update(struct sha256 *c, const void *pv, size_t n)
{
	const uint8_t *p = pv;

	head(c, &p, &n);
	tail(c, p, n);
}

void
sha256_update2(struct sha256 *a, const void *pav, size_t na,
    struct sha256 *b, const void *pbv, size_t nb)
{
	const uint8_t *pa = pav, *pb = pbv;

	head(a, &pa, &na);
	head(b, &pb, &nb);
#ifdef SHA256_X86
	size_t k = na < nb ? na / 64 : nb / 64;

	if (k > 0 && x86()) {
		blocks2_x86(a->h, pa, b->h, pb, k);
		pa += k * 64;
		na -= k * 64;
		pb += k * 64;
		nb -= k * 64;
	}
#endif
	tail(a, pa, na);
	tail(b, pb, nb);
}

void
sha256_final(struct sha256 *c, uint8_t out[32])
{
	uint64_t bits = c->len * 8;

	c->buf[c->nbuf++] = 0x80;
	if (c->nbuf > 56) {
		memset(c->buf + c->nbuf, 0, 64 - c->nbuf);
		blocks(c->h, c->buf, 1);
		c->nbuf = 0;
	}
	memset(c->buf + c->nbuf, 0, 56 - c->nbuf);
	for (int i = 0; i < 8; i++)
		c->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
	blocks(c->h, c->buf, 1);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(c->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)c->h[i];
	}
	c->nbuf = 0;
}

void
sha256(const void *p, size_t n, uint8_t out[32])
{
	struct sha256 c;

	sha256_init(&c);
	sha256_update(&c, p, n);
	sha256_final(&c, out);
}
