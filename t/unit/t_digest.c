/*
 * t_digest.c — the canonical dataset digest and the pixel digest from
 * byte tables: one dataset written in three syntaxes, with its elements
 * out of order and with defined or undefined lengths, digests the same;
 * any changed value, item order or pixel byte changes it; encapsulated
 * pixel data digests the same with or without an offset table.
 */
#include "config.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "dimse/ds_digest.h"
#include "t/unit/tap.h"
#include "t/unit/wire.h"

#define T(g, e) DS_TAG(g, e)

struct dg {
	uint8_t	 c[32], p[32];
	int	 px;
	int	 ok;
};

static struct dg
digest(const struct buf *w, const struct ds_ts *ts, size_t step)
{
	struct ds_digest *d = ds_digest_new();
	struct ds_parser *p = ds_parser_new_dataset(ts, NULL,
	    ds_digest_callbacks(), d);
	struct dg r;
	enum ds_result res = DS_NEED_MORE;

	memset(&r, 0, sizeof(r));
	for (size_t o = 0; o < w->n && res != DS_ERROR; o += step)
		res = ds_parse_feed(p, w->b + o, w->n - o < step ? w->n - o :
		    step);
	if (res != DS_ERROR && ds_parse_finish(p) == DS_DONE &&
	    ds_digest_final(d, r.c, r.p, &r.px) == 0)
		r.ok = 1;
	ds_parser_free(p);
	ds_digest_free(d);
	return r;
}

/* The test dataset; variant bits change one thing each. */
enum { V_ORDER = 1, V_UNDEF = 2, V_NAME = 4, V_ITEMS = 8, V_PIXEL = 16 };

static void
dataset(struct buf *w, const struct ds_ts *ts, int v)
{
	int be = ts->big_endian, imp = !ts->explicit_vr;
	uint8_t px[8] = { 1, 0, 2, 0, 3, 0, 4, 0 };	/* OW, LE */
	const char *ids[2] = { "1.2.3\0", "1.2.4\0" };
	uint8_t rows[2] = { 0, 2 };

	w->n = 0;
#define E(t, vr, val, len) (imp ? im(w, t, val, len) : ex(w, t, vr, val, len, be))
	if (be) {	/* the same values, big-endian on the wire */
		for (int i = 0; i < 8; i += 2) {
			uint8_t x = px[i];

			px[i] = px[i + 1];
			px[i + 1] = x;
		}
		rows[0] = 2;
		rows[1] = 0;
	}
	if (v & V_PIXEL)
		px[be ? 7 : 6] ^= 1;
	if (!(v & V_ORDER))
		E(T(8, 0x60), "CS", "MR", 2);
	E(T(0x10, 0x10), "PN", (v & V_NAME) ? "Doe^Joan" : "Doe^John", 8);
	E(T(0x10, 0x20), "LO", "ID1 ", 4);	/* one padding space */
	if (v & V_UNDEF) {
		E(T(8, 0x1140), "SQ", NULL, DS_UNDEFINED_LENGTH);
		for (int i = 0; i < 2; i++) {
			tag(w, DS_TAG_ITEM, be);
			u32(w, DS_UNDEFINED_LENGTH, be);
			E(T(8, 0x1155), "UI", ids[(v & V_ITEMS) ? 1 - i : i], 6);
			tag(w, DS_TAG_ITEM_END, be);
			u32(w, 0, be);
		}
		tag(w, DS_TAG_SEQ_END, be);
		u32(w, 0, be);
	} else {
		E(T(8, 0x1140), "SQ", NULL, 2 * (8 + 8 + 6));
		for (int i = 0; i < 2; i++) {
			tag(w, DS_TAG_ITEM, be);
			u32(w, 8 + 6, be);
			E(T(8, 0x1155), "UI", ids[(v & V_ITEMS) ? 1 - i : i], 6);
		}
	}
	E(T(0x28, 0x10), "US", rows, 2);
	if (v & V_ORDER)
		E(T(8, 0x60), "CS", "MR", 2);
	E(DS_TAG_PIXEL_DATA, "OW", px, 8);
	E(T(0x10, 0x00), "UL", "\0\0\0\0", 4);	/* group length: ignored */
#undef E
}

