#!/bin/sh
# httpc.t — the HTTP client on the loop (src/net/http_client) against a
# real receiver (t/hookrecv.py), through t/hc-fetch: keep-alive reuse,
# retries (connect errors, 5xx only when safe, 429 always, Retry-After
# honoured or handed back), timeouts, the response limit, the bounded
# queue, DNS failures, and TLS: verified against a CA file, host name
# and IP address checked, no way around it (the system CAs by default).
. "$top_srcdir/t/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
HC=$top_builddir/t/hc-fetch
RPIDS=
trap 'for p in $RPIDS; do kill "$p" 2>/dev/null; done; cleanup' EXIT

d=$T_DIR/pki
mkdir -p "$d"
for ca in ca other; do
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$d/$ca.key" -out "$d/$ca.crt" -days 2 \
		-subj "/CN=vnamig test $ca" 2>/dev/null
done
mk() {	# mk NAME SAN
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -keyout "$d/$1.key" -out "$d/$1.csr" -subj "/CN=$1" 2>/dev/null &&
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$2" >"$d/$1.ext" &&
	openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
		-CAcreateserial -days 2 -out "$d/$1.crt" -extfile "$d/$1.ext" 2>/dev/null
}
mk server "DNS:localhost,IP:127.0.0.1" && mk elsewhere "DNS:other.example"
ok $? "test PKI: two CAs, a server certificate for localhost and 127.0.0.1, one for another name"

# recv NAME [ARGS...]: start a receiver; sets PORT_NAME (via eval).
recv() {
	n=$1
	shift
	"$PY" "$top_srcdir/t/hookrecv.py" "$T_DIR/$n.port" "$T_DIR/$n.log" "$@" \
		2>"$T_DIR/$n.err" &
	RPIDS="$RPIDS $!"
	wait_file "$T_DIR/$n.port" 10 || { diag "receiver $n did not start"; cat "$T_DIR/$n.err"; }
	eval "PORT_$n=\$(cat \"\$T_DIR/\$n.port\")"
}
recv plain
recv tls --cert "$d/server.crt" --key "$d/server.key"
recv wrongname --cert "$d/elsewhere.crt" --key "$d/elsewhere.key"
ok 0 "receivers up: http $PORT_plain, https $PORT_tls, https for another name $PORT_wrongname"
U=http://127.0.0.1:$PORT_plain

