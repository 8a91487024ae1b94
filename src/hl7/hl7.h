/*
 * hl7.h — HL7 v2 messages (ER7, the "pipe and hat" encoding): parsing with
 * limits, field paths, and original-mode ACKs. HL7 v2.5.1 chapter 2
 * (2.5 message construction, 2.7 escape sequences, 2.9 acknowledgment,
 * 2.15.5 ERR, 2.15.8 MSA, 2.15.9 MSH), table 0211 (MSH-18) and table 0357
 * (error codes). Pure: bytes in, values and ACK bytes out; no sockets, no
 * libevent, no store. Splitting a byte stream into MLLP frames is the
 * network glue's job: hl7_parse takes one message.
 *
 * Structure. A message is segments separated by CR (a lone LF or CRLF is
 * accepted too; empty lines are skipped). The first segment must be MSH:
 * "MSH" then the field separator (MSH-1), then the encoding characters
 * (MSH-2): component, repetition, escape, subcomponent, and optionally the
 * v2.7 truncation character; all distinct, printable ASCII, not
 * alphanumeric, not space. They are taken from the message, never assumed.
 * Every other segment is a 3-character ID ([A-Z][A-Z0-9][A-Z0-9]; Z
 * segments are like any other) followed by the field separator or the
 * end of the segment. A second MSH (a batch) is refused, and so is a NUL
 * byte anywhere (no HL7 data type allows one; \X00\ decodes to U+FFFD). The message is
 * split on delimiters first and unescaped afterwards, value by value.
 *
 * Character sets. Values come out in UTF-8. MSH-18 (its first repeat)
 * names the message's set: ASCII (or ISO IR6), 8859/1 .. 8859/9 (or
 * ISO IR100 for 8859/1), UNICODE UTF-8 (or UTF-8, ISO IR192); case and
 * surrounding spaces ignored. When MSH-18 is absent the limits' charset
 * applies (NULL: UTF-8, of which ASCII is a subset). Conversion reuses
 * dimse/ds_charset. A byte the set cannot decode (invalid UTF-8, >= 0x80
 * under ASCII, NUL) comes out as U+FFFD. An unsupported MSH-18 (UNICODE
 * UTF-16, 8859/15, ISO IR87 ...) does not fail the parse: ASCII still
 * decodes, other bytes become U+FFFD, and hl7_charset_error() says why,
 * so the caller can answer AE/AR if it cares.
 *
 * Threads: a message may be read by one thread at a time (the converter
 * keeps state); different messages are independent.
 */
#ifndef VNAMIG_HL7_H
#define VNAMIG_HL7_H

#include <stddef.h>
#include <stdint.h>

struct hl7_msg;

/*
 * Limits of one message. A zero field takes the default shown; a NULL
 * struct means all defaults. hl7_parse refuses a message beyond any of
 * them. A message holds a copy of its bytes, 8 bytes per field, 16 per
 * segment and about 5 KiB more (header values, charset tables).
 */
struct hl7_limits {
	uint32_t	 max_bytes;	/* 1 MiB; at most 256 MiB */
	uint32_t	 max_segments;	/* 10000 */
	uint32_t	 max_fields;	/* per segment, MSH-1 counted: 256 */
	uint32_t	 max_repeats;	/* per field: 1000 */
	uint32_t	 max_components;	/* per repeat: 100 */
	uint32_t	 max_subcomponents;	/* per component: 100 */
	const char	*charset;	/* table 0211 name used when MSH-18
					 * is absent; NULL: UTF-8 */
};

/*
 * An error, both ways: hl7_parse fills one to say what was wrong, and
 * hl7_ack takes one to write the ERR segment of an AE or AR. The location
 * follows ERR-2 (ERL): segment ID, the segment's position in the message
 * (1-based) and the field position; empty / 0 when unknown.
 */
#define HL7_ERR_TEXT	256
struct hl7_err {
	int		 code;		/* table 0357: 100 101 102 103 104
					 * 200 201 202 203 204 205 206 207 */
	char		 seg[4];	/* "PID", or "" */
	uint32_t	 seq;		/* segment position, or 0 */
	uint32_t	 field;		/* field position, or 0 */
	char		 text[HL7_ERR_TEXT];	/* for humans, UTF-8 */
};

