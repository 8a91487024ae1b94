/*
 * fuzz_dataset.c — libFuzzer harness for the dataset parser, digester and
 * re-encoder: the input is parsed as a Part 10 file (whole, and again in
 * 7-byte pieces, which must give the same outcome and the same element
 * count) and as a bare dataset in each uncompressed syntax, with small
 * limits so the limit paths are reached. A file that parses is also
 * re-encoded into Explicit VR Little Endian (its own syntax when
 * encapsulated); the result must parse to the same canonical and pixel
 * digests; and the editor with no edits must give back the same bytes,
 * and with one edit output that parses.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dimse/ds_digest.h"
#include "dimse/ds_edit.h"
#include "dimse/ds_parse.h"
#include "dimse/ds_write.h"
#include "t/unit/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
count_cb(void *arg, const struct ds_elem *e, const uint8_t *v, size_t n)
{
	(void)e;
	(void)v;
	(*(size_t *)arg) += n;
	return 0;
}

static enum ds_result
run(struct ds_parser *p, const uint8_t *d, size_t n, size_t step)
{
	for (size_t o = 0; o < n; o += step)
		if (ds_parse_feed(p, d + o, n - o < step ? n - o : step) ==
		    DS_ERROR)
			return DS_ERROR;
	return ds_parse_finish(p);
}

/* Both the digester and the writer see every event (writer optional). */
struct pair {
	struct ds_digest	*dg;
	struct ds_writer	*w;
	const struct ds_ts	*ts;
};

#define BOTH(name, ...) do { \
	struct pair *x = arg; \
	if (ds_digest_callbacks()->name(x->dg, __VA_ARGS__) != 0) \
		return -1; \
	return x->w ? ds_writer_callbacks()->name(x->w, __VA_ARGS__) : 0; \
} while (0)

static int b_el(void *arg, const struct ds_elem *e, const uint8_t *v,
    size_t n) { BOTH(element, e, v, n); }
static int b_vb(void *arg, const struct ds_elem *e) { BOTH(value_begin, e); }
static int b_vc(void *arg, const struct ds_elem *e, const uint8_t *p,
    size_t n) { BOTH(value_chunk, e, p, n); }
static int b_ve(void *arg, const struct ds_elem *e) { BOTH(value_end, e); }
static int b_sb(void *arg, const struct ds_elem *e) { BOTH(seq_begin, e); }
static int b_ib(void *arg, const struct ds_elem *e) { BOTH(item_begin, e); }
static int b_ie(void *arg, const struct ds_elem *e) { BOTH(item_end, e); }
static int b_se(void *arg, const struct ds_elem *e) { BOTH(seq_end, e); }

static int
b_meta(void *arg, const struct ds_meta *m)
{
	((struct pair *)arg)->ts = m->ts;
	return 0;
}

static const struct ds_callbacks both_cb = {
	.meta = b_meta, .element = b_el, .value_begin = b_vb,
	.value_chunk = b_vc, .value_end = b_ve, .seq_begin = b_sb,
	.item_begin = b_ib, .item_end = b_ie, .seq_end = b_se,
};

/* Digest (and optionally re-encode into out/to) one parse; 0 = parsed. */
static int
digest(const uint8_t *d, size_t n, const struct ds_ts *ts,
    const struct ds_limits *lim, const struct ds_ts *to, struct mem *out,
    uint8_t c[32], uint8_t px[32], const struct ds_ts **src)
{
	struct pair x = { ds_digest_new(), NULL, NULL };
	struct ds_parser *p;
	int has, rc = -1;

	if (out != NULL)
		x.w = ds_writer_new(to, mem_sink, out);
	p = ts ? ds_parser_new_dataset(ts, lim, &both_cb, &x) :
	    ds_parser_new_file(lim, &both_cb, &x);
	if (run(p, d, n, n ? n : 1) == DS_DONE &&
	    ds_digest_final(x.dg, c, px, &has) == 0)
		rc = 0;
	if (src != NULL)
		*src = x.ts;
	ds_parser_free(p);
	ds_digest_free(x.dg);
	ds_writer_free(x.w);
	return rc;
}

/* A file that parses must re-encode to the same digests. */
static void
roundtrip(const uint8_t *data, size_t size, const struct ds_limits *lim)
{
	uint8_t c1[32], p1[32], c2[32], p2[32];
	const struct ds_ts *src, *to;
	struct mem m = { NULL, 0, 0 };

	if (digest(data, size, NULL, lim, NULL, NULL, c1, p1, &src) != 0 ||
	    src == NULL)
		return;
	to = src->encapsulated ? src : &ds_ts_explicit_le;
	if (digest(data, size, NULL, lim, to, &m, c1, p1, NULL) != 0)
		abort();
	if (digest(m.p, m.n, to, lim, NULL, NULL, c2, p2, NULL) != 0 ||
	    memcmp(c1, c2, 32) != 0 || memcmp(p1, p2, 32) != 0)
		abort();	/* re-encoding changed the dataset */
	free(m.p);
}

static int
keep_meta(void *arg, const struct ds_meta *m)
{
	*(struct ds_meta *)arg = *m;
	return 0;
}

/* Edit mode on a file that parses: no edits = the same bytes; setting
 * PatientName gives a file that parses with the same element count or
 * one more. */
