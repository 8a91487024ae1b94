#!/bin/sh
# migmerge.t — the HL7 ADT^A40 patient merge crosswalk applied by the
# migration engine (src/hl7in.c records ("xw", SOURCE, OLD) -> NEW and rewrites
# waiting batches; src/mig/mig.c edits PatientID on the way) end to end:
# DCMTK's dcmqrscp as the source (LEGACY, generated studies), a second
# dcmqrscp as the target (VNA, verify: readback at level bytes), a
# file-system export (disk), merges sent over MLLP from a raw socket.
#
# The studies (gen_studies: study s is patient PATsss; two are moved to
# another patient so that a patient has studies in both syntaxes):
#	PAT001 (P1): studies 1 (CT, explicit VR LE) and 2 (MR, implicit)
#	PAT003 (P2): study 3, never merged
#	PAT004 (P3): studies 4 (MR) and 5 (CT)
#	PAT006 (P4): study 6 (MR)
#	PAT007: study 7, in no batch (a batch by patient must not take it)
#
#   a  A40 PAT001 -> NEWID (AA), then P1's studies by accession to VNA,
#      and once that is done to the export: every instance migrated at
#      level bytes; report rows with one transform (set (0010,0020) PatientID, the merge's control
#      ID), sent_sha256 != source_sha256, target_sha256 == sent_sha256 ==
#      the SHA-256 of the target file's dataset bytes; each file read by
#      pydicom: PatientID NEWID, every other element as generated; the
#      dataset bytes: the source's with only PatientID replaced (explicit
#      VR LE files: the generated file's bytes with the element spliced;
#      all: the target's bytes with the old ID spliced back hash to
#      source_sha256).
#   b  a batch for PAT003 (not merged) in the same run: transforms empty,
#      sent == source hash, PatientID unchanged at the target.
#   c  source paused, a batch by patient_id PAT004, A40 PAT004 -> NEW3,
#      the batch shows patient_id NEW3 and merged_from [PAT004]; resume:
#      it resolves to studies 4 and 5 (nothing unresolved) and they
#      arrive as NEW3.
#   d  A40 PAT006 -> MID, then MID -> FINAL: study 6 arrives as FINAL.
#   g  the same merged studies to VNA and to the export in two batches at
#      once (force_full_repull), G_ROUNDS (4) times: every instance
#      migrated at level bytes, source_sha256 the source's (never a copy
#      another batch read back from VNA), edited, target == sent.
#   e  an instance.migrated leaf of (a) (GET /api/audit/leaf/{seq}): a
#      64-hex transform digest (of its transforms), old_phi/new_phi 64
#      hex (the inbox's commitments of the merge), no ID in clear.
#   f  vnamig-verify on the audit export; no sanitizer report.
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
: "${VNAMIG_VERIFY:=$top_builddir/src/verify/vnamig-verify}"
: "${VNAMIG_DUMP:=$top_builddir/src/dump/vnamig-dump}"
export VNAMIG_DUMP
export LC_ALL=C

EX=$T_DIR/export
trap 'stop_peers; cleanup' EXIT


# a40 CONTROL-ID SURVIVING MERGED: ADT^A40 from RIS/MAINHOSP over MLLP on
# a connection of its own (a raw socket); sets ACK to "MSA-1 MSA-2" of
# the answer ("none" without one).
a40() {
	ACK=$("$PY" - "$MLLP_PORT" "$@" <<'EOF'
import socket, sys
port, ctl, new, old = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
m = '\r'.join((
    'MSH|^~\\&|RIS|MAINHOSP|VNAMIG|PACS|20240105120500||ADT^A40^ADT_A39|%s|P|2.5.1' % ctl,
    'EVN|A40|20240105120500',
    'PID|1||%s^^^MAINHOSP^MR||MERGE^ME||19700707|F' % new,
    'MRG|%s^^^MAINHOSP^MR' % old)) + '\r'
s = socket.create_connection(('127.0.0.1', port), timeout=20)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.sendall(b'\x0b' + m.encode('ascii') + b'\x1c\r')
buf = b''
while b'\x1c\r' not in buf:
    try:
        d = s.recv(65536)
    except OSError:
        break
    if not d:
        break
    buf += d
s.close()
a = buf[buf.find(b'\x0b') + 1:buf.find(b'\x1c\r')] if b'\x1c\r' in buf else b''
for seg in a.split(b'\r'):
    if seg.startswith(b'MSA|'):
        f = seg.decode('latin-1').split('|')
        print('%s %s' % (f[1], f[2] if len(f) > 2 else ''))
        sys.exit(0)
print('none')
EOF
)
}