ctl() { curl -s "$U/_ctl?${1:-}" >/dev/null; }
field() { printf '%s\n' "$out" | sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p" | head -1; }
deliveries() { [ -f "$T_DIR/plain.log" ] && wc -l <"$T_DIR/plain.log" | tr -d ' ' || echo 0; }

out=$("$HC" -X POST -d '{"a":1}' -H 'Content-Type: application/json' "$U/hook")
is "$(field err) $(field status) $(field attempts) $(field body)" "ok 200 1 11" \
	"POST: 200 on the first attempt, the body read"
last=$(tail -1 "$T_DIR/plain.log")
is "$(printf '%s' "$last" | jq -r '"\(.body) \(.headers["Content-Type"]) \(.headers.Host) \(.headers["Content-Length"])"')" \
	"{\"a\":1} application/json 127.0.0.1:$PORT_plain 7" \
	"  the receiver got the body, our header, Host and Content-Length"
like "$(printf '%s' "$last" | jq -r '.headers["User-Agent"]')" '^vnamig/' "  User-Agent: vnamig/VERSION"

before=$(deliveries)
out=$("$HC" -n 5 -X PUT -d x "$U/hook")
is "$(printf '%s\n' "$out" | grep -c 'status=200')" 5 "five calls one after another: five 200s"
is "$(tail -5 "$T_DIR/plain.log" | jq -r .conn | sort -u | wc -l | tr -d ' ')" 1 \
	"  all five over one kept-alive connection"
is "$(printf '%s\n' "$out" | tail -1)" "conns=1 queued=0" "  which stays open, idle, afterwards"

out=$("$HC" -p 6 -P 2 -X PUT -d x "$U/hook")
is "$(printf '%s\n' "$out" | grep -c 'status=200')" 6 "six calls at once with max_per_host 2: six 200s"
is "$(tail -6 "$T_DIR/plain.log" | jq -r .conn | sort -u | wc -l | tr -d ' ')" 2 \
	"  over two connections (the rest waited their turn)"

out=$("$HC" -p 5 -P 1 -q 2 -X PUT -d x "$U/hook")
is "$(printf '%s\n' "$out" | grep -c 'refused error=.*queue is full')" 3 \
	"max_queue 2: the third to fifth calls are refused at once (queue full)"
is "$(printf '%s\n' "$out" | grep -c 'status=200')" 2 "  the two queued ones complete"

# --- retries ----------------------------------------------------------------
ctl "fail=2&status=503"
out=$("$HC" -X POST -s -a 5 -b 50 -B 200 -d x "$U/hook")
is "$(field status) $(field attempts)" "200 3" "retry-safe POST after two 503s: 200 on attempt 3"

ctl "fail=2&status=503"
out=$("$HC" -X POST -a 5 -b 50 -B 200 -d x "$U/hook")
is "$(field status) $(field attempts)" "503 1" "a POST not marked retry-safe: the 503 is final (it may have been processed)"
ctl

ctl "fail=1&status=502"
out=$("$HC" -X PUT -a 3 -b 50 -B 200 -d x "$U/hook")
is "$(field status) $(field attempts)" "200 2" "PUT (idempotent) after a 502: retried, 200"

ctl "fail=1&status=501"
out=$("$HC" -X PUT -s -a 3 -b 50 -d x "$U/hook")
is "$(field status) $(field attempts)" "501 1" "501 Not Implemented is never retried"

ctl "fail=1&status=429&retry_after=1"
t0=$(date +%s%N)
out=$("$HC" -X POST -a 3 -b 10 -B 5000 -d x "$U/hook")
ms=$((($(date +%s%N) - t0) / 1000000))
is "$(field status) $(field attempts)" "200 2" "429 with Retry-After: 1 → retried even for a plain POST (not processed)"
[ "$ms" -ge 1000 ]
ok $? "  not before Retry-After: ${ms} ms"

ctl "fail=1&status=503&retry_after=60"
out=$("$HC" -X PUT -a 3 -b 10 -B 2000 -d x "$U/hook")
is "$(field status) $(field attempts) $(field retry_after)" "503 1 60000" \
	"Retry-After: 60 beyond backoff_max 2 s: the 503 handed back with retry_after 60000"
ctl

port=$(free_port)
out=$("$HC" -a 3 -b 20 -B 50 "http://127.0.0.1:$port/")
is "$(field err) $(field attempts)" "connect 3" "nothing listening: connect error, retried up to 3 attempts"
like "$out" "cannot connect to 127.0.0.1:$port" "  the error names the address"

out=$("$HC" -a 2 -b 20 "http://no-such-host.invalid/")
is "$(field err)" "dns" "an unknown host name: a DNS error"
like "$out" 'did not resolve' "  saying the name did not resolve"

out=$("$HC" -X PUT -d x "http://localhost:$PORT_plain/hook")
is "$(field status)" 200 "http://localhost:PORT: resolved (/etc/hosts) and delivered"

ctl "hang=1"
out=$("$HC" -X POST -t 500 -d x "$U/hook")
is "$(field err) $(field attempts)" "timeout 1" "no answer within 500 ms: timeout, a POST not retried"
ctl "hang=1"
out=$("$HC" -X POST -s -a 2 -b 10 -t 500 -d x "$U/hook")
is "$(field err) $(field status) $(field attempts)" "ok 200 2" "  retry-safe: the second attempt succeeds"

ctl "big=1"
out=$("$HC" -X PUT -r 100000 -d x "$U/hook")
is "$(field err)" "limit" "a 2 MiB answer with max_response 100000: limit error"
like "$out" 'response body too large' "  saying which limit"
ctl

out=$("$HC" -H 'Host: evil' "$U/")
like "$out" "refused error=.*header host is set by the client" "a caller's Host header is refused"
out=$("$HC" -H "$(printf 'X-A: b\rX-Injected: 1')" "$U/")
like "$out" "refused error=" "a header value with a bare CR is refused"
out=$("$HC" "ftp://127.0.0.1/")
like "$out" "refused error=\"URL: the URL must start with http:// or https://" "an ftp:// URL is refused"

# --- TLS --------------------------------------------------------------------
out=$("$HC" -X PUT -d x -c "$d/ca.crt" "https://localhost:$PORT_tls/hook")
is "$(field err) $(field status)" "ok 200" "https://localhost with our CA: verified, 200"
out=$("$HC" -X PUT -d x -c "$d/ca.crt" "https://127.0.0.1:$PORT_tls/hook")
is "$(field err) $(field status)" "ok 200" "https://127.0.0.1: the IP address is checked against the certificate"
n=$(wc -l <"$T_DIR/tls.log" | tr -d ' ')
out=$("$HC" -X PUT -d x -c "$d/other.crt" -a 3 -b 10 "https://localhost:$PORT_tls/hook")
is "$(field err) $(field attempts)" "tls 1" "a CA that did not sign the server: TLS error, not retried"
like "$out" "not verified" "  the error says the certificate was not verified"
out=$("$HC" -X PUT -d x "https://localhost:$PORT_tls/hook")
is "$(field err)" "tls" "no CA file: the system's CAs, which do not know our test CA: refused"
out=$("$HC" -X PUT -d x -c "$d/ca.crt" "https://localhost:$PORT_wrongname/hook")
is "$(field err)" "tls" "a certificate for another name (other.example): refused"
like "$out" "mismatch" "  hostname mismatch"
is "$(wc -l <"$T_DIR/tls.log" | tr -d ' ') $(cat "$T_DIR/wrongname.log" 2>/dev/null | wc -l | tr -d ' ')" "$n 0" \
	"  and none of those requests reached a receiver"
out=$("$HC" -X PUT -d x -c "$d/ca.crt" "https://127.0.0.1:$PORT_plain/hook")
is "$(field err)" "tls" "https:// to a plain HTTP port: a TLS error"
out=$("$HC" -c "$T_DIR/nope.pem" "https://localhost:$PORT_tls/")
like "$out" "refused error=\"CA file .*nope.pem" "an unreadable CA file: refused at once"

done_testing
