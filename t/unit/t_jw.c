/*
 * t_jw.c — src/util/jw.c, the JSON text writer of the HL7 inbox records,
 * against jansson: whatever jw writes must load, to the same values;
 * jw_utf8 must accept exactly the strings jansson takes as UTF-8.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "src/util/jw.h"
#include "t/unit/tap.h"

#define HL7	"MSH|^~\\&|RIS|\"HOSP\"\r\nPID|1||\\T\\\x01\x1f"
#define UTF	"ZDS|\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"

/* One string written as a member, loaded back: the same bytes. */
static int
round_trip(struct jw *w, const char *s, size_t n)
{
	json_t *j, *v;
	int same;

	jw_open(w);
	jw_strn(w, "k", s, n);
	jw_int(w, "i", -42);
	jw_close(w);
	if ((j = json_loadb(w->p, w->n, JSON_ALLOW_NUL, NULL)) == NULL)
		return 0;
	v = json_object_get(j, "k");
	same = json_is_string(v) && json_string_length(v) == n &&
	    memcmp(json_string_value(v), s, n) == 0 &&
	    json_integer_value(json_object_get(j, "i")) == -42;
	json_decref(j);
	return same;
}

int
main(void)
{
	struct jw w = { 0 };
	unsigned char b[4];
	int bad = 0, agree = 0, total = 0, scrubbed = 0, nscrub = 0;
	json_t *j, *arr;
	uint32_t x = 2463534242u;	/* xorshift: the same strings each run */

	/* every single byte, every pair with a lead byte, a sample of
	 * triples and quads: jw_utf8 agrees with jansson, and what is
	 * UTF-8 comes back whole */
	for (unsigned len = 1; len <= 4; len++)
		for (unsigned i = 0; i < (len == 1 ? 256u : 200000u); i++) {
			int mine, theirs;

			for (unsigned k = 0; k < len; k++) {
				if (len == 1)
					b[k] = (unsigned char)i;
				else if (len == 2)
					b[k] = (unsigned char)(k == 0 ? i >> 8 :
					    i);
				else {
					x ^= x << 13;
					x ^= x >> 17;
					x ^= x << 5;
					b[k] = (unsigned char)(k == 0 ? 0xc0 +
					    x % 0x40 : 0x70 + x % 0x60);
				}
			}
			if (len == 2 && i >= 65536)
				break;
			mine = jw_utf8((const char *)b, len);
			j = json_stringn((const char *)b, len);
			theirs = j != NULL;
			json_decref(j);
			total++;
			agree += mine == theirs;
			if (mine && !round_trip(&w, (const char *)b, len))
				bad++;
			if (memchr(b, 0, len) == NULL) {
				/* scrubbed: UTF-8 to jansson, and unchanged
				 * when it was already */
				char c[5];

				memcpy(c, b, len);
				c[len] = '\0';
				jw_utf8_scrub(c);
				j = json_string(c);
				nscrub++;
				scrubbed += j != NULL && (!mine ||
				    memcmp(c, b, len) == 0) && strlen(c) == len;
				json_decref(j);
			}
		}
	is_int(agree, total, "jw_utf8 agrees with jansson on %d strings of "
	    "1-4 bytes", total);
	is_int(bad, 0, "every UTF-8 one loads back whole (control "
	    "characters, quotes and backslashes escaped)");
	is_int(scrubbed, nscrub, "jw_utf8_scrub: each of %d without a NUL "
	    "is UTF-8 after it, the same length, unchanged if it was",
	    nscrub);

	ok(round_trip(&w, HL7, sizeof(HL7) - 1), "an HL7 message with CR, "
	    "LF, quotes, backslashes and control characters");
	ok(round_trip(&w, UTF, sizeof(UTF) - 1),
	    "2, 3 and 4 byte UTF-8 kept as is");
	ok(round_trip(&w, "a\0b", 3), "a NUL inside");
	{
		/* not UTF-8 (ISO 8859-1, a character cut): '?' for each
		 * such byte, and the record still loads */
		json_t *r;

		jw_open(&w);
		jw_strn(&w, "k", "Pr\xfc" "fung \xc3", 10);
		jw_close(&w);
		r = json_loadb(w.p, w.n, JSON_ALLOW_NUL, NULL);
		is_str(r != NULL ? json_string_value(json_object_get(r, "k")) :
		    "(no JSON)", "Pr?fung ?", "bytes that are not UTF-8 are "
		    "written as '?': the record loads");
		json_decref(r);
	}

	/* every kind of member, loaded back */
	arr = json_pack("[i, s, {s:b}]", 1, "x", "y", 1);
	jw_open(&w);
	jw_str(&w, "s", "v");
	jw_int(&w, "n", INT64_MIN);
	jw_bool(&w, "t", 1);
	jw_bool(&w, "f", 0);
	jw_null(&w, "z");
	jw_json(&w, "a", arr);
	jw_close(&w);
	j = json_loadb(w.p, w.n, 0, NULL);
	ok(j != NULL && json_integer_value(json_object_get(j, "n")) ==
	    INT64_MIN && json_is_true(json_object_get(j, "t")) &&
	    json_is_false(json_object_get(j, "f")) &&
	    json_is_null(json_object_get(j, "z")) &&
	    strcmp(json_string_value(json_object_get(j, "s")), "v") == 0 &&
	    json_equal(json_object_get(j, "a"), arr) && json_object_size(j) ==
	    6, "string, integer, booleans, null and a jansson value: %.*s",
	    (int)w.n, w.p);
	json_decref(j);
	json_decref(arr);
	jw_open(&w);
	jw_close(&w);
	is_int((int)w.n, 2, "an empty object is {}");
	jw_free(&w);
	return done_testing();
}
