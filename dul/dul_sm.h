/*
 * dul_sm.h — the DICOM Upper Layer association state machine: PS3.8 9.2,
 * the state transition table (Table 9-10) with its states Sta1-Sta13,
 * events Evt1-Evt19 and actions AE-1..8, DT-1..2, AR-1..10, AA-1..8 (Tables
 * 9-6 to 9-9). One implementation for both the association-requestor and
 * the association-acceptor; release collisions (Sta9-Sta12) included.
 *
 * Pure: dul_sm_step() takes the current state and an event and says what
 * to do, as a struct dul_step: the PDU to send, the ARTIM timer to start or
 * stop, the transport to open or close, the indication or confirmation to
 * give the local user, and the next state. The caller (src/net) performs
 * these effects in the order send, indicate, ARTIM, close. Nothing here
 * does I/O, so every (state, event) pair is testable from a table.
 */
#ifndef VNAMIG_DUL_SM_H
#define VNAMIG_DUL_SM_H

#include <stdint.h>

enum dul_state {
	DUL_STA1 = 1,	/* idle */
	DUL_STA2,	/* transport open, awaiting A-ASSOCIATE-RQ PDU */
	DUL_STA3,	/* awaiting local A-ASSOCIATE response primitive */
	DUL_STA4,	/* awaiting transport connection to open */
	DUL_STA5,	/* awaiting A-ASSOCIATE-AC or -RJ PDU */
	DUL_STA6,	/* association established, ready for data */
	DUL_STA7,	/* awaiting A-RELEASE-RP PDU */
	DUL_STA8,	/* awaiting local A-RELEASE response primitive */
	DUL_STA9,	/* collision, requestor: awaiting A-RELEASE response */
	DUL_STA10,	/* collision, acceptor: awaiting A-RELEASE-RP PDU */
	DUL_STA11,	/* collision, requestor: awaiting A-RELEASE-RP PDU */
	DUL_STA12,	/* collision, acceptor: awaiting A-RELEASE response */
	DUL_STA13,	/* awaiting the transport to close */
};
#define DUL_NSTATES	13

enum dul_event {
	DUL_EVT1 = 1,	/* A-ASSOCIATE request (local user) */
	DUL_EVT2,	/* transport connect confirmation */
	DUL_EVT3,	/* A-ASSOCIATE-AC PDU received */
	DUL_EVT4,	/* A-ASSOCIATE-RJ PDU received */
	DUL_EVT5,	/* transport connection indication (accepted) */
	DUL_EVT6,	/* A-ASSOCIATE-RQ PDU received */
	DUL_EVT7,	/* A-ASSOCIATE response primitive: accept */
	DUL_EVT8,	/* A-ASSOCIATE response primitive: reject */
	DUL_EVT9,	/* P-DATA request primitive */
	DUL_EVT10,	/* P-DATA-TF PDU received */
	DUL_EVT11,	/* A-RELEASE request primitive */
	DUL_EVT12,	/* A-RELEASE-RQ PDU received */
	DUL_EVT13,	/* A-RELEASE-RP PDU received */
	DUL_EVT14,	/* A-RELEASE response primitive */
	DUL_EVT15,	/* A-ABORT request primitive */
	DUL_EVT16,	/* A-ABORT PDU received */
	DUL_EVT17,	/* transport connection closed */
	DUL_EVT18,	/* ARTIM timer expired */
	DUL_EVT19,	/* unrecognized or invalid PDU received */
};
#define DUL_NEVENTS	19

/* The actions of Tables 9-6 to 9-9, plus DUL_ACT_NONE for a pair the
 * table leaves empty: a local primitive in a state where it is not
 * allowed (the caller's bug, refused), or a transport event that cannot
 * happen there. */
enum dul_act {
	DUL_ACT_NONE = 0,
	DUL_AE1, DUL_AE2, DUL_AE3, DUL_AE4, DUL_AE5, DUL_AE6, DUL_AE7, DUL_AE8,
	DUL_DT1, DUL_DT2,
	DUL_AR1, DUL_AR2, DUL_AR3, DUL_AR4, DUL_AR5, DUL_AR6, DUL_AR7, DUL_AR8,
	DUL_AR9, DUL_AR10,
	DUL_AA1, DUL_AA2, DUL_AA3, DUL_AA4, DUL_AA5, DUL_AA6, DUL_AA7, DUL_AA8,
};

