/*
 * dimse_ident.h — the identifiers of C-FIND, C-MOVE and C-GET (PS3.4
 * C.4): a flat list of top-level keys, built from "Keyword=value"
 * arguments, encoded in a presentation context's transfer syntax, and
 * decoded from the identifiers a Q/R SCP returns. Pure: bytes in, bytes
 * out, no sockets (decoding runs the dataset parser).
 *
 * An identifier here holds at most DIMSE_IDENT_MAX elements, each with a
 * value of at most DIMSE_IDENT_VALUE_MAX bytes, kept in ascending tag
 * order (as they must be encoded). Values are the bytes of the wire form
 * without their padding; an empty value is a universal match (a return
 * key). Only the VRs a query can carry are built: the text VRs (AE AS CS
 * DA DS DT IS LO LT PN SH ST TM UC UI UR UT) and US, UL, SS, SL from
 * decimal text. A sequence key is sent empty (zero length: every item
 * matches, PS3.4 C.2.2.2.6).
 *
 * Decoding keeps the top-level elements whose value fits and whose VR is
 * a text VR (as bytes) or US/UL/SS/SL (as decimal text); sequences,
 * binary and oversized values, and an element whose tag is not above the
 * one before it (out of order, repeated: the first is kept) are skipped
 * and counted in .skipped.
 * Character sets are not converted: the bytes are as sent, and (0008,0005)
 * says how to read them (ds_charset.h).
 */
#ifndef VNAMIG_DIMSE_IDENT_H
#define VNAMIG_DIMSE_IDENT_H

#include <stddef.h>
#include <stdint.h>

#include "dimse/ds_parse.h"
#include "dimse/ds_vr.h"

#define DIMSE_IDENT_MAX		96
#define DIMSE_IDENT_VALUE_MAX	1024

#define DIMSE_TAG_QR_LEVEL	DS_TAG(0x0008, 0x0052)

struct dimse_ident_elem {
	uint32_t	 tag;
	enum ds_vr	 vr;
	uint16_t	 len;
	char		 value[DIMSE_IDENT_VALUE_MAX + 1];	/* NUL ended */
};

struct dimse_ident {
	unsigned		 n;
	unsigned		 skipped;	/* decode: elements not kept */
	struct dimse_ident_elem	 e[DIMSE_IDENT_MAX];
};

void dimse_ident_init(struct dimse_ident *id);

/*
 * dimse_ident_set: set tag to value (NULL or "": universal) with the
 * dictionary's VR (vr DS_VR_NONE) or the given one, replacing an earlier
 * value of the tag. Returns 0, or -1 with a message in err: an unknown
 * tag without a VR, a VR a query cannot carry, a value too long or with
 * a control character (other than ESC in a text VR), a number that is
 * not one for US/UL/SS/SL, a full identifier.
 */
int dimse_ident_set(struct dimse_ident *id, uint32_t tag, enum ds_vr vr,
    const char *value, char *err, size_t cap);

/*
 * dimse_ident_arg: one key from the command line: "KEY=VALUE" or "KEY"
 * (a return key), KEY being a dictionary keyword (PatientID) or a tag
 * as gggg,eeee or (gggg,eeee), optionally followed by ":VR" for tags
 * the dictionary does not know. 0, or -1 with a message in err.
 */
int dimse_ident_arg(struct dimse_ident *id, const char *arg, char *err,
    size_t cap);

/* dimse_ident_get: the value of tag (NUL ended), or NULL when absent. */
const char *dimse_ident_get(const struct dimse_ident *id, uint32_t tag);
/* dimse_ident_del: drop tag if present. */
void dimse_ident_del(struct dimse_ident *id, uint32_t tag);

/*
 * dimse_ident_encode: the identifier as a dataset in transfer syntax ts
 * (Implicit or Explicit VR, either byte order; not deflated): returns
 * its size, written to buf only when it fits in cap (cap 0 sizes).
 * Values are padded to even length (NUL for UI, else space).
 */
size_t dimse_ident_encode(const struct dimse_ident *id, const struct ds_ts *ts,
    uint8_t *buf, size_t cap);

/*
 * dimse_ident_decode: the identifier in b[0..n), a dataset in ts. 0, or
 * -1 with err (as the parser reports it) when it cannot be parsed.
 */
int dimse_ident_decode(const uint8_t *b, size_t n, const struct ds_ts *ts,
    struct dimse_ident *id, struct ds_error *err);

#endif