# rec CONTROL-ID: the inbox record of that control ID, as JSON.
rec() {
	curl -s -H "Authorization: Bearer $TOK" "$base/api/hl7/messages?limit=1000" |
	    jq -c --arg c "$1" '[.messages[] | select(.control_id == $c)] | last'
}

# mcheck ID PATIENT CONTROL ROOT STUDIES NAME: batch ID's saved report
# against the files under ROOT (the target's storage area or the export
# tree): the batch resolved to STUDIES (study numbers), every instance of
# them migrated at level bytes, and each file at the target has PatientID
# PATIENT and otherwise the content generated. CONTROL: the merge's
# control ID the transforms name, or - (not merged: no transform, sent as
# it came). TAP lines.
mcheck() {
	"$PY" - "$T_DIR/report-$1.json" "$2" "$3" "$4" "$5" "$T_DIR/gen" \
	    >"$T_DIR/check.out" 2>"$T_DIR/check.err" <<'EOF'
import collections, hashlib, json, os, re, struct, sys
import pydicom
sys.path.insert(0, os.path.join(os.environ['top_srcdir'], 't'))
from scpcheck import meta_end

rp, newpid, ctl, tdir, nums, gen = sys.argv[1:7]
merged = ctl != '-'
rep = json.load(open(rp))
ROOT = '1.2.826.0.1.3680043.10.1297.9.'
EXPL = '1.2.840.10008.1.2.1'
LONG = (b'OB', b'OD', b'OF', b'OL', b'OV', b'OW', b'SQ', b'SV', b'UC', b'UN',
        b'UR', b'UT', b'UV')
HEX = re.compile('^[0-9a-f]{64}$')
K_PID = 'PatientID %s at the target' % newpid
K_TR = ('transforms: [{op set, element (0010,0020), name PatientID, reason, '
        'merge_control_id %s}]' % ctl)
K_BACK = ('the target bytes with the source PatientID put back (if merged) '
          'hash to source_sha256')
K_GSRC = "explicit VR LE: source_sha256 == the generated file's dataset bytes"
K_GSENT = ('explicit VR LE: sent_sha256 == the generated bytes with only '
           'PatientID %s put in' % newpid)

def out(*f):
    print('|'.join(str(x).replace('|', '/').replace('\n', ' ') for x in f))

def dbytes(path):
    b = open(path, 'rb').read()
    return b[meta_end(b):]

def sha(d):
    # as sent: padded to an even length
    return hashlib.sha256(d + b'\0' * (len(d) & 1)).hexdigest()

def splice(d, pid):
    # explicit VR LE dataset bytes with (0010,0020) set to pid (LO,
    # padded with a space to even): None when it is not found
    i = 0
    while i + 8 <= len(d):
        g, e = struct.unpack('<HH', d[i:i + 4])
        vr = d[i + 4:i + 6]
        if vr in LONG:
            end = i + 12 + struct.unpack('<I', d[i + 8:i + 12])[0]
        else:
            end = i + 8 + struct.unpack('<H', d[i + 6:i + 8])[0]
        if (g, e) == (0x0010, 0x0020):
            v = pid.encode('ascii')
            v += b' ' * (len(v) & 1)
            return d[:i] + struct.pack('<HH2sH', g, e, b'LO', len(v)) + v + d[end:]
        if (g, e) > (0x0010, 0x0020):
            return None
        i = end
    return None

# the generated files: SOP -> (path, study UID, PatientID)
gidx = {}
for l in open(os.path.join(gen, 'index.tsv')):
    f = l.rstrip('\n').split('\t')
    gidx[f[3]] = (f[0], f[1], f[5])
want_st = sorted(ROOT + '1.' + n for n in nums.split())
want_sops = sorted(s for s, v in gidx.items() if v[1] in want_st)

# what is at the target: SOP -> path
tgt = {}
for r_, dirs, fs in os.walk(tdir):
    for f in fs:
        p = os.path.join(r_, f)
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
            tgt[str(ds.SOPInstanceUID)] = p
        except Exception:
            pass

s = rep.get('summary', {})
rows = rep.get('instances', [])
got_st = sorted(x.get('study_uid') for x in rep.get('studies', []))
out('is', ' '.join(got_st), ' '.join(want_st),
    'the batch has studies %s' % nums)
out('is', json.dumps(rep.get('unresolved')), '[]', 'nothing unresolved')
out('is', s.get('expected'), len(want_sops),
    'summary: expected, the %d instances generated' % len(want_sops))
out('is', s.get('migrated'), len(want_sops), 'summary: all migrated')
out('is', sorted(r.get('sop_instance_uid') for r in rows) == want_sops, True,
    'one instance row per instance generated')

bad = collections.Counter()
shown = set()
def no(k, why=None):
    bad[k] += 1
    if why is not None and k not in shown:
        shown.add(k)
        out('diag', '%s: %s' % (k, why))

def elems(ds):
    return {e.tag: (e.VR, e.value) for e in ds if e.tag != 0x00100020}

n_expl = 0
for r in rows:
    sop = r.get('sop_instance_uid')
    src, sent, tsha = (r.get('source_sha256'), r.get('sent_sha256'),
                       r.get('target_sha256'))
    if r.get('outcome') != 'migrated':
        no('outcome migrated', json.dumps(r))
    if r.get('level') != 'bytes':
        no('level bytes', r.get('level'))
    if not all(isinstance(h, str) and HEX.match(h) for h in (src, sent, tsha)):
        no('source, sent and target SHA-256 are 64 hex', json.dumps(r))
    tr = r.get('transforms')
    if merged:
        if sent == src:
            no('sent_sha256 != source_sha256', sop)
        t0 = tr[0] if isinstance(tr, list) and len(tr) == 1 and \
            isinstance(tr[0], dict) else {}
        if sorted(t0) != ['element', 'merge_control_id', 'name', 'op',
                          'reason'] or \
                (t0['op'], t0['element'], t0['name'], t0['merge_control_id']) != \
                ('set', '(0010,0020)', 'PatientID', ctl) or \
                not isinstance(t0['reason'], str) or not t0['reason']:
            no(K_TR, json.dumps(tr))
    else:
        if sent != src:
            no('sent_sha256 == source_sha256', sop)
        if tr != []:
            no('transforms empty', json.dumps(tr))
    if tsha != sent:
        no('target_sha256 == sent_sha256', json.dumps(r))
    if sop not in gidx:
        no('an instance generated', sop)
        continue
    gpath, st, oldpid = gidx[sop]
    p = tgt.get(sop)
    if p is None:
        no('found at the target', sop)
        continue
    d = dbytes(p)
    if sha(d) != sent:
        no("the target file's dataset SHA-256 == sent_sha256", p)
    try:
        t = pydicom.dcmread(p)
        o = pydicom.dcmread(gpath)
    except Exception as e:
        no('pydicom reads the files', '%s: %s' % (p, e))
        continue
    if str(t.get('PatientID')) != newpid:
        no(K_PID, '%s: %s' % (p, t.get('PatientID')))
    a, b = elems(o), elems(t)
    if a != b:
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        no('every other element as generated',
           '%s: %s' % (sop, ', '.join('%s %r -> %r' % (k, a.get(k), b.get(k))
                                     for k in diff[:3])))
    if str(t.file_meta.TransferSyntaxUID) != EXPL:
        no('explicit VR LE at the target', p)
        continue
    # byte for byte: only PatientID differs from what the source sent
    back = splice(d, oldpid) if merged else d
    if back is None or sha(back) != src:
        no(K_BACK, sop)
    if str(o.file_meta.TransferSyntaxUID) == EXPL:
        n_expl += 1
        g = dbytes(gpath)
        if sha(g) != src:
            no(K_GSRC, sop)
        want = splice(g, newpid) if merged else g
        if want is None or sha(want) != sent:
            no(K_GSENT, sop)
keys = ['outcome migrated', 'level bytes',
        'source, sent and target SHA-256 are 64 hex',
        'target_sha256 == sent_sha256', 'found at the target',
        "the target file's dataset SHA-256 == sent_sha256",
        'pydicom reads the files', K_PID,
        'every other element as generated', 'explicit VR LE at the target',
        K_BACK]
if merged:
    keys += ['sent_sha256 != source_sha256', K_TR]
else:
    keys += ['sent_sha256 == source_sha256', 'transforms empty']
keys += sorted(k for k in bad if k not in keys and k not in (K_GSRC, K_GSENT))
for k in keys:
    out('is', bad[k], 0, '%s (of %d rows)' % (k, len(rows)))
# odd studies were generated in explicit VR LE
x = sum(1 for s_ in want_sops if int(gidx[s_][1].rsplit('.', 1)[1]) % 2 == 1)
out('is', n_expl, x, 'rows of instances generated in explicit VR LE')
if x:
    for k in (K_GSRC, K_GSENT):
        out('is', bad[k], 0, '%s (of %d)' % (k, n_expl))
EOF
	check_lines $? "$6"
}

