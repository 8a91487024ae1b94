/*
 * ctl.h — vnamigctl, the command-line client of vnamigd's REST API:
 * what its parts share.
 *
 *	vnamigctl.c	options, help pages, dispatch
 *	ctl_conf.c	configuration: flags > environment > ctl.yaml
 *	ctl_http.c	one blocking HTTP/1.1 exchange (TLS via OpenSSL),
 *			parsed with http/http_resp.h; the exit-code mapping
 *	ctl_fmt.c	tables and the words around numbers
 *	ctl_cmd.c	the commands over batches, keys, state, metrics;
 *			following pages
 *	ctl_mig.c	the commands over the migration engine: node,
 *			sources, quarantine
 *	ctl_hl7.c	hl7: the inbox, back-loading messages, a preview
 *	ctl_watch.c	watch: the live progress line (all, or one batch)
 *	ctl_audit.c	audit: signed checkpoints, proofs, the witness
 *
 * Every error is one line on stderr, "vnamigctl: " and what and where;
 * functions that print one return the exit status (CTL_*), 0 for none.
 */
#ifndef VNAMIG_CTL_H
#define VNAMIG_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#define PROG "vnamigctl"

/* Exit statuses (vnamigctl --help, EXIT STATUS). */
enum {
	CTL_OK = 0,
	CTL_USAGE = 1,		/* command line or configuration */
	CTL_CONN = 2,		/* connect, TLS, protocol, unreadable answer */
	CTL_REFUSED = 3,	/* the server said 4xx */
	CTL_SERVER = 4,		/* the server said 5xx */
	CTL_VERIFY = 5,		/* a verification failed */
	CTL_ENDED = 6,		/* watch ID: the batch failed or was cancelled */
	CTL_NOT_AA = 7,		/* hl7 ingest: a message not accepted (AA) */
};

/* The options a command may take (struct cmd's opts mask). */
enum {
	O_STATE = 1u << 0, O_LIMIT = 1u << 1, O_ALL = 1u << 2,
	O_SOURCE = 1u << 3, O_TARGET = 1u << 4, O_NAME = 1u << 5,
	O_EXTID = 1u << 6, O_PRIO = 1u << 7, O_ACC = 1u << 8,
	O_STUDY = 1u << 9, O_PATIENT = 1u << 10, O_REPULL = 1u << 11,
	O_FILE = 1u << 12, O_REASON = 1u << 13, O_ROLE = 1u << 14,
	O_YES = 1u << 15, O_PUBKEY = 1u << 16, O_SIZE = 1u << 17,
	O_INTERVAL = 1u << 18, O_COUNT = 1u << 19, O_BATCH = 1u << 20,
	O_NOTE = 1u << 21, O_CSV = 1u << 22, O_SENDER = 1u << 23,
	O_TYPE = 1u << 24, O_ACK = 1u << 25, O_DATE = 1u << 26,
	O_MODALITY = 1u << 27, O_ORDER = 1u << 28, O_PLAN = 1u << 29,
};

#define CTL_MAX_LIST	1000	/* --accession / --study values */

/* What the command line said (NULL / 0 / -1 when not given). */
struct ctl_opts {
	unsigned	 given;		/* O_* seen */
	const char	*state;		/* batches: filter; audit: file */
	const char	*reason;	/* quarantine: filter; pause: text */
	const char	*limit, *source, *target, *name, *external_id;
	const char	*priority, *patient_id, *file, *role;
	const char	*pubkey, *size, *interval, *count, *batch, *note;
	const char	*sender, *type, *ack;	/* hl7 messages: filters */
	const char	*study_date, *modality, *order;	/* submit: query */
	const char	*plan;		/* submit: the plan joined */
	const char	*acc[CTL_MAX_LIST];
	size_t		 nacc;
	const char	*study[CTL_MAX_LIST];
	size_t		 nstudy;
	int		 all, repull, yes, csv;
};

/* Where the server is and how to talk to it (ctl_conf.c). */
struct ctl_url {
	int		 tls;
	char		*host;		/* without brackets */
	char		*port;
	char		*prefix;	/* path before /api, "" or "/x" */
};

struct ctl {
	/* From the flags (before ctl_conf_resolve). */
	const char	*flag_url, *flag_key, *flag_key_file, *flag_cacert;
	const char	*flag_config;
	int		 insecure, json, timeout_s;

