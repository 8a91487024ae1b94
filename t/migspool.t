#!/bin/sh
# t/migspool.t — what a migration leaves in the spool, and what it asks
# the source for. Two studies of 6 instances; the target (VNA, dcmqrscp)
# has 2 of study 1 and 5 of study 2 already (skipped by pre-flight).
#   study 1: 4 of 6 missing: asked for as a study (one C-MOVE brings all
#            six); the 2 the target had come too, and are let go when
#            the study ends (they stayed in the spool for ever before).
#   study 2: 1 of 6 missing: asked for alone (an IMAGE-level C-MOVE), so
#            the 5 the target has are not sent by the source again.
# Study 3 (2 instances), one of them lost at the source (its file
# removed from dcmqrscp's storage: listed, never sent): after its first
# retrieve round, vnamigd is killed (kill -9) and started again. The
# round is kept in the study's row: the restarted daemon goes on with
# round 2 of 3 (it began at 1 again before: a crash loop retried for
# ever), asking for the missing instance alone; after round 3 it is
# quarantined as missing_at_source.
# Then, with commit_interval 1s (units wait to be durable): study 5 (2
# instances) retrieved for a target that is down (its copies stay), and
# study 4 (6, 2 at VNA) in two batches at once: both end with the copies
# of the same instances to let go, while the other's unit is on its way.
# Each record is counted out of its segment once: the spool's live count
# matches its index, and after a kill -9 recovery keeps study 5's copies
# (a segment counted empty was deleted under them).
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
export LC_ALL=C TCP_NODELAY=1
trap 'stop_peers; cleanup' EXIT

gen_studies "$T_DIR/gen" 2 1 6 &&
gen_studies "$T_DIR/gen3" 1 1 2 3 &&
gen_studies "$T_DIR/gen4" 1 1 6 4 &&
gen_studies "$T_DIR/gen5" 1 1 2 5
ok $? "22 instances generated (studies 1, 2, 4: 6 each; 3, 5: 2 each)"
mkdir -p "$T_DIR/have"
# the target's: the first 2 of study 1, the first 5 of study 2
for f in $(ls "$T_DIR"/gen/st001/se*/*.dcm | sort | head -n 2) \
    $(ls "$T_DIR"/gen/st002/se*/*.dcm | sort | head -n 5) \
    $(ls "$T_DIR"/gen4/st004/se*/*.dcm | sort | head -n 2); do
	cp "$f" "$T_DIR/have/$(echo "$f" | tr / _)"
done
is "$(ls "$T_DIR/have" | wc -l)" 9 "9 of them are the target's already"
d_port=$(free_port)
src_port=$(free_port)
vna_port=$(free_port)
QR_NAME=legacy start_dcmqrscp LEGACY "$src_port" "$T_DIR/legacy" VNAMIG "$d_port" ||
    mig_bail "dcmqrscp LEGACY runs"
load_dcmqrscp LEGACY "$src_port" "$T_DIR/gen" &&
load_dcmqrscp LEGACY "$src_port" "$T_DIR/gen3" &&
load_dcmqrscp LEGACY "$src_port" "$T_DIR/gen4" &&
load_dcmqrscp LEGACY "$src_port" "$T_DIR/gen5" || mig_bail "LEGACY loaded"
lost=$(ls "$T_DIR"/gen3/st003/se*/*.dcm | sort | tail -n 1)
lost_uid=$("$QP_PY" -c 'import sys, pydicom; print(pydicom.dcmread(sys.argv[1]).SOPInstanceUID)' "$lost")
lost_file=$(grep -l -a -F "$lost_uid" "$T_DIR"/legacy/* | grep -v index.dat)
rm -f $lost_file
[ -n "$lost_file" ] && [ ! -e "$lost_file" ]
ok $? "one instance of study 3 lost at the source ($lost_uid)"
QR_NAME=vna start_dcmqrscp VNA "$vna_port" "$T_DIR/vna" VNAMIG "$d_port" ||
    mig_bail "dcmqrscp VNA runs"
load_dcmqrscp VNA "$vna_port" "$T_DIR/have" || mig_bail "VNA loaded"
pass "LEGACY and VNA (dcmqrscp) run, loaded"

conf=$T_DIR/vnamigd.yaml
cat >"$conf" <<YAML
node: { ae_title: VNAMIG, data_dir: $T_DIR/var }
listen:
  dicom: { address: 127.0.0.1, port: $d_port }
  http:  { address: 127.0.0.1, port: 0 }
limits: { shutdown_grace: 5s, dimse_timeout: 10s }
storage: { min_free: 1MiB }
migration: { max_studies: 2, retry_backoff: 3s, retry_backoff_max: 3s, retrieve_attempts: 3 }
peers:
  - { name: legacy, ae_title: LEGACY, host: 127.0.0.1, port: $src_port, role: source }
  - { name: vna, ae_title: VNA, host: 127.0.0.1, port: $vna_port, role: target, verify: counts }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
mig_start mig_bail

submit "both studies from LEGACY to VNA" \
    "{\"source\":\"legacy\",\"target\":\"vna\",\"study_instance_uids\":[\"$ROOT.1.1\",\"$ROOT.1.2\"]}"
wait_batch "$BID" 60
is "$BSTATE" done "the batch is done"
report "$BID"
is "$(rj "$BID" '.summary.migrated')/$(rj "$BID" '.summary.skipped_present')" \
    "5/7" "5 migrated, 7 skipped (present at the target)"
# what LEGACY was asked for, by level
moves=$(grep ' qr-start .*op=C-MOVE' "$T_DIR/daemon.log" |
    sed -n 's/.* level=\([A-Z]*\).*/\1/p' | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 }')
