/*
 * http_url.h — the parts of HTTP a client needs besides the response
 * parser: absolute http:// and https:// URLs (RFC 3986 section 3, as
 * RFC 9110 section 4.2 restricts them) and Retry-After values (RFC 9110
 * section 10.2.3). Pure: no sockets, no clock of its own.
 */
#ifndef VNAMIG_HTTP_URL_H
#define VNAMIG_HTTP_URL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define HTTP_URL_MAX		2048	/* longest URL taken */
#define HTTP_URL_HOST_MAX	253	/* a DNS name; an address is shorter */

struct http_url {
	int		 https;		/* 1 https, 0 http */
	char		 host[HTTP_URL_HOST_MAX + 1];	/* a name (lower
					 * case) or an address, no brackets */
	int		 ip;		/* host is an IPv4 / IPv6 literal */
	uint16_t	 port;		/* given, or 80 / 443 */
	int		 port_given;
	/* The request target (path and query, no fragment) as an offset
	 * into the string parsed; length 0 means "/". */
	size_t		 target_off, target_len;
};

/*
 * http_url_parse: split URL (NUL-terminated, at most HTTP_URL_MAX bytes)
 * into u. Refused, with a reason in err (cap bytes): another scheme,
 * user:password@ (credentials belong in a header), an empty or invalid
 * host, a port outside 1-65535, spaces or control bytes anywhere.
 * Returns 0 or -1.
 */
int http_url_parse(const char *url, struct http_url *u, char *err,
    size_t cap);

/*
 * http_url_authority: the Host header value for u ("name", "name:8080",
 * "[::1]:8443"; the port only when it is not the scheme's default).
 */
void http_url_authority(const struct http_url *u, char *out, size_t cap);

/*
 * http_retry_after: a Retry-After value (delay-seconds or an HTTP-date)
 * as milliseconds from now (the wall clock, given); a date in the past
 * is 0. Returns 0, or -1 when the value is neither.
 */
int http_retry_after(const char *value, time_t now, uint64_t *ms);

#endif
