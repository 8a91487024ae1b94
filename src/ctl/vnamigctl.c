/*
 * vnamigctl.c — the command line of vnamigctl, the client of vnamigd's
 * REST API: options, the help pages (the whole manual, or one command's
 * part of it, from one table), and dispatch. See ctl.h for the parts.
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "src/ctl/ctl.h"

struct cmd {
	const char	*name;		/* one or two words */
	int		 min, max;	/* arguments after the name */
	unsigned	 opts;		/* O_* it takes */
	int		(*fn)(struct ctl *, char **, int);
	const char	*synopsis;	/* after "vnamigctl [OPTIONS] " */
	const char	*help;		/* the description, indented 8 */
};

#define SUBMIT_OPTS (O_SOURCE | O_TARGET | O_NAME | O_EXTID | O_PRIO | \
	O_ACC | O_STUDY | O_PATIENT | O_REPULL | O_FILE | O_DATE | O_MODALITY | \
	O_ORDER | O_PLAN)

static const struct cmd cmds[] = {
{ "status", 0, 0, 0, cmd_status, "status",
"        The daemon at a glance (GET /api/status): version, node, uptime,\n"
"        readiness, store and audit log, batches by state, progress.\n" },
{ "health", 0, 0, 0, cmd_health, "health",
"        GET /api/health: every member of the answer. Exit 4 (and the\n"
"        answer still printed) when the daemon says it is degraded.\n" },
{ "batches", 0, 0, O_STATE | O_LIMIT | O_ALL, cmd_batches,
  "batches [--state S] [--limit N] [--all]",
"        Batches, in the server's order: ID, state, priority,\n"
"        source, target, studies, done, quarantined, last change,\n"
"        name. --state queued|paused|running|done|failed|\n"
"        cancelled filters; --limit N shows N, following the server's\n"
"        pages as needed; --all follows every page. Without either, one\n"
"        page, and a note on stderr when there are more.\n" },
{ "batch", 1, 1, 0, cmd_batch, "batch ID",
"        One batch, every field (GET /api/batches/ID).\n" },
{ "report", 1, 1, O_CSV, cmd_report, "report ID [--csv]",
"        The batch and each of its studies: UID, state, instances and,\n"
"        for those that did not make it, why (GET\n"
"        /api/batches/ID/report). --csv writes instead one line per\n"
"        instance, as the daemon sends it (RFC 4180 with CRLF line\n"
"        ends and a header line: study_uid,series_uid,sop_instance_uid,\n"
"        ..., outcome, status, reason, detail), for a spreadsheet:\n"
"        vnamigctl report 12 --csv > batch-12.csv\n" },
{ "submit", 0, 0, SUBMIT_OPTS, cmd_submit,
  "submit --source PEER --target PEER [--name N] [--external-id X]\n"
  "                  [--priority P] [--accession A]... [--study UID]...\n"
  "                  [--patient-id ID] [--force-full-repull]\n"
  "                  [--study-date RANGE] [--modality M]\n"
  "                  [--order oldest_first|newest_first] [--plan ID]\n"
  "                  [--file FILE.json]",
"        A new batch (POST /api/batches) from the peers named in\n"
"        vnamigd's configuration. Give what to move with --accession\n"
"        (repeat it), --study (repeat it), --patient-id, and/or a query\n"
"        the source answers: --study-date (YYYYMMDD, or a range\n"
"        YYYYMMDD-YYYYMMDD with either end left out) and --modality (CT,\n"
"        MR, ...), with --patient-id narrowing it. --order works the\n"
"        studies by StudyDate, oldest or newest first. --file\n"
"        reads a batch seed (the JSON the API and the drop folder take);\n"
"        the flags then add to it or override it. --priority 0 to 9.\n"
"        --external-id makes the submission idempotent: a repeat gets\n"
"        the earlier batch back (\"exists already\", exit 0).\n" },
{ "pause", 1, 1, 0, cmd_pause, "pause ID",
"        Pause batch ID; its progress is kept (exit 3 when its state\n"
"        does not allow it: 409).\n" },
{ "resume", 1, 1, 0, cmd_resume, "resume ID",
"        Resume a paused batch.\n" },
{ "cancel", 1, 1, 0, cmd_cancel, "cancel ID",
"        Cancel batch ID for good.\n" },
{ "node", 0, 0, 0, cmd_node, "node",
"        The node's migration state (GET /api/node): AE title, whether\n"
"        it is paused (by whom, when, why), what the engine is moving\n"
"        (studies and instances done of all, bytes, rate, ETA) and how\n"
"        much is under way (batches, studies, outbound associations).\n" },
{ "node pause", 0, 0, O_REASON, cmd_node_pause, "node pause [--reason R]",
"        Pause all migration work on this node: no new step starts,\n"
"        steps under way finish. Who, when and R are recorded and\n"
"        audited, and survive restarts; the daemon also takes a\n"
"        checkpoint. Exit 3 when it is paused already (409).\n" },
{ "node resume", 0, 0, O_REASON, cmd_node_resume,
  "node resume [--reason R]",
"        Let migration work start again on this node (exit 3 when it\n"
"        is not paused: 409).\n" },
{ "sources", 0, 0, 0, cmd_sources, "sources",
"        The source archives from vnamigd's configuration: name, AE\n"
"        title, host, port, retrieve (move or get), window (outside it\n"
"        no new step against the source starts; never: none at all),\n"
"        paused, and by whom, since when and why.\n" },
{ "source", 1, 1, 0, cmd_source, "source NAME",
"        One source, every field (GET /api/sources/NAME; exit 3 when\n"
"        there is no source peer NAME: 404).\n" },
{ "source pause", 1, 1, O_REASON, cmd_source_pause,
  "source pause NAME [--reason R]",
"        Pause migration work against source NAME (its queries and\n"
"        retrieves); the other sources go on. Recorded, audited and\n"
"        checkpointed as node pause. Exit 3 when it is paused\n"
"        already (409) or there is no such source (404).\n" },
{ "source resume", 1, 1, O_REASON, cmd_source_resume,
  "source resume NAME [--reason R]",
"        Let migration work against source NAME start again.\n" },
{ "plans", 0, 0, 0, cmd_plans, "plans",
"        The plans (GET /api/plans): id, name, source, target, priority,\n"
"        order, state (active, paused, cancelled) and their batches by\n"
"        state.\n" },
{ "plan", 1, 1, 0, cmd_plan, "plan ID",
"        One plan, every field (exit 3 when there is none: 404).\n" },
{ "plan create", 1, 1, O_SOURCE | O_TARGET | O_PRIO | O_ORDER | O_NOTE,
  cmd_plan_create,
  "plan create NAME --source PEER --target PEER [--priority P]\n"
  "                  [--order oldest_first|newest_first] [--note TEXT]",
"        A new plan: a named migration from one source to one target\n"
"        (a peer or an export). Batches join it with submit --plan ID\n"
"        and take its source, target, priority and order. --note is\n"
"        its description.\n" },
{ "plan pause", 1, 1, O_REASON, cmd_plan_pause, "plan pause ID [--reason R]",
"        No new step of the plan's batches starts; steps under way\n"
"        finish. Audited and checkpointed (pause-plan-ID-...). Exit 3\n"
"        when it is paused or cancelled already (409).\n" },
{ "plan resume", 1, 1, O_REASON, cmd_plan_resume,
  "plan resume ID [--reason R]",
"        The plan's batches go on.\n" },
{ "plan cancel", 1, 1, O_REASON, cmd_plan_cancel,
  "plan cancel ID [--reason R]",
"        Cancel the plan for good: the engine cancels its batches that\n"
"        have not ended, and no batch joins it any more.\n" },
{ "quarantine", 0, 0, O_REASON | O_BATCH | O_LIMIT | O_ALL,
  cmd_quarantine,
  "quarantine [--reason R] [--batch ID] [--limit N] [--all]",
"        Instances held back, newest first: item ID, batch, study and\n"
"        SOP instance UIDs, reason, state (open, retried, rejected),\n"
"        time and detail. --reason R (missing_at_source,\n"
"        target_rejected, verify_mismatch, source_status, ...) and\n"
"        --batch ID filter; --limit and --all follow the server's pages\n"
"        as for batches.\n" },
{ "quarantine show", 1, 1, 0, cmd_quarantine_show, "quarantine show ID",
"        One item, every field: the UIDs and SOP class, the DIMSE\n"
"        status, the SHA-256 of the bytes from the source and at the\n"
"        target, the file holding a copy of them on the daemon's host,\n"
"        and who acted on it, when, with what note. Exit 3 when there\n"
"        is no item ID (404).\n" },
{ "quarantine retry", 1, 1, O_NOTE, cmd_quarantine_retry,
  "quarantine retry ID [--note N]",
"        Feed the instance through the pipeline again (fetched from the\n"
"        source, sent, verified; its batch runs again if it was done).\n"
"        N is kept with the item and in the audit log. Exit 3 when the\n"
"        item is not open or its study is being worked (409).\n" },
{ "quarantine release", 1, 1, O_NOTE, cmd_quarantine_release,
  "quarantine release ID [--note N]",
"        Send the instance as it is, untransformed: for an item whose\n"
"        transform failed (transform_error), as a retry, but the source's\n"
"        bytes go; its report row and audit leaf name who released it.\n"
"        N is kept with the item and in the audit log. Exit 3 when the\n"
"        item is not open, is of another reason, or its study is being\n"
"        worked (409).\n" },
{ "quarantine reject", 1, 1, O_NOTE, cmd_quarantine_reject,
  "quarantine reject ID [--note N]",
"        Close the item as adjudicated: it is accepted as it is (the\n"
"        instance stays quarantined in the batch's report). N is kept\n"
"        with the item and in the audit log. Exit 3 when the item is\n"
"        not open (409).\n" },
{ "hl7 messages", 0, 0, O_SENDER | O_TYPE | O_ACK | O_LIMIT | O_ALL,
  cmd_hl7_messages,
  "hl7 messages [--sender S] [--type T] [--ack AA|AE|AR] [--limit N] [--all]",
"        The HL7 inbox (GET /api/hl7/messages), oldest first: every\n"
"        message received over MLLP or by hl7 ingest, with its record\n"
"        number (SEQ), arrival time (UTC), sender (the hl7.senders entry\n"
"        it matched; - for none), type, control id (MSH-10), the ACK\n"
"        code it got, the outcome (batch, inbox, merge, error,\n"
"        unsupported, ...), the batch it made and, for AE and AR, what\n"
"        was wrong. --sender S, --type T (ORM^O01) and --ack filter;\n"
"        --limit N and --all follow the server's pages as for batches.\n"
"        --json prints one object with every record fetched (each with\n"
"        the message as received) and the last next. The refusals of\n"
"        the last night, for the RIS team:\n"
"        vnamigctl hl7 messages --sender ris --ack AR --all\n" },
{ "hl7 ingest", 1, 1, 0, cmd_hl7_ingest, "hl7 ingest FILE|-",
"        Back-load HL7 messages that did not come over MLLP (POST\n"
"        /api/hl7/ingest): the bytes of FILE (-: standard input) as they\n"
"        are, one message or a file of them, separated by their MSH\n"
"        segments or by MLLP frames (10,000 at most per run). Each is\n"
"        handled exactly as if it had come over MLLP: sender mapping,\n"
"        dedup (a message sent again gets its first ACK back), batches,\n"
"        the inbox and the audit log. One line per message, in the\n"
"        file's order: its number, control id, ACK code (none: no usable\n"
"        MSH to answer), and from the inbox the outcome, the batch made\n"
"        and what was wrong. Exit 7 unless every message got AA (the\n"
"        count said on stderr); --json prints the server's answer, each\n"
"        ACK whole. Example:\n"
"        vnamigctl hl7 ingest orders-may.hl7 || vnamigctl hl7 messages \\\n"
"            --ack AE\n" },
{ "hl7 preview", 1, 1, 0, cmd_hl7_preview, "hl7 preview FILE|-",
"        What vnamigd takes from one message, changing nothing (POST\n"
"        /api/hl7/preview with the bytes of FILE, -: standard input):\n"
"        its type, control id, sending application and facility, the\n"
"        hl7.senders entry it maps to with that sender's source and\n"
"        target peers (none: it would only be kept in the inbox), and\n"
"        for each of the sender's paths (accession, mrn, study_uid) the\n"
"        value it extracts and the path (- when the message has none).\n"
"        Exit 3 when the message does not parse (422, saying where).\n"
"        Check a sender's paths before pointing its RIS at vnamigd:\n"
"        vnamigctl hl7 preview sample-orm.hl7\n" },
{ "keys", 0, 0, 0, cmd_keys, "keys",
"        API keys: id, role, source (config or api), created. No\n"
"        tokens: the server keeps only their hashes. Needs an admin key.\n" },
{ "key create", 1, 1, O_ROLE, cmd_key_create, "key create ID --role R",
"        A new API key with role viewer, operator or admin. Its token is\n"
"        printed once: store it, it cannot be read back.\n" },
{ "key delete", 1, 1, 0, cmd_key_delete, "key delete ID",
"        Revoke key ID (keys from the configuration file cannot be).\n" },
{ "checkpoints", 0, 0, 0, cmd_checkpoints, "checkpoints",
"        Named checkpoints of the state: name, time, reason, audit size.\n" },
{ "checkpoint", 1, 1, 0, cmd_checkpoint, "checkpoint NAME",
"        Make checkpoint NAME now (1 to 64 of A-Z a-z 0-9 _ . -).\n" },
{ "restore", 1, 1, O_YES, cmd_restore, "restore NAME [--yes]",
"        Put the job state back to checkpoint NAME (the audit log is\n"
"        kept whole and records the restore). Asks on the terminal\n"
"        first; --yes skips the question and is required when standard\n"
"        input is not a terminal.\n" },
{ "backups", 0, 0, 0, cmd_backups, "backups",
"        Backups of the state: id, time, size, files.\n" },
{ "backup", 0, 0, 0, cmd_backup, "backup",
"        Make a backup now (into the daemon's backup directory).\n" },
{ "backup verify", 1, 1, 0, cmd_backup_verify, "backup verify ID",
"        Have the daemon check backup ID (a trial restore and its audit\n"
"        tree). Exit 5 when it does not verify.\n" },
{ "audit checkpoint", 0, 0, 0, cmd_audit_checkpoint, "audit checkpoint",
"        The latest signed checkpoint of the audit log: origin, size,\n"
"        root, key id and the signed note.\n" },
{ "audit verify", 0, 0, O_STATE | O_PUBKEY, cmd_audit_verify,
  "audit verify [--pubkey FILE] [--state FILE]",
"        Act as a witness of the audit log. Fetch the signed checkpoint\n"
"        and check its Ed25519 signature with the key in --pubkey FILE\n"
"        (PEM; vnamigd writes it as DATA_DIR-audit.pem.pub), else the\n"
"        key recorded in the state file, else - trust on first use, said\n"
"        on stderr - the key the server sends, which is then recorded.\n"
"        When the state file (default ~/.config/vnamig/witness.json)\n"
"        holds an earlier checkpoint, check that the log only grew since:\n"
"        the same root at the same size, or an RFC 9162 consistency proof\n"
"        from the old size and root to the new ones (fetched from\n"
"        /api/audit/consistency and verified here). Then record the new\n"
"        checkpoint. Exit 5, recording nothing, when the signature, the\n"
"        proof or a root does not check or the size went backwards. Run\n"
"        it from elsewhere now and then (cron): a log rewritten between\n"
"        two runs cannot pass.\n" },
{ "audit proof", 1, 1, O_STATE | O_SIZE, cmd_audit_proof,
  "audit proof SEQ [--size N] [--state FILE]",
"        Prove that leaf SEQ is in the log: fetch its RFC 9162 inclusion\n"
"        proof in the tree of N leaves (default: the witnessed size when\n"
"        SEQ is in it, else the current one) and verify it; show the\n"
"        leaf, checked against its hash; and tie the proof's root to the\n"
"        witnessed one (equal, or a consistency proof between them).\n"
"        Exit 5 when any of that fails.\n" },
{ "metrics", 0, 0, 0, cmd_metrics, "metrics",
"        GET /metrics: the Prometheus text, as is.\n" },
{ "watch", 0, 1, O_INTERVAL | O_COUNT, cmd_watch,
  "watch [ID] [--interval S] [--count N]",
"        Poll /api/status every S seconds (default 2). On a terminal one\n"
"        line redrawn in place: a bar, studies and instances done of\n"
"        all, bytes, rate, ETA, batches running; otherwise one plain\n"
"        key=value line per poll (with --json, the status as one JSON\n"
"        line). Failed polls are reported and retried. Ctrl-C ends it\n"
"        (exit 0); --count N after N polls. With a batch ID, poll\n"
"        /api/batches/ID instead and show that batch's state and\n"
"        progress the same way, until it ends: exit 0 when it is done,\n"
"        6 when it failed or was cancelled; 3 when there is no such\n"
"        batch (404).\n" },
};

