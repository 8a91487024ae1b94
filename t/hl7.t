#!/bin/sh
# hl7.t — HL7 v2 intake end to end (src/hl7in.c, src/net/net_mllp.c,
# src/api/api_hl7.c) against a real vnamigd: real-world-shaped orders and
# updates (ORM^O01, OMI^O23, ADT^A08) from configured senders become
# batches with the values their paths name; merges (ADT^A40) rewrite
# queued batches; every ACK is checked field by field (t/hl7peer.py
# check); AE and AR with their ERR segments; dedup by (MSH-3, MSH-4,
# MSH-10), also across a restart and for copies racing on 10 connections;
# odd encoding characters, escapes, ISO 8859-1, LF and CRLF; the hostile
# MLLP inputs of TESTING.md; the inbox, ingest and preview API; the audit
# leaves (PHI only as commitments); a burst of 10,000 messages from 20
# senders at once; pipelining (many messages on one connection before
# any ACK: ACKs in the order sent, duplicates and refusals among them, a
# sender that half-closes after them; limits.mllp_pipeline 1); MLLP over
# TLS. Peers: python-hl7's mllp_send and raw sockets from t/hl7peer.py
# (and pipe, below).
. "$top_srcdir/t/lib.sh"

export TCP_NODELAY=1
export LC_ALL=C
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
PEER="$PY $top_srcdir/t/hl7peer.py"
TOK=plain-for-tests
# the burst: BURST_SENDERS connections x BURST_EACH messages
BURST_SENDERS=${BURST_SENDERS:-20}
BURST_EACH=${BURST_EACH:-500}
M=$T_DIR/msg
A=$T_DIR/ack
mkdir -p "$M" "$A"
conf=$T_DIR/vnamigd.yaml

# hl7_conf FILE MLLP-EXTRA HL7-EXTRA LIMITS-EXTRA
hl7_conf() {
	{
	cat <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/var
listen:
  dicom: { address: 127.0.0.1, port: 0 }
  http:  { address: 127.0.0.1, port: 0 }
  mllp:  { address: 127.0.0.1, port: 0$2 }
limits:
  shutdown_grace: 2s
$4
storage:
  min_free: 1MiB
peers:
  # window never: the migration engine starts no work against it (the
  # scripts that migrate configure their own peers)
  - { name: legacy, ae_title: LEGACY, host: 127.0.0.1, port: 11113, role: source, window: never }
  - { name: newpacs, ae_title: NEWPACS, host: 127.0.0.1, port: 11114, role: target }
  - { name: legacy2, ae_title: LEGACY2, host: 127.0.0.1, port: 11115, role: source, window: never }
api:
  keys:
    - { id: ops, role: operator, token: "$TOK" }
hl7:
$3
  senders:
    - { name: ris, app: RIS, facility: MAINHOSP, source: legacy, target: newpacs, priority: 3, prefetch_priority: 0 }
    - { name: mwl, app: MWL, source: legacy, target: newpacs, priority: 1, prefetch_priority: 0, accession: "IPC-1.1|OBR-3.1", study_uid: "IPC-3.1" }
    - { name: zris, app: ZRIS, source: legacy, target: newpacs, priority: 7, prefetch_priority: 0, accession: ZXX-2.1, mrn: "PID-2.1|PID-3.1", study_uid: "ZXX-3.1|OBR-29.1" }
    - { name: odd, app: ODD, source: legacy, target: newpacs }
    - { name: latin, app: LATINRIS, source: legacy, target: newpacs, prefetch_priority: 0, charset: 8859/1 }
    - { name: adtonly, app: ADTFEED }
    - { name: other, app: CATCHALL, source: legacy, target: newpacs, priority: 9 }
    - { name: ris2, app: RIS2, facility: OTHERHOSP2, source: legacy2, target: newpacs }
YAML
	i=1
	while [ "$i" -le "$BURST_SENDERS" ]; do
		n=$(printf '%02d' "$i")
		echo "    - { name: burst$n, app: BURST$n, source: legacy, target: newpacs }"
		i=$((i + 1))
	done
	} > "$1"
}

# msg NAME: the message on stdin (one segment a line) as $M/NAME.hl7,
# segments ended by CR
msg() { tr '\n' '\r' > "$M/$1.hl7"; }
# obr PLACER FILLER STUDY-UID: an OBR with all 29 fields (OBR-29 last)
obr() {
	printf 'OBR|1|%s|%s|71020^CHEST 2 VIEWS PA AND LAT^C4||20240105090000|20240105093000|||||||||1234^WELBY^MARCUS^J^^^MD||%s||||||CR|||1^^^20240105093000^^R||%s\n' \
	    "$1" "$2" "${1%%^*}" "$3"
}
# xmit NAME OUT [send options]: send $M/NAME.hl7 over MLLP on a
# connection of its own; its ACK in $A/OUT; sets acode (MSA-1 or none)
xmit() {
	n=$1 o=$2
	shift 2
	rm -f "$A/$o" "$A/$o.1"
	acode=$($PEER send "$MLLP_PORT" --out "$A/$o" "$M/$n.hl7" "$@")
	[ -f "$A/$o.1" ] && mv "$A/$o.1" "$A/$o"
	return 0
}
# ackchk NAME OUT CODE ERRCODE LOCATION TEXT: the ACK $A/OUT answers
# $M/NAME.hl7 right, field by field
ackchk() {
	if [ ! -s "$A/$2" ]; then
		fail "$6 (no ACK)"
		return
	fi
	is "$($PEER check "$M/$1.hl7" "$A/$2" "$3" "$4" "$5")" "" "$6"
}
afield() { $PEER field "$A/$1" "$2"; }	# afield OUT SEG-N[.C]

api() {	# api METHOD PATH [BODY-FILE]: sets code and out
	if [ $# -ge 3 ]; then
		code=$(curl -s -o "$T_DIR/b" -w '%{http_code}' -X "$1" \
		    -H "Authorization: Bearer $TOK" -H 'Content-Type: x-application/hl7-v2+er7' \
		    --data-binary "@$3" "$base$2")
	else
		code=$(curl -s -o "$T_DIR/b" -w '%{http_code}' \
		    -H "Authorization: Bearer $TOK" "$base$2")
	fi
	out=$(cat "$T_DIR/b" 2>/dev/null)
}
j() { printf '%s' "$out" | jq -r "$1" 2>/dev/null; }
# rec CONTROL-ID: the (last) inbox record of that control ID, as JSON
rec() {	# rec CONTROL-ID [SENDER]
	curl -s -H "Authorization: Bearer $TOK" "$base/api/hl7/messages?limit=1000${2:+&sender=$2}" |
	    jq -c --arg c "$1" '[.messages[] | select(.control_id == $c)] | last'
}
# batch ID: the batch's record; bf ID JQ: one of its values
batch() { curl -s -H "Authorization: Bearer $TOK" "$base/api/batches/$1" | jq -c .batch; }
bf() { batch "$1" | jq -r "$2"; }
nbatches() { curl -s -H "Authorization: Bearer $TOK" "$base/api/status" | jq -r .batches.total; }
ninbox() {	# every inbox record, paging through (limit 1000)
	_after=0 _n=0
	while :; do
		_p=$(curl -s -H "Authorization: Bearer $TOK" "$base/api/hl7/messages?limit=1000&after=$_after")
		_n=$((_n + $(printf '%s' "$_p" | jq '.messages | length')))
		_after=$(printf '%s' "$_p" | jq -r '.next // empty')
		[ -n "$_after" ] || break
	done
	echo "$_n"
}
metric() {	# metric NAME [LABEL]: the sum of the series (with LABEL)
	curl -s -H "Authorization: Bearer $TOK" "$base/metrics" |
	    awk -v n="$1" -v l="${2:-}" '(index($1, n "{") == 1 || $1 == n) &&
	    (l == "" || index($1, l) > 0) { s += $NF } END { print s + 0 }'
}
settle() {
	wait_until 10 sh -c "curl -s -H 'Authorization: Bearer $TOK' '$base/api/status' |
	    jq -e '.audit.durable_size > 0 and .audit.size == .audit.durable_size' >/dev/null"
}
# the batch each ACK's inbox record names (an AA for an order)
bid_of() { rec "$1" | jq -r '.batch_id // empty'; }
# a batch's values as one line, to compare at once
bline() {
	batch "$1" | jq -r '[.state, (.accession_numbers | join(",")), .patient_id,
	    (.study_instance_uids | join(",")), .source, .target, (.priority | tostring),
	    .channel, .external_id] | join(" ")'
}

