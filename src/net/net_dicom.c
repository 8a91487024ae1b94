/*
 * net_dicom.c — the DICOM Upper Layer on the reactor, acceptor side: PDUs
 * framed from the connection's input (dul_pdu.h), the PS3.8 state machine
 * (dul_sm.h) driven by them, its effects carried out here (send, ARTIM,
 * indication, close, in that order), the association negotiated by our acceptor policy, and the
 * PDVs of each P-DATA-TF handed to the DIMSE services (dicom_svc.h).
 *
 * Acceptor policy (each refusal is an A-ASSOCIATE-RJ with the PS3.8
 * Table 9-21 result/source/reason, and a log line that says why):
 *   - the called AE title must be node.ae_title       1/1/7 (permanent)
 *   - the calling AE title must be a configured peer  1/1/3 (permanent)
 *     whose host is the connection's address, or a name that resolves
 *     to it (while the name is first being looked up: 2/1/1, transient)
 *   - at most limits.associations_in at once          2/3/2 (transient)
 *   - protocol version 1, the DICOM application context 1/2/2, 1/1/2
 * Presentation contexts: an abstract syntax the services take
 * (dicom_svc_supports) with the first proposed transfer syntax we can
 * parse (the requestor lists its preference first; we keep what it sends,
 * no transcoding), else result 3 or 4. Maximum PDU: we announce
 * limits.max_pdu and never send more than the peer's. The asynchronous
 * operations window asked for is granted up to limits.async_window
 * (C-STOREs read while earlier ones are made durable). SCP/SCU role
 * proposals: the requestor as SCU is accepted, as SCP refused except for
 * Storage Commitment (an SCP sending its N-EVENT-REPORT).
 *
 * Bounds: a P-DATA-TF over limits.max_pdu, or another PDU over
 * DICOM_ASSOC_PDU_MAX, is an A-ABORT (invalid PDU parameter value) before
 * its body is read; ARTIM (limits.artim_ms) bounds the time before the
 * A-ASSOCIATE-RQ and after our last word; limits.idle_ms an established
 * association with nothing going on.
 */
#include "config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "conf/conf.h"
#include "dimse/dimse_commit.h"
#include "dimse/dimse_msg.h"
#include "dimse/ds_ts.h"
#include "dimse/ds_uid.h"
#include "dul/dul_pdu.h"
#include "dul/dul_sm.h"
#include "src/net/dicom_svc.h"
#include "src/net/net.h"
#include "src/net/net_proto.h"
#include "src/util/log.h"
#include "src/util/metrics.h"

#define DICOM_ASSOC_PDU_MAX	(64u * 1024)	/* RQ/AC/RJ/release/abort */

/* The associations of this process, for limits.associations_in. */
static unsigned n_assoc;

/* Decoding and building association PDUs needs two large structs; the
 * reactor is single-threaded, so they are shared, never kept. */
static struct dul_assoc scratch_rq, scratch_ac;

struct dicom_conn {
	struct net_conn		*c;
	struct dul_sm		 sm;
	int			 counted;	/* in n_assoc */
	struct dicom_assoc	 a;		/* what was negotiated */
	struct dicom_svc	*svc;		/* the DIMSE side, once up */
	/* the pending reply of our policy to the A-ASSOCIATE-RQ */
	struct dul_rj		 rj;
	uint8_t			 *ac;		/* encoded A-ASSOCIATE-AC */
	size_t			 ac_len;
	uint32_t		 send_cap;	/* peers[].max_pdu: the largest
						 * PDU we send it (0: what it
						 * offers) */
	/* requestor */
	const struct dicom_user	*user;
	void			*uarg;
	int			 ended;		/* user told */
	uint8_t			*rq;		/* encoded A-ASSOCIATE-RQ */
	size_t			 rq_len;
	struct dimse_asm	*as;		/* responses */
	int			 to_svc;	/* the message in progress is a
						 * request: the services' */
	unsigned		 held;		/* DICOM_HOLD_*: why */
	int			 reading;	/* within dicom_read's loop */
	struct event		*pdu_timer;	/* ARTIM before the RQ, then
						 * a PDU's deadline */
	int			 pdu_partial;	/* armed for a PDU begun */
	struct dicom_propose	*prop;		/* what we proposed */
	unsigned		 nprop;
	int			 file_tail;	/* the output may end in a
						 * file segment (see below) */
};

static void step(struct dicom_conn *dc, enum dul_event ev,
    const struct dul_evt_info *in);

/* ---------------------------------------------------------------------- */
/* Metrics: associations by direction, peer and outcome; DIMSE operations
 * by command, our role and status. The families are made once for the
 * daemon's registry (the tools have none). */

static struct metrics	*m_reg;
static struct metric	*m_assoc, *m_dimse;

static int
dmetrics(struct dicom_conn *dc)
{
	struct metrics *m = net_server_metrics(net_conn_server(dc->c));

	if (m == NULL)
		return 0;
	if (m != m_reg) {
		m_reg = m;
		m_assoc = metrics_counter(m, "vnamig_dicom_associations_total",
		    "DICOM associations by direction (in: a peer called us), "
		    "configured peer (\"-\": none matched) and outcome.",
		    "direction,peer,outcome");
		m_dimse = metrics_counter(m, "vnamig_dimse_operations_total",
		    "DIMSE operations answered (role scp) or asked (role scu), "
		    "by command and status (hex).", "command,role,status");
	}
	return 1;
}

static void
count_assoc(struct dicom_conn *dc, const char *outcome)
{
	const char *v[3] = { dc->a.requestor ? "out" : "in",
	    dc->a.peer_name[0] ? dc->a.peer_name : "-", outcome };

	if (dmetrics(dc))
		metric_add(m_assoc, v, 1);
}

void
dicom_count_dimse(struct dicom_conn *dc, uint16_t command, int scp,
    uint16_t status)
{
	char st[8], op[32];
	const char *v[3] = { op, scp ? "scp" : "scu", st };

	if (!dmetrics(dc))
		return;
	/* "C-STORE-RQ" → "C-STORE": the operation, whichever side */
	snprintf(op, sizeof(op), "%s", dimse_cmd_name(command &
	    ~DIMSE_RSP_BIT));
	if (strlen(op) > 3 && strcmp(op + strlen(op) - 3, "-RQ") == 0)
		op[strlen(op) - 3] = '\0';
	snprintf(st, sizeof(st), "%04X", status);
	metric_add(m_dimse, v, 1);
}

/* copy: a NUL-terminated copy of src cut to cap - 1 bytes. */
static void
copy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static const struct conf *
cf(struct dicom_conn *dc)
{
	return net_server_conf(net_conn_server(dc->c));
}


/* hold_one_pdu: read no more input than one whole PDU (the largest we
 * take) while the one in hand is dealt with: back-pressure, and a bound
 * on what one association can make us buffer. */
static void
hold_one_pdu(struct dicom_conn *dc)
{
	uint32_t max = cf(dc)->limits.max_pdu;

	bufferevent_setwatermark(net_conn_bev(dc->c), EV_READ, 0,
	    DUL_HEADER_LEN + (size_t)(max > DICOM_ASSOC_PDU_MAX ? max :
	    DICOM_ASSOC_PDU_MAX));
}

/* pctx_alloc: room for up to n accepted contexts, none yet. */
static void
pctx_alloc(struct dicom_conn *dc, unsigned n)
{
	free(dc->a.pctx);
	if ((dc->a.pctx = calloc(n ? n : 1, sizeof(*dc->a.pctx))) == NULL)
		abort();
	dc->a.npctx = 0;
}

