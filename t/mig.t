#!/bin/sh
# mig.t — the migration engine (src/mig/) end to end with real archives:
# DCMTK's dcmqrscp as the source (LEGACY, loaded with generated CT and MR
# studies and odd files from pydicom's corpus), two more dcmqrscp as
# targets (VNA, verify: counts; VNA2, verify: readback at level bytes)
# and DCMTK's storescp as a target that cannot answer C-FIND (verify:
# none). Batches by Study Instance UID, by accession number, an
# accession nobody has (unresolved), a repeat of the same studies (every
# instance already there: skipped_present, nothing sent), a kill -9 in the
# middle of a batch and a restart (every instance counted once), and the
# audit export checked by vnamig-verify.
#
# Bytes are checked independently of vnamigd: dcmqrscp (+B) and storescp
# (+B) keep what they receive, and pydicom reads their files.
# dcmqrscp sends every instance of a C-MOVE in the first transfer syntax
# the receiver accepts from [explicit LE, explicit BE, implicit LE]
# (explicit LE), converting the others: so what the source sends is
# measured with DCMTK's own movescu to a storescp beforehand (the
# reference), and only the files generated in explicit LE keep their bytes
# from the original file to the target; the others keep their content
# (the canonical digest of vnamig-dump -d). dcmqrscp also re-encodes two
# of the odd files that are explicit LE (CT_small.dcm, waveform_ecg.dcm).
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
: "${VNAMIG_VERIFY:=$top_builddir/src/verify/vnamig-verify}"
: "${VNAMIG_DUMP:=$top_builddir/src/dump/vnamig-dump}"
export VNAMIG_DUMP
export LC_ALL=C

PYD=/usr/lib/python3/dist-packages/pydicom/data/test_files
SCP_PIDS=

stop_scps() {
	for p in $SCP_PIDS; do
		qp_stop "$p"
	done
	SCP_PIDS=
}
trap 'stop_scps; stop_peers; cleanup' EXIT

# bail NAME: a "not ok" for something the rest needs; stop everything.
bail() {
	fail "$1"
	stop_scps
	stop_peers
	done_testing
}

# start_storescp AET PORT DIR: DCMTK's storescp on PORT into DIR, keeping
# the bytes as received (+B), one file per instance named by its class
# and SOP Instance UID.
start_storescp() {
	mkdir -p "$3" || return 1
	qp_port_free "$2" || return 1
	storescp -aet "$1" -od "$3" +B -dhl "$2" \
	    </dev/null >"$T_DIR/storescp-$1.log" 2>&1 &
	SCP_PIDS="$SCP_PIDS $!"
	qp_wait "$!" 10 echoscu -aet VNAMIG -aec "$1" 127.0.0.1 "$2" ||
	    qp_fail "storescp $1 on port $2 does not answer C-ECHO" \
		"$T_DIR/storescp-$1.log"
}

