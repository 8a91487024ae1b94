#!/usr/bin/python3
"""faketarget.py — a scriptable target archive for t/migfault.t, on raw
sockets (PS3.8 Upper Layer, PS3.7 DIMSE), with faults on demand.

    faketarget.py PORT AET LOG [--dir D] [fault options]

Listens on 127.0.0.1:PORT and accepts associations called AET from any
calling AE, one thread each: every proposed presentation context with its
first transfer syntax, an asynchronous operations window of 1, the SCP/SCU
roles as proposed (each SCP/SCU Role Selection item answered with the
roles it asked for, PS3.7 D.3.3.4). C-ECHO; C-STORE (the dataset bytes
are kept in memory by SOP Instance UID with the SOP class and the transfer
syntax they came in, and written to D/<SOPInstanceUID>.dcm with --dir);
C-FIND in the Study Root at STUDY, SERIES and IMAGE level over what it
kept (matching on the Study/Series/SOP Instance UIDs given; the other keys
requested are filled from a matching instance): one pending 0xFF00 per
match, then 0x0000. C-GET in the Study Root (1.2.840.10008.5.1.4.1.2.2.3)
at the same levels, matching the same way: each matching instance goes
back as it was kept (bytes, SOP class, transfer syntax) in a C-STORE
sub-operation on the same association, on an accepted context of its SOP
class and transfer syntax for which the requestor took the SCP role (none:
that sub-operation fails); a pending 0xFF00 with the counts after each but
the last, then 0x0000, or 0xB000 with the counts and the Failed SOP
Instance UID List when any failed (C-CANCEL: 0xFE00). A request it cannot
handle gets a failure status or an A-ABORT and a line in LOG, never a
crash.

Faults (each may be repeated; SUFFIX matches the end of the SOP UID):
  --a700-once SUFFIX  the first C-STORE of such an instance: 0xA700
  --a700 SUFFIX       every C-STORE of such an instance: 0xA700
  --reject SUFFIX     0xC000, not kept
  --lose SUFFIX       0x0000, not kept (C-FIND does not find it)
  --corrupt SUFFIX    kept with its last byte flipped (C-FIND finds it,
                      C-GET sends it so)
  --reencode SUFFIX   kept re-encoded: Explicit VR LE in, Implicit VR LE
                      kept (or back: VRs from pydicom's dictionary); the
                      same elements, values and order, sequences and items
                      with undefined lengths: other bytes, the same
                      canonical digest (dimse/ds_digest.h); C-GET sends it
                      in the kept transfer syntax
  --hide SUFFIX       kept (C-FIND finds it) but C-GET does not send it
  --abort-after N     A-ABORT once the Nth C-STORE of an association is
                      answered (only the first association to get there)
  --accept-delay S    answer each A-ASSOCIATE-RQ S seconds late (an
                      archive slow to take an association)
  --no-uid-lists      a unique key's value is one UID even when it holds
                      a list (PS3.4 C.2.2.2.2 allows lists; some archives
                      match the whole value as it stands, so nothing)
  --log-pdata         after each C-STORE, "pdata-max N": the longest
                      P-DATA-TF PDU received on its association so far
                      (it offers 1 MiB)

LOG, one line per event: "assoc CALLING", "store SOPUID 0xSTATUS",
"find LEVEL n", "get LEVEL n" (n: instances to send), "substore SOPUID
0xSTATUS" (a C-GET sub-operation's C-STORE-RSP; "none" when no context
fits), "cancel", "echo", "release", "abort" (ours), "peer-abort", "closed"
(EOF without release), "error WHAT".
"""
import argparse
import io
import os
import re
import socket
import struct
import threading
import time
import warnings

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.filereader import read_dataset

from fakedimse import (LEVELS, TS_EXPLICIT_BE, TS_IMPLICIT, UID_KEY, Abort,
                       Acceptor, PeerAbort, command, decode, encode,
                       find_answers, make_log, matches, ui, us)

warnings.simplefilter("ignore")

