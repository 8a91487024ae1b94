/*
 * ds_vr.c — see ds_vr.h.  One row per VR: its two characters, whether
 * explicit VR gives it the long (2 reserved + 4-byte) length form, whether
 * its value is character data, and its byte-swapping unit (PS3.5 6.2,
 * 7.1.2, 7.3).
 */
#include "config.h"

#include <stddef.h>

#include "dimse/ds_vr.h"

#define LONG	0x01	/* 4-byte length in explicit VR */
#define TEXT	0x02	/* character data; space-padded but for UI */

struct vr_info {
	char		name[3];
	uint8_t		flags;
	uint8_t		unit;
};

static const struct vr_info vrs[DS_VR_COUNT] = {
	[DS_VR_NONE] =	{ "??", 0,		1 },
	[DS_VR_AE] =	{ "AE", TEXT,		1 },
	[DS_VR_AS] =	{ "AS", TEXT,		1 },
	[DS_VR_AT] =	{ "AT", 0,		2 },
	[DS_VR_CS] =	{ "CS", TEXT,		1 },
	[DS_VR_DA] =	{ "DA", TEXT,		1 },
	[DS_VR_DS] =	{ "DS", TEXT,		1 },
	[DS_VR_DT] =	{ "DT", TEXT,		1 },
	[DS_VR_FD] =	{ "FD", 0,		8 },
	[DS_VR_FL] =	{ "FL", 0,		4 },
	[DS_VR_IS] =	{ "IS", TEXT,		1 },
	[DS_VR_LO] =	{ "LO", TEXT,		1 },
	[DS_VR_LT] =	{ "LT", TEXT,		1 },
	[DS_VR_OB] =	{ "OB", LONG,		1 },
	[DS_VR_OD] =	{ "OD", LONG,		8 },
	[DS_VR_OF] =	{ "OF", LONG,		4 },
	[DS_VR_OL] =	{ "OL", LONG,		4 },
	[DS_VR_OV] =	{ "OV", LONG,		8 },
	[DS_VR_OW] =	{ "OW", LONG,		2 },
	[DS_VR_PN] =	{ "PN", TEXT,		1 },
	[DS_VR_SH] =	{ "SH", TEXT,		1 },
	[DS_VR_SL] =	{ "SL", 0,		4 },
	[DS_VR_SQ] =	{ "SQ", LONG,		1 },
	[DS_VR_SS] =	{ "SS", 0,		2 },
	[DS_VR_ST] =	{ "ST", TEXT,		1 },
	[DS_VR_SV] =	{ "SV", LONG,		8 },
	[DS_VR_TM] =	{ "TM", TEXT,		1 },
	[DS_VR_UC] =	{ "UC", LONG | TEXT,	1 },
	[DS_VR_UI] =	{ "UI", TEXT,		1 },
	[DS_VR_UL] =	{ "UL", 0,		4 },
	[DS_VR_UN] =	{ "UN", LONG,		1 },
	[DS_VR_UR] =	{ "UR", LONG | TEXT,	1 },
	[DS_VR_US] =	{ "US", 0,		2 },
	[DS_VR_UT] =	{ "UT", LONG | TEXT,	1 },
	[DS_VR_UV] =	{ "UV", LONG,		8 },
};

/* info: the row for vr, or the DS_VR_NONE row when out of range. */
static const struct vr_info *
info(enum ds_vr vr)
{
	if ((unsigned)vr >= DS_VR_COUNT)
		return &vrs[DS_VR_NONE];
	return &vrs[vr];
}

/* The rows after DS_VR_NONE are in alphabetical order: binary search. */
enum ds_vr
ds_vr_from_chars(uint8_t a, uint8_t b)
{
	unsigned	 key = (unsigned)a << 8 | b, k;
	size_t		 lo = DS_VR_NONE + 1, hi = DS_VR_COUNT, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		k = (unsigned)(uint8_t)vrs[mid].name[0] << 8 |
		    (uint8_t)vrs[mid].name[1];
		if (k == key)
			return (enum ds_vr)mid;
		if (k < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return DS_VR_NONE;
}

const char *
ds_vr_name(enum ds_vr vr)
{
	return info(vr)->name;
}

int
ds_vr_long(enum ds_vr vr)
{
	return (info(vr)->flags & LONG) != 0;
}

unsigned
ds_vr_unit(enum ds_vr vr)
{
	return info(vr)->unit;
}

int
ds_vr_text(enum ds_vr vr)
{
	return (info(vr)->flags & TEXT) != 0;
}

uint8_t
ds_vr_pad(enum ds_vr vr)
{
	if (vr == DS_VR_UI || !ds_vr_text(vr))
		return '\0';
	return ' ';
}
