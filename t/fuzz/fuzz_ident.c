/*
 * fuzz_ident.c — libFuzzer harness for the Q/R identifier codec
 * (dimse_ident.h) and the Storage Commitment datasets (dimse_commit.h). The first byte of the input chooses what the rest is:
 *
 * 0, 1, 2 (mod 8): a dataset in Implicit VR LE, Explicit VR LE or
 *    Explicit VR BE, decoded with dimse_ident_decode. A refusal must come
 *    with a message and an offset inside the input. An identifier that
 *    decodes must hold only what the decoder promises (text VRs without
 *    their padding, US/UL/SS/SL as canonical decimal text), and encoded
 *    into each syntax must decode to what that syntax can carry: into
 *    its own syntax and into either explicit one, to the same elements
 *    (tag, VR, value bytes) with nothing skipped. Every decoded key a
 *    query could carry, dimse_ident_set must take back as it is.
 * 3: NUL-separated command-line keys for dimse_ident_arg. A refused key
 *    leaves the identifier as it was; the identifier built must be in
 *    ascending tag order with values a query can carry, and encoded in
 *    each syntax must decode to its elements: the same tags and VRs,
 *    sequence keys skipped, text values without their padding, numbers
 *    as the same numbers. Then one key is deleted.
 * 4, 5, 6: a Storage Commitment report (dimse_commit.h) in Implicit VR
 *    LE, Explicit VR LE or BE. A refusal says why and leaves nothing
 *    allocated; a report has its Transaction UID and both UIDs of every
 *    reference; with valid UIDs, the references encoded as an N-ACTION
 *    dataset decode back to the same ones.
 * 7: nothing (reserved).
 *
 * In Implicit VR the decoder takes the dictionary's VR: an element whose
 * VR is not that one is checked only when the outcome is certain (an
 * empty value, or a VR that is always skipped); otherwise the encoding
 * is only decoded, for the sanitizers.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dimse/dimse_commit.h"
#include "dimse/dimse_ident.h"
#include "dimse/ds_dict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct ds_ts *const syntaxes[4] = {
	&ds_ts_implicit_le, &ds_ts_explicit_le, &ds_ts_explicit_be,
	&ds_ts_implicit_le,
};

static struct dimse_ident id, back, want;

static int
binary_int(enum ds_vr vr)
{
	return vr == DS_VR_US || vr == DS_VR_UL || vr == DS_VR_SS ||
	    vr == DS_VR_SL;
}

/* kept: a VR the decoder keeps (when the value is not too long) */
static int
kept(enum ds_vr vr)
{
	return (ds_vr_text(vr) && vr != DS_VR_AT) || binary_int(vr);
}

/* the numbers of a US/UL/SS/SL value as dimse_ident_set takes them */
static size_t
numbers(const char *v, long long *out, size_t cap)
{
	size_t k = 0;

	while (*v != '\0') {
		char *end;
		long long x = strtoll(v, &end, 10);

		if (end == v)
			abort();	/* dimse_ident_set let a non-number in */
		if (k < cap)
			out[k] = x;
		k++;
		v = *end == '\\' ? end + 1 : end;
	}
	return k;
}

/* the value bytes e is encoded with (without the header) */
static size_t
wire_len(const struct dimse_ident_elem *e)
{
	if (binary_int(e->vr))
		return numbers(e->value, NULL, 0) *
		    (e->vr == DS_VR_US || e->vr == DS_VR_SS ? 2 : 4);
	return e->len + (e->len & 1u);
}

/* the VR the decoder will see for e in ts */
static enum ds_vr
wire_vr(const struct ds_ts *ts, const struct dimse_ident_elem *e)
{
	const struct ds_dict_entry *d;

	if (ts->explicit_vr)
		return e->vr;
	if (e->tag == DS_TAG_PIXEL_DATA)
		return DS_VR_OW;
	d = ds_dict_by_tag(e->tag);
	return d != NULL && d->vr[0] != DS_VR_NONE ? d->vr[0] : DS_VR_UN;
}

/*
 * normal: e's value as the decoder gives it back: text without its
 * trailing padding (NUL, and spaces but for UI), numbers in canonical
 * decimal. Writes into x (tag, VR, len, value).
 */
static void
normal(const struct dimse_ident_elem *e, struct dimse_ident_elem *x)
{
	size_t len = 0;

	x->tag = e->tag;
	x->vr = e->vr;
	if (binary_int(e->vr)) {
		static long long v[DIMSE_IDENT_VALUE_MAX];
		size_t k = numbers(e->value, v, DIMSE_IDENT_VALUE_MAX);

		for (size_t i = 0; i < k; i++) {
			int w = snprintf(x->value + len, sizeof(x->value) -
			    len, "%s%lld", i ? "\\" : "", v[i]);

			if (w < 0 || (size_t)w >= sizeof(x->value) - len)
				abort();	/* canonical never longer */
			len += (size_t)w;
		}
	} else {
		memcpy(x->value, e->value, e->len);
		len = e->len;
		while (len > 0 && (x->value[len - 1] == '\0' ||
		    (x->value[len - 1] == ' ' && e->vr != DS_VR_UI)))
			len--;
	}
	x->value[len] = '\0';
	x->len = (uint16_t)len;
}

