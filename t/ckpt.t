#!/bin/sh
# t/ckpt.t — vnamig-state on real state made by t/store-writer: named
# checkpoints at two points and a restore of the first (job state back,
# the audit log kept whole plus the restore leaf, every checkpoint ever
# signed still verifies); a backup to a directory outside, the state
# wiped, restored from the backup, vnamigd started on it and its audit
# export verified by vnamig-verify (and the checkpoints signed after the
# backup shown as a rollback, which is the truth); refusals while a
# vnamigd holds the data dir, bad names, missing checkpoints and backups.
. "$top_srcdir/t/lib.sh"

W="$top_builddir/t/store-writer"
VS="${VNAMIG_STATE:-$top_builddir/src/ckpt/vnamig-state}"
VERIFY="${VNAMIG_VERIFY:-$top_builddir/src/verify/vnamig-verify}"
D="$T_DIR/var"
KEY="$D-audit.pem.pub"
BK="$T_DIR/backups"
conf="$T_DIR/vnamigd.yaml"
# store-writer signs as vnamig/WRITER (its ae_title): the same origin here
write_conf "$conf" "audit: { origin: vnamig/WRITER }"

# vs ARGS...: run vnamig-state; output in $out, exit status in $rc
vs() {
	out=$("$VS" "$@" 2>&1)
	rc=$?
}

# counter_rows: "COUNTER ROWS LAST_T" as store-writer check reads them
# (after a restore it reports FAIL: the log holds later transitions than
# the job state, which is what a restore means)
counter_rows() {
	"$W" "$D" check 2>&1 | sed -n \
	    -e 's/^ok transitions=\([0-9]*\) .*/\1 \1 x/p' \
	    -e 's/^FAIL counter \([0-9]*\) rows \([0-9]*\) last transition leaf \([0-9]*\).*/\1 \2 \3/p'
}

export_log() {	# export_log DIR: vnamigd --audit-export into DIR
	"$VNAMIGD" -c "$conf" --audit-export "$1" >"$1.out" 2>&1
}

leaf_count() { wc -l < "$1/leaves.jsonl" | tr -d ' '; }

# --- state at two points, a checkpoint at each ---------------------------
mkdir -p "$D"
"$W" "$D" fill 100 >/dev/null 2>&1
vs -c "$conf" checkpoint create first
is "$rc" 0 "checkpoint create first (exit 0)"
like "$out" "checkpoint \"first\" created in .*/checkpoints/first \(audit size [0-9]+" \
	"it says where and at which audit size"
ok "$([ -d "$D/checkpoints/first" ] && [ -s "$D/checkpoints/first.json" ]; echo $?)" \
	"DATA_DIR/checkpoints/first and first.json exist"
"$W" "$D" fill 50 >/dev/null 2>&1
vs -c "$conf" checkpoint create second
is "$rc" 0 "checkpoint create second"
"$W" "$D" fill 25 >/dev/null 2>&1
like "$("$W" "$D" check 2>&1)" "^ok transitions=175 " "the state holds 175 transitions"

vs -c "$conf" checkpoint list
like "$out" "first +[0-9T:.Z-]+ +request +[0-9]+ +[0-9]+" "checkpoint list shows first with time, reason, audit size, bytes"
like "$(printf '%s\n' "$out" | sed -n 3p)" "^second " "oldest first"
vs -c "$conf" checkpoint list --json
first_size=$(printf '%s' "$out" | python3 -c 'import json,sys; v=json.load(sys.stdin); print([c["audit_size"] for c in v if c["name"]=="first"][0])' 2>/dev/null)
like "${first_size:-x}" "^[0-9]+$" "checkpoint list --json gives each audit size (first: ${first_size:-?})"

# --- refusals --------------------------------------------------------------
vs -c "$conf" checkpoint create first
is "$rc" 6 "an existing name is refused (exit 6)"
like "$out" "exists already" "  saying so"
vs -c "$conf" checkpoint create ../escape
is "$rc" 2 "a name with '/' is refused (exit 2)"
like "$out" "not one of A-Z a-z 0-9" "  with what is allowed"
vs -c "$conf" checkpoint create .hidden
is "$rc" 2 "a name starting with '.' is refused"
vs -c "$conf" checkpoint restore nope
is "$rc" 5 "restoring a missing checkpoint: exit 5"
like "$out" "no checkpoint \"nope\"" "  naming it"
vs -c "$conf" checkpoint delete nope
is "$rc" 5 "deleting a missing checkpoint: exit 5"
vs -c "$conf" backup restore "$T_DIR/nobackups"
is "$rc" 5 "restoring from a directory without backups: exit 5"
vs -c "$conf" checkpoint frobnicate x
is "$rc" 2 "an unknown command: exit 2"
vs --help
ok "$([ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q 'EXIT STATUS' && printf '%s' "$out" | grep -q 'THE SPOOL'; echo $?)" \
	"--help is a manual page (exit status, the spool)"

