/*
 * hl7_mllp.h — MLLP (release 1) framing, pure: <VT> message <FS><CR>
 * frames cut out of a byte stream, whatever way it is split. No sockets:
 * src/net/net_mllp.c feeds it what it reads and answers the frames.
 *
 * What lies outside frames is counted (garbage) and skipped; the <CR>
 * after an <FS> is the frame's trailer, also when it comes first in the
 * next feed; an <FS> not followed by <CR> still ends the frame (a sender
 * that ends frames with FS alone would otherwise wait for ever), and is
 * reported; a <VT> inside a frame starts a new one, the frame before it
 * dropped (reported, with how many bytes); a frame over max bytes stops
 * the stream (the caller closes the connection).
 */
#ifndef VNAMIG_HL7_MLLP_H
#define VNAMIG_HL7_MLLP_H

#include <stddef.h>
#include <stdint.h>

#define HL7_MLLP_VT	0x0b
#define HL7_MLLP_FS	0x1c

struct hl7_mllp {
	uint64_t	 max;		/* the largest frame taken (bytes) */
	char		*msg;		/* the frame's bytes so far */
	size_t		 len, cap;
	int		 in_frame;
	int		 after_fs;	/* a frame ended at an FS that was the
					 * last byte fed: a CR first in the
					 * next feed is its trailer */
	uint64_t	 garbage;	/* bytes outside frames */
};

enum hl7_mllp_step {
	HL7_MLLP_NEED,		/* all of it taken: feed more */
	HL7_MLLP_MORE,		/* a frame started: step again */
	HL7_MLLP_FRAME,		/* msg[0..len) is a whole message: take it,
				 * then step again (the next step forgets it) */
	HL7_MLLP_FRAME_NO_CR,	/* the same, its FS not followed by CR */
	HL7_MLLP_RESTARTED,	/* a VT inside a frame: *dropped bytes of the
				 * frame before it are gone; step again */
	HL7_MLLP_TOO_LARGE,	/* a frame over max: stop */
};

/* hl7_mllp_init: a stream of frames up to MAX bytes each. */
void hl7_mllp_init(struct hl7_mllp *m, uint64_t max);
void hl7_mllp_free(struct hl7_mllp *m);
/*
 * hl7_mllp_step: one step over p[0..n) (n > 0): *used bytes of it taken
 * (the caller drops them from its input), and what happened. The bytes of
 * a frame are copied; a FRAME's stay in m->msg until the next step.
 */
enum hl7_mllp_step hl7_mllp_step(struct hl7_mllp *m, const unsigned char *p,
    size_t n, size_t *used, uint64_t *dropped);

#endif
