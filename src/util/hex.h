/*
 * hex.h — bytes as lowercase hex, the form hashes take in logs, audit
 * leaves and listings.
 */
#ifndef VNAMIG_HEX_H
#define VNAMIG_HEX_H

#include <stddef.h>
#include <stdint.h>

/* OUT gets 2n hex digits and a NUL (2n + 1 bytes). */
void hex_encode(const uint8_t *p, size_t n, char *out);

#endif
