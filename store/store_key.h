/*
 * store_key.h — RocksDB keys as big-endian binary tuples, so that the
 * byte order RocksDB sorts by is the order of the tuple's fields: integers
 * big-endian, strings order-preserving (0x00 escaped as 0x00 0xFF, ended
 * by 0x00 0x00). store/SCHEMA.md lists every key built from these. Pure.
 */
#ifndef VNAMIG_STORE_KEY_H
#define VNAMIG_STORE_KEY_H

#include <stddef.h>
#include <stdint.h>

#define STORE_KEY_MAX	512

struct store_key {
	size_t	 len;
	int	 overflow;	/* a field did not fit: the key is unusable */
	uint8_t	 b[STORE_KEY_MAX];
};

void store_key_init(struct store_key *k);
void store_key_u8(struct store_key *k, uint8_t v);
void store_key_u32(struct store_key *k, uint32_t v);
void store_key_u64(struct store_key *k, uint64_t v);
/* N bytes of S (which may hold NUL), order-preserving and self-delimiting. */
void store_key_str(struct store_key *k, const char *s, size_t n);
void store_key_cstr(struct store_key *k, const char *s);

/* Reading a key back, field by field; err is set on the first bad field. */
struct store_kreader {
	const uint8_t	*p;
	size_t		 n, off;
	int		 err;
};

void store_kreader_init(struct store_kreader *r, const void *key, size_t n);
uint8_t store_kreader_u8(struct store_kreader *r);
uint32_t store_kreader_u32(struct store_kreader *r);
uint64_t store_kreader_u64(struct store_kreader *r);
/* A string field into BUF (NUL-terminated); returns its length, or
 * (size_t)-1 with err set when it is malformed or BUF is too small. */
size_t store_kreader_str(struct store_kreader *r, char *buf, size_t bufsz);
/* 1 when every byte was consumed without error. */
int store_kreader_done(const struct store_kreader *r);

/* Big-endian helpers for values. */
void store_be64_put(uint8_t *p, uint64_t v);
uint64_t store_be64_get(const uint8_t *p);

#endif
