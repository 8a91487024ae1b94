#!/bin/sh
# notify.t — outbound event notifications (notify.webhooks, src/notify.c)
# against real receivers (t/hookrecv.py): what is delivered (headers,
# body, a signature the receiver verifies), retries with backoff after
# 503s and a hung receiver, the durable outbox across kill -9 while the
# receiver is down, max_attempts exhausted (outbox-dead, an audit leaf
# notify.failed), HTTPS verified against a CA file and a wrong CA never
# delivered to, a webhook added by SIGHUP, and max_outbox (the oldest
# dead records dropped; pending ones never).
. "$top_srcdir/t/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
TOKEN=plain-for-tests
SECRET=notify-secret-for-the-tests-0123
RPIDS=
trap 'for p in $RPIDS; do kill "$p" 2>/dev/null; done; cleanup' EXIT

d=$T_DIR/pki
mkdir -p "$d"
for ca in ca other; do
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$d/$ca.key" -out "$d/$ca.crt" -days 2 \
		-subj "/CN=vnamig test $ca" 2>/dev/null
done
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$d/server.key" -out "$d/server.csr" -subj /CN=localhost 2>/dev/null &&
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/server.ext" &&
openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
	-CAcreateserial -days 2 -out "$d/server.crt" -extfile "$d/server.ext" 2>/dev/null
ok $? "test PKI: a CA, a server certificate for localhost, another CA"

# recv NAME [ARGS...]: start a receiver; sets PORT_NAME and PID_NAME.
recv() {
	n=$1
	shift
	rm -f "$T_DIR/$n.port"
	"$PY" "$top_srcdir/t/hookrecv.py" "$T_DIR/$n.port" "$T_DIR/$n.log" "$@" \
		2>>"$T_DIR/$n.err" &
	eval "PID_$n=$!"
	RPIDS="$RPIDS $!"
	wait_file "$T_DIR/$n.port" 10 || diag "receiver $n did not start"
	eval "PORT_$n=\$(cat \"\$T_DIR/\$n.port\")"
}
recv plain --secret "$SECRET"
recv tls --cert "$d/server.crt" --key "$d/server.key"
P=$PORT_plain

conf=$T_DIR/vnamigd.yaml
mkconf() {	# mkconf [EXTRA-NOTIFY-YAML]
	cat >"$conf" <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/var
listen:
  http: { address: 127.0.0.1, port: 0 }
limits:
  shutdown_grace: 2s
storage:
  min_free: 1MiB
peers:
  - { name: src, ae_title: LEGACY, host: 127.0.0.1, port: 11113, role: source, window: never }
  - { name: dst, ae_title: NEWPACS, host: 127.0.0.1, port: 11114, role: target }
api:
  keys:
    - { id: ops, role: operator, token: "$TOKEN" }
notify:
${1:-}
  webhooks:
    - { name: plain, url: "http://127.0.0.1:$P/plain", events: ["batch.*"],
        hmac_secret: "$SECRET", timeout: 1s, max_attempts: 8,
        backoff_min: 200ms, backoff_max: 800ms }
    - { name: tls, url: "https://localhost:$PORT_tls/tls", events: [batch.created],
        ca: "$d/ca.crt", timeout: 2s }
    - { name: wrongca, url: "https://127.0.0.1:$PORT_tls/wrongca",
        events: [batch.created], ca: "$d/other.crt", timeout: 2s,
        max_attempts: 3, backoff_min: 100ms, backoff_max: 200ms }
${2:-}
YAML
}
mkconf
start_daemon "$conf" || { fail "vnamigd starts"; done_testing; }
base=http://127.0.0.1:$HTTP_PORT
wait_log 'notify-open webhooks=3 pending=0 dead=0' 2
ok $? "vnamigd starts with three webhooks and an empty outbox"

api() {	# api METHOD PATH [BODY]: sets code and out
	code=$(curl -s -o "$T_DIR/b" -w '%{http_code}' -X "$1" \
		-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
		${3:+--data-binary "$3"} "$base$2")
	out=$(cat "$T_DIR/b")
}
ctl() { curl -s "http://127.0.0.1:$P/_ctl?${1:-}" >/dev/null; }
# got PATH EVENT: the receiver's records of that path and event (JSON lines)
got() { [ -f "$T_DIR/$3.log" ] || return 0; jq -c "select(.path == \"$1\" and .headers[\"X-Vnamig-Event\"] == \"$2\")" "$T_DIR/$3.log"; }
have() { [ "$(got "$1" "$2" "$3" | jq -r 'select(.answer == 200) | .answer' | wc -l)" -ge "${4:-1}" ]; }

