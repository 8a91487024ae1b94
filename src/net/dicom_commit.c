/*
 * dicom_commit.c — Storage Commitment SCU: N-ACTION out, N-EVENT-REPORT
 * in (on any association), matched by Transaction UID.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "dimse/dimse_cmd.h"
#include "src/net/dicom_commit.h"
#include "src/net/dicom_svc.h"
#include "src/net/net.h"
#include "src/util/log.h"

struct dicom_commit {
	struct dicom_commit		*next;		/* waiting list */
	struct dicom_conn		*dc;		/* until answered */
	uint64_t			 conn_id;	/* of dc */
	uint16_t			 msgid;
	char				 txn[65];
	size_t				 n;
	uint64_t			 wait_ms;
	struct event			*timer;
	const struct dicom_commit_user	*u;
	void				*arg;
	struct dicom_commit_result	 r;
	int				 done;
};

/* The commitments of this process waiting for their reports. */
static struct dicom_commit *waiting;

static void
unlink_waiting(struct dicom_commit *c)
{
	for (struct dicom_commit **p = &waiting; *p != NULL; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			c->next = NULL;
			return;
		}
}

static void
finish(struct dicom_commit *c)
{
	if (c->done)
		return;
	c->done = 1;
	unlink_waiting(c);
	evtimer_del(c->timer);
	if (c->r.report != NULL)
		log_info("commit-report", "transaction=%s from=%s committed=%zu "
		    "failed=%zu same_assoc=%d", c->txn, c->r.report_from,
		    c->r.report->n - c->r.report->nfailed,
		    c->r.report->nfailed, c->r.same_assoc);
	else
		log_warn("commit-unreported", "transaction=%s instances=%zu "
		    "why=%s", c->txn, c->n, log_q(c->r.why));
	c->u->done(c->arg, &c->r);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dicom_commit *c = arg;

	(void)fd;
	(void)what;
	if (c->r.answered)
		snprintf(c->r.why, sizeof(c->r.why), "no N-EVENT-REPORT "
		    "within %llu ms (limits.commit_timeout)",
		    (unsigned long long)c->wait_ms);
	else {
		snprintf(c->r.why, sizeof(c->r.why), "no N-ACTION response "
		    "(limits.dimse_timeout)");
		if (c->dc != NULL)
			dicom_abort(c->dc, "no N-ACTION response");
	}
	finish(c);
}

struct dicom_commit *
dicom_commit_start(struct dicom_conn *dc, const struct dimse_commit_ref *refs,
    size_t n, uint16_t msgid, uint64_t dimse_ms, uint64_t wait_ms,
    const struct dicom_commit_user *u, void *arg, char *err, size_t cap)
{
	const struct dicom_pctx *pc = dicom_pctx_for(dc, DIMSE_COMMIT_CLASS,
	    NULL);
	struct dicom_commit *c;
	struct dimse_cmd rq;
	uint8_t cmd[512], *ds;
	size_t cn, dn, off = 0;
	uint32_t max = dicom_fragment_max(dc);
	char txn[65];

	if (pc == NULL || pc->ts == NULL || pc->ts->deflated) {
		snprintf(err, cap, "the peer accepted no context for Storage "
		    "Commitment Push Model (%s)", DIMSE_COMMIT_CLASS);
		return NULL;
	}
	if (dimse_uid_generate(txn) < 0) {
		snprintf(err, cap, "no randomness for a Transaction UID");
		return NULL;
	}
	if ((dn = dimse_commit_encode(txn, refs, n, pc->ts, NULL, 0)) == 0) {
		snprintf(err, cap, "an instance to commit has an invalid UID");
		return NULL;
	}
	if (dimse_action_rq(msgid, DIMSE_COMMIT_CLASS, DIMSE_COMMIT_INSTANCE,
	    DIMSE_COMMIT_ACTION, 1, &rq) < 0 ||
	    (cn = dimse_cmd_encode(&rq, cmd, sizeof(cmd))) == 0 ||
	    cn > sizeof(cmd)) {
		snprintf(err, cap, "cannot build the N-ACTION-RQ");
		return NULL;
	}
	if ((ds = malloc(dn)) == NULL || (c = calloc(1, sizeof(*c))) == NULL)
		abort();
	dimse_commit_encode(txn, refs, n, pc->ts, ds, dn);
	if (dicom_send_pdv(dc, pc->id, 1, 1, cmd, (uint32_t)cn) < 0) {
		free(ds);
		free(c);
		snprintf(err, cap, "the association cannot send");
		return NULL;
	}
	do {
		uint32_t k = dn - off > max ? max : (uint32_t)(dn - off);

		if (dicom_send_pdv(dc, pc->id, 0, off + k == dn, ds + off,
		    k) < 0)
			break;
		off += k;
	} while (off < dn);
	free(ds);
	c->dc = dc;
	c->conn_id = net_conn_id(dicom_conn_net(dc));
	c->msgid = msgid;
	memcpy(c->txn, txn, sizeof(txn));
	c->n = n;
	c->wait_ms = wait_ms;
	c->u = u;
	c->arg = arg;
	c->timer = evtimer_new(bufferevent_get_base(net_conn_bev(
	    dicom_conn_net(dc))), on_timer, c);
	if (c->timer == NULL)
		abort();
	c->next = waiting;
	waiting = c;
	log_info("commit-request", "conn=%llu peer_ae=%s transaction=%s "
	    "instances=%zu", (unsigned long long)net_conn_id(
	    dicom_conn_net(dc)), dicom_conn_assoc(dc)->called, txn, n);
	net_timer_arm(c->timer, dimse_ms ? dimse_ms : wait_ms);
	return c;
}