static void
t_encodings(void)
{
	static const struct ds_ts *const ts[] = { &ds_ts_explicit_le,
	    &ds_ts_implicit_le, &ds_ts_explicit_be };
	static const char *const names[] = { "explicit LE", "implicit LE",
	    "explicit BE" };
	struct buf w;
	struct dg base, d;
	uint8_t want[32];
	const uint8_t px[8] = { 1, 0, 2, 0, 3, 0, 4, 0 };

	dataset(&w, ts[0], 0);
	base = digest(&w, ts[0], w.n);
	ok(base.ok && base.px, "the dataset digests, with pixel data");
	SHA256(px, sizeof(px), want);
	ok(memcmp(base.p, want, 32) == 0,
	    "pixel digest = SHA-256 of the little-endian pixel bytes");
	for (int i = 0; i < 3; i++) {
		for (int v = 0; v < 4; v++) {	/* order x length form */
			dataset(&w, ts[i], v);
			d = digest(&w, ts[i], v == 3 ? 1 : w.n);
			ok(d.ok && memcmp(d.c, base.c, 32) == 0 &&
			    memcmp(d.p, base.p, 32) == 0,
			    "%s%s%s: same canonical and pixel digest", names[i],
			    (v & V_ORDER) ? ", out of order" : "",
			    (v & V_UNDEF) ? ", undefined lengths" : "");
		}
		dataset(&w, ts[i], V_NAME);
		d = digest(&w, ts[i], w.n);
		ok(d.ok && memcmp(d.c, base.c, 32) != 0 &&
		    memcmp(d.p, base.p, 32) == 0,
		    "%s: a changed name changes only the canonical digest",
		    names[i]);
		dataset(&w, ts[i], V_ITEMS);
		d = digest(&w, ts[i], w.n);
		ok(d.ok && memcmp(d.c, base.c, 32) != 0,
		    "%s: swapped sequence items change it", names[i]);
		dataset(&w, ts[i], V_PIXEL);
		d = digest(&w, ts[i], w.n);
		ok(d.ok && memcmp(d.c, base.c, 32) != 0 &&
		    memcmp(d.p, base.p, 32) != 0,
		    "%s: one changed pixel bit changes both", names[i]);
	}
}

static void
t_encapsulated(void)
{
	struct buf w;
	struct dg a, b, c;
	uint8_t want[32];

	w.n = 0;
	ex(&w, DS_TAG_PIXEL_DATA, "OB", NULL, DS_UNDEFINED_LENGTH, 0);
	im(&w, DS_TAG_ITEM, NULL, 0);			/* empty BOT */
	im(&w, DS_TAG_ITEM, "\xff\xd8\xaa\xbb", 4);
	im(&w, DS_TAG_ITEM, "\xcc\xff\xd9\x00", 4);
	im(&w, DS_TAG_SEQ_END, NULL, 0);
	a = digest(&w, &ds_ts_explicit_le, w.n);
	SHA256((const uint8_t *)"\xff\xd8\xaa\xbb\xcc\xff\xd9\x00", 8, want);
	ok(a.ok && a.px && memcmp(a.p, want, 32) == 0,
	    "encapsulated: pixel digest = SHA-256 of the fragments after the BOT");

	w.n = 0;
	ex(&w, DS_TAG_PIXEL_DATA, "OB", NULL, DS_UNDEFINED_LENGTH, 0);
	im(&w, DS_TAG_ITEM, "\0\0\0\0", 4);		/* a BOT with one offset */
	im(&w, DS_TAG_ITEM, "\xff\xd8\xaa\xbb", 4);
	im(&w, DS_TAG_ITEM, "\xcc\xff\xd9\x00", 4);
	im(&w, DS_TAG_SEQ_END, NULL, 0);
	b = digest(&w, &ds_ts_explicit_le, 3);
	ok(b.ok && memcmp(a.c, b.c, 32) == 0 && memcmp(a.p, b.p, 32) == 0,
	    "  a rebuilt offset table changes neither digest");

	w.n = 0;
	ex(&w, T(8, 0x60), "CS", "MR", 2, 0);
	c = digest(&w, &ds_ts_explicit_le, w.n);
	ok(c.ok && !c.px, "no pixel data: has_pixels is 0");
}

/* ds_digest_feed: the digests of plain feeding, and OUTER = SHA-256 of
 * the whole stream, whatever the pieces and whether the parser streams
 * the pixel value or gives it whole: native pixels (paired with the
 * stream's hash when in the piece fed), big-endian ones (swapped, so
 * hashed apart) and encapsulated fragments (paired). */
