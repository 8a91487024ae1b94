/*
 * vfy_mig.c — vnamig-verify migration (vfy_mig.h). Reads the report
 * (vfy_report.c) and every Part 10 file under the directory (vfy_dcm.c),
 * then matches them by SOP Instance UID, both sorted: each migrated row
 * must have a file whose dataset hashes to the row's sent_sha256. Every
 * finding is a problem record, printed at the end as text or JSON, so
 * that both forms say the same.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/util/progress.h"
#include "src/verify/vfy_dcm.h"
#include "src/verify/vfy_json.h"
#include "src/verify/vfy_mig.h"
#include "src/verify/vfy_report.h"

#define PROG		"vnamig-verify"
#define DIR_DEPTH	64		/* nested directories walked */

enum { EXIT_OK = 0, EXIT_BAD = 1, EXIT_INPUT = 3 };

struct mfile {
	char		 uid[VFY_UID_MAX + 1];
	char		*path;
	uint8_t		 sha[VFY_HASH];
	int		 deflated;
	int		 used;		/* a migrated row names it */
};

/* A finding: failures make the exit status 1, warnings do not. */
struct problem {
	const char	*kind;		/* MISSING, DIFFERS, EXTRA, ... */
	int		 failure;
	char		*subject;	/* a UID, a path, or NULL */
	char		*path;		/* the file concerned, or NULL */
	char		*detail;
};

struct mig {
	const struct vfy_mig_opts *o;
	struct vfy_report	 rep;
	struct mfile		*files;
	size_t			 nfiles, fcap;
	size_t			 ndicomdir, nnotp10;
	struct problem		*pb;
	size_t			 npb, pbcap;
	size_t			 nrow[VFY_OUTCOME_N];	/* rows per outcome */
	size_t			 migrated, ok, missing, differ, unchecked;
	size_t			 extra;
	int			 adds_up;
	int			 failed;	/* a failure recorded */
	int			 io_failed;	/* a part cannot be read */
};

static void *
xrealloc(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		abort();
	if ((p = realloc(p, n * size)) == NULL)
		abort();
	return p;
}

static char *
xstrdup(const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		abort();
	return d;
}

static void
say_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* the files read and hashed so far, on a terminal */
static struct progress prog;

