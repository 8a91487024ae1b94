/*
 * dimse_cmd.c — the DIMSE command set codec (PS3.7 6.3, E.1), command
 * and status names (PS3.7 Annex C), the mandatory-field check (PS3.7
 * 9.3, 10.3) and the request/response builders. See dimse_cmd.h.
 *
 * The fields are described once, in tag order, by the table below; the
 * decoder looks tags up in it and the encoder walks it, so both agree on
 * tags, VRs and order by construction.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dimse/dimse_cmd.h"

#define GROUP_LENGTH_LEN	12	/* (0000,0000) UL: tag, length, value */
#define ELEM_HEADER_LEN		8	/* implicit VR: tag, 4-byte length */

enum kind { K_US, K_UI, K_AE, K_LO, K_AT };

struct fdef {
	uint16_t	 elem;		/* group is 0000 */
	uint32_t	 flag;		/* DIMSE_F_* */
	enum kind	 kind;
	const char	*keyword;
	size_t		 off;		/* of the value in struct dimse_cmd */
	size_t		 count_off;	/* K_AT: of the count */
};

#define F(e, fl, k, kw, m) \
	{ e, fl, k, kw, offsetof(struct dimse_cmd, m), 0 }
#define FAT(e, fl, kw, m, cnt) \
	{ e, fl, K_AT, kw, offsetof(struct dimse_cmd, m), \
	  offsetof(struct dimse_cmd, cnt) }

static const struct fdef fields[] = {
	F(0x0002, DIMSE_F_AFFECTED_CLASS, K_UI, "AffectedSOPClassUID",
	    affected_class),
	F(0x0003, DIMSE_F_REQUESTED_CLASS, K_UI, "RequestedSOPClassUID",
	    requested_class),
	F(0x0100, DIMSE_F_COMMAND, K_US, "CommandField", command),
	F(0x0110, DIMSE_F_MSGID, K_US, "MessageID", msgid),
	F(0x0120, DIMSE_F_MSGID_RSP, K_US, "MessageIDBeingRespondedTo",
	    msgid_rsp),
	F(0x0600, DIMSE_F_MOVE_DEST, K_AE, "MoveDestination", move_dest),
	F(0x0700, DIMSE_F_PRIORITY, K_US, "Priority", priority),
	F(0x0800, DIMSE_F_DATASET_TYPE, K_US, "CommandDataSetType",
	    dataset_type),
	F(0x0900, DIMSE_F_STATUS, K_US, "Status", status),
	FAT(0x0901, DIMSE_F_OFFENDING, "OffendingElement", offending,
	    n_offending),
	F(0x0902, DIMSE_F_ERROR_COMMENT, K_LO, "ErrorComment",
	    error_comment),
	F(0x0903, DIMSE_F_ERROR_ID, K_US, "ErrorID", error_id),
	F(0x1000, DIMSE_F_AFFECTED_INSTANCE, K_UI, "AffectedSOPInstanceUID",
	    affected_instance),
	F(0x1001, DIMSE_F_REQUESTED_INSTANCE, K_UI, "RequestedSOPInstanceUID",
	    requested_instance),
	F(0x1002, DIMSE_F_EVENT_TYPE, K_US, "EventTypeID", event_type),
	FAT(0x1005, DIMSE_F_ATTR_LIST, "AttributeIdentifierList", attr,
	    n_attr),
	F(0x1008, DIMSE_F_ACTION_TYPE, K_US, "ActionTypeID", action_type),
	F(0x1020, DIMSE_F_REMAINING, K_US, "NumberOfRemainingSuboperations",
	    remaining),
	F(0x1021, DIMSE_F_COMPLETED, K_US, "NumberOfCompletedSuboperations",
	    completed),
	F(0x1022, DIMSE_F_FAILED, K_US, "NumberOfFailedSuboperations", failed),
	F(0x1023, DIMSE_F_WARNING, K_US, "NumberOfWarningSuboperations",
	    warning),
	F(0x1030, DIMSE_F_MOVE_ORIG_AE, K_AE,
	    "MoveOriginatorApplicationEntityTitle", move_orig_ae),
	F(0x1031, DIMSE_F_MOVE_ORIG_MSGID, K_US, "MoveOriginatorMessageID",
	    move_orig_msgid),
};
#define NFIELDS	(sizeof(fields) / sizeof(fields[0]))

/* ---- field access through the table ---- */

static uint16_t *
us_at(struct dimse_cmd *c, const struct fdef *f)
{
	return (uint16_t *)(void *)((char *)c + f->off);
}

static uint16_t
us_get(const struct dimse_cmd *c, const struct fdef *f)
{
	uint16_t v;

	memcpy(&v, (const char *)c + f->off, sizeof(v));
	return v;
}

static char *
str_at(struct dimse_cmd *c, const struct fdef *f)
{
	return (char *)c + f->off;
}

static const char *
str_get(const struct dimse_cmd *c, const struct fdef *f)
{
	return (const char *)c + f->off;
}

static uint32_t *
at_list(struct dimse_cmd *c, const struct fdef *f, unsigned **count)
{
	*count = (unsigned *)(void *)((char *)c + f->count_off);
	return (uint32_t *)(void *)((char *)c + f->off);
}

static const uint32_t *
at_get(const struct dimse_cmd *c, const struct fdef *f, unsigned *count)
{
	memcpy(count, (const char *)c + f->count_off, sizeof(*count));
	return (const uint32_t *)(const void *)((const char *)c + f->off);
}

