/*
 * dump_json.h — vnamig-dump --json: DICOM files as the DICOM JSON model
 * (PS3.18 Annex F.2), streamed: each value goes out as the parser hands
 * it over, so a file of any size converts in constant memory.
 */
#ifndef VNAMIG_DUMP_JSON_H
#define VNAMIG_DUMP_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct dump_json_opts {
	int	 quiet;		/* no warnings on stderr */
	int	 meta;		/* also the file meta group (0002,xxxx), which
				 * the model leaves out (dcm2json +m) */
	int	 bulk_uri;	/* binary values over the parser's chunk size
				 * (64 KiB) as "BulkDataURI": "file://..." */
	const char *prog;	/* in messages (NULL: "vnamig-dump") */
};

/*
 * dump_json_files: write the JSON model of the n files in paths to out:
 * a single object when n is 1, an array of n objects otherwise. A file
 * that cannot be opened is null; one that fails to parse keeps the
 * elements read before the error, its open structures closed, so the
 * output is always one valid JSON text. Warnings and errors go to stderr
 * (warnings not when o->quiet). Returns 0 when every file parsed, else 1.
 */
int dump_json_files(FILE *out, char *const *paths, int n,
    const struct dump_json_opts *o);

/*
 * Datasets without a file (a Q/R response's identifier): dump_json_open
 * starts an array on out, each dump_json_dataset adds the object of the
 * dataset p[0..n) in syntax ts (label names it in messages), and
 * dump_json_close ends the array and frees. dump_json_dataset returns 0
 * when it parsed, 1 when not (the object keeps what came before the
 * error); dump_json_close 1 on a write error.
 */
struct dump_json;
struct ds_ts;
struct dump_json *dump_json_open(FILE *out, const struct dump_json_opts *o);
int dump_json_dataset(struct dump_json *j, const uint8_t *p, size_t n,
    const struct ds_ts *ts, const char *label);
int dump_json_close(struct dump_json *j);

#endif