if start_daemon "$conf"; then
	vs -c "$conf" checkpoint restore first
	is "$rc" 4 "restore while vnamigd runs: exit 4"
	like "$out" "in use .*pid $DAEMON_PID" "  naming the daemon's pid"
	vs -c "$conf" checkpoint create third
	is "$rc" 4 "create while vnamigd runs: exit 4"
	vs -c "$conf" backup restore "$BK"
	is "$rc" 4 "backup restore while vnamigd runs: exit 4"
	vs -c "$conf" checkpoint list
	is "$rc" 0 "checkpoint list works while it runs"
	stop_daemon
else
	fail "vnamigd starts"
fi

# --- restore the first checkpoint (not the latest) ---------------------------
export_log "$T_DIR/e0"
L=$(leaf_count "$T_DIR/e0")
vs -c "$conf" checkpoint restore first
is "$rc" 0 "checkpoint restore first (exit 0)"
diag "$out"
like "$out" "kept as $D/db\.replaced-[0-9]{8}T[0-9]{6}Z" "it says where the replaced state is kept"
like "$out" "spool" "and what it means for the spool"
rep=$(printf '%s\n' "$out" | sed -n 's/.*kept as \(.*db\.replaced-[0-9TZ-]*\).*/\1/p')
ok "$([ -n "$rep" ] && [ -f "$rep/CURRENT" ]; echo $?)" "the replaced state is there ($rep)"
is "$(counter_rows)" "100 100 174" "job state is back at 100 transitions (counter and rows) while the log keeps transition 174"
export_log "$T_DIR/e1"
is "$(leaf_count "$T_DIR/e1")" "$((L + 1))" "the audit log kept its $L leaves and one more"
ok "$(head -n "$L" "$T_DIR/e1/leaves.jsonl" | cmp -s - "$T_DIR/e0/leaves.jsonl"; echo $?)" \
	"every earlier leaf is byte for byte what it was"
last=$(tail -n 1 "$T_DIR/e1/leaves.jsonl")
like "$last" '"event":"state.restored"' "the new leaf is state.restored"
like "$last" "\"audit_size\":$first_size,.*\"audit_size_at_restore\":$L,\"checkpoint\":\"first\"" \
	"  with the checkpoint, its audit size and the size at the restore"
"$VERIFY" audit "$T_DIR/e1" --key "$KEY" >"$T_DIR/v1.out" 2>&1
is "$?" 0 "vnamig-verify: the log verifies after the restore"
"$VERIFY" audit "$T_DIR/e1" --key "$KEY" --checkpoint "$D/audit-checkpoints" >"$T_DIR/v1c.out" 2>&1
is "$?" 0 "  and so does every checkpoint ever signed (DATA_DIR/audit-checkpoints): nothing rolled back"

vs -c "$conf" checkpoint restore second
is "$rc" 0 "then the later checkpoint restores too"
is "$(counter_rows | cut -d' ' -f1-2)" "150 150" "  (150 transitions)"
vs -c "$conf" checkpoint restore first
is "$rc" 0 "and the first again: restoring a checkpoint does not change it"
is "$(counter_rows | cut -d' ' -f1-2)" "100 100" "  (100 transitions)"
vs -c "$conf" checkpoint delete second
is "$rc" 0 "checkpoint delete second"
vs -c "$conf" checkpoint list
ok "$(printf '%s\n' "$out" | grep -q '^second'; [ $? -ne 0 ]; echo $?)" "  it is no longer listed"

