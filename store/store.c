/*
 * store.c — RocksDB with column families, group commit on a sync thread,
 * free-space watch and recovery (see store.h).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "src/util/log.h"
#include "store/store.h"

#define STORE_SCHEMA_VERSION	1

static const char *const cf_names[STORE_CF__N] = {
	"default", "meta", "jobs", "batches", "studies", "instances",
	"queue", "seeds", "hl7", "spool", "audit_leaf", "audit_node",
	"audit_ckpt", "counters",
};

struct unit {
	store_done_fn	*done;
	void		*arg;
	uint64_t	 seq;		/* store_unit_next when it ended */
};

/* A group: the units gathered during one sync, written as one batch. */
struct store_batch {
	struct store		*st;
	rocksdb_writebatch_t	*wb;
	struct unit		*units;
	size_t			 n, cap;
	int			 open;		/* between begin and end */
	int			 err;
	char			 errmsg[600];
	struct store_batch	*next;
};

struct reset_hook {
	store_reset_fn	*fn;
	void		*arg;
};

struct store {
	struct store_opts	 o;
	char			*dir;
	rocksdb_t		*db;
	rocksdb_options_t	*opts;
	rocksdb_cache_t		*cache;
	rocksdb_block_based_table_options_t *bbt;
	rocksdb_column_family_handle_t *cf[STORE_CF__N];
	rocksdb_writeoptions_t	*wopts;
	rocksdb_readoptions_t	*ropts;

	struct store_batch	*cur;		/* filling */
	size_t			 inflight;	/* groups handed to the thread */
	int			 kicked;

	pthread_t		 thr;
	int			 thr_running;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct store_batch	*queue, **queue_tail;	/* for the thread */
	struct store_batch	*done, **done_tail;	/* back to the loop */
	int			 stop;
	int			 efd;

	uint64_t		 seq_next;	/* the unit being built */
	uint64_t		 seq_done;	/* every unit up to it finished */
	enum store_state	 state;
	int			 reset_pending;	/* hooks due once none in flight */
	char			 errmsg[600];	/* why it failed */
	char			 rderr[600];	/* the last read that failed */
	struct reset_hook	*hooks;
	size_t			 nhooks;

	/* Written by the sync thread under mu. */
	struct store_stats	 stats;
};

const char *
store_cf_name(enum store_cf cf)
{
	return (unsigned)cf < STORE_CF__N ? cf_names[cf] : "?";
}

const char *
store_state_name(enum store_state s)
{
	switch (s) {
	case STORE_OK:		return "ok";
	case STORE_LOW:		return "low-space";
	case STORE_FAILED:	return "failed";
	}
	return "?";
}

static uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t
free_bytes(const char *dir)
{
	struct statvfs sv;

	if (statvfs(dir, &sv) != 0)
		return UINT64_MAX;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

/* Write and sync one group; called with mu held, returns with it held. */
static void
write_group(struct store *st, struct store_batch *g)
{
	char *err = NULL;
	uint64_t t0, dt, one = 1;
	size_t bytes = 0;

	pthread_mutex_unlock(&st->mu);
	t0 = mono_us();
	rocksdb_writebatch_data(g->wb, &bytes);
	if (!g->err)	/* (one failed before it was written goes back) */
		rocksdb_write(st->db, st->wopts, g->wb, &err);
	dt = mono_us() - t0;
	if (err != NULL) {
		g->err = 1;
		snprintf(g->errmsg, sizeof(g->errmsg), "%s", err);
		rocksdb_free(err);
	}
	pthread_mutex_lock(&st->mu);
	if (!g->err) {
		unsigned b = 0;

		st->stats.groups++;
		st->stats.units += g->n;
		st->stats.bytes += bytes;
		while (b < 15 && dt >= (100ULL << b))
			b++;
		st->stats.sync_hist[b]++;
		st->stats.sync_us_sum += dt;
	}
	st->stats.sync_us_last = dt;
	if (dt > st->stats.sync_us_max)
		st->stats.sync_us_max = dt;
	*st->done_tail = g;
	st->done_tail = &g->next;
	pthread_cond_broadcast(&st->cv);	/* store_drain */
	if (write(st->efd, &one, sizeof(one)) < 0) {
		/* eventfd only fails when the counter would overflow */
	}
}

static void *
sync_main(void *arg)
{
	struct store *st = arg;
	struct store_batch *g;

	/* RocksDB counts key comparisons per thread unless told not to:
	 * a thread-local access per comparison, a tenth of this thread's
	 * memtable inserts */
	rocksdb_set_perf_level(rocksdb_disable);
	pthread_mutex_lock(&st->mu);
	for (;;) {
		while (st->queue == NULL && !st->stop)
			pthread_cond_wait(&st->cv, &st->mu);
		if (st->queue == NULL)
			break;
		g = st->queue;
		if ((st->queue = g->next) == NULL)
			st->queue_tail = &st->queue;
		g->next = NULL;
		write_group(st, g);
	}
	pthread_mutex_unlock(&st->mu);
	return NULL;
}

static struct store_batch *
group_new(struct store *st)
{
	struct store_batch *g = calloc(1, sizeof(*g));

	if (g == NULL || (g->wb = rocksdb_writebatch_create()) == NULL) {
		log_err("out-of-memory", "where=%s", "store group");
		abort();
	}
	g->st = st;
	return g;
}

static void
group_free(struct store_batch *g)
{
	rocksdb_writebatch_destroy(g->wb);
	free(g->units);
	free(g);
}

static void
set_error(struct store *st, const char *what)
{
	if (st->state != STORE_FAILED)
		log_err("store-failed", "dir=%s error=%s hint=%s",
		    log_q(st->dir), log_q(what), log_q("no new work is "
		    "taken; the store reopens by itself once the disk has "
		    "room and answers again"));
	st->state = STORE_FAILED;
	snprintf(st->errmsg, sizeof(st->errmsg), "%s", what);
}

static void
run_hooks(struct store *st)
{
	for (size_t i = 0; i < st->nhooks; i++)
		st->hooks[i].fn(st->hooks[i].arg);
}

static void
finish_group(struct store_batch *g, int err)
{
	for (size_t i = 0; i < g->n; i++) {
		g->st->seq_done = g->units[i].seq;
		if (g->units[i].done != NULL)
			g->units[i].done(g->units[i].arg, err);
	}
	group_free(g);
}

static void
submit(struct store *st)
{
	struct store_batch *g = st->cur;

	if (g == NULL || g->n == 0 || g->open)
		return;
	st->cur = NULL;
	st->inflight++;
	if (g->err)
		set_error(st, g->errmsg);	/* store_fail */
	if (st->state != STORE_FAILED && st->o.floor) {
		/* RocksDB must never meet a full disk: a failed WAL write can
		 * end the process (an assertion in 7.x). Below the floor the
		 * group fails here, and the store waits for room. */
		uint64_t fb = free_bytes(st->dir);

		if (fb < st->o.floor) {
			char why[300];

			snprintf(why, sizeof(why), "disk full: %llu bytes free, "
			    "writes stop below %llu (2 x storage.write_buffer + "
			    "16 MiB)", (unsigned long long)fb,
			    (unsigned long long)st->o.floor);
			set_error(st, why);
		}
	}
	pthread_mutex_lock(&st->mu);
	if (st->state == STORE_FAILED) {
		/* Not written: goes back failed, after the groups before it
		 * (sync: always has several out at once): units finish in
		 * the order they ended (store_unit_done). */
		if (!g->err)
			snprintf(g->errmsg, sizeof(g->errmsg), "%s",
			    st->errmsg);
		g->err = 1;
		if (st->o.sync_on_loop || !st->thr_running) {
			uint64_t one = 1;

			*st->done_tail = g;
			st->done_tail = &g->next;
			if (write(st->efd, &one, sizeof(one)) < 0) {
				/* see sync_main */
			}
		} else {
			*st->queue_tail = g;
			st->queue_tail = &g->next;
			pthread_cond_broadcast(&st->cv);
		}
	} else if (st->o.sync_on_loop) {
		write_group(st, g);
	} else {
		*st->queue_tail = g;
		st->queue_tail = &g->next;
		pthread_cond_broadcast(&st->cv);
	}
	pthread_mutex_unlock(&st->mu);
}

static int
db_open(struct store *st, char *err, size_t errlen)
{
	const char *names[STORE_CF__N];
	const rocksdb_options_t *cfo[STORE_CF__N];
	char *e = NULL;

	for (int i = 0; i < STORE_CF__N; i++) {
		names[i] = cf_names[i];
		cfo[i] = st->opts;
	}
	if (st->o.readonly)
		st->db = rocksdb_open_for_read_only_column_families(st->opts,
		    st->dir, STORE_CF__N, names, cfo, st->cf, 0, &e);
	else
		st->db = rocksdb_open_column_families(st->opts, st->dir,
		    STORE_CF__N, names, cfo, st->cf, &e);
	if (e != NULL) {
		snprintf(err, errlen, "cannot open the database in %s: %s",
		    st->dir, e);
		rocksdb_free(e);
		st->db = NULL;
		return -1;
	}
	return 0;
}

static void
db_close(struct store *st)
{
	if (st->db == NULL)
		return;
	for (int i = 0; i < STORE_CF__N; i++)
		if (st->cf[i] != NULL)
			rocksdb_column_family_handle_destroy(st->cf[i]);
	memset(st->cf, 0, sizeof(st->cf));
	rocksdb_close(st->db);
	st->db = NULL;
}

/* Check or write the schema version: a newer store is refused. */
static int
check_schema(struct store *st, char *err, size_t errlen)
{
	static const char key[] = "schema";
	void *v = NULL;
	size_t vn = 0;
	int r = store_get(st, STORE_CF_META, key, sizeof(key) - 1, &v, &vn);

	if (r < 0) {
		snprintf(err, errlen, "cannot read the schema version in %s: %s",
		    st->dir, st->rderr);
		return -1;
	}
	if (r == 0 && st->o.readonly) {
		snprintf(err, errlen, "%s holds no vnamig state", st->dir);
		return -1;
	}
	if (r == 1) {
		unsigned ver = vn == 4 ? (unsigned)((uint8_t *)v)[0] << 24 |
		    (unsigned)((uint8_t *)v)[1] << 16 |
		    (unsigned)((uint8_t *)v)[2] << 8 | ((uint8_t *)v)[3] : 0;

		free(v);
		if (ver == 0 || ver > STORE_SCHEMA_VERSION) {
			snprintf(err, errlen, "%s holds state of schema %u; "
			    "this vnamigd reads up to %u: run the newer "
			    "release, or restore a backup made by this one",
			    st->dir, ver, STORE_SCHEMA_VERSION);
			return -1;
		}
		return 0;
	}
	uint8_t b[4] = { 0, 0, 0, STORE_SCHEMA_VERSION };
	char *e = NULL;
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();

	rocksdb_writeoptions_set_sync(wo, 1);
	rocksdb_put_cf(st->db, wo, st->cf[STORE_CF_META], key, sizeof(key) - 1,
	    (const char *)b, sizeof(b), &e);
	rocksdb_writeoptions_destroy(wo);
	if (e != NULL) {
		snprintf(err, errlen, "cannot write to %s: %s", st->dir, e);
		rocksdb_free(e);
		return -1;
	}
	return 0;
}

struct store *
store_open(const struct store_opts *opts, char *err, size_t errlen)
{
	struct store *st = calloc(1, sizeof(*st));

	if (st == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	st->o = *opts;
	st->efd = -1;
	st->seq_next = 1;
	st->queue_tail = &st->queue;
	st->done_tail = &st->done;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	if ((st->dir = strdup(opts->dir)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (!opts->readonly && mkdir(st->dir, 0750) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", st->dir,
		    strerror(errno));
		goto fail;
	}

	rocksdb_set_perf_level(rocksdb_disable);	/* the caller's reads */
	st->opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(st->opts, 1);
	rocksdb_options_set_create_missing_column_families(st->opts, 1);
	/* LZ4 while data is young (it is flushed and compacted again
	 * soon: zstd there cost more CPU than the whole HL7 parse), zstd
	 * where it settles */
	rocksdb_options_set_compression(st->opts, rocksdb_lz4_compression);
	rocksdb_options_set_bottommost_compression(st->opts,
	    rocksdb_zstd_compression);
	/* most point lookups ask for what is not there (an HL7 message
	 * not seen before, a patient never merged): a bloom filter in the
	 * memtable and in every table file answers those without a search */
	rocksdb_options_set_memtable_prefix_bloom_size_ratio(st->opts, 0.02);
	rocksdb_options_set_memtable_whole_key_filtering(st->opts, 1);
	rocksdb_options_set_write_buffer_size(st->opts,
	    opts->write_buffer ? opts->write_buffer : 64 << 20);
	rocksdb_options_set_max_open_files(st->opts,
	    opts->max_open_files ? (int)opts->max_open_files : 4096);
	rocksdb_options_increase_parallelism(st->opts, 2);
	rocksdb_options_set_keep_log_file_num(st->opts, 4);
	rocksdb_options_set_paranoid_checks(st->opts, 1);
	/* Reuse old WAL files: a sync then overwrites allocated blocks
	 * instead of growing a file, which spares the file system a
	 * journal commit per sync. */
	rocksdb_options_set_recycle_log_file_num(st->opts, 4);
	st->bbt = rocksdb_block_based_options_create();
	st->cache = rocksdb_cache_create_lru(opts->block_cache ?
	    opts->block_cache : 512 << 20);
	rocksdb_block_based_options_set_block_cache(st->bbt, st->cache);
	rocksdb_block_based_options_set_cache_index_and_filter_blocks(st->bbt,
	    1);
	rocksdb_block_based_options_set_filter_policy(st->bbt,
	    rocksdb_filterpolicy_create_bloom_full(10));
	rocksdb_options_set_block_based_table_factory(st->opts, st->bbt);

	st->wopts = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(st->wopts, 1);
	st->ropts = rocksdb_readoptions_create();

	if (db_open(st, err, errlen) < 0 || check_schema(st, err, errlen) < 0)
		goto fail;
	if ((st->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&st->thr, NULL, sync_main, st) != 0) {
		snprintf(err, errlen, "cannot start the sync thread");
		goto fail;
	}
	st->thr_running = 1;
	st->stats.free_bytes = free_bytes(st->dir);
	if (opts->min_free && st->stats.free_bytes < opts->min_free)
		st->state = STORE_LOW;
	return st;
fail:
	store_close_(st);
	return NULL;
}

void
store_close_(struct store *st)
{
	if (st == NULL)
		return;
	if (st->thr_running) {
		store_drain(st);
		pthread_mutex_lock(&st->mu);
		st->stop = 1;
		pthread_cond_broadcast(&st->cv);
		pthread_mutex_unlock(&st->mu);
		pthread_join(st->thr, NULL);
	}
	if (st->cur != NULL) {
		struct store_batch *g = st->cur;

		st->cur = NULL;
		finish_group(g, -1);
	}
	db_close(st);
	if (st->wopts)
		rocksdb_writeoptions_destroy(st->wopts);
	if (st->ropts)
		rocksdb_readoptions_destroy(st->ropts);
	if (st->opts)
		rocksdb_options_destroy(st->opts);
	if (st->bbt)
		rocksdb_block_based_options_destroy(st->bbt);
	if (st->cache)
		rocksdb_cache_destroy(st->cache);
	if (st->efd >= 0)
		close(st->efd);
	pthread_mutex_destroy(&st->mu);
	pthread_cond_destroy(&st->cv);
	free(st->hooks);
	free(st->dir);
	free(st);
}

struct store_batch *
store_begin(struct store *st)
{
	if (st->cur == NULL)
		st->cur = group_new(st);
	if (st->cur->open) {
		log_err("store-misuse", "what=%s", "nested store_begin");
		abort();
	}
	st->cur->open = 1;
	return st->cur;
}

void
store_put(struct store_batch *b, enum store_cf cf, const void *key,
    size_t klen, const void *val, size_t vlen)
{
	rocksdb_writebatch_put_cf(b->wb, b->st->cf[cf], key, klen, val, vlen);
}

void
store_del(struct store_batch *b, enum store_cf cf, const void *key,
    size_t klen)
{
	rocksdb_writebatch_delete_cf(b->wb, b->st->cf[cf], key, klen);
}

void
store_end(struct store_batch *b, store_done_fn *done, void *arg)
{
	struct store *st = b->st;

	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct unit *u = realloc(b->units, cap * sizeof(*u));

		if (u == NULL) {
			log_err("out-of-memory", "where=%s", "store unit");
			abort();
		}
		b->units = u;
		b->cap = cap;
	}
	b->units[b->n].done = done;
	b->units[b->n].arg = arg;
	b->units[b->n].seq = st->seq_next++;
	b->n++;
	b->open = 0;

	if (st->o.sync == STORE_SYNC_ALWAYS) {
		submit(st);
		return;
	}
	if (st->inflight == 0 && !st->kicked) {
		st->kicked = 1;
		if (st->o.kick != NULL)
			st->o.kick(st->o.kick_arg, st->o.commit_interval_ms);
	}
}

uint64_t
store_unit_next(const struct store *st)
{
	return st->seq_next;
}

uint64_t
store_unit_done(const struct store *st)
{
	return st->seq_done;
}

void
store_fail(struct store_batch *b, const char *why)
{
	if (!b->open) {
		log_err("store-misuse", "what=%s", "store_fail outside a unit");
		abort();
	}
	if (b->err)
		return;
	b->err = 1;
	snprintf(b->errmsg, sizeof(b->errmsg), "%s", why);
}

void
store_flush(struct store *st)
{
	st->kicked = 0;
	if (st->inflight == 0)
		submit(st);
}

int
store_fd(const struct store *st)
{
	return st->efd;
}

/* fail_gathered: the units gathered (not yet submitted) fail; 1 when
 * there were any, 0 when none or one is still being built. */
static int
fail_gathered(struct store *st)
{
	struct store_batch *g = st->cur;

	if (g == NULL || g->open)
		return 0;
	st->cur = NULL;
	st->stats.failed_units += g->n;
	finish_group(g, -1);
	return 1;
}

void
store_poll(struct store *st)
{
	struct store_batch *list, *g;
	uint64_t v;
	int failed = 0;

	if (read(st->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing counted; the list is checked anyway */
	}
	pthread_mutex_lock(&st->mu);
	list = st->done;
	st->done = NULL;
	st->done_tail = &st->done;
	pthread_mutex_unlock(&st->mu);

	while ((g = list) != NULL) {
		list = g->next;
		st->inflight--;
		if (g->err) {
			if (st->state != STORE_FAILED)
				set_error(st, g->errmsg);
			st->stats.failed_units += g->n;
			failed = 1;
			finish_group(g, -1);
		} else {
			finish_group(g, 0);
		}
	}
	if (failed) {
		/* What was gathered after a failed group may build on it. */
		fail_gathered(st);
		st->reset_pending = 1;
	}
	/* The mirrors reload once nothing is in flight (sync: always has
	 * several groups out at once; those before the failed one are still
	 * written, and a reload before they land reads a state about to
	 * change). */
	if (st->reset_pending && st->inflight == 0) {
		st->reset_pending = 0;
		run_hooks(st);
	}
	if (st->inflight == 0 && st->cur != NULL && st->cur->n > 0 &&
	    !st->cur->open) {
		if (st->o.sync == STORE_SYNC_ALWAYS || st->o.kick == NULL ||
		    st->o.commit_interval_ms == 0)
			submit(st);
		else if (!st->kicked) {
			st->kicked = 1;
			st->o.kick(st->o.kick_arg, st->o.commit_interval_ms);
		}
	}
}

void
store_drain(struct store *st)
{
	for (;;) {
		if (st->inflight == 0)
			submit(st);
		if (st->inflight == 0)
			return;
		pthread_mutex_lock(&st->mu);
		while (st->done == NULL)
			pthread_cond_wait(&st->cv, &st->mu);
		pthread_mutex_unlock(&st->mu);
		store_poll(st);
	}
}

int
store_get(struct store *st, enum store_cf cf, const void *key, size_t klen,
    void **val, size_t *vlen)
{
	char *e = NULL, *v;
	size_t n = 0;

	*val = NULL;
	*vlen = 0;
	st->rderr[0] = '\0';
	if (st->db == NULL) {
		snprintf(st->rderr, sizeof(st->rderr), "the store is closed");
		return -1;
	}
	v = rocksdb_get_cf(st->db, st->ropts, st->cf[cf], key, klen, &n, &e);
	if (e != NULL) {
		snprintf(st->rderr, sizeof(st->rderr), "%s", e);
		rocksdb_free(e);
		return -1;
	}
	if (v == NULL)
		return 0;
	/* RocksDB's allocation is not ours to free() with libc's free
	 * under every allocator: copy. */
	*val = malloc(n ? n : 1);
	if (*val == NULL) {
		rocksdb_free(v);
		return -1;
	}
	memcpy(*val, v, n);
	*vlen = n;
	rocksdb_free(v);
	return 1;
}

/* Free an iterator; R, or -1 when it met a read error (kept for
 * store_error). */
static int
iter_done(struct store *st, rocksdb_iterator_t *it, int r)
{
	char *e = NULL;

	rocksdb_iter_get_error(it, &e);
	if (e != NULL) {
		snprintf(st->rderr, sizeof(st->rderr), "%s", e);
		rocksdb_free(e);
		r = -1;
	}
	rocksdb_iter_destroy(it);
	return r;
}

int
store_scan(struct store *st, enum store_cf cf, const void *prefix,
    size_t plen, store_scan_fn *fn, void *arg)
{
	return store_scan_from(st, cf, prefix, plen, prefix, plen, fn, arg);
}

int
store_scan_from(struct store *st, enum store_cf cf, const void *prefix,
    size_t plen, const void *start, size_t slen, store_scan_fn *fn,
    void *arg)
{
	rocksdb_iterator_t *it;
	int r = 0;

	st->rderr[0] = '\0';
	if (st->db == NULL) {
		snprintf(st->rderr, sizeof(st->rderr), "the store is closed");
		return -1;
	}
	it = rocksdb_create_iterator_cf(st->db, st->ropts, st->cf[cf]);
	for (rocksdb_iter_seek(it, start, slen); rocksdb_iter_valid(it);
	    rocksdb_iter_next(it)) {
		size_t kn, vn;
		const char *k = rocksdb_iter_key(it, &kn);
		const char *v = rocksdb_iter_value(it, &vn);

		if (kn < plen || memcmp(k, prefix, plen) != 0)
			break;
		if (fn(arg, k, kn, v, vn) != 0)
			break;
	}
	return iter_done(st, it, r);
}

int
store_last(struct store *st, enum store_cf cf, const void *prefix,
    size_t plen, void **key, size_t *klen, void **val, size_t *vlen)
{
	rocksdb_iterator_t *it;
	uint8_t up[512];
	size_t un = plen;
	int r = 0;

	*key = *val = NULL;
	*klen = *vlen = 0;
	st->rderr[0] = '\0';
	if (st->db == NULL || plen > sizeof(up)) {
		snprintf(st->rderr, sizeof(st->rderr), st->db == NULL ?
		    "the store is closed" : "prefix too long");
		return -1;
	}
	memcpy(up, prefix, plen);
	/* Seek to the first key after the prefix: the prefix plus one. */
	while (un > 0 && up[un - 1] == 0xff)
		un--;
	it = rocksdb_create_iterator_cf(st->db, st->ropts, st->cf[cf]);
	if (un == 0)
		rocksdb_iter_seek_to_last(it);
	else {
		up[un - 1]++;
		rocksdb_iter_seek_for_prev(it, (const char *)up, un);
		/* seek_for_prev lands on the key itself when it exists */
		if (rocksdb_iter_valid(it)) {
			size_t kn;
			const char *k = rocksdb_iter_key(it, &kn);

			if (kn == un && memcmp(k, up, un) == 0)
				rocksdb_iter_prev(it);
		}
	}
	if (rocksdb_iter_valid(it)) {
		size_t kn, vn;
		const char *k = rocksdb_iter_key(it, &kn);
		const char *v = rocksdb_iter_value(it, &vn);

		if (kn >= plen && memcmp(k, prefix, plen) == 0) {
			*key = malloc(kn ? kn : 1);
			*val = malloc(vn ? vn : 1);
			if (*key == NULL || *val == NULL) {
				free(*key);
				free(*val);
				*key = *val = NULL;
				r = -1;
			} else {
				memcpy(*key, k, kn);
				memcpy(*val, v, vn);
				*klen = kn;
				*vlen = vn;
				r = 1;
			}
		}
	}
	return iter_done(st, it, r);
}

void
store_on_reset(struct store *st, store_reset_fn *fn, void *arg)
{
	struct reset_hook *h = realloc(st->hooks,
	    (st->nhooks + 1) * sizeof(*h));

	if (h == NULL) {
		log_err("out-of-memory", "where=%s", "store hook");
		abort();
	}
	st->hooks = h;
	h[st->nhooks].fn = fn;
	h[st->nhooks].arg = arg;
	st->nhooks++;
}

void
store_off_reset(struct store *st, store_reset_fn *fn, void *arg)
{
	for (size_t i = 0; i < st->nhooks; i++)
		if (st->hooks[i].fn == fn && st->hooks[i].arg == arg) {
			memmove(st->hooks + i, st->hooks + i + 1,
			    (st->nhooks - i - 1) * sizeof(*st->hooks));
			st->nhooks--;
			return;
		}
}

enum store_state
store_state(const struct store *st)
{
	return st->state;
}

const char *
store_read_error(const struct store *st)
{
	return st->rderr;
}

const char *
store_error(const struct store *st)
{
	return st->state == STORE_FAILED ? st->errmsg : st->rderr;
}

/* After a failure: reopen once there is room and nothing is in flight. */
static void
recover(struct store *st, uint64_t fb)
{
	char err[512];

	if (st->inflight != 0 || (st->o.min_free && fb < st->o.min_free) ||
	    fb < st->o.floor)
		return;
	/* Units ended while the store was failed, still gathered here,
	 * were built on the state the reset hooks are about to reload (the
	 * audit log's size among it): they fail, as after a failed group,
	 * and are never written over it. Their callbacks may end more: a
	 * few rounds, else the next tick. */
	for (int round = 0; st->cur != NULL && st->cur->n > 0; round++) {
		if (round == 8 || !fail_gathered(st))
			return;
	}
	db_close(st);
	if (db_open(st, err, sizeof(err)) < 0) {
		snprintf(st->errmsg, sizeof(st->errmsg), "%s", err);
		return;
	}
	st->state = STORE_OK;
	st->errmsg[0] = '\0';
	log_info("store-recovered", "dir=%s free=%llu", log_q(st->dir),
	    (unsigned long long)fb);
	st->reset_pending = 0;
	run_hooks(st);
}

void
store_set_min_free(struct store *st, uint64_t min_free)
{
	st->o.min_free = min_free;
}

void
store_tick(struct store *st)
{
	uint64_t fb = free_bytes(st->dir);

	st->stats.free_bytes = fb;
	switch (st->state) {
	case STORE_OK:
		if (st->o.min_free && fb < st->o.min_free) {
			st->state = STORE_LOW;
			log_warn("store-low-space", "dir=%s free=%llu min_free=%llu "
			    "hint=%s", log_q(st->dir), (unsigned long long)fb,
			    (unsigned long long)st->o.min_free,
			    log_q("new work is refused until space is freed"));
		}
		break;
	case STORE_LOW:
		if (!st->o.min_free || fb >= st->o.min_free) {
			st->state = STORE_OK;
			log_info("store-space-ok", "dir=%s free=%llu",
			    log_q(st->dir), (unsigned long long)fb);
		}
		break;
	case STORE_FAILED:
		recover(st, fb);
		break;
	}
}

void
store_stats(struct store *st, struct store_stats *out)
{
	pthread_mutex_lock(&st->mu);
	*out = st->stats;
	pthread_mutex_unlock(&st->mu);
	out->pending_units = st->cur ? st->cur->n : 0;
	/* units handed to the thread are counted by inflight groups only */
}

struct rocksdb_t *
store_db(struct store *st)
{
	return st->db;
}