# ---- the source ----
gen_studies "$T_DIR/gen" 7 2 2
ok $? "28 instances generated (studies 1-7 x 2 series x 2)"
# study 2 to PAT001, study 5 to PAT004 (the files and index.tsv)
"$PY" - "$T_DIR/gen" <<'EOF'
import os, sys
import pydicom
d = sys.argv[1]
move = {'ACC002': 'PAT001', 'ACC005': 'PAT004'}
lines = []
for l in open(os.path.join(d, 'index.tsv')):
    f = l.rstrip('\n').split('\t')
    if f[6] in move:
        ds = pydicom.dcmread(f[0])
        ds.PatientID = f[5] = move[f[6]]
        ds.save_as(f[0], write_like_original=False)
    lines.append('\t'.join(f) + '\n')
open(os.path.join(d, 'index.tsv'), 'w').writelines(lines)
EOF
is "$?:$(cut -f6,7 "$T_DIR/gen/index.tsv" | sort -u | tr '\t\n' ': ')" \
    "0:PAT001:ACC001 PAT001:ACC002 PAT003:ACC003 PAT004:ACC004 PAT004:ACC005 PAT006:ACC006 PAT007:ACC007 " \
    "studies 2 and 5 moved to patients PAT001 and PAT004"

src_port=$(free_port)
tgt_port=$(free_port)
d_port=$(free_port)
QR_NAME=legacy
start_dcmqrscp LEGACY "$src_port" "$T_DIR/legacy" VNAMIG "$d_port" ||
    mig_bail "the source dcmqrscp (LEGACY) runs"