static unsigned long long
cid(struct dicom_conn *dc)
{
	return (unsigned long long)net_conn_id(dc->c);
}

/* ---------------------------------------------------------------------- */
/* Sending. */

/* Bytes added to an output buffer whose last chain is a file segment
 * (dicom_send_file_pdvs) must not go through evbuffer_add: libevent then
 * allocates the new chain as large as that segment's end offset in its
 * file (megabytes into a spool segment), a malloc and munmap of several
 * MiB per few bytes, which made sending from the spool ten times slower
 * than sending the same bytes from their own files. They go as a
 * reference to a copy of their own instead (one small chain; what
 * follows it is added normally). */
static void
free_copy(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	free(arg);
}

static void
add_after_file(struct evbuffer *out, const void *p, size_t n)
{
	void *copy;

	if ((copy = malloc(n)) == NULL)
		abort();
	memcpy(copy, p, n);
	if (evbuffer_add_reference(out, copy, n, free_copy, copy) < 0)
		abort();
}

static void
send_bytes(struct dicom_conn *dc, const void *p, size_t n)
{
	struct evbuffer *out = bufferevent_get_output(net_conn_bev(dc->c));

	if (dc->file_tail && evbuffer_get_length(out) > 0)
		add_after_file(out, p, n);
	else
		evbuffer_add(out, p, n);
	dc->file_tail = 0;
}

int
dicom_send_pdv(struct dicom_conn *dc, uint8_t pcid, int command, int last,
    const uint8_t *p, uint32_t n)
{
	uint8_t h[DUL_PDATA_HEADER_LEN];
	struct dul_step st;

	if (dc->sm.state != DUL_STA6 && dc->sm.state != DUL_STA8)
		return -1;
	if (dul_encode_pdata_header(h, pcid, command, last, n) == 0)
		return -1;
	/* DT-1 / AR-7: the state machine agrees, then the bytes go out. */
	dul_sm_step(&dc->sm, DUL_EVT9, NULL, &st);
	send_bytes(dc, h, sizeof(h));
	if (n > 0)
		send_bytes(dc, p, n);
	return 0;
}

/* A maximum PDU length that leaves no room for a PDV's data (1-7): what
 * we send would be over it. */
static int
pdu_too_small(uint32_t max_length)
{
	return max_length != 0 && dul_pdata_fragment_max(max_length) < 2;
}

/* The largest PDU to send: what the peer offers (0: no limit), at most
 * its peers[].max_pdu. */
static uint32_t
send_pdu_max(uint32_t offered, uint32_t cap)
{
	return cap != 0 && (offered == 0 || offered > cap) ? cap : offered;
}

uint32_t
dicom_fragment_max(const struct dicom_conn *dc)
{
	uint32_t m = dul_pdata_fragment_max(dc->a.peer_max_pdu);

	return m == 0 || m > DICOM_SEND_FRAGMENT_MAX ? DICOM_SEND_FRAGMENT_MAX :
	    m;
}

const struct dicom_assoc *
dicom_conn_assoc(const struct dicom_conn *dc)
{
	return &dc->a;
}

struct net_conn *
dicom_conn_net(struct dicom_conn *dc)
{
	return dc->c;
}

void
dicom_abort(struct dicom_conn *dc, const char *why)
{
	log_warn("assoc-abort", "conn=%llu peer=%s calling=%s why=\"%s\"",
	    cid(dc), net_conn_peer(dc->c), dc->a.calling, why);
	step(dc, DUL_EVT15, NULL);
}

/* ---------------------------------------------------------------------- */
/* Negotiation (our answer to an A-ASSOCIATE-RQ). */

