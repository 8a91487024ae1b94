#!/usr/bin/python3
"""dicomraw.py — a raw DICOM Upper Layer client for the hostile-input tests
in t/dicom.t: it writes PDUs byte by byte (PS3.8 9.3) so that it can send
what no real peer would, and prints what came back.

    dicomraw.py PORT SCENARIO [ARGS...]

Each scenario prints one line: the PDUs received, as "TYPE:HEX" for the
short ones (RJ, release, abort) and "AC", "PDATA:status=0xNNNN" for the
others, then "eof" when the daemon closed the connection.
"""
import os
import socket
import struct
import time
import sys

CT = '1.2.840.10008.5.1.4.1.1.2'
VERIFY = '1.2.840.10008.1.1'
ELE = '1.2.840.10008.1.2.1'


def item(t, body):
    return struct.pack('>BBH', t, 0, len(body)) + body


def uid(u):
    b = u.encode()
    return b + b'\0' if len(b) % 2 else b


def assoc_rq(calling='SCU', called='VNAMIG', contexts=((1, VERIFY),),
             version=1, max_len=16384):
    body = struct.pack('>HH', version, 0)
    body += called.ljust(16).encode() + calling.ljust(16).encode()
    body += b'\0' * 32
    body += item(0x10, b'1.2.840.10008.3.1.1.1')
    for pcid, abstract in contexts:
        pc = struct.pack('>BBBB', pcid, 0, 0, 0)
        pc += item(0x30, abstract.encode()) + item(0x40, ELE.encode())
        body += item(0x20, pc)
    ui = item(0x51, struct.pack('>I', max_len))
    ui += item(0x52, b'1.2.3.4')
    body += item(0x50, ui)
    return struct.pack('>BBI', 1, 0, len(body)) + body


def pdata(pcid, mch, data):
    pdv = struct.pack('>IBB', len(data) + 2, pcid, mch) + data
    return struct.pack('>BBI', 4, 0, len(pdv)) + pdv


def elem(group, el, value):
    return struct.pack('<HHI', group, el, len(value)) + value


def command(fields):
    """fields: [(element, bytes)] of group 0000, ascending."""
    body = b''.join(elem(0, e, v) for e, v in fields)
    return elem(0, 0, struct.pack('<I', len(body))) + body


def store_rq(sop_class, sop_instance, msgid=1, dataset_type=0x0000,
             move_orig=None):
    f = [(0x0002, uid(sop_class)),
         (0x0100, struct.pack('<H', 0x0001)),
         (0x0110, struct.pack('<H', msgid)),
         (0x0700, struct.pack('<H', 0)),
         (0x0800, struct.pack('<H', dataset_type)),
         (0x1000, uid(sop_instance))]
    if move_orig is not None:	# a C-MOVE sub-operation's
        f += [(0x1030, move_orig.encode().ljust(16)),
              (0x1031, struct.pack('<H', 7))]
    return command(f)


def echo_rq(msgid=1):
    return command([(0x0002, uid(VERIFY)),
                    (0x0100, struct.pack('<H', 0x0030)),
                    (0x0110, struct.pack('<H', msgid)),
                    (0x0800, struct.pack('<H', 0x0101))])


def rss(pid):
    """The resident memory of process pid, in MiB."""
    for line in open('/proc/%s/status' % pid):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) // 1024
    return 0


def flood(s, burst, seconds):
    """Write burst to socket s over and over for seconds, never reading:
    (bytes the kernel took, 'open' or 'closed' by the daemon). Also for
    t/http.t's pipelining client."""
    import select

    sent, end = 0, time.time() + seconds
    s.setblocking(False)
    while time.time() < end:
        if not select.select([], [s], [], 0.2)[1]:
            continue
        try:
            sent += s.send(burst)
        except BlockingIOError:
            pass
        except OSError:		# closed: limits.network_timeout
            return sent, 'closed'
    return sent, 'open'


