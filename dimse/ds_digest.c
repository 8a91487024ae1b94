/*
 * ds_digest.c — see ds_digest.h. A stack of levels mirrors the parser's
 * frames: a dataset level collects (tag, record hash) pairs and is sorted
 * and hashed when it closes; a sequence level hashes its items' digests
 * in order; a pixel level hashes fragments.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "dimse/ds_dict.h"
#include "dimse/ds_digest.h"

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
	EVP_MD_CTX	*ctx;		/* LV_SEQ, LV_PIXELS */
	unsigned	 nfrag;		/* LV_PIXELS */
};

/* Hashing one value, normalized (see ds_digest.h). */
struct vhash {
	EVP_MD_CTX	*ctx;
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
	EVP_MD_CTX	*vctx, *rctx;	/* reused for values and records */
	struct level	*lv;
	unsigned	 nlv, caplv;
	struct vhash	 v;		/* the value being streamed */
	uint8_t		 pixel[32];
	int		 has_pixels;
	int		 bad;
	uint64_t	 pixel_end;	/* ds_digest_pixel_end */
};

/* SHA-256, fetched once: OpenSSL 3 otherwise looks the algorithm up on
 * every init, which costs more than hashing a short value. */
static const EVP_MD *
sha256(void)
{
	static EVP_MD *md;

	if (md == NULL && (md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		abort();
	return md;
}

static void
ctx_init(EVP_MD_CTX *c)
{
	if (!EVP_DigestInit_ex2(c, sha256(), NULL))
		abort();
}

static EVP_MD_CTX *
ctx_new(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (c == NULL)
		abort();
	ctx_init(c);
	return c;
}

/* Finish c into out; c stays allocated (init it again to reuse). */
static void
ctx_done(EVP_MD_CTX *c, uint8_t out[32])
{
	unsigned int n = 32;

	EVP_DigestFinal_ex(c, out, &n);
}

static void
ctx_final(EVP_MD_CTX *c, uint8_t out[32])
{
	ctx_done(c, out);
	EVP_MD_CTX_free(c);
}

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
		l->ctx = ctx_new();
	return l;
}

struct ds_digest *
ds_digest_new(void)
{
	struct ds_digest *d = calloc(1, sizeof(*d));

	if (d == NULL)
		abort();
	d->vctx = ctx_new();
	d->rctx = ctx_new();
	push(d, LV_DATASET, 0);
	return d;
}

void
ds_digest_free_(struct ds_digest *d)
{
	if (d == NULL)
		return;
	for (unsigned i = 0; i < d->nlv; i++) {
		free(d->lv[i].recs);
		if (d->lv[i].ctx)
			EVP_MD_CTX_free(d->lv[i].ctx);
	}
	EVP_MD_CTX_free(d->vctx);
	EVP_MD_CTX_free(d->rctx);
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

/* Add record SHA-256(tag BE ‖ VR ‖ value hash) to the innermost dataset. */
static void
add_record(struct ds_digest *d, uint32_t tag, enum ds_vr cvr,
    const uint8_t vh[32])
{
	struct level *l = &d->lv[d->nlv - 1];
	uint8_t head[6];
	const char *vr = ds_vr_name(cvr);

	if (l->kind != LV_DATASET) {
		d->bad = 1;
		return;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct rec *n = realloc(l->recs, cap * sizeof(*n));

		if (n == NULL)
			abort();
		l->recs = n;
		l->cap = cap;
	}
	head[0] = (uint8_t)(tag >> 24);
	head[1] = (uint8_t)(tag >> 16);
	head[2] = (uint8_t)(tag >> 8);
	head[3] = (uint8_t)tag;
	head[4] = (uint8_t)vr[0];
	head[5] = (uint8_t)vr[1];
	ctx_init(d->rctx);
	EVP_DigestUpdate(d->rctx, head, sizeof(head));
	EVP_DigestUpdate(d->rctx, vh, 32);
	l->recs[l->n].tag = tag;
	ctx_done(d->rctx, l->recs[l->n++].h);
}

/* ---- one value, normalized ---- */

static void
v_begin(struct vhash *v, EVP_MD_CTX *ctx, const struct ds_elem *e)
{
	v->ctx = ctx;
	ctx_init(ctx);
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

/* Normalized bytes in: text values hold back their last byte, which may
 * be the padding that v_final drops. */
static void
v_emit(struct vhash *v, const uint8_t *p, size_t n)
{
	if (n == 0)
		return;
	if (!v->text) {
		EVP_DigestUpdate(v->ctx, p, n);
		return;
	}
	if (v->held)
		EVP_DigestUpdate(v->ctx, &v->hold, 1);
	EVP_DigestUpdate(v->ctx, p, n - 1);
	v->hold = p[n - 1];
	v->held = 1;
}

/* Raw value bytes in: swapped to little-endian unit by unit when the
 * stream's VR says they are big-endian numbers, then normalized. */
static void
v_update(struct vhash *v, const uint8_t *p, size_t n)
{
	uint8_t sw[256];
	size_t k = 0;

	if (v->unit <= 1) {
		v_emit(v, p, n);
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
				v_emit(v, sw, k);
				k = 0;
			}
		}
	}
	v_emit(v, sw, k);
}

static void
v_final(struct vhash *v, uint8_t out[32])
{
	if (v->ncarry > 0)	/* a length not a multiple of the unit */
		v_emit(v, v->carry, v->ncarry);
	if (v->text && v->held && v->hold != ' ' && v->hold != '\0')
		EVP_DigestUpdate(v->ctx, &v->hold, 1);
	ctx_done(v->ctx, out);
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

	if (l->nfrag > 0)
		EVP_DigestUpdate(l->ctx, p, n);
}

static void
value_done(struct ds_digest *d, const struct ds_elem *e)
{
	uint8_t vh[32];

	v_final(&d->v, vh);
	if (e->tag == DS_TAG_PIXEL_DATA && e->depth == 0) {
		memcpy(d->pixel, vh, 32);
		d->has_pixels = 1;
	}
	add_record(d, e->tag, d->v.cvr, vh);
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
	if (excluded(e))
		return 0;
	v_begin(&d->v, d->vctx, e);
	v_update(&d->v, v, n);
	value_done(d, e);
	return 0;
}

static int
cb_value_begin(void *arg, const struct ds_elem *e)
{
	struct ds_digest *d = arg;

	d->v.skip = e->fragment || excluded(e);
	if (!d->v.skip)
		v_begin(&d->v, d->vctx, e);
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
	else if (!d->v.skip)
		v_update(&d->v, p, n);
	return 0;
}

static int
cb_value_end(void *arg, const struct ds_elem *e)
{
	struct ds_digest *d = arg;

	if (e->fragment)
		top(d)->nfrag++;
	else if (!d->v.skip)
		value_done(d, e);
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
	EVP_MD_CTX *c = ctx_new();

	if (l->n > 1)
		qsort(l->recs, l->n, sizeof(*l->recs), rec_cmp);
	for (size_t i = 0; i < l->n; i++)
		EVP_DigestUpdate(c, l->recs[i].h, 32);
	ctx_final(c, out);
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
		EVP_DigestUpdate(top(d)->ctx, h, 32);
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
	ctx_final(l->ctx, h);
	l->ctx = NULL;
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
