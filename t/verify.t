#!/bin/sh
# verify.t — vnamig-verify against a real audit log: vnamigd writes ~300
# leaves (one per SIGHUP reload) with timer checkpoints, in two runs with
# an export after each; then each kind of tampering (a flipped byte, an
# altered prev or seq, a cut, swapped lines, a rollback to the older
# export, a bad signature, a wrong key, a re-chained forgery) must be
# caught with exit 1 naming the first bad leaf, and the root it prints must
# match an independent Python implementation of RFC 9162.
. "$top_srcdir/t/lib.sh"
: "${VNAMIG_VERIFY:=$top_builddir/src/verify/vnamig-verify}"
export VNAMIG_VERIFY

conf=$T_DIR/vnamigd.yaml
write_conf "$conf" "audit: { checkpoint_interval: 1s }"
key=$T_DIR/var-audit.pem.pub		# node.data_dir + "-audit.pem" + ".pub"

# hup COUNT: COUNT reloads, each one handled (reload-done logged) before
# the next signal, so that none is merged with another.
hup() {
	python3 - "$DAEMON_PID" "$T_DIR/daemon.log" "$1" <<'PY'
import os, signal, sys, time
pid, log, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def done():
    with open(log, 'rb') as f:
        return f.read().count(b' reload-done ')
base = done()
for i in range(n):
    os.kill(pid, signal.SIGHUP)
    t = time.monotonic()
    while done() < base + i + 1:
        if time.monotonic() - t > 10:
            sys.exit("reload %d was not done" % (i + 1))
        time.sleep(0.001)
PY
}

# verify OUTFILE ARGS...: run vnamig-verify, its stdout and stderr into
# OUTFILE; sets RC.
verify() {
	of=$1
	shift
	"$VNAMIG_VERIFY" "$@" >"$of" 2>&1
	RC=$?
}

# out NAME: what the run into $T_DIR/NAME.out printed.
out() { cat "$T_DIR/$1.out"; }

# bad_seq OUTFILE: the first_bad_seq of the FAIL line.
bad_seq() {
	sed -n 's/.*FAIL first_bad_seq=\([0-9]*\) .*/\1/p' "$1"
}

# expect_fail NAME WANT-SEQ ARGS...: exit 1 naming leaf WANT-SEQ.
expect_fail() {
	name=$1
	want=$2
	shift 2
	verify "$T_DIR/$name.out" "$@"
	is "$RC/$(bad_seq "$T_DIR/$name.out")" "1/$want" \
		"$name: exit 1, first_bad_seq=$want"
	[ "$RC" = 1 ] || sed 's/^/# /' "$T_DIR/$name.out"
}

# tamper NAME PYTHON: a copy of the full export in $T_DIR/NAME whose
# leaves (a list of bytes, without newlines) PYTHON changes.
tamper() {
	rm -rf "$T_DIR/$1"
	cp -r "$T_DIR/e2" "$T_DIR/$1"
	python3 - "$T_DIR/$1/leaves.jsonl" "$2" <<'PY'
import hashlib, sys
path, code = sys.argv[1], sys.argv[2]
L = open(path, 'rb').read().split(b'\n')[:-1]
def h(b):
    return hashlib.sha256(b'\0' + b).hexdigest().encode()
def flip(i, at):		# flip the low bit of byte `at` of leaf i
    b = bytearray(L[i]); b[at] ^= 1; L[i] = bytes(b)
exec(code)
open(path, 'wb').write(b''.join(x + b'\n' for x in L))
PY
}

# --- a real log: two runs of the daemon, an export after each ------------

start_daemon "$conf" || { fail "vnamigd starts"; done_testing; }
# Three batches a checkpoint interval apart, so that timer checkpoints
# fall inside the log (below leaf 150) and not only at its end.
hup 60 && sleep 1.3 && hup 60 && sleep 1.3 && hup 30
ok $? "150 reloads in the first run"
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
"$VNAMIGD" -c "$conf" --audit-export "$T_DIR/e1" >"$T_DIR/e1.out" 2>&1
ok $? "export after the first run"
n1=$(wc -l < "$T_DIR/e1/leaves.jsonl")

