/*
 * vnamig-qr — Query/Retrieve a configured peer as an SCU with vnamigd's
 * own network code: C-FIND (matches as text or the DICOM JSON model),
 * C-MOVE (to our own AE title, or another; --receive takes the
 * instances here), C-GET (instances stored into a directory, on the same
 * association). The tool to look into a source archive before and during
 * a migration, and the test bed of dicom_qr.c.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "conf/conf.h"
#include "dimse/dimse_cmd.h"
#include "dimse/dimse_ident.h"
#include "dimse/ds_charset.h"
#include "dimse/ds_dict.h"
#include "dimse/ds_uid.h"
#include "src/dump/dump_json.h"
#include "src/net/dicom_qr.h"
#include "src/net/dicom_svc.h"
#include "src/net/net.h"
#include "src/net/net_proto.h"
#include "src/net/store_sink.h"
#include "src/util/log.h"

#define PROG		"vnamig-qr"
#define MAX_CLASSES	64
#define MAX_SERIES	1000	/* learning the classes of a study */
#define TS_ILE		"1.2.840.10008.1.2"
#define TS_ELE		"1.2.840.10008.1.2.1"

#define TAG_SOP_CLASS	DS_TAG(0x0008, 0x0016)
#define TAG_SOP_INST	DS_TAG(0x0008, 0x0018)
#define TAG_CHARSET	DS_TAG(0x0008, 0x0005)
#define TAG_PATIENT_ID	DS_TAG(0x0010, 0x0020)
#define TAG_STUDY_UID	DS_TAG(0x0020, 0x000d)
#define TAG_SERIES_UID	DS_TAG(0x0020, 0x000e)

/* The syntaxes proposed for each storage class of a C-GET, each in its
 * own context, so that the source can send what it stores as it is (no
 * transcoding on its side either); the uncompressed ones first, for
 * sources that take the first context of a class whatever it stores. */
static const char *const get_ts[] = {
	TS_ELE,
	TS_ILE,
	"1.2.840.10008.1.2.4.50",	/* JPEG Baseline */
	"1.2.840.10008.1.2.4.70",	/* JPEG Lossless SV1 */
	"1.2.840.10008.1.2.4.80",	/* JPEG-LS Lossless */
	"1.2.840.10008.1.2.4.90",	/* JPEG 2000 Lossless */
	"1.2.840.10008.1.2.4.91",	/* JPEG 2000 */
	"1.2.840.10008.1.2.5",		/* RLE Lossless */
	"1.2.840.10008.1.2.1.99",	/* Deflated Explicit VR LE */
	"1.2.840.10008.1.2.2",		/* Explicit VR BE (retired) */
};

/* When the classes cannot be learnt from the peer (--class not given
 * and the image-level C-FIND did not say): the common ones. */
static const char *const default_classes[] = {
	"1.2.840.10008.5.1.4.1.1.2",		/* CT */
	"1.2.840.10008.5.1.4.1.1.4",		/* MR */
	"1.2.840.10008.5.1.4.1.1.1",		/* CR */
	"1.2.840.10008.5.1.4.1.1.1.1",		/* DX presentation */
	"1.2.840.10008.5.1.4.1.1.1.2",		/* MG presentation */
	"1.2.840.10008.5.1.4.1.1.6.1",		/* US */
	"1.2.840.10008.5.1.4.1.1.7",		/* SC */
	"1.2.840.10008.5.1.4.1.1.128",		/* PET */
	"1.2.840.10008.5.1.4.1.1.88.11",	/* Basic SR */
	"1.2.840.10008.5.1.4.1.1.88.22",	/* Enhanced SR */
	"1.2.840.10008.5.1.4.1.1.11.1",		/* GSPS */
	"1.2.840.10008.5.1.4.1.1.104.1",	/* Encapsulated PDF */
};

