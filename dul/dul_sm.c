/*
 * dul_sm.c — see dul_sm.h. The table is PS3.8 Table 9-10, one row per
 * event, one column per state; the actions are Tables 9-6 to 9-9.
 */
#include "config.h"

#include <string.h>

#include "dul/dul_pdu.h"
#include "dul/dul_sm.h"

#define X	DUL_ACT_NONE
#define S	DUL_NSTATES

/* Columns: Sta1 ... Sta13. */
static const enum dul_act table[DUL_NEVENTS][S] = {
	/* Evt1  A-ASSOCIATE request */
	{ DUL_AE1, X, X, X, X, X, X, X, X, X, X, X, X },
	/* Evt2  transport connect confirmation */
	{ X, X, X, DUL_AE2, X, X, X, X, X, X, X, X, X },
	/* Evt3  A-ASSOCIATE-AC PDU */
	{ X, DUL_AA1, DUL_AA8, X, DUL_AE3, DUL_AA8, DUL_AA8, DUL_AA8,
	  DUL_AA8, DUL_AA8, DUL_AA8, DUL_AA8, DUL_AA6 },
	/* Evt4  A-ASSOCIATE-RJ PDU */
	{ X, DUL_AA1, DUL_AA8, X, DUL_AE4, DUL_AA8, DUL_AA8, DUL_AA8,
	  DUL_AA8, DUL_AA8, DUL_AA8, DUL_AA8, DUL_AA6 },
	/* Evt5  transport connection indication */
	{ DUL_AE5, X, X, X, X, X, X, X, X, X, X, X, X },
	/* Evt6  A-ASSOCIATE-RQ PDU */
	{ X, DUL_AE6, DUL_AA8, X, DUL_AA8, DUL_AA8, DUL_AA8, DUL_AA8,
	  DUL_AA8, DUL_AA8, DUL_AA8, DUL_AA8, DUL_AA7 },
	/* Evt7  A-ASSOCIATE response: accept */
	{ X, X, DUL_AE7, X, X, X, X, X, X, X, X, X, X },
	/* Evt8  A-ASSOCIATE response: reject */
	{ X, X, DUL_AE8, X, X, X, X, X, X, X, X, X, X },
	/* Evt9  P-DATA request */
	{ X, X, X, X, X, DUL_DT1, X, DUL_AR7, X, X, X, X, X },
	/* Evt10 P-DATA-TF PDU */
	{ X, DUL_AA1, DUL_AA8, X, DUL_AA8, DUL_DT2, DUL_AR6, DUL_AA8,
	  DUL_AA8, DUL_AA8, DUL_AA8, DUL_AA8, DUL_AA6 },
	/* Evt11 A-RELEASE request */
	{ X, X, X, X, X, DUL_AR1, X, X, X, X, X, X, X },
	/* Evt12 A-RELEASE-RQ PDU */
	{ X, DUL_AA1, DUL_AA8, X, DUL_AA8, DUL_AR2, DUL_AR8, DUL_AA8,
	  DUL_AA8, DUL_AA8, DUL_AA8, DUL_AA8, DUL_AA6 },
	/* Evt13 A-RELEASE-RP PDU */
	{ X, DUL_AA1, DUL_AA8, X, DUL_AA8, DUL_AA8, DUL_AR3, DUL_AA8,
	  DUL_AA8, DUL_AR10, DUL_AR3, DUL_AA8, DUL_AA6 },
	/* Evt14 A-RELEASE response */
	{ X, X, X, X, X, X, X, DUL_AR4, DUL_AR9, X, X, DUL_AR4, X },
	/* Evt15 A-ABORT request */
	{ X, X, DUL_AA1, DUL_AA2, DUL_AA1, DUL_AA1, DUL_AA1, DUL_AA1,
	  DUL_AA1, DUL_AA1, DUL_AA1, DUL_AA1, X },
	/* Evt16 A-ABORT PDU */
	{ X, DUL_AA2, DUL_AA3, X, DUL_AA3, DUL_AA3, DUL_AA3, DUL_AA3,
	  DUL_AA3, DUL_AA3, DUL_AA3, DUL_AA3, DUL_AA2 },
	/* Evt17 transport closed */
	{ X, DUL_AA5, DUL_AA4, DUL_AA4, DUL_AA4, DUL_AA4, DUL_AA4, DUL_AA4,
	  DUL_AA4, DUL_AA4, DUL_AA4, DUL_AA4, DUL_AR5 },
	/* Evt18 ARTIM expired */
	{ X, DUL_AA2, X, X, X, X, X, X, X, X, X, X, DUL_AA2 },
	/* Evt19 unrecognized or invalid PDU */
	{ X, DUL_AA1, DUL_AA8, X, DUL_AA8, DUL_AA8, DUL_AA8, DUL_AA8,
	  DUL_AA8, DUL_AA8, DUL_AA8, DUL_AA8, DUL_AA7 },
};

