/*
 * log.h — one line per event, key=value fields, to stderr and optionally
 * syslog.
 *
 *   2026-11-23T10:53:58.123Z vnamigd[812] info listening proto=dicom addr=127.0.0.1 port=11112
 *
 * The first word after the level is the event name; the rest are fields.
 * Values that hold spaces, quotes or '=' must go through log_q(), which
 * quotes them. Identifiers that are PHI (patient names, IDs) go through
 * log_phi(), which prints "[phi]" unless logging.phi is enabled.
 */
#ifndef VNAMIG_LOG_H
#define VNAMIG_LOG_H

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

/* log_setup: level, whether to copy to syslog (with ident), and whether
 * PHI may be written. May be called again (SIGHUP). */
void log_setup(enum log_level level, int use_syslog, const char *ident,
    int phi);

/* log_level_parse: "error" "warn" "info" "debug" → 0 and *out, else -1. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level l);
int log_enabled(enum log_level l);

/* log_msg: event is one word; fmt/... the key=value fields (may be NULL). */
void log_msg(enum log_level l, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * log_q: s quoted for a field value when needed ("a b" → "\"a b\"", control
 * bytes as \xHH), unchanged otherwise. The result lives in one of a few
 * rotating static buffers, valid until the next few calls; long values are
 * cut with "...". Single-threaded use only (the daemon is).
 */
const char *log_q(const char *s);
/* log_phi: log_q(s) when PHI logging is on, else "[phi]". */
const char *log_phi(const char *s);

#define log_err(ev, ...)   log_msg(LOG_LVL_ERROR, ev, __VA_ARGS__)
#define log_warn(ev, ...)  log_msg(LOG_LVL_WARN, ev, __VA_ARGS__)
#define log_info(ev, ...)  log_msg(LOG_LVL_INFO, ev, __VA_ARGS__)
#define log_debug(ev, ...) do { if (log_enabled(LOG_LVL_DEBUG)) \
	log_msg(LOG_LVL_DEBUG, ev, __VA_ARGS__); } while (0)

#endif