QR_NAME=vna
start_dcmqrscp VNA "$tgt_port" "$T_DIR/vna" VNAMIG "$d_port" ||
    mig_bail "the target dcmqrscp (VNA) runs"
load_dcmqrscp LEGACY "$src_port" "$T_DIR/gen"
ok $? "LEGACY loaded with the 28 instances, each in its own transfer syntax"

# ---- vnamigd ----
# max_associations 1 to VNA: dcmqrscp names its files from the time and
# can give two associations storing in one second the same name (t/mig.t)
conf=$T_DIR/vnamigd.yaml
mkdir "$EX"
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
migration:
  max_studies: 4
  retrieve_attempts: 3
  send_attempts: 5
  retry_backoff: 200ms
  retry_backoff_max: 2s
peers:
  - { name: legacy, ae_title: LEGACY, host: 127.0.0.1, port: $src_port, role: source, retrieve: move }
  - { name: vna, ae_title: VNA, host: 127.0.0.1, port: $tgt_port, role: target, verify: readback, verify_level: bytes, retrieve: move, max_associations: 1 }
exports:
  - { name: disk, path: $EX }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
hl7:
  senders:
    - { name: ris, app: RIS, facility: MAINHOSP, source: legacy, target: vna }
YAML
out=$("$VNAMIGD" -c "$conf" --check-config 2>&1)
rc=$?
ok $rc "the configuration (a readback target, an export, an HL7 sender) is valid"
[ $rc = 0 ] || diag "$out"
start_daemon "$conf" || mig_bail "vnamigd starts"
base="http://127.0.0.1:$HTTP_PORT"
[ -n "$MLLP_PORT" ] || mig_bail "vnamigd listens for MLLP"
pass "vnamigd runs (DICOM $DICOM_PORT, HTTP $HTTP_PORT, MLLP $MLLP_PORT)"

