#!/bin/sh
# migcancel.t — cancelling a batch ends every study of it, whatever holds
# the engine (src/mig/mig.c: schedule, batch_cancel_studies, batch_apply),
# and leaves the batch's record with its counts and end, as a batch that
# is done has them. t/fakesource.py as the source (FAKEY, 0.5 s before
# each sub-operation: a study's retrieve takes a few seconds), DCMTK's
# storescp as the target, migration.max_studies 1.
#
#   a  cancel while the node is paused: batch A (studies 1-3) runs study 1;
#      the node is paused, then A cancelled. Studies 2 and 3 end cancelled
#      at once (a node pause used to hold the cancel too: they stayed
#      queued); study 1, its retrieve under way, is cancelled when it
#      ends. vnamigd is killed (-9) at once, while study 1 is still being
#      retrieved: after the start the cancelled batch is taken up again
#      (it was left for ever with study 1 "retrieving", as a batch that
#      ended before the start), study 1 ends cancelled with the node still
#      paused, and the record says when the batch ended and its counts.
#   b  cancel while the source is paused: batch B (studies 4-6), one study
#      done, the source paused, B cancelled: GET /api/batches/B and the
#      list give the counts the report gives (they kept those of the
#      submission: 0 done, 0 instances).
#   c  4 pauses of the node at once, then 4 resumes, three rounds, then
#      the same for the source: one of each 4 is taken (200, its audit
#      leaf), the others told it is already so (409); each was taken
#      before, as the state changed only once a change was durable.
#
# Every report adds up; vnamigd stops cleanly.
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
export LC_ALL=C
SCP_PID=

stop_all() {
	fake_stop
	qp_stop "$SCP_PID"
	SCP_PID=
}
trap 'stop_all; stop_peers; cleanup' EXIT
MIG_STOP=stop_all

# batch NAME STUDY...: POST /api/batches from FAKEY to the storescp.
batch() {
	b_name=$1
	shift
	b_l=$(printf "$ROOT.1.%s\n" "$@" | jq -R . | jq -sc .)
	submit "$b_name" "{\"source\":\"fy\",\"target\":\"scp\",\"study_instance_uids\":$b_l}"
}

# adds_up ID NAME: batch ID's report accounts for the instances it
# expects (those its studies' queries listed: a study cancelled before
# its query lists none) once each, adds up to 100%, and every row is
# migrated or pending (a study cancelled keeps what it had sent; the rest
# is pending).
adds_up() {
	report "$1"
	au_n=$(rj "$1" .summary.expected)
	is "$(rj "$1" '[.summary.accounted_percent,
	    (.summary | .migrated + .skipped_present + .quarantined + .failed + .pending),
	    (.instances | length), ([.instances[].sop_instance_uid] | unique | length),
	    ([.instances[] | select(.outcome != "migrated" and .outcome != "pending")] | length)]
	    | map(tostring) | join(" ")')" "100 $au_n $au_n $au_n 0" \
	    "$2: the report accounts for its $au_n instances once each, 100%, every row migrated or pending"
}

# states ID: the states of batch ID's studies, in study order.
states() {
	report "$1"
	rj "$1" '[.studies[] | .state] | join(" ")'
}

# study_state ID N: the state of study N of batch ID.
study_state() {
	report "$1"
	rj "$1" ".studies[] | select(.study_uid == \"$ROOT.1.$2\") | .state"
}

gen_studies "$T_DIR/gen" 6 1 3
ok $? "18 instances generated (studies 1-6 x 1 series x 3)"
py=$(free_port)
d_port=$(free_port)
scp_port=$(free_port)
qp_port_free "$py" || mig_bail "FAKEY's port is free"
fake_start Y "$py" FAKEY --slow 0.5
pass "fakesource FAKEY (0.5 s a sub-operation) runs on $py"
scp_target

conf=$T_DIR/vnamigd.yaml
cat >"$conf" <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/var
listen:
  dicom: { address: 127.0.0.1, port: $d_port }
  http:  { address: 127.0.0.1, port: 0 }
limits:
  shutdown_grace: 5s
migration:
  max_studies: 1
  retry_backoff: 200ms
  retry_backoff_max: 1s
peers:
  - { name: fy, ae_title: FAKEY, host: 127.0.0.1, port: $py, role: source, retrieve: get }
  - { name: scp, ae_title: STORESCP, host: 127.0.0.1, port: $scp_port, role: target, verify: none }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
mig_start mig_bail

# ---- a: cancel while the node is paused, then kill -9 ----
batch "a: studies 1-3" 1 2 3
b_a=$BID
wait_until 20 sh -c "grep -q '^substore ' '$T_DIR/fake-Y.log'" ||
    fail "a: study 1's retrieve begins"
