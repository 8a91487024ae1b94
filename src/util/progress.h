/*
 * progress.h — a progress line on standard error for long command-line
 * work, drawn only when standard error is a terminal: "[#####.....]
 * 120/400 files, 88.0 MiB, 210.4 MiB/s" (without a known total: the
 * count, the bytes and the rate). Redrawn at most ten times a second;
 * cleared before anything else is written to the terminal.
 */
#ifndef VNAMIG_PROGRESS_H
#define VNAMIG_PROGRESS_H

#include <stdint.h>
#include <time.h>

struct progress {
	int		 on;		/* standard error is a terminal */
	int		 drawn;		/* a line is showing */
	uint64_t	 total;		/* 0: not known */
	uint64_t	 n, bytes;
	const char	*what;		/* "files", "instances" */
	struct timespec	 t0, last;
};

/* Start counting WHAT, TOTAL of them (0: not known). */
void	progress_init(struct progress *p, uint64_t total, const char *what);
/* N more done, of BYTES bytes. */
void	progress_add(struct progress *p, uint64_t n, uint64_t bytes);
/* Clear the line (before writing something else to standard error or a
 * terminal); the next progress_add draws it again. */
void	progress_clear(struct progress *p);
/* Done: clear the line for good. */
void	progress_end(struct progress *p);

#endif
