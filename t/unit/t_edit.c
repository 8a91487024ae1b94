/*
 * t_edit.c — edit mode on real files: with no edits the output is the
 * input byte for byte (whatever the chunking); a set, an insert, a
 * removal, a nested edit inside a sequence of defined length and a
 * private element (by creator, existing and new) change exactly the
 * elements they name — every other element, and the pixel data, comes out
 * the same.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "dimse/ds_edit.h"
#include "t/unit/mem.h"
#include "t/unit/tap.h"

#define T(g, e) DS_TAG(g, e)
#define PYD "/usr/lib/python3/dist-packages/pydicom/data/test_files/"

/* ---- a listing of a file's elements: "depth tag vr len sha8" lines ---- */

struct listing {
	char	 text[1 << 20];
	size_t	 n;
	unsigned depth;
	EVP_MD_CTX *big;
};

static void
line(struct listing *l, const struct ds_elem *e, const uint8_t *h)
{
	if (l->n + 80 < sizeof(l->text))
		l->n += (size_t)snprintf(l->text + l->n, sizeof(l->text) - l->n,
		    "%u %08x %s %02x%02x%02x%02x\n", l->depth, e->tag,
		    e->fragment ? "frag" : ds_vr_name(e->vr), h[0], h[1], h[2],
		    h[3]);
}

static int
l_el(void *a, const struct ds_elem *e, const uint8_t *v, size_t n)
{
	uint8_t h[32];

	SHA256(v, n, h);
	line(a, e, h);
	return 0;
}

static int
l_vb(void *a, const struct ds_elem *e)
{
	(void)e;
	((struct listing *)a)->big = EVP_MD_CTX_new();
	EVP_DigestInit_ex(((struct listing *)a)->big, EVP_sha256(), NULL);
	return 0;
}

static int
l_vc(void *a, const struct ds_elem *e, const uint8_t *p, size_t n)
{
	(void)e;
	EVP_DigestUpdate(((struct listing *)a)->big, p, n);
	return 0;
}

static int
l_ve(void *a, const struct ds_elem *e)
{
	uint8_t h[32];
	unsigned int hl = 32;

	EVP_DigestFinal_ex(((struct listing *)a)->big, h, &hl);
	EVP_MD_CTX_free(((struct listing *)a)->big);
	line(a, e, h);
	return 0;
}

static int
l_open(void *a, const struct ds_elem *e)
{
	static const uint8_t z[32];

	line(a, e, z);
	((struct listing *)a)->depth++;
	return 0;
}

static int
l_close(void *a, const struct ds_elem *e)
{
	(void)e;
	((struct listing *)a)->depth--;
	return 0;
}

static const struct ds_callbacks list_cb = {
	.element = l_el, .value_begin = l_vb, .value_chunk = l_vc,
	.value_end = l_ve, .seq_begin = l_open, .item_begin = l_open,
	.item_end = l_close, .seq_end = l_close,
};

static int
list(const uint8_t *d, size_t n, struct listing *l)
{
	struct ds_parser *p = ds_parser_new_file(NULL, &list_cb, l);
	int ok_ = ds_parse_feed(p, d, n) != DS_ERROR &&
	    ds_parse_finish(p) == DS_DONE;

	if (!ok_)
		diag("listing failed: %s", ds_parse_error(p)->msg);
	ds_parser_free(p);
	return ok_ ? 0 : -1;
}

/* Tags (and depth) of the lines only in a ("-") and only in b ("+"). */
static void
changes(const struct listing *a, const struct listing *b, char *out,
    size_t cap)
{
	const struct listing *side[2] = { a, b };
	size_t o = 0;

	out[0] = '\0';
	for (int s = 0; s < 2; s++) {
		const char *p = side[s]->text, *other = side[1 - s]->text;

		while (*p) {
			const char *nl = strchr(p, '\n');
			size_t len = (size_t)(nl - p) + 1;
			char key[96];
			int found = 0;

			snprintf(key, sizeof(key), "%.*s", (int)len, p);
			for (const char *q = other; (q = strstr(q, key)) != NULL;
			    q++)
				if (q == other || q[-1] == '\n') {
					found = 1;
					break;
				}
			if (!found && o + 16 < cap)
				o += (size_t)snprintf(out + o, cap - o, "%c%.10s ",
				    s ? '+' : '-', p);
			p = nl + 1;
		}
	}
}

struct edit_spec {
	int		 remove;
	unsigned	 n;
	uint32_t	 tag[3];
	int		 item[3];
	const char	*creator;	/* for the last step */
	enum ds_vr	 vr;
	const char	*value;
};

/* Run the editor over data (a dataset in ts, or a Part 10 file when ts
 * is NULL) with the given edits, in chunks of step. */
