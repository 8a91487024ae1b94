#!/bin/sh
# migfault.t — the migration engine's fault handling (TESTING.md, fault 3):
# DCMTK's dcmqrscp as the source (LEGACY, generated studies) and
# t/faketarget.py as targets that misbehave on demand, one instance per
# set of faults (each its own port, AE title and peer):
#
#   a  0xA700 once for one instance: retried after a backoff, migrated
#   b  0xC000 for one instance: quarantined target_rejected at once (with
#      its zstd copy and the quarantine API), the rest of the study goes on
#   c  0x0000 but not kept: quarantined verify_mismatch
#   d  A-ABORT after the 2nd C-STORE: every instance migrated once
#   e  b's and c's studies again, faults kept: the others skipped_present,
#      the rejected and lost ones sent again and quarantined again
#   f  0xA700 every time: quarantined target_rejected after send_attempts,
#      the waits doubling (retry_backoff 200ms, then 400ms)
#   g  FAKEA killed and restarted empty while the pool may hold an idle
#      association with it: study 1 again, all migrated
#
# Read-back verification (verify: readback, readback_percent 100,
# retrieve: get: each instance fetched back with an IMAGE-level C-GET and
# compared with what was sent):
#
#   h  a clean target, verify_level bytes: studies 1 (explicit VR LE) and
#      2 (implicit VR LE) migrated, every row level "bytes" with
#      target_sha256 == source_sha256
#   i  one instance kept with a byte flipped, verify_level bytes:
#      quarantined verify_mismatch naming both SHA-256s, the others "bytes"
#   j  one instance kept re-encoded (explicit VR LE in, implicit VR LE
#      kept and returned: other bytes, the same dataset): verify_level
#      dataset migrates it at level "dataset"; verify_level bytes
#      quarantines it verify_mismatch
#   k  one instance the C-FIND finds but the C-GET does not return:
#      quarantined verify_mismatch, "did not return"
#
# h to k run one after the other; should vnamigd die in one, it is
# started again on a fresh data dir so that the next is judged on its own.
#
# Every batch's report must account for each instance once and add up to
# 100%.
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
# (report, rj, report_check; its own api, submit and wait_batch below)
. "$top_srcdir/t/miglib.sh"
export LC_ALL=C

FT=$top_srcdir/t/faketarget.py
FT_PIDS=

stop_fakes() {
	for p in $FT_PIDS; do
		qp_stop "$p"
	done
	FT_PIDS=
}
trap 'stop_fakes; stop_peers; cleanup' EXIT

# bail NAME: a "not ok" for something the rest needs; stop everything.
bail() {
	fail "$1"
	[ -s "$T_DIR/daemon.log" ] && diag "last lines of the daemon log:" &&
	    tail -n 30 "$T_DIR/daemon.log" | sed 's/^/#   /'
	stop_fakes
	stop_peers
	done_testing
}

# start_fake NAME PORT [OPTIONS...]: faketarget.py, AE title FAKE<NAME>,
# on PORT; its log $T_DIR/fake-NAME.log, its files $T_DIR/fake-NAME/.
# Sets FT_PID (and adds it to FT_PIDS).
start_fake() {
	sf_n=$1
	sf_p=$2
	shift 2
	qp_port_free "$sf_p" || return 1
	: >"$T_DIR/fake-$sf_n.log"
	"$PY" "$FT" "$sf_p" "FAKE$sf_n" "$T_DIR/fake-$sf_n.log" \
	    --dir "$T_DIR/fake-$sf_n" "$@" </dev/null \
	    >"$T_DIR/fake-$sf_n.err" 2>&1 &
	FT_PID=$!
	FT_PIDS="$FT_PIDS $!"
	qp_wait "$!" 10 echoscu -aet VNAMIG -aec "FAKE$sf_n" 127.0.0.1 \
	    "$sf_p" || qp_fail "faketarget $sf_n on port $sf_p does not \
answer C-ECHO" "$T_DIR/fake-$sf_n.err"
}

