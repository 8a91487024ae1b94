/*
 * t_units.c — tables of good and bad inputs for the conf_units parsers:
 * sizes, rates, durations and weekly windows, with their boundaries.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf_units.h"
#include "t/unit/tap.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define SENTINEL	UINT64_C(0x5a5a5a5a5a5a5a5a)

/* ok: 1 when it must parse (to want), 0 when it must be rejected. */
struct num_case {
	const char	*in;
	int		 ok;
	uint64_t	 want;
};

typedef int (*num_parser)(const char *, uint64_t *, const char **);

static const struct num_case size_cases[] = {
	{ "0",				1, 0 },
	{ "512",			1, 512 },
	{ "007",			1, 7 },
	{ "1B",				1, 1 },
	{ "256KiB",			1, 262144 },
	{ "256kib",			1, 262144 },
	{ "256 KiB",			1, 262144 },
	{ "  256KiB\t",			1, 262144 },
	{ "4MB",			1, 4000000 },
	{ "4mb",			1, 4000000 },
	{ "1KB",			1, 1000 },
	{ "1GB",			1, 1000000000 },
	{ "2TB",			1, UINT64_C(2000000000000) },
	{ "1K",				1, 1024 },
	{ "1M",				1, 1048576 },
	{ "1G",				1, 1073741824 },
	{ "1T",				1, UINT64_C(1099511627776) },
	{ "1MiB",			1, 1048576 },
	{ "1TiB",			1, UINT64_C(1099511627776) },
	{ "1.5GiB",			1, 1610612736 },
	{ "1.25KiB",			1, 1280 },
	{ "0.5KB",			1, 500 },
	{ "0.001KiB",			1, 1 },		/* 1.024 → 1 */
	{ "0.0009KiB",			1, 0 },		/* 0.9216 → 0 */
	{ "1.5B",			1, 1 },
	{ "0.999999999999999999TiB",	1, UINT64_C(1099511627775) },
	{ "18446744073709551615",	1, UINT64_MAX },
	{ "18446744073709551615B",	1, UINT64_MAX },
	{ "17179869183GiB",		1, UINT64_C(18446744072635809792) },
	{ "16777215.999999999TiB",	1, UINT64_C(18446744073709550516) },
	{ "18446744073709551616",	0, 0 },
	{ "99999999999999999999999",	0, 0 },
	{ "17179869184GiB",		0, 0 },
	{ "16777216TiB",		0, 0 },
	{ "18446744073709551615.5B",	1, UINT64_MAX },	/* floor */
	{ "18446744073709551.615KB",	1, UINT64_MAX },
	{ "18446744073709551.616KB",	0, 0 },
	{ "",				0, 0 },
	{ "   ",			0, 0 },
	{ "-1",				0, 0 },
	{ "+1",				0, 0 },
	{ "KiB",			0, 0 },
	{ "1.5",			0, 0 },
	{ "1.GiB",			0, 0 },
	{ ".5GiB",			0, 0 },
	{ "1.0000000000000000001KiB",	0, 0 },
	{ "10XB",			0, 0 },
	{ "10 20",			0, 0 },
	{ "10KiBx",			0, 0 },
	{ "10KiB 5",			0, 0 },
	{ "0x10",			0, 0 },
	{ "1e3",			0, 0 },
	{ "10 ",			1, 10 },	/* trimmed */
	{ "1 0",			0, 0 },
	{ "50MB/s",			0, 0 },
};

static const struct num_case rate_cases[] = {
	{ "0",				1, 0 },
	{ "unlimited",			1, 0 },
	{ " Unlimited ",		1, 0 },
	{ "0/s",			1, 0 },
	{ "0B/s",			1, 0 },
	{ "50MB/s",			1, 50000000 },
	{ "1GiB/s",			1, 1073741824 },
	{ "512/s",			1, 512 },
	{ "1.5MiB/s",			1, 1572864 },
	{ "10 KiB/s",			1, 10240 },
	{ "18446744073709551615/s",	1, UINT64_MAX },
	{ "17179869184GiB/s",		0, 0 },
	{ "50MB",			0, 0 },
	{ "50",				0, 0 },
	{ "/s",				0, 0 },
	{ "MB/s",			0, 0 },
	{ "50MB /s",			0, 0 },
	{ "50MB/",			0, 0 },
	{ "50MB/h",			0, 0 },
	{ "50MB/s/s",			0, 0 },
	{ "-50MB/s",			0, 0 },
	{ "+50MB/s",			0, 0 },
	{ "",				0, 0 },
	{ "  ",				0, 0 },
	{ "unlimitedx",			0, 0 },
	{ "none",			0, 0 },
	{ "00",				0, 0 },
};

