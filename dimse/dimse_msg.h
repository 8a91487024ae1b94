/*
 * dimse_msg.h — assembling DIMSE messages from the PDVs of P-DATA-TF PDUs
 * (PS3.8 9.3.5, Annex E.2; PS3.7 6.3.1, 9.1.1). One assembler per
 * association, fed every PDV in the order received. Pure: no I/O.
 *
 * A message is a command set, sent as one or more command fragments
 * (message control header bit 0 set) of which the last has bit 1 set,
 * followed, when its CommandDataSetType is not 0x0101, by a dataset sent
 * as dataset fragments in the same way, all on one presentation context.
 * The command is gathered (up to a limit) and decoded with
 * dimse_cmd_decode; the dataset is never gathered: each fragment is
 * handed back as it comes, pointing into the caller's PDU.
 *
 * The API is pull-style: each dimse_asm_feed takes one PDV and returns
 * what it completed, so the caller acts in its own stack frame, not in a
 * callback (it may free the assembler, abort the association, or stop
 * reading between two PDVs):
 *
 *   DIMSE_ASM_MORE      a command fragment was taken; nothing to do yet
 *   DIMSE_ASM_COMMAND   the command is complete: ev.cmd; when
 *                       ev.has_dataset is 0 the message is complete too
 *   DIMSE_ASM_DATA      a dataset fragment ev.data[0..ev.len) that is not
 *                       the last (len may be 0)
 *   DIMSE_ASM_DATA_END  the last dataset fragment (len may be 0): the
 *                       message is complete
 *   DIMSE_ASM_ERROR     a protocol violation (dimse_asm_error() says
 *                       which and where); answer with an A-ABORT. The
 *                       assembler is dead: every later feed returns
 *                       DIMSE_ASM_ERROR and the first error stays.
 *
 * The errors: a PDV on context 0 or an even context (DIMSE_E_PCID;
 * whether the context was negotiated is the caller's check, before
 * feeding); a dataset fragment before any command, while a command is
 * incomplete, or after a dataset ended (DIMSE_E_SEQUENCE); a command
 * fragment while a dataset is expected (DIMSE_E_SEQUENCE); a fragment on
 * another context than the fragments before it of the same message
 * (DIMSE_E_CONTEXT); a dataset after a command whose CommandDataSetType
 * says none follows (DIMSE_E_NO_DATASET); a command set over the limit
 * (DIMSE_E_LIMIT); a command set dimse_cmd_decode refuses (its code; the
 * offset is of the command set). A message's fragments may arrive in any
 * number of PDVs and PDUs; PDVs of one PDU may end one message and start
 * the next.
 */
#ifndef VNAMIG_DIMSE_MSG_H
#define VNAMIG_DIMSE_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "dimse/dimse_cmd.h"

#define DIMSE_COMMAND_LIMIT_DEFAULT	65536	/* bytes of a command set */

enum dimse_asm_result {
	DIMSE_ASM_ERROR = -1,
	DIMSE_ASM_MORE = 0,
	DIMSE_ASM_COMMAND,
	DIMSE_ASM_DATA,
	DIMSE_ASM_DATA_END,
};

/* What a feed completed. */
struct dimse_asm_event {
	uint8_t			 pcid;		/* context of the message */
	int			 has_dataset;	/* COMMAND: a dataset follows */
	const struct dimse_cmd	*cmd;		/* COMMAND, DATA, DATA_END: the
						 * message's command, valid
						 * until the next COMMAND or
						 * dimse_asm_free */
	const uint8_t		*data;		/* DATA, DATA_END: the
						 * fragment as fed (NULL when
						 * len is 0) */
	size_t			 len;
	uint64_t		 offset;	/* DATA, DATA_END: dataset
						 * bytes before this fragment */
};

struct dimse_asm;
struct dul_pdv;

/*
 * dimse_asm_new: an assembler for one association that refuses command
 * sets over command_limit bytes (0: DIMSE_COMMAND_LIMIT_DEFAULT). Never
 * NULL (aborts when out of memory).
 */
struct dimse_asm *dimse_asm_new(uint32_t command_limit);
void dimse_asm_free_(struct dimse_asm *a);
#define dimse_asm_free(a) do { dimse_asm_free_(a); (a) = NULL; } while (0)

/*
 * dimse_asm_feed: take one PDV: its presentation context ID, whether it
 * is a command fragment (message control header bit 0) and the last
 * fragment (bit 1), and its bytes data[0..len) (data may be NULL when len
 * is 0). Fills *ev (not for MORE and ERROR) and returns what the PDV
 * completed, as above. Nothing of data is kept after the call except
 * the copy of command fragments; ev->data points into data.
 */
enum dimse_asm_result dimse_asm_feed(struct dimse_asm *a, uint8_t pcid,
    int command, int last, const uint8_t *data, size_t len,
    struct dimse_asm_event *ev);

/* dimse_asm_feed_pdv: the same for a PDV from dul_pdata_next. */
enum dimse_asm_result dimse_asm_feed_pdv(struct dimse_asm *a,
    const struct dul_pdv *v, struct dimse_asm_event *ev);

/* dimse_asm_error: what went wrong, after DIMSE_ASM_ERROR. */
const struct dimse_error *dimse_asm_error(const struct dimse_asm *a);

/* dimse_asm_idle: 1 between messages (nothing partly received), else 0
 * (also 0 once dead). */
int dimse_asm_idle(const struct dimse_asm *a);

/* dimse_asm_messages: messages completed so far. */
uint64_t dimse_asm_messages(const struct dimse_asm *a);

#endif
