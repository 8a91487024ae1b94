#!/bin/sh
# t/store.t — the store under crashes and a full disk, and what vnamigd
# does when it cannot write.
#
#   crash loop   t/store-writer makes durable transitions (a study row, a
#                counter, the audit leaf recording it, one unit each) and
#                is killed with SIGKILL at a random point, again and
#                again; after each kill the state is reopened and checked:
#                counter = rows = transition leaves, the leaves chain, the
#                root recomputed from the leaves equals the stored tree's,
#                and nothing acknowledged ("acked T") is missing.
#   disk full    the same writer on a small tmpfs (in a private mount
#                namespace) that fills up: its units fail with a reason,
#                it stays up, and once room returns the store reopens by
#                itself and writing goes on; the state checks out after.
#   power cut    the writer on ext4 in a loop device (its image on a
#                tmpfs) with the kernel's periodic writeback off, killed;
#                the image is copied as it is at that moment - only what
#                was synced is in it, what sat in the page cache is lost,
#                as in a power failure - then mounted (journal replay) and
#                checked like the crash loop, three times.
#   vnamigd      below storage.min_free /api/health says degraded with the
#                store's state, C-STOREs get 0xA700 with the reason while
#                C-ECHO still works; kill -9 and restart keeps the log.
. "$top_srcdir/t/lib.sh"

W="$top_builddir/t/store-writer"
ROUNDS=${STORE_CRASH_ROUNDS:-12}

# --- crash loop -----------------------------------------------------------
d="$T_DIR/crash"
lost=0
badcheck=0
total_acked=0
round=0
while [ "$round" -lt "$ROUNDS" ]; do
	round=$((round + 1))
	"$W" "$d" run -w 64 -c 2000 > "$T_DIR/acked.$round" 2>"$T_DIR/writer.err" &
	wp=$!
	# a random moment: 50 to 350 ms after the first unit was acked
	wait_until 5 grep -q acked "$T_DIR/acked.$round"
	sleep "$(awk -v r="$(od -An -N2 -tu2 /dev/urandom)" 'BEGIN { printf "%.3f", 0.05 + (r % 300) / 1000 }')"
	kill -KILL "$wp" 2>/dev/null
	wait "$wp" 2>/dev/null
	last=$(grep '^acked ' "$T_DIR/acked.$round" | cut -d' ' -f2 | sort -n | tail -1)
	out=$("$W" "$d" check 2>&1)
	case $out in
	ok\ *) ;;
	*) badcheck=$((badcheck + 1)); diag "round $round: $out" ;;
	esac
	n=$(printf '%s\n' "$out" | sed -n 's/^ok transitions=\([0-9]*\).*/\1/p')
	if [ -z "$n" ] || [ -z "$last" ] || [ "$n" -le "$last" ]; then
		lost=$((lost + 1))
		diag "round $round: last acked ${last:-none}, durable ${n:-?}"
	fi
	total_acked=${last:-0}
done
is "$badcheck" 0 "after $ROUNDS kill -9s the state is consistent each time (counter, rows, leaves, chain, root)"
is "$lost" 0 "no acknowledged transition was lost ($total_acked acked by the last round)"
out=$("$W" "$d" fill 1000 2>&1)
like "$out" "^transitions=1000 " "writing goes on after the last crash"
like "$("$W" "$d" check 2>&1)" "^ok " "and the state still checks out"