api POST /api/node/pause '{"reason":"test"}'
is "$code" 200 "a: the node paused while study 1 is retrieved"
api POST "/api/batches/$b_a/cancel" '{"reason":"test"}'
is "$code/$(j .batch.state)" 200/cancelled "a: batch $b_a cancelled (200)"
a_ok() {
	[ "$(study_state "$b_a" 2)/$(study_state "$b_a" 3)" = cancelled/cancelled ]
}
wait_until 3 a_ok
ok $? "a: studies 2 and 3 end cancelled within 3 s, the node paused"
s1=$(study_state "$b_a" 1)
case $s1 in
cancelled | done | failed) fail "a: study 1, its retrieve under way, has not ended ($s1)" ;;
*) pass "a: study 1, its retrieve under way, has not ended ($s1)" ;;
esac
stop_daemon KILL
pass "a: vnamigd killed (-9) while study 1 is retrieved"
start_daemon "$conf" || mig_bail "vnamigd starts again"
base="http://127.0.0.1:$HTTP_PORT"
api GET /api/node
is "$(j '(.node.paused // .paused) | if . then "yes" else "no" end')" yes \
    "a: after the start the node is still paused"
a_end() { [ "$(states "$b_a")" = "cancelled cancelled cancelled" ]; }
wait_until 5 a_end
ok $? "a: after the start study 1 ends cancelled too (node still paused)"
a_fin() {
	api GET "/api/batches/$b_a"
	[ "$(j '.batch.finished // empty')" != "" ]
}
wait_until 5 a_fin
ok $? "a: batch $b_a's record says when it ended"
is "$(j .batch.state)/$(j .batch.counts.studies)/$(j .batch.counts.pending)" \
    "cancelled/3/$(rj "$b_a" .summary.pending)" \
    "a: its counts are the report's (pending instances: those never retrieved)"
adds_up "$b_a" a
grep -q " mig-batch-pending " "$T_DIR/daemon.log"
ok $((!$?)) "a: no mig-batch-pending error for a cancelled batch's pending instances"
api POST /api/node/resume '{}'
is "$code" 200 "a: the node resumed"

# ---- b: cancel while the source is paused ----
batch "b: studies 4-6" 4 5 6
b_b=$BID
b_one() { [ "$(study_state "$b_b" 4)" = done ]; }
wait_until 30 b_one
ok $? "b: study 4 done"
api POST /api/sources/fy/pause '{"reason":"test"}'
is "$code" 200 "b: source fy paused"
api POST "/api/batches/$b_b/cancel" '{"reason":"test"}'
is "$code" 200 "b: batch $b_b cancelled (200)"
b_end() {
	api GET "/api/batches/$b_b"
	[ "$(j '.batch.finished // empty')" != "" ]
}
wait_until 10 b_end
ok $? "b: batch $b_b's record says when it ended"
report "$b_b"
want="$(rj "$b_b" .summary.migrated)/$(rj "$b_b" .summary.studies.done)"
is "$(j .batch.counts.migrated)/$(j .batch.counts.done)" "$want" \
    "b: GET /api/batches/$b_b counts what the report does (migrated/done: $want)"
api GET "/api/batches?state=cancelled"
is "$(j "[.batches[] | select(.id == $b_b) | \"\(.counts.migrated)/\(.counts.done)\"] | .[0]")" \
    "$want" "b: so does the list of cancelled batches"
adds_up "$b_b" b
api POST /api/sources/fy/resume '{}'
is "$code" 200 "b: source fy resumed"

# ---- c: pauses and resumes at once ----
# at_once PATH: 4 POSTs to PATH at once; their statuses, sorted and
# counted ("200:1 409:3 ").
at_once() {
	ao_pids=
	for i in 1 2 3 4; do
		curl -s -m 10 -o /dev/null -w '%{http_code}\n' -X POST \
		    -H "Authorization: Bearer $TOK" \
		    -H 'Content-Type: application/json' --data-binary '{}' \
		    "$base$1" >"$T_DIR/once.$i" &
		ao_pids="$ao_pids $!"
	done
	# shellcheck disable=SC2086
	wait $ao_pids
	cat "$T_DIR"/once.* | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }'
}
for r in 1 2 3; do
	is "$(at_once /api/node/pause)" "200:1 409:3 " \
	    "c: 4 node pauses at once: one taken, three told it is paused (round $r)"
	is "$(at_once /api/node/resume)" "200:1 409:3 " \
	    "c: 4 node resumes at once: one taken (round $r)"
done
is "$(at_once /api/sources/fy/pause)" "200:1 409:3 " "c: 4 pauses of source fy at once: one taken"
is "$(at_once /api/sources/fy/resume)" "200:1 409:3 " "c: and 4 resumes"
api GET /api/node
is "$(j '.node.paused')" false "c: the node runs at the end"
curl -s -m 10 -H "Authorization: Bearer $TOK" -o "$T_DIR/audit.jsonl" "$base/api/audit/export"
is "$(jq -r 'select(.event == "migration.pause" and .object.scope == "node") | .event' "$T_DIR/audit.jsonl" | wc -l | tr -d ' ')" 4 \
    "c: one migration.pause leaf for each pause taken (a's and c's 3)"

stop_daemon
ok $? "vnamigd stops cleanly"
done_testing