#undef X
#undef S

void
dul_sm_init(struct dul_sm *sm)
{
	memset(sm, 0, sizeof(*sm));
	sm->state = DUL_STA1;
}

enum dul_act
dul_sm_action(enum dul_state s, enum dul_event ev)
{
	if (s < DUL_STA1 || s > DUL_STA13 || ev < DUL_EVT1 || ev > DUL_EVT19)
		return DUL_ACT_NONE;
	return table[ev - 1][s - 1];
}

/* The reason of a provider's A-ABORT for a PDU that arrived where the
 * table does not expect it, or was invalid (Evt19: the decoder's). */
static uint8_t
provider_reason(enum dul_event ev, const struct dul_evt_info *in)
{
	if (ev == DUL_EVT19)
		return in != NULL ? in->abort_reason : DUL_ABORT_NOT_SPECIFIED;
	return DUL_ABORT_UNEXPECTED_PDU;
}

static void
send_abort(struct dul_step *st, enum dul_event ev,
    const struct dul_evt_info *in)
{
	st->send = DUL_SEND_ABORT;
	if (ev == DUL_EVT15) {
		st->abort_source = DUL_ABORT_SOURCE_USER;
		st->abort_reason = 0;
	} else {
		st->abort_source = DUL_ABORT_SOURCE_PROVIDER;
		st->abort_reason = provider_reason(ev, in);
	}
}