static int
ip_literal(const char *h)
{
	unsigned char b[16];

	return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

/* peer_host_ok: the connection comes from the peer's host: its address,
 * or one its name resolved to (looked up in the background, net.h).
 * 1 yes, 0 no, -1 the name is being looked up, -2 it does not resolve. */
static int
peer_host_ok(struct dicom_conn *dc, const struct conf_peer *p,
    const char *from)
{
	const char *colon;
	char addr[64];
	size_t n;

	if (p->host == NULL)
		return 1;
	if (from[0] == '[') {		/* "[v6]:port" */
		from++;
		colon = strchr(from, ']');
	} else
		colon = strrchr(from, ':');
	n = colon ? (size_t)(colon - from) : strlen(from);
	if (n >= sizeof(addr))
		return 0;
	memcpy(addr, from, n);
	addr[n] = '\0';
	if (ip_literal(p->host))
		return strcmp(p->host, addr) == 0;
	return net_server_host_check(net_conn_server(dc->c), p->host, addr);
}

/*
 * policy: decide on the RQ in scratch_rq. Returns 1 to accept (the AC is
 * encoded into dc->ac), 0 to reject (dc->rj set); logs either way.
 */
static int
policy(struct dicom_conn *dc)
{
	const struct conf *conf = cf(dc);
	const struct dul_assoc *rq = &scratch_rq;
	struct dul_assoc *ac = &scratch_ac;
	const struct conf_peer *peer = NULL;
	const char *why = NULL;
	unsigned naccepted = 0;
	size_t n;
	int hok;

	copy(dc->a.calling, sizeof(dc->a.calling), rq->calling_ae);
	copy(dc->a.called, sizeof(dc->a.called), rq->called_ae);
	for (size_t i = 0; i < conf->npeers; i++)
		if (strcmp(conf->peers[i].ae_title, rq->calling_ae) == 0)
			peer = &conf->peers[i];
	dc->rj.result = DUL_RJ_PERMANENT;
	dc->rj.source = DUL_RJ_SOURCE_USER;
	if (strcmp(rq->called_ae, conf->node.ae_title) != 0) {
		dc->rj.reason = DUL_RJ_USER_CALLED_AE;
		why = "called AE title is not ours";
	} else if (peer == NULL) {
		dc->rj.reason = DUL_RJ_USER_CALLING_AE;
		why = "calling AE title is not a configured peer";
	} else if ((hok = peer_host_ok(dc, peer, net_conn_peer(dc->c))) <
	    1) {
		dc->rj.reason = DUL_RJ_USER_CALLING_AE;
		why = hok == 0 ? "calling AE title comes from another address "
		    "than its peer's host" : hok == -2 ? "its peer's host name "
		    "does not resolve" : "its peer's host name is being looked "
		    "up: try again";
		if (hok == -1) {	/* transient: the caller retries */
			dc->rj.result = DUL_RJ_TRANSIENT;
			dc->rj.reason = DUL_RJ_USER_NO_REASON;
		}
	} else if (pdu_too_small(rq->max_length)) {
		dc->rj.reason = DUL_RJ_USER_NO_REASON;
		why = "its maximum PDU length is too small for any data";
	} else if (n_assoc >= conf->limits.associations_in) {
		dc->rj.result = DUL_RJ_TRANSIENT;
		dc->rj.source = DUL_RJ_SOURCE_PRESENTATION;
		dc->rj.reason = DUL_RJ_PRES_LIMIT;
		why = "limits.associations_in reached";
	}
	if (why != NULL) {
		log_warn("assoc-rejected", "conn=%llu peer=%s calling=%s "
		    "called=%s rj=%u/%u/%u why=\"%s\"", cid(dc),
		    net_conn_peer(dc->c), rq->calling_ae, rq->called_ae,
		    dc->rj.result, dc->rj.source, dc->rj.reason, why);
		if (dc->rj.result == DUL_RJ_PERMANENT) {
			char w[200];

			snprintf(w, sizeof(w), "calling %.16s, called %.16s: "
			    "%s", rq->calling_ae, rq->called_ae, why);
			net_server_refusal(net_conn_server(dc->c),
			    "association_rejected", "dicom",
			    net_conn_peer(dc->c), w);
		}
		count_assoc(dc, "rejected");
		return 0;
	}
	copy(dc->a.peer_name, sizeof(dc->a.peer_name), peer->name);
	net_conn_set_label(dc->c, peer->name);
	dc->send_cap = peer->max_pdu;
	dc->a.peer_max_pdu = send_pdu_max(rq->max_length, dc->send_cap);
	dul_assoc_init(ac, DUL_ASSOCIATE_AC);
	copy(ac->called_ae, sizeof(ac->called_ae), rq->called_ae);
	copy(ac->calling_ae, sizeof(ac->calling_ae), rq->calling_ae);
	copy(ac->app_context, sizeof(ac->app_context), DUL_APP_CONTEXT_DICOM);
	ac->max_length = conf->limits.max_pdu;
	copy(ac->impl_class, sizeof(ac->impl_class), DICOM_IMPLEMENTATION_CLASS_UID);
	copy(ac->impl_version, sizeof(ac->impl_version), DICOM_IMPLEMENTATION_VERSION);
	/* Asynchronous operations window: the requestor may invoke up to
	 * what it asked (0: unlimited) and limits.async_window allows;
	 * we invoke nothing on it. */
	dc->a.window = 1;
	if (rq->has_async) {
		uint32_t w = conf->limits.async_window;

		if (rq->async_invoked != 0 && rq->async_invoked < w)
			w = rq->async_invoked;
		ac->has_async = 1;
		ac->async_invoked = (uint16_t)w;
		ac->async_performed = 1;
		dc->a.window = w;
	}
	pctx_alloc(dc, rq->n_pctx);
	for (unsigned i = 0; i < rq->n_pctx; i++) {
		const struct dul_pctx *pc = &rq->pctx[i];
		struct dul_pctx *out;
		const char *ts = NULL;
		uint8_t result = DUL_PCTX_ABSTRACT_NOT_SUPPORTED;

		if (dicom_svc_supports(pc->abstract)) {
			result = DUL_PCTX_TRANSFER_NOT_SUPPORTED;
			for (unsigned k = 0; k < pc->ts_count && ts == NULL; k++)
				if (ds_ts_lookup(dul_pctx_ts(rq, pc, k)) != NULL)
					ts = dul_pctx_ts(rq, pc, k);
			if (ts != NULL)
				result = DUL_PCTX_ACCEPTANCE;
		}
		if ((out = dul_assoc_add_pctx(ac, pc->id, result, NULL)) ==
		    NULL)
			break;
		if (ts != NULL && dul_assoc_add_ts(ac, out, ts) == 0 &&
		    dc->a.npctx < DICOM_MAX_PCTX) {
			struct dicom_pctx *np = &dc->a.pctx[dc->a.npctx++];

			np->id = pc->id;
			np->ts = ds_ts_lookup(ts);
			copy(np->abstract, sizeof(np->abstract), pc->abstract);
			copy(np->ts_uid, sizeof(np->ts_uid), ts);
			naccepted++;
		}
	}
	for (unsigned i = 0; i < rq->n_role && ac->n_role < DUL_MAX_ROLES;
	    i++) {
		struct dul_role *r = &ac->role[ac->n_role++];

		copy(r->sop_class, sizeof(r->sop_class),
		    rq->role[i].sop_class);
		r->scu = rq->role[i].scu;
		/* a Storage Commitment SCP reporting on its own association
		 * acts as the SCP of that class (PS3.4 J.3.3) */
		r->scp = strcmp(r->sop_class, DIMSE_COMMIT_CLASS) == 0 ?
		    rq->role[i].scp : 0;
	}
	free(dc->ac);
	n = dul_encode_assoc(ac, NULL, 0, NULL);
	if (n == 0 || (dc->ac = malloc(n)) == NULL ||
	    dul_encode_assoc(ac, dc->ac, n, NULL) != n) {
		dc->rj.result = DUL_RJ_TRANSIENT;
		dc->rj.source = DUL_RJ_SOURCE_USER;
		dc->rj.reason = DUL_RJ_USER_NO_REASON;
		log_err("assoc-rejected", "conn=%llu why=\"cannot encode the "
		    "A-ASSOCIATE-AC\"", cid(dc));
		return 0;
	}
	dc->ac_len = n;
	log_info("assoc-accepted", "conn=%llu peer=%s calling=%s called=%s "
	    "peer_name=%s contexts=%u accepted=%u peer_max_pdu=%u window=%u "
	    "impl=\"%s %s\"", cid(dc), net_conn_peer(dc->c), rq->calling_ae,
	    rq->called_ae, peer->name, rq->n_pctx, naccepted, rq->max_length,
	    dc->a.window, rq->impl_class, rq->impl_version);
	count_assoc(dc, "accepted");
	return 1;
}

/* ---------------------------------------------------------------------- */
/* The state machine's effects. */

/* end_user: tell the requestor's user, once. */
static void
end_user(struct dicom_conn *dc, int ok, const char *why)
{
	if (dc->user == NULL || dc->ended)
		return;
	dc->ended = 1;
	dc->user->ended(dc, dc->uarg, ok, why);
}

static void
indicate(struct dicom_conn *dc, const struct dul_step *st)
{
	static char why[160];

	if (dc->user != NULL) {
		switch (st->indicate) {
		case DUL_IND_ASSOC_AC:
			dc->as = dimse_asm_new(0);
			/* The peer's requests (C-GET's C-STOREs, anything
			 * else) are answered by the services. */
			dc->svc = dicom_svc_new(dc);
			if (dc->user->store_dir != NULL)
				dicom_svc_set_dir(dc->svc,
				    dc->user->store_dir);
			dc->user->established(dc, dc->uarg);
			return;
		case DUL_IND_ASSOC_RJ:
			snprintf(why, sizeof(why), "association rejected "
			    "%u/%u/%u (%s)", dc->rj.result, dc->rj.source,
			    dc->rj.reason, dul_rj_reason_name(dc->rj.source,
			    dc->rj.reason));
			end_user(dc, 0, why);
			return;
		case DUL_IND_RELEASE_RP:
			end_user(dc, 1, "released");
			return;
		case DUL_IND_RELEASE_RQ:	/* the acceptor releases */
			step(dc, DUL_EVT14, NULL);
			end_user(dc, 1, "released by the peer");
			return;
		case DUL_IND_ABORT:
		case DUL_IND_P_ABORT:
			end_user(dc, 0, st->indicate == DUL_IND_ABORT ?
			    "aborted by the peer" : "aborted (A-P-ABORT)");
			return;
		default:
			return;
		}
	}
	switch (st->indicate) {
	case DUL_IND_ASSOC_RQ:
		if (policy(dc)) {
			step(dc, DUL_EVT7, NULL);
			if (dc->sm.state == DUL_STA6) {
				n_assoc++;
				dc->counted = 1;
				dc->svc = dicom_svc_new(dc);
			}
		} else
			step(dc, DUL_EVT8, NULL);
		break;
	case DUL_IND_RELEASE_RQ:
		log_info("assoc-released", "conn=%llu peer=%s calling=%s",
		    cid(dc), net_conn_peer(dc->c), dc->a.calling);
		count_assoc(dc, "released");
		/* Responses still owed are sent first; then the RP. A
		 * message half received never ends (no P-DATA may follow
		 * the RQ): it is aborted, its instance dropped, rather than
		 * left waiting for the idle timeout without an answer. */
		if (dc->svc != NULL && dicom_svc_midway(dc->svc))
			dicom_abort(dc, "A-RELEASE-RQ in the middle of a "
			    "message: the rest of it can no longer come");
		else if (dc->svc == NULL || dicom_svc_idle(dc->svc))
			step(dc, DUL_EVT14, NULL);
		break;
	case DUL_IND_ABORT:
	case DUL_IND_P_ABORT:
		log_warn("assoc-aborted", "conn=%llu peer=%s calling=%s "
		    "by=%s state=%s", cid(dc), net_conn_peer(dc->c),
		    dc->a.calling, st->indicate == DUL_IND_ABORT ? "peer" :
		    "provider", dul_state_name(st->from));
		count_assoc(dc, "aborted");
		break;
	default:
		break;
	}
}

void
dicom_svc_done(struct dicom_conn *dc)
{
	/* The services owe nothing more: a release that waited goes on;
	 * when shutting down, the association ends here. */
	if (dc->sm.state == DUL_STA8)
		step(dc, DUL_EVT14, NULL);
	else if (dc->user == NULL && dc->sm.state == DUL_STA6 &&
	    net_conn_draining(dc->c))
		dicom_abort(dc, "vnamigd is shutting down");
}

static void
perform_send(struct dicom_conn *dc, const struct dul_step *st)
{
	uint8_t b[DUL_SHORT_PDU_LEN];

	switch (st->send) {
	case DUL_SEND_ASSOC_RQ:
		send_bytes(dc, dc->rq, dc->rq_len);
		break;
	case DUL_SEND_ASSOC_AC:
		send_bytes(dc, dc->ac, dc->ac_len);
		free(dc->ac);
		dc->ac = NULL;
		break;
	case DUL_SEND_ASSOC_RJ:
		if (st->act == DUL_AE6)
			dul_encode_rj(b, st->rj_result, st->rj_source,
			    st->rj_reason);
		else
			dul_encode_rj(b, dc->rj.result, dc->rj.source,
			    dc->rj.reason);
		send_bytes(dc, b, sizeof(b));
		break;
	case DUL_SEND_RELEASE_RQ:
		send_bytes(dc, b, dul_encode_release(b, DUL_RELEASE_RQ));
		break;
	case DUL_SEND_RELEASE_RP:
		send_bytes(dc, b, dul_encode_release(b, DUL_RELEASE_RP));
		break;
	case DUL_SEND_ABORT:
		send_bytes(dc, b, dul_encode_abort(b, st->abort_source,
		    st->abort_reason));
		break;
	default:	/* P-DATA: sent by dicom_send_pdv */
		break;
	}
}

static void
step(struct dicom_conn *dc, enum dul_event ev, const struct dul_evt_info *in)
{
	struct dul_step st;

	dul_sm_step(&dc->sm, ev, in, &st);
	log_debug("dul-step", "conn=%llu %s %s %s -> %s", cid(dc),
	    dul_state_name(st.from), dul_event_name(ev), dul_act_name(st.act),
	    dul_state_name(st.to));
	if (st.refused)
		return;
	perform_send(dc, &st);
	if (st.artim == DUL_TIMER_START)
		net_conn_set_timeout(dc->c, cf(dc)->limits.artim_ms);
	if (st.to == DUL_STA13 && st.from != DUL_STA13 && dc->pdu_timer)
		/* ARTIM from now, whatever the peer still sends (the read
		 * timeout restarts with each byte) */
		net_timer_arm(dc->pdu_timer, cf(dc)->limits.artim_ms);
	else if (st.to == DUL_STA6 || st.to == DUL_STA3)
		net_conn_set_timeout(dc->c, cf(dc)->limits.idle_ms);
	if (st.to == DUL_STA1 || st.to == DUL_STA13) {
		if (dc->counted) {
			n_assoc--;
			dc->counted = 0;
		}
		if (dc->svc != NULL)
			dicom_svc_closing(dc->svc);
	}
	indicate(dc, &st);
	if (st.close)
		net_conn_close(dc->c, dul_act_name(st.act), 1);
}

/* ---------------------------------------------------------------------- */
/* Reading PDUs. */

static void
invalid(struct dicom_conn *dc, const struct dul_error *e)
{
	struct dul_evt_info in = { .abort_reason = e->abort_reason };

	log_warn("pdu-invalid", "conn=%llu peer=%s state=%s abort=2/%u "
	    "why=\"%s\"", cid(dc), net_conn_peer(dc->c),
	    dul_state_name(dc->sm.state), e->abort_reason, e->msg);
	step(dc, DUL_EVT19, &in);
}

static void
pdata(struct dicom_conn *dc, const uint8_t *pdu, size_t n)
{
	struct dul_pdv_iter it;
	struct dul_pdv v;
	struct dul_error e;
	int r;

	/* Validate the whole PDU before acting on any of it. */
	if (dul_pdata_begin(&it, pdu, n, &e) < 0) {
		invalid(dc, &e);
		return;
	}
	while ((r = dul_pdata_next(&it, &v, &e)) == 1)
		if (dicom_conn_pctx(dc, v.pcid) == NULL) {
			snprintf(e.msg, sizeof(e.msg), "PDV at byte %zu is on "
			    "presentation context %u, which was not accepted",
			    v.offset, v.pcid);
			e.abort_reason = DUL_ABORT_INVALID_PARAM;
			invalid(dc, &e);
			return;
		}
	if (r < 0) {
		invalid(dc, &e);
		return;
	}
	step(dc, DUL_EVT10, NULL);
	if (dc->sm.state != DUL_STA6 && dc->sm.state != DUL_STA7)
		return;
	dul_pdata_begin(&it, pdu, n, &e);
	if (dc->user != NULL) {
		struct dimse_asm_event ev;

		enum dimse_asm_result ar;

		while (dul_pdata_next(&it, &v, &e) == 1 && !dc->ended)
			switch ((ar = dimse_asm_feed_pdv(dc->as, &v, &ev))) {
			case DIMSE_ASM_ERROR:
				dicom_abort(dc, dimse_asm_error(dc->as)->msg);
				end_user(dc, 0, dimse_asm_error(dc->as)->msg);
				return;
			case DIMSE_ASM_MORE:
				break;
			default:
				if (ar == DIMSE_ASM_COMMAND)
					dc->to_svc = !(ev.cmd->command &
					    DIMSE_RSP_BIT);
				if (dc->to_svc) {
					if (dicom_svc_event(dc->svc, ar,
					    &ev) < 0)
						return;
				} else {
					if (ar == DIMSE_ASM_COMMAND)
						dicom_count_dimse(dc,
						    ev.cmd->command, 0,
						    ev.cmd->status);
					dc->user->message(dc, dc->uarg, ar,
					    &ev);
				}
				break;
			}
		return;
	}
	while (dul_pdata_next(&it, &v, &e) == 1 && dc->svc != NULL &&
	    (dc->sm.state == DUL_STA6 || dc->sm.state == DUL_STA7))
		if (dicom_svc_pdv(dc->svc, &v) < 0)
			return;
}

/* took_ac: an A-ASSOCIATE-AC to our RQ: keep what was accepted. 0, or
 * -1 when it is invalid (the association is aborted). */
static int
took_ac(struct dicom_conn *dc, const uint8_t *p, size_t n)
{
	const struct dul_assoc *ac = &scratch_ac;
	struct dul_error e;
	unsigned k = 0;

	if (dul_decode_assoc(p, n, &scratch_ac, &e) < 0) {
		invalid(dc, &e);
		return -1;
	}
	if (pdu_too_small(ac->max_length)) {
		memset(&e, 0, sizeof(e));
		e.abort_reason = DUL_ABORT_INVALID_PARAM;
		snprintf(e.msg, sizeof(e.msg), "the acceptor's maximum PDU "
		    "length %u is too small for any data", ac->max_length);
		invalid(dc, &e);
		return -1;
	}
	dc->a.peer_max_pdu = send_pdu_max(ac->max_length, dc->send_cap);
	/* what the acceptor lets us have outstanding (0: unlimited, kept
	 * to what we asked) */
	dc->a.window = !ac->has_async ? 1 : ac->async_invoked == 0 ||
	    ac->async_invoked > cf(dc)->limits.async_window ?
	    cf(dc)->limits.async_window : ac->async_invoked;
	if (dc->a.window == 0)
		dc->a.window = 1;
	pctx_alloc(dc, ac->n_pctx);
	for (unsigned i = 0; i < ac->n_pctx; i++) {
		const struct dul_pctx *pc = &ac->pctx[i];
		unsigned idx = (unsigned)(pc->id - 1) / 2;
		struct dicom_pctx *np;
		const struct ds_ts *tsd;
		const char *ts;
		unsigned t;

		if (pc->result != DUL_PCTX_ACCEPTANCE || pc->id % 2 == 0 ||
		    idx >= dc->nprop || pc->ts_count != 1)
			continue;
		/* PS3.8 9.3.3.2: one of the syntaxes proposed for it; a
		 * context accepted with another is taken as not accepted
		 * (nothing could be read or written on it) */
		ts = dul_pctx_ts(ac, pc, 0);
		for (t = 0; t < dc->prop[idx].nts; t++)
			if (strcmp(dc->prop[idx].ts[t], ts) == 0)
				break;
		tsd = t < dc->prop[idx].nts ? ds_ts_lookup(ts) : NULL;
		if (tsd == NULL) {
			log_warn("assoc-context-odd", "conn=%llu peer=%s "
			    "context=%u abstract=%s transfer_syntax=%s "
			    "action=%s", cid(dc), net_conn_peer(dc->c), pc->id,
			    dc->prop[idx].abstract, log_q(ts), log_q("not "
			    "used: the peer accepted it with a transfer "
			    "syntax we did not propose"));
			continue;
		}
		np = &dc->a.pctx[dc->a.npctx++];
		np->id = pc->id;
		copy(np->abstract, sizeof(np->abstract),
		    dc->prop[idx].abstract);
		copy(np->ts_uid, sizeof(np->ts_uid), ts);
		np->ts = tsd;
		np->scp_role = 0;
		for (unsigned r = 0; dc->prop[idx].scp_role &&
		    r < ac->n_role; r++)
			if (strcmp(ac->role[r].sop_class, np->abstract) == 0)
				np->scp_role = ac->role[r].scp;
		k++;
	}
	log_info("assoc-established", "conn=%llu peer=%s called=%s "
	    "proposed=%u accepted=%u peer_max_pdu=%u window=%u "
	    "impl=\"%s %s\"", cid(dc), net_conn_peer(dc->c), dc->a.called,
	    dc->nprop, k, ac->max_length, dc->a.window, ac->impl_class,
	    ac->impl_version);
	count_assoc(dc, "established");
	return 0;
}

/* unexpected: log a PDU the state machine will answer with an A-ABORT
 * (AA-1, AA-7, AA-8) because it has no place in this state. */
static void
unexpected(struct dicom_conn *dc, enum dul_event ev, uint8_t type)
{
	enum dul_act a = dul_sm_action(dc->sm.state, ev);

	if (a == DUL_AA1 || a == DUL_AA7 || a == DUL_AA8)
		log_warn("pdu-unexpected", "conn=%llu peer=%s state=%s "
		    "pdu=%s abort=2/2 why=\"no %s is allowed in %s (PS3.8 "
		    "Table 9-10: %s)\"", cid(dc), net_conn_peer(dc->c),
		    dul_state_name(dc->sm.state), dul_pdu_name(type),
		    dul_pdu_name(type), dul_state_name(dc->sm.state),
		    dul_act_name(a));
}

/* pdu: one whole PDU (header included) has arrived. */
static void
pdu(struct dicom_conn *dc, const uint8_t *p, size_t n)
{
	struct dul_evt_info in = { 0 };
	struct dul_error e;
	struct dul_abort ab;
	uint8_t rel;
	static const enum dul_event by_type[8] = { 0, DUL_EVT6, DUL_EVT3,
	    DUL_EVT4, DUL_EVT10, DUL_EVT12, DUL_EVT13, DUL_EVT16 };

	if (p[0] >= 1 && p[0] <= 7)
		unexpected(dc, by_type[p[0]], p[0]);
	switch (p[0]) {
	case DUL_ASSOCIATE_RQ:
		if (dul_decode_assoc(p, n, &scratch_rq, &e) < 0) {
			if (e.reply != DUL_REPLY_REJECT || dc->sm.state !=
			    DUL_STA2) {
				invalid(dc, &e);
				return;
			}
			log_warn("assoc-rejected", "conn=%llu peer=%s rj=%u/%u/"
			    "%u why=\"%s\"", cid(dc), net_conn_peer(dc->c),
			    e.rj_result, e.rj_source, e.rj_reason, e.msg);
			in.rj_result = e.rj_result;
			in.rj_source = e.rj_source;
			in.rj_reason = e.rj_reason;
		} else
			in.acceptable = 1;
		step(dc, DUL_EVT6, &in);
		return;
	case DUL_ASSOCIATE_AC:
		if (dc->sm.state == DUL_STA5 && took_ac(dc, p, n) < 0)
			return;
		step(dc, DUL_EVT3, NULL);
		return;
	case DUL_ASSOCIATE_RJ:
		if (dul_decode_rj(p, n, &dc->rj, &e) < 0) {
			invalid(dc, &e);
			return;
		}
		if (dc->sm.state == DUL_STA5)
			log_warn("assoc-rejected-by-peer", "conn=%llu peer=%s "
			    "called=%s rj=%u/%u/%u (%s)", cid(dc),
			    net_conn_peer(dc->c), dc->a.called, dc->rj.result,
			    dc->rj.source, dc->rj.reason, dul_rj_reason_name(
			    dc->rj.source, dc->rj.reason));
		step(dc, DUL_EVT4, NULL);
		return;
	case DUL_P_DATA_TF:
		if (dc->sm.state == DUL_STA6 || dc->sm.state == DUL_STA7)
			pdata(dc, p, n);
		else
			step(dc, DUL_EVT10, NULL);
		return;
	case DUL_RELEASE_RQ:
	case DUL_RELEASE_RP:
		if (dul_decode_release(p, n, &rel, &e) < 0) {
			invalid(dc, &e);
			return;
		}
		step(dc, rel == DUL_RELEASE_RQ ? DUL_EVT12 : DUL_EVT13, NULL);
		return;
	case DUL_ABORT:
		if (dul_decode_abort(p, n, &ab, &e) < 0) {
			invalid(dc, &e);
			return;
		}
		in.abort_source = ab.source;
		log_warn("abort-received", "conn=%llu peer=%s source=%u "
		    "reason=%u (%s)", cid(dc), net_conn_peer(dc->c), ab.source,
		    ab.reason, ab.source == DUL_ABORT_SOURCE_PROVIDER ?
		    dul_abort_reason_name(ab.reason) : "service-user");
		step(dc, DUL_EVT16, &in);
		return;
	}
}

/*
 * Slow senders. Before the A-ASSOCIATE-RQ, ARTIM runs from the connection
 * (limits.artim_timeout), whatever trickles in; after it, a PDU begun
 * must arrive whole within limits.network_timeout of its first byte: a
 * peer sending a byte a second is not kept for ever (the idle timeout
 * alone restarts with each byte).
 */
static void
on_pdu_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dicom_conn *dc = arg;

	(void)fd;
	(void)what;
	if (dc->sm.state == DUL_STA2) {
		log_warn("artim-expired", "conn=%llu peer=%s why=\"no whole "
		    "A-ASSOCIATE-RQ within limits.artim_timeout (%llu ms)\"",
		    cid(dc), net_conn_peer(dc->c), (unsigned long long)
		    cf(dc)->limits.artim_ms);
		net_conn_close(dc->c, "ARTIM expired", 0);
		return;
	}
	if (dc->sm.state == DUL_STA13) {
		/* AA-2: the peer did not close after our A-ABORT,
		 * A-ASSOCIATE-RJ or A-RELEASE-RP */
		log_info("artim-expired", "conn=%llu peer=%s state=Sta13 "
		    "why=\"not closed by the peer within "
		    "limits.artim_timeout (%llu ms)\"", cid(dc),
		    net_conn_peer(dc->c), (unsigned long long)
		    cf(dc)->limits.artim_ms);
		net_conn_close(dc->c, "ARTIM expired", 0);
		return;
	}
	log_warn("pdu-too-slow", "conn=%llu peer=%s calling=%s state=%s "
	    "why=\"a PDU was not received whole within "
	    "limits.network_timeout (%llu ms) of its first byte\"", cid(dc),
	    net_conn_peer(dc->c), dc->a.calling, dul_state_name(dc->sm.state),
	    (unsigned long long)cf(dc)->limits.network_ms);
	dc->pdu_partial = 0;
	if (dc->sm.state == DUL_STA6 || dc->sm.state == DUL_STA7 ||
	    dc->sm.state == DUL_STA8)
		dicom_abort(dc, "a PDU too slow to arrive");
	else
		net_conn_close(dc->c, "a PDU too slow to arrive", 0);
}

