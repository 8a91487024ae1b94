#!/bin/sh
# send.t — the requestor side (vnamig-send: vnamigd's own Upper Layer and
# DIMSE code as SCU) against DCMTK's storescp in bit-preserving mode: the
# dataset bytes arrive exactly as stored in the files sent, in their own
# transfer syntaxes; C-ECHO; and against vnamigd's own SCP: a status
# other than success is reported per file while the association goes on;
# a rejection, an unreachable peer and an unknown peer name are clear
# errors.
. "$top_srcdir/t/lib.sh"

export TCP_NODELAY=1
SEND=$top_builddir/src/send/vnamig-send
pyd=/usr/lib/python3/dist-packages/pydicom/data/test_files
files=$(store_files)

scp_port=$(free_port)
mkdir -p "$T_DIR/scp"
storescp +B +xa -od "$T_DIR/scp" -aet SCP "$scp_port" >"$T_DIR/scp.log" 2>&1 &
scp_pid=$!
wait_until 5 sh -c "echoscu -aec SCP 127.0.0.1 $scp_port"
ok $? "storescp +B +xa listens on $scp_port"

# vnamigd, for its SCP
conf=$T_DIR/vnamigd.yaml
cat >"$conf" <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/var
listen:
  dicom: { address: 127.0.0.1, port: 0 }
storage:
  min_free: 1MiB
peers:
  - { name: sender, ae_title: SENDER, host: 127.0.0.1, port: 11113, role: source }
YAML
start_daemon "$conf" || { fail "vnamigd starts"; done_testing; }
pass "vnamigd starts"

# peers[].max_pdu: the largest PDU sent to the peer, below what it offers
ft_port=$(free_port)
ft16_port=$(free_port)
/usr/bin/python3 "$top_srcdir/t/faketarget.py" "$ft_port" FAKEPDU \
    "$T_DIR/ft.log" --log-pdata >"$T_DIR/ft.err" 2>&1 &
ft_pid=$!
/usr/bin/python3 "$top_srcdir/t/faketarget.py" "$ft16_port" FAKEPDU16 \
    "$T_DIR/ft16.log" --log-pdata >"$T_DIR/ft16.err" 2>&1 &
ft16_pid=$!
wait_until 5 sh -c "echoscu -aec FAKEPDU 127.0.0.1 $ft_port && echoscu -aec FAKEPDU16 127.0.0.1 $ft16_port"
ok $? "two faketargets (each offers 1 MiB PDUs) listen"

cat >"$T_DIR/send.yaml" <<YAML
node:
  ae_title: SENDER
  data_dir: $T_DIR/svar
peers:
  - { name: scp, ae_title: SCP, host: 127.0.0.1, port: $scp_port, role: target }
  - { name: us, ae_title: VNAMIG, host: 127.0.0.1, port: $DICOM_PORT, role: target }
  - { name: nobody, ae_title: NOBODY, host: 127.0.0.1, port: $(free_port), role: target }
  - { name: ft, ae_title: FAKEPDU, host: 127.0.0.1, port: $ft_port, role: target }
  - { name: ft16, ae_title: FAKEPDU16, host: 127.0.0.1, port: $ft16_port, role: target, max_pdu: 16KiB }
YAML
S="$SEND -c $T_DIR/send.yaml"

$S ft "$pyd/waveform_ecg.dcm" >"$T_DIR/out" 2>&1
ok $? "vnamig-send a 290 KB file to faketarget"
big=$(sed -n 's/^pdata-max //p' "$T_DIR/ft.log" | tail -1)
ok "$([ "${big:-0}" -gt 16384 ]; echo $?)" "  in PDUs longer than 16 KiB ($big bytes)"
$S ft16 "$pyd/waveform_ecg.dcm" >"$T_DIR/out" 2>&1
ok $? "the same to the peer with max_pdu: 16KiB"
small=$(sed -n 's/^pdata-max //p' "$T_DIR/ft16.log" | tail -1)
ok "$([ "${small:-99999}" -le 16384 ]; echo $?)" "  in PDUs of at most 16 KiB ($small bytes)"
kill "$ft_pid" "$ft16_pid" 2>/dev/null