start_daemon "$conf" || { fail "vnamigd restarts"; done_testing; }
hup 80 && sleep 1.3 && hup 80
ok $? "160 reloads in the second run"
stop_daemon
"$VNAMIGD" -c "$conf" --audit-export "$T_DIR/e2" >"$T_DIR/e2.out" 2>&1
ok $? "export after the second run"
"$VNAMIGD" -c "$conf" --audit-export "$T_DIR/ez" --zstd >"$T_DIR/ez.out" 2>&1
ok $? "and one with --zstd"
cp "$T_DIR/var/audit-checkpoints" "$T_DIR/trusted"
n=$(wc -l < "$T_DIR/e2/leaves.jsonl")
nck=$(grep -c '^—' "$T_DIR/e2/checkpoints")
[ "$n1" -gt 150 ] && [ "$n" -gt 300 ] && [ "$nck" -ge 5 ]
ok $? "the logs hold $n1 and $n leaves, the later one $nck checkpoints"

# --- untouched exports verify --------------------------------------------

verify "$T_DIR/ok.out" audit "$T_DIR/e2" --key "$key"
is "$RC" 0 "the untouched export verifies with --key"
[ "$RC" = 0 ] || sed 's/^/# /' "$T_DIR/ok.out"
re="OK leaves=$n checkpoints=$nck key_ids=[0-9a-f]{8} signed_size=$n"
like "$(out ok)" "$re unsigned=0 root=[0-9a-f]{64}\$" \
	"  its summary: $n leaves, $nck checkpoints, all signed"
keyid=$(sed -n 's/.*key_ids=\([0-9a-f]*\).*/\1/p' "$T_DIR/ok.out")
grep -q "\"key_id\":\"$keyid\"" "$T_DIR/e2/leaves.jsonl"
ok $? "  the key id is the one the log's audit.key leaf records"
! grep -q warning "$T_DIR/ok.out"
ok $? "  and it warns about nothing"

verify "$T_DIR/okz.out" audit "$T_DIR/ez" --key "$key" \
	--checkpoint "$T_DIR/trusted"
is "$RC" 0 "the .zst export verifies (with the trusted checkpoint file)"
is "$(sed -n 's/.*root=//p' "$T_DIR/okz.out")" \
	"$(sed -n 's/.*root=//p' "$T_DIR/ok.out")" "  to the same root"

verify "$T_DIR/own.out" audit "$T_DIR/e2"
is "$RC" 0 "without --key the export's own key is used"
like "$(out own)" "warning: no --key: .*not that nobody rewrote" \
	"  with a warning that this does not prove much"

verify "$T_DIR/q.out" audit "$T_DIR/e2" --quiet
is "$RC/$(cat "$T_DIR/q.out")" "0/" "--quiet prints nothing on success"

# An independent RFC 9162 root of all leaves (hashlib only).
pyroot=$(python3 - "$T_DIR/e2/leaves.jsonl" <<'PY'
import hashlib, sys
L = open(sys.argv[1], 'rb').read().split(b'\n')[:-1]
def mth(d):
    if not d:
        return hashlib.sha256(b'').digest()
    if len(d) == 1:
        return hashlib.sha256(b'\0' + d[0]).digest()
    k = 1
    while k * 2 < len(d):
        k *= 2
    return hashlib.sha256(b'\1' + mth(d[:k]) + mth(d[k:])).digest()
print(mth(L).hex())
PY
)
is "$(sed -n 's/.*root=//p' "$T_DIR/ok.out")" "$pyroot" \
	"the root matches an independent Python RFC 9162 implementation"

# A leaves file on its own, no checkpoint: the chain holds, nothing
# signed. Anyone can recompute a chain after an edit: it fails unless
# --allow-unsigned asks for the chain alone.
verify "$T_DIR/file0.out" audit "$T_DIR/e2/leaves.jsonl"
is "$RC" 1 "a bare leaves file (no checkpoint) fails"
like "$(out file0)" "FAIL first_bad_seq=0 reason=\"no checkpoint by a trusted key: nothing is signed" \
	"  saying nothing is signed (first_bad_seq 0)"
verify "$T_DIR/file.out" audit "$T_DIR/e2/leaves.jsonl" --allow-unsigned
is "$RC" 0 "with --allow-unsigned it verifies (chain only)"
like "$(out file)" "warning: no checkpoint: nothing is signed" \
	"  with a warning that nothing is signed"

# The older export holds fewer leaves than the later checkpoints sign, and
# leaves appended past the last checkpoint are flagged.
verify "$T_DIR/e1.out" audit "$T_DIR/e1" --key "$key"
is "$RC" 0 "the older export alone (its own checkpoints) verifies"
head -n $((n - 5)) "$T_DIR/e2/leaves.jsonl" > "$T_DIR/part.jsonl"
verify "$T_DIR/part0.out" audit "$T_DIR/part.jsonl" --key "$key" \
	--checkpoint "$T_DIR/e1/checkpoints"
