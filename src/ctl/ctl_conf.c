/*
 * ctl_conf.c — where vnamigctl finds the server, its key and the CA
 * certificates. Each item is taken from the first place that has it:
 *
 *	1. the flags --url, --key or --key-file, --cacert
 *	2. the environment: VNAMIG_URL, VNAMIG_KEY
 *	3. ctl.yaml (--config FILE, default ~/.config/vnamig/ctl.yaml, or
 *	   $XDG_CONFIG_HOME/vnamig/ctl.yaml): url, key, key_file, cacert
 *	4. the default URL http://127.0.0.1:8080, no key
 *
 * Secrets stay private: a key file or a ctl.yaml that the group or
 * others may read (or write) is refused, with the chmod that fixes it.
 */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "src/ctl/ctl.h"

#define DEFAULT_URL	"http://127.0.0.1:8080"
#define KEY_MAX		4096	/* bytes of a key file read */
#define YAML_MAX	(64 * 1024)

/* What ctl.yaml holds (malloc'd, or NULL). */
struct yconf {
	char	*url, *key, *key_file, *cacert;
};

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(CTL_CONN);
	}
	return p;
}

static char *
xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(CTL_CONN);
	}
	return p;
}

/* path_join: DIR/NAME, or NAME when it is absolute (malloc'd). "~/x"
 * is the home directory's x. */
static char *
path_join(const char *dir, const char *name, const char *home)
{
	char *p;
	size_t n;

	if (name[0] == '/')
		return xstrdup(name);
	if (name[0] == '~' && name[1] == '/' && home != NULL)
		dir = home, name += 2;
	n = strlen(dir) + strlen(name) + 2;
	if ((p = malloc(n)) == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(CTL_CONN);
	}
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static const char *
home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h != NULL && h[0] == '/')
		return h;
	pw = getpwuid(getuid());
	return pw != NULL && pw->pw_dir != NULL ? pw->pw_dir : NULL;
}

int
ctl_check_private(const char *path, const char *what)
{
	struct stat sb;

	if (stat(path, &sb) < 0) {
		fprintf(stderr, PROG ": %s %s: %s\n", what, path,
		    strerror(errno));
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		fprintf(stderr, PROG ": %s %s is not a regular file\n", what,
		    path);
		return -1;
	}
	if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
		fprintf(stderr, PROG ": %s %s is open to the group or others "
		    "(mode %04o) and may hold a key: refused; run chmod 600 "
		    "%s\n", what, path, (unsigned)(sb.st_mode & 07777), path);
		return -1;
	}
	return 0;
}

/* A bearer token: visible ASCII only (it goes into a header line). */
static int
token_ok(const char *t, const char *from)
{
	const unsigned char *p;

	if (t[0] == '\0') {
		fprintf(stderr, PROG ": the API key from %s is empty\n", from);
		return 0;
	}
	for (p = (const unsigned char *)t; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f) {
			fprintf(stderr, PROG ": the API key from %s has a "
			    "character that cannot be sent (only visible "
			    "ASCII, no spaces)\n", from);
			return 0;
		}
	return 1;
}

/* read_key_file: the first line of PATH, blanks trimmed (malloc'd). */
static char *
read_key_file(const char *path)
{
	char buf[KEY_MAX + 1], *nl;
	size_t n, i;
	FILE *f;

	if (ctl_check_private(path, "key file") < 0)
		return NULL;
	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, PROG ": key file %s: %s\n", path,
		    strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, KEY_MAX, f);
	fclose(f);
	buf[n] = '\0';
	if ((nl = strpbrk(buf, "\r\n")) != NULL)
		*nl = '\0';
	for (i = strlen(buf); i > 0 && (buf[i - 1] == ' ' ||
	    buf[i - 1] == '\t'); i--)
		buf[i - 1] = '\0';
	for (i = 0; buf[i] == ' ' || buf[i] == '\t'; i++)
		;
	return xstrdup(buf + i);
}

/* --- ctl.yaml ------------------------------------------------------ */

static void
yconf_free(struct yconf *y)
{
	free(y->url);
	free(y->key);
	free(y->key_file);
	free(y->cacert);
	memset(y, 0, sizeof(*y));
}

/* yaml_slot: where the value of KEY goes; NULL after saying why. */
static char **
yaml_slot(struct yconf *y, const char *key, const char *path, size_t line)
{
	char **slot;

	if (strcmp(key, "url") == 0)
		slot = &y->url;
	else if (strcmp(key, "key") == 0)
		slot = &y->key;
	else if (strcmp(key, "key_file") == 0)
		slot = &y->key_file;
	else if (strcmp(key, "cacert") == 0)
		slot = &y->cacert;
	else {
		fprintf(stderr, PROG ": %s line %zu: unknown key \"%s\" "
		    "(known: url, key, key_file, cacert)\n", path, line, key);
		return NULL;
	}
	if (*slot != NULL) {
		fprintf(stderr, PROG ": %s line %zu: \"%s\" given twice\n",
		    path, line, key);
		return NULL;
	}
	return slot;
}

