#!/usr/bin/python3
"""reportcheck.py — a migration batch's verification report (GET
/api/batches/ID/report as saved), checked for the integration scripts.

    reportcheck.py REPORT EXPECTED OUTCOME [SOP=OUTCOME[:REASON[:STATUS]]...]

EXPECTED instances, each once; the summary adds up to it and to 100%;
every row's outcome is OUTCOME but for the SOPs named (their outcome,
reason and status; an empty field is not checked); the summary's count
per outcome and quarantined_by_reason agree with the rows. One line per
check, "is|GOT|WANT|NAME", and "diag|TEXT" lines (t/miglib.sh's
report_check makes TAP of them).
"""
import collections, json, sys

rep = json.load(open(sys.argv[1]))
n, want = int(sys.argv[2]), sys.argv[3]
special = {}
for a in sys.argv[4:]:
    sop, o = a.split('=', 1)
    special[sop] = (o.split(':') + ['', ''])[:3]

def out(*f):
    print('|'.join(str(x) for x in f))

s = rep.get('summary', {})
rows = rep.get('instances', [])
out('is', s.get('expected'), n, 'summary: expected %d' % n)
out('is', float(s.get('accounted_percent') or 0) == 100.0, True,
    'summary: accounted_percent 100 (got %s)' % s.get('accounted_percent'))
parts = {k: s.get(k, 0) for k in ('migrated', 'skipped_present',
                                  'quarantined', 'failed', 'pending')}
out('is', sum(parts.values()), n, 'summary: the outcomes add up (%s)' %
    ' '.join('%s=%s' % kv for kv in parts.items()))
out('is', len(rows), n, 'one instance row per expected instance')
out('is', len({r.get('sop_instance_uid') for r in rows}), len(rows),
    'no instance counted twice')
byout = collections.Counter(r.get('outcome') for r in rows)
out('is', all(parts[k] == byout.get(k, 0) for k in parts), True,
    'summary counts == the rows\' outcomes (%s)' % dict(byout))
reasons = collections.Counter(r.get('reason') for r in rows
                              if r.get('outcome') == 'quarantined')
out('is', json.dumps(s.get('quarantined_by_reason') or {}, sort_keys=True),
    json.dumps(dict(reasons), sort_keys=True),
    'summary: quarantined_by_reason == the rows\' reasons')
bad = []
for r in rows:
    sop = r.get('sop_instance_uid')
    o, why, st = special.get(sop, (want, '', ''))
    if r.get('outcome') != o or (why and r.get('reason') != why) or \
            (st and str(r.get('status')) != st):
        bad.append(r)
out('is', len(bad), 0, 'every row: %s%s' % (want, ''.join(
    ', %s: %s' % (k[len(k) - 7:], '/'.join(v)) for k, v in special.items())))
for r in bad[:4]:
    out('diag', 'row: ' + json.dumps(r))
miss = set(special) - {r.get('sop_instance_uid') for r in rows}
out('is', ' '.join(sorted(miss)), '', 'the instances named have rows')
