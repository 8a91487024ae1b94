/*
 * vnamig-verify — the independent verifier of vnamigd's audit log and of
 * its migrations. It shares no code with the daemon (only config.h): it
 * re-implements the leaf, tree and checkpoint formats, the batch report
 * and the Part 10 file meta group from their specifications, so that an
 * auditor can read it on its own. Two commands:
 *	audit	 checks an audit export (this file): vfy_json.c is the
 *		 JSON validator, vfy_tree.c the RFC 9162 tree hash,
 *		 vfy_note.c the signed checkpoints, vfy_lines.c the (zstd)
 *		 line reader;
 *	migration re-checks a finished batch against copies fetched from
 *		 the target by another tool (vfy_mig.c): vfy_report.c reads
 *		 the batch report (with vfy_json.c's cursor), vfy_dcm.c the
 *		 Part 10 files and the SHA-256 of their datasets.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/verify/vfy_json.h"
#include "src/verify/vfy_lines.h"
#include "src/verify/vfy_mig.h"
#include "src/verify/vfy_note.h"
#include "src/verify/vfy_tree.h"

#define LEAF_MAX	(16 * 1024 * 1024)	/* bytes of one leaf */
#define PROG		"vnamig-verify"

enum { EXIT_OK = 0, EXIT_BAD = 1, EXIT_USAGE = 2, EXIT_INPUT = 3 };

struct verify {
	struct vfy_keys		*keys;
	struct vfy_ckpt		*ck;		/* sorted by size */
	size_t			 nck;
	size_t			 next;		/* first not yet checked */
	const char		*origin;	/* of the first checkpoint */
	struct vfy_lines	*lines;
	struct vfy_tree		*tree;		/* of leaves 0 .. n-1 */
	uint64_t		 n;
	uint8_t			 last[VFY_HASH];	/* leaf hash of n-1 */
	uint64_t		 signed_size;	/* largest verified size */
	size_t			 nverified;
	int			 quiet;
	int			 allow_unsigned;	/* unsigned leaves: a warning */
	uint64_t		 restored;	/* 1 + the seq of the last
						 * state.restored-from-backup
						 * leaf read; 0: none */

	int			 failed;	/* tampering: exit 1 */
	uint64_t		 bad_seq;
	char			 reason[1024];
	int			 io_failed;	/* cannot read: exit 3 */
};

/* The result of reading the next line as a leaf. */
enum leaf_read { LEAF_OK, LEAF_EOF, LEAF_BAD, LEAF_IO };