UID_A=1.2.840.113619.2.55.3.4271045733.1001.1704443400.1
UID_B=1.2.840.113619.2.55.3.4271045733.1001.1704443400.2
UID_C=1.2.826.0.1.3680043.8.498.10034
UID_D=1.3.6.1.4.1.5962.99.1.2001
UID_E=1.2.392.200036.9125.2.1234.5678

# --- the messages -----------------------------------------------------------
# an order as a RIS sends it (v2.5.1): filler OBR-3, placer OBR-2, study
# UID in OBR-29 and in a ZDS (OBR-29 wins)
msg orm1 <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105093012||ORM^O01^ORM_O01|RIS0001|P|2.5.1|||AL|NE
PID|1||MRN1001^^^MAINHOSP^MR~123-45-6789^^^USSSA^SS||DOE^JOHN^Q^^MR||19600101|M|||123 MAIN ST^^SPRINGFIELD^IL^62701^USA||(555)555-1234
PV1|1|O|RAD^X1^01^MAINHOSP||||1234^WELBY^MARCUS^J^^^MD|||||||||||V0001^^^MAINHOSP^VN
ORC|NW|PL1001^RIS|FI1001^PACS||SC||1^^^20240105093000^^R||20240105093012|555^CLERK^ANNA||1234^WELBY^MARCUS^J^^^MD
$(obr PL1001^RIS FI1001^PACS "$UID_A")
ZDS|$UID_B^PACS^Application^DICOM
EOF
# v2.3, no filler number (OBR-2 is the accession), no OBR-29: ZDS-1
msg orm2 <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105094500||ORM^O01|RIS0002|P|2.3
PID|1||MRN1002^^^MAINHOSP^MR||ROE^JANE||19720304|F
PV1|1|I|W2^201^1
ORC|NW|PL2002^RIS|||SC
$(obr PL2002^RIS "" "")
ZDS|$UID_C^PACS^Application^DICOM
EOF
# a patient update carrying the study it is about (ZDS)
msg a08 <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105100000||ADT^A08^ADT_A01|RIS0003|P|2.5.1
EVN|A08|20240105100000
PID|1||MRN1003^^^MAINHOSP^MR||POE^EDGAR^A||19490119|M
PV1|1|O|RAD
ZDS|$UID_D^PACS^Application^DICOM
EOF
# OMI^O23 from a modality worklist broker: accession and study UID in
# IPC (its sender's paths)
msg omi <<EOF
MSH|^~\&|MWL|IMAGING|VNAMIG|PACS|20240105101500||OMI^O23^OMI_O23|MWL-77|P|2.5.1|||AL|NE
PID|1||MRN1004^^^MAINHOSP^MR||KOE^ANN||19800808|F
PV1|1|O|CT
ORC|NW|PL4004|FI4004||SC
TQ1|1||||||20240105101500|||R
OBR|1|PL4004|FI4004|CTHEAD^CT HEAD W/O CONTRAST^L
IPC|ACC4004|REQ4004|$UID_E|SPS4004|CT
EOF
# a sender whose accession is in a Z segment, MRN in PID-2 first
msg zris <<EOF
MSH|^~\&|ZRIS|CLINIC|VNAMIG|PACS|20240105102000||ORM^O01|Z-0001|P|2.4
PID|1|ZMRN55|MRN1005^^^CLINIC^MR||ZOE^ZED
ORC|NW|ZPL1|||SC
$(obr ZPL1 FI-NOT-THIS "")
ZXX|1|ZACC-55|1.2.3.4.5.55
EOF
# an unmapped sender, and a known app at another facility
msg unmapped <<EOF
MSH|^~\&|LABSYS|LAB|VNAMIG|PACS|20240105103000||ORM^O01|LAB-1|P|2.5.1
PID|1||MRN1006
ORC|NW|LPL1|LFI1||SC
$(obr LPL1 LFI1 "")
EOF
msg otherfac <<EOF
MSH|^~\&|RIS|OTHERHOSP|VNAMIG|PACS|20240105103100||ORM^O01|RIS0001|P|2.5.1
PID|1||MRN1007
ORC|NW|OPL1|OFI1||SC
$(obr OPL1 OFI1 "")
EOF
# encoding characters other than ^~\& (field # component $ repeat %
# escape ! subcomponent @), escapes in the values
msg odd <<EOF
MSH#\$%!@#ODD#ODDHOSP#VNAMIG#PACS#20240105104000##ORM\$O01\$ORM_O01#ODD-0001#P#2.5.1
PID#1##OD!F!77\$\$\$ODDHOSP\$MR##ODD\$ONE
ORC#NW#OPL9#OFI9##SC
$(obr OPL9 'OFI9!T!X!S!Y^PACS' "$UID_A.9" | tr '|^' '#$')
EOF
# the standard characters, every escape in one accession
msg esc <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105104500||ORM^O01^ORM_O01|RIS0004|P|2.5.1
PID|1||MRN\X41\1008^^^MAINHOSP^MR||ESC^APE
ORC|NW|EPL1|EFI1||SC
$(obr EPL1 'ACC\F\7\S\X\T\Y\E\Z\X41\^PACS' "")
ZDS|$UID_A.4
EOF
O=$(printf '\326') AE=$(printf '\304')
# ISO 8859-1 (MSH-18): names and the accession with Latin-1 bytes
printf 'MSH|^~\\&|RIS|MAINHOSP|VNAMIG|PACS|20240105105000||ORM^O01^ORM_O01|RIS0005|P|2.5.1|||AL|NE||8859/1\rPID|1||MRN1009^^^MAINHOSP^MR||M\374LLER^J\334RGEN||19551231|M\rORC|NW|R\3262024|||SC\r%s\r' \
    "$(obr "R${O}2024" '' "$UID_A.5" | tr -d '\n')" > "$M/latin1.hl7"
# a sender configured for 8859/1 that leaves MSH-18 empty
printf 'MSH|^~\\&|LATINRIS|NORD|VNAMIG|PACS|20240105105500||ORM^O01|LAT-1|P|2.3\rPID|1||MRN1010||\305NGSTR\326M^BJ\330RN\rORC|NW|\304CC1|||SC\r%s\r' \
    "$(obr "${AE}CC1" '' "$UID_A.6" | tr -d '\n')" > "$M/latin2.hl7"
