/*
 * dicom_svc.c — the DIMSE services of an accepted association: messages
 * assembled from PDVs (dimse_msg.h), then
 *   C-ECHO-RQ   answered 0x0000;
 *   C-STORE-RQ  the dataset streamed into the store sink (store_sink.h)
 *               while the parser checks it, and answered only once it is
 *               durable: 0x0000; 0xA900 when the dataset's SOP Class or
 *               Instance UID (0008,0016)/(0008,0018) is not the
 *               command's; 0x0122 when the command's SOP class is not
 *               the context's abstract syntax; 0xC000 when the dataset
 *               cannot be parsed or a UID is invalid (it is never used
 *               as a path then), or the request says it has no dataset;
 *               0xA700 when it cannot be stored;
 *   N-EVENT-REPORT-RQ of Storage Commitment (the SCP's report, on our
 *               association or its own): the dataset gathered (up to
 *               DICOM_REPORT_MAX), decoded and handed to the commitment
 *               waiting for it (dicom_commit.h); answered 0x0000, or
 *               0x0110 when it cannot be decoded;
 *   C-CANCEL-RQ ignored (nothing here runs long enough to cancel);
 *   any other   0x0211 (unrecognized operation), its dataset discarded.
 * A protocol error in the PDVs (dimse_asm_feed) aborts the association.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "conf/conf.h"
#include "dimse/dimse_cmd.h"
#include "dimse/dimse_msg.h"
#include "dimse/ds_parse.h"
#include "dimse/ds_uid.h"
#include "dimse/dimse_commit.h"
#include "src/net/dicom_commit.h"
#include "src/net/dicom_svc.h"
#include "src/net/net.h"
#include "src/net/store_sink.h"
#include "src/util/log.h"

#define TAG_SOP_CLASS		DS_TAG(0x0008, 0x0016)
#define TAG_SOP_INSTANCE	DS_TAG(0x0008, 0x0018)
#define TAG_STUDY_UID		DS_TAG(0x0020, 0x000d)
#define TAG_SERIES_UID		DS_TAG(0x0020, 0x000e)

enum svc_state {
	SVC_IDLE,	/* between messages */
	SVC_STORE,	/* a C-STORE dataset arriving into the sink */
	SVC_DISCARD,	/* a dataset arriving that is not kept */
	SVC_REPORT,	/* a Storage Commitment report arriving */
};

/* A C-STORE received whole and being made durable: what its response
 * needs. Up to the association's asynchronous operations window of
 * them may be outstanding while the next requests are read. */
struct pending {
	struct pending		*next;
	struct dicom_svc	*s;
	struct dimse_cmd	 rq;
	uint8_t			 pcid;
	struct timespec		 t0;
	uint64_t		 bytes;
	struct store_commit	*commit;
	struct store_sink	*sink;		/* until committed() */
	int			 early;		/* answered before it was
						 * durable (a retrieve's) */
};

#define DICOM_REPORT_MAX	(64u * 1024 * 1024)

struct dicom_svc {
	struct dicom_conn	*dc;
	struct dimse_asm	*as;
	enum svc_state		 st;
	struct dimse_cmd	 rq;		/* the request in progress */
	uint8_t			 pcid;
	uint16_t		 status;	/* for SVC_DISCARD */
	char			 comment[DIMSE_COMMENT_MAX + 1];
	struct store_sink	*sink;
	struct ds_parser	*p;
	char			 ds_class[DIMSE_UID_MAX + 1];
	char			 ds_instance[DIMSE_UID_MAX + 1];
	char			 ds_study[DIMSE_UID_MAX + 1];
	char			 ds_series[DIMSE_UID_MAX + 1];
	char			 err[256];	/* why the store failed */
	int			 sink_failed;
	struct timespec		 t0;
	struct pending		*pending;	/* being made durable */
	unsigned		 npending;	/* responses owed */
	unsigned		 nearly;	/* answered, not durable yet */
	uint64_t		 bytes;		/* of the instance */
	char			*dir;		/* NULL: DATA_DIR/incoming */
	struct evbuffer		*rbuf;		/* SVC_REPORT: the dataset */
};

/* Instances stored by this process, on every association. */
static uint64_t stored_total;

uint64_t
dicom_svc_stored_total(void)
{
	return stored_total;
}

