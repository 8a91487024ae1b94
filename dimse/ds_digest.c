/*
 * ds_digest.c — see ds_digest.h. A stack of levels mirrors the parser's
 * frames: a dataset level collects (tag, record hash) pairs and is sorted
 * and hashed when it closes; a sequence level hashes its items' digests
 * in order; a pixel level hashes fragments.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dimse/ds_dict.h"
#include "dimse/ds_digest.h"
#include "dimse/ds_ts.h"

struct rec {
	uint32_t	tag;
	uint8_t		h[32];
};

enum lv_kind { LV_DATASET, LV_SEQ, LV_PIXELS };

struct level {
	enum lv_kind	 kind;
	uint32_t	 tag;		/* LV_SEQ/LV_PIXELS: the element */
	struct rec	*recs;		/* LV_DATASET */
	size_t		 n, cap;
	struct sha256	 ctx;		/* LV_SEQ, LV_PIXELS */
	unsigned	 nfrag;		/* LV_PIXELS */
};

/* Hashing one value, normalized (see ds_digest.h). */
struct vhash {
	struct sha256	*ctx;
	int		 pair;		/* the top-level Pixel Data value */
	unsigned	 unit;		/* swap unit when big-endian, else 1 */
	uint8_t		 carry[8];
	unsigned	 ncarry;
	enum ds_vr	 cvr;		/* the dictionary's VR: one lookup */
	int		 text;
	int		 held;
	uint8_t		 hold;
	int		 skip;		/* not part of the digest */
};

struct ds_digest {
	struct sha256	 vctx, rctx;	/* reused for values and records */
	struct level	*lv;
	unsigned	 nlv, caplv;
	struct vhash	 v;		/* the value being streamed */
	uint8_t		 pixel[32];
	int		 has_pixels;
	int		 bad;
	uint64_t	 pixel_end;	/* ds_digest_pixel_end */
	/* ds_digest_feed: the caller's hash of the whole stream, and the
	 * part of the buffer being fed that is not yet in it */
	struct sha256	*outer;
	uintptr_t	 ocur, oend;
	unsigned	 nest;		/* un_items: digests within */
	/* a UN value longer than the parser's chunk, read as a sequence
	 * while it streams (un_open): its first bytes until they say */
	struct ds_digest *un_sub;
	struct ds_parser *un_p;
	uint8_t		 un_first[4];
	unsigned	 un_nfirst;
	int		 un_maybe;	/* its first bytes are still to come */
};

static struct level *
push(struct ds_digest *d, enum lv_kind k, uint32_t tag)
{
	struct level *l;

	if (d->nlv == d->caplv) {
		unsigned cap = d->caplv ? d->caplv * 2 : 8;
		struct level *n = realloc(d->lv, cap * sizeof(*n));

		if (n == NULL)
			abort();
		d->lv = n;
		d->caplv = cap;
	}
	l = &d->lv[d->nlv++];
	memset(l, 0, sizeof(*l));
	l->kind = k;
	l->tag = tag;
	if (k != LV_DATASET)
		sha256_init(&l->ctx);
	return l;
}

struct ds_digest *
ds_digest_new(void)
{
	struct ds_digest *d = calloc(1, sizeof(*d));

	if (d == NULL)
		abort();
	push(d, LV_DATASET, 0);
	return d;
}

void
ds_digest_free_(struct ds_digest *d)
{
	if (d == NULL)
		return;
	ds_parser_free(d->un_p);
	ds_digest_free(d->un_sub);
	for (unsigned i = 0; i < d->nlv; i++)
		free(d->lv[i].recs);
	free(d->lv);
	free(d);
}

static int
excluded(const struct ds_elem *e)
{
	return e->meta || (e->tag >> 16) == 0x0002 ||
	    (e->tag & 0xffff) == 0 || e->tag == DS_TAG(0xfffc, 0xfffc);
}

/* The VR that goes into a record: the dictionary's, not the stream's. */
static enum ds_vr
canon_vr(uint32_t tag)
{
	const struct ds_dict_entry *de = ds_dict_by_tag(tag);

	return de != NULL && de->vr[0] != DS_VR_NONE ? de->vr[0] : DS_VR_UN;
}