static void
t_feed(void)
{
	static struct buf w;
	static uint8_t big[40000];
	const struct ds_ts *ts[3] = { &ds_ts_explicit_le, &ds_ts_explicit_be,
	    &ds_ts_explicit_le };
	const char *names[3] = { "native LE", "native BE", "encapsulated" };
	unsigned long seed = 7;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 2654435761u >> 11);
	for (int k = 0; k < 3; k++) {
		struct dg want;
		uint8_t whole[32];
		int bad = 0;

		w.n = 0;
		ex(&w, T(8, 0x60), "CS", "CT", 2, ts[k]->big_endian);
		ex(&w, T(0x10, 0x10), "PN", "Doe^John", 8, ts[k]->big_endian);
		if (k < 2)
			ex(&w, DS_TAG_PIXEL_DATA, "OW", big, sizeof(big),
			    ts[k]->big_endian);
		else {
			ex(&w, DS_TAG_PIXEL_DATA, "OB", NULL,
			    DS_UNDEFINED_LENGTH, 0);
			im(&w, DS_TAG_ITEM, "\0\0\0\0", 4);
			im(&w, DS_TAG_ITEM, big, 20000);
			im(&w, DS_TAG_ITEM, big + 20000, 19998);
			im(&w, DS_TAG_SEQ_END, NULL, 0);
		}
		ex(&w, T(0xfffc, 0xfffc), "OB", big, 10, ts[k]->big_endian);
		want = digest(&w, ts[k], w.n);
		SHA256(w.b, w.n, whole);
		for (int t = 0; t < 60; t++) {
			struct ds_digest *d = ds_digest_new();
			struct ds_limits lim;
			struct ds_parser *p;
			struct sha256 outer;
			struct dg got;
			uint8_t oh[32];
			size_t o = 0;

			/* odd trials stream the pixel value in chunks; even
			 * ones give it whole when a piece holds it whole */
			ds_limits_default(&lim);
			if (t & 1)
				lim.chunk_over = 1024;
			p = ds_parser_new_dataset(ts[k], &lim,
			    ds_digest_callbacks(), d);
			memset(&got, 0, sizeof(got));
			sha256_init(&outer);
			while (o < w.n) {
				size_t n;

				seed = seed * 6364136223846793005UL + 1;
				n = 1 + (seed >> 33) % (t < 20 ? 70 : t < 40 ?
				    9000 : 65536);
				if (n > w.n - o)
					n = w.n - o;
				if (ds_digest_feed(d, p, &outer, w.b + o, n) ==
				    DS_ERROR)
					break;
				o += n;
			}
			sha256_final(&outer, oh);
			got.ok = o == w.n && ds_parse_finish(p) == DS_DONE &&
			    ds_digest_final(d, got.c, got.p, &got.px) == 0;
			bad += !got.ok || memcmp(got.c, want.c, 32) != 0 ||
			    memcmp(got.p, want.p, 32) != 0 ||
			    memcmp(oh, whole, 32) != 0;
			ds_parser_free(p);
			ds_digest_free(d);
		}
		ok(want.ok && want.px && bad == 0, "ds_digest_feed, %s, 60 "
		    "random piecings: the digests of plain feeding and the "
		    "stream's SHA-256 (%d differ)", names[k], bad);
	}
}

/*
 * A private sequence: explicit SQ; Implicit VR with defined lengths (the
 * dictionary does not know the tag: a UN whose value begins with an
 * item); explicit UN with a defined length. One canonical digest (the
 * implicit and UN forms were hashed as opaque bytes). FORM: 0 SQ, 1
 * implicit, 2 UN; odd: an OB that only begins like an item. NITEMS items
 * of 22 bytes: over 2,979 the value is longer than the parser's 64 KiB
 * chunk and streams (it was hashed as bytes).
 */
static void
private_seq(struct buf *w, int form, int odd, unsigned nitems)
{
	const struct ds_ts *ts = form == 1 ? &ds_ts_implicit_le :
	    &ds_ts_explicit_le;
	int imp = !ts->explicit_vr;
	uint32_t len = nitems * (8 + 8 + 6);

	w->n = 0;
#define E(t, vr, val, len) (imp ? im(w, t, val, len) : ex(w, t, vr, val, len, 0))
	E(T(0x10, 0x20), "LO", "ID1 ", 4);
	E(T(0x29, 0x10), "LO", "ACME 1.0", 8);
	if (odd) {
		/* an item tag, and a length past the value: not items */
		static const uint8_t v[12] = { 0xfe, 0xff, 0x00, 0xe0, 0x40, 0,
		    0, 0, 1, 2, 3, 4 };

		E(T(0x29, 0x1008), "OB", v, sizeof(v));
	}
	if (form == 0)
		ex(w, T(0x29, 0x1010), "SQ", NULL, len, 0);
	else if (form == 1)
		im(w, T(0x29, 0x1010), NULL, len);
	else
		ex(w, T(0x29, 0x1010), "UN", NULL, len, 0);
	for (unsigned i = 0; i < nitems; i++) {
		char v[7];

		snprintf(v, sizeof(v), "h%04u ", i % 10000);
		tag(w, DS_TAG_ITEM, 0);
		u32(w, 8 + 6, 0);
		if (form == 0)
			ex(w, T(0x29, 0x1001), "LO", v, 6, 0);
		else	/* inside UN: Implicit VR LE (PS3.5 6.2.2) */
			im(w, T(0x29, 0x1001), v, 6);
	}
	E(T(0x29, 0x1020), "LO", "after ", 6);
#undef E
}

