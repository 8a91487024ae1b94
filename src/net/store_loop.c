/*
 * store_loop.c — see store_loop.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "src/net/net.h"
#include "src/net/store_loop.h"
#include "src/util/log.h"

#define TICK_MS	1000

struct store_loop {
	struct event_base	*base;
	struct store		*st;
	struct audit		*audit;
	struct event		*ev_done;	/* store_fd readable */
	struct event		*ev_flush;	/* end of turn / interval */
	struct event		*ev_tick;
	struct event		*ev_ckpt;
	uint64_t		 ckpt_ms;
	enum store_state	 last_state;
	char			*ck;		/* latest checkpoint, cached */
	uint64_t		 ck_at;		/* net_now_ms() when read */
};

static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	struct store_loop *sl = arg;

	(void)fd;
	(void)what;
	store_poll(sl->st);
}

static void
on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct store_loop *sl = arg;

	(void)fd;
	(void)what;
	store_flush(sl->st);
}

static void
kick(void *arg, uint64_t delay_ms)
{
	struct store_loop *sl = arg;

	if (delay_ms == 0)
		event_active(sl->ev_flush, EV_TIMEOUT, 0);
	else
		net_timer_arm(sl->ev_flush, delay_ms);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct store_loop *sl = arg;

	(void)fd;
	(void)what;
	store_tick(sl->st);
}

int
store_loop_checkpoint(struct store_loop *sl)
{
	char err[512], *note = NULL;
	int r = audit_checkpoint(sl->audit, &note, err, sizeof(err));

	if (r < 0)
		log_err("audit-checkpoint-failed", "error=%s", log_q(err));
	else if (r > 0) {
		/* "origin\nsize\nroot\n..." → the size and root for the log */
		char *size = strchr(note, '\n'), *root = NULL, *end;

		if (size != NULL && (root = strchr(++size, '\n')) != NULL &&
		    (end = strchr(++root, '\n')) != NULL) {
			root[-1] = '\0';
			*end = '\0';
			log_info("audit-checkpoint", "size=%s root=%s", size,
			    root);
		}
	}
	free(note);
	return r;
}

static void
on_ckpt(evutil_socket_t fd, short what, void *arg)
{
	struct store_loop *sl = arg;

	(void)fd;
	(void)what;
	store_loop_checkpoint(sl);
}

struct store_loop *
store_loop_open(struct event_base *base, const struct conf *c,
    const char *data_dir, unsigned flags, char *err, size_t errlen)
{
	struct store_loop *sl = calloc(1, sizeof(*sl));
	struct store_opts so = { 0 };
	struct audit_opts ao = { 0 };
	char dir[4096];

	if (sl == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sl->base = base;
	sl->ckpt_ms = c->audit.checkpoint_ms;
	sl->ev_done = NULL;
	if ((sl->ev_flush = evtimer_new(base, on_flush, sl)) == NULL ||
	    (sl->ev_tick = event_new(base, -1, EV_PERSIST, on_tick, sl)) ==
	    NULL ||
	    (sl->ev_ckpt = event_new(base, -1, EV_PERSIST, on_ckpt, sl)) ==
	    NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	snprintf(dir, sizeof(dir), "%s/db", data_dir);
	so.dir = dir;
	so.sync = c->storage.sync == CONF_SYNC_ALWAYS ? STORE_SYNC_ALWAYS :
	    STORE_SYNC_GROUP;
	so.commit_interval_ms = c->storage.commit_interval_ms;
	so.block_cache = c->storage.block_cache;
	so.write_buffer = c->storage.write_buffer;
	so.max_open_files = c->storage.max_open_files;
	so.min_free = c->storage.min_free;
	/* room for a memtable flush and a preallocated WAL, and a margin */
	so.floor = 2 * (c->storage.write_buffer ? c->storage.write_buffer :
	    64 << 20) + (16 << 20);
	so.kick = kick;
	so.kick_arg = sl;
	so.sync_on_loop = (flags & STORE_LOOP_SYNC_ON_LOOP) != 0;
	if ((sl->st = store_open(&so, err, errlen)) == NULL)
		goto fail;
	if ((sl->ev_done = event_new(base, store_fd(sl->st),
	    EV_READ | EV_PERSIST, on_done, sl)) == NULL ||
	    event_add(sl->ev_done, NULL) < 0) {
		snprintf(err, errlen, "cannot watch the store");
		goto fail;
	}
	ao.origin = c->audit.origin;
	ao.key_file = c->audit.key_file;
	ao.checkpoint_file = c->audit.checkpoint_file;
	ao.data_dir = data_dir;
	if ((sl->audit = audit_open(sl->st, &ao, err, errlen)) == NULL)
		goto fail;
	net_timer_arm(sl->ev_tick, TICK_MS);
	net_timer_arm(sl->ev_ckpt, sl->ckpt_ms);
	return sl;
fail:
	store_loop_close_(sl);
	return NULL;
}

void
store_loop_close_(struct store_loop *sl)
{
	if (sl == NULL)
		return;
	if (sl->st != NULL) {
		store_drain(sl->st);
		if (sl->audit != NULL && store_state(sl->st) != STORE_FAILED) {
			store_loop_checkpoint(sl);
			store_drain(sl->st);
		}
	}
	audit_close(sl->audit);
	store_close(sl->st);
	if (sl->ev_done)
		event_free(sl->ev_done);
	if (sl->ev_flush)
		event_free(sl->ev_flush);
	if (sl->ev_tick)
		event_free(sl->ev_tick);
	if (sl->ev_ckpt)
		event_free(sl->ev_ckpt);
	free(sl->ck);
	free(sl);
}

struct store *
store_loop_store(struct store_loop *sl)
{
	return sl->st;
}

struct audit *
store_loop_audit(struct store_loop *sl)
{
	return sl->audit;
}

uint64_t
store_loop_event(struct store_loop *sl, json_t *ev, store_done_fn *done,
    void *arg)
{
	struct store_batch *b = store_begin(sl->st);
	uint64_t seq = audit_append(sl->audit, b, ev);

	store_end(b, done, arg);
	return seq;
}

json_t *
store_loop_health(struct store_loop *sl, int *ready)
{
	struct store_stats s;
	enum store_state state = store_state(sl->st);
	uint64_t now = net_now_ms();
	json_t *j;

	/* reading it takes a RocksDB seek: health probes (a load balancer,
	 * every request of a benchmark) share one read a second */
	if (sl->ck == NULL || now - sl->ck_at >= 1000) {
		free(sl->ck);
		sl->ck = audit_latest_checkpoint(sl->audit);
		sl->ck_at = now;
	}

	store_stats(sl->st, &s);
	*ready = state == STORE_OK;
	j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I}}",
	    "state", store_state_name(state), "error",
	    state == STORE_FAILED ? store_error(sl->st) : "",
	    "groups", (json_int_t)s.groups, "units", (json_int_t)s.units,
	    "failed_units", (json_int_t)s.failed_units,
	    "sync_us_last", (json_int_t)s.sync_us_last,
	    "sync_us_max", (json_int_t)s.sync_us_max,
	    "audit", "size", (json_int_t)audit_size(sl->audit),
	    "durable_size", (json_int_t)audit_durable_size(sl->audit));
	if (sl->ck != NULL)
		json_object_set_new(json_object_get(j, "audit"), "checkpoint",
		    json_string(sl->ck));
	return j;
}
