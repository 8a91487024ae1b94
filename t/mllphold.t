#!/bin/sh
# mllphold.t — limits.unread_answers for HL7 over MLLP: a sender that
# pipelines messages and never reads their ACKs is not read any more once
# that much of its ACKs waits (here 64 KiB), instead of making vnamigd
# queue ACKs without bound; once it reads them, it is read again and
# every message is answered. t/hl7peer.py flood: N ADT^A08 on one
# connection (a 4 KiB receive buffer), written as fast as vnamigd takes
# them, no ACK read; vnamigd's vnamig_hl7_messages_total once it settles
# is how many it took. The kernel takes ACKs first, up to the largest
# send buffer it gives a socket (net.ipv4.tcp_wmem, 4 MiB by default:
# about 30,000 ACKs of some 140 bytes); N is one per 50 bytes of that,
# so that the hold must stop vnamigd well before N (before the hold it
# took them all). Then again with unread_answers 4MiB: the hold must
# come some 28,000 messages later (the key is applied).
. "$top_srcdir/t/lib.sh"
TOK=plain-for-tests
wmem=$(awk '{ print $3 }' /proc/sys/net/ipv4/tcp_wmem 2>/dev/null)
N=$((${wmem:-4194304} / 50))
[ "$N" -gt 400000 ] && N=400000

# flood HOLD: a daemon with limits.unread_answers HOLD (its own data dir)
# flooded; sets took (messages taken while the ACKs were unread) and
# checks that every one was answered once they were read
flood() {
	conf=$T_DIR/vnamigd-$1.yaml
	cat >"$conf" <<YAML
node: { ae_title: VNAMIG, data_dir: $T_DIR/var-$1 }
listen:
  mllp: { address: 127.0.0.1, port: 0 }
  http: { address: 127.0.0.1, port: 0 }
limits: { unread_answers: $1 }
storage: { min_free: 1MiB }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
hl7:
  senders:
    - { name: flood, app: FLOOD }
YAML
	start_daemon "$conf" || { fail "vnamigd starts"; done_testing; }
	pass "vnamigd starts (limits.unread_answers $1)"
	/usr/bin/python3 "$top_srcdir/t/hl7peer.py" flood "$MLLP_PORT" \
	    "$HTTP_PORT" "$TOK" "$N" >"$T_DIR/flood-$1.out" 2>"$T_DIR/flood.err"
	ok $? "  hl7peer.py flood ran"
	sent=$(sed -n 's/^sent=\([0-9]*\) .*/\1/p' "$T_DIR/flood-$1.out")
	took=$(sed -n 's/.* taken=\([0-9]*\)$/\1/p' "$T_DIR/flood-$1.out")
	is "$(sed -n 's/^acks=//p' "$T_DIR/flood-$1.out")" "$N aa=$N" \
	    "  once it reads the ACKs, every message is taken and answered AA"
	stop_daemon
	is "$DAEMON_RC" 0 "  vnamigd exits 0"
	cat "$T_DIR/daemon.log" >>"$T_DIR/daemon-all.log"
}

flood 64KiB
t64=${took:-0}
ok "$([ "$t64" -gt 0 ] && [ "$t64" -lt $((N * 4 / 5)) ]; echo $?)" \
    "its ACKs unread, vnamigd stops taking messages: $t64 of $N taken ($sent written)"
flood 4MiB
t4=${took:-0}
# 4 MiB - 64 KiB more of ACKs held is some 28,000 ACKs of 140 bytes
ok "$([ "$t4" -gt $((t64 + 10000)) ]; echo $?)" \
    "with unread_answers 4MiB it takes more before it stops: $t4 (64KiB: $t64)"
! grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$T_DIR/daemon-all.log"
ok $? "no sanitizer report"
done_testing
