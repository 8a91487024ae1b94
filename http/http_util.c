/*
 * http_util.c — see http_util.h.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_util.h"

void *
http_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		abort();
	return q;
}

void
http_grow(char **buf, size_t *cap, size_t need, size_t min, size_t max)
{
	size_t n;

	if (need <= *cap)
		return;
	n = *cap < min ? min : *cap;
	while (n < need && n <= SIZE_MAX / 2)
		n *= 2;
	if (n > max)
		n = max;
	if (n < need)
		n = need;
	*buf = http_xrealloc(*buf, n);
	*cap = n;
}

int
http_ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int
http_ascii_caseeq(const char *s, size_t len, const char *word)
{
	for (size_t i = 0; i < len; i++)
		if (word[i] == '\0' || http_ascii_lower((unsigned char)s[i]) !=
		    word[i])
			return 0;
	return word[len] == '\0';
}

int
http_is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}
