/*
 * vnamig-send — C-STORE DICOM files (or C-ECHO) to a peer from the
 * configuration, with vnamigd's own Upper Layer and DIMSE code on one
 * libevent loop: the tool to check a target before a migration, and the
 * test bed of the requestor side. Each file's dataset goes out as it is
 * stored (its own transfer syntax; no transcoding), queued as file
 * segments so the kernel sends it without a copy where it can.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
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
#include "dimse/dimse_msg.h"
#include "dimse/ds_parse.h"
#include "dimse/ds_uid.h"
#include "src/net/dicom_commit.h"
#include "src/net/dicom_pool.h"
#include "src/net/dicom_svc.h"
#include "src/net/net_proto.h"
#include "src/net/net.h"
#include "src/util/log.h"

struct item {
	const char	*path;
	char		 meta_instance[65];	/* (0002,0003) */
	char		 sop_class[65];
	char		 sop_instance[65];
	char		 ts[65];
	uint64_t	 off, size;	/* the dataset's bytes in the file */
	int		 prop;		/* index into the proposal */
	uint16_t	 status;
	int		 done;
	int		 stored;	/* success or warning status */
	char		 why[200];
};

struct send {
	struct event_base	*base;
	struct net_server	*net;
	struct conf		*conf;
	struct item		*items;
	int			 n, next;
	int			 echo, quiet, tty;
	uint16_t		 msgid;
	uint64_t		 bytes, total;
	int			 failed;
	struct timespec		 t0;
	int			 commit;	/* 1: --commit, 2: --commit-only */
	int			 listening;	/* reports may come to us */
	struct dicom_commit	*cm;
	int			 cm_done;
	struct dicom_lease	*cl;		/* the commitment's */
	struct dicom_pool	*pool;
	const struct conf_peer	*peer;
	struct dicom_propose	 prop[DICOM_MAX_PCTX];
	unsigned		 nprop;
	int			 active, ndone, finishing;
};

/* One association's worth of sending: files are taken in order from the
 * shared list by whichever worker has room, up to the association's
 * asynchronous operations window in flight. */
#define WINDOW_MAX	64
struct inflight {
	int			 item;
	int			 fd;
	uint16_t		 msgid;
};

struct worker {
	struct send		*s;
	struct dicom_lease	*l;
	struct dicom_conn	*dc;
	struct inflight		 out[WINDOW_MAX];
	unsigned		 nout;
	uint16_t		 msgid;		/* C-ECHO */
	int			 echoed;
};

static int
on_meta(void *arg, const struct ds_meta *m)
{
	struct item *it = arg;

	snprintf(it->meta_instance, sizeof(it->meta_instance), "%s",
	    m->sop_instance);
	snprintf(it->ts, sizeof(it->ts), "%s", m->ts_uid);
	it->off = m->dataset_offset;
	return 0;
}

/* The SOP Class and Instance UID are the dataset's (0008,0016) and
 * (0008,0018), as a receiver checks them, not the file meta's copies. */
static int
on_element(void *arg, const struct ds_elem *e, const uint8_t *v, size_t n)
{
	struct item *it = arg;

	if (e->meta || e->depth != 0)
		return 0;
	if (e->tag > DS_TAG(0x0008, 0x0018))
		return 1;	/* past them: stop */
	if (e->tag != DS_TAG(0x0008, 0x0016) &&
	    e->tag != DS_TAG(0x0008, 0x0018))
		return 0;
	ds_uid_copy(e->tag == DS_TAG(0x0008, 0x0016) ? it->sop_class :
	    it->sop_instance, v, n);
	return it->sop_class[0] && it->sop_instance[0];	/* both: stop */
}

/* read_meta: the Part 10 header of it->path. 0, or -1 with a message. */
static int
read_meta(struct item *it)
{
	static const struct ds_callbacks cb = { .meta = on_meta,
	    .element = on_element };
	struct ds_parser *p = ds_parser_new_file(NULL, &cb, it);
	uint8_t buf[65536];
	struct stat st;
	ssize_t r;
	int fd = open(it->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "vnamig-send: %s: %s\n", it->path,
		    strerror(errno));
		ds_parser_free(p);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		if (ds_parse_feed(p, buf, (size_t)r) == DS_ERROR)
			break;	/* also when on_element stopped it */
	close(fd);
	ds_parser_free(p);
	if (it->sop_class[0] == '\0' || it->sop_instance[0] == '\0' ||
	    it->ts[0] == '\0') {
		fprintf(stderr, "vnamig-send: %s: no SOP Class and Instance "
		    "UID (0008,0016)/(0008,0018) after a file meta group: not "
		    "a Part 10 file this tool can send\n", it->path);
		return -1;
	}
	if (it->meta_instance[0] != '\0' && strcmp(it->meta_instance,
	    it->sop_instance) != 0)
		fprintf(stderr, "vnamig-send: %s: warning: the file meta's "
		    "instance UID %s is not the dataset's %s; sent as the "
		    "dataset's\n", it->path, it->meta_instance,
		    it->sop_instance);
	it->size = (uint64_t)st.st_size - it->off;
	return 0;
}