# ---- a, b, d: merges first, then the batches at once ----
a40 MRG-A1 NEWID PAT001
is "$ACK" "AA MRG-A1" "a: ADT^A40 PAT001 -> NEWID: AA (MSA-2 MRG-A1)"
is "$(rec MRG-A1 | jq -r .outcome)" merge "a:   inbox: outcome merge"
a40 MRG-D1 MID PAT006
is "$ACK" "AA MRG-D1" "d: ADT^A40 PAT006 -> MID: AA"
a40 MRG-D2 FINAL MID
is "$ACK" "AA MRG-D2" "d: ADT^A40 MID -> FINAL: AA"
is "$(rec MRG-D2 | jq -r .outcome)" merge "d:   inbox: outcome merge (a merge of a merged ID)"

# (a)'s two batches one after the other: the same instances in two
# batches at once is case g
submit "a: P1's studies by accession to VNA" \
    '{"source":"legacy","target":"vna","batch_name":"merged-vna","accession_numbers":["ACC001","ACC002"]}'
b_av=$BID
submit "b: PAT003's studies (not merged) by patient_id to VNA" \
    '{"source":"legacy","target":"vna","batch_name":"plain","patient_id":"PAT003"}'
b_b=$BID
submit "d: PAT006's study by accession to VNA" \
    '{"source":"legacy","target":"vna","batch_name":"chain","accession_numbers":["ACC006"]}'
b_d=$BID
[ -n "$b_av" ] && [ -n "$b_b" ] && [ -n "$b_d" ] ||
    mig_bail "a, b, d: the batches were taken"
for b in $b_av $b_b $b_d; do
	wait_batch "$b" 40
	is "$BSTATE" done "batch $b reaches done"
	report "$b"
done
submit "a: the same to the export disk" \
    '{"source":"legacy","target":"disk","batch_name":"merged-disk","accession_numbers":["ACC001","ACC002"]}'
b_ad=$BID
[ -n "$b_ad" ] || mig_bail "a: the batch was taken"
wait_batch "$b_ad" 40
is "$BSTATE" done "a: batch $b_ad (export) reaches done"
report "$b_ad"

mcheck "$b_av" NEWID MRG-A1 "$T_DIR/vna" "1 2" "a: VNA"
mcheck "$b_ad" NEWID MRG-A1 "$EX" "1 2" "a: export"
is "$(find "$EX" -type f | wc -l)" 8 "a: the export holds the 8 files, nothing else"
mcheck "$b_b" PAT003 - "$T_DIR/vna" "3" "b: not merged"
mcheck "$b_d" FINAL MRG-D2 "$T_DIR/vna" "6" "d: chain PAT006 -> MID -> FINAL"

