/*
 * t_dict.c — the generated data dictionary and UID registry: the tables
 * are sorted and their indices consistent, the lookups find exact,
 * repeating-group, group-length and private tags as PS3.5/PS3.6 say, and
 * every VR has the properties of PS3.5 6.2 and 7.1.2.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "dimse/ds_dict.h"
#include "dimse/ds_uid.h"
#include "dimse/ds_vr.h"
#include "t/unit/tap.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define TAG(g, e)	((uint32_t)(g) << 16 | (uint32_t)(e))

/* ---- the tables themselves ---- */

static void
dict_sorted(void)
{
	const struct ds_dict_table	*t = &ds_dict_table;
	const struct ds_dict_entry	*e = t->entries, *a, *b;
	size_t				 i, j;
	uint32_t			 m;
	int				 sorted = 1, masks = 1, reps = 1;
	int				 overlap = 0, kw = 1, self = 1;

	ok(t->nexact > 4000 && t->nentries > t->nexact &&
	    ds_dict_count() == t->nentries, "dictionary has %zu exact + %zu "
	    "repeating entries", t->nexact, t->nentries - t->nexact);
	for (i = 1; i < t->nexact; i++)
		if (e[i - 1].tag >= e[i].tag)
			sorted = 0;
	ok(sorted, "exact entries strictly sorted by tag");
	for (i = 0; i < t->nexact; i++)
		if (e[i].mask != 0xffffffff)
			masks = 0;
	ok(masks, "exact entries have mask 0xffffffff");
	for (i = t->nexact; i < t->nentries; i++) {
		if ((e[i].tag & ~e[i].mask) != 0 || e[i].mask == 0xffffffff ||
		    (i > t->nexact && e[i - 1].tag >= e[i].tag) ||
		    (e[i].tag >> 16 & 1))
			reps = 0;
		for (j = i + 1; j < t->nentries; j++) {
			m = e[i].mask & e[j].mask;
			if (((e[i].tag ^ e[j].tag) & m) == 0)
				overlap = 1;
		}
	}
	ok(reps, "repeaters sorted, even groups, x-digits zero in the tag");
	ok(!overlap, "no two repeaters match the same tag");
	for (i = 1; i < t->nkeywords; i++) {
		a = &e[t->by_keyword[i - 1]];
		b = &e[t->by_keyword[i]];
		if (a->keyword[0] == '\0' ||
		    strcmp(a->keyword, b->keyword) >= 0)
			kw = 0;
	}
	ok(kw && t->nkeywords > 4000, "keyword index strictly sorted, "
	    "%zu keywords", t->nkeywords);
	for (i = 0; i < t->nexact; i++)
		if (ds_dict_by_tag(e[i].tag) != &e[i] || (e[i].keyword[0] &&
		    ds_dict_by_keyword(e[i].keyword) != &e[i]))
			self = 0;
	ok(self, "every exact entry found by its tag and its keyword");
}

static void
uid_sorted(void)
{
	const struct ds_uid_table	*t = &ds_uid_table;
	const struct ds_uid_entry	*e = t->entries, *a, *b;
	const struct ds_uid_entry *const *list;
	size_t				 i, n, s = 0;
	int				 sorted = 1, kw = 1, st = 1;
	int				 self = 1;

	for (i = 1; i < t->nentries; i++)
		if (strcmp(e[i - 1].uid, e[i].uid) >= 0)
			sorted = 0;
	ok(sorted && ds_uid_count() == t->nentries && t->nentries > 400,
	    "%zu UIDs strictly sorted", t->nentries);
	for (i = 1; i < t->nkeywords; i++) {
		a = &e[t->by_keyword[i - 1]];
		b = &e[t->by_keyword[i]];
		if (strcmp(a->keyword, b->keyword) >= 0)
			kw = 0;
	}
	ok(kw, "UID keyword index strictly sorted");
	for (i = 0; i < t->nentries; i++) {
		if (ds_uid_lookup(e[i].uid) != &e[i] || (e[i].keyword[0] &&
		    ds_uid_by_keyword(e[i].keyword) != &e[i]))
			self = 0;
		if (!e[i].storage)
			continue;
		if (s >= t->nstorage || t->storage[s] != &e[i] ||
		    e[i].kind != DS_UID_SOP_CLASS)
			st = 0;
		s++;
	}
	ok(self, "every UID found by itself and its keyword");
	list = ds_uid_storage(&n);
	ok(st && s == t->nstorage && list == t->storage && n == s,
	    "storage list = the flagged SOP classes, in table order");
	ok(n > 100, "%zu storage SOP classes (> 100)", n);
}

