#!/bin/sh
# migsrcfault.t — the migration engine (src/mig/mig.c) against faults on
# the source side and on our own disk (TESTING.md, faults 2 and 4, and a
# source's window): t/fakesource.py as sources that misbehave on demand
# (each its own port, AE title and peer), DCMTK's storescp as the target
# (verify: none; it keeps the bytes it receives, +B).
#
#   g  a source that accepts a C-GET's storage contexts in a transfer
#      syntax never proposed (FAKEO, --odd-ts) and stores on them: those
#      contexts are logged (assoc-context-odd) and not used, the study
#      ends quarantined, vnamigd keeps running.
#   a  a source that aborts mid-study, C-GET (retrieve: get; FAKEG):
#      study 1: A-ABORT instead of its 3rd instance, once; study 2: the
#      TCP connection closed half-way through its 4th instance's dataset
#      PDU, once. What arrived is kept (never asked for again), the rest
#      comes in the next round (IMAGE-level C-GETs of the missing ones
#      only): every instance migrated, the source's bytes at the target.
#   a' (a1) the same source aborting every time it comes to one instance
#      (study 3: its last one, study 4: its 2nd of 6): that instance
#      quarantined missing_at_source after retrieve_attempts rounds, the
#      abort in its detail; the other five of each study migrated.
#   a" (a2) C-MOVE (FAKEM, sub-operations on its own association to us):
#      A-ABORT of both associations instead of study 5's 3rd instance,
#      once: every instance migrated, the first two sent once.
#   b  the spool's file system full during a migration (FAKEB, 0.15 s per
#      sub-operation): a 16 MiB tmpfs on storage.spool_dir in a mount
#      namespace of our own (unshare -m: the whole script runs in it, so
#      the mount goes with it), filled to below storage.min_free once
#      study 6's C-GET has sent 2 instances, emptied 3 s later. While
#      full: C-STOREs refused 0xA700 (the source sees it), a warn line
#      naming the spool and its free space, /api/health degraded, no new
#      C-GET at the source (TESTING.md: jobs pause); once emptied the
#      batch ends done, every instance migrated and accepted by us once.
#      Without unshare or mount (no CAP_SYS_ADMIN), storage.min_free is
#      raised above the free space instead (SIGHUP) and lowered again.
#   c  the source's window closes while a batch runs (FAKEW, C-FINDs
#      answered after 0.25 s, image_query: series so that each study is
#      a STUDY, a SERIES and IMAGE-level C-FINDs): studies 7 to 9, two worked at once; the
#      window set to never (config rewritten, SIGHUP; config-changed
#      logged) while the first two are being queried. Their queries
#      finish; for 3 s no C-FIND or C-GET reaches the source, vnamigd
#      starts no retrieve (log) and the batch's counts stay still with
#      study 9 queued; window always again: the batch ends done with every
#      instance migrated, and vnamigd still calls as VNAMIG.
#   d  early sends and the target's last association: a storescp --fork
#      (SCP2) with max_associations 2, migration.max_studies 3 (SIGHUP).
#      Studies 10 and 11 from FAKEY (0.4 s per sub-operation) both send
#      to SCP2 while they are retrieved, on both its associations (no
#      other operation waits for one). Then study 12 from FAKEZ (fast) to
#      SCP2: its send asks for an association, one of the early sends
#      yields (mig-send-early-yield) and study 12's batch ends done while
#      studies 10 and 11 are still being retrieved; the one that yielded
#      sends early again afterwards. Both batches end done, every
#      instance at SCP2 with the source's bytes.
#   e  the same storescp (it answers any called AE title) as SCP1, with
#      max_associations 1: studies 13 and 15 from FAKEY (both CT,
#      explicit VR: the same contexts; gen_studies makes odd studies CT),
#      retrieved at once, take turns on the one association (each sends
#      what it has, then passes it on): both send instances while they
#      are retrieved.
#   f  a target slow to take an association (t/faketarget.py SLOWTGT,
#      --accept-delay 1.5, max_associations 1, verify: counts): study 14
#      from FAKEZ (fast) is retrieved whole while the association its
#      early send asked for is still being opened; the early send ends
#      with the retrieve, and the association, once open, must go to the
#      study's send proper at once. Before the fix it stayed idle in the
#      pool, nothing woke the queue, and the send waited until the peer
#      dropped the association (a dcmqrscp: 60 s; prefetch.t saw it).
#
# Every batch's report must account for each instance once and add up to
# 100%, and the target's files must hold the source's bytes; vnamigd
# must stop cleanly with no sanitizer report in its log.
#
# MIGSRCFAULT_CASES (default "a a1 a2 b c d e f"; a1 is a', a2 is a") runs
# only the cases named (to look at one).

