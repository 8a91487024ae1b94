#!/bin/sh
# api.t — the REST API (src/api/) end to end with curl against a real
# vnamigd over loopback: every route under every role (none, viewer,
# operator, admin) against the permission table, API keys (made, used,
# listed, limited, deleted, kept across a restart), batches (validation
# field by field, JSON syntax errors with line and column, media type,
# body limits, listing with filters and pages, pause/resume/cancel),
# intake dedup (also 20 racing deliveries and across a restart), webhook
# channels (HMAC signatures, replays, expiry, address allow-lists), the
# audit log (each change a leaf naming its key; proofs checked by the
# independent t/merkle.py; the zstd export), checkpoints and a restore
# over the API (the daemon re-execs itself), backups, HTTPS, /metrics,
# and clients that hang up or pipeline.
. "$top_srcdir/t/lib.sh"

export TCP_NODELAY=1
export LC_ALL=C
MERKLE=$top_srcdir/t/merkle.py
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
TV="tok-viewer-00000001"
TO="tok-operator-000001"
TA="tok-admin-000000001"
SECRET=hmac-secret-for-the-tests-0123456789
conf=$T_DIR/vnamigd.yaml
BK=$T_DIR/backups
mkdir -p "$BK"

# api_conf FILE HTTP-LISTENER-EXTRA STORAGE-EXTRA API-EXTRA LIMITS-EXTRA
api_conf() {
	cat > "$1" <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/var${6:-}
listen:
  dicom: { address: 127.0.0.1, port: 0 }
  http:  { address: 127.0.0.1, port: 0$2 }
  mllp:  { address: 127.0.0.1, port: 0 }
limits:
  shutdown_grace: 2s
$5
storage:
  min_free: 1MiB
$3
peers:
  # window never: the engine leaves these batches queued (t/mig.t
  # migrates; here only the API is under test)
  - { name: src, ae_title: LEGACY, host: 127.0.0.1, port: 11113, role: source, window: never }
  - { name: dst, ae_title: NEWPACS, host: 127.0.0.1, port: 11114, role: target }
api:
  keys:
    - { id: view, role: viewer, token: "$TV" }
    - { id: ops, role: operator, token: "$TO" }
    - { id: adm, role: admin, token: "$TA" }
$4
YAML
}

api_conf "$conf" "" "  backup_dir: $BK" "  max_keys: 3
  max_batch_items: 5
  webhooks:
    - { channel: signed, anonymous: true, hmac_secret: \"$SECRET\", replay_window: 5m }
    - { channel: lan, anonymous: true, allow: [10.0.0.0/8] }" ""

# Mutations that must each have left an audit leaf (counted by api()).
LEAVES_WANT=0
CURLX=

# api METHOD PATH TOKEN [BODY [CONTENT-TYPE]]: one request; sets code and
# out (the body); the response headers are in $T_DIR/h.
api() {
	if [ -n "$3" ]; then _auth="Authorization: Bearer $3"; else _auth="X-No-Key: 1"; fi
	if [ $# -ge 4 ]; then
		# shellcheck disable=SC2086
		code=$(curl -s $CURLX -o "$T_DIR/b" -D "$T_DIR/h" -w '%{http_code}' -X "$1" \
		    -H "$_auth" -H "Content-Type: ${5:-application/json}" \
		    --data-binary "$4" "$base$2")
	else
		# shellcheck disable=SC2086
		code=$(curl -s $CURLX -o "$T_DIR/b" -D "$T_DIR/h" -w '%{http_code}' -X "$1" \
		    -H "$_auth" "$base$2")
	fi
	out=$(cat "$T_DIR/b" 2>/dev/null)
	case "$1 $code $2" in
	"GET "*) ;;
	*" 201 "*|*" 202 "*|*" 204 "*) LEAVES_WANT=$((LEAVES_WANT + 1)) ;;
	# a pause takes a named checkpoint, audited too (state.checkpoint)
	*" 200 "*/pause) LEAVES_WANT=$((LEAVES_WANT + 2)) ;;
	*" 200 "*/resume|*" 200 "*/cancel) LEAVES_WANT=$((LEAVES_WANT + 1)) ;;
	esac
}
j() { printf '%s' "$out" | jq -r "$1" 2>/dev/null; }
hdr() { grep -i "^$1:" "$T_DIR/h" | head -1 | sed 's/^[^:]*: *//' | tr -d '\r'; }
# settle: wait until every audit leaf appended is durable (the refusals'
# leaves are not waited for by their requests)
settle() {
	wait_until 10 sh -c "curl -s -H 'Authorization: Bearer $TV' '$base/api/status' |
	    jq -e '.audit.durable_size > 0 and .audit.size == .audit.durable_size' >/dev/null"
}
ports() { HTTP_PORT=$(sed -n 's/.* listening proto=http .*port=\([0-9]*\).*/\1/p' "$T_DIR/daemon.log" | tail -1); }

start_daemon "$conf" || { fail "vnamigd starts"; done_testing; }
pass "vnamigd starts with three config keys, two peers, two webhook channels"
base="http://127.0.0.1:$HTTP_PORT"
settle

# --- every route under every role -----------------------------------------
# METHOD PATH BODY(- none) LEAST(open|viewer|operator|admin) STATUS-WHEN-ALLOWED
n401=0
while read -r m p b least want; do
	got=
	for who in none viewer operator admin; do
		case $who in
		none) tok= ;; viewer) tok=$TV ;; operator) tok=$TO ;; admin) tok=$TA ;;
		esac
		if [ "$b" = - ]; then api "$m" "$p" "$tok"; else api "$m" "$p" "$tok" "$b"; fi
		got="$got $code"
		if [ "$code" = 401 ]; then
			[ "$(hdr WWW-Authenticate)" = 'Bearer realm="vnamig"' ] ||
			    n401=$((n401 + 1))
			grep -q '"code":"unauthorized"' "$T_DIR/b" || n401=$((n401 + 1))
		fi
		if [ "$code" = 403 ] && ! grep -q '"code":"forbidden"' "$T_DIR/b"; then
			got="$got(not forbidden)"
		fi
		if [ "$code" = 403 ] && [ "${p#/api/batch_sources}" = "$p" ] &&
		    ! grep -q "\"required\":\"$least\"" "$T_DIR/b"; then
			got="$got(required is not $least)"
		fi
	done
	case $least in
	open) exp="$want $want $want $want" ;;
	viewer) exp="401 $want $want $want" ;;
	operator) exp="401 403 $want $want" ;;
	admin) exp="401 403 403 $want" ;;
	esac
	is "${got# }" "$exp" "$m $p: none/viewer/operator/admin (least: $least)"
done <<'EOF'
GET /api/health - open 200
GET /api/status - viewer 200
GET /metrics - viewer 200
GET /api/openapi.json - viewer 200
GET /api/keys - admin 200
POST /api/keys {} admin 422
DELETE /api/keys/nosuchkey - admin 404
GET /api/batches - viewer 200
POST /api/batches {} operator 422
GET /api/batches/999999 - viewer 404
GET /api/batches/999999/report - viewer 404
POST /api/batches/999999/pause {} operator 404
POST /api/batches/999999/resume {} operator 404
POST /api/batches/999999/cancel {} operator 404
POST /api/batch_sources/webhook {} operator 422
POST /api/batch_sources/webhook/default {} operator 422
GET /api/quarantine - viewer 200
GET /api/quarantine/999999 - viewer 404
GET /api/audit/checkpoint - viewer 200
GET /api/audit/leaf/0 - viewer 200
GET /api/audit/proof?seq=0 - viewer 200
GET /api/audit/consistency?from=1 - viewer 200
GET /api/audit/export - viewer 200
GET /api/checkpoints - viewer 200
POST /api/checkpoints {} operator 422
POST /api/checkpoints/nosuchcp/restore {} admin 404
GET /api/backups - admin 200
POST /api/backups {} admin 201
POST /api/backups/999/verify {} admin 404
EOF

is "$n401" 0 "every 401 above had WWW-Authenticate: Bearer and code unauthorized"