api POST /api/batches '{"source":"src","target":"dst","study_instance_uids":["1.2.3"],"batch_name":"n1"}'
is "$code" 201 "POST /api/batches: 201"
B1=$(printf '%s' "$out" | jq -r .batch_id)
wait_until 5 have /plain batch.created plain
ok $? "the receiver got batch.created"
r=$(got /plain batch.created plain | head -1)
is "$(printf '%s' "$r" | jq -r '"\(.headers["Content-Type"]) \(.sig) \(.headers["X-Vnamig-Delivery"] == (.body|fromjson).id)"')" \
	"application/json true true" "  Content-Type JSON, a signature the receiver verifies, X-Vnamig-Delivery = the body's id"
body=$(printf '%s' "$r" | jq -r .body)
is "$(printf '%s' "$body" | jq -r '"\(.event) \(.object.batch_id) \(.actor.key) \(keys|join(","))"')" \
	"batch.created $B1 ops actor,event,id,object,time" "  body: event, object (the batch), actor (the key), id, time"
like "$(printf '%s' "$body" | jq -r '"\(.id) \(.time)"')" '^VNAMIG-[0-9]+ 20[0-9-]{8}T[0-9:]{8}\.[0-9]{3}Z$' \
	"  id VNAMIG-<seq>, time RFC 3339 UTC with ms"
wait_until 5 have /tls batch.created tls
ok $? "the HTTPS receiver (localhost, our CA) got batch.created"

# A wrong CA: never delivered, retried, then outbox-dead with an audit leaf.
wait_log 'notify-failed webhook=wrongca .*attempts=3' 5
ok $? "webhook with the wrong CA: given up after max_attempts 3 (notify-failed, warn)"
like "$(grep 'notify-attempt-failed webhook=wrongca' "$T_DIR/daemon.log" | head -1)" \
	'error="tls: TLS: the certificate of 127.0.0.1:[0-9]+ was not verified' \
	"  each attempt logged with the TLS verification error"
is "$(got /wrongca batch.created tls | wc -l | tr -d ' ')" 0 "  and nothing ever reached the receiver"
curl -s -H "Authorization: Bearer $TOKEN" "$base/api/audit/export" >"$T_DIR/leaves"
leaf=$(grep '"event":"notify.failed"' "$T_DIR/leaves" | head -1)
is "$(printf '%s' "$leaf" | jq -r '"\(.object.webhook) \(.object.event) \(.object.attempts) \(.outcome)"')" \
	"wrongca batch.created 3 failed" "  audit leaf notify.failed: webhook, event, attempts, outcome"
like "$(printf '%s' "$leaf" | jq -r .reason)" 'not verified' "  with the last error as its reason"

# 503, 503, then 200: retried with backoff, same delivery, signed each time.
ctl "fail=2&status=503"
api POST "/api/batches/$B1/pause" '{"reason":"test"}'
is "$code" 200 "pause the batch: 200"
wait_until 8 have /plain batch.pause plain
ok $? "batch.pause delivered after the receiver answered 503 twice"
is "$(got /plain batch.pause plain | jq -r .answer | tr '\n' ' ')" "503 503 200 " \
	"  three attempts: 503, 503, 200"
is "$(got /plain batch.pause plain | jq -r '.headers["X-Vnamig-Delivery"] + " " + (.sig|tostring) + " " + .body' | sort -u | wc -l | tr -d ' ')" 1 \
	"  each with the same delivery id and body, each signature good"
gaps=$(got /plain batch.pause plain | jq -s -r '[range(1;length) as $i | (.[$i].t - .[$i-1].t) * 1000 | floor] | map(tostring) | join(" ")')
set -- $gaps
[ "${1:-0}" -ge 100 ] && [ "${2:-0}" -ge 100 ]
ok $? "  backoff between attempts (ms: $gaps)"
grep -q 'notify-attempt-failed webhook=plain .*event=batch.pause attempt=1/8 error="HTTP 503: {\\"error\\":\\"told to fail\\"}"' "$T_DIR/daemon.log" ||
	grep -q 'notify-attempt-failed webhook=plain .*event=batch.pause attempt=1/8 error="HTTP 503' "$T_DIR/daemon.log"
ok $? "  the failed attempts logged with the status (and the answer's start)"

