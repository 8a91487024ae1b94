#!/bin/sh
# prefetch.t — HL7 pre-fetch in the migration engine end to end
# (src/hl7in.c promote_one, src/api/api_batch.c api_batches_of_patient,
# src/mig/mig.c batch_read / batch_place / schedule / study_retrieve): a
# mapped sender's ORM^O01 for patient P makes a batch of its own (the
# sender's prefetch_priority, 9: include_priors, every study of P at the
# source) and
# moves every queued or paused batch of P to priority 9, naming the order
# (promoted_by = MSH-10, prefetch_at_ms); the engine, busy with batches
# of other patients on one slot (migration.max_studies 1), then works
# P's batches before every batch that was waiting when the order came,
# and study by study no lower-priority study starts while P's have work.
# Also: a batch of another patient whose ID has P's as a prefix is left
# alone, a second order for P promotes only what is not at 9 already, a
# resent order gets the same ACK and changes nothing, the
# vnamig_prefetch_first_retrieval_seconds histogram, every batch's
# report adds up, the batch counts of GET /api/status; and an order
# that meets the engine's own write of the batch (storage.commit_interval
# makes that write wait in its commit group): neither write undoes the
# other. Peers: DCMTK's dcmqrscp as source (LEGACY) and target (VNA),
# python-hl7's mllp_send and a raw socket as the RIS.
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
export LC_ALL=C

PEER="$PY $top_srcdir/t/hl7peer.py"
PAT=PFX100		# patient P: studies 13, 14 and 15
M=$T_DIR/msg
mkdir -p "$M"
trap 'stop_peers; cleanup' EXIT

# bail NAME: a "not ok" for something the rest needs; stop everything.
bail() {
	fail "$1"
	log_tail
	stop_peers
	done_testing
}

now_ms() { date +%s%3N; }
# bf ID JQ: a value of batch ID's record
bf() { api GET "/api/batches/$1"; j ".batch | $2"; }
# rec CONTROL-ID: the inbox record of the order with that MSH-10
rec() {
	api GET '/api/hl7/messages?limit=1000'
	j "[.messages[] | select(.control_id == \"$1\")] | last"
}
ninbox() { api GET '/api/hl7/messages?limit=1000'; j '.messages | length'; }
nbatches() { api GET /api/status; j .batches.total; }
# counts: GET /api/status's batch counts, then the same counted from
# GET /api/batches (they must agree)
counts() {
	api GET /api/status
	j '.batches | "total=\(.total) \(.by_state | to_entries | map(select(.value > 0) | "\(.key)=\(.value)") | sort | join(" "))"'
	api GET '/api/batches?limit=1000'
	j '.batches | "total=\(length) \(group_by(.state) | map("\(.[0].state)=\(length)") | sort | join(" "))"'
}
metrics() {
	curl -s -H "Authorization: Bearer $TOK" "$base/metrics" >"$T_DIR/metrics"
}
# metric LINE-START: the value of the first /metrics line starting so
metric() {
	awk -v n="$1" 'index($0, n) == 1 { print $NF; f = 1; exit }
	    END { if (!f) print "none" }' "$T_DIR/metrics"
}
# send NAME: $M/NAME.hl7 over MLLP with mllp_send; the ACK's bytes in
# $M/NAME.ack
send() {
	mllp_send --loose --file "$M/$1.hl7" -p "$MLLP_PORT" 127.0.0.1 \
	    >"$M/$1.out" 2>&1
	s_rc=$?
	"$PY" -c 'import sys
d = open(sys.argv[1], "rb").read()
if b"\x0b" in d and b"\x1c" in d:
    sys.stdout.buffer.write(d[d.index(b"\x0b") + 1:d.rindex(b"\x1c")])' \
	    "$M/$1.out" >"$M/$1.ack"
	return $s_rc
}
# order NAME CONTROL-ID ACCESSION [PATIENT]: an ORM^O01 (for P)
order() {
	printf '%s\r' \
	    "MSH|^~\\&|RIS|MAINHOSP|VNAMIG|PACS|20240105093012||ORM^O01^ORM_O01|$2|P|2.5.1|||AL|NE" \
	    "PID|1||${4:-$PAT}^^^MAINHOSP^MR||PRE^FETCH||19600101|M" \
	    "PV1|1|O|RAD^X1^01^MAINHOSP" \
	    "ORC|NW|PL$2^RIS|$3^PACS||SC" \
	    "OBR|1|PL$2^RIS|$3^PACS|71020^CHEST 2 VIEWS PA AND LAT^C4||20240105090000" \
	    >"$M/$1.hl7"
}
jids() { printf '%s\n' "$@" | sort -n | jq -sc .; }	# jids ID...: [ids] sorted
suid() { echo "$ROOT.1.$1"; }				# suid N: study N's UID

