#!/bin/sh
# spoolvoid.t — a received instance's index is written while its spool
# bytes are synced (the two syncs overlap; its C-STORE response waits for
# both). A receipt whose bytes did not reach the disk is taken back,
# never left in the index, never answered success:
#
#   a  the spool's fdatasync fails (EIO, an LD_PRELOAD shim, t/slowsync.c,
#      while a flag file exists) for an instance pushed by MOD (a push
#      source, push_to an export): its C-STORE fails, the daemon logs
#      spool-receipt-void, the spool does not list it, and its push queue
#      row goes with it: the two instances MOD pushes next are exported,
#      it is not
#   b  PLAIN stores one instance, its spool fdatasync slowed (0.5 s, the
#      shim's SLOWSEG_FLAG) so that its index is surely written before
#      its bytes are synced (the segment's row then says they were not);
#      vnamigd is killed (SIGKILL); the record's bytes are zeroed on the
#      disk (the state a crash leaves when the index reached the disk and
#      the bytes did not). A first restart whose own fdatasync of that
#      segment fails (the shim again) does not start: exit 3, the segment
#      named, nothing written. The next is re-hashed, taken out of
#      the index (spool-receipt-void), and the same instance sent again
#      is stored
#   c  the audit log verifies, with one instance.receipt_voided leaf per
#      voided receipt and spool.recovered saying receipts_voided 1
. "$top_srcdir/t/lib.sh"
: "${VNAMIG_VERIFY:=$top_builddir/src/verify/vnamig-verify}"
PY=/usr/bin/python3
TOK=plain-for-tests
EX=$T_DIR/disk
G=$T_DIR/gen

sync_shim
"$PY" "$top_srcdir/contrib/bench/gen-store-instances" "$G" 0 4 >/dev/null 2>&1
ok $? "4 instances generated"
sop() { dcmdump +P 0008,0018 "$G/small/0000$1.dcm" | sed 's/.*\[\(.*\)\].*/\1/'; }
S0=$(sop 0) S1=$(sop 1) S2=$(sop 2) S3=$(sop 3)
STUDY=$(dcmdump +P 0020,000d "$G/small/00000.dcm" | sed 's/.*\[\(.*\)\].*/\1/')
SERIES=$(dcmdump +P 0020,000e "$G/small/00000.dcm" | sed 's/.*\[\(.*\)\].*/\1/')

conf=$T_DIR/vnamigd.yaml
mkdir "$EX"
cat >"$conf" <<YAML
node: { ae_title: VNAMIG, data_dir: $T_DIR/var }
listen:
  dicom: { address: 127.0.0.1, port: 0 }
  http: { address: 127.0.0.1, port: 0 }
storage: { min_free: 1MiB }
migration: { push_stable: 1s }
peers:
  - { name: mod, ae_title: MOD, host: 127.0.0.1, port: 11113, role: source, push_to: disk }
  - { name: plain, ae_title: PLAIN, host: 127.0.0.1, port: 11113, role: source }
exports:
  - { name: disk, path: $EX }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
start() {
	# (an ASan build's runtime must come first but for the shim)
	SYNCFAIL_FLAG=$T_DIR/fail SLOWSEG_FLAG=$T_DIR/slowseg \
	    LD_PRELOAD=$T_DIR/slowsync.so \
	    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
	    start_daemon "$conf"
}
start || { fail "vnamigd starts"; done_testing; }
pass "vnamigd starts with the fsync shim"
cat "$T_DIR/daemon.log" >"$T_DIR/daemon-all.log"

# store AET FILE: storescu as AET; prints Success or the error response
store() {
	storescu -v -aet "$1" -aec VNAMIG 127.0.0.1 "$DICOM_PORT" "$2" \
	    >"$T_DIR/store.log" 2>&1
	if grep -q 'Received Store Response (Success)' "$T_DIR/store.log"; then
		echo Success
	else
		sed -n 's/.*Received Store Response (\(.*\)).*/\1/p' "$T_DIR/store.log" | head -1
	fi
}
listed() { "$VNAMIG_SPOOL" -c "$conf" list 2>/dev/null | grep -c "^$1 " ; }
spool_n() {
	curl -s -H "Authorization: Bearer $TOK" "http://127.0.0.1:$HTTP_PORT/api/status" |
	    jq -r '.store.spool.instances'
}

# ---- a: the spool's sync fails ----
touch "$T_DIR/fail"
got=$(store MOD "$G/small/00000.dcm")
rm -f "$T_DIR/fail"
like "$got" "^(Refused|Failed|Error)" "a: the spool's fdatasync fails: the C-STORE fails ($got)"
wait_log "spool-receipt-void.*$S0" 5
ok $? "a: spool-receipt-void logged for it"
is "$(listed "$S0")" 0 "a: the spool does not list it"
is "$(store MOD "$G/small/00001.dcm")/$(store MOD "$G/small/00002.dcm")" \
    Success/Success "a: the next two pushed are stored"