static int
edit_ts(const struct ds_ts *ts, const uint8_t *d, size_t n,
    const struct edit_spec *sp, unsigned nsp, size_t step, struct mem *out,
    unsigned *applied)
{
	struct ds_editor *ed;
	enum ds_result r = DS_NEED_MORE;

	out->n = 0;
	ed = ds_editor_new(ts, NULL, mem_sink, out);
	for (unsigned i = 0; i < nsp; i++) {
		struct ds_path path;

		memset(&path, 0, sizeof(path));
		path.n = sp[i].n;
		for (unsigned k = 0; k < sp[i].n; k++) {
			path.step[k].tag = sp[i].tag[k];
			path.step[k].item = sp[i].item[k];
		}
		path.step[sp[i].n - 1].creator = sp[i].creator;
		if ((sp[i].remove ? ds_edit_remove(ed, &path) :
		    ds_edit_set(ed, &path, sp[i].vr, sp[i].value,
		    strlen(sp[i].value))) < 0) {
			diag("edit refused: %s", ds_editor_error(ed));
			ds_editor_free(ed);
			return -1;
		}
	}
	for (size_t o = 0; o < n && r != DS_ERROR; o += step)
		r = ds_editor_feed(ed, d + o, n - o < step ? n - o : step);
	if (r != DS_ERROR)
		r = ds_editor_finish(ed);
	if (r == DS_ERROR)
		diag("edit failed: %s", ds_editor_error(ed));
	*applied = ds_editor_applied(ed);
	ds_editor_free(ed);
	return r == DS_DONE ? 0 : -1;
}

static int
edit(const uint8_t *d, size_t n, const struct edit_spec *sp, unsigned nsp,
    size_t step, struct mem *out, unsigned *applied)
{
	return edit_ts(NULL, d, n, sp, nsp, step, out, applied);
}

static void
t_identity(void)
{
	static const char *const files[] = {
	    PYD "CT_small.dcm", PYD "MR_small_bigendian.dcm",
	    PYD "MR_small_implicit.dcm", PYD "rtplan.dcm",
	    PYD "MR_small_jpeg_ls_lossless.dcm", PYD "no_meta.dcm" };
	static const size_t steps[] = { 1 << 30, 4096, 7 };
	struct mem m = { 0 };
	unsigned applied;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		size_t n;
		uint8_t *d = slurp(files[i], &n);
		const char *name = strrchr(files[i], '/') + 1;
		int good = d != NULL;

		for (size_t s = 0; good && s < 3; s++) {
			int r = edit(d, n, NULL, 0, steps[s], &m, &applied);

			if (strcmp(name, "no_meta.dcm") == 0)
				good = r < 0;	/* a truncated file */
			else
				good = r == 0 && m.n == n &&
				    memcmp(m.p, d, n) == 0;
		}
		ok(good, "%s: no edits, any chunking: %s", name,
		    strcmp(name, "no_meta.dcm") == 0 ?
		    "refused (truncated)" : "the same bytes out");
		free(d);
	}
	free(m.p);
}

/* Apply edits to a file; compare its listing before and after. */
static void
check(const char *file, const struct edit_spec *sp, unsigned nsp,
    unsigned want_applied, const char *want_changes, const char *what)
{
	static struct listing a, b;
	struct mem m = { 0 };
	char got[8192];
	unsigned applied = 0;
	int same;
	size_t n;
	uint8_t *d = slurp(file, &n);

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	if (d == NULL || list(d, n, &a) < 0 ||
	    edit(d, n, sp, nsp, 4099, &m, &applied) < 0 ||
	    list(m.p, m.n, &b) < 0) {
		ok(0, "%s", what);
		free(d);
		free(m.p);
		return;
	}
	changes(&a, &b, got, sizeof(got));
	/* "PREFIX *": got starts with PREFIX, then only removals nested
	 * below it (depth > 0) */
	if (strchr(want_changes, '*') != NULL) {
		size_t pl = strlen(want_changes) - 1;

		same = strncmp(got, want_changes, pl) == 0 &&
		    strchr(got, '+') == NULL && strstr(got + pl, "-0 ") == NULL;
	} else
		same = strcmp(got, want_changes) == 0;
	ok(applied == want_applied && same, "%s", what);
	if (applied != want_applied || !same)
		diag("applied %u (want %u); changes \"%s\" (want \"%s\")",
		    applied, want_applied, got, want_changes);
	free(d);
	free(m.p);
}