is "$RC" 1 "a longer log checked against older checkpoints fails: its last leaves are not signed"
like "$(out part0)" "FAIL first_bad_seq=$n1 reason=\"leaves $n1\\.\\." \
	"  first_bad_seq: the first leaf no checkpoint covers ($n1)"
verify "$T_DIR/part.out" audit "$T_DIR/part.jsonl" --key "$key" \
	--checkpoint "$T_DIR/e1/checkpoints" --allow-unsigned
is "$RC" 0 "with --allow-unsigned it verifies"
re="leaves $n1\\.\\.$((n - 6)) \\($((n - 5 - n1))\\) come after the largest"
like "$(out part)" "warning: $re checkpoint: no signature covers them" \
	"  but warns about the $((n - 5 - n1)) leaves no signature covers"

# --- tampering -------------------------------------------------------------

tamper flip 'flip(150, L[150].index(b"\"event\":\"") + 10)'
expect_fail flip 150 audit "$T_DIR/flip" --key "$key"
like "$(out flip)" "leaf 150 was altered: leaf 151's prev is not its hash" \
	"  a flipped byte in leaf 150's content: the chain resumes at 152"

tamper prev 'flip(150, L[150].index(b"\"prev\":\"") + 20)'
expect_fail prev 150 audit "$T_DIR/prev" --key "$key"
like "$(out prev)" "150 was altered: its prev is not the hash of leaf 149" \
	"  a flipped byte in leaf 150's prev names leaf 150 itself"

tamper seq 'L[150] = L[150].replace(b"\"seq\":150,", b"\"seq\":1500,")'
expect_fail seq 150 audit "$T_DIR/seq" --key "$key"
like "$(out seq)" "line 151 has seq 1500, not 150" \
	"  leaf 150's seq changed"

tamper swap 'L[100], L[101] = L[101], L[100]'
expect_fail swap 100 audit "$T_DIR/swap" --key "$key"

tamper cut 'del L[-10:]'
expect_fail cut $((n - 10)) audit "$T_DIR/cut" --key "$key" \
	--checkpoint "$T_DIR/trusted"
like "$(out cut)" "covers [0-9]+ leaves but the log has $((n - 10))" \
	"  the last 10 lines cut: the first missing leaf is named"

expect_fail rollback "$n1" audit "$T_DIR/e1" --key "$key" \
	--checkpoint "$T_DIR/trusted"
like "$(out rollback)" "rollback" \
	"  the older export against the later trusted checkpoints: a rollback"

tamper junk 'L[200] = L[200][:-1] + b",}"'
expect_fail junk 200 audit "$T_DIR/junk" --key "$key"
like "$(out junk)" "leaf 200 is not one JSON object: byte [0-9]+:" \
	"  a line that is not JSON names its byte"

# A checkpoint with one signature byte flipped (the first one, in the
# middle of its base64, where every bit counts): nothing verified below it.
rm -rf "$T_DIR/sig" && cp -r "$T_DIR/e2" "$T_DIR/sig"
python3 - "$T_DIR/sig/checkpoints" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
i = b.index('\n— '.encode()) + 1
i = b.index(b' ', b.index(b' ', i) + 1) + 1 + 40	# 40th base64 char
b[i] = ord('A') if b[i] != ord('A') else ord('B')
open(p, 'wb').write(b)
PY
expect_fail sig 0 audit "$T_DIR/sig" --key "$key"
like "$(out sig)" "checkpoint 1 of .*: the signature by key id $keyid .* does" \
	"  a flipped signature byte: the signature does not verify"

openssl genpkey -algorithm ed25519 -out "$T_DIR/wrong.pem" 2>/dev/null &&
	openssl pkey -in "$T_DIR/wrong.pem" -pubout -out "$T_DIR/wrong.pub"
expect_fail wrongkey 0 audit "$T_DIR/e2" --key "$T_DIR/wrong.pub"
re="not by a trusted key \\(trusted, as vnamig/VNAMIG: [0-9a-f]{8} from"
like "$(out wrongkey)" \
	"signed by key id $keyid \\(vnamig/VNAMIG\\), $re .*wrong.pub\\)" \
	"  a wrong --key: the message names the key id that signed"
verify "$T_DIR/twokeys.out" audit "$T_DIR/e2" --key "$T_DIR/wrong.pub" \
	--key "$key"
is "$RC" 0 "  with both keys (a rotation) it verifies"

