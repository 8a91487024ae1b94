#!/bin/sh
# verifymig.t — vnamig-verify migration: a batch report written by hand
# and a directory of Part 10 files made with pydicom (explicit and
# implicit VR little endian, one in a subdirectory), whose dataset
# SHA-256 Python computes on its own (from the group length pydicom
# writes, not by walking the elements). Each case: all there (exit 0),
# one missing, one with a flipped byte (exit 1; a warning with --level
# dataset), extra files (warnings, exit 0), a lying (0002,0000), a report
# that does not add up (exit 1), reports and directories that cannot be
# read (exit 3), bad command lines (exit 2), --json.
. "$top_srcdir/t/lib.sh"
: "${VNAMIG_VERIFY:=$top_builddir/src/verify/vnamig-verify}"
PY=/usr/bin/python3		# the one with pydicom

# verify NAME ARGS...: run vnamig-verify, stdout and stderr into
# $T_DIR/NAME.out; sets RC.
verify() {
	of=$T_DIR/$1.out
	shift
	"$VNAMIG_VERIFY" "$@" >"$of" 2>&1
	RC=$?
}

out() { cat "$T_DIR/$1.out"; }

# expect NAME WANT-RC ARGS...: run, check the exit status; on a surprise
# show what it printed.
expect() {
	name=$1
	want=$2
	shift 2
	verify "$name" "$@"
	is "$RC" "$want" "$name: exit $want"
	[ "$RC" = "$want" ] || sed 's/^/# /' "$T_DIR/$name.out"
}

# --- the files and their hashes ------------------------------------------

mkdir -p "$T_DIR/src/sub" "$T_DIR/spare"
$PY - "$T_DIR" <<'EOF'
import hashlib, json, struct, sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (ExplicitVRLittleEndian, ImplicitVRLittleEndian,
    generate_uid)
T = sys.argv[1]
study = "1.2.826.0.1.3680043.8.498.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
def make(path, sop, implicit, pixels):
    m = FileMetaDataset()
    m.MediaStorageSOPClassUID = CT
    m.MediaStorageSOPInstanceUID = sop
    m.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else \
        ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = m
    ds.is_little_endian = True
    ds.is_implicit_VR = implicit
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = study + ".1"
    ds.PatientName = "Test^Verify"
    ds.PatientID = "VM-1"
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(pixels)
    ds.preamble = b"\0" * 128
    ds.save_as(path, write_like_original=False)
# The dataset: after the meta group, whose length (0002,0000) gives (a
# 12-byte element: tag, VR UL, 2-byte length, 4-byte value).
def dataset_sha(path):
    b = open(path, "rb").read()
    assert b[128:132] == b"DICM" and b[132:138] == b"\2\0\0\0UL"
    glen = struct.unpack("<I", b[140:144])[0]
    return hashlib.sha256(b[144 + glen:]).hexdigest()
uids = ["1.2.826.0.1.3680043.8.498.1.%d" % i for i in range(1, 7)]
files = [("src/a.dcm", False), ("src/b.dcm", True), ("src/sub/c.dcm", False),
    ("spare/d.dcm", False), ("spare/e.dcm", True), ("spare/x.dcm", False)]
sha = {}
for (f, implicit), uid, k in zip(files, uids, range(6)):
    make(T + "/" + f, uid, implicit, [k] * 32)
    sha[uid] = dataset_sha(T + "/" + f)
def row(uid, outcome, level, sent=True):
    return {"study_uid": study, "series_uid": study + ".1",
        "sop_instance_uid": uid, "sop_class_uid": CT,
        "source_sha256": sha[uid], "sent_sha256": sha[uid] if sent else None,
        "target_sha256": sha[uid] if level == "bytes" else None,
        "level": level, "time": "2024-05-01T10:00:00Z", "transforms": [],
        "outcome": outcome, "status": 0, "reason": None,
        "detail": {"attempts": [1, 2.5e0, True, False, None, "\u00e9\ud83d\ude00"]}}
