/*
 * fuzz_vfy_report.c — libFuzzer harness for vnamig-verify's batch report
 * reader (vfy_report_parse, vfy_report_read, src/verify/vfy_report.h).
 * The input is a whole report. Any bytes must give rows or a clear
 * error, never a crash, hang or leak; and what the reader hands back is
 * checked (abort() when broken):
 *	- it answers VFY_REPORT_OK or VFY_REPORT_BAD (never IO), BAD with a
 *	  message; the answer, rows and summary do not depend on the size of
 *	  ERR, and a short ERR holds a prefix of the full message;
 *	- it agrees with the strict leaf checker (vfy_json_leaf, a separate
 *	  recursive walk): a document that checker takes is not "not valid
 *	  JSON" here, and one taken here is taken there unless it has a
 *	  second top-level "seq" or "prev" (which only a leaf may not);
 *	- an accepted report is one object: cut before its closing brace it
 *	  is refused, with whitespace after it it reads the same;
 *	- rows: numbered from 0, their strings NUL-terminated within their
 *	  arrays, a UID at most 64 bytes, an outcome in range (or BAD),
 *	  a row with no complaint has a SOP Instance UID and an outcome;
 *	  when the input has no escape (no '\'), each UID, level and hash
 *	  kept is written in it as a JSON string; a summary count kept is
 *	  written in it as a whole number;
 *	- vfy_report_read on the same bytes (a memfd) gives the same, its
 *	  error the path then ": " then the parser's.
 * The reader is given a buffer of exactly the input's size, so that
 * AddressSanitizer sees a one-byte over-read, also when the corpus is
 * replayed.
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/verify/vfy_json.h"
#include "src/verify/vfy_report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_vfy_report: %s:%d: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

static const char *const outcomes[] = { "migrated", "skipped_present",
	"quarantined", "failed", "pending" };
#define NOUT	(sizeof(outcomes) / sizeof(outcomes[0]))

static char	path[4096];	/* the input as a file */
static char	named[4096];	/* its name, to unlink at exit */
static int	fd = -1;

static void
cleanup(void)
{
	if (named[0] != '\0')
		unlink(named);
}

