/*
 * dul_pdu.c — the DICOM Upper Layer PDU codec (PS3.8 9.3, Annex D; PS3.7
 * D.3.3). See dul_pdu.h for the contract.
 *
 * Decoding walks the PDU with cursors over [off, end) of one level of
 * items. A length from the wire is compared with what is left of its
 * parent before anything is added to an offset, so no arithmetic can wrap
 * and nothing past pdu[n) is read. Encoding writes through a bounded
 * writer that counts what it would write once the buffer is full, so one
 * pass both sizes and fills.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dul/dul_pdu.h"

/* ---- errors ---- */

static void
classify(struct dul_error *e)
{
	int rq = e->pdu_type == DUL_ASSOCIATE_RQ;

	e->reply = DUL_REPLY_ABORT;
	e->rj_result = e->rj_source = e->rj_reason = 0;
	switch (e->code) {
	case DUL_E_PDU_TYPE:
		e->abort_reason = DUL_ABORT_UNRECOGNIZED_PDU;
		break;
	case DUL_E_UNEXPECTED:
		e->abort_reason = DUL_ABORT_UNEXPECTED_PARAM;
		break;
	case DUL_E_TOO_LONG:
		/* over a negotiated maximum is a protocol error (D.1); over
		 * a local limit for other PDUs is just refused */
		e->abort_reason = e->pdu_type == DUL_P_DATA_TF ?
		    DUL_ABORT_INVALID_PARAM : DUL_ABORT_NOT_SPECIFIED;
		break;
	case DUL_E_LIMIT:
		e->abort_reason = DUL_ABORT_NOT_SPECIFIED;
		break;
	default:
		e->abort_reason = DUL_ABORT_INVALID_PARAM;
		break;
	}
	if (!rq)
		return;
	switch (e->code) {
	case DUL_E_VERSION:
		e->rj_source = DUL_RJ_SOURCE_ACSE;
		e->rj_reason = DUL_RJ_ACSE_PROTOCOL_VERSION;
		break;
	case DUL_E_APP_CONTEXT:
		e->rj_source = DUL_RJ_SOURCE_USER;
		e->rj_reason = DUL_RJ_USER_APP_CONTEXT;
		break;
	case DUL_E_CALLING_AE:
		e->rj_source = DUL_RJ_SOURCE_USER;
		e->rj_reason = DUL_RJ_USER_CALLING_AE;
		break;
	case DUL_E_CALLED_AE:
		e->rj_source = DUL_RJ_SOURCE_USER;
		e->rj_reason = DUL_RJ_USER_CALLED_AE;
		break;
	case DUL_E_LIMIT:
		e->rj_source = DUL_RJ_SOURCE_USER;
		e->rj_reason = DUL_RJ_USER_NO_REASON;
		break;
	default:
		return;
	}
	e->reply = DUL_REPLY_REJECT;
	e->rj_result = DUL_RJ_PERMANENT;
}

static int
seterr(struct dul_error *e, enum dul_errcode code, uint8_t pdu_type,
    uint8_t item_type, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int
seterr(struct dul_error *e, enum dul_errcode code, uint8_t pdu_type,
    uint8_t item_type, size_t off, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	memset(e, 0, sizeof(*e));
	e->code = code;
	e->pdu_type = pdu_type;
	e->item_type = item_type;
	e->offset = off;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	classify(e);
	return -1;
}

static const char *
item_name(uint8_t t)
{
	switch (t) {
	case DUL_ITEM_APP_CONTEXT:	return "application context item";
	case DUL_ITEM_PCTX_RQ:
	case DUL_ITEM_PCTX_AC:		return "presentation context item";
	case DUL_ITEM_ABSTRACT:		return "abstract syntax sub-item";
	case DUL_ITEM_TRANSFER:		return "transfer syntax sub-item";
	case DUL_ITEM_USER_INFO:	return "user information item";
	case DUL_ITEM_MAX_LENGTH:	return "maximum length sub-item";
	case DUL_ITEM_IMPL_CLASS:
		return "implementation class UID sub-item";
	case DUL_ITEM_ASYNC:
		return "asynchronous operations window sub-item";
	case DUL_ITEM_ROLE:		return "role selection sub-item";
	case DUL_ITEM_IMPL_VERSION:
		return "implementation version name sub-item";
	case DUL_ITEM_EXTNEG:
		return "SOP class extended negotiation sub-item";
	case DUL_ITEM_COMMON_EXTNEG:
		return "SOP class common extended negotiation sub-item";
	case DUL_ITEM_IDENTITY_RQ:	return "user identity sub-item";
	case DUL_ITEM_IDENTITY_AC:
		return "user identity response sub-item";
	default:			return "item";
	}
}

static int
known_item(uint8_t t)
{
	return t == DUL_ITEM_APP_CONTEXT || t == DUL_ITEM_PCTX_RQ ||
	    t == DUL_ITEM_PCTX_AC || t == DUL_ITEM_ABSTRACT ||
	    t == DUL_ITEM_TRANSFER ||
	    (t >= DUL_ITEM_USER_INFO && t <= DUL_ITEM_IDENTITY_AC);
}

/* ---- big-endian readers (callers have checked the bounds) ---- */

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* ---- framing ---- */

/* Printable rendering of up to n header bytes for messages. */
static void
show(char *out, size_t cap, const uint8_t *b, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 5 < cap; i++)
		if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '"' && b[i] != '\\')
			out[o++] = (char)b[i];
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", b[i]);
	out[o] = '\0';
}

int
dul_header_decode(const uint8_t b[DUL_HEADER_LEN], struct dul_header *h,
    struct dul_error *err)
{
	char txt[40];
	int text = 1;

	h->type = b[0];
	h->length = get32(b + 2);
	if (b[0] >= DUL_ASSOCIATE_RQ && b[0] <= DUL_ABORT)
		return 0;
	for (size_t i = 0; i < DUL_HEADER_LEN; i++)
		if (b[i] < 0x20 || b[i] >= 0x7f)
			text = 0;
	show(txt, sizeof(txt), b, DUL_HEADER_LEN);
	if (text && b[0] >= 'A' && b[0] <= 'Z')
		return seterr(err, DUL_E_PDU_TYPE, 0, 0, 0,
		    "unrecognized PDU type 0x%02x at byte 0: the bytes \"%s\" "
		    "look like text (HTTP?), not a DICOM PDU", b[0], txt);
	if (b[0] == 0x16 && b[1] == 0x03)
		return seterr(err, DUL_E_PDU_TYPE, 0, 0, 0,
		    "unrecognized PDU type 0x16 at byte 0: the bytes look like "
		    "a TLS handshake, not a DICOM PDU");
	return seterr(err, DUL_E_PDU_TYPE, 0, 0, 0,
	    "unrecognized PDU type 0x%02x at byte 0 (header \"%s\")", b[0], txt);
}

int
dul_header_check(const struct dul_header *h, uint32_t limit,
    struct dul_error *err)
{
	const char *name = dul_pdu_name(h->type);