rows = [row(uids[0], "migrated", "bytes"), row(uids[1], "migrated", "count"),
    row(uids[2], "migrated", "bytes"),
    row(uids[3], "quarantined", None, False),
    row(uids[4], "skipped_present", None, False)]
rows[3]["reason"] = "verify_mismatch"
summary = {"expected": 5, "migrated": 3, "skipped_present": 1,
    "quarantined": 1, "failed": 0, "pending": 0,
    "quarantined_by_reason": {"verify_mismatch": 1},
    "accounted_percent": 100.0, "studies": {"done": 1, "total": 1},
    "unresolved": 0}
rep = {"batch": {"id": 7, "state": "done"}, "summary": summary,
    "studies": [{"study_uid": study, "counts": {"expected": 5}}],
    "instances": rows, "unresolved": []}
json.dump(rep, open(T + "/report.json", "w"), indent=1)
def variant(name, fn):
    r = json.loads(json.dumps(rep))
    fn(r)
    json.dump(r, open(T + "/" + name, "w"))
variant("bad-migrated.json", lambda r: r["summary"].update(migrated=4))
variant("bad-expected.json", lambda r: r["summary"].update(expected=6))
variant("bad-dup.json", lambda r: (r["instances"].append(r["instances"][0]),
    r["summary"].update(migrated=4, expected=6)))
variant("no-summary.json", lambda r: r.pop("summary"))
variant("no-instances.json", lambda r: r.pop("instances"))
for i, u in enumerate(uids):
    open(T + "/uid%d" % (i + 1), "w").write(u + "\n")
    open(T + "/sha%d" % (i + 1), "w").write(sha[u] + "\n")
EOF
ok $? "pydicom writes six Part 10 files and the report"
u1=$(cat "$T_DIR/uid1"); u2=$(cat "$T_DIR/uid2"); u3=$(cat "$T_DIR/uid3")
u4=$(cat "$T_DIR/uid4"); u6=$(cat "$T_DIR/uid6")
s3=$(cat "$T_DIR/sha3")
is "$(dataset_sha "$T_DIR/src/b.dcm")" "$(cat "$T_DIR/sha2")" \
	"the hashes agree with lib.sh's dataset_sha (implicit VR file)"
R=$T_DIR/report.json

# --- all there -------------------------------------------------------------

expect all 0 migration --report "$R" --dir "$T_DIR/src"
script -qec "\"$VNAMIG_VERIFY\" migration --report \"$R\" --dir \"$T_DIR/src\"" \
    /dev/null >"$T_DIR/tty.out" 2>&1
like "$(tr '\r' '\n' <"$T_DIR/tty.out")" "^[0-9]+ files read and hashed, [0-9.]+ MiB, [0-9.]+ MiB/s" \
    "  on a terminal it shows its progress reading the files"
like "$(out all)" "^3 migrated: 3 ok, 0 missing, 0 differ; report adds up: yes\$" \
	"  all: 3 ok, the report adds up"
like "$(out all)" "^not checked: 1 skipped_present, 1 quarantined, 0 failed, 0 pending\$" \
	"  the other rows are counted by outcome"
is "$(grep -Ec '^(MISSING|DIFFERS|EXTRA|REPORT|UNCHECKED|NOT-PART10|META)' "$T_DIR/all.out")" 0 \
	"  no finding"
expect verbose 0 migration --report "$R" --dir "$T_DIR/src" --verbose
like "$(out verbose)" "^OK bytes $u3 .*/src/sub/c.dcm: $s3\$" \
	"  --verbose: OK bytes, with the file found in a subdirectory"
is "$(grep -c '^OK bytes' "$T_DIR/verbose.out")" 3 "  one OK line per instance"

# options before the command, in any order
expect order 0 --dir "$T_DIR/src" migration --level bytes --report "$R"

# --- one missing -------------------------------------------------------------