# The mount namespace for b: the script runs again in one of its own
# (private propagation: nothing is seen outside it, and it goes when the
# script ends), MIGSRCFAULT_NS holding the namespace it came from. Where
# it cannot be made (not root, no unshare, no CAP_SYS_ADMIN), or with
# MIGSRCFAULT_FULL=min_free (to test that way), b uses storage.min_free.
if [ -z "${MIGSRCFAULT_NS:-}" ] && [ "${MIGSRCFAULT_FULL:-tmpfs}" = tmpfs ] &&
    [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 &&
    unshare -m --propagation private true 2>/dev/null; then
	MIGSRCFAULT_NS=$(readlink /proc/self/ns/mnt)
	export MIGSRCFAULT_NS
	exec unshare -m --propagation private /bin/sh \
	    "$top_srcdir/t/migsrcfault.t" "$@"
fi

. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
export LC_ALL=C

FS_PIDS=
SCP_PID=
SCP2_PID=
SLOW_PID=
SPOOLFS=$T_DIR/spoolfs
MOUNTED=

# stop_all: the fake sources, the storescp; vnamigd (if still running)
# and the tmpfs, so that lib.sh's cleanup can remove $T_DIR.
stop_all() {
	for p in $FS_PIDS $SCP_PID $SCP2_PID $SLOW_PID; do
		qp_stop "$p"
	done
	FS_PIDS=
	SCP_PID=
	SCP2_PID=
	SLOW_PID=
	if [ -n "$MOUNTED" ]; then
		[ -n "$DAEMON_PID" ] && stop_daemon KILL
		umount "$SPOOLFS" 2>/dev/null || umount -l "$SPOOLFS"
		MOUNTED=
	fi
}
trap 'stop_all; stop_peers; cleanup' EXIT

MIG_STOP=stop_all	# what mig_bail stops besides vnamigd and the DCMTK peers

# start_fake NAME PORT [OPTIONS...]: fakesource.py serving $T_DIR/gen, AE
# title FAKE<NAME>, on PORT; its log $T_DIR/fake-NAME.log.
start_fake() {
	sf_n=$1
	sf_p=$2
	shift 2
	qp_port_free "$sf_p" || return 1
	: >"$T_DIR/fake-$sf_n.log"
	"$PY" "$FS" "$sf_p" "FAKE$sf_n" "$T_DIR/fake-$sf_n.log" \
	    --load "$T_DIR/gen" "$@" </dev/null >"$T_DIR/fake-$sf_n.err" 2>&1 &
	FS_PIDS="$FS_PIDS $!"
	qp_wait "$!" 10 echoscu -aet VNAMIG -aec "FAKE$sf_n" 127.0.0.1 \
	    "$sf_p" || qp_fail "fakesource $sf_n on port $sf_p does not \
answer C-ECHO" "$T_DIR/fake-$sf_n.err"
}

# batch NAME SOURCE STUDY...: POST /api/batches from SOURCE to the
# storescp; sets BID (miglib's submit).
batch() { batch_to scp "$@"; }

# batch_to TARGET NAME SOURCE STUDY...: batch's, to TARGET.
batch_to() {
	bt_t=$1
	bt_name=$2
	bt_src=$3
	shift 3
	bt_l=$(printf "$ROOT.1.%s\n" "$@" | jq -R . | jq -sc .)
	submit "$bt_name" "{\"source\":\"$bt_src\",\"target\":\"$bt_t\",\"study_instance_uids\":$bt_l}"
}

# sop STUDY SERIES INSTANCE: a generated SOP Instance UID.
sop() { echo "$ROOT.3.$1.$2.$3"; }

# row ID SOP FIELD: a field of SOP's instance row in batch ID's report.
row() { rj "$1" ".instances[] | select(.sop_instance_uid == \"$2\") | .$3"; }

# outcomes ID STUDY: "OUTCOME n, ..." of the rows of STUDY in batch ID.
outcomes() {
	rj "$1" ".instances[] | select(.sop_instance_uid | startswith(\"$ROOT.3.$2.\")) | .outcome" |
	    sort | uniq -c | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $1}'
}

# (report_check, t/miglib.sh: a batch's report adds up)

# at_target STUDY [SOP...]: what the storescp holds of STUDY, against the
# generated files: "N of M, K with the source's bytes" (the SOPs named
# are left out of M: not expected there); and the extra files of STUDY
# that are not expected, if any ("+ SOP ...").
at_target() {
	_st=$1
	shift
	"$PY" "$top_srcdir/t/scpcheck.py" "$T_DIR/gen/index.tsv" "${AT_DIR:-$T_DIR/scp}" \
	    "$ROOT.1.$_st" --skip "$@"
}

# at_scp2 STUDY: at_target for SCP2.
at_scp2() { AT_DIR=$T_DIR/scp2 at_target "$@"; }

# scp2_has STUDY: SCP2 holds at least one instance of STUDY.
scp2_has() { ls "$T_DIR/scp2" | grep -q "$ROOT\.3\.$1\."; }

# substores NAME SOP: the statuses of the sub-operations fakesource NAME
# sent for SOP ("0x0000", "0xa700 0x0000"; "" when never sent).
substores() {
	grep "^substore $2 " "$T_DIR/fake-$1.log" | awk '{print $3}' |
	    tr '\n' ' ' | sed 's/ $//'
}