/* the capacity of a string field, terminator included */
static size_t
str_cap(const struct fdef *f)
{
	switch (f->kind) {
	case K_UI:
		return DIMSE_UID_MAX + 1;
	case K_AE:
		return DIMSE_AE_MAX + 1;
	case K_LO:
		return DIMSE_COMMENT_MAX + 1;
	default:
		return 0;
	}
}

static const struct fdef *
field_by_elem(uint16_t elem)
{
	size_t lo = 0, hi = NFIELDS;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (fields[mid].elem == elem)
			return &fields[mid];
		if (fields[mid].elem < elem)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *
dimse_tag_name(uint32_t tag)
{
	const struct fdef *f;

	if (tag == 0)
		return "CommandGroupLength";
	if (tag >> 16 != 0 || (f = field_by_elem(tag & 0xffff)) == NULL)
		return "";
	return f->keyword;
}

/* ---- errors ---- */

static int
fail(struct dimse_error *err, enum dimse_errcode code, uint32_t tag,
    size_t off, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int
fail(struct dimse_error *err, enum dimse_errcode code, uint32_t tag,
    size_t off, const char *fmt, ...)
{
	va_list ap;
	size_t o = 0;
	const char *kw;

	if (err == NULL)
		return -1;
	memset(err, 0, sizeof(*err));
	err->code = code;
	err->tag = tag;
	err->offset = off;
	if (tag != DIMSE_NO_TAG) {
		kw = dimse_tag_name(tag);
		o = (size_t)snprintf(err->msg, sizeof(err->msg),
		    "(%04x,%04x)%s%s at byte %zu: ", (unsigned)(tag >> 16),
		    (unsigned)(tag & 0xffff), *kw ? " " : "", kw, off);
		if (o >= sizeof(err->msg))
			o = sizeof(err->msg) - 1;
	}
	va_start(ap, fmt);
	vsnprintf(err->msg + o, sizeof(err->msg) - o, fmt, ap);
	va_end(ap);
	return -1;
}

/* show: b[0..n) for a message, non-printing bytes as \xNN, cut at 64. */
static const char *
show(char *out, size_t cap, const uint8_t *b, size_t n)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && i < 64 && o + 5 < cap; i++) {
		if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '"')
			out[o++] = (char)b[i];
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", b[i]);
	}
	if (n > 64 && o + 4 < cap) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

/* ---- value checks shared by decoder, encoder and builders ---- */

/* uid_problem: NULL when s[0..n) is a UID (PS3.5 9.1), else why not. */
static const char *
uid_problem(const char *s, size_t n)
{
	if (n == 0)
		return "empty";
	if (n > DIMSE_UID_MAX)
		return "over 64 characters";
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (i == 0 || i + 1 == n || s[i + 1] == '.')
				return "empty component";
		} else if (s[i] < '0' || s[i] > '9')
			return "a character other than a digit or a dot";
	}
	return NULL;
}

static int
ae_char_ok(char ch)
{
	return ch >= 0x20 && ch < 0x7f && ch != '\\';
}

/* ---- decoding ---- */

static uint16_t
le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/*
 * dec_ui: a UID value. One that is not a valid UID (PS3.5 9.1) is not a
 * reason to abort the association: the service answers it (0xC000), so
 * it is kept, printable (other bytes as '?'), flagged in c->invalid; one
 * over 64 characters is cut to 63 and a '?'. Never fails.
 */
