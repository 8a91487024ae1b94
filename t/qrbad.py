#!/usr/bin/python3
"""qrbad.py — a misbehaving Q/R SCP for t/qr.t, on raw sockets.

    qrbad.py PORT LOG MODE

Accepts one association at a time on 127.0.0.1:PORT (every proposed
context, with its first transfer syntax), reads DIMSE commands, and
behaves per MODE:

  silent    never answers a request, nor the C-CANCEL that follows
  pending   answers a C-MOVE/C-GET with a pending response (the same
            sub-operation counts) every 0.2 s, forever; a C-CANCEL is
            answered with a final 0xFE00 (Cancel)
  cancel    like silent, but a C-CANCEL gets a final 0xFE00
  commit    Storage Commitment on the same association: the N-ACTION is
            answered 0x0000, then an N-EVENT-REPORT-RQ commits every
            instance asked for but those whose UID ends in ".999"
            (failed, 0x0112); the N-EVENT-REPORT-RSP status is logged
  commit-txn    the same, with another Transaction UID than asked
  commit-bad    the same, with a report that does not parse

Writes one line per event to LOG: the command names it received, and
"abort" / "closed" when the association ends.
"""
import io
import socket
import struct
import sys
import threading
import time

port, logpath, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
log = open(logpath, 'a', buffering=1)

NAMES = {0x0020: 'C-FIND-RQ', 0x0021: 'C-MOVE-RQ', 0x0010: 'C-GET-RQ',
         0x0FFF: 'C-CANCEL-RQ', 0x0030: 'C-ECHO-RQ', 0x0130: 'N-ACTION-RQ',
         0x8100: 'N-EVENT-REPORT-RSP'}
COMMIT = '1.2.840.10008.1.20.1'
TS_IMPLICIT = b'1.2.840.10008.1.2'
ctx_ts = {}


def report(action, implicit):
    """The N-EVENT-REPORT dataset answering an N-ACTION dataset."""
    from pydicom.dataset import Dataset
    from pydicom.filereader import read_dataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
    rq = read_dataset(io.BytesIO(action), implicit, True)
    ok, bad = [], []
    for it in rq.ReferencedSOPSequence:
        d = Dataset()
        d.ReferencedSOPClassUID = it.ReferencedSOPClassUID
        d.ReferencedSOPInstanceUID = it.ReferencedSOPInstanceUID
        if str(it.ReferencedSOPInstanceUID).endswith('.999'):
            d.FailureReason = 0x0112
            bad.append(d)
        else:
            ok.append(d)
    ds = Dataset()
    ds.TransactionUID = rq.TransactionUID if mode != 'commit-txn' \
        else '1.2.3.4.5.6'
    if ok:
        ds.ReferencedSOPSequence = ok
    if bad:
        ds.FailedSOPSequence = bad
    out = DicomBytesIO()
    out.is_little_endian = True
    out.is_implicit_VR = implicit
    write_dataset(out, ds)
    b = out.getvalue()
    if mode == 'commit-bad':
        b = b[:len(b) - 5]
    return b, (2 if bad else 1)


def recv_all(s, n):
    b = b''
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b


def read_pdu(s):
    h = recv_all(s, 6)
    return h[0], recv_all(s, struct.unpack('>I', h[2:6])[0])


def items(b):
    i = 0
    while i + 4 <= len(b):
        t, n = b[i], struct.unpack('>H', b[i + 2:i + 4])[0]
        yield t, b[i + 4:i + 4 + n]
        i += 4 + n


def elem(tag, value):
    if isinstance(value, int):
        value = struct.pack('<H', value)
    elif isinstance(value, str):
        value = value.encode()
        if len(value) % 2:
            value += b'\0'
    return struct.pack('<HHI', tag >> 16, tag & 0xffff, len(value)) + value


def command(fields):
    body = b''.join(elem(t, v) for t, v in sorted(fields))
    return elem(0x00000000, struct.pack('<I', len(body))) + body


def pdv(pcid, mch, data):
    p = struct.pack('>IBB', len(data) + 2, pcid, mch) + data
    return struct.pack('>BBI', 4, 0, len(p)) + p


def parse_cmd(b):
    f, i = {}, 0
    while i + 8 <= len(b):
        g, e, n = struct.unpack('<HHI', b[i:i + 8])
        f[g << 16 | e] = b[i + 8:i + 8 + n]
        i += 8 + n
    return f


