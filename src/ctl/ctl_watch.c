/*
 * ctl_watch.c — vnamigctl watch: poll GET /api/status, or with a batch
 * ID GET /api/batches/ID until the batch ends. On a terminal, one line
 * redrawn in place (a bar, studies, instances, bytes, rate, ETA);
 * otherwise one plain key=value line per poll, for logs. Ctrl-C (or
 * SIGTERM) ends it cleanly: the line is finished and the cursor shown
 * again. A failed poll is reported and the next one tried (a batch
 * that is not there, 404, ends it).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "src/ctl/ctl.h"

#define BAR	20

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Text of a member ("-" when missing), in one of a few buffers. */
static const char *
txt(const json_t *o, const char *path)
{
	static char b[8][64];
	static unsigned i;

	return ctl_jtext(o, path, b[i++ % 8], sizeof(b[0]));
}

/* fraction: done/total of studies, else of instances; -1 unknown. */
static double
fraction(const json_t *p)
{
	double d = ctl_jnum(p, "studies_done"), t = ctl_jnum(p,
	    "studies_total");

	if (t <= 0) {
		d = ctl_jnum(p, "instances_done");
		t = ctl_jnum(p, "instances_total");
	}
	if (t <= 0 || d < 0)
		return -1;
	return d > t ? 1 : d / t;
}

/*
 * tty_line: the live line for progress P (status's shape): a bar, the
 * percentage, HEAD, studies, instances, bytes, rate, ETA, then TAIL.
 */
