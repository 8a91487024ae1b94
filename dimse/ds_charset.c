/*
 * ds_charset.c — see ds_charset.h.
 *
 * ds_cs_new turns the terms into a mode, the initial G0/G1 designations
 * (from value 1) and the set of character sets an escape sequence may
 * designate; it builds a 128-entry GR table per single-byte set (asking
 * iconv once per byte) and opens one iconv converter per multi-byte
 * encoding. ds_cs_decode then walks the value byte by byte: ESC starts an
 * escape sequence, C0 controls and SPACE are themselves, GL bytes go to
 * G0, GR bytes to G1. Two-byte ISO 2022 sets are converted one character
 * at a time in their EUC form (JIS X 0208 b1 b2 -> EUC-JP 0x80|b1 0x80|b2,
 * JIS X 0212 with the SS3 prefix 0x8F, KS X 1001 and GB 2312 are already
 * in GR, i.e. EUC-KR and EUC-CN). Output goes straight into the caller's
 * buffer; iconv writes there too.
 */
#include "config.h"

#include <errno.h>
#include <iconv.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dimse/ds_charset.h"

#define ESC		0x1b
#define BIT(s)		(1u << (s))
#define MAX_INTER	3	/* intermediate bytes in one escape sequence */

/* The graphic character sets (PS3.3 Tables C.12-2 to C.12-4). */
enum cs_set {
	SET_NONE = 0,	/* nothing designated, or an unknown designation */
	SET_ASCII,	/* ISO-IR 6 */
	SET_ROMAJI,	/* ISO-IR 14, JIS X 0201 Roman */
	SET_LATIN1,	/* ISO-IR 100; first of the single-byte G1 sets */
	SET_LATIN2,	/* ISO-IR 101 */
	SET_LATIN3,	/* ISO-IR 109 */
	SET_LATIN4,	/* ISO-IR 110 */
	SET_CYRILLIC,	/* ISO-IR 144 */
	SET_ARABIC,	/* ISO-IR 127 */
	SET_GREEK,	/* ISO-IR 126 */
	SET_HEBREW,	/* ISO-IR 138 */
	SET_LATIN5,	/* ISO-IR 148 */
	SET_THAI,	/* ISO-IR 166 */
	SET_KATAKANA,	/* ISO-IR 13, JIS X 0201 Katakana; last single-byte */
	SET_JISX0208,	/* ISO-IR 87, in G0 */
	SET_JISX0212,	/* ISO-IR 159, in G0 */
	SET_KSX1001,	/* ISO-IR 149, in G1 */
	SET_GB2312,	/* ISO-IR 58, in G1 */
	SET_COUNT
};
#define SB_FIRST	SET_LATIN1
#define SB_COUNT	(SET_KATAKANA - SET_LATIN1 + 1)
#define IS_SB(s)	((s) >= SB_FIRST && (s) < SB_FIRST + SB_COUNT)

/* The iconv converters to UTF-8 an object may hold. */
enum cs_conv {
	CV_NONE = 0, CV_EUCJP, CV_EUCKR, CV_EUCCN, CV_GB18030, CV_GBK,
	CV_COUNT
};
static const char *const conv_name[CV_COUNT] = {
	NULL, "EUC-JP", "EUC-KR", "EUC-CN", "GB18030", "GBK"
};

enum cs_mode {
	MODE_ISO,	/* ISO 8-bit, with or without code extensions */
	MODE_UTF8,	/* ISO_IR 192 */
	MODE_GB18030,
	MODE_GBK
};

/*
 * One row per set: its escape sequence (the bytes after ESC, PS3.3 Tables
 * C.12-3 and C.12-4), whether it goes to G0 or G1, and how its bytes are
 * converted: a single-byte set through a GR table built from iconv name
 * (bytes prefixed with prefix, EUC-JP SS2 for katakana), a two-byte set
 * through converter conv (prefixed with prefix, EUC-JP SS3 for JIS X 0212).
 */
