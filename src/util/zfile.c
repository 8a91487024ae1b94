/*
 * zfile.c — see zfile.h.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "src/util/zfile.h"

struct zw {
	FILE		*dst;
	ZSTD_CCtx	*cc;
	void		*out;
	size_t		 outsz;
};

static int
drain(struct zw *z, ZSTD_inBuffer *in, ZSTD_EndDirective mode)
{
	size_t left;

	do {
		ZSTD_outBuffer ob = { z->out, z->outsz, 0 };

		left = ZSTD_compressStream2(z->cc, &ob, in, mode);
		if (ZSTD_isError(left)) {
			errno = EIO;
			return -1;
		}
		if (ob.pos > 0 && fwrite(z->out, 1, ob.pos, z->dst) != ob.pos)
			return -1;
	} while (mode == ZSTD_e_end ? left != 0 : in->pos < in->size);
	return 0;
}

static ssize_t
zw_write(void *cookie, const char *buf, size_t n)
{
	struct zw *z = cookie;
	ZSTD_inBuffer in = { buf, n, 0 };

	return drain(z, &in, ZSTD_e_continue) < 0 ? -1 : (ssize_t)n;
}

static int
zw_close(void *cookie)
{
	struct zw *z = cookie;
	ZSTD_inBuffer in = { NULL, 0, 0 };
	int r = drain(z, &in, ZSTD_e_end);

	if (fflush(z->dst) == EOF)
		r = -1;
	ZSTD_freeCCtx(z->cc);
	free(z->out);
	free(z);
	return r;
}

FILE *
zfile_writer(FILE *dst, int level)
{
	static const cookie_io_functions_t io = { NULL, zw_write, NULL,
	    zw_close };
	struct zw *z = calloc(1, sizeof(*z));
	FILE *f;

	if (z == NULL)
		return NULL;
	z->dst = dst;
	z->outsz = ZSTD_CStreamOutSize();
	if ((z->out = malloc(z->outsz)) == NULL ||
	    (z->cc = ZSTD_createCCtx()) == NULL ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(z->cc,
	    ZSTD_c_compressionLevel, level)) ||
	    (f = fopencookie(z, "w", io)) == NULL) {
		ZSTD_freeCCtx(z->cc);
		free(z->out);
		free(z);
		return NULL;
	}
	return f;
}