static const struct num_case dur_cases[] = {
	{ "0",				1, 0 },
	{ "0s",				1, 0 },
	{ "250ms",			1, 250 },
	{ "30s",			1, 30000 },
	{ "5m",				1, 300000 },
	{ "1h",				1, 3600000 },
	{ "1h30m",			1, 5400000 },
	{ "2d",				1, 172800000 },
	{ "1d2h3m4s5ms",		1, 93784005 },
	{ "1m500ms",			1, 60500 },
	{ " 30s ",			1, 30000 },
	{ "213503982334d",		1, UINT64_C(18446744073657600000) },
	{ "213503982334d51951615ms",	1, UINT64_MAX },
	{ "213503982334d51951616ms",	0, 0 },
	{ "213503982335d",		0, 0 },
	{ "18446744073709551616ms",	0, 0 },
	{ "30",				0, 0 },
	{ "1h30",			0, 0 },
	{ "00",				0, 0 },
	{ "",				0, 0 },
	{ "  ",				0, 0 },
	{ "-5s",			0, 0 },
	{ "+5s",			0, 0 },
	{ "1.5h",			0, 0 },
	{ "5min",			0, 0 },
	{ "5M",				0, 0 },
	{ "5S",				0, 0 },
	{ "5x",				0, 0 },
	{ "30m1h",			0, 0 },
	{ "1s1s",			0, 0 },
	{ "1h 30m",			0, 0 },
	{ "s",				0, 0 },
	{ "30s,",			0, 0 },
};

static void
num_table(const char *what, num_parser fn, const struct num_case *c,
    size_t n)
{
	const char	*err;
	uint64_t	 v;
	size_t		 i;
	int		 rc, pass;

	for (i = 0; i < n; i++) {
		v = SENTINEL;
		err = NULL;
		rc = fn(c[i].in, &v, &err);
		if (c[i].ok)
			pass = rc == 0 && v == c[i].want && err == NULL;
		else
			pass = rc == -1 && v == SENTINEL && err != NULL &&
			    err[0] != '\0';
		if (!ok(pass, "%s \"%s\" %s", what, c[i].in,
		    c[i].ok ? "parses" : "is rejected"))
			diag("  rc %d, got %" PRIu64 ", want %" PRIu64
			    ", err \"%s\"", rc, v, c[i].want,
			    err != NULL ? err : "(null)");
		else if (!c[i].ok)
			diag("  %s", err);
	}
}

static void
test_messages(void)
{
	const char	*err = NULL;
	uint64_t	 v;

	conf_parse_size("lots", &v, &err);
	is_str(err, "expected a size such as 512, 256KiB or 4MB",
	    "size error names examples");
	conf_parse_rate("lots", &v, &err);
	is_str(err,
	    "expected a rate such as 50MB/s or 1GiB/s, or 0 or unlimited",
	    "rate error names examples, not a size");
	conf_parse_rate("50MB", &v, &err);
	is_str(err, "a rate needs \"/s\" after the size, as in 50MB/s",
	    "rate without /s says so");
	conf_parse_rate("50XB/s", &v, &err);
	is_str(err,
	    "size unit must be B, KB, MB, GB, TB, KiB, MiB, GiB, TiB, K, M, "
	    "G or T", "rate with a bad unit names the units");
	conf_parse_duration("30", &v, &err);
	is_str(err,
	    "a number in a duration needs a unit (ms, s, m, h or d), as in 30s",
	    "bare duration asks for a unit");
	is_int(conf_parse_size("1x", &v, NULL), -1, "err may be NULL");
	is_int(conf_parse_size(NULL, &v, &err), -1, "NULL size rejected");
}

enum { SUN, MON, TUE, WED, THU, FRI, SAT };
static const char *const wday_names[7] = {
	"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
};

/* in is 'y' or 'n'; a probe with in == 0 ends the list. */
struct probe {
	int	 wday, hour, minute;
	char	 in;
};

struct win_case {
	const char	*spec;
	unsigned	 count;		/* minutes set in the week */
	struct probe	 p[9];
};

