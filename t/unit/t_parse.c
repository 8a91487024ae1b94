/*
 * t_parse.c — the dataset parser from byte tables: each transfer syntax,
 * both length forms, sequences and items of defined and undefined length,
 * encapsulated pixel data, Part 10 meta, sniffing, deflate, and the
 * hostile inputs of TESTING.md (length past the data, depth bombs,
 * undefined length on non-SQ, meta group length mismatch, deflate bomb).
 * Every table is also fed one byte at a time and must give the same
 * events.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dimse/ds_parse.h"
#include "t/unit/tap.h"
#include "t/unit/wire.h"

/* ---- recording events ---- */

struct rec {
	char	 log[8192];
	size_t	 n;
	int	 warnings;
	char	 ts[80];
};

static void
logf_(struct rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
logf_(struct rec *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (r->n < sizeof(r->log))
		r->n += (size_t)vsnprintf(r->log + r->n, sizeof(r->log) - r->n,
		    fmt, ap);
	va_end(ap);
	if (r->n > sizeof(r->log))
		r->n = sizeof(r->log);
}

static int
c_meta(void *a, const struct ds_meta *m)
{
	snprintf(((struct rec *)a)->ts, sizeof(((struct rec *)a)->ts), "%s%s",
	    m->ts_uid, m->ts_guessed ? "?" : "");
	return 0;
}

static int
c_elem(void *a, const struct ds_elem *e, const uint8_t *v, size_t n)
{
	struct rec *r = a;

	logf_(r, "%s%08x %s %zu", e->fragment ? "F" : "E", e->tag,
	    ds_vr_name(e->vr), n);
	if (n > 0 && n <= 16 && ds_vr_text(e->vr))
		logf_(r, " %.*s", (int)n, (const char *)v);
	logf_(r, ";");
	return 0;
}

static int
c_vbeg(void *a, const struct ds_elem *e)
{
	logf_(a, "V%08x %u<", e->tag, e->length);
	return 0;
}

static int
c_vchunk(void *a, const struct ds_elem *e, const uint8_t *p, size_t n)
{
	(void)e;
	(void)p;
	(void)n;
	(void)a;
	return 0;
}

static int
c_vend(void *a, const struct ds_elem *e)
{
	(void)e;
	logf_(a, ">;");
	return 0;
}

static int
c_sb(void *a, const struct ds_elem *e)
{
	logf_(a, "%s%08x{", e->encapsulated ? "P" : "S", e->tag);
	return 0;
}

static int
c_ib(void *a, const struct ds_elem *e)
{
	(void)e;
	logf_(a, "I{");
	return 0;
}

static int
c_end(void *a, const struct ds_elem *e)
{
	(void)e;
	logf_(a, "}");
	return 0;
}

static int
c_warn(void *a, const struct ds_error *w)
{
	(void)w;
	((struct rec *)a)->warnings++;
	return 0;
}

static const struct ds_callbacks cbs = {
	.meta = c_meta, .element = c_elem, .value_begin = c_vbeg,
	.value_chunk = c_vchunk, .value_end = c_vend, .seq_begin = c_sb,
	.item_begin = c_ib, .item_end = c_end, .seq_end = c_end,
	.warning = c_warn,
};

/* Parse w (as a file when ts is NULL) whole and byte by byte; both must
 * agree. Returns the result; r holds the whole-feed events; err gets the
 * error message. */
static enum ds_result
parse(const struct buf *w, const struct ds_ts *ts,
    const struct ds_limits *lim, struct rec *r, char *err, size_t errcap)
{
	struct rec r2;
	struct ds_parser *p;
	enum ds_result a, b;

	memset(r, 0, sizeof(*r));
	memset(&r2, 0, sizeof(r2));
	p = ts ? ds_parser_new_dataset(ts, lim, &cbs, r) :
	    ds_parser_new_file(lim, &cbs, r);
	a = ds_parse_feed(p, w->b, w->n);
	if (a != DS_ERROR)
		a = ds_parse_finish(p);
	snprintf(err, errcap, "%s", a == DS_ERROR ? ds_parse_error(p)->msg : "");
	ds_parser_free(p);
	p = ts ? ds_parser_new_dataset(ts, lim, &cbs, &r2) :
	    ds_parser_new_file(lim, &cbs, &r2);
	b = DS_NEED_MORE;
	for (size_t i = 0; i < w->n && b != DS_ERROR; i++)
		b = ds_parse_feed(p, w->b + i, 1);
	if (b != DS_ERROR)
		b = ds_parse_finish(p);
	ds_parser_free(p);
	if (a != b || (a == DS_DONE && strcmp(r->log, r2.log) != 0)) {
		diag("byte-by-byte differs: %d vs %d", a, b);
		diag("whole: %s", r->log);
		diag("bytes: %s", r2.log);
		return (enum ds_result)99;
	}
	return a;
}

#define T(g, e) DS_TAG(g, e)

static void
t_syntaxes(void)
{
	struct buf w = { .n = 0 };
	struct rec r;
	char err[256];
	const char *want = "E00080060 CS 2 CT;E00100010 PN 8 Doe^John;"
	    "E00280010 US 2;";

	ex(&w, T(8, 0x60), "CS", "CT", 2, 0);
	ex(&w, T(0x10, 0x10), "PN", "Doe^John", 8, 0);
	ex(&w, T(0x28, 0x10), "US", "\x00\x02", 2, 0);
	is_int(parse(&w, &ds_ts_explicit_le, NULL, &r, err, sizeof(err)),
	    DS_DONE, "explicit VR LE parses");
	is_str(r.log, want, "  events");

	w.n = 0;
	im(&w, T(8, 0x60), "CT", 2);
	im(&w, T(0x10, 0x10), "Doe^John", 8);
	im(&w, T(0x28, 0x10), "\x00\x02", 2);
	is_int(parse(&w, &ds_ts_implicit_le, NULL, &r, err, sizeof(err)),
	    DS_DONE, "implicit VR LE parses");
	is_str(r.log, want, "  VRs come from the dictionary");

	w.n = 0;
	ex(&w, T(8, 0x60), "CS", "CT", 2, 1);
	ex(&w, T(0x10, 0x10), "PN", "Doe^John", 8, 1);
	ex(&w, T(0x28, 0x10), "US", "\x02\x00", 2, 1);
	is_int(parse(&w, &ds_ts_explicit_be, NULL, &r, err, sizeof(err)),
	    DS_DONE, "explicit VR big endian parses");
	is_str(r.log, want, "  events");

	w.n = 0;
	im(&w, T(0x0009, 0x1001), "abcd", 4);
	is_int(parse(&w, &ds_ts_implicit_le, NULL, &r, err, sizeof(err)),
	    DS_DONE, "implicit: unknown private tag");
	is_str(r.log, "E00091001 UN 4;", "  is UN");
}

static void
t_sequences(void)
{
	struct buf w = { .n = 0 };
	struct rec r;
	char err[256];

	/* defined SQ (length 8+10+...) with one defined item */
	ex(&w, T(8, 0x1140), "SQ", NULL, 8 + 8 + 6, 0);
	im(&w, DS_TAG_ITEM, NULL, 8 + 6);
	ex(&w, T(8, 0x1150), "UI", "1.2.3\0", 6, 0);
	/* undefined SQ with undefined item, nested undefined SQ, empty */
	ex(&w, T(0x40, 0x275), "SQ", NULL, DS_UNDEFINED_LENGTH, 0);
	im(&w, DS_TAG_ITEM, NULL, DS_UNDEFINED_LENGTH);
	ex(&w, T(0x40, 0x1001), "SH", "RP1 ", 4, 0);
	ex(&w, T(0x40, 0x100), "SQ", NULL, DS_UNDEFINED_LENGTH, 0);
	im(&w, DS_TAG_SEQ_END, NULL, 0);
	im(&w, DS_TAG_ITEM_END, NULL, 0);
	im(&w, DS_TAG_SEQ_END, NULL, 0);
	ex(&w, T(0x10, 0x20), "LO", "ID01", 4, 0);
	is_int(parse(&w, &ds_ts_explicit_le, NULL, &r, err, sizeof(err)),
	    DS_DONE, "sequences of both length forms parse");
	is_str(r.log, "S00081140{I{E00081150 UI 6 1.2.3;}}S00400275{I{"
	    "E00401001 SH 4 RP1 ;S00400100{}}}E00100020 LO 4 ID01;",
	    "  nesting and closing events");

	/* UN of undefined length: implicit VR LE inside (PS3.5 6.2.2) */
	w.n = 0;
	ex(&w, T(0x0009, 0x1010), "UN", NULL, DS_UNDEFINED_LENGTH, 0);
	im(&w, DS_TAG_ITEM, NULL, DS_UNDEFINED_LENGTH);
	im(&w, T(0x10, 0x10), "A^B ", 4);
	im(&w, DS_TAG_ITEM_END, NULL, 0);
	im(&w, DS_TAG_SEQ_END, NULL, 0);
	is_int(parse(&w, &ds_ts_explicit_le, NULL, &r, err, sizeof(err)),
	    DS_DONE, "UN of undefined length parses");
	is_str(r.log, "S00091010{I{E00100010 PN 4 A^B ;}}",
	    "  its content read as implicit VR");
}

static void
t_pixels(void)
{
	struct buf w = { .n = 0 };
	struct ds_limits lim;
	struct rec r;
	char err[256], big[100];

	ex(&w, DS_TAG_PIXEL_DATA, "OB", NULL, DS_UNDEFINED_LENGTH, 0);
	im(&w, DS_TAG_ITEM, NULL, 0);
	im(&w, DS_TAG_ITEM, "\xff\xd8\xff\xd9", 4);
	im(&w, DS_TAG_SEQ_END, NULL, 0);
	is_int(parse(&w, &ds_ts_explicit_le, NULL, &r, err, sizeof(err)),
	    DS_DONE, "encapsulated pixel data parses");
	is_str(r.log, "P7fe00010{Ffffee000 OB 0;Ffffee000 OB 4;}",
	    "  BOT and fragment as fragments");

	ds_limits_default(&lim);
	lim.chunk_over = 16;
	memset(big, 'x', sizeof(big));
	w.n = 0;
	ex(&w, DS_TAG_PIXEL_DATA, "OW", big, 100, 0);
	is_int(parse(&w, &ds_ts_explicit_le, &lim, &r, err, sizeof(err)),
	    DS_DONE, "a value over chunk_over streams");
	is_str(r.log, "V7fe00010 100<>;", "  as begin/chunks/end");
}

/* Part 10 framing: preamble + DICM + meta group (explicit LE). */
static void
meta(struct buf *w, int preamble, const char *ts, int bad_glen)
{
	struct buf m = { .n = 0 };
	size_t tl = strlen(ts) + (strlen(ts) & 1);

	if (preamble) {
		memset(w->b + w->n, 0, 128);
		w->n += 128;
		put(w, "DICM", 4);
	}
	ex(&m, T(2, 1), "OB", "\x00\x01", 2, 0);
	ex(&m, T(2, 0x10), "UI", NULL, (uint32_t)tl, 0);
	put(&m, ts, strlen(ts));
	if (strlen(ts) & 1)
		put(&m, "", 1);
	ex(w, T(2, 0), "UL", NULL, 4, 0);
	u32(w, (uint32_t)m.n + (bad_glen ? 2 : 0), 0);
	put(w, m.b, m.n);
}

static void
t_files(void)
{
	struct buf w = { .n = 0 };
	struct rec r;
	char err[256];

	meta(&w, 1, "1.2.840.10008.1.2", 0);
	im(&w, T(0x10, 0x20), "ID01", 4);
	is_int(parse(&w, NULL, NULL, &r, err, sizeof(err)), DS_DONE,
	    "Part 10 file with preamble");
	is_str(r.ts, "1.2.840.10008.1.2", "  syntax from the meta group");
	is_str(r.log, "E00020000 UL 4;E00020001 OB 2;E00020010 UI 18;"
	    "E00100020 LO 4 ID01;", "  meta then dataset");

	w.n = 0;
	meta(&w, 0, "1.2.840.10008.1.2.1", 0);
	ex(&w, T(0x10, 0x20), "LO", "ID01", 4, 0);
	is_int(parse(&w, NULL, NULL, &r, err, sizeof(err)), DS_DONE,
	    "meta group without preamble");
	is_str(r.ts, "1.2.840.10008.1.2.1", "  explicit LE from meta");

	w.n = 0;
	ex(&w, T(8, 0x60), "CS", "MR", 2, 0);
	is_int(parse(&w, NULL, NULL, &r, err, sizeof(err)), DS_DONE,
	    "bare explicit dataset");
	is_str(r.ts, "1.2.840.10008.1.2.1?", "  sniffed as explicit LE");
	w.n = 0;
	im(&w, T(8, 0x60), "MR", 2);
	is_int(parse(&w, NULL, NULL, &r, err, sizeof(err)), DS_DONE,
	    "bare implicit dataset");
	is_str(r.ts, "1.2.840.10008.1.2?", "  sniffed as implicit LE");
	is_str(r.log, "E00080060 CS 2 MR;", "  with dictionary VRs");

	/* regression (fuzz_dataset): a meta group without (0002,0010),
	 * then a big-endian dataset; the syntax is guessed from the first
	 * header, which byte-by-byte feeding (parse's second run) must wait
	 * for whole: it was guessed from 2 bytes, as implicit LE */
	w.n = 0;
	memset(w.b, 0, 128);
	w.n = 128;
	put(&w, "DICM", 4);
	ex(&w, T(2, 1), "OB", "\x00\x01", 2, 0);
	ex(&w, T(8, 0x60), "CS", "OT", 2, 1);
	ex(&w, T(0x28, 0x10), "US", "\x00\x02", 2, 1);
	is_int(parse(&w, NULL, NULL, &r, err, sizeof(err)), DS_DONE,
	    "meta group without a transfer syntax, big-endian dataset: the "
	    "same whole and byte by byte");
	is_str(r.ts, "1.2.840.10008.1.2.2?", "  guessed as explicit BE");

	w.n = 0;
	meta(&w, 1, "1.2.840.10008.1.2", 1);
	is_int(parse(&w, NULL, NULL, &r, err, sizeof(err)), DS_ERROR,
	    "meta group length that disagrees");
	ok(strstr(err, "file meta group length (0002,0000) says") != NULL,
	    "  named: %s", err);

	w.n = 0;
	meta(&w, 1, "1.2.3.4.5.6", 0);
	is_int(parse(&w, NULL, NULL, &r, err, sizeof(err)), DS_ERROR,
	    "unknown transfer syntax");
	is_str(err, "unknown transfer syntax \"1.2.3.4.5.6\"", "  named");

	w.n = 0;
	is_int(parse(&w, NULL, NULL, &r, err, sizeof(err)), DS_ERROR,
	    "empty file");
}

static size_t
deflate_raw(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
	z_stream z;

	memset(&z, 0, sizeof(z));
	deflateInit2(&z, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	deflate(&z, Z_FINISH);
	n = cap - z.avail_out;
	deflateEnd(&z);
	return n;
}

static void
t_deflate(void)
{
	static struct buf w, ds;
	static uint8_t zeros[4 << 20];
	struct ds_limits lim;
	struct rec r;
	char err[256];

	w.n = ds.n = 0;
	ex(&ds, T(8, 0x60), "CS", "SR", 2, 0);
	ex(&ds, T(0x10, 0x20), "LO", "ID01", 4, 0);
	meta(&w, 1, "1.2.840.10008.1.2.1.99", 0);
	w.n += deflate_raw(ds.b, ds.n, w.b + w.n, sizeof(w.b) - w.n);
	is_int(parse(&w, NULL, NULL, &r, err, sizeof(err)), DS_DONE,
	    "deflated dataset parses");
	ok(strstr(r.log, "E00080060 CS 2 SR;E00100020 LO 4 ID01;") != NULL,
	    "  inflated elements");
	{
		/* cut short: what inflates ends between elements (here,
		 * before the first), but deflate's end mark never came */
		size_t whole = w.n, at;
		int cut_ok = 1;

		for (at = whole - 1; at > whole - 4; at--) {
			w.n = at;
			if (parse(&w, NULL, NULL, &r, err, sizeof(err)) !=
			    DS_ERROR || strstr(err, "cut short") == NULL)
				cut_ok = 0;
		}
		ok(cut_ok, "a deflated dataset cut short is refused: %s", err);
		w.n = whole;
	}

	/* bomb: 4 MiB of one OB value compresses to a few KiB */
	w.n = ds.n = 0;
	meta(&w, 1, "1.2.840.10008.1.2.1.99", 0);
	ds_limits_default(&lim);
	lim.max_inflate = 1 << 20;
	{
		uint8_t *raw = malloc(sizeof(zeros) + 12);
		struct buf *h = calloc(1, sizeof(*h));
		size_t n;

		ex(h, T(0x0009, 0x1010), "OB", NULL, sizeof(zeros), 0);
		memcpy(raw, h->b, 12);
		memcpy(raw + 12, zeros, sizeof(zeros));
		n = deflate_raw(raw, sizeof(zeros) + 12, w.b + w.n,
		    sizeof(w.b) - w.n);
		w.n += n;
		free(raw);
		free(h);
	}
	is_int(parse(&w, NULL, &lim, &r, err, sizeof(err)), DS_ERROR,
	    "deflate bomb refused");
	ok(strstr(err, "deflate bomb") != NULL, "  named: %s", err);
}

static void
t_hostile(void)
{
	struct buf w = { .n = 0 };
	struct ds_limits lim;
	struct rec r;
	char err[256];

	ex(&w, T(8, 0x1140), "SQ", NULL, 8 + 8 + 6, 0);
	im(&w, DS_TAG_ITEM, NULL, 8 + 6);
	ex(&w, T(8, 0x1150), "UI", "1.2.3\0", 6, 0);
	w.b[8 + 4 + 8 + 6] = 60;	/* UI length 6 -> 60 */
	is_int(parse(&w, &ds_ts_explicit_le, NULL, &r, err, sizeof(err)),
	    DS_ERROR, "element length past the end of its item");
	ok(strstr(err, "runs past the end of its item") != NULL, "  %s", err);

	w.n = 0;
	ex(&w, T(0x10, 0x10), "PN", "Doe", 3, 0);
	is_int(parse(&w, &ds_ts_explicit_le, NULL, &r, err, sizeof(err)),
	    DS_DONE, "odd length parses");
	is_int(r.warnings, 1, "  with a warning");

	w.n = 0;
	ex(&w, T(0x10, 0x10), "PN", "Doe^John", 8, 0);
	w.n -= 3;
	is_int(parse(&w, &ds_ts_explicit_le, NULL, &r, err, sizeof(err)),
	    DS_ERROR, "data ending inside a value");
	ok(strstr(err, "truncated") != NULL, "  %s", err);

	w.n = 0;
	ex(&w, T(8, 0x60), "CS", NULL, DS_UNDEFINED_LENGTH, 0);
	is_int(parse(&w, &ds_ts_explicit_le, NULL, &r, err, sizeof(err)),
	    DS_ERROR, "0xFFFFFFFF length on CS");
	w.n = 0;
	im(&w, T(8, 0x60), NULL, DS_UNDEFINED_LENGTH);
	is_int(parse(&w, &ds_ts_implicit_le, NULL, &r, err, sizeof(err)),
	    DS_ERROR, "0xFFFFFFFF length on implicit CS");
	ok(strstr(err, "undefined length on (0008,0060) of VR CS") != NULL,
	    "  %s", err);

	w.n = 0;
	ds_limits_default(&lim);
	lim.max_depth = 8;
	for (int i = 0; i < 10000 && w.n + 20 < sizeof(w.b); i++) {
		ex(&w, T(0x40, 0x275), "SQ", NULL, DS_UNDEFINED_LENGTH, 0);
		im(&w, DS_TAG_ITEM, NULL, DS_UNDEFINED_LENGTH);
	}
	is_int(parse(&w, &ds_ts_explicit_le, &lim, &r, err, sizeof(err)),
	    DS_ERROR, "thousands of nested sequences");
	ok(strstr(err, "nested deeper than 8") != NULL, "  %s", err);

	w.n = 0;
	ex(&w, T(8, 0x1140), "SQ", NULL, DS_UNDEFINED_LENGTH, 0);
	ex(&w, T(8, 0x60), "CS", "CT", 2, 0);
	is_int(parse(&w, &ds_ts_explicit_le, NULL, &r, err, sizeof(err)),
	    DS_ERROR, "element directly inside a sequence");

	w.n = 0;
	im(&w, DS_TAG_ITEM_END, NULL, 0);
	is_int(parse(&w, &ds_ts_explicit_le, NULL, &r, err, sizeof(err)),
	    DS_ERROR, "item delimiter at top level");

	w.n = 0;
	ex(&w, T(8, 0x60), "cs", "CT", 2, 0);
	is_int(parse(&w, &ds_ts_explicit_le, NULL, &r, err, sizeof(err)),
	    DS_DONE, "invalid VR bytes: read on with a 2-byte length");
	is_str(r.log, "E00080060 CS 2 CT;", "  with the dictionary's VR");
	is_int(r.warnings, 1, "  and a warning");

	/* a VR to come (two capitals we do not know): reserved bytes and a
	 * 4-byte length, as DCMTK reads it (read as 2 bytes, "ABCD" and
	 * what follows were taken for headers) */
	w.n = 0;
	{
		static const uint8_t zz[] = { 0x09, 0x00, 0x10, 0x10, 'Z', 'Z',
		    0, 0, 4, 0, 0, 0, 'A', 'B', 'C', 'D' };

		memcpy(w.b, zz, sizeof(zz));
		w.n = sizeof(zz);
	}
	ex(&w, T(0x10, 0x20), "LO", "ID12", 4, 0);
	is_int(parse(&w, &ds_ts_explicit_le, NULL, &r, err, sizeof(err)),
	    DS_DONE, "an unknown VR \"ZZ\": read with a 4-byte length: %s",
	    err);
	is_str(r.log, "E00091010 UN 4;E00100020 LO 4 ID12;",
	    "  as UN, and the next element found");
	is_int(r.warnings, 1, "  with a warning");

	w.n = 0;
	im(&w, DS_TAG_ITEM, "ab", 2);
	ex(&w, T(8, 0x60), "CS", "CT", 2, 0);
	is_int(parse(&w, &ds_ts_explicit_le, NULL, &r, err, sizeof(err)),
	    DS_DONE, "a stray defined-length item at top level");
	is_str(r.log, "Efffee000 UN 2;E00080060 CS 2 CT;",
	    "  kept as an opaque value");
	w.n = 0;
	im(&w, DS_TAG_ITEM, NULL, DS_UNDEFINED_LENGTH);
	is_int(parse(&w, &ds_ts_explicit_le, NULL, &r, err, sizeof(err)),
	    DS_ERROR, "an undefined-length item at top level is refused");

	w.n = 0;
	ex(&w, T(8, 0x1140), "SQ", NULL, DS_UNDEFINED_LENGTH, 0);
	im(&w, DS_TAG_ITEM, NULL, DS_UNDEFINED_LENGTH);
	is_int(parse(&w, &ds_ts_explicit_le, NULL, &r, err, sizeof(err)),
	    DS_ERROR, "unclosed sequence at the end");
	ok(strstr(err, "truncated: the data ends inside the item") != NULL,
	    "  %s", err);

	w.n = 0;
	ds_limits_default(&lim);
	lim.max_elements = 3;
	for (int i = 0; i < 4; i++)
		ex(&w, T(8, 0x60 + i), "CS", "CT", 2, 0);
	is_int(parse(&w, &ds_ts_explicit_le, &lim, &r, err, sizeof(err)),
	    DS_ERROR, "element count limit");

	w.n = 0;
	ex(&w, T(8, 0x60), "UT", NULL, 0xfffffff0u, 0);
	is_int(parse(&w, &ds_ts_explicit_le, NULL, &r, err, sizeof(err)),
	    DS_ERROR, "a huge length, truncated");
}

/* Regression: a file handed over in one feed larger than the file meta
 * limit (1 MiB) was refused as "file meta group larger than ...". */
static void
t_big_first_feed(void)
{
	struct buf *w = calloc(1, sizeof(*w));
	size_t big = 3u << 20;
	uint8_t *all = malloc(big + sizeof(w->b));
	struct ds_parser *p;
	enum ds_result r;

	meta(w, 1, "1.2.840.10008.1.2.1", 0);
	ex(w, DS_TAG_PIXEL_DATA, "OB", NULL, (uint32_t)big, 0);
	memcpy(all, w->b, w->n);
	memset(all + w->n, 0x5a, big);
	p = ds_parser_new_file(NULL, NULL, NULL);
	r = ds_parse_feed(p, all, w->n + big);
	if (r != DS_ERROR)
		r = ds_parse_finish(p);
	is_int(r, DS_DONE, "a 3 MiB file fed in one call parses");
	if (r == DS_ERROR)
		diag("%s", ds_parse_error(p)->msg);
	ds_parser_free(p);
	free(all);
	free(w);
}

int
main(void)
{
	t_big_first_feed();
	t_syntaxes();
	t_sequences();
	t_pixels();
	t_files();
	t_deflate();
	t_hostile();
	return done_testing();
}