#define NCMDS	(sizeof(cmds) / sizeof(cmds[0]))

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f,
"NAME\n"
"    vnamigctl - control and watch vnamigd through its REST API\n"
"\n"
"SYNOPSIS\n"
"    vnamigctl [OPTIONS] COMMAND [ARGS]\n"
"    vnamigctl COMMAND --help\n"
"    vnamigctl --version | --help\n"
"\n"
"DESCRIPTION\n"
"    vnamigctl talks to a running vnamigd over HTTP or HTTPS with an API\n"
"    key: it reads status and progress, submits and steers batches,\n"
"    pauses the node or a source, handles the quarantine, reads the HL7\n"
"    inbox and back-loads HL7 messages, manages keys,\n"
"    checkpoints and backups, and checks the audit log as an\n"
"    independent witness. Answers are tables for people; --json\n"
"    prints the server's JSON as it is (indented) for scripts.\n"
"\n"
"COMMANDS\n");
	for (i = 0; i < NCMDS; i++)
		fprintf(f, "    %s\n%s", cmds[i].synopsis, cmds[i].help);
	fprintf(f,
"\n"
"OPTIONS\n"
"    These go before or after the command.\n"
"    --url URL\n"
"        The server: http://HOST:PORT or https://HOST:PORT, optionally\n"
"        with a path prefix when vnamigd is behind a proxy (default\n"
"        http://127.0.0.1:8080).\n"
"    --key-file FILE\n"
"        Read the API key (bearer token) from the first line of FILE,\n"
"        which must not be readable by group or others (chmod 600).\n"
"    --key TOKEN\n"
"        The API key itself. Other users can see command lines: prefer\n"
"        --key-file or VNAMIG_KEY.\n"
"    --cacert FILE\n"
"        Verify the server's certificate against the CA certificates in\n"
"        FILE (PEM) instead of the system's.\n"
"    --insecure\n"
"        Do not verify the server's certificate at all. Said on stderr\n"
"        every time: anyone on the path can then read the key.\n"
"    --json\n"
"        Print the server's JSON answer instead of a table (and, when\n"
"        the server refuses, its error body too; the one-line error\n"
"        still goes to stderr).\n"
"    --timeout S\n"
"        Give up connecting, sending or waiting for the answer after S\n"
"        seconds (default 30).\n"
"    --config FILE\n"
"        Read FILE instead of ~/.config/vnamig/ctl.yaml.\n"
"    -h, --help\n"
"        This page; after a command, that command's part of it.\n"
"    -V, --version\n"
"        Print the version and exit.\n"
"\n"
"    Each of the server URL, the key and the CA file is taken from the\n"
"    first place that has it: the flags, then the environment, then\n"
"    ctl.yaml.\n"
"\n"
"FILES\n"
"    ~/.config/vnamig/ctl.yaml ($XDG_CONFIG_HOME/vnamig/ctl.yaml when\n"
"    XDG_CONFIG_HOME is set)\n"
"        \"key: value\" lines: url, key or key_file, cacert (relative\n"
"        paths are relative to the file's directory). Refused when the\n"
"        group or others may read or write it (chmod 600), as it may\n"
"        hold a key. Example:\n"
"            url: https://vnamig.example.org:8443\n"
"            key_file: vnamig.key\n"
"            cacert: /etc/ssl/certs/hospital-ca.pem\n"
"    ~/.config/vnamig/witness.json\n"
"        The audit witness's state: the trusted key and the last\n"
"        checkpoint verified (audit verify --state FILE to keep one per\n"
"        server).\n"
"\n"
"ENVIRONMENT\n"
"    VNAMIG_URL   the server URL, unless --url is given\n"
"    VNAMIG_KEY   the API key, unless --key or --key-file is given\n"
"    HOME, XDG_CONFIG_HOME   where ctl.yaml and witness.json are\n"
"\n"
"EXIT STATUS\n"
"    0  done\n"
"    1  usage or configuration error (unknown command or option, bad\n"
"       argument, unreadable or unsafe ctl.yaml or key file, a restore\n"
"       not confirmed)\n"
"    2  no exchange with the server: cannot resolve or connect, TLS\n"
"       (certificate not trusted), timeout, an answer that is not HTTP\n"
"       or not the JSON (or CSV) expected\n"
"    3  the server refused the request (4xx: the error code and message\n"
"       are printed: bad key 401, role too low 403, no such batch,\n"
"       source or quarantine item 404, a transition not allowed 409,\n"
"       an invalid field 422 ...)\n"
"    4  the server failed or is unavailable (5xx; health: degraded)\n"
"    5  a verification failed: audit verify or audit proof (signature,\n"
"       proof, root, size going backwards, or the server would not give\n"
"       the consistency proof), backup verify\n"
"    6  watch ID: the batch ended failed or cancelled\n"
"    7  hl7 ingest: not every message got AA (some got AE or AR, or no\n"
"       ACK at all); each message's line says which\n"
"    Errors are one line each on stderr: what, and where\n"
"    (vnamigctl: METHOD URL: ...).\n"
"\n"
"EXAMPLES\n"
"    export VNAMIG_URL=https://vnamig01:8443\n"
"    vnamigctl --key-file ~/.config/vnamig/ops.key status\n"
"    vnamigctl batches --state running\n"
"    vnamigctl submit --source legacy --target vna --accession A123 \\\n"
"        --accession A124 --priority 7 --external-id RIS-4711\n"
"    vnamigctl pause 12 && vnamigctl resume 12\n"
"    vnamigctl report 12 --json | jq '.studies[] | select(.state != \"done\")'\n"
"    vnamigctl report 12 --csv > batch-12.csv\n"
"    vnamigctl source pause legacy --reason \"PACS maintenance\"\n"
"    vnamigctl quarantine --batch 12 --reason verify_mismatch\n"
"    vnamigctl quarantine retry 31 --note \"target fixed\"\n"
"    vnamigctl watch 12 && echo batch 12 done\n"
"    vnamigctl hl7 ingest - < ris-backlog.hl7\n"
"    vnamigctl hl7 messages --type ORM^O01 --ack AE --limit 20\n"
"    vnamigctl checkpoint before-cutover\n"
"    vnamigctl restore before-cutover --yes\n"
"    vnamigctl audit verify --pubkey vnamig-audit.pem.pub   # from cron\n"
"    vnamigctl watch\n"
"\n"
"SEE ALSO\n"
"    vnamigd(8), vnamig-state(1), vnamig-verify(1)\n");
}