static int
dec_ui(const uint8_t *v, uint32_t len, char *out, struct dimse_cmd *c,
    uint32_t flag)
{
	size_t n = len;

	while (n > 0 && (v[n - 1] == '\0' || v[n - 1] == ' '))
		n--;
	if (uid_problem((const char *)v, n) == NULL) {
		memcpy(out, v, n);
		out[n] = '\0';
		return 0;
	}
	if (n > DIMSE_UID_MAX) {
		/* cut, and marked so it stays invalid when re-read */
		for (size_t i = 0; i < DIMSE_UID_MAX - 1; i++)
			out[i] = v[i] >= 0x20 && v[i] < 0x7f ? (char)v[i] : '?';
		out[DIMSE_UID_MAX - 1] = '?';
		out[DIMSE_UID_MAX] = '\0';
		c->invalid |= flag;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = v[i] >= 0x20 && v[i] < 0x7f ? (char)v[i] : '?';
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	c->invalid |= flag;
	return 0;
}

static int
dec_ae(const uint8_t *v, uint32_t len, char *out, uint32_t tag, size_t off,
    struct dimse_error *err)
{
	size_t a = 0, n = len;
	char buf[300];

	if (len > DIMSE_AE_MAX)
		return fail(err, DIMSE_E_LENGTH, tag, off,
		    "value length %u, an AE title is at most 16", len);
	while (n > 0 && (v[n - 1] == '\0' || v[n - 1] == ' '))
		n--;
	while (a < n && v[a] == ' ')
		a++;
	for (size_t i = a; i < n; i++)
		if (!ae_char_ok((char)v[i]))
			return fail(err, DIMSE_E_VALUE, tag, off,
			    "\"%s\" is not an AE title (byte 0x%02x)",
			    show(buf, sizeof(buf), v, len), v[i]);
	memcpy(out, v + a, n - a);
	out[n - a] = '\0';
	return 0;
}

/* the comment is for logs and records: cut, trimmed, no control
 * characters, and ASCII: the command set is in the default repertoire, so
 * a byte over 0x7f names no character (taken as is, it was text that was
 * not UTF-8, which the JSON records it went into refused) */
static void
set_comment(char *out, const uint8_t *v, size_t len)
{
	size_t n = len < DIMSE_COMMENT_MAX ? len : DIMSE_COMMENT_MAX;

	while (n > 0 && (v[n - 1] == '\0' || v[n - 1] == ' '))
		n--;
	for (size_t i = 0; i < n; i++)
		out[i] = v[i] < 0x20 || v[i] >= 0x7f ? '?' : (char)v[i];
	out[n] = '\0';
}

static int
dec_field(const struct fdef *f, const uint8_t *v, uint32_t len,
    struct dimse_cmd *c, size_t off, struct dimse_error *err)
{
	uint32_t tag = f->elem, *list;
	unsigned *count;

	switch (f->kind) {
	case K_US:
		if (len != 2)
			return fail(err, DIMSE_E_LENGTH, tag, off,
			    "value length %u, a US needs 2", len);
		*us_at(c, f) = le16(v);
		break;
	case K_UI:
		(void)dec_ui(v, len, str_at(c, f), c, f->flag);
		break;
	case K_AE:
		if (dec_ae(v, len, str_at(c, f), tag, off, err) != 0)
			return -1;
		break;
	case K_LO:
		set_comment(str_at(c, f), v, len);
		break;
	case K_AT:
		if (len % 4 != 0)
			return fail(err, DIMSE_E_LENGTH, tag, off,
			    "value length %u, an AT list needs a multiple "
			    "of 4", len);
		if (len / 4 > DIMSE_MAX_AT)
			return fail(err, DIMSE_E_LIMIT, tag, off,
			    "%u tags, at most %d are taken", len / 4,
			    DIMSE_MAX_AT);
		list = at_list(c, f, &count);
		*count = len / 4;
		for (unsigned i = 0; i < *count; i++)
			list[i] = (uint32_t)le16(v + 4 * i) << 16 |
			    le16(v + 4 * i + 2);
		break;
	}
	c->present |= f->flag;
	return 0;
}

/* the group length element, at byte 0 */
static int
dec_group_length(const uint8_t *b, size_t n, struct dimse_error *err)
{
	uint32_t tag, len, gl;

	if (n < ELEM_HEADER_LEN)
		return fail(err, DIMSE_E_TRUNCATED, DIMSE_NO_TAG, 0,
		    "command set of %zu bytes: too short for its first "
		    "element header (8 bytes)", n);
	tag = (uint32_t)le16(b) << 16 | le16(b + 2);
	len = le32(b + 4);
	if (tag != 0)
		return fail(err, DIMSE_E_GROUP_LENGTH, DIMSE_NO_TAG, 0,
		    "the command set starts with (%04x,%04x), not "
		    "(0000,0000) CommandGroupLength (PS3.7 E.1)",
		    (unsigned)(tag >> 16), (unsigned)(tag & 0xffff));
	if (len != 4)
		return fail(err, DIMSE_E_GROUP_LENGTH, 0, 0,
		    "value length %u, a UL needs 4", len);
	if (n < GROUP_LENGTH_LEN)
		return fail(err, DIMSE_E_TRUNCATED, 0, 0,
		    "the value runs past the end of the command set (%zu "
		    "bytes)", n);
	gl = le32(b + 8);
	if (gl != n - GROUP_LENGTH_LEN)
		return fail(err, DIMSE_E_GROUP_LENGTH, 0, 0,
		    "says %u bytes follow, the command set has %zu after it",
		    gl, n - GROUP_LENGTH_LEN);
	return 0;
}

int
dimse_cmd_decode(const uint8_t *b, size_t n, struct dimse_cmd *c,
    struct dimse_error *err)
{
	uint32_t prev = 0, tag, len;
	const struct fdef *f;
	size_t o;

	memset(c, 0, sizeof(*c));
	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if (dec_group_length(b, n, err) != 0)
		return -1;
	for (o = GROUP_LENGTH_LEN; o < n; o += ELEM_HEADER_LEN + len) {
		if (n - o < ELEM_HEADER_LEN)
			return fail(err, DIMSE_E_TRUNCATED, DIMSE_NO_TAG, o,
			    "element header at byte %zu: %zu bytes left, 8 "
			    "needed", o, n - o);
		tag = (uint32_t)le16(b + o) << 16 | le16(b + o + 2);
		len = le32(b + o + 4);
		if (tag >> 16 != 0)
			return fail(err, DIMSE_E_NOT_COMMAND, tag, o,
			    "not a command element: a command set is group "
			    "0000 only (PS3.7 6.3)");
		if (tag <= prev)
			return fail(err, DIMSE_E_ORDER, tag, o, "%s "
			    "(0000,%04x): tags must ascend (PS3.5 7.1)",
			    tag == prev ? "repeats" : "follows",
			    (unsigned)prev);
		prev = tag;
		if (len > n - o - ELEM_HEADER_LEN)
			return fail(err, DIMSE_E_TRUNCATED, tag, o,
			    "value length %u runs past the end of the "
			    "command set (%zu byte%s left)", len,
			    n - o - ELEM_HEADER_LEN,
			    n - o - ELEM_HEADER_LEN == 1 ? "" : "s");
		if ((f = field_by_elem((uint16_t)tag)) == NULL)
			c->unknown++;
		else if (dec_field(f, b + o + ELEM_HEADER_LEN, len, c, o,
		    err) != 0)
			return -1;
	}
	if (!(c->present & DIMSE_F_COMMAND))
		return fail(err, DIMSE_E_MISSING, DIMSE_NO_TAG, n,
		    "no (0000,0100) CommandField in the command set");
	if (!(c->present & DIMSE_F_DATASET_TYPE))
		return fail(err, DIMSE_E_MISSING, DIMSE_NO_TAG, n,
		    "no (0000,0800) CommandDataSetType in the %s",
		    dimse_cmd_name(c->command));
	return 0;
}

/* ---- encoding ---- */

/* enc_len: the value length of present field f, or -1 if unencodable */
static long
enc_len(const struct dimse_cmd *c, const struct fdef *f)
{
	const char *s;
	unsigned count;
	size_t n;

	switch (f->kind) {
	case K_US:
		return 2;
	case K_UI:
		s = str_get(c, f);
		n = strnlen(s, str_cap(f));
		if (n == str_cap(f))
			return -1;
		if (c->invalid & f->flag) {	/* kept as decoded */
			for (size_t i = 0; i < n; i++)
				if (s[i] < 0x20 || s[i] == 0x7f)
					return -1;
		} else if (uid_problem(s, n) != NULL)
			return -1;
		return (long)(n + (n & 1));
	case K_AE:
		s = str_get(c, f);
		n = strnlen(s, str_cap(f));
		if (n == str_cap(f))
			return -1;
		for (size_t i = 0; i < n; i++)
			if (!ae_char_ok(s[i]))
				return -1;
		return DIMSE_AE_MAX;
	case K_LO:
		n = strnlen(str_get(c, f), str_cap(f));
		if (n == str_cap(f))
			return -1;
		return (long)(n + (n & 1));
	case K_AT:
		(void)at_get(c, f, &count);
		if (count > DIMSE_MAX_AT)
			return -1;
		return (long)count * 4;
	}
	return -1;
}

static uint8_t *
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	return p + 2;
}

