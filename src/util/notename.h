/*
 * notename.h — a signed note's key name (c2sp.org/signed-note): the
 * audit log's checkpoint origin. 1 to 200 printable ASCII characters, no
 * space and no '+': vnamig-verify, as the spec says, splits a signature
 * line at its first space and refuses a '+' in a name.
 */
#ifndef VNAMIG_NOTENAME_H
#define VNAMIG_NOTENAME_H

#include <string.h>

static inline int
note_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 200)
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f ||
		    *s == '+')
			return 0;
	return 1;
}

#endif
