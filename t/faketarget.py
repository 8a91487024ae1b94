#!/usr/bin/python3
"""faketarget.py — a scriptable target archive for t/migfault.t, on raw
sockets (PS3.8 Upper Layer, PS3.7 DIMSE), with faults on demand.

    faketarget.py PORT AET LOG [--dir D] [fault options]

Listens on 127.0.0.1:PORT and accepts associations called AET from any
calling AE, one thread each: every proposed presentation context with its
first transfer syntax, an asynchronous operations window of 1, the SCP/SCU
roles as proposed. C-ECHO; C-STORE (the dataset bytes are kept in memory
by SOP Instance UID, and written to D/<SOPInstanceUID>.dcm with --dir);
C-FIND in the Study Root at STUDY, SERIES and IMAGE level over what it
kept (matching on the Study/Series/SOP Instance UIDs given; the other keys
requested are filled from a matching instance): one pending 0xFF00 per
match, then 0x0000. A request it cannot handle gets a failure status or
an A-ABORT and a line in LOG, never a crash.

Faults (each may be repeated; SUFFIX matches the end of the SOP UID):
  --a700-once SUFFIX  the first C-STORE of such an instance: 0xA700
  --a700 SUFFIX       every C-STORE of such an instance: 0xA700
  --reject SUFFIX     0xC000, not kept
  --lose SUFFIX       0x0000, not kept (C-FIND does not find it)
  --corrupt SUFFIX    kept with its last byte flipped (C-FIND finds it)
  --abort-after N     A-ABORT once the Nth C-STORE of an association is
                      answered (only the first association to get there)

LOG, one line per event: "assoc CALLING", "store SOPUID 0xSTATUS",
"find LEVEL n", "echo", "release", "abort" (ours), "peer-abort",
"closed" (EOF without release), "error WHAT".
"""
import argparse
import io
import os
import re
import socket
import struct
import threading
import warnings

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

warnings.simplefilter("ignore")

ap = argparse.ArgumentParser()
ap.add_argument('port', type=int)
ap.add_argument('aet')
ap.add_argument('log')
ap.add_argument('--dir')
for o in ('a700-once', 'a700', 'reject', 'lose', 'corrupt'):
    ap.add_argument('--' + o, action='append', default=[])
ap.add_argument('--abort-after', type=int, action='append', default=[])
opt = ap.parse_args()

log_lock = threading.Lock()
logf = open(opt.log, 'a', buffering=1)


def log(line):
    with log_lock:
        logf.write(line + '\n')


lock = threading.Lock()
kept = {}            # SOP Instance UID -> (header Dataset, bytes)
a700_seen = set()
abort_done = [False]

TS_IMPLICIT = '1.2.840.10008.1.2'
TS_EXPLICIT_BE = '1.2.840.10008.1.2.2'
LEVELS = ('STUDY', 'SERIES', 'IMAGE')
UID_KEY = {'STUDY': 'StudyInstanceUID', 'SERIES': 'SeriesInstanceUID',
           'IMAGE': 'SOPInstanceUID'}
COUNTS = {0x00201206: 'SERIES', 0x00201208: 'IMAGE', 0x00201209: 'IMAGE'}


def has(suffixes, uid):
    return any(uid.endswith(s) for s in suffixes)


class Abort(Exception):
    """Ends the association with an A-ABORT (source, reason)."""

    def __init__(self, why, reason=0, source=2):
        Exception.__init__(self, why)
        self.reason, self.source = reason, source


def items(b):
    i = 0
    while i < len(b):
        if i + 4 > len(b):
            raise Abort('truncated item', 6)
        t, n = b[i], struct.unpack('>H', b[i + 2:i + 4])[0]
        if i + 4 + n > len(b):
            raise Abort('item 0x%02x past its parent' % t, 6)
        yield t, b[i + 4:i + 4 + n]
        i += 4 + n


def item(t, body):
    return struct.pack('>BBH', t, 0, len(body)) + body


