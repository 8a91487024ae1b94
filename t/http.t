#!/bin/sh
# http.t — the HTTP listener against curl and raw sockets: /api/health
# (GET/HEAD, JSON), error bodies, keep-alive and pipelining, 100-continue,
# and hostile requests (smuggling, oversize, bad version) answered with
# the right status while the daemon keeps serving.
. "$top_srcdir/t/lib.sh"

conf=$T_DIR/vnamigd.yaml
write_conf "$conf"
sed -i 's/^limits:/limits:\n  http_header: 4KiB\n  http_body: 1MiB/' "$conf"
start_daemon "$conf"
ok $? "vnamigd starts"
base="http://127.0.0.1:$HTTP_PORT"

body=$(curl -s -D "$T_DIR/h" "$base/api/health")
like "$(head -1 "$T_DIR/h")" "^HTTP/1.1 200" "GET /api/health: 200"
like "$(cat "$T_DIR/h")" "Content-Type: application/json" "  as JSON"
is "$(printf '%s' "$body" | jq -r .status)" ok "  status ok"
is "$(printf '%s' "$body" | jq -r .listeners.dicom.port)" "$DICOM_PORT" "  lists the DICOM listener's port"
is "$(printf '%s' "$body" | jq -r .data_dir.writable)" true "  data dir writable"
is "$(printf '%s' "$body" | jq -r .ae_title)" VNAMIG "  our AE title"
like "$(printf '%s' "$body" | jq -r '.loop_lag_ms.p99')" '^[0-9.]+$' "  loop lag p99 reported"

out=$(curl -s -I "$base/api/health")
like "$out" "^HTTP/1.1 200" "HEAD /api/health: 200"

out=$(curl -s -w '\n%{http_code}' "$base/api/nothing")
is "$(printf '%s' "$out" | tail -1)" 404 "unknown path: 404"
is "$(printf '%s' "$out" | head -1 | jq -r .error.code)" not_found "  error body with code"

out=$(curl -s -D "$T_DIR/h" -o /dev/null -w '%{http_code}' -X DELETE "$base/api/health")
is "$out" 405 "DELETE /api/health: 405"
grep -qi '^Allow: GET, HEAD' "$T_DIR/h"
ok $? "  with Allow"

# keep-alive: curl reuses one connection for two requests.
curl -sv "$base/api/health" "$base/api/health" -o /dev/null -o /dev/null 2>"$T_DIR/v"
grep -Eq "Re-using existing connection|Reusing existing" "$T_DIR/v"
ok $? "keep-alive: curl reuses the connection"

# 100-continue.
out=$(curl -s -o /dev/null -w '%{http_code}' -H 'Expect: 100-continue' \
	--data-binary "@$top_srcdir/conf/vnamigd.yaml" "$base/api/health")
is "$out" 405 "POST with Expect: 100-continue gets its answer (405)"

raw() {	# raw BYTES(python literal): send, print status lines received
	python3 - "$HTTP_PORT" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(eval(sys.argv[2]))  # our own test literals
data = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
except OSError:
    pass
import re
print(" ".join(m.decode() for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)))
PY
}

is "$(raw 'b"GET /api/health HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"')" \
	"200 404" "pipelined requests answered in order"
is "$(raw 'b"POST /api/health HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"')" \
	"400" "Content-Length with Transfer-Encoding: 400"
is "$(raw 'b"POST /api/health HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"')" \
	"400" "duplicate Content-Length: 400"
is "$(raw 'b"POST /api/health HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999\r\n\r\n"')" \
	"413" "Content-Length over limits.http_body: 413"
is "$(raw 'b"GET /api/health HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n"')" \
	"431" "headers over limits.http_header: 431"
is "$(raw 'b"GET /api/health HTTP/2.0\r\nHost: a\r\n\r\n"')" \
	"505" "HTTP/2.0 request line: 505"
is "$(raw 'b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"')" \
	"400" "TLS ClientHello on the plain port: 400"
# HEAD of a streamed answer: headers only, the next answer right after
is "$(raw 'b"HEAD /api/audit/export HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer plain-for-tests\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"')" \
	"200 404" "HEAD of a streamed answer, then another request: both answered"
out=$(python3 - "$HTTP_PORT" <<'PY3'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"HEAD /api/audit/export HTTP/1.1\r\nHost: a\r\nAuthorization: "
          b"Bearer plain-for-tests\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n"
          b"Connection: close\r\n\r\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
head = data.split(b"\r\n\r\n", 1)
print("next" if len(head) == 2 and head[1].startswith(b"HTTP/1.1 404") else
      "junk: %r" % head[1][:16])
PY3
)
is "$out" next "  with no body bytes between them (no last chunk)"

# A client that pipelines requests and never reads the answers: not read
# any more once limits.unread_answers of them wait (1 MiB by default), so
# vnamigd does not hold them all.
out=$(python3 - "$HTTP_PORT" "$DAEMON_PID" "$top_srcdir/t" <<'PY4'
import socket, sys, time
sys.path.insert(0, sys.argv[3])
from dicomraw import flood, rss
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
before = rss(sys.argv[2])
sent, how = flood(s, b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n" * 1000, 3)
time.sleep(0.5)
print("%d sent_mb=%d %s" % (rss(sys.argv[2]) - before, sent >> 20, how))
PY4
)
rss_bound "requests for 3 s from a client that never reads: vnamigd holds less than 32 MiB more ($out)" 32 "${out%% *}"

out=$(curl -s "$base/api/health" | jq -r .status)
is "$out" ok "after all of them the daemon still serves"

stop_daemon TERM
is "$DAEMON_RC" 0 "clean exit"

# api.health_open: false requires a key.
HEALTH_OPEN=false write_conf "$conf"
start_daemon "$conf"
ok $? "restarted with health_open: false"
base="http://127.0.0.1:$HTTP_PORT"
is "$(curl -s -o /dev/null -w '%{http_code}' "$base/api/health")" 401 "no key: 401"
is "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong-token-here' "$base/api/health")" \
	401 "wrong key: 401"
is "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer plain-for-tests' "$base/api/health")" \
	200 "the configured key: 200"
stop_daemon TERM
n=$(audit_leaves "$conf" security.unauthorized)
is "$n" 1 "the two 401s are one audit leaf (security.unauthorized: at most one a minute per address)"

# A client that trickles its headers (slowloris) is answered 408 and
# closed once limits.network_timeout has passed since its request began,
# though each byte would reset the idle timeout; one that sends a whole
# request meanwhile is served.
write_conf "$conf"
sed -i 's/^limits:/limits:\n  network_timeout: 2s/' "$conf"
start_daemon "$conf"
ok $? "restarted with network_timeout: 2s"
out=$(python3 - "$HTTP_PORT" <<'PY2'
import select, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /api/health HTTP/1.1\r\nHost: a\r\n")
t0 = time.time()
data = b""
for i in range(40):                        # up to 8 s of trickling
    if select.select([s], [], [], 0.2)[0]:
        break                              # it answered
    try:
        s.sendall(b"X-Slow-%d: 1\r\n" % i)
    except OSError:
        break
took = time.time() - t0
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
except OSError:
    pass
print(data.split(b"\r\n")[0].decode(errors="replace"), "%.0f" % took)
PY2
)
like "$out" "^HTTP/1.1 408 Request Timeout [23]$" "trickled headers: 408 after network_timeout ($out)"
wait_log "http-bad-request .*status=408 reason=.*network_timeout" 5
ok $? "  logged with the reason"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/api/health")" 200 \
	"  and the daemon serves the others"
stop_daemon TERM

done_testing