static const struct win_case win_good[] = {
	{ "Mon-Fri 19:00-07:00", 5 * 720, {
		{ FRI, 23, 0, 'y' }, { SAT, 6, 59, 'y' },
		{ SAT, 7, 0, 'n' }, { MON, 3, 0, 'n' },
		{ TUE, 3, 0, 'y' }, { MON, 19, 0, 'y' },
		{ MON, 18, 59, 'n' }, { SUN, 23, 0, 'n' } } },
	{ "Sat,Sun 00:00-24:00", 2 * 1440, {
		{ SAT, 0, 0, 'y' }, { SUN, 23, 59, 'y' },
		{ MON, 0, 0, 'n' }, { FRI, 23, 59, 'n' } } },
	{ "Fri-Mon 00:00-24:00", 4 * 1440, {
		{ FRI, 0, 0, 'y' }, { SAT, 12, 0, 'y' },
		{ SUN, 12, 0, 'y' }, { MON, 23, 59, 'y' },
		{ TUE, 0, 0, 'n' }, { THU, 23, 59, 'n' } } },
	{ "always", 7 * 1440, {
		{ MON, 0, 0, 'y' }, { SUN, 23, 59, 'y' } } },
	{ " ALWAYS ", 7 * 1440, {
		{ WED, 12, 0, 'y' } } },
	{ "never", 0, {
		{ MON, 0, 0, 'n' }, { WED, 12, 0, 'n' } } },
	{ "22:00-06:00", 7 * 480, {
		{ MON, 22, 0, 'y' }, { TUE, 5, 59, 'y' },
		{ TUE, 6, 0, 'n' }, { SUN, 23, 0, 'y' },
		{ MON, 0, 30, 'y' }, { WED, 12, 0, 'n' },
		{ THU, 21, 59, 'n' } } },
	{ "00:00-24:00", 7 * 1440, {
		{ THU, 13, 37, 'y' } } },
	{ "Sun 23:00-01:00", 120, {
		{ SUN, 23, 0, 'y' }, { MON, 0, 59, 'y' },
		{ MON, 1, 0, 'n' }, { SUN, 22, 59, 'n' } } },
	{ "Tue 10:00-10:00", 1440, {
		{ TUE, 10, 0, 'y' }, { WED, 9, 59, 'y' },
		{ WED, 10, 0, 'n' }, { TUE, 9, 59, 'n' } } },
	{ "Mon-Fri 19:00-07:00, Sat-Sun 00:00-24:00", 2880 + 2880 + 300, {
		{ SAT, 12, 0, 'y' }, { MON, 3, 0, 'n' },
		{ TUE, 3, 0, 'y' }, { WED, 12, 0, 'n' },
		{ FRI, 20, 0, 'y' } } },
	{ "Mon 09:00-10:00; Wed 09:00-10:00,Fri 09:00-10:00", 180, {
		{ WED, 9, 30, 'y' }, { TUE, 9, 30, 'n' },
		{ FRI, 9, 59, 'y' }, { FRI, 10, 0, 'n' },
		{ MON, 9, 0, 'y' } } },
	{ "mon,WED-thu 08:00-09:00", 180, {
		{ WED, 8, 0, 'y' }, { THU, 8, 59, 'y' },
		{ TUE, 8, 0, 'n' }, { MON, 8, 30, 'y' } } },
	{ "Sat, Sun 00:00-12:00", 1440, {
		{ SUN, 11, 59, 'y' }, { SUN, 12, 0, 'n' } } },
	{ " Mon 00:00-00:01 ; Sun 23:59-24:00 ", 2, {
		{ MON, 0, 0, 'y' }, { SUN, 23, 59, 'y' },
		{ MON, 0, 1, 'n' } } },
	{ "Wed-Wed 12:00-13:00", 60, {
		{ WED, 12, 0, 'y' }, { THU, 12, 0, 'n' } } },
	{ "Sat-Sun 12:00-12:00;Sun-Mon 23:00-01:00", 2 * 1440 + 120, {
		{ SAT, 11, 59, 'n' }, { SAT, 12, 0, 'y' },
		{ MON, 11, 59, 'y' }, { MON, 12, 0, 'n' },
		{ MON, 22, 59, 'n' }, { TUE, 0, 30, 'y' },
		{ TUE, 1, 0, 'n' } } },
};

static const char *const win_bad[] = {
	"Mon-Fri",
	"Mon-Fri 25:00-07:00",
	"Funday 10:00-11:00",
	"10:60-11:00",
	"",
	"   ",
	"Mon-Fri 19:00",
	"Mon-Fri 19:00-",
	"24:00-06:00",
	"10:00-24:01",
	"10:00-24:30",
	"10:00-25:00",
	"7:00-9:00",
	"10:0-11:00",
	"10:00 - 11:00",
	"10:00-11:00x",
	"10:00-11:000",
	"Mon-Fri19:00-07:00",
	"Monday 10:00-11:00",
	"Mo 10:00-11:00",
	"Mon- Fri 10:00-11:00",
	"Mon-Fri,19:00-07:00",
	"Sat, 10:00-11:00",
	"Mon-Fri 10:00-11:00;",
	"Mon-Fri 10:00-11:00, ",
	";10:00-11:00",
	"10:00-11:00;;12:00-13:00",
	"10:00-11:00 12:00-13:00",
	"always;10:00-11:00",
	"alwaysx",
	"-10:00-11:00",
	"+10:00-11:00",
	"Mon-Fri 10:00-11:00 Sat",
};

