#!/bin/sh
# openapi.t — http/openapi.json against the code and the running daemon:
# every route of src/api/api_routes.h documented with its method, path,
# least role (x-vnamig-role), path parameters and the dispatcher's answers
# for its flags, and nothing documented that is not routed; every $ref
# resolves; the file is pretty-printed as the generator would; GET
# /api/openapi.json serves it byte for byte; and real answers of the
# daemon (successes and errors) validate against the documented schema of
# their route and status (a small JSON-schema subset checker below).
. "$top_srcdir/t/lib.sh"

PY=/usr/bin/python3
DOC="$top_srcdir/http/openapi.json"
ROUTES="$top_srcdir/src/api/api_routes.h"
CHECK="$T_DIR/check.py"

# check.py MODE ARGS: prints "STATUS NAME" lines (0 pass, 1 fail) that
# run_check turns into TAP through ok.
cat > "$CHECK" <<'PY'
import json, re, sys

def load_doc(path):
    with open(path, 'rb') as f:
        raw = f.read()
    return raw, json.loads(raw.decode('utf-8'))

def parse_routes(path):
    text = open(path).read()
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    routes = []
    for m in re.finditer(r'API_ROUTE\s*\((.*?)\)\s*(?=API_ROUTE|\Z)', text, re.S):
        args = m.group(1)
        a = re.match(r'\s*"([A-Z]+)"\s*,\s*"([^"]+)"\s*,\s*(\w+)\s*,\s*'
                     r'CONF_API_(\w+)\s*,\s*([^,]*?)\s*,\s*([^,]*?)\s*,\s*'
                     r'"([^"]+)"\s*$', args, re.S)
        if a is None:
            routes.append(None)
            continue
        flags = set(re.findall(r'API_\w+', a.group(5)))
        routes.append({'method': a.group(1), 'path': a.group(2),
                       'fn': a.group(3), 'role': a.group(4).lower(),
                       'flags': flags, 'max': ' '.join(a.group(6).split()),
                       'name': a.group(7)})
    return routes

METHODS = ('get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace')

def operations(doc):
    for p, item in doc.get('paths', {}).items():
        for m, op in item.items():
            if m in METHODS:
                yield m.upper(), p, op, item

def resolve(doc, ref):
    if not ref.startswith('#/'):
        return None
    node = doc
    for part in ref[2:].split('/'):
        part = part.replace('~1', '/').replace('~0', '~')
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node

def deref(doc, node):
    seen = 0
    while isinstance(node, dict) and '$ref' in node and seen < 20:
        node = resolve(doc, node['$ref'])
        seen += 1
    return node

def out(good, name):
    print('%d %s' % (0 if good else 1, ' '.join(str(name).split())))

# -- a JSON-schema subset (OpenAPI 3.0 flavour) --------------------------
def validate(doc, schema, v, where='$'):
    errs = []
    schema = deref(doc, schema)
    if schema is None:
        return ['%s: unresolvable schema' % where]
    for sub in schema.get('allOf', []):
        errs += validate(doc, sub, v, where)
    if v is None:
        if schema.get('nullable') or 'type' not in schema:
            return errs
        return errs + ['%s: null where %s is wanted' % (where, schema['type'])]
    t = schema.get('type')
    kinds = {
        'object': lambda x: isinstance(x, dict),
        'array': lambda x: isinstance(x, list),
        'string': lambda x: isinstance(x, str),
        'integer': lambda x: isinstance(x, int) and not isinstance(x, bool),
        'number': lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
        'boolean': lambda x: isinstance(x, bool),
    }
    if t is not None:
        if t not in kinds:
            return errs + ['%s: schema type %r unknown' % (where, t)]
        if not kinds[t](v):
            return errs + ['%s: %s where %s is wanted' % (where, type(v).__name__, t)]
    if 'enum' in schema and v not in schema['enum']:
        errs.append('%s: %r not in %r' % (where, v, schema['enum']))
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if 'minimum' in schema and v < schema['minimum']:
            errs.append('%s: %r below %r' % (where, v, schema['minimum']))
        if 'maximum' in schema and v > schema['maximum']:
            errs.append('%s: %r above %r' % (where, v, schema['maximum']))
    if isinstance(v, str):
        if 'minLength' in schema and len(v) < schema['minLength']:
            errs.append('%s: shorter than %d' % (where, schema['minLength']))
        if 'maxLength' in schema and len(v) > schema['maxLength']:
            errs.append('%s: longer than %d' % (where, schema['maxLength']))
        if 'pattern' in schema and not re.search(schema['pattern'], v):
            errs.append('%s: %r does not match %s' % (where, v, schema['pattern']))
    if isinstance(v, dict):
        props = schema.get('properties', {})
        for k in schema.get('required', []):
            if k not in v:
                errs.append('%s: required member %s missing' % (where, k))
        ap = schema.get('additionalProperties', True)
        for k, x in v.items():
            if k in props:
                errs += validate(doc, props[k], x, '%s.%s' % (where, k))
            elif ap is False:
                errs.append('%s: member %s not documented' % (where, k))
            elif isinstance(ap, dict):
                errs += validate(doc, ap, x, '%s.%s' % (where, k))
    if isinstance(v, list) and 'items' in schema:
        for i, x in enumerate(v):
            errs += validate(doc, schema['items'], x, '%s[%d]' % (where, i))
    return errs