# --- backup, wipe, restore -------------------------------------------------
vs -c "$conf" backup create "$D/inside"
is "$rc" 2 "a backup directory inside DATA_DIR is refused (exit 2)"
ok "$([ ! -e "$D/inside" ]; echo $?)" "  and not created"
vs -c "$conf" backup create "$BK"
is "$rc" 0 "backup create into a directory outside (exit 0)"
like "$out" "^backup 1 created" "  it is backup 1"
export_log "$T_DIR/eb"
B=$(leaf_count "$T_DIR/eb")
vs backup list "$BK"
like "$out" "^1 +[0-9T:-]+Z +[0-9]+ +[0-9]+ +[0-9]+" "backup list shows it"
vs backup list "$BK" --json
like "$out" '"id": 1' "backup list --json"
vs backup verify "$BK"
is "$rc" 0 "backup verify (trial restore, audit tree) exit 0"
vs backup verify "$BK" 9
is "$rc" 5 "backup verify of a missing id: exit 5"
# without the record of its audit log a backup is not trusted
mv "$BK/vnamig-backup-1.json" "$T_DIR/meta1"
vs backup verify "$BK"
is "$rc" 8 "backup verify with its record removed: damaged (exit 8)"
like "$out" "no record of its audit log" "  and says why"
mv "$T_DIR/meta1" "$BK/vnamig-backup-1.json"

"$W" "$D" fill 10 >/dev/null 2>&1	# signs a checkpoint after the backup
rm -rf "$D/db"
vs -c "$conf" backup restore "$BK" 9
is "$rc" 5 "backup restore of a missing id: exit 5"
mv "$BK/vnamig-backup-1.json" "$T_DIR/meta1"
vs -c "$conf" backup restore "$BK"
is "$rc" 8 "backup restore with its record removed: refused (exit 8)"
like "$out" "no record of its audit log" "  and says why"
ok "$([ ! -e "$D/db" ]; echo $?)" "  nothing put in place"
mv "$T_DIR/meta1" "$BK/vnamig-backup-1.json"
vs -c "$conf" backup restore "$BK"
is "$rc" 0 "backup restore into a wiped DATA_DIR/db (exit 0)"
diag "$out"
like "$out" "WARNING: the audit log is back to the backup's" "it warns that the log went back"
like "$out" "will show the log as rolled back" "  and that later checkpoints will say so"
is "$(counter_rows | cut -d' ' -f1-2)" "100 100" "the job state is the backup's"

if start_daemon "$conf"; then
	pass "vnamigd starts on the restored state"
	stop_daemon
	is "$DAEMON_RC" 0 "  and stops cleanly"
else
	fail "vnamigd starts on the restored state"
fi
export_log "$T_DIR/e2"
is "$?" 0 "vnamigd --audit-export"
grep -n '"event":"state.restored-from-backup"' "$T_DIR/e2/leaves.jsonl" >"$T_DIR/rfb" 2>&1
like "$(cat "$T_DIR/rfb")" "^$((B + 1)):.*\"audit_size\":$B,.*\"backup_id\":1," \
	"the leaf after the backup's $B is state.restored-from-backup with its id and size"
"$VERIFY" audit "$T_DIR/e2" --key "$KEY" >"$T_DIR/v2.out" 2>&1
is "$?" 0 "vnamig-verify audit verifies the restored log (exit 0)"
"$VERIFY" audit "$T_DIR/e2" --key "$KEY" --checkpoint "$D/audit-checkpoints" >"$T_DIR/v2c.out" 2>&1
is "$?" 1 "  given the checkpoints signed after the backup, it reports the rollback"
diag "$(cat "$T_DIR/v2c.out")"
# the restored log grown past the size it replaced: the checkpoints of
# the replaced log no longer match a log of their size; the verifier says
# a backup restore rolled it back (it said "altered and re-chained")
"$W" "$D" fill 30 >/dev/null 2>&1
export_log "$T_DIR/e3"
"$VERIFY" audit "$T_DIR/e3" --key "$KEY" --checkpoint "$D/audit-checkpoints" >"$T_DIR/v3c.out" 2>&1
is "$?" 1 "  grown past the replaced log's size: still reported (exit 1)"
like "$(cat "$T_DIR/v3c.out")" "leaf $B records a restore from a backup \\(state.restored-from-backup\\), which rolled the log back" \
	"  as the rollback by the restore at leaf $B, not as leaves altered and re-chained"

# --- a restore's swap cut short by a crash ---------------------------------
# The states a crash leaves between the swap's renames, made by hand with
# the intent file the swap writes first (DATA_DIR/restore-swap: both
# names, the inodes of the staged state and of the state in db):
#   half   the old state moved to db.replaced-…, the new one not yet in
#          db: the next start puts it there (it opened an empty state and
#          began a new audit log before);
#   swapped the exchange done, the old state still at the staged name:
#          it goes to the replaced name (it was left where vnamig-state's
#          help said "a restore cut short (remove it)").
# And without the intent: db missing beside db.replaced-… is refused.
leaves() { "$VNAMIGD" -c "$conf" --audit-export "$1" >/dev/null 2>&1 && grep -c . "$1/leaves.jsonl"; }
n0=$(leaves "$T_DIR/s0")
ino() { stat -c %i "$1"; }
rm -rf "$D"/db.restore-* "$D"/db.replaced-*
cp -a "$D/db" "$D/db.restore-T1"
mv "$D/db" "$D/db.replaced-T1"
printf '%s\n%s\n%s %s\n' "$D/db.restore-T1" "$D/db.replaced-T1" \
    "$(ino "$D/db.restore-T1")" "$(ino "$D/db.replaced-T1")" >"$D/restore-swap"