# check ID OUTCOME TARGETDIR NAME: the saved report of batch ID, against
# the files: every instance's outcome is OUTCOME, the summary adds up,
# and (migrated) every hash is the one of the bytes as DCMTK saw them;
# TARGETDIR (or -) holds what the target received. Results are TAP lines.
check() {
	"$PY" - "$T_DIR/report-$1.json" "$2" "$3" "$T_DIR/ref" \
	    "$T_DIR/gen" "$T_DIR/odd" "$T_DIR/many" >"$T_DIR/check.out" \
	    2>"$T_DIR/check.err" <<'EOF'
import collections, hashlib, json, os, struct, subprocess, sys
import pydicom

rp, want, tdir, ref = sys.argv[1:5]
origdirs = sys.argv[5:]
rep = json.load(open(rp))

def out(*f):
    print('|'.join(str(x) for x in f))

# dsha: the SHA-256 of the dataset bytes (all that follows the file meta
# group, padded to even)
sys.path.insert(0, os.path.join(os.environ['top_srcdir'], 't'))
from scpcheck import ds_sha as dsha

def canonical(path):
    r = subprocess.run([os.environ['VNAMIG_DUMP'], '-d', path],
                       stdout=subprocess.PIPE, text=True)
    for w in r.stdout.split():
        if w.startswith('canonical='):
            return w[10:]
    return None

def files(d):
    # SOP Instance UID -> (path, transfer syntax, study UID)
    m = {}
    if d == '-' or not os.path.isdir(d):
        return m
    for root, dirs, fs in os.walk(d):
        for f in fs:
            p = os.path.join(root, f)
            try:
                ds = pydicom.dcmread(p, stop_before_pixels=True)
                m[str(ds.SOPInstanceUID)] = (p, str(ds.file_meta.TransferSyntaxUID),
                                             str(ds.StudyInstanceUID))
            except Exception:
                pass
    return m

orig = {}
for d in origdirs:
    orig.update(files(d))
refm, tgt = files(ref), files(tdir)
s = rep.get('summary', {})
rows = rep.get('instances', [])
E = s.get('expected')
studies = {x.get('study_uid') for x in rep.get('studies', [])}
n_orig = sum(1 for v in orig.values() if v[2] in studies)
out('is', E, n_orig, 'expected: the %d instances of its %d studies as loaded'
    % (n_orig, len(studies)))
out('is', float(s.get('accounted_percent', 0)) == 100.0, True,
    'summary: accounted_percent 100 (got %s)' % s.get('accounted_percent'))
parts = sum(s.get(k, 0) for k in ('migrated', 'skipped_present', 'quarantined',
                                  'failed', 'pending'))
out('is', parts, E, 'summary: the outcomes add up to expected')
out('is', s.get(want), E, 'summary: %s == expected' % want)
out('is', len(rows), E, 'one instance row per expected instance')
out('is', len({r.get('sop_instance_uid') for r in rows}), len(rows),
    'no instance counted twice')
byout = collections.Counter(r.get('outcome') for r in rows)
out('is', byout.get(want, 0), len(rows), 'every row: outcome %s (%s)'
    % (want, dict(byout)))
for r in rows:
    if r.get('outcome') != want:
        out('diag', 'row: ' + json.dumps(r))
        break
if want == 'migrated':
    ok = [r for r in rows if r.get('sop_instance_uid') in refm and
          r.get('source_sha256') == dsha(refm[r['sop_instance_uid']][0])]
    out('is', len(ok), len(rows), "source_sha256: the dataset bytes DCMTK's "
        'movescu gets from the same source')
    # generated in explicit LE: dcmqrscp sends them as they are (it
    # re-encodes CT_small.dcm and waveform_ecg.dcm, explicit LE too)
    expl = [r for r in rows if orig.get(r.get('sop_instance_uid'), ('', ''))[1]
            == '1.2.840.10008.1.2.1' and
            '/odd/' not in orig[r['sop_instance_uid']][0]]
    ok = [r for r in expl if r.get('source_sha256') ==
          dsha(orig[r['sop_instance_uid']][0])]
    out('is', len(ok), len(expl), 'source_sha256 of the %d generated in '
        'explicit LE: the original file\'s dataset bytes' % len(expl))
    ok = [r for r in rows if r.get('sent_sha256') == r.get('source_sha256')
          and not r.get('transforms')]
    out('is', len(ok), len(rows), 'sent_sha256 == source_sha256, no transforms')
    if tdir != '-':
        ok = [r for r in rows if r.get('sop_instance_uid') in tgt and
              dsha(tgt[r['sop_instance_uid']][0]) == r.get('sent_sha256')]
        out('is', len(ok), len(rows), 'the target holds every instance with '
            'the dataset bytes sent')
        miss = [r.get('sop_instance_uid') for r in rows
                if r.get('sop_instance_uid') not in tgt]
        if miss:
            out('diag', 'not at the target: ' + ' '.join(miss[:5]))
        ok = [r for r in expl if r['sop_instance_uid'] in tgt and
              dsha(tgt[r['sop_instance_uid']][0]) ==
              dsha(orig[r['sop_instance_uid']][0])]
        out('is', len(ok), len(expl), 'those %d: the original dataset bytes '
            'at the target' % len(expl))
        ok = [r for r in rows if r.get('sop_instance_uid') in tgt and
              r.get('sop_instance_uid') in orig and
              canonical(tgt[r['sop_instance_uid']][0]) ==
              canonical(orig[r['sop_instance_uid']][0])]
        out('is', len(ok), len(rows), 'every instance at the target has the '
            'content loaded (canonical digest)')
levels = collections.Counter(r.get('level') for r in rows)
out('levels', ' '.join('%s=%d' % (k, v) for k, v in sorted(levels.items(),
                                                             key=str)))
EOF
	check_lines $? "$4"
}