# ---- the archives ----
# 15 studies of 2 series x 2 instances; studies 13-15 are patient P's,
# study 12 belongs to PFX1000 (P's ID is a prefix of it); study 16
# (PAT016) for the last part
gen_studies "$T_DIR/gen" 15 2 2 || bail "60 instances generated"
gen_studies "$T_DIR/gen16" 1 1 2 16 || bail "study 16 generated"
"$PY" - "$T_DIR/gen" "$PAT" <<'EOF' || bail "patient IDs rewritten"
import os, sys
import pydicom
d, pat = sys.argv[1:3]
for s, pid in ((12, pat + '0'), (13, pat), (14, pat), (15, pat)):
    for root, dirs, files in os.walk(os.path.join(d, 'st%03d' % s)):
        for f in files:
            p = os.path.join(root, f)
            ds = pydicom.dcmread(p)
            ds.PatientID = pid
            ds.save_as(p, write_like_original=True)
EOF
pass "60 instances generated (15 studies x 2 series x 2): studies 13-15 of patient $PAT, study 12 of ${PAT}0"

src_port=$(free_port)
tgt_port=$(free_port)
d_port=$(free_port)
QR_NAME=legacy
start_dcmqrscp LEGACY "$src_port" "$T_DIR/legacy" VNAMIG "$d_port" ||
    bail "the source dcmqrscp (LEGACY) runs"
QR_NAME=vna
start_dcmqrscp VNA "$tgt_port" "$T_DIR/vna" VNAMIG "$d_port" ||
    bail "the target dcmqrscp (VNA) runs"
load_dcmqrscp LEGACY "$src_port" "$T_DIR/gen" &&
    load_dcmqrscp LEGACY "$src_port" "$T_DIR/gen16" ||
    bail "LEGACY loaded with the 62 instances"
pass "dcmqrscp LEGACY (source, loaded with 62 instances) and VNA (target) run"

# ---- vnamigd: one slot, an HL7 sender mapped legacy -> vna ----
conf=$T_DIR/vnamigd.yaml
# mig_conf [STORAGE-EXTRA]
mig_conf() {
	cat >"$conf" <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/var
listen:
  dicom: { address: 127.0.0.1, port: $d_port }
  http:  { address: 127.0.0.1, port: 0 }
  mllp:  { address: 127.0.0.1, port: 0 }
limits:
  shutdown_grace: 5s
  dimse_timeout: 20s
storage:
  min_free: 1MiB
${1:-}
migration:
  max_studies: 1
  retrieve_attempts: 3
  send_attempts: 5
  retry_backoff: 200ms
  retry_backoff_max: 2s
peers:
  - { name: legacy, ae_title: LEGACY, host: 127.0.0.1, port: $src_port, role: source, retrieve: move }
  - { name: vna, ae_title: VNA, host: 127.0.0.1, port: $tgt_port, role: target, max_associations: 1 }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
hl7:
  senders:
    - { name: ris, app: RIS, facility: MAINHOSP, source: legacy, target: vna, priority: 5 }
YAML
}
mig_conf
start_daemon "$conf" || bail "vnamigd starts"
base="http://127.0.0.1:$HTTP_PORT"
[ -n "$MLLP_PORT" ] || bail "vnamigd listens for MLLP"
pass "vnamigd runs (max_studies 1; DICOM $DICOM_PORT, HTTP $HTTP_PORT, MLLP $MLLP_PORT)"

