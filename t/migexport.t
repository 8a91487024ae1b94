#!/bin/sh
# migexport.t — the migration engine's file-system export targets
# (exports:, src/mig/mig_export.c) end to end: DCMTK's dcmqrscp as the
# source (LEGACY, loaded with generated studies), vnamigd writing
# PATH/<StudyUID>/<SeriesUID>/<SOPUID>.dcm Part 10 files.
#
#   a  3 studies (explicit VR LE) by accession to "disk": done; every
#      instance migrated at level bytes, source_sha256 == target_sha256;
#      one file per instance at its name, read by pydicom on its own: its
#      UIDs, its file meta (group length, SOP class and instance, transfer
#      syntax), its dataset bytes hashed == the report's hash == the
#      dataset bytes of dcmqrscp's own file of the instance; the content
#      loaded (vnamig-dump's canonical digest); no temporary file left.
#      The same studies to "scratch" (fsync: false): the same files.
#   b  the same studies again: every instance skipped_present, no file
#      touched; then force_full_repull: every file written anew, migrated
#   c  an export whose root does not exist (send_attempts 3, backoff
#      200ms): the instances fail target_unavailable after two retries,
#      the detail names the root and says vnamig does not create it; the
#      root is still not there. Then (send_attempts 10) an export whose
#      root is made while the retries go on: the batch ends done.
#   d  kill -9 while a batch of 10 studies is being written (a temporary
#      file seen, or a series half written), again after each restart on
#      the same data dir while files are written (up to 4 kills): the
#      batch ends done, every instance once, every file whole and as the
#      source sent it; temporary files left over only by the killed
#      processes (nothing removes those).
#   e  the audit log: vnamig-verify verifies the export, one instance leaf
#      per instance and outcome, by export.
#   f  send_attempts lowered by SIGHUP (10 -> 2) while a study's writes to
#      a missing root are retried, after 3 attempts: the instances must
#      end failed target_unavailable (not be retried without end).
#
# dcmqrscp (+B) keeps the bytes it receives and sends the generated
# explicit VR LE files as they are (it converts implicit VR LE to
# explicit for a C-MOVE: see t/mig.t), so for studies 1, 3, 5 the
# dataset bytes are compared with dcmqrscp's own files.
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
: "${VNAMIG_VERIFY:=$top_builddir/src/verify/vnamig-verify}"
: "${VNAMIG_DUMP:=$top_builddir/src/dump/vnamig-dump}"
export VNAMIG_DUMP
export LC_ALL=C

EX=$T_DIR/export
trap 'stop_peers; cleanup' EXIT