def ac(rq):
    called, calling = rq[4:20], rq[20:36]
    out = b''
    for t, body in items(rq[68:]):
        if t == 0x10:
            out += struct.pack('>BBH', 0x10, 0, len(body)) + body
        elif t == 0x20:
            pcid = body[0]
            ts = None
            for st, sb in items(body[4:]):
                if st == 0x40 and ts is None:
                    ts = sb
            ctx_ts[pcid] = ts
            sub = struct.pack('>BBH', 0x40, 0, len(ts)) + ts
            x = bytes([pcid, 0, 0, 0]) + sub
            out += struct.pack('>BBH', 0x21, 0, len(x)) + x
    ml = struct.pack('>BBHI', 0x51, 0, 4, 16384)
    ic = b'1.2.3.4'
    ui = ml + struct.pack('>BBH', 0x52, 0, len(ic)) + ic
    out += struct.pack('>BBH', 0x50, 0, len(ui)) + ui
    body = struct.pack('>HH', 1, 0) + called + calling + b'\0' * 32 + out
    return struct.pack('>BBI', 2, 0, len(body)) + body


def respond(s, pcid, cmd, status, counts=None):
    cls = cmd.get(0x00000002, cmd.get(0x00000003, b''))
    f = [(0x00000002, cls.rstrip(b'\0').decode()),
         (0x00000100, 0x8000 | struct.unpack('<H', cmd[0x00000100])[0]),
         (0x00000120, struct.unpack('<H', cmd[0x00000110])[0]),
         (0x00000800, 0x0101), (0x00000900, status)]
    if counts:
        f += [(0x00001020, counts[0]), (0x00001021, counts[1]),
              (0x00001022, 0), (0x00001023, 0)]
    s.sendall(pdv(pcid, 3, command(f)))


def commit_reply(s, pcid, cmd, action):
    implicit = ctx_ts.get(pcid, b'').rstrip(b'\0') == TS_IMPLICIT
    respond(s, pcid, cmd, 0x0000)
    body, event = report(action, implicit)
    f = [(0x00000002, COMMIT), (0x00000100, 0x0100), (0x00000110, 7),
         (0x00000800, 0x0001), (0x00001000, COMMIT + '.1'),
         (0x00001002, event)]
    s.sendall(pdv(pcid, 3, command(f)))
    s.sendall(pdv(pcid, 2, body))


def serve(s):
    try:
        t, rq = read_pdu(s)
        s.sendall(ac(rq))
        buf, dbuf, req, stop = b'', b'', None, threading.Event()
        while True:
            t, p = read_pdu(s)
            if t == 7:
                log.write('abort\n')
                return
            if t == 5:
                log.write('release\n')
                s.sendall(struct.pack('>BBII', 6, 0, 4, 0))
                return
            if t != 4:
                continue
            i = 0
            while i < len(p):
                n = struct.unpack('>I', p[i:i + 4])[0]
                pcid, mch, data = p[i + 4], p[i + 5], p[i + 6:i + 4 + n]
                i += 4 + n
                if not mch & 1:
                    dbuf += data
                    if mch & 2 and req is not None and \
                            mode.startswith('commit'):
                        commit_reply(s, req[0], req[1], dbuf)
                    if mch & 2:
                        dbuf = b''
                    continue            # identifier bytes: ignored
                buf += data
                if not mch & 2:
                    continue
                cmd, buf = parse_cmd(buf), b''
                cf = struct.unpack('<H', cmd[0x00000100])[0]
                if cf == 0x8100:
                    log.write('N-EVENT-REPORT-RSP 0x%04x\n' %
                              struct.unpack('<H', cmd[0x00000900])[0])
                    continue
                log.write(NAMES.get(cf, hex(cf)) + '\n')
                if cf == 0x0FFF:
                    stop.set()
                    if mode in ('pending', 'cancel') and req is not None:
                        time.sleep(0.1)
                        respond(s, req[0], req[1], 0xFE00, (0, 0))
                    continue
                req = (pcid, cmd)
                if mode == 'pending':
                    def tick(pc=pcid, c=cmd):
                        while not stop.wait(0.2):
                            try:
                                respond(s, pc, c, 0xFF00, (5, 1))
                            except OSError:
                                return
                    threading.Thread(target=tick, daemon=True).start()
    except (EOFError, OSError):
        log.write('closed\n')
    finally:
        s.close()


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', port))
srv.listen(4)
log.write('listening\n')
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
