# t/miglib.sh — what the migration engine's integration scripts (t/mig*.t)
# share: the REST calls with the operator key in $TOK against $base,
# waiting for a batch, its report and its check, a storescp target, fake
# sources. Source it after lib.sh and qrpeers.sh.

# The names they share: the UID root of qrpeers.sh's gen_studies, the
# Python that runs the helpers, the operator key's token (each script's
# configuration gives its key "$TOK"), the fake source.
ROOT=1.2.826.0.1.3680043.10.1297.9
PY=/usr/bin/python3
TOK=plain-for-tests
FS=$top_srcdir/t/fakesource.py
FS_PID=
FS_PIDS=

# fake_start NAME PORT AET [OPTIONS...]: t/fakesource.py as AET on
# 127.0.0.1:PORT serving $T_DIR/gen, its log $T_DIR/fake-NAME.log (and
# stderr fake-NAME.err); sets FS_PID and adds it to FS_PIDS; bails out
# (mig_bail) unless it answers C-ECHO.
fake_start() {
	fs_n=$1 fs_p=$2 fs_a=$3
	shift 3
	: >"$T_DIR/fake-$fs_n.log"
	"$PY" "$FS" "$fs_p" "$fs_a" "$T_DIR/fake-$fs_n.log" --load \
	    "$T_DIR/gen" "$@" </dev/null >"$T_DIR/fake-$fs_n.err" 2>&1 &
	FS_PID=$!
	FS_PIDS="$FS_PIDS $FS_PID"
	qp_wait "$FS_PID" 10 echoscu -aet VNAMIG -aec "$fs_a" 127.0.0.1 \
	    "$fs_p" || { qp_fail "fakesource $fs_a on port $fs_p does not" \
	    "answer C-ECHO" "$T_DIR/fake-$fs_n.err"
		mig_bail "the fake source $fs_a runs"; }
}

# fake_stop: every source fake_start started.
fake_stop() {
	for fs_k in $FS_PIDS; do
		qp_stop "$fs_k"
	done
	FS_PIDS=
	FS_PID=
}

# api METHOD PATH [BODY]: one request with the operator key; sets code
# and out (the body).
api() {
	rm -f "$T_DIR/b"
	if [ $# -ge 3 ]; then
		code=$(curl -s -o "$T_DIR/b" -w '%{http_code}' -X "$1" \
		    -H "Authorization: Bearer $TOK" \
		    -H 'Content-Type: application/json' \
		    --data-binary "$3" "$base$2")
	else
		code=$(curl -s -o "$T_DIR/b" -w '%{http_code}' -X "$1" \
		    -H "Authorization: Bearer $TOK" "$base$2")
	fi
	out=$(cat "$T_DIR/b" 2>/dev/null)
}
j() { printf '%s' "$out" | jq -r "$1" 2>/dev/null; }

# submit NAME BODY: POST /api/batches; sets BID (empty when refused).
submit() {
	api POST /api/batches "$2"
	BID=$(j '.batch_id // empty')
	if [ "$code" = 201 ] && [ -n "$BID" ]; then
		pass "$1: 201, batch $BID"
	else
		fail "$1: 201 with a batch_id"
		diag "HTTP $code: $out"
		BID=
	fi
}

# wait_batch ID [SECONDS]: poll until the batch ends (done, failed,
# cancelled) or vnamigd is gone; sets BSTATE. On a timeout or another end
# than done: the batch JSON and the daemon log's tail as diag.
wait_batch() {
	wb_n=$((${2:-60} * 5))
	while :; do
		api GET "/api/batches/$1"
		BSTATE=$(j '.batch.state // empty')
		case $BSTATE in
		done|failed|cancelled) break ;;
		esac
		if ! qp_alive "$DAEMON_PID"; then
			BSTATE="$BSTATE (vnamigd is not running)"
			break
		fi
		wb_n=$((wb_n - 1))
		if [ "$wb_n" -le 0 ]; then
			BSTATE="$BSTATE (timeout)"
			break
		fi
		sleep 0.2
	done
	if [ "$BSTATE" != "done" ]; then
		diag "batch $1: $BSTATE; GET /api/batches/$1:" "$out"
		log_tail
	fi
	if ! qp_alive "$DAEMON_PID"; then
		is "$BSTATE" "done" "batch $1 reaches done"
		bail "vnamigd keeps running"
	fi
}

