# t/qrpeers.sh — real query/retrieve peers for the integration scripts:
# synthetic studies, DCMTK's dcmqrscp and Orthanc as source PACS (C-FIND,
# C-MOVE, C-GET), loaded over the network. Source it after lib.sh:
#
#	. "$top_srcdir/t/lib.sh"
#	. "$top_srcdir/t/qrpeers.sh"
#
# lib.sh's EXIT trap only knows vnamigd, so a script that starts a peer
# must call stop_peers itself before done_testing (and before any early
# exit). Everything talks to 127.0.0.1, but neither dcmqrscp 3.6.7 nor
# Orthanc 1.10.1 can bind one address: their ports listen on all
# interfaces (Orthanc's RemoteAccessAllowed false keeps its HTTP API to
# loopback clients). Peers log under $T_DIR and are quiet on success;
# failures print diag lines with the log's tail and return 1. Each start_*
# first checks its port is free, so a stray listener is not mistaken for
# the peer. Without lib.sh (contrib/quickstart), set T_DIR before sourcing
# this file; diag lines then go to stderr.
#
# gen_studies DIR NSTUDIES NSERIES NINST [FIRST]
#	Part 10 files, deterministic, into DIR/stNNN/seNN/inNNNN.dcm: studies
#	FIRST.. (default 1) of NSERIES series of NINST 16x16 MONOCHROME2
#	16-bit (12 stored) images each. Study s: PatientID PATsss, PatientName
#	DOE^JOHNs, AccessionNumber ACCsss, StudyID Ss, StudyDate 20200101 + s-1
#	days; odd s: CT Image Storage in Explicit VR LE, even s: MR Image
#	Storage in Implicit VR LE. UIDs under 1.2.826.0.1.3680043.10.1297.9.:
#	study 1.s, series 2.s.r, instance 3.s.r.i, frame of ref 4.s.r.
#	DIR/index.tsv, one line per file, tab-separated: path (DIR/...),
#	StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID, SOPClassUID,
#	PatientID, AccessionNumber, StudyDate, Modality.
#
# start_dcmqrscp AET PORT STOREDIR CLIENT_AET CLIENT_PORT
#	dcmqrscp (forking, +B: stores received bytes as they came) with
#	$T_DIR/$QR_NAME.cfg ($QR_NAME: default dcmqrscp): AE AET on STOREDIR
#	(RW, 500 studies at most, 1 GB per study; more studies and it
#	deletes the oldest), any calling AE accepted; move destinations
#	CLIENT_AET at 127.0.0.1:CLIENT_PORT and, if $QR_OTHER_PORT is set,
#	OTHER at 127.0.0.1:$QR_OTHER_PORT. C-GET on.
#	$QR_ARGS: extra dcmqrscp options (e.g. +xs to accept JPEG lossless).
#	Sets QR_PID (and adds it to QR_PIDS); log $T_DIR/$QR_NAME.log;
#	waits until C-ECHO answers. Give each of several dcmqrscp its own
#	QR_NAME (a source and a target archive).
#
# load_dcmqrscp AET PORT DIR
#	C-STORE every DIR/**/*.dcm with storescu, one association per transfer
#	syntax, each proposing only the file's own syntax so that dcmqrscp
#	keeps the bytes (explicit LE, implicit LE, explicit BE; others are
#	proposed as storescu does by default and need $QR_ARGS). 1 unless
#	every file got a success response.
#
# start_orthanc AET DICOM_PORT HTTP_PORT CLIENT_AET CLIENT_PORT
#	Orthanc with $T_DIR/orthanc/orthanc.json and storage in
#	$T_DIR/orthanc/db; DicomModalities "client" = CLIENT_AET at
#	127.0.0.1:CLIENT_PORT (and "other" = OTHER at $QR_OTHER_PORT if set);
#	any calling AE may echo/store/find/get/move; no plugins
#	(ORTHANC_DICOMWEB=1 loads DICOMweb at /dicom-web/);
#	$ORTHANC_EXTRA_JSON: more top-level members ('"Key" : value, ...').
#	Sets ORTHANC_PID; log $T_DIR/orthanc.log; waits until GET /system
#	answers.
#
# load_orthanc HTTP_PORT DIR
#	POST every DIR/**/*.dcm to /instances (one keep-alive connection);
#	1 unless each answered Success or AlreadyStored and /statistics counts
#	at least that many instances.
#
# stop_peers [SIGNAL]
#	Send SIGNAL (default TERM; then KILL after 10 s) to every dcmqrscp
#	started (QR_PIDS, QR_PID) with its association children and to
#	ORTHANC_PID, wait for them, clear them;
#	safe to call twice. Orthanc takes 2-3 s to stop on TERM; KILL is
#	instant when its storage no longer matters.

