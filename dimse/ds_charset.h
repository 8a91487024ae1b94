/*
 * ds_charset.h — decoding DICOM text values to UTF-8 according to
 * Specific Character Set (0008,0005): PS3.5 6.1 (and 6.1.2.5 for ISO 2022
 * code extensions), PS3.3 C.12.1.1.2 (defined terms, escape sequences).
 * Pure: no I/O; the conversion tables come from glibc iconv.
 *
 * Supported terms: ISO_IR 6 (the default repertoire), ISO_IR 100 101 109
 * 110 126 127 138 144 148 166 13, ISO_IR 192 (UTF-8), GB18030, GBK, and
 * with code extensions ISO 2022 IR 6 100 101 109 110 126 127 138 144 148
 * 166 13, 87 and 159 (JIS X 0208/0212), 149 (KS X 1001), 58 (GB 2312).
 * Spellings with '_', '-' or ' ' swapped, or in lower case ("ISO IR 100"),
 * are accepted, as pydicom does.
 *
 * Decoding model (ISO 2022, 8-bit): G0 is invoked in GL (0x21-0x7E) and
 * G1 in GR (0xA0-0xFF). Value 1 (the default repertoire when empty)
 * designates the initial G0 and G1; an escape sequence of a set named by
 * any term re-designates G0 or G1 until the next reset point (see
 * ds_cs_decode). Single-byte terms without "ISO 2022" decode the same way
 * with their set in G1. ISO_IR 192, GB18030 and GBK allow no code
 * extensions.
 */
#ifndef VNAMIG_DS_CHARSET_H
#define VNAMIG_DS_CHARSET_H

#include <stddef.h>
#include <stdint.h>

#include "dimse/ds_vr.h"

struct ds_charset;	/* a parsed (0008,0005) value and its converters */

/*
 * ds_cs_new: parse the raw (0008,0005) value, len bytes of backslash-
 * separated terms ("\\ISO 2022 IR 87", "ISO_IR 100 "); surrounding spaces
 * and NUL padding are ignored, an empty or NULL value means ISO_IR 6.
 * Opens the iconv converters and builds the tables the terms need. An
 * unknown term, a stand-alone term (ISO_IR 192, GB18030, GBK) combined with
 * others, or a converter glibc lacks still yields an object: the offending
 * term is ignored (an unknown value 1 leaves the default repertoire, so
 * bytes >= 0x80 are undecodable) and ds_cs_error() says why. Never
 * returns NULL (aborts when out of memory); the caller owns the object
 * and frees it with ds_cs_free().
 */
struct ds_charset *ds_cs_new(const char *value, size_t len);

/* ds_cs_free_: close the converters and free cs; NULL is a no-op. Use the
 * ds_cs_free() macro, which also sets the pointer to NULL. */
void ds_cs_free_(struct ds_charset *cs);
#define ds_cs_free(cs) do { ds_cs_free_(cs); (cs) = NULL; } while (0)

/*
 * ds_cs_error: why a term was ignored, e.g. "unknown term 'ISO_IR 999'";
 * NULL when every term is known and usable. Valid until cs is freed.
 */
const char *ds_cs_error(const struct ds_charset *cs);

/*
 * ds_cs_decode: decode len bytes of a value of VR vr into out as UTF-8.
 * Only SH LO ST LT UC UT PN use the character set; any other VR is read
 * as ISO_IR 6. Strip the padding (trailing space or NUL) first: every
 * byte given is decoded.
 *
 * Writes at most cap bytes and, when cap > 0, always NUL-terminates (also
 * on failure, after the last whole character that fitted); 3 * len + 1
 * bytes are always enough. Returns the UTF-8 length written (without the
 * NUL), or -1 when out is too small (or the length would exceed INT_MAX).
 *
 * Every undecodable byte is written as U+FFFD and counted into *bad (when
 * bad is not NULL): bytes >= 0x80 with nothing designated in G1, bytes of
 * a set whose designation was unknown, bytes the set does not map, invalid
 * or truncated multi-byte sequences (UTF-8 is validated), each byte of an
 * escape sequence that is malformed or names a set no term declared (any
 * escape under ISO_IR 192, GB18030 and GBK), and NUL. A literal U+FFFD in
 * valid UTF-8 input is not counted.
 *
 * Reset points (PS3.5 6.1.2.5.3): G0 and G1 return to value 1's sets
 * after CR, LF, FF and TAB, after the value delimiter '\' in the multi-
 * valued VRs SH LO UC PN, and after '^' and '=' in PN, so each PN
 * component group starts in the initial state. A delimiter is only seen
 * while G0 holds a single-byte set (the standard makes the writer switch
 * back first); in a two-byte G0 those bytes belong to a character.
 *
 * cs keeps iconv state: do not decode with the same cs from two threads
 * at once. Allocates nothing.
 */
int ds_cs_decode(const struct ds_charset *cs, enum ds_vr vr,
    const uint8_t *in, size_t len, char *out, size_t cap, size_t *bad);

#endif