api GET /api/status wrong-token-0000000000
is "$code" 401 "an unknown key: 401"
is "$(hdr WWW-Authenticate)" 'Bearer realm="vnamig"' "  with WWW-Authenticate"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Basic $(printf 'adm:%s' "$TA" | base64)" "$base/api/status")
is "$code" 401 "a Basic credential instead of a Bearer token: 401"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${TV%?}2" "$base/api/status")
is "$code" 401 "a key with its last character changed: 401"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: bearer $TV" "$base/api/status")
is "$code" 200 "header name and scheme are case-insensitive"

# --- routing and body errors ---------------------------------------------
api PUT /api/keys "$TA" '{}'
is "$code" 405 "PUT /api/keys: 405"
is "$(hdr Allow)" "GET, HEAD, POST" "  Allow: GET, HEAD, POST"
is "$(j .error.code)" method_not_allowed "  code method_not_allowed"
api DELETE /api/batches "$TA"
is "$code $(hdr Allow)" "405 GET, HEAD, POST" "DELETE /api/batches: 405 with Allow"
api GET /api/batches/1/nothing "$TA"
is "$code $(j .error.code)" "404 not_found" "an unknown path under a route: 404"
api GET /api/status "$TV" 'x' text/plain
is "$code $(j .error.code)" "400 unexpected_body" "GET with a body: 400 unexpected_body"
api POST /api/batches "$TO" '{"source":"src"}' text/plain
is "$code $(j .error.code)" "415 unsupported_media_type" "POST /api/batches as text/plain: 415"
api POST /api/batches "$TO" '{"source":"src"}' application/x-www-form-urlencoded
is "$code" 415 "  and as a form: 415"
api POST /api/keys "$TA" "{\"id\":\"big\",\"role\":\"viewer\",\"pad\":\"$(head -c 5000 /dev/zero | tr '\0' x)\"}"
is "$code $(j '"\(.error.code) \(.error.detail.limit)"')" "413 body_too_large 4096" \
	"POST /api/keys with 5000 bytes: 413, its limit 4 KiB named"
api POST /api/batches "$TO" "$(printf '{\n  "source": "src",\n  "target": oops\n}')"
is "$code $(j .error.code)" "400 bad_json" "a JSON syntax error: 400 bad_json"
is "$(j .error.detail.line)" 3 "  detail.line is 3"
like "$(j .error.detail.column)" '^1[0-9]$' "  detail.column points into the line ($(j .error.detail.column))"
like "$(j .error.message)" 'line 3, column' "  and the message says where"
api POST /api/batches "$TO" '{"source":"src","source":"dst"}'
is "$code $(j .error.code)" "400 bad_json" "a duplicate member: 400 bad_json"
api POST /api/batches "$TO" '["src","dst"]'
is "$code $(j .error.code)" "400 bad_json" "a JSON array instead of an object: 400"
api POST /api/batches "$TO" ''
is "$code $(j .error.code)" "400 bad_json" "POST /api/batches with an empty JSON body: 400 bad_json"
api POST /api/checkpoints "$TO" '{"name": "x"' 
is "$code $(j .error.detail.line)" "400 1" "a truncated object: 400 at line 1"

# --- API keys --------------------------------------------------------------
api POST /api/keys "$TA" '{"id":"k1","role":"viewer"}'
is "$code" 201 "admin creates key k1 (viewer): 201"
K1=$(j .token)
like "$K1" '^vnk_[A-Za-z0-9_-]{43}$' "  the token is shown: vnk_ + 43 base64url characters"
is "$(j '"\(.key.id) \(.key.role) \(.key.source) \(.key.created_by)"')" "k1 viewer api adm" \
	"  the key: id, role, source api, created by adm"
api GET /api/status "$K1"
is "$code" 200 "  k1 works at once as a Bearer token (GET /api/status)"
api POST /api/batches "$K1" '{}'
is "$code $(j .error.detail.role)" "403 viewer" "  with its role: viewer may not create batches"
api POST /api/keys "$TA" '{"id":"k2","role":"operator"}'
K2=$(j .token)
is "$code" 201 "key k2 (operator): 201"
api POST /api/keys "$K2" '{"id":"k9","role":"admin"}'
is "$code" 403 "  an operator key cannot make keys (403)"
api GET /api/keys "$TA"
is "$code" 200 "GET /api/keys: 200"
is "$(j '[.keys[]|select(.source=="config")|.id]|sort|join(",")')" "adm,ops,view" "  the three config keys, source config"
is "$(j '[.keys[]|select(.source=="api")|.id+":"+.role]|sort|join(",")')" "k1:viewer,k2:operator" \
	"  the two API keys with their roles, source api"
printf '%s' "$out" | grep -q -e "$K1" -e sha256 -e "$TA"
is "$?" 1 "  and no token or hash in the list"
api POST /api/keys "$TA" '{"id":"k1","role":"admin"}'
is "$code $(j .error.code)" "409 exists" "a duplicate id: 409"
api POST /api/keys "$TA" '{"id":"ops","role":"admin"}'
is "$code $(j .error.code)" "409 exists" "the id of a config key: 409"
api DELETE /api/keys/ops "$TA"
is "$code $(j .error.code)" "409 defined_in_config" "DELETE a config key: 409 defined_in_config"
api POST /api/keys "$TA" '{"id":"bad id!","role":"viewer"}'
is "$code $(j .error.detail.field)" "422 id" "a bad id: 422 field id"
api POST /api/keys "$TA" "{\"id\":\"$(printf '%065d' 0)\",\"role\":\"viewer\"}"
is "$code $(j .error.detail.field)" "422 id" "a 65-character id: 422 field id"
api POST /api/keys "$TA" '{"id":"k3","role":"root"}'
is "$code $(j .error.detail.field)" "422 role" "an unknown role: 422 field role"
api POST /api/keys "$TA" '{"id":"k3"}'
is "$code $(j .error.detail.field)" "422 role" "no role: 422 field role"
api POST /api/keys "$TA" '{"id":"k3","role":"admin"}'
is "$code" 201 "key k3 (admin): 201"
K3=$(j .token)
api POST /api/keys "$TA" '{"id":"k4","role":"viewer"}'
is "$code $(j '"\(.error.code) \(.error.detail.max_keys)"')" "409 limit 3" "a fourth API key over api.max_keys 3: 409 limit"
api GET /api/keys "$K3"
is "$code" 200 "  k3 (admin) may list the keys"
api DELETE /api/keys/k1 "$K3"
is "$code" 204 "k3 deletes k1: 204"
[ -z "$out" ]
ok $? "  with no body"
api GET /api/status "$K1"
is "$code" 401 "  k1's token stops working (401)"
api DELETE /api/keys/k1 "$TA"
is "$code" 404 "  deleting it again: 404"
api POST /api/keys "$TA" '{"id":"k4","role":"viewer"}'
is "$code" 201 "  and a key fits again under the limit (k4: 201)"
K4=$(j .token)
api DELETE /api/keys/k4 "$TA" 'x' text/plain
is "$code $(j .error.code)" "400 unexpected_body" "DELETE with a body: 400"

# --- batches ---------------------------------------------------------------
api POST /api/batches "$TO" '{"source":"src","target":"dst","study_instance_uids":["1.2.840.1","1.2.3"],"batch_name":"first","priority":7}'
is "$code" 201 "POST /api/batches: 201"
B1=$(j .batch_id)
is "$(hdr Location)" "/api/batches/$B1" "  Location: /api/batches/$B1"
is "$(j '"\(.created) \(.batch.state) \(.batch.priority) \(.batch.name) \(.batch.channel) \(.batch.created_by)"')" \
	"true queued 7 first api ops" "  created, queued, priority 7, its name, channel api, by ops"
api GET "/api/batches/$B1" "$TV"
is "$code $(j .batch.id) $(j '.batch.study_instance_uids|join(",")')" "200 $B1 1.2.840.1,1.2.3" \
	"GET the Location as viewer: the batch"