cp -r "$T_DIR/src" "$T_DIR/miss"
rm "$T_DIR/miss/b.dcm"
expect missing 1 migration --report "$R" --dir "$T_DIR/miss"
like "$(out missing)" "^MISSING $u2: study [0-9.]+: no file" "  a MISSING line names it"
like "$(out missing)" "^3 migrated: 2 ok, 1 missing, 0 differ; report adds up: yes\$" \
	"  summary: 1 missing"

# --- one with a flipped byte in its dataset -------------------------------

cp -r "$T_DIR/src" "$T_DIR/flip"
$PY - "$T_DIR/flip/sub/c.dcm" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[-5] ^= 0x40		# in the pixel data
open(p, "wb").write(b)
EOF
flipped=$(dataset_sha "$T_DIR/flip/sub/c.dcm")
expect differs 1 migration --report "$R" --dir "$T_DIR/flip"
like "$(out differs)" "^DIFFERS $u3 .*/flip/sub/c.dcm: the dataset in the file has SHA-256 $flipped, vnamigd sent $s3; vnamigd's read-back had what was sent" \
	"  a DIFFERS line with both hashes, disagreeing with vnamigd's read-back"
like "$(out differs)" "^3 migrated: 2 ok, 0 missing, 1 differ; report adds up: yes\$" \
	"  summary: 1 differs"
expect reencoded 0 migration --report "$R" --dir "$T_DIR/flip" --level dataset
like "$(out reencoded)" "^DIFFERS \(re-encoded\?\) $u3 " \
	"  --level dataset: DIFFERS (re-encoded?), a warning"
like "$(out reencoded)" "^note: .*canonical dataset digest is not recomputed" \
	"  and it says the canonical digest is not recomputed"

# --- extra files -------------------------------------------------------------

cp -r "$T_DIR/src" "$T_DIR/extra"
cp "$T_DIR/spare/d.dcm" "$T_DIR/spare/x.dcm" "$T_DIR/extra/"
echo "not DICOM" > "$T_DIR/extra/README.txt"
expect extra 0 migration --report "$R" --dir "$T_DIR/extra"
like "$(out extra)" "^EXTRA $u6 .*/x.dcm: the report has no row" \
	"  EXTRA: a file the report does not name"
like "$(out extra)" "^EXTRA $u4 .*/d.dcm: not a migrated instance of the report: it is quarantined there" \
	"  EXTRA: a file of a quarantined row, with its outcome"
like "$(out extra)" "^NOT-PART10 .*/README.txt: " "  a file that is not Part 10: a warning"
like "$(out extra)" "^3 migrated: 3 ok, 0 missing, 0 differ; report adds up: yes\$" \
	"  still 3 ok"

# --- a group length that lies: the elements are walked ---------------------

cp -r "$T_DIR/src" "$T_DIR/glen"
$PY - "$T_DIR/glen/a.dcm" <<'EOF'
import struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
glen = struct.unpack("<I", b[140:144])[0]
b[140:144] = struct.pack("<I", glen + 8)	# would swallow a dataset element
open(p, "wb").write(b)
EOF
expect glen 0 migration --report "$R" --dir "$T_DIR/glen"
like "$(out glen)" "^META .*/glen/a.dcm: \(0002,0000\) says" \
	"  a wrong (0002,0000): a META warning, the dataset found by walking"

# --- a deflated dataset: hashed as stored (odd: one zero byte added) -------

mkdir -p "$T_DIR/dfl"
cp /usr/lib/python3/dist-packages/pydicom/data/test_files/image_dfl.dcm \
	"$T_DIR/dfl/"
$PY - "$T_DIR/dfl/image_dfl.dcm" "$(dataset_sha "$T_DIR/dfl/image_dfl.dcm")" \
	"$T_DIR/dfl.json" <<'EOF'
import json, sys
import pydicom
uid = pydicom.dcmread(sys.argv[1], stop_before_pixels=True) \
    .file_meta.MediaStorageSOPInstanceUID
rows = [{"sop_instance_uid": uid, "outcome": "migrated", "level": "bytes",
    "sent_sha256": sys.argv[2], "target_sha256": sys.argv[2]}]
