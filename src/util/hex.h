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
/* One hex digit's value (either case), or -1. */
int hex_digit(int c);
/* Exactly 2n hex digits (either case, then the end of s) into n bytes:
 * 0, or -1 (s NULL, another length, a non-digit). */
int hex_decode(const char *s, uint8_t *out, size_t n);

#endif