# count_ge FILE ERE N: FILE has at least N lines matching ERE (for
# wait_until: read at each try).
count_ge() { [ "$(grep -Ec -- "$2" "$1")" -ge "$3" ]; }

# health: GET /api/health's status.
health() { curl -s -m 5 "$base/api/health" | jq -r '.status // empty' 2>/dev/null; }

# ---- the sources, the target ----
gen_studies "$T_DIR/gen" 15 2 3
ok $? "90 instances generated (15 studies x 2 series x 3)"
n=$(($(wc -l <"$T_DIR/gen/index.tsv")))
is "$n" 90 "  and indexed"

d_port=$(free_port)
pg=$(free_port)
pm=$(free_port)
pb=$(free_port)
pw=$(free_port)
py=$(free_port)
pz=$(free_port)
scp_port=$(free_port)
scp2_port=$(free_port)
slow_port=$(free_port)
po=$(free_port)
start_fake G "$pg" \
    --abort-once-at "$(sop 1 1 3)" --drop-once-at "$(sop 2 2 1)" \
    --abort-at "$(sop 3 2 3)" --abort-at "$(sop 4 1 2)" &&
    start_fake M "$pm" --dest "VNAMIG=$d_port" --abort-once-at "$(sop 5 1 3)" &&
    start_fake B "$pb" --slow 0.15 &&
    start_fake W "$pw" --slow 0.05 --slow-find 0.25 &&
    start_fake Y "$py" --slow 0.4 &&
    start_fake Z "$pz" &&
    start_fake O "$po" --odd-ts 1.2.3.4.5.6 ||
    mig_bail "the fake sources run"
pass "7 fake sources run (G $pg, M $pm, B $pb, W $pw, Y $py, Z $pz, O $po)"
scp_target
# SCP2 (d): a process per association
mkdir -p "$T_DIR/scp2"
qp_port_free "$scp2_port" || bail "the second storescp's port is free"
storescp -aet SCP2 -od "$T_DIR/scp2" +B -dhl --fork "$scp2_port" \
    </dev/null >"$T_DIR/storescp2.log" 2>&1 &
SCP2_PID=$!
qp_wait "$SCP2_PID" 10 echoscu -aet VNAMIG -aec SCP2 127.0.0.1 \
    "$scp2_port" || mig_bail "storescp --fork (SCP2) runs"
pass "storescp --fork (SCP2) runs on $scp2_port"
# SLOWTGT (f): every A-ASSOCIATE-AC 1.5 s late
qp_port_free "$slow_port" || bail "the slow target's port is free"
: >"$T_DIR/slow.log"
"$PY" "$top_srcdir/t/faketarget.py" "$slow_port" SLOWTGT "$T_DIR/slow.log" \
    --dir "$T_DIR/slow" --accept-delay 1.5 </dev/null >"$T_DIR/slow.err" 2>&1 &
SLOW_PID=$!
qp_wait "$SLOW_PID" 10 echoscu -aet VNAMIG -aec SLOWTGT 127.0.0.1 \
    "$slow_port" || mig_bail "faketarget.py SLOWTGT runs"
pass "faketarget.py SLOWTGT (associations 1.5 s late) runs on $slow_port"

# ---- the spool's file system (b) ----
# A 16 MiB tmpfs on the spool's directory (the spool writes zeros 4 MiB
# ahead of its records: store/spool.c PREZERO), when the script got its
# mount namespace (root, or CAP_SYS_ADMIN); else b uses min_free.
FULL_BY=min_free
spool_dir=$T_DIR/var/spool
if [ "${MIGSRCFAULT_FULL:-tmpfs}" = tmpfs ] && [ -n "${MIGSRCFAULT_NS:-}" ] &&
    [ "$(readlink /proc/self/ns/mnt)" != "$MIGSRCFAULT_NS" ] &&
    mkdir -p "$SPOOLFS" &&
    mount -t tmpfs -o size=16m,mode=0700 vnamig-t-spool "$SPOOLFS" \
    2>"$T_DIR/mount.err"; then
	MOUNTED=1
	FULL_BY=tmpfs
	spool_dir=$SPOOLFS/spool
	pass "b: a 16 MiB tmpfs on the spool's directory ($SPOOLFS, in a mount namespace)"
else
	diag "no tmpfs of our own (${MIGSRCFAULT_FULL:-no mount namespace}$(cat \
	    "$T_DIR/mount.err" 2>/dev/null)): b raises storage.min_free above" \
	    "the free space instead"
	pass "b: will raise storage.min_free above the free space (no tmpfs here)"
fi