static const struct set_info {
	const char	*esc;
	uint8_t		 g;
	const char	*iconv;
	uint8_t		 conv;
	uint8_t		 prefix;
} sets[SET_COUNT] = {
	[SET_ASCII] =		{ "(B",  0, NULL,		0, 0 },
	[SET_ROMAJI] =		{ "(J",  0, NULL,		0, 0 },
	[SET_LATIN1] =		{ "-A",  1, "ISO-8859-1",	0, 0 },
	[SET_LATIN2] =		{ "-B",  1, "ISO-8859-2",	0, 0 },
	[SET_LATIN3] =		{ "-C",  1, "ISO-8859-3",	0, 0 },
	[SET_LATIN4] =		{ "-D",  1, "ISO-8859-4",	0, 0 },
	[SET_CYRILLIC] =	{ "-L",  1, "ISO-8859-5",	0, 0 },
	[SET_ARABIC] =		{ "-G",  1, "ISO-8859-6",	0, 0 },
	[SET_GREEK] =		{ "-F",  1, "ISO-8859-7",	0, 0 },
	[SET_HEBREW] =		{ "-H",  1, "ISO-8859-8",	0, 0 },
	[SET_LATIN5] =		{ "-M",  1, "ISO-8859-9",	0, 0 },
	/* TIS 620-2533 plus NBSP at 0xA0, which the 96-set ISO-IR 166 has */
	[SET_THAI] =		{ "-T",  1, "ISO-8859-11",	0, 0 },
	[SET_KATAKANA] =	{ ")I",  1, "EUC-JP",		0, 0x8e },
	[SET_JISX0208] =	{ "$B",  0, NULL,	CV_EUCJP, 0 },
	[SET_JISX0212] =	{ "$(D", 0, NULL,	CV_EUCJP, 0x8f },
	[SET_KSX1001] =		{ "$)C", 1, NULL,	CV_EUCKR, 0 },
	[SET_GB2312] =		{ "$)A", 1, NULL,	CV_EUCCN, 0 },
};

/*
 * The defined terms (PS3.3 Tables C.12-2 to C.12-5): the mode, the G0 and
 * G1 sets designated initially when the term is value 1, and the sets it
 * makes available to escape sequences. A multi-byte G1 set as value 1 is
 * designated from the start (Korean files often carry no escape at all);
 * a two-byte G0 set never is, so that value 1 leaves ASCII in G0.
 */
static const struct term {
	const char	*name;
	uint8_t		 mode;
	uint8_t		 g0, g1;
	uint32_t	 decl;
} terms[] = {
	{ "ISO_IR 6",		MODE_ISO, SET_ASCII, SET_NONE, 0 },
	{ "ISO_IR 100",		MODE_ISO, SET_ASCII, SET_LATIN1, 0 },
	{ "ISO_IR 101",		MODE_ISO, SET_ASCII, SET_LATIN2, 0 },
	{ "ISO_IR 109",		MODE_ISO, SET_ASCII, SET_LATIN3, 0 },
	{ "ISO_IR 110",		MODE_ISO, SET_ASCII, SET_LATIN4, 0 },
	{ "ISO_IR 144",		MODE_ISO, SET_ASCII, SET_CYRILLIC, 0 },
	{ "ISO_IR 127",		MODE_ISO, SET_ASCII, SET_ARABIC, 0 },
	{ "ISO_IR 126",		MODE_ISO, SET_ASCII, SET_GREEK, 0 },
	{ "ISO_IR 138",		MODE_ISO, SET_ASCII, SET_HEBREW, 0 },
	{ "ISO_IR 148",		MODE_ISO, SET_ASCII, SET_LATIN5, 0 },
	{ "ISO_IR 166",		MODE_ISO, SET_ASCII, SET_THAI, 0 },
	{ "ISO_IR 13",		MODE_ISO, SET_ROMAJI, SET_KATAKANA, 0 },
	{ "ISO 2022 IR 6",	MODE_ISO, SET_ASCII, SET_NONE, 0 },
	{ "ISO 2022 IR 100",	MODE_ISO, SET_ASCII, SET_LATIN1, 0 },
	{ "ISO 2022 IR 101",	MODE_ISO, SET_ASCII, SET_LATIN2, 0 },
	{ "ISO 2022 IR 109",	MODE_ISO, SET_ASCII, SET_LATIN3, 0 },
	{ "ISO 2022 IR 110",	MODE_ISO, SET_ASCII, SET_LATIN4, 0 },
	{ "ISO 2022 IR 144",	MODE_ISO, SET_ASCII, SET_CYRILLIC, 0 },
	{ "ISO 2022 IR 127",	MODE_ISO, SET_ASCII, SET_ARABIC, 0 },
	{ "ISO 2022 IR 126",	MODE_ISO, SET_ASCII, SET_GREEK, 0 },
	{ "ISO 2022 IR 138",	MODE_ISO, SET_ASCII, SET_HEBREW, 0 },
	{ "ISO 2022 IR 148",	MODE_ISO, SET_ASCII, SET_LATIN5, 0 },
	{ "ISO 2022 IR 166",	MODE_ISO, SET_ASCII, SET_THAI, 0 },
	{ "ISO 2022 IR 13",	MODE_ISO, SET_ROMAJI, SET_KATAKANA, 0 },
	{ "ISO 2022 IR 87",	MODE_ISO, SET_ASCII, SET_NONE,
	    BIT(SET_JISX0208) },
	{ "ISO 2022 IR 159",	MODE_ISO, SET_ASCII, SET_NONE,
	    BIT(SET_JISX0212) },
	{ "ISO 2022 IR 149",	MODE_ISO, SET_ASCII, SET_KSX1001, 0 },
	{ "ISO 2022 IR 58",	MODE_ISO, SET_ASCII, SET_GB2312, 0 },
	{ "ISO_IR 192",		MODE_UTF8, SET_NONE, SET_NONE, 0 },
	{ "GB18030",		MODE_GB18030, SET_NONE, SET_NONE, 0 },
	{ "GBK",		MODE_GBK, SET_NONE, SET_NONE, 0 },
};