static void
say_error(const char *fmt, ...)
{
	va_list ap;

	progress_clear(&prog);
	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Record a finding; KIND is a literal, the strings are copied. */
static void
problem(struct mig *m, const char *kind, int failure, const char *subject,
    const char *path, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

static void
problem(struct mig *m, const char *kind, int failure, const char *subject,
    const char *path, const char *fmt, ...)
{
	struct problem *p;
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (m->npb == m->pbcap) {
		m->pbcap = m->pbcap == 0 ? 64 : m->pbcap * 2;
		m->pb = xrealloc(m->pb, m->pbcap, sizeof(*m->pb));
	}
	p = &m->pb[m->npb++];
	p->kind = kind;
	p->failure = failure;
	p->subject = xstrdup(subject);
	p->path = xstrdup(path);
	p->detail = xstrdup(detail);
	if (failure)
		m->failed = 1;
}

static const char *
hex(const uint8_t h[VFY_HASH], char out[2 * VFY_HASH + 1])
{
	vfy_hex(h, VFY_HASH, out);
	return out;
}

/* ---------------------------------------------------------------------- */
/* The directory. */

static void
add_file(struct mig *m, const char *path)
{
	struct vfy_dcm_file f;
	struct mfile *mf;
	char err[600];

	switch (vfy_dcm_file(path, &f, err, sizeof(err))) {
	case VFY_DCM_IO:
		say_error("%s: %s", path, err);
		m->io_failed = 1;
		return;
	case VFY_DCM_BAD:
		m->nnotp10++;
		problem(m, "NOT-PART10", 0, NULL, path, "%s; not used", err);
		return;
	case VFY_DCM_OK:
		break;
	}
	if (strcmp(f.meta.class_uid, VFY_CLASS_DICOMDIR) == 0) {
		m->ndicomdir++;		/* a media directory, no instance */
		return;
	}
	if (f.meta.has_glen && f.meta.glen != f.meta.walked)
		problem(m, "META", 0, NULL, path, "(0002,0000) says the file "
		    "meta group has %lu bytes after it, its elements take %zu: "
		    "the dataset is taken to start at byte %zu",
		    (unsigned long)f.meta.glen, f.meta.walked, f.meta.end);
	if (m->nfiles == m->fcap) {
		m->fcap = m->fcap == 0 ? 256 : m->fcap * 2;
		m->files = xrealloc(m->files, m->fcap, sizeof(*m->files));
	}
	mf = &m->files[m->nfiles++];
	memset(mf, 0, sizeof(*mf));
	memcpy(mf->uid, f.meta.sop_uid, sizeof(mf->uid));
	mf->path = xstrdup(path);
	memcpy(mf->sha, f.sha, VFY_HASH);
	mf->deflated = f.deflated;
}

/* Every regular file under PATH, in name order; symbolic links to files
 * are followed, to directories not (no loops). */
static void
walk(struct mig *m, const char *path, int depth)
{
	struct dirent **ents;
	struct stat sb;
	int n;

	if ((n = scandir(path, &ents, NULL, alphasort)) < 0) {
		say_error("%s: cannot read the directory: %s", path,
		    strerror(errno));
		m->io_failed = 1;
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		size_t len = strlen(path) + strlen(name) + 2;
		char *child;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
			free(ents[i]);
			continue;
		}
		child = xrealloc(NULL, len, 1);
		snprintf(child, len, "%s/%s", path, name);
		if (lstat(child, &sb) < 0) {
			say_error("%s: %s", child, strerror(errno));
			m->io_failed = 1;
		} else if (S_ISDIR(sb.st_mode)) {
			if (depth < DIR_DEPTH)
				walk(m, child, depth + 1);
			else
				problem(m, "SKIPPED", 0, NULL, child, "nested "
				    "deeper than %d directories: not read",
				    DIR_DEPTH);
		} else if (S_ISLNK(sb.st_mode) && stat(child, &sb) == 0 &&
		    S_ISDIR(sb.st_mode))
			problem(m, "SKIPPED", 0, NULL, child, "a symbolic link "
			    "to a directory: not followed");
		else if (S_ISREG(sb.st_mode)) {
			add_file(m, child);
			progress_add(&prog, 1, (uint64_t)sb.st_size);
		}
		free(child);
		free(ents[i]);
	}
	free(ents);
}

/* ---------------------------------------------------------------------- */
/* The report's arithmetic. */

static int
row_cmp(const void *a, const void *b)
{
	const struct vfy_row *const *x = a, *const *y = b;
	int r = strcmp((*x)->sop, (*y)->sop);

	if (r != 0)
		return r;
	return (*x)->index < (*y)->index ? -1 : (*x)->index > (*y)->index;
}

static void
report_bad(struct mig *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
report_bad(struct mig *m, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	m->adds_up = 0;
	problem(m, "REPORT", 1, NULL, NULL, "%s", msg);
}

/* The summary against the rows: each outcome's count, and their sum
 * against expected. */
static void
check_summary(struct mig *m)
{
	const struct vfy_report *r = &m->rep;
	uint64_t sum = 0;
	int complete = 1;

	if (!r->has_summary) {
		report_bad(m, "no \"summary\" object: nothing to check the "
		    "rows against");
		return;
	}
	for (int o = 0; o < VFY_OUTCOME_N; o++) {
		if (!r->has_n[o]) {
			report_bad(m, "summary.%s is missing or not a "
			    "non-negative integer", vfy_outcome_names[o]);
			complete = 0;
			continue;
		}
		if (r->n[o] != m->nrow[o])
			report_bad(m, "summary.%s is %llu, but %zu rows are "
			    "%s", vfy_outcome_names[o], (unsigned long long)
			    r->n[o], m->nrow[o], vfy_outcome_names[o]);
		if (sum + r->n[o] < sum)
			complete = 0;
		sum += r->n[o];
	}
	if (!r->has_expected)
		report_bad(m, "summary.expected is missing or not a "
		    "non-negative integer");
	else if (complete && sum != r->expected)
		report_bad(m, "summary: migrated + skipped_present + "
		    "quarantined + failed + pending = %llu, but expected is "
		    "%llu", (unsigned long long)sum,
		    (unsigned long long)r->expected);
}

/* Rows that are not well formed, and UIDs in more than one row. SORTED
 * is the rows by UID. */
static void
check_rows(struct mig *m, struct vfy_row **sorted)
{
	const struct vfy_report *r = &m->rep;

	for (size_t i = 0; i < r->nrows; i++) {
		const struct vfy_row *row = &r->rows[i];

		if (row->outcome != VFY_OUTCOME_BAD)
			m->nrow[row->outcome]++;
		if (row->why[0] != '\0')
			report_bad(m, "instances[%zu]%s%s: %s", i,
			    row->sop[0] ? " " : "", row->sop, row->why);
	}
	for (size_t i = 0, j; i < r->nrows; i = j) {
		for (j = i + 1; j < r->nrows &&
		    strcmp(sorted[i]->sop, sorted[j]->sop) == 0; j++)
			;
		if (j - i > 1 && sorted[i]->sop[0] != '\0')
			report_bad(m, "%s is in %zu rows (instances[%zu] and "
			    "[%zu]%s): one instance, one row", sorted[i]->sop,
			    j - i, sorted[i]->index, sorted[i + 1]->index,
			    j - i > 2 ? ", ..." : "");
	}
}

/* ---------------------------------------------------------------------- */
/* Rows against files. */

static int
file_cmp(const void *a, const void *b)
{
	const struct mfile *x = a, *y = b;
	int r = strcmp(x->uid, y->uid);

	return r != 0 ? r : strcmp(x->path, y->path);
}

/* The first file with UID, and how many there are (*N). */
static struct mfile *
files_of(struct mig *m, const char *uid, size_t *n)
{
	size_t lo = 0, hi = m->nfiles, k;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(m->files[mid].uid, uid) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (k = lo; k < m->nfiles && strcmp(m->files[k].uid, uid) == 0; k++)
		;
	*n = k - lo;
	return *n > 0 ? &m->files[lo] : NULL;
}

/* What vnamigd's own read-back said, for a file hashing to GOT. */
static void
readback(const struct vfy_row *row, const uint8_t got[VFY_HASH], char *buf,
    size_t n)
{
	char h[2 * VFY_HASH + 1];

	if (!row->has_target)
		snprintf(buf, n, "vnamigd read nothing back");
	else if (memcmp(row->target, got, VFY_HASH) == 0)
		snprintf(buf, n, "vnamigd's read-back had this file's hash");
	else if (memcmp(row->target, row->sent, VFY_HASH) == 0)
		snprintf(buf, n, "vnamigd's read-back had what was sent");
	else
		snprintf(buf, n, "vnamigd's read-back had %s",
		    hex(row->target, h));
}

static void
check_migrated(struct mig *m, const struct vfy_row *row)
{
	char h1[2 * VFY_HASH + 1], h2[2 * VFY_HASH + 1], rb[160];
	const char *lvl = row->level[0] ? row->level : "none";
	struct mfile *f, *match = NULL;
	size_t n;
	int dataset = m->o->level == VFY_LEVEL_DATASET;

	m->migrated++;
	if (row->sop[0] == '\0') {
		m->unchecked++;		/* check_rows said why */
		return;
	}
	if ((f = files_of(m, row->sop, &n)) == NULL) {
		m->missing++;
		problem(m, "MISSING", 1, row->sop, NULL, "study %s: no file "
		    "in the directory has this SOP Instance UID, which the "
		    "report has as migrated (vnamigd verified it at level %s)",
		    row->study[0] ? row->study : "?", lvl);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		f[i].used = 1;
		if (row->has_sent && memcmp(f[i].sha, row->sent, VFY_HASH) ==
		    0 && match == NULL)
			match = &f[i];
	}
	if (n > 1)
		problem(m, "DUPLICATE", 0, row->sop, f[0].path, "%zu files "
		    "have this SOP Instance UID; %s", n, match != NULL ?
		    "one has the bytes sent" : "none has the bytes sent");
	if (!row->has_sent) {
		m->unchecked++;
		problem(m, "UNCHECKED", 1, row->sop, f[0].path, "the report "
		    "gives no sent_sha256 for it: nothing to compare with");
		return;
	}
	if (match != NULL) {
		m->ok++;
		if (m->o->verbose)
			problem(m, "OK bytes", 0, row->sop, match->path, "%s",
			    hex(match->sha, h1));
		return;
	}
	m->differ++;
	readback(row, f[0].sha, rb, sizeof(rb));
	problem(m, dataset ? "DIFFERS (re-encoded?)" : "DIFFERS", !dataset,
	    row->sop, f[0].path, "the dataset in the file%s has SHA-256 %s, "
	    "vnamigd sent %s; %s (level %s%s)", f[0].deflated ? " (deflated, "
	    "hashed as stored)" : "", hex(f[0].sha, h1), hex(row->sent, h2),
	    rb, lvl, !dataset && (strcmp(lvl, "dataset") == 0 ||
	    strcmp(lvl, "pixel") == 0) ? ": the target re-encodes? see "
	    "--level dataset" : "");
}

/* Files that no migrated row names. SORTED: the rows by UID. */
static void
check_extra(struct mig *m, struct vfy_row **sorted)
{
	for (size_t i = 0; i < m->nfiles; i++) {
		const struct mfile *f = &m->files[i];
		struct vfy_row key, *kp = &key, **hit;

		if (f->used)
			continue;
		m->extra++;
		memcpy(key.sop, f->uid, sizeof(key.sop));
		key.index = 0;
		/* the first row with this UID, if any */
		hit = NULL;
		for (size_t lo = 0, hi = m->rep.nrows; lo < hi;) {
			size_t mid = lo + (hi - lo) / 2;
			int c = strcmp(sorted[mid]->sop, kp->sop);

			if (c == 0)
				hit = &sorted[mid];
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (hit != NULL && (*hit)->outcome != VFY_OUTCOME_BAD)
			problem(m, "EXTRA", 0, f->uid, f->path, "not a "
			    "migrated instance of the report: it is %s there",
			    vfy_outcome_names[(*hit)->outcome]);
		else
			problem(m, "EXTRA", 0, f->uid, f->path, "the report "
			    "has no row for this SOP Instance UID");
	}
}

/* ---------------------------------------------------------------------- */
/* Output. */

/* S on one line: control characters shown as '?'. */
static void
put_text(const char *s)
{
	for (; *s != '\0'; s++)
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

/* S as a JSON string; bytes that are not UTF-8 as \u00XX. */
static void
put_json(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, k;

	if (s == NULL) {
		fputs("null", stdout);
		return;
	}
	n = strlen(s);
	putchar('"');
	for (size_t i = 0; i < n; i += k) {
		k = vfy_utf8_len(p + i, n - i);
		if (p[i] == '"' || p[i] == '\\')
			printf("\\%c", p[i]);
		else if (p[i] < 0x20 || k == 0)
			printf("\\u%04x", p[i]);
		else
			fwrite(p + i, 1, k, stdout);
		if (k == 0)
			k = 1;
	}
	putchar('"');
}

static void
print_text(const struct mig *m)
{
	const char *sep = "";

	for (size_t i = 0; i < m->npb; i++) {
		const struct problem *p = &m->pb[i];

		printf("%s", p->kind);
		if (p->subject != NULL) {
			putchar(' ');
			put_text(p->subject);
		}
		if (p->path != NULL) {
			putchar(' ');
			put_text(p->path);
		}
		fputs(": ", stdout);
		put_text(p->detail);
		putchar('\n');
	}
	if (m->o->level == VFY_LEVEL_DATASET && m->differ > 0)
		printf("note: --level dataset: a target may re-encode what it "
		    "stores, so a file that differs is a warning; vnamigd's "
		    "canonical dataset digest is not recomputed here\n");
	printf("files: %zu Part 10 instances in %s", m->nfiles, m->o->dir);
	if (m->ndicomdir > 0)
		printf(", %zu DICOMDIR ignored", m->ndicomdir);
	if (m->nnotp10 > 0)
		printf(", %zu not Part 10", m->nnotp10);
	printf("; %zu extra\n", m->extra);
	printf("not checked:");
	for (int o = VFY_SKIPPED; o < VFY_OUTCOME_N; o++) {
		printf("%s %zu %s", sep, m->nrow[o], vfy_outcome_names[o]);
		sep = ",";
	}
	putchar('\n');
	printf("%zu migrated: %zu ok, %zu missing, %zu differ", m->migrated,
	    m->ok, m->missing, m->differ);
	if (m->unchecked > 0)
		printf(", %zu unchecked", m->unchecked);
	printf("; report adds up: %s\n", m->adds_up ? "yes" : "no");
}

static void
print_json(const struct mig *m, int rc)
{
	printf("{\"command\":\"migration\",\"report\":");
	put_json(m->o->report);
	printf(",\"dir\":");
	put_json(m->o->dir);
	printf(",\"level\":\"%s\",\"files\":%zu,\"dicomdir\":%zu,"
	    "\"not_part10\":%zu,\"migrated\":%zu,\"ok\":%zu,\"missing\":%zu,"
	    "\"differ\":%zu,\"unchecked\":%zu,\"extra\":%zu,"
	    "\"report_adds_up\":%s,\"not_checked\":{",
	    m->o->level == VFY_LEVEL_DATASET ? "dataset" : "bytes",
	    m->nfiles, m->ndicomdir, m->nnotp10, m->migrated, m->ok,
	    m->missing, m->differ, m->unchecked, m->extra,
	    m->adds_up ? "true" : "false");
	for (int o = VFY_SKIPPED; o < VFY_OUTCOME_N; o++)
		printf("%s\"%s\":%zu", o > VFY_SKIPPED ? "," : "",
		    vfy_outcome_names[o], m->nrow[o]);
	printf("},\"problems\":[");
	for (size_t i = 0; i < m->npb; i++) {
		const struct problem *p = &m->pb[i];

		printf("%s{\"kind\":", i > 0 ? "," : "");
		put_json(p->kind);
		printf(",\"failure\":%s,\"subject\":", p->failure ? "true" :
		    "false");
		put_json(p->subject);
		printf(",\"path\":");
		put_json(p->path);
		printf(",\"detail\":");
		put_json(p->detail);
		putchar('}');
	}
	printf("],\"exit\":%d}\n", rc);
}

/* ---------------------------------------------------------------------- */

static void
mig_clear(struct mig *m)
{
	for (size_t i = 0; i < m->nfiles; i++)
		free(m->files[i].path);
	free(m->files);
	for (size_t i = 0; i < m->npb; i++) {
		free(m->pb[i].subject);
		free(m->pb[i].path);
		free(m->pb[i].detail);
	}
	free(m->pb);
	vfy_report_clear(&m->rep);
}

int
vfy_migration(const struct vfy_mig_opts *o)
{
	struct mig m = { 0 };
	struct vfy_row **sorted;
	struct stat sb;
	char err[1024];
	int rc;

	m.o = o;
	m.adds_up = 1;
	if (vfy_report_read(o->report, &m.rep, err, sizeof(err)) !=
	    VFY_REPORT_OK) {
		say_error("cannot read the report %s", err);
		return EXIT_INPUT;
	}
	if (stat(o->dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		int e = errno;

		say_error("cannot read the directory %s: %s", o->dir,
		    stat(o->dir, &sb) < 0 ? strerror(e) : "not a directory");
		mig_clear(&m);
		return EXIT_INPUT;
	}
	progress_init(&prog, 0, "files read and hashed");
	walk(&m, o->dir, 0);
	progress_end(&prog);
	if (m.nfiles > 0)
		qsort(m.files, m.nfiles, sizeof(*m.files), file_cmp);
	sorted = xrealloc(NULL, m.rep.nrows + 1, sizeof(*sorted));
	for (size_t i = 0; i < m.rep.nrows; i++)
		sorted[i] = &m.rep.rows[i];
	if (m.rep.nrows > 0)
		qsort(sorted, m.rep.nrows, sizeof(*sorted), row_cmp);

	check_rows(&m, sorted);
	check_summary(&m);
	for (size_t i = 0; i < m.rep.nrows; i++)
		if (m.rep.rows[i].outcome == VFY_MIGRATED)
			check_migrated(&m, &m.rep.rows[i]);
	check_extra(&m, sorted);

	rc = m.io_failed ? EXIT_INPUT : m.failed ? EXIT_BAD : EXIT_OK;
	if (o->json)
		print_json(&m, rc);
	else
		print_text(&m);
	if (m.io_failed)
		say_error("some of %s could not be read (above): the result "
		    "is incomplete", o->dir);
	free(sorted);
	mig_clear(&m);
	return rc;
}
