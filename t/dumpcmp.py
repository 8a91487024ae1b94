#!/usr/bin/python3
"""dumpcmp.py OURS THEIRS — compare `vnamig-dump -a -q FILE` (OURS) with
`dcmdump -q +L +U8 -Un -M +R 64 FILE` (THEIRS), element by element.

Each dump becomes a list of (path, VR, value) records: the path is the tag
chain with item numbers, e.g. (300a,0010)[1](300a,0018). The normalization,
the one documented for the conformance test in t/dump.t:

  - comment lines ("# Dicom-Data-Set", "# File:"), the delimitation
    items (fffe,e00d) (fffe,e0dd) and (0008,0005) are dropped: they
    describe the encoding (dcmdump +U8 rewrites (0008,0005) as
    "ISO_IR 192", adding it when absent);
  - trailing NULs of a text value are padding (dcmdump shows them);
  - an empty value, "(no value available)" / "(no value)" / "[]", is "";
  - a text value is what is inside its brackets; dcmdump writes control
    characters as they are, we as \\xHH: theirs are escaped the same way;
  - "(Sequence...)", "(PixelSequence...)" and "(Item...)" are just their
    kind; a value over 64 KiB, "(not loaded)" on their side and
    "(N bytes, not shown)" on ours, is compared by presence only (also
    when dcmdump shows it all: it loads every value of a deflated file);
  - FL FD OF OD numbers are compared as floats to 6 significant digits
    (dcmdump prints 6 to 17 of them, we %g), -0 as 0;
  - DCMTK's internal VRs: "??" (an unknown tag in implicit VR) is UN,
    "up" (a DICOMDIR offset) UL, "xs" (US or SS) US;
  - pairwise, at the same path:
    - an element that is UN on one side and has a VR on the other is
      compared by presence only, and so is what lies under it (dcmdump
      may find items in a UN value): a private tag in implicit VR has no
      VR without a private dictionary (PS3.5 6.2.2), DCMTK ships one;
      and we read an explicit UN of a public tag with its dictionary VR
      (PS3.5 6.2.2, as pydicom does), where DCMTK keeps UN;
    - UN against SQ when both are sequences (an undefined-length UN in
      implicit VR, PS3.5 6.2.2) is a match, its items compared;
    - US against SS (the "US or SS" of a pixel value in implicit VR,
      which DCMTK picks from Pixel Representation) is compared as the
      same 16 bits;
    - a binary value of odd length, which DCMTK shows padded with a 00
      byte, equals its padded form;
    - OB against OW for encapsulated pixel data (DCMTK always calls it
      OB, PS3.5 A.4; we show the VR as stored) is a match.

dumpcmp.py --pydicom OURS FILE: for the files dcmdump +U8 cannot convert
(Debian's DCMTK, on glibc iconv, has no ISO 2022 IR 87): the text values
of the VRs the character set applies to (SH LO ST LT UC UT PN) compared
with pydicom's decoding of FILE (its str(), padding stripped), everything
else not at all (nor what we show as UN: a private tag in implicit VR,
whose VR pydicom may take from its private dictionary); a PN's trailing
empty component groups are dropped on both sides, as pydicom does.

Prints "N records" and exits 0 when the two lists are equal, else prints
the differing records ("<" ours, ">" theirs) and exits 1.
"""
import re
import sys

LINE = re.compile(r'^( *)\(([0-9a-fA-F]{4}),([0-9a-fA-F]{4})\) (\w\w|\?\?) ?(.*)$',
                  re.S)
TAIL = re.compile(r'^(.*?)\s+#\s*(\d+|u/l),([^\n]*)$', re.S)
FLOATS = {'FL', 'FD', 'OF', 'OD'}
# DCMTK's internal VRs: "up" a UL offset into the DICOMDIR, "xs" US or SS
# (decided by the pair rule below).
DCMTK_VRS = {'up': 'UL', 'xs': 'US'}


def esc(s):
    return ''.join('\\x%02x' % ord(c) if ord(c) < 0x20 or ord(c) == 0x7f
                   else c for c in s)


def records(path, theirs):
    with open(path, encoding='utf-8', errors='surrogateescape',
              newline='') as f:
        text = f.read()
    lines = text.split('\n')
    # dcmdump writes a text value's CR and LF as they are: a line that is
    # not an element or a comment continues the value before it.
    joined = []
    for ln in lines:
        if LINE.match(ln) or ln.startswith('#') or not joined:
            joined.append(ln)
        elif ln == '' and theirs is False:
            continue
        else:
            joined[-1] += '\n' + ln
    out = []
    stack = []		# [(label, items so far)]
    for ln in joined:
        m = LINE.match(ln)
        if not m:
            continue
        ind, g, e, vr, rest = m.groups()
        if vr == '??':
            vr = 'UN'		# DCMTK: an unknown tag in implicit VR
        elif vr in DCMTK_VRS:
            vr = DCMTK_VRS[vr]
        depth = len(ind) // 2
        tag = (int(g, 16), int(e, 16))
        t = TAIL.match(rest)
        val = (t.group(1) if t else rest).strip(' ')
        del stack[depth:]
        if tag in ((0xfffe, 0xe00d), (0xfffe, 0xe0dd)):
            continue
        prefix = ''.join(s[0] for s in stack)
        if tag == (0xfffe, 0xe000):
            if stack:
                stack[-1][1] += 1
                idx = stack[-1][1] - 1
            else:
                idx = 0
            label = '[%d]' % idx
            if vr == 'pi':
                out.append((prefix + label, 'pi', norm(val, vr, theirs)))
            else:
                stack.append([label, 0])
            continue
        label = '(%s,%s)' % (g.lower(), e.lower())
        if tag == (0x0008, 0x0005):
            stack.append([label, 0])
            continue
        out.append((prefix + label, vr, norm(val, vr, theirs)))
        stack.append([label, 0])
    return out


