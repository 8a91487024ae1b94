/*
 * t_pdu.c — the Upper Layer PDU codec from byte tables: the A-ASSOCIATE-RQ
 * DCMTK's echoscu 3.6.7 sends (captured from the wire), an AC as we send
 * it, round trips of every PDU type and every item and sub-item, framing
 * and limits, and the hostile inputs of TESTING.md that reach the codec:
 * PDU length 0xFFFFFFFF, items running past their parent, unknown PDU
 * types and HTTP text, PDV lengths 0, 1 and past the PDU, AE titles with
 * NUL, all spaces or "../", the wrong protocol version and application
 * context (A-ASSOCIATE-RJ, not A-ABORT).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dul/dul_pdu.h"
#include "t/unit/tap.h"

static struct dul_assoc *A, *B;
static struct dul_error E;

#define VERIFICATION	"1.2.840.10008.1.1"
#define CT_STORAGE	"1.2.840.10008.5.1.4.1.1.2"
#define IMPLICIT_LE	"1.2.840.10008.1.2"
#define EXPLICIT_LE	"1.2.840.10008.1.2.1"
#define EXPLICIT_BE	"1.2.840.10008.1.2.2"

/* ---- building PDUs byte by byte ---- */

struct pb {
	uint8_t	 b[1 << 17];
	size_t	 n;
	size_t	 at[8];		/* open lengths to patch */
	int	 wide[8];	/* 4-byte length (a PDU) or 2 */
	int	 sp;
};

static struct pb W;

