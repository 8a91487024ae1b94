#!/bin/sh
# conf.t — configuration golden files: every t/conf/good-*.yaml and the
# shipped conf/vnamigd.yaml pass --check-config; every t/conf/bad-*.yaml is
# refused with exactly the messages in its .err file (FILE:LINE:COL: what
# is wrong; what is expected), exit status 1.
. "$top_srcdir/t/lib.sh"

cd "$top_srcdir/t/conf" || exit 1
for f in good-*.yaml; do
	out=$("$VNAMIGD" -c "$f" --check-config 2>&1)
	ok $? "$f is valid"
	like "$out" "^$f: configuration OK" "$f: says OK"
done

out=$("$VNAMIGD" -c "$top_srcdir/conf/vnamigd.yaml" -t 2>&1)
ok $? "conf/vnamigd.yaml (the shipped sample) is valid"
like "$out" "configuration OK \(peers: 2, API keys: 1\)" "sample: 2 peers, 1 key"

for f in bad-*.yaml; do
	exp=${f%.yaml}.err
	out=$("$VNAMIGD" -c "$f" --check-config 2>&1)
	rc=$?
	is "$rc" 1 "$f is refused with exit status 1"
	if [ -f "$exp" ]; then
		is "$out" "$(cat "$exp")" "$f: messages match $exp"
	else
		fail "$f: $exp is missing"
		diag "$out"
	fi
done

# Unreadable and missing files, and a directory.
out=$("$VNAMIGD" -c "$T_DIR/nope.yaml" -t 2>&1)
is $? 1 "a missing file is refused"
like "$out" "nope.yaml: cannot open: No such file or directory" "  and named"
out=$("$VNAMIGD" -c "$T_DIR" -t 2>&1)
is $? 1 "a directory is refused"
like "$out" "not a regular file" "  and said so"

# --dump-config shows defaults, hides tokens.
out=$("$VNAMIGD" -c good-contract.yaml -t --dump-config 2>/dev/null)
like "$out" "^limits.max_pdu = 262144$" "dump: default max_pdu 256KiB"
like "$out" "^peers.legacy.retrieve = move$" "dump: peer settings"
like "$out" "^api.keys.ops.token_sha256 = [0-9a-f]{64}$" "dump: token as SHA-256"
if printf '%s' "$out" | grep -q plain-for-tests; then
	fail "dump: the token never appears"
else
	pass "dump: the token never appears"
fi

# Command line.
"$VNAMIGD" --version | grep -Eq '^vnamigd [0-9]+\.[0-9]+'
ok $? "--version"
out=$("$VNAMIGD" --help)
like "$out" "^SYNOPSIS" "--help has a SYNOPSIS"
like "$out" "EXIT STATUS" "--help has EXIT STATUS"
"$VNAMIGD" --bogus >/dev/null 2>&1
is $? 2 "an unknown option exits 2"
"$VNAMIGD" -c good-contract.yaml --log-level loud -t >/dev/null 2>&1
is $? 2 "a bad --log-level exits 2"

done_testing
