/*
 * dul_pdu.h — the DICOM Upper Layer PDU codec (PS3.8 9.3 and Annex D,
 * PS3.7 D.3.3): framing, decoding and encoding of the seven PDU types and
 * of every item of A-ASSOCIATE-RQ/AC. Pure: bytes in, structs out; no
 * sockets, no allocation.
 *
 * A PDU is always handled whole: pdu[0..n) holds its 6-byte header and
 * the PDU-length bytes that follow. Read the header first, frame with
 * dul_header_decode/dul_header_check, read the rest, then decode. Every
 * offset in an error counts bytes of the PDU from its type byte (0).
 *
 * Decoding an A-ASSOCIATE-RQ/AC fills a caller-provided struct dul_assoc
 * of fixed capacity (the DUL_MAX_* limits below; about 70 KiB: allocate
 * it, keep it off small stacks). Short strings (AE titles, UIDs, the
 * implementation version name) are copied into it; the opaque fields
 * (extended negotiation application information, user identity fields)
 * point into the decoded PDU and are valid only as long as its bytes are.
 *
 * What the decoder accepts (and what it refuses, with the A-ABORT or
 * A-ASSOCIATE-RJ the state machine should send, see struct dul_error):
 * - reserved fields are not tested (DCMTK sends 0xff in one of them);
 * - items and sub-items of unrecognized types are skipped and counted
 *   (PS3.8 9.3.1, D.2); a recognized item in a place it does not belong,
 *   or a second one of an item that must be unique, is refused;
 * - UIDs may carry trailing NUL or space padding, which is dropped; they
 *   must be 1..64 characters of digits and dots with no empty component;
 * - the user information item and its maximum length sub-item are
 *   required (PS3.8 9.3.2, D.1);
 * - presentation contexts of an A-ASSOCIATE-AC that were not accepted
 *   keep no transfer syntax (PS3.8 9.3.3.2: "not significant");
 * - an RQ's AE titles must be ISO 646 G0 without backslash and not all
 *   spaces (PS3.5 AE): NUL and control bytes are refused with an
 *   A-ASSOCIATE-RJ; "../" and the like are valid and kept as they are, so
 *   never use an AE title as a path. An AC's titles are not tested
 *   (PS3.8 9.3.3);
 * - user identity (0x58/0x59) and common extended negotiation sub-items
 *   are decoded in either PDU.
 */
#ifndef VNAMIG_DUL_PDU_H
#define VNAMIG_DUL_PDU_H

#include <stddef.h>
#include <stdint.h>

/* PDU types (PS3.8 9.3.1). */
#define DUL_ASSOCIATE_RQ	0x01
#define DUL_ASSOCIATE_AC	0x02
#define DUL_ASSOCIATE_RJ	0x03
#define DUL_P_DATA_TF		0x04
#define DUL_RELEASE_RQ		0x05
#define DUL_RELEASE_RP		0x06
#define DUL_ABORT		0x07

/* Item and sub-item types (PS3.8 9.3.2, Annex D; PS3.7 D.3.3). */
#define DUL_ITEM_APP_CONTEXT	0x10
#define DUL_ITEM_PCTX_RQ	0x20
#define DUL_ITEM_PCTX_AC	0x21
#define DUL_ITEM_ABSTRACT	0x30
#define DUL_ITEM_TRANSFER	0x40
#define DUL_ITEM_USER_INFO	0x50
#define DUL_ITEM_MAX_LENGTH	0x51
#define DUL_ITEM_IMPL_CLASS	0x52
#define DUL_ITEM_ASYNC		0x53
#define DUL_ITEM_ROLE		0x54
#define DUL_ITEM_IMPL_VERSION	0x55
#define DUL_ITEM_EXTNEG		0x56
#define DUL_ITEM_COMMON_EXTNEG	0x57
#define DUL_ITEM_IDENTITY_RQ	0x58
#define DUL_ITEM_IDENTITY_AC	0x59

#define DUL_HEADER_LEN		6	/* type, reserved, 4-byte length */
#define DUL_ASSOC_FIXED_LEN	68	/* RQ/AC fields before the items */
#define DUL_SHORT_PDU_LEN	10	/* RJ, release RQ/RP, abort: whole */
#define DUL_PDATA_HEADER_LEN	12	/* PDU header + one PDV item header */
#define DUL_PROTOCOL_VERSION	0x0001	/* bit 0: version 1 */
#define DUL_APP_CONTEXT_DICOM	"1.2.840.10008.3.1.1.1"

