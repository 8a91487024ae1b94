#!/bin/sh
# dicom.t — the DICOM Upper Layer and the C-ECHO / C-STORE SCP of vnamigd
# against real peers (DCMTK echoscu, storescu) and a raw client
# (t/dicomraw.py) for what no real peer sends: every hostile input of
# TESTING.md that reaches the Upper Layer gets its exact answer (A-ABORT
# reason, A-ASSOCIATE-RJ result/source/reason, DIMSE status), and a good
# association afterwards is unaffected.
. "$top_srcdir/t/lib.sh"

PY=/usr/bin/python3
RAW="$PY $top_srcdir/t/dicomraw.py"
pyd=/usr/lib/python3/dist-packages/pydicom/data/test_files
: "${VNAMIG_DUMP:=$top_builddir/src/dump/vnamig-dump}"
export TCP_NODELAY=1

conf=$T_DIR/vnamigd.yaml
cat >"$conf" <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/var
listen:
  dicom: { address: 127.0.0.1, port: 0 }
  http:  { address: 127.0.0.1, port: 0 }
limits:
  artim_timeout: 1s
  associations_in: 3
storage:
  min_free: 1MiB
peers:
  - { name: scu, ae_title: SCU, host: 127.0.0.1, port: 11113, role: source }
  - { name: faraway, ae_title: FARAWAY, host: 192.0.2.1, port: 104, role: source }
  - { name: named, ae_title: NAMED, host: localhost, port: 104, role: source }
  - { name: farname, ae_title: FARNAME, host: localhost, port: 104, role: source }
  - { name: nohost, ae_title: NOHOST, host: no-such-host.invalid, port: 104, role: source }
api:
  health_open: true
YAML
start_daemon "$conf" || { fail "vnamigd starts"; done_testing; }
pass "vnamigd starts (dicom port $DICOM_PORT)"
in=$T_DIR/var/incoming

# ---------------------------------------------------------------------------
# Association establishment against DCMTK.

out=$(echoscu -aet SCU -aec VNAMIG 127.0.0.1 "$DICOM_PORT" 2>&1)
ok $? "echoscu from a configured peer: C-ECHO succeeds"
wait_log 'assoc-accepted .*calling=SCU called=VNAMIG peer_name=scu' 5
ok $? "  the acceptance is logged with the peer's name"
wait_log 'assoc-released .*calling=SCU' 5
ok $? "  and the release"

out=$(echoscu -aet SCU -aec NOTUS 127.0.0.1 "$DICOM_PORT" 2>&1)
[ $? -ne 0 ]
ok $? "echoscu to another called AE title is refused"
like "$out" "Called AE Title Not Recognized" "  echoscu: Called AE Title Not Recognized (1/1/7)"

out=$(echoscu -aet FARAWAY -aec VNAMIG 127.0.0.1 "$DICOM_PORT" 2>&1)
[ $? -ne 0 ]
ok $? "a peer's AE title from another address than its host is refused"
like "$out" "Calling AE Title Not Recognized" "  echoscu: Calling AE Title Not Recognized (1/1/3)"
wait_log 'calling=FARAWAY .*rj=1/1/3 why="calling AE title comes from another address' 5
ok $? "  the log says why"

# Peers by host name: looked up in the background (/etc/hosts here).
wait_log 'host-resolved host=localhost ' 5
ok $? "a peer's host name is looked up at start"
out=$(echoscu -aet NAMED -aec VNAMIG 127.0.0.1 "$DICOM_PORT" 2>&1)
ok $? "echoscu from a peer whose host is localhost: accepted"
# from 127.0.0.2 (loopback too, but not what localhost resolves to)
got=$($PY - "$DICOM_PORT" "$top_srcdir/t" <<'EOF'
import socket, struct, sys
sys.path.insert(0, sys.argv[2])
import dicomraw
s = socket.socket()
s.bind(('127.0.0.2', 0))
s.connect(('127.0.0.1', int(sys.argv[1])))
s.sendall(dicomraw.assoc_rq(calling='FARNAME'))
h = s.recv(10)
print('%02x %s' % (h[0], h[6:10].hex()))
EOF
)
is "$got" "03 00010103" "the same name's peer calling from 127.0.0.2: A-ASSOCIATE-RJ 1/1/3"
wait_log 'calling=FARNAME .*rj=1/1/3 why="calling AE title comes from another address' 5
ok $? "  the log says why"
wait_log 'host-unresolved host=no-such-host.invalid' 20
ok $? "a host name that does not resolve is logged"
out=$(echoscu -aet NOHOST -aec VNAMIG 127.0.0.1 "$DICOM_PORT" 2>&1)
[ $? -ne 0 ]
ok $? "  its peer's associations are refused"
wait_log 'calling=NOHOST .*rj=1/1/3 why="its peer.s host name does not resolve"' 5
ok $? "  1/1/3, saying the name does not resolve"

