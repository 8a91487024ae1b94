/*
 * hset.c — see hset.h.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "src/util/hset.h"

/* FNV-1a, never 0 (an empty slot) */
uint64_t
hset_hash(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h ? h : 1;
}

static uint64_t
hash(const char *key)
{
	return hset_hash(key, strlen(key));
}

void
hset_add(struct hset *s, const char *key)
{
	uint64_t h = hash(key);
	size_t i;

	if (2 * (s->n + 1) > s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 4096;
		uint64_t *v = calloc(cap, sizeof(*v));

		if (v == NULL)
			abort();
		for (size_t j = 0; j < s->cap; j++)
			if (s->v[j] != 0) {
				for (i = s->v[j] & (cap - 1); v[i] != 0;
				    i = (i + 1) & (cap - 1))
					;
				v[i] = s->v[j];
			}
		free(s->v);
		s->v = v;
		s->cap = cap;
	}
	for (i = h & (s->cap - 1); s->v[i] != 0; i = (i + 1) & (s->cap - 1))
		if (s->v[i] == h)
			return;
	s->v[i] = h;
	s->n++;
}

int
hset_may(const struct hset *s, const char *key)
{
	uint64_t h = hash(key);

	if (s->cap == 0)
		return 0;
	for (size_t i = h & (s->cap - 1); s->v[i] != 0;
	    i = (i + 1) & (s->cap - 1))
		if (s->v[i] == h)
			return 1;
	return 0;
}

void
hset_free(struct hset *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}