# api METHOD PATH [BODY]: one request with the operator key; sets code
# and out (the body).
api() {
	rm -f "$T_DIR/b"
	if [ $# -ge 3 ]; then
		code=$(curl -s -m 10 -o "$T_DIR/b" -w '%{http_code}' -X "$1" \
		    -H "Authorization: Bearer $TOK" \
		    -H 'Content-Type: application/json' \
		    --data-binary "$3" "$base$2")
	else
		code=$(curl -s -m 10 -o "$T_DIR/b" -w '%{http_code}' -X "$1" \
		    -H "Authorization: Bearer $TOK" "$base$2")
	fi
	out=$(cat "$T_DIR/b" 2>/dev/null)
}

# submit NAME TARGET STUDY...: POST /api/batches from legacy to TARGET;
# sets BID (empty when refused).
submit() {
	sb_name=$1
	sb_tgt=$2
	shift 2
	sb_l=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
	api POST /api/batches "{\"source\":\"legacy\",\"target\":\"$sb_tgt\",\"study_instance_uids\":$sb_l}"
	BID=$(j '.batch_id // empty')
	if [ "$code" = 201 ] && [ -n "$BID" ]; then
		pass "$sb_name: 201, batch $BID"
	else
		fail "$sb_name: 201 with a batch_id"
		diag "HTTP $code: $out"
		BID=
	fi
}

# wait_batch ID FAKE [SECONDS]: poll until the batch ends (done, failed,
# cancelled); sets BSTATE. Otherwise, or on another end than done: the
# batch, its report's summary and the logs' tails as diag.
wait_batch() {
	wb_n=$((${3:-30} * 5))
	while :; do
		api GET "/api/batches/$1"
		BSTATE=$(j '.batch.state // empty')
		case $BSTATE in
		done|failed|cancelled) break ;;
		esac
		if [ "$code" = 000 ]; then
			BSTATE="$BSTATE (vnamigd does not answer)"
			break
		fi
		wb_n=$((wb_n - 1))
		if [ "$wb_n" -le 0 ]; then
			BSTATE="$BSTATE (timeout)"
			break
		fi
		sleep 0.2
	done
	[ "$BSTATE" = "done" ] && return 0
	diag "batch $1: $BSTATE; GET /api/batches/$1:" "$out"
	api GET "/api/batches/$1/report"
	diag "its report's summary: $(j '.summary' | tr -d '\n')"
	diag "last lines of the daemon log:"
	tail -n 30 "$T_DIR/daemon.log" | sed 's/^/#   /'
	diag "last lines of $T_DIR/fake-$2.log:"
	tail -n 15 "$T_DIR/fake-$2.log" | sed 's/^/#   /'
	return 1
}

# row ID SOP FIELD: a field of SOP's instance row in batch ID's report.
row() { rj "$1" ".instances[] | select(.sop_instance_uid == \"$2\") | .$3"; }

# (report_check, t/miglib.sh: a batch's report adds up)

# stores NAME SOP: how many C-STOREs of SOP faketarget NAME answered,
# with their statuses ("0xa700 0x0000").
stores() {
	grep "^store $2 " "$T_DIR/fake-$1.log" | awk '{print $3}' |
	    tr '\n' ' ' | sed 's/ $//'
}

# qcopy FILE: the SOP Instance UID in a quarantine copy (zstd; a Part 10
# file or a bare dataset).
qcopy() {
	zstd -qdc "$1" >"$T_DIR/qcopy.dcm" 2>/dev/null || return 1
	"$PY" - "$T_DIR/qcopy.dcm" <<'EOF'
import sys, warnings
import pydicom
warnings.simplefilter('ignore')
b = open(sys.argv[1], 'rb').read()
try:
    ds = pydicom.dcmread(sys.argv[1])
except Exception:
    from pydicom.filereader import read_dataset
    import io
    ds = None
    for imp in (False, True):
        try:
            ds = read_dataset(io.BytesIO(b), imp, True)
            if 'SOPInstanceUID' in ds:
                break
        except Exception:
            pass
print(ds.SOPInstanceUID if ds is not None and 'SOPInstanceUID' in ds
      else '')
EOF
}

# ---- the source ----
gen_studies "$T_DIR/gen" 5 2 3
ok $? "30 instances generated (5 studies x 2 series x 3; CT explicit LE, MR implicit LE)"
src_port=$(free_port)
d_port=$(free_port)
QR_NAME=legacy
start_dcmqrscp LEGACY "$src_port" "$T_DIR/legacy" VNAMIG "$d_port" ||
    bail "the source dcmqrscp (LEGACY) runs"
load_dcmqrscp LEGACY "$src_port" "$T_DIR/gen" ||
    bail "LEGACY loaded with the 30 instances"
pass "LEGACY (dcmqrscp) runs on $src_port with the 30 instances"

# ---- the targets ----
S_A700=$ROOT.3.1.1.2		# a: 0xA700 once
S_REJ=$ROOT.3.2.1.2		# b: 0xC000
S_LOST=$ROOT.3.3.2.1		# c: success, not kept
S_FULL=$ROOT.3.5.2.3		# f: 0xA700 always
S_COR=$ROOT.3.3.1.2		# i: kept corrupted
S_RE=$ROOT.3.5.1.1		# j: kept re-encoded (study 5: explicit VR LE)
S_HIDE=$ROOT.3.4.2.3		# k: kept, not returned by C-GET
pa=$(free_port)
pbc=$(free_port)
pd=$(free_port)
pf=$(free_port)
ph=$(free_port)
pi=$(free_port)
pjd=$(free_port)
pjb=$(free_port)
pk=$(free_port)
start_fake A "$pa" --a700-once "$S_A700" &&
    pid_a=$FT_PID &&
    start_fake BC "$pbc" --reject "$S_REJ" --lose "$S_LOST" &&
    start_fake D "$pd" --abort-after 2 &&
    start_fake F "$pf" --a700 "$S_FULL" &&
    start_fake H "$ph" &&
    start_fake I "$pi" --corrupt "$S_COR" &&
    pid_i=$FT_PID &&
    start_fake JD "$pjd" --reencode "$S_RE" &&
    start_fake JB "$pjb" --reencode "$S_RE" &&
    start_fake K "$pk" --hide "$S_HIDE" --no-uid-lists ||
    bail "the faketargets run"