/*
 * yaml_load: read PATH, a mapping of the scalar keys url, key, key_file,
 * cacert (anything else is refused, so a typo is not silently ignored).
 * 0 (also for an empty file), or -1 after saying what and on which line.
 */
static int
yaml_load(const char *path, struct yconf *y)
{
	yaml_parser_t p;
	yaml_event_t ev;
	char **slot = NULL, buf[YAML_MAX + 1];
	FILE *f;
	size_t n;
	int depth = 0, rc = -1, done = 0;

	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n > YAML_MAX) {
		fprintf(stderr, PROG ": %s: larger than %d bytes\n", path,
		    YAML_MAX);
		return -1;
	}
	if (!yaml_parser_initialize(&p))
		return -1;
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, n);
	while (!done) {
		if (!yaml_parser_parse(&p, &ev)) {
			fprintf(stderr, PROG ": %s line %zu: %s\n", path,
			    p.problem_mark.line + 1, p.problem ? p.problem :
			    "YAML error");
			goto out;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_MAPPING_START_EVENT:
			if (++depth > 1 || slot != NULL)
				goto nested;
			break;
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_ALIAS_EVENT:
			goto nested;
		case YAML_SCALAR_EVENT: {
			const char *v = (const char *)ev.data.scalar.value;

			if (depth != 1)
				goto nested;
			if (slot != NULL) {
				*slot = xstrndup(v, ev.data.scalar.length);
				slot = NULL;
				break;
			}
			if ((slot = yaml_slot(y, v, path,
			    ev.start_mark.line + 1)) == NULL)
				goto bad;
			break;
		}
		default:
			break;
		}
		yaml_event_delete(&ev);
		continue;
nested:
		fprintf(stderr, PROG ": %s line %zu: expected \"key: value\" "
		    "lines (url, key, key_file, cacert)\n", path,
		    ev.start_mark.line + 1);
bad:
		yaml_event_delete(&ev);
		goto out;
	}
	if (y->key != NULL && y->key_file != NULL) {
		fprintf(stderr, PROG ": %s: give key or key_file, not both\n",
		    path);
		goto out;
	}
	rc = 0;
out:
	yaml_parser_delete(&p);
	if (rc != 0)
		yconf_free(y);
	return rc;
}

/* --- the URL ------------------------------------------------------- */

int
ctl_url_parse(const char *url, struct ctl_url *u, char *err, size_t errlen)
{
	const char *h, *end, *ps, *pe;
	unsigned long port;
	char *e;

	memset(u, 0, sizeof(*u));
	if (strncmp(url, "http://", 7) == 0)
		h = url + 7;
	else if (strncmp(url, "https://", 8) == 0) {
		h = url + 8;
		u->tls = 1;
	} else {
		snprintf(err, errlen, "\"%s\" is not an http:// or https:// "
		    "URL", url);
		return -1;
	}
	if (strpbrk(url, "?#@ \t\r\n") != NULL) {
		snprintf(err, errlen, "\"%s\": no user, query, fragment or "
		    "blanks in the server URL", url);
		return -1;
	}
	if (*h == '[') {
		if ((end = strchr(h, ']')) == NULL) {
			snprintf(err, errlen, "\"%s\": unclosed [", url);
			return -1;
		}
		u->host = xstrndup(h + 1, (size_t)(end - h - 1));
		end++;
	} else {
		end = h + strcspn(h, ":/");
		u->host = xstrndup(h, (size_t)(end - h));
	}
	if (u->host[0] == '\0') {
		snprintf(err, errlen, "\"%s\": no host", url);
		goto bad;
	}
	if (*end == ':') {
		ps = end + 1;
		pe = ps + strcspn(ps, "/");
		errno = 0;
		port = strtoul(ps, &e, 10);
		if (ps == pe || e != pe || port == 0 || port > 65535 ||
		    *ps < '0' || *ps > '9') {
			snprintf(err, errlen, "\"%s\": the port is not a number "
			    "from 1 to 65535", url);
			goto bad;
		}
		u->port = xstrndup(ps, (size_t)(pe - ps));
		end = pe;
	} else
		u->port = xstrdup(u->tls ? "443" : "80");
	if (*end != '\0' && *end != '/') {
		snprintf(err, errlen, "\"%s\": unexpected \"%s\" after the "
		    "host", url, end);
		goto bad;
	}
	/* The path: a prefix before /api, without its trailing '/'. */
	pe = end + strlen(end);
	while (pe > end && pe[-1] == '/')
		pe--;
	u->prefix = xstrndup(end, (size_t)(pe - end));
	return 0;
bad:
	free(u->host);
	free(u->port);
	memset(u, 0, sizeof(*u));
	return -1;
}

