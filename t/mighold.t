#!/bin/sh
# mighold.t — a retrieve held back while its source is still setting up
# another of our associations (migration.retrieve_hold, src/mig/mig.c
# hold_back). DCMTK's dcmqrscp sets up each association in a process of
# its own under an exclusive lock of its index, which a running C-MOVE
# holds shared: a study whose association opened just after another's
# C-MOVE began waited for that C-MOVE to end before its first C-FIND was
# answered. t/fakesource.py --slow-first 2:S stands for that source: the
# second association that asks it anything waits S seconds before it
# answers. Two studies (1 series x 3 instances) in one batch, two at
# once, retrieved by C-MOVE into an export target; each case on a source,
# data dir and export of its own:
#
#   a  retrieve_hold 10s, the second association slow for 2 s: the first
#      study's C-MOVE reaches the source only after the slow association
#      has answered ("slow-first 2" before the first "move" in its log);
#      no mig-retrieve-hold line
#   b  retrieve_hold 500ms, slow for 3 s: the C-MOVE goes once the hold
#      is over, before the slow association answers, with a
#      mig-retrieve-hold line saying held_ms=500
#   c  retrieve_hold 0 (none), slow for 2 s: the C-MOVE goes at once,
#      before the slow association answers (what a and its check are
#      measured against)
#
# In every case both studies end done with their 6 instances migrated,
# the source logged no error, and vnamigd stops cleanly with no sanitizer
# report.
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
export LC_ALL=C
trap 'fake_stop; cleanup' EXIT
MIG_STOP=fake_stop

gen_studies "$T_DIR/gen" 2 1 3
ok $? "6 instances generated (2 studies x 1 series x 3)"

# run_case C HOLD SLOW: case C's source (--slow-first 2:SLOW, its log
# $T_DIR/fake-C.log) and vnamigd (retrieve_hold HOLD), one batch of both
# studies to its own export, waited for, then both stopped; the checks
# every case shares.
run_case() {
	rc_c=$1
	d_port=$(free_port)
	f_port=$(free_port)
	flog=$T_DIR/fake-$rc_c.log
	fake_start "$rc_c" "$f_port" FAKE --dest "VNAMIG=$d_port" \
	    --slow-first "2:$3"
	mkdir -p "$T_DIR/ex-$rc_c"
	conf=$T_DIR/vnamigd-$rc_c.yaml
	cat >"$conf" <<YAML
node: { ae_title: VNAMIG, data_dir: $T_DIR/var-$rc_c }
listen:
  dicom: { address: 127.0.0.1, port: $d_port }
  http:  { address: 127.0.0.1, port: 0 }
limits: { shutdown_grace: 5s, dimse_timeout: 20s }
storage: { min_free: 1MiB }
migration: { max_studies: 2, retrieve_hold: $2 }
peers:
  - { name: fake, ae_title: FAKE, host: 127.0.0.1, port: $f_port, role: source }
exports:
  - { name: disk, path: $T_DIR/ex-$rc_c }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
	mig_start mig_bail "$rc_c: retrieve_hold $2"
	submit "$rc_c: both studies from FAKE (retrieve_hold $2, the second association slow for $3 s)" \
	    "{\"source\":\"fake\",\"target\":\"disk\",\"study_instance_uids\":[\"$ROOT.1.1\",\"$ROOT.1.2\"]}"
	[ -n "$BID" ] || mig_bail "$rc_c: a batch"
	wait_batch "$BID" 60
	is "$BSTATE" done "$rc_c: batch $BID reaches done"
	report "$BID"
	is "$(rj "$BID" '[.summary.expected, .summary.migrated] | map(tostring) | join(" ")')" \
	    "6 6" "$rc_c: the report: 6 expected, 6 migrated"
	is "$(grep -c '^error' "$flog")" 0 "$rc_c: the source logged no error"
	is "$(grep -c '^slow-first 2$' "$flog")" 1 \
	    "$rc_c: the source's second association waited $3 s before answering"
	is "$(grep -c '^move STUDY 3 ' "$flog")" 2 \
	    "$rc_c: one study-level C-MOVE per study reached the source"
	# ORDER: "slow" when the slow association answered before the
	# first C-MOVE came, "move" when the C-MOVE came first
	ORDER=$(awk '/^slow-first / { print "slow"; exit }
	    /^move / { print "move"; exit }' "$flog")
	grep ' mig-retrieve-hold ' "$T_DIR/daemon.log" >"$T_DIR/hold-$rc_c"
	stop_daemon
	is "$DAEMON_RC" 0 "$rc_c: vnamigd stops cleanly"
	grep -En 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' \
	    "$T_DIR/daemon.log" >"$T_DIR/san-$rc_c.txt"
	is "$(($(wc -l <"$T_DIR/san-$rc_c.txt")))" 0 \
	    "$rc_c: no sanitizer report in vnamigd's log"
	fake_stop
}

run_case a 10s 2
is "$ORDER" slow \
    "a: the first C-MOVE reached the source after its slow association answered"
is "$(($(wc -l <"$T_DIR/hold-a")))" 0 \
    "a: no mig-retrieve-hold line (the hold ended with the answer)"

run_case b 500ms 3
is "$ORDER" move \
    "b: the C-MOVE went when retrieve_hold (500ms) was over, before the slow association answered"
is "$(($(wc -l <"$T_DIR/hold-b")))" 1 "b: one mig-retrieve-hold line"
like "$(cat "$T_DIR/hold-b")" ' peer=fake held_ms=500 why="another association to it has not answered yet; retrieving anyway"' \
    "b: it names the peer, the 500 ms held and why"

run_case c 0s 2
is "$ORDER" move \
    "c: without a hold the C-MOVE went before the slow association answered"

done_testing