	/* Resolved. */
	char		*base;		/* the URL as given, no trailing '/' */
	struct ctl_url	 url;
	char		*key;		/* bearer token, or NULL */
	const char	*key_from;	/* where it came from, for messages */
	char		*cacert;
	char		*conf_dir;	/* ~/.config/vnamig (witness default) */
	void		*ssl_ctx;	/* SSL_CTX, made on first HTTPS use */
	char		*errbuf;	/* set: ctl_err writes here, not to */
	size_t		 errlen;	/* stderr (watch's live line) */

	struct ctl_opts	 o;
};

/* --- ctl_conf.c ---------------------------------------------------- */

/* Resolve url, key and cacert from flags, environment and ctl.yaml.
 * CTL_OK, or CTL_USAGE after saying why. */
int	ctl_conf_resolve(struct ctl *c);
void	ctl_conf_free(struct ctl *c);
/* Parse URL into U (malloc'd parts); 0, or -1 with the reason in ERR. */
int	ctl_url_parse(const char *url, struct ctl_url *u, char *err,
	    size_t errlen);
/* Refuse a secret file others may read: 0, or -1 after saying so. */
int	ctl_check_private(const char *path, const char *what);

/* --- ctl_http.c ---------------------------------------------------- */

/* One answer of the server. */
struct ctl_answer {
	int		 status;
	char		 reason[64];
	char		*body;		/* NUL-terminated */
	size_t		 len;
	char		*content_type;	/* or NULL */
	json_t		*json;		/* the body parsed, when asked */
};

/* ctl_api flags. */
enum {
	CTL_ANY_STATUS = 1,	/* hand every status back, print nothing */
	CTL_RAW = 2,		/* the body is not JSON: do not parse it */
};

/*
 * ctl_api: METHOD PATH (with query) with the JSON BODY (borrowed, or
 * NULL) and the bearer key. On 2xx the body is parsed into a->json
 * (json NULL for an empty body) and CTL_OK returned. Otherwise prints
 * the one-line error (4xx: the error body's code and message) and
 * returns CTL_REFUSED, CTL_SERVER or CTL_CONN; with CTL_ANY_STATUS any
 * status comes back as CTL_OK. The caller frees A with ctl_answer_free.
 */
int	ctl_api(struct ctl *c, const char *method, const char *path,
	    const json_t *body, unsigned flags, struct ctl_answer *a);
/* ctl_api with a body that is not JSON: BLEN bytes of BODY (borrowed,
 * or NULL) sent as Content-Type CTYPE; the answer handled alike. */
int	ctl_api_body(struct ctl *c, const char *method, const char *path,
	    const char *ctype, const char *body, size_t blen, unsigned flags,
	    struct ctl_answer *a);
void	ctl_answer_free(struct ctl_answer *a);
/* Print the error line for a non-2xx answer; its exit status. */
int	ctl_refusal(struct ctl *c, const char *method, const char *path,
	    const struct ctl_answer *a);
/* Say "vnamigctl: METHOD URL: " + fmt on stderr (or into c->errbuf,
 * without the program name). */
