/*
 * http_util.h — the small pieces both HTTP parsers (http_req.c for
 * requests, http_resp.c for responses) need: buffer growth that never
 * fails quietly, and the ASCII character classes of RFC 9110. Pure.
 */
#ifndef VNAMIG_HTTP_UTIL_H
#define VNAMIG_HTTP_UTIL_H

#include <stddef.h>

/* realloc that aborts on out of memory (n 0 counts as 1). */
void *http_xrealloc(void *p, size_t n);
/* Make *buf hold at least need bytes, doubling from at least min but not
 * past max unless need is. Aborts on out of memory. */
void http_grow(char **buf, size_t *cap, size_t need, size_t min,
    size_t max);
/* A-Z to a-z, other bytes unchanged. */
int http_ascii_lower(int c);
/* 1 when s[0..len) equals the lower-case word, ignoring case. */
int http_ascii_caseeq(const char *s, size_t len, const char *word);
/* RFC 9110 section 5.6.2: tchar, the characters of a header name. */
int http_is_tchar(unsigned char c);

#endif
