#!/bin/sh
# qr.t — Query/Retrieve as an SCU (vnamig-qr, dicom_qr.c) against real
# source archives: DCMTK's dcmqrscp and Orthanc, loaded with generated
# studies. C-FIND at every level of both roots, as text and as DICOM
# JSON; C-GET (C-STOREs on the same association, taken with the SCP role)
# and C-MOVE (to vnamig-qr --receive, and to a running vnamigd), each
# instance's dataset bytes identical to what was loaded; the hierarchical
# key checks; an unknown move destination; the limits: too many matches
# (C-CANCEL, which dcmqrscp honours), a silent SCP (C-CANCEL, then
# A-ABORT), an SCP pending forever without progress (C-CANCEL).
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"

QR=$top_builddir/src/qr/vnamig-qr
ROOT=1.2.826.0.1.3680043.10.1297.9
trap 'stop_peers; cleanup' EXIT

gen_studies "$T_DIR/gen" 4 2 3
ok $? "24 instances generated (4 studies x 2 series x 3)"
idx=$T_DIR/gen/index.tsv

qr_port=$(free_port)
cli_port=$(free_port)
d_port=$(free_port)
export QR_OTHER_PORT=$d_port
start_dcmqrscp QRSCP "$qr_port" "$T_DIR/qrstore" VNAMIG "$cli_port"
ok $? "dcmqrscp listens"
load_dcmqrscp QRSCP "$qr_port" "$T_DIR/gen"
ok $? "  loaded with the 24 instances (storescu, bytes kept)"

conf=$T_DIR/qr.yaml
cat >"$conf" <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/var
listen:
  dicom: { address: 127.0.0.1, port: $cli_port }
storage:
  min_free: 1MiB
peers:
  - { name: qr, ae_title: QRSCP, host: 127.0.0.1, port: $qr_port, role: source }
YAML
Q="$QR -c $conf"

# same_bytes DIR STUDY: every instance of STUDY in the index arrived in DIR
# as DIR/<SOPInstanceUID>.dcm with the dataset bytes that were loaded.
# same_content DIR STUDY: the same, by the canonical digest (the same
# elements and values, whatever the transfer syntax).
canonical() { "$VNAMIG_DUMP" -d "$1" | sed 's/.* canonical=\([0-9a-f]*\).*/\1/'; }
same_by() {	# same_by DIGEST-FUNCTION DIR STUDY
	n=0 same=0
	while IFS="$(printf '\t')" read -r path st se sop rest; do
		[ "$st" = "$3" ] || continue
		n=$((n + 1))
		[ -f "$2/$sop.dcm" ] &&
		    [ "$("$1" "$2/$sop.dcm")" = "$("$1" "$path")" ] &&
		    same=$((same + 1))
	done <"$idx"
	[ "$n" -gt 0 ] && [ "$same" = "$n" ]
}
same_bytes() { same_by dataset_sha "$@"; }
same_content() { same_by canonical "$@"; }

# ---- C-FIND ----
out=$($Q find qr 2>"$T_DIR/err")
ok $? "find (study level, Study Root): exit 0"
is "$(printf '%s\n' "$out" | grep -c StudyInstanceUID=)" 4 "  four matches"
like "$(cat "$T_DIR/err")" "C-FIND: 0x0000 \(Success\): 4 matches" "  the outcome on stderr"
for s in 1 2 3 4; do
	printf '%s\n' "$out" | grep "StudyInstanceUID=$ROOT.1.$s	\|StudyInstanceUID=$ROOT.1.$s\$" | grep -q "PatientID=PAT00$s" ||
	    { fail "  study $s with its PatientID"; continue; }
	pass "  study $s with its PatientID"
