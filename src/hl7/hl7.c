/*
 * hl7.c — see hl7.h. Parsing: the MSH header, segment and field
 * splitting with limits, MSH-18 and the header accessors.
 *
 * The parser makes one pass over a copy of the input. It validates MSH-1
 * and MSH-2 by hand, then for each segment (split on CR or LF, empty
 * lines skipped) checks the ID and records one span per field. Repeats,
 * components and subcomponents are not stored: they are counted against
 * the limits here and found again by scanning the field when a path asks
 * (hl7_path.c), which costs at most the field's length. Nothing recurses;
 * the structure is four fixed levels deep.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dimse/ds_charset.h"
#include "src/hl7/hl7.h"
#include "src/hl7/hl7_int.h"

#define DEF_BYTES	(1024u * 1024u)
#define MAX_BYTES	(256u * 1024u * 1024u)
#define DEF_SEGMENTS	10000u
#define DEF_FIELDS	256u
#define DEF_REPEATS	1000u
#define DEF_COMPONENTS	100u
#define DEF_SUBCOMPS	100u

/* The limits in force, defaults applied. */
struct lim {
	uint32_t	 bytes, segments, fields, repeats, comps, subs;
	const char	*charset;
};

/* The parser's state for one message. */
struct parse {
	struct hl7_msg	*m;
	struct lim	 lim;
	struct hl7_err	*err;
};

static void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		abort();
	return q;
}

static uint32_t
pick(uint32_t v, uint32_t def)
{
	return v != 0 ? v : def;
}

static void
set_limits(struct lim *l, const struct hl7_limits *in)
{
	static const struct hl7_limits none;

	if (in == NULL)
		in = &none;
	l->bytes = pick(in->max_bytes, DEF_BYTES);
	if (l->bytes > MAX_BYTES)
		l->bytes = MAX_BYTES;
	l->segments = pick(in->max_segments, DEF_SEGMENTS);
	l->fields = pick(in->max_fields, DEF_FIELDS);
	l->repeats = pick(in->max_repeats, DEF_REPEATS);
	l->comps = pick(in->max_components, DEF_COMPONENTS);
	l->subs = pick(in->max_subcomponents, DEF_SUBCOMPS);
	l->charset = in->charset;
}

/* fail: fill the caller's error (when it gave one); always returns -1. */
static int fail(struct parse *ps, int code, const char *seg, uint32_t seq,
    uint32_t field, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static int
fail(struct parse *ps, int code, const char *seg, uint32_t seq,
    uint32_t field, const char *fmt, ...)
{
	struct hl7_err *e = ps->err;
	va_list ap;

	if (e == NULL)
		return -1;
	e->code = code;
	snprintf(e->seg, sizeof(e->seg), "%s", seg);
	e->seq = seq;
	e->field = field;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
	return -1;
}

/* quote: a printable copy of s[0..n) (at most 16 bytes) for errors. */
static const char *
quote(char *dst, size_t cap, const char *s, size_t n)
{
	size_t i, o = 0;
	unsigned char c;

	for (i = 0; i < n && i < 16 && o + 5 < cap; i++) {
		c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\'')
			dst[o++] = (char)c;
		else
			o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
	}
	if (i < n && o + 4 < cap)
		dst[o++] = '.', dst[o++] = '.', dst[o++] = '.';
	dst[o] = '\0';
	return dst;
}

static int
is_eol(char c)
{
	return c == '\r' || c == '\n';
}

/* A segment's end: CR, as the standard says; LF only in a message with
 * no CR at all (some senders end lines so). In a message with CRs, an LF
 * inside a segment is data (a note's line break), not its end: taken for
 * one, the rest was an unknown segment, and the message refused for
 * ever. */
static int
is_term(char c, int cr)
{
	return cr ? c == '\r' : c == '\n';
}