/* Message control header bits of a PDV (PS3.8 E.2). */
#define DUL_MCH_COMMAND		0x01	/* else a dataset fragment */
#define DUL_MCH_LAST		0x02	/* last fragment of the message */

/* Presentation context result/reason (PS3.8 9.3.3.2). */
#define DUL_PCTX_ACCEPTANCE		0
#define DUL_PCTX_USER_REJECTION		1
#define DUL_PCTX_NO_REASON		2
#define DUL_PCTX_ABSTRACT_NOT_SUPPORTED	3
#define DUL_PCTX_TRANSFER_NOT_SUPPORTED	4

/* A-ABORT sources and provider reasons (PS3.8 Table 9-26). */
#define DUL_ABORT_SOURCE_USER		0
#define DUL_ABORT_SOURCE_PROVIDER	2
#define DUL_ABORT_NOT_SPECIFIED		0
#define DUL_ABORT_UNRECOGNIZED_PDU	1
#define DUL_ABORT_UNEXPECTED_PDU	2
#define DUL_ABORT_UNRECOGNIZED_PARAM	4
#define DUL_ABORT_UNEXPECTED_PARAM	5
#define DUL_ABORT_INVALID_PARAM		6

/* A-ASSOCIATE-RJ result, source, reason (PS3.8 Table 9-21). */
#define DUL_RJ_PERMANENT		1
#define DUL_RJ_TRANSIENT		2
#define DUL_RJ_SOURCE_USER		1	/* service-user */
#define DUL_RJ_SOURCE_ACSE		2	/* provider, ACSE related */
#define DUL_RJ_SOURCE_PRESENTATION	3	/* provider, presentation */
#define DUL_RJ_USER_NO_REASON		1
#define DUL_RJ_USER_APP_CONTEXT		2	/* name not supported */
#define DUL_RJ_USER_CALLING_AE		3	/* not recognized */
#define DUL_RJ_USER_CALLED_AE		7	/* not recognized */
#define DUL_RJ_ACSE_NO_REASON		1
#define DUL_RJ_ACSE_PROTOCOL_VERSION	2	/* not supported */
#define DUL_RJ_PRES_CONGESTION		1	/* temporary congestion */
#define DUL_RJ_PRES_LIMIT		2	/* local limit exceeded */

/* Capacities of struct dul_assoc; more is refused with DUL_E_LIMIT. */
#define DUL_AE_MAX		16	/* characters of an AE title */
#define DUL_UID_MAX		64	/* characters of a UID (PS3.5 9.1) */
#define DUL_VERSION_MAX		16	/* implementation version name */
#define DUL_MAX_PCTX		128	/* odd context IDs 1..255 */
#define DUL_MAX_UIDS		512	/* transfer syntaxes of all contexts and
					 * related general SOP classes, together */
#define DUL_MAX_ROLES		128	/* role selection sub-items */
#define DUL_MAX_EXTNEG		128	/* SOP class extended negotiation */
#define DUL_MAX_COMMON_EXTNEG	64	/* SOP class common extended neg. */

enum dul_errcode {
	DUL_OK = 0,
	DUL_E_TRUNCATED,	/* fewer bytes than the header or PDU needs */
	DUL_E_PDU_TYPE,		/* unrecognized PDU type (or not the one
				 * this decoder takes) */
	DUL_E_PDU_LENGTH,	/* PDU length impossible for its type */
	DUL_E_TOO_LONG,		/* PDU length over the caller's limit */
	DUL_E_ITEM_LENGTH,	/* an item or field runs past its parent, or
				 * has the wrong fixed length */
	DUL_E_UNEXPECTED,	/* item not allowed here, or a second one */
	DUL_E_MISSING,		/* a required item is absent */
	DUL_E_VALUE,		/* invalid field value (UID, context ID...) */
	DUL_E_LIMIT,		/* over one of the DUL_MAX_* capacities */
	DUL_E_VERSION,		/* protocol version without bit 0 */
	DUL_E_APP_CONTEXT,	/* RQ: not the DICOM application context */
	DUL_E_CALLING_AE,	/* RQ: invalid calling AE title */
	DUL_E_CALLED_AE,	/* RQ: invalid called AE title */
	DUL_E_PDV,		/* a PDV item of a P-DATA-TF is invalid */
	DUL_E_ENCODE,		/* the struct cannot be encoded */
};