# xcheck ID OUTCOME ROOT NAME: batch ID's saved report against the files
# under ROOT: every instance's outcome is OUTCOME, the summary adds up,
# and (migrated) each file at its name is the instance as the source
# holds it. TAP lines.
xcheck() {
	"$PY" - "$T_DIR/report-$1.json" "$2" "$3" "$T_DIR/legacy" \
	    "$T_DIR/gen" "$T_DIR/many" >"$T_DIR/check.out" \
	    2>"$T_DIR/check.err" <<'EOF'
import collections, json, os, subprocess, sys
import pydicom
sys.path.insert(0, os.path.join(os.environ['top_srcdir'], 't'))
from scpcheck import meta_end, ds_sha as dsha

rp, want, root, qrdir = sys.argv[1:5]
origdirs = sys.argv[5:]
rep = json.load(open(rp))
EXPL = '1.2.840.10008.1.2.1'

def out(*f):
    print('|'.join(str(x).replace('|', '/').replace('\n', ' ') for x in f))

def canonicals(paths):
    # path -> vnamig-dump's canonical digest of its content
    m = {}
    if paths:
        r = subprocess.run([os.environ['VNAMIG_DUMP'], '-d'] + sorted(paths),
                           stdout=subprocess.PIPE, text=True)
        for l in r.stdout.splitlines():
            w = l.split()
            for x in w[1:]:
                if x.startswith('canonical='):
                    m[w[0]] = x[10:]
    return m

def files(d):
    # SOP Instance UID -> (path, transfer syntax)
    m = {}
    for r, dirs, fs in os.walk(d):
        for f in fs:
            p = os.path.join(r, f)
            try:
                ds = pydicom.dcmread(p, stop_before_pixels=True)
                m[str(ds.SOPInstanceUID)] = (p, str(ds.file_meta.TransferSyntaxUID))
            except Exception:
                pass
    return m

orig = {}
for d in origdirs:
    orig.update(files(d))
qr = files(qrdir)
s = rep.get('summary', {})
rows = rep.get('instances', [])
E = s.get('expected')
studies = sorted({x.get('study_uid') for x in rep.get('studies', [])})
n_orig = 0
for d in origdirs:
    for l in open(os.path.join(d, 'index.tsv')):
        n_orig += l.split('\t')[1] in studies
out('is', E, n_orig, 'expected: the %d instances of its %d studies as generated'
    % (n_orig, len(studies)))
parts = sum(s.get(k, 0) for k in ('migrated', 'skipped_present', 'quarantined',
                                  'failed', 'pending'))
out('is', parts, E, 'summary: the outcomes add up to expected')
out('is', s.get(want), E, 'summary: %s == expected' % want)
out('is', float(s.get('accounted_percent', 0)) == 100.0, True,
    'summary: accounted_percent 100 (got %s)' % s.get('accounted_percent'))
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
levels = collections.Counter(r.get('level') for r in rows)
out('levels', ' '.join('%s=%d' % (k, v) for k, v in sorted(levels.items(),
                                                             key=str)))

# the tree under each study of the batch: exactly one file per instance
want_paths = {os.path.join(root, r.get('study_uid') or '?', r.get('series_uid') or '?',
                           (r.get('sop_instance_uid') or '?') + '.dcm') for r in rows}
have = set()
for st in studies:
    for r_, dirs, fs in os.walk(os.path.join(root, st)):
        have.update(os.path.join(r_, f) for f in fs if not f.endswith('.tmp'))
tmps = [os.path.join(r_, f) for r_, dirs, fs in os.walk(root) for f in fs
        if f.endswith('.tmp')]
out('is', sorted(have) == sorted(want_paths), True,
    'the tree holds exactly one file per instance at <study>/<series>/<sop>.dcm '
    '(%d files, %d instances)' % (len(have), len(want_paths)))
for p in sorted(want_paths - have)[:3]:
    out('diag', 'missing: ' + p)
for p in sorted(have - want_paths)[:3]:
    out('diag', 'not an instance of the report: ' + p)
if want != 'migrated':
    sys.exit(0)

ok = [r for r in rows if r.get('level') == 'bytes' and r.get('source_sha256')
      and r.get('source_sha256') == r.get('target_sha256')]
out('is', len(ok), len(rows), 'every row: level bytes, target_sha256 == source_sha256')
for r in rows:
    if r not in ok:
        out('diag', 'row: ' + json.dumps(r))
        break

bad = collections.Counter()
n_expl = n_qr = 0
cpaths = [os.path.join(root, r.get('study_uid'), r.get('series_uid'),
                       r.get('sop_instance_uid') + '.dcm') for r in rows]
cpaths += [orig[r['sop_instance_uid']][0] for r in rows
           if r.get('sop_instance_uid') in orig]
canon = canonicals(cpaths)
for r in rows:
    sop, st, se = r.get('sop_instance_uid'), r.get('study_uid'), r.get('series_uid')
    p = os.path.join(root, st, se, sop + '.dcm')
    if not os.path.isfile(p):
        bad['file'] += 1
        continue
    b = open(p, 'rb').read()
    if b[128:132] != b'DICM':
        bad['preamble and DICM'] += 1
    try:
        ds = pydicom.dcmread(p)
        ds.PixelData
    except Exception as e:
        bad['pydicom reads it'] += 1
        out('diag', '%s: %s' % (p, e))
        continue
    fm = ds.file_meta
    if (str(ds.SOPInstanceUID), str(ds.StudyInstanceUID),
            str(ds.SeriesInstanceUID)) != (sop, st, se):
        bad['SOP/study/series UIDs'] += 1
    if str(ds.SOPClassUID) != r.get('sop_class_uid'):
        bad['SOP class'] += 1
    if str(fm.MediaStorageSOPInstanceUID) != sop:
        bad['meta MediaStorageSOPInstanceUID'] += 1
    if str(fm.MediaStorageSOPClassUID) != str(ds.SOPClassUID):
        bad['meta MediaStorageSOPClassUID'] += 1
    # the group length names the meta group's bytes after it
    if fm.get('FileMetaInformationGroupLength') != meta_end(b) - 144:
        bad['meta group length'] += 1
    # dcmqrscp sends explicit VR LE (it converts implicit VR LE)
    if str(fm.TransferSyntaxUID) != EXPL:
        bad['meta TransferSyntaxUID'] += 1
    h = dsha(p)
    if h != r.get('source_sha256'):
        bad['dataset SHA-256 == source_sha256'] += 1
    if sop not in orig or canon.get(p) is None or \
            canon.get(p) != canon.get(orig[sop][0]):
        bad['content as generated (canonical digest)'] += 1
    if sop in orig and orig[sop][1] == EXPL:
        n_expl += 1
        if sop not in qr:
            bad["found in dcmqrscp's storage area"] += 1
        else:
            n_qr += 1
            if qr[sop][1] != str(fm.TransferSyntaxUID):
                bad["meta TransferSyntaxUID == dcmqrscp's file's"] += 1
            if dsha(qr[sop][0]) != h:
                bad["dataset bytes == dcmqrscp's file's"] += 1
            if dsha(orig[sop][0]) != h:
                bad['dataset bytes == the generated file\'s'] += 1
for k in ('file', 'preamble and DICM', 'pydicom reads it',
          'SOP/study/series UIDs', 'SOP class',
          'meta MediaStorageSOPInstanceUID', 'meta MediaStorageSOPClassUID',
          'meta group length', 'meta TransferSyntaxUID',
          'dataset SHA-256 == source_sha256',
          'content as generated (canonical digest)'):
    out('is', bad[k], 0, 'files: %s (of %d)' % (k, len(rows)))
if n_expl:
    for k in ("found in dcmqrscp's storage area",
              "meta TransferSyntaxUID == dcmqrscp's file's",
              "dataset bytes == dcmqrscp's file's",
              'dataset bytes == the generated file\'s'):
        out('is', bad[k], 0, 'the %d explicit VR LE: %s' % (n_expl, k))
out('tmps', len(tmps))
for p in tmps[:3]:
    out('diag', 'temporary file: ' + p)
EOF
	ck_rc=$?
	TMPS=
	check_lines "$ck_rc" "$4"
}

