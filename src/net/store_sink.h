/*
 * store_sink.h — where a received C-STORE dataset goes until the spool
 * (store issue) replaces it: one Part 10 file per instance in a
 * directory, DIR/<SOPInstanceUID>.dcm, written under a temporary name,
 * fsynced, renamed, and the directory fsynced: durable when
 * store_sink_commit() returns 0, never half-visible.
 *
 * The instance UID is validated before it becomes a file name (PS3.5
 * 9.1: 1..64 characters, digits and dots, no empty component, no leading
 * zero in a component), so "..", "/" or anything else never reaches the
 * file system.
 */
#ifndef VNAMIG_STORE_SINK_H
#define VNAMIG_STORE_SINK_H

#include <stddef.h>
#include <stdint.h>

struct store_sink;

/* store_uid_valid: 1 when uid is a valid UID (see above), else 0. */
int store_uid_valid(const char *uid);

/*
 * store_sink_begin: start the file for one instance in dir (created if
 * needed) with its Part 10 header (preamble, DICM, file meta). Returns
 * NULL with a message in err when the UIDs are invalid or the file
 * cannot be created.
 */
struct store_sink *store_sink_begin(const char *dir, const char *sop_class,
    const char *sop_instance, const char *ts_uid, char *err, size_t cap);
/* store_sink_write: n more dataset bytes. 0, or -1 with err (then abort). */
int store_sink_write(struct store_sink *s, const uint8_t *p, size_t n,
    char *err, size_t cap);
/* store_sink_commit: make the file durable under its final name and free
 * s. 0, or -1 with err (the temporary file removed, s freed). */
int store_sink_commit(struct store_sink *s, char *err, size_t cap);
/* store_sink_abort: remove the temporary file and free s; NULL is fine. */
void store_sink_abort(struct store_sink *s);
/* Bytes written so far (header included). */
uint64_t store_sink_bytes(const struct store_sink *s);

#endif
