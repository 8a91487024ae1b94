#!/bin/sh
# dumpjson.t — vnamig-dump --json, the DICOM JSON model (PS3.18 F.2).
#
# 1. Real files nobody here wrote, against DCMTK's dcm2json: the same
#    tags, VRs and values after the normalization in norm.jq below.
# 2. Every file of the shared corpus and of pydicom's test_files gives
#    valid JSON (jq), parsed or refused.
# 3. Encapsulated pixel data, which dcm2json refuses, against pydicom's
#    to_json_dict(); --bulk-uri against the InlineBinary it replaces.
# 4. Files made here for what the corpora lack: escaping, empty values,
#    DS/IS, PN groups, AT, NaN, invalid UTF-8, sequences, streamed text
#    and numbers, truncation; and a 100 MB pixel data converted in
#    bounded memory.
. "$top_srcdir/t/lib.sh"

: "${VNAMIG_DUMP:=$top_builddir/src/dump/vnamig-dump}"
shared=$top_srcdir/../shared/corpus/dicom
pyd=/usr/lib/python3/dist-packages/pydicom/data
PY=/usr/bin/python3

# The normalization, applied to our output ($a) and dcm2json's ($b)
# together, element by element and into sequence items:
#  - (0008,0005) Specific Character Set: its Value is dropped on both
#    sides: dcm2json transcodes text to UTF-8 and writes "ISO_IR 192",
#    we write the value as stored;
#  - FL and OF numbers are compared as the float they denote (rounded to
#    24 bits, subnormals to 2^-149; -0 as 0): we write the fewest digits
#    that read back as the same float, dcm2json nine;
#  - a private tag (odd group) that is UN in ours but has a VR in
#    dcm2json's is compared by presence only: in implicit VR it has no VR
#    without a private dictionary (PS3.5 6.2.2), DCMTK has one (GEMS...).
# DS and IS are compared as numbers: jq reads both sides, so "5" and
# "5.0", or 1099.3100585938 written as such, compare equal. Nothing else
# is touched: tags, VRs, Value arrays, PN objects, InlineBinary and
# missing or extra elements all show in the diff.
cat > "$T_DIR/norm.jq" <<'EOF'
def fl: if type != "number" then .
	elif . == 0 then 0
	elif fabs < 1.1754943508222875e-38 then ldexp(ldexp(.; 149) | round; -149)
	else (frexp as [$m, $e] | ldexp($m * 16777216 | round; $e - 24)) end;
def one: if (.vr == "FL" or .vr == "OF") and has("Value")
	then .Value |= map(fl) else . end;
def both($a; $b):
	reduce ((($a | keys) + ($b | keys)) | unique)[] as $k ([{}, {}];
		$a[$k] as $x | $b[$k] as $y |
		if $x == null or $y == null then
			(if $x != null then .[0][$k] = $x else . end) |
			(if $y != null then .[1][$k] = $y else . end)
		elif $k == "00080005" then
			.[0][$k] = ($x | del(.Value)) | .[1][$k] = ($y | del(.Value))
		elif $x.vr == "UN" and $y.vr != "UN" and
		    ($k[3:4] | test("[13579BDF]")) then
			.[0][$k] = {vr: "UN"} | .[1][$k] = {vr: "UN"}
		elif $x.vr == "SQ" and $y.vr == "SQ" and
		    ($x.Value | length) == ($y.Value | length) and
		    ($x.Value | length) > 0 then
			[range(0; $x.Value | length) as $i |
			    both($x.Value[$i]; $y.Value[$i])] as $it |
			.[0][$k] = ($x | .Value = [$it[][0]]) |
			.[1][$k] = ($y | .Value = [$it[][1]])
		else
			.[0][$k] = ($x | one) | .[1][$k] = ($y | one)
		end);
both($a[0]; $b[0])[$side] | tostream | select(length == 2) |
	"\(.[0] | map(tostring) | join("/")) \(.[1] | tojson)"
EOF