# restart_daemon: start_daemon again, the earlier runs' log kept in
# $T_DIR/daemon-earlier.log.
restart_daemon() {
	cat "$T_DIR/daemon.log" >>"$T_DIR/daemon-earlier.log"
	start_daemon "$conf" || return 1
	base="http://127.0.0.1:$HTTP_PORT"
}

# tree ROOT: every file under ROOT with its inode, mtime and size.
tree() { (cd "$1" && find . -type f -printf '%p %i %T@ %s\n' | sort); }
# tmpfiles ROOT: the temporary files (".<sop>.dcm.tmp") under ROOT.
tmpfiles() { find "$1" -name '.*.tmp' | sort; }
# leaves EVENT: how many leaves of the audit export are EVENT.
leaves() { grep -c "\"event\":\"$1\"" "$T_DIR/audit/leaves.jsonl"; }
jlist() { printf '%s\n' "$@" | jq -R . | jq -sc .; }

# ---- the source ----
gen_studies "$T_DIR/gen" 5 2 3
ok $? "30 instances generated (studies 1-5 x 2 series x 3; odd: CT explicit VR LE, even: MR implicit VR LE)"
gen_studies "$T_DIR/many" 10 2 3 11
ok $? "60 more for the restart (studies 11-20)"
src_port=$(free_port)
d_port=$(free_port)
QR_NAME=legacy
start_dcmqrscp LEGACY "$src_port" "$T_DIR/legacy" VNAMIG "$d_port" ||
    mig_bail "the source dcmqrscp (LEGACY) runs"
load_dcmqrscp LEGACY "$src_port" "$T_DIR/gen" &&
    load_dcmqrscp LEGACY "$src_port" "$T_DIR/many"
ok $? "LEGACY loaded with the 90 instances, each in its own transfer syntax"

# ---- vnamigd ----
# mig_conf MAX_STUDIES SEND_ATTEMPTS BACKOFF_MAX
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
  send_attempts: $2
  retry_backoff: 200ms
  retry_backoff_max: $3
