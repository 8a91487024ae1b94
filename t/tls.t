#!/bin/sh
# tls.t — TLS on vnamigd's listeners (listen.*.tls) against DCMTK's TLS
# tools and curl: TLS 1.2+, mutual authentication with verify_peer, and
# each refusal the TESTING.md list names (no client certificate, a
# certificate from another CA, plain text on the TLS port) logged with
# the reason while good connections keep working.
. "$top_srcdir/t/lib.sh"

export TCP_NODELAY=1
pyd=/usr/lib/python3/dist-packages/pydicom/data/test_files
d=$T_DIR/pki
mkdir -p "$d"

# A CA, a server certificate for 127.0.0.1 and a client certificate from
# it, and a second CA with its own client (the wrong one).
mk() {	# mk NAME ISSUER SUBJECT [ext]
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -keyout "$d/$1.key" -out "$d/$1.csr" -subj "$3" 2>/dev/null &&
	printf '%s\n' "${4:-basicConstraints=CA:FALSE}" >"$d/$1.ext" &&
	openssl x509 -req -in "$d/$1.csr" -CA "$d/$2.crt" -CAkey "$d/$2.key" \
		-CAcreateserial -days 2 -out "$d/$1.crt" -extfile "$d/$1.ext" 2>/dev/null
}
for ca in ca other; do
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$d/$ca.key" -out "$d/$ca.crt" -days 2 \
		-subj "/CN=vnamig test $ca" 2>/dev/null
done
mk server ca /CN=127.0.0.1 "subjectAltName=IP:127.0.0.1
basicConstraints=CA:FALSE" &&
mk client ca /CN=SCU &&
mk stranger other /CN=SCU
ok $? "test PKI made with openssl (two CAs, server and client certificates)"

conf=$T_DIR/vnamigd.yaml
cat >"$conf" <<YAML
node:
  ae_title: VNAMIG
  data_dir: $T_DIR/var
listen:
  dicom:
    address: 127.0.0.1
    port: 0
    tls: { cert: $d/server.crt, key: $d/server.key, ca: $d/ca.crt, verify_peer: true }
  http:
    address: 127.0.0.1
    port: 0
    tls: { cert: $d/server.crt, key: $d/server.key }
limits:
  artim_timeout: 2s
storage:
  min_free: 1MiB
peers:
  - { name: scu, ae_title: SCU, host: 127.0.0.1, port: 11113, role: source }
api:
  health_open: true
YAML
start_daemon "$conf" || { fail "vnamigd starts"; done_testing; }
pass "vnamigd starts with TLS on its DICOM and HTTP listeners"
grep -q 'listening proto=dicom .*tls=on,verify_peer' "$T_DIR/daemon.log"
ok $? "  the log says TLS with client verification is on"

tls="+tls $d/client.key $d/client.crt +cf $d/ca.crt"
# shellcheck disable=SC2086
out=$(echoscu $tls -aet SCU -aec VNAMIG 127.0.0.1 "$DICOM_PORT" 2>&1)
ok $? "echoscu +tls with a client certificate: C-ECHO succeeds"
[ -z "$out" ] || diag "$out"
wait_log 'tls-established proto=dicom .*version=TLSv1\.[23] .*client_cert=".*CN *= *SCU' 5
ok $? "  logged: TLS version, cipher and the client certificate's subject"

# shellcheck disable=SC2086
out=$(storescu $tls -aet SCU -aec VNAMIG 127.0.0.1 "$DICOM_PORT" "$pyd/CT_small.dcm" 2>&1)
ok $? "storescu +tls: C-STORE succeeds"
"$VNAMIG_SPOOL" -c "$conf" get 1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322 -o "$T_DIR/tls.dcm" 2>/dev/null &&
[ -s "$T_DIR/tls.dcm" ]
ok $? "  and the instance is stored (in the spool, its hash checked)"

out=$(echoscu +tla +cf "$d/ca.crt" -aet SCU -aec VNAMIG 127.0.0.1 "$DICOM_PORT" 2>&1)
[ $? -ne 0 ]
ok $? "echoscu with TLS but no client certificate is refused"
wait_log 'tls-failed proto=dicom .*certificate' 5
ok $? "  logged as a TLS failure about the certificate"

out=$(echoscu +tls "$d/stranger.key" "$d/stranger.crt" +cf "$d/ca.crt" \
	-aet SCU -aec VNAMIG 127.0.0.1 "$DICOM_PORT" 2>&1)
