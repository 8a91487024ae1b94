/*
 * wire.h — building DICOM wire bytes in unit tests: explicit and implicit
 * VR elements, either byte order, into a fixed buffer.
 */
#ifndef VNAMIG_T_WIRE_H
#define VNAMIG_T_WIRE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dimse/ds_parse.h"

#define WIRE_FN static __attribute__((unused))

struct buf {
	uint8_t	 b[1 << 18];	/* a private sequence over 64 KiB fits */
	size_t	 n;
};

WIRE_FN void
put(struct buf *w, const void *p, size_t n)
{
	if (n > sizeof(w->b) - w->n)
		abort();	/* a test that outgrew the buffer */
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

WIRE_FN void
u16(struct buf *w, unsigned v, int be)
{
	uint8_t b[2] = { (uint8_t)(be ? v >> 8 : v), (uint8_t)(be ? v : v >> 8) };

	put(w, b, 2);
}

WIRE_FN void
u32(struct buf *w, uint32_t v, int be)
{
	u16(w, be ? v >> 16 : v & 0xffff, be);
	u16(w, be ? v & 0xffff : v >> 16, be);
}

WIRE_FN void
tag(struct buf *w, uint32_t t, int be)
{
	u16(w, t >> 16, be);
	u16(w, t & 0xffff, be);
}

/* explicit VR element; len = value length or DS_UNDEFINED_LENGTH */
WIRE_FN void
ex(struct buf *w, uint32_t t, const char *vr, const void *v, uint32_t len,
    int be)
{
	int lng = strchr("OB OD OF OL OV OW SQ SV UC UN UR UT UV", vr[0]) &&
	    strstr("OB OD OF OL OV OW SQ SV UC UN UR UT UV", vr) != NULL;

	tag(w, t, be);
	put(w, vr, 2);
	if (lng) {
		u16(w, 0, be);
		u32(w, len, be);
	} else
		u16(w, len, be);
	if (v != NULL && len != DS_UNDEFINED_LENGTH)
		put(w, v, len);
}

WIRE_FN void
im(struct buf *w, uint32_t t, const void *v, uint32_t len)
{
	tag(w, t, 0);
	u32(w, len, 0);
	if (v != NULL && len != DS_UNDEFINED_LENGTH)
		put(w, v, len);
}

#endif