/* pdu_deadline: after reading, done PDUs taken: arm the deadline for a
 * PDU begun, or disarm it. */
static void
pdu_deadline(struct dicom_conn *dc, struct evbuffer *in, int done)
{
	if (dc->pdu_timer == NULL || dc->sm.state == DUL_STA2 ||
	    dc->sm.state == DUL_STA13)
		return;		/* ARTIM (dicom_open, step) holds */
	if (dc->held || dc->sm.state == DUL_STA1 ||
	    evbuffer_get_length(in) == 0) {
		evtimer_del(dc->pdu_timer);
		dc->pdu_partial = 0;
	} else if (!dc->pdu_partial || done > 0) {
		net_timer_arm(dc->pdu_timer, cf(dc)->limits.network_ms);
		dc->pdu_partial = 1;
	}
}

static void read_pdus(struct dicom_conn *dc, struct evbuffer *in);

static void
dicom_read(struct net_conn *c, struct evbuffer *in)
{
	struct dicom_conn *dc = net_conn_data(c);

	/* (a handler that resumes reading, dicom_conn_hold, leaves what is
	 * buffered to this loop: read again from under it, the PDU being
	 * handled would be handled twice) */
	dc->reading++;
	read_pdus(dc, in);
	dc->reading--;
}

static void
read_pdus(struct dicom_conn *dc, struct evbuffer *in)
{
	const struct conf *conf = cf(dc);
	uint8_t hb[DUL_HEADER_LEN];
	struct dul_header h;
	struct dul_error e;
	size_t want;

	int done = 0;

	while (dc->sm.state != DUL_STA1 && !dc->held &&
	    evbuffer_get_length(in) >= DUL_HEADER_LEN) {
		/* what a peer that calls us may leave unread of our
		 * answers (limits.unread_answers) before its association
		 * stops being read: one that sends requests and never
		 * reads the responses made us queue them without bound.
		 * Reading resumes once they are all out. */
		if (!dc->a.requestor && net_conn_unsent(dc->c) >=
		    cf(dc)->limits.unread_answers) {
			dicom_conn_hold(dc, DICOM_HOLD_OUTPUT, 1);
			break;
		}
		if (dc->sm.state == DUL_STA13) {
			/* AA-6 ignores what still comes (the rest of PDUs
			 * on their way: not framed, dropped), but an
			 * A-ABORT ends it now (AA-2); so would ARTIM */
			static const uint8_t ab[6] = { DUL_ABORT, 0, 0, 0, 0,
			    4 };
			size_t len = evbuffer_get_length(in);
			const uint8_t *b = evbuffer_pullup(in, (ev_ssize_t)len);
			int aborted = memmem(b, len, ab, sizeof(ab)) != NULL;

			evbuffer_drain(in, len);
			if (aborted)
				net_conn_close(dc->c, "aborted by the peer "
				    "(Sta13)", 0);
			return;
		}
		evbuffer_copyout(in, hb, sizeof(hb));
		/* a P-DATA-TF of up to limits.max_pdu only where one may
		 * come (PS3.8 Evt10: Sta6, Sta7); elsewhere it is refused
		 * anyway, and a peer not yet associated made us hold that
		 * much before its A-ABORT */
		if (dul_header_decode(hb, &h, &e) < 0 ||
		    dul_header_check(&h, h.type == DUL_P_DATA_TF &&
		    (dc->sm.state == DUL_STA6 || dc->sm.state == DUL_STA7) ?
		    conf->limits.max_pdu : DICOM_ASSOC_PDU_MAX, &e) < 0) {
			evbuffer_drain(in, evbuffer_get_length(in));
			invalid(dc, &e);
			return;
		}
		want = DUL_HEADER_LEN + (size_t)h.length;
		if (evbuffer_get_length(in) < want)
			break;		/* the rest is on its way */
		pdu(dc, evbuffer_pullup(in, (ev_ssize_t)want), want);
		evbuffer_drain(in, want);
		done++;
	}
	pdu_deadline(dc, in, done);
}