static int
elem_equal(const struct dimse_ident_elem *a, const struct dimse_ident_elem *b)
{
	return a->tag == b->tag && a->vr == b->vr && a->len == b->len &&
	    memcmp(a->value, b->value, a->len + 1u) == 0;
}

static int
ident_equal(const struct dimse_ident *a, const struct dimse_ident *b)
{
	if (a->n != b->n || a->skipped != b->skipped)
		return 0;
	for (unsigned i = 0; i < a->n; i++)
		if (!elem_equal(&a->e[i], &b->e[i]))
			return 0;
	return 1;
}

/*
 * resettable: a decoded key that dimse_ident_set could have been given
 * (a query group, a C string without control characters) it takes back
 * as it is: numbers in their VR's range, values within the limits.
 */
static void
resettable(const struct dimse_ident_elem *e)
{
	static struct dimse_ident one;
	unsigned g = e->tag >> 16;
	char err[256];

	if (g == 0x0000 || g == 0x0002 || strlen(e->value) != e->len)
		return;
	for (unsigned k = 0; k < e->len; k++)
		if ((unsigned char)e->value[k] < 0x20 && e->value[k] != 0x1b)
			return;
	dimse_ident_init(&one);
	if (dimse_ident_set(&one, e->tag, e->vr, e->value, err,
	    sizeof(err)) != 0 || one.n != 1 || !elem_equal(&one.e[0], e))
		abort();
}

/*
 * check_ident: what every identifier holds; from_args adds what
 * dimse_ident_set promises, else what dimse_ident_decode does (values
 * already normal).
 */
static void
check_ident(const struct dimse_ident *x, int from_args)
{
	struct dimse_ident_elem n;

	if (x->n > DIMSE_IDENT_MAX)
		abort();
	for (unsigned i = 0; i < x->n; i++) {
		const struct dimse_ident_elem *e = &x->e[i];
		unsigned g = e->tag >> 16;

		if (e->len > DIMSE_IDENT_VALUE_MAX || e->value[e->len] != '\0')
			abort();
		if (!kept(e->vr) && !(from_args && e->vr == DS_VR_SQ &&
		    e->len == 0))
			abort();
		/* the wire form fits the value limit (the encoder's
		 * buffer, the decoder's chunk_over) */
		if (wire_len(e) > DIMSE_IDENT_VALUE_MAX)
			abort();
		if (dimse_ident_get(x, e->tag) == NULL)
			abort();
		if (!from_args) {
			normal(e, &n);
			if (!elem_equal(e, &n))
				abort();	/* padding left, or not canonical */
			resettable(e);
			continue;
		}
		if ((i > 0 && x->e[i - 1].tag >= e->tag) ||
		    dimse_ident_get(x, e->tag) != e->value ||
		    strlen(e->value) != e->len || g == 0x0000 ||
		    g == 0x0002 || g == 0xfffe)
			abort();
		for (unsigned k = 0; k < e->len; k++)
			if ((unsigned char)e->value[k] < 0x20 &&
			    e->value[k] != 0x1b)
				abort();
	}
}

/*
 * expect: what x encoded in ts decodes to, into out; -1 when that is not
 * certain (Implicit VR reading a value under another VR).
 */
static int
expect(const struct dimse_ident *x, const struct ds_ts *ts,
    struct dimse_ident *out)
{
	dimse_ident_init(out);
	for (unsigned i = 0; i < x->n; i++) {
		const struct dimse_ident_elem *e = &x->e[i];
		enum ds_vr w = wire_vr(ts, e);
		struct dimse_ident_elem *o = &out->e[out->n];

		if (w == DS_VR_SQ || !kept(w)) {
			/* an empty SQ, or a value the decoder skips; a
			 * value read as items is not certain */
			if (w == DS_VR_SQ && wire_len(e) != 0)
				return -1;
			out->skipped++;
		} else if (w == e->vr) {
			normal(e, o);
			out->n++;
		} else if (wire_len(e) == 0) {
			o->tag = e->tag;
			o->vr = w;
			o->len = 0;
			o->value[0] = '\0';
			out->n++;
		} else
			return -1;
	}
	return 0;
}

/* header bytes of e in ts (ds_encode_header) */
static size_t
hdr_len(const struct ds_ts *ts, const struct dimse_ident_elem *e)
{
	return ts->explicit_vr && ds_vr_long(e->vr) ? 12 : 8;
}

/*
 * roundtrip: encode x in ts (sizing, one byte short, exact) and decode
 * it: when expect() is sure, to what it says. must: it has to be sure.
 */