	switch (h->type) {
	case DUL_ASSOCIATE_RQ:
	case DUL_ASSOCIATE_AC:
		if (h->length < DUL_ASSOC_FIXED_LEN)
			return seterr(err, DUL_E_PDU_LENGTH, h->type, 0, 2,
			    "%s PDU at byte 2: length %" PRIu32 " is shorter "
			    "than its %d fixed bytes", name, h->length,
			    DUL_ASSOC_FIXED_LEN);
		break;
	case DUL_P_DATA_TF:
		if (h->length < 6)
			return seterr(err, DUL_E_PDU_LENGTH, h->type, 0, 2,
			    "%s PDU at byte 2: length %" PRIu32 " cannot hold "
			    "a PDV item (6 bytes at least)", name, h->length);
		break;
	case DUL_ASSOCIATE_RJ:
	case DUL_RELEASE_RQ:
	case DUL_RELEASE_RP:
	case DUL_ABORT:
		if (h->length != 4)
			return seterr(err, DUL_E_PDU_LENGTH, h->type, 0, 2,
			    "%s PDU at byte 2: length %" PRIu32 ", expected 4",
			    name, h->length);
		break;
	default:
		return seterr(err, DUL_E_PDU_TYPE, h->type, 0, 0,
		    "unrecognized PDU type 0x%02x at byte 0", h->type);
	}
	if (limit != 0 && h->length > limit)
		return seterr(err, DUL_E_TOO_LONG, h->type, 0, 2,
		    "%s PDU at byte 2: length %" PRIu32 " is over the limit "
		    "of %" PRIu32, name, h->length, limit);
	return 0;
}

/* frame: check that pdu[0..n) is one whole PDU of type want (or want2)
 * whose length fits its type. */
static int
frame(const uint8_t *pdu, size_t n, uint8_t want, uint8_t want2,
    struct dul_error *err)
{
	struct dul_header h;

	if (n < DUL_HEADER_LEN)
		return seterr(err, DUL_E_TRUNCATED, n ? pdu[0] : 0, 0, n,
		    "PDU of %zu bytes is shorter than its 6-byte header", n);
	if (dul_header_decode(pdu, &h, err) != 0)
		return -1;
	if (h.type != want && h.type != want2)
		return seterr(err, DUL_E_PDU_TYPE, h.type, 0, 0,
		    "%s PDU given where %s was expected", dul_pdu_name(h.type),
		    dul_pdu_name(want));
	if (n - DUL_HEADER_LEN != h.length)
		return seterr(err, n - DUL_HEADER_LEN < h.length ?
		    DUL_E_TRUNCATED : DUL_E_PDU_LENGTH, h.type, 0, 2,
		    "%s PDU at byte 2: length %" PRIu32 ", but %zu bytes "
		    "follow the header", dul_pdu_name(h.type), h.length,
		    n - DUL_HEADER_LEN);
	return dul_header_check(&h, 0, err);
}

/* ---- decoding A-ASSOCIATE-RQ/AC ---- */

struct dec {
	const uint8_t		*pdu;
	size_t			 n;
	uint8_t			 type;
	struct dul_assoc	*a;
	struct dul_error	*err;
	struct dul_error	 deferred;	/* first reject-class problem */
	int			 has_deferred;
	uint8_t			 ids[32];	/* context IDs seen (bitmap) */
	unsigned		 seen;		/* unique items seen (bits) */
};

/* Bit of an item type in dec.seen: 0x50..0x59 by their low bits. */
#define SEEN(t)	((t) == DUL_ITEM_APP_CONTEXT ? 1u << 30 : 1u << ((t) & 0x1f))

/* One level of items: bytes [off, end) of the PDU inside parent. */
struct cur {
	size_t		 off, end;
	const char	*parent;
};

#define FAIL(d, code, item, off, ...) \
	seterr((d)->err, code, (d)->type, item, off, __VA_ARGS__)

/*
 * next_item: the item header at c->off: its type, the offset and length
 * of its value; advances c past the item. Returns 1 with an item, 0 at
 * the end of the parent, -1 on error.
 */
static int
next_item(struct dec *d, struct cur *c, uint8_t *type, size_t *start,
    size_t *len)
{
	size_t left = c->end - c->off;
	char name[64];
	uint16_t l;

	if (left == 0)
		return 0;
	*type = d->pdu[c->off];
	if (known_item(*type))
		snprintf(name, sizeof(name), "%s", item_name(*type));
	else
		snprintf(name, sizeof(name), "item of type 0x%02x", *type);
	if (left < 4)
		return FAIL(d, DUL_E_ITEM_LENGTH, *type, c->off,
		    "%s at byte %zu: only %zu bytes left before the end of its "
		    "%s (at %zu), too few for an item header", name, c->off,
		    left, c->parent, c->end);
	l = get16(d->pdu + c->off + 2);
	if (l > left - 4)
		return FAIL(d, DUL_E_ITEM_LENGTH, *type, c->off,
		    "%s at byte %zu: length %u runs past the end of its %s "
		    "(ends at %zu)", name, c->off, l, c->parent, c->end);
	*start = c->off;
	*len = l;
	c->off += 4 + (size_t)l;
	return 1;
}

/*
 * field: a 2-byte length and the bytes it counts, at c->off inside the
 * item at item_off; advances c. Returns 0 or -1.
 */
static int
field(struct dec *d, struct cur *c, uint8_t item, size_t item_off,
    const char *what, size_t *voff, size_t *vlen)
{
	size_t left = c->end - c->off;
	uint16_t l;

	if (left < 2)
		return FAIL(d, DUL_E_ITEM_LENGTH, item, item_off,
		    "%s at byte %zu: it ends (at %zu) before the length of its "
		    "%s", item_name(item), item_off, c->end, what);
	l = get16(d->pdu + c->off);
	if (l > left - 2)
		return FAIL(d, DUL_E_ITEM_LENGTH, item, item_off,
		    "%s at byte %zu: %s length %u at byte %zu runs past its "
		    "end (at %zu)", item_name(item), item_off, what, l, c->off,
		    c->end);
	*voff = c->off + 2;
	*vlen = l;
	c->off += 2 + (size_t)l;
	return 0;
}

/* Check that an item's fields used exactly its length. */
static int
used_all(struct dec *d, const struct cur *c, uint8_t item, size_t item_off)
{
	if (c->off == c->end)
		return 0;
	return FAIL(d, DUL_E_ITEM_LENGTH, item, item_off,
	    "%s at byte %zu: its fields end at byte %zu, but its length runs "
	    "to %zu", item_name(item), item_off, c->off, c->end);
}

/*
 * get_uid: the UID in pdu[off, off+len) into out, trailing NUL or space
 * padding dropped. It must be 1..64 digits and dots without an empty
 * component. Returns 0 or -1 (DUL_E_VALUE).
 */
static int
get_uid(struct dec *d, uint8_t item, size_t item_off, const char *what,
    size_t off, size_t len, char out[DUL_UID_MAX + 1])
{
	const uint8_t *p = d->pdu + off;

	while (len > 0 && (p[len - 1] == '\0' || p[len - 1] == ' '))
		len--;
	if (len == 0)
		return FAIL(d, DUL_E_VALUE, item, item_off,
		    "%s at byte %zu: %s is empty", item_name(item), item_off,
		    what);
	if (len > DUL_UID_MAX)
		return FAIL(d, DUL_E_VALUE, item, item_off,
		    "%s at byte %zu: %s of %zu characters is longer than %d",
		    item_name(item), item_off, what, len, DUL_UID_MAX);
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '.') {
			if (i == 0 || i == len - 1 || p[i - 1] == '.')
				return FAIL(d, DUL_E_VALUE, item, item_off,
				    "%s at byte %zu: %s \"%.*s\" has an empty "
				    "component", item_name(item), item_off,
				    what, (int)len, (const char *)p);
		} else if (p[i] < '0' || p[i] > '9')
			return FAIL(d, DUL_E_VALUE, item, item_off,
			    "%s at byte %zu: %s has byte 0x%02x at position "
			    "%zu; only digits and '.' are allowed",
			    item_name(item), item_off, what, p[i], i);
	}
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