/* The next record of dataset level l. */
static struct rec *
new_rec(struct level *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct rec *n = realloc(l->recs, cap * sizeof(*n));

		if (n == NULL)
			abort();
		l->recs = n;
		l->cap = cap;
	}
	return &l->recs[l->n++];
}

/* Add record SHA-256(tag BE ‖ VR ‖ value hash) to the innermost dataset. */
static void
add_record(struct ds_digest *d, uint32_t tag, enum ds_vr cvr,
    const uint8_t vh[32])
{
	struct level *l = &d->lv[d->nlv - 1];
	uint8_t head[6];
	const char *vr = ds_vr_name(cvr);
	struct rec *r;

	if (l->kind != LV_DATASET) {
		d->bad = 1;
		return;
	}
	r = new_rec(l);
	head[0] = (uint8_t)(tag >> 24);
	head[1] = (uint8_t)(tag >> 16);
	head[2] = (uint8_t)(tag >> 8);
	head[3] = (uint8_t)tag;
	head[4] = (uint8_t)vr[0];
	head[5] = (uint8_t)vr[1];
	sha256_init(&d->rctx);
	sha256_update(&d->rctx, head, sizeof(head));
	sha256_update(&d->rctx, vh, 32);
	r->tag = tag;
	sha256_final(&d->rctx, r->h);
}

/* ---- one value, normalized ---- */

static void
v_begin(struct vhash *v, struct sha256 *ctx, const struct ds_elem *e)
{
	v->ctx = ctx;
	sha256_init(ctx);
	v->pair = e->tag == DS_TAG_PIXEL_DATA && e->depth == 0;
	v->unit = e->big_endian ? ds_vr_unit(e->vr) : 1;
	v->ncarry = 0;
	/* Padding is stripped by the dictionary's VR: a private text
	 * element read as UN from an implicit file must hash like the same
	 * element read as LO from an explicit one. Byte order follows the
	 * stream's VR, which says how the bytes are laid out. */
	v->cvr = canon_vr(e->tag);
	v->text = ds_vr_text(v->cvr) && !e->fragment;
	v->held = 0;
}

/* Bytes into h, a hash of the top-level Pixel Data: where they are bytes
 * of the buffer ds_digest_feed is feeding, into the caller's hash of the
 * stream as well, in one pass (after the bytes before them). */
static void
pair(struct ds_digest *d, struct sha256 *h, const uint8_t *p, size_t n)
{
	uintptr_t a = (uintptr_t)p;

	if (d->outer == NULL || a < d->ocur || a > d->oend ||
	    n > d->oend - a) {
		sha256_update(h, p, n);
		return;
	}
	sha256_update(d->outer, (const uint8_t *)d->ocur, a - d->ocur);
	sha256_update2(d->outer, p, n, h, p, n);
	d->ocur = a + n;
}

/* Normalized bytes in: text values hold back their last byte, which may
 * be the padding that v_final drops. */
static void
v_emit(struct ds_digest *d, const uint8_t *p, size_t n)
{
	struct vhash *v = &d->v;

	if (n == 0)
		return;
	if (!v->text) {
		if (v->pair)
			pair(d, v->ctx, p, n);
		else
			sha256_update(v->ctx, p, n);
		return;
	}
	if (v->held)
		sha256_update(v->ctx, &v->hold, 1);
	sha256_update(v->ctx, p, n - 1);
	v->hold = p[n - 1];
	v->held = 1;
}

/* Raw value bytes in: swapped to little-endian unit by unit when the
 * stream's VR says they are big-endian numbers, then normalized. */
static void
v_update(struct ds_digest *d, const uint8_t *p, size_t n)
{
	struct vhash *v = &d->v;
	uint8_t sw[256];
	size_t k = 0;

	if (v->unit <= 1) {
		v_emit(d, p, n);
		return;
	}
	while (n > 0) {
		v->carry[v->ncarry++] = *p++;
		n--;
		if (v->ncarry == v->unit) {
			for (unsigned i = 0; i < v->unit; i++)
				sw[k++] = v->carry[v->unit - 1 - i];
			v->ncarry = 0;
			if (k > sizeof(sw) - 8) {
				v_emit(d, sw, k);
				k = 0;
			}
		}
	}
	v_emit(d, sw, k);
}

