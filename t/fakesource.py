#!/usr/bin/python3
"""fakesource.py — a scriptable source archive for t/migsrcfault.t and
t/migiquery.t, on raw sockets (PS3.8 Upper Layer, PS3.7 DIMSE), that
misbehaves on demand in the middle of a retrieve, or will not list a
study's instances but series by series.

    fakesource.py PORT AET LOG --load DIR [--dest AE=PORT] [options]

Listens on 127.0.0.1:PORT and accepts associations called AET from any
calling AE, one thread each (every proposed presentation context with its
first transfer syntax, the SCP/SCU roles as proposed, an operations window
of 1). It serves the Part 10 files under DIR (the dataset bytes as they
are in the files, in their own transfer syntax; never transcoded):

  C-ECHO;
  C-FIND in the Study Root at STUDY, SERIES and IMAGE level, matching on
    the Study/Series/SOP Instance UIDs given (the other keys requested are
    filled from a matching instance; NumberOfStudyRelatedInstances and
    NumberOfSeriesRelatedInstances counted): one pending 0xFF00 per match,
    then 0x0000;
  C-GET in the Study Root at the same levels: each matching instance in a
    C-STORE sub-operation on the same association (on an accepted context
    of its class and transfer syntax for which the requestor took the SCP
    role), a pending 0xFF00 with the counts after each but the last, then
    0x0000, or 0xB000 with the counts and the Failed SOP Instance UID List
    when a sub-operation failed;
  C-MOVE in the Study Root at the same levels: the sub-operations on an
    association of our own to the Move Destination (its port from --dest;
    unknown: 0xA801), with the Move Originator's AE title and message ID,
    pending responses and the final one as for C-GET.

Instances are sent in SOP Instance UID order (the C-FIND's IMAGE-level
order too).

Faults (SUFFIX matches the end of a SOP Instance UID; each may repeat):
  --abort-at SUFFIX       every retrieve that comes to such an instance
                          A-ABORTs instead of sending it: the C-GET's
                          association, or for a C-MOVE both the
                          sub-operations' association and the C-MOVE's
  --abort-once-at SUFFIX  the same, the first time only
  --drop-at SUFFIX        as --abort-at, but the TCP connection is closed
                          (no A-ABORT) half-way through the instance's
                          dataset PDU
  --drop-once-at SUFFIX   the same, the first time only
  --slow SECONDS          wait this long before each sub-operation
  --slow-find SECONDS     wait this long before answering each C-FIND
  --slow-first N:SECONDS  the Nth association (from 1) whose first request
                          is not a C-ECHO (a test's probes are not counted)
                          waits this long before it answers that request,
                          as a peer slow to set up its side of a new
                          association (DCMTK's dcmqrscp waiting for its
                          index lock); logged "slow-first N" when the wait
                          is over
  --slow-get-assoc SECONDS
                          an association proposing a storage SOP class (a
                          C-GET's) is accepted only after this long
  --odd-ts UID            accept every storage context (a C-GET's) in
                          transfer syntax UID, proposed or not, and send
                          on it as if accepted in the first one proposed

A peer that only follows the hierarchical model (PS3.4 C.4.1.2.1.1),
for an IMAGE-level C-FIND whose identifier does not carry a single Series
Instance UID (none, empty, or several; retrieves are not affected):
  --hierarchical refuse   answers it 0xA900 (identifier does not match
                          SOP class), no match
  --hierarchical empty    answers no match, then 0x0000
  --hierarchical noseries answers every match, but without the Series
                          Instance UID in any of them

LOG, one line per event: "assoc CALLING", "echo", "find LEVEL n STUDY"
(n: matches; STUDY: the Study Instance UID asked for, "-" if none; an
IMAGE-level one without a single Series Instance UID ends in "study-wide",
then the --hierarchical MODE it was answered in if any: "find IMAGE 0
STUDY study-wide refuse"), "get
LEVEL n STUDY" / "move LEVEL n STUDY" (n: instances to send), "substore SOPUID
0xSTATUS" (a sub-operation's C-STORE-RSP; "none" when no context fits),
"getend 0xSTATUS" / "moveend 0xSTATUS" (the final response), "abort-at
SOPUID", "drop-at SOPUID" (a fault fired), "cancel", "release", "abort"
(ours), "peer-abort", "closed" (EOF without release), "error WHAT". A
request it cannot handle gets a failure status or an A-ABORT and an error
line, never a crash.
"""
import argparse
import io
import os
import socket
import struct
import threading
import time
import warnings
import zlib

from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.multival import MultiValue

from fakedimse import (LEVELS, TS_EXPLICIT_BE, TS_IMPLICIT, UID_KEY, Abort,
                       Acceptor, Conn, Drop, PeerAbort, command, decode, encode,
                       find_answers, item, items, make_log, matches, ui, us)

