/*
 * dicom_qr.h — Query/Retrieve as an SCU (PS3.4 Annex C) on an association
 * we opened (dicom_connect): one C-FIND, C-MOVE or C-GET at a time per
 * struct dicom_qr, with its responses fed in by the association's user,
 * and its limits enforced on the loop:
 *
 *   silence   no response for dimse_ms: C-CANCEL, and when nothing final
 *             follows within dimse_ms more, A-ABORT;
 *   stall     C-MOVE/C-GET pending responses whose sub-operation counts
 *             do not change for stall_ms (an SCP that says "pending"
 *             forever): C-CANCEL, as above;
 *   total     the whole operation over total_ms: C-CANCEL, as above;
 *   matches   a C-FIND with more than max_matches matches: C-CANCEL (the
 *             matches so far are kept and the result says so);
 *   size      a response identifier over max_ident bytes: C-CANCEL.
 *
 * C-GET's sub-operations (C-STOREs to us on the same association) are
 * taken by the services (dicom_svc.c) on the contexts proposed with
 * scp_role; C-MOVE's arrive on another association, to whatever listens
 * as the move destination (vnamigd, or vnamig-qr --receive).
 */
#ifndef VNAMIG_DICOM_QR_H
#define VNAMIG_DICOM_QR_H

#include <stdint.h>

#include "dimse/dimse_ident.h"
#include "src/net/dicom_svc.h"

/* SOP classes (PS3.4 C.6). */
#define DICOM_QR_PATIENT_FIND	"1.2.840.10008.5.1.4.1.2.1.1"
#define DICOM_QR_PATIENT_MOVE	"1.2.840.10008.5.1.4.1.2.1.2"
#define DICOM_QR_PATIENT_GET	"1.2.840.10008.5.1.4.1.2.1.3"
#define DICOM_QR_STUDY_FIND	"1.2.840.10008.5.1.4.1.2.2.1"
#define DICOM_QR_STUDY_MOVE	"1.2.840.10008.5.1.4.1.2.2.2"
#define DICOM_QR_STUDY_GET	"1.2.840.10008.5.1.4.1.2.2.3"

enum dicom_qr_kind { DICOM_QR_FIND, DICOM_QR_MOVE, DICOM_QR_GET };

struct dicom_qr_limits {
	uint64_t	 dimse_ms;	/* silence (0: none) */
	uint64_t	 stall_ms;	/* unchanged counts (0: none) */
	uint64_t	 total_ms;	/* whole operation (0: none) */
	uint64_t	 max_matches;	/* C-FIND (0: none) */
	uint32_t	 max_ident;	/* bytes of one identifier (0: 1 MiB) */
};

struct dicom_qr_result {
	int		 final;		/* a final response came */
	uint16_t	 status;	/* of the last response */
	uint64_t	 matches;	/* C-FIND: pending responses */
	uint64_t	 responses;	/* all responses */
	long		 remaining, completed, failed, warning;	/* -1:
					 * not said */
	int		 cancelled;	/* we sent C-CANCEL (why says why) */
	char		 comment[DIMSE_COMMENT_MAX + 1];	/* the peer's */
	const char	*failed_uids;	/* final C-MOVE/C-GET response:
					 * (0008,0058), or NULL */
	char		 why[256];	/* what went wrong, "" if nothing */
};

struct dicom_qr_user {
	/* C-FIND: one match, decoded, and its bytes (a dataset in ts). */
	void	(*match)(void *arg, const struct dimse_ident *id,
		    const uint8_t *raw, size_t n, const struct ds_ts *ts);
	/* C-MOVE/C-GET: a pending response (r has the counts). */
	void	(*progress)(void *arg, const struct dicom_qr_result *r);
	/* The end, once: a final response, or the operation given up
	 * (r->final 0; r->why says why). The operation may be freed here. */
	void	(*done)(void *arg, const struct dicom_qr_result *r);
};

struct dicom_qr;

/*
 * dicom_qr_start: send the request: kind on sop_class (its accepted
 * context is looked up) with identifier id and, for C-MOVE, move_dest;
 * msgid is its MessageID. Returns the operation, or NULL with err (no
 * accepted context, an identifier that does not encode, the association
 * not ready).
 */
struct dicom_qr *dicom_qr_start(struct dicom_conn *dc, enum dicom_qr_kind kind,
    const char *sop_class, const struct dimse_ident *id, const char *move_dest,
    uint16_t msgid, const struct dicom_qr_limits *lim,
    const struct dicom_qr_user *u, void *arg, char *err, size_t cap);

/* dicom_qr_message: a response event from the association's user.
 * Returns 1 when it was this operation's (it may have ended: done was
 * called), 0 when not. */
int dicom_qr_message(struct dicom_qr *q, enum dimse_asm_result r,
    const struct dimse_asm_event *ev);

/* dicom_qr_cancel: C-CANCEL now (why goes into the result). */
void dicom_qr_cancel(struct dicom_qr *q, const char *why);

/* dicom_qr_ended: the association ended under the operation: done is
 * called with why, unless it was already. */
void dicom_qr_ended(struct dicom_qr *q, const char *why);

void dicom_qr_free_(struct dicom_qr *q);
#define dicom_qr_free(q) do { dicom_qr_free_(q); (q) = NULL; } while (0)

/* dicom_qr_kind_name: "C-FIND" ... */
const char *dicom_qr_kind_name(enum dicom_qr_kind kind);

#endif
