#!/usr/bin/python3
"""scpcheck.py — what a DCMTK storescp directory holds of generated studies,
checked independently of vnamigd's code.

    scpcheck.py INDEX SCPDIR STUDY... [--skip SOP...]

INDEX is the generator's index.tsv (path, Study, Series, SOP Instance UID
first); SCPDIR is storescp's -od directory (files named MODALITY.SOPUID, as
storescp +B writes them). For the instances of the studies named, prints
"N of M, K with the source's bytes": M expected (the SOPs after --skip are
left out: not expected there), N of them in SCPDIR, K of those whose
dataset (after the file meta group, padded to even length) has the same
SHA-256 as the generated file's. Skipped SOPs that are there all the same
are named after it (" + SOP ...").

Other scripts import ds_sha from it (sys.path: $top_srcdir/t; t/lib.sh's
dataset_sha).
"""
import hashlib
import os
import struct
import sys


def meta_end(b):
    """The offset past a Part 10 file's meta group (bytes b), its elements
    walked one by one."""
    i = 132
    while b[i:i + 2] == b'\x02\x00':
        vr = b[i + 4:i + 6]
        if vr in (b'OB', b'OW', b'OF', b'SQ', b'UT', b'UN'):
            i += 12 + struct.unpack('<I', b[i + 8:i + 12])[0]
        else:
            i += 8 + struct.unpack('<H', b[i + 6:i + 8])[0]
    return i


def dataset(b):
    """The dataset bytes of a Part 10 file (bytes b), padded to even."""
    d = b[meta_end(b):]
    return d + b'\0' * (len(d) & 1)


def ds_sha(path):
    """SHA-256 of a Part 10 file's dataset: what follows its group 0002."""
    return hashlib.sha256(dataset(open(path, 'rb').read())).hexdigest()


def main():
    args = sys.argv[1:]
    skip = set()
    if '--skip' in args:
        k = args.index('--skip')
        skip = set(args[k + 1:])
        args = args[:k]
    idx, tdir, studies = args[0], args[1], set(args[2:])
    files = {}
    for f in os.listdir(tdir):
        parts = f.split('.', 1)
        if len(parts) == 2:
            files[parts[1]] = os.path.join(tdir, f)
    n = have = same = 0
    for line in open(idx):
        p, st, _, sop = line.split('\t')[:4]
        if st not in studies or sop in skip:
            continue
        n += 1
        if sop in files:
            have += 1
            same += ds_sha(files[sop]) == ds_sha(p)
    extra = sorted(s for s in skip if s in files)
    print('%d of %d, %d with the source\'s bytes%s' % (have, n, same,
          ''.join(' + ' + s for s in extra)))


if __name__ == '__main__':
    main()