static void
roundtrip(const struct dimse_ident *x, const struct ds_ts *ts, int must)
{
	struct ds_error err;
	size_t size = 0;
	uint8_t *buf;
	int sure = expect(x, ts, &want) == 0;

	if (must && !sure)
		abort();
	for (unsigned i = 0; i < x->n; i++)
		size += hdr_len(ts, &x->e[i]) + wire_len(&x->e[i]);
	if (dimse_ident_encode(x, ts, NULL, 0) != size || size % 2 != 0)
		abort();
	if (size > 0) {
		/* one byte short: nothing may be written past cap */
		if ((buf = malloc(size - 1)) == NULL)
			abort();
		if (dimse_ident_encode(x, ts, buf, size - 1) != size)
			abort();
		free(buf);
	}
	if ((buf = malloc(size > 0 ? size : 1)) == NULL)
		abort();
	if (dimse_ident_encode(x, ts, buf, size) != size)
		abort();
	if (dimse_ident_decode(buf, size, ts, &back, &err) != 0) {
		if (sure)
			abort();	/* our own encoding refused */
	} else if (sure && !ident_equal(&back, &want))
		abort();	/* did not decode to what was encoded */
	free(buf);
}

static void
decode_mode(const uint8_t *d, size_t n, const struct ds_ts *ts)
{
	static struct dimse_ident first;
	struct ds_error err;

	memset(&err, 0, sizeof(err));
	if (dimse_ident_decode(d, n, ts, &first, &err) != 0) {
		if (err.msg[0] == '\0' || memchr(err.msg, '\0',
		    sizeof(err.msg)) == NULL || err.offset > n)
			abort();
		return;
	}
	check_ident(&first, 0);
	for (int i = 0; i < 3; i++)
		roundtrip(&first, syntaxes[i], syntaxes[i] == ts ||
		    syntaxes[i]->explicit_vr);
	/* into its own syntax: the very same elements, nothing skipped */
	if (expect(&first, ts, &want) != 0 || want.skipped != 0 ||
	    want.n != first.n)
		abort();
}

static void
args_mode(const uint8_t *d, size_t n)
{
	char *s, *p, err[256];
	unsigned k = 0;

	if ((s = malloc(n + 1)) == NULL)
		abort();
	memcpy(s, d, n);
	s[n] = '\0';
	dimse_ident_init(&id);
	for (p = s; p <= s + n; p += strlen(p) + 1, k++) {
		/* a short err buffer now and then: messages truncate */
		size_t cap = k % 3 == 2 ? 12 : sizeof(err);
		unsigned before = id.n;

		err[0] = '\0';
		if (dimse_ident_arg(&id, p, err, cap) < 0) {
			if (err[0] == '\0' || strlen(err) >= cap ||
			    id.n != before)
				abort();
		} else if (id.n != before && id.n != before + 1)
			abort();
	}
	free(s);
	check_ident(&id, 1);
	for (int i = 0; i < 3; i++)
		roundtrip(&id, syntaxes[i], syntaxes[i]->explicit_vr);
	if (id.n > 0) {
		/* drop the middle key, twice: gone once, the rest in order */
		uint32_t tag = id.e[id.n / 2].tag;
		unsigned before = id.n;

		dimse_ident_del(&id, tag);
		dimse_ident_del(&id, tag);
		if (id.n != before - 1 || dimse_ident_get(&id, tag) != NULL)
			abort();
		check_ident(&id, 1);
	}
}

/*
 * commit_mode: b is a Storage Commitment report (N-EVENT-REPORT dataset)
 * in ts. A refusal says why; a report decodes to a Transaction UID and
 * references with both UIDs; when every UID is valid, the references
 * encoded as an N-ACTION dataset decode back to the same ones.
 */
static void
commit_mode(const uint8_t *b, size_t n, const struct ds_ts *ts)
{
	struct dimse_commit_report r, r2;
	char err[256];
	uint8_t *enc;
	size_t en;

	if (dimse_commit_decode(b, n, ts, &r, err, sizeof(err)) < 0) {
		if (err[0] == '\0' || r.refs != NULL || r.n != 0)
			abort();
		return;
	}
	if (r.transaction[0] == '\0' || r.nfailed > r.n)
		abort();
	for (size_t i = 0; i < r.n; i++)
		if (r.refs[i].sop_class[0] == '\0' ||
		    r.refs[i].sop_instance[0] == '\0')
			abort();
	en = dimse_commit_encode(r.transaction, r.refs, r.n, ts, NULL, 0);
	if (en > 0) {
		if ((enc = malloc(en)) == NULL)
			abort();
		if (dimse_commit_encode(r.transaction, r.refs, r.n, ts, enc,
		    en) != en || dimse_commit_decode(enc, en, ts, &r2, err,
		    sizeof(err)) < 0 || r2.n != r.n || r2.nfailed != 0 ||
		    strcmp(r2.transaction, r.transaction) != 0)
			abort();
		for (size_t i = 0; i < r.n; i++)
			if (strcmp(r.refs[i].sop_class, r2.refs[i].sop_class) ||
			    strcmp(r.refs[i].sop_instance,
			    r2.refs[i].sop_instance))
				abort();
		dimse_commit_report_free(&r2);
		free(enc);
	}
	dimse_commit_report_free(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned m;

	if (size < 1)
		return 0;
	m = data[0] % 8;
	if (m == 3)
		args_mode(data + 1, size - 1);
	else if (m < 3)
		decode_mode(data + 1, size - 1, syntaxes[m]);
	else if (m < 7)
		commit_mode(data + 1, size - 1, syntaxes[m - 4]);
	return 0;
}