static void
progress(struct send *s)
{
	struct timespec t;
	double dt;

	if (!s->tty || s->quiet)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t);
	dt = (double)(t.tv_sec - s->t0.tv_sec) + (double)(t.tv_nsec -
	    s->t0.tv_nsec) / 1e9;
	fprintf(stderr, "\r[%-30.*s] %d/%d files, %.1f MiB, %.1f MiB/s ",
	    s->n ? 30 * s->next / s->n : 30,
	    "##############################", s->next, s->n,
	    (double)s->bytes / 1048576, dt > 0 ? (double)s->bytes / 1048576 /
	    dt : 0.0);
}

/* ---- the workers: one leased association each ---- */

static void worker_next(struct worker *w);
static void maybe_finish(struct send *s);

static void
worker_end(struct worker *w)
{
	struct send *s = w->s;

	if (w->l != NULL)
		dicom_lease_return(w->l);
	w->l = NULL;
	w->dc = NULL;
	s->active--;
	maybe_finish(s);
}

/* item_done: the outcome of in-flight entry k of w (removed). */
static void
item_done(struct worker *w, unsigned k, uint16_t status,
    const struct dimse_cmd *c, const char *why)
{
	struct send *s = w->s;
	struct item *it = &s->items[w->out[k].item];
	enum dimse_status_class cl = dimse_status_class(status);

	it->status = status;
	it->done = 1;
	s->ndone++;
	if (w->out[k].fd >= 0)
		close(w->out[k].fd);
	w->out[k] = w->out[--w->nout];
	if (why != NULL) {
		snprintf(it->why, sizeof(it->why), "%s", why);
		fprintf(stderr, "%svnamig-send: %s: not stored: %s\n",
		    s->tty ? "\n" : "", it->path, why);
		s->failed++;
		return;
	}
	s->bytes += it->size;
	if (cl != DIMSE_CLASS_SUCCESS && cl != DIMSE_CLASS_WARNING)
		s->failed++;
	else
		it->stored = 1;
	if (!s->quiet && (!s->tty || cl != DIMSE_CLASS_SUCCESS))
		printf("%s%s: 0x%04x (%s)%s%s\n", s->tty ? "\r" : "", it->path,
		    status, dimse_status_name(status),
		    (c->present & DIMSE_F_ERROR_COMMENT) ? ": " : "",
		    (c->present & DIMSE_F_ERROR_COMMENT) ? c->error_comment :
		    "");
	progress(s);
}

/* fail_all: every file in flight on w did not get a response. */
static void
fail_all(struct worker *w, const char *why)
{
	while (w->nout > 0)
		item_done(w, w->nout - 1, 0, NULL, why);
}

/* window: how many C-STOREs w may have in flight (what the peer
 * granted, PS3.7 D.3.3.3). */
static unsigned
window(const struct worker *w)
{
	unsigned n = dicom_conn_assoc(w->dc)->window;

	return n < 1 ? 1 : n > WINDOW_MAX ? WINDOW_MAX : n;
}

