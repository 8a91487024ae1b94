#!/bin/sh
# migorthanc.t — the migration engine (src/mig/) end to end between two
# real Orthanc archives: ORTHSRC (the source, loaded over its REST API
# with generated CT and MR studies and three files from pydicom's corpus,
# one of them JPEG baseline) and ORTHDST (the target), each with its own
# storage, DICOM and HTTP port. vnamigd has two peers for ORTHDST:
#
#   orthdst   verify: counts (the default)
#   orthdst2  the same Orthanc (it does not check the called AE title) as
#             ORTHDST2, verify: readback, readback_percent 100,
#             verify_level: bytes, retrieve: get (read back with an
#             IMAGE-level C-GET)
#
#   a  studies 1, 2 and CT_small.dcm's, ORTHSRC -> orthdst: migrated,
#      every row at level count
#   b  study 3, MR_small.dcm's and SC_rgb_jpeg_dcmtk.dcm's (JPEG
#      baseline), ORTHSRC -> orthdst2: migrated, every row at level bytes,
#      target_sha256 == sent_sha256
#   c  all six studies again to orthdst: every instance skipped_present,
#      nothing sent (ORTHDST's change log does not move, its verbose log
#      shows no more C-STORE requests)
#
# Bytes are checked independently of vnamigd, through both Orthancs' REST
# API: Orthanc keeps each file as it was posted or received (no storage
# compression, no transcoding on ingest), so GET /instances/ID/file of the
# source is the file loaded, and of the target what vnamigd sent. For each
# instance: the target keeps the source's transfer syntax, its dataset
# bytes (what follows the file meta group) equal the source's, and the
# report row's source_sha256 is their SHA-256. One exception, Orthanc's
# own: CT_small.dcm and MR_small.dcm end with a (FFFC,FFFC) Data Set
# Trailing Padding, which Orthanc (DCMTK underneath) leaves out when it
# sends them (to DCMTK's storescp as well), so vnamigd receives, hashes
# and forwards them without it; they are compared without it and the
# others byte for byte, padding included. Last, no association is
# aborted (vnamigd's log) and neither Orthanc logs an error.
#
# start_orthanc (qrpeers.sh) runs one Orthanc ($T_DIR/orthanc, one
# ORTHANC_PID): the target is started here by start_orthanc_dst with its
# own configuration, modelled on start_orthanc's.
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
export LC_ALL=C

PYD=/usr/lib/python3/dist-packages/pydicom/data/test_files
DST_PID=

stop_dst() {
	[ -n "$DST_PID" ] && qp_stop "$DST_PID" "${1:-TERM}"
	DST_PID=
}
trap 'stop_dst KILL; stop_peers KILL; cleanup' EXIT

# bail NAME: a "not ok" for something the rest needs; stop everything.
bail() {
	fail "$1"
	stop_dst KILL
	stop_peers KILL
	done_testing
}

# start_orthanc_dst AET DICOM_PORT HTTP_PORT CLIENT_AET CLIENT_PORT: the
# second Orthanc, as start_orthanc (any calling AE may echo, store, find,
# get, move; CLIENT_AET known as a move destination) with its
# configuration and storage in $T_DIR/orthdst and its log in
# $T_DIR/orthdst.log, verbose (a line per C-STORE request it takes).
# Sets DST_PID.
start_orthanc_dst() {
	od_dir=$T_DIR/orthdst
	mkdir -p "$od_dir/db" || return 1
	qp_port_free "$2" && qp_port_free "$3" || return 1
	od_nonce=$$-dst-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
	cat >"$od_dir/orthanc.json" <<JSON
{
  "Name" : "vnamig-test-$od_nonce",
  "StorageDirectory" : "$od_dir/db",
  "IndexDirectory" : "$od_dir/db",
  "Plugins" : [ ],
  "HttpServerEnabled" : true,
  "HttpPort" : $3,
  "RemoteAccessAllowed" : false,
  "AuthenticationEnabled" : false,
  "OrthancExplorerEnabled" : false,
  "WebDavEnabled" : false,
  "MetricsEnabled" : false,
  "HttpThreadsCount" : 10,
  "DicomServerEnabled" : true,
  "DicomAet" : "$1",
  "DicomPort" : $2,
  "DicomCheckCalledAet" : false,
  "DicomCheckModalityHost" : false,
  "DicomAlwaysAllowEcho" : true,
  "DicomAlwaysAllowStore" : true,
  "DicomAlwaysAllowFind" : true,
  "DicomAlwaysAllowGet" : true,
  "DicomAlwaysAllowMove" : true,
  "DicomModalities" : {
    "client" : [ "$4", "127.0.0.1", $5 ]
  },
  "DicomAssociationCloseDelay" : 0,
  "SaveJobs" : false,
  "StableAge" : 1
}
JSON
	Orthanc --verbose "$od_dir/orthanc.json" </dev/null \
	    >"$T_DIR/orthdst.log" 2>&1 &
	DST_PID=$!
	qp_wait "$DST_PID" 30 qp_http_has "http://127.0.0.1:$3/system" \
		"vnamig-test-$od_nonce" ||
		qp_fail "Orthanc $1 (DICOM $2, HTTP $3) does not answer GET /system" \
			"$T_DIR/orthdst.log"
}