ap = argparse.ArgumentParser()
ap.add_argument('port', type=int)
ap.add_argument('aet')
ap.add_argument('log')
ap.add_argument('--dir')
for o in ('a700-once', 'a700', 'reject', 'lose', 'corrupt', 'reencode',
          'hide'):
    ap.add_argument('--' + o, action='append', default=[])
ap.add_argument('--abort-after', type=int, action='append', default=[])
ap.add_argument('--accept-delay', type=float, default=0)
ap.add_argument('--no-uid-lists', action='store_true')
ap.add_argument('--log-pdata', action='store_true')
opt = ap.parse_args()

log = make_log(opt.log)


lock = threading.Lock()
kept = {}            # SOP Instance UID -> (header Dataset, bytes, SOP class,
                     # transfer syntax)
a700_seen = set()
abort_done = [False]

TS_EXPLICIT_LE = '1.2.840.10008.1.2.1'


def has(suffixes, uid):
    return any(uid.endswith(s) for s in suffixes)


def header(b, ts):
    """The elements before the pixel data, from the dataset bytes."""
    return read_dataset(io.BytesIO(b), ts == TS_IMPLICIT, ts != TS_EXPLICIT_BE,
                        stop_when=lambda tag, vr, n: tag >= 0x7FE00010)


LONG_VRS = {b'OB', b'OD', b'OF', b'OL', b'OV', b'OW', b'SQ', b'SV', b'UC',
            b'UN', b'UR', b'UT', b'UV'}
UNDEF = 0xFFFFFFFF


def dict_vr(tag):
    """The VR an Implicit VR element gets in Explicit VR: the dictionary's
    (its first choice), UN when unknown."""
    from pydicom.datadict import dictionary_VR
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return b'UN'
    return {'OB or OW': b'OW', 'US or SS': b'US',
            'US or SS or OW': b'US'}.get(vr, vr.encode()[:2])


def el_head(tag, vr, n, ex):
    h = struct.pack('<HH', tag >> 16, tag & 0xffff)
    if not ex:
        return h + struct.pack('<I', n)
    if vr in LONG_VRS or n == UNDEF or n > 0xffff:
        return h + (vr if vr in LONG_VRS else b'UN') + b'\0\0' + \
            struct.pack('<I', n)
    return h + vr + struct.pack('<H', n)


def walk(b, i, end, ex, out):
    """Converts b's little endian elements from i to end, or to the first
    item or delimiter tag, from explicit VR (ex) to implicit or back, into
    out; returns where it stopped."""
    while i + 8 <= end:
        g, e = struct.unpack('<HH', b[i:i + 4])
        tag = g << 16 | e
        if g == 0xFFFE:
            return i
        if ex:
            vr = b[i + 4:i + 6]
            if vr in LONG_VRS:
                n, i = struct.unpack('<I', b[i + 8:i + 12])[0], i + 12
            else:
                n, i = struct.unpack('<H', b[i + 6:i + 8])[0], i + 8
        else:
            n, i = struct.unpack('<I', b[i + 4:i + 8])[0], i + 8
            vr = dict_vr(tag)
        if vr != b'SQ' and n != UNDEF:
            out += el_head(tag, vr, n, not ex) + b[i:i + n]
            i += n
            continue
        if vr != b'SQ':
            raise ValueError('(%04x,%04x): undefined length, not SQ' % (g, e))
        out += el_head(tag, b'SQ', UNDEF, not ex)
        send = len(b) if n == UNDEF else i + n
        while i + 8 <= send:
            it, m = struct.unpack('<I', b[i:i + 4])[0], \
                struct.unpack('<I', b[i + 4:i + 8])[0]
            i += 8
            if it == 0xE0DDFFFE:            # sequence delimiter
                break
            if it != 0xE000FFFE:
                raise ValueError('(%04x,%04x): no item' % (g, e))
            out += struct.pack('<HHI', 0xFFFE, 0xE000, UNDEF)
            i = walk(b, i, len(b) if m == UNDEF else i + m, ex, out)
            if m == UNDEF:
                i += 8                      # the item delimiter
            out += struct.pack('<HHI', 0xFFFE, 0xE00D, 0)
        out += struct.pack('<HHI', 0xFFFE, 0xE0DD, 0)
    return i