static void
usage(FILE *f)
{
	fputs("NAME\n"
"    vnamig-verify - check vnamigd's audit log and its migrations,\n"
"    independently\n"
"\n"
"SYNOPSIS\n"
"    vnamig-verify audit EXPORT [--key PUB]... [--checkpoint FILE]...\n"
"        [--allow-unsigned] [--quiet]\n"
"    vnamig-verify migration --report REPORT.json --dir DIR\n"
"        [--level bytes|dataset] [--json] [--verbose]\n"
"    vnamig-verify --version | --help\n"
"\n"
"DESCRIPTION\n"
"    vnamig-verify shares no code with vnamigd (only OpenSSL): it\n"
"    implements the formats below on its own, so that an auditor can\n"
"    read it alone (src/verify/ in the sources).\n"
"\n"
"  audit\n"
"    Checks an export written by vnamigd --audit-export: that no leaf of\n"
"    the audit log was altered, removed, reordered or inserted since it\n"
"    was signed, and names the first bad one.\n"
"\n"
"    EXPORT is an export directory (DIR/leaves.jsonl or\n"
"    DIR/leaves.jsonl.zst, DIR/checkpoints, DIR/audit-key.pub), or a\n"
"    leaves file itself (.jsonl, or .jsonl.zst for zstd); then the\n"
"    checkpoints are those of the --checkpoint files only.\n"
"\n"
"    All checkpoints are read first and sorted by size; the leaves are\n"
"    then read once, as a stream, in memory that does not grow with\n"
"    their number (the Merkle tree's frontier: at most 64 hashes). It\n"
"    checks:\n"
"    1.  every line is one JSON object (RFC 8259, strictly: valid UTF-8,\n"
"        nothing after it, nested at most 64 deep, at most 16 MiB) whose\n"
"        \"seq\" is its line number, counted from 0;\n"
"    2.  the hash chain: the \"prev\" of leaf k is the leaf hash (lower-\n"
"        case hex) of line k-1; leaf 0 has none;\n"
"    3.  every checkpoint: it carries a good signature by a trusted key,\n"
"        its origin is that of the others, its size is at most the\n"
"        number of leaves, and its root is the root of that many first\n"
"        leaves, computed as they stream past. As every leaf is there,\n"
"        recomputing the root at each size also proves that consecutive\n"
"        checkpoints are consistent (each tree extends the one before,\n"
"        RFC 9162 2.1.4) without consistency proofs; two checkpoints of\n"
"        the same size must have the same root.\n"
"\n"
"    Formats. A leaf is the bytes of its line, without the \"\\n\". Leaf\n"
"    hash = SHA-256(0x00 || leaf), node hash = SHA-256(0x01 || left ||\n"
"    right); the root of n > 1 leaves splits them at the largest power\n"
"    of two below n; the root of none is SHA-256(\"\") (RFC 9162 2.1.1).\n"
"    A checkpoint is a signed note (c2sp.org/signed-note, in the\n"
"    c2sp.org/tlog-checkpoint form); checkpoints are separated by a\n"
"    blank line:\n"
"        ORIGIN\\nSIZE\\nBASE64(ROOT)\\n\\n\n"
"        DASH ORIGIN BASE64(KEYID || SIGNATURE)\\n\n"
"    where DASH is U+2014 EM DASH (UTF-8 e2 80 94), the signature is\n"
"    Ed25519 over the first three lines (with their newlines) and KEYID\n"
"    the first 4 bytes of SHA-256(ORIGIN || \"\\n\" || 0x01 || the 32-byte\n"
"    public key). Signatures by keys that are not trusted are ignored;\n"
"    a checkpoint needs one by a trusted key.\n"
"\n"
"    At the first problem it prints one line on stderr and stops:\n"
"        vnamig-verify: FAIL first_bad_seq=N reason=\"...\"\n"
"    where N is the first leaf that can no longer be trusted:\n"
"    -   a line that is not one JSON object or has the wrong seq: that\n"
"        leaf;\n"
"    -   the chain breaks at leaf k (its prev is not the hash of line\n"
"        k-1): k-1 if the chain goes on at leaf k+1 (line k is intact,\n"
"        so line k-1 was altered) and no verified checkpoint covers\n"
"        leaf k-1, otherwise k (its prev was altered);\n"
"    -   a checkpoint whose root is not that of the leaves although the\n"
"        chain holds (the log was altered and re-chained; after a leaf\n"
"        state.restored-from-backup, the reason names that restore: the\n"
"        checkpoint was signed over the log it rolled back), whose\n"
"        signature fails or is by no trusted key, or whose origin\n"
"        changed: the size of the largest checkpoint below it that\n"
"        verified, or 0 - the first leaf that no signature vouches for;\n"
"    -   a malformed checkpoint file: 0;\n"
"    -   a trusted checkpoint larger than the log: the number of leaves,\n"
"        i.e. the first one missing (the log was cut, or it is an older\n"
"        export: a rollback).\n"
"\n"
"    On success it prints on stdout\n"
"        vnamig-verify: OK leaves=N checkpoints=C key_ids=ID,...\n"
"            signed_size=S unsigned=U root=HEX\n"
"    (one line): the checkpoints that verified, the ids of the keys that\n"
"    signed them, the largest size signed, and the root of all N leaves\n"
"    in hex; it warns on stderr about the U = N - S leaves after the\n"
"    largest checkpoint, which no signature covers.\n"
"\n"
"  migration\n"
"    Re-checks a finished migration batch against copies of its\n"
"    instances fetched from the target by any other tool (DCMTK getscu\n"
"    or movescu into a directory, the target archive's own storage\n"
"    directory, ...), and says whether they agree with vnamigd's\n"
"    verification report.\n"
"\n"
"    REPORT.json is what GET /api/batches/{id}/report answers (JSON).\n"
"    Of each row of .instances[] it reads sop_instance_uid, study_uid,\n"
"    outcome, level, sent_sha256 (SHA-256 of the dataset bytes vnamigd\n"
"    sent: all that follows the Part 10 file meta group, as received\n"
"    from the source) and target_sha256 (its own read-back's, or\n"
"    null); of .summary the counts expected, migrated,\n"
"    skipped_present, quarantined, failed and pending.\n"
"\n"
"    DIR is searched recursively for files of any name; symbolic links\n"
"    to files are followed, to directories not. For each file it\n"
"    checks the 128-byte preamble and \"DICM\", then walks the file\n"
"    meta group (group 0002, explicit VR little endian) element by\n"
"    element: (0002,0000) is not trusted, a group length that\n"
"    disagrees with the elements is a META warning. It takes\n"
"    MediaStorageSOPInstanceUID (0002,0003) and TransferSyntaxUID\n"
"    (0002,0010); the dataset is every byte after the group, hashed\n"
"    with SHA-256 as it is in the file, whatever its transfer syntax.\n"
"    A deflated dataset (1.2.840.10008.1.2.1.99) is hashed compressed,\n"
"    as stored: a target that deflated it anew will differ. A dataset\n"
"    of odd length (only a deflated one can be) is hashed with one\n"
"    zero byte added, as it is padded in transfer (PS3.5 A.5). A file\n"
"    that is not Part 10 is a NOT-PART10 warning; a DICOMDIR is\n"
"    ignored.\n"
"\n"
"    Each row whose outcome is migrated must have a file with its SOP\n"
"    Instance UID whose dataset hashes to its sent_sha256. Rows with\n"
"    another outcome are counted by outcome, not checked. The report's\n"
"    own arithmetic is checked too: each summary count equals the\n"
"    number of rows with that outcome, the five add up to expected,\n"
"    every row has a SOP Instance UID and a known outcome, and no UID\n"
"    is in two rows.\n"
"\n"
"    It prints one line per finding on stdout, KIND [UID] [PATH]:\n"
"    DETAIL, where KIND is one of\n"
"        MISSING     no file has the UID of a migrated row (failure)\n"
"        DIFFERS     the file's dataset hash is not sent_sha256; the\n"
"                    line gives both, and what vnamigd's read-back had\n"
"                    (failure)\n"
"        DIFFERS (re-encoded?)\n"
"                    the same with --level dataset (warning)\n"
"        UNCHECKED   a migrated row without a sent_sha256 (failure)\n"
"        REPORT      the report does not add up, or a row is malformed\n"
"                    (failure)\n"
"        EXTRA       a file that no migrated row names; the line says\n"
"                    whether the report has its UID with another\n"
"                    outcome (warning)\n"
"        DUPLICATE   several files with one UID: one with the bytes sent\n"
"                    is enough (warning)\n"
"        NOT-PART10, META, SKIPPED   about files of DIR (warnings)\n"
"    then the files read, the rows not checked by outcome, and\n"
"        N migrated: N ok, N missing, N differ; report adds up: yes|no\n"
"    (\", N unchecked\" before the \";\" when there are any).\n"
"\n"
"OPTIONS\n"
"    --key PUB\n"
"        Trust the Ed25519 public keys in PUB (PEM, \"BEGIN PUBLIC KEY\",\n"
"        one block or more). Repeat it for every key the log was signed\n"
"        with: keys rotate, and vnamigd records each rotation as an\n"
"        audit.key leaf. Without --key, the export's own\n"
"        DIR/audit-key.pub (every key the log was signed with) is used,\n"
"        with a warning: keys taken from the export prove that the log\n"
"        was not damaged, not that nobody rewrote the export. Use the\n"
"        copies of vnamigd's KEY.pub kept where its state is not.\n"
"    --checkpoint FILE\n"
"        Also check the checkpoints in FILE: vnamigd's\n"
"        DATA_DIR/audit-checkpoints, or a copy kept elsewhere. A trusted\n"
"        checkpoint larger than the exported log is how a log cut short\n"
"        or rolled back to an older export is caught.\n"
"    --allow-unsigned\n"
"        audit: leaves that no verified checkpoint covers (none at all,\n"
"        or those after the largest) are a warning, not a FAIL. The\n"
"        chain alone proves nothing: anyone can recompute it after an\n"
"        edit. Without this option such leaves fail, first_bad_seq the\n"
"        first of them (0 when nothing is signed). vnamigd\n"
"        --audit-export signs everything it exports.\n"
"    -q, --quiet\n"
"        audit: print nothing but the FAIL line and errors.\n"
"    --report REPORT.json\n"
"        migration: the batch report (required).\n"
"    --dir DIR\n"
"        migration: the copies fetched from the target (required). On a\n"
"        terminal, a progress line on standard error while they are read.\n"
"    --level bytes|dataset\n"
"        migration: bytes (the default) requires the very bytes sent.\n"
"        dataset is for a target that re-encodes what it stores (it\n"
"        changes the transfer syntax or the encoding): a file that\n"
"        differs is then reported as DIFFERS (re-encoded?) and counted\n"
"        as a warning, not a failure. vnamigd's canonical dataset\n"
"        digest (its level dataset) is not recomputed here: that needs\n"
"        a full dataset parser, which vnamig-verify does not have; at\n"
"        this level only the presence of each instance is proved.\n"
"    --json\n"
"        migration: print one JSON object instead of the lines: the\n"
"        counts, \"report_adds_up\", \"not_checked\" by outcome,\n"
"        \"problems\" (kind, failure, subject, path, detail) and \"exit\".\n"
"    -v, --verbose\n"
"        migration: also a line \"OK bytes UID PATH: SHA256\" for each\n"
"        migrated instance that is there as sent.\n"
"    -V, --version\n"
"        Print the version and exit.\n"
"    -h, --help\n"
"        Print this page and exit.\n"
"\n"
"EXIT STATUS\n"
"    audit: 0 verified; 1 tampering or an inconsistency found (the FAIL\n"
"    line says where); 2 bad command line; 3 an input cannot be read (a\n"
"    missing file, bad zstd data, a key that is not an Ed25519 public\n"
"    key in PEM).\n"
"    migration: 0 every migrated instance is there with the bytes sent\n"
"    (with --level dataset: is there) and the report adds up; 1 an\n"
"    instance is missing, differs or cannot be checked, or the report\n"
"    does not add up; 2 bad command line; 3 the report cannot be read\n"
"    or is not a batch report (not JSON, no instances array), or DIR\n"
"    or a file in it cannot be read (the findings are still printed).\n"
"\n"
"EXAMPLES\n"
"    vnamigd -c /etc/vnamigd.yaml --audit-export /tmp/audit\n"
"    vnamig-verify audit /tmp/audit --key /root/vnamig-audit.pem.pub \\\n"
"        --checkpoint /var/lib/vnamig/audit-checkpoints\n"
"    curl -H 'Authorization: Bearer TOKEN' \\\n"
"        http://vnamig:8080/api/batches/7/report > report.json\n"
"    getscu -aet ME -aec ARCHIVE -od /tmp/fetched archive 104 \\\n"
"        -k QueryRetrieveLevel=STUDY -k StudyInstanceUID=1.2.3\n"
"    vnamig-verify migration --report report.json --dir /tmp/fetched\n"
"\n"
"SEE ALSO\n"
"    vnamigd(8), RFC 9162, https://c2sp.org/signed-note,\n"
"    https://c2sp.org/tlog-checkpoint\n", f);
}