# segments ended by LF, and by CRLF
cat > "$M/lf.hl7" <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105110000||ORM^O01^ORM_O01|RIS0006|P|2.5.1
PID|1||MRN1011^^^MAINHOSP^MR||LF^LINE
ORC|NW|LFPL|LFFI||SC
$(obr LFPL LFFI "$UID_A.7")
EOF
sed 's/$/\r/' > "$M/crlf.hl7" <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105110500||ORM^O01^ORM_O01|RIS0007|P|2.5.1
PID|1||MRN1012^^^MAINHOSP^MR||CRLF^LINE
ORC|NW|CRPL|CRFI||SC
$(obr CRPL CRFI "$UID_A.8")
EOF
# content errors (AE)
msg noacc <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105111000||ORM^O01^ORM_O01|RIS0008|P|2.5.1
PID|1||MRN1013^^^MAINHOSP^MR
ORC|NW|||SC
$(obr "" "" "")
EOF
msg baduid <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105111500||ORM^O01^ORM_O01|RIS0009|P|2.5.1
PID|1||MRN1014^^^MAINHOSP^MR
ORC|NW|BPL1|BFI1||SC
$(obr BPL1 BFI1 "1.2.840.10008.abc")
EOF
msg baduidz <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105111600||ADT^A08^ADT_A01|RIS0010|P|2.5.1
EVN|A08
PID|1||MRN1015^^^MAINHOSP^MR
ZDS|1..2.3^PACS^Application^DICOM
EOF
msg nomrg <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105112000||ADT^A40^ADT_A39|RIS0011|P|2.5.1
EVN|A40|20240105112000
PID|1||NEW888^^^MAINHOSP^MR||MERGE^ME
EOF
msg utf16 <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105112500||ORM^O01^ORM_O01|RIS0012|P|2.5.1||||||UNICODE UTF-16
PID|1||MRN1016^^^MAINHOSP^MR
ORC|NW|UPL1|UFI1||SC
$(obr UPL1 UFI1 "")
EOF
# refusals (AR)
msg oru <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105113000||ORU^R01|RIS0013|P|2.3
PID|1||MRN1017
OBR|1|RPL1|RFI1
OBX|1|TX|RPT^REPORT||NO ACUTE FINDINGS||||||F
EOF
msg a99 <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105113500||ADT^A99^ADT_A01|RIS0014|P|2.5.1
EVN|A99
PID|1||MRN1018
EOF
msg noctl <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105114000||ORM^O01^ORM_O01||P|2.5.1
PID|1||MRN1019
$(obr NPL1 NFI1 "")
EOF
msg twomsh <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105114500||ORM^O01^ORM_O01|RIS0015|P|2.5.1
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105114500||ORM^O01^ORM_O01|RIS0016|P|2.5.1
PID|1||MRN1020
EOF
msg badseg <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105115000||ORM^O01^ORM_O01|RIS0017|P|2.5.1
PID|1||MRN1021
pv1|1|O
$(obr XPL1 XFI1 "")
EOF
msg nomsh <<EOF
PID|1||MRN1022
$(obr YPL1 YFI1 "")
EOF
msg badmsh2 <<EOF
MSH|^^\&|RIS|MAINHOSP|VNAMIG|PACS|20240105115500||ORM^O01|RIS0018|P|2.5.1
PID|1||MRN1023
EOF
# merges: an order for OLD777, then ADT^A40 OLD777 -> NEW888 (twice),
# the inverted one, and a conflicting one
msg ormold <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105120000||ORM^O01^ORM_O01|RIS0020|P|2.5.1
PID|1||OLD777^^^MAINHOSP^MR||MERGE^ME||19700707|F
ORC|NW|MPL1|MFI1||SC
$(obr MPL1 MFI1 "$UID_A.20")
EOF
a40() {	# a40 NAME CONTROL SURVIVING MERGED
	msg "$1" <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105120500||ADT^A40^ADT_A39|$2|P|2.5.1
EVN|A40|20240105120500
PID|1||$3^^^MAINHOSP^MR||MERGE^ME||19700707|F
MRG|$4^^^MAINHOSP^MR
EOF
}
a40 merge RIS0021 NEW888 OLD777
a40 merge2 RIS0022 NEW888 OLD777
a40 mergeinv RIS0023 OLD777 NEW888
a40 mergeconf RIS0024 OTHER999 OLD777
# the same, pipelined in one write: an order for OLD555, its merge into
# NEW666, a second order for OLD555, then a conflicting and an inverted
# merge
msg ormp1 <<EOF
MSH|^~\\&|RIS|MAINHOSP|VNAMIG|PACS|20240105130000||ORM^O01^ORM_O01|RIS0080|P|2.5.1
PID|1||OLD555^^^MAINHOSP^MR||MERGE^YOU||19700808|F
ORC|NW|MPL5|MFI5||SC
$(obr MPL5 MFI5 "$UID_A.50")
EOF
a40 mergep RIS0081 NEW666 OLD555
msg ormp2 <<EOF
MSH|^~\\&|RIS|MAINHOSP|VNAMIG|PACS|20240105130100||ORM^O01^ORM_O01|RIS0082|P|2.5.1
PID|1||OLD555^^^MAINHOSP^MR||MERGE^YOU||19700808|F
ORC|NW|MPL6|MFI6||SC
$(obr MPL6 MFI6 "$UID_A.51")
EOF
a40 mergepc RIS0083 OTHER444 OLD555
a40 mergepi RIS0084 OLD555 NEW666
# an MRN is its source's: another hospital's merge (sender ris2, source
# legacy2) of the same MRN leaves legacy's batches alone, and an unmapped
# sender's merge does nothing
msg ormsame <<EOF
MSH|^~\\&|RIS|MAINHOSP|VNAMIG|PACS|20240105140000||ORM^O01^ORM_O01|RIS0095|P|2.5.1
PID|1||SAME100^^^MAINHOSP^MR||SAME^NAME||19700909|F
ORC|NW|SPL1|SFI1||SC
$(obr SPL1 SFI1 "$UID_A.70")
EOF
msg merge2h <<EOF
MSH|^~\\&|RIS2|OTHERHOSP2|VNAMIG|PACS|20240105140100||ADT^A40^ADT_A39|R2-0001|P|2.5.1
EVN|A40|20240105140100
PID|1||SAME200^^^OTHERHOSP2^MR||OTHER^PERSON||19800101|M
MRG|SAME100^^^OTHERHOSP2^MR
EOF
msg mergenone <<EOF
MSH|^~\\&|NOWHERE|EVIL|VNAMIG|PACS|20240105140200||ADT^A40^ADT_A39|EV-0001|P|2.5.1
EVN|A40|20240105140200
PID|1||SAME300^^^EVIL^MR||OTHER^PERSON||19800101|M
MRG|SAME100^^^EVIL^MR
EOF
msg ormsame2 <<EOF
MSH|^~\\&|RIS|MAINHOSP|VNAMIG|PACS|20240105140300||ORM^O01^ORM_O01|RIS0096|P|2.5.1
PID|1||SAME100^^^MAINHOSP^MR||SAME^NAME||19700909|F
ORC|NW|SPL2|SFI2||SC
$(obr SPL2 SFI2 "$UID_A.71")
EOF
# for the racing copies, the hostile inputs and the API
msg par <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105121000||ORM^O01^ORM_O01|RIS0030|P|2.5.1
PID|1||MRN1030^^^MAINHOSP^MR||RACE^CONDITION
ORC|NW|PPL1|PFI1||SC
$(obr PPL1 PFI1 "$UID_A.30")
EOF
i=31
for n in g1 g2 g3 g4 g5 g6 g7 g8 g9; do
	msg "$n" <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105122000||ORM^O01^ORM_O01|RIS00$i|P|2.5.1
PID|1||MRN10$i^^^MAINHOSP^MR||HOSTILE^INPUT
ORC|NW|HPL$i|HFI$i||SC
$(obr "HPL$i" "HFI$i" "$UID_A.$i")
EOF
	i=$((i + 1))
done
msg catch <<EOF
MSH|^~\&|NEWRIS|ANNEX|VNAMIG|PACS|20240105123000||ORM^O01^ORM_O01|NEW-1|P|2.5.1
PID|1||MRN1050
ORC|NW|CPL1|CFI1||SC
$(obr CPL1 CFI1 "$UID_A.50")
EOF
msg tls <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105124000||ORM^O01^ORM_O01|RIS0060|P|2.5.1
PID|1||MRN1060^^^MAINHOSP^MR||TLS^PATIENT
ORC|NW|TPL1|TFI1||SC
$(obr TPL1 TFI1 "$UID_A.60")
EOF

# the messages say what they mean to (the tests count fields right)
is "$(awk -F'|' '$1 == "OBR" { print NF - 1 ":" $3 ":" $4 ":" $30 }' "$M/lf.hl7")" \
	"29:LFPL:LFFI:$UID_A.7" "the test OBR has 29 fields: OBR-2 placer, OBR-3 filler, OBR-29 the study UID"

# --- start ------------------------------------------------------------------
hl7_conf "$conf" "" "" ""
start_daemon "$conf" || { fail "vnamigd starts"; done_testing; }
pass "vnamigd starts with $((7 + BURST_SENDERS)) HL7 senders"
base="http://127.0.0.1:$HTTP_PORT"

# --- orders become batches ----------------------------------------------------
out=$(mllp_send --loose --file "$M/orm1.hl7" -p "$MLLP_PORT" 127.0.0.1 2>&1)
ok $? "mllp_send (python-hl7) sends the RIS's ORM^O01"
printf '%s\n' "$out" | $PY -c 'import sys; d = sys.stdin.buffer.read(); sys.stdout.buffer.write(d[d.index(b"\x0b") + 1:d.rindex(b"\x1c")])' > "$A/orm1"
ackchk orm1 orm1 AA "" - "  its ACK: AA, MSH-3..6 swapped, ACK^O01^ACK, our MSH-10, MSH-11/12 copied, MSA-2 RIS0001"
r=$(rec RIS0001)
is "$(afield orm1 MSH-10)" "VN$(printf '%s' "$r" | jq -r .seq)" "  our MSH-10 names the inbox record (VN<seq>)"
is "$(printf '%s' "$r" | jq -r '[.sender, .type, .ack, .outcome, .via, .app, .facility] | join(" ")')" \
	"ris ORM^O01 AA batch mllp RIS MAINHOSP" "  inbox record: sender ris, ORM^O01, AA, outcome batch, via mllp"
B1=$(printf '%s' "$r" | jq -r .batch_id)
is "$(bline "$B1")" "queued FI1001 MRN1001 $UID_A legacy newpacs 3 hl7:ris RIS0001" \
	"  batch $B1: accession OBR-3.1 (filler), MRN PID-3.1, study UID OBR-29 (not ZDS), legacy -> newpacs, priority 3, channel hl7:ris"

