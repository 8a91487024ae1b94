#!/bin/sh
# daemon.t — the vnamigd reactor: start on free ports, the data-dir lock,
# the DICOM listener's refusals and an MLLP message's ACK against real peers (DCMTK echoscu,
# python-hl7's mllp_send), ARTIM and connection limits, SIGHUP reload (good
# and bad files), SIGTERM drain within the grace, and forced close after it.
. "$top_srcdir/t/lib.sh"

conf=$T_DIR/vnamigd.yaml
write_conf "$conf"
sed -i 's/^limits:/limits:\n  artim_timeout: 1s/' "$conf"
sed -i 's/  http:  { address: 127.0.0.1, port: 0 }/  http:  { address: 127.0.0.1, port: 0, max_connections: 3 }/' "$conf"

start_daemon "$conf"
ok $? "vnamigd starts and logs ready"
[ -n "$DICOM_PORT" ] && [ -n "$HTTP_PORT" ] && [ -n "$MLLP_PORT" ]
ok $? "it bound dicom=$DICOM_PORT http=$HTTP_PORT mllp=$MLLP_PORT"
is "$(cat "$T_DIR/var/vnamigd.lock")" "$DAEMON_PID" "the lock file holds its pid"

# A second daemon on the same data dir is refused.
timeout 10 "$VNAMIGD" -c "$conf" 2>"$T_DIR/second.log"
is $? 3 "a second vnamigd on the same data_dir exits 3"
like "$(cat "$T_DIR/second.log")" "in use by another vnamigd.*pid=$DAEMON_PID" \
	"  naming the holder's pid"

# DICOM: a calling AE title that is no configured peer gets an
# A-ASSOCIATE-RJ 1/1/3 (t/dicom.t has the rest of the Upper Layer).
out=$(TCP_NODELAY=1 echoscu -aet TESTSCU -aec VNAMIG 127.0.0.1 "$DICOM_PORT" 2>&1)
rc=$?
[ "$rc" -ne 0 ]
ok $? "echoscu from an unknown AE title is not accepted"
like "$out" "Association Rejected" "  echoscu reports Association Rejected"
wait_log 'assoc-rejected .*calling=TESTSCU .*rj=1/1/3 why="calling AE title is not a configured peer"' 5
ok $? "  and the daemon logs why"

# Non-DICOM bytes on the DICOM port: an A-ABORT PDU, then close.
ab=$(python3 - "$DICOM_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
data = b""
while True:
    b = s.recv(100)
    if not b:
        break
    data += b
print(data.hex())
PY
)
is "$ab" "07000000000400000201" "HTTP text on the DICOM port gets A-ABORT (unrecognized PDU)"

# ARTIM: a silent DICOM connection is closed after artim_timeout (1s).
t=$(python3 - "$DICOM_PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
t0 = time.monotonic()
print("eof" if s.recv(10) == b"" else "data", round(time.monotonic() - t0))
PY
)
like "$t" "^eof [1-3]$" "a silent DICOM connection is closed by ARTIM (~1 s): $t"

# MLLP: a message from a sender no hl7.senders entry maps is kept in the
# inbox and acknowledged AA (t/hl7.t has the rest of HL7).
printf 'MSH|^~\\&|RIS|HOSP|VNAMIG|HOSP|20261123||ORM^O01|MSG1|P|2.5.1\rPID|1||123\r' > "$T_DIR/msg.hl7"
timeout 10 mllp_send --loose --port "$MLLP_PORT" --file "$T_DIR/msg.hl7" 127.0.0.1 >"$T_DIR/mllp.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] && tr '\r' '\n' < "$T_DIR/mllp.out" | grep -q '^MSA|AA|MSG1$'
ok $? "mllp_send gets its AA acknowledgement (exit $rc)"
out=$(curl -s -H 'Authorization: Bearer plain-for-tests' "http://127.0.0.1:$HTTP_PORT/api/hl7/messages" |
	jq -r '.messages[0] | "\(.control_id) \(.ack) \(.outcome)"')
is "$out" "MSG1 AA inbox" "  and it is in the inbox, kept only there (no sender mapped)"

# max_connections: with 3 open HTTP connections the 4th is refused.
res=$(python3 - "$HTTP_PORT" <<'PY'
import socket, sys
p = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", p)) for _ in range(3)]
import time; time.sleep(0.3)
s = socket.create_connection(("127.0.0.1", p), timeout=5)
try:
    s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
    r = s.recv(100)
    print("served" if r else "closed")
except OSError:
    print("closed")
for h in held:
    h.close()
PY
)
is "$res" "closed" "the connection over http max_connections is closed"
wait_log "conn-refused proto=http .*reason=max_connections limit=3" 5
ok $? "  and logged with the limit"
sleep 0.3
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/api/health")
is "$code" 200 "after them, the daemon still serves"