/* --- resolving ----------------------------------------------------- */

static int
set_url(struct ctl *c, const char *url, const char *from)
{
	char err[512];
	size_t n;

	if (ctl_url_parse(url, &c->url, err, sizeof(err)) < 0) {
		fprintf(stderr, PROG ": %s (from %s)\n", err, from);
		return -1;
	}
	c->base = xstrdup(url);
	n = strlen(c->base);
	while (n > 0 && c->base[n - 1] == '/')
		c->base[--n] = '\0';
	return 0;
}

/* resolve_key: flag, environment, ctl.yaml, in that order. */
static int
resolve_key(struct ctl *c, struct yconf *y, const char *ypath,
    const char *ydir)
{
	static char from[600];
	const char *env = getenv("VNAMIG_KEY");
	char *kf;

	if (c->flag_key != NULL && c->flag_key_file != NULL) {
		fprintf(stderr, PROG ": give --key or --key-file, not both\n");
		return -1;
	}
	if (c->flag_key != NULL) {
		c->key = xstrdup(c->flag_key);
		c->key_from = "--key";
	} else if (c->flag_key_file != NULL) {
		if ((c->key = read_key_file(c->flag_key_file)) == NULL)
			return -1;
		snprintf(from, sizeof(from), "--key-file %s",
		    c->flag_key_file);
		c->key_from = from;
	} else if (env != NULL && env[0] != '\0') {
		c->key = xstrdup(env);
		c->key_from = "VNAMIG_KEY";
	} else if (y->key != NULL) {
		c->key = xstrdup(y->key);
		snprintf(from, sizeof(from), "key in %s", ypath);
		c->key_from = from;
	} else if (y->key_file != NULL) {
		kf = path_join(ydir, y->key_file, home_dir());
		c->key = read_key_file(kf);
		snprintf(from, sizeof(from), "%s (key_file in %s)", kf, ypath);
		c->key_from = from;
		free(kf);
		if (c->key == NULL)
			return -1;
	}
	if (c->key != NULL && !token_ok(c->key, c->key_from))
		return -1;
	return 0;
}

int
ctl_conf_resolve(struct ctl *c)
{
	struct yconf y;
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = home_dir();
	const char *env;
	char *ypath, *ydir = NULL, from[600];
	struct stat sb;
	int rc = CTL_USAGE;

	memset(&y, 0, sizeof(y));
	if (xdg != NULL && xdg[0] == '/')
		c->conf_dir = path_join(xdg, "vnamig", NULL);
	else
		c->conf_dir = path_join(home ? home : ".", ".config/vnamig",
		    NULL);
	if (c->flag_config != NULL)
		ypath = xstrdup(c->flag_config);
	else
		ypath = path_join(c->conf_dir, "ctl.yaml", NULL);
	if (c->flag_config != NULL || stat(ypath, &sb) == 0) {
		if (ctl_check_private(ypath, "configuration") < 0 ||
		    yaml_load(ypath, &y) < 0)
			goto out;
		/* Relative paths in it are relative to its directory. */
		ydir = xstrdup(ypath);
		if (strrchr(ydir, '/') != NULL)
			*strrchr(ydir, '/') = '\0';
		else
			strcpy(ydir, ".");
	}

	env = getenv("VNAMIG_URL");
	if (c->flag_url != NULL)
		rc = set_url(c, c->flag_url, "--url");
	else if (env != NULL && env[0] != '\0')
		rc = set_url(c, env, "VNAMIG_URL");
	else if (y.url != NULL) {
		snprintf(from, sizeof(from), "url in %s", ypath);
		rc = set_url(c, y.url, from);
	} else
		rc = set_url(c, DEFAULT_URL, "the default");
	if (rc != 0 || resolve_key(c, &y, ypath, ydir) < 0) {
		rc = CTL_USAGE;
		goto out;
	}
	if (c->flag_cacert != NULL)
		c->cacert = xstrdup(c->flag_cacert);
	else if (y.cacert != NULL)
		c->cacert = path_join(ydir, y.cacert, home);
	rc = CTL_OK;
out:
	yconf_free(&y);
	free(ypath);
	free(ydir);
	return rc;
}

void
ctl_conf_free(struct ctl *c)
{
	free(c->base);
	free(c->url.host);
	free(c->url.port);
	free(c->url.prefix);
	if (c->key != NULL) {
		explicit_bzero(c->key, strlen(c->key));
		free(c->key);
	}
	free(c->cacert);
	free(c->conf_dir);
}