/* What the state machine should answer a decoding error with. */
enum dul_reply {
	DUL_REPLY_ABORT = 0,	/* A-ABORT, source 2, abort_reason */
	DUL_REPLY_REJECT,	/* A-ASSOCIATE-RJ rj_result/source/reason
				 * (only for an A-ASSOCIATE-RQ) */
};

struct dul_error {
	enum dul_errcode	 code;
	enum dul_reply		 reply;
	uint8_t			 abort_reason;	/* DUL_ABORT_* (Table 9-26) */
	uint8_t			 rj_result;	/* with DUL_REPLY_REJECT */
	uint8_t			 rj_source;
	uint8_t			 rj_reason;
	uint8_t			 pdu_type;	/* PDU concerned (0: unknown) */
	uint8_t			 item_type;	/* item concerned, 0 for the PDU
						 * itself */
	size_t			 offset;	/* byte of the PDU it concerns */
	char			 msg[256];	/* e.g. "presentation context item
						 * at byte 74: length 300 runs
						 * past the end of its PDU (ends
						 * at 190)" */
};

struct dul_header {
	uint8_t		 type;
	uint32_t	 length;	/* bytes after the 6-byte header */
};

/* A presentation context of an A-ASSOCIATE-RQ or -AC. Its transfer
 * syntaxes are dul_assoc.uid[ts_first .. ts_first + ts_count). */
struct dul_pctx {
	uint8_t		 id;		/* odd, 1..255 */
	uint8_t		 result;	/* AC: DUL_PCTX_*; RQ: 0 */
	uint16_t	 ts_first;
	uint16_t	 ts_count;	/* RQ: >= 1; AC: 1 if accepted, else 0 */
	char		 abstract[DUL_UID_MAX + 1];	/* RQ only */
};

/* SCP/SCU role selection (PS3.7 D.3.3.4): 1 = support (RQ), accepted
 * (AC); 0 = not. */
struct dul_role {
	char		 sop_class[DUL_UID_MAX + 1];
	uint8_t		 scu;
	uint8_t		 scp;
};

/* SOP class extended negotiation (PS3.7 D.3.3.5); info points into the
 * decoded PDU (or the caller's bytes when encoding). */
struct dul_extneg {
	char		 sop_class[DUL_UID_MAX + 1];
	const uint8_t	*info;
	uint16_t	 info_len;
};

/* SOP class common extended negotiation (PS3.7 D.3.3.6); the related
 * general SOP classes are dul_assoc.uid[related_first ..). */
struct dul_common_extneg {
	char		 sop_class[DUL_UID_MAX + 1];
	char		 service_class[DUL_UID_MAX + 1];
	uint16_t	 related_first;
	uint16_t	 related_count;
};

/*
 * An A-ASSOCIATE-RQ or -AC. Strings are NUL-terminated, "" when absent;
 * AE titles without their leading and trailing spaces. Pointer fields
 * point into the decoded PDU (see the top of this file).
 */
struct dul_assoc {
	uint8_t		 type;		/* DUL_ASSOCIATE_RQ or _AC */
	char		 called_ae[DUL_AE_MAX + 1];
	char		 calling_ae[DUL_AE_MAX + 1];
	char		 app_context[DUL_UID_MAX + 1];

	/* user information (PS3.8 D.1, PS3.7 D.3.3) */
	uint32_t	 max_length;	/* P-DATA-TF PDU length; 0 = no limit */
	char		 impl_class[DUL_UID_MAX + 1];
	char		 impl_version[DUL_VERSION_MAX + 1];
	unsigned	 has_async:1;	/* asynchronous operations window */
	unsigned	 has_identity_rq:1;
	unsigned	 has_identity_ac:1;
	uint16_t	 async_invoked;
	uint16_t	 async_performed;
	uint8_t		 identity_type;	/* 1 username .. 5 JWT (D.3.3.7) */
	uint8_t		 identity_response_requested;
	uint16_t	 identity_primary_len;
	uint16_t	 identity_secondary_len;
	uint16_t	 identity_response_len;
	const uint8_t	*identity_primary;
	const uint8_t	*identity_secondary;
	const uint8_t	*identity_response;	/* AC: server response */

