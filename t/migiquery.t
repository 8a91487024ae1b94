#!/bin/sh
# migiquery.t — how the migration engine lists a study's instances at a
# source (peers[].image_query, src/mig/mig.c scan_*): with one IMAGE-level
# C-FIND for the whole study (the relational way), or series by series
# (the hierarchical model every Q/R SCP must answer), and what auto learns
# from a source that only answers the latter. t/fakesource.py as the
# sources (each its own port, AE title and peer, max_associations 1: one
# study at a time there, so what the first study taught holds for the
# next), --hierarchical making it answer an IMAGE-level C-FIND without a
# single Series Instance UID its own way; DCMTK's storescp as the target
# (verify: none). 18 studies x 3 series x 2 instances; each case migrates
# three of them in one batch, all six batches at once.
#
#   A  auto, a source that answers the whole-study query (FAKEA): per
#      study one STUDY-level and one whole-study IMAGE-level C-FIND, no
#      SERIES level; mig-image-query model=study logged once
#   R  auto, --hierarchical refuse (0xA900): the first study asks the
#      whole-study way once, then per series; model=series logged once,
#      the status in its why; the other studies per series only
#   E  auto, --hierarchical empty (no match, 0x0000): the empty answer is
#      asked again per series; model=series, "listed 0 instances"
#   N  auto, --hierarchical noseries (answers without their series): the
#      same, model=series "listed 6 ... (without their series)"
#   S  image_query series, a source that would answer the whole-study
#      query (FAKES): never asked that way; no mig-image-query line
#   T  image_query study, --hierarchical noseries (FAKET): every study
#      asks the whole-study way and, its answers lacking their series,
#      again per series; nothing learned (no mig-image-query line)
#
# In each case every instance is migrated (the batch's report: 18 of 18,
# each once) with the source's bytes at the storescp; no fake source
# logged an error; vnamigd stops cleanly with no sanitizer report.
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/qrpeers.sh"
. "$top_srcdir/t/miglib.sh"
export LC_ALL=C

FS_PIDS=
SCP_PID=

# stop_all: the fake sources and the storescp.
stop_all() {
	for p in $FS_PIDS $SCP_PID; do
		qp_stop "$p"
	done
	FS_PIDS=
	SCP_PID=
}
trap 'stop_all; cleanup' EXIT

MIG_STOP=stop_all	# what mig_bail stops besides vnamigd and the DCMTK peers

CASES='A R E N S T'
# case_of C: case C's fakesource options (OPTS), image_query (IQ; "-":
# not configured, auto by default), first of its three studies (FIRST),
# peer name (PEER).
case_of() {
	case $1 in
	A) OPTS='' IQ=- FIRST=1 ;;
	R) OPTS='--hierarchical refuse' IQ=auto FIRST=4 ;;
	E) OPTS='--hierarchical empty' IQ=auto FIRST=7 ;;
	N) OPTS='--hierarchical noseries' IQ=auto FIRST=10 ;;
	S) OPTS='' IQ=series FIRST=13 ;;
	T) OPTS='--hierarchical noseries' IQ=study FIRST=16 ;;
	esac
	PEER=f$(printf '%s' "$1" | tr A-Z a-z)
}

# ---- the sources, the target ----
gen_studies "$T_DIR/gen" 18 3 2
ok $? "108 instances generated (18 studies x 3 series x 2)"
is "$(($(wc -l <"$T_DIR/gen/index.tsv")))" 108 "  and indexed"

# all six started, then each waited for: fakesource.py as FAKE<C> on
# port_C, serving every generated study; its log $T_DIR/fake-C.log
# port_C (and PEERS, vnamigd's peers), pid_C
scp_port=$(free_port)
ports=" $scp_port "
PEERS=
for c in $CASES; do
	case_of "$c"
	p=$(free_port)
	while case $ports in *" $p "*) ;; *) false ;; esac; do
		p=$(free_port)
	done
	ports="$ports$p "
	eval "port_$c=$p"
	PEERS="$PEERS
  - { name: $PEER, ae_title: FAKE$c, host: 127.0.0.1, port: $p, role: source, retrieve: get, max_associations: 1$([ "$IQ" = - ] || echo ", image_query: $IQ") }"
	qp_port_free "$p" || mig_bail "port $p is free for FAKE$c"
	: >"$T_DIR/fake-$c.log"
	# shellcheck disable=SC2086 # the options are words
	"$PY" "$FS" "$p" "FAKE$c" "$T_DIR/fake-$c.log" --load "$T_DIR/gen" \
	    $OPTS </dev/null >"$T_DIR/fake-$c.err" 2>&1 &
	eval "pid_$c=$!"
	FS_PIDS="$FS_PIDS $!"
