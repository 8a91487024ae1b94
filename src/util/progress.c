/*
 * progress.c — see progress.h.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "src/util/progress.h"

void
progress_init(struct progress *p, uint64_t total, const char *what)
{
	memset(p, 0, sizeof(*p));
	p->on = isatty(STDERR_FILENO);
	p->total = total;
	p->what = what;
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
}

static double
since(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec -
	    a->tv_nsec) / 1e9;
}

void
progress_add(struct progress *p, uint64_t n, uint64_t bytes)
{
	static const char bar[] = "##############################";
	struct timespec now;
	double dt, mib;

	p->n += n;
	p->bytes += bytes;
	if (!p->on)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (p->drawn && since(&p->last, &now) < 0.1)
		return;
	p->last = now;
	dt = since(&p->t0, &now);
	mib = (double)p->bytes / 1048576;
	if (p->total > 0)
		fprintf(stderr, "\r[%-30.*s] %llu/%llu %s, %.1f MiB, %.1f "
		    "MiB/s ", (int)(30 * (p->n < p->total ? p->n : p->total) /
		    p->total), bar, (unsigned long long)p->n,
		    (unsigned long long)p->total, p->what, mib, dt > 0 ?
		    mib / dt : 0.0);
	else
		fprintf(stderr, "\r%llu %s, %.1f MiB, %.1f MiB/s ",
		    (unsigned long long)p->n, p->what, mib, dt > 0 ? mib / dt :
		    0.0);
	p->drawn = 1;
}

void
progress_clear(struct progress *p)
{
	if (p->on && p->drawn) {
		fputs("\r\033[K", stderr);
		p->drawn = 0;
	}
}

void
progress_end(struct progress *p)
{
	progress_clear(p);
	p->on = 0;
}
