/*
 * dimse_cmd.h — the DIMSE command set (PS3.7 6.3, 9.3, 10.3, Annex E):
 * decoding and encoding group 0000, command field and status names, the
 * status classes of PS3.7 Annex C, and builders for the requests an SCU
 * sends and the responses an SCP sends. Pure: bytes in, structs out; no
 * sockets, no allocation.
 *
 * A command set is always Implicit VR Little Endian (PS3.7 6.3.1), its
 * elements in ascending tag order, CommandGroupLength (0000,0000) first.
 * struct dimse_cmd holds every field this host uses; a bit of .present
 * (DIMSE_F_*) says which were in the command. The bits are in tag order.
 *
 * What the decoder accepts and refuses (struct dimse_error says what and
 * where, as the byte offset of the element in the command set and its tag):
 * - (0000,0000) must come first, be a UL, and count exactly the bytes
 *   after it; nothing outside group 0000 may appear;
 * - tags must strictly ascend (a repeated tag is refused too);
 * - a value must fit in what is left, US values are 2 bytes, AT lists a
 *   multiple of 4 and at most DIMSE_MAX_AT tags;
 * - UIDs lose trailing NUL and space padding; one that is not 1..64
 *   digits and dots with no empty component ("../x", a letter, 65
 *   digits) is not refused but kept and flagged in .invalid (see there),
 *   for the service to answer 0xC000 (TESTING.md); AE titles lose leading and
 *   trailing spaces (and trailing NULs), must be at most 16 bytes on the
 *   wire, printable ASCII without backslash, and may be empty;
 * - ErrorComment (LO) loses trailing spaces and NULs, is cut to 64 bytes
 *   and has control characters replaced by '?': it is for logs, and a
 *   peer's odd comment is no reason to abort;
 * - group 0000 elements this struct does not hold (retired ones such as
 *   (0000,0001) or (0000,4000)) are skipped and counted in .unknown;
 * - CommandField (0000,0100) and CommandDataSetType (0000,0800) are
 *   required (PS3.7 E.1: both are in every command). Whether the other
 *   fields a command needs are there is dimse_cmd_check's business.
 */
#ifndef VNAMIG_DIMSE_CMD_H
#define VNAMIG_DIMSE_CMD_H

#include <stddef.h>
#include <stdint.h>

/* Command Field values (PS3.7 E.1, 9.3, 10.3). */
#define DIMSE_C_STORE_RQ		0x0001
#define DIMSE_C_STORE_RSP		0x8001
#define DIMSE_C_GET_RQ			0x0010
#define DIMSE_C_GET_RSP			0x8010
#define DIMSE_C_FIND_RQ			0x0020
#define DIMSE_C_FIND_RSP		0x8020
#define DIMSE_C_MOVE_RQ			0x0021
#define DIMSE_C_MOVE_RSP		0x8021
#define DIMSE_C_ECHO_RQ			0x0030
#define DIMSE_C_ECHO_RSP		0x8030
#define DIMSE_N_EVENT_REPORT_RQ		0x0100
#define DIMSE_N_EVENT_REPORT_RSP	0x8100
#define DIMSE_N_GET_RQ			0x0110
#define DIMSE_N_GET_RSP			0x8110
#define DIMSE_N_SET_RQ			0x0120
#define DIMSE_N_SET_RSP			0x8120
#define DIMSE_N_ACTION_RQ		0x0130
#define DIMSE_N_ACTION_RSP		0x8130
#define DIMSE_N_CREATE_RQ		0x0140
#define DIMSE_N_CREATE_RSP		0x8140
#define DIMSE_N_DELETE_RQ		0x0150
#define DIMSE_N_DELETE_RSP		0x8150
#define DIMSE_C_CANCEL_RQ		0x0FFF
#define DIMSE_RSP_BIT			0x8000	/* set in every response */

/* Priority (0000,0700). */
#define DIMSE_PRIORITY_MEDIUM		0x0000
#define DIMSE_PRIORITY_HIGH		0x0001
#define DIMSE_PRIORITY_LOW		0x0002

/* CommandDataSetType (0000,0800): 0x0101 means no dataset; any other
 * value means one follows. We send 0x0001 for "present". */