# --- power cut: unsynced writes dropped ------------------------------------
cat > "$T_DIR/cut.sh" <<EOF
set -u
t="$T_DIR/pc"
mkdir -p "\$t/fs" "\$t/a" "\$t/b"
mount -t tmpfs -o size=1200m tmpfs "\$t/fs" || exit 77
truncate -s 1G "\$t/fs/img" && mkfs.ext4 -q -F "\$t/fs/img" || exit 77
L=\$(losetup -f --show "\$t/fs/img") || exit 77
mount -o commit=3600 "\$L" "\$t/a" || { losetup -d "\$L"; exit 77; }
wb=\$(cat /proc/sys/vm/dirty_writeback_centisecs)
ex=\$(cat /proc/sys/vm/dirty_expire_centisecs)
restore() {
	echo "\$wb" > /proc/sys/vm/dirty_writeback_centisecs
	echo "\$ex" > /proc/sys/vm/dirty_expire_centisecs
}
trap restore EXIT
r=0
while [ \$r -lt 3 ]; do
	r=\$((r + 1))
	echo 0 > /proc/sys/vm/dirty_writeback_centisecs
	echo 360000 > /proc/sys/vm/dirty_expire_centisecs
	"$W" "\$t/a/d" run -m -w 64 > "\$t/acked" 2>/dev/null &
	wp=\$!
	i=0
	until grep -q acked "\$t/acked"; do
		i=\$((i + 1)); [ \$i -gt 100 ] && break; sleep 0.05
	done
	sleep 0.\$((r * 2))
	kill -KILL \$wp; wait \$wp 2>/dev/null
	cp "\$t/fs/img" "\$t/fs/snap"		# the disk at the cut
	restore
	sync
	echo "lost=\$(cmp -l "\$t/fs/img" "\$t/fs/snap" | wc -l)"
	echo "last=\$(grep '^acked' "\$t/acked" | cut -d' ' -f2 | sort -n | tail -1)"
	L2=\$(losetup -f --show "\$t/fs/snap")
	mount "\$L2" "\$t/b"
	"$W" "\$t/b/d" check -m
	umount "\$t/b"; losetup -d "\$L2"; rm "\$t/fs/snap"
done
umount "\$t/a"; losetup -d "\$L"; umount "\$t/fs"
EOF
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v losetup >/dev/null &&
    command -v mkfs.ext4 >/dev/null && unshare -m true 2>/dev/null; then
	out=$(unshare -m sh "$T_DIR/cut.sh" 2>&1)
	if [ $? = 77 ]; then
		skip "power cut: no loop device or tmpfs here"
	else
		rounds=$(printf '%s\n' "$out" | grep -c '^last=')
		printf '%s\n' "$out" | awk '
			/^lost=/ { lost = substr($0, 6) }
			/^last=/ { last = substr($0, 6) }
			/^ok transitions=/ { split($2, a, "="); if (lost == 0 || last == "" || a[2] + 0 <= last + 0) bad++; n++ }
			/^FAIL/ { bad++ }
			END { exit !(n == 3 && bad == 0) }'
		rc=$?
		ok $rc "power cut x$rounds: writes still in the page cache are lost each time, and the state mounted from the disk as it was checks out with every acknowledged transition"
		[ $rc = 0 ] || diag "$out"
	fi
else
	skip "power cut: needs root, unshare -m, losetup and mkfs.ext4"
fi

# --- disk full ------------------------------------------------------------
cat > "$T_DIR/full.sh" <<EOF
set -u
fs="$T_DIR/fs"
mkdir -p "\$fs"
mount -t tmpfs -o size=64m tmpfs "\$fs" || exit 77
dd if=/dev/zero of="\$fs/ballast1" bs=1M count=16 status=none
dd if=/dev/zero of="\$fs/ballast2" bs=1M count=4 status=none
"$W" "\$fs/d" run -r -m -w 64 > "$T_DIR/full.out" 2>"$T_DIR/full.err" &
wp=\$!
j=0
until grep -q '^failed' "$T_DIR/full.out"; do
	j=\$((j + 1)); [ \$j -gt 300 ] && break; sleep 0.1
done
kill -0 \$wp && echo "alive-when-full"
rm "\$fs/ballast1"
j=0
until grep -q '^recovered' "$T_DIR/full.out"; do
	j=\$((j + 1)); [ \$j -gt 100 ] && break; sleep 0.1
done
# some units durable after the recovery
n=\$(grep -c '^acked' "$T_DIR/full.out"); j=0
until [ "\$(grep -c '^acked' "$T_DIR/full.out")" -gt \$((n + 100)) ]; do
	j=\$((j + 1)); [ \$j -gt 100 ] && break; sleep 0.1
