/*
 * dicom_qr.c — C-FIND, C-MOVE and C-GET as an SCU, with C-CANCEL and the
 * limits of dicom_qr.h, on the reactor.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "dimse/dimse_cmd.h"
#include "dimse/dimse_msg.h"
#include "dimse/ds_uid.h"
#include "src/net/dicom_qr.h"
#include "src/net/net.h"
#include "src/util/log.h"

#define IDENT_MAX_DEFAULT	(1024u * 1024)
#define TAG_FAILED_UIDS		DS_TAG(0x0008, 0x0058)

struct dicom_qr {
	struct dicom_conn		*dc;
	enum dicom_qr_kind		 kind;
	uint16_t			 msgid;
	uint8_t				 pcid;
	const struct ds_ts		*ts;
	struct dicom_qr_limits		 lim;
	const struct dicom_qr_user	*u;
	void				*arg;
	struct event			*timer;
	uint64_t			 t_start, t_last, t_change, t_cancel;
	struct dicom_qr_result		 r;
	int				 done;
	/* the identifier of the response in progress */
	struct evbuffer			*buf;
	int				 over;		/* past max_ident */
	struct dimse_cmd		 rsp;		/* its command */
	struct dimse_ident		 id;
};

const char *
dicom_qr_kind_name(enum dicom_qr_kind kind)
{
	return kind == DICOM_QR_FIND ? "C-FIND" : kind == DICOM_QR_MOVE ?
	    "C-MOVE" : "C-GET";
}

static uint16_t
rsp_command(enum dicom_qr_kind k)
{
	return k == DICOM_QR_FIND ? DIMSE_C_FIND_RSP : k == DICOM_QR_MOVE ?
	    DIMSE_C_MOVE_RSP : DIMSE_C_GET_RSP;
}

static unsigned long long
qcid(const struct dicom_qr *q)
{
	return (unsigned long long)net_conn_id(dicom_conn_net(q->dc));
}

/* finish: tell the user, once. Nothing of q is touched afterwards. */
static void
finish(struct dicom_qr *q)
{
	if (q->done)
		return;
	q->done = 1;
	evtimer_del(q->timer);
	log_info("qr-done", "conn=%llu op=%s msgid=%u final=%d status=0x%04x "
	    "(%s) matches=%llu completed=%ld failed=%ld warning=%ld "
	    "cancelled=%d why=%s", qcid(q), dicom_qr_kind_name(q->kind),
	    q->msgid, q->r.final, q->r.status, q->r.final ?
	    dimse_status_name_for(rsp_command(q->kind), q->r.status) :
	    "none",
	    (unsigned long long)q->r.matches, q->r.completed, q->r.failed,
	    q->r.warning, q->r.cancelled, log_q(q->r.why));
	q->u->done(q->arg, &q->r);
}

static void
arm(struct dicom_qr *q)
{
	uint64_t now = net_now_ms(), due = UINT64_MAX;

	if (q->t_cancel != 0) {
		if (q->lim.dimse_ms)
			due = q->t_cancel + q->lim.dimse_ms;
	} else {
		if (q->lim.dimse_ms)
			due = q->t_last + q->lim.dimse_ms;
		if (q->lim.total_ms && q->t_start + q->lim.total_ms < due)
			due = q->t_start + q->lim.total_ms;
		if (q->lim.stall_ms && q->kind != DICOM_QR_FIND &&
		    q->t_change + q->lim.stall_ms < due)
			due = q->t_change + q->lim.stall_ms;
	}
	if (due == UINT64_MAX) {
		evtimer_del(q->timer);
		return;
	}
	net_timer_arm(q->timer, due > now ? due - now : 0);
}