# ---- c: a waiting batch by patient, merged while it waits ----
api POST /api/sources/legacy/pause '{"reason":"migmerge.t"}'
is "$code" 200 "c: POST /api/sources/legacy/pause: 200"
submit "c: a batch by patient_id PAT004 while the source is paused" \
    '{"source":"legacy","target":"vna","batch_name":"waiting","patient_id":"PAT004"}'
b_c=$BID
[ -n "$b_c" ] || mig_bail "c: the batch was taken"
sleep 0.5
api GET "/api/batches/$b_c"
is "$(j '.batch.state + " " + .batch.patient_id')" "queued PAT004" \
    "c: it waits (queued, patient_id PAT004)"
a40 MRG-C1 NEW3 PAT004
is "$ACK" "AA MRG-C1" "c: ADT^A40 PAT004 -> NEW3: AA"
is "$(rec MRG-C1 | jq -c '[.outcome, .merge.rewritten]')" "[\"merge\",[$b_c]]" \
    "c:   inbox: outcome merge, rewritten [$b_c]"
api GET "/api/batches/$b_c"
is "$(j '.batch.patient_id')" NEW3 "c: the batch's patient_id is NEW3"
is "$(j '.batch.merged_from | tostring')" '["PAT004"]' "c: its merged_from is [\"PAT004\"]"
api POST /api/sources/legacy/resume
is "$code" 200 "c: POST /api/sources/legacy/resume: 200"
wait_batch "$b_c" 40
is "$BSTATE" done "c: batch $b_c reaches done"
report "$b_c"
is "$(rj "$b_c" '.summary.unresolved')" 0 "c: summary: 0 unresolved"
mcheck "$b_c" NEW3 MRG-C1 "$T_DIR/vna" "4 5" "c: merged while waiting"

# ---- g: the same merged studies to VNA and the export at once ----
# force_full_repull (both targets have them): each batch retrieves from
# LEGACY while the other sends, writes and reads back. G_ROUNDS rounds of
# the two batches; over all their rows: every instance migrated at level
# bytes; source_sha256 the source's (a's, checked there against the
# generated files), not a copy read back from VNA for the other batch;
# edited on the way (sent != source) and target == sent.
G_ROUNDS=${G_ROUNDS:-4}
: >"$T_DIR/g.all"
g_n=0
r=1
while [ "$r" -le "$G_ROUNDS" ]; do
	api POST /api/batches '{"source":"legacy","target":"vna","force_full_repull":true,"accession_numbers":["ACC001","ACC002"]}'
	g1=$(j '.batch_id // empty')
	api POST /api/batches '{"source":"legacy","target":"disk","force_full_repull":true,"accession_numbers":["ACC001","ACC002"]}'
	g2=$(j '.batch_id // empty')
	for b in $g1 $g2; do
		wait_batch "$b" 40
		report "$b"
		[ "$BSTATE" = done ] && g_n=$((g_n + 1))
		"$PY" - "$T_DIR/report-$b.json" "$T_DIR/report-$b_av.json" "$r" \
		    >>"$T_DIR/g.all" 2>&1 <<'EOF'
import json, sys
rep = json.load(open(sys.argv[1]))
src = {r['sop_instance_uid']: r['source_sha256']
       for r in json.load(open(sys.argv[2]))['instances']}
