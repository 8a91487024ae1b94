/*
 * dicom_svc.h — between an established DICOM association (net_dicom.c:
 * Upper Layer, negotiation) and the DIMSE services on it (dicom_svc.c:
 * message assembly, C-ECHO, C-STORE into a sink).
 */
#ifndef VNAMIG_DICOM_SVC_H
#define VNAMIG_DICOM_SVC_H

#include <stdint.h>

#include "dimse/dimse_msg.h"
#include "dimse/ds_ts.h"
#include "dimse/ds_write.h"
#include "dul/dul_pdu.h"

#define DICOM_MAX_PCTX			128
#define DICOM_SEND_FRAGMENT_MAX		(256u * 1024)	/* our PDVs, at most */
#define DICOM_IMPLEMENTATION_CLASS_UID	DS_IMPLEMENTATION_CLASS_UID
#define DICOM_IMPLEMENTATION_VERSION	DS_IMPLEMENTATION_VERSION

/* An accepted presentation context. */
struct dicom_pctx {
	uint8_t			 id;
	const struct ds_ts	*ts;
	char			 abstract[DUL_UID_MAX + 1];
	char			 ts_uid[DUL_UID_MAX + 1];
	unsigned		 scp_role:1;	/* requestor: the acceptor took
						 * our SCP role (PS3.7 D.3.3.4):
						 * it may C-STORE to us here */
};

/* What was negotiated. */
struct dicom_assoc {
	char			 calling[DUL_AE_MAX + 1];
	char			 called[DUL_AE_MAX + 1];
	char			 peer_name[65];	/* the configured peer */
	uint32_t		 peer_max_pdu;	/* 0: no limit */
	int			 requestor;	/* we asked for it */
	unsigned		 window;	/* operations the requestor may
						 * have outstanding (PS3.7
						 * D.3.3.3); 1 without the
						 * item */
	unsigned		 npctx;
	struct dicom_pctx	*pctx;		/* npctx, allocated to fit */
};

struct dicom_conn;	/* net_dicom.c */
struct dicom_svc;	/* dicom_svc.c */
struct net_conn;

/* ---- net_dicom.c, for the services ---- */

const struct dicom_assoc *dicom_conn_assoc(const struct dicom_conn *dc);
/* Count a DIMSE operation (we answered as SCP, or got the answer as SCU)
 * in the daemon's metrics, when it has any. */
void dicom_count_dimse(struct dicom_conn *dc, uint16_t command, int scp,
    uint16_t status);
const struct dicom_pctx *dicom_conn_pctx(const struct dicom_conn *dc,
    uint8_t id);
struct net_conn *dicom_conn_net(struct dicom_conn *dc);
/* dicom_send_pdv: one PDV in its own P-DATA-TF (n at most
 * dicom_fragment_max()). 0, or -1 when the association cannot send. */
int dicom_send_pdv(struct dicom_conn *dc, uint8_t pcid, int command,
    int last, const uint8_t *p, uint32_t n);
uint32_t dicom_fragment_max(const struct dicom_conn *dc);
/* dicom_conn_hold: stop (on 1) or resume (on 0) reading the association
 * for a reason: a sink behind on the disk, or the asynchronous
 * operations window full; reading resumes when no reason is left, and
 * input already buffered is dealt with then (by the read loop itself when
 * called from a handler within it). */
#define DICOM_HOLD_DISK		1u
#define DICOM_HOLD_WINDOW	2u
#define DICOM_HOLD_OUTPUT	4u	/* (net_dicom.c: answers it has not
					 * read piled up) */
void dicom_conn_hold(struct dicom_conn *dc, unsigned why, int on);
/* dicom_abort: A-ABORT (service-user) the association, logging why. */
void dicom_abort(struct dicom_conn *dc, const char *why);
/* dicom_svc_done: the services owe no more responses (a release that
 * waited for them may complete). */
void dicom_svc_done(struct dicom_conn *dc);

/* ---- the requestor side (net_dicom.c), for SCUs ---- */

struct conf;
struct conf_peer;
struct net_server;
struct dimse_asm_event;

/* A presentation context to propose: one abstract syntax and its
 * transfer syntaxes in order of preference; scp_role asks for the SCP
 * role too (an SCP/SCU role selection item: SCU 0, SCP 1), so that the
 * peer may C-STORE to us on it (C-GET sub-operations). */
