/*
 * ctl_watch.c — vnamigctl watch: poll GET /api/status. On a terminal,
 * one line redrawn in place (a bar, studies, instances, bytes, rate,
 * ETA); otherwise one plain key=value line per poll, for logs. Ctrl-C
 * (or SIGTERM) ends it cleanly: the line is finished and the cursor
 * shown again. A failed poll is reported and the next one tried.
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

static void
tty_line(const json_t *st, char *out, size_t n)
{
	const json_t *p = ctl_jget(st, "progress");
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
	snprintf(out, n, "[%s] %s  studies %s/%s  instances %s/%s  %s  %s%s"
	    "  ETA %s  running %s", bar, pct, txt(p, "studies_done"),
	    txt(p, "studies_total"), txt(p, "instances_done"),
	    txt(p, "instances_total"),
	    ctl_bytes(ctl_jnum(p, "bytes_done"), b1, sizeof(b1)),
	    ctl_bytes(ctl_jnum(p, "rate_bytes_s"), b2, sizeof(b2)),
	    ctl_jnum(p, "rate_bytes_s") >= 0 ? "/s" : " per s",
	    ctl_duration(ctl_jnum(p, "eta_s"), b3, sizeof(b3)),
	    txt(st, "batches.by_state.running"));
}

static void
plain_line(const json_t *st, char *out, size_t n)
{
	const json_t *p = ctl_jget(st, "progress");
	char now[32];
	time_t t = time(NULL);
	struct tm tm;

	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	snprintf(out, n, "%s studies=%s/%s instances=%s/%s bytes=%s "
	    "rate_bytes_s=%s eta_s=%s running=%s", now,
	    txt(p, "studies_done"), txt(p, "studies_total"),
	    txt(p, "instances_done"), txt(p, "instances_total"),
	    txt(p, "bytes_done"), txt(p, "rate_bytes_s"), txt(p, "eta_s"),
	    txt(st, "batches.by_state.running"));
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

int
cmd_watch(struct ctl *c, char **args, int n)
{
	struct sigaction sa, old_int, old_term;
	struct ctl_answer a;
	char line[1024], err[1024];
	double every = 2;
	uint64_t count = 0, polls = 0;
	int tty = isatty(STDOUT_FILENO), rc = CTL_OK;
	char *end;

	(void)args;
	(void)n;
	if (c->o.interval != NULL) {
		errno = 0;
		every = strtod(c->o.interval, &end);
		if (*end != '\0' || errno || !(every >= 0.1 && every <= 86400)) {
			fprintf(stderr, PROG ": --interval \"%s\" is not a "
			    "number of seconds from 0.1 to 86400\n",
			    c->o.interval);
			return CTL_USAGE;
		}
	}
	if (c->o.count != NULL && ctl_parse_u64(c->o.count, 1, UINT32_MAX,
	    "--count", &count) < 0)
		return CTL_USAGE;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: wake the sleep */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	if (tty) {
		fputs("\033[?25l", stdout);	/* hide the cursor */
		c->errbuf = err;
		c->errlen = sizeof(err);
	}
	while (!stop) {
		err[0] = '\0';
		rc = ctl_api(c, "GET", "/api/status", NULL, 0, &a);
		if (rc == CTL_OK && c->json) {
			json_dumpf(a.json, stdout, JSON_COMPACT);
			fputc('\n', stdout);
		} else if (rc == CTL_OK && tty) {
			tty_line(a.json, line, sizeof(line));
			clip(line, sizeof(line));
			printf("\r\033[K%s", line);
		} else if (rc == CTL_OK)
			plain_line(a.json, line, sizeof(line));
		else if (tty) {
			snprintf(line, sizeof(line), "(%.900s; retrying "
			    "every %gs)", err, every);
			clip(line, sizeof(line));
			printf("\r\033[K%s", line);
		}
		if (rc == CTL_OK && !tty && !c->json)
			printf("%s\n", line);
		fflush(stdout);
		ctl_answer_free(&a);
		if (count && ++polls >= count)
			break;
		nap(every);
	}
	if (tty) {
		fputs("\n\033[?25h", stdout);	/* end the line, cursor on */
		fflush(stdout);
		c->errbuf = NULL;
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return stop ? CTL_OK : rc;
}
