/*
 * api_audit.c — the audit log over HTTP: the signed checkpoint, one leaf,
 * inclusion and consistency proofs (RFC 9162 2.1.3 / 2.1.4), and the whole
 * log streamed as JSON lines (optionally zstd), for auditors and for
 * `vnamigctl audit verify`, which checks them without trusting us.
 *
 * Everything served is over durable leaves only: a proof never names a
 * leaf a crash could still take back.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <zstd.h>

#include "http/http_req.h"
#include "src/api/api.h"
#include "src/util/hex.h"
#include "src/util/log.h"
#include "store/audit.h"

static json_t *
hexj(const uint8_t *h)
{
	char s[2 * AUDIT_HASH + 1];

	hex_encode(h, AUDIT_HASH, s);
	return json_string(s);
}

static json_t *
path_json(const uint8_t *p, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, hexj(p + i * AUDIT_HASH));
	return arr;
}

/*
 * The current checkpoint: a new one is signed when the log grew since the
 * last (at most once a second: polling clients share one), else the last.
 */
void
api_audit_checkpoint(struct api_req *q)
{
	static time_t last_sign;
	struct audit *a = api_audit_log(q);
	char err[256], *note = NULL, *pem, origin[256] = "", *nl;
	unsigned long long size = 0;
	uint8_t root[64];
	int rl;
	const char *p;
	time_t now = time(NULL);

	if (now != last_sign) {
		last_sign = now;
		if (audit_checkpoint(a, &note, err, sizeof(err)) < 0)
			log_warn("audit-checkpoint-failed", "error=%s",
			    log_q(err));
	}
	if (note == NULL && (note = audit_latest_checkpoint(a)) == NULL &&
	    (audit_checkpoint(a, &note, err, sizeof(err)) < 0 ||
	    note == NULL)) {
		api_error(q, 503, "no_checkpoint", NULL, "no checkpoint could "
		    "be signed yet");
		return;
	}
	/* origin \n size \n base64(root) \n */
	p = note;
	if ((nl = strchr(p, '\n')) != NULL && (size_t)(nl - p) <
	    sizeof(origin)) {
		memcpy(origin, p, (size_t)(nl - p));
		origin[nl - p] = '\0';
		p = nl + 1;
	}
	size = strtoull(p, NULL, 10);
	/* base64 of 32 bytes is 44 characters; root[] holds 48 decoded */
	if ((p = strchr(p, '\n')) == NULL || (nl = strchr(++p, '\n')) ==
	    NULL || nl - p != 44 || (rl = EVP_DecodeBlock(root,
	    (const unsigned char *)p, 44)) < AUDIT_HASH) {
		free(note);
		api_error(q, 500, "bad_checkpoint", NULL, "the stored "
		    "checkpoint does not parse");
		return;
	}
	pem = audit_public_pem(a);
	api_reply(q, 200, json_pack("{s:I, s:o, s:s, s:s, s:s}", "size",
	    (json_int_t)size, "root", hexj(root), "note", note,
	    "public_key", pem ? pem : "", "origin", origin));
	free(pem);
	free(note);
}

void
api_audit_leaf(struct api_req *q)
{
	struct audit *a = api_audit_log(q);
	const char *s = http_match_param(&q->m, "seq");
	char *end, *text = NULL;
	unsigned long long seq = strtoull(s, &end, 10);
	uint8_t h[AUDIT_HASH];
	size_t len;
	json_t *leaf;

	if (*s < '0' || *s > '9' || *end != '\0') {
		api_error(q, 400, "bad_path", NULL, "the leaf is named by its "
		    "sequence number (an unsigned integer)");
		return;
	}
	if (seq >= audit_durable_size(a)) {
		api_error(q, 404, "not_found", json_pack("{s:I}",
		    "durable_size", (json_int_t)audit_durable_size(a)),
		    "leaf %llu is not in the log (it holds %" PRIu64
		    " durable leaves)", seq, audit_durable_size(a));
		return;
	}
	if (audit_leaf(a, seq, h, &text, &len) < 0) {
		api_error(q, 500, "read_failed", NULL, "leaf %llu could not be "
		    "read from the store", seq);
		return;
	}
	leaf = json_loadb(text, len, 0, NULL);
	api_reply(q, 200, json_pack("{s:I, s:s%, s:o, s:o*}", "seq",
	    (json_int_t)seq, "leaf_text", text, len, "leaf_hash", hexj(h),
	    "leaf", leaf));
	free(text);
}