# restart_daemon: start_daemon again, the earlier runs' log kept in
# $T_DIR/daemon-earlier.log.
restart_daemon() {
	cat "$T_DIR/daemon.log" >>"$T_DIR/daemon-earlier.log"
	start_daemon "$conf" || return 1
	base="http://127.0.0.1:$HTTP_PORT"
}

# leaves EVENT: how many leaves of the export in $T_DIR/export are EVENT.
leaves() { grep -c "\"event\":\"$1\"" "$T_DIR/export/leaves.jsonl"; }

# ---- the archives ----
gen_studies "$T_DIR/gen" 3 2 3
ok $? "18 instances generated (3 studies x 2 series x 3; CT explicit LE, MR implicit LE)"
mkdir -p "$T_DIR/odd"
for f in CT_small.dcm rtplan.dcm ExplVR_BigEnd.dcm test-SR.dcm waveform_ecg.dcm; do
	cp "$PYD/$f" "$T_DIR/odd/" || bail "pydicom's $f is there"
done
gen_studies "$T_DIR/many" 10 2 3 11
ok $? "60 more for the restart (studies 11-20)"

src_port=$(free_port)
tgt_port=$(free_port)
rb_port=$(free_port)
scp_port=$(free_port)
ref_port=$(free_port)
d_port=$(free_port)
export QR_OTHER_PORT="$ref_port"
QR_NAME=legacy
start_dcmqrscp LEGACY "$src_port" "$T_DIR/legacy" VNAMIG "$d_port" ||
    bail "the source dcmqrscp (LEGACY) runs"
unset QR_OTHER_PORT
QR_NAME=vna
start_dcmqrscp VNA "$tgt_port" "$T_DIR/vna" VNAMIG "$d_port" ||
    bail "the target dcmqrscp (VNA) runs"
QR_NAME=vna2
start_dcmqrscp VNA2 "$rb_port" "$T_DIR/vna2" VNAMIG "$d_port" ||
    bail "the second target dcmqrscp (VNA2) runs"
pass "three dcmqrscp archives run: LEGACY (source), VNA and VNA2 (targets)"
load_dcmqrscp LEGACY "$src_port" "$T_DIR/gen" &&
    load_dcmqrscp LEGACY "$src_port" "$T_DIR/odd" &&
    load_dcmqrscp LEGACY "$src_port" "$T_DIR/many"
ok $? "  LEGACY loaded: 78 generated instances and 5 odd files (explicit LE, implicit LE, explicit BE; RT plan, US, SR, ECG)"