/* Table 0357 codes (the ones this codec and the intake use). */
#define HL7_E_SEGMENT_SEQUENCE	100
#define HL7_E_REQUIRED_MISSING	101
#define HL7_E_DATA_TYPE		102
#define HL7_E_TABLE_VALUE	103
#define HL7_E_UNSUPPORTED_TYPE	200
#define HL7_E_UNSUPPORTED_EVENT	201
#define HL7_E_UNSUPPORTED_VERSION 203
#define HL7_E_DUPLICATE_KEY	205
#define HL7_E_INTERNAL		207

/*
 * hl7_parse: parse the message buf[0..len) (one MLLP payload, without
 * the 0x0B / 0x1C 0x0D framing; a leading UTF-8 BOM is skipped). The
 * message keeps its own copy: buf may be freed afterwards. Returns the
 * message (the caller frees it with hl7_free), or NULL when out of limits
 * or malformed; then, when err is not NULL, fills it: text says what and
 * where ("segment 4 (OBR), field 3: too many components in repeat 1
 * (more than 100) at byte 412"), code is 100 (no MSH first, a bad segment
 * ID, a second MSH), 101 (MSH truncated after MSH-2), 102 (bad MSH-1 or
 * MSH-2, a NUL byte) or 207 (over a limit), and seg/seq/field locate it. A missing final
 * segment terminator is accepted; an MSH that ends at MSH-2 is refused as
 * truncated. Required fields are not checked: that is the caller's
 * business (hl7_get, then an AE/AR with 101).
 */
struct hl7_msg *hl7_parse(const char *buf, size_t len,
    const struct hl7_limits *lim, struct hl7_err *err);

/*
 * hl7_parse_msh: parse only the first segment (MSH) of buf, with the same
 * limits and errors as hl7_parse, ignoring the rest. For answering a
 * message hl7_parse refused: its MSH is usually fine, and hl7_ack on the
 * result builds the AR/AE the sender needs to stop resending. NULL when
 * even the MSH is unusable (then no ACK can be addressed; close or log).
 */
struct hl7_msg *hl7_parse_msh(const char *buf, size_t len,
    const struct hl7_limits *lim, struct hl7_err *err);

/* hl7_free_: free m; NULL is a no-op. Use hl7_free(), which also sets
 * the pointer to NULL. */
void hl7_free_(struct hl7_msg *m);
#define hl7_free(m) do { hl7_free_(m); (m) = NULL; } while (0)

/*
 * Field paths, as in configuration files:
 *
 *   SEG-N        field N, first repeat, first component, first subcomp.
 *   SEG-N.C      component C (first subcomponent)
 *   SEG-N.C.S    subcomponent S of component C
 *   SEG-N#R      repeat R (1-based); also SEG-N#R.C and SEG-N#R.C.S
 *   P1|P2|...    fallback chain: the first path with a non-empty value
 *
 * So every path names one leaf (like HAPI's Terser): "PID-3" is the ID in
 * "12345^^^HOSP^MR", never the whole field with its separators. SEG is 3
 * characters [A-Z][A-Z0-9][A-Z0-9]; N, R, C and S are 1 to 9999 without
 * leading zeros; spaces are allowed around '|'; at most 16 alternatives
 * and 255 bytes. The FIRST segment with that ID is used (the 2nd OBR of
 * a multi-order ORM is not reachable). MSH-1 is the field separator
 * itself and MSH-2 the encoding characters, both returned literally (no
 * components, no unescaping), so MSH-3 is the first field after them.
 */

/* hl7_path_check: 0 when path is well formed, else -1 and a reason in err
 * ("'PID-0' at offset 4: field number must be 1 to 9999"). For
 * validating configured paths at load time. */
int hl7_path_check(const char *path, char *err, size_t errlen);

enum hl7_get_result {
	HL7_BADPATH = -2,	/* path malformed (see hl7_path_check) */
	HL7_TOOLONG = -1,	/* the value does not fit in cap */
	HL7_ABSENT = 0,		/* no segment/field/... or empty value */
	HL7_FOUND = 1,		/* out holds the value */
};

/*
 * hl7_lookup: the value at path, unescaped (\F\ \S\ \T\ \R\ \E\ give the
 * message's own delimiters, \Xhh..\ bytes in the message's charset,
 * \Cxxyy\ and \Mxxyyzz\ ISO 2022 escapes, \.br\ and \.sp\ a LF; \H\ \N\,
 * \Z..\ and other formatting commands are dropped; an unknown or
 * unterminated escape is kept literally) and converted to UTF-8. A value
 * that is empty after unescaping counts as absent. The HL7 null "" comes
 * back literally as the two characters "" (it means "delete" in updates).
 * out always holds a NUL-terminated string when cap > 0: the value when
 * FOUND, "" otherwise (never a truncated value). 3 * (raw length) + 1
 * bytes always suffice.
 */