/* One temporary file for the whole run (as fuzz_vfy_note.c). */
static void
open_file(void)
{
	const char *tmp = getenv("TMPDIR");

#ifdef MFD_CLOEXEC
	if ((fd = memfd_create("fuzz_vfy_report", MFD_CLOEXEC)) >= 0) {
		struct stat sb;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
			return;
		close(fd);
	}
#endif
	snprintf(named, sizeof(named), "%s/fuzz_vfy_report.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	check((fd = mkstemp(named)) >= 0);
	snprintf(path, sizeof(path), "%s", named);
	atexit(cleanup);
}

static void
put_file(const void *p, size_t n)
{
	check(n == 0 || pwrite(fd, p, n, 0) == (ssize_t)n);
	check(ftruncate(fd, (off_t)n) == 0);
}

static int
is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Is "S" (a JSON string of S, unescaped) in P (N bytes)? Case-blind
 * when FOLD (hex digits may be either case). */
static int
has_string(const char *p, size_t n, const char *s, int fold)
{
	size_t l = strlen(s);

	for (size_t i = 0; i + l + 2 <= n; i++) {
		if (p[i] != '"' || p[i + l + 1] != '"')
			continue;
		if (fold ? strncasecmp(p + i + 1, s, l) == 0 :
		    memcmp(p + i + 1, s, l) == 0)
			return 1;
	}
	return 0;
}

/* Is the decimal of V in P (N bytes) with no digit on either side? */
static int
has_number(const char *p, size_t n, uint64_t v)
{
	char dec[24];
	size_t dl = (size_t)snprintf(dec, sizeof(dec), "%" PRIu64, v);

	for (size_t i = 0; i + dl <= n; i++) {
		if (memcmp(p + i, dec, dl) != 0)
			continue;
		if (i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9')
			continue;
		if (i + dl < n && p[i + dl] >= '0' && p[i + dl] <= '9')
			continue;
		return 1;
	}
	return 0;
}

static int
terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static void
check_row(const char *p, size_t n, int plain, const struct vfy_row *row,
    size_t i)
{
	char hex[65];

	check(row->index == i);
	check(terminated(row->sop, sizeof(row->sop)));
	check(terminated(row->study, sizeof(row->study)));
	check(terminated(row->level, sizeof(row->level)));
	check(terminated(row->why, sizeof(row->why)));
	check(strlen(row->sop) <= 64 && strlen(row->study) <= 64);
	check(row->outcome >= VFY_MIGRATED && row->outcome <= VFY_OUTCOME_BAD);
	check(row->has_sent == 0 || row->has_sent == 1);
	check(row->has_target == 0 || row->has_target == 1);
	if (row->why[0] == '\0') {
		check(row->sop[0] != '\0');
		check(row->outcome != VFY_OUTCOME_BAD);
	}
	if (!plain)
		return;
	if (row->sop[0] != '\0')
		check(has_string(p, n, row->sop, 0));
	if (row->study[0] != '\0')
		check(has_string(p, n, row->study, 0));
	if (row->level[0] != '\0')
		check(has_string(p, n, row->level, 0));
	if (row->outcome != VFY_OUTCOME_BAD)
		check(has_string(p, n, outcomes[row->outcome], 0));
	for (int k = 0; k < 2; k++) {
		const uint8_t *h = k == 0 ? row->sent : row->target;

		if (!(k == 0 ? row->has_sent : row->has_target))
			continue;
		for (size_t b = 0; b < 32; b++)
			snprintf(hex + 2 * b, 3, "%02x", h[b]);
		check(has_string(p, n, hex, 1));
	}
}

static void
check_report(const char *p, size_t n, const struct vfy_report *r)
{
	int plain = memchr(p, '\\', n) == NULL;

	check(r->has_summary == 0 || r->has_summary == 1);
	check(r->nrows <= (n + 1) / 2);
	check(r->nrows == 0 || r->rows != NULL);
	/* the search for a row's strings in the input: the first rows */
	for (size_t i = 0; i < r->nrows; i++)
		check_row(p, n, plain && i < 32, &r->rows[i], i);
	check(r->has_expected == 0 || r->has_expected == 1);
	if (r->has_expected) {
		check(r->has_summary);
		check(has_number(p, n, r->expected));
	}
	for (size_t k = 0; k < NOUT; k++) {
		check(r->has_n[k] == 0 || r->has_n[k] == 1);
		if (r->has_n[k]) {
			check(r->has_summary);
			check(has_number(p, n, r->n[k]));
			if (plain)
				check(has_string(p, n, outcomes[k], 0));
		}
	}
	if (plain && r->has_summary)
		check(has_string(p, n, "summary", 0));
}

/* Are A and B the same reading? */
static int
same(const struct vfy_report *a, const struct vfy_report *b)
{
	if (a->nrows != b->nrows || a->has_summary != b->has_summary ||
	    a->has_expected != b->has_expected ||
	    (a->has_expected && a->expected != b->expected))
		return 0;
	/* a count not kept may hold anything (summary() stores v even
	 * when vfy_jcur_u64 did not set it) */
	for (size_t k = 0; k < NOUT; k++)
		if (a->has_n[k] != b->has_n[k] ||
		    (a->has_n[k] && a->n[k] != b->n[k]))
			return 0;
	return a->nrows == 0 ||
	    memcmp(a->rows, b->rows, a->nrows * sizeof(a->rows[0])) == 0;
}

/* vfy_report_parse over a copy of P (N bytes) of exactly N. */
static enum vfy_report_read
parse_at(const char *p, size_t n, struct vfy_report *r, char *err,
    size_t errlen)
{
	char *q = malloc(n > 0 ? n : 1);
	enum vfy_report_read rc;

	check(q != NULL);
	if (n > 0)
		memcpy(q, p, n);
	rc = vfy_report_parse(q, n, r, err, errlen);
	free(q);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct vfy_report r, again;
	struct vfy_leaf leaf;
	char err[512], err2[1024], lerr[512], small[40];
	size_t errlen = size % sizeof(small), end;
	enum vfy_report_read rc, rc2;
	int lr;

	if (fd < 0)
		open_file();

	memset(err, 0x55, sizeof(err));
	rc = parse_at(p, size, &r, err, sizeof(err));
	check(rc == VFY_REPORT_OK || rc == VFY_REPORT_BAD);
	if (rc == VFY_REPORT_BAD)
		check(terminated(err, sizeof(err)) && err[0] != '\0');
	else
		check_report(p, size, &r);

	/* A short (or no) error buffer changes nothing else. */
	memset(small, 0x55, sizeof(small));
	rc2 = parse_at(p, size, &again, errlen > 0 ? small : NULL, errlen);
	check(rc2 == rc);
	check(same(&r, &again));
	if (rc == VFY_REPORT_BAD && errlen > 0) {
		check(memchr(small, '\0', errlen) != NULL);
		check(strncmp(small, err, strlen(small)) == 0);
		check(strlen(small) == strnlen(err, errlen - 1));
	}
	vfy_report_clear(&again);
	check(again.rows == NULL && again.nrows == 0);

	/* The leaf checker walks the same grammar its own way. */
	lr = vfy_json_leaf(p, size, &leaf, lerr, sizeof(lerr));
	if (lr == 0)
		check(rc == VFY_REPORT_OK ||
		    strncmp(err, "not valid JSON", 14) != 0);
	if (rc == VFY_REPORT_OK)
		check(lr == 0 || strstr(lerr, ": a second \"seq\"") != NULL ||
		    strstr(lerr, ": a second \"prev\"") != NULL);

	if (rc == VFY_REPORT_OK) {
		char *q;

		/* Cut before the closing brace: no object. */
		for (end = size; end > 0 && is_ws((unsigned char)p[end - 1]);
		    end--)
			;
		check(end > 0 && p[end - 1] == '}');
		check(parse_at(p, end - 1, &again, err, sizeof(err)) ==
		    VFY_REPORT_BAD);
		vfy_report_clear(&again);
		/* Whitespace after it: the same report. */
		check((q = malloc(size + 3)) != NULL);
		memcpy(q, p, size);
		memcpy(q + size, " \r\n", 3);
		check(parse_at(q, size + 3, &again, err, sizeof(err)) ==
		    VFY_REPORT_OK);
		check(same(&r, &again));
		vfy_report_clear(&again);
		free(q);
	}

	/* Through a file: the same, the path before the parser's error. */
	put_file(p, size);
	memset(err2, 0x55, sizeof(err2));
	rc2 = vfy_report_read(path, &again, err2, sizeof(err2));
	check(rc2 == rc);
	if (rc == VFY_REPORT_OK)
		check(same(&r, &again));
	else {
		size_t pl = strlen(path);

		check(again.rows == NULL && again.nrows == 0);
		memset(err, 0x55, sizeof(err));
		rc2 = parse_at(p, size, &again, err, sizeof(err));
		vfy_report_clear(&again);
		check(strncmp(err2, path, pl) == 0 &&
		    strncmp(err2 + pl, ": ", 2) == 0 &&
		    strcmp(err2 + pl + 2, err) == 0);
	}
	vfy_report_clear(&again);
	vfy_report_clear(&r);
	return 0;
}
