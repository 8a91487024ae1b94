/*
 * log.c — see log.h. Lines are built in one buffer and written with one
 * write(2) so lines from the daemon never interleave mid-line.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "src/util/log.h"

static enum log_level cur_level = LOG_LVL_INFO;
static int cur_syslog, cur_phi;
static char cur_ident[32] = "vnamigd";

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_setup(enum log_level level, int use_syslog, const char *ident, int phi)
{
	cur_level = level;
	cur_phi = phi;
	if (ident != NULL)
		snprintf(cur_ident, sizeof(cur_ident), "%s", ident);
	if (use_syslog && !cur_syslog)
		openlog(cur_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!use_syslog && cur_syslog)
		closelog();
	cur_syslog = use_syslog;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

const char *
log_level_name(enum log_level l)
{
	return (unsigned)l < 4 ? level_names[l] : "?";
}

int
log_enabled(enum log_level l)
{
	return l <= cur_level;
}

void
log_msg(enum log_level l, const char *event, const char *fmt, ...)
{
	static const int sysprio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n, body;
	int r;
	va_list ap;
	static long pid;	/* a system call per line otherwise */

	if (!log_enabled(l))
		return;
	if (pid == 0)
		pid = (long)getpid();
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s[%ld] %s ",
	    ts.tv_nsec / 1000000, cur_ident, pid, level_names[l]);
	n += r > 0 ? (size_t)r : 0;
	body = n;
	r = snprintf(line + n, sizeof(line) - n, "%s", event);
	if (r > 0)
		n = n + (size_t)r < sizeof(line) ? n + (size_t)r : sizeof(line) - 1;
	if (fmt != NULL && n < sizeof(line) - 2) {
		line[n++] = ' ';
		va_start(ap, fmt);
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		va_end(ap);
		if (r > 0)
			n = n + (size_t)r < sizeof(line) ? n + (size_t)r :
			    sizeof(line) - 1;
	}
	if (n >= sizeof(line) - 1)
		memcpy(line + sizeof(line) - 5, "...", 3), n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to report it */
	}
	if (cur_syslog)
		syslog(sysprio[l], "%.*s", (int)(n - body - 1), line + body);
}

static int
needs_quote(const char *s)
{
	if (*s == '\0')
		return 1;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == '"' || *s == '=' ||
		    *s == '\\' || (unsigned char)*s == 0x7f)
			return 1;
	return 0;
}

const char *
log_q(const char *s)
{
	static char ring[4][512];
	static unsigned slot;
	char *out;
	size_t n = 0, cap = sizeof(ring[0]);

	if (s == NULL)
		return "-";
	if (!needs_quote(s))
		return s;
	out = ring[slot++ % 4];
	out[n++] = '"';
	for (; *s && n < cap - 8; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < ' ' || c == 0x7f) {
			n += (size_t)snprintf(out + n, cap - n, "\\x%02x", c);
		} else
			out[n++] = (char)c;
	}
	if (*s) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n++] = '"';
	out[n] = '\0';
	return out;
}

const char *
log_phi(const char *s)
{
	return cur_phi ? log_q(s) : "[phi]";
}