enum dul_act
dul_sm_step(struct dul_sm *sm, enum dul_event ev,
    const struct dul_evt_info *in, struct dul_step *st)
{
	enum dul_act a = dul_sm_action(sm->state, ev);
	enum dul_state to = sm->state;

	memset(st, 0, sizeof(*st));
	st->from = sm->state;
	st->act = a;
	switch (a) {
	case DUL_ACT_NONE:
		st->refused = 1;
		break;
	case DUL_AE1:		/* transport connect */
		sm->requestor = 1;
		st->connect = 1;
		to = DUL_STA4;
		break;
	case DUL_AE2:		/* send A-ASSOCIATE-RQ */
		st->send = DUL_SEND_ASSOC_RQ;
		to = DUL_STA5;
		break;
	case DUL_AE3:		/* confirmation: accepted */
		st->indicate = DUL_IND_ASSOC_AC;
		to = DUL_STA6;
		break;
	case DUL_AE4:		/* confirmation: rejected; close */
		st->indicate = DUL_IND_ASSOC_RJ;
		st->close = 1;
		to = DUL_STA1;
		break;
	case DUL_AE5:		/* connection accepted: start ARTIM */
		sm->requestor = 0;
		st->artim = DUL_TIMER_START;
		to = DUL_STA2;
		break;
	case DUL_AE6:		/* stop ARTIM; indication, or reject */
		if (in != NULL && in->acceptable) {
			st->artim = DUL_TIMER_STOP;
			st->indicate = DUL_IND_ASSOC_RQ;
			to = DUL_STA3;
		} else {
			st->send = DUL_SEND_ASSOC_RJ;
			st->artim = DUL_TIMER_START;	/* stopped, restarted */
			if (in != NULL) {
				st->rj_result = in->rj_result;
				st->rj_source = in->rj_source;
				st->rj_reason = in->rj_reason;
			}
			to = DUL_STA13;
		}
		break;
	case DUL_AE7:		/* send A-ASSOCIATE-AC */
		st->send = DUL_SEND_ASSOC_AC;
		to = DUL_STA6;
		break;
	case DUL_AE8:		/* send A-ASSOCIATE-RJ, start ARTIM */
		st->send = DUL_SEND_ASSOC_RJ;
		st->artim = DUL_TIMER_START;
		to = DUL_STA13;
		break;
	case DUL_DT1:
		st->send = DUL_SEND_PDATA;
		to = DUL_STA6;
		break;
	case DUL_DT2:
		st->indicate = DUL_IND_PDATA;
		to = DUL_STA6;
		break;
	case DUL_AR1:
		st->send = DUL_SEND_RELEASE_RQ;
		to = DUL_STA7;
		break;
	case DUL_AR2:
		st->indicate = DUL_IND_RELEASE_RQ;
		to = DUL_STA8;
		break;
	case DUL_AR3:		/* confirmation: released; close */
		st->indicate = DUL_IND_RELEASE_RP;
		st->close = 1;
		to = DUL_STA1;
		break;
	case DUL_AR4:		/* send A-RELEASE-RP, start ARTIM */
		st->send = DUL_SEND_RELEASE_RP;
		st->artim = DUL_TIMER_START;
		to = DUL_STA13;
		break;
	case DUL_AR5:		/* the transport closed: stop ARTIM */
		st->artim = DUL_TIMER_STOP;
		to = DUL_STA1;
		break;
	case DUL_AR6:
		st->indicate = DUL_IND_PDATA;
		to = DUL_STA7;
		break;
	case DUL_AR7:
		st->send = DUL_SEND_PDATA;
		to = DUL_STA8;
		break;
	case DUL_AR8:		/* release collision */
		st->indicate = DUL_IND_RELEASE_RQ;
		to = sm->requestor ? DUL_STA9 : DUL_STA10;
		break;
	case DUL_AR9:
		st->send = DUL_SEND_RELEASE_RP;
		to = DUL_STA11;
		break;
	case DUL_AR10:
		st->indicate = DUL_IND_RELEASE_RP;
		to = DUL_STA12;
		break;
	case DUL_AA1:		/* send A-ABORT, (re)start ARTIM */
		send_abort(st, ev, in);
		st->artim = DUL_TIMER_START;
		to = DUL_STA13;
		break;
	case DUL_AA2:		/* stop ARTIM, close */
		st->artim = DUL_TIMER_STOP;
		st->close = 1;
		to = DUL_STA1;
		break;
	case DUL_AA3:		/* the peer aborted: indication, close */
		st->indicate = in != NULL && in->abort_source ==
		    DUL_ABORT_SOURCE_USER ? DUL_IND_ABORT : DUL_IND_P_ABORT;
		st->close = 1;
		to = DUL_STA1;
		break;
	case DUL_AA4:		/* the transport went: A-P-ABORT */
		st->indicate = DUL_IND_P_ABORT;
		to = DUL_STA1;
		break;
	case DUL_AA5:
		st->artim = DUL_TIMER_STOP;
		to = DUL_STA1;
		break;
	case DUL_AA6:		/* ignore the PDU */
		to = DUL_STA13;
		break;
	case DUL_AA7:		/* send A-ABORT */
		send_abort(st, ev, in);
		to = DUL_STA13;
		break;
	case DUL_AA8:		/* A-ABORT, A-P-ABORT indication, ARTIM */
		send_abort(st, ev, in);
		st->indicate = DUL_IND_P_ABORT;
		st->artim = DUL_TIMER_START;
		to = DUL_STA13;
		break;
	}
	st->to = to;
	sm->state = to;
	return a;
}

const char *
dul_state_name(enum dul_state s)
{
	static const char *const n[] = { "Sta?", "Sta1", "Sta2", "Sta3",
	    "Sta4", "Sta5", "Sta6", "Sta7", "Sta8", "Sta9", "Sta10", "Sta11",
	    "Sta12", "Sta13" };

	return s >= DUL_STA1 && s <= DUL_STA13 ? n[s] : n[0];
}

const char *
dul_event_name(enum dul_event ev)
{
	static const char *const n[] = { "Evt?", "Evt1", "Evt2", "Evt3",
	    "Evt4", "Evt5", "Evt6", "Evt7", "Evt8", "Evt9", "Evt10", "Evt11",
	    "Evt12", "Evt13", "Evt14", "Evt15", "Evt16", "Evt17", "Evt18",
	    "Evt19" };

	return ev >= DUL_EVT1 && ev <= DUL_EVT19 ? n[ev] : n[0];
}

const char *
dul_act_name(enum dul_act a)
{
	static const char *const n[] = { "none",
	    "AE-1", "AE-2", "AE-3", "AE-4", "AE-5", "AE-6", "AE-7", "AE-8",
	    "DT-1", "DT-2",
	    "AR-1", "AR-2", "AR-3", "AR-4", "AR-5", "AR-6", "AR-7", "AR-8",
	    "AR-9", "AR-10",
	    "AA-1", "AA-2", "AA-3", "AA-4", "AA-5", "AA-6", "AA-7", "AA-8" };

	return a <= DUL_AA8 ? n[a] : n[0];
}
