#!/bin/sh
# dump.t — vnamig-dump over real files nobody here wrote: the shared
# corpus (fo-dicom, dicomParser, dcm_qa_ts) and python3-pydicom's
# test_files and charset_files. Every file either parses or is refused
# with one clear line (byte offset, tag, reason) — never a crash. Files
# known to be valid must parse, and for each of those DCMTK's dcmdump also
# reads, our element count must equal dcmdump's.
. "$top_srcdir/t/lib.sh"

: "${VNAMIG_DUMP:=$top_builddir/src/dump/vnamig-dump}"
shared=$top_srcdir/../shared/corpus/dicom
pyd=/usr/lib/python3/dist-packages/pydicom/data

# Element lines start with "(gggg,eeee)" in our output and dcmdump's alike;
# items and delimiters are not elements in either count.
count_elements() { grep -aE '^ *\([0-9a-f]{4},[0-9a-f]{4}\) ' | grep -avE '^ *\(fffe,' | wc -l; }

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

# Files that are valid and must parse, with dcmdump's element count.
must="$shared/dcm_qa_ts/*.dcm $shared/dicomParser/*.dcm
$shared/dicomParser/encapsulated/*/*.dcm $shared/dicomParser/deflate/*
$pyd/test_files/CT_small.dcm $pyd/test_files/MR_small.dcm
$pyd/test_files/MR_small_bigendian.dcm $pyd/test_files/MR_small_implicit.dcm
$pyd/test_files/image_dfl.dcm $pyd/test_files/rtplan.dcm
$pyd/test_files/no_meta_group_length.dcm $pyd/test_files/emri_small_jpeg_2k_lossless.dcm"
for f in $must; do
	[ -f "$f" ] || continue
	case $f in *README*) continue ;; esac
	name=${f#"$shared/"}
	name=${name#"$pyd/"}
	if ! "$VNAMIG_DUMP" -q "$f" >"$T_DIR/out" 2>"$T_DIR/err"; then
		fail "$name parses"
		diag "$(cat "$T_DIR/err")"
		continue
	fi
	pass "$name parses"
	if dcmdump -q +L "$f" >"$T_DIR/dcm" 2>/dev/null; then
		is "$(count_elements < "$T_DIR/out")" "$(count_elements < "$T_DIR/dcm")" \
			"  $name: element count equals dcmdump's"
	fi
done

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
other=$(digests "$pyd"/test_files/CT_small.dcm)
[ "$other" != "$(digests "$@")" ]
ok $? "a different instance has a different digest"

done_testing