static void
put(struct pb *w, const void *p, size_t n)
{
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void
b8(struct pb *w, unsigned v)
{
	w->b[w->n++] = (uint8_t)v;
}

static void
b16(struct pb *w, unsigned v)
{
	b8(w, v >> 8);
	b8(w, v);
}

static void
b32(struct pb *w, uint32_t v)
{
	b16(w, v >> 16);
	b16(w, v & 0xffff);
}

/* open: a PDU (type < 0x10) or an item; its length is patched at close,
 * unless forced to len (>= 0) */
static void
open_(struct pb *w, uint8_t type)
{
	if (type < 0x10) {
		w->n = 0;
		w->sp = 0;
	}
	b8(w, type);
	b8(w, 0);
	w->at[w->sp] = w->n;
	w->wide[w->sp++] = type < 0x10;
	if (type < 0x10)
		b32(w, 0);
	else
		b16(w, 0);
}

static void
close_(struct pb *w, long force)
{
	size_t at = w->at[--w->sp];
	int wide = w->wide[w->sp];
	size_t len = force >= 0 ? (size_t)force : w->n - at - (wide ? 4 : 2);

	if (wide) {
		w->b[at] = (uint8_t)(len >> 24);
		w->b[at + 1] = (uint8_t)(len >> 16);
		w->b[at + 2] = (uint8_t)(len >> 8);
		w->b[at + 3] = (uint8_t)len;
	} else {
		w->b[at] = (uint8_t)(len >> 8);
		w->b[at + 1] = (uint8_t)len;
	}
}

static void
str_item(struct pb *w, uint8_t type, const char *s)
{
	open_(w, type);
	put(w, s, strlen(s));
	close_(w, -1);
}

/* 16 raw bytes of AE title: s padded with spaces (s may hold NULs when
 * given with its length) */
static void
ae(struct pb *w, const char *s, size_t len)
{
	uint8_t b[16];

	memset(b, ' ', sizeof(b));
	memcpy(b, s, len);
	put(w, b, 16);
}

/* An RQ/AC up to its variable items. */
static void
head(struct pb *w, uint8_t type, unsigned version, const char *called,
    size_t called_len, const char *calling, size_t calling_len)
{
	uint8_t zero[32] = { 0 };

	open_(w, type);
	b16(w, version);
	b16(w, 0);
	ae(w, called, called_len);
	ae(w, calling, calling_len);
	put(w, zero, 32);
}

#define HEAD(w, called, calling) \
	head(w, DUL_ASSOCIATE_RQ, 1, called, strlen(called), calling, \
	    strlen(calling))

static void
app(struct pb *w)
{
	str_item(w, DUL_ITEM_APP_CONTEXT, DUL_APP_CONTEXT_DICOM);
}

static void
pctx(struct pb *w, uint8_t id, const char *abstract, const char *ts)
{
	open_(w, DUL_ITEM_PCTX_RQ);
	b8(w, id);
	b8(w, 0);
	b8(w, 0);
	b8(w, 0);
	str_item(w, DUL_ITEM_ABSTRACT, abstract);
	str_item(w, DUL_ITEM_TRANSFER, ts);
	close_(w, -1);
}

static void
maxlen(struct pb *w, uint32_t v)
{
	open_(w, DUL_ITEM_MAX_LENGTH);
	b32(w, v);
	close_(w, -1);
}

static void
user(struct pb *w)
{
	open_(w, DUL_ITEM_USER_INFO);
	maxlen(w, 16384);
	close_(w, -1);
}

/* A valid RQ: ANY-SCP <- ECHOSCU, Verification in implicit LE. */
static void
std_rq(struct pb *w)
{
	HEAD(w, "ANY-SCP", "ECHOSCU");
	app(w);
	pctx(w, 1, VERIFICATION, IMPLICIT_LE);
	user(w);
	close_(w, -1);
}

/* Decode w as RQ/AC: expect failure with code and (when given) msg. */
static void
fails(const struct pb *w, enum dul_errcode code, const char *msg,
    const char *name)
{
	int rc = dul_decode_assoc(w->b, w->n, A, &E);

	if (!ok(rc == -1 && E.code == code, "%s", name))
		diag("  rc %d, code %d (expected %d): %s", rc, E.code, code,
		    E.msg);
	if (msg != NULL)
		is_str(E.msg, msg, "  message");
	else
		diag("  %s", E.msg);
}

static void
aborts(uint8_t reason)
{
	ok(E.reply == DUL_REPLY_ABORT && E.abort_reason == reason,
	    "  A-ABORT reason %u (%s)", reason, dul_abort_reason_name(reason));
}

static void
rejects(uint8_t result, uint8_t source, uint8_t reason)
{
	if (!ok(E.reply == DUL_REPLY_REJECT && E.rj_result == result &&
	    E.rj_source == source && E.rj_reason == reason,
	    "  A-ASSOCIATE-RJ %u/%u/%u (%s)", result, source, reason,
	    dul_rj_reason_name(source, reason)))
		diag("  got reply %d, %u/%u/%u", E.reply, E.rj_result,
		    E.rj_source, E.rj_reason);
}

/* ---- real-world bytes ---- */

/* What echoscu v3.6.7 sent for "echoscu -aec ANY-SCP host port". */
static const uint8_t echoscu_rq[] = {
	0x01, 0x00, 0x00, 0x00, 0x00, 0xcd, 0x00, 0x01, 0x00, 0x00,
	'A', 'N', 'Y', '-', 'S', 'C', 'P', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	' ', ' ',
	'E', 'C', 'H', 'O', 'S', 'C', 'U', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	' ', ' ',
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 74: application context */
	0x10, 0x00, 0x00, 0x15, '1', '.', '2', '.', '8', '4', '0', '.', '1',
	'0', '0', '0', '8', '.', '3', '.', '1', '.', '1', '.', '1',
	/* 99: presentation context 1 (DCMTK puts 0xff in a reserved byte) */
	0x20, 0x00, 0x00, 0x2e, 0x01, 0x00, 0xff, 0x00,
	0x30, 0x00, 0x00, 0x11, '1', '.', '2', '.', '8', '4', '0', '.', '1',
	'0', '0', '0', '8', '.', '1', '.', '1',
	0x40, 0x00, 0x00, 0x11, '1', '.', '2', '.', '8', '4', '0', '.', '1',
	'0', '0', '0', '8', '.', '1', '.', '2',
	/* 149: user information */
	0x50, 0x00, 0x00, 0x3a,
	0x51, 0x00, 0x00, 0x04, 0x00, 0x00, 0x40, 0x00,
	0x52, 0x00, 0x00, 0x1b, '1', '.', '2', '.', '2', '7', '6', '.', '0',
	'.', '7', '2', '3', '0', '0', '1', '0', '.', '3', '.', '0', '.', '3',
	'.', '6', '.', '7',
	0x55, 0x00, 0x00, 0x0f, 'O', 'F', 'F', 'I', 'S', '_', 'D', 'C', 'M',
	'T', 'K', '_', '3', '6', '7',
};

static void
t_echoscu(void)
{
	uint8_t out[512];
	size_t n;

	is_int(sizeof(echoscu_rq), 211, "echoscu RQ table is 211 bytes");
	if (!ok(dul_decode_assoc(echoscu_rq, sizeof(echoscu_rq), A, &E) == 0,
	    "echoscu's A-ASSOCIATE-RQ decodes"))
		diag("  %s", E.msg);
	is_int(A->type, DUL_ASSOCIATE_RQ, "  type RQ");
	is_str(A->called_ae, "ANY-SCP", "  called AE, spaces trimmed");
	is_str(A->calling_ae, "ECHOSCU", "  calling AE");
	is_str(A->app_context, DUL_APP_CONTEXT_DICOM, "  application context");
	is_int(A->n_pctx, 1, "  one presentation context");
	is_int(A->pctx[0].id, 1, "  its ID");
	is_str(A->pctx[0].abstract, VERIFICATION, "  Verification");
	is_int(A->pctx[0].ts_count, 1, "  one transfer syntax");
	is_str(dul_pctx_ts(A, &A->pctx[0], 0), IMPLICIT_LE, "  implicit LE");
	is_str(dul_pctx_ts(A, &A->pctx[0], 1), "", "  out of range is \"\"");
	is_int(A->max_length, 16384, "  maximum length 16384");
	is_str(A->impl_class, "1.2.276.0.7230010.3.0.3.6.7",
	    "  implementation class UID");
	is_str(A->impl_version, "OFFIS_DCMTK_367", "  version name");
	is_int(A->unknown, 0, "  nothing skipped");
	ok(dul_assoc_pctx(A, 1) == &A->pctx[0] && dul_assoc_pctx(A, 3) ==
	    NULL, "  dul_assoc_pctx finds context 1 only");

	n = dul_encode_assoc(A, out, sizeof(out), &E);
	is_int(n, sizeof(echoscu_rq), "re-encoding has the same size");
	out[105] = 0xff;	/* the reserved byte DCMTK sets */
	ok(n == sizeof(echoscu_rq) && memcmp(out, echoscu_rq, n) == 0,
	    "  and the same bytes but the reserved 0xff");
}

/* Our AC to that RQ, by hand from PS3.8 9.3.3. */
static const uint8_t our_ac[] = {
	0x02, 0x00, 0x00, 0x00, 0x00, 0xbd, 0x00, 0x01, 0x00, 0x00,
	'A', 'N', 'Y', '-', 'S', 'C', 'P', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	' ', ' ',
	'E', 'C', 'H', 'O', 'S', 'C', 'U', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	' ', ' ',
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0x10, 0x00, 0x00, 0x15, '1', '.', '2', '.', '8', '4', '0', '.', '1',
	'0', '0', '0', '8', '.', '3', '.', '1', '.', '1', '.', '1',
	/* 99: context 1 accepted, implicit LE */
	0x21, 0x00, 0x00, 0x19, 0x01, 0x00, 0x00, 0x00,
	0x40, 0x00, 0x00, 0x11, '1', '.', '2', '.', '8', '4', '0', '.', '1',
	'0', '0', '0', '8', '.', '1', '.', '2',
	/* 128: context 3 rejected: abstract syntax not supported */
	0x21, 0x00, 0x00, 0x04, 0x03, 0x00, 0x03, 0x00,
	/* 136: user information */
	0x50, 0x00, 0x00, 0x37,
	0x51, 0x00, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00,
	0x52, 0x00, 0x00, 0x1d, '1', '.', '2', '.', '8', '2', '6', '.', '0',
	'.', '1', '.', '3', '6', '8', '0', '0', '4', '3', '.', '1', '0', '.',
	'1', '2', '9', '7', '.', '1',
	0x55, 0x00, 0x00, 0x0a, 'V', 'N', 'A', 'M', 'I', 'G', '_', '0', '1',
	'0',
};

static void
build_ac(struct dul_assoc *a)
{
	struct dul_pctx *pc;

	dul_assoc_init(a, DUL_ASSOCIATE_AC);
	strcpy(a->called_ae, "ANY-SCP");
	strcpy(a->calling_ae, "ECHOSCU");
	pc = dul_assoc_add_pctx(a, 1, DUL_PCTX_ACCEPTANCE, NULL);
	dul_assoc_add_ts(a, pc, IMPLICIT_LE);
	dul_assoc_add_pctx(a, 3, DUL_PCTX_ABSTRACT_NOT_SUPPORTED, NULL);
	a->max_length = 65536;
	strcpy(a->impl_class, "1.2.826.0.1.3680043.10.1297.1");
	strcpy(a->impl_version, "VNAMIG_010");
}

static void
t_ac(void)
{
	uint8_t out[512];
	size_t n;

	build_ac(B);
	n = dul_encode_assoc(B, out, sizeof(out), &E);
	is_int(n, sizeof(our_ac), "our A-ASSOCIATE-AC has 195 bytes");
	ok(n == sizeof(our_ac) && memcmp(out, our_ac, n) == 0,
	    "  byte for byte as PS3.8 9.3.3 lays it out");
	if (!ok(dul_decode_assoc(our_ac, sizeof(our_ac), A, &E) == 0,
	    "  and decodes"))
		diag("  %s", E.msg);
	ok(dul_assoc_equal(A, B), "  to what was encoded");
	is_int(A->pctx[1].result, DUL_PCTX_ABSTRACT_NOT_SUPPORTED,
	    "  context 3 rejected (3)");
	is_int(A->pctx[1].ts_count, 0, "  without a transfer syntax");
	is_int(dul_encode_assoc(B, NULL, 0, &E), sizeof(our_ac),
	    "  sizing with no buffer");
	memset(out, 0xaa, sizeof(out));
	is_int(dul_encode_assoc(B, out, 100, &E), sizeof(our_ac),
	    "  a 100-byte buffer gets the size back");
	ok(out[100] == 0xaa && out[101] == 0xaa, "  and nothing past it");
}

/* ---- round trips ---- */

static const uint8_t ext_info[] = { 1, 1, 0 };
static const uint8_t user_name[] = "alice", pass[] = "secret",
    token[] = "server-says-hi";

static void
build_full_rq(struct dul_assoc *a)
{
	struct dul_pctx *pc;

	dul_assoc_init(a, DUL_ASSOCIATE_RQ);
	strcpy(a->called_ae, "STORE SCP");	/* inner space kept */
	strcpy(a->calling_ae, "../../etc/passwd");
	pc = dul_assoc_add_pctx(a, 1, 0, VERIFICATION);
	dul_assoc_add_ts(a, pc, IMPLICIT_LE);
	pc = dul_assoc_add_pctx(a, 255, 0, CT_STORAGE);
	dul_assoc_add_ts(a, pc, EXPLICIT_LE);
	dul_assoc_add_ts(a, pc, IMPLICIT_LE);
	dul_assoc_add_ts(a, pc, EXPLICIT_BE);
	a->max_length = 0;
	strcpy(a->impl_class, "1.2.3.4");
	strcpy(a->impl_version, "V1.0 beta");
	a->has_async = 1;
	a->async_invoked = 5;
	a->async_performed = 3;
	a->n_role = 2;
	strcpy(a->role[0].sop_class, CT_STORAGE);
	a->role[0].scu = 1;
	a->role[0].scp = 0;
	strcpy(a->role[1].sop_class, VERIFICATION);
	a->role[1].scp = 1;
	a->n_extneg = 1;
	strcpy(a->extneg[0].sop_class, "1.2.840.10008.5.1.4.1.2.2.1");
	a->extneg[0].info = ext_info;
	a->extneg[0].info_len = sizeof(ext_info);
	a->n_common = 2;
	strcpy(a->common[0].sop_class, "1.2.840.10008.5.1.4.1.1.88.40");
	strcpy(a->common[0].service_class, "1.2.840.10008.4.2");
	a->common[0].related_first = (uint16_t)a->n_uid;
	strcpy(a->uid[a->n_uid++], "1.2.840.10008.5.1.4.1.1.88.22");
	strcpy(a->uid[a->n_uid++], "1.2.840.10008.5.1.4.1.1.88.33");
	a->common[0].related_count = 2;
	strcpy(a->common[1].sop_class, "1.2.3");
	strcpy(a->common[1].service_class, "1.2.4");
	a->common[1].related_first = (uint16_t)a->n_uid;
	a->has_identity_rq = 1;
	a->identity_type = 2;
	a->identity_response_requested = 1;
	a->identity_primary = user_name;
	a->identity_primary_len = 5;
	a->identity_secondary = pass;
	a->identity_secondary_len = 6;
}

static void
roundtrip(const char *name)
{
	static uint8_t out[1 << 16], again[1 << 16];
	size_t n, m;

	n = dul_encode_assoc(B, out, sizeof(out), &E);
	if (!ok(n > 0 && n <= sizeof(out), "%s encodes", name))
		diag("  %s", E.msg);
	if (!ok(dul_decode_assoc(out, n, A, &E) == 0, "  decodes"))
		diag("  %s", E.msg);
	ok(dul_assoc_equal(A, B), "  to the same parameters");
	m = dul_encode_assoc(A, again, sizeof(again), &E);
	ok(m == n && memcmp(out, again, n) == 0, "  and re-encodes the same");
}

static void
t_roundtrips(void)
{
	build_full_rq(B);
	roundtrip("RQ with every user information sub-item");
	is_str(A->calling_ae, "../../etc/passwd", "  '../' AE title kept as is");
	is_str(A->called_ae, "STORE SCP", "  inner space kept");
	is_int(A->pctx[1].id, 255, "  context 255");
	is_str(dul_pctx_ts(A, &A->pctx[1], 2), EXPLICIT_BE, "  its third TS");
	is_int(A->async_invoked * 10 + A->async_performed, 53,
	    "  async window 5/3");
	ok(A->n_role == 2 && A->role[0].scu == 1 && A->role[1].scp == 1,
	    "  two role selections");
	ok(A->extneg[0].info_len == 3 && A->extneg[0].info[0] == 1,
	    "  extended negotiation info");
	ok(A->common[0].related_count == 2 && strcmp(A->uid[
	    A->common[0].related_first + 1], "1.2.840.10008.5.1.4.1.1.88.33")
	    == 0 && A->common[1].related_count == 0,
	    "  common extended negotiation with 2 and 0 related classes");
	ok(A->has_identity_rq && A->identity_type == 2 &&
	    A->identity_primary_len == 5 && memcmp(A->identity_primary,
	    "alice", 5) == 0 && A->identity_secondary_len == 6,
	    "  user identity username+passcode");

	build_full_rq(B);
	B->type = DUL_ASSOCIATE_AC;
	B->has_identity_rq = 0;
	B->has_identity_ac = 1;
	B->identity_response = token;
	B->identity_response_len = sizeof(token) - 1;
	B->n_common = 0;
	B->pctx[0].abstract[0] = B->pctx[1].abstract[0] = '\0';
	B->pctx[1].ts_count = 1;
	dul_assoc_add_pctx(B, 7, DUL_PCTX_USER_REJECTION, NULL);
	dul_assoc_add_pctx(B, 9, DUL_PCTX_NO_REASON, NULL);
	dul_assoc_add_pctx(B, 11, DUL_PCTX_TRANSFER_NOT_SUPPORTED, NULL);
	roundtrip("AC with every sub-item and each result");
	ok(A->has_identity_ac && A->identity_response_len == 14,
	    "  user identity server response");
	is_int(A->n_pctx, 5, "  five contexts");
}

static void
t_short(void)
{
	static const uint8_t rj[] = { 3, 0, 0, 0, 0, 4, 0, 1, 1, 7 },
	    rq[] = { 5, 0, 0, 0, 0, 4, 0, 0, 0, 0 },
	    rp[] = { 6, 0, 0, 0, 0, 4, 0, 0, 0, 0 },
	    ab[] = { 7, 0, 0, 0, 0, 4, 0, 0, 2, 6 };
	uint8_t b[DUL_SHORT_PDU_LEN], t = 0;
	struct dul_rj r;
	struct dul_abort a;

	dul_encode_rj(b, 1, 1, 7);
	ok(memcmp(b, rj, 10) == 0, "A-ASSOCIATE-RJ 1/1/7 encodes");
	ok(dul_decode_rj(rj, 10, &r, &E) == 0 && r.result == 1 &&
	    r.source == 1 && r.reason == 7, "  and decodes");
	dul_encode_release(b, DUL_RELEASE_RQ);
	ok(memcmp(b, rq, 10) == 0, "A-RELEASE-RQ encodes");
	ok(dul_decode_release(rq, 10, &t, &E) == 0 && t == DUL_RELEASE_RQ,
	    "  and decodes");
	dul_encode_release(b, DUL_RELEASE_RP);
	ok(memcmp(b, rp, 10) == 0, "A-RELEASE-RP encodes");
	ok(dul_decode_release(rp, 10, &t, &E) == 0 && t == DUL_RELEASE_RP,
	    "  and decodes");
	dul_encode_abort(b, DUL_ABORT_SOURCE_PROVIDER, DUL_ABORT_INVALID_PARAM);
	ok(memcmp(b, ab, 10) == 0, "A-ABORT 2/6 encodes");
	ok(dul_decode_abort(ab, 10, &a, &E) == 0 && a.source == 2 &&
	    a.reason == 6, "  and decodes");
	ok(dul_decode_abort(rj, 10, &a, &E) == -1 && E.code == DUL_E_PDU_TYPE,
	    "an RJ is not an A-ABORT");
	is_str(E.msg, "A-ASSOCIATE-RJ PDU given where A-ABORT was expected",
	    "  message");
	ok(dul_decode_rj(rj, 9, &r, &E) == -1 && E.code == DUL_E_TRUNCATED,
	    "a 9-byte RJ is truncated");
	is_str(E.msg, "A-ASSOCIATE-RJ PDU at byte 2: length 4, but 3 bytes "
	    "follow the header", "  message");
	is_str(dul_rj_reason_name(2, 2), "protocol-version-not-supported",
	    "RJ reason names");
}

static void
t_pdata(void)
{
	static const uint8_t hdr[] = { 4, 0, 0, 0, 0, 16, 0, 0, 0, 12, 1, 3 };
	static const uint8_t three[] = { 4, 0, 0, 0, 0, 24,
	    0, 0, 0, 6, 1, 0, 'a', 'b', 'c', 'd',
	    0, 0, 0, 2, 3, 2,
	    0, 0, 0, 4, 5, 1, 'x', 'y' };
	uint8_t b[DUL_PDATA_HEADER_LEN], b3[sizeof(three)];
	struct dul_pdv_iter it;
	struct dul_pdv v;

	is_int(dul_encode_pdata_header(b, 1, 1, 1, 10), 12,
	    "P-DATA-TF header for a 10-byte last command fragment");
	ok(memcmp(b, hdr, 12) == 0, "  bytes");
	is_int(dul_encode_pdata_header(b, 1, 0, 0, UINT32_MAX - 5), 0,
	    "  a fragment too large for a PDU is refused");
	is_int(dul_pdata_fragment_max(16384), 16378,
	    "max fragment for 16384 is 16378");
	is_int(dul_pdata_fragment_max(6), 0, "  none for 6");

	ok(dul_pdata_begin(&it, three, sizeof(three) - 2, &E) == -1 &&
	    E.code == DUL_E_TRUNCATED, "P-DATA-TF 2 bytes short: truncated");
	is_str(E.msg, "P-DATA-TF PDU at byte 2: length 24, but 22 bytes "
	    "follow the header", "  message");
	memcpy(b3, three, sizeof(three));
	b3[5] = 20;
	ok(dul_pdata_begin(&it, b3, sizeof(b3), &E) == -1 &&
	    E.code == DUL_E_PDU_LENGTH, "P-DATA-TF length less than given");
	is_int(dul_pdata_next(&it, &v, &E), 0, "  yields nothing");

	is_int(dul_pdata_begin(&it, three, sizeof(three), &E), 0,
	    "three PDVs: begin");
	ok(dul_pdata_next(&it, &v, &E) == 1 && v.pcid == 1 && !v.command &&
	    !v.last && v.len == 4 && memcmp(v.data, "abcd", 4) == 0 &&
	    v.offset == 6, "  dataset fragment, not last, 4 bytes at 6");
	ok(dul_pdata_next(&it, &v, &E) == 1 && v.pcid == 3 && !v.command &&
	    v.last && v.len == 0 && v.offset == 16,
	    "  empty last dataset fragment");
	ok(dul_pdata_next(&it, &v, &E) == 1 && v.pcid == 5 && v.command &&
	    !v.last && v.len == 2 && v.data[1] == 'y',
	    "  command fragment, not last");
	is_int(dul_pdata_next(&it, &v, &E), 0, "  then the end");
}

/* ---- framing and hostile input ---- */

static void
t_framing(void)
{
	static const uint8_t big[6] = { 4, 0, 0xff, 0xff, 0xff, 0xff },
	    bigrq[6] = { 1, 0, 0xff, 0xff, 0xff, 0xff },
	    http[] = "GET / HTTP/1.1\r\n",
	    tls[6] = { 0x16, 3, 1, 0, 0xa5, 1 },
	    unk[6] = { 8, 0, 0, 0, 0, 4 },
	    rj5[6] = { 3, 0, 0, 0, 0, 5 },
	    rqshort[6] = { 1, 0, 0, 0, 0, 10 },
	    pd0[6] = { 4, 0, 0, 0, 0, 0 };
	struct dul_header h;

	ok(dul_header_decode(big, &h, &E) == 0 && h.type == 4 &&
	    h.length == 0xffffffffu, "header: P-DATA-TF of 0xFFFFFFFF bytes");
	ok(dul_header_check(&h, 16384, &E) == -1 && E.code == DUL_E_TOO_LONG,
	    "  over a 16384 limit");
	is_str(E.msg, "P-DATA-TF PDU at byte 2: length 4294967295 is over the "
	    "limit of 16384", "  message");
	aborts(DUL_ABORT_INVALID_PARAM);
	is_int(dul_header_check(&h, 0, &E), 0, "  fine with no limit");
	dul_header_decode(bigrq, &h, &E);
	ok(dul_header_check(&h, 65536, &E) == -1 && E.code == DUL_E_TOO_LONG,
	    "A-ASSOCIATE-RQ over the size limit");
	aborts(DUL_ABORT_NOT_SPECIFIED);

	ok(dul_header_decode(http, &h, &E) == -1 && E.code == DUL_E_PDU_TYPE,
	    "HTTP text is no PDU");
	is_str(E.msg, "unrecognized PDU type 0x47 at byte 0: the bytes "
	    "\"GET / \" look like text (HTTP?), not a DICOM PDU", "  message");
	aborts(DUL_ABORT_UNRECOGNIZED_PDU);
	ok(dul_header_decode(tls, &h, &E) == -1 && strstr(E.msg, "TLS"),
	    "TLS ClientHello is named");
	ok(dul_header_decode(unk, &h, &E) == -1 && E.code == DUL_E_PDU_TYPE,
	    "unknown PDU type 0x08");
	is_str(E.msg, "unrecognized PDU type 0x08 at byte 0 (header "
	    "\"\\x08\\x00\\x00\\x00\\x00\\x04\")", "  message");
	aborts(DUL_ABORT_UNRECOGNIZED_PDU);
	ok(dul_decode_assoc(http, sizeof(http) - 1, A, &E) == -1 &&
	    E.code == DUL_E_PDU_TYPE, "  decode_assoc refuses HTTP too");

	dul_header_decode(rj5, &h, &E);
	ok(dul_header_check(&h, 0, &E) == -1 && E.code == DUL_E_PDU_LENGTH,
	    "A-ASSOCIATE-RJ of length 5");
	is_str(E.msg, "A-ASSOCIATE-RJ PDU at byte 2: length 5, expected 4",
	    "  message");
	dul_header_decode(rqshort, &h, &E);
	ok(dul_header_check(&h, 0, &E) == -1 && E.code == DUL_E_PDU_LENGTH,
	    "A-ASSOCIATE-RQ shorter than its fixed fields");
	dul_header_decode(pd0, &h, &E);
	ok(dul_header_check(&h, 0, &E) == -1 && E.code == DUL_E_PDU_LENGTH,
	    "empty P-DATA-TF");

	std_rq(&W);
	is_int(dul_decode_assoc(W.b, W.n, A, &E), 0, "standard RQ decodes");
	W.n -= 5;
	fails(&W, DUL_E_TRUNCATED, NULL, "  less 5 bytes: truncated");
	ok(dul_decode_assoc(W.b, 3, A, &E) == -1 && E.code == DUL_E_TRUNCATED,
	    "  3 bytes: shorter than a header");
}

static void
t_items_past_parent(void)
{
	uint8_t fill[112];

	/* the example of the brief: a context claiming 300 bytes */
	memset(fill, 0, sizeof(fill));
	HEAD(&W, "ANY-SCP", "ECHOSCU");
	open_(&W, DUL_ITEM_PCTX_RQ);
	put(&W, fill, sizeof(fill));
	close_(&W, 300);
	close_(&W, -1);
	fails(&W, DUL_E_ITEM_LENGTH, "presentation context item at byte 74: "
	    "length 300 runs past the end of its PDU (ends at 190)",
	    "presentation context past the PDU");
	aborts(DUL_ABORT_INVALID_PARAM);
	is_int(E.offset, 74, "  offset 74");
	is_int(E.item_type, DUL_ITEM_PCTX_RQ, "  item type 0x20");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	open_(&W, DUL_ITEM_PCTX_RQ);
	put(&W, "\1\0\0\0", 4);
	open_(&W, DUL_ITEM_ABSTRACT);
	put(&W, VERIFICATION, strlen(VERIFICATION));
	close_(&W, 40);
	close_(&W, -1);
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_ITEM_LENGTH, "abstract syntax sub-item at byte 107: "
	    "length 40 runs past the end of its presentation context item "
	    "(ends at 128)", "abstract syntax past its context");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	open_(&W, DUL_ITEM_USER_INFO);
	maxlen(&W, 16384);
	close_(&W, 99);
	close_(&W, -1);
	fails(&W, DUL_E_ITEM_LENGTH, "user information item at byte 149: "
	    "length 99 runs past the end of its PDU (ends at 161)",
	    "user information past the PDU");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	open_(&W, DUL_ITEM_USER_INFO);
	open_(&W, DUL_ITEM_MAX_LENGTH);
	b32(&W, 16384);
	close_(&W, 8);
	close_(&W, -1);
	close_(&W, -1);
	fails(&W, DUL_E_ITEM_LENGTH, "maximum length sub-item at byte 153: "
	    "length 8 runs past the end of its user information item (ends "
	    "at 161)", "maximum length past the user information");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	open_(&W, DUL_ITEM_USER_INFO);
	open_(&W, DUL_ITEM_MAX_LENGTH);
	b32(&W, 16384);
	b16(&W, 0);
	close_(&W, -1);
	close_(&W, -1);
	close_(&W, -1);
	fails(&W, DUL_E_ITEM_LENGTH, "maximum length sub-item at byte 153: "
	    "length 6, expected 4", "maximum length of length 6");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	open_(&W, DUL_ITEM_USER_INFO);
	maxlen(&W, 16384);
	open_(&W, DUL_ITEM_ROLE);
	b16(&W, strlen(CT_STORAGE));
	put(&W, CT_STORAGE, strlen(CT_STORAGE));
	b8(&W, 1);
	b8(&W, 1);
	close_(&W, 90);
	close_(&W, -1);
	close_(&W, -1);
	fails(&W, DUL_E_ITEM_LENGTH, "role selection sub-item at byte 161: "
	    "length 90 runs past the end of its user information item (ends "
	    "at 194)", "role selection past the user information");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	open_(&W, DUL_ITEM_USER_INFO);
	maxlen(&W, 16384);
	open_(&W, DUL_ITEM_ROLE);
	b16(&W, 70);
	put(&W, CT_STORAGE, strlen(CT_STORAGE));
	b8(&W, 1);
	b8(&W, 1);
	close_(&W, -1);
	close_(&W, -1);
	close_(&W, -1);
	fails(&W, DUL_E_ITEM_LENGTH, "role selection sub-item at byte 161: "
	    "SOP class UID length 70 at byte 165 runs past its end (at 194)",
	    "role selection UID length past the sub-item");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	open_(&W, DUL_ITEM_USER_INFO);
	maxlen(&W, 16384);
	open_(&W, DUL_ITEM_ROLE);
	b16(&W, strlen(CT_STORAGE));
	put(&W, CT_STORAGE, strlen(CT_STORAGE));
	b8(&W, 1);
	close_(&W, -1);
	close_(&W, -1);
	close_(&W, -1);
	fails(&W, DUL_E_ITEM_LENGTH, "role selection sub-item at byte 161: "
	    "1 bytes after the SOP class UID, expected 2 (SCU and SCP role)",
	    "role selection without its SCP role byte");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	user(&W);
	put(&W, "\x50\0", 2);
	close_(&W, -1);
	fails(&W, DUL_E_ITEM_LENGTH, "user information item at byte 161: only 2 "
	    "bytes left before the end of its PDU (at 163), too few for an "
	    "item header", "2 stray bytes at the end");
}

