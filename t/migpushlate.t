#!/bin/sh
# t/migpushlate.t — an instance pushed while its study waits between
# verification steps: the study is kept slow at the target (bandwidth
# 2KiB/s, one association), a modality pushes 2 instances, then, once
# GET /api/batches shows the study verifying, a 3rd. The 3rd goes through
# the steps as well (mig-study-again): the batch ends with 3 of 3
# migrated, none left pending in a study that ended.
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
export LC_ALL=C TCP_NODELAY=1
G=$T_DIR/gen
trap 'stop_peers; cleanup' EXIT
gen_studies "$G" 1 1 3
ok $? "3 instances generated (1 study)"
vna_port=$(free_port)
d_port=$(free_port)
nop_port=$(free_port)
QR_NAME=vna start_dcmqrscp VNA "$vna_port" "$T_DIR/vna" VNAMIG "$d_port" ||
    mig_bail "dcmqrscp VNA runs"
conf=$T_DIR/vnamigd.yaml
cat >"$conf" <<YAML
node: { ae_title: VNAMIG, data_dir: $T_DIR/var }
listen:
  dicom: { address: 127.0.0.1, port: $d_port }
  http:  { address: 127.0.0.1, port: 0 }
limits: { shutdown_grace: 5s, dimse_timeout: 20s }
storage: { min_free: 1MiB }
migration: { max_studies: 4, retry_backoff: 200ms, retry_backoff_max: 2s, push_stable: 1s }
peers:
  - { name: modality, ae_title: MODALITY, host: 127.0.0.1, port: $nop_port, role: source, push_to: vna }
  - { name: vna, ae_title: VNA, host: 127.0.0.1, port: $vna_port, role: target, max_associations: 1, bandwidth: 2KiB/s }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
mig_start mig_bail
set -- $(ls "$G"/st001/se*/*.dcm)
storescu -aet MODALITY -aec VNAMIG 127.0.0.1 "$DICOM_PORT" "$1" "$2" >"$T_DIR/p1.log" 2>&1
ok $? "MODALITY pushes 2 instances"
i=0
st=
BID=
while [ $i -lt 300 ]; do
	api GET /api/batches
	BID=$(j '.batches[0].id // empty')
	if [ -n "$BID" ]; then
		api GET "/api/batches/$BID"
		st=$(j '.batch.progress.studies | keys | join(",")')
		[ "$st" = verifying ] && break
	fi
	i=$((i + 1))
	sleep 0.1
done
is "$st" verifying "the push batch's study is being verified (after $i polls)"
storescu -aet MODALITY -aec VNAMIG 127.0.0.1 "$DICOM_PORT" "$3" >"$T_DIR/p2.log" 2>&1
ok $? "MODALITY pushes a 3rd instance of the study meanwhile"
wait_log 'mig-study-end .*expected=3 ' 30
ok $? "the study ends with 3 instances expected"
report "$BID"
is "$(rj "$BID" '[.instances[] | .outcome] | sort | join(",")')" \
    "migrated,migrated,migrated" "all 3 migrated (none left pending)"
is "$(rj "$BID" '.summary.pending')" 0 "  the report has nothing pending"
grep -q "mig-study-again batch=$BID " "$T_DIR/daemon.log"
ok $? "  the 3rd went through the steps after the first two (mig-study-again: while verifying, or after the study ended)"
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
done_testing
