/*
 * fuzz_http_req.c — libFuzzer entry point for http_req.
 *
 * The input is one connection's bytes. It is fed whole, one byte at a
 * time, in 7-byte pieces and split in two at a point taken from the
 * input, with small limits, handing out every request (DONE, then
 * http_req_next) until an error or the end, then http_req_eof. Besides
 * crashes and leaks it checks the contract: NEED_MORE uses all bytes,
 * strings are never NULL, bodies are NUL-terminated and within max_body,
 * errors carry a known status and a reason; and that every split gives
 * the same requests and the same outcome, since the parser must not
 * depend on how bytes arrive. Only the status of an error may differ, when
 * the input has two faults, one found by llhttp and one by our span
 * callbacks: llhttp hands a span over when it ends or the buffer does,
 * not when llhttp itself fails inside it.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct http_req_limits fuzz_lim = {
	.max_header_bytes = 512,
	.max_headers = 8,
	.max_url = 64,
	.max_body = 1024,
};

#define check(cond) do { if (!(cond)) abort(); } while (0)

static uint64_t
fnv(uint64_t h, const void *p, size_t len)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= c[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

static uint64_t
fnv_str(uint64_t h, const char *s)
{
	check(s != NULL);
	return fnv(h, s, strlen(s) + 1);
}

/* digest: fold the request's parts into h, checking the contract. */
static uint64_t
digest(uint64_t h, const struct http_req *r)
{
	const char *body;
	size_t len;
	int v;

	h = fnv_str(h, http_req_method(r));
	h = fnv_str(h, http_req_target(r));
	h = fnv_str(h, http_req_path(r));
	h = fnv_str(h, http_req_query(r));
	len = http_req_nheaders(r);
	check(len <= fuzz_lim.max_headers);
	h = fnv(h, &len, sizeof(len));
	body = http_req_header(r, "content-type");
	if (body != NULL)
		h = fnv_str(h, body);
	body = http_req_body(r, &len);
	check(body != NULL && len <= fuzz_lim.max_body && body[len] == '\0');
	h = fnv(h, body, len);
	h = fnv(h, &len, sizeof(len));
	v = http_req_keep_alive(r);
	h = fnv(h, &v, sizeof(v));
	v = http_req_version_minor(r);
	check(v == 0 || v == 1);
	h = fnv(h, &v, sizeof(v));
	return h;
}

static int
known_status(int s)
{
	return s == 400 || s == 413 || s == 414 || s == 431 || s == 505;
}

/*
 * run: parse data in pieces of step bytes (0: whole; first != 0: one
 * piece of first bytes, then the rest). Returns a digest of the requests
 * and of whether it ended in an error.
 */
static uint64_t
run(const char *data, size_t size, size_t step, size_t first)
{
	struct http_req *r;
	enum http_req_result rc = HTTP_REQ_NEED_MORE;
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	const char *reason;
	size_t pos = 0, n, used;
	int status, ncont = 0;

	r = http_req_new(&fuzz_lim);
	while (pos < size) {
		n = size - pos;
		if (first != 0 && pos < first)
			n = first - pos;
		else if (step != 0 && n > step)
			n = step;
		rc = http_req_feed(r, data + pos, n, &used);
		check(used <= n);
		pos += used;
		if (rc == HTTP_REQ_NEED_MORE) {
			check(used == n);
		} else if (rc == HTTP_REQ_CONTINUE) {
			check(++ncont < 1000000);
			h = fnv_str(h, http_req_path(r));
			h = fnv(h, "C", 1);
		} else if (rc == HTTP_REQ_DONE) {
			h = digest(h, r);
			http_req_next(r);
		} else
			break;
	}
	if (rc != HTTP_REQ_ERROR) {
		rc = http_req_eof(r);
		if (rc == HTTP_REQ_DONE)
			h = digest(h, r);
	}
	status = http_req_error(r, &reason);
	check(reason != NULL);
	if (rc == HTTP_REQ_ERROR) {
		check(known_status(status) && reason[0] != '\0');
		check(http_req_keep_alive(r) == 0);
	} else
		check(status == 0);
	status = status != 0;
	h = fnv(h, &status, sizeof(status));
	http_req_free(r);
	check(r == NULL);
	return h;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	uint64_t want;
	size_t cut;

	want = run(p, size, 0, 0);
	check(run(p, size, 1, 0) == want);
	check(run(p, size, 7, 0) == want);
	if (size > 1) {
		cut = 1 + (size_t)data[size - 1] * 31 % (size - 1);
		check(run(p, size, 0, cut) == want);
	}
	return 0;
}