def norm(val, vr, theirs):
    if val in ('(no value available)', '(no value)', '[]'):
        return ''
    if val.startswith('(Sequence') or val.startswith('(PixelSequence'):
        return '(%s)' % val[1:].split()[0].rstrip(')')
    if val == '(not loaded)' or re.match(r'^\(\d+ bytes, not shown\)$', val):
        return '(large)'
    if val.startswith('[') and val.endswith(']'):
        s = val[1:-1]
        return esc(s.rstrip('\0')) if theirs else s
    if vr in FLOATS:
        try:
            return '\\'.join('%.6g' % (float(x) + 0.0)
                             for x in val.split('\\'))
        except ValueError:
            return val
    return val


def pair(a, b):
    """a, b: records at the same position: 2 equal after the pairwise rules
    with what is below them compared by presence only, 1 equal, 0 not."""
    if a == b:
        return 1
    if a[0] != b[0]:
        return 0
    if a[1] == b[1] and '(large)' in (a[2], b[2]):
        return 1
    if a[1] == b[1] and b[2] == a[2] + '\\00':
        return 1
    if (a[1] == 'UN') != (b[1] == 'UN') and a[2] == b[2] == '(Sequence)':
        return 1
    if {a[1], b[1]} == {'OB', 'OW'} and a[2] == b[2] == '(PixelSequence)':
        return 1
    if (a[1] == 'UN') != (b[1] == 'UN'):
        return 2
    if {a[1], b[1]} == {'US', 'SS'}:
        try:
            return int([int(x) & 0xffff for x in a[2].split('\\')] ==
                       [int(x) & 0xffff for x in b[2].split('\\')])
        except ValueError:
            return 0
    return 0


CS_VRS = {'SH', 'LO', 'ST', 'LT', 'UC', 'UT', 'PN'}


def vrname(vr):
    return str(getattr(vr, 'value', vr))


def pn_trim(r):
    """pydicom drops a PN's trailing empty component groups: so do we."""
    return (r[0], r[1], r[2].rstrip('=^')) if r[1] == 'PN' else r


def pydicom_records(path):
    import pydicom
    out = []

    def walk(ds, prefix):
        for el in ds:
            label = prefix + '(%04x,%04x)' % (el.tag.group, el.tag.element)
            if el.VR == 'SQ':
                for i, item in enumerate(el.value):
                    walk(item, label + '[%d]' % i)
            elif vrname(el.VR) in CS_VRS and el.tag != 0x00080005:
                v = el.value
                if v is None:
                    s = ''
                elif isinstance(v, (list, pydicom.multival.MultiValue)):
                    s = '\\'.join(str(x) for x in v)
                else:
                    s = str(v)
                out.append((label, el.VR, esc(s.rstrip(' \0'))))
    ds = pydicom.dcmread(path, force=True)
    walk(ds.file_meta, '')
    walk(ds, '')
    return out


def main():
    if sys.argv[1] == '--pydicom':
        every = records(sys.argv[2], False)
        vrs = {r[0]: r[1] for r in every}
        ours = [pn_trim(r) for r in every if r[1] in CS_VRS]
        # What we show as UN (a private tag in implicit VR) is not text
        # to us; pydicom may know its VR from its private dictionary.
        theirs = [pn_trim(r) for r in pydicom_records(sys.argv[3])
                  if vrs.get(r[0], r[1]) in CS_VRS]
    else:
        ours = records(sys.argv[1], False)
        theirs = records(sys.argv[2], True)
    bad = []
    i = j = 0
    while i < len(ours) or j < len(theirs):
        a = ours[i] if i < len(ours) else None
        b = theirs[j] if j < len(theirs) else None
        how = pair(a, b) if a is not None and b is not None else 0
        if how:
            i += 1
            j += 1
            while how == 2 and i < len(ours) and ours[i][0].startswith(a[0]):
                i += 1
            while how == 2 and j < len(theirs) and \
                    theirs[j][0].startswith(a[0]):
                j += 1
            continue
        if b is None or (a is not None and a[0] < b[0]):
            bad.append('< %s %s [%s]' % a)
            i += 1
        elif a is None or b[0] < a[0]:
            bad.append('> %s %s [%s]' % b)
            j += 1
        else:
            bad.append('< %s %s [%s]' % a)
            bad.append('> %s %s [%s]' % b)
            i += 1
            j += 1
    if bad:
        sys.stdout.write('\n'.join(bad[:40]) + '\n')
        if len(bad) > 40:
            print('... %d more' % (len(bad) - 40))
        return 1
    print('%d records' % len(ours))
    return 0


if __name__ == '__main__':
    sys.exit(main())