done
for c in $CASES; do
	eval "p=\$pid_$c pc=\$port_$c"
	qp_wait "$p" 10 echoscu -aet VNAMIG -aec "FAKE$c" 127.0.0.1 "$pc" ||
	    { qp_fail "fakesource $c on port $pc does not answer C-ECHO" \
	    "$T_DIR/fake-$c.err"; mig_bail "the fake sources run"; }
done
pass "6 fake sources run (FAKEA-FAKET)"
scp_target

# ---- vnamigd ----
conf=$T_DIR/vnamigd.yaml
cat >"$conf" <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/var
listen:
  dicom: { address: 127.0.0.1, port: 0 }
  http:  { address: 127.0.0.1, port: 0 }
limits:
  shutdown_grace: 5s
  dimse_timeout: 10s
storage:
  min_free: 1MiB
migration:
  max_studies: 6
  retry_backoff: 200ms
  retry_backoff_max: 1s
peers:$PEERS
  - { name: scp, ae_title: STORESCP, host: 127.0.0.1, port: $scp_port, role: target, verify: none, max_associations: 1 }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
YAML
mig_start mig_bail

# ---- the batches: each case's three studies from its source, at once ----
for c in $CASES; do
	case_of "$c"
	l=$(printf "$ROOT.1.%s\n" "$FIRST" $((FIRST + 1)) $((FIRST + 2)) |
	    jq -R . | jq -sc .)
	iql=$IQ
	[ "$IQ" = - ] && iql="not set"
	submit "$c: studies $FIRST-$((FIRST + 2)) from FAKE$c (image_query $iql${OPTS:+, $OPTS})" \
	    "{\"source\":\"$PEER\",\"target\":\"scp\",\"study_instance_uids\":$l}"
	[ -n "$BID" ] || mig_bail "$c: a batch"
	eval "bid_$c=$BID"
done

# ---- checks ----
# finds C: FAKE<C>'s C-FINDs, one line per study in the order they were
# first asked about: "STUDY|step step ..." where a step is study:N,
# series:N, image:N (an IMAGE-level one with its series) or wide:N (an
# IMAGE-level one for the whole study), N its matches.
finds() {
	awk '$1 == "find" {
		if ($2 == "STUDY") t = "study"
		else if ($2 == "SERIES") t = "series"
		else if ($5 == "study-wide") t = "wide"
		else t = "image"
		if (!($4 in seq)) { order[++k] = $4; seq[$4] = "" }
		seq[$4] = seq[$4] (seq[$4] == "" ? "" : " ") t ":" $3
	}
	END { for (i = 1; i <= k; i++) print order[i] "|" seq[order[i]] }' \
	    "$T_DIR/fake-$1.log"
}
# at_target FIRST: what the storescp holds of studies FIRST to FIRST+2,
# against the generated files: "N of M, K with the source's bytes".
at_target() {
	"$PY" "$top_srcdir/t/scpcheck.py" "$T_DIR/gen/index.tsv" "$T_DIR/scp" \
	    "$ROOT.1.$1" "$ROOT.1.$(($1 + 1))" "$ROOT.1.$(($1 + 2))"
}
# iq PEER: vnamigd's mig-image-query lines for PEER.
iq() { grep " mig-image-query peer=$1 " "$T_DIR/daemon.log"; }
H='study:1 series:3 image:2 image:2 image:2'	# per series
W='study:1 wide:6 series:3 image:2 image:2 image:2'	# both ways