static unsigned
win_count(const struct conf_window *w)
{
	unsigned	 m, n = 0;

	for (m = 0; m < CONF_WEEK_MINUTES; m++)
		n += (unsigned)conf_window_contains(w, m);
	return n;
}

static void
test_window_good(void)
{
	struct conf_window	 w;
	const struct win_case	*c;
	const struct probe	*p;
	const char		*err;
	size_t			 i, j;
	int			 rc;

	for (i = 0; i < NELEM(win_good); i++) {
		c = &win_good[i];
		err = NULL;
		memset(&w, 0xa5, sizeof(w));
		rc = conf_parse_window(c->spec, &w, &err);
		if (!ok(rc == 0, "window \"%s\" parses", c->spec)) {
			diag("  error: %s", err != NULL ? err : "(null)");
			continue;
		}
		is_int(win_count(&w), c->count, "window \"%s\" covers %u "
		    "minutes", c->spec, c->count);
		for (j = 0; j < NELEM(c->p) && c->p[j].in != 0; j++) {
			p = &c->p[j];
			is_int(conf_window_contains(&w, conf_window_minute(
			    p->wday, p->hour, p->minute)), p->in == 'y',
			    "window \"%s\" %s %s %02d:%02d", c->spec,
			    p->in == 'y' ? "contains" : "excludes",
			    wday_names[p->wday], p->hour, p->minute);
		}
	}
}

static void
test_window_bad(void)
{
	struct conf_window	 w;
	const char		*err;
	size_t			 i;
	int			 rc;

	for (i = 0; i < NELEM(win_bad); i++) {
		err = NULL;
		memset(&w, 0xa5, sizeof(w));
		rc = conf_parse_window(win_bad[i], &w, &err);
		if (ok(rc == -1 && err != NULL && win_count(&w) == 0,
		    "window \"%s\" is rejected and left empty", win_bad[i]))
			diag("  %s", err);
		else
			diag("  rc %d, %u minutes set", rc, win_count(&w));
	}
}

static void
test_window_messages(void)
{
	struct conf_window	 w;
	const char		*err = NULL;

	conf_parse_window("Funday 10:00-11:00", &w, &err);
	is_str(err, "day name must be Mon, Tue, Wed, Thu, Fri, Sat or Sun",
	    "bad day name message");
	conf_parse_window("Mon-Fri 25:00-07:00", &w, &err);
	is_str(err, "hour must be 00-23 (24:00 only as an end)",
	    "bad hour message");
	conf_parse_window("24:00-06:00", &w, &err);
	is_str(err, "hour must be 00-23 (24:00 only as an end)",
	    "24:00 as a start message");
	conf_parse_window("10:60-11:00", &w, &err);
	is_str(err, "minute must be 00-59", "bad minute message");
	is_int(conf_parse_window("10:60-11:00", &w, NULL), -1,
	    "window err may be NULL");
}

static void
test_window_minute(void)
{
	struct conf_window	 w;

	is_int(conf_window_minute(MON, 0, 0), 0, "Mon 00:00 is minute 0");
	is_int(conf_window_minute(TUE, 3, 0), 1440 + 180,
	    "Tue 03:00 is minute 1620");
	is_int(conf_window_minute(SAT, 0, 0), 5 * 1440,
	    "Sat 00:00 is minute 7200");
	is_int(conf_window_minute(SUN, 0, 0), 6 * 1440,
	    "Sun 00:00 is minute 8640");
	is_int(conf_window_minute(SUN, 23, 59), CONF_WEEK_MINUTES - 1,
	    "Sun 23:59 is the last minute");
	is_int(conf_window_minute(SUN, 24, 0), 0,
	    "Sun 24:00 wraps to Mon 00:00");
	is_int(conf_window_minute(7, 0, 0), 6 * 1440, "wday 7 is Sunday");
	is_int(conf_window_minute(MON, 0, -1), CONF_WEEK_MINUTES - 1,
	    "Mon 00:00 minus one wraps to Sun 23:59");
	conf_parse_window("always", &w, NULL);
	is_int(conf_window_contains(&w, CONF_WEEK_MINUTES), 0,
	    "minute 10080 is outside any window");
	is_int(conf_window_contains(&w, UINT32_MAX), 0,
	    "huge minute is outside any window");
}

int
main(void)
{
	num_table("size", conf_parse_size, size_cases, NELEM(size_cases));
	num_table("rate", conf_parse_rate, rate_cases, NELEM(rate_cases));
	num_table("duration", conf_parse_duration, dur_cases,
	    NELEM(dur_cases));
	test_messages();
	test_window_good();
	test_window_bad();
	test_window_messages();
	test_window_minute();
	return done_testing();
}