if start_daemon "$conf"; then
	pass "half: vnamigd starts"
	stop_daemon
else
	fail "half: vnamigd starts"
fi
grep -q 'restore-swap-finished .*state=restored' "$T_DIR/daemon.log" &&
    [ -d "$D/db" ] && [ ! -e "$D/db.restore-T1" ] && [ ! -e "$D/restore-swap" ]
ok $? "half: the restored state is put in DATA_DIR/db (restore-swap-finished), the intent removed"
n1=$(leaves "$T_DIR/s1")
[ "$n1" -gt "$n0" ] && [ "$(grep -c '"outcome":"first-use"' "$T_DIR/s1/leaves.jsonl")" = 1 ]
ok $? "  on the log it had ($n0 leaves before, $n1 after: no new log begun)"
"$VERIFY" audit "$T_DIR/s1" --key "$KEY" >/dev/null 2>&1
is "$?" 0 "  which verifies"

mv "$D/db" "$D/db.restore-T2"
cp -a "$D/db.restore-T2" "$D/db"
printf '%s\n%s\n%s %s\n' "$D/db.restore-T2" "$D/db.replaced-T2" \
    "$(ino "$D/db")" "$(ino "$D/db.restore-T2")" >"$D/restore-swap"
vs -c "$conf" checkpoint create after-swap
is "$rc" 0 "swapped: vnamig-state checkpoint create runs (exit 0)"
[ "$rc" = 0 ] || diag "$out"
[ -d "$D/db.replaced-T2" ] && [ ! -e "$D/db.restore-T2" ] && [ ! -e "$D/restore-swap" ]
ok $? "  the state replaced goes to db.replaced-…, not left as db.restore-…"

mv "$D/db" "$D/db.gone"
: >"$T_DIR/daemon.log"
"$VNAMIGD" -c "$conf" >"$T_DIR/refused.out" 2>&1 &
DAEMON_PID=$!
wait "$DAEMON_PID"
rc=$?
DAEMON_PID=
[ "$rc" != 0 ] && [ ! -d "$D/db" ] && grep -q "db is missing but .*db.replaced-T[12] is there" "$T_DIR/refused.out"
ok $? "no restore-swap, DATA_DIR/db missing beside db.replaced-…: vnamigd refuses to start (exit $rc), makes no empty state"
mv "$D/db.gone" "$D/db"

# a restore asked for whose checkpoint is gone by the next start: refused,
# the current state kept, and the log says so after its request
printf 'gone-by-now\n' >"$D/restore-pending"
if start_daemon "$conf"; then
	stop_daemon
	grep -q 'restore-refused checkpoint=gone-by-now ' "$T_DIR/daemon.log" && [ ! -e "$D/restore-pending" ]
	ok $? "a pending restore of a checkpoint that is gone: refused (restore-refused), the request removed"
	export_log "$T_DIR/erf"
	is "$(jq -r 'select(.event == "state.restore.refused") | .object.name + " " + .outcome' "$T_DIR/erf/leaves.jsonl")" \
	    "gone-by-now refused" "  and the audit log has its outcome (state.restore.refused)"
else
	fail "vnamigd starts with a pending restore of a checkpoint that is gone"
fi

# a checkpoint's staging left by a crash (RocksDB's NAME.tmp: hard links
# to the table files) is removed at the next start
mkdir -p "$D/checkpoints/crashed.tmp" && ln "$(ls "$D"/db/*.sst | head -n 1)" "$D/checkpoints/crashed.tmp/" 2>/dev/null ||
    : >"$D/checkpoints/crashed.tmp/000001.sst"
vs -c "$conf" checkpoint create after-crash
[ "$rc" = 0 ] && [ ! -e "$D/checkpoints/crashed.tmp" ]
ok $? "a checkpoint's staging left by a crash (checkpoints/NAME.tmp) is removed at the next start"

done_testing
