/*
 * store_sink.c — see store_sink.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "conf/conf.h"
#include "dimse/ds_write.h"
#include "src/net/store_loop.h"
#include "src/net/store_sink.h"
#include "src/util/hex.h"
#include "src/util/log.h"
#include "store/spool.h"
#include "store/store.h"
#include "store/store_key.h"

/* With a spool attached (the daemon), instances go to spool records and
 * their index rows and audit leaves to the store; otherwise (the tools)
 * to one file each in a directory. */
static struct spool *sink_spool;
static struct store_loop *sink_state;
static void (*spooled_fn)(void *, const struct spool_info *);
static void *spooled_arg;
static void (*durable_fn)(void *, double);
static void *durable_arg;

void
store_sink_on_durable(void (*fn)(void *, double), void *arg)
{
	durable_fn = fn;
	durable_arg = arg;
}

void
store_sink_on_spooled(void (*fn)(void *, const struct spool_info *),
    void *arg)
{
	spooled_fn = fn;
	spooled_arg = arg;
}

struct store_sink {
	int		 fd;
	int		 failed;
	int		 err_no;
	uint64_t	 bytes;		/* written (sync) or queued (async) */
	char		*dir;
	char		*tmp;		/* DIR/.in.<uid>.<n> */
	char		*final;		/* DIR/<uid>.dcm */
	/* async: the committer thread does every disk operation */
	int		 async;
	size_t		 backlog;	/* queued, not yet written (cm.mu) */
	int		 drain_wanted;	/* post a drain note at 0 (cm.mu) */
	void		(*drain_fn)(void *);	/* loop side */
	void		*drain_arg;
	int		 gone;		/* loop side: aborted or committed */
	char		 open_err[300];	/* thread: why it could not open */
	/* spool mode */
	struct spool_rec *rec;		/* thread side */
	struct spool_hasher *hasher;	/* loop side: the dataset's hashes */
	int		 loop_hash;	/* taken on the loop (set before
					 * OP_OPEN; read by the thread) */
	int		 arriving;	/* counted in sinks_arriving */
	char		*cls, *inst, *ts;
	char		 origin[96];	/* "AE@address" of the sender */
	char		 origin_ae[17];	/* its AE title (set before OP_OPEN:
					 * the spool record keeps it) */
	/* a push source's instance: queued for the engine in the unit */
	char		 push_src[CONF_NAME_MAX + 1];
	char		 push_study[SPOOL_UID_MAX + 1];
	char		 push_series[SPOOL_UID_MAX + 1];
};

int
store_uid_valid(const char *uid)
{
	return spool_uid_valid(uid);
}

void
store_sink_use_spool(struct spool *sp, struct store_loop *sl)
{
	sink_spool = sp;
	sink_state = sl;
}

void
store_sink_set_push(struct store_sink *s, const char *source,
    const char *study, const char *series)
{
	snprintf(s->push_src, sizeof(s->push_src), "%s", source);
	snprintf(s->push_study, sizeof(s->push_study), "%s", study);
	snprintf(s->push_series, sizeof(s->push_series), "%s", series);
}

