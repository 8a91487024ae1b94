/*
 * fuzz_dimse.c — libFuzzer harness for the DIMSE command set codec and
 * the PDV message assembler.
 *
 * 1. The input is decoded as a command set. A refusal must come with a
 *    message and an offset inside the input. A command that decodes must
 *    encode (sizing with cap 0, nothing written with a cap one short),
 *    decode to an equal struct with nothing unknown, and encode again to
 *    the same bytes; when it is a request, its response from
 *    dimse_rsp_init must round-trip and pass dimse_cmd_check.
 * 2. The input is fed to an assembler as command fragments of 1..16
 *    bytes (its last byte and its size say how many): the outcome must
 *    be what the direct decode gave, and a dataset that follows is
 *    passed back in place, chunk by chunk.
 * 3. The input, after its first byte, is read as a script of PDVs
 *    (header byte: bit 0 command, bit 1 last, bits 2-4 the context ID;
 *    a length byte; that many bytes of fragment) fed to an assembler with
 *    a small command limit, and every result is checked against a model
 *    of the machine in dimse_msg.h.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dimse/dimse_cmd.h"
#include "dimse/dimse_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dimse_cmd c1, c2, c3;

static void
check_err(const struct dimse_error *e, size_t n)
{
	if (e->code == DIMSE_OK || e->msg[0] == '\0' || e->offset > n ||
	    strlen(e->msg) >= sizeof(e->msg))
		abort();
}

/* encode c, check the bytes decode back to c and re-encode the same */
static void
encode_check(const struct dimse_cmd *c)
{
	struct dimse_error e;
	uint8_t *buf, *buf2, *small;
	size_t need;

	if ((need = dimse_cmd_encode(c, NULL, 0)) < 12 || need % 2 != 0)
		abort();	/* a decoded command always encodes */
	if ((buf = malloc(need)) == NULL || (buf2 = malloc(need)) == NULL ||
	    (small = malloc(need - 1)) == NULL)
		abort();
	if (dimse_cmd_encode(c, small, need - 1) != need ||
	    dimse_cmd_encode(c, buf, need) != need)
		abort();
	if (dimse_cmd_decode(buf, need, &c2, &e) != 0 ||
	    !dimse_cmd_equal(c, &c2) || c2.unknown != 0)
		abort();	/* the encoding does not decode to the same */
	if (dimse_cmd_encode(&c2, buf2, need) != need ||
	    memcmp(buf, buf2, need) != 0)
		abort();	/* encoding is not canonical */
	free(small);
	free(buf2);
	free(buf);
}

static int
codec(const uint8_t *d, size_t n, struct dimse_error *e)
{
	struct dimse_error e2;

	if (dimse_cmd_decode(d, n, &c1, e) != 0) {
		check_err(e, n);
		return -1;
	}
	encode_check(&c1);
	(void)dimse_cmd_name(c1.command);
	(void)dimse_status_name(c1.status);
	(void)dimse_status_name_for(c1.command, c1.status);
	(void)dimse_status_class_name(dimse_status_class(c1.status));
	if (dimse_cmd_check(&c1, &e2) != 0)
		check_err(&e2, 0);
	if (dimse_rsp_init(&c1, c1.status, &c3) == 0) {
		if (dimse_cmd_check(&c3, &e2) != 0)
			abort();	/* a built response is complete */
		encode_check(&c3);
	}
	return 0;
}

/* 2: the input as one command in pieces, then as its dataset */
static void
split(const uint8_t *d, size_t n, int decoded, const struct dimse_error *de)
{
	struct dimse_asm *a = dimse_asm_new(0);
	struct dimse_asm_event ev;
	enum dimse_asm_result r = DIMSE_ASM_MORE;
	size_t step = (n > 0 ? (d[n - 1] + n) % 16 : 0) + 1, o = 0;

	do {
		size_t k = n - o < step ? n - o : step;

		r = dimse_asm_feed(a, 1, 1, o + k == n, d + o, k, &ev);
		o += k;
	} while (o < n && r == DIMSE_ASM_MORE);
	if (n > DIMSE_COMMAND_LIMIT_DEFAULT) {
		if (r != DIMSE_ASM_ERROR ||
		    dimse_asm_error(a)->code != DIMSE_E_LIMIT)
			abort();
	} else if (!decoded) {
		if (r != DIMSE_ASM_ERROR ||
		    dimse_asm_error(a)->code != de->code ||
		    dimse_asm_error(a)->offset != de->offset ||
		    dimse_asm_error(a)->tag != de->tag)
			abort();	/* not the direct decode's error */
	} else {
		if (r != DIMSE_ASM_COMMAND || ev.pcid != 1 ||
		    !dimse_cmd_equal(ev.cmd, &c1) ||
		    ev.has_dataset != dimse_cmd_has_dataset(&c1) ||
		    dimse_asm_idle(a) == ev.has_dataset)
			abort();
		for (o = 0; ev.has_dataset && o <= n; o += step) {
			size_t k = n - o < step ? n - o : step;
			int last = o + step > n;

			r = dimse_asm_feed(a, 1, 0, last, d + o, k, &ev);
			if (r != (last ? DIMSE_ASM_DATA_END : DIMSE_ASM_DATA) ||
			    ev.len != k || ev.offset != o ||
			    (k > 0 && ev.data != d + o))
				abort();
		}
		if (!dimse_asm_idle(a) || dimse_asm_messages(a) != 1)
			abort();
	}
	dimse_asm_free(a);
}