pass "9 faketargets run (A $pa, BC $pbc, D $pd, F $pf, H $ph, I $pi, JD $pjd, JB $pjb, K $pk)"

# ---- vnamigd ----
conf=$T_DIR/vnamigd.yaml
CONF0=$conf		# start_daemon sets conf
cat >"$conf" <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/var
listen:
  dicom: { address: 127.0.0.1, port: $d_port }
  http:  { address: 127.0.0.1, port: 0 }
limits:
  shutdown_grace: 5s
  dimse_timeout: 10s
storage:
  min_free: 1MiB
migration:
  max_studies: 2
  retrieve_attempts: 3
  send_attempts: 3
  retry_backoff: 200ms
  retry_backoff_max: 1s
peers:
  - { name: legacy, ae_title: LEGACY, host: 127.0.0.1, port: $src_port, role: source, retrieve: move }
  - { name: fa, ae_title: FAKEA, host: 127.0.0.1, port: $pa, role: target }
  - { name: fbc, ae_title: FAKEBC, host: 127.0.0.1, port: $pbc, role: target }
  - { name: fd, ae_title: FAKED, host: 127.0.0.1, port: $pd, role: target }
  - { name: ff, ae_title: FAKEF, host: 127.0.0.1, port: $pf, role: target }
  - { name: fh, ae_title: FAKEH, host: 127.0.0.1, port: $ph, role: target, retrieve: get, verify: readback, readback_percent: 100, verify_level: bytes }
  - { name: fi, ae_title: FAKEI, host: 127.0.0.1, port: $pi, role: target, retrieve: get, verify: readback, readback_percent: 100, verify_level: bytes }
  - { name: fjd, ae_title: FAKEJD, host: 127.0.0.1, port: $pjd, role: target, retrieve: get, verify: readback, readback_percent: 100, verify_level: dataset }
  - { name: fjb, ae_title: FAKEJB, host: 127.0.0.1, port: $pjb, role: target, retrieve: get, verify: readback, readback_percent: 100, verify_level: bytes }
  - { name: fk, ae_title: FAKEK, host: 127.0.0.1, port: $pk, role: target, retrieve: get, verify: readback, readback_percent: 100 }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
mig_start bail

# ---- a: 0xA700 once: a retry after the backoff, then success ----
submit "a: study 1 to FAKEA (0xA700 once for ...${S_A700#"$ROOT"})" fa "$ROOT.1.1"
b_a=$BID
wait_batch "$b_a" A
is "$BSTATE" "done" "a: batch $b_a reaches done"
report "$b_a"
report_check "$b_a" a 6 migrated
is "$(row "$b_a" "$S_A700" status)" 0 "a: its row's status is 0 in the end"
is "$(stores A "$S_A700")" "0xa700 0x0000" \
    "a: FAKEA answered its C-STOREs 0xA700, then 0x0000"
grep -q "mig-send-retry.*batch=$b_a " "$T_DIR/daemon.log"
ok $? "a: the daemon logs the retry (mig-send-retry)"

# ---- b: 0xC000: quarantined at once, the study goes on ----
submit "b: study 2 to FAKEBC (0xC000 for ...${S_REJ#"$ROOT"})" fbc "$ROOT.1.2"
b_b=$BID
wait_batch "$b_b" BC
is "$BSTATE" "done" "b: batch $b_b reaches done"
report "$b_b"
report_check "$b_b" b 6 migrated "$S_REJ=quarantined:target_rejected:49152"
like "$(row "$b_b" "$S_REJ" detail)" '0xc000' "b: its detail names 0xc000"
is "$(stores BC "$S_REJ")" 0xc000 "b: sent once (no retry of a permanent failure)"
api GET "/api/quarantine?reason=target_rejected&batch=$b_b"
is "$code/$(j '[.items[] | select(.sop_instance_uid == "'"$S_REJ"'")] | length')" \
    200/1 "b: GET /api/quarantine?reason=target_rejected&batch=$b_b lists it"
is "$(j '[.items[] | select(.sop_instance_uid != "'"$S_REJ"'")] | length')" \
    0 "  and nothing else"
qid=$(j '.items[0].id // empty')
qfile=$(j '.items[0].file // empty')
is "$(j '.items[0] | "\(.batch) \(.study_uid) \(.reason) \(.status)"')" \
    "$b_b $ROOT.1.2 target_rejected 49152" "  with its batch, study, reason and status"
api GET "/api/quarantine?reason=verify_mismatch&batch=$b_b"
is "$code/$(j '.items | length')" 200/0 "b: nothing quarantined verify_mismatch in batch $b_b"
api GET "/api/quarantine/${qid:-0}"
is "$code/$(j '.item.sop_instance_uid')/$(j '.item.reason')" \
    "200/$S_REJ/target_rejected" "b: GET /api/quarantine/$qid answers it"