/* write_all: n bytes to the file; -1 (failed, err_no set) on error. */
static int
write_all(struct store_sink *s, const uint8_t *p, size_t n)
{
	while (n > 0 && !s->failed) {
		ssize_t w = write(s->fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			s->failed = 1;
			s->err_no = w < 0 ? errno : EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return s->failed ? -1 : 0;
}

/* put: write and count (a sink without the committer). */
static int
put(void *arg, const uint8_t *p, size_t n)
{
	struct store_sink *s = arg;

	if (write_all(s, p, n) < 0)
		return -1;
	s->bytes += n;
	return 0;
}

static void arrived(struct store_sink *s);

/* (on the loop) */
static void
sink_free(struct store_sink *s)
{
	arrived(s);
	free(s->cls);
	free(s->inst);
	free(s->ts);
	free(s->dir);
	free(s->tmp);
	free(s->final);
	spool_hasher_free(s->hasher);
	free(s);
}

/* Work for the committer thread, and notes back to the loop, in order. */
enum op_kind {
	OP_OPEN,	/* create the temporary file */
	OP_WRITE,	/* append data[0..n) */
	OP_ABORT,	/* close and remove it; then OP_FREE back */
	OP_COMMIT,	/* a store_commit (in data): one of the group;
			 * back once the group is durable */
	OP_INDEX,	/* (back) a store_commit's record is finished:
			 * index it while the group is synced */
	OP_DRAINED,	/* (back) the backlog reached 0 */
	OP_FREE,	/* (back) the loop frees the sink */
};

struct op {
	struct op		*next;
	enum op_kind		 k;
	struct store_sink	*s;
	uint64_t		 expect;	/* OP_WRITE: spool_rec_expect */
	size_t			 n;
	uint8_t			 data[];
};

static int cm_running(void);
static void queue_op(struct op *o);

static struct op *
op_new(enum op_kind k, struct store_sink *s, const uint8_t *p, size_t n)
{
	struct op *o = malloc(sizeof(*o) + n);

	if (o == NULL)
		abort();
	o->next = NULL;
	o->k = k;
	o->s = s;
	o->expect = 0;
	o->n = n;
	if (n > 0)
		memcpy(o->data, p, n);
	return o;
}

/*
 * Spool records whose bytes are arriving (begun, not yet committed or
 * aborted). When a record begins with no other arriving, its hashes are
 * taken on the loop (put_async), while the bytes just read are in its
 * cache: the loop is then waiting on one sender and has time to spare,
 * the writer only writes, and the record is ready for its sync about
 * when its last bytes are written, instead of a hash of them later
 * (storescu -> vnamigd, 50 x 1 MiB, from the last byte to the written
 * record: 980 us median with the writer hashing, 106 us with the loop;
 * the whole run 12% faster, mean of 8 alternating pairs). With several
 * arriving at once (a migration's parallel retrieves), the loop is the
 * path they share, and the writer hashes: taken on the loop there, the
 * same CPU kept fewer cores busy and the migration was no faster.
 */
static unsigned sinks_arriving;

static void
arrived(struct store_sink *s)
{
	if (s->arriving) {
		s->arriving = 0;
		sinks_arriving--;
	}
}

/* put_async: queue bytes for the thread to write (and hash them). */
static int
put_async(void *arg, const uint8_t *p, size_t n)
{
	struct store_sink *s = arg;
	struct op *o;

	if (n == 0)
		return 0;
	s->bytes += n;
	o = op_new(OP_WRITE, s, p, n);
	if (s->hasher != NULL) {
		spool_hasher_feed(s->hasher, o->data, n);
		o->expect = spool_hasher_expect(s->hasher);
	}
	queue_op(o);
	return 0;
}

struct store_sink *
store_sink_begin(const char *dir, const char *sop_class,
    const char *sop_instance, const char *ts_uid, const char *ae,
    const char *addr, char *err, size_t cap)
{
	static unsigned long seq;
	struct store_sink *s;

	if (!store_uid_valid(sop_instance) || !store_uid_valid(sop_class) ||
	    !store_uid_valid(ts_uid)) {
		snprintf(err, cap, "invalid UID (SOP class \"%.64s\", instance "
		    "\"%.64s\", transfer syntax \"%.64s\"): not used as a "
		    "file name", sop_class, sop_instance, ts_uid);
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		abort();
	if (asprintf(&s->tmp, "%s/.in.%s.%lu.%ld", dir, sop_instance, ++seq,
	    (long)getpid()) < 0 || asprintf(&s->final, "%s/%s.dcm", dir,
	    sop_instance) < 0 || (s->dir = strdup(dir)) == NULL)
		abort();
	s->fd = -1;
	snprintf(s->origin, sizeof(s->origin), "%s@%s", ae, addr);
	snprintf(s->origin_ae, sizeof(s->origin_ae), "%s", ae);
	if (cm_running() && sink_spool != NULL) {
		/* the thread takes a spool record; the file meta is the
		 * spool's to write */
		s->async = 1;
		if ((s->cls = strdup(sop_class)) == NULL ||
		    (s->inst = strdup(sop_instance)) == NULL ||
		    (s->ts = strdup(ts_uid)) == NULL)
			abort();
		if (sinks_arriving == 0) {
			s->hasher = spool_hasher_new(ts_uid);
			s->loop_hash = 1;
		}
		s->arriving = 1;
		sinks_arriving++;
		queue_op(op_new(OP_OPEN, s, NULL, 0));
		return s;
	}
	if (cm_running()) {
		/* the thread creates the file; a failure shows at commit */
		s->async = 1;
		queue_op(op_new(OP_OPEN, s, NULL, 0));
		ds_write_part10_header(put_async, s, sop_class, sop_instance,
		    ts_uid);
		return s;
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		snprintf(err, cap, "cannot create %s: %s", dir,
		    strerror(errno));
		sink_free(s);
		return NULL;
	}
	if ((s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0640)) < 0) {
		snprintf(err, cap, "cannot create %s: %s", s->tmp,
		    strerror(errno));
		sink_free(s);
		return NULL;
	}
	if (ds_write_part10_header(put, s, sop_class, sop_instance,
	    ts_uid) != 0) {
		snprintf(err, cap, "write %s: %s", s->tmp,
		    strerror(s->err_no));
		store_sink_abort(s);
		return NULL;
	}
	return s;
}

int
store_sink_write(struct store_sink *s, const uint8_t *p, size_t n, char *err,
    size_t cap)
{
	if (s->async)
		return put_async(s, p, n);
	if (put(s, p, n) < 0) {
		snprintf(err, cap, "write %s: %s", s->tmp,
		    strerror(s->err_no));
		return -1;
	}
	return 0;
}

/* (below: the committer's group commit; one sink is a group of one) */
static int commit_one(struct store_sink *s, char *err, size_t cap);

int
store_sink_commit(struct store_sink *s, char *err, size_t cap)
{
	return commit_one(s, err, cap);
}

void
store_sink_abort(struct store_sink *s)
{
	if (s == NULL)
		return;
	if (s->async) {
		s->gone = 1;
		s->drain_fn = NULL;
		arrived(s);
		queue_op(op_new(OP_ABORT, s, NULL, 0));
		return;
	}
	if (s->fd >= 0)
		close(s->fd);
	unlink(s->tmp);
	sink_free(s);
}

uint64_t
store_sink_bytes(const struct store_sink *s)
{
	return s->bytes;
}

/* ---------------------------------------------------------------------- */
/* The committer. */

struct store_commit {
	struct store_commit	*next;
	struct store_sink	*s;
	void			(*done)(void *, int, const char *);
	void			*arg;
	int			 cancelled;	/* loop side only */
	struct timespec		 t0;		/* queued: the last byte */
	struct spool_hashes	 hashes;	/* spooled: taken on the loop */
	int			 rc;
	char			 err[300];
	struct spool_info	 info;		/* spooled: what to index */
	/* Indexed early (OP_INDEX): the thread set info before it posted
	 * it and writes only rc and err after; the loop waits for both
	 * the index unit and the sync (pending) before answering. */
	int			 early;
	int			 pending;	/* loop side */
	int			 idx_failed;	/* loop side */
	int			 pq_busy;	/* its unit writes a push queue
					 * row (pq_busy_add) */
};

static struct {
	pthread_t		 thr;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct op		*todo, **todo_tail;	/* loop -> thread */
	struct op		*done, **done_tail;	/* thread -> loop */
	int			 pipe[2];
	struct event		*ev;
	int			 running, stopping;
	uint64_t		 backlog;	/* every sink's (mu) */
	/* queued on the loop, handed over together (flush_ops) */
	struct op		*lq, **lq_tail;
	struct event		*flush_ev;
} cm;

static int
cm_running(void)
{
	return cm.running;
}

/*
 * queue_op: o for the thread, handed over with every other op queued in
 * the same turn of the loop (flush_ops, from an event made active by the
 * first: it runs before the loop waits again). One handover an op woke
 * the thread for each: a small instance's open, bytes and commit three
 * times, each wake a lock taken against the loop and a switch of tasks.
 */
static void
queue_op(struct op *o)
{
	/* (none after store_committer_stop: nothing queues then; one that
	 * did would stay here, as it stayed in todo before) */
	if (cm.lq == NULL && cm.flush_ev != NULL)
		event_active(cm.flush_ev, EV_TIMEOUT, 0);
	*cm.lq_tail = o;
	cm.lq_tail = &o->next;
}

static void
flush_ops(void)
{
	if (cm.lq == NULL)
		return;
	pthread_mutex_lock(&cm.mu);
	for (struct op *o = cm.lq; o != NULL; o = o->next)
		if (o->k == OP_WRITE) {
			o->s->backlog += o->n;
			cm.backlog += o->n;
		}
	*cm.todo_tail = cm.lq;
	cm.todo_tail = cm.lq_tail;
	pthread_cond_signal(&cm.cv);
	pthread_mutex_unlock(&cm.mu);
	cm.lq = NULL;
	cm.lq_tail = &cm.lq;
}

static void
on_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	flush_ops();
}

/* post: a note back to the loop (cm.mu held). The pipe is written only
 * when the list was empty: deliver empties the pipe before it takes the
 * list, so notes added to a list not yet taken go with it. Two notes an
 * instance, each with its write, woke the loop twice: in the migration
 * benchmark's small set (1,000 instances) vnamigd made 3,905 write(2)
 * calls and 8,603 context switches before, 2,430 and 7,828 after. */
static void
post(struct op *o)
{
	int wake = cm.done == NULL;

	o->next = NULL;
	*cm.done_tail = o;
	cm.done_tail = &o->next;
	if (wake && write(cm.pipe[1], "", 1) < 0 && errno != EAGAIN)
		abort();
}

int
store_sink_backlog_over(struct store_sink *s, uint64_t limit)
{
	int over;

	if (!s->async)
		return 0;
	pthread_mutex_lock(&cm.mu);
	over = s->backlog > limit || cm.backlog > limit;
	pthread_mutex_unlock(&cm.mu);
	return over;
}

uint64_t
store_sink_backlog_total(void)
{
	uint64_t n;

	if (!cm.running)
		return 0;
	pthread_mutex_lock(&cm.mu);
	n = cm.backlog;
	pthread_mutex_unlock(&cm.mu);
	return n;
}

void
store_sink_cancel_drain(struct store_sink *s)
{
	s->drain_fn = NULL;	/* loop side; a note that comes is ignored */
}

int
store_sink_on_drain(struct store_sink *s, void (*fn)(void *), void *arg)
{
	int wait = 0;

	if (!s->async)
		return 0;
	pthread_mutex_lock(&cm.mu);
	if (s->backlog > 0) {
		s->drain_wanted = 1;
		s->drain_fn = fn;
		s->drain_arg = arg;
		wait = 1;
	}
	pthread_mutex_unlock(&cm.mu);
	return wait;
}

/* commit_group: make every sink of the group durable; one directory
 * fsync per distinct directory. Runs on the committer thread (or, for
 * a group of one, the caller's). The sinks are left to the caller. */
/* Complete N spooled records (one fdatasync per lane) and give each
 * commit its outcome and what to index. */
static void
flush_spooled(struct spool_rec **recs, struct store_commit **cs, size_t n)
{
	spool_commit(recs, n);
	for (size_t i = 0; i < n; i++) {
		const char *e;

		if (spool_rec_status(recs[i], &e) == 0) {
			cs[i]->rc = 0;
			if (!cs[i]->early)	/* (the loop reads it now) */
				cs[i]->info = *spool_rec_info(recs[i]);
		} else
			snprintf(cs[i]->err, sizeof(cs[i]->err), "%s", e);
		spool_done(recs[i]);
		cs[i]->s->rec = NULL;
	}
}

/* The spool sinks of a group: completed together, each lane synced
 * once; what the index needs is kept for the loop. */
static void
commit_spooled(struct store_commit *g)
{
	struct spool_rec *recs[256];
	struct store_commit *c, *cs[256];
	size_t n = 0;

	for (c = g; c != NULL; c = c->next) {
		struct store_sink *s = c->s;

		if (s->cls == NULL)
			continue;
		c->rc = -1;
		if (s->rec == NULL)
			snprintf(c->err, sizeof(c->err), "%s", s->open_err[0] ?
			    s->open_err : "no spool record");
		else if (s->failed)
			snprintf(c->err, sizeof(c->err), "%s", s->open_err);
		else {
			recs[n] = s->rec;
			cs[n++] = c;
		}
		if (n == sizeof(recs) / sizeof(recs[0])) {
			flush_spooled(recs, cs, n);
			n = 0;
		}
	}
	if (n > 0)
		flush_spooled(recs, cs, n);
	/* a failed sink's record goes back (cut) */
	for (c = g; c != NULL; c = c->next)
		if (c->s->cls != NULL && c->s->rec != NULL) {
			spool_abort(c->s->rec);
			c->s->rec = NULL;
		}
}

static void
commit_group(struct store_commit *g)
{
	struct store_commit *c, *d;
	int dfd;

	commit_spooled(g);
	for (c = g; c != NULL; c = c->next) {
		struct store_sink *s = c->s;

		if (s->cls != NULL)
			continue;
		c->rc = -1;
		if (s->fd < 0)
			snprintf(c->err, sizeof(c->err), "%s", s->open_err[0] ?
			    s->open_err : "the file was not created");
		else if (s->failed)
			snprintf(c->err, sizeof(c->err), "write %s: %s", s->tmp,
			    strerror(s->err_no));
		else if (fsync(s->fd) < 0)
			snprintf(c->err, sizeof(c->err), "fsync %s: %s", s->tmp,
			    strerror(errno));
		else if (close(s->fd), s->fd = -1, rename(s->tmp,
		    s->final) < 0)
			snprintf(c->err, sizeof(c->err), "rename %s: %s",
			    s->tmp, strerror(errno));
		else
			c->rc = 0;
	}
	for (c = g; c != NULL; c = c->next) {
		if (c->rc < 0 || c->s->cls != NULL)
			continue;
		for (d = g; d != c; d = d->next)	/* done already */
			if (d->rc == 0 && d->s->cls == NULL &&
			    strcmp(d->s->dir, c->s->dir) == 0)
				break;
		if (d != c)
			continue;
		if ((dfd = open(c->s->dir, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC)) < 0 || fsync(dfd) < 0) {
			char e[256];

			snprintf(e, sizeof(e), "fsync %s: %s", c->s->dir,
			    strerror(errno));
			for (d = c; d != NULL; d = d->next)
				if (d->rc == 0 && d->s->cls == NULL &&
				    strcmp(d->s->dir, c->s->dir) == 0) {
					d->rc = -1;
					snprintf(d->err, sizeof(d->err), "%s",
					    e);
				}
		}
		if (dfd >= 0)
			close(dfd);
	}
	for (c = g; c != NULL; c = c->next)
		if (c->rc < 0 && c->s->cls == NULL) {
			if (c->s->fd >= 0)
				close(c->s->fd);
			c->s->fd = -1;
			unlink(c->s->tmp);
		}
}

static int
commit_one(struct store_sink *s, char *err, size_t cap)
{
	struct store_commit c = { .s = s };

	commit_group(&c);
	if (c.rc < 0)
		snprintf(err, cap, "%s", c.err);
	sink_free(s);
	return c.rc;
}

/* run_op: one op on the committer thread; commits gather in *group,
 * notes to index them early in *itail. */
static void
run_op(struct op *o, struct store_commit ***gtail, struct op ***ctail,
    struct op ***itail)
{
	struct store_sink *s = o->s;

	switch (o->k) {
	case OP_OPEN:
		if (s->cls != NULL) {
			s->rec = spool_begin(sink_spool, s->cls, s->inst,
			    s->ts, s->origin_ae, s->open_err,
			    sizeof(s->open_err));
			if (s->rec != NULL && s->loop_hash)
				spool_rec_hash_outside(s->rec);	/* put_async */
			free(o);
			return;
		}
		if (mkdir(s->dir, 0750) < 0 && errno != EEXIST)
			snprintf(s->open_err, sizeof(s->open_err), "cannot "
			    "create %s: %s", s->dir, strerror(errno));
		else if ((s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0640)) < 0)
			snprintf(s->open_err, sizeof(s->open_err), "cannot "
			    "create %s: %s", s->tmp, strerror(errno));
		free(o);
		return;
	case OP_WRITE:
		if (s->rec != NULL && !s->failed) {
			if (spool_write(s->rec, o->data, o->n, s->open_err,
			    sizeof(s->open_err)) < 0 || spool_rec_expect(s->rec,
			    o->expect, s->open_err, sizeof(s->open_err)) < 0)
				s->failed = 1;
		} else if (s->fd >= 0)
			write_all(s, o->data, o->n);	/* counted on the loop */
		pthread_mutex_lock(&cm.mu);
		s->backlog -= o->n;
		cm.backlog -= o->n;
		if (s->backlog == 0 && s->drain_wanted) {
			s->drain_wanted = 0;
			o->k = OP_DRAINED;
			o->n = 0;
			post(o);
			o = NULL;
		}
		pthread_mutex_unlock(&cm.mu);
		free(o);
		return;
	case OP_ABORT:
		if (s->cls != NULL) {
			spool_abort(s->rec);
			s->rec = NULL;
		} else {
			if (s->fd >= 0)
				close(s->fd);
			s->fd = -1;
			unlink(s->tmp);
		}
		o->k = OP_FREE;
		pthread_mutex_lock(&cm.mu);
		post(o);
		pthread_mutex_unlock(&cm.mu);
		return;
	case OP_COMMIT: {
		struct store_commit *c = *(struct store_commit **)o->data;

		/* whole: the lane is free for the sender's next instance,
		 * which this group's fdatasync may then cover too */
		if (s->rec != NULL && !s->failed) {
			const struct spool_info *in;

			spool_rec_hashes(s->rec, &c->hashes);
			spool_finish(s->rec);
			/* indexed while the group is synced: the two syncs
			 * overlap (storescu -> vnamigd, one instance at a
			 * time: one sync less of latency each) */
			if ((in = spool_index_early(s->rec)) != NULL) {
				struct op *n = op_new(OP_INDEX, s,
				    (const uint8_t *)&c, sizeof(c));

				c->info = *in;
				c->early = 1;
				**itail = n;
				*itail = &n->next;
			}
		}
		c->next = NULL;
		**gtail = c;
		*gtail = &c->next;
		o->next = NULL;
		**ctail = o;
		*ctail = &o->next;
		return;
	}
	default:
		free(o);
		return;
	}
}