/* 3: a script of PDVs, against a model of the assembler */
struct model {
	enum { M_IDLE, M_COMMAND, M_DATASET, M_DEAD } state;
	uint8_t		 pcid;
	uint64_t	 off, messages;
};

/* whether the model allows the assembler's error code for this PDV */
static int
error_allowed(const struct model *m, enum dimse_errcode code, uint8_t pcid,
    int cmd, int last)
{
	switch (code) {
	case DIMSE_E_PCID:
		return pcid % 2 == 0;
	case DIMSE_E_SEQUENCE:
		return cmd ? m->state == M_DATASET : m->state != M_DATASET;
	case DIMSE_E_CONTEXT:
		return pcid != m->pcid && (cmd ? m->state == M_COMMAND :
		    m->state == M_DATASET);
	case DIMSE_E_NO_DATASET:
		return !cmd && m->state == M_IDLE;
	case DIMSE_E_LIMIT:
		return cmd && m->state != M_DATASET;
	case DIMSE_OK:
	case DIMSE_E_COMMAND:
		return 0;
	default:	/* the decoder's */
		return cmd && last && m->state != M_DATASET;
	}
}

static void
step_model(struct dimse_asm *a, struct model *m, uint8_t h,
    const uint8_t *p, size_t k)
{
	struct dimse_asm_event ev;
	enum dimse_asm_result r;
	enum dimse_errcode code = dimse_asm_error(a)->code;
	uint8_t pcid = (h >> 2) & 7;
	int cmd = h & 1, last = (h >> 1) & 1;

	r = dimse_asm_feed(a, pcid, cmd, last, p, k, &ev);
	if (m->state == M_DEAD) {
		if (r != DIMSE_ASM_ERROR || dimse_asm_error(a)->code != code)
			abort();	/* dead stays dead, first error stays */
		return;
	}
	if (r == DIMSE_ASM_ERROR) {
		check_err(dimse_asm_error(a), 1u << 20);
		if ((pcid % 2 == 0 &&
		    dimse_asm_error(a)->code != DIMSE_E_PCID) ||
		    !error_allowed(m, dimse_asm_error(a)->code, pcid, cmd,
		    last))
			abort();
		m->state = M_DEAD;
		return;
	}
	if (pcid % 2 == 0)
		abort();	/* an even context must be refused */
	switch (r) {
	case DIMSE_ASM_MORE:
		if (!cmd || last || (m->state != M_IDLE &&
		    m->state != M_COMMAND) || (m->state == M_COMMAND &&
		    pcid != m->pcid))
			abort();
		m->state = M_COMMAND;
		m->pcid = pcid;
		break;
	case DIMSE_ASM_COMMAND:
		if (!cmd || !last || m->state == M_DATASET ||
		    (m->state == M_COMMAND && pcid != m->pcid) ||
		    ev.pcid != pcid || ev.cmd == NULL ||
		    ev.has_dataset != dimse_cmd_has_dataset(ev.cmd))
			abort();
		m->pcid = pcid;
		m->off = 0;
		m->state = ev.has_dataset ? M_DATASET : M_IDLE;
		if (!ev.has_dataset)
			m->messages++;
		break;
	case DIMSE_ASM_DATA:
	case DIMSE_ASM_DATA_END:
		if (cmd || last != (r == DIMSE_ASM_DATA_END) ||
		    m->state != M_DATASET || pcid != m->pcid ||
		    ev.pcid != pcid || ev.len != k || ev.offset != m->off ||
		    (k > 0 && ev.data != p) || (k == 0 && ev.data != NULL))
			abort();
		m->off += k;
		if (last) {
			m->state = M_IDLE;
			m->messages++;
		}
		break;
	case DIMSE_ASM_ERROR:
		break;
	}
	if (dimse_asm_idle(a) != (m->state == M_IDLE) ||
	    dimse_asm_messages(a) != m->messages)
		abort();
}

static void
script(const uint8_t *d, size_t n)
{
	struct dimse_asm *a;
	struct model m = { M_IDLE, 0, 0, 0 };
	size_t o = 1;

	if (n < 1)
		return;
	a = dimse_asm_new(1u + d[0] * 2u);
	while (o + 2 <= n) {
		uint8_t h = d[o];
		size_t k = d[o + 1];

		o += 2;
		if (k > n - o)
			k = n - o;
		step_model(a, &m, h, d + o, k);
		o += k;
	}
	dimse_asm_free(a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dimse_error e;
	int decoded = codec(data, size, &e) == 0;

	split(data, size, decoded, &e);
	script(data, size);
	return 0;
}