export TCP_NODELAY=1
QR_PID=
QR_PIDS=
ORTHANC_PID=
QP_PY=/usr/bin/python3

# Without lib.sh: diag lines on stderr.
command -v diag >/dev/null 2>&1 ||
	diag() { printf '%s\n' "$@" | sed 's/^/# /' >&2; }

# qp_fail MESSAGE [LOG]: diag the message and the log's last lines; 1.
qp_fail() {
	diag "$1"
	if [ $# -gt 1 ] && [ -s "$2" ]; then
		diag "last lines of $2:"
		tail -n 20 "$2" | sed 's/^/#   /'
	fi
	return 1
}

# qp_alive PID: the process runs (kill -0 also succeeds on a zombie, and
# dash reaps background jobs only in wait).
qp_alive() {
	qp_st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	case $qp_st in
	Z*) return 1 ;;
	esac
	return 0
}

# qp_wait PID SECONDS CMD...: run CMD every 0.1 s until it succeeds; 1 if
# PID dies first or SECONDS pass.
qp_wait() {
	qp_pid=$1
	qp_n=$(($2 * 10))
	shift 2
	until "$@" >/dev/null 2>&1; do
		qp_alive "$qp_pid" || return 1
		qp_n=$((qp_n - 1))
		[ "$qp_n" -le 0 ] && return 1
		sleep 0.1
	done
	return 0
}

# qp_port_free PORT: nothing accepts connections on 127.0.0.1:PORT (so
# that whatever answers later is the peer just started).
qp_port_free() {
	"$QP_PY" -c 'import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2).close()
except OSError:
    sys.exit(0)
sys.exit(1)' "$1" || qp_fail "port $1 is already in use"
}

# qp_http_has URL TEXT: GET URL answers and its body contains TEXT.
qp_http_has() {
	curl -sf "$1" | grep -qF -- "$2"
}

# qp_abs PATH: PATH made absolute.
qp_abs() {
	case $1 in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s/%s\n' "$(pwd)" "$1" ;;
	esac
}

gen_studies() {
	mkdir -p "$1" || return 1
	"$QP_PY" - "$@" <<'EOF' || qp_fail "gen_studies $*: failed"
import datetime, os, sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

d, ns, nr, ni = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
first = int(sys.argv[5]) if len(sys.argv) > 5 else 1
ROOT = '1.2.826.0.1.3680043.10.1297.9.'
CT, MR = '1.2.840.10008.5.1.4.1.1.2', '1.2.840.10008.5.1.4.1.1.4'
index = []
for s in range(first, first + ns):
    ct = s % 2 == 1
    cls = CT if ct else MR
    study = '%s1.%d' % (ROOT, s)
    date = (datetime.date(2020, 1, 1) + datetime.timedelta(days=s - 1)).strftime('%Y%m%d')
    pid, acc = 'PAT%03d' % s, 'ACC%03d' % s
    for r in range(1, nr + 1):
        series = '%s2.%d.%d' % (ROOT, s, r)
        sdir = os.path.join(d, 'st%03d' % s, 'se%02d' % r)
        os.makedirs(sdir, exist_ok=True)
        for i in range(1, ni + 1):
            sop = '%s3.%d.%d.%d' % (ROOT, s, r, i)
            fm = FileMetaDataset()
            fm.MediaStorageSOPClassUID = cls
            fm.MediaStorageSOPInstanceUID = sop
            fm.TransferSyntaxUID = ExplicitVRLittleEndian if ct else ImplicitVRLittleEndian
            fm.ImplementationClassUID = ROOT + '0'
            fm.ImplementationVersionName = 'VNAMIG_TGEN'
            ds = Dataset()
            ds.file_meta = fm
            ds.is_little_endian = True
            ds.is_implicit_VR = not ct
            ds.ImageType = ['ORIGINAL', 'PRIMARY', 'AXIAL']
            ds.SOPClassUID = cls
            ds.SOPInstanceUID = sop
            ds.StudyDate = ds.SeriesDate = ds.ContentDate = date
            ds.StudyTime = ds.SeriesTime = '%02d%02d00' % (8 + s % 10, r % 60)
            ds.ContentTime = '%02d%02d%02d' % (8 + s % 10, r % 60, i % 60)
            ds.AccessionNumber = acc
            ds.Modality = 'CT' if ct else 'MR'
            ds.Manufacturer = 'VNAMIG'
            ds.ReferringPhysicianName = 'REF^DOC'
            ds.StudyDescription = 'TEST STUDY %d' % s
            ds.SeriesDescription = 'SERIES %d' % r
            ds.PatientName = 'DOE^JOHN%d' % s
            ds.PatientID = pid
            ds.PatientBirthDate = '19%02d0101' % (50 + s % 50)
            ds.PatientSex = 'M' if s % 3 else 'F'
            ds.SliceThickness = '1.0'
            if ct:
                ds.KVP = '120'
            else:
                ds.ScanningSequence = 'SE'
                ds.SequenceVariant = 'NONE'
                ds.ScanOptions = ''
                ds.MRAcquisitionType = '2D'
                ds.RepetitionTime = '500'
                ds.EchoTime = '20'
                ds.EchoTrainLength = '1'
                ds.MagneticFieldStrength = '1.5'
            ds.StudyInstanceUID = study
            ds.SeriesInstanceUID = series
            ds.StudyID = 'S%d' % s
            ds.SeriesNumber = r
            ds.AcquisitionNumber = 1
            ds.InstanceNumber = i
            ds.ImagePositionPatient = [0, 0, i]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.FrameOfReferenceUID = '%s4.%d.%d' % (ROOT, s, r)
            ds.PositionReferenceIndicator = ''
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = 'MONOCHROME2'
            ds.Rows = ds.Columns = 16
            ds.PixelSpacing = [1, 1]
            ds.BitsAllocated = 16
            ds.BitsStored = 12
            ds.HighBit = 11
            ds.PixelRepresentation = 0
            if ct:
                ds.RescaleIntercept = '-1024'
                ds.RescaleSlope = '1'
            v = s * 131 + r * 17 + i
            ds.PixelData = bytes((v + k) & 0xff if k % 2 == 0 else (k >> 5) & 0x0f
                                 for k in range(512))
            path = os.path.join(sdir, 'in%04d.dcm' % i)
            ds.save_as(path, write_like_original=False)
            index.append('\t'.join((path, study, series, sop, cls, pid, acc, date,
                                    ds.Modality)) + '\n')
with open(os.path.join(d, 'index.tsv'), 'w') as f:
    f.writelines(index)
EOF
}

