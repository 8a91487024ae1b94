/*
 * fuzz_conf.c — libFuzzer harness for the YAML configuration loader
 * (conf_load_buffer): any bytes must give either a config or errors,
 * never a crash, hang or leak. A valid config is also dumped, to cover
 * the renderer.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf *c;
	char *errs, *dump;

	c = conf_load_buffer("fuzz.yaml", (const char *)data, size, &errs);
	if (c != NULL) {
		dump = conf_dump(c);
		free(dump);
		conf_free(c);
	}
	free(errs);
	return 0;
}
