/*
 * t_sha256.c — src/util/sha256 against OpenSSL's EVP SHA-256: FIPS 180-4
 * test vectors, every length around the block and padding edges, random
 * splits into updates, and sha256_update2 over separate, overlapping and
 * identical ranges in random pieces. The checks run twice: in this
 * process with the implementation the CPU allows (x86 SHA instructions
 * where present), and in a child with VNAMIG_SHA256=generic (OpenSSL's
 * block function), which reports its failures in its exit status.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "src/util/sha256.h"
#include "t/unit/tap.h"

static uint8_t *data;
#define DATA_LEN (1u << 20)
static unsigned long rnd_state = 12345;

static unsigned
rnd(unsigned n)
{
	rnd_state = rnd_state * 6364136223846793005UL + 1442695040888963407UL;
	return (unsigned)(rnd_state >> 33) % n;
}

static void
ref(const uint8_t *p, size_t n, uint8_t out[32])
{
	unsigned l = 32;

	if (EVP_Digest(p, n, out, &l, EVP_sha256(), NULL) != 1)
		abort();
}

/* 0 when the checks pass, else the number that failed; quiet unless
 * verbose (the child reports only its count). */
static int
check_all(int verbose)
{
	static const struct {
		const char *in, *hex;
	} vec[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	};
	int bad = 0, n;
	uint8_t got[32], want[32], got2[32], want2[32];
	char hex[65];

#define CHECK(cond, ...) do {						\
	if (verbose)							\
		ok((cond), __VA_ARGS__);				\
	if (!(cond))							\
		bad++;							\
} while (0)

	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		sha256(vec[i].in, strlen(vec[i].in), got);
		for (int k = 0; k < 32; k++)
			snprintf(hex + 2 * k, 3, "%02x", got[k]);
		CHECK(strcmp(hex, vec[i].hex) == 0, "FIPS 180-4 vector %zu "
		    "(%zu bytes)", i, strlen(vec[i].in));
	}
	/* every length up to 4 blocks and some beyond, one call each */
	n = 0;
	for (size_t len = 0; len <= 300; len++) {
		sha256(data + 1, len, got);
		ref(data + 1, len, want);
		n += memcmp(got, want, 32) != 0;
	}
	CHECK(n == 0, "lengths 0..300 in one update, unaligned: %d differ", n);
	/* random pieces */
	n = 0;
	for (int t = 0; t < 200; t++) {
		size_t len = rnd(t < 100 ? 1000 : DATA_LEN), off = 0;
		struct sha256 c;

		sha256_init(&c);
		while (off < len) {
			size_t k = rnd(t & 1 ? 200 : 70000);

			if (k > len - off)
				k = len - off;
			sha256_update(&c, data + off, k);
			off += k;
		}
		sha256_final(&c, got);
		ref(data, len, want);
		n += memcmp(got, want, 32) != 0;
	}
	CHECK(n == 0, "200 random lengths in random pieces: %d differ", n);
	/* update2: a the whole, b a range inside it (or the same range, or
	 * another place), fed in random pieces as spool_write does */
	n = 0;
	for (int t = 0; t < 300; t++) {
		size_t len = 1 + rnd(t < 150 ? 3000 : DATA_LEN), off = 0;
		size_t bfrom = rnd((unsigned)len), bto;
		int mode = t % 3;	/* 0 inside, 1 same, 2 elsewhere */
		struct sha256 a, b;

		if (mode == 1)
			bfrom = 0;
		bto = mode == 1 ? len : bfrom + rnd((unsigned)(len - bfrom) + 1);
		sha256_init(&a);
		sha256_init(&b);
		while (off < len) {
			size_t k = 1 + rnd(t & 1 ? 300 : 300000);
			size_t lo, hi;

			if (k > len - off)
				k = len - off;
			lo = off > bfrom ? off : bfrom;
			hi = off + k < bto ? off + k : bto;
			if (mode == 2) {
				/* b: the same count of bytes from the far end */
				size_t bn = hi > lo ? hi - lo : 0;

				sha256_update2(&a, data + off, k, &b,
				    data + DATA_LEN - bto + lo, bn);
			} else if (hi > lo) {
				sha256_update(&a, data + off, lo - off);
				sha256_update2(&a, data + lo, hi - lo, &b,
				    data + lo, hi - lo);
				sha256_update(&a, data + hi, off + k - hi);
			} else
				sha256_update(&a, data + off, k);
			off += k;
		}
		sha256_final(&a, got);
		sha256_final(&b, got2);
		ref(data, len, want);
		ref(mode == 2 ? data + DATA_LEN - bto + bfrom : data + bfrom,
		    bto - bfrom, want2);
		n += memcmp(got, want, 32) != 0 || memcmp(got2, want2, 32) != 0;
	}
	CHECK(n == 0, "update2 over 300 pairs of ranges (inside, the same, "
	    "apart) in random pieces: %d differ", n);
	/* a context reused after final */
	{
		struct sha256 c;

		sha256_init(&c);
		sha256_update(&c, "junk", 4);
		sha256_final(&c, got);
		sha256_init(&c);
		sha256_update(&c, data, 100000);
		sha256_final(&c, got);
		ref(data, 100000, want);
		CHECK(memcmp(got, want, 32) == 0, "a context initialized "
		    "again after final");
	}
#undef CHECK
	return bad;
}

int
main(void)
{
	pid_t pid;
	int st;

	if ((data = malloc(DATA_LEN)) == NULL)
		abort();
	for (size_t i = 0; i < DATA_LEN; i++)
		data[i] = (uint8_t)rnd(256);
	/* the generic path first, in a child, before this process picks */
	fflush(stdout);
	if ((pid = fork()) == 0) {
		setenv("VNAMIG_SHA256", "generic", 1);
		_exit(strcmp(sha256_impl(), "openssl") != 0 ? 100 :
		    check_all(0));
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		st = -1;
	ok(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "VNAMIG_SHA256=generic (OpenSSL's block function): every check "
	    "agrees (child exit status %d)", st == -1 || !WIFEXITED(st) ? -1 :
	    WEXITSTATUS(st));
	diag("implementation here: %s", sha256_impl());
	check_all(1);
	free(data);
	return done_testing();
}
