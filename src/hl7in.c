/*
 * hl7in.c — see hl7in.h.
 *
 * Store (CF hl7, store/SCHEMA.md):
 *	("ack", app, facility, control_id) → the ACK sent (AA and AE only:
 *	                                      an AR is not final)
 *	("ackh", app, facility, control_id) → SHA-256 of the segments after
 *	                                      MSH: a resend, or another
 *	                                      message under its control ID
 *	("msg", u64 seq)                    → the inbox record (JSON)
 *	("xw", source, old MRN)             → JSON {new, control_id, time}
 *	                                      (an MRN is its source's: the
 *	                                      crosswalk is per source peer)
 * all written in the message's one unit with its audit leaf (and the
 * batch, and its webhook notifications).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "conf/conf.h"
#include "src/api/api.h"
#include "src/daemon.h"
#include "src/hl7/hl7.h"
#include "src/hl7in.h"
#include "src/mig/mig.h"
#include "src/net/net.h"
#include "src/net/store_loop.h"
#include "src/notify.h"
#include "src/util/hset.h"
#include "src/util/jw.h"
#include "src/util/log.h"
#include "src/util/sha256.h"
#include "src/util/metrics.h"
#include "store/audit.h"
#include "store/store.h"
#include "store/store_key.h"

#define ACK_MAX		8192	/* our ACKs: MSH + MSA + ERR */
#define VAL_MAX		256	/* an extracted value */
#define PENDING_BUCKETS	4096	/* messages being committed, by key */

struct hl7in {
	struct daemon	*d;
	uint64_t	 next_seq;	/* inbox */
	uint64_t	 purged;	/* no inbox record below this seq */
	/* messages being committed, by the hash of their dedup key: a
	 * copy that comes meanwhile (a sender that resends before its ACK)
	 * waits for the first; thousands may be pending at once */
	struct hl7in_call *pending[PENDING_BUCKETS];
	/* A merge (ADT^A40) reads and writes the crosswalk and batches'
	 * patient IDs, which other messages read: it waits until every
	 * message before it is durable, and those after it wait until it
	 * is (taken meanwhile, each saw only what was durable: an order
	 * missed the merge, a second merge missed the first). Held in
	 * order, copied. */
	unsigned	 inflight;	/* units ended, not yet committed */
	unsigned	 merges;	/* ... of them merges */
	struct hl7in_call *hq, **hq_tail;
	struct metric	*m_msgs;	/* {sender, type, ack} */
	struct metric	*m_dups;
	struct jw	 jw;		/* inbox records are written in it */
	struct hset	 xw;		/* IDs merged away (the crosswalk's
					 * keys): an order for any other MRN
					 * needs no lookup */
	int		 xw_ok;		/* it was read whole */
};

#define KICK_MAX	16	/* batches named to the engine per message */

struct hl7in_call {
	struct hl7in		*h;
	hl7in_done_fn		*done;
	void			*arg;
	int			 cancelled;
	struct hl7in_call	*next;		/* in its h->pending bucket */
	struct hl7in_call	*prev;		/* ... O(1) out */
	size_t			 bucket;
	struct hl7in_call	*waiters;	/* same message meanwhile */
	struct store_key	 key;		/* dedup */
	uint8_t			 body[32];	/* body_hash */
	char			*ack;
	size_t			 acklen;
	char			 code[3];
	int			 keep;		/* the ACK is final (AA/AE) */
	int			 batch;		/* a batch was made */
	char			 bsrc[CONF_NAME_MAX + 1];	/* its */
	char			 btgt[CONF_NAME_MAX + 1];	/* record */
	int			 bprio;
	int64_t			 bprefetch;
	char			 bby[96];	/* its created_by */
	uint64_t		 kick[KICK_MAX];	/* made or promoted */
	size_t			 nkick;
	struct api_held		 held;		/* batches changed: held
						 * until the unit is done */
	struct notify_ticket	*notes;
	char			 sender[80], type[16];
	int			 merge;		/* an ADT^A40 */
	/* held (h->hq): the message, copied */
	struct hl7in_call	*hnext;
	char			*hraw, *hpeer, *hvia;
	size_t			 hlen;
};

struct hl7in *
hl7in_new(struct daemon *d, char *err, size_t errlen)
{
	struct hl7in *h = calloc(1, sizeof(*h));

	if (h == NULL)
		abort();
	h->d = d;
	h->hq_tail = &h->hq;
	h->m_msgs = metrics_counter(daemon_metrics(d),
	    "vnamig_hl7_messages_total", "HL7 messages answered, by sender "
	    "(\"-\": unmapped), message type and acknowledgment code.",
	    "sender,type,ack");
	h->m_dups = metrics_counter(daemon_metrics(d),
	    "vnamig_hl7_duplicates_total", "HL7 messages seen before (same "
	    "MSH-3, MSH-4, MSH-10): their stored ACK was sent again.", NULL);
	hl7in_reload(h);
	(void)err;
	(void)errlen;
	return h;
}

void
hl7in_free_(struct hl7in *h)
{
	if (h == NULL)
		return;
	/* calls still pending end with their store units (drained first) */
	while (h->hq != NULL) {
		struct hl7in_call *c = h->hq;

		h->hq = c->hnext;
		free(c->hraw);
		free(c->hpeer);
		free(c->hvia);
		free(c);
	}
	jw_free(&h->jw);
	hset_free(&h->xw);
	free(h);
}

static struct store *
hst(struct hl7in *h)
{
	return store_loop_store(daemon_state(h->d));
}

static void
msg_key(struct store_key *k, uint64_t seq)
{
	store_key_init(k);
	store_key_cstr(k, "msg");
	if (seq != UINT64_MAX)
		store_key_u64(k, seq);
}

void
hl7in_xw_key(struct store_key *k, const char *src, const char *mrn)
{
	store_key_init(k);
	store_key_cstr(k, "xw");
	store_key_cstr(k, src);
	store_key_cstr(k, mrn);
}

#define XW_NAME_MAX	(CONF_NAME_MAX + VAL_MAX + 2)

static void
xw_name(char nm[XW_NAME_MAX], const char *src, const char *mrn)
{
	snprintf(nm, XW_NAME_MAX, "%s\x1f%s", src, mrn);
}

static int
xw_may(struct hl7in *h, const char *src, const char *mrn)
{
	char nm[XW_NAME_MAX];

	xw_name(nm, src, mrn);
	return !h->xw_ok || hset_may(&h->xw, nm);
}

static void
xw_add(struct hl7in *h, const char *src, const char *mrn)
{
	char nm[XW_NAME_MAX];

	xw_name(nm, src, mrn);
	hset_add(&h->xw, nm);
}

