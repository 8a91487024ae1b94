#!/bin/sh
# utf8.t — text from outside that is not UTF-8 (or is cut inside a
# character) reaching the JSON vnamigd keeps: its records, its answers and
# its audit leaves are JSON, which jansson builds from UTF-8 only. Each
# case crashed vnamigd or lost a record or a leaf without a word before:
#
#   a  an HL7 message that does not parse, whose MSH-10 is 126 bytes and
#      then a two-byte character (the refusal cut it at 127 bytes: a NULL
#      record and a crash): ACK AR, vnamigd serves on, the refusal is in
#      the inbox and its leaf says hl7.message
#   b  an HL7 message whose MSH-9 is cut inside a character (c->type, 16
#      bytes): its inbox record is listed (it was skipped unreadable) and
#      its leaf is whole (it was empty)
#   c  a configuration file whose name is not UTF-8: the daemon.start and
#      config.reload leaves say so, with '?' for the bytes (they were
#      empty)
#   d  the exported audit log verifies, with no empty leaf
# (Error Comments with bytes over 0x7f, whose quarantine record aborted
# vnamigd: t/unit/t_dimse; an AccessionNumber in ISO_IR 100 in a C-FIND
# answer, whose study was left out of its batch: t/migquery.t.)
. "$top_srcdir/t/lib.sh"
: "${VNAMIG_VERIFY:=$top_builddir/src/verify/vnamig-verify}"
PY=/usr/bin/python3
PEER="$PY $top_srcdir/t/hl7peer.py"
TOK=plain-for-tests

# the name of the configuration: conf-<0xE9>.yaml (ISO 8859-1 e-acute)
conf=$(printf '%s/conf-\351.yaml' "$T_DIR")
cat >"$conf" <<YAML
node: { ae_title: VNAMIG, data_dir: $T_DIR/var }
listen:
  http: { address: 127.0.0.1, port: 0 }
  mllp: { address: 127.0.0.1, port: 0 }
storage: { min_free: 1MiB }
peers:
  - { name: legacy, ae_title: LEGACY, host: 127.0.0.1, port: 11113, role: source, window: never }
  - { name: newpacs, ae_title: NEWPACS, host: 127.0.0.1, port: 11114, role: target }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
hl7:
  senders:
    - { name: ris, app: APP, source: legacy, target: newpacs }
YAML
start_daemon "$conf" || { fail "vnamigd starts"; done_testing; }
pass "vnamigd starts from a configuration whose name is not UTF-8"
base=http://127.0.0.1:$HTTP_PORT
: >"$T_DIR/all.log"

# ---- a ----
A126=$(printf '%0126d' 0 | tr 0 A)
printf '\013MSH|^~\\&|APP|FAC|VNAMIG|X|20260101000000||ORM^O01|%s\303\251|P|2.5\rpid|1\r\034\r' \
    "$A126" >"$T_DIR/a.hl7"
is "$($PEER rawack "$MLLP_PORT" "$T_DIR/a.hl7" 1)" AR "a: a message that does not parse, MSH-10 of 128 bytes: AR"
kill -0 "$DAEMON_PID" 2>/dev/null
ok $? "a: vnamigd still runs"
curl -s -H "Authorization: Bearer $TOK" "$base/api/hl7/messages?limit=100" >"$T_DIR/inbox.json"
is "$(jq -r '[.messages[] | select(.control_id | startswith("AAAA"))] | length' "$T_DIR/inbox.json")" 1 \
    "a: its refusal is in the inbox"
is "$(jq -r '.messages[] | select(.control_id | startswith("AAAA")) | .control_id | length' "$T_DIR/inbox.json")" 127 \
    "a: its control ID kept whole, 127 characters"

# ---- b ----
printf '\013MSH|^~\\&|APP|FAC|VNAMIG|X|20260101000000||ABCDEFGHIJKLMN\303\251^O01|CTL-B|P|2.5\rPID|1||P1\r\034\r' \
    >"$T_DIR/b.hl7"
is "$($PEER rawack "$MLLP_PORT" "$T_DIR/b.hl7" 1)" AR "b: MSH-9 of 16 bytes, its type cut inside a character (15 bytes kept): AR"
curl -s -H "Authorization: Bearer $TOK" "$base/api/hl7/messages?limit=100" >"$T_DIR/inbox.json"
is "$(jq -r '[.messages[] | select(.control_id == "CTL-B")] | length' "$T_DIR/inbox.json")" 1 \
    "b: its inbox record is listed"
is "$(jq -r '.messages | length' "$T_DIR/inbox.json")" 2 "b: both messages listed"

# ---- c ----
kill -HUP "$DAEMON_PID"
wait_log 'reload-done' 10
ok $? "c: SIGHUP: reloaded"
stop_daemon
is "$DAEMON_RC" 0 "vnamigd exits 0"
cat "$T_DIR/daemon.log" >>"$T_DIR/all.log"
"$VNAMIGD" -c "$conf" --audit-export "$T_DIR/audit" >"$T_DIR/export.out" 2>&1
ok $? "vnamigd --audit-export"
L=$T_DIR/audit/leaves.jsonl
like "$(jq -r 'select(.event == "daemon.start") | .object.config' "$L")" '/conf-\?\.yaml$' \
    "c: daemon.start names the configuration, '?' for the byte that is not UTF-8"
like "$(jq -r 'select(.event == "config.reload") | .object.config' "$L")" '/conf-\?\.yaml$' \
    "c: config.reload too"

# ---- d ----
is "$(jq -r 'select(.event == null) | .seq' "$L" | wc -l | tr -d ' ')" 0 "d: no leaf without its event"
is "$(jq -r 'select(.event == "hl7.message") | .object.control_id' "$L" | wc -l | tr -d ' ')" 2 \
    "d: a hl7.message leaf for each message"
"$VNAMIG_VERIFY" audit "$T_DIR/audit" --key "$T_DIR/var-audit.pem.pub" >"$T_DIR/verify.out" 2>&1
is $? 0 "d: vnamig-verify: the exported log verifies"
! grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$T_DIR/all.log"
ok $? "no sanitizer report"
done_testing