for n in orm2 a08 omi zris; do
	xmit $n $n
done
ackchk orm2 orm2 AA "" - "ORM^O01 v2.3 without filler number: AA, field by field"
is "$(bline "$(bid_of RIS0002)")" "queued PL2002 MRN1002 $UID_C legacy newpacs 3 hl7:ris RIS0002" \
	"  batch: accession from OBR-2.1 (placer), study UID from ZDS-1.1"
ackchk a08 a08 AA "" - "ADT^A08: AA (MSH-9 ACK^A08^ACK)"
is "$(bline "$(bid_of RIS0003)")" "queued  MRN1003 $UID_D legacy newpacs 3 hl7:ris RIS0003" \
	"  batch: no accession, the study UID from ZDS, patient MRN1003"
ackchk omi omi AA "" - "OMI^O23 from the worklist broker: AA (ACK^O23^ACK)"
is "$(bline "$(bid_of MWL-77)")" "queued ACC4004 MRN1004 $UID_E legacy newpacs 1 hl7:mwl MWL-77" \
	"  batch: accession IPC-1.1 and study UID IPC-3.1 (sender mwl's paths), priority 1, channel hl7:mwl"
ackchk zris zris AA "" - "ORM^O01 v2.4 from ZRIS: AA"
is "$(bline "$(bid_of Z-0001)")" "queued ZACC-55 ZMRN55 1.2.3.4.5.55 legacy newpacs 7 hl7:zris Z-0001" \
	"  batch: accession ZXX-2.1 (not OBR-3), MRN PID-2.1, study UID ZXX-3.1: the sender's own paths"
is "$(bf "$(bid_of Z-0001)" .created_by)" "hl7:zris" "  created by hl7:zris"
# the record an order writes (as text, src/api/api_batch.c) has every
# member a batch made over the API has, with their types
is "$(batch "$(bid_of Z-0001)" | jq -c '[.id == ('"$(bid_of Z-0001)"'), .name, .force_full_repull,
    .include_priors, (.prefetch_at_ms | type), (.counts | keys), (.created | test("^[0-9-]+T[0-9:]+Z$")),
    .created == .updated]')" \
    '[true,"",false,true,"number",["done","instances","quarantined","studies"],true,true]' \
    "  its record: id, name, force_full_repull, include_priors (an order with an MRN), prefetch_at_ms, counts, created"

nb=$(nbatches)
xmit unmapped unmapped
ackchk unmapped unmapped AA "" - "an unmapped sender (LABSYS): AA"
xmit otherfac otherfac
ackchk otherfac otherfac AA "" - "RIS from another facility than configured (not mapped): AA"
is "$(rec LAB-1 | jq -c '[.sender, .outcome, .batch_id]')" '[null,"inbox",null]' \
	"  inbox only: sender null, outcome inbox, no batch"
is "$(curl -s -H "Authorization: Bearer $TOK" "$base/api/hl7/messages?limit=1000" |
    jq -c '[.messages[] | select(.control_id == "RIS0001")] | map([.facility, .sender, .outcome])')" \
	'[["MAINHOSP","ris","batch"],["OTHERHOSP",null,"inbox"]]' \
	"  the same MSH-10 from RIS at OTHERHOSP is another message (dedup key MSH-3, MSH-4, MSH-10), kept in the inbox only"
is "$(nbatches)" "$nb" "  no batch for either"

# --- encodings ------------------------------------------------------------------
xmit odd odd
ackchk odd odd AA "" - "encoding characters #\$%!@: AA written with them (MSH#\$%!@#, ACK\$O01\$ACK)"
is "$(head -c 9 "$A/odd")" 'MSH#$%!@#' "  the ACK begins MSH#\$%!@#"
is "$(bline "$(bid_of ODD-0001)")" "queued OFI9@X\$Y OD#77 $UID_A.9 legacy newpacs 9 hl7:odd ODD-0001" \
	"  batch: !T! !S! !F! unescaped with the message's own escape character, OBR-29 counted with #; priority 9 (an order with a PID-3 brings the priors: prefetch_priority 9 by default)"
xmit esc esc
ackchk esc esc AA "" - "escapes \\F\\ \\S\\ \\T\\ \\E\\ \\X41\\ in the values: AA"
is "$(bf "$(bid_of RIS0004)" '.accession_numbers[0] + " " + .patient_id')" 'ACC|7^X&Y\ZA MRNA1008' \
	"  batch values unescaped: ACC|7^X&Y\\ZA, MRN \\X41\\ -> A"
xmit latin1 latin1
ackchk latin1 latin1 AA "" - "MSH-18 8859/1 with Latin-1 bytes: AA, MSH-18 copied into the ACK"
r=$(rec RIS0005)
is "$(bf "$(printf '%s' "$r" | jq -r .batch_id)" '.accession_numbers[0]')" "$(printf 'R\303\2262024')" \
	"  the batch's accession decodes to UTF-8 (RÖ2024)"
printf '%s' "$r" | jq -r .message_base64 | base64 -d > "$T_DIR/latin1.back"
cmp -s "$T_DIR/latin1.back" "$M/latin1.hl7"
ok $? "  the inbox keeps the message's own bytes (base64: not UTF-8)"
xmit latin2 latin2
ackchk latin2 latin2 AA "" - "no MSH-18 from a sender configured for 8859/1: AA"
is "$(bf "$(bid_of LAT-1)" '.accession_numbers[0] + " " + .channel')" "$(printf '\303\204CC1 hl7:latin')" \
	"  decoded with the sender's charset (ÄCC1)"
xmit lf lf
ackchk lf lf AA "" - "segments ended by LF (raw socket): AA"
is "$(bline "$(bid_of RIS0006)")" "queued LFFI MRN1011 $UID_A.7 legacy newpacs 3 hl7:ris RIS0006" "  batch values right"
xmit crlf crlf
ackchk crlf crlf AA "" - "segments ended by CRLF: AA"
is "$(bline "$(bid_of RIS0007)")" "queued CRFI MRN1012 $UID_A.8 legacy newpacs 3 hl7:ris RIS0007" "  batch values right"

# --- AE and AR ------------------------------------------------------------------
nb=$(nbatches)
xmit noacc noacc
ackchk noacc noacc AE 101 "OBR^1^3" "no accession and no study UID: AE, ERR 101 at OBR^1^3"
is "$(rec RIS0008 | jq -r '.outcome + " " + .ack')" "error AE" "  inbox record: outcome error"
xmit baduid baduid
ackchk baduid baduid AE 102 "OBR^1^29" "a study UID that is no UID (OBR-29 1.2.840.10008.abc): AE, ERR 102 at OBR^1^29"
xmit baduidz baduidz
ackchk baduidz baduidz AE 102 "ZDS^1^1" "a bad study UID in ZDS-1 (the fallback path): AE, ERR 102 located at ZDS^1^1"
xmit nomrg nomrg
ackchk nomrg nomrg AE 101 "MRG^1^1" "ADT^A40 without MRG: AE, ERR 101 at MRG^1^1"
xmit utf16 utf16
ackchk utf16 utf16 AE 102 "MSH^1^18" "MSH-18 UNICODE UTF-16 (not decoded): AE, ERR 102 at MSH^1^18"
is "$(nbatches)" "$nb" "  no batch from any of them"
xmit oru oru
ackchk oru oru AR 200 "MSH^1^9" "ORU^R01 (v2.3): AR, ERR-1 MSH^1^9^200&...&HL70357 (the pre-2.5 form)"
like "$(afield oru MSA-3)" "ORU.S.R01 is not a message" "  v2.3: the text in MSA-3 (^ escaped as \\S\\)"
xmit a99 a99
ackchk a99 a99 AR 201 "MSH^1^9" "ADT^A99: AR, ERR-3 201 (unsupported event) at MSH^1^9"
like "$(afield a99 ERR-8)" "A99" "  ERR-8 says why"
xmit noctl noctl
ackchk noctl noctl AR 101 "MSH^1^10" "empty MSH-10: AR, ERR 101 at MSH^1^10, MSA-2 empty"
xmit twomsh twomsh
ackchk twomsh twomsh AR 100 "MSH^2" "a second MSH (a batch): AR 100, addressed from the first MSH"
xmit badseg badseg
ackchk badseg badseg AR 100 - "a bad segment ID (pv1): AR 100, addressed from its MSH"
like "$(afield badseg ERR-8)" "pv1" "  ERR-8 names the bad segment"
a1=$(afield oru MSH-10) a2=$(afield a99 MSH-10) a3=$(afield noctl MSH-10) a4=$(afield twomsh MSH-10)
is "$(printf '%s\n' "$a1" "$a2" "$a3" "$a4" | sort -u | wc -l | tr -d ' ')" 4 \
	"  our MSH-10 differs between ACKs (AR too: $a1 $a2 $a3 $a4)"