# ---- the queue: built with the source paused ----
api POST /api/sources/legacy/pause '{"reason":"prefetch.t: building the queue"}'
is "$code $(j .source.paused)" "200 true" "POST /api/sources/legacy/pause: 200, paused"
submit "other 1: studies 1-3 of PAT001 (priority 0)" \
    "{\"source\":\"legacy\",\"target\":\"vna\",\"priority\":0,\"patient_id\":\"PAT001\",\"study_instance_uids\":[\"$(suid 1)\",\"$(suid 2)\",\"$(suid 3)\"]}"
O1=$BID
submit "other 2: accessions ACC004-ACC006 (priority 0)" \
    '{"source":"legacy","target":"vna","priority":0,"accession_numbers":["ACC004","ACC005","ACC006"]}'
O2=$BID
submit "other 3: studies 7-9 of PAT007 (priority 0)" \
    "{\"source\":\"legacy\",\"target\":\"vna\",\"priority\":0,\"patient_id\":\"PAT007\",\"study_instance_uids\":[\"$(suid 7)\",\"$(suid 8)\",\"$(suid 9)\"]}"
O3=$BID
submit "other 4: studies 10-12 of ${PAT}0, an ID P's is a prefix of (priority 0)" \
    "{\"source\":\"legacy\",\"target\":\"vna\",\"priority\":0,\"patient_id\":\"${PAT}0\",\"study_instance_uids\":[\"$(suid 10)\",\"$(suid 11)\",\"$(suid 12)\"]}"
O4=$BID
submit "P's batch: study 13 of $PAT (priority 0)" \
    "{\"source\":\"legacy\",\"target\":\"vna\",\"priority\":0,\"patient_id\":\"$PAT\",\"study_instance_uids\":[\"$(suid 13)\"]}"
BP=$BID
submit "P's second batch: study 15 of $PAT (priority 0), to be paused" \
    "{\"source\":\"legacy\",\"target\":\"vna\",\"priority\":0,\"patient_id\":\"$PAT\",\"study_instance_uids\":[\"$(suid 15)\"]}"
BQ=$BID
OTHERS="$O1 $O2 $O3 $O4"
[ -n "$O1" ] && [ -n "$O2" ] && [ -n "$O3" ] && [ -n "$O4" ] && [ -n "$BP" ] &&
    [ -n "$BQ" ] || bail "every batch was taken"
api POST "/api/batches/$BQ/pause" '{"reason":"prefetch.t"}'
is "$code $(j .batch.state)" "200 paused" "batch $BQ paused"
api GET '/api/batches?limit=1000'
is "$(j "[.batches[] | select(.id >= $O1) | \"\(.id):\(.state):\(.priority)\"] | join(\" \")")" \
    "$O1:queued:0 $O2:queued:0 $O3:queued:0 $O4:queued:0 $BP:queued:0 $BQ:paused:0" \
    "with the source paused nothing starts: every batch queued at priority 0 ($BQ paused)"

# ---- the engine busy on the first batch, then the order ----
# The order goes out as soon as the source is open again: 12 studies
# of other patients are then ahead of P's on the one slot (each takes a
# tenth of a second or more), the engine on the first of them.
order ord1 PF0001 ACC014
api POST /api/sources/legacy/resume
rcode=$code
t0=$(now_ms)
send ord1
rc=$?
t1=$(now_ms)
# the source paused again: what follows is checked on a queue that
# stands still (a step under way finishes; nothing new starts there)
api POST /api/sources/legacy/pause '{"reason":"prefetch.t: checking"}'
pcode=$code
is "$rcode $pcode" "200 200" "the source resumed, the order sent, the source paused again for the checks"
ok $rc "mllp_send sends ORM^O01 PF0001 for $PAT (accession ACC014)"
is "$($PEER check "$M/ord1.hl7" "$M/ord1.ack" AA "" - 2>&1)" "" \
    "  its ACK: AA, MSA-2 PF0001, field by field"
api GET '/api/batches?limit=1000'
now=$(j "[.batches[] | select(.id <= $BQ) | \"\(.id):\(.state)\"] | join(\" \")")
# other patients' batches not started yet: queued then too; they must
# end after P's
WAITING=$(j "[.batches[] | select(.id > $O1 and .id < $BP and .state == \"queued\") | .id | tostring] | join(\" \")")
diag "batches after the order: $now"
[ -n "$WAITING" ]
ok $? "  batches of other patients wait behind it (queued: ${WAITING:-none})"
r=$(rec PF0001)
OB1=$(printf '%s' "$r" | jq -r '.batch_id // empty')
is "$(printf '%s' "$r" | jq -r '[.sender, .type, .ack, .outcome] | join(" ")')" \
    "ris ORM^O01 AA batch" "  inbox record: sender ris, ORM^O01, AA, outcome batch"
