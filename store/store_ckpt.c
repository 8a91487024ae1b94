/*
 * store_ckpt.c — named checkpoints, backups and offline restores of the
 * whole state (see store_ckpt.h).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <rocksdb/c.h>

#include "src/util/fsutil.h"
#include "src/util/hex.h"
#include "src/util/log.h"
#include "store/audit.h"
#include "store/store.h"
#include "store/store_ckpt.h"
#include "store/store_key.h"

#define CKPT_DIR	"checkpoints"
#define META_AUDIT	"audit."	/* meta keys of the log (SCHEMA.md) */
#define XFER_BYTES	(4u << 20)	/* rows carried per durable unit */
#define BACKUP_META	"vnamig-backup-"

static const enum store_cf audit_cfs[] = {
	STORE_CF_AUDIT_LEAF, STORE_CF_AUDIT_NODE, STORE_CF_AUDIT_CKPT
};
#define N_AUDIT_CFS (sizeof(audit_cfs) / sizeof(audit_cfs[0]))

static const char *const reason_names[] = { "request", "schedule", "pause" };

const char *
store_ckpt_reason_name(enum store_ckpt_reason r)
{
	return (unsigned)r < 3 ? reason_names[r] : "?";
}

const char *
store_ckpt_status_name(enum store_ckpt_status s)
{
	switch (s) {
	case STORE_CKPT_OK:		return "ok";
	case STORE_CKPT_BADARG:		return "bad-argument";
	case STORE_CKPT_EXISTS:		return "exists";
	case STORE_CKPT_NOTFOUND:	return "not-found";
	case STORE_CKPT_FAILED:		return "failed";
	case STORE_CKPT_DAMAGED:	return "damaged";
	}
	return "?";
}

/* ---------------------------------------------------------------------- */
/* Small helpers: names, paths, time, files. */

int
store_ckpt_name_ok(const char *name, char *err, size_t errlen)
{
	size_t n = strlen(name);

	if (n == 0 || n > STORE_CKPT_NAME_MAX) {
		snprintf(err, errlen, "a checkpoint name has 1 to %d "
		    "characters (got %zu)", STORE_CKPT_NAME_MAX, n);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		    c == '-')) {
			snprintf(err, errlen, "checkpoint name \"%.64s\": "
			    "character %zu is not one of A-Z a-z 0-9 _ . -",
			    name, i + 1);
			return 0;
		}
	}
	if (name[0] == '.') {
		snprintf(err, errlen, "checkpoint name \"%s\" starts with "
		    "'.' (reserved)", name);
		return 0;
	}
	if ((n >= 5 && strcmp(name + n - 5, ".json") == 0) ||
	    (n >= 4 && strcmp(name + n - 4, ".tmp") == 0)) {
		snprintf(err, errlen, "checkpoint name \"%s\" ends in .json "
		    "or .tmp (reserved for the metadata and staging files)",
		    name);
		return 0;
	}
	return 1;
}

/* DIR/NAME SUFFIX into buf; -1 (with err) when it does not fit. */
static int
pathf(char *buf, size_t n, const char *dir, const char *name,
    const char *suffix, char *err, size_t errlen)
{
	int r = snprintf(buf, n, "%s/%s%s", dir, name, suffix);

	if (r < 0 || (size_t)r >= n) {
		snprintf(err, errlen, "path too long: %s/%s%s", dir, name,
		    suffix);
		return -1;
	}
	return 0;
}

/* RFC 3339 UTC: of SEC (and USEC when >= 0). */
static void
rfc3339(time_t sec, long usec, char out[40])
{
	struct tm tm;
	char s[24];

	gmtime_r(&sec, &tm);
	if (strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		s[0] = '\0';
	if (usec >= 0)
		snprintf(out, 40, "%.20s.%06ldZ", s, usec % 1000000);
	else
		snprintf(out, 40, "%.20sZ", s);
}

static void
rfc3339_now(char out[40])
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	rfc3339(ts.tv_sec, ts.tv_nsec / 1000, out);
}

static int
fsync_path(const char *path, int dir)
{
	int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) |
	    O_CLOEXEC);
	int r;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* Remove PATH and everything under it (symlinks not followed). */
static int
rm_tree(const char *path)
{
	struct stat sb;

	if (lstat(path, &sb) < 0)
		return errno == ENOENT ? 0 : -1;
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write TEXT to PATH whole and durably: PATH.tmp, fsync, rename, fsync
 * the directory. */
static int
write_file_durable(const char *path, const char *text, char *err,
    size_t errlen)
{
	char tmp[STORE_CKPT_PATH_MAX], dir[STORE_CKPT_PATH_MAX], *slash;
	size_t n = strlen(text), off = 0;
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >=
	    sizeof(tmp)) {
		snprintf(err, errlen, "path too long: %s", path);
		return -1;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0640)) < 0)
		goto fail;
	while (off < n) {
		ssize_t w = write(fd, text + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			goto fail;
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0) {
		close(fd);
		goto fail;
	}
	close(fd);
	if (rename(tmp, path) < 0)
		goto fail;
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		fsync_path(dir[0] ? dir : "/", 1);
	}
	return 0;
fail:
	snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	unlink(tmp);
	return -1;
}

static int
copy_file(const char *src, const char *dst, char *err, size_t errlen)
{
	char buf[65536];
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1;
	ssize_t r;

	if (in < 0) {
		snprintf(err, errlen, "cannot read %s: %s", src,
		    strerror(errno));
		return -1;
	}
	if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0640)) < 0)
		goto fail;
	while ((r = read(in, buf, sizeof(buf))) != 0) {
		char *p = buf;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "cannot read %s: %s", src,
			    strerror(errno));
			goto out;
		}
		while (r > 0) {
			ssize_t w = write(out, p, (size_t)r);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				goto fail;
			p += w;
			r -= w;
		}
	}
	if (fsync(out) < 0)
		goto fail;
	close(in);
	close(out);
	return 0;
fail:
	snprintf(err, errlen, "cannot write %s: %s", dst, strerror(errno));
out:
	close(in);
	if (out >= 0)
		close(out);
	return -1;
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/*
 * A private copy of the RocksDB directory SRC as DST (created): table
 * files (.sst, never changed once written) as hard links, everything
 * else (MANIFEST, CURRENT, OPTIONS, WAL) copied, because opening the
 * copy writes to those and SRC must stay as it is.
 */
static int
clone_db(const char *src, const char *dst, char *err, size_t errlen)
{
	char from[STORE_CKPT_PATH_MAX], to[STORE_CKPT_PATH_MAX];
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (mkdir(dst, 0750) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", dst,
		    strerror(errno));
		return -1;
	}
	if ((d = opendir(src)) == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", src,
		    strerror(errno));
		return -1;
	}
	while (r == 0 && (de = readdir(d)) != NULL) {
		struct stat sb;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (pathf(from, sizeof(from), src, de->d_name, "", err,
		    errlen) < 0 || pathf(to, sizeof(to), dst, de->d_name, "",
		    err, errlen) < 0) {
			r = -1;
			break;
		}
		if (lstat(from, &sb) < 0 || !S_ISREG(sb.st_mode))
			continue;
		if (ends_with(de->d_name, ".sst") && link(from, to) == 0)
			continue;
		r = copy_file(from, to, err, errlen);
	}
	closedir(d);
	if (r == 0 && fsync_path(dst, 1) < 0) {
		snprintf(err, errlen, "cannot sync %s: %s", dst,
		    strerror(errno));
		r = -1;
	}
	return r;
}