/* The command-specific options, for messages. */
static const struct { unsigned bit; const char *name; } optnames[] = {
	{ O_STATE, "--state" }, { O_LIMIT, "--limit" }, { O_ALL, "--all" },
	{ O_SOURCE, "--source" }, { O_TARGET, "--target" },
	{ O_NAME, "--name" }, { O_EXTID, "--external-id" },
	{ O_PRIO, "--priority" }, { O_ACC, "--accession" },
	{ O_STUDY, "--study" }, { O_PATIENT, "--patient-id" },
	{ O_REPULL, "--force-full-repull" }, { O_FILE, "--file" },
	{ O_REASON, "--reason" }, { O_ROLE, "--role" }, { O_YES, "--yes" },
	{ O_PUBKEY, "--pubkey" }, { O_SIZE, "--size" },
	{ O_INTERVAL, "--interval" }, { O_COUNT, "--count" },
	{ O_BATCH, "--batch" }, { O_NOTE, "--note" }, { O_CSV, "--csv" },
	{ O_SENDER, "--sender" }, { O_TYPE, "--type" }, { O_ACK, "--ack" },
	{ O_DATE, "--study-date" }, { O_MODALITY, "--modality" },
	{ O_ORDER, "--order" }, { O_PLAN, "--plan" },
};

