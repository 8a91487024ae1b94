/*
 * mig.c — the migration engine (mig.h says what it does and what it
 * stores). Layout of this file:
 *
 *   state names, records, the store rows        (rows of studies/instances)
 *   operations on pooled associations           (struct mop)
 *   study scans: STUDY, SERIES, IMAGE C-FINDs   (query, preflight, verify)
 *   the study's steps                           (retrieve, send, finish)
 *   batches: resolving, starting, finishing
 *   the scheduler and the public functions
 *
 * One study holds one slot (migration.max_studies) from the moment a step
 * starts until the unit recording its outcome is durable; the next step
 * starts from that unit's callback. The pool keeps the per-peer and
 * global association limits, so a study waiting for an association holds
 * its slot but costs nothing else.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "conf/conf.h"
#include "dimse/dimse_cmd.h"
#include "dimse/dimse_ident.h"
#include "dimse/ds_charset.h"
#include "src/api/api.h"
#include "src/daemon.h"
#include "src/hl7in.h"
#include "src/mig/mig.h"
#include "src/mig/mig_export.h"
#include "src/net/dicom_pool.h"
#include "src/net/dicom_commit.h"
#include "src/net/dicom_qr.h"
#include "src/net/net.h"
#include "src/net/store_loop.h"
#include "src/net/store_sink.h"
#include "src/notify.h"
#include "src/util/hex.h"
#include "src/util/jw.h"
#include "src/util/log.h"
#include "src/util/metrics.h"
#include "store/audit.h"
#include "store/spool.h"
#include "store/store.h"
#include "store/store_key.h"

#define TAG_SOP_CLASS	DS_TAG(0x0008, 0x0016)
#define TAG_SOP_INST	DS_TAG(0x0008, 0x0018)
#define TAG_ACCESSION	DS_TAG(0x0008, 0x0050)
#define TAG_PATIENT_ID	DS_TAG(0x0010, 0x0020)
#define TAG_STUDY_UID	DS_TAG(0x0020, 0x000d)
#define TAG_SERIES_UID	DS_TAG(0x0020, 0x000e)
#define TAG_NSTUDY_INST	DS_TAG(0x0020, 0x1208)
#define TAG_STUDY_DATE	DS_TAG(0x0008, 0x0020)
#define TAG_MODALITIES	DS_TAG(0x0008, 0x0061)
#define TAG_MODALITY	DS_TAG(0x0008, 0x0060)
#define TAG_CHARSET	DS_TAG(0x0008, 0x0005)

/* copy_cut: s into out (CAP bytes), cut where a UTF-8 character starts */
static void
copy_cut(char *out, size_t cap, const char *s)
{
	size_t n = jw_utf8_cut(s, cap - 1);

	memcpy(out, s, n);
	out[n] = '\0';
}

/* ident_cs: a C-FIND answer's character set, by its (0008,0005) (the
 * default repertoire without one), for ident_text; ds_cs_free it. */
static struct ds_charset *
ident_cs(const struct dimse_ident *id)
{
	const char *v = dimse_ident_get(id, TAG_CHARSET);

	return ds_cs_new(v != NULL ? v : "", v != NULL ? strlen(v) : 0);
}

/*
 * ident_text: the text of TAG in a C-FIND answer as UTF-8, decoded by CS
 * (ident_cs; a byte that decodes to nothing becomes U+FFFD), into out (CAP
 * >= 3 * 64 + 1; a longer one is cut after its last whole character); NULL
 * when absent. Raw, an ISO_IR 100 AccessionNumber was not UTF-8: the
 * record it went into could not be built, and the study was dropped.
 */
static const char *
ident_text(struct ds_charset *cs, const struct dimse_ident *id, uint32_t tag,
    enum ds_vr vr, char *out, size_t cap)
{
	const char *v = dimse_ident_get(id, tag);
	size_t n;

	if (v == NULL)
		return NULL;
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\0'))
		n--;
	(void)ds_cs_decode(cs, vr, (const uint8_t *)v, n, out, cap, NULL);
	return out;
}

#define TS_ILE	"1.2.840.10008.1.2"
#define TS_ELE	"1.2.840.10008.1.2.1"

#define TICK_MS		250
#define QUIET_MS	5000	/* a quiet engine's pass at least this often */
#define BHASH		4096	/* batch id hash buckets at first */
#define FRESH_MAX	256	/* batches kicked before a targeted pass */
#define WINDOW_MAX	64
#define UIDSZ		(SPOOL_UID_MAX + 1)

/* ---------------------------------------------------------------------- */
/* States. */

enum sst { S_QUEUED, S_QUERYING, S_PREFLIGHT, S_RETRIEVING, S_SENDING,
	S_VERIFYING, S_DONE, S_QUARANTINED, S_FAILED, S_CANCELLED, S__N };
static const char *const sst_names[S__N] = { "queued", "querying",
	"preflight", "retrieving", "sending", "verifying", "done",
	"quarantined", "failed", "cancelled" };

enum ist { I_EXPECTED, I_PRESENT, I_RECEIVED, I_SENT, I_VERIFIED,
	I_QUARANTINED, I_FAILED, I__N };
static const char *const ist_names[I__N] = { "expected", "present",
	"received", "sent", "verified", "quarantined", "failed" };