/* ---- lookups by tag ---- */

/* entry: check tag gives keyword and VR alternatives v0, v1. */
static void
entry(uint32_t tag, const char *kw, enum ds_vr v0, enum ds_vr v1,
    const char *vm)
{
	const struct ds_dict_entry *e = ds_dict_by_tag(tag);

	if (!ok(e != NULL, "(%04x,%04x) found", tag >> 16, tag & 0xffff)) {
		ok(0, "(%04x,%04x) keyword", tag >> 16, tag & 0xffff);
		ok(0, "(%04x,%04x) VR", tag >> 16, tag & 0xffff);
		return;
	}
	is_str(e->keyword, kw, "(%04x,%04x) keyword", tag >> 16,
	    tag & 0xffff);
	ok(e->vr[0] == v0 && e->vr[1] == v1 && (v1 == DS_VR_NONE ||
	    e->vr[2] == DS_VR_NONE) && strcmp(e->vm, vm) == 0,
	    "%s: VR %s%s%s, VM %s", kw, v0 ? ds_vr_name(v0) : "none",
	    v1 ? " or " : "",
	    v1 ? ds_vr_name(v1) : "", vm);
}

static void
by_tag(void)
{
	const struct ds_dict_entry *e, *f;

	entry(TAG(0x0010, 0x0010), "PatientName", DS_VR_PN, DS_VR_NONE, "1");
	entry(TAG(0x7fe0, 0x0010), "PixelData", DS_VR_OB, DS_VR_OW, "1");
	entry(TAG(0x0028, 0x0106), "SmallestImagePixelValue", DS_VR_US,
	    DS_VR_SS, "1");
	entry(TAG(0x0000, 0x0900), "Status", DS_VR_US, DS_VR_NONE, "1");
	entry(TAG(0x0002, 0x0010), "TransferSyntaxUID", DS_VR_UI, DS_VR_NONE,
	    "1");
	entry(TAG(0x0008, 0x1115), "ReferencedSeriesSequence", DS_VR_SQ,
	    DS_VR_NONE, "1");
	entry(TAG(0x0002, 0x0000), "FileMetaInformationGroupLength", DS_VR_UL,
	    DS_VR_NONE, "1");
	entry(TAG(0x6000, 0x3000), "OverlayData", DS_VR_OB, DS_VR_OW, "1");
	entry(TAG(0x6002, 0x3000), "OverlayData", DS_VR_OB, DS_VR_OW, "1");
	entry(TAG(0x601e, 0x0050), "OverlayOrigin", DS_VR_SS, DS_VR_NONE, "2");
	entry(TAG(0x5000, 0x0005), "CurveDimensions", DS_VR_US, DS_VR_NONE,
	    "1");
	entry(TAG(0x7f00, 0x0010), "VariablePixelData", DS_VR_OB, DS_VR_OW,
	    "1");
	entry(TAG(0x0020, 0x3105), "SourceImageIDs", DS_VR_CS, DS_VR_NONE,
	    "1-n");
	entry(TAG(0xfffe, 0xe000), "Item", DS_VR_NONE, DS_VR_NONE, "1");
	entry(TAG(0xfffe, 0xe00d), "ItemDelimitationItem", DS_VR_NONE,
	    DS_VR_NONE, "1");
	entry(TAG(0xfffe, 0xe0dd), "SequenceDelimitationItem", DS_VR_NONE,
	    DS_VR_NONE, "1");

	e = ds_dict_by_tag(TAG(0x0028, 0x1200));
	ok(e != NULL && e->vr[0] == DS_VR_US && e->vr[1] == DS_VR_SS &&
	    e->vr[2] == DS_VR_OW && e->retired,
	    "(0028,1200) US or SS or OW, retired");
	e = ds_dict_by_tag(TAG(0x6000, 0x3000));
	ok(e != NULL && e->tag == TAG(0x6000, 0x3000) &&
	    e->mask == 0xff00ffff, "(60xx,3000) pattern 60003000/ff00ffff");
	e = ds_dict_by_tag(TAG(0x5000, 0x0005));
	ok(e != NULL && e->retired, "curve (5000,0005) is retired");
	e = ds_dict_by_tag(TAG(0x0000, 0x0001));
	ok(e != NULL && e->retired &&
	    strcmp(e->keyword, "CommandLengthToEnd") == 0,
	    "(0000,0001) CommandLengthToEnd retired");
	e = ds_dict_by_tag(TAG(0x0010, 0x0010));
	ok(e != NULL && !e->retired && strcmp(e->name, "Patient's Name") == 0,
	    "(0010,0010) named Patient's Name, not retired");

	e = ds_dict_by_tag(TAG(0x0009, 0x0000));
	ok(e != NULL && e->vr[0] == DS_VR_UL &&
	    strcmp(e->keyword, "GenericGroupLength") == 0,
	    "(0009,0000) generic group length UL");
	f = ds_dict_by_tag(TAG(0x6000, 0x0000));
	ok(f == e, "(6000,0000) the same shared group length entry");
	e = ds_dict_by_tag(TAG(0x0009, 0x0010));
	ok(e != NULL && e->vr[0] == DS_VR_LO &&
	    strcmp(e->keyword, "PrivateCreator") == 0,
	    "(0009,0010) private creator LO");
	f = ds_dict_by_tag(TAG(0x7fe1, 0x00ff));
	ok(f == e, "(7FE1,00FF) private creator too");
	ok(ds_dict_by_tag(TAG(0x0009, 0x1001)) == NULL, "(0009,1001) NULL");
	ok(ds_dict_by_tag(TAG(0x0009, 0x0100)) == NULL, "(0009,0100) NULL");
	ok(ds_dict_by_tag(TAG(0x0009, 0x0005)) == NULL, "(0009,0005) NULL");
	ok(ds_dict_by_tag(TAG(0x6001, 0x3000)) == NULL,
	    "(6001,3000) private, not overlay data");
	ok(ds_dict_by_tag(TAG(0x5001, 0x0005)) == NULL,
	    "(5001,0005) private, not a curve");
	ok(ds_dict_by_tag(TAG(0x0010, 0x9999)) == NULL, "(0010,9999) unknown");
}

