#!/bin/sh
# dump.t — vnamig-dump over real files nobody here wrote: the shared
# corpus (fo-dicom, dicomParser, dcm_qa_ts) and python3-pydicom's
# test_files and charset_files. Every file either parses or is refused
# with one clear line (byte offset, tag, reason) — never a crash. Files
# known to be valid must parse. Every file's elements and values must
# equal what DCMTK's dcmdump prints, after a documented normalization, or
# the file is listed in t/dump-differ.txt with the reason.
. "$top_srcdir/t/lib.sh"

: "${VNAMIG_DUMP:=$top_builddir/src/dump/vnamig-dump}"
shared=$top_srcdir/../shared/corpus/dicom
pyd=/usr/lib/python3/dist-packages/pydicom/data

PY=/usr/bin/python3	# with python3-pydicom (PATH may hold another python)

files=$(find "$shared" "$pyd/test_files" "$pyd/charset_files" -type f \
	! -name '*.md' ! -name '*.txt' ! -name '*.py' ! -name '*.json' \
	! -name '*.gz' ! -name '*.bz2' ! -name '*.zip' ! -name '*.xml' \
	! -name '*.pdf' ! -name '*.jpg' ! -name '*.png' ! -name '*.j2k' \
	2>/dev/null | sort)
[ -n "$files" ]
ok $? "the corpora are present"

crashed=0
parsed=0
refused=0
for f in $files; do
	"$VNAMIG_DUMP" -q "$f" >"$T_DIR/out" 2>"$T_DIR/err"
	rc=$?
	case $rc in
	0) parsed=$((parsed + 1)) ;;
	1)
		refused=$((refused + 1))
		if ! grep -Eq "^vnamig-dump: .*: (byte [0-9]+, tag \([0-9a-f]{4},[0-9a-f]{4}\): .+|.+: .+)$" "$T_DIR/err"; then
			fail "refusal of ${f#"$top_srcdir/"} is a clear line"
			diag "$(cat "$T_DIR/err")"
		fi
		diag "refused: ${f##*/}: $(tail -1 "$T_DIR/err" | sed 's/^vnamig-dump: [^:]*: //')"
		;;
	*)
		crashed=$((crashed + 1))
		fail "vnamig-dump crashed (status $rc) on $f"
		diag "$(tail -5 "$T_DIR/err")"
		;;
	esac
done
is "$crashed" 0 "no crash on any of $(echo "$files" | wc -l) files ($parsed parsed, $refused refused)"

# Files that are valid and must parse.
must="$shared/dcm_qa_ts/*.dcm $shared/dicomParser/*.dcm
$shared/dicomParser/encapsulated/*/*.dcm $shared/dicomParser/deflate/*
$pyd/test_files/CT_small.dcm $pyd/test_files/MR_small.dcm
$pyd/test_files/MR_small_bigendian.dcm $pyd/test_files/MR_small_implicit.dcm
$pyd/test_files/image_dfl.dcm $pyd/test_files/rtplan.dcm
$pyd/test_files/no_meta_group_length.dcm $pyd/test_files/emri_small_jpeg_2k_lossless.dcm
$pyd/test_files/meta_missing_tsyntax.dcm"
bad=
for f in $must; do
	[ -f "$f" ] || continue
	case $f in *README*) continue ;; esac
	"$VNAMIG_DUMP" -q "$f" >/dev/null 2>"$T_DIR/err" || bad="$bad ${f##*/}"
done
is "${bad:-none}" none "the files known to be valid all parse"

