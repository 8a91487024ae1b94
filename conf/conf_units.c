/*
 * conf_units.c — see conf_units.h. Every parser trims spaces and tabs
 * around the whole value, then reads a [p, end) range strictly, so that
 * the rate parser can hand the part before "/s" to the size parser.
 * Only ASCII is recognised; the C locale's <ctype.h> is not consulted.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "conf/conf_units.h"

#define DAY_MINUTES	(24 * 60)
/* Digits after a decimal point; keeps the exact scaling below in range. */
#define FRAC_DIGITS_MAX	18

static const char E_SIZE[] = "expected a size such as 512, 256KiB or 4MB";
static const char E_SIZE_UNIT[] =
    "size unit must be B, KB, MB, GB, TB, KiB, MiB, GiB, TiB, K, M, G or T";
static const char E_SIZE_BIG[] =
    "size too large (the limit is 18446744073709551615 bytes)";
static const char E_SIZE_FRAC[] =
    "a fractional size needs a unit, as in 1.5GiB";
static const char E_SIZE_DIGITS[] =
    "at most 18 digits after the decimal point";
static const char E_RATE[] =
    "expected a rate such as 50MB/s or 1GiB/s, or 0 or unlimited";
static const char E_RATE_SLASH[] =
    "a rate needs \"/s\" after the size, as in 50MB/s";
static const char E_DUR[] =
    "expected a duration such as 250ms, 30s, 5m, 1h30m or 2d";
static const char E_DUR_BARE[] =
    "a number in a duration needs a unit (ms, s, m, h or d), as in 30s";
static const char E_DUR_UNIT[] =
    "duration unit must be ms, s, m, h or d (lower case)";
static const char E_DUR_ORDER[] =
    "duration units must go from largest to smallest, each once, as in 1h30m";
static const char E_DUR_BIG[] = "duration too large";
static const char E_WIN[] =
    "expected a window such as \"Mon-Fri 19:00-07:00\", always or never";
static const char E_WIN_DAY[] =
    "day name must be Mon, Tue, Wed, Thu, Fri, Sat or Sun";
static const char E_WIN_TIME[] = "expected a time HH:MM such as 07:00";
static const char E_WIN_AFTER_DAYS[] =
    "expected a space and a time range HH:MM-HH:MM after the days";
static const char E_WIN_HOUR[] = "hour must be 00-23 (24:00 only as an end)";
static const char E_WIN_MINUTE[] = "minute must be 00-59";
static const char E_WIN_DASH[] =
    "expected \"-HH:MM\" after the start time, as in 19:00-07:00";
static const char E_WIN_SEP[] =
    "window parts must be separated by \";\" or \",\"";
static const char E_WIN_EMPTY[] = "empty window part (stray \";\" or \",\")";

static const struct size_unit {
	const char	*name;
	uint64_t	 mult;
} size_units[] = {
	{ "b",		1 },
	{ "kb",		1000ULL },
	{ "mb",		1000ULL * 1000 },
	{ "gb",		1000ULL * 1000 * 1000 },
	{ "tb",		1000ULL * 1000 * 1000 * 1000 },
	{ "kib",	1ULL << 10 },
	{ "mib",	1ULL << 20 },
	{ "gib",	1ULL << 30 },
	{ "tib",	1ULL << 40 },
	{ "k",		1ULL << 10 },
	{ "m",		1ULL << 20 },
	{ "g",		1ULL << 30 },
	{ "t",		1ULL << 40 },
};

/* Largest unit first: a duration's units must appear in this order. */
static const struct dur_unit {
	const char	*name;
	uint64_t	 ms;
} dur_units[] = {
	{ "d",	86400000 },
	{ "h",	3600000 },
	{ "m",	60000 },
	{ "s",	1000 },
	{ "ms",	1 },
};

static const char *const day_names[7] = {
	"mon", "tue", "wed", "thu", "fri", "sat", "sun"
};

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static int
fail(const char **err, const char *msg)
{
	if (err != NULL)
		*err = msg;
	return -1;
}