/* What to send. */
enum dul_send {
	DUL_SEND_NONE = 0,
	DUL_SEND_ASSOC_RQ,	/* the local user's A-ASSOCIATE-RQ */
	DUL_SEND_ASSOC_AC,	/* the local user's A-ASSOCIATE-AC */
	DUL_SEND_ASSOC_RJ,	/* an A-ASSOCIATE-RJ (the user's, or AE-6's) */
	DUL_SEND_PDATA,		/* the P-DATA-TF the user asked to send */
	DUL_SEND_RELEASE_RQ,
	DUL_SEND_RELEASE_RP,
	DUL_SEND_ABORT,		/* A-ABORT with step.abort_source/reason */
};

/* What to tell the local user. */
enum dul_ind {
	DUL_IND_NONE = 0,
	DUL_IND_ASSOC_RQ,	/* A-ASSOCIATE indication: decide (Evt7/8) */
	DUL_IND_ASSOC_AC,	/* A-ASSOCIATE confirmation: accepted */
	DUL_IND_ASSOC_RJ,	/* A-ASSOCIATE confirmation: rejected */
	DUL_IND_PDATA,		/* P-DATA indication: the PDVs received */
	DUL_IND_RELEASE_RQ,	/* A-RELEASE indication: answer with Evt14 */
	DUL_IND_RELEASE_RP,	/* A-RELEASE confirmation: released */
	DUL_IND_ABORT,		/* A-ABORT indication (the peer's user) */
	DUL_IND_P_ABORT,	/* A-P-ABORT indication (provider) */
};

enum dul_timer { DUL_TIMER_KEEP = 0, DUL_TIMER_START, DUL_TIMER_STOP };

/* The association's memory beyond its state. */
struct dul_sm {
	enum dul_state	 state;
	unsigned	 requestor:1;	/* we asked for the association */
};

/*
 * What an event needs to say beyond its number: for Evt6, whether the
 * A-ASSOCIATE-RQ is acceptable to the provider (AE-6: its protocol
 * version supported; decoding found no reason to reject), else the
 * A-ASSOCIATE-RJ to send; for Evt16, the abort's source; for Evt19 and
 * every AA-1/AA-8 it triggers, the A-ABORT reason (PS3.8 Table 9-26).
 */
struct dul_evt_info {
	unsigned	 acceptable:1;		/* Evt6 */
	uint8_t		 rj_result, rj_source, rj_reason;	/* Evt6 not */
	uint8_t		 abort_source;		/* Evt16: 0 user, 2 provider */
	uint8_t		 abort_reason;		/* Evt19: why it is invalid */
};

struct dul_step {
	enum dul_act	 act;
	enum dul_state	 from, to;
	enum dul_send	 send;
	enum dul_ind	 indicate;
	enum dul_timer	 artim;
	unsigned	 connect:1;	/* AE-1: open the transport */
	unsigned	 close:1;	/* close the transport */
	unsigned	 refused:1;	/* DUL_ACT_NONE: nothing done */
	uint8_t		 abort_source;	/* with DUL_SEND_ABORT: 0 or 2 */
	uint8_t		 abort_reason;
	uint8_t		 rj_result, rj_source, rj_reason; /* AE-6 reject */
};

/* dul_sm_init: Sta1; requestor is set by Evt1, cleared by Evt5. */
void dul_sm_init(struct dul_sm *sm);

/*
 * dul_sm_step: apply event ev (with info, NULL when it carries nothing)
 * to sm: fills *st with the action and its effects and moves sm to the
 * next state. A pair the table leaves empty changes nothing and sets
 * st->refused (st->act is DUL_ACT_NONE). Returns st->act.
 */
enum dul_act dul_sm_step(struct dul_sm *sm, enum dul_event ev,
    const struct dul_evt_info *info, struct dul_step *st);

/* dul_sm_action: the table itself: the action for (state, event), or
 * DUL_ACT_NONE when the pair is empty. */
enum dul_act dul_sm_action(enum dul_state s, enum dul_event ev);

/* Names for logs: "Sta6", "Evt10", "AA-8". */
const char *dul_state_name(enum dul_state s);
const char *dul_event_name(enum dul_event ev);
const char *dul_act_name(enum dul_act a);

#endif
