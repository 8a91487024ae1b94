/*
 * t_write.c — re-encoding real files written by other tools (the shared
 * corpus, python3-pydicom's test files): each is parsed and re-encoded
 * into every uncompressed syntax (encapsulated ones into their own
 * syntax); the result parses again to the same canonical and pixel
 * digests and element count, and re-encoding it once more gives the same
 * bytes. Also the Part 10 header round-trips through the parser.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dimse/ds_digest.h"
#include "dimse/ds_write.h"
#include "t/unit/mem.h"
#include "t/unit/tap.h"

struct result {
	uint8_t		 c[32], px[32];
	int		 has_px, ok;
	uint64_t	 elements;
	char		 ts[65];
};

/* Tee: every callback goes to the digester and (if set) the writer. */
struct tee {
	struct ds_digest	*dg;
	struct ds_writer	*w;
	char			*ts;
};

#define TEE(name, ...) do { \
	struct tee *t = arg; \
	if (ds_digest_callbacks()->name(t->dg, __VA_ARGS__) != 0) \
		return -1; \
	return t->w ? ds_writer_callbacks()->name(t->w, __VA_ARGS__) : 0; \
} while (0)

static int t_el(void *arg, const struct ds_elem *e, const uint8_t *v,
    size_t n) { TEE(element, e, v, n); }
static int t_vb(void *arg, const struct ds_elem *e) { TEE(value_begin, e); }
static int t_vc(void *arg, const struct ds_elem *e, const uint8_t *p,
    size_t n) { TEE(value_chunk, e, p, n); }
static int t_ve(void *arg, const struct ds_elem *e) { TEE(value_end, e); }
static int t_sb(void *arg, const struct ds_elem *e) { TEE(seq_begin, e); }
static int t_ib(void *arg, const struct ds_elem *e) { TEE(item_begin, e); }
static int t_ie(void *arg, const struct ds_elem *e) { TEE(item_end, e); }
static int t_se(void *arg, const struct ds_elem *e) { TEE(seq_end, e); }

static int
t_meta(void *arg, const struct ds_meta *m)
{
	struct tee *t = arg;

	snprintf(t->ts, 65, "%s", m->ts_uid);
	return 0;
}

static const struct ds_callbacks tee_cb = {
	.meta = t_meta, .element = t_el, .value_begin = t_vb,
	.value_chunk = t_vc, .value_end = t_ve, .seq_begin = t_sb,
	.item_begin = t_ib, .item_end = t_ie, .seq_end = t_se,
};

/*
 * Parse data (a file when ts is NULL, else a dataset in ts), digesting;
 * when out is set, also re-encode into out_ts.
 */
static struct result
run(const uint8_t *data, size_t n, const struct ds_ts *ts,
    const struct ds_ts *out_ts, struct mem *out)
{
	struct result r;
	struct tee t;
	struct ds_parser *p;

	memset(&r, 0, sizeof(r));
	t.dg = ds_digest_new();
	t.w = out ? ds_writer_new(out_ts, mem_sink, out) : NULL;
	t.ts = r.ts;
	p = ts ? ds_parser_new_dataset(ts, NULL, &tee_cb, &t) :
	    ds_parser_new_file(NULL, &tee_cb, &t);
	if (ds_parse_feed(p, data, n) != DS_ERROR &&
	    ds_parse_finish(p) == DS_DONE &&
	    ds_digest_final(t.dg, r.c, r.px, &r.has_px) == 0)
		r.ok = 1;
	else
		diag("parse failed: %s", ds_parse_error(p)->msg);
	r.elements = ds_parse_elements(p);
	ds_parser_free(p);
	ds_digest_free(t.dg);
	ds_writer_free(t.w);
	return r;
}

static void
roundtrip(const char *path)
{
	static const struct ds_ts *const targets[] = { &ds_ts_implicit_le,
	    &ds_ts_explicit_le, &ds_ts_explicit_be };
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	struct result orig, again;
	struct mem a = { 0 }, b = { 0 };
	const struct ds_ts *src;
	size_t n;
	uint8_t *data = slurp(path, &n);

	if (data == NULL) {
		ok(0, "%s: readable", path);
		return;
	}
	orig = run(data, n, NULL, NULL, NULL);
	src = ds_ts_lookup(orig.ts);
	if (!ok(orig.ok && src != NULL, "%s parses (%s)", name, orig.ts)) {
		free(data);
		return;
	}
	for (size_t i = 0; i < 3; i++) {
		const struct ds_ts *to = src->encapsulated ? src : targets[i];

		if (src->encapsulated && i > 0)
			break;
		a.n = b.n = 0;
		(void)run(data, n, NULL, to, &a);
		again = run(a.p, a.n, to, to, &b);
		ok(again.ok && memcmp(again.c, orig.c, 32) == 0 &&
		    memcmp(again.px, orig.px, 32) == 0 &&
		    again.has_px == orig.has_px,
		    "%s -> %s: same canonical and pixel digests", name,
		    to->name);
		is_int(again.elements, orig.elements - 0, "  same element count");
		ok(a.n == b.n && memcmp(a.p, b.p, a.n) == 0,
		    "  re-encoding the result gives the same %zu bytes", a.n);
	}
	free(a.p);
	free(b.p);
	free(data);
}

static void
t_header(void)
{
	struct mem m = { 0 };
	struct result r;

	ok(ds_write_part10_header(mem_sink, &m, "1.2.840.10008.5.1.4.1.1.7",
	    "1.2.3.4.5", ds_ts_explicit_le.uid) == 0, "Part 10 header written");
	r = run(m.p, m.n, NULL, NULL, NULL);
	ok(r.ok, "  it parses (meta group length agrees)");
	is_str(r.ts, "1.2.840.10008.1.2.1", "  with its transfer syntax");
	is_int(m.n, 132 + 12 + 14 + 34 + 18 + 28 + 38 + 18, "  size");
	free(m.p);
}

int
main(void)
{
	const char *top = getenv("top_srcdir");
	char shared[4096];
	static const char *const pyd[] = { "CT_small.dcm", "MR_small.dcm",
	    "MR_small_bigendian.dcm", "MR_small_implicit.dcm", "rtplan.dcm",
	    "MR_small_jpeg_ls_lossless.dcm", "image_dfl.dcm" };
	static const char *const sh[] = {
	    "dicomParser/CT1_UNC.explicit_big_endian.dcm",
	    "dicomParser/CT1_UNC.implicit_little_endian.dcm",
	    "dcm_qa_ts/1.dcm", "dcm_qa_ts/7.dcm" };
	char path[4200];

	t_header();
	snprintf(shared, sizeof(shared), "%s/../shared/corpus/dicom",
	    top ? top : ".");
	for (size_t i = 0; i < sizeof(sh) / sizeof(sh[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", shared, sh[i]);
		roundtrip(path);
	}
	for (size_t i = 0; i < sizeof(pyd) / sizeof(pyd[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s",
		    "/usr/lib/python3/dist-packages/pydicom/data/test_files",
		    pyd[i]);
		roundtrip(path);
	}
	return done_testing();
}