static int
is_space(char c)
{
	return c == ' ' || c == '\t';
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char
to_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Return 1 when [p, end) equals the lower-case word, ignoring case. */
static int
word_eq(const char *p, const char *end, const char *word)
{
	size_t	 i, n = strlen(word);

	if ((size_t)(end - p) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (to_lower(p[i]) != word[i])
			return 0;
	return 1;
}

/* Return s past leading blanks and set *endp before trailing blanks. */
static const char *
trim(const char *s, const char **endp)
{
	const char	*e = s + strlen(s);

	while (is_space(*s))
		s++;
	while (e > s && is_space(e[-1]))
		e--;
	*endp = e;
	return s;
}

/*
 * Read decimal digits at *pp into *v and their count into *ndig, moving
 * *pp past them. Return -1 when the value does not fit in 64 bits.
 */
static int
read_uint(const char **pp, const char *end, uint64_t *v, size_t *ndig)
{
	const char	*p = *pp;
	uint64_t	 n = 0;

	for (; p < end && is_digit(*p); p++)
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(*p - '0'), &n))
			return -1;
	*ndig = (size_t)(p - *pp);
	*pp = p;
	*v = n;
	return 0;
}

/*
 * Return floor(0.<digits> * mult) exactly, for at most FRAC_DIGITS_MAX
 * digits and mult <= 2^40. With F the digits read so far (k of them) it
 * keeps F * mult = q * 10^k + r, r < 10^k; every term stays below 2^63.
 */
static uint64_t
frac_scale(const char *p, const char *end, uint64_t mult)
{
	uint64_t	 q = 0, r = 0, pow = 1, t;

	for (; p < end; p++) {
		pow *= 10;
		t = r * 10 + (uint64_t)(*p - '0') * mult;
		q += t / pow;
		r = t % pow;
	}
	return q;
}

/* Find the multiplier of a size unit; -1 when unknown. */
static int
size_unit(const char *p, const char *end, uint64_t *mult)
{
	size_t	 i;

	for (i = 0; i < NELEM(size_units); i++)
		if (word_eq(p, end, size_units[i].name)) {
			*mult = size_units[i].mult;
			return 0;
		}
	return -1;
}

/* Parse [p, end) as a size; see conf_parse_size. */
static int
size_range(const char *p, const char *end, uint64_t *bytes, const char **err)
{
	const char	*fp = NULL, *fend = NULL, *u;
	uint64_t	 n, mult, v;
	size_t		 nd;

	if (read_uint(&p, end, &n, &nd) == -1)
		return fail(err, E_SIZE_BIG);
	if (nd == 0)
		return fail(err, E_SIZE);
	if (p < end && *p == '.') {
		fp = ++p;
		while (p < end && is_digit(*p))
			p++;
		fend = p;
		if (fend == fp)
			return fail(err, E_SIZE);
		if (fend - fp > FRAC_DIGITS_MAX)
			return fail(err, E_SIZE_DIGITS);
	}
	for (u = p; u < end && is_space(*u); u++)
		continue;
	if (u == end) {
		if (u != p)
			return fail(err, E_SIZE);
		if (fp != NULL)
			return fail(err, E_SIZE_FRAC);
		*bytes = n;
		return 0;
	}
	if (size_unit(u, end, &mult) == -1) {
		/* Only a word of letters is taken for a misspelt unit. */
		for (; u < end; u++)
			if (!is_alpha(*u))
				return fail(err, E_SIZE);
		return fail(err, E_SIZE_UNIT);
	}
	if (__builtin_mul_overflow(n, mult, &v))
		return fail(err, E_SIZE_BIG);
	if (fp != NULL &&
	    __builtin_add_overflow(v, frac_scale(fp, fend, mult), &v))
		return fail(err, E_SIZE_BIG);
	*bytes = v;
	return 0;
}

int
conf_parse_size(const char *s, uint64_t *bytes, const char **err)
{
	const char	*p, *end;

	if (s == NULL)
		return fail(err, E_SIZE);
	p = trim(s, &end);
	return size_range(p, end, bytes, err);
}

