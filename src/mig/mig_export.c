/*
 * mig_export.c — the file-system export target's writer and checker
 * thread (see mig_export.h).
 *
 * One thread takes jobs in order; the loop hears of a finished job by a
 * byte on a pipe (the pattern of src/net/store_sink.c). A job's files are
 * written one after another: the disk is the bottleneck, not the CPU.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "dimse/ds_digest.h"
#include "dimse/ds_edit.h"
#include "dimse/ds_ts.h"
#include "dimse/ds_write.h"
#include "src/mig/mig_export.h"
#include "src/util/fsutil.h"

#define CHUNK	(1u << 20)

struct mig_export {
	pthread_t		 thr;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct mig_xjob		*todo, **todo_tail;	/* loop -> thread */
	struct mig_xjob		*done, **done_tail;	/* thread -> loop */
	int			 pipe[2];
	struct event		*ev;
	int			 stopping;
	uint8_t			*buf;		/* the thread's */
	/* directories whose entry in their parent this process made
	 * durable (the thread's; a ring): one that existed already is
	 * synced once all the same, since the process that made it may
	 * have died, or failed, before its parent's fsync */
#define SYNCED_MAX	16
	char			*synced[SYNCED_MAX];
	unsigned		 nsynced;
};

int
mig_export_uid_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.' && s[i + 1] == '.')
			return 0;
		if (s[i] != '.' && (s[i] < '0' || s[i] > '9'))
			return 0;
	}
	return 1;
}