/* The regular files directly in DIR: their bytes, and those of files
 * linked elsewhere too. */
static void
dir_bytes(const char *dir, uint64_t *bytes, uint64_t *shared)
{
	char p[STORE_CKPT_PATH_MAX];
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat sb;

	*bytes = *shared = 0;
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, de->d_name) >=
		    sizeof(p) || lstat(p, &sb) < 0 || !S_ISREG(sb.st_mode))
			continue;
		*bytes += (uint64_t)sb.st_size;
		if (sb.st_nlink > 1)
			*shared += (uint64_t)sb.st_size;
	}
	closedir(d);
}

/* 1 when PATH holds a RocksDB database (its CURRENT file). */
static int
db_exists(const char *path)
{
	char p[STORE_CKPT_PATH_MAX];
	struct stat sb;

	return (size_t)snprintf(p, sizeof(p), "%s/CURRENT", path) <
	    sizeof(p) && stat(p, &sb) == 0;
}

/* 1 when the real path of PATH is DIR or under it; for a PATH not made
 * yet, when its nearest existing ancestor is. */
static int
path_inside(const char *path, const char *dir)
{
	char rp[PATH_MAX], rd[PATH_MAX], up[PATH_MAX], *slash;
	size_t n;

	if (realpath(dir, rd) == NULL ||
	    (size_t)snprintf(up, sizeof(up), "%s", path) >= sizeof(up))
		return 0;
	while (realpath(up, rp) == NULL) {
		if (errno != ENOENT || strcmp(up, ".") == 0 ||
		    strcmp(up, "/") == 0)
			return 0;
		if ((slash = strrchr(up, '/')) == NULL)
			snprintf(up, sizeof(up), ".");
		else
			*(slash == up ? slash + 1 : slash) = '\0';
	}
	n = strlen(rd);
	if (n == 1)	/* "/" */
		return 1;
	return strncmp(rp, rd, n) == 0 && (rp[n] == '/' || rp[n] == '\0');
}


/* ---------------------------------------------------------------------- */
/* Checkpoint metadata. */

static int
ckpt_paths(const char *data_dir, const char *name, char *dir, char *meta,
    char *err, size_t errlen)
{
	char base[STORE_CKPT_PATH_MAX];

	if (pathf(base, sizeof(base), data_dir, CKPT_DIR, "", err,
	    errlen) < 0 ||
	    pathf(dir, STORE_CKPT_PATH_MAX, base, name, "", err,
	    errlen) < 0 ||
	    pathf(meta, STORE_CKPT_PATH_MAX, base, name, ".json", err,
	    errlen) < 0)
		return -1;
	return 0;
}

static int
reason_parse(const char *s, enum store_ckpt_reason *out)
{
	for (unsigned i = 0; i < 3; i++)
		if (s != NULL && strcmp(s, reason_names[i]) == 0) {
			*out = (enum store_ckpt_reason)i;
			return 0;
		}
	return -1;
}

static int
is_hex64(const char *s)
{
	if (s == NULL || strlen(s) != 2 * AUDIT_HASH)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

/* Metadata of NAME into *ci; complete when its db and a good NAME.json
 * are both there. -1 when neither exists. */
static int
info_load(const char *data_dir, const char *name, struct store_ckpt_info *ci)
{
	char dir[STORE_CKPT_PATH_MAX], meta[STORE_CKPT_PATH_MAX], e[64];
	json_t *j, *au;
	json_error_t je;
	struct stat sb;
	int have_dir;
	const char *created, *root;

	memset(ci, 0, sizeof(*ci));
	snprintf(ci->name, sizeof(ci->name), "%s", name);
	if (ckpt_paths(data_dir, name, dir, meta, e, sizeof(e)) < 0)
		return -1;
	have_dir = stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode);
	if (have_dir)
		dir_bytes(dir, &ci->bytes, &ci->bytes_shared);
	if ((j = json_load_file(meta, 0, &je)) == NULL)
		return have_dir || access(meta, F_OK) == 0 ? 0 : -1;
	au = json_object_get(j, "audit");
	created = json_string_value(json_object_get(j, "created"));
	root = json_string_value(json_object_get(au, "root"));
	if (json_integer_value(json_object_get(j, "v")) == 1 &&
	    json_is_string(json_object_get(j, "name")) &&
	    strcmp(json_string_value(json_object_get(j, "name")), name) == 0 &&
	    created != NULL && strlen(created) < sizeof(ci->created) &&
	    reason_parse(json_string_value(json_object_get(j, "reason")),
	    &ci->reason) == 0 &&
	    json_is_integer(json_object_get(au, "size")) &&
	    json_integer_value(json_object_get(au, "size")) >= 0 &&
	    is_hex64(root)) {
		snprintf(ci->created, sizeof(ci->created), "%s", created);
		ci->audit_size = (uint64_t)json_integer_value(
		    json_object_get(au, "size"));
		memcpy(ci->audit_root, root, sizeof(ci->audit_root));
		ci->complete = have_dir && db_exists(dir);
	}
	json_decref(j);
	return 0;
}

static int
info_write(const char *meta, const struct store_ckpt_info *ci, char *err,
    size_t errlen)
{
	json_t *j = json_pack("{s:i, s:s, s:s, s:s, s:{s:I, s:s}}",
	    "v", 1, "name", ci->name, "created", ci->created,
	    "reason", store_ckpt_reason_name(ci->reason),
	    "audit", "size", (json_int_t)ci->audit_size,
	    "root", ci->audit_root);
	char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	char *text = s ? malloc(strlen(s) + 2) : NULL;
	int r = -1;

	if (text == NULL)
		snprintf(err, errlen, "out of memory");
	else {
		sprintf(text, "%s\n", s);
		r = write_file_durable(meta, text, err, errlen);
	}
	free(text);
	free(s);
	json_decref(j);
	return r;
}

/* ---------------------------------------------------------------------- */
/* Create, list, delete, prune. */

enum store_ckpt_status
store_ckpt_create(struct store *st, struct audit *a, const char *data_dir,
    const char *name, enum store_ckpt_reason reason,
    struct store_ckpt_info *out, char *err, size_t errlen)
{
	char base[STORE_CKPT_PATH_MAX], dir[STORE_CKPT_PATH_MAX];
	char meta[STORE_CKPT_PATH_MAX];
	struct store_ckpt_info ci;
	uint8_t root[AUDIT_HASH];
	rocksdb_checkpoint_t *cp;
	char *e = NULL;
	struct stat sb;