static void *
committer_main(void *arg)
{
	struct op *batch, *o, *next, *cops, **ctail, *iops, **itail;
	struct store_commit *group, **gtail;

	(void)arg;
	pthread_mutex_lock(&cm.mu);
	for (;;) {
		while (cm.todo == NULL && !cm.stopping)
			pthread_cond_wait(&cm.cv, &cm.mu);
		if (cm.todo == NULL)
			break;
		batch = cm.todo;
		cm.todo = NULL;
		cm.todo_tail = &cm.todo;
		pthread_mutex_unlock(&cm.mu);
		/* everything queued so far, in order; the commits among it
		 * made durable together at the end (group commit) */
		group = NULL;
		gtail = &group;
		cops = NULL;
		ctail = &cops;
		iops = NULL;
		itail = &iops;
		for (o = batch; o != NULL; o = next) {
			next = o->next;
			run_op(o, &gtail, &ctail, &itail);
		}
		if (iops != NULL) {
			pthread_mutex_lock(&cm.mu);
			for (o = iops; o != NULL; o = next) {
				next = o->next;
				post(o);
			}
			pthread_mutex_unlock(&cm.mu);
		}
		if (group != NULL)
			commit_group(group);
		pthread_mutex_lock(&cm.mu);
		for (o = cops; o != NULL; o = next) {
			next = o->next;
			post(o);
		}
	}
	pthread_mutex_unlock(&cm.mu);
	return NULL;
}