# check ID OUTCOME NAME: the saved report of batch ID against both
# Orthancs (REST): the instances expected are those ORTHSRC holds for
# the report's studies, every one's outcome is OUTCOME, the summary adds
# up, and (migrated) every instance is at ORTHDST with the dataset bytes
# ORTHSRC holds, whose SHA-256 is the row's source_sha256 (and
# sent_sha256). Results are TAP lines; LEVELS: the rows' levels.
check() {
	LEVELS=
	"$PY" - "$T_DIR/report-$1.json" "$2" "$src_http" "$dst_http" \
	    "$T_DIR/loaded.tsv" >"$T_DIR/check.out" 2>"$T_DIR/check.err" <<'EOF'
import collections, hashlib, http.client, io, json, os, struct, sys
import pydicom
sys.path.insert(0, os.path.join(os.environ['top_srcdir'], 't'))
from scpcheck import dataset  # the dataset bytes, padded to even

rp, want, sport, dport, loaded = sys.argv[1:6]
rep = json.load(open(rp))

def out(*f):
    print('|'.join(str(x) for x in f))

def xfer(b):
    return str(pydicom.dcmread(io.BytesIO(b), stop_before_pixels=True)
               .file_meta.TransferSyntaxUID)

def unpadded(d):
    # d without a trailing (FFFC,FFFC) Data Set Trailing Padding (explicit
    # VR OB or implicit VR, little endian) that ends the dataset
    k = len(d)
    while True:
        k = d.rfind(b'\xfc\xff\xfc\xff', 0, k)
        if k < 0:
            return d
        if d[k + 4:k + 8] == b'OB\0\0' and \
                k + 12 + struct.unpack('<I', d[k + 8:k + 12])[0] == len(d):
            return d[:k]
        if k + 8 + struct.unpack('<I', d[k + 4:k + 8])[0] == len(d):
            return d[:k]

class Orthanc:
    def __init__(self, port):
        self.c = http.client.HTTPConnection('127.0.0.1', int(port), timeout=30)
    def req(self, method, path, body=None, raw=False):
        self.c.request(method, path, body)
        r = self.c.getresponse()
        b = r.read()
        if r.status != 200:
            raise Exception('%s %s: HTTP %d %s' % (method, path, r.status, b[:200]))
        return b if raw else json.loads(b)
    def instances(self, study_uids):
        # SOP Instance UID -> Orthanc ID, for the studies given
        m = {}
        for u in study_uids:
            for x in self.req('POST', '/tools/find', json.dumps(
                    {'Level': 'Instance', 'Expand': True,
                     'Query': {'StudyInstanceUID': u}})):
                m[x['MainDicomTags']['SOPInstanceUID']] = x['ID']
        return m
    def file(self, oid):
        return self.req('GET', '/instances/%s/file' % oid, raw=True)

src, dst = Orthanc(sport), Orthanc(dport)
s = rep.get('summary', {})
rows = rep.get('instances', [])
E = s.get('expected')
studies = sorted({x.get('study_uid') for x in rep.get('studies', [])})
sm = src.instances(studies)
out('is', E, len(sm), 'expected: the %d instances ORTHSRC holds for the %d '
    'studies' % (len(sm), len(studies)))
out('is', float(s.get('accounted_percent', 0)) == 100.0, True,
    'summary: accounted_percent 100 (got %s)' % s.get('accounted_percent'))
parts = sum(s.get(k, 0) for k in ('migrated', 'skipped_present', 'quarantined',
                                  'failed', 'pending'))
out('is', parts, E, 'summary: the outcomes add up to expected')
out('is', s.get(want), E, 'summary: %s == expected' % want)
out('is', len(rows), E, 'one instance row per expected instance')
out('is', len({r.get('sop_instance_uid') for r in rows}), len(rows),
    'no instance counted twice')
out('is', sorted(r.get('sop_instance_uid') for r in rows), sorted(sm),
    'the rows are the instances ORTHSRC holds')
byout = collections.Counter(r.get('outcome') for r in rows)
out('is', byout.get(want, 0), len(rows), 'every row: outcome %s (%s)'
    % (want, dict(byout)))
for r in rows:
    if r.get('outcome') != want:
        out('diag', 'row: ' + json.dumps(r))
        break
# the files loaded into ORTHSRC: Orthanc keeps each as posted
orig = dict(l.rstrip('\n').split('\t') for l in open(loaded))
same = [u for u in sm if u in orig and src.file(sm[u]) == open(orig[u], 'rb').read()]
out('is', len(same), len(sm), 'ORTHSRC holds each file byte for byte as loaded')
dm = dst.instances(studies)
out('is', sorted(dm), sorted(sm), 'ORTHDST holds every instance of the '
    'studies (REST, /tools/find)')
sha, tsha, eq, exact, ts, padded = {}, {}, 0, 0, 0, []
for u in sm:
    sf = src.file(sm[u])
    sraw = dataset(sf)
    sd = unpadded(sraw)
    if sd != sraw:
        padded.append(u)
    sha[u] = hashlib.sha256(sd).hexdigest()
    if u in dm:
        tf = dst.file(dm[u])
        td = dataset(tf)
        tsha[u] = hashlib.sha256(td).hexdigest()
        ts += xfer(tf) == xfer(sf)
        exact += td == sraw
        if td == sd:
            eq += 1
        else:
            out('diag', '%s: ORTHDST dataset %d bytes sha256 %s, ORTHSRC '
                '%d bytes sha256 %s' % (u, len(td), tsha[u], len(sd), sha[u]))
out('is', ts, len(sm), 'ORTHDST keeps each instance in the transfer syntax '
    'ORTHSRC has (nothing transcoded)')
out('is', eq, len(sm), 'ORTHDST has the dataset bytes ORTHSRC has, for '
    'each instance (GET /instances/ID/file from both; less a trailing '
    '(FFFC,FFFC) padding)')
out('is', exact, len(sm) - len(padded), 'byte for byte, trailing padding '
    'included, those %d without one' % (len(sm) - len(padded)))
if padded:
    out('diag', 'with a (FFFC,FFFC) Data Set Trailing Padding at ORTHSRC, '
        'not at ORTHDST (Orthanc, with DCMTK underneath, drops it '
        'when it sends): ' + ' '.join(sorted(padded)))
if want == 'migrated':
    ok = [r for r in rows if r.get('source_sha256') == sha.get(r.get('sop_instance_uid'))]
    out('is', len(ok), len(rows), "source_sha256: the SHA-256 of ORTHSRC's "
        'dataset bytes (less a trailing padding), for each row')
    for r in rows:
        if r not in ok:
            out('diag', 'row %s: source_sha256 %s, ORTHSRC\'s %s' % (
                r.get('sop_instance_uid'), r.get('source_sha256'),
                sha.get(r.get('sop_instance_uid'))))
    ok = [r for r in rows if r.get('sent_sha256') == r.get('source_sha256')
          and not r.get('transforms')]
    out('is', len(ok), len(rows), 'sent_sha256 == source_sha256, no transforms')
    ok = [r for r in rows if r.get('sent_sha256') == tsha.get(r.get('sop_instance_uid'))]
    out('is', len(ok), len(rows), "sent_sha256: the SHA-256 of ORTHDST's "
        'dataset bytes, for each row')
levels = collections.Counter(r.get('level') for r in rows)
out('levels', ' '.join('%s=%d' % (k, v) for k, v in sorted(levels.items(),
                                                             key=str)))
EOF
	check_lines $? "$3" "the report could be checked against both Orthancs"
}

