#!/usr/bin/python3
"""hl7peer.py — an MLLP peer and an ACK checker for t/hl7.t.

  send PORT [--tls CA] [--out PREFIX] [--garbage TEXT] [--chunk N --delay S]
       [--together] [--timeout S] FILE...
      One connection; each FILE's bytes framed (0x0B ... 0x1C 0x0D) and
      sent, its ACK awaited (--together: all frames in one write, then
      the ACKs read). Prints the ACK codes (MSA-1), space-separated;
      "none" when the connection ended without an ACK. --out writes each
      ACK's bytes (without framing) to PREFIX.1, PREFIX.2, ...
  raw PORT FILE
      Sends FILE's bytes as they are, shuts down writing and reads until
      the daemon closes: prints how many ACK frames came back and "eof".
  rawack PORT FILE N
      Sends FILE's bytes as they are (the connection left open) and
      prints the codes of the N ACKs read ("none" for each missing).
  oversize PORT FILE
      Sends FILE framed, but does not shut down: prints "closed" when the
      daemon closes the connection (without an ACK) within 5 s.
  parallel PORT N FILE OUTPREFIX
      N connections, connected first, then each sends FILE at once;
      writes each ACK to OUTPREFIX.i and prints the codes.
  burst PORT SENDERS COUNT
      SENDERS connections at once, each sending COUNT ADT^A08 messages
      from app BURSTnn one after the other, each awaiting its ACK. Prints
      "ok TOTAL" when every ACK is AA and addressed to its message (MSA-2),
      in order; else the first problems. Also the time taken on stderr.
  flood PORT HTTP_PORT TOKEN COUNT
      One connection with a small receive buffer: COUNT ADT^A08 messages
      from app FLOOD written as fast as the daemon takes them, no ACK
      read, until all are out or none went for 3 s; then, once the
      daemon's vnamig_hl7_messages_total (GET /metrics) stops moving,
      prints "sent=S taken=T"; then reads the ACKs (and writes the rest)
      and prints "acks=A aa=N" once all came or none for 10 s.
  check MSG ACK CODE [ERRCODE [LOCATION]]
      Checks ACK (bytes of one ACK) against MSG field by field; prints one
      line per problem (nothing when it is right). LOCATION as SEG^SEQ^FIELD
      ("-": not checked).
  field FILE PATH
      A raw field of an ACK or message: SEG-N (N as in HL7; MSH-1 is the
      field separator), SEG-N.C for a component.
"""
import re
import socket
import ssl
import sys
import threading
import time

VT, FS, CR = b"\x0b", b"\x1c", b"\r"


