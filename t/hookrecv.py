#!/usr/bin/python3
"""hookrecv.py — a webhook receiver for the notification tests.

    hookrecv.py PORTFILE LOG [--secret S] [--cert CRT --key KEY] [--port N]

Listens on 127.0.0.1 (port N, or a free one; written to PORTFILE), HTTP/1.1 with
keep-alive, TLS with --cert/--key. Every request but /_ctl is a delivery:
one JSON line in LOG with its path, headers, body, whether the
X-Vnamig-Signature verifies with --secret ("sig": true/false/null), and
the connection's number. The answer is 200, unless told otherwise:

    GET /_ctl?fail=N&status=503&retry_after=1   the next N answer status
    GET /_ctl?hang=N                            the next N never answer
    GET /_ctl?big=N                             the next N answer 200 with
                                                2 MiB of body
    GET /_ctl                                   back to normal

The control answer is a JSON object of the counts so far.
"""
import hashlib
import hmac
import http.server
import json
import ssl
import sys
import threading
import time
import urllib.parse

args = sys.argv[1:]
portfile, logfile = args[0], args[1]
opts = dict(zip(args[2::2], args[3::2]))
secret = opts.get("--secret")
lock = threading.Lock()
state = {"fail": 0, "status": 503, "retry_after": None, "hang": 0, "big": 0,
         "conns": 0, "deliveries": 0}


def verify(headers, body):
    sig = headers.get("X-Vnamig-Signature")
    if secret is None or sig is None:
        return None
    parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
    msg = parts.get("t", "").encode() + b"." + body
    want = hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, parts.get("v1", ""))


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with lock:
            state["conns"] += 1
            self.conn_no = state["conns"]

    def log_message(self, *a):
        pass

    def answer(self, status, body, extra=None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        if u.path != "/_ctl":
            return self.answer(404, b"{}")
        q = dict(urllib.parse.parse_qsl(u.query))
        with lock:
            state.update(fail=0, hang=0, big=0, status=503, retry_after=None)
            for k in ("fail", "hang", "big", "status"):
                if k in q:
                    state[k] = int(q[k])
            if "retry_after" in q:
                state["retry_after"] = q["retry_after"]
            out = json.dumps(state).encode()
        self.answer(200, out)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        rec = {"path": self.path, "headers": dict(self.headers.items()),
               "body": body.decode("utf-8", "replace"),
               "sig": verify(self.headers, body), "conn": self.conn_no,
               "t": time.time()}
        with lock:
            state["deliveries"] += 1
            if state["hang"] > 0:
                state["hang"] -= 1
                rec["answer"] = "hang"
            elif state["fail"] > 0:
                state["fail"] -= 1
                rec["answer"] = state["status"]
            elif state["big"] > 0:
                state["big"] -= 1
                rec["answer"] = "big"
            else:
                rec["answer"] = 200
            with open(logfile, "a") as f:
                f.write(json.dumps(rec) + "\n")
            ra = state["retry_after"]
        if rec["answer"] == "hang":
            time.sleep(30)
            self.close_connection = True
            return
        if rec["answer"] == "big":
            return self.answer(200, b"x" * (2 << 20))
        if rec["answer"] != 200:
            extra = {"Retry-After": ra} if ra is not None else None
            return self.answer(rec["answer"], b'{"error":"told to fail"}',
                               extra)
        self.answer(200, b'{"ok":true}')


    do_PUT = do_POST


class S(http.server.ThreadingHTTPServer):
    daemon_threads = True


srv = S(("127.0.0.1", int(opts.get("--port", "0"))), H)
if "--cert" in opts:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(opts["--cert"], opts["--key"])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