def elem(tag, v):
    if isinstance(v, int):
        v = struct.pack('<H', v)
    elif isinstance(v, str):
        v = v.encode()
    if len(v) % 2:
        v += b'\0'
    return struct.pack('<HHI', tag >> 16, tag & 0xffff, len(v)) + v


def command(fields):
    body = b''.join(elem(t, v) for t, v in sorted(fields.items()))
    return elem(0, struct.pack('<I', len(body))) + body


def parse_cmd(b):
    f, i = {}, 0
    while i + 8 <= len(b):
        g, e, n = struct.unpack('<HHI', b[i:i + 8])
        if i + 8 + n > len(b):
            raise Abort('command element (%04x,%04x) past the end' % (g, e))
        f[g << 16 | e] = b[i + 8:i + 8 + n]
        i += 8 + n
    return f


def us(f, tag):
    v = f.get(tag)
    if v is None or len(v) != 2:
        raise Abort('command without (0000,%04x)' % (tag & 0xffff))
    return struct.unpack('<H', v)[0]


def ui(f, tag):
    return f.get(tag, b'').rstrip(b'\0 ').decode('ascii', 'replace')


def decode(b, ts):
    return read_dataset(io.BytesIO(b), ts == TS_IMPLICIT, ts != TS_EXPLICIT_BE)


def encode(ds, ts):
    out = DicomBytesIO()
    out.is_implicit_VR = ts == TS_IMPLICIT
    out.is_little_endian = ts != TS_EXPLICIT_BE
    write_dataset(out, ds)
    return out.getvalue()


def header(b, ts):
    """The elements before the pixel data, from the dataset bytes."""
    return read_dataset(io.BytesIO(b), ts == TS_IMPLICIT, ts != TS_EXPLICIT_BE,
                        stop_when=lambda tag, vr, n: tag >= 0x7FE00010)


