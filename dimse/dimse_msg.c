/*
 * dimse_msg.c — DIMSE message assembly from PDVs (PS3.8 E.2, PS3.7
 * 9.1.1). See dimse_msg.h for the contract.
 *
 * The assembler is a small machine over three states: between messages
 * (IDLE), gathering a command (COMMAND), passing a dataset through
 * (DATASET); a fourth (DEAD) holds after the first error. Each PDV is one
 * event; the table of what each kind of fragment does in each state is
 * the switch in dimse_asm_feed.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dimse/dimse_msg.h"
#include "dul/dul_pdu.h"

#define COMMAND_BUF_MIN	256

enum asm_state { A_IDLE, A_COMMAND, A_DATASET, A_DEAD };

/* What ended the message before the current one, for the messages of
 * the errors a stray dataset fragment gets. */
enum asm_last { L_NONE, L_NO_DATASET, L_DATASET };

struct dimse_asm {
	enum asm_state	 state;
	enum asm_last	 last;
	uint32_t	 limit;		/* of a command set */
	uint8_t		 pcid;		/* of the current (or last) message */
	uint8_t		*buf;		/* the command set being gathered */
	size_t		 n, cap;
	uint64_t	 data_off;	/* dataset bytes passed so far */
	uint64_t	 pdvs;		/* fed so far */
	uint64_t	 messages;	/* completed */
	struct dimse_cmd cmd;		/* of the current (or last) message */
	struct dimse_error err;
};

struct dimse_asm *
dimse_asm_new(uint32_t command_limit)
{
	struct dimse_asm *a = calloc(1, sizeof(*a));

	if (a == NULL)
		abort();
	a->limit = command_limit ? command_limit : DIMSE_COMMAND_LIMIT_DEFAULT;
	return a;
}

void
dimse_asm_free_(struct dimse_asm *a)
{
	if (a == NULL)
		return;
	free(a->buf);
	free(a);
}

const struct dimse_error *
dimse_asm_error(const struct dimse_asm *a)
{
	return &a->err;
}

int
dimse_asm_idle(const struct dimse_asm *a)
{
	return a->state == A_IDLE;
}

uint64_t
dimse_asm_messages(const struct dimse_asm *a)
{
	return a->messages;
}

