#!/bin/sh
# t/migcommit.t — a target configured to take storage commitment
# (commit: true) that never does: DCMTK's storescp and dcmqrscp have no
# Storage Commitment SCP, so every N-ACTION finds no context. The
# commitment is a step of its own, tried migration.send_attempts times,
# then the study fails: its instances are at the target (by their C-STORE
# status, or counted there by C-FIND) but nobody took responsibility for
# them, so they end failed (target_unavailable), each with exactly one
# final audit leaf, never first "migrated" (the leaf is due only once the
# commitment is had) and never sent again on a retry.
#   a  LEGACY (dcmqrscp) -> storescp, verify: none, commit: true
#   b  LEGACY -> VNA (a second dcmqrscp), verify: counts, commit: true
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
export LC_ALL=C TCP_NODELAY=1
SCP_PID=
trap 'stop_peers; [ -n "$SCP_PID" ] && kill "$SCP_PID" 2>/dev/null; cleanup' EXIT

gen_studies "$T_DIR/gen" 2 1 2
ok $? "4 instances generated (2 studies x 1 series x 2)"
d_port=$(free_port)
src_port=$(free_port)
vna_port=$(free_port)
scp_port=$(free_port)
QR_NAME=legacy start_dcmqrscp LEGACY "$src_port" "$T_DIR/legacy" VNAMIG "$d_port" ||
    mig_bail "dcmqrscp LEGACY runs"
load_dcmqrscp LEGACY "$src_port" "$T_DIR/gen"
QR_NAME=vna start_dcmqrscp VNA "$vna_port" "$T_DIR/vna" VNAMIG "$d_port" ||
    mig_bail "dcmqrscp VNA runs"
scp_target
pass "LEGACY, VNA (dcmqrscp) and storescp run"

conf=$T_DIR/vnamigd.yaml
cat >"$conf" <<YAML
node: { ae_title: VNAMIG, data_dir: $T_DIR/var }
listen:
  dicom: { address: 127.0.0.1, port: $d_port }
  http:  { address: 127.0.0.1, port: 0 }
limits: { shutdown_grace: 5s, dimse_timeout: 10s }
storage: { min_free: 1MiB }
migration: { max_studies: 2, retry_backoff: 200ms, retry_backoff_max: 1s, send_attempts: 3 }
peers:
  - { name: legacy, ae_title: LEGACY, host: 127.0.0.1, port: $src_port, role: source }
  - { name: scp, ae_title: STORESCP, host: 127.0.0.1, port: $scp_port, role: target, verify: none, commit: true, max_associations: 1 }
  - { name: vna, ae_title: VNA, host: 127.0.0.1, port: $vna_port, role: target, verify: counts, commit: true, max_associations: 1 }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
mig_start mig_bail

# case LETTER TARGET STUDY: the batch, its end and its report
run_case() {
	submit "$1: study $3 from LEGACY to $2 (commit: true, no commitment there)" \
	    "{\"source\":\"legacy\",\"target\":\"$2\",\"study_instance_uids\":[\"$ROOT.1.$3\"]}"
	eval "b_$1=\$BID"
	wait_batch "$BID" 60
	is "$BSTATE" done "$1: batch $BID ends (done)"
	report "$BID"
	is "$(rj "$BID" '.studies[0].state')" failed "$1: the study failed"
	is "$(rj "$BID" '[.instances[] | "\(.outcome):\(.reason)"] | sort | join(",")')" \
	    "failed:target_unavailable,failed:target_unavailable" \
	    "$1: both instances failed, target_unavailable"
	like "$(rj "$BID" '.studies[0].reason')" "^storage commitment: " \
	    "$1: the study's reason names the storage commitment"
	is "$(grep -c "mig-step-failed batch=$BID .*error=\"the peer accepted no context for Storage Commitment" "$T_DIR/daemon.log")" 3 \
	    "$1: the commitment was tried 3 times (send_attempts), not for ever"
}
run_case a scp 1
is "$(ls "$T_DIR/scp" | wc -l)" 2 "a: storescp got each instance once (a retry of the commitment does not send again)"
run_case b vna 2
is "$(find "$T_DIR/vna" -type f ! -name index.dat | wc -l)" 2 \
    "b: VNA holds both instances (counted there; not committed)"

stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
"$VNAMIGD" -c "$conf" --audit-export "$T_DIR/export" >"$T_DIR/export.out" 2>&1
ok $? "the audit log exports"
# one final leaf per instance per batch: instance.failed, never a
# "migrated" before it
for b in "$b_a" "$b_b"; do
	is "$(jq -r --argjson b "$b" 'select(.event | test("^instance\\.(migrated|failed|quarantined|skipped)$")) | select(.object.batch_id == $b) | .event' "$T_DIR/export/leaves.jsonl" | sort | uniq -c | awk '{printf "%s %s;", $2, $1}')" \
	    "instance.failed 2;" "batch $b: one final leaf per instance, instance.failed (no instance.migrated)"
done
done_testing