peers:
  - { name: legacy, ae_title: LEGACY, host: 127.0.0.1, port: $src_port, role: source, retrieve: move }
exports:
  - { name: disk, path: $EX }
  - { name: scratch, path: $T_DIR/scratch, fsync: false }
  - { name: nowhere, path: $T_DIR/nowhere }
  - { name: late, path: $T_DIR/late }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
}
mkdir "$EX" "$T_DIR/scratch"
mig_conf 4 3 2s
mig_start mig_bail "exports: four of them, one fsync: false"

# ---- a: three studies by accession number to the export ----
A_UIDS="$ROOT.1.1 $ROOT.1.3 $ROOT.1.5"
submit "a: a batch of 3 studies by accession_numbers to export disk" \
    '{"source":"legacy","target":"disk","batch_name":"export-a","accession_numbers":["ACC001","ACC003","ACC005"]}'
b_a=$BID
[ -n "$b_a" ] || mig_bail "a: the batch was taken"
wait_batch "$b_a" 30
is "$BSTATE" done "a: batch $b_a reaches done"
report "$b_a"
is "$(rj "$b_a" '[.studies[].study_uid] | sort | join(" ")')" "$A_UIDS" \
    "a: ACC001, ACC003, ACC005 resolved to studies 1, 3, 5"
is "$(rj "$b_a" '.summary.expected')/$(rj "$b_a" '.summary.migrated')" "18/18" \
    "a: summary: 18 expected, 18 migrated"
xcheck "$b_a" migrated "$EX" "a"
is "$LEVELS" "bytes=18" "a: every instance verified at level bytes"
is "$TMPS" 0 "a: no temporary file left in the tree"
is "$(find "$EX" -type f | wc -l)" 18 "a: the export holds 18 files, nothing else"
is "$(rj "$b_a" '[.studies[] | select(.state != "done")] | length')" 0 \
    "a: every study of the batch is done"

# the same three to the scratch export (fsync: false): the same files
# shellcheck disable=SC2086
submit "a: the same 3 studies by study_instance_uids to export scratch (fsync: false)" \
    "{\"source\":\"legacy\",\"target\":\"scratch\",\"study_instance_uids\":$(jlist $A_UIDS)}"
b_s=$BID
wait_batch "$b_s" 30
is "$BSTATE" done "a: batch $b_s (scratch) reaches done"
report "$b_s"
xcheck "$b_s" migrated "$T_DIR/scratch" "a: scratch"
diff -r "$EX" "$T_DIR/scratch" >"$T_DIR/diff.out" 2>&1
ok $? "a: scratch's files are byte for byte disk's"
[ -s "$T_DIR/diff.out" ] && head -5 "$T_DIR/diff.out" | sed 's/^/# /'

# ---- b: again: everything present; then force_full_repull ----
tree "$EX" >"$T_DIR/tree.before"
# shellcheck disable=SC2086
submit "b: the same 3 studies again to disk" \
    "{\"source\":\"legacy\",\"target\":\"disk\",\"batch_name\":\"again\",\"study_instance_uids\":$(jlist $A_UIDS)}"
b_b=$BID
wait_batch "$b_b" 30
is "$BSTATE" done "b: batch $b_b reaches done"
report "$b_b"
xcheck "$b_b" skipped_present "$EX" "b: pre-flight"
tree "$EX" >"$T_DIR/tree.after"
cmp -s "$T_DIR/tree.before" "$T_DIR/tree.after"
ok $? "b: no file written again (inodes, mtimes, sizes unchanged)"
[ "$(wc -l <"$T_DIR/tree.before")" -eq 18 ]
ok $? "  (of the 18 files)"

# shellcheck disable=SC2086
submit "b: the same 3 studies with force_full_repull: true" \
    "{\"source\":\"legacy\",\"target\":\"disk\",\"batch_name\":\"force\",\"force_full_repull\":true,\"study_instance_uids\":$(jlist $A_UIDS)}"
b_f=$BID
wait_batch "$b_f" 30
is "$BSTATE" done "b: batch $b_f (force_full_repull) reaches done"
report "$b_f"
xcheck "$b_f" migrated "$EX" "b: force_full_repull"
is "$LEVELS" "bytes=18" "b: force_full_repull: every instance verified at level bytes"
is "$TMPS" 0 "b: force_full_repull: no temporary file left"
tree "$EX" >"$T_DIR/tree.force"
# each file renamed into place anew: another inode (and mtime) than before
n=$(join "$T_DIR/tree.before" "$T_DIR/tree.force" |
    awk '$2 != $5 && $3 != $6 { n++ } END { print n + 0 }')