struct ds_charset {
	enum cs_mode	 mode;
	uint8_t		 g0, g1;	/* initial designations */
	uint32_t	 decl;		/* BIT(set): escapes may designate */
	iconv_t		 cd[CV_COUNT];	/* (iconv_t)-1 when not open */
	uint16_t	 gr[SB_COUNT][128];	/* byte 0x80+i; 0 unmapped */
	char		 err[160];
};

/* ---- parsing (0008,0005) ---- */

/* Term names compare ignoring case and the '_' / '-' / ' ' spelling. */
static int
norm(int c)
{
	if (c == '_' || c == '-')
		return ' ';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 'A';
	return c;
}

static const struct term *
find_term(const char *s, size_t n)
{
	size_t i, k;

	for (i = 0; i < sizeof(terms) / sizeof(terms[0]); i++) {
		if (strlen(terms[i].name) != n)
			continue;
		for (k = 0; k < n; k++)
			if (norm((unsigned char)s[k]) != norm(terms[i].name[k]))
				break;
		if (k == n)
			return &terms[i];
	}
	return NULL;
}

/* quote: a printable copy of s[0..n) for an error message. */
static void
quote(char *dst, size_t cap, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && i + 4 < cap; i++)
		dst[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (i < n) {
		memcpy(dst + i, "...", 3);
		i += 3;
	}
	dst[i] = '\0';
}

/* add_term: apply term s[0..n) (already trimmed), value number idx. */
static void
add_term(struct ds_charset *cs, const char *s, size_t n, unsigned idx)
{
	const struct term *t;
	char q[48];

	if (n == 0)
		return;		/* value 1 empty: ISO_IR 6; later ones: nothing */
	quote(q, sizeof(q), s, n);
	if ((t = find_term(s, n)) == NULL) {
		if (cs->err[0] == '\0')
			snprintf(cs->err, sizeof(cs->err), "unknown term '%s'", q);
		return;
	}
	if (idx == 0) {
		cs->mode = t->mode;
		cs->g0 = t->g0;
		cs->g1 = t->g1;
		cs->decl |= BIT(t->g0) | BIT(t->g1) | t->decl;
		return;
	}
	if (cs->mode != MODE_ISO || t->mode != MODE_ISO) {
		/* PS3.5 6.1.2.5.4 d: these allow no code extensions */
		if (cs->err[0] == '\0')
			snprintf(cs->err, sizeof(cs->err), "term '%s' ignored: "
			    "%s allows no code extensions", q,
			    cs->mode != MODE_ISO ? "value 1" : "it");
		return;
	}
	cs->decl |= BIT(t->g0) | BIT(t->g1) | t->decl;
}