/* Take the next slot of the UID pool. */
static char *
pool_uid(struct dec *d, uint8_t item, size_t item_off)
{
	if (d->a->n_uid < DUL_MAX_UIDS)
		return d->a->uid[d->a->n_uid];
	FAIL(d, DUL_E_LIMIT, item, item_off,
	    "%s at byte %zu: more than %d transfer syntax and related SOP "
	    "class UIDs in one PDU", item_name(item), item_off, DUL_MAX_UIDS);
	return NULL;
}

/* Record a reject-class problem; decoding goes on. */
static void
defer(struct dec *d, enum dul_errcode code, size_t off, const char *what,
    const char *problem)
{
	if (d->has_deferred)
		return;
	seterr(&d->deferred, code, d->type, 0, off, "%s at byte %zu: %s",
	    what, off, problem);
	d->has_deferred = 1;
}

/*
 * ae_title: copy the 16-byte AE title at off into out without leading
 * and trailing spaces (up to a NUL in an AC, whose titles are not
 * tested). In an RQ, defer a reject when it is all spaces or has a NUL,
 * a control character, a backslash or a non-ASCII byte (PS3.5 AE);
 * "../" and the like are valid characters and are kept as they are.
 */
static void
ae_title(struct dec *d, size_t off, char out[DUL_AE_MAX + 1],
    enum dul_errcode code, const char *what)
{
	const uint8_t *p = d->pdu + off;
	size_t b = 0, e = DUL_AE_MAX;
	char problem[96];

	if (d->type == DUL_ASSOCIATE_AC)
		for (e = 0; e < DUL_AE_MAX && p[e] != '\0'; e++)
			;
	else
		for (size_t i = 0; i < DUL_AE_MAX; i++)
			if (p[i] < 0x20 || p[i] >= 0x7f || p[i] == '\\') {
				snprintf(problem, sizeof(problem), "%s 0x%02x "
				    "at position %zu is not allowed in an AE "
				    "title", p[i] == 0 ? "a NUL byte" :
				    p[i] == '\\' ? "backslash" : "byte", p[i],
				    i);
				defer(d, code, off, what, problem);
				e = i;
				break;
			}
	while (b < e && p[b] == ' ')
		b++;
	while (e > b && p[e - 1] == ' ')
		e--;
	memcpy(out, p + b, e - b);
	out[e - b] = '\0';
	if (d->type == DUL_ASSOCIATE_RQ && e == b)
		defer(d, code, off, what, "it is all spaces (no AE title)");
}

/* Presentation context ID: odd, unique. */
static int
pctx_id(struct dec *d, size_t off, uint8_t id)
{
	if (id % 2 == 0)
		return FAIL(d, DUL_E_VALUE, d->pdu[off], off,
		    "presentation context item at byte %zu: context ID %u is "
		    "not odd (1..255)", off, id);
	if (d->ids[id / 8] & (1u << id % 8))
		return FAIL(d, DUL_E_VALUE, d->pdu[off], off,
		    "presentation context item at byte %zu: context ID %u is "
		    "given twice", off, id);
	if (d->a->n_pctx == DUL_MAX_PCTX)
		return FAIL(d, DUL_E_LIMIT, d->pdu[off], off,
		    "presentation context item at byte %zu: more than %d "
		    "presentation contexts", off, DUL_MAX_PCTX);
	d->ids[id / 8] |= (uint8_t)(1u << id % 8);
	return 0;
}

/* A sub-item that may not be where it is, or an unknown one to skip. */
static int
misplaced(struct dec *d, uint8_t t, size_t off, const char *parent)
{
	if (!known_item(t)) {
		d->a->unknown++;
		return 0;
	}
	return FAIL(d, DUL_E_UNEXPECTED, t, off,
	    "%s at byte %zu: not allowed in %s", item_name(t), off, parent);
}

/* A presentation context item of an RQ (PS3.8 9.3.2.2). */
static int
pctx_rq(struct dec *d, size_t off, size_t len)
{
	struct cur c = { off + 8, off + 4 + len, "presentation context item" };
	struct dul_pctx *pc;
	size_t s, l;
	uint8_t t;
	char *uid;
	int r, abstract = 0;

	if (len < 4)
		return FAIL(d, DUL_E_ITEM_LENGTH, DUL_ITEM_PCTX_RQ, off,
		    "presentation context item at byte %zu: length %zu is "
		    "shorter than its 4 fixed bytes", off, len);
	if (pctx_id(d, off, d->pdu[off + 4]) != 0)
		return -1;
	pc = &d->a->pctx[d->a->n_pctx];
	pc->id = d->pdu[off + 4];
	pc->ts_first = (uint16_t)d->a->n_uid;
	while ((r = next_item(d, &c, &t, &s, &l)) == 1) {
		if (t == DUL_ITEM_ABSTRACT) {
			if (abstract++)
				return FAIL(d, DUL_E_UNEXPECTED, t, s,
				    "abstract syntax sub-item at byte %zu: a "
				    "second one in the presentation context "
				    "item at byte %zu", s, off);
			if (get_uid(d, t, s, "abstract syntax", s + 4, l,
			    pc->abstract) != 0)
				return -1;
		} else if (t == DUL_ITEM_TRANSFER) {
			if ((uid = pool_uid(d, t, s)) == NULL ||
			    get_uid(d, t, s, "transfer syntax", s + 4, l,
			    uid) != 0)
				return -1;
			d->a->n_uid++;
			pc->ts_count++;
		} else if (misplaced(d, t, s, "a presentation context") != 0)
			return -1;
	}
	if (r < 0)
		return -1;
	if (!abstract || pc->ts_count == 0)
		return FAIL(d, DUL_E_MISSING, DUL_ITEM_PCTX_RQ, off,
		    "presentation context item at byte %zu (ID %u): no %s "
		    "sub-item", off, pc->id, abstract ? "transfer syntax" :
		    "abstract syntax");
	d->a->n_pctx++;
	return 0;
}

/* A presentation context item of an AC (PS3.8 9.3.3.2). */
static int
pctx_ac(struct dec *d, size_t off, size_t len)
{
	struct cur c = { off + 8, off + 4 + len, "presentation context item" };
	struct dul_pctx *pc;
	size_t s, l;
	uint8_t t;
	char *uid;
	int r = 0;

	if (len < 4)
		return FAIL(d, DUL_E_ITEM_LENGTH, DUL_ITEM_PCTX_AC, off,
		    "presentation context item at byte %zu: length %zu is "
		    "shorter than its 4 fixed bytes", off, len);
	if (pctx_id(d, off, d->pdu[off + 4]) != 0)
		return -1;
	pc = &d->a->pctx[d->a->n_pctx];
	pc->id = d->pdu[off + 4];
	pc->result = d->pdu[off + 6];
	pc->ts_first = (uint16_t)d->a->n_uid;
	if (pc->result > DUL_PCTX_TRANSFER_NOT_SUPPORTED)
		return FAIL(d, DUL_E_VALUE, DUL_ITEM_PCTX_AC, off,
		    "presentation context item at byte %zu (ID %u): "
		    "result/reason %u is none of 0..4", off, pc->id,
		    pc->result);
	/* not accepted: the transfer syntax is not significant */
	while (pc->result == DUL_PCTX_ACCEPTANCE &&
	    (r = next_item(d, &c, &t, &s, &l)) != 0) {
		if (r < 0)
			return -1;
		if (t == DUL_ITEM_TRANSFER) {
			if (pc->ts_count > 0)
				return FAIL(d, DUL_E_UNEXPECTED, t, s,
				    "transfer syntax sub-item at byte %zu: a "
				    "second one in the presentation context "
				    "item at byte %zu", s, off);
			if ((uid = pool_uid(d, t, s)) == NULL ||
			    get_uid(d, t, s, "transfer syntax", s + 4, l,
			    uid) != 0)
				return -1;
			d->a->n_uid++;
			pc->ts_count = 1;
		} else if (misplaced(d, t, s, "an A-ASSOCIATE-AC presentation "
		    "context") != 0)
			return -1;
	}
	if (pc->result == DUL_PCTX_ACCEPTANCE && pc->ts_count == 0)
		return FAIL(d, DUL_E_MISSING, DUL_ITEM_PCTX_AC, off,
		    "presentation context item at byte %zu (ID %u): accepted "
		    "without a transfer syntax sub-item", off, pc->id);
	d->a->n_pctx++;
	return 0;
}