static void
say_warning(const struct verify *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
say_warning(const struct verify *v, const char *fmt, ...)
{
	va_list ap;

	if (v->quiet)
		return;
	fprintf(stderr, PROG ": warning: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
say_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void
say_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Record the first failure: leaf SEQ is the first that is not trusted. */
static void
fail(struct verify *v, uint64_t seq, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
fail(struct verify *v, uint64_t seq, const char *fmt, ...)
{
	va_list ap;

	if (v->failed || v->io_failed)
		return;
	v->failed = 1;
	v->bad_seq = seq;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

/* The FAIL line; in the reason " and \ are escaped with \, control
 * characters shown as ?, so the line stays one quoted string. */
static void
print_fail(const struct verify *v)
{
	fprintf(stderr, PROG ": FAIL first_bad_seq=%llu reason=\"",
	    (unsigned long long)v->bad_seq);
	for (const char *p = v->reason; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fputc('\\', stderr);
		fputc((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p,
		    stderr);
	}
	fputs("\"\n", stderr);
}

static const char restore_mark[] =
    "\"event\":\"state.restored-from-backup\"";

/*
 * read_leaf: the next line, as leaf number v->n + AHEAD: its leaf hash
 * into H and its seq and prev into LEAF. LEAF_BAD with the reason in WHY
 * when it is not a well-formed leaf with that seq.
 */
static enum leaf_read
read_leaf(struct verify *v, uint64_t ahead, struct vfy_leaf *leaf,
    uint8_t h[VFY_HASH], char *why, size_t whylen)
{
	uint64_t seq = v->n + ahead;
	const char *line;
	size_t len;
	char jerr[256];

	switch (vfy_lines_next(v->lines, &line, &len)) {
	case VFY_LINE_EOF:
		return LEAF_EOF;
	case VFY_LINE_ERR:
		say_error("%s", vfy_lines_error(v->lines));
		return LEAF_IO;
	case VFY_LINE_LONG:
		snprintf(why, whylen, "leaf %llu is longer than %d MiB",
		    (unsigned long long)seq, LEAF_MAX >> 20);
		return LEAF_BAD;
	case VFY_LINE_CUT:
		snprintf(why, whylen, "leaf %llu has no newline: the file "
		    "ends inside it (was it cut short?)",
		    (unsigned long long)seq);
		return LEAF_BAD;
	case VFY_LINE_OK:
		break;
	}
	vfy_leaf_hash(line, len, h);
	/* (canonical JSON: the pair's bytes, as written) */
	if (ahead == 0 && memmem(line, len, restore_mark,
	    sizeof(restore_mark) - 1) != NULL)
		v->restored = seq + 1;
	if (vfy_json_leaf(line, len, leaf, jerr, sizeof(jerr)) < 0) {
		snprintf(why, whylen, "leaf %llu is not one JSON object: %s",
		    (unsigned long long)seq, jerr);
		return LEAF_BAD;
	}
	if (!leaf->has_seq || !leaf->seq_ok) {
		snprintf(why, whylen, "leaf %llu has %s", (unsigned long long)
		    seq, leaf->has_seq ? "a seq that is not an integer in "
		    "0..2^64-1" : "no seq");
		return LEAF_BAD;
	}
	if (leaf->seq != seq) {
		snprintf(why, whylen, "the leaf on line %llu has seq %llu, not "
		    "%llu (leaves removed, inserted, reordered, or its seq "
		    "altered)", (unsigned long long)seq + 1,
		    (unsigned long long)leaf->seq, (unsigned long long)seq);
		return LEAF_BAD;
	}
	return LEAF_OK;
}

/* Does LEAF's prev name the leaf hash H? */
static int
prev_is(const struct vfy_leaf *leaf, const uint8_t h[VFY_HASH])
{
	char hex[2 * VFY_HASH + 1];

	vfy_hex(h, VFY_HASH, hex);
	return leaf->has_prev && leaf->prev_ok && strcmp(leaf->prev, hex) == 0;
}

/*
 * Leaf k = v->n (hash HK) does not chain to leaf k-1. Which was altered?
 * If leaf k+1 chains to line k, line k is as it was signed into the
 * chain, so line k-1 changed (unless a verified checkpoint covers it);
 * otherwise leaf k's own prev changed.
 */
static void
chain_break(struct verify *v, const struct vfy_leaf *lk,
    const uint8_t hk[VFY_HASH])
{
	uint64_t k = v->n;
	struct vfy_leaf next;
	uint8_t h[VFY_HASH];
	char why[512];
	int resumes;

	if (!lk->has_prev || !lk->prev_ok) {
		fail(v, k, "leaf %llu has %s", (unsigned long long)k,
		    lk->has_prev ? "a prev that is not a hash" : "no prev");
		return;
	}
	resumes = read_leaf(v, 1, &next, h, why, sizeof(why)) == LEAF_OK &&
	    prev_is(&next, hk);
	if (resumes && k - 1 >= v->signed_size)
		fail(v, k - 1, "leaf %llu was altered: leaf %llu's prev is not "
		    "its hash, while leaf %llu's prev matches leaf %llu",
		    (unsigned long long)k - 1, (unsigned long long)k,
		    (unsigned long long)k + 1, (unsigned long long)k);
	else
		fail(v, k, "leaf %llu was altered: its prev is not the hash "
		    "of leaf %llu%s", (unsigned long long)k,
		    (unsigned long long)k - 1, resumes ? ", which a verified "
		    "checkpoint covers" : "");
}

static const char *
ckpt_name(const struct vfy_ckpt *c, char *buf, size_t n)
{
	snprintf(buf, n, "checkpoint %u of %s (size %llu)", c->index,
	    c->file, (unsigned long long)c->size);
	return buf;
}

/*
 * A checkpoint's root differs from that of the first c->size = v->n
 * leaves, while the chain so far holds. The last leaf it covers may have
 * been altered without re-chaining: then leaf n does not chain to it but
 * leaf n+1 chains to leaf n, which names leaf n-1. Otherwise the log was
 * re-chained (or the signer signed another log): the first leaf no
 * verified checkpoint vouches for is the answer.
 */
static void
root_mismatch(struct verify *v, const struct vfy_ckpt *c, uint64_t below,
    const struct vfy_ckpt *twin)
{
	struct vfy_leaf a, b;
	uint8_t ha[VFY_HASH], hb[VFY_HASH], root[VFY_HASH];
	char why[512], name[512], tname[512], rh[2 * VFY_HASH + 1],
	    ch[2 * VFY_HASH + 1];

	ckpt_name(c, name, sizeof(name));
	if (twin != NULL) {
		fail(v, below, "%s and %s, both signed by trusted keys, have "
		    "different roots: the signer signed two different logs of "
		    "that size (a fork); this log is the latter's", name,
		    ckpt_name(twin, tname, sizeof(tname)));
		return;
	}
	if (v->n > 0 && read_leaf(v, 0, &a, ha, why, sizeof(why)) ==
	    LEAF_OK && !prev_is(&a, v->last) && read_leaf(v, 1, &b, hb, why,
	    sizeof(why)) == LEAF_OK && prev_is(&b, ha)) {
		fail(v, v->n - 1, "leaf %llu was altered: the root of %s "
		    "differs, leaf %llu's prev is not its hash, while leaf "
		    "%llu's prev matches leaf %llu", (unsigned long long)v->n -
		    1, name, (unsigned long long)v->n, (unsigned long long)v->n
		    + 1, (unsigned long long)v->n);
		return;
	}
	vfy_tree_root(v->tree, root);
	vfy_hex(root, VFY_HASH, rh);
	vfy_hex(c->root, VFY_HASH, ch);
	if (v->restored > 0 && v->restored - 1 < c->size) {
		/* signed over the log a backup restore replaced */
		fail(v, below, "%s signs root %s, but the first %llu leaves "
		    "have root %s: leaf %llu records a restore from a backup "
		    "(state.restored-from-backup), which rolled the log back; "
		    "this checkpoint was signed over the log it replaced, so "
		    "leaves from %llu on are not the ones it signed (a "
		    "rollback by that restore, or leaves altered since)", name,
		    ch, (unsigned long long)c->size, rh, (unsigned long long)
		    (v->restored - 1), (unsigned long long)below);
		return;
	}
	fail(v, below, "%s signs root %s, but the first %llu leaves have "
	    "root %s, though their chain holds: leaves from %llu on were "
	    "altered and re-chained (or the signer signed another log)", name,
	    ch, (unsigned long long)c->size, rh, (unsigned long long)below);
}

/* Signature and origin of C; 0 when good, else the failure is recorded
 * at BELOW. */
static int
check_signed(struct verify *v, const struct vfy_ckpt *c, uint64_t below)
{
	char name[512];

	ckpt_name(c, name, sizeof(name));
	if (c->state != VFY_SIG_OK) {
		fail(v, below, "%s: %s", name, c->why);
		return -1;
	}
	if (strcmp(c->origin, v->origin) != 0) {
		fail(v, below, "%s: its origin '%s' is not '%s', that of the "
		    "checkpoints before it", name, c->origin, v->origin);
		return -1;
	}
	return 0;
}

/*
 * Check the checkpoints of size v->n, the leaves read so far. 0 or -1.
 * BELOW is the largest size verified before: the first leaf that a
 * failure here leaves without a signature vouching for it.
 */
static int
check_at(struct verify *v)
{
	const struct vfy_ckpt *bad = NULL, *good = NULL;
	uint64_t below = v->signed_size;
	uint8_t root[VFY_HASH];

	if (v->next == v->nck || v->ck[v->next].size != v->n)
		return 0;
	vfy_tree_root(v->tree, root);
	while (v->next < v->nck && v->ck[v->next].size == v->n) {
		const struct vfy_ckpt *c = &v->ck[v->next++];

		if (check_signed(v, c, below) < 0)
			return -1;
		if (memcmp(root, c->root, VFY_HASH) != 0) {
			if (bad == NULL)
				bad = c;
			continue;
		}
		good = c;
		v->signed_size = c->size;
		v->nverified++;
	}
	if (bad != NULL) {
		root_mismatch(v, bad, below, good);
		return -1;
	}
	return 0;
}

/* After the last leaf: checkpoints larger than the log. */
static void
check_end(struct verify *v)
{
	char name[512];

	if (v->next == v->nck)
		return;
	/* Any trusted one proves leaves are missing. */
	for (size_t i = v->next; i < v->nck; i++) {
		const struct vfy_ckpt *c = &v->ck[i];

		if (c->state != VFY_SIG_OK ||
		    strcmp(c->origin, v->origin) != 0)
			continue;
		fail(v, v->n, "%s, signed by key id %s, covers %llu leaves "
		    "but the log has %llu: leaves from %llu on are missing "
		    "(the log was cut short, or this is an older export: a "
		    "rollback)",
		    ckpt_name(c, name, sizeof(name)), c->keyid,
		    (unsigned long long)c->size, (unsigned long long)v->n,
		    (unsigned long long)v->n);
		return;
	}
	check_signed(v, &v->ck[v->next], v->signed_size);
}

/* Stream the leaves: chain, then the checkpoints at each size. */
static void
stream(struct verify *v)
{
	struct vfy_leaf leaf;
	uint8_t h[VFY_HASH];
	char why[512];

	for (;;) {
		if (check_at(v) < 0)
			return;
		switch (read_leaf(v, 0, &leaf, h, why, sizeof(why))) {
		case LEAF_EOF:
			check_end(v);
			return;
		case LEAF_IO:
			v->io_failed = 1;
			return;
		case LEAF_BAD:
			fail(v, v->n, "%s", why);
			return;
		case LEAF_OK:
			break;
		}
		if (v->n == 0 && leaf.has_prev) {
			fail(v, 0, "leaf 0 has a prev (the first leaf has "
			    "none)");
			return;
		}
		if (v->n > 0 && !prev_is(&leaf, v->last)) {
			chain_break(v, &leaf, h);
			return;
		}
		vfy_tree_add(v->tree, h);
		memcpy(v->last, h, VFY_HASH);
		v->n++;
	}
}

/* Sort by size, then text, so duplicates (the same note read from two
 * files) are neighbours. */
static int
ckpt_cmp(const void *a, const void *b)
{
	const struct vfy_ckpt *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int r;

	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	if ((r = memcmp(x->text, y->text, n)) != 0)
		return r;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* Sort, drop duplicates, check every signature. */
static void
prepare_ckpts(struct verify *v)
{
	size_t o = 0;

	if (v->nck == 0)
		return;
	qsort(v->ck, v->nck, sizeof(*v->ck), ckpt_cmp);
	for (size_t i = 0; i < v->nck; i++) {
		if (o > 0 && ckpt_cmp(&v->ck[o - 1], &v->ck[i]) == 0) {
			vfy_ckpt_clear(&v->ck[i]);
			continue;
		}
		v->ck[o++] = v->ck[i];
	}
	v->nck = o;
	for (size_t i = 0; i < v->nck; i++)
		vfy_ckpt_verify(&v->ck[i], v->keys);
	v->origin = v->ck[0].origin;
}

static void
summary(struct verify *v)
{
	uint8_t root[VFY_HASH];
	char rh[2 * VFY_HASH + 1], ids[256];
	uint64_t unsig = v->n - v->signed_size;

	vfy_keys_used(v->keys, ids, sizeof(ids));
	vfy_tree_root(v->tree, root);
	vfy_hex(root, VFY_HASH, rh);
	if (!v->allow_unsigned && v->n > 0 && (v->nverified == 0 ||
	    unsig > 0)) {
		/* a chain anyone can recompute proves nothing by itself:
		 * what no trusted signature covers fails, unless asked */
		if (v->nverified == 0)
			fail(v, 0, "no checkpoint by a trusted key: nothing is "
			    "signed, so nothing shows that these leaves are the "
			    "ones the daemon wrote (only that they chain); "
			    "--allow-unsigned to check the chain alone");
		else
			fail(v, v->signed_size, "leaves %llu..%llu (%llu) come "
			    "after the largest checkpoint: no signature covers "
			    "them; anyone who could write the export could have "
			    "added them (--allow-unsigned: a warning)",
			    (unsigned long long)v->signed_size,
			    (unsigned long long)v->n - 1,
			    (unsigned long long)unsig);
		return;
	}
	if (v->nverified == 0)
		say_warning(v, "no checkpoint: nothing is signed, so nothing "
		    "shows that these leaves are the ones the daemon wrote "
		    "(only that they chain)");
	else if (unsig > 0)
		say_warning(v, "leaves %llu..%llu (%llu) come after the "
		    "largest checkpoint: no signature covers them; anyone who "
		    "could write the export could have added them",
		    (unsigned long long)v->signed_size,
		    (unsigned long long)v->n - 1, (unsigned long long)unsig);
	if (v->quiet)
		return;
	printf(PROG ": OK leaves=%llu checkpoints=%zu key_ids=%s "
	    "signed_size=%llu unsigned=%llu root=%s\n", (unsigned long long)
	    v->n, v->nverified, ids[0] != '\0' ? ids : "-",
	    (unsigned long long)v->signed_size, (unsigned long long)unsig, rh);
}

static int
has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), k = strlen(suf);

	return n >= k && strcmp(s + n - k, suf) == 0;
}

/* A path in the export directory (malloc'd). */
static char *
in_dir(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p == NULL)
		abort();
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static int
exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
}

/* Where EXPORT's parts are: *leaves and *ckpts (NULL: none) malloc'd. */
static int
locate(const char *export, char **leaves, int *zstd, char **ckpts,
    char **key)
{
	struct stat sb;
	char *plain, *z;

	*leaves = *ckpts = *key = NULL;
	if (stat(export, &sb) < 0) {
		say_error("cannot open %s: %s", export, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		if ((*leaves = strdup(export)) == NULL)
			abort();
		*zstd = has_suffix(export, ".zst");
		return 0;
	}
	plain = in_dir(export, "leaves.jsonl");
	z = in_dir(export, "leaves.jsonl.zst");
	if (exists(plain) == exists(z)) {
		say_error("%s: %s", export, exists(plain) ? "holds both "
		    "leaves.jsonl and leaves.jsonl.zst: name the one to check" :
		    "no leaves.jsonl or leaves.jsonl.zst: not an audit export");
		free(plain);
		free(z);
		return -1;
	}
	*zstd = exists(z);
	*leaves = *zstd ? z : plain;
	free(*zstd ? plain : z);
	*ckpts = in_dir(export, "checkpoints");
	*key = in_dir(export, "audit-key.pub");
	return 0;
}

static int
load_ckpts(struct verify *v, const char *path)
{
	char err[1024];

	switch (vfy_ckpt_read(path, &v->ck, &v->nck, err, sizeof(err))) {
	case VFY_READ_OK:
		return 0;
	case VFY_READ_IO:
		say_error("%s", err);
		return EXIT_INPUT;
	case VFY_READ_BAD:
		fail(v, 0, "%s", err);
		return EXIT_BAD;
	}
	return EXIT_INPUT;
}

/* Keys and checkpoints; an exit status when they cannot be had. */
static int
load_inputs(struct verify *v, char **keys, size_t nkeys, char **cks,
    size_t ncks, const char *ekey, const char *eckpts)
{
	char err[1024];
	int rc;

	for (size_t i = 0; i < nkeys; i++)
		if (vfy_keys_load(v->keys, keys[i], err, sizeof(err)) < 0) {
			say_error("%s", err);
			return EXIT_INPUT;
		}
	if (nkeys == 0 && ekey != NULL) {
		if (vfy_keys_load(v->keys, ekey, err, sizeof(err)) < 0) {
			say_error("%s", err);
			return EXIT_INPUT;
		}
		say_warning(v, "no --key: using %s from the export itself; "
		    "this proves the log was not damaged, not that nobody "
		    "rewrote the export and signed it anew (give --key with a "
		    "copy of the public key kept elsewhere)", ekey);
	}
	if (eckpts != NULL && (rc = load_ckpts(v, eckpts)) != 0)
		return rc;
	for (size_t i = 0; i < ncks; i++)
		if ((rc = load_ckpts(v, cks[i])) != 0)
			return rc;
	if (v->nck > 0 && nkeys == 0 && ekey == NULL) {
		say_error("a leaves file with --checkpoint needs --key");
		return EXIT_USAGE;
	}
	return 0;
}

static int
verify_audit(const char *export, char **keys, size_t nkeys, char **cks,
    size_t ncks, int quiet, int allow_unsigned)
{
	struct verify v = { 0 };
	char *leaves = NULL, *eckpts = NULL, *ekey = NULL, err[1024];
	int zstd = 0, rc;

	v.quiet = quiet;
	v.allow_unsigned = allow_unsigned;
	v.keys = vfy_keys_new();
	v.tree = vfy_tree_new();
	if (locate(export, &leaves, &zstd, &eckpts, &ekey) < 0)
		rc = EXIT_INPUT;
	else if ((rc = load_inputs(&v, keys, nkeys, cks, ncks, ekey,
	    eckpts)) == 0) {
		prepare_ckpts(&v);
		if ((v.lines = vfy_lines_open(leaves, zstd, LEAF_MAX, err,
		    sizeof(err))) == NULL) {
			say_error("%s", err);
			rc = EXIT_INPUT;
		} else
			stream(&v);
	}
	if (v.io_failed)
		rc = EXIT_INPUT;
	else if (v.failed) {
		print_fail(&v);
		rc = EXIT_BAD;
	} else if (rc == 0) {
		summary(&v);
		if (v.failed) {		/* what no signature covers */
			print_fail(&v);
			rc = EXIT_BAD;
		}
	}
	vfy_lines_close(v.lines);
	for (size_t i = 0; i < v.nck; i++)
		vfy_ckpt_clear(&v.ck[i]);
	free(v.ck);
	vfy_tree_free(v.tree);
	vfy_keys_free(v.keys);
	free(leaves);
	free(eckpts);
	free(ekey);
	return rc;
}

enum { OPT_KEY = 256, OPT_CHECKPOINT, OPT_REPORT, OPT_DIR, OPT_LEVEL,
	OPT_JSON, OPT_ALLOW_UNSIGNED };

static const struct option longopts[] = {
	{ "key",	required_argument, NULL, OPT_KEY },
	{ "checkpoint",	required_argument, NULL, OPT_CHECKPOINT },
	{ "report",	required_argument, NULL, OPT_REPORT },
	{ "dir",	required_argument, NULL, OPT_DIR },
	{ "level",	required_argument, NULL, OPT_LEVEL },
	{ "json",	no_argument,	   NULL, OPT_JSON },
	{ "allow-unsigned", no_argument,   NULL, OPT_ALLOW_UNSIGNED },
	{ "verbose",	no_argument,	   NULL, 'v' },
	{ "quiet",	no_argument,	   NULL, 'q' },
	{ "version",	no_argument,	   NULL, 'V' },
	{ "help",	no_argument,	   NULL, 'h' },
	{ NULL,		0,		   NULL, 0 },
};

#define AUDIT_USAGE	"usage: " PROG " audit EXPORT [--key PUB]... " \
	"[--checkpoint FILE]... [--allow-unsigned] [--quiet]\n"
#define MIG_USAGE	"usage: " PROG " migration --report REPORT.json " \
	"--dir DIR [--level bytes|dataset] [--json] [--verbose]\n"

/* The command line after the options. */
struct cmdline {
	char			**keys, **cks;
	size_t			  nkeys, ncks;
	int			  quiet;
	int			  allow_unsigned;
	int			  level_set;
	struct vfy_mig_opts	  mo;
};

/* migration: its options only; EXIT_USAGE or 0. */
static int
check_migration(const struct cmdline *c, int nargs)
{
	const char *why = NULL;

	if (nargs != 1)
		why = "migration takes no argument but its options";
	else if (c->mo.report == NULL)
		why = "migration needs --report REPORT.json";
	else if (c->mo.dir == NULL)
		why = "migration needs --dir DIR";
	else if (c->nkeys > 0 || c->ncks > 0 || c->quiet ||
	    c->allow_unsigned)
		why = "--key, --checkpoint, --allow-unsigned and --quiet are "
		    "for audit";
	if (why == NULL)
		return 0;
	say_error("%s", why);
	fputs(MIG_USAGE, stderr);
	return EXIT_USAGE;
}

/* audit: its options only; EXIT_USAGE or 0. */
static int
check_audit(const struct cmdline *c, int nargs)
{
	const char *why = NULL;

	if (nargs != 2)
		why = nargs == 1 ? "audit needs EXPORT" :
		    "audit takes one EXPORT";
	else if (c->mo.report != NULL || c->mo.dir != NULL || c->level_set ||
	    c->mo.json || c->mo.verbose)
		why = "--report, --dir, --level, --json and --verbose are "
		    "for migration";
	if (why == NULL)
		return 0;
	say_error("%s", why);
	fputs(AUDIT_USAGE, stderr);
	return EXIT_USAGE;
}

/* Parse the options into C; -1 to exit with *RC. */
static int
options(int argc, char **argv, struct cmdline *c, int *rc)
{
	int ch;

	while ((ch = getopt_long(argc, argv, "qvVh", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_KEY: c->keys[c->nkeys++] = optarg; break;
		case OPT_CHECKPOINT: c->cks[c->ncks++] = optarg; break;
		case OPT_REPORT: c->mo.report = optarg; break;
		case OPT_DIR: c->mo.dir = optarg; break;
		case OPT_JSON: c->mo.json = 1; break;
		case 'v': c->mo.verbose = 1; break;
		case 'q': c->quiet = 1; break;
		case OPT_ALLOW_UNSIGNED: c->allow_unsigned = 1; break;
		case OPT_LEVEL:
			c->level_set = 1;
			if (strcmp(optarg, "bytes") == 0)
				c->mo.level = VFY_LEVEL_BYTES;
			else if (strcmp(optarg, "dataset") == 0)
				c->mo.level = VFY_LEVEL_DATASET;
			else {
				say_error("--level %s: bytes or dataset (pixel "
				    "needs a dataset parser, which this tool "
				    "does not have)", optarg);
				fputs(MIG_USAGE, stderr);
				*rc = EXIT_USAGE;
				return -1;
			}
			break;
		case 'V':
			printf(PROG " %s\n", PACKAGE_VERSION);
			*rc = EXIT_OK;
			return -1;
		case 'h':
			usage(stdout);
			*rc = EXIT_OK;
			return -1;
		default:
			usage(stderr);
			*rc = EXIT_USAGE;
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct cmdline c = { 0 };
	const char *cmd;
	int nargs, rc;

	/* At most one of each per argument. */
	if ((c.keys = calloc((size_t)argc + 1, sizeof(*c.keys))) == NULL ||
	    (c.cks = calloc((size_t)argc + 1, sizeof(*c.cks))) == NULL)
		abort();
	if (options(argc, argv, &c, &rc) < 0)
		goto out;
	nargs = argc - optind;
	cmd = nargs > 0 ? argv[optind] : NULL;
	if (cmd != NULL && strcmp(cmd, "migration") == 0) {
		if ((rc = check_migration(&c, nargs)) == 0)
			rc = vfy_migration(&c.mo);
	} else if (cmd != NULL && strcmp(cmd, "audit") == 0) {
		if ((rc = check_audit(&c, nargs)) == 0)
			rc = verify_audit(argv[optind + 1], c.keys, c.nkeys,
			    c.cks, c.ncks, c.quiet, c.allow_unsigned);
	} else {
		say_error(cmd == NULL ? "no command (audit or migration)" :
		    "unknown command: audit or migration");
		fputs(AUDIT_USAGE, stderr);
		fputs(MIG_USAGE, stderr);
		rc = EXIT_USAGE;
	}
out:
	free(c.keys);
	free(c.cks);
	vfy_sha256_done();
	return rc;
}
