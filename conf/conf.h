/*
 * conf.h — the daemon's configuration: one YAML file (libyaml) parsed into
 * a typed, validated struct. Every key is documented in conf/vnamigd.yaml.
 *
 * Errors are collected, not stopped at: a bad file yields every problem
 * found, each as "FILE:LINE:COL: what is wrong; what is expected".
 */
#ifndef VNAMIG_CONF_H
#define VNAMIG_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf_units.h"

#define CONF_AE_MAX	16	/* PS3.5 AE VR: 16 bytes */
#define CONF_NAME_MAX	64	/* peer names, key ids */
#define CONF_FILE_MAX	(1024 * 1024)	/* largest config file we read */

struct conf_tls {
	int	 enabled;	/* the tls: mapping was given */
	char	*cert;		/* PEM certificate chain; NULL = no TLS */
	char	*key;		/* PEM private key */
	char	*ca;		/* CA bundle for verifying the other side */
	int	 verify_peer;	/* require + verify the peer's certificate */
	int	 verify_host;	/* a peer's: its certificate must name its
				 * host (default 1) */
};

struct conf_listen {
	int		 enabled;	/* 0 when absent from the file */
	char		*address;
	uint16_t	 port;		/* 0 = any free port (logged) */
	uint32_t	 max_connections;
	struct conf_tls	 tls;
};

/* A time window as written and as parsed. */
struct conf_sched {
	int			 set;
	char			*text;
	struct conf_window	 win;
};

enum conf_role { CONF_ROLE_SOURCE = 1, CONF_ROLE_TARGET = 2,
	CONF_ROLE_BOTH = 3 };
enum conf_retrieve { CONF_RETRIEVE_MOVE = 0, CONF_RETRIEVE_GET = 1 };
/* How a study's instances are listed at a peer: one IMAGE-level C-FIND
 * for the whole study (falling back, in auto, when the peer will not
 * answer one fully), or one per series after a SERIES-level C-FIND. */
enum conf_iquery { CONF_IQUERY_AUTO = 0, CONF_IQUERY_STUDY = 1,
	CONF_IQUERY_SERIES = 2 };
/* How a target's copies are checked (DESIGN.md "Verification levels"). */
enum conf_verify { CONF_VERIFY_COUNTS = 0, CONF_VERIFY_NONE = 1,
	CONF_VERIFY_READBACK = 2 };
/* The least match a read-back must show (DESIGN.md "Verification
 * levels"): the same bytes, the same dataset, or the same pixels. */
enum conf_vlevel { CONF_VLEVEL_BYTES = 0, CONF_VLEVEL_DATASET = 1,
	CONF_VLEVEL_PIXEL = 2 };

struct conf_peer {
	char			*name;
	char			 ae_title[CONF_AE_MAX + 1];
	char			*host;
	uint16_t		 port;
	enum conf_role		 role;
	enum conf_retrieve	 retrieve;
	enum conf_iquery	 image_query;
	struct conf_tls		 tls;		/* connect with TLS */
	uint32_t		 max_associations;
	uint64_t		 bandwidth;	/* bytes/s, 0 = no cap */
	struct conf_sched	 window;	/* when work may run */
	uint32_t		 max_pdu;	/* largest PDU we send it (0:
						 * what it offers) */
	enum conf_verify	 verify;	/* targets */
	uint32_t		 readback_percent;	/* verify: readback */
	int			 commit;	/* ask storage commitment */
	enum conf_vlevel	 verify_level;
	/* exports: only (a file-system export target; see
	 * src/mig/mig_export.h): no AE, host or port */
	char			*export_path;
	int			 export_fsync;
	/* a push source: what it C-STOREs to us on its own goes here (a
	 * target peer's or an export's name); NULL: not forwarded */
	char			*push_to;
};

enum conf_api_role { CONF_API_VIEWER = 0, CONF_API_OPERATOR = 1,
	CONF_API_ADMIN = 2 };

struct conf_api_key {
	char			*id;
	enum conf_api_role	 role;
	uint8_t			 token_sha256[32];	/* never the token */
};

/* An address range for allow-lists: family AF_INET / AF_INET6. */
struct conf_cidr {
	int			 family;
	uint8_t			 addr[16];
	unsigned		 bits;
};

