/*
 * replay.c — runs a fuzz harness's LLVMFuzzerTestOneInput over every file
 * of its seed corpus, t/fuzz/corpus/FUZZ_NAME/ (or the files/directories
 * given as arguments), printing one TAP result per input. A crash or a
 * sanitizer report fails the test; make check runs it without libFuzzer.
 */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int n;

static int
cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0) {
		printf("not ok %d - %s: cannot read\n", ++n, path);
		if (f)
			fclose(f);
		return 1;
	}
	rewind(f);
	if ((buf = malloc((size_t)len + 1)) == NULL ||
	    fread(buf, 1, (size_t)len, f) != (size_t)len) {
		printf("not ok %d - %s: cannot read\n", ++n, path);
		fclose(f);
		free(buf);
		return 1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	printf("ok %d - %s\n", ++n, strrchr(path, '/') ? strrchr(path, '/') +
	    1 : path);
	fflush(stdout);
	return 0;
}

static int
run_dir(const char *dir)
{
	char **names = NULL, path[4096];
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	int fails = 0;
	DIR *d;

	if ((d = opendir(dir)) == NULL) {
		printf("not ok %d - corpus %s: cannot open\n", ++n, dir);
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 64;
			if ((names = realloc(names, cap * sizeof(*names))) ==
			    NULL)
				abort();
		}
		if ((names[cnt++] = strdup(de->d_name)) == NULL)
			abort();
	}
	closedir(d);
	if (names != NULL)
		qsort(names, cnt, sizeof(*names), cmp);
	for (size_t i = 0; i < cnt; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		fails += run_file(path);
		free(names[i]);
	}
	free(names);
	if (cnt == 0)
		printf("not ok %d - corpus %s is empty\n", ++n, dir), fails++;
	return fails;
}

int
main(int argc, char **argv)
{
	const char *top = getenv("top_srcdir");
	char dir[4096];
	struct stat st;
	int fails = 0;

	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			fails += stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode) ?
			    run_dir(argv[i]) : run_file(argv[i]);
	} else {
		snprintf(dir, sizeof(dir), "%s/t/fuzz/corpus/%s",
		    top ? top : ".", FUZZ_NAME);
		fails = run_dir(dir);
	}
	printf("1..%d\n", n);
	return fails ? 1 : 0;
}