static void
v_final(struct ds_digest *d, uint8_t out[32])
{
	struct vhash *v = &d->v;

	if (v->ncarry > 0)	/* a length not a multiple of the unit */
		v_emit(d, v->carry, v->ncarry);
	if (v->text && v->held && v->hold != ' ' && v->hold != '\0')
		sha256_update(v->ctx, &v->hold, 1);
	sha256_final(v->ctx, out);
	v->ctx = NULL;
}

/* ---- callbacks ---- */

static struct level *
top(struct ds_digest *d)
{
	return &d->lv[d->nlv - 1];
}

/* Fragment bytes go straight into the pixel level, except the first
 * fragment (the basic offset table). */
static void
fragment_bytes(struct ds_digest *d, const uint8_t *p, size_t n)
{
	struct level *l = top(d);

	if (l->nfrag == 0)
		return;
	if (l->kind == LV_PIXELS && d->nlv == 2)	/* top-level */
		pair(d, &l->ctx, p, n);
	else
		sha256_update(&l->ctx, p, n);
}

static void
value_done(struct ds_digest *d, const struct ds_elem *e)
{
	uint8_t vh[32];

	v_final(d, vh);
	if (e->tag == DS_TAG_PIXEL_DATA && e->depth == 0) {
		memcpy(d->pixel, vh, 32);
		d->has_pixels = 1;
	}
	add_record(d, e->tag, d->v.cvr, vh);
}

static const struct ds_callbacks digest_cb;

/*
 * A UN value of a defined length that holds items: a private sequence in
 * Implicit VR (the dictionary does not know its tag), or written as UN.
 * The same sequence in Explicit VR is read as one, and hashed by its
 * items; hashed as bytes this one would not match it. Its value is parsed
 * on its own as that sequence, in Implicit VR LE (PS3.5 6.2.2), into a
 * digest of its own whose one record is the element's: whole (un_items)
 * when the parser hands it over in one piece, else as it streams in
 * chunks (un_open at its first four bytes, un_feed, un_close at its end;
 * before, a value over the parser's chunk, 64 KiB, was hashed as bytes,
 * and a large private sequence that a target re-encoded failed
 * dataset-level verification). Anything that does not parse so (vendors
 * put odd things there: a stray delimiter, wrong lengths) is hashed as
 * the bytes it is, as before: never a reason to refuse the dataset. The
 * bytes' hash is taken all along, so nothing is read twice or held.
 */
static const uint8_t un_item[4] = { 0xfe, 0xff, 0x00, 0xe0 };

static int
un_candidate(const struct ds_digest *d, const struct ds_elem *e)
{
	return e->vr == DS_VR_UN && e->length != DS_UNDEFINED_LENGTH &&
	    e->length >= 8 && !e->fragment && d->nest < 8 &&
	    d->lv[d->nlv - 1].kind == LV_DATASET;
}

/* un_open: a parser of e's value as a sequence, into a digest of its
 * own (its element's header given). */
static void
un_open(const struct ds_digest *d, const struct ds_elem *e,
    struct ds_digest **sub, struct ds_parser **p)
{
	uint8_t head[12] = { (uint8_t)(e->tag >> 16), (uint8_t)(e->tag >> 24),
	    (uint8_t)e->tag, (uint8_t)(e->tag >> 8), 'U', 'N', 0, 0, 0xff,
	    0xff, 0xff, 0xff };

	*sub = ds_digest_new();
	(*sub)->nest = d->nest + 1;
	*p = ds_parser_new_dataset(&ds_ts_explicit_le, NULL, &digest_cb,
	    *sub);
	if (ds_parse_feed(*p, head, sizeof(head)) == DS_ERROR)
		(*sub)->bad = 1;
}