struct qr {
	struct event_base	*base;
	struct net_server	*net;
	struct conf		*conf;
	const struct conf_peer	*peer;
	SSL_CTX			*tls;
	enum dicom_qr_kind	 kind;	/* of the current association */
	int			 patient_root;
	struct dimse_ident	 id;	/* the identifier sent */
	const char		*dest;
	const char		*outdir;
	int			 receive, json, quiet, tty;
	enum { DISC_NO, DISC_SERIES, DISC_IMAGES } discover;
	char			 series[MAX_SERIES][65];
	unsigned		 nseries, iseries;
	uint16_t		 msgid;
	struct dump_json	*dj;
	struct dicom_conn	*dc;
	struct dicom_qr		*op;
	struct dicom_qr_result	 res;
	int			 have_res, ended_ok, json_bad;
	char			 end_why[256];
	char			 classes[MAX_CLASSES][65];
	unsigned		 nclasses;
	uint64_t		 stored0;	/* dicom_svc_stored_total() */
	uint64_t		 nmatch;
	struct dicom_user	 user;		/* assoc_user, store_dir set */
	char			 dirbuf[4096];
};

static const char *
find_class(const struct qr *q)
{
	return q->patient_root ? DICOM_QR_PATIENT_FIND : DICOM_QR_STUDY_FIND;
}

static const char *
op_class(const struct qr *q, enum dicom_qr_kind k)
{
	if (k == DICOM_QR_FIND)
		return find_class(q);
	if (k == DICOM_QR_MOVE)
		return q->patient_root ? DICOM_QR_PATIENT_MOVE :
		    DICOM_QR_STUDY_MOVE;
	return q->patient_root ? DICOM_QR_PATIENT_GET : DICOM_QR_STUDY_GET;
}

static void
add_class(struct qr *q, const char *uid)
{
	for (unsigned i = 0; i < q->nclasses; i++)
		if (strcmp(q->classes[i], uid) == 0)
			return;
	if (q->nclasses < MAX_CLASSES)
		snprintf(q->classes[q->nclasses++], sizeof(q->classes[0]),
		    "%s", uid);
}

/* ---- output ---- */

/* print_match: one line: Keyword=value for each returned key, values in
 * UTF-8 (per the match's (0008,0005)), TAB between. */
static void
print_match(const struct dimse_ident *id)
{
	const char *csv = dimse_ident_get(id, TAG_CHARSET);
	struct ds_charset *cs = csv != NULL ? ds_cs_new(csv, strlen(csv)) :
	    NULL;
	char out[4 * DIMSE_IDENT_VALUE_MAX + 1];
	int first = 1;

	for (unsigned i = 0; i < id->n; i++) {
		const struct dimse_ident_elem *e = &id->e[i];
		const struct ds_dict_entry *d = ds_dict_by_tag(e->tag);
		const char *v = e->value;
		size_t bad = 0;

		if (e->tag == DIMSE_TAG_QR_LEVEL || e->tag == TAG_CHARSET)
			continue;
		if (cs != NULL && ds_cs_decode(cs, e->vr, (const uint8_t *)
		    e->value, e->len, out, sizeof(out), &bad) >= 0)
			v = out;
		if (d != NULL && d->keyword[0] != '\0')
			printf("%s%s=%s", first ? "" : "\t", d->keyword, v);
		else
			printf("%s%04x,%04x=%s", first ? "" : "\t",
			    (unsigned)(e->tag >> 16),
			    (unsigned)(e->tag & 0xffff), v);
		first = 0;
	}
	putchar('\n');
	ds_cs_free(cs);
}

static void
on_match(void *arg, const struct dimse_ident *id, const uint8_t *raw,
    size_t n, const struct ds_ts *ts)
{
	struct qr *q = arg;
	char label[64];

	if (q->discover == DISC_SERIES) {
		const char *u = dimse_ident_get(id, TAG_SERIES_UID);

		if (u != NULL && store_uid_valid(u) && q->nseries < MAX_SERIES)
			snprintf(q->series[q->nseries++], sizeof(q->series[0]),
			    "%s", u);
		return;
	}
	if (q->discover == DISC_IMAGES) {
		const char *c = dimse_ident_get(id, TAG_SOP_CLASS);

		if (c != NULL && store_uid_valid(c))
			add_class(q, c);
		return;
	}
	q->nmatch++;
	if (q->quiet)
		return;
	if (q->json) {
		snprintf(label, sizeof(label), "match %llu",
		    (unsigned long long)q->nmatch);
		q->json_bad |= dump_json_dataset(q->dj, raw, n, ts, label);
	} else
		print_match(id);
}

