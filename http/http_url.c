/*
 * http_url.c — see http_url.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http/http_url.h"

static int
is_ctl_or_space(unsigned char c)
{
	return c <= ' ' || c == 0x7f;
}

/* A DNS name as RFC 1123 allows it: labels of letters, digits and '-'
 * (not at either end), 1-63 bytes each, separated by dots. */
static int
valid_name(const char *h)
{
	size_t label = 0;
	char prev = '.';

	for (const char *p = h; *p; p++) {
		if (*p == '.') {
			if (label == 0 || prev == '-')
				return 0;
			label = 0;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= '0' &&
		    *p <= '9') || *p == '-' || *p == '_') {
			if (label == 0 && *p == '-')
				return 0;
			if (++label > 63)
				return 0;
		} else
			return 0;
		prev = *p;
	}
	return prev != '-';
}

/* host[:port] of the authority [a, e) into u. */
static int
parse_authority(const char *a, const char *e, struct http_url *u, char *err,
    size_t cap)
{
	const char *hs = a, *he, *colon = NULL;
	unsigned char tmp[16];
	size_t n;

	if (memchr(a, '@', (size_t)(e - a)) != NULL) {
		snprintf(err, cap, "user:password@ in a URL is not taken; "
		    "give credentials in a header");
		return -1;
	}
	if (a < e && *a == '[') {
		if ((he = memchr(a, ']', (size_t)(e - a))) == NULL) {
			snprintf(err, cap, "unclosed '[' in the host");
			return -1;
		}
		hs = a + 1;
		if (he + 1 < e) {
			if (he[1] != ':') {
				snprintf(err, cap, "bytes after the IPv6 "
				    "address in the host");
				return -1;
			}
			colon = he + 1;
		}
	} else {
		colon = memchr(a, ':', (size_t)(e - a));
		he = colon ? colon : e;
	}
	n = (size_t)(he - hs);
	if (n == 0 || n > HTTP_URL_HOST_MAX) {
		snprintf(err, cap, "the host is %s", n ? "too long" : "empty");
		return -1;
	}
	memcpy(u->host, hs, n);
	u->host[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (u->host[i] >= 'A' && u->host[i] <= 'Z')
			u->host[i] = (char)(u->host[i] - 'A' + 'a');
	if (hs != a) {
		if (inet_pton(AF_INET6, u->host, tmp) != 1) {
			snprintf(err, cap, "\"%s\" is not an IPv6 address",
			    u->host);
			return -1;
		}
		u->ip = 1;
	} else if (inet_pton(AF_INET, u->host, tmp) == 1)
		u->ip = 1;
	else if (!valid_name(u->host)) {
		snprintf(err, cap, "\"%s\" is not a host name or address",
		    u->host);
		return -1;
	}
	u->port = u->https ? 443 : 80;
	if (colon != NULL) {
		unsigned long p = 0;
		const char *q;

		for (q = colon + 1; q < e && *q >= '0' && *q <= '9' &&
		    p <= 65535; q++)
			p = p * 10 + (unsigned long)(*q - '0');
		if (q == colon + 1 || q != e || p == 0 || p > 65535) {
			snprintf(err, cap, "the port is not a number from 1 "
			    "to 65535");
			return -1;
		}
		u->port = (uint16_t)p;
		u->port_given = 1;
	}
	return 0;
}

int
http_url_parse(const char *url, struct http_url *u, char *err, size_t cap)
{
	size_t len = strlen(url);
	const char *a, *e, *frag;

	memset(u, 0, sizeof(*u));
	if (len > HTTP_URL_MAX) {
		snprintf(err, cap, "the URL is longer than %d bytes",
		    HTTP_URL_MAX);
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		if (is_ctl_or_space((unsigned char)url[i])) {
			snprintf(err, cap, "a space or control byte at offset "
			    "%zu of the URL", i);
			return -1;
		}
	if (strncasecmp(url, "https://", 8) == 0) {
		u->https = 1;
		a = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0)
		a = url + 7;
	else {
		snprintf(err, cap, "the URL must start with http:// or "
		    "https://");
		return -1;
	}
	e = a + strcspn(a, "/?#");
	if (parse_authority(a, e, u, err, cap) < 0)
		return -1;
	frag = strchr(e, '#');
	u->target_off = (size_t)(e - url);
	u->target_len = frag ? (size_t)(frag - e) : strlen(e);
	return 0;
}

void
http_url_authority(const struct http_url *u, char *out, size_t cap)
{
	int v6 = strchr(u->host, ':') != NULL;

	if (u->port == (u->https ? 443 : 80))
		snprintf(out, cap, v6 ? "[%s]" : "%s", u->host);
	else
		snprintf(out, cap, v6 ? "[%s]:%u" : "%s:%u", u->host,
		    (unsigned)u->port);
}

/* ---------------------------------------------------------------------- */
/* Retry-After. */

static int
month(const char *s)
{
	static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

	for (int i = 0; i < 12; i++)
		if (strncmp(s, names + 3 * i, 3) == 0)
			return i;
	return -1;
}

/* d digits at s into *v (no sign, no spaces); 0 or -1. */
static int
digits(const char *s, int d, int *v)
{
	*v = 0;
	for (int i = 0; i < d; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

/* "08:49:37" */
static int
clock_of(const char *s, struct tm *tm)
{
	if (digits(s, 2, &tm->tm_hour) < 0 || s[2] != ':' ||
	    digits(s + 3, 2, &tm->tm_min) < 0 || s[5] != ':' ||
	    digits(s + 6, 2, &tm->tm_sec) < 0)
		return -1;
	return tm->tm_hour < 24 && tm->tm_min < 60 && tm->tm_sec < 61 ? 0 : -1;
}

/*
 * The three forms RFC 9110 section 5.6.7 has recipients accept:
 *	Sun, 06 Nov 1994 08:49:37 GMT	(IMF-fixdate)
 *	Sunday, 06-Nov-94 08:49:37 GMT	(RFC 850)
 *	Sun Nov  6 08:49:37 1994	(asctime)
 */
static int
http_date(const char *s, time_t *out)
{
	struct tm tm;
	const char *comma = strchr(s, ',');
	int y;

	memset(&tm, 0, sizeof(tm));
	if (comma != NULL && comma - s == 3 && strlen(comma) == 26) {
		const char *p = comma + 2;

		if (comma[1] != ' ' || digits(p, 2, &tm.tm_mday) < 0 ||
		    p[2] != ' ' || (tm.tm_mon = month(p + 3)) < 0 ||
		    p[6] != ' ' || digits(p + 7, 4, &y) < 0 || p[11] != ' ' ||
		    clock_of(p + 12, &tm) < 0 || strcmp(p + 20, " GMT") != 0)
			return -1;
		tm.tm_year = y - 1900;
	} else if (comma != NULL && strlen(comma) == 24) {
		const char *p = comma + 2;

		if (comma[1] != ' ' || digits(p, 2, &tm.tm_mday) < 0 ||
		    p[2] != '-' || (tm.tm_mon = month(p + 3)) < 0 ||
		    p[6] != '-' || digits(p + 7, 2, &y) < 0 || p[9] != ' ' ||
		    clock_of(p + 10, &tm) < 0 || strcmp(p + 18, " GMT") != 0)
			return -1;
		/* RFC 9110: a two-digit year more than 50 years ahead is
		 * of the last century; 70-99 is safe enough for delays */
		tm.tm_year = y < 70 ? y + 100 : y;
	} else if (comma == NULL && strlen(s) == 24) {
		if (s[3] != ' ' || (tm.tm_mon = month(s + 4)) < 0 ||
		    s[7] != ' ' || digits(s + 8 + (s[8] == ' '),
		    s[8] == ' ' ? 1 : 2, &tm.tm_mday) < 0 || s[10] != ' ' ||
		    clock_of(s + 11, &tm) < 0 || s[19] != ' ' ||
		    digits(s + 20, 4, &y) < 0)
			return -1;
		tm.tm_year = y - 1900;
	} else
		return -1;
	if (tm.tm_mday < 1 || tm.tm_mday > 31)
		return -1;
	*out = timegm(&tm);
	return *out == (time_t)-1 ? -1 : 0;
}

int
http_retry_after(const char *value, time_t now, uint64_t *ms)
{
	const char *s = value;
	uint64_t secs = 0;
	time_t t;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s >= '0' && *s <= '9') {
		for (; *s >= '0' && *s <= '9'; s++) {
			if (secs > UINT64_MAX / 10000)
				secs = UINT64_MAX / 10000;	/* saturate */
			else
				secs = secs * 10 + (uint64_t)(*s - '0');
		}
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s != '\0')
			return -1;
		*ms = secs * 1000;
		return 0;
	}
	if (http_date(s, &t) < 0)
		return -1;
	*ms = t > now ? (uint64_t)(t - now) * 1000 : 0;
	return 0;
}