api GET "/api/batches/$B1/report" "$TV"
is "$code $(j .batch.id) $(j '.studies|length')" "200 $B1 0" "GET its report: the batch and its (no) studies"

# invalid seeds: each named by detail.field
S='"source":"src","target":"dst"'
# 63 bytes and a two-byte character: the message quotes 64 of them
K="$(printf '%063d' 0 | tr 0 k)é"
api POST /api/batches "$TO" "{$S,\"patient_id\":\"P1\",\"$K\":1}"
like "$(j .error.message)" "^unknown field \"$(printf '%063d' 0 | tr 0 k)\";" \
    "422 quoting a 65-byte field: cut before its last character, not inside it"
while IFS='|' read -r field body why; do
	api POST /api/batches "$TO" "$body"
	is "$code $(j '"\(.error.code) \(.error.detail.field)"')" "422 invalid_field $field" "422 field $field: $why"
done <<EOF
bogus|{$S,"study_instance_uids":["1.2.3"],"bogus":1}|an unknown field
$K|{$S,"patient_id":"P1","$K":1}|an unknown field of 65 bytes, quoted without half a character
study_instance_uids|{$S,"study_instance_uids":["1.02.3"]}|UID 1.02.3 (a leading zero)
study_instance_uids|{$S,"study_instance_uids":["1.2.3."]}|UID ending in a dot
study_instance_uids|{$S,"study_instance_uids":["1.2.a"]}|UID with a letter
study_instance_uids|{$S,"study_instance_uids":[123]}|UID not a string
study_instance_uids|{$S,"study_instance_uids":["$(printf '1.%063d' 1)"]}|UID of 65 characters
study_instance_uids|{$S,"accession_numbers":["a","b","c"],"study_instance_uids":["1.2","1.3","1.4"]}|six studies over api.max_batch_items 5
study_instance_uids|{$S}|no studies, accessions or patient
study_instance_uids|{$S,"patient_id":""}|an empty patient_id only
accession_numbers|{$S,"accession_numbers":"A1"}|accession_numbers not an array
accession_numbers|{$S,"accession_numbers":["A\\\\1"]}|an accession number with a backslash
source|{"target":"dst","patient_id":"P1"}|no source
source|{"source":"nope","target":"dst","patient_id":"P1"}|an unknown source peer
source|{"source":"dst","target":"dst","patient_id":"P1"}|a target-only peer as source
target|{"source":"src","target":"src","patient_id":"P1"}|a source-only peer as target
target|{"source":"src","target":"elsewhere","patient_id":"P1"}|an unknown target peer
priority|{$S,"patient_id":"P1","priority":10}|priority 10
priority|{$S,"patient_id":"P1","priority":-1}|priority -1
priority|{$S,"patient_id":"P1","priority":"high"}|priority not an integer
force_full_repull|{$S,"patient_id":"P1","force_full_repull":"yes"}|force_full_repull not a boolean
patient_id|{$S,"patient_id":"P\\\\1"}|a patient_id with a backslash
external_id|{$S,"patient_id":"P1","external_id":42}|external_id not a string
batch_name|{$S,"patient_id":"P1","batch_name":["x"]}|batch_name not a string
source|{}|an empty request
EOF

api POST /api/batches "$TA" "{$S,\"patient_id\":\"P1\",\"accession_numbers\":[\"A1\"]}"
is "$code $(j '"\(.batch.priority) \(.batch.created_by)"')" "201 5 adm" "admin may create batches too (priority 5 by default)"
B2=$(j .batch_id)
for i in 3 4 5 6; do
	api POST /api/batches "$TO" "{$S,\"study_instance_uids\":[\"1.2.$i\"]}"
	eval "B$i=\$(j .batch_id)"
done
is "$code" 201 "four more batches"

# transitions
api POST "/api/batches/$B1/pause" "$TO" '{"reason":"maintenance"}'
is "$code $(j '"\(.batch.state) \(.batch.reason)"')" "200 paused maintenance" "pause a queued batch: paused, with the reason"
api POST "/api/batches/$B1/pause" "$TO" ''
is "$code $(j '"\(.error.code) \(.error.detail.state)"')" "409 invalid_transition paused" "pause it again: 409 invalid_transition"
api POST "/api/batches/$B1/resume" "$TO" ''
is "$code $(j .batch.state)" "200 queued" "resume (no body): queued"
api POST "/api/batches/$B1/resume" "$TO" ''
is "$code $(j .error.code)" "409 invalid_transition" "resume a queued batch: 409"
api POST "/api/batches/$B2/pause" "$TA" ''
api POST "/api/batches/$B2/cancel" "$TO" ''
is "$code $(j .batch.state)" "200 cancelled" "cancel a paused batch: cancelled"
api POST "/api/batches/$B3/cancel" "$TO" '{}'
is "$code $(j .batch.state)" "200 cancelled" "cancel a queued batch: cancelled"
api POST "/api/batches/$B3/cancel" "$TO" ''
is "$code $(j .error.code)" "409 invalid_transition" "cancel it again: 409"
api POST "/api/batches/$B3/pause" "$TO" ''
is "$code" 409 "pause a cancelled batch: 409"
api POST "/api/batches/$B3/resume" "$TO" ''
is "$code" 409 "resume a cancelled batch: 409"
api POST "/api/batches/$B4/pause" "$TO" ''
is "$code" 200 "pause one more (so that paused = 1)"
api POST "/api/batches/$B4/pause" "$TO" 'nope' text/plain
is "$code" 415 "a transition with a non-JSON body: 415"
api POST "/api/batches/$B4/pause" "$TO" '[]'
is "$code" 400 "a transition with a JSON array: 400"
api GET "/api/batches/$B3" "$TV"
is "$(j .batch.state)" cancelled "GET shows the cancelled state"
api GET /api/batches/0 "$TV"
is "$code" 404 "GET /api/batches/0: 404"
api GET /api/batches/abc "$TV"
is "$code" 404 "GET /api/batches/abc: 404"
api GET /api/batches/99999999999999999999 "$TV"
is "$code" 404 "GET a 20-digit id: 404"
# a path that decodes to bytes that are not UTF-8: the 404 quotes them
# as '?' (jansson refused the message, and the answer had no body)
for u in /api/batches/%FF /api/plans/%FF /api/sources/%C3 /api/quarantine/%80x; do
	api GET "$u" "$TV"
	is "$code $(j .error.code)" "404 not_found" "GET $u (not UTF-8): 404 with its JSON error"
done
like "$(j .error.message)" '^no quarantine item "\?x"' "  the byte not UTF-8 quoted as ?"

code=$(curl -s -I -o "$T_DIR/hh" -w '%{http_code}' -H "Authorization: Bearer $TV" "$base/api/batches/$B1")
len=$(curl -s -H "Authorization: Bearer $TV" "$base/api/batches/$B1" | wc -c | tr -d ' ')
is "$code $(grep -i '^Content-Length:' "$T_DIR/hh" | tr -d '\r' | sed 's/.*: //')" "200 $len" \
	"HEAD /api/batches/$B1: 200, the Content-Length of the GET"
code=$(curl -s -I -o /dev/null -w '%{http_code}' "$base/api/batches/$B1")
is "$code" 401 "HEAD without a key: 401"

# list, filter, pages
api GET '/api/batches?state=paused' "$TV"
is "$code $(j '[.batches[].id]|join(",")') $(j .next)" "200 $B4 null" "?state=paused: only batch $B4, no next page"
api GET '/api/batches?state=cancelled' "$TV"
is "$(j '[.batches[].id]|join(",")')" "$B2,$B3" "?state=cancelled: $B2 and $B3"
api GET '/api/batches?state=bogus' "$TV"
is "$code $(j .error.detail.parameter)" "400 state" "?state=bogus: 400"
api GET '/api/batches?limit=0' "$TV"
is "$code $(j .error.detail.parameter)" "400 limit" "?limit=0: 400"
api GET '/api/batches?limit=1001' "$TV"
is "$code" 400 "?limit=1001: 400"
api GET '/api/batches?limit=x' "$TV"
is "$code $(j .error.code)" "400 bad_query" "?limit=x: 400 bad_query"
api GET '/api/batches?after=-1' "$TV"
is "$code" 400 "?after=-1: 400"
api GET '/api/batches?after=99999999999999999999' "$TV"
is "$code" 400 "?after= past 2^64-1: 400 (it was taken as 2^64-1)"
all=
after=
pages=0
while [ "$pages" -lt 10 ]; do
	api GET "/api/batches?limit=2${after:+&after=$after}" "$TV"
	[ "$code" = 200 ] || break
	pages=$((pages + 1))
	all="$all$(j '[.batches[].id|tostring]|join(" ")') "
	after=$(j .next)
	[ "$after" = null ] && break