# The odd files' studies and accession numbers.
odd_uid() { "$PY" -c 'import pydicom, sys; print(pydicom.dcmread(sys.argv[1], stop_before_pixels=True).StudyInstanceUID)' "$T_DIR/odd/$1"; }
u_ct=$(odd_uid CT_small.dcm)
u_rp=$(odd_uid rtplan.dcm)
u_be=$(odd_uid ExplVR_BigEnd.dcm)
u_sr=$(odd_uid test-SR.dcm)
acc_ecg=03028041970546		# waveform_ecg.dcm's AccessionNumber
A_UIDS="$ROOT.1.1 $ROOT.1.2 $u_ct $u_rp $u_be $u_sr"
ALL_UIDS="$A_UIDS $ROOT.1.3 $(odd_uid waveform_ecg.dcm)"
jlist() { printf '%s\n' "$@" | jq -R . | jq -sc .; }

# The reference: what LEGACY sends for a C-MOVE, received by storescp.
start_storescp OTHER "$ref_port" "$T_DIR/ref" || bail "storescp (the reference) runs"
i=11
E_UIDS=
while [ "$i" -le 20 ]; do
	E_UIDS="$E_UIDS $ROOT.1.$i"
	i=$((i + 1))
done
# shellcheck disable=SC2086
movescu -S -aet REFERENCE -aec LEGACY -aem OTHER -k QueryRetrieveLevel=STUDY \
    -k "StudyInstanceUID=$(printf '%s\\' $ALL_UIDS $E_UIDS | sed 's/\\$//')" \
    127.0.0.1 "$src_port" >"$T_DIR/ref.log" 2>&1
rc=$?
stop_scps
is "$rc/$(ls "$T_DIR/ref" | wc -l)" "0/83" \
    "reference: DCMTK's movescu takes the 18 studies (83 instances) from LEGACY"

# ---- vnamigd ----
# mig_conf MAX_STUDIES [RETRIEVE]: the daemon's configuration (LEGACY
# retrieved from with RETRIEVE, move or get; move by default). storescp (without
# --fork) serves one association at a time: max_associations 1 (else
# the pool's idle association to it holds off the next one). The target
# dcmqrscp too: it names each file it stores from the time (seconds) and
# a generator seeded with it, then checks the name is free; two of its
# processes (one per association) storing in the same second can pick the
# same name, and the later file replaces the earlier one while its index
# keeps both instances.
conf=$T_DIR/vnamigd.yaml
mig_conf() {
	cat >"$conf" <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/var
listen:
  dicom: { address: 127.0.0.1, port: $d_port }
  http:  { address: 127.0.0.1, port: 0 }
limits:
  shutdown_grace: 5s
  dimse_timeout: 20s
storage:
  min_free: 1MiB
migration:
  max_studies: $1
  retrieve_attempts: 3
  send_attempts: 5
  retry_backoff: 200ms
  retry_backoff_max: 2s
peers:
  - { name: legacy, ae_title: LEGACY, host: 127.0.0.1, port: $src_port, role: source, retrieve: ${2:-move} }
  - { name: vna, ae_title: VNA, host: 127.0.0.1, port: $tgt_port, role: target, max_associations: 1 }
  - { name: vna2, ae_title: VNA2, host: 127.0.0.1, port: $rb_port, role: target, verify: readback, verify_level: bytes, max_associations: 1 }
  - { name: scp, ae_title: STORESCP, host: 127.0.0.1, port: $scp_port, role: target, verify: none, max_associations: 1 }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
}
mig_conf 4
mig_start bail "peers' verify:, migration:"

# ---- a: by Study Instance UID and by accession number, LEGACY -> VNA ----
# shellcheck disable=SC2086
submit "a: a batch of 6 studies by study_instance_uids" \
    "{\"source\":\"legacy\",\"target\":\"vna\",\"batch_name\":\"by-uid\",\"study_instance_uids\":$(jlist $A_UIDS)}"
b_uid=$BID
submit "a: a batch of 2 studies by accession_numbers" \
    "{\"source\":\"legacy\",\"target\":\"vna\",\"batch_name\":\"by-acc\",\"accession_numbers\":[\"ACC003\",\"$acc_ecg\"]}"