/* un_close: the end of e's value: 0 with its record added to d when it
 * parsed as one sequence; -1 otherwise. Frees sub and p. */
static int
un_close(struct ds_digest *d, const struct ds_elem *e, struct ds_digest **sub,
    struct ds_parser **p)
{
	static const uint8_t end[8] = { 0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0 };
	struct ds_digest *x = *sub;
	int ok;

	ok = !x->bad && ds_parse_feed(*p, end, sizeof(end)) != DS_ERROR &&
	    ds_parse_finish(*p) == DS_DONE && !x->bad && x->nlv == 1 &&
	    x->lv[0].n == 1 && x->lv[0].recs[0].tag == e->tag;
	if (ok)
		*new_rec(&d->lv[d->nlv - 1]) = x->lv[0].recs[0];
	ds_parser_free(*p);
	ds_digest_free(*sub);
	return ok ? 0 : -1;
}

/* un_items: a whole value; 0 when the record was added. */
static int
un_items(struct ds_digest *d, const struct ds_elem *e, const uint8_t *v,
    size_t n)
{
	struct ds_digest *sub;
	struct ds_parser *p;

	if (!un_candidate(d, e) || n < 8 || memcmp(v, un_item,
	    sizeof(un_item)) != 0)
		return -1;
	un_open(d, e, &sub, &p);
	if (ds_parse_feed(p, v, n) == DS_ERROR)
		sub->bad = 1;
	return un_close(d, e, &sub, &p);
}

/* un_feed: the next bytes of a streamed UN value (un_maybe: its first
 * bytes decide whether it is read as a sequence at all). */
static void
un_feed(struct ds_digest *d, const struct ds_elem *e, const uint8_t *p,
    size_t n)
{
	if (d->un_maybe) {
		size_t k = sizeof(d->un_first) - d->un_nfirst;

		if (k > n)
			k = n;
		memcpy(d->un_first + d->un_nfirst, p, k);
		d->un_nfirst += (unsigned)k;
		p += k;
		n -= k;
		if (d->un_nfirst < sizeof(d->un_first))
			return;
		d->un_maybe = 0;
		if (memcmp(d->un_first, un_item, sizeof(un_item)) != 0)
			return;
		un_open(d, e, &d->un_sub, &d->un_p);
		if (ds_parse_feed(d->un_p, d->un_first, sizeof(d->un_first)) ==
		    DS_ERROR)
			d->un_sub->bad = 1;
	}
	if (d->un_p == NULL || d->un_sub->bad || n == 0)
		return;
	if (ds_parse_feed(d->un_p, p, n) == DS_ERROR)
		d->un_sub->bad = 1;
}

static int
cb_element(void *arg, const struct ds_elem *e, const uint8_t *v, size_t n)
{
	struct ds_digest *d = arg;

	if (e->fragment) {
		fragment_bytes(d, v, n);
		top(d)->nfrag++;
		return 0;
	}
	if (excluded(e) || un_items(d, e, v, n) == 0)
		return 0;
	v_begin(&d->v, &d->vctx, e);
	v_update(d, v, n);
	value_done(d, e);
	return 0;
}

static int
cb_value_begin(void *arg, const struct ds_elem *e)
{
	struct ds_digest *d = arg;

	d->v.skip = e->fragment || excluded(e);
	if (!d->v.skip)
		v_begin(&d->v, &d->vctx, e);
	d->un_maybe = !d->v.skip && un_candidate(d, e);
	d->un_nfirst = 0;
	if (e->tag == DS_TAG_PIXEL_DATA && e->depth == 0 &&
	    e->length != DS_UNDEFINED_LENGTH)
		d->pixel_end = e->offset + e->hdr_len + e->length;
	return 0;
}

static int
cb_value_chunk(void *arg, const struct ds_elem *e, const uint8_t *p, size_t n)
{
	struct ds_digest *d = arg;

	if (e->fragment)
		fragment_bytes(d, p, n);
	else if (!d->v.skip) {
		v_update(d, p, n);
		if (d->un_maybe || d->un_p != NULL)
			un_feed(d, e, p, n);
	}
	return 0;
}

