/*
 * ds_write.h — encoding datasets: re-encode what the parser delivers into
 * an uncompressed transfer syntax (a streaming transcoder), and write the
 * Part 10 header. Pure: bytes go to a sink callback.
 *
 * Encoding rules: sequences and items are written with undefined length
 * and delimiters (the lengths of what streams are not known in advance);
 * values keep their length and bytes, swapped by the VR's unit when the
 * byte order changes; an implicit source's VRs come from the dictionary
 * (UN when unknown); a value too long for an explicit VR's 2-byte length
 * is written as UN (PS3.5 6.2.2); UN of undefined length becomes SQ.
 * Encapsulated pixel data passes through fragment by fragment, which is
 * only valid when the target syntax is the source's (encapsulated)
 * syntax.
 */
#ifndef VNAMIG_DS_WRITE_H
#define VNAMIG_DS_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "dimse/ds_parse.h"

/* A sink takes n bytes; non-zero stops the writing (and the parse). */
typedef int ds_sink_fn(void *arg, const uint8_t *p, size_t n);

struct ds_writer;

/* ds_writer_new: encode into syntax ts (its explicit_vr and big_endian
 * decide the framing). Never NULL. */
struct ds_writer *ds_writer_new(const struct ds_ts *ts, ds_sink_fn *sink,
    void *arg);
void ds_writer_free_(struct ds_writer *w);
#define ds_writer_free(w) do { ds_writer_free_(w); (w) = NULL; } while (0)

/* Parser callbacks that write every dataset element they see (file meta
 * elements are skipped: write the header with ds_write_part10_header);
 * the parser's arg must be the writer. */
const struct ds_callbacks *ds_writer_callbacks(void);

/*
 * ds_encode_header: an element header into b: the tag, then in an
 * explicit syntax (items and delimiters excepted) the VR and a 2- or
 * 4-byte length, else a 4-byte length, in the given byte order. Returns
 * its size, 8 or 12.
 */
size_t ds_encode_header(uint8_t b[12], uint32_t tag, enum ds_vr vr,
    uint32_t len, int explicit_vr, int be);

/* ds_put16, ds_put32: a 16- or 32-bit value into b in the byte order
 * be (1: big endian). */
void ds_put16(uint8_t *b, unsigned v, int be);
void ds_put32(uint8_t *b, uint32_t v, int be);

/* Bytes written so far. */
uint64_t ds_writer_bytes(const struct ds_writer *w);

/*
 * ds_write_part10_header: 128-byte preamble, "DICM" and a file meta group
 * (group length, version 00\01, SOP class and instance, transfer syntax,
 * implementation class UID and version name) in Explicit VR LE. UIDs are
 * NUL-padded to even length. Returns the sink's verdict (0 = written).
 */
int ds_write_part10_header(ds_sink_fn *sink, void *arg,
    const char *sop_class, const char *sop_instance, const char *ts_uid);
/* ... and, when SENDING_AE is neither NULL nor "", the AE title that sent
 * the instance: (0002,0017) Sending Application Entity Title (at most 16
 * characters, else -1). */
int ds_write_part10_header_ae(ds_sink_fn *sink, void *arg,
    const char *sop_class, const char *sop_instance, const char *ts_uid,
    const char *sending_ae);

#define DS_IMPLEMENTATION_CLASS_UID	"1.2.826.0.1.3680043.10.1297.1"
#define DS_IMPLEMENTATION_VERSION	"VNAMIG_010"

#endif