static void
progress(struct qr *q, const struct dicom_qr_result *r)
{
	long done, total;

	if (!q->tty || q->quiet || r->completed < 0 || r->remaining < 0)
		return;
	done = r->completed + (r->failed > 0 ? r->failed : 0) +
	    (r->warning > 0 ? r->warning : 0);
	total = done + r->remaining;
	fprintf(stderr, "\r[%-30.*s] %ld/%ld sub-operations, %ld failed ",
	    total > 0 ? (int)(30 * done / total) : 0,
	    "##############################", done, total,
	    r->failed > 0 ? r->failed : 0);
}

static void
on_progress(void *arg, const struct dicom_qr_result *r)
{
	progress(arg, r);
}

static void start_op(struct qr *q);

static void
on_done(void *arg, const struct dicom_qr_result *r)
{
	struct qr *q = arg;

	q->res = *r;
	q->res.failed_uids = NULL;	/* points into the operation */
	if (r->failed_uids != NULL && !q->discover)
		fprintf(stderr, "%s: failed SOP instances: %s\n", PROG,
		    r->failed_uids);
	q->have_res = 1;
	dicom_qr_free(q->op);	/* r is gone with it: q->res from here */
	if (q->dc == NULL)
		return;
	/* learning the classes: series of the study, then the instances
	 * of each series, one C-FIND after the other on this association */
	if (q->discover != DISC_NO && q->res.final &&
	    q->res.status == DIMSE_STATUS_SUCCESS) {
		if (q->discover == DISC_SERIES) {
			q->discover = DISC_IMAGES;
			q->iseries = 0;
		} else
			q->iseries++;
		if (q->iseries < q->nseries) {
			start_op(q);
			return;
		}
	}
	dicom_release(q->dc);
}

static const struct dicom_qr_user qr_user = {
	.match = on_match,
	.progress = on_progress,
	.done = on_done,
};

/* ---- the association ---- */

/* start_op: the next operation on q->dc: the one asked for, or a step
 * of learning the SOP classes. */
static void
start_op(struct qr *q)
{
	struct dicom_qr_limits lim = {
		.dimse_ms = q->conf->limits.dimse_ms,
		.stall_ms = q->conf->limits.stall_ms,
		.total_ms = q->kind == DICOM_QR_FIND ? 0 :
		    q->conf->limits.retrieve_ms,
		.max_matches = q->conf->limits.find_matches,
	};
	struct dimse_ident disc, *id = &q->id;
	char err[256];

	if (q->discover != DISC_NO) {
		disc = q->id;
		dimse_ident_del(&disc, TAG_SOP_INST);
		dimse_ident_set(&disc, DIMSE_TAG_QR_LEVEL, DS_VR_NONE,
		    q->discover == DISC_SERIES ? "SERIES" : "IMAGE", err,
		    sizeof(err));
		dimse_ident_set(&disc, TAG_SERIES_UID, DS_VR_NONE,
		    q->discover == DISC_SERIES ? NULL :
		    q->series[q->iseries], err, sizeof(err));
		if (q->discover == DISC_IMAGES) {
			dimse_ident_set(&disc, TAG_SOP_INST, DS_VR_NONE,
			    dimse_ident_get(&q->id, TAG_SOP_INST), err,
			    sizeof(err));
			dimse_ident_set(&disc, TAG_SOP_CLASS, DS_VR_NONE,
			    NULL, err, sizeof(err));
		}
		id = &disc;
	}
	q->op = dicom_qr_start(q->dc, q->kind, op_class(q, q->kind), id,
	    q->kind == DICOM_QR_MOVE ? q->dest : NULL, ++q->msgid, &lim,
	    &qr_user, q, err, sizeof(err));
	if (q->op == NULL) {
		snprintf(q->end_why, sizeof(q->end_why), "%s", err);
		dicom_release(q->dc);
	}
}

static void
on_established(struct dicom_conn *dc, void *arg)
{
	struct qr *q = arg;

	q->dc = dc;
	start_op(q);
}

static void
on_message(struct dicom_conn *dc, void *arg, enum dimse_asm_result r,
    const struct dimse_asm_event *ev)
{
	struct qr *q = arg;

	(void)dc;
	if (q->op != NULL)
		dicom_qr_message(q->op, r, ev);
}

