/*
 * t_ident.c — Q/R identifiers (dimse_ident.h): command-line keys, their
 * refusals, encoding in Implicit VR LE, Explicit VR LE and BE as byte
 * tables written out by hand from PS3.5 7.1, and decoding of what a
 * peer returns (padding stripped, binary numbers as text, sequences and
 * long values skipped).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dimse/dimse_ident.h"
#include "t/unit/tap.h"

static struct dimse_ident id, back;

static void
refused(const char *arg, const char *want)
{
	char err[256] = "";

	dimse_ident_init(&id);
	ok(dimse_ident_arg(&id, arg, err, sizeof(err)) < 0 &&
	    strstr(err, want) != NULL, "\"%.20s\" refused: %s", arg, err);
}

int
main(void)
{
	char err[256];
	uint8_t b[512];
	size_t n;
	struct ds_error pe;

	/* ---- arguments ---- */
	dimse_ident_init(&id);
	ok(dimse_ident_arg(&id, "StudyInstanceUID", err, sizeof(err)) == 0,
	    "a keyword alone is a return key");
	ok(dimse_ident_arg(&id, "QueryRetrieveLevel=STUDY", err,
	    sizeof(err)) == 0, "KEY=VALUE");
	ok(dimse_ident_arg(&id, "0010,0020=PAT1", err, sizeof(err)) == 0,
	    "gggg,eeee=VALUE");
	ok(dimse_ident_arg(&id, "(0010,0010)", err, sizeof(err)) == 0,
	    "(gggg,eeee)");
	ok(dimse_ident_arg(&id, "0009,1001:LO=x", err, sizeof(err)) == 0,
	    "a private tag with its VR");
	ok(dimse_ident_arg(&id, "NumberOfStudyRelatedInstances", err,
	    sizeof(err)) == 0, "an IS return key");
	is_int(id.n, 6, "six keys");
	is_int(id.e[0].tag, DS_TAG(0x0008, 0x0052), "kept in tag order: first");
	is_int(id.e[1].tag, DS_TAG(0x0009, 0x1001), "  second");
	is_int(id.e[5].tag, DS_TAG(0x0020, 0x1208), "  last");
	is_int(id.e[1].vr, DS_VR_LO, "  the given VR");
	is_str(dimse_ident_get(&id, DS_TAG(0x0010, 0x0020)), "PAT1",
	    "dimse_ident_get");
	ok(dimse_ident_arg(&id, "PatientID=PAT2", err, sizeof(err)) == 0 &&
	    id.n == 6, "a repeated key replaces the earlier value");
	is_str(dimse_ident_get(&id, DS_TAG(0x0010, 0x0020)), "PAT2",
	    "  with the new value");
	dimse_ident_del(&id, DS_TAG(0x0009, 0x1001));
	ok(id.n == 5 && dimse_ident_get(&id, DS_TAG(0x0009, 0x1001)) == NULL,
	    "dimse_ident_del");

	refused("NoSuchKeyword=1", "no attribute has the keyword");
	refused("0009,1001=1", "not in the dictionary");
	refused("=x", "expected KEY");
	refused("0010,00zz=x", "hex");
	refused("PatientID:ZZ=1", "unknown VR");
	refused("PixelData", "cannot be a O");
	refused("CommandField=1", "group");
	refused("ReferencedStudySequence=x", "sequence key is sent empty");
	refused("Rows=70000", "not a list of at most 512 US numbers");
	refused("Rows=-1", "not a list of at most 512 US numbers");
	{
		/* 257 UL values are 1028 bytes: over the value limit */
		char many[32 + 2 * 257] = "SimpleFrameList=";
		size_t k = strlen(many);

		for (int i = 0; i < 257; i++) {
			many[k++] = '0';
			many[k++] = '\\';
		}
		many[k - 1] = '\0';
		refused(many, "at most 256 UL numbers");
	}
	refused("PatientID=a\tb", "control character 0x09");
	{
		char big[DIMSE_IDENT_VALUE_MAX + 20];

		memset(big, 'x', sizeof(big));
		memcpy(big, "PatientID=", 10);
		big[sizeof(big) - 1] = '\0';
		refused(big, "too long");
	}
	dimse_ident_init(&id);
	for (unsigned i = 0; i < DIMSE_IDENT_MAX; i++)
		dimse_ident_set(&id, DS_TAG(0x0011, 0x1000 + i), DS_VR_LO, "x",
		    err, sizeof(err));
	ok(dimse_ident_set(&id, DS_TAG(0x0013, 0x1000), DS_VR_LO, "x", err,
	    sizeof(err)) < 0 && strstr(err, "more than"), "a full identifier "
	    "refuses one more: %s", err);

	/* ---- encoding ---- */
	dimse_ident_init(&id);
	dimse_ident_arg(&id, "QueryRetrieveLevel=STUDY", err, sizeof(err));
	dimse_ident_arg(&id, "StudyInstanceUID=1.2.3", err, sizeof(err));
	dimse_ident_arg(&id, "PatientName", err, sizeof(err));
	dimse_ident_arg(&id, "Rows=512", err, sizeof(err));
	{
		static const uint8_t want_ile[] = {
			0x08, 0x00, 0x52, 0x00, 6, 0, 0, 0,
			'S', 'T', 'U', 'D', 'Y', ' ',
			0x10, 0x00, 0x10, 0x00, 0, 0, 0, 0,
			0x20, 0x00, 0x0d, 0x00, 6, 0, 0, 0,
			'1', '.', '2', '.', '3', 0,
			0x28, 0x00, 0x10, 0x00, 2, 0, 0, 0, 0x00, 0x02,
		};
		static const uint8_t want_ele[] = {
			0x08, 0x00, 0x52, 0x00, 'C', 'S', 6, 0,
			'S', 'T', 'U', 'D', 'Y', ' ',
			0x10, 0x00, 0x10, 0x00, 'P', 'N', 0, 0,
			0x20, 0x00, 0x0d, 0x00, 'U', 'I', 6, 0,
			'1', '.', '2', '.', '3', 0,
			0x28, 0x00, 0x10, 0x00, 'U', 'S', 2, 0, 0x00, 0x02,
		};
		static const uint8_t want_ebe[] = {
			0x00, 0x08, 0x00, 0x52, 'C', 'S', 0, 6,
			'S', 'T', 'U', 'D', 'Y', ' ',
			0x00, 0x10, 0x00, 0x10, 'P', 'N', 0, 0,
			0x00, 0x20, 0x00, 0x0d, 'U', 'I', 0, 6,
			'1', '.', '2', '.', '3', 0,
			0x00, 0x28, 0x00, 0x10, 'U', 'S', 0, 2, 0x02, 0x00,
		};

		is_int(dimse_ident_encode(&id, &ds_ts_implicit_le, NULL, 0),
		    sizeof(want_ile), "sizing call");
		n = dimse_ident_encode(&id, &ds_ts_implicit_le, b, sizeof(b));
		ok(n == sizeof(want_ile) && memcmp(b, want_ile, n) == 0,
		    "Implicit VR LE bytes");
		n = dimse_ident_encode(&id, &ds_ts_explicit_le, b, sizeof(b));
		ok(n == sizeof(want_ele) && memcmp(b, want_ele, n) == 0,
		    "Explicit VR LE bytes");
		n = dimse_ident_encode(&id, &ds_ts_explicit_be, b, sizeof(b));
		ok(n == sizeof(want_ebe) && memcmp(b, want_ebe, n) == 0,
		    "Explicit VR BE bytes");
		ok(dimse_ident_encode(&id, &ds_ts_explicit_le, b, 10) ==
		    sizeof(want_ele), "too small a buffer: the size, nothing "
		    "written past it");
	}

	/* ---- decoding ---- */
	dimse_ident_arg(&id, "ModalitiesInStudy=CT\\MR", err, sizeof(err));
	dimse_ident_arg(&id, "0009,1001:SL=-5\\7", err, sizeof(err));
	n = dimse_ident_encode(&id, &ds_ts_explicit_le, b, sizeof(b));
	ok(dimse_ident_decode(b, n, &ds_ts_explicit_le, &back, &pe) == 0,
	    "what we encode decodes");
	ok(back.n == id.n, "  the same number of elements (%u)", back.n);
	for (unsigned i = 0; i < id.n && i < back.n; i++)
		ok(back.e[i].tag == id.e[i].tag && back.e[i].vr == id.e[i].vr &&
		    strcmp(back.e[i].value, id.e[i].value) == 0,
		    "  (%04x,%04x) \"%s\" back as \"%s\"",
		    (unsigned)(id.e[i].tag >> 16), (unsigned)(id.e[i].tag &
		    0xffff), id.e[i].value, back.e[i].value);
	{
		/* A peer's answer: a name padded with spaces, a UID padded
		 * with NUL, a sequence and a long OB value that are skipped,
		 * in Implicit VR LE (VRs from the dictionary). */
		static const uint8_t rsp[] = {
			0x08, 0x00, 0x05, 0x00, 10, 0, 0, 0,
			'I', 'S', 'O', '_', 'I', 'R', ' ', '1', '0', '0',
			0x08, 0x00, 0x14, 0x11, 0xff, 0xff, 0xff, 0xff,
			0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff,
			0x08, 0x00, 0x50, 0x11, 2, 0, 0, 0, '1', 0,
			0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0,
			0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0,
			0x10, 0x00, 0x10, 0x00, 4, 0, 0, 0, 'A', 0xe9, ' ', ' ',
			0x20, 0x00, 0x0d, 0x00, 4, 0, 0, 0, '1', '.', '2', 0,
		};

		ok(dimse_ident_decode(rsp, sizeof(rsp), &ds_ts_implicit_le,
		    &back, &pe) == 0, "a peer's answer decodes");
		is_int(back.n, 3, "  three elements kept");
		is_int(back.skipped, 1, "  the sequence skipped (counted once)");
		is_str(dimse_ident_get(&back, DS_TAG(0x0010, 0x0010)),
		    "A\xe9", "  PN padding stripped, bytes as sent");
		is_str(dimse_ident_get(&back, DS_TAG(0x0020, 0x000d)), "1.2",
		    "  UI NUL padding stripped");
		is_str(dimse_ident_get(&back, DS_TAG(0x0008, 0x0005)),
		    "ISO_IR 100", "  the character set kept");
		{
			/* a repeated tag and one out of order: skipped */
			static const uint8_t odd[] = {
				0x10, 0x00, 0x20, 0x00, 2, 0, 0, 0, 'A', ' ',
				0x08, 0x00, 0x52, 0x00, 2, 0, 0, 0, 'X', ' ',
				0x10, 0x00, 0x20, 0x00, 2, 0, 0, 0, 'B', ' ',
			};

			ok(dimse_ident_decode(odd, sizeof(odd),
			    &ds_ts_implicit_le, &back, &pe) == 0 &&
			    back.n == 1 && back.skipped == 2 &&
			    strcmp(back.e[0].value, "A") == 0, "an element "
			    "out of order and a repeated one are skipped: the "
			    "first kept");
		}
		ok(dimse_ident_decode(rsp, sizeof(rsp) - 3,
		    &ds_ts_implicit_le, &back, &pe) < 0 && pe.msg[0] != '\0',
		    "a truncated answer is an error: %s", pe.msg);
	}
	return done_testing();
}