# A re-chained forgery: leaf 150 altered and every later prev recomputed,
# so the chain holds. Only the signed roots catch it: the first checkpoint
# covering leaf 150 (size > 150) fails, and the first leaf nothing
# verified vouches for is the size of the largest checkpoint at or below
# 150 (every leaf below it is signed; from it on, none is).
tamper rechain '
flip(150, L[150].index(b"\"event\":\"") + 10)
for i in range(151, len(L)):
    j = L[i].index(b"\"prev\":\"") + 8
    L[i] = L[i][:j] + h(L[i - 1]) + L[i][j + 64:]
'
want=$(python3 - "$T_DIR/e2/checkpoints" <<'PY'
import sys
notes = open(sys.argv[1], 'rb').read().split(b'\n\n')
# blank-line separated: note texts (origin, size, root) and signatures
sizes = [int(x.split(b'\n')[1]) for x in notes
         if x.count(b'\n') >= 2 and not x.startswith('—'.encode())]
print(max([s for s in sizes if s <= 150] + [0]))
PY
)
[ "$want" -gt 0 ]
ok $? "  (a timer checkpoint of size $want lies at or below leaf 150)"
expect_fail rechain "$want" audit "$T_DIR/rechain" --key "$key"
re="signs root [0-9a-f]{64}, but the first [0-9]+ leaves have root"
like "$(out rechain)" "$re .*re-chained" \
	"  a re-chained forgery: reported by a checkpoint root mismatch"

# --- usage and input errors ------------------------------------------------

verify "$T_DIR/u1.out"
is "$RC" 2 "no arguments: exit 2"
verify "$T_DIR/u2.out" audit
is "$RC" 2 "audit without EXPORT: exit 2"
verify "$T_DIR/u3.out" audit "$T_DIR/e2" --bogus
is "$RC" 2 "an unknown option: exit 2"
verify "$T_DIR/u4.out" check "$T_DIR/e2"
is "$RC" 2 "an unknown command: exit 2"
verify "$T_DIR/u5.out" audit "$T_DIR/e2/leaves.jsonl" \
	--checkpoint "$T_DIR/trusted"
is "$RC" 2 "a leaves file with --checkpoint but no --key: exit 2"
verify "$T_DIR/help.out" --help
is "$RC" 0 "--help: exit 0"
like "$(out help)" "EXIT STATUS" "  a manual page"

verify "$T_DIR/m1.out" audit "$T_DIR/nonexistent"
is "$RC" 3 "a missing export: exit 3"
verify "$T_DIR/m2.out" audit "$T_DIR/e2" --key "$T_DIR/nonexistent.pub"
is "$RC" 3 "a missing key file: exit 3"
verify "$T_DIR/m3.out" audit "$T_DIR/e2" --key "$T_DIR/e2/leaves.jsonl"
is "$RC" 3 "a key file that is not a PEM public key: exit 3"
verify "$T_DIR/m4.out" audit "$T_DIR/e2" --key "$T_DIR/wrong.pem"
is "$RC" 3 "a private key given as --key: exit 3"
rm -rf "$T_DIR/badz" && mkdir "$T_DIR/badz"
cp "$T_DIR/ez/checkpoints" "$T_DIR/badz/"
head -c 300 "$T_DIR/ez/leaves.jsonl.zst" > "$T_DIR/badz/leaves.jsonl.zst"
verify "$T_DIR/m5.out" audit "$T_DIR/badz" --key "$key"
is "$RC" 3 "a cut .zst file: exit 3"
printf 'not zstd at all\n' > "$T_DIR/badz/leaves.jsonl.zst"
verify "$T_DIR/m6.out" audit "$T_DIR/badz" --key "$key"
is "$RC" 3 "a .zst file that is not zstd: exit 3"
like "$(out m6)" "bad zstd data" "  saying so"

# --- the origin: a valid note name, one per log ---------------------------
# An AE title with a space and a '+' made a default origin the verifier
# (as the signed-note spec) cannot read; it becomes vnamig/VNA_MIG_1.
# A renamed node keeps the log's origin (audit-origin-kept), so its later
# checkpoints still verify with the earlier ones.
oconf=$T_DIR/origin.yaml
write_conf "$oconf" "audit: { checkpoint_interval: 1s }"
sed -i "s|^  ae_title: VNAMIG|  ae_title: \"VNA+MIG 1\"|; s|data_dir: $T_DIR/var|data_dir: $T_DIR/ovar|" "$oconf"
start_daemon "$oconf" || { fail "vnamigd starts (AE title \"VNA+MIG 1\")"; done_testing; }
hup 3
stop_daemon
sed -i 's|^  ae_title: .*|  ae_title: RENAMED|' "$oconf"
start_daemon "$oconf" || { fail "vnamigd restarts (renamed)"; done_testing; }
hup 3
stop_daemon
grep -q 'audit-origin-kept configured=vnamig/RENAMED kept=vnamig/VNA_MIG_1 ' "$T_DIR/daemon.log"
ok $? "renamed, the node keeps the log's origin (audit-origin-kept)"
"$VNAMIGD" -c "$oconf" --audit-export "$T_DIR/eo" >"$T_DIR/eo.out" 2>&1
ok $? "export of that log"
is "$(sed -n 1p "$T_DIR/eo/checkpoints")" "vnamig/VNA_MIG_1" \
	"its checkpoints' origin: vnamig/VNA_MIG_1 (space and '+' made '_')"
