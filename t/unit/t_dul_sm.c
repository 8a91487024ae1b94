/*
 * t_dul_sm.c — the Upper Layer state machine against PS3.8 Table 9-10:
 * every (state, event) pair, 13 x 19, with the action, its effects and
 * the next state written out below as text, independently of the table
 * in dul_sm.c; then whole associations (acceptor, requestor, release
 * collisions on both sides) and the hostile sequences of TESTING.md.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dul/dul_pdu.h"
#include "dul/dul_sm.h"
#include "t/unit/tap.h"

/*
 * One line per non-empty pair: "StaN EvtM ACTION effects -> StaK", the
 * effects being what the action text of Tables 9-6..9-9 says: send:X,
 * ind:X, artim:start|stop, connect, close. Every pair not listed must be
 * empty (refused, nothing done).
 */
static const char *const expect[] = {
	"Sta1 Evt1 AE-1 connect -> Sta4",
	"Sta4 Evt2 AE-2 send:rq -> Sta5",
	"Sta5 Evt3 AE-3 ind:ac -> Sta6",
	"Sta5 Evt4 AE-4 ind:rj close -> Sta1",
	"Sta1 Evt5 AE-5 artim:start -> Sta2",
	"Sta2 Evt6 AE-6 artim:stop ind:rq -> Sta3",	/* acceptable */
	"Sta3 Evt7 AE-7 send:ac -> Sta6",
	"Sta3 Evt8 AE-8 send:rj artim:start -> Sta13",
	"Sta6 Evt9 DT-1 send:pdata -> Sta6",
	"Sta8 Evt9 AR-7 send:pdata -> Sta8",
	"Sta6 Evt10 DT-2 ind:pdata -> Sta6",
	"Sta7 Evt10 AR-6 ind:pdata -> Sta7",
	"Sta6 Evt11 AR-1 send:release-rq -> Sta7",
	"Sta6 Evt12 AR-2 ind:release-rq -> Sta8",
	"Sta7 Evt12 AR-8 ind:release-rq -> Sta10",	/* acceptor */
	"Sta7 Evt13 AR-3 ind:release-rp close -> Sta1",
	"Sta10 Evt13 AR-10 ind:release-rp -> Sta12",
	"Sta11 Evt13 AR-3 ind:release-rp close -> Sta1",
	"Sta8 Evt14 AR-4 send:release-rp artim:start -> Sta13",
	"Sta9 Evt14 AR-9 send:release-rp -> Sta11",
	"Sta12 Evt14 AR-4 send:release-rp artim:start -> Sta13",
	"Sta4 Evt15 AA-2 artim:stop close -> Sta1",
	"Sta2 Evt16 AA-2 artim:stop close -> Sta1",
	"Sta13 Evt16 AA-2 artim:stop close -> Sta1",
	"Sta2 Evt17 AA-5 artim:stop -> Sta1",
	"Sta13 Evt17 AR-5 artim:stop -> Sta1",
	"Sta2 Evt18 AA-2 artim:stop close -> Sta1",
	"Sta13 Evt18 AA-2 artim:stop close -> Sta1",
	"Sta13 Evt3 AA-6 -> Sta13",
	"Sta13 Evt4 AA-6 -> Sta13",
	"Sta13 Evt10 AA-6 -> Sta13",
	"Sta13 Evt12 AA-6 -> Sta13",
	"Sta13 Evt13 AA-6 -> Sta13",
	"Sta13 Evt6 AA-7 send:abort -> Sta13",
	"Sta13 Evt19 AA-7 send:abort -> Sta13",
	/* Sta2: a PDU other than an A-ASSOCIATE-RQ */
	"Sta2 Evt3 AA-1 send:abort artim:start -> Sta13",
	"Sta2 Evt4 AA-1 send:abort artim:start -> Sta13",
	"Sta2 Evt10 AA-1 send:abort artim:start -> Sta13",
	"Sta2 Evt12 AA-1 send:abort artim:start -> Sta13",
	"Sta2 Evt13 AA-1 send:abort artim:start -> Sta13",
	"Sta2 Evt19 AA-1 send:abort artim:start -> Sta13",
	NULL
};