# check_case C: the checks of case C.
check_case() {
	cc=$1
	case_of "$cc"
	cf=$FIRST
	eval "bid=\$bid_$cc"
	wait_batch "$bid" 40
	is "$BSTATE" done "$cc: batch $bid reaches done"
	report "$bid"
	is "$(rj "$bid" '[.summary.expected, .summary.migrated, .summary.accounted_percent] | map(tostring) | join(" ")')" \
	    "18 18 100" "$cc: the report: 18 expected, 18 migrated, 100% accounted"
	is "$(rj "$bid" '[.instances[] | select(.outcome == "migrated") | .sop_instance_uid] | unique | length')" \
	    18 "$cc: 18 distinct instance rows, each migrated"
	is "$(at_target "$cf")" "18 of 18, 18 with the source's bytes" \
	    "$cc: storescp holds studies $cf-$((cf + 2)), the source's bytes"
	is "$(grep -c '^error' "$T_DIR/fake-$cc.log")" 0 "$cc: FAKE$cc logged no error"
	finds "$cc" >"$T_DIR/finds-$cc"
	is "$(cut -d'|' -f1 "$T_DIR/finds-$cc" | sort | tr '\n' ' ')" \
	    "$(printf "$ROOT.1.%s\n" "$cf" $((cf + 1)) $((cf + 2)) | sort | tr '\n' ' ')" \
	    "$cc: FAKE$cc was asked about its three studies only"
	first=$(sed -n '1s/|.*//p' "$T_DIR/finds-$cc")
	fseq=$(sed -n '1s/.*|//p' "$T_DIR/finds-$cc")
	rseq=$(sed -n '2,$s/.*|//p' "$T_DIR/finds-$cc" | sort -u)
	iq "$PEER" >"$T_DIR/iq-$cc"
	niq=$(($(wc -l <"$T_DIR/iq-$cc")))
	line=$(head -n 1 "$T_DIR/iq-$cc")
	case $cc in
	A)
		is "$fseq/$rseq" "study:1 wide:6/study:1 wide:6" \
		    "A: per study one STUDY-level and one whole-study IMAGE-level C-FIND, no SERIES level"
		is "$niq" 1 "A: one mig-image-query line for fa"
		like "$line" ' model=study why="it listed a study.s instances with one IMAGE-level C-FIND"' \
		    "A: it says model=study (one IMAGE-level C-FIND)"
		;;
	R)
		is "$fseq" "study:1 wide:0 series:3 image:2 image:2 image:2" \
		    "R: the first study: whole-study IMAGE-level C-FIND refused, then per series"
		is "$rseq" "$H" "R: the others per series only"
		is "$(grep -c '^find IMAGE .* study-wide refuse$' "$T_DIR/fake-R.log")" 1 \
		    "R: one whole-study IMAGE-level C-FIND reached FAKER in all"
		is "$niq" 1 "R: one mig-image-query line for fr"
		like "$line" ' model=series why="it answered a whole-study IMAGE-level C-FIND 0xA900 \(Error: Identifier Does Not Match SOP Class\)"' \
		    "R: it says model=series, why: it answered 0xA900 (once)"
		;;
	E)
		is "$fseq" "study:1 wide:0 series:3 image:2 image:2 image:2" \
		    "E: the first study: whole-study IMAGE-level C-FIND empty, asked again per series"
		is "$rseq" "$H" "E: the others per series only"
		is "$niq" 1 "E: one mig-image-query line for fe"
		like "$line" " model=series why=\"a whole-study IMAGE-level C-FIND listed 0 instances of study $first, the series one by one 6\"" \
		    "E: it says model=series, listed 0 instances of $first, per series 6"
		;;
	N)
		is "$fseq" "$W" \
		    "N: the first study: whole-study answers without their series, asked again per series"
		is "$rseq" "$H" "N: the others per series only"
		is "$niq" 1 "N: one mig-image-query line for fn"
		like "$line" " model=series why=\"a whole-study IMAGE-level C-FIND listed 6 instances of study $first \\(without their series\\), the series one by one 6\"" \
		    "N: it says model=series, 6 listed without their series"
		;;
	S)
		is "$fseq/$rseq" "$H/$H" "S: every study per series, no whole-study IMAGE-level C-FIND"
		is "$(grep -c 'study-wide' "$T_DIR/fake-S.log")" 0 \
		    "S: no IMAGE-level C-FIND without a series reached FAKES"
		is "$niq" 0 "S: no mig-image-query line for fs"
		;;
	T)
		is "$fseq/$rseq" "$W/$W" \
		    "T: every study whole-study first, then per series (no series in the answers)"
		is "$niq" 0 "T: no mig-image-query line for ft (nothing learned)"
		;;
	esac
	[ "$niq" -gt 1 ] && sed 's/^/#   /' "$T_DIR/iq-$cc"
	return 0
}
for c in $CASES; do
	check_case "$c"
done

stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops cleanly"
grep -En 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' \
    "$T_DIR/daemon.log" >"$T_DIR/san.txt"
is "$(wc -l <"$T_DIR/san.txt")" 0 "no sanitizer report in the daemon's log"
[ -s "$T_DIR/san.txt" ] && head -n 5 "$T_DIR/san.txt" | sed 's/^/#   /'
stop_all
done_testing