is "$(j '.item | "\(.batch) \(.study_uid) \(.status) \(.file)"')" \
    "$b_b $ROOT.1.2 $(row "$b_b" "$S_REJ" status) $qfile" \
    "  the same batch, study, status and file as the list and the report row"
if [ -n "$qfile" ] && [ -s "$qfile" ]; then
	pass "b: its copy exists ($qfile)"
	like "$(basename "$qfile")" "^$S_REJ-[0-9a-f]{16}-[0-9]+\.dcm\.zst\$" \
	    "b: the copy is named SOP-SEGMENT-OFFSET.dcm.zst"
	is "$(qcopy "$qfile")" "$S_REJ" "b: zstd -dc of the copy holds its SOP Instance UID"
else
	fail "b: its copy exists (file: '$qfile')"
fi
api GET "/api/quarantine/999999"
is "$code" 404 "b: GET /api/quarantine/999999: 404"

# ---- c: success but not kept: verify_mismatch ----
submit "c: study 3 to FAKEBC (...${S_LOST#"$ROOT"} lost)" fbc "$ROOT.1.3"
b_c=$BID
wait_batch "$b_c" BC
is "$BSTATE" "done" "c: batch $b_c reaches done"
report "$b_c"
report_check "$b_c" c 6 migrated "$S_LOST=quarantined:verify_mismatch:0"
api GET "/api/quarantine?reason=verify_mismatch&batch=$b_c"
is "$code/$(j '[.items[].sop_instance_uid] | join(" ")')" "200/$S_LOST" \
    "c: GET /api/quarantine?reason=verify_mismatch&batch=$b_c lists it alone"

# ---- d: A-ABORT after the 2nd C-STORE ----
submit "d: study 4 to FAKED (A-ABORT after 2 C-STOREs)" fd "$ROOT.1.4"
b_d=$BID
wait_batch "$b_d" D
is "$BSTATE" "done" "d: batch $b_d reaches done"
report "$b_d"
report_check "$b_d" d 6 migrated
is "$(grep -c '^abort$' "$T_DIR/fake-D.log")" 1 "d: FAKED aborted one association"
# FAKED aborts right after answering: with the next C-STORE in flight
# that one is retried after the backoff; when the association was idle
# by then (sent while the study was still being retrieved, and nothing
# left to send on it), the pool drops it and nothing needs a retry
grep -qE "mig-send-retry batch=$b_d .*abort|pool-dropped peer=fd .*abort" \
    "$T_DIR/daemon.log"
ok $? "d: the daemon logs a retry after the A-ABORT (mig-send-retry), or drops the idle association (pool-dropped)"
is "$(find "$T_DIR/fake-D" -name '*.dcm' | wc -l)" 6 "d: FAKED holds the 6 instances"
n=$(grep -c '^store ' "$T_DIR/fake-D.log")
[ "$n" -ge 6 ] && [ "$n" -le 8 ]
ok $? "d: 6 to 8 C-STOREs at FAKED ($n: the aborted one resent at most)"

# ---- e: studies 2 and 3 again to FAKEBC, faults kept ----
nb=$(grep -c '^store ' "$T_DIR/fake-BC.log")
submit "e: studies 2 and 3 again to FAKEBC" fbc "$ROOT.1.2" "$ROOT.1.3"
b_e=$BID
wait_batch "$b_e" BC
is "$BSTATE" "done" "e: batch $b_e reaches done"
report "$b_e"
report_check "$b_e" e 12 skipped_present "$S_REJ=quarantined:target_rejected:49152" \
    "$S_LOST=quarantined:verify_mismatch:0"
is "$(stores BC "$S_REJ")/$(stores BC "$S_LOST")" "0xc000 0xc000/0x0000 0x0000" \
    "e: the rejected and the lost one were sent again"
is "$(($(grep -c '^store ' "$T_DIR/fake-BC.log") - nb))" 2 "e: and nothing else"
api GET "/api/quarantine?reason=target_rejected"
is "$(j '[.items[] | select(.sop_instance_uid == "'"$S_REJ"'") | .batch] | sort | map(tostring) | join(" ")')" \
    "$b_b $b_e" "e: GET /api/quarantine?reason=target_rejected: one item per batch"
qfile=$(j '[.items[] | select(.batch == '"${b_e:-0}"')][0].file // empty')
is "$(qcopy "$qfile")" "$S_REJ" "e: batch $b_e's item has its own copy ($qfile)"
qid_e=$(j '[.items[] | select(.batch == '"${b_e:-0}"')][0].id // empty')

# ---- e2: acting on items: one action per item, a retry end to end ----
# 6 rejects of b's item at once: one is taken; the others are told 409
# (each was taken before, audited, the last write winning); the item is
# then rejected, with one audit leaf, and cannot be retried.
rej_pids=
for i in 1 2 3 4 5 6; do
	curl -s -m 10 -o /dev/null -w '%{http_code}\n' -X POST \
	    -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' \
	    --data-binary "{\"note\":\"operator $i\"}" \
	    "$base/api/quarantine/${qid:-0}/reject" >"$T_DIR/rej.$i" &
	rej_pids="$rej_pids $!"