# ---- vnamigd ----
# mig_conf WINDOW MIN_FREE [MAX_STUDIES]: the configuration, FAKEW's
# window as given (max_studies 2 unless given).
conf=$T_DIR/vnamigd.yaml
mig_conf() {
	cat >"$conf.new" <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/var
listen:
  dicom: { address: 127.0.0.1, port: $d_port }
  http:  { address: 127.0.0.1, port: 0 }
limits:
  shutdown_grace: 5s
  dimse_timeout: 10s
storage:
  spool_dir: $spool_dir
  min_free: $2
migration:
  max_studies: ${3:-2}
  retrieve_attempts: 3
  send_attempts: 3
  retry_backoff: 200ms
  retry_backoff_max: 1s
peers:
  - { name: fg, ae_title: FAKEG, host: 127.0.0.1, port: $pg, role: source, retrieve: get }
  - { name: fm, ae_title: FAKEM, host: 127.0.0.1, port: $pm, role: source, retrieve: move }
  - { name: fb, ae_title: FAKEB, host: 127.0.0.1, port: $pb, role: source, retrieve: get }
  - { name: fw, ae_title: FAKEW, host: 127.0.0.1, port: $pw, role: source, retrieve: get, image_query: series, window: "$1" }
  - { name: fy, ae_title: FAKEY, host: 127.0.0.1, port: $py, role: source, retrieve: get }
  - { name: fz, ae_title: FAKEZ, host: 127.0.0.1, port: $pz, role: source, retrieve: get }
  - { name: fo, ae_title: FAKEO, host: 127.0.0.1, port: $po, role: source, retrieve: get }
  - { name: scp, ae_title: STORESCP, host: 127.0.0.1, port: $scp_port, role: target, verify: none, max_associations: 1 }
  - { name: scp2, ae_title: SCP2, host: 127.0.0.1, port: $scp2_port, role: target, verify: none, max_associations: 2 }
  - { name: scp1, ae_title: SCP1, host: 127.0.0.1, port: $scp2_port, role: target, verify: none, max_associations: 1 }
  - { name: slow, ae_title: SLOWTGT, host: 127.0.0.1, port: $slow_port, role: target, verify: counts, max_associations: 1 }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
	mv "$conf.new" "$conf"
}
# reload: SIGHUP, wait for the reload's end; 1 if it failed or never came.
reload() {
	rl_n=$(grep -Ec ' reload-(done|failed) ' "$T_DIR/daemon.log")
	kill -HUP "$DAEMON_PID" 2>/dev/null || return 1
	wait_until 10 count_ge "$T_DIR/daemon.log" ' reload-(done|failed) ' \
	    $((rl_n + 1)) || return 1
	! grep -E ' reload-(done|failed) ' "$T_DIR/daemon.log" | tail -n 1 |
	    grep -q reload-failed
}

MIN_FREE=1MiB
mig_conf always "$MIN_FREE"
mig_start mig_bail
is "$(health)" ok "GET /api/health: ok"

# case NAME: 0 when case NAME is to run.
case_on() {
	case " ${MIGSRCFAULT_CASES:-a a1 a2 b c d e f g} " in
	*" $1 "*) return 0 ;;
	esac
	return 1
}

# ---- a: C-GET, an A-ABORT and a dropped connection, once each ----
if case_on a; then
	S_AB=$(sop 1 1 3)
	S_DROP=$(sop 2 2 1)
	batch "a: studies 1 and 2 from FAKEG (C-GET; an A-ABORT, a TCP drop)" fg 1 2
	b_a=$BID
	wait_batch "$b_a" 30
	is "$BSTATE" "done" "a: batch $b_a reaches done"
	report "$b_a"
	report_check "$b_a" a 12 migrated
	is "$(at_target 1)" "6 of 6, 6 with the source's bytes" "a: storescp holds study 1, the source's bytes"
	is "$(at_target 2)" "6 of 6, 6 with the source's bytes" "a: storescp holds study 2, the source's bytes"
	is "$(grep -c "^abort-at $S_AB\$" "$T_DIR/fake-G.log")/$(grep -c "^drop-at $S_DROP\$" "$T_DIR/fake-G.log")" \
	    1/1 "a: FAKEG aborted once at ...${S_AB#"$ROOT"} and dropped once at ...${S_DROP#"$ROOT"}"
	# what arrived before the fault was sent once and kept: never asked for
	# again; the rest came in the next round (IMAGE-level C-GETs)
	is "$(substores G "$(sop 1 1 1)")/$(substores G "$(sop 1 1 2)")" "0x0000/0x0000" \
	    "a: study 1's first two (before the A-ABORT) sent once"
	is "$(substores G "$(sop 2 1 1)") $(substores G "$(sop 2 1 2)") $(substores G "$(sop 2 1 3)")" \
	    "0x0000 0x0000 0x0000" "a: study 2's first three (before the drop) sent once"
	is "$(substores G "$S_AB")/$(substores G "$S_DROP")" "0x0000/0x0000" \
	    "a: the aborted and the half-sent one sent whole once, in the next round"
	is "$(grep -c "^get IMAGE 1 $ROOT.1.1\$" "$T_DIR/fake-G.log")/$(grep -c "^get IMAGE 1 $ROOT.1.2\$" "$T_DIR/fake-G.log")" \
	    4/3 "a: the next round asked for the missing ones only (4 and 3 IMAGE-level C-GETs)"
	grep -q " mig-missing batch=$b_a study=$ROOT.1.1 missing=4 round=1 " "$T_DIR/daemon.log"
	ok $? "a: the daemon logs study 1's 4 missing after round 1 (mig-missing)"
	grep -q " mig-missing batch=$b_a study=$ROOT.1.2 missing=3 round=1 " "$T_DIR/daemon.log"
	ok $? "a: the daemon logs study 2's 3 missing after round 1 (mig-missing)"
	grep -q " mig-missing batch=$b_a study=$ROOT.1.1 .*last=\"aborted by the peer\"" "$T_DIR/daemon.log"
	ok $? "a: study 1's mig-missing says the source aborted"
	grep -q " mig-missing batch=$b_a study=$ROOT.1.2 .*last=\"closed by peer\"" "$T_DIR/daemon.log"
	ok $? "a: study 2's mig-missing says the source closed the connection"