/*
 * Push queue rows written by units not yet durable, counted by (source,
 * SOP Instance UID): the engine's drain reads only what is durable, and
 * must not take (and delete) a row such a unit is about to write again.
 */
struct pqbusy {
	char		 src[CONF_NAME_MAX + 1];
	char		 sop[SPOOL_UID_MAX + 1];
	unsigned	 n;
};
static struct pqbusy *pq_busy;
static size_t npq_busy;

static void
pq_busy_add(const char *src, const char *sop)
{
	struct pqbusy *v;

	for (size_t i = 0; i < npq_busy; i++)
		if (strcmp(pq_busy[i].src, src) == 0 &&
		    strcmp(pq_busy[i].sop, sop) == 0) {
			pq_busy[i].n++;
			return;
		}
	if ((v = reallocarray(pq_busy, npq_busy + 1, sizeof(*v))) == NULL)
		abort();
	pq_busy = v;
	snprintf(v[npq_busy].src, sizeof(v->src), "%s", src);
	snprintf(v[npq_busy].sop, sizeof(v->sop), "%s", sop);
	v[npq_busy++].n = 1;
}

static void
pq_busy_del(const char *src, const char *sop)
{
	for (size_t i = 0; i < npq_busy; i++)
		if (strcmp(pq_busy[i].src, src) == 0 &&
		    strcmp(pq_busy[i].sop, sop) == 0) {
			if (--pq_busy[i].n == 0)
				pq_busy[i] = pq_busy[--npq_busy];
			break;
		}
	if (npq_busy == 0) {
		free(pq_busy);
		pq_busy = NULL;
	}
}