b_acc=$BID
[ -n "$b_uid" ] && [ -n "$b_acc" ] || bail "a: both batches were taken"
wait_batch "$b_uid" 60
is "$BSTATE" done "a: batch $b_uid (by UID) reaches done"
wait_batch "$b_acc" 60
is "$BSTATE" done "a: batch $b_acc (by accession) reaches done"
report "$b_uid"
is "$(rj "$b_uid" '.summary.expected')/$(rj "$b_uid" '.summary.studies.total')" \
    "16/6" "a: by UID: 16 instances in 6 studies expected"
check "$b_uid" migrated "$T_DIR/vna" "a: by UID"
is "$LEVELS" "count=16" "a: by UID: every instance verified by the count at the target (level count)"
report "$b_acc"
is "$(rj "$b_acc" '[.studies[].study_uid] | sort | join(" ")')" \
    "$(printf '%s\n' "$ROOT.1.3" "$(odd_uid waveform_ecg.dcm)" | sort | tr '\n' ' ' | sed 's/ $//')" \
    "a: by accession: ACC003 and $acc_ecg resolved to their two studies"
is "$(rj "$b_acc" '.unresolved | length')" 0 "a: by accession: nothing unresolved"
check "$b_acc" migrated "$T_DIR/vna" "a: by accession"
is "$(rj "$b_uid" '[.studies[] | select(.state != "done")] | length')" 0 \
    "a: every study of the batch is done"
is "$(rj "$b_uid" '.studies[0] | has("expected") and has("source_count") and has("reason")')" \
    true "a: study rows have expected, source_count, reason"
is "$(rj "$b_uid" '[.instances[] | select(.series_uid == null or .sop_class_uid == null or .time == null or .status == null)] | length')" \
    0 "a: instance rows have series_uid, sop_class_uid, time, status"
api GET "/api/batches/$b_uid/report?format=csv"
is "$(printf '%s\n' "$out" | head -1 | tr -d '\r')" \
    "study_uid,series_uid,sop_instance_uid,sop_class_uid,source_sha256,sent_sha256,target_sha256,level,time,outcome,status,reason,detail" \
    "a: the CSV report's header"
is "$(printf '%s\n' "$out" | tail -n +2 | grep -c ',migrated,')" 16 \
    "  and its 16 migrated rows"

# a send's association to VNA (max_associations 1, verify: counts)
# also proposes the C-FIND that the verification and the next study's
# pre-flight use, so it serves them instead of being released for an
# association with other contexts (case a: 11 released before, 7-9
# since): some association to VNA proposed more than the C-FIND (the
# queries' own propose it alone) and carried a C-FIND
n_both=$(awk '/ assoc-established .* called=VNA proposed=/ {
	for (i = 1; i <= NF; i++) {
		if ($i ~ /^conn=/) c = $i
		if ($i ~ /^proposed=/) { split($i, p, "="); if (p[2] > 1) s[c] = 1 }
	}
}
/ qr-start .* op=C-FIND / { for (i = 1; i <= NF; i++) if ($i ~ /^conn=/ && s[$i]) n++ }
END { print n + 0 }' "$T_DIR/daemon.log")
[ "$n_both" -gt 0 ]
ok $? "a: VNA's one association carries sends and queries alike ($n_both C-FINDs on associations that also proposed storage)"

# ---- b: the same studies again: everything already there ----
ls -l --time-style=+%s.%N "$T_DIR/vna" | grep -v index.dat >"$T_DIR/vna.before"
# shellcheck disable=SC2086
submit "b: the same 8 studies again" \
    "{\"source\":\"legacy\",\"target\":\"vna\",\"batch_name\":\"again\",\"study_instance_uids\":$(jlist $ALL_UIDS)}"
b_again=$BID
wait_batch "$b_again" 60
is "$BSTATE" done "b: batch $b_again reaches done"
report "$b_again"
check "$b_again" skipped_present - "b: pre-flight"
ls -l --time-style=+%s.%N "$T_DIR/vna" | grep -v index.dat >"$T_DIR/vna.after"
cmp -s "$T_DIR/vna.before" "$T_DIR/vna.after"
ok $? "b: nothing was sent again (VNA's files unchanged)"