done
# shellcheck disable=SC2086
wait $rej_pids
is "$(cat "$T_DIR"/rej.* | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')" "200:1 409:5 " \
    "e2: 6 rejects of item $qid at once: one taken (200), five refused (409)"
api GET "/api/quarantine/${qid:-0}"
is "$(j '.item.state')" rejected "e2: the item is rejected"
curl -s -m 10 -H "Authorization: Bearer $TOK" -o "$T_DIR/audit-e2.jsonl" "$base/api/audit/export"
is "$(jq -r 'select(.event == "quarantine.reject" and .object.id == '"${qid:-0}"') | .actor.key' "$T_DIR/audit-e2.jsonl" | wc -l | tr -d ' ')" 1 \
    "e2: one quarantine.reject audit leaf for it"
api POST "/api/quarantine/${qid:-0}/retry" '{}'
is "$code/$(j .error.code)" "409/invalid_transition" "e2: a rejected item cannot be retried (409)"
# batch e's item retried: the instance is fetched and sent again, FAKEBC
# refuses it again (0xC000), and it is quarantined again, in a new item
nb=$(grep -c '^store ' "$T_DIR/fake-BC.log")
api POST "/api/quarantine/${qid_e:-0}/retry" '{"note":"target fixed?"}'
is "$code/$(j .item.state)" "200/retried" "e2: batch $b_e's item retried (200)"
wait_batch "$b_e" BC
is "$BSTATE" "done" "e2: batch $b_e runs again and is done"
is "$(($(grep -c '^store ' "$T_DIR/fake-BC.log") - nb))/$(stores BC "$S_REJ" | awk '{ print $NF }')" "1/0xc000" \
    "e2: the retried instance was sent once more, and refused again"
api GET "/api/quarantine?reason=target_rejected&batch=$b_e"
is "$(j '[.items[] | .state] | sort | join(" ")')" "open retried" \
    "e2: batch $b_e: the retried item, and a new open one"