def dataset(sop_class, sop_instance):
    """A small Explicit VR LE dataset."""
    def ex(g, e, vr, v):
        return struct.pack('<HH2sH', g, e, vr.encode(), len(v)) + v
    return (ex(0x0008, 0x0016, 'UI', uid(sop_class)) +
            ex(0x0008, 0x0018, 'UI', uid(sop_instance)) +
            ex(0x0010, 0x0010, 'PN', b'Raw^Test'))


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(('127.0.0.1', port), timeout=10)
        self.got = []

    def send(self, b):
        self.s.sendall(b)

    def recv_exact(self, n):
        b = b''
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                return None
            b += c
        return b

    def pdu(self):
        """Read one PDU, note it in self.got; None at EOF."""
        try:
            h = self.recv_exact(6)
        except (ConnectionResetError, socket.timeout):
            h = None
        if h is None:
            self.got.append('eof')
            return None
        t, _, n = struct.unpack('>BBI', h)
        body = self.recv_exact(n)
        if body is None:
            self.got.append('eof')
            return None
        if t == 2:
            self.got.append('AC')
        elif t == 4:
            # one PDV holding a whole command: find (0000,0900) Status
            data = body[6:]
            st = None
            i = 0
            while i + 8 <= len(data):
                g, e, ln = struct.unpack('<HHI', data[i:i + 8])
                if (g, e) == (0, 0x0900):
                    st = struct.unpack('<H', data[i + 8:i + 10])[0]
                i += 8 + ln
            self.got.append('PDATA:status=0x%04x' % st if st is not None
                            else 'PDATA')
        else:
            self.got.append('%02x:%s' % (t, body.hex()))
        return t

    def drain(self):
        while self.pdu() is not None:
            pass

    def report(self):
        print(' '.join(self.got))


