/*
 * store-writer — drives the real store and audit log for the crash,
 * disk-full and benchmark scripts. Each "transition" is one unit: a study
 * row, the transition counter and the audit leaf that records it, made
 * durable together by group commit.
 *
 *   store-writer DATA_DIR fill N [-w WINDOW] [-s group|always] [-c EVERY]
 *	make N transitions, WINDOW units outstanding at a time, a signed
 *	checkpoint every EVERY transitions; prints the rate
 *   store-writer DATA_DIR run [-w WINDOW] [-c EVERY]
 *	the same without end, printing "acked T" (write(2), unbuffered)
 *	each time transition T is durable: kill -9 it at any point
 *	with -r, a failed unit is not the end: it prints "failed T" and
 *	starts again from the durable counter once the store has recovered
 *	(disk-full tests); -m uses a 1 MiB memtable (so a small disk fills)
 *   store-writer DATA_DIR check
 *	open the state and check every invariant; prints "ok transitions=T
 *	leaves=L checkpoints=C" or "FAIL ..." (exit 1)
 *   store-writer DATA_DIR append-cost N
 *	the cost of audit_append alone (no sync), in ns per leaf
 *
 * The audit key is DATA_DIR-audit.pem, as the daemon's default.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "conf/conf.h"
#include "src/net/store_loop.h"
#include "src/util/hex.h"
#include "src/util/log.h"
#include "store/store_key.h"

static struct event_base *base;
static struct store_loop *sl;
static struct store *st;
static struct audit *au;
static uint64_t next_t, total, inflight, window = 64, acked, ckpt_every;
static int run_forever, failed, on_loop, resilient, small_mem, resync;
static struct event *retry_ev;

/* Loop lag, as the daemon measures it: a 1 ms timer's lateness. */
#define LAG_TICK_US	1000
static struct event *lag_ev;
static uint64_t lag_due, lag_max, lag_n, lag_hist[64];
static uint64_t t_start;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void);

static void
on_lag(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = now_ns() / 1000, lag;
	unsigned b = 0;

	(void)fd;
	(void)what;
	(void)arg;
	lag = now > lag_due ? now - lag_due : 0;
	lag_due = now + LAG_TICK_US;
	while (b < 63 && lag >= (1ULL << b))
		b++;
	lag_hist[b]++;
	lag_n++;
	if (lag > lag_max)
		lag_max = lag;
}

/* Upper bound in µs of the bucket holding the 99th percentile. */
static uint64_t
lag_p99(void)
{
	uint64_t want = lag_n - lag_n / 100, seen = 0;

	for (unsigned b = 0; b < 64; b++)
		if ((seen += lag_hist[b]) >= want && seen > 0)
			return b == 0 ? 0 : (1ULL << b) < lag_max ?
			    1ULL << b : lag_max;
	return 0;
}

static struct conf *
make_conf(const char *dir, const char *sync)
{
	char yaml[4096], *errs = NULL;
	struct conf *c;

	snprintf(yaml, sizeof(yaml),
	    "node: { ae_title: WRITER, data_dir: \"%s\" }\n"
	    "storage: { sync: %s, min_free: 1MiB%s }\n", dir, sync,
	    small_mem ? ", write_buffer: 1MiB" : "");
	if ((c = conf_load_buffer("store-writer", yaml, strlen(yaml),
	    &errs)) == NULL) {
		fprintf(stderr, "store-writer: %s", errs);
		exit(2);
	}
	return c;
}

static void
open_state(const char *dir, const char *sync)
{
	struct conf *c = make_conf(dir, sync);
	char err[1024];

	if ((sl = store_loop_open(base, c, dir, on_loop ?
	    STORE_LOOP_SYNC_ON_LOOP : 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "store-writer: %s\n", err);
		exit(3);
	}
	conf_free(c);
	st = store_loop_store(sl);
	au = store_loop_audit(sl);
}

static size_t
study_key(uint8_t *k, uint64_t t)
{
	struct store_key sk;

	store_key_init(&sk);
	store_key_cstr(&sk, "writer");
	store_key_u64(&sk, t);
	memcpy(k, sk.b, sk.len);
	return sk.len;
}

static uint64_t
read_counter(void)
{
	void *v;
	size_t vn;
	uint64_t n = 0;

	if (store_get(st, STORE_CF_COUNTERS, "transitions", 11, &v, &vn) ==
	    1 && vn == 8)
		n = store_be64_get(v);
	free(v);
	return n;
}

static void start_more(void);

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	start_more();
}

static void
on_durable(void *arg, int err)
{
	uint64_t t = (uint64_t)(uintptr_t)arg;
	char line[64];
	int n;

	inflight--;
	if (err && resilient) {
		n = snprintf(line, sizeof(line), "failed %" PRIu64 "\n", t);
		if (write(1, line, (size_t)n) < 0)
			exit(4);
		resync = 1;
		return;
	}
	if (err) {
		fprintf(stderr, "store-writer: transition %" PRIu64 " failed: "
		    "%s\n", t, store_error(st));
		failed = 1;
		event_base_loopexit(base, NULL);
		return;
	}
	if (t + 1 > acked)
		acked = t + 1;
	if (run_forever) {
		n = snprintf(line, sizeof(line), "acked %" PRIu64 "\n", t);
		if (write(1, line, (size_t)n) < 0)
			exit(4);
	}
	if (ckpt_every && acked % ckpt_every == 0)
		store_loop_checkpoint(sl);
	start_more();
	if (!run_forever && acked == total && inflight == 0)
		event_base_loopexit(base, NULL);
}

