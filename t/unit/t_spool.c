/*
 * t_spool.c — the spool on real files with a real store: records hold the
 * Part 10 file as received with the source hash and both digests, the
 * index finds them, an abort leaves nothing, recovery after a crash cuts
 * partial tails and reports orphans, released segments are reclaimed.
 */
#include "config.h"

#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "dimse/ds_digest.h"
#include "dimse/ds_parse.h"
#include "src/util/log.h"
#include "store/spool.h"
#include "store/store.h"
#include "store/store_key.h"
#include "t/unit/tap.h"

#define CT "/usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm"
#define CT_CLASS "1.2.840.10008.5.1.4.1.1.2"
#define TS_EXPL "1.2.840.10008.1.2.1"

static char tmp[256];
static uint8_t *file;
static size_t file_len, ds_off;

static int
load_ct(void)
{
	FILE *f = fopen(CT, "rb");
	size_t i;

	if (f == NULL)
		return -1;
	file = malloc(1 << 20);
	file_len = fread(file, 1, 1 << 20, f);
	fclose(f);
	/* the dataset follows group 0002 (explicit LE) */
	for (i = 132; i + 8 <= file_len && file[i] == 2 && file[i + 1] == 0; ) {
		const uint8_t *v = file + i + 4;

		if ((v[0] == 'O' && v[1] == 'B') || (v[0] == 'U' && v[1] == 'N'))
			i += 12 + (size_t)(file[i + 8] | file[i + 9] << 8 |
			    file[i + 10] << 16 | (size_t)file[i + 11] << 24);
		else
			i += 8 + (size_t)(file[i + 6] | file[i + 7] << 8);
	}
	ds_off = i;
	return 0;
}

static void
dir_q(char *buf, size_t n)
{
	snprintf(buf, n, "%s/quarantine", tmp);
}

static const char *
spool_dir(void)
{
	static char d[300];

	snprintf(d, sizeof(d), "%s/spool", tmp);
	return d;
}

static struct store *
open_store(void)
{
	struct store_opts o = { 0 };
	char dir[300], err[512];
	struct store *st;

	snprintf(dir, sizeof(dir), "%s/db", tmp);
	o.dir = dir;
	o.block_cache = 8 << 20;
	if ((st = store_open(&o, err, sizeof(err))) == NULL)
		diag("store_open: %s", err);
	return st;
}

static struct spool *
open_spool(struct store *st, uint64_t seg, struct spool_recovery *rec)
{
	char dir[300], err[512];
	struct spool *sp;

	snprintf(dir, sizeof(dir), "%s/spool", tmp);
	if ((sp = spool_open(dir, seg, err, sizeof(err))) == NULL ||
	    spool_recover(sp, st, rec, err, sizeof(err)) < 0) {
		diag("spool: %s", err);
		spool_close(sp);
	}
	return sp;
}

/* One record of the CT's dataset under UID, in chunks of 1000 bytes. */
static struct spool_rec *
put_ct(struct spool *sp, const char *uid)
{
	char err[256];
	struct spool_rec *r = spool_begin(sp, CT_CLASS, uid, TS_EXPL, "ORIGIN_AE", err,
	    sizeof(err));

	if (r == NULL) {
		diag("spool_begin: %s", err);
		return NULL;
	}
	for (size_t o = ds_off; o < file_len; o += 1000) {
		size_t n = file_len - o < 1000 ? file_len - o : 1000;

		if (spool_write(r, file + o, n, err, sizeof(err)) < 0) {
			diag("spool_write: %s", err);
			spool_abort(r);
			return NULL;
		}
	}
	return r;
}

/* A record of N bytes of FILL under UID, in a syntax the spool does not
 * parse (its SHA-256 alone), written whole. */
static struct spool_rec *
put_bytes(struct spool *sp, const char *uid, size_t n, int fill)
{
	char err[256];
	struct spool_rec *r = spool_begin(sp, CT_CLASS, uid, "1.2.3.999", "ORIGIN_AE",
	    err, sizeof(err));
	uint8_t *b = malloc(n);

	if (r == NULL || b == NULL) {
		diag("spool_begin: %s", err);
		free(b);
		return r;
	}
	memset(b, fill, n);
	if (spool_write(r, b, n, err, sizeof(err)) < 0)
		diag("spool_write: %s", err);
	free(b);
	return r;
}

/* readable: whether a record reads back whole, matching its SHA-256 */
static int
readable(const struct spool_info *in, char *err, size_t errlen)
{
	FILE *f = fopen("/dev/null", "w");
	int r = f != NULL ? spool_read(spool_dir(), in, f, err, errlen) : -1;

	if (f != NULL)
		fclose(f);
	return r == 0;
}

/* A record larger than the in-memory limit, left unfinished: it spills to
 * a lane of its own and its bytes are on disk, partial. */
static void
big_partial(struct spool *sp)
{
	char err[256];
	struct spool_rec *r = spool_begin(sp, CT_CLASS, "1.2.3.4.77", TS_EXPL, "ORIGIN_AE",
	    err, sizeof(err));
	uint8_t *junk = calloc(1, 1 << 20);

	spool_write(r, file + ds_off, file_len - ds_off, err, sizeof(err));
	for (int i = 0; i < 2 && r != NULL && junk != NULL; i++)
		spool_write(r, junk, 1 << 20, err, sizeof(err));
	free(junk);
}

/* dir_bytes: the sizes of the regular files in dir, summed */
static uint64_t
dir_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t n = 0;

	while (d != NULL && (de = readdir(d)) != NULL) {
		char path[600];
		struct stat sb;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
			n += (uint64_t)sb.st_size;
	}
	if (d != NULL)
		closedir(d);
	return n;
}

static void
index_rec(struct store *st, struct spool *sp, const struct spool_info *in)
{
	struct store_batch *b = store_begin(st);

	spool_index(sp, b, in);
	store_end(b, NULL, NULL);
	store_drain(st);
}