void	ctl_err(struct ctl *c, const char *method, const char *path,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* --- ctl_fmt.c ----------------------------------------------------- */

/* A member by dotted path ("counts.studies"), or NULL. */
json_t	*ctl_jget(const json_t *o, const char *path);
/* The member as text: strings as is, numbers, true/false as yes/no,
 * arrays joined with ","; "-" when missing or null. Valid until the
 * next call with the same BUF. */
const char *ctl_jtext(const json_t *o, const char *path, char *buf,
	    size_t n);
/* A number member, or -1 when missing/null/not a number. */
double	ctl_jnum(const json_t *o, const char *path);
/* 1536 -> "1.5 KiB"; negative -> "-". */
const char *ctl_bytes(double v, char *buf, size_t n);
/* 3725 -> "1h 02m"; negative -> "-". */
const char *ctl_duration(double s, char *buf, size_t n);
/* Print JSON pretty on stdout. */
void	ctl_print_json(const json_t *j);
/* With --json print A's JSON (or its body) and return 1; else 0. */
int	ctl_json_or(const struct ctl *c, const struct ctl_answer *a);
/* GET /api/status's progress (or a node's engine) in words: "studies
 * 3/10, instances 120/400, 1.2 GiB, 4.0 MiB/s, ETA 5m 10s". */
void	ctl_progress_words(const json_t *p, char *out, size_t n);

struct ctl_table;
/* A table with the given column headings (NULL-terminated). */
struct ctl_table *ctl_table_new(const char *const *heads);
/* Add a row of as many cells as there are columns (copied). */
void	ctl_table_row(struct ctl_table *t, const char *const *cells);
/* Print (aligned; the last column unpadded) and free. */
void	ctl_table_print(struct ctl_table *t, FILE *f);
/* Key/value lines: "key   value", keys padded to WIDTH. */
void	ctl_kv(const char *key, const char *value, int width);

/* --- the commands -------------------------------------------------- */

int	cmd_status(struct ctl *c, char **args, int n);
int	cmd_health(struct ctl *c, char **args, int n);
int	cmd_batches(struct ctl *c, char **args, int n);
int	cmd_batch(struct ctl *c, char **args, int n);
int	cmd_report(struct ctl *c, char **args, int n);
int	cmd_submit(struct ctl *c, char **args, int n);
int	cmd_pause(struct ctl *c, char **args, int n);
int	cmd_resume(struct ctl *c, char **args, int n);
int	cmd_cancel(struct ctl *c, char **args, int n);
int	cmd_node(struct ctl *c, char **args, int n);
int	cmd_node_pause(struct ctl *c, char **args, int n);
int	cmd_node_resume(struct ctl *c, char **args, int n);
int	cmd_sources(struct ctl *c, char **args, int n);
int	cmd_source(struct ctl *c, char **args, int n);
int	cmd_source_pause(struct ctl *c, char **args, int n);
int	cmd_source_resume(struct ctl *c, char **args, int n);
int	cmd_plans(struct ctl *c, char **args, int n);
int	cmd_plan(struct ctl *c, char **args, int n);
int	cmd_plan_create(struct ctl *c, char **args, int n);
int	cmd_plan_pause(struct ctl *c, char **args, int n);
int	cmd_plan_resume(struct ctl *c, char **args, int n);
int	cmd_plan_cancel(struct ctl *c, char **args, int n);
int	cmd_quarantine(struct ctl *c, char **args, int n);
int	cmd_quarantine_show(struct ctl *c, char **args, int n);
int	cmd_quarantine_retry(struct ctl *c, char **args, int n);
int	cmd_quarantine_release(struct ctl *c, char **args, int n);
int	cmd_quarantine_reject(struct ctl *c, char **args, int n);
int	cmd_hl7_messages(struct ctl *c, char **args, int n);
int	cmd_hl7_ingest(struct ctl *c, char **args, int n);
int	cmd_hl7_preview(struct ctl *c, char **args, int n);
int	cmd_keys(struct ctl *c, char **args, int n);
int	cmd_key_create(struct ctl *c, char **args, int n);
int	cmd_key_delete(struct ctl *c, char **args, int n);
int	cmd_checkpoints(struct ctl *c, char **args, int n);
int	cmd_checkpoint(struct ctl *c, char **args, int n);
int	cmd_restore(struct ctl *c, char **args, int n);
int	cmd_backups(struct ctl *c, char **args, int n);
int	cmd_backup(struct ctl *c, char **args, int n);
int	cmd_backup_verify(struct ctl *c, char **args, int n);
int	cmd_metrics(struct ctl *c, char **args, int n);
int	cmd_watch(struct ctl *c, char **args, int n);
int	cmd_audit_checkpoint(struct ctl *c, char **args, int n);
int	cmd_audit_verify(struct ctl *c, char **args, int n);
int	cmd_audit_proof(struct ctl *c, char **args, int n);

/*
 * ctl_pages: GET PATH (its query without paging parameters) and the
 * pages after it, appending the members of the array MEMBER of each
 * answer to OUT; an answer's "next" goes back as query parameter
 * CURSOR. WANT > 0: stop once OUT has WANT (asking for 1000 at most at
 * a time); else ALL: every page; else the first page alone. *NEXT gets
 * the last answer's next (a new reference, or NULL). CTL_*.
 */
int	ctl_pages(struct ctl *c, const char *path, const char *member,
	    const char *cursor, uint64_t want, int all, json_t *out,
	    json_t **next);
/* After ctl_pages: the note on stderr that WHAT continue after next. */
void	ctl_pages_note(const char *what, const json_t *next, uint64_t have,
	    uint64_t want, int all);

/* Parse a decimal count in [min, max]: 0, or -1 after saying what. */
int	ctl_parse_u64(const char *s, uint64_t min, uint64_t max,
	    const char *what, uint64_t *out);
/* Percent-encode S for a path segment or query value (malloc'd). */
char	*ctl_escape(const char *s);

#endif