[ -n "$OB1" ] || bail "the order made a batch"
is "$(printf '%s' "$r" | jq -c '.promoted')" "$(jids "$BP" "$BQ")" \
    "  inbox record: promoted [$BP, $BQ] (P's queued and paused batches, nothing else)"
api GET "/api/batches/$OB1"
is "$(j '.batch | [(.priority | tostring), .patient_id, (.accession_numbers | join(",")), (.include_priors | tostring), .channel, .external_id, (.promoted_by // "-")] | join(" ")')" \
    "9 $PAT ACC014 true hl7:ris PF0001 -" \
    "  the order's batch $OB1: priority 9 (the sender's prefetch_priority: it brings the priors), patient $PAT, ACC014, include_priors, hl7:ris"
pa=$(j '.batch.prefetch_at_ms // 0')
[ "$pa" -ge "$t0" ] && [ "$pa" -le "$t1" ]
ok $? "  its prefetch_at_ms ($pa) is the order's arrival ($t0..$t1)"
# the engine's first DICOM operation (nothing talks DICOM before the
# resume) began before the order arrived
q=$(sed -n 's/^\([0-9T:.-]*Z\) .* qr-start .*/\1/p' "$T_DIR/daemon.log" | head -1)
qms=$(date -d "$q" +%s%3N 2>/dev/null)
[ -n "$qms" ] && [ "$qms" -lt "$pa" ]
ok $? "the engine was at work when the order came (its first C-FIND at ${qms:-?} ms, the order at $pa)"
api GET "/api/batches/$BP"
is "$(j '.batch | [(.priority | tostring), .promoted_by] | join(" ")')" "9 PF0001" \
    "P's batch $BP: priority 9, promoted_by PF0001"
pa_bp=$(j '.batch.prefetch_at_ms // 0')
[ "$pa_bp" -ge "$t0" ] && [ "$pa_bp" -le "$t1" ]
ok $? "  its prefetch_at_ms ($pa_bp) is the order's arrival ($t0..$t1)"
is "$(bf "$BQ" '[.state, (.priority | tostring), .promoted_by] | join(" ")')" "paused 9 PF0001" \
    "P's paused batch $BQ: still paused, priority 9, promoted_by PF0001"
for b in $OTHERS; do
	is "$(bf "$b" '[(.priority | tostring), (.promoted_by // "-"), (.prefetch_at_ms // "-" | tostring)] | join(" ")')" \
	    "0 - -" "  batch $b of another patient: priority 0, not promoted"
done

# ---- a second order for P: only what is not at 9 yet ----
# The source is paused: what is queued now stays queued. A new batch of
# P at priority 3, and the first order's batch if it has not started
# are what the second order moves up; not $BP and $BQ, nor the first
# order's batch (at 9 from the start: a pre-fetch).
submit "P's third batch: study 14 of $PAT (priority 3)" \
    "{\"source\":\"legacy\",\"target\":\"vna\",\"priority\":3,\"patient_id\":\"$PAT\",\"study_instance_uids\":[\"$(suid 14)\"]}"
BR=$BID
[ -n "$BR" ] || bail "P's third batch was taken"
ob1st=$(bf "$OB1" .state)
want2=$(jids "$BR")
order ord2 PF0002 ACC014
send ord2
ok $? "mllp_send sends a second ORM^O01 for $PAT (PF0002)"
is "$($PEER check "$M/ord2.hl7" "$M/ord2.ack" AA "" - 2>&1)" "" "  its ACK: AA, MSA-2 PF0002"
r=$(rec PF0002)
OB2=$(printf '%s' "$r" | jq -r '.batch_id // empty')
[ -n "$OB2" ] && [ "$OB2" != "$OB1" ] && [ "$OB2" != "$BR" ]
ok $? "  a batch of its own ($OB2)"
[ -n "$OB2" ] || bail "the second order made a batch"
is "$(printf '%s' "$r" | jq -c '.promoted // []')" "$want2" \
    "  inbox record: promoted $want2 ($BP and $BQ, at 9 already, not again)"