static void
t_pdv(void)
{
	static uint8_t len0[] = { 4, 0, 0, 0, 0, 6, 0, 0, 0, 0, 1, 3 },
	    len1[] = { 4, 0, 0, 0, 0, 6, 0, 0, 0, 1, 1, 3 },
	    past[] = { 4, 0, 0, 0, 0, 10, 0, 0, 0, 0x40, 1, 3, 'a', 'b', 'c',
	    'd' },
	    huge[] = { 4, 0, 0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 1, 3 },
	    stub[] = { 4, 0, 0, 0, 0, 10, 0, 0, 0, 2, 1, 3, 0, 0, 0, 9 };
	struct dul_pdv_iter it;
	struct dul_pdv v;

	dul_pdata_begin(&it, len0, sizeof(len0), &E);
	ok(dul_pdata_next(&it, &v, &E) == -1 && E.code == DUL_E_PDV,
	    "PDV length 0");
	is_str(E.msg, "PDV item at byte 6: length 0 is less than 2 (context "
	    "ID and message control header)", "  message");
	aborts(DUL_ABORT_INVALID_PARAM);
	is_int(dul_pdata_next(&it, &v, &E), 0, "  the walk is over");
	dul_pdata_begin(&it, len1, sizeof(len1), &E);
	ok(dul_pdata_next(&it, &v, &E) == -1 && E.code == DUL_E_PDV,
	    "PDV length 1");
	dul_pdata_begin(&it, past, sizeof(past), &E);
	ok(dul_pdata_next(&it, &v, &E) == -1 && E.code == DUL_E_PDV,
	    "PDV past the PDU");
	is_str(E.msg, "PDV item at byte 6: length 64 runs past the end of its "
	    "PDU (ends at 16)", "  message");
	dul_pdata_begin(&it, huge, sizeof(huge), &E);
	ok(dul_pdata_next(&it, &v, &E) == -1 && E.code == DUL_E_PDV,
	    "PDV length 0xFFFFFFFF");
	dul_pdata_begin(&it, stub, sizeof(stub), &E);
	ok(dul_pdata_next(&it, &v, &E) == 1 && v.len == 0,
	    "first PDV fine");
	ok(dul_pdata_next(&it, &v, &E) == -1 && strstr(E.msg, "only 4 bytes "
	    "left") != NULL, "  then 4 stray bytes: %s", E.msg);
}

