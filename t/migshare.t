#!/bin/sh
# migshare.t — two batches of one study, across a restart: the spool's
# copies of the source's instances are shared by every batch that still
# needs them (src/mig/mig.c: sop_wanted, release_all).
#
# Batch B sends study 2 (3 instances, from t/fakesource.py FAKEB, 0.2 s a
# sub-operation) to VNA2, verified by read-back at dataset level: VNA2
# (t/faketarget.py) keeps the instances re-encoded (other bytes, the same
# dataset), so only the source's copies in the spool can prove them.
# The node is paused while B sends; B's study is durable in "verifying";
# vnamigd is killed (-9) and started again. Batch A (priority 9) then
# sends the same study to VNA (verify: counts) and ends first. A's end
# used to release every copy of the study's instances (B's study, not yet
# read after the start, was not asked), and B's read-back then found no
# source copy to compare with: all 3 quarantined verify_mismatch, the
# target's copies good. Now both batches end done, every instance
# migrated, B's at level dataset.
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
export LC_ALL=C

PIDS=
stop_all() {
	for p in $PIDS; do
		qp_stop "$p"
	done
	PIDS=
}
trap 'stop_all; stop_peers; cleanup' EXIT
MIG_STOP=stop_all

gen_studies "$T_DIR/gen" 2 1 3
ok $? "6 instances generated (studies 1-2 x 1 series x 3)"
d_port=$(free_port)
ps=$(free_port)
p2=$(free_port)
p1=$(free_port)
"$PY" "$top_srcdir/t/fakesource.py" "$ps" FAKEB "$T_DIR/fake.log" \
    --load "$T_DIR/gen" --slow 0.2 </dev/null >"$T_DIR/fake.err" 2>&1 &
PIDS="$PIDS $!"
qp_wait "$!" 10 echoscu -aet VNAMIG -aec FAKEB 127.0.0.1 "$ps" ||
    mig_bail "fakesource FAKEB runs"
"$PY" "$top_srcdir/t/faketarget.py" "$p2" VNA2 "$T_DIR/tgt2.log" \
    --dir "$T_DIR/vna2" --reencode .3.2.1.1 --reencode .3.2.1.2 \
    --reencode .3.2.1.3 --accept-delay 1.0 </dev/null >"$T_DIR/tgt2.err" 2>&1 &
PIDS="$PIDS $!"
qp_wait "$!" 10 echoscu -aet VNAMIG -aec VNA2 127.0.0.1 "$p2" ||
    mig_bail "faketarget VNA2 runs"
"$PY" "$top_srcdir/t/faketarget.py" "$p1" VNA "$T_DIR/tgt1.log" \
    --dir "$T_DIR/vna" </dev/null >"$T_DIR/tgt1.err" 2>&1 &
PIDS="$PIDS $!"
qp_wait "$!" 10 echoscu -aet VNAMIG -aec VNA 127.0.0.1 "$p1" ||
    mig_bail "faketarget VNA runs"
pass "FAKEB ($ps), VNA2 ($p2: keeps study 2 re-encoded), VNA ($p1) run"

conf=$T_DIR/vnamigd.yaml
cat >"$conf" <<YAML
node: { ae_title: VNAMIG, data_dir: $T_DIR/var }
listen:
  dicom: { address: 127.0.0.1, port: $d_port }
  http:  { address: 127.0.0.1, port: 0 }
limits: { shutdown_grace: 5s, dimse_timeout: 10s }
storage: { min_free: 1MiB }
migration: { max_studies: 1, retry_backoff: 200ms, retry_backoff_max: 1s }
peers:
  - { name: src, ae_title: FAKEB, host: 127.0.0.1, port: $ps, role: source, retrieve: get }
  - { name: vna2, ae_title: VNA2, host: 127.0.0.1, port: $p2, role: target, verify: readback, verify_level: dataset, retrieve: get, max_associations: 1 }
  - { name: vna, ae_title: VNA, host: 127.0.0.1, port: $p1, role: target, verify: counts, max_associations: 1 }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
mig_start mig_bail

submit "B: study 2 to VNA2 (read-back, dataset)" \
    "{\"source\":\"src\",\"target\":\"vna2\",\"study_instance_uids\":[\"$ROOT.1.2\"]}"
B=$BID
sending() {
	api GET "/api/batches/$B/report"
	[ "$(j '.studies[0].state')" = sending ]
}
wait_until 20 sending
ok $? "B: its study is being sent"
api POST /api/node/pause '{"reason":"test"}'
is "$code" 200 "the node paused"
verifying() {
	api GET "/api/batches/$B/report"
	[ "$(j '.studies[0].state')" = verifying ]
}
wait_until 10 verifying
ok $? "B: its study is durable in verifying (the read-back waits: the node is paused)"
stop_daemon KILL
pass "vnamigd killed (-9)"
start_daemon "$conf" || mig_bail "vnamigd starts again"
base="http://127.0.0.1:$HTTP_PORT"
submit "A: study 2 to VNA (counts), priority 9" \
    "{\"source\":\"src\",\"target\":\"vna\",\"priority\":9,\"study_instance_uids\":[\"$ROOT.1.2\"]}"
A=$BID
api POST /api/node/resume '{}'
is "$code" 200 "the node resumed"
wait_batch "$A" 60
is "$BSTATE" done "A: done"
wait_batch "$B" 60
is "$BSTATE" done "B: done"
report "$A"
report_check "$A" A 3 migrated
report "$B"
report_check "$B" B 3 migrated
is "$(rj "$B" '[.instances[].level] | unique | join(" ")')" dataset \
    "B: its 3 instances verified at level dataset (the source's copies were there to compare)"
grep -q " mig-quarantined " "$T_DIR/daemon.log"
ok $((!$?)) "nothing quarantined"

stop_daemon
ok $? "vnamigd stops cleanly"
done_testing