int
mig_export_path(const char *root, const char *study, const char *series,
    const char *sop, char *out, size_t cap)
{
	int n;

	if (!mig_export_uid_ok(study) || !mig_export_uid_ok(series) ||
	    !mig_export_uid_ok(sop))
		return -1;
	n = snprintf(out, cap, "%s/%s/%s/%s.dcm", root, study, series, sop);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* ---------------------------------------------------------------------- */
/* The thread's work. */

struct hdr {
	uint8_t		 b[1024];
	size_t		 n;
};

static int
hdr_sink(void *arg, const uint8_t *p, size_t n)
{
	struct hdr *h = arg;

	if (h->n + n > sizeof(h->b))
		return -1;
	memcpy(h->b + h->n, p, n);
	h->n += n;
	return 0;
}

/* refuse: the instance itself cannot be done (no retry helps). */
static void refuse(struct mig_xfile *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
refuse(struct mig_xfile *f, const char *fmt, ...)
{
	va_list ap;

	f->rc = EINVAL;
	f->permanent = 1;
	va_start(ap, fmt);
	vsnprintf(f->why, sizeof(f->why), fmt, ap);
	va_end(ap);
}

static int
fail(struct mig_xfile *f, int e, const char *what, const char *path)
{
	f->rc = e ? e : EIO;
	snprintf(f->why, sizeof(f->why), "%s %.250s: %s", what, path,
	    strerror(f->rc));
	return -1;
}

/* mkdir_sync: dir exists, and (with sync) its entry in its parent is
 * durable: the parent is fsynced when dir was made now, or the first
 * time this process finds it (made by a process that may have died
 * before that fsync, or whose fsync failed). */
static int
mkdir_sync(struct mig_export *x, const char *dir, int sync)
{
	char parent[8192], *slash;

	int made = mkdir(dir, 0755) == 0;

	if (!made && errno != EEXIST)
		return -1;
	if (!sync)
		return 0;
	/* (made now: its parent is synced whatever the ring says: one
	 * synced before may have been moved away since) */
	for (unsigned i = 0; !made && i < SYNCED_MAX; i++)
		if (x->synced[i] != NULL && strcmp(x->synced[i], dir) == 0)
			return 0;
	snprintf(parent, sizeof(parent), "%s", dir);
	if ((slash = strrchr(parent, '/')) != NULL && slash != parent)
		*slash = '\0';
	if (fs_sync_dir(parent) < 0)
		return -1;
	free(x->synced[x->nsynced % SYNCED_MAX]);
	if ((x->synced[x->nsynced++ % SYNCED_MAX] = strdup(dir)) == NULL)
		abort();
	return 0;
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* read_span: f's dataset bytes [off, off + len) of the open segment in,
 * a chunk at a time, to fn (which returns -1 to stop, f->rc set). */
static int
read_span(struct mig_export *x, struct mig_xfile *f, int in,
    int (*fn)(void *, struct mig_xfile *, const uint8_t *, size_t),
    void *arg)
{
	uint64_t left = f->len, pos = f->off;

	while (left > 0) {
		size_t want = left < CHUNK ? (size_t)left : CHUNK;
		ssize_t r = pread(in, x->buf, want, (off_t)pos);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return fail(f, r == 0 ? EIO : errno, "cannot read the "
			    "spool segment", f->src);
		if (fn(arg, f, x->buf, (size_t)r) < 0)
			return -1;
		left -= (uint64_t)r;
		pos += (uint64_t)r;
	}
	return 0;
}

/* A write's bytes: to the file and its hash. */
struct wsink {
	int		 fd;
	EVP_MD_CTX	*md;
	const char	*name;
};

static int
wsink_put(void *arg, struct mig_xfile *f, const uint8_t *p, size_t n)
{
	struct wsink *w = arg;

	if (write_all(w->fd, p, n) < 0)
		return fail(f, errno, "cannot write", w->name);
	EVP_DigestUpdate(w->md, p, n);
	return 0;
}

static void
write_one(struct mig_export *x, const struct mig_xjob *j,
    struct mig_xfile *f)
{
	char fin[4096 + 256], tmp[4096 + 400], dir[4096 + 200];
	struct hdr h = { .n = 0 };
	struct stat sb;
	struct wsink w;
	EVP_MD_CTX *md = NULL;
	unsigned ml;
	int in = -1, out = -1;

	errno = 0;
	if (mig_export_path(j->root, f->study, f->series, f->sop, fin,
	    sizeof(fin)) < 0) {
		refuse(f, "a UID is not fit for a file "
		    "name (study \"%.64s\", series \"%.64s\", instance "
		    "\"%.64s\"): digits and dots only, at most 64", f->study,
		    f->series, f->sop);
		return;
	}
	if (stat(j->root, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		/* never made: an unmounted share must not be written under
		 * its mount point */
		f->rc = errno ? errno : ENOTDIR;
		snprintf(f->why, sizeof(f->why), "the export root %.200s is "
		    "not a directory (%s); vnamig does not create it: make "
		    "it, or mount it", j->root, strerror(f->rc));
		return;
	}
	snprintf(dir, sizeof(dir), "%s/%s", j->root, f->study);
	if (mkdir_sync(x, dir, j->fsync) < 0) {
		fail(f, errno, "cannot make the directory", dir);
		return;
	}
	snprintf(dir, sizeof(dir), "%s/%s/%s", j->root, f->study, f->series);
	if (mkdir_sync(x, dir, j->fsync) < 0) {
		fail(f, errno, "cannot make the directory", dir);
		return;
	}
	/* one name per instance: what a killed process left is taken over
	 * (truncated) by the next write of the same instance */
	snprintf(tmp, sizeof(tmp), "%s/.%s.dcm.tmp", dir, f->sop);
	if (ds_write_part10_header(hdr_sink, &h, f->cls, f->sop, f->ts) != 0) {
		refuse(f, "cannot write the file meta "
		    "group of %.64s", f->sop);
		return;
	}
	if ((in = open(f->src, O_RDONLY | O_CLOEXEC)) < 0) {
		fail(f, errno, "cannot open the spool segment", f->src);
		return;
	}
	if ((out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) < 0) {
		fail(f, errno, "cannot create", tmp);
		close(in);
		return;
	}
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex2(md, EVP_sha256(), NULL) != 1)
		abort();
	if (write_all(out, h.b, h.n) < 0) {
		fail(f, errno, "cannot write", tmp);
		goto out;
	}
	w.fd = out;
	w.md = md;
	w.name = tmp;
	if (read_span(x, f, in, wsink_put, &w) < 0)
		goto out;
	if (j->fsync && fsync(out) < 0) {
		fail(f, errno, "cannot fsync", tmp);
		goto out;
	}
	if (close(out) < 0) {
		out = -1;
		fail(f, errno, "cannot close", tmp);
		goto out;
	}
	out = -1;
	if (rename(tmp, fin) < 0) {
		fail(f, errno, "cannot rename to", fin);
		goto out;
	}
	if (j->fsync && fs_sync_dir(dir) < 0) {
		fail(f, errno, "cannot fsync the directory", dir);
		goto out;
	}
	EVP_DigestFinal_ex(md, f->sha, &ml);
	f->bytes = h.n + f->len;
	f->rc = 0;
out:
	if (out >= 0)
		close(out);
	if (f->rc != 0)
		unlink(tmp);
	close(in);
	EVP_MD_CTX_free(md);
}

/* check_one: read the file back and hash its dataset: what follows the
 * meta group, whose length (0002,0000) UL comes first after "DICM". */
static void
check_one(struct mig_export *x, const struct mig_xjob *j,
    struct mig_xfile *f)
{
	char fin[4096 + 256];
	uint8_t head[144];
	EVP_MD_CTX *md;
	unsigned ml;
	struct stat sb;
	uint64_t skip;
	ssize_t r;
	int fd;

	if (mig_export_path(j->root, f->study, f->series, f->sop, fin,
	    sizeof(fin)) < 0) {
		refuse(f, "a UID is not fit for a file "
		    "name");
		return;
	}
	if ((fd = open(fin, O_RDONLY | O_CLOEXEC)) < 0) {
		fail(f, errno, "cannot open", fin);
		return;
	}
	if (fstat(fd, &sb) < 0 || (r = pread(fd, head, sizeof(head), 0)) !=
	    (ssize_t)sizeof(head) || memcmp(head + 128, "DICM", 4) != 0 ||
	    memcmp(head + 132, "\x02\x00\x00\x00UL\x04\x00", 8) != 0) {
		f->rc = EBADMSG;
		snprintf(f->why, sizeof(f->why), "%.250s is not a Part 10 file "
		    "that starts with its meta group length", fin);
		close(fd);
		return;
	}
	skip = 144 + ((uint64_t)head[140] | (uint64_t)head[141] << 8 |
	    (uint64_t)head[142] << 16 | (uint64_t)head[143] << 24);
	if (skip > (uint64_t)sb.st_size) {
		f->rc = EBADMSG;
		snprintf(f->why, sizeof(f->why), "%.250s: its meta group "
		    "length runs past the end of the file", fin);
		close(fd);
		return;
	}
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex2(md, EVP_sha256(), NULL) != 1)
		abort();
	for (uint64_t pos = skip;;) {
		r = pread(fd, x->buf, CHUNK, (off_t)pos);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fail(f, errno, "cannot read", fin);
			break;
		}
		if (r == 0) {
			EVP_DigestFinal_ex(md, f->sha, &ml);
			f->bytes = (uint64_t)sb.st_size;
			f->rc = 0;
			break;
		}
		EVP_DigestUpdate(md, x->buf, (size_t)r);
		pos += (uint64_t)r;
	}
	EVP_MD_CTX_free(md);
	close(fd);
}

/* What the editor writes goes to the file, the hash and the digest. */
struct esink {
	int			 fd;
	struct sha256		 md;
	struct ds_parser	*p;
	struct ds_digest	*dg;	/* p's callbacks' */
	int			 parse_ok, werr;
	uint64_t		 n;
};

static int
edit_sink(void *arg, const uint8_t *p, size_t n)
{
	struct esink *e = arg;

	if (write_all(e->fd, p, n) < 0) {
		e->werr = errno ? errno : EIO;
		return -1;
	}
	/* the SHA-256 and the pixel digest in one pass (after a parse
	 * error the parser takes nothing and the hash still all of it) */
	if (ds_digest_feed(e->dg, e->p, &e->md, p, n) == DS_ERROR)
		e->parse_ok = 0;
	e->n += n;
	return 0;
}

static int
edit_put(void *arg, struct mig_xfile *f, const uint8_t *p, size_t n)
{
	(void)f;
	return ds_editor_feed(arg, p, n) == DS_ERROR ? -1 : 0;
}

static void
edit_one(struct mig_export *x, struct mig_xfile *f)
{
	char tmp[4096 + 16];
	const struct ds_ts *ts = ds_ts_lookup(f->ts);
	struct ds_limits lim;
	struct ds_digest *dg = NULL;
	struct ds_editor *ed = NULL;
	struct ds_path path = { .n = 1 };
	struct esink e = { .fd = -1, .parse_ok = 1 };
	uint8_t val[MIG_X_UID + 1];
	size_t vlen = strlen(f->set_val);
	int in = -1, rr;

	if (ts == NULL) {
		refuse(f, "transfer syntax %.64s is not "
		    "one vnamig can edit", f->ts);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", f->dst);
	memcpy(val, f->set_val, vlen);
	if (vlen & 1)
		val[vlen++] = ' ';	/* LO pads with a space */
	ds_limits_default(&lim);
	path.step[0].tag = f->set_tag;
	if ((in = open(f->src, O_RDONLY | O_CLOEXEC)) < 0) {
		fail(f, errno, "cannot open the spool segment", f->src);
		return;
	}
	if ((e.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0) {
		fail(f, errno, "cannot create", tmp);
		close(in);
		return;
	}
	sha256_init(&e.md);
	e.dg = dg = ds_digest_new();
	e.p = ds_parser_new_dataset(ts, &lim, ds_digest_callbacks(), dg);
	ed = ds_editor_new(ts, &lim, edit_sink, &e);
	if (ds_edit_set(ed, &path, DS_VR_LO, val, vlen) < 0) {
		refuse(f, "the edit is refused: %.250s",
		    ds_editor_error(ed));
		goto out;
	}
	f->rc = 0;
	rr = read_span(x, f, in, edit_put, ed);
	if (rr < 0 && f->rc != 0)
		goto out;	/* a read failed: said */
	if (rr < 0 || ds_editor_finish(ed) == DS_ERROR) {
		if (e.werr)
			fail(f, e.werr, "cannot write", tmp);
		else {
			f->rc = EBADMSG;
			snprintf(f->why, sizeof(f->why), "the dataset cannot "
			    "be edited: %.250s", ds_editor_error(ed));
		}
		goto out;
	}
	if (ds_editor_applied(ed) != 1) {
		f->rc = EBADMSG;
		snprintf(f->why, sizeof(f->why), "the edit was not applied");
		goto out;
	}
	if (close(e.fd) < 0) {
		e.fd = -1;
		fail(f, errno, "cannot close", tmp);
		goto out;
	}
	e.fd = -1;
	if (rename(tmp, f->dst) < 0) {
		fail(f, errno, "cannot rename to", f->dst);
		goto out;
	}
	sha256_final(&e.md, f->sha);
	f->canon_ok = e.parse_ok && ds_parse_finish(e.p) == DS_DONE &&
	    ds_digest_final(dg, f->canon, f->pixel, &f->has_pixels) == 0;
	f->bytes = e.n;
	f->rc = 0;
out:
	if (e.fd >= 0)
		close(e.fd);
	if (f->rc != 0)
		unlink(tmp);
	close(in);
	ds_editor_free(ed);
	ds_parser_free(e.p);
	ds_digest_free(dg);
}

static void *
run(void *arg)
{
	struct mig_export *x = arg;
	struct mig_xjob *j;

	pthread_mutex_lock(&x->mu);
	for (;;) {
		while (x->todo == NULL && !x->stopping)
			pthread_cond_wait(&x->cv, &x->mu);
		if (x->stopping)
			break;
		j = x->todo;
		if ((x->todo = j->next) == NULL)
			x->todo_tail = &x->todo;
		pthread_mutex_unlock(&x->mu);
		for (size_t i = 0; i < j->n; i++) {
			j->f[i].rc = 0;
			j->f[i].why[0] = '\0';
			if (j->kind == MIG_X_WRITE)
				write_one(x, j, &j->f[i]);
			else if (j->kind == MIG_X_EDIT)
				edit_one(x, &j->f[i]);
			else
				check_one(x, j, &j->f[i]);
		}
		pthread_mutex_lock(&x->mu);
		j->next = NULL;
		*x->done_tail = j;
		x->done_tail = &j->next;
		if (write(x->pipe[1], "", 1) < 0 && errno != EAGAIN)
			abort();
	}
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* The loop's side. */

static void
job_free(struct mig_xjob *j)
{
	free(j->f);
	free(j);
}

static void
on_done(evutil_socket_t fd, short ev, void *arg)
{
	struct mig_export *x = arg;
	struct mig_xjob *list, *j;
	char drain[64];

	(void)ev;
	while (read(fd, drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&x->mu);
	list = x->done;
	x->done = NULL;
	x->done_tail = &x->done;
	pthread_mutex_unlock(&x->mu);
	while ((j = list) != NULL) {
		list = j->next;
		j->done(j->arg, j);
		job_free(j);
	}
}

struct mig_export *
mig_export_new(struct event_base *base, char *err, size_t errlen)
{
	struct mig_export *x = calloc(1, sizeof(*x));

	if (x == NULL || (x->buf = malloc(CHUNK)) == NULL)
		abort();
	x->todo_tail = &x->todo;
	x->done_tail = &x->done;
	if (pipe2(x->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "export worker: cannot make a pipe: %s",
		    strerror(errno));
		free(x->buf);
		free(x);
		return NULL;
	}
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->cv, NULL);
	if ((x->ev = event_new(base, x->pipe[0], EV_READ | EV_PERSIST,
	    on_done, x)) == NULL || event_add(x->ev, NULL) < 0)
		abort();
	if (pthread_create(&x->thr, NULL, run, x) != 0) {
		snprintf(err, errlen, "export worker: cannot start a thread");
		event_free(x->ev);
		close(x->pipe[0]);
		close(x->pipe[1]);
		free(x->buf);
		free(x);
		return NULL;
	}
	return x;
}

void
mig_export_free(struct mig_export *x)
{
	struct mig_xjob *j;

	if (x == NULL)
		return;
	pthread_mutex_lock(&x->mu);
	x->stopping = 1;
	pthread_cond_signal(&x->cv);
	pthread_mutex_unlock(&x->mu);
	pthread_join(x->thr, NULL);
	while ((j = x->todo) != NULL) {
		x->todo = j->next;
		job_free(j);
	}
	while ((j = x->done) != NULL) {
		x->done = j->next;
		job_free(j);
	}
	event_free(x->ev);
	close(x->pipe[0]);
	close(x->pipe[1]);
	pthread_mutex_destroy(&x->mu);
	pthread_cond_destroy(&x->cv);
	for (unsigned i = 0; i < SYNCED_MAX; i++)
		free(x->synced[i]);
	free(x->buf);
	free(x);
}

struct mig_xjob *
mig_xjob_new(enum mig_xkind kind, const char *root, int fsync, size_t n)
{
	struct mig_xjob *j = calloc(1, sizeof(*j));

	if (j == NULL || (j->f = calloc(n ? n : 1, sizeof(*j->f))) == NULL)
		abort();
	j->kind = kind;
	snprintf(j->root, sizeof(j->root), "%s", root);
	j->fsync = fsync;
	j->n = n;
	return j;
}

void
mig_export_submit(struct mig_export *x, struct mig_xjob *j)
{
	pthread_mutex_lock(&x->mu);
	j->next = NULL;
	*x->todo_tail = j;
	x->todo_tail = &j->next;
	pthread_cond_signal(&x->cv);
	pthread_mutex_unlock(&x->mu);
}
