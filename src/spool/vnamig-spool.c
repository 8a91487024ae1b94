/*
 * vnamig-spool — look into vnamigd's spool: list the instances received,
 * copy one (or all) out as Part 10 files, re-hash them. Reads the state
 * read-only, so it runs beside a running daemon.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "conf/conf.h"
#include "src/util/hex.h"
#include "src/util/progress.h"
#include "src/util/log.h"
#include "store/spool.h"
#include "store/store.h"

#define DEFAULT_CONFIG SYSCONFDIR "/vnamigd.yaml"
#define PROG "vnamig-spool"

enum { EXIT_OK = 0, EXIT_BAD = 1, EXIT_USAGE = 2, EXIT_OPEN = 3 };

static void
usage(FILE *f)
{
	fprintf(f,
"NAME\n"
"    vnamig-spool - list, copy out and re-hash the instances vnamigd\n"
"    received\n"
"\n"
"SYNOPSIS\n"
"    vnamig-spool [-c FILE] list [--json]\n"
"    vnamig-spool [-c FILE] get SOP_INSTANCE_UID [-o FILE]\n"
"    vnamig-spool [-c FILE] export DIR\n"
"    vnamig-spool [-c FILE] verify\n"
"    vnamig-spool --version | --help\n"
"\n"
"DESCRIPTION\n"
"    Every instance vnamigd receives by C-STORE is appended, as the Part\n"
"    10 file it makes of it (file meta + the dataset exactly as\n"
"    received), to a segment file in storage.spool_dir, and indexed in\n"
"    the state (node.data_dir/db) with the SHA-256 of its dataset bytes,\n"
"    its canonical and pixel digests, before its C-STORE response is\n"
"    sent. vnamig-spool reads that index read-only: it can run while\n"
"    vnamigd runs, and sees every instance acknowledged before it\n"
"    started (and those whose bytes were still being synced then: a\n"
"    running vnamigd indexes an instance while it syncs its bytes).\n"
"\n"
"COMMANDS\n"
"    list [--json]\n"
"        One line per instance: SOP Instance UID, SOP Class UID,\n"
"        transfer syntax, bytes, segment:offset, SHA-256. --json: one\n"
"        JSON object per line with the digests too.\n"
"    get UID [-o FILE]\n"
"        The Part 10 file of the newest copy of UID to FILE (default\n"
"        standard output), re-hashed on the way.\n"
"    export DIR\n"
"        Every instance as DIR/<SOPInstanceUID>.dcm (UIDs were validated\n"
"        when received), each re-hashed.\n"
"    verify\n"
"        Re-hash every instance in the spool against its index.\n"
"    export and verify show their progress on standard error when it is\n"
"    a terminal.\n"
"\n"
"OPTIONS\n"
"    -c, --config FILE\n"
"        vnamigd's configuration (default %s): node.data_dir and\n"
"        storage.spool_dir are read from it.\n"
"    -o FILE\n"
"        With get: write to FILE.\n"
"\n"
"EXIT STATUS\n"
"    0 done (verify, get, export: every hash matched); 1 an instance's\n"
"    bytes do not match its recorded SHA-256, or get found no such\n"
"    instance; 2 bad command line; 3 the state or a segment cannot be\n"
"    read.\n"
"\n"
"EXAMPLES\n"
"    vnamig-spool -c /etc/vnamigd.yaml list | wc -l\n"
"    vnamig-spool -c /etc/vnamigd.yaml get 1.2.3.4 -o /tmp/1.2.3.4.dcm\n"
"\n"
"SEE ALSO\n"
"    vnamigd(8), vnamig-verify(1), store/spool.h in the sources\n",
	    DEFAULT_CONFIG);
}

struct ctx {
	const char	*spool_dir;
	const char	*out_dir;
	int		 json;
	int		 mode;		/* 'l' list, 'e' export, 'v' verify */
	unsigned long	 n, bad, unreadable;
	struct progress	 prog;		/* verify, export: on a terminal */
};

static void
print_json(const struct spool_info *in)
{
	char sha[65], canon[65], pix[65], seg[17];
	json_t *j;
	char *s;

	hex_encode(in->sha256, 32, sha);
	hex_encode(in->canonical, 32, canon);
	hex_encode(in->pixel, 32, pix);
	snprintf(seg, sizeof(seg), "%016llx", (unsigned long long)in->seg);
	j = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:s}",
	    "sop_instance", in->sop_instance, "sop_class", in->sop_class,
	    "transfer_syntax", in->ts_uid, "bytes",
	    (json_int_t)(in->len - SPOOL_HDR), "segment", seg, "offset",
	    (json_int_t)in->off, "dataset_offset",
	    (json_int_t)(in->data_off - SPOOL_HDR), "sha256", sha);
	if (in->digest_ok) {
		json_object_set_new(j, "canonical", json_string(canon));
		if (in->has_pixels)
			json_object_set_new(j, "pixel", json_string(pix));
	}
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	puts(s);
	free(s);
	json_decref(j);
}