int
store_sink_pq_busy(const char *src, const char *sop)
{
	for (size_t i = 0; i < npq_busy; i++)
		if (strcmp(pq_busy[i].src, src) == 0 &&
		    strcmp(pq_busy[i].sop, sop) == 0)
			return 1;
	return 0;
}

static void early_done(struct store_commit *c);
static void finish(struct store_commit *c, int failed);

static void
indexed(void *arg, int err)
{
	struct store_commit *c = arg;

	if (c->pq_busy) {	/* (its unit is over) */
		c->pq_busy = 0;
		pq_busy_del(c->s->push_src, c->info.sop_instance);
	}
	if (c->early) {
		if (err)
			c->idx_failed = 1;
		if (--c->pending == 0)
			early_done(c);
		return;
	}
	finish(c, err);
}

/* finish: a spooled commit is over: durable (its index and its bytes),
 * or not (FAILED: the index unit was not written); answer it. */
static void
finish(struct store_commit *c, int failed)
{
	if (failed) {
		c->rc = -1;
		snprintf(c->err, sizeof(c->err), "the store cannot write: %s",
		    store_error(store_loop_store(sink_state)));
	} else {
		if (durable_fn != NULL) {
			struct timespec t1;

			clock_gettime(CLOCK_MONOTONIC, &t1);
			durable_fn(durable_arg, (double)(t1.tv_sec -
			    c->t0.tv_sec) + (double)(t1.tv_nsec -
			    c->t0.tv_nsec) / 1e9);
		}
		if (spooled_fn != NULL)
			spooled_fn(spooled_arg, &c->info);
	}
	if (!c->cancelled)
		c->done(c->arg, c->rc, c->err);
	sink_free(c->s);
	free(c);
}