static void
t_ae_titles(void)
{
	head(&W, DUL_ASSOCIATE_RQ, 1, "ANY\0SCP", 7, "ECHOSCU", 7);
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_CALLED_AE, "called AE title at byte 10: a NUL byte "
	    "0x00 at position 3 is not allowed in an AE title",
	    "called AE title with a NUL");
	rejects(DUL_RJ_PERMANENT, DUL_RJ_SOURCE_USER, DUL_RJ_USER_CALLED_AE);
	is_int(A->n_pctx, 1, "  the rest is decoded");

	head(&W, DUL_ASSOCIATE_RQ, 1, "ANY-SCP", 7, "", 0);
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_CALLING_AE, "calling AE title at byte 26: it is all "
	    "spaces (no AE title)", "calling AE title of 16 spaces");
	rejects(DUL_RJ_PERMANENT, DUL_RJ_SOURCE_USER, DUL_RJ_USER_CALLING_AE);

	HEAD(&W, "ANY-SCP", "EVIL\nAE");
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_CALLING_AE, "calling AE title at byte 26: byte 0x0a "
	    "at position 4 is not allowed in an AE title",
	    "calling AE title with a newline");

	HEAD(&W, "ANY-SCP", "A\\B");
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_CALLING_AE, NULL, "calling AE title with a backslash");

	HEAD(&W, "  ../../x  ", "../../etc/passwd");
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	user(&W);
	close_(&W, -1);
	if (!ok(dul_decode_assoc(W.b, W.n, A, &E) == 0,
	    "AE titles with ../ are valid AE titles"))
		diag("  %s", E.msg);
	is_str(A->called_ae, "../../x", "  leading/trailing spaces dropped");
	is_str(A->calling_ae, "../../etc/passwd", "  reported as they are");

	/* an AC's AE titles are not tested */
	head(&W, DUL_ASSOCIATE_AC, 1, "", 0, "X\0Y", 3);
	app(&W);
	user(&W);
	close_(&W, -1);
	if (!ok(dul_decode_assoc(W.b, W.n, A, &E) == 0,
	    "an AC's AE titles are not tested"))
		diag("  %s", E.msg);
	ok(A->called_ae[0] == '\0' && strcmp(A->calling_ae, "X") == 0,
	    "  kept up to a NUL");
}