static void
on_ended(struct dicom_conn *dc, void *arg, int ok, const char *why)
{
	struct qr *q = arg;

	(void)dc;
	q->ended_ok = ok;
	q->dc = NULL;		/* before the operation hears of it */
	if (q->op != NULL)
		dicom_qr_ended(q->op, why);
	if (!ok && q->end_why[0] == '\0')
		snprintf(q->end_why, sizeof(q->end_why), "%s", why);
	event_base_loopexit(q->base, NULL);
}

static const struct dicom_user assoc_user = {
	.established = on_established,
	.message = on_message,
	.ended = on_ended,
};

/* run: one association for one operation of kind. 0 when it ran to a
 * final response, -1 when not (q->end_why says why). */
static int
run(struct qr *q, enum dicom_qr_kind kind)
{
	struct dicom_propose prop[DICOM_MAX_PCTX];
	unsigned np = 0;
	char err[256];

	q->kind = kind;
	q->have_res = 0;
	q->end_why[0] = '\0';
	memset(prop, 0, sizeof(prop));
	prop[np].abstract = op_class(q, kind);
	prop[np].ts[0] = TS_ELE;
	prop[np].ts[1] = TS_ILE;
	prop[np++].nts = 2;
	if (kind == DICOM_QR_GET && q->discover == DISC_NO) {
		unsigned skipped = 0;

		/* one context per class and syntax: the peer picks the
		 * one of what it stores, with nothing to convert */
		for (unsigned k = 0; k < sizeof(get_ts) / sizeof(get_ts[0]);
		    k++)
			for (unsigned i = 0; i < q->nclasses; i++) {
				if (np == DICOM_MAX_PCTX) {
					skipped++;
					continue;
				}
				prop[np].abstract = q->classes[i];
				prop[np].ts[0] = get_ts[k];
				prop[np].nts = 1;
				prop[np++].scp_role = 1;
			}
		if (skipped)
			fprintf(stderr, "%s: warning: %u storage contexts not "
			    "proposed (at most %d per association)\n", PROG,
			    skipped, DICOM_MAX_PCTX);
	}
	q->user = assoc_user;
	q->user.store_dir = q->outdir;
	if (dicom_connect(q->net, q->conf, q->peer, prop, np, q->tls,
	    &q->user, q, err, sizeof(err)) == NULL) {
		snprintf(q->end_why, sizeof(q->end_why), "%s", err);
		return -1;
	}
	event_base_dispatch(q->base);
	dicom_qr_free(q->op);
	return q->have_res && q->res.final ? 0 : -1;
}

/* ---- the identifier ---- */

/* unique: v is one value without wildcards (a unique key's match). */
static int
unique(const char *v)
{
	return v != NULL && v[0] != '\0' && strchr(v, '\\') == NULL &&
	    strpbrk(v, "*?") == NULL;
}

static int
need(const struct qr *q, uint32_t tag, const char *level, const char *kw)
{
	if (unique(dimse_ident_get(&q->id, tag)))
		return 0;
	fprintf(stderr, "%s: a query at %s level needs one %s value "
	    "(-k %s=...): the levels above it are matched by their unique "
	    "key (PS3.4 C.4.1.2.1)\n", PROG, level, kw, kw);
	return -1;
}

static void
ret_keys(struct qr *q, const char *const *kw)
{
	char err[256];

	for (; *kw != NULL; kw++) {
		const struct ds_dict_entry *d = ds_dict_by_keyword(*kw);

		if (d != NULL && dimse_ident_get(&q->id, d->tag) == NULL)
			dimse_ident_set(&q->id, d->tag, DS_VR_NONE, NULL, err,
			    sizeof(err));
	}
}

/* build_ident: the level, its default return keys (C-FIND) and the
 * checks of the hierarchical model. 0, or -1 (said). */