	if (!store_ckpt_name_ok(name, err, errlen))
		return STORE_CKPT_BADARG;
	if ((unsigned)reason > STORE_CKPT_PAUSE) {
		snprintf(err, errlen, "unknown checkpoint reason %d",
		    (int)reason);
		return STORE_CKPT_BADARG;
	}
	if (pathf(base, sizeof(base), data_dir, CKPT_DIR, "", err,
	    errlen) < 0 || ckpt_paths(data_dir, name, dir, meta, err,
	    errlen) < 0)
		return STORE_CKPT_FAILED;
	if (lstat(dir, &sb) == 0 || lstat(meta, &sb) == 0) {
		snprintf(err, errlen, "checkpoint \"%s\" exists already (%s): "
		    "choose another name or delete it first", name, dir);
		return STORE_CKPT_EXISTS;
	}
	if (mkdir(base, 0750) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", base,
		    strerror(errno));
		return STORE_CKPT_FAILED;
	}
	/* Every unit ended so far durable; nothing new starts until we
	 * return (one thread), so the checkpoint holds exactly this log. */
	store_drain(st);
	memset(&ci, 0, sizeof(ci));
	snprintf(ci.name, sizeof(ci.name), "%s", name);
	rfc3339_now(ci.created);
	ci.reason = reason;
	ci.audit_size = audit_durable_size(a);
	if (audit_root(a, ci.audit_size, root) < 0) {
		snprintf(err, errlen, "the audit tree of size %llu could not "
		    "be read", (unsigned long long)ci.audit_size);
		return STORE_CKPT_FAILED;
	}
	hex_encode(root, AUDIT_HASH, ci.audit_root);
	if (store_db(st) == NULL) {
		snprintf(err, errlen, "the store is not open (%s)",
		    store_error(st));
		return STORE_CKPT_FAILED;
	}
	cp = rocksdb_checkpoint_object_create(store_db(st), &e);
	if (e == NULL)
		rocksdb_checkpoint_create(cp, dir, 0, &e);
	if (cp != NULL)
		rocksdb_checkpoint_object_destroy(cp);
	if (e != NULL) {
		snprintf(err, errlen, "checkpoint %s: %s", dir, e);
		rocksdb_free(e);
		rm_tree(dir);
		return STORE_CKPT_FAILED;
	}
	if (info_write(meta, &ci, err, errlen) < 0) {
		rm_tree(dir);
		return STORE_CKPT_FAILED;
	}
	dir_bytes(dir, &ci.bytes, &ci.bytes_shared);
	ci.complete = 1;
	if (out != NULL)
		*out = ci;
	return STORE_CKPT_OK;
}

static int
info_cmp(const void *x, const void *y)
{
	const struct store_ckpt_info *a = x, *b = y;
	int r = strcmp(a->created, b->created);

	return r ? r : strcmp(a->name, b->name);
}

/* Add NAME to the list unless it is there. */
static int
names_add(char (**v)[STORE_CKPT_NAME_MAX + 1], size_t *n, size_t *cap,
    const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], name) == 0)
			return 0;
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		char (*p)[STORE_CKPT_NAME_MAX + 1] = realloc(*v, c *
		    sizeof(**v));

		if (p == NULL)
			return -1;
		*v = p;
		*cap = c;
	}
	size_t len = strnlen(name, STORE_CKPT_NAME_MAX);

	memcpy((*v)[*n], name, len);
	(*v)[(*n)++][len] = '\0';
	return 0;
}

enum store_ckpt_status
store_ckpt_list(const char *data_dir, struct store_ckpt_info **out,
    size_t *n, char *err, size_t errlen)
{
	char base[STORE_CKPT_PATH_MAX], nm[STORE_CKPT_NAME_MAX + 8], e[200];
	char (*names)[STORE_CKPT_NAME_MAX + 1] = NULL;
	size_t nn = 0, cap = 0, k = 0;
	struct dirent *de;
	DIR *d;

	*out = NULL;
	*n = 0;
	if (pathf(base, sizeof(base), data_dir, CKPT_DIR, "", err,
	    errlen) < 0)
		return STORE_CKPT_FAILED;
	if ((d = opendir(base)) == NULL) {
		if (errno == ENOENT)
			return STORE_CKPT_OK;
		snprintf(err, errlen, "cannot read %s: %s", base,
		    strerror(errno));
		return STORE_CKPT_FAILED;
	}
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);

		if (l >= sizeof(nm))
			continue;
		memcpy(nm, de->d_name, l + 1);
		if (ends_with(nm, ".json"))
			nm[l - 5] = '\0';
		if (store_ckpt_name_ok(nm, e, sizeof(e)) &&
		    names_add(&names, &nn, &cap, nm) < 0) {
			closedir(d);
			free(names);
			snprintf(err, errlen, "out of memory");
			return STORE_CKPT_FAILED;
		}
	}
	closedir(d);
	if (nn > 0 && (*out = calloc(nn, sizeof(**out))) == NULL) {
		free(names);
		snprintf(err, errlen, "out of memory");
		return STORE_CKPT_FAILED;
	}
	for (size_t i = 0; i < nn; i++)
		if (info_load(data_dir, names[i], &(*out)[k]) == 0)
			k++;
	free(names);
	qsort(*out, k, sizeof(**out), info_cmp);
	*n = k;
	return STORE_CKPT_OK;
}

enum store_ckpt_status
store_ckpt_delete(const char *data_dir, const char *name, char *err,
    size_t errlen)
{
	char dir[STORE_CKPT_PATH_MAX], meta[STORE_CKPT_PATH_MAX];
	char base[STORE_CKPT_PATH_MAX];
	struct stat sb;
	int had;

	if (!store_ckpt_name_ok(name, err, errlen))
		return STORE_CKPT_BADARG;
	if (ckpt_paths(data_dir, name, dir, meta, err, errlen) < 0 ||
	    pathf(base, sizeof(base), data_dir, CKPT_DIR, "", err,
	    errlen) < 0)
		return STORE_CKPT_FAILED;
	had = lstat(dir, &sb) == 0 || lstat(meta, &sb) == 0;
	if (!had) {
		snprintf(err, errlen, "no checkpoint \"%s\" in %s", name, base);
		return STORE_CKPT_NOTFOUND;
	}
	/* The data first: cut short, what is left is an incomplete
	 * checkpoint that list shows and delete removes. */
	if (rm_tree(dir) < 0 || (unlink(meta) < 0 && errno != ENOENT)) {
		snprintf(err, errlen, "cannot remove checkpoint \"%s\": %s",
		    name, strerror(errno));
		return STORE_CKPT_FAILED;
	}
	fsync_path(base, 1);
	return STORE_CKPT_OK;
}

enum store_ckpt_status
store_ckpt_prune(const char *data_dir, size_t keep, size_t *deleted,
    char *err, size_t errlen)
{
	struct store_ckpt_info *v;
	size_t n, seen = 0, del = 0;
	enum store_ckpt_status r;

	if (deleted != NULL)
		*deleted = 0;
	if ((r = store_ckpt_list(data_dir, &v, &n, err, errlen)) !=
	    STORE_CKPT_OK)
		return r;
	/* newest first: the list is oldest first */
	for (size_t i = n; i-- > 0 && r == STORE_CKPT_OK;) {
		if (!v[i].complete || v[i].reason != STORE_CKPT_SCHEDULE)
			continue;
		if (++seen <= keep)
			continue;
		if ((r = store_ckpt_delete(data_dir, v[i].name, err,
		    errlen)) == STORE_CKPT_OK)
			del++;
	}
	free(v);
	if (deleted != NULL)
		*deleted = del;
	return r;
}

/* ---------------------------------------------------------------------- */
/* Offline restores: the staging area and the swap. */

struct stage {
	char	 data_dir[STORE_CKPT_PATH_MAX];
	char	 db[STORE_CKPT_PATH_MAX];
	char	 staged[STORE_CKPT_PATH_MAX];	/* DATA_DIR/db.restore-TS */
	char	 replaced[STORE_CKPT_PATH_MAX];	/* DATA_DIR/db.replaced-TS */
	int	 built;				/* staged is ours to remove */
};