verify "$T_DIR/o1.out" audit "$T_DIR/eo" --key "$T_DIR/ovar-audit.pem.pub"
is "$RC" 0 "the log of both runs verifies ($(tail -n 1 "$T_DIR/o1.out"))"

# --- a rotated key ---------------------------------------------------------
# The key replaced between runs (a rotation, recorded as an audit.key
# leaf): the export's audit-key.pub holds both keys, and verifies the
# log signed by each. An export with the key missing is refused: it would
# make a new key (a rotation nobody asked for) and sign with it.
okey=$T_DIR/ovar-audit.pem
mv "$okey" "$T_DIR/old-audit.pem" && mv "$okey.pub" "$T_DIR/old-audit.pem.pub"
start_daemon "$oconf" || { fail "vnamigd restarts (a new key)"; done_testing; }
hup 3
stop_daemon
grep -q 'audit-key key_id=[0-9a-f]* outcome=rotated ' "$T_DIR/daemon.log"
ok $? "a replaced key is recorded as a rotation"
"$VNAMIGD" -c "$oconf" --audit-export "$T_DIR/er" >"$T_DIR/er.out" 2>&1
ok $? "export of the log of two keys"
is "$(grep -c 'BEGIN PUBLIC KEY' "$T_DIR/er/audit-key.pub")" 2 \
	"  its audit-key.pub holds both keys"
verify "$T_DIR/r1.out" audit "$T_DIR/er"
is "$RC" 0 "  and verifies the log with them ($(tail -n 1 "$T_DIR/r1.out"))"
verify "$T_DIR/r2.out" audit "$T_DIR/er" --key "$okey.pub"
is "$RC" 1 "  the new key alone does not verify what the old one signed"
verify "$T_DIR/r3.out" audit "$T_DIR/er" --key "$okey.pub" \
	--key "$T_DIR/old-audit.pem.pub"
is "$RC" 0 "  both --key, each kept elsewhere, do"
{ cat "$okey.pub"; echo "# the node's key since the rotation"; } >"$T_DIR/noted.pub"
openssl pkey -pubin -in "$T_DIR/old-audit.pem.pub" -text_pub >"$T_DIR/text.pub" 2>/dev/null
verify "$T_DIR/r4.out" audit "$T_DIR/er" --key "$T_DIR/noted.pub" \
	--key "$T_DIR/text.pub"
is "$RC" 0 "  key files with text beside the PEM block (a comment, openssl -text_pub) still load"
rsize=$(grep -c . "$T_DIR/er/leaves.jsonl")
mv "$okey" "$T_DIR/keep.pem"
"$VNAMIGD" -c "$oconf" --audit-export "$T_DIR/ek" >"$T_DIR/ek.out" 2>&1
rc=$?
[ "$rc" -ne 0 ] && [ ! -e "$okey" ] &&
	grep -q "the audit key $okey cannot be read" "$T_DIR/ek.out"
ok $? "an export without the key is refused, no key made (exit $rc: $(head -n 1 "$T_DIR/ek.out"))"
mv "$T_DIR/keep.pem" "$okey"
"$VNAMIGD" -c "$oconf" --audit-export "$T_DIR/ek" >"$T_DIR/ek.out" 2>&1 &&
	[ "$(grep -c . "$T_DIR/ek/leaves.jsonl")" -eq "$rsize" ]
ok $? "  with it back, the log has no leaf more than before ($rsize)"

write_conf "$T_DIR/bado.yaml" "audit: { origin: \"my origin\" }"
"$VNAMIGD" -c "$T_DIR/bado.yaml" --check-config >"$T_DIR/bado.out" 2>&1
[ $? -ne 0 ] && grep -q "audit.origin \"my origin\": 1 to 200 printable ASCII characters, no space" "$T_DIR/bado.out"
ok $? "an audit.origin with a space is refused by --check-config"

done_testing
