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
# Every batch's report must account for each instance once and add up to
# 100%.
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
export LC_ALL=C

ROOT=1.2.826.0.1.3680043.10.1297.9
PY=/usr/bin/python3
TOK=plain-for-tests
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
j() { printf '%s' "$out" | jq -r "$1" 2>/dev/null; }

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

# report ID: GET /api/batches/ID/report into $T_DIR/report-ID.json.
report() {
	api GET "/api/batches/$1/report"
	printf '%s' "$out" >"$T_DIR/report-$1.json"
	[ "$code" = 200 ] || diag "report of batch $1: HTTP $code: $out"
}
# rj ID JQ: a value from batch ID's saved report.
rj() { jq -r "$2" "$T_DIR/report-$1.json" 2>/dev/null; }
# row ID SOP FIELD: a field of SOP's instance row in batch ID's report.
row() { rj "$1" ".instances[] | select(.sop_instance_uid == \"$2\") | .$3"; }

# check ID NAME EXPECTED OUTCOME [SOP=OUTCOME:REASON:STATUS...]: batch ID's
# saved report: EXPECTED instances, each once; the summary adds up to it
# and to 100%; every row's outcome is OUTCOME but for the SOPs named
# (their outcome, reason and status; an empty field is not checked); the
# summary's count per outcome and quarantined_by_reason agree with the
# rows. TAP lines.
check() {
	ck_id=$1
	ck_name=$2
	shift 2
	"$PY" - "$T_DIR/report-$ck_id.json" "$@" >"$T_DIR/check.out" \
	    2>"$T_DIR/check.err" <<'EOF'
import collections, json, sys

rep = json.load(open(sys.argv[1]))
n, want = int(sys.argv[2]), sys.argv[3]
special = {}
for a in sys.argv[4:]:
    sop, o = a.split('=', 1)
    special[sop] = (o.split(':') + ['', ''])[:3]

def out(*f):
    print('|'.join(str(x) for x in f))

s = rep.get('summary', {})
rows = rep.get('instances', [])
out('is', s.get('expected'), n, 'summary: expected %d' % n)
out('is', float(s.get('accounted_percent') or 0) == 100.0, True,
    'summary: accounted_percent 100 (got %s)' % s.get('accounted_percent'))
parts = {k: s.get(k, 0) for k in ('migrated', 'skipped_present',
                                  'quarantined', 'failed', 'pending')}
out('is', sum(parts.values()), n, 'summary: the outcomes add up (%s)' %
    ' '.join('%s=%s' % kv for kv in parts.items()))
out('is', len(rows), n, 'one instance row per expected instance')
out('is', len({r.get('sop_instance_uid') for r in rows}), len(rows),
    'no instance counted twice')
byout = collections.Counter(r.get('outcome') for r in rows)
out('is', all(parts[k] == byout.get(k, 0) for k in parts), True,
    'summary counts == the rows\' outcomes (%s)' % dict(byout))
reasons = collections.Counter(r.get('reason') for r in rows
                              if r.get('outcome') == 'quarantined')
out('is', json.dumps(s.get('quarantined_by_reason') or {}, sort_keys=True),
    json.dumps(dict(reasons), sort_keys=True),
    'summary: quarantined_by_reason == the rows\' reasons')
bad = []
for r in rows:
    sop = r.get('sop_instance_uid')
    o, why, st = special.get(sop, (want, '', ''))
    if r.get('outcome') != o or (why and r.get('reason') != why) or \
            (st and str(r.get('status')) != st):
        bad.append(r)
out('is', len(bad), 0, 'every row: %s%s' % (want, ''.join(
    ', %s: %s' % (k[len(k) - 7:], '/'.join(v)) for k, v in special.items())))
for r in bad[:3]:
    out('diag', 'row: ' + json.dumps(r))
miss = set(special) - {r.get('sop_instance_uid') for r in rows}
out('is', ' '.join(sorted(miss)), '', 'the instances named have rows')
EOF
	ck_rc=$?
	if [ "$ck_rc" != 0 ]; then
		fail "$ck_name: the report could be checked"
		sed 's/^/# /' "$T_DIR/check.err"
		return
	fi
	while IFS='|' read -r kind a b c; do
		case $kind in
		is) is "$a" "$b" "$ck_name: $c" ;;
		diag) diag "$a" ;;
		esac
	done <"$T_DIR/check.out"
}

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
pa=$(free_port)
pbc=$(free_port)
pd=$(free_port)
pf=$(free_port)
start_fake A "$pa" --a700-once "$S_A700" &&
    pid_a=$FT_PID &&
    start_fake BC "$pbc" --reject "$S_REJ" --lose "$S_LOST" &&
    start_fake D "$pd" --abort-after 2 &&
    start_fake F "$pf" --a700 "$S_FULL" ||
    bail "the faketargets run"