# orthanc_get PORT PATH JQ: a value from one Orthanc's REST API.
orthanc_get() { curl -sf "http://127.0.0.1:$1$2" | jq -r "$3" 2>/dev/null; }

# ---- the archives ----
gen_studies "$T_DIR/gen" 3 2 2
ok $? "12 instances generated (3 studies x 2 series x 2; CT explicit LE, MR implicit LE)"
mkdir -p "$T_DIR/odd"
for f in CT_small.dcm MR_small.dcm SC_rgb_jpeg_dcmtk.dcm; do
	cp "$PYD/$f" "$T_DIR/odd/" || bail "pydicom's $f is there"
done
# SOP Instance UID -> file loaded (for check) and the odd files' studies
"$PY" - "$T_DIR/gen" "$T_DIR/odd" >"$T_DIR/loaded.tsv" <<'EOF'
import os, sys, pydicom
for d in sys.argv[1:]:
    for root, dirs, fs in os.walk(d):
        for f in fs:
            if f.endswith('.dcm'):
                p = os.path.join(root, f)
                print('%s\t%s' % (pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID, p))
EOF
is "$(wc -l <"$T_DIR/loaded.tsv" | tr -d ' ')" 15 "15 files to load (3 from pydicom's corpus)"
odd_uid() { "$PY" -c 'import pydicom, sys; print(pydicom.dcmread(sys.argv[1], stop_before_pixels=True).StudyInstanceUID)' "$T_DIR/odd/$1"; }
u_ct=$(odd_uid CT_small.dcm)
u_mr=$(odd_uid MR_small.dcm)
u_jpg=$(odd_uid SC_rgb_jpeg_dcmtk.dcm)
A_UIDS="$ROOT.1.1 $ROOT.1.2 $u_ct"
B_UIDS="$ROOT.1.3 $u_mr $u_jpg"
jlist() { printf '%s\n' "$@" | jq -R . | jq -sc .; }