# -- static: the document against api_routes.h --------------------------
def static(doc_path, routes_path):
    raw, doc = load_doc(doc_path)
    out(doc.get('openapi') == '3.0.3', 'openapi.json: OpenAPI 3.0.3')
    pretty = json.dumps(doc, indent=2, ensure_ascii=False) + '\n'
    out(raw == pretty.encode('utf-8'),
        'openapi.json is pretty-printed with a 2-space indent and ends in a newline')

    routes = parse_routes(routes_path)
    out(len(routes) > 0 and None not in routes,
        'api_routes.h: %d API_ROUTE entries, all parsed' % len(routes))
    routes = [r for r in routes if r]
    rkeys = {(r['method'], r['path']): r for r in routes}
    out(len(rkeys) == len(routes), 'api_routes.h: no (method, path) twice')
    ops = {(m, p): (op, item) for m, p, op, item in operations(doc)}

    for r in routes:
        out((r['method'], r['path']) in ops,
            'route %s %s (%s) is documented' % (r['method'], r['path'], r['name']))
    for (m, p) in ops:
        out((m, p) in rkeys, 'operation %s %s is routed in api_routes.h' % (m, p))

    for r in routes:
        k = (r['method'], r['path'])
        if k not in ops:
            continue
        op, item = ops[k]
        got = op.get('x-vnamig-role')
        out(got == r['role'], '%s %s: x-vnamig-role %s (route: %s)'
            % (k[0], k[1], got, r['role']))

    # path parameters: each {name} declared (in: path, required), no others
    for r in routes:
        k = (r['method'], r['path'])
        if k not in ops:
            continue
        op, item = ops[k]
        want = set(re.findall(r'\{(\w+)\}', r['path']))
        declared = {}
        for prm in item.get('parameters', []) + op.get('parameters', []):
            prm = deref(doc, prm) or {}
            if prm.get('in') == 'path':
                declared[prm.get('name')] = prm
        bad = [n for n in want if n not in declared or
               declared[n].get('required') is not True or
               'schema' not in declared[n]]
        extra = [n for n in declared if n not in want]
        if want or declared:
            out(not bad and not extra, '%s %s: path parameters %s declared%s'
                % (k[0], k[1], ', '.join(sorted(want)) or '(none)',
                   ' (missing or incomplete: %s; extra: %s)'
                   % (bad, extra) if bad or extra else ''))

    # what the dispatcher answers, from the route's flags
    problems = []
    for r in routes:
        k = (r['method'], r['path'])
        if k not in ops:
            continue
        op, item = ops[k]
        name = '%s %s' % k
        resp = op.get('responses', {})
        f = r['flags']
        if not op.get('summary') or not op.get('description'):
            problems.append('%s: summary or description missing' % name)
        for s in ('405', '413'):
            if s not in resp:
                problems.append('%s: %s not documented' % (name, s))
        if '401' not in resp:
            problems.append('%s: 401 not documented' % name)
        if r['role'] != 'viewer' and '403' not in resp:
            problems.append('%s: 403 not documented (role %s)' % (name, r['role']))
        if 'API_JSON' in f:
            if '415' not in resp:
                problems.append('%s: takes JSON, 415 not documented' % name)
            if '400' not in resp:
                problems.append('%s: takes JSON, 400 bad_json not documented' % name)
            rb = deref(doc, op.get('requestBody')) or {}
            if 'application/json' not in rb.get('content', {}):
                problems.append('%s: takes JSON, no application/json requestBody' % name)
            if ('API_OPTJSON' in f) != (rb.get('required') is not True):
                problems.append('%s: requestBody.required does not match API_OPTJSON' % name)
        elif 'API_WEBHOOK' not in f and 'API_RAW' not in f and op.get('requestBody'):
            problems.append('%s: documents a body the route does not take' % name)
        if 'API_WEBHOOK' in f:
            names = [(deref(doc, p) or {}).get('name') for p in
                     item.get('parameters', []) + op.get('parameters', [])]
            if 'X-Vnamig-Signature' not in names:
                problems.append('%s: X-Vnamig-Signature not documented' % name)
            if '415' in resp:
                problems.append('%s: 415 documented, the webhook takes any type' % name)
        want_open = ('api.health_open' if 'API_OPEN_HEALTH' in f else
                     'api.metrics_open' if 'API_OPEN_METRICS' in f else
                     'api.webhooks[].anonymous' if 'API_WEBHOOK' in f else None)
        if op.get('x-vnamig-open') != want_open:
            problems.append('%s: x-vnamig-open %r, flags say %r'
                            % (name, op.get('x-vnamig-open'), want_open))
        if want_open and {} not in op.get('security', []):
            problems.append('%s: may be open, but security does not allow none' % name)
        for s, rs in resp.items():
            rs = deref(doc, rs) or {}
            if not rs.get('description'):
                problems.append('%s: %s has no description' % (name, s))
            if s.startswith('4'):
                sch = rs.get('content', {}).get('application/json', {}).get('schema')
                if sch != {'$ref': '#/components/schemas/Error'}:
                    problems.append('%s: %s is not the Error schema' % (name, s))
    for p in problems:
        out(False, p)
    if not problems:
        out(True, 'every operation: summary, description, 401/403/405/413/415 '
            'and bodies as its flags say, x-vnamig-open, 4xx as Error')

    ids = [op.get('operationId') for m, p, op, item in operations(doc)]
    out(len(ids) == len(set(ids)) and None not in ids, 'operationIds present and unique')

    # every $ref resolves
    refs = []
    def walk(n):
        if isinstance(n, dict):
            for kk, vv in n.items():
                if kk == '$ref' and isinstance(vv, str):
                    refs.append(vv)
                else:
                    walk(vv)
        elif isinstance(n, list):
            for vv in n:
                walk(vv)
    walk(doc)
    bad = sorted(set(x for x in refs if resolve(doc, x) is None))
    for x in bad:
        out(False, '$ref %s resolves' % x)
    if not bad:
        out(True, 'all %d $refs resolve' % len(refs))
    sec = doc.get('components', {}).get('securitySchemes', {}).get('bearer', {})
    out(sec.get('type') == 'http' and sec.get('scheme') == 'bearer',
        'securitySchemes.bearer is HTTP bearer')
    err = doc.get('components', {}).get('schemas', {}).get('Error', {})
    inner = err.get('properties', {}).get('error', {})
    out(err.get('required') == ['error'] and
        set(inner.get('properties', {})) == {'code', 'message', 'detail'} and
        set(inner.get('required', [])) == {'code', 'message'},
        'Error schema: {"error": {code, message, detail}}')
    # the checker catches a wrong body (it is not vacuous)
    e = validate(doc, {'$ref': '#/components/schemas/Error'},
                 {'error': {'code': 1, 'extra': 'x'}})
    out(len(e) == 3, 'the schema checker finds a bad Error body (%d problems)' % len(e))