/* A sub-item that may appear once per user information item. */
static int
once(struct dec *d, uint8_t t, size_t off)
{
	if (d->seen & SEEN(t))
		return FAIL(d, DUL_E_UNEXPECTED, t, off,
		    "%s at byte %zu: a second one in the user information item",
		    item_name(t), off);
	d->seen |= SEEN(t);
	return 0;
}

static int
fixed_len(struct dec *d, uint8_t t, size_t off, size_t len, size_t want)
{
	if (len == want)
		return 0;
	return FAIL(d, DUL_E_ITEM_LENGTH, t, off,
	    "%s at byte %zu: length %zu, expected %zu", item_name(t), off, len,
	    want);
}

/* SCP/SCU role selection (PS3.7 D.3.3.4). */
static int
sub_role(struct dec *d, size_t off, size_t len)
{
	struct cur c = { off + 4, off + 4 + len, NULL };
	struct dul_role *ro;
	size_t u, ul;

	if (d->a->n_role == DUL_MAX_ROLES)
		return FAIL(d, DUL_E_LIMIT, DUL_ITEM_ROLE, off,
		    "role selection sub-item at byte %zu: more than %d of "
		    "them", off, DUL_MAX_ROLES);
	ro = &d->a->role[d->a->n_role];
	if (field(d, &c, DUL_ITEM_ROLE, off, "SOP class UID", &u, &ul) != 0 ||
	    get_uid(d, DUL_ITEM_ROLE, off, "SOP class UID", u, ul,
	    ro->sop_class) != 0)
		return -1;
	if (c.end - c.off != 2)
		return FAIL(d, DUL_E_ITEM_LENGTH, DUL_ITEM_ROLE, off,
		    "role selection sub-item at byte %zu: %zu bytes after the "
		    "SOP class UID, expected 2 (SCU and SCP role)", off,
		    c.end - c.off);
	ro->scu = d->pdu[c.off];
	ro->scp = d->pdu[c.off + 1];
	if (ro->scu > 1 || ro->scp > 1)
		return FAIL(d, DUL_E_VALUE, DUL_ITEM_ROLE, off,
		    "role selection sub-item at byte %zu: SCU role %u, SCP role "
		    "%u; each must be 0 or 1", off, ro->scu, ro->scp);
	d->a->n_role++;
	return 0;
}

/* SOP class extended negotiation (PS3.7 D.3.3.5). */
static int
sub_extneg(struct dec *d, size_t off, size_t len)
{
	struct cur c = { off + 4, off + 4 + len, NULL };
	struct dul_extneg *x;
	size_t u, ul;

	if (d->a->n_extneg == DUL_MAX_EXTNEG)
		return FAIL(d, DUL_E_LIMIT, DUL_ITEM_EXTNEG, off,
		    "SOP class extended negotiation sub-item at byte %zu: more "
		    "than %d of them", off, DUL_MAX_EXTNEG);
	x = &d->a->extneg[d->a->n_extneg];
	if (field(d, &c, DUL_ITEM_EXTNEG, off, "SOP class UID", &u, &ul) !=
	    0 || get_uid(d, DUL_ITEM_EXTNEG, off, "SOP class UID", u, ul,
	    x->sop_class) != 0)
		return -1;
	x->info = d->pdu + c.off;
	x->info_len = (uint16_t)(c.end - c.off);
	d->a->n_extneg++;
	return 0;
}

/* SOP class common extended negotiation (PS3.7 D.3.3.6). */
static int
sub_common(struct dec *d, size_t off, size_t len)
{
	const uint8_t t = DUL_ITEM_COMMON_EXTNEG;
	struct cur c = { off + 4, off + 4 + len, NULL }, rel;
	struct dul_common_extneg *x;
	size_t u, ul;
	char *uid;

	if (d->a->n_common == DUL_MAX_COMMON_EXTNEG)
		return FAIL(d, DUL_E_LIMIT, t, off,
		    "SOP class common extended negotiation sub-item at byte "
		    "%zu: more than %d of them", off, DUL_MAX_COMMON_EXTNEG);
	x = &d->a->common[d->a->n_common];
	x->related_first = (uint16_t)d->a->n_uid;
	if (field(d, &c, t, off, "SOP class UID", &u, &ul) != 0 ||
	    get_uid(d, t, off, "SOP class UID", u, ul, x->sop_class) != 0 ||
	    field(d, &c, t, off, "service class UID", &u, &ul) != 0 ||
	    get_uid(d, t, off, "service class UID", u, ul,
	    x->service_class) != 0 ||
	    field(d, &c, t, off, "related general SOP class identification",
	    &u, &ul) != 0 || used_all(d, &c, t, off) != 0)
		return -1;
	rel.off = u;
	rel.end = u + ul;
	while (rel.off < rel.end) {
		if (field(d, &rel, t, off, "related general SOP class UID", &u,
		    &ul) != 0 || (uid = pool_uid(d, t, off)) == NULL ||
		    get_uid(d, t, off, "related general SOP class UID", u, ul,
		    uid) != 0)
			return -1;
		d->a->n_uid++;
		x->related_count++;
	}
	d->a->n_common++;
	return 0;
}

/* User identity negotiation, RQ and AC (PS3.7 D.3.3.7). */
static int
sub_identity(struct dec *d, uint8_t t, size_t off, size_t len)
{
	struct cur c = { off + 4, off + 4 + len, NULL };
	struct dul_assoc *a = d->a;
	size_t v, vl;

	if (t == DUL_ITEM_IDENTITY_AC) {
		if (field(d, &c, t, off, "server response", &v, &vl) != 0 ||
		    used_all(d, &c, t, off) != 0)
			return -1;
		a->has_identity_ac = 1;
		a->identity_response = d->pdu + v;
		a->identity_response_len = (uint16_t)vl;
		return 0;
	}
	if (len < 2)
		return FAIL(d, DUL_E_ITEM_LENGTH, t, off,
		    "user identity sub-item at byte %zu: length %zu is "
		    "shorter than its type and response fields", off, len);
	a->identity_type = d->pdu[off + 4];
	a->identity_response_requested = d->pdu[off + 5];
	c.off += 2;
	if (field(d, &c, t, off, "primary field", &v, &vl) != 0)
		return -1;
	a->identity_primary = d->pdu + v;
	a->identity_primary_len = (uint16_t)vl;
	if (field(d, &c, t, off, "secondary field", &v, &vl) != 0 ||
	    used_all(d, &c, t, off) != 0)
		return -1;
	a->identity_secondary = d->pdu + v;
	a->identity_secondary_len = (uint16_t)vl;
	a->has_identity_rq = 1;
	return 0;
}