warnings.simplefilter("ignore")
TS_DEFLATED = '1.2.840.10008.1.2.1.99'

ap = argparse.ArgumentParser()
ap.add_argument('port', type=int)
ap.add_argument('aet')
ap.add_argument('log')
ap.add_argument('--load', required=True)
ap.add_argument('--dest', action='append', default=[])
for o in ('abort-at', 'abort-once-at', 'drop-at', 'drop-once-at'):
    ap.add_argument('--' + o, action='append', default=[])
ap.add_argument('--slow', type=float, default=0.0)
ap.add_argument('--slow-find', type=float, default=0.0)
ap.add_argument('--slow-first', default='')
ap.add_argument('--slow-get-assoc', type=float, default=0.0)
ap.add_argument('--hierarchical', choices=('refuse', 'empty', 'noseries'))
ap.add_argument('--odd-ts')
opt = ap.parse_args()

log = make_log(opt.log)
first_lock = threading.Lock()   # --slow-first: associations counted
first_count = [0]


lock = threading.Lock()
kept = {}            # SOP Instance UID -> (header Dataset, dataset bytes,
                     # SOP class, transfer syntax)
fired = set()        # (kind, suffix) of the once-only faults that fired

DESTS = {}
for d in opt.dest:
    a, p = d.rsplit('=', 1)
    DESTS[a] = int(p)


def fault(sop):
    """The fault to fire before sending sop: 'abort', 'drop' or None."""
    with lock:
        for kind in ('abort', 'drop'):
            for s in getattr(opt, kind + '_at'):
                if sop.endswith(s):
                    return kind
            for s in getattr(opt, kind + '_once_at'):
                if sop.endswith(s) and (kind, s) not in fired:
                    fired.add((kind, s))
                    return kind
    return None


def load(d):
    """Every Part 10 file under d: its dataset bytes after the file meta
    group (explicit VR LE), with the meta's class and transfer syntax."""
    for root, dirs, files in os.walk(d):
        dirs.sort()
        for fn in sorted(files):
            if not fn.endswith('.dcm'):
                continue
            b = open(os.path.join(root, fn), 'rb').read()
            if b[128:132] != b'DICM':
                continue
            i, meta = 132, {}
            while b[i:i + 2] == b'\x02\x00':
                e = struct.unpack('<H', b[i + 2:i + 4])[0]
                vr = b[i + 4:i + 6]
                if vr in (b'OB', b'OW', b'OF', b'SQ', b'UT', b'UN'):
                    n = struct.unpack('<I', b[i + 8:i + 12])[0]
                    v, i = b[i + 12:i + 12 + n], i + 12 + n
                else:
                    n = struct.unpack('<H', b[i + 6:i + 8])[0]
                    v, i = b[i + 8:i + 8 + n], i + 8 + n
                meta[e] = v.rstrip(b'\0 ').decode('ascii', 'replace')
            ds, ts, cls = b[i:], meta.get(0x10, ''), meta.get(2, '')
            # a deflated dataset is served as it is, read inflated
            h = read_dataset(io.BytesIO(zlib.decompress(ds, -15)
                                        if ts == TS_DEFLATED else ds),
                             ts == TS_IMPLICIT,
                             ts != TS_EXPLICIT_BE,
                             stop_when=lambda tag, vr, n: tag >= 0x7FE00010)
            kept[str(h.SOPInstanceUID)] = (h, ds, cls, ts)


def study_of(want):
    return '\\'.join(sorted(want.get('StudyInstanceUID', ()))) or '-'


