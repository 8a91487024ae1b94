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
#      mig-retrieve-hold line saying how long it was held (held_ms)
#   c  retrieve_hold 0 (none), slow for 2 s: the C-MOVE goes at once,
#      before the slow association answers (what a and its check are
#      measured against)
#   d  retrieve_hold 10s, retrieve: get, the source slow (1 s) to accept
#      an association for a C-GET: each study's C-GET goes on an
#      association of its own, opened for it (a scan's has no storage
#      contexts), both opening at once; neither waits for the other's
#      (held, so quiet): no mig-retrieve-hold line. They held each other
#      until the limit before.
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

gen_studies "$T_DIR/gen" 4 1 3
ok $? "12 instances generated (4 studies x 1 series x 3)"

# run_case C HOLD SLOW [RETRIEVE N]: case C's source (--slow-first
# 2:SLOW, or when SLOW is - --slow-get-assoc 1; its log $T_DIR/fake-C.log)
# and vnamigd (retrieve_hold HOLD, the source's retrieve RETRIEVE: move by
# default), one batch of studies 1 to N (default 2), N at once, to its
# own export, waited for, then both stopped; the checks every case
# shares.
run_case() {
	rc_c=$1
	rc_r=${4:-move}
	rc_n=${5:-2}
	d_port=$(free_port)
	f_port=$(free_port)
	flog=$T_DIR/fake-$rc_c.log
	if [ "$3" = - ]; then
		fake_start "$rc_c" "$f_port" FAKE --dest "VNAMIG=$d_port" \
		    --slow-get-assoc 1
	else
		fake_start "$rc_c" "$f_port" FAKE --dest "VNAMIG=$d_port" \
		    --slow-first "2:$3"
	fi
	rc_u=$(seq 1 "$rc_n" | sed "s/.*/\"$ROOT.1.&\"/" | paste -sd, -)
	mkdir -p "$T_DIR/ex-$rc_c"
	conf=$T_DIR/vnamigd-$rc_c.yaml
	cat >"$conf" <<YAML
node: { ae_title: VNAMIG, data_dir: $T_DIR/var-$rc_c }
listen:
  dicom: { address: 127.0.0.1, port: $d_port }
  http:  { address: 127.0.0.1, port: 0 }
limits: { shutdown_grace: 5s, dimse_timeout: 20s }
storage: { min_free: 1MiB }
migration: { max_studies: $rc_n, retrieve_hold: $2 }
peers:
  - { name: fake, ae_title: FAKE, host: 127.0.0.1, port: $f_port, role: source, retrieve: $rc_r }
exports:
  - { name: disk, path: $T_DIR/ex-$rc_c }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
	mig_start mig_bail "$rc_c: retrieve_hold $2"
	submit "$rc_c: $rc_n studies from FAKE by C-$(echo "$rc_r" | tr a-z A-Z) (retrieve_hold $2, the second association slow for $3 s)" \
	    "{\"source\":\"fake\",\"target\":\"disk\",\"study_instance_uids\":[$rc_u]}"
	[ -n "$BID" ] || mig_bail "$rc_c: a batch"
	wait_batch "$BID" 60
	is "$BSTATE" done "$rc_c: batch $BID reaches done"
	report "$BID"
	is "$(rj "$BID" '[.summary.expected, .summary.migrated] | map(tostring) | join(" ")')" \
	    "$((rc_n * 3)) $((rc_n * 3))" "$rc_c: the report: $((rc_n * 3)) expected, $((rc_n * 3)) migrated"
	is "$(grep -c '^error' "$flog")" 0 "$rc_c: the source logged no error"
	is "$(grep -c '^slow-first 2$' "$flog")" "$([ "$3" = - ] && echo 0 || echo 1)" \
	    "$rc_c: the source's second association waited $3 s before answering"
	is "$(grep -c "^$rc_r STUDY 3 " "$flog")" "$rc_n" \
	    "$rc_c: one study-level C-$(echo "$rc_r" | tr a-z A-Z) per study reached the source"
	# ORDER: "slow" when the slow association answered before the
	# first retrieve came, "move" when the retrieve came first
	ORDER=$(awk '/^slow-first / { print "slow"; exit }
	    /^(move|get) / { print "move"; exit }' "$flog")
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
like "$(cat "$T_DIR/hold-b")" ' peer=fake held_ms=(5[0-9][0-9]|[67][0-9][0-9]) why="another association to it has not answered yet; retrieving anyway"' \
    "b: it names the peer, the time held (500 ms, within the 250 ms tick) and why"

run_case c 0s 2
is "$ORDER" move \
    "c: without a hold the C-MOVE went before the slow association answered"

run_case d 10s - get 2
is "$(($(wc -l <"$T_DIR/hold-d")))" 0 \
    "d: no mig-retrieve-hold line (the C-GETs on new associations did not hold each other)"

done_testing