def main():
    port = int(sys.argv[1])
    sc = sys.argv[2]
    c = Conn(port)
    if sc == 'second-rq':		# A-ASSOCIATE-RQ when established
        c.send(assoc_rq())
        c.pdu()
        c.send(assoc_rq())
        c.drain()
    elif sc == 'huge-pdu':		# P-DATA-TF of length 0xFFFFFFFF
        c.send(assoc_rq())
        c.pdu()
        c.send(struct.pack('>BBI', 4, 0, 0xFFFFFFFF) + b'\0' * 64)
        c.drain()
    elif sc == 'huge-rq':		# an A-ASSOCIATE-RQ over 64 KiB
        c.send(struct.pack('>BBI', 1, 0, 200000))
        c.drain()
    elif sc == 'bad-context':		# PDV on a context never proposed
        c.send(assoc_rq())
        c.pdu()
        c.send(pdata(5, 3, echo_rq()))
        c.drain()
    elif sc == 'zero-pdv':		# PDV item length 0
        c.send(assoc_rq())
        c.pdu()
        c.send(struct.pack('>BBII', 4, 0, 4, 0))
        c.drain()
    elif sc == 'pdata-first':		# P-DATA-TF before any association
        c.send(pdata(1, 3, echo_rq()))
        c.drain()
    elif sc == 'big-pdata-first':	# one of 200 KiB (under max_pdu),
        c.send(struct.pack('>BBI', 4, 0, 200 << 10) + b'\0' * 64)
        c.drain()			# its body never sent
    elif sc == 'item-overrun':		# presentation context item too long
        rq = bytearray(assoc_rq())
        i = 6 + 68 + 4 + len(b'1.2.840.10008.3.1.1.1')
        rq[i + 2:i + 4] = struct.pack('>H', 0x7000)
        c.send(bytes(rq))
        c.drain()
    elif sc == 'tiny-pdu':		# a maximum PDU length of 4
        c.send(assoc_rq(max_len=4))
        c.drain()
    elif sc == 'version':		# protocol version 2 only
        c.send(assoc_rq(version=2))
        c.drain()
    elif sc == 'ae':			# called AE given as ARGS[0]
        c.send(assoc_rq(called=sys.argv[3]))
        c.drain()
    elif sc == 'hold':			# an association held open until EOF
        c.send(assoc_rq())
        c.pdu()
        c.report()
        sys.stdout.flush()
        c.drain()
        return
    elif sc == 'overrun':		# a 2nd C-STORE in the 1st's last PDU
        cls = sys.argv[3]
        c.send(assoc_rq(contexts=((1, cls),)))
        c.pdu()
        pdvs = b''
        for mch, data in ((3, store_rq(cls, '1.2.3.71', 1)),
                          (2, dataset(cls, '1.2.3.71')),
                          (3, store_rq(cls, '1.2.3.72', 2))):
            pdvs += struct.pack('>IBB', len(data) + 2, 1, mch) + data
        c.send(struct.pack('>BBI', 4, 0, len(pdvs)) + pdvs)
        c.drain()
    elif sc == 'slow-rq':		# the A-ASSOCIATE-RQ a byte per 0.2 s
        rq = assoc_rq()
        try:
            for k in range(len(rq)):
                c.send(rq[k:k + 1])
                time.sleep(0.2)
        except OSError:
            pass
        c.drain()
        print('sent %d of %d' % (k, len(rq)), end=' ')
    elif sc == 'slow-pdata':		# then a P-DATA-TF a byte per 0.2 s
        c.send(assoc_rq())
        c.pdu()
        p = pdata(1, 3, echo_rq())
        try:
            for k in range(len(p)):
                c.send(p[k:k + 1])
                time.sleep(0.2)
        except OSError:
            pass
        c.drain()
    elif sc == 'echo-flood':		# C-ECHOs for ARGS[0] s, never read
        # how much more memory the daemon (pid ARGS[1]) holds after: it
        # must stop reading a peer that does not read its answers
        pid = sys.argv[4]
        c.s.close()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(('127.0.0.1', port))
        s.sendall(assoc_rq())
        s.recv(65536)			# the A-ASSOCIATE-AC
        before = rss(pid)
        sent, how = flood(s, pdata(1, 3, echo_rq()) * 2000,
                          float(sys.argv[3]))
        time.sleep(0.5)
        print('sent_mb=%d grew_mb=%d %s' % (sent >> 20, rss(pid) - before, how))
        s.close()
        return
    elif sc == 'early-flood':		# ARGS[0] C-STOREs of ARGS[1] bytes
        # as sub-operations of a C-MOVE of ARGS[3]'s (answered as soon as
        # whole: migration.retrieve_ack early), each sent once the last
        # is answered; prints how much the RSS of the daemon (pid
        # ARGS[2]) grew at the most meanwhile, in MiB; then removes the
        # file ARGS[4] (a slow disk's flag: t/slowsync.c) and releases
        n, size, pid, orig, flag = (int(sys.argv[3]), int(sys.argv[4]),
                                    sys.argv[5], sys.argv[6], sys.argv[7])

        c.s.settimeout(120)
        c.send(assoc_rq(contexts=((1, CT),), max_len=1 << 20))
        c.pdu()
        body = b'\x33' * size
        before = peak = rss(pid)
        for i in range(n):
            inst = '1.2.3.4.%d' % (1000 + i)
            ds = dataset(CT, inst) + struct.pack(
                '<HH2sHI', 0x7fe0, 0x0010, b'OB', 0, len(body)) + body
            msg = pdata(1, 3, store_rq(CT, inst, i + 1, move_orig=orig))
            for at in range(0, len(ds), 200000):
                msg += pdata(1, 2 if at + 200000 >= len(ds) else 0,
                             ds[at:at + 200000])
            c.send(msg)
            c.pdu()
            peak = max(peak, rss(pid))
        os.unlink(flag)
        c.send(struct.pack('>BBI', 5, 0, 4) + b'\0' * 4)
        c.pdu()				# its A-RELEASE-RP: then we close
        print('grew_mb=%d %s' % (peak - before, ' '.join(sorted(set(c.got)))))
        return
    elif sc == 'partial-release':	# half a C-STORE's dataset, then
        c.send(assoc_rq(contexts=((1, CT),)))  # an A-RELEASE-RQ
        c.pdu()
        c.send(pdata(1, 3, store_rq(CT, '1.2.3.4.77')))
        c.send(pdata(1, 0, dataset(CT, '1.2.3.4.77')))
        c.send(struct.pack('>BBI', 5, 0, 4) + b'\0' * 4)
        c.s.settimeout(3)
        c.drain()
    elif sc in ('rj-trickle', 'rj-abort'):  # rejected (Sta13), then
        # bytes every 0.3 s, or an A-ABORT: how long until it closed
        c.send(assoc_rq(called='NOBODY'))
        c.pdu()
        t0 = time.time()
        c.s.settimeout(0.3)
        if sc == 'rj-abort':
            c.send(struct.pack('>BBIBBBB', 7, 0, 4, 0, 0, 0, 0))
        while time.time() - t0 < 6:
            try:
                if not c.s.recv(100):
                    break
            except socket.timeout:
                pass
            except OSError:
                break
            if sc == 'rj-trickle':
                try:
                    c.send(b'\0' * 6)
                except OSError:
                    break
        print('%s closed_after=%.1f' % (' '.join(c.got), time.time() - t0))
        return
    elif sc == 'hold-all':		# held until the daemon ends it
        c.send(assoc_rq())
        c.drain()
    elif sc == 'store':			# C-STORE with UIDs from ARGS
        # (%00 in the dataset's UID stands for a NUL byte)
        cls, inst = sys.argv[3], sys.argv[4]
        ds_inst = sys.argv[5].replace('%00', '\0')
        c.send(assoc_rq(contexts=((1, cls),)))
        c.pdu()
        c.send(pdata(1, 3, store_rq(cls, inst)))
        c.send(pdata(1, 2, dataset(cls, ds_inst)))
        c.pdu()
        c.send(struct.pack('>BBI', 5, 0, 4) + b'\0' * 4)
        c.drain()
    elif sc == 'store-nodata':		# a C-STORE-RQ saying it has no
        cls, inst = sys.argv[3], sys.argv[4]	# dataset, then a C-ECHO
        c.send(assoc_rq(contexts=((1, cls), (3, VERIFY))))
        c.pdu()
        c.send(pdata(1, 3, store_rq(cls, inst, dataset_type=0x0101)))
        c.pdu()
        c.send(pdata(3, 3, echo_rq(2)))
        c.pdu()
        c.send(struct.pack('>BBI', 5, 0, 4) + b'\0' * 4)
        c.drain()
    elif sc == 'burst':		# C-STORE of ARGS[2] bytes, sent at once
        # The command, a dataset with an OB of random bytes in 64 KiB
        # PDVs (one per P-DATA-TF) and the A-RELEASE-RQ leave in one
        # write, so the daemon finds far more than one read's worth
        # waiting; the dataset as sent goes to the file ARGS[3].
        import random
        cls, inst, size, out = sys.argv[3], sys.argv[4], int(sys.argv[5]), \
            sys.argv[6]
        body = random.Random(size).randbytes(size + size % 2)
        ds = dataset(cls, inst) + struct.pack('<HH2sHI', 0x7fe0, 0x0010,
                                              b'OB', 0, len(body)) + body
        with open(out, 'wb') as f:
            f.write(ds)
        c.send(assoc_rq(contexts=((1, cls),)))
        c.pdu()
        msg = pdata(1, 3, store_rq(cls, inst))
        for at in range(0, len(ds), 65536):
            last = at + 65536 >= len(ds)
            msg += pdata(1, 2 if last else 0, ds[at:at + 65536])
        c.send(msg + struct.pack('>BBI', 5, 0, 4) + b'\0' * 4)
        c.pdu()
        c.drain()
    elif sc == 'burst-mismatch':	# a refused C-STORE, then a C-ECHO
        # As burst, but the dataset's SOP Instance UID is not the
        # command's (0xA900 expected), sent at once in 64 KiB PDVs, with
        # the C-ECHO only after its answer: the association must still
        # be read once the refused instance's bytes are dropped.
        cls, inst, size = sys.argv[3], sys.argv[4], int(sys.argv[5])
        body = b'\x5a' * (size + size % 2)
        ds = dataset(cls, inst + '.9') + struct.pack(
            '<HH2sHI', 0x7fe0, 0x0010, b'OB', 0, len(body)) + body
        c.send(assoc_rq(contexts=((1, cls), (3, VERIFY))))
        c.pdu()
        msg = pdata(1, 3, store_rq(cls, inst))
        for at in range(0, len(ds), 65536):
            last = at + 65536 >= len(ds)
            msg += pdata(1, 2 if last else 0, ds[at:at + 65536])
        c.send(msg)
        c.pdu()
        c.send(pdata(3, 3, echo_rq(2)))
        if c.pdu() is not None:
            c.send(struct.pack('>BBI', 5, 0, 4) + b'\0' * 4)
            c.drain()
    elif sc == 'echo':
        c.send(assoc_rq())
        c.pdu()
        c.send(pdata(1, 3, echo_rq()))
        c.pdu()
        c.send(struct.pack('>BBI', 5, 0, 4) + b'\0' * 4)
        c.drain()
    else:
        sys.exit('unknown scenario ' + sc)
    c.report()


if __name__ == '__main__':
    main()