/* build_table: fill the GR table of single-byte set s from iconv. */
static int
build_table(struct ds_charset *cs, enum cs_set s)
{
	const struct set_info *si = &sets[s];
	iconv_t cd;
	unsigned b;

	if ((cd = iconv_open("UTF-32LE", si->iconv)) == (iconv_t)-1)
		return -1;
	for (b = 0x80; b <= 0xff; b++) {
		char in[2], out[8], *ip = in, *op = out;
		size_t il = 0, ol = sizeof(out);
		uint32_t cp;

		if (si->prefix)
			in[il++] = (char)si->prefix;
		in[il++] = (char)b;
		if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1 || il != 0 ||
		    op - out != 4) {
			(void)iconv(cd, NULL, NULL, NULL, NULL);
			continue;
		}
		cp = (uint32_t)(uint8_t)out[0] | (uint32_t)(uint8_t)out[1] << 8 |
		    (uint32_t)(uint8_t)out[2] << 16 |
		    (uint32_t)(uint8_t)out[3] << 24;
		if (cp != 0 && cp <= 0xffff)	/* all these sets are BMP */
			cs->gr[s - SB_FIRST][b - 0x80] = (uint16_t)cp;
	}
	iconv_close(cd);
	return 0;
}

/* open_conv: open converter c unless open; -1 when glibc lacks it. */
static int
open_conv(struct ds_charset *cs, enum cs_conv c)
{
	if (cs->cd[c] == (iconv_t)-1)
		cs->cd[c] = iconv_open("UTF-8", conv_name[c]);
	return cs->cd[c] == (iconv_t)-1 ? -1 : 0;
}

/* prepare: tables and converters for what the terms declared; a set
 * glibc cannot convert is withdrawn (its bytes become undecodable). */
static void
prepare(struct ds_charset *cs)
{
	unsigned s;
	int rc;

	if (cs->mode == MODE_GB18030 || cs->mode == MODE_GBK) {
		enum cs_conv c = cs->mode == MODE_GB18030 ? CV_GB18030 : CV_GBK;

		if (open_conv(cs, c) == -1 && cs->err[0] == '\0')
			snprintf(cs->err, sizeof(cs->err),
			    "iconv cannot convert %s", conv_name[c]);
		return;
	}
	for (s = SB_FIRST; s < SET_COUNT; s++) {
		if (!(cs->decl & BIT(s)))
			continue;
		rc = IS_SB(s) ? build_table(cs, (enum cs_set)s) :
		    open_conv(cs, (enum cs_conv)sets[s].conv);
		if (rc == 0)
			continue;
		if (cs->err[0] == '\0')
			snprintf(cs->err, sizeof(cs->err), "iconv cannot convert "
			    "%s", IS_SB(s) ? sets[s].iconv :
			    conv_name[sets[s].conv]);
		cs->decl &= ~BIT(s);
		if (cs->g1 == s)
			cs->g1 = SET_NONE;
	}
}

struct ds_charset *
ds_cs_new(const char *value, size_t len)
{
	struct ds_charset *cs = calloc(1, sizeof(*cs));
	size_t i, j, a, b;
	unsigned c, idx = 0;

	if (cs == NULL)
		abort();
	for (c = 0; c < CV_COUNT; c++)
		cs->cd[c] = (iconv_t)-1;
	cs->mode = MODE_ISO;
	cs->g0 = SET_ASCII;
	cs->g1 = SET_NONE;
	if (value == NULL) {
		value = "";
		len = 0;
	}
	for (i = 0; i <= len; i = j + 1, idx++) {
		for (j = i; j < len && value[j] != '\\'; j++)
			;
		for (a = i; a < j && (value[a] == ' ' || value[a] == '\0'); a++)
			;
		for (b = j; b > a && (value[b - 1] == ' ' ||
		    value[b - 1] == '\0'); b--)
			;
		add_term(cs, value + a, b - a, idx);
	}
	/* ISO-IR 6 can always be designated back into G0 (ESC ( B) */
	cs->decl = (cs->decl | BIT(SET_ASCII)) & ~BIT(SET_NONE);
	prepare(cs);
	return cs;
}

void
ds_cs_free_(struct ds_charset *cs)
{
	unsigned c;

	if (cs == NULL)
		return;
	for (c = 0; c < CV_COUNT; c++)
		if (cs->cd[c] != (iconv_t)-1)
			iconv_close(cs->cd[c]);
	free(cs);
}

