#!/usr/bin/python3
"""t/merkle.py — an independent RFC 9162 (Certificate Transparency v2)
Merkle tree in a few lines of Python (hashlib only), to cross-check the C
audit log (store/audit.c) from the unit test t/unit/t_audit.

    merkle.py check LEAVES PROOFS

LEAVES: one leaf per line (the bytes hashed, without the newline).
PROOFS: lines of
    root N HEX                  MTH of the first N leaves
    incl M N HEX,HEX,...        inclusion proof of leaf M in a tree of N
    cons M N HEX,HEX,...        consistency proof from size M to N
Each is recomputed here (RFC 9162 2.1.1, 2.1.3.1, 2.1.4.1) and compared
byte for byte, and each proof is also verified with the RFC's verification
algorithms (2.1.3.2, 2.1.4.2). Prints TAP lines; exit 1 on any mismatch.
"""
import hashlib
import sys


def leaf_hash(b):
    return hashlib.sha256(b"\x00" + b).digest()


def node(l, r):
    return hashlib.sha256(b"\x01" + l + r).digest()


def split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d):
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return leaf_hash(d[0])
    k = split(len(d))
    return node(mth(d[:k]), mth(d[k:]))


def path(m, d):
    if len(d) <= 1:
        return []
    k = split(len(d))
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m, d, b):
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = split(n)
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def verify_inclusion(index, size, h, proof, root):
    # RFC 9162 2.1.3.2
    if index >= size:
        return False
    fn, sn, r = index, size - 1, h
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_hash, second_hash, proof):
    # RFC 9162 2.1.4.2
    if first == second:
        return not proof and first_hash == second_hash
    if first == 0 or first > second or not proof:
        return False
    if first & (first - 1) == 0:
        proof = [first_hash] + proof
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


def main():
    if len(sys.argv) != 4 or sys.argv[1] != "check":
        sys.stderr.write(__doc__)
        return 2
    with open(sys.argv[2], "rb") as f:
        leaves = [l[:-1] if l.endswith(b"\n") else l for l in f]
    bad = 0
    n_test = 0
    with open(sys.argv[3]) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            n_test += 1
            kind = parts[0]
            if kind == "root":
                n = int(parts[1])
                ok = mth(leaves[:n]).hex() == parts[2]
                what = "root of %d" % n
            else:
                m, n = int(parts[1]), int(parts[2])
                got = [bytes.fromhex(h) for h in parts[3].split(",")] \
                    if len(parts) > 3 and parts[3] != "-" else []
                root = mth(leaves[:n])
                if kind == "incl":
                    want = path(m, leaves[:n])
                    ok = got == want and verify_inclusion(
                        m, n, leaf_hash(leaves[m]), got, root)
                    what = "inclusion of %d in %d" % (m, n)
                else:
                    want = subproof(m, leaves[:n], True) if m < n else []
                    ok = got == want and verify_consistency(
                        m, n, mth(leaves[:m]), root, got)
                    what = "consistency %d -> %d" % (m, n)
            print("%s %d - python: %s" % ("ok" if ok else "not ok", n_test,
                                          what))
            bad += not ok
    print("1..%d" % n_test)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