start_dcmqrscp() {
	qp_name=${QR_NAME:-dcmqrscp}
	qp_store=$(qp_abs "$3")
	mkdir -p "$qp_store" || return 1
	{
		echo "NetworkTCPPort = $2"
		echo "MaxPDUSize = 65536"
		echo "MaxAssociations = 16"
		echo "HostTable BEGIN"
		echo "client = ($4, 127.0.0.1, $5)"
		[ -n "${QR_OTHER_PORT:-}" ] &&
			echo "other = (OTHER, 127.0.0.1, $QR_OTHER_PORT)"
		echo "HostTable END"
		echo "VendorTable BEGIN"
		echo "VendorTable END"
		echo "AETable BEGIN"
		echo "$1 $qp_store RW (500, 1024mb) ANY"
		echo "AETable END"
	} >"$T_DIR/$qp_name.cfg"
	qp_port_free "$2" || return 1
	# shellcheck disable=SC2086
	dcmqrscp -c "$T_DIR/$qp_name.cfg" -dhl +B ${QR_ARGS:-} "$2" \
		</dev/null >"$T_DIR/$qp_name.log" 2>&1 &
	QR_PID=$!
	QR_PIDS="$QR_PIDS $QR_PID"
	if qp_wait "$QR_PID" 10 echoscu -aet "$4" -aec "$1" 127.0.0.1 "$2" &&
	    qp_alive "$QR_PID"; then
		return 0
	fi
	qp_fail "dcmqrscp $1 on port $2 does not answer C-ECHO" \
		"$T_DIR/$qp_name.log"
}

load_dcmqrscp() {
	"$QP_PY" - "$@" <<'EOF' || qp_fail "load_dcmqrscp $*: failed"
import os, subprocess, sys
from pydicom.filereader import read_file_meta_info

aet, port, d = sys.argv[1:4]
opt = {'1.2.840.10008.1.2.1': ['-xe'], '1.2.840.10008.1.2': ['-xi'],
       '1.2.840.10008.1.2.2': ['-xb']}
groups = {}
for root, dirs, files in os.walk(d):
    dirs.sort()
    for f in sorted(files):
        if f.endswith('.dcm'):
            p = os.path.join(root, f)
            groups.setdefault(str(read_file_meta_info(p).TransferSyntaxUID), []).append(p)
if not groups:
    print('# no .dcm files in %s' % d)
    sys.exit(1)
bad = 0
for ts, paths in sorted(groups.items()):
    for k in range(0, len(paths), 500):
        chunk = paths[k:k + 500]
        r = subprocess.run(['storescu', '-v', '-aet', 'QRLOAD', '-aec', aet]
                           + opt.get(ts, []) + ['127.0.0.1', port] + chunk,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, text=True)
        ok = r.stdout.count('Received Store Response (Success)')
        if r.returncode != 0 or ok != len(chunk):
            bad += 1
            print('# storescu (%s): exit %d, %d of %d stored; last lines:'
                  % (ts, r.returncode, ok, len(chunk)))
            for l in r.stdout.splitlines()[-15:]:
                print('#   ' + l)
sys.exit(1 if bad else 0)
EOF
}