const char *
ds_cs_error(const struct ds_charset *cs)
{
	return cs->err[0] ? cs->err : NULL;
}

/* ---- decoding ---- */

struct dec {
	const struct ds_charset *cs;
	char		*p;		/* next output byte */
	size_t		 left;		/* room before the terminating NUL */
	int		 full;		/* something did not fit */
	size_t		 bad;
	uint8_t		 g0, g1;	/* current designations */
	uint8_t		 pn;		/* '^' and '=' reset */
	uint8_t		 multi;		/* '\' (value delimiter) resets */
};

static void
put(struct dec *d, const char *s, size_t n)
{
	if (d->full)
		return;
	if (n > d->left) {
		d->full = 1;
		return;
	}
	memcpy(d->p, s, n);
	d->p += n;
	d->left -= n;
}

static void
put_cp(struct dec *d, uint32_t cp)
{
	char u[3];

	if (cp < 0x80) {
		u[0] = (char)cp;
		put(d, u, 1);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		put(d, u, 2);
	} else {		/* the tables hold BMP code points only */
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		put(d, u, 3);
	}
}

/* put_bad: n undecodable bytes, one U+FFFD each. */
static void
put_bad(struct dec *d, size_t n)
{
	d->bad += n;
	while (n-- > 0)
		put(d, "\xef\xbf\xbd", 3);
}

/*
 * put_iconv: convert the one character src[0..n) (n <= 4) with converter
 * c straight into the output. Returns 0 when written (or when it did not
 * fit: d->full is set), -1 when the converter rejects it or is missing.
 */
static int
put_iconv(struct dec *d, enum cs_conv c, const char *src, size_t n)
{
	iconv_t cd = d->cs->cd[c];
	char buf[4], *ip = buf, *op = d->p;
	size_t il = n, ol = d->left;
	int e;

	if (cd == (iconv_t)-1 || n > sizeof(buf))
		return -1;
	if (d->left == 0) {	/* out may be NULL when cap is 0 */
		d->full = 1;
		return 0;
	}
	memcpy(buf, src, n);
	if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1) {
		e = errno;
		(void)iconv(cd, NULL, NULL, NULL, NULL);
		if (e != E2BIG)
			return -1;
		d->full = 1;
		return 0;
	}
	if (il != 0 || op == d->p)	/* never drop a character silently */
		return -1;
	d->left -= (size_t)(op - d->p);
	d->p = op;
	return 0;
}

static void
reset(struct dec *d)
{
	d->g0 = d->cs->g0;
	d->g1 = d->cs->g1;
}

/* which_g: the G element an escape sequence designates (ISO 2022 6.3):
 * 0, 1, or -1 for G2/G3 and non-designating sequences. */
static int
which_g(const uint8_t *seq, size_t n)
{
	switch (seq[0]) {
	case '(': case ',':
		return 0;
	case ')': case '-':
		return 1;
	case '$':
		if (n == 2 || seq[1] == '(' || seq[1] == ',')
			return 0;
		if (seq[1] == ')' || seq[1] == '-')
			return 1;
		return -1;
	default:
		return -1;
	}
}

/*
 * dec_escape: in[0] is ESC. An escape sequence is ESC, up to MAX_INTER
 * intermediate bytes 0x20-0x2F and a final byte 0x30-0x7E. One that
 * designates a declared set switches G0 or G1; any other is undecodable,
 * and an unknown designation empties the G element it names. Returns the
 * bytes consumed.
 */
static size_t
dec_escape(struct dec *d, const uint8_t *in, size_t n)
{
	size_t k = 1, i;
	int g;

	while (k < n && k <= MAX_INTER && in[k] >= 0x20 && in[k] <= 0x2f)
		k++;
	if (k >= n || in[k] < 0x30 || in[k] > 0x7e) {
		put_bad(d, k);		/* no final byte */
		return k;
	}
	k++;
	if (d->cs->mode == MODE_ISO) {
		for (i = SET_ASCII; i < SET_COUNT; i++) {
			if (strlen(sets[i].esc) != k - 1 ||
			    memcmp(sets[i].esc, in + 1, k - 1) != 0)
				continue;
			if (!(d->cs->decl & BIT(i)))
				break;
			if (sets[i].g == 0)
				d->g0 = (uint8_t)i;
			else
				d->g1 = (uint8_t)i;
			return k;
		}
		if ((g = which_g(in + 1, k - 1)) == 0)
			d->g0 = SET_NONE;
		else if (g == 1)
			d->g1 = SET_NONE;
	}
	put_bad(d, k);
	return k;
}

