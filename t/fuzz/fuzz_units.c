/*
 * fuzz_units.c — libFuzzer harness for the size, rate, duration and
 * window parsers (conf_units.c), fed the input as one NUL-terminated
 * string.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf_units.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_window w;
	const char *err;
	uint64_t v;
	char *s;

	if (size > 4096)
		return 0;
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	(void)conf_parse_size(s, &v, &err);
	(void)conf_parse_rate(s, &v, &err);
	(void)conf_parse_duration(s, &v, &err);
	if (conf_parse_window(s, &w, &err) == 0)
		(void)conf_window_contains(&w, (unsigned)(v % 10080));
	free(s);
	return 0;
}