done
kill -KILL \$wp; wait \$wp 2>/dev/null
rm "\$fs/ballast2"
echo "last=\$(grep '^acked' "$T_DIR/full.out" | cut -d' ' -f2 | sort -n | tail -1)"
"$W" "\$fs/d" check -m
umount "\$fs"
EOF
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null &&
    unshare -m true 2>/dev/null; then
	out=$(unshare -m sh "$T_DIR/full.sh" 2>&1)
	rc=$?
	if [ "$rc" = 77 ]; then
		skip "disk full: cannot mount a tmpfs here"
		skip "disk full: recovery"
		skip "disk full: state"
	else
		like "$(cat "$T_DIR/full.out")" "^failed [0-9]+" "disk full: units fail (the writer is told) and it stays up"
		like "$out" "alive-when-full" "disk full: the process is alive while the disk is full"
		like "$(cat "$T_DIR/full.err")" "store-failed .*disk full: [0-9]+ bytes free" "disk full: the reason is logged"
		like "$(grep -A1 '^recovered' "$T_DIR/full.out" | tail -1)" "^acked" "disk full: once room returns the store reopens by itself and units land again"
		last=$(printf '%s\n' "$out" | sed -n 's/^last=//p')
		n=$(printf '%s\n' "$out" | sed -n 's/^ok transitions=\([0-9]*\).*/\1/p')
		if [ -n "$n" ] && [ -n "$last" ] && [ "$n" -gt "$last" ]; then
			pass "disk full: the state checks out after and nothing acked is missing ($n durable, last acked $last)"
		else
			fail "disk full: the state checks out after and nothing acked is missing"
			diag "$out"
		fi
	fi
else
	skip "disk full: needs root and unshare -m to mount a tmpfs"
	skip "disk full: process alive"
	skip "disk full: reason"
	skip "disk full: recovery"
	skip "disk full: state"
fi

# --- vnamigd: low space refuses new work, keeps serving --------------------
write_conf "$T_DIR/low.yaml"
sed -i 's/min_free: 1MiB/min_free: 1000TiB/' "$T_DIR/low.yaml"
start_daemon "$T_DIR/low.yaml"
h=$(curl -s "http://127.0.0.1:$HTTP_PORT/api/health")
is "$(printf '%s' "$h" | jq -r '.status + " " + .store.state')" "degraded low-space" "below min_free /api/health says degraded, store low-space"
f=/usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm
TCP_NODELAY=1 storescu -v -aet LEGACY -aec VNAMIG 127.0.0.1 "$DICOM_PORT" "$f" >"$T_DIR/scu.out" 2>&1
like "$(cat "$T_DIR/scu.out")" "Store Response \(Refused: OutOfResources\)" "a C-STORE is refused with 0xA700 (out of resources)"
like "$(cat "$T_DIR/daemon.log")" "store-refused .*reason=\"storage is below storage.min_free" "the refusal is logged with its reason"
TCP_NODELAY=1 echoscu -aet LEGACY -aec VNAMIG 127.0.0.1 "$DICOM_PORT" >/dev/null 2>&1
is "$?" 0 "C-ECHO still works"
# the floor lowered by a reload: the store is judged against it
sed -i 's/min_free: 1000TiB/min_free: 1MiB/' "$T_DIR/low.yaml"
kill -HUP "$DAEMON_PID"
wait_until 10 sh -c "curl -s http://127.0.0.1:$HTTP_PORT/api/health | grep -q '\"status\":\"ok\"'"
h=$(curl -s "http://127.0.0.1:$HTTP_PORT/api/health")
is "$(printf '%s' "$h" | jq -r '.status + " " + .store.state')" "ok ok" "min_free lowered by SIGHUP: /api/health ok, the store ok"
TCP_NODELAY=1 storescu -v -aet LEGACY -aec VNAMIG 127.0.0.1 "$DICOM_PORT" "$f" >"$T_DIR/scu.out" 2>&1
like "$(cat "$T_DIR/scu.out")" "Store Response \(Success\)" "  and a C-STORE is taken again"
stop_daemon