void
dicom_conn_hold(struct dicom_conn *dc, unsigned why, int on)
{
	struct bufferevent *bev = net_conn_bev(dc->c);
	unsigned was = dc->held;

	dc->held = on ? dc->held | why : dc->held & ~why;
	if ((was != 0) == (dc->held != 0))
		return;
	log_debug("assoc-hold", "conn=%llu on=%d why=%s", cid(dc), on,
	    why == DICOM_HOLD_DISK ? "disk" : why == DICOM_HOLD_WINDOW ?
	    "window" : "output");
	if (on) {
		bufferevent_disable(bev, EV_READ);
		if (dc->pdu_timer != NULL)	/* waiting on us, not them */
			evtimer_del(dc->pdu_timer);
		dc->pdu_partial = 0;
		return;
	}
	bufferevent_enable(bev, EV_READ);
	if (!dc->reading)
		dicom_read(dc->c, bufferevent_get_input(bev));	/* what waited */
}

/* ---------------------------------------------------------------------- */

const struct dicom_pctx *
dicom_conn_pctx(const struct dicom_conn *dc, uint8_t id)
{
	for (unsigned i = 0; i < dc->a.npctx; i++)
		if (dc->a.pctx[i].id == id)
			return &dc->a.pctx[i];
	return NULL;
}