static int
name_index(const char *const *names, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (s != NULL && strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

static int
sst_final(int s)
{
	return s >= S_DONE;
}

/* An instance that ended: nothing more happens to it in this batch. */
static int
ist_final(int s)
{
	return s == I_PRESENT || s == I_VERIFIED || s == I_QUARANTINED ||
	    s == I_FAILED;
}

struct minst {
	char		 sop[UIDSZ], cls[UIDSZ], series[UIDSZ], ts[UIDSZ];
	int		 st;
	int		 has_sha;
	uint8_t		 sha[32];	/* the source hash (spool) */
	int		 status;	/* last DIMSE status, -1: none */
	unsigned	 attempts;	/* sends that could be retried */
	char		 reason[32];
	char		 detail[320];
	char		 level[8];	/* "count", "status" */
	uint64_t	 qid;		/* quarantine item */
	int		 has_tsha;
	uint8_t		 tsha[32];	/* the target's copy (read-back) */
	/* transformed (the study's xw): what was sent instead */
	int		 has_ssha, has_scanon;
	uint8_t		 ssha[32];	/* SHA-256 of the edited dataset */
	uint8_t		 scanon[32];	/* its canonical digest */
	int		 xready;	/* the edited copy is on disk now */
	int		 again;		/* pushed again with other bytes: sent
					 * even if the target has it */
	int		 eskip;		/* not for the early association (no
					 * context for it there) */
	int		 rb;		/* to be read back now */
	int		 rbgot;		/* read-back: its copy is durable */
	int		 rbask;		/* read-back: 0 not asked yet, 1 asked
					 * with others, 2 to be asked alone, 3
					 * asked alone */
	char		 rbwhy[96];	/* its retrieve's status, if not ok */
	int		 qpend, qbytes;	/* quarantine_write is due */
	int		 committed;	/* the target's commitment report */
	unsigned	 npre, cappre;	/* its spool records before that */
	uint64_t	(*pre)[2];	/* (seg, off) each; freed with in[] */
	int		 dirty;		/* to be written */
	int		 ended;		/* its audit leaf is due */
	/* released (POST /api/quarantine/{id}/release): an operator chose
	 * to send it as it is, untransformed; by: the API key */
	char		 rel_by[65];
	uint64_t	 rel_item;
	/* the source's copy take_received took (seg, off), which send_one
	 * looks up before it asks for the newest (src_at) */
	int		 has_loc;
	uint64_t	 loc[2];
	/* in flight (sending) */
	int		 fd;
	uint16_t	 msgid;
	uint64_t	 bytes;
};

struct mig;
struct mbatch;
struct mop;

/* One operation's association and what its owner hears. */
struct mop {
	struct mig		*m;
	void			*owner;
	struct dicom_lease	*l;
	struct dicom_conn	*dc;
	struct flow		*fl;		/* the peer's (its breaker) */
	int			 up;		/* had its association */
	struct dicom_qr		*qr;
	uint16_t		 msgid;
	void	(*ready)(struct mop *);
	void	(*failed)(struct mop *, const char *why);
	void	(*match)(struct mop *, const struct dimse_ident *);
	void	(*done)(struct mop *, const struct dicom_qr_result *);
	void	(*store_rsp)(struct mop *, const struct dimse_cmd *);
	struct dicom_commit *cm;	/* a storage commitment under way */
	int			 early;	/* a send while retrieving: yields */
	int			 waits;	/* counted in fl->lwait */
	/* held: a C-MOVE/C-GET waiting for the peer's other new
	 * associations to answer (hold_back); go starts it */
	int			 held;
	uint64_t		 held_at;	/* ms: since */
	void			(*go)(struct mop *);
	struct mop		*hnext;
};

/* A scan of one study at one peer: STUDY level (the source's count),
 * then IMAGE level for the whole study at once, or SERIES level and IMAGE
 * level per series (peers[].image_query). */
struct found {
	char	 sop[UIDSZ], cls[UIDSZ], series[UIDSZ];
};

struct scan {
	int		 want_count;	/* ask the STUDY level first */
	int		 phase;		/* 0 study, 1 series, 2 images of a
					 * series, 3 images of the study */
	enum conf_iquery mode;		/* the peer's image_query */
	struct flow	*fl;		/* the peer's: what was learned */
	int		 flat_bad;	/* 3: an answer without its series */
	size_t		 flat_seen;	/* 3: answers, with a series or not */
	int		 checking;	/* 1-2 after 3: asked again per
					 * series, flat_nf found the first
					 * time */
	size_t		 flat_nf;
	char		(*series)[UIDSZ];
	size_t		 nseries, capseries, iseries;
	struct found	*f;
	size_t		 nf, capf;
	long		 count;		/* NumberOfStudyRelatedInstances */
	void		(*then)(struct mig *, void *, int ok, const char *why);
};

/* Read-back: at most this many SOP Instance UIDs in one retrieve (a UID
 * list, PS3.4 C.4.2.2.1; its value at most DIMSE_IDENT_VALUE_MAX). */
#define RB_GROUP	16

struct mstudy {
	struct mbatch	*b;
	char		 uid[UIDSZ];
	char		 acc[65];
	char		 modalities[33];	/* ModalitiesInStudy, "CT\\SR" */
	char		 year[5];	/* of StudyDate, "" unknown */
	char		 date[9];	/* StudyDate YYYYMMDD, "" unknown */
	char		 pid[65];	/* PatientID at the source */
	int		 push;		/* pushed to us: no query, no retrieve
					 * unless something is missing */
	uint64_t	 push_at;	/* ms: its last instance came */
	int		 push_at_unit;	/* in the push drain being built */
	/* the patient-ID crosswalk (HL7 ADT^A40), decided once, when the
	 * study first goes to sending: PatientID becomes xw ("" none) */
	int		 xw_set;
	char		 xw[65];
	char		 xwctl[64];	/* the merge's control ID */
	int		 st;
	unsigned	 attempts;	/* of the current step */
	uint64_t	 retry_at;	/* ms, net_now_ms */
	long		 source_count;	/* -1: not said */
	char		 reason[256];
	char		 created[32];
	uint64_t	 counts[I__N];	/* as last written */
	struct minst	*in;
	size_t		 nin, capin;
	int		 loaded;	/* in[] holds the stored rows */
	int		 stale;		/* a unit of it failed and its row
					 * could not be read back: read it
					 * before anything else */
	int		 active;	/* holds a slot */
	int		 writing;	/* a unit in flight */
	int		 ended;		/* the study leaf is due */
	int		 src_held;	/* counted in its source's active */
	uint64_t	 op_t0;		/* ms: the C-FIND under way began */
	uint64_t	 got_bytes;	/* received in this retrieve */
	struct event	*pace;		/* bandwidth: send again after */
	struct event	*settle_ev;	/* a settle check again after */
	unsigned	 settle;
	struct mop	 op;
	struct scan	 sc;
	/* retrieving */
	unsigned	 round;		/* kept in the study row: a restart
					 * goes on counting */
	int		 byinst;	/* this round asks for each missing
					 * instance, not for the study */
	size_t		 imiss;
	size_t		 rleft;		/* instances this round may still ask */
	size_t		 rnext;		/* where the next round starts */
	int		 last_status;
	char		 last_why[200];
	/* sending */
	size_t		 next;
	unsigned	 nout;
	size_t		 out[WINDOW_MAX];
	char		 send_why[200];
	/* sending while retrieving (early_*): instances go to the target
	 * on eop as they become durable here; the retrieve's end waits
	 * until nothing is in flight there */
	struct mop	 eop;
	int		 early;		/* may: listed in mig.rs */
	int		 estop;		/* no new C-STORE on eop */
	int		 eyield;	/* eop goes back to the pool once
					 * nothing is in flight on it
					 * (early_yield); leased again later */
	int		 ewant;		/* took an instance with no eop and no
					 * room for one (early_pass) */
	int		 esettle;	/* the retrieve ended: settle after */
	unsigned	 esent;
	int		 eretry;	/* eop failed: the send proper backs
					 * off first */
	struct minst	**esorted;	/* in[] by SOP UID: early_spooled's
					 * lookup */
	size_t		 rbg[RB_GROUP];	/* read-back: the instances asked for */
	unsigned	 nrbg;		/* by the retrieve in progress */
	struct minst	**wsorted;	/* the same while in m->ws */
	size_t		 wleft;		/* of those, still to come */
	int		 wkind;		/* WS_RETRIEVE or WS_READBACK */
	uint64_t	 settle_t0;	/* its check began waiting (ws) */
	size_t		 enext;		/* early_fill looks from here: no
					 * instance before it may be sent,
					 * until take_received lowers it */
	uint64_t	 ebytes;	/* received, taken by early_spooled */
};

struct mbatch {
	struct mbatch	*next, *prev;	/* the scheduling order */
	struct mbatch	*hnext;		/* mig.bhash chain */
	uint64_t	 id;
	char		 state[16];
	int		 prio;
	char		 source[CONF_NAME_MAX + 1];
	char		 target[CONF_NAME_MAX + 1];
	char		 by[96];	/* created_by: the API key, HL7 sender
					 * ("hl7:NAME") or "push" it is for */
	int		 force;
	int		 resolved;
	struct mstudy	**st;
	size_t		 nst, capst;
	/* resolving */
	int		 resolving, rwriting;
	unsigned	 rattempts;
	uint64_t	 retry_at;
	struct mop	 op;
	json_t		*todo;		/* [{"accession_number"|"patient_id"}] */
	size_t		 itodo;
	json_t		*unresolved;
	json_t		*found;		/* [{"uid", "acc"}] */
	int		 rstatus_ok;
	int		 rslot;		/* resolved: holds a slot until its
					 * record is durable */
	int		 ralias;	/* a merged-from ID found studies */
	char		 rwhy[200];
	int		 writing;	/* the record is being written */
	int64_t		 prefetch_ms;	/* wall ms of the order that asked */
	int		 prefetch_seen;	/* its first retrieval was timed */
	uint64_t	 started_ms;
	uint64_t	 bytes;		/* sent */
	/* a push batch (peers[].push_to): its source and local day; it
	 * takes that source's pushes until the day is over */
	char		 push_src[CONF_NAME_MAX + 1];
	char		 push_day[16];
	int		 newest;	/* its studies newest first */
	uint64_t	 plan;		/* its plan (0: none) */
	int		 rtrunc;	/* the query matched too many */
};

/*
 * What the engine keeps per peer for pacing: a token bucket for
 * peers[].bandwidth (bytes/s; a send or retrieve may start while the
 * bucket is not in debt, and its bytes are charged when known, so the
 * average holds and one large instance is never split), and for sources
 * the AIMD limit on studies querying or retrieving there at once: halved
 * when the source answers 0xA7xx or its C-FIND responses take over four
 * times their usual time (and over 250 ms), grown by one per limit's
 * worth of successes.
 */
struct flow {
	char		 peer[CONF_NAME_MAX + 1];
	double		 tokens;	/* bytes; negative: in debt */
	uint64_t	 at_ms;		/* last refill */
	double		 limit;		/* studies at the source at once */
	double		 base_ms;	/* usual C-FIND response time (EWMA) */
	unsigned	 active;	/* studies at the source now */
	unsigned	 lwait;		/* leases of ops other than early
					 * sends waiting for an association
					 * to it (early_yield) */
	uint64_t	 backoffs;	/* times the limit was cut */
	uint64_t	 studies;	/* ended here since this start */
	uint64_t	 bytes;		/* retrieved from / sent to it */
	uint64_t	 first_ms;	/* the first of them began */
	int		 flat;		/* image_query auto: 1 it listed a
					 * whole study at once, -1 it will not
					 * (per series), 0 not known yet */
	/* the circuit breaker (migration.breaker_*) */
	unsigned	 fails;		/* associations failed in a row */
	unsigned	 trips;		/* times opened since it closed */
	int		 open;
	uint64_t	 open_until;	/* ms: then half-open */
	uint64_t	 probe_until;	/* half-open: a study is trying */
	char		 last[200];	/* the last failure */
	struct mop	*held;		/* ops hold_back holds back */
	struct flow	*next;
};

struct mig {
	struct daemon		*d;
	/* a batch ended: an audit checkpoint is signed (DESIGN: on a timer,
	 * at batch end, at shutdown), at most one a second */
	int			 ckpt_due;
	uint64_t		 ckpt_at;
	struct mstudy		**rs;	/* retrieving, sending early */
	size_t			 nrs, caprs;
	struct mstudy		**ws;	/* a check waits for copies answered
					 * before they were durable */
	size_t			 nws, capws;
	struct flow		*flows;
	struct store_loop	*sl;
	struct store		*st;
	struct spool		*sp;
	struct dicom_pool	*pool;
	struct mig_export	*xp;	/* export targets' disk work */
	char			 xdir[4096];	/* <spool>/xform: edited copies */
	struct event		*tick, *soon;
	struct mbatch		*batches, *btail;
	struct mbatch		**bhash;	/* by id, nbhash buckets */
	size_t			 nbhash;
	size_t			 nbatch;	/* batches in it */
	uint64_t		 fresh[FRESH_MAX];	/* kicked since the last
						 * pass (see mig_kick) */
	size_t			 nfresh;
	struct event		*fresh_ev;
	struct event		*hold_ev;	/* on_hold */
	size_t			 nheld;		/* ops held, over all flows */
	time_t			 tm_at;	/* wall second of tm_min */
	unsigned		 tm_min;	/* its minute of the week */
	uint64_t		 max_id;	/* highest batch id seen */
	uint64_t		 next_qid;
	unsigned		 active;	/* slots held */
	int			 draining;
	int			 rescan;	/* mig_kick(0) */
	struct metric		*m_inst, *m_bytes, *m_studies, *m_qdepth,
				*m_active, *m_prefetch;
	json_t			*qdepth;	/* open items by reason */
	int			 node_paused;
	int			 push_writing;	/* a push queue unit in flight */
	int			 push_settled;	/* the queue a start found is
						 * drained into its batches */
	int			 timed;		/* the last pass left work
						 * that only time lets go */
	unsigned		 pass_min;	/* its window minute */
	uint64_t		 pass_at;	/* ms: when it ran */
	uint64_t		 unrouted_at;	/* next mig-push-unrouted line */
	json_t			*node_rec;	/* its pause record */
	json_t			*paused_sources;	/* name → record */
	json_t			*plans;		/* "id" → state, not active */
};

static void schedule(struct mig *m);
static void study_step(struct mstudy *s);
static void study_commit(struct mstudy *s, int st);
static void quarantine_write(struct mstudy *s, struct minst *in,
    struct store_batch *b);
static void batch_kick(struct mig *m, uint64_t id);
static void export_send(struct mstudy *s, const struct conf_peer *t);
static int xform_due(struct mstudy *s);
static void xform_start(struct mstudy *s);
static void xform_clean(struct mstudy *s);
static void xform_path(const struct mstudy *s, const struct minst *in,
    char *out, size_t cap);

static const struct conf *
cf(const struct mig *m)
{
	return daemon_conf(m->d);
}

static void
iso_now(char out[32])
{
	api_time((int64_t)time(NULL), out);
}

static void
soon(struct mig *m)
{
	if (!m->draining)
		event_active(m->soon, 0, 0);
}

static uint64_t
backoff_ms(const struct mig *m, unsigned attempt)
{
	uint64_t ms = cf(m)->migration.retry_ms;

	while (attempt-- > 1 && ms < cf(m)->migration.retry_max_ms)
		ms *= 2;
	return ms < cf(m)->migration.retry_max_ms ? ms :
	    cf(m)->migration.retry_max_ms;
}

/* ---------------------------------------------------------------------- */
/* Rows. */

static void
study_key(struct store_key *k, uint64_t batch, const char *uid)
{
	store_key_init(k);
	store_key_cstr(k, "st");
	store_key_u64(k, batch);
	if (uid != NULL)
		store_key_cstr(k, uid);
}

static void
inst_key(struct store_key *k, uint64_t batch, const char *study,
    const char *sop)
{
	store_key_init(k);
	store_key_u64(k, batch);
	store_key_cstr(k, study);
	if (sop != NULL)
		store_key_cstr(k, sop);
}

static json_t *
hex_or_null(const uint8_t *h, int have)
{
	char x[65];

	if (!have)
		return json_null();
	hex_encode(h, 32, x);
	return json_string(x);
}

/* ustr: a JSON string of V, which may hold text cut to fit or come from a
 * peer: what is not UTF-8 as '?' (jansson takes UTF-8 only). */
static json_t *
ustr(const char *v)
{
	json_t *j = json_string(v);
	char *c;

	if (j != NULL)
		return j;
	if ((c = strdup(v)) == NULL)
		abort();
	jw_utf8_scrub(c);
	j = json_string(c);
	free(c);
	return j;
}

static void
put_json(struct store_batch *b, enum store_cf cfam, const struct store_key *k,
    json_t *j)
{
	char *v = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	if (v == NULL)
		abort();
	store_put(b, cfam, k->b, k->len, v, strlen(v));
	free(v);
}

/* transforms_json: the edits made to the study's instances on the way,
 * for the report (full 0) or the audit (full 1: with keyed commitments
 * to the old and new values, never the values themselves). */
static json_t *
transforms_json(const struct mstudy *s, int full)
{
	json_t *t = json_pack("{s:s, s:s, s:s, s:s}", "op", "set", "element",
	    "(0010,0020)", "name", "PatientID", "reason", "HL7 ADT^A40 "
	    "patient merge");

	json_object_set_new(t, "merge_control_id", json_string(s->xwctl));
	if (full) {
		char a[65], b[65];

		audit_phi(store_loop_audit(s->b->op.m->sl), s->pid, a);
		audit_phi(store_loop_audit(s->b->op.m->sl), s->xw, b);
		json_object_set_new(t, "old_phi", json_string(a));
		json_object_set_new(t, "new_phi", json_string(b));
	}
	return json_pack("[o]", t);
}

static json_t *
inst_json(const struct mstudy *s, const struct minst *in)
{
	char t[32];
	json_t *j;

	iso_now(t);
	j = json_pack("{s:i, s:s, s:s, s:s, s:s, s:o, s:o, s:n, s:I, s:s}",
	    "v", 1, "sop_instance_uid", in->sop, "sop_class_uid", in->cls,
	    "series_uid", in->series, "state", ist_names[in->st],
	    "source_sha256", hex_or_null(in->sha, in->has_sha),
	    "sent_sha256", in->has_ssha ? hex_or_null(in->ssha, 1) :
	    hex_or_null(in->sha, in->has_sha && (in->st == I_SENT ||
	    in->st == I_VERIFIED || (in->st == I_QUARANTINED && in->status >=
	    0))),
	    "target_sha256", "attempts", (json_int_t)in->attempts, "time", t);
	if (in->has_ssha) {
		json_object_set_new(j, "transforms", transforms_json(s, 0));
		if (in->has_scanon)
			json_object_set_new(j, "sent_canonical",
			    hex_or_null(in->scanon, 1));
	}
	json_object_set_new(j, "target_sha256", hex_or_null(in->tsha,
	    in->has_tsha));
	json_object_set_new(j, "level", in->level[0] ? json_string(in->level) :
	    json_null());
	json_object_set_new(j, "status", in->status >= 0 ?
	    json_integer(in->status) : json_null());
	if (in->ts[0])
		json_object_set_new(j, "transfer_syntax", json_string(in->ts));
	if (in->committed)
		json_object_set_new(j, "committed", json_true());
	if (in->again)
		json_object_set_new(j, "pushed_again", json_true());
	if (in->reason[0])
		json_object_set_new(j, "reason", json_string(in->reason));
	if (in->detail[0])
		json_object_set_new(j, "detail", ustr(in->detail));
	if (in->qid)
		json_object_set_new(j, "quarantine_id",
		    json_integer((json_int_t)in->qid));
	if (in->rel_by[0])
		json_object_set_new(j, "release", json_pack("{s:s, s:I}", "by",
		    in->rel_by, "item", (json_int_t)in->rel_item));
	return j;
}

static void
count_instances(struct mstudy *s)
{
	memset(s->counts, 0, sizeof(s->counts));
	for (size_t i = 0; i < s->nin; i++)
		s->counts[s->in[i].st]++;
}

/* study_tally: add the study's instances by state to c: from its rows
 * in memory while it is loaded, else from the counts last written. */
static void
study_tally(const struct mstudy *s, uint64_t c[I__N])
{
	if (s->loaded)
		for (size_t k = 0; k < s->nin; k++)
			c[s->in[k].st]++;
	else
		for (int k = 0; k < I__N; k++)
			c[k] += s->counts[k];
}

static json_t *
study_json(const struct mstudy *s)
{
	char t[32];
	const uint64_t *c = s->counts;
	uint64_t n = 0;
	json_t *j;

	for (int i = 0; i < I__N; i++)
		n += c[i];
	iso_now(t);
	j = json_pack("{s:i, s:I, s:s, s:s, s:i, s:{s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I}, s:s, s:s}",
	    "v", 1, "batch", (json_int_t)s->b->id, "study_uid", s->uid,
	    "state", sst_names[s->st], "attempts", (int)s->attempts,
	    "counts", "expected", (json_int_t)n,
	    "present", (json_int_t)c[I_PRESENT],
	    "received", (json_int_t)c[I_RECEIVED],
	    "sent", (json_int_t)c[I_SENT],
	    "verified", (json_int_t)c[I_VERIFIED],
	    "quarantined", (json_int_t)c[I_QUARANTINED],
	    "failed", (json_int_t)c[I_FAILED],
	    "created", s->created, "updated", t);
	json_object_set_new(j, "source_count", s->source_count >= 0 ?
	    json_integer(s->source_count) : json_null());
	if (s->reason[0])
		json_object_set_new(j, "reason", ustr(s->reason));
	if (s->acc[0])
		json_object_set_new(j, "accession_number", json_string(s->acc));
	if (s->modalities[0])
		json_object_set_new(j, "modalities", json_string(s->modalities));
	if (s->year[0])
		json_object_set_new(j, "study_year", json_string(s->year));
	if (s->pid[0])
		json_object_set_new(j, "patient_id", json_string(s->pid));
	if (s->date[0])
		json_object_set_new(j, "study_date", json_string(s->date));
	if (s->push)
		json_object_set_new(j, "push", json_true());
	if (s->round > 0)
		json_object_set_new(j, "retrieve_round", json_integer(
		    s->round));
	if (s->xw_set)
		json_object_set_new(j, "crosswalk", s->xw[0] ? json_pack(
		    "{s:s, s:s}", "patient_id", s->xw, "merge_control_id",
		    s->xwctl) : json_null());
	return j;
}

static struct minst *
inst_add(struct mstudy *s, const char *sop, const char *cls,
    const char *series)
{
	struct minst *in;

	if (s->nin == s->capin) {
		size_t cap = s->capin ? 2 * s->capin : 16;
		struct minst *v = realloc(s->in, cap * sizeof(*v));

		if (v == NULL)
			abort();
		s->in = v;
		s->capin = cap;
	}
	in = &s->in[s->nin++];
	memset(in, 0, sizeof(*in));
	snprintf(in->sop, sizeof(in->sop), "%s", sop);
	snprintf(in->cls, sizeof(in->cls), "%s", cls ? cls : "");
	snprintf(in->series, sizeof(in->series), "%s", series ? series : "");
	in->status = -1;
	in->fd = -1;
	in->st = I_EXPECTED;
	in->dirty = 1;
	return in;
}

static int
load_inst_one(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct mstudy *s = arg;
	json_t *j = json_loadb(val, vlen, 0, NULL), *v;
	struct minst *in;
	const char *sop = json_string_value(json_object_get(j,
	    "sop_instance_uid")), *h;
	int st;

	(void)key;
	(void)klen;
	st = name_index(ist_names, I__N, json_string_value(json_object_get(j,
	    "state")));
	if (j == NULL || sop == NULL || st < 0) {
		log_err("mig-row-bad", "batch=%llu study=%s what=%s",
		    (unsigned long long)s->b->id, s->uid,
		    "an instance row does not decode; skipped");
		json_decref(j);
		return 0;
	}
	in = inst_add(s, sop, json_string_value(json_object_get(j,
	    "sop_class_uid")), json_string_value(json_object_get(j,
	    "series_uid")));
	in->dirty = 0;
	in->st = st;
	if ((h = json_string_value(json_object_get(j, "source_sha256"))) !=
	    NULL && hex_decode(h, in->sha, 32) == 0)
		in->has_sha = 1;
	if ((v = json_object_get(j, "status")) != NULL && json_is_integer(v))
		in->status = (int)json_integer_value(v);
	if ((h = json_string_value(json_object_get(j, "target_sha256"))) !=
	    NULL && hex_decode(h, in->tsha, 32) == 0)
		in->has_tsha = 1;
	if (json_object_get(j, "transforms") != NULL && (h =
	    json_string_value(json_object_get(j, "sent_sha256"))) != NULL &&
	    hex_decode(h, in->ssha, 32) == 0)
		in->has_ssha = 1;
	if ((h = json_string_value(json_object_get(j, "sent_canonical"))) !=
	    NULL && hex_decode(h, in->scanon, 32) == 0)
		in->has_scanon = 1;
	in->attempts = (unsigned)json_integer_value(json_object_get(j,
	    "attempts"));
	snprintf(in->ts, sizeof(in->ts), "%s", json_string_value(
	    json_object_get(j, "transfer_syntax")) ?: "");
	snprintf(in->reason, sizeof(in->reason), "%s", json_string_value(
	    json_object_get(j, "reason")) ?: "");
	snprintf(in->detail, sizeof(in->detail), "%s", json_string_value(
	    json_object_get(j, "detail")) ?: "");
	snprintf(in->level, sizeof(in->level), "%s", json_string_value(
	    json_object_get(j, "level")) ?: "");
	in->qid = (uint64_t)json_integer_value(json_object_get(j,
	    "quarantine_id"));
	in->committed = json_is_true(json_object_get(j, "committed"));
	in->again = json_is_true(json_object_get(j, "pushed_again"));
	if ((v = json_object_get(j, "release")) != NULL) {
		snprintf(in->rel_by, sizeof(in->rel_by), "%s",
		    json_string_value(json_object_get(v, "by")) ?: "?");
		in->rel_item = (uint64_t)json_integer_value(json_object_get(v,
		    "item"));
	}
	json_decref(j);
	return 0;
}

static void insts_reset(struct mstudy *s);

/* study_load: the study's instance rows, once, when it becomes active. */
static int
study_load(struct mstudy *s)
{
	struct store_key k;

	if (s->loaded)
		return 0;
	insts_reset(s);	/* (read again after a failed unit) */
	inst_key(&k, s->b->id, s->uid, NULL);
	if (store_scan(s->b->op.m->st, STORE_CF_INSTANCES, k.b, k.len,
	    load_inst_one, s) < 0)
		return -1;
	s->loaded = 1;
	return 0;
}

static void ws_remove(struct mig *m, struct mstudy *s);

/* study_unload: an idle study keeps its counts, not its instances. */
/* insts_reset: no instances (the array is kept); insts_free: nor it. */
static void
insts_reset(struct mstudy *s)
{
	for (size_t i = 0; i < s->nin; i++) {
		free(s->in[i].pre);
		s->in[i].pre = NULL;
	}
	s->nin = 0;
}

static void
insts_free(struct mstudy *s)
{
	insts_reset(s);
	free(s->in);
}

static void
study_unload(struct mstudy *s)
{
	ws_remove(s->b->op.m, s);	/* (it points into in[]) */
	insts_free(s);
	s->in = NULL;
	s->nin = s->capin = 0;
	s->loaded = 0;
}

/* ---------------------------------------------------------------------- */
/* Operations on pooled associations. */

static struct flow *flow_of(struct mig *m, const struct conf_peer *p);

/*
 * A peer's circuit breaker. Association attempts that fail before there
 * is an association (connection refused, A-ASSOCIATE-RJ, no answer) are
 * counted; migration.breaker_failures of them in a row open it: no study
 * starts a step there (study_may_step), so a peer that is down does not
 * spend every queued study's attempts and fail them all. After
 * breaker_open one study may try (half-open); an association closes the
 * breaker, a failure opens it again for twice as long, up to 16 times.
 */
static void
brk_fail(struct mig *m, struct flow *f, const char *why)
{
	const struct conf *c = cf(m);
	uint64_t ms;

	snprintf(f->last, sizeof(f->last), "%s", why);
	if (c->migration.breaker_failures == 0)
		return;
	f->fails++;
	if (f->open) {
		if (net_now_ms() < f->open_until)
			return;	/* an attempt begun before it opened */
		f->trips++;	/* the half-open try failed */
	} else if (f->fails < c->migration.breaker_failures)
		return;
	else
		f->trips = 1;
	f->open = 1;
	ms = c->migration.breaker_open_ms << (f->trips > 5 ? 4 : f->trips - 1);
	f->open_until = net_now_ms() + ms;
	f->probe_until = 0;
	log_warn("mig-breaker-open", "peer=%s failures=%u for_s=%.0f "
	    "last=%s", log_q(f->peer), f->fails, (double)ms / 1000,
	    log_q(why));
}

static void
brk_ok(struct flow *f)
{
	f->fails = 0;
	if (!f->open)
		return;
	f->open = 0;
	f->trips = 0;
	log_info("mig-breaker-closed", "peer=%s", log_q(f->peer));
}

/* brk_may: whether a step may start at the peer of f now. */
static int
brk_may(struct mig *m, struct flow *f)
{
	uint64_t now = net_now_ms();

	if (!f->open)
		return 1;
	if (now < f->open_until || now < f->probe_until)
		return 0;
	/* half-open: this one tries; the others wait for its outcome
	 * (or, when it tells none, for another breaker_open) */
	f->probe_until = now + cf(m)->migration.breaker_open_ms;
	log_info("mig-breaker-half-open", "peer=%s", log_q(f->peer));
	return 1;
}

static const char *
brk_state(const struct flow *f)
{
	return !f->open ? "closed" : net_now_ms() < f->open_until ? "open" :
	    "half-open";
}

json_t *
mig_breaker(struct mig *m, const struct conf_peer *p)
{
	const struct flow *f = flow_of(m, p);

	return json_pack("{s:s, s:i, s:s?}", "state", brk_state(f),
	    "failures", (int)f->fails, "last", f->last[0] ? f->last : NULL);
}

static void early_yield(struct mig *m, const struct conf_peer *t);

/* op_unwait: op no longer waits for its association (it has it, or the
 * lease ended). */
static void
op_unwait(struct mop *op)
{
	if (op->waits) {
		op->waits = 0;
		op->fl->lwait--;
	}
}

/*
 * A retrieve held back while its peer sets up another association.
 * DCMTK's dcmqrscp serves each association in a process of its own that
 * first takes its index's lock exclusively, while a C-MOVE or C-GET holds
 * that lock shared for as long as it runs, and Linux grants new shared
 * holders ahead of a waiting exclusive one. A study whose association
 * opened while other studies' retrieves ran there so waited for a gap
 * between them: its first C-FIND took 50-90 ms instead of 3-9 in half
 * the benchmark's runs (4 studies at once), and with long retrieves it
 * would wait until they had all ended. So a C-MOVE/C-GET (a retrieve or
 * a read-back) is not sent while another association to its peer is
 * being opened or has answered nothing yet, for at most
 * migration.retrieve_hold: that association's first answer (or its end)
 * lets it go. A C-FIND is never held: it takes the lock for
 * milliseconds. The association of a held op is quiet (dicom_lease_quiet):
 * nothing is asked on it, so nothing would be heard, and two retrieves
 * on new associations (every C-GET, every read-back: their contexts are
 * not a scan's) held each other until the limit; the peer set up the
 * held one's side while nothing ran, as a rule, since its retrieve waits.
 */
static void hold_soon(struct mig *m);

/* hold_back: 1 when op is held (go(op) starts it later), 0 to go on. */
static int
hold_back(struct mop *op, void (*go)(struct mop *))
{
	struct mig *m = op->m;
	uint64_t lim = cf(m)->migration.retrieve_hold_ms;

	if (lim == 0 || op->fl == NULL || op->dc == NULL || op->l == NULL ||
	    op->held || dicom_pool_unsettled(m->pool, op->fl->peer,
	    op->dc) == 0)
		return 0;
	op->held = 1;
	m->nheld++;
	op->held_at = net_now_ms();
	op->go = go;
	dicom_lease_quiet(op->l, 1);
	op->hnext = op->fl->held;
	op->fl->held = op;
	return 1;
}

/* hold_unlink: op is no longer held (started, or ended while held). */
static void
hold_unlink(struct mop *op)
{
	if (!op->held)
		return;
	for (struct mop **q = &op->fl->held; *q != NULL; q = &(*q)->hnext)
		if (*q == op) {
			*q = op->hnext;
			break;
		}
	op->held = 0;
	op->m->nheld--;
	op->hnext = NULL;
	if (op->l != NULL)
		dicom_lease_quiet(op->l, 0);
}

/* on_hold: start the held ops whose peer has settled or whose wait is
 * over; from the loop (an op's message or end may free others). */
static void
on_hold(evutil_socket_t fd, short ev, void *arg)
{
	struct mig *m = arg;
	uint64_t now = net_now_ms();
	/* (the limit in force now: a reload may have cut it) */
	uint64_t lim = cf(m)->migration.retrieve_hold_ms;

	(void)fd;
	(void)ev;
	if (m->draining)
		return;
	for (struct flow *f = m->flows; f != NULL; f = f->next) {
		struct mop *op;

again:
		for (op = f->held; op != NULL; op = op->hnext) {
			int over = now >= op->held_at + lim;

			if (!over && dicom_pool_unsettled(m->pool, f->peer,
			    op->dc) > 0)
				continue;
			if (over)
				log_info("mig-retrieve-hold", "peer=%s held_ms="
				    "%" PRIu64 " why=\"another association to "
				    "it has not answered yet; retrieving "
				    "anyway\"", log_q(f->peer), now -
				    op->held_at);
			hold_unlink(op);
			op->go(op);
			goto again;
		}
	}
}

/* hold_soon: on_hold from the loop when an op is held (every message
 * on a leased association asks: a count, not a walk of the flows) */
static void
hold_soon(struct mig *m)
{
	if (m->nheld > 0)
		event_active(m->hold_ev, EV_TIMEOUT, 0);
}

static void
op_ready(struct dicom_lease *l, struct dicom_conn *dc, void *arg)
{
	struct mop *op = arg;

	(void)l;
	op_unwait(op);
	op->dc = dc;
	op->up = 1;
	if (op->fl != NULL)
		brk_ok(op->fl);
	op->ready(op);
}

static void
op_message(struct dicom_lease *l, void *arg, enum dimse_asm_result r,
    const struct dimse_asm_event *ev)
{
	struct mop *op = arg;
	struct mig *m = op->m;

	(void)l;
	/* an answer on a new association may let a held retrieve go */
	hold_soon(m);
	if (op->qr != NULL && dicom_qr_message(op->qr, r, ev))
		return;
	if (op->cm != NULL && dicom_commit_message(op->cm, r, ev))
		return;
	if (r == DIMSE_ASM_COMMAND && !ev->has_dataset && op->store_rsp &&
	    ev->cmd->command == DIMSE_C_STORE_RSP)
		op->store_rsp(op, ev->cmd);
}

static void
op_failed(struct dicom_lease *l, void *arg, const char *why)
{
	struct mop *op = arg;

	(void)l;
	op_unwait(op);
	hold_unlink(op);
	hold_soon(op->m);
	op->l = NULL;
	op->dc = NULL;
	if (!op->up && op->fl != NULL)
		brk_fail(op->m, op->fl, why);
	if (op->qr != NULL)
		dicom_qr_ended(op->qr, why);	/* done() hears of it */
	else if (op->cm != NULL)
		dicom_commit_conn_ended(op->cm, why);	/* the same */
	else
		op->failed(op, why);
}

static const struct dicom_lease_user op_user = {
	.ready = op_ready,
	.message = op_message,
	.failed = op_failed,
};

static void
op_qr_match(void *arg, const struct dimse_ident *id, const uint8_t *raw,
    size_t n, const struct ds_ts *ts)
{
	struct mop *op = arg;

	(void)raw;
	(void)n;
	(void)ts;
	if (op->match != NULL)
		op->match(op, id);
}

static void
op_qr_done(void *arg, const struct dicom_qr_result *r)
{
	struct mop *op = arg;

	op->done(op, r);
}

static const struct dicom_qr_user op_qr_user = {
	.match = op_qr_match,
	.done = op_qr_done,
};

static int
op_lease(struct mop *op, const struct conf_peer *peer,
    const struct dicom_propose *prop, unsigned nprop, char *err, size_t cap)
{
	op->fl = flow_of(op->m, peer);
	op->up = 0;
	op->l = dicom_pool_lease(op->m->pool, peer, prop, nprop, &op_user, op,
	    err, cap);
	if (op->l == NULL)
		return -1;
	if (!op->early) {
		op->waits = 1;
		op->fl->lwait++;
		early_yield(op->m, peer);
	}
	return 0;
}

/* op_qr: start a Q/R operation on the leased association. */
static int
op_qr(struct mop *op, enum dicom_qr_kind kind, const char *cls,
    const struct dimse_ident *id, char *err, size_t cap)
{
	const struct conf *c = cf(op->m);
	struct dicom_qr_limits lim = {
		.dimse_ms = c->limits.dimse_ms,
		.stall_ms = c->limits.stall_ms,
		.total_ms = kind == DICOM_QR_FIND ? 0 : c->limits.retrieve_ms,
		.max_matches = c->limits.find_matches,
	};

	op->qr = dicom_qr_start(op->dc, kind, cls, id, kind == DICOM_QR_MOVE ?
	    c->node.ae_title : NULL, ++op->msgid, &lim, &op_qr_user, op, err,
	    cap);
	return op->qr != NULL ? 0 : -1;
}

/* op_end: the operation is over: its association goes back to the pool
 * (ok) or is dropped. */
static void
op_end(struct mop *op, int ok, const char *why)
{
	op_unwait(op);
	hold_unlink(op);
	if (op->l != NULL)
		hold_soon(op->m);
	if (op->qr != NULL)
		dicom_qr_free(op->qr);
	if (op->cm != NULL)
		dicom_commit_free(op->cm);
	if (op->l != NULL) {
		if (ok)
			dicom_lease_return(op->l);
		else
			dicom_lease_drop(op->l, why);
	}
	op->l = NULL;
	op->dc = NULL;
}

static const struct conf_peer *
peer_named(const struct mig *m, const char *name)
{
	return conf_peer_by_name(cf(m), name);
}

/* A spool copy of an instance from a given sender: the newest durable
 * record of sop whose origin AE title is ae (a record whose sender is not known
 * is nobody's: taken for the source's, a target's read-back copy would
 * be forwarded as the source's bytes). One SOP Instance may be in the
 * spool several times at once: the source's copy for one batch, a
 * target's read-back copy for another. */
static int
spool_from(struct mig *m, const char *sop, const char *ae,
    struct spool_info *out)
{
	return spool_newest(m->sp, m->st, sop, ae, NULL, out);
}

/* src_copy: the study's source's copy of sop. */
static int
src_copy(const struct mstudy *s, const char *sop, struct spool_info *out)
{
	struct mig *m = s->b->op.m;
	const struct conf_peer *p = peer_named(m, s->b->source);

	return p != NULL ? spool_from(m, sop, p->ae_title, out) : 0;
}

/* src_at: the source's copy of in: the one take_received took while
 * it is still indexed and durable (a point lookup; a release by another
 * batch's study ends it), else the newest (a scan of the instance's
 * copies, as src_copy) when it has the hash the instance recorded. Every
 * step after take_received asks this, so that what is sent, edited,
 * compared and kept in quarantine is the copy whose hash the instance
 * recorded, even when the source sent another copy of it since; none
 * (0: as released, fetched again) when no such copy is left. */
static int
src_at(const struct mstudy *s, const struct minst *in,
    struct spool_info *out)
{
	struct mig *m = s->b->op.m;
	const struct conf_peer *p = peer_named(m, s->b->source);
	int r;

	if (p == NULL)
		return 0;
	if (in->has_loc && spool_get(m->st, in->loc[0], in->loc[1],
	    out) == 1 && strcmp(out->origin_ae, p->ae_title) == 0 &&
	    strcmp(out->sop_instance, in->sop) == 0 &&
	    spool_durable(m->sp, out->seg, out->off + out->len))
		return 1;
	if ((r = spool_from(m, in->sop, p->ae_title, out)) == 1 &&
	    in->has_sha && memcmp(out->sha256, in->sha, 32) != 0)
		return 0;
	return r;
}

static struct flow *
flow_of(struct mig *m, const struct conf_peer *p)
{
	struct flow *f;

	for (f = m->flows; f != NULL; f = f->next)
		if (strcmp(f->peer, p->name) == 0)
			return f;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		abort();
	snprintf(f->peer, sizeof(f->peer), "%s", p->name);
	f->at_ms = net_now_ms();
	f->tokens = (double)p->bandwidth;	/* a second's burst */
	f->limit = p->max_associations ? p->max_associations :
	    cf(m)->migration.max_studies;
	f->next = m->flows;
	m->flows = f;
	return f;
}

/* flow_ms: how long until p's bucket is out of debt (0: now). */
static uint64_t
flow_ms(struct mig *m, const struct conf_peer *p)
{
	struct flow *f;
	uint64_t now = net_now_ms();

	if (p == NULL || p->bandwidth == 0)
		return 0;
	f = flow_of(m, p);
	f->tokens += (double)(now - f->at_ms) * (double)p->bandwidth / 1000;
	if (f->tokens > (double)p->bandwidth)
		f->tokens = (double)p->bandwidth;
	f->at_ms = now;
	return f->tokens >= 0 ? 0 : (uint64_t)(-f->tokens * 1000 /
	    (double)p->bandwidth) + 1;
}

static void
flow_charge(struct mig *m, const struct conf_peer *p, uint64_t bytes)
{
	if (p != NULL && p->bandwidth > 0) {
		flow_ms(m, p);
		flow_of(m, p)->tokens -= (double)bytes;
	}
}

/* AIMD on a source's answers: ok 0 when it pushed back (0xA7xx, a slow
 * answer), else 1; ms: a C-FIND's response time (0: not one). */
static void
flow_answer(struct mig *m, const struct conf_peer *p, int ok, double ms)
{
	struct flow *f;
	double max;

	if (p == NULL)
		return;
	f = flow_of(m, p);
	max = p->max_associations ? p->max_associations :
	    cf(m)->migration.max_studies;
	if (ms > 0) {
		/* slower than usual: back off; a busy host's jitter on
		 * quick answers is not a signal (4x, and a quarter second) */
		if (f->base_ms > 0 && ms > 4 * f->base_ms && ms > 250)
			ok = 0;
		else	/* the baseline follows the calm answers */
			f->base_ms = f->base_ms > 0 ? 0.9 * f->base_ms +
			    0.1 * ms : ms;
	}
	if (!ok) {
		f->limit = f->limit / 2 < 1 ? 1 : f->limit / 2;
		f->backoffs++;
		log_warn("mig-throttle", "peer=%s limit=%.1f why=%s",
		    log_q(p->name), f->limit, ms > 0 ? "slow answers" :
		    "out of resources (0xA7xx)");
	} else if (f->limit < max)
		f->limit = f->limit + 1 / f->limit > max ? max : f->limit +
		    1 / f->limit;
}

/* peer_open: new work may start against peer now: its window (local
 * time) is open and, for a source, it is not paused. */
/* The minute of the week the windows are read in (local time, once a
 * second, not per call). */
static unsigned
window_minute(struct mig *m)
{
	time_t now = time(NULL);
	struct tm tm;

	if (now != m->tm_at) {
		localtime_r(&now, &tm);
		m->tm_min = conf_window_minute(tm.tm_wday, tm.tm_hour,
		    tm.tm_min);
		m->tm_at = now;
	}
	return m->tm_min;
}

static int
peer_open(struct mig *m, const struct conf_peer *p, int source)
{
	if (p == NULL)
		return 1;	/* the step itself reports the missing peer */
	if (source && json_object_get(m->paused_sources, p->name) != NULL)
		return 0;
	if (!p->window.set)
		return 1;
	return conf_window_contains(&p->window.win, window_minute(m));
}

/* study_may_step: the peers the study's next step talks to accept work
 * now (a step under way always finishes). */
static int
study_may_step(struct mig *m, const struct mstudy *s)
{
	int src = s->st <= S_QUERYING || s->st == S_RETRIEVING;
	const struct conf_peer *p = peer_named(m, src ? s->b->source :
	    s->b->target);

	if (!peer_open(m, p, src))
		return 0;	/* a window or a pause: a minute's change or
				 * a resume lets it go (no timed pass) */
	m->timed = 1;		/* whatever holds it now, time may end */
	if (s->push && s->st == S_QUEUED && (!m->push_settled ||
	    (s->push_at != 0 && net_now_ms() <
	    s->push_at + cf(m)->migration.push_stable_ms)))
		return 0;	/* more of it may be on its way, or still in
				 * the queue a restart found */
	if ((s->st == S_RETRIEVING || s->st == S_VERIFYING) &&
	    net_server_intake(daemon_net(m->d)) != NULL)
		return 0;	/* nothing can be taken in now (the spool's
				 * disk, the store): a retrieve would only
				 * spend a round on refusals */
	if (flow_ms(m, p) > 0)
		return 0;
	if (p != NULL && p->export_path == NULL && !brk_may(m, flow_of(m, p)))
		return 0;
	/* the source's AIMD limit: studies querying or retrieving there */
	return !src || p == NULL || flow_of(m, p)->active <
	    (unsigned)flow_of(m, p)->limit;
}

/* ---------------------------------------------------------------------- */
/* Scans: the study at a peer, level by level. */

static void scan_next(struct mop *op);

static int
ident_set(struct dimse_ident *id, uint32_t tag, const char *v)
{
	char err[128];

	return dimse_ident_set(id, tag, DS_VR_NONE, v, err, sizeof(err));
}

/* flat_first: whether the instances are asked for with one IMAGE-level
 * C-FIND for the whole study (image_query study, or auto at a peer not
 * known to refuse it). */
static int
flat_first(const struct scan *sc)
{
	return sc->mode == CONF_IQUERY_STUDY || (sc->mode ==
	    CONF_IQUERY_AUTO && sc->fl->flat >= 0);
}

/* flat_doubt: whether a whole-study answer is asked again per series.
 * A peer that only follows the hierarchical model may answer such a
 * query with nothing or with less rather than refuse it; until one has
 * listed instances that way (auto) an empty answer, or one short of the
 * STUDY-level count, is checked. An answer without a series is never
 * used (study or auto). */
static int
flat_doubt(const struct scan *sc)
{
	if (sc->flat_bad)
		return 1;
	return sc->mode == CONF_IQUERY_AUTO && sc->fl->flat == 0 &&
	    (sc->nf == 0 || (sc->count >= 0 && sc->nf < (size_t)sc->count));
}

static void
flat_learn(struct scan *sc, int flat, const char *why)
{
	if (sc->fl->flat == flat)
		return;
	sc->fl->flat = flat;
	log_info("mig-image-query", "peer=%s model=%s why=%s",
	    log_q(sc->fl->peer), flat > 0 ? "study" : "series",
	    log_q(flat > 0 ? "it listed a study's instances with one "
	    "IMAGE-level C-FIND" : why));
}

static void
scan_match(struct mop *op, const struct dimse_ident *id)
{
	struct mstudy *s = op->owner;
	struct scan *sc = &s->sc;
	const char *v, *series;
	char t[3 * 64 + 1];

	if (sc->phase == 0) {
		if ((v = dimse_ident_get(id, TAG_NSTUDY_INST)) != NULL &&
		    v[0] != '\0')
			sc->count = strtol(v, NULL, 10);
		/* for GET /api/progress: by modality and study year (text
		 * of the answer's character set, kept as UTF-8: the study
		 * record is JSON) */
		struct ds_charset *cs = ident_cs(id);

		if ((v = ident_text(cs, id, TAG_MODALITIES, DS_VR_CS, t,
		    sizeof(t))) != NULL)
			copy_cut(s->modalities, sizeof(s->modalities), v);
		if ((v = dimse_ident_get(id, TAG_STUDY_DATE)) != NULL &&
		    strspn(v, "0123456789") >= 4 && v[0] >= '1' && v[0] <= '2')
			snprintf(s->year, sizeof(s->year), "%.4s", v);
		if (v != NULL && strlen(v) == 8 && strspn(v, "0123456789") ==
		    8)
			snprintf(s->date, sizeof(s->date), "%s", v);
		if (sc->want_count && (v = ident_text(cs, id, TAG_PATIENT_ID,
		    DS_VR_LO, t, sizeof(t))) != NULL)
			copy_cut(s->pid, sizeof(s->pid), v);
		ds_cs_free(cs);
		return;
	}
	if (sc->phase == 1) {
		v = dimse_ident_get(id, TAG_SERIES_UID);
		if (v == NULL || !spool_uid_valid(v))
			return;
		for (size_t i = 0; i < sc->nseries; i++)
			if (strcmp(sc->series[i], v) == 0)
				return;
		if (sc->nseries == sc->capseries) {
			size_t cap = sc->capseries ? 2 * sc->capseries : 8;
			char (*n)[UIDSZ] = realloc(sc->series, cap *
			    sizeof(*n));

			if (n == NULL)
				abort();
			sc->series = n;
			sc->capseries = cap;
		}
		snprintf(sc->series[sc->nseries++], UIDSZ, "%s", v);
		return;
	}
	if (sc->phase == 3) {
		/* the whole study at once: each answer names its series */
		sc->flat_seen++;
		series = dimse_ident_get(id, TAG_SERIES_UID);
		if (series == NULL || !spool_uid_valid(series)) {
			sc->flat_bad = 1;
			return;
		}
	} else
		series = sc->series[sc->iseries];
	v = dimse_ident_get(id, TAG_SOP_INST);
	if (v == NULL || !spool_uid_valid(v))
		return;
	if (sc->nf == sc->capf) {
		size_t cap = sc->capf ? 2 * sc->capf : 64;
		struct found *n = realloc(sc->f, cap * sizeof(*n));

		if (n == NULL)
			abort();
		sc->f = n;
		sc->capf = cap;
	}
	snprintf(sc->f[sc->nf].sop, UIDSZ, "%s", v);
	v = dimse_ident_get(id, TAG_SOP_CLASS);
	snprintf(sc->f[sc->nf].cls, UIDSZ, "%s", v && spool_uid_valid(v) ? v :
	    "");
	snprintf(sc->f[sc->nf].series, UIDSZ, "%s", series);
	sc->nf++;
}

static void
scan_end(struct mstudy *s, int ok, const char *why)
{
	struct scan *sc = &s->sc;

	op_end(&s->op, ok, why);
	sc->then(s->op.m, s, ok, why);
}

static void
scan_done(struct mop *op, const struct dicom_qr_result *r)
{
	struct mstudy *s = op->owner;
	struct scan *sc = &s->sc;
	char why[320];
	int final = r->final;	/* r goes with the operation */

	/* the source's answer time feeds its AIMD limit (the source scan
	 * is the one that asks for the count) */
	if (sc->want_count && r->final)
		flow_answer(op->m, peer_named(op->m, s->b->source),
		    (r->status & 0xff00) != 0xa700, (double)(net_now_ms() -
		    s->op_t0) + 0.001);
	if (!r->final || r->status != DIMSE_STATUS_SUCCESS) {
		/* a STUDY-level count is a nicety: a source that will not
		 * say is asked for the instances anyway */
		if (sc->phase == 0 && r->final) {
			dicom_qr_free(op->qr);
			sc->phase = flat_first(sc) ? 3 : 1;
			scan_next(op);
			return;
		}
		if (sc->phase == 3 && r->final && sc->mode ==
		    CONF_IQUERY_AUTO) {
			/* no whole-study IMAGE-level query here */
			snprintf(why, sizeof(why), "it answered a whole-study "
			    "IMAGE-level C-FIND 0x%04X (%s)", r->status,
			    dimse_status_name_for(DIMSE_C_FIND_RSP, r->status));
			flat_learn(sc, -1, why);
			dicom_qr_free(op->qr);
			sc->nf = 0;
			sc->phase = 1;
			scan_next(op);
			return;
		}
		if (r->final)
			snprintf(why, sizeof(why), "C-FIND %s level: 0x%04x "
			    "(%s)%s%s", sc->phase == 1 ? "SERIES" : "IMAGE",
			    r->status, dimse_status_name_for(DIMSE_C_FIND_RSP,
			    r->status),
			    r->why[0] ? ": " : "", r->why);
		else
			snprintf(why, sizeof(why), "C-FIND: %s", r->why);
		dicom_qr_free(op->qr);
		scan_end(s, final && op->l != NULL, why);
		return;
	}
	dicom_qr_free(op->qr);
	if (sc->phase == 3) {
		if (flat_doubt(sc)) {
			/* asked again the hierarchical way before it is
			 * believed (see flat_doubt) */
			sc->checking = 1;
			sc->flat_nf = sc->flat_seen;
			sc->nf = 0;
			sc->phase = 1;
			scan_next(op);
			return;
		}
		if (sc->nf > 0 && sc->mode == CONF_IQUERY_AUTO)
			flat_learn(sc, 1, NULL);
		scan_end(s, 1, NULL);
		return;
	}
	if (sc->phase == 2)
		sc->iseries++;
	else if (sc->phase == 0)
		sc->phase = flat_first(sc) ? 3 : 1;
	else
		sc->phase++;
	if (sc->phase == 2 && sc->iseries >= sc->nseries) {
		if (sc->checking && sc->mode == CONF_IQUERY_AUTO &&
		    (sc->nf > sc->flat_nf || sc->flat_bad)) {
			snprintf(why, sizeof(why), "a whole-study IMAGE-level "
			    "C-FIND listed %zu instances of study %s%s, the "
			    "series one by one %zu", sc->flat_nf, s->uid,
			    sc->flat_bad ? " (without their series)" : "",
			    sc->nf);
			flat_learn(sc, -1, why);
		}
		scan_end(s, 1, NULL);
		return;
	}
	scan_next(op);
}

static void
scan_next(struct mop *op)
{
	struct mstudy *s = op->owner;
	struct scan *sc = &s->sc;
	struct dimse_ident *id = malloc(sizeof(*id));
	char err[256];

	if (id == NULL)
		abort();
	dimse_ident_init(id);
	if (sc->phase == 0) {
		ident_set(id, DIMSE_TAG_QR_LEVEL, "STUDY");
		ident_set(id, TAG_STUDY_UID, s->uid);
		ident_set(id, TAG_NSTUDY_INST, NULL);
		ident_set(id, TAG_STUDY_DATE, NULL);
		ident_set(id, TAG_MODALITIES, NULL);
		ident_set(id, TAG_PATIENT_ID, NULL);
	} else if (sc->phase == 1) {
		ident_set(id, DIMSE_TAG_QR_LEVEL, "SERIES");
		ident_set(id, TAG_STUDY_UID, s->uid);
		ident_set(id, TAG_SERIES_UID, NULL);
	} else if (sc->phase == 3) {
		ident_set(id, DIMSE_TAG_QR_LEVEL, "IMAGE");
		ident_set(id, TAG_STUDY_UID, s->uid);
		ident_set(id, TAG_SERIES_UID, NULL);	/* returned */
		ident_set(id, TAG_SOP_INST, NULL);
		ident_set(id, TAG_SOP_CLASS, NULL);
	} else {
		ident_set(id, DIMSE_TAG_QR_LEVEL, "IMAGE");
		ident_set(id, TAG_STUDY_UID, s->uid);
		ident_set(id, TAG_SERIES_UID, sc->series[sc->iseries]);
		ident_set(id, TAG_SOP_INST, NULL);
		ident_set(id, TAG_SOP_CLASS, NULL);
	}
	s->op_t0 = net_now_ms();
	if (op_qr(op, DICOM_QR_FIND, DICOM_QR_STUDY_FIND, id, err,
	    sizeof(err)) < 0) {
		free(id);
		scan_end(s, 0, err);
		return;
	}
	free(id);
}

static void
scan_ready(struct mop *op)
{
	scan_next(op);
}

static void
scan_failed(struct mop *op, const char *why)
{
	struct mstudy *s = op->owner;
	char w[300];

	snprintf(w, sizeof(w), "no association: %s", why);
	scan_end(s, 0, w);
}

/* What a scan proposes: the C-FIND, and at a source we C-MOVE from the
 * C-MOVE too, so the same association serves the retrieve after the
 * query (the pool reuses one that covers it): no release and new
 * association between the two. */
static const struct dicom_propose scan_props[2] = {
	{ DICOM_QR_STUDY_FIND, { TS_ELE, TS_ILE }, 2, 0 },
	{ DICOM_QR_STUDY_MOVE, { TS_ELE, TS_ILE }, 2, 0 } };

/* scan_start: scan study s at peer; then(m, s, ok, why) with s->sc. */
static void
scan_start(struct mstudy *s, const struct conf_peer *peer, int want_count,
    void (*then)(struct mig *, void *, int, const char *))
{
	struct scan *sc = &s->sc;
	char err[256];

	free(sc->series);
	free(sc->f);
	memset(sc, 0, sizeof(*sc));
	sc->want_count = want_count;
	sc->mode = peer->image_query;
	sc->fl = flow_of(s->b->op.m, peer);
	sc->phase = want_count ? 0 : flat_first(sc) ? 3 : 1;
	sc->count = -1;
	sc->then = then;
	memset(&s->op, 0, sizeof(s->op));
	s->op.m = s->b->op.m;
	s->op.owner = s;
	s->op.ready = scan_ready;
	s->op.failed = scan_failed;
	s->op.match = scan_match;
	s->op.done = scan_done;
	if (op_lease(&s->op, peer, scan_props, want_count && peer->retrieve !=
	    CONF_RETRIEVE_GET ? 2 : 1, err, sizeof(err)) < 0)
		then(s->op.m, s, 0, err);
}

static void
scan_free(struct scan *sc)
{
	free(sc->series);
	free(sc->f);
	sc->series = NULL;
	sc->f = NULL;
	sc->nseries = sc->capseries = sc->nf = sc->capf = 0;
}

/* ---------------------------------------------------------------------- */
/* Ending a step: the unit. */

enum { O_MIGRATED, O_SKIPPED, O_QUARANTINED, O_FAILED, O__N };
static const char *const outcome_names[O__N] = { "migrated",
	"skipped_present", "quarantined", "failed" };

struct unit {
	struct mstudy	*s;
	int		 reclaim;
	uint64_t	 outcomes[O__N];	/* instances that ended */
	uint64_t	 bytes;			/* sent in the step */
	json_t		*quarantined;		/* reasons, one per item */
	int		 study_ended;		/* the study's last unit */
	int		 prev_st;		/* its state before */
};

/* study_fail_step: the step could not be done now: try again after a
 * backoff, or, after max attempts, end the study as failed. */
static void
study_fail_step(struct mstudy *s, unsigned max, const char *what,
    const char *why)
{
	struct mig *m = s->b->op.m;
	const struct conf_peer *t = peer_named(m, s->b->target);

	s->attempts++;
	log_warn("mig-step-failed", "batch=%llu study=%s step=%s attempt=%u "
	    "of=%u error=%s", (unsigned long long)s->b->id, s->uid,
	    sst_names[s->st], s->attempts, max, log_q(why));
	if (s->attempts >= max) {
		snprintf(s->reason, sizeof(s->reason), "%s: %s", what, why);
		/* whatever did not end, fails with the study; so does what
		 * waited for the target's storage commitment (proven there,
		 * but not taken responsibility for) */
		for (size_t i = 0; i < s->nin; i++)
			if (!ist_final(s->in[i].st) || (t != NULL && t->commit &&
			    !s->in[i].committed && (s->in[i].st == I_VERIFIED ||
			    s->in[i].st == I_SENT))) {
				struct minst *in = &s->in[i];
				int proven = in->st == I_VERIFIED ||
				    in->st == I_SENT;

				in->st = I_FAILED;
				snprintf(in->reason, sizeof(in->reason), "%s",
				    proven ? "target_unavailable" :
				    s->st == S_VERIFYING ? "verify_failed" :
				    s->st == S_SENDING ? "target_unavailable" :
				    "source_unavailable");
				snprintf(in->detail, sizeof(in->detail),
				    "%.199s", s->reason);
				in->dirty = in->ended = 1;
			}
		s->ended = 1;
		study_commit(s, S_FAILED);
		return;
	}
	s->retry_at = net_now_ms() + backoff_ms(m, s->attempts);
	study_commit(s, s->st);
}

/* proven_at: instance IN is at target T as far as its policy asks (its
 * status, the count, a read-back): its final leaf, and the release of
 * its spool copy, are due in the next unit; or, where the target also
 * takes storage commitment, once it has (commit_done), as the report may
 * still fail it (quarantined commit_failed) and the copy is kept till
 * then. */
static void
proven_at(const struct conf_peer *t, struct minst *in)
{
	in->dirty = 1;
	if (t == NULL || !t->commit || in->committed)
		in->ended = 1;
}

/* status_proven: at a target with no C-FIND (verify: none), the
 * C-STORE status is the proof of each instance sent (and not yet taken
 * under its storage commitment, which ended it already). */
static void
status_proven(struct mstudy *s)
{
	const struct conf_peer *t = peer_named(s->b->op.m, s->b->target);

	for (size_t i = 0; i < s->nin; i++)
		if (s->in[i].st == I_SENT && !s->in[i].committed) {
			snprintf(s->in[i].level, sizeof(s->in[i].level),
			    "status");
			proven_at(t, &s->in[i]);
		}
}

/* The actor of the engine's leaves: this node, and whom it works for
 * (the batch's created_by). */
static json_t *
engine_actor(struct mig *m, const struct mbatch *b)
{
	return json_pack("{s:s, s:s}", "engine", cf(m)->node.ae_title,
	    "for", b->by[0] ? b->by : "-");
}

static void
leaf_instance(struct mig *m, struct store_batch *b, struct mstudy *s,
    struct minst *in)
{
	const char *ev = in->st == I_PRESENT ? "instance.skipped" :
	    in->st == I_VERIFIED || in->st == I_SENT ? "instance.migrated" :
	    in->st == I_QUARANTINED ? "instance.quarantined" :
	    "instance.failed";
	json_t *j = json_pack("{s:s, s:{s:I, s:s, s:s, s:s, s:s, s:s}, "
	    "s:{s:o, s:o, s:n}, s:n, s:s}",
	    "event", ev, "object", "batch_id", (json_int_t)s->b->id,
	    "study_uid", s->uid, "sop_instance_uid", in->sop,
	    "sop_class_uid", in->cls, "source", s->b->source,
	    "target", s->b->target,
	    "hashes", "source_sha256", hex_or_null(in->sha, in->has_sha),
	    "sent_sha256", in->has_ssha ? hex_or_null(in->ssha, 1) :
	    hex_or_null(in->sha, in->has_sha && (in->st == I_VERIFIED ||
	    in->st == I_SENT)), "target_sha256",
	    "transform",
	    "outcome", in->st == I_PRESENT ? "skipped_present" :
	    in->st == I_VERIFIED || in->st == I_SENT ? "migrated" :
	    in->st == I_QUARANTINED ? "quarantined" : "failed");
	json_object_set_new(j, "actor", engine_actor(m, s->b));
	json_object_set_new(json_object_get(j, "object"), "level",
	    json_string(in->level[0] ? in->level : "none"));
	json_object_set_new(json_object_get(j, "hashes"), "target_sha256",
	    hex_or_null(in->tsha, in->has_tsha));
	if (in->reason[0])
		json_object_set_new(j, "reason", json_string(in->reason));
	if (in->status >= 0)
		json_object_set_new(json_object_get(j, "object"), "status",
		    json_integer(in->status));
	if (in->again)
		json_object_set_new(json_object_get(j, "object"),
		    "pushed_again", json_true());
	if (in->rel_by[0])	/* sent as it is, on an operator's word */
		json_object_set_new(j, "release", json_pack("{s:s, s:I}", "by",
		    in->rel_by, "item", (json_int_t)in->rel_item));
	if (in->has_ssha) {
		/* the transform digest: SHA-256 of the edits, as listed */
		json_t *t = transforms_json(s, 1);
		char *txt = json_dumps(t, JSON_SORT_KEYS | JSON_COMPACT);
		uint8_t d[32];
		unsigned dl;

		if (txt == NULL || EVP_Digest(txt, strlen(txt), d, &dl,
		    EVP_sha256(), NULL) != 1)
			abort();
		json_object_set_new(j, "transform", hex_or_null(d, 1));
		json_object_set_new(j, "transforms", t);
		free(txt);
	}
	audit_append(store_loop_audit(m->sl), b, j);
	json_decref(j);
}

struct rel {
	struct mig		*m;
	struct store_batch	*b;
	int			 skip;
	uint64_t		 skip_seg, skip_off;
	int			 n;
};

static int
release_one(void *arg, uint64_t seg, uint64_t off)
{
	struct rel *r = arg;

	if (r->skip && seg == r->skip_seg && off == r->skip_off)
		return 0;
	if (spool_release(r->m->sp, r->m->st, r->b, seg, off) == 1)
		r->n++;
	return 0;
}

/* release_all: every spool record of sop (the source's, and a read-back
 * copy), but the one at skip[0], skip[1] when skip is given, released in
 * b. How many. */
/* sop_wanted: a study of another batch still needs sop's copies (it has
 * not ended with it): they stay, and that study lets them go when it is
 * done. A study loaded now says which instances it still needs; one of
 * the same study not loaded (after a start, until its next step) that
 * has retrieved keeps them all: one that was verifying needs its
 * source's copies to compare a read-back with (another batch's end
 * released them, and its instances were quarantined verify_mismatch, the
 * target's copies good). One that has not retrieved yet does so itself:
 * the copies are not held for it (a second batch of the same studies
 * queued for later would have kept the first's in the spool). */
struct others {
	int		 done;		/* collected */
	struct mstudy	**v;
	size_t		 n;
};

static int
sop_wanted(struct mig *m, const struct mstudy *self, const char *sop,
    struct others *o)
{
	if (!o->done) {
		/* once per unit, and only when something is released */
		o->done = 1;
		for (struct mbatch *b = m->batches; b != NULL; b = b->next)
			for (size_t i = 0; i < b->nst; i++) {
				struct mstudy *x = b->st[i];

				if (x == self || sst_final(x->st) ||
				    (!x->loaded && (strcmp(x->uid,
				    self->uid) != 0 || x->st < S_RETRIEVING)))
					continue;
				if ((o->v = realloc(o->v, (o->n + 1) *
				    sizeof(*o->v))) == NULL)
					abort();
				o->v[o->n++] = x;
			}
	}
	for (size_t i = 0; i < o->n; i++) {
		if (!o->v[i]->loaded)
			return 1;	/* the same study, not read yet */
		for (size_t k = 0; k < o->v[i]->nin; k++)
			if (!ist_final(o->v[i]->in[k].st) &&
			    strcmp(o->v[i]->in[k].sop, sop) == 0)
				return 1;
	}
	return 0;
}

static int
release_all(struct mig *m, struct store_batch *b, const char *sop,
    const uint64_t *skip)
{
	struct rel r = { m, b, skip != NULL, skip ? skip[0] : 0,
	    skip ? skip[1] : 0, 0 };

	spool_each(m->st, sop, release_one, &r);
	return r.n;
}

static int study_reread(struct mstudy *s);

static void
study_committed(void *arg, int err)
{
	struct unit *u = arg;
	struct mstudy *s = u->s;
	struct mig *m = s->b->op.m;
	int prev_st;

	if (u->reclaim && !err)
		spool_reclaim(m->sp, m->st);
	if (!err) {
		const char *v[3] = { NULL, s->b->source, s->b->target };
		size_t i;
		json_t *r;

		for (int k = 0; k < O__N; k++)
			if (u->outcomes[k]) {
				v[0] = outcome_names[k];
				metric_add(m->m_inst, v, (double)u->outcomes[k]);
			}
		if (u->bytes)
			metric_add(m->m_bytes, v + 2, (double)u->bytes);
		{
			const struct conf_peer *sp = peer_named(m,
			    s->b->source), *tp = peer_named(m, s->b->target);

			if (tp != NULL)
				flow_of(m, tp)->bytes += u->bytes;
			if (u->study_ended && sp != NULL)
				flow_of(m, sp)->studies++;
			if (u->study_ended && tp != NULL)
				flow_of(m, tp)->studies++;
		}
		json_array_foreach(u->quarantined, i, r) {
			const char *reason = json_string_value(r);

			json_object_set_new(m->qdepth, reason, json_integer(
			    json_integer_value(json_object_get(m->qdepth,
			    reason)) + 1));
		}
	}
	prev_st = u->prev_st;
	json_decref(u->quarantined);
	free(u);
	s->writing = 0;
	if (err) {
		/* Nothing of it was written: the study goes on from its row
		 * and its instances' rows, as after a restart (going on from
		 * memory, a study whose instance list was lost with the unit
		 * found no instances, and ended done with none expected). */
		log_err("mig-write-failed", "batch=%llu study=%s state=%s "
		    "error=%s", (unsigned long long)s->b->id, s->uid,
		    sst_names[s->st], log_q(store_error(m->st)));
		s->loaded = 0;		/* its instances are read again */
		s->ended = 0;
		if (study_reread(s) != 0) {
			/* not the state the failed unit was to write (it may
			 * be final): the one before, until its row is read */
			s->st = prev_st;
			s->stale = 1;
			log_err("mig-study-unread", "batch=%llu study=%s "
			    "error=%s hint=%s", (unsigned long long)s->b->id,
			    s->uid, log_q(store_read_error(m->st)),
			    log_q("its row could not be read back: it is read "
			    "again before its next step"));
		} else
			log_info("mig-study-reread", "batch=%llu study=%s "
			    "state=%s", (unsigned long long)s->b->id, s->uid,
			    sst_names[s->st]);
		s->retry_at = net_now_ms() + backoff_ms(m, 1);
		s->active = 0;
		m->active--;
		soon(m);
		return;
	}
	if (sst_final(s->st) || s->retry_at > net_now_ms() || m->draining ||
	    m->node_paused || strcmp(s->b->state, "running") != 0 ||
	    !study_may_step(m, s)) {
		s->active = 0;
		m->active--;
		if (sst_final(s->st) || m->draining)
			study_unload(s);
		soon(m);
		return;
	}
	study_step(s);
}

/* copy_spent: the copy at the target is proven (as far as the target's
 * policy goes): the spool's is not needed. */
static int
copy_spent(const struct minst *in)
{
	return in->st == I_VERIFIED || (in->st == I_SENT &&
	    strcmp(in->level, "status") == 0);
}

/* study_commit: write the study in state st with its changed instances,
 * their spool releases and quarantine copies, and the audit leaves of
 * what ended, in one unit; the next step starts once it is durable. */
static void
study_commit(struct mstudy *s, int st)
{
	struct mig *m = s->b->op.m;
	struct store_batch *b = store_begin(m->st);
	struct unit *u = calloc(1, sizeof(*u));
	struct others others = { 0, NULL, 0 };
	struct store_key k;
	json_t *j;

	if (u == NULL)
		abort();
	if (s->src_held) {
		const struct conf_peer *p = peer_named(m, s->b->source);

		if (p != NULL && flow_of(m, p)->active > 0)
			flow_of(m, p)->active--;
		s->src_held = 0;
	}
	u->s = s;
	u->quarantined = json_array();
	u->prev_st = s->st;
	s->st = st;
	for (size_t i = 0; s->ended && i < s->nin; i++) {
		struct minst *in = &s->in[i];

		/* The study ends: copies of its instances that came after
		 * they ended (a study-level retrieve brings the instances
		 * the target had, or ones that ended before a retry) go
		 * too. (Those that end in this unit go below.) */
		if (!(in->dirty && in->ended) && (in->st == I_PRESENT ||
		    copy_spent(in)) && !sop_wanted(m, s, in->sop, &others) &&
		    release_all(m, b, in->sop, NULL) > 0)
			u->reclaim = 1;
	}
	for (size_t i = 0; i < s->nin; i++) {
		struct minst *in = &s->in[i];

		if (!in->dirty)
			continue;
		if (in->qpend)
			quarantine_write(s, in, b);
		if (in->ended && copy_spent(in) &&
		    !sop_wanted(m, s, in->sop, &others) &&
		    release_all(m, b, in->sop, NULL) > 0)
			u->reclaim = 1;
		inst_key(&k, s->b->id, s->uid, in->sop);
		j = inst_json(s, in);
		put_json(b, STORE_CF_INSTANCES, &k, j);
		json_decref(j);
		if (in->ended) {
			leaf_instance(m, b, s, in);
			u->outcomes[in->st == I_PRESENT ? O_SKIPPED :
			    in->st == I_QUARANTINED ? O_QUARANTINED :
			    in->st == I_FAILED ? O_FAILED : O_MIGRATED]++;
			if (in->st == I_QUARANTINED)
				json_array_append_new(u->quarantined,
				    json_string(in->reason));
		}
		if (in->st == I_SENT && in->bytes) {
			u->bytes += in->bytes;
			in->bytes = 0;
		}
		in->dirty = in->ended = 0;
	}
	free(others.v);
	count_instances(s);
	study_key(&k, s->b->id, s->uid);
	j = study_json(s);
	put_json(b, STORE_CF_STUDIES, &k, j);
	json_decref(j);
	if (s->ended) {
		json_t *ev = json_pack("{s:s, s:{s:I, s:s, s:s, s:s, s:{s:I, "
		    "s:I, s:I, s:I, s:I}}, s:s}",
		    "event", s->st == S_DONE ? "study.done" : s->st ==
		    S_QUARANTINED ? "study.quarantined" : s->st == S_FAILED ?
		    "study.failed" : "study.cancelled",
		    "object", "batch_id", (json_int_t)s->b->id,
		    "study_uid", s->uid, "source", s->b->source,
		    "target", s->b->target, "counts",
		    "expected", (json_int_t)s->nin,
		    "migrated", (json_int_t)(s->counts[I_VERIFIED] +
		    s->counts[I_SENT]),
		    "skipped_present", (json_int_t)s->counts[I_PRESENT],
		    "quarantined", (json_int_t)s->counts[I_QUARANTINED],
		    "failed", (json_int_t)s->counts[I_FAILED],
		    "outcome", sst_names[s->st]);

		u->study_ended = 1;
		json_object_set_new(ev, "actor", engine_actor(m, s->b));
		if (s->reason[0])
			json_object_set_new(ev, "reason", ustr(s->reason));
		if (s->source_count >= 0)
			json_object_set_new(json_object_get(ev, "object"),
			    "source_count", json_integer(s->source_count));
		audit_append(store_loop_audit(m->sl), b, ev);
		json_decref(ev);
		s->ended = 0;
		log_info("mig-study-end", "batch=%llu study=%s state=%s "
		    "expected=%zu migrated=%llu skipped=%llu quarantined=%llu "
		    "failed=%llu", (unsigned long long)s->b->id, s->uid,
		    sst_names[s->st], s->nin, (unsigned long long)
		    (s->counts[I_VERIFIED] + s->counts[I_SENT]),
		    (unsigned long long)s->counts[I_PRESENT],
		    (unsigned long long)s->counts[I_QUARANTINED],
		    (unsigned long long)s->counts[I_FAILED]);
	}
	s->writing = 1;
	store_end(b, study_committed, u);
}

/* quarantine: instance in ends quarantined for reason: an item row, and
 * the spooled bytes (if any) kept aside, zstd-compressed, by the unit
 * that commits the study. Quarantine is rare; spool_quarantine's disk
 * work runs here, on the loop. */
static void
quarantine(struct mstudy *s, struct minst *in, const char *reason,
    const char *detail, int with_bytes)
{
	struct mig *m = s->b->op.m;

	in->st = I_QUARANTINED;
	in->dirty = in->ended = 1;
	snprintf(in->reason, sizeof(in->reason), "%s", reason);
	snprintf(in->detail, sizeof(in->detail), "%s", detail);
	in->qid = m->next_qid++;
	in->qbytes = with_bytes;
	in->qpend = 1;
	log_warn("mig-quarantined", "batch=%llu study=%s sop=%s reason=%s "
	    "detail=%s", (unsigned long long)s->b->id, s->uid, in->sop,
	    reason, log_q(detail));
}

/* quarantine_write: the item row and the bytes' copy of a quarantined
 * instance, into the study's unit b (study_commit: a unit is only ever
 * built within one call, never across turns of the loop). */
static void
quarantine_write(struct mstudy *s, struct minst *in, struct store_batch *b)
{
	struct mig *m = s->b->op.m;
	const char *reason = in->reason, *detail = in->detail;
	struct spool_info si;
	struct store_key k;
	char err[256], file[4096] = "", t[32];
	json_t *j;

	in->qpend = 0;
	/* (texts cut to fit, some from peers: JSON takes UTF-8 only, and
	 * a record jansson refused aborted put_json) */
	jw_utf8_scrub(in->reason);
	jw_utf8_scrub(in->detail);
	if (in->qbytes && src_at(s, in, &si) == 1) {
		if (spool_quarantine(m->sp, m->st, b, si.seg, si.off, reason,
		    cf(m)->migration.quarantine_dir, err, sizeof(err)) == 0) {
			snprintf(file, sizeof(file), "%s/%s-%016" PRIx64 "-%"
			    PRIu64 ".dcm.zst", cf(m)->migration.quarantine_dir,
			    si.sop_instance, si.seg, si.off);
			/* a read-back copy beside it is not needed */
			release_all(m, b, in->sop, (const uint64_t[2]){
			    si.seg, si.off });
		}
		else
			log_err("mig-quarantine-copy", "batch=%llu sop=%s "
			    "error=%s", (unsigned long long)s->b->id, in->sop,
			    log_q(err));
	}
	iso_now(t);
	j = json_pack("{s:i, s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:o, "
	    "s:n, s:s, s:s}",
	    "v", 1, "id", (json_int_t)in->qid, "batch", (json_int_t)s->b->id,
	    "study_uid", s->uid, "sop_instance_uid", in->sop,
	    "series_uid", in->series, "sop_class_uid", in->cls,
	    "reason", reason, "detail", detail,
	    "source_sha256", hex_or_null(in->sha, in->has_sha),
	    "target_sha256", "time", t, "state", "open");
	json_object_set_new(j, "status", in->status >= 0 ?
	    json_integer(in->status) : json_null());
	json_object_set_new(j, "target_sha256", hex_or_null(in->tsha,
	    in->has_tsha));
	json_object_set_new(j, "file", file[0] ? json_string(file) :
	    json_null());
	store_key_init(&k);
	store_key_cstr(&k, "q");
	store_key_u64(&k, in->qid);
	put_json(b, STORE_CF_STUDIES, &k, j);
	json_decref(j);
}

/* study_finish: every instance ended: the study's final state. */
static void
study_finish(struct mstudy *s)
{
	int failed = 0, quar = 0;

	for (size_t i = 0; i < s->nin; i++)
		if (s->in[i].st == I_EXPECTED || s->in[i].st == I_RECEIVED) {
			/* one came meanwhile (pushed while the study waited
			 * between steps): it goes through them too, never
			 * left pending in a study that ends */
			log_info("mig-study-again", "batch=%llu study=%s "
			    "sop=%s why=%s", (unsigned long long)s->b->id,
			    s->uid, s->in[i].sop, log_q("an instance came "
			    "while the study was being verified"));
			s->attempts = 0;
			study_commit(s, s->in[i].st == I_RECEIVED ? S_SENDING :
			    S_RETRIEVING);
			return;
		}
	for (size_t i = 0; i < s->nin; i++) {
		failed |= s->in[i].st == I_FAILED;
		quar |= s->in[i].st == I_QUARANTINED;
	}
	s->ended = 1;
	s->attempts = 0;
	study_commit(s, failed ? S_FAILED : quar ? S_QUARANTINED : S_DONE);
}

/* ---------------------------------------------------------------------- */
/* Querying the source. */

static void
query_then(struct mig *m, void *arg, int ok, const char *why)
{
	struct mstudy *s = arg;
	struct scan *sc = &s->sc;

	(void)m;
	if (!ok) {
		study_fail_step(s, cf(m)->migration.retrieve_attempts,
		    "query at the source failed", why);
		scan_free(sc);
		return;
	}
	s->source_count = sc->count;
	insts_reset(s);
	for (size_t i = 0; i < sc->nf; i++) {
		int dup = 0;

		for (size_t j = 0; j < s->nin && !dup; j++)
			dup = strcmp(s->in[j].sop, sc->f[i].sop) == 0;
		if (!dup)
			inst_add(s, sc->f[i].sop, sc->f[i].cls,
			    sc->f[i].series);
	}
	scan_free(sc);
	s->loaded = 1;
	s->attempts = 0;
	if (s->nin == 0) {
		snprintf(s->reason, sizeof(s->reason), "the source has no "
		    "instances of this study (C-FIND IMAGE level found none)");
		s->ended = 1;
		study_commit(s, S_FAILED);
		return;
	}
	if (s->source_count >= 0 && (size_t)s->source_count != s->nin)
		log_warn("mig-count-mismatch", "batch=%llu study=%s "
		    "source_says=%ld found=%zu", (unsigned long long)s->b->id,
		    s->uid, s->source_count, s->nin);
	study_commit(s, S_PREFLIGHT);
}

/* ---------------------------------------------------------------------- */
/* Pre-flight at the target. */

static int
found_has(const struct scan *sc, const char *sop)
{
	for (size_t i = 0; i < sc->nf; i++)
		if (strcmp(sc->f[i].sop, sop) == 0)
			return 1;
	return 0;
}

static void
preflight_then(struct mig *m, void *arg, int ok, const char *why)
{
	struct mstudy *s = arg;

	if (!ok) {
		study_fail_step(s, cf(m)->migration.send_attempts,
		    "pre-flight query at the target failed", why);
		scan_free(&s->sc);
		return;
	}
	for (size_t i = 0; i < s->nin; i++)
		if (s->in[i].st == I_EXPECTED && !s->in[i].again &&
		    found_has(&s->sc, s->in[i].sop)) {
			s->in[i].st = I_PRESENT;
			snprintf(s->in[i].level, sizeof(s->in[i].level),
			    "count");
			s->in[i].dirty = s->in[i].ended = 1;
		}
	scan_free(&s->sc);
	s->attempts = 0;
	study_commit(s, S_RETRIEVING);
}

/* ---------------------------------------------------------------------- */
/* Retrieving. */

/* take_received: an expected instance, received when its source's copy
 * is in the spool. 1 when it is. */
static int
take_received(struct mstudy *s, struct minst *in, uint64_t *bytes,
    const struct spool_info *got)
{
	struct spool_info si;

	if (in->st != I_EXPECTED)
		return 0;
	if (got != NULL)	/* the source's copy, just made durable */
		si = *got;
	else if (src_copy(s, in->sop, &si) != 1)
		return 0;
	in->has_loc = 1;
	in->loc[0] = si.seg;
	in->loc[1] = si.off;
	*bytes += si.len - si.data_off;
	in->st = I_RECEIVED;
	memcpy(in->sha, si.sha256, 32);
	in->has_sha = 1;
	snprintf(in->ts, sizeof(in->ts), "%s", si.ts_uid);
	if (si.sop_class[0])
		snprintf(in->cls, sizeof(in->cls), "%s", si.sop_class);
	in->dirty = 1;
	return 1;
}

/* retrieve_check: the instances now in the spool. Returns how many are
 * still missing. */
static size_t
retrieve_check(struct mstudy *s)
{
	size_t missing = 0;

	for (size_t i = 0; i < s->nin; i++)
		if (s->in[i].st == I_EXPECTED && !take_received(s, &s->in[i],
		    &s->got_bytes, NULL))
			missing++;
	return missing;
}

static void retrieve_next(struct mop *op);
static void retrieve_settle(evutil_socket_t fd, short evw, void *arg);
static void early_end(struct mstudy *s, int ok, const char *why);
static int early_may(struct mstudy *s);
static void rs_add(struct mig *m, struct mstudy *s);
#define WS_RETRIEVE	0	/* the source's copies (retrieve_settle) */
#define WS_READBACK	1	/* the target's (readback_settle) */
static void ws_add(struct mig *m, struct mstudy *s, size_t missing,
    int kind);

/* settle_after: cb(s) again in MS ms. The study's one timer is made
 * anew when it last served the other check (a timer keeps the callback
 * it was made with: a read-back's wait ran the retrieve's check). */
static void
settle_after(struct mstudy *s, event_callback_fn cb, uint64_t ms)
{
	if (s->settle_ev != NULL && event_get_callback(s->settle_ev) != cb) {
		event_free(s->settle_ev);
		s->settle_ev = NULL;
	}
	if (s->settle_ev == NULL && (s->settle_ev = evtimer_new(
	    daemon_base(s->b->op.m->d), cb, s)) == NULL)
		abort();
	net_timer_arm(s->settle_ev, ms);
}

/* settle_wait: MISSING of the copies s checks for (KIND) are not in the
 * spool: when they may still be on their way there (answered early) and
 * s has not waited yet, cb(s) again once the last is durable (ws_add,
 * woken with EV_READ) or after a second, and 1. */
static int
settle_wait(struct mstudy *s, size_t missing, int kind, event_callback_fn cb)
{
	struct mig *m = s->b->op.m;

	if (missing == 0 || !cf(m)->migration.retrieve_ack_early ||
	    s->settle != 0)
		return 0;
	s->settle = 1;
	s->settle_t0 = net_now_ms();
	ws_add(m, s, missing, kind);
	settle_after(s, cb, 1000);
	return 1;
}

/* settle_done: s checks for the last time (EVW: how its check came): a
 * wait is logged as event EV, and over. */
static void
settle_done(struct mstudy *s, const char *ev, size_t missing, short evw)
{
	if (s->settle)
		log_info(ev, "batch=%llu study=%s waited_ms=%llu missing=%zu "
		    "by=%s", (unsigned long long)s->b->id, s->uid,
		    (unsigned long long)(net_now_ms() - s->settle_t0),
		    missing, evw & EV_READ ? "records" : "timeout");
	ws_remove(s->b->op.m, s);
}


static void
retrieve_end(struct mstudy *s, int ok, const char *why)
{
	/* the next round goes on after where this one stopped */
	s->rnext = !ok && s->byinst && s->imiss != (size_t)-1 ? s->imiss :
	    0;
	op_end(&s->op, ok, why ? why : "");
	if (why != NULL && why != s->last_why)
		snprintf(s->last_why, sizeof(s->last_why), "%.199s", why);
	s->got_bytes = s->ebytes;	/* what came during it */
	s->ebytes = 0;
	s->settle = 0;
	retrieve_settle(0, 0, s);
}

/* to_sending: the retrieve is over. An instance sent early and answered
 * 0xA7xx or not at all, or an early association that failed, makes the
 * send proper wait its backoff first, as after a failed send. */
static void
to_sending(struct mstudy *s)
{
	struct mig *m = s->b->op.m;

	for (size_t i = 0; i < s->nin && !s->eretry; i++)
		s->eretry = s->in[i].st == I_RECEIVED && s->in[i].attempts > 0;
	if (s->eretry) {
		s->eretry = 0;
		s->attempts = 1;
		s->retry_at = net_now_ms() + backoff_ms(m, 1);
		log_warn("mig-send-retry", "batch=%llu study=%s attempt=%u "
		    "last=%s", (unsigned long long)s->b->id, s->uid,
		    s->attempts, log_q(s->send_why));
	}
	study_commit(s, S_SENDING);
}

/* retrieve_settle: what the retrieve brought. Sub-operations answered
 * before they were durable (migration.retrieve_ack early) may still be
 * on their way to the disk when the final response comes: the check is
 * made again once they are (ws_add), or after a second, before anything
 * counts as missing. */
static void
retrieve_settle(evutil_socket_t fd, short evw, void *arg)
{
	struct mstudy *s = arg;
	struct mig *m = s->b->op.m;
	size_t missing;
	char detail[320];

	(void)fd;
	(void)evw;
	if (m->draining)
		return;
	if (s->early) {
		/* nothing new on eop; what is in flight there ends first */
		s->estop = 1;
		if (s->nout > 0) {
			s->esettle = 1;
			return;
		}
		early_end(s, 1, NULL);
	}
	missing = retrieve_check(s);
	if (settle_wait(s, missing, WS_RETRIEVE, retrieve_settle))
		return;
	settle_done(s, "mig-retrieve-settled", missing, evw);
	/* what came is charged to the source's bandwidth: the next
	 * retrieve there waits until the bucket is out of debt */
	flow_charge(m, peer_named(m, s->b->source), s->got_bytes);
	if (peer_named(m, s->b->source) != NULL)
		flow_of(m, peer_named(m, s->b->source))->bytes += s->got_bytes;
	s->round++;
	if (missing == 0) {
		s->attempts = 0;
		s->round = 0;
		to_sending(s);
		return;
	}
	if (s->round < cf(m)->migration.retrieve_attempts) {
		log_warn("mig-missing", "batch=%llu study=%s missing=%zu "
		    "round=%u of=%u last=%s", (unsigned long long)s->b->id,
		    s->uid, missing, s->round,
		    cf(m)->migration.retrieve_attempts, log_q(s->last_why));
		s->retry_at = net_now_ms() + backoff_ms(m, s->round);
		study_commit(s, S_RETRIEVING);
		return;
	}
	snprintf(detail, sizeof(detail), "not received after %u retrieve "
	    "round(s)%s%s", s->round, s->last_why[0] ? "; last: " : "",
	    s->last_why);
	for (size_t i = 0; i < s->nin; i++)
		if (s->in[i].st == I_EXPECTED) {
			if (s->last_status >= 0)
				s->in[i].status = s->last_status;
			quarantine(s, &s->in[i], "missing_at_source", detail,
			    0);
		}
	s->round = 0;
	s->attempts = 0;
	to_sending(s);
}

static enum dicom_qr_kind
retrieve_kind(const struct mig *m, const struct mstudy *s)
{
	const struct conf_peer *p = peer_named(m, s->b->source);

	return p != NULL && p->retrieve == CONF_RETRIEVE_GET ? DICOM_QR_GET :
	    DICOM_QR_MOVE;
}

static void
retrieve_done(struct mop *op, const struct dicom_qr_result *r)
{
	struct mstudy *s = op->owner;
	int final;

	if (r->final) {
		flow_answer(op->m, peer_named(op->m, s->b->source),
		    (r->status & 0xff00) != 0xa700, 0);
		s->last_status = r->status;
		if (r->status != DIMSE_STATUS_SUCCESS || r->failed > 0)
			snprintf(s->last_why, sizeof(s->last_why), "%s "
			    "0x%04x (%s), %ld failed, %ld completed%s%s",
			    dicom_qr_kind_name(retrieve_kind(op->m, s)),
			    r->status, dimse_status_name_for(retrieve_kind(
			    op->m, s) == DICOM_QR_GET ? DIMSE_C_GET_RSP :
			    DIMSE_C_MOVE_RSP, r->status),
			    r->failed, r->completed, r->comment[0] ? ": " : "",
			    r->comment);
	} else
		snprintf(s->last_why, sizeof(s->last_why), "%.199s", r->why);
	final = r->final;	/* r goes with the operation */
	dicom_qr_free(op->qr);
	if (!final || op->l == NULL) {
		retrieve_end(s, 0, s->last_why);
		return;
	}
	retrieve_next(op);
}

/* retrieve_next: the next C-MOVE/C-GET on the association: the study,
 * or each instance still missing (byinst). */
static void
retrieve_next(struct mop *op)
{
	struct mstudy *s = op->owner;
	const struct conf_peer *p = peer_named(op->m, s->b->source);
	int get = p != NULL && p->retrieve == CONF_RETRIEVE_GET;
	struct dimse_ident *id;
	char err[256];
	struct minst *in = NULL;

	if (s->imiss == (size_t)-1) {	/* the study-level one was sent */
		retrieve_end(s, 1, NULL);
		return;
	}
	if (s->byinst) {
		while (s->rleft > 0 && s->in[s->imiss].st != I_EXPECTED) {
			s->imiss = (s->imiss + 1) % s->nin;
			s->rleft--;
		}
		if (s->rleft == 0) {
			retrieve_end(s, 1, NULL);
			return;
		}
		in = &s->in[s->imiss];
		s->imiss = (s->imiss + 1) % s->nin;
		s->rleft--;
	}
	if ((id = malloc(sizeof(*id))) == NULL)
		abort();
	dimse_ident_init(id);
	ident_set(id, DIMSE_TAG_QR_LEVEL, in ? "IMAGE" : "STUDY");
	ident_set(id, TAG_STUDY_UID, s->uid);
	if (in != NULL) {
		ident_set(id, TAG_SERIES_UID, in->series);
		ident_set(id, TAG_SOP_INST, in->sop);
	} else
		s->imiss = (size_t)-1;
	if (op_qr(op, get ? DICOM_QR_GET : DICOM_QR_MOVE, get ?
	    DICOM_QR_STUDY_GET : DICOM_QR_STUDY_MOVE, id, err,
	    sizeof(err)) < 0) {
		free(id);
		retrieve_end(s, 0, err);
		return;
	}
	free(id);
}

static void
retrieve_ready(struct mop *op)
{
	if (!hold_back(op, retrieve_next))
		retrieve_next(op);
}

static void
retrieve_failed(struct mop *op, const char *why)
{
	struct mstudy *s = op->owner;
	char w[300];

	snprintf(w, sizeof(w), "no association with the source: %s", why);
	retrieve_end(s, 0, w);
}

/* The transfer syntaxes a C-GET proposes for each storage class: what
 * archives keep; the source picks what it has (no transcoding). */
static const char *const get_ts[] = {
	TS_ELE, TS_ILE,
	"1.2.840.10008.1.2.4.70",	/* JPEG Lossless SV1 */
	"1.2.840.10008.1.2.4.50",	/* JPEG Baseline */
	"1.2.840.10008.1.2.4.90",	/* JPEG 2000 Lossless */
	"1.2.840.10008.1.2.4.91",	/* JPEG 2000 */
	"1.2.840.10008.1.2.5",		/* RLE */
	"1.2.840.10008.1.2.4.80",	/* JPEG-LS Lossless */
};

/*
 * Storage classes a C-GET proposes for instances whose class the source's
 * IMAGE-level C-FIND did not give (SOP Class UID is not a required return
 * key: DCMTK's dcmqrscp leaves it out). A C-GET's sub-operations go over
 * our association only in contexts we proposed, so without them every
 * sub-operation fails (0xA702) and the study would end up quarantined as
 * missing. By modality where the STUDY level said (ModalitiesInStudy),
 * else the common image classes; Secondary Capture and the non-image
 * classes of GC_ALWAYS (any study may hold them) in either case. Image
 * classes in every syntax of get_ts, the others in the two uncompressed
 * ones: 121 contexts of the 128 an association may have, with the
 * common list. A class outside these is not proposed: its instances
 * fail at the source and end quarantined as missing_at_source with the
 * source's status; the mig-get-classes log line says what was proposed.
 */
#define GC_IMAGE	0x1	/* proposed in every syntax of get_ts */
#define GC_COMMON	0x2	/* in the list used when no modality is known */
#define GC_ALWAYS	0x4	/* proposed whenever a class is unknown */

static const struct get_class {
	const char	*mod;	/* Modality (0008,0060) value; NULL: any */
	const char	*uid;
	unsigned	 f;
} get_classes[] = {
	{ "CT", "1.2.840.10008.5.1.4.1.1.2", GC_IMAGE | GC_COMMON },
	{ "MR", "1.2.840.10008.5.1.4.1.1.4", GC_IMAGE | GC_COMMON },
	{ "CR", "1.2.840.10008.5.1.4.1.1.1", GC_IMAGE | GC_COMMON },
	{ "DX", "1.2.840.10008.5.1.4.1.1.1.1", GC_IMAGE | GC_COMMON },
	{ "MG", "1.2.840.10008.5.1.4.1.1.1.2", GC_IMAGE | GC_COMMON },
	{ "US", "1.2.840.10008.5.1.4.1.1.6.1", GC_IMAGE | GC_COMMON },
	{ "US", "1.2.840.10008.5.1.4.1.1.3.1", GC_IMAGE | GC_COMMON },
	{ "NM", "1.2.840.10008.5.1.4.1.1.20", GC_IMAGE | GC_COMMON },
	{ "PT", "1.2.840.10008.5.1.4.1.1.128", GC_IMAGE | GC_COMMON },
	{ "XA", "1.2.840.10008.5.1.4.1.1.12.1", GC_IMAGE | GC_COMMON },
	{ "RF", "1.2.840.10008.5.1.4.1.1.12.2", GC_IMAGE | GC_COMMON },
	{ NULL, "1.2.840.10008.5.1.4.1.1.7", GC_IMAGE | GC_ALWAYS },
	{ "CT", "1.2.840.10008.5.1.4.1.1.2.1", GC_IMAGE },
	{ "MR", "1.2.840.10008.5.1.4.1.1.4.1", GC_IMAGE },
	{ "DX", "1.2.840.10008.5.1.4.1.1.1.1.1", GC_IMAGE },
	{ "MG", "1.2.840.10008.5.1.4.1.1.1.2.1", GC_IMAGE },
	{ "MG", "1.2.840.10008.5.1.4.1.1.13.1.3", GC_IMAGE },
	{ "PT", "1.2.840.10008.5.1.4.1.1.130", GC_IMAGE },
	{ "XC", "1.2.840.10008.5.1.4.1.1.77.1.4", GC_IMAGE },
	{ "RTIMAGE", "1.2.840.10008.5.1.4.1.1.481.1", GC_IMAGE },
	{ "RTDOSE", "1.2.840.10008.5.1.4.1.1.481.2", GC_ALWAYS },
	{ "RTSTRUCT", "1.2.840.10008.5.1.4.1.1.481.3", GC_ALWAYS },
	{ "RTPLAN", "1.2.840.10008.5.1.4.1.1.481.5", GC_ALWAYS },
	{ "SEG", "1.2.840.10008.5.1.4.1.1.66.4", GC_ALWAYS },
	{ "ECG", "1.2.840.10008.5.1.4.1.1.9.1.1", GC_ALWAYS },
	{ "ECG", "1.2.840.10008.5.1.4.1.1.9.1.2", GC_ALWAYS },
	{ "HD", "1.2.840.10008.5.1.4.1.1.9.2.1", 0 },
	{ NULL, "1.2.840.10008.5.1.4.1.1.88.59", GC_ALWAYS },	/* KO */
	{ NULL, "1.2.840.10008.5.1.4.1.1.11.1", GC_ALWAYS },	/* GSPS */
	{ NULL, "1.2.840.10008.5.1.4.1.1.88.33", GC_ALWAYS },
	{ NULL, "1.2.840.10008.5.1.4.1.1.88.22", GC_ALWAYS },
	{ NULL, "1.2.840.10008.5.1.4.1.1.88.11", GC_ALWAYS },
	{ NULL, "1.2.840.10008.5.1.4.1.1.104.1", GC_ALWAYS },	/* PDF */
};

/* has_mod: MODS ("CT\\SR") lists modality M. */
static int
has_mod(const char *mods, const char *m)
{
	size_t n = strlen(m);

	for (const char *p = mods; *p != '\0'; ) {
		size_t k = strcspn(p, "\\");

		if (k == n && strncmp(p, m, n) == 0)
			return 1;
		p += k;
		if (*p == '\\')
			p++;
	}
	return 0;
}

/* prop_class: CLS with our SCP role, in every syntax of get_ts (image)
 * or the two uncompressed ones, unless proposed already; in as many of
 * them as there is room for (get_ts has the likeliest first). */
static void
prop_class(struct dicom_propose prop[DICOM_MAX_PCTX], unsigned *np,
    const char *cls, int image)
{
	size_t nts = image ? sizeof(get_ts) / sizeof(get_ts[0]) : 2;

	for (unsigned k = 1; k < *np; k++)
		if (strcmp(prop[k].abstract, cls) == 0)
			return;
	if (*np + nts > DICOM_MAX_PCTX)
		nts = DICOM_MAX_PCTX - *np;
	for (size_t k = 0; k < nts; k++) {
		prop[*np].abstract = cls;
		prop[*np].ts[0] = get_ts[k];
		prop[*np].nts = 1;
		prop[(*np)++].scp_role = 1;
	}
}

/* retrieve_props: what a retrieve from peer proposes: its MOVE or GET
 * class and, for a C-GET, the storage classes of the study's instances
 * (those marked rb only, with rb_only), each in every syntax archives
 * keep, with our SCP role, and when the source did not say an instance's
 * class, the classes of get_classes. Returns how many. */
static unsigned
retrieve_props(const struct conf_peer *p, const struct mstudy *s,
    int rb_only, struct dicom_propose prop[DICOM_MAX_PCTX])
{
	unsigned np = 0, guessed;
	int unknown = 0, bymod = 0;

	memset(prop, 0, DICOM_MAX_PCTX * sizeof(*prop));
	prop[np].abstract = p->retrieve == CONF_RETRIEVE_GET ?
	    DICOM_QR_STUDY_GET : DICOM_QR_STUDY_MOVE;
	prop[np].ts[0] = TS_ELE;
	prop[np].ts[1] = TS_ILE;
	prop[np++].nts = 2;
	if (p->retrieve != CONF_RETRIEVE_GET) {
		if (!rb_only) {
			/* as the source's query proposed: one association
			 * for both (see scan_start) */
			prop[np].abstract = DICOM_QR_STUDY_FIND;
			prop[np].ts[0] = TS_ELE;
			prop[np].ts[1] = TS_ILE;
			prop[np++].nts = 2;
		}
		return np;
	}
	for (size_t i = 0; i < s->nin; i++) {
		if (rb_only && !s->in[i].rb)
			continue;
		if (s->in[i].cls[0] == '\0')
			unknown = 1;
		else
			prop_class(prop, &np, s->in[i].cls, 1);
	}
	if (!unknown)
		return np;
	guessed = np;
	for (size_t k = 0; k < sizeof(get_classes) / sizeof(get_classes[0]);
	    k++)
		if (get_classes[k].mod != NULL && has_mod(s->modalities,
		    get_classes[k].mod)) {
			prop_class(prop, &np, get_classes[k].uid,
			    get_classes[k].f & GC_IMAGE);
			bymod = 1;
		}
	for (size_t k = 0; k < sizeof(get_classes) / sizeof(get_classes[0]);
	    k++)
		if ((get_classes[k].f & GC_ALWAYS) ||
		    (!bymod && (get_classes[k].f & GC_COMMON)))
			prop_class(prop, &np, get_classes[k].uid,
			    get_classes[k].f & GC_IMAGE);
	log_info("mig-get-classes", "batch=%llu study=%s source=%s "
	    "modalities=%s contexts=%u why=%s", (unsigned long long)s->b->id,
	    s->uid, p->name, s->modalities[0] ? s->modalities : "-",
	    np - guessed, log_q(bymod ? "the source's C-FIND gave no SOP "
	    "Class UID for some instances: storage classes proposed by the "
	    "study's modalities" : "the source's C-FIND gave no SOP Class "
	    "UID for some instances, nor the study's modalities: the common "
	    "storage classes proposed"));
	return np;
}

static void
study_retrieve(struct mstudy *s)
{
	struct mig *m = s->b->op.m;
	const struct conf_peer *p = peer_named(m, s->b->source);
	struct dicom_propose prop[DICOM_MAX_PCTX];
	unsigned np = 0;
	size_t missing;
	char err[256];

	if (s->b->prefetch_ms > 0 && !s->b->prefetch_seen) {
		struct timespec ts;
		double secs;

		/* an HL7 order asked for this batch: how long it took */
		clock_gettime(CLOCK_REALTIME, &ts);
		secs = ((double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6 -
		    (double)s->b->prefetch_ms) / 1000;
		s->b->prefetch_seen = 1;
		metric_observe(m->m_prefetch, NULL, secs < 0 ? 0 : secs);
		log_info("mig-prefetch", "batch=%llu first_retrieval_s=%.3f",
		    (unsigned long long)s->b->id, secs);
	}

	if ((missing = retrieve_check(s)) == 0) {
		s->round = 0;
		study_commit(s, S_SENDING);
		return;
	}
	/* The study at once on its first round, when most of it is to come;
	 * else only what is missing: the instances the target had
	 * (pre-flight), those received before a restart, those ended before
	 * a quarantine retry are not asked for again. */
	s->byinst = s->round > 0 || missing * 2 <= s->nin;
	if (p == NULL) {
		study_fail_step(s, 1, "retrieve", "the source peer is no longer "
		    "configured");
		return;
	}
	memset(prop, 0, sizeof(prop));
	memset(&s->op, 0, sizeof(s->op));
	s->op.m = m;
	s->op.owner = s;
	s->op.ready = retrieve_ready;
	s->op.failed = retrieve_failed;
	s->op.done = retrieve_done;
	/* a later round starts after the instance the last one stopped at
	 * (a source that aborts on one instance every time does not keep
	 * the others behind it from being asked for) */
	s->imiss = s->rnext < s->nin ? s->rnext : 0;
	s->rleft = s->nin;
	s->last_status = -1;
	s->last_why[0] = '\0';
	np = retrieve_props(p, s, 0, prop);
	if (op_lease(&s->op, p, prop, np, err, sizeof(err)) < 0) {
		retrieve_end(s, 0, err);
		return;
	}
	if (!s->early && early_may(s))
		rs_add(m, s);	/* what comes is sent on as it comes */
}

/* ---------------------------------------------------------------------- */
/* Sending to the target. */

static void send_fill(struct mstudy *s);
static void verify_end(struct mstudy *s);
static void pace_fire(evutil_socket_t fd, short ev, void *arg);

static unsigned
send_window(const struct dicom_conn *dc)
{
	unsigned n = dicom_conn_assoc(dc)->window;

	return n < 1 ? 1 : n > WINDOW_MAX ? WINDOW_MAX : n;
}

/* send_result: instance i's C-STORE ended: status, or no response (why). */
static void
send_result(struct mstudy *s, size_t i, int status, const char *why)
{
	struct mig *m = s->b->op.m;
	struct minst *in = &s->in[i];
	char d[300];

	if (in->fd >= 0)
		close(in->fd);
	in->fd = -1;
	in->dirty = 1;
	if (status >= 0)
		in->status = status;
	if (why != NULL || (status >= 0 && (status & 0xff00) == 0xa700)) {
		/* retryable: out of resources, or no response */
		in->attempts++;
		snprintf(s->send_why, sizeof(s->send_why), "%s", why ? why :
		    dimse_status_name((uint16_t)status));
		if (in->attempts >= cf(m)->migration.send_attempts) {
			snprintf(d, sizeof(d), "not stored after %u attempts: "
			    "%s", in->attempts, s->send_why);
			if (why != NULL) {
				in->st = I_FAILED;
				snprintf(in->reason, sizeof(in->reason),
				    "target_unavailable");
				snprintf(in->detail, sizeof(in->detail),
				    "%.199s", d);
				in->ended = 1;
			} else
				quarantine(s, in, "target_rejected", d, 1);
		}
		return;
	}
	switch (dimse_status_class((uint16_t)status)) {
	case DIMSE_CLASS_SUCCESS:
	case DIMSE_CLASS_WARNING:
		in->st = I_SENT;
		s->b->bytes += in->bytes;
		if (status != 0)
			snprintf(in->detail, sizeof(in->detail), "stored with "
			    "warning 0x%04x (%s)", status,
			    dimse_status_name((uint16_t)status));
		break;
	default:
		snprintf(d, sizeof(d), "the target answered 0x%04x (%s)",
		    status, dimse_status_name((uint16_t)status));
		quarantine(s, in, "target_rejected", d, 1);
		break;
	}
}

static void
send_end(struct mstudy *s, int ok, const char *why)
{
	struct mig *m = s->b->op.m;
	const struct conf_peer *t = peer_named(m, s->b->target);
	int retry = 0;

	if (why != NULL && s->send_why[0] == '\0')
		snprintf(s->send_why, sizeof(s->send_why), "%.190s", why);
	while (s->nout > 0)
		send_result(s, s->out[--s->nout], -1, why ? why :
		    "the association ended");
	op_end(&s->op, ok, why ? why : "");
	for (size_t i = 0; i < s->nin; i++) {
		struct minst *in = &s->in[i];

		if (in->st != I_RECEIVED)
			continue;
		if (in->attempts < cf(m)->migration.send_attempts) {
			retry = 1;
			continue;
		}
		/* out of attempts (send_attempts lowered meanwhile, or
		 * spent on a path that did not end it): it fails here,
		 * never retried for ever */
		in->st = I_FAILED;
		snprintf(in->reason, sizeof(in->reason), "target_unavailable");
		snprintf(in->detail, sizeof(in->detail), "not stored after %u "
		    "attempts: %.250s", in->attempts, s->send_why[0] ?
		    s->send_why : "no answer");
		in->dirty = in->ended = 1;
	}
	if (retry) {
		s->attempts++;
		s->retry_at = net_now_ms() + backoff_ms(m, s->attempts);
		log_warn("mig-send-retry", "batch=%llu study=%s attempt=%u "
		    "last=%s", (unsigned long long)s->b->id, s->uid,
		    s->attempts, log_q(s->send_why));
		study_commit(s, S_SENDING);
		return;
	}
	for (size_t i = 0; i < s->nin; i++)
		if (s->in[i].st == I_EXPECTED) {
			/* its copy was let go meanwhile (another batch
			 * verified the same instance): fetched again, never
			 * left pending in a study that ends */
			log_info("mig-refetch", "batch=%llu study=%s sop=%s",
			    (unsigned long long)s->b->id, s->uid,
			    s->in[i].sop);
			s->attempts = 0;
			xform_clean(s);
			study_commit(s, S_RETRIEVING);
			return;
		}
	s->attempts = 0;
	xform_clean(s);
	if (t != NULL && t->verify == CONF_VERIFY_NONE) {
		status_proven(s);
		if (t->commit) {
			/* its storage commitment is a step of its own: a retry
			 * of it does not send again (nor start the attempts
			 * over, as a send's end does) */
			study_commit(s, S_VERIFYING);
			return;
		}
		verify_end(s);
		return;
	}
	study_commit(s, S_VERIFYING);
}

static void early_fill(struct mstudy *s);
static void early_pause(struct mstudy *s);
static struct mstudy *early_wanting(struct mig *m, const struct mstudy *s);
static void early_pass(struct mig *m, const char *target);
static int early_room(struct mig *m, const struct mstudy *s);
static void early_lease(struct mstudy *s);
static int send_one(struct mstudy *s, struct mop *op, size_t i, int early,
    char *why, size_t cap);
static int xw_decide(struct mstudy *s);

static void
send_rsp(struct mop *op, const struct dimse_cmd *c)
{
	struct mstudy *s = op->owner;

	for (unsigned k = 0; k < s->nout; k++)
		if (s->in[s->out[k]].msgid == c->msgid_rsp) {
			size_t i = s->out[k];

			s->out[k] = s->out[--s->nout];
			send_result(s, i, c->status, NULL);
			if (op == &s->eop) {
				if (s->in[i].st == I_SENT)
					s->esent++;
				early_fill(s);
			} else
				send_fill(s);
			return;
		}
}

/* ---- sending while retrieving ----
 *
 * A study whose retrieve is under way sends each instance to its target
 * as soon as the instance is durable here (store_sink_on_spooled), on an
 * association of its own (eop), so the send overlaps the retrieve
 * instead of following it. Only what the send proper would do the same
 * way: a DICOM target without a bandwidth cap, no patient-ID crosswalk,
 * no pushed study. Any trouble there (an instance without a context, a
 * refused association, a lost one) just stops it: what it did not send
 * is sent by the send proper, which starts once the retrieve has ended
 * and nothing is in flight on eop. Its outcomes are the send proper's
 * (send_result) and are written with the study's next state. */

static int
minst_cmp(const void *a, const void *b)
{
	return strcmp((*(struct minst *const *)a)->sop,
	    (*(struct minst *const *)b)->sop);
}

static int
sop_cmp(const void *key, const void *elem)
{
	return strcmp(key, (*(struct minst *const *)elem)->sop);
}

/* slist_add, slist_del: s into or out of a list of studies. */
static void
slist_add(struct mstudy ***v, size_t *n, size_t *cap, struct mstudy *s)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct mstudy **nv = realloc(*v, c * sizeof(*nv));

		if (nv == NULL)
			abort();
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = s;
}

static void
slist_del(struct mstudy **v, size_t *n, const struct mstudy *s)
{
	for (size_t k = 0; k < *n; k++)
		if (v[k] == s) {
			v[k] = v[--*n];
			return;
		}
}

/* by_sop: s's instances by SOP Instance UID, for bsearch with sop_cmp. */
static struct minst **
by_sop(struct mstudy *s)
{
	struct minst **v = malloc((s->nin ? s->nin : 1) * sizeof(*v));

	if (v == NULL)
		abort();
	for (size_t i = 0; i < s->nin; i++)
		v[i] = &s->in[i];
	qsort(v, s->nin, sizeof(*v), minst_cmp);
	return v;
}

/* rs_add: s sends while it retrieves (early_spooled finds it). */
static void
rs_add(struct mig *m, struct mstudy *s)
{
	slist_add(&m->rs, &m->nrs, &m->caprs, s);
	s->esorted = by_sop(s);
	s->early = 1;
	s->estop = s->esettle = s->eretry = s->eyield = s->ewant = 0;
	s->esent = 0;
	s->ebytes = 0;
	s->enext = 0;
}

static void
rs_remove(struct mig *m, struct mstudy *s)
{
	slist_del(m->rs, &m->nrs, s);
	free(s->esorted);
	s->esorted = NULL;
	s->early = 0;
}

/*
 * ws_add: the retrieve of s ended with MISSING instances not yet in the
 * spool, which may be sub-operations answered before they were durable
 * (migration.retrieve_ack early): early_spooled takes each as its record
 * becomes durable and runs the check at once when the last one has come
 * (a C-GET's final response comes right after its last sub-operation's,
 * before that one's record is synced). It polled every 50 ms before: a
 * C-GET migration of 4 x 10 x 1 MiB from dcmqrscp took 0.20 s, now
 * 0.15 s. What never comes is given up on after a second, as before.
 * A read-back (WS_READBACK) waits the same way for the target's copies.
 */
static void
ws_add(struct mig *m, struct mstudy *s, size_t missing, int kind)
{
	s->wleft = missing;
	s->wkind = kind;
	if (s->wsorted != NULL)
		return;
	slist_add(&m->ws, &m->nws, &m->capws, s);
	s->wsorted = by_sop(s);
}

static void
ws_remove(struct mig *m, struct mstudy *s)
{
	if (s->wsorted == NULL)
		return;
	slist_del(m->ws, &m->nws, s);
	free(s->wsorted);
	s->wsorted = NULL;
	s->wleft = 0;
}

/* ws_spooled: a record became durable: a study whose check waits for it
 * takes it. */
static void
ws_spooled(struct mig *m, const struct spool_info *si)
{
	for (size_t k = 0; k < m->nws; k++) {
		struct mstudy *s = m->ws[k];
		const struct conf_peer *p = peer_named(m, s->wkind ==
		    WS_READBACK ? s->b->target : s->b->source);
		struct minst **f;

		if (p == NULL || strcmp(si->origin_ae, p->ae_title) != 0 ||
		    (f = bsearch(si->sop_instance, s->wsorted, s->nin,
		    sizeof(*s->wsorted), sop_cmp)) == NULL)
			continue;
		if (s->wkind == WS_READBACK) {
			if (!(*f)->rb || (*f)->rbgot)
				continue;
			(*f)->rbgot = 1;
		} else if (!take_received(s, *f, &s->got_bytes, si))
			continue;
		/* (EV_READ tells the check it was not the timer) */
		if (s->wleft > 0 && --s->wleft == 0 && s->settle_ev != NULL)
			event_active(s->settle_ev, EV_READ, 1);
	}
}

/* early_end: eop is done (ok: its association back to the pool); a
 * retrieve that ended meanwhile settles now. */
static void
early_end(struct mstudy *s, int ok, const char *why)
{
	struct mig *m = s->b->op.m;

	if (!ok) {
		/* lost, refused or aborted: the target gets its backoff
		 * before the send proper, as after a failed send */
		s->eretry = 1;
		if (s->send_why[0] == '\0')
			snprintf(s->send_why, sizeof(s->send_why), "%.190s",
			    why ? why : "the association ended");
	}
	while (s->nout > 0)
		send_result(s, s->out[--s->nout], -1, why ? why :
		    "the association ended");
	op_end(&s->eop, ok, why ? why : "");
	memset(&s->eop, 0, sizeof(s->eop));
	rs_remove(m, s);
	early_pass(m, s->b->target);
	if (s->esent > 0)
		log_info("mig-send-early", "batch=%llu study=%s sent=%u",
		    (unsigned long long)s->b->id, s->uid, s->esent);
	s->esent = 0;
	if (s->esettle) {
		s->esettle = 0;
		retrieve_settle(0, 0, s);
	}
}

static void
early_fill(struct mstudy *s)
{
	struct mig *m = s->b->op.m;
	struct mstudy *o;
	char why[300];

	if (!s->estop && !s->eyield && !m->draining && flow_ms(m,
	    peer_named(m, s->b->target)) == 0) {
		unsigned win = send_window(s->eop.dc);
		size_t i;

		/* what it passes cannot be sent early any more (sent, in
		 * flight, failed once, without a context) or is not here
		 * yet (take_received moves enext back to it) */
		for (i = s->enext; i < s->nin && s->nout < win; i++) {
			int busy = 0;

			for (unsigned k = 0; k < s->nout && !busy; k++)
				busy = s->out[k] == i;
			if (busy)
				continue;
			if (send_one(s, &s->eop, i, 1, why, sizeof(why)) < 0) {
				early_end(s, 0, why);
				return;
			}
		}
		s->enext = i;
	}
	if (s->nout == 0 && (s->estop || s->esettle))
		early_end(s, 1, NULL);
	else if (s->nout == 0 && s->eyield) {
		early_pause(s);		/* given back (early_yield) */
		early_pass(m, s->b->target);
	} else if (s->nout == 0 && (o = early_wanting(m, s)) != NULL) {
		/* passed on: nothing of this study is to be sent now, and
		 * o's instances wait for an association it covers */
		early_pause(s);
		if (early_room(m, o))
			early_lease(o);
	}
}

static void
early_ready(struct mop *op)
{
	struct mstudy *s = op->owner;

	s->nout = 0;
	early_fill(s);
}

static void
early_failed(struct mop *op, const char *why)
{
	struct mstudy *s = op->owner;

	/* no association, or it was lost: the send proper sends the rest
	 * (and counts what was in flight as an attempt) */
	s->estop = 1;
	early_end(s, 0, why);
}

/* send_props: a context for each SOP class and transfer syntax among
 * the received instances (sent as they are: no transcoding); *any (when
 * given) says whether any instance is received. Returns how many. */
static unsigned
send_props(struct mstudy *s, struct dicom_propose prop[DICOM_MAX_PCTX],
    int *any)
{
	unsigned np = 0;

	for (size_t i = 0; i < s->nin; i++) {
		struct minst *in = &s->in[i];
		int dup = 0;

		if (in->st != I_RECEIVED)
			continue;
		if (any != NULL)
			*any = 1;
		if (in->cls[0] == '\0' || in->ts[0] == '\0')
			continue;
		for (unsigned k = 0; k < np && !dup; k++)
			dup = strcmp(prop[k].abstract, in->cls) == 0 &&
			    strcmp(prop[k].ts[0], in->ts) == 0;
		if (!dup && np < DICOM_MAX_PCTX) {
			memset(&prop[np], 0, sizeof(prop[np]));
			prop[np].abstract = in->cls;
			prop[np].ts[0] = in->ts;
			prop[np++].nts = 1;
		}
	}
	return np;
}

/* with_find: a target the study will query (preflight, verify: counts
 * and up) gets the Study Root C-FIND context proposed beside the storage
 * ones (scan_props[0]), so that the query reuses the send's
 * association: with max_associations 1 (a dcmqrscp) the send and the
 * queries otherwise took turns releasing the one association and opening
 * another, a fork of the archive's process each time. Not to a target
 * not queried: storescp refuses the context. */
static unsigned
with_find(const struct conf_peer *t, struct dicom_propose prop[
    DICOM_MAX_PCTX], unsigned np)
{
	if (np == 0 || np >= DICOM_MAX_PCTX || t->verify == CONF_VERIFY_NONE)
		return np;
	prop[np] = scan_props[0];
	return np + 1;
}

/* early_lease: ask for the target association, proposing what the
 * instances received so far need. */
static void
early_lease(struct mstudy *s)
{
	struct mig *m = s->b->op.m;
	const struct conf_peer *t = peer_named(m, s->b->target);
	struct dicom_propose prop[DICOM_MAX_PCTX];
	unsigned np = send_props(s, prop, NULL);
	char err[256];

	s->ewant = 0;
	if (t == NULL || np == 0)
		return;
	np = with_find(t, prop, np);
	memset(&s->eop, 0, sizeof(s->eop));
	s->eop.m = m;
	s->eop.owner = s;
	s->eop.early = 1;
	s->eop.ready = early_ready;
	s->eop.failed = early_failed;
	s->eop.store_rsp = send_rsp;
	s->nout = 0;
	if (op_lease(&s->eop, t, prop, np, err, sizeof(err)) < 0) {
		s->estop = 1;
		early_end(s, 0, err);
	}
}

/* early_may: whether s may send while it retrieves. */
static int
early_may(struct mstudy *s)
{
	struct mig *m = s->b->op.m;
	const struct conf_peer *t = peer_named(m, s->b->target);

	/* (a target that takes one association at a time has it for early
	 * sends too while nothing else waits for it: early_room,
	 * early_yield; the studies retrieved at once take turns on it:
	 * early_pass) */
	if (s->push || t == NULL || t->export_path != NULL ||
	    t->bandwidth > 0 ||
	    flow_of(m, t)->open)	/* its breaker: the send proper probes */
		return 0;
	if (!s->xw_set && xw_decide(s) < 0)
		return 0;	/* the send proper logs it */
	return s->xw[0] == '\0';
}

/* early_holding: early sends with (or waiting for) an association with
 * target; with going, also those asked to stop or to yield that still
 * wait for responses. */
static unsigned
early_holding(const struct mig *m, const char *target, int going)
{
	unsigned n = 0;

	for (size_t k = 0; k < m->nrs; k++)
		n += m->rs[k]->eop.l != NULL && (going ||
		    (!m->rs[k]->estop && !m->rs[k]->eyield)) &&
		    strcmp(m->rs[k]->b->target, target) == 0;
	return n;
}

/* early_room: whether s may take an association with its target now.
 * Early sends leave one of the target's associations to the queries and
 * sends of the other studies while any of those waits for one; while
 * none does, they may take the last one too, and give it back as soon as
 * one asks (early_yield). Before, the last study of max_associations
 * retrieving at once sent nothing early: with the default limit of 4 and
 * 4 large studies, one study in four was sent only after its retrieve
 * (migrate, large set: 0.151-0.152 s with that reserve, 0.141 s without
 * it). */
static int
early_room(struct mig *m, const struct mstudy *s)
{
	const struct conf_peer *t = peer_named(m, s->b->target);
	struct flow *fl;
	unsigned n;

	if (t == NULL)
		return 0;
	fl = flow_of(m, t);
	n = early_holding(m, s->b->target, 1);
	return n + 1 < fl->limit || (n < fl->limit && fl->lwait == 0);
}

/* early_pause: s's early send gives its association back to the pool
 * (nothing in flight) and stays listed: it asks for one again when an
 * instance of its study becomes durable and early_room allows. */
static void
early_pause(struct mstudy *s)
{
	s->eyield = 0;
	op_end(&s->eop, 1, "");
	memset(&s->eop, 0, sizeof(s->eop));
}

/* early_wanting: the first other study retrieving for s's target whose
 * received instances wait for an association (ewant) while early_room
 * gives it none, if s's association covers its contexts (passing it to
 * a study of other SOP classes or transfer syntaxes would release it and
 * open another: a fork of a dcmqrscp each time); else NULL. The first
 * only: this runs after each response, and a study's contexts take a
 * walk of its instances. */
static struct mstudy *
early_wanting(struct mig *m, const struct mstudy *s)
{
	const struct conf_peer *t = peer_named(m, s->b->target);

	for (size_t k = 0; t != NULL && s->eop.l != NULL && k < m->nrs; k++) {
		struct mstudy *o = m->rs[k];
		struct dicom_propose prop[DICOM_MAX_PCTX];
		unsigned np;

		if (o == s || !o->ewant || o->eop.l != NULL || o->estop ||
		    strcmp(o->b->target, s->b->target) != 0)
			continue;
		if (early_room(m, o))
			return NULL;	/* it gets its own (early_pass) */
		np = with_find(t, prop, send_props(o, prop, NULL));
		return np > 0 && dicom_lease_covers(s->eop.l, prop, np) ? o :
		    NULL;
	}
	return NULL;
}

/* early_pass: an association with target became free for early sends:
 * the first study whose instances wait for one gets it. The early sends
 * of the studies retrieved at once so take turns on a target's
 * associations when there are fewer than studies (max_associations 1: a
 * dcmqrscp): each sends what it has, then passes it on (early_fill), and
 * none waits for its own retrieve to end. */
static void
early_pass(struct mig *m, const char *target)
{
	for (size_t k = 0; k < m->nrs; k++) {
		struct mstudy *o = m->rs[k];

		if (o->ewant && o->eop.l == NULL && !o->estop &&
		    strcmp(o->b->target, target) == 0) {
			if (early_room(m, o))
				early_lease(o);
			return;
		}
	}
}

/* early_yield: ops other than early sends wait for an association with
 * t while early sends hold what would be the reserve (early_room): the
 * newest of those early sends gives its association back, at once when
 * nothing of it is in flight, else after its last response (early_fill),
 * and the pool gives it to the oldest waiting lease. That study goes on
 * sending early once an association is free again. */
static void
early_yield(struct mig *m, const struct conf_peer *t)
{
	struct flow *fl = flow_of(m, t);

	while (fl->lwait > 0 && early_holding(m, t->name, 0) + 1 > fl->limit) {
		struct mstudy *s = NULL;

		for (size_t k = m->nrs; k-- > 0 && s == NULL; )
			if (m->rs[k]->eop.l != NULL && !m->rs[k]->estop &&
			    !m->rs[k]->eyield &&
			    strcmp(m->rs[k]->b->target, t->name) == 0)
				s = m->rs[k];
		if (s == NULL)
			break;
		log_info("mig-send-early-yield", "batch=%llu study=%s "
		    "target=%s sent=%u why=\"another operation waits for an "
		    "association with the target\"", (unsigned long long)
		    s->b->id, s->uid, t->name, s->esent);
		s->eyield = 1;
		if (s->nout == 0)
			early_pause(s);	/* (early_room keeps it for the op) */
	}
}

/* early_spooled: a spooled instance became durable: a study retrieving
 * it takes it, and sends it on when it may. */
static void
early_spooled(void *arg, const struct spool_info *si)
{
	struct mig *m = arg;

	ws_spooled(m, si);
	for (size_t k = m->nrs; k-- > 0; ) {	/* early_end removes */
		const struct conf_peer *p;
		struct mstudy *s;
		struct minst **f;
		size_t i;

		if (k >= m->nrs)	/* early_yield ended more than one */
			continue;
		s = m->rs[k];
		p = peer_named(m, s->b->source);
		if (s->estop || p == NULL ||
		    strcmp(si->origin_ae, p->ae_title) != 0 ||
		    (f = bsearch(si->sop_instance, s->esorted, s->nin,
		    sizeof(*s->esorted), sop_cmp)) == NULL ||
		    !take_received(s, *f, &s->ebytes, si))
			continue;
		if ((i = (size_t)(*f - s->in)) < s->enext)
			s->enext = i;
		if (s->eop.l == NULL && early_room(m, s))
			early_lease(s);
		else if (s->eop.dc != NULL)
			early_fill(s);
		else if (s->eop.l == NULL)
			s->ewant = 1;	/* early_pass */
	}
}


/*
 * send_one: instance i's C-STORE on op (the study's send, or early: its
 * early association, where an instance without a context is left for
 * the send proper instead of quarantined). 1 sent (in s->out), 0 not
 * for now, -1 the association cannot take it (why; in s->out).
 */
static int
send_one(struct mstudy *s, struct mop *op, size_t i, int early, char *why,
    size_t cap)
{
	struct mig *m = s->b->op.m;
	struct minst *in = &s->in[i];
	const struct dicom_pctx *pc;
	struct spool_info si;
	struct dimse_cmd rq;
	uint8_t buf[1024];
	char path[4096];
	size_t len;

	/* early: an instance that failed once waits for the send proper
	 * and its backoff */
	if (in->st != I_RECEIVED || in->attempts >=
	    cf(m)->migration.send_attempts || (early && (in->eskip ||
	    in->attempts > 0)))
		return 0;
	if (src_at(s, in, &si) != 1) {
		/* released meanwhile (another batch verified the same
		 * instance): fetch it again */
		in->st = I_EXPECTED;
		in->dirty = 1;
		return 0;
	}
	if ((pc = dicom_pctx_for(op->dc, si.sop_class, si.ts_uid)) == NULL) {
		char d[256];

		if (early) {
			in->eskip = 1;
			return 0;
		}
		snprintf(d, sizeof(d), "the target accepted no presentation "
		    "context for %s in %s (vnamig does not transcode)",
		    si.sop_class, si.ts_uid);
		quarantine(s, in, "target_rejected", d, 1);
		return 0;
	}
	uint64_t off = si.off + si.data_off;

	in->msgid = ++op->msgid;
	in->bytes = si.len - si.data_off;
	if (in->xready) {
		/* transformed: its edited copy goes instead */
		struct stat sb;

		xform_path(s, in, path, sizeof(path));
		off = 0;
		in->bytes = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
	} else
		spool_seg_path(m->sp, si.seg, path, sizeof(path));
	s->out[s->nout++] = i;
	if ((in->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    dimse_store_rq(in->msgid, si.sop_class, si.sop_instance,
	    DIMSE_PRIORITY_MEDIUM, &rq) < 0 ||
	    (len = dimse_cmd_encode(&rq, buf, sizeof(buf))) == 0 ||
	    len > sizeof(buf) || dicom_send_pdv(op->dc, pc->id, 1, 1,
	    buf, (uint32_t)len) < 0 || dicom_send_file_pdvs(op->dc,
	    pc->id, in->fd, off, in->bytes) < 0) {
		snprintf(why, cap, "cannot send from %.200s: %s", path,
		    errno ? strerror(errno) : "the association is not ready");
		return -1;
	}
	flow_charge(m, peer_named(m, s->b->target), in->bytes);
	return 1;
}

/* send_fill: C-STOREs up to the window; the end when none is left. */
static void
send_fill(struct mstudy *s)
{
	struct mig *m = s->b->op.m;
	unsigned win = send_window(s->op.dc);
	const struct conf_peer *t = peer_named(m, s->b->target);
	uint64_t wait;
	char why[300];

	while (s->nout < win && s->next < s->nin) {
		if ((wait = flow_ms(m, t)) > 0) {
			/* over the target's bandwidth: the next C-STORE
			 * goes when the bucket is out of debt (a response
			 * due sends nothing new meanwhile) */
			if (s->nout == 0) {
				if (s->pace == NULL && (s->pace = evtimer_new(
				    daemon_base(m->d), pace_fire, s)) == NULL)
					abort();
				net_timer_arm(s->pace, wait);
			}
			return;
		}
		if (send_one(s, &s->op, s->next++, 0, why, sizeof(why)) < 0) {
			send_end(s, 0, why);
			return;
		}
	}
	if (s->nout == 0)
		send_end(s, 1, NULL);
}

static void
pace_fire(evutil_socket_t fd, short ev, void *arg)
{
	struct mstudy *s = arg;

	(void)fd;
	(void)ev;
	if (s->op.dc != NULL && !s->b->op.m->draining)
		send_fill(s);
}

static void
send_ready(struct mop *op)
{
	struct mstudy *s = op->owner;

	s->next = 0;
	s->nout = 0;
	send_fill(s);
}

static void
send_failed(struct mop *op, const char *why)
{
	struct mstudy *s = op->owner;
	char w[300];

	snprintf(w, sizeof(w), "no association with the target: %s", why);
	send_end(s, 0, w);
}

static void
study_send(struct mstudy *s)
{
	struct mig *m = s->b->op.m;
	const struct conf_peer *t = peer_named(m, s->b->target);
	struct dicom_propose prop[DICOM_MAX_PCTX];
	int any = 0;
	unsigned np = send_props(s, prop, &any);
	char err[256];

	if (!any) {
		/* nothing to send (all present, quarantined, or received
		 * and released by another batch: those go back) */
		for (size_t i = 0; i < s->nin; i++)
			if (s->in[i].st == I_EXPECTED) {
				study_commit(s, S_RETRIEVING);
				return;
			}
		send_end(s, 1, NULL);
		return;
	}
	if (t == NULL) {
		study_fail_step(s, 1, "send", "the target peer is no longer "
		    "configured");
		return;
	}
	if (xform_due(s)) {
		xform_start(s);
		return;
	}
	if (t->export_path != NULL) {
		export_send(s, t);
		return;
	}
	memset(&s->op, 0, sizeof(s->op));
	s->op.m = m;
	s->op.owner = s;
	s->op.ready = send_ready;
	s->op.failed = send_failed;
	s->op.store_rsp = send_rsp;
	s->send_why[0] = '\0';
	s->nout = 0;
	np = with_find(t, prop, np);
	if (op_lease(&s->op, t, prop, np, err, sizeof(err)) < 0)
		send_end(s, 0, err);
}

/* ---------------------------------------------------------------------- */
/* Verifying at the target. */

/* ---- read-back: the target's copy fetched back and compared ---- */

static const char *const vlevel_names[] = { "bytes", "dataset", "pixel" };

/* sampled: whether sop is in the read-back sample of percent; the same
 * instances at every try and after a restart (FNV-1a of the UID). */
static int
sampled(const char *sop, unsigned percent)
{
	uint32_t h = 2166136261u;

	for (; *sop; sop++)
		h = (h ^ (uint8_t)*sop) * 16777619u;
	return h % 100 < percent;
}

static int
pre_one(void *arg, uint64_t seg, uint64_t off)
{
	struct minst *in = arg;

	if (in->npre == in->cappre) {
		unsigned cap = in->cappre ? 2 * in->cappre : 4;
		uint64_t (*v)[2] = realloc(in->pre, cap * sizeof(*v));

		if (v == NULL)
			abort();
		in->pre = v;
		in->cappre = cap;
	}
	in->pre[in->npre][0] = seg;
	in->pre[in->npre][1] = off;
	in->npre++;
	return 0;
}

struct newrec {
	struct minst	*in;
	int		 found;
	uint64_t	 seg, off;
	struct mig	*m;
	const char	*ae;		/* the target's: its copy only */
};

static int
new_one(void *arg, uint64_t seg, uint64_t off)
{
	struct newrec *n = arg;
	struct spool_info si;

	for (unsigned k = 0; k < n->in->npre; k++)
		if (n->in->pre[k][0] == seg && n->in->pre[k][1] == off)
			return 0;
	/* another batch's copy from elsewhere (its source) is not the
	 * target's answer, nor is one whose sender is not known */
	if (spool_get(n->m->st, seg, off, &si) == 1 &&
	    (strcmp(si.origin_ae, n->ae) != 0 ||
	    !spool_durable(n->m->sp, seg, off + si.len)))
		return 0;	/* (bytes being synced: when they are) */
	n->found = 1;
	n->seg = seg;
	n->off = off;
	return 0;
}

/* readback_compare: instance in came back (or not): its level, or the
 * quarantine. */
static void
readback_compare(struct mstudy *s, struct minst *in, const char *why)
{
	struct mig *m = s->b->op.m;
	const struct conf_peer *t = peer_named(m, s->b->target);
	struct newrec n = { in, 0, 0, 0, m, t != NULL ? t->ae_title : "" };
	struct spool_info src, got;
	char d[400], hs[65], ht[65];
	int level = -1, have_src;

	in->rb = 0;
	spool_each(m->st, in->sop, new_one, &n);
	if (!n.found || spool_get(m->st, n.seg, n.off, &got) != 1) {
		snprintf(d, sizeof(d), "the target did not return the instance "
		    "when it was read back%s%.300s", why ? ": " : "",
		    why ? why : "");
		quarantine(s, in, "verify_mismatch", d, 1);
		return;
	}
	memcpy(in->tsha, got.sha256, 32);
	in->has_tsha = 1;
	have_src = src_at(s, in, &src) == 1;
	if (in->has_ssha ? memcmp(in->ssha, got.sha256, 32) == 0 :
	    in->has_sha && memcmp(in->sha, got.sha256, 32) == 0)
		level = CONF_VLEVEL_BYTES;
	else if (in->has_ssha ? in->has_scanon && got.digest_ok &&
	    memcmp(in->scanon, got.canonical, 32) == 0 : have_src &&
	    src.digest_ok && got.digest_ok && memcmp(src.canonical,
	    got.canonical, 32) == 0)
		level = CONF_VLEVEL_DATASET;
	else if (have_src && src.digest_ok && got.digest_ok &&
	    src.has_pixels && got.has_pixels &&
	    memcmp(src.pixel, got.pixel, 32) == 0)
		level = CONF_VLEVEL_PIXEL;
	if (level >= 0 && t != NULL && level <= (int)t->verify_level) {
		in->st = I_VERIFIED;
		snprintf(in->level, sizeof(in->level), "%s",
		    vlevel_names[level]);
		proven_at(t, in);
		return;
	}
	hex_encode(in->has_ssha ? in->ssha : in->sha, 32, hs);
	hex_encode(got.sha256, 32, ht);
	snprintf(d, sizeof(d), "read back from the target, it matches %s "
	    "(required: %s); sent SHA-256 %s, target SHA-256 %s",
	    level < 0 ? "neither the bytes nor the dataset nor the pixels" :
	    vlevel_names[level], t ? vlevel_names[t->verify_level] : "?",
	    hs, ht);
	quarantine(s, in, "verify_mismatch", d, 1);
}

static void readback_next(struct mop *op);
static void readback_settle(evutil_socket_t fd, short evw, void *arg);

static void
readback_end(struct mstudy *s, int ok, const char *why)
{
	int any = 0;

	op_end(&s->op, ok, why ? why : "");
	if (!ok) {
		/* nothing may have come: try the whole step again, later */
		for (size_t i = 0; i < s->nin; i++)
			any |= s->in[i].rb;
		if (any) {
			for (size_t i = 0; i < s->nin; i++)
				s->in[i].rb = 0;
			study_fail_step(s, s->b->op.m ?
			    cf(s->b->op.m)->migration.send_attempts : 1,
			    "read-back from the target failed", why ? why :
			    "?");
			return;
		}
	}
	s->settle = 0;
	readback_settle(0, 0, s);
}

/* readback_settle: compare what came back once it is durable: copies
 * answered early (migration.retrieve_ack) may still be on their way to
 * the disk; the check is made again once they are (ws_add), or after a
 * second. */
static void
readback_settle(evutil_socket_t fd, short evw, void *arg)
{
	struct mstudy *s = arg;
	struct mig *m = s->b->op.m;
	const struct conf_peer *t = peer_named(m, s->b->target);
	size_t waiting = 0;

	(void)fd;
	if (m->draining)
		return;
	for (size_t i = 0; i < s->nin; i++)
		if (s->in[i].rb && !s->in[i].rbgot) {
			struct newrec n = { &s->in[i], 0, 0, 0, m, t != NULL ?
			    t->ae_title : "" };

			spool_each(m->st, s->in[i].sop, new_one, &n);
			if (n.found)
				s->in[i].rbgot = 1;
			else
				waiting++;
		}
	if (settle_wait(s, waiting, WS_READBACK, readback_settle))
		return;
	settle_done(s, "mig-readback-settled", waiting, evw);
	for (size_t i = 0; i < s->nin; i++)
		if (s->in[i].rb)
			readback_compare(s, &s->in[i], s->in[i].rbwhy[0] ?
			    s->in[i].rbwhy : NULL);
	verify_end(s);
}

static void
readback_done(struct mop *op, const struct dicom_qr_result *r)
{
	struct mstudy *s = op->owner;
	char why[300];
	int final, whole;

	if (!r->final || r->status != DIMSE_STATUS_SUCCESS)
		snprintf(why, sizeof(why), "%s", r->final ? dimse_status_name(
		    r->status) : r->why);
	else
		why[0] = '\0';
	final = r->final;	/* r goes with the operation */
	/* all of a list came (a target that does not take UID lists
	 * matches none or some of them): else each is asked alone */
	whole = r->final && r->status == DIMSE_STATUS_SUCCESS &&
	    (r->completed < 0 || r->completed >= (long)s->nrbg) &&
	    r->failed <= 0;
	if (final && !whole && s->nrbg > 1)
		log_info("mig-readback-list", "batch=%llu study=%s asked=%u "
		    "completed=%ld status=%s action=%s", (unsigned long long)
		    s->b->id, s->uid, s->nrbg, r->completed, log_q(why[0] ?
		    why : "Success"), log_q("each asked for alone"));
	dicom_qr_free(op->qr);
	if (!final || op->l == NULL) {
		readback_end(s, 0, why);
		return;
	}
	for (unsigned k = 0; k < s->nrbg; k++) {
		struct minst *in = &s->in[s->rbg[k]];

		if (in->rbask == 1 && s->nrbg > 1 && !whole)
			in->rbask = 2;
		else	/* compared at the end, with the final status as
			 * the why */
			snprintf(in->rbwhy, sizeof(in->rbwhy), "%.95s", why);
	}
	readback_next(op);
}

/*
 * readback_next: the next retrieve of the read-back: up to RB_GROUP
 * instances of one series not asked for yet, in one IMAGE-level retrieve
 * with a list of their SOP Instance UIDs (one round trip where there were
 * as many); then, one at a time, those of a list that did not all come.
 */
static void
readback_next(struct mop *op)
{
	struct mstudy *s = op->owner;
	const struct conf_peer *t = peer_named(op->m, s->b->target);
	int get = t != NULL && t->retrieve == CONF_RETRIEVE_GET;
	struct dimse_ident *id;
	const char *series = NULL;
	char uids[DIMSE_IDENT_VALUE_MAX + 1], err[256];
	size_t ul = 0;

	s->nrbg = 0;
	uids[0] = '\0';
	for (size_t i = 0; i < s->nin && s->nrbg < RB_GROUP; i++) {
		struct minst *in = &s->in[i];
		size_t l = strlen(in->sop);

		if (!in->rb || in->rbask != 0 || (series != NULL &&
		    strcmp(in->series, series) != 0) || ul + l + 1 >
		    sizeof(uids) - 1)
			continue;
		series = in->series;
		ul += (size_t)snprintf(uids + ul, sizeof(uids) - ul, "%s%s",
		    ul > 0 ? "\\" : "", in->sop);
		in->rbask = 1;
		s->rbg[s->nrbg++] = i;
	}
	for (size_t i = 0; i < s->nin && s->nrbg == 0; i++)
		if (s->in[i].rb && s->in[i].rbask == 2) {
			s->in[i].rbask = 3;
			s->rbg[s->nrbg++] = i;
			series = s->in[i].series;
			snprintf(uids, sizeof(uids), "%s", s->in[i].sop);
		}
	if (s->nrbg == 0) {
		readback_end(s, 1, NULL);
		return;
	}
	if ((id = malloc(sizeof(*id))) == NULL)
		abort();
	dimse_ident_init(id);
	ident_set(id, DIMSE_TAG_QR_LEVEL, "IMAGE");
	ident_set(id, TAG_STUDY_UID, s->uid);
	ident_set(id, TAG_SERIES_UID, series);
	ident_set(id, TAG_SOP_INST, uids);
	if (op_qr(op, get ? DICOM_QR_GET : DICOM_QR_MOVE, get ?
	    DICOM_QR_STUDY_GET : DICOM_QR_STUDY_MOVE, id, err,
	    sizeof(err)) < 0) {
		free(id);
		readback_end(s, 0, err);
		return;
	}
	free(id);
}

static void
readback_ready(struct mop *op)
{
	if (!hold_back(op, readback_next))
		readback_next(op);
}

static void
readback_failed(struct mop *op, const char *why)
{
	char w[300];

	snprintf(w, sizeof(w), "no association with the target: %s", why);
	readback_end(op->owner, 0, w);
}

/* readback_start: fetch the instances marked rb back from the target (to
 * our AE, as a retrieve from a source), then compare each. */
static void
readback_start(struct mstudy *s)
{
	struct mig *m = s->b->op.m;
	const struct conf_peer *t = peer_named(m, s->b->target);
	struct dicom_propose prop[DICOM_MAX_PCTX];
	unsigned np = 0;
	char err[256];

	memset(prop, 0, sizeof(prop));
	for (size_t i = 0; i < s->nin; i++)
		if (s->in[i].rb) {
			s->in[i].npre = 0;
			s->in[i].rbask = 0;
			s->in[i].rbgot = 0;
			s->in[i].rbwhy[0] = '\0';
			spool_each(m->st, s->in[i].sop, pre_one, &s->in[i]);
		}
	memset(&s->op, 0, sizeof(s->op));
	s->op.m = m;
	s->op.owner = s;
	s->op.ready = readback_ready;
	s->op.failed = readback_failed;
	s->op.done = readback_done;
	s->imiss = 0;
	np = retrieve_props(t, s, 1, prop);
	if (op_lease(&s->op, t, prop, np, err, sizeof(err)) < 0)
		readback_end(s, 0, err);
}

/* ---- storage commitment: the target takes responsibility ---- */

static void
commit_answered(void *arg, uint16_t status)
{
	struct mstudy *s = arg;

	/* the report may come on an association of the target's own; ours
	 * goes back to the pool (a report on it reaches the services too) */
	if (status == DIMSE_STATUS_SUCCESS && s->op.l != NULL) {
		dicom_lease_return(s->op.l);
		s->op.l = NULL;
		s->op.dc = NULL;
	}
}

static void
commit_done(void *arg, const struct dicom_commit_result *r)
{
	struct mstudy *s = arg;
	struct mig *m = s->b->op.m;
	const struct dimse_commit_report *rep = r->report;
	char why[300], d[300];

	if (rep == NULL) {
		snprintf(why, sizeof(why), "%s", r->why[0] ? r->why :
		    "no report");
		op_end(&s->op, 0, why);
		/* nothing is said of the instances: ask again later */
		study_fail_step(s, cf(m)->migration.send_attempts,
		    "storage commitment", why);
		return;
	}
	for (size_t i = 0; i < s->nin; i++) {
		struct minst *in = &s->in[i];
		const struct dimse_commit_ref *f = NULL;

		if (!in->rb)
			continue;
		in->rb = 0;
		for (size_t k = 0; k < rep->n && f == NULL; k++)
			if (strcmp(rep->refs[k].sop_instance, in->sop) == 0)
				f = &rep->refs[k];
		if (f != NULL && !f->failed) {
			in->committed = 1;
			in->dirty = in->ended = 1;	/* (proven) */
			continue;
		}
		if (f != NULL)
			snprintf(d, sizeof(d), "the target's storage commitment "
			    "report lists it failed: 0x%04x (%s)", f->reason,
			    dimse_commit_reason_name(f->reason));
		else
			snprintf(d, sizeof(d), "the target's storage commitment "
			    "report (transaction %.64s) does not name it",
			    rep->transaction);
		quarantine(s, in, "commit_failed", d, 1);
	}
	op_end(&s->op, s->op.l != NULL, "");	/* frees the commitment */
	study_finish(s);
}

static const struct dicom_commit_user commit_user = {
	.answered = commit_answered,
	.done = commit_done,
};

static void
commit_ready(struct mop *op)
{
	struct mstudy *s = op->owner;
	struct mig *m = op->m;
	struct dimse_commit_ref *refs = calloc(s->nin ? s->nin : 1,
	    sizeof(*refs));
	size_t n = 0;
	char err[256];

	if (refs == NULL)
		abort();
	for (size_t i = 0; i < s->nin; i++)
		if (s->in[i].rb) {
			snprintf(refs[n].sop_class, sizeof(refs[n].sop_class),
			    "%s", s->in[i].cls);
			snprintf(refs[n].sop_instance,
			    sizeof(refs[n].sop_instance), "%s", s->in[i].sop);
			n++;
		}
	op->cm = dicom_commit_start(op->dc, refs, n, ++op->msgid,
	    cf(m)->limits.dimse_ms, cf(m)->limits.commit_ms, &commit_user, s,
	    err, sizeof(err));
	free(refs);
	if (op->cm == NULL) {
		for (size_t i = 0; i < s->nin; i++)
			s->in[i].rb = 0;
		op_end(op, 0, err);
		study_fail_step(s, cf(m)->migration.send_attempts,
		    "storage commitment", err);
	}
}

static void
commit_failed(struct mop *op, const char *why)
{
	struct mstudy *s = op->owner;
	char w[300];

	for (size_t i = 0; i < s->nin; i++)
		s->in[i].rb = 0;
	snprintf(w, sizeof(w), "no association with the target: %s", why);
	study_fail_step(s, cf(op->m)->migration.send_attempts,
	    "storage commitment", w);
}

/* verify_end: the verification of the study is done; with the target's
 * commit, the instances it holds are first put under its storage
 * commitment (those it fails or does not name are quarantined
 * commit_failed), then the study ends. */
static void
verify_end(struct mstudy *s)
{
	static const struct dicom_propose prop = { DIMSE_COMMIT_CLASS,
		{ TS_ELE, TS_ILE }, 2, 0 };
	struct mig *m = s->b->op.m;
	const struct conf_peer *t = peer_named(m, s->b->target);
	size_t n = 0;
	char err[256];

	if (t == NULL || !t->commit) {
		study_finish(s);
		return;
	}
	for (size_t i = 0; i < s->nin; i++) {
		struct minst *in = &s->in[i];

		in->rb = !in->committed && (in->st == I_VERIFIED ||
		    in->st == I_SENT);
		n += in->rb;
	}
	if (n == 0) {
		study_finish(s);
		return;
	}
	memset(&s->op, 0, sizeof(s->op));
	s->op.m = m;
	s->op.owner = s;
	s->op.ready = commit_ready;
	s->op.failed = commit_failed;
	if (op_lease(&s->op, t, &prop, 1, err, sizeof(err)) < 0)
		commit_failed(&s->op, err);
}

static void
verify_then(struct mig *m, void *arg, int ok, const char *why)
{
	struct mstudy *s = arg;
	const struct conf_peer *t = peer_named(m, s->b->target);
	int rb = 0;

	if (!ok) {
		study_fail_step(s, cf(m)->migration.send_attempts,
		    "verification query at the target failed", why);
		scan_free(&s->sc);
		return;
	}
	for (size_t i = 0; i < s->nin; i++) {
		struct minst *in = &s->in[i];

		if (in->st != I_SENT)
			continue;
		if (!found_has(&s->sc, in->sop))
			quarantine(s, in, "verify_mismatch", "the target "
			    "answered the C-STORE with success but an "
			    "IMAGE-level C-FIND there does not find the "
			    "instance", 1);
		else if (t != NULL && t->verify == CONF_VERIFY_READBACK &&
		    sampled(in->sop, t->readback_percent))
			rb = in->rb = 1;	/* counted; now compared */
		else {
			in->st = I_VERIFIED;
			snprintf(in->level, sizeof(in->level), "count");
			proven_at(t, in);
		}
	}
	scan_free(&s->sc);
	if (rb)
		readback_start(s);
	else
		verify_end(s);
}

/* ---------------------------------------------------------------------- */
/* Transforms: the patient-ID crosswalk of HL7 ADT^A40 merges (src/hl7in.c
 * keeps ("xw", source, old ID) -> {"new", "control_id"} in the HL7 column
 * family: an ID is its source's).
 * A study whose source PatientID was merged into another is sent with
 * PatientID rewritten: each instance is edited (src/mig/mig_export.c,
 * EDIT) into a copy of its own under <spool>/xform, which is what goes
 * to the target; the sent hash and canonical digest are the copy's, and
 * verification compares the target with those. The decision is taken
 * once, when the study first goes to sending, and kept in its row: a
 * merge that comes later is not applied to a study already sent or half
 * sent (the HL7 inbox record lists those batches instead). */

static void
xform_path(const struct mstudy *s, const struct minst *in, char *out,
    size_t cap)
{
	int n = snprintf(out, cap, "%s/%" PRIu64 "-%s.ds", s->b->op.m->xdir,
	    s->b->id, in->sop);

	if (n < 0 || (size_t)n >= cap)
		out[0] = '\0';	/* an open that fails: retried, then failed */
}

/* xw_decide: follow the crosswalk from the study's PatientID (merges of
 * merges too, up to 8 steps); -1 when it cannot be read. */
static int
xw_decide(struct mstudy *s)
{
	struct mig *m = s->b->op.m;
	char cur[65];
	int hops;

	snprintf(cur, sizeof(cur), "%s", s->pid);
	s->xw[0] = s->xwctl[0] = '\0';
	for (hops = 0; cur[0] != '\0' && hops < 8; hops++) {
		struct store_key k;
		void *v;
		size_t vn;
		json_t *j;
		const char *to;
		int r;

		hl7in_xw_key(&k, s->b->source, cur);	/* its source's IDs */
		if ((r = store_get(m->st, STORE_CF_HL7, k.b, k.len, &v, &vn)) <
		    0)
			return -1;
		if (r == 0)
			break;
		j = json_loadb(v, vn, 0, NULL);
		free(v);
		to = json_string_value(json_object_get(j, "new"));
		if (to == NULL || to[0] == '\0' || strcmp(to, s->pid) == 0) {
			json_decref(j);
			break;
		}
		snprintf(s->xw, sizeof(s->xw), "%.64s", to);
		snprintf(s->xwctl, sizeof(s->xwctl), "%.63s", json_string_value(
		    json_object_get(j, "control_id")) ?: "");
		jw_utf8_scrub(s->xwctl);	/* (the cut may split one) */
		snprintf(cur, sizeof(cur), "%s", s->xw);
		json_decref(j);
	}
	s->xw_set = 1;
	if (s->xw[0] != '\0')
		log_info("mig-crosswalk", "batch=%llu study=%s merge=%s "
		    "hops=%d action=%s", (unsigned long long)s->b->id, s->uid,
		    log_q(s->xwctl), hops, "PatientID rewritten on the way");
	return 0;
}

/* xform_due: instances to be edited before the send (the decision is
 * taken here the first time). */
static int
xform_due(struct mstudy *s)
{
	struct mig *m = s->b->op.m;

	if (!s->xw_set && xw_decide(s) < 0) {
		log_err("mig-crosswalk-unreadable", "batch=%llu study=%s "
		    "error=%s action=%s", (unsigned long long)s->b->id, s->uid,
		    log_q(store_error(m->st)), "sent as it is");
		s->xw_set = 1;
	}
	if (s->xw[0] == '\0')
		return 0;
	for (size_t i = 0; i < s->nin; i++)
		if (s->in[i].st == I_RECEIVED && !s->in[i].xready &&
		    !s->in[i].rel_by[0] &&
		    s->in[i].attempts < cf(m)->migration.send_attempts)
			return 1;
	return 0;
}

/* xform_clean: the edited copies are not needed any more. */
static void
xform_clean(struct mstudy *s)
{
	char path[4096];

	for (size_t i = 0; i < s->nin; i++)
		if (s->in[i].xready) {
			xform_path(s, &s->in[i], path, sizeof(path));
			unlink(path);
			s->in[i].xready = 0;
		}
}

static void study_send(struct mstudy *s);

static void
xform_done(void *arg, struct mig_xjob *j)
{
	struct mstudy *s = arg;

	for (size_t k = 0; k < j->n; k++) {
		struct mig_xfile *f = &j->f[k];
		struct minst *in = &s->in[f->idx];

		in->dirty = 1;
		if (f->rc != 0) {
			quarantine(s, in, "transform_error", f->why, 1);
			continue;
		}
		in->xready = in->has_ssha = 1;
		memcpy(in->ssha, f->sha, 32);
		in->has_scanon = f->canon_ok;
		memcpy(in->scanon, f->canon, 32);
	}
	study_send(s);
}

static void
xform_start(struct mstudy *s)
{
	struct mig *m = s->b->op.m;
	struct mig_xjob *j;
	struct spool_info si;
	size_t n = 0;

	for (size_t i = 0; i < s->nin; i++)
		n += s->in[i].st == I_RECEIVED;
	j = mig_xjob_new(MIG_X_EDIT, m->xdir, 0, n);
	j->n = 0;
	for (size_t i = 0; i < s->nin; i++) {
		struct minst *in = &s->in[i];
		struct mig_xfile *f;

		if (in->st != I_RECEIVED || in->xready || in->rel_by[0] ||
		    in->attempts >= cf(m)->migration.send_attempts)
			continue;
		if (src_at(s, in, &si) != 1) {
			in->st = I_EXPECTED;	/* released: fetch again */
			in->dirty = 1;
			continue;
		}
		f = &j->f[j->n++];
		spool_seg_path(m->sp, si.seg, f->src, sizeof(f->src));
		f->off = si.off + si.data_off;
		f->len = si.len - si.data_off;
		snprintf(f->ts, sizeof(f->ts), "%s", si.ts_uid);
		snprintf(f->sop, sizeof(f->sop), "%s", in->sop);
		f->set_tag = TAG_PATIENT_ID;
		snprintf(f->set_val, sizeof(f->set_val), "%s", s->xw);
		xform_path(s, in, f->dst, sizeof(f->dst));
		f->idx = i;
	}
	j->done = xform_done;
	j->arg = s;
	mig_export_submit(m->xp, j);
}

/* ---------------------------------------------------------------------- */
/* File-system export targets (exports:, src/mig/mig_export.h): the send
 * writes Part 10 files on the export thread, the verification reads
 * them back from the disk. */

/* export_preflight: a file already under an instance's name is present
 * (it was written whole and renamed: see mig_export.c). */
static void
export_preflight(struct mstudy *s, const struct conf_peer *t)
{
	char path[8192];
	struct stat sb;

	for (size_t i = 0; i < s->nin; i++) {
		struct minst *in = &s->in[i];

		if (in->st != I_EXPECTED || in->again ||
		    mig_export_path(t->export_path,
		    s->uid, in->series, in->sop, path, sizeof(path)) < 0 ||
		    stat(path, &sb) < 0 || !S_ISREG(sb.st_mode))
			continue;
		in->st = I_PRESENT;
		snprintf(in->level, sizeof(in->level), "file");
		in->dirty = in->ended = 1;
	}
	s->attempts = 0;
	study_commit(s, S_RETRIEVING);
}

static void
export_sent(void *arg, struct mig_xjob *j)
{
	struct mstudy *s = arg;
	struct mig *m = s->b->op.m;
	char d[400];

	for (size_t k = 0; k < j->n; k++) {
		struct mig_xfile *f = &j->f[k];
		struct minst *in = &s->in[f->idx];

		in->dirty = 1;
		if (f->rc == 0) {
			in->st = I_SENT;
			in->bytes = f->len;
			s->b->bytes += f->len;
			continue;
		}
		if (f->permanent) {	/* no retry helps (not any EINVAL:
					 * an fsync the file system does
					 * not do gives one too) */
			quarantine(s, in, "target_rejected", f->why, 1);
			continue;
		}
		in->attempts++;
		snprintf(s->send_why, sizeof(s->send_why), "%.190s", f->why);
		if (in->attempts >= cf(m)->migration.send_attempts) {
			snprintf(d, sizeof(d), "not written after %u attempts: "
			    "%.300s", in->attempts, f->why);
			in->st = I_FAILED;
			snprintf(in->reason, sizeof(in->reason),
			    "target_unavailable");
			snprintf(in->detail, sizeof(in->detail), "%.319s", d);
			in->ended = 1;
		}
	}
	send_end(s, 1, NULL);
}

static void
export_send(struct mstudy *s, const struct conf_peer *t)
{
	struct mig *m = s->b->op.m;
	struct mig_xjob *j;
	struct spool_info si;
	size_t n = 0;
	uint64_t bytes = 0;

	for (size_t i = 0; i < s->nin; i++)
		n += s->in[i].st == I_RECEIVED;
	j = mig_xjob_new(MIG_X_WRITE, t->export_path, t->export_fsync, n);
	j->n = 0;
	for (size_t i = 0; i < s->nin; i++) {
		struct minst *in = &s->in[i];
		struct mig_xfile *f;

		if (in->st != I_RECEIVED || in->attempts >=
		    cf(m)->migration.send_attempts)
			continue;
		if (src_at(s, in, &si) != 1) {
			/* released meanwhile: fetch it again */
			in->st = I_EXPECTED;
			in->dirty = 1;
			continue;
		}
		f = &j->f[j->n++];
		spool_seg_path(m->sp, si.seg, f->src, sizeof(f->src));
		f->off = si.off + si.data_off;
		f->len = si.len - si.data_off;
		if (in->xready) {
			struct stat sb;

			xform_path(s, in, f->src, sizeof(f->src));
			f->off = 0;
			f->len = stat(f->src, &sb) == 0 ? (uint64_t)sb.st_size :
			    0;
		}
		snprintf(f->cls, sizeof(f->cls), "%s", si.sop_class);
		snprintf(f->sop, sizeof(f->sop), "%s", in->sop);
		snprintf(f->ts, sizeof(f->ts), "%s", si.ts_uid);
		snprintf(f->study, sizeof(f->study), "%s", s->uid);
		snprintf(f->series, sizeof(f->series), "%s", in->series);
		f->idx = i;
		bytes += f->len;
	}
	flow_charge(m, t, bytes);
	s->send_why[0] = '\0';
	memset(&s->op, 0, sizeof(s->op));
	s->op.m = m;
	s->op.owner = s;
	s->nout = 0;
	j->done = export_sent;
	j->arg = s;
	mig_export_submit(m->xp, j);
}

static void
export_checked(void *arg, struct mig_xjob *j)
{
	struct mstudy *s = arg;
	char d[400], hs[65], ht[65];

	for (size_t k = 0; k < j->n; k++) {
		struct mig_xfile *f = &j->f[k];
		struct minst *in = &s->in[f->idx];

		if (f->rc != 0) {
			snprintf(d, sizeof(d), "the exported file cannot be "
			    "read back: %.300s", f->why);
			quarantine(s, in, "verify_mismatch", d, 1);
			continue;
		}
		memcpy(in->tsha, f->sha, 32);
		in->has_tsha = 1;
		if (in->has_ssha ? memcmp(in->ssha, f->sha, 32) == 0 :
		    in->has_sha && memcmp(in->sha, f->sha, 32) == 0) {
			in->st = I_VERIFIED;
			snprintf(in->level, sizeof(in->level), "bytes");
			in->dirty = in->ended = 1;
			continue;
		}
		hex_encode(in->has_ssha ? in->ssha : in->sha, 32, hs);
		hex_encode(f->sha, 32, ht);
		snprintf(d, sizeof(d), "the exported file's dataset, read back "
		    "from the disk, differs from what was written: sent SHA-256 "
		    "%s, file %s", in->has_sha || in->has_ssha ? hs : "unknown",
		    ht);
		quarantine(s, in, "verify_mismatch", d, 1);
	}
	verify_end(s);
}

static void
export_verify(struct mstudy *s, const struct conf_peer *t)
{
	struct mig *m = s->b->op.m;
	struct mig_xjob *j;
	size_t n = 0;

	for (size_t i = 0; i < s->nin; i++)
		n += s->in[i].st == I_SENT;
	j = mig_xjob_new(MIG_X_CHECK, t->export_path, 0, n);
	j->n = 0;
	for (size_t i = 0; i < s->nin; i++) {
		struct mig_xfile *f;

		if (s->in[i].st != I_SENT)
			continue;
		f = &j->f[j->n++];
		snprintf(f->sop, sizeof(f->sop), "%s", s->in[i].sop);
		snprintf(f->study, sizeof(f->study), "%s", s->uid);
		snprintf(f->series, sizeof(f->series), "%s",
		    s->in[i].series);
		f->idx = i;
	}
	j->done = export_checked;
	j->arg = s;
	mig_export_submit(m->xp, j);
}

/* ---------------------------------------------------------------------- */
/* A study's next step. */

static void
study_step(struct mstudy *s)
{
	struct mig *m = s->b->op.m;
	const struct conf_peer *src = peer_named(m, s->b->source),
	    *tgt = peer_named(m, s->b->target);

	if (s->stale) {
		if (study_reread(s) != 0) {
			study_fail_step(s, cf(m)->migration.send_attempts,
			    "state", store_read_error(m->st));
			return;
		}
		s->stale = 0;
	}
	if (s->st >= S_PREFLIGHT && study_load(s) < 0) {
		study_fail_step(s, cf(m)->migration.send_attempts, "state",
		    store_error(m->st));
		return;
	}
	if (src == NULL || tgt == NULL) {
		s->loaded = 1;
		snprintf(s->reason, sizeof(s->reason), "peer \"%s\" is no "
		    "longer configured", src == NULL ? s->b->source :
		    s->b->target);
		s->ended = 1;
		study_commit(s, S_FAILED);
		return;
	}
	if (flow_of(m, src)->first_ms == 0)
		flow_of(m, src)->first_ms = net_now_ms();
	if (flow_of(m, tgt)->first_ms == 0)
		flow_of(m, tgt)->first_ms = net_now_ms();
	if (!s->src_held && (s->st <= S_QUERYING || s->st == S_RETRIEVING)) {
		flow_of(m, src)->active++;
		s->src_held = 1;
	}
	switch (s->st) {
	case S_QUEUED:
	case S_QUERYING:
		if (s->push) {
			/* what came is what is expected: the source is not
			 * asked (a push source may not answer C-FIND) */
			s->st = S_PREFLIGHT;
			study_step(s);
			return;
		}
		s->st = S_QUERYING;
		scan_start(s, src, 1, query_then);
		break;
	case S_PREFLIGHT:
		if (s->b->force || tgt->verify == CONF_VERIFY_NONE) {
			s->st = S_RETRIEVING;
			if (!study_may_step(m, s)) {
				/* the source's window closed, or it was
				 * paused, since this step was given a slot */
				s->active = 0;
				m->active--;
				soon(m);
				return;
			}
			study_step(s);
			return;
		}
		if (tgt->export_path != NULL)
			export_preflight(s, tgt);
		else
			scan_start(s, tgt, 0, preflight_then);
		break;
	case S_RETRIEVING:
		study_retrieve(s);
		break;
	case S_SENDING:
		study_send(s);
		break;
	case S_VERIFYING:
		if (tgt->verify == CONF_VERIFY_NONE) {
			/* nothing to ask the target; its storage commitment,
			 * if it takes it (what is not sent yet goes first) */
			int unsent = 0;

			for (size_t i = 0; i < s->nin; i++)
				unsent |= s->in[i].st == I_RECEIVED ||
				    s->in[i].st == I_EXPECTED;
			if (unsent) {
				send_end(s, 1, NULL);
				return;
			}
			status_proven(s);
			verify_end(s);
			return;
		}
		if (tgt->export_path != NULL)
			export_verify(s, tgt);
		else
			scan_start(s, tgt, 0, verify_then);
		break;
	default:
		s->active = 0;
		m->active--;
		break;
	}
}

/* ---------------------------------------------------------------------- */
/* Batches. */

static struct mbatch *
batch_find(struct mig *m, uint64_t id)
{
	for (struct mbatch *b = m->bhash[id % m->nbhash]; b != NULL;
	    b = b->hnext)
		if (b->id == id)
			return b;
	return NULL;
}

/* bhash_add: b into the id hash, which doubles once it holds twice as
 * many batches as buckets (a backlog of 100,000 HL7 orders made chains
 * of 25 in a fixed table: 7% of the reactor in cache misses). */
static void
bhash_add(struct mig *m, struct mbatch *b)
{
	if (m->nbatch >= 2 * m->nbhash) {
		size_t n = 2 * m->nbhash;
		struct mbatch **h = calloc(n, sizeof(*h)), *x, *next;

		if (h == NULL)
			abort();
		for (size_t i = 0; i < m->nbhash; i++)
			for (x = m->bhash[i]; x != NULL; x = next) {
				next = x->hnext;
				x->hnext = h[x->id % n];
				h[x->id % n] = x;
			}
		free(m->bhash);
		m->bhash = h;
		m->nbhash = n;
	}
	b->hnext = m->bhash[b->id % m->nbhash];
	m->bhash[b->id % m->nbhash] = b;
	m->nbatch++;
}

/* batch_place: put b into the scheduling order (higher priority first,
 * then oldest first), searching from the tail, where a new batch almost
 * always goes, so a feed of thousands of batches costs O(1) each. */
static void
batch_place(struct mig *m, struct mbatch *b)
{
	struct mbatch *a = m->btail;

	while (a != NULL && (a->prio < b->prio || (a->prio == b->prio &&
	    a->id > b->id)))
		a = a->prev;
	b->prev = a;
	b->next = a != NULL ? a->next : m->batches;
	if (b->next != NULL)
		b->next->prev = b;
	else
		m->btail = b;
	if (a != NULL)
		a->next = b;
	else
		m->batches = b;
}

static void
batch_unplace(struct mig *m, struct mbatch *b)
{
	if (b->prev != NULL)
		b->prev->next = b->next;
	else
		m->batches = b->next;
	if (b->next != NULL)
		b->next->prev = b->prev;
	else
		m->btail = b->prev;
	b->next = b->prev = NULL;
}

static struct mstudy *
study_add(struct mbatch *b, const char *uid)
{
	struct mstudy *s;

	for (size_t i = 0; i < b->nst; i++)
		if (strcmp(b->st[i]->uid, uid) == 0)
			return NULL;
	if (b->nst == b->capst) {
		size_t cap = b->capst ? 2 * b->capst : 8;
		struct mstudy **v = realloc(b->st, cap * sizeof(*v));

		if (v == NULL)
			abort();
		b->st = v;
		b->capst = cap;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		abort();
	s->b = b;
	snprintf(s->uid, sizeof(s->uid), "%s", uid);
	s->source_count = -1;
	s->last_status = -1;
	iso_now(s->created);
	b->st[b->nst++] = s;
	return s;
}

/* study_row_apply: a study's fields from its row J (state ST). */
static void
study_row_apply(struct mstudy *s, json_t *j, int st)
{
	json_t *c, *v;

	s->st = st;
	s->attempts = (unsigned)json_integer_value(json_object_get(j,
	    "attempts"));
	s->round = (unsigned)json_integer_value(json_object_get(j,
	    "retrieve_round"));
	if ((v = json_object_get(j, "source_count")) != NULL &&
	    json_is_integer(v))
		s->source_count = (long)json_integer_value(v);
	snprintf(s->reason, sizeof(s->reason), "%s", json_string_value(
	    json_object_get(j, "reason")) ?: "");
	snprintf(s->acc, sizeof(s->acc), "%s", json_string_value(
	    json_object_get(j, "accession_number")) ?: "");
	snprintf(s->modalities, sizeof(s->modalities), "%.32s",
	    json_string_value(json_object_get(j, "modalities")) ?: "");
	snprintf(s->year, sizeof(s->year), "%.4s", json_string_value(
	    json_object_get(j, "study_year")) ?: "");
	snprintf(s->created, sizeof(s->created), "%s", json_string_value(
	    json_object_get(j, "created")) ?: "");
	snprintf(s->pid, sizeof(s->pid), "%.64s", json_string_value(
	    json_object_get(j, "patient_id")) ?: "");
	s->push = json_is_true(json_object_get(j, "push"));
	if (s->push && s->st == S_QUEUED)
		/* push_stable again from the start: the rest of it may
		 * come once the sender finds us back */
		s->push_at = net_now_ms();
	snprintf(s->date, sizeof(s->date), "%.8s", json_string_value(
	    json_object_get(j, "study_date")) ?: "");
	if ((v = json_object_get(j, "crosswalk")) != NULL) {
		s->xw_set = 1;
		snprintf(s->xw, sizeof(s->xw), "%.64s", json_string_value(
		    json_object_get(v, "patient_id")) ?: "");
		snprintf(s->xwctl, sizeof(s->xwctl), "%.63s",
		    json_string_value(json_object_get(v,
		    "merge_control_id")) ?: "");
	}
	c = json_object_get(j, "counts");
	s->counts[I_PRESENT] = (uint64_t)json_integer_value(json_object_get(c,
	    "present"));
	s->counts[I_RECEIVED] = (uint64_t)json_integer_value(
	    json_object_get(c, "received"));
	s->counts[I_SENT] = (uint64_t)json_integer_value(json_object_get(c,
	    "sent"));
	s->counts[I_VERIFIED] = (uint64_t)json_integer_value(
	    json_object_get(c, "verified"));
	s->counts[I_QUARANTINED] = (uint64_t)json_integer_value(
	    json_object_get(c, "quarantined"));
	s->counts[I_FAILED] = (uint64_t)json_integer_value(json_object_get(c,
	    "failed"));
	s->counts[I_EXPECTED] = (uint64_t)json_integer_value(
	    json_object_get(c, "expected"));
	for (int i = 1; i < I__N; i++)
		s->counts[I_EXPECTED] -= s->counts[I_EXPECTED] >= s->counts[i] ?
		    s->counts[i] : s->counts[I_EXPECTED];
}

/* study_row_decode: a study row and its state (*ST), or NULL when it
 * does not decode or names no known state. */
static json_t *
study_row_decode(const void *v, size_t n, int *st)
{
	json_t *j = json_loadb(v, n, 0, NULL);

	*st = name_index(sst_names, S__N, json_string_value(json_object_get(j,
	    "state")));
	if (j != NULL && *st < 0) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* study_reread: the study as its row says (after a unit of it failed:
 * what it did in memory was never written). 0; 1 when it has no row (it
 * was never written: what is in memory is all there is); -1 when the row
 * cannot be read. */
static int
study_reread(struct mstudy *s)
{
	struct mig *m = s->b->op.m;
	struct store_key k;
	void *v;
	size_t vn;
	json_t *j;
	int st, r;

	study_key(&k, s->b->id, s->uid);
	if ((r = store_get(m->st, STORE_CF_STUDIES, k.b, k.len, &v, &vn)) !=
	    1)
		return r == 0 ? 1 : -1;
	j = study_row_decode(v, vn, &st);
	free(v);
	if (j == NULL)
		return -1;
	study_row_apply(s, j, st);
	json_decref(j);
	return 0;
}

static int
load_study_one(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct mbatch *b = arg;
	int st;
	json_t *j = study_row_decode(val, vlen, &st);
	const char *uid = json_string_value(json_object_get(j, "study_uid"));
	struct mstudy *s;

	(void)key;
	(void)klen;
	if (j == NULL || uid == NULL || (s = study_add(b, uid)) == NULL) {
		log_err("mig-row-bad", "batch=%llu what=%s",
		    (unsigned long long)b->id, "a study row does not decode; "
		    "skipped");
		json_decref(j);
		return 0;
	}
	study_row_apply(s, j, st);
	json_decref(j);
	return 0;
}

static void
batch_free(struct mbatch *b)
{
	for (size_t i = 0; i < b->nst; i++) {
		struct mstudy *s = b->st[i];

		op_end(&s->op, 0, "shutting down");
		op_end(&s->eop, 0, "shutting down");
		if (s->early)
			rs_remove(b->op.m, s);
		ws_remove(b->op.m, s);
		scan_free(&s->sc);
		if (s->pace != NULL)
			event_free(s->pace);
		if (s->settle_ev != NULL)
			event_free(s->settle_ev);
		for (size_t k = 0; k < s->nin; k++)
			if (s->in[k].fd >= 0)
				close(s->in[k].fd);
		insts_free(s);
		free(s);
	}
	op_end(&b->op, 0, "shutting down");
	json_decref(b->todo);
	json_decref(b->unresolved);
	json_decref(b->found);
	free(b->st);
	free(b);
}

/* The order studies are worked in: by StudyDate, oldest or newest first
 * (migration.order, or the batch's own), unknown dates last, then by
 * UID so that the order is the same after a restart. */
static int
by_date(const void *a, const void *b, int newest)
{
	const struct mstudy *x = *(struct mstudy *const *)a;
	const struct mstudy *y = *(struct mstudy *const *)b;
	int c;

	if ((x->date[0] == '\0') != (y->date[0] == '\0'))
		return x->date[0] == '\0' ? 1 : -1;
	c = strcmp(x->date, y->date);
	if (newest)
		c = -c;
	return c != 0 ? c : strcmp(x->uid, y->uid);
}

static int
date_older(const void *a, const void *b)
{
	return by_date(a, b, 0);
}

static int
date_newer(const void *a, const void *b)
{
	return by_date(a, b, 1);
}

static void
batch_sort(struct mbatch *b)
{
	if (b->nst > 1)
		qsort(b->st, b->nst, sizeof(*b->st), b->newest ? date_newer :
		    date_older);
}

/* batch_apply: (re)load the engine's view of batch id from its record. */
static void
batch_apply(struct mig *m, uint64_t id, const struct mig_brec *r)
{
	struct mbatch *b = batch_find(m, id);
	int fresh = 0;

	if (id > m->max_id)
		m->max_id = id;
	if (r->state == NULL)
		return;
	if (b == NULL) {
		struct store_key k;

		if (strcmp(r->state, "queued") != 0 && strcmp(r->state,
		    "running") != 0 && strcmp(r->state, "paused") != 0 &&
		    (strcmp(r->state, "cancelled") != 0 || r->finished))
			return;		/* ended before this start (a cancel
					 * that did not end its studies, and
					 * write its counts, goes on) */
		if ((b = calloc(1, sizeof(*b))) == NULL)
			abort();
		b->id = id;
		b->op.m = m;
		study_key(&k, id, NULL);
		/* studies are written with the resolution, never before */
		if (r->resolved && store_scan(m->st, STORE_CF_STUDIES, k.b,
		    k.len, load_study_one, b) < 0)
			log_err("mig-load-failed", "batch=%llu error=%s",
			    (unsigned long long)id, log_q(store_error(m->st)));
		b->prio = r->priority;
		batch_place(m, b);
		bhash_add(m, b);
		fresh = 1;
	}
	snprintf(b->state, sizeof(b->state), "%s", r->state);
	snprintf(b->source, sizeof(b->source), "%s", r->source ?: "");
	snprintf(b->target, sizeof(b->target), "%s", r->target ?: "");
	snprintf(b->by, sizeof(b->by), "%s", r->created_by ?: "");
	b->force = r->force_full_repull;
	b->plan = r->plan_id;
	b->newest = r->order != NULL ? strcmp(r->order, "newest_first") == 0 :
	    cf(m)->migration.newest_first;
	if (fresh)
		batch_sort(b);
	snprintf(b->push_src, sizeof(b->push_src), "%s", r->push_source ?: "");
	snprintf(b->push_day, sizeof(b->push_day), "%s", r->push_day ?: "");
	if (r->prefetch_at_ms != b->prefetch_ms) {
		/* a new order asked for it (HL7 pre-fetch): time again */
		b->prefetch_ms = r->prefetch_at_ms;
		b->prefetch_seen = 0;
	}
	b->resolved = r->resolved;
	if (r->priority != b->prio) {
		/* promoted (HL7 pre-fetch): move it up the list */
		batch_unplace(m, b);
		b->prio = r->priority;
		batch_place(m, b);
	}
}

/* batch_read: batch id's record (as stored) into the engine. */
static void
batch_read(struct mig *m, uint64_t id, json_t *rec)
{
	json_t *push = json_object_get(rec, "push");
	struct mig_brec r = {
		.state = json_string_value(json_object_get(rec, "state")),
		.source = json_string_value(json_object_get(rec, "source")),
		.target = json_string_value(json_object_get(rec, "target")),
		.order = json_string_value(json_object_get(rec, "order")),
		.push_source = json_string_value(json_object_get(push,
		    "source")),
		.push_day = json_string_value(json_object_get(push, "day")),
		.force_full_repull = json_is_true(json_object_get(rec,
		    "force_full_repull")),
		.resolved = json_is_true(json_object_get(rec, "resolved")),
		.priority = (int)json_integer_value(json_object_get(rec,
		    "priority")),
		.plan_id = (uint64_t)json_integer_value(json_object_get(rec,
		    "plan_id")),
		.prefetch_at_ms = json_integer_value(json_object_get(rec,
		    "prefetch_at_ms")),
		.created_by = json_string_value(json_object_get(rec,
		    "created_by")),
		/* a cancel made since this version says the batch is ending
		 * (its studies, its counts); one made before is taken as
		 * ended: its batch is not taken up again (nor told again) */
		.finished = json_object_get(rec, "finished") != NULL ||
		    (json_is_string(json_object_get(rec, "state")) &&
		    strcmp(json_string_value(json_object_get(rec, "state")),
		    "cancelled") == 0 && !json_is_true(json_object_get(rec,
		    "ending"))),
	};

	batch_apply(m, id, &r);
}

static void
batch_drop(struct mig *m, struct mbatch *b)
{
	struct mbatch **pp;

	for (pp = &m->bhash[b->id % m->nbhash]; *pp != b;
	    pp = &(*pp)->hnext)
		;
	*pp = b->hnext;
	m->nbatch--;
	batch_unplace(m, b);
	batch_free(b);
}

/* A write of the batch's record by the engine. */
struct bwrite {
	struct mig	*m;
	uint64_t	 id;
	char		 from[16], to[16];
	json_t		*rec;
	struct notify_ticket *note;
};

/* batch_end_checkpoint: a batch ended: sign an audit checkpoint that
 * covers its leaves now, or (a second has not passed since the last)
 * at the next tick. */
static void
batch_end_checkpoint(struct mig *m)
{
	uint64_t now = net_now_ms();

	if (!m->ckpt_due || now < m->ckpt_at + 1000)
		return;
	m->ckpt_due = 0;
	m->ckpt_at = now;
	store_loop_checkpoint(m->sl);
}

static void
batch_written(void *arg, int err)
{
	struct bwrite *w = arg;
	struct mig *m = w->m;
	struct mbatch *b = batch_find(m, w->id);
	int ended = !err && (strcmp(w->to, "done") == 0 ||
	    strcmp(w->to, "failed") == 0 || (strcmp(w->to, "cancelled") ==
	    0 && json_object_get(w->rec, "finished") != NULL));

	notify_settle(w->note, err);
	api_batches_release(api_batches(daemon_api(m->d)), w->id, !err,
	    w->from, w->to);
	if (b != NULL) {
		b->writing = 0;
		b->rwriting = 0;
		if (b->rslot) {
			b->rslot = 0;
			m->active--;
		}
		if (!err)
			batch_read(m, w->id, w->rec);
		else {
			log_err("mig-write-failed", "batch=%llu error=%s",
			    (unsigned long long)w->id,
			    log_q(store_error(m->st)));
			if (!b->resolved) {
				/* the studies added are not stored */
				for (size_t i = 0; i < b->nst; i++)
					free(b->st[i]);
				b->nst = 0;
				b->retry_at = net_now_ms() + backoff_ms(m, 1);
			}
		}
		if (ended)
			batch_drop(m, b);
	}
	if (ended || (!err && strcmp(w->to, "cancelled") == 0)) {
		m->ckpt_due = 1;
		batch_end_checkpoint(m);
	}
	json_decref(w->rec);
	free(w);
	soon(m);
}

/* batch_write: the batch's record, read now (durable), changed by fn,
 * with the studies of a resolution and the audit leaf, in one unit.
 * 0 when the write went out; -1 when the API is changing the batch (try
 * at the next tick). */
static int
batch_write(struct mig *m, struct mbatch *b, const char *to,
    void (*fn)(struct mig *, struct mbatch *, json_t *, struct store_batch *,
    json_t *ev), json_t *ev)
{
	struct bwrite *w;
	struct store_batch *sb;
	uint8_t k[8];
	void *val;
	size_t vlen;
	json_t *rec;
	char t[32], *v;

	if (!api_batches_claim(api_batches(daemon_api(m->d)), b->id))
		return -1;
	store_be64_put(k, b->id);
	if (store_get(m->st, STORE_CF_BATCHES, k, 8, &val, &vlen) != 1 ||
	    (rec = json_loadb(val, vlen, 0, NULL)) == NULL) {
		if (val != NULL)
			free(val);
		api_batches_release(api_batches(daemon_api(m->d)), b->id, 0,
		    NULL, NULL);
		return -1;
	}
	free(val);
	if ((w = calloc(1, sizeof(*w))) == NULL)
		abort();
	w->m = m;
	w->id = b->id;
	snprintf(w->from, sizeof(w->from), "%s", json_string_value(
	    json_object_get(rec, "state")) ?: "");
	/* a pause or cancel that came while the engine worked stands (a
	 * cancel of the engine's own, for a cancelled plan, goes on) */
	if ((strcmp(w->from, "paused") == 0 && strcmp(to, "cancelled") !=
	    0) || strcmp(w->from, "cancelled") == 0)
		to = w->from;
	snprintf(w->to, sizeof(w->to), "%s", to);
	iso_now(t);
	json_object_set_new(rec, "state", json_string(to));
	json_object_set_new(rec, "updated", json_string(t));
	sb = store_begin(m->st);
	if (fn != NULL)
		fn(m, b, rec, sb, ev);
	v = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
	store_put(sb, STORE_CF_BATCHES, k, 8, v, strlen(v));
	free(v);
	api_batches_pending(api_batches(daemon_api(m->d)), b->id, rec);
	json_object_set_new(ev, "actor", engine_actor(m, b));
	audit_append(store_loop_audit(m->sl), sb, ev);
	w->note = notify_emit(daemon_notify(m->d), sb, ev);
	json_decref(ev);
	w->rec = rec;
	b->writing = 1;
	store_end(sb, batch_written, w);
	return 0;
}

/* ---- resolving: the batch's studies ---- */

/* owns: the study is this shard's (node.shard_index of shard_count):
 * SHA-256 of its UID's text, the first 8 bytes big-endian, mod the
 * count. Every shard is given every batch and takes its own studies. */
static int
owns(struct mig *m, const char *uid)
{
	const struct conf *c = cf(m);
	uint8_t h[32];
	uint64_t v = 0;
	unsigned dl;

	if (c->node.shard_count <= 1)
		return 1;
	if (EVP_Digest(uid, strlen(uid), h, &dl, EVP_sha256(), NULL) != 1)
		abort();
	for (int i = 0; i < 8; i++)
		v = v << 8 | h[i];
	return v % c->node.shard_count == c->node.shard_index;
}

static void
resolved_fill(struct mig *m, struct mbatch *b, json_t *rec,
    struct store_batch *sb, json_t *ev)
{
	struct store_key k;
	size_t i, n = 0, others = 0;
	json_t *f;
	char t[32];

	iso_now(t);
	json_array_foreach(b->found, i, f) {
		const char *uid = json_string_value(json_object_get(f, "uid"));
		struct mstudy *s;
		json_t *j;

		if (uid != NULL && !owns(m, uid)) {
			/* another shard's: it migrates it */
			log_debug("mig-other-shard", "batch=%llu study=%s",
			    (unsigned long long)b->id, uid);
			others++;
			continue;
		}
		if ((s = study_add(b, uid)) == NULL)
			continue;	/* named twice */
		n++;
		/* (decoded, up to 3 x 64 bytes: cut at a character) */
		copy_cut(s->acc, sizeof(s->acc), json_string_value(
		    json_object_get(f, "acc")) ?: "");
		snprintf(s->date, sizeof(s->date), "%.8s", json_string_value(
		    json_object_get(f, "date")) ?: "");
		if (strlen(s->date) == 8)
			snprintf(s->year, sizeof(s->year), "%.4s", s->date);
		else
			s->date[0] = '\0';
		study_key(&k, b->id, s->uid);
		j = study_json(s);
		put_json(sb, STORE_CF_STUDIES, &k, j);
		json_decref(j);
	}
	batch_sort(b);
	json_object_set_new(rec, "resolved", json_true());
	json_object_set(rec, "unresolved", b->unresolved);
	json_object_set_new(rec, "started", json_string(t));
	json_object_set_new(json_object_get(rec, "counts"), "studies",
	    json_integer((json_int_t)b->nst));
	json_object_set_new(json_object_get(ev, "object"), "studies",
	    json_integer((json_int_t)n));
	json_object_set_new(json_object_get(ev, "object"), "unresolved",
	    json_integer((json_int_t)json_array_size(b->unresolved)));
	if (cf(m)->node.shard_count > 1) {
		/* the studies found that other shards own */
		json_object_set_new(rec, "other_shards", json_integer(
		    (json_int_t)others));
		json_object_set_new(json_object_get(ev, "object"),
		    "other_shards", json_integer((json_int_t)others));
		log_info("mig-shard", "batch=%llu shard=%u/%u studies=%zu "
		    "other_shards=%zu", (unsigned long long)b->id,
		    cf(m)->node.shard_index, cf(m)->node.shard_count, n,
		    others);
	}
}

static void resolve_next(struct mop *op);

static void
resolve_end(struct mbatch *b, int ok, const char *why)
{
	struct mig *m = b->op.m;
	json_t *ev;

	op_end(&b->op, ok, why ? why : "");
	b->resolving = 0;
	if (!ok) {
		b->rattempts++;
		if (b->rattempts < cf(m)->migration.retrieve_attempts) {
			m->active--;
			log_warn("mig-resolve-failed", "batch=%llu attempt=%u "
			    "error=%s", (unsigned long long)b->id,
			    b->rattempts, log_q(why));
			b->retry_at = net_now_ms() + backoff_ms(m,
			    b->rattempts);
			json_decref(b->found);
			json_decref(b->unresolved);
			b->found = b->unresolved = NULL;
			soon(m);
			return;
		}
		/* what could not be asked is unresolved, with why */
		for (; b->itodo < json_array_size(b->todo); b->itodo++) {
			json_t *o = json_deep_copy(json_array_get(b->todo,
			    b->itodo));

			json_object_set_new(o, "reason", json_sprintf("the "
			    "source could not be queried: %s", why));
			json_array_append_new(b->unresolved, o);
		}
	}
	if (ok) {
		/* a query nothing matched (its modality checked per study
		 * too) is said, as an accession nobody has is */
		size_t i, j;
		json_t *t, *f;
		int any = 0;

		json_array_foreach(b->found, j, f)
			any |= json_is_true(json_object_get(f, "q"));
		json_array_foreach(b->todo, i, t)
			if (json_is_object(json_object_get(t, "query")) && !any)
				json_array_append_new(b->unresolved, json_pack(
				    "{s:O, s:o}", "query", json_object_get(t,
				    "query"), "reason", json_sprintf("no study "
				    "at source %s matches", b->source)));
	}
	ev = json_pack("{s:s, s:{s:I, s:s, s:s}, s:s}", "event",
	    "batch.started", "object", "batch_id", (json_int_t)b->id,
	    "source", b->source, "target", b->target, "outcome", "ok");
	b->rwriting = 1;
	/* the slot stays held until the record is durable: given back
	 * before, a pass would hand it to a batch of lower priority while
	 * this one cannot run yet (batch_written gives it back, then the
	 * next pass, in priority order, offers it to this batch first) */
	b->rslot = 1;
	if (batch_write(m, b, "running", resolved_fill, ev) < 0) {
		/* the API holds it: resolve again later */
		b->rwriting = 0;
		b->rslot = 0;
		m->active--;
		json_decref(ev);
		json_decref(b->found);
		json_decref(b->unresolved);
		b->found = b->unresolved = NULL;
		b->retry_at = net_now_ms() + 500;
	}
	soon(m);
}

static void
resolve_match(struct mop *op, const struct dimse_ident *id)
{
	struct mbatch *b = op->owner;
	const char *uid = dimse_ident_get(id, TAG_STUDY_UID);
	json_t *item = json_array_get(b->todo, b->itodo);
	const char *mod = json_string_value(json_object_get(json_object_get(
	    item, "query"), "modality"));
	const char *mods = dimse_ident_get(id, TAG_MODALITIES);
	int check = 0;

	if (json_object_get(item, "series_check") != NULL) {
		b->rstatus_ok = 1;	/* a series of that modality */
		return;
	}
	if (mod != NULL) {
		/* a source that matches ModalitiesInStudy says which it
		 * has; one that ignores the key (dcmqrscp) says nothing,
		 * and a SERIES-level query settles it */
		if (mods != NULL && mods[0] != '\0') {
			char list[80], *t, *save = NULL;
			int has = 0;

			snprintf(list, sizeof(list), "%s", mods);
			for (t = strtok_r(list, "\\", &save); t != NULL;
			    t = strtok_r(NULL, "\\", &save))
				has |= strcmp(t, mod) == 0;
			if (!has)
				return;
		} else
			check = 1;
	}
	if (json_array_size(b->found) >= cf(op->m)->api.max_batch_items) {
		b->rtrunc = 1;	/* said in unresolved, not dropped unsaid */
		b->rstatus_ok = 1;
		return;
	}
	if (uid != NULL && spool_uid_valid(uid)) {
		/* (its text decoded: the record is JSON) */
		struct ds_charset *cs = ident_cs(id);
		char accb[3 * 64 + 1], dateb[3 * 64 + 1];
		const char *acc = ident_text(cs, id, TAG_ACCESSION, DS_VR_SH,
		    accb, sizeof(accb));
		const char *date = ident_text(cs, id, TAG_STUDY_DATE, DS_VR_DA,
		    dateb, sizeof(dateb));

		ds_cs_free(cs);
		json_array_append_new(b->found, json_pack("{s:s, s:s, s:s, s:b}",
		    "uid", uid, "acc", acc ? acc : "", "date", date ? date :
		    "", "q", json_is_object(json_object_get(item, "query"))));
		if (check)
			json_array_append_new(b->todo, json_pack("{s:s, s:s}",
			    "series_check", uid, "modality", mod));
	}
	b->rstatus_ok = 1;	/* at least one match */
}

static void
resolve_done(struct mop *op, const struct dicom_qr_result *r)
{
	struct mbatch *b = op->owner;
	json_t *item = json_array_get(b->todo, b->itodo);
	char why[320];

	if (!r->final || r->status != DIMSE_STATUS_SUCCESS) {
		if (r->final)
			snprintf(why, sizeof(why), "C-FIND STUDY level: 0x%04x "
			    "(%s)", r->status, dimse_status_name(r->status));
		else
			snprintf(why, sizeof(why), "C-FIND: %s", r->why);
		dicom_qr_free(op->qr);
		resolve_end(b, 0, why);
		return;
	}
	dicom_qr_free(op->qr);
	if (json_object_get(item, "series_check") != NULL) {
		/* no series of the modality: not a study the query asked
		 * for (nothing to report: the source just has it too) */
		const char *uid = json_string_value(json_object_get(item,
		    "series_check"));
		size_t i;
		json_t *f;

		if (!b->rstatus_ok)
			json_array_foreach(b->found, i, f)
				if (strcmp(json_string_value(json_object_get(f,
				    "uid")) ?: "", uid) == 0) {
					json_array_remove(b->found, i);
					break;
				}
		b->itodo++;
		resolve_next(op);
		return;
	}
	if (json_is_true(json_object_get(item, "merged"))) {
		/* an old ID of the patient: nothing there is no news */
		b->ralias |= b->rstatus_ok;
	} else if (!b->rstatus_ok && !json_is_object(json_object_get(item,
	    "query")) && !(b->ralias && json_object_get(item, "patient_id") !=
	    NULL)) {
		json_t *o = json_deep_copy(item);

		json_object_set_new(o, "reason", json_sprintf("no study at "
		    "source %s matches", b->source));
		json_array_append_new(b->unresolved, o);
	}
	if (b->rtrunc == 1) {
		json_t *o = json_deep_copy(item);

		json_object_set_new(o, "reason", json_sprintf("more studies "
		    "match than api.max_batch_items (%u); the first %u were "
		    "taken: narrow the query or split the batch",
		    cf(op->m)->api.max_batch_items,
		    cf(op->m)->api.max_batch_items));
		json_array_append_new(b->unresolved, o);
		b->rtrunc = 2;
	}
	b->itodo++;
	resolve_next(op);
}

static void
resolve_next(struct mop *op)
{
	struct mbatch *b = op->owner;
	json_t *item = json_array_get(b->todo, b->itodo);
	struct dimse_ident *id;
	const char *v;
	char err[256];

	if (item == NULL) {
		resolve_end(b, 1, NULL);
		return;
	}
	if ((id = malloc(sizeof(*id))) == NULL)
		abort();
	dimse_ident_init(id);
	if ((v = json_string_value(json_object_get(item, "series_check"))) !=
	    NULL) {
		/* does the study have a series of the query's modality? */
		ident_set(id, DIMSE_TAG_QR_LEVEL, "SERIES");
		ident_set(id, TAG_STUDY_UID, v);
		ident_set(id, TAG_MODALITY, json_string_value(json_object_get(
		    item, "modality")));
		ident_set(id, TAG_SERIES_UID, NULL);
	} else {
		json_t *qq = json_object_get(item, "query");

		ident_set(id, DIMSE_TAG_QR_LEVEL, "STUDY");
		if ((v = json_string_value(json_object_get(item,
		    "accession_number"))) != NULL)
			dimse_ident_set(id, TAG_ACCESSION, DS_VR_NONE, v, err,
			    sizeof(err));
		else if (json_is_object(qq)) {
			/* date range, modality, patient: the source matches
			 * them */
			ident_set(id, TAG_STUDY_DATE, json_string_value(
			    json_object_get(qq, "study_date")));
			ident_set(id, TAG_MODALITIES, json_string_value(
			    json_object_get(qq, "modality")));
			ident_set(id, TAG_PATIENT_ID, json_string_value(
			    json_object_get(qq, "patient_id")));
			ident_set(id, TAG_ACCESSION, NULL);
		} else {
			dimse_ident_set(id, TAG_PATIENT_ID, DS_VR_NONE,
			    json_string_value(json_object_get(item,
			    "patient_id")), err, sizeof(err));
			ident_set(id, TAG_ACCESSION, NULL);
		}
		ident_set(id, TAG_STUDY_UID, NULL);
		if (!json_is_object(qq))
			ident_set(id, TAG_STUDY_DATE, NULL);
	}
	b->rstatus_ok = 0;
	if (op_qr(op, DICOM_QR_FIND, DICOM_QR_STUDY_FIND, id, err,
	    sizeof(err)) < 0) {
		free(id);
		resolve_end(b, 0, err);
		return;
	}
	free(id);
}

static void
resolve_ready(struct mop *op)
{
	resolve_next(op);
}

static void
resolve_failed(struct mop *op, const char *why)
{
	char w[300];

	snprintf(w, sizeof(w), "no association with the source: %s", why);
	resolve_end(op->owner, 0, w);
}

/* batch_resolve: the batch's studies: its UIDs as given, its accession
 * numbers (or, naming neither, its patient) by STUDY-level C-FIND at the
 * source. Holds a slot while it runs. */
static void
batch_resolve(struct mig *m, struct mbatch *b)
{
	static const struct dicom_propose prop = { DICOM_QR_STUDY_FIND,
		{ TS_ELE, TS_ILE }, 2, 0 };
	uint8_t k[8];
	void *val = NULL;
	size_t vlen, i;
	json_t *rec, *v;
	const struct conf_peer *p = peer_named(m, b->source);
	char err[256];

	store_be64_put(k, b->id);
	if (store_get(m->st, STORE_CF_BATCHES, k, 8, &val, &vlen) != 1 ||
	    (rec = json_loadb(val, vlen, 0, NULL)) == NULL) {
		free(val);
		return;
	}
	free(val);
	json_decref(b->todo);
	json_decref(b->found);
	json_decref(b->unresolved);
	b->todo = json_array();
	b->found = json_array();
	b->unresolved = json_array();
	b->itodo = 0;
	json_array_foreach(json_object_get(rec, "study_instance_uids"), i, v)
		json_array_append_new(b->found, json_pack("{s:O, s:s}", "uid",
		    v, "acc", ""));
	json_array_foreach(json_object_get(rec, "accession_numbers"), i, v)
		json_array_append_new(b->todo, json_pack("{s:O}",
		    "accession_number", v));
	if (json_is_object(json_object_get(rec, "query")))
		json_array_append_new(b->todo, json_pack("{s:O}", "query",
		    json_object_get(rec, "query")));
	b->rtrunc = 0;
	if (((json_array_size(b->found) == 0 && json_array_size(b->todo) ==
	    0) || json_is_true(json_object_get(rec, "include_priors"))) &&
	    json_string_length(json_object_get(rec, "patient_id")) > 0) {
		/* IDs merged into it (HL7 ADT^A40) first: a source that
		 * did not hear of the merge still files the studies under
		 * them (their PatientID is rewritten on the way) */
		json_array_foreach(json_object_get(rec, "merged_from"), i, v)
			if (json_is_string(v))
				json_array_append_new(b->todo, json_pack(
				    "{s:O, s:b}", "patient_id", v, "merged",
				    1));
		json_array_append_new(b->todo, json_pack("{s:O}",
		    "patient_id", json_object_get(rec, "patient_id")));
	}
	b->ralias = 0;
	json_decref(rec);
	b->resolving = 1;
	m->active++;
	if (json_array_size(b->todo) == 0) {
		resolve_end(b, 1, NULL);
		return;
	}
	memset(&b->op, 0, sizeof(b->op));
	b->op.m = m;
	b->op.owner = b;
	b->op.ready = resolve_ready;
	b->op.failed = resolve_failed;
	b->op.match = resolve_match;
	b->op.done = resolve_done;
	if (p == NULL) {
		resolve_end(b, 0, "the source peer is not configured");
		return;
	}
	if (op_lease(&b->op, p, &prop, 1, err, sizeof(err)) < 0)
		resolve_end(b, 0, err);
}

/* ---- finishing ---- */

/* batch_counts: the batch record's "counts", from the studies now (as
 * last written: a study under way counts its last unit). */
static json_t *
batch_counts(const struct mbatch *b)
{
	const struct conf_peer *t = peer_named(b->op.m, b->target);
	uint64_t c[I__N] = { 0 }, sc[S__N] = { 0 }, n = 0;
	/* sent to a target that verifies, in a study cancelled before it
	 * did: never verified now, pending (as the report counts it) */
	int unproven = t != NULL && t->verify != CONF_VERIFY_NONE;

	for (size_t i = 0; i < b->nst; i++) {
		sc[b->st[i]->st]++;
		for (int k = 0; k < I__N; k++) {
			int to = k == I_SENT && unproven && b->st[i]->st ==
			    S_CANCELLED ? I_EXPECTED : k;

			c[to] += b->st[i]->counts[k];
			n += b->st[i]->counts[k];
		}
	}
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "studies", (json_int_t)b->nst, "instances", (json_int_t)n,
	    "migrated", (json_int_t)(c[I_VERIFIED] + c[I_SENT]),
	    "skipped_present", (json_int_t)c[I_PRESENT],
	    "quarantined", (json_int_t)c[I_QUARANTINED],
	    "failed", (json_int_t)c[I_FAILED],
	    "pending", (json_int_t)(c[I_EXPECTED] + c[I_RECEIVED]),
	    "studies_failed", (json_int_t)sc[S_FAILED],
	    "done", (json_int_t)sc[S_DONE]);
}

json_t *
mig_counts(struct mig *m, uint64_t id)
{
	struct mbatch *b = m ? batch_find(m, id) : NULL;

	return b != NULL ? batch_counts(b) : NULL;
}

static void
finished_fill(struct mig *m, struct mbatch *b, json_t *rec,
    struct store_batch *sb, json_t *ev)
{
	json_t *o = json_object_get(ev, "object"), *cn = batch_counts(b);
	json_int_t pending = json_integer_value(json_object_get(cn,
	    "pending"));
	char t[32];

	(void)m;
	(void)sb;
	iso_now(t);
	json_object_set_new(rec, "finished", json_string(t));
	json_object_del(rec, "ending");
	json_object_set_new(rec, "counts", cn);
	json_object_set(o, "counts", cn);
	/* an instance still pending in a batch that ended is a fault of
	 * the engine's, never "complete"; a cancel leaves them so (the
	 * report shows them pending, their study cancelled) */
	if (pending > 0 && strcmp(json_string_value(json_object_get(rec,
	    "state")) ?: "", "cancelled") != 0)
		log_err("mig-batch-pending", "batch=%llu pending=%lld "
		    "hint=%s", (unsigned long long)b->id, (long long)pending,
		    log_q("instances that never ended a step: see the "
		    "report's rows with outcome pending"));
	json_object_set_new(ev, "outcome", json_string(json_integer_value(
	    json_object_get(cn, "quarantined")) || json_integer_value(
	    json_object_get(cn, "failed")) || pending || json_integer_value(
	    json_object_get(cn, "studies_failed")) || json_array_size(
	    json_object_get(rec, "unresolved")) ? "incomplete" :
	    "complete"));
}

static void
batch_finish(struct mig *m, struct mbatch *b)
{
	json_t *ev = json_pack("{s:s, s:{s:I, s:s, s:s}}", "event",
	    "batch.done", "object", "batch_id", (json_int_t)b->id, "source",
	    b->source, "target", b->target);

	if (batch_write(m, b, "done", finished_fill, ev) < 0)
		json_decref(ev);
	else
		log_info("mig-batch-done", "batch=%llu studies=%zu",
		    (unsigned long long)b->id, b->nst);
}

/* ---------------------------------------------------------------------- */
/* Scheduling. */

static void
batch_cancel_studies(struct mbatch *b)
{
	const struct conf_peer *t = peer_named(b->op.m, b->target);

	for (size_t i = 0; i < b->nst; i++) {
		struct mstudy *s = b->st[i];

		if (sst_final(s->st) || s->active || s->writing)
			continue;
		/* one unit per study: its state and leaf; instances are
		 * left as they were (the report shows them pending) */
		s->active = 1;
		b->op.m->active++;
		snprintf(s->reason, sizeof(s->reason), "the batch was "
		    "cancelled");
		s->ended = 1;
		if (study_load(s) < 0) {
			s->active = 0;
			b->op.m->active--;
			continue;
		}
		/* what the target took, where its C-STORE status is the
		 * proof asked for (verify: none), is migrated: its leaf
		 * and level, as the study's end would have given it */
		if (t != NULL && t->verify == CONF_VERIFY_NONE)
			status_proven(s);
		study_commit(s, S_CANCELLED);
	}
}

/* ---------------------------------------------------------------------- */
/* Push sources (peers[].push_to). Every instance such a peer C-STOREs to
 * us on its own is queued, durably with its spool record and before it
 * is answered (src/net/store_sink.c), as studies ("pq", source, SOP UID).
 * The tick drains the queue: each instance joins its study in the push
 * batch of its source and local day (made when the first one comes),
 * in one unit that also deletes the queue rows, so an instance is in the
 * queue or in a batch, never neither. A study goes once nothing new came
 * for it for migration.push_stable; an instance for a study already
 * ended opens it again. */

#define PUSH_MAX	512	/* queue rows per drain */

static void
local_day(char out[16])
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(out, 16, "%Y-%m-%d", &tm);
}

/* push_open: a push batch still takes pushes: not finished before its
 * day is over. */
static int
push_open(const struct mbatch *b)
{
	char day[16];

	if (b->push_day[0] == '\0')
		return 0;
	local_day(day);
	return strcmp(day, b->push_day) <= 0;
}

struct pq {
	char	 src[CONF_NAME_MAX + 1];
	char	 sop[UIDSZ], study[UIDSZ], series[UIDSZ], cls[UIDSZ];
};

struct pqscan {
	struct mig	*m;
	struct pq	*v;
	size_t		 n;
	uint64_t	 unrouted;	/* rows of peers without push_to */
	char		 usrc[CONF_NAME_MAX + 1];
};

static int
pq_one(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct pqscan *x = arg;
	struct store_kreader r;
	struct pq *q = &x->v[x->n];
	char tag[4];
	uint64_t seg, off;
	int has_rec;
	json_t *j;

	store_kreader_init(&r, key, klen);
	store_kreader_str(&r, tag, sizeof(tag));
	store_kreader_str(&r, q->src, sizeof(q->src));
	store_kreader_str(&r, q->sop, sizeof(q->sop));
	if (r.err || (j = json_loadb(val, vlen, 0, NULL)) == NULL)
		return 0;
	snprintf(q->study, sizeof(q->study), "%s", json_string_value(
	    json_object_get(j, "study_uid")) ?: "");
	snprintf(q->series, sizeof(q->series), "%s", json_string_value(
	    json_object_get(j, "series_uid")) ?: "");
	snprintf(q->cls, sizeof(q->cls), "%s", json_string_value(
	    json_object_get(j, "sop_class_uid")) ?: "");
	/* (its record: rows written before they named it do not) */
	has_rec = json_is_integer(json_object_get(j, "segment"));
	seg = (uint64_t)json_integer_value(json_object_get(j, "segment"));
	off = (uint64_t)json_integer_value(json_object_get(j, "offset"));
	json_decref(j);
	{
		const struct conf_peer *p = peer_named(x->m, q->src);
		struct spool_info si;

		if (p == NULL || p->push_to == NULL) {
			/* kept, not taken: it must not hold back the
			 * rows of other sources behind it */
			if (x->unrouted++ == 0)
				snprintf(x->usrc, sizeof(x->usrc), "%s",
				    q->src);
			return 0;
		}
		/* A row a unit on its way writes again is left for later
		 * (its delete here would come after it), as is one whose
		 * record's bytes are being synced (indexed meanwhile; its
		 * sender is not answered yet; a record voided takes its
		 * row with it: store_sink_void). */
		if (store_sink_pq_busy(q->src, q->sop) || (has_rec &&
		    spool_get(x->m->st, seg, off, &si) == 1 &&
		    !spool_durable(x->m->sp, seg, off + si.len)))
			return 0;
	}
	if (spool_uid_valid(q->study) && spool_uid_valid(q->sop))
		x->n++;
	return x->n >= PUSH_MAX;
}

/* What one drain changed, to be let go when its unit is durable. */
struct pushu {
	struct mig	*m;
	struct mstudy	**st;
	size_t		 nst;
	uint64_t	 *made;		/* batches created */
	size_t		 nmade;
	int		 reclaim;	/* spool records were released */
	int		 last;		/* the scan reached the queue's end */
};

static struct mbatch *
push_batch(struct mig *m, struct store_batch *b, struct pushu *u,
    const struct conf_peer *p, const char *day)
{
	struct mbatch *mb;
	json_t *seed, *rec = NULL, *ev;
	char name[128], chan[CONF_NAME_MAX + 8], *val;
	uint8_t k[8];
	uint64_t id;

	for (mb = m->batches; mb != NULL; mb = mb->next)
		if (strcmp(mb->push_src, p->name) == 0 &&
		    strcmp(mb->push_day, day) == 0 &&
		    strcmp(mb->state, "cancelled") != 0)
			return mb;
	snprintf(name, sizeof(name), "push from %s on %s", p->name, day);
	snprintf(chan, sizeof(chan), "push:%s", p->name);
	seed = json_pack("{s:s, s:s, s:s}", "source", p->name, "target",
	    p->push_to, "batch_name", name);
	id = api_batches_put(api_batches(daemon_api(m->d)), b, seed, chan,
	    "push", &rec);
	json_decref(seed);
	/* no accession or UID to resolve: its studies come as pushed */
	json_object_set_new(rec, "resolved", json_true());
	json_object_set_new(rec, "push", json_pack("{s:s, s:s}", "source",
	    p->name, "day", day));
	val = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
	store_be64_put(k, id);
	store_put(b, STORE_CF_BATCHES, k, 8, val, strlen(val));
	free(val);
	ev = json_pack("{s:s, s:{s:s}, s:{s:I, s:s, s:s, s:s, s:s}, s:s}",
	    "event", "batch.created", "actor", "push", p->name, "object",
	    "batch_id", (json_int_t)id, "channel", chan, "source", p->name,
	    "target", p->push_to, "day", day, "outcome", "ok");
	audit_append(store_loop_audit(m->sl), b, ev);
	json_decref(ev);
	batch_read(m, id, rec);
	json_decref(rec);
	if ((mb = batch_find(m, id)) == NULL)
		abort();
	mb->writing = 1;	/* not scheduled before it is durable */
	if ((u->made = realloc(u->made, (u->nmade + 1) *
	    sizeof(*u->made))) == NULL)
		abort();
	u->made[u->nmade++] = id;
	log_info("mig-push-batch", "batch=%llu source=%s target=%s day=%s",
	    (unsigned long long)id, p->name, p->push_to, day);
	return mb;
}

/* push_again: an instance pushed once more. The same bytes again (or an
 * instance the target had already, or one in quarantine, where the
 * operator decides): the new copy is let go, unless a study of another
 * batch still needs the instance's copies (sop_wanted: that study lets
 * them all go when it ends). Other bytes for one that ended: sent again.
 * One still on its way: its copies all go when it is verified. */
static void
push_again(struct mig *m, struct store_batch *b, struct pushu *u,
    const struct mstudy *s, struct minst *in, const char *ae)
{
	struct spool_info si;

	if (!ist_final(in->st))
		return;
	if (in->st == I_PRESENT || in->st == I_QUARANTINED || (in->has_sha &&
	    spool_from(m, in->sop, ae, &si) == 1 &&
	    memcmp(si.sha256, in->sha, 32) == 0)) {
		struct others o = { 0, NULL, 0 };
		int wanted = sop_wanted(m, s, in->sop, &o);

		free(o.v);
		if (!wanted && release_all(m, b, in->sop, NULL) > 0)
			u->reclaim = 1;
		return;
	}
	in->st = I_EXPECTED;
	in->again = 1;
	in->has_sha = in->has_tsha = in->has_ssha = in->has_scanon = 0;
	in->attempts = 0;
	in->status = -1;
	in->level[0] = in->reason[0] = in->detail[0] = '\0';
	in->dirty = 1;
}

static void
push_written(void *arg, int err)
{
	struct pushu *u = arg;
	struct mig *m = u->m;
	struct mbatch *mb;

	if (u->reclaim && !err)
		spool_reclaim(m->sp, m->st);
	m->push_writing = 0;
	if (!err && u->last)
		m->push_settled = 1;
	for (size_t i = 0; i < u->nst; i++)
		u->st[i]->writing = 0;
	for (size_t i = 0; i < u->nmade; i++)
		if ((mb = batch_find(m, u->made[i])) != NULL) {
			mb->writing = 0;
			if (!err)
				api_batches_created(api_batches(daemon_api(
				    m->d)));
		}
	if (err) {
		/* The queue rows stay, and the next drain takes them again:
		 * from what is durable. Its studies read their rows again
		 * (their instances added in memory were never written: taken
		 * for had, the next drain dropped them with their queue
		 * rows); the push batches it made go (never written). */
		log_err("mig-push-write-failed", "error=%s action=%s",
		    log_q(store_error(m->st)), "kept in the push queue");
		for (size_t i = 0; i < u->nst; i++) {
			struct mstudy *s = u->st[i];
			int made = 0;

			for (size_t k = 0; k < u->nmade && !made; k++)
				made = s->b->id == u->made[k];
			if (made)
				continue;
			s->loaded = 0;
			if (study_reread(s) < 0)	/* (no row: a new one) */
				s->stale = 1;
		}
		for (size_t i = 0; i < u->nmade; i++)
			if ((mb = batch_find(m, u->made[i])) != NULL)
				batch_drop(m, mb);
	}
	free(u->st);
	free(u->made);
	free(u);
	soon(m);
}

static void
push_drain(struct mig *m)
{
	struct pqscan x = { m, NULL, 0, 0, "" };
	struct store_key k;
	struct store_batch *b;
	struct pushu *u;
	struct mbatch *last = NULL;	/* the previous row's batch */
	char day[16];
	uint64_t now = net_now_ms();

	if (m->push_writing || m->draining || store_state(m->st) != STORE_OK)
		return;
	if ((x.v = calloc(PUSH_MAX, sizeof(*x.v))) == NULL)
		abort();
	store_key_init(&k);
	store_key_cstr(&k, "pq");
	if (store_scan(m->st, STORE_CF_STUDIES, k.b, k.len, pq_one, &x) < 0) {
		free(x.v);
		return;
	}
	if (x.unrouted > 0 && now >= m->unrouted_at) {
		/* kept: forwarded once the peer is configured so; said
		 * once a minute, not at every tick */
		log_warn("mig-push-unrouted", "source=%s instances=%llu "
		    "action=%s", log_q(x.usrc), (unsigned long long)x.unrouted,
		    "kept in the push queue; give the peer push_to");
		m->unrouted_at = now + 60000;
	}
	if (x.n == 0) {	/* (rows being synced: the next tick) */
		m->push_settled = 1;
		free(x.v);
		return;
	}
	if ((u = calloc(1, sizeof(*u))) == NULL ||
	    (u->st = calloc(x.n, sizeof(*u->st))) == NULL)
		abort();
	u->m = m;
	u->last = x.n < PUSH_MAX;
	local_day(day);
	b = store_begin(m->st);
	for (size_t i = 0; i < x.n; i++) {
		const struct pq *q = &x.v[i];
		const struct conf_peer *p = peer_named(m, q->src);
		struct mbatch *mb;
		struct mstudy *s = NULL;
		int have = 0;

		if (p == NULL || p->push_to == NULL)
			continue;	/* gone since the scan */
		mb = last != NULL && strcmp(last->push_src, p->name) == 0 ?
		    last : push_batch(m, b, u, p, day);
		last = mb;
		for (size_t j = 0; j < mb->nst && s == NULL; j++)
			if (strcmp(mb->st[j]->uid, q->study) == 0)
				s = mb->st[j];
		if (s == NULL) {
			s = study_add(mb, q->study);
			s->push = s->loaded = 1;
			s->st = S_QUEUED;
		} else if (s->active || (s->writing && !s->push_at_unit)) {
			continue;	/* a step is under way: next tick */
		} else if (!s->loaded && study_load(s) < 0)
			continue;
		for (size_t j = 0; j < s->nin && !have; j++)
			if (strcmp(s->in[j].sop, q->sop) == 0) {
				have = 1;
				push_again(m, b, u, s, &s->in[j],
				    p->ae_title);
			}
		if (!have)
			inst_add(s, q->sop, q->cls, q->series);
		for (size_t j = 0; j < s->nin; j++)
			if (s->in[j].st == I_EXPECTED && sst_final(s->st)) {
				/* more of a study that ended: again */
				log_info("mig-study-again", "batch=%llu "
				    "study=%s sop=%s why=%s",
				    (unsigned long long)s->b->id, s->uid,
				    s->in[j].sop, log_q("an instance came "
				    "after the study had ended"));
				s->st = S_QUEUED;
				s->reason[0] = '\0';
				s->attempts = 0;
				s->retry_at = 0;
			}
		s->push_at = now;
		if (!s->push_at_unit) {
			s->push_at_unit = 1;
			s->writing = 1;
			u->st[u->nst++] = s;
		}
		store_key_init(&k);
		store_key_cstr(&k, "pq");
		store_key_cstr(&k, q->src);
		store_key_cstr(&k, q->sop);
		store_del(b, STORE_CF_STUDIES, k.b, k.len);
	}
	for (size_t i = 0; i < u->nst; i++) {
		struct mstudy *s = u->st[i];
		json_t *j;

		s->push_at_unit = 0;
		for (size_t n = 0; n < s->nin; n++)
			if (s->in[n].dirty) {
				inst_key(&k, s->b->id, s->uid, s->in[n].sop);
				j = inst_json(s, &s->in[n]);
				put_json(b, STORE_CF_INSTANCES, &k, j);
				json_decref(j);
				s->in[n].dirty = 0;
			}
		count_instances(s);
		study_key(&k, s->b->id, s->uid);
		j = study_json(s);
		put_json(b, STORE_CF_STUDIES, &k, j);
		json_decref(j);
	}
	free(x.v);
	m->push_writing = 1;
	store_end(b, push_written, u);
}

/* ending_fill: a cancel's record says the batch is ending (see
 * batch_read). */
static void
ending_fill(struct mig *m, struct mbatch *b, json_t *rec,
    struct store_batch *sb, json_t *ev)
{
	(void)m;
	(void)b;
	(void)sb;
	(void)ev;
	json_object_set_new(rec, "ending", json_true());
}

/* schedule_batch: what batch b may do now: drop it when cancelled and
 * idle, resolve it, mark it running, or give free slots to its studies.
 * It may free b. */
static void
schedule_batch(struct mig *m, struct mbatch *b, uint64_t now)
{
	const struct conf *c = cf(m);
	int all_final = 1, busy = 0;

	if (b->writing || b->rwriting) {
		m->timed = 1;
		return;
	}
	if (strcmp(b->state, "cancelled") == 0) {
		m->timed = 1;
		batch_cancel_studies(b);
		/* (a study not ended, say one that could not be read, is
		 * tried again at the next pass: the batch ends after it) */
		for (size_t i = 0; i < b->nst; i++)
			busy |= b->st[i]->active || b->st[i]->writing ||
			    !sst_final(b->st[i]->st);
		if (busy || b->resolving)
			return;
		/* every study ended: the record's counts and end, as a
		 * batch that is done has them (batch_written drops it) */
		json_t *ev = json_pack("{s:s, s:{s:I, s:s, s:s}}", "event",
		    "batch.cancelled", "object", "batch_id", (json_int_t)b->id,
		    "source", b->source, "target", b->target);

		if (batch_write(m, b, "cancelled", finished_fill, ev) < 0)
			json_decref(ev);
		else
			log_info("mig-batch-cancelled", "batch=%llu "
			    "studies=%zu", (unsigned long long)b->id, b->nst);
		return;
	}
	if (b->plan != 0) {
		char k[24];
		const char *ps;

		snprintf(k, sizeof(k), "%" PRIu64, b->plan);
		ps = json_string_value(json_object_get(m->plans, k));
		if (ps != NULL && strcmp(ps, "cancelled") == 0) {
			/* its plan was cancelled: so is the batch */
			json_t *ev = json_pack("{s:s, s:{s:I, s:I}, s:s}",
			    "event", "batch.cancel", "object", "batch_id",
			    (json_int_t)b->id, "plan_id", (json_int_t)b->plan,
			    "outcome", "ok");

			if (batch_write(m, b, "cancelled", ending_fill, ev) <
			    0)
				json_decref(ev);
			return;
		}
		if (ps != NULL && strcmp(ps, "paused") == 0)
			return;		/* no new step while its plan waits */
	}
	if (strcmp(b->state, "paused") == 0)
		return;
	if (!b->resolved) {
		if (!b->resolving && !peer_open(m, peer_named(m, b->source),
		    1))
			return;		/* the window or a pause: no timed
					 * pass needed for it */
		m->timed = 1;
		if (!b->resolving && now >= b->retry_at &&
		    m->active < c->migration.max_studies &&
		    store_state(m->st) == STORE_OK)
			batch_resolve(m, b);
		return;
	}
	if (strcmp(b->state, "queued") == 0) {
		/* resumed after a pause, or resolved before a restart:
		 * running again */
		json_t *ev;

		m->timed = 1;
		ev = json_pack("{s:s, s:{s:I}, s:s}", "event",
		    "batch.running", "object", "batch_id", (json_int_t)b->id,
		    "outcome", "ok");

		if (batch_write(m, b, "running", NULL, ev) < 0)
			json_decref(ev);
		return;
	}
	for (size_t i = 0; i < b->nst; i++) {
		struct mstudy *s = b->st[i];

		if (sst_final(s->st))
			continue;
		all_final = 0;
		if (s->active || s->writing || now < s->retry_at ||
		    m->active >= c->migration.max_studies) {
			m->timed = 1;
			continue;
		}
		if (!study_may_step(m, s))
			continue;	/* (it says whether time may end
					 * what holds it) */
		m->timed = 1;
		s->active = 1;
		m->active++;
		if (b->started_ms == 0)
			b->started_ms = now;
		study_step(s);
	}
	if (all_final && !push_open(b)) {
		m->timed = 1;
		batch_finish(m, b);
	}
}

/* cancels_may: a pass may serve cancels (they start no work: a node
 * pause does not hold them); schedule_may: it may start work too. */
static int
cancels_may(struct mig *m)
{
	return !m->draining && store_state(m->st) != STORE_FAILED;
}

static int
schedule_may(struct mig *m)
{
	return cancels_may(m) && !m->node_paused;
}

/* schedule: one pass over every batch in priority order.  It runs on the
 * tick and after every step, pause or resume; a batch that is only new
 * gets the targeted pass of on_fresh. */
static void
schedule(struct mig *m)
{
	uint64_t now = net_now_ms();
	struct mbatch *b, *next;

	m->nfresh = 0;		/* this pass sees them too */
	if (!schedule_may(m)) {
		/* a node pause starts nothing new; a cancel starts nothing
		 * either, and ends its batch's idle studies at once */
		if (cancels_may(m)) {
			/* (a pass that found no cancel at work lets the
			 * ticks rest, as on_periodic says) */
			m->timed = 0;
			m->pass_at = now;
			m->pass_min = window_minute(m);
			for (b = m->batches; b != NULL; b = next) {
				next = b->next;
				if (strcmp(b->state, "cancelled") == 0)
					schedule_batch(m, b, now);
			}
		}
		return;
	}
	if (m->rescan)
		batch_kick(m, 0);
	m->timed = 0;
	m->pass_at = now;
	m->pass_min = window_minute(m);
	for (b = m->batches; b != NULL; b = next) {
		next = b->next;
		schedule_batch(m, b, now);
	}
}

static void
on_tick(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	schedule(arg);
}

/* on_periodic: the tick: the push queue, then a pass. */
static void
on_periodic(evutil_socket_t fd, short ev, void *arg)
{
	struct mig *m = arg;

	(void)fd;
	(void)ev;
	batch_end_checkpoint(m);
	hold_soon(m);	/* a held retrieve whose wait is over */
	/* early sends yield when an op asks for an association; this
	 * catches a wait that began while none could yet */
	for (struct flow *f = m->flows; f != NULL; f = f->next) {
		const struct conf_peer *t;

		if (f->lwait > 0 && (t = peer_named(m, f->peer)) != NULL)
			early_yield(m, t);
	}
	if (schedule_may(m))
		push_drain(m);
	/* a pass that found only batches a window or a pause holds (a
	 * night's backlog queued by day) need not run again before the
	 * minute changes or something calls for one (soon): walking
	 * 100,000 such batches four times a second was a tenth of the
	 * reactor; at least every QUIET_MS all the same */
	if (!m->timed && !m->rescan && window_minute(m) == m->pass_min &&
	    net_now_ms() < m->pass_at + QUIET_MS)
		return;
	schedule(m);
}

/* on_fresh: the targeted pass over the batches kicked since the last
 * one: a feed of thousands of new batches (HL7 orders, the webhook) then
 * costs a visit each, not a walk of every queued batch each. */
static void
on_fresh(evutil_socket_t fd, short ev, void *arg)
{
	struct mig *m = arg;
	uint64_t now = net_now_ms();
	size_t n = m->nfresh;
	uint64_t ids[FRESH_MAX];
	struct mbatch *b;

	(void)fd;
	(void)ev;
	memcpy(ids, m->fresh, n * sizeof(ids[0]));	/* a kick may add */
	m->nfresh = 0;
	/* (while the node is paused, only a cancel goes on: see schedule) */
	if (!cancels_may(m))
		return;
	for (size_t i = 0; i < n; i++)
		if ((b = batch_find(m, ids[i])) != NULL && (schedule_may(m) ||
		    strcmp(b->state, "cancelled") == 0))
			schedule_batch(m, b, now);
}

struct kick {
	struct mig	*m;
	uint64_t	 only;	/* 0: every batch above max_id */
};

static int
kick_one(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct kick *k = arg;
	json_t *j;

	if (klen != 8)
		return 0;
	if ((j = json_loadb(val, vlen, 0, NULL)) == NULL) {
		log_err("mig-row-bad", "batch=%llu what=%s",
		    (unsigned long long)store_be64_get(key),
		    "the batch record does not decode; skipped");
		return 0;
	}
	batch_read(k->m, store_be64_get(key), j);
	json_decref(j);
	return k->only != 0;
}

static void
batch_kick(struct mig *m, uint64_t id)
{
	struct kick k = { m, id == MIG_KICK_ALL ? 0 : id };
	uint8_t start[8];

	if (id != 0 && id != MIG_KICK_ALL) {
		/* one batch: a point read, not an iterator (an HL7 feed
		 * kicks for every order) */
		void *v;
		size_t vn;
		int r;

		store_be64_put(start, id);
		if ((r = store_get(m->st, STORE_CF_BATCHES, start, 8, &v,
		    &vn)) < 0) {
			log_err("mig-read-failed", "error=%s",
			    log_q(store_error(m->st)));
			m->rescan = 1;
		} else if (r == 1) {
			kick_one(&k, start, 8, v, vn);
			free(v);
		}
		return;
	}
	m->rescan = 0;
	store_be64_put(start, id == MIG_KICK_ALL ? 0 : id ? id : m->max_id +
	    1);
	if (store_scan_from(m->st, STORE_CF_BATCHES, "", 0, start, 8,
	    kick_one, &k) < 0) {
		log_err("mig-read-failed", "error=%s",
		    log_q(store_error(m->st)));
		m->rescan = 1;
	}
}

/* ---------------------------------------------------------------------- */
/* Public. */

static int
count_q(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct mig *m = arg;
	json_t *j = json_loadb(val, vlen, 0, NULL);
	const char *reason = json_string_value(json_object_get(j, "reason"));
	struct store_kreader r;
	char tag[4];
	uint64_t id;

	store_kreader_init(&r, key, klen);
	store_kreader_str(&r, tag, sizeof(tag));
	id = store_kreader_u64(&r);
	if (!r.err && id >= m->next_qid)
		m->next_qid = id + 1;
	if (reason != NULL && strcmp(json_string_value(json_object_get(j,
	    "state")) ?: "", "open") == 0)
		json_object_set_new(m->qdepth, reason, json_integer(
		    json_integer_value(json_object_get(m->qdepth, reason)) + 1));
	json_decref(j);
	return 0;
}

static void
collect(struct metrics *reg, void *arg)
{
	struct mig *m = arg;
	uint64_t n[S__N] = { 0 };
	const char *reason;
	json_t *v;

	(void)reg;
	for (struct mbatch *b = m->batches; b != NULL; b = b->next)
		for (size_t i = 0; i < b->nst; i++)
			n[b->st[i]->st]++;
	for (int k = 0; k < S__N; k++) {
		const char *l[1] = { sst_names[k] };

		metric_set(m->m_studies, l, (double)n[k]);
	}
	json_object_foreach(m->qdepth, reason, v) {
		const char *l[1] = { reason };

		metric_set(m->m_qdepth, l, (double)json_integer_value(v));
	}
	metric_set(m->m_active, NULL, m->active);
}

static void
register_metrics(struct mig *m, struct metrics *reg)
{
	m->m_inst = metrics_counter(reg, "vnamig_mig_instances_total",
	    "Instances that ended a migration step, by outcome (migrated, "
	    "skipped_present, quarantined, failed), source and target.",
	    "outcome,source,target");
	m->m_bytes = metrics_counter(reg, "vnamig_mig_bytes_sent_total",
	    "Dataset bytes C-STOREd to targets and answered with success.",
	    "target");
	m->m_studies = metrics_gauge(reg, "vnamig_mig_studies",
	    "Studies of the batches being worked, by state.", "state");
	m->m_qdepth = metrics_gauge(reg, "vnamig_quarantine_depth",
	    "Open quarantine items, by reason.", "reason");
	m->m_active = metrics_gauge(reg, "vnamig_mig_studies_active",
	    "Studies (and batch resolutions) holding a slot now "
	    "(migration.max_studies).", NULL);
	{
		static const double b[] = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
		    60, 120, 300, 900, 3600 };

		m->m_prefetch = metrics_histogram(reg,
		    "vnamig_prefetch_first_retrieval_seconds", "From an HL7 "
		    "order's arrival to the first retrieval it asked for "
		    "(its batch or a promoted one) starting.", NULL, b,
		    sizeof(b) / sizeof(b[0]));
	}
	metrics_on_collect(reg, collect, m);
}

/* ---- quarantine actions ---- */

static struct mstudy *
study_find(struct mig *m, uint64_t batch, const char *uid)
{
	struct mbatch *b = batch_find(m, batch);

	for (size_t i = 0; b != NULL && i < b->nst; i++)
		if (strcmp(b->st[i]->uid, uid) == 0)
			return b->st[i];
	return NULL;
}

int
mig_quarantine_retry(struct mig *m, struct store_batch *b,
    const json_t *item, const char *release_by, char *err, size_t cap)
{
	uint64_t batch = (uint64_t)json_integer_value(json_object_get(item,
	    "batch"));
	const char *study = json_string_value(json_object_get(item,
	    "study_uid")), *sop = json_string_value(json_object_get(item,
	    "sop_instance_uid"));
	struct mstudy *s = study != NULL ? study_find(m, batch, study) : NULL;
	struct store_key k;
	void *v;
	size_t vn;
	json_t *row, *st, *c;
	char t[32];

	if (study == NULL || sop == NULL) {
		snprintf(err, cap, "the item names no study or instance");
		return -1;
	}
	if (s != NULL && (s->active || s->writing || !sst_final(s->st))) {
		snprintf(err, cap, "study %s is being worked now; retry the "
		    "item once it has ended", study);
		return -1;
	}
	inst_key(&k, batch, study, sop);
	if (store_get(m->st, STORE_CF_INSTANCES, k.b, k.len, &v, &vn) != 1 ||
	    (row = json_loadb(v, vn, 0, NULL)) == NULL) {
		snprintf(err, cap, "the instance row of %s cannot be read", sop);
		return -1;
	}
	free(v);
	{
		const char *rs = json_string_value(json_object_get(row,
		    "state"));
		json_int_t qid = json_integer_value(json_object_get(row,
		    "quarantine_id"));

		/* the item must still be what holds the instance: one it
		 * left (retried and ended since, another item now) would
		 * put an instance that ended back into the pipeline */
		if (rs == NULL || strcmp(rs, "quarantined") != 0 || qid !=
		    json_integer_value(json_object_get(item, "id"))) {
			snprintf(err, cap, "instance %s is %s now%s: this item "
			    "no longer holds it (reject it to close it)", sop,
			    rs ? rs : "in no known state", rs != NULL &&
			    strcmp(rs, "quarantined") == 0 ? ", under "
			    "another item" : "");
			json_decref(row);
			return -1;
		}
	}
	study_key(&k, batch, study);
	if (store_get(m->st, STORE_CF_STUDIES, k.b, k.len, &v, &vn) != 1 ||
	    (st = json_loadb(v, vn, 0, NULL)) == NULL) {
		snprintf(err, cap, "the study row of %s cannot be read", study);
		json_decref(row);
		return -1;
	}
	free(v);
	/* both read: nothing is written into b before this point */
	iso_now(t);
	json_object_set_new(row, "state", json_string("expected"));
	json_object_set_new(row, "attempts", json_integer(0));
	json_object_set_new(row, "status", json_null());
	json_object_set_new(row, "level", json_null());
	json_object_set_new(row, "sent_sha256", json_null());
	/* nothing of the attempts before stays: a target copy read back
	 * then (verify_mismatch) is not this attempt's, nor a commitment
	 * of what it sent then */
	json_object_set_new(row, "target_sha256", json_null());
	json_object_set_new(row, "time", json_string(t));
	json_object_del(row, "reason");
	json_object_del(row, "detail");
	json_object_del(row, "quarantine_id");
	json_object_del(row, "transforms");
	json_object_del(row, "sent_canonical");
	json_object_del(row, "committed");
	/* a release: sent as it is from now on, whatever comes of it (a
	 * retry later keeps it: the transform would fail again) */
	if (release_by != NULL)
		json_object_set_new(row, "release", json_pack("{s:s, s:I}",
		    "by", release_by, "item", json_integer_value(
		    json_object_get(item, "id"))));
	inst_key(&k, batch, study, sop);
	put_json(b, STORE_CF_INSTANCES, &k, row);
	json_decref(row);
	study_key(&k, batch, study);
	json_object_set_new(st, "state", json_string("retrieving"));
	json_object_set_new(st, "attempts", json_integer(0));
	json_object_set_new(st, "updated", json_string(t));
	json_object_del(st, "reason");
	json_object_del(st, "retrieve_round");	/* rounds of its own */
	if ((c = json_object_get(st, "counts")) != NULL &&
	    json_integer_value(json_object_get(c, "quarantined")) > 0)
		json_object_set_new(c, "quarantined", json_integer(
		    json_integer_value(json_object_get(c, "quarantined")) - 1));
	put_json(b, STORE_CF_STUDIES, &k, st);
	json_decref(st);
	return 0;
}

void
mig_quarantine_closed(struct mig *m, const json_t *item, int retried)
{
	const char *reason = json_string_value(json_object_get(item,
	    "reason"));
	json_int_t n = json_integer_value(json_object_get(m->qdepth,
	    reason ? reason : ""));
	struct mstudy *s;

	if (reason != NULL && n > 0)
		json_object_set_new(m->qdepth, reason, json_integer(n - 1));
	if (!retried)
		return;
	s = study_find(m, (uint64_t)json_integer_value(json_object_get(item,
	    "batch")), json_string_value(json_object_get(item, "study_uid")) ?:
	    "");
	if (s != NULL && !s->active && !s->writing) {
		/* the batch is still in memory: its study starts again
		 * from the rows just written */
		study_unload(s);
		s->st = S_RETRIEVING;
		s->attempts = 0;
		s->round = 0;
		s->retry_at = 0;
		s->reason[0] = '\0';
		if (s->counts[I_QUARANTINED] > 0) {
			s->counts[I_QUARANTINED]--;
			s->counts[I_EXPECTED]++;
		}
	}
	mig_kick(m, (uint64_t)json_integer_value(json_object_get(item,
	    "batch")));
}

/* ---- pauses of the node and of sources: meta ("pause", "node") and
 * ("pause", "source", name) → JSON {by, time, reason} ---- */

static void
pause_key(struct store_key *k, const char *source)
{
	store_key_init(k);
	store_key_cstr(k, "pause");
	if (source == NULL)
		store_key_cstr(k, "node");
	else {
		store_key_cstr(k, "source");
		store_key_cstr(k, source);
	}
}

void
mig_pause_put(struct store_batch *b, const char *source, json_t *rec)
{
	struct store_key k;

	pause_key(&k, source);
	if (rec != NULL)
		put_json(b, STORE_CF_META, &k, rec);
	else
		store_del(b, STORE_CF_META, k.b, k.len);
}

void
mig_pause_apply(struct mig *m, const char *source, json_t *rec)
{
	if (m == NULL)
		return;
	if (source == NULL) {
		m->node_paused = rec != NULL;
		json_decref(m->node_rec);
		m->node_rec = rec ? json_incref(rec) : NULL;
	} else if (rec != NULL)
		json_object_set(m->paused_sources, source, rec);
	else
		json_object_del(m->paused_sources, source);
	log_info(rec ? "mig-paused" : "mig-resumed", "scope=%s source=%s",
	    source ? "source" : "node", source ? log_q(source) : "-");
	soon(m);
}

void
mig_plan_apply(struct mig *m, uint64_t id, const char *state)
{
	char k[24];

	if (m == NULL)
		return;
	snprintf(k, sizeof(k), "%" PRIu64, id);
	if (state == NULL || strcmp(state, "active") == 0)
		json_object_del(m->plans, k);
	else
		json_object_set_new(m->plans, k, json_string(state));
	log_info("mig-plan", "plan=%" PRIu64 " state=%s", id, state ?
	    state : "-");
	soon(m);
}

static int
load_plan(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct mig *m = arg;
	json_t *j = json_loadb(val, vlen, 0, NULL);
	const char *st = json_string_value(json_object_get(j, "state"));

	if (klen >= 8 && st != NULL && strcmp(st, "active") != 0) {
		char k[24];

		snprintf(k, sizeof(k), "%" PRIu64, store_be64_get(
		    (const uint8_t *)key + klen - 8));
		json_object_set_new(m->plans, k, json_string(st));
	}
	json_decref(j);
	return 0;
}

json_t *
mig_pauses(struct mig *m, const char *source)
{
	json_t *r;

	if (m == NULL)
		return NULL;
	if (source != NULL) {
		r = json_object_get(m->paused_sources, source);
		return r ? json_incref(r) : NULL;
	}
	return m->node_paused ? json_incref(m->node_rec) : NULL;
}

static int
load_pause(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct mig *m = arg;
	struct store_kreader r;
	char tag[8], scope[8], name[CONF_NAME_MAX + 1];
	json_t *j = json_loadb(val, vlen, 0, NULL);

	store_kreader_init(&r, key, klen);
	store_kreader_str(&r, tag, sizeof(tag));
	store_kreader_str(&r, scope, sizeof(scope));
	if (!r.err && strcmp(scope, "node") == 0) {
		m->node_paused = 1;
		json_decref(m->node_rec);
		m->node_rec = j ? json_incref(j) : json_object();
	}
	else if (!r.err && store_kreader_str(&r, name, sizeof(name)) !=
	    (size_t)-1 && j != NULL)
		json_object_set(m->paused_sources, name, j);
	json_decref(j);
	return 0;
}

/* xdir_open: <spool>/xform, emptied: an edited copy left by a stop is
 * made again when its study sends again. */
static int
xdir_open(struct mig *m, char *err, size_t cap)
{
	char seg[4000], path[4096 + 300], *slash;
	struct dirent *de;
	DIR *d;

	spool_seg_path(m->sp, 0, seg, sizeof(seg));
	if ((slash = strrchr(seg, '/')) != NULL)
		*slash = '\0';
	snprintf(m->xdir, sizeof(m->xdir), "%s/xform", seg);
	if (mkdir(m->xdir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, cap, "cannot make %s: %s", m->xdir,
		    strerror(errno));
		return -1;
	}
	if ((d = opendir(m->xdir)) == NULL) {
		snprintf(err, cap, "cannot read %s: %s", m->xdir,
		    strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", m->xdir,
			    de->d_name);
			unlink(path);
		}
	closedir(d);
	return 0;
}

struct mig *
mig_new(struct daemon *d, char *err, size_t cap)
{
	struct mig *m = calloc(1, sizeof(*m));
	struct store_key k;

	if (m == NULL || (m->bhash = calloc(BHASH, sizeof(*m->bhash))) ==
	    NULL)
		abort();
	m->nbhash = BHASH;
	m->qdepth = json_object();
	m->paused_sources = json_object();
	m->plans = json_object();
	m->d = d;
	m->sl = daemon_state(d);
	m->st = store_loop_store(m->sl);
	m->sp = daemon_spool(d);
	m->pool = dicom_pool_new(daemon_net(d), daemon_conf(d));
	store_sink_on_spooled(early_spooled, m);
	if ((m->xp = mig_export_new(daemon_base(d), err, cap)) == NULL) {
		mig_free(m);
		return NULL;
	}
	if (xdir_open(m, err, cap) < 0) {
		mig_free(m);
		return NULL;
	}
	store_key_init(&k);
	store_key_cstr(&k, "q");
	m->next_qid = 1;
	if (store_scan(m->st, STORE_CF_STUDIES, k.b, k.len, count_q, m) < 0) {
		snprintf(err, cap, "the quarantine cannot be read: %s",
		    store_error(m->st));
		mig_free(m);
		return NULL;
	}
	store_key_init(&k);
	store_key_cstr(&k, "plan");
	if (store_scan(m->st, STORE_CF_META, k.b, k.len, load_plan, m) < 0) {
		snprintf(err, cap, "the plans cannot be read: %s",
		    store_error(m->st));
		mig_free(m);
		return NULL;
	}
	store_key_init(&k);
	store_key_cstr(&k, "pause");
	if (store_scan(m->st, STORE_CF_META, k.b, k.len, load_pause, m) < 0) {
		snprintf(err, cap, "the pauses cannot be read: %s",
		    store_error(m->st));
		mig_free(m);
		return NULL;
	}
	if (m->node_paused)
		log_warn("mig-paused", "scope=node hint=%s", log_q("the node "
		    "was paused before this start: POST /api/node/resume"));
	register_metrics(m, daemon_metrics(d));
	batch_kick(m, 0);
	if (m->rescan) {
		snprintf(err, cap, "the batches cannot be read: %s",
		    store_error(m->st));
		mig_free(m);
		return NULL;
	}
	m->tick = event_new(daemon_base(d), -1, EV_PERSIST, on_periodic, m);
	m->soon = event_new(daemon_base(d), -1, 0, on_tick, m);
	m->fresh_ev = event_new(daemon_base(d), -1, 0, on_fresh, m);
	m->hold_ev = event_new(daemon_base(d), -1, 0, on_hold, m);
	if (m->tick == NULL || m->soon == NULL || m->fresh_ev == NULL ||
	    m->hold_ev == NULL)
		abort();
	net_timer_arm(m->tick, TICK_MS);
	soon(m);
	return m;
}

static void kicked(struct mig *m, uint64_t id);

void
mig_kick(struct mig *m, uint64_t id)
{
	if (m == NULL)
		return;
	batch_kick(m, id);
	kicked(m, id);
}

void
mig_kick_brec(struct mig *m, uint64_t id, const struct mig_brec *r)
{
	if (m == NULL)
		return;
	batch_apply(m, id, r);
	kicked(m, id);
}

static void
kicked(struct mig *m, uint64_t id)
{
	if (m->draining)
		return;
	if (id == 0 || id == MIG_KICK_ALL || m->nfresh == FRESH_MAX) {
		soon(m);	/* a whole pass sees every batch */
		return;
	}
	m->fresh[m->nfresh++] = id;
	event_active(m->fresh_ev, 0, 0);
}

static void
pool_closed(void *arg)
{
	(void)arg;
}

void
mig_drain(struct mig *m)
{
	if (m == NULL || m->draining)
		return;
	m->draining = 1;
	for (struct mbatch *b = m->batches; b != NULL; b = b->next) {
		for (size_t i = 0; i < b->nst; i++) {
			struct mstudy *s = b->st[i];

			/* the durable state is where the next start picks
			 * the study up; what is in flight now is redone */
			if (s->op.qr != NULL || s->op.l != NULL)
				op_end(&s->op, 0, "shutting down");
			if (s->eop.l != NULL)
				op_end(&s->eop, 0, "shutting down");
			if (s->early)
				rs_remove(m, s);
			for (size_t k = 0; k < s->nin; k++)
				if (s->in[k].fd >= 0) {
					close(s->in[k].fd);
					s->in[k].fd = -1;
				}
		}
		op_end(&b->op, 0, "shutting down");
	}
	dicom_pool_close(m->pool, pool_closed, NULL);
}

void
mig_free_(struct mig *m)
{
	struct mbatch *b, *n;

	if (m == NULL)
		return;
	/* first: a file job's callback names a study freed below */
	mig_export_free(m->xp);
	store_sink_on_spooled(NULL, NULL);
	for (b = m->batches; b != NULL; b = n) {
		n = b->next;
		batch_free(b);
	}
	free(m->bhash);
	free(m->rs);
	free(m->ws);
	if (m->tick != NULL)
		event_free(m->tick);
	if (m->soon != NULL)
		event_free(m->soon);
	if (m->fresh_ev != NULL)
		event_free(m->fresh_ev);
	if (m->hold_ev != NULL)
		event_free(m->hold_ev);
	dicom_pool_free(m->pool);
	while (m->flows != NULL) {
		struct flow *f = m->flows;

		m->flows = f->next;
		free(f);
	}
	json_decref(m->qdepth);
	json_decref(m->paused_sources);
	json_decref(m->plans);
	json_decref(m->node_rec);
	free(m);
}

json_t *
mig_progress(struct mig *m, uint64_t id)
{
	struct mbatch *b = m ? batch_find(m, id) : NULL;
	uint64_t c[I__N] = { 0 }, sc[S__N] = { 0 }, n = 0, ended = 0;
	json_t *j, *js, *ji;
	double secs, rate;

	if (b == NULL)
		return NULL;
	for (size_t i = 0; i < b->nst; i++) {
		struct mstudy *s = b->st[i];

		sc[s->st]++;
		study_tally(s, c);
	}
	js = json_object();
	ji = json_object();
	for (int k = 0; k < S__N; k++)
		if (sc[k])
			json_object_set_new(js, sst_names[k],
			    json_integer((json_int_t)sc[k]));
	for (int k = 0; k < I__N; k++) {
		n += c[k];
		if (ist_final(k))
			ended += c[k];
		json_object_set_new(ji, ist_names[k],
		    json_integer((json_int_t)c[k]));
	}
	secs = b->started_ms ? (double)(net_now_ms() - b->started_ms) / 1000 :
	    0;
	rate = secs > 0 ? (double)b->bytes / secs : 0;
	j = json_pack("{s:b, s:I, s:o, s:o, s:I, s:f}",
	    "resolved", b->resolved, "studies_total", (json_int_t)b->nst,
	    "studies", js, "instances", ji, "bytes_sent",
	    (json_int_t)b->bytes, "bytes_per_second", rate);
	/* ETA from the instances ended so far, at their rate */
	json_object_set_new(j, "eta_seconds", ended > 0 && n > ended &&
	    secs > 0 ? json_integer((json_int_t)((double)(n - ended) * secs /
	    (double)ended)) : json_null());
	return j;
}

/* One peer's line of GET /api/progress. */
static json_t *
peer_progress(struct mig *m, const struct conf_peer *p, int source)
{
	struct flow *f = flow_of(m, p);
	uint64_t queued = 0, ended = 0;
	double hours = f->first_ms ? (double)(net_now_ms() - f->first_ms) /
	    3.6e6 : 0, per_h;
	json_t *j;

	for (struct mbatch *b = m->batches; b != NULL; b = b->next) {
		if (strcmp(source ? b->source : b->target, p->name) != 0)
			continue;
		for (size_t i = 0; i < b->nst; i++) {
			if (sst_final(b->st[i]->st))
				ended++;
			else
				queued++;
		}
	}
	per_h = hours > 0 ? (double)f->studies / hours : 0;
	j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:f, s:i}",
	    "role", source ? "source" : "target",
	    "studies_done", (json_int_t)f->studies,
	    "bytes", (json_int_t)f->bytes,
	    "queue_depth", (json_int_t)queued,
	    "studies_ended_in_active_batches", (json_int_t)ended,
	    "throttle_limit", f->limit, "active", (int)f->active);
	json_object_set_new(j, "breaker", mig_breaker(m, p));
	/* rates since its first study this start; null until known */
	json_object_set_new(j, "studies_per_hour", per_h > 0 ?
	    json_real(per_h) : json_null());
	json_object_set_new(j, "bytes_per_hour", hours > 0 && f->bytes ?
	    json_real((double)f->bytes / hours) : json_null());
	json_object_set_new(j, "eta_seconds", per_h > 0 && queued ?
	    json_integer((json_int_t)((double)queued / per_h * 3600)) :
	    json_null());
	return j;
}