#define DIMSE_DATASET_NONE		0x0101
#define DIMSE_DATASET_PRESENT		0x0001

/* Well-known status codes (PS3.7 Annex C; PS3.4 B.2.3, C.4). */
#define DIMSE_STATUS_SUCCESS		0x0000
#define DIMSE_STATUS_CANCEL		0xFE00
#define DIMSE_STATUS_PENDING		0xFF00
#define DIMSE_STATUS_PENDING_WARNING	0xFF01
#define DIMSE_STATUS_OUT_OF_RESOURCES	0xA700
#define DIMSE_STATUS_DATASET_MISMATCH	0xA900
#define DIMSE_STATUS_CANNOT_UNDERSTAND	0xC000
#define DIMSE_STATUS_COERCION		0xB000
#define DIMSE_STATUS_MOVE_DEST_UNKNOWN	0xA801
#define DIMSE_STATUS_PROCESSING_FAILURE	0x0110
#define DIMSE_STATUS_DUPLICATE_INSTANCE	0x0111
#define DIMSE_STATUS_CLASS_NOT_SUPPORTED 0x0122
#define DIMSE_STATUS_NOT_AUTHORIZED	0x0124
#define DIMSE_STATUS_UNRECOGNIZED_OP	0x0211
#define DIMSE_STATUS_MISTYPED_ARGUMENT	0x0212
#define DIMSE_STATUS_RESOURCE_LIMIT	0x0213

#define DIMSE_VERIFICATION_CLASS	"1.2.840.10008.1.1"

/* Capacities of struct dimse_cmd; more is refused with DIMSE_E_LIMIT. */
#define DIMSE_UID_MAX		64	/* characters of a UID (PS3.5 9.1) */
#define DIMSE_AE_MAX		16	/* characters of an AE title */
#define DIMSE_COMMENT_MAX	64	/* ErrorComment (LO), longer is cut */
#define DIMSE_MAX_AT		256	/* tags in OffendingElement, and in
					 * AttributeIdentifierList */

/* The fields of struct dimse_cmd, in tag order: bits of .present. */
enum dimse_field {
	DIMSE_F_AFFECTED_CLASS		= 1u << 0,	/* (0000,0002) UI */
	DIMSE_F_REQUESTED_CLASS		= 1u << 1,	/* (0000,0003) UI */
	DIMSE_F_COMMAND			= 1u << 2,	/* (0000,0100) US */
	DIMSE_F_MSGID			= 1u << 3,	/* (0000,0110) US */
	DIMSE_F_MSGID_RSP		= 1u << 4,	/* (0000,0120) US */
	DIMSE_F_MOVE_DEST		= 1u << 5,	/* (0000,0600) AE */
	DIMSE_F_PRIORITY		= 1u << 6,	/* (0000,0700) US */
	DIMSE_F_DATASET_TYPE		= 1u << 7,	/* (0000,0800) US */
	DIMSE_F_STATUS			= 1u << 8,	/* (0000,0900) US */
	DIMSE_F_OFFENDING		= 1u << 9,	/* (0000,0901) AT */
	DIMSE_F_ERROR_COMMENT		= 1u << 10,	/* (0000,0902) LO */
	DIMSE_F_ERROR_ID		= 1u << 11,	/* (0000,0903) US */
	DIMSE_F_AFFECTED_INSTANCE	= 1u << 12,	/* (0000,1000) UI */
	DIMSE_F_REQUESTED_INSTANCE	= 1u << 13,	/* (0000,1001) UI */
	DIMSE_F_EVENT_TYPE		= 1u << 14,	/* (0000,1002) US */
	DIMSE_F_ATTR_LIST		= 1u << 15,	/* (0000,1005) AT */
	DIMSE_F_ACTION_TYPE		= 1u << 16,	/* (0000,1008) US */
	DIMSE_F_REMAINING		= 1u << 17,	/* (0000,1020) US */
	DIMSE_F_COMPLETED		= 1u << 18,	/* (0000,1021) US */
	DIMSE_F_FAILED			= 1u << 19,	/* (0000,1022) US */
	DIMSE_F_WARNING			= 1u << 20,	/* (0000,1023) US */
	DIMSE_F_MOVE_ORIG_AE		= 1u << 21,	/* (0000,1030) AE */
	DIMSE_F_MOVE_ORIG_MSGID		= 1u << 22,	/* (0000,1031) US */
};

