/*
 * t_hl7.c — the HL7 v2 codec from message tables: real-world-shaped
 * ORM^O01, ADT^A08, ADT^A40 and OMI^O23; other encoding characters; every
 * escape; MSH-18 character sets; segment ends; each path form and the
 * refusals of hl7_path_check; malformed messages and limits with their
 * error text; ACKs field by field.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/hl7/hl7.h"
#include "t/unit/tap.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define CR		"\r"

/* --- the messages --------------------------------------------------- */

static const char orm[] =
    "MSH|^~\\&|RIS|HOSP|VNAMIG|ARCHIVE|20240301120000||ORM^O01|MSG00001|P"
    "|2.3.1" CR
    "PID|1||123456^^^HOSP^MR~987^^^OTHER^PI||DOE^JOHN^Q^JR||19700101|M"
    "|||1 MAIN ST^^SPRINGFIELD^IL^62701" CR
    "PV1|1|O|RAD^^^HOSP" CR
    "ORC|NW|PLC123^RIS|FIL456^PACS||SC" CR
    "OBR|1|PLC123^RIS|FIL456^PACS|71020^CHEST 2 VIEWS^C4|||20240301110000"
    "|||||||||||ACC789||||||CR|||||PARPLC&RIS^PARFIL&PACS" CR
    "ZDS|1.2.840.113619.2.55.3.1234^^Application^DICOM" CR;

/* v2.5.1 with MSH-9.3, CRLF segment ends, an HL7 null and empty fields */
static const char a08[] =
    "MSH|^~\\&|ADT|HOSP|VNAMIG|ARCHIVE|20240302080000||ADT^A08^ADT_A01"
    "|A08-77|P|2.5.1\r\n"
    "EVN|A08|20240302080000\r\n"
    "PID|1||555^^^HOSP^MR||SMITH^ANNA||19800202|F|||||\"\"\r\n"
    "PV1|1|I\r\n";

static const char a40[] =
    "MSH|^~\\&|ADT|HOSP|VNAMIG|ARCHIVE|20240303090000||ADT^A40^ADT_A39"
    "|A40-1|P|2.5" CR
    "EVN|A40|20240303090000" CR
    "PID|1||NEW123^^^HOSP^MR||DOE^JANE" CR
    "MRG|OLD123^^^HOSP^MR~OLD9^^^X^PI" CR;

/* LF segment ends */
static const char omi[] =
    "MSH|^~\\&|RIS|HOSP|VNAMIG|ARCHIVE|20240304100000||OMI^O23^OMI_O23"
    "|OMI-9|P|2.5.1\n"
    "PID|1||777^^^HOSP^MR||ROE^RICHARD\n"
    "ORC|NW|P9^RIS|F9^PACS\n"
    "TQ1|1||||||20240305080000\n"
    "OBR|1|P9^RIS|F9^PACS|CTHEAD^CT HEAD\n"
    "IPC|ACC9|RP9|1.2.3.4.5|SPS9|CT\n";

/* '#' as field separator, '$' as component separator */
static const char odd[] =
    "MSH#$~\\&#RIS#HOSP#VNAMIG#ARCHIVE#20240305#"
    "#ORM$O01#ODD-1#P#2.3" CR
    "PID#1##42$$$HOSP~43##DOE$JOHN#A\\F\\B\\S\\C|D^E" CR;

static const char escapes[] =
    "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|E1|P|2.5" CR
    "NTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X4142\\g\\.br\\h\\H\\i\\N\\j"
    "\\Zxx\\k\\.sp2\\l\\.fi\\m|\\Q\\ x\\y|C:\\dir\\file|\\X0D0A\\|\\X4\\"
    "|\\H\\|\\Cxx\\" CR;

/* --- small helpers -------------------------------------------------- */

static struct hl7_msg *
parse_ok(const char *name, const char *buf, size_t len,
    const struct hl7_limits *lim)
{
	struct hl7_err e;
	struct hl7_msg *m = hl7_parse(buf, len, lim, &e);

	if (!ok(m != NULL, "%s: parses", name))
		diag("  error %d: %s", e.code, e.text);
	return m;
}

static void
get_is(const struct hl7_msg *m, const char *path, const char *want)
{
	char out[256];
	const char *got = hl7_get(m, path, out, sizeof(out));

	is_str(got, want, "%s", path);
}

/* --- the message shapes -------------------------------------------- */