is "$(rec RIS0014 | jq -r '.outcome + " " + .ack')" "unsupported AR" "  ADT^A99 is in the inbox: outcome unsupported, AR"
xmit nomsh nomsh --together --timeout 1 "$M/g1.hl7"
is "$acode" "AA none" "a frame without MSH (no ACK possible), then an order, in one write: one ACK only"
ackchk g1 nomsh AA "" - "  the order's (MSA-2 RIS0031)"
wait_log 'hl7-unaddressable .*via=mllp' 5
ok $? "  logged hl7-unaddressable"
xmit badmsh2 badmsh2 --together --timeout 1 "$M/g2.hl7"
is "$acode" "AA none" "MSH-2 with a repeated character (^^\\&), then an order: one ACK only"
ackchk g2 badmsh2 AA "" - "  the order's (MSA-2 RIS0032)"

# --- dedup ------------------------------------------------------------------------
nb=$(nbatches)
ni=$(ninbox)
xmit orm1 orm1.again
cmp -s "$A/orm1" "$A/orm1.again"
ok $? "the RIS's ORM^O01 again: the same ACK, byte for byte"
xmit noacc noacc.again
cmp -s "$A/noacc" "$A/noacc.again"
ok $? "the AE'd order again: the same AE, byte for byte"
is "$(nbatches) $(ninbox)" "$nb $ni" "  no second batch, no second inbox record"
is "$(metric vnamig_hl7_duplicates_total)" 2 "  vnamig_hl7_duplicates_total 2"
wait_log 'hl7-duplicate .*control="?RIS0001' 2
ok $? "  logged hl7-duplicate"
tot0=$(metric vnamig_hl7_messages_total 'type="ORM^O01"')
dup0=$(metric vnamig_hl7_duplicates_total)
codes=$($PEER parallel "$MLLP_PORT" 10 "$M/par.hl7" "$A/par")
is "$codes" "AA AA AA AA AA AA AA AA AA AA" "10 copies of one order at once on 10 connections: 10 x AA"
same=0
for i in 2 3 4 5 6 7 8 9 10; do cmp -s "$A/par.1" "$A/par.$i" || same=1; done
ok $same "  the same ACK bytes on all 10"
ackchk par par.1 AA "" - "  field by field (MSA-2 RIS0030)"
is "$(nbatches) $(ninbox)" "$((nb + 1)) $((ni + 1))" "  one batch, one inbox record"
is "$(metric vnamig_hl7_duplicates_total)" "$((dup0 + 9))" "  vnamig_hl7_duplicates_total +9"
is "$(metric vnamig_hl7_messages_total 'type="ORM^O01"')" "$((tot0 + 10))" \
	"  vnamig_hl7_messages_total{type=ORM^O01} +10 (each copy answered is counted, as a sequential duplicate is)"

# --- merges -------------------------------------------------------------------------
xmit ormold ormold
BM=$(bid_of RIS0020)
is "$(bf "$BM" '.patient_id + " " + .state')" "OLD777 queued" "an order for OLD777: batch $BM queued"
xmit merge merge
ackchk merge merge AA "" - "ADT^A40 OLD777 -> NEW888: AA (ACK^A40^ACK)"
is "$(bf "$BM" .patient_id)" NEW888 "  the queued batch's patient_id is now NEW888"
is "$(rec RIS0021 | jq -c '[.outcome, .merge.rewritten]')" "[\"merge\",[$BM]]" "  inbox: outcome merge, rewritten [$BM]"
up=$(bf "$BM" .updated)
xmit merge2 merge2
ackchk merge2 merge2 AA "" - "the same merge again (new MSH-10): AA"
is "$(rec RIS0022 | jq -c '[.outcome, .merge]')" '["merge-duplicate",null]' "  outcome merge-duplicate, nothing rewritten"
is "$(bf "$BM" '.patient_id + " " + .updated')" "NEW888 $up" "  the batch untouched"
xmit mergeinv mergeinv
ackchk mergeinv mergeinv AE 103 "MRG^1^1" "the inverted merge (NEW888 -> OLD777): AE 103 at MRG^1^1"
is "$(rec RIS0023 | jq -r .outcome) $(bf "$BM" .patient_id)" "merge-inverted NEW888" "  outcome merge-inverted; the batch still NEW888"
xmit mergeconf mergeconf
ackchk mergeconf mergeconf AE 103 "MRG^1^1" "a conflicting merge (OLD777 -> OTHER999): AE 103"
is "$(rec RIS0024 | jq -r .outcome) $(bf "$BM" .patient_id)" "merge-conflict NEW888" "  outcome merge-conflict; the batch still NEW888"
# pipelined: each saw only what was durable before (the merge missed the
# order before it, the order after it missed the merge, the later merges
# missed it: all AA); a merge now waits for what came before it, and what
# comes after waits for it
xmit ormp1 pipe --together "$M/mergep.hl7" "$M/ormp2.hl7" "$M/mergepc.hl7" "$M/mergepi.hl7"
is "$acode" "AA AA AA AE AE" "pipelined: order, merge, order, conflicting merge, inverted merge: AA AA AA AE AE"
is "$(bf "$(bid_of RIS0080)" .patient_id)/$(bf "$(bid_of RIS0082)" .patient_id)" "NEW666/NEW666" \
    "  the order before the merge had its batch rewritten, the order after it was mapped: both NEW666"
is "$(rec RIS0083 | jq -r .outcome)/$(rec RIS0084 | jq -r .outcome)" "merge-conflict/merge-inverted" \
    "  the later merges saw the first: conflict, inverted"
xmit ormsame ormsame
xmit merge2h merge2h
is "$acode/$(rec R2-0001 | jq -c '[.outcome, .merge.rewritten]')" 'AA/["merge",[]]' \
    "another hospital's merge of the same MRN (ris2, source legacy2): AA, a merge of its own, nothing rewritten"
is "$(bf "$(bid_of RIS0095)" .patient_id)" SAME100 "  legacy's batch for SAME100 is left alone"
xmit mergenone mergenone
is "$acode/$(rec EV-0001 | jq -r .outcome)" "AA/inbox" "an unmapped sender's merge: AA, kept in the inbox, nothing merged"
xmit ormsame2 ormsame2
is "$(bf "$(bid_of RIS0096)" .patient_id)" SAME100 "  a later legacy order for SAME100 is not mapped by either"

# --- a control ID sent again with other content -------------------------------------
# The AE'd order (RIS0008, no accession) corrected and sent under the same
# MSH-10 (interface engines resend edited messages so): taken afresh (the
# stored AE was replayed for ever before). The RIS's first order's control
# ID (RIS0001, taken AA) on another order: AE 205, not taken (a sender
# reusing control IDs had AA for orders silently dropped).
tr '\r' '\n' <"$M/noacc.hl7" |
    sed 's/^ORC|NW|||SC/ORC|NW|PL1013^RIS|FI1013^PACS||SC/; s/^OBR|1|||/OBR|1|PL1013^RIS|FI1013^PACS|/' |
    tr '\n' '\r' >"$M/fixed.hl7"
xmit fixed fixed
is "$acode" AA "the AE'd order corrected, sent again under its MSH-10 (RIS0008): AA, taken afresh"
is "$(rec RIS0008 | jq -r '.ack + " " + .outcome')" "AA batch" "  its inbox record: AA, a batch made"
wait_log 'hl7-resent-changed .*control="?RIS0008' 2
ok $? "  logged hl7-resent-changed"
sed 's/FI1001/FI1099/g; s/PL1001/PL1099/g' "$M/orm1.hl7" >"$M/reused.hl7"
nb=$(nbatches)
xmit reused reused
ackchk reused reused AE 205 "MSH^1^10" "another order under RIS0001 (taken AA before): AE, ERR 205 at MSH^1^10"
is "$(nbatches)" "$nb" "  no batch made"
wait_log 'hl7-control-id-reused .*control="?RIS0001' 2
ok $? "  logged hl7-control-id-reused"
is "$(rec RIS0001 | jq -r '.ack + " " + .outcome')" "AE control-id-reused" "  kept in the inbox as refused (AE, control-id-reused)"
# two messages under one new control ID in one write: the second, still
# being stored when the first is, is not given the first's answer
sed 's/RIS0001/RIS0090/g; s/FI1001/FI1090/g; s/PL1001/PL1090/g' "$M/orm1.hl7" >"$M/twin1.hl7"
sed 's/RIS0001/RIS0090/g; s/FI1001/FI1091/g; s/PL1001/PL1091/g' "$M/orm1.hl7" >"$M/twin2.hl7"
xmit twin1 twin --together "$M/twin2.hl7"
is "$acode" "AA AR" "two orders under one control ID in one write: AA, then AR (send again) for the other content"

