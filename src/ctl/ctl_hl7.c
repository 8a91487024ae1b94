/*
 * ctl_hl7.c — the commands over HL7 intake: the inbox (hl7 messages,
 * following pages like batches), back-loading a file of messages (hl7
 * ingest: each message's ACK, and its outcome from the inbox) and what
 * the configured paths take from one message (hl7 preview).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/ctl/ctl.h"

#define HL7_FILE_MAX	(256u << 20)	/* bytes read from FILE or stdin */
#define HL7_CTYPE	"application/hl7-v2"

/* Text buffers for T(): 16 members in one row or printf at most. */
static char tb[16][512];

/* T: member K of O as text (ctl_jtext), in the next of tb's buffers. */
static const char *
T(const json_t *o, const char *k)
{
	static unsigned ti;

	return ctl_jtext(o, k, tb[ti++ % 16], sizeof(tb[0]));
}

/* utc: Unix seconds member K of O as 2024-05-01T10:00:00Z, or "-". */
static const char *
utc(const json_t *o, const char *k, char *buf, size_t n)
{
	const json_t *v = ctl_jget(o, k);
	struct tm tm;
	time_t t;

	if (!json_is_integer(v))
		return T(o, k);
	t = (time_t)json_integer_value(v);
	if (gmtime_r(&t, &tm) == NULL || strftime(buf, n,
	    "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return T(o, k);
	return buf;
}

/*
 * read_input: the bytes of PATH ("-": standard input) into *buf
 * (malloc'd, NUL-terminated, the caller frees) and *len; at most
 * HL7_FILE_MAX. 0, or -1 after saying why.
 */
static int
read_input(const char *path, char **buf, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	const char *name = f == stdin ? "standard input" : path;
	size_t cap = 65536, n = 0, got;
	char *b, *nb;
	int err;

	if (f == NULL) {
		fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
		return -1;
	}
	if ((b = malloc(cap + 1)) == NULL)
		goto nomem;
	for (;;) {
		if (n == cap) {
			if (cap >= HL7_FILE_MAX) {
				fprintf(stderr, PROG ": %s: more than %u MiB: "
				    "split it\n", name, HL7_FILE_MAX >> 20);
				goto fail;
			}
			cap *= 2;
			if ((nb = realloc(b, cap + 1)) == NULL)
				goto nomem;
			b = nb;
		}
		got = fread(b + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		err = errno;
		fprintf(stderr, PROG ": reading %s: %s\n", name, strerror(err));
		goto fail;
	}
	if (f != stdin)
		fclose(f);
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
nomem:
	fprintf(stderr, PROG ": %s: out of memory\n", name);
fail:
	free(b);
	if (f != stdin)
		fclose(f);
	return -1;
}

/* --- hl7 messages -------------------------------------------------- */

/* query_add: "&K=V" (or "?K=V" first) onto PATH, V escaped; -1 when
 * it does not fit. */
static int
query_add(char *path, size_t n, const char *k, const char *v)
{
	size_t len = strlen(path);
	char *e = ctl_escape(v);
	int w = snprintf(path + len, n - len, "%c%s=%s", strchr(path, '?') ?
	    '&' : '?', k, e);

	free(e);
	return w < 0 || (size_t)w >= n - len ? -1 : 0;
}

/*
 * hl7 messages: the inbox, oldest first, one page (the server's size)
 * by default; --limit N and --all follow "next" (as after=) like
 * batches; --sender, --type and --ack are the server's filters. --json
 * prints one object with every record fetched and the last next.
 */
int
cmd_hl7_messages(struct ctl *c, char **args, int n)
{
	static const char *const h[] = { "SEQ", "TIME", "SENDER", "TYPE",
	    "CONTROL_ID", "ACK", "OUTCOME", "BATCH", "ERROR", NULL };
	struct ctl_table *t;
	json_t *all = json_array(), *next = NULL, *m;
	uint64_t want = 0;
	char path[768] = "/api/hl7/messages", tm[32];
	size_t i;
	int rc = CTL_USAGE;

	(void)args;
	(void)n;
	if (c->o.limit != NULL && ctl_parse_u64(c->o.limit, 1, 1000000,
	    "--limit", &want) < 0)
		goto out;
	if (c->o.ack != NULL && strcmp(c->o.ack, "AA") != 0 &&
	    strcmp(c->o.ack, "AE") != 0 && strcmp(c->o.ack, "AR") != 0) {
		fprintf(stderr, PROG ": --ack %s: expected AA, AE or AR\n",
		    c->o.ack);
		goto out;
	}
	/* the server takes short filters (sender 79 bytes, type 15) */
	if ((c->o.sender != NULL && query_add(path, sizeof(path), "sender",
	    c->o.sender) < 0) || (c->o.type != NULL && query_add(path,
	    sizeof(path), "type", c->o.type) < 0) || (c->o.ack != NULL &&
	    query_add(path, sizeof(path), "ack", c->o.ack) < 0)) {
		fprintf(stderr, PROG ": --sender or --type is too long\n");
		goto out;
	}
	rc = ctl_pages(c, path, "messages", "after", want, c->o.all, all,
	    &next);
	if (rc == CTL_OK && c->json) {
		json_t *o = json_pack("{s:O, s:O}", "messages", all, "next",
		    next ? next : json_null());

		ctl_print_json(o);
		json_decref(o);
	} else if (rc == CTL_OK) {
		t = ctl_table_new(h);
		json_array_foreach(all, i, m) {
			const char *row[] = { T(m, "seq"), utc(m, "time", tm,
			    sizeof(tm)), T(m, "sender"), T(m, "type"),
			    T(m, "control_id"), T(m, "ack"), T(m, "outcome"),
			    T(m, "batch_id"), T(m, "error") };

			ctl_table_row(t, row);
		}
		ctl_table_print(t, stdout);
		ctl_pages_note("messages", next, json_array_size(all), want,
		    c->o.all);
	}
out:
	json_decref(next);
	json_decref(all);
	return rc;
}

/* --- hl7 ingest ---------------------------------------------------- */

/*
 * ack_field: field F of the first segment SEG ("MSH", "MSA", "ERR") of
 * ACK, our own answer (segments end in CR; the field separator is
 * MSH-1, the sender's), into OUT as it stands (escapes kept). MSH
 * counts as the standard does: MSH-1 is the separator itself. 0, or -1
 * when there is no such field or it is empty.
 */
static int
ack_field(const char *ack, const char *seg, int f, char *out, size_t n)
{
	const char *p = ack, *e;
	char fs;
	int i;

	if (strncmp(ack, "MSH", 3) != 0 || ack[3] == '\0')
		return -1;
	fs = ack[3];
	for (;;) {
		if (strncmp(p, seg, 3) == 0 && (p[3] == fs || p[3] == '\r' ||
		    p[3] == '\n' || p[3] == '\0'))
			break;
		if ((p = strpbrk(p, "\r\n")) == NULL)
			return -1;
		p += strspn(p, "\r\n");
	}
	e = p + strcspn(p, "\r\n");
	p += 3;
	/* MSH-1 is the separator: MSH-2 follows it, as SEG-1 does */
	for (i = strcmp(seg, "MSH") == 0 ? 2 : 1; i <= f; i++) {
		if (p >= e || *p != fs)
			return -1;
		p++;
		if (i == f)
			break;
		while (p < e && *p != fs)
			p++;
	}
	for (i = 0; p + i < e && p[i] != fs; i++)
		;
	if (i == 0)
		return -1;
	snprintf(out, n, "%.*s", i, p);
	return 0;
}

/* ack_seq: the inbox record an ACK of ours names (MSH-10 VN<seq>), or
 * 0. */
static uint64_t
ack_seq(const char *ack)
{
	char f[32], *end;
	unsigned long long v;

	if (ack == NULL || ack_field(ack, "MSH", 10, f, sizeof(f)) < 0 ||
	    strncmp(f, "VN", 2) != 0 || f[2] < '0' || f[2] > '9')
		return 0;
	errno = 0;
	v = strtoull(f + 2, &end, 10);
	return errno == 0 && *end == '\0' ? (uint64_t)v : 0;
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * inbox_records: the inbox records SEQS (sorted, N > 0) name, as an
 * object "seq" -> record (a new reference). One GET per run of
 * neighbouring records, 1000 at a time: the records of one ingest are
 * next to each other. A record not found (its store write failed) is
 * left out; so are all after a failed GET (said on stderr).
 */
static json_t *
inbox_records(struct ctl *c, const uint64_t *seqs, size_t n)
{
	json_t *out = json_object(), *m;
	struct ctl_answer a;
	char path[128], key[24];
	uint64_t last, s, span;
	size_t i = 0, k;

	while (i < n) {
		s = seqs[i];
		span = seqs[n - 1] - s + 1;
		snprintf(path, sizeof(path), "/api/hl7/messages?after=%" PRIu64
		    "&limit=%" PRIu64, s - 1, span > 1000 ? 1000 : span);
		if (ctl_api(c, "GET", path, NULL, 0, &a) != CTL_OK) {
			ctl_answer_free(&a);
			break;
		}
		last = 0;
		json_array_foreach(ctl_jget(a.json, "messages"), k, m) {
			const json_t *q = ctl_jget(m, "seq");

			if (!json_is_integer(q))
				continue;
			last = (uint64_t)json_integer_value(q);
			if (bsearch(&last, seqs, n, sizeof(*seqs),
			    u64_cmp) != NULL) {
				snprintf(key, sizeof(key), "%" PRIu64, last);
				json_object_set(out, key, m);
			}
		}
		ctl_answer_free(&a);
		if (last < s)
			break;		/* nothing from s on: none later */
		while (i < n && seqs[i] <= last)
			i++;
	}
	return out;
}

/*
 * ingest_table: one row per message of the ingest answer R: its number,
 * the control id (MSA-2: theirs, echoed), the ACK code, and from the
 * inbox records RECS the outcome, batch and error (else the ACK's
 * words). *bad gets how many did not get AA.
 */
static void
ingest_table(const json_t *r, const json_t *recs, size_t *bad)
{
	static const char *const h[] = { "#", "CONTROL_ID", "ACK", "OUTCOME",
	    "BATCH", "ERROR", NULL };
	struct ctl_table *t = ctl_table_new(h);
	const json_t *m, *rec;
	const char *ack, *code;
	char num[24], ctl[256], err[512], key[24];
	uint64_t seq;
	size_t i;

	*bad = 0;
	json_array_foreach(ctl_jget(r, "messages"), i, m) {
		ack = json_string_value(ctl_jget(m, "ack_message"));
		code = T(m, "ack");
		*bad += strcmp(code, "AA") != 0;
		seq = ack_seq(ack);
		snprintf(key, sizeof(key), "%" PRIu64, seq);
		rec = seq ? ctl_jget(recs, key) : NULL;
		snprintf(num, sizeof(num), "%zu", i + 1);
		if (ack == NULL || ack_field(ack, "MSA", 2, ctl,
		    sizeof(ctl)) < 0)
			snprintf(ctl, sizeof(ctl), "-");
		if (json_is_string(ctl_jget(rec, "error")))
			snprintf(err, sizeof(err), "%s", T(rec, "error"));
		else if (strcmp(code, "AA") == 0)
			snprintf(err, sizeof(err), "-");
		else if (ack == NULL)
			snprintf(err, sizeof(err), "no usable MSH segment: no "
			    "ACK could be addressed");
		else if (ack_field(ack, "ERR", 8, err, sizeof(err)) < 0 &&
		    ack_field(ack, "MSA", 3, err, sizeof(err)) < 0)
			snprintf(err, sizeof(err), "-");
		{
			const char *row[] = { num, ctl, code,
			    T(rec, "outcome"), T(rec, "batch_id"), err };

			ctl_table_row(t, row);
		}
	}
	ctl_table_print(t, stdout);
}

/*
 * hl7 ingest FILE|-: POST the bytes as they are; then look the records
 * the ACKs name up in the inbox for their outcomes. CTL_NOT_AA unless
 * every message got AA.
 */
int
cmd_hl7_ingest(struct ctl *c, char **args, int n)
{
	static const char path[] = "/api/hl7/ingest";
	struct ctl_answer a;
	json_t *recs = NULL, *m;
	uint64_t *seqs = NULL;
	size_t len, i, ns = 0, bad = 0, count;
	char *body;
	int rc;

	(void)n;
	if (read_input(args[0], &body, &len) < 0)
		return CTL_USAGE;
	rc = ctl_api_body(c, "POST", path, HL7_CTYPE, body, len, 0, &a);
	free(body);
	if (rc != CTL_OK)
		goto out;
	count = json_array_size(ctl_jget(a.json, "messages"));
	if (!json_is_array(ctl_jget(a.json, "messages"))) {
		ctl_err(c, "POST", path, "%d, but the answer has no messages",
		    a.status);
		rc = CTL_CONN;
		goto out;
	}
	if (c->json) {
		ctl_print_json(a.json);
		json_array_foreach(ctl_jget(a.json, "messages"), i, m)
			bad += strcmp(T(m, "ack"), "AA") != 0;
	} else {
		if ((seqs = calloc(count + 1, sizeof(*seqs))) == NULL) {
			ctl_err(c, "POST", path, "out of memory");
			rc = CTL_CONN;
			goto out;
		}
		json_array_foreach(ctl_jget(a.json, "messages"), i, m)
			if ((seqs[ns] = ack_seq(json_string_value(ctl_jget(m,
			    "ack_message")))) != 0)
				ns++;
		qsort(seqs, ns, sizeof(*seqs), u64_cmp);
		recs = ns ? inbox_records(c, seqs, ns) : json_object();
		ingest_table(a.json, recs, &bad);
	}
	if (bad) {
		ctl_err(c, "POST", path, "%zu of %zu message%s not accepted "
		    "(no AA)", bad, count, count == 1 ? "" : "s");
		rc = CTL_NOT_AA;
	}
out:
	free(seqs);
	json_decref(recs);
	ctl_answer_free(&a);
	return rc;
}

/* --- hl7 preview --------------------------------------------------- */

int
cmd_hl7_preview(struct ctl *c, char **args, int n)
{
	struct ctl_answer a;
	const json_t *j, *snd, *v;
	const char *k;
	char line[1200];
	size_t len;
	char *body;
	int rc;

	(void)n;
	if (read_input(args[0], &body, &len) < 0)
		return CTL_USAGE;
	rc = ctl_api_body(c, "POST", "/api/hl7/preview", HL7_CTYPE, body, len,
	    0, &a);
	free(body);
	if (rc != CTL_OK || ctl_json_or(c, &a))
		goto out;
	j = a.json;
	snprintf(line, sizeof(line), "%s^%s", T(j, "type"), T(j, "trigger"));
	ctl_kv("type", line, 10);
	ctl_kv("control_id", T(j, "control_id"), 10);
	ctl_kv("app", T(j, "app"), 10);
	ctl_kv("facility", T(j, "facility"), 10);
	snd = ctl_jget(j, "sender");
	if (json_is_object(snd)) {
		snprintf(line, sizeof(line), "%s (source %s, target %s)",
		    T(snd, "name"), T(snd, "source"), T(snd, "target"));
		ctl_kv("sender", line, 10);
	} else
		ctl_kv("sender", "none: no hl7.senders entry matches it (it "
		    "would be kept in the inbox, nothing made)", 10);
	json_object_foreach(ctl_jget(j, "values"), k, v) {
		snprintf(line, sizeof(line), "%s (%s)", T(v, "value"),
		    T(v, "path"));
		ctl_kv(k, line, 10);
	}
	if (json_is_string(ctl_jget(j, "charset_error")))
		ctl_kv("charset", T(j, "charset_error"), 10);
out:
	ctl_answer_free(&a);
	return rc;
}