# -- answers of the daemon: manifest lines METHOD PATTERN STATUS FILE CTYPE
def answers(doc_path, manifest):
    raw, doc = load_doc(doc_path)
    for line in open(manifest):
        if not line.strip():
            continue
        method, pattern, status, path, ctype = line.rstrip('\n').split(' ', 4)
        name = '%s %s -> %s' % (method, pattern, status)
        op = doc.get('paths', {}).get(pattern, {}).get(method.lower())
        if op is None:
            out(False, '%s: operation not documented' % name)
            continue
        rs = deref(doc, op.get('responses', {}).get(status))
        if rs is None:
            out(False, '%s: status not documented' % name)
            continue
        body = open(path, 'rb').read()
        content = rs.get('content')
        if not content:
            out(body == b'', '%s: no content documented, empty body' % name)
            continue
        base = ctype.split(';')[0].strip().lower()
        media = None
        for k in content:
            if k.split(';')[0].strip().lower() == base:
                media = content[k]
        if media is None:
            out(False, '%s: Content-Type %s not documented (%s)'
                % (name, ctype, ', '.join(content)))
            continue
        if base == 'application/json':
            try:
                v = json.loads(body)
            except ValueError as x:
                out(False, '%s: not JSON: %s' % (name, x))
                continue
            errs = validate(doc, media.get('schema', {}), v)
        elif base == 'application/x-ndjson':
            errs = []
            leaf = {'$ref': '#/components/schemas/AuditLeafRecord'}
            for i, l in enumerate(body.decode().splitlines()):
                errs += validate(doc, leaf, json.loads(l), 'line %d' % (i + 1))
        else:
            errs = validate(doc, media.get('schema', {}), body.decode('utf-8', 'replace'))
        out(not errs, '%s: answer (%s) matches the documented schema%s'
            % (name, base, ('; ' + '; '.join(errs[:5])) if errs else ''))

