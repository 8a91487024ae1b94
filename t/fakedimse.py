"""
fakedimse.py — what t/faketarget.py and t/fakesource.py (raw-socket DICOM
peers that misbehave on demand) share: Upper Layer items, DIMSE command
fields, and datasets decoded and encoded with pydicom. Pure: no options,
no sockets, no state.
"""
import io
import struct

from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

TS_IMPLICIT = '1.2.840.10008.1.2'
TS_EXPLICIT_BE = '1.2.840.10008.1.2.2'


class PeerAbort(Exception):
    """The peer sent an A-ABORT."""


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