is "$n" 18 "b: force_full_repull: all 18 files written anew (new inode and mtime)"

# ---- c: the export root is missing ----
submit "c: study 2 to export nowhere (its root does not exist)" \
    "{\"source\":\"legacy\",\"target\":\"nowhere\",\"study_instance_uids\":[\"$ROOT.1.2\"]}"
b_c=$BID
wait_batch_end() {	# like wait_batch, but a failed batch is no surprise
	wbe_n=$((${2:-30} * 5))
	while :; do
		api GET "/api/batches/$1"
		BSTATE=$(j '.batch.state // empty')
		case $BSTATE in
		done|failed|cancelled) return 0 ;;
		esac
		qp_alive "$DAEMON_PID" || return 1
		wbe_n=$((wbe_n - 1))
		[ "$wbe_n" -le 0 ] && return 1
		sleep 0.2
	done
}
wait_batch_end "$b_c" 30
ok $? "c: batch $b_c ends (state $BSTATE)"
report "$b_c"
is "$(rj "$b_c" '.summary.expected')/$(rj "$b_c" '.summary.failed')/$(rj "$b_c" '.summary.migrated')" \
    "6/6/0" "c: summary: 6 expected, 6 failed, 0 migrated"
is "$(rj "$b_c" '[.instances[] | select(.outcome == "failed" and .reason == "target_unavailable")] | length')" \
    6 "c: every instance failed, reason target_unavailable"
det=$(rj "$b_c" '.instances[0].detail')
like "$det" "not written after 3 attempts" "c: the detail counts send_attempts (3)"
like "$det" "export root $T_DIR/nowhere " "c: the detail names the root"
like "$det" "does not create it" "c: and says vnamig does not create it"
is "$(grep -c "mig-send-retry batch=$b_c " "$T_DIR/daemon.log")" 2 \
    "c: two retries logged (send_attempts 3)"
[ ! -e "$T_DIR/nowhere" ]
ok $? "c: the root $T_DIR/nowhere still does not exist"
is "$(rj "$b_c" '[.studies[].state] | join(" ")')" failed "c: the study ends failed"

# a larger send_attempts, and the root made while the retries go on
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
mig_conf 2 10 400ms
restart_daemon || mig_bail "vnamigd restarts (send_attempts 10, retry_backoff_max 400ms)"
submit "c: study 4 to export late (its root does not exist yet)" \
    "{\"source\":\"legacy\",\"target\":\"late\",\"study_instance_uids\":[\"$ROOT.1.4\"]}"
b_l=$BID
wait_log "mig-send-retry batch=$b_l " 20
ok $? "c: a write to late failed and is retried"
mkdir "$T_DIR/late"
wait_batch "$b_l" 30
is "$BSTATE" done "c: batch $b_l reaches done once the root is made"
report "$b_l"
xcheck "$b_l" migrated "$T_DIR/late" "c: late"
is "$TMPS" 0 "c: late: no temporary file left"

# ---- d: kill -9 while the export is written ----
i=11
D_UIDS=
while [ "$i" -le 20 ]; do
	D_UIDS="$D_UIDS $ROOT.1.$i"
	i=$((i + 1))
done
# shellcheck disable=SC2086
submit "d: a batch of 10 studies (60 instances) to disk" \
    "{\"source\":\"legacy\",\"target\":\"disk\",\"batch_name\":\"restart\",\"study_instance_uids\":$(jlist $D_UIDS)}"