# log_tail: diag the daemon log's last lines, or a sanitizer's report.
log_tail() {
	lt_at=$(grep -n -m1 -E 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' \
	    "$T_DIR/daemon.log" | cut -d: -f1)
	if [ -n "$lt_at" ]; then
		diag "the daemon log, from the sanitizer's report:"
		sed -n "$((lt_at > 3 ? lt_at - 3 : 1)),$((lt_at + 40))p" \
		    "$T_DIR/daemon.log" | sed 's/^/#   /'
	else
		diag "last lines of the daemon log:"
		tail -n 30 "$T_DIR/daemon.log" | sed 's/^/#   /'
	fi
}

# report ID: GET /api/batches/ID/report into $T_DIR/report-ID.json.
report() {
	api GET "/api/batches/$1/report"
	printf '%s' "$out" >"$T_DIR/report-$1.json"
	[ "$code" = 200 ] || diag "report of batch $1: HTTP $code: $out"
}
# rj ID JQ: a value from batch ID's saved report.
rj() { jq -r "$2" "$T_DIR/report-$1.json" 2>/dev/null; }

# mig_bail NAME: a "not ok" for something the rest needs; the daemon log's
# tail, then stop everything: vnamigd (killed), the script's own peers
# (MIG_STOP, a function the script may name), the DCMTK and Orthanc ones.
mig_bail() {
	fail "$1"
	[ -s "$T_DIR/daemon.log" ] && log_tail
	[ -n "$DAEMON_PID" ] && stop_daemon KILL
	[ -n "${MIG_STOP:-}" ] && "$MIG_STOP"
	stop_peers
	done_testing
}

# mig_start BAIL [WHAT]: $conf checked (vnamigd --check-config: "the
# configuration[ (WHAT)] is valid", its output as diagnostics if not),
# then vnamigd started on it (else BAIL, the script's own bail-out, with
# "vnamigd starts"); sets base; a check that it runs.
mig_start() {
	ms_out=$("$VNAMIGD" -c "$conf" --check-config 2>&1)
	ms_rc=$?
	ok $ms_rc "the configuration${2:+ ($2)} is valid"
	[ $ms_rc = 0 ] || diag "$ms_out"
	start_daemon "$conf" || "$1" "vnamigd starts"
	base="http://127.0.0.1:$HTTP_PORT"
	pass "vnamigd runs (DICOM $DICOM_PORT, HTTP $HTTP_PORT)"
}

# legacy_to_export MAX_STUDIES: studies 1-6 (1 series x 2 instances each)
# generated and loaded into a DCMTK dcmqrscp source LEGACY, and vnamigd
# started with it as peer "legacy" and the export "disk" ($EX) as its
# target, at most MAX_STUDIES studies at once; sets conf and base. Two
# checks (generated, loaded).
legacy_to_export() {
	gen_studies "$T_DIR/gen" 6 1 2
	ok $? "12 instances generated (studies 1-6 x 1 series x 2)"
	src_port=$(free_port)
	d_port=$(free_port)
	QR_NAME=legacy
	start_dcmqrscp LEGACY "$src_port" "$T_DIR/legacy" VNAMIG "$d_port" ||
	    mig_bail "the source dcmqrscp (LEGACY) runs"
	load_dcmqrscp LEGACY "$src_port" "$T_DIR/gen"
	ok $? "LEGACY loaded"
	conf=$T_DIR/vnamigd.yaml
	cat >"$conf" <<YAML
node: { ae_title: VNAMIG, data_dir: $T_DIR/var }
listen:
  dicom: { address: 127.0.0.1, port: $d_port }
  http:  { address: 127.0.0.1, port: 0 }
storage: { min_free: 1MiB }
migration: { max_studies: $1, retry_backoff: 200ms }
peers:
  - { name: legacy, ae_title: LEGACY, host: 127.0.0.1, port: $src_port, role: source }
exports:
  - { name: disk, path: $EX }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
	mkdir -p "$EX"
	start_daemon "$conf" || mig_bail "vnamigd starts"
	base="http://127.0.0.1:$HTTP_PORT"
}

# scp_target: DCMTK's storescp as a migration target (AE STORESCP, +B: it
# keeps the bytes it receives) on $scp_port, into $T_DIR/scp; sets
# SCP_PID; bails out unless it answers C-ECHO. One association at a time:
# its peer entry wants max_associations: 1.
scp_target() {
	mkdir -p "$T_DIR/scp"
	qp_port_free "$scp_port" || bail "the storescp's port is free"
	storescp -aet STORESCP -od "$T_DIR/scp" +B -dhl "$scp_port" \
	    </dev/null >"$T_DIR/storescp.log" 2>&1 &
	SCP_PID=$!
	qp_wait "$SCP_PID" 10 echoscu -aet VNAMIG -aec STORESCP 127.0.0.1 \
	    "$scp_port" || bail "storescp (the target) runs"
	pass "storescp (the target) runs on $scp_port"
}

# check_lines RC NAME [WHAT]: the lines a check script wrote to
# $T_DIR/check.out made TAP, each named "NAME: ...": "is|GOT|WANT|TEXT",
# "diag|TEXT", and "levels|X" / "tmps|X" (into LEVELS, TMPS). RC: the
# script's exit status; not 0: one failure, "NAME: WHAT" (default: the
# report could be checked), with its $T_DIR/check.err.
check_lines() {
	if [ "$1" != 0 ]; then
		fail "$2: ${3:-the report could be checked}"
		sed 's/^/# /' "$T_DIR/check.err"
		return
	fi
	while IFS='|' read -r kind a b c; do
		case $kind in
		is) is "$a" "$b" "$2: $c" ;;
		diag) diag "$a" ;;
		levels) LEVELS=$a ;;
		tmps) TMPS=$a ;;
		esac
	done <"$T_DIR/check.out"
}

# report_check ID NAME EXPECTED OUTCOME [SOP=OUTCOME[:REASON[:STATUS]]...]:
# batch ID's saved report (report ID) checked by t/reportcheck.py: TAP
# lines, each named "NAME: ...".
report_check() {
	ck_id=$1
	ck_name=$2
	shift 2
	/usr/bin/python3 "$top_srcdir/t/reportcheck.py" \
	    "$T_DIR/report-$ck_id.json" "$@" >"$T_DIR/check.out" \
	    2>"$T_DIR/check.err"
	check_lines $? "$ck_name"
}

# free_bytes DIR: the space free for us on DIR's file system.
free_bytes() {
	/usr/bin/python3 -c 'import os, sys
s = os.statvfs(sys.argv[1])
print(s.f_bavail * s.f_frsize)' "$1"
}