done
out=$($Q -k PatientID=PAT002 find qr 2>/dev/null)
is "$(printf '%s\n' "$out" | grep -c .)" 1 "find -k PatientID=PAT002: one match"
like "$out" "AccessionNumber=ACC002" "  with its accession number"
out=$($Q -k 'StudyDate=20200102-20200103' find qr 2>/dev/null)
is "$(printf '%s\n' "$out" | grep -c .)" 2 "a date range matches two studies"
json=$($Q --json -L SERIES -k StudyInstanceUID=$ROOT.1.1 -k Modality find qr 2>/dev/null)
ok $? "find --json at series level: exit 0"
is "$(printf '%s' "$json" | jq length)" 2 "  two series, as a JSON array"
is "$(printf '%s' "$json" | jq -r '[.[]["0020000E"].Value[0]] | sort | join(" ")')" \
    "$ROOT.2.1.1 $ROOT.2.1.2" "  their SeriesInstanceUIDs in the DICOM JSON model"
is "$(printf '%s' "$json" | jq -r '.[0]["00080060"].Value[0]')" CT "  and the Modality key asked for"
out=$($Q -L IMAGE -k StudyInstanceUID=$ROOT.1.2 -k SeriesInstanceUID=$ROOT.2.2.1 find qr 2>/dev/null)
is "$(printf '%s\n' "$out" | grep -c "SOPInstanceUID=$ROOT.3.2.1.")" 3 \
    "find at image level: the series' three instances"
out=$($Q -P -L PATIENT find qr 2>/dev/null)
is "$(printf '%s\n' "$out" | grep -c PatientID=)" 4 "Patient Root, patient level: four patients"
out=$($Q -P -L STUDY -k PatientID=PAT003 find qr 2>/dev/null)
like "$out" "StudyInstanceUID=$ROOT.1.3" "Patient Root, study level under PAT003"

$Q -L SERIES find qr >/dev/null 2>"$T_DIR/err"
is $? 2 "series level without StudyInstanceUID: refused before sending (exit 2)"
like "$(cat "$T_DIR/err")" "needs one StudyInstanceUID value" "  saying which key"
$Q -k NoSuchKey=1 find qr >/dev/null 2>"$T_DIR/err"
is $? 2 "an unknown keyword: exit 2"
like "$(cat "$T_DIR/err")" 'no attribute has the keyword "NoSuchKey"' "  named"
$Q find nosuchpeer >/dev/null 2>"$T_DIR/err"
is $? 2 "an unknown peer: exit 2"

# ---- C-GET ----
# dcmqrscp sends each instance on the first context of its class that
# was accepted, converting when that is not the stored syntax (Orthanc
# picks the stored one: byte-identical below): explicit studies arrive
# as they were loaded, implicit ones with the same content.
$Q -k StudyInstanceUID=$ROOT.1.1 -o "$T_DIR/get" get qr >"$T_DIR/out" 2>&1
ok $? "get study 1 (CT, explicit VR LE): exit 0"
like "$(cat "$T_DIR/out")" "C-GET: 0x0000 \(Success\): 6 completed, 0 failed, 0 warning; 6 stored in $T_DIR/get" \
    "  six sub-operations, six stored"
like "$(cat "$T_DIR/out")" "the peer returned no SOPClassUID at image level" \
    "  dcmqrscp's image level has no SOPClassUID: said, common classes proposed"
same_bytes "$T_DIR/get" "$ROOT.1.1"
ok $? "  each instance's dataset bytes are the ones loaded"
$Q -k StudyInstanceUID=$ROOT.1.2 -o "$T_DIR/get" get qr >"$T_DIR/out" 2>&1
ok $? "get study 2 (MR, implicit VR LE): exit 0"
same_content "$T_DIR/get" "$ROOT.1.2"
ok $? "  each instance's content is the one loaded (dcmqrscp converted it)"
$Q -k StudyInstanceUID=$ROOT.1.1 -k SeriesInstanceUID=$ROOT.2.1.2 \
    -k "SOPInstanceUID=$ROOT.3.1.2.1\\$ROOT.3.1.2.3" -o "$T_DIR/get1" get qr >"$T_DIR/out" 2>&1
