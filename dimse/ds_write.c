/*
 * ds_write.c — see ds_write.h.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dimse/ds_dict.h"
#include "dimse/ds_write.h"

struct ds_writer {
	int		 explicit_vr, be;
	ds_sink_fn	*sink;
	void		*arg;
	uint64_t	 bytes;
	/* the value being streamed */
	unsigned	 unit;		/* swap unit, 1 = copy */
	uint8_t		 carry[8];
	unsigned	 ncarry;
};

struct ds_writer *
ds_writer_new(const struct ds_ts *ts, ds_sink_fn *sink, void *arg)
{
	struct ds_writer *w = calloc(1, sizeof(*w));

	if (w == NULL)
		abort();
	w->explicit_vr = ts->explicit_vr;
	w->be = ts->big_endian;
	w->sink = sink;
	w->arg = arg;
	return w;
}

void
ds_writer_free_(struct ds_writer *w)
{
	free(w);
}

uint64_t
ds_writer_bytes(const struct ds_writer *w)
{
	return w->bytes;
}

static int
out(struct ds_writer *w, const void *p, size_t n)
{
	w->bytes += n;
	return n > 0 ? w->sink(w->arg, p, n) : 0;
}

void
ds_put16(uint8_t *b, unsigned v, int be)
{
	b[be ? 0 : 1] = (uint8_t)(v >> 8);
	b[be ? 1 : 0] = (uint8_t)v;
}

void
ds_put32(uint8_t *b, uint32_t v, int be)
{
	ds_put16(b + (be ? 0 : 2), v >> 16, be);
	ds_put16(b + (be ? 2 : 0), v & 0xffff, be);
}

/* The VR to write for e: the stream's unless it was guessed (implicit
 * source), then the dictionary's; UN when a short-form VR cannot hold
 * the length. */
static enum ds_vr
out_vr(const struct ds_elem *e)
{
	enum ds_vr vr = e->vr;

	if (vr == DS_VR_NONE)
		vr = DS_VR_UN;
	if (!ds_vr_long(vr) && e->length != DS_UNDEFINED_LENGTH &&
	    e->length > 0xffff)
		vr = DS_VR_UN;
	return vr;
}

size_t
ds_encode_header(uint8_t b[12], uint32_t tag, enum ds_vr vr, uint32_t len,
    int explicit_vr, int be)
{
	ds_put16(b, tag >> 16, be);
	ds_put16(b + 2, tag & 0xffff, be);
	if (!explicit_vr || (tag >> 16) == 0xfffe) {
		ds_put32(b + 4, len, be);
		return 8;
	}
	memcpy(b + 4, ds_vr_name(vr), 2);
	if (ds_vr_long(vr)) {
		b[6] = b[7] = 0;
		ds_put32(b + 8, len, be);
		return 12;
	}
	ds_put16(b + 6, len, be);
	return 8;
}

static int
header(struct ds_writer *w, uint32_t tag, enum ds_vr vr, uint32_t len)
{
	uint8_t b[12];

	return out(w, b, ds_encode_header(b, tag, vr, len, w->explicit_vr,
	    w->be));
}

static void
value_setup(struct ds_writer *w, const struct ds_elem *e)
{
	w->unit = e->big_endian != w->be && !e->fragment ?
	    ds_vr_unit(e->vr) : 1;
	w->ncarry = 0;
}

/* Value bytes, swapped unit by unit when the byte order changes. */
static int
value_bytes(struct ds_writer *w, const uint8_t *p, size_t n)
{
	uint8_t buf[4096];
	size_t k = 0;

	if (w->unit <= 1)
		return out(w, p, n);
	while (n > 0) {
		w->carry[w->ncarry++] = *p++;
		n--;
		if (w->ncarry == w->unit) {
			for (unsigned i = 0; i < w->unit; i++)
				buf[k++] = w->carry[w->unit - 1 - i];
			w->ncarry = 0;
			if (k > sizeof(buf) - 8) {
				if (out(w, buf, k) != 0)
					return -1;
				k = 0;
			}
		}
	}
	return out(w, buf, k);
}

/* A length that is not a multiple of the unit: the rest as it was. */
static int
value_finish(struct ds_writer *w)
{
	int r = out(w, w->carry, w->ncarry);

	w->ncarry = 0;
	return r;
}

static int
elem_header(struct ds_writer *w, const struct ds_elem *e)
{
	if (e->fragment || (e->tag >> 16) == 0xfffe)
		return header(w, e->tag, DS_VR_NONE, e->length);
	return header(w, e->tag, out_vr(e), e->length);
}

static int
w_element(void *arg, const struct ds_elem *e, const uint8_t *v, size_t n)
{
	struct ds_writer *w = arg;

	if (e->meta)
		return 0;
	if (elem_header(w, e) != 0)
		return -1;
	value_setup(w, e);
	if (value_bytes(w, v, n) != 0)
		return -1;
	return value_finish(w);
}