is "$(bf "$BP" '[(.priority | tostring), .promoted_by, (.prefetch_at_ms | tostring)] | join(" ")')" \
    "9 PF0001 $pa_bp" "  batch $BP unchanged: priority 9, promoted_by PF0001, the first order's prefetch_at_ms"
is "$(bf "$BQ" '[.state, (.priority | tostring), .promoted_by] | join(" ")')" "paused 9 PF0001" \
    "  batch $BQ unchanged: paused, promoted_by PF0001"
is "$(bf "$BR" '[.state, (.priority | tostring), .promoted_by] | join(" ")')" "queued 9 PF0002" \
    "  batch $BR: queued, priority 9, promoted_by PF0002"
is "$(bf "$OB1" '[(.priority | tostring), (.promoted_by // "-")] | join(" ")')" "9 -" \
    "  batch $OB1 ($ob1st): at 9 from the start, not promoted"
is "$(bf "$OB2" '[.state, (.priority | tostring), (.include_priors | tostring)] | join(" ")')" "queued 9 true" \
    "  batch $OB2: queued, priority 9 (a pre-fetch), include_priors"

# ---- the first order again: dedup ----
nb=$(nbatches)
ni=$(ninbox)
metrics
dup0=$(metric vnamig_hl7_duplicates_total)
cp "$M/ord1.hl7" "$M/ord1again.hl7"
send ord1again
ok $? "mllp_send sends ORM^O01 PF0001 again, byte for byte"
cmp -s "$M/ord1.ack" "$M/ord1again.ack" && [ -s "$M/ord1.ack" ]
ok $? "  the same ACK, byte for byte"
is "$(nbatches) $(ninbox)" "$nb $ni" "  no new batch, no new inbox record"
metrics
is "$(metric vnamig_hl7_duplicates_total)" "$((${dup0%.*} + 1))" "  vnamig_hl7_duplicates_total +1"
is "$(bf "$BP" '[(.priority | tostring), .promoted_by, (.prefetch_at_ms | tostring)] | join(" ")')" \
    "9 PF0001 $pa_bp" "  batch $BP unchanged"

api POST "/api/batches/$BQ/resume"
is "$code $(j '.batch | [.state, (.priority | tostring)] | join(" ")')" "200 queued 9" \
    "batch $BQ resumed: queued, still at priority 9"
api POST /api/sources/legacy/resume
is "$code" 200 "the source resumed"

# ---- everything ends ----
PS="$BP $BQ $OB1 $BR $OB2"	# P's batches
ALL="$OTHERS $PS"
for b in $ALL; do
	wait_batch "$b" 60
	is "$BSTATE" done "batch $b reaches done"
done

# The order the batches ended in: their batch.done leaves in the log.
curl -s -H "Authorization: Bearer $TOK" -o "$T_DIR/export.jsonl" "$base/api/audit/export"

# Every instance received was timed into vnamig_spool_durable_seconds (one
# observation per instance.received leaf), and nothing waits for the
# spool's writer now.
nrecv=$(jq -r 'select(.event == "instance.received") | .object.sop_instance' "$T_DIR/export.jsonl" | wc -l | tr -d ' ')
metrics
ok "$([ "$nrecv" -gt 0 ] && echo 0 || echo 1)" "instances were received ($nrecv instance.received leaves)"
is "$(metric 'vnamig_spool_durable_seconds_count ')" "$nrecv" \
    "  vnamig_spool_durable_seconds_count: one per instance received"
is "$(metric 'vnamig_spool_durable_seconds_bucket{le="+Inf"} ')" "$nrecv" "  its +Inf bucket the same"
is "$(metric 'vnamig_spool_backlog_bytes ')" 0 "  vnamig_spool_backlog_bytes 0: the writer has caught up"
grep -q '^# TYPE vnamig_spool_durable_seconds histogram' "$T_DIR/metrics"
ok $? "  vnamig_spool_durable_seconds is a histogram"
DONE=$(jq -r 'select(.event == "batch.done") | .object.batch_id' "$T_DIR/export.jsonl" | tr '\n' ' ')
diag "batch.done order: $DONE (waiting when the order came: $WAITING; P's: $PS)"
is "$(printf '%s\n' $DONE | sort -n | tr '\n' ' ')" "$(printf '%s\n' $ALL | sort -n | tr '\n' ' ')" \
    "one batch.done leaf per batch"