/* Implementation version name: up to 16 bytes, padding dropped. */
static int
sub_version(struct dec *d, size_t off, size_t len)
{
	const uint8_t *p = d->pdu + off + 4;

	while (len > 0 && (p[len - 1] == '\0' || p[len - 1] == ' '))
		len--;
	if (len > DUL_VERSION_MAX)
		return FAIL(d, DUL_E_VALUE, DUL_ITEM_IMPL_VERSION, off,
		    "implementation version name sub-item at byte %zu: %zu "
		    "characters, more than %d", off, len, DUL_VERSION_MAX);
	if (memchr(p, '\0', len) != NULL)
		return FAIL(d, DUL_E_VALUE, DUL_ITEM_IMPL_VERSION, off,
		    "implementation version name sub-item at byte %zu: it "
		    "contains a NUL byte", off);
	memcpy(d->a->impl_version, p, len);
	d->a->impl_version[len] = '\0';
	return 0;
}

/* The user information item (PS3.8 9.3.2.3, D.1; PS3.7 D.3.3). */
static int
user_info(struct dec *d, size_t off, size_t len)
{
	struct cur c = { off + 4, off + 4 + len, "user information item" };
	struct dul_assoc *a = d->a;
	size_t s, l;
	uint8_t t;
	int r;

	while ((r = next_item(d, &c, &t, &s, &l)) == 1) {
		switch (t) {
		case DUL_ITEM_MAX_LENGTH:
			if (once(d, t, s) != 0 || fixed_len(d, t, s, l, 4) != 0)
				return -1;
			a->max_length = get32(d->pdu + s + 4);
			break;
		case DUL_ITEM_IMPL_CLASS:
			if (once(d, t, s) != 0 || get_uid(d, t, s,
			    "implementation class UID", s + 4, l,
			    a->impl_class) != 0)
				return -1;
			break;
		case DUL_ITEM_ASYNC:
			if (once(d, t, s) != 0 || fixed_len(d, t, s, l, 4) != 0)
				return -1;
			a->has_async = 1;
			a->async_invoked = get16(d->pdu + s + 4);
			a->async_performed = get16(d->pdu + s + 6);
			break;
		case DUL_ITEM_ROLE:
			if (sub_role(d, s, l) != 0)
				return -1;
			break;
		case DUL_ITEM_IMPL_VERSION:
			if (once(d, t, s) != 0 || sub_version(d, s, l) != 0)
				return -1;
			break;
		case DUL_ITEM_EXTNEG:
			if (sub_extneg(d, s, l) != 0)
				return -1;
			break;
		case DUL_ITEM_COMMON_EXTNEG:
			if (sub_common(d, s, l) != 0)
				return -1;
			break;
		case DUL_ITEM_IDENTITY_RQ:
		case DUL_ITEM_IDENTITY_AC:
			if (once(d, t, s) != 0 ||
			    sub_identity(d, t, s, l) != 0)
				return -1;
			break;
		default:
			if (misplaced(d, t, s, "the user information item") !=
			    0)
				return -1;
		}
	}
	if (r < 0)
		return -1;
	if (!(d->seen & SEEN(DUL_ITEM_MAX_LENGTH)))
		return FAIL(d, DUL_E_MISSING, DUL_ITEM_USER_INFO, off,
		    "user information item at byte %zu: no maximum length "
		    "sub-item (PS3.8 D.1 requires one)", off);
	return 0;
}

/* The variable items of an RQ/AC, from byte 74 to the end. */
static int
items(struct dec *d)
{
	struct cur c = { DUL_HEADER_LEN + DUL_ASSOC_FIXED_LEN, d->n, "PDU" };
	uint8_t t, pc = d->type == DUL_ASSOCIATE_RQ ? DUL_ITEM_PCTX_RQ :
	    DUL_ITEM_PCTX_AC;
	size_t s, l;
	int r;

	while ((r = next_item(d, &c, &t, &s, &l)) == 1) {
		if (t == DUL_ITEM_APP_CONTEXT || t == DUL_ITEM_USER_INFO) {
			if (d->seen & SEEN(t))
				return FAIL(d, DUL_E_UNEXPECTED, t, s,
				    "%s at byte %zu: a second one",
				    item_name(t), s);
			d->seen |= SEEN(t);
		}
		if (t == DUL_ITEM_APP_CONTEXT) {
			if (get_uid(d, t, s, "application context name",
			    s + 4, l, d->a->app_context) != 0)
				return -1;
			if (d->type == DUL_ASSOCIATE_RQ &&
			    strcmp(d->a->app_context, DUL_APP_CONTEXT_DICOM))
				defer(d, DUL_E_APP_CONTEXT, s,
				    "application context item", "name is not "
				    "the DICOM application context "
				    DUL_APP_CONTEXT_DICOM);
		} else if (t == pc) {
			if ((t == DUL_ITEM_PCTX_RQ ? pctx_rq(d, s, l) :
			    pctx_ac(d, s, l)) != 0)
				return -1;
		} else if (t == DUL_ITEM_USER_INFO) {
			if (user_info(d, s, l) != 0)
				return -1;
		} else if (misplaced(d, t, s, d->type == DUL_ASSOCIATE_RQ ?
		    "an A-ASSOCIATE-RQ" : "an A-ASSOCIATE-AC") != 0)
			return -1;
	}
	return r;
}

int
dul_decode_assoc(const uint8_t *pdu, size_t n, struct dul_assoc *a,
    struct dul_error *err)
{
	struct dec d;
	const char *missing = NULL;	/* the required item not found */

	memset(a, 0, sizeof(*a));
	if (frame(pdu, n, DUL_ASSOCIATE_RQ, DUL_ASSOCIATE_AC, err) != 0)
		return -1;
	memset(&d, 0, sizeof(d));
	d.pdu = pdu;
	d.n = n;
	d.type = a->type = pdu[0];
	d.a = a;
	d.err = err;
	if (!(get16(pdu + 6) & DUL_PROTOCOL_VERSION))
		return FAIL(&d, DUL_E_VERSION, 0, 6, "%s PDU at byte 6: "
		    "protocol version 0x%04x lacks bit 0 (version 1)",
		    dul_pdu_name(d.type), get16(pdu + 6));
	ae_title(&d, 10, a->called_ae, DUL_E_CALLED_AE, "called AE title");
	ae_title(&d, 26, a->calling_ae, DUL_E_CALLING_AE, "calling AE title");
	if (items(&d) != 0)
		return -1;
	if (!(d.seen & SEEN(DUL_ITEM_APP_CONTEXT)))
		missing = "application context item";
	else if (a->n_pctx == 0 && d.type == DUL_ASSOCIATE_RQ)
		missing = "presentation context item";
	else if (!(d.seen & SEEN(DUL_ITEM_USER_INFO)))
		missing = "user information item";
	if (missing != NULL)
		return FAIL(&d, DUL_E_MISSING, 0, DUL_HEADER_LEN +
		    DUL_ASSOC_FIXED_LEN, "%s PDU at byte 74: no %s",
		    dul_pdu_name(d.type), missing);
	if (d.has_deferred) {
		if (err != NULL)
			*err = d.deferred;
		return -1;
	}
	return 0;
}

/* ---- the other PDUs ---- */