void
dicom_qr_cancel(struct dicom_qr *q, const char *why)
{
	struct dimse_cmd c;
	uint8_t b[256];
	size_t n;

	if (q->done || q->t_cancel != 0)
		return;
	q->r.cancelled = 1;
	snprintf(q->r.why, sizeof(q->r.why), "%s", why);
	q->t_cancel = net_now_ms();
	log_warn("qr-cancel", "conn=%llu op=%s msgid=%u why=%s", qcid(q),
	    dicom_qr_kind_name(q->kind), q->msgid, log_q(why));
	dimse_cancel_rq(q->msgid, &c);
	n = dimse_cmd_encode(&c, b, sizeof(b));
	if (n == 0 || n > sizeof(b) ||
	    dicom_send_pdv(q->dc, q->pcid, 1, 1, b, (uint32_t)n) < 0) {
		snprintf(q->r.why, sizeof(q->r.why), "%s; the C-CANCEL could "
		    "not be sent", why);
		finish(q);
		return;
	}
	arm(q);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dicom_qr *q = arg;
	uint64_t now = net_now_ms();
	char why[200];

	(void)fd;
	(void)what;
	if (q->done)
		return;
	if (q->t_cancel != 0) {
		/* no final response after the C-CANCEL: give up the
		 * association, the only way left to stop the peer */
		size_t n = strlen(q->r.why);

		snprintf(q->r.why + n, sizeof(q->r.why) - n, "; no final "
		    "response within %llu ms of the C-CANCEL",
		    (unsigned long long)q->lim.dimse_ms);
		dicom_abort(q->dc, "Q/R operation did not end after C-CANCEL");
		finish(q);
		return;
	}
	if (q->lim.total_ms && now >= q->t_start + q->lim.total_ms)
		snprintf(why, sizeof(why), "%s took longer than %llu ms "
		    "(limits.retrieve_ms)", dicom_qr_kind_name(q->kind),
		    (unsigned long long)q->lim.total_ms);
	else if (q->lim.dimse_ms && now >= q->t_last + q->lim.dimse_ms)
		snprintf(why, sizeof(why), "no response for %llu ms "
		    "(limits.dimse_ms)", (unsigned long long)q->lim.dimse_ms);
	else if (q->kind != DICOM_QR_FIND && q->lim.stall_ms &&
	    now >= q->t_change + q->lim.stall_ms)
		snprintf(why, sizeof(why), "pending responses without "
		    "progress for %llu ms (limits.stall_ms): %ld remaining, "
		    "%ld completed", (unsigned long long)q->lim.stall_ms,
		    q->r.remaining, q->r.completed);
	else {
		arm(q);
		return;
	}
	dicom_qr_cancel(q, why);
}

/* send_ident: the identifier as the request's dataset. */
static int
send_ident(struct dicom_qr *q, const struct dimse_ident *id)
{
	size_t n = dimse_ident_encode(id, q->ts, NULL, 0), off = 0;
	uint32_t max = dicom_fragment_max(q->dc);
	uint8_t *b;
	int rc = 0;

	if ((b = malloc(n + 1)) == NULL)
		abort();
	dimse_ident_encode(id, q->ts, b, n);
	do {
		uint32_t k = n - off > max ? max : (uint32_t)(n - off);

		if (dicom_send_pdv(q->dc, q->pcid, 0, off + k == n, b + off,
		    k) < 0) {
			rc = -1;
			break;
		}
		off += k;
	} while (off < n);
	free(b);
	return rc;
}

