/*
 * hl7_mllp.c — MLLP framing (see hl7_mllp.h).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "src/hl7/hl7_mllp.h"

#define CR	0x0d

void
hl7_mllp_init(struct hl7_mllp *m, uint64_t max)
{
	memset(m, 0, sizeof(*m));
	m->max = max;
}

void
hl7_mllp_free(struct hl7_mllp *m)
{
	free(m->msg);
	m->msg = NULL;
	m->len = m->cap = 0;
}

enum hl7_mllp_step
hl7_mllp_step(struct hl7_mllp *m, const unsigned char *p, size_t n,
    size_t *used, uint64_t *dropped)
{
	size_t i = 0;

	*dropped = 0;
	if (!m->in_frame) {
		size_t skip = 0;

		m->len = 0;	/* (the last frame was taken) */
		if (m->after_fs && p[0] == CR)
			skip = i = 1;	/* the last frame's trailer */
		m->after_fs = 0;
		while (i < n && p[i] != HL7_MLLP_VT)
			i++;
		m->garbage += i - skip;
		if (i == n) {
			*used = n;
			return HL7_MLLP_NEED;
		}
		*used = i + 1;
		m->in_frame = 1;
		return HL7_MLLP_MORE;
	}
	while (i < n && p[i] != HL7_MLLP_FS && p[i] != HL7_MLLP_VT)
		i++;
	/* (over the limit whatever ends it: the same however the stream
	 * is split, a VT after it in the same read or the next) */
	if (m->len + i > m->max) {
		m->in_frame = 0;
		m->len = 0;
		*used = 0;
		return HL7_MLLP_TOO_LARGE;
	}
	if (i < n && p[i] == HL7_MLLP_VT) {
		*dropped = m->len + i;
		m->len = 0;
		*used = i + 1;
		return HL7_MLLP_RESTARTED;
	}
	if (m->len + i > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;
		char *nm;

		while (cap < m->len + i)
			cap *= 2;
		if ((nm = realloc(m->msg, cap)) == NULL)
			abort();
		m->msg = nm;
		m->cap = cap;
	}
	if (i > 0)
		memcpy(m->msg + m->len, p, i);
	m->len += i;
	if (i == n) {
		*used = n;
		return HL7_MLLP_NEED;
	}
	/* <FS> ends the message; the <CR> after it, when it comes (now,
	 * or first in the next feed), is its trailer */
	m->in_frame = 0;
	m->after_fs = i + 1 >= n;
	if (i + 1 < n && p[i + 1] == CR) {
		*used = i + 2;
		return HL7_MLLP_FRAME;
	}
	*used = i + 1;
	return i + 1 < n ? HL7_MLLP_FRAME_NO_CR : HL7_MLLP_FRAME;
}