/* A spooled instance becomes durable state: its index rows and the audit
 * leaf recording its receipt, one store unit; the C-STORE response waits
 * for it. */
static void
index_spooled(struct store_commit *c)
{
	struct spool_info *in = &c->info;
	struct store_batch *b = store_begin(store_loop_store(sink_state));
	char sha[65], canon[65], pix[65], seg[17];
	json_t *ev;

	hex_encode(in->sha256, 32, sha);
	hex_encode(in->canonical, 32, canon);
	hex_encode(in->pixel, 32, pix);
	snprintf(seg, sizeof(seg), "%016llx", (unsigned long long)in->seg);
	spool_index(sink_spool, b, in);
	ev = json_pack("{s:s, s:{s:s}, s:{s:s, s:s, s:s, s:s, s:I, s:I}, "
	    "s:{s:s}, s:s}",
	    "event", "instance.received",
	    "actor", "peer", c->s->origin[0] ? c->s->origin : "?",
	    "object", "sop_class", in->sop_class, "sop_instance",
	    in->sop_instance, "transfer_syntax", in->ts_uid, "segment", seg,
	    "offset", (json_int_t)in->off, "bytes", (json_int_t)in->len,
	    "hashes", "source", sha,
	    "outcome", "ok");
	if (in->digest_ok) {
		json_object_set_new(json_object_get(ev, "hashes"),
		    "canonical", json_string(canon));
		if (in->has_pixels)
			json_object_set_new(json_object_get(ev, "hashes"),
			    "pixel", json_string(pix));
	} else
		json_object_set_new(ev, "reason", json_string("the dataset "
		    "did not parse whole: no canonical or pixel digest"));
	audit_append(store_loop_audit(sink_state), b, ev);
	json_decref(ev);
	if (c->s->push_src[0] != '\0') {
		/* the push queue: the migration engine forwards it */
		struct store_key k;
		/* its record: the engine takes the row once the record's
		 * bytes are synced (spool_durable) */
		json_t *q = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, "
		    "s:I}", "study_uid", c->s->push_study, "series_uid",
		    c->s->push_series, "sop_class_uid", in->sop_class,
		    "origin", c->s->origin, "at", (json_int_t)time(NULL),
		    "segment", (json_int_t)in->seg, "offset",
		    (json_int_t)in->off, "bytes", (json_int_t)in->len);
		char *v = json_dumps(q, JSON_COMPACT);

		store_key_init(&k);
		store_key_cstr(&k, "pq");
		store_key_cstr(&k, c->s->push_src);
		store_key_cstr(&k, in->sop_instance);
		store_put(b, STORE_CF_STUDIES, k.b, k.len, v, strlen(v));
		pq_busy_add(c->s->push_src, in->sop_instance);
		c->pq_busy = 1;
		free(v);
		json_decref(q);
	}
	store_end(b, indexed, c);
}