static int
w_value_begin(void *arg, const struct ds_elem *e)
{
	struct ds_writer *w = arg;

	if (e->meta)
		return 0;
	value_setup(w, e);
	return elem_header(w, e);
}

static int
w_value_chunk(void *arg, const struct ds_elem *e, const uint8_t *p, size_t n)
{
	struct ds_writer *w = arg;

	return e->meta ? 0 : value_bytes(w, p, n);
}

static int
w_value_end(void *arg, const struct ds_elem *e)
{
	struct ds_writer *w = arg;

	return e->meta ? 0 : value_finish(w);
}

static int
w_seq_begin(void *arg, const struct ds_elem *e)
{
	struct ds_writer *w = arg;

	return header(w, e->tag, e->encapsulated ? e->vr : DS_VR_SQ,
	    DS_UNDEFINED_LENGTH);
}

static int
w_item_begin(void *arg, const struct ds_elem *e)
{
	(void)e;
	return header(arg, DS_TAG_ITEM, DS_VR_NONE, DS_UNDEFINED_LENGTH);
}

static int
w_item_end(void *arg, const struct ds_elem *e)
{
	(void)e;
	return header(arg, DS_TAG_ITEM_END, DS_VR_NONE, 0);
}

static int
w_seq_end(void *arg, const struct ds_elem *e)
{
	(void)e;
	return header(arg, DS_TAG_SEQ_END, DS_VR_NONE, 0);
}

static const struct ds_callbacks writer_cb = {
	.element = w_element,
	.value_begin = w_value_begin,
	.value_chunk = w_value_chunk,
	.value_end = w_value_end,
	.seq_begin = w_seq_begin,
	.item_begin = w_item_begin,
	.item_end = w_item_end,
	.seq_end = w_seq_end,
};

const struct ds_callbacks *
ds_writer_callbacks(void)
{
	return &writer_cb;
}

/* One meta element (Explicit VR LE) into b; returns its size. */
static size_t
meta_elem(uint8_t *b, uint16_t el, const char *vr, const void *v, size_t len)
{
	size_t padded = len + (len & 1), n;

	ds_put16(b, 0x0002, 0);
	ds_put16(b + 2, el, 0);
	memcpy(b + 4, vr, 2);
	if (strcmp(vr, "OB") == 0) {
		b[6] = b[7] = 0;
		ds_put32(b + 8, (uint32_t)padded, 0);
		n = 12;
	} else {
		ds_put16(b + 6, (unsigned)padded, 0);
		n = 8;
	}
	memcpy(b + n, v, len);
	if (len & 1)
		b[n + len] = strcmp(vr, "UI") == 0 ? 0 : ' ';
	return n + padded;
}

int
ds_write_part10_header(ds_sink_fn *sink, void *arg, const char *sop_class,
    const char *sop_instance, const char *ts_uid)
{
	return ds_write_part10_header_ae(sink, arg, sop_class, sop_instance,
	    ts_uid, NULL);
}

int
ds_write_part10_header_ae(ds_sink_fn *sink, void *arg,
    const char *sop_class, const char *sop_instance, const char *ts_uid,
    const char *sending_ae)
{
	uint8_t b[132 + 12 + 6 * (12 + 66) + 8 + 16];
	size_t n = 132 + 12, m;

	if (strlen(sop_class) > 64 || strlen(sop_instance) > 64 ||
	    strlen(ts_uid) > 64 || (sending_ae != NULL &&
	    strlen(sending_ae) > 16))
		return -1;
	memset(b, 0, 128);
	memcpy(b + 128, "DICM", 4);
	n += meta_elem(b + n, 0x0001, "OB", "\0\1", 2);
	n += meta_elem(b + n, 0x0002, "UI", sop_class, strlen(sop_class));
	n += meta_elem(b + n, 0x0003, "UI", sop_instance, strlen(sop_instance));
	n += meta_elem(b + n, 0x0010, "UI", ts_uid, strlen(ts_uid));
	n += meta_elem(b + n, 0x0012, "UI", DS_IMPLEMENTATION_CLASS_UID,
	    strlen(DS_IMPLEMENTATION_CLASS_UID));
	n += meta_elem(b + n, 0x0013, "SH", DS_IMPLEMENTATION_VERSION,
	    strlen(DS_IMPLEMENTATION_VERSION));
	if (sending_ae != NULL && *sending_ae != '\0')
		n += meta_elem(b + n, 0x0017, "AE", sending_ae,
		    strlen(sending_ae));
	m = meta_elem(b + 132, 0x0000, "UL", "\0\0\0\0", 4);
	ds_put32(b + 132 + 8, (uint32_t)(n - 132 - m), 0);
	return sink(arg, b, n);
}