static void
t_reject_cases(void)
{
	head(&W, DUL_ASSOCIATE_RQ, 2, "ANY-SCP", 7, "ECHOSCU", 7);
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_VERSION, "A-ASSOCIATE-RQ PDU at byte 6: protocol "
	    "version 0x0002 lacks bit 0 (version 1)", "protocol version 2");
	rejects(DUL_RJ_PERMANENT, DUL_RJ_SOURCE_ACSE,
	    DUL_RJ_ACSE_PROTOCOL_VERSION);
	W.b[7] = 3;
	is_int(dul_decode_assoc(W.b, W.n, A, &E), 0,
	    "  versions 1 and 2 (bit 0 set) is fine");
	W.b[0] = DUL_ASSOCIATE_AC;
	W.b[7] = 2;
	fails(&W, DUL_E_VERSION, NULL, "  in an AC");
	aborts(DUL_ABORT_INVALID_PARAM);

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	str_item(&W, DUL_ITEM_APP_CONTEXT, "1.2.3.4");
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_APP_CONTEXT, "application context item at byte 74: "
	    "name is not the DICOM application context 1.2.840.10008.3.1.1.1",
	    "wrong application context");
	rejects(DUL_RJ_PERMANENT, DUL_RJ_SOURCE_USER, DUL_RJ_USER_APP_CONTEXT);
	ok(strcmp(A->app_context, "1.2.3.4") == 0 && A->n_pctx == 1 &&
	    A->max_length == 16384, "  fully decoded nevertheless");

	/* a structural error after a reject-class one wins */
	HEAD(&W, "ANY-SCP", "");
	str_item(&W, DUL_ITEM_APP_CONTEXT, "1.2.3.4");
	pctx(&W, 2, VERIFICATION, IMPLICIT_LE);
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_VALUE, "presentation context item at byte 85: context "
	    "ID 2 is not odd (1..255)", "even context ID after bad AE title");
	aborts(DUL_ABORT_INVALID_PARAM);
}

