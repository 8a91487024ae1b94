/*
 * t_conf.c — the configuration loader from YAML text: typed values,
 * defaults, the contract file, positions in error messages, limits on
 * hostile YAML, and conf_dump/conf_diff.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "t/unit/tap.h"

static struct conf *
load(const char *text, char **errs)
{
	return conf_load_buffer("t.yaml", text, strlen(text), errs);
}

/* The first error line of text, or "" when it loads. */
static char errline[1024];
static const char *
first_error(const char *text)
{
	char *errs;
	struct conf *c = load(text, &errs);

	errline[0] = '\0';
	if (c != NULL) {
		conf_free(c);
		return errline;
	}
	snprintf(errline, sizeof(errline), "%s", errs);
	errline[strcspn(errline, "\n")] = '\0';
	free(errs);
	return errline;
}

static void
t_contract(void)
{
	static const char text[] =
	    "node:\n  ae_title: VNAMIG\n  data_dir: ./var\n"
	    "listen:\n  dicom: { address: 127.0.0.1, port: 11112 }\n"
	    "peers:\n"
	    "  - name: legacy\n    ae_title: LEGACY\n    host: 127.0.0.1\n"
	    "    port: 11113\n    role: source\n    retrieve: get\n"
	    "  - name: vna\n    ae_title: VNA\n    host: 127.0.0.1\n"
	    "    port: 11114\n    role: target\n"
	    "api:\n  keys:\n"
	    "    - { id: ops, role: operator, token: \"plain-for-tests\" }\n";
	/* printf %s plain-for-tests | sha256sum */
	static const uint8_t want_hash[32] = {
		0x6a, 0x4f, 0x7a, 0x34, 0x65, 0x32, 0x4e, 0xcc, 0xf6, 0x64,
		0xc7, 0xb1, 0xd0, 0xe6, 0xa1, 0x08, 0x31, 0xe8, 0xdc, 0xef,
		0x9d, 0x55, 0x35, 0xe4, 0x48, 0x50, 0xc3, 0x16, 0x6a, 0x37,
		0xa6, 0x65 };
	char *errs;
	struct conf *c = load(text, &errs);
	const struct conf_peer *p;

	if (!ok(c != NULL, "contract config loads")) {
		diag("%s", errs);
		free(errs);
		return;
	}
	is_str(c->node.ae_title, "VNAMIG", "node.ae_title");
	is_str(c->node.data_dir, "./var", "node.data_dir");
	is_str(c->storage.spool_dir, "./var/spool", "spool_dir defaults under data_dir");
	is_int(c->dicom.enabled, 1, "dicom listener on");
	is_int(c->http.enabled, 0, "http listener absent = off");
	is_int(c->dicom.port, 11112, "dicom port");
	is_int(c->npeers, 2, "two peers");
	p = conf_peer_by_name(c, "legacy");
	ok(p != NULL && p->role == CONF_ROLE_SOURCE, "legacy is a source");
	ok(p != NULL && p->retrieve == CONF_RETRIEVE_GET, "legacy retrieves by C-GET");
	ok(p != NULL && p->max_associations == 4, "peer default max_associations 4");
	p = conf_peer_by_ae(c, "VNA");
	ok(p != NULL && strcmp(p->name, "vna") == 0, "peer by AE title");
	ok(p != NULL && p->role == CONF_ROLE_TARGET, "vna is a target");
	ok(conf_peer_by_name(c, "nope") == NULL, "unknown peer name: NULL");
	is_int(c->api.nkeys, 1, "one API key");
	is_int(c->api.keys[0].role, CONF_API_OPERATOR, "operator role");
	ok(memcmp(c->api.keys[0].token_sha256, want_hash, 32) == 0,
	    "token kept as its SHA-256");
	is_int(c->limits.max_pdu, 262144, "default max_pdu 256KiB");
	is_int(c->limits.artim_ms, 30000, "default ARTIM 30s");
	is_int(c->limits.associations_in, 64, "default associations_in");
	is_int(c->limits.unread_answers, 1048576, "default unread_answers "
	    "1MiB");
	is_int(c->logging.level, 2, "default log level info");
	is_int(c->api.health_open, 1, "health open by default");
	conf_free(c);
	ok(c == NULL, "conf_free NULLs its argument");
}