/* A UN value that begins with an item but is not one sequence: a stray
 * sequence delimiter after its first item (fo-dicom GH064's kind), over
 * 64 KiB. */
static void
odd_un(struct buf *w, int as_un)
{
	w->n = 0;
	im(w, T(0x10, 0x20), "ID1 ", 4);
	if (as_un)
		im(w, T(0x29, 0x1010), NULL, 8 + 8 + 6 + 8 + 70000);
	else	/* the same bytes, as an OB: hashed as bytes either way */
		im(w, T(0x29, 0x1011), NULL, 8 + 8 + 6 + 8 + 70000);
	tag(w, DS_TAG_ITEM, 0);
	u32(w, 8 + 6, 0);
	im(w, T(0x29, 0x1001), "hello ", 6);
	tag(w, DS_TAG_SEQ_END, 0);
	u32(w, 0, 0);
	for (int i = 0; i < 70000; i++) {
		uint8_t x = (uint8_t)i;

		put(w, &x, 1);
	}
	im(w, T(0x29, 0x1020), "after ", 6);
}

static void
t_private_seq(void)
{
	static const char *const forms[] = { "explicit SQ",
	    "Implicit VR (defined lengths)", "explicit UN (defined length)" };
	static const unsigned counts[] = { 1, 4000 };
	struct buf w;
	struct dg base, d, other;

	for (int c = 0; c < 2; c++) {
		private_seq(&w, 0, 0, counts[c]);
		base = digest(&w, &ds_ts_explicit_le, w.n);
		ok(base.ok, "a private sequence of %u item(s), %zu bytes, "
		    "digests", counts[c], w.n);
		for (int f = 1; f < 3; f++)
			for (int whole = 0; whole < 2; whole++) {
				private_seq(&w, f, 0, counts[c]);
				d = digest(&w, f == 1 ? &ds_ts_implicit_le :
				    &ds_ts_explicit_le, whole ? w.n : c ?
				    4093 : 1);
				ok(d.ok && memcmp(d.c, base.c, 32) == 0,
				    "  as %s, fed %s: the same canonical "
				    "digest", forms[f], whole ? "whole" :
				    c ? "4,093 bytes at a time" :
				    "a byte at a time");
			}
		/* a changed item changes it, streamed or not */
		private_seq(&w, 1, 0, counts[c]);
		w.b[w.n - 14 - 6 - 1] ^= 1;	/* the last item's value */
		d = digest(&w, &ds_ts_implicit_le, 1000);
		ok(d.ok && memcmp(d.c, base.c, 32) != 0, "  a changed item "
		    "changes it");
	}
	private_seq(&w, 1, 1, 1);
	d = digest(&w, &ds_ts_implicit_le, 1);
	ok(d.ok, "an OB that begins with an item tag but a length past its "
	    "value is a value (fed a byte at a time)");
	/* a UN over 64 KiB that begins with an item and holds a stray
	 * delimiter: a value, hashed as its bytes, never refused; its
	 * record is the bytes' (as the OB beside it shows: the same bytes
	 * under another tag give another record, so compare the digest
	 * with a changed byte instead) */
	odd_un(&w, 1);
	d = digest(&w, &ds_ts_implicit_le, 4093);
	other = digest(&w, &ds_ts_implicit_le, w.n);
	ok(d.ok && other.ok && memcmp(d.c, other.c, 32) == 0, "a UN over "
	    "64 KiB with a stray sequence delimiter digests (as bytes), "
	    "the same in any piecing");
	w.b[w.n - 14 - 100] ^= 1;
	other = digest(&w, &ds_ts_implicit_le, w.n);
	ok(other.ok && memcmp(d.c, other.c, 32) != 0, "  and a changed "
	    "byte past its delimiter changes it");
}

int
main(void)
{
	t_encodings();
	t_private_seq();
	t_encapsulated();
	t_feed();
	return done_testing();
}