start_orthanc() {
	qp_dir=$T_DIR/orthanc
	mkdir -p "$qp_dir/db" || return 1
	qp_port_free "$2" && qp_port_free "$3" || return 1
	qp_plugins=
	qp_dw=
	if [ "${ORTHANC_DICOMWEB:-0}" = 1 ]; then
		qp_plugins='"/usr/share/orthanc/plugins/libOrthancDicomWeb.so"'
		qp_dw='"DicomWeb" : { "Enable" : true, "Root" : "/dicom-web/" },'
	fi
	qp_nonce=$$-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
	qp_other=
	[ -n "${QR_OTHER_PORT:-}" ] &&
		qp_other=", \"other\" : [ \"OTHER\", \"127.0.0.1\", $QR_OTHER_PORT ]"
	cat >"$qp_dir/orthanc.json" <<JSON
{
  "Name" : "vnamig-test-$qp_nonce",
  "StorageDirectory" : "$qp_dir/db",
  "IndexDirectory" : "$qp_dir/db",
  "Plugins" : [ $qp_plugins ],
  $qp_dw
  ${ORTHANC_EXTRA_JSON:+$ORTHANC_EXTRA_JSON,}
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
    "client" : [ "$4", "127.0.0.1", $5 ]$qp_other
  },
  "DicomAssociationCloseDelay" : 0,
  "SaveJobs" : false,
  "StableAge" : 1
}
JSON
	Orthanc "$qp_dir/orthanc.json" </dev/null >"$T_DIR/orthanc.log" 2>&1 &
	ORTHANC_PID=$!
	qp_wait "$ORTHANC_PID" 30 qp_http_has "http://127.0.0.1:$3/system" \
		"vnamig-test-$qp_nonce" ||
		qp_fail "Orthanc $1 (DICOM $2, HTTP $3) does not answer GET /system" \
			"$T_DIR/orthanc.log"
}

load_orthanc() {
	"$QP_PY" - "$@" <<'EOF' || qp_fail "load_orthanc $*: failed"
import http.client, json, os, sys

port, d = int(sys.argv[1]), sys.argv[2]
paths = []
for root, dirs, files in os.walk(d):
    dirs.sort()
    paths += [os.path.join(root, f) for f in sorted(files) if f.endswith('.dcm')]
if not paths:
    print('# no .dcm files in %s' % d)
    sys.exit(1)
c = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
ids, bad = set(), 0
for p in paths:
    with open(p, 'rb') as f:
        c.request('POST', '/instances', f.read(),
                  {'Content-Type': 'application/dicom'})
    r = c.getresponse()
    body = r.read()
    try:
        j = json.loads(body)
    except ValueError:
        j = {}
    if r.status != 200 or j.get('Status') not in ('Success', 'AlreadyStored'):
        bad += 1
        print('# %s: HTTP %d %s' % (p, r.status, body[:200]))
    else:
        ids.add(j['ID'])
c.request('GET', '/statistics')
n = json.loads(c.getresponse().read())['CountInstances']
if n < len(ids):
    print('# Orthanc counts %d instances, %d uploaded' % (n, len(ids)))
    bad += 1
sys.exit(1 if bad else 0)
EOF
}

# qp_stop PID [SIGNAL]: SIGNAL (TERM), KILL after 10 s, wait.
qp_stop() {
	kill -"${2:-TERM}" "$1" 2>/dev/null || return 0
	qp_n=100
	while qp_alive "$1" && [ "$qp_n" -gt 0 ]; do
		sleep 0.1
		qp_n=$((qp_n - 1))
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

stop_peers() {
	case " ${QR_PIDS:-} " in
	*" ${QR_PID:-} "*) ;;
	*) QR_PIDS="${QR_PIDS:-} $QR_PID" ;;
	esac
	for qp_p in $QR_PIDS; do
		pkill -"${1:-TERM}" -P "$qp_p" 2>/dev/null	# forked associations
		qp_stop "$qp_p" "${1:-TERM}"
	done
	QR_PID=
	QR_PIDS=
	if [ -n "${ORTHANC_PID:-}" ]; then
		qp_stop "$ORTHANC_PID" "${1:-TERM}"
		ORTHANC_PID=
	fi
	return 0
}