/* Rows filled by a rule rather than one line each: A-ABORT request
 * (AA-1 in Sta3 and Sta5-12), A-ABORT PDU (AA-3), transport closed
 * (AA-4 in Sta3-12), and the unexpected PDUs of Sta3 and Sta5-12
 * (AA-8), less the pairs listed above. */
static int
in_rule(int s, int ev, char *buf, size_t cap)
{
	int est = s == 3 || (s >= 5 && s <= 12);

	if (ev == 15 && est)
		snprintf(buf, cap, "Sta%d Evt15 AA-1 send:abort artim:start "
		    "-> Sta13", s);
	else if (ev == 16 && est)
		snprintf(buf, cap, "Sta%d Evt16 AA-3 ind:p-abort close -> "
		    "Sta1", s);
	else if (ev == 17 && (est || s == 4))
		snprintf(buf, cap, "Sta%d Evt17 AA-4 ind:p-abort -> Sta1", s);
	else if ((ev == 3 || ev == 4 || ev == 6 || ev == 10 || ev == 12 ||
	    ev == 13 || ev == 19) && est)
		snprintf(buf, cap, "Sta%d Evt%d AA-8 send:abort ind:p-abort "
		    "artim:start -> Sta13", s, ev);
	else
		return 0;
	return 1;
}

static const char *const send_name[] = { "", "rq", "ac", "rj", "pdata",
	"release-rq", "release-rp", "abort" };
static const char *const ind_name[] = { "", "rq", "ac", "rj", "pdata",
	"release-rq", "release-rp", "abort", "p-abort" };

static void
describe(const struct dul_step *st, int s, int ev, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "Sta%d Evt%d %s", s, ev,
	    dul_act_name(st->act));

	if (st->connect)
		n += snprintf(buf + n, cap - (size_t)n, " connect");
	if (st->send)
		n += snprintf(buf + n, cap - (size_t)n, " send:%s",
		    send_name[st->send]);
	if (st->artim == DUL_TIMER_STOP && st->indicate)
		n += snprintf(buf + n, cap - (size_t)n, " artim:stop");
	if (st->indicate)
		n += snprintf(buf + n, cap - (size_t)n, " ind:%s",
		    ind_name[st->indicate]);
	if (st->artim == DUL_TIMER_START)
		n += snprintf(buf + n, cap - (size_t)n, " artim:start");
	if (st->artim == DUL_TIMER_STOP && !st->indicate)
		n += snprintf(buf + n, cap - (size_t)n, " artim:stop");
	if (st->close)
		n += snprintf(buf + n, cap - (size_t)n, " close");
	snprintf(buf + n, cap - (size_t)n, " -> %s", dul_state_name(st->to));
}

static void
test_every_pair(void)
{
	int listed = 0, empty = 0, bad = 0;

	for (int s = 1; s <= DUL_NSTATES; s++)
		for (int ev = 1; ev <= DUL_NEVENTS; ev++) {
			struct dul_sm sm;
			struct dul_step st;
			struct dul_evt_info in = { .acceptable = 1,
			    .abort_source = 2 };
			char got[160], want[160] = "";
			char pre[40];
			int found = 0;

			dul_sm_init(&sm);
			sm.state = (enum dul_state)s;
			dul_sm_step(&sm, (enum dul_event)ev, &in, &st);
			snprintf(pre, sizeof(pre), "Sta%d Evt%d ", s, ev);
			for (int i = 0; expect[i] != NULL; i++)
				if (strncmp(expect[i], pre, strlen(pre)) == 0) {
					snprintf(want, sizeof(want), "%s",
					    expect[i]);
					found = 1;
				}
			if (!found)
				found = in_rule(s, ev, want, sizeof(want));
			if (!found) {
				empty++;
				if (!st.refused || (int)sm.state != s ||
				    st.send || st.indicate || st.close ||
				    st.connect || st.artim) {
					bad++;
					ok(0, "Sta%d Evt%d: empty in the table, "
					    "but %s was done", s, ev,
					    dul_act_name(st.act));
				}
				continue;
			}
			listed++;
			describe(&st, s, ev, got, sizeof(got));
			if (strcmp(got, want) != 0) {
				bad++;
				ok(0, "%s (got: %s)", want, got);
			}
		}
	ok(bad == 0, "all %d pairs as PS3.8 Table 9-10: %d actions, %d "
	    "empty and refused", DUL_NSTATES * DUL_NEVENTS, listed, empty);
	is_int(listed + empty, 13 * 19, "every pair was checked");
}