int
dicom_svc_supports(const char *abstract)
{
	const struct ds_uid_entry *u;

	if (strcmp(abstract, DIMSE_VERIFICATION_CLASS) == 0 ||
	    strcmp(abstract, DIMSE_COMMIT_CLASS) == 0)
		return 1;
	return (u = ds_uid_lookup(abstract)) != NULL && u->storage;
}

static const struct conf *
svc_conf(struct dicom_svc *s)
{
	return net_server_conf(net_conn_server(dicom_conn_net(s->dc)));
}

/* peer_ae: the other side's AE title (the calling one on an association
 * we accepted, the called one on ours). */
static const char *
peer_ae(struct dicom_svc *s)
{
	const struct dicom_assoc *a = dicom_conn_assoc(s->dc);

	return a->requestor ? a->called : a->calling;
}

static unsigned long long
svc_cid(struct dicom_svc *s)
{
	return (unsigned long long)net_conn_id(dicom_conn_net(s->dc));
}

struct dicom_svc *
dicom_svc_new(struct dicom_conn *dc)
{
	struct dicom_svc *s = calloc(1, sizeof(*s));

	if (s == NULL)
		abort();
	s->dc = dc;
	s->as = dimse_asm_new(0);
	if ((s->rbuf = evbuffer_new()) == NULL)
		abort();
	return s;
}

static void
drop_work(struct dicom_svc *s)
{
	while (s->pending != NULL) {
		struct pending *p = s->pending;

		s->pending = p->next;
		store_commit_cancel(p->commit);	/* still made durable */
		store_sink_cancel_drain(p->sink);
		free(p);
	}
	s->npending = 0;
	s->nearly = 0;
	store_sink_abort(s->sink);
	s->sink = NULL;
	ds_parser_free(s->p);
	evbuffer_drain(s->rbuf, evbuffer_get_length(s->rbuf));
	s->st = SVC_IDLE;
}

void
dicom_svc_closing(struct dicom_svc *s)
{
	for (struct pending *p = s->pending; p != NULL; p = p->next)
		if (!p->early)	/* those were answered, and are kept */
			log_warn("store-unanswered", "conn=%llu sop_instance=%s "
			    "why=\"the association ended while the instance "
			    "was being made durable: it is kept, "
			    "unacknowledged\"", svc_cid(s),
			    p->rq.affected_instance);
	if (s->st != SVC_IDLE)
		log_warn("store-dropped", "conn=%llu sop_instance=%s why=\"the "
		    "association ended before the dataset did\"",
		    svc_cid(s), s->rq.affected_instance);
	drop_work(s);
}

void
dicom_svc_free(struct dicom_svc *s)
{
	drop_work(s);
	dimse_asm_free(s->as);
	evbuffer_free(s->rbuf);
	free(s->dir);
	free(s);
}

void
dicom_svc_set_dir(struct dicom_svc *s, const char *dir)
{
	free(s->dir);
	if ((s->dir = strdup(dir)) == NULL)
		abort();
}

int
dicom_svc_midway(const struct dicom_svc *s)
{
	return s->st != SVC_IDLE || !dimse_asm_idle(s->as);
}

int
dicom_svc_idle(const struct dicom_svc *s)
{
	return s->st == SVC_IDLE && s->npending == 0 && s->nearly == 0 &&
	    dimse_asm_idle(s->as);
}

/* respond_to: send the response to rq (on context pcid) with status
 * (and a comment); respond: to the request in hand. */
static int
respond_to(struct dicom_svc *s, const struct dimse_cmd *rq, uint8_t pcid,
    uint16_t status, const char *comment)
{
	struct dimse_cmd rsp;
	uint8_t buf[1024];
	size_t n;

	if (dimse_rsp_init(rq, status, &rsp) < 0)
		return 0;	/* no response to this one */
	if (comment != NULL && comment[0] != '\0' &&
	    dimse_status_class(status) == DIMSE_CLASS_FAILURE) {
		snprintf(rsp.error_comment, sizeof(rsp.error_comment), "%.*s",
		    DIMSE_COMMENT_MAX, comment);
		rsp.present |= DIMSE_F_ERROR_COMMENT;
	}
	n = dimse_cmd_encode(&rsp, buf, sizeof(buf));
	if (n == 0 || n > sizeof(buf) ||
	    dicom_send_pdv(s->dc, pcid, 1, 1, buf, (uint32_t)n) < 0)
		return -1;
	dicom_count_dimse(s->dc, rq->command, 1, status);
	return 0;
}