const char *
dicom_commit_transaction(const struct dicom_commit *c)
{
	return c->txn;
}

int
dicom_commit_message(struct dicom_commit *c, enum dimse_asm_result r,
    const struct dimse_asm_event *ev)
{
	const struct dimse_cmd *cmd = ev->cmd;

	if (c->done || c->r.answered || r != DIMSE_ASM_COMMAND ||
	    cmd->command != DIMSE_N_ACTION_RSP ||
	    !(cmd->present & DIMSE_F_MSGID_RSP) || cmd->msgid_rsp != c->msgid)
		return 0;
	c->r.answered = 1;
	c->r.action_status = cmd->status;
	if (cmd->present & DIMSE_F_ERROR_COMMENT)
		snprintf(c->r.comment, sizeof(c->r.comment), "%s",
		    cmd->error_comment);
	c->dc = NULL;
	if (cmd->status != DIMSE_STATUS_SUCCESS) {
		snprintf(c->r.why, sizeof(c->r.why), "N-ACTION: 0x%04x "
		    "(%s)%s%s", cmd->status, dimse_status_name_for(
		    DIMSE_N_ACTION_RSP, cmd->status), c->r.comment[0] ? ": " :
		    "", c->r.comment);
		if (c->u->answered != NULL)
			c->u->answered(c->arg, cmd->status);
		finish(c);
		return 1;
	}
	evtimer_del(c->timer);
	if (c->r.report == NULL)	/* the report may have come first */
		net_timer_arm(c->timer, c->wait_ms);
	if (c->u->answered != NULL)
		c->u->answered(c->arg, cmd->status);
	return 1;
}

void
dicom_commit_conn_ended(struct dicom_commit *c, const char *why)
{
	if (c->done || c->r.answered)
		return;
	c->dc = NULL;
	snprintf(c->r.why, sizeof(c->r.why), "the association ended before "
	    "the N-ACTION response: %s", why);
	finish(c);
}

int
dicom_commit_report_in(const struct dimse_commit_report *r,
    struct dicom_conn *dc)
{
	const struct dicom_assoc *a = dicom_conn_assoc(dc);
	const char *from = a->requestor ? a->called : a->calling;

	for (struct dicom_commit *c = waiting; c != NULL; c = c->next) {
		if (strcmp(c->txn, r->transaction) != 0)
			continue;
		c->r.report = r;
		snprintf(c->r.report_from, sizeof(c->r.report_from), "%s",
		    from);
		c->r.same_assoc = c->conn_id == net_conn_id(
		    dicom_conn_net(dc));
		finish(c);
		return 1;
	}
	log_warn("commit-report-unmatched", "conn=%llu from=%s "
	    "transaction=%s committed=%zu failed=%zu why=\"no commitment of "
	    "this process waits for it\"", (unsigned long long)net_conn_id(
	    dicom_conn_net(dc)), from, r->transaction, r->n - r->nfailed,
	    r->nfailed);
	return 0;
}

void
dicom_commit_free_(struct dicom_commit *c)
{
	if (c == NULL)
		return;
	unlink_waiting(c);
	if (c->timer != NULL)
		event_free(c->timer);
	free(c);
}