# --- the audit log ------------------------------------------------------------------
settle
ok $? "the audit log settles"
curl -s -H "Authorization: Bearer $TOK" -o "$T_DIR/export.jsonl" "$base/api/audit/export"
is "$(jq -r 'select(.event == "hl7.message") | .object.control_id' "$T_DIR/export.jsonl" | wc -l | tr -d ' ')" \
	"$(ninbox)" "one hl7.message leaf per inbox record"
is "$(jq -r 'select(.event == "hl7.message" and .object.control_id == "RIS0021") | [.actor.hl7, .object.type, .object.outcome, .outcome] | join(" ")' "$T_DIR/export.jsonl")" \
	"ris ADT^A40 merge AA" "  the merge's leaf: sender, type, outcome, AA"
is "$(jq -r "select(.event == \"batch.created\" and .object.batch_id == $B1) | [.object.channel, .object.external_id, (.object.patient_phi | length | tostring)] | join(\" \")" "$T_DIR/export.jsonl")" \
	"hl7:ris RIS0001 64" "  batch.created: channel hl7:ris, external_id, the MRN as a 64-hex commitment"
grep -q -e MRN1001 -e OLD777 -e NEW888 -e OTHER999 -e 'DOE^JOHN' "$T_DIR/export.jsonl"
is $? 1 "  no MRN or name appears in the audit export"

# --- restart: dedup survives; catch-all; a small frame limit ---------------------------
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops (exit 0)"
hl7_conf "$conf" "" "  catch_all: other" "  mllp_frame: 2KiB"
start_daemon "$conf" || { fail "vnamigd restarts"; done_testing; }
pass "vnamigd restarts with hl7.catch_all and limits.mllp_frame 2KiB"
base="http://127.0.0.1:$HTTP_PORT"
nb=$(nbatches)
ni=$(ninbox)
xmit orm1 orm1.restart
cmp -s "$A/orm1" "$A/orm1.restart"
ok $? "after the restart the RIS's ORM^O01 again gets the same ACK bytes"
is "$(nbatches) $(ninbox)" "$nb $ni" "  and makes no batch, no inbox record"
xmit catch catch
ackchk catch catch AA "" - "an unmapped sender (NEWRIS) with hl7.catch_all: AA"
# an order for a patient whose batch was made before the restart: the
# patient index (read back at the start) finds it, and promotes it
msg orm2r <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240106094500||ORM^O01|RIS0002R|P|2.3
PID|1||MRN1002^^^MAINHOSP^MR||ROE^JANE||19720304|F
ORC|NW|PL2102^RIS|||SC
$(obr PL2102^RIS "" "")
EOF
B2=$(bid_of RIS0002)
xmit orm2r orm2r
ackchk orm2r orm2r AA "" - "after the restart an order for MRN1002 (its batch $B2 made before): AA"
is "$(rec RIS0002R | jq -c .promoted) $(bf "$B2" '[(.priority | tostring), .promoted_by] | join(" ")')" \
    "[$B2] 9 RIS0002R" "  batch $B2 promoted (priority 9, by RIS0002R): found through the index read at the start"
# an order for the ID merged away before the restart (OLD777 -> NEW888):
# the crosswalk, read back at the start, names the surviving patient
msg ormold2 <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240106120000||ORM^O01^ORM_O01|RIS0020R|P|2.5.1
PID|1||OLD777^^^MAINHOSP^MR||MERGE^ME||19700707|F
ORC|NW|MPL2|MFI2||SC
$(obr MPL2 MFI2 "$UID_A.21")
EOF
xmit ormold2 ormold2
ackchk ormold2 ormold2 AA "" - "after the restart an order for OLD777 (merged into NEW888 before): AA"
is "$(rec RIS0020R | jq -r .patient_id_merged) $(bf "$(bid_of RIS0020R)" .patient_id)" "true NEW888" \
    "  its batch is NEW888's (patient_id_merged in the inbox record)"
is "$(bline "$(bid_of NEW-1)")" "queued CFI1 MRN1050 $UID_A.50 legacy newpacs 9 hl7:other NEW-1" \
	"  batch on the catch-all sender's channel hl7:other, its priority 9"

# --- hostile MLLP ----------------------------------------------------------------------
junk="GET / HTTP/1.1
Host: x
"
xmit g3 g3 --garbage "$junk"
ackchk g3 g3 AA "" - "garbage before 0x0B: skipped, the message ACKed"
wait_log "mllp-garbage .*bytes=$(printf '%s' "$junk" | wc -c | tr -d ' ')" 5
ok $? "  mllp-garbage bytes=$(printf '%s' "$junk" | wc -c | tr -d ' ') logged when the connection closed"
{ printf '\013'; head -c 200 "$M/g4.hl7"; } > "$T_DIR/trunc"
is "$($PEER raw "$MLLP_PORT" "$T_DIR/trunc")" "0 eof" "a stream ending mid-frame: no ACK"
wait_log 'mllp-truncated .*bytes=200' 5
ok $? "  mllp-truncated bytes=200 logged"
is "$(rec RIS0034)" null "  nothing kept of it"
xmit g4 g4
ackchk g4 g4 AA "" - "  the whole message sent again: AA"
{ head -c 300 "$M/g5.hl7"; i=0; while [ $i -lt 30 ]; do printf 'NTE|%d||%0100d\r' $i 0; i=$((i + 1)); done; } > "$T_DIR/big.hl7"
is "$($PEER oversize "$MLLP_PORT" "$T_DIR/big.hl7")" "closed" "a frame over limits.mllp_frame (2KiB): the connection closed, no ACK"
wait_log 'mllp-frame-too-large .*limit=2048' 5
ok $? "  mllp-frame-too-large limit=2048 logged"
cp "$M/g5.hl7" "$T_DIR/noframe"
is "$($PEER raw "$MLLP_PORT" "$T_DIR/noframe")" "0 eof" "a message without 0x0B at all: no ACK"
wait_log "mllp-garbage .*bytes=$(wc -c < "$M/g5.hl7" | tr -d ' ')" 5
ok $? "  counted as garbage ($(wc -c < "$M/g5.hl7" | tr -d ' ') bytes)"
is "$(rec RIS0035)" null "  and not taken"
xmit g5 g5 --together "$M/g6.hl7"
is "$acode" "AA AA" "two frames in one write: two ACKs"
ackchk g5 g5 AA "" - "  the first for the first (MSA-2 RIS0035)"
ackchk g6 g5.2 AA "" - "  the second for the second (MSA-2 RIS0036)"
xmit g7 g7 --chunk 7 --delay 0.003
ackchk g7 g7 AA "" - "a frame in 7-byte writes 3 ms apart: AA"
{ printf '\013'; cat "$M/g8.hl7"; printf '\034X'; } > "$T_DIR/badtrail"
is "$($PEER rawack "$MLLP_PORT" "$T_DIR/badtrail" 1)" "AA" "a frame ended by 0x1C without 0x0D: taken as the end, ACKed"
wait_log 'mllp-bad-trailer ' 5
ok $? "  logged mllp-bad-trailer"
{ printf '\013'; sed 's/RIS0039/RIS0045/' "$M/g9.hl7"; printf '\034'; } > "$T_DIR/fsonly"
is "$($PEER rawack "$MLLP_PORT" "$T_DIR/fsonly" 1)" "AA" "a frame ended by 0x1C alone, the last byte sent: ACKed (no wait for a CR)"
{ printf '\013'; sed 's/RIS0039/RIS0046/' "$M/g9.hl7" | head -c 80; printf '\013';
  sed 's/RIS0039/RIS0047/' "$M/g9.hl7"; printf '\034\r'; } > "$T_DIR/restart"
