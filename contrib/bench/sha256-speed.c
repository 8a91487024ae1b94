/*
 * sha256-speed.c — SHA-256 speed in memory (contrib/bench/sha256): one
 * hash with src/util/sha256 and with OpenSSL's EVP, and two hashes at
 * once with sha256_update2 (a dataset and the pixel data inside it, as
 * the spool hashes a received instance) against the same two with EVP one
 * after the other. MiB/s of input hashed (two hashes of N bytes count as
 * 2N), best of RUNS passes over MIB MiB. Usage: sha256-speed [MIB [RUNS]].
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "src/util/sha256.h"

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void
evp(const uint8_t *p, size_t n, uint8_t out[32])
{
	unsigned l = 32;

	if (EVP_Digest(p, n, out, &l, EVP_sha256(), NULL) != 1)
		abort();
}

int
main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 256;
	int runs = argc > 2 ? atoi(argv[2]) : 3;
	size_t n = mib << 20, off = 4096;	/* the "pixel data" offset */
	uint8_t *b = malloc(n), o1[32], o2[32], o3[32], o4[32];
	double best[4] = { 1e9, 1e9, 1e9, 1e9 };

	if (b == NULL || mib == 0 || runs < 1) {
		fprintf(stderr, "usage: sha256-speed [MIB [RUNS]]\n");
		return 2;
	}
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 2654435761u >> 13);
	for (int r = 0; r < runs; r++) {
		struct sha256 a, c;
		double t[5];

		t[0] = now();
		sha256(b, n, o1);
		t[1] = now();
		evp(b, n, o2);
		t[2] = now();
		sha256_init(&a);
		sha256_init(&c);
		sha256_update2(&a, b, n, &c, b + off, n - off);
		sha256_final(&a, o3);
		sha256_final(&c, o4);
		t[3] = now();
		evp(b, n, o2);
		evp(b + off, n - off, o1);
		t[4] = now();
		if (memcmp(o4, o1, 32) != 0 || memcmp(o3, o2, 32) != 0) {
			fprintf(stderr, "sha256-speed: digests differ from "
			    "OpenSSL's\n");
			return 1;
		}
		for (int k = 0; k < 4; k++)
			if (t[k + 1] - t[k] < best[k])
				best[k] = t[k + 1] - t[k];
	}
	printf("implementation %s\n", sha256_impl());
	printf("one %.0f %.0f\n", (double)mib / best[0], (double)mib / best[1]);
	printf("two %.0f %.0f\n", (double)(2 * mib) / best[2],
	    (double)(2 * mib) / best[3]);
	free(b);
	return 0;
}
