/*
 * fuzz_mllp.c — libFuzzer entry point for MLLP framing (src/hl7/hl7_mllp).
 *
 * Input: byte 0 picks the size of the pieces the stream is fed in (1-64
 * bytes), bytes 1-2 (little endian) the largest frame taken (16 bytes to
 * 1 MiB, in steps of 16: the frame buffer grows past its first 4 KiB);
 * the rest is the stream. It is framed twice, whole and in pieces, and both must say
 * the same: the same frames (contents), restarts (bytes dropped), the
 * same stop at a frame too large, the same bytes outside frames. Besides
 * crashes it checks the contract: a step takes at least one byte and no
 * more than it was given (but at a stop), a frame holds no VT and no FS
 * and is never over the limit.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/hl7/hl7_mllp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond) do { if (!(cond)) abort(); } while (0)
#define MAXEV	4096

struct seen {
	uint64_t	 ev[MAXEV];	/* kind << 56 | length, in order */
	uint64_t	 sum[MAXEV];	/* a frame's contents (FNV-1a) */
	size_t		 n;
	uint64_t	 garbage;
	int		 stopped;
};

static uint64_t
fnv(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 0x100000001b3ULL;
	return h;
}

static void
note(struct seen *s, uint64_t kind, uint64_t len, uint64_t sum)
{
	if (s->n < MAXEV) {
		s->ev[s->n] = kind << 56 | len;
		s->sum[s->n++] = sum;
	}
}

/* frame: the stream in pieces of `piece` bytes (0: whole). */
static void
frame(const uint8_t *p, size_t n, size_t piece, uint64_t max, struct seen *s)
{
	struct hl7_mllp m;
	size_t off = 0;

	memset(s, 0, sizeof(*s));
	hl7_mllp_init(&m, max);
	while (off < n && !s->stopped) {
		size_t end = piece == 0 || n - off < piece ? n : off + piece;

		/* one read's bytes, stepped until all are taken */
		while (off < end) {
			size_t used = 0;
			uint64_t dropped = 0;
			enum hl7_mllp_step st = hl7_mllp_step(&m, p + off,
			    end - off, &used, &dropped);

			if (st == HL7_MLLP_TOO_LARGE) {
				note(s, 3, 0, 0);
				s->stopped = 1;
				break;
			}
			check(used >= 1 && used <= end - off);
			off += used;
			if (st == HL7_MLLP_FRAME || st == HL7_MLLP_FRAME_NO_CR) {
				check(m.len <= max);
				check(m.len == 0 || (memchr(m.msg, HL7_MLLP_VT,
				    m.len) == NULL && memchr(m.msg,
				    HL7_MLLP_FS, m.len) == NULL));
				note(s, 1, m.len, fnv(m.msg, m.len));
			} else if (st == HL7_MLLP_RESTARTED)
				note(s, 2, dropped, 0);
			else
				check(st == HL7_MLLP_NEED ||
				    st == HL7_MLLP_MORE);
			check(m.in_frame || m.len == 0 ||
			    st == HL7_MLLP_FRAME || st == HL7_MLLP_FRAME_NO_CR);
		}
	}
	s->garbage = m.garbage;
	hl7_mllp_free(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct seen whole, pieces;
	size_t piece;
	uint64_t max;

	if (size < 3)
		return 0;
	piece = 1 + (data[0] & 0x3f);
	max = 16 + ((uint64_t)data[1] | (uint64_t)data[2] << 8) * 16;
	frame(data + 3, size - 3, 0, max, &whole);
	frame(data + 3, size - 3, piece, max, &pieces);
	check(whole.n == pieces.n && whole.stopped == pieces.stopped);
	check(memcmp(whole.ev, pieces.ev, whole.n * sizeof(whole.ev[0])) ==
	    0);
	check(memcmp(whole.sum, pieces.sum, whole.n * sizeof(whole.sum[0])) ==
	    0);
	if (!whole.stopped)
		check(whole.garbage == pieces.garbage);
	return 0;
}