static void
cmd_usage(const struct cmd *k)
{
	printf("NAME\n    vnamigctl %s\n\nSYNOPSIS\n    vnamigctl [OPTIONS] %s"
	    "\n\nDESCRIPTION\n%s\nThe OPTIONS every command takes, FILES, "
	    "ENVIRONMENT and EXIT STATUS:\nsee vnamigctl --help.\n", k->name,
	    k->synopsis, k->help);
}

/* find: the command WORDS name (two words first); *used words taken. */
static const struct cmd *
find(char **w, int n, int *used)
{
	char two[64];
	size_t i;

	if (n >= 2) {
		snprintf(two, sizeof(two), "%s %s", w[0], w[1]);
		for (i = 0; i < NCMDS; i++)
			if (strcmp(cmds[i].name, two) == 0) {
				*used = 2;
				return &cmds[i];
			}
	}
	for (i = 0; i < NCMDS; i++)
		if (strcmp(cmds[i].name, w[0]) == 0) {
			*used = 1;
			return &cmds[i];
		}
	return NULL;
}

enum {
	L_URL = 256, L_KEY, L_KEYFILE, L_CACERT, L_INSECURE, L_JSON,
	L_TIMEOUT, L_CONFIG, L_STATE, L_LIMIT, L_ALL, L_SOURCE, L_TARGET,
	L_NAME, L_EXTID, L_PRIO, L_ACC, L_STUDY, L_PATIENT, L_REPULL,
	L_FILE, L_REASON, L_ROLE, L_PUBKEY, L_SIZE, L_INTERVAL, L_COUNT,
	L_BATCH, L_NOTE, L_CSV, L_SENDER, L_TYPE, L_ACK, L_DATE, L_MODALITY,
	L_ORDER, L_PLAN,
};