int
dul_decode_rj(const uint8_t *pdu, size_t n, struct dul_rj *rj,
    struct dul_error *err)
{
	if (frame(pdu, n, DUL_ASSOCIATE_RJ, DUL_ASSOCIATE_RJ, err) != 0)
		return -1;
	rj->result = pdu[7];
	rj->source = pdu[8];
	rj->reason = pdu[9];
	return 0;
}

int
dul_decode_release(const uint8_t *pdu, size_t n, uint8_t *type,
    struct dul_error *err)
{
	if (frame(pdu, n, DUL_RELEASE_RQ, DUL_RELEASE_RP, err) != 0)
		return -1;
	*type = pdu[0];
	return 0;
}

int
dul_decode_abort(const uint8_t *pdu, size_t n, struct dul_abort *ab,
    struct dul_error *err)
{
	if (frame(pdu, n, DUL_ABORT, DUL_ABORT, err) != 0)
		return -1;
	ab->source = pdu[8];
	ab->reason = pdu[9];
	return 0;
}

int
dul_pdata_begin(struct dul_pdv_iter *it, const uint8_t *pdu, size_t n,
    struct dul_error *err)
{
	it->pdu = pdu;
	it->n = n;
	it->off = n;	/* an iterator that failed to begin yields nothing */
	if (frame(pdu, n, DUL_P_DATA_TF, DUL_P_DATA_TF, err) != 0)
		return -1;
	it->off = DUL_HEADER_LEN;
	return 0;
}

int
dul_pdata_next(struct dul_pdv_iter *it, struct dul_pdv *v,
    struct dul_error *err)
{
	size_t left = it->n - it->off;
	uint32_t l;

	if (left == 0)
		return 0;
	if (left < 6) {
		seterr(err, DUL_E_PDV, DUL_P_DATA_TF, 0, it->off,
		    "PDV item at byte %zu: only %zu bytes left before the end "
		    "of its PDU (at %zu), too few for a PDV item", it->off,
		    left, it->n);
		it->off = it->n;
		return -1;
	}
	l = get32(it->pdu + it->off);
	if (l < 2 || l > left - 4) {
		if (l < 2)
			seterr(err, DUL_E_PDV, DUL_P_DATA_TF, 0, it->off,
			    "PDV item at byte %zu: length %" PRIu32 " is less "
			    "than 2 (context ID and message control header)",
			    it->off, l);
		else
			seterr(err, DUL_E_PDV, DUL_P_DATA_TF, 0, it->off,
			    "PDV item at byte %zu: length %" PRIu32 " runs past "
			    "the end of its PDU (ends at %zu)", it->off, l,
			    it->n);
		it->off = it->n;
		return -1;
	}
	v->offset = it->off;
	v->pcid = it->pdu[it->off + 4];
	v->mch = it->pdu[it->off + 5];
	v->command = (v->mch & DUL_MCH_COMMAND) != 0;
	v->last = (v->mch & DUL_MCH_LAST) != 0;
	v->data = it->pdu + it->off + 6;
	v->len = l - 2;
	it->off += 4 + (size_t)l;
	return 1;
}

/* ---- encoding ---- */

/* A bounded writer: bytes past cap are counted, not written. */
struct wr {
	uint8_t		*p;
	size_t		 cap, n;
	int		 bad;		/* an item grew over 65535 bytes */
};

static void
put(struct wr *w, const void *p, size_t k)
{
	if (k > 0 && w->n <= w->cap && k <= w->cap - w->n)
		memcpy(w->p + w->n, p, k);
	w->n += k;
}

static void
put8(struct wr *w, unsigned v)
{
	uint8_t b = (uint8_t)v;

	put(w, &b, 1);
}

static void
put16(struct wr *w, unsigned v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	put(w, b, 2);
}

static void
put32(struct wr *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
	    (uint8_t)(v >> 8), (uint8_t)v };

	put(w, b, 4);
}

/* Start an item: type, reserved, length to patch. Returns its start. */
static size_t
item_begin(struct wr *w, uint8_t type)
{
	size_t at = w->n;

	put8(w, type);
	put8(w, 0);
	put16(w, 0);
	return at;
}

static void
item_end(struct wr *w, size_t at)
{
	size_t len = w->n - at - 4;

	if (len > 0xffff)
		w->bad = 1;
	else if (at + 4 <= w->cap) {
		w->p[at + 2] = (uint8_t)(len >> 8);
		w->p[at + 3] = (uint8_t)len;
	}
}

/* A whole item holding string s. */
static void
put_str_item(struct wr *w, uint8_t type, const char *s)
{
	size_t at = item_begin(w, type);

	put(w, s, strlen(s));
	item_end(w, at);
}

static void
put_field(struct wr *w, const void *p, size_t len)
{
	if (len > 0xffff)
		w->bad = 1;
	put16(w, (unsigned)len);
	put(w, p, len);
}

static void
put_ae(struct wr *w, const char *ae)
{
	char b[DUL_AE_MAX];
	size_t l = strlen(ae);

	memset(b, ' ', sizeof(b));
	memcpy(b, ae, l);
	put(w, b, sizeof(b));
}

/* Is every string of *a terminated and every count in range? */
static const char *
encodable(const struct dul_assoc *a)
{
#define TERM(s) (memchr((s), '\0', sizeof(s)) != NULL)
	if (a->type != DUL_ASSOCIATE_RQ && a->type != DUL_ASSOCIATE_AC)
		return "type is neither A-ASSOCIATE-RQ nor -AC";
	if (!TERM(a->called_ae) || !TERM(a->calling_ae) ||
	    !TERM(a->app_context) || !TERM(a->impl_class) ||
	    !TERM(a->impl_version))
		return "a string is not terminated within its array";
	if (a->n_pctx > DUL_MAX_PCTX || a->n_uid > DUL_MAX_UIDS ||
	    a->n_role > DUL_MAX_ROLES || a->n_extneg > DUL_MAX_EXTNEG ||
	    a->n_common > DUL_MAX_COMMON_EXTNEG)
		return "a count is over its capacity";
	for (unsigned i = 0; i < a->n_uid; i++)
		if (!TERM(a->uid[i]))
			return "a pooled UID is not terminated";
	for (unsigned i = 0; i < a->n_pctx; i++) {
		const struct dul_pctx *pc = &a->pctx[i];

		if (!TERM(pc->abstract) ||
		    pc->ts_first + (unsigned)pc->ts_count > a->n_uid)
			return "a presentation context is inconsistent";
	}
	for (unsigned i = 0; i < a->n_role; i++)
		if (!TERM(a->role[i].sop_class))
			return "a role selection UID is not terminated";
	for (unsigned i = 0; i < a->n_extneg; i++)
		if (!TERM(a->extneg[i].sop_class))
			return "an extended negotiation UID is not terminated";
	for (unsigned i = 0; i < a->n_common; i++) {
		const struct dul_common_extneg *x = &a->common[i];

		if (!TERM(x->sop_class) || !TERM(x->service_class) ||
		    x->related_first + (unsigned)x->related_count > a->n_uid)
			return "a common extended negotiation is inconsistent";
	}
	return NULL;
#undef TERM
}

static void
enc_pctx(struct wr *w, const struct dul_assoc *a, const struct dul_pctx *pc)
{
	size_t at = item_begin(w, a->type == DUL_ASSOCIATE_RQ ?
	    DUL_ITEM_PCTX_RQ : DUL_ITEM_PCTX_AC);

	put8(w, pc->id);
	put8(w, 0);
	put8(w, a->type == DUL_ASSOCIATE_RQ ? 0 : pc->result);
	put8(w, 0);
	if (a->type == DUL_ASSOCIATE_RQ)
		put_str_item(w, DUL_ITEM_ABSTRACT, pc->abstract);
	for (unsigned i = 0; i < pc->ts_count; i++)
		put_str_item(w, DUL_ITEM_TRANSFER, a->uid[pc->ts_first + i]);
	item_end(w, at);
}