pos() { printf '%s\n' $DONE | grep -nx "$1" | cut -d: -f1; }
late=0
for p in $PS; do
	for w in $WAITING; do
		[ "$(pos "$p")" -lt "$(pos "$w")" ] || late=1
	done
done
ok $late "P's batches ($PS) end before every batch that was waiting when the order came ($WAITING)"
[ "$(pos "$BP")" -lt "$(pos "$OB2")" ] && [ "$(pos "$BR")" -lt "$(pos "$OB2")" ]
ok $? "  and the batches at 9 ($BP, $BR) before the second order's, at 5 ($OB2)"
# Study by study (one slot: studies run one after the other, and their
# study.done leaves come in that order): once the order is in, at most
# one study of another patient (the one under way when it came) ends
# before the last of P's studies; a study of a lower-priority batch must
# not start while P's batches still have work.
seq=$(jq -r --arg ps " $PS " 'if .event == "hl7.message" and .object.control_id == "PF0001" then "ORDER"
      elif .event == "study.done" then .object.batch_id as $b
        | (if ($ps | contains(" \($b) ")) then "P" else "o" end) + "\($b)"
      else empty end' "$T_DIR/export.jsonl" | tr '\n' ' ')
diag "study.done leaves (P: P's batches, o: others): $seq"
n=$(printf '%s\n' $seq | awk '/^ORDER$/ { on = 1; next } on && /^o/ { o++ } on && /^P/ { before = o } END { print before + 0 }')
case " $seq " in
*" ORDER "*) ;;
*) n="no hl7.message leaf for PF0001" ;;
esac
[ "$n" -le 1 ] 2>/dev/null
ok $? "after the order at most one study of another patient (the one under way then) ends before P's last (got: $n): no lower-priority study starts in between"