static void
t_orm(void)
{
	struct hl7_msg *m = parse_ok("ORM^O01", orm, sizeof(orm) - 1, NULL);

	if (m == NULL)
		return;
	is_str(hl7_msg_type(m), "ORM", "ORM: type");
	is_str(hl7_trigger(m), "O01", "ORM: trigger");
	is_str(hl7_structure(m), "", "ORM: no MSH-9.3");
	is_str(hl7_control_id(m), "MSG00001", "ORM: control id");
	is_str(hl7_sending_app(m), "RIS", "ORM: sending app");
	is_str(hl7_sending_facility(m), "HOSP", "ORM: sending facility");
	is_str(hl7_version(m), "2.3.1", "ORM: version");
	is_str(hl7_charset(m), "", "ORM: no MSH-18");
	ok(hl7_charset_error(m) == NULL, "ORM: default charset is fine");
	is_int(hl7_segment_count(m), 6, "ORM: 6 segments");
	is_str(hl7_segment_name(m, 0), "MSH", "ORM: segment 0");
	is_str(hl7_segment_name(m, 5), "ZDS", "ORM: segment 5");
	ok(hl7_segment_name(m, 6) == NULL, "ORM: no segment 6");
	get_is(m, "MSH-1", "|");
	get_is(m, "MSH-2", "^~\\&");
	get_is(m, "MSH-2.2", NULL);
	get_is(m, "MSH-1#2", NULL);
	get_is(m, "MSH-3", "RIS");
	get_is(m, "MSH-9.2", "O01");
	get_is(m, "OBR-3", "FIL456");
	get_is(m, "OBR-3.2", "PACS");
	get_is(m, "OBR-2", "PLC123");
	get_is(m, "OBR-4.2", "CHEST 2 VIEWS");
	get_is(m, "OBR-18", "ACC789");
	get_is(m, "OBR-24", "CR");
	get_is(m, "OBR-29", "PARPLC");
	get_is(m, "OBR-29.1.2", "RIS");
	get_is(m, "OBR-29.2.1", "PARFIL");
	get_is(m, "OBR-29#1.2.2", "PACS");
	get_is(m, "OBR-29.1.3", NULL);
	get_is(m, "OBR-30", NULL);
	get_is(m, "ORC-1", "NW");
	get_is(m, "ZDS-1", "1.2.840.113619.2.55.3.1234");
	get_is(m, "ZDS-1.4", "DICOM");
	get_is(m, "PID-3", "123456");
	get_is(m, "PID-3#1", "123456");
	get_is(m, "PID-3.4", "HOSP");
	get_is(m, "PID-3#2", "987");
	get_is(m, "PID-3#2.5", "PI");
	get_is(m, "PID-3#3", NULL);
	get_is(m, "PID-5", "DOE");
	get_is(m, "PID-5.2", "JOHN");
	get_is(m, "PID-5.2.1", "JOHN");
	get_is(m, "PID-5.2.2", NULL);
	get_is(m, "PID-11.3", "SPRINGFIELD");
	get_is(m, "PID-2", NULL);
	get_is(m, "PID-99", NULL);
	get_is(m, "XYZ-1", NULL);
	get_is(m, "ZDS-2", NULL);
	/* fallback chains */
	get_is(m, "OBR-18|OBR-3", "ACC789");
	get_is(m, "PID-2|PID-3", "123456");
	get_is(m, "ZZZ-1 | OBR-20 |  ORC-3.1", "FIL456");
	get_is(m, "PID-2|PID-4", NULL);
	hl7_free(m);
	ok(m == NULL, "hl7_free sets NULL");
}

static void
t_a08(void)
{
	struct hl7_msg *m = parse_ok("ADT^A08", a08, sizeof(a08) - 1, NULL);
	char out[64];

	if (m == NULL)
		return;
	is_str(hl7_structure(m), "ADT_A01", "A08: structure");
	is_int(hl7_segment_count(m), 4, "A08: CRLF gives 4 segments");
	get_is(m, "EVN-1", "A08");
	get_is(m, "PID-5.2", "ANNA");
	get_is(m, "PID-13", "\"\"");
	is_int(hl7_lookup(m, "PID-12", out, sizeof(out)), HL7_ABSENT,
	    "A08: empty field is ABSENT");
	is_int(hl7_lookup(m, "PID-14", out, sizeof(out)), HL7_ABSENT,
	    "A08: field past the end is ABSENT");
	get_is(m, "PV1-2", "I");
	is_int(hl7_lookup(m, "PID-5", out, 6), HL7_FOUND,
	    "A08: SMITH fits in 6 bytes");
	is_str(out, "SMITH", "A08: SMITH");
	is_int(hl7_lookup(m, "PID-5", out, 5), HL7_TOOLONG,
	    "A08: SMITH does not fit in 5");
	is_str(out, "", "A08: nothing truncated is returned");
	ok(hl7_get(m, "PID-5", out, 5) == NULL, "A08: hl7_get NULL too");
	is_int(hl7_lookup(m, "PID-5|", out, sizeof(out)), HL7_BADPATH,
	    "A08: bad path");
	hl7_free(m);
}

static void
t_a40(void)
{
	struct hl7_msg *m = parse_ok("ADT^A40", a40, sizeof(a40) - 1, NULL);

	if (m == NULL)
		return;
	is_str(hl7_trigger(m), "A40", "A40: trigger");
	get_is(m, "PID-3", "NEW123");
	get_is(m, "MRG-1", "OLD123");
	get_is(m, "MRG-1#2", "OLD9");
	get_is(m, "MRG-1#2.4", "X");
	hl7_free(m);
}

static void
t_omi(void)
{
	struct hl7_msg *m = parse_ok("OMI^O23", omi, sizeof(omi) - 1, NULL);

	if (m == NULL)
		return;
	is_int(hl7_segment_count(m), 6, "OMI: LF gives 6 segments");
	is_str(hl7_structure(m), "OMI_O23", "OMI: structure");
	get_is(m, "IPC-1", "ACC9");
	get_is(m, "IPC-3", "1.2.3.4.5");
	get_is(m, "IPC-5", "CT");
	get_is(m, "TQ1-7", "20240305080000");
	get_is(m, "IPC-1|OBR-18", "ACC9");
	hl7_free(m);
}

static void
t_odd(void)
{
	struct hl7_msg *m = parse_ok("# and $", odd, sizeof(odd) - 1, NULL);

	if (m == NULL)
		return;
	get_is(m, "MSH-1", "#");
	get_is(m, "MSH-2", "$~\\&");
	get_is(m, "MSH-3", "RIS");
	is_str(hl7_msg_type(m), "ORM", "odd: type");
	is_str(hl7_trigger(m), "O01", "odd: trigger");
	is_str(hl7_control_id(m), "ODD-1", "odd: control id");
	get_is(m, "PID-3", "42");
	get_is(m, "PID-3.4", "HOSP");
	get_is(m, "PID-3#2", "43");
	get_is(m, "PID-5.2", "JOHN");
	/* \F\ and \S\ are this message's '#' and '$'; '|' '^' are data */
	get_is(m, "PID-6", "A#B$C|D^E");
	hl7_free(m);
}