/* ---- keywords ---- */

static const struct {
	const char	*kw;
	uint32_t	 tag;
} keywords[] = {
	{ "CommandGroupLength",		0x00000000 },
	{ "AffectedSOPClassUID",	0x00000002 },
	{ "CommandField",		0x00000100 },
	{ "MessageID",			0x00000110 },
	{ "Status",			0x00000900 },
	{ "MediaStorageSOPClassUID",	0x00020002 },
	{ "TransferSyntaxUID",		0x00020010 },
	{ "SpecificCharacterSet",	0x00080005 },
	{ "SOPClassUID",		0x00080016 },
	{ "SOPInstanceUID",		0x00080018 },
	{ "StudyDate",			0x00080020 },
	{ "AccessionNumber",		0x00080050 },
	{ "Modality",			0x00080060 },
	{ "PatientName",		0x00100010 },
	{ "PatientID",			0x00100020 },
	{ "PatientBirthDate",		0x00100030 },
	{ "StudyInstanceUID",		0x0020000d },
	{ "SeriesInstanceUID",		0x0020000e },
	{ "Rows",			0x00280010 },
	{ "Columns",			0x00280011 },
	{ "BitsAllocated",		0x00280100 },
	{ "PixelData",			0x7fe00010 },
	{ "OverlayData",		0x60003000 },
	{ "CurveData",			0x50003000 },
	{ "Item",			0xfffee000 },
};

static void
by_keyword(void)
{
	const struct ds_dict_entry	*e, *f;
	size_t				 i;

	for (i = 0; i < NELEM(keywords); i++) {
		e = ds_dict_by_keyword(keywords[i].kw);
		f = ds_dict_by_tag(keywords[i].tag);
		ok(e != NULL && e == f && e->tag == keywords[i].tag,
		    "keyword %s <-> (%04x,%04x)", keywords[i].kw,
		    keywords[i].tag >> 16, keywords[i].tag & 0xffff);
	}
	ok(ds_dict_by_keyword("NoSuchKeyword") == NULL, "unknown keyword");
	ok(ds_dict_by_keyword("patientname") == NULL, "keywords are "
	    "case-sensitive");
	ok(ds_dict_by_keyword("") == NULL, "empty keyword");
	ok(ds_dict_by_keyword(NULL) == NULL, "NULL keyword");
	ok(ds_dict_by_keyword("GenericGroupLength") == NULL,
	    "the shared group length is not a keyword");
}

/* ---- UIDs ---- */