struct dicom_qr *
dicom_qr_start(struct dicom_conn *dc, enum dicom_qr_kind kind,
    const char *sop_class, const struct dimse_ident *id, const char *move_dest,
    uint16_t msgid, const struct dicom_qr_limits *lim,
    const struct dicom_qr_user *u, void *arg, char *err, size_t cap)
{
	const struct dicom_pctx *pc = dicom_pctx_for(dc, sop_class, NULL);
	struct dimse_cmd c;
	struct dicom_qr *q;
	uint8_t b[512];
	size_t n;
	int r;

	if (pc == NULL || pc->ts == NULL || pc->ts->deflated ||
	    pc->ts->encapsulated) {
		snprintf(err, cap, "the peer accepted no context for %s (%s)",
		    ds_uid_name(sop_class), sop_class);
		return NULL;
	}
	r = kind == DICOM_QR_FIND ? dimse_find_rq(msgid, sop_class,
	    DIMSE_PRIORITY_MEDIUM, &c) : kind == DICOM_QR_GET ?
	    dimse_get_rq(msgid, sop_class, DIMSE_PRIORITY_MEDIUM, &c) :
	    dimse_move_rq(msgid, sop_class, DIMSE_PRIORITY_MEDIUM,
	    move_dest != NULL ? move_dest : "", &c);
	if (r < 0 || (n = dimse_cmd_encode(&c, b, sizeof(b))) == 0 ||
	    n > sizeof(b)) {
		snprintf(err, cap, "cannot build the %s request (move "
		    "destination \"%s\")", dicom_qr_kind_name(kind),
		    move_dest != NULL ? move_dest : "");
		return NULL;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL)
		abort();
	q->dc = dc;
	q->kind = kind;
	q->msgid = msgid;
	q->pcid = pc->id;
	q->ts = pc->ts;
	q->lim = *lim;
	if (q->lim.max_ident == 0)
		q->lim.max_ident = IDENT_MAX_DEFAULT;
	q->u = u;
	q->arg = arg;
	q->r.remaining = q->r.completed = q->r.failed = q->r.warning = -1;
	if ((q->buf = evbuffer_new()) == NULL)
		abort();
	q->timer = evtimer_new(bufferevent_get_base(net_conn_bev(
	    dicom_conn_net(dc))), on_timer, q);
	if (q->timer == NULL)
		abort();
	if (dicom_send_pdv(dc, pc->id, 1, 1, b, (uint32_t)n) < 0 ||
	    send_ident(q, id) < 0) {
		snprintf(err, cap, "the association cannot send");
		dicom_qr_free(q);
		return NULL;
	}
	q->t_start = q->t_last = q->t_change = net_now_ms();
	log_info("qr-start", "conn=%llu op=%s msgid=%u sop_class=%s "
	    "dest=%s level=%s", qcid(q), dicom_qr_kind_name(kind), msgid,
	    sop_class, move_dest != NULL ? move_dest : "-",
	    dimse_ident_get(id, DIMSE_TAG_QR_LEVEL) != NULL ?
	    dimse_ident_get(id, DIMSE_TAG_QR_LEVEL) : "-");
	arm(q);
	return q;
}

/* gather: a fragment of the response's identifier. */
static void
gather(struct dicom_qr *q, const uint8_t *p, size_t n)
{
	if (q->over || n == 0)
		return;
	if (evbuffer_get_length(q->buf) + n > q->lim.max_ident) {
		q->over = 1;
		return;
	}
	if (evbuffer_add(q->buf, p, n) < 0)
		abort();
}