static void
transition(uint64_t t)
{
	struct store_batch *b = store_begin(st);
	uint8_t k[64], cv[8];
	size_t kn = study_key(k, t);
	json_t *ev;
	char val[64];
	int vn;

	vn = snprintf(val, sizeof(val), "{\"v\":1,\"state\":\"done\",\"t\":%"
	    PRIu64 "}", t);
	store_put(b, STORE_CF_STUDIES, k, kn, val, (size_t)vn);
	store_be64_put(cv, t + 1);
	store_put(b, STORE_CF_COUNTERS, "transitions", 11, cv, 8);
	ev = json_pack("{s:s, s:{s:I}, s:s}", "event", "test.transition",
	    "object", "t", (json_int_t)t, "outcome", "ok");
	audit_append(au, b, ev);
	json_decref(ev);
	inflight++;
	store_end(b, on_durable, (void *)(uintptr_t)t);
}

static void
start_more(void)
{
	if (resync) {
		/* after a failure: wait for every unit to come back and the
		 * store to recover, then go on from what is durable */
		if (inflight > 0 || store_state(st) != STORE_OK)
			return;
		resync = 0;
		next_t = read_counter();
		if (write(1, "recovered\n", 10) < 0)
			exit(4);
	}
	while (inflight < window && (run_forever || next_t < total))
		transition(next_t++);
}

/* ---------------------------------------------------------------------- */

struct chk {
	uint64_t	 n;
	uint8_t		 prev[AUDIT_HASH];
	uint64_t	 last_t;
	int		 have_t;
	char		 why[256];
};

static int
chk_leaf(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct chk *c = arg;
	json_t *j, *prev, *obj;
	json_error_t je;
	char want[2 * AUDIT_HASH + 1];
	uint8_t h[AUDIT_HASH];

	if (klen != 8 || store_be64_get(key) != c->n) {
		snprintf(c->why, sizeof(c->why), "leaf key %" PRIu64
		    " out of order", c->n);
		return 1;
	}
	if ((j = json_loadb(val, vlen, 0, &je)) == NULL ||
	    json_integer_value(json_object_get(j, "seq")) !=
	    (json_int_t)c->n) {
		snprintf(c->why, sizeof(c->why), "leaf %" PRIu64 " bad", c->n);
		json_decref(j);
		return 1;
	}
	prev = json_object_get(j, "prev");
	if (c->n > 0) {
		hex_encode(c->prev, AUDIT_HASH, want);
		if (!json_is_string(prev) ||
		    strcmp(json_string_value(prev), want) != 0) {
			snprintf(c->why, sizeof(c->why), "leaf %" PRIu64
			    " prev does not chain", c->n);
			json_decref(j);
			return 1;
		}
	}
	if (strcmp(json_string_value(json_object_get(j, "event")) ?
	    json_string_value(json_object_get(j, "event")) : "",
	    "test.transition") == 0 &&
	    (obj = json_object_get(j, "object")) != NULL) {
		uint64_t t = (uint64_t)json_integer_value(
		    json_object_get(obj, "t"));

		if (c->have_t && t != c->last_t + 1) {
			snprintf(c->why, sizeof(c->why), "transition %" PRIu64
			    " follows %" PRIu64 " (lost or counted twice)", t,
			    c->last_t);
			json_decref(j);
			return 1;
		}
		c->last_t = t;
		c->have_t = 1;
	}
	json_decref(j);
	audit_leaf_hash(val, vlen, h);
	memcpy(c->prev, h, AUDIT_HASH);
	c->n++;
	return 0;
}

static int
count_rows(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	(void)key;
	(void)klen;
	(void)val;
	(void)vlen;
	(*(uint64_t *)arg)++;
	return 0;
}