# ---- f: 0xA700 every time: quarantined after send_attempts ----
submit "f: study 5 to FAKEF (0xA700 always for ...${S_FULL#"$ROOT"})" ff "$ROOT.1.5"
b_f=$BID
wait_batch "$b_f" F
is "$BSTATE" "done" "f: batch $b_f reaches done"
report "$b_f"
report_check "$b_f" f 6 migrated "$S_FULL=quarantined:target_rejected:42752"
is "$(stores F "$S_FULL")" "0xa700 0xa700 0xa700" "f: 3 C-STOREs (send_attempts)"
like "$(row "$b_f" "$S_FULL" detail)" 'after 3 attempts' "f: its detail says after 3 attempts"
# the waits before the 2nd and 3rd C-STORE: at least retry_backoff (200ms),
# then twice that (the daemon's log: each mig-send-retry, then the
# quarantine)
gaps=$(grep -E "(mig-send-retry|mig-quarantined) batch=$b_f " "$T_DIR/daemon.log" |
    "$PY" -c 'import sys, datetime
t = [datetime.datetime.strptime(l.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
     for l in sys.stdin]
print(" ".join(str(int((b - a).total_seconds() * 1000)) for a, b in zip(t, t[1:])))')
like "$gaps" '^(2[0-9][0-9]|[3-9][0-9][0-9]|[0-9]{4,}) ([4-9][0-9][0-9]|[0-9]{4,})$' \
    "f: the retries waited >= 200 ms, then >= 400 ms (ms: $gaps)"
api GET "/api/quarantine?reason=target_rejected&batch=$b_f"
is "$(j '[.items[].sop_instance_uid] | join(" ")')" "$S_FULL" "f: the quarantine lists it"

# ---- g: FAKEA restarted (empty, no faults) under a pooled association ----
# The pool may still hold an idle association with FAKEA from a: the
# kill -9 leaves it dead; study 1 again must go through on a new one.
kill -KILL "$pid_a" 2>/dev/null
wait "$pid_a" 2>/dev/null
rest=
for p in $FT_PIDS; do
	[ "$p" = "$pid_a" ] || rest="$rest $p"
done
FT_PIDS=$rest
mv "$T_DIR/fake-A.log" "$T_DIR/fake-A1.log"
start_fake A "$pa" || bail "g: FAKEA restarts on $pa"
submit "g: study 1 again to FAKEA (restarted, empty)" fa "$ROOT.1.1"
b_g=$BID
wait_batch "$b_g" A
is "$BSTATE" "done" "g: batch $b_g reaches done"
report "$b_g"
report_check "$b_g" g 6 migrated
is "$(grep -c '^store .* 0x0000$' "$T_DIR/fake-A.log")" 6 \
    "g: the new FAKEA stored the 6 instances once each"

# ---- read-back verification (h to k) ----
# levels ID: "SOP=LEVEL" for each row of batch ID's report, sorted.
levels() {
	rj "$1" '.instances[] | "\(.sop_instance_uid)=\(.level)"' | sort |
	    tr '\n' ' ' | sed 's/ $//'
}
# want_levels ID N LEVEL [SOP=LEVEL...]: what levels should give for
# batch ID's N instances ("N rows" when there are not N): every row at
# LEVEL but the SOPs named.
want_levels() {
	wl_id=$1
	wl_n=$2
	wl_l=$3
	shift 3
	if [ "$(rj "$wl_id" '.instances | length')" != "$wl_n" ]; then
		echo "$wl_n rows"
		return
	fi
	rj "$wl_id" '.instances[].sop_instance_uid' | while read -r wl_s; do
		wl_v=$wl_l
		for wl_a in "$@"; do
			[ "${wl_a%%=*}" = "$wl_s" ] && wl_v=${wl_a#*=}
		done
		echo "$wl_s=$wl_v"
	done | sort | tr '\n' ' ' | sed 's/ $//'
}
# same_sha ID [SOP...]: the rows, but the SOPs named, whose target_sha256
# is not their source_sha256 (or either is missing); empty when none,
# "no rows" when the report has none.
same_sha() {
	ss_id=$1
	shift
	ss_x=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
	if [ "$(rj "$ss_id" '.instances | length')" = 0 ] ||
	    [ -z "$(rj "$ss_id" '.instances | length')" ]; then
		echo "no rows"
		return
	fi
	rj "$ss_id" '.instances[] | select(.sop_instance_uid as $s |
	    '"$ss_x"' | index($s) | not) | select(.source_sha256 == null or
	    .target_sha256 != .source_sha256) | .sop_instance_uid' |
	    tr '\n' ' ' | sed 's/ $//'
}
# file_sha FILE: the SHA-256 of a faketarget's kept dataset bytes, padded
# to an even length as sent.
file_sha() {
	"$PY" -c 'import hashlib, sys
d = open(sys.argv[1], "rb").read()
print(hashlib.sha256(d + b"\0" * (len(d) & 1)).hexdigest())' "$1" 2>/dev/null
}
# both_shas NAME DETAIL SRC TGT: a TAP line: DETAIL names both SHA-256s.
both_shas() {
	case $2 in
	*"$3"*"$4"*|*"$4"*"$3"*)
		like "$3/$4" '^[0-9a-f]{64}/[0-9a-f]{64}$' "$1: its detail names both SHA-256s"
		;;
	*)
		fail "$1: its detail names both SHA-256s"
		diag "detail: $2" "source_sha256: $3" "target_sha256: $4"
		;;
	esac
}
# gets NAME: the faketarget's C-GETs, "N LEVEL n" for each kind, sorted
# ("1 IMAGE 0, 5 IMAGE 1": five sent one instance, one none).
gets() {
	sed -n 's/^get //p' "$T_DIR/fake-$1.log" | sort | uniq -c |
	    awk '{printf "%s%s %s %s", (NR > 1 ? ", " : ""), $1, $2, $3}'
}
# substores NAME: the faketarget's C-GET sub-operations, "STATUS n" each.
substores() {
	sed -n 's/^substore [^ ]* //p' "$T_DIR/fake-$1.log" | sort | uniq -c |
	    awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $1}'
}

# survived NAME: a TAP line: vnamigd still runs after scenario NAME. If
# it died: its exit status and its last warn, error and mig- lines as
# diag, its log kept as daemon-died-N.log, and vnamigd started again on
# a fresh data dir (var-N; the same ports for DICOM), so that the
# scenarios after NAME are judged on their own; 1.
N_DIED=0
survived() {
	if qp_alive "$DAEMON_PID"; then
		pass "$1: vnamigd still runs"
		return 0
	fi
	wait "$DAEMON_PID"
	sv_rc=$?
	DAEMON_PID=
	N_DIED=$((N_DIED + 1))
	fail "$1: vnamigd still runs"
	diag "it exited with status $sv_rc; the last warn, error and mig- lines of its log:"
	grep -E ' (warn|error) | info mig-' "$T_DIR/daemon.log" | tail -n 6 |
	    sed 's/^/#   /'
	mv "$T_DIR/daemon.log" "$T_DIR/daemon-died-$N_DIED.log"
	sed "s|data_dir: $T_DIR/var\$|data_dir: $T_DIR/var-$N_DIED|" "$CONF0" \
	    >"$CONF0-$N_DIED"
	start_daemon "$CONF0-$N_DIED" || bail "vnamigd starts again (var-$N_DIED)"
	base="http://127.0.0.1:$HTTP_PORT"
	diag "vnamigd started again on $T_DIR/var-$N_DIED"
	return 1
}

# h to k one after the other, as vnamigd may die in one (see survived):
# each scenario's report is checked only if it did not. The instance with
# the fault is read back first (j), in the middle (i) or last (k) in its
# study.