# ---------------------------------------------------------------------------
# C-STORE: storescu sends real files, to vnamigd and, for reference, to
# DCMTK's storescp in bit-preserving mode (+B: it writes the dataset as it
# arrived). Each is stored durable before the response, under its SOP
# Instance UID, with the same dataset bytes as storescp received and the
# same canonical and pixel digests as the file sent.

files=$(store_files)

scp_port=$(free_port)
mkdir -p "$T_DIR/scp"
storescp +B +xa -od "$T_DIR/scp" -aet SCP "$scp_port" >"$T_DIR/scp.log" 2>&1 &
scp_pid=$!
wait_until 5 sh -c "echoscu -aec SCP 127.0.0.1 $scp_port"
ok $? "storescp (reference) listens on $scp_port"

# storescu proposes one transfer syntax per run: the file's own (-R with
# the option that names it), so nothing is converted on the way.
xopt() {
	case $($PY -c 'import sys, pydicom; print(pydicom.dcmread(sys.argv[1], stop_before_pixels=True).file_meta.TransferSyntaxUID)' "$1") in
	1.2.840.10008.1.2) echo -xi ;;
	1.2.840.10008.1.2.1) echo -xe ;;
	1.2.840.10008.1.2.2) echo -xb ;;
	1.2.840.10008.1.2.1.99) echo -xd ;;
	1.2.840.10008.1.2.4.50) echo -xy ;;
	1.2.840.10008.1.2.4.51) echo -xx ;;
	1.2.840.10008.1.2.4.70) echo -xs ;;
	1.2.840.10008.1.2.4.90) echo -xv ;;
	1.2.840.10008.1.2.4.91) echo -xw ;;
	1.2.840.10008.1.2.5) echo -xr ;;
	*) echo -x= ;;
	esac
}
sent=0
for f in $files; do
	if storescu -R "$(xopt "$f")" -aet SCU -aec VNAMIG 127.0.0.1 "$DICOM_PORT" "$f" >"$T_DIR/out" 2>&1 &&
	    storescu -R "$(xopt "$f")" -aet SCU -aec SCP 127.0.0.1 "$scp_port" "$f" >>"$T_DIR/out" 2>&1; then
		sent=$((sent + 1))
	else
		diag "storescu $(xopt "$f") $f:" "$(cat "$T_DIR/out")"
	fi
done
is "$sent" "$(echo $files | wc -w)" "storescu sends $sent files in their own transfer syntaxes (11 kinds) to both"
kill "$scp_pid" 2>/dev/null

digest() { "$VNAMIG_DUMP" -d "$1" | sed 's/^[^ ]* sha256=[0-9a-f]* //'; }
spool_export "$conf" "$in"
ok $? "vnamig-spool copies every received instance out of the spool, each re-hashed to its recorded SHA-256"
same=0; bytes=0; n=0
for f in $files; do
	n=$((n + 1))
	iuid=$($PY -c 'import sys, pydicom; print(pydicom.dcmread(sys.argv[1], stop_before_pixels=True).SOPInstanceUID)' "$f")
	g=$in/$iuid.dcm
	if [ ! -f "$g" ]; then
		diag "not stored: $f ($iuid)"
		continue
	fi
	[ "$(digest "$f")" = "$(digest "$g")" ] && same=$((same + 1))
	ref=$(ls "$T_DIR/scp/"*".$iuid" 2>/dev/null | head -1)
	if [ -n "$ref" ] && [ "$(dataset_sha "$ref")" = "$(dataset_sha "$g")" ]; then
		bytes=$((bytes + 1))
	else
		diag "dataset bytes differ from storescp's: ${f##*/}"
	fi
