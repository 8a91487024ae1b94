#!/bin/sh
# migbreaker.t — a peer's circuit breaker in the migration engine
# (src/mig/mig.c brk_*; migration.breaker_failures, breaker_open): a
# source that is down does not make the studies queued for it spend their
# retrieve_attempts and fail. DCMTK's dcmqrscp as the source (loaded
# beforehand on a port of its own, then started again on the peer's port
# with the same store), DCMTK's storescp as the target (verify: none).
# 5 studies x 1 series x 2 instances. One vnamigd with breaker_failures 2,
# breaker_open 5s, retrieve_attempts 3, retry_backoff 200ms, max_studies
# 4, for cases 1-3; a second one for case 4.
#
#   1  peer src1 on a port nothing listens on: a batch of the 5 studies.
#      mig-breaker-open peer="src1" failures=2 for_s=5 with the refused
#      connection as its last; /api/progress: its breaker open; while
#      open (1.5 s) no mig-step-failed more for the batch, which keeps
#      running with every study queued or querying (none failed).
#   2  dcmqrscp started on src1's port (before the breaker's 5 s are
#      over): mig-breaker-half-open, then mig-breaker-closed; the batch
#      ends done, every instance migrated (the report adds up) with the
#      source's content at the storescp (and the dataset bytes of the
#      explicit LE ones); no study at its 3rd attempt; the breaker
#      closed, failures 0.
#   3  peer src2, its port dead too, a batch of 2 studies: the breaker
#      opens for 5 s; its half-open try fails and it opens again for 10 s
#      (failures=3), 5 s later; the batch still running with no
#      study failed; then cancelled.
#   4  breaker_failures 0 (a second vnamigd): a dead source's study
#      fails after its 3 retrieve attempts (state failed, the source in
#      its reason), no mig-breaker line, the breaker shown closed.
#
# Each vnamigd stops cleanly with no sanitizer report in its log.
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
: "${VNAMIG_DUMP:=$top_builddir/src/dump/vnamig-dump}"
export LC_ALL=C

SCP_PID=
trap 'qp_stop_scp; stop_peers; cleanup' EXIT

qp_stop_scp() {
	[ -n "$SCP_PID" ] && qp_stop "$SCP_PID"
	SCP_PID=
}

MIG_STOP=qp_stop_scp	# what mig_bail stops besides vnamigd and the DCMTK peers

