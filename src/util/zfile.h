/*
 * zfile.h — a stdio FILE that zstd-compresses what is written to it into
 * another FILE (fopencookie), for exports that may be .zst.
 */
#ifndef VNAMIG_ZFILE_H
#define VNAMIG_ZFILE_H

#include <stdio.h>

/* Writes to the result are compressed at LEVEL into DST; fclose() of the
 * result ends the zstd frame and flushes DST (DST stays open). NULL on
 * failure. */
FILE *zfile_writer(FILE *dst, int level);

#endif