wait_until 30 test -f "$EX/$STUDY/$SERIES/$S2.dcm" -a -f "$EX/$STUDY/$SERIES/$S1.dcm"
ok $? "a: and exported (push_to disk)"
wait_until 20 sh -c "[ \"\$(curl -s -H 'Authorization: Bearer $TOK' http://127.0.0.1:$HTTP_PORT/api/status | jq -r .store.spool.instances)\" = 0 ]"
ok $? "a: the spool lets them go"
is "$(find "$EX" -name '*.dcm' | wc -l | tr -d ' ')" 2 "a: the voided one was not queued: 2 files exported"

# ---- b: a crash with the index durable and the bytes not ----
touch "$T_DIR/slowseg"
is "$(store PLAIN "$G/small/00003.dcm")" Success "b: PLAIN stores one more (its spool sync slowed)"
rm -f "$T_DIR/slowseg"
"$VNAMIG_SPOOL" -c "$conf" list --json 2>/dev/null |
    jq -r "select(.sop_instance == \"$S3\") | \"\(.segment) \(.offset) \(.bytes)\"" >"$T_DIR/rec"
read -r seg off len <"$T_DIR/rec"
ok "$([ -n "$len" ]; echo $?)" "b: it is in the spool (segment $seg offset $off)"
stop_daemon KILL 2>/dev/null
cat "$T_DIR/daemon.log" >>"$T_DIR/daemon-all.log"
"$PY" - "$T_DIR/var/spool/$seg.seg" "$off" "$len" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, bytes(64 + int(sys.argv[3])), int(sys.argv[2]))
os.close(fd)
EOF
ok $? "b: vnamigd killed; the record's bytes zeroed on the disk"
touch "$T_DIR/fail"
SYNCFAIL_FLAG=$T_DIR/fail LD_PRELOAD=$T_DIR/slowsync.so \
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
    timeout 30 "$VNAMIGD" -c "$conf" 2>"$T_DIR/failstart.log"
rc=$?
rm -f "$T_DIR/fail"
cat "$T_DIR/failstart.log" >>"$T_DIR/daemon-all.log"
is "$rc" 3 "b: a restart whose re-hash fdatasync fails (EIO) does not start: exit 3"
like "$(grep ' startup-failed ' "$T_DIR/failstart.log")" "cannot sync spool segment [^ ]*/$seg\.seg" \
    "b: its error names the segment"
is "$(listed "$S3")" 1 "b: and it wrote nothing: the record is still indexed"
start || { fail "vnamigd starts again"; done_testing; }
cat "$T_DIR/daemon.log" >>"$T_DIR/daemon-all.log"
like "$(grep 'spool-receipt-void' "$T_DIR/daemon.log")" "sop_instance=$S3" \
    "b: at the restart the record is re-hashed and voided"
like "$(grep ' spool-open ' "$T_DIR/daemon.log")" "rehashed=[1-9][0-9]* voided=1" \
    "b: spool-open: re-hashed, one voided"
is "$(listed "$S3")" 0 "b: the spool does not list it"
"$VNAMIG_SPOOL" -c "$conf" verify >"$T_DIR/verify-spool.out" 2>&1
is $? 0 "b: vnamig-spool verify: every record left matches its hash"
is "$(store PLAIN "$G/small/00003.dcm")" Success "b: sent again, it is stored"
is "$(listed "$S3")" 1 "b: and listed"
stop_daemon
is "$DAEMON_RC" 0 "vnamigd exits 0"
cat "$T_DIR/daemon.log" >>"$T_DIR/daemon-all.log"

# ---- c: the audit log ----
"$VNAMIGD" -c "$conf" --audit-export "$T_DIR/audit" >"$T_DIR/export.out" 2>&1
ok $? "c: vnamigd --audit-export"
"$VNAMIG_VERIFY" audit "$T_DIR/audit" --key "$T_DIR/var-audit.pem.pub" \
    >"$T_DIR/verify.out" 2>&1
is $? 0 "c: vnamig-verify: the exported log verifies"
L=$T_DIR/audit/leaves.jsonl
is "$(jq -r 'select(.event == "instance.receipt_voided") | .object.sop_instance' "$L" | tr '\n' ' ')" \
    "$S0 $S3 " "c: one instance.receipt_voided leaf for each"
like "$(jq -r "select(.event == \"instance.receipt_voided\" and .object.sop_instance == \"$S0\") | .actor.peer" "$L")" \
    "^MOD@127\.0\.0\.1:[0-9]+$" "c: the first names its sender"
is "$(jq -r 'select(.event == "spool.recovered") | .object.receipts_voided' "$L")" 1 \
    "c: spool.recovered: receipts_voided 1"
is "$(jq -r "select(.event == \"instance.received\") | .object.sop_instance" "$L" | sort | uniq -c | awk '{printf "%s ", $1}')" \
    "1 1 1 2 " "c: instance.received: one leaf per receipt (S3 twice)"
! grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$T_DIR/daemon-all.log"
ok $? "no sanitizer report"
done_testing