/* dec_control: a C0 control or DEL; NUL is undecodable (it would end
 * the output string). CR LF FF TAB are reset points. */
static void
dec_control(struct dec *d, uint8_t b)
{
	char c = (char)b;

	if (b == 0) {
		put_bad(d, 1);
		return;
	}
	put(d, &c, 1);
	if (b == '\r' || b == '\n' || b == '\f' || b == '\t')
		reset(d);
}

/*
 * dec_gl: bytes 0x21-0x7E, in G0. ISO-IR 14 is read as ASCII: its 05/12
 * YEN SIGN is the value delimiter like the backslash (PS3.5 6.1.2.5.3),
 * and pydicom and common practice treat 07/14 as the tilde. Returns the
 * bytes consumed.
 */
static size_t
dec_gl(struct dec *d, const uint8_t *in, size_t n)
{
	char c = (char)in[0], euc[3];
	size_t k = 0;

	switch (d->g0) {
	case SET_ASCII:
	case SET_ROMAJI:
		put(d, &c, 1);
		if ((d->multi && c == '\\') || (d->pn && (c == '^' || c == '=')))
			reset(d);
		return 1;
	case SET_JISX0208:
	case SET_JISX0212:
		if (n < 2 || in[1] < 0x21 || in[1] > 0x7e)
			break;
		if (sets[d->g0].prefix)
			euc[k++] = (char)sets[d->g0].prefix;
		euc[k++] = (char)(in[0] | 0x80);
		euc[k++] = (char)(in[1] | 0x80);
		if (put_iconv(d, CV_EUCJP, euc, k) == -1)
			put_bad(d, 2);
		return 2;
	default:
		break;
	}
	put_bad(d, 1);
	return 1;
}

/* dec_gr: bytes 0x80-0xFF, in G1. Returns the bytes consumed. */
static size_t
dec_gr(struct dec *d, const uint8_t *in, size_t n)
{
	uint16_t cp;

	if (IS_SB(d->g1)) {
		if ((cp = d->cs->gr[d->g1 - SB_FIRST][in[0] - 0x80]) != 0)
			put_cp(d, cp);
		else
			put_bad(d, 1);
		return 1;
	}
	if ((d->g1 == SET_KSX1001 || d->g1 == SET_GB2312) && n >= 2 &&
	    in[0] >= 0xa1 && in[0] <= 0xfe && in[1] >= 0xa1 && in[1] <= 0xfe) {
		if (put_iconv(d, (enum cs_conv)sets[d->g1].conv,
		    (const char *)in, 2) == -1)
			put_bad(d, 2);
		return 2;
	}
	put_bad(d, 1);
	return 1;
}

/* dec_iso: ISO 8-bit, with code extensions (PS3.5 6.1.2.5). */
static void
dec_iso(struct dec *d, const uint8_t *in, size_t len)
{
	size_t i = 0;

	reset(d);
	while (i < len && !d->full) {
		if (in[i] == ESC)
			i += dec_escape(d, in + i, len - i);
		else if (in[i] < 0x20 || in[i] == 0x7f)
			dec_control(d, in[i++]);
		else if (in[i] == 0x20)
			put(d, (const char *)in + i++, 1);
		else if (in[i] < 0x80)
			i += dec_gl(d, in + i, len - i);
		else
			i += dec_gr(d, in + i, len - i);
	}
}

/* utf8_len: the length of the valid UTF-8 sequence at s (lead >= 0x80),
 * or 0 (overlong forms, surrogates, > U+10FFFF, truncated). */
static size_t
utf8_len(const uint8_t *s, size_t n)
{
	uint8_t lo = 0x80, hi = 0xbf;
	size_t need, k;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 1;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 2;
		if (s[0] == 0xe0)
			lo = 0xa0;
		else if (s[0] == 0xed)
			hi = 0x9f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 3;
		if (s[0] == 0xf0)
			lo = 0x90;
		else if (s[0] == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n <= need || s[1] < lo || s[1] > hi)
		return 0;
	for (k = 2; k <= need; k++)
		if ((s[k] & 0xc0) != 0x80)
			return 0;
	return need + 1;
}