static void
t_typed(void)
{
	char *errs;
	struct conf *c = load(
	    "limits:\n  max_pdu: 1MiB\n  idle_timeout: 1h30m\n"
	    "  http_body: 1.5GiB\n  unread_answers: 128KiB\n"
	    "peers:\n  - { name: p, ae_title: \"  PACS  \", host: h, port: 104,"
	    " role: both, bandwidth: 50MB/s, window: \"Mon-Fri 19:00-07:00\","
	    " tls: {} }\n"
	    "logging: { level: debug, phi: yes }\n", &errs);

	if (!ok(c != NULL, "typed values load")) {
		diag("%s", errs);
		free(errs);
		return;
	}
	is_int(c->limits.max_pdu, 1048576, "max_pdu 1MiB");
	is_int(c->limits.idle_ms, 5400000, "idle 1h30m in ms");
	is_int(c->limits.http_body, 1610612736, "1.5GiB");
	is_int(c->limits.unread_answers, 131072, "unread_answers 128KiB");
	is_str(c->peers[0].ae_title, "PACS", "AE title trimmed");
	is_int(c->peers[0].bandwidth, 50000000, "50MB/s");
	ok(c->peers[0].window.set, "window set");
	/* Friday 23:00 is inside, Monday 03:00 is not (nothing on Sunday). */
	ok(conf_window_contains(&c->peers[0].window.win,
	    conf_window_minute(5, 23, 0)), "window holds Fri 23:00");
	ok(!conf_window_contains(&c->peers[0].window.win,
	    conf_window_minute(1, 3, 0)), "window lacks Mon 03:00");
	is_int(c->peers[0].tls.enabled, 1, "tls: {} enables TLS");
	is_int(c->logging.level, 3, "debug");
	is_int(c->logging.phi, 1, "phi: yes");
	conf_free(c);
}