# nlog ERE: the daemon log's lines matching ERE.
nlog() { grep -Ec -- "$1" "$T_DIR/daemon.log"; }
# count_ge ERE N: at least N lines of the daemon log match ERE.
count_ge() { [ "$(nlog "$1")" -ge "$2" ]; }
# lineno ERE [NTH]: the line number of the NTH (1) line matching ERE; 0
# when there is none.
lineno() {
	ln_n=$(grep -En -- "$1" "$T_DIR/daemon.log" | sed -n "${2:-1}p" | cut -d: -f1)
	echo "${ln_n:-0}"
}
# progress: GET /api/progress into out (in this shell, not a $(...));
# bk PEER [FIELD]: source PEER's breaker in it, as "STATE FAILURES", or
# its FIELD.
progress() { api GET /api/progress; }
bk() {
	if [ $# -gt 1 ]; then
		j ".sources.$1.breaker.$2 // empty"
	else
		j ".sources.$1.breaker | \"\\(.state) \\(.failures)\""
	fi
}
# studies_of ID: the batch's study states as "STATE=N ..." (sorted).
studies_of() {
	api GET "/api/batches/$1"
	j '.batch.progress.studies | to_entries | map("\(.key)=\(.value)") | sort | join(" ")'
}
# not_final ID: 0 when each of the batch's studies is queued or querying
# (none ended, none past its query).
not_final() {
	api GET "/api/batches/$1"
	[ "$(j '.batch.state')" = running ] &&
	    [ "$(j '[.batch.progress.studies | to_entries[] | select(.key != "queued" and .key != "querying") ] | length')" = 0 ]
}
# mono: seconds since the epoch, with fractions.
mono() { date +%s.%N; }
# elapsed T0: seconds since T0 (mono), 1 decimal.
elapsed() { echo "$(mono) $1" | awk '{printf "%.1f", $1 - $2}'; }

# ---- peers ----
gen_studies "$T_DIR/gen" 5 1 2
ok $? "10 instances generated (studies 1-5 x 1 series x 2)"
d_port=$(free_port)
p_load=$(free_port)
dead1=$(free_port)
dead2=$(free_port)
scp_port=$(free_port)
# the source's store, loaded through a dcmqrscp on a port of its own that
# is stopped again: started on src1's port in case 2, it has them at once
QR_NAME=legacy
start_dcmqrscp LEGACY "$p_load" "$T_DIR/legacy" VNAMIG "$d_port" ||
    mig_bail "the source dcmqrscp (LEGACY) runs for loading"
load_dcmqrscp LEGACY "$p_load" "$T_DIR/gen"
ok $? "LEGACY's store loaded (dcmqrscp on $p_load), then it is stopped"
stop_peers
qp_port_free "$dead1" && qp_port_free "$dead2" ||
    mig_bail "nothing listens on src1's and src2's ports ($dead1, $dead2)"
scp_target

# ---- vnamigd ----
# mig_conf FILE DATA_DIR BREAKER_FAILURES
mig_conf() {
	cat >"$1" <<YAML
node: { ae_title: VNAMIG, data_dir: $2 }
listen:
  dicom: { address: 127.0.0.1, port: $d_port }
  http:  { address: 127.0.0.1, port: 0 }
limits: { shutdown_grace: 5s, dimse_timeout: 10s }
storage: { min_free: 1MiB }
migration:
  max_studies: 4
  retrieve_attempts: 3
  retry_backoff: 200ms
  retry_backoff_max: 1s
  breaker_failures: $3
  breaker_open: 5s
peers:
  - { name: src1, ae_title: LEGACY, host: 127.0.0.1, port: $dead1, role: source }
  - { name: src2, ae_title: DEAD2, host: 127.0.0.1, port: $dead2, role: source }
  - { name: scp, ae_title: STORESCP, host: 127.0.0.1, port: $scp_port, role: target, verify: none, max_associations: 1 }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
}
# stop_checked NAME: stop vnamigd; it stops cleanly and its log holds no
# sanitizer report (TAP lines).
stop_checked() {
	stop_daemon
	is "$DAEMON_RC" 0 "$1: vnamigd stops cleanly"
	grep -En 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' \
	    "$T_DIR/daemon.log" >"$T_DIR/san.txt"
	is "$(wc -l <"$T_DIR/san.txt")" 0 "$1: no sanitizer report in the daemon's log"
	[ -s "$T_DIR/san.txt" ] && log_tail
}

conf=$T_DIR/vnamigd.yaml
mig_conf "$conf" "$T_DIR/var" 2
mig_start mig_bail "breaker_failures 2, breaker_open 5s"
progress
is "$(bk src1)" "closed 0" "/api/progress: src1's breaker closed, no failures"

# ---- 1: src1 is down ----
uids=$(printf "$ROOT.1.%s\n" 1 2 3 4 5 | jq -R . | jq -sc .)
submit "1: the 5 studies from src1 (nothing listens on $dead1)" \
    "{\"source\":\"src1\",\"target\":\"scp\",\"study_instance_uids\":$uids}"
b1=$BID
[ -n "$b1" ] || mig_bail "1: the batch is taken"
OPEN1=' mig-breaker-open peer="?src1"?( |$)'
HALF1=' mig-breaker-half-open peer="?src1"?( |$)'
CLOSED1=' mig-breaker-closed peer="?src1"?( |$)'
wait_log "$OPEN1" 10
ok $? "1: mig-breaker-open logged for src1"
t_open=$(mono)
# the steps begun before it opened end at once (refused): then counted
sleep 0.3
n1=$(nlog " mig-step-failed batch=$b1 ")
progress
# from here to dcmqrscp's start: well within the 5 s it is open
l=$(grep -E -m1 -- "$OPEN1" "$T_DIR/daemon.log")
like "$l" ' failures=2 ' "1: after 2 failures (breaker_failures)"
like "$l" ' for_s=5( |$)' "1: for 5 s (breaker_open)"
like "$l" ' last="[^"]*[Rr]efused' "1: its last failure: the connection refused"
[ -n "$l" ] && diag "$l"
is "$(bk src1 state)" open "1: /api/progress: src1's breaker open"
like "$(bk src1 failures)" '^[2-5]$' \
    "1: /api/progress: its failures 2 or more ($(bk src1 failures))"
like "$(bk src1 last)" '[Rr]efused' \
    "1: /api/progress: its last failure, the refused connection"
like "$n1" '^[2-5]$' "1: the steps tried before it opened failed ($n1 mig-step-failed, one per study at most)"
is "$(nlog " mig-step-failed batch=$b1 .* attempt=[2-9]")" 0 \
    "1: none of them a study's 2nd attempt"
sleep 1.5
n2=$(nlog " mig-step-failed batch=$b1 ")
nh=$(nlog "$HALF1")
t_still=$(elapsed "$t_open")
not_final "$b1"
nf=$?
st_b1=$(studies_of "$b1")
# ---- 2: src1 comes up (before its 5 s are over) ----
start_dcmqrscp LEGACY "$dead1" "$T_DIR/legacy" VNAMIG "$d_port"
ok $? "2: dcmqrscp LEGACY runs on src1's port $dead1 ($(elapsed "$t_open") s after the breaker opened)"
is "$n2" "$n1" "1: no step tried (no mig-step-failed more) while it is open (${t_still} s)"
is "$nh" 0 "1: not half-open yet (${t_still} s of 5)"
ok $nf "1: batch $b1 running, every study queued or querying ($st_b1)"
wait_log "$HALF1" 15
ok $? "2: mig-breaker-half-open logged for src1 ($(elapsed "$t_open") s after it opened)"
wait_log "$CLOSED1" 15
ok $? "2: mig-breaker-closed logged for src1"
lo=$(lineno "$OPEN1")
lh=$(lineno "$HALF1")
lc=$(lineno "$CLOSED1")
ok $([ "$lo" -gt 0 ] && [ "$lo" -lt "$lh" ] && [ "$lh" -lt "$lc" ]; echo $?) \
    "2: open, half-open, closed in that order (log lines $lo, $lh, $lc)"
# a half-open try before dcmqrscp listened would have opened it again
# (for 10 s); one such costs a study an attempt, not the batch
n_reopen=$(($(nlog "$OPEN1") - 1))
[ "$n_reopen" -gt 0 ] && diag "src1's breaker opened again $n_reopen time(s) before dcmqrscp listened:" \
    "$(grep -E -- "$OPEN1" "$T_DIR/daemon.log" | tail -n +2)"
wait_batch "$b1" 30
is "$BSTATE" done "2: batch $b1 reaches done"
report "$b1"
is "$(rj "$b1" '.summary | "\(.expected) \(.migrated) \(.skipped_present) \(.quarantined) \(.failed) \(.pending)"')" \
    "10 10 0 0 0 0" "2: the report: 10 expected, 10 migrated, none else"
is "$(rj "$b1" '.summary.accounted_percent | . == 100')" true \
    "2: the report accounts for 100%"
is "$(rj "$b1" '[.instances[].sop_instance_uid] | unique | length')/$(rj "$b1" '.instances | length')" \
    10/10 "2: one row per instance, none twice"
is "$(rj "$b1" '[.instances[] | select(.outcome != "migrated")] | length')" 0 \
    "2: every row migrated"
is "$(rj "$b1" '[.studies[] | .state] | unique | join(" ")')" done \
    "2: every study done"
# the storescp's files against the generated ones: the same content
# (vnamig-dump -d's canonical digest), and the same dataset bytes for the
# explicit LE ones (studies 1, 3, 5; dcmqrscp's C-MOVE sends the implicit
# LE ones of 2 and 4 in explicit LE: t/mig.t)
have=0
same=0
bytes=0
while IFS='	' read -r path st se sop rest; do
	f=$(ls "$T_DIR/scp/"*".$sop" 2>/dev/null | head -n 1)
	[ -n "$f" ] || continue
	have=$((have + 1))
	c1=$("$VNAMIG_DUMP" -d "$f" | sed -n 's/.* canonical=\([0-9a-f]*\).*/\1/p')
	c2=$("$VNAMIG_DUMP" -d "$path" | sed -n 's/.* canonical=\([0-9a-f]*\).*/\1/p')
	[ -n "$c1" ] && [ "$c1" = "$c2" ] && same=$((same + 1))
	case $st in
	*.[135]) [ "$(dataset_sha "$f")" = "$(dataset_sha "$path")" ] &&
		bytes=$((bytes + 1)) ;;
	esac