static int
respond(struct dicom_svc *s, uint16_t status, const char *comment)
{
	return respond_to(s, &s->rq, s->pcid, status, comment);
}

/* ---- C-STORE ---- */

static int
on_store_element(void *arg, const struct ds_elem *e, const uint8_t *v,
    size_t n)
{
	struct dicom_svc *s = arg;

	if (e->depth != 0)
		return 0;
	if (e->tag == TAG_SOP_CLASS || e->tag == TAG_SOP_INSTANCE)
		ds_uid_exact(e->tag == TAG_SOP_CLASS ? s->ds_class :
		    s->ds_instance, v, n);
	else if (e->tag == TAG_STUDY_UID || e->tag == TAG_SERIES_UID)
		ds_uid_exact(e->tag == TAG_STUDY_UID ? s->ds_study :
		    s->ds_series, v, n);
	return 0;
}

static const struct ds_callbacks store_check_cb = {
	.element = on_store_element,
};

static void
store_begin(struct dicom_svc *s, const struct dicom_pctx *pc)
{
	const struct conf *conf = svc_conf(s);
	char dir[4096];
	struct ds_limits lim;

	s->st = SVC_DISCARD;
	if ((s->rq.invalid & (DIMSE_F_AFFECTED_CLASS |
	    DIMSE_F_AFFECTED_INSTANCE)) ||
	    !store_uid_valid(s->rq.affected_instance)) {
		s->status = DIMSE_STATUS_CANNOT_UNDERSTAND;
		snprintf(s->comment, sizeof(s->comment), "invalid Affected "
		    "SOP %s UID", s->rq.invalid & DIMSE_F_AFFECTED_CLASS ?
		    "Class" : "Instance");
		return;
	}
	if (strcmp(s->rq.affected_class, pc->abstract) != 0) {
		s->status = DIMSE_STATUS_CLASS_NOT_SUPPORTED;
		snprintf(s->comment, sizeof(s->comment), "SOP class is not "
		    "the presentation context's");
		return;
	}
	if (pc->ts == NULL) {
		/* (never: such a context is not taken; see took_ac) */
		s->status = DIMSE_STATUS_CANNOT_UNDERSTAND;
		snprintf(s->comment, sizeof(s->comment), "unknown transfer "
		    "syntax on this context");
		return;
	}
	if (dicom_conn_assoc(s->dc)->requestor && !pc->scp_role) {
		/* our association: the peer may store to us only where it
		 * accepted our SCP role */
		s->status = DIMSE_STATUS_CLASS_NOT_SUPPORTED;
		snprintf(s->comment, sizeof(s->comment), "no SCP role was "
		    "negotiated for this context");
		return;
	}
	const char *why = net_server_intake(net_conn_server(
	    dicom_conn_net(s->dc)));

	if (why != NULL) {
		log_warn("store-refused", "conn=%llu sop_instance=%s reason=%s",
		    svc_cid(s), s->rq.affected_instance, log_q(why));
		s->status = DIMSE_STATUS_OUT_OF_RESOURCES;
		snprintf(s->comment, sizeof(s->comment), "%s", why);
		return;
	}
	if (s->dir != NULL)
		snprintf(dir, sizeof(dir), "%s", s->dir);
	else
		snprintf(dir, sizeof(dir), "%s/incoming", conf->node.data_dir);
	s->sink = store_sink_begin(dir, s->rq.affected_class,
	    s->rq.affected_instance, pc->ts_uid, peer_ae(s),
	    net_conn_peer(dicom_conn_net(s->dc)), s->err, sizeof(s->err));
	if (s->sink == NULL) {
		log_err("store-failed", "conn=%llu sop_instance=%s error=%s",
		    svc_cid(s), s->rq.affected_instance, log_q(s->err));
		s->status = DIMSE_STATUS_OUT_OF_RESOURCES;
		snprintf(s->comment, sizeof(s->comment), "cannot store now");
		return;
	}
	ds_limits_default(&lim);
	lim.max_depth = conf->limits.sequence_depth ?
	    conf->limits.sequence_depth : lim.max_depth;
	s->p = ds_parser_new_dataset(pc->ts, &lim, &store_check_cb, s);
	s->ds_class[0] = s->ds_instance[0] = '\0';
	s->ds_study[0] = s->ds_series[0] = '\0';
	s->sink_failed = 0;
	clock_gettime(CLOCK_MONOTONIC, &s->t0);
	s->st = SVC_STORE;
}