b = rep.get('batch', {})
rows = rep.get('instances', [])
tag = 'round %s, batch %s to %s' % (sys.argv[3], b.get('id'), b.get('target'))
print('rows|%d' % len(rows))
for r in rows:
    sop = r.get('sop_instance_uid')
    if r.get('outcome') != 'migrated' or r.get('level') != 'bytes':
        print('notmig|%s: %s: %s/%s (%s; study %s)' % (
            tag, sop, r.get('outcome'), r.get('level'), r.get('detail'),
            [s.get('state') for s in rep.get('studies', [])
             if s.get('study_uid') == r.get('study_uid')]))
    if r.get('source_sha256') != src.get(sop):
        print("src|%s: %s: source_sha256 %s, the source's %s%s" % (
            tag, sop, r.get('source_sha256'), src.get(sop),
            ' (its sent_sha256: a copy read back with the PatientID '
            'already edited)' if r.get('source_sha256') ==
            r.get('sent_sha256') else ''))
    if r.get('sent_sha256') == r.get('source_sha256') or \
            (r.get('outcome') == 'migrated' and
             r.get('target_sha256') != r.get('sent_sha256')):
        print('sent|%s: %s: source %s sent %s target %s' % (
            tag, sop, r.get('source_sha256'), r.get('sent_sha256'),
            r.get('target_sha256')))
EOF
	done
	r=$((r + 1))
done
g_rows=$(awk -F'|' '$1 == "rows" { n += $2 } END { print n + 0 }' "$T_DIR/g.all")
is "$g_n/$g_rows" "$((2 * G_ROUNDS))/$((16 * G_ROUNDS))" \
    "g: $G_ROUNDS rounds of two batches of P1's studies at once (VNA and the export, force_full_repull): all done, 8 rows each"
for k in notmig src sent; do
	case $k in
	notmig) what="every instance migrated at level bytes (none quarantined, none left pending in a done batch)" ;;
	src) what="source_sha256 is the source's, never a copy read back from the target for the other batch" ;;
	sent) what="sent_sha256 != source_sha256 (edited), target_sha256 == sent_sha256" ;;
	esac
	is "$(grep -c "^$k|" "$T_DIR/g.all")" 0 "g: $what"
	grep "^$k|" "$T_DIR/g.all" | head -4 | cut -d'|' -f2- | cut -c1-300 | sed 's/^/#   /'
done

# ---- e: an audit leaf of (a) ----
wait_until 10 sh -c "curl -s -H 'Authorization: Bearer $TOK' '$base/api/status' |
    jq -e '.audit.durable_size > 0 and .audit.size == .audit.durable_size' >/dev/null"
ok $? "e: the audit log settles"
curl -s -H "Authorization: Bearer $TOK" -o "$T_DIR/audit.jsonl" "$base/api/audit/export"
seq=$(jq -s --argjson b "$b_av" \
    '[to_entries[] | select(.value.event == "instance.migrated" and .value.object.batch_id == $b)][0].key // empty' \
    "$T_DIR/audit.jsonl")
[ -n "$seq" ]
ok $? "e: the export has an instance.migrated leaf of batch $b_av (seq $seq)"
api GET "/api/audit/leaf/${seq:-0}"
printf '%s' "$out" >"$T_DIR/leaf.json"
is "$code $(j '.leaf.event + " " + (.leaf.object.batch_id | tostring)')" \
    "200 instance.migrated $b_av" "e: GET /api/audit/leaf/$seq: that leaf"
mrec=$(rec MRG-A1)
"$PY" - "$T_DIR/leaf.json" "$T_DIR/report-$b_av.json" "$mrec" \
    >"$T_DIR/leaf.out" 2>&1 <<'EOF'
import hashlib, json, re, sys
q = json.load(open(sys.argv[1]))
rep = json.load(open(sys.argv[2]))
mrec = json.loads(sys.argv[3] or 'null') or {}
leaf = q.get('leaf') or {}
text = q.get('leaf_text') or ''
HEX = re.compile('^[0-9a-f]{64}$')
def out(*f):
    print('|'.join(str(x).replace('|', '/') for x in f))
t = leaf.get('transforms')
t0 = t[0] if isinstance(t, list) and t and isinstance(t[0], dict) else {}
out('is', bool(HEX.match(str(leaf.get('transform')))), True,
    'transform: 64 hex (%s)' % leaf.get('transform'))