pass "4 faketargets run (A $pa, BC $pbc, D $pd, F $pf)"

# ---- vnamigd ----
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
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
out=$("$VNAMIGD" -c "$conf" --check-config 2>&1)
rc=$?
ok $rc "the configuration is valid"
[ $rc = 0 ] || diag "$out"
start_daemon "$conf" || bail "vnamigd starts"
base="http://127.0.0.1:$HTTP_PORT"
pass "vnamigd runs (DICOM $DICOM_PORT, HTTP $HTTP_PORT)"

# ---- a: 0xA700 once: a retry after the backoff, then success ----
submit "a: study 1 to FAKEA (0xA700 once for ...${S_A700#"$ROOT"})" fa "$ROOT.1.1"
b_a=$BID
wait_batch "$b_a" A
is "$BSTATE" "done" "a: batch $b_a reaches done"
report "$b_a"
check "$b_a" a 6 migrated
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
check "$b_b" b 6 migrated "$S_REJ=quarantined:target_rejected:49152"
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
check "$b_c" c 6 migrated "$S_LOST=quarantined:verify_mismatch:0"
api GET "/api/quarantine?reason=verify_mismatch&batch=$b_c"
is "$code/$(j '[.items[].sop_instance_uid] | join(" ")')" "200/$S_LOST" \
    "c: GET /api/quarantine?reason=verify_mismatch&batch=$b_c lists it alone"

# ---- d: A-ABORT after the 2nd C-STORE ----
submit "d: study 4 to FAKED (A-ABORT after 2 C-STOREs)" fd "$ROOT.1.4"
b_d=$BID
wait_batch "$b_d" D
is "$BSTATE" "done" "d: batch $b_d reaches done"
report "$b_d"
check "$b_d" d 6 migrated
is "$(grep -c '^abort$' "$T_DIR/fake-D.log")" 1 "d: FAKED aborted one association"
grep -q "mig-send-retry batch=$b_d .*abort" "$T_DIR/daemon.log"
ok $? "d: the daemon logs a retry after the A-ABORT (mig-send-retry)"
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
check "$b_e" e 12 skipped_present "$S_REJ=quarantined:target_rejected:49152" \
    "$S_LOST=quarantined:verify_mismatch:0"
is "$(stores BC "$S_REJ")/$(stores BC "$S_LOST")" "0xc000 0xc000/0x0000 0x0000" \
    "e: the rejected and the lost one were sent again"
is "$(($(grep -c '^store ' "$T_DIR/fake-BC.log") - nb))" 2 "e: and nothing else"
api GET "/api/quarantine?reason=target_rejected"
is "$(j '[.items[] | select(.sop_instance_uid == "'"$S_REJ"'") | .batch] | sort | map(tostring) | join(" ")')" \
    "$b_b $b_e" "e: GET /api/quarantine?reason=target_rejected: one item per batch"
qfile=$(j '[.items[] | select(.batch == '"${b_e:-0}"')][0].file // empty')
is "$(qcopy "$qfile")" "$S_REJ" "e: batch $b_e's item has its own copy ($qfile)"

# ---- f: 0xA700 every time: quarantined after send_attempts ----
submit "f: study 5 to FAKEF (0xA700 always for ...${S_FULL#"$ROOT"})" ff "$ROOT.1.5"
b_f=$BID
wait_batch "$b_f" F
is "$BSTATE" "done" "f: batch $b_f reaches done"
report "$b_f"
check "$b_f" f 6 migrated "$S_FULL=quarantined:target_rejected:42752"
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
check "$b_g" g 6 migrated
is "$(grep -c '^store .* 0x0000$' "$T_DIR/fake-A.log")" 6 \
    "g: the new FAKEA stored the 6 instances once each"

stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
stop_fakes
stop_peers
done_testing