static void
drained(void *arg)
{
	struct dicom_svc *s = arg;

	dicom_conn_hold(s->dc, DICOM_HOLD_DISK, 0);
}

static void
store_data(struct dicom_svc *s, const uint8_t *p, size_t n)
{
	if (!s->sink_failed && store_sink_write(s->sink, p, n, s->err,
	    sizeof(s->err)) < 0)
		s->sink_failed = 1;
	/* more than limits.store_backlog waiting for the disk, in this
	 * sink or in all together, stops the association from reading
	 * until this sink's bytes are written (and so all queued before
	 * them): instances answered early (retrieve_ack) leave theirs
	 * queued, and counted alone a sender of many was never held */
	if (!s->sink_failed && store_sink_backlog_over(s->sink,
	    svc_conf(s)->limits.store_backlog) &&
	    store_sink_on_drain(s->sink, drained, s))
		dicom_conn_hold(s->dc, DICOM_HOLD_DISK, 1);
	if (s->p != NULL && ds_parse_feed(s->p, p, n) == DS_ERROR) {
		/* keep the first error; stop parsing */
		const struct ds_error *e = ds_parse_error(s->p);

		snprintf(s->comment, sizeof(s->comment), "byte %llu: %.40s",
		    (unsigned long long)e->offset, e->msg);
		ds_parser_free(s->p);
		s->status = DIMSE_STATUS_CANNOT_UNDERSTAND;
	}
}

static int stored(struct dicom_svc *s, const struct dimse_cmd *rq,
    uint8_t pcid, const struct timespec *t0, uint64_t bytes, uint16_t status,
    const char *why);

/* committed: on the loop, the committer made the instance durable (rc 0)
 * or could not; answer now. */
