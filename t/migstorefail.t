#!/bin/sh
# t/migstorefail.t — a study's unit that does not land: the state's file
# system (node.data_dir, a 64 MiB tmpfs in a mount namespace of our own)
# fills up while the source answers the study's C-FIND (FAKEQ, slowed to
# 3 s), so the unit that writes the study's instance list fails with the
# store (disk full: below the floor). Nothing of it was written; the
# study goes on from its row (mig-study-reread), as after a restart:
# once the file system has room again and the store reopens, the study
# asks the source again and migrates all 3 instances. (It went on from
# memory before: past the query, with no instance rows, it ended done
# with none expected, a migration "complete" with nothing migrated.)
if [ -z "${MIGSTOREFAIL_NS:-}" ] && [ "$(id -u)" = 0 ] &&
    command -v unshare >/dev/null 2>&1 &&
    unshare -m --propagation private true 2>/dev/null; then
	MIGSTOREFAIL_NS=1
	export MIGSTOREFAIL_NS
	exec unshare -m --propagation private /bin/sh \
	    "$top_srcdir/t/migstorefail.t" "$@"
fi
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
export LC_ALL=C TCP_NODELAY=1
FS_PID=
SCP_PID=
VARFS=$T_DIR/var
MOUNTED=
stop_all() {
	[ -n "$DAEMON_PID" ] && stop_daemon KILL
	qp_stop "$FS_PID"
	qp_stop "$SCP_PID"
	FS_PID=
	SCP_PID=
	if [ -n "$MOUNTED" ]; then
		umount "$VARFS" 2>/dev/null || umount -l "$VARFS"
		MOUNTED=
	fi
}
trap 'stop_all; cleanup' EXIT
MIG_STOP=stop_all

if [ -z "${MIGSTOREFAIL_NS:-}" ]; then
	skip "needs root and unshare -m, to fill a tmpfs of its own"
	done_testing
fi
mkdir -p "$VARFS" && mount -t tmpfs -o size=64m,mode=0700 vnamig-t-var "$VARFS" &&
    MOUNTED=1
ok $? "a 64 MiB tmpfs on node.data_dir ($VARFS, in a mount namespace)"
[ -n "$MOUNTED" ] || done_testing

gen_studies "$T_DIR/gen" 1 1 3
ok $? "3 instances generated (1 study)"
src_port=$(free_port)
scp_port=$(free_port)
d_port=$(free_port)
qp_port_free "$src_port" || mig_bail "FAKEQ's port is free"
"$PY" "$top_srcdir/t/fakesource.py" "$src_port" FAKEQ "$T_DIR/fake.log" \
    --load "$T_DIR/gen" --slow-find 3 </dev/null >"$T_DIR/fake.err" 2>&1 &
FS_PID=$!
qp_wait "$FS_PID" 10 echoscu -aet VNAMIG -aec FAKEQ 127.0.0.1 "$src_port" ||
    mig_bail "FAKEQ (fakesource.py, C-FIND slowed to 3 s) runs"
scp_target

conf=$T_DIR/vnamigd.yaml
cat >"$conf" <<YAML
node: { ae_title: VNAMIG, data_dir: $VARFS/d }
listen:
  dicom: { address: 127.0.0.1, port: $d_port }
  http:  { address: 127.0.0.1, port: 0 }
limits: { shutdown_grace: 5s, dimse_timeout: 20s }
storage: { min_free: 1MiB, write_buffer: 1MiB }
migration: { max_studies: 1, retry_backoff: 1s, retry_backoff_max: 2s }
peers:
  - { name: fakeq, ae_title: FAKEQ, host: 127.0.0.1, port: $src_port, role: source, retrieve: get }
  - { name: scp, ae_title: STORESCP, host: 127.0.0.1, port: $scp_port, role: target, verify: none }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
mig_start mig_bail

submit "the study from FAKEQ to storescp" \
    "{\"source\":\"fakeq\",\"target\":\"scp\",\"study_instance_uids\":[\"$ROOT.1.1\"]}"
wait_log ' qr-start .*op=C-FIND' 10
ok $? "the study's C-FIND at FAKEQ has begun"
# the floor: 2 x write_buffer + 16 MiB = 18 MiB; leave 8 MiB
fb=$(free_bytes "$VARFS")
head -c $((fb - 8388608)) /dev/zero >"$VARFS/filler" 2>/dev/null
ok $? "node.data_dir's file system filled ($(free_bytes "$VARFS") bytes free)"
wait_log "mig-write-failed batch=$BID study=$ROOT.1.1 state=preflight " 20
ok $? "the unit with the study's instance list fails (mig-write-failed)"
grep -q "mig-study-reread batch=$BID study=$ROOT.1.1 state=queued" "$T_DIR/daemon.log"
ok $? "  the study goes on from its row: queued (mig-study-reread)"
rm -f "$VARFS/filler"
wait_log 'store-recovered' 10
ok $? "with room again the store reopens (store-recovered)"
wait_batch "$BID" 60
is "$BSTATE" done "the batch ends done"
report "$BID"
is "$(rj "$BID" '.summary.expected')/$(rj "$BID" '.summary.migrated')" "3/3" \
    "3 expected, 3 migrated"
is "$(ls "$T_DIR/scp" | wc -l)" 3 "storescp has the 3 instances"
is "$(grep -c "find IMAGE 3 $ROOT.1.1" "$T_DIR/fake.log")" 2 \
    "FAKEQ was asked for the study's instances twice (the list lost with the unit was asked for again)"
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
done_testing