static uint64_t
fsize(struct spool *sp, uint64_t seg)
{
	char path[512];
	struct stat sb;

	spool_seg_path(sp, seg, path, sizeof(path));
	return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : UINT64_MAX;
}

/* What a void hook (the daemon's: the leaf, the push queue rows) sees of
 * the other copies of the instance it is given: how many are indexed,
 * how many of those are durable. */
struct hooked {
	struct spool	*sp;
	struct store	*st;
	int		 calls, other, durable;
};
static struct hooked H;

static int
other_copy(void *arg, uint64_t seg, uint64_t off)
{
	struct spool_info si;

	(void)arg;
	H.other++;
	if (spool_get(H.st, seg, off, &si) == 1 &&
	    spool_durable(H.sp, seg, off + si.len))
		H.durable++;
	return 0;
}

static void
void_hook(void *arg, struct store_batch *b, const struct spool_info *in)
{
	(void)arg;
	(void)b;
	H.calls++;
	H.other = H.durable = 0;
	spool_each(H.st, in->sop_instance, other_copy, NULL);
}

/* zero_rec: a record's bytes never reached the disk */
static int
zero_rec(const struct spool_info *in)
{
	char path[512];
	uint8_t *z = calloc(1, in->len);
	int fd, r;

	snprintf(path, sizeof(path), "%s/%016llx.seg", spool_dir(),
	    (unsigned long long)in->seg);
	fd = open(path, O_WRONLY);
	r = fd >= 0 && z != NULL && pwrite(fd, z, in->len, (off_t)in->off) ==
	    (ssize_t)in->len ? 0 : -1;
	if (fd >= 0)
		close(fd);
	free(z);
	return r;
}

/* recover_hooked: the spool opened and recovered with void_hook. */
static struct spool *
recover_hooked(struct store *st, uint64_t segsz, struct spool_recovery *rc)
{
	char err[512];
	struct spool *sp = spool_open(spool_dir(), segsz, err, sizeof(err));

	memset(&H, 0, sizeof(H));
	H.sp = sp;
	H.st = st;
	if (sp == NULL)
		return NULL;
	spool_on_void(sp, void_hook, NULL);
	if (spool_recover(sp, st, rc, err, sizeof(err)) < 0) {
		diag("spool_recover: %s", err);
		spool_close(sp);
	}
	return sp;
}

/*
 * Synced marks across segments at recovery (a fresh state): orphans
 * taken back are durable; a voided record's hook sees a whole copy in a
 * segment checked after its own as durable, and a copy voided in the
 * same recovery as not; a segment whose file is gone with nothing past
 * its mark does not stop the start.
 */
static void
recovery_marks(void)
{
	struct spool_recovery rc;
	struct spool_info in, iv, iw, a, b2, c, got;
	struct spool_rec *r, *v, *w;
	struct store_batch *b;
	struct store *st;
	struct spool *sp;
	char path[512];
	uint64_t len;

	snprintf(tmp, sizeof(tmp), "%s/t_spool.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmp) == NULL || (st = open_store()) == NULL ||
	    (sp = open_spool(st, 1, &rc)) == NULL) {	/* a record each */
		ok(0, "a fresh spool opens");
		return;
	}
	/* an orphan: synced, its index unit never written */
	r = put_ct(sp, "1.2.3.4.300");
	spool_commit(&r, 1);
	in = *spool_rec_info(r);
	spool_done(r);
	spool_close(sp);
	sp = recover_hooked(st, 1, &rc);
	ok(sp != NULL && rc.orphans == 1 && spool_lookup(sp, st, "1.2.3.4.300",
	    &got) == 1 && spool_durable(sp, in.seg, in.off + in.len), "an "
	    "orphan taken back at recovery is durable (the engine takes it)");
	spool_recovery_free(&rc);

	/* V (lost) and W (whole), one instance, V's segment before W's */
	v = put_ct(sp, "1.2.3.4.400");
	w = put_ct(sp, "1.2.3.4.400");
	spool_finish(v);
	spool_finish(w);
	iv = *spool_index_early(v);
	iw = *spool_index_early(w);
	index_rec(st, sp, &iw);
	index_rec(st, sp, &iv);
	spool_abort(v);
	spool_abort(w);
	spool_close(sp);
	ok(iv.seg < iw.seg && zero_rec(&iv) == 0, "two copies indexed "
	    "early in two segments, the first one's bytes lost");
	sp = recover_hooked(st, 1, &rc);
	ok(sp != NULL && rc.voided == 1 && H.calls == 1 && H.durable == 1,
	    "  recovery voids it, and its hook sees the other copy durable "
	    "(%d of %d)", H.durable, H.other);
	ok(spool_lookup(sp, st, "1.2.3.4.400", &got) == 1 && got.seg == iw.seg,
	    "  the whole copy stays indexed");
	spool_recovery_free(&rc);

	/* V1, W1 in one segment, V2 (the same instance as V1) in the next;
	 * both V lost */
	r = put_ct(sp, "1.2.3.4.599");
	spool_finish(r);
	len = spool_rec_info(r)->len;
	spool_abort(r);
	spool_close(sp);
	sp = recover_hooked(st, 2 * len - 1, &rc);
	spool_recovery_free(&rc);
	v = put_ct(sp, "1.2.3.4.501");
	w = put_ct(sp, "1.2.3.4.502");
	r = put_ct(sp, "1.2.3.4.501");
	spool_finish(v);
	spool_finish(w);
	spool_finish(r);
	a = *spool_index_early(v);
	b2 = *spool_index_early(w);
	c = *spool_index_early(r);
	index_rec(st, sp, &a);
	index_rec(st, sp, &b2);
	index_rec(st, sp, &c);
	spool_abort(v);
	spool_abort(w);
	spool_abort(r);
	spool_close(sp);
	ok(a.seg == b2.seg && c.seg > a.seg && zero_rec(&a) == 0 &&
	    zero_rec(&c) == 0, "two copies of one instance lost in two "
	    "segments, a whole record after the first");
	sp = recover_hooked(st, 2 * len - 1, &rc);
	ok(sp != NULL && rc.voided == 2 && H.calls == 2 && H.durable == 0,
	    "  both voided; the second's hook does not take the first for a "
	    "durable copy (%d)", H.durable);
	is_int(spool_lookup(sp, st, "1.2.3.4.501", &got), 0, "  no copy of "
	    "it is indexed");
	spool_recovery_free(&rc);

	/* a record indexed early, released (its sync failed), its segment
	 * file deleted (reclaimed) before its row's delete was durable */
	r = put_ct(sp, "1.2.3.4.700");
	spool_finish(r);
	in = *spool_index_early(r);
	index_rec(st, sp, &in);
	b = store_begin(st);
	spool_release(sp, st, b, in.seg, in.off);
	store_end(b, NULL, NULL);
	store_drain(st);
	spool_abort(r);
	spool_seg_path(sp, in.seg, path, sizeof(path));
	spool_close(sp);
	ok(unlink(path) == 0, "a segment file deleted, its row left, nothing "
	    "indexed past its mark");
	sp = recover_hooked(st, 1 << 20, &rc);
	ok(sp != NULL, "  the spool recovers");
	spool_recovery_free(&rc);
	spool_close(sp);
	store_close(st);
}