/* A webhook intake channel (POST /api/batch_sources/webhook/CHANNEL). */
struct conf_webhook {
	char			*channel;
	int			 anonymous;	/* no API key needed */
	char			*hmac_secret;	/* NULL = no signature */
	size_t			 hmac_len;
	uint64_t		 replay_ms;	/* signature age accepted */
	struct conf_cidr	*allow;		/* empty = any address */
	size_t			 nallow;
};

/* An outbound event notification endpoint (notify.webhooks): events
 * whose name matches one of its patterns are POSTed to url. */
struct conf_notify_hook {
	char			*name;
	char			*url;		/* http:// or https:// */
	char			**events;	/* "*", "batch.*", "batch.pause" */
	size_t			 nevents;
	char			*hmac_secret;	/* NULL = unsigned */
	size_t			 hmac_len;
	char			*ca;		/* https: CA bundle; NULL = the
						 * system's CAs */
	uint64_t		 timeout_ms;	/* per attempt */
	uint32_t		 max_attempts;	/* then outbox-dead */
	uint64_t		 backoff_min_ms, backoff_max_ms;
};

/* An HL7 sender (MSH-3 / MSH-4) and what its messages become. */
struct conf_hl7_sender {
	char			*name;		/* batch channel "hl7:NAME" */
	char			*app;		/* MSH-3.1 to match */
	char			*facility;	/* MSH-4.1; NULL = any */
	char			*source;	/* peer; NULL = inbox only */
	char			*target;	/* peer */
	uint32_t		 priority;	/* 0-9 */
	uint32_t		 prefetch_priority; /* 0-9: an order's batch that
						 * brings the patient's priors */
	char			*accession;	/* field paths */
	char			*mrn;
	char			*study_uid;
	char			*charset;	/* when MSH-18 is absent */
};

enum conf_sync { CONF_SYNC_ALWAYS = 0, CONF_SYNC_GROUP = 1 };

struct conf {
	char	*path;			/* file it came from */

	struct {
		char		 ae_title[CONF_AE_MAX + 1];
		char		*data_dir;
		uint32_t	 shard_index, shard_count;
	} node;

	struct conf_listen dicom, http, mllp;

	struct {
		uint32_t	 max_pdu;		/* we receive */
		uint32_t	 associations_in;
		uint32_t	 associations_out;
		uint64_t	 artim_ms, dimse_ms, network_ms, idle_ms;
		uint64_t	 retrieve_ms, stall_ms;	/* C-MOVE/C-GET */
		uint32_t	 find_matches;		/* C-FIND */
		uint64_t	 commit_ms;		/* storage commitment */
		uint64_t	 store_backlog;	/* bytes waiting for the disk,
						 * per association */
		uint64_t	 unread_answers;	/* our answers a peer
						 * leaves unread (DICOM, HTTP,
						 * MLLP): then it is not read */
		uint32_t	 async_window;	/* DIMSE operations outstanding
						 * per association */
		uint64_t	 shutdown_grace_ms;
		uint32_t	 sequence_depth;
		uint64_t	 http_body;
		uint32_t	 http_header;
		uint64_t	 mllp_frame;
		uint32_t	 mllp_pipeline;	/* messages in commit at once
						 * per MLLP connection */
	} limits;

	struct conf_peer	*peers;
	size_t			 npeers;
	struct conf_peer	*exports;	/* role target, export_path */
	size_t			 nexports;

	struct {
		char		*spool_dir;	/* default DATA_DIR/spool */
		char		*backup_dir;	/* POST /api/backups; NULL = off */
		uint64_t	 spool_segment;
		enum conf_sync	 sync;
		uint64_t	 commit_interval_ms;
		uint64_t	 block_cache;
		uint64_t	 write_buffer;
		uint32_t	 max_open_files;
		uint64_t	 min_free;
		uint64_t	 checkpoint_ms;	/* scheduled, 0 = none */
		uint32_t	 checkpoints_keep;
	} storage;

	struct {
		char		*key_file;	/* Ed25519 signing key (PEM) */
		char		*origin;	/* checkpoint origin line */
		char		*checkpoint_file;
		uint64_t	 checkpoint_ms;	/* timer */
	} audit;