static int
xw_one(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct hl7in *h = arg;
	struct store_kreader r;
	char tag[4], src[CONF_NAME_MAX + 1], id[VAL_MAX];

	(void)val;
	(void)vlen;
	store_kreader_init(&r, key, klen);
	store_kreader_str(&r, tag, sizeof(tag));
	store_kreader_str(&r, src, sizeof(src));
	store_kreader_str(&r, id, sizeof(id));
	if (r.err)
		h->xw_ok = -1;	/* longer than an MRN taken here */
	else
		xw_add(h, src, id);
	return 0;
}

void
hl7in_reload(struct hl7in *h)
{
	struct store_key k;
	void *key = NULL, *val = NULL;
	size_t kn, vn;

	/* the crosswalk's merged IDs (added to what a reset left: a
	 * superset does no harm) */
	store_key_init(&k);
	store_key_cstr(&k, "xw");
	h->xw_ok = 0;
	if (store_scan(hst(h), STORE_CF_HL7, k.b, k.len, xw_one, h) == 0 &&
	    h->xw_ok == 0)
		h->xw_ok = 1;
	else
		h->xw_ok = 0;

	msg_key(&k, UINT64_MAX);
	h->next_seq = 1;
	h->purged = 0;
	if (store_last(hst(h), STORE_CF_HL7, k.b, k.len, &key, &kn, &val,
	    &vn) == 1 && kn >= 8)
		h->next_seq = store_be64_get((uint8_t *)key + kn - 8) + 1;
	free(key);
	free(val);
}

/* ---------------------------------------------------------------------- */
/* Answers. */

static void
utc_hl7(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y%m%d%H%M%S+0000", &tm);
}

/* The ACK for m into c (AA: e NULL). */
static void
make_ack(struct hl7in_call *c, const struct hl7_msg *m, const char *code,
    const struct hl7_err *e, uint64_t seq)
{
	char ts[32], ctl[32];
	size_t n;

	utc_hl7(ts);
	snprintf(ctl, sizeof(ctl), "VN%" PRIu64, seq);
	free(c->ack);
	if ((c->ack = malloc(ACK_MAX)) == NULL)
		abort();
	n = hl7_ack(m, code, ctl, ts, e, c->ack, ACK_MAX);
	if (n >= ACK_MAX) {
		char *big = realloc(c->ack, n + 1);

		if (big == NULL)
			abort();
		c->ack = big;
		n = hl7_ack(m, code, ctl, ts, e, c->ack, n + 1);
	}
	c->acklen = n;
	snprintf(c->code, sizeof(c->code), "%s", code);
}

static void
count(struct hl7in *h, struct hl7in_call *c)
{
	const char *v[3] = { c->sender[0] ? c->sender : "-",
	    c->type[0] ? c->type : "-", c->code[0] ? c->code : "none" };

	metric_add(h->m_msgs, v, 1);
}

/* Answer c (and whoever waits on it) and free them. */
static void
finish(struct hl7in_call *c)
{
	struct hl7in_call *w, *next;

	count(c->h, c);
	for (w = c->waiters; w != NULL; w = next) {
		next = w->next;
		count(c->h, c);		/* each copy was answered too */
		if (!w->cancelled)
			w->done(w->arg, c->ack, c->acklen, c->code);
		free(w);
	}
	if (!c->cancelled)
		c->done(c->arg, c->ack, c->acklen, c->code);
	free(c->ack);
	free(c);
}

void
hl7in_cancel(struct hl7in_call *c)
{
	if (c != NULL)
		c->cancelled = 1;
}

/* ---------------------------------------------------------------------- */
/* One message. */

struct merge {
	const char	*from, *to;
	json_t		*rewritten, *started;
};

static int
merge_rewrite(void *arg, uint64_t id, json_t *b)
{
	struct merge *x = arg;

	json_t *from = json_object_get(b, "merged_from");

	/* the old ID is kept: a source that did not hear of the merge
	 * still files the studies under it (the engine asks for both, and
	 * rewrites PatientID on the way through the crosswalk) */
	if (!json_is_array(from)) {
		from = json_array();
		json_object_set_new(b, "merged_from", from);
	}
	json_array_append(from, json_object_get(b, "patient_id"));
	json_object_set_new(b, "patient_id", json_string(x->to));
	json_array_append_new(x->rewritten, json_integer((json_int_t)id));
	return 1;
}

static int
merge_started(void *arg, uint64_t id, json_t *b)
{
	struct merge *x = arg;

	(void)b;
	json_array_append_new(x->started, json_integer((json_int_t)id));
	return 0;
}

static json_int_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Pre-fetch: an order for a patient moves that patient's waiting batches
 * to the front (priority 9); the migration engine takes them first. */
struct promote {
	struct hl7in_call *c;
	const char	*control;
	json_t		*ids;
	json_int_t	 at_ms;		/* the order's arrival, wall clock */
};

static int
promote_one(void *arg, uint64_t id, json_t *b)
{
	struct promote *x = arg;

	if (json_integer_value(json_object_get(b, "priority")) >= 9)
		return 0;
	json_object_set_new(b, "priority", json_integer(9));
	json_object_set_new(b, "promoted_by", json_string(x->control));
	json_object_set_new(b, "prefetch_at_ms", json_integer(x->at_ms));
	json_array_append_new(x->ids, json_integer((json_int_t)id));
	if (x->c->nkick < KICK_MAX)
		x->c->kick[x->c->nkick] = id;
	x->c->nkick++;
	return 1;
}

static void
set_err(struct hl7_err *e, int code, const char *seg, uint32_t field,
    const char *text)
{
	memset(e, 0, sizeof(*e));
	e->code = code;
	snprintf(e->seg, sizeof(e->seg), "%s", seg);
	e->seq = seg[0] ? 1 : 0;
	e->field = field;
	snprintf(e->text, sizeof(e->text), "%s", text);
	jw_utf8_scrub(e->text);	/* (a cut may split a character) */
}

/* A DICOM UID: digits and dots, at most 64. */
static int
uid_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] == '.' &&
		    s[i + 1] != '.')))
			return 0;
	return 1;
}

/* The MSA-1 code in an ACK we built (segments end in CR; the field
 * separator is the message's own, not always '|'), or NULL. */
static char *
msa_code(char *ack, size_t len)
{
	for (size_t i = 0; i + 7 <= len; i++)
		if ((i == 0 || ack[i - 1] == '\r') &&
		    memcmp(ack + i, "MSA", 3) == 0 && ack[i + 4] == 'A')
			return ack + i + 4;
	return NULL;
}

/*
 * body_hash: SHA-256 of what follows the MSH segment: a message sent
 * again after a lost ACK has the same (its MSH-7 may be new); one that
 * reuses a control ID for other content does not.
 */