def reencode(b, ts):
    """(bytes, transfer syntax): dataset b (in ts) in the other VR form."""
    ex = ts == TS_EXPLICIT_LE
    if ts not in (TS_EXPLICIT_LE, TS_IMPLICIT):
        raise ValueError('cannot re-encode from %s' % ts)
    out = bytearray()
    if walk(b, 0, len(b), ex, out) != len(b):
        raise ValueError('stray item or delimiter')
    return bytes(out), TS_IMPLICIT if ex else TS_EXPLICIT_LE


class Assoc(Acceptor):
    def __init__(self, s):
        Acceptor.__init__(self, s, opt.aet,
                          b'1.2.826.0.1.3680043.10.1297.9.99', log)
        self.resp = []        # responses received: (pcid, fields, data)
        self.busy = False     # in a C-GET (sending sub-operations)
        self.cancel = False   # C-CANCEL received during it
        self.msgid = 0        # our requests' message IDs
        self.nstore = 0
        self.pdata_max = 0    # the longest P-DATA-TF PDU received

    def pdu(self):
        t, p = Acceptor.pdu(self)
        if t == 4:
            self.pdata_max = max(self.pdata_max, len(p))
        return t, p

    def associate(self, rq):
        if opt.accept_delay > 0:
            log('accept-delay %.2f' % opt.accept_delay)
            time.sleep(opt.accept_delay)
        return Acceptor.associate(self, rq)

    def message(self, pcid, f, ds):
        """A whole message: a response is queued for the C-GET waiting
        for it; a request dispatched (only C-CANCEL during a C-GET)."""
        cf = us(f, 0x00000100)
        if cf & 0x8000:
            if self.busy:
                self.resp.append((pcid, f, ds))
            else:
                log('error unexpected response 0x%04x' % cf)
        elif self.busy:
            if cf != 0x0FFF:
                raise Abort('request 0x%04x during a C-GET' % cf)
            log('cancel')
            self.cancel = True
        else:
            self.dispatch(pcid, f, ds)

    def dispatch(self, pcid, f, ds):
        cf = us(f, 0x00000100)
        if cf == 0x0030:
            log('echo')
            self.respond(pcid, f, cf, 0x0000)
        elif cf == 0x0001:
            self.store(pcid, f, ds or b'')
        elif cf == 0x0020:
            self.find(pcid, f, ds or b'')
        elif cf == 0x0010:
            self.get(pcid, f, ds or b'')
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
        ts = self.ts[pcid]
        if keep and has(opt.reencode, sop):
            try:
                ds, ts = reencode(ds, ts)
            except Exception as e:
                log('error re-encoding %s: %s' % (sop, e))
        if keep:
            if has(opt.corrupt, sop) and ds:
                ds = ds[:-1] + bytes([ds[-1] ^ 0xFF])
            with lock:
                kept[sop] = (h, ds, ui(f, 0x00000002), ts)
            if opt.dir:
                with open(os.path.join(opt.dir, sop + '.dcm'), 'wb') as w:
                    w.write(ds)
        log('store %s 0x%04x' % (sop, st))
        if opt.log_pdata:
            log('pdata-max %d' % self.pdata_max)
        self.respond(pcid, f, 0x0001, st, {0x00001000: sop})
        self.nstore += 1
        with lock:
            go = self.nstore in opt.abort_after and not abort_done[0]
            if go:
                abort_done[0] = True
        if go:
            raise Abort('fault', 0, 0)     # A-ABORT by the user

    def query(self, pcid, f, ds, cf):
        """The identifier of a C-FIND or C-GET: (identifier, level, {key:
        UIDs wanted}), or None once answered 0xA900."""
        try:
            q = decode(ds, self.ts[pcid])
            level = str(q.get('QueryRetrieveLevel', '')).strip().upper()
        except Exception as e:
            log('error identifier: %s' % e)
            self.respond(pcid, f, cf, 0xA900)
            return None
        if level not in LEVELS:
            log('%s %r 0 (bad level)' % ('get' if cf == 0x0010 else 'find',
                                         level))
            self.respond(pcid, f, cf, 0xA900)
            return None
        want = {}
        for lv in LEVELS[:LEVELS.index(level) + 1]:
            el = q.get(UID_KEY[lv], '') or ''
            # a list of UIDs (pydicom: a MultiValue) matches any of them
            v = [str(x).strip() for x in el] if isinstance(el, MultiValue) \
                else [str(el).strip()]
            if opt.no_uid_lists and len(v) > 1:
                v = ['\\'.join(v)]
            if any(v):
                want[UID_KEY[lv]] = set(v)
        return q, level, want

    def find(self, pcid, f, ds):
        ts = self.ts[pcid]
        qlw = self.query(pcid, f, ds, 0x0020)
        if qlw is None:
            return
        q, level, want = qlw
        with lock:
            insts = [v[0] for v in kept.values()]
        rs = find_answers(insts, q, level, want)
        for r in rs:
            self.respond(pcid, f, 0x0020, 0xFF00, ds=encode(r, ts))
        log('find %s %d' % (level, len(rs)))
        self.respond(pcid, f, 0x0020, 0x0000)


    def get(self, pcid, f, ds):
        qlw = self.query(pcid, f, ds, 0x0010)
        if qlw is None:
            return
        _, level, want = qlw
        with lock:
            todo = sorted((sop, v) for sop, v in kept.items()
                          if matches(v[0], want) and not has(opt.hide, sop))
        log('get %s %d' % (level, len(todo)))
        done = warn = 0
        failed = []
        self.busy, self.cancel, self.resp = True, False, []
        try:
            for k, (sop, (_, b, cls, ts)) in enumerate(todo):
                if self.cancel:
                    break
                st = self.substore(sop, cls, ts, b)
                if st == 0x0000:
                    done += 1
                elif st is not None and st & 0xF000 == 0xB000:
                    warn += 1
                else:
                    failed.append(sop)
                if k + 1 < len(todo):
                    self.respond(pcid, f, 0x0010, 0xFF00, {
                        0x00001020: len(todo) - k - 1, 0x00001021: done,
                        0x00001022: len(failed), 0x00001023: warn})
        finally:
            self.busy = False
        counts = {0x00001021: done, 0x00001022: len(failed),
                  0x00001023: warn}
        if self.cancel:
            counts[0x00001020] = len(todo) - done - warn - len(failed)
            self.respond(pcid, f, 0x0010, 0xFE00, counts)
        elif failed or warn:
            r = Dataset()
            r.FailedSOPInstanceUIDList = failed
            self.respond(pcid, f, 0x0010, 0xB000, counts,
                         ds=encode(r, self.ts[pcid]) if failed else None)
        else:
            self.respond(pcid, f, 0x0010, 0x0000, counts)

    def substore(self, sop, cls, ts, b):
        """One C-GET sub-operation: C-STORE-RQ of sop, its C-STORE-RSP
        status (None: no accepted context for it)."""
        pcs = [p for p in sorted(self.abs) if self.abs[p] == cls and
               self.ts[p] == ts and cls in self.scp]
        if not pcs:
            log('substore %s none' % sop)
            return None
        self.msgid = self.msgid % 0xFFFF + 1
        self.send_pdvs(pcs[0], 3, command({
            0x00000002: cls, 0x00000100: 0x0001, 0x00000110: self.msgid,
            0x00000700: 0x0000, 0x00000800: 0x0000, 0x00001000: sop}))
        self.send_pdvs(pcs[0], 2, b)
        while True:
            for r in self.resp:
                if us(r[1], 0x00000100) == 0x8001 and \
                        us(r[1], 0x00000120) == self.msgid:
                    self.resp.remove(r)
                    st = us(r[1], 0x00000900)
                    log('substore %s 0x%04x' % (sop, st))
                    return st
            for r in self.resp:
                log('error unexpected response 0x%04x' % us(r[1], 0x100))
            self.resp = []
            t, p = self.pdu()
            if t == 4:
                for pcid, f, ds in self.messages(p):
                    self.message(pcid, f, ds)
            elif t == 7:
                raise PeerAbort()
            else:
                raise Abort('PDU type 0x%02x during a C-GET' % t, 1)


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