[ $? -ne 0 ]
ok $? "a client certificate from another CA is refused"
wait_log 'tls-failed proto=dicom .*error="client certificate: unable to get local issuer certificate"' 5
ok $? "  logged: the certificate's issuer is unknown"

out=$(echoscu -aet SCU -aec VNAMIG 127.0.0.1 "$DICOM_PORT" 2>&1)
[ $? -ne 0 ]
ok $? "plain DICOM on the TLS port is refused"
wait_log 'tls-failed proto=dicom .*hint="plain text on a TLS port"' 5
ok $? "  logged with the hint that it was plain text"

# shellcheck disable=SC2086
echoscu $tls -aet SCU -aec VNAMIG 127.0.0.1 "$DICOM_PORT" >/dev/null 2>&1
ok $? "a good TLS association still works after all that"

code=$(curl -s -o "$T_DIR/h.json" -w '%{http_code}' --cacert "$d/ca.crt" \
	"https://127.0.0.1:$HTTP_PORT/api/health")
is "$code" 200 "HTTPS: GET /api/health with curl, server verified against the CA"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/api/health")
[ "$code" != 200 ]
ok $? "plain HTTP on the HTTPS port gets no answer (code $code)"

# The requestor side over TLS: vnamig-send with a peer's tls: settings.
# send_conf NAME TLS-MAPPING: a vnamig-send config with one peer, vnamigd.
# [HOST]: a vnamig-send config with one peer, vnamigd (at HOST, default
# 127.0.0.1).
send_conf() {
	cat >"$T_DIR/$1.yaml" <<YAML
node: { ae_title: SCU, data_dir: $T_DIR/svar }
peers:
  - { name: v, ae_title: VNAMIG, host: ${3:-127.0.0.1}, port: $DICOM_PORT, role: target, tls: $2 }
YAML
}
send_conf good "{ ca: $d/ca.crt, cert: $d/client.crt, key: $d/client.key }"
send_conf nocert "{ ca: $d/ca.crt }"
send_conf wrongca "{ ca: $d/other.crt, cert: $d/client.crt, key: $d/client.key }"
# the server's certificate names IP 127.0.0.1 only: as "localhost" the
# peer is not the one the certificate is for
send_conf byname "{ ca: $d/ca.crt, cert: $d/client.crt, key: $d/client.key }" localhost
send_conf byname_unchecked "{ ca: $d/ca.crt, cert: $d/client.crt, key: $d/client.key, verify_host: false }" localhost
SEND=$top_builddir/src/send/vnamig-send
out=$($SEND -c "$T_DIR/good.yaml" v "$pyd/MR_small.dcm" 2>&1)
ok $? "vnamig-send over TLS with its client certificate: C-STORE succeeds"
out=$($SEND -c "$T_DIR/nocert.yaml" --echo v 2>&1)
[ $? -ne 0 ]
ok $? "vnamig-send without a client certificate is refused by verify_peer"
out=$($SEND -c "$T_DIR/wrongca.yaml" --echo v 2>&1)
[ $? -ne 0 ]
ok $? "vnamig-send that cannot verify the server's certificate gives up"
like "$out" "certificate verify failed|TLS handshake failed" "  saying the TLS handshake failed"
out=$($SEND -c "$T_DIR/byname.yaml" --echo v 2>&1)
[ $? -ne 0 ]
ok $? "a peer at localhost whose certificate names only 127.0.0.1: refused"
like "$out" "certificate verify failed|TLS handshake failed" "  the TLS handshake failed"
out=$($SEND -c "$T_DIR/byname_unchecked.yaml" --echo v 2>&1)
ok $? "  with tls.verify_host: false the same certificate is taken"
like "$out" "tls-host-unchecked peer=v host=localhost" "  with a warning"

kill -0 "$DAEMON_PID"
ok $? "vnamigd is still running"
stop_daemon
is "$DAEMON_RC" 0 "and exits 0 on SIGTERM"
n=$(audit_leaves "$conf" security.tls_failed)
ok "$([ "${n:-0}" -ge 1 ] 2>/dev/null; echo $?)" \
    "the failed TLS handshakes are audit leaves (security.tls_failed): $n"

# A listener whose key does not match its certificate: refused at start.
sed -e "s|key: $d/server.key|key: $d/client.key|" "$conf" >"$T_DIR/bad.yaml"
"$VNAMIGD" -c "$T_DIR/bad.yaml" 2>"$T_DIR/bad.log"
is "$?" 3 "a TLS key that is not the certificate's: vnamigd exits 3"
like "$(cat "$T_DIR/bad.log")" "listen\.dicom\.tls\.key .*client\.key" \
	"  naming the key file"
done_testing