static void
body_hash(const char *raw, size_t len, uint8_t out[32])
{
	int cr = memchr(raw, '\r', len) != NULL;
	char term = cr ? '\r' : '\n';
	const char *e = memchr(raw, term, len), *end = raw + len, *p;
	struct sha256 c;

	/* its segments, whatever ends them (CR, CR LF, LF, blank lines,
	 * none after the last): one sender's tools send one message so and
	 * so */
	sha256_init(&c);
	for (p = e != NULL ? e : end; p < end; ) {
		const char *q;

		while (p < end && (*p == '\r' || *p == '\n'))
			p++;
		if (p == end)
			break;
		if ((q = memchr(p, term, (size_t)(end - p))) == NULL)
			q = end;
		sha256_update(&c, p, (size_t)(q - p));
		sha256_update(&c, "\r", 1);
		p = q;
	}
	sha256_final(&c, out);
}

/* A dedup row's key: TAG "ack" (the ACK sent) or "ackh" (the body's
 * hash), then MSH-3, MSH-4, MSH-10. */
static void
dedup_key(struct store_key *k, const char *tag, const char *app,
    const char *fac, const char *ctl)
{
	store_key_init(k);
	store_key_cstr(k, tag);
	store_key_cstr(k, app ? app : "");
	store_key_cstr(k, fac ? fac : "");
	store_key_cstr(k, ctl);
}

/* a dedup key's bucket in h->pending */
static size_t
key_bucket(const struct store_key *k)
{
	return (size_t)(hset_hash(k->b, k->len) % PENDING_BUCKETS);
}

static void hold_drain(struct hl7in *h);

static void
committed(void *arg, int err)
{
	struct hl7in_call *c = arg;
	struct hl7in *h = c->h;

	h->inflight--;		/* (end_unit) */
	if (c->merge)
		h->merges--;

	/* many messages of a pipelined sender are pending at once */
	if (c->prev != NULL)
		c->prev->next = c->next;
	else if (h->pending[c->bucket] == c)
		h->pending[c->bucket] = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	api_batches_unhold(api_batches(daemon_api(h->d)), &c->held);
	if (c->notes != NULL)
		notify_settle(c->notes, err);
	if (err) {
		/* nothing was kept: AR, the sender sends it again later */
		log_warn("hl7-not-stored", "sender=%s type=%s error=%s",
		    log_q(c->sender), c->type, log_q(store_error(hst(h))));
		/* the ACK already built names the outcome we meant; a
		 * failed store turns it into a transient refusal */
		char *code = c->ack ? msa_code(c->ack, c->acklen) : NULL;

		if (code != NULL && (code[1] == 'A' || code[1] == 'E'))
			code[1] = 'R';
		snprintf(c->code, sizeof(c->code), "AR");
	} else if (c->batch) {
		api_batches_created(api_batches(daemon_api(h->d)));
		/* the engine rereads the new batch and the promoted ones;
		 * more promoted than kick[] holds: it rereads them all */
		if (c->nkick > KICK_MAX)
			mig_kick(daemon_mig(h->d), MIG_KICK_ALL);
		for (size_t i = 0; i < c->nkick && i < KICK_MAX; i++)
			if (i == 0) {
				/* the new one: its record is at hand */
				struct mig_brec r = { .state = "queued",
				    .source = c->bsrc, .target = c->btgt,
				    .priority = c->bprio,
				    .prefetch_at_ms = c->bprefetch,
				    .created_by = c->bby };

				mig_kick_brec(daemon_mig(h->d), c->kick[0], &r);
			} else
				mig_kick(daemon_mig(h->d), c->kick[i]);
	}
	finish(c);
	hold_drain(h);
}

/* end_unit: the message's unit ends; counted in flight until committed. */
static void
end_unit(struct hl7in *h, struct store_batch *b, struct hl7in_call *c)
{
	h->inflight++;
	if (c->merge)
		h->merges++;
	store_end(b, committed, c);
}

static void
put_json(struct store_batch *b, enum store_cf cf, const struct store_key *k,
    json_t *j)
{
	char *v = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	store_put(b, cf, k->b, k->len, v, strlen(v));
	free(v);
}

static void put_message(json_t *rec, const char *raw, size_t len);

/* raw as base64, in a buffer kept for the next call */
static const char *
base64(const char *raw, size_t len)
{
	static char *b64;
	static size_t cap;

	if (len / 3 * 4 + 8 > cap) {
		cap = len / 3 * 4 + 8;
		if ((b64 = realloc(b64, cap)) == NULL)
			abort();
	}
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)raw,
	    (int)len);
	return b64;
}

/*
 * A message refused before it could be read (it does not parse, or has
 * no MSH-10): AR, addressed from what of its MSH could be read, kept in
 * the inbox with an audit leaf like any other — or, when the store cannot
 * take even that, answered at once.
 */
static struct hl7in_call *
refuse_as(struct hl7in *h, struct hl7in_call *c, struct hl7_msg *am,
    const struct hl7_err *e, const char *outcome, const char *code,
    const char *raw, size_t len, const char *peer, const char *via)
{
	struct audit *au = store_loop_audit(daemon_state(h->d));
	uint64_t seq = h->next_seq++;
	struct store_batch *b;
	struct store_key k;
	json_t *rec, *ev;
	char ctl[256], app[256], fac[256], etext[sizeof(e->text)];

	/* (header values are at most 255 bytes, whole characters; the
	 * records are JSON: what is not UTF-8 goes in as '?') */
	snprintf(ctl, sizeof(ctl), "%s", hl7_control_id(am) ?
	    hl7_control_id(am) : "");
	snprintf(app, sizeof(app), "%s", hl7_sending_app(am) ?
	    hl7_sending_app(am) : "");
	snprintf(fac, sizeof(fac), "%s", hl7_sending_facility(am) ?
	    hl7_sending_facility(am) : "");
	snprintf(etext, sizeof(etext), "%s", e->text);
	jw_utf8_scrub(ctl);
	jw_utf8_scrub(app);
	jw_utf8_scrub(fac);
	jw_utf8_scrub(etext);
	log_warn("hl7-refused", "peer=%s sender=%s type=%s control=%s "
	    "error=%s", peer, log_q(app), c->type, log_q(ctl),
	    log_q(e->text));
	make_ack(c, am, code, e, seq);
	hl7_free(am);
	if (store_state(hst(h)) != STORE_OK) {
		finish(c);
		return NULL;
	}
	b = store_begin(hst(h));
	rec = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
	    "s:I}", "seq", (json_int_t)seq, "time", (json_int_t)time(NULL),
	    "peer", peer, "via", via, "type", c->type, "control_id", ctl,
	    "ack", code, "outcome", outcome, "error", etext, "app", app,
	    "bytes", (json_int_t)len);
	json_object_set_new(rec, "facility", json_string(fac));
	json_object_set_new(rec, "sender", c->sender[0] ?
	    json_string(c->sender) : json_null());
	put_message(rec, raw, len);
	msg_key(&k, seq);
	{
		char *val = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);

		store_put(b, STORE_CF_HL7, k.b, k.len, val, strlen(val));
		free(val);
	}
	json_decref(rec);
	ev = json_pack("{s:s, s:{s:s, s:s}, s:{s:I, s:s, s:s, s:s}, s:s, "
	    "s:s}", "event", "hl7.message", "actor", "hl7", c->sender[0] ?
	    c->sender : "-", "addr", peer, "object", "inbox_seq",
	    (json_int_t)seq, "type", c->type, "control_id", ctl,
	    "outcome", outcome, "outcome", code, "reason", etext);
	audit_append(au, b, ev);
	json_decref(ev);
	end_unit(h, b, c);
	return c;
}