done
is "${all% }" "$B1 $B2 $B3 $B4 $B5 $B6" "limit=2 pages with after=next walk all six batches in order"
is "$pages" 3 "  in three pages"
api GET "/api/batches?after=$B6" "$TV"
is "$(j '.batches|length') $(j .next)" "0 null" "after the last id: empty, next null"
api GET "/api/batches?limit=2&state=queued&after=$B1" "$TV"
is "$(j '[.batches[].id]|join(",")')" "$B5,$B6" "state and after together: queued batches after $B1"
api GET /api/status "$TV"
is "$(j '"\(.batches.total) \(.batches.by_state.queued) \(.batches.by_state.paused) \(.batches.by_state.cancelled) \(.batches.by_state.done)"')" \
	"6 3 1 2 0" "GET /api/status: batches total 6, by_state queued 3, paused 1, cancelled 2"

# --- dedup -----------------------------------------------------------------
seed="{$S,\"external_id\":\"acc-1\",\"study_instance_uids\":[\"1.2.99\"]}"
api POST /api/batches "$TO" "$seed"
is "$code $(j .created)" "201 true" "external_id acc-1: 201"
D1=$(j .batch_id)
api POST /api/batches "$TO" "$seed"
is "$code $(j '"\(.created) \(.batch_id)"')" "200 false $D1" "the same again: 200 with the same batch_id"
[ -z "$(hdr Location)" ]
ok $? "  (and no Location)"
api POST /api/batches "$TA" "{$S,\"external_id\":\"acc-1\",\"patient_id\":\"other\"}"
is "$code $(j '"\(.batch_id) \(.batch.patient_id)"')" "200 $D1 " "  by the external_id alone, whatever else the seed says"
api POST /api/batches "$TO" "{$S,\"external_id\":\"\",\"patient_id\":\"P9\"}"
E1=$(j .batch_id)
api POST /api/batches "$TO" "{$S,\"external_id\":\"\",\"patient_id\":\"P9\"}"
E2=$(j .batch_id)
is "$code" 201 "an empty external_id twice: 201 both times"
[ "$E1" != "$E2" ]
ok $? "  two batches ($E1, $E2)"

race="{$S,\"external_id\":\"race-1\",\"study_instance_uids\":[\"1.2.100\"]}"
pids=
for i in $(seq 20); do
	curl -s -o "$T_DIR/race.$i" -w '%{http_code}' -X POST -H "Authorization: Bearer $TO" \
	    -H 'Content-Type: application/json' --data-binary "$race" \
	    "$base/api/batches" > "$T_DIR/race.$i.code" 2>/dev/null &
	pids="$pids $!"