if sys.argv[1] == 'static':
    static(sys.argv[2], sys.argv[3])
else:
    answers(sys.argv[2], sys.argv[3])
PY

run_check() {	# run_check MODE ARGS...: each line of check.py a test
	"$PY" "$CHECK" "$@" > "$T_DIR/check.out" 2>"$T_DIR/check.err"
	rc=$?
	while read -r st name; do
		ok "$st" "$name"
	done < "$T_DIR/check.out"
	ok "$rc" "check.py $1 ran"
	[ "$rc" -eq 0 ] || diag "$(cat "$T_DIR/check.err")"
}

# --- the document against api_routes.h ------------------------------------
run_check static "$DOC" "$ROUTES"

# --- the daemon -------------------------------------------------------------
conf=$T_DIR/vnamigd.yaml
write_conf "$conf" '    - { id: boss, role: admin, token: "admin-for-tests" }
    - { id: look, role: viewer, token: "viewer-for-tests" }
  webhooks:
    - { channel: ris, anonymous: true }'
sed -i -e "s|^storage:|storage:\n  backup_dir: $T_DIR/backups|" \
    -e 's|^peers:|peers:\n  - { name: newpacs, ae_title: NEWPACS, host: 127.0.0.1, port: 11114, role: target }|' \
    "$conf"
start_daemon "$conf"
ok $? "vnamigd starts"
base="http://127.0.0.1:$HTTP_PORT"
OPS='Authorization: Bearer plain-for-tests'
ADM='Authorization: Bearer admin-for-tests'
VIEW='Authorization: Bearer viewer-for-tests'
JSON='Content-Type: application/json'

curl -s -D "$T_DIR/oh" -o "$T_DIR/served.json" -H "$OPS" "$base/api/openapi.json"
like "$(head -1 "$T_DIR/oh")" "^HTTP/1.1 200" "GET /api/openapi.json: 200"
like "$(cat "$T_DIR/oh")" "Content-Type: application/json" "  as application/json"
cmp -s "$T_DIR/served.json" "$DOC"
ok $? "  byte-identical to http/openapi.json"

