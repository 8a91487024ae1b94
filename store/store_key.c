/*
 * store_key.c — order-preserving key tuples (see store_key.h).
 */
#include "config.h"

#include <string.h>

#include "store/store_key.h"

void
store_be64_put(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

uint64_t
store_be64_get(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

void
store_key_init(struct store_key *k)
{
	k->len = 0;
	k->overflow = 0;
}

static void
put(struct store_key *k, const uint8_t *p, size_t n)
{
	if (k->overflow || n > STORE_KEY_MAX - k->len) {
		k->overflow = 1;
		return;
	}
	memcpy(k->b + k->len, p, n);
	k->len += n;
}

void
store_key_u8(struct store_key *k, uint8_t v)
{
	put(k, &v, 1);
}

void
store_key_u32(struct store_key *k, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
	    (uint8_t)(v >> 8), (uint8_t)v };

	put(k, b, 4);
}

void
store_key_u64(struct store_key *k, uint64_t v)
{
	uint8_t b[8];

	store_be64_put(b, v);
	put(k, b, 8);
}

void
store_key_str(struct store_key *k, const char *s, size_t n)
{
	static const uint8_t esc[2] = { 0x00, 0xff }, end[2] = { 0x00, 0x00 };
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		if (s[i] != '\0')
			continue;
		put(k, (const uint8_t *)s + run, i - run);
		put(k, esc, 2);
		run = i + 1;
	}
	put(k, (const uint8_t *)s + run, n - run);
	put(k, end, 2);
}

void
store_key_cstr(struct store_key *k, const char *s)
{
	store_key_str(k, s, strlen(s));
}

void
store_kreader_init(struct store_kreader *r, const void *key, size_t n)
{
	r->p = key;
	r->n = n;
	r->off = 0;
	r->err = 0;
}

static const uint8_t *
take(struct store_kreader *r, size_t n)
{
	const uint8_t *p;

	if (r->err || n > r->n - r->off) {
		r->err = 1;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t
store_kreader_u8(struct store_kreader *r)
{
	const uint8_t *p = take(r, 1);

	return p ? p[0] : 0;
}

uint32_t
store_kreader_u32(struct store_kreader *r)
{
	const uint8_t *p = take(r, 4);

	return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3] : 0;
}

uint64_t
store_kreader_u64(struct store_kreader *r)
{
	const uint8_t *p = take(r, 8);

	return p ? store_be64_get(p) : 0;
}

size_t
store_kreader_str(struct store_kreader *r, char *buf, size_t bufsz)
{
	size_t o = 0;

	while (!r->err) {
		const uint8_t *p = take(r, 1);

		if (p == NULL)
			break;
		if (*p == 0x00) {
			const uint8_t *q = take(r, 1);

			if (q == NULL)
				break;
			if (*q == 0x00) {
				if (o >= bufsz)
					break;
				buf[o] = '\0';
				return o;
			}
			if (*q != 0xff) {
				r->err = 1;
				break;
			}
		}
		if (o + 1 >= bufsz) {
			r->err = 1;
			break;
		}
		buf[o++] = (char)*p;
	}
	r->err = 1;
	if (bufsz > 0)
		buf[0] = '\0';
	return (size_t)-1;
}

int
store_kreader_done(const struct store_kreader *r)
{
	return !r->err && r->off == r->n;
}