static int
each(void *arg, const struct spool_info *in)
{
	struct ctx *x = arg;
	char sha[65], err[600], path[4096];
	FILE *f = NULL;
	int r;

	x->n++;
	switch (x->mode) {
	case 'l':
		if (x->json)
			print_json(in);
		else {
			hex_encode(in->sha256, 32, sha);
			printf("%s %s %s %llu %016llx:%llu %s\n",
			    in->sop_instance, in->sop_class, in->ts_uid,
			    (unsigned long long)(in->len - SPOOL_HDR),
			    (unsigned long long)in->seg,
			    (unsigned long long)in->off, sha);
		}
		return 0;
	case 'e':
		snprintf(path, sizeof(path), "%s/%s.dcm", x->out_dir,
		    in->sop_instance);
		if ((f = fopen(path, "we")) == NULL) {
			progress_clear(&x->prog);
			fprintf(stderr, PROG ": %s: %s\n", path,
			    strerror(errno));
			x->unreadable++;
			return 1;
		}
		break;
	default:
		break;
	}
	r = spool_read(x->spool_dir, in, f, err, sizeof(err));
	if (r != 0)
		progress_clear(&x->prog);	/* what follows says why */
	if (f != NULL && fclose(f) != 0 && r == 0) {
		progress_clear(&x->prog);
		fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
		r = -1;
	}
	if (r > 0) {
		fprintf(stderr, PROG ": MISMATCH %s\n", err);
		x->bad++;
	} else if (r < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		x->unreadable++;
	}
	progress_add(&x->prog, 1, in->len);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = DEFAULT_CONFIG, *out = NULL, *cmd;
	struct store_opts so = { 0 };
	struct ctx x = { 0 };
	struct store *st;
	struct conf *c;
	char *errs, dir[4096], err[1024];
	int ch, rc = EXIT_OK;

	while ((ch = getopt_long(argc, argv, "+c:o:jVh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'o': out = optarg; break;
		case 'j': x.json = 1; break;
		case 'V': printf(PROG " %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr, PROG ": see " PROG " --help\n");
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, PROG ": a command is needed (list, get, export, "
		    "verify); see " PROG " --help\n");
		return EXIT_USAGE;
	}
	cmd = argv[optind++];
	/* options may also follow the command */
	const char *arg = NULL;
	int nargs = 0;

	for (int i = optind; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			x.json = 1;
		else if (argv[i][0] == '-') {
			fprintf(stderr, PROG ": unknown option %s; see " PROG
			    " --help\n", argv[i]);
			return EXIT_USAGE;
		} else {
			arg = argv[i];
			nargs++;
		}
	}
	if (!((strcmp(cmd, "list") == 0 && nargs == 0) ||
	    (strcmp(cmd, "verify") == 0 && nargs == 0) ||
	    (strcmp(cmd, "get") == 0 && nargs == 1) ||
	    (strcmp(cmd, "export") == 0 && nargs == 1))) {
		fprintf(stderr, PROG ": bad command line; see " PROG
		    " --help\n");
		return EXIT_USAGE;
	}
	if ((c = conf_load_file(path, &errs)) == NULL) {
		fputs(errs, stderr);
		free(errs);
		return EXIT_OPEN;
	}
	log_setup(LOG_LVL_ERROR, 0, PROG, 0);
	snprintf(dir, sizeof(dir), "%s/db", c->node.data_dir);
	so.dir = dir;
	so.readonly = 1;
	so.block_cache = 8 << 20;
	if ((st = store_open(&so, err, sizeof(err))) == NULL) {
		fprintf(stderr, PROG ": %s\n", err);
		conf_free(c);
		return EXIT_OPEN;
	}
	x.spool_dir = c->storage.spool_dir;
	if (strcmp(cmd, "get") == 0) {
		struct spool_info in;
		FILE *f = stdout;
		int r = spool_lookup(NULL, st, arg, &in);

		if (r <= 0) {
			fprintf(stderr, PROG ": %s: %s\n", arg,
			    r < 0 ? "cannot read the index" : "not in the "
			    "spool");
			rc = r < 0 ? EXIT_OPEN : EXIT_BAD;
		} else if (out != NULL && (f = fopen(out, "we")) == NULL) {
			fprintf(stderr, PROG ": %s: %s\n", out,
			    strerror(errno));
			rc = EXIT_OPEN;
		} else {
			r = spool_read(x.spool_dir, &in, f, err, sizeof(err));
			if ((f != stdout && fclose(f) != 0) ||
			    (f == stdout && fflush(f) != 0))
				r = -1;
			if (r != 0)
				fprintf(stderr, PROG ": %s%s\n", r > 0 ?
				    "MISMATCH " : "", err);
			rc = r > 0 ? EXIT_BAD : r < 0 ? EXIT_OPEN : EXIT_OK;
		}
	} else {
		x.mode = cmd[0] == 'l' ? 'l' : cmd[0] == 'e' ? 'e' : 'v';
		if (x.mode == 'e') {
			x.out_dir = arg;
			if (mkdir(x.out_dir, 0750) < 0 && errno != EEXIST) {
				fprintf(stderr, PROG ": %s: %s\n", x.out_dir,
				    strerror(errno));
				rc = EXIT_OPEN;
			}
		}
		if (x.mode != 'l')
			progress_init(&x.prog, 0, "instances");
		if (rc == EXIT_OK && spool_scan(st, each, &x) < 0) {
			progress_clear(&x.prog);
			fprintf(stderr, PROG ": cannot read the index\n");
			rc = EXIT_OPEN;
		}
		progress_end(&x.prog);
		if (x.mode != 'l')
			fprintf(stderr, PROG ": %lu instances, %lu mismatched, "
			    "%lu unreadable\n", x.n, x.bad, x.unreadable);
		if (rc == EXIT_OK)
			rc = x.bad ? EXIT_BAD : x.unreadable ? EXIT_OPEN :
			    EXIT_OK;
	}
	store_close(st);
	conf_free(c);
	return rc;
}
