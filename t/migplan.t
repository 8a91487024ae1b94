#!/bin/sh
# migplan.t — plans (src/api/api_plan.c, the engine's plan gate): a named
# migration that batches join, taking its source, target, priority and
# order; pause and resume (kept across a restart), cancel (its batches
# cancelled by the engine, no batch joins any more). DCMTK's dcmqrscp is
# the source, an export tree the target.
#
#   a  POST /api/plans: 201, the record; refusals (422 naming the field)
#   b  a batch with plan_id only: source, target, priority, order from
#      the plan; it migrates
#   c  pause the plan: a new batch of it stays queued while a batch
#      without a plan migrates; a pause checkpoint is taken; 409 for a
#      second pause; a restart keeps the plan paused; resume: it migrates
#   d  cancel: a queued batch of the plan (its source paused) ends
#      cancelled; a new batch cannot join (422); resume is refused (409)
#   e  GET /api/plans and /api/plans/{id}: the batches by state
#   f  vnamigctl plan create, submit --plan, plans, plan pause (twice:
#      exit 3), plan ID, plan resume
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
export LC_ALL=C

EX=$T_DIR/export
trap 'stop_peers; cleanup' EXIT

legacy_to_export 2

# state ID: the batch's state now.
bstate() { api GET "/api/batches/$1"; j '.batch.state'; }

# ---- a ----
api POST /api/plans '{"name":"legacy to disk","source":"legacy","target":"disk","priority":7,"order":"newest_first","description":"the CT archive"}'
P=$(j '.plan.id')
is "$code $(j '.plan.state') $(j '.plan.priority') $(j '.plan.order')" \
    "201 active 7 newest_first" "a: plan $P created: active, priority 7, newest_first"
api GET "/api/plans/$P"
is "$code" 200 "a: GET /api/plans/$P: 200"
for p in "+$P" "%20$P" "000$P" "-$(echo "18446744073709551616 - $P" | bc)"; do
	api GET "/api/plans/$p"
	is "$code" 404 "a: /api/plans/$p: 404, not plan $P"
done
for case in 'name|{"source":"legacy","target":"disk"}' \
    'source|{"name":"x","source":"disk","target":"disk"}' \
    'target|{"name":"x","source":"legacy","target":"legacy"}' \
    'priority|{"name":"x","source":"legacy","target":"disk","priority":10}' \
    'order|{"name":"x","source":"legacy","target":"disk","order":"random"}' \
    'colour|{"name":"x","source":"legacy","target":"disk","colour":"red"}'; do
	f=${case%%|*}
	api POST /api/plans "${case#*|}"
	is "$code $(j '.error.detail.field')" "422 $f" "a: a plan with a bad $f refused (422, naming it)"
done

# ---- b ----
submit "b: a batch with plan_id only" "{\"plan_id\":$P,\"accession_numbers\":[\"ACC001\",\"ACC002\"]}"
b_b=$BID
api GET "/api/batches/$b_b"
is "$(j '[.batch.source, .batch.target, .batch.priority, .batch.order, .batch.plan_id] | map(tostring) | join(" ")')" \
    "legacy disk 7 newest_first $P" "b: source, target, priority and order from the plan"
wait_batch "$b_b" 30
is "$BSTATE" done "b: it migrates"
report "$b_b"
is "$(rj "$b_b" '.summary.migrated')" 4 "b: 4 instances migrated"
api POST /api/batches '{"plan_id":999,"accession_numbers":["ACC003"]}'
is "$code $(j '.error.detail.field')" "422 plan_id" "b: an unknown plan_id refused"

# ---- c ----
api POST "/api/plans/$P/pause" '{"reason":"night only"}'
is "$code $(j '.plan.state') $(j '.plan.reason')" "200 paused night only" "c: paused, with its reason"
api POST "/api/plans/$P/pause"
is "$code" 409 "c: a second pause: 409"
ls "$T_DIR/var/checkpoints" 2>/dev/null | grep -q "^pause-plan-$P-"
ok $? "c: a checkpoint pause-plan-$P-… was taken"
submit "c: a batch of the paused plan" "{\"plan_id\":$P,\"accession_numbers\":[\"ACC003\"]}"
b_c=$BID
submit "c: a batch without a plan" '{"source":"legacy","target":"disk","accession_numbers":["ACC004"]}'
b_free=$BID
wait_batch "$b_free" 30
is "$BSTATE" done "c: the batch without a plan migrates meanwhile"
sleep 1
is "$(bstate "$b_c")" queued "c: the paused plan's batch is still queued"
stop_daemon
start_daemon "$conf" || mig_bail "vnamigd starts again"
base="http://127.0.0.1:$HTTP_PORT"
sleep 1
is "$(bstate "$b_c")" queued "c: after a restart the plan is still paused, its batch queued"
api POST "/api/plans/$P/resume"
is "$code $(j '.plan.state')" "200 active" "c: resumed"
wait_batch "$b_c" 30
is "$BSTATE" done "c: the plan's batch then migrates"