done
is "$same" "$n" "all $n stored under their SOP Instance UID with the sender's canonical and pixel digests"
is "$bytes" "$n" "  and the dataset bytes storescp +B received, byte for byte"
dcmdump -q "$in/$($PY -c 'import sys, pydicom; print(pydicom.dcmread(sys.argv[1]).SOPInstanceUID)' "$pyd/CT_small.dcm").dcm" >/dev/null 2>&1
ok $? "  dcmdump reads a stored file without complaint"
"$VNAMIG_SPOOL" -c "$conf" verify 2>"$T_DIR/verify.err"
ok $? "  vnamig-spool verify: every instance in the spool matches its index ($(cat "$T_DIR/verify.err"))"
# the daemon hashed with the x86 SHA instructions where the CPU has them;
# OpenSSL's block function must find the same SHA-256 for every record
# on a terminal (script(1) gives it one) a progress line, cleared at the end
script -qec "\"$VNAMIG_SPOOL\" -c \"$conf\" verify" /dev/null >"$T_DIR/tty.out" 2>&1
like "$(tr '\r' '\n' <"$T_DIR/tty.out")" "^[0-9]+ instances, [0-9.]+ MiB, [0-9.]+ MiB/s" \
    "  on a terminal it shows its progress (instances, MiB, MiB/s)"
VNAMIG_SHA256=generic "$VNAMIG_SPOOL" -c "$conf" verify 2>"$T_DIR/verify.err"
ok $? "  and so does it hashing with OpenSSL's SHA-256 (VNAMIG_SHA256=generic; the daemon: $(sed -n 's/.* info ready .* sha256=\([a-z0-9-]*\).*/\1/p' "$T_DIR/daemon.log" | head -1))"

# Concurrent associations: the committer thread makes each durable and
# every C-STORE is answered.
before=$(grep -c 'store-received' "$T_DIR/daemon.log")
pids=
for i in 1 2 3; do
	storescu -aet SCU -aec VNAMIG 127.0.0.1 "$DICOM_PORT" "$pyd/CT_small.dcm" \
		"$pyd/MR_small.dcm" "$pyd/rtplan.dcm" >"$T_DIR/par$i" 2>&1 &
	pids="$pids $!"
done
bad=0
for p in $pids; do wait "$p" || bad=$((bad + 1)); done
is "$bad" 0 "3 storescu at once (limits.associations_in), 3 files each: all succeed"
wait_until 5 sh -c "[ \$(grep -c store-received '$T_DIR/daemon.log') -ge $((before + 9)) ]"
ok $? "  9 instances received and made durable"

# Every record's hashes, whichever thread took them (the loop when one
# instance arrives at a time, as above; the spool's writer when several
# arrive at once, as here): the dataset SHA-256 and the canonical and
# pixel digests vnamig-dump computes from the file that was sent, and for
# native little-endian pixels pydicom's SHA-256 of the PixelData value.
mkdir -p "$T_DIR/rec" &&
"$VNAMIG_SPOOL" -c "$conf" list --json >"$T_DIR/list.json" &&
$PY - "$T_DIR/list.json" "$T_DIR/var/spool" "$T_DIR/rec" <<'PYEOF' &&
import json, sys
for i, line in enumerate(open(sys.argv[1])):
    r = json.loads(line)
    with open('%s/%s.seg' % (sys.argv[2], r['segment']), 'rb') as f:
        f.seek(r['offset'] + 64)	# the record's header, then the file
        b = f.read(r['bytes'])
    open('%s/%d.dcm' % (sys.argv[3], i), 'wb').write(b)