is "$($PEER rawack "$MLLP_PORT" "$T_DIR/restart" 1)" "AA" "a frame cut short by a new 0x0B: the new frame is ACKed"
is "$(rec RIS0047 | jq -r .ack)/$(rec RIS0046)" "AA/null" "  it is taken whole; the cut one is not taken (nor merged into it)"
wait_log 'mllp-frame-restarted .*dropped_bytes=80 ' 5
ok $? "  logged mllp-frame-restarted (80 bytes dropped)"
{ printf '\013'; sed 's/RIS0039/RIS0044/' "$M/g9.hl7"; printf '\034\r'; } > "$T_DIR/halfclose"
is "$($PEER raw "$MLLP_PORT" "$T_DIR/halfclose")" "1 eof" "a sender that half-closes (SHUT_WR) after its frame still gets its ACK"
is "$(rec RIS0044 | jq -r .ack)" AA "  (the message was taken: its inbox record says AA)"
api GET /api/health
is "$code" 200 "the daemon serves on after all of it"

# --- the inbox API ---------------------------------------------------------------------
api GET '/api/hl7/messages?limit=1000'
all=$(j '.messages | length')
is "$(j '[.messages[] | select(.ack == null or .outcome == null)] | length')" 0 \
	"GET /api/hl7/messages: all $all records have ack and outcome"
is "$(j '[.messages[].seq] | . == (sort) and . == (unique)')" true "  in order of arrival, each once"
is "$(j '.next')" null "  next null: the last page"
api GET '/api/hl7/messages?limit=1000&sender=mwl'
is "$(j '[.messages[].control_id] | join(",")')" "MWL-77" "  sender=mwl: the OMI alone"
api GET '/api/hl7/messages?limit=1000&type=ADT%5EA40'
is "$(j '[.messages[].control_id] | join(",")')" "RIS0011,RIS0021,RIS0022,RIS0023,RIS0024,RIS0081,RIS0083,RIS0084,R2-0001,EV-0001" "  type=ADT^A40: the ten merges"
api GET '/api/hl7/messages?limit=1000&ack=AE'
is "$(j '[.messages[].control_id] | join(",")')" "RIS0008,RIS0009,RIS0010,RIS0011,RIS0012,RIS0023,RIS0024,RIS0083,RIS0084,RIS0001" "  ack=AE: the ten content errors (the last a control ID reused)"
api GET '/api/hl7/messages?limit=1000&sender=ris&type=ADT%5EA99&ack=AR'
is "$(j '[.messages[].control_id] | join(",")')" "RIS0014" "  sender+type+ack: ris's refused ADT^A99"
api GET '/api/hl7/messages?limit=1000&sender=ris&ack=AR'
is "$(j '[.messages[].control_id] | join(",")')" "RIS0013,RIS0014,,RIS0015,RIS0017" \
	"  sender+ack: ris's refusals, those that did not parse or had no MSH-10 too"
pages=0 after=0 seen=
while :; do
	api GET "/api/hl7/messages?limit=4&after=$after"
	pages=$((pages + 1))
	seen="$seen$(j '[.messages[].seq | tostring] | join(",")'),"
	after=$(j '.next // empty')
	[ -n "$after" ] || break
	[ "$pages" -gt 100 ] && break
done
api GET '/api/hl7/messages?limit=1000'
is "$seen" "$(j '[.messages[].seq | tostring] | join(",")')," "  limit=4, after=next: $pages pages, every record once, in order"
api GET '/api/hl7/messages?limit=0'
is "$code" 400 "  limit=0: 400"

# ingest: a file of three messages, one a line per segment (MSH-separated)
{ tr '\r' '\n' < "$M/g8.hl7" | sed 's/RIS0038/RIS0042/'; tr '\r' '\n' < "$M/a99.hl7" | sed 's/RIS0014/RIS0040/'; tr '\r' '\n' < "$M/noacc.hl7" | sed 's/RIS0008/RIS0041/'; } > "$T_DIR/three.txt"
api POST /api/hl7/ingest "$T_DIR/three.txt"
is "$code $(j '[.messages[].ack] | join(" ")') $(j .count) $(j .accepted)" "200 AA AR AE 3 1" \
	"POST /api/hl7/ingest, 3 messages in a file: AA AR AE, count 3, accepted 1"
printf '%s' "$out" | jq -j '.messages[0].ack_message' > "$A/ing1"
sed 's/RIS0038/RIS0042/' "$M/g8.hl7" > "$M/ing1.hl7"
ackchk ing1 ing1 AA "" - "  the first's ACK message, field by field"
is "$(rec RIS0042 | jq -r '.via + " " + .outcome')" "api batch" "  inbox: via api, outcome batch"
{ printf 'junk\013'; cat "$M/g9.hl7"; printf '\034\r\013'; cat "$M/orm1.hl7"; printf '\034\r'; } > "$T_DIR/framed"
api POST /api/hl7/ingest "$T_DIR/framed"
is "$code $(j '[.messages[].ack] | join(" ")')" "200 AA AA" "POST /api/hl7/ingest, two MLLP frames: AA AA"
printf '%s' "$out" | jq -j '.messages[1].ack_message' > "$A/ing.orm1"
cmp -s "$A/ing.orm1" "$A/orm1"
ok $? "  the one seen over MLLP before gets its MLLP ACK again, byte for byte (dedup)"
nb=$(nbatches)
{ tr '\r' '\n' < "$M/g9.hl7" | sed 's/RIS0039/RIS0043/'; tr '\r' '\n' < "$M/g9.hl7" | sed 's/RIS0039/RIS0043/'; } > "$T_DIR/twice.txt"
api POST /api/hl7/ingest "$T_DIR/twice.txt"
is "$code $(j '[.messages[].ack] | join(" ")') $(nbatches)" "200 AA AA $((nb + 1))" "  one message twice in one body: AA AA, one batch"
printf '%s' "$out" | jq -j '.messages[0].ack_message' > "$A/tw1"
printf '%s' "$out" | jq -j '.messages[1].ack_message' > "$A/tw2"
cmp -s "$A/tw1" "$A/tw2"
ok $? "  the same ACK bytes for both"
printf 'hello\n' > "$T_DIR/none"
api POST /api/hl7/ingest "$T_DIR/none"
is "$code $(j .error.code)" "400 no_message" "  a body without a message: 400 no_message"

# preview: what the sender's paths take
api POST /api/hl7/preview "$M/zris.hl7"
is "$code $(j '[.sender.name, .values.accession.path, .values.accession.value, .values.mrn.value, .values.study_uid.value] | join(" ")')" \
	"200 zris ZXX-2.1 ZACC-55 ZMRN55 1.2.3.4.5.55" "POST /api/hl7/preview: zris's paths and values"
api POST /api/hl7/preview "$M/esc.hl7"
is "$(j '[.type, .trigger, .control_id, .values.accession.path, .values.accession.value] | join(" ")')" \
	'ORM O01 RIS0004 OBR-3.1|OBR-2.1 ACC|7^X&Y\ZA' "  the defaults, unescaped"
api POST /api/hl7/preview "$M/badseg.hl7"
is "$code" 422 "  a message that does not parse: 422"
is "$(rec RIS0099)" null "  preview keeps nothing"

# --- a burst ------------------------------------------------------------------------------
ni=$(ninbox)
nb=$(nbatches)
aa0=$(metric vnamig_hl7_messages_total 'ack="AA"')
t0=$(date +%s)
res=$($PEER burst "$MLLP_PORT" "$BURST_SENDERS" "$BURST_EACH" 2>"$T_DIR/burst.err")
t1=$(date +%s)
total=$((BURST_SENDERS * BURST_EACH))
is "$res" "ok $total" "burst: $BURST_SENDERS senders x $BURST_EACH ADT^A08 at once, each waiting for its ACK: every ACK AA, in order (MSA-2)"
diag "$(cat "$T_DIR/burst.err") ($((t1 - t0)) s)"
is "$(ninbox)" "$((ni + total))" "  exactly $total more inbox records"
is "$(metric vnamig_hl7_messages_total 'ack="AA"')" "$((aa0 + total))" "  vnamig_hl7_messages_total{ack=AA} +$total"
is "$(nbatches)" "$((nb + total))" "  $total more batches"
is "$(metric vnamig_hl7_messages_total 'sender="burst07"')" "$BURST_EACH" "  $BURST_EACH from burst07"