static void
worker_next(struct worker *w)
{
	struct send *s = w->s;
	struct dimse_cmd rq;
	const struct dicom_pctx *pc;
	struct item *it;
	uint8_t buf[1024];
	size_t len;

	if (s->echo) {
		if (w->echoed) {
			worker_end(w);
			return;
		}
		w->echoed = 1;
		dimse_echo_rq(w->msgid = ++s->msgid, &rq);
		pc = dicom_pctx_for(w->dc, DIMSE_VERIFICATION_CLASS, NULL);
		if (pc == NULL) {
			fprintf(stderr, "vnamig-send: the peer did not accept "
			    "Verification\n");
			s->failed++;
			worker_end(w);
			return;
		}
		len = dimse_cmd_encode(&rq, buf, sizeof(buf));
		dicom_send_pdv(w->dc, pc->id, 1, 1, buf, (uint32_t)len);
		return;
	}
	while (s->next < s->n && w->nout < window(w)) {
		int k = s->next++;
		struct inflight *f;

		it = &s->items[k];
		if (it->done)		/* its meta could not be read */
			continue;
		pc = dicom_pctx_for(w->dc, it->sop_class, it->ts);
		if (pc == NULL) {
			it->done = 1;
			s->ndone++;
			snprintf(it->why, sizeof(it->why), "the peer accepted "
			    "no context for %s in %s", it->sop_class, it->ts);
			s->failed++;
			fprintf(stderr, "vnamig-send: %s: %s\n", it->path,
			    it->why);
			continue;
		}
		f = &w->out[w->nout++];
		f->item = k;
		errno = 0;
		if ((f->fd = open(it->path, O_RDONLY | O_CLOEXEC)) < 0 ||
		    dimse_store_rq(f->msgid = ++s->msgid, it->sop_class,
		    it->sop_instance, DIMSE_PRIORITY_MEDIUM, &rq) < 0 ||
		    (len = dimse_cmd_encode(&rq, buf, sizeof(buf))) == 0 ||
		    len > sizeof(buf) || dicom_send_pdv(w->dc, pc->id, 1, 1,
		    buf, (uint32_t)len) < 0 || dicom_send_file_pdvs(w->dc,
		    pc->id, f->fd, it->off, it->size) < 0) {
			char why[256];

			snprintf(why, sizeof(why), "cannot send: %s", errno ?
			    strerror(errno) : "association not ready");
			fail_all(w, why);
			dicom_lease_drop(w->l, "cannot send");
			w->l = NULL;
			worker_end(w);
			return;
		}
	}
	if (w->nout == 0)	/* nothing in flight, nothing left */
		worker_end(w);
}

static void
on_ready(struct dicom_lease *l, struct dicom_conn *dc, void *arg)
{
	struct worker *w = arg;

	(void)l;
	w->dc = dc;
	worker_next(w);
}

static void
on_message(struct dicom_lease *l, void *arg, enum dimse_asm_result r,
    const struct dimse_asm_event *ev)
{
	struct worker *w = arg;
	struct send *s = w->s;
	const struct dimse_cmd *c = ev->cmd;

	(void)l;
	if (r != DIMSE_ASM_COMMAND || ev->has_dataset)
		return;		/* not a response we wait for */
	if (s->echo) {
		if (c->msgid_rsp != w->msgid)
			return;
		if (!s->quiet)
			printf("C-ECHO: 0x%04x (%s)\n", c->status,
			    dimse_status_name(c->status));
		if (dimse_status_class(c->status) != DIMSE_CLASS_SUCCESS)
			s->failed++;
		worker_next(w);
		return;
	}
	if (c->command != DIMSE_C_STORE_RSP)
		return;
	for (unsigned k = 0; k < w->nout; k++)
		if (w->out[k].msgid == c->msgid_rsp) {
			item_done(w, k, c->status, c, NULL);
			worker_next(w);
			return;
		}
}

static void
on_failed(struct dicom_lease *l, void *arg, const char *why)
{
	struct worker *w = arg;
	struct send *s = w->s;

	(void)l;
	w->l = NULL;
	fprintf(stderr, "%svnamig-send: association ended: %s\n",
	    s->tty ? "\n" : "", why);
	if (w->nout > 0)
		fail_all(w, why);
	else
		s->failed++;
	worker_end(w);
}

static const struct dicom_lease_user worker_user = {
	.ready = on_ready,
	.message = on_message,
	.failed = on_failed,
};

/* ---- storage commitment, on a lease of its own ---- */

static void
commit_answered(void *arg, uint16_t status)
{
	struct send *s = arg;

	/* Reports may come on an association of the SCP's own: ours goes
	 * back. Without a listener, wait for it here. */
	if (status == DIMSE_STATUS_SUCCESS && s->listening && s->cl != NULL) {
		dicom_lease_return(s->cl);
		s->cl = NULL;
	}
}