# --- vnamigd killed while instances stream in ------------------------------
# storescu sends 400 small instances over one association; vnamigd is
# killed (SIGKILL) while it does. Every instance storescu was told was
# stored (its k-th success is its k-th file) must be in the spool after a
# restart, re-hashing to what was sent; what a crash left past the index
# is cut at start.
/usr/bin/python3 "$top_srcdir/contrib/bench/gen-store-instances" "$T_DIR/gen" 0 400 >/dev/null
write_conf "$T_DIR/kill.yaml"
sed -i "s|data_dir: $T_DIR/var|data_dir: $T_DIR/kvar|" "$T_DIR/kill.yaml"
start_daemon "$T_DIR/kill.yaml"
TCP_NODELAY=1 storescu -v -aet LEGACY -aec VNAMIG 127.0.0.1 "$DICOM_PORT" "$T_DIR/gen/small/"*.dcm >"$T_DIR/kill.out" 2>&1 &
sp=$!
wait_until 10 sh -c "[ \$(grep -c 'Store Response (Success)' '$T_DIR/kill.out') -ge 100 ]"
stop_daemon KILL
wait "$sp" 2>/dev/null
acked=$(grep -c 'Store Response (Success)' "$T_DIR/kill.out")
ok "$([ "$acked" -ge 100 ] && [ "$acked" -lt 400 ]; echo $?)" "vnamigd was killed mid-stream ($acked of 400 acknowledged)"
start_daemon "$T_DIR/kill.yaml"
like "$(grep ' spool-open ' "$T_DIR/daemon.log")" "instances=$acked |instances=$((acked + 1)) " "after the restart the spool holds what was acknowledged (an instance in flight may be there too)"
"$VNAMIG_SPOOL" -c "$T_DIR/kill.yaml" list | cut -d' ' -f1 | sort >"$T_DIR/spooled"
missing=0
for f in $(ls "$T_DIR/gen/small/"*.dcm | head -n "$acked"); do
	u=$(/usr/bin/python3 -c 'import sys, pydicom; print(pydicom.dcmread(sys.argv[1], stop_before_pixels=True).SOPInstanceUID)' "$f")
	grep -qx "$u" "$T_DIR/spooled" || { missing=$((missing + 1)); diag "acknowledged, not spooled: $f $u"; }
done
is "$missing" 0 "every acknowledged instance is in the spool"
"$VNAMIG_SPOOL" -c "$T_DIR/kill.yaml" verify 2>"$T_DIR/kv.err"
ok $? "and re-hashes to its recorded SHA-256 ($(cat "$T_DIR/kv.err"))"
stop_daemon

# --- vnamigd: kill -9, restart, the log goes on ------------------------------
# audit_settled: the daemon's durable audit leaves, once every leaf it has
# appended is durable (/api/health: store.audit.size = durable_size; the
# daemon.start leaf is appended at start and made durable moments later,
# which a loaded machine can stretch past "ready"); 10 s at most
audit_settled() {
	i=0
	while :; do
		h=$(curl -s "http://127.0.0.1:$HTTP_PORT/api/health")
		as=$(printf '%s' "$h" | jq -r .store.audit.size)
		ad=$(printf '%s' "$h" | jq -r .store.audit.durable_size)
		if [ "$as" = "$ad" ] || [ "$i" -ge 100 ]; then
			echo "$ad"
			return
		fi
		i=$((i + 1))
		sleep 0.1
	done
}
write_conf "$T_DIR/ok.yaml"
start_daemon "$T_DIR/ok.yaml"
kill -HUP "$DAEMON_PID"; wait_log "reload-done"
n1=$(audit_settled)
stop_daemon KILL
start_daemon "$T_DIR/ok.yaml"
n2=$(audit_settled)
is "$n2" "$((n1 + 1))" "after kill -9 the restarted daemon continues the same log (daemon.start appended)"
stop_daemon
like "$("$W" "$T_DIR/var" check 2>&1)" "^ok transitions=0 leaves=$((n1 + 2)) " "the daemon's log checks out (chain, root) after kill -9 and a clean stop"

# --- scheduled checkpoints --------------------------------------------------
write_conf "$T_DIR/ck.yaml"
sed -i "s|data_dir: $T_DIR/var|data_dir: $T_DIR/cvar|; s|  min_free: 1MiB|  min_free: 1MiB\n  checkpoint_interval: 1s\n  checkpoints_keep: 2|" "$T_DIR/ck.yaml"
start_daemon "$T_DIR/ck.yaml"
wait_until 10 sh -c "[ \$(grep -c ' state-checkpoint name=sched-' '$T_DIR/daemon.log') -ge 3 ]"
ok $? "checkpoints are taken on the schedule (storage.checkpoint_interval)"
stop_daemon
is "$(ls -d "$T_DIR/cvar/checkpoints/"sched-* 2>/dev/null | grep -vc '\.json$')" 2 "  the newest storage.checkpoints_keep (2) are kept"
like "$(grep ' state-checkpoint ' "$T_DIR/daemon.log" | tail -1)" "audit_size=[0-9]+ pruned=1 ms=" "  each logged with its audit size, what was pruned and how long it took"
"$VNAMIGD" -c "$T_DIR/ck.yaml" --audit-export "$T_DIR/ckexp" >/dev/null 2>&1
is "$(grep -c '"event":"state.checkpoint"' "$T_DIR/ckexp/leaves.jsonl")" "$(grep -c ' state-checkpoint name=' "$T_DIR/daemon.log")" "  and each is an audit leaf"

done_testing
