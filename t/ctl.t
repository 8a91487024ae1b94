#!/bin/sh
# t/ctl.t — vnamigctl against a real vnamigd, each command's exit status,
# table and --json output checked against curl's view of the same route:
# status, health, batches (pages, filters), submit (idempotent, refused),
# pause/resume/cancel, node and sources (pause, resume), quarantine (list,
# pages and actions, against the daemon and a fake with items), report
# --csv byte for byte, hl7 (ingest of a file of two messages, one refused:
# its lines and exit 7; the inbox and its filters; preview), keys, checkpoints, backups, metrics, watch (all,
# or one batch to its end); configuration precedence (flag > environment > ctl.yaml) and the
# refusal of a ctl.yaml or key file others may read; a wrong key (exit 3),
# a dead port (exit 2), HTTPS with --cacert / untrusted / --insecure; the
# audit witness: first use recorded, a real consistency proof after more
# activity, a tampered state file, a size going backwards, a foreign key
# and a proxy that corrupts proofs all exit 5; and a restore asked for
# with --yes, after which the daemon comes back and the witness still
# verifies the (whole) audit log.
. "$top_srcdir/t/lib.sh"

CTL="${VNAMIGCTL:-$top_builddir/src/ctl/vnamigctl}"
HOME=$T_DIR/home
export HOME
mkdir -p "$HOME/.config/vnamig"
unset VNAMIG_URL VNAMIG_KEY XDG_CONFIG_HOME
OPS=plain-for-tests
ADM=admin-token-for-tests

conf=$T_DIR/vnamigd.yaml
# An HL7 sender whose orders make batches from the source (window: never:
# they stay queued).
write_conf "$conf" "hl7:
  senders:
    - { name: ris, app: RIS, source: legacy, target: vna }"
# An admin key, a target peer, a backup directory.
sed -i -e "s|^    - { id: ops, role: operator, token: \"$OPS\" }|&\n    - { id: root, role: admin, token: \"$ADM\" }|" \
	-e 's|^  - { name: legacy, .*|&\n  - { name: vna, ae_title: VNA, host: 127.0.0.1, port: 11114, role: target }|' \
	-e "s|^storage:|storage:\n  backup_dir: $T_DIR/backups|" "$conf"
start_daemon "$conf" || { fail "vnamigd starts"; done_testing; }
pass "vnamigd starts"
base="http://127.0.0.1:$HTTP_PORT"