static int
cb_value_end(void *arg, const struct ds_elem *e)
{
	struct ds_digest *d = arg;

	if (e->fragment)
		top(d)->nfrag++;
	else if (!d->v.skip) {
		d->un_maybe = 0;
		if (d->un_p == NULL || un_close(d, e, &d->un_sub,
		    &d->un_p) != 0)
			value_done(d, e);
	}
	return 0;
}

static int
cb_seq_begin(void *arg, const struct ds_elem *e)
{
	struct ds_digest *d = arg;

	push(d, e->encapsulated ? LV_PIXELS : LV_SEQ, e->tag);
	return 0;
}

static int
cb_item_begin(void *arg, const struct ds_elem *e)
{
	struct ds_digest *d = arg;

	push(d, LV_DATASET, e->tag);
	return 0;
}

static int
rec_cmp(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	if (x->tag != y->tag)
		return x->tag < y->tag ? -1 : 1;
	return memcmp(x->h, y->h, 32);
}

/* Close the innermost dataset level into out. */
static void
dataset_final(struct level *l, uint8_t out[32])
{
	struct sha256 c;

	sha256_init(&c);
	if (l->n > 1)
		qsort(l->recs, l->n, sizeof(*l->recs), rec_cmp);
	for (size_t i = 0; i < l->n; i++)
		sha256_update(&c, l->recs[i].h, 32);
	sha256_final(&c, out);
	free(l->recs);
	l->recs = NULL;
}

static int
cb_item_end(void *arg, const struct ds_elem *e)
{
	struct ds_digest *d = arg;
	uint8_t h[32];

	(void)e;
	if (d->nlv < 2 || top(d)->kind != LV_DATASET) {
		d->bad = 1;
		return 0;
	}
	dataset_final(top(d), h);
	d->nlv--;
	if (top(d)->kind == LV_SEQ)
		sha256_update(&top(d)->ctx, h, 32);
	else
		d->bad = 1;
	return 0;
}

static int
cb_seq_end(void *arg, const struct ds_elem *e)
{
	struct ds_digest *d = arg;
	struct level *l = top(d);
	uint8_t h[32];

	(void)e;
	if (d->nlv < 2 || l->kind == LV_DATASET) {
		d->bad = 1;
		return 0;
	}
	sha256_final(&l->ctx, h);
	d->nlv--;
	if (l->kind == LV_PIXELS && d->nlv == 1) {
		memcpy(d->pixel, h, 32);
		d->has_pixels = 1;
	}
	add_record(d, l->tag, canon_vr(l->tag), h);
	return 0;
}

static const struct ds_callbacks digest_cb = {
	.element = cb_element,
	.value_begin = cb_value_begin,
	.value_chunk = cb_value_chunk,
	.value_end = cb_value_end,
	.seq_begin = cb_seq_begin,
	.item_begin = cb_item_begin,
	.item_end = cb_item_end,
	.seq_end = cb_seq_end,
};

const struct ds_callbacks *
ds_digest_callbacks(void)
{
	return &digest_cb;
}

enum ds_result
ds_digest_feed(struct ds_digest *d, struct ds_parser *parser,
    struct sha256 *outer, const uint8_t *p, size_t n)
{
	enum ds_result r;

	d->outer = outer;
	d->ocur = (uintptr_t)p;
	d->oend = (uintptr_t)p + n;
	r = ds_parse_feed(parser, p, n);
	sha256_update(outer, (const uint8_t *)d->ocur, d->oend - d->ocur);
	d->outer = NULL;
	return r;
}

uint64_t
ds_digest_pixel_end(const struct ds_digest *d)
{
	return d->pixel_end;
}

int
ds_digest_final(struct ds_digest *d, uint8_t canonical[32],
    uint8_t pixel[32], int *has_pixels)
{
	if (d->bad || d->nlv != 1)
		return -1;
	dataset_final(&d->lv[0], canonical);
	d->lv[0].n = d->lv[0].cap = 0;
	memcpy(pixel, d->pixel, 32);
	*has_pixels = d->has_pixels;
	return 0;
}