int
conf_parse_rate(const char *s, uint64_t *bps, const char **err)
{
	const char	*p, *end, *e = NULL;
	uint64_t	 v;

	if (s == NULL)
		return fail(err, E_RATE);
	p = trim(s, &end);
	if (word_eq(p, end, "0") || word_eq(p, end, "unlimited")) {
		*bps = 0;
		return 0;
	}
	if (end - p < 2 || end[-2] != '/' || to_lower(end[-1]) != 's') {
		if (p < end && size_range(p, end, &v, NULL) == 0)
			return fail(err, E_RATE_SLASH);
		return fail(err, E_RATE);
	}
	if (size_range(p, end - 2, &v, &e) == -1)
		return fail(err, e == E_SIZE ? E_RATE : e);
	*bps = v;
	return 0;
}

/* Index of the duration unit [p, end) in dur_units; -1 when unknown. */
static int
dur_unit(const char *p, const char *end)
{
	size_t	 i, n = (size_t)(end - p);

	for (i = 0; i < NELEM(dur_units); i++)
		if (strlen(dur_units[i].name) == n &&
		    memcmp(p, dur_units[i].name, n) == 0)
			return (int)i;
	return -1;
}

int
conf_parse_duration(const char *s, uint64_t *ms, const char **err)
{
	const char	*p, *end, *u;
	uint64_t	 n, total = 0;
	size_t		 nd;
	int		 i, last = -1;

	if (s == NULL)
		return fail(err, E_DUR);
	p = trim(s, &end);
	if (end - p == 1 && *p == '0') {
		*ms = 0;
		return 0;
	}
	if (p == end)
		return fail(err, E_DUR);
	while (p < end) {
		if (read_uint(&p, end, &n, &nd) == -1)
			return fail(err, E_DUR_BIG);
		if (nd == 0)
			return fail(err, E_DUR);
		for (u = p; p < end && is_alpha(*p); p++)
			continue;
		if (u == p)
			return fail(err, p == end ? E_DUR_BARE : E_DUR);
		if ((i = dur_unit(u, p)) == -1)
			return fail(err, E_DUR_UNIT);
		if (i <= last)
			return fail(err, E_DUR_ORDER);
		last = i;
		if (__builtin_mul_overflow(n, dur_units[i].ms, &n) ||
		    __builtin_add_overflow(total, n, &total))
			return fail(err, E_DUR_BIG);
	}
	*ms = total;
	return 0;
}

/* Set len minutes from minute start on, wrapping from Sunday to Monday. */
static void
win_set(struct conf_window *w, unsigned start, unsigned len)
{
	unsigned	 i, m;

	for (i = 0; i < len; i++) {
		m = (start + i) % CONF_WEEK_MINUTES;
		w->bits[m >> 3] |= (uint8_t)(1u << (m & 7));
	}
}

/* Read a three-letter day name at *pp; its Monday-based index or -1. */
static int
win_day(const char **pp, const char *end)
{
	const char	*p = *pp, *q;
	int		 d;

	for (q = p; q < end && is_alpha(*q); q++)
		continue;
	for (d = 0; d < 7; d++)
		if (word_eq(p, q, day_names[d])) {
			*pp = q;
			return d;
		}
	return -1;
}

/*
 * Read a day list ("Mon-Fri", "Sat,Sun", "Fri-Mon, Wed") at *pp into the
 * bitmask *days (bit 0 = Monday). A range wraps past Sunday; "Tue-Tue"
 * is Tuesday alone. A space may follow each comma.
 */
static int
win_days(const char **pp, const char *end, unsigned *days, const char **err)
{
	const char	*p = *pp;
	int		 a, b, d;

	for (;;) {
		if ((a = win_day(&p, end)) == -1)
			return fail(err, E_WIN_DAY);
		b = a;
		if (p < end && *p == '-') {
			p++;
			if ((b = win_day(&p, end)) == -1)
				return fail(err, E_WIN_DAY);
		}
		for (d = a;; d = (d + 1) % 7) {
			*days |= 1u << d;
			if (d == b)
				break;
		}
		if (p == end || *p != ',')
			break;
		for (p++; p < end && is_space(*p); p++)
			continue;
	}
	*pp = p;
	return 0;
}

/*
 * Read HH:MM (two digits each) at *pp into *min, minutes since midnight;
 * "24:00" (1440) only when is_end.
 */