/* The push queue rows (any source) that name a voided record. */
struct pqrow {
	uint8_t		*key;
	size_t		 klen;
	char		 src[CONF_NAME_MAX + 1];
	json_t		*v;
};

struct pqfix {
	const struct spool_info	*in;
	struct pqrow		*row;
	size_t			 n;
};

static int
pqfix_row(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct pqfix *x = arg;
	struct store_kreader r;
	char tag[4], src[CONF_NAME_MAX + 1], sop[SPOOL_UID_MAX + 1];
	struct pqrow *v;
	json_t *j;

	store_kreader_init(&r, key, klen);
	store_kreader_str(&r, tag, sizeof(tag));
	store_kreader_str(&r, src, sizeof(src));
	store_kreader_str(&r, sop, sizeof(sop));
	if (r.err || strcmp(sop, x->in->sop_instance) != 0 ||
	    (j = json_loadb(val, vlen, 0, NULL)) == NULL)
		return 0;
	if (json_integer_value(json_object_get(j, "segment")) !=
	    (json_int_t)x->in->seg ||
	    json_integer_value(json_object_get(j, "offset")) !=
	    (json_int_t)x->in->off) {
		json_decref(j);
		return 0;
	}
	if ((v = reallocarray(x->row, x->n + 1, sizeof(*v))) == NULL ||
	    (v[x->n].key = malloc(klen)) == NULL)
		abort();
	x->row = v;
	memcpy(v[x->n].key, key, klen);
	v[x->n].klen = klen;
	snprintf(v[x->n].src, sizeof(v->src), "%s", src);
	v[x->n++].v = j;
	return 0;
}

/*
 * pq_unvoid: push queue rows naming a voided record name the newest
 * durable copy of the instance from the same sender instead, or go (in
 * B). A row a unit on its way writes again (a newer C-STORE of the same
 * instance) is that unit's: left as it is. The drain takes no row whose
 * record is not durable, so none of these was taken.
 */
static void
pq_unvoid(struct store_batch *b, const struct spool_info *in)
{
	struct store *st = store_loop_store(sink_state);
	struct pqfix x = { in, NULL, 0 };
	struct store_key k;

	store_key_init(&k);
	store_key_cstr(&k, "pq");
	if (store_scan(st, STORE_CF_STUDIES, k.b, k.len, pqfix_row, &x) < 0)
		log_err("spool-void-queue", "sop_instance=%s error=%s",
		    log_q(in->sop_instance), log_q(store_error(st)));
	for (size_t i = 0; i < x.n; i++) {
		struct pqrow *r = &x.row[i];
		struct spool_info got;
		char *val;

		if (!store_sink_pq_busy(r->src, in->sop_instance)) {
			if (spool_newest(sink_spool, st, in->sop_instance,
			    in->origin_ae, in, &got) == 1) {
				json_object_set_new(r->v, "segment",
				    json_integer((json_int_t)got.seg));
				json_object_set_new(r->v, "offset",
				    json_integer((json_int_t)got.off));
				json_object_set_new(r->v, "bytes",
				    json_integer((json_int_t)got.len));
				val = json_dumps(r->v, JSON_COMPACT);
				store_put(b, STORE_CF_STUDIES, r->key, r->klen,
				    val, strlen(val));
				free(val);
			} else
				store_del(b, STORE_CF_STUDIES, r->key,
				    r->klen);
		}
		json_decref(r->v);
		free(r->key);
	}
	free(x.row);
}

void
store_sink_void(struct store_batch *b, const struct spool_info *in,
    const char *actor, const char *why)
{
	char sha[65], seg[17];
	json_t *ev;

	pq_unvoid(b, in);
	hex_encode(in->sha256, 32, sha);
	snprintf(seg, sizeof(seg), "%016llx", (unsigned long long)in->seg);
	ev = json_pack("{s:s, s:{s:s}, s:{s:s, s:s, s:s, s:I, s:I}, "
	    "s:{s:s}, s:s, s:s}",
	    "event", "instance.receipt_voided",
	    "actor", actor[0] == '\0' ? "node" : "peer", actor[0] == '\0' ?
	    "startup" : actor,
	    "object", "sop_class", in->sop_class, "sop_instance",
	    in->sop_instance, "segment", seg, "offset", (json_int_t)in->off,
	    "bytes", (json_int_t)in->len,
	    "hashes", "source", sha,
	    "outcome", "voided", "reason", why);
	audit_append(store_loop_audit(sink_state), b, ev);
	json_decref(ev);
}

static void
voided(void *arg, int err)
{
	struct store_commit *c = arg;

	if (err)
		log_err("spool-void-failed", "sop_instance=%s error=%s",
		    log_q(c->info.sop_instance), log_q(store_error(
		    store_loop_store(sink_state))));
	if (!c->cancelled)
		c->done(c->arg, -1, c->err);
	sink_free(c->s);
	free(c);
}