ok $? "get two instances by a UID list at image level"
is "$(ls "$T_DIR/get1" | wc -l)" 2 "  two files"
$Q --class 1.2.840.10008.5.1.4.1.1.7 -k StudyInstanceUID=$ROOT.1.1 -o "$T_DIR/get2" get qr >"$T_DIR/out" 2>&1
is $? 1 "get with only an unrelated --class: exit 1"
like "$(cat "$T_DIR/out")" "C-GET: 0x[0-9a-f]{4} .*0 stored" "  nothing stored, the status said"

# ---- C-MOVE ----
$Q -k StudyInstanceUID=$ROOT.1.3 --receive move qr >"$T_DIR/out" 2>&1
ok $? "move study 3 to ourselves with --receive: exit 0"
like "$(cat "$T_DIR/out")" "C-MOVE: 0x0000 \(Success\): 6 completed, 0 failed, 0 warning; 6 stored" \
    "  six sub-operations, six stored"
same_bytes "$T_DIR/var/incoming" "$ROOT.1.3"
ok $? "  each instance's dataset bytes are the ones loaded"
$Q -k StudyInstanceUID=$ROOT.1.3 --dest NOWHERE move qr >"$T_DIR/out" 2>&1
is $? 1 "move to an AE the SCP does not know: exit 1"
like "$(cat "$T_DIR/out")" "C-MOVE: 0xa801 \(Refused: Move Destination unknown\)" "  0xA801 named"

# to a running vnamigd, whose AE title dcmqrscp knows as OTHER
cat >"$T_DIR/d.yaml" <<YAML
node:
  ae_title: OTHER
  data_dir: $T_DIR/dvar
listen:
  dicom: { address: 127.0.0.1, port: $d_port }
storage:
  min_free: 1MiB
peers:
  - { name: qr, ae_title: QRSCP, host: 127.0.0.1, port: $qr_port, role: source }
YAML
start_daemon "$T_DIR/d.yaml" || { fail "vnamigd starts"; stop_peers; done_testing; }
$Q -k StudyInstanceUID=$ROOT.1.4 --dest OTHER move qr >"$T_DIR/out" 2>&1
ok $? "move study 4 to vnamigd (--dest OTHER): exit 0"
spool_export "$T_DIR/d.yaml" "$T_DIR/dvar/incoming" &&
same_content "$T_DIR/dvar/incoming" "$ROOT.1.4"
ok $? "  vnamigd holds its six instances in its spool (content; dcmqrscp converts implicit)"
stop_daemon

# ---- limits, with dcmqrscp ----
cat "$conf" >"$T_DIR/few.yaml"
printf 'limits:\n  find_matches: 2\n' >>"$T_DIR/few.yaml"
out=$($QR -c "$T_DIR/few.yaml" find qr 2>"$T_DIR/err")
is $? 1 "find_matches 2 with four studies: exit 1"
is "$(printf '%s\n' "$out" | grep -c StudyInstanceUID=)" 2 "  the two matches before the C-CANCEL are printed"
# dcmqrscp may have sent every match before it reads the C-CANCEL
like "$(cat "$T_DIR/err")" "C-FIND: 0x(fe00 \(Cancel\)|0000 \(Success\)): 2 matches.*: more than 2 matches \(limits.find_matches\)" \
    "  the outcome says two matches and why it was cut"

# ---- a misbehaving SCP ----
bad_port=$(free_port)
/usr/bin/python3 "$top_srcdir/t/qrbad.py" "$bad_port" "$T_DIR/silent.log" silent &
bad1=$!
bad2_port=$(free_port)
/usr/bin/python3 "$top_srcdir/t/qrbad.py" "$bad2_port" "$T_DIR/pending.log" pending &
bad2=$!
wait_file "$T_DIR/silent.log" 5 && wait_file "$T_DIR/pending.log" 5
cat >"$T_DIR/bad.yaml" <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/bvar
storage:
  min_free: 1MiB
limits:
  dimse_timeout: 500ms
  retrieve_stall: 1s
peers:
  - { name: silent, ae_title: SILENT, host: 127.0.0.1, port: $bad_port, role: source }
  - { name: pending, ae_title: PENDING, host: 127.0.0.1, port: $bad2_port, role: source }