# ---- h: a clean target: every instance at level bytes ----
submit "h: studies 1 and 2 to FAKEH (clean; readback, bytes)" fh "$ROOT.1.1" "$ROOT.1.2"
b_h=$BID
wait_batch "$b_h" H 30
if survived h; then
	is "$BSTATE" "done" "h: batch $b_h reaches done"
	report "$b_h"
	report_check "$b_h" h 12 migrated
	is "$(levels "$b_h")" "$(want_levels "$b_h" 12 bytes)" \
	    "h: every row's level is bytes"
	is "$(same_sha "$b_h")" "" "h: every row's target_sha256 is its source_sha256"
fi
# read back a series at a time: one C-GET with the list of its SOP
# Instance UIDs (PS3.4 C.2.2.2.2) per series of 3
is "$(gets H)" "4 IMAGE 3" "h: FAKEH answered 4 IMAGE-level C-GETs (UID lists), 3 instances each"
# the C-GETs' copies, answered before they were durable: a study whose
# check found some not yet durable waited for exactly those, and went on
# when the last one was (by=records), not at its one-second limit
diag "h: read-back waits: $(sed -n "s/.* mig-readback-settled batch=$b_h .*\(waited_ms=[0-9]*\).*\(by=[a-z]*\).*/\1 \2/p" "$T_DIR/daemon.log" | tr '\n' ' ')"
is "$(grep " mig-readback-settled batch=$b_h " "$T_DIR/daemon.log" | grep -vc ' missing=0 by=records')" 0 \
    "h: every read-back wait ended when the copies were durable (by=records)"
is "$(substores H)" "0x0000 12" "h: each sent back in a C-STORE sub-operation, 0x0000"
is "$(grep -c '^store .* 0x0000$' "$T_DIR/fake-H.log")" 12 \
    "h: FAKEH stored the 12 instances once each"

# ---- i: a corrupted copy: verify_mismatch, both SHA-256s ----
submit "i: study 3 to FAKEI (...${S_COR#"$ROOT"} corrupted; readback, bytes)" fi "$ROOT.1.3"
b_i=$BID
wait_batch "$b_i" I 30
if survived i; then
	is "$BSTATE" "done" "i: batch $b_i reaches done"
	report "$b_i"
	report_check "$b_i" i 6 migrated "$S_COR=quarantined:verify_mismatch:0"
	is "$(levels "$b_i")" "$(want_levels "$b_i" 6 bytes "$S_COR=null")" \
	    "i: the others' level is bytes (the quarantined one has none)"
	is "$(same_sha "$b_i" "$S_COR")" "" \
	    "i: the others' target_sha256 is their source_sha256"
	i_src=$(row "$b_i" "$S_COR" source_sha256)
	i_tgt=$(row "$b_i" "$S_COR" target_sha256)
	[ -n "$i_tgt" ] && [ "$i_src" != "$i_tgt" ]
	ok $? "i: its target_sha256 is not its source_sha256 ($i_tgt)"
	is "$i_tgt" "$(file_sha "$T_DIR/fake-I/$S_COR.dcm")" \
	    "i: its target_sha256 is that of the corrupted bytes FAKEI kept"
	both_shas i "$(row "$b_i" "$S_COR" detail)" "$i_src" "$i_tgt"
	api GET "/api/quarantine?reason=verify_mismatch&batch=$b_i"
	is "$code/$(j '[.items[] | "\(.sop_instance_uid) \(.target_sha256)"] | join(",")')" \
	    "200/$S_COR $i_tgt" "i: the quarantine lists it alone, with its target_sha256"
fi
is "$(substores I)" "0x0000 6" "i: FAKEI sent the 6 back (the corrupted one as kept)"
# i2: the item retried where FAKEI now refuses the instance (0xC000): it
# is quarantined again, target_rejected, and no target copy is this
# attempt's: the one read back before is not kept as its target_sha256
if [ -n "${i_tgt:-}" ]; then
	qid_i=$(row "$b_i" "$S_COR" quarantine_id)
	qp_stop "$pid_i"
	if start_fake I "$pi" --reject "$S_COR"; then
		api POST "/api/quarantine/${qid_i:-0}/retry" '{}'
		is "$code" 200 "i2: its item retried where FAKEI now refuses it"
		wait_batch "$b_i" I 30
		report "$b_i"
		is "$(row "$b_i" "$S_COR" outcome)/$(row "$b_i" "$S_COR" reason)/$(row "$b_i" "$S_COR" target_sha256)" \
		    "quarantined/target_rejected/null" \
		    "i2: quarantined again (target_rejected), its target_sha256 null, not the earlier read-back's"
		api GET "/api/quarantine?reason=target_rejected&batch=$b_i"
		is "$code/$(j '[.items[] | .target_sha256] | join(",")')" "200/" \
		    "i2: the new item has no target_sha256"
	else
		fail "i2: FAKEI restarts, refusing ...${S_COR#"$ROOT"}"
	fi
else
	fail "i2: case i left an item to retry"
fi