b_d=$BID
# kill_writing: SIGKILL vnamigd as soon as a file of batch d is being
# written: a temporary file that was not there before, or a series
# directory with some of its 3 files but not all (that was not so
# before). 0 once killed; 1 when all 60 files were written first (or
# after 20 s); 2 when vnamigd is gone.
kill_writing() {
	# shellcheck disable=SC2086
	"$PY" - "$DAEMON_PID" "$EX" $D_UIDS >"$T_DIR/killer.out" 2>&1 <<'EOF'
import os, signal, sys, time
pid, root, studies = int(sys.argv[1]), sys.argv[2], sys.argv[3:]

def scan():
    tmp, part, n = set(), set(), 0
    for st in studies:
        for r, dirs, fs in os.walk(os.path.join(root, st)):
            tmp.update(os.path.join(r, f) for f in fs if f.endswith('.tmp'))
            dcm = [f for f in fs if f.endswith('.dcm')]
            n += len(dcm)
            if r != os.path.join(root, st) and 0 < len(dcm) < 3:
                part.add(r)
    return tmp, part, n

tmp0, part0, n = scan()
end = time.monotonic() + 20
while time.monotonic() < end:
    tmp, part, n = scan()
    new = (tmp - tmp0) | (part - part0)
    if new:
        os.kill(pid, signal.SIGKILL)
        print(' '.join(sorted(new)))
        sys.exit(0)
    if n >= 6 * len(studies):
        print('all %d files written' % n)
        sys.exit(1)
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(2)
    time.sleep(0.002)
print('20 s passed')
sys.exit(1)
EOF
}
kill_writing
rc=$?
KILLED=
kills=0
if [ "$rc" = 0 ]; then
	KILLED=$DAEMON_PID
	kills=1
	stop_daemon KILL 2>/dev/null
	pass "d: vnamigd killed (SIGKILL) while it wrote the export"
	diag "killed at $(cat "$T_DIR/killer.out")"
elif [ "$rc" = 1 ]; then
	skip "d: the batch was written before vnamigd could be killed ($(cat "$T_DIR/killer.out"))"
else
	fail "d: vnamigd runs until it is killed"
	log_tail
fi
# and again, each time once the restarted vnamigd writes a file
while [ "$kills" -ge 1 ] && [ "$kills" -lt 4 ]; do
	restart_daemon || mig_bail "vnamigd restarts after kill -9"
	if ! kill_writing; then
		diag "not killed again: $(cat "$T_DIR/killer.out")"
		break
	fi
	KILLED="$KILLED $DAEMON_PID"
	kills=$((kills + 1))
	stop_daemon KILL 2>/dev/null
	diag "killed at $(cat "$T_DIR/killer.out")"
done
diag "d: vnamigd was killed $kills times while it wrote the export"
if [ -z "$DAEMON_PID" ] || ! qp_alive "$DAEMON_PID"; then
	restart_daemon || mig_bail "vnamigd starts again on the same data dir"
fi
wait_batch "$b_d" 30
is "$BSTATE" done "d: batch $b_d reaches done after the restarts"
report "$b_d"
xcheck "$b_d" migrated "$EX" "d: after kill -9"
is "$LEVELS" "bytes=60" "d: every instance verified at level bytes"
# temporary files may be left by a killed writer, never by the last one
left=$(tmpfiles "$EX")
n=0
for f in $left; do
	p=${f%.tmp}
	p=${p##*.}
	case " $KILLED " in
	*" $p "*) ;;
	*) n=$((n + 1)); diag "left by a process not killed: $f" ;;
	esac
done
is "$n" 0 "d: no temporary file of the running vnamigd left"
[ -n "$left" ] && diag "left by the killed processes ($(printf '%s\n' "$left" | wc -l)):" "$left"
is "$(rj "$b_a" '.summary.migrated')" 18 "d: batch $b_a's report is unchanged by the restarts"

# ---- e: the audit log ----
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
"$VNAMIGD" -c "$conf" --audit-export "$T_DIR/audit" >"$T_DIR/export.out" 2>&1
ok $? "e: vnamigd --audit-export"
"$VNAMIG_VERIFY" audit "$T_DIR/audit" --key "$T_DIR/var-audit.pem.pub" \
    >"$T_DIR/verify.out" 2>&1
is $? 0 "e: vnamig-verify: the exported log verifies"
like "$(cat "$T_DIR/verify.out")" "OK leaves=[0-9]+ " "  OK, with its leaves"
# a: 18 + 18 (scratch); b: 18 forced; c: 6 (late); d: 60
is "$(leaves instance.migrated)" $((18 + 18 + 18 + 6 + 60)) \
    "e: one instance.migrated leaf per instance migrated (none twice after kill -9)"