	struct {
		struct conf_api_key	*keys;
		size_t			 nkeys;
		int			 health_open, metrics_open;
		uint32_t		 max_keys;	/* created over the API */
		uint32_t		 max_batch_items; /* UIDs + accessions */
		struct conf_webhook	*webhooks;
		size_t			 nwebhooks;
	} api;

	struct {
		struct conf_hl7_sender	*senders;
		size_t			 nsenders;
		char			*catch_all;	/* a sender's name for
							 * unmapped senders;
							 * NULL = inbox only */
		uint64_t		 retention_ms;	/* inbox records */
		uint32_t		 max_inbox;	/* records kept at most */
	} hl7;

	struct {
		struct conf_notify_hook	*webhooks;
		size_t			 nwebhooks;
		uint32_t		 max_outbox;	/* records kept */
	} notify;

	struct {
		uint32_t	 max_studies;	/* worked at once */
		uint32_t	 retrieve_attempts;
		uint32_t	 send_attempts;
		uint64_t	 retry_ms, retry_max_ms;	/* backoff */
		uint32_t	 breaker_failures;	/* 0: no breaker */
		uint64_t	 breaker_open_ms;
		char		*quarantine_dir;	/* DATA_DIR/quarantine */
		int		 retrieve_ack_early;	/* retrieve_ack: early */
		uint64_t	 push_stable_ms;	/* a pushed study goes
							 * after this quiet */
		uint64_t	 retrieve_hold_ms;	/* a C-MOVE/C-GET waits
							 * this long at most for
							 * a peer's new
							 * association (0: not) */
		int		 newest_first;	/* order: studies of a
						 * batch by StudyDate */
	} migration;

	struct {
		int		 level;		/* enum log_level */
		int		 syslog;
		char		*ident;
		int		 phi;
	} logging;
};

/*
 * conf_load_file: read and validate PATH. Returns a new config, or NULL
 * with every error written to *errs (a NUL-terminated, newline-separated
 * malloc'd string the caller frees). Never both.
 */
struct conf *conf_load_file(const char *path, char **errs);

/*
 * conf_load_buffer: the same over bytes in memory; NAME is used in
 * messages as the file name. Relative paths in the file are taken as given
 * (relative to the process's working directory), as with conf_load_file.
 */
struct conf *conf_load_buffer(const char *name, const char *buf, size_t len,
    char **errs);

void conf_free_(struct conf *c);
#define conf_free(c) do { conf_free_(c); (c) = NULL; } while (0)

/*
 * conf_dump: every effective setting, one "path = value" per line, in a
 * fixed order (secrets as their SHA-256). Returns a malloc'd string.
 */
char *conf_dump(const struct conf *c);

/*
 * conf_diff: call fn once per setting whose value differs between a and b
 * (added and removed ones too), with its path, old and new rendering
 * (NULL when absent), and whether a running daemon needs a restart to
 * apply it. Returns the number of differences.
 */
typedef void conf_diff_fn(const char *path, const char *old_value,
    const char *new_value, int needs_restart, void *arg);
size_t conf_diff(const struct conf *a, const struct conf *b,
    conf_diff_fn *fn, void *arg);

/* conf_peer_by_name: a peer or, after them, an export (export_path set)
 * of that name; NULL when neither. */
const struct conf_peer *conf_peer_by_name(const struct conf *c,
    const char *name);
const struct conf_peer *conf_peer_by_ae(const struct conf *c, const char *ae);

const char *conf_role_name(enum conf_role r);
const char *conf_api_role_name(enum conf_api_role r);
/* Is addr (AF_INET/AF_INET6 bytes) inside c? */
int conf_cidr_match(const struct conf_cidr *c, int family,
    const void *addr);
/* Whether an event name matches a notify.webhooks[].events pattern:
 * "*" every event, "batch.*" every name starting "batch.", else the
 * name itself. */
int conf_event_match(const char *pattern, const char *event);
/* The webhook channel of that name, or NULL. */
const struct conf_webhook *conf_webhook(const struct conf *c,
    const char *channel);
/* The sender of an HL7 message: (MSH-3, MSH-4) matched exactly, then by
 * application alone (facility not given), then hl7.catch_all; NULL = none
 * (inbox only). */
const struct conf_hl7_sender *conf_hl7_sender(const struct conf *c,
    const char *app, const char *facility);

#endif