json.dump({"summary": {"expected": 1, "migrated": 1, "skipped_present": 0,
    "quarantined": 0, "failed": 0, "pending": 0}, "instances": rows},
    open(sys.argv[3], "w"))
EOF
expect deflated 0 migration --report "$T_DIR/dfl.json" --dir "$T_DIR/dfl"
like "$(out deflated)" "^1 migrated: 1 ok, 0 missing, 0 differ; report adds up: yes\$" \
	"  a deflated dataset of odd length, hashed as lib.sh's dataset_sha does"

# --- reports that do not add up ---------------------------------------------

expect badsum 1 migration --report "$T_DIR/bad-migrated.json" --dir "$T_DIR/src"
like "$(out badsum)" "^REPORT: summary.migrated is 4, but 3 rows are migrated" \
	"  summary.migrated against the rows"
like "$(out badsum)" "report adds up: no\$" "  report adds up: no"
expect badexp 1 migration --report "$T_DIR/bad-expected.json" --dir "$T_DIR/src"
like "$(out badexp)" "^REPORT: summary: .* = 5, but expected is 6" \
	"  the outcomes against expected"
expect baddup 1 migration --report "$T_DIR/bad-dup.json" --dir "$T_DIR/src"
like "$(out baddup)" "^REPORT: $u1 is in 2 rows" "  a UID in two rows"
expect nosum 1 migration --report "$T_DIR/no-summary.json" --dir "$T_DIR/src"
like "$(out nosum)" "^REPORT: no \"summary\"" "  no summary"

# --- inputs that cannot be read ---------------------------------------------

expect noreport 3 migration --report "$T_DIR/nonexistent.json" --dir "$T_DIR/src"
like "$(out noreport)" "cannot read the report .*nonexistent.json" "  names the report"
printf '{"summary": {}, "instances": [ {"outcome": "migrated",' > "$T_DIR/cut.json"
expect cutreport 3 migration --report "$T_DIR/cut.json" --dir "$T_DIR/src"
like "$(out cutreport)" "not valid JSON: byte [0-9]+" "  a cut report: not JSON, at which byte"
expect noinst 3 migration --report "$T_DIR/no-instances.json" --dir "$T_DIR/src"
like "$(out noinst)" "no \"instances\" array" "  a JSON that is not a report"
expect nodir 3 migration --report "$R" --dir "$T_DIR/nonexistent"
expect filedir 3 migration --report "$R" --dir "$R"

# --- bad usage ---------------------------------------------------------------

expect usage-nodir 2 migration --report "$R"
like "$(out usage-nodir)" "needs --dir" "  says what is missing"
expect usage-noreport 2 migration --dir "$T_DIR/src"
expect usage-level 2 migration --report "$R" --dir "$T_DIR/src" --level pixel
expect usage-arg 2 migration --report "$R" --dir "$T_DIR/src" extra
expect usage-mixed 2 migration --report "$R" --dir "$T_DIR/src" --key "$R"
expect usage-audit 2 audit "$T_DIR/src" --dir "$T_DIR/src"
expect usage-cmd 2 migrate --report "$R" --dir "$T_DIR/src"
expect usage-none 2
"$VNAMIG_VERIFY" --help | grep -q "vnamig-verify migration --report REPORT.json --dir DIR"
ok $? "--help shows the migration synopsis"

# --- --json ----------------------------------------------------------------

expect json 1 migration --report "$R" --dir "$T_DIR/flip" --json
$PY - "$T_DIR/json.out" "$u3" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
assert (j["migrated"], j["ok"], j["missing"], j["differ"]) == (3, 2, 0, 1), j
assert j["report_adds_up"] is True and j["exit"] == 1, j
assert j["not_checked"] == {"skipped_present": 1, "quarantined": 1,
    "failed": 0, "pending": 0}, j
p = [x for x in j["problems"] if x["kind"] == "DIFFERS"]
assert len(p) == 1 and p[0]["subject"] == sys.argv[2] and p[0]["failure"], j
EOF
ok $? "  --json: the same counts and the DIFFERS problem, as JSON"

done_testing