# ---- c: storescp as the target, verify: none ----
start_storescp STORESCP "$scp_port" "$T_DIR/scp" || bail "storescp (target) runs"
submit "c: 2 studies to storescp (verify: none)" \
    "{\"source\":\"legacy\",\"target\":\"scp\",\"study_instance_uids\":[\"$ROOT.1.1\",\"$u_rp\"]}"
b_scp=$BID
wait_batch "$b_scp" 60
is "$BSTATE" done "c: batch $b_scp reaches done"
report "$b_scp"
check "$b_scp" migrated "$T_DIR/scp" "c: storescp"
is "$LEVELS" "status=7" "c: every instance verified at level status"
is "$(ls "$T_DIR/scp" | wc -l)" 7 "c: storescp received the 7 instances once each"

# ---- c2: verify: readback, VNA2 ----
# Every instance is fetched back from VNA2 (C-MOVE to VNAMIG) and must
# come back with the bytes sent (verify_level: bytes).
submit "c2: 4 studies to VNA2 (verify: readback, verify_level: bytes)" \
    "{\"source\":\"legacy\",\"target\":\"vna2\",\"study_instance_uids\":[\"$ROOT.1.1\",\"$ROOT.1.2\",\"$u_ct\",\"$u_be\"]}"
b_rb=$BID
wait_batch "$b_rb" 60
is "$BSTATE" done "c2: batch $b_rb reaches done"
report "$b_rb"
check "$b_rb" migrated "$T_DIR/vna2" "c2: read back"
is "$LEVELS" "bytes=14" "c2: every instance verified at level bytes"
is "$(rj "$b_rb" '[.instances[] | select(.target_sha256 != .sent_sha256)] | length')" \
    0 "c2: target_sha256 (read back) == sent_sha256 for each"

# ---- d: an accession number nobody has ----
submit "d: a batch of an unknown accession number" \
    '{"source":"legacy","target":"vna","accession_numbers":["NO-SUCH-ACC"]}'
b_none=$BID
wait_batch "$b_none" 30
is "$BSTATE" done "d: batch $b_none still reaches done"
report "$b_none"
is "$(rj "$b_none" '[.unresolved[] | tostring | contains("NO-SUCH-ACC")] | any')" \
    true "d: NO-SUCH-ACC is in the report's unresolved"
is "$(rj "$b_none" '.summary.unresolved')/$(rj "$b_none" '.summary.expected')" \
    "1/0" "d: summary: 1 unresolved, 0 instances expected"

# ---- e: kill -9 in the middle of a batch, restart ----
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
mig_conf 1
restart_daemon || bail "vnamigd restarts (max_studies 1)"
# shellcheck disable=SC2086
submit "e: a batch of 10 studies (60 instances)" \
    "{\"source\":\"legacy\",\"target\":\"vna\",\"batch_name\":\"restart\",\"study_instance_uids\":$(jlist $E_UIDS)}"
b_kill=$BID
# kill -9 once some studies are done but not all
killed=
n=0
while [ "$n" -lt 300 ]; do
	api GET "/api/batches/$b_kill/report"
	d=$(j '.summary.studies.done // 0')
	if [ "$(j '.batch.state')" = done ] || ! qp_alive "$DAEMON_PID"; then
		break
	fi
	if [ "${d:-0}" -ge 2 ]; then
		stop_daemon KILL 2>/dev/null
		killed=$d
		break
	fi
	n=$((n + 1))
	sleep 0.05
done
if [ -n "$killed" ]; then
	pass "e: vnamigd killed (SIGKILL) with $killed of 10 studies done"
elif ! qp_alive "$DAEMON_PID"; then
	fail "e: vnamigd runs until it is killed"
	log_tail
	stop_daemon
