/*
 * conf_units.h — the one small set of parsers for the value kinds that the
 * configuration (and the REST API, later) accepts as text: sizes, rates,
 * durations and weekly time windows. Pure: no I/O, no allocation.
 *
 * Every parser returns 0 on success and -1 on error; on error *err (when
 * err is not NULL) points to a static English message saying what was
 * expected, e.g. "expected a size such as 512, 256KiB or 4MB".
 */
#ifndef VNAMIG_CONF_UNITS_H
#define VNAMIG_CONF_UNITS_H

#include <stdint.h>

/*
 * Size in bytes: a non-negative integer, optional spaces, optional unit.
 * Units (case-insensitive): B; KB MB GB TB = powers of 1000;
 * KiB MiB GiB TiB = powers of 1024; K M G T are taken as the binary ones.
 * A decimal fraction is allowed with a unit ("1.5GiB"), the result rounded
 * down to whole bytes. Overflow past UINT64_MAX is an error.
 */
int conf_parse_size(const char *s, uint64_t *bytes, const char **err);

/*
 * Rate in bytes per second: a size followed by "/s" ("50MB/s", "1GiB/s"),
 * or "0" / "unlimited" meaning no cap (*bps = 0).
 */
int conf_parse_rate(const char *s, uint64_t *bps, const char **err);

/*
 * Duration in milliseconds: one or more number+unit pairs, units
 * ms s m h d (e.g. "250ms", "30s", "5m", "1h30m", "2d"); a bare "0" is 0.
 * A bare number without unit is an error (ambiguous). Overflow is an error.
 */
int conf_parse_duration(const char *s, uint64_t *ms, const char **err);

/*
 * A weekly time window: a bitmap of the 7 * 1440 minutes of a week,
 * Monday 00:00 = minute 0 (local time is the caller's business).
 */
#define CONF_WEEK_MINUTES (7 * 24 * 60)
struct conf_window {
	uint8_t bits[CONF_WEEK_MINUTES / 8];
};

/*
 * Parse a window spec into *w (which it clears first). Grammar:
 *   spec   := "always" | "never" | part ( ( ";" | "," ) part )*
 *   part   := [ days SP ] HH:MM "-" HH:MM
 *   days   := dayset ( "," dayset )*   -- but see below
 *   dayset := Day | Day "-" Day        (Mon Tue Wed Thu Fri Sat Sun,
 *                                       case-insensitive; ranges wrap,
 *                                       "Fri-Mon" = Fri Sat Sun Mon)
 * A part's interval starts on each listed day (every day when no days are
 * given); an end at or before the start runs past midnight into the next
 * day ("Mon-Fri 19:00-07:00" includes Fri 19:00 → Sat 07:00 but not
 * Mon 03:00). "24:00" is allowed as an end. Start == end means 24 hours.
 * Parts are separated by ";" or ",": a "," followed by a day name and
 * then more day names or a space+time belongs to the day list, so both
 * "Sat,Sun 00:00-24:00" and "Mon-Fri 19:00-07:00, Sat-Sun 00:00-24:00"
 * parse as written.
 */
int conf_parse_window(const char *s, struct conf_window *w, const char **err);

/* conf_window_contains: 1 when minute-of-week m (0..10079) is inside w. */
int conf_window_contains(const struct conf_window *w, unsigned m);

/*
 * conf_window_minute: minute of week for a struct tm-style weekday
 * (0 = Sunday … 6 = Saturday, as tm_wday), hour and minute.
 */
unsigned conf_window_minute(int tm_wday, int hour, int minute);

#endif