/* DATA_DIR/PREFIX-TS, or -TS-2, -3 … : a name nothing has. */
static int
fresh_name(char *out, const char *data_dir, const char *prefix,
    const char *ts, char *err, size_t errlen)
{
	struct stat sb;

	for (unsigned i = 1; i < 1000; i++) {
		char suf[40];

		if (i == 1)
			snprintf(suf, sizeof(suf), "-%s", ts);
		else
			snprintf(suf, sizeof(suf), "-%s-%u", ts, i);
		if (pathf(out, STORE_CKPT_PATH_MAX, data_dir, prefix, suf,
		    err, errlen) < 0)
			return -1;
		if (lstat(out, &sb) < 0 && errno == ENOENT)
			return 0;
	}
	snprintf(err, errlen, "too many %s/%s-%s*", data_dir, prefix, ts);
	return -1;
}

static int
stage_init(struct stage *s, const char *data_dir, char *err, size_t errlen)
{
	char ts[24];
	time_t now = time(NULL);
	struct tm tm;

	memset(s, 0, sizeof(*s));
	if (errlen > 0)
		err[0] = '\0';
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	if (strlen(data_dir) >= sizeof(s->data_dir) ||
	    pathf(s->db, sizeof(s->db), data_dir, "db", "", err, errlen) < 0 ||
	    fresh_name(s->staged, data_dir, "db.restore", ts, err,
	    errlen) < 0 ||
	    fresh_name(s->replaced, data_dir, "db.replaced", ts, err,
	    errlen) < 0) {
		if (err[0] == '\0')
			snprintf(err, errlen, "path too long: %s", data_dir);
		return -1;
	}
	memcpy(s->data_dir, data_dir, strlen(data_dir) + 1);
	return 0;
}

static void
stage_abandon(struct stage *s)
{
	if (s->built)
		rm_tree(s->staged);
	s->built = 0;
}

/*
 * The swap's intent, DATA_DIR/restore-swap, written and synced before the
 * first rename and removed once the last is done: the staged and the
 * replaced names, and the inode numbers of the staged state and of the
 * state in DATA_DIR/db then (0: none). A crash between the renames
 * leaves it, and store_ckpt_settle finishes the swap from it at the next
 * start: which of the names holds which state is told by its inode (a
 * directory keeps its inode across renames).
 */
#define SWAP_INTENT	"restore-swap"

static uint64_t ino_of(const char *path);

static int
intent_write(const struct stage *s, char *err, size_t errlen)
{
	char path[STORE_CKPT_PATH_MAX + 16];
	char text[2 * STORE_CKPT_PATH_MAX + 64];
	uint64_t is = ino_of(s->staged);

	if (is == 0) {
		snprintf(err, errlen, "%s: %s", s->staged, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/" SWAP_INTENT, s->data_dir);
	snprintf(text, sizeof(text), "%s\n%s\n%llu %llu\n", s->staged,
	    s->replaced, (unsigned long long)is,
	    (unsigned long long)ino_of(s->db));
	return write_file_durable(path, text, err, errlen);
}

static void
intent_remove(const char *data_dir)
{
	char path[STORE_CKPT_PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/" SWAP_INTENT, data_dir);
	if (unlink(path) == 0)
		fsync_path(data_dir, 1);
}

static uint64_t
ino_of(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0 ? (uint64_t)sb.st_ino : 0;
}

/* Any DATA_DIR/PREFIX-… entry: its name into out, 1; else 0. */
static int
have_prefixed(const char *data_dir, const char *prefix, char *out,
    size_t outlen)
{
	DIR *d = opendir(data_dir);
	struct dirent *de;
	size_t pl = strlen(prefix);
	int found = 0;

	if (d == NULL)
		return 0;
	while (!found && (de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, pl) == 0 &&
		    de->d_name[pl] == '-') {
			snprintf(out, outlen, "%s/%s", data_dir, de->d_name);
			found = 1;
		}
	closedir(d);
	return found;
}

/* A checkpoint's staging (RocksDB's NAME.tmp, hard links to every table
 * file) or metadata (NAME.json.tmp) left by a crash: never listed,
 * never deleted, it pinned the disk for good. Removed at start. */
static void
stale_ckpt_tmp(const char *data_dir)
{
	char dir[STORE_CKPT_PATH_MAX + 16], path[STORE_CKPT_PATH_MAX + 300];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/checkpoints", data_dir);
	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);

		if (n < 5 || strcmp(de->d_name + n - 4, ".tmp") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		rm_tree(path);
		log_warn("checkpoint-stale-removed", "path=%s why=%s",
		    log_q(path), log_q("a checkpoint cut short by a crash"));
	}
	closedir(d);
}

int
store_ckpt_settle(const char *data_dir, int refuse_missing, char *err,
    size_t errlen)
{
	char path[STORE_CKPT_PATH_MAX + 16], db[STORE_CKPT_PATH_MAX + 4];
	char staged[STORE_CKPT_PATH_MAX], replaced[STORE_CKPT_PATH_MAX];
	char other[STORE_CKPT_PATH_MAX + 300];
	unsigned long long ino_s, ino_old;
	uint64_t ino_db;
	FILE *f;

	stale_ckpt_tmp(data_dir);
	snprintf(path, sizeof(path), "%s/" SWAP_INTENT, data_dir);
	snprintf(db, sizeof(db), "%s/db", data_dir);
	if ((f = fopen(path, "re")) == NULL) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "cannot read %s: %s", path,
			    strerror(errno));
			return -1;
		}
		/* no swap under way: a missing state beside the states of
		 * a restore is not a new start (it would begin an empty
		 * state and a new audit log) */
		if (refuse_missing && ino_of(db) == 0 &&
		    (have_prefixed(data_dir, "db.restore",
		    other, sizeof(other)) || have_prefixed(data_dir,
		    "db.replaced", other, sizeof(other)))) {
			snprintf(err, errlen, "%s is missing but %s is there: "
			    "a restore was cut short, or the state moved away "
			    "by hand; move the state to keep to %s (a "
			    "db.restore-… is the restored one, a "
			    "db.replaced-… the one before it), or move these "
			    "aside to start an empty state", db, other, db);
			return -1;
		}
		return 0;
	}
	if (fgets(staged, sizeof(staged), f) == NULL ||
	    fgets(replaced, sizeof(replaced), f) == NULL ||
	    fscanf(f, "%llu %llu", &ino_s, &ino_old) != 2) {
		fclose(f);
		snprintf(err, errlen, "%s does not parse: finish the restore "
		    "by hand (see vnamig-state(1)) and remove it", path);
		return -1;
	}
	fclose(f);
	staged[strcspn(staged, "\n")] = '\0';
	replaced[strcspn(replaced, "\n")] = '\0';
	ino_db = ino_of(db);
	if (ino_db != 0 && ino_db == ino_s) {
		/* exchanged: the old state is at the staged name */
		if (ino_old != 0 && ino_of(staged) == ino_old &&
		    rename(staged, replaced) < 0) {
			snprintf(err, errlen, "cannot move the replaced state "
			    "%s to %s: %s", staged, replaced,
			    strerror(errno));
			return -1;
		}
	} else if (ino_db != 0 && ino_db == ino_old) {
		/* not swapped: the staged state is a restore cut short
		 * (asked for again, it is built anew) */
		if (ino_of(staged) == ino_s)
			rm_tree(staged);
	} else if (ino_db == 0 && ino_of(staged) == ino_s) {
		/* between two renames: the old state went, the new one
		 * goes in */
		if (rename(staged, db) < 0) {
			snprintf(err, errlen, "cannot move the restored state "
			    "%s to %s: %s", staged, db, strerror(errno));
			return -1;
		}
	} else if (ino_db == 0 && ino_old != 0 && ino_of(replaced) ==
	    ino_old) {
		if (rename(replaced, db) < 0) {
			snprintf(err, errlen, "cannot move the state %s back "
			    "to %s: %s", replaced, db, strerror(errno));
			return -1;
		}
	} else {
		snprintf(err, errlen, "a restore's swap was cut short and %s, "
		    "%s and %s are not what %s says: finish it by hand and "
		    "remove %s", db, staged, replaced, path, path);
		return -1;
	}
	fsync_path(data_dir, 1);
	intent_remove(data_dir);
	log_warn("restore-swap-finished", "data_dir=%s state=%s",
	    log_q(data_dir), ino_db == ino_old && ino_db != 0 ? "kept (the "
	    "restore is done again if still asked for)" : "restored");
	return 0;
}