static void
enc_user_info(struct wr *w, const struct dul_assoc *a)
{
	size_t at = item_begin(w, DUL_ITEM_USER_INFO), s;

	s = item_begin(w, DUL_ITEM_MAX_LENGTH);
	put32(w, a->max_length);
	item_end(w, s);
	if (a->impl_class[0] != '\0')
		put_str_item(w, DUL_ITEM_IMPL_CLASS, a->impl_class);
	if (a->has_async) {
		s = item_begin(w, DUL_ITEM_ASYNC);
		put16(w, a->async_invoked);
		put16(w, a->async_performed);
		item_end(w, s);
	}
	for (unsigned i = 0; i < a->n_role; i++) {
		s = item_begin(w, DUL_ITEM_ROLE);
		put_field(w, a->role[i].sop_class,
		    strlen(a->role[i].sop_class));
		put8(w, a->role[i].scu);
		put8(w, a->role[i].scp);
		item_end(w, s);
	}
	if (a->impl_version[0] != '\0')
		put_str_item(w, DUL_ITEM_IMPL_VERSION, a->impl_version);
	for (unsigned i = 0; i < a->n_extneg; i++) {
		s = item_begin(w, DUL_ITEM_EXTNEG);
		put_field(w, a->extneg[i].sop_class,
		    strlen(a->extneg[i].sop_class));
		put(w, a->extneg[i].info, a->extneg[i].info_len);
		item_end(w, s);
	}
	for (unsigned i = 0; i < a->n_common; i++) {
		const struct dul_common_extneg *x = &a->common[i];
		size_t rel;

		s = item_begin(w, DUL_ITEM_COMMON_EXTNEG);
		put_field(w, x->sop_class, strlen(x->sop_class));
		put_field(w, x->service_class, strlen(x->service_class));
		rel = w->n;		/* a 2-byte length, patched below */
		put16(w, 0);
		for (unsigned j = 0; j < x->related_count; j++) {
			const char *u = a->uid[x->related_first + j];

			put_field(w, u, strlen(u));
		}
		if (w->n - rel - 2 > 0xffff)
			w->bad = 1;
		else if (rel + 2 <= w->cap) {
			w->p[rel] = (uint8_t)((w->n - rel - 2) >> 8);
			w->p[rel + 1] = (uint8_t)(w->n - rel - 2);
		}
		item_end(w, s);
	}
	if (a->has_identity_rq) {
		s = item_begin(w, DUL_ITEM_IDENTITY_RQ);
		put8(w, a->identity_type);
		put8(w, a->identity_response_requested);
		put_field(w, a->identity_primary, a->identity_primary_len);
		put_field(w, a->identity_secondary, a->identity_secondary_len);
		item_end(w, s);
	}
	if (a->has_identity_ac) {
		s = item_begin(w, DUL_ITEM_IDENTITY_AC);
		put_field(w, a->identity_response, a->identity_response_len);
		item_end(w, s);
	}
	item_end(w, at);
}

size_t
dul_encode_assoc(const struct dul_assoc *a, uint8_t *buf, size_t cap,
    struct dul_error *err)
{
	struct wr w = { buf, buf ? cap : 0, 0, 0 };
	const char *why = encodable(a);
	uint8_t zero[32] = { 0 };

	if (why == NULL && (strlen(a->called_ae) > DUL_AE_MAX ||
	    strlen(a->calling_ae) > DUL_AE_MAX))
		why = "an AE title is longer than 16 characters";
	if (why != NULL) {
		seterr(err, DUL_E_ENCODE, a->type, 0, 0, "cannot encode %s: %s",
		    dul_pdu_name(a->type), why);
		return 0;
	}
	put8(&w, a->type);
	put8(&w, 0);
	put32(&w, 0);		/* patched below */
	put16(&w, DUL_PROTOCOL_VERSION);
	put16(&w, 0);
	put_ae(&w, a->called_ae);
	put_ae(&w, a->calling_ae);
	put(&w, zero, sizeof(zero));
	put_str_item(&w, DUL_ITEM_APP_CONTEXT, a->app_context);
	for (unsigned i = 0; i < a->n_pctx; i++)
		enc_pctx(&w, a, &a->pctx[i]);
	enc_user_info(&w, a);
	if (w.bad || w.n - DUL_HEADER_LEN > UINT32_MAX) {
		seterr(err, DUL_E_ENCODE, a->type, 0, 0, "cannot encode %s: an "
		    "item or field is longer than 65535 bytes",
		    dul_pdu_name(a->type));
		return 0;
	}
	if (w.n <= w.cap) {
		uint32_t len = (uint32_t)(w.n - DUL_HEADER_LEN);

		buf[2] = (uint8_t)(len >> 24);
		buf[3] = (uint8_t)(len >> 16);
		buf[4] = (uint8_t)(len >> 8);
		buf[5] = (uint8_t)len;
	}
	return w.n;
}

static size_t
enc_short(uint8_t b[DUL_SHORT_PDU_LEN], uint8_t type, uint8_t f1, uint8_t f2,
    uint8_t f3)
{
	b[0] = type;
	b[1] = 0;
	b[2] = b[3] = b[4] = 0;
	b[5] = 4;
	b[6] = 0;
	b[7] = f1;
	b[8] = f2;
	b[9] = f3;
	return DUL_SHORT_PDU_LEN;
}

size_t
dul_encode_rj(uint8_t b[DUL_SHORT_PDU_LEN], uint8_t result, uint8_t source,
    uint8_t reason)
{
	return enc_short(b, DUL_ASSOCIATE_RJ, result, source, reason);
}

size_t
dul_encode_release(uint8_t b[DUL_SHORT_PDU_LEN], uint8_t type)
{
	return enc_short(b, type == DUL_RELEASE_RP ? DUL_RELEASE_RP :
	    DUL_RELEASE_RQ, 0, 0, 0);
}

size_t
dul_encode_abort(uint8_t b[DUL_SHORT_PDU_LEN], uint8_t source, uint8_t reason)
{
	return enc_short(b, DUL_ABORT, 0, source, reason);
}

size_t
dul_encode_pdata_header(uint8_t b[DUL_PDATA_HEADER_LEN], uint8_t pcid,
    int command, int last, uint32_t frag_len)
{
	uint32_t pdv, pdu;

	if (frag_len > UINT32_MAX - 6)
		return 0;
	pdv = frag_len + 2;
	pdu = frag_len + 6;
	b[0] = DUL_P_DATA_TF;
	b[1] = 0;
	b[2] = (uint8_t)(pdu >> 24);
	b[3] = (uint8_t)(pdu >> 16);
	b[4] = (uint8_t)(pdu >> 8);
	b[5] = (uint8_t)pdu;
	b[6] = (uint8_t)(pdv >> 24);
	b[7] = (uint8_t)(pdv >> 16);
	b[8] = (uint8_t)(pdv >> 8);
	b[9] = (uint8_t)pdv;
	b[10] = pcid;
	b[11] = (uint8_t)((command ? DUL_MCH_COMMAND : 0) |
	    (last ? DUL_MCH_LAST : 0));
	return DUL_PDATA_HEADER_LEN;
}