out('is', hashlib.sha256(json.dumps(t, sort_keys=True, separators=(',', ':'))
                         .encode()).hexdigest(), leaf.get('transform'),
    'transform: the SHA-256 of its transforms (compact, keys sorted)')
out('is', (len(t) if isinstance(t, list) else -1, t0.get('op'), t0.get('element'),
           t0.get('name'), t0.get('merge_control_id')),
    (1, 'set', '(0010,0020)', 'PatientID', 'MRG-A1'),
    'transforms[0]: set (0010,0020) PatientID, merge MRG-A1')
for k in ('old_phi', 'new_phi'):
    out('is', bool(HEX.match(str(t0.get(k)))), True, 'transforms[0].%s: 64 hex' % k)
out('is', t0.get('old_phi') != t0.get('new_phi'), True, 'old_phi != new_phi')
m = mrec.get('merge') or {}
out('is', (t0.get('old_phi'), t0.get('new_phi')), (m.get('from_phi'), m.get('to_phi')),
    "old_phi/new_phi: the inbox record's commitments of the merge (from_phi/to_phi)")
def strings(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        for k, x in v.items():
            yield k
            yield from strings(x)
    elif isinstance(v, list):
        for x in v:
            yield from strings(x)
clear = [s for s in strings(leaf) if 'PAT001' in s or 'NEWID' in s]
out('is', ' '.join(clear) + (' (leaf_text)' if 'PAT001' in text or 'NEWID' in text else ''),
    '', 'no PAT001 or NEWID anywhere in the leaf')
sop = (leaf.get('object') or {}).get('sop_instance_uid')
row = [r for r in rep.get('instances', []) if r.get('sop_instance_uid') == sop]
h = leaf.get('hashes') or {}
out('is', (h.get('source_sha256'), h.get('sent_sha256'), h.get('target_sha256'))
    == ((row[0].get('source_sha256'), row[0].get('sent_sha256'),
         row[0].get('target_sha256')) if row else None), True,
    "hashes: the report row's for its instance")
out('is', h.get('sent_sha256') != h.get('source_sha256'), True,
    'hashes: sent_sha256 != source_sha256')
EOF
[ $? = 0 ] || { fail "e: the leaf could be checked"; sed 's/^/# /' "$T_DIR/leaf.out"; }
while IFS='|' read -r kind a b c; do
	[ "$kind" = is ] && is "$a" "$b" "e: $c"
done <"$T_DIR/leaf.out"

# the edited copies are removed once sent (the spool's xform directory)
is "$(test -d "$T_DIR/var/spool/xform" && find "$T_DIR/var/spool/xform" -type f | wc -l)" 0 \
    "no edited copy left in the spool's xform directory"

# ---- f: the audit log, the daemon's log ----
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
"$VNAMIGD" -c "$conf" --audit-export "$T_DIR/audit" >"$T_DIR/export.out" 2>&1
ok $? "f: vnamigd --audit-export"
"$VNAMIG_VERIFY" audit "$T_DIR/audit" --key "$T_DIR/var-audit.pem.pub" \
    >"$T_DIR/verify.out" 2>&1
rc=$?
is "$rc" 0 "f: vnamig-verify: the exported log verifies"
[ "$rc" = 0 ] || sed 's/^/# /' "$T_DIR/verify.out"
like "$(cat "$T_DIR/verify.out")" "OK leaves=[0-9]+ " "  OK, with its leaves"
! grep -q -e PAT001 -e NEWID -e PAT004 -e NEW3 -e PAT006 -e '"MID"' -e FINAL \
    "$T_DIR/audit/leaves.jsonl"
ok $? "f: no merged or surviving ID in clear in the audit log"
cat "$T_DIR/daemon.log" "$T_DIR/export.out" >"$T_DIR/daemon-all.log"
! grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$T_DIR/daemon-all.log"
ok $? "no sanitizer report in vnamigd's logs"

stop_peers
done_testing