is "$moves" "IMAGE=1 STUDY=1 " \
    "study 1 asked for as a study, study 2's one missing instance alone"
"$VNAMIG_SPOOL" -c "$conf" list >"$T_DIR/spool.list" 2>"$T_DIR/spool.err"
ok $? "vnamig-spool list runs beside the daemon"
is "$(grep -c . "$T_DIR/spool.list")" 0 \
    "the spool keeps nothing of a migration that ended: the copies of the instances the target had are let go too"
[ -s "$T_DIR/spool.list" ] && sed 's/^/# /' "$T_DIR/spool.list"

submit "study 3 from LEGACY to VNA (one instance lost there)" \
    "{\"source\":\"legacy\",\"target\":\"vna\",\"study_instance_uids\":[\"$ROOT.1.3\"]}"
b3=$BID
wait_log "mig-missing batch=$b3 study=$ROOT.1.3 missing=1 round=1 of=3 " 30
ok $? "study 3: round 1 of 3 leaves 1 missing"
stop_daemon KILL
start_daemon "$conf" || mig_bail "vnamigd starts again after kill -9"
base="http://127.0.0.1:$HTTP_PORT"
wait_batch "$b3" 60
is "$BSTATE" done "after the restart the batch ends"
grep -q "mig-missing batch=$b3 study=$ROOT.1.3 missing=1 round=2 of=3 " "$T_DIR/daemon.log" &&
! grep -q "mig-missing batch=$b3 .* round=1 of=3 " "$T_DIR/daemon.log"
ok $? "  it went on with round 2 (the round was kept in the study's row)"
is "$(grep ' qr-start .*op=C-MOVE' "$T_DIR/daemon.log" | sed -n 's/.* level=\([A-Z]*\).*/\1/p' | sort -u | tr '\n' ' ')" \
    "IMAGE " "  asking for the missing instance alone"
report "$b3"
is "$(rj "$b3" '.summary.migrated')/$(rj "$b3" '.instances[] | select(.outcome == "quarantined") | .reason')" \
    "1/missing_at_source" "  1 migrated, the lost one quarantined missing_at_source"
grep -q "not received after 3 retrieve round(s)" "$T_DIR/daemon.log"
ok $? "  after 3 rounds in all"
"$VNAMIG_SPOOL" -c "$conf" list >"$T_DIR/spool.list" 2>"$T_DIR/spool.err"
is "$(grep -c . "$T_DIR/spool.list")" 0 "the spool keeps nothing of it either"
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"

dead_port=$(free_port)
sed -i "s|^storage: .*|storage: { min_free: 1MiB, commit_interval: 1s }|" "$conf"
printf '  - { name: dead, ae_title: DEAD, host: 127.0.0.1, port: %s, role: target, verify: none }\n' \
    "$dead_port" >"$T_DIR/dead.peer"
sed -i "/^  - { name: vna,/r $T_DIR/dead.peer" "$conf"
mig_start mig_bail "commit_interval 1s, a target that is down"
submit "study 5 to DEAD (down)" \
    "{\"source\":\"legacy\",\"target\":\"dead\",\"study_instance_uids\":[\"$ROOT.1.5\"]}"
b5=$BID
wait_log "mig-send-retry batch=$b5 " 30
ok $? "study 5 retrieved; its send waits for DEAD (its 2 copies stay)"
submit "study 4 to VNA, batch A" \
    "{\"source\":\"legacy\",\"target\":\"vna\",\"study_instance_uids\":[\"$ROOT.1.4\"]}"
ba=$BID
submit "study 4 to VNA, batch B" \
    "{\"source\":\"legacy\",\"target\":\"vna\",\"study_instance_uids\":[\"$ROOT.1.4\"]}"
bb=$BID
wait_batch "$ba" 60
is "$BSTATE" done "batch A is done"
wait_batch "$bb" 60
is "$BSTATE" done "batch B is done"
sleep 2
api GET /api/status
live=$(j .store.spool.instances)
"$VNAMIG_SPOOL" -c "$conf" list >"$T_DIR/spool.list" 2>"$T_DIR/spool.err"
is "$live/$(grep -c . "$T_DIR/spool.list")" "2/2" \
    "the spool counts 2 live records, and its index holds 2 (study 5's)"
stop_daemon KILL
start_daemon "$conf" || mig_bail "vnamigd starts again after kill -9"
"$VNAMIG_SPOOL" -c "$conf" list >"$T_DIR/spool.list" 2>"$T_DIR/spool.err"
n5=0
for u in $(awk '{ print $1 }' "$T_DIR/spool.list"); do
	"$VNAMIG_SPOOL" -c "$conf" get "$u" -o "$T_DIR/got.dcm" 2>>"$T_DIR/spool.err" &&
	    n5=$((n5 + 1))
done
is "$n5" 2 "after kill -9 and recovery, study 5's 2 copies are there, whole (re-hashed)"
grep -q 'spool-open .*damaged_bytes=0' "$T_DIR/daemon.log"
ok $? "  and recovery found nothing damaged"
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
done_testing