/*
 * A command of any kind. Strings are NUL-terminated, without padding, ""
 * when absent; a field counts only when its bit is in .present. Tags in
 * the AT lists are (group << 16 | element).
 */
struct dimse_cmd {
	uint32_t	 present;		/* DIMSE_F_* */
	uint16_t	 command;		/* CommandField */
	uint16_t	 msgid;			/* MessageID */
	uint16_t	 msgid_rsp;		/* MessageIDBeingRespondedTo */
	uint16_t	 priority;		/* DIMSE_PRIORITY_* */
	uint16_t	 dataset_type;		/* DIMSE_DATASET_NONE or not */
	uint16_t	 status;
	uint16_t	 error_id;
	uint16_t	 event_type;		/* EventTypeID */
	uint16_t	 action_type;		/* ActionTypeID */
	uint16_t	 remaining;		/* NumberOf...SubOperations */
	uint16_t	 completed;
	uint16_t	 failed;
	uint16_t	 warning;
	uint16_t	 move_orig_msgid;	/* MoveOriginatorMessageID */
	char		 affected_class[DIMSE_UID_MAX + 1];
	char		 requested_class[DIMSE_UID_MAX + 1];
	char		 affected_instance[DIMSE_UID_MAX + 1];
	char		 requested_instance[DIMSE_UID_MAX + 1];
	char		 move_dest[DIMSE_AE_MAX + 1];
	char		 move_orig_ae[DIMSE_AE_MAX + 1];
	char		 error_comment[DIMSE_COMMENT_MAX + 1];
	unsigned	 n_offending;
	unsigned	 n_attr;
	uint32_t	 offending[DIMSE_MAX_AT];	/* OffendingElement */
	uint32_t	 attr[DIMSE_MAX_AT];	/* AttributeIdentifierList */
	unsigned	 unknown;		/* group 0000 elements skipped */
	uint32_t	 invalid;		/* DIMSE_F_* of the UI fields
						 * whose value is no valid UID:
						 * kept (bytes outside 0x20-0x7e
						 * as '?'; over 64: 63 and '?')
						 * so that a service can answer
						 * 0xC000 */
};

enum dimse_errcode {
	DIMSE_OK = 0,
	/* dimse_cmd_decode, dimse_cmd_check */
	DIMSE_E_TRUNCATED,	/* an element header or value runs past the
				 * end of the command set */
	DIMSE_E_GROUP_LENGTH,	/* (0000,0000) absent, not first, not a UL,
				 * or not the number of bytes after it */
	DIMSE_E_NOT_COMMAND,	/* an element outside group 0000 */
	DIMSE_E_ORDER,		/* tags not ascending, or repeated */
	DIMSE_E_LENGTH,		/* value length wrong for its VR */
	DIMSE_E_VALUE,		/* invalid UID or AE title */
	DIMSE_E_LIMIT,		/* over DIMSE_MAX_AT, or a command set over
				 * the assembler's limit */
	DIMSE_E_MISSING,	/* a required element is absent */
	DIMSE_E_COMMAND,	/* dimse_cmd_check: unknown command field,
				 * or a dataset where none may be, or none
				 * where one must be */
	/* dimse_asm_feed (dimse_msg.h) */
	DIMSE_E_PCID,		/* presentation context ID 0 or even */
	DIMSE_E_SEQUENCE,	/* a fragment where none of its kind may be */
	DIMSE_E_CONTEXT,	/* a fragment on another context than the
				 * message it continues */
	DIMSE_E_NO_DATASET,	/* a dataset after a command whose
				 * CommandDataSetType is 0x0101 */
};

#define DIMSE_NO_TAG	0xffffffffu	/* dimse_error.tag: no element */

struct dimse_error {
	enum dimse_errcode	 code;
	uint32_t		 tag;		/* element concerned, or
						 * DIMSE_NO_TAG */
	size_t			 offset;	/* byte of the command set (or,
						 * for a fragment error, of the
						 * message's command or dataset
						 * stream so far) */
	uint64_t		 pdv;		/* assembler: the PDV (1-based
						 * count); 0 from the codec */
	char			 msg[256];	/* e.g. "(0000,0110) MessageID
						 * at byte 38: value length 4,
						 * a US needs 2" */
};

