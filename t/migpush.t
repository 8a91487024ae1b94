#!/bin/sh
# migpush.t — push sources (peers[].push_to) end to end: what a peer
# C-STOREs to vnamigd on its own is forwarded, in a push batch per source
# and local day, once its study has been quiet for migration.push_stable.
# DCMTK's storescu plays the modalities, two dcmqrscp the archives:
#
#   modality  MODALITY (nothing listens at its port), push_to vna: a
#             dcmqrscp target (VNA, verify: counts)
#   pacs      PACS, a dcmqrscp (also a source we retrieve from by C-MOVE),
#             push_to disk: an export (file tree, verify at level bytes)
#   plain     PLAIN, a source without push_to
#
#   a  studies 1-3 pushed by MODALITY, study 4 by PACS: a push batch per
#      source ("push from SRC on DAY", channel push:SRC, running); before
#      push_stable nothing is sent; then every instance migrated with the
#      dataset bytes pushed (hashes of the files as pushed, and at the
#      target, read with pydicom), every study done; the batches stay
#      running (their day is not over)
#   b  study 5: one series pushed (twice, the same bytes), less than
#      push_stable later the other: the study goes once, whole (6 rows,
#      one study.done, one mig-study-end, one instance.migrated leaf per
#      instance, nothing at the target before push_stable after the last
#      push), and the spool lets all the copies go
#   c  studies 2 and 4 pushed again, the same bytes: the spool lets the
#      copies go (GET /api/status store.spool.instances back where it
#      was), no row changes, nothing sent (the targets' files untouched)
#   d  one instance of study 1 and one of study 4 pushed again with
#      another SeriesDescription (dcmodify): their studies done again with
#      only that instance sent (pushed_again), the targets hold the new
#      content
#   e  study 6 pushed, vnamigd killed (SIGKILL) as soon as storescu has
#      its responses, before push_stable: after a restart on the same data
#      dir the study is forwarded whole, in the same push batch
#   f  instances of study 8 without a StudyInstanceUID, without a
#      SeriesInstanceUID, with an invalid one: refused 0xC000 ("pushes go
#      by study"), nothing spooled or queued
#   g  study 9 pushed by PLAIN (no push_to): stored, not forwarded, no
#      batch for it
#   i  study 7 retrieved from PACS by a batch (C-MOVE: its sub-operations
#      come from PACS with MoveOriginator VNAMIG): not pushes, in no push
#      batch, not exported
#   h  the audit export verifies (vnamig-verify), with one
#      instance.migrated leaf per instance sent; no sanitizer report
#
# storescu proposes each file's own transfer syntax (explicit or implicit
# VR little endian), and VNA and the export keep the bytes as received:
# the dataset bytes are compared from the file pushed to the target's
# file, both transfer syntaxes.
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
: "${VNAMIG_VERIFY:=$top_builddir/src/verify/vnamig-verify}"
: "${VNAMIG_DUMP:=$top_builddir/src/dump/vnamig-dump}"
export VNAMIG_DUMP
export LC_ALL=C

STABLE=2		# migration.push_stable, seconds
EX=$T_DIR/disk
G=$T_DIR/gen
trap 'stop_peers; cleanup' EXIT


# restart_daemon: start_daemon again, the earlier runs' log kept in
# $T_DIR/daemon-earlier.log.
restart_daemon() {
	cat "$T_DIR/daemon.log" >>"$T_DIR/daemon-earlier.log"
	start_daemon "$conf" || return 1
	base="http://127.0.0.1:$HTTP_PORT"
}