static int
dicom_open(struct net_conn *c)
{
	struct dicom_conn *dc = calloc(1, sizeof(*dc));

	if (dc == NULL)
		return -1;
	dc->c = c;
	net_conn_set_data(c, dc);
	dul_sm_init(&dc->sm);
	hold_one_pdu(dc);
	dc->pdu_timer = evtimer_new(net_server_base(net_conn_server(c)),
	    on_pdu_timer, dc);
	if (dc->pdu_timer == NULL)
		abort();
	net_timer_arm(dc->pdu_timer, cf(dc)->limits.artim_ms);
	step(dc, DUL_EVT5, NULL);	/* AE-5: start ARTIM, Sta2 */
	return 0;
}

static void
dicom_drain(struct net_conn *c)
{
	struct dicom_conn *dc = net_conn_data(c);

	/*
	 * Shutting down: before association, close now; an established
	 * association with nothing in flight is aborted now (A-ABORT,
	 * service-user: the peer knows at once, rather than at the
	 * grace's end); one with a message in flight is aborted when its
	 * response has gone (dicom_svc_done). Our own outbound ones end
	 * with their users.
	 */
	if (dc->sm.state == DUL_STA2)
		net_conn_close(c, "draining", 0);
	else if (dc->user == NULL && dc->sm.state == DUL_STA6 &&
	    (dc->svc == NULL || dicom_svc_idle(dc->svc)))
		dicom_abort(dc, "vnamigd is shutting down");
}