done <"$T_DIR/gen/index.tsv"
is "$have/$(ls "$T_DIR/scp" | wc -l)" 10/10 "2: storescp holds the 10 instances, once each"
is "$same" 10 "2: all 10 with the source's content (canonical digest)"
is "$bytes" 6 "2: the 6 explicit LE ones with the source's dataset bytes"
progress
is "$(bk src1)" "closed 0" "2: /api/progress: src1's breaker closed, failures 0"
n3=$(nlog " mig-step-failed batch=$b1 ")
is "$(nlog " mig-step-failed batch=$b1 .* attempt=[3-9]")" 0 \
    "2: no study came to its 3rd attempt ($n3 mig-step-failed in all)"

# ---- 3: src2's half-open try fails: open again, twice as long ----
uids=$(printf "$ROOT.1.%s\n" 91 92 | jq -R . | jq -sc .)
submit "3: 2 studies from src2 (nothing listens on $dead2)" \
    "{\"source\":\"src2\",\"target\":\"scp\",\"study_instance_uids\":$uids}"
b2=$BID
[ -n "$b2" ] || mig_bail "3: the batch is taken"
OPEN2=' mig-breaker-open peer="?src2"?( |$)'
HALF2=' mig-breaker-half-open peer="?src2"?( |$)'
wait_log "$OPEN2" 10
ok $? "3: mig-breaker-open logged for src2"
t_open2=$(mono)
wait_until 10 count_ge "$OPEN2" 2
ok $? "3: mig-breaker-open logged again for src2 ($(elapsed "$t_open2") s later)"
dt=$(elapsed "$t_open2")
l1=$(grep -E -- "$OPEN2" "$T_DIR/daemon.log" | sed -n 1p)
l2=$(grep -E -- "$OPEN2" "$T_DIR/daemon.log" | sed -n 2p)
diag "$l1" "$l2"
like "$l1" ' failures=2 for_s=5 ' "3: first for 5 s, after 2 failures"
like "$l2" ' failures=3 for_s=10 ' "3: then for 10 s (twice as long), after the 3rd failure"
like "$l2" ' last="[^"]*[Rr]efused' "3: the half-open try refused"
ok $(echo "$dt" | awk '{exit !($1 >= 4.5)}'; echo $?) \
    "3: the second opening came after the first one's 5 s ($dt s)"