static void
t_escapes(void)
{
	struct hl7_msg *m = parse_ok("escapes", escapes, sizeof(escapes) - 1,
	    NULL);

	if (m == NULL)
		return;
	get_is(m, "NTE-3", "a|b^c&d~e\\fABg\nhijk\nlm");
	get_is(m, "NTE-4", "\\Q\\ x\\y");
	get_is(m, "NTE-5", "C:\\dir\\file");
	get_is(m, "NTE-6", "\r\n");
	get_is(m, "NTE-7", "\\X4\\");
	get_is(m, "NTE-8", NULL);	/* only \H\: empty, so absent */
	get_is(m, "NTE-8|NTE-1", "1");
	get_is(m, "NTE-9", "\\Cxx\\");
	hl7_free(m);
}

/* --- character sets ------------------------------------------------- */

struct cs_case {
	const char	*name;
	const char	*msh18;		/* NULL: no MSH-18 */
	const char	*deflt;		/* limits' charset */
	const char	*value;		/* raw PID-5 */
	const char	*want;		/* UTF-8 */
	int		 cs_err;
};

#define MSH_CS(cs) "MSH|^~\\&|A|B|C|D|20240101||ADT^A08|C1|P|2.5||||||" cs
static const struct cs_case cs_cases[] = {
	{ "8859/1 \\XFC\\", "8859/1", NULL, "M\\XFC\\LLER",
	  "M\xc3\xbcLLER", 0 },
	{ "8859/1 raw byte", "8859/1", NULL, "REN\xc9", "REN\xc3\x89", 0 },
	{ "8859/1 with spaces", " 8859/1 ", NULL, "\xe9", "\xc3\xa9", 0 },
	{ "ISO IR100", "ISO IR100", NULL, "\xe9", "\xc3\xa9", 0 },
	{ "8859/2", "8859/2", NULL, "\xb1", "\xc4\x85", 0 },
	{ "UNICODE UTF-8 raw", "UNICODE UTF-8", NULL, "REN\xc3\x89",
	  "REN\xc3\x89", 0 },
	{ "UNICODE UTF-8 \\Xhh\\", "UNICODE UTF-8", NULL, "\\XC3A9\\",
	  "\xc3\xa9", 0 },
	{ "UTF-8 split \\Xhh\\", "UNICODE UTF-8", NULL, "\\XC3\\\\XA9\\",
	  "\xc3\xa9", 0 },
	{ "UTF-8 invalid byte", "UNICODE UTF-8", NULL, "\\XE9\\x",
	  "\xef\xbf\xbdx", 0 },
	{ "absent: UTF-8", NULL, NULL, "\xc3\xa9", "\xc3\xa9", 0 },
	{ "absent: Latin-1 byte is bad", NULL, NULL, "\xe9", "\xef\xbf\xbd",
	  0 },
	{ "absent, default 8859/1", NULL, "8859/1", "\xe9", "\xc3\xa9", 0 },
	{ "ASCII", "ASCII", NULL, "\xe9", "\xef\xbf\xbd", 0 },
	{ "\\X00\\ is bad", "ASCII", NULL, "a\\X00\\b", "a\xef\xbf\xbd" "b",
	  0 },
	{ "unsupported", "UNICODE UTF-16", NULL, "ok\xe9",
	  "ok\xef\xbf\xbd", 1 },
	{ "unsupported default", NULL, "EBCDIC", "ok", "ok", 1 },
};

static void
t_charsets(void)
{
	struct hl7_limits lim = { 0 };
	struct hl7_msg *m;
	char buf[512], out[64];
	size_t i;
	int n;

	for (i = 0; i < NELEM(cs_cases); i++) {
		const struct cs_case *c = &cs_cases[i];

		n = snprintf(buf, sizeof(buf), "%s%s" CR "PID|1||1||%s" CR,
		    c->msh18 ? MSH_CS("") : "MSH|^~\\&|A|B|C|D|20240101||"
		    "ADT^A08|C1|P|2.5", c->msh18 ? c->msh18 : "", c->value);
		lim.charset = c->deflt;
		m = parse_ok(c->name, buf, (size_t)n, &lim);
		if (m == NULL)
			continue;
		is_str(hl7_get(m, "PID-5", out, sizeof(out)), c->want,
		    "%s: value", c->name);
		is_int(hl7_charset_error(m) != NULL, c->cs_err,
		    "%s: charset error %s", c->name, hl7_charset_error(m) ?
		    hl7_charset_error(m) : "(none)");
		if (c->msh18 != NULL)
			is_str(hl7_charset(m), c->msh18, "%s: hl7_charset",
			    c->name);
		hl7_free(m);
	}
	ok(hl7_charset_check("8859/1") == 0, "charset_check 8859/1");
	ok(hl7_charset_check("unicode utf-8") == 0, "charset_check utf-8");
	ok(hl7_charset_check("8859/15") == -1, "charset_check 8859/15");
	ok(hl7_charset_check(NULL) == -1, "charset_check NULL");
}

/* --- structure: segment ends, BOM ----------------------------------- */

