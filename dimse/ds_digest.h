/*
 * ds_digest.h — the canonical dataset digest and the pixel digest
 * (DESIGN.md "Verification levels" 2 and 3), computed while the dataset
 * streams through the parser, so two encodings of the same instance
 * compare equal whatever a target re-encoded.
 *
 * Canonical digest, defined so it survives re-encoding:
 *   - group 0002, every group length (gggg,0000) and dataset trailing
 *     padding (FFFC,FFFC) are left out;
 *   - each element becomes a record SHA-256(tag BE32 ‖ VR ‖ value), where
 *     VR is the dictionary's default VR for the tag (UN when unknown), so
 *     implicit/explicit and OB/OW choices do not matter; binary values are
 *     hashed little-endian (byte-swapped from big-endian syntaxes); text
 *     values lose one trailing padding byte (space or NUL);
 *   - a sequence's value is SHA-256 over its items' digests in order; an
 *     item's (and the dataset's) digest is SHA-256 over its element
 *     records sorted by tag, so element order and length forms (defined
 *     or undefined) do not matter;
 *   - encapsulated pixel data is hashed as the concatenation of its
 *     fragments after the basic offset table (a target may rebuild the
 *     table).
 * Pixel digest: SHA-256 of the Pixel Data value (7FE0,0010) as above
 * (little-endian for native pixels, fragments after the offset table for
 * encapsulated ones); all zero when the instance has no pixel data.
 */
#ifndef VNAMIG_DS_DIGEST_H
#define VNAMIG_DS_DIGEST_H

#include <stdint.h>

#include "dimse/ds_parse.h"
#include "src/util/sha256.h"

struct ds_digest;

/*
 * ds_digest_new: a digester whose callbacks (ds_digest_callbacks) go into
 * a parser with the digester as arg. Never NULL.
 */
struct ds_digest *ds_digest_new(void);
void ds_digest_free_(struct ds_digest *d);
#define ds_digest_free(d) do { ds_digest_free_(d); (d) = NULL; } while (0)

/* The callbacks to parse with (meta and warning are left NULL). */
const struct ds_callbacks *ds_digest_callbacks(void);

/*
 * ds_digest_feed: ds_parse_feed(parser, p, n) for a parser made with D's
 * callbacks, and p[0..n) into OUTER, the caller's hash of the same
 * stream. Bytes of the top-level Pixel Data value that are hashed as they
 * stand in the stream (a native value in little-endian order, and
 * encapsulated fragments after the offset table) go into OUTER and the
 * pixel hash together, two blocks at a time (sha256_update2), instead of
 * in two passes. Returns what ds_parse_feed returns; OUTER has all of
 * p[0..n) in order either way.
 */
enum ds_result ds_digest_feed(struct ds_digest *d, struct ds_parser *parser,
    struct sha256 *outer, const uint8_t *p, size_t n);

/*
 * ds_digest_pixel_end: where the top-level Pixel Data value ends in the
 * dataset stream, once its header has passed with a defined length (a
 * lower bound on the dataset's length, known early); 0 until then, and
 * for encapsulated or absent pixel data.
 */
uint64_t ds_digest_pixel_end(const struct ds_digest *d);

/*
 * ds_digest_final: after the parse finished with DS_DONE, write the
 * canonical digest and the pixel digest. Returns -1 if the element
 * structure was not closed (the parse did not finish).
 */
int ds_digest_final(struct ds_digest *d, uint8_t canonical[32],
    uint8_t pixel[32], int *has_pixels);

#endif
