/*
 * fuzz_http_resp.c — libFuzzer entry point for http_resp, the client
 * side's response parser (vnamigctl, the HTTP client on the loop).
 *
 * The first input byte picks the request method (GET, HEAD, POST) and
 * whether a body sink is used; the rest is one connection's bytes from a
 * server, fed whole, one byte at a time and in 5-byte pieces, handing out
 * every response (DONE, then http_resp_next) until an error or the end,
 * then http_resp_eof. Besides crashes and leaks it checks the contract:
 * NEED_MORE consumes everything; a status is 100-599; stored bodies are
 * NUL-terminated and within max_body; a HEAD response has no body; the
 * sink sees exactly the bytes a stored body would hold; errors carry a
 * reason; and every split gives the same responses and outcome.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond) do { if (!(cond)) abort(); } while (0)

static const struct http_resp_limits lim = {
	.max_header_bytes = 512,
	.max_headers = 8,
	.max_body = 1024,
};

static uint64_t
fnv(uint64_t h, const void *p, size_t len)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < len; i++) {
		h ^= c[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

struct sink {
	uint64_t	h;
	uint64_t	n;
};

static int
sink_fn(void *arg, const char *data, size_t len)
{
	struct sink *s = arg;

	check(data != NULL || len == 0);
	s->h = fnv(s->h, data, len);
	s->n += len;
	return 0;
}

/* Fold one complete response into h. */
static uint64_t
digest(uint64_t h, const struct http_resp *r, const char *method,
    struct sink *s)
{
	int st = http_resp_status(r), v = http_resp_version_minor(r);
	const char *body, *reason = http_resp_reason(r);
	size_t len;

	check(st >= 100 && st <= 599);
	check(v == 0 || v == 1);
	check(reason != NULL);
	h = fnv(h, &st, sizeof(st));
	h = fnv(h, reason, strlen(reason));
	check(http_resp_nheaders(r) <= lim.max_headers);
	body = http_resp_body(r, &len);
	if (s != NULL) {
		/* what the sink saw stands in for the stored body */
		check(s->n == http_resp_body_bytes(r));
		h = fnv(h, &s->h, sizeof(s->h));
		s->h = UINT64_C(0xcbf29ce484222325);
		s->n = 0;
	} else {
		check(body != NULL && body[len] == '\0');
		check(len <= lim.max_body && len == http_resp_body_bytes(r));
		h = fnv(h, &len, sizeof(len));
		h = fnv(h, body, len);
	}
	if (strcmp(method, "HEAD") == 0)
		check(http_resp_body_bytes(r) == 0);
	return h;
}

static uint64_t
run(const char *method, int use_sink, const char *data, size_t size,
    size_t step)
{
	struct http_resp *r = http_resp_new(&lim, method);
	struct sink s = { UINT64_C(0xcbf29ce484222325), 0 };
	enum http_resp_result rc = HTTP_RESP_NEED_MORE;
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	size_t pos = 0, n, used;
	int err;

	if (use_sink)
		http_resp_set_sink(r, sink_fn, &s);
	while (pos < size) {
		n = size - pos;
		if (step != 0 && n > step)
			n = step;
		rc = http_resp_feed(r, data + pos, n, &used);
		check(used <= n);
		pos += used;
		if (rc == HTTP_RESP_NEED_MORE)
			check(used == n);
		else if (rc == HTTP_RESP_INTERIM) {
			check(http_resp_status(r) >= 100 &&
			    http_resp_status(r) <= 199);
			h = fnv(h, "I", 1);
		} else if (rc == HTTP_RESP_HEADERS)
			h = fnv(h, "H", 1);
		else if (rc == HTTP_RESP_DONE) {
			h = digest(h, r, method, use_sink ? &s : NULL);
			http_resp_next(r, method);
			if (use_sink)
				http_resp_set_sink(r, sink_fn, &s);
		} else
			break;
	}
	if (rc != HTTP_RESP_ERROR) {
		rc = http_resp_eof(r);
		if (rc == HTTP_RESP_DONE)
			h = digest(h, r, method, use_sink ? &s : NULL);
	}
	err = rc == HTTP_RESP_ERROR;
	if (err)
		check(http_resp_error(r) != NULL &&
		    http_resp_error(r)[0] != '\0');
	h = fnv(h, &err, sizeof(err));
	http_resp_free(r);
	check(r == NULL);
	return h;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = { "GET", "HEAD", "POST" };
	const char *method, *p;
	uint64_t want;
	int use_sink;

	if (size < 1)
		return 0;
	method = methods[data[0] % 3];
	use_sink = (data[0] >> 2) & 1;
	p = (const char *)data + 1;
	size--;
	want = run(method, use_sink, p, size, 0);
	check(run(method, use_sink, p, size, 1) == want);
	check(run(method, use_sink, p, size, 5) == want);
	return 0;
}