# call METHOD PATTERN URL-PATH [CURL ARGS...]: make the request and record
# it in the manifest; STATUS is left in $code and the body in $T_DIR/bN.
N=0
: > "$T_DIR/manifest"
call() {
	m=$1 pat=$2 url=$3
	shift 3
	N=$((N + 1))
	code=$(curl -s -X "$m" -o "$T_DIR/b$N" -D "$T_DIR/h$N" \
	    -w '%{http_code}' "$@" "$base$url")
	ct=$(tr -d '\r' < "$T_DIR/h$N" | sed -n 's/^[Cc]ontent-[Tt]ype: *//p' | tail -1)
	echo "$m $pat $code $T_DIR/b$N ${ct:-none}" >> "$T_DIR/manifest"
}
seed='{"source":"legacy","target":"newpacs","study_instance_uids":["1.2.840.1"],"external_id":"e1","priority":7}'

call GET /api/health /api/health
call GET /api/status /api/status -H "$VIEW"
call GET /metrics /metrics -H "$VIEW"
call GET /metrics /metrics
is "$code" 401 "GET /metrics without a key: 401 (api.metrics_open defaults to false)"
call GET /api/keys /api/keys -H "$ADM"
call GET /api/keys /api/keys -H "$OPS"
is "$code" 403 "GET /api/keys as operator: 403"
call POST /api/keys /api/keys -H "$ADM" -H "$JSON" -d '{"id":"k1","role":"viewer"}'
is "$code" 201 "POST /api/keys: 201"
call POST /api/keys /api/keys -H "$ADM" -H "$JSON" -d '{"id":"k1","role":"viewer"}'
is "$code" 409 "  again: 409"
call POST /api/keys /api/keys -H "$ADM" -H "$JSON" -d '{"id":"k 2","role":"viewer"}'
call DELETE '/api/keys/{id}' /api/keys/k1 -H "$ADM"
is "$code" 204 "DELETE /api/keys/k1: 204"
call DELETE '/api/keys/{id}' /api/keys/ops -H "$ADM"
call POST /api/batches /api/batches -H "$OPS" -H "$JSON" -d "$seed"
is "$code" 201 "POST /api/batches: 201"
like "$(tr -d '\r' < "$T_DIR/h$N")" "Location: /api/batches/1" "  with Location"
call POST /api/batches /api/batches -H "$OPS" -H "$JSON" -d "$seed"
is "$code" 200 "  the same external_id again: 200"
call POST /api/batches /api/batches -H "$OPS" -H "$JSON" -d '{"source":"legacy","target":"newpacs","nope":1}'
call POST /api/batches /api/batches -H "$OPS" -H "$JSON" -d '{"source":'
is "$code" 400 "  bad JSON: 400"
call POST /api/batches /api/batches -H "$OPS" -d "$seed"
is "$code" 415 "  without Content-Type: 415"
call POST /api/batches /api/batches -H "$VIEW" -H "$JSON" -d "$seed"
call PUT /api/batches /api/batches -H "$OPS"
is "$code" 405 "PUT /api/batches: 405"
sed -i '$d' "$T_DIR/manifest"	# PUT is no operation: checked by hand
is "$(jq -r .error.code "$T_DIR/b$N")" method_not_allowed "  code method_not_allowed"
call POST /api/batch_sources/webhook/ris /api/batch_sources/webhook/ris \
    --data-binary '{"source":"legacy","target":"newpacs","patient_id":"P1","external_id":"w1"}'