static uint8_t *
put32(uint8_t *p, uint32_t v)
{
	return put16(put16(p, (uint16_t)v), (uint16_t)(v >> 16));
}

static uint8_t *
enc_field(const struct dimse_cmd *c, const struct fdef *f, uint32_t len,
    uint8_t *p)
{
	const uint32_t *list;
	const char *s;
	unsigned count;
	size_t n;

	p = put32(put16(put16(p, 0), f->elem), len);
	switch (f->kind) {
	case K_US:
		return put16(p, us_get(c, f));
	case K_UI:
	case K_AE:
	case K_LO:
		s = str_get(c, f);
		n = strlen(s);
		memcpy(p, s, n);
		memset(p + n, f->kind == K_UI ? '\0' : ' ', len - n);
		return p + len;
	case K_AT:
		list = at_get(c, f, &count);
		for (unsigned i = 0; i < count; i++)
			p = put16(put16(p, (uint16_t)(list[i] >> 16)),
			    (uint16_t)list[i]);
		return p;
	}
	return p;
}

size_t
dimse_cmd_encode(const struct dimse_cmd *c, uint8_t *buf, size_t cap)
{
	long len[NFIELDS];
	size_t need = GROUP_LENGTH_LEN;
	uint8_t *p;

	for (size_t i = 0; i < NFIELDS; i++) {
		if (!(c->present & fields[i].flag))
			continue;
		if ((len[i] = enc_len(c, &fields[i])) < 0)
			return 0;
		need += ELEM_HEADER_LEN + (size_t)len[i];
	}
	if (need > cap || buf == NULL)
		return need;
	p = put32(put32(put32(buf, 0), 4), (uint32_t)(need -
	    GROUP_LENGTH_LEN));
	for (size_t i = 0; i < NFIELDS; i++)
		if (c->present & fields[i].flag)
			p = enc_field(c, &fields[i], (uint32_t)len[i], p);
	return need;
}

int
dimse_cmd_equal(const struct dimse_cmd *a, const struct dimse_cmd *b)
{
	const uint32_t *la, *lb;
	unsigned na, nb;

	if (a->present != b->present || (a->invalid & a->present) !=
	    (b->invalid & b->present))
		return 0;
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct fdef *f = &fields[i];

		if (!(a->present & f->flag))
			continue;
		switch (f->kind) {
		case K_US:
			if (us_get(a, f) != us_get(b, f))
				return 0;
			break;
		case K_UI:
		case K_AE:
		case K_LO:
			if (strncmp(str_get(a, f), str_get(b, f),
			    str_cap(f)) != 0)
				return 0;
			break;
		case K_AT:
			la = at_get(a, f, &na);
			lb = at_get(b, f, &nb);
			if (na != nb || na > DIMSE_MAX_AT ||
			    memcmp(la, lb, na * sizeof(*la)) != 0)
				return 0;
			break;
		}
	}
	return 1;
}

int
dimse_cmd_has_dataset(const struct dimse_cmd *c)
{
	return (c->present & DIMSE_F_DATASET_TYPE) &&
	    c->dataset_type != DIMSE_DATASET_NONE;
}

/* ---- names ---- */

struct cmd_rule {
	uint16_t	 command;
	const char	*name;
	const char	*section;	/* of PS3.7 */
	uint32_t	 need;		/* beyond the common fields */
	int		 dataset;	/* 1 must, -1 must not, 0 either */
};

#define RQ_COMMON	(DIMSE_F_COMMAND | DIMSE_F_MSGID | DIMSE_F_DATASET_TYPE)
#define RSP_COMMON	(DIMSE_F_COMMAND | DIMSE_F_MSGID_RSP | \
			 DIMSE_F_DATASET_TYPE | DIMSE_F_STATUS)
#define REQ_SOP		(DIMSE_F_REQUESTED_CLASS | DIMSE_F_REQUESTED_INSTANCE)