/*
 * Put the staged state in place: one atomic exchange of the two names
 * (DATA_DIR/db is a whole state at every instant), then the old one to
 * its db.replaced name. Where the file system cannot exchange, two
 * renames (a crash between them leaves no DATA_DIR/db: the old state is
 * at db.replaced-…, the new one at db.restore-…).
 */
static int
stage_swap(struct stage *s, struct store_ckpt_restored *out, char *err,
    size_t errlen)
{
	struct stat sb;

	out->replaced[0] = '\0';
	if (intent_write(s, err, errlen) < 0)
		return -1;
	if (lstat(s->db, &sb) < 0) {
		if (rename(s->staged, s->db) < 0)
			goto fail;
	} else if (renameat2(AT_FDCWD, s->staged, AT_FDCWD, s->db,
	    RENAME_EXCHANGE) == 0) {
		s->built = 0;
		if (rename(s->staged, s->replaced) < 0)
			/* in place all the same; the old state stays here */
			snprintf(s->replaced, sizeof(s->replaced), "%s",
			    s->staged);
		snprintf(out->replaced, sizeof(out->replaced), "%s",
		    s->replaced);
	} else if (errno == EINVAL || errno == ENOSYS || errno == ENOTSUP) {
		if (rename(s->db, s->replaced) < 0)
			goto fail;
		if (rename(s->staged, s->db) < 0) {
			int e = errno;

			if (rename(s->replaced, s->db) < 0) {
				snprintf(err, errlen, "cannot move %s to %s "
				    "(%s), nor the old state back from %s: "
				    "move one of them to %s by hand",
				    s->staged, s->db, strerror(e),
				    s->replaced, s->db);
				s->built = 0;
				return -1;
			}
			errno = e;
			goto fail;
		}
		snprintf(out->replaced, sizeof(out->replaced), "%s",
		    s->replaced);
	} else
		goto fail;
	s->built = 0;
	fsync_path(s->data_dir, 1);
	intent_remove(s->data_dir);
	return 0;
fail:
	snprintf(err, errlen, "cannot put %s in place of %s: %s", s->staged,
	    s->db, strerror(errno));
	return -1;
}

static struct store *
open_state(const struct store_ckpt_open *o, const char *dir, char *err,
    size_t errlen)
{
	struct store_opts so = o->store;

	so.dir = dir;
	so.kick = NULL;
	so.kick_arg = NULL;
	return store_open(&so, err, errlen);
}

/* A restore appends to the log: the key that signs it must be there
 * (audit_open would make a new one and record a rotation). */
static int
key_present(const struct store_ckpt_open *o, char *err, size_t errlen)
{
	if (o->audit.key_file == NULL || access(o->audit.key_file, R_OK) < 0) {
		snprintf(err, errlen, "the audit key %s cannot be read (%s): "
		    "a restore appends to the audit log and needs the key "
		    "that signs it (audit.key_file)", o->audit.key_file ?
		    o->audit.key_file : "(none)", strerror(errno));
		return -1;
	}
	return 0;
}

/* Rows of one column family from a scan into DST, in units of about
 * XFER_BYTES, each made durable before the next. */
struct xfer {
	struct store		*dst;
	enum store_cf		 cf;
	int			 del;
	struct store_batch	*b;
	size_t			 bytes;
	int			 failed;
};

static void
xfer_done(void *arg, int err)
{
	if (err)
		((struct xfer *)arg)->failed = 1;
}

static void
xfer_flush(struct xfer *x)
{
	if (x->b == NULL)
		return;
	store_end(x->b, xfer_done, x);
	x->b = NULL;
	x->bytes = 0;
	store_drain(x->dst);
}

static int
xfer_row(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct xfer *x = arg;

	if (x->b == NULL)
		x->b = store_begin(x->dst);
	if (x->del)
		store_del(x->b, x->cf, key, klen);
	else
		store_put(x->b, x->cf, key, klen, val, vlen);
	if ((x->bytes += klen + vlen + 16) >= XFER_BYTES)
		xfer_flush(x);
	return x->failed;
}

/* Make what DST holds under (CF, PREFIX) what SRC holds there. */
static int
xfer_replace(struct store *src, struct store *dst, enum store_cf cf,
    const char *prefix)
{
	size_t pl = strlen(prefix);
	struct xfer x = { dst, cf, 1, NULL, 0, 0 };
	int r = store_scan(dst, cf, prefix, pl, xfer_row, &x);

	xfer_flush(&x);
	if (r < 0 || x.failed)
		return -1;
	x.del = 0;
	r = store_scan(src, cf, prefix, pl, xfer_row, &x);
	xfer_flush(&x);
	return r < 0 || x.failed ? -1 : 0;
}

static void
append_done(void *arg, int err)
{
	*(int *)arg = err ? -1 : 1;
}

/* EV as one more leaf, alone in its durable unit: its seq, or -1. */
static int64_t
append_alone(struct store *st, struct audit *a, const json_t *ev)
{
	struct store_batch *b = store_begin(st);
	uint64_t seq = audit_append(a, b, ev);
	int done = 0;

	store_end(b, append_done, &done);
	store_drain(st);
	return done == 1 ? (int64_t)seq : -1;
}

/* ---------------------------------------------------------------------- */
/* Restore from a checkpoint. */

/* Carry the log over into NEU; check it arrived whole. Returns the
 * carried size, or -1 (DAMAGED when it does not check). */
static int64_t
carry_audit(struct store *cur, struct store *neu, enum store_ckpt_status *rc,
    char *err, size_t errlen)
{
	uint8_t r1[AUDIT_HASH], r2[AUDIT_HASH];
	uint64_t n, m;

	*rc = STORE_CKPT_FAILED;
	if (audit_store_size(cur, &n) < 0) {
		snprintf(err, errlen, "the current audit log could not be "
		    "read: %s", store_error(cur));
		return -1;
	}
	for (size_t i = 0; i < N_AUDIT_CFS; i++)
		if (xfer_replace(cur, neu, audit_cfs[i], "") < 0) {
			snprintf(err, errlen, "copying the audit log (%s) "
			    "failed: %s", store_cf_name(audit_cfs[i]),
			    store_error(neu));
			return -1;
		}
	if (xfer_replace(cur, neu, STORE_CF_META, META_AUDIT) < 0) {
		snprintf(err, errlen, "copying the audit keys failed: %s",
		    store_error(neu));
		return -1;
	}
	*rc = STORE_CKPT_DAMAGED;
	if (audit_store_root(cur, n, r1) < 0) {
		snprintf(err, errlen, "the current audit tree (size %llu) is "
		    "incomplete: restore a backup instead",
		    (unsigned long long)n);
		return -1;
	}
	if (audit_tree_check(neu, &m, r2, err, errlen) < 0)
		return -1;
	if (m != n || memcmp(r1, r2, AUDIT_HASH) != 0) {
		snprintf(err, errlen, "the carried audit log (size %llu) is "
		    "not the current one (size %llu)", (unsigned long long)m,
		    (unsigned long long)n);
		return -1;
	}
	*rc = STORE_CKPT_OK;
	return (int64_t)n;
}