static void
commit_done(void *arg, const struct dicom_commit_result *r)
{
	struct send *s = arg;
	const struct dimse_commit_report *rep = r->report;
	size_t ok = 0, bad = 0, missing = 0;

	s->cm_done = 1;
	if (rep == NULL) {
		fprintf(stderr, "vnamig-send: storage commitment %s: %s\n",
		    dicom_commit_transaction(s->cm), r->why);
		s->failed++;
	} else {
		for (int i = 0; i < s->n; i++) {
			struct item *it = &s->items[i];
			const struct dimse_commit_ref *f = NULL;

			if (!it->stored && s->commit == 1)
				continue;	/* not stored: not asked */
			if (it->sop_instance[0] == '\0')
				continue;
			for (size_t k = 0; k < rep->n; k++)
				if (strcmp(rep->refs[k].sop_instance,
				    it->sop_instance) == 0)
					f = &rep->refs[k];
			if (f == NULL) {
				missing++;
				printf("%s: commitment: not in the report\n",
				    it->path);
			} else if (f->failed) {
				bad++;
				printf("%s: commitment failed: 0x%04x (%s)\n",
				    it->path, f->reason,
				    dimse_commit_reason_name(f->reason));
			} else {
				ok++;
				if (!s->quiet)
					printf("%s: committed\n", it->path);
			}
		}
		if (!s->quiet || bad || missing)
			printf("storage commitment %s from %s%s: %zu committed, "
			    "%zu failed, %zu not reported\n", rep->transaction,
			    r->report_from, r->same_assoc ? "" :
			    " (on its own association)", ok, bad, missing);
		if (bad || missing)
			s->failed++;
	}
	if (s->cl != NULL)
		dicom_lease_return(s->cl);
	s->cl = NULL;
	maybe_finish(s);
}

static const struct dicom_commit_user commit_user = {
	.answered = commit_answered,
	.done = commit_done,
};

static void
commit_ready(struct dicom_lease *l, struct dicom_conn *dc, void *arg)
{
	struct send *s = arg;
	struct dimse_commit_ref *refs = calloc((size_t)s->n + 1,
	    sizeof(*refs));
	size_t n = 0;
	char err[256];

	(void)l;
	if (refs == NULL)
		abort();
	for (int i = 0; i < s->n; i++) {
		const struct item *it = &s->items[i];

		if (it->sop_instance[0] == '\0' || (s->commit == 1 &&
		    !it->stored))
			continue;
		snprintf(refs[n].sop_class, sizeof(refs[n].sop_class), "%s",
		    it->sop_class);
		snprintf(refs[n].sop_instance, sizeof(refs[n].sop_instance),
		    "%s", it->sop_instance);
		n++;
	}
	s->cm = n == 0 ? NULL : dicom_commit_start(dc, refs, n, ++s->msgid,
	    s->conf->limits.dimse_ms, s->conf->limits.commit_ms, &commit_user,
	    s, err, sizeof(err));
	free(refs);
	if (s->cm == NULL) {
		fprintf(stderr, "vnamig-send: storage commitment: %s\n", n ?
		    err : "nothing to ask commitment for");
		s->failed++;
		s->cm_done = 1;
		dicom_lease_return(s->cl);
		s->cl = NULL;
		maybe_finish(s);
	}
}

static void
commit_message(struct dicom_lease *l, void *arg, enum dimse_asm_result r,
    const struct dimse_asm_event *ev)
{
	struct send *s = arg;

	(void)l;
	if (s->cm != NULL)
		dicom_commit_message(s->cm, r, ev);
}

static void
commit_failed(struct dicom_lease *l, void *arg, const char *why)
{
	struct send *s = arg;

	(void)l;
	s->cl = NULL;
	if (s->cm != NULL) {
		dicom_commit_conn_ended(s->cm, why);	/* may finish it */
		return;
	}
	fprintf(stderr, "vnamig-send: storage commitment: association "
	    "ended: %s\n", why);
	s->failed++;
	s->cm_done = 1;
	maybe_finish(s);
}

static const struct dicom_lease_user commit_lease_user = {
	.ready = commit_ready,
	.message = commit_message,
	.failed = commit_failed,
};

static void
pool_closed(void *arg)
{
	struct send *s = arg;

	event_base_loopexit(s->base, NULL);
}

/* maybe_finish: when every worker is done: commitment (if asked and not
 * yet), then close the pool and end the loop. */
static void
maybe_finish(struct send *s)
{
	char err[256];

	if (s->active > 0 || s->cl != NULL || (s->cm != NULL && !s->cm_done) ||
	    s->finishing)
		return;
	for (int i = 0; i < s->n; i++)
		if (!s->items[i].done) {
			s->items[i].done = 1;
			s->failed++;
			fprintf(stderr, "vnamig-send: %s: not sent (no "
			    "association)\n", s->items[i].path);
		}
	if (s->commit && s->cm == NULL && !s->cm_done) {
		s->cl = dicom_pool_lease(s->pool, s->peer, s->prop, s->nprop,
		    &commit_lease_user, s, err, sizeof(err));
		if (s->cl != NULL)
			return;		/* commit_ready goes on */
		fprintf(stderr, "vnamig-send: storage commitment: %s\n", err);
		s->failed++;
	}
	s->finishing = 1;
	dicom_pool_close(s->pool, pool_closed, s);
}