/* A delimiter: printable ASCII, not a letter, digit or space. */
static int
delim_ok(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !(c >= '0' && c <= '9') &&
	    !(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z');
}

/* ID of a segment: [A-Z][A-Z0-9][A-Z0-9]. */
static int
seg_id_ok(const char *s)
{
	int i;

	if (!(s[0] >= 'A' && s[0] <= 'Z'))
		return 0;
	for (i = 1; i < 3; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9')))
			return 0;
	return 1;
}

/*
 * parse_msh_head: MSH, MSH-1 and MSH-2 of the segment [pos, end). Sets the
 * delimiters in m. Returns 0, or -1 (error filled).
 */
static int
parse_msh_head(struct parse *ps, size_t pos, size_t end)
{
	struct hl7_msg *m = ps->m;
	const char *b = m->buf;
	char q[80];
	size_t i, j, n;

	if (end - pos < 3 || memcmp(b + pos, "MSH", 3) != 0)
		return fail(ps, HL7_E_SEGMENT_SEQUENCE, "", 1, 0, "no MSH "
		    "segment at the start of the message (found '%s')",
		    quote(q, sizeof(q), b + pos, end - pos));
	if (end - pos == 3)
		return fail(ps, HL7_E_DATA_TYPE, "MSH", 1, 1, "MSH-1: field "
		    "separator missing (the segment ends after 'MSH' at byte "
		    "%zu)", pos + 3);
	if (!delim_ok((unsigned char)b[pos + 3]))
		return fail(ps, HL7_E_DATA_TYPE, "MSH", 1, 1, "MSH-1: field "
		    "separator 0x%02x is not a printable, non-alphanumeric "
		    "character", (unsigned char)b[pos + 3]);
	m->fs = b[pos + 3];
	for (i = pos + 4; i < end && b[i] != m->fs; i++)
		;
	n = i - (pos + 4);
	if (n < 4)
		return fail(ps, HL7_E_DATA_TYPE, "MSH", 1, 2, "MSH-2: "
		    "encoding characters too short ('%s', %zu of 4: component,"
		    " repetition, escape, subcomponent)",
		    quote(q, sizeof(q), b + pos + 4, n), n);
	if (n > 5)
		return fail(ps, HL7_E_DATA_TYPE, "MSH", 1, 2, "MSH-2: "
		    "encoding characters too long ('%s': 4, or 5 with the "
		    "truncation character)", quote(q, sizeof(q), b + pos + 4,
		    n));
	for (j = pos + 4; j < i; j++) {
		if (!delim_ok((unsigned char)b[j]))
			return fail(ps, HL7_E_DATA_TYPE, "MSH", 1, 2, "MSH-2: "
			    "encoding character 0x%02x at byte %zu is not a "
			    "printable, non-alphanumeric character",
			    (unsigned char)b[j], j);
		if (memchr(b + pos + 3, b[j], j - (pos + 3)) != NULL)
			return fail(ps, HL7_E_DATA_TYPE, "MSH", 1, 2, "MSH-2: "
			    "encoding character '%c' at byte %zu repeats the "
			    "field separator or an earlier one", b[j], j);
	}
	m->cs = b[pos + 4];
	m->rs = b[pos + 5];
	m->es = b[pos + 6];
	m->ss = b[pos + 7];
	m->tc = n == 5 ? b[pos + 8] : 0;
	if (i == end)
		return fail(ps, HL7_E_REQUIRED_MISSING, "MSH", 1, 3, "MSH "
		    "truncated: it ends after MSH-2 at byte %zu (no MSH-3 to "
		    "MSH-12)", end);
	return 0;
}

static void
add_field(struct hl7_msg *m, size_t off, size_t len)
{
	if (m->nfields == m->fields_cap) {
		m->fields_cap = m->fields_cap ? m->fields_cap * 2 : 64;
		m->fields = xrealloc(m->fields,
		    m->fields_cap * sizeof(*m->fields));
	}
	m->fields[m->nfields].off = (uint32_t)off;
	m->fields[m->nfields].len = (uint32_t)len;
	m->nfields++;
}

/* check_field: count the repeats, components and subcomponents of field
 * fno of segment sg against the limits; refuse NUL bytes, which no HL7
 * data type allows (so values and ACKs are C strings). */
static int
check_field(struct parse *ps, const struct hl7_seg *sg, uint32_t seq,
    uint32_t fno, size_t off, size_t len)
{
	const struct hl7_msg *m = ps->m;
	uint32_t reps = 1, comps = 1, subs = 1;
	size_t i;
	char c;

	for (i = off; i < off + len; i++) {
		c = m->buf[i];
		if (c == '\0')
			return fail(ps, HL7_E_DATA_TYPE, sg->name, seq, fno,
			    "segment %u (%s), field %u: NUL byte at byte %zu",
			    seq, sg->name, fno, i);
		if (c == m->rs) {
			if (++reps > ps->lim.repeats)
				return fail(ps, HL7_E_INTERNAL, sg->name, seq,
				    fno, "segment %u (%s), field %u: too many "
				    "repeats (more than %u) at byte %zu", seq,
				    sg->name, fno, ps->lim.repeats, i);
			comps = subs = 1;
		} else if (c == m->cs) {
			if (++comps > ps->lim.comps)
				return fail(ps, HL7_E_INTERNAL, sg->name, seq,
				    fno, "segment %u (%s), field %u: too many "
				    "components in repeat %u (more than %u) at "
				    "byte %zu", seq, sg->name, fno, reps,
				    ps->lim.comps, i);
			subs = 1;
		} else if (c == m->ss) {
			if (++subs > ps->lim.subs)
				return fail(ps, HL7_E_INTERNAL, sg->name, seq,
				    fno, "segment %u (%s), field %u: too many "
				    "subcomponents in component %u of repeat %u"
				    " (more than %u) at byte %zu", seq,
				    sg->name, fno, comps, reps, ps->lim.subs,
				    i);
		}
	}
	return 0;
}

/* parse_segment: the segment [pos, end), number seq (1-based). */
static int
parse_segment(struct parse *ps, size_t pos, size_t end, uint32_t seq)
{
	struct hl7_msg *m = ps->m;
	struct hl7_seg *sg;
	size_t start, e;
	uint32_t n = 0;
	int msh = seq == 1;
	char q[80];

	if (seq > ps->lim.segments)
		return fail(ps, HL7_E_INTERNAL, "", seq, 0, "too many segments "
		    "(more than %u) at byte %zu", ps->lim.segments, pos);
	if (end - pos < 3 || !seg_id_ok(m->buf + pos) ||
	    (end - pos > 3 && m->buf[pos + 3] != m->fs))
		return fail(ps, HL7_E_SEGMENT_SEQUENCE, "", seq, 0, "segment %u:"
		    " invalid segment ID at byte %zu (found '%s'; want 3 "
		    "characters A-Z 0-9 then '%c')", seq, pos,
		    quote(q, sizeof(q), m->buf + pos, end - pos), m->fs);
	if (!msh && memcmp(m->buf + pos, "MSH", 3) == 0)
		return fail(ps, HL7_E_SEGMENT_SEQUENCE, "MSH", seq, 0,
		    "segment %u: a second MSH at byte %zu (batches are not "
		    "supported)", seq, pos);
	if (m->nsegs == m->segs_cap) {
		m->segs_cap = m->segs_cap ? m->segs_cap * 2 : 16;
		m->segs = xrealloc(m->segs, m->segs_cap * sizeof(*m->segs));
	}
	sg = &m->segs[m->nsegs++];
	memcpy(sg->name, m->buf + pos, 3);
	sg->name[3] = '\0';
	sg->off = (uint32_t)pos;
	sg->field0 = (uint32_t)m->nfields;
	sg->nfields = 0;
	if (end - pos == 3)
		return 0;
	start = pos + 4;
	if (msh) {
		add_field(m, pos + 3, 1);	/* MSH-1: the separator */
		n = 1;
	}
	for (;;) {
		for (e = start; e < end && m->buf[e] != m->fs; e++)
			;
		if (++n > ps->lim.fields)
			return fail(ps, HL7_E_INTERNAL, sg->name, seq, n,
			    "segment %u (%s): too many fields (more than %u) at "
			    "byte %zu", seq, sg->name, ps->lim.fields, start);
		add_field(m, start, e - start);
		sg->nfields = n;
		if (!(msh && n == 2) &&
		    check_field(ps, sg, seq, n, start, e - start) == -1)
			return -1;
		if (e == end)
			return 0;
		start = e + 1;
	}
}

/* ---- character sets (table 0211 -> ds_charset terms) ---- */

static const struct cs_name {
	const char	*hl7;
	const char	*dicom;
	enum hl7_out_cs	 out;
} cs_names[] = {
	{ "ASCII",		"ISO_IR 6",	HL7_OUT_ASCII },
	{ "ISO IR6",		"ISO_IR 6",	HL7_OUT_ASCII },
	{ "8859/1",		"ISO_IR 100",	HL7_OUT_LATIN1 },
	{ "ISO IR100",		"ISO_IR 100",	HL7_OUT_LATIN1 },
	{ "8859/2",		"ISO_IR 101",	HL7_OUT_ASCII },
	{ "8859/3",		"ISO_IR 109",	HL7_OUT_ASCII },
	{ "8859/4",		"ISO_IR 110",	HL7_OUT_ASCII },
	{ "8859/5",		"ISO_IR 144",	HL7_OUT_ASCII },
	{ "8859/6",		"ISO_IR 127",	HL7_OUT_ASCII },
	{ "8859/7",		"ISO_IR 126",	HL7_OUT_ASCII },
	{ "8859/8",		"ISO_IR 138",	HL7_OUT_ASCII },
	{ "8859/9",		"ISO_IR 148",	HL7_OUT_ASCII },
	{ "UNICODE UTF-8",	"ISO_IR 192",	HL7_OUT_UTF8 },
	{ "UTF-8",		"ISO_IR 192",	HL7_OUT_UTF8 },
	{ "ISO IR192",		"ISO_IR 192",	HL7_OUT_UTF8 },
};

static const struct cs_name *
find_cs(const char *s)
{
	size_t a = 0, b = strlen(s), i, k, n;

	while (a < b && s[a] == ' ')
		a++;
	while (b > a && s[b - 1] == ' ')
		b--;
	n = b - a;
	for (i = 0; i < sizeof(cs_names) / sizeof(cs_names[0]); i++) {
		if (strlen(cs_names[i].hl7) != n)
			continue;
		for (k = 0; k < n; k++) {
			char c = s[a + k];

			if (c >= 'a' && c <= 'z')
				c = (char)(c - 'a' + 'A');
			if (c != cs_names[i].hl7[k])
				break;
		}
		if (k == n)
			return &cs_names[i];
	}
	return NULL;
}

int
hl7_charset_check(const char *name)
{
	return name != NULL && find_cs(name) != NULL ? 0 : -1;
}

/* setup_charset: m->dcs from MSH-18 (read as ASCII) or the default. */
static void
setup_charset(struct hl7_msg *m, const char *def)
{
	static const struct hl7_path p18 = { "MSH", 18, 1, 1, 1 };
	const struct cs_name *c = NULL;
	const char *s, *dicom;
	size_t n, i;
	int lit;

	if (hl7__raw(m, &p18, &s, &n, &lit) && n > 0) {
		for (i = 0; i < n && i + 1 < HL7_HDR_MAX; i++)
			m->hdr[HL7_H_CHARSET][i] = s[i] >= 0x20 &&
			    s[i] < 0x7f ? s[i] : '?';
		m->hdr[HL7_H_CHARSET][i] = '\0';
		c = find_cs(m->hdr[HL7_H_CHARSET]);
		if (c == NULL)
			snprintf(m->cs_err, sizeof(m->cs_err), "MSH-18: "
			    "unsupported character set '%.64s' (bytes above "
			    "0x7F decode as U+FFFD)", m->hdr[HL7_H_CHARSET]);
	} else if (def != NULL) {
		c = find_cs(def);
		if (c == NULL)
			snprintf(m->cs_err, sizeof(m->cs_err), "unsupported "
			    "default character set '%.64s' (bytes above 0x7F "
			    "decode as U+FFFD)", def);
	} else
		c = find_cs("UTF-8");
	if (c != NULL) {
		dicom = c->dicom;
		m->out_cs = c->out;
	} else {
		dicom = "ISO_IR 6";
		m->out_cs = HL7_OUT_ASCII;
	}
	m->dcs = ds_cs_new(dicom, strlen(dicom));
	if (m->cs_err[0] == '\0' && ds_cs_error(m->dcs) != NULL)
		snprintf(m->cs_err, sizeof(m->cs_err), "character set: %s",
		    ds_cs_error(m->dcs));
}

/* The header values behind the accessors. */
static void
setup_headers(struct hl7_msg *m)
{
	static const struct { enum hl7_hdr h; struct hl7_path p; } hp[] = {
		{ HL7_H_TYPE,		{ "MSH", 9, 1, 1, 1 } },
		{ HL7_H_TRIGGER,	{ "MSH", 9, 1, 2, 1 } },
		{ HL7_H_STRUCTURE,	{ "MSH", 9, 1, 3, 1 } },
		{ HL7_H_CONTROL,	{ "MSH", 10, 1, 1, 1 } },
		{ HL7_H_APP,		{ "MSH", 3, 1, 1, 1 } },
		{ HL7_H_FACILITY,	{ "MSH", 4, 1, 1, 1 } },
		{ HL7_H_VERSION,	{ "MSH", 12, 1, 1, 1 } },
	};
	const char *s;
	size_t i, n;
	int lit;

	for (i = 0; i < sizeof(hp) / sizeof(hp[0]); i++) {
		m->hdr[hp[i].h][0] = '\0';
		if (hl7__raw(m, &hp[i].p, &s, &n, &lit))
			(void)hl7__value(m, s, n, lit, m->hdr[hp[i].h],
			    HL7_HDR_MAX);
	}
}

static struct hl7_msg *
parse(const char *buf, size_t len, const struct hl7_limits *lim,
    struct hl7_err *err, int msh_only)
{
	struct parse ps;
	struct hl7_msg *m;
	size_t pos = 0, end, base = 0;
	uint32_t seq = 0;
	int cr;

	memset(&ps, 0, sizeof(ps));
	set_limits(&ps.lim, lim);
	ps.err = err;
	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if (buf == NULL)
		len = 0;
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		base = 3;	/* UTF-8 byte order mark */
	cr = len > 0 && memchr(buf, '\r', len) != NULL;
	if (msh_only) {
		for (end = base; end < len && !is_term(buf[end], cr); end++)
			;
		len = end;
	}
	if (len > ps.lim.bytes) {
		fail(&ps, HL7_E_INTERNAL, "", 0, 0, "message too large (%zu "
		    "bytes, limit %u)", len, ps.lim.bytes);
		return NULL;
	}
	m = xrealloc(NULL, sizeof(*m));
	memset(m, 0, sizeof(*m));
	m->buf = xrealloc(NULL, len + 1);
	if (len > 0)
		memcpy(m->buf, buf, len);
	m->buf[len] = '\0';
	m->len = len;
	ps.m = m;
	for (end = base; end < len && !is_term(buf[end], cr); end++)
		;
	if (parse_msh_head(&ps, base, end) == -1)
		goto bad;
	for (pos = base; pos < len; pos = end) {
		if (is_eol(buf[pos])) {	/* (CR LF, blank lines) */
			end = pos + 1;
			continue;
		}
		for (end = pos; end < len && !is_term(buf[end], cr); end++)
			;
		if (parse_segment(&ps, pos, end, ++seq) == -1)
			goto bad;
	}
	setup_charset(m, ps.lim.charset);
	setup_headers(m);
	return m;
bad:
	hl7_free_(m);
	return NULL;
}

struct hl7_msg *
hl7_parse(const char *buf, size_t len, const struct hl7_limits *lim,
    struct hl7_err *err)
{
	return parse(buf, len, lim, err, 0);
}

struct hl7_msg *
hl7_parse_msh(const char *buf, size_t len, const struct hl7_limits *lim,
    struct hl7_err *err)
{
	return parse(buf, len, lim, err, 1);
}

void
hl7_free_(struct hl7_msg *m)
{
	if (m == NULL)
		return;
	ds_cs_free(m->dcs);
	free(m->fields);
	free(m->segs);
	free(m->buf);
	free(m);
}

const struct hl7_seg *
hl7__seg(const struct hl7_msg *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nsegs; i++)
		if (memcmp(m->segs[i].name, name, 4) == 0)
			return &m->segs[i];
	return NULL;
}

const char *
hl7_msg_type(const struct hl7_msg *m)
{
	return m->hdr[HL7_H_TYPE];
}

const char *
hl7_trigger(const struct hl7_msg *m)
{
	return m->hdr[HL7_H_TRIGGER];
}

const char *
hl7_structure(const struct hl7_msg *m)
{
	return m->hdr[HL7_H_STRUCTURE];
}

const char *
hl7_control_id(const struct hl7_msg *m)
{
	return m->hdr[HL7_H_CONTROL];
}

const char *
hl7_sending_app(const struct hl7_msg *m)
{
	return m->hdr[HL7_H_APP];
}

const char *
hl7_sending_facility(const struct hl7_msg *m)
{
	return m->hdr[HL7_H_FACILITY];
}

const char *
hl7_version(const struct hl7_msg *m)
{
	return m->hdr[HL7_H_VERSION];
}

const char *
hl7_charset(const struct hl7_msg *m)
{
	return m->hdr[HL7_H_CHARSET];
}

const char *
hl7_charset_error(const struct hl7_msg *m)
{
	return m->cs_err[0] != '\0' ? m->cs_err : NULL;
}

size_t
hl7_segment_count(const struct hl7_msg *m)
{
	return m->nsegs;
}

const char *
hl7_segment_name(const struct hl7_msg *m, size_t i)
{
	return i < m->nsegs ? m->segs[i].name : NULL;
}