def substore(c, pcid, sop, cls, b, msgid, orig=None):
    """Sends one C-STORE-RQ of sop on pcid of association c (with the
    fault it is due); returns its C-STORE-RSP status."""
    if opt.slow:
        time.sleep(opt.slow)
    f = fault(sop)
    if f == 'abort':
        log('abort-at %s' % sop)
        raise Abort('fault', 0, 0)
    cmd = {0x00000002: cls, 0x00000100: 0x0001, 0x00000110: msgid,
           0x00000700: 0x0000, 0x00000800: 0x0000, 0x00001000: sop}
    if orig is not None:
        cmd[0x00001030] = orig[0]
        cmd[0x00001031] = orig[1]
    c.send_pdvs(pcid, 3, command(cmd))
    if f == 'drop':
        # half of the dataset's first PDU, then the connection closes
        p = c.pdus(pcid, 2, b)[0]
        log('drop-at %s' % sop)
        c.s.sendall(p[:len(p) // 2])
        raise Drop()
    c.send_pdvs(pcid, 2, b)
    while True:
        t, p = c.pdu()
        if t == 7:
            raise PeerAbort()
        if t != 4:
            raise Abort('PDU type 0x%02x during a sub-operation' % t, 1)
        for rpcid, rf, _ in c.messages(p):
            cf = us(rf, 0x00000100)
            if cf == 0x8001 and us(rf, 0x00000120) == msgid:
                st = us(rf, 0x00000900)
                log('substore %s 0x%04x' % (sop, st))
                return st
            if cf == 0x0FFF:
                log('cancel')
                c.cancelled = True
                continue
            log('error unexpected message 0x%04x' % cf)


class Assoc(Acceptor):
    """An association a requestor opened with us."""

    def __init__(self, s):
        Acceptor.__init__(self, s, opt.aet,
                          b'1.2.826.0.1.3680043.10.1297.9.98', log)
        self.first = True     # nothing asked yet
        self.odd_ts = opt.odd_ts
        self.msgid = 0
        self.cancelled = False
        self.sub = None       # a C-MOVE's sub-operation association

    def associate(self, rq):
        if opt.slow_get_assoc and b'1.2.840.10008.5.1.4.1.1.' in rq:
            time.sleep(opt.slow_get_assoc)
        return Acceptor.associate(self, rq)

    def close_sub(self, abort):
        if self.sub is None:
            return
        if abort:
            try:
                self.sub.s.sendall(struct.pack('>BBIBBBB', 7, 0, 4, 0, 0,
                                               0, 0))
            except OSError:
                pass
        try:
            self.sub.s.close()
        except OSError:
            pass
        self.sub = None

    def ending(self, aborted):
        self.close_sub(aborted)

    def message(self, pcid, f, ds):
        cf = us(f, 0x00000100)
        if self.first and cf != 0x0030 and opt.slow_first:
            n, secs = opt.slow_first.split(':')
            with first_lock:
                first_count[0] += 1
                nth = first_count[0]
            if nth == int(n):
                time.sleep(float(secs))
                log('slow-first %d' % nth)
        self.first = False
        if cf == 0x0030:
            log('echo')
            self.respond(pcid, f, cf, 0x0000)
        elif cf == 0x0020:
            self.find(pcid, f, ds or b'')
        elif cf == 0x0010:
            self.retrieve(pcid, f, ds or b'', 'get')
        elif cf == 0x0021:
            self.retrieve(pcid, f, ds or b'', 'move')
        elif cf == 0x0FFF:
            pass                    # C-CANCEL after the end: nothing to do
        elif cf & 0x8000:
            log('error unexpected response 0x%04x' % cf)
        else:
            log('error command 0x%04x' % cf)
            self.respond(pcid, f, cf, 0x0211)

    def query(self, pcid, f, ds, cf):
        """(identifier, level, {key: UIDs wanted}), or None once answered
        0xA900."""
        try:
            q = decode(ds, self.ts[pcid])
            level = str(q.get('QueryRetrieveLevel', '')).strip().upper()
        except Exception as e:
            log('error identifier: %s' % e)
            self.respond(pcid, f, cf, 0xA900)
            return None
        if level not in LEVELS:
            log('error level %r' % level)
            self.respond(pcid, f, cf, 0xA900)
            return None
        want = {}
        for lv in LEVELS[:LEVELS.index(level) + 1]:
            v = q.get(UID_KEY[lv], '') or ''
            v = '\\'.join(str(x) for x in v) if isinstance(v, MultiValue) \
                else str(v).strip()
            if v:
                want[UID_KEY[lv]] = set(u.strip() for u in v.split('\\'))
        return q, level, want

    def find(self, pcid, f, ds):
        ts = self.ts[pcid]
        qlw = self.query(pcid, f, ds, 0x0020)
        if qlw is None:
            return
        q, level, want = qlw
        if opt.slow_find:
            time.sleep(opt.slow_find)
        # an IMAGE-level query without a single series: the relational
        # model's, which a hierarchical-only peer (--hierarchical) will
        # not answer as asked
        wide = level == 'IMAGE' and \
            len(want.get('SeriesInstanceUID', ())) != 1
        how = opt.hierarchical if wide else None
        tail = ' study-wide' + (' ' + how if how else '') if wide else ''
        if how == 'refuse':
            log('find %s 0 %s%s' % (level, study_of(want), tail))
            self.respond(pcid, f, 0x0020, 0xA900)
            return
        rs = [] if how == 'empty' else find_answers(
            [kept[sop][0] for sop in sorted(kept)], q, level, want)
        for r in rs:
            if how == 'noseries':
                del r.SeriesInstanceUID
            self.respond(pcid, f, 0x0020, 0xFF00, ds=encode(r, ts))
        log('find %s %d %s%s' % (level, len(rs), study_of(want), tail))
        self.respond(pcid, f, 0x0020, 0x0000)

    def open_sub(self, dest, todo):
        """An association to C-MOVE destination dest for the classes and
        transfer syntaxes of todo: {(class, ts): pcid}, or None."""
        port = DESTS.get(dest)
        if port is None:
            log('error unknown destination %r' % dest)
            return None
        s = socket.create_connection(('127.0.0.1', port), 10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = Conn(s)
        self.sub = c
        pcs, body = {}, b''
        for k, (cls, ts) in enumerate(sorted({(v[2], v[3])
                                              for _, v in todo})):
            pcid = 2 * k + 1
            pcs[(cls, ts)] = pcid
            c.abs[pcid], c.ts[pcid] = cls, ts
            body += item(0x20, bytes([pcid, 0, 0, 0]) +
                         item(0x30, cls.encode()) + item(0x40, ts.encode()))
        uinfo = item(0x51, struct.pack('>I', 1 << 20)) + \
            item(0x52, b'1.2.826.0.1.3680043.10.1297.9.98')
        rq = struct.pack('>HH', 1, 0) + dest.ljust(16).encode() + \
            opt.aet.ljust(16).encode() + b'\0' * 32 + \
            item(0x10, b'1.2.840.10008.3.1.1.1') + body + item(0x50, uinfo)
        s.sendall(struct.pack('>BBI', 1, 0, len(rq)) + rq)
        t, ac = c.pdu()
        if t != 2:
            log('error destination %s answered PDU type 0x%02x' % (dest, t))
            self.close_sub(False)
            return None
        for it, b in items(ac[68:]):
            if it == 0x21 and b[2] != 0:
                c.ts.pop(b[0], None)
            elif it == 0x50:
                for st, sb in items(b):
                    if st == 0x51 and len(sb) == 4:
                        c.maxlen = struct.unpack('>I', sb)[0]
        return {k: v for k, v in pcs.items() if v in c.ts}

    def retrieve(self, pcid, f, ds, kind):
        cf = 0x0010 if kind == 'get' else 0x0021
        qlw = self.query(pcid, f, ds, cf)
        if qlw is None:
            return
        _, level, want = qlw
        todo = sorted((sop, v) for sop, v in kept.items()
                      if matches(v[0], want))
        log('%s %s %d %s' % (kind, level, len(todo), study_of(want)))
        orig = None
        if kind == 'move':
            dest = ui(f, 0x00000600)
            try:
                pcs = self.open_sub(dest, todo) if todo else {}
            except OSError as e:
                log('error destination %s: %s' % (dest, e))
                pcs = None
            if pcs is None:
                self.respond(pcid, f, cf, 0xA801)
                log('moveend 0xa801')
                return
            orig = (self.calling, us(f, 0x00000110))
        done = warn = 0
        failed = []
        self.cancelled = False
        for k, (sop, (_, b, cls, ts)) in enumerate(todo):
            if self.cancelled:
                break
            if kind == 'get':
                ps = [p for p in sorted(self.abs) if self.abs[p] == cls and
                      self.ts[p] == ts and cls in self.scp]
                c, p = self, ps[0] if ps else None
            else:
                c, p = self.sub, pcs.get((cls, ts))
            if p is None:
                log('substore %s none' % sop)
                st = None
            else:
                self.msgid = self.msgid % 0xFFFF + 1
                st = substore(c, p, sop, cls, b, self.msgid, orig)
            if st == 0x0000:
                done += 1
            elif st is not None and st & 0xF000 == 0xB000:
                warn += 1
            else:
                failed.append(sop)
            if k + 1 < len(todo):
                self.respond(pcid, f, cf, 0xFF00, {
                    0x00001020: len(todo) - k - 1, 0x00001021: done,
                    0x00001022: len(failed), 0x00001023: warn})
        if self.sub is not None:
            self.sub.s.sendall(struct.pack('>BBII', 5, 0, 4, 0))
            try:
                self.sub.pdu()          # A-RELEASE-RP
            except (EOFError, OSError, Abort):
                pass
            self.close_sub(False)
        counts = {0x00001021: done, 0x00001022: len(failed),
                  0x00001023: warn}
        if self.cancelled:
            counts[0x00001020] = len(todo) - done - warn - len(failed)
            st = 0xFE00
            self.respond(pcid, f, cf, st, counts)
        elif failed or warn:
            r = Dataset()
            r.FailedSOPInstanceUIDList = failed
            st = 0xB000
            self.respond(pcid, f, cf, st, counts,
                         ds=encode(r, self.ts[pcid]) if failed else None)
        else:
            st = 0x0000
            self.respond(pcid, f, cf, st, counts)
        log('%send 0x%04x' % (kind, st))


def main():
    load(opt.load)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(('127.0.0.1', opt.port))
    srv.listen(16)
    log('listening %d %d' % (opt.port, len(kept)))
    while True:
        c, _ = srv.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=Assoc(c).serve, daemon=True).start()


if __name__ == '__main__':
    main()