out=$($S --echo scp 2>&1)
ok $? "vnamig-send --echo storescp: success"
is "$out" "C-ECHO: 0x0000 (Success)" "  it says so"

# shellcheck disable=SC2086
$S scp $files >"$T_DIR/out" 2>&1
ok $? "vnamig-send sends 11 files in 11 transfer syntaxes to storescp: exit 0"
is "$(grep -c ': 0x0000 (Success)$' "$T_DIR/out")" 11 "  one success line per file"
same=0
for f in $files; do
	iuid=$(/usr/bin/python3 -c 'import sys, pydicom; print(pydicom.dcmread(sys.argv[1], stop_before_pixels=True).SOPInstanceUID)' "$f")
	got=$(ls "$T_DIR/scp/"*".$iuid" 2>/dev/null | head -1)
	if [ -n "$got" ] && [ "$(dataset_sha "$f")" = "$(dataset_sha "$got")" ]; then
		same=$((same + 1))
	else
		diag "differs or missing at storescp: ${f##*/}"
	fi
done
is "$same" 11 "  storescp received every dataset byte for byte as stored in the file"

# Datasets up to 2 MiB are read into memory and sent from there; bigger
# ones go from the file by sendfile (net_dicom.c SEND_COPY_MAX): one of
# 3 MiB and one of 9 KiB on one association, in 16 KiB PDUs (storescp's).
/usr/bin/python3 "$top_srcdir/contrib/bench/gen-store-instances" "$T_DIR/gen" 1 0 3072 &&
cp "$T_DIR/gen/large/00000.dcm" "$T_DIR/big.dcm"
$S scp "$T_DIR/big.dcm" "$pyd/CT_small.dcm" >"$T_DIR/out" 2>&1
is "$(grep -c ': 0x0000 (Success)$' "$T_DIR/out")" 2 \
	"vnamig-send: a 3 MiB instance (sendfile) and a 39 KB one (from memory): two successes"
same=0
for f in "$T_DIR/big.dcm" "$pyd/CT_small.dcm"; do
	iuid=$(/usr/bin/python3 -c 'import sys, pydicom; print(pydicom.dcmread(sys.argv[1], stop_before_pixels=True).SOPInstanceUID)' "$f")
	got=$(ls -t "$T_DIR/scp/"*".$iuid" 2>/dev/null | head -1)
	[ -n "$got" ] && [ "$(dataset_sha "$f")" = "$(dataset_sha "$got")" ] &&
		same=$((same + 1))
done
is "$same" 2 "  storescp received both datasets byte for byte"
kill "$scp_pid" 2>/dev/null

# Against vnamigd: a truncated file gets 0xC000, the next file still goes.
head -c 20000 "$pyd/CT_small.dcm" >"$T_DIR/truncated.dcm"
$S us "$T_DIR/truncated.dcm" "$pyd/MR_small.dcm" >"$T_DIR/out" 2>&1
is "$?" 1 "a file the SCP refuses: exit 1"
like "$(cat "$T_DIR/out")" 'truncated\.dcm: 0xc000 \(Error: Cannot Understand\): .*truncated' \
	"  reported: 0xC000 with the SCP's error comment"
like "$(cat "$T_DIR/out")" 'MR_small\.dcm: 0x0000 \(Success\)' \
	"  and the next file on the same association succeeds"