is "$(leaves instance.skipped)" 18 "e: one instance.skipped leaf per instance skipped (b)"
is "$(leaves instance.failed)" 6 "e: one instance.failed leaf per instance failed (c)"
n=$("$PY" - "$T_DIR/audit/leaves.jsonl" "$T_DIR/many/index.tsv" "$b_d" <<'EOF'
import collections, json, sys
sops = [l.split('\t')[3] for l in open(sys.argv[2])]
seen = collections.Counter()
for line in open(sys.argv[1], 'rb'):
    leaf = json.loads(line)
    o = leaf.get('object') or {}
    if str(leaf.get('event', '')).startswith('instance.') and \
            str(o.get('batch_id')) == sys.argv[3]:
        seen[o.get('sop_instance_uid')] += 1
bad = [u for u in sops if seen[u] != 1]
for u in bad[:5]:
    print('# %s: %d instance leaves' % (u, seen[u]), file=sys.stderr)
print(len(sops) - len(bad))
EOF
)
is "$n" 60 "e: each of the killed batch's 60 instances ended in exactly one instance leaf"
# the instance leaves by target and outcome; the migrated ones at level
# bytes, the file's hash the source's
"$PY" - "$T_DIR/audit/leaves.jsonl" >"$T_DIR/leaves.out" <<'EOF'
import collections, json, sys
by, bad = collections.Counter(), 0
for line in open(sys.argv[1], 'rb'):
    leaf = json.loads(line)
    ev = leaf.get('event', '')
    o, h = leaf.get('object') or {}, leaf.get('hashes') or {}
    if ev not in ('instance.migrated', 'instance.skipped', 'instance.failed',
                  'instance.quarantined'):
        continue
    by['%s/%s' % (o.get('target'), ev[9:])] += 1
    if ev == 'instance.migrated' and (o.get('level') != 'bytes' or
            not h.get('source_sha256') or
            h.get('source_sha256') != h.get('target_sha256')):
        bad += 1
print(' '.join('%s=%d' % kv for kv in sorted(by.items())))
print(bad)
EOF
is "$(sed -n 1p "$T_DIR/leaves.out")" \
    "disk/migrated=$((18 + 18 + 60)) disk/skipped=18 late/migrated=6 nowhere/failed=6 scratch/migrated=18" \
    "e: the instance leaves name their export and outcome"
is "$(sed -n 2p "$T_DIR/leaves.out")" 0 \
    "e: every instance.migrated leaf: level bytes, target_sha256 == source_sha256"

# ---- f: send_attempts lowered (SIGHUP) while a study's writes are retried ----
# (after e, so that the audit counts above do not depend on it) The
# instances have used more attempts than the new limit allows: they must
# end failed now, not be retried without end.
restart_daemon || mig_bail "vnamigd restarts (send_attempts 10)"
submit "f: study 2 to export nowhere, send_attempts 10" \
    "{\"source\":\"legacy\",\"target\":\"nowhere\",\"study_instance_uids\":[\"$ROOT.1.2\"]}"
b_h=$BID
wait_log "mig-send-retry batch=$b_h .*attempt=3 " 20
ok $? "f: three writes failed and are retried"
mig_conf 2 2 400ms
kill -HUP "$DAEMON_PID"
wait_log "reload-done" 10 &&
    grep -q 'config-changed key=migration.send_attempts old=10 new=2' "$T_DIR/daemon.log"
ok $? "f: SIGHUP: migration.send_attempts 10 -> 2"
wait_batch_end "$b_h" 8
ok $? "f: batch $b_h ends (state $BSTATE) once send_attempts is below the attempts made"
report "$b_h"
is "$(rj "$b_h" '[.instances[] | select(.outcome == "failed" and .reason == "target_unavailable")] | length')" \
    6 "f: its 6 instances failed, reason target_unavailable"
if [ "$BSTATE" != done ] && [ "$BSTATE" != failed ]; then
	diag "batch $b_h: $BSTATE; the last retries:"
	grep "mig-send-retry batch=$b_h " "$T_DIR/daemon.log" | tail -3 |
	    cut -c1-200 | sed 's/^/#   /'
fi
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"

cat "$T_DIR/daemon-earlier.log" "$T_DIR/daemon.log" "$T_DIR/export.out" \
    >"$T_DIR/daemon-all.log"
! grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$T_DIR/daemon-all.log"
ok $? "no sanitizer report in vnamigd's logs"

stop_peers
done_testing