static int64_t
append_restored(struct store *neu, struct audit *a,
    const struct store_ckpt_info *ci, const struct stage *s)
{
	const char *rep = strrchr(s->replaced, '/');
	uint64_t at = audit_durable_size(a);
	json_t *ev = json_pack("{s:s, s:{s:i}, s:{s:s, s:s, s:I, s:s, s:I, "
	    "s:s}, s:s}", "event", "state.restored",
	    "actor", "uid", (int)getuid(),
	    "object", "checkpoint", ci->name, "created", ci->created,
	    "audit_size", (json_int_t)ci->audit_size,
	    "audit_root", ci->audit_root,
	    "audit_size_at_restore", (json_int_t)at,
	    "replaced", rep ? rep + 1 : s->replaced,
	    "outcome", "ok");
	int64_t seq = ev ? append_alone(neu, a, ev) : -1;

	json_decref(ev);
	return seq;
}

enum store_ckpt_status
store_ckpt_restore(const char *data_dir, const char *name,
    const struct store_ckpt_open *o, struct store_ckpt_restored *out,
    char *err, size_t errlen)
{
	char dir[STORE_CKPT_PATH_MAX], meta[STORE_CKPT_PATH_MAX];
	struct store_ckpt_info ci;
	struct store *cur = NULL, *neu = NULL;
	struct audit *a = NULL;
	struct stage s;
	enum store_ckpt_status rc = STORE_CKPT_FAILED;
	int64_t carried, seq;

	memset(out, 0, sizeof(*out));
	out->replaced_audit_size = UINT64_MAX;
	if (!store_ckpt_name_ok(name, err, errlen))
		return STORE_CKPT_BADARG;
	if (ckpt_paths(data_dir, name, dir, meta, err, errlen) < 0)
		return STORE_CKPT_FAILED;
	if (info_load(data_dir, name, &ci) < 0 || !ci.complete) {
		int part = access(dir, F_OK) == 0 || access(meta, F_OK) == 0;

		snprintf(err, errlen, "%s checkpoint \"%s\" in %s/%s%s",
		    part ? "incomplete" : "no", name, data_dir, CKPT_DIR,
		    part ? " (a create or delete was cut short): delete it" :
		    "");
		return STORE_CKPT_NOTFOUND;
	}
	if (key_present(o, err, errlen) < 0 ||
	    stage_init(&s, data_dir, err, errlen) < 0)
		return STORE_CKPT_FAILED;
	if (!db_exists(s.db)) {
		snprintf(err, errlen, "there is no state in %s to carry the "
		    "audit log from; restore a backup instead", s.db);
		return STORE_CKPT_NOTFOUND;
	}
	s.built = 1;
	if (clone_db(dir, s.staged, err, errlen) < 0)
		goto fail;
	if ((cur = open_state(o, s.db, err, errlen)) == NULL ||
	    (neu = open_state(o, s.staged, err, errlen)) == NULL)
		goto fail;
	if ((carried = carry_audit(cur, neu, &rc, err, errlen)) < 0)
		goto fail;
	rc = STORE_CKPT_FAILED;
	store_close(cur);
	out->replaced_audit_size = (uint64_t)carried;
	out->from_audit_size = ci.audit_size;
	if ((a = audit_open(neu, &o->audit, err, errlen)) == NULL)
		goto fail;
	if ((seq = append_restored(neu, a, &ci, &s)) < 0) {
		snprintf(err, errlen, "writing the restore to the audit log "
		    "failed: %s", store_error(neu));
		goto fail;
	}
	out->restore_seq = (uint64_t)seq;
	audit_close(a);
	store_close(neu);
	if (stage_swap(&s, out, err, errlen) < 0)
		goto fail;
	return STORE_CKPT_OK;
fail:
	audit_close(a);
	store_close(neu);
	store_close(cur);
	stage_abandon(&s);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Backups. */

/* DIR holds a backup engine (its meta directory). */
static int
backup_dir_ok(const char *dir, char *err, size_t errlen)
{
	char p[STORE_CKPT_PATH_MAX];
	struct stat sb;

	if (pathf(p, sizeof(p), dir, "meta", "", err, errlen) < 0)
		return -1;
	if (stat(p, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "%s holds no backups (no %s)", dir, p);
		return -1;
	}
	return 0;
}

static rocksdb_backup_engine_t *
backup_open(const char *dir, char *err, size_t errlen)
{
	rocksdb_options_t *opts = rocksdb_options_create();
	rocksdb_backup_engine_t *be;
	char *e = NULL;

	be = rocksdb_backup_engine_open(opts, dir, &e);
	rocksdb_options_destroy(opts);
	if (e != NULL) {
		snprintf(err, errlen, "cannot open the backups in %s: %s", dir,
		    e);
		rocksdb_free(e);
		if (be != NULL)
			rocksdb_backup_engine_close(be);
		return NULL;
	}
	return be;
}

/* DIR/vnamig-backup-ID.json */
static int
backup_meta_path(char *p, const char *dir, uint32_t id, char *err,
    size_t errlen)
{
	char suf[24];

	snprintf(suf, sizeof(suf), "%u.json", id);
	return pathf(p, STORE_CKPT_PATH_MAX, dir, BACKUP_META, suf, err,
	    errlen);
}

static void
backup_meta_load(const char *dir, struct store_ckpt_backup *b)
{
	char p[STORE_CKPT_PATH_MAX], e[64];
	json_t *j, *au;
	json_error_t je;
	const char *root;

	if (backup_meta_path(p, dir, b->id, e, sizeof(e)) < 0 ||
	    (j = json_load_file(p, 0, &je)) == NULL)
		return;
	au = json_object_get(j, "audit");
	root = json_string_value(json_object_get(au, "root"));
	if (json_integer_value(json_object_get(j, "id")) == (json_int_t)b->id &&
	    json_is_integer(json_object_get(au, "size")) && is_hex64(root)) {
		b->have_audit = 1;
		b->audit_size = (uint64_t)json_integer_value(
		    json_object_get(au, "size"));
		memcpy(b->audit_root, root, sizeof(b->audit_root));
	}
	json_decref(j);
}

static int
backup_cmp(const void *x, const void *y)
{
	const struct store_ckpt_backup *a = x, *b = y;

	return (a->id > b->id) - (a->id < b->id);
}

/* The engine's backups, by id, with our metadata. */
static int
backup_infos(rocksdb_backup_engine_t *be, const char *dir,
    struct store_ckpt_backup **out, size_t *n)
{
	const rocksdb_backup_engine_info_t *info =
	    rocksdb_backup_engine_get_backup_info(be);
	int cnt = info ? rocksdb_backup_engine_info_count(info) : 0;

	*out = NULL;
	*n = 0;
	if (cnt > 0 && (*out = calloc((size_t)cnt, sizeof(**out))) == NULL) {
		rocksdb_backup_engine_info_destroy(info);
		return -1;
	}
	for (int i = 0; i < cnt; i++) {
		struct store_ckpt_backup *b = &(*out)[i];

		b->id = rocksdb_backup_engine_info_backup_id(info, i);
		b->timestamp = rocksdb_backup_engine_info_timestamp(info, i);
		b->size = rocksdb_backup_engine_info_size(info, i);
		b->files = rocksdb_backup_engine_info_number_files(info, i);
		rfc3339((time_t)b->timestamp, -1, b->created);
		backup_meta_load(dir, b);
	}
	if (info != NULL)
		rocksdb_backup_engine_info_destroy(info);
	qsort(*out, (size_t)cnt, sizeof(**out), backup_cmp);
	*n = (size_t)cnt;
	return 0;
}

enum store_ckpt_status
store_ckpt_backup_create(struct store *st, struct audit *a,
    const char *data_dir, const char *dir, struct store_ckpt_backup *out,
    char *err, size_t errlen)
{
	struct store_ckpt_backup *v = NULL, nb;
	rocksdb_backup_engine_t *be;
	uint8_t root[AUDIT_HASH];
	char meta[STORE_CKPT_PATH_MAX], *e = NULL, *s = NULL;
	enum store_ckpt_status rc = STORE_CKPT_FAILED;
	size_t n = 0;
	json_t *j;

	if (!path_inside(dir, data_dir) && fs_mkdir_p(dir, 0750) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", dir,
		    strerror(errno));
		return STORE_CKPT_FAILED;
	}
	if (path_inside(dir, data_dir)) {
		snprintf(err, errlen, "backup directory %s is inside the data "
		    "directory %s: keep backups elsewhere (another disk, "
		    "ideally)", dir, data_dir);
		return STORE_CKPT_BADARG;
	}
	store_drain(st);
	memset(&nb, 0, sizeof(nb));
	nb.audit_size = audit_durable_size(a);
	if (audit_root(a, nb.audit_size, root) < 0) {
		snprintf(err, errlen, "the audit tree of size %llu could not "
		    "be read", (unsigned long long)nb.audit_size);
		return STORE_CKPT_FAILED;
	}
	hex_encode(root, AUDIT_HASH, nb.audit_root);
	if (store_db(st) == NULL) {
		snprintf(err, errlen, "the store is not open (%s)",
		    store_error(st));
		return STORE_CKPT_FAILED;
	}
	if ((be = backup_open(dir, err, errlen)) == NULL)
		return STORE_CKPT_FAILED;
	rocksdb_backup_engine_create_new_backup_flush(be, store_db(st), 1, &e);
	if (e != NULL) {
		snprintf(err, errlen, "backup into %s: %s", dir, e);
		rocksdb_free(e);
		rocksdb_backup_engine_close(be);
		return STORE_CKPT_FAILED;
	}
	if (backup_infos(be, dir, &v, &n) < 0 || n == 0) {
		snprintf(err, errlen, "the new backup in %s is not listed",
		    dir);
		rocksdb_backup_engine_close(be);
		free(v);
		return STORE_CKPT_FAILED;
	}
	rocksdb_backup_engine_close(be);
	nb.id = v[n - 1].id;
	nb.timestamp = v[n - 1].timestamp;
	nb.size = v[n - 1].size;
	nb.files = v[n - 1].files;
	memcpy(nb.created, v[n - 1].created, sizeof(nb.created));
	nb.have_audit = 1;
	free(v);
	if (out != NULL)
		*out = nb;
	j = json_pack("{s:i, s:I, s:s, s:{s:I, s:s}}", "v", 1,
	    "id", (json_int_t)nb.id, "created", nb.created,
	    "audit", "size", (json_int_t)nb.audit_size, "root", nb.audit_root);
	if (j == NULL || (s = json_dumps(j, JSON_SORT_KEYS)) == NULL)
		snprintf(err, errlen, "out of memory");
	else if (backup_meta_path(meta, dir, nb.id, err, errlen) == 0 &&
	    write_file_durable(meta, s, err, errlen) == 0)
		rc = STORE_CKPT_OK;
	if (rc != STORE_CKPT_OK) {
		/* the engine keeps it, but it is never restored or verified
		 * without that record (backup_check_tree) */
		size_t l = strlen(err);

		snprintf(err + l, errlen - l, "; backup %u was made without "
		    "the record of its audit log and will not be restored: "
		    "make a new one", nb.id);
	}
	free(s);
	json_decref(j);
	return rc;
}

