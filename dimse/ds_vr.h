/*
 * ds_vr.h — DICOM value representations (PS3.5 6.2, 7.1.2).
 */
#ifndef VNAMIG_DS_VR_H
#define VNAMIG_DS_VR_H

#include <stdint.h>

/* Ordered alphabetically after DS_VR_NONE; the values are stable within a
 * build only (never stored). */
enum ds_vr {
	DS_VR_NONE = 0,	/* "no VR": terminator in lists, unknown in implicit */
	DS_VR_AE, DS_VR_AS, DS_VR_AT, DS_VR_CS, DS_VR_DA, DS_VR_DS, DS_VR_DT,
	DS_VR_FD, DS_VR_FL, DS_VR_IS, DS_VR_LO, DS_VR_LT, DS_VR_OB, DS_VR_OD,
	DS_VR_OF, DS_VR_OL, DS_VR_OV, DS_VR_OW, DS_VR_PN, DS_VR_SH, DS_VR_SL,
	DS_VR_SQ, DS_VR_SS, DS_VR_ST, DS_VR_SV, DS_VR_TM, DS_VR_UC, DS_VR_UI,
	DS_VR_UL, DS_VR_UN, DS_VR_UR, DS_VR_US, DS_VR_UT, DS_VR_UV,
	DS_VR_COUNT
};

/* ds_vr_from_chars: the VR named by two bytes ("OB"), or DS_VR_NONE. */
enum ds_vr ds_vr_from_chars(uint8_t a, uint8_t b);
/* ds_vr_name: "OB" etc.; "??" for DS_VR_NONE or out of range. */
const char *ds_vr_name(enum ds_vr vr);
/* ds_vr_long: explicit VR uses the 2 reserved + 4-byte length form
 * (OB OD OF OL OV OW SQ SV UC UN UR UT UV; PS3.5 7.1.2). */
int ds_vr_long(enum ds_vr vr);
/* ds_vr_unit: byte size of one binary value for byte swapping (2 for
 * US SS OW AT-halves, 4 for UL SL FL OF OL, 8 for FD OD SV UV OV), 1 for
 * text and OB/UN. AT swaps as two 2-byte halves (returns 2). */
unsigned ds_vr_unit(enum ds_vr vr);
/* ds_vr_text: the value is character data (AE AS CS DA DS DT IS LO LT PN
 * SH ST TM UC UI UR UT). */
int ds_vr_text(enum ds_vr vr);
/* ds_vr_pad: the padding byte for odd-length values of this VR: NUL for
 * UI and binary VRs, space for text. */
uint8_t ds_vr_pad(enum ds_vr vr);

/* ds_uint: the n-byte (1..8) unsigned integer at b, big-endian when be. */
static inline uint64_t
ds_uint(const uint8_t *b, unsigned n, int be)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)b[be ? n - 1 - i : i] << (8 * i);
	return v;
}

#endif