fi

# ---- a': C-GET, the source aborts every time at one instance ----
if case_on a1; then
	S_LAST=$(sop 3 2 3)
	S_MID=$(sop 4 1 2)
	batch "a': studies 3 and 4 from FAKEG (an A-ABORT every time at one instance)" fg 3 4
	b_p=$BID
	wait_batch "$b_p" 30
	is "$BSTATE" "done" "a': batch $b_p reaches done"
	report "$b_p"
	report_check "$b_p" "a'" 12 migrated "$S_LAST=quarantined:missing_at_source" \
	    "$S_MID=quarantined:missing_at_source"
	is "$(outcomes "$b_p" 3)" "migrated 5, quarantined 1" \
	    "a': study 3 (the last instance aborts): 5 migrated, 1 quarantined"
	# the instances after the one that aborts must still be asked for
	# (TESTING.md fault 4: "the rest re-requested"), not be held back by
	# it and quarantined with it
	is "$(outcomes "$b_p" 4)" "migrated 5, quarantined 1" \
	    "a': study 4 (the 2nd instance aborts): 5 migrated, 1 quarantined"
	for x in "$S_LAST" "$S_MID"; do
		dt=$(row "$b_p" "$x" detail)
		like "$dt" 'not received after 3 retrieve round' \
		    "a': ...${x#"$ROOT"}: its detail says after 3 rounds"
		like "$dt" '[Aa]bort' "a': ...${x#"$ROOT"}: its detail names the abort"
		is "$(grep -c "^abort-at $x\$" "$T_DIR/fake-G.log")" 3 \
		    "a': FAKEG aborted at ...${x#"$ROOT"} 3 times (retrieve_attempts)"
	done
	is "$(at_target 3 "$S_LAST")" "5 of 5, 5 with the source's bytes" \
	    "a': storescp holds study 3 but ...${S_LAST#"$ROOT"}"
	is "$(at_target 4 "$S_MID")" "5 of 5, 5 with the source's bytes" \
	    "a': storescp holds study 4 but ...${S_MID#"$ROOT"}"
fi

# ---- a": C-MOVE, both associations aborted once ----
if case_on a2; then
	S_MV=$(sop 5 1 3)
	batch "a\": study 5 from FAKEM (C-MOVE; A-ABORT mid sub-operations)" fm 5
	b_m=$BID
	wait_batch "$b_m" 30
	is "$BSTATE" "done" "a\": batch $b_m reaches done"
	report "$b_m"
	report_check "$b_m" "a\"" 6 migrated
	is "$(at_target 5)" "6 of 6, 6 with the source's bytes" "a\": storescp holds study 5, the source's bytes"
	is "$(grep -c "^abort-at $S_MV\$" "$T_DIR/fake-M.log")" 1 "a\": FAKEM aborted once"
	is "$(substores M "$(sop 5 1 1)")/$(substores M "$(sop 5 1 2)")/$(substores M "$S_MV")" \
	    "0x0000/0x0000/0x0000" "a\": the two before the abort sent once, the aborted one once after"
	is "$(grep -c "^move IMAGE 1 $ROOT.1.5\$" "$T_DIR/fake-M.log")" 4 \
	    "a\": the next round asked for the 4 missing ones only"
fi

