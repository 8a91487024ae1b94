#!/bin/sh
# migshard.t — two shards (node.shard_index 0 and 1 of shard_count 2),
# each its own vnamigd and data_dir, given the same batch of 8 studies:
# each migrates the studies it owns (SHA-256 of the StudyInstanceUID,
# first 8 bytes big-endian, mod 2, computed here independently), the
# other shard's counted in its batch record (other_shards); together
# every instance reaches the target once. Peers' max_associations is
# divided between the shards (--dump-config); an audit checkpoint is
# signed as a batch ends. t/fakesource.py is the
# source (C-GET), DCMTK's storescp the target (verify: none).
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
export LC_ALL=C TCP_NODELAY=1

FS_PID=
SCP_PID=
D1_PID=
stop_all() {
	qp_stop "$FS_PID"
	qp_stop "$SCP_PID"
	[ -n "$D1_PID" ] && kill -KILL "$D1_PID" 2>/dev/null
	FS_PID=
	SCP_PID=
	D1_PID=
}
trap 'stop_all; cleanup' EXIT
MIG_STOP=stop_all

gen_studies "$T_DIR/gen" 8 1 2
ok $? "16 instances generated (8 studies x 1 series x 2)"
src_port=$(free_port)
scp_port=$(free_port)
"$PY" "$top_srcdir/t/fakesource.py" "$src_port" FAKEQ "$T_DIR/fake.log" \
    --load "$T_DIR/gen" </dev/null >"$T_DIR/fake.err" 2>&1 &
FS_PID=$!
qp_wait "$FS_PID" 10 echoscu -aet VNAMIG -aec FAKEQ 127.0.0.1 "$src_port" ||
    mig_bail "FAKEQ (fakesource.py) runs"
# storescp --fork: both shards send at once, and keep their idle
# associations for reuse
mkdir -p "$T_DIR/scp"
storescp --fork -aet STORESCP -od "$T_DIR/scp" +B -dhl "$scp_port" \
    </dev/null >"$T_DIR/storescp.log" 2>&1 &
SCP_PID=$!
qp_wait "$SCP_PID" 10 echoscu -aet VNAMIG -aec STORESCP 127.0.0.1 \
    "$scp_port" || mig_bail "storescp --fork (the target) runs"

# shard_conf N: shard N's configuration
shard_conf() {
	cat >"$T_DIR/shard$1.yaml" <<YAML
node: { ae_title: VNAMIG$1, data_dir: $T_DIR/var$1, shard_index: $1, shard_count: 2 }
listen:
  dicom: { address: 127.0.0.1, port: 0 }
  http:  { address: 127.0.0.1, port: 0 }
storage: { min_free: 1MiB }
peers:
  - { name: fakeq, ae_title: FAKEQ, host: 127.0.0.1, port: $src_port, role: source, retrieve: get, max_associations: 3 }
  - { name: scp, ae_title: STORESCP, host: 127.0.0.1, port: $scp_port, role: target, verify: none }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
}
shard_conf 0
shard_conf 1
like "$("$VNAMIGD" -c "$T_DIR/shard0.yaml" --check-config --dump-config 2>&1)" \
    "peers\.fakeq\.max_associations = 2" \
    "max_associations 3 divided between 2 shards: 2 each (rounded up)"

# shard 1 by hand, shard 0 with the library's daemon
"$VNAMIGD" -c "$T_DIR/shard1.yaml" 2>"$T_DIR/daemon1.log" &
D1_PID=$!
wait_until 10 grep -q ' info ready ' "$T_DIR/daemon1.log" ||
    mig_bail "shard 1 starts"
base1="http://127.0.0.1:$(sed -n 's/.* listening proto=http .*port=\([0-9]*\).*/\1/p' "$T_DIR/daemon1.log" | tail -1)"
conf=$T_DIR/shard0.yaml
mig_start mig_bail "shard 0"

uids=
i=1
while [ "$i" -le 8 ]; do
	uids="$uids${uids:+,}\"$ROOT.1.$i\""
	i=$((i + 1))
done
seed="{\"source\":\"fakeq\",\"target\":\"scp\",\"study_instance_uids\":[$uids]}"
submit "shard 0: the batch of 8 studies" "$seed"
B0=$BID
b1=$(curl -s -X POST -H "Authorization: Bearer $TOK" \
    -H 'Content-Type: application/json' --data-binary "$seed" \
    "$base1/api/batches" | jq -r '.batch_id // empty')
ok "$([ -n "$b1" ]; echo $?)" "shard 1: the same batch ($b1)"

# which shard owns which study, computed here
"$PY" - "$ROOT" >"$T_DIR/owners" <<'EOF'
import hashlib, sys
for i in range(1, 9):
    uid = "%s.1.%d" % (sys.argv[1], i)
    h = int.from_bytes(hashlib.sha256(uid.encode()).digest()[:8], 'big')
    print(uid, h % 2)
EOF
n0=$(awk '$2 == 0' "$T_DIR/owners" | wc -l)
n1=$(awk '$2 == 1' "$T_DIR/owners" | wc -l)
diag "shard 0 owns $n0 of the 8 studies, shard 1 $n1"

wait_batch "$B0" 60
is "$BSTATE" done "shard 0's batch ends done"
wait_log ' audit-checkpoint size=' 5
ok $? "  an audit checkpoint is signed when it ends (not only every checkpoint_interval)"
n=0
while [ "$n" -lt 300 ]; do
	s1=$(curl -s -H "Authorization: Bearer $TOK" "$base1/api/batches/$b1" | jq -r '.batch.state')
	case $s1 in done|failed|cancelled) break ;; esac
	sleep 0.2
	n=$((n + 1))
done
is "$s1" done "shard 1's batch ends done"

report "$B0"
is "$(rj "$B0" '.summary.expected')/$(rj "$B0" '.summary.migrated')" \
    "$((n0 * 2))/$((n0 * 2))" "shard 0 migrated the $((n0 * 2)) instances of its $n0 studies"
is "$(rj "$B0" '[.instances[].study_uid] | unique | sort | join(" ")')" \
    "$(awk '$2 == 0 { print $1 }' "$T_DIR/owners" | sort | tr '\n' ' ' | sed 's/ $//')" \
    "  exactly the studies it owns"
curl -s -H "Authorization: Bearer $TOK" "$base1/api/batches/$b1/report" >"$T_DIR/report1.json"
is "$(jq -r '.summary.expected' "$T_DIR/report1.json")/$(jq -r '.summary.migrated' "$T_DIR/report1.json")" \
    "$((n1 * 2))/$((n1 * 2))" "shard 1 migrated the $((n1 * 2)) of its $n1"
api GET "/api/batches/$B0"
is "$(j '.batch.other_shards')" "$n1" "shard 0's batch counts the $n1 studies other shards own"
is "$(ls "$T_DIR/scp" | wc -l)" 16 "storescp holds all 16 instances, each once"
grep -q "mig-shard batch=$B0 shard=0/2 studies=$n0 other_shards=$n1" "$T_DIR/daemon.log"
ok $? "shard 0 logged what it took (mig-shard)"

kill -TERM "$D1_PID"
wait "$D1_PID"
is "$?" 0 "shard 1 stops cleanly"
D1_PID=
stop_daemon
is "$DAEMON_RC" 0 "shard 0 stops cleanly"
! grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$T_DIR/daemon.log" "$T_DIR/daemon1.log"
ok $? "no sanitizer report"
done_testing