sed -i '$s|^POST /api/batch_sources/webhook/ris |POST /api/batch_sources/webhook/{channel} |' "$T_DIR/manifest"
is "$code" 201 "anonymous webhook channel: 201"
call POST /api/batch_sources/webhook /api/batch_sources/webhook --data-binary "$seed"
is "$code" 401 "default webhook channel without a key: 401"
call POST '/api/batch_sources/webhook/{channel}' /api/batch_sources/webhook/none --data-binary "$seed"
call GET /api/batches '/api/batches?limit=1' -H "$VIEW"
call GET /api/batches '/api/batches?state=paused' -H "$VIEW"
call GET /api/batches '/api/batches?limit=0' -H "$VIEW"
call GET '/api/batches/{id}' /api/batches/1 -H "$VIEW"
call GET '/api/batches/{id}' /api/batches/99 -H "$VIEW"
call GET '/api/batches/{id}/report' /api/batches/1/report -H "$VIEW"
call GET '/api/batches/{id}/report' '/api/batches/1/report?format=csv' -H "$VIEW"
is "$code" 200 "report as CSV: 200"
like "$(head -1 "$T_DIR/b$N")" "^study_uid,series_uid,sop_instance_uid," "  with the header line"
call GET '/api/batches/{id}/report' '/api/batches/1/report?format=xml' -H "$VIEW"
is "$code" 400 "  format=xml: 400"
call GET '/api/batches/{id}/report' /api/batches/99/report -H "$VIEW"
call POST '/api/batches/{id}/pause' /api/batches/1/pause -H "$OPS" -H "$JSON" -d '{"reason":"night"}'
is "$code" 200 "pause: 200"
call POST '/api/batches/{id}/pause' /api/batches/1/pause -H "$OPS"
is "$code" 409 "  again: 409"
call POST '/api/batches/{id}/resume' /api/batches/1/resume -H "$OPS"
call POST '/api/batches/{id}/cancel' /api/batches/2/cancel -H "$OPS"
call GET /api/quarantine /api/quarantine -H "$VIEW"
call GET /api/quarantine '/api/quarantine?limit=0' -H "$VIEW"
call GET '/api/quarantine/{id}' /api/quarantine/1 -H "$VIEW"
is "$code" 404 "GET /api/quarantine/1 of an empty quarantine: 404"
call GET /api/audit/checkpoint /api/audit/checkpoint -H "$VIEW"
call GET '/api/audit/leaf/{seq}' /api/audit/leaf/0 -H "$VIEW"
call GET '/api/audit/leaf/{seq}' /api/audit/leaf/3 -H "$VIEW"
call GET '/api/audit/leaf/{seq}' /api/audit/leaf/x -H "$VIEW"
call GET '/api/audit/leaf/{seq}' /api/audit/leaf/999999 -H "$VIEW"
call GET /api/audit/proof '/api/audit/proof?seq=1' -H "$VIEW"
call GET /api/audit/proof '/api/audit/proof?seq=1&size=999999' -H "$VIEW"
call GET /api/audit/consistency '/api/audit/consistency?from=2' -H "$VIEW"
call GET /api/audit/consistency '/api/audit/consistency' -H "$VIEW"
call GET /api/audit/export /api/audit/export -H "$VIEW"
call GET /api/audit/export '/api/audit/export?zstd=1' -H "$VIEW"
call GET /api/audit/export '/api/audit/export?zstd=2' -H "$VIEW"
call POST /api/checkpoints /api/checkpoints -H "$OPS" -H "$JSON" -d '{"name":"before"}'
is "$code" 201 "POST /api/checkpoints: 201"
call POST /api/checkpoints /api/checkpoints -H "$OPS" -H "$JSON" -d '{"name":"before"}'
call POST /api/checkpoints /api/checkpoints -H "$OPS" -H "$JSON" -d '{"name":".x"}'
call GET /api/checkpoints /api/checkpoints -H "$VIEW"
call POST '/api/checkpoints/{name}/restore' /api/checkpoints/nothere/restore -H "$ADM"
call POST '/api/checkpoints/{name}/restore' /api/checkpoints/before/restore -H "$OPS"
call POST /api/backups /api/backups -H "$ADM"
is "$code" 201 "POST /api/backups: 201"
call GET /api/backups /api/backups -H "$ADM"
call POST '/api/backups/{id}/verify' /api/backups/1/verify -H "$ADM"
is "$code" 200 "POST /api/backups/1/verify: 200"
call POST '/api/backups/{id}/verify' /api/backups/0/verify -H "$ADM"
call GET /api/status /api/status -H 'Authorization: Bearer nope'
call GET /api/status /api/status -H "$VIEW" --data-binary x
is "$code" 400 "GET with a body: 400"

run_check answers "$DOC" "$T_DIR/manifest"

stop_daemon TERM
is "$DAEMON_RC" 0 "clean exit"

done_testing