# flat SIDE OURS THEIRS: the normalized side (0 ours, 1 dcm2json's), one
# sorted line per leaf: path value.
flat() {
	jq -rn --slurpfile a "$2" --slurpfile b "$3" --argjson side "$1" \
		-f "$T_DIR/norm.jq" | sort
}

# ---------------------------------------------------------------------------
# 1. Against dcm2json.

if command -v dcm2json >/dev/null 2>&1 && command -v jq >/dev/null 2>&1; then
	pass "dcm2json and jq are installed"
else
	fail "dcm2json and jq are installed (packages dcmtk, jq)"
	done_testing
fi

# The character set files: text decoded per (0008,0005) to UTF-8 on both
# sides. Debian's DCMTK, built on glibc iconv, refuses the files with
# ISO 2022 IR 87 (chrH31 chrH32 chrJapMulti*: "not supported by the
# utilized character set conversion library"), and in chrSQEncoding it ignores the item's own (0008,0005) (PS3.5
# 7.5.x: an item may have one) and writes the ISO 2022 bytes raw: these
# are skipped here; t/dump.t compares every charset file's text with
# pydicom's decoding instead.
for f in "$shared"/dicomParser/CT1_UNC.*.dcm "$shared"/dcm_qa_ts/1.dcm \
    "$pyd"/test_files/CT_small.dcm "$pyd"/test_files/MR_small.dcm \
    "$pyd"/test_files/rtplan.dcm "$pyd"/test_files/MR_small_bigendian.dcm \
    "$pyd"/charset_files/chr*.dcm; do
	name=${f#"$shared/"}
	name=${name#"$pyd/"}
	if ! "$VNAMIG_DUMP" --json -q "$f" >"$T_DIR/ours.json" 2>"$T_DIR/err"; then
		fail "$name: converts"
		diag "$(cat "$T_DIR/err")"
		continue
	fi
	case $name in charset_files/chrSQEncoding*)
		skip "$name: dcm2json ignores the item's (0008,0005)"
		continue
	esac
	if ! dcm2json "$f" "$T_DIR/theirs.json" 2>"$T_DIR/err"; then
		case $name in charset_files/*)
			skip "$name: dcm2json refuses it: $(head -1 "$T_DIR/err")"
			continue
		esac
		fail "$name: dcm2json converts it"
		diag "$(cat "$T_DIR/err")"
		continue
	fi
	flat 0 "$T_DIR/ours.json" "$T_DIR/theirs.json" >"$T_DIR/n0"
	flat 1 "$T_DIR/ours.json" "$T_DIR/theirs.json" >"$T_DIR/n1"
	leaves=$(wc -l <"$T_DIR/n0")
	case $name in charset_files/*) least=20 ;; *) least=100 ;; esac
	if [ "$leaves" -gt "$least" ] && cmp -s "$T_DIR/n0" "$T_DIR/n1"; then
		pass "$name: same tags, VRs and values as dcm2json ($leaves leaves)"
	else
		fail "$name: same tags, VRs and values as dcm2json ($leaves leaves)"
		diag "< ours, > dcm2json's, normalized:" \
			"$(diff "$T_DIR/n0" "$T_DIR/n1" | cut -c1-200 | head -40)"
	fi
done

px() { "$VNAMIG_DUMP" --json -q "$1" | jq -r '."7FE00010".InlineBinary'; }
[ "$(px "$pyd"/test_files/MR_small.dcm)" = "$(px "$pyd"/test_files/MR_small_bigendian.dcm)" ]
ok $? "big-endian OW pixel data is written little-endian, as from the LE file"

# ---------------------------------------------------------------------------
# 2. Valid JSON for everything.

files=$(find "$shared" "$pyd/test_files" -type f \
	! -name '*.md' ! -name '*.txt' ! -name '*.py' ! -name '*.json' \
	! -name '*.gz' ! -name '*.bz2' ! -name '*.zip' ! -name '*.xml' \
	! -name '*.pdf' ! -name '*.jpg' ! -name '*.png' ! -name '*.j2k' \
	2>/dev/null | sort)
parsed=0
refused=0
bad=
for f in $files; do
	"$VNAMIG_DUMP" --json -q "$f" >"$T_DIR/out" 2>"$T_DIR/err"
	rc=$?
	case $rc in
	0) parsed=$((parsed + 1)) ;;
	1) refused=$((refused + 1)) ;;
	*) bad="$bad $f(status $rc)"; continue ;;
	esac
	if ! jq -e . "$T_DIR/out" >/dev/null 2>"$T_DIR/jqerr"; then
		bad="$bad $f(status $rc: $(head -1 "$T_DIR/jqerr"))"
	fi
done
[ "$parsed" -gt 100 ] && [ -z "$bad" ]
ok $? "valid JSON from all $(echo "$files" | wc -l) corpus files ($parsed parsed, $refused refused: their elements up to the error)"
[ -z "$bad" ] || diag $bad

# Several files: one array, each entry the file's object; unreadable: null.
set -- "$pyd"/test_files/CT_small.dcm "$T_DIR/no-such-file" "$pyd"/test_files/rtplan.dcm
"$VNAMIG_DUMP" --json -q "$@" >"$T_DIR/many.json" 2>"$T_DIR/err"
is "$?" 1 "three files, one unreadable: status 1"
is "$(jq -c 'map(type)' "$T_DIR/many.json")" '["object","null","object"]' \
	"  an array: object, null, object"
"$VNAMIG_DUMP" --json -q "$3" >"$T_DIR/one.json"
is "$(jq -c '.[2]' "$T_DIR/many.json")" "$(jq -c . "$T_DIR/one.json")" \
	"  each entry is the file's own object"
is "$(jq -c 'has("00020010")' "$T_DIR/one.json")" false \
	"  no file meta group by default (as dcm2json)"
"$VNAMIG_DUMP" --json --meta -q "$3" >"$T_DIR/meta.json"
is "$(jq -r '."00020010".Value[0]' "$T_DIR/meta.json")" "1.2.840.10008.1.2" \
	"  --meta adds it"
"$VNAMIG_DUMP" --bulk-uri "$3" >/dev/null 2>&1
is "$?" 2 "--bulk-uri without --json: usage error"

# ---------------------------------------------------------------------------
# 3. Encapsulated pixel data: pydicom's InlineBinary (the items with their
# tags and lengths, no sequence delimiter); --bulk-uri points at the same
# bytes.

for f in "$shared"/dicomParser/encapsulated/single-frame/CT1_UNC.fragmented_bot_jpeg_ls.80.dcm \
    "$shared"/dicomParser/encapsulated/multi-frame/CT0012.fragmented_no_bot_jpeg_baseline.51.dcm \
    "$shared"/dicomParser/encapsulated/multi-frame/CT0012.not_fragmented_bot_rle.dcm; do
	name=${f##*/}
	want=$($PY -c '
import sys, pydicom
d = pydicom.dcmread(sys.argv[1]).to_json_dict(bulk_data_threshold=1 << 40)
print(d["7FE00010"]["InlineBinary"])' "$f" 2>"$T_DIR/err")
	if [ -z "$want" ]; then
		fail "$name: pydicom converts it"
		diag "$(tail -3 "$T_DIR/err")"
		continue
	fi
	is "$(px "$f" | md5sum)" "$(echo "$want" | md5sum)" \
		"$name: encapsulated InlineBinary equals pydicom's"
done

# bulk FILE: the BulkDataURI of the pixel data with --bulk-uri, its bytes
# (dd) in base64 against the InlineBinary without.
bulk() {
	uri=$("$VNAMIG_DUMP" --json --bulk-uri -q "$1" | jq -r '."7FE00010".BulkDataURI')
	path=${uri#file://}
	path=${path%%\?*}
	off=${uri##*offset=}
	off=${off%%&*}
	len=${uri##*length=}
	like "$uri" "^file:///.*\?offset=[0-9]+&length=[0-9]+$" "  ${1##*/}: BulkDataURI $uri"
	[ "$path" = "$(cd "$(dirname "$1")" && pwd -P)/${1##*/}" ]
	ok $? "  its path is the file's absolute path"
	got=$({ dd if="$path" bs=1M iflag=skip_bytes,count_bytes skip="$off" \
		count="$len" 2>/dev/null | base64 -w0; echo; } | md5sum)
	is "$got" "$(px "$1" | md5sum)" "  its bytes are the InlineBinary's"
}
bulk "$shared"/dicomParser/CT1_UNC.explicit_little_endian.dcm
bulk "$shared"/dicomParser/encapsulated/single-frame/CT1_UNC.fragmented_bot_jpeg_ls.80.dcm
"$VNAMIG_DUMP" --json --bulk-uri -q "$pyd"/test_files/image_dfl.dcm >"$T_DIR/dfl.json"
is "$(jq -r '."7FE00010" | keys_unsorted[1]' "$T_DIR/dfl.json")" InlineBinary \
	"deflated: InlineBinary even with --bulk-uri (offsets are of the inflated data)"

# ---------------------------------------------------------------------------
# 4. Made here. mk.py writes Explicit VR Little Endian files with a file
# meta group from (group, element, VR, bytes) lists.

cat > "$T_DIR/mk.py" <<'EOF'
import struct, sys

LONG = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR",
        "UT", "UV"}
U = 0xffffffff

def el(g, e, vr, v, length=None):
    n = len(v) if length is None else length
    if vr in LONG:
        return struct.pack("<HH2sHI", g, e, vr.encode(), 0, n) + v
    return struct.pack("<HH2sH", g, e, vr.encode(), n) + v

def item(body):
    return struct.pack("<HHI", 0xfffe, 0xe000, len(body)) + body

def seq(g, e, items, vr="SQ"):
    return (el(g, e, vr, b"", U) + b"".join(items) +
            struct.pack("<HHI", 0xfffe, 0xe0dd, 0))

def part10(body):
    m = (el(2, 1, "OB", b"\0\1") + el(2, 2, "UI", b"1.2.3\0") +
         el(2, 3, "UI", b"1.2.3.4\0") + el(2, 0x10, "UI", b"1.2.840.10008.1.2.1\0"))
    return (b"\0" * 128 + b"DICM" + el(2, 0, "UL", struct.pack("<I", len(m))) +
            m + body)

def implicit(g, e, v):
    return struct.pack("<HHI", g, e, len(v)) + v

def text():
    # in an UN of undefined length (implicit VR, so 4-byte lengths): a DS
    # and a US too long for explicit VR's 2-byte length, streamed
    un_item = (implicit(0x0008, 0x0100, b"IM") +
               implicit(0x0018, 0x0050, b"\\".join([b"12.5"] * 20000) + b" ") +
               implicit(0x0028, 0x0010, struct.pack("<40000H", *range(40000))))
    ds = b"".join([
        el(0x0008, 0x0000, "UL", struct.pack("<I", 0)),
        el(0x0008, 0x0005, "CS", b"ISO_IR 192"),
        el(0x0008, 0x0008, "CS", b"A\\\\B "),
        el(0x0008, 0x0090, "PN", b""),
        el(0x0008, 0x1030, "LO", b"  lead and trail  "),
        el(0x0010, 0x0010, "PN", "Yamada^Tarou=山田^太郎=やまだ^たろう".encode()),
        el(0x0010, 0x1001, "PN", b"=Ideo^Only\\Doe^John^^^ "),
        el(0x0018, 0x0050, "DS", b"+5.\\.5\\ 1e3 \\-0.0\\abc "),
        el(0x0020, 0x0012, "IS", b"1.5 "),
        el(0x0020, 0x0013, "IS", b"007 "),
        el(0x0028, 0x0009, "AT", struct.pack("<HH", 0x0018, 0x1063)),
        el(0x0029, 0x0010, "LO", b"VNAMIG TEST "),
        el(0x0029, 0x1001, "FL", struct.pack("<ff", 1.5, float("nan"))),
        el(0x0029, 0x1002, "FD", struct.pack("<d", 0.1)),
        el(0x0029, 0x1003, "SS", struct.pack("<h", -2)),
        el(0x0029, 0x1004, "UL", struct.pack("<I", 4294967295)),
        el(0x0029, 0x1005, "SV", struct.pack("<q", -9007199254740993)),
        el(0x0029, 0x1006, "OW", b"\1\2\3\4"),
        el(0x0029, 0x1007, "LT", b'say "hi" \\ back\x01\x1f\ttab\nnl\x7f  '),
        el(0x0029, 0x1008, "LO", b"caf\xe9"),
        seq(0x0029, 0x1009, []),
        seq(0x0029, 0x100a, [item(b""), item(el(0x0008, 0x0100, "SH", b"X "))]),
        seq(0x0029, 0x100b, [item(un_item)], vr="UN"),
        el(0x0029, 0x100c, "UT", b"x" * 70000 + b"  "),
        el(0x7fe0, 0x0010, "OB", b"\xff\xfe"),
    ])
    sys.stdout.buffer.write(part10(ds))

def big():
    # 100 MiB of OW pixel data: a sparse file, written without the bytes.
    n = 100 << 20
    f = open(sys.argv[2], "wb")
    f.write(part10(el(0x0028, 0x0010, "US", struct.pack("<H", 5120)) +
                   el(0x7fe0, 0x0010, "OW", b"", n)))
    f.truncate(f.tell() + n)

{"text": text, "big": big}[sys.argv[1]]()
EOF

if ! $PY "$T_DIR/mk.py" text >"$T_DIR/t.dcm"; then
	fail "mk.py makes the test file"
	done_testing
fi
"$VNAMIG_DUMP" --json "$T_DIR/t.dcm" >"$T_DIR/t.json" 2>"$T_DIR/t.err"
is "$?" 0 "made file: converts"
jq -e . "$T_DIR/t.json" >/dev/null
ok $? "  valid JSON"
v() { jq -c ".\"$1\"${2-}" "$T_DIR/t.json"; }
is "$(v 00080000)" null "  group length (gggg,0000) left out, as dcm2json"
is "$(v 00080008 .Value)" '["A",null,"B"]' "  empty value among others: null"
is "$(v 00080090)" '{"vr":"PN"}' "  empty element: no Value (F.2.5)"
is "$(v 00081030 .Value)" '["lead and trail"]' "  LO: leading and trailing spaces trimmed"
is "$(v 00100010 .Value)" '[{"Alphabetic":"Yamada^Tarou","Ideographic":"山田^太郎","Phonetic":"やまだ^たろう"}]' \
	"  PN: three groups"
is "$(v 00101001 .Value)" '[{"Ideographic":"Ideo^Only"},{"Alphabetic":"Doe^John"}]' \
	"  PN: empty groups left out, trailing ^ trimmed, two values"
is "$(v 00180050 .Value)" '[5,0.5,1000,-0,"abc"]' "  DS: numbers, the one that is not as a string"
like "$(cat "$T_DIR/t.err")" 'tag \(0018,0050\): DS value "abc" is not a number' \
	"  ... with a warning"
grep -q '"Value": \[5, 0.5, 1e3, -0.0, "abc"\]' "$T_DIR/t.json"
ok $? "  DS numbers keep their digits (+5. -> 5, .5 -> 0.5, 1e3)"
is "$(v 00200012 .Value)" '["1.5"]' "  IS 1.5: not an integer, a string"
is "$(v 00200013 .Value)" '[7]' "  IS 007: 7"
is "$(v 00280009 .Value)" '["00181063"]' "  AT: GGGGEEEE"
is "$(v 00291001 .Value)" '[1.5,"NaN"]' "  FL NaN: the string \"NaN\""
like "$(cat "$T_DIR/t.err")" 'FL value NaN has no JSON number' "  ... with a warning"
is "$(v 00291002 .Value)" '[0.1]' "  FD: shortest digits that read back"
is "$(v 00291003 .Value)" '[-2]' "  SS: signed"
is "$(v 00291004 .Value)" '[4294967295]' "  UL: unsigned"
grep -q '"00291005": {"vr": "SV", "Value": \[-9007199254740993\]}' "$T_DIR/t.json"
ok $? "  SV: all 64 bits as written"
is "$(v 00291006 .InlineBinary)" '"AQIDBA=="' "  OW: InlineBinary"
is "$(jq -r '."00291007".Value[0]' "$T_DIR/t.json" | od -An -c | tr -s ' ' | tr -d '\n')" \
	"$(printf 'say "hi" \\ back\001\037\ttab\nnl\177\n' | od -An -c | tr -s ' ' | tr -d '\n')" \
	"  LT: quotes, backslash, controls escaped and read back; not split"
grep -q 'back\\u0001\\u001f\\ttab\\nnl' "$T_DIR/t.json"
ok $? "  ... C0 controls escaped as u00XX, tab and newline as t and n"
is "$(v 00291008 .Value)" '["caf�"]' "  invalid UTF-8: U+FFFD"
like "$(cat "$T_DIR/t.err")" 'tag \(0029,1008\): LO text is not valid in Specific Character Set "ISO_IR 192": 1 bytes replaced' \
	"  ... with a warning"
is "$(v 00291009)" '{"vr":"SQ"}' "  SQ without items: no Value"
is "$(v 0029100A .Value)" '[{},{"00080100":{"vr":"SH","Value":["X"]}}]' \
	"  SQ: an empty item and one with an element"
is "$(v 0029100B ' | .vr, .Value[0]."00080100"')" '"SQ"
{"vr":"SH","Value":["IM"]}' \
	"  UN of undefined length: a sequence in implicit VR (PS3.5 6.2.2)"
is "$(jq -r '."0029100C".Value[0] | length' "$T_DIR/t.json")" 70000 \
	"  UT over 64 KiB, streamed: whole, trailing spaces trimmed"
is "$(v 0029100B '.Value[0]."00180050".Value | [length, unique]')" '[20000,[12.5]]' \
	"  DS over 64 KiB, streamed: 20000 numbers across chunks"
is "$(v 0029100B '.Value[0]."00280010".Value | [length, .[0], .[39999], add]')" \
	'[40000,0,39999,799980000]' "  US over 64 KiB, streamed: 40000 numbers"

# Truncated in the streamed UT (70002 bytes, then 14 of pixel data): the
# JSON is still whole; status 1.
size=$(wc -c <"$T_DIR/t.dcm")
head -c $((size - 14 - 35000)) "$T_DIR/t.dcm" >"$T_DIR/trunc.dcm"
"$VNAMIG_DUMP" --json -q "$T_DIR/trunc.dcm" >"$T_DIR/trunc.json" 2>"$T_DIR/err"
is "$?" 1 "truncated file: status 1"
like "$(cat "$T_DIR/err")" "truncated" "  the error says so"
jq -e . "$T_DIR/trunc.json" >/dev/null
ok $? "  the output is valid JSON all the same"

# 100 MiB of pixel data in bounded memory (the value is never held).
if $PY "$T_DIR/mk.py" big "$T_DIR/big.dcm" && [ -x /usr/bin/time ]; then
	/usr/bin/time -f %M -o "$T_DIR/rss" "$VNAMIG_DUMP" --json "$T_DIR/big.dcm" \
		>"$T_DIR/big.json" 2>"$T_DIR/err"
	is "$?" 0 "100 MiB pixel data: converts"
	kb=$(tail -1 "$T_DIR/rss")
	[ "$kb" -lt 65536 ]
	ok $? "  in under 64 MiB of memory (max RSS ${kb} KiB)"
	is "$(jq -r '."7FE00010".InlineBinary | length' "$T_DIR/big.json")" \
		$(((100 * 1048576 + 2) / 3 * 4)) "  its InlineBinary is all there"
	"$VNAMIG_DUMP" --json --bulk-uri "$T_DIR/big.dcm" >"$T_DIR/big.json"
	like "$(jq -r '."7FE00010".BulkDataURI' "$T_DIR/big.json")" \
		"big.dcm\?offset=[0-9]+&length=104857600$" "  --bulk-uri: a BulkDataURI instead"
	rm -f "$T_DIR/big.dcm" "$T_DIR/big.json"
else
	fail "mk.py makes a 100 MiB file and /usr/bin/time is there"
fi

done_testing