src_dicom=$(free_port)
src_http=$(free_port)
dst_dicom=$(free_port)
dst_http=$(free_port)
d_port=$(free_port)
start_orthanc ORTHSRC "$src_dicom" "$src_http" VNAMIG "$d_port" ||
    bail "the source Orthanc (ORTHSRC) runs"
start_orthanc_dst ORTHDST "$dst_dicom" "$dst_http" VNAMIG "$d_port" ||
    bail "the target Orthanc (ORTHDST) runs"
pass "two Orthanc run: ORTHSRC (DICOM $src_dicom, HTTP $src_http), ORTHDST (DICOM $dst_dicom, HTTP $dst_http)"
load_orthanc "$src_http" "$T_DIR/gen" && load_orthanc "$src_http" "$T_DIR/odd"
ok $? "ORTHSRC loaded over REST: 12 generated instances, CT_small, MR_small, SC_rgb_jpeg_dcmtk (JPEG baseline)"
is "$(orthanc_get "$src_http" /statistics .CountInstances)/$(orthanc_get "$dst_http" /statistics .CountInstances)" \
    "15/0" "ORTHSRC counts 15 instances, ORTHDST none"

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
  - { name: orthsrc, ae_title: ORTHSRC, host: 127.0.0.1, port: $src_dicom, role: source, retrieve: move }
  - { name: orthdst, ae_title: ORTHDST, host: 127.0.0.1, port: $dst_dicom, role: target, verify: counts, commit: true }
  - { name: orthdst2, ae_title: ORTHDST2, host: 127.0.0.1, port: $dst_dicom, role: target, verify: readback, readback_percent: 100, verify_level: bytes, retrieve: get }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
mig_start bail "two peers for ORTHDST, verify: counts and readback"

# ---- a: ORTHSRC -> orthdst, verify: counts ----
# shellcheck disable=SC2086
submit "a: 3 studies ORTHSRC -> orthdst (verify: counts)" \
    "{\"source\":\"orthsrc\",\"target\":\"orthdst\",\"batch_name\":\"orthanc-a\",\"study_instance_uids\":$(jlist $A_UIDS)}"
b_a=$BID
[ -n "$b_a" ] || bail "a: the batch was taken"
wait_batch "$b_a" 40
is "$BSTATE" "done" "a: batch $b_a reaches done"
report "$b_a"
is "$(rj "$b_a" '.summary.expected')/$(rj "$b_a" '.summary.studies.total')" \
    "9/3" "a: 9 instances in 3 studies expected"
check "$b_a" migrated "a"
is "$LEVELS" "count=9" "a: every instance verified by the count at ORTHDST (level count)"
is "$(rj "$b_a" '[.studies[] | select(.state != "done")] | length')" 0 \
    "a: every study of the batch is done"
is "$(rj "$b_a" '[.instances[] | select(.committed != true)] | length')" 0 \
    "a: ORTHDST took every instance under storage commitment (commit: true)"