/* run: apply events in order from Sta1; returns the final state and
 * leaves the last step in *last. */
static enum dul_state
run(struct dul_sm *sm, const int *evs, struct dul_step *last,
    const struct dul_evt_info *in)
{
	dul_sm_init(sm);
	for (int i = 0; evs[i] != 0; i++)
		dul_sm_step(sm, (enum dul_event)evs[i], in, last);
	return sm->state;
}

static void
test_associations(void)
{
	struct dul_sm sm;
	struct dul_step st;
	struct dul_evt_info ok_in = { .acceptable = 1 };

	/* acceptor: connection, RQ, accept, data, peer releases, close */
	static const int acc[] = { 5, 6, 7, 10, 10, 9, 12, 14, 17, 0 };
	is_int(run(&sm, acc, &st, &ok_in), DUL_STA1,
	    "acceptor: RQ, accept, data both ways, peer releases: Sta1");
	ok(!sm.requestor, "  the acceptor is not the requestor");

	/* requestor: connect, RQ sent, AC, data, we release */
	static const int req[] = { 1, 2, 3, 9, 10, 11, 10, 13, 0 };
	is_int(run(&sm, req, &st, &ok_in), DUL_STA1,
	    "requestor: connect, AC, data, release (data still arriving "
	    "in Sta7 via AR-6): Sta1");
	ok(st.close && st.indicate == DUL_IND_RELEASE_RP,
	    "  A-RELEASE-RP closes with a release confirmation");

	/* release collision, requestor side: Sta7 -> Sta9 -> Sta11 -> 1 */
	static const int col_req[] = { 1, 2, 3, 11, 12, 0 };
	is_int(run(&sm, col_req, &st, &ok_in), DUL_STA9,
	    "collision as requestor: A-RELEASE-RQ while in Sta7: Sta9");
	dul_sm_step(&sm, DUL_EVT14, NULL, &st);
	ok(sm.state == DUL_STA11 && st.send == DUL_SEND_RELEASE_RP,
	    "  our A-RELEASE response sends A-RELEASE-RP: Sta11");
	dul_sm_step(&sm, DUL_EVT13, NULL, &st);
	ok(sm.state == DUL_STA1 && st.close, "  their RP closes: Sta1");

	/* release collision, acceptor side: Sta7 -> 10 -> 12 -> 13 */
	static const int col_acc[] = { 5, 6, 7, 11, 12, 0 };
	is_int(run(&sm, col_acc, &st, &ok_in), DUL_STA10,
	    "collision as acceptor: Sta10");
	dul_sm_step(&sm, DUL_EVT13, NULL, &st);
	is_int(sm.state, DUL_STA12, "  their RP: release confirmation, "
	    "Sta12");
	dul_sm_step(&sm, DUL_EVT14, NULL, &st);
	ok(sm.state == DUL_STA13 && st.send == DUL_SEND_RELEASE_RP &&
	    st.artim == DUL_TIMER_START,
	    "  our RP, then wait for the close under ARTIM: Sta13");
	dul_sm_step(&sm, DUL_EVT17, NULL, &st);
	is_int(sm.state, DUL_STA1, "  the peer closes: Sta1");
}

