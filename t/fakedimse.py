"""
fakedimse.py — what t/faketarget.py and t/fakesource.py (raw-socket DICOM
peers that misbehave on demand) share: Upper Layer items, DIMSE command
sets, datasets decoded and encoded with pydicom, and an association on a
blocking socket (Conn; Acceptor: one a requestor opened with us). No
options: each script passes its AE title and log.
"""
import io
import struct
import threading

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

TS_IMPLICIT = '1.2.840.10008.1.2'
TS_EXPLICIT_BE = '1.2.840.10008.1.2.2'


class PeerAbort(Exception):
    """The peer sent an A-ABORT."""


class Drop(Exception):
    """Ends the association by closing the TCP connection."""


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


def elem(tag, v):
    """A command element (Implicit VR LE): an int is US, a str is padded
    with a NUL (UIDs) or a space."""
    if isinstance(v, int):
        v = struct.pack('<H', v)
    elif isinstance(v, str):
        v = v.encode()
    if len(v) % 2:
        v += b'\0' if tag >> 16 == 0 and tag & 0xffff in (2, 0x1000) \
            else b' '
    return struct.pack('<HHI', tag >> 16, tag & 0xffff, len(v)) + v


def command(fields):
    body = b''.join(elem(t, v) for t, v in sorted(fields.items()))
    return elem(0, struct.pack('<I', len(body))) + body


class Conn:
    """One association, either side: PDUs and whole DIMSE messages."""

    def __init__(self, s):
        self.s = s
        self.ts = {}          # pcid -> accepted transfer syntax
        self.abs = {}         # pcid -> abstract syntax
        self.maxlen = 0       # the peer's max PDU length (0: none)
        self.cmd = {}         # pcid -> command fragments
        self.data = {}        # pcid -> dataset fragments
        self.pending = None   # (pcid, fields) awaiting its dataset

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

    def pdus(self, pcid, mch, data):
        room = (self.maxlen or 1 << 20) - 6
        out = []
        for i in range(0, max(len(data), 1), room):
            last = 2 if i + room >= len(data) else 0
            p = struct.pack('>IBB', len(data[i:i + room]) + 2, pcid,
                            (mch & 1) | last) + data[i:i + room]
            out.append(struct.pack('>BBI', 4, 0, len(p)) + p)
        return out

    def send_pdvs(self, pcid, mch, data):
        for p in self.pdus(pcid, mch, data):
            self.s.sendall(p)

    def messages(self, p):
        """The whole messages in P-DATA-TF p: [(pcid, fields, dataset)]."""
        out, i = [], 0
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
                        out.append((pcid, f, None))
                    else:
                        self.pending = (pcid, f)
            else:
                if self.pending is None or self.pending[0] != pcid:
                    raise Abort('dataset PDV without its command')
                self.data.setdefault(pcid, []).append(data)
                if mch & 2:
                    f, self.pending = self.pending[1], None
                    out.append((pcid, f, b''.join(self.data.pop(pcid))))
        return out