def connect(port, ca=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ca:
        ctx = ssl.create_default_context(cafile=ca)
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    return s


class Reader:
    def __init__(self, s):
        self.s, self.buf = s, b""

    def ack(self):
        """The next ACK's bytes, or None at EOF / timeout."""
        while True:
            i = self.buf.find(VT)
            if i >= 0:
                j = self.buf.find(FS + CR, i)
                if j >= 0:
                    a = self.buf[i + 1:j]
                    self.buf = self.buf[j + 2:]
                    return a
            try:
                d = self.s.recv(65536)
            except (socket.timeout, OSError):
                return None
            if not d:
                return None
            self.buf += d


def segments(b):
    return [x for x in re.split(rb"\r\n|\r|\n", b) if x]


def msh_fields(b):
    """MSH as a list indexed by HL7 field number ([1] is MSH-1)."""
    m = segments(b)[0]
    fs = m[3:4]
    parts = m.split(fs)
    return [b"MSH", fs] + parts[1:], fs, parts[1]


def seg_fields(b, name, fs):
    for s in segments(b):
        if s[:3] == name:
            return [name] + s.split(fs)[1:] if name != b"MSH" else None
    return None


def code_of(ack):
    if ack is None:
        return "none"
    f = msh_fields(ack)[1]
    msa = seg_fields(ack, b"MSA", f)
    return msa[1].decode("latin-1") if msa and len(msa) > 1 else "?"


def msa2_of(ack):
    f = msh_fields(ack)[1]
    msa = seg_fields(ack, b"MSA", f)
    return msa[2] if msa and len(msa) > 2 else b""


def g(lst, i):
    return lst[i] if i < len(lst) else b""


def check(msg, ack, code, errcode=None, loc=None):
    p = []
    if not ack.endswith(CR):
        p.append("the ACK's last segment does not end with CR")
    if b"\n" in ack:
        p.append("the ACK contains LF")
    segs = ack.split(CR)
    if segs and segs[-1] == b"":
        segs.pop()
    mf, fs, enc = msh_fields(msg)
    af, afs, aenc = msh_fields(ack)
    cs = enc[0:1]
    want = [
        ("MSH-1 (field separator)", af[1], mf[1]),
        ("MSH-2 (encoding characters)", g(af, 2), enc),
        ("MSH-3 = their MSH-5", g(af, 3), g(mf, 5)),
        ("MSH-4 = their MSH-6", g(af, 4), g(mf, 6)),
        ("MSH-5 = their MSH-3", g(af, 5), g(mf, 3)),
        ("MSH-6 = their MSH-4", g(af, 6), g(mf, 4)),
        ("MSH-11 = their MSH-11", g(af, 11), g(mf, 11)),
        ("MSH-12 = their MSH-12", g(af, 12), g(mf, 12)),
    ]
    trig = g(g(mf, 9).split(cs), 1)
    want.append(("MSH-9", g(af, 9),
                 b"ACK" + (cs + trig + cs + b"ACK" if trig else b"")))
    if g(mf, 18):
        want.append(("MSH-18 = their MSH-18", g(af, 18), g(mf, 18)))
    elif len(af) > 13:
        p.append("the ACK has fields past MSH-12 but the message no MSH-18")
    for what, got, exp in want:
        if got != exp:
            p.append("%s: %r, expected %r" % (what, got, exp))
    if not re.fullmatch(rb"\d{14}([+-]\d{4})?", g(af, 7)):
        p.append("MSH-7 is not a timestamp: %r" % g(af, 7))
    ours = g(af, 10)
    if not ours.startswith(b"VN") or len(ours) < 3 or ours == g(mf, 10):
        p.append("MSH-10 is not our own control ID: %r" % ours)
    if len(segs) < 2 or segs[1][:4] != b"MSA" + fs:
        p.append("segment 2 is not MSA")
        return p
    msa = segs[1].split(fs)
    if g(msa, 1) != code.encode():
        p.append("MSA-1: %r, expected %s" % (g(msa, 1), code))
    if g(msa, 2) != g(mf, 10):
        p.append("MSA-2: %r, expected their MSH-10 %r" % (g(msa, 2), g(mf, 10)))
    v25 = re.match(rb"(\d+)\.(\d+)", g(mf, 12).split(cs)[0])
    v25 = v25 and (int(v25.group(1)), int(v25.group(2))) >= (2, 5)
    if code == "AA":
        if len(segs) != 2:
            p.append("an AA has %d segments, expected MSH and MSA" % len(segs))
        return p
    if len(segs) != 3 or segs[2][:4] != b"ERR" + fs:
        p.append("an %s has no ERR segment third (%d segments)" % (code, len(segs)))
        return p
    err = segs[2].split(fs)
    sc = enc[3:4]
    if v25:
        e3 = g(err, 3).split(cs)
        if g(err, 1) != b"":
            p.append("ERR-1 not empty in a v2.5+ ACK: %r" % g(err, 1))
        if errcode and g(e3, 0) != errcode.encode():
            p.append("ERR-3.1: %r, expected %s" % (g(e3, 0), errcode))
        if g(e3, 2) != b"HL70357":
            p.append("ERR-3.3: %r, expected HL70357" % g(e3, 2))
        if not g(e3, 1):
            p.append("ERR-3.2 (the code's text) is empty")
        if g(err, 4) != b"E":
            p.append("ERR-4 (severity): %r, expected E" % g(err, 4))
        if loc not in (None, "-") and g(err, 2) != loc.replace("^", cs.decode()).encode():
            p.append("ERR-2 (location): %r, expected %s" % (g(err, 2), loc))
    else:
        e1 = g(err, 1).split(cs)
        c4 = g(e1, 3).split(sc)
        if errcode and g(c4, 0) != errcode.encode():
            p.append("ERR-1.4.1: %r, expected %s" % (g(c4, 0), errcode))
        if g(c4, 2) != b"HL70357":
            p.append("ERR-1.4.3: %r, expected HL70357" % g(c4, 2))
        if loc not in (None, "-") and cs.join(e1[:3]) != loc.replace("^", cs.decode()).encode():
            p.append("ERR-1 location: %r, expected %s" % (cs.join(e1[:3]), loc))
    return p


def field(b, path):
    m = re.fullmatch(r"([A-Z0-9]{3})-(\d+)(?:\.(\d+))?", path)
    seg, n, c = m.group(1).encode(), int(m.group(2)), m.group(3)
    mf, fs, enc = msh_fields(b)
    if seg == b"MSH":
        v = g(mf, n)
    else:
        f = seg_fields(b, seg, fs)
        v = g(f, n) if f else b""
    if c:
        v = g(v.split(enc[0:1]), int(c) - 1)
    return v


def send(args):
    ca = out = garbage = None
    chunk, delay, together, timeout = 0, 0.0, False, 20.0
    files = []
    port = int(args.pop(0))
    while args:
        a = args.pop(0)
        if a == "--tls":
            ca = args.pop(0)
        elif a == "--out":
            out = args.pop(0)
        elif a == "--garbage":
            garbage = args.pop(0).encode()
        elif a == "--chunk":
            chunk = int(args.pop(0))
        elif a == "--delay":
            delay = float(args.pop(0))
        elif a == "--together":
            together = True
        elif a == "--timeout":
            timeout = float(args.pop(0))
        else:
            files.append(a)
    s = connect(port, ca)
    s.settimeout(timeout)
    r = Reader(s)
    frames = [VT + open(f, "rb").read() + FS + CR for f in files]
    if garbage:
        frames[0] = garbage + frames[0]
    acks = []
    if together:
        s.sendall(b"".join(frames))
        for _ in frames:
            acks.append(r.ack())
    else:
        for fr in frames:
            if chunk:
                for i in range(0, len(fr), chunk):
                    s.sendall(fr[i:i + chunk])
                    time.sleep(delay)
            else:
                s.sendall(fr)
            acks.append(r.ack())
    s.close()
    for i, a in enumerate(acks):
        if out and a is not None:
            with open("%s.%d" % (out, i + 1), "wb") as f:
                f.write(a)
    print(" ".join(code_of(a) for a in acks))


def raw(port, path):
    s = connect(port)
    try:
        s.sendall(open(path, "rb").read())
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass    # the daemon closed first
    r, n = Reader(s), 0
    while r.ack() is not None:
        n += 1
    print(n, "eof")


def rawack(port, path, n):
    s = connect(port)
    s.settimeout(5)
    s.sendall(open(path, "rb").read())
    r = Reader(s)
    print(" ".join(code_of(r.ack()) for _ in range(n)))
    s.close()


def oversize(port, path):
    s = connect(port)
    s.settimeout(5)
    data = VT + open(path, "rb").read() + FS + CR
    try:
        s.sendall(data)
    except OSError:
        pass
    got = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                print("closed" + (" after %d bytes" % len(got) if got else ""))
                return
            got += d
    except ConnectionResetError:
        print("closed" + (" after %d bytes" % len(got) if got else ""))
    except socket.timeout:
        print("still open")


def parallel(port, n, path, outp):
    data = VT + open(path, "rb").read() + FS + CR
    socks = [connect(port) for _ in range(n)]
    acks = [None] * n
    go = threading.Barrier(n)

    def one(i):
        go.wait()
        socks[i].sendall(data)
        acks[i] = Reader(socks[i]).ack()

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for i, a in enumerate(acks):
        if a is not None:
            with open("%s.%d" % (outp, i + 1), "wb") as f:
                f.write(a)
    print(" ".join(code_of(a) for a in acks))


def burst(port, nsend, count):
    problems = []
    done = [0] * nsend
    lock = threading.Lock()
    socks = [connect(port) for _ in range(nsend)]
    go = threading.Barrier(nsend)

    def one(k):
        s, app = socks[k], "BURST%02d" % (k + 1)
        r = Reader(s)
        go.wait()
        for i in range(count):
            ctl = "%s-%06d" % (app, i + 1)
            m = ("MSH|^~\\&|%s|WARD%d|VNAMIG|PACS|20240105%06d||ADT^A08^ADT_A01|%s|P|2.5.1\r"
                 "EVN|A08|20240105093000\r"
                 "PID|1||B%02d%06d^^^WARD^MR||BURST^PATIENT^%d||19700101|F\r"
                 "PV1|1|I|WARD%d^101^1\r"
                 "ZDS|1.2.826.0.1.3680043.10.1.%d.%d^VNA^Application^DICOM\r"
                 % (app, k, i, ctl, k + 1, i + 1, i, k, k + 1, i + 1)).encode()
            s.sendall(VT + m + FS + CR)
            a = r.ack()
            if a is None or code_of(a) != "AA" or msa2_of(a) != ctl.encode():
                with lock:
                    problems.append("%s message %d: %s %r" % (
                        app, i + 1, code_of(a), a and msa2_of(a)))
                return
            done[k] += 1
        s.close()

    t0 = time.time()
    ts = [threading.Thread(target=one, args=(k,)) for k in range(nsend)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.time() - t0
    sys.stderr.write("burst: %d messages in %.1f s (%.0f/s)\n" % (
        sum(done), dt, sum(done) / dt if dt else 0))
    if problems:
        print("\n".join(problems[:5]))
    else:
        print("ok", sum(done))


def taken(http_port, token):
    import urllib.request
    req = urllib.request.Request("http://127.0.0.1:%d/metrics" % http_port,
                                 headers={"Authorization": "Bearer " + token})
    body = urllib.request.urlopen(req, timeout=10).read().decode()
    for line in body.splitlines():
        if line.startswith("vnamig_hl7_messages_total"):
            return int(float(line.split()[-1]))
    return 0


def flood(port, http_port, token, count):
    import select
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    msgs = []
    for i in range(count):
        ctl = "FLOOD-%06d" % (i + 1)
        msgs.append(VT + ("MSH|^~\\&|FLOOD|WARD|VNAMIG|PACS|20240105%06d||ADT^A08^ADT_A01|%s|P|2.5.1\r"
                          "EVN|A08|20240105093000\r"
                          "PID|1||F%06d^^^WARD^MR||FLOOD^PATIENT||19700101|F\r"
                          % (i % 1000000, ctl, i + 1)).encode() + FS + CR)
    out = b"".join(msgs)
    off, last = 0, time.time()
    while off < len(out) and time.time() - last < 3:
        _, w, _ = select.select([], [s], [], 0.2)
        if not w:
            continue
        try:
            n = s.send(out[off:off + 65536])
        except BlockingIOError:
            continue
        if n > 0:
            off += n
            last = time.time()
    sent = out[:off].count(FS + CR)
    prev, t = -1, taken(http_port, token)
    while t != prev:
        time.sleep(1)
        prev, t = t, taken(http_port, token)
    print("sent=%d taken=%d" % (sent, t))
    sys.stdout.flush()
    buf, acks, aa, last = b"", 0, 0, time.time()
    while acks < count and time.time() - last < 10:
        want_w = [s] if off < len(out) else []
        r, w, _ = select.select([s], want_w, [], 0.5)
        if w:
            try:
                off += max(0, s.send(out[off:off + 65536]))
            except BlockingIOError:
                pass
        if r:
            try:
                d = s.recv(65536)
            except BlockingIOError:
                continue
            if not d:
                break
            buf += d
            last = time.time()
            while True:
                i = buf.find(VT)
                j = buf.find(FS + CR, i) if i >= 0 else -1
                if j < 0:
                    break
                acks += 1
                aa += code_of(buf[i + 1:j]) == "AA"
                buf = buf[j + 2:]
    print("acks=%d aa=%d" % (acks, aa))
    s.close()


def main():
    a = sys.argv[1:]
    cmd = a.pop(0)
    if cmd == "send":
        send(a)
    elif cmd == "raw":
        raw(int(a[0]), a[1])
    elif cmd == "rawack":
        rawack(int(a[0]), a[1], int(a[2]))
    elif cmd == "oversize":
        oversize(int(a[0]), a[1])
    elif cmd == "parallel":
        parallel(int(a[0]), int(a[1]), a[2], a[3])
    elif cmd == "burst":
        burst(int(a[0]), int(a[1]), int(a[2]))
    elif cmd == "flood":
        flood(int(a[0]), int(a[1]), a[2], int(a[3]))
    elif cmd == "check":
        msg = open(a[0], "rb").read()
        ack = open(a[1], "rb").read()
        for x in check(msg, ack, a[2], a[3] if len(a) > 3 else None,
                       a[4] if len(a) > 4 else None):
            print(x)
    elif cmd == "field":
        sys.stdout.buffer.write(field(open(a[0], "rb").read(), a[1]) + b"\n")
    else:
        sys.exit("hl7peer.py: unknown command " + cmd)


if __name__ == "__main__":
    main()
