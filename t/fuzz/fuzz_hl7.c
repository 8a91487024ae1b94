/*
 * fuzz_hl7.c — libFuzzer entry point for the HL7 v2 codec (src/hl7).
 *
 * The input is one message. It is parsed with the default limits and
 * with tight ones, then a fixed set of paths is looked up at several
 * buffer sizes, the header accessors read, and an ACK of each kind built
 * and parsed back. The input's last line is also tried as a path; when
 * it starts with '@' it is only that ("...\r@PID-3#2|OBR-3").
 * Besides crashes and leaks it checks the contract: results are
 * NUL-terminated within cap and valid UTF-8, a value is never truncated,
 * the limits only refuse (what the tight parse takes the default one
 * takes, with the same values), hl7_parse_msh agrees with hl7_parse on
 * the header, errors carry a known code and a text; an ACK starts with
 * MSH and the message's own delimiters, has snprintf's contract, parses
 * back and says what it should (MSA-1, MSA-2 = their MSH-10, our control
 * id, ERR only for AE/AR).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/hl7/hl7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond) do { if (!(cond)) abort(); } while (0)
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static const struct hl7_limits tight = {
	.max_bytes = 4096, .max_segments = 8, .max_fields = 24,
	.max_repeats = 4, .max_components = 8, .max_subcomponents = 4,
};

static const char *const paths[] = {
	"MSH-1", "MSH-2", "MSH-2.2", "MSH-1#2", "MSH-3", "MSH-4", "MSH-9.1",
	"MSH-9.2", "MSH-9.3", "MSH-10", "MSH-12", "MSH-18", "MSH-18#2",
	"PID-3", "PID-3#2.4", "PID-3#2.4.2", "PID-5", "PID-5.2", "MRG-1",
	"OBR-3|OBR-2", "OBR-29.2.1", "ORC-2|ORC-3", "ZDS-1", "IPC-3",
	"NTE-3", "ZZZ-1|PID-3#3|MSH-10", "PID-9999#9999.9999.9999",
	"A00-1", "Z99-1.1.1",
};

/* utf8_ok: s is valid UTF-8 (no overlongs, surrogates, > U+10FFFF). */
static int
utf8_ok(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned c, len, i, min;

	while (*s != 0) {
		c = *s;
		if (c < 0x80) {
			s++;
			continue;
		}
		if (c < 0xc2 || c > 0xf4)
			return 0;
		len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
		c &= len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07;
		for (i = 1; i < len; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			c = c << 6 | (s[i] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return 0;
		s += len;
	}
	return 1;
}

static void
check_err(const struct hl7_err *e)
{
	check(memchr(e->text, '\0', sizeof(e->text)) != NULL);
	check(e->text[0] != '\0');
	check(e->code == 100 || e->code == 101 || e->code == 102 ||
	    e->code == 207);
	check(memchr(e->seg, '\0', sizeof(e->seg)) != NULL);
	check(e->seg[0] == '\0' || strlen(e->seg) == 3);
}

/* lookup: path at several sizes; returns the value in big (or ""). */
static enum hl7_get_result
lookup(const struct hl7_msg *m, const char *path, char *big, size_t bigcap)
{
	static const size_t caps[] = { 1, 2, 4, 16, 64 };
	enum hl7_get_result r, rs;
	char small[64 + 8];
	size_t i, len;

	r = hl7_lookup(m, path, big, bigcap);
	check(r == HL7_FOUND || r == HL7_ABSENT || r == HL7_BADPATH);
	check(memchr(big, '\0', bigcap) != NULL);
	len = strlen(big);
	check(r == HL7_FOUND ? len > 0 && utf8_ok(big) : len == 0);
	for (i = 0; i < NELEM(caps); i++) {
		memset(small, 'x', sizeof(small));
		rs = hl7_lookup(m, path, small, caps[i]);
		check(memchr(small, '\0', caps[i]) != NULL);
		check(small[caps[i]] == 'x');		/* nothing past cap */
		if (r == HL7_FOUND && len < caps[i])
			check(rs == HL7_FOUND && strcmp(small, big) == 0);
		else if (r == HL7_FOUND)
			check(rs == HL7_TOOLONG && small[0] == '\0');
		else
			check(rs == r && small[0] == '\0');
		check((hl7_get(m, path, small, caps[i]) != NULL) ==
		    (rs == HL7_FOUND));
	}
	check(hl7_lookup(m, path, NULL, 0) == (r == HL7_FOUND ? HL7_TOOLONG :
	    r));
	return r;
}

static void
check_header(const char *s)
{
	check(s != NULL && strlen(s) < 256 && utf8_ok(s));
}

/* ack: build an ACK of m, check it and parse it back. */
static void
ack(const struct hl7_msg *m, const char *code, const struct hl7_err *e,
    char *big, size_t bigcap)
{
	static const char ctl[] = "C|1^2~3\\4&5#6$7";
	struct hl7_msg *a;
	char tmp[40], v1[300], v2[300], fs[8], enc[8];
	size_t n, k, h;

	check(hl7_get(m, "MSH-1", fs, sizeof(fs)) != NULL && strlen(fs) == 1);
	check(hl7_get(m, "MSH-2", enc, sizeof(enc)) != NULL &&
	    (strlen(enc) == 4 || strlen(enc) == 5));
	n = hl7_ack(m, code, ctl, "20240101120000", e, big, bigcap);
	check(n > 0 && n < bigcap && strlen(big) == n);
	h = 3 + strlen(fs) + strlen(enc);
	check(n > h && memcmp(big, "MSH", 3) == 0 && memcmp(big + 3, fs,
	    strlen(fs)) == 0 && memcmp(big + 3 + strlen(fs), enc,
	    strlen(enc)) == 0 && big[h] == fs[0]);
	check(big[n - 1] == '\r');
	for (k = 0; k <= sizeof(tmp); k += 7) {
		memset(tmp, 'x', sizeof(tmp));
		check(hl7_ack(m, code, ctl, "20240101120000", e, tmp, k) == n);
		if (k > 0) {
			check(strlen(tmp) == (n < k ? n : k - 1));
			check(memcmp(tmp, big, strlen(tmp)) == 0);
		}
		if (k < sizeof(tmp))
			check(tmp[k] == 'x');
	}
	a = hl7_parse(big, n, NULL, NULL);
	check(a != NULL);
	check(strcmp(hl7_msg_type(a), "ACK") == 0);
	check(strcmp(hl7_trigger(a), hl7_trigger(m)) == 0);
	check(strcmp(hl7_control_id(a), ctl) == 0);
	check(hl7_segment_count(a) == (code[1] == 'A' ? 2u : 3u));
	check(strcmp(hl7_segment_name(a, 1), "MSA") == 0);
	check(strcmp(hl7_get(a, "MSA-1", v1, sizeof(v1)), code) == 0);
	(void)hl7_lookup(a, "MSA-2", v1, sizeof(v1));
	(void)hl7_lookup(m, "MSH-10", v2, sizeof(v2));
	check(strcmp(v1, v2) == 0);
	(void)hl7_lookup(a, "MSH-5", v1, sizeof(v1));
	(void)hl7_lookup(m, "MSH-3", v2, sizeof(v2));
	check(strcmp(v1, v2) == 0);
	check(strcmp(hl7_charset(a), hl7_charset(m)) == 0);
	hl7_free(a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct hl7_err errs[] = {
		{ 101, "PID", 2, 3, "PID-3 \xc3\xa9 | ^ ~ \\ & # $ \r\n\x01"
		  "\xff end" },
		{ 207, "", 0, 0, "" },
		{ 100, "ZDS", 9, 0, "x" },
	};
	static const char *const codes[] = { "AA", "AE", "AR" };
	const char *buf = (const char *)data;
	struct hl7_msg *m, *t, *h;
	struct hl7_err e, et;
	enum hl7_get_result r;
	char *big, *tv, path[300], perr[128];
	size_t bigcap = 3 * size + 1024, i, n, k;

	/* the last line is a path too; "@PATH" is only a path */
	for (k = size; k > 0 && data[k - 1] != '\r' && data[k - 1] != '\n';
	    k--)
		;
	n = size - k < sizeof(path) - 1 ? size - k : sizeof(path) - 1;
	memcpy(path, buf + k, n);
	path[n] = '\0';
	if (k > 0 && k < size && data[k] == '@') {
		memmove(path, path + 1, n);
		size = k;
	}

	m = hl7_parse(buf, size, NULL, &e);
	t = hl7_parse(buf, size, &tight, &et);
	h = hl7_parse_msh(buf, size, NULL, NULL);
	if (m == NULL) {
		check_err(&e);
		check(t == NULL);
	} else
		check(h != NULL);
	if (t == NULL)
		check_err(&et);
	big = malloc(bigcap);
	tv = malloc(bigcap);
	check(big != NULL && tv != NULL);

	i = hl7_path_check(path, perr, sizeof(perr)) == 0;
	check(i || perr[0] != '\0');
	if (m != NULL)
		check((lookup(m, path, big, bigcap) != HL7_BADPATH) == i);

	if (m != NULL) {
		for (i = 0; i < NELEM(paths); i++) {
			r = lookup(m, paths[i], big, bigcap);
			check(r != HL7_BADPATH);
			if (t != NULL) {	/* the tight parse agrees */
				check(hl7_lookup(t, paths[i], tv, bigcap) ==
				    r && strcmp(big, tv) == 0);
			}
		}
		check_header(hl7_msg_type(m));
		check_header(hl7_trigger(m));
		check_header(hl7_structure(m));
		check_header(hl7_control_id(m));
		check_header(hl7_sending_app(m));
		check_header(hl7_sending_facility(m));
		check_header(hl7_version(m));
		check_header(hl7_charset(m));
		check(strcmp(hl7_control_id(m), hl7_control_id(h)) == 0);
		check(strcmp(hl7_charset(m), hl7_charset(h)) == 0);
		check(hl7_segment_count(m) >= 1 && hl7_segment_count(h) == 1);
		check(strcmp(hl7_segment_name(m, 0), "MSH") == 0);
		for (i = 0; i < hl7_segment_count(m); i++)
			check(strlen(hl7_segment_name(m, i)) == 3);
		check(hl7_segment_name(m, i) == NULL);
		for (i = 0; i < NELEM(codes); i++) {
			ack(m, codes[i], NULL, big, bigcap);
			ack(m, codes[i], &errs[i], big, bigcap);
			/* the ACK depends on the MSH only */
			n = hl7_ack(m, codes[i], "C", "T", &errs[i], big,
			    bigcap);
			check(hl7_ack(h, codes[i], "C", "T", &errs[i], tv,
			    bigcap) == n && strcmp(big, tv) == 0);
		}
	} else if (h != NULL)	/* refused, but its MSH can be answered */
		ack(h, "AR", &e, big, bigcap);
	hl7_free(m);
	hl7_free(t);
	hl7_free(h);
	check(m == NULL && t == NULL && h == NULL);
	free(big);
	free(tv);
	return 0;
}