done
# shellcheck disable=SC2086
wait $pids
LEAVES_WANT=$((LEAVES_WANT + 1))
codes=$(for i in $(seq 20); do cat "$T_DIR/race.$i.code"; echo; done | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')
is "$codes" "200:19 201:1 " "20 racing deliveries of one seed: one 201, nineteen 200"
ids=$(for i in $(seq 20); do jq -r .batch_id "$T_DIR/race.$i"; done | sort -u)
R1=$ids
like "$ids" '^[0-9]+$' "  all with the same batch_id ($ids)"
api GET "/api/batches?limit=1000" "$TV"
is "$(j "[.batches[]|select(.external_id==\"race-1\")]|length")" 1 "  and there is one batch with that external_id"

# the same external_id on another channel is another seed
api POST /api/batch_sources/webhook "$TO" "$seed"
is "$code $(j .batch.channel)" "201 default" "acc-1 on the default webhook channel (operator key): a new batch, 201"
DW=$(j .batch_id)
[ "$DW" != "$D1" ]
ok $? "  dedup is per channel"
api POST /api/batch_sources/webhook/default "$TO" "$seed"
is "$code $(j .batch_id)" "200 $DW" "  /webhook/default is the same channel: 200 same id"
api POST /api/batch_sources/webhook "$K4" "$seed"
is "$code $(j .error.code)" "403 forbidden" "  a viewer key on the default channel: 403"
api POST /api/batch_sources/webhook "" "$seed"
is "$code $(j .error.code)" "401 unauthorized" "  no key on the default channel: 401"
is "$(hdr WWW-Authenticate)" 'Bearer realm="vnamig"' "  with WWW-Authenticate"
api POST /api/batch_sources/webhook "$TO" '{"source": ' 
is "$code $(j '"\(.error.code) \(.error.detail.line)"')" "400 bad_json 1" "  bad JSON on the webhook: 400 with the line"
api POST /api/batch_sources/webhook/nochannel "$TO" "$seed"
is "$code" 404 "  an unknown channel: 404"

# --- webhook channels --------------------------------------------------------
# sign T BODY: the X-Vnamig-Signature value for T and BODY
sign() {
	printf 't=%s,v1=%s' "$1" "$(printf '%s.%s' "$1" "$2" | openssl dgst -sha256 -hmac "$SECRET" | awk '{print $NF}')"
}
# hook CHANNEL BODY [SIGNATURE]: POST to the channel without a key
hook() {
	if [ $# -ge 3 ]; then
		code=$(curl -s -o "$T_DIR/b" -D "$T_DIR/h" -w '%{http_code}' -H "X-Vnamig-Signature: $3" \
		    -H 'Content-Type: application/json' --data-binary "$2" \
		    "$base/api/batch_sources/webhook/$1")
	else
		code=$(curl -s -o "$T_DIR/b" -D "$T_DIR/h" -w '%{http_code}' \
		    -H 'Content-Type: application/json' --data-binary "$2" \
		    "$base/api/batch_sources/webhook/$1")
	fi
	out=$(cat "$T_DIR/b")
}
hb="{$S,\"external_id\":\"hook-1\",\"accession_numbers\":[\"ACC9\"]}"
now=$(date +%s)
sig=$(sign "$now" "$hb")
hook signed "$hb" "$sig"
is "$code $(j '"\(.created) \(.batch.channel) \(.batch.created_by)"')" "201 true signed anonymous" \
	"HMAC channel, good signature, no key: 201 (channel signed, by anonymous)"
H1=$(j .batch_id)
LEAVES_WANT=$((LEAVES_WANT + 1))
hook signed "$hb" "$sig"
is "$code $(j .error.code)" "401 signature_replayed" "the same signed request again: 401 signature_replayed"
is "$(hdr WWW-Authenticate)" 'Bearer realm="vnamig"' "  with WWW-Authenticate"
hook signed "$hb" "$(sign $((now - 1)) "$hb")"
is "$code $(j '"\(.created) \(.batch_id)"')" "200 false $H1" "signed anew (another t): the dedup answers 200 with the same batch"
LEAVES_WANT=$((LEAVES_WANT + 1))	# batch.seed.repeat (its signature recorded)
hook signed "$hb" "t=$now,v1=$(printf '%064d' 0)"
is "$code $(j .error.code)" "401 bad_signature" "a wrong signature (64 hex digits): 401 bad_signature"
hook signed "$hb" "t=$now,v1=$(printf '%s.%s' "$now" "$hb" | openssl dgst -sha256 -hmac "wrong-secret-wrong-secret" | awk '{print $NF}')"
is "$code $(j .error.code)" "401 bad_signature" "signed with another secret: 401 bad_signature"
hook signed "$hb " "$(sign $((now - 2)) "$hb")"
is "$code $(j .error.code)" "401 bad_signature" "a body that differs by one byte: 401 bad_signature"
hook signed "$hb" "$(sign $((now - 3600)) "$hb")"
is "$code $(j .error.code)" "401 signature_expired" "t an hour ago (window 5 min): 401 signature_expired"
hook signed "$hb" "$(sign $((now + 3600)) "$hb")"
is "$code $(j .error.code)" "401 signature_expired" "t an hour ahead: 401 signature_expired"
hook signed "$hb"
is "$code $(j .error.code)" "401 signature_required" "no X-Vnamig-Signature: 401 signature_required"
hook signed "$hb" "t=$now,v1=xyz"
is "$code $(j .error.code)" "401 bad_signature" "a malformed signature header: 401 bad_signature"
hb2="{$S,\"external_id\":\"\",\"patient_id\":\"PX\"}"
hook signed "$hb2" "$(sign "$now" "$hb2")"
is "$code" 201 "another body signed with the same t: 201"
LEAVES_WANT=$((LEAVES_WANT + 1))
# the same signed delivery ten times at once (no external_id), on ten
# connections opened first: one batch, the other nine are replays
hb3="{$S,\"external_id\":\"\",\"patient_id\":\"PR\"}"
codes=$($PY - "$HTTP_PORT" "$(sign "$now" "$hb3")" "$hb3" <<'PY'
import re, socket, sys
port, sig, body = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
req = ("POST /api/batch_sources/webhook/signed HTTP/1.1\r\nHost: a\r\n"
       "Connection: close\r\nX-Vnamig-Signature: %s\r\nContent-Type: "
       "application/json\r\nContent-Length: %d\r\n\r\n" % (sig, len(body))).encode() + body
socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(10)]
for s in socks:
    s.sendall(req)
got = []
for s in socks:
    d = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        d += b
    got += [c.decode() for c in re.findall(rb"HTTP/1\.1 (\d{3}) ", d)]
print(" ".join(sorted(got)))
PY
)
is "$codes" "201 401 401 401 401 401 401 401 401 401" \
	"one signed delivery (no external_id) sent ten times at once: one 201, nine 401 signature_replayed"
LEAVES_WANT=$((LEAVES_WANT + $(echo "$codes" | tr ' ' '\n' | grep -c 201)))
hook signed "$hb2" "t=$now,v1=$(printf '%s.%s' "$now" "$hb2" | openssl dgst -sha256 -hmac "$SECRET" | awk '{print toupper($NF)}')"
is "$code $(j .error.code)" "401 signature_replayed" "the same signature in upper-case hex is the same signature (replayed)"
hook signed '{"source":' "$(sign "$now" '{"source":')"
is "$code $(j .error.code)" "400 bad_json" "signed bad JSON: 400 bad_json (after the signature)"
hook lan "$hb"
is "$code $(j .error.code)" "403 address_not_allowed" "channel lan (allow 10.0.0.0/8) from 127.0.0.1: 403"
api POST /api/batch_sources/webhook/lan "$TA" "$hb"
is "$code $(j .error.code)" "403 address_not_allowed" "  even with the admin key"

api GET /api/status "$TV"
total=$(j .batches.total)

# --- a restart keeps keys, seeds and signatures ---------------------------
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops (exit 0)"
start_daemon "$conf" || { fail "vnamigd restarts"; done_testing; }
base="http://127.0.0.1:$HTTP_PORT"
api POST /api/batches "$TO" "$seed"
is "$code $(j .batch_id)" "200 $D1" "after a restart acc-1 again: 200 with the same batch_id"
api POST /api/batches "$TO" "$race"
is "$code $(j .batch_id)" "200 $R1" "  race-1 too"
api GET /api/status "$K2"
is "$code" 200 "  API key k2 survives the restart"
api POST /api/batches "$K2" "{$S,\"patient_id\":\"P2\"}"
is "$code $(j .batch.created_by)" "201 k2" "  with its role (operator: creates a batch)"
api GET /api/status "$K1"
is "$code" 401 "  the deleted k1 stays deleted"
hook signed "$hb" "$sig"
is "$code $(j .error.code)" "401 signature_replayed" "  a signature accepted before the restart is still a replay"
api GET /api/status "$TV"
is "$(j .batches.total)" "$((total + 1))" "  the batch count is reloaded ($total + k2's)"

# --- backups ------------------------------------------------------------------
api POST /api/backups "$TA" ''
is "$code $(j '"\(.backup.id) \(.backup.audit)"')" "201 2 true" "POST /api/backups: 201, backup 2 (1 came from the role table), with the audit log"
api GET /api/backups "$TA"
is "$code $(j '[.backups[].id]|join(",")') $(j .dir)" "200 1,2 $BK" "GET /api/backups: both, and the directory"
api POST /api/backups/2/verify "$TA" ''
is "$code $(j '"\(.ok) \(.backup.id)"')" "200 true 2" "POST /api/backups/2/verify: ok"
api POST /api/backups/0/verify "$TA" ''
is "$code" 400 "verify backup 0: 400"
api POST /api/backups/x/verify "$TA" ''
is "$code" 400 "verify backup x: 400"

# --- audit -------------------------------------------------------------------
# 600 refusals pipelined on one connection (each an api.denied leaf), so
# that the log is longer than one export step
den=$($PY - "$HTTP_PORT" "$TV" <<'PY'
import re, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
one = ("GET /api/keys HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer %s\r\n\r\n" % sys.argv[2]).encode()
s.sendall(one * 600 + b"GET /api/health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
d = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    d += b
c = [x.decode() for x in re.findall(rb"HTTP/1\.1 (\d{3}) ", d)]
print("%d %s %s" % (len(c), " ".join(sorted(set(c[:-1]))), c[-1]))
PY
)
is "$den" "601 403 200" "600 pipelined refusals and a last request on one connection: 600 x 403, then 200"
# the refusals (api_audit) are not waited for: let them become durable
exp=$T_DIR/export.jsonl
export_now() {
	curl -s -H "Authorization: Bearer $TV" -o "$exp" -D "$T_DIR/eh" "$base/api/audit/export"
}
settle
ok $? "the audit log settles (every leaf durable)"
export_now
like "$(tr -d '\r' < "$T_DIR/eh")" 'Content-Type: application/x-ndjson' "GET /api/audit/export: application/x-ndjson"
grep -qi 'Transfer-Encoding: chunked' "$T_DIR/eh"
ok $? "  streamed with chunked coding"
jq -e . "$exp" >/dev/null 2>&1
ok $? "  every line is JSON"
N=$(wc -l < "$exp" | tr -d ' ')
api GET /api/status "$TV"
is "$(j .audit.durable_size)" "$N" "  one line per durable leaf ($N)"
ev_count() { jq -r "select(.event==\"$1\")|.event" "$exp" | wc -l | tr -d ' '; }
mut=$(jq -r 'select(.event|test("^(api\\.key\\.(create|delete)|batch\\.(created|pause|resume|cancel|seed\\.repeat)|state\\.(checkpoint|backup))$"))|.event' "$exp" | wc -l | tr -d ' ')
is "$mut" "$LEAVES_WANT" "each mutating call that succeeded left one leaf ($LEAVES_WANT)"
bad=$(jq -r 'select(.request.method != null and .request.method != "GET") | select((.actor.key // "") == "") | .event' "$exp")
is "$bad" "" "  every API leaf has actor.key"
is "$(jq -r 'select(.event=="api.key.create")|.actor.key+":"+.object.id' "$exp" | sort | tr '\n' ' ')" \
	"adm:k1 adm:k2 adm:k3 adm:k4 " "  api.key.create leaves name the admin key and the new key"
is "$(jq -r 'select(.event=="api.key.delete")|.actor.key+":"+.object.id+":"+.request.method+" "+.request.path' "$exp")" \
	"k3:k1:DELETE /api/keys/k1" "  the api.key.delete leaf names k3, the key and the request"
is "$(jq -r "select(.event==\"batch.created\" and .object.batch_id==$B1)|.actor.key+\":\"+.actor.role" "$exp")" \
	"ops:operator" "  batch.created of batch $B1 names ops (operator)"
is "$(jq -r "select(.event==\"batch.created\" and .object.batch_id==$H1)|.actor.key+\":\"+.object.channel" "$exp")" \
	"anonymous:signed" "  the signed webhook's batch: actor anonymous, channel signed"
is "$(jq -r "select(.event==\"batch.pause\" and .object.batch_id==$B1)|.actor.key+\":\"+.object.from+\":\"+.object.to" "$exp")" \
	"ops:queued:paused" "  batch.pause: key, from, to"
is "$(jq -r 'select(.event=="batch.created")|.object.batch_id' "$exp" | sort -n | uniq -d)" "" \
	"  no batch was created twice (the race made one leaf)"
is "$(jq -r 'select(.event=="state.backup")|.actor.key' "$exp" | sort -u)" adm "  state.backup leaves name adm"
den=$(jq -r 'select(.event=="api.denied" and .actor.key=="view" and .request.path=="/api/keys")|.outcome+":"+.reason' "$exp" | head -1)
is "$den" "refused:role" "a 403 (viewer, GET /api/keys) left an api.denied leaf"
is "$(jq -r 'select(.event=="api.denied" and .actor.key=="ops" and .request.path=="/api/backups" and .request.method=="POST")|.actor.role' "$exp" | head -1)" \
	operator "  and operator's POST /api/backups too, with its role"
is "$(jq -r 'select(.event=="batch.seed.refused")|.reason' "$exp" | sort -u | tr '\n' ',')" \
	"address,malformed signature,no key,no signature,role,signature mismatch,signature outside the replay window,signature seen before," \
	"webhook refusals are audited, each with its reason"
grep -q -e "$TA" -e "$TO" -e "$SECRET" -e "$K2" "$exp"
is "$?" 1 "no token or secret appears in the audit log"

# one leaf
L=$(grep -n '"api.key.delete"' "$exp" | head -1 | cut -d: -f1)
api GET "/api/audit/leaf/$((L - 1))" "$TV"
is "$code $(j '"\(.seq) \(.leaf.event)"')" "200 $((L - 1)) api.key.delete" "GET /api/audit/leaf/$((L - 1)): the api.key.delete leaf"
is "$(j .leaf_text)" "$(sed -n "${L}p" "$exp")" "  leaf_text is the export's line $L byte for byte"
is "$(j .leaf_hash)" "$(printf '\000%s' "$(j .leaf_text)" | sha256sum | cut -d' ' -f1)" "  leaf_hash = SHA-256(0x00 || leaf_text)"
api GET "/api/audit/leaf/$N" "$TV"
is "$code $(j .error.detail.durable_size)" "404 $N" "leaf $N (= the size): 404"
api GET /api/audit/leaf/abc "$TV"
is "$code" 400 "leaf abc: 400"
api GET /api/audit/leaf/18446744073709551616 "$TV"
is "$code" 404 "leaf 2^64: 404 (not a wrap to 0)"

# proofs, checked by t/merkle.py against the exported leaves
pf=$T_DIR/proofs
urls=
k=0
for sz in 1 2 3 7 $((N / 2)) $((N - 1)) "$N"; do
	for seq in 0 $((sz / 2)) $((sz - 1)); do
		k=$((k + 1))
		urls="$urls $base/api/audit/proof?seq=$seq&size=$sz -o $T_DIR/proof.$k.json"
	done
done
for pair in "1 $N" "2 $N" "3 7" "7 $N" "$((N / 2)) $N" "$((N - 1)) $N" "$N $N"; do
	# shellcheck disable=SC2086
	set -- $pair
	k=$((k + 1))
	urls="$urls $base/api/audit/consistency?from=$1&to=$2 -o $T_DIR/proof.$k.json"
done
set -f
# shellcheck disable=SC2086
curl -s -H "Authorization: Bearer $TV" $urls
set +f
jq -r 'if .path then "incl \(.seq) \(.size) \(if (.path|length) == 0 then "-" else (.path|join(",")) end)\nroot \(.size) \(.root)"
	else "cons \(.from) \(.to) \(if (.proof|length) == 0 then "-" else (.proof|join(",")) end)\nroot \(.from) \(.from_root)\nroot \(.to) \(.to_root)" end' \
	"$T_DIR"/proof.*.json > "$pf" 2>/dev/null
is "$(grep -c '^incl\|^cons' "$pf")" "$k" "$k proofs fetched (inclusion at sizes 1 to $N, consistency from 1 to $N)"
api GET "/api/audit/proof?seq=3" "$TV"
is "$(j .size)" "$N" "a proof without size= is for the durable size"
printf 'incl 3 %s %s\n' "$N" "$(j '.path|join(",")')" >> "$pf"
api GET "/api/audit/checkpoint" "$TV"
is "$code" 200 "GET /api/audit/checkpoint: 200"
csz=$(j .size)
like "$(j .note)" "^$(j .origin)" "  a signed note starting with the origin"
like "$(j .public_key)" "BEGIN PUBLIC KEY" "  and the public key"
printf 'root %s %s\n' "$csz" "$(j .root)" >> "$pf"
$PY "$MERKLE" check "$exp" "$pf" > "$T_DIR/merkle.out" 2>&1
ok $? "t/merkle.py: $(grep -c '^ok' "$T_DIR/merkle.out") inclusion, consistency and root checks recomputed and verified (RFC 9162)"
grep '^not ok' "$T_DIR/merkle.out" | head -5 | while read -r l; do diag "$l"; done

api GET "/api/audit/proof?seq=$N&size=$N" "$TV"
is "$code $(j .error.code)" "422 out_of_range" "proof of seq = size: 422"
api GET "/api/audit/proof?seq=0&size=$((N + 1))" "$TV"
is "$code $(j .error.detail.durable_size)" "422 $N" "proof in a tree larger than the log: 422"
api GET "/api/audit/proof" "$TV"
is "$code $(j .error.detail.parameter)" "400 seq" "proof without seq: 400"
api GET "/api/audit/proof?seq=x" "$TV"
is "$code" 400 "proof with seq=x: 400"
api GET "/api/audit/consistency?from=0" "$TV"
is "$code" 400 "consistency from=0: 400"
api GET "/api/audit/consistency?from=5&to=4" "$TV"
is "$code" 422 "consistency from > to: 422"
api GET "/api/audit/consistency?from=1&to=$((N + 5))" "$TV"
is "$code" 422 "consistency to beyond the log: 422"

curl -s --http1.0 -H "Authorization: Bearer $TV" -D "$T_DIR/h10" -o "$T_DIR/export.10" "$base/api/audit/export"
cmp -s "$T_DIR/export.10" "$exp" && ! grep -qi '^Transfer-Encoding' "$T_DIR/h10" &&
    grep -qi '^Connection: close' "$T_DIR/h10"
ok $? "an HTTP/1.0 export: the same bytes, not chunked, ended by the close"
like "$N" '^([6-9][0-9][0-9]|[0-9]{4,})$' "  the log ($N leaves) took more than one export step (512)"

# the zstd export
curl -s -H "Authorization: Bearer $TV" -o "$T_DIR/export.zst" -D "$T_DIR/zh" "$base/api/audit/export?zstd=1"
like "$(tr -d '\r' < "$T_DIR/zh")" 'Content-Type: application/zstd' "export?zstd=1: application/zstd"
is "$(head -c 4 "$T_DIR/export.zst" | od -An -tx1 | tr -d ' \n')" 28b52ffd "  zstd magic 28 b5 2f fd"
zstd -dcq "$T_DIR/export.zst" > "$T_DIR/export.unz" 2>/dev/null &&
cmp -s "$T_DIR/export.unz" "$exp"
ok $? "  decompresses to the plain export byte for byte"
api GET "/api/audit/export?from=$((N - 2))" "$TV"
is "$out" "$(tail -2 "$exp")" "export?from=$((N - 2)): the last two lines"
api GET "/api/audit/export?from=$((N + 100))" "$TV"
is "$code:$out" "200:" "export from beyond the end: 200, empty"
api GET "/api/audit/export?zstd=2" "$TV"
is "$code $(j .error.detail.parameter)" "400 zstd" "export?zstd=2: 400"
api GET "/api/audit/export?from=x" "$TV"
is "$code" 400 "export?from=x: 400"

# --- checkpoints and a restore over the API ----------------------------------
api POST /api/checkpoints "$TO" '{"name":"cp1"}'
is "$code $(j '"\(.checkpoint.name) \(.checkpoint.complete) \(.checkpoint.reason)"')" "201 cp1 true request" \
	"POST /api/checkpoints cp1 (operator): 201, complete"
cp_size=$(j .checkpoint.audit_size)
api POST /api/checkpoints "$TO" '{"name":"cp1"}'
is "$code $(j .error.code)" "409 exists" "the same name again: 409"
for nm in '../x' '.hidden' 'a b' 'x.json' ''; do
	api POST /api/checkpoints "$TO" "{\"name\":\"$nm\"}"
	is "$code $(j .error.detail.field)" "422 name" "checkpoint name \"$nm\": 422"
done
api POST /api/checkpoints "$TO" '{"name":7}'
is "$code" 422 "a name that is not a string: 422"
api GET /api/checkpoints "$TV"
is "$code $(j '[.checkpoints[]|select(.name=="cp1")|.audit_size]|join(",")')" "200 $cp_size" "GET /api/checkpoints lists cp1 with its audit size"
api POST /api/checkpoints/cp1/restore "$TO" ''
is "$code" 403 "restore as operator: 403"
api POST /api/checkpoints/nosuch/restore "$TA" ''
is "$code $(j .error.code)" "404 not_found" "restore a missing checkpoint: 404"
api POST /api/checkpoints/.x/restore "$TA" ''
is "$code" 422 "restore a bad name: 422"
api POST /api/batches "$TO" "{$S,\"external_id\":\"after-cp1\",\"patient_id\":\"P7\"}"
is "$code" 201 "a batch created after cp1: 201"
BA=$(j .batch_id)
export_now
cp "$exp" "$T_DIR/before.jsonl"
NB=$(wc -l < "$exp" | tr -d ' ')
pid0=$DAEMON_PID
api POST /api/checkpoints/cp1/restore "$TA" ''
is "$code $(j '"\(.restore.name) \(.restore.state)"')" "202 cp1 pending" "POST /api/checkpoints/cp1/restore (admin): 202, pending"
wait_until 20 sh -c "[ \$(grep -c ' info ready ' '$T_DIR/daemon.log') -ge 2 ]"
ok $? "the daemon drains, re-executes itself and is ready again"
grep -q 'restarting reason=restore' "$T_DIR/daemon.log" && grep -q 'restore-done checkpoint=cp1' "$T_DIR/daemon.log"
ok $? "  its log: restarting, restore-done checkpoint=cp1"
kill -0 "$pid0" 2>/dev/null && [ "$(readlink "/proc/$pid0/exe")" = "$(readlink -f "$VNAMIGD")" ]
ok $? "  the same process (pid $pid0), a new image of vnamigd (execv)"
ports
base="http://127.0.0.1:$HTTP_PORT"
api GET /api/health ""
is "$code $(j .status)" "200 ok" "  GET /api/health: 200 ok"
api GET "/api/batches/$BA" "$TV"
is "$code" 404 "the batch made after cp1 is gone (404)"
api GET "/api/batches/$B1" "$TV"
is "$code" 200 "  one made before is there"
api POST /api/batches "$TO" "{$S,\"external_id\":\"after-cp1\",\"patient_id\":\"P7\"}"
is "$code" 201 "  and its external_id is new again (201)"
export_now
head -n "$NB" "$exp" | cmp -s - "$T_DIR/before.jsonl"
ok $? "the audit log still holds every leaf from before the restore, unchanged"
like "$(sed -n "$((NB + 1)),\$p" "$exp" | jq -r .event | tr '\n' ' ')" "state.restore.requested .*state.restored " \
	"  followed by state.restore.requested and state.restored"
is "$(jq -r 'select(.event=="state.restore.requested")|.actor.key+":"+.object.name' "$exp")" "adm:cp1" \
	"  state.restore.requested names adm and cp1"
is "$(jq -r 'select(.event=="state.restored")|.object.checkpoint+":"+(.object.audit_size|tostring)' "$exp")" "cp1:$cp_size" \
	"  state.restored names cp1 and its audit size"
N2=$(wc -l < "$exp" | tr -d ' ')
api GET "/api/audit/consistency?from=$NB&to=$N2" "$TV"
printf 'cons %s %s %s\nroot %s %s\n' "$NB" "$N2" "$(j '.proof|join(",")')" "$N2" "$(j .to_root)" > "$pf"
api GET "/api/audit/proof?seq=$((N2 - 1))" "$TV"
printf 'incl %s %s %s\n' "$((N2 - 1))" "$N2" "$(j '.path|join(",")')" >> "$pf"
$PY "$MERKLE" check "$exp" "$pf" > "$T_DIR/merkle.out" 2>&1
ok $? "  the log after the restore is consistent with the one before (t/merkle.py)"

# --- /metrics ------------------------------------------------------------------
for i in 1 2 3; do api GET /api/openapi.json "$TV"; done
jq -e '.paths' "$T_DIR/b" >/dev/null 2>&1
ok $? "GET /api/openapi.json: the API description"
for i in 1 2; do api GET /api/openapi.json ""; done
$PY - "$HTTP_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET /api/health HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx")
s.recv(4096)
PY
api GET /metrics "$TV"
is "$code" 200 "GET /metrics (viewer): 200"
like "$(hdr Content-Type)" '^text/plain; version=0\.0\.4' "  Prometheus text format 0.0.4"
printf '%s\n' "$out" > "$T_DIR/metrics"
$PY - "$T_DIR/metrics" > "$T_DIR/metrics.bad" <<'PY'
import re, sys
name = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*"'
sample = re.compile(r'^(%s)(\{%s(?:,%s)*\})? ([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|NaN|Inf)|[-+]Inf)( -?[0-9]+)?$' % (name, label, label))
meta = re.compile(r'^# (HELP %s .*|TYPE %s (counter|gauge|histogram|summary|untyped))$' % (name, name))
n = 0
for line in open(sys.argv[1]):
    line = line.rstrip('\n')
    if not line:
        continue
    if line.startswith('#'):
        if not meta.match(line):
            print(line)
        continue
    n += 1
    if not sample.match(line):
        print(line)
PY
is "$(head -5 "$T_DIR/metrics.bad")" "" "  every line parses (HELP/TYPE or a sample)"
is "$(grep -c '^vnamig_http_requests_total{' "$T_DIR/metrics" | tr -d ' ')" "$(grep '^vnamig_http_requests_total{' "$T_DIR/metrics" | sort -u | wc -l | tr -d ' ')" \
	"  no series twice"
grep -q '^# TYPE vnamig_http_requests_total counter' "$T_DIR/metrics"
ok $? "  vnamig_http_requests_total is a counter"
is "$(sed -n 's/^vnamig_http_requests_total{route="openapi",status="200"} //p' "$T_DIR/metrics")" 3 \
	"  route openapi, status 200: 3 (this process)"
is "$(sed -n 's/^vnamig_http_requests_total{route="openapi",status="401"} //p' "$T_DIR/metrics")" 2 \
	"  route openapi, status 401: 2"
is "$(sed -n 's/^vnamig_http_requests_total{route="batches.get",status="404"} //p' "$T_DIR/metrics")" 1 \
	"  route batches.get, status 404: 1"
is "$(sed -n 's/^vnamig_http_requests_total{route="-",status="400"} //p' "$T_DIR/metrics")" 1 \
	"  route \"-\" (refused by the parser), status 400: 1"
grep -q '^vnamig_http_request_seconds_bucket{route="openapi",le="+Inf"} 5$' "$T_DIR/metrics"
ok $? "  vnamig_http_request_seconds histogram for openapi: 5 in +Inf"
api GET /metrics ""
is "$code" 401 "GET /metrics without a key (metrics_open false): 401"

# --- clients that hang up, and pipelining ----------------------------------------
$PY - "$HTTP_PORT" "$TO" <<'PY'
import socket, struct, sys
port, tok = int(sys.argv[1]), sys.argv[2]
def req(body, path="/api/batches"):
    return ("POST %s HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (path, tok, len(body), body)).encode()
seed = '{"source":"src","target":"dst","external_id":"gone-%d","patient_id":"P"}'
for i in range(30):
    s = socket.create_connection(("127.0.0.1", port))
    # the same seed from several clients: waiters on one commit
    s.sendall(req(seed % (i // 3)) + (req(seed % 99) if i % 2 else b""))
    if i % 2:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
for i in range(5):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /api/audit/export HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
              + tok.encode() + b"\r\n\r\n")
    s.recv(10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(req('{"source":"src","target":"dst","patient_id":"P"}')[:-10])
s.close()
PY
sleep 0.5
kill -0 "$DAEMON_PID" 2>/dev/null
ok $? "clients that send a POST and hang up before the answer (also mid-stream, mid-body): vnamigd lives"
api GET /api/status "$TV"
is "$code $(j .ready)" "200 true" "  and keeps serving"
api POST /api/batches "$TO" '{"source":"src","target":"dst","external_id":"gone-1","patient_id":"P"}'
like "$code" '^20[01]$' "  a seed whose first senders hung up still works ($code)"

pipe=$($PY - "$HTTP_PORT" "$TO" "$TV" <<'PY'
import json, re, socket, sys
port, op, vw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def req(m, path, tok, body=None, close=False):
    h = "%s %s HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer %s\r\n" % (m, path, tok)
    if body is not None:
        h += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    if close:
        h += "Connection: close\r\n"
    return (h + "\r\n" + (body or "")).encode()
seed = '{"source":"src","target":"dst","external_id":"pipe-1","patient_id":"P"}'
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(req("POST", "/api/batches", op, seed) + req("GET", "/api/status", vw)
          + req("POST", "/api/batches", op, seed) + req("GET", "/api/keys", vw)
          + req("GET", "/api/audit/export", vw) + req("GET", "/api/health", vw, close=True))
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
codes = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
ids = re.findall(rb'"batch_id":(\d+),"created"', data)
print(" ".join(c.decode() for c in codes), "ids", " ".join(i.decode() for i in ids))
PY
)
like "$pipe" '^201 200 200 403 200 200 ids ([0-9]+) \1$' \
	"six pipelined requests (two waiting on commits, one streamed): answered in order, one batch"

stop_daemon
is "$DAEMON_RC" 0 "vnamigd exits 0 on SIGTERM"

# --- HTTPS; metrics_open; no backup_dir; a small body limit; low disk ------------
d=$T_DIR/pki
mkdir -p "$d"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$d/ca.key" -out "$d/ca.crt" -days 2 -subj "/CN=vnamig test ca" 2>/dev/null &&
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$d/server.key" -out "$d/server.csr" -subj /CN=127.0.0.1 2>/dev/null &&
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$d/server.ext" &&
openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
	-CAcreateserial -days 2 -out "$d/server.crt" -extfile "$d/server.ext" 2>/dev/null
ok $? "test CA and server certificate made with openssl"
conf2=$T_DIR/tls.yaml
printf '%s\n' "$SECRET-from-a-file" > "$T_DIR/hook.secret"
api_conf "$conf2" ", tls: { cert: $d/server.crt, key: $d/server.key }" "" \
	"  health_open: false
  metrics_open: true
  webhooks:
    - { channel: filed, hmac_secret_file: $T_DIR/hook.secret }" "  http_body: 1KiB" 2
start_daemon "$conf2" || { fail "vnamigd starts with TLS"; done_testing; }
pass "vnamigd starts with an HTTPS listener"
base="https://127.0.0.1:$HTTP_PORT"
CURLX="--cacert $d/ca.crt"
api GET /api/status "$TV"
is "$code $(j .ready)" "200 true" "HTTPS with curl --cacert: GET /api/status 200"
api GET /api/health ""
is "$code" 401 "api.health_open false: GET /api/health without a key is 401"
api GET /api/health "$TV"
is "$code" 200 "  with a key: 200"
api GET /metrics ""
is "$code" 200 "api.metrics_open: GET /metrics without a key is 200"
api POST /api/batches "$TO" "{$S,\"patient_id\":\"$(head -c 2000 /dev/zero | tr '\0' p)\"}"
is "$code" 413 "limits.http_body 1 KiB: a 2 KB batch is 413"
api POST /api/batches "$TO" "{$S,\"patient_id\":\"P1\"}"
is "$code" 201 "  a small one is 201"
for r in "GET /api/backups" "POST /api/backups" "POST /api/backups/1/verify"; do
	# shellcheck disable=SC2086
	set -- $r
	if [ "$1" = GET ]; then api GET "$2" "$TA"; else api POST "$2" "$TA" ''; fi
	is "$code $(j .error.code)" "409 not_configured" "$r without storage.backup_dir: 409 not_configured"
done
hb="{$S,\"patient_id\":\"PF\"}"
t=$(date +%s)
fsig="t=$t,v1=$(printf '%s.%s' "$t" "$hb" | openssl dgst -sha256 -hmac "$SECRET-from-a-file" | awk '{print $NF}')"
# shellcheck disable=SC2086
code=$(curl -s $CURLX -o "$T_DIR/b" -w '%{http_code}' -H "X-Vnamig-Signature: $fsig" -H "Authorization: Bearer $TO" \
    -H 'Content-Type: application/json' --data-binary "$hb" "$base/api/batch_sources/webhook/filed")
is "$code $(jq -r .batch.channel "$T_DIR/b")" "201 filed" \
	"a channel with hmac_secret_file (the file's newline not part of it) and a key: 201 over HTTPS"
# shellcheck disable=SC2086
code=$(curl -s $CURLX -o "$T_DIR/b" -w '%{http_code}' -H "X-Vnamig-Signature: $fsig" \
    -H 'Content-Type: application/json' --data-binary "$hb" "$base/api/batch_sources/webhook/filed")
is "$code $(jq -r .error.code "$T_DIR/b")" "401 unauthorized" "  a good signature without the key on a channel that is not anonymous: 401"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/api/status")
[ "$code" != 200 ]
ok $? "plain HTTP on the HTTPS port gets no answer (code $code)"
CURLX=
api GET /api/status "$TV"
[ "$code" = 000 ]
ok $? "curl without --cacert cannot verify the server and gives up"
CURLX="--cacert $d/ca.crt"
api GET /api/status "$TV"
is "$code" 200 "HTTPS still serves"
stop_daemon
is "$DAEMON_RC" 0 "vnamigd (TLS) exits 0"

# the store below storage.min_free: changes are refused with 503
conf3=$T_DIR/low.yaml
api_conf "$conf3" "" "" "" "" 3
sed -i 's/min_free: 1MiB/min_free: 1048576GiB/' "$conf3"
CURLX=
start_daemon "$conf3" || { fail "vnamigd starts with no room"; done_testing; }
base="http://127.0.0.1:$HTTP_PORT"
api GET /api/health ""
is "$code $(j .status)" "503 degraded" "below storage.min_free: GET /api/health 503 degraded"
api POST /api/batches "$TO" "{$S,\"patient_id\":\"P1\"}"
is "$code $(j .error.code) $(hdr Retry-After)" "503 store_unavailable 10" "POST /api/batches: 503 store_unavailable, Retry-After"
api POST /api/keys "$TA" '{"id":"kx","role":"viewer"}'
is "$code" 503 "POST /api/keys: 503"
api GET /api/keys "$TA"
is "$(j '[.keys[]|select(.id=="kx")]|length')" 0 "  and no key was made"
api GET /api/batches "$TV"
is "$code" 200 "reads still work (GET /api/batches 200)"
stop_daemon
is "$DAEMON_RC" 0 "vnamigd exits 0"

done_testing