# ---- d ----
api POST /api/sources/legacy/pause
is "$code" 200 "d: the source paused, to hold the next batch"
submit "d: a batch of the plan" "{\"plan_id\":$P,\"accession_numbers\":[\"ACC005\"]}"
b_d=$BID
api POST "/api/plans/$P/cancel" '{"reason":"moved to another plan"}'
is "$code $(j '.plan.state')" "200 cancelled" "d: cancelled"
n=0
while [ "$(bstate "$b_d")" != cancelled ] && [ $n -lt 50 ]; do
	sleep 0.2
	n=$((n + 1))
done
is "$(bstate "$b_d")" cancelled "d: its queued batch is cancelled by the engine"
api POST /api/batches "{\"plan_id\":$P,\"accession_numbers\":[\"ACC006\"]}"
is "$code $(j '.error.detail.field')" "422 plan_id" "d: no batch joins a cancelled plan"
api POST "/api/plans/$P/resume"
is "$code" 409 "d: a cancelled plan does not resume"
api POST /api/sources/legacy/resume

# ---- e ----
api GET "/api/plans/$P"
is "$(j '.plan.batches.by_state | to_entries | map("\(.key)=\(.value)") | sort | join(" ")')" \
    "cancelled=1 done=2" "e: the plan's batches by state: 2 done, 1 cancelled"
is "$(j '.plan.batches.ids | sort | map(tostring) | join(" ")')" \
    "$(printf '%s\n' "$b_b" "$b_c" "$b_d" | sort -n | tr '\n' ' ' | sed 's/ $//')" \
    "e: and their ids"
api GET /api/plans
is "$(j '.plans | length') $(j '.plans[0].id')" "1 $P" "e: GET /api/plans lists it"
api GET /api/plans/77
is "$code" 404 "e: an unknown plan: 404"

# ---- f: vnamigctl ----
CTL="${VNAMIGCTL:-$top_builddir/src/ctl/vnamigctl}"
ctl() { "$CTL" --url "$base" --key "$TOK" "$@"; }
out=$(ctl plan create "second" --source legacy --target disk --priority 3 2>&1)
like "$out" "^plan [0-9]+ created: legacy -> disk, priority 3, oldest_first" \
    "f: vnamigctl plan create"
P2=$(printf '%s' "$out" | sed 's/^plan \([0-9]*\) .*/\1/')
out=$(ctl submit --plan "$P2" --accession ACC006 2>&1)
like "$out" "^batch [0-9]+ created: queued, legacy -> disk, 1 accession" \
    "f: vnamigctl submit --plan takes the plan's peers"
out=$(ctl plans 2>&1)
like "$out" "$P2 +second +legacy +disk +3 +oldest_first +active" "f: vnamigctl plans lists it"
out=$(ctl plan pause "$P2" --reason "f test" 2>&1)
is "$out" "plan $P2: paused" "f: vnamigctl plan pause"
ctl plan pause "$P2" >/dev/null 2>&1
is "$?" 3 "f: pausing it again: exit 3 (409)"
out=$(ctl plan "$P2" 2>&1)
like "$out" "reason +f test" "f: vnamigctl plan ID shows the reason"
ctl plan resume "$P2" >/dev/null 2>&1
is "$?" 0 "f: vnamigctl plan resume"
# a cancel and a pause sent at once on two connections: the pause is
# refused, or comes first; a cancel answered 200 is never undone (both
# were checked against the durable record, and the last written won)
out=$(/usr/bin/python3 - "$HTTP_PORT" "$TOK" "$P2" <<'PYRACE'
import socket, sys
port, tok, plan = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def rq(verb):
    return ('POST /api/plans/%s/%s HTTP/1.1\r\nHost: a\r\nAuthorization: '
            'Bearer %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'
            % (plan, verb, tok)).encode()
a = socket.create_connection(('127.0.0.1', port))
b = socket.create_connection(('127.0.0.1', port))
a.sendall(rq('cancel'))
b.sendall(rq('pause'))
def status(s):
    d = b''
    while True:
        c = s.recv(65536)
        if not c:
            break
        d += c
    return d.split(b' ')[1].decode()
print(status(a), status(b))
PYRACE
)
state=$(curl -s -H "Authorization: Bearer $TOK" "$base/api/plans/$P2" | jq -r .plan.state)
case "${out%% *}:$state" in
200:cancelled|409:*) pass "f: a cancel and a pause at once: $out, the plan $state" ;;
*) fail "f: a cancel and a pause at once: $out, the plan $state (a cancel answered 200 was undone)" ;;
esac
out=$(ctl plan pause " $P2" 2>&1)
is "$?" 1 "f: a plan ID with a space before it is refused (it went into the request line)"
like "$out" "plan ID \" $P2\" is not a number" "  saying so"

stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
! grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$T_DIR/daemon.log"
ok $? "no sanitizer report in vnamigd's log"
stop_peers
done_testing