lo=$(lineno "$OPEN2" 1)
lh=$(lineno "$HALF2")
lo2=$(lineno "$OPEN2" 2)
ok $([ "$lo" -gt 0 ] && [ "$lo" -lt "$lh" ] && [ "$lh" -lt "$lo2" ]; echo $?) \
    "3: half-open in between (log lines $lo, $lh, $lo2)"
progress
is "$(bk src2)" "open 3" "3: /api/progress: src2's breaker open, 3 failures"
is "$(bk src1)" "closed 0" "3: src1's breaker not touched by src2's"
is "$(nlog " mig-step-failed batch=$b2 ")" 3 \
    "3: 3 steps failed: each study's first, and the half-open try"
not_final "$b2"
ok $? "3: batch $b2 running, no study failed ($(studies_of "$b2"))"
api POST "/api/batches/$b2/cancel" '{}'
is "$code $(j .batch.state)" "200 cancelled" "3: batch $b2 cancelled"

cp "$T_DIR/daemon.log" "$T_DIR/daemon-1.log"
stop_checked "1-3"

# ---- 4: no breaker ----
conf4=$T_DIR/vnamigd-4.yaml
mig_conf "$conf4" "$T_DIR/var4" 0
start_daemon "$conf4" || mig_bail "4: vnamigd (breaker_failures 0) starts"
base="http://127.0.0.1:$HTTP_PORT"
pass "4: vnamigd with breaker_failures 0 runs (HTTP $HTTP_PORT)"
uids=$(printf "$ROOT.1.%s\n" 93 | jq -R . | jq -sc .)
submit "4: a study from src2 (still down)" \
    "{\"source\":\"src2\",\"target\":\"scp\",\"study_instance_uids\":$uids}"
b4=$BID
[ -n "$b4" ] || mig_bail "4: the batch is taken"
wait_until 20 count_ge " mig-study-end batch=$b4 " 1
ok $? "4: its study ended"
report "$b4"
is "$(rj "$b4" '.studies[0].state')" failed "4: the study failed"
like "$(rj "$b4" '.studies[0].reason')" 'source.*([Rr]efused|association)' \
    "4: its reason names the source ($(rj "$b4" '.studies[0].reason'))"
is "$(nlog " mig-step-failed batch=$b4 ")" 3 \
    "4: after its 3 attempts (retrieve_attempts)"
is "$(nlog ' mig-breaker-')" 0 "4: no mig-breaker line"
progress
is "$(bk src2)" "closed 0" "4: /api/progress: src2's breaker closed, failures 0"
like "$(bk src2 last)" '[Rr]efused' "4: /api/progress: still its last failure"
wait_batch "$b4" 10
like "$BSTATE" '^(done|failed)$' "4: batch $b4 ends ($BSTATE)"
stop_checked "4"

qp_stop_scp
stop_peers
done_testing
