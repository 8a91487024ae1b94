/*
 * hl7in.h — what an HL7 v2 message does to vnamigd, whichever way it came
 * (MLLP, POST /api/hl7/ingest): parse it (src/hl7), find its sender
 * (hl7.senders), deduplicate it by (MSH-3, MSH-4, MSH-10), turn an order
 * (ORM^O01, OMI^O23) or an update (ADT^A08) into a batch seed, record a
 * merge (ADT^A40) in the patient-ID crosswalk, keep the message in the
 * inbox, and build the original-mode ACK — AA only once all of that is
 * durable (one store unit, with its audit leaf).
 *
 *	AA  accepted: done (or kept in the inbox only: an unmapped sender,
 *	    a message type we take but that asks nothing of us)
 *	AE  the content is wrong (no accession or study UID, no MRG, an
 *	    inverted merge, a character set we cannot decode)
 *	AR  not taken: a message we do not handle (type, event), one that
 *	    does not parse, or the store cannot take it now (not recorded:
 *	    a resend is processed afresh)
 *
 * A message seen before from the same sender with the same control ID
 * gets the ACK it got then, and nothing is done twice (across restarts).
 */
#ifndef VNAMIG_HL7IN_H
#define VNAMIG_HL7IN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct daemon;
struct hl7in;
struct hl7in_call;
struct store_key;

struct hl7in *hl7in_new(struct daemon *d, char *err, size_t errlen);
void hl7in_free_(struct hl7in *h);
#define hl7in_free(h) do { hl7in_free_(h); (h) = NULL; } while (0)
/* The store was reset: reload the inbox counter. */
void hl7in_reload(struct hl7in *h);
/* Once a minute: drop inbox records past hl7.retention / max_inbox. */
void hl7in_tick(struct hl7in *h);

/*
 * hl7in_message: handle one message (the bytes between MLLP's frame
 * marks). done(arg, ack, len, code) runs once, on the loop — maybe before
 * this returns — with the ACK to send ("AA", "AE", "AR"), or ack NULL
 * when the message cannot be answered at all (no usable MSH). Returns a
 * handle for hl7in_cancel (the connection went away: done is then not
 * called; the work itself still completes), or NULL when done already
 * ran.
 */
typedef void hl7in_done_fn(void *arg, const char *ack, size_t len,
    const char *code);
struct hl7in_call *hl7in_message(struct hl7in *h, const char *raw,
    size_t len, const char *peer, const char *via, hl7in_done_fn *done,
    void *arg);
void hl7in_cancel(struct hl7in_call *c);

/* The crosswalk row's key of a merged ID MRN at source peer SRC (what an
 * ADT^A40 from a sender mapped to SRC wrote): ("xw", SRC, MRN). */
void hl7in_xw_key(struct store_key *k, const char *src, const char *mrn);

/* What the configured paths extract from a message, with its sender's
 * mapping (POST /api/hl7/preview); NULL with err when it does not parse. */
json_t *hl7in_preview(struct hl7in *h, const char *raw, size_t len,
    char *err, size_t errlen);

/* Inbox records after seq `after`, newest last, filtered (NULL: any). */
json_t *hl7in_list(struct hl7in *h, uint64_t after, size_t limit,
    const char *sender, const char *type, const char *outcome,
    uint64_t *next);

#endif
