/*
 * vnamigd.c — the daemon's entry point: options, --help, --version,
 * --check-config, then the reactor (daemon.c) in the foreground.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "src/daemon.h"
#include "src/util/log.h"

#define DEFAULT_CONFIG SYSCONFDIR "/vnamigd.yaml"

enum { EXIT_CONFIG = 1, EXIT_USAGE = 2, EXIT_STARTUP = 3 };

static void
usage(FILE *f)
{
	fprintf(f,
"NAME\n"
"    vnamigd - verified DICOM archive migration daemon\n"
"\n"
"SYNOPSIS\n"
"    vnamigd [-c FILE] [--log-level LEVEL]\n"
"    vnamigd [-c FILE] --check-config [--dump-config]\n"
"    vnamigd [-c FILE] --audit-export DIR [--zstd]\n"
"    vnamigd --version | --help\n"
"\n"
"DESCRIPTION\n"
"    vnamigd moves DICOM studies from source archives into a target\n"
"    archive, verifying every instance and recording every step in a\n"
"    tamper-evident audit log. One process runs one event loop that\n"
"    serves DICOM, HTTP (REST API, /api/health) and HL7 MLLP at once.\n"
"    It runs in the foreground and logs one line per event to stderr\n"
"    (key=value fields); use systemd or another supervisor to run it\n"
"    as a service.\n"
"\n"
"OPTIONS\n"
"    -c, --config FILE\n"
"        Read the configuration from FILE (default %s).\n"
"        Every key is documented in conf/vnamigd.yaml.\n"
"    -t, --check-config\n"
"        Validate the configuration and exit: 0 when valid, 1 with one\n"
"        line per problem (FILE:LINE:COL: what is wrong; what is\n"
"        expected) when not.\n"
"    --dump-config\n"
"        With --check-config: print every effective setting, defaults\n"
"        included, as \"path = value\" lines (API tokens as SHA-256).\n"
"    --audit-export DIR\n"
"        With the daemon stopped: sign a checkpoint over the whole audit\n"
"        log, then write DIR/leaves.jsonl (one canonical JSON leaf per\n"
"        line, byte for byte as hashed), DIR/checkpoints (every signed\n"
"        checkpoint, blank-line separated) and DIR/audit-key.pub (every\n"
"        public key the log was signed with, oldest first), and exit.\n"
"        The key in audit.key_file must be there (it signs).\n"
"        Check it with: vnamig-verify audit DIR --key KEY.pub\n"
"        (the keys from a copy you trust, not the export's own).\n"
"        Exit 0, 3 when the state or the key cannot be opened (is\n"
"        vnamigd running?), 4 when DIR cannot be written.\n"
"    --zstd\n"
"        With --audit-export: write DIR/leaves.jsonl.zst instead.\n"
"    -l, --log-level LEVEL\n"
"        Override logging.level: error, warn, info or debug (until\n"
"        the next SIGHUP, which applies the file's level).\n"
"    -V, --version\n"
"        Print the version and exit.\n"
"    -h, --help\n"
"        Print this page and exit.\n"
"\n"
"SIGNALS\n"
"    SIGTERM, SIGINT\n"
"        Stop accepting, let open work finish within\n"
"        limits.shutdown_grace, then exit 0. A second signal closes\n"
"        everything at once.\n"
"    SIGHUP\n"
"        Re-read the configuration file. Each changed key is logged\n"
"        (config-changed key=... applied=now|after-restart). A file\n"
"        with errors is refused and the running settings are kept.\n"
"\n"
"HTTP API\n"
"    listen.http serves the REST API (GET /api/openapi.json lists\n"
"    every route), GET /api/health and GET /metrics (Prometheus).\n"
"    Calls carry Authorization: Bearer TOKEN (api.keys, or keys an\n"
"    admin creates); roles viewer, operator, admin. Every change is\n"
"    durable before its answer and recorded in the audit log with the\n"
"    key. POST /api/checkpoints/NAME/restore drains the daemon, which\n"
"    then starts itself again (execv) and restores before opening the\n"
"    state; DATA_DIR/restore-pending holds the request meanwhile.\n"
"    vnamigctl(1) is the command-line client.\n"
"\n"
"FILES\n"
"    %s\n"
"        The configuration.\n"
"    DATA_DIR/db/\n"
"        The state: RocksDB (job state, the audit Merkle tree).\n"
"    DATA_DIR/checkpoints/NAME/, NAME.json\n"
"        Named checkpoints of the state (storage.checkpoint_interval,\n"
"        or vnamig-state checkpoint create); restore one with\n"
"        vnamig-state checkpoint restore NAME (daemon stopped), or\n"
"        POST /api/checkpoints/NAME/restore (running).\n"
"    DATA_DIR/restore-pending\n"
"        A restore asked for over the API, done at the next start.\n"
"    DATA_DIR/audit-checkpoints\n"
"        Every signed audit checkpoint, appended (audit.checkpoint_file).\n"
"    DATA_DIR-audit.pem, DATA_DIR-audit.pem.pub\n"
"        The Ed25519 key that signs checkpoints (audit.key_file), made\n"
"        on first start; keep a copy of the .pub where the state is not.\n"
"    DATA_DIR/vnamigd.lock\n"
"        Held while the daemon runs (node.data_dir); a second daemon on\n"
"        the same data directory is refused.\n"
"    SPOOL_DIR/SEGMENT.seg (storage.spool_dir, default DATA_DIR/spool)\n"
"        Instances received by C-STORE, appended to segment files as\n"
"        Part 10 files, indexed in DATA_DIR/db with their SHA-256,\n"
"        canonical and pixel digests and an audit leaf, all durable\n"
"        before the response. On start, bytes a crash left past the\n"
"        index are cut (whole ones logged as spool-orphan: never\n"
"        acknowledged, the sender sends them again). See vnamig-spool(1).\n"
"\n"
"ENVIRONMENT\n"
"    VNAMIG_SHA256=generic\n"
"        Hash with OpenSSL's SHA-256 block function even where the CPU\n"
"        has the x86 SHA instructions (the default there: two hashes of\n"
"        an instance, its dataset and its pixel data, run interleaved).\n"
"        The digests are the same either way; the ready log line says\n"
"        which is in use (sha256=).\n"
"\n"
"EXIT STATUS\n"
"    0 clean shutdown or valid configuration; 1 configuration error;\n"
"    2 bad command line; 3 could not start (data directory, ports,\n"
"    state); 4 --audit-export could not write its files.\n"
"\n"
"EXAMPLES\n"
"    vnamigd -c /etc/vnamigd.yaml --check-config\n"
"    vnamigd -c conf/vnamigd.yaml &\n"
"    curl -s http://127.0.0.1:8080/api/health\n"
"\n"
"SEE ALSO\n"
"    vnamigctl(1), vnamig-verify(1), vnamig-spool(1), vnamig-state(1),\n"
"    dcmtk(7), README.md\n",
	    DEFAULT_CONFIG, DEFAULT_CONFIG);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 't' },
		{ "dump-config", no_argument, NULL, 'D' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "audit-export", required_argument, NULL, 'E' },
		{ "zstd", no_argument, NULL, 'Z' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = DEFAULT_CONFIG, *level = NULL, *export = NULL;
	int check = 0, dump = 0, zstd = 0, ch, rc, restart;
	enum log_level lv = LOG_LVL_INFO;
	struct conf *c;
	struct daemon *d;
	char *errs;

	while ((ch = getopt_long(argc, argv, "c:tl:Vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 't': check = 1; break;
		case 'D': dump = 1; break;
		case 'l': level = optarg; break;
		case 'E': export = optarg; break;
		case 'Z': zstd = 1; break;
		case 'V': printf("vnamigd %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr, "vnamigd: see vnamigd --help\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vnamigd: unexpected argument \"%s\"; see "
		    "vnamigd --help\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (level != NULL && log_level_parse(level, &lv) < 0) {
		fprintf(stderr, "vnamigd: --log-level \"%s\": expected error, "
		    "warn, info or debug\n", level);
		return EXIT_USAGE;
	}
	if (zstd && export == NULL) {
		fprintf(stderr, "vnamigd: --zstd goes with --audit-export\n");
		return EXIT_USAGE;
	}
	if (dump && !check) {
		fprintf(stderr, "vnamigd: --dump-config goes with "
		    "--check-config\n");
		return EXIT_USAGE;
	}
	if ((c = conf_load_file(path, &errs)) == NULL) {
		fputs(errs, stderr);
		fprintf(stderr, "vnamigd: %s: configuration refused\n", path);
		free(errs);
		return EXIT_CONFIG;
	}
	if (check) {
		if (dump) {
			char *s = conf_dump(c);

			fputs(s, stdout);
			free(s);
		}
		fprintf(stderr, "%s: configuration OK (peers: %zu, API "
		    "keys: %zu)\n", path, c->npeers, c->api.nkeys);
		conf_free(c);
		return 0;
	}
	if (level != NULL)
		c->logging.level = (int)lv;
	if (export != NULL) {
		rc = daemon_audit_export(c, path, export, zstd);
		conf_free(c);
		return rc;
	}
	if ((d = daemon_new(c, path)) == NULL)
		return EXIT_STARTUP;
	rc = daemon_run(d);
	restart = daemon_restart_wanted(d);
	daemon_free(d);
	if (restart && rc == 0) {
		/* A restore over the API: the state is closed and the lock
		 * released; the new image restores before it opens them. */
		log_info("restarting", "reason=restore exe=/proc/self/exe");
		execv("/proc/self/exe", argv);
		log_err("restart-failed", "error=%s hint=%s",
		    log_q(strerror(errno)), log_q("start vnamigd again: the "
		    "restore is still pending and runs at the next start"));
		return EXIT_STARTUP;
	}
	return rc;
}