static void
uid(const char *u, const char *name, enum ds_uid_kind kind,
    unsigned storage, unsigned retired)
{
	const struct ds_uid_entry *e = ds_uid_lookup(u);

	ok(e != NULL && strcmp(e->name, name) == 0 && e->kind == kind &&
	    e->storage == storage && e->retired == retired,
	    "%s: %s, kind %d, storage %u, retired %u", u, name, kind, storage,
	    retired);
}

static void
uids(void)
{
	const struct ds_uid_entry *e;

	uid("1.2.840.10008.1.2", "Implicit VR Little Endian",
	    DS_UID_TRANSFER_SYNTAX, 0, 0);
	uid("1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian",
	    DS_UID_TRANSFER_SYNTAX, 0, 0);
	uid("1.2.840.10008.1.2.2", "Explicit VR Big Endian",
	    DS_UID_TRANSFER_SYNTAX, 0, 1);
	uid("1.2.840.10008.5.1.4.1.1.2", "CT Image Storage", DS_UID_SOP_CLASS,
	    1, 0);
	uid("1.2.840.10008.5.1.4.1.1.6", "Ultrasound Image Storage",
	    DS_UID_SOP_CLASS, 1, 1);
	uid("1.2.840.10008.5.1.4.1.1.1.1",
	    "Digital X-Ray Image Storage - For Presentation", DS_UID_SOP_CLASS,
	    1, 0);
	uid("1.2.840.10008.1.1", "Verification SOP Class", DS_UID_SOP_CLASS,
	    0, 0);
	uid("1.2.840.10008.1.20.1", "Storage Commitment Push Model SOP Class",
	    DS_UID_SOP_CLASS, 0, 0);
	uid("1.2.840.10008.1.20.1.1",
	    "Storage Commitment Push Model SOP Instance",
	    DS_UID_WELL_KNOWN_INSTANCE, 0, 0);
	uid("1.2.840.10008.5.1.1.9",
	    "Basic Grayscale Print Management Meta SOP Class",
	    DS_UID_META_SOP_CLASS, 0, 0);
	uid("1.2.840.10008.4.2", "Storage Service Class", DS_UID_OTHER, 0, 0);

	e = ds_uid_by_keyword("ImplicitVRLittleEndian");
	is_str(e != NULL ? e->uid : NULL, "1.2.840.10008.1.2",
	    "keyword ImplicitVRLittleEndian");
	e = ds_uid_by_keyword("CTImageStorage");
	is_str(e != NULL ? e->uid : NULL, "1.2.840.10008.5.1.4.1.1.2",
	    "keyword CTImageStorage");
	ok(ds_uid_by_keyword("ctimagestorage") == NULL &&
	    ds_uid_by_keyword(NULL) == NULL, "unknown UID keywords");
	is_str(ds_uid_name("1.2.840.10008.1.2.1"), "Explicit VR Little Endian",
	    "ds_uid_name explicit LE");
	is_str(ds_uid_name("1.2.3.4"), "unknown UID", "ds_uid_name unknown");
	is_str(ds_uid_name(NULL), "unknown UID", "ds_uid_name NULL");
	ok(ds_uid_lookup("1.2.840.10008.1.2 ") == NULL &&
	    ds_uid_lookup("1.2.840.10008.1.") == NULL &&
	    ds_uid_lookup("") == NULL && ds_uid_lookup(NULL) == NULL,
	    "padded, truncated, empty and NULL UIDs are not found");
	ok(ds_uid_storage(NULL) != NULL, "ds_uid_storage(NULL) is safe");
}

/* ---- VRs ---- */