static void
t_structure(void)
{
	int i;

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	str_item(&W, 0x33, "unknown item");
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	open_(&W, DUL_ITEM_USER_INFO);
	maxlen(&W, 16384);
	str_item(&W, 0x7f, "unknown sub-item");
	str_item(&W, 0xa0, "");
	close_(&W, -1);
	close_(&W, -1);
	if (!ok(dul_decode_assoc(W.b, W.n, A, &E) == 0,
	    "unrecognized items and sub-items are skipped"))
		diag("  %s", E.msg);
	is_int(A->unknown, 3, "  and counted");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	open_(&W, DUL_ITEM_PCTX_AC);
	put(&W, "\1\0\0\0", 4);
	str_item(&W, DUL_ITEM_TRANSFER, IMPLICIT_LE);
	close_(&W, -1);
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_UNEXPECTED, "presentation context item at byte 99: "
	    "not allowed in an A-ASSOCIATE-RQ", "AC context in an RQ");
	aborts(DUL_ABORT_UNEXPECTED_PARAM);

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_UNEXPECTED, "application context item at byte 99: a "
	    "second one", "two application contexts");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	pctx(&W, 1, CT_STORAGE, IMPLICIT_LE);
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_VALUE, "presentation context item at byte 149: context "
	    "ID 1 is given twice", "context ID twice");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	open_(&W, DUL_ITEM_PCTX_RQ);
	put(&W, "\1\0\0\0", 4);
	str_item(&W, DUL_ITEM_TRANSFER, IMPLICIT_LE);
	close_(&W, -1);
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_MISSING, "presentation context item at byte 99 (ID 1): "
	    "no abstract syntax sub-item", "context without abstract syntax");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	open_(&W, DUL_ITEM_PCTX_RQ);
	put(&W, "\1\0\0\0", 4);
	str_item(&W, DUL_ITEM_ABSTRACT, VERIFICATION);
	close_(&W, -1);
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_MISSING, NULL, "context without transfer syntax");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_MISSING, "A-ASSOCIATE-RQ PDU at byte 74: no "
	    "presentation context item", "RQ without contexts");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	close_(&W, -1);
	fails(&W, DUL_E_MISSING, "A-ASSOCIATE-RQ PDU at byte 74: no user "
	    "information item", "RQ without user information");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	open_(&W, DUL_ITEM_USER_INFO);
	str_item(&W, DUL_ITEM_IMPL_CLASS, "1.2.3");
	close_(&W, -1);
	close_(&W, -1);
	fails(&W, DUL_E_MISSING, "user information item at byte 149: no "
	    "maximum length sub-item (PS3.8 D.1 requires one)",
	    "user information without maximum length");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	open_(&W, DUL_ITEM_USER_INFO);
	maxlen(&W, 1);
	maxlen(&W, 2);
	close_(&W, -1);
	close_(&W, -1);
	fails(&W, DUL_E_UNEXPECTED, "maximum length sub-item at byte 161: a "
	    "second one in the user information item", "two maximum lengths");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	pctx(&W, 1, VERIFICATION, "1.2.840.10008.1.2.x");
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_VALUE, "transfer syntax sub-item at byte 128: transfer "
	    "syntax has byte 0x78 at position 18; only digits and '.' are "
	    "allowed", "transfer syntax with a letter");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	pctx(&W, 1, "1.2..3", IMPLICIT_LE);
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_VALUE, "abstract syntax sub-item at byte 107: abstract "
	    "syntax \"1.2..3\" has an empty component", "UID with '..'");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	pctx(&W, 1, "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21"
	    ".22.23.24.25", IMPLICIT_LE);
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_VALUE, "abstract syntax sub-item at byte 107: abstract "
	    "syntax of 65 characters is longer than 64", "UID of 65 characters");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	open_(&W, DUL_ITEM_PCTX_RQ);
	put(&W, "\1\0\0\0", 4);
	str_item(&W, DUL_ITEM_ABSTRACT, VERIFICATION);
	open_(&W, DUL_ITEM_TRANSFER);
	put(&W, IMPLICIT_LE "\0", strlen(IMPLICIT_LE) + 1);
	close_(&W, -1);
	close_(&W, -1);
	user(&W);
	close_(&W, -1);
	ok(dul_decode_assoc(W.b, W.n, A, &E) == 0 &&
	    strcmp(dul_pctx_ts(A, &A->pctx[0], 0), IMPLICIT_LE) == 0,
	    "a NUL-padded UID is accepted without its pad");

	/* 513 transfer syntaxes: over the pool */
	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	for (i = 0; i < 3; i++) {
		open_(&W, DUL_ITEM_PCTX_RQ);
		b8(&W, 2 * i + 1);
		put(&W, "\0\0\0", 3);
		str_item(&W, DUL_ITEM_ABSTRACT, VERIFICATION);
		for (int j = 0; j < 171; j++)
			str_item(&W, DUL_ITEM_TRANSFER, IMPLICIT_LE);
		close_(&W, -1);
	}
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_LIMIT, NULL, "513 transfer syntaxes");
	ok(strstr(E.msg, "more than 512 transfer syntax") != NULL,
	    "  names the limit");
	rejects(DUL_RJ_PERMANENT, DUL_RJ_SOURCE_USER, DUL_RJ_USER_NO_REASON);

	/* AC: rejected contexts are not tested, accepted ones are */
	head(&W, DUL_ASSOCIATE_AC, 1, "A", 1, "B", 1);
	app(&W);
	open_(&W, DUL_ITEM_PCTX_AC);
	put(&W, "\1\0\3\0", 4);
	put(&W, "garbage", 7);
	close_(&W, -1);
	user(&W);
	close_(&W, -1);
	ok(dul_decode_assoc(W.b, W.n, A, &E) == 0 && A->pctx[0].result == 3,
	    "a rejected AC context's content is not tested");
	W.b[105] = 0;	/* accepted now */
	fails(&W, DUL_E_ITEM_LENGTH, NULL, "  but is when accepted");
	W.b[105] = 9;
	fails(&W, DUL_E_VALUE, "presentation context item at byte 99 (ID 1): "
	    "result/reason 9 is none of 0..4", "  result 9");

	head(&W, DUL_ASSOCIATE_AC, 1, "A", 1, "B", 1);
	app(&W);
	open_(&W, DUL_ITEM_PCTX_AC);
	put(&W, "\1\0\0\0", 4);
	close_(&W, -1);
	user(&W);
	close_(&W, -1);
	fails(&W, DUL_E_MISSING, "presentation context item at byte 99 (ID 1): "
	    "accepted without a transfer syntax sub-item",
	    "accepted AC context without transfer syntax");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	open_(&W, DUL_ITEM_USER_INFO);
	maxlen(&W, 1);
	open_(&W, DUL_ITEM_IDENTITY_RQ);
	put(&W, "\1\0\0\5alice\0\1", 11);
	close_(&W, -1);
	close_(&W, -1);
	close_(&W, -1);
	fails(&W, DUL_E_ITEM_LENGTH, "user identity sub-item at byte 161: "
	    "secondary field length 1 at byte 174 runs past its end (at 176)",
	    "user identity secondary field past its end");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	open_(&W, DUL_ITEM_USER_INFO);
	maxlen(&W, 1);
	open_(&W, DUL_ITEM_COMMON_EXTNEG);
	put(&W, "\0\0051.2.3\0\0051.2.4\0\0", 16);
	put(&W, "x", 1);
	close_(&W, -1);
	close_(&W, -1);
	close_(&W, -1);
	fails(&W, DUL_E_ITEM_LENGTH, "SOP class common extended negotiation "
	    "sub-item at byte 161: its fields end at byte 181, but its length "
	    "runs to 182", "common extended negotiation with a stray byte");

	HEAD(&W, "ANY-SCP", "ECHOSCU");
	app(&W);
	pctx(&W, 1, VERIFICATION, IMPLICIT_LE);
	open_(&W, DUL_ITEM_USER_INFO);
	maxlen(&W, 1);
	str_item(&W, DUL_ITEM_IMPL_VERSION, "SEVENTEEN_CHARS_X");
	close_(&W, -1);
	close_(&W, -1);
	fails(&W, DUL_E_VALUE, "implementation version name sub-item at byte "
	    "161: 17 characters, more than 16", "version name of 17");
}

