#!/bin/sh
# backlog.t — limits.store_backlog holds a sender back whatever answers
# it got: instances of our own retrieves are answered as soon as they are
# whole (migration.retrieve_ack: early), and their bytes wait for the
# disk after the answer. With a disk whose fsync takes 0.5 s (an
# LD_PRELOAD shim, t/slowsync.c, while a flag file exists) a peer sends 12
# C-STOREs of 2 MiB as C-MOVE sub-operations for us, each as soon as the
# last is answered: vnamigd must stop reading it while more than the
# limit (here 4 MiB) waits to be written, not hold them all in memory
# (before, only the instance being received was counted: 24 MiB held).
. "$top_srcdir/t/lib.sh"

sync_shim

conf=$T_DIR/vnamigd.yaml
cat >"$conf" <<YAML
node: { ae_title: VNAMIG, data_dir: $T_DIR/var }
listen:
  dicom: { address: 127.0.0.1, port: 0 }
limits: { store_backlog: 4MiB, max_pdu: 1MiB }
storage: { min_free: 1MiB }
peers:
  - { name: legacy, ae_title: SCU, host: 127.0.0.1, port: 11113, role: source, window: never }
YAML
# (an ASan build's runtime must come first but for the shim)
SLOWSYNC_FLAG=$T_DIR/slow LD_PRELOAD=$T_DIR/slowsync.so \
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
    start_daemon "$conf" || { fail "vnamigd starts"; done_testing; }
pass "vnamigd starts with the fsync shim"

touch "$T_DIR/slow"
got=$(/usr/bin/python3 "$top_srcdir/t/dicomraw.py" "$DICOM_PORT" early-flood \
    12 2097152 "$DAEMON_PID" VNAMIG "$T_DIR/slow")
like "$got" "PDATA:status=0x0000" "12 C-STOREs of 2 MiB as sub-operations of our C-MOVE: answered success"
grew=$(echo "$got" | sed -n 's/^grew_mb=\([0-9-]*\).*/\1/p')
rss_bound "  while fsync takes 0.5 s, vnamigd holds less than 12 MiB more, not the 24 sent" 12 "$grew"
wait_until 20 sh -c "[ \$(grep -c ' store-received ' '$T_DIR/daemon.log') -ge 12 ]"
ok $? "  and all 12 are stored"
stop_daemon
is "$DAEMON_RC" 0 "vnamigd exits 0"
! grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$T_DIR/daemon.log"
ok $? "no sanitizer report"
done_testing