static int
build_ident(struct qr *q, const char *level, enum dicom_qr_kind kind)
{
	static const char *const patient[] = { "PatientName", "PatientID",
	    "PatientBirthDate", "PatientSex",
	    "NumberOfPatientRelatedStudies", NULL };
	static const char *const study[] = { "StudyInstanceUID", "StudyDate",
	    "StudyTime", "AccessionNumber", "StudyID", "StudyDescription",
	    "PatientName", "PatientID", "ModalitiesInStudy",
	    "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
	    NULL };
	static const char *const series[] = { "StudyInstanceUID",
	    "SeriesInstanceUID", "Modality", "SeriesNumber",
	    "SeriesDescription", "NumberOfSeriesRelatedInstances", NULL };
	static const char *const image[] = { "StudyInstanceUID",
	    "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID",
	    "InstanceNumber", NULL };
	char err[256];
	int lv;

	if (level == NULL)	/* retrieve: the deepest unique key given */
		level = dimse_ident_get(&q->id, TAG_SOP_INST) ? "IMAGE" :
		    dimse_ident_get(&q->id, TAG_SERIES_UID) ? "SERIES" :
		    !q->patient_root || dimse_ident_get(&q->id,
		    TAG_STUDY_UID) ? "STUDY" : "PATIENT";
	lv = strcasecmp(level, "PATIENT") == 0 ? 0 :
	    strcasecmp(level, "STUDY") == 0 ? 1 :
	    strcasecmp(level, "SERIES") == 0 ? 2 :
	    strcasecmp(level, "IMAGE") == 0 ? 3 : -1;
	if (lv < 0 || (lv == 0 && !q->patient_root)) {
		fprintf(stderr, "%s: level \"%s\": one of %sSTUDY, SERIES, "
		    "IMAGE\n", PROG, level, q->patient_root ? "PATIENT, " :
		    "");
		return -1;
	}
	dimse_ident_set(&q->id, DIMSE_TAG_QR_LEVEL, DS_VR_NONE,
	    (const char *[]){ "PATIENT", "STUDY", "SERIES", "IMAGE" }[lv],
	    err, sizeof(err));
	if (kind == DICOM_QR_FIND)
		ret_keys(q, (const char *const *[]){ patient, study, series,
		    image }[lv]);
	if ((q->patient_root && lv >= 1 && need(q, TAG_PATIENT_ID, level,
	    "PatientID") < 0) ||
	    (lv >= 2 && need(q, TAG_STUDY_UID, level, "StudyInstanceUID") < 0) ||
	    (lv >= 3 && need(q, TAG_SERIES_UID, level,
	    "SeriesInstanceUID") < 0))
		return -1;
	if (kind != DICOM_QR_FIND) {
		/* a retrieve names what it wants by the level's unique key */
		uint32_t key = (const uint32_t[]){ TAG_PATIENT_ID,
		    TAG_STUDY_UID, TAG_SERIES_UID, TAG_SOP_INST }[lv];
		const char *v = dimse_ident_get(&q->id, key);

		if (v == NULL || v[0] == '\0' || strpbrk(v, "*?") != NULL) {
			fprintf(stderr, "%s: a retrieve at %s level needs the "
			    "%s (-k %s=UID[\\UID...]), without wildcards\n",
			    PROG, level, ds_dict_by_tag(key)->keyword,
			    ds_dict_by_tag(key)->keyword);
			return -1;
		}
	}
	return 0;
}

/* mkdir_p: create dir and its parents. 0, or -1 (errno). */
static int
mkdir_p(const char *dir)
{
	char buf[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(buf))
		return errno = ENAMETOOLONG, -1;
	memcpy(buf, dir, n + 1);
	for (char *p = buf + 1; *p != '\0'; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0750) < 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(buf, 0750) < 0 && errno != EEXIST ? -1 : 0;
}

