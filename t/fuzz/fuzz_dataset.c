/*
 * fuzz_dataset.c — libFuzzer harness for the dataset parser: the input is
 * parsed as a Part 10 file (whole, and again in 7-byte pieces, which must
 * give the same outcome and the same element count) and as a bare
 * dataset in each uncompressed syntax, with small limits so the limit
 * paths are reached.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "dimse/ds_parse.h"

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
	for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
		p = ds_parser_new_dataset(ts[i], &lim, &cb, &bytes);
		(void)run(p, data, size, 1 + size / 3);
		ds_parser_free(p);
	}
	return 0;
}