class Assoc:
    def __init__(self, s):
        self.s = s
        self.ts = {}          # pcid -> accepted transfer syntax
        self.maxlen = 0       # the requestor's max PDU length (0: none)
        self.cmd = {}         # pcid -> command fragments
        self.data = {}        # pcid -> dataset fragments
        self.pending = None   # (pcid, fields) awaiting its dataset
        self.nstore = 0

    def recv(self, n):
        b = b''
        while len(b) < n:
            c = self.s.recv(min(n - len(b), 1 << 20))
            if not c:
                raise EOFError
            b += c
        return b

    def pdu(self):
        h = self.recv(6)
        n = struct.unpack('>I', h[2:6])[0]
        if n > 64 << 20:
            raise Abort('PDU of %d bytes' % n, 2)
        return h[0], self.recv(n)

    def send_pdvs(self, pcid, mch, data):
        room = (self.maxlen or 1 << 20) - 6
        for i in range(0, max(len(data), 1), room):
            last = 2 if i + room >= len(data) else 0
            p = struct.pack('>IBB', len(data[i:i + room]) + 2, pcid,
                            (mch & 1) | last) + data[i:i + room]
            self.s.sendall(struct.pack('>BBI', 4, 0, len(p)) + p)

    def respond(self, pcid, f, cf, status, extra=None, ds=None):
        r = {0x00000100: cf | 0x8000, 0x00000120: us(f, 0x00000110),
             0x00000800: 0x0101 if ds is None else 0x0000,
             0x00000900: status}
        if 0x00000002 in f:
            r[0x00000002] = ui(f, 0x00000002)
        r.update(extra or {})
        self.send_pdvs(pcid, 3, command(r))
        if ds is not None:
            self.send_pdvs(pcid, 2, ds)

    def associate(self, rq):
        if len(rq) < 68:
            raise Abort('short A-ASSOCIATE-RQ', 6)
        called = rq[4:20].decode('ascii', 'replace').strip()
        calling = rq[20:36].decode('ascii', 'replace').strip()
        if called != opt.aet:
            log('error called AE %r' % called)
            self.s.sendall(struct.pack('>BBIBBBB', 3, 0, 4, 0, 1, 1, 7))
            return False
        out = b''
        for t, body in items(rq[68:]):
            if t == 0x10:
                out += item(0x10, body)
            elif t == 0x20:
                tss = [sb for st, sb in items(body[4:]) if st == 0x40]
                if not tss:
                    raise Abort('presentation context without syntax', 6)
                self.ts[body[0]] = tss[0].rstrip(b'\0 ').decode('ascii',
                                                                'replace')
                out += item(0x21, bytes([body[0], 0, 0, 0]) +
                            item(0x40, tss[0]))
            elif t == 0x50:
                uinfo = item(0x51, struct.pack('>I', 1 << 20))
                uinfo += item(0x52, b'1.2.826.0.1.3680043.10.1297.9.99')
                for st, sb in items(body):
                    if st == 0x51 and len(sb) == 4:
                        self.maxlen = struct.unpack('>I', sb)[0]
                    elif st == 0x53:
                        uinfo += item(0x53, struct.pack('>HH', 1, 1))
                    elif st == 0x54:
                        uinfo += item(0x54, sb)
                out += item(0x50, uinfo)
        body = struct.pack('>HH', 1, 0) + rq[4:68] + out
        self.s.sendall(struct.pack('>BBI', 2, 0, len(body)) + body)
        log('assoc ' + calling)
        return True

    def serve(self):
        try:
            t, rq = self.pdu()
            if t != 1:
                raise Abort('PDU type 0x%02x before association' % t, 1)
            if not self.associate(rq):
                return
            while True:
                t, p = self.pdu()
                if t == 4:
                    self.pdata(p)
                elif t == 5:
                    log('release')
                    self.s.sendall(struct.pack('>BBII', 6, 0, 4, 0))
                    return
                elif t == 7:
                    log('peer-abort')
                    return
                else:
                    raise Abort('PDU type 0x%02x' % t, 1)
        except EOFError:
            log('closed')
        except OSError as e:
            log('closed %s' % e)
        except Exception as e:      # bad input: abort, report, go on
            if not isinstance(e, Abort) or e.args[0] != 'fault':
                log('error %s' % e)
            try:
                self.s.sendall(struct.pack('>BBIBBBB', 7, 0, 4, 0, 0,
                                           getattr(e, 'source', 2),
                                           getattr(e, 'reason', 0)))
            except OSError:
                pass
            log('abort')
        finally:
            self.s.close()

    def pdata(self, p):
        i = 0
        while i < len(p):
            if i + 6 > len(p):
                raise Abort('truncated PDV', 6)
            n = struct.unpack('>I', p[i:i + 4])[0]
            if n < 2 or i + 4 + n > len(p):
                raise Abort('PDV length %d' % n, 6)
            pcid, mch, data = p[i + 4], p[i + 5], p[i + 6:i + 4 + n]
            i += 4 + n
            if pcid not in self.ts:
                raise Abort('PDV on context %d, not negotiated' % pcid, 6)
            if mch & 1:
                self.cmd.setdefault(pcid, []).append(data)
                if mch & 2:
                    f = parse_cmd(b''.join(self.cmd.pop(pcid)))
                    if us(f, 0x00000800) == 0x0101:
                        self.dispatch(pcid, f, None)
                    else:
                        self.pending = (pcid, f)
            else:
                if self.pending is None or self.pending[0] != pcid:
                    raise Abort('dataset PDV without its command')
                self.data.setdefault(pcid, []).append(data)
                if mch & 2:
                    f, self.pending = self.pending[1], None
                    self.dispatch(pcid, f, b''.join(self.data.pop(pcid)))

    def dispatch(self, pcid, f, ds):
        cf = us(f, 0x00000100)
        if cf == 0x0030:
            log('echo')
            self.respond(pcid, f, cf, 0x0000)
        elif cf == 0x0001:
            self.store(pcid, f, ds or b'')
        elif cf == 0x0020:
            self.find(pcid, f, ds or b'')
        elif cf == 0x0FFF:
            pass                    # C-CANCEL: every C-FIND already ended
        else:
            log('error command 0x%04x' % cf)
            self.respond(pcid, f, cf, 0x0211)

    def store(self, pcid, f, ds):
        sop = ui(f, 0x00001000)
        st, keep = 0x0000, True
        with lock:
            if has(opt.reject, sop):
                st, keep = 0xC000, False
            elif has(opt.a700, sop) or (has(opt.a700_once, sop) and
                                        sop not in a700_seen):
                a700_seen.add(sop)
                st, keep = 0xA700, False
            elif has(opt.lose, sop):
                keep = False
        if keep:
            try:
                h = header(ds, self.ts[pcid])
                ok = str(h.get('SOPInstanceUID', '')) == sop
            except Exception as e:
                log('error dataset of %s: %s' % (sop, e))
                ok = False
            if not ok or not re.fullmatch(r'[0-9]+(\.[0-9]+)*', sop):
                st, keep = 0xC000, False
        if keep:
            if has(opt.corrupt, sop) and ds:
                ds = ds[:-1] + bytes([ds[-1] ^ 0xFF])
            with lock:
                kept[sop] = (h, ds)
            if opt.dir:
                with open(os.path.join(opt.dir, sop + '.dcm'), 'wb') as w:
                    w.write(ds)
        log('store %s 0x%04x' % (sop, st))
        self.respond(pcid, f, 0x0001, st, {0x00001000: sop})
        self.nstore += 1
        with lock:
            go = self.nstore in opt.abort_after and not abort_done[0]
            if go:
                abort_done[0] = True
        if go:
            raise Abort('fault', 0, 0)     # A-ABORT by the user

    def find(self, pcid, f, ds):
        ts = self.ts[pcid]
        try:
            q = decode(ds, ts)
            level = str(q.get('QueryRetrieveLevel', '')).strip().upper()
        except Exception as e:
            log('error identifier: %s' % e)
            self.respond(pcid, f, 0x0020, 0xA900)
            return
        if level not in LEVELS:
            log('find %r 0 (bad level)' % level)
            self.respond(pcid, f, 0x0020, 0xA900)
            return
        want = {}
        for lv in LEVELS[:LEVELS.index(level) + 1]:
            v = str(q.get(UID_KEY[lv], '') or '').strip()
            if v:
                want[UID_KEY[lv]] = set(v.split('\\'))
        with lock:
            insts = [h for h, _ in kept.values()]
        groups = {}
        for h in insts:
            if all(str(h.get(k, '')) in v for k, v in want.items()):
                key = tuple(str(h.get(UID_KEY[lv], ''))
                            for lv in LEVELS[:LEVELS.index(level) + 1])
                groups.setdefault(key, []).append(h)
        for key, hs in sorted(groups.items()):
            r = Dataset()
            for el in q:
                if el.tag == 0x00080052 or el.VR == 'SQ':
                    continue
                if el.tag in COUNTS:
                    k = COUNTS[el.tag]
                    r.add_new(el.tag, 'IS', str(len({str(h.get(UID_KEY[k]))
                                                     for h in hs})))
                elif el.tag in hs[0]:
                    r.add_new(el.tag, hs[0][el.tag].VR, hs[0][el.tag].value)
                else:
                    r.add_new(el.tag, el.VR, None)
            r.QueryRetrieveLevel = level
            for lv, uid in zip(LEVELS, key):
                setattr(r, UID_KEY[lv], uid)
            self.respond(pcid, f, 0x0020, 0xFF00, ds=encode(r, ts))
        log('find %s %d' % (level, len(groups)))
        self.respond(pcid, f, 0x0020, 0x0000)


def main():
    if opt.dir:
        os.makedirs(opt.dir, exist_ok=True)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(('127.0.0.1', opt.port))
    srv.listen(16)
    log('listening %d' % opt.port)
    while True:
        c, _ = srv.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=Assoc(c).serve, daemon=True).start()


if __name__ == '__main__':
    main()