# Conformance with DCMTK's dcmdump, value by value, on every file of the
# corpora: the (tag path, VR, value) records of `vnamig-dump -a` equal
# those of `dcmdump +L +U8 -Un -M +R 64` after the normalization written
# out in t/dumpcmp.py. Files dcmdump +U8 cannot convert for want of a
# character set (Debian's DCMTK has no ISO 2022 IR 87 on glibc iconv, nor
# "ISO-IR 100" spelt so) have their text compared with pydicom's
# decoding instead. A file both refuse is a match too. Every other
# difference must be listed, with its reason, in t/dump-differ.txt, and
# every file listed there must still differ.
differ=$top_srcdir/t/dump-differ.txt
same=0; text=0; both=0; known=0
for f in $files; do
	name=${f#"$shared/"}
	name=${name#"$pyd/"}
	why=$(awk -F'\t' -v n="$name" '$1 == n { print $2 }' "$differ")
	"$VNAMIG_DUMP" -a -q "$f" >"$T_DIR/o" 2>"$T_DIR/oe"
	ro=$?
	dcmdump -q +L +U8 -Un -M +R 64 "$f" >"$T_DIR/t" 2>"$T_DIR/te"
	rt=$?
	if [ $ro -eq 0 ] && [ $rt -eq 0 ]; then
		$PY "$top_srcdir/t/dumpcmp.py" "$T_DIR/o" "$T_DIR/t" >"$T_DIR/cmp"
	elif [ $ro -eq 0 ] && grep -Eq 'character (set|encoding)|SpecificCharacterSet' "$T_DIR/te"; then
		$PY "$top_srcdir/t/dumpcmp.py" --pydicom "$T_DIR/o" "$f" >"$T_DIR/cmp" 2>&1 &&
			text=$((text + 1))
	elif [ $ro -ne 0 ] && [ $rt -ne 0 ]; then
		both=$((both + 1))
		true
	else
		echo "we $( [ $ro -eq 0 ] && echo parse || echo refuse ) it, dcmdump does not: $(head -c 300 "$T_DIR/oe" "$T_DIR/te" | tr '\n' ' ')" >"$T_DIR/cmp"
		false
	fi
	rc=$?
	if [ $rc -eq 0 ] && [ -z "$why" ]; then
		same=$((same + 1))
	elif [ $rc -eq 0 ]; then
		fail "$name: listed in t/dump-differ.txt but matches now: unlist it"
	elif [ -n "$why" ]; then
		known=$((known + 1))
		diag "differs, as listed: $name: $why"
	else
		fail "$name: the same elements and values as dcmdump's"
		diag "< ours, > dcmdump's (normalized):" "$(cut -c1-200 "$T_DIR/cmp")"
	fi
done
pass "conformance with dcmdump: $same of $(echo "$files" | wc -w) files match ($text of them by their text against pydicom's, $both refused by both), $known differ as listed"
[ "$same" -gt 200 ]
ok $? "  ... which is most of them"

# Undecodable text is shown as U+FFFD and reported, never dropped.
"$VNAMIG_DUMP" "$shared/fo-dicom/GH1301.dcm" >"$T_DIR/o" 2>"$T_DIR/e"
like "$(cat "$T_DIR/e")" 'tag \(0010,0040\): 2 bytes of this CS value are not valid in its Specific Character Set' \
	"undecodable bytes are reported with tag and count"
grep -aq '(0010,0040) CS \[��\]' "$T_DIR/o"
ok $? "  ... and shown as U+FFFD"
"$VNAMIG_DUMP" "$pyd/charset_files/chrSQEncoding.dcm" >"$T_DIR/o" 2>&1
grep -q '^    (0010,0010) PN \[ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう\]' "$T_DIR/o"
ok $? "an item's own (0008,0005) decodes its text (ISO 2022 IR 13 + IR 87)"

# Digests: one instance stored in several syntaxes by other tools has one
# canonical digest and one pixel digest; the file hashes all differ.
digests() {	# digests FILE... -> "canonical pixel" per line, sorted unique
	"$VNAMIG_DUMP" -d "$@" | sed 's/.* canonical=\([0-9a-f]*\) pixel=\([0-9a-f]*\)$/\1 \2/' | sort -u
}
set -- "$shared"/dicomParser/CT1_UNC.*.dcm
is "$#" 3 "CT1_UNC in 3 syntaxes (implicit LE, explicit LE, explicit BE)"
is "$(digests "$@" | wc -l)" 1 "  one canonical and pixel digest across them"
is "$("$VNAMIG_DUMP" -d "$@" | sed 's/.*sha256=\([0-9a-f]*\) .*/\1/' | sort -u | wc -l)" 3 \
	"  while their file hashes differ"
set -- "$pyd"/test_files/MR_small.dcm "$pyd"/test_files/MR_small_bigendian.dcm \
	"$pyd"/test_files/MR_small_expb.dcm "$pyd"/test_files/MR_small_implicit.dcm
is "$(digests "$@" | wc -l)" 1 "MR_small in 4 encodings: one canonical and pixel digest"
px=$("$VNAMIG_DUMP" -d "$pyd"/test_files/MR_small.dcm | sed 's/.*pixel=//')
want=$(/usr/bin/python3 -c '
import hashlib, sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
print(hashlib.sha256(ds.PixelData).hexdigest())' "$pyd"/test_files/MR_small.dcm 2>/dev/null)
is "$px" "$want" "  its pixel digest is the SHA-256 of PixelData as pydicom reads it"
# A file over 8 MiB has its file SHA-256 computed in a second thread,
# beside the parse: the same three digests as any independent tool's.
if /usr/bin/python3 "$top_srcdir/contrib/bench/gen-instances" "$T_DIR/big" 16 0 >/dev/null 2>&1; then
	got=$("$VNAMIG_DUMP" -d "$T_DIR/big/large.dcm")
	is "$(echo "$got" | sed 's/.*sha256=\([0-9a-f]*\) .*/\1/')" \
		"$(sha256sum "$T_DIR/big/large.dcm" | cut -d' ' -f1)" \
		"16 MiB file: its SHA-256 (hashed in a thread) is sha256sum's"
	is "$(echo "$got" | sed 's/.*pixel=//')" "$(/usr/bin/python3 -c '
import hashlib, sys, pydicom
print(hashlib.sha256(pydicom.dcmread(sys.argv[1]).PixelData).hexdigest())' "$T_DIR/big/large.dcm")" \
		"  and its pixel digest the SHA-256 of pydicom's PixelData"
else
	fail "gen-instances makes a 16 MiB instance"
fi
other=$(digests "$pyd"/test_files/CT_small.dcm)
[ "$other" != "$(digests "$@")" ]
ok $? "a different instance has a different digest"
# A private sequence over 64 KiB (the parser's chunk), written by pydicom
# as an explicit SQ, then by DCMTK in Implicit VR (dcmconv +ti: a UN there)
# and back in Explicit VR (+te: an explicit UN): one canonical digest
# (the UN forms of so long a value were hashed as bytes).
if /usr/bin/python3 - "$T_DIR/pseq.dcm" <<'PY' 2>"$T_DIR/e" &&
import sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian
ds = Dataset()
ds.PatientID = "P1"
ds.PatientName = "Doe^John"
ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
ds.SOPInstanceUID = "1.2.826.0.1.3680043.9.7433.99.1"
ds.StudyInstanceUID = "1.2.826.0.1.3680043.9.7433.99.2"
ds.SeriesInstanceUID = "1.2.826.0.1.3680043.9.7433.99.3"
ds.Modality = "OT"
items = []
for i in range(5000):
    it = Dataset()
    it.add_new(0x00291001, "LO", "h%04d" % i)
    items.append(it)
blk = ds.private_block(0x0029, "ACME 1.0", create=True)
blk.add_new(0x10, "SQ", Sequence(items))
fm = FileMetaDataset()
fm.MediaStorageSOPClassUID = ds.SOPClassUID
fm.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
fm.TransferSyntaxUID = ExplicitVRLittleEndian
ds.file_meta = fm
ds.is_little_endian = True
ds.is_implicit_VR = False
ds.save_as(sys.argv[1], write_like_original=False)
PY
    dcmconv +ti "$T_DIR/pseq.dcm" "$T_DIR/pseq-im.dcm" &&
    dcmconv +te "$T_DIR/pseq-im.dcm" "$T_DIR/pseq-un.dcm"; then
	[ "$(wc -c <"$T_DIR/pseq.dcm")" -gt 100000 ]
	ok $? "a private sequence over 64 KiB, as pydicom's SQ, DCMTK's implicit and explicit UN"
	is "$("$VNAMIG_DUMP" -d "$T_DIR"/pseq.dcm "$T_DIR"/pseq-im.dcm "$T_DIR"/pseq-un.dcm |
	    sed 's/.* canonical=\([0-9a-f]*\) .*/\1/' | sort -u | wc -l)" 1 \
		"  one canonical digest across the three"
	dcmdump +U8 "$T_DIR/pseq-un.dcm" 2>/dev/null | grep -q '(0029,1010) UN'
	ok $? "  (DCMTK wrote it back as UN)"
else
	fail "pydicom and dcmconv make a private sequence over 64 KiB: $(cat "$T_DIR/e")"
fi

done_testing