# ---- b: the spool's file system full during a migration ----
# fill_spool, empty_spool: below storage.min_free and back (tmpfs: a
# file leaving 512 KiB, min_free being 1 MiB; else min_free raised)
fill_spool() {
	if [ "$FULL_BY" = tmpfs ]; then
		fb_free=$(free_bytes "$SPOOLFS")
		head -c $((fb_free - 524288)) /dev/zero >"$SPOOLFS/filler"
	else
		mig_conf always 1000000GiB
		reload
	fi
}
empty_spool() {
	if [ "$FULL_BY" = tmpfs ]; then
		rm -f "$SPOOLFS/filler"
	else
		mig_conf always "$MIN_FREE"
		reload
	fi
}
if case_on b; then
	nl0=$(wc -l <"$T_DIR/daemon.log")
	batch "b: study 6 from FAKEB (the spool fills up during its retrieve)" fb 6
	b_b=$BID
	# two of its instances in, then the spool's file system fills up
	wait_until 15 count_ge "$T_DIR/fake-B.log" "^substore $ROOT\.3\.6\..* 0x0000\$" 2
	ok $? "b: FAKEB's C-GET has begun (2 instances sent)"
	nb_fill=$(wc -l <"$T_DIR/fake-B.log")
	fill_spool
	ok $? "b: the spool's file system filled ($FULL_BY: $(free_bytes "$spool_dir") bytes free)"
	t_full=$(date +%s.%N)
	wait_until 10 grep -q "^substore $ROOT.3.6.* 0xa700\$" "$T_DIR/fake-B.log"
	ok $? "b: FAKEB's C-STOREs are refused 0xA700 (out of resources) while full"
	is "$(health)" degraded "b: GET /api/health: degraded while the spool is full"
	sed -n "$((nl0 + 1)),\$p" "$T_DIR/daemon.log" >"$T_DIR/daemon-b.log"
	grep -E ' (warn|error) ' "$T_DIR/daemon-b.log" | grep -i spool |
	    grep -Eq 'free[_a-z]*=[0-9]+'
	rc=$?
	ok $rc "b: a warn/error line names the spool and its free space (free=N)"
	if [ $rc != 0 ]; then
		diag "the warn/error lines about it:"
		grep -E ' (warn|error) ' "$T_DIR/daemon-b.log" | grep -E 'spool|free|space' |
		    sort -u -k3,3 | head -n 3 | sed 's/^/#   /'
	fi
	# full for 3 s in all, then emptied
	sleep "$("$PY" -c "import time, sys; print(max(0.0, 3 - (time.time() - float(sys.argv[1]))))" "$t_full")"
	api GET "/api/batches/$b_b"
	is "$(j '.batch.state')" running "b: batch $b_b still running after 3 s full"
	# TESTING.md fault 2: jobs pause while the disk is full and resume when
	# space returns: the C-GET under way when it filled up ends, and no other
	# starts (each one would spend one of migration.retrieve_attempts on our
	# own disk: a longer outage would end with the instances quarantined
	# missing_at_source, which the source does have)
	nb_full=$(wc -l <"$T_DIR/fake-B.log")
	is "$(sed -n "$((nb_fill + 1)),${nb_full}p" "$T_DIR/fake-B.log" | grep -c '^get ')" 0 \
	    "b: no C-GET started at FAKEB while the spool was full (jobs paused)"
	empty_spool
	ok $? "b: the spool's file system emptied ($(free_bytes "$spool_dir") bytes free)"
	wait_batch "$b_b" 30
	is "$BSTATE" "done" "b: batch $b_b reaches done"
	report "$b_b"
	report_check "$b_b" b 6 migrated
	is "$(at_target 6)" "6 of 6, 6 with the source's bytes" "b: storescp holds study 6, the source's bytes"
	n_ref=$(grep -c "^substore $ROOT.3.6.* 0xa700\$" "$T_DIR/fake-B.log")
	n_ok=$(grep "^substore $ROOT.3.6.* 0x0000\$" "$T_DIR/fake-B.log" | sort -u | wc -l)
	n_okl=$(grep -c "^substore $ROOT.3.6.* 0x0000\$" "$T_DIR/fake-B.log")
	is "$n_ok/$n_okl" 6/6 "b: each instance accepted by us once ($n_ref refusals before)"
	is "$(health)" ok "b: GET /api/health: ok again"
	grep -q " store-refused .*sop_instance=$ROOT.3.6." "$T_DIR/daemon-b.log"
	ok $? "b: the refusals are logged (store-refused)"
fi