enum store_ckpt_status
store_ckpt_backup_list(const char *dir, struct store_ckpt_backup **out,
    size_t *n, char *err, size_t errlen)
{
	rocksdb_backup_engine_t *be;
	int r;

	*out = NULL;
	*n = 0;
	if (backup_dir_ok(dir, err, errlen) < 0)
		return STORE_CKPT_NOTFOUND;
	if ((be = backup_open(dir, err, errlen)) == NULL)
		return STORE_CKPT_FAILED;
	r = backup_infos(be, dir, out, n);
	rocksdb_backup_engine_close(be);
	if (r < 0) {
		snprintf(err, errlen, "out of memory");
		return STORE_CKPT_FAILED;
	}
	return STORE_CKPT_OK;
}

/* Restore backup ID of BE into the new directory TO. */
static enum store_ckpt_status
backup_restore_into(rocksdb_backup_engine_t *be, uint32_t id, const char *to,
    char *err, size_t errlen)
{
	rocksdb_restore_options_t *ro = rocksdb_restore_options_create();
	char *e = NULL;

	rocksdb_backup_engine_restore_db_from_backup(be, to, to, ro, id, &e);
	rocksdb_restore_options_destroy(ro);
	if (e == NULL)
		return STORE_CKPT_OK;
	snprintf(err, errlen, "restoring backup %u: %s", id, e);
	rocksdb_free(e);
	return strstr(err, "Corruption") != NULL ||
	    strstr(err, "hecksum") != NULL ? STORE_CKPT_DAMAGED :
	    STORE_CKPT_FAILED;
}

/* Open the restored state in DIR and check its audit tree, and that it
 * is the one recorded when B was made. */
static enum store_ckpt_status
backup_check_tree(struct store *st, const struct store_ckpt_backup *b,
    uint64_t *size, char *err, size_t errlen)
{
	uint8_t root[AUDIT_HASH];
	char hex[2 * AUDIT_HASH + 1], why[400];

	if (!b->have_audit) {
		/* without it nothing says which log the backup must hold:
		 * its metadata was not written, or was removed */
		snprintf(err, errlen, "backup %u: no record of its audit log "
		    "(%s%u.json is missing or unreadable), so what it holds "
		    "cannot be checked against what was backed up: make a "
		    "new backup", b->id, BACKUP_META, b->id);
		return STORE_CKPT_DAMAGED;
	}
	if (audit_tree_check(st, size, root, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "backup %u: %s", b->id, why);
		return STORE_CKPT_DAMAGED;
	}
	hex_encode(root, AUDIT_HASH, hex);
	if (*size != b->audit_size || strcmp(hex, b->audit_root) != 0) {
		snprintf(err, errlen, "backup %u: its audit log (size %llu, "
		    "root %.16s…) is not the one recorded when it was made "
		    "(size %llu, root %.16s…)", b->id,
		    (unsigned long long)*size, hex,
		    (unsigned long long)b->audit_size, b->audit_root);
		return STORE_CKPT_DAMAGED;
	}
	return STORE_CKPT_OK;
}

/* One backup, with an engine of its own: a failed restore returns while
 * the engine's thread may still be copying, and only closing the engine
 * waits for it; then the scratch copy can go. */