# SIGHUP: a changed live key applies now, a restart key is flagged.
sed -i 's/^  ae_title: VNAMIG/  ae_title: VNAMIG2/' "$conf"
printf 'logging:\n  level: debug\n' >> "$conf"
kill -HUP "$DAEMON_PID"
wait_log "reload-done changes=" 5
ok $? "SIGHUP reloads the configuration"
wait_log "config-changed key=logging.level old=info new=debug applied=now" 1
ok $? "  logging.level change applied now"
wait_log "config-changed key=node.ae_title old=VNAMIG new=VNAMIG2 applied=after-restart" 1
ok $? "  node.ae_title change flagged for restart"
curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/api/nothing"
wait_log "debug http-request .*path=/api/nothing status=404" 5
ok $? "  debug logging is on after the reload"

# SIGHUP with a broken file: refused, running settings kept.
sed -i 's/^  shutdown_grace: .*/  shutdown_grace: soon/' "$conf"
kill -HUP "$DAEMON_PID"
wait_log "reload-failed .*action=kept-running-configuration" 5
ok $? "a broken file on SIGHUP is refused"
like "$(grep reload-error "$T_DIR/daemon.log")" "vnamigd.yaml:[0-9]+:[0-9]+: limits.shutdown_grace = .*soon" \
	"  with file:line:col in the log"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/api/health")
is "$code" 200 "  and the daemon keeps serving"

# SIGTERM with an idle keep-alive connection open: exit 0 promptly.
python3 - "$HTTP_PORT" "$T_DIR/idle.ready" > "$T_DIR/idle.out" <<'PY' &
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
data = s.recv(4096)
open(sys.argv[2], "w").write("connected\n")
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
print("closed", data.count(b"HTTP/1.1 200"))
PY
idle=$!
wait_file "$T_DIR/idle.ready"
ok $? "an idle keep-alive client is connected and answered"
t0=$(date +%s)
stop_daemon TERM
t1=$(date +%s)
is "$DAEMON_RC" 0 "SIGTERM: exit status 0"
[ $((t1 - t0)) -le 2 ]
ok $? "  without waiting for the idle connection ($((t1 - t0)) s)"
wait "$idle"
is "$(cat "$T_DIR/idle.out")" "closed 1" "  the idle client got its answer, then a close"
grep -q "shutdown-complete" "$T_DIR/daemon.log"
ok $? "  shutdown-complete logged"

# half_request READY: a client that sends half a request to the HTTP port,
# writes READY once the daemon has had time to read it, then reads until
# the daemon closes.
half_request() {
	python3 - "$HTTP_PORT" "$1" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(b"POST /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
time.sleep(0.3)  # let the daemon read the partial request
open(sys.argv[2], "w").write("sent\n")
try:
    while s.recv(4096):
        pass
except OSError:
    pass
PY
}

# SIGTERM with a request half sent: the grace (1s) runs out, then close.
GRACE=1s write_conf "$conf"
start_daemon "$conf"
ok $? "restarted with shutdown_grace 1s"
half_request "$T_DIR/slow.ready" &
slow=$!
wait_file "$T_DIR/slow.ready"
ok $? "a client has sent half a request"
t0=$(date +%s)
stop_daemon TERM
t1=$(date +%s)
is "$DAEMON_RC" 0 "SIGTERM with a request in flight: exit 0"
[ $((t1 - t0)) -ge 1 ] && [ $((t1 - t0)) -le 3 ]
ok $? "  after the 1 s grace ($((t1 - t0)) s)"
grep -q "shutdown-forced connections_closed=1" "$T_DIR/daemon.log"
ok $? "  forced close of the one connection logged"
wait "$slow"

# A second SIGTERM while draining: every connection closed at once, and
# the stop recorded once (the drain's end and the signal each did it).
GRACE=30s write_conf "$conf"
start_daemon "$conf"
ok $? "restarted with shutdown_grace 30s"
half_request "$T_DIR/slow2.ready" &
slow=$!
wait_file "$T_DIR/slow2.ready"
kill -TERM "$DAEMON_PID"
wait_log 'shutdown-begin ' 5
stop_daemon TERM
is "$DAEMON_RC" 0 "a second SIGTERM while draining: exit 0"
is "$(grep -c 'shutdown-complete' "$T_DIR/daemon.log")" 1 "  shutdown-complete once"
wait "$slow"

# Bind failure: a port in use is a startup error naming the port.
python3 -c '
import socket, time, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1]); sys.stdout.flush(); time.sleep(5)' > "$T_DIR/busy.port" &
busy=$!
wait_file "$T_DIR/busy.port"
port=$(cat "$T_DIR/busy.port")
write_conf "$conf"
sed -i "s/  http:  { address: 127.0.0.1, port: 0 }/  http:  { address: 127.0.0.1, port: $port }/" "$conf"
timeout 10 "$VNAMIGD" -c "$conf" 2>"$T_DIR/bind.log"
is $? 3 "a port in use: exit 3"
like "$(cat "$T_DIR/bind.log")" "cannot listen on 127.0.0.1 port $port for http: Address already in use" \
	"  naming address, port and protocol"
kill "$busy" 2>/dev/null
wait "$busy" 2>/dev/null

done_testing