# ---- c: the source's window closes while the batch runs ----
if case_on c; then
	batch "c: studies 7 to 9 from FAKEW (its window closes while they are queried)" fw 7 8 9
	b_c=$BID
	# the first SERIES-level answer: the studies are being queried
	wait_until 15 grep -q "^find SERIES " "$T_DIR/fake-W.log"
	ok $? "c: FAKEW answers the query of the first studies"
	nc0=$(grep -c ' config-changed ' "$T_DIR/daemon.log")
	mig_conf never "$MIN_FREE"
	reload
	ok $? "c: the window closed (config rewritten, SIGHUP, reload-done)"
	grep ' config-changed ' "$T_DIR/daemon.log" | tail -n +$((nc0 + 1)) | grep -q 'window'
	ok $? "c: the log says the window changed (config-changed)"
	nw1=$(wc -l <"$T_DIR/fake-W.log")
	nd1=$(wc -l <"$T_DIR/daemon.log")
	# the queries under way finish (each ends with its 2nd IMAGE-level
	# C-FIND); then nothing new starts at the source for 3 s
	sleep 3
	tail -n +$((nw1 + 1)) "$T_DIR/fake-W.log" >"$T_DIR/c-closed"
	is "$(grep -Ec "^find IMAGE [0-9]+ $ROOT\.1\.[78]\$" "$T_DIR/fake-W.log")" 4 \
	    "c: the queries under way finished (2 IMAGE-level C-FINDs for each of 2 studies)"
	is "$(grep -Ec '^(get|move) ' "$T_DIR/c-closed")" 0 \
	    "c: no C-GET started at FAKEW while its window was closed"
	is "$(grep -c " $ROOT.1.9\$" "$T_DIR/c-closed")" 0 \
	    "c: study 9 not queried while closed"
	# vnamigd's side: no retrieve step started (none at FAKEW may also mean
	# that it could not connect)
	sed -n "$((nd1 + 1)),\$p" "$T_DIR/daemon.log" >"$T_DIR/daemon-c.log"
	is "$(grep -Ec " qr-start .*op=C-GET | mig-missing batch=$b_c " "$T_DIR/daemon-c.log")" 0 \
	    "c: vnamigd started no retrieve while closed (no C-GET qr-start, no mig-missing)"
	[ -s "$T_DIR/daemon-c.log" ] && grep -E " qr-start .*op=C-GET | mig-missing batch=$b_c " \
	    "$T_DIR/daemon-c.log" | head -n 2 | cut -c1-240 | sed 's/^/#   /'
	api GET "/api/batches/$b_c"
	p1=$(j '.batch.progress.instances | tostring')
	st1=$(j '.batch.state')
	sd1=$(j '.batch.progress.studies.done // 0')
	sleep 1
	api GET "/api/batches/$b_c"
	p2=$(j '.batch.progress.instances | tostring')
	is "$st1/$sd1/$(j '.batch.progress.studies.queued // 0')" "running/0/1" \
	    "c: batch $b_c running while closed, no study done, study 9 queued"
	is "$p2" "$p1" "c: its instance counts stay still ($p1)"
	mig_conf always "$MIN_FREE"
	reload
	ok $? "c: the window open again (SIGHUP)"
	wait_batch "$b_c" 30
	is "$BSTATE" "done" "c: batch $b_c reaches done"
	report "$b_c"
	report_check "$b_c" c 18 migrated
	for s in 7 8 9; do
		is "$(at_target "$s")" "6 of 6, 6 with the source's bytes" "c: storescp holds study $s, the source's bytes"
	done
	# after the reloads, vnamigd still calls with its own AE title
	is "$(sed -n 's/^assoc //p' "$T_DIR/fake-W.log" | sort -u | tr -c 'A-Z0-9\n' '?' |
	    tr '\n' ' ')" "VNAMIG " \
	    "c: every association FAKEW got called from VNAMIG (after the reloads too)"
fi

# ---- d: early sends and the target's last association ----
if case_on d; then
	mig_conf always "$MIN_FREE" 3
	reload
	ok $? "d: migration.max_studies 3 (SIGHUP)"
	batch_to scp2 "d: studies 10 and 11 from FAKEY (0.4 s per sub-operation) to SCP2 (2 associations)" fy 10 11
	b_d1=$BID
	# both send while retrieved: the target's last association is
	# theirs while nothing else waits for it
	wait_until 20 sh -c "ls '$T_DIR/scp2' | grep -q '$ROOT\.3\.10\.' &&
	    ls '$T_DIR/scp2' | grep -q '$ROOT\.3\.11\.'"
	ok $? "d: SCP2 gets instances of both studies while they are retrieved"
	api GET "/api/batches/$b_d1"
	is "$(j .batch.state)" running "d: batch $b_d1 is still running then"
	batch_to scp2 "d: study 12 from FAKEZ (no delay) to SCP2" fz 12
	b_d2=$BID
	wait_batch "$b_d2" 30
	is "$BSTATE" done "d: batch $b_d2 reaches done"
	api GET "/api/batches/$b_d1"
	is "$(j .batch.state)" running \
	    "d: ... while batch $b_d1 is still running (an early send gave way)"
	grep -Eq " mig-send-early-yield batch=$b_d1 study=$ROOT\.1\.1[01] target=scp2 " \
	    "$T_DIR/daemon.log"
	ok $? "d: one of batch $b_d1's early sends yielded (mig-send-early-yield)"
	wait_batch "$b_d1" 60
	is "$BSTATE" done "d: batch $b_d1 reaches done"
	report "$b_d1"
	report_check "$b_d1" d 12 migrated
	report "$b_d2"
	report_check "$b_d2" d 6 migrated
	for st in 10 11 12; do
		is "$(at_scp2 "$st")" "6 of 6, 6 with the source's bytes" \
		    "d: SCP2 holds study $st, the source's bytes"
	done
	for st in 10 11; do
		grep -Eq " mig-send-early batch=$b_d1 study=$ROOT\.1\.$st sent=[1-9]" \
		    "$T_DIR/daemon.log"
		ok $? "d: study $st sent instances while it was retrieved (mig-send-early)"
	done
	# the one that gave way went on sending early once it could
	y_line=$(grep -E " mig-send-early-yield batch=$b_d1 " "$T_DIR/daemon.log" | head -n 1)
	y_st=$(printf '%s\n' "$y_line" | sed -n 's/.* study=\([0-9.]*\) .*/\1/p')
	y_at=$(printf '%s\n' "$y_line" | sed -n 's/.* sent=\([0-9]*\) .*/\1/p')
	y_end=$(grep -E " mig-send-early batch=$b_d1 study=$y_st sent=" "$T_DIR/daemon.log" |
	    tail -n 1 | sed -n 's/.* sent=\([0-9]*\).*/\1/p')
	[ -n "$y_at" ] && [ -n "$y_end" ] && [ "$y_end" -gt "$y_at" ]
	ok $? "d: the study that gave way sent more early afterwards (${y_at:-?} at the yield, ${y_end:-?} in all)"