static void
t_encode_refusals(void)
{
	static uint8_t big[65535];

	build_full_rq(B);
	B->pctx[1].ts_count = 40;
	is_int(dul_encode_assoc(B, NULL, 0, &E), 0,
	    "a context's transfer syntaxes outside the pool");
	is_int(E.code, DUL_E_ENCODE, "  DUL_E_ENCODE");
	diag("  %s", E.msg);

	build_full_rq(B);
	memset(B->calling_ae, 'A', sizeof(B->calling_ae));
	is_int(dul_encode_assoc(B, NULL, 0, &E), 0, "an unterminated AE title");

	build_full_rq(B);
	B->identity_primary = big;
	B->identity_primary_len = 65535;
	is_int(dul_encode_assoc(B, NULL, 0, &E), 0,
	    "a user identity item over 65535 bytes");
	is_str(E.msg, "cannot encode A-ASSOCIATE-RQ: an item or field is "
	    "longer than 65535 bytes", "  message");

	build_full_rq(B);
	ok(dul_assoc_add_ts(B, &B->pctx[0], IMPLICIT_LE) == -1,
	    "add_ts refuses a context that is not the last one");
	ok(dul_assoc_add_pctx(B, 3, 0, "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15."
	    "16.17.18.19.20.21.22.23.24.25") == NULL,
	    "add_pctx refuses a UID over 64");
}

int
main(void)
{
	A = calloc(1, sizeof(*A));
	B = calloc(1, sizeof(*B));
	if (A == NULL || B == NULL)
		return 1;
	t_echoscu();
	t_ac();
	t_roundtrips();
	t_short();
	t_pdata();
	t_framing();
	t_items_past_parent();
	t_pdv();
	t_ae_titles();
	t_reject_cases();
	t_structure();
	t_encode_refusals();
	free(A);
	free(B);
	return done_testing();
}