/* early_done: the index unit and the sync of a record indexed early are
 * both over: answer, or undo the index of a record whose sync failed. */
static void
early_done(struct store_commit *c)
{
	if (c->rc == 0 || c->idx_failed) {
		/* (a record synced whole but not indexed: the next
		 * recovery indexes it again, as when the sync came first) */
		finish(c, c->idx_failed);
		return;
	}
	/* indexed, not synced */
	struct store_batch *b = store_begin(store_loop_store(sink_state));

	log_err("spool-receipt-void", "sop_instance=%s segment=%016llx "
	    "offset=%llu error=%s action=%s", log_q(c->info.sop_instance),
	    (unsigned long long)c->info.seg,
	    (unsigned long long)c->info.off, log_q(c->err),
	    "taken out of the index; its sender is told it failed");
	spool_release(sink_spool, store_loop_store(sink_state), b,
	    c->info.seg, c->info.off);
	store_sink_void(b, &c->info, c->s->origin[0] ? c->s->origin : "?",
	    c->err);
	store_end(b, voided, c);
}

/* deliver: on the loop: the notes of the thread, in order. */
static void
deliver(evutil_socket_t fd, short what, void *arg)
{
	struct op *o, *next;
	char buf[256];

	(void)what;
	(void)arg;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&cm.mu);
	o = cm.done;
	cm.done = NULL;
	cm.done_tail = &cm.done;
	pthread_mutex_unlock(&cm.mu);
	for (; o != NULL; o = next) {
		next = o->next;
		switch (o->k) {
		case OP_DRAINED:
			if (!o->s->gone && o->s->drain_fn != NULL) {
				void (*fn)(void *) = o->s->drain_fn;

				o->s->drain_fn = NULL;
				fn(o->s->drain_arg);
			}
			break;
		case OP_FREE:
			sink_free(o->s);
			break;
		case OP_INDEX: {
			struct store_commit *c =
			    *(struct store_commit **)o->data;

			c->pending = 2;		/* the unit, the sync */
			index_spooled(c);
			break;
		}
		case OP_COMMIT: {
			struct store_commit *c =
			    *(struct store_commit **)o->data;

			if (c->early) {
				if (--c->pending == 0)
					early_done(c);
				break;
			}
			if (c->s->cls != NULL && c->rc == 0) {
				index_spooled(c);	/* done() once durable */
				break;
			}
			if (!c->cancelled)
				c->done(c->arg, c->rc, c->err);
			sink_free(c->s);
			free(c);
			break;
		}
		default:
			break;
		}
		free(o);
	}
}

int
store_committer_start(struct event_base *base)
{
	if (cm.running)
		return 0;
	if (pipe2(cm.pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	pthread_mutex_init(&cm.mu, NULL);
	pthread_cond_init(&cm.cv, NULL);
	cm.todo_tail = &cm.todo;
	cm.done_tail = &cm.done;
	cm.lq = NULL;
	cm.lq_tail = &cm.lq;
	cm.stopping = 0;
	cm.ev = event_new(base, cm.pipe[0], EV_READ | EV_PERSIST, deliver,
	    NULL);
	cm.flush_ev = event_new(base, -1, 0, on_flush, NULL);
	if (cm.ev == NULL || cm.flush_ev == NULL || event_add(cm.ev, NULL) < 0 ||
	    pthread_create(&cm.thr, NULL, committer_main, NULL) != 0)
		abort();
	cm.running = 1;
	return 0;
}

void
store_committer_stop(void)
{
	if (!cm.running)
		return;
	flush_ops();
	pthread_mutex_lock(&cm.mu);
	cm.stopping = 1;
	pthread_cond_signal(&cm.cv);
	pthread_mutex_unlock(&cm.mu);
	pthread_join(cm.thr, NULL);
	deliver(cm.pipe[0], EV_READ, NULL);	/* the last outcomes */
	event_free(cm.flush_ev);
	cm.flush_ev = NULL;
	event_free(cm.ev);
	close(cm.pipe[0]);
	close(cm.pipe[1]);
	pthread_cond_destroy(&cm.cv);
	pthread_mutex_destroy(&cm.mu);
	cm.running = 0;
}

struct store_commit *
store_sink_commit_async(struct store_sink *s,
    void (*done)(void *arg, int rc, const char *err), void *arg)
{
	struct store_commit *c;

	if (!cm.running || !s->async)
		return NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		abort();
	c->s = s;
	c->done = done;
	c->arg = arg;
	arrived(s);
	if (s->hasher != NULL) {
		spool_hasher_final(s->hasher, &c->hashes);
		spool_hasher_free(s->hasher);
	}
	clock_gettime(CLOCK_MONOTONIC, &c->t0);
	/* a drain asked for still comes (before done()): the caller may
	 * be holding its input until the bytes are written */
	queue_op(op_new(OP_COMMIT, s, (const uint8_t *)&c, sizeof(c)));
	return c;
}

void
store_commit_cancel(struct store_commit *c)
{
	c->cancelled = 1;	/* read on the loop thread only */
}