static void
t_structure(void)
{
	static const char mixed[] =
	    "\xef\xbb\xbfMSH|^~\\&|A|B|C|D|1||ADT^A08|S1|P|2.5\r\n\r\n"
	    "PID|1||X\n\rPV1\rZZ1|\rZZ2|a";
	struct hl7_msg *m = parse_ok("BOM, mixed ends, no final CR", mixed,
	    sizeof(mixed) - 1, NULL);

	if (m == NULL)
		return;
	is_int(hl7_segment_count(m), 5, "mixed: empty lines skipped");
	is_str(hl7_segment_name(m, 2), "PV1", "mixed: segment without fields");
	get_is(m, "PV1-1", NULL);
	get_is(m, "ZZ1-1", NULL);
	get_is(m, "ZZ2-1", "a");
	get_is(m, "MSH-3", "A");
	hl7_free(m);
}

/* A line break inside a field of a message whose segments end with CR
 * (a note typed on two lines): data, not the segment's end (the rest was
 * taken for a segment "Please …", and the message refused for ever). */
static void
t_lf_in_field(void)
{
	static const char nte[] =
	    "MSH|^~\\&|RIS|H|VNA|H|202401010000||ORM^O01|N1|P|2.3\r"
	    "PID|1||123^^^H^MR||DOE^JANE\r"
	    "NTE|1||Patient is claustrophobic.\nPlease use open MRI.\r\n"
	    "OBR|1|P1||MRI^MRI BRAIN\r";
	struct hl7_msg *m = parse_ok("LF inside a field", nte,
	    sizeof(nte) - 1, NULL);

	if (m == NULL)
		return;
	is_int(hl7_segment_count(m), 4, "LF in a field: 4 segments");
	get_is(m, "NTE-3", "Patient is claustrophobic.\nPlease use open MRI.");
	get_is(m, "OBR-4.2", "MRI BRAIN");
	hl7_free(m);
}

/* --- paths ---------------------------------------------------------- */

#define SIXTEEN	"AA1-1|BB2-2|CC3-3|DD4-4|EE5-5|FF6-6|GG7-7|HH8-8|II9-9" \
	"|JJ1-1|KK1-1|LL1-1|MM1-1|NN1-1|OO1-1|PP1-1"