else
	skip "e: the batch ended before it could be killed"
	stop_daemon
fi
# and again at arbitrary moments, in a loop: a restart, a fraction of a
# second of work (a study querying, retrieving, sending or verifying),
# kill -9
kills=${killed:+1}
for delay in 0.08 0.05 0.12 0.03 0.1 0.06 0.15; do
	[ -n "$killed" ] || break
	restart_daemon || bail "vnamigd restarts after kill -9"
	sleep "$delay"
	api GET "/api/batches/$b_kill"
	[ "$(j '.batch.state')" = done ] && break
	stop_daemon KILL 2>/dev/null
	kills=$((kills + 1))
done
[ -n "$killed" ] && diag "e: vnamigd was killed $kills times during the batch"
# (the loop may have ended with the batch done and vnamigd running)
if [ -z "$DAEMON_PID" ] || ! qp_alive "$DAEMON_PID"; then
	restart_daemon || bail "vnamigd starts again on the same data dir"
fi
wait_batch "$b_kill" 60
is "$BSTATE" done "e: batch $b_kill reaches done after the restart"
report "$b_kill"
check "$b_kill" migrated "$T_DIR/vna" "e: after kill -9"
is "$(rj "$b_uid" '.summary.migrated')" 16 "e: batch $b_uid's report is unchanged by the restarts"

# ---- f: the audit log ----
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
"$VNAMIGD" -c "$conf" --audit-export "$T_DIR/export" >"$T_DIR/export.out" 2>&1
ok $? "f: vnamigd --audit-export"
"$VNAMIG_VERIFY" audit "$T_DIR/export" --key "$T_DIR/var-audit.pem.pub" \
    >"$T_DIR/verify.out" 2>&1
is $? 0 "f: vnamig-verify: the exported log verifies"
like "$(cat "$T_DIR/verify.out")" "OK leaves=[0-9]+ " "  OK, with its leaves"
for ev in batch.started batch.done study.done instance.migrated instance.skipped; do
	[ "$(leaves "$ev")" -gt 0 ]
	ok $? "f: the log has $ev leaves"
done
# a: 16 by UID and 7 by accession; c: 7; c2: 14; e: 60
is "$(leaves instance.migrated)" $((16 + 7 + 7 + 14 + 60)) \
    "f: one instance.migrated leaf per instance migrated (none twice after kill -9)"
is "$(leaves instance.skipped)" 23 "f: one instance.skipped leaf per instance skipped (b)"
is "$(jq -r 'select(.event == "instance.migrated" or .event == "study.done") | "\(.actor.engine) \(.actor.for)"' \
    "$T_DIR/export/leaves.jsonl" | sort -u)" "VNAMIG ops" \
    "f: each instance and study leaf names the engine and whom it worked for (the API key)"