static const struct option longopts[] = {
	{ "url", required_argument, NULL, L_URL },
	{ "key", required_argument, NULL, L_KEY },
	{ "key-file", required_argument, NULL, L_KEYFILE },
	{ "cacert", required_argument, NULL, L_CACERT },
	{ "insecure", no_argument, NULL, L_INSECURE },
	{ "json", no_argument, NULL, L_JSON },
	{ "timeout", required_argument, NULL, L_TIMEOUT },
	{ "config", required_argument, NULL, L_CONFIG },
	{ "state", required_argument, NULL, L_STATE },
	{ "limit", required_argument, NULL, L_LIMIT },
	{ "all", no_argument, NULL, L_ALL },
	{ "source", required_argument, NULL, L_SOURCE },
	{ "target", required_argument, NULL, L_TARGET },
	{ "name", required_argument, NULL, L_NAME },
	{ "external-id", required_argument, NULL, L_EXTID },
	{ "priority", required_argument, NULL, L_PRIO },
	{ "accession", required_argument, NULL, L_ACC },
	{ "study", required_argument, NULL, L_STUDY },
	{ "patient-id", required_argument, NULL, L_PATIENT },
	{ "force-full-repull", no_argument, NULL, L_REPULL },
	{ "file", required_argument, NULL, L_FILE },
	{ "reason", required_argument, NULL, L_REASON },
	{ "role", required_argument, NULL, L_ROLE },
	{ "yes", no_argument, NULL, 'y' },
	{ "pubkey", required_argument, NULL, L_PUBKEY },
	{ "size", required_argument, NULL, L_SIZE },
	{ "interval", required_argument, NULL, L_INTERVAL },
	{ "count", required_argument, NULL, L_COUNT },
	{ "batch", required_argument, NULL, L_BATCH },
	{ "note", required_argument, NULL, L_NOTE },
	{ "csv", no_argument, NULL, L_CSV },
	{ "sender", required_argument, NULL, L_SENDER },
	{ "type", required_argument, NULL, L_TYPE },
	{ "ack", required_argument, NULL, L_ACK },
	{ "study-date", required_argument, NULL, L_DATE },
	{ "modality", required_argument, NULL, L_MODALITY },
	{ "order", required_argument, NULL, L_ORDER },
	{ "plan", required_argument, NULL, L_PLAN },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

/* one_opt: store option CH; 0, or -1 after saying why. */
static int
one_opt(struct ctl *c, int ch, const char *arg)
{
	struct ctl_opts *o = &c->o;
	uint64_t t;

	switch (ch) {
	case L_URL: c->flag_url = arg; break;
	case L_KEY: c->flag_key = arg; break;
	case L_KEYFILE: c->flag_key_file = arg; break;
	case L_CACERT: c->flag_cacert = arg; break;
	case L_CONFIG: c->flag_config = arg; break;
	case L_INSECURE: c->insecure = 1; break;
	case L_JSON: c->json = 1; break;
	case L_TIMEOUT:
		if (ctl_parse_u64(arg, 1, 3600, "--timeout", &t) < 0)
			return -1;
		c->timeout_s = (int)t;
		break;
	case L_STATE: o->state = arg; o->given |= O_STATE; break;
	case L_LIMIT: o->limit = arg; o->given |= O_LIMIT; break;
	case L_ALL: o->all = 1; o->given |= O_ALL; break;
	case L_SOURCE: o->source = arg; o->given |= O_SOURCE; break;
	case L_TARGET: o->target = arg; o->given |= O_TARGET; break;
	case L_NAME: o->name = arg; o->given |= O_NAME; break;
	case L_EXTID: o->external_id = arg; o->given |= O_EXTID; break;
	case L_PRIO: o->priority = arg; o->given |= O_PRIO; break;
	case L_PATIENT: o->patient_id = arg; o->given |= O_PATIENT; break;
	case L_REPULL: o->repull = 1; o->given |= O_REPULL; break;
	case L_FILE: o->file = arg; o->given |= O_FILE; break;
	case L_REASON: o->reason = arg; o->given |= O_REASON; break;
	case L_ROLE: o->role = arg; o->given |= O_ROLE; break;
	case 'y': o->yes = 1; o->given |= O_YES; break;
	case L_PUBKEY: o->pubkey = arg; o->given |= O_PUBKEY; break;
	case L_SIZE: o->size = arg; o->given |= O_SIZE; break;
	case L_INTERVAL: o->interval = arg; o->given |= O_INTERVAL; break;
	case L_COUNT: o->count = arg; o->given |= O_COUNT; break;
	case L_BATCH: o->batch = arg; o->given |= O_BATCH; break;
	case L_NOTE: o->note = arg; o->given |= O_NOTE; break;
	case L_CSV: o->csv = 1; o->given |= O_CSV; break;
	case L_SENDER: o->sender = arg; o->given |= O_SENDER; break;
	case L_TYPE: o->type = arg; o->given |= O_TYPE; break;
	case L_ACK: o->ack = arg; o->given |= O_ACK; break;
	case L_DATE: o->study_date = arg; o->given |= O_DATE; break;
	case L_MODALITY: o->modality = arg; o->given |= O_MODALITY; break;
	case L_ORDER: o->order = arg; o->given |= O_ORDER; break;
	case L_PLAN: o->plan = arg; o->given |= O_PLAN; break;
	case L_ACC:
	case L_STUDY:
		if ((ch == L_ACC ? o->nacc : o->nstudy) >= CTL_MAX_LIST) {
			fprintf(stderr, PROG ": more than %d %s values: use "
			    "--file\n", CTL_MAX_LIST, ch == L_ACC ?
			    "--accession" : "--study");
			return -1;
		}
		if (ch == L_ACC)
			o->acc[o->nacc++] = arg;
		else
			o->study[o->nstudy++] = arg;
		o->given |= ch == L_ACC ? O_ACC : O_STUDY;
		break;
	default:
		fprintf(stderr, PROG ": see vnamigctl --help\n");
		return -1;
	}
	return 0;
}

/* check: the options and arguments fit command K. */
static int
check(const struct ctl *c, const struct cmd *k, int nargs)
{
	size_t i;

	for (i = 0; i < sizeof(optnames) / sizeof(optnames[0]); i++)
		if ((c->o.given & optnames[i].bit) && !(k->opts &
		    optnames[i].bit)) {
			fprintf(stderr, PROG ": %s does not go with \"%s\"; see "
			    "vnamigctl %s --help\n", optnames[i].name, k->name,
			    k->name);
			return -1;
		}
	if (nargs < k->min || nargs > k->max) {
		fprintf(stderr, PROG ": usage: vnamigctl %s; see vnamigctl %s "
		    "--help\n", k->synopsis, k->name);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct ctl c;	/* big (the --accession lists): static */
	const struct cmd *k;
	char **w;
	int ch, n, used = 0, help = 0, rc;

	c.timeout_s = 30;
	opterr = 1;
	while ((ch = getopt_long(argc, argv, "hVy", longopts, NULL)) != -1) {
		if (ch == 'h')
			help = 1;
		else if (ch == 'V') {
			printf("vnamigctl %s\n", PACKAGE_VERSION);
			return CTL_OK;
		} else if (one_opt(&c, ch, optarg) < 0)
			return CTL_USAGE;
	}
	w = argv + optind;
	n = argc - optind;
	if (n > 0 && strcmp(w[0], "help") == 0) {
		help = 1;
		w++;
		n--;
	}
	if (n == 0) {
		if (help) {
			usage(stdout);
			return CTL_OK;
		}
		fprintf(stderr, PROG ": expected a command (status, batches, "
		    "submit, audit verify, ...); see vnamigctl --help\n");
		return CTL_USAGE;
	}
	if ((k = find(w, n, &used)) == NULL) {
		fprintf(stderr, PROG ": unknown command \"%s\"; see vnamigctl "
		    "--help\n", w[0]);
		return CTL_USAGE;
	}
	if (help) {
		cmd_usage(k);
		return CTL_OK;
	}
	if (check(&c, k, n - used) < 0)
		return CTL_USAGE;
	if ((rc = ctl_conf_resolve(&c)) != CTL_OK) {
		ctl_conf_free(&c);
		return rc;
	}
	signal(SIGPIPE, SIG_IGN);
	rc = k->fn(&c, w + used, n - used);
	if (fflush(stdout) != 0 && rc == CTL_OK) {
		perror(PROG ": standard output");
		rc = CTL_CONN;
	}
	SSL_CTX_free(c.ssl_ctx);
	ctl_conf_free(&c);
	return rc;
}