static void
t_errors(void)
{
	char big[4096];

	is_str(first_error("node:\n  ae_titel: X\n"),
	    "t.yaml:2:3: unknown key \"ae_titel\" in node; expected one of: "
	    "ae_title, data_dir, shard_index, shard_count (did you mean "
	    "\"ae_title\"?)", "unknown key: position + suggestion");
	is_str(first_error("limits:\n  max_pdu: 1KiB\n"),
	    "t.yaml:2:12: limits.max_pdu = 1KiB is out of range; expected "
	    "4096 bytes to 16777216 bytes", "out of range, with the range");
	is_str(first_error("limits:\n  unread_answers: 32KiB\n"),
	    "t.yaml:2:19: limits.unread_answers = 32KiB is out of range; "
	    "expected 65536 bytes to 67108864 bytes", "unread_answers: its "
	    "range");
	is_str(first_error("limits:\n  dimse_timeout: 30\n"),
	    "t.yaml:2:18: limits.dimse_timeout = \"30\": a number in a "
	    "duration needs a unit (ms, s, m, h or d), as in 30s",
	    "a duration without unit");
	is_str(first_error("peers: {}\n"),
	    "t.yaml:1:8: peers must be a list (lines starting with \"- \"), "
	    "found a mapping", "peers must be a list");
	is_str(first_error("listen:\n  dicom: { port: 70000 }\n"),
	    "t.yaml:2:18: listen.dicom.port \"70000\" is not a port; "
	    "expected 0 (any free port) to 65535", "port range");
	is_str(first_error(""), "t.yaml: the file holds no settings; "
	    "expected a mapping with node:, listen:, peers: ... (see "
	    "conf/vnamigd.yaml)", "empty file");
	is_str(first_error("a: &x [1]\nb: *x\n"),
	    "t.yaml:2:4: YAML alias *x is not supported; write the value "
	    "out", "aliases refused");
	is_str(first_error("node: {ae_title: \"A\\0B\"}\n"),
	    "t.yaml:1:18: node.ae_title holds a NUL byte; expected a single "
	    "value", "NUL byte in a value");

	/* a required key given without a value has no default to keep
	 * (it was taken as given, and left NULL for later lookups) */
	is_str(first_error("peers:\n  - name:\n    ae_title: A\n"
	    "    host: h\n    port: 1\n    role: source\n"),
	    "t.yaml:2:5: peers[0].name is empty; it is required: give it a "
	    "value", "a required key left empty is refused");
	is_str(first_error("hl7:\n  catch_all: x\n  senders:\n"
	    "    - name:\n      app: foo\n"),
	    "t.yaml:4:7: hl7.senders[0].name is empty; it is required: give "
	    "it a value", "  an HL7 sender's name too (catch_all checked "
	    "without it)");
	is_str(first_error("api:\n  webhooks:\n    - channel:\n"
	    "      hmac_secret: 0123456789abcdef0123\n"),
	    "t.yaml:3:7: api.webhooks[0].channel is empty; it is required: "
	    "give it a value", "  a webhook's channel too");
	is_str(first_error("api:\n  webhooks:\n    - channel: ris\n"
	    "      hmac_secret: \"0123456789abcdef\\0tail-of-the-secret\"\n"),
	    "t.yaml:4:20: api.webhooks[0].hmac_secret must be text of at "
	    "least 16 characters, without NUL bytes (a long random secret "
	    "shared with the sender)", "an HMAC secret with a NUL byte is "
	    "refused (its length was the whole value's)");
	is_str(first_error("api:\n  webhooks:\n    - channel: ris\n"
	    "      hmac_secret: 0123456789abcdef0123\n"
	    "      allow: [\"10.0.0.1\\0junk\"]\n"),
	    "t.yaml:5:15: api.webhooks[0].allow[0] \"10.0.0.1\" is not an "
	    "address; expected e.g. 127.0.0.1, 10.0.0.0/8 or ::1",
	    "an allowed address with a NUL byte is refused");

	/* Depth bomb: far deeper than any config. */
	memset(big, '[', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	is_str(first_error(big), "t.yaml:1:33: nesting deeper than 32 "
	    "levels; the configuration has at most a few",
	    "nesting depth bounded");
}

static void
on_diff(const char *path, const char *o, const char *n, int restart,
    void *arg)
{
	char *acc = arg;
	size_t len = strlen(acc);

	snprintf(acc + len, 1024 - len, "%s %s->%s %d;", path, o ? o : "-",
	    n ? n : "-", restart);
}

static void
t_dump_diff(void)
{
	char *e1, *e2, acc[1024] = "";
	struct conf *a = load("node: { ae_title: A }\nlogging: { level: info }\n"
	    "peers:\n  - { name: p, ae_title: P, host: h, port: 1, role: source }\n",
	    &e1);
	struct conf *b = load("node: { ae_title: B }\nlogging: { level: warn }\n",
	    &e2);
	char *d;
	size_t n;

	if (!ok(a != NULL && b != NULL, "two configs load")) {
		free(e1);
		free(e2);
		conf_free(a);
		conf_free(b);
		return;
	}
	d = conf_dump(a);
	ok(strstr(d, "node.ae_title = A\n") != NULL, "dump has node.ae_title");
	ok(strstr(d, "peers.p.window = always\n") != NULL, "dump shows defaults");
	ok(strstr(d, "listen.http.enabled = false\n") != NULL, "dump: absent listener");
	free(d);
	n = conf_diff(a, a, on_diff, acc);
	is_int(n, 0, "a config does not differ from itself");
	n = conf_diff(a, b, on_diff, acc);
	ok(strstr(acc, "node.ae_title A->B 1;") != NULL, "ae_title change needs restart");
	ok(strstr(acc, "logging.level info->warn 0;") != NULL, "log level applies live");
	ok(strstr(acc, "peers.p.host h->- 0;") != NULL, "removed peer reported");
	ok(n > 3, "diff counts every change (%zu)", n);
	conf_free(a);
	conf_free(b);
}

int
main(void)
{
	t_contract();
	t_typed();
	t_errors();
	t_dump_diff();
	return done_testing();
}
