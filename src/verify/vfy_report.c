/*
 * vfy_report.c — the batch report's reader (vfy_report.h), a walk with
 * vfy_json.h's cursor: the top-level object, its "summary" object and
 * its "instances" array of objects. A member of the wrong type is
 * recorded on its row (why) or left unset in the summary, for the caller
 * to report; only a document that is not JSON, or has no instances
 * array, is refused.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/verify/vfy_json.h"
#include "src/verify/vfy_report.h"

const char *const vfy_outcome_names[VFY_OUTCOME_N] = { "migrated",
	"skipped_present", "quarantined", "failed", "pending" };

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 64 hex digits into 32 bytes; -1 when S is not that. */
static int
unhex(const char *s, uint8_t out[VFY_HASH])
{
	uint8_t tmp[VFY_HASH];

	/* decoded aside first: a bad second copy of a member must not
	 * leave half of itself over the good first one */
	if (strlen(s) != 2 * VFY_HASH)
		return -1;
	for (size_t i = 0; i < VFY_HASH; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		tmp[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(out, tmp, VFY_HASH);
	return 0;
}

static void
row_bad(struct vfy_row *row, const char *key, const char *what)
{
	if (row->why[0] == '\0')
		snprintf(row->why, sizeof(row->why), "its %s %s", key, what);
}

/*
 * A string-or-null member into BUF: 1 when a string that fits, 0 when
 * null, 2 when another value or too long (row->why says), -1 on a
 * syntax error.
 */
static int
str_member(struct vfy_jcur *j, struct vfy_row *row, const char *key,
    char *buf, size_t cap)
{
	int r, c = vfy_jcur_peek(j);

	buf[0] = '\0';
	if (c == 'n')
		return vfy_jcur_skip(j) < 0 ? -1 : 0;
	if (c != '"') {
		row_bad(row, key, "is neither a string nor null");
		return vfy_jcur_skip(j) < 0 ? -1 : 2;
	}
	if ((r = vfy_jcur_string(j, buf, cap, NULL)) < 0)
		return -1;
	if (r == 1) {
		row_bad(row, key, "is too long");
		return 2;
	}
	return 1;
}

static int
hash_member(struct vfy_jcur *j, struct vfy_row *row, const char *key,
    uint8_t out[VFY_HASH], int *has)
{
	char hex[2 * VFY_HASH + 2];
	int r;

	if ((r = str_member(j, row, key, hex, sizeof(hex))) < 0)
		return -1;
	if (r == 1 && unhex(hex, out) < 0)
		row_bad(row, key, "is not 64 hex digits");
	else if (r == 1)
		*has = 1;
	return 0;
}

static int
uid_member(struct vfy_jcur *j, struct vfy_row *row, const char *key,
    char out[VFY_UID_MAX + 1])
{
	int r = str_member(j, row, key, out, VFY_UID_MAX + 1);

	if (r == 1 && out[0] == '\0')
		row_bad(row, key, "is empty");
	return r < 0 ? -1 : 0;
}

static int
outcome_member(struct vfy_jcur *j, struct vfy_row *row)
{
	char s[32];
	int r;

	if ((r = str_member(j, row, "outcome", s, sizeof(s))) < 0)
		return -1;
	if (r != 1)
		return 0;
	for (int k = 0; k < VFY_OUTCOME_N; k++)
		if (strcmp(s, vfy_outcome_names[k]) == 0) {
			row->outcome = (enum vfy_outcome)k;
			return 0;
		}
	row_bad(row, "outcome", "is none of migrated, skipped_present, "
	    "quarantined, failed, pending");
	return 0;
}

/* One element of .instances[] into ROW. */
static int
instance(struct vfy_jcur *j, struct vfy_row *row)
{
	char key[32];
	int r;

	row->outcome = VFY_OUTCOME_BAD;
	if (vfy_jcur_peek(j) != '{') {
		snprintf(row->why, sizeof(row->why), "it is not an object");
		return vfy_jcur_skip(j);
	}
	if (vfy_jcur_open(j, '{') < 0)
		return -1;
	while ((r = vfy_jcur_next(j, '}', key, sizeof(key))) == 1) {
		if (strcmp(key, "sop_instance_uid") == 0)
			r = uid_member(j, row, key, row->sop);
		else if (strcmp(key, "study_uid") == 0)
			r = uid_member(j, row, key, row->study);
		else if (strcmp(key, "sent_sha256") == 0)
			r = hash_member(j, row, key, row->sent,
			    &row->has_sent);
		else if (strcmp(key, "target_sha256") == 0)
			r = hash_member(j, row, key, row->target,
			    &row->has_target);
		else if (strcmp(key, "level") == 0)
			r = str_member(j, row, key, row->level,
			    sizeof(row->level)) < 0 ? -1 : 0;
		else if (strcmp(key, "outcome") == 0)
			r = outcome_member(j, row);
		else
			r = vfy_jcur_skip(j);
		if (r < 0)
			return -1;
	}
	if (r < 0)
		return -1;
	if (row->sop[0] == '\0')
		row_bad(row, "sop_instance_uid", "is missing");
	if (row->outcome == VFY_OUTCOME_BAD)
		row_bad(row, "outcome", "is missing");
	return 0;
}

static int
instances(struct vfy_jcur *j, struct vfy_report *r)
{
	size_t cap = 0;
	int k;

	if (vfy_jcur_open(j, '[') < 0)
		return -1;
	while ((k = vfy_jcur_next(j, ']', NULL, 0)) == 1) {
		if (r->nrows == cap) {
			cap = cap == 0 ? 1024 : cap * 2;
			r->rows = realloc(r->rows, cap * sizeof(*r->rows));
			if (r->rows == NULL)
				abort();
		}
		memset(&r->rows[r->nrows], 0, sizeof(r->rows[0]));
		r->rows[r->nrows].index = r->nrows;
		if (instance(j, &r->rows[r->nrows++]) < 0)
			return -1;
	}
	return k;
}

static int
summary(struct vfy_jcur *j, struct vfy_report *r)
{
	char key[32];
	uint64_t v = 0;
	int k, got;

	if (vfy_jcur_open(j, '{') < 0)
		return -1;
	r->has_summary = 1;
	while ((k = vfy_jcur_next(j, '}', key, sizeof(key))) == 1) {
		int *has = NULL;
		uint64_t *dst = NULL;

		if (strcmp(key, "expected") == 0) {
			has = &r->has_expected;
			dst = &r->expected;
		}
		for (int o = 0; o < VFY_OUTCOME_N; o++)
			if (strcmp(key, vfy_outcome_names[o]) == 0) {
				has = &r->has_n[o];
				dst = &r->n[o];
			}
		if (has == NULL) {
			if (vfy_jcur_skip(j) < 0)
				return -1;
			continue;
		}
		if ((got = vfy_jcur_u64(j, &v)) < 0)
			return -1;
		*has = got == 0;
		*dst = v;
	}
	return k;
}

enum vfy_report_read
vfy_report_parse(const void *p, size_t n, struct vfy_report *r, char *err,
    size_t errlen)
{
	struct vfy_jcur j;
	char key[32], jerr[512];
	int k, seen_rows = 0;

	memset(r, 0, sizeof(*r));
	vfy_jcur_init(&j, p, n, jerr, sizeof(jerr));
	if (vfy_jcur_peek(&j) != '{') {
		snprintf(err, errlen, "not a JSON object (a report of GET "
		    "/api/batches/{id}/report is one)");
		return VFY_REPORT_BAD;
	}
	if (vfy_jcur_open(&j, '{') < 0)
		goto syntax;
	while ((k = vfy_jcur_next(&j, '}', key, sizeof(key))) == 1) {
		int c = vfy_jcur_peek(&j);

		if (strcmp(key, "instances") == 0 && c == '[' && !seen_rows) {
			seen_rows = 1;
			k = instances(&j, r);
		} else if (strcmp(key, "summary") == 0 && c == '{' &&
		    !r->has_summary)
			k = summary(&j, r);
		else
			k = vfy_jcur_skip(&j);
		if (k < 0)
			goto syntax;
	}
	if (k < 0 || vfy_jcur_end(&j) < 0)
		goto syntax;
	if (!seen_rows) {
		snprintf(err, errlen, "no \"instances\" array: not a batch "
		    "report (GET /api/batches/{id}/report)");
		return VFY_REPORT_BAD;
	}
	return VFY_REPORT_OK;
 syntax:
	snprintf(err, errlen, "not valid JSON: %s", jerr);
	return VFY_REPORT_BAD;
}

enum vfy_report_read
vfy_report_read(const char *path, struct vfy_report *r, char *err,
    size_t errlen)
{
	enum vfy_report_read rc;
	struct stat sb;
	char *buf;
	size_t got;
	FILE *f;

	memset(r, 0, sizeof(*r));
	if ((f = fopen(path, "rb")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return VFY_REPORT_IO;
	}
	if (fstat(fileno(f), &sb) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		fclose(f);
		return VFY_REPORT_IO;
	}
	if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > VFY_REPORT_MAX) {
		snprintf(err, errlen, "%s: %s", path, !S_ISREG(sb.st_mode) ?
		    "not a regular file" : "larger than 4 GiB");
		fclose(f);
		return VFY_REPORT_IO;
	}
	if ((buf = malloc((size_t)sb.st_size + 1)) == NULL)
		abort();
	got = fread(buf, 1, (size_t)sb.st_size, f);
	if (ferror(f) || got != (size_t)sb.st_size) {
		snprintf(err, errlen, "%s: %s", path, ferror(f) ?
		    strerror(errno) : "it changed size while being read");
		free(buf);
		fclose(f);
		return VFY_REPORT_IO;
	}
	fclose(f);
	rc = vfy_report_parse(buf, got, r, err, errlen);
	if (rc != VFY_REPORT_OK) {
		char e[512];

		snprintf(e, sizeof(e), "%s", err);
		snprintf(err, errlen, "%s: %s", path, e);
		vfy_report_clear(r);
	}
	free(buf);
	return rc;
}

void
vfy_report_clear(struct vfy_report *r)
{
	free(r->rows);
	memset(r, 0, sizeof(*r));
}
