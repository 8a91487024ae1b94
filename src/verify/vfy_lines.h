/*
 * vfy_lines.h — read a file line by line, plain or zstd-compressed, in
 * memory bounded by the longest line allowed (not by the file's size).
 *
 * Part of vnamig-verify, which shares no code with the daemon.
 */
#ifndef VFY_LINES_H
#define VFY_LINES_H

#include <stddef.h>

enum vfy_line {
	VFY_LINE_OK,		/* a line, without its "\n" */
	VFY_LINE_EOF,		/* no more: the input ended after a "\n" */
	VFY_LINE_CUT,		/* the input ends inside a line: no "\n" */
	VFY_LINE_LONG,		/* a line longer than the limit */
	VFY_LINE_ERR		/* a read or zstd error: vfy_lines_error() */
};

struct vfy_lines;

/*
 * vfy_lines_open: open PATH; ZSTD set: it is a zstd stream (one frame or
 * more) to decompress. Lines longer than MAX bytes are refused. NULL
 * with the reason in ERR when PATH cannot be opened.
 */
struct vfy_lines	*vfy_lines_open(const char *path, int zstd, size_t max,
			    char *err, size_t errlen);
void			 vfy_lines_close_(struct vfy_lines *);
#define vfy_lines_close(l) do { vfy_lines_close_(l); (l) = NULL; } while (0)

/*
 * vfy_lines_next: the next line in *LINE (*LEN bytes, no "\n"; also the
 * unterminated rest for VFY_LINE_CUT). The bytes stay valid until the
 * next call.
 */
enum vfy_line		 vfy_lines_next(struct vfy_lines *, const char **line,
			    size_t *len);
/* Why the last call returned VFY_LINE_ERR. */
const char		*vfy_lines_error(const struct vfy_lines *);

#endif
