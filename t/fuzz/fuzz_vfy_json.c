/*
 * fuzz_vfy_json.c — libFuzzer harness for vnamig-verify's strict JSON
 * checker (vfy_json_leaf, src/verify/vfy_json.h). The input is one leaf
 * line. Any bytes must be accepted or refused with an error that names a
 * byte of the line, never crash or read past the line; and what the
 * checker promises is checked (abort() when broken):
 *	- the result and LEAF do not depend on the size of ERR, and a short
 *	  ERR holds a prefix of the full message;
 *	- an accepted line is one object: its first and last bytes other
 *	  than whitespace are '{' and '}', and cut before that '}' it is
 *	  refused;
 *	- seq_ok implies has_seq, and the decimal of seq is written in the
 *	  line as a whole number; prev_ok implies has_prev, prev is at most
 *	  64 bytes of valid UTF-8, and empty when not prev_ok.
 * The checker reads exactly N bytes: the input is copied to a buffer of
 * that size so that AddressSanitizer sees a one-byte over-read, also
 * when the corpus is replayed.
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/verify/vfy_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_vfy_json: %s:%d: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

static int
is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Is P (N bytes) valid UTF-8 (RFC 3629)? Written apart from the checker's. */
static int
utf8_ok(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		size_t len;

		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0)
			len = 2, cp = p[i] & 0x1f;
		else if ((p[i] & 0xf0) == 0xe0)
			len = 3, cp = p[i] & 0x0f;
		else if ((p[i] & 0xf8) == 0xf0)
			len = 4, cp = p[i] & 0x07;
		else
			return 0;
		if (n - i < len)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

/* Is the decimal of V in P (N bytes) with no digit on either side? */
static int
has_number(const char *p, size_t n, uint64_t v)
{
	char dec[24];
	size_t dl = (size_t)snprintf(dec, sizeof(dec), "%" PRIu64, v);

	for (size_t i = 0; i + dl <= n; i++) {
		if (memcmp(p + i, dec, dl) != 0)
			continue;
		if (i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9')
			continue;
		if (i + dl < n && p[i + dl] >= '0' && p[i + dl] <= '9')
			continue;
		return 1;
	}
	return 0;
}

/* An error names a byte of the line: "byte K: ..." with K <= N. */
static void
check_err(const char *err, size_t n)
{
	char *end;
	unsigned long long at;

	check(memchr(err, '\0', 256) != NULL);
	check(strncmp(err, "byte ", 5) == 0);
	at = strtoull(err + 5, &end, 10);
	check(end != err + 5 && strncmp(end, ": ", 2) == 0 && end[2] != '\0');
	check(at <= n);
}

static void
check_leaf(const char *p, size_t n, const struct vfy_leaf *l)
{
	size_t a = 0, b = n, plen = strnlen(l->prev, sizeof(l->prev));

	check(l->has_seq == 0 || l->has_seq == 1);
	check(l->has_prev == 0 || l->has_prev == 1);
	check(!l->seq_ok || l->has_seq);
	check(!l->prev_ok || l->has_prev);
	check(plen < sizeof(l->prev));
	check(l->prev_ok || plen == 0);
	check(utf8_ok((const unsigned char *)l->prev, plen));
	if (l->seq_ok)
		check(has_number(p, n, l->seq));

	while (a < n && is_ws((unsigned char)p[a]))
		a++;
	while (b > a && is_ws((unsigned char)p[b - 1]))
		b--;
	check(b - a >= 2 && p[a] == '{' && p[b - 1] == '}');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vfy_leaf leaf, again;
	char err[256], small[32];
	size_t errlen = size % sizeof(small), end;
	char *p = malloc(size > 0 ? size : 1);
	int r, r2;

	if (p == NULL)
		abort();
	if (size > 0)
		memcpy(p, data, size);
	memset(err, 0x55, sizeof(err));
	r = vfy_json_leaf(p, size, &leaf, err, sizeof(err));
	check(r == 0 || r == -1);
	if (r < 0)
		check_err(err, size);
	else
		check_leaf(p, size, &leaf);

	/* The same with a short (or no) error buffer. */
	memset(small, 0x55, sizeof(small));
	r2 = vfy_json_leaf(p, size, &again, errlen > 0 ? small : NULL, errlen);
	check(r2 == r);
	check(memcmp(&leaf, &again, sizeof(leaf)) == 0);
	if (r < 0 && errlen > 0) {
		check(memchr(small, '\0', errlen) != NULL);
		check(strncmp(small, err, strlen(small)) == 0);
		check(strlen(small) == strnlen(err, errlen - 1));
	}

	/* An object cut before its closing brace is no object. */
	if (r == 0) {
		for (end = size; end > 0 && p[end - 1] != '}'; end--)
			;
		check(end > 0);
		r2 = vfy_json_leaf(p, end - 1, &again, err, sizeof(err));
		check(r2 == -1);
		check_err(err, end - 1);
	}
	free(p);
	return 0;
}