static void
t_paths(void)
{
	static const char *const good[] = {
		"PID-3", "PID-3.1", "PID-3.1.2", "PID-3#2", "PID-3#2.1",
		"PID-3#2.1.1", "ZDS-1", "Z01-9999", "OBR-3|OBR-2",
		" PID-3 | PID-2 ", "MSH-18#9999.9999.9999",
		SIXTEEN,
	};
	static const struct {
		const char *path, *err;
	} bad[] = {
		{ "", "'': empty path at offset 0" },
		{ "PID", "'PID' at offset 3: expected '-' and a field number "
		  "after the segment ID" },
		{ "PID-", "'PID-' at offset 4: field number must be 1 to 9999 "
		  "(no leading zeros)" },
		{ "PID-0", "'PID-0' at offset 4: field number must be 1 to 9999"
		  " (no leading zeros)" },
		{ "PID-03", NULL }, { "PID-10000", NULL },
		{ "pid-3", "'pid-3' at offset 0: segment ID must be 3 "
		  "characters A-Z 0-9, the first a letter" },
		{ "1ID-3", NULL }, { "PI-3", NULL }, { "PIDX-3", NULL },
		{ "PID-3.", "'PID-3.' at offset 6: component number must be 1 "
		  "to 9999 (no leading zeros)" },
		{ "PID-3.0", NULL }, { "PID-3#0", NULL }, { "PID-3.1.0", NULL },
		{ "PID-3.1.1.1", "'PID-3.1.1.1' at offset 9: unexpected "
		  "character after the path" },
		{ "PID-3.1#2", "'PID-3.1#2' at offset 7: the repeat (#R) comes "
		  "before the component (.C)" },
		{ "PID-3x", NULL }, { "PID -3", NULL }, { "PID-3 .1", NULL },
		{ "PID-3|", "'PID-3|': empty path at offset 6" },
		{ "|PID-3", NULL }, { "PID-3||PID-4", NULL }, { "PID-3| |", NULL },
		{ SIXTEEN "|QQ1-1", "'" SIXTEEN "|QQ1-1': more than 16 "
		  "alternatives" },
		{ "PID-3|A-1", "'PID-3|A-1' at offset 6: segment ID must be 3 "
		  "characters A-Z 0-9, the first a letter" },
	};
	char err[256], longp[300];
	size_t i;

	for (i = 0; i < NELEM(good); i++) {
		err[0] = 'x';
		is_int(hl7_path_check(good[i], err, sizeof(err)), 0,
		    "path '%s' is good", good[i]);
		is_str(err, "", "path '%s': no error text", good[i]);
	}
	for (i = 0; i < NELEM(bad); i++) {
		err[0] = '\0';
		is_int(hl7_path_check(bad[i].path, err, sizeof(err)), -1,
		    "path '%s' refused: %s", bad[i].path, err);
		if (bad[i].err != NULL)
			is_str(err, bad[i].err, "path '%s': reason",
			    bad[i].path);
		else
			ok(err[0] != '\0', "path '%s': has a reason",
			    bad[i].path);
	}
	memset(longp, 'A', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	is_int(hl7_path_check(longp, err, sizeof(err)), -1, "long path");
	is_str(err, "path too long (more than 255 bytes)", "long path: reason");
	is_int(hl7_path_check(NULL, err, sizeof(err)), -1, "NULL path");
	is_int(hl7_path_check("PID-", NULL, 0), -1, "no error buffer");
	is_int(hl7_path_check("PID-3", err, 8), 0, "small error buffer");
}

/* --- malformed messages and limits ---------------------------------- */

#define MSH12	"MSH|^~\\&|A|B|C|D|1||ADT^A08|X|P|2.5" CR	/* 36 bytes */

static const struct hl7_limits small = {
	.max_bytes = 200, .max_segments = 3, .max_fields = 12,
	.max_repeats = 2, .max_components = 3, .max_subcomponents = 2,
};

static const struct bad_case {
	const char	*name;
	const char	*msg;
	int		 code;
	const char	*seg;
	uint32_t	 seq, field;
	const char	*text;
} bads[] = {
	{ "empty", "", 100, "", 1, 0,
	  "no MSH segment at the start of the message (found '')" },
	{ "no MSH", "PID|1||X" CR, 100, "", 1, 0,
	  "no MSH segment at the start of the message (found 'PID|1||X')" },
	{ "MSH-1 missing", "MSH", 102, "MSH", 1, 1,
	  "MSH-1: field separator missing (the segment ends after 'MSH' at "
	  "byte 3)" },
	{ "MSH-1 missing before CR", "MSH" CR "PID|1", 102, "MSH", 1, 1,
	  "MSH-1: field separator missing (the segment ends after 'MSH' at "
	  "byte 3)" },
	{ "MSH-1 alphanumeric", "MSHA^~\\&A", 102, "MSH", 1, 1,
	  "MSH-1: field separator 0x41 is not a printable, non-alphanumeric "
	  "character" },
	{ "MSH-2 too short", "MSH|^~" CR, 102, "MSH", 1, 2,
	  "MSH-2: encoding characters too short ('^~', 2 of 4: component, "
	  "repetition, escape, subcomponent)" },
	{ "MSH-2 empty", "MSH||A|B", 102, "MSH", 1, 2,
	  "MSH-2: encoding characters too short ('', 0 of 4: component, "
	  "repetition, escape, subcomponent)" },
	{ "MSH-2 duplicate", "MSH|^~^&|A", 102, "MSH", 1, 2,
	  "MSH-2: encoding character '^' at byte 6 repeats the field "
	  "separator or an earlier one" },
	{ "MSH-2 cut by the field separator", "MSH#^~#&#A", 102, "MSH", 1, 2,
	  NULL },
	{ "MSH-2 too long", "MSH|^~\\&#X|A", 102, "MSH", 1, 2,
	  "MSH-2: encoding characters too long ('^~\\&#X': 4, or 5 with the "
	  "truncation character)" },
	{ "MSH-2 space", "MSH|^~\\& |A", 102, "MSH", 1, 2,
	  "MSH-2: encoding character 0x20 at byte 8 is not a printable, "
	  "non-alphanumeric character" },
	{ "truncated MSH", "MSH|^~\\&", 101, "MSH", 1, 3,
	  "MSH truncated: it ends after MSH-2 at byte 8 (no MSH-3 to MSH-12)" },
	{ "truncated MSH before CR", "MSH|^~\\&" CR "PID|1", 101, "MSH", 1, 3,
	  NULL },
	{ "bad segment ID", MSH12 "PID|1" CR "P D|x" CR, 100, "", 3, 0,
	  "segment 3: invalid segment ID at byte 42 (found 'P D|x'; want 3 "
	  "characters A-Z 0-9 then '|')" },
	{ "lower-case segment ID", MSH12 "pid|1" CR, 100, "", 2, 0, NULL },
	{ "4-character segment ID", MSH12 "PIDX|1" CR, 100, "", 2, 0, NULL },
	{ "short segment ID", MSH12 "PI" CR, 100, "", 2, 0, NULL },
	{ "control character", MSH12 "\x01" CR, 100, "", 2, 0,
	  "segment 2: invalid segment ID at byte 36 (found '\\x01'; want 3 "
	  "characters A-Z 0-9 then '|')" },
	{ "second MSH", MSH12 MSH12, 100, "MSH", 2, 0,
	  "segment 2: a second MSH at byte 36 (batches are not supported)" },
	{ "too many segments", MSH12 "PID" CR "PV1" CR "ZZ1" CR, 207, "", 4, 0,
	  "too many segments (more than 3) at byte 44" },
	{ "too many fields", MSH12 "PID|1|2|3|4|5|6|7|8|9|10|11|12|13" CR, 207,
	  "PID", 2, 13,
	  "segment 2 (PID): too many fields (more than 12) at byte 67" },
	{ "too many MSH fields", "MSH|^~\\&|A|B|C|D|1||ADT^A08|X|P|2.5|" CR,
	  207, "MSH", 1, 13,
	  "segment 1 (MSH): too many fields (more than 12) at byte 36" },
	{ "too many repeats", MSH12 "PID|1||a~b~c" CR, 207, "PID", 2, 3,
	  "segment 2 (PID), field 3: too many repeats (more than 2) at byte "
	  "46" },
	{ "too many components", MSH12 "PID|1||a~b^c^d^e" CR, 207, "PID", 2,
	  3, "segment 2 (PID), field 3: too many components in repeat 2 (more "
	  "than 3) at byte 50" },
	{ "too many subcomponents", MSH12 "PID|1||a^b&c&d" CR, 207, "PID", 2,
	  3, "segment 2 (PID), field 3: too many subcomponents in component 2 "
	  "of repeat 1 (more than 2) at byte 48" },
	{ "too large", MSH12 "NTE|1||"
	  "0123456789012345678901234567890123456789012345678901234567890123456"
	  "0123456789012345678901234567890123456789012345678901234567890123456"
	  "01234567890123456789012" CR, 207, "", 0, 0,
	  "message too large (201 bytes, limit 200)" },
};

static void
t_bad(void)
{
	struct hl7_err e;
	struct hl7_msg *m;
	size_t i;

	for (i = 0; i < NELEM(bads); i++) {
		const struct bad_case *c = &bads[i];

		memset(&e, 0x55, sizeof(e));
		m = hl7_parse(c->msg, strlen(c->msg), &small, &e);
		ok(m == NULL, "%s: refused: %s", c->name, e.text);
		hl7_free(m);
		is_int(e.code, c->code, "%s: code", c->name);
		is_str(e.seg, c->seg, "%s: segment", c->name);
		is_int(e.seq, c->seq, "%s: sequence", c->name);
		is_int(e.field, c->field, "%s: field", c->name);
		if (c->text != NULL)
			is_str(e.text, c->text, "%s: text", c->name);
	}
	ok(hl7_parse(NULL, 0, NULL, NULL) == NULL, "NULL buffer, no error");
	{
		static const char nul[] = MSH12 "PID|1||a\0b" CR;

		m = hl7_parse(nul, sizeof(nul) - 1, NULL, &e);
		ok(m == NULL, "NUL byte refused");
		is_int(e.code, 102, "NUL byte: code");
		is_str(e.text, "segment 2 (PID), field 3: NUL byte at byte 44",
		    "NUL byte: text");
		is_int(e.field, 3, "NUL byte: field");
	}
	/* the limits are only the ones asked for */
	m = hl7_parse(MSH12 "PID|1||a~b^c^d^e" CR, sizeof(MSH12) + 16, NULL,
	    NULL);
	ok(m != NULL, "default limits take what small refuses");
	hl7_free(m);
}

/* --- ACKs ----------------------------------------------------------- */

/* ack_of: build the ACK of msg[0..len) and parse it back. */
static struct hl7_msg *
ack_of(const char *name, const char *msg, size_t len, const char *code,
    const char *ctl, const struct hl7_err *e, char *out, size_t cap)
{
	struct hl7_msg *m = parse_ok(name, msg, len, NULL), *a;
	size_t n;

	if (m == NULL)
		return NULL;
	n = hl7_ack(m, code, ctl, "20240301120005", e, out, cap);
	ok(n > 0 && n < cap && strlen(out) == n, "%s: ACK built (%zu bytes)",
	    name, n);
	hl7_free(m);
	a = parse_ok(name, out, strlen(out), NULL);
	return a;
}

static void
t_ack_aa(void)
{
	char out[1024];
	struct hl7_msg *a = ack_of("AA", orm, sizeof(orm) - 1, "AA",
	    "ACK0001", NULL, out, sizeof(out));

	is_str(out, "MSH|^~\\&|VNAMIG|ARCHIVE|RIS|HOSP|20240301120005||"
	    "ACK^O01^ACK|ACK0001|P|2.3.1" CR "MSA|AA|MSG00001" CR,
	    "AA: the whole ACK");
	if (a == NULL)
		return;
	get_is(a, "MSH-2", "^~\\&");
	get_is(a, "MSH-3", "VNAMIG");
	get_is(a, "MSH-4", "ARCHIVE");
	get_is(a, "MSH-5", "RIS");
	get_is(a, "MSH-6", "HOSP");
	get_is(a, "MSH-7", "20240301120005");
	get_is(a, "MSH-9.1", "ACK");
	get_is(a, "MSH-9.2", "O01");
	get_is(a, "MSH-9.3", "ACK");
	get_is(a, "MSH-10", "ACK0001");
	get_is(a, "MSH-11", "P");
	get_is(a, "MSH-12", "2.3.1");
	get_is(a, "MSA-1", "AA");
	get_is(a, "MSA-2", "MSG00001");
	is_int(hl7_segment_count(a), 2, "AA: no ERR");
	hl7_free(a);
}

static void
t_ack_ae(void)
{
	struct hl7_err e = { .code = HL7_E_REQUIRED_MISSING, .seg = "PID",
	    .seq = 3, .field = 3, .text = "PID-3 missing" };
	char out[1024];
	struct hl7_msg *a = ack_of("AE v2.5.1", a08, sizeof(a08) - 1, "AE",
	    "ACK-2", &e, out, sizeof(out));

	is_str(out, "MSH|^~\\&|VNAMIG|ARCHIVE|ADT|HOSP|20240301120005||"
	    "ACK^A08^ACK|ACK-2|P|2.5.1" CR "MSA|AE|A08-77" CR
	    "ERR||PID^3^3|101^Required field missing^HL70357|E||||"
	    "PID-3 missing" CR, "AE: the whole ACK");
	if (a == NULL)
		return;
	get_is(a, "MSA-1", "AE");
	get_is(a, "MSA-2", "A08-77");
	get_is(a, "MSA-3", NULL);
	get_is(a, "ERR-1", NULL);
	get_is(a, "ERR-2.1", "PID");
	get_is(a, "ERR-2.2", "3");
	get_is(a, "ERR-2.3", "3");
	get_is(a, "ERR-3.1", "101");
	get_is(a, "ERR-3.2", "Required field missing");
	get_is(a, "ERR-3.3", "HL70357");
	get_is(a, "ERR-4", "E");
	get_is(a, "ERR-8", "PID-3 missing");
	hl7_free(a);

	/* no location, no text: ERR-2 empty, no ERR-8 */
	e = (struct hl7_err){ .code = HL7_E_UNSUPPORTED_VERSION };
	a = ack_of("AE no location", a40, sizeof(a40) - 1, "AE", "ACK-3", &e,
	    out, sizeof(out));
	ok(strstr(out, CR "ERR|||203^Unsupported version id^HL70357|E" CR) !=
	    NULL, "AE no location: ERR");
	hl7_free(a);
	/* a segment but no field */
	e = (struct hl7_err){ .code = 100, .seg = "ZDS", .seq = 7 };
	a = ack_of("AE no field", a40, sizeof(a40) - 1, "AE", "ACK-3", &e,
	    out, sizeof(out));
	ok(strstr(out, CR "ERR||ZDS^7|100^") != NULL, "AE no field: ERR-2");
	hl7_free(a);
	/* NULL error: 207 */
	a = ack_of("AE NULL", a40, sizeof(a40) - 1, "AE", "ACK-4", NULL, out,
	    sizeof(out));
	ok(strstr(out, CR "ERR|||207^Application internal error^HL70357|E"
	    CR) != NULL, "AE NULL: 207");
	hl7_free(a);
}

static void
t_ack_ar(void)
{
	struct hl7_err e = { .code = HL7_E_UNSUPPORTED_TYPE, .seg = "MSH",
	    .seq = 1, .field = 9, .text = "ORM not accepted | here" };
	char out[1024];
	struct hl7_msg *a = ack_of("AR v2.3.1", orm, sizeof(orm) - 1, "AR",
	    "ACK-5", &e, out, sizeof(out));

	is_str(out, "MSH|^~\\&|VNAMIG|ARCHIVE|RIS|HOSP|20240301120005||"
	    "ACK^O01^ACK|ACK-5|P|2.3.1" CR "MSA|AR|MSG00001|ORM not accepted "
	    "\\F\\ here" CR "ERR|MSH^1^9^200&Unsupported message type&HL70357"
	    CR, "AR: the whole ACK");
	if (a == NULL)
		return;
	get_is(a, "MSA-1", "AR");
	get_is(a, "MSA-3", "ORM not accepted | here");
	get_is(a, "ERR-1.1", "MSH");
	get_is(a, "ERR-1.2", "1");
	get_is(a, "ERR-1.3", "9");
	get_is(a, "ERR-1.4.1", "200");
	get_is(a, "ERR-1.4.2", "Unsupported message type");
	get_is(a, "ERR-1.4.3", "HL70357");
	hl7_free(a);
	a = ack_of("AR old NULL", orm, sizeof(orm) - 1, "AR", "ACK-6", NULL,
	    out, sizeof(out));
	ok(strstr(out, CR "ERR|^^^207&Application internal error&HL70357" CR)
	    != NULL, "AR old NULL: ERR-1 without location");
	hl7_free(a);
}

static void
t_ack_escaping(void)
{
	static const char msg[] =
	    "MSH|^~\\&|RIS|HOSP|VN|AR|20240101||ORU^R01|ID\\F\\1\\S\\2\\E\\3"
	    "|P|2.5" CR;
	struct hl7_err e = { .code = 207, .text = "a|b~c\\d&e^f\r\tg" };
	struct hl7_msg *m, *a;
	char out[1024], v[128];

	m = parse_ok("escape-worthy control id", msg, sizeof(msg) - 1, NULL);
	if (m == NULL)
		return;
	is_str(hl7_control_id(m), "ID|1^2\\3", "their control id unescaped");
	hl7_ack(m, "AE", "A|B^C~D\\E&F", "2024^01", &e, out, sizeof(out));
	ok(strstr(out, CR "MSA|AE|ID\\F\\1\\S\\2\\E\\3" CR) != NULL,
	    "MSA-2 is their MSH-10 as sent");
	ok(strstr(out, "|2024\\S\\01||ACK^R01^ACK|A\\F\\B\\S\\C\\R\\D\\E\\E"
	    "\\T\\F|") != NULL, "our timestamp and control id escaped");
	ok(strstr(out, "|a\\F\\b\\R\\c\\E\\d\\T\\e\\S\\f\\X0D\\\\X09\\g" CR)
	    != NULL, "our text escaped");
	hl7_free(m);
	a = parse_ok("escaped ACK", out, strlen(out), NULL);
	if (a == NULL)
		return;
	get_is(a, "MSA-2", "ID|1^2\\3");
	get_is(a, "MSH-10", "A|B^C~D\\E&F");
	get_is(a, "MSH-7", "2024^01");
	get_is(a, "ERR-8", "a|b~c\\d&e^f\r\tg");
	is_str(hl7_get(a, "MSA-2", v, sizeof(v)), hl7_get(a, "MSA-2", v,
	    sizeof(v)), "stable");
	hl7_free(a);
}

static void
t_ack_encodings(void)
{
	static const char latin1[] = MSH_CS("8859/1") CR;
	static const char ascii[] = MSH_CS("ASCII") CR;
	static const char utf8[] = MSH_CS("UNICODE UTF-8") CR;
	struct hl7_err e = { .code = 207, .text = "M\xc3\xbcller \xe2\x82\xac"
	    "\xff" };
	struct hl7_msg *m;
	char out[1024];

	m = parse_ok("odd ACK", odd, sizeof(odd) - 1, NULL);
	if (m != NULL) {
		hl7_ack(m, "AA", "C#1", "20240101", NULL, out, sizeof(out));
		is_str(out, "MSH#$~\\&#VNAMIG#ARCHIVE#RIS#HOSP#20240101#"
		    "#ACK$O01$ACK#C\\F\\1#P#2.3" CR "MSA#AA#ODD-1" CR,
		    "odd: ACK with the message's encoding characters");
		hl7_free(m);
	}
	m = parse_ok("latin1 ACK", latin1, sizeof(latin1) - 1, NULL);
	if (m != NULL) {
		hl7_ack(m, "AE", "C1", "20240101", &e, out, sizeof(out));
		ok(strstr(out, "|2.5||||||8859/1" CR) != NULL,
		    "latin1: MSH-18 copied");
		ok(strstr(out, "|M\xfcller ??" CR) != NULL,
		    "latin1: text in Latin-1, the rest '?'");
		hl7_free(m);
	}
	m = parse_ok("ascii ACK", ascii, sizeof(ascii) - 1, NULL);
	if (m != NULL) {
		hl7_ack(m, "AE", "C1", "20240101", &e, out, sizeof(out));
		ok(strstr(out, "|M?ller ??" CR) != NULL, "ascii: '?'");
		hl7_free(m);
	}
	m = parse_ok("utf8 ACK", utf8, sizeof(utf8) - 1, NULL);
	if (m != NULL) {
		hl7_ack(m, "AE", "C1", "20240101", &e, out, sizeof(out));
		ok(strstr(out, "|M\xc3\xbcller \xe2\x82\xac?" CR) != NULL,
		    "utf8: UTF-8 kept, invalid byte '?'");
		hl7_free(m);
	}
}

static void
t_ack_contract(void)
{
	static const char notrig[] =
	    "MSH|^~\\&|A|B|C|D|1||ORM|X|P|2.4" CR;
	struct hl7_err e = { .code = 999 };
	struct hl7_msg *m = parse_ok("contract", orm, sizeof(orm) - 1, NULL);
	char out[1024], small_[16];
	size_t n, k;

	if (m == NULL)
		return;
	n = hl7_ack(m, "AA", "C1", "T", NULL, out, sizeof(out));
	is_int(n, strlen(out), "contract: length");
	k = hl7_ack(m, "AA", "C1", "T", NULL, small_, sizeof(small_));
	is_int(k, n, "contract: short buffer gives the full length");
	is_int(strlen(small_), sizeof(small_) - 1, "contract: prefix fits");
	ok(memcmp(small_, out, sizeof(small_) - 1) == 0, "contract: prefix");
	is_int(hl7_ack(m, "AA", "C1", "T", NULL, NULL, 0), n,
	    "contract: cap 0 measures");
	is_int(hl7_ack(m, "XX", "C1", "T", NULL, out, sizeof(out)), 0,
	    "contract: bad code");
	is_str(out, "", "contract: bad code leaves \"\"");
	is_int(hl7_ack(m, "aa", "C1", "T", NULL, out, sizeof(out)), 0,
	    "contract: lower-case code");
	is_int(hl7_ack(m, NULL, "C1", "T", NULL, out, sizeof(out)), 0,
	    "contract: NULL code");
	is_int(hl7_ack(m, "AA", "", "T", NULL, out, sizeof(out)), 0,
	    "contract: empty control id");
	is_int(hl7_ack(m, "AA", "C1", NULL, NULL, out, sizeof(out)), 0,
	    "contract: NULL timestamp");
	is_int(hl7_ack(m, "AE", "C1", "T", &e, out, sizeof(out)), 0,
	    "contract: unknown 0357 code");
	ok(hl7_ack(m, "AA", "C1", "T", &e, out, sizeof(out)) > 0,
	    "contract: e ignored for AA");
	hl7_free(m);
	m = parse_ok("no trigger", notrig, sizeof(notrig) - 1, NULL);
	if (m != NULL) {
		hl7_ack(m, "AA", "C1", "T", NULL, out, sizeof(out));
		ok(strstr(out, "|T||ACK|C1|P|2.4" CR) != NULL,
		    "no trigger: MSH-9 is ACK");
		hl7_free(m);
	}
	is_str(hl7_err_text(101), "Required field missing", "err_text 101");
	ok(hl7_err_text(208) == NULL, "err_text 208 unknown");
}

/* A message hl7_parse refuses still gets its AR from its MSH. */
static void
t_parse_msh(void)
{
	static const char many[] = MSH12 "PID" CR "PV1" CR "ZZ1" CR "ZZ2" CR;
	struct hl7_err e;
	struct hl7_msg *m;
	char out[512];

	m = hl7_parse(many, sizeof(many) - 1, &small, &e);
	ok(m == NULL, "parse_msh: hl7_parse refuses");
	m = hl7_parse_msh(many, sizeof(many) - 1, &small, NULL);
	if (!ok(m != NULL, "parse_msh: the MSH parses"))
		return;
	is_int(hl7_segment_count(m), 1, "parse_msh: only MSH");
	hl7_ack(m, "AR", "C9", "T", &e, out, sizeof(out));
	is_str(out, "MSH|^~\\&|C|D|A|B|T||ACK^A08^ACK|C9|P|2.5" CR
	    "MSA|AR|X" CR "ERR|||207^Application internal error^HL70357|E||||"
	    "too many segments (more than 3) at byte 44" CR,
	    "parse_msh: AR with the parse error");
	hl7_free(m);
	ok(hl7_parse_msh("MSH|^~", 6, NULL, &e) == NULL && e.code == 102,
	    "parse_msh: bad MSH still refused");
}

int
main(void)
{
	t_orm();
	t_a08();
	t_a40();
	t_omi();
	t_odd();
	t_escapes();
	t_charsets();
	t_structure();
	t_lf_in_field();
	t_paths();
	t_bad();
	t_ack_aa();
	t_ack_ae();
	t_ack_ar();
	t_ack_escaping();
	t_ack_encodings();
	t_ack_contract();
	t_parse_msh();
	return done_testing();
}
