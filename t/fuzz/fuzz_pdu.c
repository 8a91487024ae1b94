/*
 * fuzz_pdu.c — libFuzzer harness for the Upper Layer PDU codec. The input
 * is framed (header decode and check against two limits) and handed to
 * every decoder: as it is, and again with its PDU-length field set to
 * what follows the header, and for an A-ASSOCIATE-RQ/AC under both of
 * those types, so the fuzzer reaches the items without having to learn
 * the length. A failed decode must leave a message and an offset inside
 * the PDU. An association PDU that decodes is re-encoded: the encoding
 * must be no larger than the input, decode to an equal struct and encode
 * again to the same bytes. PDVs are re-framed one by one with
 * dul_encode_pdata_header and must walk back to the same fields; the
 * fixed-size PDUs must re-encode to what was decoded.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dul/dul_pdu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dul_assoc a, b;

static void
check_err(const struct dul_error *e, size_t n)
{
	if (e->code == DUL_OK || e->msg[0] == '\0' || e->offset > n)
		abort();
	if (e->reply == DUL_REPLY_REJECT && (e->pdu_type != DUL_ASSOCIATE_RQ ||
	    e->rj_result != DUL_RJ_PERMANENT))
		abort();
}

static void
assoc_roundtrip(const uint8_t *p, size_t n)
{
	struct dul_error e;
	size_t need, again;
	uint8_t *buf, *buf2;

	if (dul_decode_assoc(p, n, &a, &e) != 0) {
		check_err(&e, n);
		return;
	}
	need = dul_encode_assoc(&a, NULL, 0, &e);
	if (need == 0 || need > n)
		abort();	/* a decoded PDU always re-encodes, no larger */
	if ((buf = malloc(need)) == NULL || (buf2 = malloc(need)) == NULL)
		abort();
	/* one byte short: the size comes back, nothing is overrun */
	if (dul_encode_assoc(&a, buf, need - 1, &e) != need ||
	    dul_encode_assoc(&a, buf, need, &e) != need)
		abort();
	if (dul_decode_assoc(buf, need, &b, &e) != 0 || !dul_assoc_equal(&a, &b))
		abort();	/* the encoding does not decode to the same */
	again = dul_encode_assoc(&b, buf2, need, &e);
	if (again != need || memcmp(buf, buf2, need) != 0)
		abort();	/* encoding is not canonical */
	free(buf);
	free(buf2);
}

static void
pdata_walk(const uint8_t *p, size_t n)
{
	struct dul_pdv_iter it, it2;
	struct dul_pdv v, w;
	struct dul_error e;
	uint8_t *one;
	int r;

	if (dul_pdata_begin(&it, p, n, &e) != 0) {
		check_err(&e, n);
		return;
	}
	while ((r = dul_pdata_next(&it, &v, &e)) == 1) {
		if (v.data < p || v.len > n || v.data + v.len > p + n)
			abort();
		if ((one = malloc(DUL_PDATA_HEADER_LEN + (size_t)v.len)) == NULL)
			abort();
		if (dul_encode_pdata_header(one, v.pcid, v.command, v.last,
		    v.len) != DUL_PDATA_HEADER_LEN)
			abort();
		if (v.len > 0)
			memcpy(one + DUL_PDATA_HEADER_LEN, v.data, v.len);
		if (dul_pdata_begin(&it2, one, DUL_PDATA_HEADER_LEN + v.len,
		    &e) != 0 || dul_pdata_next(&it2, &w, &e) != 1 ||
		    w.pcid != v.pcid || w.command != v.command ||
		    w.last != v.last || w.len != v.len ||
		    (v.len > 0 && memcmp(w.data, v.data, v.len) != 0) ||
		    dul_pdata_next(&it2, &w, &e) != 0)
			abort();
		free(one);
	}
	if (r < 0)
		check_err(&e, n);
}

static void
short_pdus(const uint8_t *p, size_t n)
{
	uint8_t out[DUL_SHORT_PDU_LEN], type, type2;
	struct dul_abort ab, ab2;
	struct dul_rj rj, rj2;
	struct dul_error e;

	if (dul_decode_rj(p, n, &rj, &e) == 0) {
		dul_encode_rj(out, rj.result, rj.source, rj.reason);
		if (dul_decode_rj(out, sizeof(out), &rj2, &e) != 0 ||
		    memcmp(&rj, &rj2, sizeof(rj)) != 0)
			abort();
	} else
		check_err(&e, n);
	if (dul_decode_abort(p, n, &ab, &e) == 0) {
		dul_encode_abort(out, ab.source, ab.reason);
		if (dul_decode_abort(out, sizeof(out), &ab2, &e) != 0 ||
		    memcmp(&ab, &ab2, sizeof(ab)) != 0)
			abort();
	} else
		check_err(&e, n);
	if (dul_decode_release(p, n, &type, &e) == 0) {
		dul_encode_release(out, type);
		if (dul_decode_release(out, sizeof(out), &type2, &e) != 0 ||
		    type2 != type)
			abort();
	} else
		check_err(&e, n);
}

static void
all(const uint8_t *p, size_t n)
{
	assoc_roundtrip(p, n);
	pdata_walk(p, n);
	short_pdus(p, n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dul_header h;
	struct dul_error e;
	uint8_t *copy;
	size_t len;

	all(data, size);
	if (size < DUL_HEADER_LEN)
		return 0;
	if (dul_header_decode(data, &h, &e) == 0) {
		if (dul_header_check(&h, 0, &e) != 0)
			check_err(&e, size);
		if (dul_header_check(&h, 16384, &e) != 0)
			check_err(&e, size);
	} else
		check_err(&e, size);

	/* the same bytes with a PDU-length that matches */
	len = size - DUL_HEADER_LEN;
	if (len > UINT32_MAX || (copy = malloc(size)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[2] = (uint8_t)(len >> 24);
	copy[3] = (uint8_t)(len >> 16);
	copy[4] = (uint8_t)(len >> 8);
	copy[5] = (uint8_t)len;
	all(copy, size);
	if (copy[0] == DUL_ASSOCIATE_RQ || copy[0] == DUL_ASSOCIATE_AC) {
		copy[0] ^= DUL_ASSOCIATE_RQ ^ DUL_ASSOCIATE_AC;
		assoc_roundtrip(copy, size);
	}
	free(copy);
	return 0;
}