static const struct cmd_rule rules[] = {
	{ DIMSE_C_STORE_RQ, "C-STORE-RQ", "9.3.1.1", RQ_COMMON |
	    DIMSE_F_AFFECTED_CLASS | DIMSE_F_AFFECTED_INSTANCE |
	    DIMSE_F_PRIORITY, 1 },
	{ DIMSE_C_GET_RQ, "C-GET-RQ", "9.3.3.1", RQ_COMMON |
	    DIMSE_F_AFFECTED_CLASS | DIMSE_F_PRIORITY, 1 },
	{ DIMSE_C_FIND_RQ, "C-FIND-RQ", "9.3.2.1", RQ_COMMON |
	    DIMSE_F_AFFECTED_CLASS | DIMSE_F_PRIORITY, 1 },
	{ DIMSE_C_MOVE_RQ, "C-MOVE-RQ", "9.3.4.1", RQ_COMMON |
	    DIMSE_F_AFFECTED_CLASS | DIMSE_F_PRIORITY | DIMSE_F_MOVE_DEST, 1 },
	{ DIMSE_C_ECHO_RQ, "C-ECHO-RQ", "9.3.5.1", RQ_COMMON |
	    DIMSE_F_AFFECTED_CLASS, -1 },
	{ DIMSE_N_EVENT_REPORT_RQ, "N-EVENT-REPORT-RQ", "10.3.1.1",
	    RQ_COMMON | DIMSE_F_AFFECTED_CLASS | DIMSE_F_AFFECTED_INSTANCE |
	    DIMSE_F_EVENT_TYPE, 0 },
	{ DIMSE_N_GET_RQ, "N-GET-RQ", "10.3.2.1", RQ_COMMON | REQ_SOP, -1 },
	{ DIMSE_N_SET_RQ, "N-SET-RQ", "10.3.3.1", RQ_COMMON | REQ_SOP, 1 },
	{ DIMSE_N_ACTION_RQ, "N-ACTION-RQ", "10.3.4.1", RQ_COMMON | REQ_SOP |
	    DIMSE_F_ACTION_TYPE, 0 },
	{ DIMSE_N_CREATE_RQ, "N-CREATE-RQ", "10.3.5.1", RQ_COMMON |
	    DIMSE_F_AFFECTED_CLASS, 0 },
	{ DIMSE_N_DELETE_RQ, "N-DELETE-RQ", "10.3.6.1", RQ_COMMON | REQ_SOP,
	    -1 },
	{ DIMSE_C_CANCEL_RQ, "C-CANCEL-RQ", "9.3.2.3", DIMSE_F_COMMAND |
	    DIMSE_F_MSGID_RSP | DIMSE_F_DATASET_TYPE, -1 },
	{ DIMSE_C_STORE_RSP, "C-STORE-RSP", "9.3.1.2", RSP_COMMON, -1 },
	{ DIMSE_C_GET_RSP, "C-GET-RSP", "9.3.3.2", RSP_COMMON, 0 },
	{ DIMSE_C_FIND_RSP, "C-FIND-RSP", "9.3.2.2", RSP_COMMON, 0 },
	{ DIMSE_C_MOVE_RSP, "C-MOVE-RSP", "9.3.4.2", RSP_COMMON, 0 },
	{ DIMSE_C_ECHO_RSP, "C-ECHO-RSP", "9.3.5.2", RSP_COMMON, -1 },
	{ DIMSE_N_EVENT_REPORT_RSP, "N-EVENT-REPORT-RSP", "10.3.1.2",
	    RSP_COMMON, 0 },
	{ DIMSE_N_GET_RSP, "N-GET-RSP", "10.3.2.2", RSP_COMMON, 0 },
	{ DIMSE_N_SET_RSP, "N-SET-RSP", "10.3.3.2", RSP_COMMON, 0 },
	{ DIMSE_N_ACTION_RSP, "N-ACTION-RSP", "10.3.4.2", RSP_COMMON, 0 },
	{ DIMSE_N_CREATE_RSP, "N-CREATE-RSP", "10.3.5.2", RSP_COMMON, 0 },
	{ DIMSE_N_DELETE_RSP, "N-DELETE-RSP", "10.3.6.2", RSP_COMMON, -1 },
};

static const struct cmd_rule *
rule_of(uint16_t command)
{
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i].command == command)
			return &rules[i];
	return NULL;
}

const char *
dimse_cmd_name(uint16_t command)
{
	const struct cmd_rule *r = rule_of(command);

	return r != NULL ? r->name : "unknown command";
}

int
dimse_cmd_check(const struct dimse_cmd *c, struct dimse_error *err)
{
	const struct cmd_rule *r;
	uint32_t missing;
	int ds;

	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if (!(c->present & DIMSE_F_COMMAND))
		return fail(err, DIMSE_E_MISSING, DIMSE_NO_TAG, 0,
		    "no (0000,0100) CommandField");
	if ((r = rule_of(c->command)) == NULL)
		return fail(err, DIMSE_E_COMMAND, DIMSE_NO_TAG, 0,
		    "unknown command field 0x%04x (PS3.7 E.1)", c->command);
	if ((missing = r->need & ~c->present) != 0) {
		for (size_t i = 0; i < NFIELDS; i++)
			if (missing & fields[i].flag)
				return fail(err, DIMSE_E_MISSING, DIMSE_NO_TAG,
				    0, "%s without (0000,%04x) %s (PS3.7 %s)",
				    r->name, fields[i].elem,
				    fields[i].keyword, r->section);
	}
	ds = dimse_cmd_has_dataset(c);
	if (r->dataset > 0 && !ds)
		return fail(err, DIMSE_E_COMMAND, DIMSE_NO_TAG, 0,
		    "%s with CommandDataSetType 0x0101: it needs a dataset "
		    "(PS3.7 %s)", r->name, r->section);
	if (r->dataset < 0 && ds)
		return fail(err, DIMSE_E_COMMAND, DIMSE_NO_TAG, 0,
		    "%s with CommandDataSetType 0x%04x: it has no dataset "
		    "(PS3.7 %s)", r->name, c->dataset_type, r->section);
	return 0;
}