static int
win_time(const char **pp, const char *end, int is_end, unsigned *min,
    const char **err)
{
	const char	*p = *pp;
	unsigned	 h, m;

	if (end - p < 5 || !is_digit(p[0]) || !is_digit(p[1]) ||
	    p[2] != ':' || !is_digit(p[3]) || !is_digit(p[4]))
		return fail(err, E_WIN_TIME);
	h = (unsigned)(p[0] - '0') * 10 + (unsigned)(p[1] - '0');
	m = (unsigned)(p[3] - '0') * 10 + (unsigned)(p[4] - '0');
	if (h > 23 && !(is_end && h == 24 && m == 0))
		return fail(err, E_WIN_HOUR);
	if (m > 59)
		return fail(err, E_WIN_MINUTE);
	*min = h * 60 + m;
	*pp = p + 5;
	return 0;
}

/* Parse one part "[days SP] HH:MM-HH:MM" at *pp and add it to *w. */
static int
win_part(const char **pp, const char *end, struct conf_window *w,
    const char **err)
{
	const char	*p = *pp;
	unsigned	 days = 0, start, stop, len, d;

	if (p < end && is_alpha(*p)) {
		if (win_days(&p, end, &days, err) == -1)
			return -1;
		if (p == end || !is_space(*p))
			return fail(err, E_WIN_AFTER_DAYS);
		while (p < end && is_space(*p))
			p++;
	} else
		days = 0x7f;
	if (win_time(&p, end, 0, &start, err) == -1)
		return -1;
	if (p == end || *p != '-')
		return fail(err, E_WIN_DASH);
	p++;
	if (win_time(&p, end, 1, &stop, err) == -1)
		return -1;
	/* An end at or before the start runs into the next day. */
	len = stop > start ? stop - start : stop + DAY_MINUTES - start;
	for (d = 0; d < 7; d++)
		if (days & (1u << d))
			win_set(w, d * DAY_MINUTES + start, len);
	*pp = p;
	return 0;
}

/* Parse part ( sep part )* over [p, end) into w. */
static int
win_parts(const char *p, const char *end, struct conf_window *w,
    const char **err)
{
	for (;;) {
		if (win_part(&p, end, w, err) == -1)
			return -1;
		while (p < end && is_space(*p))
			p++;
		if (p == end)
			return 0;
		if (*p != ';' && *p != ',')
			return fail(err, E_WIN_SEP);
		for (p++; p < end && is_space(*p); p++)
			continue;
		if (p == end || *p == ';' || *p == ',')
			return fail(err, E_WIN_EMPTY);
	}
}

int
conf_parse_window(const char *s, struct conf_window *w, const char **err)
{
	const char	*p, *end;

	memset(w, 0, sizeof(*w));
	if (s == NULL)
		return fail(err, E_WIN);
	p = trim(s, &end);
	if (word_eq(p, end, "always")) {
		memset(w->bits, 0xff, sizeof(w->bits));
		return 0;
	}
	if (word_eq(p, end, "never"))
		return 0;
	if (p == end)
		return fail(err, E_WIN);
	if (win_parts(p, end, w, err) == -1) {
		/* Never hand back half a window. */
		memset(w, 0, sizeof(*w));
		return -1;
	}
	return 0;
}

/* Minute m is bit (m & 7) of byte m / 8, least significant bit first. */
int
conf_window_contains(const struct conf_window *w, unsigned m)
{
	if (m >= CONF_WEEK_MINUTES)
		return 0;
	return (w->bits[m >> 3] >> (m & 7)) & 1;
}

/*
 * Shift tm_wday from Sunday = 0 to Monday = 0. Values outside their usual
 * range wrap modulo a week rather than leave 0..10079.
 */
unsigned
conf_window_minute(int tm_wday, int hour, int minute)
{
	long long	 d, t;

	d = ((tm_wday % 7) + 13) % 7;
	t = d * DAY_MINUTES + (long long)hour * 60 + minute;
	t %= CONF_WEEK_MINUTES;
	if (t < 0)
		t += CONF_WEEK_MINUTES;
	return (unsigned)t;
}