/* refuse: AR, kept in the inbox and the log (it is not final: no ack
 * row; the sender sends it again). */
static struct hl7in_call *
refuse(struct hl7in *h, struct hl7in_call *c, struct hl7_msg *am,
    const struct hl7_err *e, const char *outcome, const char *raw,
    size_t len, const char *peer, const char *via)
{
	return refuse_as(h, c, am, e, outcome, "AR", raw, len, peer, via);
}

static void
put_message(json_t *rec, const char *raw, size_t len)
{
	json_t *msg = json_stringn(raw, len);

	if (msg == NULL)
		/* not UTF-8 (8859-1 senders): kept as base64 */
		json_object_set_new(rec, "message_base64", json_string_nocheck(
		    base64(raw, len)));
	else
		json_object_set_new(rec, "message", msg);
}

/* The segment and field a path's first alternative names ("ZDS-1.1" →
 * ZDS, 1), for the ERR segment. */
static void
path_loc(const char *path, struct hl7_err *e)
{
	size_t n = strcspn(path, "-|");

	if (n == 3 && path[3] == '-') {
		memcpy(e->seg, path, 3);
		e->seg[3] = '\0';
		e->seq = 1;
		e->field = (uint32_t)strtoul(path + 4, NULL, 10);
	}
}

/* The first alternative of path that finds a value in m (for locating
 * it), or path itself. */
static const char *
found_alt(const struct hl7_msg *m, const char *path, char *buf, size_t cap)
{
	const char *p = path;
	char v[VAL_MAX];

	while (*p != '\0') {
		size_t n = strcspn(p, "|");

		if (n < cap) {
			memcpy(buf, p, n);
			buf[n] = '\0';
			if (hl7_lookup(m, buf, v, sizeof(v)) == HL7_FOUND)
				return buf;
		}
		p += n;
		if (*p == '|')
			p++;
	}
	return path;
}

/*
 * The inbox record of a message that could be read, written as text (the
 * keys in jansson's sorted order, as refuse() writes its records): at
 * thousands of messages a second, building it as a jansson tree and
 * dumping it was a tenth of the reactor.
 */
struct inbox {
	uint64_t	 seq;
	time_t		 time;
	const char	*peer, *via, *type;
	const char	*app, *fac, *ctl;	/* app, fac: NULL when absent */
	const char	*sender;		/* NULL: unmapped */
	const char	*raw;
	size_t		 len;
	uint64_t	 bid;			/* 0: no batch made */
	int		 merged_id;		/* the MRN was merged away */
	json_t		*promoted, *merge;	/* NULL: none */
	const char	*code, *outcome;
	const char	*error;			/* NULL: none */
};

static void
inbox_put(struct hl7in *h, struct store_batch *b, const struct inbox *r)
{
	struct jw *w = &h->jw;
	struct store_key k;

	jw_open(w);
	jw_str(w, "ack", r->code);
	jw_str(w, "app", r->app ? r->app : "");
	if (r->bid != 0)
		jw_int(w, "batch_id", (int64_t)r->bid);
	jw_int(w, "bytes", (int64_t)r->len);
	jw_str(w, "control_id", r->ctl);
	if (r->error != NULL)
		jw_str(w, "error", r->error);
	jw_str(w, "facility", r->fac ? r->fac : "");
	if (r->merge != NULL)
		jw_json(w, "merge", r->merge);
	if (jw_utf8(r->raw, r->len))
		jw_strn(w, "message", r->raw, r->len);
	else	/* not UTF-8 (8859-1 senders): kept as base64 */
		jw_str(w, "message_base64", base64(r->raw, r->len));
	jw_str(w, "outcome", r->outcome);
	if (r->merged_id)
		jw_bool(w, "patient_id_merged", 1);
	jw_str(w, "peer", r->peer);
	if (r->promoted != NULL)
		jw_json(w, "promoted", r->promoted);
	if (r->sender != NULL)
		jw_str(w, "sender", r->sender);
	else
		jw_null(w, "sender");
	jw_int(w, "seq", (int64_t)r->seq);
	jw_int(w, "time", (int64_t)r->time);
	jw_str(w, "type", r->type);
	jw_str(w, "via", r->via);
	jw_close(w);
	msg_key(&k, r->seq);
	store_put(b, STORE_CF_HL7, k.b, k.len, w->p, w->n);
}

static struct hl7in_call *hold(struct hl7in *h, struct hl7in_call *c,
    const char *raw, size_t len, const char *peer, const char *via);

