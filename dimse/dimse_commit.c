/*
 * dimse_commit.c — Storage Commitment Push Model datasets.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "dimse/dimse_commit.h"
#include "dimse/ds_parse.h"
#include "dimse/ds_uid.h"
#include "dimse/ds_write.h"

#define TAG_FAILURE_REASON	DS_TAG(0x0008, 0x1197)
#define TAG_FAILED_SEQ		DS_TAG(0x0008, 0x1198)
#define TAG_REF_SEQ		DS_TAG(0x0008, 0x1199)
#define TAG_REF_CLASS		DS_TAG(0x0008, 0x1150)
#define TAG_REF_INSTANCE	DS_TAG(0x0008, 0x1155)
#define TAG_TRANSACTION		DS_TAG(0x0008, 0x1195)

static int
uid_ok(const char *u)
{
	size_t n = strlen(u);

	if (n == 0 || n > 64 || u[0] == '.' || u[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(u[i] >= '0' && u[i] <= '9') && (u[i] != '.' ||
		    u[i + 1] == '.'))
			return 0;
	return 1;
}

/* put: an element (or an item/delimiter header when v is NULL and len is
 * its length field) at *at, when it fits. */
static void
put(uint8_t *buf, size_t cap, size_t *at, uint32_t tag, enum ds_vr vr,
    const char *v, uint32_t len, const struct ds_ts *ts)
{
	uint8_t h[12];
	size_t vn = v != NULL ? strlen(v) : 0, pad = vn & 1;
	size_t hn = ds_encode_header(h, tag, vr, v != NULL ? (uint32_t)(vn +
	    pad) : len, ts->explicit_vr, ts->big_endian);

	if (buf != NULL && *at + hn + vn + pad <= cap) {
		memcpy(buf + *at, h, hn);
		if (vn > 0)
			memcpy(buf + *at + hn, v, vn);
		if (pad)
			buf[*at + hn + vn] = '\0';
	}
	*at += hn + vn + pad;
}

size_t
dimse_commit_encode(const char *transaction,
    const struct dimse_commit_ref *refs, size_t n, const struct ds_ts *ts,
    uint8_t *buf, size_t cap)
{
	size_t at = 0;

	if (!uid_ok(transaction))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!uid_ok(refs[i].sop_class) || !uid_ok(refs[i].sop_instance))
			return 0;
	put(buf, cap, &at, TAG_TRANSACTION, DS_VR_UI, transaction, 0, ts);
	put(buf, cap, &at, TAG_REF_SEQ, DS_VR_SQ, NULL, DS_UNDEFINED_LENGTH,
	    ts);
	for (size_t i = 0; i < n; i++) {
		put(buf, cap, &at, DS_TAG_ITEM, DS_VR_NONE, NULL,
		    DS_UNDEFINED_LENGTH, ts);
		put(buf, cap, &at, TAG_REF_CLASS, DS_VR_UI, refs[i].sop_class,
		    0, ts);
		put(buf, cap, &at, TAG_REF_INSTANCE, DS_VR_UI,
		    refs[i].sop_instance, 0, ts);
		put(buf, cap, &at, DS_TAG_ITEM_END, DS_VR_NONE, NULL, 0, ts);
	}
	put(buf, cap, &at, DS_TAG_SEQ_END, DS_VR_NONE, NULL, 0, ts);
	return at;
}

/* ---- decoding ---- */

struct dec {
	struct dimse_commit_report	*r;
	size_t				 cap;
	uint32_t			 seq;	/* top-level sequence we are in */
	int				 in_item;
	size_t				 item_no;	/* in its sequence */
	struct dimse_commit_ref		 cur;
	char				 err[160];
};

/* exact: a UID cut to 64 characters, or at a NUL, would name another
 * instance (a report on "<ours>9" counted as on ours): refused. */
static int
exact(struct dec *d, char dst[65], const uint8_t *v, size_t n,
    const char *what)
{
	if (ds_uid_exact(dst, v, n) == 0)
		return 0;
	snprintf(d->err, sizeof(d->err), "%s is longer than 64 characters "
	    "or holds a NUL byte", what);
	return -1;
}

static int
on_element(void *arg, const struct ds_elem *e, const uint8_t *v, size_t n)
{
	struct dec *d = arg;

	if (e->depth == 0 && e->tag == TAG_TRANSACTION)
		return exact(d, d->r->transaction, v, n,
		    "the Transaction UID (0008,1195)");
	if (e->depth != 1 || !d->in_item)
		return 0;
	if (e->tag == TAG_REF_CLASS)
		return exact(d, d->cur.sop_class, v, n,
		    "a Referenced SOP Class UID (0008,1150)");
	else if (e->tag == TAG_REF_INSTANCE)
		return exact(d, d->cur.sop_instance, v, n,
		    "a Referenced SOP Instance UID (0008,1155)");
	else if (e->tag == TAG_FAILURE_REASON && n >= 2)
		d->cur.reason = e->big_endian ? (uint16_t)(v[0] << 8 | v[1]) :
		    (uint16_t)(v[1] << 8 | v[0]);
	return 0;
}