/* ---- status (PS3.7 Annex C; PS3.4 B.2.3, C.4.1.1.4, C.4.2.1.5,
 * C.4.3.1.4) ---- */

enum dimse_status_class
dimse_status_class(uint16_t status)
{
	if (status == 0x0000)
		return DIMSE_CLASS_SUCCESS;
	if (status == 0x0001 || status == 0x0107 || status == 0x0116 ||
	    (status >= 0xB000 && status <= 0xBFFF))
		return DIMSE_CLASS_WARNING;
	if (status == 0xFE00)
		return DIMSE_CLASS_CANCEL;
	if (status == 0xFF00 || status == 0xFF01)
		return DIMSE_CLASS_PENDING;
	return DIMSE_CLASS_FAILURE;
}

const char *
dimse_status_class_name(enum dimse_status_class cl)
{
	switch (cl) {
	case DIMSE_CLASS_SUCCESS:
		return "Success";
	case DIMSE_CLASS_WARNING:
		return "Warning";
	case DIMSE_CLASS_FAILURE:
		return "Failure";
	case DIMSE_CLASS_CANCEL:
		return "Cancel";
	case DIMSE_CLASS_PENDING:
		return "Pending";
	}
	return "Failure";
}

struct status_name {
	uint16_t	 status;
	const char	*name;
};

static const struct status_name status_names[] = {
	{ 0x0000, "Success" },
	{ 0x0001, "Warning: Requested optional attributes are not "
	    "supported" },
	{ 0x0105, "Failure: No such attribute" },
	{ 0x0106, "Failure: Invalid attribute value" },
	{ 0x0107, "Warning: Attribute list error" },
	{ 0x0110, "Failure: Processing failure" },
	{ 0x0111, "Failure: Duplicate SOP instance" },
	{ 0x0112, "Failure: No such SOP instance" },
	{ 0x0113, "Failure: No such event type" },
	{ 0x0114, "Failure: No such argument" },
	{ 0x0115, "Failure: Invalid argument value" },
	{ 0x0116, "Warning: Attribute value out of range" },
	{ 0x0117, "Failure: Invalid object instance" },
	{ 0x0118, "Failure: No such SOP class" },
	{ 0x0119, "Failure: Class-instance conflict" },
	{ 0x0120, "Failure: Missing attribute" },
	{ 0x0121, "Failure: Missing attribute value" },
	{ 0x0122, "Refused: SOP class not supported" },
	{ 0x0123, "Failure: No such action" },
	{ 0x0124, "Refused: Not authorized" },
	{ 0x0210, "Failure: Duplicate invocation" },
	{ 0x0211, "Failure: Unrecognized operation" },
	{ 0x0212, "Failure: Mistyped argument" },
	{ 0x0213, "Failure: Resource limitation" },
	{ 0xA700, "Refused: Out of Resources" },
	{ 0xA701, "Refused: Out of Resources - Unable to calculate number "
	    "of matches" },
	{ 0xA702, "Refused: Out of Resources - Unable to perform "
	    "sub-operations" },
	{ 0xA801, "Refused: Move Destination unknown" },
	{ 0xA900, "Error: Data Set Does Not Match SOP Class" },
	{ 0xB000, "Warning: Coercion of Data Elements" },
	{ 0xB006, "Warning: Elements Discarded" },
	{ 0xB007, "Warning: Data Set Does Not Match SOP Class" },
	{ 0xC000, "Error: Cannot Understand" },
	{ 0xFE00, "Cancel" },
	{ 0xFF00, "Pending" },
	{ 0xFF01, "Pending: Warning, one or more optional keys were not "
	    "supported" },
};

/* The C-FIND, C-GET, C-MOVE meanings of codes C-STORE uses otherwise. */
static const struct status_name qr_names[] = {
	{ 0xA900, "Error: Identifier Does Not Match SOP Class" },
	{ 0xB000, "Warning: Sub-operations Complete - One or more Failures "
	    "or Warnings" },
	{ 0xC000, "Failed: Unable to process" },
};

const char *
dimse_status_name(uint16_t status)
{
	size_t lo = 0, hi = sizeof(status_names) / sizeof(status_names[0]);

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (status_names[mid].status == status)
			return status_names[mid].name;
		if (status_names[mid].status < status)
			lo = mid + 1;
		else
			hi = mid;
	}
	switch (status & 0xff00) {
	case 0xA700:
		return "Refused: Out of Resources";
	case 0xA900:
		return "Error: Data Set Does Not Match SOP Class";
	}
	if ((status & 0xf000) == 0xC000)
		return "Error: Cannot Understand";
	return dimse_status_class_name(dimse_status_class(status));
}

const char *
dimse_status_name_for(uint16_t command, uint16_t status)
{
	uint16_t rq = command & (uint16_t)~DIMSE_RSP_BIT;

	if (rq == DIMSE_C_FIND_RQ || rq == DIMSE_C_GET_RQ ||
	    rq == DIMSE_C_MOVE_RQ) {
		if ((status & 0xff00) == 0xA900)
			status = 0xA900;
		else if ((status & 0xf000) == 0xC000)
			status = 0xC000;
		for (size_t i = 0; i < sizeof(qr_names) / sizeof(qr_names[0]);
		    i++)
			if (qr_names[i].status == status)
				return qr_names[i].name;
	}
	return dimse_status_name(status);
}

