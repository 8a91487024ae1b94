/*
 * api_hl7.c — HL7 over HTTP: the inbox (GET /api/hl7/messages), back-
 * loading messages that did not come over MLLP (POST /api/hl7/ingest:
 * one message or a file of them, each handled exactly as if it came over
 * MLLP — same dedup, same ACK), and a preview of what the configured
 * paths take from a message (POST /api/hl7/preview).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http/http_req.h"
#include "src/api/api.h"
#include "src/daemon.h"
#include "src/hl7in.h"

#define INGEST_MAX	10000	/* messages per request */

void
api_hl7_messages(struct api_req *q)
{
	uint64_t after = 0, limit = 100, next = 0;
	char sender[80], type[16], ack[4];
	const char *qs = http_req_query(q->http);
	int rs, rt, ra;
	json_t *arr;

	if (api_query_u64(q, "after", &after) < 0 ||
	    api_query_u64(q, "limit", &limit) < 0)
		return;
	if (limit < 1 || limit > 1000) {
		api_error(q, 400, "bad_query", json_pack("{s:s}", "parameter",
		    "limit"), "limit is 1 to 1000");
		return;
	}
	rs = http_query_get(qs, "sender", sender, sizeof(sender));
	rt = http_query_get(qs, "type", type, sizeof(type));
	ra = http_query_get(qs, "ack", ack, sizeof(ack));
	if (rs == -2 || rt == -2 || ra == -2) {
		api_error(q, 400, "bad_query", NULL, "sender, type (ORM^O01) "
		    "and ack (AA, AE, AR) filters are short texts");
		return;
	}
	arr = hl7in_list(daemon_hl7in(q->d), after, (size_t)limit,
	    rs >= 0 ? sender : NULL, rt >= 0 ? type : NULL, ra >= 0 ? ack :
	    NULL, &next);
	if (arr == NULL) {
		api_error(q, 500, "read_failed", NULL, "the inbox could not be "
		    "read");
		return;
	}
	api_reply(q, 200, json_pack("{s:o, s:o}", "messages", arr, "next",
	    next ? json_integer((json_int_t)next) : json_null()));
}

/* One ingest request: its messages in flight, their answers in order. */
struct ingest {
	struct api_req	*q;
	json_t		*res;
	size_t		 left;
	int		 started;	/* all handed over */
};

struct ingest_one {
	struct ingest	*in;
	size_t		 i;
};

static void
ingest_reply(struct ingest *in)
{
	size_t n = json_array_size(in->res), aa = 0;

	for (size_t i = 0; i < n; i++)
		aa += strcmp(json_string_value(json_object_get(
		    json_array_get(in->res, i), "ack")), "AA") == 0;
	api_reply(in->q, 200, json_pack("{s:o, s:I, s:I}", "messages",
	    in->res, "count", (json_int_t)n, "accepted", (json_int_t)aa));
	free(in);
}

static void
ingest_done(void *arg, const char *ack, size_t len, const char *code)
{
	struct ingest_one *o = arg;
	struct ingest *in = o->in;
	json_t *r = json_array_get(in->res, o->i);

	json_object_set_new(r, "ack", json_string(ack ? code : "none"));
	if (ack != NULL) {
		json_t *t = json_stringn(ack, len);

		json_object_set_new(r, "ack_message", t ? t : json_null());
	}
	free(o);
	if (--in->left == 0 && in->started)
		ingest_reply(in);
}

/* The messages of a body: MLLP frames if it has any, else each segment
 * line beginning with "MSH" starts a message. */
static size_t
split(const char *p, size_t n, const char **start, size_t *len, size_t max)
{
	size_t k = 0, i = 0;

	if (memchr(p, 0x0b, n) != NULL) {
		while (i < n && k < max) {
			const char *vt = memchr(p + i, 0x0b, n - i), *fs;

			if (vt == NULL)
				break;
			fs = memchr(vt, 0x1c, n - (size_t)(vt - p));
			if (fs == NULL)
				fs = p + n;
			start[k] = vt + 1;
			len[k++] = (size_t)(fs - vt - 1);
			i = (size_t)(fs - p) + 1;
		}
		return k;
	}
	for (i = 0; i + 3 <= n; i++)
		if ((i == 0 || p[i - 1] == '\r' || p[i - 1] == '\n') &&
		    memcmp(p + i, "MSH", 3) == 0) {
			if (k > 0)
				len[k - 1] = i - (size_t)(start[k - 1] - p);
			if (k == max)
				return k + 1;	/* too many */
			start[k] = p + i;
			len[k++] = n - i;
		}
	return k;
}

void
api_hl7_ingest(struct api_req *q)
{
	const char **start;
	size_t *len, n;
	struct ingest *in;

	if ((start = calloc(INGEST_MAX + 1, sizeof(*start))) == NULL ||
	    (len = calloc(INGEST_MAX + 1, sizeof(*len))) == NULL)
		abort();
	n = split(q->raw, q->rawlen, start, len, INGEST_MAX);
	if (n == 0 || n > INGEST_MAX) {
		free(start);
		free(len);
		if (n > INGEST_MAX)
			api_error(q, 413, "too_many", NULL, "at most %d "
			    "messages per request: split the file",
			    INGEST_MAX);
		else
			api_error(q, 400, "no_message", NULL, "no HL7 message "
			    "in the body (a message starts with MSH; several "
			    "are separated by their MSH lines or MLLP "
			    "frames)");
		return;
	}
	if ((in = calloc(1, sizeof(*in))) == NULL)
		abort();
	in->q = q;
	in->res = json_array();
	in->left = n;
	for (size_t i = 0; i < n; i++)
		json_array_append_new(in->res, json_pack("{s:i, s:I}", "index",
		    (int)i, "bytes", (json_int_t)len[i]));
	for (size_t i = 0; i < n; i++) {
		struct ingest_one *o = malloc(sizeof(*o));

		if (o == NULL)
			abort();
		o->in = in;
		o->i = i;
		/* q->raw stays valid until the answer: the request is not
		 * let go before */
		hl7in_message(daemon_hl7in(q->d), start[i], len[i], q->peer,
		    "api", ingest_done, o);
	}
	free(start);
	free(len);
	in->started = 1;
	if (in->left == 0)
		ingest_reply(in);
}

void
api_hl7_preview(struct api_req *q)
{
	char err[512];
	json_t *j = hl7in_preview(daemon_hl7in(q->d), q->raw, q->rawlen, err,
	    sizeof(err));

	if (j == NULL) {
		api_error(q, 422, "bad_message", NULL, "the message does not "
		    "parse: %s", err);
		return;
	}
	api_reply(q, 200, j);
}