int
main(void)
{
	struct store *st;
	struct spool *sp;
	struct spool_recovery rc;
	struct spool_rec *r, *r2;
	struct spool_info in, got, i3, i4, i5;
	uint8_t sha[32], canon[32], pixel[32];
	int has_pixels;
	char cmd[300];

	log_setup(LOG_LVL_ERROR, 0, "t_spool", 0);
	snprintf(tmp, sizeof(tmp), "%s/t_spool.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmp) == NULL || load_ct() < 0) {
		printf("1..0 # SKIP no temporary directory or no %s\n", CT);
		return 0;
	}
	/* the reference hashes, computed here from the file itself */
	{
		unsigned int ml = 32;
		struct ds_digest *d = ds_digest_new();
		struct ds_limits lim;
		struct ds_parser *p;

		EVP_Digest(file + ds_off, file_len - ds_off, sha, &ml,
		    EVP_sha256(), NULL);
		ds_limits_default(&lim);
		p = ds_parser_new_file(&lim, ds_digest_callbacks(), d);
		ds_parse_feed(p, file, file_len);
		ds_parse_finish(p);
		ds_digest_final(d, canon, pixel, &has_pixels);
		ds_parser_free(p);
		ds_digest_free(d);
	}

	st = open_store();
	sp = st ? open_spool(st, 1 << 20, &rc) : NULL;
	if (!ok(sp != NULL, "spool opens and recovers an empty directory"))
		return 1;
	ok(spool_begin(sp, CT_CLASS, "1.2.3/../4", TS_EXPL, "ORIGIN_AE", cmd,
	    sizeof(cmd)) == NULL && strstr(cmd, "invalid UID"),
	    "a record with an invalid UID is refused: %s", cmd);

	r = put_ct(sp, "1.2.3.4.1");
	spool_commit(&r, 1);
	is_int(spool_rec_status(r, NULL), 0, "a record commits");
	in = *spool_rec_info(r);
	spool_done(r);
	ok(memcmp(in.sha256, sha, 32) == 0, "its source hash is the SHA-256 "
	    "of the dataset bytes");
	ok(in.digest_ok && memcmp(in.canonical, canon, 32) == 0 &&
	    memcmp(in.pixel, pixel, 32) == 0 && in.has_pixels == has_pixels,
	    "its canonical and pixel digests are those of the file");
	is_int(in.off, 0, "the first record starts its segment");
	is_int(in.len, SPOOL_HDR + 132 + (in.data_off - SPOOL_HDR - 132) +
	    (file_len - ds_off), "its length is header + Part 10 file");
	{
		char path[512];
		uint8_t *buf = malloc(in.len);
		int fd;

		spool_seg_path(sp, in.seg, path, sizeof(path));
		fd = open(path, O_RDONLY);
		ok(fd >= 0 && pread(fd, buf, in.len, 0) == (ssize_t)in.len &&
		    memcmp(buf, "VNSPOOL\001", 8) == 0 &&
		    store_be64_get(buf + 8) == in.len &&
		    memcmp(buf + SPOOL_HDR + 128, "DICM", 4) == 0 &&
		    memcmp(buf + in.data_off, file + ds_off,
		    file_len - ds_off) == 0 && memcmp(buf + 24, sha, 32) == 0,
		    "on disk: the header, a Part 10 file and the dataset "
		    "byte for byte");
		close(fd);
		free(buf);
	}
	index_rec(st, sp, &in);
	ok(spool_lookup(sp, st, "1.2.3.4.1", &got) == 1 &&
	    got.seg == in.seg && got.off == in.off && got.len == in.len &&
	    memcmp(got.sha256, sha, 32) == 0 &&
	    strcmp(got.sop_class, CT_CLASS) == 0 &&
	    strcmp(got.ts_uid, TS_EXPL) == 0, "the index finds it by SOP "
	    "Instance UID with every field");
	is_int(spool_lookup(sp, st, "1.2.3.4.99", &got), 0,
	    "an unknown UID is not found");

	/* an abort leaves nothing: the next record takes its place */
	r = put_ct(sp, "1.2.3.4.2");
	spool_abort(r);
	r = put_ct(sp, "1.2.3.4.3");
	spool_commit(&r, 1);
	i3 = *spool_rec_info(r);
	spool_done(r);
	is_int(i3.off, in.len, "an aborted record leaves no bytes behind");
	index_rec(st, sp, &i3);

	/* two at once: two lanes, one group */
	r = put_ct(sp, "1.2.3.4.4");
	r2 = put_ct(sp, "1.2.3.4.5");
	{
		struct spool_rec *g[2] = { r, r2 };

		spool_commit(g, 2);
	}
	i4 = *spool_rec_info(r);
	i5 = *spool_rec_info(r2);
	ok(i4.seg == i5.seg && i5.off == i4.off + i4.len,
	    "small records completed together go one after the other into "
	    "the shared segment (one fdatasync for both)");
	index_rec(st, sp, &i4);
	index_rec(st, sp, &i5);
	spool_done(r);
	spool_done(r2);

	/* A crash: one record whole but never indexed, one half written,
	 * in a child that dies without cleaning up. */
	uint64_t seg0 = in.seg, end0 = i5.seg == seg0 ? i5.off + i5.len :
	    i3.off + i3.len;

	fflush(stdout);
	pid_t pid = fork();

	if (pid == 0) {
		r = put_ct(sp, "1.2.3.4.6");
		spool_commit(&r, 1);		/* durable, not indexed */
		spool_done(r);
		r = put_ct(sp, "1.2.3.4.7");	/* never committed */
		big_partial(sp);		/* on a lane of its own */
		_exit(fsize(sp, seg0) > end0 ? 0 : 1);
	}
	{
		int status = -1;

		waitpid(pid, &status, 0);
		ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "a crashed writer left more in the segment than its index "
		    "says");
	}
	spool_close(sp);
	store_close(st);

	st = open_store();
	sp = st ? open_spool(st, 1 << 20, &rc) : NULL;
	if (!ok(sp != NULL, "after the crash the spool recovers"))
		return 1;
	is_int(rc.orphans, 1, "the whole record that was never indexed is "
	    "reported as an orphan");
	ok(rc.cut_bytes > 0, "the partial record is cut (%llu bytes)",
	    (unsigned long long)rc.cut_bytes);
	is_int(fsize(sp, seg0), end0 + in.len, "the segment ends after the "
	    "orphan");
	is_int(rc.records, 5, "the four indexed records and the orphan are "
	    "there");
	ok(rc.reclaimed >= 1, "the segment of the big partial record, holding "
	    "nothing indexed, is deleted");
	is_int(rc.damaged, 0, "nothing indexed is missing");
	ok(spool_lookup(sp, st, "1.2.3.4.3", &got) == 1, "an indexed record "
	    "survives the crash");
	ok(spool_lookup(sp, st, "1.2.3.4.6", &got) == 1 && got.off == end0 &&
	    memcmp(got.sha256, sha, 32) == 0 && got.digest_ok &&
	    memcmp(got.canonical, canon, 32) == 0, "the orphan is indexed "
	    "again, re-hashed, with its digests (never dropped: it may have "
	    "been acknowledged before a restore)");
	is_str(got.origin_ae, "ORIGIN_AE", "  with the AE title that sent it "
	    "(from its file meta: a source's copy is never taken for a "
	    "target's)");
	is_int(spool_lookup(sp, st, "1.2.3.4.7", &got), 0, "the partial "
	    "record is not");

	/* new records go to a new segment; old ones are sealed */
	r = put_ct(sp, "1.2.3.4.8");
	spool_commit(&r, 1);
	ok(spool_rec_info(r)->seg > seg0, "after recovery, writing starts "
	    "a new segment");
	index_rec(st, sp, spool_rec_info(r));
	spool_done(r);

	/* release everything in the first segment: it is reclaimed */
	{
		struct store_batch *b = store_begin(st);

		is_int(spool_release(sp, st, b, seg0, 0), 1, "release one");
		is_int(spool_release(sp, st, b, seg0, i3.off), 1,
		    "release another");
		if (i4.seg == seg0)
			spool_release(sp, st, b, seg0, i4.off);
		if (i5.seg == seg0)
			spool_release(sp, st, b, seg0, i5.off);
		spool_release(sp, st, b, seg0, end0);	/* the orphan */
		store_end(b, NULL, NULL);
		store_drain(st);
	}
	is_int(spool_reclaim(sp, st), 1, "the emptied, sealed segment is "
	    "reclaimed");
	store_drain(st);
	is_int(fsize(sp, seg0), UINT64_MAX, "its file is gone");
	is_int(spool_lookup(sp, st, "1.2.3.4.1", &got), 0, "a released "
	    "record is no longer in the index");
	ok(spool_lookup(sp, st, "1.2.3.4.8", &got) == 1, "others stay");

	/* quarantine: a compressed copy, then out of the spool */
	{
		struct spool_info q;
		char qdir[300], qfile[600], e[512];
		char *mem = NULL;
		size_t memlen = 0;
		FILE *mf = open_memstream(&mem, &memlen);
		struct store_batch *b;

		r = put_ct(sp, "1.2.3.4.9");
		spool_commit(&r, 1);
		q = *spool_rec_info(r);
		index_rec(st, sp, &q);
		spool_done(r);
		dir_q(qdir, sizeof(qdir));
		spool_read(spool_dir(), &q, mf, e, sizeof(e));
		fclose(mf);
		b = store_begin(st);
		is_int(spool_quarantine(sp, st, b, q.seg, q.off,
		    "verify_mismatch", qdir, e, sizeof(e)), 0,
		    "a record is quarantined");
		store_end(b, NULL, NULL);
		store_drain(st);
		snprintf(qfile, sizeof(qfile), "%s/1.2.3.4.9-%016llx-%llu.dcm.zst",
		    qdir, (unsigned long long)q.seg,
		    (unsigned long long)q.off);
		{
			FILE *f = fopen(qfile, "rb");
			uint8_t *zb = malloc(1 << 20), *out = malloc(1 << 20);
			size_t zn = f ? fread(zb, 1, 1 << 20, f) : 0;
			size_t on = ZSTD_decompress(out, 1 << 20, zb, zn);

			ok(f != NULL && !ZSTD_isError(on) && on == memlen &&
			    memcmp(out, mem, on) == 0, "its copy is the Part 10 "
			    "file, zstd-compressed (%zu -> %zu bytes)", memlen,
			    zn);
			if (f != NULL)
				fclose(f);
			free(zb);
			free(out);
		}
		is_int(spool_lookup(sp, st, "1.2.3.4.9", &got), 0,
		    "and it is out of the spool");
		free(mem);
	}

	/* A record whose Pixel Data header declares more than the in-memory
	 * limit goes to a lane of its own as soon as that header has passed,
	 * its bytes on disk while the rest is still to come. */
	{
		static const uint8_t head[] = {
			0x08, 0x00, 0x60, 0x00, 'C', 'S', 2, 0, 'C', 'T',
			0xe0, 0x7f, 0x10, 0x00, 'O', 'W', 0, 0,
			0x00, 0x00, 0x20, 0x00,	/* 2 MiB */
		};
		char err[256];
		uint8_t *px = calloc(1, 4096);
		struct spool_rec *rb = spool_begin(sp, CT_CLASS, "1.2.3.4.78",
		    TS_EXPL, NULL, err, sizeof(err));
		uint64_t before = dir_bytes(spool_dir()), after;

		if (rb != NULL && px != NULL && spool_write(rb, head,
		    sizeof(head), err, sizeof(err)) == 0)
			spool_write(rb, px, 4096, err, sizeof(err));
		after = dir_bytes(spool_dir());
		ok(rb != NULL && after >= before + sizeof(head) + 4096,
		    "a record declaring 2 MiB of pixel data is on disk after its "
		    "first 4 KiB (%llu bytes more in the spool directory)",
		    (unsigned long long)(after - before));
		spool_abort(rb);
		free(px);
	}

	/* written in small and odd pieces: the source hash and the pixel
	 * digest, taken in one pass (ds_digest_feed), are still those of the
	 * file, and the header carries the same SHA-256 */
	{
		struct spool_rec *rh;
		struct spool_info ih;
		uint8_t hb[SPOOL_HDR];
		char path[512];
		size_t o = ds_off, k = 1;
		int fd, wrc = 0;

		rh = spool_begin(sp, CT_CLASS, "1.2.3.4.83", TS_EXPL, "ORIGIN_AE", cmd,
		    sizeof(cmd));
		while (rh != NULL && o < file_len && wrc == 0) {
			size_t n = k < file_len - o ? k : file_len - o;

			wrc = spool_write(rh, file + o, n, cmd, sizeof(cmd));
			o += n;
			k = k * 7 % 3001 + 1;
		}
		spool_commit(&rh, 1);
		ih = *spool_rec_info(rh);
		spool_seg_path(sp, ih.seg, path, sizeof(path));
		fd = open(path, O_RDONLY);
		ok(wrc == 0 && spool_rec_status(rh, NULL) == 0 &&
		    memcmp(ih.sha256, sha, 32) == 0 && ih.digest_ok &&
		    memcmp(ih.canonical, canon, 32) == 0 &&
		    memcmp(ih.pixel, pixel, 32) == 0 && fd >= 0 &&
		    pread(fd, hb, sizeof(hb), (off_t)ih.off) ==
		    (ssize_t)sizeof(hb) && memcmp(hb + 24, sha, 32) == 0,
		    "a record written in pieces of 1 to 3001 bytes has the "
		    "file's SHA-256 (in its header too) and digests");
		if (fd >= 0)
			close(fd);
		spool_done(rh);
	}

	/* hashes taken outside the spool (the sink does, on the loop) */
	{
		struct spool_hasher *h = spool_hasher_new(TS_EXPL);
		struct spool_hashes hs, hu;
		struct spool_rec *ro;
		struct spool_info io;
		const char *e = "";
		uint8_t hb[SPOOL_HDR];
		char path[512];
		int fd, wrc = 0;

		for (size_t o = ds_off; o < file_len; o += 777)
			spool_hasher_feed(h, file + o, file_len - o < 777 ?
			    file_len - o : 777);
		spool_hasher_final(h, &hs);
		spool_hasher_free(h);
		ok(h == NULL && memcmp(hs.sha256, sha, 32) == 0 &&
		    hs.digest_ok && memcmp(hs.canonical, canon, 32) == 0 &&
		    memcmp(hs.pixel, pixel, 32) == 0 &&
		    hs.has_pixels == has_pixels, "a hasher fed in pieces of "
		    "777 bytes gives the file's SHA-256 and digests");

		h = spool_hasher_new("1.2.3.4.5.6");	/* unknown syntax */
		spool_hasher_feed(h, file + ds_off, file_len - ds_off);
		spool_hasher_final(h, &hu);
		spool_hasher_free(h);
		ok(memcmp(hu.sha256, sha, 32) == 0 && !hu.digest_ok &&
		    memcmp(hu.canonical, (uint8_t[32]){ 0 }, 32) == 0,
		    "for a syntax it cannot parse, the SHA-256 alone");

		ro = spool_begin(sp, CT_CLASS, "1.2.3.4.21", TS_EXPL, "ORIGIN_AE", cmd,
		    sizeof(cmd));
		spool_rec_hash_outside(ro);
		for (size_t o = ds_off; o < file_len && wrc == 0; o += 1000)
			wrc = spool_write(ro, file + o, file_len - o < 1000 ?
			    file_len - o : 1000, cmd, sizeof(cmd));
		spool_rec_hashes(ro, &hs);
		spool_commit(&ro, 1);
		io = *spool_rec_info(ro);
		spool_seg_path(sp, io.seg, path, sizeof(path));
		fd = open(path, O_RDONLY);
		ok(wrc == 0 && spool_rec_status(ro, NULL) == 0 &&
		    memcmp(io.sha256, sha, 32) == 0 && io.digest_ok &&
		    memcmp(io.canonical, canon, 32) == 0 &&
		    memcmp(io.pixel, pixel, 32) == 0 && fd >= 0 &&
		    pread(fd, hb, sizeof(hb), (off_t)io.off) ==
		    (ssize_t)sizeof(hb) && memcmp(hb + 24, sha, 32) == 0,
		    "a record hashed outside has the hashes it was given (its "
		    "header too)");
		if (fd >= 0)
			close(fd);
		index_rec(st, sp, &io);
		spool_done(ro);

		ro = spool_begin(sp, CT_CLASS, "1.2.3.4.22", TS_EXPL, "ORIGIN_AE", cmd,
		    sizeof(cmd));
		spool_rec_hash_outside(ro);
		spool_write(ro, file + ds_off, file_len - ds_off, cmd,
		    sizeof(cmd));
		spool_commit(&ro, 1);
		wrc = spool_rec_status(ro, &e);
		ok(wrc < 0 && strstr(e, "never given"), "one never given its "
		    "hashes fails, saying so: %s", e);
		spool_done(ro);
	}
	/* ... and told how long it will be: a lane of its own at once */
	{
		static const uint8_t head[] = {
			0x08, 0x00, 0x60, 0x00, 'C', 'S', 2, 0, 'C', 'T',
			0xe0, 0x7f, 0x10, 0x00, 'O', 'W', 0, 0,
			0x00, 0x00, 0x20, 0x00,	/* 2 MiB */
		};
		struct spool_hasher *h = spool_hasher_new(TS_EXPL);
		uint8_t *px = calloc(1, 4096);
		struct spool_rec *rb = spool_begin(sp, CT_CLASS, "1.2.3.4.79",
		    TS_EXPL, NULL, cmd, sizeof(cmd));
		uint64_t before = dir_bytes(spool_dir()), after, end;

		spool_rec_hash_outside(rb);
		spool_hasher_feed(h, head, sizeof(head));
		spool_hasher_feed(h, px, 4096);
		end = spool_hasher_expect(h);
		is_int(end, sizeof(head) + (2u << 20), "a hasher knows the "
		    "dataset's least length once its Pixel Data header passed");
		spool_write(rb, head, sizeof(head), cmd, sizeof(cmd));
		spool_write(rb, px, 4096, cmd, sizeof(cmd));
		is_int(dir_bytes(spool_dir()), before, "a record hashed outside "
		    "and not told is still in memory");
		is_int(spool_rec_expect(rb, end, cmd, sizeof(cmd)), 0,
		    "spool_rec_expect takes it");
		after = dir_bytes(spool_dir());
		ok(after >= before + sizeof(head) + 4096, "told, it is on disk "
		    "at once (%llu bytes more in the spool directory)",
		    (unsigned long long)(after - before));
		spool_hasher_free(h);
		spool_abort(rb);
		free(px);
	}

	/* a missing segment file is reported as damage */
	{
		char path[512];

		spool_seg_path(sp, got.seg, path, sizeof(path));
		spool_close(sp);
		unlink(path);
		sp = open_spool(st, 1 << 20, &rc);
		ok(sp != NULL && rc.damaged > 0, "an indexed segment whose file "
		    "is gone is reported as damaged");
	}
	spool_close(sp);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		diag("could not remove %s", tmp);

	/* Fresh state, segments of 2 MiB. */
	snprintf(tmp, sizeof(tmp), "%s/t_spool.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmp) == NULL || (st = open_store()) == NULL ||
	    (sp = open_spool(st, 2u << 20, &rc)) == NULL) {
		ok(0, "a fresh spool opens");
		printf("1..%d\n", tap_n);
		return 1;
	}
	/* A record of a group that finds no room on the shared lane is undone
	 * there at once: the next record of the group, placed where it was
	 * to go, is not cut by its abort. */
	{
		struct spool_rec *c0, *g[2], *c;
		struct spool_info i0, ib, ic;
		struct rlimit rl, rl0;
		const char *e = "";
		char re[600];
		int sa, sb;

		c0 = put_bytes(sp, "1.2.3.4.30", 2000, 0x30);
		spool_commit(&c0, 1);
		i0 = *spool_rec_info(c0);
		index_rec(st, sp, &i0);
		spool_done(c0);
		g[0] = put_bytes(sp, "1.2.3.4.31", 600 << 10, 0x31);
		g[1] = put_bytes(sp, "1.2.3.4.32", 2000, 0x32);
		/* "the disk is full" 300 KiB past the shared lane's end */
		signal(SIGXFSZ, SIG_IGN);
		getrlimit(RLIMIT_FSIZE, &rl0);
		rl = rl0;
		rl.rlim_cur = i0.off + i0.len + (300 << 10);
		setrlimit(RLIMIT_FSIZE, &rl);
		spool_commit(g, 2);
		setrlimit(RLIMIT_FSIZE, &rl0);
		sa = spool_rec_status(g[0], &e);
		ok(sa < 0, "a buffered record that finds no room fails: %s", e);
		sb = spool_rec_status(g[1], NULL);
		ib = *spool_rec_info(g[1]);
		spool_done(g[0]);
		spool_done(g[1]);
		ok(sb == 0 && ib.seg == i0.seg && ib.off == i0.off + i0.len,
		    "the next record of its group goes where it was to go");
		index_rec(st, sp, &ib);
		re[0] = '\0';
		ok(readable(&ib, re, sizeof(re)), "and is still there, whole, "
		    "after the failed one's abort %s", re);
		c = put_bytes(sp, "1.2.3.4.33", 2000, 0x33);
		spool_commit(&c, 1);
		ic = *spool_rec_info(c);
		index_rec(st, sp, &ic);
		spool_done(c);
		ok(ic.seg != ib.seg || ic.off >= ib.off + ib.len,
		    "a later record goes after it, not over it");
	}
	/* A segment is not reclaimed while a record it holds is synced but
	 * not yet indexed (the loop indexes it a moment later). */
	{
		struct spool_rec *big = put_bytes(sp, "1.2.3.4.40", 3u << 20,
		    0x40);
		struct spool_info ig;
		char path[512], re[600];
		struct stat sb;
		struct store_batch *b;

		spool_commit(&big, 1);
		ig = *spool_rec_info(big);
		is_int(spool_rec_status(big, NULL), 0, "a record bigger than a "
		    "segment commits, and fills it");
		spool_done(big);
		spool_seg_path(sp, ig.seg, path, sizeof(path));
		is_int(spool_reclaim(sp, st), 0, "its full segment is not "
		    "reclaimed before the record is indexed");
		store_drain(st);
		index_rec(st, sp, &ig);
		re[0] = '\0';
		ok(stat(path, &sb) == 0 && readable(&ig, re, sizeof(re)),
		    "the record is there once indexed %s", re);
		b = store_begin(st);
		is_int(spool_release(sp, st, b, ig.seg, ig.off), 1,
		    "released");
		store_end(b, NULL, NULL);
		store_drain(st);
		is_int(spool_reclaim(sp, st), 1, "then its segment is "
		    "reclaimed");
		store_drain(st);
		ok(stat(path, &sb) < 0, "and its file is gone");
	}
	/* A segment is reclaimed by what is durable: not while the unit
	 * that releases its last record is on its way, nor after that unit
	 * failed (the store resets the counts from the segments' rows). */
	{
		struct spool_rec *big = put_bytes(sp, "1.2.3.4.41", 3u << 20,
		    0x41);
		struct spool_info ig, il;
		char path[512], re[600];
		struct stat sb;
		struct store_batch *b;

		spool_commit(&big, 1);
		ig = *spool_rec_info(big);
		spool_done(big);
		index_rec(st, sp, &ig);
		spool_seg_path(sp, ig.seg, path, sizeof(path));
		b = store_begin(st);
		spool_release(sp, st, b, ig.seg, ig.off);
		store_fail(b, "t_spool: this unit fails");
		store_end(b, NULL, NULL);
		store_drain(st);
		is_int(store_state(st), STORE_FAILED, "a unit releasing a "
		    "segment's last record fails");
		store_tick(st);
		is_int(store_state(st), STORE_OK, "  the store reopens");
		is_int(spool_reclaim(sp, st), 0, "  the segment is not "
		    "reclaimed: its record is still indexed");
		re[0] = '\0';
		ok(stat(path, &sb) == 0 && spool_lookup(sp, st, "1.2.3.4.41",
		    &il) == 1 && readable(&ig, re, sizeof(re)), "  and still "
		    "there, whole %s", re);
		b = store_begin(st);
		spool_release(sp, st, b, ig.seg, ig.off);
		store_end(b, NULL, NULL);	/* not yet durable */
		is_int(spool_reclaim(sp, st), 0, "released in a unit not yet "
		    "durable: not reclaimed yet");
		ok(stat(path, &sb) == 0, "  its file is there");
		store_drain(st);
		is_int(spool_reclaim(sp, st), 1, "once the release is durable, "
		    "reclaimed");
		ok(stat(path, &sb) < 0, "  its file is gone");
	}
	/* Two units release one record before the first is durable (two
	 * studies sharing an instance end together): it is counted out of
	 * its segment once. A release whose unit failed can be made again.
	 * And a segment row that counts wrong (0, with records indexed) is
	 * recounted by recovery, not taken for empty. */
	{
		struct spool_rec *q1 = put_bytes(sp, "1.2.3.4.50", 2000, 0x50),
		    *q2 = put_bytes(sp, "1.2.3.4.51", 2000, 0x51);
		struct spool_rec *g[2] = { q1, q2 };
		struct spool_info i1, i2, il;
		struct spool_stats ss0, ss;
		struct store_batch *b;
		uint8_t k[9], v[16];
		char path[512], re[600];
		struct stat sb;

		spool_commit(g, 2);
		i1 = *spool_rec_info(q1);
		i2 = *spool_rec_info(q2);
		spool_done(q1);
		spool_done(q2);
		index_rec(st, sp, &i1);
		index_rec(st, sp, &i2);
		spool_stats(sp, &ss0);
		b = store_begin(st);
		is_int(spool_release(sp, st, b, i1.seg, i1.off), 1, "a release");
		store_end(b, NULL, NULL);
		b = store_begin(st);
		is_int(spool_release(sp, st, b, i1.seg, i1.off), 0, "  the same "
		    "record again, before that unit is durable: not again");
		store_end(b, NULL, NULL);
		store_drain(st);
		spool_stats(sp, &ss);
		is_int(ss.live_records, ss0.live_records - 1, "  it is counted "
		    "out once");
		b = store_begin(st);
		is_int(spool_release(sp, st, b, i2.seg, i2.off), 1, "a release "
		    "in a unit that fails");
		store_fail(b, "t_spool: this unit fails");
		store_end(b, NULL, NULL);
		store_drain(st);
		store_tick(st);
		b = store_begin(st);
		is_int(spool_release(sp, st, b, i2.seg, i2.off), 1, "  can be "
		    "made again");
		store_fail(b, "t_spool: this one too");
		store_end(b, NULL, NULL);
		store_drain(st);
		store_tick(st);
		is_int(store_state(st), STORE_OK, "  (the store is back)");

		/* its segment's row says 0, its record is indexed */
		k[0] = 's';
		for (int i = 0; i < 8; i++)
			k[1 + i] = (uint8_t)(i2.seg >> (56 - 8 * i));
		for (int i = 0; i < 8; i++) {
			v[i] = (uint8_t)((i2.off + i2.len) >> (56 - 8 * i));
			v[8 + i] = 0;
		}
		b = store_begin(st);
		store_put(b, STORE_CF_SPOOL, k, 9, v, 16);
		store_end(b, NULL, NULL);
		store_drain(st);
		spool_seg_path(sp, i2.seg, path, sizeof(path));
		spool_close(sp);
		sp = open_spool(st, 2u << 20, &rc);
		if (!ok(sp != NULL, "the spool opens again"))
			return 1;
		re[0] = '\0';
		ok(stat(path, &sb) == 0 && spool_lookup(sp, st, "1.2.3.4.51",
		    &il) == 1 && readable(&i2, re, sizeof(re)), "a segment "
		    "whose row counts 0 with a record indexed is kept, the "
		    "record whole %s", re);
		spool_stats(sp, &ss);
		ok(ss.live_records >= 1, "  and counted (%llu live)",
		    (unsigned long long)ss.live_records);
	}
	/* Indexed while synced (spool_index_early), then a crash before
	 * the sync: the first record's bytes reached the disk, the
	 * second's did not (zeroed here). Recovery re-hashes both (past
	 * the segment's synced mark), keeps the first, and takes the
	 * second out of the index. */
	{
		struct spool_rec *ea = put_ct(sp, "1.2.3.4.90");
		struct spool_rec *eb = put_ct(sp, "1.2.3.4.91");
		struct spool_info ia, ib;
		const struct spool_info *e1, *e2;
		char path[512];
		int fd;

		spool_finish(ea);
		spool_finish(eb);
		e1 = spool_index_early(ea);
		e2 = spool_index_early(eb);
		if (!ok(e1 != NULL && e2 != NULL && e1->seg == e2->seg,
		    "two records finished: indexed before their sync"))
			return 1;
		ia = *e1;
		ib = *e2;
		index_rec(st, sp, &ia);
		index_rec(st, sp, &ib);
		ok(!spool_durable(sp, ia.seg, ia.off + ia.len), "  not known "
		    "durable (spool_durable) before their sync");
		spool_abort(ea);	/* (finished: left as it is) */
		spool_abort(eb);
		spool_seg_path(sp, ib.seg, path, sizeof(path));
		spool_close(sp);
		store_close(st);
		{
			uint8_t *z = calloc(1, ib.len);

			fd = open(path, O_WRONLY);
			ok(fd >= 0 && z != NULL && pwrite(fd, z, ib.len,
			    (off_t)ib.off) == (ssize_t)ib.len, "a crash: the "
			    "second record's bytes never reached the disk");
			if (fd >= 0)
				close(fd);
			free(z);
		}
		st = open_store();
		sp = st ? open_spool(st, 2u << 20, &rc) : NULL;
		if (!ok(sp != NULL, "the spool recovers"))
			return 1;
		ok(rc.checked >= 2, "  re-hashing the records indexed past "
		    "the synced mark (%llu)", (unsigned long long)rc.checked);
		ok(rc.voided == 1 && rc.void_list != NULL &&
		    strcmp(rc.void_list[0].sop_instance, "1.2.3.4.91") == 0 &&
		    rc.void_list[0].off == ib.off, "  the one not whole is "
		    "voided (listed for its leaf)");
		ok(spool_lookup(sp, st, "1.2.3.4.90", &got) == 1 &&
		    got.off == ia.off, "  the whole one stays indexed");
		is_int(spool_lookup(sp, st, "1.2.3.4.91", &got), 0, "  the "
		    "voided one is not");
		is_int(fsize(sp, ib.seg), ib.off, "  the segment is cut after "
		    "the whole one");
		spool_recovery_free(&rc);
		spool_close(sp);
		sp = open_spool(st, 2u << 20, &rc);
		ok(sp != NULL && rc.checked == 0 && rc.voided == 0, "opened "
		    "again: nothing past a synced mark any more");
		spool_recovery_free(&rc);
		if (sp == NULL)
			return 1;

		/* one more indexed early, then its segment cannot be read
		 * at the restart (a directory where the file was): kept,
		 * reported damaged, never voided; readable again, it is
		 * re-hashed and kept */
		char moved[600];
		struct spool_rec *ec = put_ct(sp, "1.2.3.4.92");
		struct spool_info ic;

		spool_finish(ec);
		e1 = spool_index_early(ec);
		if (!ok(e1 != NULL, "a third record indexed before its sync"))
			return 1;
		ic = *e1;
		index_rec(st, sp, &ic);
		spool_abort(ec);
		spool_seg_path(sp, ic.seg, path, sizeof(path));
		spool_close(sp);
		snprintf(moved, sizeof(moved), "%s.away", path);
		ok(rename(path, moved) == 0 && mkdir(path, 0700) == 0, "its "
		    "segment cannot be opened (a directory in its place)");
		sp = open_spool(st, 2u << 20, &rc);
		ok(sp != NULL && rc.voided == 0 && rc.damaged > 0 &&
		    spool_lookup(sp, st, "1.2.3.4.92", &got) == 1, "  the "
		    "spool recovers: the record is kept indexed, reported "
		    "damaged, not voided");
		spool_recovery_free(&rc);
		spool_close(sp);
		ok(rmdir(path) == 0 && rename(moved, path) == 0, "the segment "
		    "is back");
		sp = open_spool(st, 2u << 20, &rc);
		ok(sp != NULL && rc.checked >= 1 && rc.voided == 0 &&
		    rc.damaged == 0 && spool_lookup(sp, st, "1.2.3.4.92",
		    &got) == 1, "  re-hashed at the next start, whole: kept");
		spool_recovery_free(&rc);
	}
	spool_close(sp);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		diag("could not remove %s", tmp);
	recovery_marks();
	free(file);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		diag("could not remove %s", tmp);
	printf("1..%d\n", tap_n);
	return tap_failed != 0;
}
