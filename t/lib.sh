# t/lib.sh — helpers for the integration scripts (t/*.t): TAP output, a
# temporary directory, and starting/stopping the real vnamigd on free
# ports (port 0; the ports bound are read back from its log).
#
# Scripts: . "$top_srcdir/t/lib.sh"; ...; done_testing

set -u
: "${top_srcdir:?run through make check}"
: "${VNAMIGD:=$top_builddir/src/vnamigd}"
: "${VNAMIG_SPOOL:=$top_builddir/src/spool/vnamig-spool}"
# the Python helpers in t/ import each other (fakedimse, scpcheck): no
# __pycache__ left in the source tree
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE

T_N=0
T_FAIL=0
T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vnamig-t.XXXXXX")
DAEMON_PID=

cleanup() {
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -KILL "$DAEMON_PID" 2>/dev/null
	fi
	[ -n "${KEEP_T_DIR:-}" ] || rm -rf "$T_DIR"
}
trap cleanup EXIT

ok() {	# ok COND-STATUS NAME
	T_N=$((T_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $T_N - $2"
	else
		echo "not ok $T_N - $2"
		T_FAIL=$((T_FAIL + 1))
	fi
}

pass() { ok 0 "$1"; }
fail() { ok 1 "$1"; }
skip() { T_N=$((T_N + 1)); echo "ok $T_N # SKIP $1"; }	# skip WHY
diag() { printf '%s\n' "$@" | sed 's/^/# /'; }

is() {	# is GOT WANT NAME
	if [ "$1" = "$2" ]; then
		ok 0 "$3"
	else
		ok 1 "$3"
		diag "got:      $1" "expected: $2"
	fi
}

like() {	# like TEXT EXTENDED-REGEX NAME
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then
		ok 0 "$3"
	else
		ok 1 "$3"
		diag "text: $1" "does not match: $2"
	fi
}

done_testing() {
	echo "1..$T_N"
	[ "$T_FAIL" -eq 0 ]
	exit $?
}

# write_conf FILE [extra YAML appended]: a config on free ports with its own
# data dir under $T_DIR.
write_conf() {
	cat > "$1" <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/var
listen:
  dicom: { address: 127.0.0.1, port: 0 }
  http:  { address: 127.0.0.1, port: 0 }
  mllp:  { address: 127.0.0.1, port: 0 }
limits:
  shutdown_grace: ${GRACE:-5s}
storage:
  min_free: 1MiB
peers:
  # window never: the migration engine starts no work against it (the
  # scripts that migrate configure their own peers)
  - { name: legacy, ae_title: LEGACY, host: 127.0.0.1, port: 11113, role: source, window: never }
api:
  health_open: ${HEALTH_OPEN:-true}
  keys:
    - { id: ops, role: operator, token: "plain-for-tests" }
YAML
	[ $# -gt 1 ] && printf '%s\n' "$2" >> "$1"
	return 0
}

# wait_until SECONDS CMD...: run CMD every 0.1 s until it succeeds;
# 1 if it never did within SECONDS.
wait_until() {
	i=0
	limit=$(($1 * 10))
	shift
	until "$@" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -ge "$limit" ] && return 1
		sleep 0.1
	done
	return 0
}

# wait_log PATTERN [SECONDS]: wait until the daemon log matches.
wait_log() { wait_until "${2:-10}" grep -Eq -- "$1" "$T_DIR/daemon.log"; }

# wait_file FILE [SECONDS]: wait until FILE exists and is not empty (a
# background client writes it once it is connected).
wait_file() { wait_until "${2:-10}" test -s "$1"; }

# start_daemon CONF [ARGS...]: start vnamigd, wait for "ready", set
# DAEMON_PID and DICOM_PORT / HTTP_PORT / MLLP_PORT.
start_daemon() {
	conf=$1
	shift
	: > "$T_DIR/daemon.log"
	"$VNAMIGD" -c "$conf" "$@" 2>>"$T_DIR/daemon.log" &
	DAEMON_PID=$!
	if ! wait_log ' info ready ' 10; then
		diag "vnamigd did not become ready; its log:"
		sed 's/^/# /' "$T_DIR/daemon.log"
		return 1
	fi
	DICOM_PORT=$(sed -n 's/.* listening proto=dicom .*port=\([0-9]*\).*/\1/p' "$T_DIR/daemon.log" | tail -1)
	HTTP_PORT=$(sed -n 's/.* listening proto=http .*port=\([0-9]*\).*/\1/p' "$T_DIR/daemon.log" | tail -1)
	MLLP_PORT=$(sed -n 's/.* listening proto=mllp .*port=\([0-9]*\).*/\1/p' "$T_DIR/daemon.log" | tail -1)
	return 0
}

# rss_bound NAME MIB GREW: ok when GREW (MiB of RSS a flood added) is
# below MIB; under AddressSanitizer, whose quarantine keeps what was freed
# (RSS follows what was allocated, not what is held), a skip: the build
# without it checks the bound.
rss_bound() {
	if ldd "$VNAMIGD" 2>/dev/null | grep -q libasan; then
		skip "$1 (AddressSanitizer: RSS counts its quarantine; grew ${3:-?} MiB)"
		return
	fi
	ok "$([ "${3:-999}" -lt "$2" ] 2>/dev/null; echo $?)" "$1 (grew ${3:-?} MiB)"
}

# audit_leaves CONF EVENT: how many leaves of EVENT the stopped daemon's
# audit log holds (vnamigd --audit-export into $T_DIR/export-EVENT)
audit_leaves() {
	rm -rf "$T_DIR/export-$2"
	"$VNAMIGD" -c "$1" --audit-export "$T_DIR/export-$2" >/dev/null 2>&1 ||
		{ echo "export failed"; return; }
	jq -c "select(.event == \"$2\")" "$T_DIR/export-$2/leaves.jsonl" |
	    wc -l | tr -d ' '
}

# sync_shim: build t/slowsync.c (an LD_PRELOAD shim: a slow or failing
# fsync) into $T_DIR/slowsync.so, or skip the rest of the script.
sync_shim() {
	if ! ${CC:-cc} -shared -fPIC -o "$T_DIR/slowsync.so" \
	    "$top_srcdir/t/slowsync.c" -ldl 2>"$T_DIR/cc.log"; then
		skip "cannot build the fsync shim: $(head -1 "$T_DIR/cc.log")"
		done_testing
	fi
	pass "t/slowsync.c built"
}

# stop_daemon [SIGNAL]: signal the daemon, wait; sets DAEMON_RC.
stop_daemon() {
	kill -"${1:-TERM}" "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID"
	DAEMON_RC=$?
	DAEMON_PID=
}

# dataset_sha FILE: the SHA-256 of a Part 10 file's dataset bytes, all that
# follows its file meta group (byte-for-byte comparisons across tools),
# padded to an even length with a zero byte (PS3.5 A.5, as sent).
dataset_sha() {
	/usr/bin/python3 -c 'import sys
sys.path.insert(0, sys.argv[1])
from scpcheck import ds_sha
print(ds_sha(sys.argv[2]))' "$top_srcdir/t" "$1"
}

# spool_export CONF DIR: every instance vnamigd (with config CONF) holds
# in its spool, as DIR/<SOPInstanceUID>.dcm, each re-hashed on the way
# (read-only: the daemon may be running). Its status is vnamig-spool's.
spool_export() { "$VNAMIG_SPOOL" -c "$1" export "$2" 2>"$T_DIR/spool.err"; }

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now
# and that no earlier free_port of this script handed out: a port taken
# for a server started later is free until then, and the kernel could
# give it out again (migfault.t once got vnamigd's port for a fake
# target started before vnamigd). The ports handed out are kept in
# $T_DIR/ports, as each call runs in a subshell.
free_port() {
	/usr/bin/python3 - "$T_DIR/ports" <<'EOF'
import random, socket, sys
# A port below the kernel's ephemeral range: one taken from that range
# (bind to port 0) could meanwhile become the local port of an outgoing
# connection (a storescu's, a curl's) of any test running beside this
# one, and the daemon given it then failed to listen (EADDRINUSE). Chosen
# at random, so that scripts running at once do not pick the same one.
try:
    used = set(open(sys.argv[1]).read().split())
except FileNotFoundError:
    used = set()
try:
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    lo = 32768
top = min(lo, 32768)
bottom = 10000 if top > 12000 else 1024
port = None
for _ in range(1000 if top - bottom >= 100 else 0):
    p = random.randrange(bottom, top)
    if str(p) in used:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    port = str(p)
    break
if port is None:	# the low range is full: what the kernel gives
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
        s.close()
        if port not in used:
            break
with open(sys.argv[1], "a") as f:
    f.write(port + "\n")
print(port)
EOF
}

# store_files: pydicom test files, one per SOP Instance UID, in eleven
# transfer syntaxes: explicit LE, explicit BE, implicit LE, JPEG baseline,
# lossy, lossless SV1, JPEG 2000 lossless and lossy, RLE, deflated, and a
# waveform.
store_files() {
	p=/usr/lib/python3/dist-packages/pydicom/data/test_files
	for f in CT_small.dcm ExplVR_BigEnd.dcm rtplan.dcm \
	    SC_jpeg_no_color_transform.dcm JPEG-lossy.dcm SC_rgb_jpeg_gdcm.dcm \
	    GDCMJ2K_TextGBR.dcm 693_J2KI.dcm MR_small_RLE.dcm image_dfl.dcm \
	    waveform_ecg.dcm; do
		echo "$p/$f"
	done
}
