#!/bin/sh
# commit.t — Storage Commitment Push Model as an SCU (vnamig-send
# --commit, dicom_commit.c): against Orthanc, which reports on an
# association of its own to our listener (committed instances, and an
# instance it does not hold: 0x0112); without a listener the wait ends at
# limits.commit_timeout; against a scripted SCP that reports on the same
# association (its N-EVENT-REPORT answered 0x0000), with another
# Transaction UID (not taken, logged), and with a report that does not
# parse (answered 0x0110).
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"

SEND=$top_builddir/src/send/vnamig-send
trap 'stop_peers KILL; cleanup' EXIT

gen_studies "$T_DIR/gen" 2 1 3
ok $? "6 instances generated"
o_dicom=$(free_port)
o_http=$(free_port)
cli_port=$(free_port)
start_orthanc ORTHANC "$o_dicom" "$o_http" VNAMIG "$cli_port"
ok $? "Orthanc runs"

conf=$T_DIR/s.yaml
cat >"$conf" <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/var
listen:
  dicom: { address: 127.0.0.1, port: $cli_port }
storage:
  min_free: 1MiB
limits:
  commit_timeout: 20s
peers:
  - { name: orthanc, ae_title: ORTHANC, host: 127.0.0.1, port: $o_dicom, role: target }
YAML
S="$SEND -c $conf"
st1=$(ls "$T_DIR"/gen/st001/se01/*.dcm)
st2=$(ls "$T_DIR"/gen/st002/se01/*.dcm)

# shellcheck disable=SC2086
$S --commit orthanc $st1 >"$T_DIR/out" 2>&1
ok $? "send study 1 with --commit: exit 0"
is "$(grep -c ': committed$' "$T_DIR/out")" 3 "  three files committed"
like "$(cat "$T_DIR/out")" "storage commitment 2\.25\.[0-9]+ from ORTHANC \(on its own association\): 3 committed, 0 failed, 0 not reported" \
    "  the report came from Orthanc on its own association"
grep -qi "Unable to read N-EVENT-REPORT response" "$T_DIR/orthanc.log"
is $? 1 "  Orthanc had our N-EVENT-REPORT response"

# shellcheck disable=SC2086
$S --commit-only orthanc $st1 $st2 >"$T_DIR/out" 2>&1
is $? 1 "--commit-only of study 1 and the unsent study 2: exit 1"
is "$(grep -c ': committed$' "$T_DIR/out")" 3 "  study 1's three committed"
is "$(grep -c ': commitment failed: 0x0112 (No such object instance)$' "$T_DIR/out")" 3 \
    "  study 2's three failed: 0x0112, named"

# no listener: Orthanc cannot report; the wait ends
sed -e '/^listen:/,/^  dicom:/d' -e 's/commit_timeout: 20s/commit_timeout: 2s/' "$conf" >"$T_DIR/nolisten.yaml"
# shellcheck disable=SC2086
$SEND -c "$T_DIR/nolisten.yaml" --commit-only orthanc $st1 >"$T_DIR/out" 2>&1
is $? 1 "no listener for Orthanc's report: exit 1"
like "$(cat "$T_DIR/out")" "no N-EVENT-REPORT within 2000 ms \(limits.commit_timeout\)" \
    "  the wait ended at commit_timeout, said"

# ---- a scripted SCP that reports on the same association ----
for mode in commit commit-txn commit-bad; do
	port=$(free_port)
	/usr/bin/python3 "$top_srcdir/t/qrbad.py" "$port" "$T_DIR/$mode.log" "$mode" &
	eval "pid_$(echo $mode | tr - _)=$!"
	eval "port_$(echo $mode | tr - _)=$port"
done
wait_file "$T_DIR/commit.log" 5 && wait_file "$T_DIR/commit-txn.log" 5 &&
    wait_file "$T_DIR/commit-bad.log" 5
cat >"$T_DIR/same.yaml" <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/var2
storage:
  min_free: 1MiB
limits:
  commit_timeout: 2s
peers:
  - { name: same, ae_title: SAME, host: 127.0.0.1, port: $port_commit, role: target }
  - { name: txn, ae_title: TXN, host: 127.0.0.1, port: $port_commit_txn, role: target }
  - { name: bad, ae_title: BAD, host: 127.0.0.1, port: $port_commit_bad, role: target }
YAML
# a copy of one file under an instance UID ending in .999
/usr/bin/python3 - "$T_DIR/gen/st001/se01/in0001.dcm" "$T_DIR/999.dcm" <<'EOF'
import sys, pydicom
d = pydicom.dcmread(sys.argv[1])
d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = '1.2.3.999'
d.save_as(sys.argv[2])
EOF
# shellcheck disable=SC2086
$SEND -c "$T_DIR/same.yaml" --commit-only same $st1 "$T_DIR/999.dcm" >"$T_DIR/out" 2>&1
is $? 1 "same-association report with one failure: exit 1"
is "$(grep -c ': committed$' "$T_DIR/out")" 3 "  three committed"
like "$(cat "$T_DIR/out")" "999.dcm: commitment failed: 0x0112 \(No such object instance\)" "  the fourth failed, named"
like "$(cat "$T_DIR/out")" "from SAME: 3 committed, 1 failed, 0 not reported" "  taken on our own association"
wait_until 5 grep -q release "$T_DIR/commit.log"
is "$(tr '\n' ' ' <"$T_DIR/commit.log")" "listening N-ACTION-RQ N-EVENT-REPORT-RSP 0x0000 release " \
    "  the SCP saw the N-ACTION, our 0x0000 response to its report, a release"

# shellcheck disable=SC2086
$SEND -c "$T_DIR/same.yaml" --commit-only txn $st1 >"$T_DIR/out" 2>&1
is $? 1 "a report for another transaction: exit 1"
like "$(cat "$T_DIR/out")" "commit-report-unmatched .*transaction=1\.2\.3\.4\.5\.6 .*no commitment of this process waits for it" \
    "  logged as unmatched"
like "$(cat "$T_DIR/out")" "no N-EVENT-REPORT within 2000 ms" "  ours is still unreported when the wait ends"
like "$(tr '\n' ' ' <"$T_DIR/commit-txn.log")" "N-EVENT-REPORT-RSP 0x0000" "  the report itself was acknowledged"

# shellcheck disable=SC2086
$SEND -c "$T_DIR/same.yaml" --commit-only bad $st1 >"$T_DIR/out" 2>&1
is $? 1 "a report that does not parse: exit 1"
like "$(cat "$T_DIR/out")" "commit-report-refused .*status=0x0110" "  refused, logged"
like "$(tr '\n' ' ' <"$T_DIR/commit-bad.log")" "N-EVENT-REPORT-RSP 0x0110" "  answered 0x0110 (processing failure)"

kill "$pid_commit" "$pid_commit_txn" "$pid_commit_bad" 2>/dev/null
wait "$pid_commit" "$pid_commit_txn" "$pid_commit_bad" 2>/dev/null
stop_peers KILL
done_testing