static enum store_ckpt_status
backup_verify_one(const char *dir, const struct store_ckpt_backup *b,
    char *err, size_t errlen)
{
	struct store_opts so = { 0 };
	char scratch[STORE_CKPT_PATH_MAX], suf[40], *e = NULL;
	enum store_ckpt_status rc;
	rocksdb_backup_engine_t *be;
	struct store *st;
	uint64_t size;

	snprintf(suf, sizeof(suf), "%u.%ld", b->id, (long)getpid());
	if (pathf(scratch, sizeof(scratch), dir, ".vnamig-verify-", suf, err,
	    errlen) < 0)
		return STORE_CKPT_FAILED;
	if ((be = backup_open(dir, err, errlen)) == NULL)
		return STORE_CKPT_FAILED;
	rocksdb_backup_engine_verify_backup(be, b->id, &e);
	if (e != NULL) {
		snprintf(err, errlen, "backup %u: %s", b->id, e);
		rocksdb_free(e);
		rocksdb_backup_engine_close(be);
		return STORE_CKPT_DAMAGED;
	}
	rm_tree(scratch);
	rc = backup_restore_into(be, b->id, scratch, err, errlen);
	rocksdb_backup_engine_close(be);
	if (rc == STORE_CKPT_OK) {
		so.dir = scratch;
		so.block_cache = 8 << 20;
		so.write_buffer = 4 << 20;
		if ((st = store_open(&so, err, errlen)) == NULL)
			rc = STORE_CKPT_DAMAGED;
		else
			rc = backup_check_tree(st, b, &size, err, errlen);
		store_close(st);
	}
	rm_tree(scratch);
	return rc;
}

enum store_ckpt_status
store_ckpt_backup_verify(const char *dir, uint32_t id, char *err,
    size_t errlen)
{
	struct store_ckpt_backup *v = NULL;
	enum store_ckpt_status rc;
	size_t n = 0, done = 0;

	if ((rc = store_ckpt_backup_list(dir, &v, &n, err, errlen)) !=
	    STORE_CKPT_OK)
		return rc;
	for (size_t i = 0; i < n && rc == STORE_CKPT_OK; i++) {
		if (id != 0 && v[i].id != id)
			continue;
		rc = backup_verify_one(dir, &v[i], err, errlen);
		done++;
	}
	if (rc == STORE_CKPT_OK && done == 0) {
		if (id != 0)
			snprintf(err, errlen, "no backup %u in %s", id, dir);
		else
			snprintf(err, errlen, "%s holds no backups", dir);
		rc = STORE_CKPT_NOTFOUND;
	}
	free(v);
	return rc;
}

/* Which backup to restore: ID, or the newest for 0. */
static enum store_ckpt_status
backup_pick(rocksdb_backup_engine_t *be, const char *dir, uint32_t id,
    struct store_ckpt_backup *b, char *err, size_t errlen)
{
	struct store_ckpt_backup *v = NULL;
	size_t n = 0;
	enum store_ckpt_status rc = STORE_CKPT_NOTFOUND;

	if (backup_infos(be, dir, &v, &n) < 0) {
		snprintf(err, errlen, "out of memory");
		return STORE_CKPT_FAILED;
	}
	for (size_t i = 0; i < n; i++)
		if (id == 0 ? i == n - 1 : v[i].id == id) {
			*b = v[i];
			rc = STORE_CKPT_OK;
		}
	free(v);
	if (rc != STORE_CKPT_OK) {
		if (id != 0)
			snprintf(err, errlen, "no backup %u in %s", id, dir);
		else
			snprintf(err, errlen, "%s holds no backups", dir);
	}
	return rc;
}

/* The audit size of the state about to be replaced (when it opens). */
static uint64_t
replaced_size(const struct store_ckpt_open *o, const char *db)
{
	char e[512];
	struct store *st;
	uint64_t n;

	if (!db_exists(db) || (st = open_state(o, db, e, sizeof(e))) == NULL)
		return UINT64_MAX;
	if (audit_store_size(st, &n) < 0)
		n = UINT64_MAX;
	store_close(st);
	return n;
}

static int64_t
append_from_backup(struct store *neu, struct audit *a,
    const struct store_ckpt_backup *b, const char *dir,
    const struct store_ckpt_restored *out)
{
	char rdir[PATH_MAX];
	json_t *ev = json_pack("{s:s, s:{s:i}, s:{s:I, s:s, s:s, s:I}, s:s}",
	    "event", "state.restored-from-backup",
	    "actor", "uid", (int)getuid(),
	    "object", "backup_id", (json_int_t)b->id,
	    "backup_time", b->created,
	    "backup_dir", realpath(dir, rdir) ? rdir : dir,
	    "audit_size", (json_int_t)out->from_audit_size,
	    "outcome", "ok");
	int64_t seq;

	if (ev == NULL)
		return -1;
	if (out->replaced_audit_size != UINT64_MAX)
		json_object_set_new(json_object_get(ev, "object"),
		    "audit_size_replaced",
		    json_integer((json_int_t)out->replaced_audit_size));
	seq = append_alone(neu, a, ev);
	json_decref(ev);
	return seq;
}

enum store_ckpt_status
store_ckpt_backup_restore(const char *data_dir, const char *dir, uint32_t id,
    const struct store_ckpt_open *o, struct store_ckpt_restored *out,
    char *err, size_t errlen)
{
	struct store_ckpt_backup b;
	rocksdb_backup_engine_t *be;
	struct store *neu = NULL;
	struct audit *a = NULL;
	struct stage s;
	enum store_ckpt_status rc;
	int64_t seq;

	memset(out, 0, sizeof(*out));
	out->replaced_audit_size = UINT64_MAX;
	if (backup_dir_ok(dir, err, errlen) < 0)
		return STORE_CKPT_NOTFOUND;
	if (key_present(o, err, errlen) < 0 ||
	    stage_init(&s, data_dir, err, errlen) < 0)
		return STORE_CKPT_FAILED;
	if ((be = backup_open(dir, err, errlen)) == NULL)
		return STORE_CKPT_FAILED;
	if ((rc = backup_pick(be, dir, id, &b, err, errlen)) ==
	    STORE_CKPT_OK) {
		s.built = 1;
		rc = backup_restore_into(be, b.id, s.staged, err, errlen);
	}
	rocksdb_backup_engine_close(be);
	if (rc != STORE_CKPT_OK)
		goto fail;
	out->backup_id = b.id;
	memcpy(out->backup_time, b.created, sizeof(out->backup_time));
	out->replaced_audit_size = replaced_size(o, s.db);
	rc = STORE_CKPT_FAILED;
	if ((neu = open_state(o, s.staged, err, errlen)) == NULL)
		goto fail;
	if ((rc = backup_check_tree(neu, &b, &out->from_audit_size, err,
	    errlen)) != STORE_CKPT_OK)
		goto fail;
	rc = STORE_CKPT_FAILED;
	if ((a = audit_open(neu, &o->audit, err, errlen)) == NULL)
		goto fail;
	if ((seq = append_from_backup(neu, a, &b, dir, out)) < 0) {
		snprintf(err, errlen, "writing the restore to the audit log "
		    "failed: %s", store_error(neu));
		goto fail;
	}
	out->restore_seq = (uint64_t)seq;
	audit_close(a);
	store_close(neu);
	if (stage_swap(&s, out, err, errlen) < 0)
		goto fail;
	return STORE_CKPT_OK;
fail:
	audit_close(a);
	store_close(neu);
	stage_abandon(&s);
	return rc;
}