static void
usage(FILE *f)
{
	fputs("NAME\n"
"    vnamig-qr - query (C-FIND) and retrieve (C-MOVE, C-GET) from a peer\n"
"\n"
"SYNOPSIS\n"
"    vnamig-qr [-c FILE] [-P] [-L LEVEL] [-k KEY[=VALUE]]... [--json]\n"
"              find PEER\n"
"    vnamig-qr [-c FILE] [-P] [-k KEY=VALUE]... [--dest AE] [--receive]\n"
"              move PEER\n"
"    vnamig-qr [-c FILE] [-P] [-k KEY=VALUE]... [-o DIR] [--class UID]...\n"
"              get PEER\n"
"\n"
"DESCRIPTION\n"
"    Opens an association from node.ae_title to the peer named PEER in\n"
"    the configuration (its AE title, host, port and tls: settings) and\n"
"    runs one Query/Retrieve operation, Study Root unless -P.\n"
"\n"
"    find prints one line per match: Keyword=value for each returned\n"
"    key, TAB-separated, values in UTF-8 per the match's Specific\n"
"    Character Set; with --json, an array of the matches in the DICOM\n"
"    JSON model (PS3.18 F.2). The level's usual return keys are asked\n"
"    for (STUDY: StudyInstanceUID, StudyDate, AccessionNumber, PatientID,\n"
"    ModalitiesInStudy, NumberOfStudyRelatedInstances ...); -k adds keys\n"
"    and matching values.\n"
"\n"
"    move asks the peer to send the instances named by the keys to --dest\n"
"    (default: node.ae_title, which the peer must know by address). With\n"
"    --receive this tool listens on listen.dicom itself and stores what\n"
"    arrives under node.data_dir/incoming, as vnamigd would.\n"
"\n"
"    get retrieves the instances on the same association and stores each\n"
"    as DIR/SOPInstanceUID.dcm (default node.data_dir/incoming), durable\n"
"    before it is acknowledged. The storage SOP classes to take are\n"
"    learnt first with an image-level C-FIND on another association\n"
"    (--class gives them instead), each proposed in the uncompressed and\n"
"    the common compressed syntaxes, so the peer sends what it stores.\n"
"\n"
"    A retrieve names what it wants by the unique key of its level,\n"
"    deduced from the keys: StudyInstanceUID (STUDY), with\n"
"    SeriesInstanceUID (SERIES), with SOPInstanceUID (IMAGE; a list\n"
"    UID\\UID... is allowed). Limits from the configuration: a response\n"
"    not come within limits.dimse_timeout, a retrieve longer than\n"
"    limits.retrieve_timeout or pending without progress for\n"
"    limits.retrieve_stall, a C-FIND with more than limits.find_matches\n"
"    matches: each is a C-CANCEL, then an A-ABORT if the peer does not\n"
"    end the operation. On a terminal a retrieve shows a progress bar.\n"
"\n"
"OPTIONS\n"
"    -c, --config FILE   the configuration (default "
	    SYSCONFDIR "/vnamigd.yaml)\n"
"    -P, --patient-root  Patient Root instead of Study Root\n"
"    -L, --level LEVEL   PATIENT, STUDY (find's default), SERIES, IMAGE\n"
"    -k, --key KEY[=VALUE]\n"
"                        a key: a keyword (PatientID) or a tag\n"
"                        (0010,0020), with :VR for private tags; without\n"
"                        a value, a return key\n"
"    --json              find: the matches as DICOM JSON\n"
"    --dest AE           move: the destination AE title\n"
"    --receive           move: take the instances here (listen.dicom)\n"
"    -o, --out DIR       get: where the instances go\n"
"    --class UID         get: a storage SOP class to accept (repeat)\n"
"    -q, --quiet         print nothing but errors and the outcome\n"
"    -h, --help          this page\n"
"\n"
"EXIT STATUS\n"
"    0 when the operation ended with Success (and, for get and move\n"
"    --receive, every sub-operation completed); 1 otherwise (a failure,\n"
"    warning or cancel status, a timeout, a rejected or aborted\n"
"    association); 2 on bad usage or an unusable configuration.\n",
	    f);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "patient-root", no_argument, NULL, 'P' },
		{ "level", required_argument, NULL, 'L' },
		{ "key", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "dest", required_argument, NULL, 'd' },
		{ "receive", no_argument, NULL, 'r' },
		{ "out", required_argument, NULL, 'o' },
		{ "class", required_argument, NULL, 'C' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cpath = SYSCONFDIR "/vnamigd.yaml", *level = NULL, *cmd;
	struct dump_json_opts jo = { .prog = PROG };
	struct qr q;
	enum dicom_qr_kind kind;
	char *errs = NULL, err[256];
	int ch, rc = 1;
	uint64_t stored;

	memset(&q, 0, sizeof(q));
	dimse_ident_init(&q.id);
	while ((ch = getopt_long(argc, argv, "c:PL:k:o:qh", lo, NULL)) != -1)
		switch (ch) {
		case 'c': cpath = optarg; break;
		case 'P': q.patient_root = 1; break;
		case 'L': level = optarg; break;
		case 'k':
			if (dimse_ident_arg(&q.id, optarg, err,
			    sizeof(err)) < 0) {
				fprintf(stderr, "%s: -k %s\n", PROG, err);
				return 2;
			}
			break;
		case 'j': q.json = 1; break;
		case 'd': q.dest = optarg; break;
		case 'r': q.receive = 1; break;
		case 'o': q.outdir = optarg; break;
		case 'C':
			if (!store_uid_valid(optarg)) {
				fprintf(stderr, "%s: --class %s: not a UID\n",
				    PROG, optarg);
				return 2;
			}
			add_class(&q, optarg);
			break;
		case 'q': q.quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	if (strcmp(cmd, "find") == 0)
		kind = DICOM_QR_FIND;
	else if (strcmp(cmd, "move") == 0)
		kind = DICOM_QR_MOVE;
	else if (strcmp(cmd, "get") == 0)
		kind = DICOM_QR_GET;
	else {
		fprintf(stderr, "%s: \"%s\": the operation is find, move or "
		    "get\n", PROG, cmd);
		return 2;
	}
	if ((kind != DICOM_QR_FIND && (level != NULL || q.json)) ||
	    (kind != DICOM_QR_MOVE && (q.dest || q.receive)) ||
	    (kind != DICOM_QR_GET && (q.outdir || q.nclasses))) {
		fprintf(stderr, "%s: an option does not go with %s (see "
		    "--help)\n", PROG, cmd);
		return 2;
	}
	if (build_ident(&q, kind == DICOM_QR_FIND && level == NULL ? "STUDY" :
	    level, kind) < 0)
		return 2;
	if ((q.conf = conf_load_file(cpath, &errs)) == NULL) {
		fprintf(stderr, "%s", errs);
		free(errs);
		return 2;
	}
	log_setup(LOG_LVL_WARN, 0, PROG, 0);
	for (size_t i = 0; i < q.conf->npeers; i++)
		if (strcmp(q.conf->peers[i].name, argv[optind + 1]) == 0)
			q.peer = &q.conf->peers[i];
	if (q.peer == NULL) {
		fprintf(stderr, "%s: no peer named \"%s\" in %s\n", PROG,
		    argv[optind + 1], cpath);
		conf_free(q.conf);
		return 2;
	}
	if (q.dest == NULL)
		q.dest = q.conf->node.ae_title;
	q.tty = isatty(STDERR_FILENO);
	if (q.peer->tls.enabled && (q.tls = net_client_tls(q.peer, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "%s: %s\n", PROG, err);
		conf_free(q.conf);
		return 2;
	}
	if ((q.base = event_base_new()) == NULL)
		abort();
	q.net = net_server_new(q.base, q.conf, &q);
	if (kind == DICOM_QR_MOVE && q.receive && net_server_listen(q.net,
	    &q.conf->dicom, &net_dicom_ops, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: --receive: %s\n", PROG, err);
		goto out;
	}
	if (q.receive)		/* the peer calls back: where from */
		net_server_resolve(q.net, q.peer->host);
	if (kind == DICOM_QR_GET || q.receive) {
		snprintf(q.dirbuf, sizeof(q.dirbuf), "%s%s", q.outdir ?
		    q.outdir : q.conf->node.data_dir, q.outdir ? "" :
		    "/incoming");
		if (mkdir_p(q.dirbuf) < 0) {
			fprintf(stderr, "%s: %s: %s\n", PROG, q.dirbuf,
			    strerror(errno));
			goto out;
		}
		if (kind == DICOM_QR_GET)
			q.outdir = q.dirbuf;
	}
	if (kind == DICOM_QR_GET && q.nclasses == 0 &&
	    unique(dimse_ident_get(&q.id, TAG_STUDY_UID))) {
		/* the study's series (unless given), then their instances'
		 * SOP classes */
		const char *se = dimse_ident_get(&q.id, TAG_SERIES_UID);

		q.nseries = 0;
		if (unique(se)) {
			snprintf(q.series[0], sizeof(q.series[0]), "%s", se);
			q.nseries = 1;
		}
		q.discover = q.nseries ? DISC_IMAGES : DISC_SERIES;
		if (run(&q, DICOM_QR_FIND) < 0 || q.res.status != 0)
			fprintf(stderr, "%s: warning: the SOP classes could "
			    "not be learnt with C-FIND (%s); proposing the "
			    "common ones\n", PROG, q.end_why[0] ? q.end_why :
			    q.res.why);
		q.discover = DISC_NO;
		if (q.nclasses == 0 && q.res.final && q.res.status == 0)
			fprintf(stderr, "%s: warning: the peer returned no "
			    "SOPClassUID at image level; proposing the common "
			    "storage classes (--class names others)\n", PROG);
		if (q.nclasses == 0)
			for (size_t i = 0; i < sizeof(default_classes) /
			    sizeof(default_classes[0]); i++)
				add_class(&q, default_classes[i]);
	}
	if (kind == DICOM_QR_FIND && q.json)
		q.dj = dump_json_open(stdout, &jo);
	q.stored0 = dicom_svc_stored_total();
	if (run(&q, kind) < 0 && !q.have_res) {
		if (q.dj != NULL)
			dump_json_close(q.dj);
		q.dj = NULL;
		fprintf(stderr, "%s%s: %s: %s\n", q.tty && !q.quiet &&
		    kind != DICOM_QR_FIND ? "\n" : "", PROG, q.peer->name,
		    q.end_why[0] ? q.end_why : "the association ended "
		    "without a final response");
		goto out;
	}
	if (kind == DICOM_QR_MOVE && q.receive)
		net_server_wait_idle(q.net, q.conf->limits.network_ms);
	if (q.dj != NULL && dump_json_close(q.dj) != 0)
		q.json_bad = 1;
	q.dj = NULL;
	if (q.tty && !q.quiet && kind != DICOM_QR_FIND)
		fputc('\n', stderr);
	stored = dicom_svc_stored_total() - q.stored0;
	if (!q.res.final)
		fprintf(stderr, "%s: %s: no final response: %s\n", PROG,
		    dicom_qr_kind_name(kind), q.res.why);
	else if (kind == DICOM_QR_FIND)
		fprintf(stderr, "%s: C-FIND: 0x%04x (%s): %llu match%s%s%s"
		    "%s\n", PROG, q.res.status, dimse_status_name_for(
		    DIMSE_C_FIND_RSP, q.res.status),
		    (unsigned long long)q.nmatch, q.nmatch == 1 ? "" : "es",
		    q.res.matches > q.nmatch ? " (more came after the "
		    "C-CANCEL, left out)" : "", q.res.why[0] ? ": " : "",
		    q.res.why);
	else {
		fprintf(stderr, "%s: %s: 0x%04x (%s): %ld completed, %ld "
		    "failed, %ld warning", PROG, dicom_qr_kind_name(kind),
		    q.res.status, dimse_status_name_for(kind == DICOM_QR_MOVE ?
		    DIMSE_C_MOVE_RSP : DIMSE_C_GET_RSP, q.res.status),
		    q.res.completed < 0 ? 0 : q.res.completed,
		    q.res.failed < 0 ? 0 : q.res.failed,
		    q.res.warning < 0 ? 0 : q.res.warning);
		if (kind == DICOM_QR_GET || q.receive)
			fprintf(stderr, "; %llu stored in %s%s",
			    (unsigned long long)stored, kind == DICOM_QR_GET ?
			    q.outdir : q.conf->node.data_dir, kind ==
			    DICOM_QR_GET ? "" : "/incoming");
		fprintf(stderr, "%s%s\n", q.res.why[0] ? ": " : "",
		    q.res.why);
	}
	rc = q.res.final && q.res.status == DIMSE_STATUS_SUCCESS &&
	    !q.res.cancelled && !q.json_bad ? 0 : 1;
	if (rc == 0 && kind != DICOM_QR_FIND && (kind == DICOM_QR_GET ||
	    q.receive) && q.res.completed >= 0 &&
	    stored < (uint64_t)q.res.completed) {
		fprintf(stderr, "%s: the peer says %ld completed, but %llu "
		    "arrived here\n", PROG, q.res.completed,
		    (unsigned long long)stored);
		rc = 1;
	}
out:
	net_server_free(q.net);
	event_base_free(q.base);
	SSL_CTX_free(q.tls);
	conf_free(q.conf);
	return rc;
}