# ---- j: a re-encoded copy: dataset passes, bytes does not ----
submit "j: study 5 to FAKEJD (...${S_RE#"$ROOT"} re-encoded; readback, dataset)" fjd "$ROOT.1.5"
b_jd=$BID
wait_batch "$b_jd" JD 30
jd_src=
jd_tgt=
if survived "j (dataset)"; then
	is "$BSTATE" "done" "j: batch $b_jd (dataset) reaches done"
	report "$b_jd"
	report_check "$b_jd" "j (dataset)" 6 migrated
	is "$(levels "$b_jd")" "$(want_levels "$b_jd" 6 bytes "$S_RE=dataset")" \
	    "j (dataset): its level is dataset, the others' bytes"
	jd_src=$(row "$b_jd" "$S_RE" source_sha256)
	jd_tgt=$(row "$b_jd" "$S_RE" target_sha256)
	[ -n "$jd_tgt" ] && [ "$jd_tgt" != null ] && [ "$jd_src" != "$jd_tgt" ]
	ok $? "j (dataset): its target_sha256 is not its source_sha256 ($jd_tgt)"
	is "$jd_tgt" "$(file_sha "$T_DIR/fake-JD/$S_RE.dcm")" \
	    "j (dataset): its target_sha256 is that of the re-encoded bytes FAKEJD kept"
	is "$(same_sha "$b_jd" "$S_RE")" "" \
	    "j (dataset): the others' target_sha256 is their source_sha256"
fi
is "$(substores JD)" "0x0000 6" "j (dataset): FAKEJD sent the 6 back"

submit "j: study 5 to FAKEJB (...${S_RE#"$ROOT"} re-encoded; readback, bytes)" fjb "$ROOT.1.5"
b_jb=$BID
wait_batch "$b_jb" JB 30
if survived "j (bytes)"; then
	is "$BSTATE" "done" "j: batch $b_jb (bytes) reaches done"
	report "$b_jb"
	report_check "$b_jb" "j (bytes)" 6 migrated "$S_RE=quarantined:verify_mismatch:0"
	is "$(levels "$b_jb")" "$(want_levels "$b_jb" 6 bytes "$S_RE=null")" \
	    "j (bytes): the others' level is bytes"
	jb_src=$(row "$b_jb" "$S_RE" source_sha256)
	jb_tgt=$(row "$b_jb" "$S_RE" target_sha256)
	is "$jb_tgt" "$(file_sha "$T_DIR/fake-JB/$S_RE.dcm")" \
	    "j (bytes): its target_sha256 is that of the re-encoded bytes FAKEJB kept"
	[ -z "$jd_src" ] || is "$jb_src/$jb_tgt" "$jd_src/$jd_tgt" \
	    "j (bytes): its SHA-256s are those of j (dataset)"
	jb_det=$(row "$b_jb" "$S_RE" detail)
	both_shas "j (bytes)" "$jb_det" "$jb_src" "$jb_tgt"
	like "$jb_det" 'matches dataset' "j (bytes): its detail says it matches the dataset"
fi
is "$(substores JB)" "0x0000 6" "j (bytes): FAKEJB sent the 6 back"

# ---- k: found by C-FIND, not returned by C-GET ----
submit "k: study 4 to FAKEK (...${S_HIDE#"$ROOT"} hidden from C-GET; readback)" fk "$ROOT.1.4"
b_k=$BID
wait_batch "$b_k" K 30
if survived k; then
	is "$BSTATE" "done" "k: batch $b_k reaches done"
	report "$b_k"
	report_check "$b_k" k 6 migrated "$S_HIDE=quarantined:verify_mismatch:0"
	like "$(row "$b_k" "$S_HIDE" detail)" 'did not return' \
	    "k: its detail says the target did not return it"
	is "$(row "$b_k" "$S_HIDE" target_sha256)" null "k: its row has no target_sha256"
	is "$(levels "$b_k")" "$(want_levels "$b_k" 6 bytes "$S_HIDE=null")" \
	    "k: the others' level is bytes (verify_level dataset, met by the bytes)"
fi
# FAKEK takes no UID lists (--no-uid-lists): its two series' lists match
# nothing, and each instance is asked for alone
is "$(gets K)" "3 IMAGE 0, 5 IMAGE 1" \
    "k: FAKEK's C-GETs: 2 lists that matched nothing, then 5 sent one instance, its own none"
is "$(grep -c " mig-readback-list batch=$b_k .* asked=3 completed=0 .* action=\"each asked for alone\"" "$T_DIR/daemon.log")" 2 \
    "k: vnamigd logged both lists that did not all come back (mig-readback-list)"
grep -q '^find IMAGE ' "$T_DIR/fake-K.log"
ok $? "k: FAKEK answered IMAGE-level C-FINDs (they find it)"

# the sends overlap the retrieves: instances went on to a target while
# their study was still being retrieved, faults and all (every case above
# checked its instances and report)
grep -qE 'mig-send-early batch=[0-9]+ study=[0-9.]+ sent=[1-9]' \
    "$T_DIR/daemon.log"
ok $? "instances were sent while their study was still being retrieved (mig-send-early)"

stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
stop_fakes
stop_peers
done_testing