# ---- the reports ----
# instances of the studies named, from the generator's index
ninst() { for s in "$@"; do grep -c "	$(suid "$s")	" "$T_DIR/gen/index.tsv"; done | awk '{ n += $1 } END { print n + 0 }'; }
# checkrep ID "STUDIES" NAME: the report names those studies, adds up,
# and nothing failed, was quarantined or is pending
checkrep() {
	report "$1"
	want=$(for s in $2; do suid "$s"; done | sort | tr '\n' ' ')
	n=$(ninst $2)
	got=$(rj "$1" '. as $r | ([.studies[].study_uid] | sort | join(" ")) + " |" +
	    (.summary | [.expected, .migrated + .skipped_present + .quarantined + .failed + .pending,
	    .accounted_percent, .failed + .quarantined + .pending] | map(tostring) | join(" ")) +
	    " " + ($r.instances | length | tostring)')
	is "$got" "$want|$n $n 100 0 $n" \
	    "$3: studies $2; $n instances expected, outcomes add up, accounted 100%, none failed, quarantined or pending, a row each"
}
checkrep "$O1" "1 2 3" "batch $O1"
checkrep "$O2" "4 5 6" "batch $O2 (by accession)"
checkrep "$O3" "7 8 9" "batch $O3"
checkrep "$O4" "10 11 12" "batch $O4"
checkrep "$BP" "13" "P's batch $BP"
checkrep "$BQ" "15" "P's batch $BQ"
checkrep "$BR" "14" "P's batch $BR"
checkrep "$OB1" "13 14 15" "order batch $OB1 (ACC014 and P's priors)"
checkrep "$OB2" "13 14 15" "order batch $OB2"
for b in $OTHERS; do
	is "$(rj "$b" '.summary.migrated == .summary.expected')" true "batch $b: every instance migrated"
done
# P's 12 instances: each migrated by one of P's batches at least (a
# study that checked the target before another batch of P sent the same
# instances may send them again: counted in both)
got=$(for b in $PS; do rj "$b" '.instances[] | select(.outcome == "migrated") | .sop_instance_uid'; done | sort -u | tr '\n' ' ')
want=$(for st in 13 14 15; do grep "	$(suid "$st")	" "$T_DIR/gen/index.tsv" | cut -f4; done | sort | tr '\n' ' ')
is "$got" "$want" "P's 12 instances (studies 13-15) all migrated by P's batches"
mig=0
for b in $PS; do
	mig=$((mig + $(rj "$b" .summary.migrated)))
done
if [ "$mig" != 12 ]; then
	diag "P's batches migrated $mig instances in all:"
	for b in $PS; do
		diag "  batch $b: $(rj "$b" '[.instances | group_by(.study_uid)[] | "study \(.[0].study_uid | split(".") | last) \(map(.outcome) | group_by(.) | map("\(.[0])=\(length)") | join(","))"] | join("; ")')"
	done
fi
is "$(rj "$OB2" '.summary.skipped_present')" 12 "the second order's batch finds all of P's studies at the target"
at_vna=$("$PY" - "$T_DIR/vna" <<'EOF'
import os, sys
import pydicom
u = set()
for f in os.listdir(sys.argv[1]):
    try:
        u.add(str(pydicom.dcmread(os.path.join(sys.argv[1], f),
                                  stop_before_pixels=True).SOPInstanceUID))
    except Exception:
        pass
print('\n'.join(sorted(u)))
EOF
)
is "$(printf '%s\n' "$at_vna" | tr '\n' ' ')" "$(cut -f4 "$T_DIR/gen/index.tsv" | sort | tr '\n' ' ')" \
    "VNA holds the 60 instances (by SOP Instance UID, read with pydicom)"

# ---- the metric ----
metrics
H=vnamig_prefetch_first_retrieval_seconds
nlog=$(grep -c ' mig-prefetch ' "$T_DIR/daemon.log")
cnt=$(metric "${H}_count")
diag "$(grep "^$H" "$T_DIR/metrics")" "$(grep ' mig-prefetch ' "$T_DIR/daemon.log")"
[ "$cnt" != none ] && [ "${cnt%.*}" -ge 2 ]
ok $? "$H: a count ($cnt) of at least 2 (study 13 retrieved by $BP, 14 and 15 by another of P's)"
is "$cnt" "$nlog" "  one observation per mig-prefetch line in the log"
obs=$(sed -n 's/.* mig-prefetch .*batch=\([0-9]*\) .*/\1/p' "$T_DIR/daemon.log" | sort -n | tr '\n' ' ')
bad=
for b in $obs; do
	case " $PS " in *" $b "*) ;; *) bad="$bad $b" ;; esac
done
is "${bad:-none}" none "  observed for P's batches only ($obs)"
case " $obs " in
*" $BP "*) pass "  observed for the promoted batch $BP" ;;
*) fail "  observed for the promoted batch $BP" ;;
esac
bad=$(sed -n 's/.* mig-prefetch .*first_retrieval_s=\([-0-9.]*\).*/\1/p' "$T_DIR/daemon.log" |
    awk '!($1 >= 0 && $1 < 60)' | tr '\n' ' ')
is "${bad:-none}" none "  each first retrieval came under 60 s after its order (mig-prefetch first_retrieval_s)"
is "$(metric "${H}_bucket{le=\"60\"}")" "$cnt" "  every observation in the le=\"60\" bucket"
awk -v s="$(metric "${H}_sum")" -v n="$cnt" 'BEGIN { exit !(s >= 0 && s < 60 * n) }'
ok $? "  ${H}_sum under 60 s each"

c=$(counts)
is "$(printf '%s' "$c" | tail -1)" "$(printf '%s' "$c" | head -1)" \
    "GET /api/status's batch counts agree with GET /api/batches"

