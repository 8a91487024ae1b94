/*
 * dicom_svc.h — between an established DICOM association (net_dicom.c:
 * Upper Layer, negotiation) and the DIMSE services on it (dicom_svc.c:
 * message assembly, C-ECHO, C-STORE into a sink).
 */
#ifndef VNAMIG_DICOM_SVC_H
#define VNAMIG_DICOM_SVC_H

#include <stdint.h>

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
};

/* What was negotiated. */
struct dicom_assoc {
	char			 calling[DUL_AE_MAX + 1];
	char			 called[DUL_AE_MAX + 1];
	char			 peer_name[65];	/* the configured peer */
	uint32_t		 peer_max_pdu;	/* 0: no limit */
	unsigned		 npctx;
	struct dicom_pctx	*pctx;		/* npctx, allocated to fit */
};

struct dicom_conn;	/* net_dicom.c */
struct dicom_svc;	/* dicom_svc.c */
struct net_conn;

/* ---- net_dicom.c, for the services ---- */

const struct dicom_assoc *dicom_conn_assoc(const struct dicom_conn *dc);
const struct dicom_pctx *dicom_conn_pctx(const struct dicom_conn *dc,
    uint8_t id);
struct net_conn *dicom_conn_net(struct dicom_conn *dc);
/* dicom_send_pdv: one PDV in its own P-DATA-TF (n at most
 * dicom_fragment_max()). 0, or -1 when the association cannot send. */
int dicom_send_pdv(struct dicom_conn *dc, uint8_t pcid, int command,
    int last, const uint8_t *p, uint32_t n);
uint32_t dicom_fragment_max(const struct dicom_conn *dc);
/* dicom_abort: A-ABORT (service-user) the association, logging why. */
void dicom_abort(struct dicom_conn *dc, const char *why);
/* dicom_svc_done: the services owe no more responses (a release that
 * waited for them may complete). */
void dicom_svc_done(struct dicom_conn *dc);

/* ---- dicom_svc.c, for net_dicom.c ---- */

/* dicom_svc_supports: whether an abstract syntax is served here. */
int dicom_svc_supports(const char *abstract_syntax);
struct dicom_svc *dicom_svc_new(struct dicom_conn *dc);
/* dicom_svc_pdv: one PDV of an accepted context. 0, or -1 when the
 * association was aborted because of it. */
int dicom_svc_pdv(struct dicom_svc *s, const struct dul_pdv *v);
/* dicom_svc_idle: no message in progress, no response owed. */
int dicom_svc_idle(const struct dicom_svc *s);
/* dicom_svc_closing: the association is ending: drop partial work. */
void dicom_svc_closing(struct dicom_svc *s);
void dicom_svc_free(struct dicom_svc *s);

#endif