/* response: a whole response (its identifier gathered, if any). */
static void
response(struct dicom_qr *q, int has_dataset)
{
	const struct dimse_cmd *c = &q->rsp;
	enum dimse_status_class cl = dimse_status_class(c->status);
	struct ds_error pe;
	int have_id = 0;
	long counts[4];
	size_t len = evbuffer_get_length(q->buf);
	const uint8_t *buf = evbuffer_pullup(q->buf, -1);

	q->r.responses++;
	q->r.status = c->status;
	if (c->present & DIMSE_F_ERROR_COMMENT)
		snprintf(q->r.comment, sizeof(q->r.comment), "%s",
		    c->error_comment);
	if (has_dataset && !q->over) {
		if (dimse_ident_decode(buf, len, q->ts, &q->id, &pe) == 0)
			have_id = 1;
		else
			log_warn("qr-identifier", "conn=%llu op=%s msgid=%u "
			    "why=\"the response's identifier does not parse: "
			    "byte %llu: %s\"", qcid(q),
			    dicom_qr_kind_name(q->kind), q->msgid,
			    (unsigned long long)pe.offset, pe.msg);
	}
	if (q->kind != DICOM_QR_FIND) {
		counts[0] = c->present & DIMSE_F_REMAINING ? c->remaining : -1;
		counts[1] = c->present & DIMSE_F_COMPLETED ? c->completed : -1;
		counts[2] = c->present & DIMSE_F_FAILED ? c->failed : -1;
		counts[3] = c->present & DIMSE_F_WARNING ? c->warning : -1;
		if (counts[0] != q->r.remaining ||
		    counts[1] != q->r.completed ||
		    counts[2] != q->r.failed || counts[3] != q->r.warning)
			q->t_change = q->t_last;
		q->r.remaining = counts[0];
		q->r.completed = counts[1];
		q->r.failed = counts[2];
		q->r.warning = counts[3];
	}
	if (cl == DIMSE_CLASS_PENDING) {
		if (q->kind == DICOM_QR_FIND) {
			if (q->over) {
				dicom_qr_cancel(q, "a match's identifier is "
				    "larger than the limit");
				return;
			}
			if (!have_id) {
				dicom_qr_cancel(q, "a pending C-FIND response "
				    "without a usable identifier");
				return;
			}
			q->r.matches++;
			if (q->t_cancel == 0)
				q->u->match(q->arg, &q->id, buf, len,
				    q->ts);
			if (q->lim.max_matches && q->r.matches >=
			    q->lim.max_matches && q->t_cancel == 0) {
				char why[96];

				snprintf(why, sizeof(why), "more than %llu "
				    "matches (limits.find_matches)",
				    (unsigned long long)q->lim.max_matches);
				dicom_qr_cancel(q, why);
				return;
			}
		} else if (q->u->progress != NULL)
			q->u->progress(q->arg, &q->r);
		arm(q);
		return;
	}
	q->r.final = 1;
	q->r.failed_uids = have_id ? dimse_ident_get(&q->id,
	    TAG_FAILED_UIDS) : NULL;
	if (cl == DIMSE_CLASS_FAILURE && q->r.why[0] == '\0')
		snprintf(q->r.why, sizeof(q->r.why), "%s: 0x%04x (%s)%s%s",
		    dicom_qr_kind_name(q->kind), c->status,
		    dimse_status_name_for(rsp_command(q->kind), c->status),
		    q->r.comment[0] ? ": " : "", q->r.comment);
	finish(q);
}

int
dicom_qr_message(struct dicom_qr *q, enum dimse_asm_result r,
    const struct dimse_asm_event *ev)
{
	const struct dimse_cmd *c = ev->cmd;

	if (q->done || !(c->present & DIMSE_F_MSGID_RSP) ||
	    c->msgid_rsp != q->msgid || c->command != rsp_command(q->kind))
		return 0;
	switch (r) {
	case DIMSE_ASM_COMMAND:
		q->rsp = *c;
		evbuffer_drain(q->buf, evbuffer_get_length(q->buf));
		q->over = 0;
		q->t_last = net_now_ms();
		if (!ev->has_dataset)
			response(q, 0);
		break;
	case DIMSE_ASM_DATA:
		gather(q, ev->data, ev->len);
		break;
	case DIMSE_ASM_DATA_END:
		gather(q, ev->data, ev->len);
		response(q, 1);
		break;
	default:
		break;
	}
	return 1;
}

void
dicom_qr_ended(struct dicom_qr *q, const char *why)
{
	if (q->done)
		return;
	if (q->r.why[0] == '\0')
		snprintf(q->r.why, sizeof(q->r.why), "%s", why);
	finish(q);
}

void
dicom_qr_free_(struct dicom_qr *q)
{
	if (q == NULL)
		return;
	if (q->timer != NULL)
		event_free(q->timer);
	if (q->buf != NULL)
		evbuffer_free(q->buf);
	free(q);
}