/* size=: default, and bounded by, the durable size. */
static int
size_param(struct api_req *q, const char *name, uint64_t *size)
{
	uint64_t durable = audit_durable_size(api_audit_log(q));
	int r = api_query_u64(q, name, size);

	if (r < 0)
		return -1;
	if (r == 0)
		*size = durable;
	if (*size > durable) {
		api_error(q, 422, "out_of_range", json_pack("{s:I}",
		    "durable_size", (json_int_t)durable), "%s=%" PRIu64 " is "
		    "beyond the log's %" PRIu64 " durable leaves", name, *size,
		    durable);
		return -1;
	}
	return 0;
}

void
api_audit_proof(struct api_req *q)
{
	struct audit *a = api_audit_log(q);
	uint64_t seq, size;
	uint8_t h[AUDIT_HASH], root[AUDIT_HASH], *path = NULL;
	size_t n = 0;
	char err[256];
	int r;

	if ((r = api_query_u64(q, "seq", &seq)) < 0)
		return;
	if (r == 0) {
		api_error(q, 400, "bad_query", json_pack("{s:s}", "parameter",
		    "seq"), "give seq=N, the leaf to prove");
		return;
	}
	if (size_param(q, "size", &size) < 0)
		return;
	if (seq >= size) {
		api_error(q, 422, "out_of_range", NULL, "leaf %" PRIu64 " is "
		    "not in a tree of %" PRIu64 " leaves", seq, size);
		return;
	}
	if (audit_leaf(a, seq, h, NULL, NULL) < 0 ||
	    audit_root(a, size, root) < 0 ||
	    audit_inclusion(a, seq, size, &path, &n, err, sizeof(err)) < 0) {
		free(path);
		api_error(q, 500, "read_failed", NULL, "the proof could not be "
		    "built from the store");
		return;
	}
	api_reply(q, 200, json_pack("{s:I, s:I, s:o, s:o, s:o}", "seq",
	    (json_int_t)seq, "size", (json_int_t)size, "leaf_hash", hexj(h),
	    "root", hexj(root), "path", path_json(path, n)));
	free(path);
}

void
api_audit_consistency(struct api_req *q)
{
	struct audit *a = api_audit_log(q);
	uint64_t from, to;
	uint8_t r1[AUDIT_HASH], r2[AUDIT_HASH], *path = NULL;
	size_t n = 0;
	char err[256];
	int r;

	if ((r = api_query_u64(q, "from", &from)) < 0)
		return;
	if (r == 0 || from == 0) {
		api_error(q, 400, "bad_query", json_pack("{s:s}", "parameter",
		    "from"), "give from=A (a tree size of at least 1) and "
		    "optionally to=B (default: the current size)");
		return;
	}
	if (size_param(q, "to", &to) < 0)
		return;
	if (from > to) {
		api_error(q, 422, "out_of_range", NULL, "from=%" PRIu64 " is "
		    "larger than to=%" PRIu64 "; a log only grows", from, to);
		return;
	}
	if (audit_root(a, from, r1) < 0 || audit_root(a, to, r2) < 0 ||
	    audit_consistency(a, from, to, &path, &n, err, sizeof(err)) < 0) {
		free(path);
		api_error(q, 500, "read_failed", NULL, "the proof could not be "
		    "built from the store");
		return;
	}
	api_reply(q, 200, json_pack("{s:I, s:I, s:o, s:o, s:o}", "from",
	    (json_int_t)from, "to", (json_int_t)to, "from_root", hexj(r1),
	    "to_root", hexj(r2), "proof", path_json(path, n)));
	free(path);
}

