/*
 * fuzz_charset.c — libFuzzer harness for Specific Character Set decoding
 * (ds_charset.c). Input: byte 0 picks a (0008,0005) term list from the
 * table below, or, past its end, takes the term list from the input
 * (byte 1 is its length); the next byte picks the VR; the rest is the
 * value. The value is decoded into an exactly sized buffer of 3 * len + 1
 * bytes, which must always suffice and give valid UTF-8 without NUL, and
 * into a small one (0-15 bytes), which must give the same output or -1
 * with a prefix of it. Buffers are malloc'ed to size so ASan sees any
 * overrun.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dimse/ds_charset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const lists[] = {
	"", "ISO_IR 6", "ISO_IR 100", "ISO_IR 101", "ISO_IR 109", "ISO_IR 110",
	"ISO_IR 144", "ISO_IR 127", "ISO_IR 126", "ISO_IR 138", "ISO_IR 148",
	"ISO_IR 166", "ISO_IR 13", "ISO_IR 192", "GB18030", "GBK",
	"\\ISO 2022 IR 87", "ISO 2022 IR 13\\ISO 2022 IR 87",
	"\\ISO 2022 IR 87\\ISO 2022 IR 159", "\\ISO 2022 IR 149",
	"ISO 2022 IR 149", "\\ISO 2022 IR 58", "ISO 2022 IR 58",
	"ISO 2022 IR 100\\ISO 2022 IR 126\\ISO 2022 IR 144",
	("ISO 2022 IR 6\\ISO 2022 IR 13\\ISO 2022 IR 87\\ISO 2022 IR 159"
	    "\\ISO 2022 IR 149\\ISO 2022 IR 58\\ISO 2022 IR 166"),
	"ISO_IR 192\\ISO 2022 IR 87", "ISO_IR 999", "iso ir 100",
};
#define NLISTS	(sizeof(lists) / sizeof(lists[0]))

static const enum ds_vr vrs[] = {
	DS_VR_PN, DS_VR_LO, DS_VR_SH, DS_VR_LT, DS_VR_ST, DS_VR_UT, DS_VR_UC,
	DS_VR_CS, DS_VR_UI,
};

/* utf8_ok: s[0..n) is valid UTF-8 without NUL. */
static int
utf8_ok(const uint8_t *s, size_t n)
{
	size_t i = 0, k, need;
	uint32_t cp;

	while (i < n) {
		if (s[i] == 0)
			return 0;
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf)
			need = 1, cp = s[i] & 0x1f;
		else if (s[i] >= 0xe0 && s[i] <= 0xef)
			need = 2, cp = s[i] & 0x0f;
		else if (s[i] >= 0xf0 && s[i] <= 0xf4)
			need = 3, cp = s[i] & 0x07;
		else
			return 0;
		if (n - i <= need)
			return 0;
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

/* count_fffd: the U+FFFD in s[0..n). */
static size_t
count_fffd(const char *s, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i + 3 <= n; i++)
		if (memcmp(s + i, "\xef\xbf\xbd", 3) == 0)
			c++;
	return c;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ds_charset *cs;
	enum ds_vr vr;
	size_t bad, bad2, cap, small;
	char *big, *out;
	int n, m;

	if (size < 2 || size > 8192)
		return 0;
	if (data[0] < NLISTS) {
		cs = ds_cs_new(lists[data[0]], strlen(lists[data[0]]));
		data++, size--;
	} else {
		size_t l = data[1];

		if (size - 2 < l)
			return 0;
		cs = ds_cs_new((const char *)data + 2, l);
		data += 2 + l, size -= 2 + l;
	}
	if (size < 1) {
		ds_cs_free(cs);
		return 0;
	}
	vr = vrs[data[0] % (sizeof(vrs) / sizeof(vrs[0]))];
	small = data[0] >> 4;
	data++, size--;
	(void)ds_cs_error(cs);

	cap = 3 * size + 1;
	if ((big = malloc(cap)) == NULL ||
	    (out = malloc(small > 0 ? small : 1)) == NULL)
		abort();
	n = ds_cs_decode(cs, vr, data, size, big, cap, &bad);
	if (n < 0 || (size_t)n >= cap || big[n] != '\0' ||
	    !utf8_ok((const uint8_t *)big, (size_t)n) ||
	    count_fffd(big, (size_t)n) < bad)
		abort();

	/* the same into out, exactly small bytes (none when 0) */
	m = ds_cs_decode(cs, vr, data, size, out, small, &bad2);
	if (m >= 0 && (m != n || memcmp(out, big, (size_t)n + 1) != 0 ||
	    bad2 != bad))
		abort();
	if (m < 0 && small > 0 && (strlen(out) >= small ||
	    memcmp(out, big, strlen(out)) != 0))
		abort();
	free(out);
	free(big);
	ds_cs_free(cs);
	return 0;
}