# A receiver that does not answer: the attempt times out (1 s), then 200.
ctl "hang=1"
api POST "/api/batches/$B1/resume"
wait_until 8 have /plain batch.resume plain
ok $? "batch.resume delivered after the first attempt hung"
wait_log 'notify-attempt-failed webhook=plain .*event=batch.resume attempt=1/8 error="timeout: no complete response' 2
ok $? "  the hung attempt logged as a timeout"

# Durable: the receiver is down, vnamigd is killed -9 and restarted.
kill "$PID_plain"
wait "$PID_plain" 2>/dev/null
api POST "/api/batches/$B1/cancel"
is "$code" 200 "receiver down; cancel the batch: 200 (the change does not wait for the webhook)"
wait_log 'notify-attempt-failed webhook=plain .*event=batch.cancel attempt=1/8 error="connect: cannot connect' 5
ok $? "  the delivery fails (connect error) and is retried"
stop_daemon KILL
recv plain --secret "$SECRET" --port "$P"
start_daemon "$conf" || { fail "vnamigd restarts"; done_testing; }
base=http://127.0.0.1:$HTTP_PORT
# (pending: batch.cancel, and the engine's batch.cancelled when the batch
# ended before the kill; else it ends, and tells, after the start)
like "$(grep 'notify-open' "$T_DIR/daemon.log")" 'pending=[12] dead=1' \
	"after kill -9: the pending notifications and the dead one are loaded"
wait_until 8 have /plain batch.cancel plain
ok $? "  batch.cancel delivered after the restart (receiver up again)"
like "$(grep 'notify-delivered webhook=plain .*event=batch.cancel' "$T_DIR/daemon.log")" 'attempts=([2-9]|[1-9][0-9])' \
	"  its attempts before the crash were kept"
is "$(got /plain batch.cancel plain | jq -r .sig)" true "  signed"
wait_until 8 have /plain batch.cancelled plain
ok $? "  batch.cancelled (the batch's end, with its counts) delivered too"
order=$(jq -r 'select(.answer == 200) | .headers["X-Vnamig-Event"]' "$T_DIR/plain.log" | tr '\n' ' ')
is "$order" "batch.created batch.pause batch.resume batch.cancel batch.cancelled " "the plain webhook got the events in order, each once"

curl -s -H "Authorization: Bearer $TOKEN" "$base/metrics" >"$T_DIR/metrics"
like "$(cat "$T_DIR/metrics")" 'vnamig_notify_outbox\{state="pending"\} 0' "metrics: outbox pending 0"
like "$(cat "$T_DIR/metrics")" 'vnamig_notify_outbox\{state="dead"\} 1' "  outbox dead 1"
like "$(cat "$T_DIR/metrics")" 'vnamig_notify_deliveries_total\{webhook="plain",outcome="delivered"\} 2' \
	"  deliveries_total{plain,delivered} counted (since this start)"

# SIGHUP: a new webhook, and max_outbox 1 (the dead record goes, the
# pending ones are kept, with an error).
mkconf "  max_outbox: 1" "    - { name: late, url: \"http://127.0.0.1:$P/late\", events: [\"*\"] }"
kill -HUP "$DAEMON_PID"
wait_log 'reload-done' 5
ok $? "reload with a new webhook and max_outbox 1"
api POST /api/batches '{"source":"src","target":"dst","study_instance_uids":["1.2.4"],"batch_name":"n2"}'
is "$code" 201 "a second batch: 201"
wait_until 5 have /late batch.created plain
ok $? "  the webhook added by SIGHUP got batch.created"
wait_until 5 have /plain batch.created plain 2
ok $? "  and so did plain"
wait_log 'notify-dead-dropped records=1' 2
ok $? "  the outbox was full: the oldest dead record was dropped"
wait_log 'notify-outbox-full .*action=kept-anyway' 2
ok $? "  pending records alone over max_outbox: logged as an error, kept"
wait_until 5 have /tls batch.created tls 2
ok $? "  every pending notification still delivered"
api POST /api/checkpoints '{"name":"n1"}'
is "$code" 201 "a named checkpoint over the API: 201"
wait_until 5 have /late state.checkpoint plain
ok $? "  the \"*\" webhook got state.checkpoint"
is "$(got /late state.checkpoint plain | jq -r '.body | fromjson | .object.name')" n1 "  naming the checkpoint"
curl -s -H "Authorization: Bearer $TOKEN" "$base/metrics" >"$T_DIR/metrics"
like "$(cat "$T_DIR/metrics")" 'vnamig_notify_outbox_overflow_total [1-9]' "  and counted in vnamig_notify_outbox_overflow_total"

stop_daemon TERM
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
done_testing