static void
tally(json_t *by, const char *key, const struct mstudy *s)
{
	json_t *e = json_object_get(by, key);

	if (e == NULL) {
		e = json_pack("{s:i, s:i, s:i}", "studies", 0, "done", 0,
		    "instances", 0);
		json_object_set_new(by, key, e);
	}
	json_object_set_new(e, "studies", json_integer(json_integer_value(
	    json_object_get(e, "studies")) + 1));
	if (sst_final(s->st))
		json_object_set_new(e, "done", json_integer(json_integer_value(
		    json_object_get(e, "done")) + 1));
	{
		uint64_t c[I__N] = { 0 }, n = 0;

		study_tally(s, c);
		for (int k = 0; k < I__N; k++)
			n += c[k];
		json_object_set_new(e, "instances", json_integer(
		    json_integer_value(json_object_get(e, "instances")) +
		    (json_int_t)n));
	}
}

json_t *
mig_progress_all(struct mig *m)
{
	const struct conf *c = cf(m);
	json_t *src = json_object(), *tgt = json_object(),
	    *mod = json_object(), *year = json_object();

	for (size_t i = 0; i < c->npeers; i++) {
		const struct conf_peer *p = &c->peers[i];

		if (p->role & CONF_ROLE_SOURCE)
			json_object_set_new(src, p->name,
			    peer_progress(m, p, 1));
		if (p->role & CONF_ROLE_TARGET)
			json_object_set_new(tgt, p->name,
			    peer_progress(m, p, 0));
	}
	for (struct mbatch *b = m->batches; b != NULL; b = b->next)
		for (size_t i = 0; i < b->nst; i++) {
			const struct mstudy *s = b->st[i];
			char mods[33], *tok, *save = NULL;

			/* a study with CT and SR counts under each */
			snprintf(mods, sizeof(mods), "%s", s->modalities);
			if (mods[0] == '\0')
				tally(mod, "unknown", s);
			for (tok = strtok_r(mods, "\\", &save); tok != NULL;
			    tok = strtok_r(NULL, "\\", &save))
				tally(mod, tok, s);
			tally(year, s->year[0] ? s->year : "unknown", s);
		}
	return json_pack("{s:o, s:o, s:o, s:o, s:o}", "sources", src,
	    "targets", tgt, "by_modality", mod, "by_study_year", year,
	    "engine", mig_status(m));
}

