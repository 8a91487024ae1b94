/*
 * t_commit.c — Storage Commitment datasets (dimse_commit.h): the
 * N-ACTION-RQ dataset as a byte table written out from PS3.4 J.3.2 and
 * PS3.5 7.5 (undefined-length sequence and items), in Implicit VR LE and
 * Explicit VR LE; reports decoded (committed and failed instances, the
 * reason, big endian), refused (no Transaction UID, an item without its
 * instance UID, truncated); generated UIDs.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dimse/dimse_commit.h"
#include "t/unit/tap.h"

#define UI(g, e, n)	(g) & 0xff, (g) >> 8, (e) & 0xff, (e) >> 8, n, 0, 0, 0
#define ITEM		0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff
#define ITEM_END	0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0
#define SEQ_END		0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0

int
main(void)
{
	struct dimse_commit_ref refs[2] = {
		{ .sop_class = "1.2.840.10008.5.1.4.1.1.2",
		    .sop_instance = "1.2.3" },
		{ .sop_class = "1.2.840.10008.5.1.4.1.1.4",
		    .sop_instance = "1.2.34" },
	};
	static const uint8_t want_ile[] = {
		UI(0x0008, 0x1195, 6), '9', '.', '8', '7', '6', 0,
		0x08, 0x00, 0x99, 0x11, 0xff, 0xff, 0xff, 0xff,
		ITEM,
		UI(0x0008, 0x1150, 26), '1', '.', '2', '.', '8', '4', '0', '.',
		'1', '0', '0', '0', '8', '.', '5', '.', '1', '.', '4', '.', '1',
		'.', '1', '.', '2', 0,
		UI(0x0008, 0x1155, 6), '1', '.', '2', '.', '3', 0,
		ITEM_END,
		ITEM,
		UI(0x0008, 0x1150, 26), '1', '.', '2', '.', '8', '4', '0', '.',
		'1', '0', '0', '0', '8', '.', '5', '.', '1', '.', '4', '.', '1',
		'.', '1', '.', '4', 0,
		UI(0x0008, 0x1155, 6), '1', '.', '2', '.', '3', '4',
		ITEM_END,
		SEQ_END,
	};
	uint8_t b[1024];
	size_t n;
	struct dimse_commit_report r;
	char err[256], u1[65], u2[65];
	int fine;

	/* ---- the N-ACTION dataset ---- */
	n = dimse_commit_encode("9.876", refs, 2, &ds_ts_implicit_le, NULL, 0);
	is_int(n, sizeof(want_ile), "sizing call");
	n = dimse_commit_encode("9.876", refs, 2, &ds_ts_implicit_le, b,
	    sizeof(b));
	ok(n == sizeof(want_ile) && memcmp(b, want_ile, n) == 0,
	    "Implicit VR LE: the byte table");
	n = dimse_commit_encode("9.876", refs, 2, &ds_ts_explicit_le, b,
	    sizeof(b));
	ok(n == sizeof(want_ile) + 4 && memcmp(b + 4, "UI", 2) == 0 &&
	    memcmp(b + 18, "SQ\0\0\xff\xff\xff\xff", 8) == 0,
	    "Explicit VR LE: UI with a 2-byte length, SQ with 4 and "
	    "undefined length");
	ok(dimse_commit_decode(b, n, &ds_ts_explicit_le, &r, err,
	    sizeof(err)) == 0, "what we encode decodes: %s", err);
	ok(strcmp(r.transaction, "9.876") == 0 && r.n == 2 && r.nfailed == 0 &&
	    strcmp(r.refs[1].sop_instance, "1.2.34") == 0 &&
	    strcmp(r.refs[0].sop_class, refs[0].sop_class) == 0,
	    "  the transaction and both references back");
	dimse_commit_report_free(&r);
	strcpy(refs[1].sop_instance, "1.2..3");
	ok(dimse_commit_encode("9.876", refs, 2, &ds_ts_implicit_le, b,
	    sizeof(b)) == 0, "an invalid instance UID: not encoded");
	ok(dimse_commit_encode("x", refs, 1, &ds_ts_implicit_le, b,
	    sizeof(b)) == 0, "an invalid transaction UID: not encoded");

	/* ---- reports ---- */
	{
		/* Explicit VR BE: one committed, one failed with 0x0112 */
		static const uint8_t rep[] = {
			0x00, 0x08, 0x11, 0x95, 'U', 'I', 0, 4, '5', '.', '6', 0,
			0x00, 0x08, 0x11, 0x98, 'S', 'Q', 0, 0, 0xff, 0xff,
			0xff, 0xff,
			0xff, 0xfe, 0xe0, 0x00, 0xff, 0xff, 0xff, 0xff,
			0x00, 0x08, 0x11, 0x50, 'U', 'I', 0, 4, '1', '.', '2', 0,
			0x00, 0x08, 0x11, 0x55, 'U', 'I', 0, 4, '7', '.', '7', 0,
			0x00, 0x08, 0x11, 0x97, 'U', 'S', 0, 2, 0x01, 0x12,
			0xff, 0xfe, 0xe0, 0x0d, 0, 0, 0, 0,
			0xff, 0xfe, 0xe0, 0xdd, 0, 0, 0, 0,
			0x00, 0x08, 0x11, 0x99, 'S', 'Q', 0, 0, 0, 0, 0, 20,
			0xff, 0xfe, 0xe0, 0x00, 0, 0, 0, 12,
			0x00, 0x08, 0x11, 0x55, 'U', 'I', 0, 4, '8', '.', '8', 0,
		};

		ok(dimse_commit_decode(rep, sizeof(rep), &ds_ts_explicit_be,
		    &r, err, sizeof(err)) < 0 && strstr(err, "item 1 of the "
		    "Referenced SOP Sequence lacks its Referenced SOP Class UID"),
		    "an item without its class UID: refused: %s", err);
	}
	{
		static const uint8_t rep[] = {
			0x00, 0x08, 0x11, 0x95, 'U', 'I', 0, 4, '5', '.', '6', 0,
			0x00, 0x08, 0x11, 0x98, 'S', 'Q', 0, 0, 0xff, 0xff,
			0xff, 0xff,
			0xff, 0xfe, 0xe0, 0x00, 0xff, 0xff, 0xff, 0xff,
			0x00, 0x08, 0x11, 0x50, 'U', 'I', 0, 4, '1', '.', '2', 0,
			0x00, 0x08, 0x11, 0x55, 'U', 'I', 0, 4, '7', '.', '7', 0,
			0x00, 0x08, 0x11, 0x97, 'U', 'S', 0, 2, 0x01, 0x12,
			0xff, 0xfe, 0xe0, 0x0d, 0, 0, 0, 0,
			0xff, 0xfe, 0xe0, 0xdd, 0, 0, 0, 0,
			0x00, 0x08, 0x11, 0x99, 'S', 'Q', 0, 0, 0, 0, 0, 32,
			0xff, 0xfe, 0xe0, 0x00, 0, 0, 0, 24,
			0x00, 0x08, 0x11, 0x50, 'U', 'I', 0, 4, '1', '.', '2', 0,
			0x00, 0x08, 0x11, 0x55, 'U', 'I', 0, 4, '8', '.', '8', 0,
		};

		ok(dimse_commit_decode(rep, sizeof(rep), &ds_ts_explicit_be,
		    &r, err, sizeof(err)) == 0, "a report in Explicit VR BE "
		    "(undefined and defined lengths) decodes: %s", err);
		ok(strcmp(r.transaction, "5.6") == 0 && r.n == 2 &&
		    r.nfailed == 1, "  two references, one failed");
		ok(r.refs[0].failed && r.refs[0].reason == 0x0112 &&
		    strcmp(r.refs[0].sop_instance, "7.7") == 0,
		    "  the failed one with its reason 0x0112");
		ok(!r.refs[1].failed && strcmp(r.refs[1].sop_instance, "8.8") ==
		    0, "  the committed one");
		dimse_commit_report_free(&r);
		ok(dimse_commit_decode(rep, sizeof(rep) - 2, &ds_ts_explicit_be,
		    &r, err, sizeof(err)) < 0, "truncated: refused: %s", err);
		ok(dimse_commit_decode(rep + 12, sizeof(rep) - 12,
		    &ds_ts_explicit_be, &r, err, sizeof(err)) < 0 &&
		    strstr(err, "no Transaction UID"), "no Transaction UID: "
		    "refused: %s", err);
	}
	{
		/* a Referenced SOP Instance UID of 65 characters whose first
		 * 64 are another's, and one with a NUL inside: cut, they
		 * named that other instance */
		uint8_t rep[200];
		size_t m = 0;
		const char *longer = "1.2.826.0.1.3680043.8.498.1234567890123456"
		    "78901234567890123456789";	/* 65 */
		const char *nul = "1.2.3\0.4";
		const char *uids[2] = { longer, nul };
		size_t lens[2] = { 65, 9 };

		for (int k = 0; k < 2; k++) {
			uint8_t *p = rep;
			size_t l = lens[k] + (lens[k] & 1);

			m = 0;
			memcpy(p + m, "\x08\x00\x95\x11UI\x04\x00" "5.6\0", 12);
			m += 12;
			memcpy(p + m, "\x08\x00\x99\x11SQ\0\0\xff\xff\xff\xff", 12);
			m += 12;
			memcpy(p + m, "\xfe\xff\x00\xe0\xff\xff\xff\xff", 8);
			m += 8;
			memcpy(p + m, "\x08\x00\x50\x11UI\x04\x00" "1.2\0", 12);
			m += 12;
			memcpy(p + m, "\x08\x00\x55\x11UI", 6);
			p[m + 6] = (uint8_t)l;
			p[m + 7] = 0;
			m += 8;
			memset(p + m, 0, l);
			memcpy(p + m, uids[k], lens[k]);
			m += l;
			memcpy(p + m, "\xfe\xff\x0d\xe0\0\0\0\0"
			    "\xfe\xff\xdd\xe0\0\0\0\0", 16);
			m += 16;
			ok(dimse_commit_decode(rep, m, &ds_ts_explicit_le, &r, err,
			    sizeof(err)) < 0 && strstr(err, "longer than 64 "
			    "characters or holds a NUL"), "a report naming an "
			    "instance UID %s: refused (not cut to another's): %s",
			    k == 0 ? "of 65 characters" : "with a NUL", err);
		}
	}
	is_str(dimse_commit_reason_name(0x0112), "No such object instance",
	    "reason names");
	is_str(dimse_commit_reason_name(0x0131), "Duplicate transaction UID",
	    "  another");

	/* ---- UIDs ---- */
	fine = 1;
	for (int i = 0; i < 1000 && fine; i++) {
		if (dimse_uid_generate(u1) < 0 || dimse_uid_generate(u2) < 0 ||
		    strcmp(u1, u2) == 0 || strncmp(u1, "2.25.", 5) != 0 ||
		    strlen(u1) > 64 || strspn(u1 + 5, "0123456789") !=
		    strlen(u1 + 5) || (u1[5] == '0' && u1[6] != '\0'))
			fine = 0;
	}
	ok(fine, "generated UIDs: 2.25.<decimal>, at most 64, no leading "
	    "zero, distinct (%s)", u1);
	return done_testing();
}