# ---- b: ORTHSRC -> orthdst2 (the same Orthanc), read back by C-GET ----
# shellcheck disable=SC2086
submit "b: 3 studies ORTHSRC -> orthdst2 (verify: readback, bytes, C-GET)" \
    "{\"source\":\"orthsrc\",\"target\":\"orthdst2\",\"batch_name\":\"orthanc-b\",\"study_instance_uids\":$(jlist $B_UIDS)}"
b_b=$BID
[ -n "$b_b" ] || bail "b: the batch was taken"
wait_batch "$b_b" 40
is "$BSTATE" "done" "b: batch $b_b reaches done"
report "$b_b"
is "$(rj "$b_b" '.summary.expected')/$(rj "$b_b" '.summary.studies.total')" \
    "6/3" "b: 6 instances in 3 studies expected"
check "$b_b" migrated "b"
is "$LEVELS" "bytes=6" "b: every instance read back from ORTHDST at level bytes"
is "$(rj "$b_b" '[.instances[] | select(.target_sha256 != .sent_sha256)] | length')" \
    0 "b: target_sha256 (read back by C-GET) == sent_sha256 for each"
is "$(rj "$b_b" '[.instances[] | select(.sop_class_uid == "1.2.840.10008.5.1.4.1.1.7")] | length')" \
    1 "b: the JPEG baseline secondary capture is among them"
is "$(orthanc_get "$dst_http" /statistics .CountInstances)" 15 \
    "ORTHDST counts the 15 instances"
# dst_stores: the C-STORE requests ORTHDST has taken (its verbose log)
dst_stores() { grep -c 'Incoming Store request from AET VNAMIG' "$T_DIR/orthdst.log"; }
is "$(dst_stores)" 15 "ORTHDST took 15 C-STORE requests from VNAMIG, one per instance"

# ---- c: everything again to orthdst: nothing to send ----
changes_before=$(orthanc_get "$dst_http" '/changes?limit=1' .Last)
# shellcheck disable=SC2086
submit "c: the 6 studies again ORTHSRC -> orthdst" \
    "{\"source\":\"orthsrc\",\"target\":\"orthdst\",\"batch_name\":\"orthanc-again\",\"study_instance_uids\":$(jlist $A_UIDS $B_UIDS)}"
b_c=$BID
[ -n "$b_c" ] || bail "c: the batch was taken"
wait_batch "$b_c" 40
is "$BSTATE" "done" "c: batch $b_c reaches done"
report "$b_c"
is "$(rj "$b_c" '.summary.expected')/$(rj "$b_c" '.summary.studies.total')" \
    "15/6" "c: 15 instances in 6 studies expected"
check "$b_c" skipped_present "c"
is "$(rj "$b_c" '.summary.migrated')" 0 "c: nothing migrated"
is "$(orthanc_get "$dst_http" '/changes?limit=1' .Last)/$(orthanc_get "$dst_http" /statistics .CountInstances)" \
    "$changes_before/15" "c: ORTHDST's change log did not move, still 15 instances"
is "$(dst_stores)" 15 "c: nothing was sent again (ORTHDST took no more C-STOREs)"
api GET "/api/batches/$b_a/report"
a_m=$(j '.summary.migrated')
api GET "/api/batches/$b_b/report"
is "$a_m/$(j '.summary.migrated')" "9/6" \
    "c: the earlier batches' reports still count 9 and 6 migrated"

# Orthanc's C-STORE sub-operations (C-MOVE) and C-GET responses were each
# taken in turn: no association aborted on either side.
n=$(grep -c ' assoc-abort ' "$T_DIR/daemon.log")
is "$n" 0 "vnamigd aborted no association"
[ "$n" = 0 ] || grep -E ' (assoc-abort|store-unanswered|mig-missing) ' \
    "$T_DIR/daemon.log" | head -n 8 | cut -c1-300 | sed 's/^/#   /'
n=$(grep -c '^E' "$T_DIR/orthanc.log" "$T_DIR/orthdst.log" | awk -F: '{ s += $2 } END { print s }')
is "$n" 0 "neither Orthanc logged an error"
[ "$n" = 0 ] || grep -h '^E' "$T_DIR/orthanc.log" "$T_DIR/orthdst.log" |
    head -n 6 | sed 's/^/#   /'

stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
! grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$T_DIR/daemon.log"
ok $? "no sanitizer report in vnamigd's log"

stop_dst KILL
stop_peers KILL
done_testing