json_t *
mig_status(struct mig *m)
{
	uint64_t sdone = 0, stotal = 0, idone = 0, itotal = 0, bytes = 0,
	    t0 = 0;
	unsigned nb = 0;
	double secs, rate;
	json_t *j;

	for (struct mbatch *b = m ? m->batches : NULL; b != NULL;
	    b = b->next) {
		nb++;
		bytes += b->bytes;
		if (b->started_ms && (t0 == 0 || b->started_ms < t0))
			t0 = b->started_ms;
		for (size_t i = 0; i < b->nst; i++) {
			struct mstudy *s = b->st[i];
			uint64_t c[I__N] = { 0 };

			stotal++;
			sdone += sst_final(s->st);
			study_tally(s, c);
			for (int k = 0; k < I__N; k++) {
				itotal += c[k];
				idone += ist_final(k) ? c[k] : 0;
			}
		}
	}
	secs = t0 ? (double)(net_now_ms() - t0) / 1000 : 0;
	rate = secs > 0 ? (double)bytes / secs : 0;
	/* rate and ETA are unknown (null) until something moved, not 0 */
	j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:i}",
	    "studies_done", (json_int_t)sdone, "studies_total",
	    (json_int_t)stotal, "instances_done", (json_int_t)idone,
	    "instances_total", (json_int_t)itotal, "bytes_done",
	    (json_int_t)bytes, "batches_active", (int)nb, "studies_active",
	    m ? (int)m->active : 0, "associations_out", m ?
	    (int)dicom_pool_count(m->pool, NULL) : 0);
	json_object_set_new(j, "rate_bytes_s", rate > 0 ? json_real(rate) :
	    json_null());
	json_object_set_new(j, "eta_s", idone > 0 && itotal > idone && secs >
	    0 ? json_integer((json_int_t)((double)(itotal - idone) * secs /
	    (double)idone)) : json_null());
	return j;
}