now() { date +%s.%N; }
# later A B: B - A, in seconds
later() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }
# ge X Y: X >= Y (decimals)
ge() { awk -v x="$1" -v y="$2" 'BEGIN { exit !(x >= y) }'; }
suid() { echo "$ROOT.1.$1"; }
sfiles() { ls "$G"/st"$(printf %03d "$1")"/se*/*.dcm; }

# push AET NAME FILE...: storescu as AET to vnamigd, one association,
# proposing only the files' own transfer syntax (they share it: -xe
# explicit VR LE, -xi implicit VR LE), so vnamigd gets the files' bytes.
# Log $T_DIR/push-NAME.log ($PUSH_OPT: -v, or -d); sets PUSH_RC, PUSH_OK
# and PUSH_ERR (success and error responses) and PUSH_END (when it
# returned).
push() {
	p_aet=$1
	p_name=$2
	shift 2
	# the transfer syntax UID in the file meta group, in its first
	# bytes, matched whole (explicit VR LE's UID begins with implicit
	# VR LE's)
	p_ts=$(head -c 512 "$1" | tr -c '0-9.' ' ')
	case $p_ts in
	*" 1.2.840.10008.1.2.1 "*) p_x=-xe ;;
	*" 1.2.840.10008.1.2 "*) p_x=-xi ;;
	*) p_x= ;;
	esac
	# shellcheck disable=SC2086
	storescu ${PUSH_OPT:--v} -aet "$p_aet" -aec VNAMIG $p_x 127.0.0.1 \
	    "$DICOM_PORT" "$@" >"$T_DIR/push-$p_name.log" 2>&1
	PUSH_RC=$?
	PUSH_END=$(now)
	PUSH_OK=$(grep -c 'Received Store Response (Success)' \
	    "$T_DIR/push-$p_name.log")
	PUSH_ERR=$(grep -c 'Received Store Response (Error' \
	    "$T_DIR/push-$p_name.log")
}

# push_ok AET NAME N FILE...: push, and a check that N stores succeeded.
push_ok() {
	po_n=$3
	po_name=$2
	po_aet=$1
	shift 3
	push "$po_aet" "$po_name" "$@"
	is "$PUSH_RC/$PUSH_OK/$PUSH_ERR" "0/$po_n/0" \
	    "$po_name: storescu as $po_aet: $po_n instances stored (Success)"
	if [ "$PUSH_OK" != "$po_n" ]; then
		diag "last lines of its log:"
		tail -n 8 "$T_DIR/push-$po_name.log" | sed 's/^/#   /'
	fi
}

# batches_of CHANNEL: the ids of the batches on CHANNEL.
batches_of() {
	api GET /api/batches
	j ".batches[] | select(.channel == \"$1\") | .id"
}
# one_batch CHANNEL: its one batch's id ("" when none yet).
one_batch() { batches_of "$1" | head -1; }
has_batch() { [ -n "$(one_batch "$1")" ]; }

# spool_n: instances the spool holds (GET /api/status).
spool_n() {
	api GET /api/status
	j '.store.spool.instances'
}
spool_is() { [ "$(spool_n)" = "$1" ]; }

# ends STUDY: how many times the running vnamigd ended study number
# STUDY (state done) in a batch.
ends() { grep -c "mig-study-end batch=[0-9]* study=$(suid "$1") state=done " \
    "$T_DIR/daemon.log"; }
ends_ge() { [ "$(ends "$1")" -ge "$2" ]; }

# report_done ID STUDY...: batch ID's report (saved) has every STUDY
# done.
report_done() {
	rd_id=$1
	shift
	report "$rd_id" 2>/dev/null
	for rd_s in "$@"; do
		[ "$(rj "$rd_id" ".studies[] | select(.study_uid == \"$(suid "$rd_s")\") | .state")" = "done" ] ||
		    return 1
	done
}

# files.py: dsha(FILE), the SHA-256 of a Part 10 file's dataset bytes;
# files(DIR), every DICOM file under DIR by SOP Instance UID, read by
# pydicom (transfer syntax, mtime, study, series, SeriesDescription)
cat >"$T_DIR/files.py" <<'EOF'
import hashlib, os, struct, sys
import pydicom

# dsha: the SHA-256 of the dataset bytes (all that follows the file meta
# group, padded to even)
sys.path.insert(0, os.path.join(os.environ['top_srcdir'], 't'))
from scpcheck import ds_sha as dsha

def files(d):
    # SOP Instance UID -> [(path, transfer syntax, mtime, study, series,
    # SeriesDescription)], newest first
    m = {}
    for r, dirs, fs in os.walk(d):
        for f in fs:
            p = os.path.join(r, f)
            try:
                ds = pydicom.dcmread(p, stop_before_pixels=True)
                m.setdefault(str(ds.SOPInstanceUID), []).append(
                    (p, str(ds.file_meta.TransferSyntaxUID),
                     os.stat(p).st_mtime, str(ds.get('StudyInstanceUID', '')),
                     str(ds.get('SeriesInstanceUID', '')),
                     str(ds.get('SeriesDescription', ''))))
            except Exception:
                pass
    for v in m.values():
        v.sort(key=lambda x: -x[2])
    return m
EOF

# pcheck ID TARGETDIR NAME STUDY... [SOP=FILE...]: batch ID's saved
# report against the files pushed (the generated ones, or FILE for SOP)
# and TARGETDIR: the studies' rows are exactly their instances, each
# migrated with source_sha256 == sent_sha256 == the dataset bytes of the
# file pushed, each study done with all of them expected; TARGETDIR holds
# each instance once, in its transfer syntax, with those bytes. TAP lines.
pcheck() {
	PYTHONPATH=$T_DIR "$PY" - "$T_DIR/report-$1.json" "$2" "$G/index.tsv" \
	    "$ROOT" "$@" >"$T_DIR/check.out" 2>"$T_DIR/check.err" <<'EOF'
import collections, json, sys
from files import dsha, files
from pydicom.filereader import read_file_meta_info

rp, tdir, index, root = sys.argv[1:5]
args = sys.argv[8:]
studies = {root + '.1.' + a for a in args if '=' not in a}
over = dict(a.split('=', 1) for a in args if '=' in a)
rep = json.load(open(rp))

def out(*f):
    print('|'.join(str(x).replace('|', '/').replace('\n', ' ') for x in f))

want = {}
for l in open(index):
    f = l.rstrip('\n').split('\t')
    if f[1] in studies:
        want[f[3]] = over.get(f[3], f[0])
wsha = {k: dsha(v) for k, v in want.items()}
rows = [r for r in rep.get('instances', []) if r.get('study_uid') in studies]
srows = [s for s in rep.get('studies', []) if s.get('study_uid') in studies]
out('is', len(srows), len(studies), 'one study row for each of the %d studies'
    % len(studies))
out('is', len([s for s in srows if s.get('state') == 'done' and
               s.get('expected') == sum(1 for l in open(index)
                                        if l.split('\t')[1] == s['study_uid'])]),
    len(studies), 'each done, all its instances expected')
for s in srows:
    if s.get('state') != 'done':
        out('diag', 'study: ' + json.dumps(s))
out('is', sorted(r.get('sop_instance_uid') for r in rows), sorted(want),
    'one instance row per instance pushed (%d)' % len(want))
by = collections.Counter(r.get('outcome') for r in rows)
out('is', by.get('migrated', 0), len(want), 'every row migrated (%s)' % dict(by))
ok = [r for r in rows if r.get('source_sha256') ==
      wsha.get(r.get('sop_instance_uid'))]
out('is', len(ok), len(want), 'source_sha256: the dataset bytes of the file pushed')
for r in rows:
    if r not in ok:
        out('diag', 'row: ' + json.dumps(r))
        break
ok = [r for r in rows if r.get('sent_sha256') == r.get('source_sha256')
      and not r.get('transforms')]
out('is', len(ok), len(want), 'sent_sha256 == source_sha256, no transforms')
tgt = files(tdir)
one = [s for s in want if len(tgt.get(s, [])) == 1]
out('is', len(one), len(want), 'the target holds each instance in one file')
ok = [s for s in want if s in tgt and dsha(tgt[s][0][0]) == wsha[s]]
out('is', len(ok), len(want), 'the target holds the dataset bytes pushed '
    '(read by pydicom, hashed)')
for s in sorted(set(want) - set(ok))[:3]:
    out('diag', 'not at the target as pushed: %s %s' % (s, tgt.get(s)))
ok = [s for s in want if s in tgt and tgt[s][0][1] ==
      str(read_file_meta_info(want[s]).TransferSyntaxUID)]
out('is', len(ok), len(want), "in the pushed file's transfer syntax")
EOF
	check_lines $? "$3"
}

# at_target DIR STUDY...: how many files of these studies DIR holds.
at_target() {
	PYTHONPATH=$T_DIR "$PY" - "$@" <<EOF
import sys
from files import files
st = {'$ROOT.1.' + a for a in sys.argv[2:]}
print(sum(1 for v in files(sys.argv[1]).values() for x in v if x[3] in st))
EOF
}
# snapshot DIR: every file under DIR with its inode, mtime and size.
snapshot() { (cd "$1" && find . -type f ! -name index.dat -printf '%p %i %T@ %s\n' | sort); }

# rows ID STUDY...: batch ID's saved report's rows of these studies,
# sorted (instance rows and the studies' states).
rows() {
	rw_id=$1
	shift
	for rw_s in "$@"; do
		rj "$rw_id" "[.instances[] | select(.study_uid == \"$(suid "$rw_s")\")] | sort_by(.sop_instance_uid) | .[] | tojson"
		rj "$rw_id" ".studies[] | select(.study_uid == \"$(suid "$rw_s")\") | [.state, .expected, .counts] | tojson"
	done
}

# ---- the studies and the archives ----
gen_studies "$G" 9 2 3
ok $? "54 instances generated (studies 1-9 x 2 series x 3; odd: CT explicit VR LE, even: MR implicit VR LE)"
vna_port=$(free_port)
pacs_port=$(free_port)
d_port=$(free_port)
nop_port=$(free_port)		# MODALITY's: nothing listens there
QR_NAME=vna
start_dcmqrscp VNA "$vna_port" "$T_DIR/vna" VNAMIG "$d_port" ||
    mig_bail "the target dcmqrscp (VNA) runs"
QR_NAME=pacs
start_dcmqrscp PACS "$pacs_port" "$T_DIR/pacs" VNAMIG "$d_port" ||
    mig_bail "the source dcmqrscp (PACS) runs"
mkdir -p "$T_DIR/p7" && cp -r "$G/st007" "$T_DIR/p7/" &&
    load_dcmqrscp PACS "$pacs_port" "$T_DIR/p7"
ok $? "two dcmqrscp run: VNA (target), PACS (source) holding study 7"

# ---- vnamigd ----
conf=$T_DIR/vnamigd.yaml
mkdir "$EX"
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
  max_studies: 4
  retrieve_attempts: 3
  send_attempts: 5
  retry_backoff: 200ms
  retry_backoff_max: 2s
  push_stable: ${STABLE}s
peers:
  - { name: modality, ae_title: MODALITY, host: 127.0.0.1, port: $nop_port, role: source, push_to: vna }
  - { name: pacs, ae_title: PACS, host: 127.0.0.1, port: $pacs_port, role: source, retrieve: move, push_to: disk }
  - { name: plain, ae_title: PLAIN, host: 127.0.0.1, port: $nop_port, role: source }
  - { name: vna, ae_title: VNA, host: 127.0.0.1, port: $vna_port, role: target, max_associations: 1 }
exports:
  - { name: disk, path: $EX }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
mig_start mig_bail "two push sources: to a peer, to an export"
T0=$(now)

# ---- a: studies 1-3 from MODALITY, study 4 from PACS ----
DAY=$(date +%F)
# shellcheck disable=SC2046
push_ok MODALITY a-ct 12 $(sfiles 1) $(sfiles 3)
a_first=$PUSH_END
# shellcheck disable=SC2046
push_ok MODALITY a-mr 6 $(sfiles 2)
# shellcheck disable=SC2046
push_ok PACS a-pacs 6 $(sfiles 4)
wait_until 5 has_batch push:modality
ok $? "a: a push batch on channel push:modality within 5 s"
wait_until 5 has_batch push:pacs
ok $? "a: a push batch on channel push:pacs within 5 s"
b_mod=$(one_batch push:modality)
b_pacs=$(one_batch push:pacs)
[ -n "$b_mod" ] && [ -n "$b_pacs" ] || mig_bail "a: the push batches exist"
# before push_stable (from the first push's end): nothing forwarded
report "$b_mod"
q=$(rj "$b_mod" '[.studies[].state] | unique | join(",")')
n_vna=$(find "$T_DIR/vna" -type f ! -name index.dat | wc -l)
n_ex=$(find "$EX" -type f | wc -l)
t=$(later "$a_first" "$(now)")
if ge "$t" "$((STABLE - 1)).8"; then
	skip "a: nothing forwarded before push_stable (the batches were seen only ${t} s after the first push)"
else
	is "$n_vna/$n_ex/$q" "0/0/queued" \
	    "a: ${t} s after the first push (push_stable ${STABLE}s): nothing at VNA or the export, the studies queued"
fi
api GET /api/batches
is "$(j "[.batches[] | select(.channel | startswith(\"push:\"))] | length")" 2 \
    "a: two push batches (one per push source)"
is "$(j ".batches[] | select(.id == $b_mod) | [.name, .source, .target, .created_by, .push.source, .push.day] | join(\"|\")")" \
    "push from modality on $DAY|modality|vna|push|modality|$DAY" \
    "a: batch $b_mod: name \"push from modality on $DAY\", modality -> vna, push: {source, day}"
is "$(j ".batches[] | select(.id == $b_pacs) | [.name, .source, .target, .push.source, .push.day] | join(\"|\")")" \
    "push from pacs on $DAY|pacs|disk|pacs|$DAY" \
    "a: batch $b_pacs: name \"push from pacs on $DAY\", pacs -> disk"
wait_until 15 report_done "$b_mod" 1 2 3
ok $? "a: batch $b_mod: studies 1-3 done within 15 s"
wait_until 15 report_done "$b_pacs" 4
ok $? "a: batch $b_pacs: study 4 done within 15 s"
report "$b_mod"
is "$(rj "$b_mod" '[.studies[].study_uid] | sort | join(" ")')" \
    "$(suid 1) $(suid 2) $(suid 3)" "a: batch $b_mod holds studies 1, 2, 3"
pcheck "$b_mod" "$T_DIR/vna" "a: modality -> VNA" 1 2 3
is "$(rj "$b_mod" '[.instances[].level] | unique | join(",")')" count \
    "a: verified by the count at VNA (level count)"
report "$b_pacs"
is "$(rj "$b_pacs" '[.studies[].study_uid] | join(" ")')" "$(suid 4)" \
    "a: batch $b_pacs holds study 4"
pcheck "$b_pacs" "$EX" "a: pacs -> export" 4
is "$(rj "$b_pacs" '[.instances[] | select(.level == "bytes" and .target_sha256 == .source_sha256)] | length')" 6 \
    "a: export: level bytes, target_sha256 == source_sha256"
n=0
for f in $(sfiles 4); do
	s=$(basename "$(dirname "$f")")
	sop="$ROOT.3.4.${s#se0}.$(basename "$f" .dcm | sed 's/^in0*//')"
	ser="$ROOT.2.4.${s#se0}"
	[ -f "$EX/$(suid 4)/$ser/$sop.dcm" ] && n=$((n + 1))
done
is "$n" 6 "a: export: each at <study>/<series>/<sop>.dcm"
# the first file of a study at the target is not older than its push
# + push_stable
first=$(PYTHONPATH=$T_DIR "$PY" -c '
import sys
from files import files
print(min(x[2] for v in files(sys.argv[1]).values() for x in v))' "$T_DIR/vna")
t=$(later "$a_first" "$first")
ge "$t" "$((STABLE - 1)).7"
ok $? "a: the first file at VNA came ${t} s after the first push (studies 1, 3; push_stable ${STABLE}s)"
sleep 0.5
api GET "/api/batches/$b_mod"
st_mod=$(j '.batch.state')
api GET "/api/batches/$b_pacs"
is "$st_mod/$(j '.batch.state')" running/running \
    "a: both push batches stay running (their day is not over)"

# ---- b: half a study, then the rest before push_stable ----
snapshot "$T_DIR/vna" >"$T_DIR/vna.b0"
push_ok MODALITY b-1 3 "$G"/st005/se01/*.dcm
# the same bytes again while the study waits: counted once, both copies
# let go once it is verified
push_ok MODALITY b-1again 3 "$G"/st005/se01/*.dcm
sleep 0.6
push_ok MODALITY b-2 3 "$G"/st005/se02/*.dcm
b_end=$PUSH_END
wait_until 15 report_done "$b_mod" 5
ok $? "b: study 5 done within 15 s"
sleep 0.5
report "$b_mod"
pcheck "$b_mod" "$T_DIR/vna" "b: study 5" 5
is "$(ends 5)" 1 "b: study 5 ended once (one mig-study-end)"
is "$(rj "$b_mod" ".studies[] | select(.study_uid == \"$(suid 5)\") | .counts.verified")" 6 \
    "b: its 6 instances verified in that one pass"
first=$(PYTHONPATH=$T_DIR "$PY" -c '
import sys
from files import files
print(min(x[2] for v in files(sys.argv[1]).values() for x in v if x[3] == sys.argv[2]))' \
    "$T_DIR/vna" "$(suid 5)")
t=$(later "$b_end" "$first")
ge "$t" "$((STABLE - 1)).7"
ok $? "b: the first file of study 5 at VNA came ${t} s after its last push (push_stable ${STABLE}s)"
snapshot "$T_DIR/vna" >"$T_DIR/vna.b1"
is "$(comm -13 "$T_DIR/vna.b0" "$T_DIR/vna.b1" | wc -l)/$(comm -23 "$T_DIR/vna.b0" "$T_DIR/vna.b1" | wc -l)" \
    "6/0" "b: VNA got 6 new files, none replaced"
wait_until 5 spool_is 0
ok $? "b: the spool lets every copy go, the series pushed twice too (instances: $(spool_n))"

# ---- c: the same bytes again ----
sp0=$(spool_n)
snapshot "$T_DIR/vna" >"$T_DIR/vna.c0"
snapshot "$EX" >"$T_DIR/ex.c0"
report "$b_mod"
rows "$b_mod" 1 2 3 5 >"$T_DIR/rows-mod.c0"
report "$b_pacs"
rows "$b_pacs" 4 >"$T_DIR/rows-pacs.c0"
# shellcheck disable=SC2046
push_ok MODALITY c-mr 6 $(sfiles 2)
# shellcheck disable=SC2046
push_ok PACS c-pacs 6 $(sfiles 4)
sp1=$(spool_n)
diag "c: spool instances right after the pushes: $sp1"
wait_until 10 spool_is "$sp0"
ok $? "c: the spool lets the 12 copies go (instances back to $sp0 within 10 s; now $(spool_n))"
api GET /api/status
diag "c: spool $(j '.store.spool | tojson')"
sleep "$STABLE.5"
report "$b_mod"
rows "$b_mod" 1 2 3 5 >"$T_DIR/rows-mod.c1"
report "$b_pacs"
rows "$b_pacs" 4 >"$T_DIR/rows-pacs.c1"
cmp -s "$T_DIR/rows-mod.c0" "$T_DIR/rows-mod.c1" &&
    cmp -s "$T_DIR/rows-pacs.c0" "$T_DIR/rows-pacs.c1"
ok $? "c: the reports' rows of studies 1-5 are unchanged (still migrated, done)"
diff "$T_DIR/rows-mod.c0" "$T_DIR/rows-mod.c1" | head -4 | sed 's/^/# /'
diff "$T_DIR/rows-pacs.c0" "$T_DIR/rows-pacs.c1" | head -4 | sed 's/^/# /'
snapshot "$T_DIR/vna" >"$T_DIR/vna.c1"
cmp -s "$T_DIR/vna.c0" "$T_DIR/vna.c1"
ok $? "c: nothing sent to VNA (its files untouched)"
snapshot "$EX" >"$T_DIR/ex.c1"
cmp -s "$T_DIR/ex.c0" "$T_DIR/ex.c1"
ok $? "c: nothing written to the export (inodes, mtimes unchanged)"
is "$(ends 2)/$(ends 4)" 1/1 "c: studies 2 and 4 were not worked again"

# ---- d: one instance each of studies 1 and 4 with other bytes ----
mkdir -p "$T_DIR/mod"
m1=$T_DIR/mod/st001.dcm
m4=$T_DIR/mod/st004.dcm
cp "$G/st001/se02/in0002.dcm" "$m1" && cp "$G/st004/se01/in0003.dcm" "$m4" &&
    dcmodify -nb -m "(0008,103e)=CHANGED BY D" "$m1" "$m4" >"$T_DIR/dcmodify.log" 2>&1
ok $? "d: dcmodify: SeriesDescription changed in an instance of studies 1 and 4"
sop1=$ROOT.3.1.2.2
sop4=$ROOT.3.4.1.3
snapshot "$T_DIR/vna" >"$T_DIR/vna.d0"
snapshot "$EX" >"$T_DIR/ex.d0"
push_ok MODALITY d-mod 1 "$m1"
push_ok PACS d-pacs 1 "$m4"
wait_until 15 ends_ge 1 2 && wait_until 15 ends_ge 4 2
ok $? "d: studies 1 and 4 done again within 15 s"
sleep 0.3
report "$b_mod"
pcheck "$b_mod" "$T_DIR/vna" "d: study 1 at VNA" 1 "$sop1=$m1"
is "$(rj "$b_mod" ".instances[] | select(.sop_instance_uid == \"$sop1\") | .pushed_again")" true \
    "d: study 1: the report row of $sop1 says pushed_again: true"
report "$b_pacs"
pcheck "$b_pacs" "$EX" "d: study 4 in the export" 4 "$sop4=$m4"
is "$(rj "$b_pacs" ".instances[] | select(.sop_instance_uid == \"$sop4\") | .pushed_again")" true \
    "d: study 4: the report row of $sop4 says pushed_again: true"
is "$("$PY" -c 'import pydicom, sys; print(pydicom.dcmread(sys.argv[1]).SeriesDescription)' \
    "$EX/$(suid 4)/$ROOT.2.4.1/$sop4.dcm")" "CHANGED BY D" \
    "d: the export's file of $sop4 has the new SeriesDescription"
is "$(PYTHONPATH=$T_DIR "$PY" -c '
import sys
from files import files
print(files(sys.argv[1])[sys.argv[2]][0][5])' "$T_DIR/vna" "$sop1")" "CHANGED BY D" \
    "d: VNA's file of $sop1 has the new SeriesDescription"
snapshot "$T_DIR/vna" >"$T_DIR/vna.d1"
is "$(comm -13 "$T_DIR/vna.d0" "$T_DIR/vna.d1" | wc -l)/$(comm -23 "$T_DIR/vna.d0" "$T_DIR/vna.d1" | wc -l)" \
    1/1 "d: VNA: one file replaced, the other instances not sent again"
snapshot "$EX" >"$T_DIR/ex.d1"
is "$(comm -13 "$T_DIR/ex.d0" "$T_DIR/ex.d1" | awk '{ print $1 }')" \
    "./$(suid 4)/$ROOT.2.4.1/$sop4.dcm" \
    "d: export: only the file of $sop4 written again"

# ---- e: kill -9 right after the push, before push_stable ----
# shellcheck disable=SC2046
push_ok MODALITY e 6 $(sfiles 6)
stop_daemon KILL 2>/dev/null
t=$(later "$PUSH_END" "$(now)")
n=$(at_target "$T_DIR/vna" 6)
is "$(ends 6)/$n" 0/0 "e: vnamigd killed (SIGKILL) ${t} s after storescu had its 6 responses, nothing of study 6 forwarded"
restart_daemon || mig_bail "e: vnamigd restarts on the same data dir"
wait_until 15 report_done "$b_mod" 6
ok $? "e: study 6 done within 15 s of the restart"
report "$b_mod"
pcheck "$b_mod" "$T_DIR/vna" "e: study 6 after kill -9" 6
is "$(batches_of push:modality | tr '\n' ' ')" "$b_mod " \
    "e: still the one push batch for modality today ($b_mod)"
api GET "/api/batches/$b_mod"
is "$(j '.batch.state')" running "e: batch $b_mod is running after the restart"

# ---- f: no valid Study/Series Instance UID ----
mkdir -p "$T_DIR/bad"
b1=$T_DIR/bad/nostudy.dcm
b2=$T_DIR/bad/noseries.dcm
b3=$T_DIR/bad/badstudy.dcm
cp "$G/st008/se01/in0001.dcm" "$b1" && cp "$G/st008/se01/in0002.dcm" "$b2" &&
    cp "$G/st008/se01/in0003.dcm" "$b3" &&
    dcmodify -nb -ea "(0020,000d)" "$b1" >>"$T_DIR/dcmodify.log" 2>&1 &&
    dcmodify -nb -ea "(0020,000e)" "$b2" >>"$T_DIR/dcmodify.log" 2>&1 &&
    dcmodify -nb -m "(0020,000d)=1.2.3.four" "$b3" >>"$T_DIR/dcmodify.log" 2>&1
ok $? "f: three instances of study 8: no StudyInstanceUID, no SeriesInstanceUID, StudyInstanceUID 1.2.3.four"
sp0=$(spool_n)
# -d: the responses' error comments too; --no-halt: on after a failure
PUSH_OPT="-d --no-halt" push MODALITY f "$b1" "$b2" "$b3"
is "$(grep -c 'Received Store Response' "$T_DIR/push-f.log")/$(grep -c 'DIMSE Status *: 0x0000' "$T_DIR/push-f.log")" \
    3/0 "f: storescu: three store responses, none a success"
is "$(grep -c 'DIMSE Status *: 0xc000' "$T_DIR/push-f.log")" 3 \
    "f: status 0xC000 (Cannot understand) for each"
is "$(grep -c 'pushes go by study.*ErrorComment' "$T_DIR/push-f.log")" 3 \
    "f: the error comment says pushes go by study"
is "$(grep -c "store-refused .*peer_ae=MODALITY .*sop_instance=$ROOT.3.8.1.[123] status=0xc000" "$T_DIR/daemon.log")" 3 \
    "f: vnamigd logs the three refusals (store-refused, 0xc000)"
is "$(spool_n)" "$sp0" "f: nothing spooled for them"
sleep 0.5
report "$b_mod"
is "$(rj "$b_mod" "[.instances[] | select(.sop_instance_uid | startswith(\"$ROOT.3.8.\"))] | length")/$(rj "$b_mod" '.studies | length')" \
    "0/5" "f: nothing of them in the push batch (still its 5 studies)"

# ---- g: a source without push_to ----
sp0=$(spool_n)
# shellcheck disable=SC2046
push_ok PLAIN g 6 $(sfiles 9)
is "$(spool_n)" $((sp0 + 6)) "g: the 6 instances are in the spool"

# ---- i: our own retrieve from PACS is not a push ----
submit "i: a batch: study 7 from pacs (C-MOVE) to vna" \
    "{\"source\":\"pacs\",\"target\":\"vna\",\"batch_name\":\"pull\",\"study_instance_uids\":[\"$(suid 7)\"]}"
b_pull=$BID
wait_batch "$b_pull" 30
is "$BSTATE" "done" "i: batch $b_pull reaches done"
report "$b_pull"
is "$(rj "$b_pull" '.summary.expected')/$(rj "$b_pull" '.summary.migrated')" 6/6 \
    "i: its 6 instances migrated"
is "$(grep -c "store-received .*peer_ae=PACS .*sop_instance=$ROOT.3.7." "$T_DIR/daemon.log")" 6 \
    "i: they came as C-STOREs from PACS (a push source)"
sleep "$STABLE.5"
api GET /api/batches
is "$(j '[.batches[] | select(.source == "plain" or .channel == "push:plain")] | length')" 0 \
    "g: no batch for plain"
is "$(j '[.batches[] | select(.channel | startswith("push:"))] | length')" 2 \
    "g, i: still the two push batches"
report "$b_pacs"
is "$(rj "$b_pacs" '[.studies[].study_uid] | join(" ")')" "$(suid 4)" \
    "i: the push batch of pacs still holds only study 4"
report "$b_mod"
is "$(rj "$b_mod" "[.studies[].study_uid | select(. == \"$(suid 7)\" or . == \"$(suid 9)\")] | length")" 0 \
    "g, i: studies 7 and 9 are not in the push batch of modality"
is "$(at_target "$EX" 7 9)/$(at_target "$T_DIR/vna" 9)" 0/0 \
    "g, i: studies 7 and 9 not in the export, study 9 not at VNA"
is "$(spool_n)" $((sp0 + 6)) "g: study 9 stays in the spool (nothing forwards it)"
! grep -q 'mig-push-unrouted' "$T_DIR/daemon.log"
ok $? "g: nothing was queued for plain (no mig-push-unrouted)"
for b in $b_mod $b_pacs; do
	api GET "/api/batches/$b"
	is "$(j '.batch.state')" running "batch $b is running at the end (its day is not over)"
done
[ "$(date +%F)" = "$DAY" ] || diag "the day changed during the test ($DAY -> $(date +%F))"

# ---- h: the audit log ----
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
"$VNAMIGD" -c "$conf" --audit-export "$T_DIR/audit" >"$T_DIR/export.out" 2>&1
ok $? "h: vnamigd --audit-export"
"$VNAMIG_VERIFY" audit "$T_DIR/audit" --key "$T_DIR/var-audit.pem.pub" \
    >"$T_DIR/verify.out" 2>&1
is $? 0 "h: vnamig-verify: the exported log verifies"
like "$(cat "$T_DIR/verify.out")" "OK leaves=[0-9]+ " "  OK, with its leaves"
"$PY" - "$T_DIR/audit/leaves.jsonl" "$G/index.tsv" "$sop1" "$sop4" \
    >"$T_DIR/leaves.out" 2>&1 <<'EOF'
import collections, json, sys
leaves = [json.loads(l) for l in open(sys.argv[1], 'rb')]
idx = [l.split('\t') for l in open(sys.argv[2])]
again = set(sys.argv[3:5])
mig = collections.Counter()
done = collections.Counter()
created = collections.Counter()
other = 0
for leaf in leaves:
    ev, o = leaf.get('event'), leaf.get('object') or {}
    if ev == 'instance.migrated':
        mig[o.get('sop_instance_uid')] += 1
    elif ev in ('instance.skipped', 'instance.failed', 'instance.quarantined'):
        other += 1
    elif ev == 'study.done':
        done[o.get('study_uid')] += 1
    elif ev == 'batch.created':
        created[o.get('channel')] += 1
# studies 1-7 sent (1-6 pushed, 7 pulled), 8 refused, 9 not forwarded
bad = [f[3] for f in idx if mig[f[3]] != (2 if f[3] in again else
       1 if int(f[1].rsplit('.', 1)[1]) <= 7 else 0)]
print('instances %d %d %s' % (len(idx) - len(bad), other, ' '.join(bad[:4])))
print('studies ' + ' '.join('%s=%d' % (k.rsplit('.', 1)[1], v)
                            for k, v in sorted(done.items())))
print('created ' + ' '.join('%s=%d' % kv for kv in sorted(created.items())))
EOF
is "$(sed -n 's/^instances //p' "$T_DIR/leaves.out")" "54 0 " \
    "h: instance.migrated leaves: one per instance of studies 1-7, two for the 2 pushed again, none for studies 8, 9; no other outcome"
is "$(sed -n 's/^studies //p' "$T_DIR/leaves.out")" \
    "1=2 2=1 3=1 4=2 5=1 6=1 7=1" \
    "h: study.done leaves: studies 1 and 4 twice (d), the others once"
like "$(sed -n 's/^created //p' "$T_DIR/leaves.out")" \
    "push:modality=1 push:pacs=1" \
    "h: batch.created leaves: one per push batch (none made again after the restart)"
[ -s "$T_DIR/leaves.out" ] && grep -v '^[a-z]* ' "$T_DIR/leaves.out" | sed 's/^/# /'

cat "$T_DIR/daemon-earlier.log" "$T_DIR/daemon.log" "$T_DIR/export.out" \
    >"$T_DIR/daemon-all.log" 2>/dev/null
! grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$T_DIR/daemon-all.log"
ok $? "h: no sanitizer report in vnamigd's logs"
diag "run time: $(later "$T0" "$(now)") s since vnamigd started"

stop_peers
done_testing