static void
dicom_free(struct net_conn *c)
{
	struct dicom_conn *dc = net_conn_data(c);

	if (dc == NULL)
		return;
	if (dc->counted)
		n_assoc--;
	if (dc->svc != NULL)
		dicom_svc_free(dc->svc);
	if (dc->pdu_timer != NULL)
		event_free(dc->pdu_timer);
	free(dc->a.pctx);
	free(dc->ac);
	free(dc->rq);
	free(dc->prop);
	dimse_asm_free(dc->as);
	free(dc);
}

static void
dicom_connected(struct net_conn *c)
{
	struct dicom_conn *dc = net_conn_data(c);

	step(dc, DUL_EVT2, NULL);	/* AE-2: send the A-ASSOCIATE-RQ */
	net_conn_set_timeout(c, cf(dc)->limits.dimse_ms);
}

static void
dicom_closed(struct net_conn *c, const char *why)
{
	struct dicom_conn *dc = net_conn_data(c);

	if (dc != NULL && dc->user != NULL && !dc->ended) {
		dul_sm_init(&dc->sm);	/* Evt17: nothing more to do */
		end_user(dc, 0, why ? why : "connection closed");
	}
}

/* add_role: an SCP/SCU role selection item for sop_class (SCU 0, SCP
 * 1: we take its C-STOREs), once per class. 0, or -1 when full. */
static int
add_role(struct dul_assoc *rq, const char *sop_class)
{
	for (unsigned r = 0; r < rq->n_role; r++)
		if (strcmp(rq->role[r].sop_class, sop_class) == 0)
			return 0;
	if (rq->n_role == DUL_MAX_ROLES)
		return -1;
	copy(rq->role[rq->n_role].sop_class,
	    sizeof(rq->role[rq->n_role].sop_class), sop_class);
	rq->role[rq->n_role].scu = 0;
	rq->role[rq->n_role].scp = 1;
	rq->n_role++;
	return 0;
}

struct dicom_conn *
dicom_connect(struct net_server *s, const struct conf *conf,
    const struct conf_peer *peer, const struct dicom_propose *prop,
    unsigned nprop, void *tls, const struct dicom_user *u, void *arg,
    char *err, size_t cap)
{
	struct dul_assoc *rq = &scratch_rq;
	struct dicom_conn *dc;
	struct dul_step st;
	size_t n;

	if (nprop == 0 || nprop > DICOM_MAX_PCTX) {
		snprintf(err, cap, "%u presentation contexts to propose "
		    "(1-%d)", nprop, DICOM_MAX_PCTX);
		return NULL;
	}
	dul_assoc_init(rq, DUL_ASSOCIATE_RQ);
	copy(rq->called_ae, sizeof(rq->called_ae), peer->ae_title);
	copy(rq->calling_ae, sizeof(rq->calling_ae), conf->node.ae_title);
	copy(rq->app_context, sizeof(rq->app_context),
	    DUL_APP_CONTEXT_DICOM);
	rq->max_length = conf->limits.max_pdu;
	if (conf->limits.async_window > 1) {
		/* we may pipeline up to this many; we perform one at a
		 * time of what the acceptor invokes on us */
		rq->has_async = 1;
		rq->async_invoked = (uint16_t)conf->limits.async_window;
		rq->async_performed = 1;
	}
	copy(rq->impl_class, sizeof(rq->impl_class),
	    DICOM_IMPLEMENTATION_CLASS_UID);
	copy(rq->impl_version, sizeof(rq->impl_version),
	    DICOM_IMPLEMENTATION_VERSION);
	for (unsigned i = 0; i < nprop; i++) {
		struct dul_pctx *pc = dul_assoc_add_pctx(rq,
		    (uint8_t)(2 * i + 1), 0, prop[i].abstract);

		for (unsigned k = 0; pc != NULL && k < prop[i].nts; k++)
			if (dul_assoc_add_ts(rq, pc, prop[i].ts[k]) < 0)
				pc = NULL;
		if (pc == NULL) {
			snprintf(err, cap, "cannot propose context %u (%s)",
			    i, prop[i].abstract);
			return NULL;
		}
		if (prop[i].scp_role && add_role(rq, prop[i].abstract) < 0) {
			snprintf(err, cap, "more than %d SOP classes with an "
			    "SCP role", DUL_MAX_ROLES);
			return NULL;
		}
	}
	if ((dc = calloc(1, sizeof(*dc))) == NULL)
		abort();
	n = dul_encode_assoc(rq, NULL, 0, NULL);
	if (n == 0 || (dc->rq = malloc(n)) == NULL ||
	    dul_encode_assoc(rq, dc->rq, n, NULL) != n) {
		snprintf(err, cap, "cannot encode the A-ASSOCIATE-RQ");
		free(dc->rq);
		free(dc);
		return NULL;
	}
	dc->rq_len = n;
	dc->user = u;
	dc->uarg = arg;
	if ((dc->prop = malloc(nprop * sizeof(*prop))) == NULL)
		abort();
	memcpy(dc->prop, prop, nprop * sizeof(*prop));
	dc->nprop = nprop;
	copy(dc->a.called, sizeof(dc->a.called), peer->ae_title);
	copy(dc->a.calling, sizeof(dc->a.calling), conf->node.ae_title);
	copy(dc->a.peer_name, sizeof(dc->a.peer_name), peer->name);
	dc->send_cap = peer->max_pdu;
	dc->a.requestor = 1;
	dul_sm_init(&dc->sm);
	dul_sm_step(&dc->sm, DUL_EVT1, NULL, &st);	/* AE-1: connect */
	dc->c = net_server_connect(s, &net_dicom_ops, peer->host, peer->port,
	    tls, dc, conf->limits.network_ms, err, cap);
	if (dc->c == NULL) {
		free(dc->prop);
		free(dc->rq);
		free(dc);
		return NULL;
	}
	net_conn_set_label(dc->c, peer->name);
	hold_one_pdu(dc);
	dc->pdu_timer = evtimer_new(net_server_base(s), on_pdu_timer, dc);
	if (dc->pdu_timer == NULL)
		abort();
	return dc;
}

void
dicom_release(struct dicom_conn *dc)
{
	if (dc->sm.state == DUL_STA6)
		step(dc, DUL_EVT11, NULL);
}