static struct hl7in_call *
message(struct hl7in *h, const char *raw, size_t len, const char *peer,
    const char *via, hl7in_done_fn *done, void *arg, struct hl7in_call *c)
{
	const struct conf *cf = daemon_conf(h->d);
	struct audit *au = store_loop_audit(daemon_state(h->d));
	struct hl7_limits lim = { .max_bytes = (uint32_t)cf->limits.mllp_frame };
	const struct conf_hl7_sender *snd = NULL;
	struct hl7_msg *m = NULL, *msh;
	struct hl7_err e;
	struct store_batch *b;
	const char *app, *fac, *ctl, *type, *trig, *code = "AA";
	const char *outcome = "inbox";
	char acc[VAL_MAX] = "", mrn[VAL_MAX] = "", uid[VAL_MAX] = "";
	char phi[65] = "", chan[96];
	json_t *ev;
	struct inbox ib = { .time = time(NULL), .peer = peer, .via = via,
	    .raw = raw, .len = len };
	uint64_t seq, bid = 0;
	void *v;
	size_t vn;
	int r;

	if (c == NULL && (c = calloc(1, sizeof(*c))) == NULL)
		abort();
	c->h = h;
	c->done = done;
	c->arg = arg;
	memset(&e, 0, sizeof(e));
	if ((msh = hl7_parse_msh(raw, len, &lim, &e)) == NULL) {
		/* no MSH to address an ACK to: log and drop */
		log_warn("hl7-unaddressable", "peer=%s via=%s bytes=%zu "
		    "error=%s", peer, via, len, log_q(e.text));
		finish(c);
		return NULL;
	}
	app = hl7_sending_app(msh);
	fac = hl7_sending_facility(msh);
	snd = conf_hl7_sender(cf, app, fac);
	snprintf(c->sender, sizeof(c->sender), "%s", snd ? snd->name : "");
	lim.charset = snd ? snd->charset : NULL;
	snprintf(c->type, sizeof(c->type), "%s^%s", hl7_msg_type(msh),
	    hl7_trigger(msh));
	jw_utf8_scrub(c->type);	/* (cut: a character may be split) */
	ctl = hl7_control_id(msh);
	c->merge = strcmp(c->type, "ADT^A40") == 0;
	if (c->merge && h->inflight > 0) {
		/* a merge waits for what came before it (hold_drain) */
		hl7_free(msh);
		return hold(h, c, raw, len, peer, via);
	}

	if ((m = hl7_parse(raw, len, &lim, &e)) == NULL)
		/* the message refused, addressed from its MSH: AR */
		return refuse(h, c, msh, &e, "unparsed", raw, len, peer, via);
	hl7_free(msh);
	if (ctl == NULL || hl7_control_id(m)[0] == '\0') {
		set_err(&e, HL7_E_REQUIRED_MISSING, "MSH", 10, "MSH-10 (the "
		    "message control ID) is empty: the message cannot be "
		    "acknowledged or deduplicated");
		return refuse(h, c, m, &e, "no-control-id", raw, len, peer,
		    via);
	}
	app = hl7_sending_app(m);
	fac = hl7_sending_facility(m);
	ctl = hl7_control_id(m);
	type = hl7_msg_type(m);
	trig = hl7_trigger(m);

	/* seen before? (durable, or being stored right now) */
	dedup_key(&c->key, "ack", app, fac, ctl);
	c->bucket = key_bucket(&c->key);
	body_hash(raw, len, c->body);
	for (struct hl7in_call *p = h->pending[c->bucket]; p != NULL;
	    p = p->next)
		if (p->key.len == c->key.len &&
		    memcmp(p->key.b, c->key.b, c->key.len) == 0) {
			if (memcmp(p->body, c->body, 32) != 0) {
				/* other content under a control ID being
				 * stored: its fate is the first one's to
				 * decide (AE 205 after an AA, taken after an
				 * AE): asked again once that is known */
				set_err(&e, HL7_E_INTERNAL, "MSH", 10, "a "
				    "message with this control ID and other "
				    "content is being stored: send this one "
				    "again later");
				make_ack(c, m, "AR", &e, h->next_seq++);
				hl7_free(m);
				finish(c);
				return NULL;
			}
			metric_add(h->m_dups, NULL, 1);
			c->next = p->waiters;
			p->waiters = c;
			hl7_free(m);
			return c;
		}
	r = store_get(hst(h), STORE_CF_HL7, c->key.b, c->key.len, &v, &vn);
	if (r == 1) {
		struct store_key hk;
		void *hv = NULL;
		size_t hn = 0;
		const char *was = msa_code(v, vn);
		int same;

		dedup_key(&hk, "ackh", app, fac, ctl);
		same = store_get(hst(h), STORE_CF_HL7, hk.b, hk.len, &hv,
		    &hn) != 1 || hn != 32 || memcmp(hv, c->body, 32) == 0;
		free(hv);
		if (!same && was != NULL && memcmp(was, "AA", 2) != 0) {
			/* refused before (AE), sent again corrected under
			 * the same control ID: taken afresh */
			log_info("hl7-resent-changed", "peer=%s sender=%s "
			    "control=%s was=%.2s", peer, log_q(app),
			    log_q(ctl), was);
			free(v);
			r = 0;
		} else if (!same) {
			/* accepted before: this is another message under
			 * its control ID, not a resend */
			free(v);
			log_warn("hl7-control-id-reused", "peer=%s sender=%s "
			    "control=%s action=%s", peer, log_q(app),
			    log_q(ctl), "refused AE 205; the message taken "
			    "before under this MSH-10 stands");
			set_err(&e, HL7_E_DUPLICATE_KEY, "MSH", 10, "MSH-10 "
			    "(the message control ID) was used before by a "
			    "message with other content, which was accepted: "
			    "this one is not taken; send it with a new "
			    "control ID");
			/* kept in the inbox and the log, as refused */
			return refuse_as(h, c, m, &e, "control-id-reused",
			    "AE", raw, len, peer, via);
		}
	}
	if (r == 1) {
		metric_add(h->m_dups, NULL, 1);
		log_info("hl7-duplicate", "peer=%s sender=%s control=%s",
		    peer, log_q(app), log_q(ctl));
		c->ack = v;
		c->acklen = vn;
		{
			/* the stored value is not NUL-terminated */
			const char *was = msa_code(v, vn);

			snprintf(c->code, sizeof(c->code), "%.2s", was ?
			    was : "AA");
		}
		hl7_free(m);
		finish(c);
		return NULL;
	}
	if (r < 0 || store_state(hst(h)) != STORE_OK ||
	    net_server_intake(daemon_net(h->d)) != NULL) {
		set_err(&e, HL7_E_INTERNAL, "", 0, "the store cannot take "
		    "messages now (disk space or a failing write); nothing "
		    "was kept: send it again later");
		make_ack(c, m, "AR", &e, h->next_seq++);
		hl7_free(m);
		finish(c);
		return NULL;
	}

	seq = h->next_seq++;
	b = store_begin(hst(h));

	if (hl7_charset_error(m) != NULL) {
		/* decoded values cannot be trusted: nothing is made */
		set_err(&e, HL7_E_DATA_TYPE, "MSH", 18, hl7_charset_error(m));
		code = "AE";
		outcome = "error";
	} else if ((strcmp(type, "ORM") == 0 && strcmp(trig, "O01") == 0) ||
	    (strcmp(type, "OMI") == 0 && strcmp(trig, "O23") == 0) ||
	    (strcmp(type, "ADT") == 0 && strcmp(trig, "A08") == 0)) {
		if (snd == NULL || snd->source == NULL) {
			outcome = "inbox";	/* unmapped: kept, nothing made */
		} else {
			r = hl7_lookup(m, snd->accession, acc, sizeof(acc));
			if (r != HL7_FOUND)
				acc[0] = '\0';
			if (hl7_lookup(m, snd->mrn, mrn, sizeof(mrn)) !=
			    HL7_FOUND)
				mrn[0] = '\0';
			else {
				/* an ID merged away (ADT^A40) names the
				 * surviving patient now */
				struct store_key xk;

				hl7in_xw_key(&xk, snd->source, mrn);
				if (xw_may(h, snd->source, mrn) &&
				    store_get(hst(h), STORE_CF_HL7, xk.b,
				    xk.len, &v, &vn) == 1) {
					json_t *x = json_loadb(v, vn, 0, NULL);
					const char *to = json_string_value(
					    json_object_get(x, "new"));

					if (to != NULL && strlen(to) <
					    sizeof(mrn)) {
						ib.merged_id = 1;
						snprintf(mrn, sizeof(mrn), "%s", to);
					}
					json_decref(x);
					free(v);
				}
			}
			if (hl7_lookup(m, snd->study_uid, uid, sizeof(uid)) !=
			    HL7_FOUND)
				uid[0] = '\0';
			if (uid[0] != '\0' && !uid_ok(uid)) {
				char t[200], alt[96];
				const char *at = found_alt(m, snd->study_uid,
				    alt, sizeof(alt));

				snprintf(t, sizeof(t), "the study UID at %s is "
				    "not a DICOM UID", at);
				set_err(&e, HL7_E_DATA_TYPE, "", 0, t);
				path_loc(at, &e);
				code = "AE";
				outcome = "error";
			} else if (acc[0] == '\0' && uid[0] == '\0') {
				char t[200];

				snprintf(t, sizeof(t), "neither an accession "
				    "number (%s) nor a study UID (%s) is in the "
				    "message", snd->accession, snd->study_uid);
				set_err(&e, HL7_E_REQUIRED_MISSING, "", 0, t);
				path_loc(snd->accession, &e);
				code = "AE";
				outcome = "error";
			} else {
				/* an order: the patient's priors come along
				 * (pre-fetch: every other study of theirs at
				 * the source) */
				struct api_order o = { snd->source,
				    snd->target ? snd->target : "", acc, uid,
				    mrn, ctl, (int)snd->priority, mrn[0] !=
				    '\0' && strcmp(type, "ADT") != 0,
				    wall_ms() };

				/* the batch that brings the patient's priors
				 * is a pre-fetch: at the sender's priority
				 * it waited behind the whole backlog */
				if (o.include_priors && snd->prefetch_priority >
				    snd->priority)
					o.priority = (int)snd->prefetch_priority;

				c->batch = 1;
				c->nkick = 1;	/* kick[0]: the new batch */
				if (o.include_priors) {
					/* first: the patient's batches that
					 * are there (made before this one, or
					 * the patient index would name it and
					 * every order would cost a scan) */
					struct promote pr = { c, ctl,
					    json_array(), wall_ms() };

					api_batches_of_patient(api_batches(
					    daemon_api(h->d)), hst(h), b,
					    snd->source, mrn, 1, promote_one,
					    &pr, &c->held);
					if (json_array_size(pr.ids) > 0)
						ib.promoted = json_incref(
						    pr.ids);
					json_decref(pr.ids);
				}
				snprintf(chan, sizeof(chan), "hl7:%s",
				    snd->name);
				bid = api_batches_put_order(api_batches(
				    daemon_api(h->d)), b, &o, chan, chan);
				snprintf(c->bsrc, sizeof(c->bsrc), "%s",
				    snd->source);
				snprintf(c->btgt, sizeof(c->btgt), "%s",
				    o.target);
				c->bprio = o.priority;
				c->bprefetch = o.prefetch_at_ms;
				snprintf(c->bby, sizeof(c->bby), "%s", chan);
				c->kick[0] = bid;
				outcome = "batch";
				/* (the inbox record names bid) */
			}
		}
	} else if (c->merge && (snd == NULL || snd->source == NULL)) {
		/* an MRN is its source's: a sender mapped to none merges
		 * nothing (kept in the inbox, as its orders are) */
		outcome = "inbox";
	} else if (c->merge) {
		char old[VAL_MAX] = "", to[VAL_MAX] = "";
		struct store_key xk;

		/* the surviving ID where the sender's orders carry theirs */
		if (hl7_lookup(m, snd->mrn, to, sizeof(to)) != HL7_FOUND ||
		    hl7_lookup(m, "MRG-1.1", old, sizeof(old)) != HL7_FOUND) {
			set_err(&e, HL7_E_REQUIRED_MISSING, to[0] ? "MRG" :
			    "PID", to[0] ? 1 : 3, "a merge needs the surviving "
			    "ID in PID-3 and the merged one in MRG-1");
			code = "AE";
			outcome = "error";
		} else {
			hl7in_xw_key(&xk, snd->source, to);
			r = store_get(hst(h), STORE_CF_HL7, xk.b, xk.len, &v,
			    &vn);
			if (r == 1) {
				json_t *x = json_loadb(v, vn, 0, NULL);
				int inverted = x != NULL && strcmp(
				    json_string_value(json_object_get(x,
				    "new")) ? json_string_value(
				    json_object_get(x, "new")) : "", old) == 0;

				free(v);
				json_decref(x);
				if (inverted) {
					set_err(&e, HL7_E_TABLE_VALUE, "MRG", 1,
					    "inverted merge: the surviving ID "
					    "was itself merged into the one "
					    "given as merged (PID-3 and MRG-1 "
					    "swapped?); not applied");
					code = "AE";
					outcome = "merge-inverted";
				}
			}
			if (strcmp(code, "AA") == 0) {
				hl7in_xw_key(&xk, snd->source, old);
				r = store_get(hst(h), STORE_CF_HL7, xk.b, xk.len,
				    &v, &vn);
				if (r == 1) {
					json_t *x = json_loadb(v, vn, 0, NULL);
					const char *was = json_string_value(
					    json_object_get(x, "new"));

					outcome = was && strcmp(was, to) == 0 ?
					    "merge-duplicate" :
					    "merge-conflict";
					if (strcmp(outcome, "merge-conflict") ==
					    0) {
						set_err(&e, HL7_E_TABLE_VALUE,
						    "MRG", 1, "this ID was "
						    "already merged into "
						    "another; not applied");
						code = "AE";
					}
					free(v);
					json_decref(x);
				} else {
					struct merge mg = { old, to,
					    json_array(), json_array() };
					json_t *xr = json_pack("{s:s, s:s, "
					    "s:I}", "new", to, "control_id",
					    ctl, "time",
					    (json_int_t)time(NULL));
					char p1[65], p2[65];

					put_json(b, STORE_CF_HL7, &xk, xr);
					json_decref(xr);
					xw_add(h, snd->source, old);
					api_batches_of_patient(api_batches(
					    daemon_api(h->d)), hst(h), b,
					    snd->source, old, 1, merge_rewrite,
					    &mg, &c->held);
					api_batches_of_patient(api_batches(
					    daemon_api(h->d)), hst(h), b,
					    snd->source, old, 0, merge_started,
					    &mg, &c->held);
					audit_phi(au, old, p1);
					audit_phi(au, to, p2);
					ib.merge = json_pack("{s:s, s:s, s:o, "
					    "s:o}", "from_phi", p1, "to_phi",
					    p2, "rewritten", mg.rewritten,
					    "already_started", mg.started);
					if (json_array_size(mg.started) > 0)
						log_warn("hl7-merge-late",
						    "control=%s batches=%zu "
						    "action=%s", log_q(ctl),
						    json_array_size(mg.started),
						    "already under way or "
						    "done: see the inbox "
						    "record's merge list");
					outcome = "merge";
				}
			}
		}
	} else {
		int known = strcmp(type, "ORM") == 0 ||
		    strcmp(type, "OMI") == 0 || strcmp(type, "ADT") == 0;
		char t[160];

		snprintf(t, sizeof(t), "%s^%s is not a message vnamig takes "
		    "(ORM^O01, OMI^O23, ADT^A08, ADT^A40)", type, trig);
		set_err(&e, known ? HL7_E_UNSUPPORTED_EVENT :
		    HL7_E_UNSUPPORTED_TYPE, "MSH", 9, t);
		code = "AR";
		outcome = "unsupported";
	}
	make_ack(c, m, code, strcmp(code, "AA") ? &e : NULL, seq);
	c->keep = strcmp(code, "AR") != 0;
	ib.seq = seq;
	ib.type = c->type;
	ib.app = app;
	ib.fac = fac;
	ib.ctl = ctl;
	ib.sender = snd ? snd->name : NULL;
	ib.bid = bid;
	ib.code = code;
	ib.outcome = outcome;
	ib.error = strcmp(code, "AA") != 0 ? e.text : NULL;
	inbox_put(h, b, &ib);
	json_decref(ib.promoted);
	json_decref(ib.merge);
	if (c->keep) {
		struct store_key hk;

		store_put(b, STORE_CF_HL7, c->key.b, c->key.len, c->ack,
		    c->acklen);
		dedup_key(&hk, "ackh", app, fac, ctl);
		store_put(b, STORE_CF_HL7, hk.b, hk.len, c->body, 32);
	}
	if (mrn[0] != '\0')
		audit_phi(au, mrn, phi);
	ev = json_pack("{s:s, s:{s:s, s:s}, s:{s:I, s:s, s:s, s:s}, s:s}",
	    "event", "hl7.message", "actor", "hl7", snd ? snd->name : "-",
	    "addr", peer, "object", "inbox_seq", (json_int_t)seq, "type",
	    c->type, "control_id", ctl, "outcome", outcome, "outcome", code);
	if (strcmp(code, "AA") != 0)
		json_object_set_new(ev, "reason", json_string(e.text));
	audit_append(au, b, ev);
	json_decref(ev);
	if (c->batch) {
		ev = json_pack("{s:s, s:{s:s, s:s}, s:{s:I, s:s, s:s, s:s, "
		    "s:s, s:I, s:I}, s:s}", "event", "batch.created", "actor",
		    "hl7", snd->name, "addr", peer, "object", "batch_id",
		    (json_int_t)bid, "channel", chan, "external_id", ctl,
		    "source", snd->source, "target", snd->target, "studies",
		    (json_int_t)(uid[0] != '\0'), "accessions",
		    (json_int_t)(acc[0] != '\0'), "outcome", "ok");
		if (phi[0] != '\0')
			json_object_set_new(json_object_get(ev, "object"),
			    "patient_phi", json_string(phi));
		audit_append(au, b, ev);
		c->notes = notify_emit(daemon_notify(h->d), b, ev);
		json_decref(ev);
	}
	/* the inbox and the audit log keep every message: a line each at
	 * info would be thousands a second */
	log_debug("hl7-message", "peer=%s sender=%s type=%s control=%s ack=%s "
	    "outcome=%s batch=%llu", peer, log_q(c->sender[0] ? c->sender :
	    "-"), c->type, log_q(ctl), code, outcome,
	    (unsigned long long)bid);
	hl7_free(m);
	c->next = h->pending[c->bucket];
	c->prev = NULL;
	if (c->next != NULL)
		c->next->prev = c;
	h->pending[c->bucket] = c;
	end_unit(h, b, c);
	return c;
}