uint32_t
dul_pdata_fragment_max(uint32_t max_length)
{
	if (max_length == 0)
		return UINT32_MAX - 6;
	return max_length > 6 ? max_length - 6 : 0;
}

/* ---- building and reading ---- */

void
dul_assoc_init(struct dul_assoc *a, uint8_t type)
{
	memset(a, 0, sizeof(*a));
	a->type = type;
	memcpy(a->app_context, DUL_APP_CONTEXT_DICOM,
	    sizeof(DUL_APP_CONTEXT_DICOM));
}

struct dul_pctx *
dul_assoc_add_pctx(struct dul_assoc *a, uint8_t id, uint8_t result,
    const char *abstract)
{
	struct dul_pctx *pc;

	if (a->n_pctx >= DUL_MAX_PCTX ||
	    (abstract != NULL && strlen(abstract) > DUL_UID_MAX))
		return NULL;
	pc = &a->pctx[a->n_pctx++];
	memset(pc, 0, sizeof(*pc));
	pc->id = id;
	pc->result = result;
	pc->ts_first = (uint16_t)a->n_uid;
	if (abstract != NULL)
		memcpy(pc->abstract, abstract, strlen(abstract) + 1);
	return pc;
}

int
dul_assoc_add_ts(struct dul_assoc *a, struct dul_pctx *pc, const char *ts)
{
	size_t l = strlen(ts);

	if (a->n_pctx == 0 || pc != &a->pctx[a->n_pctx - 1] ||
	    a->n_uid >= DUL_MAX_UIDS || l > DUL_UID_MAX ||
	    pc->ts_first + (unsigned)pc->ts_count != a->n_uid)
		return -1;
	memcpy(a->uid[a->n_uid++], ts, l + 1);
	pc->ts_count++;
	return 0;
}

const char *
dul_pctx_ts(const struct dul_assoc *a, const struct dul_pctx *pc, unsigned i)
{
	if (i >= pc->ts_count || pc->ts_first + i >= a->n_uid)
		return "";
	return a->uid[pc->ts_first + i];
}

const struct dul_pctx *
dul_assoc_pctx(const struct dul_assoc *a, uint8_t id)
{
	for (unsigned i = 0; i < a->n_pctx && i < DUL_MAX_PCTX; i++)
		if (a->pctx[i].id == id)
			return &a->pctx[i];
	return NULL;
}

static int
same_bytes(const uint8_t *p, size_t n, const uint8_t *q, size_t m)
{
	return n == m && (n == 0 || memcmp(p, q, n) == 0);
}

static int
same_uids(const struct dul_assoc *a, unsigned af, unsigned an,
    const struct dul_assoc *b, unsigned bf, unsigned bn)
{
	if (an != bn || af + an > a->n_uid || bf + bn > b->n_uid)
		return 0;
	for (unsigned i = 0; i < an; i++)
		if (strcmp(a->uid[af + i], b->uid[bf + i]) != 0)
			return 0;
	return 1;
}

int
dul_assoc_equal(const struct dul_assoc *a, const struct dul_assoc *b)
{
	if (a->type != b->type || strcmp(a->called_ae, b->called_ae) ||
	    strcmp(a->calling_ae, b->calling_ae) ||
	    strcmp(a->app_context, b->app_context) ||
	    a->max_length != b->max_length ||
	    strcmp(a->impl_class, b->impl_class) ||
	    strcmp(a->impl_version, b->impl_version) ||
	    a->has_async != b->has_async ||
	    a->async_invoked != b->async_invoked ||
	    a->async_performed != b->async_performed ||
	    a->has_identity_rq != b->has_identity_rq ||
	    a->has_identity_ac != b->has_identity_ac ||
	    a->n_pctx != b->n_pctx || a->n_role != b->n_role ||
	    a->n_extneg != b->n_extneg || a->n_common != b->n_common ||
	    a->n_pctx > DUL_MAX_PCTX || a->n_role > DUL_MAX_ROLES ||
	    a->n_extneg > DUL_MAX_EXTNEG || a->n_common > DUL_MAX_COMMON_EXTNEG)
		return 0;
	if (a->has_identity_rq && (a->identity_type != b->identity_type ||
	    a->identity_response_requested != b->identity_response_requested ||
	    !same_bytes(a->identity_primary, a->identity_primary_len,
	    b->identity_primary, b->identity_primary_len) ||
	    !same_bytes(a->identity_secondary, a->identity_secondary_len,
	    b->identity_secondary, b->identity_secondary_len)))
		return 0;
	if (a->has_identity_ac && !same_bytes(a->identity_response,
	    a->identity_response_len, b->identity_response,
	    b->identity_response_len))
		return 0;
	for (unsigned i = 0; i < a->n_pctx; i++) {
		const struct dul_pctx *p = &a->pctx[i], *q = &b->pctx[i];

		if (p->id != q->id || p->result != q->result ||
		    strcmp(p->abstract, q->abstract) != 0 ||
		    !same_uids(a, p->ts_first, p->ts_count, b, q->ts_first,
		    q->ts_count))
			return 0;
	}
	for (unsigned i = 0; i < a->n_role; i++)
		if (strcmp(a->role[i].sop_class, b->role[i].sop_class) ||
		    a->role[i].scu != b->role[i].scu ||
		    a->role[i].scp != b->role[i].scp)
			return 0;
	for (unsigned i = 0; i < a->n_extneg; i++)
		if (strcmp(a->extneg[i].sop_class, b->extneg[i].sop_class) ||
		    !same_bytes(a->extneg[i].info, a->extneg[i].info_len,
		    b->extneg[i].info, b->extneg[i].info_len))
			return 0;
	for (unsigned i = 0; i < a->n_common; i++) {
		const struct dul_common_extneg *x = &a->common[i],
		    *y = &b->common[i];

		if (strcmp(x->sop_class, y->sop_class) ||
		    strcmp(x->service_class, y->service_class) ||
		    !same_uids(a, x->related_first, x->related_count, b,
		    y->related_first, y->related_count))
			return 0;
	}
	return 1;
}

/* ---- names ---- */

const char *
dul_pdu_name(uint8_t type)
{
	static const char *const names[] = { "unknown PDU", "A-ASSOCIATE-RQ",
	    "A-ASSOCIATE-AC", "A-ASSOCIATE-RJ", "P-DATA-TF", "A-RELEASE-RQ",
	    "A-RELEASE-RP", "A-ABORT" };

	return type <= DUL_ABORT ? names[type] : names[0];
}

const char *
dul_abort_reason_name(uint8_t reason)
{
	static const char *const names[] = { "reason-not-specified",
	    "unrecognized-PDU", "unexpected-PDU", "reserved",
	    "unrecognized-PDU-parameter", "unexpected-PDU-parameter",
	    "invalid-PDU-parameter-value" };

	return reason < sizeof(names) / sizeof(names[0]) ? names[reason] :
	    "unknown reason";
}

const char *
dul_rj_reason_name(uint8_t source, uint8_t reason)
{
	switch (source * 16 + reason) {
	case 0x11:	return "no-reason-given";
	case 0x12:	return "application-context-name-not-supported";
	case 0x13:	return "calling-AE-title-not-recognized";
	case 0x17:	return "called-AE-title-not-recognized";
	case 0x21:	return "no-reason-given";
	case 0x22:	return "protocol-version-not-supported";
	case 0x31:	return "temporary-congestion";
	case 0x32:	return "local-limit-exceeded";
	default:	return "unknown reason";
	}
}