const struct dicom_pctx *
dicom_pctx_for(const struct dicom_conn *dc, const char *abstract,
    const char *ts)
{
	for (unsigned i = 0; i < dc->a.npctx; i++)
		if (strcmp(dc->a.pctx[i].abstract, abstract) == 0 &&
		    (ts == NULL || strcmp(dc->a.pctx[i].ts_uid, ts) == 0))
			return &dc->a.pctx[i];
	return NULL;
}

/* The PDV headers of one dicom_send_file_pdvs, freed with the last chain
 * that refers to them (and the sender's own reference). */
struct hdrs {
	size_t	refs;
	uint8_t	h[][DUL_PDATA_HEADER_LEN];
};

static struct hdrs *
hdrs_new(size_t n)
{
	struct hdrs *hs;

	if ((hs = malloc(sizeof(*hs) + n * sizeof(hs->h[0]))) == NULL)
		abort();
	hs->refs = 1;
	return hs;
}

static void
hdrs_unref(const void *data, size_t len, void *arg)
{
	struct hdrs *hs = arg;

	(void)data;
	(void)len;
	if (--hs->refs == 0)
		free(hs);
}

static void
hdrs_add(struct evbuffer *out, struct hdrs *hs, size_t i, const uint8_t *h)
{
	memcpy(hs->h[i], h, sizeof(hs->h[i]));
	hs->refs++;
	if (evbuffer_add_reference(out, hs->h[i], sizeof(hs->h[i]),
	    hdrs_unref, hs) < 0)
		abort();
}

/*
 * Datasets of up to SEND_COPY_MAX are read into memory when queued rather
 * than sent from the file with sendfile. libevent writes a sendfile chain
 * alone, one call per loop pass, so each PDV took a writev of its 6-byte
 * header and a sendfile of its data, each a pass of its own: 5,120 passes
 * for 40 MiB to a peer taking 16 KiB PDUs (storescp's default). From
 * memory a writev takes headers and data together, up to 256 KiB a call.
 * vnamig-send to storescp, 48 x 1 MiB: 50-62 ms of CPU with sendfile,
 * 25-30 ms read into memory; 1000 x 9 KiB: 82-90 ms, 57-74 ms. Bigger
 * ones stay with sendfile: the memory a queued instance holds stays
 * bounded, and so does the time a read blocks the loop when the bytes are
 * not in the page cache (spooled ones are, as a rule: they were written
 * moments before).
 */
#define SEND_COPY_MAX	(2u << 20)

/*
 * Of those, datasets of SEND_MAP_MIN and more are mapped (mmap) rather
 * than read: writev then copies the file's pages into the socket with no
 * copy of ours first. vnamigd relaying 40 x 1 MiB (contrib/bench/migrate,
 * large): 98-102 ms of its CPU mapped, 108-115 ms read, in alternating
 * runs. Safe because only the kernel touches the mapping: a page that
 * cannot be read (an I/O error, a file cut short) fails the writev with
 * EFAULT, a connection error, where a read of ours would have taken
 * SIGBUS. Not over TLS, where OpenSSL reads the bytes itself, and not
 * below SEND_MAP_MIN, where the mapping costs more than the copy.
 * (Bigger ones over TLS are mapped by libevent as before: read whole
 * instead, a 128 MiB dataset took 128 MiB of memory per instance queued.)
 */
#define SEND_MAP_MIN	(128u << 10)

static int
fs_flags(struct dicom_conn *dc, uint64_t len)
{
	/* (libevent cannot read 0 bytes into memory: its malloc of 0 is
	 * NULL) */
	if (len == 0 || len > SEND_COPY_MAX)
		return 0;
	if (len >= SEND_MAP_MIN &&
	    bufferevent_openssl_get_ssl(net_conn_bev(dc->c)) == NULL)
		return EVBUF_FS_DISABLE_SENDFILE;
	return EVBUF_FS_DISABLE_SENDFILE | EVBUF_FS_DISABLE_MMAP;
}

int
dicom_send_file_pdvs(struct dicom_conn *dc, uint8_t pcid, int fd,
    uint64_t off, uint64_t len)
{
	struct evbuffer *out = bufferevent_get_output(net_conn_bev(dc->c));
	static const uint8_t zero;
	struct evbuffer_file_segment *seg;
	uint32_t max = dicom_fragment_max(dc);
	uint64_t done = 0;
	struct dul_step st;
	struct hdrs *hs;
	size_t nh = 0;
	int fl, sfd = fd;

	if (dc->sm.state != DUL_STA6)
		return -1;
	fl = fs_flags(dc, len);
	if (!(fl & EVBUF_FS_DISABLE_SENDFILE)) {
		/* sendfile reads the descriptor when the chain goes out,
		 * which may be after the caller has closed its own (an
		 * A-ABORT's flush of what was queued): the segment gets one
		 * of its own, closed with it */
		if ((sfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
			return -1;
		fl |= EVBUF_FS_CLOSE_ON_FREE;
	}
	seg = evbuffer_file_segment_new(sfd, (ev_off_t)off, (ev_off_t)len, fl);
	if (seg == NULL) {
		if (sfd != fd)
			close(sfd);
		return -1;
	}
	/* every PDV's header in one block the buffer's chains refer to
	 * (see add_after_file): at most one PDV more than fragments, for a
	 * pad byte alone */
	hs = hdrs_new((size_t)(len / max) + 2);
	do {
		uint32_t n = len - done > max ? max : (uint32_t)(len - done);
		int last = done + n == len;
		/* A dataset is an even number of bytes (PS3.5 7.1.1); a
		 * deflated one of odd length gets its trailing zero byte
		 * (PS3.5 A.5) here, which receivers such as DCMTK need. */
		int pad = last && (len & 1);
		uint8_t h[DUL_PDATA_HEADER_LEN];

		if (max - n < (uint32_t)pad) {	/* no room: pad alone */
			pad = 0;
			last = 0;
		}
		dul_encode_pdata_header(h, pcid, 0, last, n + (uint32_t)pad);
		dul_sm_step(&dc->sm, DUL_EVT9, NULL, &st);	/* DT-1 */
		hdrs_add(out, hs, nh++, h);
		if (n > 0 && evbuffer_add_file_segment(out, seg,
		    (ev_off_t)done, (ev_off_t)n) < 0) {
			hdrs_unref(NULL, 0, hs);
			evbuffer_file_segment_free(seg);
			dc->file_tail = 1;
			return -1;
		}
		if (pad)
			evbuffer_add_reference(out, &zero, 1, NULL, NULL);
		done += n;
		if (done == len && !last) {	/* the pad byte's own PDV */
			dul_encode_pdata_header(h, pcid, 0, 1, 1);
			dul_sm_step(&dc->sm, DUL_EVT9, NULL, &st);
			hdrs_add(out, hs, nh++, h);
			evbuffer_add_reference(out, &zero, 1, NULL, NULL);
		}
	} while (done < len);
	hdrs_unref(NULL, 0, hs);		/* the chains hold theirs */
	evbuffer_file_segment_free(seg);	/* the buffer holds its refs */
	dc->file_tail = 1;
	return 0;
}

/* dicom_write: all written: a peer held for its unread answers is read
 * again. */
static void
dicom_write(struct net_conn *c)
{
	struct dicom_conn *dc = net_conn_data(c);

	if (dc != NULL && (dc->held & DICOM_HOLD_OUTPUT))
		dicom_conn_hold(dc, DICOM_HOLD_OUTPUT, 0);
}

const struct net_proto_ops net_dicom_ops = {
	.name = "dicom",
	.open = dicom_open,
	.read = dicom_read,
	.write = dicom_write,
	.drain = dicom_drain,
	.free = dicom_free,
	.connected = dicom_connected,
	.closed = dicom_closed,
};