/* ---- codec ---- */

/*
 * dimse_cmd_decode: decode the command set b[0..n) into *c (cleared
 * first). Returns 0, or -1 with *err (err may be NULL); *c is then only
 * partly filled. Nothing points into b afterwards.
 */
int dimse_cmd_decode(const uint8_t *b, size_t n, struct dimse_cmd *c,
    struct dimse_error *err);

/*
 * dimse_cmd_encode: encode the present fields of *c as a command set,
 * group length first, tags ascending, UIDs NUL-padded and the comment
 * space-padded to even length, AE titles space-padded to 16. Returns the
 * encoded size; buf holds it only when that is <= cap (call with cap 0 to
 * size a buffer; buf may then be NULL). Returns 0 when *c cannot be
 * encoded: a UID that is not 1..64 digits and dots (unless flagged in
 * .invalid, when printable ASCII is enough), an AE title over 16
 * characters or with a control character or backslash, a string not
 * terminated within its array, a count over DIMSE_MAX_AT. Whatever this
 * encodes, dimse_cmd_decode accepts, and decoding what a decoded command
 * encodes to gives that command back.
 */
size_t dimse_cmd_encode(const struct dimse_cmd *c, uint8_t *buf, size_t cap);

/*
 * dimse_cmd_check: whether *c carries what PS3.7 9.3 and 10.3 make
 * mandatory for its command field (MessageID in a request,
 * MessageIDBeingRespondedTo and Status in a response, the SOP class and
 * instance UIDs, Priority, MoveDestination, EventTypeID, ActionTypeID)
 * and a dataset type the command allows (none for C-ECHO, C-CANCEL,
 * C-STORE-RSP, N-GET-RQ, N-DELETE; one for C-STORE-RQ, C-FIND-RQ,
 * C-GET-RQ, C-MOVE-RQ, N-SET-RQ). Returns 0, or -1 with *err:
 * DIMSE_E_COMMAND for an unknown command field or a dataset type the
 * command cannot have, DIMSE_E_MISSING naming the first absent element.
 */
int dimse_cmd_check(const struct dimse_cmd *c, struct dimse_error *err);

/* dimse_cmd_equal: 1 when a and b have the same present fields with the
 * same values (.unknown is not compared), else 0. */
int dimse_cmd_equal(const struct dimse_cmd *a, const struct dimse_cmd *b);

/* dimse_cmd_has_dataset: 1 when a dataset follows the command
 * (CommandDataSetType present and not 0x0101), else 0. */
int dimse_cmd_has_dataset(const struct dimse_cmd *c);

/* ---- names for logs (static strings) ---- */

/* "C-STORE-RQ" ... "C-CANCEL-RQ", or "unknown command". */
const char *dimse_cmd_name(uint16_t command);
/* The keyword of a group 0000 tag struct dimse_cmd holds
 * ("MessageID"), "CommandGroupLength" for (0000,0000); "" for others. */
const char *dimse_tag_name(uint32_t tag);

/* ---- status (PS3.7 Annex C) ---- */

enum dimse_status_class {
	DIMSE_CLASS_SUCCESS,	/* 0x0000 */
	DIMSE_CLASS_WARNING,	/* 0x0001, 0x0107, 0x0116, 0xB000-0xBFFF */
	DIMSE_CLASS_FAILURE,	/* everything else */
	DIMSE_CLASS_CANCEL,	/* 0xFE00 */
	DIMSE_CLASS_PENDING,	/* 0xFF00, 0xFF01 */
};

enum dimse_status_class dimse_status_class(uint16_t status);
/* "Success", "Warning", "Failure", "Cancel", "Pending". */
const char *dimse_status_class_name(enum dimse_status_class cl);
/*
 * dimse_status_name: the meaning of a status, e.g. 0xA700 "Refused: Out
 * of Resources". Codes that the services reuse are named as C-STORE
 * names them (0xA900, 0xB000, 0xCxxx); dimse_status_name_for gives the
 * C-FIND, C-GET and C-MOVE meanings too. A code not in the table is
 * named by its range ("Refused: Out of Resources" for 0xA7xx, "Error:
 * Cannot Understand" for 0xCxxx ...) or its class ("Warning", "Failure").
 */