	unsigned	 unknown;	/* unrecognized items skipped */
	unsigned	 n_pctx, n_uid, n_role, n_extneg, n_common;
	struct dul_pctx		 pctx[DUL_MAX_PCTX];
	struct dul_role		 role[DUL_MAX_ROLES];
	struct dul_extneg	 extneg[DUL_MAX_EXTNEG];
	struct dul_common_extneg common[DUL_MAX_COMMON_EXTNEG];
	char		 uid[DUL_MAX_UIDS][DUL_UID_MAX + 1];
};

struct dul_rj {
	uint8_t		 result;	/* DUL_RJ_PERMANENT / _TRANSIENT */
	uint8_t		 source;	/* DUL_RJ_SOURCE_* */
	uint8_t		 reason;
};

struct dul_abort {
	uint8_t		 source;	/* DUL_ABORT_SOURCE_* */
	uint8_t		 reason;	/* DUL_ABORT_* when from the provider */
};

/* One PDV of a P-DATA-TF; data points into the PDU. */
struct dul_pdv {
	uint8_t		 pcid;		/* as sent: check it is negotiated */
	uint8_t		 mch;		/* message control header byte */
	unsigned	 command:1;	/* DUL_MCH_COMMAND */
	unsigned	 last:1;	/* DUL_MCH_LAST */
	const uint8_t	*data;		/* the fragment */
	uint32_t	 len;
	size_t		 offset;	/* of the PDV item in the PDU */
};

/* Walks the PDVs of one P-DATA-TF PDU; see dul_pdata_begin. */
struct dul_pdv_iter {
	const uint8_t	*pdu;
	size_t		 n, off;
};

/* ---- framing ---- */

/*
 * dul_header_decode: the type and length of the PDU whose first 6 bytes
 * are b. Returns 0, or -1 with err (DUL_E_PDU_TYPE, abort reason 1) for a
 * type that is none of the seven; the message says when the bytes look
 * like HTTP or TLS instead.
 */
int dul_header_decode(const uint8_t b[DUL_HEADER_LEN], struct dul_header *h,
    struct dul_error *err);

/*
 * dul_header_check: whether a PDU of this header may be read: its length
 * fits its type (4 for RJ, release and abort; at least 68 for RQ/AC; at
 * least one PDV item for P-DATA-TF) and is at most limit (compare the
 * PDU-length field, which is what PS3.8 D.1's maximum length counts; 0 =
 * no limit). Returns 0, or -1 with err: DUL_E_PDU_LENGTH or
 * DUL_E_TOO_LONG.
 */
int dul_header_check(const struct dul_header *h, uint32_t limit,
    struct dul_error *err);

/* ---- decoding (pdu[0..n): one whole PDU, header included) ---- */

/*
 * dul_decode_assoc: decode an A-ASSOCIATE-RQ or -AC into *a (cleared
 * first). Returns 0, or -1 with err. For an RQ, DUL_E_APP_CONTEXT and
 * the AE title errors come with DUL_REPLY_REJECT and a fully decoded *a (a
 * structural error later in the PDU takes precedence); DUL_E_VERSION and
 * DUL_E_LIMIT also reject, with *a filled only as far as decoding went.
 */
int dul_decode_assoc(const uint8_t *pdu, size_t n, struct dul_assoc *a,
    struct dul_error *err);
/* dul_decode_rj: an A-ASSOCIATE-RJ; values are not checked. 0 or -1. */
int dul_decode_rj(const uint8_t *pdu, size_t n, struct dul_rj *rj,
    struct dul_error *err);
/* dul_decode_release: an A-RELEASE-RQ or -RP; *type gets which. */
int dul_decode_release(const uint8_t *pdu, size_t n, uint8_t *type,
    struct dul_error *err);
/* dul_decode_abort: an A-ABORT; values are not checked. 0 or -1. */
int dul_decode_abort(const uint8_t *pdu, size_t n, struct dul_abort *ab,
    struct dul_error *err);

/*
 * dul_pdata_begin: start walking the P-DATA-TF PDU pdu[0..n), which must
 * stay valid while it is walked. Returns 0, or -1 with err when it is not
 * a P-DATA-TF or its length disagrees with n.
 * dul_pdata_next: the next PDV into *v (nothing copied). Returns 1 for a
 * PDV, 0 at the end of the PDU (never before the first PDV), -1 with err
 * (DUL_E_PDV) for a PDV item shorter than 2 bytes or running past the
 * PDU. PDVs before an invalid one have already been returned: walk the
 * PDU once to validate it before acting on it when that matters.
 */