static int
on_seq_begin(void *arg, const struct ds_elem *e)
{
	struct dec *d = arg;

	if (e->depth == 0) {
		d->seq = e->tag;
		d->item_no = 0;
	}
	return 0;
}

static int
on_item_begin(void *arg, const struct ds_elem *e)
{
	struct dec *d = arg;

	if (e->depth == 0 && (d->seq == TAG_REF_SEQ ||
	    d->seq == TAG_FAILED_SEQ)) {
		memset(&d->cur, 0, sizeof(d->cur));
		d->cur.failed = d->seq == TAG_FAILED_SEQ;
		d->in_item = 1;
		d->item_no++;
	}
	return 0;
}

static int
on_item_end(void *arg, const struct ds_elem *e)
{
	struct dec *d = arg;
	struct dimse_commit_report *r = d->r;

	if (e->depth != 0 || !d->in_item)
		return 0;
	d->in_item = 0;
	if (d->cur.sop_class[0] == '\0' || d->cur.sop_instance[0] == '\0') {
		snprintf(d->err, sizeof(d->err), "item %zu of the %s lacks "
		    "its Referenced SOP %s UID", d->item_no, d->cur.failed ?
		    "Failed SOP Sequence" : "Referenced SOP Sequence",
		    d->cur.sop_class[0] == '\0' ? "Class" : "Instance");
		return 1;
	}
	if (r->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 64;
		if ((r->refs = realloc(r->refs, d->cap * sizeof(*r->refs))) ==
		    NULL)
			abort();
	}
	r->refs[r->n++] = d->cur;
	if (d->cur.failed)
		r->nfailed++;
	return 0;
}

static int
on_seq_end(void *arg, const struct ds_elem *e)
{
	struct dec *d = arg;

	if (e->depth == 0)
		d->seq = 0;
	return 0;
}

int
dimse_commit_decode(const uint8_t *b, size_t n, const struct ds_ts *ts,
    struct dimse_commit_report *r, char *err, size_t cap)
{
	static const struct ds_callbacks cb = {
		.element = on_element,
		.seq_begin = on_seq_begin,
		.item_begin = on_item_begin,
		.item_end = on_item_end,
		.seq_end = on_seq_end,
	};
	struct dec d;
	struct ds_parser *p;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	memset(&d, 0, sizeof(d));
	d.r = r;
	p = ds_parser_new_dataset(ts, NULL, &cb, &d);
	if (ds_parse_feed(p, b, n) == DS_ERROR ||
	    ds_parse_finish(p) == DS_ERROR) {
		if (d.err[0] != '\0')
			snprintf(err, cap, "%s", d.err);
		else
			snprintf(err, cap, "byte %llu: %s", (unsigned long long)
			    ds_parse_error(p)->offset, ds_parse_error(p)->msg);
		rc = -1;
	} else if (r->transaction[0] == '\0') {
		snprintf(err, cap, "no Transaction UID (0008,1195)");
		rc = -1;
	}
	ds_parser_free(p);
	if (rc < 0)
		dimse_commit_report_free(r);
	return rc;
}

void
dimse_commit_report_free(struct dimse_commit_report *r)
{
	free(r->refs);
	r->refs = NULL;
	r->n = r->nfailed = 0;
}

const char *
dimse_commit_reason_name(uint16_t reason)
{
	switch (reason) {
	case DIMSE_COMMIT_PROCESSING_FAILURE: return "Processing failure";
	case DIMSE_COMMIT_NO_SUCH_INSTANCE: return "No such object instance";
	case DIMSE_COMMIT_RESOURCE_LIMIT: return "Resource limitation";
	case DIMSE_COMMIT_CLASS_NOT_SUPPORTED:
		return "Referenced SOP Class not supported";
	case DIMSE_COMMIT_CLASS_CONFLICT:
		return "Class / Instance conflict";
	case DIMSE_COMMIT_DUPLICATE_TXN: return "Duplicate transaction UID";
	case 0: return "no reason given";
	default: return "unknown reason";
	}
}

int
dimse_uid_generate(char out[65])
{
	uint8_t r[16];
	char dec[40];
	size_t nd = 0, off = 0;

	while (off < sizeof(r)) {
		ssize_t k = getrandom(r + off, sizeof(r) - off, 0);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		off += (size_t)k;
	}
	/* the 128-bit number in decimal: repeated division by 10 */
	for (;;) {
		unsigned rem = 0;
		int zero = 1;

		for (size_t i = 0; i < sizeof(r); i++) {
			unsigned cur = rem << 8 | r[i];

			r[i] = (uint8_t)(cur / 10);
			rem = cur % 10;
			if (r[i] != 0)
				zero = 0;
		}
		dec[nd++] = (char)('0' + rem);
		if (zero)
			break;
	}
	memcpy(out, "2.25.", 5);
	for (size_t i = 0; i < nd; i++)
		out[5 + i] = dec[nd - 1 - i];
	out[5 + nd] = '\0';
	return 0;
}