static enum dimse_asm_result
die(struct dimse_asm *a, enum dimse_errcode code, size_t off,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum dimse_asm_result
die(struct dimse_asm *a, enum dimse_errcode code, size_t off,
    const char *fmt, ...)
{
	va_list ap;
	int o;

	memset(&a->err, 0, sizeof(a->err));
	a->err.code = code;
	a->err.tag = DIMSE_NO_TAG;
	a->err.offset = off;
	a->err.pdv = a->pdvs;
	o = snprintf(a->err.msg, sizeof(a->err.msg), "PDV %" PRIu64 ": ",
	    a->pdvs);
	va_start(ap, fmt);
	vsnprintf(a->err.msg + o, sizeof(a->err.msg) - (size_t)o, fmt, ap);
	va_end(ap);
	a->state = A_DEAD;
	return DIMSE_ASM_ERROR;
}

/* "C-STORE-RQ (message 7)" for the message whose command is a->cmd */
static const char *
msg_name(const struct dimse_asm *a, char *buf, size_t cap)
{
	const struct dimse_cmd *c = &a->cmd;

	if (c->present & DIMSE_F_MSGID)
		snprintf(buf, cap, "%s (message %u)", dimse_cmd_name(c->command),
		    c->msgid);
	else if (c->present & DIMSE_F_MSGID_RSP)
		snprintf(buf, cap, "%s (to message %u)",
		    dimse_cmd_name(c->command), c->msgid_rsp);
	else
		snprintf(buf, cap, "%s", dimse_cmd_name(c->command));
	return buf;
}

/* append a command fragment, within the limit */
static enum dimse_asm_result
gather(struct dimse_asm *a, const uint8_t *data, size_t len)
{
	size_t cap;

	if (len > a->limit - a->n)
		return die(a, DIMSE_E_LIMIT, a->n, "command set on context %u "
		    "over the limit of %" PRIu32 " bytes (%zu gathered, "
		    "%zu more in this fragment)", a->pcid, a->limit, a->n, len);
	if (a->n + len > a->cap) {
		cap = a->cap ? a->cap : COMMAND_BUF_MIN;
		while (cap < a->n + len)
			cap *= 2;
		if (cap > a->limit)
			cap = a->limit;
		if ((a->buf = realloc(a->buf, cap)) == NULL)
			abort();
		a->cap = cap;
	}
	if (len > 0)
		memcpy(a->buf + a->n, data, len);
	a->n += len;
	return DIMSE_ASM_MORE;
}

/* the last command fragment came: decode */
static enum dimse_asm_result
command_done(struct dimse_asm *a, struct dimse_asm_event *ev)
{
	struct dimse_error e;

	if (dimse_cmd_decode(a->buf, a->n, &a->cmd, &e) != 0) {
		die(a, e.code, e.offset, "command set on context %u: %s",
		    a->pcid, e.msg);
		a->err.tag = e.tag;
		return DIMSE_ASM_ERROR;
	}
	memset(ev, 0, sizeof(*ev));
	ev->pcid = a->pcid;
	ev->cmd = &a->cmd;
	ev->has_dataset = dimse_cmd_has_dataset(&a->cmd);
	a->n = 0;
	if (ev->has_dataset) {
		a->state = A_DATASET;
		a->data_off = 0;
	} else {
		a->state = A_IDLE;
		a->last = L_NO_DATASET;
		a->messages++;
	}
	return DIMSE_ASM_COMMAND;
}

static enum dimse_asm_result
command_fragment(struct dimse_asm *a, uint8_t pcid, int last,
    const uint8_t *data, size_t len, struct dimse_asm_event *ev)
{
	char name[96];

	switch (a->state) {
	case A_IDLE:
		a->state = A_COMMAND;
		a->pcid = pcid;
		a->n = 0;
		break;
	case A_COMMAND:
		if (pcid != a->pcid)
			return die(a, DIMSE_E_CONTEXT, a->n, "command fragment "
			    "on context %u, but this command began on context "
			    "%u (PS3.8 E.2: one message, one context)", pcid,
			    a->pcid);
		break;
	case A_DATASET:
		return die(a, DIMSE_E_SEQUENCE, (size_t)a->data_off,
		    "command fragment on context %u while the dataset of %s "
		    "on context %u is still expected (%" PRIu64 " bytes so "
		    "far, no last fragment yet)", pcid,
		    msg_name(a, name, sizeof(name)), a->pcid, a->data_off);
	case A_DEAD:
		return DIMSE_ASM_ERROR;
	}
	if (gather(a, data, len) != DIMSE_ASM_MORE)
		return DIMSE_ASM_ERROR;
	return last ? command_done(a, ev) : DIMSE_ASM_MORE;
}

static enum dimse_asm_result
stray_data(struct dimse_asm *a, uint8_t pcid)
{
	char name[96];

	switch (a->last) {
	case L_NO_DATASET:
		return die(a, DIMSE_E_NO_DATASET, 0, "dataset fragment on "
		    "context %u after %s, whose CommandDataSetType 0x%04x "
		    "says no dataset follows (PS3.7 E.1)", pcid,
		    msg_name(a, name, sizeof(name)), a->cmd.dataset_type);
	case L_DATASET:
		return die(a, DIMSE_E_SEQUENCE, (size_t)a->data_off,
		    "dataset fragment on context %u after the dataset of %s "
		    "ended: a message starts with its command (PS3.7 "
		    "9.1.1)", pcid, msg_name(a, name, sizeof(name)));
	case L_NONE:
		break;
	}
	return die(a, DIMSE_E_SEQUENCE, 0, "dataset fragment on context %u "
	    "before any command: a message starts with its command (PS3.7 "
	    "9.1.1)", pcid);
}

static enum dimse_asm_result
data_fragment(struct dimse_asm *a, uint8_t pcid, int last,
    const uint8_t *data, size_t len, struct dimse_asm_event *ev)
{
	char name[96];

	switch (a->state) {
	case A_IDLE:
		return stray_data(a, pcid);
	case A_COMMAND:
		return die(a, DIMSE_E_SEQUENCE, a->n, "dataset fragment on "
		    "context %u while the command on context %u is incomplete "
		    "(%zu bytes, no last fragment yet)", pcid, a->pcid, a->n);
	case A_DATASET:
		if (pcid != a->pcid)
			return die(a, DIMSE_E_CONTEXT, (size_t)a->data_off,
			    "dataset fragment on context %u, but its command "
			    "%s came on context %u (PS3.8 E.2: one message, "
			    "one context)", pcid,
			    msg_name(a, name, sizeof(name)), a->pcid);
		break;
	case A_DEAD:
		return DIMSE_ASM_ERROR;
	}
	memset(ev, 0, sizeof(*ev));
	ev->pcid = a->pcid;
	ev->cmd = &a->cmd;
	ev->has_dataset = 1;
	ev->data = len > 0 ? data : NULL;
	ev->len = len;
	ev->offset = a->data_off;
	a->data_off += len;
	if (!last)
		return DIMSE_ASM_DATA;
	a->state = A_IDLE;
	a->last = L_DATASET;
	a->messages++;
	return DIMSE_ASM_DATA_END;
}

enum dimse_asm_result
dimse_asm_feed(struct dimse_asm *a, uint8_t pcid, int command, int last,
    const uint8_t *data, size_t len, struct dimse_asm_event *ev)
{
	if (a->state == A_DEAD)
		return DIMSE_ASM_ERROR;
	a->pdvs++;
	if (pcid == 0 || pcid % 2 == 0)
		return die(a, DIMSE_E_PCID, 0, "%s fragment on presentation "
		    "context %u: context IDs are odd, 1..255 (PS3.8 9.3.2.2)",
		    command ? "command" : "dataset", pcid);
	if (command)
		return command_fragment(a, pcid, last, data, len, ev);
	return data_fragment(a, pcid, last, data, len, ev);
}

enum dimse_asm_result
dimse_asm_feed_pdv(struct dimse_asm *a, const struct dul_pdv *v,
    struct dimse_asm_event *ev)
{
	return dimse_asm_feed(a, v->pcid, v->command, v->last, v->data, v->len,
	    ev);
}
