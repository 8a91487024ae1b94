/*
 * hset.h — a set of 64-bit hashes of strings, to know without a store
 * lookup that a key was never written (a patient never indexed, an ID
 * never merged). A hit may be a collision: the caller then looks in the
 * store as it would have anyway. Nothing is taken out.
 */
#ifndef VNAMIG_HSET_H
#define VNAMIG_HSET_H

#include <stddef.h>
#include <stdint.h>

struct hset {
	uint64_t	*v;		/* open addressing; 0: empty */
	size_t		 n, cap;
};

void	hset_add(struct hset *s, const char *key);
int	hset_may(const struct hset *s, const char *key);	/* 0: never */
void	hset_free(struct hset *s);
/* the hash of n bytes (FNV-1a), never 0 */
uint64_t hset_hash(const void *p, size_t n);

#endif