/* is_merge: the message an ADT^A40 (its MSH alone read). */
static int
is_merge(const char *raw, size_t len, uint32_t max)
{
	struct hl7_limits lim = { .max_bytes = max };
	struct hl7_err e;
	struct hl7_msg *msh = hl7_parse_msh(raw, len, &lim, &e);
	int r;

	if (msh == NULL)
		return 0;
	r = strcmp(hl7_msg_type(msh), "ADT") == 0 &&
	    strcmp(hl7_trigger(msh), "A40") == 0;
	hl7_free(msh);
	return r;
}

/* hold: c (its message copied) waits in h->hq for its turn: when what
 * it must see, or must not race, is durable. Returns c. */
static struct hl7in_call *
hold(struct hl7in *h, struct hl7in_call *c, const char *raw, size_t len,
    const char *peer, const char *via)
{
	if ((c->hraw = malloc(len ? len : 1)) == NULL ||
	    (c->hpeer = strdup(peer)) == NULL ||
	    (c->hvia = strdup(via)) == NULL)
		abort();
	if (len > 0)
		memcpy(c->hraw, raw, len);
	c->hlen = len;
	*h->hq_tail = c;
	h->hq_tail = &c->hnext;
	log_debug("hl7-held", "peer=%s merge=%d in_flight=%u merges=%u",
	    peer, c->merge, h->inflight, h->merges);
	return c;
}