YAML
$QR -c "$T_DIR/bad.yaml" find silent >/dev/null 2>"$T_DIR/err"
is $? 1 "a C-FIND to an SCP that never answers: exit 1"
like "$(cat "$T_DIR/err")" "no response for 500 ms \(limits.dimse_ms\); no final response within 500 ms of the C-CANCEL" \
    "  cancelled after dimse_timeout, given up after as long again"
wait_until 5 grep -q abort "$T_DIR/silent.log"
is "$(tr '\n' ' ' <"$T_DIR/silent.log")" "listening C-FIND-RQ C-CANCEL-RQ abort " \
    "  the SCP saw the C-FIND, the C-CANCEL, then the A-ABORT"
$QR -c "$T_DIR/bad.yaml" -k StudyInstanceUID=1.2.3 move pending >/dev/null 2>"$T_DIR/err"
is $? 1 "a C-MOVE pending forever with the same counts: exit 1"
like "$(cat "$T_DIR/err")" "C-MOVE: 0xfe00 \(Cancel\).*pending responses without progress for 1000 ms" \
    "  cancelled after retrieve_stall; the SCP's Cancel status reported"
like "$(tr '\n' ' ' <"$T_DIR/pending.log")" "C-MOVE-RQ C-CANCEL-RQ release" \
    "  the SCP saw the C-MOVE, the C-CANCEL, then a release"
kill "$bad1" "$bad2" 2>/dev/null
wait "$bad1" "$bad2" 2>/dev/null

# ---- Orthanc ----
o_dicom=$(free_port)
o_http=$(free_port)
start_orthanc ORTHANC "$o_dicom" "$o_http" VNAMIG "$cli_port"
ok $? "Orthanc runs"
load_orthanc "$o_http" "$T_DIR/gen"
ok $? "  loaded with the 24 instances"
cat >"$T_DIR/o.yaml" <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/ovar
listen:
  dicom: { address: 127.0.0.1, port: $cli_port }
storage:
  min_free: 1MiB
peers:
  - { name: orthanc, ae_title: ORTHANC, host: 127.0.0.1, port: $o_dicom, role: source }
YAML
O="$QR -c $T_DIR/o.yaml"
out=$($O find orthanc 2>/dev/null)
ok $? "find at Orthanc: exit 0"
is "$(printf '%s\n' "$out" | grep -c StudyInstanceUID=)" 4 "  four studies"
like "$out" "NumberOfStudyRelatedInstances=6" "  with their instance counts"
out=$($O -L IMAGE -k StudyInstanceUID=$ROOT.1.1 -k SeriesInstanceUID=$ROOT.2.1.1 find orthanc 2>/dev/null)
is "$(printf '%s\n' "$out" | grep -c SOPInstanceUID=)" 3 "  image level: three instances"
out=$($O -L IMAGE -k StudyInstanceUID=$ROOT.1.2 -k SeriesInstanceUID=$ROOT.2.2.1 find orthanc 2>/dev/null)
is "$(printf '%s\n' "$out" | grep -c "SOPClassUID=1.2.840.10008.5.1.4.1.1.4")" 3 \
    "  with their SOP class (MR)"
for s in 1 2; do
	$O -k StudyInstanceUID=$ROOT.1.$s -o "$T_DIR/oget" get orthanc >"$T_DIR/out" 2>&1
	ok $? "get study $s from Orthanc: exit 0"
	like "$(cat "$T_DIR/out")" "6 completed, 0 failed, 0 warning; 6 stored" "  six stored"
	same_bytes "$T_DIR/oget" "$ROOT.1.$s"
	ok $? "  each instance's dataset bytes are the ones loaded"
done
$O -k StudyInstanceUID=$ROOT.1.2 --receive move orthanc >"$T_DIR/out" 2>&1
ok $? "move study 2 from Orthanc with --receive: exit 0"
same_bytes "$T_DIR/ovar/incoming" "$ROOT.1.2"
ok $? "  each instance's dataset bytes are the ones loaded"

stop_peers
done_testing
