#!/bin/sh
# migrelease.t — POST /api/quarantine/{id}/release (src/api/api_mig.c act,
# src/mig/mig.c mig_quarantine_retry): an instance whose transform failed
# sent as it is, untransformed, on an operator's word. t/fakesource.py as
# the source (it serves its files' bytes as they are), a file-system
# export as the target, an HL7 ADT^A40 merge over MLLP so that the
# studies of PAT001 go out as NEWID. Study 1 (PAT001, 3 instances) has
# one instance whose dataset ends in a truncated element after its Pixel
# Data: the spool takes it, the PatientID edit cannot re-encode it.
# Study 2 (PAT002) has an instance the source aborts at every time.
#
#   a  batch 1 (study 1): done, 2 migrated with PatientID NEWID, 1
#      quarantined transform_error with the editor's reason
#   b  release of that item with a note: 200, the item "released" by ops
#      with the note; the batch runs again and ends done: 3 migrated, 0
#      quarantined; the released row has release {by: ops, item: N}, no
#      transforms and sent_sha256 == source_sha256; the export holds the
#      source's dataset bytes for it (PatientID PAT001, the truncated
#      element kept), the other two as NEWID
#   c  release again: 409 invalid_transition (not open)
#   d  batch 2 (study 2): its aborted instance quarantined
#      missing_at_source; release of it: 409 invalid_transition saying
#      there is nothing to send as it is; it stays open
#   e  the audit log (vnamigd --audit-export): a quarantine.release leaf
#      and the released instance's instance.migrated leaf with its
#      release; no sanitizer report.
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
export LC_ALL=C
trap 'fake_stop; cleanup' EXIT
MIG_STOP=fake_stop

EX=$T_DIR/export
BAD=$ROOT.3.1.1.2	# study 1's instance that cannot be edited
LOST=$ROOT.3.2.1.3	# study 2's instance the source aborts at

gen_studies "$T_DIR/gen" 2 1 3
ok $? "6 instances generated (2 studies x 1 series x 3)"
# deflated (DCMTK's dcmconv +td): taken and kept as it came, but not
# edited in place (ds_edit: "re-encode it first")
f=$T_DIR/gen/st001/se01/in0002.dcm
dcmconv +td "$f" "$f.dfl" >"$T_DIR/dcmconv.log" 2>&1 && mv "$f.dfl" "$f"
ok $? "study 1's instance 2 made Deflated Explicit VR Little Endian"
src_sha=$(dataset_sha "$f")

d_port=$(free_port)
f_port=$(free_port)
fake_start f "$f_port" FAKE --dest "VNAMIG=$d_port" --abort-at "$LOST"
pass "the fake source runs (FAKE)"
mkdir -p "$EX"
conf=$T_DIR/vnamigd.yaml
cat >"$conf" <<YAML
node: { ae_title: VNAMIG, data_dir: $T_DIR/var }
listen:
  dicom: { address: 127.0.0.1, port: $d_port }
  http:  { address: 127.0.0.1, port: 0 }
  mllp:  { address: 127.0.0.1, port: 0 }
limits: { shutdown_grace: 5s, dimse_timeout: 20s }
storage: { min_free: 1MiB }
migration: { max_studies: 2, retrieve_attempts: 1, retry_backoff: 200ms }
peers:
  - { name: fake, ae_title: FAKE, host: 127.0.0.1, port: $f_port, role: source }
exports:
  - { name: disk, path: $EX }
hl7:
  senders:
    - { name: ris, app: RIS, facility: MAINHOSP, source: fake, target: disk }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
mig_start mig_bail

# ADT^A40 PAT001 -> NEWID over MLLP (a raw socket); its MSA-1
ack=$("$PY" - "$MLLP_PORT" <<'EOF'
import socket, sys
m = '\r'.join((
    'MSH|^~\\&|RIS|MAINHOSP|VNAMIG|PACS|20240105120500||ADT^A40^ADT_A39|REL1|P|2.5.1',
    'EVN|A40|20240105120500',
    'PID|1||NEWID^^^MAINHOSP^MR||MERGE^ME||19700707|F',
    'MRG|PAT001^^^MAINHOSP^MR')) + '\r'
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=20)
s.sendall(b'\x0b' + m.encode('ascii') + b'\x1c\r')
buf = b''
while b'\x1c\r' not in buf:
    d = s.recv(65536)
    if not d:
        break
    buf += d
msa = [x for x in buf.strip(b'\x0b\x1c\r').decode().split('\r') if x.startswith('MSA')]
print(msa[0].split('|')[1] if msa else 'none')
EOF
)
is "$ack" AA "the A40 merge PAT001 -> NEWID is accepted (AA)"

# ---- a: the transform fails for one instance ----
submit "a: study 1 to the export" \
    "{\"source\":\"fake\",\"target\":\"disk\",\"study_instance_uids\":[\"$ROOT.1.1\"]}"