/* ---------------------------------------------------------------------- */
/* Export: every durable leaf, in order, one per line (its exact bytes),
 * from ?from= (default 0) to the durable size when the request came. */

#define EXPORT_STEP	512	/* leaves per top-up */

struct export {
	struct audit	*a;
	uint64_t	 next, end;
	ZSTD_CStream	*z;
	struct evbuffer	*raw;
	int		 flushed;
};

static void
export_free(void *arg)
{
	struct export *x = arg;

	if (x == NULL)
		return;
	ZSTD_freeCStream(x->z);
	if (x->raw != NULL)
		evbuffer_free(x->raw);
	free(x);
}

/* Compress raw into out; end the frame when last. */
static int
squeeze(struct export *x, struct evbuffer *out, int last)
{
	size_t cap = ZSTD_CStreamOutSize();
	size_t len = evbuffer_get_length(x->raw);
	ZSTD_inBuffer in = { evbuffer_pullup(x->raw, -1), len, 0 };
	char *buf = malloc(cap);
	size_t rem;

	if (buf == NULL)
		abort();
	do {
		ZSTD_outBuffer o = { buf, cap, 0 };

		rem = ZSTD_compressStream2(x->z, &o, &in, last ? ZSTD_e_end :
		    ZSTD_e_continue);
		if (ZSTD_isError(rem)) {
			free(buf);
			return -1;
		}
		evbuffer_add(out, buf, o.pos);
	} while (in.pos < in.size || (last && rem != 0));
	free(buf);
	evbuffer_drain(x->raw, len);
	return 0;
}

static int
export_more(struct api_req *q, struct evbuffer *out)
{
	struct export *x = q->more_arg;
	struct evbuffer *dst = x->z ? x->raw : out;
	uint8_t h[AUDIT_HASH];

	for (int i = 0; i < EXPORT_STEP && x->next < x->end; i++) {
		char *text;
		size_t len;

		if (audit_leaf(x->a, x->next, h, &text, &len) < 0) {
			log_err("audit-export-failed", "leaf=%llu",
			    (unsigned long long)x->next);
			return -1;
		}
		evbuffer_add(dst, text, len);
		evbuffer_add(dst, "\n", 1);
		free(text);
		x->next++;
	}
	if (x->z != NULL && squeeze(x, out, x->next >= x->end) < 0)
		return -1;
	return x->next < x->end;
}

void
api_audit_export(struct api_req *q)
{
	struct audit *a = api_audit_log(q);
	struct export *x;
	uint64_t from = 0;
	char z[8] = "";

	if (api_query_u64(q, "from", &from) < 0)
		return;
	if (http_query_get(http_req_query(q->http), "zstd", z, sizeof(z)) ==
	    -2 || (z[0] != '\0' && strcmp(z, "1") != 0 &&
	    strcmp(z, "0") != 0)) {
		api_error(q, 400, "bad_query", json_pack("{s:s}", "parameter",
		    "zstd"), "zstd takes 1 or 0");
		return;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL)
		abort();
	x->a = a;
	x->end = audit_durable_size(a);
	x->next = from < x->end ? from : x->end;
	if (strcmp(z, "1") == 0) {
		if ((x->z = ZSTD_createCStream()) == NULL ||
		    (x->raw = evbuffer_new()) == NULL)
			abort();
		ZSTD_CCtx_setParameter(x->z, ZSTD_c_compressionLevel, 3);
	}
	log_info("audit-export", "key=%s peer=%s from=%llu to=%llu zstd=%d",
	    log_q(q->who.key), q->peer, (unsigned long long)x->next,
	    (unsigned long long)x->end, x->z != NULL);
	api_reply_stream(q, 200, x->z ? "application/zstd" :
	    "application/x-ndjson", export_more, x, export_free);
}
