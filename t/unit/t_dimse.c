/*
 * t_dimse.c — the DIMSE command set codec and message assembly from byte
 * tables: a C-ECHO-RQ exactly as DCMTK's echoscu sends it and its
 * response, built by hand from PS3.7 E.1; round trips of every command
 * kind; each way a command set can be refused; dimse_cmd_check; status
 * classes and names; the builders; and the assembler over split
 * commands, many-chunk datasets and each protocol violation.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dimse/dimse_cmd.h"
#include "dimse/dimse_msg.h"
#include "dul/dul_pdu.h"
#include "t/unit/tap.h"

/* ---- wire bytes of group 0000, implicit VR little endian ---- */

struct cs {
	uint8_t	 b[8192];
	size_t	 n;
};

static void
raw(struct cs *w, const void *p, size_t n)
{
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void
le16(struct cs *w, unsigned v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	raw(w, b, 2);
}

static void
le32(struct cs *w, uint32_t v)
{
	le16(w, v & 0xffff);
	le16(w, v >> 16);
}

/* element (gggg,eeee) with value v[0..n) */
static void
elem(struct cs *w, uint32_t tag, const void *v, uint32_t n)
{
	le16(w, tag >> 16);
	le16(w, tag & 0xffff);
	le32(w, n);
	raw(w, v, n);
}

static void
us(struct cs *w, unsigned e, unsigned v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	elem(w, e, b, 2);
}

static void
str(struct cs *w, unsigned e, const char *s)
{
	elem(w, e, s, (uint32_t)strlen(s));
}

/* a UID, NUL-padded to even length */
static void
ui(struct cs *w, unsigned e, const char *s)
{
	uint32_t n = (uint32_t)strlen(s);

	le16(w, 0);
	le16(w, e);
	le32(w, n + n % 2);
	raw(w, s, n);
	if (n % 2)
		raw(w, "", 1);
}

/* start: the group length element, fixed by end() */
static void
start(struct cs *w)
{
	w->n = 0;
	elem(w, 0, "\0\0\0\0", 4);
}

static void
end(struct cs *w)
{
	uint32_t gl = (uint32_t)(w->n - 12);

	w->b[8] = (uint8_t)gl;
	w->b[9] = (uint8_t)(gl >> 8);
	w->b[10] = (uint8_t)(gl >> 16);
	w->b[11] = (uint8_t)(gl >> 24);
}

/* ---- the C-ECHO exchange of echoscu, by hand from PS3.7 E.1 ---- */

static const uint8_t echo_rq_bytes[] = {
	/* (0000,0000) UL 4: 56 bytes follow */
	0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x38, 0x00, 0x00, 0x00,
	/* (0000,0002) UI 18: "1.2.840.10008.1.1" + NUL */
	0x00, 0x00, 0x02, 0x00, 0x12, 0x00, 0x00, 0x00,
	'1', '.', '2', '.', '8', '4', '0', '.', '1', '0', '0', '0', '8', '.',
	'1', '.', '1', 0x00,
	/* (0000,0100) US 2: 0x0030 C-ECHO-RQ */
	0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x00,
	/* (0000,0110) US 2: message ID 1 */
	0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00,
	/* (0000,0800) US 2: 0x0101, no dataset */
	0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01,
};

static const uint8_t echo_rsp_bytes[] = {
	/* (0000,0000) UL 4: 66 bytes follow */
	0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x42, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x02, 0x00, 0x12, 0x00, 0x00, 0x00,
	'1', '.', '2', '.', '8', '4', '0', '.', '1', '0', '0', '0', '8', '.',
	'1', '.', '1', 0x00,
	/* (0000,0100) 0x8030 C-ECHO-RSP */
	0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x80,
	/* (0000,0120) responding to message 1 */
	0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00,
	/* (0000,0800) 0x0101 */
	0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01,
	/* (0000,0900) status 0x0000 */
	0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static void
test_echo(void)
{
	struct dimse_cmd c, rq, rsp;
	struct dimse_error e;
	uint8_t buf[128];
	size_t n;

	ok(sizeof(echo_rq_bytes) == 68, "echo rq table is 68 bytes");
	ok(dimse_cmd_decode(echo_rq_bytes, sizeof(echo_rq_bytes), &c, &e) == 0,
	    "echoscu C-ECHO-RQ decodes");
	is_int(c.command, DIMSE_C_ECHO_RQ, "command field 0x0030");
	is_int(c.msgid, 1, "message id 1");
	is_str(c.affected_class, "1.2.840.10008.1.1", "verification class, "
	    "NUL pad dropped");
	is_int(c.dataset_type, 0x0101, "no dataset");
	is_int(c.present, DIMSE_F_AFFECTED_CLASS | DIMSE_F_COMMAND |
	    DIMSE_F_MSGID | DIMSE_F_DATASET_TYPE, "exactly four fields");
	is_int(dimse_cmd_has_dataset(&c), 0, "has_dataset 0");
	ok(dimse_cmd_check(&c, &e) == 0, "echo rq passes the check");

	dimse_echo_rq(1, &rq);
	ok(dimse_cmd_equal(&rq, &c), "dimse_echo_rq builds the same");
	is_int(dimse_cmd_encode(&rq, NULL, 0), 68, "cap 0 sizes: 68");
	memset(buf, 0xaa, sizeof(buf));
	is_int(dimse_cmd_encode(&rq, buf, 67), 68, "cap 67: size returned");
	ok(buf[0] == 0xaa, "cap 67: nothing written");
	n = dimse_cmd_encode(&rq, buf, sizeof(buf));
	ok(n == 68 && memcmp(buf, echo_rq_bytes, 68) == 0,
	    "encodes to echoscu's bytes");
	ok(buf[68] == 0xaa, "nothing written past the end");

	ok(dimse_echo_rsp(&c, DIMSE_STATUS_SUCCESS, &rsp) == 0,
	    "dimse_echo_rsp");
	n = dimse_cmd_encode(&rsp, buf, sizeof(buf));
	ok(n == sizeof(echo_rsp_bytes) && memcmp(buf, echo_rsp_bytes, n) == 0,
	    "C-ECHO-RSP encodes to the bytes of PS3.7 9.3.5.2");
	ok(dimse_cmd_decode(echo_rsp_bytes, sizeof(echo_rsp_bytes), &c, &e) ==
	    0 && dimse_cmd_equal(&c, &rsp), "and decodes back");
	ok(dimse_cmd_check(&rsp, &e) == 0, "echo rsp passes the check");
	is_int(dimse_store_rsp(&rq, 0, &rsp), -1,
	    "dimse_store_rsp refuses a C-ECHO-RQ");
}

/* ---- round trips ---- */

static void
roundtrip(const struct dimse_cmd *c, const char *what)
{
	uint8_t buf[4096], buf2[4096];
	struct dimse_cmd d;
	struct dimse_error e;
	size_t n, n2;

	n = dimse_cmd_encode(c, buf, sizeof(buf));
	if (!ok(n > 12 && n <= sizeof(buf), "%s encodes (%zu bytes)", what, n))
		return;
	ok(n % 2 == 0, "%s: even length", what);
	if (!ok(dimse_cmd_decode(buf, n, &d, &e) == 0, "%s decodes", what))
		diag("%s", e.msg);
	ok(dimse_cmd_equal(c, &d), "%s: same fields back", what);
	n2 = dimse_cmd_encode(&d, buf2, sizeof(buf2));
	ok(n2 == n && memcmp(buf, buf2, n) == 0, "%s: same bytes again",
	    what);
	if (!ok(dimse_cmd_check(&d, &e) == 0, "%s passes the check", what))
		diag("%s", e.msg);
}

static const char CT[] = "1.2.840.10008.5.1.4.1.1.2";
static const char INST[] = "1.2.826.0.1.3680043.2.1125.1.12345678901234567";
static const char FIND[] = "1.2.840.10008.5.1.4.1.2.2.1";
static const char MOVE[] = "1.2.840.10008.5.1.4.1.2.2.2";
static const char GET[] = "1.2.840.10008.5.1.4.1.2.2.3";
static const char COMMIT[] = "1.2.840.10008.1.20.1";
static const char COMMIT_INST[] = "1.2.840.10008.1.20.1.1";

static void
test_roundtrips(void)
{
	struct dimse_cmd rq, rsp;

	dimse_echo_rq(7, &rq);
	roundtrip(&rq, "C-ECHO-RQ");
	dimse_echo_rsp(&rq, 0, &rsp);
	roundtrip(&rsp, "C-ECHO-RSP");

	ok(dimse_store_rq(8, CT, INST, DIMSE_PRIORITY_HIGH, &rq) == 0,
	    "dimse_store_rq");
	roundtrip(&rq, "C-STORE-RQ");
	ok(dimse_store_rq_originator(&rq, " MOVESCU ", 99) == 0,
	    "move originator set");
	is_str(rq.move_orig_ae, "MOVESCU", "originator AE trimmed");
	roundtrip(&rq, "C-STORE-RQ with originator");
	dimse_store_rsp(&rq, 0xB000, &rsp);
	dimse_cmd_set_comment(&rsp, "coerced (0010,0010)");
	rsp.present |= DIMSE_F_OFFENDING;
	rsp.n_offending = 2;
	rsp.offending[0] = 0x00100010;
	rsp.offending[1] = 0x00100020;
	roundtrip(&rsp, "C-STORE-RSP with comment and offending elements");

	ok(dimse_find_rq(9, FIND, DIMSE_PRIORITY_LOW, &rq) == 0,
	    "dimse_find_rq");
	roundtrip(&rq, "C-FIND-RQ");
	dimse_find_rsp(&rq, DIMSE_STATUS_PENDING, &rsp);
	roundtrip(&rsp, "C-FIND-RSP pending");
	dimse_find_rsp(&rq, 0, &rsp);
	roundtrip(&rsp, "C-FIND-RSP final");

	ok(dimse_get_rq(10, GET, DIMSE_PRIORITY_MEDIUM, &rq) == 0,
	    "dimse_get_rq");
	roundtrip(&rq, "C-GET-RQ");
	dimse_get_rsp(&rq, DIMSE_STATUS_PENDING, &rsp);
	dimse_cmd_set_subops(&rsp, 3, 2, 1, 0);
	roundtrip(&rsp, "C-GET-RSP with counts");

	ok(dimse_move_rq(11, MOVE, DIMSE_PRIORITY_MEDIUM, "VNAMIG", &rq) == 0,
	    "dimse_move_rq");
	roundtrip(&rq, "C-MOVE-RQ");
	dimse_move_rsp(&rq, 0, &rsp);
	dimse_cmd_set_subops(&rsp, -1, 10, 0, 0);
	roundtrip(&rsp, "C-MOVE-RSP final");

	dimse_cancel_rq(9, &rq);
	roundtrip(&rq, "C-CANCEL-RQ");

	ok(dimse_event_report_rq(12, COMMIT, COMMIT_INST, 1, 1, &rq) == 0,
	    "dimse_event_report_rq");
	roundtrip(&rq, "N-EVENT-REPORT-RQ");
	dimse_event_report_rsp(&rq, 0, &rsp);
	roundtrip(&rsp, "N-EVENT-REPORT-RSP");

	ok(dimse_action_rq(13, COMMIT, COMMIT_INST, 1, 1, &rq) == 0,
	    "dimse_action_rq");
	roundtrip(&rq, "N-ACTION-RQ");
	dimse_action_rsp(&rq, 0, &rsp);
	roundtrip(&rsp, "N-ACTION-RSP");

}

/* the N- services this host does not build, by hand */
static void
test_roundtrips_n(void)
{
	struct dimse_cmd rq, rsp;

	memset(&rq, 0, sizeof(rq));
	rq.present = DIMSE_F_COMMAND | DIMSE_F_MSGID | DIMSE_F_DATASET_TYPE |
	    DIMSE_F_REQUESTED_CLASS | DIMSE_F_REQUESTED_INSTANCE |
	    DIMSE_F_ATTR_LIST;
	rq.command = DIMSE_N_GET_RQ;
	rq.msgid = 14;
	rq.dataset_type = DIMSE_DATASET_NONE;
	strcpy(rq.requested_class, COMMIT);
	strcpy(rq.requested_instance, COMMIT_INST);
	rq.n_attr = DIMSE_MAX_AT;
	for (unsigned i = 0; i < DIMSE_MAX_AT; i++)
		rq.attr[i] = 0x00080000u | (i * 2 + 0x10);
	roundtrip(&rq, "N-GET-RQ with 256 attributes");
	ok(dimse_rsp_init(&rq, 0x0107, &rsp) == 0, "N-GET-RSP built");
	is_int(rsp.command, DIMSE_N_GET_RSP, "N-GET-RSP command field");
	is_str(rsp.affected_instance, COMMIT_INST,
	    "affected instance from the requested one");
	rsp.dataset_type = DIMSE_DATASET_PRESENT;
	roundtrip(&rsp, "N-GET-RSP");
	rq.n_attr = 0;
	roundtrip(&rq, "N-GET-RQ with an empty attribute list");

	rq.command = DIMSE_N_SET_RQ;
	rq.present &= ~(uint32_t)DIMSE_F_ATTR_LIST;
	rq.dataset_type = DIMSE_DATASET_PRESENT;
	roundtrip(&rq, "N-SET-RQ");
	dimse_rsp_init(&rq, 0, &rsp);
	roundtrip(&rsp, "N-SET-RSP");
	rq.command = DIMSE_N_DELETE_RQ;
	rq.dataset_type = DIMSE_DATASET_NONE;
	roundtrip(&rq, "N-DELETE-RQ");
	dimse_rsp_init(&rq, 0x0112, &rsp);
	rsp.present |= DIMSE_F_ERROR_ID;
	rsp.error_id = 0x1234;
	roundtrip(&rsp, "N-DELETE-RSP with error id");

	memset(&rq, 0, sizeof(rq));
	rq.present = DIMSE_F_COMMAND | DIMSE_F_MSGID | DIMSE_F_DATASET_TYPE |
	    DIMSE_F_AFFECTED_CLASS;
	rq.command = DIMSE_N_CREATE_RQ;
	rq.msgid = 15;
	rq.dataset_type = DIMSE_DATASET_PRESENT;
	strcpy(rq.affected_class, COMMIT);
	roundtrip(&rq, "N-CREATE-RQ");
	dimse_rsp_init(&rq, 0, &rsp);
	is_int(rsp.present & DIMSE_F_AFFECTED_INSTANCE, 0,
	    "N-CREATE-RSP: no instance to copy");
	roundtrip(&rsp, "N-CREATE-RSP");

}

/* every field at once (not a valid command, but a valid encoding) */
static void
test_roundtrip_all(void)
{
	struct dimse_cmd rq;

	memset(&rq, 0, sizeof(rq));
	rq.present = 0x7fffff;
	rq.command = DIMSE_C_STORE_RQ;
	rq.msgid = 0xffff;
	rq.msgid_rsp = 0xfffe;
	rq.priority = 2;
	rq.dataset_type = 0x0102;
	rq.status = 0xc123;
	rq.error_id = 1;
	rq.event_type = 2;
	rq.action_type = 3;
	rq.remaining = 4;
	rq.completed = 5;
	rq.failed = 6;
	rq.warning = 7;
	rq.move_orig_msgid = 8;
	strcpy(rq.affected_class, CT);
	strcpy(rq.requested_class, CT);
	strcpy(rq.affected_instance, INST);
	strcpy(rq.requested_instance, INST);
	strcpy(rq.move_dest, "SIXTEEN-CHARS-AE");
	strcpy(rq.move_orig_ae, "A B");
	strcpy(rq.error_comment, "odd");
	rq.n_offending = 1;
	rq.offending[0] = 0x7fe00010;
	rq.n_attr = 1;
	rq.attr[0] = 0xfffee000;
	roundtrip(&rq, "every field");
}

/* ---- refusals ---- */

static void
refused(const struct cs *w, enum dimse_errcode code, uint32_t tag,
    size_t off, const char *needle, const char *what)
{
	struct dimse_cmd c;
	struct dimse_error e;
	int r = dimse_cmd_decode(w->b, w->n, &c, &e);

	if (!ok(r == -1 && e.code == code, "%s: refused (code %d)", what, code))
		diag("  got %d code %d: %s", r, e.code, e.msg);
	if (!ok(e.tag == tag && e.offset == off, "%s: tag (%04x,%04x), "
	    "byte %zu", what, tag >> 16, tag & 0xffff, off))
		diag("  got tag %08x offset %zu", e.tag, e.offset);
	if (!ok(strstr(e.msg, needle) != NULL, "%s: message says \"%s\"",
	    what, needle))
		diag("  message: %s", e.msg);
}

/*
 * kept: a command whose UID element tag holds value[0..n): it decodes,
 * the field holds want and is flagged invalid (the service answers
 * 0xC000 instead of the association being aborted), and it re-encodes
 * to a command that decodes the same.
 */
static void
kept(uint32_t tag, const char *value, size_t n, const char *want,
    uint32_t flag, const char *what)
{
	struct cs w;
	struct dimse_cmd c, c2;
	struct dimse_error e;
	const char *got;
	uint8_t buf[1024];
	size_t len;

	start(&w);
	if (tag < 0x0100)
		elem(&w, tag, value, (uint32_t)n);
	us(&w, 0x0100, DIMSE_C_STORE_RQ);
	us(&w, 0x0800, DIMSE_DATASET_PRESENT);
	if (tag > 0x0800)
		elem(&w, tag, value, (uint32_t)n);
	end(&w);
	if (!ok(dimse_cmd_decode(w.b, w.n, &c, &e) == 0, "%s: decoded", what)) {
		diag("  %s", e.msg);
		return;
	}
	got = tag == 0x0002 ? c.affected_class : tag == 0x0003 ?
	    c.requested_class : tag == 0x1000 ? c.affected_instance :
	    c.requested_instance;
	if (!ok(strcmp(got, want) == 0, "%s: kept as given", what))
		diag("  got \"%s\", want \"%s\"", got, want);
	ok((c.invalid & flag) && !(c.invalid & ~flag), "%s: flagged invalid",
	    what);
	len = dimse_cmd_encode(&c, buf, sizeof(buf));
	ok(len > 0 && len <= sizeof(buf) && dimse_cmd_decode(buf, len, &c2,
	    &e) == 0 && dimse_cmd_equal(&c, &c2), "%s: re-encodes the same",
	    what);
}

/* the common part of a valid C-ECHO-RQ after the group length */
static void
echo_body(struct cs *w)
{
	ui(w, 0x0002, "1.2.840.10008.1.1");
	us(w, 0x0100, DIMSE_C_ECHO_RQ);
	us(w, 0x0110, 1);
	us(w, 0x0800, DIMSE_DATASET_NONE);
}

static void
test_refusals(void)
{
	struct cs w;

	w.n = 0;
	refused(&w, DIMSE_E_TRUNCATED, DIMSE_NO_TAG, 0, "0 bytes",
	    "empty command set");
	raw(&w, echo_rq_bytes, 5);
	refused(&w, DIMSE_E_TRUNCATED, DIMSE_NO_TAG, 0, "too short",
	    "5 bytes");
	w.n = 0;
	us(&w, 0x0100, DIMSE_C_ECHO_RQ);
	refused(&w, DIMSE_E_GROUP_LENGTH, DIMSE_NO_TAG, 0,
	    "starts with (0000,0100)", "no group length first");
	w.n = 0;
	elem(&w, 0, "\0\0", 2);
	refused(&w, DIMSE_E_GROUP_LENGTH, 0, 0, "a UL needs 4",
	    "group length of 2 bytes");
	w.n = 0;
	raw(&w, echo_rq_bytes, 8);
	refused(&w, DIMSE_E_TRUNCATED, 0, 0, "runs past the end",
	    "group length without its value");
	w.n = 0;
	raw(&w, echo_rq_bytes, sizeof(echo_rq_bytes));
	w.b[8] = 0x36;
	refused(&w, DIMSE_E_GROUP_LENGTH, 0, 0, "says 54 bytes follow, the "
	    "command set has 56", "group length too small");
	w.b[8] = 0x3a;
	refused(&w, DIMSE_E_GROUP_LENGTH, 0, 0, "says 58 bytes",
	    "group length too large");
	w.n = 66;
	w.b[8] = 0x36;
	refused(&w, DIMSE_E_TRUNCATED, 0x0800, 58, "value length 2 runs past",
	    "last value cut short");

	start(&w);
	echo_body(&w);
	raw(&w, "\0\0\0\0", 4);
	end(&w);
	refused(&w, DIMSE_E_TRUNCATED, DIMSE_NO_TAG, 68,
	    "element header at byte 68: 4 bytes left", "half an element header");

	start(&w);
	echo_body(&w);
	str(&w, 0x0010, "PATIENT ");
	w.b[68] = 0x08;		/* (0008,0010) */
	end(&w);
	refused(&w, DIMSE_E_NOT_COMMAND, 0x00080010, 68, "group 0000 only",
	    "a dataset element in the command");

	start(&w);
	us(&w, 0x0100, DIMSE_C_ECHO_RQ);
	ui(&w, 0x0002, "1.2.840.10008.1.1");
	end(&w);
	refused(&w, DIMSE_E_ORDER, 0x0002, 22, "follows (0000,0100)",
	    "tags out of order");

	start(&w);
	us(&w, 0x0100, DIMSE_C_ECHO_RQ);
	us(&w, 0x0100, DIMSE_C_ECHO_RQ);
	end(&w);
	refused(&w, DIMSE_E_ORDER, 0x0100, 22, "repeats", "a repeated tag");

	start(&w);
	elem(&w, 0x0000, "\0\0\0\0", 4);
	end(&w);
	refused(&w, DIMSE_E_ORDER, 0, 12, "repeats", "a second group length");

	start(&w);
	ui(&w, 0x0002, "1.2.840.10008.1.1");
	le32(&w, 0x01000000);
	le32(&w, 1000);
	raw(&w, "\x30\0", 2);
	end(&w);
	refused(&w, DIMSE_E_TRUNCATED, 0x0100, 38, "value length 1000 runs "
	    "past the end of the command set (2 bytes left)",
	    "value length past the end");

	start(&w);
	ui(&w, 0x0002, "1.2.840.10008.1.1");
	elem(&w, 0x0100, "\x30\0\0\0", 4);
	end(&w);
	refused(&w, DIMSE_E_LENGTH, 0x0100, 38,
	    "(0000,0100) CommandField at byte 38: value length 4, a US needs 2",
	    "a US of 4 bytes");

}

static void
test_value_refusals(void)
{
	struct cs w;
	char s[80];

	kept(0x0002, "1.2.840.10008.1.1x", 18, "1.2.840.10008.1.1x",
	    DIMSE_F_AFFECTED_CLASS, "a UID with a letter");
	kept(0x0002, "\0\0", 2, "", DIMSE_F_AFFECTED_CLASS, "an empty UID");
	kept(0x1000, "../../etc", 9, "../../etc", DIMSE_F_AFFECTED_INSTANCE,
	    "a UID \"../../etc\"");
	kept(0x1001, "1.2.3.", 6, "1.2.3.", DIMSE_F_REQUESTED_INSTANCE,
	    "a UID ending in a dot");
	memset(s, '1', 65);
	s[65] = '\0';
	kept(0x0003, s, 65, "1111111111111111111111111111111111111111111111111"
	    "11111111111111?", DIMSE_F_REQUESTED_CLASS, "a UID of 65 digits");
	kept(0x0002, "1.2\0" "3\n", 6, "1.2?3?", DIMSE_F_AFFECTED_CLASS,
	    "a NUL and a LF inside a UID");

	start(&w);
	str(&w, 0x0600, "SEVENTEEN-CHARS-A");
	end(&w);
	refused(&w, DIMSE_E_LENGTH, 0x0600, 12, "at most 16",
	    "an AE title of 17 bytes");
	start(&w);
	str(&w, 0x0600, "BACK\\SLASH");
	end(&w);
	refused(&w, DIMSE_E_VALUE, 0x0600, 12, "byte 0x5c",
	    "an AE title with a backslash");
	start(&w);
	str(&w, 0x1030, "TAB\tAE");
	end(&w);
	refused(&w, DIMSE_E_VALUE, 0x1030, 12, "TAB\\x09AE",
	    "an AE title with a control character");

	start(&w);
	elem(&w, 0x0901, "\x10\0\x10\0\0\0", 6);
	end(&w);
	refused(&w, DIMSE_E_LENGTH, 0x0901, 12, "multiple of 4",
	    "an AT of 6 bytes");
	start(&w);
	le32(&w, 0x10050000);
	le32(&w, 4 * (DIMSE_MAX_AT + 1));
	for (unsigned i = 0; i <= DIMSE_MAX_AT; i++)
		le32(&w, 0x00100010);
	end(&w);
	refused(&w, DIMSE_E_LIMIT, 0x1005, 12, "257 tags, at most 256",
	    "an attribute list over the limit");

	start(&w);
	ui(&w, 0x0002, "1.2.840.10008.1.1");
	us(&w, 0x0800, DIMSE_DATASET_NONE);
	end(&w);
	refused(&w, DIMSE_E_MISSING, DIMSE_NO_TAG, 48, "no (0000,0100) "
	    "CommandField", "no command field");
	start(&w);
	us(&w, 0x0100, DIMSE_C_STORE_RQ);
	end(&w);
	refused(&w, DIMSE_E_MISSING, DIMSE_NO_TAG, 22, "no (0000,0800) "
	    "CommandDataSetType in the C-STORE-RQ", "no dataset type");

}

static void
test_tolerated(void)
{
	struct cs w;
	struct dimse_cmd c;
	struct dimse_error e;
	char s[80];

	start(&w);
	elem(&w, 0x0001, "\0\0\0\0", 4);	/* retired CommandLengthToEnd */
	str(&w, 0x0002, "1.2.840.10008.1.1 ");
	us(&w, 0x0100, DIMSE_C_MOVE_RQ);
	us(&w, 0x0110, 5);
	str(&w, 0x0600, "  DEST AE       ");
	str(&w, 0x0601, "");			/* not ours */
	us(&w, 0x0700, 0);
	us(&w, 0x0800, 0x0102);
	elem(&w, 0x0902, "bad\nline Pr\xfc\xe9\0", 14);
	elem(&w, 0x4000, "xx", 2);		/* retired DialogReceiver */
	end(&w);
	ok(dimse_cmd_decode(w.b, w.n, &c, &e) == 0, "retired elements, "
	    "padding and spaces are tolerated");
	is_int(c.unknown, 3, "three unknown elements counted");
	is_str(c.affected_class, "1.2.840.10008.1.1", "UID space pad dropped");
	is_str(c.move_dest, "DEST AE", "AE title trimmed at both ends, "
	    "inner space kept");
	is_str(c.error_comment, "bad?line Pr??", "comment: control characters "
	    "and bytes over 0x7f (no character in the default repertoire) "
	    "replaced, NUL pad dropped");
	is_int(dimse_cmd_has_dataset(&c), 1, "0x0102 means a dataset");

	start(&w);
	us(&w, 0x0100, DIMSE_C_STORE_RSP);
	us(&w, 0x0800, DIMSE_DATASET_NONE);
	memset(s, 'x', 70);
	memcpy(s + 60, "    abcd  ", 10);
	elem(&w, 0x0902, s, 70);
	elem(&w, 0x1030, "", 0);
	end(&w);
	ok(dimse_cmd_decode(w.b, w.n, &c, &e) == 0, "a long comment and an "
	    "empty originator are tolerated");
	is_int(strlen(c.error_comment), 60, "comment cut to 64, trailing "
	    "spaces dropped");
	ok((c.present & DIMSE_F_MOVE_ORIG_AE) && c.move_orig_ae[0] == '\0',
	    "empty AE title present and empty");

	ok(dimse_cmd_decode(w.b, w.n, &c, NULL) == 0 &&
	    dimse_cmd_decode(w.b, 3, &c, NULL) == -1, "err may be NULL");
}

/* ---- the encoder's refusals ---- */

static void
test_encode_refusals(void)
{
	struct dimse_cmd c;

	dimse_echo_rq(1, &c);
	strcpy(c.affected_class, "1.2.x");
	is_int(dimse_cmd_encode(&c, NULL, 0), 0, "an invalid UID is not "
	    "encoded");
	c.affected_class[0] = '\0';
	is_int(dimse_cmd_encode(&c, NULL, 0), 0, "an empty UID is not encoded");
	dimse_echo_rq(1, &c);
	memset(c.affected_class, '1', sizeof(c.affected_class));
	is_int(dimse_cmd_encode(&c, NULL, 0), 0, "an unterminated UID is not "
	    "encoded");
	dimse_echo_rq(1, &c);
	c.present |= DIMSE_F_MOVE_DEST;
	memset(c.move_dest, 'A', sizeof(c.move_dest));
	is_int(dimse_cmd_encode(&c, NULL, 0), 0, "an AE title of 17 is not "
	    "encoded");
	strcpy(c.move_dest, "A\\B");
	is_int(dimse_cmd_encode(&c, NULL, 0), 0, "an AE title with a backslash "
	    "is not encoded");
	strcpy(c.move_dest, "");
	is_int(dimse_cmd_encode(&c, NULL, 0), 68 + 8 + 16, "an empty AE title "
	    "is 16 spaces");
	dimse_echo_rq(1, &c);
	c.present |= DIMSE_F_OFFENDING;
	c.n_offending = DIMSE_MAX_AT + 1;
	is_int(dimse_cmd_encode(&c, NULL, 0), 0, "an AT count over the "
	    "capacity is not encoded");
	dimse_echo_rq(1, &c);
	c.present |= DIMSE_F_ERROR_COMMENT;
	memset(c.error_comment, 'c', sizeof(c.error_comment));
	is_int(dimse_cmd_encode(&c, NULL, 0), 0, "an unterminated comment is "
	    "not encoded");
	strcpy(c.error_comment, "odd");
	is_int(dimse_cmd_encode(&c, NULL, 0), 68 + 8 + 4, "a comment of 3 is "
	    "padded to 4");
}

/* ---- dimse_cmd_check ---- */

static void
check_fails(const struct dimse_cmd *c, enum dimse_errcode code,
    const char *needle, const char *what)
{
	struct dimse_error e;
	int r = dimse_cmd_check(c, &e);

	if (!ok(r == -1 && e.code == code && strstr(e.msg, needle) != NULL,
	    "check: %s", what))
		diag("  got %d code %d: %s", r, e.code, e.msg);
}

static void
test_check(void)
{
	struct dimse_cmd c, rq;

	dimse_store_rq(1, CT, INST, 0, &c);
	c.present &= ~(uint32_t)DIMSE_F_AFFECTED_INSTANCE;
	check_fails(&c, DIMSE_E_MISSING, "C-STORE-RQ without (0000,1000) "
	    "AffectedSOPInstanceUID (PS3.7 9.3.1.1)", "store rq without "
	    "instance");
	dimse_store_rq(1, CT, INST, 0, &c);
	c.present &= ~(uint32_t)DIMSE_F_PRIORITY;
	check_fails(&c, DIMSE_E_MISSING, "(0000,0700) Priority",
	    "store rq without priority");
	dimse_store_rq(1, CT, INST, 0, &c);
	c.dataset_type = DIMSE_DATASET_NONE;
	check_fails(&c, DIMSE_E_COMMAND, "it needs a dataset",
	    "store rq without dataset");
	dimse_store_rsp(&c, 0, &rq);
	rq.dataset_type = 1;
	check_fails(&rq, DIMSE_E_COMMAND, "it has no dataset",
	    "store rsp with a dataset");
	rq.dataset_type = DIMSE_DATASET_NONE;
	rq.present &= ~(uint32_t)DIMSE_F_STATUS;
	check_fails(&rq, DIMSE_E_MISSING, "(0000,0900) Status",
	    "store rsp without status");
	dimse_move_rq(1, MOVE, 0, "X", &c);
	c.present &= ~(uint32_t)DIMSE_F_MOVE_DEST;
	check_fails(&c, DIMSE_E_MISSING, "(0000,0600) MoveDestination",
	    "move rq without destination");
	dimse_echo_rq(1, &c);
	c.present &= ~(uint32_t)DIMSE_F_MSGID;
	check_fails(&c, DIMSE_E_MISSING, "(0000,0110) MessageID",
	    "echo rq without message id");
	dimse_echo_rq(1, &c);
	c.dataset_type = 0;
	check_fails(&c, DIMSE_E_COMMAND, "C-ECHO-RQ with CommandDataSetType "
	    "0x0000", "echo rq with a dataset");
	dimse_cancel_rq(1, &c);
	c.present &= ~(uint32_t)DIMSE_F_MSGID_RSP;
	check_fails(&c, DIMSE_E_MISSING, "(0000,0120)", "cancel without the "
	    "message it cancels");
	dimse_action_rq(1, COMMIT, COMMIT_INST, 1, 1, &c);
	c.present &= ~(uint32_t)DIMSE_F_ACTION_TYPE;
	check_fails(&c, DIMSE_E_MISSING, "(0000,1008) ActionTypeID",
	    "action rq without action type");
	dimse_event_report_rq(1, COMMIT, COMMIT_INST, 1, 1, &c);
	c.present &= ~(uint32_t)DIMSE_F_EVENT_TYPE;
	check_fails(&c, DIMSE_E_MISSING, "(0000,1002) EventTypeID",
	    "event report rq without event type");
	dimse_echo_rq(1, &c);
	c.command = 0x0031;
	check_fails(&c, DIMSE_E_COMMAND, "unknown command field 0x0031",
	    "unknown command");
	c.present &= ~(uint32_t)DIMSE_F_COMMAND;
	check_fails(&c, DIMSE_E_MISSING, "no (0000,0100)", "no command field");
}

/* ---- names and status ---- */

static void
test_names(void)
{
	static const struct {
		uint16_t		 status;
		enum dimse_status_class	 cl;
	} classes[] = {
		{ 0x0000, DIMSE_CLASS_SUCCESS }, { 0x0001, DIMSE_CLASS_WARNING },
		{ 0x0107, DIMSE_CLASS_WARNING }, { 0x0116, DIMSE_CLASS_WARNING },
		{ 0xB000, DIMSE_CLASS_WARNING }, { 0xB007, DIMSE_CLASS_WARNING },
		{ 0xBFFF, DIMSE_CLASS_WARNING }, { 0xFE00, DIMSE_CLASS_CANCEL },
		{ 0xFF00, DIMSE_CLASS_PENDING }, { 0xFF01, DIMSE_CLASS_PENDING },
		{ 0xA700, DIMSE_CLASS_FAILURE }, { 0xA900, DIMSE_CLASS_FAILURE },
		{ 0xC000, DIMSE_CLASS_FAILURE }, { 0xCFFF, DIMSE_CLASS_FAILURE },
		{ 0x0122, DIMSE_CLASS_FAILURE }, { 0x0211, DIMSE_CLASS_FAILURE },
		{ 0x0002, DIMSE_CLASS_FAILURE }, { 0xAFFF, DIMSE_CLASS_FAILURE },
		{ 0xFE01, DIMSE_CLASS_FAILURE }, { 0xFF02, DIMSE_CLASS_FAILURE },
		{ 0xFFFF, DIMSE_CLASS_FAILURE }, { 0x0106, DIMSE_CLASS_FAILURE },
	};
	static const struct {
		uint16_t	 command;
		const char	*name;
	} names[] = {
		{ DIMSE_C_STORE_RQ, "C-STORE-RQ" },
		{ DIMSE_C_STORE_RSP, "C-STORE-RSP" },
		{ DIMSE_C_GET_RQ, "C-GET-RQ" }, { DIMSE_C_GET_RSP, "C-GET-RSP" },
		{ DIMSE_C_FIND_RQ, "C-FIND-RQ" },
		{ DIMSE_C_FIND_RSP, "C-FIND-RSP" },
		{ DIMSE_C_MOVE_RQ, "C-MOVE-RQ" },
		{ DIMSE_C_MOVE_RSP, "C-MOVE-RSP" },
		{ DIMSE_C_ECHO_RQ, "C-ECHO-RQ" },
		{ DIMSE_C_ECHO_RSP, "C-ECHO-RSP" },
		{ DIMSE_C_CANCEL_RQ, "C-CANCEL-RQ" },
		{ DIMSE_N_EVENT_REPORT_RQ, "N-EVENT-REPORT-RQ" },
		{ DIMSE_N_EVENT_REPORT_RSP, "N-EVENT-REPORT-RSP" },
		{ DIMSE_N_GET_RQ, "N-GET-RQ" }, { DIMSE_N_SET_RSP, "N-SET-RSP" },
		{ DIMSE_N_ACTION_RQ, "N-ACTION-RQ" },
		{ DIMSE_N_ACTION_RSP, "N-ACTION-RSP" },
		{ DIMSE_N_CREATE_RQ, "N-CREATE-RQ" },
		{ DIMSE_N_DELETE_RSP, "N-DELETE-RSP" },
		{ 0x0002, "unknown command" }, { 0x8fff, "unknown command" },
	};

	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		is_int(dimse_status_class(classes[i].status), classes[i].cl,
		    "status 0x%04x is %s", classes[i].status,
		    dimse_status_class_name(classes[i].cl));
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		is_str(dimse_cmd_name(names[i].command), names[i].name,
		    "command 0x%04x", names[i].command);

	is_str(dimse_status_name(0x0000), "Success", "0x0000");
	is_str(dimse_status_name(0xA700), "Refused: Out of Resources",
	    "0xA700");
	is_str(dimse_status_name(0xA7A3), "Refused: Out of Resources",
	    "0xA7xx by range");
	is_str(dimse_status_name(0xA900),
	    "Error: Data Set Does Not Match SOP Class", "0xA900");
	is_str(dimse_status_name(0xA9FF),
	    "Error: Data Set Does Not Match SOP Class", "0xA9xx by range");
	is_str(dimse_status_name(0xC000), "Error: Cannot Understand", "0xC000");
	is_str(dimse_status_name(0xC123), "Error: Cannot Understand",
	    "0xCxxx by range");
	is_str(dimse_status_name(0x0122), "Refused: SOP class not supported",
	    "0x0122");
	is_str(dimse_status_name(0x0211), "Failure: Unrecognized operation",
	    "0x0211");
	is_str(dimse_status_name(0x0212), "Failure: Mistyped argument",
	    "0x0212");
	is_str(dimse_status_name(0x0111), "Failure: Duplicate SOP instance",
	    "0x0111");
	is_str(dimse_status_name(0xA801), "Refused: Move Destination unknown",
	    "0xA801");
	is_str(dimse_status_name(0xB007),
	    "Warning: Data Set Does Not Match SOP Class", "0xB007");
	is_str(dimse_status_name(0xFE00), "Cancel", "0xFE00");
	is_str(dimse_status_name(0xFF01), "Pending: Warning, one or more "
	    "optional keys were not supported", "0xFF01");
	is_str(dimse_status_name(0xB123), "Warning", "unknown warning");
	is_str(dimse_status_name(0x0300), "Failure", "unknown failure");
	is_str(dimse_status_name_for(DIMSE_C_MOVE_RSP, 0xB000), "Warning: "
	    "Sub-operations Complete - One or more Failures or Warnings",
	    "0xB000 of a C-MOVE");
	is_str(dimse_status_name_for(DIMSE_C_FIND_RSP, 0xA9FF),
	    "Error: Identifier Does Not Match SOP Class", "0xA9xx of a C-FIND");
	is_str(dimse_status_name_for(DIMSE_C_GET_RQ, 0xC001),
	    "Failed: Unable to process", "0xCxxx of a C-GET");
	is_str(dimse_status_name_for(DIMSE_C_STORE_RSP, 0xB000),
	    "Warning: Coercion of Data Elements", "0xB000 of a C-STORE");
	is_str(dimse_status_name_for(DIMSE_C_FIND_RSP, 0xA700),
	    "Refused: Out of Resources", "other codes of a C-FIND");
	is_str(dimse_tag_name(0x00000110), "MessageID", "tag name");
	is_str(dimse_tag_name(0), "CommandGroupLength", "group length name");
	is_str(dimse_tag_name(0x00080110), "", "not a command tag");
}

/* ---- builders ---- */

static void
test_builders(void)
{
	struct dimse_cmd rq, rsp;
	char long_uid[70];

	memset(long_uid, '1', 65);
	long_uid[65] = '\0';
	is_int(dimse_store_rq(1, CT, long_uid, 0, &rq), -1,
	    "store rq: a 65-digit instance UID is refused");
	is_int(dimse_store_rq(1, "1.2.3a", INST, 0, &rq), -1,
	    "store rq: a bad class UID is refused");
	is_int(dimse_store_rq(1, NULL, INST, 0, &rq), -1,
	    "store rq: a NULL UID is refused");
	is_int(dimse_move_rq(1, MOVE, 0, "SEVENTEEN-CHARS-A", &rq), -1,
	    "move rq: a 17-character AE is refused");
	is_int(dimse_move_rq(1, MOVE, 0, "   ", &rq), -1,
	    "move rq: an all-space AE is refused");
	is_int(dimse_move_rq(1, MOVE, 0, "  SIXTEEN-CHARS-AE  ", &rq), 0,
	    "move rq: 16 characters within spaces");
	is_str(rq.move_dest, "SIXTEEN-CHARS-AE", "trimmed");

	ok(dimse_store_rq(0x1234, CT, INST, DIMSE_PRIORITY_LOW, &rq) == 0,
	    "store rq");
	is_int(rq.dataset_type, DIMSE_DATASET_PRESENT, "store rq: a dataset");
	is_int(rq.priority, DIMSE_PRIORITY_LOW, "store rq: priority");
	ok(dimse_store_rsp(&rq, 0xA700, &rsp) == 0, "store rsp");
	is_int(rsp.command, DIMSE_C_STORE_RSP, "store rsp: command field");
	is_int(rsp.msgid_rsp, 0x1234, "store rsp: responds to 0x1234");
	is_int(rsp.status, 0xA700, "store rsp: status");
	is_int(rsp.dataset_type, DIMSE_DATASET_NONE, "store rsp: no dataset");
	is_str(rsp.affected_class, CT, "store rsp: class from the rq");
	is_str(rsp.affected_instance, INST, "store rsp: instance from the rq");
	is_int(rsp.present, DIMSE_F_COMMAND | DIMSE_F_MSGID_RSP |
	    DIMSE_F_DATASET_TYPE | DIMSE_F_STATUS | DIMSE_F_AFFECTED_CLASS |
	    DIMSE_F_AFFECTED_INSTANCE, "store rsp: exactly those fields");

	is_int(dimse_rsp_init(&rsp, 0, &rq), -1, "no response to a response");
	dimse_cancel_rq(3, &rq);
	is_int(dimse_rsp_init(&rq, 0, &rsp), -1, "no response to a cancel");
	dimse_echo_rq(1, &rq);
	rq.present &= ~(uint32_t)DIMSE_F_MSGID;
	is_int(dimse_rsp_init(&rq, 0, &rsp), -1,
	    "no response to a request without message id");
	rq.present |= DIMSE_F_MSGID;
	rq.command = 0x0031;
	is_int(dimse_rsp_init(&rq, 0, &rsp), -1,
	    "no response to an unknown request");

	dimse_find_rq(2, FIND, 0, &rq);
	dimse_find_rsp(&rq, 0xFF01, &rsp);
	is_int(rsp.dataset_type, DIMSE_DATASET_PRESENT,
	    "pending C-FIND-RSP carries an identifier");
	dimse_find_rsp(&rq, 0xFE00, &rsp);
	is_int(rsp.dataset_type, DIMSE_DATASET_NONE,
	    "cancelled C-FIND-RSP does not");
	is_int(dimse_move_rsp(&rq, 0, &rsp), -1, "move rsp refuses a find rq");
	is_int(dimse_get_rsp(&rq, 0, &rsp), -1, "get rsp refuses a find rq");
	is_int(dimse_action_rsp(&rq, 0, &rsp), -1,
	    "action rsp refuses a find rq");
	is_int(dimse_event_report_rsp(&rq, 0, &rsp), -1,
	    "event report rsp refuses a find rq");
	is_int(dimse_echo_rsp(&rq, 0, &rsp), -1, "echo rsp refuses a find rq");
	is_int(dimse_find_rsp(&rsp, 0, &rq), -1, "find rsp refuses a find rsp");

	dimse_action_rq(4, COMMIT, COMMIT_INST, 1, 1, &rq);
	is_int(rq.present & (DIMSE_F_AFFECTED_CLASS | DIMSE_F_AFFECTED_INSTANCE),
	    0, "action rq: no affected UIDs");
	dimse_action_rsp(&rq, 0, &rsp);
	is_str(rsp.affected_class, COMMIT, "action rsp: affected class from "
	    "the requested");
	is_str(rsp.affected_instance, COMMIT_INST, "action rsp: affected "
	    "instance from the requested");
	ok((rsp.present & DIMSE_F_ACTION_TYPE) && rsp.action_type == 1,
	    "action rsp: action type");
	dimse_event_report_rq(5, COMMIT, COMMIT_INST, 2, 0, &rq);
	is_int(rq.dataset_type, DIMSE_DATASET_NONE, "event report rq without "
	    "dataset");
	dimse_event_report_rsp(&rq, 0, &rsp);
	ok((rsp.present & DIMSE_F_EVENT_TYPE) && rsp.event_type == 2,
	    "event report rsp: event type");

	dimse_move_rq(6, MOVE, 0, "DEST", &rq);
	dimse_move_rsp(&rq, 0xFF00, &rsp);
	dimse_cmd_set_subops(&rsp, 70000, 0, -1, -5);
	ok((rsp.present & (DIMSE_F_REMAINING | DIMSE_F_COMPLETED)) ==
	    (DIMSE_F_REMAINING | DIMSE_F_COMPLETED) &&
	    !(rsp.present & (DIMSE_F_FAILED | DIMSE_F_WARNING)),
	    "subops: negative counts left out");
	is_int(rsp.remaining, 0xffff, "subops: over 65535 sent as 65535");
	dimse_cmd_set_comment(&rsp, "a\001b");
	is_str(rsp.error_comment, "a?b", "comment: control character "
	    "replaced");
	ok(rsp.present & DIMSE_F_ERROR_COMMENT, "comment present");
	is_int(dimse_store_rq_originator(&rq, "", 1), -1,
	    "originator: empty AE refused");
}

/* ---- assembly ---- */

struct feed {
	struct dimse_asm	*a;
	struct dimse_asm_event	 ev;
};

static enum dimse_asm_result
feed(struct feed *f, uint8_t pcid, int cmd, int last, const void *p,
    size_t n)
{
	memset(&f->ev, 0x5a, sizeof(f->ev));
	return dimse_asm_feed(f->a, pcid, cmd, last, p, n, &f->ev);
}

static void
asm_fails(struct feed *f, enum dimse_asm_result r, enum dimse_errcode code,
    const char *needle, const char *what)
{
	const struct dimse_error *e = dimse_asm_error(f->a);

	if (!ok(r == DIMSE_ASM_ERROR && e->code == code &&
	    strstr(e->msg, needle) != NULL, "assembly: %s", what))
		diag("  got %d code %d: %s", r, e->code, e->msg);
	ok(!dimse_asm_idle(f->a) && feed(f, 1, 1, 1, echo_rq_bytes,
	    sizeof(echo_rq_bytes)) == DIMSE_ASM_ERROR &&
	    dimse_asm_error(f->a)->code == code, "assembly: %s: dead after",
	    what);
	dimse_asm_free(f->a);
	ok(f->a == NULL, "dimse_asm_free NULLs");
}

static uint8_t data[1000];	/* a dataset: 0, 1, 2 ... */

/* the C-STORE-RQ of message 3 as a command set */
static void
store_command(struct cs *cmd, struct dimse_cmd *store)
{
	dimse_store_rq(3, CT, INST, 0, store);
	cmd->n = dimse_cmd_encode(store, cmd->b, sizeof(cmd->b));
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
}

static void
test_assembly(void)
{
	struct feed f;
	struct cs cmd;
	struct dimse_cmd store;
	struct dul_pdv v;
	uint64_t total = 0;
	int bad = 0;
	enum dimse_asm_result r;

	store_command(&cmd, &store);

	f.a = dimse_asm_new(0);
	ok(dimse_asm_idle(f.a), "a new assembler is idle");
	r = feed(&f, 1, 1, 1, echo_rq_bytes, sizeof(echo_rq_bytes));
	is_int(r, DIMSE_ASM_COMMAND, "echo in one PDV: command");
	ok(f.ev.pcid == 1 && f.ev.has_dataset == 0 &&
	    f.ev.cmd->command == DIMSE_C_ECHO_RQ, "echo: context 1, no "
	    "dataset, C-ECHO-RQ");
	ok(dimse_asm_idle(f.a) && dimse_asm_messages(f.a) == 1, "echo: the "
	    "message is complete");

	/* a command one byte at a time, with an empty fragment on the way */
	is_int(feed(&f, 5, 1, 0, NULL, 0), DIMSE_ASM_MORE, "empty command "
	    "fragment");
	for (size_t i = 0; i + 1 < cmd.n; i++)
		if (feed(&f, 5, 1, 0, cmd.b + i, 1) != DIMSE_ASM_MORE)
			bad++;
	ok(bad == 0 && !dimse_asm_idle(f.a), "store command in 1-byte "
	    "fragments: more, not idle");
	r = feed(&f, 5, 1, 1, cmd.b + cmd.n - 1, 1);
	is_int(r, DIMSE_ASM_COMMAND, "store command complete");
	ok(f.ev.has_dataset && f.ev.pcid == 5 &&
	    dimse_cmd_equal(f.ev.cmd, &store), "store: the command, a dataset "
	    "follows");

	/* the dataset in many chunks, each passed through in place */
	bad = 0;
	for (size_t o = 0; o < sizeof(data); o += 7) {
		size_t n = sizeof(data) - o < 7 ? sizeof(data) - o : 7;

		r = feed(&f, 5, 0, 0, data + o, n);
		if (r != DIMSE_ASM_DATA || f.ev.data != data + o ||
		    f.ev.len != n || f.ev.offset != o || f.ev.pcid != 5 ||
		    f.ev.cmd->command != DIMSE_C_STORE_RQ)
			bad++;
		total += f.ev.len;
	}
	ok(bad == 0 && total == sizeof(data), "dataset in 143 chunks: each "
	    "in place, offsets running");
	r = feed(&f, 5, 0, 0, NULL, 0);
	ok(r == DIMSE_ASM_DATA && f.ev.len == 0 && f.ev.data == NULL,
	    "empty dataset fragment");
	r = feed(&f, 5, 0, 1, NULL, 0);
	ok(r == DIMSE_ASM_DATA_END && f.ev.len == 0 &&
	    f.ev.offset == sizeof(data), "empty last fragment ends the "
	    "dataset");
	ok(dimse_asm_idle(f.a) && dimse_asm_messages(f.a) == 2, "two "
	    "messages");

	/* one-fragment dataset; then a message on another context */
	feed(&f, 7, 1, 1, cmd.b, cmd.n);
	r = feed(&f, 7, 0, 1, data, 10);
	ok(r == DIMSE_ASM_DATA_END && f.ev.len == 10 && f.ev.offset == 0,
	    "a dataset in one fragment");
	memset(&v, 0, sizeof(v));
	v.pcid = 9;
	v.mch = DUL_MCH_COMMAND | DUL_MCH_LAST;
	v.command = 1;
	v.last = 1;
	v.data = echo_rq_bytes;
	v.len = sizeof(echo_rq_bytes);
	is_int(dimse_asm_feed_pdv(f.a, &v, &f.ev), DIMSE_ASM_COMMAND,
	    "dimse_asm_feed_pdv, the next message on context 9");
	is_int(dimse_asm_messages(f.a), 4, "four messages");
	dimse_asm_free(f.a);
	dimse_asm_free(f.a);	/* NULL-safe */

}

static void
test_assembly_errors(void)
{
	struct feed f;
	struct cs cmd;
	struct dimse_cmd store;
	enum dimse_asm_result r;

	store_command(&cmd, &store);
	f.a = dimse_asm_new(0);
	asm_fails(&f, feed(&f, 0, 1, 1, echo_rq_bytes, 68), DIMSE_E_PCID,
	    "PDV 1: command fragment on presentation context 0", "context 0");
	f.a = dimse_asm_new(0);
	feed(&f, 1, 1, 1, echo_rq_bytes, 68);
	asm_fails(&f, feed(&f, 2, 0, 1, data, 1), DIMSE_E_PCID,
	    "PDV 2: dataset fragment on presentation context 2", "context 2");

	f.a = dimse_asm_new(0);
	asm_fails(&f, feed(&f, 1, 0, 1, data, 4), DIMSE_E_SEQUENCE,
	    "dataset fragment on context 1 before any command",
	    "a dataset first");
	f.a = dimse_asm_new(0);
	feed(&f, 1, 1, 0, cmd.b, 10);
	asm_fails(&f, feed(&f, 1, 0, 0, data, 4), DIMSE_E_SEQUENCE,
	    "while the command on context 1 is incomplete (10 bytes",
	    "a dataset before the command is complete");
	f.a = dimse_asm_new(0);
	feed(&f, 1, 1, 1, cmd.b, cmd.n);
	feed(&f, 1, 0, 0, data, 40);
	asm_fails(&f, feed(&f, 1, 1, 1, echo_rq_bytes, 68), DIMSE_E_SEQUENCE,
	    "command fragment on context 1 while the dataset of C-STORE-RQ "
	    "(message 3) on context 1 is still expected (40 bytes",
	    "a command while a dataset is expected");
	f.a = dimse_asm_new(0);
	feed(&f, 1, 1, 1, cmd.b, cmd.n);
	asm_fails(&f, feed(&f, 3, 0, 1, data, 4), DIMSE_E_CONTEXT,
	    "dataset fragment on context 3, but its command C-STORE-RQ "
	    "(message 3) came on context 1", "a dataset on another context");
	f.a = dimse_asm_new(0);
	feed(&f, 1, 1, 0, cmd.b, 10);
	asm_fails(&f, feed(&f, 3, 1, 1, cmd.b + 10, cmd.n - 10),
	    DIMSE_E_CONTEXT, "command fragment on context 3, but this command "
	    "began on context 1", "a command continued on another context");
	f.a = dimse_asm_new(0);
	feed(&f, 1, 1, 1, echo_rq_bytes, 68);
	asm_fails(&f, feed(&f, 1, 0, 1, data, 4), DIMSE_E_NO_DATASET,
	    "after C-ECHO-RQ (message 1), whose CommandDataSetType 0x0101 says "
	    "no dataset follows", "a dataset after C-ECHO-RQ");
	f.a = dimse_asm_new(0);
	feed(&f, 1, 1, 1, cmd.b, cmd.n);
	feed(&f, 1, 0, 1, data, 4);
	asm_fails(&f, feed(&f, 1, 0, 1, data, 4), DIMSE_E_SEQUENCE,
	    "after the dataset of C-STORE-RQ (message 3) ended",
	    "a second dataset");

	f.a = dimse_asm_new(100);
	feed(&f, 1, 1, 0, data, 60);
	asm_fails(&f, feed(&f, 1, 1, 0, data, 41), DIMSE_E_LIMIT,
	    "over the limit of 100 bytes (60 gathered, 41 more",
	    "a command over a limit of 100");
	{
		uint8_t *big = calloc(1, 65537);

		f.a = dimse_asm_new(0);
		is_int(feed(&f, 1, 1, 0, big, 65536), DIMSE_ASM_MORE,
		    "64 KiB of command is taken");
		asm_fails(&f, feed(&f, 1, 1, 1, big, 1), DIMSE_E_LIMIT,
		    "over the limit of 65536 bytes", "one byte more is not");
		free(big);
	}

	f.a = dimse_asm_new(0);
	feed(&f, 1, 1, 0, echo_rq_bytes, 40);
	r = feed(&f, 1, 1, 1, echo_rq_bytes + 40, 27);
	ok(dimse_asm_error(f.a)->offset == 0 &&
	    dimse_asm_error(f.a)->tag == 0 && dimse_asm_error(f.a)->pdv == 2,
	    "decode error: offset, tag and PDV");
	asm_fails(&f, r, DIMSE_E_GROUP_LENGTH, "PDV 2: command set on context "
	    "1: (0000,0000) CommandGroupLength at byte 0: says 56 bytes follow",
	    "a command set cut short");
	f.a = dimse_asm_new(0);
	asm_fails(&f, feed(&f, 1, 1, 1, NULL, 0), DIMSE_E_TRUNCATED,
	    "command set of 0 bytes", "an empty command set");
}

int
main(void)
{
	test_echo();
	test_roundtrips();
	test_roundtrips_n();
	test_roundtrip_all();
	test_refusals();
	test_value_refusals();
	test_tolerated();
	test_encode_refusals();
	test_check();
	test_names();
	test_builders();
	test_assembly();
	test_assembly_errors();
	return done_testing();
}