/* dec_utf8: ISO_IR 192; invalid bytes are undecodable one by one. */
static void
dec_utf8(struct dec *d, const uint8_t *in, size_t len)
{
	size_t i = 0, k;

	while (i < len && !d->full) {
		if (in[i] == ESC)
			i += dec_escape(d, in + i, len - i);
		else if (in[i] < 0x80)
			dec_control(d, in[i++]);	/* or a graphic byte */
		else if ((k = utf8_len(in + i, len - i)) == 0) {
			put_bad(d, 1);
			i++;
		} else {
			put(d, (const char *)in + i, k);
			i += k;
		}
	}
}

/*
 * dec_gb: GB18030 (four set) or GBK. Leads 0x81-0xFE; two-byte trails
 * 0x40-0x7E and 0x80-0xFE; GB18030 four-byte forms lead, 0x30-0x39,
 * 0x81-0xFE, 0x30-0x39. A rejected character costs its lead byte, and its
 * trail too unless that is ASCII (as the WHATWG decoder resynchronizes).
 */
static void
dec_gb(struct dec *d, const uint8_t *in, size_t len, int four)
{
	enum cs_conv c = four ? CV_GB18030 : CV_GBK;
	size_t i = 0;
	uint8_t t;

	while (i < len && !d->full) {
		if (in[i] == ESC) {
			i += dec_escape(d, in + i, len - i);
			continue;
		}
		if (in[i] < 0x80) {
			dec_control(d, in[i++]);
			continue;
		}
		t = i + 1 < len ? in[i + 1] : 0;
		if (in[i] == 0x80 || in[i] == 0xff || i + 1 >= len) {
			put_bad(d, 1);
			i++;
		} else if (four && t >= 0x30 && t <= 0x39) {
			if (i + 3 < len && in[i + 2] >= 0x81 && in[i + 2] <= 0xfe &&
			    in[i + 3] >= 0x30 && in[i + 3] <= 0x39 &&
			    put_iconv(d, c, (const char *)in + i, 4) == 0) {
				i += 4;
			} else {
				put_bad(d, 1);
				i++;
			}
		} else if ((t >= 0x40 && t <= 0x7e) || (t >= 0x80 && t <= 0xfe)) {
			if (put_iconv(d, c, (const char *)in + i, 2) == 0) {
				i += 2;
			} else {
				put_bad(d, t < 0x80 ? 1 : 2);
				i += t < 0x80 ? 1 : 2;
			}
		} else {
			put_bad(d, 1);
			i++;
		}
	}
}

/* dec_ascii: VRs outside PS3.5 6.1.2.3 use ISO_IR 6 only. */
static void
dec_ascii(struct dec *d, const uint8_t *in, size_t len)
{
	size_t i;

	for (i = 0; i < len && !d->full; i++) {
		if (in[i] == 0 || in[i] >= 0x80)
			put_bad(d, 1);
		else
			put(d, (const char *)in + i, 1);
	}
}

int
ds_cs_decode(const struct ds_charset *cs, enum ds_vr vr, const uint8_t *in,
    size_t len, char *out, size_t cap, size_t *bad)
{
	struct dec d;

	memset(&d, 0, sizeof(d));
	d.cs = cs;
	d.p = out;
	d.left = cap > 0 ? cap - 1 : 0;
	if (d.left > INT_MAX)
		d.left = INT_MAX;
	d.pn = vr == DS_VR_PN;
	d.multi = vr == DS_VR_PN || vr == DS_VR_SH || vr == DS_VR_LO ||
	    vr == DS_VR_UC;
	switch (vr) {
	case DS_VR_SH: case DS_VR_LO: case DS_VR_ST: case DS_VR_LT:
	case DS_VR_UC: case DS_VR_UT: case DS_VR_PN:
		if (cs->mode == MODE_UTF8)
			dec_utf8(&d, in, len);
		else if (cs->mode == MODE_ISO)
			dec_iso(&d, in, len);
		else
			dec_gb(&d, in, len, cs->mode == MODE_GB18030);
		break;
	default:
		dec_ascii(&d, in, len);
		break;
	}
	if (bad != NULL)
		*bad = d.bad;
	if (cap == 0)
		return -1;
	*d.p = '\0';
	return d.full ? -1 : (int)(d.p - out);
}
