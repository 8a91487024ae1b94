/*
 * dicom_commit.h — Storage Commitment Push Model as an SCU (PS3.4 J.3)
 * on the reactor: the N-ACTION-RQ on an association we opened, then the
 * N-EVENT-REPORT-RQ the SCP sends when it has decided, on that same
 * association or on one it opens to us (our listener: the services take
 * it, dicom_svc.c, and hand it here by its Transaction UID).
 *
 * A commitment waits for its report up to wait_ms after the N-ACTION
 * was answered, independently of the association it was asked on (the
 * user may release that one); then it ends without a report, which says
 * nothing about the instances: ask again later.
 */
#ifndef VNAMIG_DICOM_COMMIT_H
#define VNAMIG_DICOM_COMMIT_H

#include <stdint.h>

#include "dimse/dimse_commit.h"
#include "dimse/dimse_msg.h"

struct dicom_conn;
struct event_base;

struct dicom_commit_result {
	int				 answered;	/* N-ACTION-RSP came */
	uint16_t			 action_status;
	char				 comment[65];	/* the peer's */
	const struct dimse_commit_report *report; /* NULL: none came;
						 * valid during done only */
	char				 report_from[17];	/* its AE */
	int				 same_assoc;	/* on ours */
	char				 why[256];	/* "" unless it failed */
};

struct dicom_commit_user {
	/* The N-ACTION was answered (the association is free for more
	 * work, or to be released); may be NULL. */
	void	(*answered)(void *arg, uint16_t status);
	/* The end, once: a report, or the wait given up (why says). The
	 * commitment may be freed here. */
	void	(*done)(void *arg, const struct dicom_commit_result *r);
};

struct dicom_commit;

/*
 * dicom_commit_start: request commitment of the n instances refs[] on
 * dc (its Storage Commitment Push Model context), as a new transaction
 * (its UID generated), message ID msgid; wait_ms bounds the wait for the
 * report. NULL with err when it cannot be sent.
 */
struct dicom_commit *dicom_commit_start(struct dicom_conn *dc,
    const struct dimse_commit_ref *refs, size_t n, uint16_t msgid,
    uint64_t dimse_ms, uint64_t wait_ms, const struct dicom_commit_user *u,
    void *arg, char *err, size_t cap);
const char *dicom_commit_transaction(const struct dicom_commit *c);

/* dicom_commit_message: a response from the association's user: 1 when
 * it was this commitment's N-ACTION-RSP, else 0. */
int dicom_commit_message(struct dicom_commit *c, enum dimse_asm_result r,
    const struct dimse_asm_event *ev);

/* dicom_commit_conn_ended: the association it was asked on is gone (a
 * commitment still waiting for its N-ACTION-RSP ends; one waiting for
 * its report goes on waiting). */
void dicom_commit_conn_ended(struct dicom_commit *c, const char *why);

void dicom_commit_free_(struct dicom_commit *c);
#define dicom_commit_free(c) \
	do { dicom_commit_free_(c); (c) = NULL; } while (0)

/*
 * dicom_commit_report_in: a report that arrived (the services call it):
 * 1 when a waiting commitment of this process took it, 0 when none has
 * its Transaction UID (logged). dc is where it came from.
 */
int dicom_commit_report_in(const struct dimse_commit_report *r,
    struct dicom_conn *dc);

#endif
