/*
 * ds_parse.c — see ds_parse.h.
 *
 * Three layers, each fed bytes by the one before:
 *   file layer   (file mode only) gathers the preamble and the file meta
 *                group (small, bounded) and decides the dataset's syntax;
 *   inflate      (deflated syntax only) zlib raw inflate, bounded;
 *   core         the element state machine over a stack of frames (root,
 *                sequences, items), with one header buffer and one value
 *                buffer; large values pass through without a copy.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "dimse/ds_dict.h"
#include "dimse/ds_parse.h"
#include "dimse/ds_uid.h"

#define META_MAX	(1024 * 1024)	/* preamble + file meta group */
#define INFLATE_BUF	(64 * 1024)

enum frame_kind { FR_ROOT, FR_SEQ, FR_ITEM };

struct frame {
	enum frame_kind	 kind;
	struct ds_elem	 e;		/* the SQ element / item header */
	uint64_t	 end;		/* own end if defined, else the
					 * nearest enclosing one */
	unsigned	 defined:1;	/* has its own length */
	unsigned	 explicit_vr:1;	/* syntax of its content */
	unsigned	 big_endian:1;
	unsigned	 encap:1;	/* encapsulated pixel data fragments */
};

enum core_state { ST_HDR, ST_VALUE, ST_STREAM, ST_DEAD };
enum mode { MODE_FILE, MODE_DATASET };

struct ds_parser {
	struct ds_limits	 lim;
	struct ds_callbacks	 cb;
	void			*arg;
	enum mode		 mode;
	int			 in_core;	/* file layer done */
	int			 meta_sent;	/* dataset mode: meta cb run */
	struct ds_meta		 meta;
	struct ds_error		 err;
	int			 failed;

	/* file layer */
	uint8_t			*acc;
	size_t			 acc_len, acc_cap;

	/* inflate layer */
	int			 inflating;
	z_stream		 z;
	uint8_t			*zout;
	uint64_t		 zin_total, zout_total;
	int			 zend;		/* the deflate stream's end was read */

	/* core */
	enum core_state		 st;
	uint64_t		 pos;
	uint8_t			 hdr[12];
	size_t			 hdr_len, hdr_need;
	struct ds_elem		 cur;		/* element being read */
	uint8_t			*vbuf;
	size_t			 vlen;		/* bytes of cur's value so far */
	uint64_t		 nelem;
	struct frame		*fr;
	unsigned		 nfr, capfr;
};

/* ---------------------------------------------------------------------- */