/* ---- builders ---- */

static int
set_uid(char out[DIMSE_UID_MAX + 1], const char *uid)
{
	size_t n;

	if (uid == NULL || (n = strnlen(uid, DIMSE_UID_MAX + 1)) >
	    DIMSE_UID_MAX || uid_problem(uid, n) != NULL)
		return -1;
	memcpy(out, uid, n + 1);
	return 0;
}

static int
set_ae(char out[DIMSE_AE_MAX + 1], const char *ae)
{
	size_t a = 0, n;

	if (ae == NULL)
		return -1;
	n = strnlen(ae, 256);
	while (n > 0 && ae[n - 1] == ' ')
		n--;
	while (a < n && ae[a] == ' ')
		a++;
	if (n - a > DIMSE_AE_MAX || n == a)
		return -1;
	for (size_t i = a; i < n; i++)
		if (!ae_char_ok(ae[i]))
			return -1;
	memcpy(out, ae + a, n - a);
	out[n - a] = '\0';
	return 0;
}

static void
rq_init(struct dimse_cmd *rq, uint16_t command, uint16_t msgid, int dataset)
{
	memset(rq, 0, sizeof(*rq));
	rq->present = DIMSE_F_COMMAND | DIMSE_F_MSGID | DIMSE_F_DATASET_TYPE;
	rq->command = command;
	rq->msgid = msgid;
	rq->dataset_type = dataset ? DIMSE_DATASET_PRESENT : DIMSE_DATASET_NONE;
}

/* a C- request on an affected SOP class, with a priority */
static int
c_rq(uint16_t command, uint16_t msgid, const char *sop_class,
    uint16_t priority, struct dimse_cmd *rq)
{
	rq_init(rq, command, msgid, 1);
	rq->present |= DIMSE_F_AFFECTED_CLASS | DIMSE_F_PRIORITY;
	rq->priority = priority;
	return set_uid(rq->affected_class, sop_class);
}

void
dimse_echo_rq(uint16_t msgid, struct dimse_cmd *rq)
{
	rq_init(rq, DIMSE_C_ECHO_RQ, msgid, 0);
	rq->present |= DIMSE_F_AFFECTED_CLASS;
	memcpy(rq->affected_class, DIMSE_VERIFICATION_CLASS,
	    sizeof(DIMSE_VERIFICATION_CLASS));
}

int
dimse_store_rq(uint16_t msgid, const char *sop_class,
    const char *sop_instance, uint16_t priority, struct dimse_cmd *rq)
{
	if (c_rq(DIMSE_C_STORE_RQ, msgid, sop_class, priority, rq) != 0)
		return -1;
	rq->present |= DIMSE_F_AFFECTED_INSTANCE;
	return set_uid(rq->affected_instance, sop_instance);
}

int
dimse_find_rq(uint16_t msgid, const char *sop_class, uint16_t priority,
    struct dimse_cmd *rq)
{
	return c_rq(DIMSE_C_FIND_RQ, msgid, sop_class, priority, rq);
}

int
dimse_get_rq(uint16_t msgid, const char *sop_class, uint16_t priority,
    struct dimse_cmd *rq)
{
	return c_rq(DIMSE_C_GET_RQ, msgid, sop_class, priority, rq);
}

int
dimse_move_rq(uint16_t msgid, const char *sop_class, uint16_t priority,
    const char *move_dest, struct dimse_cmd *rq)
{
	if (c_rq(DIMSE_C_MOVE_RQ, msgid, sop_class, priority, rq) != 0)
		return -1;
	rq->present |= DIMSE_F_MOVE_DEST;
	return set_ae(rq->move_dest, move_dest);
}

void
dimse_cancel_rq(uint16_t msgid, struct dimse_cmd *rq)
{
	memset(rq, 0, sizeof(*rq));
	rq->present = DIMSE_F_COMMAND | DIMSE_F_MSGID_RSP |
	    DIMSE_F_DATASET_TYPE;
	rq->command = DIMSE_C_CANCEL_RQ;
	rq->msgid_rsp = msgid;
	rq->dataset_type = DIMSE_DATASET_NONE;
}

int
dimse_event_report_rq(uint16_t msgid, const char *sop_class,
    const char *sop_instance, uint16_t event_type, int has_dataset,
    struct dimse_cmd *rq)
{
	rq_init(rq, DIMSE_N_EVENT_REPORT_RQ, msgid, has_dataset);
	rq->present |= DIMSE_F_AFFECTED_CLASS | DIMSE_F_AFFECTED_INSTANCE |
	    DIMSE_F_EVENT_TYPE;
	rq->event_type = event_type;
	if (set_uid(rq->affected_class, sop_class) != 0)
		return -1;
	return set_uid(rq->affected_instance, sop_instance);
}

int
dimse_action_rq(uint16_t msgid, const char *sop_class,
    const char *sop_instance, uint16_t action_type, int has_dataset,
    struct dimse_cmd *rq)
{
	rq_init(rq, DIMSE_N_ACTION_RQ, msgid, has_dataset);
	rq->present |= DIMSE_F_REQUESTED_CLASS | DIMSE_F_REQUESTED_INSTANCE |
	    DIMSE_F_ACTION_TYPE;
	rq->action_type = action_type;
	if (set_uid(rq->requested_class, sop_class) != 0)
		return -1;
	return set_uid(rq->requested_instance, sop_instance);
}