const char *dimse_status_name(uint16_t status);
const char *dimse_status_name_for(uint16_t command, uint16_t status);

/* ---- builders ---- */

/*
 * The request builders clear *rq and fill CommandField, MessageID, the
 * fields given and CommandDataSetType (a dataset follows C-STORE-RQ,
 * C-FIND-RQ, C-GET-RQ, C-MOVE-RQ; none follows C-ECHO-RQ and
 * C-CANCEL-RQ; the N- requests say with has_dataset). They return 0, or
 * -1 when a UID is not 1..64 digits and dots or an AE title does not fit
 * (then *rq must not be sent).
 */
void dimse_echo_rq(uint16_t msgid, struct dimse_cmd *rq);
int dimse_store_rq(uint16_t msgid, const char *sop_class,
    const char *sop_instance, uint16_t priority, struct dimse_cmd *rq);
int dimse_find_rq(uint16_t msgid, const char *sop_class, uint16_t priority,
    struct dimse_cmd *rq);
int dimse_get_rq(uint16_t msgid, const char *sop_class, uint16_t priority,
    struct dimse_cmd *rq);
int dimse_move_rq(uint16_t msgid, const char *sop_class, uint16_t priority,
    const char *move_dest, struct dimse_cmd *rq);
/* C-CANCEL-RQ of the C-FIND/C-GET/C-MOVE whose MessageID was msgid. */
void dimse_cancel_rq(uint16_t msgid, struct dimse_cmd *rq);
int dimse_event_report_rq(uint16_t msgid, const char *sop_class,
    const char *sop_instance, uint16_t event_type, int has_dataset,
    struct dimse_cmd *rq);
/* N-ACTION-RQ: the class and instance are the Requested ones. */
int dimse_action_rq(uint16_t msgid, const char *sop_class,
    const char *sop_instance, uint16_t action_type, int has_dataset,
    struct dimse_cmd *rq);
/* Fill the C-STORE-RQ's MoveOriginator AE title and message ID (a
 * C-STORE sub-operation of a C-MOVE). 0, or -1 when ae does not fit. */
int dimse_store_rq_originator(struct dimse_cmd *rq, const char *ae,
    uint16_t msgid);

/*
 * dimse_rsp_init: the response to request *rq with status: clears *rsp,
 * sets CommandField (the request's with DIMSE_RSP_BIT),
 * MessageIDBeingRespondedTo, Status, and from the request the
 * AffectedSOPClassUID and AffectedSOPInstanceUID (an N- request's
 * Requested ones when it has no Affected ones), EventTypeID and
 * ActionTypeID. CommandDataSetType is 0x0101, except for a C-FIND-RSP
 * with a pending status (it carries an identifier): set
 * .dataset_type yourself when your response has a dataset. Returns 0, or
 * -1 when *rq is not a request or is a C-CANCEL-RQ (which has no
 * response); rsp and rq may not be the same struct.
 */
int dimse_rsp_init(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp);
/* The same, refusing (-1) a request of another kind than the name says. */
int dimse_echo_rsp(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp);
int dimse_store_rsp(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp);
int dimse_find_rsp(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp);
int dimse_get_rsp(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp);
int dimse_move_rsp(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp);
int dimse_event_report_rsp(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp);
int dimse_action_rsp(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp);

/*
 * dimse_cmd_set_subops: set the C-GET/C-MOVE sub-operation counts
 * (0000,1020..1023); a negative count is left out, one over 65535 is sent
 * as 65535 (a US cannot say more).
 */
void dimse_cmd_set_subops(struct dimse_cmd *rsp, long remaining,
    long completed, long failed, long warning);
/* dimse_cmd_set_comment: set ErrorComment, cut to DIMSE_COMMENT_MAX
 * bytes, control characters replaced by '?'. */
void dimse_cmd_set_comment(struct dimse_cmd *rsp, const char *comment);

#endif