static void
usage(FILE *f)
{
	fputs("NAME\n"
"    vnamig-send - send DICOM files to a peer (C-STORE), or C-ECHO it\n"
"\n"
"SYNOPSIS\n"
"    vnamig-send [-c FILE] [-q] [-j N] PEER FILE...\n"
"    vnamig-send [-c FILE] --echo PEER\n"
"    vnamig-send [-c FILE] [-q] --commit|--commit-only PEER FILE...\n"
"\n"
"DESCRIPTION\n"
"    Opens an association (-j: several) from node.ae_title to the peer\n"
"    named PEER in the configuration (its AE title, host and port, and\n"
"    its tls: settings) and sends each FILE, a Part 10 file, with\n"
"    C-STORE, one after the other. Each file's dataset is sent as stored, in its own\n"
"    transfer syntax: one presentation context is proposed per SOP\n"
"    class and transfer syntax, and a file whose context the peer does\n"
"    not accept is reported and skipped. One line per file that did not\n"
"    succeed (every file when not on a terminal): PATH: 0xSSSS\n"
"    (meaning), with the peer's error comment. On a terminal a progress\n"
"    bar is shown on stderr.\n"
"\n"
"OPTIONS\n"
"    -c, --config FILE\n"
"        the configuration (default /usr/local/etc/vnamigd.yaml)\n"
"    --echo\n"
"        C-ECHO the peer instead of sending files\n"
"    -j, --jobs N\n"
"        send over N associations at once (default 1), each taking the\n"
"        next file when it has room; at most the peer's\n"
"        max_associations and limits.associations_out are open at once,\n"
"        and an association is reused rather than opened again. On each,\n"
"        up to the asynchronous operations window the peer grants (we\n"
"        ask for limits.async_window; DCMTK and Orthanc grant none: one\n"
"        at a time) C-STOREs are in flight\n"
"    --commit\n"
"        after sending, ask the peer for Storage Commitment (N-ACTION)\n"
"        of the files it stored, and wait up to limits.commit_timeout for\n"
"        its report (N-EVENT-REPORT): on this association, or, when\n"
"        listen.dicom is configured, on one the peer opens to node.ae_title\n"
"        there (this association is then released once the request is\n"
"        answered). One line per file: committed, or the failure reason\n"
"    --commit-only\n"
"        the same without sending: is what these files hold committed\n"
"        at the peer?\n"
"    -q, --quiet\n"
"        print nothing but errors\n"
"    -h, --help\n"
"        this page\n"
"\n"
"EXIT STATUS\n"
"    0 when every file was stored (success or warning status), and with\n"
"    --commit every one committed, and the association released; 1 when\n"
"    any was not; 2 on bad usage or an unusable configuration.\n", f);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "echo", no_argument, NULL, 'e' },
		{ "commit", no_argument, NULL, 'C' },
		{ "commit-only", no_argument, NULL, 'O' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cpath = SYSCONFDIR "/vnamigd.yaml";
	static struct send s;
	struct dicom_propose *prop = s.prop;
	const struct conf_peer *peer = NULL;
	struct worker *w = NULL;
	unsigned nprop = 0;
	char *errs = NULL, err[256], *end;
	int ch, jobs = 1, nw;

	while ((ch = getopt_long(argc, argv, "c:j:qh", lo, NULL)) != -1)
		switch (ch) {
		case 'c': cpath = optarg; break;
		case 'e': s.echo = 1; break;
		case 'C': s.commit = 1; break;
		case 'O': s.commit = 2; break;
		case 'j':
			jobs = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || jobs < 1 || jobs > 1000) {
				fprintf(stderr, "vnamig-send: -j %s: a number of "
				    "associations, 1-1000\n", optarg);
				return 2;
			}
			break;
		case 'q': s.quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	if (optind >= argc || (s.echo ? argc - optind != 1 :
	    argc - optind < 2) || (s.echo && s.commit)) {
		usage(stderr);
		return 2;
	}
	if ((s.conf = conf_load_file(cpath, &errs)) == NULL) {
		fprintf(stderr, "%s", errs);
		free(errs);
		return 2;
	}
	log_setup(LOG_LVL_WARN, 0, "vnamig-send", 0);
	for (size_t i = 0; i < s.conf->npeers; i++)
		if (strcmp(s.conf->peers[i].name, argv[optind]) == 0)
			peer = &s.conf->peers[i];
	if (peer == NULL) {
		fprintf(stderr, "vnamig-send: no peer named \"%s\" in %s\n",
		    argv[optind], cpath);
		conf_free(s.conf);
		return 2;
	}
	s.n = s.echo ? 0 : argc - optind - 1;
	if ((s.items = calloc((size_t)s.n + 1, sizeof(*s.items))) == NULL)
		abort();
	for (int i = 0; i < s.n; i++) {
		struct item *it = &s.items[i];
		unsigned k;

		it->path = argv[optind + 1 + i];
		if (read_meta(it) < 0) {
			s.failed++;
			it->done = 1;
			continue;
		}
		s.total += it->size;
		for (k = 0; k < nprop; k++)
			if (strcmp(prop[k].abstract, it->sop_class) == 0 &&
			    strcmp(prop[k].ts[0], it->ts) == 0)
				break;
		if (k == nprop && nprop < DICOM_MAX_PCTX) {
			prop[nprop].abstract = it->sop_class;
			prop[nprop].ts[0] = it->ts;
			prop[nprop].nts = 1;
			nprop++;
		}
	}
	if (s.echo) {
		prop[0].abstract = DIMSE_VERIFICATION_CLASS;
		prop[0].ts[0] = "1.2.840.10008.1.2";
		prop[0].nts = 1;
		nprop = 1;
	}
	if (s.commit == 2)	/* nothing is sent: only commitment */
		nprop = 0;
	if (s.commit && nprop < DICOM_MAX_PCTX) {
		prop[nprop].abstract = DIMSE_COMMIT_CLASS;
		prop[nprop].ts[0] = "1.2.840.10008.1.2.1";
		prop[nprop].ts[1] = "1.2.840.10008.1.2";
		prop[nprop].nts = 2;
		nprop++;
	}
	if (nprop == 0) {
		fprintf(stderr, "vnamig-send: nothing to send\n");
		return 1;
	}
	s.nprop = nprop;
	s.peer = peer;
	s.tty = isatty(STDERR_FILENO);
	if ((s.base = event_base_new()) == NULL)
		abort();
	s.net = net_server_new(s.base, s.conf, &s);
	if (s.commit && s.conf->dicom.enabled) {
		if (net_server_listen(s.net, &s.conf->dicom, &net_dicom_ops,
		    err, sizeof(err)) < 0) {
			fprintf(stderr, "vnamig-send: listen.dicom (for "
			    "commitment reports): %s\n", err);
			return 2;
		}
		s.listening = 1;
		net_server_resolve(s.net, peer->host);	/* it calls back */
	}
	s.pool = dicom_pool_new(s.net, s.conf);
	clock_gettime(CLOCK_MONOTONIC, &s.t0);
	/* as many associations as asked, at most one per file; the pool
	 * keeps to peers[].max_associations and limits.associations_out */
	nw = s.commit == 2 ? 0 : s.echo ? 1 : jobs < s.n ? jobs : s.n;
	if ((w = calloc((size_t)nw + 1, sizeof(*w))) == NULL)
		abort();
	for (int i = 0; i < nw; i++) {
		w[i].s = &s;
		s.active++;
		w[i].l = dicom_pool_lease(s.pool, peer, prop, nprop,
		    &worker_user, &w[i], err, sizeof(err));
		if (w[i].l == NULL) {
			fprintf(stderr, "vnamig-send: %s: %s\n", peer->name,
			    err);
			s.failed++;
			s.active--;
		}
	}
	maybe_finish(&s);
	if (!s.finishing || dicom_pool_count(s.pool, NULL) > 0)
		event_base_dispatch(s.base);
	if (s.tty && !s.quiet && !s.echo)
		fputc('\n', stderr);
	if (s.listening)	/* the peer's report association ends */
		net_server_wait_idle(s.net, s.conf->limits.network_ms);
	dicom_commit_free(s.cm);
	dicom_pool_free(s.pool);
	net_server_free(s.net);
	event_base_free(s.base);
	free(w);
	free(s.items);
	conf_free(s.conf);
	return s.failed ? 1 : 0;
}
