/*
 * vfy_lines.c — the line reader (vfy_lines.h). One buffer holds the
 * bytes read (or decompressed) and not yet returned; it grows to the
 * line limit at most, and what was returned is dropped before refilling.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "src/verify/vfy_lines.h"

#define BUF_START	(64 * 1024)

struct vfy_lines {
	FILE		*f;
	const char	*path;
	size_t		 max;
	char		*buf;
	size_t		 cap;
	size_t		 start, end;	/* bytes not yet returned */
	size_t		 scan;		/* no "\n" in [start, scan) */
	int		 eof;
	ZSTD_DCtx	*z;		/* NULL: plain */
	void		*zin;
	ZSTD_inBuffer	 in;
	size_t		 zlast;		/* last ZSTD_decompressStream hint */
	int		 zfull;		/* its output was full: flush more */
	int		 zany;		/* any compressed byte read */
	char		 err[256];
};

struct vfy_lines *
vfy_lines_open(const char *path, int zstd, size_t max, char *err,
    size_t errlen)
{
	struct vfy_lines *l = calloc(1, sizeof(*l));

	if (l == NULL)
		abort();
	l->path = path;
	l->max = max;
	l->cap = BUF_START;
	if ((l->buf = malloc(l->cap)) == NULL)
		abort();
	if (zstd) {
		if ((l->z = ZSTD_createDCtx()) == NULL ||
		    (l->zin = malloc(ZSTD_DStreamInSize())) == NULL)
			abort();
	}
	if ((l->f = fopen(path, "rbe")) == NULL) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		vfy_lines_close_(l);
		return NULL;
	}
	return l;
}

void
vfy_lines_close_(struct vfy_lines *l)
{
	if (l == NULL)
		return;
	if (l->f != NULL)
		fclose(l->f);
	ZSTD_freeDCtx(l->z);
	free(l->zin);
	free(l->buf);
	free(l);
}

const char *
vfy_lines_error(const struct vfy_lines *l)
{
	return l->err;
}

static int
read_error(struct vfy_lines *l)
{
	snprintf(l->err, sizeof(l->err), "reading %s: %s", l->path,
	    strerror(errno));
	return -1;
}

/* More decompressed bytes at buf[end..cap): 0 (maybe eof), -1. */
static int
fill_zstd(struct vfy_lines *l)
{
	size_t before = l->end;

	while (l->end == before) {
		if (l->in.pos == l->in.size && !l->zfull) {
			size_t k = fread(l->zin, 1, ZSTD_DStreamInSize(), l->f);

			if (k == 0) {
				if (ferror(l->f))
					return read_error(l);
				l->eof = 1;
				if (!l->zany || l->zlast != 0) {
					snprintf(l->err, sizeof(l->err), "%s: "
					    "%s", l->path, !l->zany ? "empty, "
					    "not a zstd stream" : "the zstd "
					    "stream ends inside a frame (the "
					    "file was cut)");
					return -1;
				}
				return 0;
			}
			l->zany = 1;
			l->in.src = l->zin;
			l->in.size = k;
			l->in.pos = 0;
		}
		ZSTD_outBuffer out = { l->buf, l->cap, l->end };
		size_t r = ZSTD_decompressStream(l->z, &out, &l->in);

		if (ZSTD_isError(r)) {
			snprintf(l->err, sizeof(l->err), "%s: bad zstd data: "
			    "%s", l->path, ZSTD_getErrorName(r));
			return -1;
		}
		l->zlast = r;
		l->zfull = out.pos == out.size;
		l->end = out.pos;
	}
	return 0;
}

/* More bytes at buf[end..cap) (cap > end): 0 (maybe eof), -1. */
static int
fill(struct vfy_lines *l)
{
	size_t k;

	if (l->z != NULL)
		return fill_zstd(l);
	k = fread(l->buf + l->end, 1, l->cap - l->end, l->f);
	if (k == 0) {
		if (ferror(l->f))
			return read_error(l);
		l->eof = 1;
	}
	l->end += k;
	return 0;
}

enum vfy_line
vfy_lines_next(struct vfy_lines *l, const char **line, size_t *len)
{
	for (;;) {
		char *nl = memchr(l->buf + l->scan, '\n', l->end - l->scan);

		if (nl != NULL) {
			*line = l->buf + l->start;
			*len = (size_t)(nl - *line);
			l->start = l->scan = (size_t)(nl - l->buf) + 1;
			return *len > l->max ? VFY_LINE_LONG : VFY_LINE_OK;
		}
		l->scan = l->end;
		if (l->end - l->start > l->max)
			return VFY_LINE_LONG;
		if (l->eof) {
			*line = l->buf + l->start;
			*len = l->end - l->start;
			l->start = l->scan = l->end;
			return *len == 0 ? VFY_LINE_EOF : VFY_LINE_CUT;
		}
		if (l->start > 0) {
			memmove(l->buf, l->buf + l->start,
			    l->end - l->start);
			l->end -= l->start;
			l->scan -= l->start;
			l->start = 0;
		}
		if (l->end == l->cap) {
			char *nb;

			if ((nb = realloc(l->buf, 2 * l->cap)) == NULL)
				abort();
			l->buf = nb;
			l->cap *= 2;
		}
		if (fill(l) < 0)
			return VFY_LINE_ERR;
	}
}