# Each instance of the killed batch ends in exactly one instance leaf.
n=$("$PY" - "$T_DIR/export/leaves.jsonl" "$T_DIR/many/index.tsv" <<'EOF'
import collections, json, sys
ends = ('instance.migrated', 'instance.skipped', 'instance.quarantined')
sops = [l.split('\t')[3] for l in open(sys.argv[2])]
seen = collections.Counter()
def strings(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        for x in v.values():
            yield from strings(x)
    elif isinstance(v, list):
        for x in v:
            yield from strings(x)
for line in open(sys.argv[1], 'rb'):
    leaf = json.loads(line)
    if leaf.get('event') in ends:
        for x in set(strings(leaf)):
            seen[x] += 1
bad = [u for u in sops if seen[u] != 1]
for u in bad[:5]:
    print('# %s: %d instance leaves' % (u, seen[u]), file=sys.stderr)
print(len(sops) - len(bad))
EOF
)
is "$n" 60 "f: each of the killed batch's 60 instances ended in exactly one instance leaf"

# ---- g: C-GET from dcmqrscp, whose C-FIND gives no SOP Class UID ----
# A C-GET's sub-operations come over our association only in contexts we
# proposed; dcmqrscp leaves SOP Class UID (0008,0016) out of its IMAGE-
# level answers (and ModalitiesInStudy out of its STUDY-level ones), so
# vnamigd proposes the common storage classes. Before it did, every
# sub-operation failed (0xA702) and each instance ended quarantined as
# missing. Five studies of five classes (CT + MR, RT Plan, US in explicit
# big endian, Comprehensive SR, 12-lead ECG) to storescp (verify: none),
# which keeps the bytes: each file's dataset SHA-256 must be the source
# hash in the report, and the sent one.
stop_scps	# (case c's storescp, into another directory)
start_storescp STORESCP "$scp_port" "$T_DIR/scpg" || bail "storescp (target) runs again"
mig_conf 4 get
restart_daemon || bail "vnamigd restarts with LEGACY's retrieve: get"
submit "g: 5 studies by C-GET from LEGACY to storescp" \
    "{\"source\":\"legacy\",\"target\":\"scp\",\"study_instance_uids\":$(jlist "$ROOT.1.3" "$u_rp" "$u_be" "$u_sr" "$(odd_uid waveform_ecg.dcm)")}"
b_get=$BID
wait_batch "$b_get" 60
is "$BSTATE" done "g: batch $b_get reaches done"
report "$b_get"
is "$(rj "$b_get" '.summary | [.expected, .migrated, .quarantined] | map(tostring) | join(" ")')" \
    "10 10 0" "g: 10 instances expected, 10 migrated, none quarantined"
grep -q ' mig-get-classes .*source=legacy .*contexts=120 ' "$T_DIR/daemon.log"
ok $? "g: the log says the common storage classes were proposed (120 contexts)"
n=$("$PY" - "$T_DIR/report-$b_get.json" "$T_DIR/scpg" <<'EOF'
import json, os, sys
import pydicom
sys.path.insert(0, os.path.join(os.environ['top_srcdir'], 't'))
from scpcheck import ds_sha
rep = json.load(open(sys.argv[1]))
got = {}
for f in os.listdir(sys.argv[2]):
    p = os.path.join(sys.argv[2], f)
    got[str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)] = ds_sha(p)
good = 0
for r in rep['instances']:
    h = got.get(r['sop_instance_uid'])
    if h is not None and h == r['source_sha256'] == r['sent_sha256']:
        good += 1
    else:
        print('# %s: storescp %s, source %s, sent %s' % (r['sop_instance_uid'],
              h, r['source_sha256'], r['sent_sha256']), file=sys.stderr)
print(good)
EOF
)
is "$n" 10 "g: storescp holds each instance with the source hash, as sent"
# A C-GET's final response comes right after its last sub-operation's,
# answered before its record was durable: each study's check waits for
# those records and runs as soon as the last is durable, not after its
# one-second limit.
settled=$(grep -c ' mig-retrieve-settled batch='"$b_get"' ' "$T_DIR/daemon.log")
diag "g: $settled of the 5 retrieves waited for records of answered sub-operations: $(sed -n 's/.* mig-retrieve-settled batch='"$b_get"' .*\(waited_ms=[0-9]*\).*\(by=[a-z]*\).*/\1 \2/p' "$T_DIR/daemon.log" | tr '\n' ' ')"
is "$(grep ' mig-retrieve-settled batch='"$b_get"' ' "$T_DIR/daemon.log" | grep -vc ' missing=0 by=records')" 0 \
    "g: every such wait ended when the records were durable (by=records), none at its limit"

cat "$T_DIR/daemon-earlier.log" "$T_DIR/daemon.log" "$T_DIR/export.out" \
    >"$T_DIR/daemon-all.log"
! grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$T_DIR/daemon-all.log"
ok $? "no sanitizer report in vnamigd's logs"

stop_scps
stop_peers
done_testing