static void
committed(void *arg, int rc, const char *err)
{
	struct pending *p = arg, **pp;
	struct dicom_svc *s = p->s;
	int r;

	for (pp = &s->pending; *pp != NULL; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	if (p->early) {
		s->nearly--;
		/* answered already: a failure here means the migration
		 * engine does not find the instance and retrieves it again */
		if (rc != 0)
			log_warn("store-not-durable", "conn=%llu peer_ae=%s "
			    "sop_instance=%s error=%s action=%s", svc_cid(s),
			    peer_ae(s), p->rq.affected_instance, log_q(err),
			    "retrieved again by the engine");
		free(p);
		if (dicom_svc_idle(s))
			dicom_svc_done(s->dc);
		return;
	}
	s->npending--;
	r = stored(s, &p->rq, p->pcid, &p->t0, p->bytes, rc == 0 ?
	    DIMSE_STATUS_SUCCESS : DIMSE_STATUS_OUT_OF_RESOURCES, rc == 0 ?
	    "" : err);
	free(p);
	if (r < 0) {
		dicom_abort(s->dc, "cannot send a response");
		return;
	}
	if (dicom_svc_idle(s))
		dicom_svc_done(s->dc);
	if (s->npending < dicom_conn_assoc(s->dc)->window)
		dicom_conn_hold(s->dc, DICOM_HOLD_WINDOW, 0);
}

/* push_source: the peer with push_to this C-STORE comes from when it is
 * a push (not a sub-operation of our own C-MOVE or C-GET), else NULL. */
static const struct conf_peer *
push_source(struct dicom_svc *s)
{
	const struct conf_peer *p;

	if (dicom_conn_assoc(s->dc)->requestor ||
	    ((s->rq.present & DIMSE_F_MOVE_ORIG_AE) &&
	    strcmp(s->rq.move_orig_ae, svc_conf(s)->node.ae_title) == 0))
		return NULL;
	p = conf_peer_by_ae(svc_conf(s), peer_ae(s));
	return p != NULL && p->push_to != NULL ? p : NULL;
}

static int
store_end(struct dicom_svc *s)
{
	const struct conf_peer *push = NULL;
	uint64_t bytes = s->sink ? store_sink_bytes(s->sink) : 0;
	uint16_t status = DIMSE_STATUS_SUCCESS;
	const char *why = "";

	if (s->p == NULL) {
		why = s->comment;		/* the parse error */
		status = DIMSE_STATUS_CANNOT_UNDERSTAND;
	} else if (ds_parse_finish(s->p) == DS_ERROR) {
		snprintf(s->comment, sizeof(s->comment), "%.64s",
		    ds_parse_error(s->p)->msg);
		why = s->comment;
		status = DIMSE_STATUS_CANNOT_UNDERSTAND;
	} else if (strcmp(s->ds_class, s->rq.affected_class) != 0 ||
	    strcmp(s->ds_instance, s->rq.affected_instance) != 0) {
		snprintf(s->comment, sizeof(s->comment), "dataset's SOP "
		    "Class/Instance UID are not the command's");
		why = s->comment;
		status = DIMSE_STATUS_DATASET_MISMATCH;
	} else if (s->sink_failed) {
		why = s->err;
		status = DIMSE_STATUS_OUT_OF_RESOURCES;
	} else if ((push = push_source(s)) != NULL &&
	    (!store_uid_valid(s->ds_study) || !store_uid_valid(s->ds_series))) {
		snprintf(s->comment, sizeof(s->comment), "no valid Study/"
		    "Series Instance UID: pushes go by study");
		why = s->comment;
		status = DIMSE_STATUS_CANNOT_UNDERSTAND;
	}
	ds_parser_free(s->p);
	s->bytes = bytes;
	if (status == DIMSE_STATUS_SUCCESS) {
		/* Durable before the response: on the committer's thread
		 * when it runs (the daemon), here otherwise. */
		struct store_sink *sink = s->sink;

		struct pending *p = calloc(1, sizeof(*p));

		if (p == NULL)
			abort();
		s->sink = NULL;
		p->s = s;
		p->rq = s->rq;
		p->pcid = s->pcid;
		p->t0 = s->t0;
		p->bytes = bytes;
		p->sink = sink;
		/* A sub-operation of a retrieve we asked for (our C-MOVE:
		 * its MoveOriginator is our AE title; a C-GET on our own
		 * association) leaves the source with its copy: with
		 * migration.retrieve_ack early it is answered now, and the
		 * engine counts the instance received only once its record
		 * is durable (else it is retrieved again). */
		p->early = svc_conf(s)->migration.retrieve_ack_early &&
		    (dicom_conn_assoc(s->dc)->requestor ||
		    ((s->rq.present & DIMSE_F_MOVE_ORIG_AE) &&
		    strcmp(s->rq.move_orig_ae, svc_conf(s)->node.ae_title) ==
		    0));
		if (push != NULL)
			store_sink_set_push(sink, push->name, s->ds_study,
			    s->ds_series);
		if ((p->commit = store_sink_commit_async(sink, committed,
		    p)) != NULL) {
			/* the next requests are read while this one is made
			 * durable, up to the window we negotiated */
			p->next = s->pending;
			s->pending = p;
			s->st = SVC_IDLE;
			if (p->early) {
				/* owed to the disk, not to the peer */
				s->nearly++;
				return stored(s, &p->rq, p->pcid, &p->t0,
				    bytes, DIMSE_STATUS_SUCCESS, "");
			}
			if (++s->npending >= dicom_conn_assoc(s->dc)->window)
				dicom_conn_hold(s->dc, DICOM_HOLD_WINDOW, 1);
			return 0;
		}
		free(p);
		if (store_sink_commit(sink, s->err, sizeof(s->err)) < 0) {
			why = s->err;
			status = DIMSE_STATUS_OUT_OF_RESOURCES;
		}
	} else {
		store_sink_abort(s->sink);
		/* an aborted sink's drain note never comes: reading held for
		 * its bytes resumes now (they are dropped) */
		dicom_conn_hold(s->dc, DICOM_HOLD_DISK, 0);
	}
	s->sink = NULL;
	s->st = SVC_IDLE;
	return stored(s, &s->rq, s->pcid, &s->t0, bytes, status, why);
}

/* stored: the outcome of a C-STORE, logged and answered. */
static int
stored(struct dicom_svc *s, const struct dimse_cmd *rq, uint8_t pcid,
    const struct timespec *t0, uint64_t bytes, uint16_t status,
    const char *why)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (status == DIMSE_STATUS_SUCCESS) {
		stored_total++;
		log_info("store-received", "conn=%llu peer_ae=%s sop_class=%s "
		    "sop_instance=%s bytes=%llu ms=%.1f", svc_cid(s),
		    peer_ae(s), rq->affected_class, rq->affected_instance,
		    (unsigned long long)bytes,
		    (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
		    (double)(t1.tv_nsec - t0->tv_nsec) / 1e6);
	} else
		log_warn("store-refused", "conn=%llu peer_ae=%s sop_class=%s "
		    "sop_instance=%s status=0x%04x (%s) why=%s", svc_cid(s),
		    peer_ae(s), rq->affected_class, rq->affected_instance,
		    status, dimse_status_name(status), log_q(why));
	return respond_to(s, rq, pcid, status, why);
}

/* ---- Storage Commitment reports ---- */

static void
report_data(struct dicom_svc *s, const uint8_t *p, size_t n)
{
	if (s->status != 0)
		return;				/* over the limit already */
	if (evbuffer_get_length(s->rbuf) + n > DICOM_REPORT_MAX) {
		evbuffer_drain(s->rbuf, evbuffer_get_length(s->rbuf));
		s->status = DIMSE_STATUS_PROCESSING_FAILURE;
		snprintf(s->comment, sizeof(s->comment), "report over %u bytes",
		    DICOM_REPORT_MAX);
		return;
	}
	if (evbuffer_add(s->rbuf, p, n) < 0)
		abort();
}

static int
report_end(struct dicom_svc *s, const struct dicom_pctx *pc)
{
	struct dimse_commit_report r;
	char err[200];
	int rc;

	s->st = SVC_IDLE;
	if (s->status == 0 && pc->ts == NULL) {
		s->status = DIMSE_STATUS_PROCESSING_FAILURE;
		snprintf(s->comment, sizeof(s->comment), "unknown transfer "
		    "syntax on this context");
	}
	if (s->status == 0 && dimse_commit_decode(evbuffer_pullup(s->rbuf, -1),
	    evbuffer_get_length(s->rbuf), pc->ts,
	    &r, err, sizeof(err)) < 0) {
		s->status = DIMSE_STATUS_PROCESSING_FAILURE;
		snprintf(s->comment, sizeof(s->comment), "%.64s", err);
	}
	evbuffer_drain(s->rbuf, evbuffer_get_length(s->rbuf));
	if (s->status != 0) {
		log_warn("commit-report-refused", "conn=%llu peer_ae=%s "
		    "status=0x%04x why=%s", svc_cid(s), peer_ae(s), s->status,
		    log_q(s->comment));
		return respond(s, s->status, s->comment);
	}
	if (s->rq.event_type != (r.nfailed ? DIMSE_COMMIT_EVENT_FAIL :
	    DIMSE_COMMIT_EVENT_OK))
		log_warn("commit-report-odd", "conn=%llu peer_ae=%s "
		    "transaction=%s event_type=%u failed=%zu why=\"the event "
		    "type does not match the failed list; the list counts\"",
		    svc_cid(s), peer_ae(s), r.transaction, s->rq.event_type,
		    r.nfailed);
	/* answered first: whoever takes the report may end the
	 * association or the program */
	rc = respond(s, DIMSE_STATUS_SUCCESS, NULL);
	dicom_commit_report_in(&r, s->dc);
	dimse_commit_report_free(&r);
	return rc;
}

/* ---- dispatch ---- */

static int
on_command(struct dicom_svc *s, const struct dimse_asm_event *ev)
{
	const struct dicom_pctx *pc = dicom_conn_pctx(s->dc, ev->pcid);

	s->rq = *ev->cmd;
	s->pcid = ev->pcid;
	s->comment[0] = '\0';
	switch (s->rq.command) {
	case DIMSE_C_ECHO_RQ:
		if (ev->has_dataset)
			break;
		log_debug("echo", "conn=%llu peer_ae=%s", svc_cid(s),
		    peer_ae(s));
		return respond(s, DIMSE_STATUS_SUCCESS, NULL);
	case DIMSE_C_STORE_RQ:
		if (!ev->has_dataset) {
			/* nothing to store: not an unknown operation */
			s->status = DIMSE_STATUS_CANNOT_UNDERSTAND;
			snprintf(s->comment, sizeof(s->comment), "C-STORE-RQ "
			    "without a dataset (CommandDataSetType 0101H)");
			log_warn("dimse-refused", "conn=%llu peer_ae=%s "
			    "command=%s status=0x%04x why=%s", svc_cid(s),
			    peer_ae(s), dimse_cmd_name(s->rq.command),
			    s->status, log_q(s->comment));
			return respond(s, s->status, s->comment);
		}
		store_begin(s, pc);
		return 0;
	case DIMSE_N_EVENT_REPORT_RQ:
		if (!ev->has_dataset || pc == NULL ||
		    strcmp(pc->abstract, DIMSE_COMMIT_CLASS) != 0 ||
		    strcmp(s->rq.affected_class, DIMSE_COMMIT_CLASS) != 0)
			break;
		s->status = 0;
		s->st = SVC_REPORT;
		return 0;
	case DIMSE_C_CANCEL_RQ:
		return 0;
	default:
		break;
	}
	s->status = DIMSE_STATUS_UNRECOGNIZED_OP;
	snprintf(s->comment, sizeof(s->comment), "%s is not served here",
	    dimse_cmd_name(s->rq.command));
	log_warn("dimse-refused", "conn=%llu peer_ae=%s command=%s "
	    "status=0x%04x", svc_cid(s), peer_ae(s),
	    dimse_cmd_name(s->rq.command), s->status);
	if (ev->has_dataset) {
		s->st = SVC_DISCARD;
		return 0;
	}
	return respond(s, s->status, s->comment);
}

int
dicom_svc_pdv(struct dicom_svc *s, const struct dul_pdv *v)
{
	struct dimse_asm_event ev;
	enum dimse_asm_result r = dimse_asm_feed_pdv(s->as, v, &ev);

	if (r == DIMSE_ASM_ERROR) {
		dicom_abort(s->dc, dimse_asm_error(s->as)->msg);
		return -1;
	}
	return dicom_svc_event(s, r, &ev);
}

int
dicom_svc_event(struct dicom_svc *s, enum dimse_asm_result res,
    const struct dimse_asm_event *ev)
{
	int r = 0;

	switch (res) {
	case DIMSE_ASM_ERROR:
	case DIMSE_ASM_MORE:
		return 0;
	case DIMSE_ASM_COMMAND:
		if (s->npending >= dicom_conn_assoc(s->dc)->window) {
			char why[160];

			snprintf(why, sizeof(why), "a request beyond the "
			    "asynchronous operations window (%u responses "
			    "owed, window %u)", s->npending,
			    dicom_conn_assoc(s->dc)->window);
			dicom_abort(s->dc, why);
			return -1;
		}
		r = on_command(s, ev);
		break;
	case DIMSE_ASM_DATA:
		if (s->st == SVC_STORE)
			store_data(s, ev->data, ev->len);
		else if (s->st == SVC_REPORT)
			report_data(s, ev->data, ev->len);
		return 0;
	case DIMSE_ASM_DATA_END:
		if (s->st == SVC_REPORT) {
			report_data(s, ev->data, ev->len);
			r = report_end(s, dicom_conn_pctx(s->dc, ev->pcid));
		} else if (s->st == SVC_STORE) {
			store_data(s, ev->data, ev->len);
			r = store_end(s);
		} else if (s->st == SVC_DISCARD) {
			s->st = SVC_IDLE;
			log_warn("dimse-refused", "conn=%llu peer_ae=%s "
			    "command=%s sop_instance=%s status=0x%04x (%s) "
			    "why=%s", svc_cid(s),
			    peer_ae(s),
			    dimse_cmd_name(s->rq.command),
			    log_q(s->rq.affected_instance), s->status,
			    dimse_status_name(s->status), log_q(s->comment));
			r = respond(s, s->status, s->comment);
		}
		break;
	}
	if (r < 0) {
		dicom_abort(s->dc, "cannot send a response");
		return -1;
	}
	if (dicom_svc_idle(s))
		dicom_svc_done(s->dc);
	return 0;
}