static int
fail(struct ds_parser *p, uint32_t tag, uint64_t off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int
fail(struct ds_parser *p, uint32_t tag, uint64_t off, const char *fmt, ...)
{
	va_list ap;

	if (p->failed)
		return -1;
	p->failed = 1;
	p->st = ST_DEAD;
	p->err.tag = tag;
	p->err.offset = off;
	va_start(ap, fmt);
	vsnprintf(p->err.msg, sizeof(p->err.msg), fmt, ap);
	va_end(ap);
	return -1;
}

static int
warn(struct ds_parser *p, uint32_t tag, uint64_t off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int
warn(struct ds_parser *p, uint32_t tag, uint64_t off, const char *fmt, ...)
{
	struct ds_error w;
	va_list ap;

	if (p->cb.warning == NULL)
		return 0;
	w.tag = tag;
	w.offset = off;
	va_start(ap, fmt);
	vsnprintf(w.msg, sizeof(w.msg), fmt, ap);
	va_end(ap);
	if (p->cb.warning(p->arg, &w) != 0)
		return fail(p, tag, off, "stopped by the consumer");
	return 0;
}

/* A callback's verdict: non-zero stops the parse. */
static int
cbr(struct ds_parser *p, int r)
{
	if (r != 0)
		return fail(p, p->cur.tag, p->cur.offset,
		    "stopped by the consumer");
	return 0;
}

#define TAGF "(%04x,%04x)"
#define TAGA(t) (unsigned)((t) >> 16), (unsigned)((t) & 0xffff)

static uint16_t
rd16(const uint8_t *b, int be)
{
	return be ? (uint16_t)(b[0] << 8 | b[1]) : (uint16_t)(b[1] << 8 | b[0]);
}

static uint32_t
rd32(const uint8_t *b, int be)
{
	return be ? (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	    (uint32_t)b[2] << 8 | b[3] :
	    (uint32_t)b[3] << 24 | (uint32_t)b[2] << 16 |
	    (uint32_t)b[1] << 8 | b[0];
}

void
ds_limits_default(struct ds_limits *lim)
{
	lim->max_depth = 64;
	lim->max_elements = 1000000;
	lim->chunk_over = 64 * 1024;
	lim->max_inflate = (uint64_t)4 << 30;
	lim->max_ratio = 1000;
}

static struct ds_parser *
parser_new(const struct ds_limits *lim, const struct ds_callbacks *cb,
    void *arg)
{
	struct ds_parser *p = calloc(1, sizeof(*p));

	if (p == NULL)
		abort();
	if (lim != NULL)
		p->lim = *lim;
	else
		ds_limits_default(&p->lim);
	if (p->lim.chunk_over == 0)
		p->lim.chunk_over = 1;
	if (cb != NULL)
		p->cb = *cb;
	p->arg = arg;
	p->capfr = 8;
	if ((p->fr = calloc(p->capfr, sizeof(*p->fr))) == NULL)
		abort();
	p->nfr = 1;
	p->fr[0].kind = FR_ROOT;
	p->fr[0].end = UINT64_MAX;
	p->st = ST_HDR;
	return p;
}

static void
set_syntax(struct ds_parser *p, const struct ds_ts *ts)
{
	p->meta.ts = ts;
	p->fr[0].explicit_vr = ts->explicit_vr;
	p->fr[0].big_endian = ts->big_endian;
}

struct ds_parser *
ds_parser_new_file(const struct ds_limits *lim, const struct ds_callbacks *cb,
    void *arg)
{
	struct ds_parser *p = parser_new(lim, cb, arg);

	p->mode = MODE_FILE;
	return p;
}

static void start_inflate(struct ds_parser *p, const struct ds_ts *ts);

struct ds_parser *
ds_parser_new_dataset(const struct ds_ts *ts, const struct ds_limits *lim,
    const struct ds_callbacks *cb, void *arg)
{
	struct ds_parser *p = parser_new(lim, cb, arg);

	p->mode = MODE_DATASET;
	p->in_core = 1;
	set_syntax(p, ts);
	start_inflate(p, ts);
	snprintf(p->meta.ts_uid, sizeof(p->meta.ts_uid), "%s", ts->uid ?
	    ts->uid : "");
	return p;
}

void
ds_parser_free_(struct ds_parser *p)
{
	if (p == NULL)
		return;
	if (p->inflating)
		inflateEnd(&p->z);
	free(p->zout);
	free(p->acc);
	free(p->vbuf);
	free(p->fr);
	free(p);
}

const struct ds_error *
ds_parse_error(const struct ds_parser *p)
{
	return &p->err;
}

uint64_t
ds_parse_position(const struct ds_parser *p)
{
	return p->in_core ? p->pos : p->acc_len;
}

uint64_t
ds_parse_elements(const struct ds_parser *p)
{
	return p->nelem;
}

/* ---------------------------------------------------------------------- */
/* Core: frames. */

static struct frame *
top(struct ds_parser *p)
{
	return &p->fr[p->nfr - 1];
}

static int
push(struct ds_parser *p, enum frame_kind k, const struct ds_elem *e,
    uint64_t start)
{
	struct frame *t = top(p), *f;

	if (p->nfr > p->lim.max_depth * 2u + 1u)
		return fail(p, e->tag, e->offset, "sequences nested deeper "
		    "than %u levels (limit)", p->lim.max_depth);
	if (p->nfr == p->capfr) {
		struct frame *nf = realloc(p->fr, 2 * p->capfr * sizeof(*nf));

		if (nf == NULL)
			abort();
		p->fr = nf;
		p->capfr *= 2;
		t = top(p);
	}
	f = &p->fr[p->nfr++];
	memset(f, 0, sizeof(*f));
	f->kind = k;
	f->e = *e;
	f->explicit_vr = t->explicit_vr;
	f->big_endian = t->big_endian;
	f->end = t->end;
	if (e->length != DS_UNDEFINED_LENGTH) {
		f->defined = 1;
		f->end = start + e->length;
	}
	return 0;
}

/* Pop the top frame with its closing callback. */
static int
pop(struct ds_parser *p)
{
	struct frame f = *top(p);

	p->nfr--;
	if (f.kind == FR_ITEM)
		return p->cb.item_end ? cbr(p, p->cb.item_end(p->arg, &f.e)) : 0;
	return p->cb.seq_end ? cbr(p, p->cb.seq_end(p->arg, &f.e)) : 0;
}

/* Close every defined-length frame that ends here. */
static int
close_frames(struct ds_parser *p)
{
	while (p->nfr > 1 && top(p)->defined) {
		struct frame *f = top(p);

		if (p->pos < f->end)
			return 0;
		if (p->pos > f->end)
			return fail(p, f->e.tag, p->pos, "contents run %llu "
			    "bytes past the end of the %s " TAGF " of length "
			    "%u", (unsigned long long)(p->pos - f->end),
			    f->kind == FR_ITEM ? "item" : "sequence",
			    TAGA(f->e.tag), f->e.length);
		if (pop(p) < 0)
			return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Core: one element header decoded. */

static int value_done(struct ds_parser *p, const uint8_t *v);

static int
item_tag(struct ds_parser *p, struct ds_elem *e)
{
	struct frame *t = top(p);

	switch (e->tag) {
	case DS_TAG_ITEM:
		if (t->kind != FR_SEQ && e->length != DS_UNDEFINED_LENGTH) {
			/* Seen in the wild after an empty SQ: keep its bytes
			 * as an opaque element, as DCMTK reads on. */
			e->vr = DS_VR_UN;
			return warn(p, e->tag, e->offset, "item of length %u "
			    "outside a sequence, kept as an opaque value",
			    e->length) < 0 ? -1 : 1;
		}
		if (t->kind != FR_SEQ)
			return fail(p, e->tag, e->offset, "item outside a "
			    "sequence");
		if (t->encap) {
			if (e->length == DS_UNDEFINED_LENGTH)
				return fail(p, e->tag, e->offset, "pixel data "
				    "fragment of undefined length");
			e->vr = DS_VR_OB;
			e->fragment = 1;
			return 1;	/* a value follows */
		}
		if (push(p, FR_ITEM, e, p->pos) < 0)
			return -1;
		return p->cb.item_begin ?
		    cbr(p, p->cb.item_begin(p->arg, e)) : 0;
	case DS_TAG_ITEM_END:
		if (t->kind != FR_ITEM || t->defined)
			return fail(p, e->tag, e->offset, "item delimiter "
			    "without an open item of undefined length");
		if (e->length != 0 && warn(p, e->tag, e->offset,
		    "item delimiter with length %u (should be 0)",
		    e->length) < 0)
			return -1;
		return pop(p);
	case DS_TAG_SEQ_END:
		if (t->kind != FR_SEQ || t->defined)
			return fail(p, e->tag, e->offset, "sequence delimiter "
			    "without an open sequence of undefined length");
		if (e->length != 0 && warn(p, e->tag, e->offset,
		    "sequence delimiter with length %u (should be 0)",
		    e->length) < 0)
			return -1;
		return pop(p);
	default:
		return fail(p, e->tag, e->offset, "unknown item tag " TAGF,
		    TAGA(e->tag));
	}
}

/* A data element's header is complete: sequence, value or error.
 * Returns 1 when a value follows, 0 when not, -1 on error. */
static int
data_elem(struct ds_parser *p, struct ds_elem *e)
{
	struct frame *t = top(p);

	if (t->kind == FR_SEQ)
		return fail(p, e->tag, e->offset, "element " TAGF " directly "
		    "inside a sequence; expected an item (FFFE,E000)",
		    TAGA(e->tag));
	if (++p->nelem > p->lim.max_elements)
		return fail(p, e->tag, e->offset, "more than %llu elements "
		    "(limit)", (unsigned long long)p->lim.max_elements);
	if (e->tag == DS_TAG_PIXEL_DATA && e->length == DS_UNDEFINED_LENGTH &&
	    e->vr != DS_VR_SQ) {
		e->encapsulated = 1;
		if (push(p, FR_SEQ, e, p->pos) < 0)
			return -1;
		top(p)->encap = 1;
		return p->cb.seq_begin ? cbr(p, p->cb.seq_begin(p->arg, e)) : 0;
	}
	if (e->vr == DS_VR_SQ || (e->length == DS_UNDEFINED_LENGTH &&
	    e->vr == DS_VR_UN)) {
		if (push(p, FR_SEQ, e, p->pos) < 0)
			return -1;
		if (e->vr == DS_VR_UN) {
			/* PS3.5 6.2.2: UN of undefined length holds an
			 * Implicit VR Little Endian sequence. */
			top(p)->explicit_vr = 0;
			top(p)->big_endian = 0;
		}
		return p->cb.seq_begin ? cbr(p, p->cb.seq_begin(p->arg, e)) : 0;
	}
	if (e->length == DS_UNDEFINED_LENGTH)
		return fail(p, e->tag, e->offset, "undefined length on " TAGF
		    " of VR %s; only SQ, UN and pixel data may have it",
		    TAGA(e->tag), ds_vr_name(e->vr));
	return 1;
}

/* Decode hdr[0..hdr_len) into p->cur; 0 = need hdr_need bytes, 1 = done. */
static int
decode_hdr(struct ds_parser *p)
{
	struct frame *t = top(p);
	struct ds_elem *e = &p->cur;
	int be = t->big_endian;
	const struct ds_dict_entry *d;

	memset(e, 0, sizeof(*e));
	e->tag = (uint32_t)rd16(p->hdr, be) << 16 | rd16(p->hdr + 2, be);
	e->offset = p->pos - p->hdr_len;
	e->depth = (p->nfr - 1) / 2;
	e->big_endian = be;
	if ((e->tag >> 16) == 0xfffe || !t->explicit_vr) {
		/* items and delimiters are always tag + 4-byte length */
		e->length = rd32(p->hdr + 4, be);
		if ((e->tag >> 16) != 0xfffe) {
			d = ds_dict_by_tag(e->tag);
			e->vr = d != NULL && d->vr[0] != DS_VR_NONE ? d->vr[0] :
			    DS_VR_UN;
			/* PS3.5 A.1: pixel data is OW in Implicit VR */
			if (e->tag == DS_TAG_PIXEL_DATA)
				e->vr = DS_VR_OW;
			e->vr_guessed = 1;
		}
		return 1;
	}
	e->vr = ds_vr_from_chars(p->hdr[4], p->hdr[5]);
	if (e->vr == DS_VR_NONE && p->hdr[4] >= 'A' && p->hdr[4] <= 'Z' &&
	    p->hdr[5] >= 'A' && p->hdr[5] <= 'Z') {
		/* a VR we do not know, in the form PS3.5 7.1.2 keeps for
		 * VRs to come (two reserved bytes, a 4-byte length), as
		 * DCMTK reads it: its value as UN */
		if (p->hdr_len < 12) {
			p->hdr_need = 12;
			return 0;
		}
		e->vr = DS_VR_UN;
		e->vr_guessed = 1;
		e->length = rd32(p->hdr + 8, be);
		return warn(p, e->tag, e->offset, "unknown VR \"%c%c\" for "
		    TAGF ", read as UN with a 4-byte length", p->hdr[4],
		    p->hdr[5], TAGA(e->tag)) < 0 ? -1 : 1;
	}
	if (e->vr == DS_VR_NONE) {
		/* Not a VR at all: read on as DCMTK does, with the
		 * dictionary's VR and a 2-byte length, and say so. */
		d = ds_dict_by_tag(e->tag);
		e->vr = d != NULL && d->vr[0] != DS_VR_NONE ? d->vr[0] :
		    DS_VR_UN;
		e->vr_guessed = 1;
		e->length = rd16(p->hdr + 6, be);
		return warn(p, e->tag, e->offset, "invalid VR bytes 0x%02x "
		    "0x%02x for " TAGF ", read as %s with a 2-byte length",
		    p->hdr[4], p->hdr[5], TAGA(e->tag),
		    ds_vr_name(e->vr)) < 0 ? -1 : 1;
	}
	if (!ds_vr_long(e->vr)) {
		e->length = rd16(p->hdr + 6, be);
		return 1;
	}
	if (p->hdr_len < 12) {
		p->hdr_need = 12;
		return 0;
	}
	e->length = rd32(p->hdr + 8, be);
	return 1;
}

/* The header is whole: decide what comes next. */
static int
header_done(struct ds_parser *p)
{
	struct ds_elem *e = &p->cur;
	struct frame *t = top(p);
	int r;

	e->hdr_len = (uint8_t)p->hdr_len;

	r = (e->tag >> 16) == 0xfffe ? item_tag(p, e) : data_elem(p, e);
	if (r <= 0) {
		p->hdr_len = 0;
		p->hdr_need = 8;
		return r < 0 ? -1 : close_frames(p);
	}
	t = top(p);
	if (p->pos + e->length > t->end || p->pos + e->length < p->pos)
		return fail(p, e->tag, e->offset, "value length %u of " TAGF
		    " runs past the end of its %s", e->length, TAGA(e->tag),
		    t->kind == FR_ROOT ? "data" : t->kind == FR_ITEM ? "item" :
		    "sequence");
	if ((e->length & 1) && warn(p, e->tag, e->offset, "odd value length "
	    "%u for " TAGF " (PS3.5 7.1.1 requires even)", e->length,
	    TAGA(e->tag)) < 0)
		return -1;
	p->hdr_len = 0;
	p->hdr_need = 8;
	p->vlen = 0;
	if (e->length <= p->lim.chunk_over) {
		p->st = ST_VALUE;
		if (p->vbuf == NULL && (p->vbuf = malloc(p->lim.chunk_over)) ==
		    NULL)
			abort();
	} else {
		p->st = ST_STREAM;
		if (p->cb.value_begin && cbr(p, p->cb.value_begin(p->arg, e)))
			return -1;
	}
	if (e->length == 0)
		return value_done(p, p->vbuf);
	return 0;
}

/* The current value is complete (small: at v, in vbuf or the input;
 * streamed: all chunks delivered). */
static int
value_done(struct ds_parser *p, const uint8_t *v)
{
	struct ds_elem *e = &p->cur;

	if (p->st == ST_VALUE) {
		if (p->cb.element && cbr(p, p->cb.element(p->arg, e, v,
		    p->vlen)))
			return -1;
	} else if (p->cb.value_end && cbr(p, p->cb.value_end(p->arg, e)))
		return -1;
	p->st = ST_HDR;
	return close_frames(p);
}

/* Core: consume n bytes of the dataset stream. */
static int
core_feed(struct ds_parser *p, const uint8_t *d, size_t n)
{
	while (n > 0 && !p->failed) {
		size_t take;

		switch (p->st) {
		case ST_HDR:
			if (p->hdr_need == 0)
				p->hdr_need = 8;
			take = p->hdr_need - p->hdr_len;
			if (take > n)
				take = n;
			memcpy(p->hdr + p->hdr_len, d, take);
			p->hdr_len += take;
			p->pos += take;
			d += take;
			n -= take;
			if (p->hdr_len < p->hdr_need)
				break;
			if (decode_hdr(p) == 1 && header_done(p) < 0)
				return -1;
			break;
		case ST_VALUE:
		case ST_STREAM:
			take = p->cur.length - p->vlen;
			if (p->st == ST_VALUE && p->vlen == 0 && take <= n) {
				/* whole in the input: given from there, not
				 * copied (a digest can then hash it together
				 * with the input's own hash: ds_digest_feed) */
				p->vlen = take;
				p->pos += take;
				if (value_done(p, d) < 0)
					return -1;
				d += take;
				n -= take;
				break;
			}
			if (take > n)
				take = n;
			if (p->st == ST_VALUE)
				memcpy(p->vbuf + p->vlen, d, take);
			else if (p->cb.value_chunk && cbr(p,
			    p->cb.value_chunk(p->arg, &p->cur, d, take)))
				return -1;
			p->vlen += take;
			p->pos += take;
			d += take;
			n -= take;
			if (p->vlen == p->cur.length &&
			    value_done(p, p->vbuf) < 0)
				return -1;
			break;
		case ST_DEAD:
			return -1;
		}
	}
	return p->failed ? -1 : 0;
}

/* ---------------------------------------------------------------------- */
/* Inflate layer (Deflated Explicit VR Little Endian, PS3.5 A.5). */

static int
inflate_feed(struct ds_parser *p, const uint8_t *d, size_t n, int finish)
{
	int zr;

	p->z.next_in = (Bytef *)(uintptr_t)d;
	p->z.avail_in = (uInt)n;
	p->zin_total += n;
	do {
		size_t got;

		p->z.next_out = p->zout;
		p->z.avail_out = INFLATE_BUF;
		zr = inflate(&p->z, finish ? Z_FINISH : Z_NO_FLUSH);
		if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
			return fail(p, 0, p->pos, "deflated dataset: %s",
			    p->z.msg ? p->z.msg : "corrupt data");
		got = INFLATE_BUF - p->z.avail_out;
		p->zout_total += got;
		if (p->zout_total > p->lim.max_inflate ||
		    (p->zout_total > (1u << 20) &&
		    p->zout_total / (p->zin_total + 1) > p->lim.max_ratio))
			return fail(p, 0, p->pos, "deflated dataset inflates "
			    "past the limit (%llu bytes from %llu): refused "
			    "as a deflate bomb",
			    (unsigned long long)p->zout_total,
			    (unsigned long long)p->zin_total);
		if (got > 0 && core_feed(p, p->zout, got) < 0)
			return -1;
		if (zr == Z_STREAM_END) {
			p->zend = 1;
			break;
		}
	} while (p->z.avail_in > 0 || p->z.avail_out == 0);
	/* deflate marks its end: without it the data was cut short, even
	 * where what inflated so far ends between two elements */
	if (finish && !p->zend)
		return fail(p, 0, p->pos, "deflated dataset: cut short (the "
		    "data ends before the deflate stream's end)");
	return 0;
}

static int
to_core(struct ds_parser *p, const uint8_t *d, size_t n)
{
	return p->inflating ? inflate_feed(p, d, n, 0) : core_feed(p, d, n);
}

/* ---------------------------------------------------------------------- */
/* File layer: preamble, file meta group (PS3.10 7.1), sniffing. */

static int
is_vr_chars(const uint8_t *b)
{
	return ds_vr_from_chars(b[0], b[1]) != DS_VR_NONE;
}

/* No meta: guess the syntax from the first element header at b. */
static const struct ds_ts *
sniff(const uint8_t *b, size_t n)
{
	if (n < 8)
		return &ds_ts_implicit_le;
	if (is_vr_chars(b + 4))
		return (b[0] == 0 && b[1] != 0) ? &ds_ts_explicit_be :
		    &ds_ts_explicit_le;
	return &ds_ts_implicit_le;
}

/*
 * Walk the meta group in acc from start. Returns the offset where the
 * dataset begins, NEED_MORE when more bytes are needed (never at eof),
 * -1 on error.
 * Elements are only reported (emit) once the whole group is known.
 */
#define NEED_MORE (-2)

static int64_t
walk_meta(struct ds_parser *p, size_t start, int eof, int emit)
{
	size_t o = start;
	int64_t glen = -1;
	size_t gstart = 0;

	for (;;) {
		const uint8_t *b = p->acc + o;
		size_t left = p->acc_len - o, hl;
		struct ds_elem e;
		uint32_t len;

		if (left < 2 || (rd16(b, 0) == 0x0002 && left < 8)) {
			if (!eof)
				return NEED_MORE;
			if (left >= 2)
				return fail(p, 0, o, "file meta group "
				    "truncated");
			break;
		}
		if (rd16(b, 0) != 0x0002)
			break;
		memset(&e, 0, sizeof(e));
		e.tag = rd32(b, 0) >> 16 | rd32(b, 0) << 16;
		e.offset = o;
		e.meta = 1;
		e.vr = ds_vr_from_chars(b[4], b[5]);
		if (e.vr == DS_VR_NONE)
			return fail(p, e.tag, o, "file meta element " TAGF
			    " is not Explicit VR Little Endian (PS3.10 7.1)",
			    TAGA(e.tag));
		hl = ds_vr_long(e.vr) ? 12 : 8;
		if (left < hl)
			return eof ? fail(p, e.tag, o, "file meta group "
			    "truncated") : NEED_MORE;
		len = hl == 12 ? rd32(b + 8, 0) : rd16(b + 6, 0);
		e.hdr_len = (uint8_t)hl;
		if (len == DS_UNDEFINED_LENGTH || len > META_MAX)
			return fail(p, e.tag, o, "file meta element " TAGF
			    " has length %u", TAGA(e.tag), len);
		e.length = len;
		if (left - hl < len)
			return eof ? fail(p, e.tag, o, "file meta group "
			    "truncated in " TAGF, TAGA(e.tag)) : NEED_MORE;
		if (e.tag == DS_TAG(2, 0) && len == 4) {
			glen = rd32(b + hl, 0);
			gstart = o + hl + 4;
		} else if (e.tag == DS_TAG(2, 0x10))
			ds_uid_copy(p->meta.ts_uid, b + hl, len);
		else if (e.tag == DS_TAG(2, 2))
			ds_uid_copy(p->meta.sop_class, b + hl, len);
		else if (e.tag == DS_TAG(2, 3))
			ds_uid_copy(p->meta.sop_instance, b + hl, len);
		if (emit && p->cb.element) {
			p->cur = e;
			if (cbr(p, p->cb.element(p->arg, &e, b + hl, len)))
				return -1;
		}
		o += hl + len;
	}
	if (glen >= 0 && (uint64_t)glen != o - gstart)
		return fail(p, DS_TAG(2, 0), gstart - 4, "file meta group "
		    "length (0002,0000) says %lld bytes but its elements "
		    "take %zu", (long long)glen, o - gstart);
	return (int64_t)o;
}

/* start_inflate: a deflated syntax (PS3.5 A.5): the dataset is a raw
 * deflate stream, inflated before parsing. */
static void
start_inflate(struct ds_parser *p, const struct ds_ts *ts)
{
	if (!ts->deflated || p->inflating)
		return;
	if (inflateInit2(&p->z, -MAX_WBITS) != Z_OK)
		abort();
	if ((p->zout = malloc(INFLATE_BUF)) == NULL)
		abort();
	p->inflating = 1;
}

/* Decide the dataset's syntax from what walk_meta found. */
static int
choose_syntax(struct ds_parser *p, size_t ds_start)
{
	const struct ds_ts *ts;

	if (!p->meta.has_meta || p->meta.ts_uid[0] == '\0') {
		/* No meta, or a meta group without (0002,0010) (which
		 * DCMTK also reads): sniff, and say so. */
		ts = sniff(p->acc + ds_start, p->acc_len - ds_start);
		p->meta.ts_guessed = 1;
		snprintf(p->meta.ts_uid, sizeof(p->meta.ts_uid), "%s", ts->uid);
		if (p->meta.has_meta && warn(p, DS_TAG(2, 0x10), 0, "file "
		    "meta group has no Transfer Syntax UID (0002,0010): "
		    "guessed %s from the first element", ts->name) < 0)
			return -1;
	} else if ((ts = ds_ts_lookup(p->meta.ts_uid)) == NULL) {
		return fail(p, DS_TAG(2, 0x10), 0, "unknown transfer syntax "
		    "\"%s\"", p->meta.ts_uid);
	}
	set_syntax(p, ts);
	start_inflate(p, ts);
	return 0;
}

/* Try to finish the file layer with what is in acc. 1 = done, 0 = more. */
static int
file_layer(struct ds_parser *p, int eof)
{
	size_t start = 0;
	int64_t end;

	if (p->acc_len < 132 && !eof)
		return 0;
	if (p->acc_len == 0)
		return fail(p, 0, 0, "empty input: no DICOM data");
	if (p->acc_len >= 132 && memcmp(p->acc + 128, "DICM", 4) == 0) {
		p->meta.has_preamble = 1;
		start = 132;
	}
	if ((end = walk_meta(p, start, eof, 0)) == NEED_MORE)
		return 0;
	if (end < 0)
		return -1;
	p->meta.has_meta = (size_t)end > start;
	if (p->meta.has_preamble && !p->meta.has_meta)
		return fail(p, 0, 132, "\"DICM\" is not followed by a file "
		    "meta group (0002,xxxx)");
	/* A syntax to be guessed (no (0002,0010)) is guessed from the first
	 * element's header: wait for it whole, else the guess would depend
	 * on where the input happened to be cut (found by fuzz_dataset: a
	 * big-endian dataset read as implicit little-endian when fed 7 bytes
	 * at a time). */
	if (!eof && (!p->meta.has_meta || p->meta.ts_uid[0] == '\0') &&
	    p->acc_len - (size_t)end < 8)
		return 0;
	if (choose_syntax(p, (size_t)end) < 0 ||
	    walk_meta(p, start, 1, 1) < 0)
		return -1;
	p->meta.dataset_offset = (uint64_t)end;
	p->pos = (uint64_t)end;
	p->in_core = 1;
	if (p->cb.meta && cbr(p, p->cb.meta(p->arg, &p->meta)))
		return -1;
	if (to_core(p, p->acc + end, p->acc_len - (size_t)end) < 0)
		return -1;
	free(p->acc);
	p->acc = NULL;
	p->acc_len = p->acc_cap = 0;
	return 1;
}

static int
acc_add(struct ds_parser *p, const uint8_t *d, size_t n)
{
	if (n == 0)
		return 0;
	if (p->acc_len + n > META_MAX)
		return fail(p, 0, p->acc_len, "file meta group larger than "
		    "%d bytes", META_MAX);
	if (p->acc_len + n > p->acc_cap) {
		size_t cap = p->acc_cap ? p->acc_cap : 4096;
		uint8_t *na;

		while (cap < p->acc_len + n)
			cap *= 2;
		if ((na = realloc(p->acc, cap)) == NULL)
			abort();
		p->acc = na;
		p->acc_cap = cap;
	}
	memcpy(p->acc + p->acc_len, d, n);
	p->acc_len += n;
	return 0;
}

/* ---------------------------------------------------------------------- */

enum ds_result
ds_parse_feed(struct ds_parser *p, const uint8_t *data, size_t len)
{
	if (p->failed)
		return DS_ERROR;
	/* The file layer takes small slices, so that a large first feed
	 * does not count against the meta group's size limit: once it has
	 * decided, the rest of the input goes straight to the dataset. */
	while (!p->in_core && len > 0) {
		size_t take = len < 4096 ? len : 4096;

		if (acc_add(p, data, take) < 0 || file_layer(p, 0) < 0)
			return DS_ERROR;
		data += take;
		len -= take;
	}
	if (!p->in_core)
		return DS_NEED_MORE;
	if (!p->meta_sent && p->mode == MODE_DATASET) {
		p->meta_sent = 1;
		if (p->cb.meta && cbr(p, p->cb.meta(p->arg, &p->meta)))
			return DS_ERROR;
	}
	return to_core(p, data, len) < 0 ? DS_ERROR : DS_NEED_MORE;
}

enum ds_result
ds_parse_finish(struct ds_parser *p)
{
	if (p->failed)
		return DS_ERROR;
	if (!p->in_core && file_layer(p, 1) <= 0)
		return DS_ERROR;
	if (p->inflating && inflate_feed(p, NULL, 0, 1) < 0)
		return DS_ERROR;
	if (p->st != ST_HDR || p->hdr_len != 0) {
		fail(p, p->cur.tag, p->pos, "truncated: the data ends inside "
		    "%s", p->st == ST_HDR ? "an element header" :
		    "the value of an element");
		return DS_ERROR;
	}
	if (p->nfr > 1) {
		struct frame *f = top(p);

		fail(p, f->e.tag, p->pos, "truncated: the data ends inside "
		    "the %s " TAGF " begun at byte %llu", f->kind == FR_ITEM ?
		    "item" : "sequence", TAGA(f->e.tag),
		    (unsigned long long)f->e.offset);
		return DS_ERROR;
	}
	return DS_DONE;
}
