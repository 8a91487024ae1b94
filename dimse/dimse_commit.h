/*
 * dimse_commit.h — Storage Commitment Push Model (PS3.4 Annex J): the
 * dataset of the N-ACTION-RQ an SCU sends (Transaction UID and the
 * Referenced SOP Sequence), and the dataset of the N-EVENT-REPORT-RQ the
 * SCP answers with (the committed instances, and the failed ones with
 * their Failure Reason). Pure: bytes in, bytes out, no sockets (decoding
 * runs the dataset parser); and a fresh UID for a transaction.
 */
#ifndef VNAMIG_DIMSE_COMMIT_H
#define VNAMIG_DIMSE_COMMIT_H

#include <stddef.h>
#include <stdint.h>

#include "dimse/ds_ts.h"

#define DIMSE_COMMIT_CLASS	"1.2.840.10008.1.20.1"	/* Push Model */
#define DIMSE_COMMIT_INSTANCE	"1.2.840.10008.1.20.1.1" /* well-known */
#define DIMSE_COMMIT_ACTION	1	/* Request Storage Commitment */
#define DIMSE_COMMIT_EVENT_OK	1	/* all committed */
#define DIMSE_COMMIT_EVENT_FAIL	2	/* failures exist */

/* Failure Reason (0008,1197), PS3.4 J.3.2.1.1.3.1 (table J.3-2). */
#define DIMSE_COMMIT_PROCESSING_FAILURE	0x0110
#define DIMSE_COMMIT_NO_SUCH_INSTANCE	0x0112
#define DIMSE_COMMIT_RESOURCE_LIMIT	0x0213
#define DIMSE_COMMIT_CLASS_NOT_SUPPORTED 0x0122
#define DIMSE_COMMIT_CLASS_CONFLICT	0x0119
#define DIMSE_COMMIT_DUPLICATE_TXN	0x0131

struct dimse_commit_ref {
	char		 sop_class[65];
	char		 sop_instance[65];
	int		 failed;	/* in the Failed SOP Sequence */
	uint16_t	 reason;	/* its Failure Reason (0 when none
					 * was given) */
};

struct dimse_commit_report {
	char			 transaction[65];
	struct dimse_commit_ref	*refs;		/* allocated */
	size_t			 n, nfailed;
};

/*
 * dimse_commit_encode: the N-ACTION-RQ dataset for transaction and the n
 * instances refs[] (their .failed and .reason are not used), in transfer
 * syntax ts (not deflated); sequences and items of undefined length.
 * Returns its size, written to buf only when it fits in cap (cap 0
 * sizes), or 0 when a UID is not 1..64 digits and dots.
 */
size_t dimse_commit_encode(const char *transaction,
    const struct dimse_commit_ref *refs, size_t n, const struct ds_ts *ts,
    uint8_t *buf, size_t cap);

/*
 * dimse_commit_decode: the N-EVENT-REPORT-RQ dataset b[0..n) in ts into
 * *r (allocated: dimse_commit_report_free): the Transaction UID, every
 * item of the Referenced SOP Sequence (committed) and of the Failed SOP
 * Sequence (with its reason). 0, or -1 with a message in err: it does
 * not parse, has no Transaction UID, or an item lacks its SOP Class or
 * Instance UID.
 */
int dimse_commit_decode(const uint8_t *b, size_t n, const struct ds_ts *ts,
    struct dimse_commit_report *r, char *err, size_t cap);
void dimse_commit_report_free(struct dimse_commit_report *r);

/* dimse_commit_reason_name: "No such object instance" ... */
const char *dimse_commit_reason_name(uint16_t reason);

/*
 * dimse_uid_generate: a new UID in out (at most 64 characters): "2.25."
 * and 128 random bits in decimal (a UUID-derived UID, PS3.5 B.2). 0, or
 * -1 when the system has no randomness to give.
 */
int dimse_uid_generate(char out[65]);

#endif