static int
check(void)
{
	struct chk c = { 0 };
	uint8_t root[AUDIT_HASH];
	uint64_t counter = read_counter(), rows = 0, ckpts = 0;
	uint64_t size = audit_durable_size(au), tsize;
	char err[512];

	if (store_scan(st, STORE_CF_AUDIT_LEAF, "", 0, chk_leaf, &c) < 0 ||
	    c.why[0]) {
		printf("FAIL %s\n", c.why[0] ? c.why : "reading leaves");
		return 1;
	}
	store_scan(st, STORE_CF_STUDIES, "", 0, count_rows, &rows);
	store_scan(st, STORE_CF_AUDIT_CKPT, "", 0, count_rows, &ckpts);
	if (c.n != size) {
		printf("FAIL leaves %" PRIu64 " but durable size %" PRIu64 "\n",
		    c.n, size);
		return 1;
	}
	if (rows != counter || (counter > 0 && (!c.have_t ||
	    c.last_t + 1 != counter))) {
		printf("FAIL counter %" PRIu64 " rows %" PRIu64 " last "
		    "transition leaf %" PRIu64 "\n", counter, rows,
		    c.have_t ? c.last_t : UINT64_MAX);
		return 1;
	}
	if (audit_tree_check(st, &tsize, root, err, sizeof(err)) < 0 ||
	    tsize != size) {
		printf("FAIL %s\n", err);
		return 1;
	}
	/* The tree must keep growing from here: one more leaf, then again. */
	printf("ok transitions=%" PRIu64 " leaves=%" PRIu64 " checkpoints=%"
	    PRIu64 "\n", counter, size, ckpts);
	return 0;
}

static int
append_cost(uint64_t n)
{
	struct store_batch *b;
	uint64_t t0, dt;
	json_t *ev = json_pack("{s:s, s:{s:s, s:s}, s:{s:s}, s:s}",
	    "event", "instance.received", "actor", "ae", "SOURCE_AE",
	    "address", "127.0.0.1", "object", "sop_instance_uid",
	    "1.2.826.0.1.3680043.8.498.12345678901234567890", "outcome",
	    "ok");

	/* Units of 1000 leaves, each synced: only the appends are timed. */
	dt = 0;
	for (uint64_t i = 0; i < n; i += 1000) {
		b = store_begin(st);
		t0 = now_ns();
		for (uint64_t j = i; j < n && j < i + 1000; j++)
			audit_append(au, b, ev);
		dt += now_ns() - t0;
		store_end(b, NULL, NULL);
		store_drain(st);
	}
	json_decref(ev);
	printf("audit_append: %" PRIu64 " leaves, %.0f ns per leaf "
	    "(no sync)\n", n, (double)dt / (double)n);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *dir, *mode, *sync = "group";
	int ch, rc = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: store-writer DATA_DIR fill N | run | "
		    "check | append-cost N [-w WINDOW] [-s group|always] "
		    "[-c EVERY]\n");
		return 2;
	}
	dir = argv[1];
	mode = argv[2];
	if ((strcmp(mode, "fill") == 0 || strcmp(mode, "append-cost") == 0)) {
		if (argc < 4)
			return 2;
		total = strtoull(argv[3], NULL, 10);
		optind = 4;
	} else
		optind = 3;
	while ((ch = getopt(argc, argv, "w:s:c:Lrm")) != -1) {
		switch (ch) {
		case 'r': resilient = 1; break;
		case 'm': small_mem = 1; break;
		case 'L': on_loop = 1; break;
		case 'w': window = strtoull(optarg, NULL, 10); break;
		case 's': sync = optarg; break;
		case 'c': ckpt_every = strtoull(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	if (window == 0)
		window = 1;
	log_setup(LOG_LVL_WARN, 0, "store-writer", 0);
	base = event_base_new();
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		fprintf(stderr, "store-writer: %s: %s\n", dir, strerror(errno));
		return 3;
	}
	open_state(dir, sync);

	if (strcmp(mode, "check") == 0)
		rc = check();
	else if (strcmp(mode, "append-cost") == 0)
		rc = append_cost(total);
	else if (strcmp(mode, "fill") == 0 || strcmp(mode, "run") == 0) {
		uint64_t first = next_t = read_counter();

		total += next_t;
		run_forever = strcmp(mode, "run") == 0;
		t_start = now_ns();
		{
			struct timeval tv = { 0, LAG_TICK_US };

			lag_ev = event_new(base, -1, EV_PERSIST, on_lag, NULL);
			lag_due = now_ns() / 1000 + LAG_TICK_US;
			event_add(lag_ev, &tv);
		}
		if (resilient) {
			struct timeval tv = { 0, 100000 };

			retry_ev = event_new(base, -1, EV_PERSIST, on_retry,
			    NULL);
			event_add(retry_ev, &tv);
		}
		start_more();
		event_base_dispatch(base);
		if (!run_forever && !failed) {
			double s = (double)(now_ns() - t_start) / 1e9;
			struct store_stats ss;

			store_stats(st, &ss);
			printf("transitions=%" PRIu64 " seconds=%.3f rate=%.0f/s "
			    "groups=%" PRIu64 " sync=%s%s window=%" PRIu64
			    " loop_lag_p99_us<=%" PRIu64 " loop_lag_max_us=%"
			    PRIu64 "\n", acked - first, s,
			    (double)(acked - first) / s, ss.groups, sync,
			    on_loop ? "(on the loop)" : "", window, lag_p99(),
			    lag_max);
		}
		rc = failed;
	} else {
		fprintf(stderr, "store-writer: unknown mode %s\n", mode);
		rc = 2;
	}
	if (lag_ev != NULL)
		event_free(lag_ev);
	if (retry_ev != NULL)
		event_free(retry_ev);
	store_loop_close(sl);
	event_base_free(base);
	return rc;
}