/* hold_drain: the held messages whose turn it is, in order. */
static void
hold_drain(struct hl7in *h)
{
	struct hl7in_call *c;

	while ((c = h->hq) != NULL) {
		char *raw = c->hraw, *peer = c->hpeer, *via = c->hvia;

		if (h->merges > 0 || (c->merge && h->inflight > 0))
			return;
		if ((h->hq = c->hnext) == NULL)
			h->hq_tail = &h->hq;
		c->hnext = NULL;
		c->hraw = c->hpeer = c->hvia = NULL;
		(void)message(h, raw, c->hlen, peer, via, c->done, c->arg, c);
		free(raw);
		free(peer);
		free(via);
	}
}

struct hl7in_call *
hl7in_message(struct hl7in *h, const char *raw, size_t len, const char *peer,
    const char *via, hl7in_done_fn *done, void *arg)
{
	struct hl7in_call *c;

	/* (a merge met with nothing held is held by message() itself,
	 * from the MSH it reads anyway) */
	if (h->hq == NULL && h->merges == 0)
		return message(h, raw, len, peer, via, done, arg, NULL);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		abort();
	c->h = h;
	c->done = done;
	c->arg = arg;
	c->merge = is_merge(raw, len,
	    (uint32_t)daemon_conf(h->d)->limits.mllp_frame);
	return hold(h, c, raw, len, peer, via);
}