static const struct {
	enum ds_vr	 vr;
	const char	*name;
	int		 lng, text;
	unsigned	 unit;
	uint8_t		 pad;
} vrs[] = {
	{ DS_VR_AE, "AE", 0, 1, 1, ' ' },  { DS_VR_AS, "AS", 0, 1, 1, ' ' },
	{ DS_VR_AT, "AT", 0, 0, 2, 0 },    { DS_VR_CS, "CS", 0, 1, 1, ' ' },
	{ DS_VR_DA, "DA", 0, 1, 1, ' ' },  { DS_VR_DS, "DS", 0, 1, 1, ' ' },
	{ DS_VR_DT, "DT", 0, 1, 1, ' ' },  { DS_VR_FD, "FD", 0, 0, 8, 0 },
	{ DS_VR_FL, "FL", 0, 0, 4, 0 },    { DS_VR_IS, "IS", 0, 1, 1, ' ' },
	{ DS_VR_LO, "LO", 0, 1, 1, ' ' },  { DS_VR_LT, "LT", 0, 1, 1, ' ' },
	{ DS_VR_OB, "OB", 1, 0, 1, 0 },    { DS_VR_OD, "OD", 1, 0, 8, 0 },
	{ DS_VR_OF, "OF", 1, 0, 4, 0 },    { DS_VR_OL, "OL", 1, 0, 4, 0 },
	{ DS_VR_OV, "OV", 1, 0, 8, 0 },    { DS_VR_OW, "OW", 1, 0, 2, 0 },
	{ DS_VR_PN, "PN", 0, 1, 1, ' ' },  { DS_VR_SH, "SH", 0, 1, 1, ' ' },
	{ DS_VR_SL, "SL", 0, 0, 4, 0 },    { DS_VR_SQ, "SQ", 1, 0, 1, 0 },
	{ DS_VR_SS, "SS", 0, 0, 2, 0 },    { DS_VR_ST, "ST", 0, 1, 1, ' ' },
	{ DS_VR_SV, "SV", 1, 0, 8, 0 },    { DS_VR_TM, "TM", 0, 1, 1, ' ' },
	{ DS_VR_UC, "UC", 1, 1, 1, ' ' },  { DS_VR_UI, "UI", 0, 1, 1, 0 },
	{ DS_VR_UL, "UL", 0, 0, 4, 0 },    { DS_VR_UN, "UN", 1, 0, 1, 0 },
	{ DS_VR_UR, "UR", 1, 1, 1, ' ' },  { DS_VR_US, "US", 0, 0, 2, 0 },
	{ DS_VR_UT, "UT", 1, 1, 1, ' ' },  { DS_VR_UV, "UV", 1, 0, 8, 0 },
};

static void
vr(void)
{
	enum ds_vr	 v;
	size_t		 i;
	int		 all = 1;

	is_int(NELEM(vrs), DS_VR_COUNT - 1, "the test covers every VR");
	for (i = 0; i < NELEM(vrs); i++) {
		const char *n = vrs[i].name;

		v = ds_vr_from_chars((uint8_t)n[0], (uint8_t)n[1]);
		ok(v == vrs[i].vr && strcmp(ds_vr_name(v), n) == 0,
		    "VR %s: from_chars and name round-trip", n);
		ok(ds_vr_long(vrs[i].vr) == vrs[i].lng &&
		    ds_vr_text(vrs[i].vr) == vrs[i].text &&
		    ds_vr_unit(vrs[i].vr) == vrs[i].unit &&
		    ds_vr_pad(vrs[i].vr) == vrs[i].pad,
		    "VR %s: long %d, text %d, unit %u, pad 0x%02x", n,
		    vrs[i].lng, vrs[i].text, vrs[i].unit, vrs[i].pad);
	}
	for (i = 0; i < 0x10000; i++) {
		const char *n;

		v = ds_vr_from_chars((uint8_t)(i >> 8), (uint8_t)i);
		n = ds_vr_name(v);

		if (v != DS_VR_NONE && ((uint8_t)n[0] != i >> 8 ||
		    (uint8_t)n[1] != (i & 0xff)))
			all = 0;
	}
	ok(all, "no two-byte value maps to the wrong VR");
	ok(ds_vr_from_chars('o', 'b') == DS_VR_NONE &&
	    ds_vr_from_chars('Z', 'Z') == DS_VR_NONE &&
	    ds_vr_from_chars(0, 0) == DS_VR_NONE &&
	    ds_vr_from_chars('?', '?') == DS_VR_NONE,
	    "lower case, ZZ, NULs and ?? are not VRs");
	is_str(ds_vr_name(DS_VR_NONE), "??", "name of DS_VR_NONE");
	is_str(ds_vr_name(DS_VR_COUNT), "??", "name of DS_VR_COUNT");
	is_str(ds_vr_name((enum ds_vr)-1), "??", "name of -1");
	ok(!ds_vr_long(DS_VR_NONE) && !ds_vr_text(DS_VR_NONE) &&
	    ds_vr_unit(DS_VR_NONE) == 1 && ds_vr_pad(DS_VR_NONE) == 0 &&
	    ds_vr_unit(DS_VR_COUNT) == 1, "DS_VR_NONE and out of range: "
	    "short, binary, unit 1, NUL pad");
}

int
main(void)
{
	dict_sorted();
	uid_sorted();
	by_tag();
	by_keyword();
	uids();
	vr();
	return done_testing();
}