static void
t_edits(void)
{
	const char *ct = PYD "CT_small.dcm", *rt = PYD "rtplan.dcm";
	const char *be = PYD "MR_small_bigendian.dcm";
	struct edit_spec set_name = { 0, 1, { T(0x10, 0x10) }, { 0 }, NULL,
	    DS_VR_PN, "Doe^Jane" };
	struct edit_spec rm_id = { 1, 1, { T(0x10, 0x20) }, { 0 }, NULL,
	    DS_VR_NONE, NULL };
	struct edit_spec ins = { 0, 1, { T(0x10, 0x21) }, { 0 }, NULL,
	    DS_VR_LO, "ISSUER" };
	struct edit_spec last = { 0, 1, { T(0x7fe1, 0x0010) }, { 0 },
	    "VNAMIG", DS_VR_LO, "MIGRATED" };
	struct edit_spec nested = { 0, 2, { T(0x300a, 0x00b0),
	    T(0x300a, 0x00b2) }, { 0, 0 }, NULL, DS_VR_SH, "unit002 " };
	struct edit_spec rm_seq = { 1, 1, { T(0x300a, 0x00b0) }, { 0 }, NULL,
	    DS_VR_NONE, NULL };
	struct edit_spec priv = { 0, 1, { T(0x0009, 0x0002) }, { 0 },
	    "GEMS_IDEN_01", DS_VR_SH, "CT99" };
	struct edit_spec twoitems = { 0, 2, { T(0x300a, 0x00b0),
	    T(0x300a, 0x00b2) }, { 5, 0 }, NULL, DS_VR_SH, "nothing " };
	struct edit_spec all[3] = { set_name, rm_id, ins };

	check(ct, &set_name, 1, 1, "-0 00100010 +0 00100010 ",
	    "CT: replace PatientName, nothing else changes");
	check(be, &set_name, 1, 1, "-0 00100010 +0 00100010 ",
	    "big-endian MR: the same");
	check(ct, &rm_id, 1, 1, "-0 00100020 ", "CT: remove PatientID");
	check(ct, &ins, 1, 1, "+0 00100021 ",
	    "CT: insert IssuerOfPatientID in tag order");
	check(ct, all, 3, 3, "-0 00100010 -0 00100020 +0 00100010 "
	    "+0 00100021 ", "CT: three edits in one pass");
	check(ct, &last, 1, 1, "+0 7fe10010 +0 7fe11010 ",
	    "CT: a private element with a new creator, after the pixels");
	check(ct, &priv, 1, 1, "-0 00091002 +0 00091002 ",
	    "CT: a private element found by its creator");
	check(rt, &nested, 1, 1, "-2 300a00b2 +2 300a00b2 ",
	    "RT plan: a value inside a sequence item");
	check(rt, &twoitems, 1, 0, "",
	    "RT plan: an edit in an item that does not exist changes nothing");
	check(rt, &rm_seq, 1, 1, "-0 300a00b0 *",
	    "RT plan: remove a whole sequence (and nothing outside it)");
}

/* Explicit VR LE element with a 2-byte length at d[*n]. */
static void
el(uint8_t *d, size_t *n, uint16_t g, uint16_t e, const char *vr,
    const char *v)
{
	size_t l = strlen(v);

	d[(*n)++] = (uint8_t)g;
	d[(*n)++] = (uint8_t)(g >> 8);
	d[(*n)++] = (uint8_t)e;
	d[(*n)++] = (uint8_t)(e >> 8);
	d[(*n)++] = (uint8_t)vr[0];
	d[(*n)++] = (uint8_t)vr[1];
	d[(*n)++] = (uint8_t)l;
	d[(*n)++] = 0;
	memcpy(d + *n, v, l);
	*n += l;
}

/* Out of tag order, or a tag twice: an edit of that element is refused
 * (it was inserted before the first higher tag, and the old element
 * copied on after it: both values in the output). */
static void
t_order(void)
{
	struct edit_spec set_id = { 0, 1, { T(0x10, 0x20) }, { 0 }, NULL,
	    DS_VR_LO, "NEWID1" };
	static struct mem out;
	uint8_t d[256];
	size_t n = 0;
	unsigned applied;

	el(d, &n, 0x0010, 0x0010, "PN", "Doe^Jo");
	el(d, &n, 0x0010, 0x0030, "DA", "19700101");
	el(d, &n, 0x0010, 0x0020, "LO", "OLDID1");
	ok(edit_ts(&ds_ts_explicit_le, d, n, &set_id, 1, 1 << 30, &out,
	    &applied) < 0,
	    "an edit of a dataset out of tag order: refused");
	n = 0;
	el(d, &n, 0x0010, 0x0010, "PN", "Doe^Jo");
	el(d, &n, 0x0010, 0x0020, "LO", "OLDID1");
	el(d, &n, 0x0010, 0x0020, "LO", "OLDID2");
	ok(edit_ts(&ds_ts_explicit_le, d, n, &set_id, 1, 1 << 30, &out,
	    &applied) < 0,
	    "an edit of a dataset with a tag twice: refused");
	n = 0;
	el(d, &n, 0x0010, 0x0010, "PN", "Doe^Jo");
	el(d, &n, 0x0010, 0x0020, "LO", "OLDID1");
	el(d, &n, 0x0010, 0x0030, "DA", "19700101");
	ok(edit_ts(&ds_ts_explicit_le, d, n, &set_id, 1, 1 << 30, &out,
	    &applied) == 0 &&
	    applied == 1 && memmem(out.p, out.n, "NEWID1", 6) != NULL &&
	    memmem(out.p, out.n, "OLDID1", 6) == NULL,
	    "  in order: the value replaced");
}

int
main(void)
{
	t_identity();
	t_edits();
	t_order();
	return done_testing();
}
