/*
 * mem.h — test helpers: a growing memory buffer usable as a ds_sink_fn,
 * and reading a whole file.
 */
#ifndef VNAMIG_T_MEM_H
#define VNAMIG_T_MEM_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mem {
	uint8_t	*p;
	size_t	 n, cap;
};

/* mem_sink: append p to the struct mem at arg (a ds_sink_fn). */
static __attribute__((unused)) int
mem_sink(void *arg, const uint8_t *p, size_t n)
{
	struct mem *m = arg;

	if (m->n + n > m->cap) {
		size_t cap = m->cap ? m->cap : 65536;

		while (cap < m->n + n)
			cap *= 2;
		if ((m->p = realloc(m->p, cap)) == NULL)
			abort();
		m->cap = cap;
	}
	memcpy(m->p + m->n, p, n);
	m->n += n;
	return 0;
}

/* slurp: the whole file at path (malloc'd, *n its size), NULL when it
 * cannot be read. */
static __attribute__((unused)) uint8_t *
slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	long len;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0) {
		fclose(f);
		return NULL;
	}
	rewind(f);
	if ((b = malloc((size_t)len + 1)) == NULL)
		abort();
	if (fread(b, 1, (size_t)len, f) != (size_t)len) {
		fclose(f);
		free(b);
		return NULL;
	}
	fclose(f);
	*n = (size_t)len;
	return b;
}

#endif