# ---- an order that meets the engine's own write of the batch ----
# With storage.commit_interval the engine's write of a batch it has
# just resolved (queued -> running) waits in a commit group a while; an
# order for the batch's patient comes meanwhile. Whether the batch is
# then promoted or counted as started already, neither write may undo
# the other: the inbox record and the batch agree on the promotion, the
# batch is not taken back to queued (it starts once), and the batch
# counts stay right.
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops (exit 0)"
cat "$T_DIR/daemon.log" >>"$T_DIR/daemon-earlier.log"
mig_conf "  commit_interval: 300ms"
start_daemon "$conf" || bail "vnamigd starts again (storage.commit_interval 300ms)"
base="http://127.0.0.1:$HTTP_PORT"
api POST /api/sources/legacy/pause
is "$code" 200 "the source paused"
submit "a batch of PAT016: study 16 (priority 0)" \
    "{\"source\":\"legacy\",\"target\":\"vna\",\"priority\":0,\"patient_id\":\"PAT016\",\"study_instance_uids\":[\"$(suid 16)\"]}"
BX=$BID
[ -n "$BX" ] || bail "the batch of PAT016 was taken"
order ord3 PF0003 ACC016 PAT016
rm -f "$T_DIR/go"
# an MLLP sender connected beforehand, sending the moment $T_DIR/go is there
"$PY" - "$MLLP_PORT" "$M/ord3.hl7" "$T_DIR/go" "$M/ord3.ack" <<'EOF' &
import os, socket, sys, time
port, msg, go, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.create_connection(('127.0.0.1', port), timeout=30)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
open(out + '.ready', 'w').close()
while not os.path.exists(go):
    time.sleep(0.002)
s.sendall(b'\x0b' + open(msg, 'rb').read() + b'\x1c\r')
b = b''
while b'\x1c\r' not in b:
    d = s.recv(65536)
    if not d:
        break
    b += d
with open(out, 'wb') as f:
    if b'\x0b' in b and b'\x1c' in b:
        f.write(b[b.index(b'\x0b') + 1:b.index(b'\x1c')])
EOF
sender=$!
wait_until 10 test -e "$M/ord3.ack.ready"
api POST /api/sources/legacy/resume
: >"$T_DIR/go"
wait "$sender"
is "$code" 200 "the source resumed (the engine takes batch $BX at once), and at once an order for PAT016 (PF0003)"
is "$($PEER check "$M/ord3.hl7" "$M/ord3.ack" AA "" - 2>&1)" "" "  its ACK: AA"
r=$(rec PF0003)
OX=$(printf '%s' "$r" | jq -r '.batch_id // empty')
promo=$(printf '%s' "$r" | jq -c '.promoted // []')
[ -n "$OX" ] || bail "the order made a batch"
wait_batch "$BX" 60
is "$BSTATE" done "batch $BX reaches done"
wait_batch "$OX" 60
is "$BSTATE" done "the order's batch $OX reaches done"
if [ "$promo" = "[$BX]" ]; then
	want="9 PF0003"
else
	want="0 -"
fi
is "$promo $(bf "$BX" '[(.priority | tostring), (.promoted_by // "-")] | join(" ")')" "$promo $want" \
    "  the inbox record (promoted $promo) and batch $BX agree: priority $want"
curl -s -H "Authorization: Bearer $TOK" -o "$T_DIR/export2.jsonl" "$base/api/audit/export"
is "$(jq -r "select(.event == \"batch.started\" and .object.batch_id == $BX) | .event" "$T_DIR/export2.jsonl" | wc -l | tr -d ' ')" 1 \
    "  batch $BX started once (one batch.started leaf): the promotion did not take it back to queued"
c=$(counts)
is "$(printf '%s' "$c" | tail -1)" "$(printf '%s' "$c" | head -1)" \
    "  GET /api/status's batch counts agree with GET /api/batches"
report "$BX"
report "$OX"
is "$(for b in $BX $OX; do rj "$b" '.instances[] | select(.outcome == "migrated") | .sop_instance_uid'; done | sort -u | tr '\n' ' ')" \
    "$(cut -f4 "$T_DIR/gen16/index.tsv" | sort | tr '\n' ' ')" \
    "  study 16's 2 instances migrated (by $BX or $OX)"
is "$(for b in $BX $OX; do rj "$b" '.summary | .expected == .migrated + .skipped_present and .accounted_percent == 100'; done | tr '\n' ' ')" \
    "true true " "  both reports add up: every instance migrated or found at the target"

stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops (exit 0)"
! cat "$T_DIR/daemon-earlier.log" "$T_DIR/daemon.log" |
    grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer'
ok $? "no sanitizer report in vnamigd's logs"
stop_peers
done_testing