b1=$BID
[ -n "$b1" ] || mig_bail "a: a batch"
wait_batch "$b1" 60
is "$BSTATE" done "a: batch $b1 reaches done"
report "$b1"
is "$(rj "$b1" '[.summary.expected, .summary.migrated, .summary.quarantined_by_reason.transform_error] | map(tostring) | join(" ")')" \
    "3 2 1" "a: 3 expected, 2 migrated, 1 quarantined transform_error"
api GET "/api/quarantine?batch=$b1"
qid=$(j '.items[0].id // empty')
is "$code $(j '.items | length') $(j '.items[0].reason') $(j '.items[0].sop_instance_uid') $(j '.items[0].state')" \
    "200 1 transform_error $BAD open" "a: one open item, transform_error, for instance $BAD"
like "$(j '.items[0].detail')" "deflated" "a: its detail says a deflated dataset cannot be edited"

# ---- b: released ----
api POST "/api/quarantine/${qid:-0}/release" '{"note":"send it unmerged"}'
is "$code $(j .item.state) $(j .item.adjudicated.by) $(j .item.adjudicated.note)" \
    "200 released ops send it unmerged" "b: release: 200, released by ops with the note"
wait_batch "$b1" 60
is "$BSTATE" done "b: batch $b1 ends done again"
report "$b1"
is "$(rj "$b1" '[.summary.expected, .summary.migrated, .summary.quarantined] | map(tostring) | join(" ")')" \
    "3 3 0" "b: 3 expected, 3 migrated, none quarantined"
row=".instances[] | select(.sop_instance_uid == \"$BAD\")"
is "$(rj "$b1" "[$row | .outcome, .release.by, (.release.item | tostring), (.transforms | length | tostring)] | join(\" \")")" \
    "migrated ops $qid 0" "b: its row: migrated, release by ops of item $qid, no transforms"
is "$(rj "$b1" "$row | .sent_sha256 == .source_sha256 and .source_sha256 == \"$src_sha\"")" true \
    "b: sent_sha256 == source_sha256 == the source file's dataset SHA-256"
is "$(rj "$b1" '[.instances[] | select(.release == null) | (.transforms | length)] | map(tostring) | join(" ")')" \
    "1 1" "b: the two others went with the merge's one transform"
out_f=$EX/$ROOT.1.1/$ROOT.2.1.1/$BAD.dcm
is "$(dataset_sha "$out_f" 2>/dev/null)" "$src_sha" \
    "b: the export holds the source's dataset bytes for it (deflated, as it came)"
is "$("$PY" -c 'import sys, pydicom
print(" ".join(str(pydicom.dcmread(p, stop_before_pixels=True).PatientID) for p in sys.argv[1:]))' \
    "$out_f" "$EX/$ROOT.1.1/$ROOT.2.1.1/$ROOT.3.1.1.1.dcm" \
    "$EX/$ROOT.1.1/$ROOT.2.1.1/$ROOT.3.1.1.3.dcm" 2>&1)" "PAT001 NEWID NEWID" \
    "b: PatientID at the export: PAT001 for the released one, NEWID for the others"

# ---- c: not open any more ----
api POST "/api/quarantine/${qid:-0}/release"
is "$code $(j .error.code)" "409 invalid_transition" "c: a second release: 409 invalid_transition"

# ---- d: nothing to send as it is ----
submit "d: study 2 to the export" \
    "{\"source\":\"fake\",\"target\":\"disk\",\"study_instance_uids\":[\"$ROOT.1.2\"]}"
b2=$BID
[ -n "$b2" ] || mig_bail "d: a batch"
wait_batch "$b2" 60
report "$b2"
is "$(rj "$b2" '[.summary.migrated, .summary.quarantined_by_reason.missing_at_source] | map(tostring) | join(" ")')" \
    "2 1" "d: 2 migrated, 1 quarantined missing_at_source"
api GET "/api/quarantine?batch=$b2"
q2=$(j '.items[0].id // empty')
api POST "/api/quarantine/${q2:-0}/release"
is "$code $(j .error.code)" "409 invalid_transition" \
    "d: release of a missing_at_source item: 409 invalid_transition"
like "$(j .error.message)" "missing_at_source\\) holds nothing to send as it is" \
    "d: saying there is nothing to send as it is"
api GET "/api/quarantine/${q2:-0}"
is "$(j .item.state)" open "d: the item stays open"

# ---- e: the audit log ----
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
is "$(audit_leaves "$conf" quarantine.release)" 1 "e: one quarantine.release leaf"
is "$(jq -r "select(.event == \"instance.migrated\" and .object.sop_instance_uid == \"$BAD\") | [.release.by, (.release.item | tostring), (.transform // \"none\")] | join(\" \")" \
    "$T_DIR/export-quarantine.release/leaves.jsonl")" "ops $qid none" \
    "e: its instance.migrated leaf names the release (by ops, item $qid), no transform"
grep -En 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' \
    "$T_DIR/daemon.log" >"$T_DIR/san.txt"
is "$(($(wc -l <"$T_DIR/san.txt")))" 0 "no sanitizer report in vnamigd's log"

done_testing