enum hl7_get_result hl7_lookup(const struct hl7_msg *m, const char *path,
    char *out, size_t cap);

/* hl7_get: hl7_lookup for callers that need no reason: out when FOUND,
 * NULL otherwise (absent, empty, too long or bad path; out is ""). */
const char *hl7_get(const struct hl7_msg *m, const char *path, char *out,
    size_t cap);

/*
 * Header accessors: decoded as hl7_get does (first component), computed
 * at parse time (values longer than 255 bytes are cut at a character
 * boundary); "" when absent, never NULL; valid until m is freed.
 */
const char *hl7_msg_type(const struct hl7_msg *m);	/* MSH-9.1 "ORM" */
const char *hl7_trigger(const struct hl7_msg *m);	/* MSH-9.2 "O01" */
const char *hl7_structure(const struct hl7_msg *m);	/* MSH-9.3 */
const char *hl7_control_id(const struct hl7_msg *m);	/* MSH-10 */
const char *hl7_sending_app(const struct hl7_msg *m);	/* MSH-3.1 */
const char *hl7_sending_facility(const struct hl7_msg *m); /* MSH-4.1 */
const char *hl7_version(const struct hl7_msg *m);	/* MSH-12.1 */
const char *hl7_charset(const struct hl7_msg *m);	/* MSH-18 as sent */
/* Why MSH-18 (or the default) is unsupported, or NULL when it is fine. */
const char *hl7_charset_error(const struct hl7_msg *m);
/* hl7_charset_check: 0 when name is a supported table 0211 name. */
int hl7_charset_check(const char *name);

/* Segments in order: count, and the ID of segment i (0-based; i = 0 is
 * MSH), or NULL past the end. */
size_t hl7_segment_count(const struct hl7_msg *m);
const char *hl7_segment_name(const struct hl7_msg *m, size_t i);

/*
 * hl7_ack: build the original-mode acknowledgment of m into out:
 *
 *   MSH|^~\&|<MSH-5>|<MSH-6>|<MSH-3>|<MSH-4>|<timestamp>||ACK^<MSH-9.2>^ACK
 *       |<control_id>|<MSH-11>|<MSH-12>[||||||<MSH-18>]
 *   MSA|<code>|<MSH-10>[|<text>]
 *   [ERR ...]
 *
 * with m's own encoding characters (MSH-2 copied), each segment ended by
 * CR. Their fields are copied raw (already escaped in that encoding);
 * MSH-9 is "ACK" alone when MSH-9.2 is empty; MSH-18 only when m has it.
 * Our strings (timestamp, control_id, e->text) are escaped with m's
 * delimiters; control characters become \Xhh\, and characters outside
 * m's charset become '?' (UTF-8 kept under UTF-8, U+0080..U+00FF written
 * as bytes under 8859/1).
 *
 * code is "AA", "AE" or "AR". For AE/AR an ERR segment follows; its form
 * depends on MSH-12: v2.5 and later write
 *   ERR||<seg>^<seq>^<field>|<code>^<table text>^HL70357|E||||<text>
 * (ERR-2 location, ERR-3 code, ERR-4 severity, ERR-8 user message);
 * older or unknown versions write
 *   ERR|<seg>^<seq>^<field>^<code>&<table text>&HL70357
 * and put the text in MSA-3. e NULL for AE/AR means code 207 without a
 * location or text; e is ignored for AA.
 *
 * Returns the length of the whole ACK (without the NUL), like snprintf:
 * when it is >= cap, out holds a truncated, NUL-terminated prefix (cap >
 * 0) and the caller should retry with a bigger buffer. Returns 0 (out
 * "") when code is not AA/AE/AR, e->code is not a table 0357 code,
 * control_id or timestamp is NULL or empty.
 */
size_t hl7_ack(const struct hl7_msg *m, const char *code,
    const char *control_id, const char *timestamp, const struct hl7_err *e,
    char *out, size_t cap);

/* hl7_err_text: the table 0357 description of code ("Required field
 * missing"), or NULL when code is not in the table. */
const char *hl7_err_text(int code);

#endif