static void
editing(const uint8_t *data, size_t size, const struct ds_limits *lim)
{
	struct ds_path name = { .n = 1, .step = { { DS_TAG(0x10, 0x10),
	    NULL, 0 } } };
	struct mem m = { NULL, 0, 0 };
	struct ds_editor *ed = ds_editor_new(NULL, lim, mem_sink, &m);
	enum ds_result r;

	r = ds_editor_feed(ed, data, size);
	if (r != DS_ERROR && ds_editor_finish(ed) == DS_DONE &&
	    (m.n != size || (size > 0 && memcmp(m.p, data, size) != 0)))
		abort();	/* no edits must mean no change */
	ds_editor_free(ed);
	m.n = 0;
	ed = ds_editor_new(NULL, lim, mem_sink, &m);
	if (ds_edit_set(ed, &name, DS_VR_PN, "Doe^Jane", 8) == 0 &&
	    ds_editor_feed(ed, data, size) != DS_ERROR &&
	    ds_editor_finish(ed) == DS_DONE) {
		/* A file without a meta group is a bare dataset: read the
		 * result as one, in the same syntax (sniffing it again could
		 * find a "DICM" that the insert moved to byte 128). */
		struct ds_meta m0;
		struct ds_callbacks mc = { .meta = keep_meta };
		struct ds_parser *p = ds_parser_new_file(lim, &mc, &m0);

		memset(&m0, 0, sizeof(m0));
		(void)run(p, data, size, size ? size : 1);
		ds_parser_free(p);
		p = m0.has_meta || m0.ts == NULL ?
		    ds_parser_new_file(lim, NULL, NULL) :
		    ds_parser_new_dataset(m0.ts, lim, NULL, NULL);

		if (run(p, m.p, m.n, m.n ? m.n : 1) != DS_DONE)
			abort();	/* an edit broke the encoding */
		ds_parser_free(p);
	}
	ds_editor_free(ed);
	free(m.p);
}

/* ds_digest_feed, as the spool feeds: in pieces, the same digests and
 * result as plain feeding, and the stream's SHA-256 in its hash. */
static void
paired(const uint8_t *d, size_t n, const struct ds_ts *ts,
    const struct ds_limits *lim)
{
	uint8_t c1[32], p1[32], c2[32], p2[32], o1[32], o2[32];
	struct ds_digest *dg = ds_digest_new();
	struct ds_parser *p = ds_parser_new_dataset(ts, lim,
	    ds_digest_callbacks(), dg);
	struct sha256 o;
	enum ds_result r1, r2 = DS_NEED_MORE;
	int h1 = 0, h2 = 0, ok1, ok2;
	size_t off = 0, step = 1 + n / 5;

	r1 = run(p, d, n, n ? n : 1);
	ok1 = r1 == DS_DONE && ds_digest_final(dg, c1, p1, &h1) == 0;
	ds_parser_free(p);
	ds_digest_free(dg);
	dg = ds_digest_new();
	p = ds_parser_new_dataset(ts, lim, ds_digest_callbacks(), dg);
	sha256_init(&o);
	while (off < n && r2 != DS_ERROR) {
		size_t k = n - off < step ? n - off : step;

		r2 = ds_digest_feed(dg, p, &o, d + off, k);
		off += k;
	}
	if (r2 != DS_ERROR)
		r2 = ds_parse_finish(p);
	ok2 = r2 == DS_DONE && ds_digest_final(dg, c2, p2, &h2) == 0;
	if (r1 != r2 || ok1 != ok2 || (ok1 && (memcmp(c1, c2, 32) != 0 ||
	    memcmp(p1, p2, 32) != 0 || h1 != h2)))
		abort();	/* pairing changed a digest */
	sha256_final(&o, o2);
	sha256(d, off, o1);
	if (memcmp(o1, o2, 32) != 0)
		abort();	/* the stream's hash lost or moved bytes */
	ds_parser_free(p);
	ds_digest_free(dg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ds_ts *const ts[] = { &ds_ts_implicit_le,
	    &ds_ts_explicit_le, &ds_ts_explicit_be, &ds_ts_deflated_le };
	struct ds_callbacks cb = { .element = count_cb };
	struct ds_limits lim;
	struct ds_parser *p;
	enum ds_result r1, r2;
	uint64_t n1, n2;
	size_t bytes = 0;

	ds_limits_default(&lim);
	lim.max_depth = 8;
	lim.max_elements = 5000;
	lim.chunk_over = 64;
	lim.max_inflate = 1 << 20;
	p = ds_parser_new_file(&lim, &cb, &bytes);
	r1 = run(p, data, size, size ? size : 1);
	n1 = ds_parse_elements(p);
	ds_parser_free(p);
	p = ds_parser_new_file(&lim, &cb, &bytes);
	r2 = run(p, data, size, 7);
	n2 = ds_parse_elements(p);
	ds_parser_free(p);
	if (r1 != r2 || (r1 == DS_DONE && n1 != n2))
		abort();	/* the result must not depend on chunking */
	if (r1 == DS_DONE) {
		roundtrip(data, size, &lim);
		editing(data, size, &lim);
	}
	for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
		p = ds_parser_new_dataset(ts[i], &lim, &cb, &bytes);
		(void)run(p, data, size, 1 + size / 3);
		ds_parser_free(p);
		paired(data, size, ts[i], &lim);
	}
	return 0;
}