fi

# ---- e: early sends take turns on a target's one association ----
if case_on e; then
	case_on d || { mig_conf always "$MIN_FREE" 3; reload; }
	batch_to scp1 "e: studies 13 and 15 from FAKEY (0.4 s per sub-operation) to SCP1 (1 association)" fy 13 15
	b_e=$BID
	wait_batch "$b_e" 60
	is "$BSTATE" done "e: batch $b_e reaches done"
	report "$b_e"
	report_check "$b_e" e 12 migrated
	for st in 13 15; do
		is "$(at_scp2 "$st")" "6 of 6, 6 with the source's bytes" \
		    "e: SCP1 holds study $st, the source's bytes"
		grep -Eq " mig-send-early batch=$b_e study=$ROOT\.1\.$st sent=[1-9]" \
		    "$T_DIR/daemon.log"
		ok $? "e: study $st sent instances while it was retrieved, on the one association (mig-send-early)"
	done
fi

# ---- f: an early send's association still opening when its retrieve ends ----
if case_on f; then
	batch_to slow "f: study 14 from FAKEZ (fast) to SLOWTGT (associations 1.5 s late, 1 at a time)" fz 14
	b_f=$BID
	t_f=$(date +%s)
	wait_batch "$b_f" 30
	is "$BSTATE" done "f: batch $b_f reaches done"
	dt=$(($(date +%s) - t_f))
	[ "$dt" -le 15 ]
	ok $? "f: in $dt s (a pre-flight, a send and a verification, 1.5 s an association; no 60 s wait for an idle one)"
	report "$b_f"
	report_check "$b_f" f 6 migrated
	is "$(grep -c "^store $ROOT\.3\.14\.[0-9.]* 0x0000" "$T_DIR/slow.log")" 6 \
	    "f: SLOWTGT stored the study's 6 instances (0x0000)"
	# the case itself: an association with SLOWTGT (asked for while the
	# study was retrieved: the pre-flight's went before) was established
	# after the batch's C-GET had ended
	awk -v b="$b_f" '
	    / batch-created / && index($0, " id=" b " ") { on = 1 }
	    on && !conn && / qr-start / && /op=C-GET/ {
		match($0, /conn=[0-9]+/); conn = substr($0, RSTART, RLENGTH) }
	    on && conn && !done && / qr-done / && index($0, conn " ") { done = NR }
	    done && NR > done && / assoc-established / && /called=SLOWTGT/ { n++ }
	    END { printf "C-GET done at log line %d, SLOWTGT associations established after it: %d", done, n }' \
	    "$T_DIR/daemon.log" >"$T_DIR/f.out"
	grep -q 'after it: [1-9]' "$T_DIR/f.out"
	ok $? "f: the association came after the retrieve had ended ($(cat "$T_DIR/f.out"))"
fi

# ---- g: a source that accepts a C-GET's storage contexts in a syntax
# never proposed, and stores on them (PS3.8 9.3.3.2 allows only one of
# those proposed): vnamigd does not take such a context, so what comes on
# it is refused like any PDV on a context never accepted (the daemon fell
# over on it before: a context with no known syntax) ----
if case_on g; then
	batch "g: study 14 from FAKEO (storage contexts accepted in 1.2.3.4.5.6)" fo 14
	b_g=$BID
	wait_batch "$b_g" 60
	is "$BSTATE" done "g: batch $b_g reaches done"
	report "$b_g"
	report_check "$b_g" g 6 quarantined
	grep -q 'assoc-context-odd .*transfer_syntax=1\.2\.3\.4\.5\.6 ' "$T_DIR/daemon.log"
	ok $? "g: the contexts accepted in a syntax never proposed are logged and not used"
	kill -0 "$DAEMON_PID" && [ "$(health)" = ok ]
	ok $? "g: vnamigd still runs (GET /api/health: ok)"
fi

stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
grep -En 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' \
    "$T_DIR/daemon.log" >"$T_DIR/san.txt"
is "$(wc -l <"$T_DIR/san.txt")" 0 "no sanitizer report in the daemon's log"
[ -s "$T_DIR/san.txt" ] && head -n 5 "$T_DIR/san.txt" | sed 's/^/#   /'
stop_all
done_testing