int
dimse_store_rq_originator(struct dimse_cmd *rq, const char *ae,
    uint16_t msgid)
{
	if (set_ae(rq->move_orig_ae, ae) != 0)
		return -1;
	rq->present |= DIMSE_F_MOVE_ORIG_AE | DIMSE_F_MOVE_ORIG_MSGID;
	rq->move_orig_msgid = msgid;
	return 0;
}

int
dimse_rsp_init(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp)
{
	const uint32_t need = DIMSE_F_COMMAND | DIMSE_F_MSGID;

	if ((rq->present & need) != need || (rq->command & DIMSE_RSP_BIT) ||
	    rq->command == DIMSE_C_CANCEL_RQ || rule_of(rq->command) == NULL)
		return -1;
	memset(rsp, 0, sizeof(*rsp));
	rsp->present = DIMSE_F_COMMAND | DIMSE_F_MSGID_RSP |
	    DIMSE_F_DATASET_TYPE | DIMSE_F_STATUS;
	rsp->command = rq->command | DIMSE_RSP_BIT;
	rsp->msgid_rsp = rq->msgid;
	rsp->status = status;
	rsp->dataset_type = DIMSE_DATASET_NONE;
	if (rq->command == DIMSE_C_FIND_RQ &&
	    dimse_status_class(status) == DIMSE_CLASS_PENDING)
		rsp->dataset_type = DIMSE_DATASET_PRESENT;
	if (rq->present & DIMSE_F_AFFECTED_CLASS) {
		memcpy(rsp->affected_class, rq->affected_class,
		    sizeof(rsp->affected_class));
		if (rq->invalid & DIMSE_F_AFFECTED_CLASS)
			rsp->invalid |= DIMSE_F_AFFECTED_CLASS;
	} else if (rq->present & DIMSE_F_REQUESTED_CLASS) {
		memcpy(rsp->affected_class, rq->requested_class,
		    sizeof(rsp->affected_class));
		if (rq->invalid & DIMSE_F_REQUESTED_CLASS)
			rsp->invalid |= DIMSE_F_AFFECTED_CLASS;
	}
	if (rq->present & (DIMSE_F_AFFECTED_CLASS | DIMSE_F_REQUESTED_CLASS))
		rsp->present |= DIMSE_F_AFFECTED_CLASS;
	if (rq->present & DIMSE_F_AFFECTED_INSTANCE) {
		memcpy(rsp->affected_instance, rq->affected_instance,
		    sizeof(rsp->affected_instance));
		if (rq->invalid & DIMSE_F_AFFECTED_INSTANCE)
			rsp->invalid |= DIMSE_F_AFFECTED_INSTANCE;
	} else if (rq->present & DIMSE_F_REQUESTED_INSTANCE) {
		memcpy(rsp->affected_instance, rq->requested_instance,
		    sizeof(rsp->affected_instance));
		if (rq->invalid & DIMSE_F_REQUESTED_INSTANCE)
			rsp->invalid |= DIMSE_F_AFFECTED_INSTANCE;
	}
	if (rq->present & (DIMSE_F_AFFECTED_INSTANCE |
	    DIMSE_F_REQUESTED_INSTANCE))
		rsp->present |= DIMSE_F_AFFECTED_INSTANCE;
	rsp->present |= rq->present & (DIMSE_F_EVENT_TYPE |
	    DIMSE_F_ACTION_TYPE);
	rsp->event_type = rq->event_type;
	rsp->action_type = rq->action_type;
	return 0;
}

static int
rsp_of(uint16_t want, const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp)
{
	if (!(rq->present & DIMSE_F_COMMAND) || rq->command != want)
		return -1;
	return dimse_rsp_init(rq, status, rsp);
}

int
dimse_echo_rsp(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp)
{
	return rsp_of(DIMSE_C_ECHO_RQ, rq, status, rsp);
}

int
dimse_store_rsp(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp)
{
	return rsp_of(DIMSE_C_STORE_RQ, rq, status, rsp);
}

int
dimse_find_rsp(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp)
{
	return rsp_of(DIMSE_C_FIND_RQ, rq, status, rsp);
}

int
dimse_get_rsp(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp)
{
	return rsp_of(DIMSE_C_GET_RQ, rq, status, rsp);
}

int
dimse_move_rsp(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp)
{
	return rsp_of(DIMSE_C_MOVE_RQ, rq, status, rsp);
}

int
dimse_event_report_rsp(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp)
{
	return rsp_of(DIMSE_N_EVENT_REPORT_RQ, rq, status, rsp);
}

int
dimse_action_rsp(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp)
{
	return rsp_of(DIMSE_N_ACTION_RQ, rq, status, rsp);
}

static void
set_count(struct dimse_cmd *c, uint32_t flag, uint16_t *v, long n)
{
	if (n < 0)
		return;
	c->present |= flag;
	*v = n > 0xffff ? 0xffff : (uint16_t)n;
}

void
dimse_cmd_set_subops(struct dimse_cmd *rsp, long remaining, long completed,
    long failed, long warning)
{
	set_count(rsp, DIMSE_F_REMAINING, &rsp->remaining, remaining);
	set_count(rsp, DIMSE_F_COMPLETED, &rsp->completed, completed);
	set_count(rsp, DIMSE_F_FAILED, &rsp->failed, failed);
	set_count(rsp, DIMSE_F_WARNING, &rsp->warning, warning);
}

void
dimse_cmd_set_comment(struct dimse_cmd *rsp, const char *comment)
{
	set_comment(rsp->error_comment, (const uint8_t *)comment,
	    strnlen(comment, DIMSE_COMMENT_MAX + 1));
	rsp->present |= DIMSE_F_ERROR_COMMENT;
}
