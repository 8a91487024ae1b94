/*
 * hl7_int.h — the parsed message, shared by hl7.c (parsing), hl7_path.c
 * (paths and values) and hl7_ack.c. Not for use outside src/hl7.
 */
#ifndef VNAMIG_HL7_INT_H
#define VNAMIG_HL7_INT_H

#include <stddef.h>
#include <stdint.h>

#include "src/hl7/hl7.h"

struct ds_charset;

/* A byte range of the message's copy. */
struct hl7_span {
	uint32_t	 off;
	uint32_t	 len;
};

/* A segment: its ID and fields[field0 .. field0 + nfields) = field 1..n
 * (for MSH, field 1 is the separator byte itself and field 2 MSH-2). */
struct hl7_seg {
	char		 name[4];
	uint32_t	 off;		/* byte offset of the ID */
	uint32_t	 field0;
	uint32_t	 nfields;
};

/* How our own text is written into an ACK (see hl7_ack). */
enum hl7_out_cs {
	HL7_OUT_ASCII,
	HL7_OUT_LATIN1,
	HL7_OUT_UTF8,
};

enum hl7_hdr {
	HL7_H_TYPE, HL7_H_TRIGGER, HL7_H_STRUCTURE, HL7_H_CONTROL,
	HL7_H_APP, HL7_H_FACILITY, HL7_H_VERSION, HL7_H_CHARSET,
	HL7_H_COUNT
};
#define HL7_HDR_MAX	256

struct hl7_msg {
	char			*buf;		/* copy of the input, NUL added */
	size_t			 len;
	char			 fs, cs, rs, es, ss, tc; /* tc 0: none */
	struct hl7_seg		*segs;
	size_t			 nsegs, segs_cap;
	struct hl7_span		*fields;
	size_t			 nfields, fields_cap;
	struct ds_charset	*dcs;
	enum hl7_out_cs		 out_cs;
	char			 cs_err[160];
	char			 hdr[HL7_H_COUNT][HL7_HDR_MAX];
};

/*
 * A parsed path element. field >= 1; rep, comp, sub >= 1 from paths, or 0
 * for "all of it" (the whole field, repeat or component, raw), which only
 * the ACK builder uses.
 */
struct hl7_path {
	char		 seg[4];
	uint32_t	 field, rep, comp, sub;
};

/* hl7__seg: the first segment with that ID, or NULL. */
const struct hl7_seg *hl7__seg(const struct hl7_msg *m, const char *name);

/*
 * hl7__raw: the raw (still escaped) bytes p names, into *s / *n. Returns
 * 1 when the element exists (possibly empty), 0 when absent; *literal is
 * set for MSH-1 and MSH-2, which are never split nor unescaped.
 */
int hl7__raw(const struct hl7_msg *m, const struct hl7_path *p,
    const char **s, size_t *n, int *literal);

/*
 * hl7__value: unescape and decode the raw bytes s[0..n) of m into out
 * (UTF-8, NUL-terminated when cap > 0). Returns FOUND, ABSENT (empty
 * result) or TOOLONG; with TOOLONG out keeps the prefix that fitted, cut
 * at a character boundary.
 */
enum hl7_get_result hl7__value(const struct hl7_msg *m, const char *s,
    size_t n, int literal, char *out, size_t cap);

#endif