PYEOF
"$VNAMIG_DUMP" -d "$T_DIR"/rec/*.dcm >"$T_DIR/dump.d"
ok $? "every spool record read straight from its segment, and vnamig-dump -d of each"
is "$($PY - "$top_srcdir/t" "$T_DIR/list.json" "$T_DIR/dump.d" <<'PYEOF'
import hashlib, json, os, sys
sys.path.insert(0, sys.argv[1])
import pydicom
from scpcheck import ds_sha
got = {}
for line in open(sys.argv[3]):
    path, *kv = line.split()
    got[int(os.path.basename(path)[:-4])] = (path, dict(x.split('=', 1) for x in kv))
n = bad = pix = 0
for i, line in enumerate(open(sys.argv[2])):
    r = json.loads(line)
    path, d = got[i]
    n += 1
    want = (ds_sha(path), d['canonical'], d['pixel'])
    have = (r['sha256'], r.get('canonical'), r.get('pixel', 'none'))
    if have != want:
        bad += 1
        print('differs', r['sop_instance'], have, want, file=sys.stderr)
    ds = pydicom.dcmread(path)
    if 'PixelData' in ds and str(ds.file_meta.TransferSyntaxUID) in (
            '1.2.840.10008.1.2', '1.2.840.10008.1.2.1'):
        pix += 1
        if hashlib.sha256(ds.PixelData).hexdigest() != r.get('pixel'):
            bad += 1
            print('pixel digest is not pydicom\'s', r['sop_instance'], file=sys.stderr)
print('%d %s %s' % (bad, n >= 20, pix >= 5))
PYEOF
)" "0 True True" "  each record's SHA-256, canonical and pixel digests, taken as it arrived, are its bytes' (20 records or more; 5 or more pixel digests also by pydicom)"

# ---------------------------------------------------------------------------
# Hostile inputs, each with its exact answer.

is "$($RAW "$DICOM_PORT" echo)" "AC PDATA:status=0x0000 06:00000000 eof" \
	"raw client: C-ECHO and release (A-RELEASE-RP)"
is "$($RAW "$DICOM_PORT" second-rq)" "AC 07:00000202 eof" \
	"a second A-ASSOCIATE-RQ when established: A-ABORT 2/2 (AA-8)"
wait_log 'pdu-unexpected .*state=Sta6 pdu=A-ASSOCIATE-RQ' 5
ok $? "  logged as unexpected in Sta6"
is "$($RAW "$DICOM_PORT" pdata-first)" "07:00000202 eof" \
	"P-DATA-TF before the association: A-ABORT 2/2 (AA-1)"
t0=$(date +%s)
got=$($RAW "$DICOM_PORT" big-pdata-first)
is "$got $(($(date +%s) - t0 < 5))" "07:00000206 eof 1" \
	"a 200 KiB P-DATA-TF header before the association: A-ABORT 2/6 at once, its body not waited for"
is "$($RAW "$DICOM_PORT" huge-pdu)" "AC 07:00000206 eof" \
	"P-DATA-TF of length 0xFFFFFFFF: A-ABORT 2/6 before reading it"
is "$($RAW "$DICOM_PORT" huge-rq)" "07:00000200 eof" \
	"an A-ASSOCIATE-RQ over the size limit: A-ABORT"
is "$($RAW "$DICOM_PORT" bad-context)" "AC 07:00000206 eof" \
	"a PDV on a presentation context never accepted: A-ABORT 2/6"
is "$($RAW "$DICOM_PORT" zero-pdv)" "AC 07:00000206 eof" \
	"a P-DATA-TF too short for its PDV: A-ABORT 2/6"
is "$($RAW "$DICOM_PORT" item-overrun)" "07:00000206 eof" \
	"a presentation context item past the end of its PDU: A-ABORT 2/6"
is "$($RAW "$DICOM_PORT" tiny-pdu)" "03:00010101 eof" \
	"a maximum PDU length of 4 (no PDV fits): A-ASSOCIATE-RJ 1/1/1 (we sent 256 KiB PDUs)"
is "$($RAW "$DICOM_PORT" version)" "03:00010202 eof" \
	"protocol version 2 only: A-ASSOCIATE-RJ 1/2/2"
is "$($RAW "$DICOM_PORT" ae '        ')" "03:00010107 eof" \
	"a called AE title of all spaces: A-ASSOCIATE-RJ 1/1/7"
is "$($RAW "$DICOM_PORT" ae '../x')" "03:00010107 eof" \
	"a called AE title \"../x\": A-ASSOCIATE-RJ 1/1/7 (never a path)"
# after an A-ASSOCIATE-RJ (Sta13) ARTIM (1 s here) runs from then, however
# the peer trickles bytes (the read timeout restarted with each), and its
# A-ABORT closes the connection at once
got=$($RAW "$DICOM_PORT" rj-trickle)
like "$got" "^03:00010107 closed_after=(0\.[5-9]|1\.[0-9])$" \
	"rejected, then 6 bytes every 0.3 s: closed once ARTIM expires ($got)"
got=$($RAW "$DICOM_PORT" partial-release)
is "$got" "AC 07:00000000 eof" \
	"an A-RELEASE-RQ with half a C-STORE's dataset received: A-ABORT (the rest can never come), not silence"
wait_log 'assoc-abort .*A-RELEASE-RQ in the middle of a message' 5
ok $? "  logged"
got=$($RAW "$DICOM_PORT" rj-abort)
like "$got" "^03:00010107 closed_after=0\.[0-4]$" \
	"rejected, then an A-ABORT: closed at once ($got)"
for bad in ../../etc 1.2/3 1.2.3.4x 12345678901234567890123456789012345678901234567890123456789012345; do
	is "$($RAW "$DICOM_PORT" store 1.2.840.10008.5.1.4.1.1.2 "$bad" "$bad")" \
		"AC PDATA:status=0xc000 06:00000000 eof" \
		"C-STORE with SOP Instance UID \"$bad\": 0xC000, the association goes on"
done
spool_export "$conf" "$in" &&
[ -z "$(ls "$in" | grep -v '^1\.')" ] && [ ! -e "$T_DIR/etc.dcm" ] && [ ! -e "$T_DIR/var/etc.dcm" ]
ok $? "  none of them was spooled, nor became a file name"
is "$($RAW "$DICOM_PORT" store 1.2.840.10008.5.1.4.1.1.2 1.2.3.4 1.2.3.5)" \
	"AC PDATA:status=0xa900 06:00000000 eof" \
	"C-STORE whose dataset has another SOP Instance UID: 0xA900"
! "$VNAMIG_SPOOL" -c "$conf" get 1.2.3.4 >/dev/null 2>&1 &&
! "$VNAMIG_SPOOL" -c "$conf" get 1.2.3.5 >/dev/null 2>&1
ok $? "  and nothing is stored"
# A dataset UID that is the command's and more: past 64 characters, or
# after a NUL inside the value. Cut at 64 or read up to the NUL it was the
# command's (0x0000 before); it is not.
u64=1.2.$(printf '9%.0s' $(seq 60))
is "${#u64}" 64 "  (a 64-character UID)"
is "$($RAW "$DICOM_PORT" store 1.2.840.10008.5.1.4.1.1.2 "$u64" "$u64.77")" \
	"AC PDATA:status=0xa900 06:00000000 eof" \
	"C-STORE whose dataset's SOP Instance UID is the command's and 3 more characters (67): 0xA900"
is "$($RAW "$DICOM_PORT" store 1.2.840.10008.5.1.4.1.1.2 1.2.3.8 '1.2.3.8%001.2.3.9')" \
	"AC PDATA:status=0xa900 06:00000000 eof" \
	"C-STORE whose dataset's SOP Instance UID is the command's, a NUL and more: 0xA900"
! "$VNAMIG_SPOOL" -c "$conf" get "$u64" >/dev/null 2>&1 &&
! "$VNAMIG_SPOOL" -c "$conf" get 1.2.3.8 >/dev/null 2>&1
ok $? "  neither is stored"
is "$($RAW "$DICOM_PORT" store-nodata 1.2.840.10008.5.1.4.1.1.2 1.2.3.4.1)" \
	"AC PDATA:status=0xc000 PDATA:status=0x0000 06:00000000 eof" \
	"a C-STORE-RQ with no dataset: 0xC000 (cannot understand), and a C-ECHO after it is answered"
is "$($RAW "$DICOM_PORT" store 1.2.840.10008.5.1.4.1.1.2 1.2.3.4 1.2.3.4)" \
	"AC PDATA:status=0x0000 06:00000000 eof" "a good raw C-STORE: 0x0000"
"$VNAMIG_SPOOL" -c "$conf" get 1.2.3.4 -o "$T_DIR/1.2.3.4.dcm" 2>/dev/null &&
[ -s "$T_DIR/1.2.3.4.dcm" ]
ok $? "  stored, in the spool as 1.2.3.4"

# A C-STORE that arrives all at once: 3 MiB, written in one go, so that
# each wakeup of the loop finds far more waiting than libevent reads at a
# time (4 KiB): it reads on itself (net.c read_on), and must neither lose
# nor repeat a byte.
is "$($RAW "$DICOM_PORT" burst 1.2.840.10008.5.1.4.1.1.2 1.2.3.6 3145728 \
	"$T_DIR/burst.ds")" "AC PDATA:status=0x0000 06:00000000 eof" \
	"a 3 MiB C-STORE sent in one write: 0x0000"
"$VNAMIG_SPOOL" -c "$conf" get 1.2.3.6 -o "$T_DIR/1.2.3.6.dcm" 2>/dev/null &&
tail -c "$(wc -c <"$T_DIR/burst.ds")" "$T_DIR/1.2.3.6.dcm" | cmp -s - "$T_DIR/burst.ds"
ok $? "  its dataset is in the spool byte for byte as sent"

# A silent connection: ARTIM (1 s) closes it.
t=$($PY - "$DICOM_PORT" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
t0 = time.monotonic()
print("eof" if s.recv(10) == b"" else "data", round(time.monotonic() - t0))
EOF
)
like "$t" "^eof [1-3]$" "a silent connection is closed by ARTIM: $t"

# More associations than limits.associations_in (3): A-ASSOCIATE-RJ 2/3/2,
# while the three held ones are unaffected.
for i in 1 2 3; do
	$RAW "$DICOM_PORT" hold >"$T_DIR/hold$i" &
	eval "hold$i=\$!"
done
wait_until 10 sh -c "grep -q AC '$T_DIR/hold1' && grep -q AC '$T_DIR/hold2' && grep -q AC '$T_DIR/hold3'"
ok $? "three associations held open"
out=$(echoscu -aet SCU -aec VNAMIG 127.0.0.1 "$DICOM_PORT" 2>&1)
[ $? -ne 0 ]
ok $? "a fourth is refused"
like "$out" "Local Limit Exceeded" "  echoscu: Local Limit Exceeded (2/3/2)"
# shellcheck disable=SC2154
kill "$hold1" "$hold2" "$hold3" 2>/dev/null
wait "$hold1" "$hold2" "$hold3" 2>/dev/null
wait_until 5 sh -c "echoscu -aet SCU -aec VNAMIG 127.0.0.1 $DICOM_PORT"
ok $? "once they are gone, echoscu is accepted again"

# The daemon served everyone through all of it and stops cleanly: an
# idle association is aborted at once (not left to the 30 s grace).
kill -0 "$DAEMON_PID"
ok $? "vnamigd is still running"
$RAW "$DICOM_PORT" hold-all >"$T_DIR/held" &
heldpid=$!
wait_until 5 grep -q 'assoc-accepted .*conn=.*' "$T_DIR/daemon.log"
sleep 0.5
t0=$(date +%s)
stop_daemon
is "$DAEMON_RC" 0 "and exits 0 on SIGTERM"
wait "$heldpid"
is "$(cat "$T_DIR/held")" "AC 07:00000000 eof" \
	"  an idle association gets an A-ABORT (service-user) at shutdown"
[ $(( $(date +%s) - t0 )) -lt 5 ]
ok $? "  without waiting for the shutdown grace"

# The asynchronous operations window: a requestor that asked for none
# may not send a request while a response is owed.
start_daemon "$conf" || { fail "vnamigd starts again"; done_testing; }
got=$($RAW "$DICOM_PORT" overrun 1.2.840.10008.5.1.4.1.1.7)
like "$got" "^AC (PDATA:status=0x0000 )?07:00000000 eof$" \
    "a second C-STORE in the same PDU as the end of the first (window 1): A-ABORT"
wait_log 'beyond the asynchronous operations window \(1 responses owed, window 1\)' 5
ok $? "  logged"
stop_daemon

# Slow senders: ARTIM runs from the connection, and a PDU begun must
# arrive whole within limits.network_timeout.
start_daemon "$conf" || { fail "vnamigd starts again"; done_testing; }
t0=$(date +%s)
got=$($RAW "$DICOM_PORT" slow-rq)
like "$got" "^sent [0-9]+ of [0-9]+ eof$" "an A-ASSOCIATE-RQ at a byte per 0.2 s: the connection is closed"
[ $(( $(date +%s) - t0 )) -le 4 ]
ok $? "  at ARTIM (1 s), not after the whole RQ (about 14 s)"
wait_log 'artim-expired .*no whole A-ASSOCIATE-RQ within limits.artim_timeout \(1000 ms\)' 5
ok $? "  logged"
stop_daemon

# Back-pressure: an association whose received bytes wait for the disk
# beyond limits.store_backlog is not read until they are written. With
# the smallest backlog, a 24 MiB instance arrives whole and identical.
sed -e 's/^limits:$/limits:\n  store_backlog: 64KiB\n  network_timeout: 1s/' "$conf" >"$T_DIR/bp.yaml"
printf 'logging:\n  level: debug\n' >>"$T_DIR/bp.yaml"
start_daemon "$T_DIR/bp.yaml" || { fail "vnamigd starts (store_backlog 64KiB)"; done_testing; }
$PY - "$T_DIR/big.dcm" <<'EOF'
import sys, pydicom
d = pydicom.dcmread('/usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm')
d.Rows, d.Columns, d.NumberOfFrames = 2048, 3072, 2
d.PixelData = bytes(range(256)) * (2048 * 3072 * 2 * 2 // 256)
d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = '1.2.3.4.24'
d.save_as(sys.argv[1])
EOF
storescu -aet SCU -aec VNAMIG 127.0.0.1 "$DICOM_PORT" "$T_DIR/big.dcm" >"$T_DIR/out" 2>&1
ok $? "storescu of a 24 MiB instance with store_backlog 64KiB: success"
digests() { "$VNAMIG_DUMP" -d "$1" | sed 's/^.* canonical=/canonical=/'; }
"$VNAMIG_SPOOL" -c "$T_DIR/bp.yaml" get 1.2.3.4.24 -o "$T_DIR/big.out" 2>/dev/null
is "$(digests "$T_DIR/big.out")" "$(digests "$T_DIR/big.dcm")" \
    "  stored whole: the same canonical and pixel digests"
diag "the association was held $(grep -c 'assoc-hold .*on=1' "$T_DIR/daemon.log") times for the disk"
# A refused instance (its dataset's SOP Instance UID is not the command's)
# whose bytes were still waiting for the disk when it ended: its bytes are
# dropped, and the association is read again (it was not, for ever: its
# drain note went with the aborted sink). Three times, as the writer's
# pace decides whether the hold is on at the end.
n=0
for i in 1 2 3; do
	got=$($RAW "$DICOM_PORT" burst-mismatch 1.2.840.10008.5.1.4.1.1.2 1.2.3.4.3$i 8388608)
	[ "$got" = "AC PDATA:status=0xa900 PDATA:status=0x0000 06:00000000 eof" ] && n=$((n + 1)) ||
		diag "burst-mismatch $i: $got"
done
is "$n" 3 "8 MiB refused with 0xA900 while held for the disk, then a C-ECHO on the same association: answered (3 of 3)"
diag "held $(grep -c 'assoc-hold .*on=1' "$T_DIR/daemon.log") times for the disk so far"
got=$($RAW "$DICOM_PORT" echo-flood 3 "$DAEMON_PID")
grew=$(echo "$got" | sed -n 's/.*grew_mb=\(-*[0-9]*\).*/\1/p')
rss_bound "C-ECHOs for 3 s from a peer that never reads the answers: vnamigd stops reading it, holding less than 32 MiB more ($got)" 32 "$grew"
out=$(echoscu -aet SCU -aec VNAMIG 127.0.0.1 "$DICOM_PORT" 2>&1)
ok $? "  and answers another association meanwhile"
got=$($RAW "$DICOM_PORT" slow-pdata)
is "$got" "AC 07:00000000 eof" "a P-DATA-TF at a byte per 0.2 s: A-ABORT once network_timeout (1 s) passed"
wait_log 'pdu-too-slow .*not received whole within limits.network_timeout \(1000 ms\)' 5
ok $? "  logged"
stop_daemon
is "$DAEMON_RC" 0 "  vnamigd exits 0"
# a dozen rejected for good above (called AE, calling AE, address,
# version, maximum PDU length), from 127.0.0.1 and 127.0.0.2
n=$(audit_leaves "$conf" security.association_rejected)
ok "$([ "${n:-0}" -ge 2 ] 2>/dev/null && [ "$n" -le 6 ]; echo $?)" \
    "associations rejected for good are audit leaves (security.association_rejected), at most one a minute per address: $n"
jq -r 'select(.event == "security.association_rejected") | "\(.actor.peer) \(.object.protocol) \(.outcome)"' \
    "$T_DIR/export-security.association_rejected/leaves.jsonl" | sort -u | tr '\n' ' ' >"$T_DIR/rjl"
is "$(cat "$T_DIR/rjl")" "127.0.0.1 dicom refused 127.0.0.2 dicom refused " \
    "  naming the address (no port), the protocol and the outcome"
done_testing