int dul_pdata_begin(struct dul_pdv_iter *it, const uint8_t *pdu, size_t n,
    struct dul_error *err);
int dul_pdata_next(struct dul_pdv_iter *it, struct dul_pdv *v,
    struct dul_error *err);

/* ---- encoding ---- */

/*
 * dul_encode_assoc: encode *a as an A-ASSOCIATE-RQ or -AC into buf.
 * Returns the PDU's size in bytes; buf holds it only when that is <= cap
 * (call with cap 0 to size a buffer). Returns 0 with err (may be NULL)
 * when *a cannot be encoded: a count over its capacity, a context's
 * transfer syntaxes outside uid[], an AE title or string not terminated
 * within its array, an item over 65535 bytes. Sub-items are written in
 * ascending type order; the user information item always carries the
 * maximum length; an AC context with ts_count 0 gets no transfer syntax
 * sub-item.
 */
size_t dul_encode_assoc(const struct dul_assoc *a, uint8_t *buf, size_t cap,
    struct dul_error *err);
/* The fixed-size PDUs; each returns DUL_SHORT_PDU_LEN. */
size_t dul_encode_rj(uint8_t b[DUL_SHORT_PDU_LEN], uint8_t result,
    uint8_t source, uint8_t reason);
size_t dul_encode_release(uint8_t b[DUL_SHORT_PDU_LEN], uint8_t type);
size_t dul_encode_abort(uint8_t b[DUL_SHORT_PDU_LEN], uint8_t source,
    uint8_t reason);

/*
 * dul_encode_pdata_header: the P-DATA-TF PDU header and the header of its
 * one PDV item for a fragment of frag_len bytes on context pcid; send
 * these 12 bytes, then the fragment itself. Returns DUL_PDATA_HEADER_LEN,
 * or 0 when frag_len is too large for a PDU (over 2^32 - 7).
 */
size_t dul_encode_pdata_header(uint8_t b[DUL_PDATA_HEADER_LEN], uint8_t pcid,
    int command, int last, uint32_t frag_len);
/* dul_pdata_fragment_max: the largest fragment one such PDU may carry to
 * a peer whose maximum length is max_length (0 = none: 2^32 - 7; cap it
 * with your own buffer size). 0 when max_length is 6 or less. */
uint32_t dul_pdata_fragment_max(uint32_t max_length);

/* ---- building and reading struct dul_assoc ---- */

/* dul_assoc_init: an empty association PDU of the given type. */
void dul_assoc_init(struct dul_assoc *a, uint8_t type);
/* dul_assoc_add_pctx: append a context (abstract may be NULL in an AC).
 * Returns it, or NULL when full or abstract is over 64 characters. */
struct dul_pctx *dul_assoc_add_pctx(struct dul_assoc *a, uint8_t id,
    uint8_t result, const char *abstract);
/* dul_assoc_add_ts: append transfer syntax ts to pc, which must be the
 * last context added (the pool is contiguous). 0, or -1 when the pool
 * is full, ts is too long or pc is not the last context. */
int dul_assoc_add_ts(struct dul_assoc *a, struct dul_pctx *pc,
    const char *ts);
/* dul_pctx_ts: transfer syntax i of pc ("" when out of range). */
const char *dul_pctx_ts(const struct dul_assoc *a, const struct dul_pctx *pc,
    unsigned i);
/* dul_assoc_pctx: the context with this ID, or NULL. */
const struct dul_pctx *dul_assoc_pctx(const struct dul_assoc *a, uint8_t id);
/* dul_assoc_equal: 1 when a and b carry the same parameters (what each
 * pointer field points to compared by content; the unknown-item count is
 * not compared), else 0. */
int dul_assoc_equal(const struct dul_assoc *a, const struct dul_assoc *b);

/* ---- names for logs ---- */

/* "A-ASSOCIATE-RQ" ... "A-ABORT", or "unknown PDU". */
const char *dul_pdu_name(uint8_t type);
/* The provider's A-ABORT reason (Table 9-26), e.g. "unexpected-PDU". */
const char *dul_abort_reason_name(uint8_t reason);
/* The A-ASSOCIATE-RJ reason for a source (Table 9-21). */
const char *dul_rj_reason_name(uint8_t source, uint8_t reason);

#endif