static void
tty_line(const json_t *p, const char *head, const char *tail, char *out,
    size_t n)
{
	char bar[BAR + 1], b1[32], b2[32], b3[32], pct[8];
	double f = fraction(p);
	int i, fill = f < 0 ? 0 : (int)(f * BAR + 0.5);

	for (i = 0; i < BAR; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[BAR] = '\0';
	if (f < 0)
		snprintf(pct, sizeof(pct), "  -%%");
	else
		snprintf(pct, sizeof(pct), "%3d%%", (int)floor(f * 100));
	snprintf(out, n, "[%s] %s%s  studies %s/%s  instances %s/%s  %s  %s%s"
	    "  ETA %s%s", bar, pct, head, txt(p, "studies_done"),
	    txt(p, "studies_total"), txt(p, "instances_done"),
	    txt(p, "instances_total"),
	    ctl_bytes(ctl_jnum(p, "bytes_done"), b1, sizeof(b1)),
	    ctl_bytes(ctl_jnum(p, "rate_bytes_s"), b2, sizeof(b2)),
	    ctl_jnum(p, "rate_bytes_s") >= 0 ? "/s" : " per s",
	    ctl_duration(ctl_jnum(p, "eta_s"), b3, sizeof(b3)), tail);
}

/* plain_line: the time, HEAD, then P's members as key=value, TAIL. */
static void
plain_line(const json_t *p, const char *head, const char *tail, char *out,
    size_t n)
{
	char now[32];
	time_t t = time(NULL);
	struct tm tm;

	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	snprintf(out, n, "%s%s studies=%s/%s instances=%s/%s bytes=%s "
	    "rate_bytes_s=%s eta_s=%s%s", now, head,
	    txt(p, "studies_done"), txt(p, "studies_total"),
	    txt(p, "instances_done"), txt(p, "instances_total"),
	    txt(p, "bytes_done"), txt(p, "rate_bytes_s"), txt(p, "eta_s"),
	    tail);
}

/* sum: the members NAMES of O added up (those missing count 0). */
static json_int_t
sum(const json_t *o, const char *const *names)
{
	json_int_t s = 0;

	for (; *names != NULL; names++)
		s += json_integer_value(json_object_get(o, *names));
	return s;
}

/*
 * batch_progress: batch B's progress in the shape of GET /api/status's
 * (studies and instances done and total, bytes_done, rate_bytes_s,
 * eta_s), from the engine's live "progress" (studies and instances by
 * state: done is those that ended) or, when the engine is not working
 * the batch, its counts. A new reference.
 */
static json_t *
batch_progress(const json_t *b)
{
	static const char *const sends[] = { "done", "quarantined", "failed",
	    "cancelled", NULL };
	static const char *const iends[] = { "present", "verified",
	    "quarantined", "failed", NULL };
	const json_t *p = ctl_jget(b, "progress"), *in, *v;
	json_int_t all = 0;
	const char *k;

	if (json_is_object(p) && json_object_get(p, "instances_total"))
		return json_incref((json_t *)(uintptr_t)p);
	if (!json_is_object(p))
		return json_pack("{s:O?, s:O?, s:n, s:O?, s:n, s:n, s:n}",
		    "studies_done", ctl_jget(b, "counts.done"),
		    "studies_total", ctl_jget(b, "counts.studies"),
		    "instances_done", "instances_total",
		    ctl_jget(b, "counts.instances"), "bytes_done",
		    "rate_bytes_s", "eta_s");
	in = ctl_jget(p, "instances");
	json_object_foreach((json_t *)(uintptr_t)in, k, v)
		all += json_integer_value(v);
	return json_pack("{s:I, s:O?, s:I, s:I, s:O?, s:O?, s:O?}",
	    "studies_done", sum(ctl_jget(p, "studies"), sends),
	    "studies_total", ctl_jget(p, "studies_total"),
	    "instances_done", sum(in, iends), "instances_total", all,
	    "bytes_done", ctl_jget(p, "bytes_sent"),
	    "rate_bytes_s", ctl_jget(p, "bytes_per_second"),
	    "eta_s", ctl_jget(p, "eta_seconds"));
}

/* ended: B's state is final: 1 done, 2 failed or cancelled; else 0. */
static int
ended(const json_t *b)
{
	const char *st = json_string_value(ctl_jget(b, "state"));

	if (st == NULL)
		return 0;
	if (strcmp(st, "done") == 0)
		return 1;
	return strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0 ?
	    2 : 0;
}

static int
columns(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
		return ws.ws_col;
	return 80;
}

/* clip: cut LINE to the terminal's width (one line, no wrapping). */
static void
clip(char *line, size_t n)
{
	size_t w = (size_t)columns();

	if (w > n)
		w = n;
	line[w - 1] = '\0';
}

/* nap: sleep S seconds unless a signal comes. */
static void
nap(double s)
{
	struct timespec ts;

	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (!stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* What is watched: the whole (status) or one batch. */
struct watch {
	const char	*path;		/* /api/status or /api/batches/ID */
	uint64_t	 id;		/* 0: status */
	int		 tty, end;	/* end: ended() of the batch */
};

/* show: one poll's answer J as a line on stdout. */
static void
show(struct ctl *c, struct watch *w, const json_t *j)
{
	const json_t *b = ctl_jget(j, "batch");
	json_t *p;
	char line[1024], head[128] = "", tail[64] = "";

	if (c->json) {
		json_dumpf(j, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		w->end = w->id ? ended(b) : 0;
		return;
	}
	if (w->id) {
		p = batch_progress(b);
		w->end = ended(b);
		snprintf(head, sizeof(head), w->tty ? "  batch %" PRIu64 " %s" :
		    " batch=%" PRIu64 " state=%s", w->id, txt(b, "state"));
	} else {
		p = json_incref(ctl_jget(j, "progress"));
		snprintf(tail, sizeof(tail), w->tty ? "  running %s" :
		    " running=%s", txt(j, "batches.by_state.running"));
	}
	if (w->tty) {
		tty_line(p, head, tail, line, sizeof(line));
		clip(line, sizeof(line));
		printf("\r\033[K%s", line);
	} else {
		plain_line(p, head, tail, line, sizeof(line));
		printf("%s\n", line);
	}
	json_decref(p);
}

/* watch_args: ARGS and the options into W and the timing; CTL_*. */
static int
watch_args(struct ctl *c, char **args, int n, struct watch *w,
    double *every, uint64_t *count)
{
	static char path[64];
	char *end;

	if (n > 0) {
		if (ctl_parse_u64(args[0], 1, INT64_MAX, "batch ID", &w->id) <
		    0)
			return CTL_USAGE;
		snprintf(path, sizeof(path), "/api/batches/%" PRIu64, w->id);
		w->path = path;
	}
	if (c->o.interval != NULL) {
		errno = 0;
		*every = strtod(c->o.interval, &end);
		if (*end != '\0' || errno || !(*every >= 0.1 &&
		    *every <= 86400)) {
			fprintf(stderr, PROG ": --interval \"%s\" is not a "
			    "number of seconds from 0.1 to 86400\n",
			    c->o.interval);
			return CTL_USAGE;
		}
	}
	if (c->o.count != NULL && ctl_parse_u64(c->o.count, 1, UINT32_MAX,
	    "--count", count) < 0)
		return CTL_USAGE;
	return CTL_OK;
}

/*
 * watch: poll until Ctrl-C, --count N polls, or (a batch) its end or
 * a 404. Exit 0 on Ctrl-C; else the last poll's status, or for a batch
 * that ended CTL_OK (done) or CTL_ENDED (failed, cancelled).
 */
int
cmd_watch(struct ctl *c, char **args, int n)
{
	struct watch w = { "/api/status", 0, isatty(STDOUT_FILENO), 0 };
	struct sigaction sa, old_int, old_term;
	struct ctl_answer a;
	char line[1024], err[1024];
	double every = 2;
	uint64_t count = 0, polls = 0;
	int rc, gone = 0;

	if ((rc = watch_args(c, args, n, &w, &every, &count)) != CTL_OK)
		return rc;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: wake the sleep */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	if (w.tty) {
		fputs("\033[?25l", stdout);	/* hide the cursor */
		c->errbuf = err;
		c->errlen = sizeof(err);
	}
	while (!stop) {
		err[0] = '\0';
		rc = ctl_api(c, "GET", w.path, NULL, 0, &a);
		if (rc == CTL_OK)
			show(c, &w, a.json);
		else if (w.id && a.status == 404)
			gone = 1;	/* no such batch (any more): the end */
		else if (w.tty) {
			snprintf(line, sizeof(line), "(%.900s; retrying "
			    "every %gs)", err, every);
			clip(line, sizeof(line));
			printf("\r\033[K%s", line);
		}
		fflush(stdout);
		ctl_answer_free(&a);
		if (gone || w.end || (count && ++polls >= count))
			break;
		nap(every);
	}
	if (w.tty) {
		fputs("\n\033[?25h", stdout);	/* end the line, cursor on */
		fflush(stdout);
		c->errbuf = NULL;
		if (gone)
			fprintf(stderr, PROG ": %s\n", err);
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (stop)
		return CTL_OK;
	return w.end == 2 ? CTL_ENDED : rc;
}