class Acceptor(Conn):
    """An association a requestor opened with us as AE aet: every proposed
    context accepted with its first transfer syntax, the SCP/SCU roles as
    proposed, an operations window of 1; impl: our Implementation Class
    UID (bytes); log: the script's log function."""

    odd_ts = None     # a transfer syntax to accept storage contexts in,
                      # proposed or not (a fault: PS3.8 9.3.3.2 allows
                      # only one proposed); the context is then used as
                      # if accepted with its first proposed one

    def __init__(self, s, aet, impl, log):
        Conn.__init__(self, s)
        self.aet, self.impl, self.log = aet, impl, log
        self.scp = set()      # SOP classes the requestor may be SCP for
        self.calling = ''

    def serve(self):
        """The association, from its A-ASSOCIATE-RQ to its end: each
        whole message goes to self.message(pcid, fields, dataset); bad
        input (or an Abort raised on purpose, "fault": not logged as an
        error) ends it with an A-ABORT; self.ending(aborted) is told
        (Drop, an abort, then always once more)."""
        try:
            t, rq = self.pdu()
            if t != 1:
                raise Abort('PDU type 0x%02x before association' % t, 1)
            if not self.associate(rq):
                return
            while True:
                t, p = self.pdu()
                if t == 4:
                    for pcid, f, ds in self.messages(p):
                        self.message(pcid, f, ds)
                elif t == 5:
                    self.log('release')
                    self.s.sendall(struct.pack('>BBII', 6, 0, 4, 0))
                    return
                elif t == 7:
                    raise PeerAbort()
                else:
                    raise Abort('PDU type 0x%02x' % t, 1)
        except PeerAbort:
            self.log('peer-abort')
        except Drop:
            self.ending(False)
        except EOFError:
            self.log('closed')
        except OSError as e:
            self.log('closed %s' % e)
        except Exception as e:      # bad input or a fault: abort, go on
            if not isinstance(e, Abort) or e.args[0] != 'fault':
                self.log('error %s' % e)
            self.ending(True)
            try:
                self.s.sendall(struct.pack('>BBIBBBB', 7, 0, 4, 0, 0,
                                           getattr(e, 'source', 2),
                                           getattr(e, 'reason', 0)))
            except OSError:
                pass
            self.log('abort')
        finally:
            self.ending(False)
            self.s.close()

    def ending(self, aborted):
        """The association is ending (see serve)."""

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
        """Answers A-ASSOCIATE-RQ rq; False when it was rejected."""
        if len(rq) < 68:
            raise Abort('short A-ASSOCIATE-RQ', 6)
        called = rq[4:20].decode('ascii', 'replace').strip()
        calling = rq[20:36].decode('ascii', 'replace').strip()
        if called != self.aet:
            self.log('error called AE %r' % called)
            self.s.sendall(struct.pack('>BBIBBBB', 3, 0, 4, 0, 1, 1, 7))
            return False
        out = b''
        for t, body in items(rq[68:]):
            if t == 0x10:
                out += item(0x10, body)
            elif t == 0x20:
                subs = list(items(body[4:]))
                tss = [sb for st, sb in subs if st == 0x40]
                ab = [sb for st, sb in subs if st == 0x30]
                if not tss or not ab:
                    raise Abort('presentation context without syntax', 6)
                self.abs[body[0]] = ab[0].rstrip(b'\0 ').decode('ascii',
                                                               'replace')
                self.ts[body[0]] = tss[0].rstrip(b'\0 ').decode('ascii',
                                                                'replace')
                acc = tss[0]
                if self.odd_ts and self.abs[body[0]].startswith(
                        '1.2.840.10008.5.1.4.1.1.'):
                    acc = self.odd_ts.encode('ascii')
                out += item(0x21, bytes([body[0], 0, 0, 0]) +
                            item(0x40, acc))
            elif t == 0x50:
                uinfo = item(0x51, struct.pack('>I', 1 << 20))
                uinfo += item(0x52, self.impl)
                for st, sb in items(body):
                    if st == 0x51 and len(sb) == 4:
                        self.maxlen = struct.unpack('>I', sb)[0]
                    elif st == 0x53:
                        uinfo += item(0x53, struct.pack('>HH', 1, 1))
                    elif st == 0x54:
                        # the roles proposed, accepted as they are
                        if len(sb) < 4:
                            raise Abort('short role selection item', 6)
                        n = struct.unpack('>H', sb[:2])[0]
                        if len(sb) != n + 4:
                            raise Abort('role selection item length', 6)
                        if sb[n + 3]:
                            self.scp.add(sb[2:n + 2].rstrip(b'\0 ').decode(
                                'ascii', 'replace'))
                        uinfo += item(0x54, sb)
                out += item(0x50, uinfo)
        body = struct.pack('>HH', 1, 0) + rq[4:68] + out
        self.s.sendall(struct.pack('>BBI', 2, 0, len(body)) + body)
        self.calling = calling
        self.log('assoc ' + calling)
        return True


def make_log(path):
    """A log function appending one line to path per call, from any
    thread."""
    f = open(path, 'a', buffering=1)
    mu = threading.Lock()

    def log(line):
        with mu:
            f.write(line + '\n')
    return log


# ---- the Study Root query model, over instances' header Datasets ----

LEVELS = ('STUDY', 'SERIES', 'IMAGE')
UID_KEY = {'STUDY': 'StudyInstanceUID', 'SERIES': 'SeriesInstanceUID',
           'IMAGE': 'SOPInstanceUID'}
COUNTS = {0x00201206: 'SERIES', 0x00201208: 'IMAGE', 0x00201209: 'IMAGE'}


def matches(h, want):
    """Whether header h has, for each key of want, one of its UIDs."""
    return all(str(h.get(k, '')) in v for k, v in want.items())


def find_answers(headers, q, level, want):
    """The C-FIND answers to identifier q at level over headers, in UID
    order: one Dataset per matching entity of that level, with the keys q
    asks for (counts of related series/instances and ModalitiesInStudy
    computed, the rest from its first instance) and its UIDs."""
    groups = {}
    for h in headers:
        if matches(h, want):
            key = tuple(str(h.get(UID_KEY[lv], ''))
                        for lv in LEVELS[:LEVELS.index(level) + 1])
            groups.setdefault(key, []).append(h)
    out = []
    for key, hs in sorted(groups.items()):
        r = Dataset()
        for el in q:
            if el.tag == 0x00080052 or el.VR == 'SQ':
                continue
            if el.tag in COUNTS:
                k = COUNTS[el.tag]
                r.add_new(el.tag, 'IS', str(len({str(h.get(UID_KEY[k]))
                                                 for h in hs})))
            elif el.tag == 0x00080061:
                r.add_new(el.tag, 'CS', sorted({str(h.get('Modality'))
                                                for h in hs}))
            elif el.tag in hs[0]:
                r.add_new(el.tag, hs[0][el.tag].VR, hs[0][el.tag].value)
            else:
                r.add_new(el.tag, el.VR, None)
        r.QueryRetrieveLevel = level
        for lv, uid in zip(LEVELS, key):
            setattr(r, UID_KEY[lv], uid)
        out.append(r)
    return out
