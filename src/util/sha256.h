/*
 * sha256.h — SHA-256 (FIPS 180-4) with two hashes computed at once.
 *
 * vnamig hashes most of each received instance twice: the whole dataset
 * (the source hash) and, inside it, the Pixel Data value (the pixel
 * digest). On x86-64 CPUs with the SHA extensions one hash is bound by the
 * latency of the round instruction, not by its throughput: two
 * independent hashes interleaved block by block run at about 1.8 times
 * the speed of one (3.3 against 1.8 GB/s on this project's test machine).
 * sha256_update2 does that; the rest is an ordinary streaming SHA-256.
 *
 * Where the CPU has no SHA extensions (or VNAMIG_SHA256=generic is set in
 * the environment, for tests), blocks go through OpenSSL's SHA-256 block
 * function one hash after the other: the same results, OpenSSL's speed.
 *
 * The context is a plain value (no allocation, no cleanup); its fields
 * are private to sha256.c.
 */
#ifndef VNAMIG_SHA256_H
#define VNAMIG_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t	h[8];
	uint64_t	len;		/* bytes hashed so far */
	uint8_t		buf[64];	/* a partial block */
	unsigned	nbuf;
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *p, size_t n);
/* sha256_final: the digest into out; c must be initialized again before
 * it is used again. */
void sha256_final(struct sha256 *c, uint8_t out[32]);

/*
 * sha256_update2: sha256_update(a, pa, na) and sha256_update(b, pb, nb),
 * their blocks interleaved while both have whole blocks to hash. The two
 * ranges may overlap (the Pixel Data value inside its dataset) or be the
 * same; a and b must be different contexts.
 */
void sha256_update2(struct sha256 *a, const void *pa, size_t na,
    struct sha256 *b, const void *pb, size_t nb);

/* sha256: the digest of p[0..n) in one call. */
void sha256(const void *p, size_t n, uint8_t out[32]);

/* sha256_impl: "x86-sha-2way" or "openssl", for logs and benchmarks. */
const char *sha256_impl(void);

#endif