# c ARGS...: vnamigctl with the operator key; $out, $err, $rc.
c() {
	out=$("$CTL" --url "$base" --key "$OPS" "$@" 2>"$T_DIR/err")
	rc=$?
	err=$(cat "$T_DIR/err")
}
# a ARGS...: the same with the admin key.
a() {
	out=$("$CTL" --url "$base" --key "$ADM" "$@" 2>"$T_DIR/err")
	rc=$?
	err=$(cat "$T_DIR/err")
}
# raw ARGS...: vnamigctl with nothing added (configuration tests).
raw() {
	out=$("$CTL" "$@" 2>"$T_DIR/err")
	rc=$?
	err=$(cat "$T_DIR/err")
}
# envraw VAR=VALUE ARGS...: the same with one more environment variable.
envraw() {
	e=$1
	shift
	out=$(env "$e" "$CTL" "$@" 2>"$T_DIR/err")
	rc=$?
	err=$(cat "$T_DIR/err")
}
# cu [KEY] PATH: curl's view of GET PATH, keys sorted.
cu() {
	k=$OPS
	[ $# -gt 1 ] && { k=$1; shift; }
	curl -s -H "Authorization: Bearer $k" "$base$1" | jq -S .
}
sorted() { printf '%s' "$1" | jq -S . 2>/dev/null; }

# --- the command line ----------------------------------------------------
raw --help
is "$rc" 0 "--help: exit 0"
for s in NAME SYNOPSIS COMMANDS OPTIONS FILES ENVIRONMENT "EXIT STATUS" EXAMPLES; do
	printf '%s\n' "$out" | grep -qx "$s"
	ok $? "  has $s"
done
raw batches --help
ok "$([ "$rc" = 0 ] && printf '%s' "$out" | grep -q 'vnamigctl \[OPTIONS\] batches \[--state S\]'; echo $?)" \
	"batches --help: that command's synopsis"
raw --help
for s in 'node' 'node pause \[--reason R\]' 'node resume \[--reason R\]' 'sources' 'source NAME' \
    'source pause NAME \[--reason R\]' 'source resume NAME \[--reason R\]' \
    'quarantine \[--reason R\] \[--batch ID\] \[--limit N\] \[--all\]' 'quarantine show ID' \
    'quarantine retry ID \[--note N\]' 'quarantine reject ID \[--note N\]' 'report ID \[--csv\]' \
    'watch \[ID\] \[--interval S\] \[--count N\]' \
    'hl7 messages \[--sender S\] \[--type T\] \[--ack AA\|AE\|AR\] \[--limit N\] \[--all\]' \
    'hl7 ingest FILE\|-' 'hl7 preview FILE\|-'; do
	printf '%s\n' "$out" | grep -Eqx "    $s"
	ok $? "  --help describes: $s"
done
raw quarantine retry --help
ok "$([ "$rc" = 0 ] && printf '%s' "$out" | grep -q 'vnamigctl \[OPTIONS\] quarantine retry ID \[--note N\]'; echo $?)" \
	"quarantine retry --help: that command's synopsis (two words)"
raw frobnicate
is "$rc" 1 "unknown command: exit 1"
like "$err" 'unknown command "frobnicate"' "  naming it"
raw keys --limit 3
is "$rc" 1 "an option of another command: exit 1"
like "$err" '--limit does not go with "keys"' "  saying which"
raw batch nine
is "$rc" 1 "a batch ID that is not a number: exit 1"

# --- status, health ------------------------------------------------------
c status
is "$rc" 0 "status: exit 0"
like "$out" "^version +$(cu /api/status | jq -r .version)$" "  version as the server says"
like "$out" "^ready +yes" "  ready"
like "$out" "^audit +size [0-9]+, durable [0-9]+" "  audit sizes"
c --json status
is "$(printf '%s' "$out" | jq -r '.node + " " + (.ready|tostring)')" \
	"$(cu /api/status | jq -r '.node + " " + (.ready|tostring)')" "status --json: the server's JSON"
c health
is "$rc" 0 "health: exit 0"
like "$out" "^status +ok$" "  status ok"
like "$out" "^listeners.http.port +$HTTP_PORT$" "  nested members flattened"
c health --json
is "$(printf '%s' "$out" | jq -r .status)" ok "health --json"

# --- submit, batches -----------------------------------------------------
c submit --source legacy --target vna --accession A1 --accession A2 --external-id RIS-1 --name first
is "$rc" 0 "submit: exit 0"
like "$out" "^batch [0-9]+ created: queued, legacy -> vna, 2 accession" "  says what was made"
id=$(printf '%s' "$out" | sed -n 's/^batch \([0-9]*\) created.*/\1/p')
c submit --source legacy --target vna --accession A1 --external-id RIS-1
is "$rc" 0 "submit again with the same external id: exit 0"
like "$out" "^batch $id exists already for external id RIS-1" "  the earlier batch, not a new one"
c submit --source pacs9 --target vna --accession A1
is "$rc" 3 "submit with an unknown peer: exit 3"
like "$err" "^vnamigctl: POST $base/api/batches: 422 invalid_field: source: no peer named \"pacs9\"" \
	"  one line: method, URL, status, code, message"
c submit --source legacy --accession A1
is "$rc" 1 "submit without --target: exit 1"
printf '{"external_id": "F-1", "accession_numbers": ["F1", "F2", "F3"], "patient_id": "P7"}\n' >"$T_DIR/seed.json"
c submit --file "$T_DIR/seed.json" --source legacy --target vna --priority 7 --force-full-repull
is "$rc" 0 "submit --file with flags over it"
fid=$(printf '%s' "$out" | sed -n 's/^batch \([0-9]*\) created.*/\1/p')
is "$(cu "/api/batches/$fid" | jq -c '[.batch.priority, .batch.accession_numbers, .batch.patient_id, .batch.force_full_repull]')" \
	'[7,["F1","F2","F3"],"P7",true]' "  the server has the file's and the flags' fields"
c submit --source legacy --target vna --priority 12 --accession X
is "$rc" 1 "--priority 12: exit 1"

c batches
is "$rc" 0 "batches: exit 0"
like "$(printf '%s\n' "$out" | head -1)" "^ID +STATE +PRIO +SOURCE +TARGET" "  a table with headings"
like "$out" "^$id +queued +5 +legacy +vna " "  the batch's row"
c batches --json
is "$(sorted "$out")" "$(cu /api/batches)" "batches --json: as curl sees /api/batches"
c pause "$fid"
c batches --state paused --json
is "$(printf '%s' "$out" | jq -c '[.batches[].id]')" "$(cu '/api/batches?state=paused' | jq -c '[.batches[].id]')" \
	"batches --state paused: the server's filter"
c resume "$fid"

# More than a page (the server's is 100): --all follows "next".
set --
i=0
while [ $i -lt 105 ]; do set -- "$@" "$base/api/batches"; i=$((i + 1)); done
curl -s -H "Authorization: Bearer $OPS" -H 'Content-Type: application/json' \
	-d '{"source": "legacy", "target": "vna", "accession_numbers": ["M"]}' "$@" >/dev/null
total=$(($(cu '/api/batches?limit=1000' | jq '.batches | length')))
c batches
is "$(printf '%s\n' "$out" | tail -n +2 | wc -l | tr -d ' ')" 100 "batches: one page of 100 by default"
like "$err" "more batches after [0-9]+: use --all or --limit N" "  and a note that there are more"
c batches --all
is "$(printf '%s\n' "$out" | tail -n +2 | wc -l | tr -d ' ')" "$total" "batches --all: every one of the $total"
c batches --all --json
is "$(printf '%s' "$out" | jq -c '[.batches[].id]')" "$(cu '/api/batches?limit=1000' | jq -c '[.batches[].id]')" \
	"batches --all --json: the pages joined, in order"
c batches --limit 3
is "$(printf '%s\n' "$out" | tail -n +2 | wc -l | tr -d ' ')" 3 "batches --limit 3: three rows"

c batch "$id"
is "$rc" 0 "batch ID: exit 0"
like "$out" "^accession_numbers +A1,A2$" "  every field, lists joined"
like "$out" "^external_id +RIS-1$" "  the external id"
c batch "$id" --json
is "$(sorted "$out")" "$(cu "/api/batches/$id")" "batch --json: as curl sees it"
c report "$id"
is "$rc" 0 "report: exit 0"
like "$out" "STUDY_UID +STATE +EXPECTED +MIGRATED +SKIPPED +QUARANTINED +FAILED +REASON" "  the studies table"
like "$out" "^expected 0: migrated 0, .*100% accounted" "  the reconciliation line"
c report "$id" --json
is "$(sorted "$out")" "$(cu "/api/batches/$id/report")" "report --json: as curl sees it"
c batch 999999
is "$rc" 3 "batch that does not exist: exit 3"
like "$err" "GET $base/api/batches/999999: 404 not_found: " "  the server's code and message"

# --- pause, resume, cancel -----------------------------------------------
c pause "$id"
is "$rc:$out" "0:batch $id: paused" "pause: exit 0, paused"
c pause "$id"
is "$rc" 3 "pause twice: exit 3"
like "$err" "POST $base/api/batches/$id/pause: 409 invalid_transition: " "  409 with the server's words"
c resume "$id"
is "$rc:$out" "0:batch $id: queued" "resume: queued again"
c cancel "$id"
is "$rc:$out" "0:batch $id: cancelled" "cancel: cancelled"
is "$(cu "/api/batches/$id" | jq -r .batch.state)" cancelled "  as curl sees it"

# --- node, sources (peers with window: never: the engine starts nothing) ---
c node
is "$rc" 0 "node: exit 0"
like "$out" "^ae_title +VNAMIG$" "  the AE title"
like "$out" "^paused +no$" "  not paused"
like "$out" "^engine +studies [0-9]+/[0-9]+, instances [0-9]+/[0-9]+, .*, ETA " "  what the engine moves"
like "$out" "^active +batches [0-9]+, studies [0-9]+, associations out [0-9]+$" "  what is under way"
c node --json
is "$(printf '%s' "$out" | jq -c '.node | [.ae_title, .paused, .pause, (.engine | has("studies_total"))]')" \
	"$(cu /api/node | jq -c '.node | [.ae_title, .paused, .pause, (.engine | has("studies_total"))]')" \
	"node --json: the server's JSON"
c node pause --reason "PACS maintenance"
is "$rc" 0 "node pause --reason: exit 0"
like "$out" "^node: paused by ops at [0-9T:Z-]+: PACS maintenance$" "  who, when, why"
is "$(cu /api/node | jq -c '[.node.paused, .node.pause.by, .node.pause.reason]')" '[true,"ops","PACS maintenance"]' \
	"  as curl sees it"
c node
like "$out" "^paused +yes, by ops at [0-9T:Z-]+: PACS maintenance$" "node: paused, by whom and why"
c node pause
is "$rc" 3 "node pause twice: exit 3"
like "$err" "^vnamigctl: POST $base/api/node/pause: 409 invalid_transition: " "  409 with the server's words"
c node resume
is "$rc:$out" "0:node: not paused" "node resume: exit 0"
c node resume
is "$rc" 3 "node resume when not paused: exit 3 (409)"
c node pause --note x
is "$rc" 1 "node pause --note: exit 1"
c sources
is "$rc" 0 "sources: exit 0"
like "$(printf '%s\n' "$out" | head -1)" "^NAME +AE_TITLE +HOST +PORT +RETRIEVE +WINDOW +BREAKER +PAUSED +BY +SINCE +REASON$" \
	"  a table with headings"
like "$out" "^legacy +LEGACY +127\.0\.0\.1 +11113 +move +never +closed +no " "  the source's row, its window as configured, its breaker"
is "$(($(printf '%s\n' "$out" | wc -l) - 1))" "$(cu /api/sources | jq '.sources | length')" \
	"  one row per source (not the target)"
c sources --json
is "$(sorted "$out")" "$(cu /api/sources)" "sources --json: as curl sees it"
c source legacy
is "$rc" 0 "source NAME: exit 0"
like "$out" "^address +127\.0\.0\.1 port 11113$" "  its address"
like "$out" "^window +never$" "  its window"
like "$out" "^breaker +closed$" "  its breaker, closed (never failed)"
c source vna
is "$rc" 3 "source that is a target: exit 3"
like "$err" "GET $base/api/sources/vna: 404 not_found: " "  404 with the server's words"
c source pause legacy --reason "PACS maintenance"
is "$rc" 0 "source pause NAME --reason: exit 0"
like "$out" "^source legacy: paused by ops at [0-9T:Z-]+: PACS maintenance$" "  who, when, why"
c sources
like "$out" "^legacy .* yes +ops +[0-9T:Z-]+ +PACS maintenance$" "sources: paused, by whom, since, why"
is "$(cu /api/sources/legacy | jq -c '[.source.paused, .source.pause.reason]')" '[true,"PACS maintenance"]' \
	"  as curl sees it"
c source pause legacy
is "$rc" 3 "source pause twice: exit 3 (409)"
c source resume legacy
is "$rc:$out" "0:source legacy: not paused" "source resume: exit 0"
c source pause pacs9
is "$rc" 3 "source pause of an unknown source: exit 3 (404)"
c source pause
is "$rc" 1 "source pause without NAME: exit 1"
like "$err" "usage: vnamigctl source pause NAME \[--reason R\]" "  the usage line"

# --- quarantine: empty here; pages, items and actions from a fake below ----
c quarantine
is "$rc" 0 "quarantine: exit 0"
is "$out" "ID  BATCH  STUDY_UID  SOP_INSTANCE_UID  REASON  STATE  TIME  DETAIL" "  the headings, no rows"
c quarantine --json
is "$(sorted "$out")" "$(cu /api/quarantine)" "quarantine --json: as curl sees it"
c quarantine --batch "$id" --reason verify_mismatch --limit 5
is "$rc" 0 "quarantine --batch --reason --limit: exit 0"
c quarantine --batch x
is "$rc" 1 "quarantine --batch x: exit 1"
c quarantine show 424242
is "$rc" 3 "quarantine show of an unknown item: exit 3"
like "$err" "^vnamigctl: GET $base/api/quarantine/424242: 404 not_found: no quarantine item 424242$" \
	"  404, saying which"
c quarantine retry 424242 --note "target fixed"
is "$rc" 3 "quarantine retry of an unknown item: exit 3"
like "$err" "POST $base/api/quarantine/424242/retry: 404 not_found: " "  404"
c quarantine reject 424242
is "$rc" 3 "quarantine reject of an unknown item: exit 3"
like "$err" "POST $base/api/quarantine/424242/reject: 404 not_found: " "  404"
c quarantine show nine
is "$rc" 1 "quarantine show with an ID that is not a number: exit 1"
c quarantine reject 1 --reason x
is "$rc" 1 "quarantine reject --reason (it takes --note): exit 1"

# A fake quarantine of 5 items in pages of 2, that logs what it is asked.
cat >"$T_DIR/fakeq.py" <<'PY'
import http.server, json, sys, urllib.parse
log = open(sys.argv[1], "a")
items = [{"id": i, "batch": 7, "study_uid": "1.2.3.%d" % i,
          "series_uid": "1.2.3.%d.1" % i, "sop_instance_uid": "1.2.3.%d.1.1" % i,
          "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2", "reason": "verify_mismatch",
          "detail": "dataset digest differs", "status": None,
          "source_sha256": "ab" * 32, "target_sha256": "cd" * 32,
          "file": "/var/q/%d.dcm.zst" % i, "time": "2026-01-01T00:00:0%dZ" % i,
          "state": "open"} for i in range(5, 0, -1)]
class H(http.server.BaseHTTPRequestHandler):
    def reply(self, code, j):
        body = json.dumps(j).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def item(self, path):
        n = int(path.split("/")[3])
        return [dict(i) for i in items if i["id"] == n]
    def do_GET(self):
        log.write("GET %s\n" % self.path)
        log.flush()
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        if u.path == "/api/quarantine":
            older = [i for i in items if i["id"] < int(q.get("before", 99))]
            page = older[:int(q.get("limit", 2))]
            more = len(older) > len(page) and page
            self.reply(200, {"items": page, "next": page[-1]["id"] if more else None})
        elif self.item(u.path):
            self.reply(200, {"item": self.item(u.path)[0]})
        else:
            self.reply(404, {"error": {"code": "not_found", "message": "no item"}})
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        log.write("POST %s %s\n" % (self.path, body.decode()))
        log.flush()
        it = self.item(self.path)[0]
        it["state"] = "retried" if self.path.endswith("/retry") else \
            "released" if self.path.endswith("/release") else "rejected"
        it["adjudicated"] = {"by": "ops", "time": "2026-01-02T00:00:00Z"}
        if body:
            it["adjudicated"]["note"] = json.loads(body)["note"]
        self.reply(200, {"item": it})
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$T_DIR/fakeq.py" "$T_DIR/fakeq.log" >"$T_DIR/fakeq.port" 2>/dev/null &
fqpid=$!
wait_file "$T_DIR/fakeq.port" 5
fq="http://127.0.0.1:$(cat "$T_DIR/fakeq.port")"
q() {
	out=$("$CTL" --url "$fq" --key "$OPS" "$@" 2>"$T_DIR/err")
	rc=$?
	err=$(cat "$T_DIR/err")
}
q quarantine
is "$rc:$(printf '%s\n' "$out" | tail -n +2 | cut -c1 | tr -d '\n')" "0:54" "quarantine: one page (the server's), newest first"
like "$out" "^5 +7 +1\.2\.3\.5 +1\.2\.3\.5\.1\.1 +verify_mismatch +open +2026-01-01T00:00:05Z +dataset digest differs$" \
	"  the row: id, batch, UIDs, reason, state, time, detail"
like "$err" "more items after 4: use --all or --limit N" "  and a note that there are more"
q quarantine --all
is "$(printf '%s\n' "$out" | tail -n +2 | cut -c1 | tr -d '\n')" 54321 "quarantine --all: every page"
is "$(grep -c 'before=' "$T_DIR/fakeq.log")" 2 "  following next as before= (twice)"
q quarantine --all --json
is "$(printf '%s' "$out" | jq -c '[[.items[].id], .next]')" '[[5,4,3,2,1],null]' "quarantine --all --json: the pages joined"
: >"$T_DIR/fakeq.log"
q quarantine --limit 3 --batch 7 --reason verify_mismatch
is "$(printf '%s\n' "$out" | tail -n +2 | wc -l | tr -d ' ')" 3 "quarantine --limit 3: three rows"
like "$err" "3 shown, more after 3" "  and where more begin"
like "$(head -1 "$T_DIR/fakeq.log")" "^GET /api/quarantine\?reason=verify_mismatch&batch=7&limit=3$" \
	"  --reason and --batch are the server's filters"
q quarantine show 3
is "$rc" 0 "quarantine show: exit 0"
like "$out" "^source_sha256 +(ab){32}$" "  the source's hash"
like "$out" "^file +/var/q/3\.dcm\.zst$" "  where the copy is"
like "$out" "^status +-$" "  a null as -"
q quarantine retry 3 --note "target fixed"
is "$rc:$out" "0:quarantine item 3: retried (by ops at 2026-01-02T00:00:00Z)" "quarantine retry --note: exit 0"
like "$(tail -1 "$T_DIR/fakeq.log")" '^POST /api/quarantine/3/retry \{"note": ?"target fixed"\}$' "  the note sent"
q quarantine release 3 --note "send unmerged"
is "$rc:$out" "0:quarantine item 3: released (by ops at 2026-01-02T00:00:00Z)" "quarantine release --note: exit 0"
like "$(tail -1 "$T_DIR/fakeq.log")" '^POST /api/quarantine/3/release \{"note": ?"send unmerged"\}$' "  the note sent"
q quarantine reject 2
is "$rc:$out" "0:quarantine item 2: rejected (by ops at 2026-01-02T00:00:00Z)" "quarantine reject: exit 0"
like "$(tail -1 "$T_DIR/fakeq.log")" '^POST /api/quarantine/2/reject $' "  no body without --note"
q quarantine show 2 --json
is "$(printf '%s' "$out" | jq -r .item.sop_instance_uid)" 1.2.3.2.1.1 "quarantine show --json"
kill "$fqpid" 2>/dev/null
wait "$fqpid" 2>/dev/null

# --- report --csv ------------------------------------------------------------
curl -s -H "Authorization: Bearer $OPS" "$base/api/batches/$fid/report?format=csv" >"$T_DIR/curl.csv"
"$CTL" --url "$base" --key "$OPS" report "$fid" --csv >"$T_DIR/ctl.csv"
is "$?" 0 "report --csv: exit 0"
cmp -s "$T_DIR/curl.csv" "$T_DIR/ctl.csv"
ok $? "  byte for byte what the daemon sends"
like "$(head -1 "$T_DIR/ctl.csv")" "^study_uid,series_uid,sop_instance_uid,sop_class_uid,.*,outcome,status,reason,detail$(printf '\r')$" \
	"  the header line, CRLF-ended"
c report "$fid" --csv --json
is "$rc" 1 "report --csv --json: exit 1"
c report 999999 --csv
is "$rc" 3 "report --csv of a batch that does not exist: exit 3"

# --- hl7: ingest, the inbox, preview ----------------------------------------
H=$T_DIR/hl7
mkdir -p "$H"
# Segments end in CR. An order from the RIS (MRN in PID-3, accession in
# OBR-3), and a message of a type vnamig does not take.
printf 'MSH|^~\\&|RIS|MAINHOSP|VNAMIG|PACS|20240501100000||ORM^O01|CTL0001|P|2.3\rPID|1||MRN777^^^MAINHOSP^MR||DOE^JANE\rORC|NW|PL777\rOBR|1|PL777|ACC777|CT^HEAD\r' >"$H/orm.hl7"
printf 'MSH|^~\\&|RIS|MAINHOSP|VNAMIG|PACS|20240501100001||ZZZ^Z99|CTL0002|P|2.3\rPID|1||MRN777\r' >"$H/bad.hl7"
cat "$H/orm.hl7" "$H/bad.hl7" >"$H/two.hl7"
c hl7 ingest "$H/two.hl7"
is "$rc" 7 "hl7 ingest, one of two messages refused: exit 7"
like "$(printf '%s\n' "$out" | head -1)" "^# +CONTROL_ID +ACK +OUTCOME +BATCH +ERROR$" "  a table with headings"
is "$(printf '%s\n' "$out" | tail -n +2 | wc -l | tr -d ' ')" 2 "  one line per message"
hb=$(cu '/api/hl7/messages?limit=1000' | jq -r '.messages[] | select(.control_id == "CTL0001") | .batch_id')
like "$hb" '^[0-9]+$' "  the order made batch $hb"
like "$out" "^1 +CTL0001 +AA +batch +$hb +-$" "  the order: its control id, AA, outcome batch and the batch"
like "$out" "^2 +CTL0002 +AR +unsupported +- +ZZZ\\^Z99 is not a message vnamig takes" \
	"  the other: AR, unsupported, and why"
like "$err" "^vnamigctl: POST $base/api/hl7/ingest: 1 of 2 messages not accepted" "  the count on stderr"
is "$(cu "/api/batches/$hb" | jq -c '[.batch.accession_numbers, .batch.patient_id, .batch.source, .batch.target, .batch.state]')" \
	'[["ACC777"],"MRN777","legacy","vna","queued"]' "  the batch as curl sees it"
c hl7 ingest - <"$H/orm.hl7"
is "$rc" 0 "hl7 ingest - (standard input), every message AA: exit 0"
like "$out" "^1 +CTL0001 +AA +batch +$hb +-$" "  sent again: its first ACK back, the same batch"
c --json hl7 ingest "$H/bad.hl7"
is "$rc" 7 "hl7 ingest --json, refused: exit 7 still"
is "$(printf '%s' "$out" | jq -r '[.count, .accepted, .messages[0].ack] | join(" ")')" "1 0 AR" \
	"  the server's answer, each ACK"
: >"$H/empty.hl7"
c hl7 ingest "$H/empty.hl7"
is "$rc" 3 "hl7 ingest of an empty file: exit 3"
like "$err" "POST $base/api/hl7/ingest: 400 no_message: " "  the server's 400"
c hl7 ingest "$H/nonexistent.hl7"
is "$rc" 1 "hl7 ingest of a file that is not there: exit 1"
like "$err" "nonexistent.hl7: No such file" "  saying so"
c hl7 ingest
is "$rc" 1 "hl7 ingest without FILE: exit 1"
like "$err" "usage: vnamigctl hl7 ingest FILE\\|-" "  the usage line"
c hl7 ingest "$H/orm.hl7" --ack AA
is "$rc" 1 "hl7 ingest --ack: exit 1"

c hl7 messages
is "$rc" 0 "hl7 messages: exit 0"
like "$(printf '%s\n' "$out" | head -1)" "^SEQ +TIME +SENDER +TYPE +CONTROL_ID +ACK +OUTCOME +BATCH +ERROR$" \
	"  a table with headings"
like "$out" "^[0-9]+ +[0-9T:-]+Z +ris +ORM\\^O01 +CTL0001 +AA +batch +$hb +-$" "  the order's row"
like "$out" "^[0-9]+ +[0-9T:-]+Z +ris +ZZZ\\^Z99 +CTL0002 +AR +unsupported +- +ZZZ\\^Z99 is not" "  the refused one's row"
is "$(printf '%s\n' "$out" | tail -n +2 | wc -l | tr -d ' ')" "$(cu /api/hl7/messages | jq '.messages | length')" \
	"  a row per record"
c hl7 messages --json
is "$(sorted "$out")" "$(cu /api/hl7/messages)" "hl7 messages --json: as curl sees /api/hl7/messages"
c hl7 messages --ack AR --json
is "$(printf '%s' "$out" | jq -c '[.messages[] | [.control_id, .ack]] | unique')" '[["CTL0002","AR"]]' \
	"hl7 messages --ack AR: only the refused"
is "$(sorted "$out")" "$(cu '/api/hl7/messages?ack=AR')" "  as curl sees ?ack=AR"
c hl7 messages --type 'ORM^O01'
is "$(printf '%s\n' "$out" | tail -n +2 | awk '{ print $5 }' | sort -u)" CTL0001 "hl7 messages --type ORM^O01: only the order"
c hl7 messages --type 'ORM^O01' --sender ris --ack AA --json
is "$(sorted "$out")" "$(cu '/api/hl7/messages?type=ORM%5EO01&sender=ris&ack=AA')" \
	"  --type --sender --ack --json: as curl sees the filters"
c hl7 messages --sender nobody
is "$rc:$(printf '%s\n' "$out" | wc -l | tr -d ' ')" "0:1" "hl7 messages --sender nobody: the headings, no rows"
c hl7 messages --limit 1
is "$(printf '%s\n' "$out" | tail -n +2 | wc -l | tr -d ' ')" 1 "hl7 messages --limit 1: one row"
like "$err" "1 shown, more after [0-9]+" "  and a note that there are more"
c hl7 messages --all --json
is "$(printf '%s' "$out" | jq -c '[.messages[].seq]')" "$(cu '/api/hl7/messages?limit=1000' | jq -c '[.messages[].seq]')" \
	"hl7 messages --all --json: every record"
c hl7 messages --ack XX
is "$rc" 1 "hl7 messages --ack XX: exit 1"
like "$err" "--ack XX: expected AA, AE or AR" "  saying so"
c hl7 messages --state done
is "$rc" 1 "hl7 messages --state: exit 1"

c hl7 preview "$H/orm.hl7"
is "$rc" 0 "hl7 preview: exit 0"
like "$out" "^type +ORM\\^O01$" "  the type"
like "$out" "^control_id +CTL0001$" "  the control id"
like "$out" "^sender +ris \\(source legacy, target vna\\)$" "  the sender it maps to, with its peers"
like "$out" "^accession +ACC777 \\(OBR-3\\.1\\|OBR-2\\.1\\)$" "  the accession, and the path"
like "$out" "^mrn +MRN777 \\(PID-3\\.1\\)$" "  the MRN, and the path"
like "$out" "^study_uid +- \\(OBR-29\\.1\\|ZDS-1\\.1\\)$" "  no study UID in it: -"
c --json hl7 preview - <"$H/orm.hl7"
is "$(sorted "$out")" "$(curl -s -H "Authorization: Bearer $OPS" -H 'Content-Type: application/hl7-v2' \
	--data-binary "@$H/orm.hl7" "$base/api/hl7/preview" | jq -S .)" "hl7 preview - --json: as curl sees it"
printf 'MSH|^~\\&|PACSX|H|VNAMIG|PACS|20240501100000||ORM^O01|X1|P|2.3\rPID|1||M1\r' >"$H/unmapped.hl7"
c hl7 preview "$H/unmapped.hl7"
like "$out" "^sender +none: " "hl7 preview of an unmapped sender: none"
printf 'this is not HL7\n' >"$H/junk.hl7"
c hl7 preview "$H/junk.hl7"
is "$rc" 3 "hl7 preview of what does not parse: exit 3"
like "$err" "POST $base/api/hl7/preview: 422 bad_message: " "  the server's 422"
c hl7 preview
is "$rc" 1 "hl7 preview without FILE: exit 1"

# --- keys ------------------------------------------------------------------
c keys
is "$rc" 3 "keys with an operator key: exit 3"
like "$err" "GET $base/api/keys: 403 " "  403"
a keys
is "$rc" 0 "keys with the admin key"
like "$out" "^ops +operator +config" "  lists the configured keys"
a keys --json
is "$(sorted "$out")" "$(cu "$ADM" /api/keys)" "keys --json: as curl sees it"
a key create bob --role viewer
is "$rc" 0 "key create: exit 0"
tok=$(printf '%s' "$out" | sed -n 's/^token: //p')
like "$tok" '^[!-~]{12,}$' "  prints the token"
like "$err" "shown this once" "  with the warning that it is not shown again"
is "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "$base/api/status")" 200 \
	"  the token works"
a key create eve
is "$rc" 1 "key create without --role: exit 1"
a key delete bob
is "$rc:$out" '0:key "bob" deleted' "key delete: exit 0"
is "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "$base/api/status")" 401 \
	"  the token is refused after"

# --- checkpoints, backups ------------------------------------------------
c checkpoint first
is "$rc" 0 "checkpoint NAME: exit 0"
like "$out" '^checkpoint "first" created \(.*, audit size [0-9]+\)' "  says when and the audit size"
c checkpoints
like "$out" "^first +[0-9T:.Z-]+ +request +[0-9]+" "checkpoints: the table lists it"
c checkpoints --json
is "$(sorted "$out")" "$(cu /api/checkpoints)" "checkpoints --json: as curl sees it"
c checkpoint 'bad/name'
is "$rc" 3 "a bad checkpoint name: exit 3 (the server's 422)"
a backup
is "$rc" 0 "backup: exit 0"
like "$out" "^backup 1 \(.*files\) created" "  backup 1"
a backups
like "$out" "^1 +[0-9T:Z-]+ +[0-9]+ +[0-9]+" "backups: the table lists it"
a backups --json
is "$(sorted "$out")" "$(cu "$ADM" /api/backups)" "backups --json: as curl sees it"
a backup verify 1
is "$rc:$(printf '%s' "$out" | sed 's/ (.*)//')" "0:backup 1 verified" "backup verify: exit 0"

# --- metrics, watch --------------------------------------------------------
c metrics
is "$rc" 0 "metrics: exit 0"
is "$(printf '%s\n' "$out" | grep '^# TYPE' | sort)" \
	"$(curl -s -H "Authorization: Bearer $OPS" "$base/metrics" | grep '^# TYPE' | sort)" \
	"  the Prometheus text, as curl sees it"
c watch --count 2 --interval 0.2
is "$rc" 0 "watch --count 2: exit 0"
is "$(printf '%s\n' "$out" | grep -Ec '^[0-9T:-]+Z studies=[0-9-]+/[0-9-]+ instances=')" 2 \
	"  not a terminal: one plain line per poll"
c watch "$fid" --count 2 --interval 0.2
is "$rc" 0 "watch ID --count 2: exit 0"
is "$(printf '%s\n' "$out" | grep -Ec "^[0-9T:-]+Z batch=$fid state=queued studies=[0-9-]+/[0-9-]+ instances=")" 2 \
	"  that batch's state and progress, one line per poll"
c watch "$fid" --count 1 --json
is "$(printf '%s' "$out" | jq -r .batch.id)" "$fid" "watch ID --json: the batch's JSON"
c watch "$id"
is "$rc" 6 "watch ID of a cancelled batch: it ends at once, exit 6"
like "$out" "^[0-9T:-]+Z batch=$id state=cancelled " "  with its last line"
c watch 999999 --interval 0.2
is "$rc" 3 "watch ID of a batch that does not exist: exit 3"
like "$err" "GET $base/api/batches/999999: 404 not_found: " "  saying so"
"$CTL" --url "$base" --key "$OPS" watch --interval 5 >"$T_DIR/watch.out" 2>&1 &
wpid=$!
wait_file "$T_DIR/watch.out" 5
kill -INT "$wpid"
wait "$wpid"
is "$?" 0 "watch: Ctrl-C ends it cleanly (exit 0)"
if command -v script >/dev/null 2>&1; then
	script -qec "$CTL --url $base --key $OPS watch --count 2 --interval 0.2" /dev/null >"$T_DIR/tty.out" 2>&1
	ok "$(grep -q "$(printf '\033\\[?25l')" "$T_DIR/tty.out" &&
	    grep -q "$(printf '\r\033\\[K')\\[[#-]*\\]" "$T_DIR/tty.out" &&
	    grep -q "$(printf '\033\\[?25h')" "$T_DIR/tty.out"; echo $?)" \
	    "watch on a terminal: a bar redrawn in place, the cursor hidden and shown again"
	script -qec "$CTL --url $base --key $OPS watch $fid --count 2 --interval 0.2" /dev/null >"$T_DIR/tty.out" 2>&1
	ok "$(grep -q "$(printf '\r\033\\[K')\\[[#-]*\\] *[0-9-]*%  batch $fid queued  studies " "$T_DIR/tty.out"; echo $?)" \
	    "watch ID on a terminal: the batch's bar and state redrawn in place"
else
	skip "watch on a terminal: no script(1)"
	skip "watch ID on a terminal: no script(1)"
fi

# --- where the URL and the key come from ----------------------------------
dead=$(free_port)
y=$HOME/.config/vnamig/ctl.yaml
printf '%s\n' "$OPS" >"$HOME/.config/vnamig/ops.key"
chmod 600 "$HOME/.config/vnamig/ops.key"
printf 'url: %s\nkey_file: ops.key\n' "$base" >"$y"
chmod 600 "$y"
raw status
is "$rc" 0 "ctl.yaml alone: url and key_file (relative to it) used"
envraw VNAMIG_URL=http://127.0.0.1:$dead status
is "$rc" 2 "VNAMIG_URL beats ctl.yaml's url (a dead port: exit 2)"
like "$err" "^vnamigctl: GET http://127.0.0.1:$dead/api/status: cannot connect to 127.0.0.1 port $dead: " \
	"  saying what and where"
envraw VNAMIG_URL=http://127.0.0.1:$dead --url "$base" status
is "$rc" 0 "--url beats VNAMIG_URL"
envraw VNAMIG_KEY=wrong-key-12345 status
is "$rc" 3 "VNAMIG_KEY beats ctl.yaml's key_file (a wrong key: exit 3)"
like "$err" "GET $base/api/status: 401 unauthorized: .*\\(the key from VNAMIG_KEY\\)" \
	"  401 with the key's origin"
envraw VNAMIG_KEY=wrong-key-12345 --key-file "$HOME/.config/vnamig/ops.key" status
is "$rc" 0 "--key-file beats VNAMIG_KEY"
raw --key wrong-key-12345 status
is "$rc" 3 "a wrong --key: exit 3"
chmod 644 "$y"
raw status
is "$rc" 1 "a ctl.yaml others may read: exit 1"
like "$err" "ctl.yaml is open to the group or others \\(mode 0644\\).*chmod 600" "  saying so and the fix"
chmod 600 "$y"
chmod 640 "$HOME/.config/vnamig/ops.key"
raw status
is "$rc" 1 "a key file the group may read: exit 1"
like "$err" "key file .*ops.key is open to the group" "  saying so"
chmod 600 "$HOME/.config/vnamig/ops.key"
printf 'url: %s\nkye: x\n' "$base" >"$T_DIR/other.yaml"
chmod 600 "$T_DIR/other.yaml"
raw --config "$T_DIR/other.yaml" status
is "$rc" 1 "--config FILE with a misspelt key: exit 1"
like "$err" "other.yaml line 2: unknown key \"kye\"" "  the line and the key"
rm -f "$y"
raw --url "$base" status
is "$rc" 3 "no key at all: exit 3"
like "$err" "no API key was given" "  with a hint where to give one"

# --- HTTPS -------------------------------------------------------------------
d=$T_DIR/pki
mkdir -p "$d"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$d/ca.key" -out "$d/ca.crt" -days 2 -subj "/CN=vnamig test ca" 2>/dev/null &&
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$d/server.key" -out "$d/server.csr" -subj /CN=127.0.0.1 2>/dev/null &&
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$d/ext" &&
openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
	-CAcreateserial -days 2 -out "$d/server.crt" -extfile "$d/ext" 2>/dev/null
ok $? "a test CA and a server certificate for 127.0.0.1"
tconf=$T_DIR/tls.yaml
sed -e "s|data_dir: $T_DIR/var|data_dir: $T_DIR/tlsvar|" \
	-e "s|^  http:  { address: 127.0.0.1, port: 0 }|  http: { address: 127.0.0.1, port: 0, tls: { cert: $d/server.crt, key: $d/server.key } }|" \
	"$conf" >"$tconf"
PLAIN_PID=$DAEMON_PID
PLAIN_LOG=$T_DIR/plain.log
cp "$T_DIR/daemon.log" "$PLAIN_LOG"
if start_daemon "$tconf"; then
	tls="https://127.0.0.1:$HTTP_PORT"
	raw --url "$tls" --key "$OPS" --cacert "$d/ca.crt" status
	is "$rc" 0 "https with --cacert: exit 0"
	raw --url "$tls" --key "$OPS" status
	is "$rc" 2 "https with a certificate the system does not trust: exit 2"
	like "$err" "GET $tls/api/status: TLS: the server's certificate is not trusted: " "  saying so"
	raw --url "https://localhost:$HTTP_PORT" --key "$OPS" --cacert "$d/ca.crt" status
	is "$rc" 2 "https to a name the certificate does not have: exit 2"
	raw --url "$tls" --key "$OPS" --insecure status
	is "$rc" 0 "https --insecure: exit 0"
	like "$err" "WARNING: --insecure: the server's certificate is NOT verified" "  said loudly"
	raw --url "http://127.0.0.1:$HTTP_PORT" --key "$OPS" --timeout 3 status
	is "$rc" 2 "plain HTTP to the TLS port: exit 2"
	stop_daemon TERM
else
	fail "vnamigd starts with TLS on HTTP"
fi
DAEMON_PID=$PLAIN_PID
cp "$PLAIN_LOG" "$T_DIR/daemon.log"

# --- the audit witness -------------------------------------------------------
W=$T_DIR/witness.json
# Checkpoints are signed on request at most once a second.
grow() {
	c submit --source legacy --target vna --accession "G$1"
	gid=$(printf '%s' "$out" | sed -n 's/^batch \([0-9]*\) created.*/\1/p')
	sleep 1.1
}
c audit checkpoint
is "$rc" 0 "audit checkpoint: exit 0"
like "$out" "^origin +vnamig/VNAMIG$" "  the origin"
like "$out" "^key id +[0-9a-f]{8}$" "  the key id"
c audit checkpoint --json
is "$(printf '%s' "$out" | jq -r '.origin + .public_key')" "$(cu /api/audit/checkpoint | jq -r '.origin + .public_key')" \
	"audit checkpoint --json: as curl sees it"
c audit verify --state "$W"
is "$rc" 0 "audit verify, first use: exit 0"
like "$err" "trust on first use" "  trusting the key on first use, said on stderr"
like "$out" "nothing witnessed before" "  nothing to compare yet"
s1=$(jq -r .size "$W")
like "$s1" '^[0-9]+$' "  the checkpoint recorded (size $s1)"
ok "$(stat -c %a "$W" | grep -qx 600; echo $?)" "  the state file is private (0600)"
grow 1
grow 2
c audit verify --state "$W"
is "$rc" 0 "audit verify after more activity: exit 0"
s2=$(jq -r .size "$W")
like "$out" "consistency  ok: size $s1 -> $s2, proof of [0-9]+ hashes" "  a consistency proof from $s1 to $s2 verified"
c audit verify --state "$W" --pubkey "$T_DIR/var-audit.pem.pub"
is "$rc" 0 "audit verify --pubkey (the daemon's .pub file): exit 0"

# The state file edited: the witnessed root no longer matches the log.
cp "$W" "$T_DIR/w.good"
jq '.root = ("00" + .root[2:])' "$T_DIR/w.good" >"$W"
cp "$W" "$T_DIR/w.bad"
c audit verify --state "$W"
is "$rc" 5 "a tampered root at the same size: exit 5"
like "$err" "root mismatch at size $s2" "  root mismatch named"
grow 3
c audit verify --state "$W"
is "$rc" 5 "a tampered root, the log grown since: exit 5"
like "$err" "GET $base/api/audit/consistency\\?from=$s2&to=[0-9]+: consistency: root mismatch at size $s2" \
	"  the consistency check names the size"
cmp -s "$W" "$T_DIR/w.bad"
ok $? "  nothing recorded on failure"
jq ".size = $((s2 + 1000))" "$T_DIR/w.good" >"$W"
c audit verify --state "$W"
is "$rc" 5 "a witnessed size above the log's: exit 5"
like "$err" "size went backwards" "  a rollback named"
cp "$T_DIR/w.good" "$W"
openssl genpkey -algorithm ed25519 -out "$T_DIR/other.pem" 2>/dev/null &&
openssl pkey -in "$T_DIR/other.pem" -pubout -out "$T_DIR/other.pub" 2>/dev/null
c audit verify --state "$W" --pubkey "$T_DIR/other.pub"
is "$rc" 5 "another key given: exit 5"
like "$err" "signature: the checkpoint is not signed by the trusted key" "  the signature is the failure"
c audit verify --state "$W"
is "$rc" 0 "the good state again: the log verifies"

# Inclusion proofs, tied to the witnessed root.
c audit proof 1 --state "$W"
is "$rc" 0 "audit proof: exit 0"
like "$out" "inclusion    ok: " "  the inclusion proof verified"
like "$out" "leaf         \\{.*\"seq\":1" "  the leaf shown (its hash checked)"
like "$out" "witnessed    ok: the root is the witnessed one" "  its root is the witnessed one"
c audit proof 1 --size 2 --state "$W"
is "$rc" 0 "audit proof in an older tree: exit 0"
like "$out" "witnessed    ok: consistent with the witnessed root" "  tied to the witnessed root by a consistency proof"
c audit proof 99999 --state "$W"
is "$rc" 3 "a leaf past the log: exit 3"

# A man in the middle that flips a bit of every proof: caught (exit 5).
cat >"$T_DIR/mitm.py" <<'PY'
import http.server, json, sys, urllib.request
up = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        r = urllib.request.urlopen(urllib.request.Request(up + self.path,
            headers={"Authorization": self.headers.get("Authorization", "")}))
        body = r.read()
        if self.path.startswith(("/api/audit/proof", "/api/audit/consistency")):
            j = json.loads(body)
            k = "path" if "path" in j else "proof"
            h = j[k][0]
            j[k][0] = ("1" if h[0] == "0" else "0") + h[1:]
            body = json.dumps(j).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$T_DIR/mitm.py" "$base" >"$T_DIR/mitm.port" 2>/dev/null &
mpid=$!
wait_file "$T_DIR/mitm.port" 5
mitm="http://127.0.0.1:$(cat "$T_DIR/mitm.port")"
raw --url "$mitm" --key "$OPS" audit proof 1 --state "$W"
is "$rc" 5 "a corrupted inclusion proof: exit 5"
like "$err" "inclusion proof of leaf 1 .* does not verify" "  saying so"
grow 4
cp "$W" "$T_DIR/w.before"
raw --url "$mitm" --key "$OPS" audit verify --state "$W"
is "$rc" 5 "a corrupted consistency proof: exit 5"
like "$err" "consistency: the proof from size [0-9]+ .* does not verify" "  saying so"
cmp -s "$W" "$T_DIR/w.before"
ok $? "  nothing recorded"
kill "$mpid" 2>/dev/null
wait "$mpid" 2>/dev/null

# --- restore -------------------------------------------------------------------
c restore first </dev/null
is "$rc" 1 "restore without --yes, stdin not a terminal: exit 1"
like "$err" "add --yes" "  saying what to do"
c restore first --yes
is "$rc" 3 "restore with an operator key: exit 3"
like "$err" "POST $base/api/checkpoints/first/restore: 403 " "  403: it needs an admin key"
a restore nope --yes
is "$rc" 3 "restore of a checkpoint that does not exist: exit 3"
like "$err" "404 not_found: " "  404"
a restore first --yes
is "$rc" 0 "restore --yes: exit 0 (202)"
like "$out" 'restore of checkpoint "first": pending' "  pending, with the server's message"
if wait_log ' info restore-done ' 15 && wait_until 15 sh -c \
    "[ \$(grep -c ' info ready ' '$T_DIR/daemon.log') -ge 2 ]"; then
	HTTP_PORT=$(sed -n 's/.* listening proto=http .*port=\([0-9]*\).*/\1/p' "$T_DIR/daemon.log" | tail -1)
	base="http://127.0.0.1:$HTTP_PORT"
	c batch "$fid"
	is "$rc" 0 "after the restore a batch made before the checkpoint is there"
	c batch "$gid"
	is "$rc" 3 "  and one made after it (batch $gid) is not (404)"
	sleep 1.1
	c audit verify --state "$W"
	is "$rc" 0 "the witness still verifies the audit log (kept whole) after the restore"
else
	fail "vnamigd came back after the restore"
	diag "$(tail -20 "$T_DIR/daemon.log")"
fi

stop_daemon TERM
is "$DAEMON_RC" 0 "vnamigd exits cleanly"
done_testing