/* ---------------------------------------------------------------------- */
/* Preview, list, retention. */

json_t *
hl7in_preview(struct hl7in *h, const char *raw, size_t len, char *err,
    size_t errlen)
{
	const struct conf *cf = daemon_conf(h->d);
	struct hl7_limits lim = { .max_bytes = (uint32_t)cf->limits.mllp_frame };
	const struct conf_hl7_sender *snd;
	struct hl7_err e;
	struct hl7_msg *m;
	json_t *out, *vals;
	static const char *const names[3] = { "accession", "mrn",
	    "study_uid" };

	memset(&e, 0, sizeof(e));
	if ((m = hl7_parse_msh(raw, len, &lim, &e)) == NULL) {
		snprintf(err, errlen, "%s", e.text);
		return NULL;
	}
	snd = conf_hl7_sender(cf, hl7_sending_app(m), hl7_sending_facility(m));
	hl7_free(m);
	lim.charset = snd ? snd->charset : NULL;
	if ((m = hl7_parse(raw, len, &lim, &e)) == NULL) {
		snprintf(err, errlen, "%s (segment %s #%u, field %u)", e.text,
		    e.seg[0] ? e.seg : "-", e.seq, e.field);
		return NULL;
	}
	vals = json_object();
	for (int i = 0; snd != NULL && i < 3; i++) {
		const char *path = i == 0 ? snd->accession : i == 1 ?
		    snd->mrn : snd->study_uid;
		char v[VAL_MAX];
		enum hl7_get_result r = hl7_lookup(m, path, v, sizeof(v));

		json_object_set_new(vals, names[i], json_pack("{s:s, s:o}",
		    "path", path, "value", r == HL7_FOUND ? json_string(v) :
		    json_null()));
	}
	out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}",
	    "type", hl7_msg_type(m), "trigger", hl7_trigger(m),
	    "control_id", hl7_control_id(m), "app", hl7_sending_app(m) ?
	    hl7_sending_app(m) : "", "facility", hl7_sending_facility(m) ?
	    hl7_sending_facility(m) : "",
	    "sender", snd ? json_pack("{s:s, s:o, s:o}", "name", snd->name,
	    "source", snd->source ? json_string(snd->source) : json_null(),
	    "target", snd->target ? json_string(snd->target) : json_null()) :
	    json_null(), "values", vals);
	if (hl7_charset_error(m) != NULL)
		json_object_set_new(out, "charset_error",
		    json_string(hl7_charset_error(m)));
	hl7_free(m);
	return out;
}

struct list {
	size_t		 limit;
	const char	*sender, *type, *outcome;
	json_t		*arr;
	uint64_t	 last;
	int		 more;
};

static int
match(json_t *j, const char *k, const char *want)
{
	const char *v = json_string_value(json_object_get(j, k));

	return want == NULL || (v != NULL && strcmp(v, want) == 0);
}

static int
list_one(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct list *l = arg;
	json_t *j = json_loadb(val, vlen, 0, NULL);

	if (j == NULL)
		return 0;
	if (!match(j, "sender", l->sender) || !match(j, "type", l->type) ||
	    !match(j, "ack", l->outcome)) {
		json_decref(j);
		return 0;
	}
	if (json_array_size(l->arr) == l->limit) {
		json_decref(j);
		l->more = 1;
		return 1;
	}
	l->last = store_be64_get((const uint8_t *)key + klen - 8);
	json_array_append_new(l->arr, j);
	return 0;
}

json_t *
hl7in_list(struct hl7in *h, uint64_t after, size_t limit,
    const char *sender, const char *type, const char *outcome,
    uint64_t *next)
{
	struct list l = { limit, sender, type, outcome, json_array(), 0, 0 };
	struct store_key pre, start;

	msg_key(&pre, UINT64_MAX);
	msg_key(&start, after + 1);
	if (store_scan_from(hst(h), STORE_CF_HL7, pre.b, pre.len, start.b,
	    start.len, list_one, &l) < 0) {
		json_decref(l.arr);
		return NULL;
	}
	*next = l.more ? l.last : 0;
	return l.arr;
}

struct purge {
	struct store_batch	*b;
	struct store		*st;
	int64_t			 cutoff;
	uint64_t		 over;	/* records beyond max_inbox */
	size_t			 n;
};

static int
purge_one(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct purge *p = arg;
	json_t *j = json_loadb(val, vlen, 0, NULL);
	int64_t t = j ? json_integer_value(json_object_get(j, "time")) : 0;

	json_decref(j);
	if (t >= p->cutoff && p->over == 0)
		return 1;	/* oldest first: the rest are newer */
	if (p->b == NULL)
		p->b = store_begin(p->st);
	store_del(p->b, STORE_CF_HL7, key, klen);
	if (p->over > 0)
		p->over--;
	return ++p->n >= 10000;	/* the rest next minute */
}

void
hl7in_tick(struct hl7in *h)
{
	const struct conf *cf = daemon_conf(h->d);
	struct purge p = { NULL, hst(h), 0, 0, 0 };
	struct store_key pre, from;
	uint64_t first = 0, held;

	if (store_state(p.st) != STORE_OK)
		return;
	p.cutoff = (int64_t)time(NULL) - (int64_t)(cf->hl7.retention_ms /
	    1000);
	msg_key(&pre, UINT64_MAX);
	/* Both scans start past what earlier ticks purged: RocksDB would
	 * otherwise step over every deleted record's tombstone again until
	 * compaction drops them. */
	msg_key(&from, h->purged);
	/* the oldest record's seq: how many are held */
	{
		struct list l = { 1, NULL, NULL, NULL, json_array(), 0, 0 };

		store_scan_from(p.st, STORE_CF_HL7, pre.b, pre.len, from.b,
		    from.len, list_one, &l);
		if (json_array_size(l.arr) > 0)
			first = (uint64_t)json_integer_value(json_object_get(
			    json_array_get(l.arr, 0), "seq"));
		json_decref(l.arr);
	}
	held = first ? h->next_seq - first : 0;
	p.over = held > cf->hl7.max_inbox ? held - cf->hl7.max_inbox : 0;
	if (first > h->purged)
		h->purged = first;
	msg_key(&from, h->purged);
	store_scan_from(p.st, STORE_CF_HL7, pre.b, pre.len, from.b, from.len,
	    purge_one, &p);
	if (p.b != NULL) {
		log_info("hl7-inbox-purged", "records=%zu", p.n);
		store_end(p.b, NULL, NULL);
	}
}