# Several associations (-j), reused, within the peer's limit and the
# overall one: vnamigd counts the associations it accepts.
accepted() { grep -c 'assoc-accepted ' "$T_DIR/daemon.log"; }
a0=$(accepted)
# shellcheck disable=SC2086
$S -j 4 us $files >"$T_DIR/out" 2>&1
ok $? "-j 4: eleven files over four associations: exit 0"
is "$(grep -c ': 0x0000 (Success)$' "$T_DIR/out")" 11 "  eleven stored"
is "$(($(accepted) - a0))" 4 "  four associations, each used for several files"
sed -e 's/role: target }/role: target, max_associations: 2 }/' "$T_DIR/send.yaml" >"$T_DIR/two.yaml"
a0=$(accepted)
# shellcheck disable=SC2086
$SEND -c "$T_DIR/two.yaml" -j 6 us $files >"$T_DIR/out" 2>&1
ok $? "-j 6 to a peer with max_associations 2: exit 0"
is "$(grep -c ': 0x0000 (Success)$' "$T_DIR/out")" 11 "  eleven stored"
is "$(($(accepted) - a0))" 2 "  over two associations: the other four leases waited and reused them"
printf 'limits:\n  associations_out: 1\n' >>"$T_DIR/two.yaml"
a0=$(accepted)
# shellcheck disable=SC2086
$SEND -c "$T_DIR/two.yaml" -j 6 us $files >"$T_DIR/out" 2>&1
ok $? "the same with limits.associations_out 1: exit 0"
is "$(($(accepted) - a0))" 1 "  one association"
$S -j 0 us $files >/dev/null 2>&1
is $? 2 "-j 0: exit 2"

# Pipelining: vnamigd grants the asynchronous operations window vnamig-send
# asks for (limits.async_window, 8 by default), and the C-STOREs go out
# eight at a time on one association.
like "$(grep 'assoc-accepted .*calling=SENDER' "$T_DIR/daemon.log" | tail -1)" " window=8 " \
    "vnamigd grants vnamig-send a window of 8"
printf 'limits:\n  async_window: 1\n' >>"$T_DIR/one.yaml"
cat "$T_DIR/send.yaml" "$T_DIR/one.yaml" >"$T_DIR/w1.yaml"
# shellcheck disable=SC2086
$SEND -c "$T_DIR/w1.yaml" us $files >"$T_DIR/out" 2>&1
ok $? "with async_window 1 (no window asked for): exit 0"
like "$(grep 'assoc-accepted .*calling=SENDER' "$T_DIR/daemon.log" | tail -1)" " window=1 " \
    "  one operation at a time"

sed -e 's/ae_title: SENDER/ae_title: STRANGER/' "$T_DIR/send.yaml" >"$T_DIR/stranger.yaml"
out=$($SEND -c "$T_DIR/stranger.yaml" --echo us 2>&1)
is "$?" 1 "a calling AE title vnamigd does not know: exit 1"
like "$out" "association rejected 1/1/3" "  with the A-ASSOCIATE-RJ reason"

out=$($S --echo nobody 2>&1)
is "$?" 1 "nobody listening: exit 1"
like "$out" "association ended: .*(refused|Connection)" "  saying the connection failed"

cat >"$T_DIR/names.yaml" <<YAML
node: { ae_title: SENDER, data_dir: $T_DIR/svar }
peers:
  - { name: byname, ae_title: VNAMIG, host: localhost, port: $DICOM_PORT, role: target }
  - { name: badname, ae_title: NONE, host: no-such-host.invalid, port: $DICOM_PORT, role: target }
YAML
out=$($SEND -c "$T_DIR/names.yaml" --echo byname 2>&1)
ok $? "a peer whose host is a name (localhost): C-ECHO succeeds"
out=$($SEND -c "$T_DIR/names.yaml" --echo badname 2>&1)
is "$?" 1 "a host name that does not resolve: exit 1"
like "$out" "association ended: host name lookup failed" "  saying so"

out=$($S --echo nosuchpeer 2>&1)
is "$?" 2 "an unknown peer name: exit 2"
like "$out" 'no peer named "nosuchpeer"' "  named in the message"

$S us /etc/passwd >"$T_DIR/out" 2>&1
is "$?" 1 "a file that is not DICOM: exit 1"
like "$(cat "$T_DIR/out")" "passwd: no SOP Class" "  with a clear message"

stop_daemon
is "$DAEMON_RC" 0 "vnamigd exits 0"
done_testing
