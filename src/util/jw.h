/*
 * jw.h — a JSON object written straight to text, for records written at
 * a high rate (an HL7 message's inbox record): no tree is built and freed.
 * Strings are written as UTF-8: a byte that is not part of a well-formed
 * character is written as '?' (jw_utf8 says whether a string is); control
 * characters, quotes and backslashes are escaped. The caller writes the
 * keys in the order it wants them stored (jansson's JSON_SORT_KEYS order
 * where the record is also written by jansson elsewhere).
 */
#ifndef VNAMIG_JW_H
#define VNAMIG_JW_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct jw {
	char	*p;
	size_t	 n, cap;
	int	 first;		/* no member yet in the open object */
};

void	jw_open(struct jw *w);		/* "{" */
void	jw_close(struct jw *w);		/* "}": w->p, w->n are the text */
void	jw_free(struct jw *w);
void	jw_str(struct jw *w, const char *key, const char *s);
void	jw_strn(struct jw *w, const char *key, const char *s, size_t n);
void	jw_int(struct jw *w, const char *key, int64_t v);
void	jw_bool(struct jw *w, const char *key, int v);
void	jw_null(struct jw *w, const char *key);
/* a value jansson holds (rare members: arrays, objects) */
void	jw_json(struct jw *w, const char *key, const json_t *v);
/* nested: an object or an array of strings as the value of key */
void	jw_object(struct jw *w, const char *key);	/* then jw_close */
void	jw_array(struct jw *w, const char *key);
void	jw_item(struct jw *w, const char *s);		/* a string in it */
void	jw_array_end(struct jw *w);
int	jw_utf8(const char *s, size_t n);
/* jw_utf8_scrub: every byte of s that is not part of a well-formed UTF-8
 * character becomes '?' (text quoted from a request, for a JSON answer). */
void	jw_utf8_scrub(char *s);
/* jw_utf8_cut: how much of UTF-8 s a copy of at most MAX bytes keeps
 * without cutting inside a character (all of it when it fits). */
size_t	jw_utf8_cut(const char *s, size_t max);

#endif