# --- pipelining -----------------------------------------------------------------------------
# orders PREFIX N: N orders from ris as $M/PREFIX001.hl7 ..., MSH-10
# PREFIX001 ..., each its own accession (OBR-3): one template, @ the ID
orders() {
	msg "$1" <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105130000||ORM^O01^ORM_O01|@|P|2.5.1
PID|1||M@^^^MAINHOSP^MR||PIPE^LINE
ORC|NW|PL@|FI@||SC
$(obr "PL@" "FI@" "")
EOF
	awk -v d="$M" -v p="$1" -v n="$2" 'BEGIN { RS = "\001" } { t = $0 } END {
	    for (i = 1; i <= n; i++) {
		s = t
		id = sprintf("%s%03d", p, i)
		gsub(/@/, id, s)
		printf "%s", s > (d "/" id ".hl7")
		close(d "/" id ".hl7")
	    } }' "$M/$1.hl7"
}
# names PREFIX FROM TO: those orders' files; acks CODE PREFIX FROM TO:
# what pipe prints for their ACKs
names() { _i=$2; while [ "$_i" -le "$3" ]; do printf '%s/%s%03d.hl7 ' "$M" "$1" "$_i"; _i=$((_i + 1)); done; }
acks() { _i=$3; while [ "$_i" -le "$4" ]; do printf '%s %s%03d\n' "$1" "$2" "$_i"; _i=$((_i + 1)); done; }
# pipe PORT WANT [--tls CA] [--shut] FILE...: one connection; every FILE
# framed and written back to back, no ACK awaited (--shut: then our
# sending side shut down, over TLS without close_notify, as most
# senders do); the ACKs read meanwhile, a line each: MSA-1 MSA-2. After
# WANT ACKs (at once with --shut) we shut down too and read on until the
# daemon closes: "eof" (or "reset", "timeout"), so an ACK too many shows.
pipe() {
	$PY - "$top_srcdir/t" "$@" <<'EOF'
import socket
import sys
import threading

sys.dont_write_bytecode = True    # no __pycache__ in the source tree
sys.path.insert(0, sys.argv[1])
from hl7peer import CR, FS, VT, code_of, connect, msa2_of

port, want, args = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
ca, shut = None, False
while args[0].startswith("--"):
    if args.pop(0) == "--tls":
        ca = args.pop(0)
    else:
        shut = True
data = b"".join(VT + open(f, "rb").read() + FS + CR for f in args)
s = connect(port, ca)


def shut_wr():
    # on the socket itself: SSLSocket.shutdown drops the TLS session too
    socket.fromfd(s.fileno(), socket.AF_INET, socket.SOCK_STREAM).shutdown(
        socket.SHUT_WR)


def send():
    try:
        s.sendall(data)
        if shut:
            shut_wr()
    except OSError:
        pass    # the daemon closed: what it answered tells


# one SSL object is not for two threads at once: over TLS all is written
# first (the socket buffers hold it)
t = None if ca else threading.Thread(target=send)
if t:
    t.start()
else:
    send()
buf, out = b"", []
while True:
    j = buf.find(FS + CR)
    if j >= 0:
        a = buf[buf.find(VT) + 1:j]
        buf = buf[j + 2:]
        out.append("%s %s" % (code_of(a), msa2_of(a).decode("latin-1")))
        if len(out) == want and not shut:
            if t:
                t.join()
            shut_wr()
        continue
    try:
        d = s.recv(65536)
    except socket.timeout:
        d = "timeout"
    except OSError:
        d = "reset"
    if not d or isinstance(d, str):
        out.append(d or "eof")
        break
    buf += d
if t:
    t.join()
print("\n".join(out))
EOF
}
orders P 200
orders Q 20
orders H 45
msg qae <<EOF
MSH|^~\&|RIS|MAINHOSP|VNAMIG|PACS|20240105131000||ORM^O01^ORM_O01|QAE1|P|2.5.1
PID|1||MQAE1^^^MAINHOSP^MR
ORC|NW|||SC
$(obr "" "" "")
EOF
c0=$(metric vnamig_store_commit_seconds_count)
# shellcheck disable=SC2046
is "$(pipe "$MLLP_PORT" 200 $(names P 1 200))" "$(acks AA P 1 200)
eof" "200 orders on one connection back to back, no ACK awaited: 200 ACKs, each AA, MSA-2 in the order sent"
c1=$(metric vnamig_store_commit_seconds_count)
[ $((c1 - c0)) -lt 100 ]
ok $? "  in $((c1 - c0)) group commits, not one each: up to limits.mllp_pipeline (32) in commit at once"
is "$(rec P200 ris | jq -r '.ack + " " + .outcome')" "AA batch" "  the last one's inbox record: AA, a batch"
# among new orders: copies answered at once from the dedup store (AA,
# AE), a copy of one sent just before (maybe still in commit), an AE, an
# AR, a frame without MSH (no ACK at all)
# shellcheck disable=SC2046
is "$(pipe "$MLLP_PORT" 24 $(names Q 1 10) "$M/orm1.hl7" $(names Q 11 15) "$M/Q003.hl7" \
    "$M/noacc.hl7" "$M/qae.hl7" "$M/badseg.hl7" "$M/nomsh.hl7" $(names Q 16 20))" "$(acks AA Q 1 10)
AA RIS0001
$(acks AA Q 11 15)
AA Q003
AE RIS0008
AE QAE1
AR RIS0017
$(acks AA Q 16 20)
eof" "  the same with duplicates, an AE, an AR and a frame without MSH among them: each its code, in the order sent"
is "$(curl -s -H "Authorization: Bearer $TOK" "$base/api/hl7/messages?limit=1000&sender=ris" |
    jq -r '[.messages[] | select(.control_id == "Q003" or .control_id == "QAE1") | .control_id + ":" + .ack] | join(" ")')" \
	"Q003:AA QAE1:AE" "  in the inbox: the copied order once, the AE"
# shellcheck disable=SC2046
is "$(pipe "$MLLP_PORT" 5 --shut $(names H 1 5))" "$(acks AA H 1 5)
eof" "a sender that writes 5 orders, then shuts down its sending side (SHUT_WR): all 5 ACKs, then the close"
# shellcheck disable=SC2046
is "$(pipe "$MLLP_PORT" 40 --shut $(names H 6 45))" "$(acks AA H 6 45)
eof" "  40, more than limits.mllp_pipeline: all 40 ACKs, then the close"
api GET /api/health
is "$code" 200 "the daemon serves on"

# limits.mllp_pipeline 1 (a live key): one message at a time, as before
# pipelining
hl7_conf "$conf" "" "  catch_all: other" "  mllp_frame: 2KiB
  mllp_pipeline: 1"
kill -HUP "$DAEMON_PID"
wait_log ' config-changed key=limits.mllp_pipeline old=32 new=1 applied=now' 10 &&
    wait_log ' reload-done changes=1$' 10
ok $? "SIGHUP: limits.mllp_pipeline 32 -> 1 applies now, the one change"
orders S 25
c0=$(metric vnamig_store_commit_seconds_count)
# shellcheck disable=SC2046
is "$(pipe "$MLLP_PORT" 20 $(names S 1 20))" "$(acks AA S 1 20)
eof" "20 orders back to back on one connection: 20 AA, in the order sent"
c1=$(metric vnamig_store_commit_seconds_count)
[ $((c1 - c0)) -ge 20 ]
ok $? "  one message at a time: a group commit each ($((c1 - c0)))"
# shellcheck disable=SC2046
is "$(pipe "$MLLP_PORT" 5 --shut $(names S 21 25))" "$(acks AA S 21 25)
eof" "  5 orders, then SHUT_WR: all 5 ACKs, then the close"

# --- TLS ----------------------------------------------------------------------------------
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops (exit 0)"
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
hl7_conf "$conf" ", tls: { cert: $d/server.crt, key: $d/server.key }" "" ""
start_daemon "$conf" || { fail "vnamigd starts with TLS on MLLP"; done_testing; }
pass "vnamigd starts with listen.mllp.tls"
base="http://127.0.0.1:$HTTP_PORT"
xmit tls tls --tls "$d/ca.crt"
ackchk tls tls AA "" - "ORM^O01 over MLLP/TLS: AA, field by field"
is "$(bline "$(rec RIS0060 ris | jq -r .batch_id)")" "queued TFI1 MRN1060 $UID_A.60 legacy newpacs 3 hl7:ris RIS0060" "  and its batch"
xmit orm1 orm1.tls --tls "$d/ca.crt"
cmp -s "$A/orm1" "$A/orm1.tls"
ok $? "  the first order again over TLS: the same ACK bytes"
is "$($PEER raw "$MLLP_PORT" "$M/g9.hl7")" "0 eof" "plain text on the TLS port: no ACK"
orders T 40
# shellcheck disable=SC2046
is "$(pipe "$MLLP_PORT" 40 --tls "$d/ca.crt" --shut $(names T 1 40))" "$(acks AA T 1 40)
eof" "over TLS, 40 orders back to back, then SHUT_WR without close_notify: all 40 ACKs, then the close"
stop_daemon
is "$DAEMON_RC" 0 "vnamigd stops (exit 0)"

done_testing