static void
test_hostile(void)
{
	struct dul_sm sm;
	struct dul_step st;
	struct dul_evt_info ok_in = { .acceptable = 1 };
	struct dul_evt_info rj = { .acceptable = 0, .rj_result = 1,
	    .rj_source = 2, .rj_reason = 2 };
	struct dul_evt_info bad = { .abort_reason = DUL_ABORT_INVALID_PARAM };

	/* a second A-ASSOCIATE-RQ after establishment: AA-8 */
	static const int second[] = { 5, 6, 7, 6, 0 };
	run(&sm, second, &st, &ok_in);
	ok(st.act == DUL_AA8 && st.send == DUL_SEND_ABORT &&
	    st.abort_source == 2 && st.abort_reason == 2 &&
	    st.indicate == DUL_IND_P_ABORT && sm.state == DUL_STA13,
	    "second A-ASSOCIATE-RQ when established: AA-8, A-ABORT 2/2 "
	    "(unexpected PDU)");

	/* P-DATA before association: AA-1 with an A-ABORT */
	static const int early[] = { 5, 10, 0 };
	run(&sm, early, &st, NULL);
	ok(st.act == DUL_AA1 && st.abort_source == 2 &&
	    st.abort_reason == 2 && sm.state == DUL_STA13,
	    "P-DATA-TF before the A-ASSOCIATE-RQ: AA-1, A-ABORT 2/2");

	/* P-DATA after the peer's A-RELEASE-RQ: AA-8 */
	static const int late[] = { 5, 6, 7, 12, 10, 0 };
	run(&sm, late, &st, &ok_in);
	ok(st.act == DUL_AA8 && sm.state == DUL_STA13,
	    "P-DATA-TF after the peer's A-RELEASE-RQ: AA-8");

	/* an invalid PDU keeps the decoder's reason */
	static const int inval[] = { 5, 6, 7, 0 };
	run(&sm, inval, &st, &ok_in);
	dul_sm_step(&sm, DUL_EVT19, &bad, &st);
	ok(st.act == DUL_AA8 && st.abort_reason == DUL_ABORT_INVALID_PARAM,
	    "invalid PDU when established: AA-8 with the decoder's reason "
	    "(6)");

	/* a silent connection: ARTIM closes it */
	static const int silent[] = { 5, 18, 0 };
	run(&sm, silent, &st, NULL);
	ok(st.act == DUL_AA2 && st.close && sm.state == DUL_STA1,
	    "silent connection: ARTIM expiry closes it (AA-2)");

	/* an RQ the provider cannot accept: RJ from AE-6 */
	static const int unacc[] = { 5, 6, 0 };
	run(&sm, unacc, &st, &rj);
	ok(st.act == DUL_AE6 && st.send == DUL_SEND_ASSOC_RJ &&
	    st.rj_result == 1 && st.rj_source == 2 && st.rj_reason == 2 &&
	    st.artim == DUL_TIMER_START && sm.state == DUL_STA13,
	    "unsupported protocol version: AE-6 sends RJ 1/2/2, ARTIM, "
	    "Sta13");

	/* the peer's user aborts: A-ABORT indication, not A-P-ABORT */
	static const int uab[] = { 5, 6, 7, 0 };
	struct dul_evt_info user = { .abort_source = 0 };

	run(&sm, uab, &st, &ok_in);
	dul_sm_step(&sm, DUL_EVT16, &user, &st);
	ok(st.act == DUL_AA3 && st.indicate == DUL_IND_ABORT && st.close,
	    "the peer user's A-ABORT: A-ABORT indication, close");

	/* our abort request carries the service-user source */
	run(&sm, uab, &st, &ok_in);
	dul_sm_step(&sm, DUL_EVT15, NULL, &st);
	ok(st.act == DUL_AA1 && st.abort_source == 0,
	    "our A-ABORT request: A-ABORT from the service-user (0)");

	/* a local primitive out of place changes nothing */
	run(&sm, uab, &st, &ok_in);
	dul_sm_step(&sm, DUL_EVT7, NULL, &st);
	ok(st.refused && sm.state == DUL_STA6,
	    "an A-ASSOCIATE response when established: refused, Sta6 kept");
}

int
main(void)
{
	test_every_pair();
	test_associations();
	test_hostile();
	is_str(dul_act_name(DUL_AR10), "AR-10", "action names");
	is_str(dul_state_name(DUL_STA13), "Sta13", "state names");
	is_str(dul_event_name(DUL_EVT19), "Evt19", "event names");
	return done_testing();
}