struct dicom_propose {
	const char	*abstract;
	const char	*ts[4];
	unsigned	 nts;
	unsigned	 scp_role:1;
};

/* What the user of an outbound association is told. */
struct dicom_user {
	/* Accepted: dicom_conn_assoc() says which contexts. */
	void	(*established)(struct dicom_conn *dc, void *arg);
	/* A message (or part of one) from the peer: a response; r says
	 * which part (DIMSE_ASM_COMMAND, _DATA, _DATA_END). */
	void	(*message)(struct dicom_conn *dc, void *arg,
		    enum dimse_asm_result r, const struct dimse_asm_event *ev);
	/* The end, once: released (ok 1), or rejected, aborted, the
	 * connection lost (ok 0, why says which). */
	void	(*ended)(struct dicom_conn *dc, void *arg, int ok,
		    const char *why);
	/* Where C-STOREs from the peer on a context with our SCP role go
	 * (NULL: DATA_DIR/incoming); requests reach the services
	 * (dicom_svc.c), not message(). */
	const char *store_dir;
};

/*
 * dicom_connect: ask peer for an association (our node.ae_title calling
 * its ae_title) proposing the nprop contexts (IDs 1, 3, 5, ...), over
 * TLS when tls (SSL_CTX *) is given. prop is copied; the strings it
 * points to must stay valid until the A-ASSOCIATE-AC has come. Returns
 * the association on its way (the user hears of it through u), or NULL
 * with err.
 */
struct dicom_conn *dicom_connect(struct net_server *s, const struct conf *conf,
    const struct conf_peer *peer, const struct dicom_propose *prop,
    unsigned nprop, void *tls, const struct dicom_user *u, void *arg,
    char *err, size_t cap);
/* dicom_release: A-RELEASE-RQ; the user hears "ended" when released. */
void dicom_release(struct dicom_conn *dc);
/* dicom_pctx_for: the accepted context for abstract syntax and transfer
 * syntax ts (NULL: any), or NULL. */
const struct dicom_pctx *dicom_pctx_for(const struct dicom_conn *dc,
    const char *abstract, const char *ts);
/* dicom_send_file_pdvs: the bytes [off, off + len) of the open file fd
 * as the dataset of a message on context pcid, in PDVs of at most
 * dicom_fragment_max(), queued: read into memory up to 2 MiB, else as
 * file segments (sendfile where the kernel allows; see net_dicom.c; the
 * fd is not closed). An odd length gets a trailing zero byte (PS3.5 A.5:
 * a deflated dataset's pad). 0, or -1. */
int dicom_send_file_pdvs(struct dicom_conn *dc, uint8_t pcid, int fd,
    uint64_t off, uint64_t len);

/* ---- dicom_svc.c, for net_dicom.c ---- */

/* dicom_svc_supports: whether an abstract syntax is served here. */
int dicom_svc_supports(const char *abstract_syntax);
struct dicom_svc *dicom_svc_new(struct dicom_conn *dc);
/* dicom_svc_pdv: one PDV of an accepted context. 0, or -1 when the
 * association was aborted because of it. */
int dicom_svc_pdv(struct dicom_svc *s, const struct dul_pdv *v);
/* dicom_svc_event: the same, for a message already assembled (the
 * requestor's assembler takes every PDV and hands requests here). */
int dicom_svc_event(struct dicom_svc *s, enum dimse_asm_result r,
    const struct dimse_asm_event *ev);
/* dicom_svc_set_dir: where C-STOREs are written (default
 * DATA_DIR/incoming); dir is copied. */
void dicom_svc_set_dir(struct dicom_svc *s, const char *dir);
/* dicom_svc_stored_total: instances stored by this process, on every
 * association. */
uint64_t dicom_svc_stored_total(void);
/* dicom_svc_idle: no message in progress, no response owed. */
int dicom_svc_idle(const struct dicom_svc *s);
/* dicom_svc_midway: part of a message has come, not all of it. */
int dicom_svc_midway(const struct dicom_svc *s);
/* dicom_svc_closing: the association is ending: drop partial work. */
void dicom_svc_closing(struct dicom_svc *s);
void dicom_svc_free(struct dicom_svc *s);

#endif
